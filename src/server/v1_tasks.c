/*
 * v1_tasks: the task resource of the v1 API: submit (one or a batch),
 * read (with long-poll), list, the owner's controls and delete.
 *
 * Writes go to the store as ops and reply when durable; reads are served
 * on the calling thread from a reader connection.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/task_json.h"
#include "../common/timeutil.h"
#include "../common/xalloc.h"
#include "server_int.h"
#include "v1_decode.h"

/* The task id in the path, or a 404 reply. */
static const char *path_task_id(struct req *r) {
    const char *id = r->param[0];
    if (id_is_valid(id)) return id;
    struct tm_error e;
    err_set(&e, TM_ENOT_FOUND, "", "task '%.64s' not found", id);
    reply_error(r, &e);
    return NULL;
}

static void reply_op_task(struct req *r) {
    if (r->op.err.code)
        reply_error(r, &r->op.err);
    else
        reply_task(r, 200, r->op.task);
}

static void tasks_submitted(struct req *r) {
    if (r->op.err.code) {
        reply_error(r, &r->op.err);
        return;
    }
    char loc[64];
    snprintf(loc, sizeof loc, "/v1/tasks/%s", r->op.task->id);
    reply_add_header(r, "Location", loc);
    reply_task(r, r->op.created ? 201 : 200, r->op.task);
}

static void tasks_submit(struct req *r) {
    if (req_json_body(r, false)) return;
    struct tm_error e;
    err_clear(&e);
    struct task *t = NULL;
    if (v1_decode_task(r->json, req_limits(r), r->ns, &t, &e)) {
        reply_error(r, &e);
        return;
    }
    const char *key = req_header(r, "Idempotency-Key");
    if (key) {
        if (!*key || strlen(key) > 256) {
            task_free(t);
            reply_error_code(r, TM_EINVALID, "Idempotency-Key",
                             "'Idempotency-Key' must be 1 to 256 bytes");
            return;
        }
        if (t->idempotency_key && strcmp(t->idempotency_key, key) != 0) {
            task_free(t);
            reply_error_code(r, TM_EINVALID, "idempotency_key",
                             "'idempotency_key' differs from the 'Idempotency-Key' header");
            return;
        }
        free(t->idempotency_key);
        t->idempotency_key = xstrdup(key);
    }
    store_op_init(&r->op, STORE_OP_CREATE);
    r->op.ns = r->ns;
    r->op.tasks = xmalloc(sizeof *r->op.tasks);
    r->op.tasks[0] = t;
    r->op.ntasks = 1;
    req_submit(r, tasks_submitted);
}

static void tasks_batch_submitted(struct req *r) {
    if (r->op.err.code) {
        reply_error(r, &r->op.err);
        return;
    }
    struct buf b;
    buf_init(&b);
    buf_puts(&b, "{\"tasks\":[");
    for (size_t i = 0; i < r->op.ntasks; i++) {
        if (i) buf_putc(&b, ',');
        task_json_write(&b, r->op.tasks[i]);
    }
    buf_puts(&b, "]}");
    reply_json(r, r->op.created ? 201 : 200, &b);
}

static void tasks_batch(struct req *r) {
    if (req_json_body(r, false)) return;
    const struct limits *lim = req_limits(r);
    const char *key;
    json_t *v;
    json_object_foreach(r->json, key, v) {
        if (strcmp(key, "tasks") != 0) {
            struct tm_error e;
            err_set(&e, TM_EINVALID, key, "unknown field '%s'", key);
            reply_error(r, &e);
            return;
        }
    }
    json_t *arr = json_object_get(r->json, "tasks");
    if (!json_is_array(arr)) {
        reply_error_code(r, TM_EINVALID, "tasks", "'tasks' must be an array of tasks");
        return;
    }
    size_t n = json_array_size(arr);
    if (n == 0 || n > (size_t)lim->batch_max) {
        struct tm_error e;
        err_set(&e, TM_EINVALID, "tasks", "'tasks' must hold 1 to %d tasks", lim->batch_max);
        reply_error(r, &e);
        return;
    }
    store_op_init(&r->op, STORE_OP_CREATE);
    r->op.ns = r->ns;
    r->op.tasks = xcalloc(n, sizeof *r->op.tasks);
    for (size_t i = 0; i < n; i++) {
        struct tm_error e;
        err_clear(&e);
        if (v1_decode_task(json_array_get(arr, i), lim, r->ns, &r->op.tasks[i], &e)) {
            char field[64];
            snprintf(field, sizeof field, "tasks[%zu]%s%s", i, e.field[0] ? "." : "", e.field);
            snprintf(e.field, sizeof e.field, "%s", field);
            char msg[sizeof e.message];
            snprintf(msg, sizeof msg, "%s (in 'tasks[%zu]')", e.message, i);
            snprintf(e.message, sizeof e.message, "%s", msg);
            r->op.ntasks = i;
            reply_error(r, &e);
            return;
        }
        r->op.ntasks = i + 1;
        /* Two tasks of one batch with one key would collide inside the transaction. */
        const char *ikey = r->op.tasks[i]->idempotency_key;
        for (size_t j = 0; ikey && j < i; j++) {
            const char *other = r->op.tasks[j]->idempotency_key;
            if (!other || strcmp(other, ikey) != 0) continue;
            err_set(&e, TM_EINVALID, "", "'idempotency_key' of 'tasks[%zu]' repeats 'tasks[%zu]'",
                    i, j);
            snprintf(e.field, sizeof e.field, "tasks[%zu].idempotency_key", i);
            reply_error(r, &e);
            return;
        }
    }
    req_submit(r, tasks_batch_submitted);
}

static void tasks_get(struct req *r) {
    const char *id = path_task_id(r);
    if (!id) return;
    struct tm_error e;
    err_clear(&e);
    int wait_s;
    int64_t version;
    if (v1_decode_wait(req_query(r, "wait"), req_query(r, "version"), req_limits(r), &wait_s,
                       &version, &e)) {
        reply_error(r, &e);
        return;
    }
    struct task *t = NULL;
    if (store_task_get(req_store(r), r->ns, id, &t, &e)) {
        reply_error(r, &e);
        return;
    }
    if (wait_s > 0 && t->version <= (version < 0 ? t->version : version)) {
        store_op_init(&r->op, STORE_OP_WATCH);
        r->op.ns = r->ns;
        memcpy(r->op.id, id, ID_LEN + 1);
        r->op.version = version < 0 ? t->version : version;
        r->op.deadline_ms = time_mono_ms() + wait_s * 1000;
        task_free(t);
        req_submit(r, reply_op_task);
        return;
    }
    reply_task(r, 200, t);
    task_free(t);
}

struct list_ctx {
    struct req *r;
    struct list_query q;
    struct tm_error e;
};

static int tasks_list_arg(void *cls, const char *key, const char *value) {
    struct list_ctx *c = cls;
    return v1_list_query_add(&c->q, req_limits(c->r), key, value, &c->e);
}

static void tasks_list(struct req *r) {
    struct list_ctx c = {.r = r};
    err_clear(&c.e);
    v1_list_query_init(&c.q);
    if (req_query_each(r, tasks_list_arg, &c)) {
        reply_error(r, &c.e);
        return;
    }
    c.q.filter.ns = r->ns;
    struct task_list l;
    if (store_task_list(req_store(r), &c.q.filter, &l, &c.e)) {
        reply_error(r, &c.e);
        return;
    }
    struct buf b;
    buf_init(&b);
    buf_puts(&b, "{\"tasks\":[");
    for (size_t i = 0; i < l.n; i++) {
        if (i) buf_putc(&b, ',');
        task_json_write(&b, l.tasks[i]);
    }
    buf_puts(&b, "],\"next_cursor\":");
    json_put_str(&b, l.more && l.n ? l.tasks[l.n - 1]->id : NULL);
    buf_putc(&b, '}');
    task_list_release(&l);
    reply_json(r, 200, &b);
}

/* Cancel, retry, pause, resume: an empty body or {}. */
static void tasks_control(struct req *r, enum store_op_kind kind) {
    const char *id = path_task_id(r);
    if (!id) return;
    if (req_json_body(r, true)) return;
    const char *key = json_object_iter_key(json_object_iter(r->json));
    if (key) {
        struct tm_error e;
        err_set(&e, TM_EINVALID, key, "unknown field '%s'", key);
        reply_error(r, &e);
        return;
    }
    store_op_init(&r->op, kind);
    r->op.ns = r->ns;
    memcpy(r->op.id, id, ID_LEN + 1);
    req_submit(r, reply_op_task);
}

static void tasks_cancel(struct req *r) {
    tasks_control(r, STORE_OP_CANCEL);
}

static void tasks_retry(struct req *r) {
    tasks_control(r, STORE_OP_RETRY);
}

static void tasks_pause(struct req *r) {
    tasks_control(r, STORE_OP_PAUSE);
}

static void tasks_resume(struct req *r) {
    tasks_control(r, STORE_OP_RESUME);
}

static void tasks_deleted(struct req *r) {
    if (r->op.err.code)
        reply_error(r, &r->op.err);
    else
        reply_empty(r, 204);
}

static void tasks_delete(struct req *r) {
    const char *id = path_task_id(r);
    if (!id) return;
    store_op_init(&r->op, STORE_OP_DELETE);
    r->op.ns = r->ns;
    memcpy(r->op.id, id, ID_LEN + 1);
    req_submit(r, tasks_deleted);
}

const struct route v1_tasks_routes[] = {
    {"POST", "/v1/tasks", tasks_submit, PERM_OWNER},
    {"GET", "/v1/tasks", tasks_list, PERM_READ},
    {"POST", "/v1/tasks/batch", tasks_batch, PERM_OWNER},
    {"GET", "/v1/tasks/:id", tasks_get, PERM_READ | PERM_WORKER},
    {"DELETE", "/v1/tasks/:id", tasks_delete, PERM_ADMIN},
    {"POST", "/v1/tasks/:id/cancel", tasks_cancel, PERM_OWNER},
    {"POST", "/v1/tasks/:id/retry", tasks_retry, PERM_OWNER},
    {"POST", "/v1/tasks/:id/pause", tasks_pause, PERM_OWNER},
    {"POST", "/v1/tasks/:id/resume", tasks_resume, PERM_OWNER},
    {NULL, NULL, NULL, 0},
};
