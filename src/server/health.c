/*
 * health: /healthz (is the store answering? GET and HEAD; 200 names a
 * refusal of writes that ends by itself), /readyz (may this node take
 * traffic: the store answers a query on its tables, which exist once the
 * migrations ran, takes writes, and the server is not stopping) and
 * /metrics (Prometheus text format: replies by status class, the writer's
 * batches and ops, expired leases, parked claims and watches, tasks per
 * queue and phase; time queued and time running per queue and type and
 * outcomes per type, from this node's own requests (health.h); build_info;
 * the process's memory, CPU, descriptors and start time from /proc).
 *
 * The observations live in one process-wide table under a mutex, bounded:
 * past HEALTH_SERIES_MAX (queue, type) pairs or types, new ones are
 * counted under queue and type "_other", so a flood of type names cannot
 * grow memory or the scrape without end. docs/operations.md describes
 * every metric and what each node reports when several share a database.
 */
#include "health.h"

#include <dirent.h>
#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/time.h>
#include <unistd.h>

#include "../common/buf.h"
#include "../common/timeutil.h"
#include "../common/version.h"
#include "event_hub.h"
#include "server_int.h"
#include "webhook.h"

/* ---- Observations (health.h) ---- */

#define HEALTH_SERIES_MAX 500
#define HEALTH_LABEL_MAX  128 /* bytes of a type kept as a label */

/* Upper bounds of the duration histograms' buckets, in seconds (then +Inf). */
static const double health_buckets[] = {0.005, 0.01, 0.05, 0.1, 0.5,  1,    2.5,  5,     10,
                                        30,    60,   300,  900, 1800, 3600, 7200, 21600, 86400};
#define HEALTH_NBUCKETS (sizeof health_buckets / sizeof health_buckets[0])

struct health_hist {
    uint64_t bucket[HEALTH_NBUCKETS]; /* observations <= the bound (not cumulative here) */
    uint64_t count;
    double sum;
};

struct health_series {
    char queue[HEALTH_LABEL_MAX + 1], type[HEALTH_LABEL_MAX + 1];
    struct health_hist queued, running;
};

struct health_outcomes {
    char type[HEALTH_LABEL_MAX + 1];
    uint64_t completed, failed;
};

static pthread_mutex_t health_lock = PTHREAD_MUTEX_INITIALIZER;
static struct health_series health_series[HEALTH_SERIES_MAX + 1]; /* the last: "_other" */
static size_t health_nseries;
static struct health_outcomes health_types[HEALTH_SERIES_MAX + 1];
static size_t health_ntypes;

static void health_hist_add(struct health_hist *h, int64_t ms) {
    double sec = ms < 0 ? 0 : (double)ms / 1000.0;
    for (size_t i = 0; i < HEALTH_NBUCKETS; i++) {
        if (sec <= health_buckets[i]) {
            h->bucket[i]++;
            break;
        }
    }
    h->count++;
    h->sum += sec;
}

/* The series of (queue, type), made on first use; "_other" once the table is full. */
static struct health_series *health_series_of(const char *queue, const char *type) {
    for (size_t i = 0; i < health_nseries; i++)
        if (strncmp(health_series[i].queue, queue, HEALTH_LABEL_MAX) == 0 &&
            strncmp(health_series[i].type, type, HEALTH_LABEL_MAX) == 0)
            return &health_series[i];
    struct health_series *s = &health_series[HEALTH_SERIES_MAX];
    if (health_nseries < HEALTH_SERIES_MAX) {
        s = &health_series[health_nseries++];
        snprintf(s->queue, sizeof s->queue, "%s", queue);
        snprintf(s->type, sizeof s->type, "%s", type);
    } else if (!s->queue[0]) {
        snprintf(s->queue, sizeof s->queue, "_other");
        snprintf(s->type, sizeof s->type, "_other");
    }
    return s;
}

static struct health_outcomes *health_type_of(const char *type) {
    for (size_t i = 0; i < health_ntypes; i++)
        if (strncmp(health_types[i].type, type, HEALTH_LABEL_MAX) == 0) return &health_types[i];
    struct health_outcomes *o = &health_types[HEALTH_SERIES_MAX];
    if (health_ntypes < HEALTH_SERIES_MAX) {
        o = &health_types[health_ntypes++];
        snprintf(o->type, sizeof o->type, "%s", type);
    } else if (!o->type[0]) {
        snprintf(o->type, sizeof o->type, "_other");
    }
    return o;
}

void health_observe(const struct store_op *op) {
    const struct task *t = op->task;
    if (!t || op->err.code) return;
    bool claim = op->kind == STORE_OP_CLAIM && op->claimed;
    bool done = op->kind == STORE_OP_COMPLETE || op->kind == STORE_OP_FAIL;
    if (!claim && !done) return;
    const char *queue = t->queue ? t->queue : "", *type = t->type ? t->type : "";
    pthread_mutex_lock(&health_lock);
    struct health_series *s = health_series_of(queue, type);
    if (claim) {
        /* From when it last became ready (created, due, or put back) to this claim. */
        if (t->ready_at > 0 && t->started_at >= t->ready_at)
            health_hist_add(&s->queued, t->started_at - t->ready_at);
    } else {
        int64_t end = t->completed_at > 0 ? t->completed_at : time_now_ms();
        if (t->started_at > 0 && end >= t->started_at)
            health_hist_add(&s->running, end - t->started_at);
        struct health_outcomes *o = health_type_of(type);
        if (op->kind == STORE_OP_COMPLETE && t->phase == TASK_COMPLETED) o->completed++;
        if (op->kind == STORE_OP_FAIL && t->phase == TASK_FAILED) o->failed++;
    }
    pthread_mutex_unlock(&health_lock);
}

/* A label value in Prometheus's text format: backslash, quote and newline escaped. */
static void health_label(struct buf *b, const char *v) {
    for (; *v; v++) {
        if (*v == '\\' || *v == '"')
            buf_putc(b, '\\'), buf_putc(b, *v);
        else if (*v == '\n')
            buf_puts(b, "\\n");
        else
            buf_putc(b, *v);
    }
}

static void health_hist_write(struct buf *b, const char *name, const struct health_series *s,
                              const struct health_hist *h) {
    uint64_t cum = 0;
    for (size_t i = 0; i <= HEALTH_NBUCKETS; i++) {
        cum += i < HEALTH_NBUCKETS ? h->bucket[i] : 0;
        buf_printf(b, "%s_bucket{queue=\"", name);
        health_label(b, s->queue);
        buf_puts(b, "\",type=\"");
        health_label(b, s->type);
        if (i < HEALTH_NBUCKETS)
            buf_printf(b, "\",le=\"%g\"} %llu\n", health_buckets[i], (unsigned long long)cum);
        else
            buf_printf(b, "\",le=\"+Inf\"} %llu\n", (unsigned long long)h->count);
    }
    const char *parts[2] = {"sum", "count"};
    for (int p = 0; p < 2; p++) {
        buf_printf(b, "%s_%s{queue=\"", name, parts[p]);
        health_label(b, s->queue);
        buf_puts(b, "\",type=\"");
        health_label(b, s->type);
        if (p == 0)
            buf_printf(b, "\"} %.6f\n", h->sum);
        else
            buf_printf(b, "\"} %llu\n", (unsigned long long)h->count);
    }
}

static void health_observations_write(struct buf *b) {
    pthread_mutex_lock(&health_lock);
    size_t n = health_nseries + (health_series[HEALTH_SERIES_MAX].queue[0] ? 1 : 0);
    const struct {
        const char *name, *help;
        size_t off;
    } hists[] = {
        {"taskmill_task_queued_seconds",
         "Time from when a task became ready (created, due, or put back) to its claim, "
         "observed at the claims this node served.",
         offsetof(struct health_series, queued)},
        {"taskmill_task_running_seconds",
         "Time from a claim to the completion or failure of that attempt, observed at the "
         "reports this node served.",
         offsetof(struct health_series, running)},
    };
    for (size_t k = 0; k < 2; k++) {
        buf_printf(b, "# HELP %s %s\n# TYPE %s histogram\n", hists[k].name, hists[k].help,
                   hists[k].name);
        for (size_t i = 0; i < n; i++) {
            const struct health_series *s =
                &health_series[i < health_nseries ? i : HEALTH_SERIES_MAX];
            const struct health_hist *h =
                (const struct health_hist *)((const char *)s + hists[k].off);
            if (h->count) health_hist_write(b, hists[k].name, s, h);
        }
    }
    size_t nt = health_ntypes + (health_types[HEALTH_SERIES_MAX].type[0] ? 1 : 0);
    const char *names[2] = {"taskmill_tasks_completed_total", "taskmill_tasks_failed_total"};
    const char *helps[2] = {"Tasks completed through this node, by type.",
                            "Tasks failed for good through this node's fail calls, by type."};
    for (int k = 0; k < 2; k++) {
        buf_printf(b, "# HELP %s %s\n# TYPE %s counter\n", names[k], helps[k], names[k]);
        for (size_t i = 0; i < nt; i++) {
            const struct health_outcomes *o =
                &health_types[i < health_ntypes ? i : HEALTH_SERIES_MAX];
            buf_printf(b, "%s{type=\"", names[k]);
            health_label(b, o->type);
            buf_printf(b, "\"} %llu\n", (unsigned long long)(k ? o->failed : o->completed));
        }
    }
    pthread_mutex_unlock(&health_lock);
}

/* ---- The process (Prometheus's standard process_* names), from /proc ---- */

static void health_process_write(struct buf *b) {
    long tick = sysconf(_SC_CLK_TCK), page = sysconf(_SC_PAGESIZE);
    FILE *f = fopen("/proc/self/stat", "r");
    char stat[2048] = "";
    if (f) {
        if (!fgets(stat, sizeof stat, f)) stat[0] = '\0';
        fclose(f);
    }
    /* The fields after the command name, which may hold spaces: from the last ')'. */
    const char *p = strrchr(stat, ')');
    unsigned long long utime = 0, stime = 0, start = 0, vsize = 0, rss = 0;
    if (p && tick > 0) {
        /* state(3) ... utime(14) stime(15) ... starttime(22) vsize(23) rss(24) */
        int field = 2;
        for (const char *q = p + 1; *q && field < 24;) {
            while (*q == ' ')
                q++;
            field++;
            unsigned long long v = strtoull(q, NULL, 10);
            if (field == 14) utime = v;
            if (field == 15) stime = v;
            if (field == 22) start = v;
            if (field == 23) vsize = v;
            if (field == 24) rss = v;
            while (*q && *q != ' ')
                q++;
        }
    }
    double boot = 0;
    f = fopen("/proc/stat", "r");
    if (f) {
        char line[256];
        while (fgets(line, sizeof line, f))
            if (strncmp(line, "btime ", 6) == 0) boot = strtod(line + 6, NULL);
        fclose(f);
    }
    size_t fds = 0;
    DIR *d = opendir("/proc/self/fd");
    if (d) {
        for (struct dirent *e; (e = readdir(d));)
            if (e->d_name[0] != '.') fds++;
        closedir(d);
        if (fds) fds--; /* the directory's own descriptor */
    }
    struct rlimit rl = {0, 0};
    getrlimit(RLIMIT_NOFILE, &rl);
    buf_printf(b,
               "# HELP process_cpu_seconds_total User and system CPU time spent, in seconds.\n"
               "# TYPE process_cpu_seconds_total counter\n"
               "process_cpu_seconds_total %.2f\n"
               "# HELP process_resident_memory_bytes Resident memory size in bytes.\n"
               "# TYPE process_resident_memory_bytes gauge\n"
               "process_resident_memory_bytes %llu\n"
               "# HELP process_virtual_memory_bytes Virtual memory size in bytes.\n"
               "# TYPE process_virtual_memory_bytes gauge\n"
               "process_virtual_memory_bytes %llu\n"
               "# HELP process_open_fds Open file descriptors.\n"
               "# TYPE process_open_fds gauge\n"
               "process_open_fds %zu\n"
               "# HELP process_max_fds The limit on open file descriptors.\n"
               "# TYPE process_max_fds gauge\n"
               "process_max_fds %llu\n"
               "# HELP process_start_time_seconds Start time since the Unix epoch, in seconds.\n"
               "# TYPE process_start_time_seconds gauge\n"
               "process_start_time_seconds %.2f\n",
               tick > 0 ? (double)(utime + stime) / (double)tick : 0.0,
               rss * (unsigned long long)(page > 0 ? page : 4096), vsize, fds,
               (unsigned long long)rl.rlim_cur, tick > 0 ? boot + (double)start / (double)tick : 0);
}

/* GET /healthz: 200 {"status":"ok","store":...} when the store answers,
 * else 503. With `ready` (the route's arg), GET /readyz: 200
 * {"status":"ready",...} when this node may take traffic, else 503 (also
 * while the server stops). */
static void health_reply(struct req *r) {
    bool ready = r->route->arg != 0;
    struct tm_error e;
    err_clear(&e);
    if (ready && atomic_load(&r->srv->stopping)) {
        reply_error_code(r, TM_EUNAVAILABLE, "", "the server is stopping");
        return;
    }
    /* The query reads the tasks table, which exists once the migrations ran; the
     * server applies every migration before it listens (a failure stops the start). */
    const char *refusing = store_refusing(req_store(r));
    if (store_ping(req_store(r), &e)) {
        /* A store that refuses writes until a restart fails its ping too: say why. */
        reply_error_code(r, TM_EUNAVAILABLE, "", refusing ? refusing : "the store does not answer");
        return;
    }
    /* Writes refused while reads go on, until the database takes them again
     * (no restart would help): not ready, so a load balancer sends writes
     * elsewhere; alive, with the reason shown. */
    if (ready && refusing) {
        reply_error_code(r, TM_EUNAVAILABLE, "", refusing);
        return;
    }
    struct buf b;
    buf_init(&b);
    buf_puts(&b, ready ? "{\"status\":\"ready\",\"store\":" : "{\"status\":\"ok\",\"store\":");
    json_put_str(&b, store_backend_name(req_store(r)));
    if (refusing) {
        buf_puts(&b, ",\"refusing_writes\":");
        json_put_str(&b, refusing);
    }
    if (ready) {
        buf_puts(&b, ",\"migrations\":\"applied\",\"version\":");
        json_put_str(&b, TASKMILL_VERSION);
    }
    buf_putc(&b, '}');
    reply_json(r, 200, &b);
}

static void health_metrics(struct req *r) {
    struct server *srv = r->srv;
    struct buf b;
    buf_init(&b);
    buf_puts(&b,
             "# HELP taskmill_build_info The taskmill this node runs (always 1).\n"
             "# TYPE taskmill_build_info gauge\n"
             "taskmill_build_info{version=\"" TASKMILL_VERSION "\",store=\"");
    buf_puts(&b, store_backend_name(srv->store));
    buf_puts(&b, "\"} 1\n");
    buf_puts(&b,
             "# HELP taskmill_http_replies_total HTTP replies sent, by status class.\n"
             "# TYPE taskmill_http_replies_total counter\n");
    for (int c = 2; c <= 5; c++)
        buf_printf(&b, "taskmill_http_replies_total{class=\"%dxx\"} %llu\n", c,
                   (unsigned long long)atomic_load(&srv->replies[c]));
    buf_printf(&b,
               "# HELP taskmill_connections_refused_total Connections refused at accept: their "
               "address held --max-connections-per-address.\n"
               "# TYPE taskmill_connections_refused_total counter\n"
               "taskmill_connections_refused_total{reason=\"per_address\"} %llu\n",
               (unsigned long long)atomic_load(&srv->conns_refused));
    buf_printf(&b,
               "# HELP taskmill_connections_closed_total Connections the server closed: a "
               "request's head not all in by --head-timeout-seconds, its body not by "
               "--body-timeout-seconds and --body-min-rate.\n"
               "# TYPE taskmill_connections_closed_total counter\n"
               "taskmill_connections_closed_total{reason=\"head_timeout\"} %llu\n"
               "taskmill_connections_closed_total{reason=\"body_timeout\"} %llu\n",
               (unsigned long long)atomic_load(&srv->head_timeouts),
               (unsigned long long)atomic_load(&srv->body_timeouts));
    buf_puts(&b,
             "# HELP taskmill_auth_refusals_total Requests refused by authentication: 401 (no, "
             "bad, revoked or expired credentials), 403 (role, cross-site), 429 (rate).\n"
             "# TYPE taskmill_auth_refusals_total counter\n");
    static const int refusal_status[3] = {401, 403, 429}; /* srv->auth_refused's order */
    for (int k = 0; k < 3; k++)
        buf_printf(&b, "taskmill_auth_refusals_total{status=\"%d\"} %llu\n", refusal_status[k],
                   (unsigned long long)atomic_load(&srv->auth_refused[k]));
    buf_printf(&b,
               "# HELP taskmill_public_body_bytes Bytes held now by request bodies read before "
               "their credentials are checked (SailPoint /oauth/token, Scene7 SOAP).\n"
               "# TYPE taskmill_public_body_bytes gauge\n"
               "taskmill_public_body_bytes %lld\n"
               "# HELP taskmill_public_body_refused_total Such requests refused with 503: "
               "--max-public-body-bytes was held.\n"
               "# TYPE taskmill_public_body_refused_total counter\n"
               "taskmill_public_body_refused_total %llu\n",
               (long long)atomic_load(&srv->public_body_bytes),
               (unsigned long long)atomic_load(&srv->public_body_refused));
    buf_printf(&b,
               "# HELP taskmill_unsent_reply_bytes Bytes held now by replies of 16 KiB or more "
               "not yet taken whole by their clients.\n"
               "# TYPE taskmill_unsent_reply_bytes gauge\n"
               "taskmill_unsent_reply_bytes %lld\n"
               "# HELP taskmill_unsent_refused_total Reads refused with 503: their reply would "
               "have passed --max-unsent-bytes or --max-unsent-bytes-per-token.\n"
               "# TYPE taskmill_unsent_refused_total counter\n"
               "taskmill_unsent_refused_total %llu\n",
               (long long)atomic_load(&srv->unsent_bytes),
               (unsigned long long)atomic_load(&srv->unsent_refused));
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
        {"taskmill_pg_stalled_sessions_ended_total", "counter",
         "PostgreSQL: other nodes' writer sessions ended for holding what this node's writer "
         "waited for while stalled on their node.",
         st.pg_stalled_ended},
        {"taskmill_store_relaxed_flushes_total", "counter",
         "SQLite, --relaxed: flushes of acknowledged commits by the flush timer.",
         st.relaxed_flushes},
        {"taskmill_store_unflushed_commits", "gauge",
         "SQLite, --relaxed: commits acknowledged and not flushed yet.", st.unflushed_commits},
        {"taskmill_feed_events_total", "counter",
         "Events read back from the shared log (PostgreSQL: every node's).", st.feed_events},
        {"taskmill_feed_events_bare_total", "counter",
         "Of those, events read without their task JSON while no event stream was open.",
         st.feed_bare},
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
        {"taskmill_schedule_unreadable_total", "counter",
         "Passes that found a due schedule's stored body unreadable (tried again a minute on).",
         st.schedule_unreadable},
        {"taskmill_leases_expired_total", "counter", "Leases that ran out.", st.leases_expired},
        {"taskmill_parked_claims", "gauge", "Claims waiting for work.", st.parked_claims},
        {"taskmill_parked_watches", "gauge", "Long-polls waiting for a change.", st.parked_watches},
        {"taskmill_events_appended_total", "counter", "Events appended to the log.",
         st.events_appended},
        {"taskmill_event_seq", "gauge", "The last event sequence committed.", st.event_seq},
        {"taskmill_events_pruned_total", "counter", "Events removed by retention.",
         st.events_pruned},
        {"taskmill_tasks_pruned_total", "counter",
         "Finished tasks deleted by retention (--finished-max-age-seconds).", st.tasks_pruned},
        {"taskmill_events_pruned_through", "gauge", "Events at or below this seq are gone.",
         st.events_pruned_through},
        {"taskmill_sse_streams", "gauge", "Open SSE streams.", hs.streams},
        {"taskmill_sse_events_sent_total", "counter", "Events written to SSE streams.",
         hs.events_sent},
        {"taskmill_sse_slow_disconnects_total", "counter", "Streams cut off for falling behind.",
         hs.slow_disconnects},
        {"taskmill_sse_keepalives_total", "counter", "Keep-alive comments written to SSE streams.",
         hs.keepalives},
        {"taskmill_sse_clients_gone_total", "counter",
         "Streams ended because their client had closed the connection (seen before a write).",
         hs.gone},
        {"taskmill_read_cache_hits_total", "counter",
         "Task reads answered from the read cache (SQLite).", st.read_cache_hits},
        {"taskmill_read_cache_misses_total", "counter",
         "Task reads that went to the database (with a read cache).", st.read_cache_misses},
        {"taskmill_read_cache_entries", "gauge", "Tasks the read cache keeps.",
         st.read_cache_entries},
        {"taskmill_read_cache_bytes", "gauge", "Bytes the read cache keeps.", st.read_cache_bytes},
        {"taskmill_sse_gaps_total", "counter",
         "Pages of other nodes' events that came without their JSON just as a stream opened; "
         "open streams read them from the store.",
         hs.gaps},
        {"taskmill_sse_buffer_events", "gauge", "Events held in memory for streams.",
         hs.buffer_events},
        {"taskmill_sse_buffer_bytes", "gauge", "Bytes of the event frames held in memory.",
         hs.buffer_bytes},
        {"taskmill_webhook_attempts_total", "counter", "Webhook delivery attempts.", ws.attempts},
        {"taskmill_webhook_delivered_total", "counter", "Webhook deliveries done.", ws.delivered},
        {"taskmill_webhook_failed_total", "counter", "Webhook deliveries given up.", ws.failed},
        {"taskmill_webhook_retries_total", "counter", "Webhook attempts to retry later.",
         ws.retried},
        {"taskmill_webhook_wakeups_total", "counter",
         "Commits that woke the webhook senders: they queued deliveries.", ws.wakeups},
    };
    for (size_t i = 0; i < sizeof m / sizeof m[0]; i++)
        buf_printf(&b, "# HELP %s %s\n# TYPE %s %s\n%s %llu\n", m[i].name, m[i].help, m[i].name,
                   m[i].type, m[i].name, (unsigned long long)m[i].v);
    buf_printf(&b,
               "# HELP taskmill_store_refusing_writes 1 while the store refuses every write (a "
               "read-only database, a failed sync; /readyz says why), else 0.\n"
               "# TYPE taskmill_store_refusing_writes gauge\n"
               "taskmill_store_refusing_writes %d\n",
               store_refusing(srv->store) ? 1 : 0);
    if (st.clock_measured)
        buf_printf(&b,
                   "# HELP taskmill_clock_offset_ms How far the database's clock is ahead of this "
                   "node's (negative: behind), as measured once a minute.\n"
                   "# TYPE taskmill_clock_offset_ms gauge\n"
                   "taskmill_clock_offset_ms %lld\n",
                   (long long)st.clock_offset_ms);
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
    /* Kept per queue and type for every namespace at once: what another
     * namespace's queues and types are called is not a reader's to see. */
    if (!r->ns) health_observations_write(&b);
    health_process_write(&b);
    reply_body(r, 200, &b, "text/plain; version=0.0.4");
}

const struct route health_routes[] = {
    {"GET", "/healthz", health_reply, PERM_PUBLIC, false},
    {"HEAD", "/healthz", health_reply, PERM_PUBLIC, false},
    {"GET", "/readyz", health_reply, PERM_PUBLIC, true},
    {"HEAD", "/readyz", health_reply, PERM_PUBLIC, true},
    {"GET", "/metrics", health_metrics, PERM_ADMIN | PERM_READER},
    {NULL, NULL, NULL, 0},
};
