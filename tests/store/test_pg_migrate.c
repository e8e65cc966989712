/*
 * PostgreSQL migrations as nodes meet them: several stores opened at once
 * on an empty database (nodes started together) each take their turn,
 * apply every migration once between them and all open; a database that a
 * newer taskmill migrated is refused, and the error says so. A migration
 * that older nodes cannot run beside (marked so in its file) is not applied
 * while sessions of older nodes are connected, and the error names them;
 * the test puts a list of its own, the real migrations and one more, in
 * place of the built-in one (pg_test_set_migrations).
 *
 * PostgreSQL only (TASKMILL_TEST_PG); skipped on SQLite.
 */
#include <libpq-fe.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../src/common/embedded.h"
#include "../src/common/err.h"
#include "../src/store/store.h"
#include "../src/store/store_pg_int.h"
#include "harness.h"

#define NODES 4

struct opener {
    const char *url;
    struct store *s;
    int rc;
    char message[256];
};

static void *open_one(void *arg) {
    struct opener *o = arg;
    struct tm_error e;
    err_clear(&e);
    struct store_options opt = {.tool = true};
    o->rc = store_open(o->url, &opt, &o->s, &e);
    snprintf(o->message, sizeof o->message, "%s", e.message);
    return NULL;
}

/* One integer from SQL on url, or -1. */
static long long sql_int(const char *url, const char *sql) {
    PGconn *c = PQconnectdb(url);
    PGresult *r = PQexec(c, sql);
    long long v = -1;
    if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1)
        v = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
    else if (PQresultStatus(r) != PGRES_COMMAND_OK)
        printf("    sql: %s: %s", sql, PQerrorMessage(c));
    else
        v = 0;
    PQclear(r);
    PQfinish(c);
    return v;
}

static bool pg_only(void) {
    if (th_backend_is_pg()) return true;
    th_skip("PostgreSQL migrations need PostgreSQL (TASKMILL_TEST_PG)");
    return false;
}

static void test_nodes_start_at_once_on_an_empty_database(void) {
    if (!pg_only()) return;
    char db[64], url[600];
    CHECK_INT(th_pg_db_create(db, url, sizeof url), 0);
    struct opener o[NODES];
    pthread_t th[NODES];
    for (int i = 0; i < NODES; i++) {
        o[i] = (struct opener){.url = url};
        pthread_create(&th[i], NULL, open_one, &o[i]);
    }
    int opened = 0;
    for (int i = 0; i < NODES; i++) {
        pthread_join(th[i], NULL);
        if (o[i].rc == 0)
            opened++;
        else
            printf("    node %d: %s\n", i, o[i].message);
        store_close(o[i].s);
    }
    long long rows = sql_int(url, "SELECT count(*) FROM taskmill_migrations");
    long long distinct = sql_int(url, "SELECT count(DISTINCT version) FROM taskmill_migrations");
    long long heads = sql_int(url, "SELECT count(*) FROM event_meta WHERE name = 'head'");
    th_pg_db_drop(db);
    CHECK_INT(opened, NODES);
    CHECK(rows > 0);
    CHECK_INT(rows, distinct); /* each applied once */
    CHECK_INT(heads, 1);
}

static void test_database_of_a_newer_taskmill_is_refused(void) {
    if (!pg_only()) return;
    char db[64], url[600];
    CHECK_INT(th_pg_db_create(db, url, sizeof url), 0);
    struct opener o = {.url = url};
    open_one(&o);
    store_close(o.s);
    long long ins = sql_int(url,
                            "INSERT INTO taskmill_migrations(version, name, applied_at)"
                            " VALUES (9999, '9999_future.sql', 0)");
    struct opener again = {.url = url};
    open_one(&again);
    store_close(again.s);
    long long rows = sql_int(url, "SELECT count(*) FROM taskmill_migrations WHERE version = 9999");
    th_pg_db_drop(db);
    CHECK_INT(o.rc, 0);
    CHECK_INT(ins, 0);
    CHECK(again.rc != 0);
    printf("    refused: %s\n", again.message);
    CHECK(strstr(again.message, "9999") != NULL);  /* names what the database has */
    CHECK(strstr(again.message, "newer") != NULL); /* and why that is refused */
    CHECK_INT(rows, 1);                            /* nothing undone */
}

extern const struct embedded_file pg_migrations[];

/* The built-in migrations and `extra` after them, in list (room for 64). */
static void migrations_with(struct embedded_file list[64], const char *name, const char *sql) {
    int n = 0;
    while (pg_migrations[n].name && n < 62) {
        list[n] = pg_migrations[n];
        n++;
    }
    list[n++] = (struct embedded_file){name, sql, strlen(sql)};
    list[n] = (struct embedded_file){NULL, NULL, 0};
}

/* A session on url named app (NULL: none named), or NULL. */
static PGconn *session(const char *url, const char *app) {
    const char *kw[] = {"application_name", "dbname", NULL};
    const char *val[] = {app ? app : "", url, NULL};
    PGconn *c = PQconnectdbParams(kw, val, 1);
    if (PQstatus(c) != CONNECTION_OK) {
        printf("    session '%s': %s", app ? app : "", PQerrorMessage(c));
        PQfinish(c);
        return NULL;
    }
    return c;
}

static bool names_pid(const char *message, PGconn *c) {
    char pid[32];
    snprintf(pid, sizeof pid, " %d", c ? PQbackendPID(c) : -1);
    const char *at = message;
    while ((at = strstr(at, pid))) {
        at += strlen(pid);
        if (*at < '0' || *at > '9') return true;
    }
    return false;
}

static void test_which_migrations_older_nodes_cannot_run_beside(void) {
    int marked = 0;
    for (const struct embedded_file *m = pg_migrations; m->name; m++)
        if (pg_migration_not_beside_older(m)) {
            marked++;
            CHECK(atoi(m->name) == 9 || atoi(m->name) == 10);
        }
    CHECK_INT(marked, 2);
    CHECK_INT(pg_writer_app("taskmill writer"), -1);
    CHECK_INT(pg_writer_app("taskmill writer/11"), 11);
    CHECK_INT(pg_writer_app("taskmill writer/"), -2);
    CHECK_INT(pg_writer_app("taskmill writer/11x"), -2);
    CHECK_INT(pg_writer_app("taskmill writer 11"), -2);
    CHECK_INT(pg_writer_app("taskmill"), -2);
    CHECK_INT(pg_writer_app("psql"), -2);
}

#define BESIDE_SQL                                                                       \
    "-- a test's migration\n-- taskmill: older nodes cannot run beside this migration\n" \
    "CREATE TABLE beside_test (x integer);\n"

static void test_migration_refused_beside_older_nodes(void) {
    if (!pg_only()) return;
    char db[64], url[600];
    CHECK_INT(th_pg_db_create(db, url, sizeof url), 0);
    struct opener o = {.url = url};
    open_one(&o); /* every real migration */
    store_close(o.s);
    CHECK_INT(o.rc, 0);
    long long had = sql_int(url, "SELECT max(version) FROM taskmill_migrations");
    static struct embedded_file list[64];
    migrations_with(list, "9000_beside_test.sql", BESIDE_SQL);
    pg_test_set_migrations(list);
    /* Older nodes: a writer of a node built before writers said what they
     * know, one of a node that knows what the database has now, and a
     * session of a node built before writers were named apart. Not older:
     * a writer that knows 9000, psql, and an older writer on another
     * database of the cluster. */
    PGconn *plain = session(url, "taskmill writer"), *known = session(url, "taskmill writer/11");
    PGconn *known2 = session(url, "taskmill writer/11"), *old = session(url, "taskmill");
    PGconn *same = session(url, "taskmill writer/9000"), *psql = session(url, "psql");
    PGconn *elsewhere = session(getenv("TASKMILL_TEST_PG"), "taskmill writer");
    struct opener all = {.url = url};
    open_one(&all);
    store_close(all.s);
    printf("    refused: %s\n", all.message);
    CHECK(all.rc != 0);
    CHECK(strstr(all.message, "migration 9000 cannot run beside older taskmill nodes") != NULL);
    CHECK(strstr(all.message, "stop those nodes first, then start this one") != NULL);
    CHECK(names_pid(all.message, plain));
    CHECK(names_pid(all.message, known));
    CHECK(names_pid(all.message, known2));
    CHECK(names_pid(all.message, old));
    CHECK(!names_pid(all.message, same));
    CHECK(!names_pid(all.message, psql));
    CHECK(!names_pid(all.message, elsewhere));
    CHECK_INT(sql_int(url, "SELECT max(version) FROM taskmill_migrations"), had);
    CHECK_INT(sql_int(url, "SELECT count(*) FROM pg_class WHERE relname = 'beside_test'"), 0);
    /* The two that know 11 alone: the error says what they know. */
    PQfinish(plain);
    PQfinish(old);
    struct opener two = {.url = url};
    open_one(&two);
    store_close(two.s);
    printf("    refused: %s\n", two.message);
    CHECK(two.rc != 0);
    char want[200];
    int a = PQbackendPID(known), b = PQbackendPID(known2);
    snprintf(want, sizeof want,
             "2 writer sessions of nodes that know migrations up to 11 (pids %d, %d) are connected",
             a < b ? a : b, a < b ? b : a);
    CHECK(strstr(two.message, want) != NULL);
    CHECK_INT(sql_int(url, "SELECT max(version) FROM taskmill_migrations"), had);
    CHECK_INT(sql_int(url, "SELECT count(*) FROM pg_class WHERE relname = 'beside_test'"), 0);
    /* No older node left: it migrates. */
    PQfinish(known);
    PQfinish(known2);
    struct opener none = {.url = url};
    open_one(&none);
    store_close(none.s);
    if (none.rc) printf("    not opened: %s\n", none.message);
    CHECK_INT(none.rc, 0);
    CHECK_INT(sql_int(url, "SELECT max(version) FROM taskmill_migrations"), 9000);
    CHECK_INT(sql_int(url, "SELECT count(*) FROM pg_class WHERE relname = 'beside_test'"), 1);
    pg_test_set_migrations(NULL);
    PQfinish(same);
    PQfinish(psql);
    PQfinish(elsewhere);
    th_pg_db_drop(db);
}

/* The real migrations: a database as a node that knows up to 0009 left it
 * (0010 to 0013 undone), with a session of such a node still connected
 * (named 'taskmill': nodes of that time name every session so). */
static void test_migration_0010_refused_beside_a_node_of_0009(void) {
    if (!pg_only()) return;
    char db[64], url[600];
    CHECK_INT(th_pg_db_create(db, url, sizeof url), 0);
    struct opener o = {.url = url};
    open_one(&o);
    store_close(o.s);
    CHECK_INT(o.rc, 0);
    CHECK_INT(sql_int(url,
                      "DROP INDEX webhook_deliveries_done; DROP INDEX tasks_queue;"
                      " DROP INDEX tasks_type;"
                      /* 0012 and 0013, undone as well */
                      " DROP INDEX tasks_retain; ALTER TABLE queues"
                      " DROP COLUMN retain_completed_seconds, DROP COLUMN retain_failed_seconds,"
                      " DROP COLUMN retain_cancelled_seconds;"
                      " DROP INDEX tasks_schedule_runs; ALTER TABLE tasks DROP COLUMN schedule_id;"
                      " DELETE FROM taskmill_migrations WHERE version >= 10"),
              0);
    PGconn *old = session(url, "taskmill");
    struct opener next = {.url = url};
    open_one(&next);
    store_close(next.s);
    printf("    refused: %s\n", next.message);
    CHECK(next.rc != 0);
    char want[120];
    snprintf(want, sizeof want, "1 session named 'taskmill'");
    CHECK(strstr(next.message, "migration 10 cannot run beside older taskmill nodes") != NULL);
    CHECK(strstr(next.message, want) != NULL);
    CHECK(names_pid(next.message, old));
    CHECK_INT(sql_int(url, "SELECT max(version) FROM taskmill_migrations"), 9);
    CHECK_INT(sql_int(url, "SELECT count(*) FROM pg_class WHERE relname = 'tasks_queue'"), 0);
    PQfinish(old);
    struct opener last = {.url = url};
    open_one(&last);
    store_close(last.s);
    if (last.rc) printf("    not opened: %s\n", last.message);
    CHECK_INT(last.rc, 0);
    CHECK_INT(sql_int(url, "SELECT count(*) FROM taskmill_migrations WHERE version >= 10"), 4);
    th_pg_db_drop(db);
}

static void test_migration_that_only_adds_runs_beside_older_nodes(void) {
    if (!pg_only()) return;
    char db[64], url[600];
    CHECK_INT(th_pg_db_create(db, url, sizeof url), 0);
    struct opener o = {.url = url};
    open_one(&o);
    store_close(o.s);
    CHECK_INT(o.rc, 0);
    static struct embedded_file list[64];
    migrations_with(list, "9001_adds_test.sql", "CREATE TABLE adds_test (x integer);\n");
    pg_test_set_migrations(list);
    PGconn *plain = session(url, "taskmill writer"), *old = session(url, "taskmill");
    struct opener next = {.url = url};
    open_one(&next);
    store_close(next.s);
    if (next.rc) printf("    not opened: %s\n", next.message);
    CHECK_INT(next.rc, 0);
    CHECK_INT(sql_int(url, "SELECT max(version) FROM taskmill_migrations"), 9001);
    pg_test_set_migrations(NULL);
    PQfinish(plain);
    PQfinish(old);
    th_pg_db_drop(db);
}

static const struct th_test tests[] = {
    {"the migrations older nodes cannot run beside are 0009 and 0010; writer names read",
     test_which_migrations_older_nodes_cannot_run_beside},
    {"a migration older nodes cannot run beside is refused while they are connected, naming them",
     test_migration_refused_beside_older_nodes},
    {"migration 0010 is refused while a node that knows up to 0009 is connected",
     test_migration_0010_refused_beside_a_node_of_0009},
    {"a migration that only adds runs beside older nodes",
     test_migration_that_only_adds_runs_beside_older_nodes},
    {"nodes started at once on an empty database migrate it once and all open",
     test_nodes_start_at_once_on_an_empty_database},
    {"a database a newer taskmill migrated is refused, saying so",
     test_database_of_a_newer_taskmill_is_refused},
    {NULL, NULL},
};

int main(int argc, char **argv) {
    return th_main(tests, argc, argv) || th_failed();
}
