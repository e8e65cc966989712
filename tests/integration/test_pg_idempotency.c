/*
 * Idempotency keys that other nodes' open batches are inserting, on
 * PostgreSQL. What must hold: a batch of submits whose keys other
 * transactions hold (inserted, not committed yet) waits for them and
 * answers their tasks, however many of its keys are held and however
 * those transactions end in turn; it is never refused for having raced.
 *
 * The other nodes are stood in for by libpq connections of the test, each
 * a transaction that does what a node's keyed submit does (store_pg.c,
 * pg_find_idempotent): locks the key, inserts a task with it (a copy of a
 * task submitted first), and commits when the test says.
 *
 * PostgreSQL only (TASKMILL_TEST_PG); skipped on SQLite.
 */
#include <libpq-fe.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "harness.h"

#define NKEYS 3

static bool sql_ok(PGconn *c, const char *sql) {
    PGresult *r = PQexec(c, sql);
    ExecStatusType st = PQresultStatus(r);
    bool ok = st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK;
    if (!ok) printf("    sql: %s: %s", sql, PQerrorMessage(c));
    PQclear(r);
    return ok;
}

/* Whether a backend is waiting on a lock that the backend `pid` holds. */
static bool blocks_someone(PGconn *watch, int pid) {
    char sql[160];
    snprintf(sql, sizeof sql,
             "SELECT count(*) FROM pg_stat_activity WHERE %d = ANY(pg_blocking_pids(pid))", pid);
    PGresult *r = PQexec(watch, sql);
    bool yes = PQresultStatus(r) == PGRES_TUPLES_OK && atoi(PQgetvalue(r, 0, 0)) > 0;
    PQclear(r);
    return yes;
}

/* Which of other[0..NKEYS) not done yet a backend is waiting for, or -1. */
static int blocked_on(PGconn *watch, PGconn **other, const bool *done) {
    for (int k = 0; k < NKEYS; k++)
        if (!done[k] && blocks_someone(watch, PQbackendPID(other[k]))) return k;
    return -1;
}

struct batch_call {
    struct th_server *srv;
    const char *body;
    long status;
    char ids[NKEYS][33];
    char body_out[300];
};

static void *batch_submit(void *arg) {
    struct batch_call *b = arg;
    struct th_resp *r = th_http(b->srv, "POST", "/v1/tasks/batch", "%s", b->body);
    b->status = r->status;
    snprintf(b->body_out, sizeof b->body_out, "%.299s", r->body ? r->body : "");
    for (int i = 0; i < NKEYS && r->json; i++) {
        char path[32];
        snprintf(path, sizeof path, "tasks.%d.id", i);
        const char *id = th_str(r->json, path);
        snprintf(b->ids[i], sizeof b->ids[i], "%s", id ? id : "");
    }
    th_http(NULL, NULL, NULL, NULL);
    return NULL;
}

static void test_batch_waits_for_keys_other_nodes_hold(void) {
    if (!th_backend_is_pg()) {
        th_skip("other nodes' transactions need PostgreSQL (TASKMILL_TEST_PG)");
        return;
    }
    struct th_server srv;
    CHECK_INT(th_server_start(&srv, NULL), 0);
    char *tmpl = th_submit(&srv, "idemtmpl", NULL);
    PGconn *other[NKEYS] = {0}, *watch = PQconnectdb(srv.store);
    char keys[NKEYS][32], ids[NKEYS][33];
    bool held = tmpl && PQstatus(watch) == CONNECTION_OK;
    for (int k = 0; k < NKEYS && held; k++) {
        snprintf(keys[k], sizeof keys[k], "idem-%d-%d", (int)getpid(), k);
        snprintf(ids[k], sizeof ids[k], "%.31s%d", "0123456789abcdef0123456789abcdef", k);
        other[k] = PQconnectdb(srv.store);
        char sql[1024];
        snprintf(sql, sizeof sql,
                 "BEGIN;"
                 " SELECT pg_advisory_xact_lock(hashtext(namespace), hashtext('%s'))"
                 " FROM tasks WHERE id = '%s';"
                 " CREATE TEMP TABLE x ON COMMIT DROP AS SELECT * FROM tasks WHERE id = '%s';"
                 " UPDATE x SET id = '%s', idempotency_key = '%s';"
                 " INSERT INTO tasks SELECT * FROM x",
                 keys[k], tmpl, tmpl, ids[k], keys[k]);
        held = PQstatus(other[k]) == CONNECTION_OK && sql_ok(other[k], sql);
    }
    struct batch_call b = {&srv, NULL, 0, {""}, ""};
    char body[512];
    snprintf(body, sizeof body,
             "{\"tasks\":[{\"type\":\"idem\",\"idempotency_key\":\"%s\"},"
             "{\"type\":\"idem\",\"idempotency_key\":\"%s\"},"
             "{\"type\":\"idem\",\"idempotency_key\":\"%s\"}]}",
             keys[0], keys[1], keys[2]);
    b.body = body;
    pthread_t th;
    bool started = held && pthread_create(&th, NULL, batch_submit, &b) == 0;
    /* Each other transaction commits once the batch waits for it, in the
     * order the batch takes the keys' locks (their own order, not the
     * submits'). */
    bool waited[NKEYS] = {false};
    for (int round = 0; round < NKEYS && started; round++) {
        int k = -1;
        bool found = false;
        TRY_WAIT_UNTIL(found, (k = blocked_on(watch, other, waited)) >= 0, 10000,
                       "the batch to wait for a transaction holding one of its keys (%d done)",
                       round);
        if (!found) break;
        waited[k] = true;
        sql_ok(other[k], "COMMIT");
    }
    for (int k = 0; k < NKEYS; k++)
        if (!waited[k] && other[k] && PQstatus(other[k]) == CONNECTION_OK)
            sql_ok(other[k], "COMMIT");
    if (started) pthread_join(th, NULL);
    for (int k = 0; k < NKEYS; k++)
        PQfinish(other[k]);
    PQfinish(watch);
    th_server_free(&srv);
    free(tmpl);
    CHECK(held);
    CHECK(started);
    if (b.status != 200) printf("    the batch answered %ld: %s\n", b.status, b.body_out);
    CHECK_INT(b.status, 200); /* every task was there: none created */
    for (int k = 0; k < NKEYS; k++)
        CHECK_STR(b.ids[k], ids[k]);
}

/*
 * Two batches that share keys take their locks in one order, whatever the
 * order of their submits. The other transaction holds the key the server
 * must lock first (in the locks' own order), and once the server's batch
 * waits for it, asks for the other key, which that batch lists first.
 * Taken in the submits' order, the batch would hold that key and each
 * would wait for the other: a deadlock, found after a second, and the
 * batch applied again (taskmill_store_batch_retries_total). In the locks'
 * order it holds nothing while it waits.
 */
static void test_batches_lock_keys_in_one_order(void) {
    if (!th_backend_is_pg()) {
        th_skip("other nodes' transactions need PostgreSQL (TASKMILL_TEST_PG)");
        return;
    }
    struct th_server srv;
    CHECK_INT(th_server_start(&srv, NULL), 0);
    char *tmpl = th_submit(&srv, "idemorder", NULL);
    PGconn *other = PQconnectdb(srv.store), *watch = PQconnectdb(srv.store);
    bool ok = tmpl && PQstatus(other) == CONNECTION_OK && PQstatus(watch) == CONNECTION_OK;
    /* first: the key whose lock sorts first; second: the other. */
    char first[48] = "", second[48] = "", sql[1024];
    if (ok) {
        snprintf(sql, sizeof sql,
                 "SELECT k FROM tasks, unnest(ARRAY['ord-%d-a','ord-%d-b']) AS k WHERE id = '%s'"
                 " ORDER BY hashtext(namespace), hashtext(k)",
                 (int)getpid(), (int)getpid(), tmpl);
        PGresult *r = PQexec(watch, sql);
        ok = PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 2;
        if (ok) {
            snprintf(first, sizeof first, "%s", PQgetvalue(r, 0, 0));
            snprintf(second, sizeof second, "%s", PQgetvalue(r, 1, 0));
        }
        PQclear(r);
    }
    snprintf(sql, sizeof sql,
             "BEGIN; SELECT pg_advisory_xact_lock(hashtext(namespace), hashtext('%s'))"
             " FROM tasks WHERE id = '%s'",
             first, tmpl);
    ok = ok && sql_ok(other, sql);
    struct batch_call b = {&srv, NULL, 0, {""}, ""};
    char body[512];
    snprintf(body, sizeof body,
             "{\"tasks\":[{\"type\":\"ord\",\"idempotency_key\":\"%s\"},"
             "{\"type\":\"ord\",\"idempotency_key\":\"%s\"}]}",
             second, first);
    b.body = body;
    pthread_t th;
    bool started = ok && pthread_create(&th, NULL, batch_submit, &b) == 0;
    bool waited = false, second_locked = false;
    if (started) {
        TRY_WAIT_UNTIL(waited, blocks_someone(watch, PQbackendPID(other)), 10000,
                       "the batch to wait for the key the other transaction holds");
        snprintf(sql, sizeof sql,
                 "SELECT pg_advisory_xact_lock(hashtext(namespace), hashtext('%s'))"
                 " FROM tasks WHERE id = '%s'",
                 second, tmpl);
        second_locked = sql_ok(other, sql);
    }
    if (PQstatus(other) == CONNECTION_OK) sql_ok(other, second_locked ? "COMMIT" : "ROLLBACK");
    if (started) pthread_join(th, NULL);
    long long retries = th_metric(&srv, "taskmill_store_batch_retries_total");
    PQfinish(other);
    PQfinish(watch);
    th_server_free(&srv);
    free(tmpl);
    CHECK(ok);
    CHECK(started);
    CHECK(waited);
    CHECK(second_locked); /* no deadlock found on the other side */
    CHECK_INT(b.status, 201);
    CHECK_INT(retries, 0); /* nor on the batch's */
}

static const struct th_test tests[] = {
    {"a batch whose keys other transactions hold waits for each and answers their tasks",
     test_batch_waits_for_keys_other_nodes_hold},
    {"batches sharing idempotency keys lock them in one order: no deadlock",
     test_batches_lock_keys_in_one_order},
    {NULL, NULL},
};

int main(int argc, char **argv) {
    return th_main(tests, argc, argv) || th_failed();
}
