/*
 * A queue's pause or resume on PostgreSQL, against another node's write
 * of the same queue: the log line says what this write changed, read under
 * the queue row's lock. The row was read without it, so a pause that
 * waited for another node's pause logged "paused by" although it changed
 * nothing, and a resume racing a pause could leave the log's last word
 * "paused" over an active queue (found by a review).
 *
 * PostgreSQL only: on SQLite one writer makes every change in turn.
 */
#include <curl/curl.h>
#include <libpq-fe.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "pg_util.h"
#include "sec_util.h"

static struct th_server srv;

struct call {
    const char *path;
    long status;
};

static size_t drop(char *p, size_t size, size_t n, void *arg) {
    (void)p;
    (void)arg;
    return size * n;
}

/* POSTs x->path on a handle of its own (th_http's stay with their thread). */
static void *call_run(void *arg) {
    struct call *x = arg;
    CURL *c = curl_easy_init();
    char url[256];
    snprintf(url, sizeof url, "%s%s", srv.url, x->path);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, "");
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 60000L);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, drop);
    if (curl_easy_perform(c) == CURLE_OK) curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &x->status);
    curl_easy_cleanup(c);
    return NULL;
}

/*
 * Another node's change (sql, on the session `other`) is held uncommitted
 * while this node POSTs path; once path's write waits for it, the change
 * commits. The log lines holding `line` that path's write added; -1 when
 * it was not answered 200.
 */
static int behind_other(PGconn *other, PGconn *watch, const char *sql, const char *path,
                        const char *line) {
    int before = sec_log_lines(&srv, line, NULL);
    if (!pg_run(other, "BEGIN") || !pg_run(other, sql)) return -1;
    struct call x = {.path = path, .status = -1};
    pthread_t th;
    if (pthread_create(&th, NULL, call_run, &x) != 0) return -1;
    bool waits;
    TRY_WAIT_UNTIL(waits,
                   pg_ask(watch,
                          "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type ="
                          " 'Lock' AND query LIKE '%queues%'") == 1,
                   10000, "this node's %s to wait for the other's row", path);
    bool committed = pg_run(other, "COMMIT");
    pthread_join(th, NULL);
    if (!waits || !committed || x.status != 200) return -1;
    /* The line of a change is written before its reply. */
    return sec_log_lines(&srv, line, NULL) - before;
}

/*
 * Another node (a session here) pauses queue `rq` and holds its row
 * uncommitted; this node's pause waits for it, and once it commits finds
 * the queue paused already: a no-op, not logged. Then the same for a
 * resume after another node's resume.
 */
static void test_pause_after_another_nodes_logs_nothing(void) {
    if (!th_backend_is_pg()) {
        th_skip("two nodes writing one queue row need PostgreSQL (TASKMILL_TEST_PG)");
        return;
    }
    CHECK_INT(th_http(&srv, "POST", "/v1/queues/rq/resume", NULL)->status, 200); /* its row */
    PGconn *other = PQconnectdb(srv.store), *watch = PQconnectdb(srv.store);
    CHECK(PQstatus(other) == CONNECTION_OK && PQstatus(watch) == CONNECTION_OK);
    static const struct {
        const char *set, *path, *line;
    } steps[] = {{"UPDATE queues SET paused = 1 WHERE name = 'rq'", "/v1/queues/rq/pause",
                  "queue 'rq' paused by"},
                 {"UPDATE queues SET paused = 0 WHERE name = 'rq'", "/v1/queues/rq/resume",
                  "queue 'rq' resumed by"}};
    for (size_t i = 0; i < sizeof steps / sizeof steps[0]; i++)
        CHECK_INT(behind_other(other, watch, steps[i].set, steps[i].path, steps[i].line), 0);
    /* A change of this node's own is still logged. */
    int before = sec_log_lines(&srv, "queue 'rq' paused by", NULL);
    CHECK_INT(th_http(&srv, "POST", "/v1/queues/rq/pause", NULL)->status, 200);
    CHECK_INT(sec_log_lines(&srv, "queue 'rq' paused by", NULL), before + 1);
    PQfinish(other);
    PQfinish(watch);
}

/*
 * The same with no row for the queue yet: another node's first pause
 * inserts it, uncommitted. This node's pause, which waited on that insert,
 * changed nothing and logs nothing; a resume in its place did change the
 * queue and says so. Both read "no row" as active before, so the pause
 * logged and the resume did not.
 */
static void test_first_pause_of_another_node(void) {
    if (!th_backend_is_pg()) {
        th_skip("two nodes writing one queue row need PostgreSQL (TASKMILL_TEST_PG)");
        return;
    }
    PGconn *other = PQconnectdb(srv.store), *watch = PQconnectdb(srv.store);
    CHECK(PQstatus(other) == CONNECTION_OK && PQstatus(watch) == CONNECTION_OK);
    static const struct {
        const char *insert, *path, *line;
        int logged;
    } steps[] = {
        {"INSERT INTO queues(name, max_retries, backoff_ms, backoff_max_ms, paused, configured)"
         " VALUES ('nq1', 3, 1000, 60000, 1, 0)",
         "/v1/queues/nq1/pause", "queue 'nq1' paused by", 0},
        {"INSERT INTO queues(name, max_retries, backoff_ms, backoff_max_ms, paused, configured)"
         " VALUES ('nq2', 3, 1000, 60000, 1, 0)",
         "/v1/queues/nq2/resume", "queue 'nq2' resumed by", 1},
    };
    for (size_t i = 0; i < sizeof steps / sizeof steps[0]; i++)
        CHECK_INT(behind_other(other, watch, steps[i].insert, steps[i].path, steps[i].line),
                  steps[i].logged);
    /* What the queues say now: nq1 paused, nq2 active. */
    CHECK_INT(pg_ask(watch, "SELECT paused FROM queues WHERE name = 'nq1'"), 1);
    CHECK_INT(pg_ask(watch, "SELECT paused FROM queues WHERE name = 'nq2'"), 0);
    PQfinish(other);
    PQfinish(watch);
}

static const struct th_test tests[] = {
    {"a pause or resume that waited for another node's same change logs nothing",
     test_pause_after_another_nodes_logs_nothing},
    {"another node's first pause of a queue with no row: waited for, logged by what changed",
     test_first_pause_of_another_node},
    {NULL, NULL},
};

int main(int argc, char **argv) {
    return th_main_server(tests, argc, argv, &srv, NULL);
}
