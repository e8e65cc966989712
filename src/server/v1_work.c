/*
 * v1_work: a worker's calls on a task it holds: heartbeat, complete, fail
 * and release. Each carries the lease token from the claim; a stale token
 * is refused with 409 lease_mismatch, so a worker that lost its lease can
 * never overwrite the work of the next one.
 */
#include <string.h>

#include "../common/buf.h"
#include "server_int.h"
#include "v1_decode.h"

static void work_heartbeat_done(struct req *r) {
    if (r->op.err.code) {
        reply_error(r, &r->op.err);
        return;
    }
    const struct task *t = r->op.task;
    struct buf b;
    buf_init(&b);
    buf_puts(&b, "{\"cancel_requested\":");
    json_put_bool(&b, t->phase == TASK_STOPPING);
    buf_puts(&b, ",\"pause_requested\":");
    json_put_bool(&b, t->paused);
    buf_puts(&b, ",\"lease_expires_at\":");
    json_put_time(&b, t->lease_expires_at);
    buf_puts(&b, ",\"version\":");
    json_put_int(&b, t->version);
    buf_putc(&b, '}');
    reply_json(r, 200, &b);
}

static void work_finished(struct req *r) {
    if (r->op.err.code)
        reply_error(r, &r->op.err);
    else
        reply_task(r, 200, r->op.task);
}

static void work_call(struct req *r, enum store_op_kind kind, handler_fn done) {
    const char *id = r->param[0];
    if (!id_is_valid(id)) {
        struct tm_error e;
        err_set(&e, TM_ENOT_FOUND, "", "task '%.64s' not found", id);
        reply_error(r, &e);
        return;
    }
    if (req_json_body(r, false)) return;
    store_op_init(&r->op, kind);
    r->op.ns = r->ns;
    memcpy(r->op.id, id, ID_LEN + 1);
    struct tm_error e;
    err_clear(&e);
    if (v1_decode_worker_call(r->json, req_limits(r), &r->op, &e)) {
        reply_error(r, &e);
        return;
    }
    req_submit(r, done);
}

static void work_heartbeat(struct req *r) {
    work_call(r, STORE_OP_HEARTBEAT, work_heartbeat_done);
}

static void work_complete(struct req *r) {
    work_call(r, STORE_OP_COMPLETE, work_finished);
}

static void work_fail(struct req *r) {
    work_call(r, STORE_OP_FAIL, work_finished);
}

static void work_release(struct req *r) {
    work_call(r, STORE_OP_RELEASE, work_finished);
}

const struct route v1_work_routes[] = {
    {"POST", "/v1/tasks/:id/heartbeat", work_heartbeat, PERM_WORK},
    {"POST", "/v1/tasks/:id/complete", work_complete, PERM_WORK},
    {"POST", "/v1/tasks/:id/fail", work_fail, PERM_WORK},
    {"POST", "/v1/tasks/:id/release", work_release, PERM_WORK},
    {NULL, NULL, NULL, 0},
};
