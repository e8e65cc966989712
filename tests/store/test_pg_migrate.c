/*
 * PostgreSQL migrations as nodes meet them: several stores opened at once
 * on an empty database (nodes started together) each take their turn,
 * apply every migration once between them and all open; a database that a
 * newer taskmill migrated is refused, and the error says so.
 *
 * PostgreSQL only (TASKMILL_TEST_PG); skipped on SQLite.
 */
#include <libpq-fe.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../src/common/err.h"
#include "../src/store/store.h"
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

static const struct th_test tests[] = {
    {"nodes started at once on an empty database migrate it once and all open",
     test_nodes_start_at_once_on_an_empty_database},
    {"a database a newer taskmill migrated is refused, saying so",
     test_database_of_a_newer_taskmill_is_refused},
    {NULL, NULL},
};

int main(int argc, char **argv) {
    return th_main(tests, argc, argv) || th_failed();
}
