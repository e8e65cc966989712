/*
 * v1_queues: claiming work from a queue (with a long-poll wait that parks
 * in the store's writer, so a task submitted during the wait is handed
 * over in the same commit) and the counts per queue and phase.
 */
#include <string.h>

#include "../common/buf.h"
#include "../common/task_json.h"
#include "../common/timeutil.h"
#include "server_int.h"
#include "v1_decode.h"

static void queues_claimed(struct req *r) {
    if (r->op.err.code) {
        reply_error(r, &r->op.err);
        return;
    }
    if (!r->op.claimed) {
        reply_empty(r, 204);
        return;
    }
    struct buf b;
    buf_init(&b);
    buf_puts(&b, "{\"task\":");
    task_json_write(&b, r->op.task);
    buf_puts(&b, ",\"lease_token\":");
    json_put_str(&b, r->op.new_lease_token);
    buf_putc(&b, '}');
    reply_json(r, 200, &b);
}

static void queues_claim(struct req *r) {
    const char *queue = r->param[0];
    if (!v1_is_name(queue, 64)) {
        reply_error_code(r, TM_EINVALID, "queue", "queue name must be 1-64 of [A-Za-z0-9._-]");
        return;
    }
    if (req_json_body(r, false)) return;
    store_op_init(&r->op, STORE_OP_CLAIM);
    r->op.ns = r->ns;
    r->op.queue = queue;
    int wait_s = 0;
    struct tm_error e;
    err_clear(&e);
    if (v1_decode_claim(r->json, req_limits(r), &r->op, &wait_s, &e)) {
        reply_error(r, &e);
        return;
    }
    if (wait_s > 0) r->op.deadline_ms = time_mono_ms() + (int64_t)wait_s * 1000;
    req_submit(r, queues_claimed);
}

static void queue_settings_write(struct buf *b, const char *name, const struct queue_settings *q,
                                 bool configured) {
    buf_puts(b, "{\"name\":");
    json_put_str(b, name);
    buf_puts(b, ",\"configured\":");
    json_put_bool(b, configured);
    buf_puts(b, ",\"settings\":{\"max_retries\":");
    json_put_int(b, q->max_retries);
    buf_puts(b, ",\"backoff_ms\":");
    json_put_int(b, q->backoff_ms);
    buf_puts(b, ",\"backoff_max_ms\":");
    json_put_int(b, q->backoff_max_ms);
    buf_putc(b, '}');
}

static void queues_configured(struct req *r) {
    if (r->op.err.code) {
        reply_error(r, &r->op.err);
        return;
    }
    struct buf b;
    buf_init(&b);
    queue_settings_write(&b, r->op.queue, &r->op.queue_settings, true);
    buf_putc(&b, '}');
    reply_json(r, 200, &b);
}

static void queues_configure(struct req *r) {
    const char *queue = r->param[0];
    if (!v1_is_name(queue, 64)) {
        reply_error_code(r, TM_EINVALID, "queue", "queue name must be 1-64 of [A-Za-z0-9._-]");
        return;
    }
    if (req_json_body(r, false)) return;
    store_op_init(&r->op, STORE_OP_QUEUE_SET);
    r->op.queue = queue;
    struct tm_error e;
    err_clear(&e);
    if (v1_decode_queue_settings(r->json, &r->op.queue_settings, &e)) {
        reply_error(r, &e);
        return;
    }
    req_submit(r, queues_configured);
}

static void queues_list(struct req *r) {
    struct queue_counts *qc = NULL;
    size_t n = 0;
    struct tm_error e;
    err_clear(&e);
    if (store_queue_counts(req_store(r), r->ns, &qc, &n, &e)) {
        reply_error(r, &e);
        return;
    }
    struct buf b;
    buf_init(&b);
    buf_puts(&b, "{\"queues\":[");
    for (size_t i = 0; i < n; i++) {
        if (i) buf_putc(&b, ',');
        queue_settings_write(&b, qc[i].queue, &qc[i].settings, qc[i].configured);
        buf_puts(&b, ",\"counts\":{");
        int64_t total = 0;
        for (int p = 0; p < TASK_PHASE_COUNT; p++) {
            json_put_key(&b, task_phase_name((enum task_phase)p), p == 0);
            json_put_int(&b, qc[i].phase[p]);
            total += qc[i].phase[p];
        }
        buf_puts(&b, "},\"paused\":");
        json_put_int(&b, qc[i].paused);
        buf_puts(&b, ",\"total\":");
        json_put_int(&b, total);
        buf_putc(&b, '}');
    }
    buf_puts(&b, "]}");
    queue_counts_free(qc, n);
    reply_json(r, 200, &b);
}

const struct route v1_queues_routes[] = {
    {"POST", "/v1/queues/:queue/claim", queues_claim, PERM_WORK},
    {"GET", "/v1/queues", queues_list, PERM_READ},
    {"PUT", "/v1/queues/:queue", queues_configure, PERM_ADMIN},
    {NULL, NULL, NULL, 0},
};
