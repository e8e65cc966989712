/*
 * store_pg: the PostgreSQL backend of store.h, on libpq, for URLs
 * `postgres://...` and `postgresql://...` (given to libpq as they are).
 * Several taskmill nodes may share one database (`shared`).
 *
 * Connections: one writer, used by the store's writer thread only, with an
 * explicit BEGIN (READ COMMITTED) ... COMMIT per batch; synchronous_commit
 * is the server's (on by default: COMMIT is durable), off when the store
 * is relaxed. Readers come from a pool (opened on demand, shared under a
 * mutex, given back after each call). The listener, used by feed_wait on
 * the feed thread only, LISTENs for the writers' NOTIFY; feed_interrupt
 * wakes it from any thread through a self-pipe polled with its socket.
 *
 * Rows a write reads are locked until its transaction ends: load is
 * SELECT ... FOR UPDATE, claim_next and due skip rows other nodes hold
 * (FOR UPDATE SKIP LOCKED), so two nodes never act on one version of a
 * task. Because of that the writer keeps a copy of each row its batch
 * read or wrote, and a batch costs a few statements rather than a few per
 * op: preload reads the rows of its by-id ops at once, loads are answered
 * from the copies, updates are kept and written together before the next
 * statement that could see them, and a claim finds the tasks of the
 * batch's next claims of its query with its own ("the batch's rows",
 * below). Statements are prepared once per connection. No call blocks for
 * ever: the server ends a statement after 30 s (statement_timeout), the
 * client (non-blocking connections, sends and waits polled) gives up 5 s
 * later, connects give up after connect_timeout, and TCP keepalives and
 * tcp_user_timeout notice a dead peer. A connection that breaks is closed
 * (TM_EUNAVAILABLE) and reopened on a later call, at most every 0.5 s.
 *
 * The task row is described once, in store_task_columns (store_sql.c, shared
 * with the other SQL backend); insert, update and
 * reads are generated from it. Migrations are the numbered files in
 * migrations/pg, embedded at build (pg_migrations) and applied at open in
 * one transaction holding an advisory lock, recorded in
 * taskmill_migrations, so nodes that start at once take turns. The event
 * log and webhooks are in store_pg_events.c; task lists take their SQL
 * from store_sql.c.
 */
#include <arpa/inet.h>
#include <endian.h>
#include <errno.h>
#include <stdatomic.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "../common/buf.h"
#include "../common/embedded.h"
#include "../common/timeutil.h"
#include "../common/token.h"
#include "../common/xalloc.h"
#include "store_int.h"
#include "store_pg_int.h"
#include "store_sql.h"

extern const struct embedded_file pg_migrations[];

#define PG_STATEMENT_TIMEOUT_MS 30000
#define PG_CALL_TIMEOUT_MS      (PG_STATEMENT_TIMEOUT_MS + 5000) /* the client's own bound */
#define PG_MIGRATE_TIMEOUT_MS   300000
#define PG_RECONNECT_MS         500   /* no new connection sooner after one failed */
#define PG_LISTEN_PROBE_MS      30000 /* a quiet listener is probed after this */
#define PG_PROBE_TIMEOUT_MS     10000
#define PG_OUTCOME_MS           5000 /* a lost COMMIT's outcome is asked for this long */
/* A stalled node's locks (below): a writer waiting this long looks at who
 * blocks it, and again after each PG_WATCH_EVERY_MS; a taskmill writer
 * session waiting on its node inside a transaction for PG_STALLED_MS is
 * ended. */
#define PG_WATCH_AFTER_MS 2000
#define PG_WATCH_EVERY_MS 1000
#define PG_STALLED_MS     5000
#define PG_WATCH_READ_MS  2000 /* a look's statement gets no longer */
/* Every writer session's application_name: PG_WRITER_APP "/<the highest
 * migration its node knows>" (pg_writer_app reads one; nodes built before
 * the number was added name it PG_WRITER_APP alone, and nodes built before
 * that, PG_APP as every other session). */
#define PG_WRITER_APP "taskmill writer"
#define PG_APP        "taskmill" /* the readers' and the listener's, unless the URL names one */
/* The marker line of a migration that nodes built before it cannot run
 * beside (pg_migrate_beside_older): docs/operations.md#upgrades-and-migrations. */
#define PG_NOT_BESIDE_OLDER "-- taskmill: older nodes cannot run beside this migration"
#define PG_CHANNEL          "taskmill_events"
/* pg_advisory_xact_lock key of the migrations: "taskmill" in ASCII. */
#define PG_MIGRATE_LOCK "8386110886374894700"
#define PGSTR_(x)       #x
#define PGSTR(x)        PGSTR_(x)

#define NCOLS      store_task_ncols
#define NREAD_COLS (NCOLS - 1) /* all but due_at */

struct pg_store {
    char *url;
    bool relaxed;
    char writer_setup[640];   /* the writer's session setup (pg_writer_setup) */
    char writer_app[48];      /* and its application_name */
    int64_t query_timeout_ms; /* store_options.query_timeout_ms: readers' statement_timeout */
    struct pg_conn writer;
    int64_t writer_retry_at; /* monotonic ms: no reconnect before */
    /* The committing batch's transaction id, once its answer came (0: not
     * yet, or the batch wrote nothing): pg_commit. */
    int64_t commit_xid;
    /* The writer's server process: the feed ignores its announcements (our
     * own commits reach the feed from the writer). Set on each connect. */
    _Atomic int writer_pid;
    /* Whether the database refuses writes for being read-only, and why (a
     * PG_WRITES_ value; "a database that refuses writes", below). Set by
     * the writer thread, read by any (pg_refusing). */
    _Atomic int writes;
    int64_t refused_since; /* monotonic ms the spell began (writer thread) */
    /* Other nodes' stalled writer sessions the writer ended ("a stalled
     * node's locks"); read by any thread (pg_stats). */
    _Atomic uint64_t stalled_ended;
    /* Statements generated from store_task_columns. */
    struct pg_stmt st_load, st_preload, st_insert, st_insert_many, st_update, st_flush, st_get,
        st_claim;
    char *select_cols; /* "id,namespace,..." (no due_at) */
    /* The columns st_flush writes, in its parameters' order: id, then
     * every column an update may change (not the fixed ones). */
    size_t flush_cols[PG_MAX_PARAMS];
    size_t nflush_cols;
    size_t insert_cols[PG_MAX_PARAMS]; /* st_insert_many's: every column, in order */
    struct pg_tx *tx;                  /* the writer's (writer.tx) */

    pthread_mutex_t pool_lock;
    struct pg_conn *pool; /* idle readers */
    int64_t reader_retry_at;

    struct pg_conn listener;
    int64_t listener_retry_at, listener_heard_at;
    int64_t listener_probe_at; /* a probe is outstanding since (0: none) */
    bool listener_refused;     /* a standby refuses LISTEN (logged once; pg_feed_wait) */
    int wake[2];               /* feed_interrupt -> feed_wait */
};

static struct pg_store *pq(struct store *s) {
    return store_base_of(s)->impl;
}

/* ---- Parameters ---- */

void pgp_init(struct pg_params *p) {
    p->n = 0;
}

static int pgp_slot(struct pg_params *p) {
    if (p->n >= PG_MAX_PARAMS) {
        fprintf(stderr, "taskmill: postgres: too many parameters\n");
        abort();
    }
    return p->n++;
}

void pgp_text(struct pg_params *p, const char *s) {
    int i = pgp_slot(p);
    p->v[i] = s;
    p->len[i] = 0;
    p->fmt[i] = 0;
}

void pgp_int(struct pg_params *p, int64_t v) {
    int i = pgp_slot(p);
    snprintf(p->num[i], sizeof p->num[i], "%lld", (long long)v);
    p->v[i] = p->num[i];
    p->len[i] = 0;
    p->fmt[i] = 0;
}

void pgp_real(struct pg_params *p, double v) {
    int i = pgp_slot(p);
    snprintf(p->num[i], sizeof p->num[i], "%.17g", v);
    p->v[i] = p->num[i];
    p->len[i] = 0;
    p->fmt[i] = 0;
}

void pgp_bin(struct pg_params *p, const void *data, size_t n) {
    int i = pgp_slot(p);
    p->v[i] = data;
    p->len[i] = (int)n;
    p->fmt[i] = 1;
}

static void pga_be32(struct buf *b, uint32_t v) {
    v = htonl(v);
    buf_put(b, &v, 4);
}

void pga_begin(struct buf *b, unsigned oid, size_t n) {
    pga_be32(b, n ? 1 : 0); /* dimensions: an empty array has none */
    pga_be32(b, 0);         /* no NULLs */
    pga_be32(b, oid);
    if (n) {
        pga_be32(b, (uint32_t)n);
        pga_be32(b, 1); /* lower bound */
    }
}

void pga_text(struct buf *b, const char *s) {
    size_t n = s ? strlen(s) : 0;
    pga_be32(b, (uint32_t)n);
    if (n) buf_put(b, s, n);
}

void pgp_text_array(struct pg_params *p, struct buf *arr, const char *const *v, size_t n) {
    pga_begin(arr, PG_OID_TEXT, n);
    for (size_t i = 0; i < n; i++)
        pga_text(arr, v[i]);
    pgp_bin(p, arr->p, arr->len);
}

void pga_int8(struct buf *b, int64_t v) {
    pga_be32(b, 8);
    uint64_t be = htobe64((uint64_t)v);
    buf_put(b, &be, 8);
}

void pga_int4(struct buf *b, int32_t v) {
    pga_be32(b, 4);
    pga_be32(b, (uint32_t)v);
}

void pga_float8(struct buf *b, double v) {
    uint64_t u;
    memcpy(&u, &v, sizeof u);
    pga_be32(b, 8);
    u = htobe64(u);
    buf_put(b, &u, 8);
}

void pga_null(struct buf *b) {
    pga_be32(b, UINT32_MAX); /* length -1 */
    uint32_t has_nulls = htonl(1);
    memcpy(b->p + 4, &has_nulls, 4);
}

/* ---- Results ---- */

char *pg_dup(const PGresult *r, int row, int col) {
    if (PQgetisnull(r, row, col)) return NULL;
    return xstrdup(PQgetvalue(r, row, col));
}

int64_t pg_int(const PGresult *r, int row, int col) {
    if (PQgetisnull(r, row, col)) return 0;
    return strtoll(PQgetvalue(r, row, col), NULL, 10);
}

void pg_copy(char *dst, size_t n, const PGresult *r, int row, int col) {
    snprintf(dst, n, "%s", PQgetisnull(r, row, col) ? "" : PQgetvalue(r, row, col));
}

/* A column as text, or NULL: PostgreSQL sends every value as text. */
static struct store_value pg_value(const PGresult *r, int row, int col) {
    if (PQgetisnull(r, row, col)) return (struct store_value){.kind = STORE_VALUE_NULL};
    return (struct store_value){.kind = STORE_VALUE_TEXT, .text = PQgetvalue(r, row, col)};
}

void pg_read_fields(const PGresult *r, int row, int col, const struct store_field *fields,
                    void *out) {
    for (const struct store_field *f = fields; f->kind != STORE_FIELD_END; f++, col++) {
        struct store_value v = pg_value(r, row, col);
        store_field_set(out, f, &v);
    }
}

void *pg_read_rows(const PGresult *r, const struct store_field *fields, size_t size, size_t *n) {
    *n = (size_t)PQntuples(r);
    char *rows = *n ? xcalloc(*n, size) : NULL;
    for (size_t i = 0; i < *n; i++)
        pg_read_fields(r, (int)i, 0, fields, rows + i * size);
    return rows;
}

/* ---- Running statements ---- */

static void pg_notice(void *arg, const char *message) {
    (void)arg;
    fprintf(stderr, "taskmill: postgres: %s", message);
}

/*
 * Statements sent ahead. The writer sends the statements of a batch whose
 * results it does not need at once (BEGIN, the kept updates, inserts, the
 * statistics and counts, the event append) in libpq's pipeline mode, and
 * reads their results with the next statement that waits for its own: a
 * batch of submits or completions then takes one round trip to the
 * server, its COMMIT, instead of one per statement. The server stops at
 * the first failure and skips the rest up to the sync, so the statement
 * that waits fails with the first failure's code, as the transaction
 * does.
 */
struct pg_ahead {
    const char *sql; /* for messages */
    int prepare;     /* the Prepare of this statement id, or -1 */
    int (*done)(struct pg_conn *c, PGresult *r, void *arg);
    void *arg; /* free()d after done, or instead of it */
};

static int pg_tx_flush(struct pg_conn *c);
static void pg_tx_clear(struct pg_tx *tx);

/* Sends a sync after this many statements sent ahead. */
#define PG_AHEAD_MAX 256

static void pg_ahead_clear(struct pg_conn *c) {
    for (size_t i = 0; i < c->nahead; i++)
        free(c->ahead[i].arg);
    c->nahead = 0;
}

static void pg_ahead_add(struct pg_conn *c, const char *sql, int prepare,
                         int (*done)(struct pg_conn *, PGresult *, void *), void *arg) {
    if (c->nahead == c->capahead) {
        c->capahead = c->capahead ? 2 * c->capahead : 16;
        c->ahead = xrealloc(c->ahead, c->capahead * sizeof *c->ahead);
    }
    c->ahead[c->nahead++] = (struct pg_ahead){sql, prepare, done, arg};
}

/* Closes a connection that broke; it is reopened on a later call. */
static void pg_conn_drop(struct pg_conn *c) {
    if (c->pg) PQfinish(c->pg);
    c->pg = NULL;
    memset(c->prepared, 0, sizeof c->prepared);
    pg_ahead_clear(c);
}

/* The first line of a libpq message, for one-line logs. */
static void pg_log(const struct pg_conn *c, const char *what, const char *msg) {
    size_t n = strcspn(msg, "\n");
    fprintf(stderr, "taskmill: postgres: %s: %s: %.*s\n", c->role, what, (int)n, msg);
}

/* What to name a statement in a log: its first words. */
static void pg_what(char *out, size_t n, const char *sql) {
    snprintf(out, n, "%.60s%s", sql, strlen(sql) > 60 ? "..." : "");
    for (char *p = out; *p; p++)
        if (*p == '\n') *p = ' ';
}

/* Maps a finished command's result (NULL: none came) to 0 or a TM_E code. */
static int pg_classify(struct pg_conn *c, const PGresult *r, const char *sql) {
    ExecStatusType st = r ? PQresultStatus(r) : PGRES_FATAL_ERROR;
    if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) return 0;
    const char *state = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
    const char *msg = r ? PQresultErrorMessage(r) : "";
    if (!*msg) msg = PQerrorMessage(c->pg);
    char what[80];
    pg_what(what, sizeof what, sql);
    /* An error with no SQLSTATE is libpq's own, not the server's: the
     * connection (a message it could not read or send) is what failed. */
    bool lost = PQstatus(c->pg) != CONNECTION_OK || (r && !state) ||
                (state && (strncmp(state, "08", 2) == 0 || strcmp(state, "57P01") == 0 ||
                           strcmp(state, "57P02") == 0 || strcmp(state, "57P03") == 0));
    if (lost) {
        pg_log(c, "connection lost", msg);
        pg_conn_drop(c);
        return TM_EUNAVAILABLE;
    }
    if (state && (strcmp(state, "40001") == 0 || strcmp(state, "40P01") == 0)) return TM_ERETRY;
    if (state && strcmp(state, "23505") == 0) return TM_ECONFLICT;
    /* A reader's statement past the query time limit (statement_timeout). */
    if (state && strcmp(state, "57014") == 0 && strcmp(c->role, "reader") == 0)
        return TM_EQUERY_TIMEOUT;
    /* The writer's statement refused by a read-only database, or the
     * listener's LISTEN by a standby: logged once for the whole spell, not
     * per statement (pg_writer_refused, pg_feed_wait). */
    if (state && strcmp(state, "25006") == 0 &&
        (strcmp(c->role, "writer") == 0 || strcmp(c->role, "listener") == 0)) {
        if (!c->read_only)
            snprintf(c->read_only_msg, sizeof c->read_only_msg, "%.*s", (int)strcspn(msg, "\n"),
                     msg);
        c->read_only = true;
        return TM_EUNAVAILABLE;
    }
    pg_log(c, what, msg);
    /* The database is there but cannot serve us now: a statement past its
     * timeout, a read-only database (not the writer: above), too many
     * connections. The client may try again: 503, not 500. */
    if (state &&
        (strcmp(state, "57014") == 0 || strcmp(state, "25006") == 0 || strcmp(state, "53300") == 0))
        return TM_EUNAVAILABLE;
    return TM_EINTERNAL;
}

/* A connection given up on (a statement that took too long, a pipeline
 * that broke): logged with why, and closed. */
static int pg_gave_up(struct pg_conn *c, const char *sql, const char *why) {
    char what[80];
    pg_what(what, sizeof what, sql);
    pg_log(c, what, why);
    pg_conn_drop(c);
    return TM_EUNAVAILABLE;
}

/* A set of backend pids, grown as needed (one wait's, freed with it). */
struct pg_pids {
    int *v;
    int n, cap;
};

/* A session seen waiting on its client, and its state_change then. */
struct pg_seen {
    int pid;
    char at[40];
};

/* The writer's looks at who blocks it during one wait ("a stalled node's
 * locks", below); pg_watch_release frees what the looks grew. */
struct pg_watch {
    int64_t since, next_at; /* monotonic ms: the wait began; the next look (INT64_MAX: none) */
    int64_t deadline;       /* the wait's own: no look runs past it */
    /* The taskmill writers waiting on their node that the last look saw
     * (was) and this look sees (seen), with their state_change. */
    struct pg_seen *seen, *was;
    int nseen, nwas, seen_cap, was_cap;
    struct pg_pids logged;  /* blockers logged as left alone, in this wait */
    struct pg_pids refused; /* writers whose end failed (a role not allowed to), in this wait */
    /* The statement the writer's own session was running at the last look
     * ("" if none was seen): what a wait that runs out waited on. */
    char query[96];
};

static void pg_watch_release(struct pg_watch *w) {
    free(w->seen);
    free(w->was);
    free(w->logged.v);
    free(w->refused.v);
}

static void pg_watch_look(struct pg_conn *c, struct pg_watch *w);

/* Waits (until deadline) for libpq's next result: NULL ends one
 * statement's results. 0, or TM_EUNAVAILABLE with the connection closed.
 * The writer looks at who blocks it while it waits (pg_watch_look). */
static int pg_next(struct pg_conn *c, const char *sql, int64_t deadline, PGresult **res) {
    *res = NULL;
    struct pg_watch w = {.since = time_mono_ms(), .deadline = deadline};
    w.next_at = c->watch ? w.since + PG_WATCH_AFTER_MS : INT64_MAX;
    int rc = 0;
    while (PQisBusy(c->pg)) {
        int64_t now = time_mono_ms(), left = deadline - now;
        /* In a pipeline the server answers nothing before its Sync, so sql
         * is the first statement sent, not the one the server was on. */
        if (left <= 0) {
            rc = *w.query ? pg_gave_up(c, w.query,
                                       "no answer in time (the statement the server was running "
                                       "at the last look); closing the connection")
                          : pg_gave_up(c, sql, "no answer in time; closing the connection");
            goto out;
        }
        if (now >= w.next_at) {
            pg_watch_look(c, &w);
            continue;
        }
        int64_t nap = left < 1000 ? left : 1000;
        if (w.next_at - now < nap) nap = w.next_at - now;
        struct pollfd pfd = {.fd = PQsocket(c->pg), .events = POLLIN};
        int n = poll(&pfd, 1, (int)nap);
        if ((n < 0 && errno != EINTR) ||
            (n > 0 && !PQconsumeInput(c->pg) && PQstatus(c->pg) == CONNECTION_OK)) {
            pg_log(c, "read", n < 0 ? strerror(errno) : PQerrorMessage(c->pg));
            pg_conn_drop(c);
            rc = TM_EUNAVAILABLE;
            goto out;
        }
        /* A lost connection is no longer busy: PQgetResult says why. */
    }
    *res = PQgetResult(c->pg);
out:
    pg_watch_release(&w);
    return rc;
}

/* Reads one statement's results: keeps the first error, else the last
 * result (NULL: none came). 0, or TM_EUNAVAILABLE as pg_next. */
static int pg_collect(struct pg_conn *c, const char *sql, int64_t deadline, PGresult **res) {
    PGresult *keep = NULL;
    *res = NULL;
    for (;;) {
        PGresult *r;
        int rc = pg_next(c, sql, deadline, &r);
        if (rc) {
            PQclear(keep);
            return rc;
        }
        if (!r) break;
        bool keep_is_error = keep && PQresultStatus(keep) != PGRES_COMMAND_OK &&
                             PQresultStatus(keep) != PGRES_TUPLES_OK;
        if (keep_is_error) {
            PQclear(r);
        } else {
            PQclear(keep);
            keep = r;
        }
        if (PQstatus(c->pg) != CONNECTION_OK) break;
    }
    *res = keep;
    return 0;
}

/* Waits (at most timeout_ms) for the results of the command just sent;
 * keeps the first error, else the last result. */
static int pg_wait(struct pg_conn *c, const char *sql, int64_t timeout_ms, PGresult **res) {
    *res = NULL;
    PGresult *keep = NULL;
    int rc = pg_collect(c, sql, time_mono_ms() + timeout_ms, &keep);
    if (rc) return rc;
    rc = pg_classify(c, keep, sql);
    if (rc) {
        PQclear(keep);
        if (!c->err) c->err = rc;
        return rc;
    }
    *res = keep;
    return 0;
}

/* Sends what libpq buffered (the connection is non-blocking, so a large
 * statement cannot block the caller on a peer that stopped reading). */
static int pg_flush(struct pg_conn *c, const char *sql, int64_t timeout_ms) {
    int64_t deadline = time_mono_ms() + timeout_ms;
    int f;
    while ((f = PQflush(c->pg)) == 1) {
        int64_t left = deadline - time_mono_ms();
        if (left <= 0) return pg_gave_up(c, sql, "cannot send in time; closing the connection");
        struct pollfd pfd = {.fd = PQsocket(c->pg), .events = POLLIN | POLLOUT};
        int n = poll(&pfd, 1, (int)(left < 1000 ? left : 1000));
        /* Input while sending (a notice, an early error): libpq wants it read. */
        if (n > 0 && (pfd.revents & POLLIN) && !PQconsumeInput(c->pg)) break;
    }
    if (f == 0) return 0;
    int rc = pg_classify(c, NULL, sql);
    if (!c->err) c->err = rc;
    return rc;
}

/* The send failed: the connection is gone (or was never there). */
static int pg_send_failed(struct pg_conn *c, const char *sql) {
    if (!c->pg) return TM_EUNAVAILABLE;
    int rc = pg_classify(c, NULL, sql);
    if (!c->err) c->err = rc;
    return rc;
}

/* Sending or reading in pipeline mode failed: the pipeline's state is
 * unknown, so the connection is closed (the server rolls the transaction
 * back) and the caller answers 503, as for a connection lost. */
static int pg_pipe_failed(struct pg_conn *c, const char *sql) {
    if (c->pg) pg_gave_up(c, sql, PQerrorMessage(c->pg));
    if (!c->err) c->err = TM_EUNAVAILABLE;
    return TM_EUNAVAILABLE;
}

/*
 * Ends the pipeline: sends the sync, reads the result of every statement
 * sent ahead (each to its done) and then, when sql is not NULL, the
 * caller's own statement sent last (into *res), and leaves pipeline mode.
 * Returns 0 or the first failure's code; the statements after a failure
 * did not run.
 */
static int pg_sync(struct pg_conn *c, const char *sql, int64_t timeout_ms, PGresult **res) {
    *res = NULL;
    const char *what = sql ? sql : "the statements sent ahead";
    if (!PQpipelineSync(c->pg)) return pg_pipe_failed(c, what);
    int rc = pg_flush(c, what, timeout_ms);
    if (rc) return pg_pipe_failed(c, what);
    int64_t deadline = time_mono_ms() + timeout_ms;
    int first = 0;
    size_t n = c->nahead;
    for (size_t i = 0; i < n + (sql ? 1 : 0); i++) {
        const char *stmt = i < n ? c->ahead[i].sql : sql;
        PGresult *r = NULL;
        if ((rc = pg_collect(c, stmt, deadline, &r))) return pg_pipe_failed(c, stmt);
        /* Every statement of a pipeline answers, if only "aborted": none
         * means the connection broke. */
        if (!r) return pg_pipe_failed(c, stmt);
        if (PQresultStatus(r) == PGRES_PIPELINE_ABORTED) { /* after the first failure */
            /* A Prepare that did not run: the statement is not there. */
            if (i < n && c->ahead[i].prepare >= 0) c->prepared[c->ahead[i].prepare] = false;
            PQclear(r);
            continue;
        }
        int e = pg_classify(c, r, stmt);
        if (!c->pg) { /* the connection broke */
            PQclear(r);
            return pg_pipe_failed(c, stmt);
        }
        if (!e && i < n && c->ahead[i].done) e = c->ahead[i].done(c, r, c->ahead[i].arg);
        if (e) {
            if (!first) first = e;
            if (i < n && c->ahead[i].prepare >= 0) c->prepared[c->ahead[i].prepare] = false;
            PQclear(r);
        } else if (i < n) {
            PQclear(r);
        } else {
            *res = r;
        }
    }
    PGresult *r = NULL;
    if ((rc = pg_next(c, what, deadline, &r))) return pg_pipe_failed(c, what);
    bool synced = r && PQresultStatus(r) == PGRES_PIPELINE_SYNC;
    PQclear(r);
    pg_ahead_clear(c);
    if (!synced || !PQexitPipelineMode(c->pg)) {
        pg_log(c, "pipeline", synced ? PQerrorMessage(c->pg) : "no sync where one was due");
        PQclear(*res);
        *res = NULL;
        return pg_pipe_failed(c, what);
    }
    if (first) {
        PQclear(*res);
        *res = NULL;
        if (!c->err) c->err = first;
        pg_tx_clear(c->tx); /* the transaction is lost */
    }
    return first;
}

static int pg_exec(struct pg_conn *c, const char *name, const char *sql, int n,
                   const char *const *v, const int *len, const int *fmt, int64_t timeout_ms,
                   PGresult **res) {
    *res = NULL;
    if (!c->pg) return TM_EUNAVAILABLE;
    if (c->nahead) { /* last in the pipeline, then the sync */
        int ok = name ? PQsendQueryPrepared(c->pg, name, n, v, len, fmt, 0)
                      : PQsendQueryParams(c->pg, sql, n, NULL, v, len, fmt, 0);
        if (!ok) return pg_pipe_failed(c, sql);
        return pg_sync(c, sql, timeout_ms, res);
    }
    int ok;
    if (name)
        ok = PQsendQueryPrepared(c->pg, name, n, v, len, fmt, 0);
    else if (n)
        ok = PQsendQueryParams(c->pg, sql, n, NULL, v, len, fmt, 0);
    else
        ok = PQsendQuery(c->pg, sql); /* simple protocol: several statements may follow */
    if (!ok) return pg_send_failed(c, sql);
    int rc = pg_flush(c, sql, timeout_ms);
    return rc ? rc : pg_wait(c, sql, timeout_ms, res);
}

/* Whether a writer statement could read a row whose update the writer
 * keeps (pg_tx_flush), so that the update must be written first: every
 * one but these. A load or preload reads only rows that are not in the
 * transaction's cache, and every kept update is in it; an insert reads no
 * other row but the unique index entries of (namespace, idempotency key),
 * which no update changes; and the flush is what writes them. */
static bool pg_stmt_sees_kept(enum pg_stmt_id id) {
    return id != PGS_LOAD && id != PGS_PRELOAD && id != PGS_INSERT && id != PGS_UPDATE &&
           id != PGS_FLUSH && id != PGS_INSERT_MANY;
}

/* In pipeline mode: st's Prepare, sent ahead when this connection has not
 * prepared it (a Prepare that does not run is forgotten again, pg_sync).
 * False when the send failed. */
static bool pg_prepare_ahead(struct pg_conn *c, const struct pg_stmt *st, const char *name) {
    if (c->prepared[st->id]) return true;
    if (!PQsendPrepare(c->pg, name, st->sql, 0, NULL)) return false;
    c->prepared[st->id] = true;
    pg_ahead_add(c, st->sql, (int)st->id, NULL, NULL);
    return true;
}

int pg_run(struct pg_conn *c, const struct pg_stmt *st, const struct pg_params *p, PGresult **res) {
    *res = NULL;
    if (c->tx && pg_stmt_sees_kept(st->id)) {
        int rc = pg_tx_flush(c);
        if (rc) return rc;
    }
    if (!c->pg) return TM_EUNAVAILABLE;
    char name[16];
    snprintf(name, sizeof name, "tm%d", (int)st->id);
    if (c->nahead && !pg_prepare_ahead(c, st, name)) return pg_pipe_failed(c, st->sql);
    if (!c->prepared[st->id]) {
        if (!PQsendPrepare(c->pg, name, st->sql, 0, NULL)) return pg_send_failed(c, st->sql);
        PGresult *r = NULL;
        int rc = pg_flush(c, st->sql, PG_CALL_TIMEOUT_MS);
        if (rc == 0) rc = pg_wait(c, st->sql, PG_CALL_TIMEOUT_MS, &r);
        PQclear(r);
        if (rc) return rc;
        c->prepared[st->id] = true;
    }
    return pg_exec(c, name, st->sql, p ? p->n : 0, p ? p->v : NULL, p ? p->len : NULL,
                   p ? p->fmt : NULL, PG_CALL_TIMEOUT_MS, res);
}

/* pg_run_ahead's send; sql alone (st NULL) is a command by text. */
static int pg_send_ahead(struct pg_conn *c, const struct pg_stmt *st, const char *sql,
                         const struct pg_params *p,
                         int (*done)(struct pg_conn *, PGresult *, void *), void *arg) {
    if (c->tx && (!st || pg_stmt_sees_kept(st->id))) {
        int rc = pg_tx_flush(c);
        if (rc) {
            free(arg);
            return rc;
        }
    }
    if (c->nahead >= PG_AHEAD_MAX) {
        PGresult *r;
        int rc = pg_sync(c, NULL, PG_CALL_TIMEOUT_MS, &r);
        if (rc) {
            free(arg);
            return rc;
        }
    }
    if (!c->pg) {
        free(arg);
        return TM_EUNAVAILABLE;
    }
    if (!c->nahead && PQpipelineStatus(c->pg) == PQ_PIPELINE_OFF && !PQenterPipelineMode(c->pg)) {
        free(arg);
        return pg_pipe_failed(c, st ? st->sql : sql);
    }
    int ok;
    if (st) {
        char name[16];
        snprintf(name, sizeof name, "tm%d", (int)st->id);
        if (!pg_prepare_ahead(c, st, name)) {
            free(arg);
            return pg_pipe_failed(c, st->sql);
        }
        ok = PQsendQueryPrepared(c->pg, name, p ? p->n : 0, p ? p->v : NULL, p ? p->len : NULL,
                                 p ? p->fmt : NULL, 0);
        sql = st->sql;
    } else {
        ok = PQsendQueryParams(c->pg, sql, p ? p->n : 0, NULL, p ? p->v : NULL, p ? p->len : NULL,
                               p ? p->fmt : NULL, 0);
    }
    if (!ok) {
        free(arg);
        return pg_pipe_failed(c, sql);
    }
    pg_ahead_add(c, sql, -1, done, arg);
    return 0;
}

int pg_run_ahead(struct pg_conn *c, const struct pg_stmt *st, const struct pg_params *p,
                 int (*done)(struct pg_conn *c, PGresult *r, void *arg), void *arg) {
    return pg_send_ahead(c, st, NULL, p, done, arg);
}

int pg_run_cmd(struct pg_conn *c, const struct pg_stmt *st, const struct pg_params *p) {
    PGresult *r;
    int rc = pg_run(c, st, p, &r);
    PQclear(r);
    return rc;
}

int pg_run_int(struct pg_conn *c, const struct pg_stmt *st, const struct pg_params *p,
               int64_t *out) {
    PGresult *r;
    int rc = pg_run(c, st, p, &r);
    if (rc) return rc;
    *out = pg_int(r, 0, 0);
    PQclear(r);
    return 0;
}

int pg_run_sql(struct pg_conn *c, const char *sql, const struct pg_params *p, PGresult **res) {
    /* Any statement by text may read tasks (COMMIT: the updates must be
     * in). Whoever rolls back drops the kept updates first (pg_tx_clear). */
    if (c->tx) {
        int rc = pg_tx_flush(c);
        if (rc) {
            *res = NULL;
            return rc;
        }
    }
    return pg_exec(c, NULL, sql, p ? p->n : 0, p ? p->v : NULL, p ? p->len : NULL,
                   p ? p->fmt : NULL, PG_CALL_TIMEOUT_MS, res);
}

/* pg_run (st) or pg_run_sql (sql) on a reader taken for it. */
static int pg_read_on(struct store *s, const struct pg_stmt *st, const char *sql,
                      const struct pg_params *p, PGresult **res) {
    *res = NULL;
    struct pg_conn *c = pg_reader_take(s);
    if (!c) return TM_EUNAVAILABLE;
    int rc = st ? pg_run(c, st, p, res) : pg_run_sql(c, sql, p, res);
    pg_reader_give(s, c);
    return rc;
}

int pg_read(struct store *s, const struct pg_stmt *st, const struct pg_params *p, PGresult **res) {
    return pg_read_on(s, st, NULL, p, res);
}

int pg_read_sql(struct store *s, const char *sql, const struct pg_params *p, PGresult **res) {
    return pg_read_on(s, NULL, sql, p, res);
}

/* Runs a command whose rows, if any, do not matter. */
static int pg_cmd(struct pg_conn *c, const char *sql) {
    PGresult *r;
    int rc = pg_run_sql(c, sql, NULL, &r);
    PQclear(r);
    return rc;
}

/* ---- Connections ---- */

/* Opens c with the session settings `setup`; 0, or TM_EUNAVAILABLE with
 * libpq's message in why. */
static int pg_conn_open(struct pg_store *q, struct pg_conn *c, const char *setup, char *why,
                        size_t why_n) {
    /* Ours first: what the URL says wins (dbname expands it last). */
    static const char *const kw[] = {"connect_timeout",     "keepalives",       "keepalives_idle",
                                     "keepalives_interval", "keepalives_count", "tcp_user_timeout",
                                     "application_name",    "dbname",           NULL};
    /* The writer is named so from its first moment, not only once its
     * setup has run: a node that starts meanwhile must not take it for an
     * older node's session (pg_migrate_beside_older). A URL that sets its
     * own application_name wins here too, until the setup's SET. */
    const char *app = c == &q->writer && q->writer_app[0] ? q->writer_app : PG_APP;
    const char *val[] = {"10", "1", "30", "10", "3", "40000", app, q->url, NULL};
    pg_conn_drop(c);
    c->pg = PQconnectdbParams(kw, val, 1);
    if (!c->pg) {
        fprintf(stderr, "taskmill: out of memory\n");
        abort();
    }
    if (PQstatus(c->pg) != CONNECTION_OK) {
        const char *msg = PQerrorMessage(c->pg);
        snprintf(why, why_n, "%.*s", (int)strcspn(msg, "\n"), msg);
        pg_conn_drop(c);
        return TM_EUNAVAILABLE;
    }
    PQsetNoticeProcessor(c->pg, pg_notice, NULL);
    if (PQsetnonblocking(c->pg, 1)) {
        snprintf(why, why_n, "cannot make the connection non-blocking");
        pg_conn_drop(c);
        return TM_EUNAVAILABLE;
    }
    if (PQserverVersion(c->pg) < 130000) {
        snprintf(why, why_n, "PostgreSQL %d is too old (13 or later is needed)",
                 PQserverVersion(c->pg));
        pg_conn_drop(c);
        return TM_EUNAVAILABLE;
    }
    if (setup && pg_cmd(c, setup)) {
        snprintf(why, why_n, "cannot set up the session");
        pg_conn_drop(c);
        return TM_EUNAVAILABLE;
    }
    return 0;
}

/* Every writer and reader session. */
// clang-format off
#define PG_SESSION                                               \
    "SET statement_timeout = " PGSTR(PG_STATEMENT_TIMEOUT_MS) ";" \
    " SET idle_in_transaction_session_timeout = 60000;"          \
    " SET tcp_keepalives_idle = 30; SET tcp_keepalives_interval = 10;" \
    " SET tcp_keepalives_count = 3; SET tcp_user_timeout = 40000"
/* The writer is never idle in a transaction but for the moment between two
 * of its statements: a session of it that is (its node stopped, its link
 * cut after a Sync) holds rows and the event head every node's writer
 * needs, so the server ends it sooner. Its name, whatever the URL says,
 * is what other nodes' writers know it by ("a stalled node's locks"), and
 * says which migrations its node knows (pg_migrate_beside_older). */
#define PG_WRITER_SESSION PG_SESSION "; SET idle_in_transaction_session_timeout = 10000"
// clang-format on

/* The migrations this node applies: pg_migrations, or a test's list. */
static const struct embedded_file *pg_migration_list;

void pg_test_set_migrations(const struct embedded_file *list) {
    pg_migration_list = list;
}

static const struct embedded_file *pg_migrations_known(void) {
    return pg_migration_list ? pg_migration_list : pg_migrations;
}

/* The highest migration this node knows. */
static int pg_known(void) {
    int known = 0;
    for (const struct embedded_file *m = pg_migrations_known(); m->name; m++)
        if (atoi(m->name) > known) known = atoi(m->name);
    return known;
}

bool pg_migration_not_beside_older(const struct embedded_file *m) {
    size_t end = strlen(PG_NOT_BESIDE_OLDER);
    for (const char *at = strstr(m->data, PG_NOT_BESIDE_OLDER); at;
         at = strstr(at + 1, PG_NOT_BESIDE_OLDER))
        if ((at == m->data || at[-1] == '\n') && (at[end] == '\n' || at[end] == '\0')) return true;
    return false;
}

int pg_writer_app(const char *app) {
    size_t n = strlen(PG_WRITER_APP);
    if (strcmp(app, PG_WRITER_APP) == 0) return -1;
    if (strncmp(app, PG_WRITER_APP "/", n + 1) != 0) return -2;
    const char *d = app + n + 1;
    size_t digits = strspn(d, "0123456789");
    if (digits == 0 || digits > 9 || d[digits]) return -2;
    return atoi(d);
}

static const char *pg_writer_setup(struct pg_store *q) {
    if (!q->writer_setup[0]) {
        snprintf(q->writer_app, sizeof q->writer_app, PG_WRITER_APP "/%d", pg_known());
        snprintf(q->writer_setup, sizeof q->writer_setup,
                 PG_WRITER_SESSION "; SET application_name = '%s'%s", q->writer_app,
                 q->relaxed ? "; SET synchronous_commit = off" : "");
    }
    return q->writer_setup;
}

/* An idle connection with input waiting is being closed by the server
 * (or has a notice, which is rare): it is not worth a failed call. */
static bool pg_idle_ok(struct pg_conn *c) {
    if (!c->pg || PQstatus(c->pg) != CONNECTION_OK) return false;
    if (PQtransactionStatus(c->pg) != PQTRANS_IDLE) return false;
    struct pollfd pfd = {.fd = PQsocket(c->pg), .events = POLLIN};
    return poll(&pfd, 1, 0) == 0;
}

/*
 * ---- A database that refuses writes ----
 *
 * PostgreSQL answers but refuses every write (SQLSTATE 25006) while it is
 * a hot standby (in recovery: a failover in progress, or the node's URL
 * now leads to a standby) or while default_transaction_read_only is on for
 * our sessions (ALTER SYSTEM, ALTER DATABASE or ALTER ROLE ... SET). Such
 * a spell ends by itself, so the writer watches for its end rather than
 * wait for a restart. q->writes says which state the store is in:
 *
 *   PG_WRITES_OK        the database takes writes (the start state).
 *   PG_WRITES_READ_ONLY it refuses them: default_transaction_read_only.
 *   PG_WRITES_STANDBY   it refuses them: it is in recovery.
 *
 * Transitions, all on the writer thread:
 *
 *   OK -> READ_ONLY/STANDBY  a writer statement is refused (pg_classify
 *       marks writer.read_only; the batch fails and rolls back, and
 *       pg_rollback calls pg_writer_refused, which asks the session why).
 *       One log line, with the server's message. Or the store opens on
 *       such a database (pg_migrate asks): the line is logged then, and
 *       the session kept for the start's reads, so the first write still
 *       goes to the server and is refused there.
 *   READ_ONLY/STANDBY -> the same (or the other)  a reconnect's probe
 *       finds the session still read-only. No log line.
 *   READ_ONLY/STANDBY -> OK  a reconnect's probe finds it takes writes.
 *       One log line, with how long the spell lasted. Or a reconnect
 *       fails: the database is gone, not read-only (the "cannot
 *       reconnect" line says so), and a refusal once it is back starts a
 *       new spell.
 *
 * On entering or staying in a refusing state the writer closes its
 * connection and opens no new one for PG_READ_ONLY_RETRY_MS: a session's
 * read-only default is fixed when it starts (ALTER DATABASE and ALTER ROLE
 * reach only new sessions), and a new connection is what reaches a new
 * primary. Meanwhile begin fails at once (TM_EUNAVAILABLE, no statement,
 * nothing logged), so every write, sweep, schedule fire and webhook claim
 * gets a 503 without a round trip, and pg_refusing gives each refused op
 * its message. Reads use their own connections (read-only anyway) and go
 * on. The store's ping still answers: /healthz stays 200 and /readyz says
 * 503 with the reason (health.c, store_refusing).
 */
#define PG_READ_ONLY_RETRY_MS 1000 /* a refusing writer reconnects to look again after this */

enum { PG_WRITES_OK, PG_WRITES_READ_ONLY, PG_WRITES_STANDBY };

/* Why a database refuses writes (`writes`, not PG_WRITES_OK), for the log and errors. */
static const char *pg_writes_why(int writes) {
    return writes == PG_WRITES_STANDBY ? "it is a standby, in recovery"
                                       : "default_transaction_read_only is on";
}

/* Whether the writer's new session may write: PG_WRITES_OK or why not; a
 * negative TM_E code when the probe itself failed. */
static int pg_writer_probe(struct pg_conn *c) {
    PGresult *r = NULL;
    int rc = pg_run_sql(
        c, "SELECT current_setting('transaction_read_only') = 'on', pg_is_in_recovery()", NULL, &r);
    if (rc) return rc;
    int writes = PG_WRITES_OK;
    if (PQntuples(r) == 1 && strcmp(PQgetvalue(r, 0, 1), "t") == 0)
        writes = PG_WRITES_STANDBY;
    else if (PQntuples(r) == 1 && strcmp(PQgetvalue(r, 0, 0), "t") == 0)
        writes = PG_WRITES_READ_ONLY;
    PQclear(r);
    return writes;
}

/* The database refuses writes (`writes`, not PG_WRITES_OK; `msg` what the
 * server said, may be ""): logs the start of a spell. */
static void pg_writes_refused(struct pg_store *q, int writes, const char *msg) {
    struct pg_conn *c = &q->writer;
    if (atomic_load(&q->writes) == PG_WRITES_OK) {
        char why[320];
        snprintf(why, sizeof why,
                 "the database refuses writes (%s)%s%s; writes answer 503 until it takes them "
                 "again (looked at every %d ms)",
                 pg_writes_why(writes), *msg ? ": " : "", msg, PG_READ_ONLY_RETRY_MS);
        pg_log(c, "read-only", why);
        q->refused_since = time_mono_ms();
    }
    atomic_store(&q->writes, writes);
}

/* The writer's session refuses writes (as pg_writes_refused): closes the
 * connection until it is time to look again. */
static void pg_writer_refusing(struct pg_store *q, int writes, const char *msg) {
    struct pg_conn *c = &q->writer;
    int64_t now = time_mono_ms();
    pg_writes_refused(q, writes, msg);
    c->read_only = false;
    pg_conn_drop(c);
    q->writer_retry_at = now + PG_READ_ONLY_RETRY_MS;
}

/* A writer statement was refused for a read-only database (writer.read_only):
 * after the rollback, learns why from the same session when it can. */
static void pg_writer_refused(struct pg_store *q) {
    struct pg_conn *c = &q->writer;
    char msg[sizeof c->read_only_msg];
    snprintf(msg, sizeof msg, "%s", c->read_only_msg);
    c->read_only = false; /* the probe's own statement must not look refused */
    int writes = c->pg && PQtransactionStatus(c->pg) == PQTRANS_IDLE ? pg_writer_probe(c) : -1;
    /* Writable again already, or no answer: read-only as far as we know. */
    if (writes != PG_WRITES_STANDBY) writes = PG_WRITES_READ_ONLY;
    pg_writer_refusing(q, writes, msg);
}

/* Makes sure the writer is connected (outside a transaction) to a session
 * that takes writes. */
static int pg_writer_ready(struct pg_store *q) {
    struct pg_conn *c = &q->writer;
    /* A batch left open (its rollback could not be sent): end it first. */
    pg_tx_clear(c->tx);
    if (c->pg && PQstatus(c->pg) == CONNECTION_OK && PQtransactionStatus(c->pg) != PQTRANS_IDLE)
        pg_cmd(c, "ROLLBACK");
    if (c->read_only) pg_writer_refused(q);
    if (c->pg && !pg_idle_ok(c)) {
        pg_log(c, "connection lost", "closed while idle");
        pg_conn_drop(c);
    }
    if (c->pg) return 0;
    int64_t now = time_mono_ms();
    if (now < q->writer_retry_at) return TM_EUNAVAILABLE;
    char why[256];
    if (pg_conn_open(q, c, pg_writer_setup(q), why, sizeof why)) {
        pg_log(c, "cannot reconnect", why);
        q->writer_retry_at = now + PG_RECONNECT_MS;
        /* Not read-only now but gone, as any lost database: its 503s and
         * health say unavailable, not read-only. */
        atomic_store(&q->writes, PG_WRITES_OK);
        return TM_EUNAVAILABLE;
    }
    /* While refusing: does the new session take writes? (Otherwise the
     * first write finds out, at no cost to a connection that does.) */
    if (atomic_load(&q->writes) != PG_WRITES_OK) {
        int writes = pg_writer_probe(c);
        if (writes < 0) { /* logged; a later call connects and asks again */
            pg_conn_drop(c);
            q->writer_retry_at = now + PG_RECONNECT_MS;
            return writes;
        }
        if (writes != PG_WRITES_OK) {
            pg_writer_refusing(q, writes, "");
            return TM_EUNAVAILABLE;
        }
        snprintf(why, sizeof why, "the database takes writes again (they were refused for %lld s)",
                 (long long)((now - q->refused_since + 500) / 1000));
        pg_log(c, "read-only", why);
        atomic_store(&q->writes, PG_WRITES_OK);
    }
    atomic_store(&q->writer_pid, PQbackendPID(c->pg));
    return 0;
}

struct pg_conn *pg_writer(struct store *s) {
    return &pq(s)->writer;
}

/* An idle reader of the pool, already connected, or NULL: it never
 * connects (so it cannot block on connect_timeout, nor fail a connect
 * that would hold back every reader for PG_RECONNECT_MS). */
static struct pg_conn *pg_reader_take_idle(struct store *s) {
    struct pg_store *q = pq(s);
    for (;;) {
        pthread_mutex_lock(&q->pool_lock);
        struct pg_conn *c = q->pool;
        if (c) q->pool = c->next;
        pthread_mutex_unlock(&q->pool_lock);
        if (!c) return NULL;
        c->next = NULL;
        if (pg_idle_ok(c)) return c;
        pg_conn_drop(c);
        free(c);
    }
}

struct pg_conn *pg_reader_take(struct store *s) {
    struct pg_store *q = pq(s);
    struct pg_conn *idle = pg_reader_take_idle(s);
    if (idle) return idle;
    int64_t now = time_mono_ms();
    pthread_mutex_lock(&q->pool_lock);
    bool wait = now < q->reader_retry_at;
    pthread_mutex_unlock(&q->pool_lock);
    if (wait) return NULL;
    struct pg_conn *c = xcalloc(1, sizeof *c);
    c->role = "reader";
    char why[256];
    if (pg_conn_open(q, c, PG_SESSION "; SET default_transaction_read_only = on", why,
                     sizeof why)) {
        pg_log(c, "cannot connect", why);
        free(c);
        pthread_mutex_lock(&q->pool_lock);
        q->reader_retry_at = now + PG_RECONNECT_MS;
        pthread_mutex_unlock(&q->pool_lock);
        return NULL;
    }
    return c;
}

void pg_reader_give(struct store *s, struct pg_conn *c) {
    struct pg_store *q = pq(s);
    if (!c) return;
    if (!c->pg) { /* broken: the next take opens a new one */
        free(c);
        return;
    }
    c->err = 0;
    pthread_mutex_lock(&q->pool_lock);
    c->next = q->pool;
    q->pool = c;
    pthread_mutex_unlock(&q->pool_lock);
}

/*
 * ---- A stalled node's locks ----
 *
 * Every batch of every node updates the event log's head row
 * (store_pg_events.c), so a transaction that holds it, or any row another
 * node's batch needs, and does not move holds up every other node's
 * writes until their statement_timeout answers them 503. PostgreSQL ends
 * such a session by itself only in part: idle_in_transaction_session_timeout
 * (PG_WRITER_SESSION) counts from a Sync, so it misses a node that stalled
 * in the middle of a pipeline (its process frozen, its link silent: the
 * session `active`, waiting on ClientRead), and the keepalives reach TCP
 * peers only, after about a minute.
 *
 * So a writer whose statement has waited PG_WATCH_AFTER_MS for its answer
 * looks, on a reader, at the sessions that block its backend
 * (pg_blocking_pids), and again every PG_WATCH_EVERY_MS while it waits.
 * It ends a blocker (pg_terminate_backend) only when all of these hold:
 *
 *   - its application_name is PG_WRITER_APP, alone or with the number
 *     after a '/' (pg_writer_app): a taskmill writer (pg_writer_setup
 *     names every one so, whatever the URL says);
 *   - it waits on its client inside a transaction: `idle in transaction`
 *     (aborted or not), or `active` waiting on ClientRead (mid-pipeline);
 *   - it has for PG_STALLED_MS (since its state_change). An `active`
 *     session's state_change moves when a statement starts, not when it
 *     ends, so a writer that just got the answer of a long statement looks
 *     stale for a moment: an `active` one must also have been seen so,
 *     with the same state_change, at the look before.
 *
 * A taskmill writer does not wait on its node that long inside a
 * transaction on purpose (between two of its statements there is only the
 * batch's own work), so such a session most likely belongs to a stalled or
 * vanished node. Not surely: `active` + ClientRead is also a server partway
 * through receiving a message, so a healthy node sending a large batch over
 * a slow link for 5 s, or a writer thread descheduled that long between
 * two statements, is ended too (its batch answered 503). The end
 * looks again at that session in the same statement (its state_change
 * unchanged); it is logged, once, with the pid and name it ended, and
 * counted (pg_stats). That node's transaction is rolled back; if the node
 * comes back its connection is gone, its batch is answered 503 (COMMIT was
 * not sent, or txid_status says it was rolled back: pg_commit), and its
 * writer reconnects for the next batch.
 *
 * Any other blocker is left alone: one running a statement (working, or
 * waiting for a lock itself), one that is not a taskmill writer (psql, an
 * application, a node of a version before these names). Once the writer
 * has waited PG_STALLED_MS such a blocker is logged, once a wait, with its
 * pid, name, state and how long it has been in it; the writer waits on,
 * to its statement_timeout. A blocker is logged, or its end found refused,
 * once a wait however many there are (pg_pids); "logged" and "refused" are
 * apart, so a writer logged while it ran a statement is still ended when
 * it then stalls. A look's statement gets PG_WATCH_READ_MS on a reader
 * already connected and idle in the pool, and never runs past the wait's
 * own deadline (pg_watch_read); with none idle the look is skipped and the
 * next tries again; a look that fails is not tried again in the same wait.
 *
 * Each look also reads which statement the writer's own session is
 * running. Should the wait run out on the client's side (PG_CALL_TIMEOUT_MS:
 * the server's statement_timeout counts per statement, and a pipeline of
 * statements that each waited can outlast it), the log names that
 * statement: the server answers a pipeline only at its Sync, so the first
 * statement still unanswered is always the pipeline's first, its BEGIN.
 */
static const char pg_blockers_sql[] =
    "SELECT pid, coalesce(application_name, ''), coalesce(state, ''),"
    " coalesce(wait_event_type || ':' || wait_event, ''), coalesce(state_change::text, ''),"
    " coalesce((extract(epoch FROM clock_timestamp() - state_change) * 1000)::bigint, 0),"
    " coalesce(state IN ('idle in transaction', 'idle in transaction (aborted)')"
    " OR (state = 'active' AND wait_event = 'ClientRead'), false),"
    " CASE WHEN state = 'active' THEN left(query, 200) ELSE '' END,"
    " coalesce(host(client_addr) || ':' || client_port, '')"
    /* The scalar subquery (the cast keeps it from reading as ANY of a
     * subquery) is an InitPlan: pg_blocking_pids, which takes every
     * lock-manager partition lock, runs once, not once a row (EXPLAIN). */
    " FROM pg_stat_activity WHERE pid = $1::integer"
    " OR pid = ANY((SELECT pg_blocking_pids($1::integer))::integer[])"
    " ORDER BY pid";

/* Ends the session pid when it is still as the look saw it (state_change
 * `at`, waiting on its client). */
static const char pg_end_sql[] =
    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE pid = $1::integer"
    " AND state_change::text = $2 AND (state IN ('idle in transaction',"
    " 'idle in transaction (aborted)') OR (state = 'active' AND wait_event = 'ClientRead'))";

/* Runs a look's statement on an idle reader of the pool, bounded by
 * PG_WATCH_READ_MS and by the wait's deadline, so that the look cannot
 * hold the writer past its own bound (a reader that does not answer in
 * time is closed). 0, a TM_E code, or 1 when nothing ran (no reader was
 * idle, or the wait has no time left): the next look tries again. It never opens a connection,
 * which could block for connect_timeout and, failing, hold back every reader. */
static int pg_watch_read(struct pg_conn *c, const struct pg_watch *w, const char *sql,
                         const struct pg_params *p, PGresult **res) {
    *res = NULL;
    int64_t left = w->deadline - time_mono_ms();
    if (left > PG_WATCH_READ_MS) left = PG_WATCH_READ_MS;
    if (left <= 0) return 1;
    struct pg_conn *r = pg_reader_take_idle(c->watch);
    if (!r) return 1;
    int rc = pg_exec(r, NULL, sql, p->n, p->v, p->len, p->fmt, left, res);
    pg_reader_give(c->watch, r);
    return rc;
}

static bool pg_pids_has(const struct pg_pids *set, int pid) {
    for (int i = 0; i < set->n; i++)
        if (set->v[i] == pid) return true;
    return false;
}

static void pg_pids_add(struct pg_pids *set, int pid) {
    if (set->n == set->cap) {
        set->cap = set->cap ? 2 * set->cap : 8;
        set->v = xrealloc(set->v, (size_t)set->cap * sizeof *set->v);
    }
    set->v[set->n++] = pid;
}

/* Notes that this look saw pid, a writer waiting on its node since `at`. */
static void pg_watch_saw(struct pg_watch *w, int pid, const char *at) {
    if (w->nseen == w->seen_cap) {
        w->seen_cap = w->seen_cap ? 2 * w->seen_cap : 8;
        w->seen = xrealloc(w->seen, (size_t)w->seen_cap * sizeof *w->seen);
    }
    w->seen[w->nseen].pid = pid;
    snprintf(w->seen[w->nseen].at, sizeof w->seen[w->nseen].at, "%s", at);
    w->nseen++;
}

/* Whether the look before saw pid waiting on its node since `at`. */
static bool pg_watch_saw_before(const struct pg_watch *w, int pid, const char *at) {
    for (int k = 0; k < w->nwas; k++)
        if (w->was[k].pid == pid && strcmp(w->was[k].at, at) == 0) return true;
    return false;
}

/* Ends a stalled writer session (`who` names it for the log): 1 when it
 * was, 0 when it had moved on or nothing ran (pg_watch_read), a TM_E code
 * when the statement failed (a role not allowed to: logged by pg_exec,
 * and here with the session it was for). */
static int pg_watch_end(struct pg_conn *c, const struct pg_watch *w, int pid, const char *at,
                        const char *who, int64_t waited_ms) {
    struct pg_params p;
    pgp_init(&p);
    pgp_int(&p, pid);
    pgp_text(&p, at);
    PGresult *r = NULL;
    int rc = pg_watch_read(c, w, pg_end_sql, &p, &r);
    bool ended = rc == 0 && PQntuples(r) == 1 && strcmp(PQgetvalue(r, 0, 0), "t") == 0;
    PQclear(r);
    char msg[512];
    if (rc < 0) {
        snprintf(msg, sizeof msg,
                 "cannot end session pid %d (%s), another node's writer waiting on its node "
                 "inside a transaction, that this writer has waited %lld ms for: the statement "
                 "failed (the line before says why; ending another role's session needs "
                 "pg_signal_backend, and a superuser's cannot be); not tried again in this wait",
                 pid, who, (long long)waited_ms);
        pg_log(c, "stalled session", msg);
        return rc;
    }
    if (!ended) return 0;
    atomic_fetch_add(&pq(c->watch)->stalled_ended, 1);
    snprintf(msg, sizeof msg,
             "ended session pid %d (%s), another node's writer waiting on its node inside a "
             "transaction; this writer had waited %lld ms for it",
             pid, who, (long long)waited_ms);
    pg_log(c, "stalled session", msg);
    return 1;
}

/* One look at the sessions that block the writer c (above). */
static void pg_watch_look(struct pg_conn *c, struct pg_watch *w) {
    int64_t waited = time_mono_ms() - w->since;
    w->next_at = INT64_MAX; /* unless the look succeeds, or finds no reader idle */
    struct pg_params p;
    pgp_init(&p);
    pgp_int(&p, PQbackendPID(c->pg));
    PGresult *r = NULL;
    int rc = pg_watch_read(c, w, pg_blockers_sql, &p, &r);
    if (rc) {
        PQclear(r);
        if (rc == 1) w->next_at = time_mono_ms() + PG_WATCH_EVERY_MS;
        return;
    }
    /* This look's sightings become the look before's. */
    struct pg_seen *spare = w->was;
    int spare_cap = w->was_cap;
    w->was = w->seen;
    w->nwas = w->nseen;
    w->was_cap = w->seen_cap;
    w->seen = spare;
    w->seen_cap = spare_cap;
    w->nseen = 0;
    int self = PQbackendPID(c->pg);
    w->query[0] = '\0';
    for (int i = 0; i < PQntuples(r); i++) {
        int pid = atoi(PQgetvalue(r, i, 0));
        if (pid == self) { /* the writer's own session: what it runs */
            pg_copy(w->query, sizeof w->query, r, i, 7);
            continue;
        }
        const char *app = PQgetvalue(r, i, 1), *state = PQgetvalue(r, i, 2);
        const char *wait = PQgetvalue(r, i, 3), *at = PQgetvalue(r, i, 4);
        const char *addr = PQgetvalue(r, i, 8);
        int64_t age = pg_int(r, i, 5);
        bool on_client = strcmp(PQgetvalue(r, i, 6), "t") == 0;
        bool writer = pg_writer_app(app) != -2, active = strcmp(state, "active") == 0;
        /* 'name', what it does (what an idle session waits on goes
         * without saying) for how long, and from where. */
        char who[256];
        snprintf(who, sizeof who, "'%s', %s%s%s for %lld ms%s%s", app,
                 *state ? state : "state unknown", active && *wait ? ", waiting on " : "",
                 active ? wait : "", (long long)age, *addr ? ", from " : "", addr);
        if (writer && on_client) {
            if (pg_pids_has(&w->refused, pid)) continue; /* its end failed in this wait */
            bool same = pg_watch_saw_before(w, pid, at);
            if (age >= PG_STALLED_MS && (same || !active)) {
                int ended = pg_watch_end(c, w, pid, at, who, waited);
                if (ended == 1) continue;
                if (ended < 0) {
                    pg_pids_add(&w->refused, pid);
                    continue;
                }
            }
            pg_watch_saw(w, pid, at);
            continue; /* not stalled long enough yet, or it moved: no line */
        }
        if (waited < PG_STALLED_MS || pg_pids_has(&w->logged, pid)) continue;
        pg_pids_add(&w->logged, pid);
        /* A writer behind another in the lock's queue blocks this one
         * too; the writer first in line looks at the one that holds it. */
        bool queued = writer && active && strncmp(wait, "Lock:", 5) == 0;
        char msg[512];
        snprintf(msg, sizeof msg,
                 "session pid %d (%s) holds what this writer has waited %lld ms for; not ended: "
                 "%s",
                 pid, who, (long long)waited,
                 !writer  ? "it is not a taskmill writer"
                 : queued ? "it is a taskmill writer waiting for a lock itself"
                 : *state ? "it is running a statement"
                          : "its state is not visible to this role (pg_read_all_stats)");
        pg_log(c, "waiting", msg);
    }
    PQclear(r);
    w->next_at = time_mono_ms() + PG_WATCH_EVERY_MS;
}

/* ---- Tasks: rows to structs and back ---- */

/* Adds a store_value as the next parameter. */
static void pgp_value(struct pg_params *p, const struct store_value *v) {
    if (v->kind == STORE_VALUE_INT)
        pgp_int(p, v->i);
    else if (v->kind == STORE_VALUE_REAL)
        pgp_real(p, v->r);
    else
        pgp_text(p, v->kind == STORE_VALUE_TEXT ? v->text : NULL);
}

void pgp_fields(struct pg_params *p, const struct store_field *fields, size_t max,
                const void *row) {
    for (size_t i = 0; i < max && fields[i].kind != STORE_FIELD_END; i++) {
        struct store_value v = store_field_value(row, &fields[i]);
        pgp_value(p, &v);
    }
}

static void pg_task_params(struct pg_params *p, const struct task *t) {
    for (size_t i = 0; i < NCOLS; i++) {
        struct store_value v = store_col_value(t, &store_task_columns[i]);
        pgp_value(p, &v);
    }
}

static struct task *pg_read_task(const PGresult *r, int row) {
    struct task *t = task_new();
    for (size_t i = 0; i < NREAD_COLS; i++) {
        struct store_value v = pg_value(r, row, (int)i);
        store_col_set(t, &store_task_columns[i], &v);
    }
    return t;
}

/* The one task a statement selected; TM_ENOT_FOUND when none. */
static int pg_fetch_task(struct pg_conn *c, const struct pg_stmt *st, const struct pg_params *p,
                         struct task **out) {
    PGresult *r;
    int rc = pg_run(c, st, p, &r);
    if (rc) return rc;
    if (PQntuples(r) == 0)
        rc = TM_ENOT_FOUND;
    else
        *out = pg_read_task(r, 0);
    PQclear(r);
    return rc;
}

/*
 * ---- Writer: the batch's rows ----
 *
 * A batch is one transaction, and every task row it reads is locked until
 * the transaction ends (FOR UPDATE), or was inserted by it: no other
 * transaction can change such a row meanwhile, so the writer keeps a copy
 * of each and answers the batch's later loads of it from memory. The
 * state below lives from begin to commit or rollback (pg_tx_clear), on the
 * writer thread only:
 *
 *   rows   every task row the transaction read (load, preload, a claim's
 *          candidates), inserted or updated, by id; t NULL when the id
 *          names no task (a load or preload found none, or it was removed).
 *   fresh  a task the transaction inserted (without an idempotency key),
 *          kept in rows[i].t and not yet written: pg_tx_flush inserts
 *          every fresh row in one INSERT ... SELECT unnest(...) (one row:
 *          the plain INSERT), before the kept updates. A later update of a
 *          fresh row only replaces the kept copy, so the row is written
 *          once, as it stands at the flush.
 *   dirty  an update kept in rows[i].t and not yet written. pg_update only
 *          keeps the new row (a later update of the same id replaces it);
 *          pg_tx_flush writes every kept row in one UPDATE ... FROM
 *          unnest(...) (fewer than PG_ARRAY_MIN: the keyed UPDATE, row by
 *          row), which pg_run and pg_run_sql do before any statement that
 *          could read a task (pg_stmt_sees_kept: all but a load or preload of rows not
 *          kept here, an insert, and the flush itself), so COMMIT too. A
 *          failed flush fails that statement.
 *   sets   claim candidates: a claim that the batch will repeat
 *          (store_claim_query.count) finds that many tasks in one
 *          statement, hands out the first and keeps the rest, in order,
 *          for the next claims of the same query. A candidate is handed out
 *          only if its row has not been written since it was found
 *          (rows[i].writes), and every set is dropped when the batch
 *          inserts a task or makes one pending, so a task that became
 *          claimable (maybe ahead of them) is not passed over. A set whose
 *          statement found fewer tasks than its LIMIT (`more` false) answers
 *          "none" when used up, without a statement.
 *
 * A savepoint rolled back releases the locks taken after it: pg_savepoint
 * writes the kept rows first, and its rollback drops them all (what was
 * kept after it is undone with it; what was loaded before is loaded again).
 */
struct pg_row {
    char id[ID_LEN + 1];
    struct task *t;  /* NULL: no task has this id */
    bool fresh;      /* inserted by this transaction, not yet written */
    bool dirty;      /* an update of t is kept, not yet written */
    uint32_t writes; /* updates and removes of the row in this transaction */
};

struct pg_cand {
    size_t row;      /* index in rows */
    uint32_t writes; /* the row's writes when it was found */
};

/* The candidates of one claim query. */
struct pg_cands {
    char *ns, *queue;
    char **types;
    int ntypes;
    struct pg_cand *v;
    size_t n, next, cap;
    bool more; /* the statement filled its LIMIT: more tasks may be there */
    struct pg_cands *next_set;
};

struct pg_tx {
    struct pg_row *rows;
    size_t nrows, caprows, ndirty, nfresh;
    size_t *slots; /* open addressing on the id: an index in rows + 1; 0: empty */
    size_t nslots; /* 0, or a power of two above twice nrows */
    struct pg_cands *sets;
    const struct pg_store *q;
};

/* The most candidates one claim statement takes (LIMIT). */
#define PG_CLAIM_MAX 1000
/*
 * The fewest rows a preload or a flush reads or writes with one statement
 * on arrays; below it (one row), the row goes by the keyed statement.
 * With the statements' shape of PG_ONE_ROW, an array UPDATE costs about
 * what the keyed UPDATEs of its rows do (the row's write through the
 * table's indexes is most of it) and saves their round trips: on the
 * one-task-per-request lifecycle, 290 us a call for about 6 rows (48 us a
 * row) against 54 us a keyed UPDATE. Before that shape (unnest in FROM,
 * the plan left to the planner) it took 1.05 to 1.38 ms a call, and
 * arrays were used only from 16 rows.
 */
#define PG_ARRAY_MIN 2
/*
 * The statements on arrays (flush, preload) unnest them in their select
 * list, one unnest() per array, and join tasks on tasks_pkey with
 * PG_ONE_ROW(the id) as a condition. Measured on the one-task-per-request
 * lifecycle, where a flush writes about 5 rows:
 *   - unnest(a, b, ...) in FROM materializes each array in a tuplestore of
 *     its own, 16 kB each when empty: 47 arrays asked glibc for about
 *     750 kB, given back on every call (brk, then page faults on the next):
 *     0.45 to 0.5 ms a call whatever the rows. In the select list
 *     (ProjectSet) nothing is materialized.
 *   - a prepared statement runs on its generic plan from the sixth call
 *     when that costs no more than the custom plans did, and there the
 *     planner does not know an array parameter's length: it counts 10
 *     elements. On a young tasks table (never analyzed, 10 pages to the
 *     planner) that plan hash-joins with a sequential scan of tasks, kept
 *     while the table grows: each flush read the whole table (438 pages
 *     at 3,000 tasks). On an analyzed table the generic plan costs more
 *     than a custom one of a few rows, so each call was planned again
 *     (100 to 150 us).
 * PG_ONE_ROW is true of every element, but the planner cannot estimate
 * the range and counts 0.5% of the rows (DEFAULT_RANGE_INEQ_SEL): one.
 * The plan is then the nested loop on tasks_pkey at any table size, the
 * generic and custom plans cost the same, and the generic one is kept.
 */
#define PG_ONE_ROW(id) "length(" id ") BETWEEN 0 AND 2147483647"

static size_t pg_id_hash(const char *id) {
    uint32_t h = 2166136261u; /* FNV-1a */
    for (; *id; id++)
        h = (h ^ (unsigned char)*id) * 16777619u;
    return h;
}

static struct pg_row *pg_tx_find(struct pg_tx *tx, const char *id) {
    if (!tx->nslots) return NULL;
    size_t mask = tx->nslots - 1;
    for (size_t i = pg_id_hash(id) & mask;; i = (i + 1) & mask) {
        size_t k = tx->slots[i];
        if (!k) return NULL;
        if (strcmp(tx->rows[k - 1].id, id) == 0) return &tx->rows[k - 1];
    }
}

static void pg_tx_slot(struct pg_tx *tx, size_t row) {
    size_t mask = tx->nslots - 1, i = pg_id_hash(tx->rows[row].id) & mask;
    while (tx->slots[i])
        i = (i + 1) & mask;
    tx->slots[i] = row + 1;
}

/* Sets the row of id to t (taken; NULL: no such task), adding it when new;
 * returns its index. Its dirty flag and writes stay. */
static size_t pg_tx_set(struct pg_tx *tx, const char *id, struct task *t) {
    struct pg_row *r = pg_tx_find(tx, id);
    if (r) {
        task_free(r->t);
        r->t = t;
        return (size_t)(r - tx->rows);
    }
    if (2 * (tx->nrows + 1) > tx->nslots) {
        free(tx->slots);
        tx->nslots = tx->nslots ? 2 * tx->nslots : 256;
        tx->slots = xcalloc(tx->nslots, sizeof *tx->slots);
        for (size_t i = 0; i < tx->nrows; i++)
            pg_tx_slot(tx, i);
    }
    if (tx->nrows == tx->caprows) {
        tx->caprows = tx->caprows ? 2 * tx->caprows : 64;
        tx->rows = xrealloc(tx->rows, tx->caprows * sizeof *tx->rows);
    }
    r = &tx->rows[tx->nrows];
    memset(r, 0, sizeof *r);
    snprintf(r->id, sizeof r->id, "%s", id);
    r->t = t;
    pg_tx_slot(tx, tx->nrows);
    return tx->nrows++;
}

static void pg_cands_free(struct pg_cands *c) {
    while (c) {
        struct pg_cands *next = c->next_set;
        free(c->ns);
        free(c->queue);
        for (int i = 0; i < c->ntypes; i++)
            free(c->types[i]);
        free(c->types);
        free(c->v);
        free(c);
        c = next;
    }
}

/* Every claim candidate is dropped: a task was inserted or made pending. */
static void pg_tx_drop_candidates(struct pg_tx *tx) {
    pg_cands_free(tx->sets);
    tx->sets = NULL;
}

/* Forgets the transaction's rows, kept updates and candidates (it ended,
 * or will be rolled back). */
static void pg_tx_clear(struct pg_tx *tx) {
    if (!tx) return;
    for (size_t i = 0; i < tx->nrows; i++)
        task_free(tx->rows[i].t);
    tx->nrows = tx->ndirty = tx->nfresh = 0;
    if (tx->nslots) memset(tx->slots, 0, tx->nslots * sizeof *tx->slots);
    pg_tx_drop_candidates(tx);
}

static void pg_tx_release(struct pg_tx *tx) {
    pg_tx_clear(tx);
    free(tx->rows);
    free(tx->slots);
}

/* One element of a flush array: the column's value as its array's type
 * (pg_build_statements: text, bigint, integer or float8). */
static void pga_col(struct buf *b, const struct store_col *c, const struct task *t) {
    struct store_value v = store_col_value(t, c);
    if (v.kind == STORE_VALUE_NULL)
        pga_null(b);
    else if (c->kind == STORE_COL_BOOL)
        pga_int4(b, (int32_t)v.i);
    else if (v.kind == STORE_VALUE_INT)
        pga_int8(b, v.i);
    else if (v.kind == STORE_VALUE_REAL)
        pga_float8(b, v.r);
    else
        pga_text(b, v.text);
}

static unsigned pg_col_oid(const struct store_col *c) {
    switch (c->kind) {
    case STORE_COL_INT:
    case STORE_COL_DUE:
        return PG_OID_INT8;
    case STORE_COL_BOOL:
        return PG_OID_INT4;
    case STORE_COL_REAL:
        return PG_OID_FLOAT8;
    default:
        return PG_OID_TEXT;
    }
}

/* The SQL type of a column's flush array (pg_col_oid). */
static const char *pg_col_type(const struct store_col *c) {
    unsigned oid = pg_col_oid(c);
    return oid == PG_OID_INT8     ? "bigint"
           : oid == PG_OID_INT4   ? "integer"
           : oid == PG_OID_FLOAT8 ? "float8"
                                  : "text";
}

/* The end of a flush statement that should have written *arg kept rows.
 * Every kept row is locked by this transaction, so none can be gone. */
static int pg_tx_flushed(struct pg_conn *c, PGresult *r, void *arg) {
    size_t n = *(size_t *)arg;
    if (strtoull(PQcmdTuples(r), NULL, 10) == n) return 0;
    char why[96];
    snprintf(why, sizeof why, "%s of %zu kept rows written", PQcmdTuples(r), n);
    pg_log(c, "flush", why);
    return TM_EINTERNAL;
}

/* Sends st (a flush of n kept rows) ahead; on a failure the transaction
 * is lost and its state dropped. */
static int pg_tx_flush_send(struct pg_conn *c, const struct pg_stmt *st, const struct pg_params *p,
                            size_t n) {
    size_t *arg = xmalloc(sizeof *arg);
    *arg = n;
    int rc = pg_run_ahead(c, st, p, pg_tx_flushed, arg);
    if (rc) pg_tx_clear(c->tx);
    return rc;
}

/* One kept row, written by the keyed UPDATE (st_update). */
static int pg_tx_flush_row(struct pg_conn *c, struct pg_row *row) {
    row->dirty = false;
    c->tx->ndirty--;
    struct pg_params p;
    pgp_init(&p);
    pg_task_params(&p, row->t);
    return pg_tx_flush_send(c, &c->tx->q->st_update, &p, 1);
}

/* One statement on arrays (st, sent ahead) of the columns `cols` of the n
 * kept rows that are fresh (`fresh`) or dirty, a flag cleared here. */
static int pg_tx_send_rows(struct pg_conn *c, const struct pg_stmt *st, const size_t *cols,
                           size_t ncols, bool fresh, size_t n) {
    struct pg_tx *tx = c->tx;
    struct buf a[PG_MAX_PARAMS];
    for (size_t k = 0; k < ncols; k++) {
        buf_init(&a[k]);
        pga_begin(&a[k], pg_col_oid(&store_task_columns[cols[k]]), n);
    }
    for (size_t i = 0; i < tx->nrows; i++) {
        struct pg_row *r = &tx->rows[i];
        bool *flag = fresh ? &r->fresh : &r->dirty;
        if (!*flag) continue;
        for (size_t k = 0; k < ncols; k++)
            pga_col(&a[k], &store_task_columns[cols[k]], r->t);
        *flag = false;
    }
    struct pg_params p;
    pgp_init(&p);
    for (size_t k = 0; k < ncols; k++)
        pgp_bin(&p, a[k].p, a[k].len);
    int rc = pg_tx_flush_send(c, st, &p, n);
    for (size_t k = 0; k < ncols; k++)
        buf_release(&a[k]);
    return rc;
}

/* Inserts every fresh row: one statement on arrays of every column, or
 * the plain INSERT for one row. */
static int pg_tx_flush_fresh(struct pg_conn *c) {
    struct pg_tx *tx = c->tx;
    const struct pg_store *q = tx->q;
    size_t n = tx->nfresh;
    tx->nfresh = 0;
    if (n >= PG_ARRAY_MIN)
        return pg_tx_send_rows(c, &q->st_insert_many, q->insert_cols, NCOLS, true, n);
    for (size_t i = 0; i < tx->nrows; i++) {
        if (!tx->rows[i].fresh) continue;
        tx->rows[i].fresh = false;
        struct pg_params p;
        pgp_init(&p);
        pg_task_params(&p, tx->rows[i].t);
        return pg_tx_flush_send(c, &q->st_insert, &p, 1);
    }
    return 0;
}

/* Writes every kept insert, then every kept update, in a statement each
 * (none: nothing), sent ahead: a failure fails the statement that reads
 * it, and the transaction is lost, its state dropped. */
static int pg_tx_flush(struct pg_conn *c) {
    struct pg_tx *tx = c->tx;
    if (!tx || (!tx->ndirty && !tx->nfresh)) return 0;
    if (tx->nfresh) {
        int rc = pg_tx_flush_fresh(c);
        if (rc || !tx->ndirty) return rc;
    }
    const struct pg_store *q = tx->q;
    size_t n = tx->ndirty;
    if (n < PG_ARRAY_MIN) { /* row by row: see PG_ARRAY_MIN */
        for (size_t i = 0; i < tx->nrows && tx->ndirty; i++) {
            if (!tx->rows[i].dirty) continue;
            int rc = pg_tx_flush_row(c, &tx->rows[i]);
            if (rc) return rc;
        }
        return 0;
    }
    tx->ndirty = 0;
    return pg_tx_send_rows(c, &q->st_flush, q->flush_cols, q->nflush_cols, false, n);
}

/* ---- Migrations ---- */

/* Sessions of older nodes connected to the database, that a migration
 * older nodes cannot run beside must not meet; pg_migrate_beside_older
 * looks for them, and names them in its error. */
// clang-format off
static const char pg_older_sql[] =
    "SELECT pid, application_name FROM pg_stat_activity"
    " WHERE datname = current_database() AND pid <> pg_backend_pid()"
    " AND (application_name IN ('" PG_APP "', '" PG_WRITER_APP "')"
    " OR application_name LIKE '" PG_WRITER_APP "/%')"
    " ORDER BY application_name, pid";
// clang-format on

/* Whether the migrations after `have` may be applied beside the taskmill
 * nodes connected to the database (under the migration lock, so a node
 * that starts meanwhile waits for it): 0, or an error in e. Among them M,
 * the highest that older nodes cannot run beside (PG_NOT_BESIDE_OLDER;
 * none: 0 at once). Every session named for a node that knows fewer
 * migrations than M is such a node's: a writer named with a number below
 * M, or without one (nodes built before the number), and any session named
 * plain PG_APP (nodes built before PG_WRITER_APP name their writer so;
 * this node's readers do too, but none is open yet, and a node that knew M
 * would have applied it when it started). */
static int pg_migrate_beside_older(struct pg_conn *c, int have, struct tm_error *e) {
    int m_no = 0;
    for (const struct embedded_file *m = pg_migrations_known(); m->name; m++)
        if (atoi(m->name) > have && atoi(m->name) > m_no && pg_migration_not_beside_older(m))
            m_no = atoi(m->name);
    if (!m_no) return 0;
    PGresult *r = NULL;
    int rc = pg_run_sql(c, pg_older_sql, NULL, &r);
    if (rc) {
        PQclear(r);
        return err_set(e, rc, "store",
                       "cannot read which taskmill nodes the PostgreSQL database has");
    }
    /* Grouped by name (the rows come so): "2 writer sessions of nodes that
     * know migrations up to 8 (pids 4242, 4243)". */
    struct buf why, pids; /* pids: the first ones, for an error too long with why */
    buf_init(&why);
    buf_init(&pids);
    int older = 0;
    for (int i = 0, n = PQntuples(r); i < n;) {
        const char *app = PQgetvalue(r, i, 1);
        int k = pg_writer_app(app);
        int j = i;
        while (j < n && strcmp(PQgetvalue(r, j, 1), app) == 0)
            j++;
        if (strcmp(app, PG_APP) == 0 || k == -1 || (k >= 0 && k < m_no)) {
            int count = j - i;
            older += count;
            if (why.len) buf_printf(&why, "; ");
            const char *ss = count == 1 ? "" : "s";
            if (strcmp(app, PG_APP) == 0)
                buf_printf(&why, "%d session%s named '%s' (nodes built before writers were named)",
                           count, ss, PG_APP);
            else if (k == -1)
                buf_printf(&why, "%d writer session%s of %s that name%s no migration", count, ss,
                           count == 1 ? "a node" : "nodes", count == 1 ? "s" : "");
            else
                buf_printf(&why, "%d writer session%s of %s that know%s migrations up to %d", count,
                           ss, count == 1 ? "a node" : "nodes", count == 1 ? "s" : "", k);
            buf_printf(&why, " (pid%s", ss);
            for (int x = i; x < j && x < i + 8; x++)
                buf_printf(&why, "%s %s", x == i ? "" : ",", PQgetvalue(r, x, 0));
            buf_printf(&why, "%s)", count > 8 ? ", ..." : "");
            for (int x = i; x < j; x++) /* the first 5 (the line before has all) */
                if (older - count + x - i < 5)
                    buf_printf(&pids, "%s %s", pids.len ? "," : "", PQgetvalue(r, x, 0));
                else if (older - count + x - i == 5)
                    buf_printf(&pids, ", ...");
        }
        i = j;
    }
    PQclear(r);
    if (older) {
        char msg[sizeof e->message];
        int n = snprintf(msg, sizeof msg,
                         "migration %d cannot run beside older taskmill nodes: %s %s connected: "
                         "stop those nodes first, then start this one "
                         "(docs/operations.md#upgrades-and-migrations)",
                         m_no, why.p, older == 1 ? "is" : "are");
        if (n >= (int)sizeof msg) { /* too long for an error: the sessions on a line before */
            fprintf(stderr, "taskmill: postgres: migration %d: older taskmill nodes: %s\n", m_no,
                    why.p);
            snprintf(msg, sizeof msg,
                     "migration %d cannot run beside older taskmill nodes: %d of their sessions "
                     "are connected (the line before says which; pids%s): stop those nodes "
                     "first, then start this one (docs/operations.md#upgrades-and-migrations)",
                     m_no, older, pids.p);
        }
        err_set(e, TM_EINTERNAL, "store", "%s", msg);
    }
    buf_release(&why);
    buf_release(&pids);
    return older ? TM_EINTERNAL : 0;
}

/* Applies the migrations the database lacks; on a failure, why in e.
 * *writes says whether the database takes writes (a PG_WRITES_ value): one
 * that refuses them (a standby, default_transaction_read_only) and has
 * every migration is served, its writes refused; one that lacks some
 * cannot be. */
static int pg_migrate(struct pg_conn *c, int *writes, struct tm_error *e) {
    PGresult *r = NULL;
    *writes = PG_WRITES_OK;
    int rc = pg_cmd(c, "BEGIN");
    if (rc) return rc;
    /* Nodes that start at once take turns here; then each sees what the
     * others applied. (A standby takes advisory locks too.) */
    rc = pg_run_sql(c,
                    "SET LOCAL client_min_messages = warning;"
                    " SET LOCAL statement_timeout = " PGSTR(PG_MIGRATE_TIMEOUT_MS) ";"
                    " SELECT pg_advisory_xact_lock(" PG_MIGRATE_LOCK ");"
                    " SELECT current_setting('transaction_read_only') = 'on', pg_is_in_recovery(),"
                    " to_regclass('taskmill_migrations') IS NOT NULL",
                    NULL, &r);
    bool table = false;
    if (rc == 0 && PQntuples(r) == 1) {
        if (strcmp(PQgetvalue(r, 0, 1), "t") == 0)
            *writes = PG_WRITES_STANDBY;
        else if (strcmp(PQgetvalue(r, 0, 0), "t") == 0)
            *writes = PG_WRITES_READ_ONLY;
        table = strcmp(PQgetvalue(r, 0, 2), "t") == 0;
    }
    PQclear(r);
    r = NULL;
    if (rc == 0 && (table || *writes == PG_WRITES_OK))
        rc = pg_run_sql(c,
                        *writes != PG_WRITES_OK
                            ? "SELECT coalesce(max(version), 0) FROM taskmill_migrations"
                            : "CREATE TABLE IF NOT EXISTS taskmill_migrations ("
                              "version INTEGER PRIMARY KEY, name TEXT NOT NULL,"
                              " applied_at BIGINT NOT NULL);"
                              " SELECT coalesce(max(version), 0) FROM taskmill_migrations",
                        NULL, &r);
    int have = rc == 0 && r && PQntuples(r) == 1 ? atoi(PQgetvalue(r, 0, 0)) : 0;
    PQclear(r);
    int known = pg_known();
    if (rc == 0 && *writes != PG_WRITES_OK && have < known) {
        char which[48];
        if (known - have == 1)
            snprintf(which, sizeof which, "migration %d", known);
        else
            snprintf(which, sizeof which, "migrations %d to %d", have + 1, known);
        err_set(e, TM_EUNAVAILABLE, "store",
                "the PostgreSQL database refuses writes (%s) and lacks %s, which this taskmill "
                "applies at start: start it on a database that takes writes (the primary) first",
                pg_writes_why(*writes), which);
        rc = TM_EUNAVAILABLE;
    } else if (rc == 0 && have > known) {
        err_set(e, TM_EINTERNAL, "store",
                "the PostgreSQL database has migration %d, newer than this taskmill knows (%d):"
                " upgrade taskmill, or restore a backup",
                have, known);
        rc = TM_EINTERNAL;
    } else if (rc) {
        err_set(e, rc, "store", "cannot read the PostgreSQL database's migrations");
    } else if (have < known) {
        rc = pg_migrate_beside_older(c, have, e);
    }
    for (const struct embedded_file *m = pg_migrations_known(); rc == 0 && m->name; m++) {
        int number = atoi(m->name);
        if (number <= have) continue;
        if ((rc = pg_exec(c, NULL, m->data, 0, NULL, NULL, NULL, PG_MIGRATE_TIMEOUT_MS, &r))) {
            err_set(e, rc, "store", "cannot apply the PostgreSQL migration '%.64s'", m->name);
            break;
        }
        PQclear(r);
        struct pg_params p;
        pgp_init(&p);
        pgp_int(&p, number);
        pgp_text(&p, m->name);
        pgp_int(&p, time_now_ms());
        rc = pg_run_sql(c,
                        "INSERT INTO taskmill_migrations(version, name, applied_at)"
                        " VALUES($1::integer, $2, $3::bigint)",
                        &p, &r);
        PQclear(r);
        if (rc) err_set(e, rc, "store", "cannot record the PostgreSQL migration '%.64s'", m->name);
    }
    if (rc == 0 && (rc = pg_cmd(c, "COMMIT")))
        err_set(e, rc, "store", "cannot commit the PostgreSQL migrations");
    if (rc && c->pg) pg_cmd(c, "ROLLBACK");
    return rc;
}

/* ---- open / close ---- */

static void pg_build_statements(struct pg_store *q) {
    struct buf cols, ins, upd, sel;
    buf_init(&cols);
    buf_init(&ins);
    buf_init(&upd);
    buf_init(&sel);
    sql_task_statements(&sql_dialect_pg, NREAD_COLS, &cols, &ins, &upd);
    q->select_cols = buf_detach(&cols);
    q->st_insert = (struct pg_stmt){PGS_INSERT, buf_detach(&ins)};
    q->st_update = (struct pg_stmt){PGS_UPDATE, buf_detach(&upd)}; /* one kept row */
    buf_printf(&sel, "SELECT %s FROM tasks WHERE id=$1 FOR UPDATE", q->select_cols);
    q->st_load = (struct pg_stmt){PGS_LOAD, buf_detach(&sel)};
    /* In id order, so that two nodes preloading rows they share lock them
     * in one order and neither waits for the other holding half. The ids
     * are distinct (pg_preload). The statement's shape: see PG_ONE_ROW. */
    buf_printf(&sel,
               "SELECT %s FROM (SELECT unnest($1::text[]) AS uid) AS u JOIN tasks ON id = u.uid"
               " WHERE " PG_ONE_ROW("u.uid") " ORDER BY id FOR UPDATE OF tasks",
               q->select_cols);
    q->st_preload = (struct pg_stmt){PGS_PRELOAD, buf_detach(&sel)};
    /* The kept updates (pg_tx_flush): one array per column written, the
     * fixed columns left out (no op changes them). The arrays are typed,
     * so no column has to be named for its parameter's type to be known. */
    struct buf set, from;
    buf_init(&set);
    buf_init(&from);
    q->nflush_cols = 0;
    for (size_t i = 0; i < NCOLS; i++) {
        const struct store_col *c = &store_task_columns[i];
        if (i > 0 && c->fixed) continue;
        size_t k = q->nflush_cols++;
        q->flush_cols[k] = i;
        buf_printf(&from, "%sunnest($%zu::%s[]) AS %s", k ? "," : "", k + 1, pg_col_type(c),
                   c->name);
        if (k) buf_printf(&set, "%s%s=u.%s", k > 1 ? "," : "", c->name, c->name);
    }
    buf_printf(
        &sel,
        "UPDATE tasks AS t SET %s FROM (SELECT %s) AS u WHERE t.id=u.id AND " PG_ONE_ROW("u.id"),
        set.p, from.p);
    q->st_flush = (struct pg_stmt){PGS_FLUSH, buf_detach(&sel)};
    buf_release(&set);
    buf_release(&from);
    /* The kept inserts: one array per column, unnested in the select list
     * (see PG_ONE_ROW: nothing is materialized there). */
    buf_puts(&sel, "INSERT INTO tasks(");
    for (size_t i = 0; i < NCOLS; i++) {
        q->insert_cols[i] = i;
        buf_printf(&sel, "%s%s", i ? "," : "", store_task_columns[i].name);
    }
    buf_puts(&sel, ") SELECT ");
    for (size_t i = 0; i < NCOLS; i++) {
        buf_printf(&sel, "%sunnest($%zu::%s[])", i ? "," : "", i + 1,
                   pg_col_type(&store_task_columns[i]));
    }
    q->st_insert_many = (struct pg_stmt){PGS_INSERT_MANY, buf_detach(&sel)};
    buf_printf(&sel, "SELECT %s FROM tasks WHERE id=$1", q->select_cols);
    q->st_get = (struct pg_stmt){PGS_GET, buf_detach(&sel)};
    /* One statement finds, loads and locks the next $4 tasks (the batch's
     * claims of this query: pg_claim_next); the partial index tasks_claim
     * serves it whatever the namespace and types. */
    buf_printf(&sel,
               "SELECT %s FROM tasks WHERE queue=$1 AND phase='pending' AND paused=0"
               " AND ($2::text IS NULL OR namespace=$2)"
               " AND ($3::text[] IS NULL OR type = ANY($3::text[]))"
               " ORDER BY priority, ready_at, id LIMIT $4 FOR UPDATE SKIP LOCKED",
               q->select_cols);
    q->st_claim = (struct pg_stmt){PGS_CLAIM, buf_detach(&sel)};
}

static int pg_open(struct store *s, const char *url, const struct store_options *opt,
                   struct tm_error *e) {
    struct pg_store *q = xcalloc(1, sizeof *q);
    store_base_of(s)->impl = q;
    q->url = xstrdup(url);
    q->relaxed = opt->relaxed;
    q->query_timeout_ms = opt->query_timeout_ms;
    q->writer.role = "writer";
    q->writer.watch = s;
    q->tx = xcalloc(1, sizeof *q->tx);
    q->tx->q = q;
    q->writer.tx = q->tx;
    q->listener.role = "listener";
    q->wake[0] = q->wake[1] = -1;
    pthread_mutex_init(&q->pool_lock, NULL);
    pg_build_statements(q);
    if (pipe2(q->wake, O_CLOEXEC | O_NONBLOCK))
        return err_set(e, TM_EINTERNAL, "store", "cannot make a pipe: %s", strerror(errno));
    char why[256];
    if (pg_conn_open(q, &q->writer, pg_writer_setup(q), why, sizeof why))
        return err_set(e, TM_EUNAVAILABLE, "store", "cannot connect to PostgreSQL: %s", why);
    atomic_store(&q->writer_pid, PQbackendPID(q->writer.pg));
    int writes;
    if (pg_migrate(&q->writer, &writes, e)) return e->code;
    /* A database that refuses writes is served all the same: reads go on,
     * writes answer 503 saying why, and once the first is refused the
     * writer looks again every second (pg_writer_ready), as when the
     * database turns read-only later. Its session stays for the start's
     * reads. */
    if (writes != PG_WRITES_OK) pg_writes_refused(q, writes, "");
    return 0;
}

static void pg_close(struct store *s) {
    struct pg_store *q = pq(s);
    if (!q) return;
    pg_tx_clear(q->tx);
    if (q->writer.pg && PQtransactionStatus(q->writer.pg) != PQTRANS_IDLE)
        pg_cmd(&q->writer, "ROLLBACK");
    pg_conn_drop(&q->writer);
    free(q->writer.ahead);
    pg_conn_drop(&q->listener);
    while (q->pool) {
        struct pg_conn *c = q->pool;
        q->pool = c->next;
        pg_conn_drop(c);
        free(c);
    }
    for (int i = 0; i < 2; i++)
        if (q->wake[i] >= 0) close(q->wake[i]);
    pthread_mutex_destroy(&q->pool_lock);
    pg_tx_release(q->tx);
    free(q->tx);
    free((char *)q->st_load.sql);
    free((char *)q->st_preload.sql);
    free((char *)q->st_insert.sql);
    free((char *)q->st_insert_many.sql);
    free((char *)q->st_update.sql);
    free((char *)q->st_flush.sql);
    free((char *)q->st_get.sql);
    free((char *)q->st_claim.sql);
    free(q->select_cols);
    free(q->url);
    free(q);
    store_base_of(s)->impl = NULL;
}

/* ---- Writer: transactions ---- */

static int pg_begin(struct store *s) {
    struct pg_store *q = pq(s);
    pg_tx_clear(q->tx);
    int rc = pg_writer_ready(q);
    if (rc) return rc;
    q->writer.err = 0;
    /* Ahead: it reaches the server with the batch's first statement. */
    return pg_send_ahead(&q->writer, NULL, "BEGIN ISOLATION LEVEL READ COMMITTED", NULL, NULL,
                         NULL);
}

/* Retention's transaction: its commit does not wait for the WAL flush
 * (synchronous_commit off for this transaction alone); a later durable
 * commit flushes it, and a crash before then only brings rows back. */
static int pg_begin_lazy(struct store *s) {
    int rc = pg_begin(s);
    if (rc == 0) rc = pg_cmd(&pq(s)->writer, "SET LOCAL synchronous_commit TO off");
    return rc;
}

static const struct pg_stmt st_commit_xid = {PGS_COMMIT_XID, "SELECT txid_current_if_assigned()"};

static int pg_xid_read(struct pg_conn *c, PGresult *r, void *arg) {
    (void)c;
    **(int64_t **)arg = pg_int(r, 0, 0);
    return 0;
}

/*
 * The outcome of transaction xid, whose COMMIT was sent and whose answer
 * was lost with the writer's connection (a restart, a failover, a network
 * cut): PostgreSQL may have committed it or not. Asked on a reader, again
 * while it is in progress (its backend has not noticed yet) or no reader
 * can connect, for at most PG_OUTCOME_MS. 0 when it committed (its ops
 * are answered as they were applied); TM_EUNAVAILABLE when it was rolled
 * back or the answer did not come in time (then a 503 may stand for a
 * change that is stored, docs/operations.md).
 */
static int pg_commit_outcome(struct store *s, int64_t xid) {
    int64_t deadline = time_mono_ms() + PG_OUTCOME_MS;
    struct pg_params p;
    pgp_init(&p);
    pgp_int(&p, xid);
    for (;;) {
        PGresult *r = NULL;
        int rc = pg_read_sql(s, "SELECT txid_status($1::bigint)", &p, &r);
        const char *st =
            rc == 0 && PQntuples(r) == 1 && !PQgetisnull(r, 0, 0) ? PQgetvalue(r, 0, 0) : "";
        bool committed = strcmp(st, "committed") == 0, aborted = strcmp(st, "aborted") == 0;
        PQclear(r);
        if (committed || aborted) {
            pg_log(&pq(s)->writer, "commit",
                   committed ? "its answer was lost; the transaction committed"
                             : "its answer was lost; the transaction was rolled back");
            return committed ? 0 : TM_EUNAVAILABLE;
        }
        if (time_mono_ms() >= deadline) {
            pg_log(&pq(s)->writer, "commit",
                   "its answer was lost, and whether it committed is not known");
            return TM_EUNAVAILABLE;
        }
        struct timespec pause = {0, 100 * 1000000L};
        nanosleep(&pause, NULL);
    }
}

static int pg_commit(struct store *s) {
    struct pg_conn *c = &pq(s)->writer;
    if (!c->pg) {
        pg_tx_clear(c->tx);
        return TM_EUNAVAILABLE;
    }
    if (PQtransactionStatus(c->pg) == PQTRANS_INERROR) {
        /* A statement failed and nobody rolled back to a savepoint. */
        int rc = c->err ? c->err : TM_EINTERNAL;
        pg_tx_clear(c->tx);
        pg_cmd(c, "ROLLBACK");
        return rc;
    }
    PGresult *r = NULL;
    /* The transaction's id, and its answer had, before COMMIT is sent:
     * should COMMIT's own answer be lost with the connection, it says
     * which transaction to ask about (pg_commit_outcome). Had first, as a
     * cut after COMMIT went can lose every answer after the last one read
     * (sent with COMMIT, the id was lost with it, and a committed batch
     * answered 503); a cut before COMMIT went leaves nothing committed.
     * It costs a round trip a batch, not a flush. _if_assigned: a batch
     * that wrote nothing gets no id, and its commit stays free of a WAL
     * flush. Sending it writes the kept updates first (pg_tx_flush); when
     * that or any statement sent ahead fails, COMMIT is not sent and the
     * transaction is rolled back below. */
    struct pg_store *q = pq(s);
    q->commit_xid = 0;
    int64_t **xid = xmalloc(sizeof *xid);
    *xid = &q->commit_xid;
    int rc = pg_run_ahead(c, &st_commit_xid, NULL, pg_xid_read, xid);
    if (rc == 0) {
        rc = pg_sync(c, NULL, PG_CALL_TIMEOUT_MS, &r);
        PQclear(r);
        r = NULL;
    }
    bool commit_sent = rc == 0; /* else nothing can have committed: nothing to ask */
    if (rc == 0) rc = pg_run_sql(c, "COMMIT", NULL, &r);
    if (rc == TM_EUNAVAILABLE && !c->pg && commit_sent && q->commit_xid > 0)
        rc = pg_commit_outcome(s, q->commit_xid);
    pg_tx_clear(c->tx);
    if (rc == 0 && r && strcmp(PQcmdStatus(r), "COMMIT") != 0) {
        pg_log(c, "commit", "the transaction was rolled back");
        rc = TM_EINTERNAL;
    }
    PQclear(r);
    if (rc && c->pg && PQtransactionStatus(c->pg) != PQTRANS_IDLE) pg_cmd(c, "ROLLBACK");
    return rc;
}

static void pg_rollback(struct store *s) {
    struct pg_conn *c = &pq(s)->writer;
    pg_tx_clear(c->tx);
    /* Twice at most: a ROLLBACK sent after statements sent ahead does not
     * run when one of them failed, and the transaction is left failed. */
    for (int i = 0; i < 2 && c->pg && PQtransactionStatus(c->pg) != PQTRANS_IDLE; i++)
        pg_cmd(c, "ROLLBACK");
    /* Before store.c asks why the batch failed (pg_refusing). */
    if (c->read_only) pg_writer_refused(pq(s));
}

/* pg_cmd writes the kept updates first: a rollback to it drops every one
 * kept after it. */
static int pg_savepoint(struct store *s) {
    return pg_cmd(&pq(s)->writer, "SAVEPOINT tm_op");
}

static int pg_savepoint_release(struct store *s) {
    return pg_cmd(&pq(s)->writer, "RELEASE SAVEPOINT tm_op");
}

/* Undoes what followed the savepoint, and releases the row locks taken
 * since: the cached rows and candidates are dropped with the updates kept
 * since (pg_tx_clear); a later load reads its row again. */
static int pg_savepoint_rollback(struct store *s) {
    struct pg_conn *c = &pq(s)->writer;
    pg_tx_clear(c->tx);
    int rc = pg_cmd(c, "ROLLBACK TO SAVEPOINT tm_op");
    if (rc == 0) c->err = 0; /* the transaction is usable again */
    return rc;
}

/* ---- Writer: tasks ---- */

static const struct pg_stmt st_remove = {PGS_REMOVE, "DELETE FROM tasks WHERE id=$1"};
static const struct pg_stmt st_idem = {
    PGS_IDEM, "SELECT id FROM tasks WHERE namespace=$1 AND idempotency_key=$2"};
static const struct pg_stmt st_due = {PGS_DUE,
                                      "SELECT id FROM tasks WHERE due_at IS NOT NULL AND due_at<=$1"
                                      " ORDER BY due_at LIMIT $2 FOR UPDATE SKIP LOCKED"};
static const struct pg_stmt st_next_due = {
    PGS_NEXT_DUE, "SELECT coalesce(min(due_at), 0) FROM tasks WHERE due_at IS NOT NULL"};
static const struct pg_stmt st_queue_get = {
    PGS_QUEUE_GET,
    "SELECT max_retries, backoff_ms, backoff_max_ms, paused, retain_completed_seconds,"
    " retain_failed_seconds, retain_cancelled_seconds FROM queues WHERE name=$1"};
static const struct pg_stmt st_queue_put = {
    PGS_QUEUE_PUT,
    "INSERT INTO queues(name, max_retries, backoff_ms, backoff_max_ms, retain_completed_seconds,"
    " retain_failed_seconds, retain_cancelled_seconds) VALUES($1,$2,$3,$4,$5,$6,$7)"
    " ON CONFLICT(name) DO UPDATE SET max_retries=excluded.max_retries,"
    " backoff_ms=excluded.backoff_ms, backoff_max_ms=excluded.backoff_max_ms,"
    " retain_completed_seconds=excluded.retain_completed_seconds,"
    " retain_failed_seconds=excluded.retain_failed_seconds,"
    " retain_cancelled_seconds=excluded.retain_cancelled_seconds, configured=1"};
/* The queue's row, made active with the defaults if it has none; waits
 * for another node's uncommitted insert of it (and then does nothing). */
static const struct pg_stmt st_queue_row = {
    PGS_QUEUE_ROW,
    "INSERT INTO queues(name, max_retries, backoff_ms, backoff_max_ms, configured)"
    " VALUES($1,$2,$3,$4,0) ON CONFLICT(name) DO NOTHING"};
/* Returns paused as the row stood before, read under its lock (so after
 * another node's pause or resume that held it). The row exists: st_queue_row
 * ran first, as a statement of its own, so that this one's snapshot holds
 * a row another node inserted meanwhile (one statement that inserted when
 * it saw no row read "no row" as active after waiting on that insert). The
 * old value comes from `was`, which the update joins, so that it is read
 * (and locked) before the row is written: a CTE named only in RETURNING is
 * read after, and skipped the row this statement had just updated. */
static const struct pg_stmt st_queue_pause = {
    PGS_QUEUE_PAUSE,
    "WITH was AS MATERIALIZED (SELECT paused FROM queues WHERE name=$1 FOR UPDATE)"
    " UPDATE queues SET paused=$2 FROM was WHERE queues.name=$1 RETURNING was.paused"};
/* $1 node, $2.. the entries' columns as arrays. */
static const struct pg_stmt st_stats_add = {
    PGS_STATS_ADD,
    "INSERT INTO queue_stats(queue, namespace, minute, node, submitted, completed, failed,"
    " latency_sum, latency_n, latency_max)"
    " SELECT u.queue, u.ns, u.minute, $1, u.sub, u.comp, u.fail, u.lsum, u.ln, u.lmax"
    " FROM unnest($2::text[], $3::text[], $4::bigint[], $5::bigint[], $6::bigint[],"
    " $7::bigint[], $8::bigint[], $9::bigint[], $10::bigint[])"
    " AS u(queue, ns, minute, sub, comp, fail, lsum, ln, lmax)"
    " ON CONFLICT(queue, namespace, minute, node) DO UPDATE SET"
    " submitted=queue_stats.submitted+excluded.submitted,"
    " completed=queue_stats.completed+excluded.completed,"
    " failed=queue_stats.failed+excluded.failed,"
    " latency_sum=queue_stats.latency_sum+excluded.latency_sum,"
    " latency_n=queue_stats.latency_n+excluded.latency_n,"
    " latency_max=greatest(queue_stats.latency_max, excluded.latency_max)"};
static const struct pg_stmt st_stats_prune = {PGS_STATS_PRUNE,
                                              "DELETE FROM queue_stats WHERE minute < $1"};
/* $1.. the entries' columns as arrays; this connection's shard. */
static const struct pg_stmt st_counts_add = {
    PGS_COUNTS_ADD,
    "INSERT INTO task_counts AS c (namespace, queue, phase, paused, shard, n)"
    " SELECT u.ns, u.queue, u.phase, u.paused, pg_backend_pid(), u.n"
    " FROM unnest($1::text[], $2::text[], $3::text[], $4::int[], $5::bigint[])"
    " AS u(ns, queue, phase, paused, n)"
    " ON CONFLICT(namespace, queue, phase, paused, shard) DO UPDATE SET n=c.n+excluded.n"};
/*
 * Folds the task_counts rows of connections that are gone (their shard is
 * no live backend's pid) into this connection's own, and drops rows that
 * sum to nothing, so the table stays a few rows per queue and phase
 * however often nodes reconnect. SKIP LOCKED: a row another transaction
 * holds is left for the next pass.
 */
static const struct pg_stmt st_counts_fold = {
    PGS_COUNTS_FOLD,
    "WITH gone AS (DELETE FROM task_counts WHERE ctid IN (SELECT ctid FROM task_counts"
    " WHERE shard<>pg_backend_pid() AND (n=0 OR shard NOT IN (SELECT pid FROM pg_stat_activity))"
    " FOR UPDATE SKIP LOCKED) RETURNING namespace, queue, phase, paused, n),"
    " sums AS (SELECT namespace, queue, phase, paused, sum(n) AS n FROM gone"
    " GROUP BY namespace, queue, phase, paused HAVING sum(n)<>0)"
    " INSERT INTO task_counts AS c (namespace, queue, phase, paused, shard, n)"
    " SELECT namespace, queue, phase, paused, pg_backend_pid(), n FROM sums"
    " ON CONFLICT (namespace, queue, phase, paused, shard) DO UPDATE SET n=c.n+excluded.n"};

/* A copy of the transaction's row of id (the batch's rows), else one
 * statement, whose row (or its absence) is kept for the next load. */
static int pg_load(struct store *s, const char *id, struct task **out) {
    struct pg_store *q = pq(s);
    struct pg_row *row = pg_tx_find(q->tx, id);
    if (row) {
        if (!row->t) return TM_ENOT_FOUND;
        *out = task_clone(row->t);
        return 0;
    }
    struct pg_params p;
    pgp_init(&p);
    pgp_text(&p, id);
    int rc = pg_fetch_task(&q->writer, &q->st_load, &p, out);
    if (rc == 0) pg_tx_set(q->tx, id, task_clone(*out));
    if (rc == TM_ENOT_FOUND) pg_tx_set(q->tx, id, NULL);
    return rc;
}

static int id_cmp(const void *a, const void *b) {
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* One statement for the ids the transaction has no row of yet. */
static int pg_preload(struct store *s, const char (*ids)[ID_LEN + 1], size_t n) {
    struct pg_store *q = pq(s);
    /* Fewer than PG_ARRAY_MIN: each op's load reads its row by the keyed
     * statement, when it comes. */
    if (n < PG_ARRAY_MIN) return 0;
    const char **want = xmalloc((n ? n : 1) * sizeof *want);
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (!pg_tx_find(q->tx, ids[i])) want[k++] = ids[i];
    qsort(want, k, sizeof *want, id_cmp);
    size_t u = 0;
    for (size_t i = 0; i < k; i++)
        if (u == 0 || strcmp(want[u - 1], want[i]) != 0) want[u++] = want[i];
    int rc = 0;
    if (u >= PG_ARRAY_MIN) { /* not counting ids kept already, or twice */
        struct buf arr;
        buf_init(&arr);
        struct pg_params p;
        pgp_init(&p);
        pgp_text_array(&p, &arr, want, u);
        PGresult *r = NULL;
        rc = pg_run(&q->writer, &q->st_preload, &p, &r);
        for (int i = 0; rc == 0 && i < PQntuples(r); i++) {
            struct task *t = pg_read_task(r, i);
            pg_tx_set(q->tx, t->id, t);
        }
        /* The ids that name no task: their loads answer TM_ENOT_FOUND. */
        for (size_t i = 0; rc == 0 && i < u; i++)
            if (!pg_tx_find(q->tx, want[i])) pg_tx_set(q->tx, want[i], NULL);
        PQclear(r);
        buf_release(&arr);
    }
    free(want);
    return rc;
}

static int pg_insert(struct store *s, const struct task *t) {
    struct pg_store *q = pq(s);
    struct pg_params p;
    pgp_init(&p);
    pg_task_params(&p, t);
    /* With an idempotency key the caller must see a lost race on the key
     * (TM_ECONFLICT) from this insert itself, under its savepoint. Others
     * are kept, and inserted together (the batch's rows). */
    if (t->idempotency_key) {
        int rc = pg_run_cmd(&q->writer, &q->st_insert, &p);
        if (rc) return rc;
    }
    size_t k = pg_tx_set(q->tx, t->id, task_clone(t));
    if (!t->idempotency_key) {
        q->tx->rows[k].fresh = true;
        q->tx->nfresh++;
    }
    pg_tx_drop_candidates(q->tx); /* it may come before them */
    return 0;
}

/* Keeps the new row; pg_tx_flush writes it before a statement that could
 * see it (the batch's rows). */
static int pg_update(struct store *s, const struct task *t) {
    struct pg_tx *tx = pq(s)->tx;
    size_t k = pg_tx_set(tx, t->id, task_clone(t)); /* first: it may move rows */
    struct pg_row *row = &tx->rows[k];
    if (!row->dirty && !row->fresh) { /* a fresh row is inserted as it stands */
        tx->ndirty++;
        row->dirty = true;
    }
    row->writes++;
    if (t->phase == TASK_PENDING) pg_tx_drop_candidates(tx); /* it may come before them */
    return 0;
}

static int pg_remove(struct store *s, const char *id) {
    struct pg_store *q = pq(s);
    struct pg_params p;
    pgp_init(&p);
    pgp_text(&p, id);
    int rc = pg_run_cmd(&q->writer, &st_remove, &p);
    if (rc) return rc;
    size_t k = pg_tx_set(q->tx, id, NULL); /* first: it may move rows */
    struct pg_row *row = &q->tx->rows[k];
    if (row->dirty) q->tx->ndirty--; /* not so: pg_run_cmd wrote it first */
    row->dirty = false;
    row->writes++;
    return 0;
}

/*
 * Looks the key up under a lock on it (namespace, key) held to the end of
 * the transaction, so that the look-up and the insert that follows it when
 * none is found happen as one across nodes: a node that looks up a key
 * another node's open batch has inserted waits for that batch, then finds
 * its task. Without it each such race costs the submit a try under its
 * savepoint (store_apply_create; a node of an older version takes no such
 * lock, so those tries remain for a race with one). The lock is sent ahead,
 * a statement of its own: the look-up's snapshot must come after the wait.
 * A batch's submits have theirs already (pg_lock_keys, in one order); a
 * deadlock on one still (a key of a submit that joined the batch, or of
 * a schedule's launch, against another batch's) is TM_ERETRY, and the
 * batch is applied again.
 */
static const struct pg_stmt st_idem_lock = {
    PGS_IDEM_LOCK, "SELECT pg_advisory_xact_lock(hashtext($1), hashtext($2))"};

/* The same locks for several keys, sorted by the lock's own two numbers,
 * so that no two batches take two of them in opposite orders (each batch
 * waited a second for the deadlock to be found, and one was applied
 * again). The sort is in a subquery of its own (OFFSET 0 keeps it one),
 * so the locks are taken row by row in its order. */
static const struct pg_stmt st_idem_lock_many = {
    PGS_IDEM_LOCK_MANY,
    "SELECT count(pg_advisory_xact_lock(a, b)) FROM (SELECT DISTINCT hashtext(ns) AS a,"
    " hashtext(k) AS b FROM unnest($1::text[], $2::text[]) AS u(ns, k) ORDER BY 1, 2 OFFSET 0)"
    " AS sorted"};

static int pg_lock_keys(struct store *s, const char *const *ns, const char *const *keys, size_t n) {
    struct buf a, b;
    buf_init(&a);
    buf_init(&b);
    struct pg_params p;
    pgp_init(&p);
    pgp_text_array(&p, &a, ns, n);
    pgp_text_array(&p, &b, keys, n);
    int rc = pg_run_ahead(&pq(s)->writer, &st_idem_lock_many, &p, NULL, NULL);
    buf_release(&a);
    buf_release(&b);
    return rc;
}

static int pg_find_idempotent(struct store *s, const char *ns, const char *key,
                              char id[ID_LEN + 1]) {
    struct pg_params p;
    pgp_init(&p);
    pgp_text(&p, ns);
    pgp_text(&p, key);
    PGresult *r;
    int rc = pg_run_ahead(&pq(s)->writer, &st_idem_lock, &p, NULL, NULL);
    if (rc) return rc;
    rc = pg_run(&pq(s)->writer, &st_idem, &p, &r);
    if (rc) return rc;
    if (PQntuples(r) == 0)
        rc = TM_ENOT_FOUND;
    else
        pg_copy(id, ID_LEN + 1, r, 0, 0);
    PQclear(r);
    return rc;
}

static bool pg_str_same(const char *a, const char *b) {
    return a == b || (a && b && strcmp(a, b) == 0);
}

/* The candidates kept for this query, or NULL. */
static struct pg_cands *pg_cands_find(struct pg_tx *tx, const struct store_claim_query *cq) {
    for (struct pg_cands *c = tx->sets; c; c = c->next_set) {
        bool same = c->ntypes == cq->ntypes && pg_str_same(c->ns, cq->ns) &&
                    pg_str_same(c->queue, cq->queue);
        for (int i = 0; same && i < c->ntypes; i++)
            same = pg_str_same(c->types[i], cq->types[i]);
        if (same) return c;
    }
    return NULL;
}

static struct pg_cands *pg_cands_new(struct pg_tx *tx, const struct store_claim_query *cq) {
    struct pg_cands *c = xcalloc(1, sizeof *c);
    c->ns = xstrdup(cq->ns);
    c->queue = xstrdup(cq->queue);
    c->ntypes = cq->ntypes;
    c->types = xcalloc((size_t)(cq->ntypes > 0 ? cq->ntypes : 1), sizeof *c->types);
    for (int i = 0; i < cq->ntypes; i++)
        c->types[i] = xstrdup(cq->types[i]);
    c->next_set = tx->sets;
    tx->sets = c;
    return c;
}

/*
 * The next candidate kept for the query that is still as found, else the
 * next cq->count tasks (at most PG_CLAIM_MAX) found and locked in one
 * statement, the first handed out and the rest kept (the batch's rows).
 */
static int pg_claim_next(struct store *s, const struct store_claim_query *cq, struct task **out) {
    struct pg_store *q = pq(s);
    struct pg_tx *tx = q->tx;
    struct pg_cands *set = pg_cands_find(tx, cq);
    while (set && set->next < set->n) {
        struct pg_cand c = set->v[set->next++];
        const struct pg_row *row = &tx->rows[c.row];
        if (row->t && row->writes == c.writes) {
            *out = task_clone(row->t);
            return 0;
        }
    }
    if (set && !set->more) return TM_ENOT_FOUND; /* all there was, handed out */
    int64_t limit = cq->count < 1 ? 1 : cq->count > PG_CLAIM_MAX ? PG_CLAIM_MAX : cq->count;
    struct buf types;
    buf_init(&types);
    struct pg_params p;
    pgp_init(&p);
    pgp_text(&p, cq->queue);
    pgp_text(&p, cq->ns);
    if (cq->ntypes > 0) {
        pgp_text_array(&p, &types, cq->types, (size_t)cq->ntypes);
    } else {
        pgp_text(&p, NULL);
    }
    pgp_int(&p, limit);
    PGresult *r = NULL;
    int rc = pg_run(&q->writer, &q->st_claim, &p, &r);
    buf_release(&types);
    if (rc) return rc;
    /* pg_run wrote the kept updates first, and may have dropped the sets. */
    set = pg_cands_find(tx, cq);
    if (!set) set = pg_cands_new(tx, cq);
    size_t rows = (size_t)PQntuples(r);
    set->n = set->next = 0;
    set->more = rows == (size_t)limit;
    if (rows > set->cap) {
        set->cap = rows;
        set->v = xrealloc(set->v, set->cap * sizeof *set->v);
    }
    for (size_t i = 0; i < rows; i++) {
        struct task *t = pg_read_task(r, (int)i);
        size_t k = pg_tx_set(tx, t->id, t);
        set->v[set->n++] = (struct pg_cand){k, tx->rows[k].writes};
    }
    PQclear(r);
    if (set->n == 0) return TM_ENOT_FOUND;
    set->next = 1;
    *out = task_clone(tx->rows[set->v[0].row].t);
    return 0;
}

static int pg_due(struct store *s, int64_t now, char (*ids)[ID_LEN + 1], size_t max, size_t *n) {
    struct pg_params p;
    pgp_init(&p);
    pgp_int(&p, now);
    pgp_int(&p, (int64_t)max);
    PGresult *r;
    *n = 0;
    int rc = pg_run(&pq(s)->writer, &st_due, &p, &r);
    if (rc) return rc;
    for (int i = 0; i < PQntuples(r) && *n < max; i++)
        pg_copy(ids[(*n)++], ID_LEN + 1, r, i, 0);
    PQclear(r);
    return 0;
}

static int pg_next_due(struct store *s, int64_t *at) {
    struct pg_store *q = pq(s);
    *at = 0;
    /* Outside a batch too: then it may have to reconnect. */
    if (!q->writer.pg || PQtransactionStatus(q->writer.pg) == PQTRANS_IDLE) {
        int rc = pg_writer_ready(q);
        if (rc) return rc;
    }
    return pg_run_int(&q->writer, &st_next_due, NULL, at);
}

static const enum task_phase pg_retention_phases[] = {TASK_COMPLETED, TASK_FAILED, TASK_CANCELLED};

/* The three retain_*_seconds columns from column col on (NULL: unset). */
static void pg_read_retention(const PGresult *r, int row, int col, struct queue_settings *q) {
    for (int i = 0; i < 3; i++)
        q->retention_seconds[pg_retention_phases[i]] =
            PQgetisnull(r, row, col + i) ? QUEUE_RETENTION_UNSET : pg_int(r, row, col + i);
}

static int pg_queue_get(struct store *s, const char *queue, struct queue_settings *out) {
    struct pg_params p;
    pgp_init(&p);
    pgp_text(&p, queue);
    PGresult *r;
    int rc = pg_run(&pq(s)->writer, &st_queue_get, &p, &r);
    if (rc) return rc;
    if (PQntuples(r) == 0) {
        rc = TM_ENOT_FOUND;
    } else {
        out->max_retries = pg_int(r, 0, 0);
        out->backoff_ms = pg_int(r, 0, 1);
        out->backoff_max_ms = pg_int(r, 0, 2);
        out->paused = pg_int(r, 0, 3) != 0;
        pg_read_retention(r, 0, 4, out);
    }
    PQclear(r);
    return rc;
}

static int pg_queue_put(struct store *s, const char *queue, const struct queue_settings *qs) {
    struct pg_params p;
    pgp_init(&p);
    pgp_text(&p, queue);
    pgp_int(&p, qs->max_retries);
    pgp_int(&p, qs->backoff_ms);
    pgp_int(&p, qs->backoff_max_ms);
    for (int i = 0; i < 3; i++) { /* NULL: the server's age */
        int64_t v = qs->retention_seconds[pg_retention_phases[i]];
        if (v >= 0)
            pgp_int(&p, v);
        else
            pgp_text(&p, NULL);
    }
    return pg_run_cmd(&pq(s)->writer, &st_queue_put, &p);
}

static int pg_queue_pause(struct store *s, const char *queue, bool paused, bool *was) {
    struct queue_settings d;
    queue_settings_default(&d);
    struct pg_params p;
    pgp_init(&p);
    pgp_text(&p, queue);
    pgp_int(&p, d.max_retries);
    pgp_int(&p, d.backoff_ms);
    pgp_int(&p, d.backoff_max_ms);
    int rc = pg_run_cmd(&pq(s)->writer, &st_queue_row, &p);
    if (rc) return rc;
    pgp_init(&p);
    pgp_text(&p, queue);
    pgp_int(&p, paused);
    PGresult *r;
    rc = pg_run(&pq(s)->writer, &st_queue_pause, &p, &r);
    if (rc) return rc;
    *was = PQntuples(r) == 1 && !PQgetisnull(r, 0, 0) && pg_int(r, 0, 0) != 0;
    PQclear(r);
    return 0;
}

static int pg_stats_add(struct store *s, const char *node, const struct store_stat_add *v,
                        size_t n) {
    struct buf a[9];
    for (int i = 0; i < 9; i++) {
        buf_init(&a[i]);
        pga_begin(&a[i], i < 2 ? PG_OID_TEXT : PG_OID_INT8, n);
    }
    for (size_t i = 0; i < n; i++) {
        const struct queue_stat *x = &v[i].st;
        pga_text(&a[0], v[i].queue);
        pga_text(&a[1], v[i].ns);
        int64_t cols[7] = {x->minute,      x->submitted, x->completed,  x->failed,
                           x->latency_sum, x->latency_n, x->latency_max};
        for (int k = 0; k < 7; k++)
            pga_int8(&a[2 + k], cols[k]);
    }
    struct pg_params p;
    pgp_init(&p);
    pgp_text(&p, node);
    for (int i = 0; i < 9; i++)
        pgp_bin(&p, a[i].p, a[i].len);
    int rc = pg_run_ahead(&pq(s)->writer, &st_stats_add, &p, NULL, NULL);
    for (int i = 0; i < 9; i++)
        buf_release(&a[i]);
    return rc;
}

static int pg_counts_add(struct store *s, const struct store_count_add *v, size_t n) {
    struct buf a[5];
    for (int i = 0; i < 5; i++) {
        buf_init(&a[i]);
        pga_begin(&a[i], i < 3 ? PG_OID_TEXT : i == 3 ? PG_OID_INT4 : PG_OID_INT8, n);
    }
    for (size_t i = 0; i < n; i++) {
        pga_text(&a[0], v[i].ns);
        pga_text(&a[1], v[i].queue);
        pga_text(&a[2], task_phase_name(v[i].phase));
        pga_int4(&a[3], v[i].paused);
        pga_int8(&a[4], v[i].n);
    }
    struct pg_params p;
    pgp_init(&p);
    for (int i = 0; i < 5; i++)
        pgp_bin(&p, a[i].p, a[i].len);
    int rc = pg_run_ahead(&pq(s)->writer, &st_counts_add, &p, NULL, NULL);
    for (int i = 0; i < 5; i++)
        buf_release(&a[i]);
    return rc;
}

static int pg_stats_prune(struct store *s, int64_t before_minute) {
    struct pg_params p;
    pgp_init(&p);
    pgp_int(&p, before_minute);
    PGresult *r;
    int rc = pg_run(&pq(s)->writer, &st_stats_prune, &p, &r);
    PQclear(r);
    r = NULL;
    /* The same once-a-minute pass keeps task_counts small. */
    if (rc == 0) rc = pg_run(&pq(s)->writer, &st_counts_fold, NULL, &r);
    PQclear(r);
    return rc;
}

/* ---- Readers ---- */

static int pg_get(struct store *s, const char *ns, const char *id, struct task **out) {
    struct pg_store *q = pq(s);
    struct pg_conn *c = pg_reader_take(s);
    if (!c) return TM_EUNAVAILABLE;
    struct pg_params p;
    pgp_init(&p);
    pgp_text(&p, id);
    int rc = pg_fetch_task(c, &q->st_get, &p, out);
    pg_reader_give(s, c);
    if (rc == 0 && ns && strcmp((*out)->namespace, ns) != 0) {
        task_free(*out);
        *out = NULL;
        rc = TM_ENOT_FOUND;
    }
    return rc;
}

/* Runs SQL from store_sql.c with its binds. */
static int pg_run_binds(struct pg_conn *c, const char *sql, const struct sql_binds *b,
                        PGresult **res) {
    int n = b->n;
    const char **v = xcalloc((size_t)(n ? n : 1), sizeof *v);
    char(*num)[32] = xcalloc((size_t)(n ? n : 1), sizeof *num);
    for (int i = 0; i < n; i++) {
        const struct sql_bind *x = &b->v[i];
        if (x->kind == SQL_BIND_TEXT) {
            v[i] = x->text;
            continue;
        }
        if (x->kind == SQL_BIND_INT)
            snprintf(num[i], sizeof num[i], "%lld", (long long)x->i);
        else
            snprintf(num[i], sizeof num[i], "%.17g", x->d);
        v[i] = num[i];
    }
    int rc = pg_exec(c, NULL, sql, n, v, NULL, NULL, PG_CALL_TIMEOUT_MS, res);
    free(num);
    free(v);
    return rc;
}

static int pg_list(struct store *s, const struct task_filter *f, struct task_list *out) {
    struct pg_store *q = pq(s);
    struct buf sql;
    struct sql_binds b = {0};
    buf_init(&sql);
    struct pg_conn *c = NULL;
    PGresult *r = NULL;
    bool timed = false;
    int rc = 0;
    if (!(c = pg_reader_take(s))) {
        rc = TM_EUNAVAILABLE;
        goto out;
    }
    /* A time range: read from its index when it holds few rows (store_sql.h,
     * sql_range_probe). */
    const char *index = sql_range_probe(&sql_dialect_pg, f, &sql, &b);
    if (index) {
        if ((rc = pg_run_binds(c, sql.p, &b, &r))) goto out;
        if (pg_int(r, 0, 0) >= SQL_RANGE_PROBE) index = NULL;
        PQclear(r);
        r = NULL;
        buf_clear(&sql);
        sql_binds_release(&b);
    }
    if ((rc = sql_list_query_range(&sql_dialect_pg, q->select_cols, index, f, &sql, &b))) goto out;
    /* The list and its count stop past the query time limit (pg_classify:
     * TM_EQUERY_TIMEOUT); the reader's other statements have the session's
     * (PG_SESSION), set back after. */
    char limit[64];
    snprintf(limit, sizeof limit, "SET statement_timeout = %lld",
             (long long)(q->query_timeout_ms > 0 ? q->query_timeout_ms : 0));
    if ((rc = pg_cmd(c, limit))) goto out;
    timed = true;
    if ((rc = pg_run_binds(c, sql.p, &b, &r))) goto out;
    int rows = PQntuples(r);
    out->tasks = xcalloc((size_t)f->limit + 1, sizeof *out->tasks);
    for (int i = 0; i < rows; i++) {
        if (out->n == (size_t)f->limit) {
            out->more = true;
            break;
        }
        out->tasks[out->n++] = pg_read_task(r, i);
    }
    PQclear(r);
    r = NULL;
    /* The count is a second statement: the two may see different commits,
     * as two requests would. */
    if (f->want_total) {
        buf_clear(&sql);
        sql_binds_release(&b);
        if ((rc = sql_list_query(&sql_dialect_pg, q->select_cols, f, true, &sql, &b))) goto out;
        if ((rc = pg_run_binds(c, sql.p, &b, &r))) goto out;
        out->total = pg_int(r, 0, 0);
    }
out:
    PQclear(r);
    if (timed && c->pg) pg_cmd(c, "SET statement_timeout = " PGSTR(PG_STATEMENT_TIMEOUT_MS));
    pg_reader_give(s, c);
    sql_binds_release(&b);
    buf_release(&sql);
    return rc;
}

static const struct pg_stmt st_queue_counts = {
    PGS_QUEUE_COUNTS,
    "SELECT queue, phase, paused, sum(n) FROM task_counts"
    " WHERE ($1::text IS NULL OR namespace=$1::text)"
    " GROUP BY queue, phase, paused HAVING sum(n)<>0 ORDER BY queue"};
static const struct pg_stmt st_queue_cfg = {
    PGS_QUEUE_CFG,
    "SELECT name, max_retries, backoff_ms, backoff_max_ms, paused, configured,"
    " retain_completed_seconds, retain_failed_seconds, retain_cancelled_seconds FROM queues"
    " ORDER BY name"};
static const struct pg_stmt st_queue_retention = {
    PGS_QUEUE_RETENTION,
    "SELECT name, retain_completed_seconds, retain_failed_seconds, retain_cancelled_seconds"
    " FROM queues WHERE retain_completed_seconds IS NOT NULL OR retain_failed_seconds IS NOT NULL"
    " OR retain_cancelled_seconds IS NOT NULL ORDER BY name"};
static const struct pg_stmt st_stats_read = {
    PGS_STATS_READ,
    "SELECT minute, sum(submitted), sum(completed), sum(failed), sum(latency_sum),"
    " sum(latency_n), max(latency_max) FROM queue_stats WHERE queue=$1"
    " AND ($2::text IS NULL OR namespace=$2) AND minute>=$3 AND minute<$4"
    " GROUP BY minute ORDER BY minute"};

static int pg_stats_read(struct store *s, const char *ns, const char *queue, int64_t from_minute,
                         int64_t to_minute, struct queue_stat **out, size_t *n) {
    struct pg_params p;
    pgp_init(&p);
    pgp_text(&p, queue);
    pgp_text(&p, ns);
    pgp_int(&p, from_minute);
    pgp_int(&p, to_minute);
    PGresult *r = NULL;
    int rc = pg_read(s, &st_stats_read, &p, &r);
    if (rc == 0) *out = pg_read_rows(r, store_stat_fields, sizeof **out, n);
    PQclear(r);
    return rc;
}

static int pg_queue_counts(struct store *s, const char *ns, struct queue_counts **out, size_t *n) {
    size_t cap = 0;
    struct queue_counts *qc = NULL;
    *n = 0;
    store_queue_slot(&qc, n, &cap, "default");
    struct pg_params p;
    pgp_init(&p);
    pgp_text(&p, ns);
    PGresult *r = NULL;
    int rc = pg_read(s, &st_queue_counts, &p, &r);
    for (int i = 0; rc == 0 && i < PQntuples(r); i++) {
        struct queue_counts *e = store_queue_slot(&qc, n, &cap, PQgetvalue(r, i, 0));
        enum task_phase ph;
        int64_t count = pg_int(r, i, 3);
        if (task_phase_parse(PQgetvalue(r, i, 1), &ph) == 0) e->phase[ph] += count;
        if (pg_int(r, i, 2)) e->paused += count;
    }
    PQclear(r);
    r = NULL;
    if (rc == 0) rc = pg_read(s, &st_queue_cfg, NULL, &r);
    for (int i = 0; rc == 0 && i < PQntuples(r); i++) {
        struct queue_counts *e = store_queue_slot(&qc, n, &cap, PQgetvalue(r, i, 0));
        e->configured = pg_int(r, i, 5) != 0;
        e->settings.max_retries = pg_int(r, i, 1);
        e->settings.backoff_ms = pg_int(r, i, 2);
        e->settings.backoff_max_ms = pg_int(r, i, 3);
        e->settings.paused = pg_int(r, i, 4) != 0;
        pg_read_retention(r, i, 6, &e->settings);
    }
    PQclear(r);
    *out = qc;
    return rc;
}

/* The queues that set a retention for at least one phase. */
static int pg_queue_retention(struct store *s, struct queue_counts **out, size_t *n) {
    size_t cap = 0;
    struct queue_counts *qc = NULL;
    *n = 0;
    PGresult *r = NULL;
    int rc = pg_read(s, &st_queue_retention, NULL, &r);
    for (int i = 0; rc == 0 && i < PQntuples(r); i++) {
        struct queue_counts *e = store_queue_slot(&qc, n, &cap, PQgetvalue(r, i, 0));
        pg_read_retention(r, i, 1, &e->settings);
    }
    PQclear(r);
    *out = qc;
    return rc;
}

/* Retention: the (queue, terminal phase) pairs that have tasks. */
static const struct pg_stmt st_retain_pairs = {PGS_RETAIN_PAIRS, SQL_RETAIN_PAIRS};
static const struct pg_stmt st_retain_list = {PGS_RETAIN_LIST, SQL_RETAIN_LIST_PG};

static int pg_retain_pairs(struct store *s, struct retain_pair **out, size_t *n) {
    *out = NULL;
    *n = 0;
    PGresult *r = NULL;
    int rc = pg_read(s, &st_retain_pairs, NULL, &r);
    if (rc == 0 && PQntuples(r) > 0) *out = xcalloc((size_t)PQntuples(r), sizeof **out);
    for (int i = 0; rc == 0 && i < PQntuples(r); i++) {
        enum task_phase ph;
        if (task_phase_parse(PQgetvalue(r, i, 1), &ph)) continue;
        (*out)[*n].queue = xstrdup(PQgetvalue(r, i, 0));
        (*out)[(*n)++].phase = ph;
    }
    PQclear(r);
    return rc;
}

/* Retention: one queue's tasks in phase ph older than before, oldest first. */
static int pg_retain_list(struct store *s, const char *queue, enum task_phase ph, int64_t before,
                          size_t max, char (*ids)[ID_LEN + 1], size_t *n) {
    *n = 0;
    struct pg_params p;
    pgp_init(&p);
    pgp_text(&p, queue);
    pgp_text(&p, task_phase_name(ph));
    pgp_int(&p, before);
    pgp_int(&p, (int64_t)max);
    PGresult *r = NULL;
    int rc = pg_read(s, &st_retain_list, &p, &r);
    for (int i = 0; rc == 0 && i < PQntuples(r) && *n < max; i++) {
        const char *id = PQgetvalue(r, i, 0);
        if (strlen(id) > ID_LEN) continue;
        memcpy(ids[(*n)++], id, strlen(id) + 1);
    }
    PQclear(r);
    return rc;
}

static const char *pg_refusing(struct store *s) {
    switch (atomic_load(&pq(s)->writes)) {
    case PG_WRITES_READ_ONLY:
        return "storage refuses writes: the database is read-only "
               "(default_transaction_read_only is on); this node takes writes again as soon "
               "as the database does";
    case PG_WRITES_STANDBY:
        return "storage refuses writes: the database is read-only (a standby, in recovery); "
               "this node takes writes again once it reaches a primary";
    default:
        return NULL;
    }
}

static const struct pg_stmt st_ping = {PGS_PING, "SELECT 1 FROM tasks LIMIT 1"};

static void pg_stats(struct store *s, struct store_stats *out) {
    struct pg_store *q = pq(s);
    if (q) out->pg_stalled_ended = atomic_load(&q->stalled_ended);
}

static int pg_ping(struct store *s) {
    PGresult *r;
    int rc = pg_read(s, &st_ping, NULL, &r);
    PQclear(r);
    return rc;
}

/* By text, not prepared: a first PREPARE on the connection would be a
 * round trip of its own inside the timed window. */
static int pg_clock_ms(struct store *s, int64_t *ms, int64_t *sent_ms, int64_t *got_ms) {
    struct pg_conn *c = pg_reader_take(s); /* may connect: before the window */
    if (!c) return TM_EUNAVAILABLE;
    PGresult *r;
    *sent_ms = time_now_ms();
    int rc = pg_run_sql(c, "SELECT (extract(epoch FROM clock_timestamp()) * 1000)::int8", NULL, &r);
    *got_ms = time_now_ms();
    pg_reader_give(s, c);
    if (!rc) *ms = pg_int(r, 0, 0);
    PQclear(r);
    return rc;
}

/* ---- The feed: LISTEN on a connection of its own (feed thread only) ---- */

/* Waits for the interrupt pipe until the deadline; true when woken. */
static bool pg_feed_sleep(struct pg_store *q, int64_t until) {
    int64_t left = until - time_mono_ms();
    if (left <= 0) return false;
    struct pollfd pfd = {.fd = q->wake[0], .events = POLLIN};
    return poll(&pfd, 1, (int)left) > 0;
}

static void pg_feed_drain(struct pg_store *q) {
    char b[64];
    while (read(q->wake[0], b, sizeof b) > 0) {
    }
}

/* The listener broke: closed, reopened on a later call. */
static int pg_feed_lost(struct pg_store *q, const char *why) {
    pg_log(&q->listener, "connection lost", why);
    pg_conn_drop(&q->listener);
    q->listener_probe_at = 0;
    return TM_EUNAVAILABLE;
}

/* Reads what the listener's socket holds: notifications, and the answer to
 * an outstanding probe. */
static int pg_feed_read(struct pg_store *q) {
    PGconn *pg = q->listener.pg;
    if (!PQconsumeInput(pg) || PQstatus(pg) != CONNECTION_OK)
        return pg_feed_lost(q, PQerrorMessage(pg));
    q->listener_heard_at = time_mono_ms();
    while (q->listener_probe_at && !PQisBusy(pg)) {
        PGresult *r = PQgetResult(pg);
        if (!r) {
            q->listener_probe_at = 0; /* answered */
            break;
        }
        bool ok = PQresultStatus(r) == PGRES_TUPLES_OK;
        char why[256];
        snprintf(why, sizeof why, "probe: %s", PQresultErrorMessage(r));
        PQclear(r);
        if (!ok) return pg_feed_lost(q, why);
    }
    return 0;
}

static int pg_feed_wait(struct store *s, int timeout_ms, int64_t *head) {
    struct pg_store *q = pq(s);
    struct pg_conn *c = &q->listener;
    *head = 0;
    int64_t deadline = time_mono_ms() + (timeout_ms > 0 ? timeout_ms : 0);
    if (!c->pg) {
        int64_t now = time_mono_ms();
        if (now < q->listener_retry_at) {
            /* A new connection failed a moment ago: do not spin on it. */
            int64_t until = q->listener_retry_at < deadline ? q->listener_retry_at : deadline;
            if (pg_feed_sleep(q, until)) {
                pg_feed_drain(q);
                return TM_ENOT_FOUND;
            }
            return TM_EUNAVAILABLE;
        }
        char why[256];
        if (pg_conn_open(q, c, "LISTEN " PG_CHANNEL, why, sizeof why)) {
            if (c->read_only) {
                /* A standby (in recovery) refuses LISTEN: said once, asked
                 * again every PG_READ_ONLY_RETRY_MS; the feed reads the log
                 * meanwhile (store.c, on TM_EUNAVAILABLE). */
                if (!q->listener_refused) {
                    snprintf(why, sizeof why,
                             "the database refuses LISTEN: %s; the feed polls the log until it "
                             "can",
                             c->read_only_msg);
                    pg_log(c, "read-only", why);
                }
                c->read_only = false;
                q->listener_refused = true;
                q->listener_retry_at = now + PG_READ_ONLY_RETRY_MS;
                return TM_EUNAVAILABLE;
            }
            pg_log(c, "cannot connect", why);
            q->listener_retry_at = now + PG_RECONNECT_MS;
            return TM_EUNAVAILABLE;
        }
        if (q->listener_refused) {
            pg_log(c, "read-only", "the database takes LISTEN again");
            q->listener_refused = false;
        }
        q->listener_heard_at = time_mono_ms();
        q->listener_probe_at = 0;
    }
    for (;;) {
        bool got = false;
        PGnotify *nt;
        int own = atomic_load(&q->writer_pid);
        while ((nt = PQnotifies(c->pg))) {
            if (strcmp(nt->relname, PG_CHANNEL) == 0 && nt->be_pid != own) {
                int64_t h = nt->extra ? strtoll(nt->extra, NULL, 10) : 0;
                if (h > *head) *head = h;
                got = true;
            }
            PQfreemem(nt);
        }
        if (got) return 0;
        int64_t now = time_mono_ms();
        if (now >= deadline) return TM_ENOT_FOUND;
        /* Quiet for long: a half-open connection would stay quiet for ever,
         * so ask it something, without waiting here for the answer. */
        if (!q->listener_probe_at && now - q->listener_heard_at >= PG_LISTEN_PROBE_MS) {
            if (!PQsendQuery(c->pg, "SELECT 1") || PQflush(c->pg) < 0)
                return pg_feed_lost(q, PQerrorMessage(c->pg));
            q->listener_probe_at = now;
        }
        if (q->listener_probe_at && now - q->listener_probe_at >= PG_PROBE_TIMEOUT_MS)
            return pg_feed_lost(q, "no answer to a probe in time");
        int64_t until = q->listener_probe_at ? q->listener_probe_at + PG_PROBE_TIMEOUT_MS
                                             : q->listener_heard_at + PG_LISTEN_PROBE_MS;
        if (until > deadline) until = deadline;
        struct pollfd pfd[2] = {{.fd = PQsocket(c->pg), .events = POLLIN},
                                {.fd = q->wake[0], .events = POLLIN}};
        int n = poll(pfd, 2, (int)(until > now ? until - now : 0));
        if (n < 0 && errno != EINTR) return pg_feed_lost(q, strerror(errno));
        if (n > 0 && pfd[0].revents) {
            int rc = pg_feed_read(q);
            if (rc) return rc;
        }
        if (n > 0 && pfd[1].revents) {
            pg_feed_drain(q);
            return TM_ENOT_FOUND;
        }
    }
}

static void pg_feed_interrupt(struct store *s) {
    struct pg_store *q = pq(s);
    if (!q || q->wake[1] < 0) return;
    ssize_t w = write(q->wake[1], "!", 1); /* full pipe: a wake is pending anyway */
    (void)w;
}

/* ---- API tokens (store_tokens.c) ---- */

#define PG_TOKEN_COLS "id,name,role,namespace,secret_hash,created_at,expires_at,revoked_at"

static const struct pg_stmt st_token_insert = {
    PGS_TOKEN_INSERT, "INSERT INTO tokens(" PG_TOKEN_COLS ") VALUES($1,$2,$3,$4,$5,$6,$7,$8)"};
static const struct pg_stmt st_token_revoke = {
    PGS_TOKEN_REVOKE,
    "UPDATE tokens SET revoked_at=CASE WHEN revoked_at=0 THEN $2 ELSE revoked_at END WHERE id=$1"};
static const struct pg_stmt st_token_get = {PGS_TOKEN_GET,
                                            "SELECT " PG_TOKEN_COLS " FROM tokens WHERE id=$1"};
static const struct pg_stmt st_token_list = {
    PGS_TOKEN_LIST, "SELECT " PG_TOKEN_COLS " FROM tokens ORDER BY created_at, id"};
static const struct pg_stmt st_token_any = {PGS_TOKEN_ANY, "SELECT 1 FROM tokens LIMIT 1"};
static const struct pg_stmt st_token_purge = {
    PGS_TOKEN_PURGE,
    "DELETE FROM tokens WHERE revoked_at<>0 OR (expires_at<>0 AND expires_at<=$1)"};

static struct token *pg_read_token(const PGresult *r, int row) {
    struct token *t = xcalloc(1, sizeof *t);
    pg_copy(t->id, sizeof t->id, r, row, 0);
    t->name = pg_dup(r, row, 1);
    enum token_role role = TOKEN_READER; /* an unknown stored role gets the least */
    token_role_parse(PQgetvalue(r, row, 2), &role);
    t->role = role;
    t->namespace = xstrdup(PQgetvalue(r, row, 3));
    size_t n = 0;
    unsigned char *hash = PQunescapeBytea((const unsigned char *)PQgetvalue(r, row, 4), &n);
    if (hash && n == TOKEN_HASH_LEN) memcpy(t->hash, hash, TOKEN_HASH_LEN);
    PQfreemem(hash);
    t->created_at = pg_int(r, row, 5);
    t->expires_at = pg_int(r, row, 6);
    t->revoked_at = pg_int(r, row, 7);
    return t;
}

static int pg_token_insert(struct store *s, const struct token *t) {
    struct pg_params p;
    pgp_init(&p);
    pgp_text(&p, t->id);
    pgp_text(&p, t->name);
    pgp_text(&p, token_role_name(t->role));
    pgp_text(&p, t->namespace);
    pgp_bin(&p, t->hash, TOKEN_HASH_LEN);
    pgp_int(&p, t->created_at);
    pgp_int(&p, t->expires_at);
    pgp_int(&p, t->revoked_at);
    return pg_run_cmd(&pq(s)->writer, &st_token_insert, &p);
}

static int pg_token_revoke(struct store *s, const char *id, int64_t now) {
    struct pg_params p;
    pgp_init(&p);
    pgp_text(&p, id);
    pgp_int(&p, now);
    PGresult *r;
    int rc = pg_run(&pq(s)->writer, &st_token_revoke, &p, &r);
    if (rc) return rc;
    if (atoi(PQcmdTuples(r)) == 0) rc = TM_ENOT_FOUND;
    PQclear(r);
    return rc;
}

static int pg_token_purge(struct store *s, int64_t now, int64_t *deleted) {
    struct pg_params p;
    pgp_init(&p);
    pgp_int(&p, now);
    PGresult *r;
    int rc = pg_run(&pq(s)->writer, &st_token_purge, &p, &r);
    if (rc) return rc;
    *deleted = atoll(PQcmdTuples(r));
    PQclear(r);
    return 0;
}

static int pg_token_get(struct store *s, const char *id, struct token **out) {
    struct pg_params p;
    pgp_init(&p);
    pgp_text(&p, id);
    PGresult *r;
    int rc = pg_read(s, &st_token_get, &p, &r);
    if (rc == 0) {
        if (PQntuples(r) == 0)
            rc = TM_ENOT_FOUND;
        else
            *out = pg_read_token(r, 0);
        PQclear(r);
    }
    return rc;
}

static int pg_token_list(struct store *s, struct token ***out, size_t *n) {
    PGresult *r;
    int rc = pg_read(s, &st_token_list, NULL, &r);
    if (rc) return rc;
    int rows = PQntuples(r);
    /* Nothing allocated for no rows: a caller may treat none as not found. */
    if (rows > 0) *out = xcalloc((size_t)rows, sizeof **out);
    for (int i = 0; i < rows; i++)
        (*out)[(*n)++] = pg_read_token(r, i);
    PQclear(r);
    return 0;
}

static int pg_token_any(struct store *s, bool *any) {
    struct pg_params p;
    pgp_init(&p);
    PGresult *r;
    int rc = pg_read(s, &st_token_any, &p, &r);
    if (rc) return rc;
    *any = PQntuples(r) > 0;
    PQclear(r);
    return 0;
}

const struct store_backend store_pg_backend = {
    .scheme = "postgres",
    .scheme2 = "postgresql",
    .shared = true,
    .open = pg_open,
    .close = pg_close,
    .stats = pg_stats,
    .begin = pg_begin,
    .begin_lazy = pg_begin_lazy,
    .commit = pg_commit,
    .rollback = pg_rollback,
    .savepoint = pg_savepoint,
    .savepoint_release = pg_savepoint_release,
    .lock_keys = pg_lock_keys,
    .savepoint_rollback = pg_savepoint_rollback,
    .load = pg_load,
    .preload = pg_preload,
    .insert = pg_insert,
    .update = pg_update,
    .remove = pg_remove,
    .find_idempotent = pg_find_idempotent,
    .claim_next = pg_claim_next,
    .due = pg_due,
    .next_due = pg_next_due,
    .queue_get = pg_queue_get,
    .queue_put = pg_queue_put,
    .queue_pause = pg_queue_pause,
    .stats_add = pg_stats_add,
    .counts_add = pg_counts_add,
    .stats_prune = pg_stats_prune,
    .stats_read = pg_stats_read,
    .doc_write = pg_doc_write,
    .doc_load = pg_doc_load,
    .doc_name_owner = pg_doc_name_owner,
    .doc_delete = pg_doc_delete,
    .sched_due = pg_sched_due,
    .sched_next_at = pg_sched_next_at,
    .fire_insert = pg_fire_insert,
    .fire_exists = pg_fire_exists,
    .sched_runs = pg_sched_runs,
    .fires_prune = pg_fires_prune,
    .doc_get = pg_doc_get,
    .doc_list = pg_doc_list,
    .fires_list = pg_fires_list,
    .get = pg_get,
    .list = pg_list,
    .queue_counts = pg_queue_counts,
    .queue_retention = pg_queue_retention,
    .retain_pairs = pg_retain_pairs,
    .retain_list = pg_retain_list,
    .ping = pg_ping,
    .refusing = pg_refusing,
    .clock_ms = pg_clock_ms,
    .events_append = pg_events_append,
    .events_prune_info = pg_events_prune_info,
    .events_delete = pg_events_delete,
    .webhook_insert = pg_webhook_insert,
    .webhook_count = pg_webhook_count,
    .webhook_delete = pg_webhook_delete,
    .webhook_update = pg_webhook_update,
    .delivery_update = pg_delivery_update,
    .delivery_claim = pg_delivery_claim,
    .events_read = pg_events_read,
    .events_read_bare = pg_events_read_bare,
    .events_head = pg_events_head,
    .webhooks_list = pg_webhooks_list,
    .deliveries_page = pg_deliveries_page,
    .deliveries_next_at = pg_deliveries_next_at,
    .feed_wait = pg_feed_wait,
    .feed_interrupt = pg_feed_interrupt,
    .token_insert = pg_token_insert,
    .token_revoke = pg_token_revoke,
    .token_get = pg_token_get,
    .token_list = pg_token_list,
    .token_purge = pg_token_purge,
    .token_any = pg_token_any,
};
