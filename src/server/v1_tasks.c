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
#include "../common/utf8.h"
#include "../common/xalloc.h"
#include "server_int.h"
#include "v1_decode.h"

/* The bytes of tasks one list reply holds before it ends its page early. */
#define V1_LIST_REPLY_MAX_BYTES (8u << 20)

const char *v1_path_task_id(struct req *r) {
    const char *id = r->param[0];
    if (id_is_valid(id)) return id;
    struct tm_error e;
    err_set(&e, TM_ENOT_FOUND, "", "task '%.64s' not found", id);
    reply_error(r, &e);
    return NULL;
}

struct task *v1_task_read(struct req *r, const char *id) {
    struct tm_error e;
    err_clear(&e);
    struct task *t = NULL;
    if (store_task_get(req_store(r), r->ns, id, &t, &e) == 0) return t;
    reply_error(r, &e);
    return NULL;
}

void v1_task_op_init(struct req *r, enum store_op_kind kind, const char *id) {
    store_op_init(&r->op, kind);
    r->op.ns = r->ns;
    memcpy(r->op.id, id, ID_LEN + 1);
}

static void tasks_submitted(struct req *r) {
    if (reply_if_op_failed(r)) return;
    reply_add_location(r, "tasks", r->op.task->id);
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
        /* The key goes to the store as text, and PostgreSQL refuses bytes
         * that are not UTF-8 (failing the whole group commit). */
        if (!*key || strlen(key) > 256 || !utf8_valid(key, strlen(key))) {
            task_free(t);
            reply_error_code(r, TM_EINVALID, "Idempotency-Key",
                             "'Idempotency-Key' must be 1 to 256 bytes of UTF-8");
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
    store_op_init_create(&r->op, r->ns, t);
    req_submit(r, tasks_submitted);
}

/* The store refuses a batch's unknown parent as "parent_id": name the
 * task, as the batch's other errors do. The one refused is the first task
 * not answered by its idempotency key (those hold their stored task, id
 * set) that names the parent quoted: any earlier one would have failed
 * first. */
static void tasks_batch_name_parent(struct req *r) {
    struct tm_error *e = &r->op.err;
    if (e->code != TM_EINVALID || strcmp(e->field, "parent_id") != 0) return;
    for (size_t i = 0; i < r->op.ntasks; i++) {
        const struct task *t = r->op.tasks[i];
        if (t->id[0] || !t->parent_id[0] || !strstr(e->message, t->parent_id)) continue;
        snprintf(e->field, sizeof e->field, "tasks[%zu].parent_id", i);
        char msg[sizeof e->message];
        snprintf(msg, sizeof msg, "%s (in 'tasks[%zu]')", e->message, i);
        snprintf(e->message, sizeof e->message, "%s", msg);
        utf8_scrub(e->message);
        return;
    }
}

static void tasks_batch_submitted(struct req *r) {
    tasks_batch_name_parent(r);
    if (reply_if_op_failed(r)) return;
    struct buf b;
    buf_init(&b);
    buf_puts(&b, "{\"tasks\":[");
    for (size_t i = 0; i < r->op.ntasks; i++) {
        if (i) buf_putc(&b, ',');
        store_op_write_task(&b, &r->op, r->op.tasks[i]);
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
            err_set(&e, TM_EINVALID, key, "unknown field '%.64s'", key);
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
            char field[96];
            snprintf(field, sizeof field, "tasks[%zu]%s%s", i, e.field[0] ? "." : "", e.field);
            /* A path too long for field is left out, not cut (err_set). */
            snprintf(e.field, sizeof e.field, "%s", strlen(field) < sizeof e.field ? field : "");
            char msg[sizeof e.message];
            snprintf(msg, sizeof msg, "%s (in 'tasks[%zu]')", e.message, i);
            snprintf(e.message, sizeof e.message, "%s", msg);
            utf8_scrub(e.message); /* the buffer may cut a character */
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
    const char *id = v1_path_task_id(r);
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
    if (wait_s == 0) { /* the common read: perhaps a kept render (docs/storage.md) */
        struct buf b;
        buf_init(&b);
        if (store_task_render(req_store(r), r->ns, id, task_json_write, &b, &e)) {
            buf_release(&b);
            reply_error(r, &e);
            return;
        }
        reply_json(r, 200, &b);
        return;
    }
    struct task *t = v1_task_read(r, id);
    if (!t) return;
    if (t->version <= (version < 0 ? t->version : version)) {
        v1_task_op_init(r, STORE_OP_WATCH, id);
        r->op.version = version < 0 ? t->version : version;
        r->op.deadline_ms = time_mono_ms() + wait_s * 1000;
        task_free(t);
        req_submit(r, reply_op_task);
        return;
    }
    reply_task(r, 200, t);
    task_free(t);
}

/*
 * One parameter of a list (GET /v1/tasks, the bulk filter) into q. An
 * empty type, queue or name_prefix is refused (a blank form field would
 * read as a filter: no task, or every named one). A time bound of 0 means
 * none in task_filter, so `created_before` or `updated_before` the epoch
 * itself (a time no task has before it) is kept as -1, which leaves the
 * list empty as it should, not unbounded.
 */
static int tasks_list_param(struct list_query *q, const struct limits *lim, const char *key,
                            const char *value, struct tm_error *e) {
    if (!*value &&
        (strcmp(key, "type") == 0 || strcmp(key, "queue") == 0 || strcmp(key, "name_prefix") == 0))
        return err_set(e, TM_EINVALID, key, "'%.64s' must not be empty", key);
    int rc = v1_list_query_add(q, lim, key, value, e);
    if (rc) return rc;
    struct task_filter *f = &q->filter;
    if (strcmp(key, "created_before") == 0 && f->created_before == 0) f->created_before = -1;
    if (strcmp(key, "updated_before") == 0 && f->updated_before == 0) f->updated_before = -1;
    return 0;
}

/* The query parameters a list takes once each: a second one took the
 * place of the first, silently. `phase` may repeat (its lists add up). */
static const char *const list_once[] = {
    "type",      "queue",         "parent_id",      "name_prefix",   "id_prefix",      "q",
    "namespace", "created_after", "created_before", "updated_after", "updated_before", "limit",
    "cursor",    "order",
};

struct list_ctx {
    struct req *r;
    struct list_query q;
    struct tm_error e;
    unsigned seen; /* bit i: list_once[i] came */
};

static int tasks_list_arg(void *cls, const char *key, const char *value) {
    struct list_ctx *c = cls;
    if (err_once(list_once, sizeof list_once / sizeof list_once[0], &c->seen, key, &c->e))
        return TM_EINVALID;
    return tasks_list_param(&c->q, req_limits(c->r), key, value, &c->e);
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
    /* A `limit` past --max-page was refused; the default (50) must not pass it either. */
    if (c.q.filter.limit > req_limits(r)->page_max) c.q.filter.limit = req_limits(r)->page_max;
    struct task_list l;
    if (store_task_list(req_store(r), &c.q.filter, &l, &c.e)) {
        reply_error(r, &c.e);
        return;
    }
    struct buf b;
    buf_init(&b);
    buf_puts(&b, "{\"tasks\":");
    /* A page that ends early has a cursor too. */
    bool more;
    size_t n = task_page_write(&b, &l, V1_LIST_REPLY_MAX_BYTES, task_json_write, &more);
    buf_puts(&b, ",\"next_cursor\":");
    json_put_str(&b, more && n ? l.tasks[n - 1]->id : NULL);
    buf_putc(&b, '}');
    task_list_release(&l);
    reply_json(r, 200, &b);
}

/* Cancel, retry, pause, resume (the route's arg is the op): an empty body or {}. */
static void tasks_control(struct req *r) {
    const char *id = v1_path_task_id(r);
    if (!id) return;
    if (req_json_fields(r, true, NULL)) return;
    v1_task_op_init(r, (enum store_op_kind)r->route->arg, id);
    req_submit(r, reply_op_task);
}

static void tasks_delete(struct req *r) {
    const char *id = v1_path_task_id(r);
    if (!id) return;
    v1_task_op_init(r, STORE_OP_DELETE, id);
    req_submit(r, reply_op_empty);
}

/* GET /v1/tasks/{id}/attempts: each claim of the task, oldest first. */
static void tasks_attempts(struct req *r) {
    const char *id = v1_path_task_id(r);
    if (!id) return;
    struct task *t = v1_task_read(r, id);
    if (!t) return;
    struct buf b;
    buf_init(&b);
    buf_puts(&b, "{\"task_id\":");
    json_put_str(&b, t->id);
    json_put_key(&b, "attempt", false);
    json_put_int(&b, t->attempt);
    json_put_key(&b, "attempts", false);
    buf_puts(&b, t->attempts ? t->attempts : "[]");
    buf_putc(&b, '}');
    task_free(t);
    reply_json(r, 200, &b);
}

/*
 * POST /v1/tasks/bulk: one control on every task matching a filter.
 * {"action", "filter": {GET /v1/tasks parameters}, "dry_run": true} counts;
 * {"action", "filter", "expected": N} acts when the filter still matches N
 * tasks (else 409), at most BULK_MAX. Each task goes through its own op (so
 * each gets its event and its state machine check); the ops are handed to
 * the store at once and share its group commits. Tasks the action does not
 * apply to (a retry of a running task) are counted as skipped.
 */
#define BULK_MAX 10000

static const struct {
    const char *name;
    enum store_op_kind kind;
    bool admin;
} bulk_actions[] = {
    {"cancel", STORE_OP_CANCEL, false}, {"retry", STORE_OP_RETRY, false},
    {"pause", STORE_OP_PAUSE, false},   {"resume", STORE_OP_RESUME, false},
    {"delete", STORE_OP_DELETE, true},
};

/* Reads the filter object into q; each value a string (or a number for limit-free keys). */
static int bulk_filter(struct req *r, json_t *filter, struct list_query *q, struct tm_error *e) {
    v1_list_query_init(q);
    if (!filter) return 0;
    if (!json_is_object(filter))
        return err_set(e, TM_EINVALID, "filter", "'filter' must be an object of list parameters");
    const char *key;
    json_t *v;
    json_object_foreach(filter, key, v) {
        if (strcmp(key, "limit") == 0 || strcmp(key, "cursor") == 0 || strcmp(key, "order") == 0)
            return err_set(e, TM_EINVALID, "filter", "'filter' may not hold '%.64s'", key);
        if (!json_is_string(v))
            return err_set(e, TM_EINVALID, "filter", "'filter.%.64s' must be a string", key);
        if (tasks_list_param(q, req_limits(r), key, json_string_value(v), e)) {
            char field[sizeof e->field];
            snprintf(field, sizeof field, "filter.%s", e->field);
            snprintf(e->field, sizeof e->field, "%s", field);
            return -1;
        }
    }
    q->filter.ns = r->ns;
    return 0;
}

static void tasks_bulk(struct req *r) {
    static const char *const fields[] = {"action", "filter", "dry_run", "expected", NULL};
    if (req_json_fields(r, false, fields)) return;
    struct tm_error e;
    err_clear(&e);
    const char *action = json_string_value(json_object_get(r->json, "action"));
    int a = -1;
    for (size_t i = 0; action && i < sizeof bulk_actions / sizeof bulk_actions[0]; i++)
        if (strcmp(action, bulk_actions[i].name) == 0) a = (int)i;
    if (a < 0) {
        reply_error_code(r, TM_EINVALID, "action",
                         "'action' must be one of cancel, retry, pause, resume, delete");
        return;
    }
    if (bulk_actions[a].admin && r->role != TOKEN_ADMIN) {
        reply_error_code(r, TM_EFORBIDDEN, "action", "only an admin token may delete tasks");
        return;
    }
    json_t *dry = json_object_get(r->json, "dry_run"), *exp = json_object_get(r->json, "expected");
    if (dry && !json_is_boolean(dry)) {
        reply_error_code(r, TM_EINVALID, "dry_run", "'dry_run' must be true or false");
        return;
    }
    bool dry_run = json_is_true(dry);
    if (!dry_run && (!json_is_integer(exp) || json_integer_value(exp) < 0)) {
        reply_error_code(r, TM_EINVALID, "expected",
                         "'expected' must be the count a dry run gave (an integer >= 0), or "
                         "'dry_run' true");
        return;
    }
    struct list_query q;
    if (bulk_filter(r, json_object_get(r->json, "filter"), &q, &e)) {
        reply_error(r, &e);
        return;
    }
    struct task_list l;
    q.filter.want_total = true;
    q.filter.limit = 1;
    if (store_task_list(req_store(r), &q.filter, &l, &e)) {
        reply_error(r, &e);
        return;
    }
    int64_t matched = l.total;
    task_list_release(&l);
    struct buf b;
    buf_init(&b);
    if (dry_run) {
        buf_printf(&b, "{\"matched\":%lld,\"max\":%d}", (long long)matched, BULK_MAX);
        reply_json(r, 200, &b);
        return;
    }
    if (matched != json_integer_value(exp)) {
        err_set(&e, TM_ECONFLICT, "expected",
                "the filter matches %lld tasks now, not %lld; count again", (long long)matched,
                (long long)json_integer_value(exp));
        reply_error(r, &e);
        return;
    }
    if (matched > BULK_MAX) {
        err_set(&e, TM_EINVALID, "filter",
                "the filter matches %lld tasks; at most %d per request (narrow the filter)",
                (long long)matched, BULK_MAX);
        reply_error(r, &e);
        return;
    }
    /* The ids, page by page, oldest first. */
    char(*ids)[ID_LEN + 1] = xcalloc((size_t)matched + 1, sizeof *ids);
    size_t n = 0;
    q.filter.want_total = false;
    q.filter.ascending = true;
    q.filter.limit = 1000;
    for (;;) {
        if (store_task_list(req_store(r), &q.filter, &l, &e)) {
            free(ids);
            reply_error(r, &e);
            return;
        }
        for (size_t i = 0; i < l.n && n < (size_t)matched; i++)
            memcpy(ids[n++], l.tasks[i]->id, ID_LEN + 1);
        bool more = l.more && l.n && n < (size_t)matched;
        if (more) memcpy(q.filter.cursor, l.tasks[l.n - 1]->id, ID_LEN + 1);
        task_list_release(&l);
        if (!more) break;
    }
    struct store_op *ops = xcalloc(n ? n : 1, sizeof *ops);
    const char *actor = r->token_id[0] ? r->token_id : "open";
    for (size_t i = 0; i < n; i++) {
        store_op_init(&ops[i], bulk_actions[a].kind);
        ops[i].ns = r->ns;
        ops[i].actor = actor;
        memcpy(ops[i].id, ids[i], ID_LEN + 1);
    }
    store_run_many(req_store(r), ops, n);
    size_t changed = 0, skipped = 0, failed = 0;
    const struct tm_error *first = NULL;
    for (size_t i = 0; i < n; i++) {
        int code = ops[i].err.code;
        if (code == 0)
            changed++;
        else if (code == TM_ECONFLICT || code == TM_ENOT_FOUND)
            skipped++;
        else if (failed++ == 0)
            first = &ops[i].err;
    }
    if (failed) {
        struct tm_error copy = *first;
        for (size_t i = 0; i < n; i++)
            store_op_release(&ops[i]);
        free(ops);
        free(ids);
        buf_release(&b);
        reply_error(r, &copy);
        return;
    }
    for (size_t i = 0; i < n; i++)
        store_op_release(&ops[i]);
    free(ops);
    free(ids);
    buf_printf(&b, "{\"action\":\"%s\",\"matched\":%lld,\"changed\":%zu,\"skipped\":%zu}",
               bulk_actions[a].name, (long long)matched, changed, skipped);
    reply_json(r, 200, &b);
}

const struct route v1_tasks_routes[] = {
    {"POST", "/v1/tasks", tasks_submit, PERM_OWNER},
    {"GET", "/v1/tasks", tasks_list, PERM_READ},
    {"POST", "/v1/tasks/batch", tasks_batch, PERM_OWNER},
    {"POST", "/v1/tasks/bulk", tasks_bulk, PERM_OWNER},
    {"GET", "/v1/tasks/:id/attempts", tasks_attempts, PERM_READ},
    {"GET", "/v1/tasks/:id", tasks_get, PERM_READ | PERM_WORKER},
    {"DELETE", "/v1/tasks/:id", tasks_delete, PERM_ADMIN},
    {"POST", "/v1/tasks/:id/cancel", tasks_control, PERM_OWNER, STORE_OP_CANCEL},
    {"POST", "/v1/tasks/:id/retry", tasks_control, PERM_OWNER, STORE_OP_RETRY},
    {"POST", "/v1/tasks/:id/pause", tasks_control, PERM_OWNER, STORE_OP_PAUSE},
    {"POST", "/v1/tasks/:id/resume", tasks_control, PERM_OWNER, STORE_OP_RESUME},
    {NULL, NULL, NULL, 0},
};
