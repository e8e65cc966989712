/*
 * A node that stalls inside a transaction, on PostgreSQL. Every batch of
 * every node updates the event log's head row, so a node whose session
 * holds it and does not move holds up every other node's writes. What
 * must hold: a writer that waits on such a session of another node's
 * writer (named `taskmill writer`, waiting on its client inside a
 * transaction for 5 s) ends it and its write succeeds, however the node
 * stalled (in the middle of a pipeline, or idle in its transaction); a
 * session that is not a taskmill writer is never ended (it is logged),
 * and the write goes through once that session lets go.
 *
 * The stalled node is stood in for by a libpq connection of the test with
 * a writer's application_name and session settings, that takes the head
 * row as a writer's append does (store_pg_events.c) and then sends
 * nothing more. The server's submits carry a timeout of their own: well
 * above the 5 s bound, well below the build before's outcome (a 503 after
 * the 30 s statement_timeout; the writer's 10 s idle timeout for a node
 * idle in its transaction), so that build fails here rather than hangs.
 *
 * The last case freezes a real node (SIGSTOP) idle in a transaction that
 * holds the row, and sees what it answers when it comes back: 503 for the
 * batch that was rolled back under it, and success on a new connection.
 *
 * PostgreSQL only (TASKMILL_TEST_PG); skipped on SQLite.
 */
#include <curl/curl.h>
#include <libpq-fe.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "sec_util.h"

/* What a writer's append sends first (store_pg_events.c, st_append's h). */
#define HEAD_UPDATE \
    "UPDATE event_meta SET value = value + $1::bigint WHERE name = 'head' RETURNING value"

/* A session of our own on s's database named `app`; with a writer's
 * settings (PG_WRITER_SESSION's timeouts) when `writer`. */
static PGconn *session_open(const struct th_server *s, const char *app, bool writer) {
    const char *const kw[] = {"application_name", "dbname", NULL};
    const char *const val[] = {app, s->store, NULL};
    PGconn *c = PQconnectdbParams(kw, val, 1);
    if (PQstatus(c) != CONNECTION_OK) {
        printf("    connect: %s", PQerrorMessage(c));
        PQfinish(c);
        return NULL;
    }
    if (writer) {
        PGresult *r = PQexec(c,
                             "SET statement_timeout = 30000;"
                             " SET idle_in_transaction_session_timeout = 10000");
        bool ok = PQresultStatus(r) == PGRES_COMMAND_OK;
        PQclear(r);
        if (!ok) {
            PQfinish(c);
            return NULL;
        }
    }
    return c;
}

/* Takes the head row in a transaction left idle: BEGIN, the update, then nothing. */
static bool hold_idle(PGconn *c) {
    PGresult *r = PQexec(c, "BEGIN ISOLATION LEVEL READ COMMITTED");
    bool ok = PQresultStatus(r) == PGRES_COMMAND_OK;
    PQclear(r);
    const char *one = "1";
    r = PQexecParams(c, HEAD_UPDATE, 1, NULL, &one, NULL, NULL, 0);
    ok = ok && PQresultStatus(r) == PGRES_TUPLES_OK;
    if (!ok) printf("    hold: %s", PQerrorMessage(c));
    PQclear(r);
    return ok;
}

/* Takes the head row in the middle of a pipeline, as a writer frozen
 * after sending its append: BEGIN and the update sent and flushed, no Sync.
 * With sleep_s, a statement that runs that long follows the update. */
static bool hold_mid_pipeline(PGconn *c, int sleep_s) {
    const char *one = "1";
    char sleep[64];
    snprintf(sleep, sizeof sleep, "SELECT pg_sleep(%d)", sleep_s);
    bool ok = PQenterPipelineMode(c) &&
              PQsendQueryParams(c, "BEGIN ISOLATION LEVEL READ COMMITTED", 0, NULL, NULL, NULL,
                                NULL, 0) &&
              PQsendQueryParams(c, HEAD_UPDATE, 1, NULL, &one, NULL, NULL, 0) &&
              (!sleep_s || PQsendQueryParams(c, sleep, 0, NULL, NULL, NULL, NULL, 0)) &&
              PQflush(c) == 0;
    if (!ok) printf("    pipeline: %s", PQerrorMessage(c));
    return ok;
}

/* Whether `sql` succeeds on c (a command, no rows). */
static bool ask_ok(PGconn *c, const char *sql) {
    PGresult *r = PQexec(c, sql);
    bool ok = PQresultStatus(r) == PGRES_COMMAND_OK;
    if (!ok) printf("    %s: %s", sql, PQerrorMessage(c));
    PQclear(r);
    return ok;
}

/* The one integer `sql` answers on c, or -1. */
static long long ask(PGconn *c, const char *sql) {
    PGresult *r = PQexec(c, sql);
    long long v = PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1
                      ? strtoll(PQgetvalue(r, 0, 0), NULL, 10)
                      : -1;
    PQclear(r);
    return v;
}

/* Whether the session pid holds a transaction id (its update ran) and
 * waits on its client, in the state `state`. */
static bool holds_and_waits(PGconn *watch, int pid, const char *state) {
    char sql[512];
    snprintf(sql, sizeof sql,
             "SELECT count(*) FROM pg_stat_activity a WHERE a.pid = %d AND a.state = '%s'"
             " AND (a.state <> 'active' OR a.wait_event = 'ClientRead')"
             " AND EXISTS (SELECT 1 FROM pg_locks l WHERE l.pid = a.pid"
             " AND l.locktype = 'transactionid' AND l.granted)",
             pid, state);
    return ask(watch, sql) == 1;
}

static bool session_gone(PGconn *watch, int pid) {
    char sql[128];
    snprintf(sql, sizeof sql, "SELECT count(*) FROM pg_stat_activity WHERE pid = %d", pid);
    return ask(watch, sql) == 0;
}

/* A submit with its own timeout (th_http waits 90 s). */
struct submit {
    struct th_server *srv;
    long timeout_ms;
    const char *type; /* NULL: "stall" */
    long status;      /* -1: no answer within the timeout */
    char id[33];
    char body[16384];
    atomic_bool done;
};

static size_t keep_body(char *p, size_t size, size_t n, void *arg) {
    struct submit *x = arg;
    size_t have = strlen(x->body), add = size * n;
    if (have + add >= sizeof x->body) add = sizeof x->body - 1 - have;
    memcpy(x->body + have, p, add);
    x->body[have + add] = '\0';
    return size * n;
}

static void *submit_run(void *arg) {
    struct submit *x = arg;
    CURL *c = curl_easy_init();
    char url[256];
    snprintf(url, sizeof url, "%s/v1/tasks", x->srv->url);
    struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/json");
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    char body[64];
    snprintf(body, sizeof body, "{\"type\":\"%s\"}", x->type ? x->type : "stall");
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, x->timeout_ms);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, keep_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, x);
    x->status = -1;
    CURLcode rc = curl_easy_perform(c);
    if (rc == CURLE_OK)
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &x->status);
    else
        snprintf(x->body, sizeof x->body, "%s", curl_easy_strerror(rc));
    json_t *j = json_loads(x->body, 0, NULL);
    const char *id = j ? th_str(j, "id") : NULL;
    snprintf(x->id, sizeof x->id, "%s", id ? id : "");
    json_decref(j);
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
    atomic_store(&x->done, true);
    return NULL;
}

/* The submit answered 201 within its timeout, and its task reads back. */
static bool submit_stored(struct th_server *srv, struct submit *x) {
    if (x->status != 201) {
        printf("    the submit answered %ld: %s\n", x->status, x->body);
        return false;
    }
    char path[64];
    snprintf(path, sizeof path, "/v1/tasks/%s", x->id);
    struct th_resp *r = th_http(srv, "GET", path, NULL);
    bool ok = *x->id && r->status == 200 && th_str(r->json, "id") &&
              strcmp(th_str(r->json, "id"), x->id) == 0;
    if (!ok) printf("    reading task '%s' back answered %ld\n", x->id, r->status);
    return ok;
}

/* A server, the test's watching session, and a stand-in for another
 * node's writer (application_name 'taskmill writer', as nodes built before
 * writers named their migration call it, or `app`) that keeps no
 * idle_in_transaction_session_timeout of its own: only the server's writer
 * can end it. */
struct stand_in {
    struct th_server srv;
    PGconn *watch, *stalled;
    const char *app; /* the stand-in's application_name */
    int pid;
    bool ok; /* all three are there */
};

static bool stand_in_open_as(struct stand_in *t, const char *app) {
    memset(t, 0, sizeof *t);
    t->app = app;
    if (!th_backend_is_pg()) {
        th_skip("other nodes' sessions need PostgreSQL (TASKMILL_TEST_PG)");
        return false;
    }
    if (th_server_start(&t->srv, NULL) != 0) {
        th_fail(__FILE__, __LINE__, "the server did not start");
        return false;
    }
    t->watch = session_open(&t->srv, "test watch", false);
    t->stalled = session_open(&t->srv, app, true);
    t->pid = t->stalled ? PQbackendPID(t->stalled) : 0;
    t->ok =
        t->watch && t->stalled && ask_ok(t->stalled, "SET idle_in_transaction_session_timeout = 0");
    return true;
}

static bool stand_in_open(struct stand_in *t) {
    return stand_in_open_as(t, "taskmill writer");
}

/* What became of a submit made while the stand-in held the head row. */
struct ending {
    bool started, stored, gone;
    int lines;       /* the server's log lines that it ended the stand-in */
    long long ended; /* taskmill_pg_stalled_sessions_ended_total */
};

/* Submits (when `go`) with timeout_ms, waits for the stand-in's session to
 * be gone, reads what the server logged and counted, and closes it all. */
static void stand_in_submit(struct stand_in *t, bool go, long timeout_ms, struct ending *out) {
    memset(out, 0, sizeof *out);
    struct submit x = {.srv = &t->srv, .timeout_ms = timeout_ms};
    pthread_t th;
    out->started = go && pthread_create(&th, NULL, submit_run, &x) == 0;
    if (out->started) pthread_join(th, NULL);
    if (out->started)
        TRY_WAIT_UNTIL(out->gone, session_gone(t->watch, t->pid), 10000,
                       "the stalled session to end");
    out->stored = out->started && submit_stored(&t->srv, &x);
    char who[96];
    snprintf(who, sizeof who, "ended session pid %d ('%s'", t->pid, t->app);
    out->lines = sec_log_lines(&t->srv, "taskmill: postgres: writer: stalled session: ", who);
    out->ended = th_metric(&t->srv, "taskmill_pg_stalled_sessions_ended_total");
}

static void stand_in_close(struct stand_in *t) {
    PQfinish(t->stalled);
    PQfinish(t->watch);
    th_server_free(&t->srv);
}

static void check_ended(const struct ending *e) {
    CHECK(e->started);
    CHECK(e->stored);
    CHECK(e->gone);
    CHECK_INT(e->lines, 1);
    CHECK_INT(e->ended, 1);
}

/*
 * A stalled writer of another node holds the head row: in the middle of a
 * pipeline (mid_pipeline), or idle in its transaction. The server's submit
 * gets through within `timeout_ms`, having ended that session: once,
 * logged and counted.
 */
static void stalled_writer_is_ended_as(bool mid_pipeline, long timeout_ms, const char *app) {
    struct stand_in t;
    if (!stand_in_open_as(&t, app)) return;
    bool held = t.ok && (mid_pipeline ? hold_mid_pipeline(t.stalled, 0) : hold_idle(t.stalled));
    bool waits = false;
    if (held)
        TRY_WAIT_UNTIL(
            waits, holds_and_waits(t.watch, t.pid, mid_pipeline ? "active" : "idle in transaction"),
            10000, "the stalled session to hold the head row and wait on its client");
    struct ending e;
    stand_in_submit(&t, waits, timeout_ms, &e);
    stand_in_close(&t);
    CHECK(held);
    CHECK(waits);
    check_ended(&e);
}

static void stalled_writer_is_ended(bool mid_pipeline, long timeout_ms) {
    stalled_writer_is_ended_as(mid_pipeline, timeout_ms, "taskmill writer");
}

static void test_writer_stalled_mid_pipeline_is_ended(void) {
    /* The build before: 503 after the 30 s statement_timeout. */
    stalled_writer_is_ended(true, 15000);
}

static void test_writer_stalled_idle_in_transaction_is_ended(void) {
    /* The stand-in keeps no idle_in_transaction_session_timeout of its
     * own (stalled_writer_is_ended), so only the server's writer can end
     * it: the build before answers 503 after its 30 s statement_timeout,
     * and 15 s leaves the expected 5 to 7 s (plus a look's time on a
     * loaded machine) clear headroom. With a writer's 10 s idle timeout
     * the stand-in would be ended at 10 s whatever the build, and a limit
     * that failed the build before would have to stay under it. */
    stalled_writer_is_ended(false, 15000);
}

/* A writer named as nodes name theirs since they say which migrations
 * they know ('taskmill writer/N'): the build before took it for a session
 * that is not a taskmill writer, and left it (the submit answered 503). */
static void test_writer_named_with_its_migration_is_ended(void) {
    stalled_writer_is_ended_as(false, 15000, "taskmill writer/11");
}

/* Whether the session pid holds a transaction id and runs pg_sleep. */
static bool holds_and_sleeps(PGconn *watch, int pid) {
    char sql[512];
    snprintf(sql, sizeof sql,
             "SELECT count(*) FROM pg_stat_activity a WHERE a.pid = %d AND a.state = 'active'"
             " AND a.wait_event = 'PgSleep' AND EXISTS (SELECT 1 FROM pg_locks l"
             " WHERE l.pid = a.pid AND l.locktype = 'transactionid' AND l.granted)",
             pid);
    return ask(watch, sql) == 1;
}

/*
 * Another node's writer holds the head row and runs a statement past the
 * 5 s bound (pg_sleep), so the server's writer logs it as left alone
 * ("running a statement"); then it stalls, idle in its transaction or in
 * the middle of its pipeline. It is ended all the same, and the submit
 * gets through. The build before marked a session it logged as one whose
 * end was refused, and never ended it: its submit waited to its 30 s
 * statement_timeout (the stand-in keeps no idle timeout of its own), past
 * the 24 s limit here, which leaves the expected 14 to 17 s (9 s of
 * sleep, then 5 to 7 s) clear headroom.
 */
static void writer_stalled_after_a_statement_is_ended(bool mid_pipeline) {
    struct stand_in t;
    if (!stand_in_open(&t)) return;
    bool held = false;
    if (t.ok && mid_pipeline) held = hold_mid_pipeline(t.stalled, 9);
    if (t.ok && !mid_pipeline)
        held = hold_idle(t.stalled) && PQsendQuery(t.stalled, "SELECT pg_sleep(9)") &&
               PQflush(t.stalled) == 0;
    bool sleeps = false;
    if (held)
        TRY_WAIT_UNTIL(sleeps, holds_and_sleeps(t.watch, t.pid), 10000,
                       "the other writer to hold the head row and run its statement");
    struct ending e;
    stand_in_submit(&t, sleeps, 24000, &e);
    char who[64];
    snprintf(who, sizeof who, "session pid %d ('taskmill writer', active", t.pid);
    /* The case this is about: it was logged while it ran its statement. */
    int running = sec_log_lines(&t.srv, who, "not ended: it is running a statement");
    stand_in_close(&t);
    CHECK(held);
    CHECK(sleeps);
    CHECK_INT(running, 1);
    check_ended(&e);
}

static void test_writer_stalled_idle_after_a_statement_is_ended(void) {
    writer_stalled_after_a_statement_is_ended(false);
}

static void test_writer_stalled_mid_pipeline_after_a_statement_is_ended(void) {
    writer_stalled_after_a_statement_is_ended(true);
}

/*
 * A session that is not a taskmill writer (psql, say), idle in a
 * transaction that holds the head row, is left alone: once the server's
 * writer has waited past the bound it logs that session as not ended, the
 * session is still there and the submit still waits; when the session
 * lets go, the submit succeeds.
 */
static void test_other_session_is_not_ended(void) {
    if (!th_backend_is_pg()) {
        th_skip("other sessions need PostgreSQL (TASKMILL_TEST_PG)");
        return;
    }
    struct th_server srv;
    CHECK_INT(th_server_start(&srv, NULL), 0);
    PGconn *watch = session_open(&srv, "test watch", false);
    PGconn *other = session_open(&srv, "psql", false);
    bool held = watch && other && hold_idle(other);
    int pid = other ? PQbackendPID(other) : 0;
    struct submit x = {.srv = &srv, .timeout_ms = 60000};
    pthread_t th;
    bool started = held && pthread_create(&th, NULL, submit_run, &x) == 0;
    char who[64];
    snprintf(who, sizeof who, "session pid %d ('psql', idle in transaction", pid);
    bool logged = false;
    if (started)
        TRY_WAIT_UNTIL(logged,
                       sec_log_lines(&srv, who, "not ended: it is not a taskmill writer") == 1,
                       20000, "the server to log the session that holds it up");
    /* Looks go on every second: three more must not log it again. The
     * time must pass by design (a window in which nothing may happen). */
    if (logged) th_sleep_ms(3500);
    int again = sec_log_lines(&srv, who, "not ended");
    /* The server looked past the bound and let it be: still there, still
     * in its transaction, the submit still waiting for it. */
    bool still = logged && holds_and_waits(watch, pid, "idle in transaction");
    bool waiting = logged && !atomic_load(&x.done);
    if (other) {
        PGresult *r = PQexec(other, "ROLLBACK");
        PQclear(r);
    }
    if (started) pthread_join(th, NULL);
    bool stored = started && submit_stored(&srv, &x);
    long long ended = th_metric(&srv, "taskmill_pg_stalled_sessions_ended_total");
    PQfinish(other);
    PQfinish(watch);
    th_server_free(&srv);
    CHECK(held);
    CHECK(started);
    CHECK(logged);
    CHECK_INT(again, 1);
    CHECK(still);
    CHECK(waiting);
    CHECK(stored);
    CHECK_INT(ended, 0);
}

#define QUEUED 10

/* How many sessions of the test's wait for a lock. */
static long long queued_waiting(PGconn *watch) {
    return ask(watch,
               "SELECT count(*) FROM pg_stat_activity WHERE application_name IN"
               " ('queued', 'taskmill writer') AND state = 'active'"
               " AND wait_event_type = 'Lock'");
}

/*
 * More blockers than the build before kept track of: a psql session holds
 * the head row, QUEUED others wait for it ahead of the server's writer.
 * Each of them is logged once a wait, however many looks follow (the build
 * before logged the 9th and later ones at every look). The first in the
 * queue stands for another node's writer: it is logged as waiting for a
 * lock itself (the build before said "running a statement").
 */
static void test_many_blockers_are_logged_once(void) {
    if (!th_backend_is_pg()) {
        th_skip("other sessions need PostgreSQL (TASKMILL_TEST_PG)");
        return;
    }
    struct th_server srv;
    CHECK_INT(th_server_start(&srv, NULL), 0);
    PGconn *watch = session_open(&srv, "test watch", false);
    PGconn *holder = session_open(&srv, "psql", false);
    PGconn *queued[QUEUED] = {0};
    bool held = watch && holder && hold_idle(holder);
    const char *one = "1";
    bool sent = held;
    bool waiting = false;
    for (int i = 0; i < QUEUED && sent; i++) {
        queued[i] = session_open(&srv, i ? "queued" : "taskmill writer", i == 0);
        sent = queued[i] && PQsendQueryParams(queued[i], HEAD_UPDATE, 1, NULL, &one, NULL, NULL, 0);
        if (sent && i == 0) /* first in the queue */
            TRY_WAIT_UNTIL(sent, queued_waiting(watch) == 1, 10000,
                           "the other writer to wait for the head row");
    }
    if (sent)
        TRY_WAIT_UNTIL(waiting, queued_waiting(watch) == QUEUED, 10000,
                       "%d sessions to wait for the head row", QUEUED);
    struct submit x = {.srv = &srv, .timeout_ms = 60000};
    pthread_t th;
    bool started = waiting && pthread_create(&th, NULL, submit_run, &x) == 0;
    char who[64];
    int logged_n = 0, twice = 0, in_line = 0;
    bool all = false;
    if (started) {
        /* Every queued session blocks the writer (ahead of it in the queue). */
        TRY_WAIT_UNTIL(all, sec_log_lines(&srv, "('queued',", "not ended") >= QUEUED - 1, 20000,
                       "the server to log the %d queued sessions", QUEUED - 1);
        /* Looks go on every second: three more must log none again. */
        if (all) th_sleep_ms(3500);
        for (int i = 0; i < QUEUED; i++) {
            snprintf(who, sizeof who, "session pid %d ('%s',", PQbackendPID(queued[i]),
                     i ? "queued" : "taskmill writer");
            int n = sec_log_lines(&srv, who, "not ended");
            logged_n += n == 1;
            twice += n > 1;
            if (i == 0)
                in_line = sec_log_lines(&srv, who, "it is a taskmill writer waiting for a lock");
        }
    }
    if (holder) {
        PGresult *r = PQexec(holder, "ROLLBACK");
        PQclear(r);
    }
    if (started) pthread_join(th, NULL);
    bool stored = started && submit_stored(&srv, &x);
    for (int i = 0; i < QUEUED; i++)
        PQfinish(queued[i]);
    PQfinish(holder);
    PQfinish(watch);
    th_server_free(&srv);
    CHECK(held);
    CHECK(sent);
    CHECK(waiting);
    CHECK(started);
    CHECK(all);
    CHECK_INT(twice, 0);
    CHECK_INT(logged_n, QUEUED);
    CHECK_INT(in_line, 1);
    CHECK(stored);
}

/* The pid of the session a session `blocker` blocks, or 0. */
static int blocked_by(PGconn *watch, int blocker) {
    char sql[160];
    snprintf(sql, sizeof sql,
             "SELECT coalesce(min(pid), 0) FROM pg_stat_activity"
             " WHERE %d = ANY(pg_blocking_pids(pid))",
             blocker);
    long long pid = ask(watch, sql);
    return pid > 0 ? (int)pid : 0;
}

/*
 * A real node stalls inside a transaction that holds the head row: node B's
 * batch waits for the row behind a session of the test, B is frozen
 * (SIGSTOP), and the session lets go, so B's session takes the row, runs
 * the rest of its pipeline and sits idle in its transaction with B unable
 * to send its COMMIT. Node A's submit gets through, having ended B's
 * session. When B comes back (SIGCONT) its submit is answered 503 and
 * stored nothing, and its next submit succeeds on a new connection.
 */
static void test_stalled_node_comes_back_to_a_503_and_reconnects(void) {
    struct th_server a, b;
    if (!th_backend_is_pg()) {
        th_skip("several nodes need PostgreSQL (TASKMILL_TEST_PG)");
        return;
    }
    CHECK_INT(th_server_start(&a, NULL), 0);
    if (th_server_start_peer(&b, &a, NULL)) {
        th_server_free(&a);
        return;
    }
    PGconn *watch = session_open(&a, "test watch", false);
    PGconn *other = session_open(&a, "psql", false);
    bool held = watch && other && hold_idle(other);
    int other_pid = other ? PQbackendPID(other) : 0;
    struct submit xb = {.srv = &b, .timeout_ms = 60000, .type = "frozen"};
    pthread_t th;
    bool started = held && pthread_create(&th, NULL, submit_run, &xb) == 0;
    int bpid = 0; /* B's writer session */
    bool b_waits = false, b_stopped = false, b_holds = false;
    if (started)
        TRY_WAIT_UNTIL(b_waits, (bpid = blocked_by(watch, other_pid)) > 0, 10000,
                       "node B's writer to wait for the head row");
    if (b_waits) b_stopped = kill(b.pid, SIGSTOP) == 0;
    if (other) {
        PGresult *r = PQexec(other, "ROLLBACK");
        PQclear(r);
    }
    if (b_stopped)
        TRY_WAIT_UNTIL(b_holds, holds_and_waits(watch, bpid, "idle in transaction"), 10000,
                       "node B's session to hold the head row, idle in its transaction");
    struct submit xa = {.srv = &a, .timeout_ms = 8500};
    pthread_t tha;
    bool a_started = b_holds && pthread_create(&tha, NULL, submit_run, &xa) == 0;
    if (a_started) pthread_join(tha, NULL);
    bool a_stored = a_started && submit_stored(&a, &xa);
    bool gone = false;
    if (a_started)
        TRY_WAIT_UNTIL(gone, session_gone(watch, bpid), 10000, "node B's session to end");
    if (b_stopped) kill(b.pid, SIGCONT);
    if (started) pthread_join(th, NULL);
    long long frozen = watch ? ask(watch, "SELECT count(*) FROM tasks WHERE type = 'frozen'") : -1;
    struct submit again = {.srv = &b, .timeout_ms = 20000, .type = "again"};
    bool b_again = started && (submit_run(&again), submit_stored(&b, &again));
    char who[64];
    /* A node's writer says which migrations it knows: 'taskmill writer/N'. */
    snprintf(who, sizeof who, "ended session pid %d ('taskmill writer/", bpid);
    int lines = sec_log_lines(&a, "taskmill: postgres: writer: stalled session: ", who);
    PQfinish(other);
    PQfinish(watch);
    th_server_free(&b);
    th_server_free(&a);
    CHECK(held);
    CHECK(started);
    CHECK(b_waits);
    CHECK(b_stopped);
    CHECK(b_holds);
    CHECK(a_stored);
    CHECK(gone);
    CHECK_INT(lines, 1);
    if (xb.status != 503)
        printf("    node B's frozen submit answered %ld: %s\n", xb.status, xb.body);
    CHECK_INT(xb.status, 503);
    CHECK_INT(frozen, 0);
    CHECK(b_again);
}

static const struct th_test tests[] = {
    {"a writer stalled mid-pipeline holding the event head is ended; the write goes through",
     test_writer_stalled_mid_pipeline_is_ended},
    {"a writer stalled idle in its transaction holding the event head is ended; the write goes "
     "through",
     test_writer_stalled_idle_in_transaction_is_ended},
    {"a writer that ran a long statement, then stalled idle in its transaction, is ended",
     test_writer_stalled_idle_after_a_statement_is_ended},
    {"a writer that ran a long statement, then stalled mid-pipeline, is ended",
     test_writer_stalled_mid_pipeline_after_a_statement_is_ended},
    {"a writer named with its migration ('taskmill writer/11'), stalled idle in its transaction, "
     "is ended",
     test_writer_named_with_its_migration_is_ended},
    {"a session that is not a taskmill writer is logged, never ended",
     test_other_session_is_not_ended},
    {"more than eight blockers are each logged once a wait", test_many_blockers_are_logged_once},
    {"a node frozen inside its transaction is ended; back, it answers 503 and reconnects",
     test_stalled_node_comes_back_to_a_503_and_reconnects},
    {NULL, NULL},
};

int main(int argc, char **argv) {
    return th_main(tests, argc, argv) || th_failed();
}
