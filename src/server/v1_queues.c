/*
 * v1_queues: claiming work from a queue (with a long-poll wait that parks
 * in the store's writer, so a task submitted during the wait is handed
 * over in the same commit) and the counts per queue and phase.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/buf.h"
#include "../common/task_json.h"
#include "../common/timeutil.h"
#include "health.h"
#include "server_int.h"
#include "v1_decode.h"

const char *v1_path_queue(struct req *r) {
    const char *queue = r->param[0];
    if (v1_is_name(queue, 64)) return queue;
    reply_error_code(r, TM_EINVALID, "queue", "queue name must be 1-64 of [A-Za-z0-9._-]");
    return NULL;
}

static void queues_claimed(struct req *r) {
    if (reply_if_op_failed(r)) return;
    if (!r->op.claimed) {
        reply_empty(r, 204);
        return;
    }
    health_observe(&r->op);
    /* A client gone since the claim committed (the store saw it, or a look
     * now) gets no task: 503, and the task goes back to its queue when the
     * request ends (auth_wait_remove), rather than out to a dead socket. */
    if (r->op.withdrawn || req_client_gone(r)) {
        r->op.withdrawn = true;
        reply_error_code(r, TM_EUNAVAILABLE, "", "the client closed its connection");
        return;
    }
    struct buf b;
    buf_init(&b);
    buf_puts(&b, "{\"task\":");
    store_op_write_task(&b, &r->op, r->op.task);
    json_put_key(&b, "lease_token", false);
    json_put_str(&b, r->op.new_lease_token);
    buf_putc(&b, '}');
    reply_json(r, 200, &b);
}

/* Reads the path's queue and the JSON body, then inits r->op as a `kind`
 * op on that queue; false after a reply. */
static bool queue_op_begin(struct req *r, enum store_op_kind kind) {
    const char *queue = v1_path_queue(r);
    if (!queue || req_json_body(r, false)) return false;
    store_op_init(&r->op, kind);
    r->op.queue = queue;
    return true;
}

static void queues_claim(struct req *r) {
    if (!queue_op_begin(r, STORE_OP_CLAIM)) return;
    r->op.ns = r->ns;
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
    json_put_key(b, "configured", false);
    json_put_bool(b, configured);
    json_put_key(b, "settings", false);
    buf_putc(b, '{');
    json_put_key(b, "max_retries", true);
    json_put_int(b, q->max_retries);
    json_put_key(b, "backoff_ms", false);
    json_put_int(b, q->backoff_ms);
    json_put_key(b, "backoff_max_ms", false);
    json_put_int(b, q->backoff_max_ms);
    /* Only the phases the queue sets: one left out keeps the server's age. */
    json_put_key(b, "retention", false);
    buf_putc(b, '{');
    bool first = true;
    for (int p = 0; p < TASK_PHASE_COUNT; p++) {
        if (q->retention_seconds[p] < 0) continue;
        char key[32];
        snprintf(key, sizeof key, "%s_seconds", task_phase_name((enum task_phase)p));
        json_put_key(b, key, first);
        json_put_int(b, q->retention_seconds[p]);
        first = false;
    }
    buf_puts(b, "}}");
}

static void queues_configured(struct req *r) {
    if (reply_if_op_failed(r)) return;
    struct buf b;
    buf_init(&b);
    queue_settings_write(&b, r->op.queue, &r->op.queue_settings, true);
    buf_putc(&b, '}');
    reply_json(r, 200, &b);
}

static void queues_configure(struct req *r) {
    if (!queue_op_begin(r, STORE_OP_QUEUE_SET)) return;
    struct tm_error e;
    err_clear(&e);
    if (v1_decode_queue_settings(r->json, &r->op.queue_settings, &e)) {
        reply_error(r, &e);
        return;
    }
    req_submit(r, queues_configured);
}

/* One entry of GET /v1/queues. */
static void queue_entry_write(struct buf *b, const struct queue_counts *q) {
    queue_settings_write(b, q->queue, &q->settings, q->configured);
    json_put_key(b, "state", false);
    json_put_str(b, q->settings.paused ? "paused" : "active");
    json_put_key(b, "counts", false);
    buf_putc(b, '{');
    int64_t total = 0;
    for (int p = 0; p < TASK_PHASE_COUNT; p++) {
        json_put_key(b, task_phase_name((enum task_phase)p), p == 0);
        json_put_int(b, q->phase[p]);
        total += q->phase[p];
    }
    buf_puts(b, "},\"paused\":");
    json_put_int(b, q->paused);
    json_put_key(b, "total", false);
    json_put_int(b, total);
    buf_putc(b, '}');
}

/* Replies with the queues as GET /v1/queues lists them, or with only the
 * entry of the queue `only`. */
static void queues_reply(struct req *r, const char *only) {
    struct queue_counts *qc = NULL;
    size_t n = 0, listed = 0;
    struct tm_error e;
    err_clear(&e);
    if (store_queue_counts(req_store(r), r->ns, &qc, &n, &e)) {
        reply_error(r, &e);
        return;
    }
    struct buf b;
    buf_init(&b);
    if (!only) buf_puts(&b, "{\"queues\":[");
    for (size_t i = 0; i < n; i++) {
        if (only && (listed || strcmp(qc[i].queue, only) != 0)) continue;
        if (listed++) buf_putc(&b, ',');
        queue_entry_write(&b, &qc[i]);
    }
    queue_counts_free(qc, n);
    if (!only) {
        buf_puts(&b, "]}");
    } else if (!listed) { /* only another node's change in between could do that */
        buf_release(&b);
        reply_error_code(r, TM_ENOT_FOUND, "queue", "queue not found");
        return;
    }
    reply_json(r, 200, &b);
}

static void queues_list(struct req *r) {
    queues_reply(r, NULL);
}

/* After a pause or resume: the queue as GET /v1/queues lists it. Not a
 * task's change, so no event: the log says who did it, once the store
 * has, and only when the queue's state moved (a repeat is a no-op). */
static void queues_paused(struct req *r) {
    if (reply_if_op_failed(r)) return;
    if (r->op.changed)
        fprintf(stderr, "taskmill: queue '%s' %s by '%s'\n", r->op.queue,
                r->op.queue_settings.paused ? "paused" : "resumed",
                r->token_id[0] ? r->token_id : "open mode");
    queues_reply(r, r->op.queue);
}

/* POST /v1/queues/{queue}/pause and /resume (the route's arg: 1 pauses,
 * 0 resumes): an empty body or {}. */
static void queues_pause_set(struct req *r) {
    bool paused = r->route->arg != 0;
    const char *queue = v1_path_queue(r);
    if (!queue) return;
    if (req_json_fields(r, true, NULL)) return;
    store_op_init(&r->op, STORE_OP_QUEUE_PAUSE);
    r->op.queue = queue;
    r->op.queue_settings.paused = paused;
    req_submit(r, queues_paused);
}

static int queues_stats_arg(void *cls, const char *key, const char *value) {
    (void)value;
    if (strcmp(key, "range") == 0) return 0;
    return err_set(cls, TM_EINVALID, key, "unknown query parameter '%.64s'", key);
}

/*
 * GET /v1/queues/{queue}/stats?range=hour|day: per bucket (a minute over
 * the last hour, 15 minutes over the last day; the last bucket holds the
 * current minute), the tasks submitted, completed and failed, and the
 * queue latency of the claims (ms from ready to claimed; null without claims).
 */
static void queues_stats(struct req *r) {
    const char *queue = v1_path_queue(r);
    if (!queue) return;
    const char *range = "hour";
    int64_t step = 1, nb = 60;
    const char *rv = req_query(r, "range");
    if (rv) {
        if (strcmp(rv, "hour") == 0) {
            range = "hour";
        } else if (strcmp(rv, "day") == 0) {
            range = "day";
            step = 15;
            nb = 96;
        } else {
            reply_error_code(r, TM_EINVALID, "range", "'range' must be 'hour' or 'day'");
            return;
        }
    }
    struct tm_error e;
    err_clear(&e);
    if (req_query_each(r, queues_stats_arg, &e)) {
        reply_error(r, &e);
        return;
    }
    int64_t now_min = time_now_ms() / 60000;
    int64_t end = (now_min / step + 1) * step, start = end - nb * step;
    struct queue_stat *st = NULL;
    size_t n = 0;
    if (store_queue_stats(req_store(r), r->ns, queue, start, end, &st, &n, &e)) {
        reply_error(r, &e);
        return;
    }
    struct buf b;
    buf_init(&b);
    buf_puts(&b, "{\"queue\":");
    json_put_str(&b, queue);
    json_put_key(&b, "range", false);
    json_put_str(&b, range);
    buf_printf(&b, ",\"bucket_seconds\":%lld,\"buckets\":[", (long long)(step * 60));
    size_t k = 0;
    for (int64_t i = 0; i < nb; i++) {
        int64_t from = start + i * step;
        struct queue_stat sum = {0};
        for (; k < n && st[k].minute < from + step; k++) {
            if (st[k].minute < from) continue;
            sum.submitted += st[k].submitted;
            sum.completed += st[k].completed;
            sum.failed += st[k].failed;
            sum.latency_sum += st[k].latency_sum;
            sum.latency_n += st[k].latency_n;
            if (st[k].latency_max > sum.latency_max) sum.latency_max = st[k].latency_max;
        }
        char at[TIME_RFC3339_LEN + 1];
        time_format_rfc3339(from * 60000, at);
        buf_printf(&b,
                   "%s{\"at\":\"%s\",\"submitted\":%lld,\"completed\":%lld,\"failed\":%lld,"
                   "\"latency_ms_avg\":",
                   i ? "," : "", at, (long long)sum.submitted, (long long)sum.completed,
                   (long long)sum.failed);
        if (sum.latency_n)
            buf_printf(&b, "%.1f,\"latency_ms_max\":%lld}",
                       (double)sum.latency_sum / (double)sum.latency_n, (long long)sum.latency_max);
        else
            buf_puts(&b, "null,\"latency_ms_max\":null}");
    }
    buf_puts(&b, "]}");
    free(st);
    reply_json(r, 200, &b);
}

const struct route v1_queues_routes[] = {
    {"POST", "/v1/queues/:queue/claim", queues_claim, PERM_WORK},
    {"GET", "/v1/queues", queues_list, PERM_READ},
    {"PUT", "/v1/queues/:queue", queues_configure, PERM_ADMIN},
    {"POST", "/v1/queues/:queue/pause", queues_pause_set, PERM_ADMIN, true},
    {"POST", "/v1/queues/:queue/resume", queues_pause_set, PERM_ADMIN, false},
    {"GET", "/v1/queues/:queue/stats", queues_stats, PERM_READ},
    {NULL, NULL, NULL, 0},
};
