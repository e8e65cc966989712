/*
 * v1_work: a worker's calls on a task it holds: heartbeat, complete, fail
 * and release. Each carries the lease token from the claim; a stale token
 * is refused with 409 lease_mismatch, so a worker that lost its lease can
 * never overwrite the work of the next one.
 */
#include <stdlib.h>
#include <string.h>

#include "../common/buf.h"
#include "../common/task_json.h"
#include "../common/timeutil.h"
#include "../common/xalloc.h"
#include "health.h"
#include "server_int.h"
#include "v1_decode.h"

/* What a heartbeat tells its worker, one task's or a batch entry's: stop,
 * pause, and when the lease runs out. `first`: no comma before it. */
static void work_heartbeat_write(struct buf *b, const struct task *t, bool first) {
    json_put_key(b, "cancel_requested", first);
    json_put_bool(b, t->phase == TASK_STOPPING);
    json_put_key(b, "pause_requested", false);
    json_put_bool(b, t->paused);
    json_put_key(b, "lease_expires_at", false);
    json_put_time(b, t->lease_expires_at);
}

static void work_heartbeat_done(struct req *r) {
    if (reply_if_op_failed(r)) return;
    const struct task *t = r->op.task;
    struct buf b;
    buf_init(&b);
    buf_putc(&b, '{');
    work_heartbeat_write(&b, t, true);
    json_put_key(&b, "version", false);
    json_put_int(&b, t->version);
    buf_putc(&b, '}');
    reply_json(r, 200, &b);
}

static void work_finished(struct req *r) {
    if (reply_if_op_failed(r)) return;
    health_observe(&r->op);
    reply_task(r, 200, r->op.task);
}

/* POST /v1/tasks/{id}/heartbeat|complete|fail|release: the route's arg is the op. */
static void work_call(struct req *r) {
    enum store_op_kind kind = (enum store_op_kind)r->route->arg;
    const char *id = v1_path_task_id(r);
    if (!id) return;
    if (req_json_body(r, false)) return;
    v1_task_op_init(r, kind, id);
    struct tm_error e;
    err_clear(&e);
    if (v1_decode_worker_call(r->json, req_limits(r), &r->op, &e)) {
        reply_error(r, &e);
        return;
    }
    req_submit(r, kind == STORE_OP_HEARTBEAT ? work_heartbeat_done : work_finished);
}

/* ---- The batched protocol: many tasks per request (docs/api.md section 7.8a) ---- */

#define WORK_BATCH_MAX 1000 /* entries of one batched call */
#define CLAIM_MANY_MAX 100  /* tasks of one claim */

/* The request's ops, freed with it. */
struct work_batch {
    struct store_op *ops;
    size_t n;
};

static void work_batch_free(void *p) {
    struct work_batch *wb = p;
    for (size_t i = 0; i < wb->n; i++)
        store_op_release(&wb->ops[i]);
    free(wb->ops);
    free(wb);
}

static struct work_batch *work_batch_new(struct req *r, size_t n) {
    struct work_batch *wb = xcalloc(1, sizeof *wb);
    wb->ops = xcalloc(n, sizeof *wb->ops);
    wb->n = n;
    r->owned = wb;
    r->owned_free = work_batch_free;
    return wb;
}

/* Writes {"code","message","field"} of an entry's error, "field" left out
 * when none applies (as every other error of the API). */
static void work_put_error(struct buf *b, const struct tm_error *e) {
    buf_puts(b, "\"error\":{\"code\":");
    json_put_str(b, err_slug(e->code));
    json_put_key(b, "message", false);
    json_put_str(b, e->message[0] ? e->message : err_default_message(e->code));
    if (e->field[0]) {
        json_put_key(b, "field", false);
        json_put_str(b, e->field);
    }
    buf_putc(b, '}');
}

static void claims_many_done(struct req *r) {
    struct work_batch *wb = r->owned;
    /* Tasks claimed for a client that has gone (the store saw it, or a
     * look now) go back when the request ends (auth_wait_remove); when all
     * of them do, the reply is 503 with no task, as a one-task claim's. */
    bool gone = false, looked = false, any = false, all_back = true;
    for (size_t i = 0; i < wb->n; i++) {
        if (!wb->ops[i].claimed || wb->ops[i].err.code) continue;
        if (!looked) gone = req_client_gone(r), looked = true;
        wb->ops[i].withdrawn |= gone;
        any = true;
        all_back &= wb->ops[i].withdrawn;
    }
    if (any && all_back) {
        reply_error_code(r, TM_EUNAVAILABLE, "", "the client closed its connection");
        return;
    }
    struct buf b;
    buf_init(&b);
    buf_puts(&b, "{\"claims\":[");
    size_t got = 0;
    const struct tm_error *err = NULL;
    for (size_t i = 0; i < wb->n; i++) {
        struct store_op *op = &wb->ops[i];
        if (op->err.code && !err) err = &op->err;
        if (!op->claimed) continue;
        health_observe(op);
        buf_puts(&b, got++ ? ",{\"task\":" : "{\"task\":");
        store_op_write_task(&b, op, op->task);
        json_put_key(&b, "lease_token", false);
        json_put_str(&b, op->new_lease_token);
        buf_putc(&b, '}');
    }
    buf_puts(&b, "]}");
    if (!got && err) { /* nothing claimed and a failure: say so (503 and such) */
        buf_release(&b);
        reply_error(r, err);
        return;
    }
    if (!got) {
        buf_release(&b);
        reply_empty(r, 204);
        return;
    }
    reply_json(r, 200, &b);
}

/*
 * POST /v1/queues/{queue}/claims {"worker", "max": 1..100, "types",
 * "lease_seconds", "wait_seconds"}: up to max tasks, each with its own
 * lease token. With wait_seconds and nothing ready, waits for the first.
 */
static void queues_claim_many(struct req *r) {
    const char *queue = v1_path_queue(r);
    if (!queue) return;
    if (req_json_body(r, false)) return;
    json_t *mx = json_object_get(r->json, "max");
    if (!json_is_integer(mx) || json_integer_value(mx) < 1 ||
        json_integer_value(mx) > CLAIM_MANY_MAX) {
        struct tm_error e;
        err_set(&e, TM_EINVALID, "max", "'max' must be an integer from 1 to %d", CLAIM_MANY_MAX);
        reply_error(r, &e);
        return;
    }
    size_t n = (size_t)json_integer_value(mx);
    json_object_del(r->json, "max");
    struct work_batch *wb = work_batch_new(r, n);
    int wait_s = 0;
    struct tm_error e;
    err_clear(&e);
    store_op_init(&wb->ops[0], STORE_OP_CLAIM);
    if (v1_decode_claim(r->json, req_limits(r), &wb->ops[0], &wait_s, &e)) {
        reply_error(r, &e);
        return;
    }
    wb->ops[0].ns = r->ns;
    wb->ops[0].queue = queue;
    for (size_t i = 1; i < n; i++) {
        wb->ops[i] = wb->ops[0]; /* the same claim, borrowing the same strings */
        wb->ops[i].next = NULL;
    }
    /* Only the first waits: the others take what is ready now. */
    if (wait_s > 0) wb->ops[0].deadline_ms = time_mono_ms() + (int64_t)wait_s * 1000;
    /* Listed whether it waits or not, so that the tasks it claims go back
     * when its reply is known lost (auth_watch.c); one that waits is
     * listed by req_submit_many anyway. */
    auth_wait_add(r, wb->ops, n);
    req_submit_many(r, wb->ops, n, claims_many_done);
}

static void work_batch_done(struct req *r) {
    struct work_batch *wb = r->owned;
    struct buf b;
    buf_init(&b);
    buf_puts(&b, "{\"results\":[");
    for (size_t i = 0; i < wb->n; i++) {
        struct store_op *op = &wb->ops[i];
        const struct tm_error *e = op->err.code ? &op->err : NULL;
        buf_puts(&b, i ? ",{\"id\":" : "{\"id\":");
        json_put_str(&b, op->id[0] ? op->id : NULL);
        buf_putc(&b, ',');
        if (e) {
            work_put_error(&b, e);
        } else {
            const struct task *t = op->task;
            health_observe(op);
            buf_puts(&b, "\"phase\":");
            json_put_str(&b, task_phase_name(t->phase));
            json_put_key(&b, "version", false);
            json_put_int(&b, t->version);
            if (op->kind == STORE_OP_HEARTBEAT) {
                work_heartbeat_write(&b, t, false);
            } else {
                json_put_key(&b, "completion_status", false);
                json_put_str(&b, task_status_name(t->status));
            }
        }
        buf_putc(&b, '}');
    }
    buf_puts(&b, "]}");
    reply_json(r, 200, &b);
}

/*
 * POST /v1/work/heartbeat|complete|fail|release {"entries": [{"id",
 * "lease_token", ...the fields of the one-task call}]}: each entry is its
 * task's call (the route's arg is the op), with its own fenced lease; one
 * bad entry fails only itself. The reply lists each entry's outcome in order.
 */
static void work_batch(struct req *r) {
    enum store_op_kind kind = (enum store_op_kind)r->route->arg;
    static const char *const fields[] = {"entries", NULL};
    if (req_json_fields(r, false, fields)) return;
    json_t *entries = json_object_get(r->json, "entries");
    size_t n = json_array_size(entries);
    if (!json_is_array(entries) || n == 0 || n > WORK_BATCH_MAX) {
        struct tm_error e;
        err_set(&e, TM_EINVALID, "entries", "'entries' must be an array of 1 to %d calls",
                WORK_BATCH_MAX);
        reply_error(r, &e);
        return;
    }
    struct work_batch *wb = work_batch_new(r, n);
    size_t good = 0;
    for (size_t i = 0; i < n; i++) {
        json_t *entry = json_array_get(entries, i);
        struct store_op *op = &wb->ops[i];
        store_op_init(op, kind);
        op->ns = r->ns;
        /* An entry refused here keeps its error in op->err and is not sent to the store. */
        json_t *id = json_object_get(entry, "id");
        if (!json_is_object(entry)) {
            err_set(&op->err, TM_EINVALID, "", "'entries[%zu]' must be an object", i);
            continue;
        }
        if (!json_is_string(id) || !id_is_valid(json_string_value(id))) {
            err_set(&op->err, TM_EINVALID, "id", "'entries[%zu].id' must be a task id", i);
            continue;
        }
        memcpy(op->id, json_string_value(id), ID_LEN + 1);
        json_t *call = json_copy(entry); /* without its id, as the one-task call takes it */
        json_object_del(call, "id");
        json_array_set_new(entries, i, call); /* kept alive by r->json; the op borrows from it */
        struct tm_error e;
        err_clear(&e);
        if (v1_decode_worker_call(call, req_limits(r), op, &e)) {
            op->err = e;
            continue;
        }
        good++;
    }
    if (!good) { /* nothing for the store: answer now */
        work_batch_done(r);
        return;
    }
    req_submit_many(r, wb->ops, n, work_batch_done);
}

const struct route v1_work_routes[] = {
    {"POST", "/v1/tasks/:id/heartbeat", work_call, PERM_WORK, STORE_OP_HEARTBEAT},
    {"POST", "/v1/tasks/:id/complete", work_call, PERM_WORK, STORE_OP_COMPLETE},
    {"POST", "/v1/tasks/:id/fail", work_call, PERM_WORK, STORE_OP_FAIL},
    {"POST", "/v1/tasks/:id/release", work_call, PERM_WORK, STORE_OP_RELEASE},
    {"POST", "/v1/queues/:queue/claims", queues_claim_many, PERM_WORK},
    {"POST", "/v1/work/heartbeat", work_batch, PERM_WORK, STORE_OP_HEARTBEAT},
    {"POST", "/v1/work/complete", work_batch, PERM_WORK, STORE_OP_COMPLETE},
    {"POST", "/v1/work/fail", work_batch, PERM_WORK, STORE_OP_FAIL},
    {"POST", "/v1/work/release", work_batch, PERM_WORK, STORE_OP_RELEASE},
    {NULL, NULL, NULL, 0},
};
