/*
 * A PostgreSQL database that answers but refuses writes (SQLSTATE 25006:
 * a hot standby during a failover, default_transaction_read_only set by an
 * operator), made here on the test's own database alone: ALTER DATABASE
 * ... SET default_transaction_read_only = on, which reaches new sessions
 * only, then the database's connections cut (pg_terminate_backend) so the
 * node reconnects into read-only sessions, as it would to a standby. Back:
 * ALTER DATABASE ... RESET, with no cut; the node must find out by itself.
 * (ALTER SYSTEM with pg_reload_conf() would reach the writer's existing
 * session, but the whole cluster's too, and other tests share it.)
 *
 * What must hold: every refused write is 503 naming the read-only
 * database, in the shape of the API it came through (v1, Livepeer), and
 * stores nothing; reads and an event stream's catch-up go on; /readyz is
 * 503 naming the reason and /healthz 200 showing it; the node logs the
 * spell once as it starts and once as it ends, however many writes,
 * sweeps and schedule fires it refused, and does not spin on them; once
 * the database takes writes again the node does too, with no restart.
 *
 * PostgreSQL only (TASKMILL_TEST_PG); skipped on SQLite.
 */
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>

#include "harness.h"
#include "sec_util.h"
#include "sse_client.h"

#define SWITCH_MS 15000 /* for the node to notice a switch either way */

static bool pg_only(void) {
    if (th_backend_is_pg()) return true;
    th_skip("a read-only PostgreSQL database needs PostgreSQL (TASKMILL_TEST_PG)");
    return false;
}

/* Switches s's database read-only (on) or back: new sessions only. */
static int set_read_only(const struct th_server *s, bool on) {
    char sql[200];
    snprintf(sql, sizeof sql,
             on ? "ALTER DATABASE %s SET default_transaction_read_only = on"
                : "ALTER DATABASE %s RESET default_transaction_read_only",
             s->pgdb);
    return th_pg_sql(sql);
}

/* Cuts every connection to s's database: the node reconnects. */
static int cut(const struct th_server *s) {
    char sql[256];
    snprintf(sql, sizeof sql,
             "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
             " WHERE datname = '%s' AND pid <> pg_backend_pid()",
             s->pgdb);
    return th_pg_sql(sql);
}

/* The number of rows of `table` in s's database, read on a connection of
 * the test's own; -1 when it cannot be read. */
static long long rows_of(const struct th_server *s, const char *table) {
    PGconn *c = PQconnectdb(s->store);
    long long n = -1;
    if (PQstatus(c) == CONNECTION_OK) {
        char sql[128];
        snprintf(sql, sizeof sql, "SELECT count(*) FROM %s", table);
        PGresult *r = PQexec(c, sql);
        if (PQresultStatus(r) == PGRES_TUPLES_OK) n = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
        PQclear(r);
    }
    PQfinish(c);
    return n;
}

static const char *const json_ct[] = {"Content-Type: application/json", NULL};

/* A submit's reply says the database is read-only (v1's 503 shape), and
 * when to try again. */
static bool refused_read_only(struct th_resp *r) {
    const char *code = th_str(r->json, "error.code"), *msg = th_str(r->json, "error.message");
    char ra[16] = "";
    return r->status == 503 && code && strcmp(code, "unavailable") == 0 && msg &&
           strstr(msg, "storage refuses writes: the database is read-only") &&
           th_resp_header(r, "Retry-After", ra, sizeof ra) && strcmp(ra, "1") == 0;
}

/* Submits to queue roq until a reply names the read-only database (the
 * first after the cut may be a plain 503: the connection was lost). */
static bool submit_until_refused(struct th_server *s) {
    static const char body[] = "{\"type\":\"ro\",\"queue\":\"roq\"}";
    long long deadline = th_now_ms() + SWITCH_MS;
    while (th_now_ms() < deadline) {
        struct th_resp *r = th_http_raw(s, "POST", "/v1/tasks", body, strlen(body), json_ct);
        if (refused_read_only(r)) return true;
        if (r->status != 503 && r->status != 201) {
            printf("    a write answered %ld: %.200s\n", r->status, r->body);
            return false;
        }
        th_sleep_ms(100);
    }
    return false;
}

static long status_of(struct th_server *s, const char *path) {
    return th_http(s, "GET", path, NULL)->status;
}

/* Runs sql on s's database, on a connection of the test's own; 0 when it ran. */
static int exec_on(const struct th_server *s, const char *sql) {
    PGconn *c = PQconnectdb(s->store);
    int rc = -1;
    if (PQstatus(c) == CONNECTION_OK) {
        PGresult *r = PQexec(c, sql);
        rc = PQresultStatus(r) == PGRES_COMMAND_OK || PQresultStatus(r) == PGRES_TUPLES_OK ? 0 : -1;
        if (rc) printf("    %s: %s", sql, PQerrorMessage(c));
        PQclear(r);
    }
    PQfinish(c);
    return rc;
}

/* A node started on a database that refuses writes: with every migration
 * it is served (reads; writes 503 naming the read-only database; /readyz
 * 503) and takes writes once the database does, with no restart; lacking
 * a migration it cannot be, and `serve` stops at once saying which. */
static void test_start_read_only(void) {
    if (!pg_only()) return;
    struct th_server srv;
    CHECK_INT(th_server_start(&srv, NULL), 0);
    char *id = th_submit(&srv, "ro", "\"queue\":\"roq\"");
    CHECK(id != NULL);
    char path[80];
    snprintf(path, sizeof path, "/v1/tasks/%s", id);
    free(id);
    th_server_stop(&srv, false);
    CHECK_INT(set_read_only(&srv, true), 0);
    CHECK_INT(th_server_restart(&srv), 0);
    CHECK_INT(th_http(&srv, "GET", path, NULL)->status, 200);
    CHECK_INT(status_of(&srv, "/readyz"), 503); /* at once, before any write */
    CHECK_INT(status_of(&srv, "/healthz"), 200);
    long long before = rows_of(&srv, "tasks");
    static const char body[] = "{\"type\":\"ro\",\"queue\":\"roq\"}";
    struct th_resp *r = th_http_raw(&srv, "POST", "/v1/tasks", body, strlen(body), json_ct);
    if (!refused_read_only(r)) printf("    the submit: %ld %.300s\n", r->status, r->body);
    CHECK(refused_read_only(r));
    CHECK_INT(rows_of(&srv, "tasks"), before);
    CHECK_INT(sec_log_lines(&srv, "the database refuses writes", NULL), 1);
    CHECK_INT(set_read_only(&srv, false), 0);
    long long deadline = th_now_ms() + SWITCH_MS;
    long st = 0;
    while (th_now_ms() < deadline &&
           (st = th_http_raw(&srv, "POST", "/v1/tasks", body, strlen(body), json_ct)->status) !=
               201)
        th_sleep_ms(100);
    CHECK_INT(st, 201);
    CHECK_INT(status_of(&srv, "/readyz"), 200);
    th_server_stop(&srv, false);
    /* The database as an older taskmill left it: its newest migration not applied. */
    CHECK_INT(exec_on(&srv,
                      "DELETE FROM taskmill_migrations WHERE version ="
                      " (SELECT max(version) FROM taskmill_migrations)"),
              0);
    CHECK_INT(set_read_only(&srv, true), 0);
    char out[4096];
    int rc = sec_cli(out, sizeof out, "timeout 20 %s serve --listen 127.0.0.1:0 --store '%s' 2>&1",
                     getenv("TASKMILL_BIN"), srv.store);
    if (rc == 0 || !strstr(out,
                           "refuses writes (default_transaction_read_only is on) and lacks "
                           "migration"))
        printf("    serve said (exit %d): %s\n", rc, out);
    CHECK(rc != 0 && rc != 124); /* stopped at once, not run until the timeout */
    CHECK(strstr(out, "refuses writes (default_transaction_read_only is on) and lacks migration") !=
          NULL);
    CHECK(strstr(out, "start it on a database that takes writes") != NULL);
    CHECK_INT(set_read_only(&srv, false), 0);
    th_server_free(&srv);
}

static void test_read_only_database(void) {
    if (!pg_only()) return;
    struct th_server srv;
    CHECK_INT(th_server_start(&srv, NULL), 0);
    char kept[33] = "", cancelled[33] = "", path[160], lp_retry[160];
    char *id = th_submit(&srv, "ro", "\"queue\":\"roq\"");
    snprintf(kept, sizeof kept, "%s", id ? id : "");
    free(id);
    id = th_submit(&srv, "ro", "\"queue\":\"roc\"");
    snprintf(cancelled, sizeof cancelled, "%s", id ? id : "");
    free(id);
    CHECK(kept[0] && cancelled[0]);
    snprintf(path, sizeof path, "/v1/tasks/%s/cancel", cancelled);
    CHECK_INT(th_http(&srv, "POST", path, NULL)->status, 200);
    CHECK_INT(status_of(&srv, "/readyz"), 200);

    CHECK_INT(set_read_only(&srv, true), 0);
    CHECK_INT(cut(&srv), 0);
    CHECK(submit_until_refused(&srv));
    long long tasks = rows_of(&srv, "tasks"), events = rows_of(&srv, "events");
    CHECK(tasks >= 2);
    CHECK(events >= 3);

    /* v1: 503 naming the read-only database. */
    static const char body[] = "{\"type\":\"ro\",\"queue\":\"roq\"}";
    struct th_resp *r = th_http_raw(&srv, "POST", "/v1/tasks", body, strlen(body), json_ct);
    CHECK(refused_read_only(r));
    static const char *const keyed[] = {"Content-Type: application/json",
                                        "Idempotency-Key: ro-key-1", NULL};
    r = th_http_raw(&srv, "POST", "/v1/tasks", body, strlen(body), keyed);
    CHECK(refused_read_only(r));
    /* Livepeer's view: its own shape, {"errors":["..."]}. */
    snprintf(lp_retry, sizeof lp_retry, "/api/task/%s/retry", cancelled);
    r = th_http(&srv, "POST", lp_retry, NULL);
    CHECK_INT(r->status, 503);
    const char *lp = th_str(r->json, "errors.0");
    CHECK(lp && strstr(lp, "storage refuses writes: the database is read-only"));
    CHECK(!th_get(r->json, "error"));
    /* Nothing stored. */
    CHECK_INT(rows_of(&srv, "tasks"), tasks);
    CHECK_INT(rows_of(&srv, "events"), events);
    CHECK_STR(th_phase(&srv, cancelled), "cancelled");

    /* Reads go on: a task, a list, an event stream's catch-up. */
    snprintf(path, sizeof path, "/v1/tasks/%s", kept);
    CHECK_INT(status_of(&srv, path), 200);
    r = th_http(&srv, "GET", "/v1/tasks?queue=roq&limit=100", NULL);
    CHECK_INT(r->status, 200);
    CHECK_STR(th_str(r->json, "tasks.0.id"), kept);
    struct sse_conn sc;
    CHECK_INT(sse_open(&sc, srv.url, "/v1/events?since=0", -1, 0), 0);
    bool heard = false;
    long long deadline = sse_now_ms() + 10000;
    while (!heard && sse_now_ms() < deadline) {
        struct sse_event ev = {.id = -1};
        if (sse_next(&sc, &ev, (int)(deadline - sse_now_ms())) <= 0) break;
        heard = strcmp(ev.event, "task.created") == 0 && ev.data && strstr(ev.data, kept);
        sse_event_clear(&ev);
    }
    sse_close(&sc);
    CHECK(heard);

    /* Not ready (writes go elsewhere), alive (reads work; no restart helps). */
    r = th_http(&srv, "GET", "/readyz", NULL);
    CHECK_INT(r->status, 503);
    CHECK_STR(th_str(r->json, "error.code"), "unavailable");
    CHECK(strstr(th_str(r->json, "error.message"), "the database is read-only"));
    r = th_http(&srv, "GET", "/healthz", NULL);
    CHECK_INT(r->status, 200);
    CHECK_STR(th_str(r->json, "status"), "ok");
    CHECK(strstr(th_str(r->json, "refusing_writes"), "the database is read-only"));
    CHECK_INT(th_metric(&srv, "taskmill_store_refusing_writes"), 1);

    /* Back: no cut, no restart. The node looks by itself. */
    CHECK_INT(set_read_only(&srv, false), 0);
    WAIT_UNTIL(status_of(&srv, "/readyz") == 200, SWITCH_MS, "/readyz to answer 200 again");
    r = th_http_raw(&srv, "POST", "/v1/tasks", body, strlen(body), json_ct);
    CHECK_INT(r->status, 201);
    CHECK_INT(rows_of(&srv, "tasks"), tasks + 1);
    r = th_http(&srv, "GET", "/healthz", NULL);
    CHECK_INT(r->status, 200);
    CHECK(!th_get(r->json, "refusing_writes"));
    CHECK_INT(th_metric(&srv, "taskmill_store_refusing_writes"), 0);
    r = th_http(&srv, "POST", lp_retry, NULL); /* the Livepeer retry, now taken */
    CHECK_INT(r->status, 200);
    CHECK_STR(th_phase(&srv, cancelled), "pending");

    /* One line as the spell began (with the server's message), one as it ended. */
    CHECK_INT(sec_log_lines(&srv, "the database refuses writes", NULL), 1);
    CHECK_INT(sec_log_lines(&srv, "read-only transaction", NULL), 1);
    CHECK_INT(sec_log_lines(&srv, "the database takes writes again", NULL), 1);
    th_server_free(&srv);
}

/* The value of the metric `series` (th_metric), 0 when absent. */
static long long metric(struct th_server *s, const char *series) {
    long long v = th_metric(s, series);
    return v < 0 ? 0 : v;
}

/*
 * The writer's own work while writes are refused: an every-second
 * schedule (each slot a fire that fails) and the sweeps. The writer must
 * neither spin on them nor log each one, and the schedule fires again
 * once the database takes writes.
 */
static void test_periodic_work_while_read_only(void) {
    if (!pg_only()) return;
    struct th_server srv;
    CHECK_INT(th_server_start(&srv, NULL), 0);
    struct th_resp *r = th_http(&srv, "POST", "/v1/schedules",
                                "{\"name\":\"rotick\",\"interval_seconds\":1,\"overlap\":"
                                "\"allow_all\",\"task\":{\"type\":\"tick\",\"queue\":\"rot\"}}");
    CHECK_INT(r->status, 201);
    WAIT_UNTIL(rows_of(&srv, "tasks") >= 1, 10000, "the schedule's first fire");

    CHECK_INT(set_read_only(&srv, true), 0);
    CHECK_INT(cut(&srv), 0);
    WAIT_UNTIL(
        status_of(&srv, "/readyz") == 503 && sec_log_lines(&srv, "refuses writes", NULL) == 1,
        SWITCH_MS, "the node to find the database read-only by itself");
    long long t0 = th_now_ms();
    long long failed = metric(&srv, "taskmill_store_commits_failed_total");
    long long tasks = rows_of(&srv, "tasks");
    /* By design: three slots of the schedule pass while writes are refused. */
    th_sleep_ms(3000);
    long long failed_after = metric(&srv, "taskmill_store_commits_failed_total");
    long long seconds = (th_now_ms() - t0 + 999) / 1000; /* 3, more on a loaded machine */
    CHECK_INT(rows_of(&srv, "tasks"), tasks);
    /* A few failed batches a second (a fire, a sweep, a look at the
     * database); a writer that spun on its overdue fire ran thousands.
     * Counted per second of the window as it was measured. */
    printf("    %lld batches failed in %lld s\n", failed_after - failed, seconds);
    CHECK(failed_after - failed <= 10 * seconds);
    CHECK_INT(sec_log_lines(&srv, "refuses writes", NULL), 1);
    CHECK_INT(sec_log_lines(&srv, "read-only", NULL), 1);

    CHECK_INT(set_read_only(&srv, false), 0);
    WAIT_UNTIL(rows_of(&srv, "tasks") > tasks, SWITCH_MS,
               "the schedule to fire again with no restart");
    CHECK_INT(status_of(&srv, "/readyz"), 200);
    CHECK_INT(sec_log_lines(&srv, "the database takes writes again", NULL), 1);
    th_server_free(&srv);
}

/* The cluster's directory, from TASKMILL_TEST_PG's host=DIR. */
static bool pg_dir(char *out, size_t n) {
    const char *u = getenv("TASKMILL_TEST_PG");
    const char *h = u ? strstr(u, "host=") : NULL;
    if (!h) return false;
    snprintf(out, n, "%.*s", (int)strcspn(h + 5, "&"), h + 5);
    return out[0] == '/';
}

/* scripts/pg.sh VERB on the cluster; 0 when it succeeded. */
static int pg_script(const char *verb, const char *dir) {
    char cmd[512];
    snprintf(cmd, sizeof cmd, "scripts/pg.sh %s '%s' >/dev/null 2>&1", verb, dir);
    return system(cmd);
}

/*
 * A failover's hot standby: the whole cluster restarted in recovery (as
 * test_cluster.c halts it, the suite's binaries run one at a time), then
 * promoted. The writer's refusals name the standby; the listener, whose
 * LISTEN a standby refuses, says so once and the feed polls meanwhile.
 * The cluster is promoted whatever happened, before any check can end
 * the test, so the tests after this one find it writable.
 */
static void test_hot_standby(void) {
    if (!pg_only()) return;
    char dir[256];
    CHECK(pg_dir(dir, sizeof dir));
    struct th_server srv;
    CHECK_INT(th_server_start(&srv, NULL), 0);
    char kept[33] = "";
    char *id = th_submit(&srv, "ro", "\"queue\":\"sbq\"");
    snprintf(kept, sizeof kept, "%s", id ? id : "");
    free(id);
    int standby = pg_script("standby", dir);
    static const char body[] = "{\"type\":\"ro\",\"queue\":\"sbq\"}";
    bool refused = false;
    long read = 0, ready = 0;
    const char *msg = NULL;
    char ready_msg[300] = "";
    int peer_started = -1;
    long peer_ready = 0;
    bool peer_refused = false;
    long long deadline = th_now_ms() + SWITCH_MS;
    while (standby == 0 && !refused && th_now_ms() < deadline) {
        struct th_resp *r = th_http_raw(&srv, "POST", "/v1/tasks", body, strlen(body), json_ct);
        refused = refused_read_only(r) &&
                  strstr(th_str(r->json, "error.message"), "(a standby, in recovery)");
        if (!refused) th_sleep_ms(100);
    }
    if (refused) {
        char path[80];
        snprintf(path, sizeof path, "/v1/tasks/%s", kept);
        /* The restart cut the readers too: they may need a moment to reconnect. */
        for (long long until = th_now_ms() + SWITCH_MS;
             (read = status_of(&srv, path)) != 200 && th_now_ms() < until;)
            th_sleep_ms(100);
        struct th_resp *r = th_http(&srv, "GET", "/readyz", NULL);
        ready = r->status;
        msg = th_str(r->json, "error.message");
        snprintf(ready_msg, sizeof ready_msg, "%s", msg ? msg : "");
        /* A node that starts now, on the standby: served, its writes refused. */
        struct th_server peer;
        peer_started = th_server_start_peer(&peer, &srv, NULL);
        if (peer_started == 0) {
            peer_ready = status_of(&peer, "/readyz");
            struct th_resp *pr =
                th_http_raw(&peer, "POST", "/v1/tasks", body, strlen(body), json_ct);
            peer_refused = refused_read_only(pr) &&
                           strstr(th_str(pr->json, "error.message"), "(a standby, in recovery)");
            th_server_free(&peer);
        }
        /* By design: the listener asks again every second meanwhile. */
        th_sleep_ms(2500);
    }
    int listen_refused = sec_log_lines(&srv, "the database refuses LISTEN", NULL);
    int setup_failed = sec_log_lines(&srv, "cannot set up the session", NULL);
    int promoted = pg_script("promote", dir);
    CHECK_INT(standby, 0);
    CHECK_INT(promoted, 0);
    CHECK(refused);
    CHECK_INT(read, 200);
    CHECK_INT(ready, 503);
    CHECK(strstr(ready_msg, "a standby, in recovery"));
    CHECK_INT(listen_refused, 1);
    CHECK_INT(setup_failed, 0);
    CHECK_INT(peer_started, 0);
    CHECK_INT(peer_ready, 503);
    CHECK(peer_refused);

    WAIT_UNTIL(status_of(&srv, "/readyz") == 200, SWITCH_MS, "/readyz to answer 200 again");
    struct th_resp *r = th_http_raw(&srv, "POST", "/v1/tasks", body, strlen(body), json_ct);
    CHECK_INT(r->status, 201);
    WAIT_UNTIL(sec_log_lines(&srv, "the database takes LISTEN again", NULL) == 1, SWITCH_MS,
               "the listener to LISTEN again");
    CHECK_INT(
        sec_log_lines(&srv, "the database refuses writes (it is a standby, in recovery)", NULL), 1);
    CHECK_INT(sec_log_lines(&srv, "the database takes writes again", NULL), 1);
    CHECK_INT(sec_log_lines(&srv, "the database refuses LISTEN", NULL), 1);
    th_server_free(&srv);
}

/*
 * Read-only, then the database goes away (halted, as test_cluster.c
 * does): the node must not go on saying "read-only" for a database it
 * cannot reach. /healthz then says the store does not answer; once the
 * database is back (still read-only) a refusal names it again, and after
 * the switch back writes succeed. The cluster is started again before
 * any check can end the test.
 */
static void test_read_only_then_gone(void) {
    if (!pg_only()) return;
    char dir[256];
    CHECK(pg_dir(dir, sizeof dir));
    struct th_server srv;
    CHECK_INT(th_server_start(&srv, NULL), 0);
    CHECK_INT(set_read_only(&srv, true), 0);
    CHECK_INT(cut(&srv), 0);
    CHECK(submit_until_refused(&srv));
    int halted = pg_script("halt", dir);
    /* The writer looks again within a second (its failed sweep) and
     * cannot connect. */
    bool gone = false;
    char health[300] = "";
    for (long long until = th_now_ms() + SWITCH_MS; !gone && th_now_ms() < until;) {
        struct th_resp *r = th_http(&srv, "GET", "/healthz", NULL);
        const char *msg = th_str(r->json, "error.message");
        gone = r->status == 503 && msg && strcmp(msg, "the store does not answer") == 0;
        snprintf(health, sizeof health, "%ld %s", r->status, msg ? msg : r->body);
        if (!gone) th_sleep_ms(100);
    }
    int started = pg_script("start", dir);
    CHECK_INT(halted, 0);
    CHECK_INT(started, 0);
    if (!gone) printf("    /healthz said: %s\n", health);
    CHECK(gone);
    CHECK(submit_until_refused(&srv));
    CHECK_INT(set_read_only(&srv, false), 0);
    WAIT_UNTIL(status_of(&srv, "/readyz") == 200, SWITCH_MS, "/readyz to answer 200 again");
    static const char body[] = "{\"type\":\"ro\",\"queue\":\"roq\"}";
    CHECK_INT(th_http_raw(&srv, "POST", "/v1/tasks", body, strlen(body), json_ct)->status, 201);
    /* Two spells, the database's absence between them. */
    CHECK_INT(sec_log_lines(&srv, "the database refuses writes", NULL), 2);
    th_server_free(&srv);
}

static const struct th_test tests[] = {
    {"a read-only database: writes answer 503 saying so and store nothing, reads go on, "
     "/readyz is 503; writes come back with no restart",
     test_read_only_database},
    {"a read-only database: the writer's sweeps and schedule fires neither spin nor log each",
     test_periodic_work_while_read_only},
    {"a hot standby: writes answer 503 naming it, the listener says so once, a node starts on "
     "it; promoted, writes come back",
     test_hot_standby},
    {"a read-only database that goes away: health says it does not answer, not read-only",
     test_read_only_then_gone},
    {"a node starts on a read-only database: served, writes refused until it takes them; one "
     "lacking a migration is refused at start",
     test_start_read_only},
    {NULL, NULL},
};

int main(int argc, char **argv) {
    return th_main(tests, argc, argv) || th_failed();
}
