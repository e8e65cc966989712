/*
 * /healthz (GET and HEAD), /readyz and the /metrics of issue 15, item 10:
 * time queued and time running per queue and type, outcomes per type,
 * build_info and the process metrics, through the one-task and the
 * batched worker calls; label values escaped; and on PostgreSQL, that
 * each node reports what it served (docs/operations.md).
 */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "harness.h"

static struct th_server srv;

/* The value of the metric line that starts with `prefix` (name and labels), or -1. */
static double metric(const char *body, const char *prefix) {
    size_t n = strlen(prefix);
    for (const char *p = body; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL) {
        if (strncmp(p, prefix, n) == 0 && p[n] == ' ') return strtod(p + n + 1, NULL);
    }
    return -1;
}

static char *metrics_text(struct th_server *s) {
    struct th_resp *r = th_http(s, "GET", "/metrics", NULL);
    return r->status == 200 && r->body ? strdup(r->body) : strdup("");
}

static void test_healthz_head_and_readyz(void) {
    struct th_resp *r = th_http(&srv, "GET", "/healthz", NULL);
    CHECK_INT(r->status, 200);
    r = th_http(&srv, "HEAD", "/healthz", NULL);
    CHECK_INT(r->status, 200);
    CHECK(!r->body || r->body[0] == '\0');
    r = th_http(&srv, "GET", "/readyz", NULL);
    CHECK_INT(r->status, 200);
    CHECK_STR(th_str(r->json, "status"), "ready");
    CHECK_STR(th_str(r->json, "migrations"), "applied");
    CHECK_STR(th_str(r->json, "store"), th_backend_is_pg() ? "postgres" : "sqlite");
    r = th_http(&srv, "HEAD", "/readyz", NULL);
    CHECK_INT(r->status, 200);
    r = th_http(&srv, "POST", "/readyz", "{}");
    CHECK(r->status == 404 || r->status == 405);
}

/* Claims one task of `queue` and completes it (ok) or fails it for good. */
static void run_one(const char *queue, bool ok) {
    char id[33], tok[33];
    if (th_claim(&srv, queue, NULL, id, tok) != 200) {
        th_fail(__FILE__, __LINE__, "nothing to claim in '%s'", queue);
        return;
    }
    char path[128];
    snprintf(path, sizeof path, "/v1/tasks/%s/%s", id, ok ? "complete" : "fail");
    struct th_resp *r =
        ok ? th_http(&srv, "POST", path, "{\"lease_token\":\"%s\"}", tok)
           : th_http(&srv, "POST", path,
                     "{\"lease_token\":\"%s\",\"error\":\"no\",\"retryable\":false}", tok);
    if (r->status != 200) th_fail(__FILE__, __LINE__, "%s: %ld", path, r->status);
}

static void test_task_histograms_and_outcomes(void) {
    free(th_submit(&srv, "ok", "\"queue\":\"mq\""));
    run_one("mq", true);
    free(th_submit(&srv, "bad", "\"queue\":\"mq\",\"max_retries\":0"));
    run_one("mq", false);
    /* A retryable failure with retries left is not a failed task. */
    free(th_submit(&srv, "flaky", "\"queue\":\"mq\",\"max_retries\":3"));
    char id[33], tok[33];
    CHECK_INT(th_claim(&srv, "mq", NULL, id, tok), 200);
    char path[128];
    snprintf(path, sizeof path, "/v1/tasks/%s/fail", id);
    CHECK_INT(
        th_http(&srv, "POST", path, "{\"lease_token\":\"%s\",\"error\":\"again\"}", tok)->status,
        200);

    char *m = metrics_text(&srv);
    CHECK(strstr(m, "taskmill_build_info{version=\"") != NULL);
    CHECK(strstr(m, "# TYPE taskmill_task_queued_seconds histogram") != NULL);
    CHECK(metric(m, "taskmill_task_queued_seconds_count{queue=\"mq\",type=\"ok\"}") == 1);
    CHECK(metric(m, "taskmill_task_queued_seconds_bucket{queue=\"mq\",type=\"ok\",le=\"+Inf\"}") ==
          1);
    CHECK(metric(m, "taskmill_task_queued_seconds_sum{queue=\"mq\",type=\"ok\"}") >= 0);
    CHECK(metric(m, "taskmill_task_running_seconds_count{queue=\"mq\",type=\"ok\"}") == 1);
    CHECK(metric(m, "taskmill_task_running_seconds_count{queue=\"mq\",type=\"bad\"}") == 1);
    CHECK(metric(m, "taskmill_task_running_seconds_count{queue=\"mq\",type=\"flaky\"}") == 1);
    CHECK(metric(m, "taskmill_tasks_completed_total{type=\"ok\"}") == 1);
    CHECK(metric(m, "taskmill_tasks_failed_total{type=\"bad\"}") == 1);
    CHECK(metric(m, "taskmill_tasks_failed_total{type=\"flaky\"}") == 0);
    CHECK(metric(m, "taskmill_tasks_failed_total{type=\"ok\"}") == 0);
    /* Buckets are cumulative: never falling, ending at the count. */
    double last = 0;
    int buckets = 0;
    const char *needle = "taskmill_task_running_seconds_bucket{queue=\"mq\",type=\"bad\",le=\"";
    for (const char *p = strstr(m, needle); p; p = strstr(p + 1, needle)) {
        double v = strtod(strchr(p, '}') + 2, NULL);
        CHECK(v >= last);
        last = v;
        buckets++;
    }
    CHECK(buckets > 10);
    CHECK(last == 1);
    /* The process. */
    CHECK(metric(m, "process_resident_memory_bytes") > 1000000);
    CHECK(metric(m, "process_open_fds") > 3);
    CHECK(metric(m, "process_max_fds") >= metric(m, "process_open_fds"));
    CHECK(metric(m, "process_cpu_seconds_total") >= 0);
    double start = metric(m, "process_start_time_seconds");
    CHECK(start > (double)time(NULL) - 86400 && start <= (double)time(NULL) + 1);
    free(m);
}

static void test_batched_calls_counted(void) {
    free(th_submit(&srv, "batched", "\"queue\":\"bq\""));
    free(th_submit(&srv, "batched", "\"queue\":\"bq\""));
    struct th_resp *r =
        th_http(&srv, "POST", "/v1/queues/bq/claims", "{\"worker\":\"w\",\"max\":2}");
    CHECK_INT(r->status, 200);
    CHECK_INT(json_array_size(json_object_get(r->json, "claims")), 2);
    char body[1024] = "{\"entries\":[";
    for (int i = 0; i < 2; i++) {
        char k1[64], k2[64];
        snprintf(k1, sizeof k1, "claims.%d.task.id", i);
        snprintf(k2, sizeof k2, "claims.%d.lease_token", i);
        snprintf(body + strlen(body), sizeof body - strlen(body),
                 "%s{\"id\":\"%s\",\"lease_token\":\"%s\"}", i ? "," : "", th_str(r->json, k1),
                 th_str(r->json, k2));
    }
    strcat(body, "]}");
    r = th_http(&srv, "POST", "/v1/work/complete", "%s", body);
    CHECK_INT(r->status, 200);
    char *m = metrics_text(&srv);
    CHECK(metric(m, "taskmill_task_queued_seconds_count{queue=\"bq\",type=\"batched\"}") == 2);
    CHECK(metric(m, "taskmill_task_running_seconds_count{queue=\"bq\",type=\"batched\"}") == 2);
    CHECK(metric(m, "taskmill_tasks_completed_total{type=\"batched\"}") == 2);
    free(m);
}

static void test_label_values_escaped(void) {
    free(th_submit(&srv, "we\\\"ird\\\\type", "\"queue\":\"eq\""));
    run_one("eq", true);
    char *m = metrics_text(&srv);
    CHECK(metric(m, "taskmill_tasks_completed_total{type=\"we\\\"ird\\\\type\"}") == 1);
    free(m);
}

static void test_each_node_reports_what_it_served(void) {
    struct th_server b;
    if (th_server_start_peer(&b, &srv, NULL)) return; /* a skip on SQLite */
    free(th_submit(&srv, "noded", "\"queue\":\"nq\""));
    char id[33], tok[33];
    CHECK_INT(th_claim(&b, "nq", NULL, id, tok), 200);
    char path[128];
    snprintf(path, sizeof path, "/v1/tasks/%s/complete", id);
    CHECK_INT(th_http(&b, "POST", path, "{\"lease_token\":\"%s\"}", tok)->status, 200);
    char *mb = metrics_text(&b), *ma = metrics_text(&srv);
    CHECK(metric(mb, "taskmill_tasks_completed_total{type=\"noded\"}") == 1);
    CHECK(metric(mb, "taskmill_task_queued_seconds_count{queue=\"nq\",type=\"noded\"}") == 1);
    /* The node that only took the submit saw no claim and no completion. */
    CHECK(metric(ma, "taskmill_tasks_completed_total{type=\"noded\"}") == -1);
    CHECK(metric(ma, "taskmill_task_queued_seconds_count{queue=\"nq\",type=\"noded\"}") == -1);
    /* The stored counts are the database's, the same on both. */
    CHECK(strstr(ma, "taskmill_tasks{queue=\"nq\",phase=\"completed\"} 1") != NULL);
    CHECK(strstr(mb, "taskmill_tasks{queue=\"nq\",phase=\"completed\"} 1") != NULL);
    free(ma);
    free(mb);
    th_server_free(&b);
}

/* GET /v1/tasks/{id} through the read cache (SQLite; docs/storage.md): a
 * second read is a hit with the same body; a heartbeat's reply is followed
 * by a read of its state; PostgreSQL counts nothing. */
static void test_reads_counted_in_the_cache(void) {
    char *id = th_submit(&srv, "cached", "\"queue\":\"cq\"");
    CHECK(id);
    if (!id) return;
    char path[96];
    snprintf(path, sizeof path, "/v1/tasks/%s", id);
    char *m = metrics_text(&srv);
    double hits0 = metric(m, "taskmill_read_cache_hits_total");
    free(m);
    struct th_resp *r = th_http(&srv, "GET", path, NULL);
    CHECK_INT(r->status, 200);
    char *first = r->body ? strdup(r->body) : strdup("");
    r = th_http(&srv, "GET", path, NULL);
    CHECK_INT(r->status, 200);
    CHECK_STR(r->body ? r->body : "", first);
    free(first);
    m = metrics_text(&srv);
    if (th_backend_is_pg()) {
        CHECK(metric(m, "taskmill_read_cache_hits_total") == 0);
        CHECK(metric(m, "taskmill_read_cache_entries") == 0);
    } else {
        CHECK(metric(m, "taskmill_read_cache_hits_total") >= hits0 + 1);
        CHECK(metric(m, "taskmill_read_cache_entries") >= 1);
        CHECK(metric(m, "taskmill_read_cache_bytes") > 0);
    }
    free(m);
    r = th_http(&srv, "POST", "/v1/queues/cq/claim", "{\"worker\":\"w\"}");
    CHECK_INT(r->status, 200);
    char tok[64];
    snprintf(tok, sizeof tok, "%s", th_str(r->json, "lease_token"));
    char hb[128];
    snprintf(hb, sizeof hb, "%s/heartbeat", path);
    r = th_http(&srv, "POST", hb, "{\"lease_token\":\"%s\",\"progress\":{\"ratio\":0.5}}", tok);
    CHECK_INT(r->status, 200);
    r = th_http(&srv, "GET", path, NULL);
    CHECK_INT(r->status, 200);
    CHECK_STR(th_str(r->json, "phase"), "running");
    CHECK(json_real_value(json_object_get(json_object_get(r->json, "progress"), "ratio")) == 0.5);
    free(id);
}

/* --relaxed --relaxed-flush-ms: on SQLite the commits acknowledged before
 * their flush are flushed by the timer, and /metrics says how many wait;
 * on PostgreSQL its WAL writer does that, and both stay 0. */
static void test_relaxed_flushes_counted(void) {
    struct th_server rs;
    CHECK(th_server_start(&rs, "--relaxed", "--relaxed-flush-ms", "20", NULL) == 0);
    char *id = th_submit(&rs, "relaxed", "\"queue\":\"rq\"");
    CHECK(id);
    free(id);
    char *m = NULL;
    /* Polled: 10 s is 500 times the interval, not a speed. */
    for (int i = 0; i < 1000; i++) {
        free(m);
        m = metrics_text(&rs);
        if (metric(m, "taskmill_store_unflushed_commits") == 0 &&
            (th_backend_is_pg() || metric(m, "taskmill_store_relaxed_flushes_total") >= 1))
            break;
        th_sleep_ms(10);
    }
    CHECK(metric(m, "taskmill_store_unflushed_commits") == 0);
    if (th_backend_is_pg())
        CHECK(metric(m, "taskmill_store_relaxed_flushes_total") == 0);
    else
        CHECK(metric(m, "taskmill_store_relaxed_flushes_total") >= 1);
    free(m);
    th_server_free(&rs);
    /* The default server is durable: nothing waits for the timer. */
    m = metrics_text(&srv);
    CHECK(metric(m, "taskmill_store_relaxed_flushes_total") == 0);
    CHECK(metric(m, "taskmill_store_unflushed_commits") == 0);
    free(m);
}

int main(int argc, char **argv) {
    static const struct th_test tests[] = {
        {"healthz answers HEAD; readyz", test_healthz_head_and_readyz},
        {"time queued, time running, outcomes per type, process",
         test_task_histograms_and_outcomes},
        {"batched claims and completions are observed", test_batched_calls_counted},
        {"label values are escaped", test_label_values_escaped},
        {"task reads are counted in the read cache, and follow a heartbeat",
         test_reads_counted_in_the_cache},
        {"each node reports what it served", test_each_node_reports_what_it_served},
        {"a relaxed server's flushes by its timer are counted", test_relaxed_flushes_counted},
        {NULL, NULL},
    };
    return th_main_server(tests, argc, argv, &srv, NULL);
}
