/*
 * health: /healthz (is the store answering?) and /metrics (Prometheus
 * text format: replies by status class, the writer's batches and ops,
 * expired leases, parked claims and watches, tasks per queue and phase).
 */
#include <stdio.h>

#include "../common/buf.h"
#include "../common/timeutil.h"
#include "event_hub.h"
#include "server_int.h"
#include "webhook.h"

static void health_check(struct req *r) {
    struct tm_error e;
    err_clear(&e);
    if (store_ping(req_store(r), &e)) {
        reply_error_code(r, TM_EUNAVAILABLE, "", "the store does not answer");
        return;
    }
    struct buf b;
    buf_init(&b);
    buf_puts(&b, "{\"status\":\"ok\",\"store\":");
    json_put_str(&b, store_backend_name(req_store(r)));
    buf_putc(&b, '}');
    reply_json(r, 200, &b);
}

static void health_metrics(struct req *r) {
    struct server *srv = r->srv;
    struct buf b;
    buf_init(&b);
    buf_puts(&b,
             "# HELP taskmill_http_replies_total HTTP replies sent, by status class.\n"
             "# TYPE taskmill_http_replies_total counter\n");
    for (int c = 2; c <= 5; c++)
        buf_printf(&b, "taskmill_http_replies_total{class=\"%dxx\"} %llu\n", c,
                   (unsigned long long)atomic_load(&srv->replies[c]));
    struct store_stats st;
    store_get_stats(srv->store, &st);
    struct event_hub_stats hs;
    event_hub_get_stats(srv->hub, &hs);
    struct webhook_sender_stats ws;
    webhook_sender_get_stats(srv->webhooks, &ws);
    const struct {
        const char *name, *type, *help;
        uint64_t v;
    } m[] = {
        {"taskmill_store_batches_total", "counter", "Group-commit transactions.", st.batches},
        {"taskmill_store_ops_total", "counter", "Write operations applied.", st.ops},
        {"taskmill_store_commits_failed_total", "counter", "Batches rolled back.",
         st.commits_failed},
        {"taskmill_store_batch_retries_total", "counter",
         "Batches applied again after losing a race with another node.", st.batch_retries},
        {"taskmill_store_sweeps_total", "counter", "Sweeps for due tasks.", st.sweeps},
        {"taskmill_feed_events_total", "counter",
         "Events read back from the shared log (PostgreSQL: every node's).", st.feed_events},
        {"taskmill_feed_wakeups_total", "counter", "Announcements of new events from other nodes.",
         st.feed_wakeups},
        {"taskmill_feed_errors_total", "counter",
         "Failed reads of the shared log or lost listening connections.", st.feed_errors},
        {"taskmill_schedule_fires_total", "counter",
         "Slots fired by schedules (a task launched, skipped by the overlap policy, or an error).",
         st.schedule_fires},
        {"taskmill_schedule_missed_total", "counter",
         "Schedule slots older than their catch-up window, counted and not fired.",
         st.schedule_missed},
        {"taskmill_leases_expired_total", "counter", "Leases that ran out.", st.leases_expired},
        {"taskmill_parked_claims", "gauge", "Claims waiting for work.", st.parked_claims},
        {"taskmill_parked_watches", "gauge", "Long-polls waiting for a change.", st.parked_watches},
        {"taskmill_events_appended_total", "counter", "Events appended to the log.",
         st.events_appended},
        {"taskmill_event_seq", "gauge", "The last event sequence committed.", st.event_seq},
        {"taskmill_events_pruned_total", "counter", "Events removed by retention.",
         st.events_pruned},
        {"taskmill_events_pruned_through", "gauge", "Events at or below this seq are gone.",
         st.events_pruned_through},
        {"taskmill_sse_streams", "gauge", "Open SSE streams.", hs.streams},
        {"taskmill_sse_events_sent_total", "counter", "Events written to SSE streams.",
         hs.events_sent},
        {"taskmill_sse_slow_disconnects_total", "counter", "Streams cut off for falling behind.",
         hs.slow_disconnects},
        {"taskmill_sse_buffer_events", "gauge", "Events held in memory for streams.",
         hs.buffer_events},
        {"taskmill_sse_buffer_bytes", "gauge", "Bytes of the event frames held in memory.",
         hs.buffer_bytes},
        {"taskmill_webhook_attempts_total", "counter", "Webhook delivery attempts.", ws.attempts},
        {"taskmill_webhook_delivered_total", "counter", "Webhook deliveries done.", ws.delivered},
        {"taskmill_webhook_failed_total", "counter", "Webhook deliveries given up.", ws.failed},
        {"taskmill_webhook_retries_total", "counter", "Webhook attempts to retry later.",
         ws.retried},
    };
    for (size_t i = 0; i < sizeof m / sizeof m[0]; i++)
        buf_printf(&b, "# HELP %s %s\n# TYPE %s %s\n%s %llu\n", m[i].name, m[i].help, m[i].name,
                   m[i].type, m[i].name, (unsigned long long)m[i].v);
    struct queue_counts *qc = NULL;
    size_t n = 0;
    struct tm_error e;
    err_clear(&e);
    if (store_queue_counts(srv->store, r->ns, &qc, &n, &e) == 0) {
        buf_puts(&b,
                 "# HELP taskmill_tasks Tasks stored, by queue and phase.\n"
                 "# TYPE taskmill_tasks gauge\n");
        for (size_t i = 0; i < n; i++)
            for (int p = 0; p < TASK_PHASE_COUNT; p++)
                buf_printf(&b, "taskmill_tasks{queue=\"%s\",phase=\"%s\"} %lld\n", qc[i].queue,
                           task_phase_name((enum task_phase)p), (long long)qc[i].phase[p]);
        queue_counts_free(qc, n);
    }
    reply_body(r, 200, &b, "text/plain; version=0.0.4");
}

const struct route health_routes[] = {
    {"GET", "/healthz", health_check, PERM_PUBLIC},
    {"GET", "/metrics", health_metrics, PERM_ADMIN | PERM_READER},
    {NULL, NULL, NULL, 0},
};
