/*
 * pg_util: the two calls of the tests that act as another node on the
 * store's PostgreSQL database (hold a row, watch pg_stat_activity).
 */
#ifndef TM_TEST_PG_UTIL_H
#define TM_TEST_PG_UTIL_H

#include <libpq-fe.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>

/* The first column of the first row of sql's answer on c, as a number; -1 on an error. */
static inline long long pg_ask(PGconn *c, const char *sql) {
    PGresult *r = PQexec(c, sql);
    long long v =
        PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) > 0 ? atoll(PQgetvalue(r, 0, 0)) : -1;
    PQclear(r);
    return v;
}

/* Whether sql (a command, or a query whose rows are not wanted) succeeds
 * on c; the error is printed when not. */
static inline bool pg_run(PGconn *c, const char *sql) {
    PGresult *r = PQexec(c, sql);
    bool ok = PQresultStatus(r) == PGRES_COMMAND_OK || PQresultStatus(r) == PGRES_TUPLES_OK;
    if (!ok) printf("    %s: %s", sql, PQerrorMessage(c));
    PQclear(r);
    return ok;
}

#endif
