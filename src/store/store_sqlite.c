/*
 * store_sqlite: the SQLite backend of store.h (URL `sqlite:PATH`).
 *
 * WAL mode. One write connection, used only by the store's writer thread,
 * with synchronous=FULL so that each commit is fsynced (in a relaxed store
 * the VFS writes a commit's frames and skips the flush: sq_vfs_defer).
 * Readers take a connection from a pool (created on demand, returned after
 * each call), so reads run in parallel with each other and with the writer
 * and see the last commit.
 *
 * The task row is described once, in store_task_columns (store_sql.c, shared
 * with the other SQL backend); insert, update and
 * read are generated from it. Migrations are the numbered files in
 * migrations/sqlite, embedded at build and applied at open in one
 * transaction each; PRAGMA user_version records the last one applied.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include "../common/buf.h"
#include "../common/embedded.h"
#include "../common/filter.h"
#include "../common/timeutil.h"
#include "../common/token.h"
#include "../common/xalloc.h"
#include "store_int.h"
#include "store_sql.h"
#include "store_sqlite_int.h"

extern const struct embedded_file sqlite_migrations[];

#define NCOLS store_task_ncols

/* One connection with its cached statements. */
struct sq_conn {
    sqlite3 *db;
    sqlite3_stmt *get;
    /* A reader's list query stops past this monotonic time (0: none). */
    int64_t deadline_mono;
    char why[160];        /* why sq_open_conn failed: SQLite's message */
    struct sq_conn *next; /* reader free list */
};

/*
 * Indexed columns that an update often leaves as they were. SQLite rewrites
 * the entry of every index on a column an UPDATE sets, whether its value
 * changed or not, so a progress report written by the full UPDATE would
 * rewrite the claim, phase and status indexes for nothing. The writer
 * remembers these columns of the last rows it read or wrote (sq_seen), and
 * an update of one of them leaves out the columns it knows unchanged: one
 * prepared UPDATE per subset, made when first needed. Leaving out a column
 * whose stored value equals the new one is right whatever indexes exist;
 * the list only says where it saves work (migrations/sqlite).
 */
static const char *const sq_keyed_names[] = {"priority", "phase", "completion_status", "ready_at",
                                             "due_at"};
#define SQ_NKEYED (sizeof sq_keyed_names / sizeof sq_keyed_names[0])
#define SQ_NSEEN  4 /* rows remembered: an op reads a task, maybe its parent */

/* A row as stored now, in the open transaction: its keyed columns. */
struct sq_seen {
    char id[ID_LEN + 1]; /* "": an empty slot */
    unsigned known;      /* bit k: key[k] is what column k holds */
    int64_t key[SQ_NKEYED];
};

/*
 * The writer's rows. One process writes the file (storage.md), so a task
 * as the writer last updated it is what the file holds, and the next op on
 * it (the heartbeats and the completion after a claim) takes it from here
 * rather than reading and decoding its row: a table of SQ_ROWS slots, one
 * task a slot (by a hash of its id), at most SQ_ROW_BYTES a task and
 * SQ_ROWS_BYTES in all. An update makes the entry; a load takes it out. An
 * entry made in the open transaction (sq_row.tx) goes when it rolls back,
 * or back to a savepoint; a delete drops its task's. Inserts make none: a
 * new task is next read by the claim query, which reads its row anyway.
 */
#define SQ_ROWS       4096
#define SQ_ROW_BYTES  (64 * 1024)
#define SQ_ROWS_BYTES (32u << 20)

struct sq_row {
    struct task *t; /* NULL: an empty slot */
    uint64_t tx;    /* the writer's transaction that made it */
    size_t bytes;
};

struct sq_store {
    char *path;
    bool relaxed;
    bool exclusive;           /* store_options.sqlite_exclusive */
    int server_fd;            /* store_options.sole_server: the file, flock()ed; -1 none */
    int64_t query_timeout_ms; /* store_options.query_timeout_ms */
    int64_t events_max_count, events_max_age_ms; /* store_options', for the log's segments */
    bool lazy;      /* the open transaction is begin_lazy's: synchronous is NORMAL until it ends */
    int wal_frames; /* a relaxed store: frames in the WAL after the last commit (sq_wal_hook) */
    /* A relaxed store's flusher (sq_flusher): its commits, counted by the
     * writer after each; the count its last flush covered; its flushes. */
    _Atomic uint64_t commits, flushed_through, flushes;
    /* A sync of the WAL failed (a commit's, the relaxed flusher's, a
     * relaxed checkpoint's): the kernel may have marked the pages it could
     * not write clean, and a later sync would succeed without them. Nothing
     * is counted flushed again, and every transaction is refused, until a
     * restart. */
    _Atomic bool flush_failed;
    int64_t flush_ms; /* store_options.relaxed_flush_ms, resolved; <0: no flusher */
    char *wal_path;   /* the flusher's: the WAL's file */
    bool flusher_on, flusher_stop;
    pthread_t flusher;
    pthread_mutex_t flusher_lock;
    pthread_cond_t flusher_wake;
    struct sq_conn writer;
    sqlite3_stmt *w_insert, *w_update, *w_load, *w_delete, *w_idem, *w_claim, *w_due, *w_next_due,
        *w_begin, *w_commit, *w_rollback, *w_queue_get, *w_queue_put, *w_savepoint, *w_release,
        *w_rollback_to, *w_queue_pause, *w_stats_add, *w_stats_prune, *w_counts_add,
        *w_data_version, *w_claim1;
    char *select_cols; /* "id,namespace,..." */
    /* w_upd[m]: the UPDATE that sets keyed column k only where bit k of m is
     * set (w_update is the full one, m all ones); NULL until first used. */
    sqlite3_stmt *w_upd[1u << SQ_NKEYED];
    size_t keyed_col[SQ_NKEYED]; /* store_task_columns index of each */
    struct sq_seen seen[SQ_NSEEN];
    unsigned seen_next;  /* the slot to fill next */
    struct sq_row *rows; /* SQ_ROWS slots */
    size_t rows_bytes;
    uint64_t tx; /* the writer's transactions, counted at begin */
    /* PRAGMA data_version at the last begin: it moves when another
     * connection (another process) commits to the file. */
    int64_t data_version;

    pthread_mutex_t pool_lock;
    struct sq_conn *pool;     /* idle readers */
    struct sq_events *events; /* store_sqlite_events.c */
};

static struct sq_store *sq(struct store *s) {
    return store_base_of(s)->impl;
}

void sq_log(sqlite3 *db, const char *what) {
    fprintf(stderr, "taskmill: sqlite: %s: %s\n", what, db ? sqlite3_errmsg(db) : "no database");
}

int sq_step_one(sqlite3 *db, sqlite3_stmt *st, const char *what) {
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) return 0;
    if (rc == SQLITE_DONE) return TM_ENOT_FOUND;
    sq_log(db, what);
    return TM_EINTERNAL;
}

char *sq_col_dup(sqlite3_stmt *st, int at) {
    const char *v = (const char *)sqlite3_column_text(st, at);
    return v ? xstrdup(v) : NULL;
}

/* Column `at` as a store_value: a number when `number` (asking an integer
 * for text converts it), else its text, or NULL. */
static struct store_value sq_value(sqlite3_stmt *st, int at, enum store_col_kind number) {
    if (number == STORE_COL_INT || number == STORE_COL_BOOL)
        return (struct store_value){.kind = STORE_VALUE_INT, .i = sqlite3_column_int64(st, at)};
    if (number == STORE_COL_REAL)
        return (struct store_value){.kind = STORE_VALUE_REAL, .r = sqlite3_column_double(st, at)};
    if (number == STORE_COL_DUE || sqlite3_column_type(st, at) == SQLITE_NULL)
        return (struct store_value){.kind = STORE_VALUE_NULL};
    return (struct store_value){.kind = STORE_VALUE_TEXT,
                                .text = (const char *)sqlite3_column_text(st, at)};
}

void sq_read_fields(sqlite3_stmt *st, int at, const struct store_field *fields, void *row) {
    for (const struct store_field *f = fields; f->kind != STORE_FIELD_END; f++, at++) {
        struct store_value v =
            sq_value(st, at, f->kind == STORE_FIELD_INT ? STORE_COL_INT : STORE_COL_TEXT);
        store_field_set(row, f, &v);
    }
}

void *sq_read_rows(sqlite3_stmt *st, const struct store_field *fields, size_t size, size_t *n,
                   int *rc) {
    char *rows = NULL;
    size_t cap = 0;
    int step;
    *n = 0;
    while ((step = sqlite3_step(st)) == SQLITE_ROW) {
        if (*n == cap) {
            cap = cap ? cap * 2 : 16;
            rows = xrealloc(rows, cap * size);
        }
        char *row = rows + (*n)++ * size;
        memset(row, 0, size);
        sq_read_fields(st, 0, fields, row);
    }
    *rc = step == SQLITE_DONE ? 0 : TM_EINTERNAL;
    return rows;
}

int sq_prepare(sqlite3 *db, const char *sql, sqlite3_stmt **st) {
    if (sqlite3_prepare_v3(db, sql, -1, SQLITE_PREPARE_PERSISTENT, st, NULL) != SQLITE_OK) {
        sq_log(db, sql);
        return TM_EINTERNAL;
    }
    return 0;
}

static int sq_exec(sqlite3 *db, const char *sql) {
    char *msg = NULL;
    if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK) {
        fprintf(stderr, "taskmill: sqlite: %s\n", msg ? msg : sqlite3_errmsg(db));
        sqlite3_free(msg);
        return TM_EINTERNAL;
    }
    return 0;
}

int sq_step_done(sqlite3 *db, sqlite3_stmt *st) {
    int rc = sq_step_bound(db, st);
    sqlite3_clear_bindings(st);
    return rc;
}

int sq_step_bound(sqlite3 *db, sqlite3_stmt *st) {
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    if (rc != SQLITE_DONE) {
        sq_log(db, "step");
        return rc == SQLITE_CONSTRAINT ? TM_ECONFLICT : TM_EINTERNAL;
    }
    return 0;
}

int sq_scalar(sqlite3 *db, const char *sql, int64_t a, int64_t *v) {
    sqlite3_stmt *st = NULL;
    if (sq_prepare(db, sql, &st)) return TM_EINTERNAL;
    if (sqlite3_bind_parameter_count(st) >= 1) sqlite3_bind_int64(st, 1, a);
    int rc = sqlite3_step(st);
    *v = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
    sqlite3_finalize(st);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
        sq_log(db, sql);
        return TM_EINTERNAL;
    }
    return 0;
}

int sq_read_ids(sqlite3 *db, sqlite3_stmt *st, int64_t now, char (*ids)[ID_LEN + 1], size_t max,
                size_t *n) {
    sqlite3_bind_int64(st, 1, now);
    sqlite3_bind_int64(st, 2, (int64_t)max);
    *n = 0;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW && *n < max)
        snprintf(ids[(*n)++], ID_LEN + 1, "%s", (const char *)sqlite3_column_text(st, 0));
    sqlite3_reset(st);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
        sq_log(db, "due");
        return TM_EINTERNAL;
    }
    return 0;
}

void sq_bind_fields(sqlite3_stmt *st, const struct store_field *fields, size_t max,
                    const void *row) {
    for (size_t i = 0; i < max && fields[i].kind != STORE_FIELD_END; i++) {
        struct store_value v = store_field_value(row, &fields[i]);
        if (v.kind == STORE_VALUE_INT)
            sqlite3_bind_int64(st, (int)i + 1, v.i);
        else
            sq_bind_text(st, (int)i + 1, v.text);
    }
}

void sq_bind_text(sqlite3_stmt *st, int at, const char *v) {
    if (v)
        sqlite3_bind_text(st, at, v, -1, SQLITE_TRANSIENT);
    else
        sqlite3_bind_null(st, at);
}

/* Why c's open failed, in c->why: SQLite's message, and where it may be
 * the permissions, what they must allow. */
static void sq_why(struct sq_conn *c) {
    int code = c->db ? sqlite3_errcode(c->db) : SQLITE_NOMEM;
    bool access = code == SQLITE_READONLY || code == SQLITE_CANTOPEN || code == SQLITE_PERM;
    snprintf(c->why, sizeof c->why, "%s%s", c->db ? sqlite3_errmsg(c->db) : "out of memory",
             access ? " (the server writes the file, and beside it, in its directory, SQLite's"
                      " '-wal' and '-shm' files)"
                    : "");
}

static int sq_open_conn(const char *path, bool writer, bool relaxed, bool exclusive,
                        struct sq_conn *c) {
    memset(c, 0, sizeof *c);
    int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX | (writer ? SQLITE_OPEN_CREATE : 0);
    /* A new database file is the owner's alone (0600): it holds token hashes
     * and every task's params. SQLite gives its -wal and -shm files the same
     * mode. An existing file keeps the mode its operator chose. */
    if (writer && strcmp(path, ":memory:") != 0 && strncmp(path, "file:", 5) != 0) {
        int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
        if (fd >= 0) close(fd);
    }
    if (sqlite3_open_v2(path, &c->db, flags, sq_vfs_name(exclusive)) != SQLITE_OK) {
        sq_log(c->db, path);
        sq_why(c);
        sqlite3_close(c->db);
        c->db = NULL;
        return TM_EINTERNAL;
    }
    sqlite3_busy_timeout(c->db, 5000);
    sqlite3_extended_result_codes(c->db, 0);
    int rc = 0;
    if (writer) {
        rc = sq_exec(c->db, "PRAGMA journal_mode=WAL");
        if (!rc) rc = sq_exec(c->db, "PRAGMA synchronous=FULL");
        /* Debian builds SQLite with secure_delete on, which writes every page
         * a delete frees: retention then costs twice the I/O of the inserts
         * (15 ms against 8 ms to delete 1,000 events of 1 KB). FAST still
         * zeroes deleted content where that costs no extra page write. */
        if (!rc) rc = sq_exec(c->db, "PRAGMA secure_delete=FAST");
        /* Every commit syncs: its WAL frames can go in one write. A relaxed
         * store's syncs write them and do not flush (its checkpoints are
         * sq_commit's, with real syncs). */
        if (!rc) sq_vfs_gather(c->db, true);
        if (!rc && relaxed) sq_vfs_defer(c->db, true);
    } else {
        rc = sq_exec(c->db, "PRAGMA query_only=1");
    }
    if (!rc) rc = sq_exec(c->db, "PRAGMA cache_size=-16000");
    if (rc) sq_why(c);
    /* Another process holds the file (a server with --sqlite-exclusive). */
    if (rc && sqlite3_errcode(c->db) == SQLITE_BUSY) rc = TM_EUNAVAILABLE;
    return rc;
}

static void sq_close_conn(struct sq_conn *c) {
    sqlite3_finalize(c->get);
    sqlite3_close(c->db);
    c->db = NULL;
}

/* Applies the migrations the database at `path` lacks; on failure *e says
 * which file and why (a database of a newer taskmill is refused). */
static int sq_migrate(sqlite3 *db, const char *path, struct tm_error *e) {
    sqlite3_stmt *st;
    if (sq_prepare(db, "PRAGMA user_version", &st))
        return err_set(e, TM_EINTERNAL, "store", "cannot read SQLite database '%.64s': %s", path,
                       sqlite3_errmsg(db));
    int have = sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int(st, 0) : 0;
    sqlite3_finalize(st);
    int known = 0;
    for (const struct embedded_file *m = sqlite_migrations; m->name; m++)
        if (atoi(m->name) > known) known = atoi(m->name);
    if (have > known)
        return err_set(e, TM_EINTERNAL, "store",
                       "SQLite database '%.64s' has migration %d, newer than this taskmill knows"
                       " (%d): upgrade taskmill, or restore a backup",
                       path, have, known);
    for (const struct embedded_file *m = sqlite_migrations; m->name; m++) {
        int number = atoi(m->name);
        if (number <= have) continue;
        char pragma[64];
        snprintf(pragma, sizeof pragma, "PRAGMA user_version=%d", number);
        if (sq_exec(db, "BEGIN IMMEDIATE") == 0 && sq_exec(db, m->data) == 0 &&
            sq_exec(db, pragma) == 0 && sq_exec(db, "COMMIT") == 0)
            continue;
        err_set(e, TM_EINTERNAL, "store", "migration '%.64s' of SQLite database '%.64s' failed: %s",
                m->name, path, sqlite3_errmsg(db));
        if (!sqlite3_get_autocommit(db)) sq_exec(db, "ROLLBACK");
        return TM_EINTERNAL;
    }
    return 0;
}

/* Binds t's columns to st's placeholders, numbered by column; a statement
 * that leaves out the last columns has fewer. */
static void sq_bind_task(sqlite3_stmt *st, const struct task *t) {
    size_t n = (size_t)sqlite3_bind_parameter_count(st);
    for (size_t i = 0; i < NCOLS && i < n; i++) {
        struct store_value v = store_col_value(t, &store_task_columns[i]);
        int at = (int)i + 1;
        switch (v.kind) {
        case STORE_VALUE_NULL:
            sqlite3_bind_null(st, at);
            break;
        case STORE_VALUE_TEXT:
            sqlite3_bind_text(st, at, v.text, -1, SQLITE_STATIC);
            break;
        case STORE_VALUE_INT:
            sqlite3_bind_int64(st, at, v.i);
            break;
        case STORE_VALUE_REAL:
            sqlite3_bind_double(st, at, v.r);
            break;
        }
    }
}

static struct task *sq_read_task(sqlite3_stmt *st) {
    struct task *t = task_new();
    for (size_t i = 0; i < NCOLS; i++) {
        const struct store_col *c = &store_task_columns[i];
        struct store_value v = sq_value(st, (int)i, c->kind);
        store_col_set(t, c, &v);
    }
    return t;
}

/* The value of keyed column k of t, as an integer to compare. */
static int64_t sq_key(const struct sq_store *q, const struct task *t, size_t k) {
    const struct store_col *c = &store_task_columns[q->keyed_col[k]];
    switch (c->kind) {
    case STORE_COL_PHASE:
        return t->phase;
    case STORE_COL_STATUS:
        return t->status;
    default: {
        struct store_value v = store_col_value(t, c); /* an integer column (sq_open) */
        return v.kind == STORE_VALUE_INT ? v.i : INT64_MIN;
    }
    }
}

static struct sq_seen *sq_seen_find(struct sq_store *q, const char *id) {
    for (size_t i = 0; i < SQ_NSEEN; i++)
        if (strcmp(q->seen[i].id, id) == 0) return &q->seen[i];
    return NULL;
}

/* Whether column `at` of st's row holds v exactly. */
static bool sq_column_is(sqlite3_stmt *st, int at, const struct store_value *v) {
    switch (v->kind) {
    case STORE_VALUE_NULL:
        return sqlite3_column_type(st, at) == SQLITE_NULL;
    case STORE_VALUE_INT:
        return sqlite3_column_type(st, at) == SQLITE_INTEGER &&
               sqlite3_column_int64(st, at) == v->i;
    case STORE_VALUE_TEXT:
        return sqlite3_column_type(st, at) == SQLITE_TEXT &&
               strcmp((const char *)sqlite3_column_text(st, at), v->text) == 0;
    case STORE_VALUE_REAL:
        break;
    }
    return false;
}

/* t is stored as it is now: just written, or read from st's row (NULL:
 * written). A column read is known only if it holds just what writing t
 * would store (not, say, a due time a migration worked out otherwise). */
static void sq_seen_note(struct sq_store *q, const struct task *t, sqlite3_stmt *st) {
    struct sq_seen *e = sq_seen_find(q, t->id);
    if (!e) e = &q->seen[q->seen_next++ % SQ_NSEEN];
    memcpy(e->id, t->id, sizeof e->id);
    e->known = 0;
    for (size_t k = 0; k < SQ_NKEYED; k++) {
        if (st) {
            struct store_value v = store_col_value(t, &store_task_columns[q->keyed_col[k]]);
            if (sq_column_is(st, (int)q->keyed_col[k], &v)) e->known |= 1u << k;
        } else {
            e->known |= 1u << k;
        }
        e->key[k] = sq_key(q, t, k);
    }
}

/* ---- The writer's rows ---- */

static struct sq_row *sq_row_slot(struct sq_store *q, const char *id) {
    uint32_t h = 2166136261u; /* FNV-1a */
    for (const char *p = id; *p; p++)
        h = (h ^ (unsigned char)*p) * 16777619u;
    return &q->rows[h % SQ_ROWS];
}

static void sq_row_clear(struct sq_store *q, struct sq_row *r) {
    if (!r->t) return;
    q->rows_bytes -= r->bytes;
    task_free(r->t);
    r->t = NULL;
}

static void sq_row_drop(struct sq_store *q, const char *id) {
    struct sq_row *r = sq_row_slot(q, id);
    if (r->t && strcmp(r->t->id, id) == 0) sq_row_clear(q, r);
}

/* t was just written: what its row holds now, in the open transaction. */
static void sq_row_put(struct sq_store *q, const struct task *t) {
    struct sq_row *r = sq_row_slot(q, t->id);
    sq_row_clear(q, r);
    size_t bytes = task_bytes(t);
    if (bytes > SQ_ROW_BYTES || q->rows_bytes + bytes > SQ_ROWS_BYTES) return;
    r->t = task_clone(t);
    r->tx = q->tx;
    r->bytes = bytes;
    q->rows_bytes += bytes;
}

/* The open transaction rolled back (whole, or to a savepoint). */
static void sq_rows_undo(struct sq_store *q) {
    for (size_t i = 0; i < SQ_ROWS; i++)
        if (q->rows[i].t && q->rows[i].tx == q->tx) sq_row_clear(q, &q->rows[i]);
}

/*
 * After BEGIN IMMEDIATE (the file's write lock is ours until the end):
 * when another process committed to the file since the last begin (a
 * second server on it by mistake, a hand edit), none of the rows is
 * trusted. Not for reads only: with two writers on the file, a kept row
 * would write over the other's change.
 */
static int sq_rows_check(struct sq_store *q) {
    int rc = sq_step_one(q->writer.db, q->w_data_version, "data_version");
    int64_t v = rc == 0 ? sqlite3_column_int64(q->w_data_version, 0) : 0;
    sqlite3_reset(q->w_data_version);
    if (rc) return rc;
    if (v != q->data_version)
        for (size_t i = 0; i < SQ_ROWS; i++)
            sq_row_clear(q, &q->rows[i]);
    q->data_version = v;
    return 0;
}

/* What was noted may no longer be what is stored (a new transaction, a
 * rollback, a failed statement). */
static void sq_seen_forget(struct sq_store *q) {
    for (size_t i = 0; i < SQ_NSEEN; i++)
        q->seen[i].id[0] = '\0';
}

/* The UPDATE for t: the keyed columns it changes, or all of them when the
 * row is not remembered. NULL when it cannot be prepared. */
static sqlite3_stmt *sq_update_stmt(struct sq_store *q, const struct task *t) {
    const struct sq_seen *e = t->id[0] ? sq_seen_find(q, t->id) : NULL;
    unsigned m = 0;
    for (size_t k = 0; k < SQ_NKEYED; k++)
        if (!e || !(e->known & 1u << k) || e->key[k] != sq_key(q, t, k)) m |= 1u << k;
    if (m == (1u << SQ_NKEYED) - 1) return q->w_update;
    if (!q->w_upd[m]) {
        bool *leave = xcalloc(NCOLS, sizeof *leave);
        for (size_t k = 0; k < SQ_NKEYED; k++)
            if (!(m & 1u << k)) leave[q->keyed_col[k]] = true;
        struct buf sql;
        buf_init(&sql);
        sql_task_update(&sql_dialect_sqlite, leave, &sql);
        int rc = sq_prepare(q->writer.db, sql.p, &q->w_upd[m]);
        buf_release(&sql);
        free(leave);
        if (rc) return NULL;
    }
    return q->w_upd[m];
}

/* Steps a one-row query that selects the task columns; the writer's reads
 * are noted in seen (q; NULL for a reader). */
static int sq_fetch_one(struct sq_store *seen, sqlite3 *db, sqlite3_stmt *st, struct task **out) {
    int ret = sq_step_one(db, st, "read task");
    if (!ret) *out = sq_read_task(st);
    if (!ret && seen) sq_seen_note(seen, *out, st);
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return ret;
}

/*
 * Takes the database file for this server: an flock() on a descriptor of
 * its own, which the kernel lets go when the process ends, however it
 * ends. flock() and SQLite's fcntl() locks do not meet. The descriptor
 * stays open until every connection has closed (sq_close): closing any
 * descriptor of the file drops the process's fcntl() locks on it.
 * TM_EUNAVAILABLE when another server holds it. An in-memory database has
 * no file, and nothing to share.
 */
static int sq_take_file(struct sq_store *q) {
    const char *fn = sqlite3_db_filename(q->writer.db, "main");
    if (!fn || !*fn) return 0;
    q->server_fd = open(fn, O_RDONLY | O_CLOEXEC);
    if (q->server_fd < 0) return TM_EINTERNAL;
    if (flock(q->server_fd, LOCK_EX | LOCK_NB) == 0) return 0;
    return errno == EWOULDBLOCK ? TM_EUNAVAILABLE : TM_EINTERNAL;
}

/* SQLite's call after each commit: how many frames the WAL holds. */
static int sq_wal_hook(void *cls, sqlite3 *db, const char *name, int frames) {
    (void)db;
    (void)name;
    ((struct sq_store *)cls)->wal_frames = frames;
    return SQLITE_OK;
}

/*
 * A relaxed store's commits are acknowledged with their WAL frames written
 * and not flushed (sq_vfs_defer): a crash of the process keeps them, a
 * power loss or a crash of the operating system may not. The flusher bounds
 * what that can lose, as Redis's `appendfsync everysec` and PostgreSQL's
 * WAL writer do: every flush_ms, when the writer has committed since its
 * last flush, it flushes the WAL from a descriptor of its own (fdatasync
 * flushes the file, whichever descriptor names it), so the writer never
 * waits for it. A commit counted before the flush began is durable when it
 * returns: its frames were written before the writer counted it.
 */
#define SQ_RELAXED_FLUSH_MS 200

/* A sync of the WAL failed: see sq_store.flush_failed. */
static void sq_flush_failed(struct sq_store *q, const char *what) {
    if (atomic_exchange(&q->flush_failed, true)) return;
    fprintf(stderr,
            "taskmill: sqlite: %s of SQLite database '%s' failed: what was written to the WAL "
            "since its last"
            " sync may not be on disk, and a later sync would not tell; writes are refused until"
            " the server restarts (a clean stop folds the WAL into the database file)\n",
            what, q->path);
}

static void sq_flush_wal(struct sq_store *q) {
    uint64_t n = atomic_load(&q->commits);
    if (n == atomic_load(&q->flushed_through) || atomic_load(&q->flush_failed)) return;
    int fd = open(q->wal_path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        /* Nothing was flushed, and nothing lost: the next tick tries again. */
        static _Atomic bool told;
        if (!atomic_exchange(&told, true))
            fprintf(stderr, "taskmill: sqlite: opening '%s' to flush it failed: %s (retried)\n",
                    q->wal_path, strerror(errno));
        return;
    }
    /* Never retried: after a failed fdatasync the kernel may have marked the
     * pages it could not write clean, and the next one reports success
     * without them (PostgreSQL's "fsyncgate", 2018). */
    if (fdatasync(fd) != 0) {
        fprintf(stderr, "taskmill: sqlite: fdatasync: %s\n", strerror(errno));
        sq_flush_failed(q, "the flusher's fdatasync of the WAL");
    } else {
        atomic_store(&q->flushed_through, n);
        atomic_fetch_add(&q->flushes, 1);
    }
    close(fd);
}

static void *sq_flusher(void *arg) {
    struct sq_store *q = arg;
    pthread_mutex_lock(&q->flusher_lock);
    while (!q->flusher_stop) {
        time_cond_wait_ms(&q->flusher_wake, &q->flusher_lock, q->flush_ms);
        if (q->flusher_stop) break;
        pthread_mutex_unlock(&q->flusher_lock);
        sq_flush_wal(q);
        pthread_mutex_lock(&q->flusher_lock);
    }
    pthread_mutex_unlock(&q->flusher_lock);
    return NULL;
}

static void sq_flusher_start(struct sq_store *q) {
    /* SQLite's own name of the WAL: absolute, also for a file: URI. */
    sqlite3_filename db = sqlite3_db_filename(q->writer.db, "main");
    const char *wal = db && *db ? sqlite3_filename_wal(db) : NULL;
    if (!wal || !*wal) return; /* in memory */
    q->wal_path = xstrdup(wal);
    pthread_mutex_init(&q->flusher_lock, NULL);
    time_cond_init(&q->flusher_wake);
    q->flusher_on = pthread_create(&q->flusher, NULL, sq_flusher, q) == 0;
    if (q->flusher_on) return;
    fprintf(stderr, "taskmill: sqlite: no thread to flush the relaxed store's WAL\n");
    pthread_cond_destroy(&q->flusher_wake);
    pthread_mutex_destroy(&q->flusher_lock);
    free(q->wal_path);
    q->wal_path = NULL;
}

static void sq_flusher_stop(struct sq_store *q) {
    if (!q->flusher_on) return;
    pthread_mutex_lock(&q->flusher_lock);
    q->flusher_stop = true;
    pthread_cond_signal(&q->flusher_wake);
    pthread_mutex_unlock(&q->flusher_lock);
    pthread_join(q->flusher, NULL);
    q->flusher_on = false;
    pthread_cond_destroy(&q->flusher_wake);
    pthread_mutex_destroy(&q->flusher_lock);
    free(q->wal_path);
    q->wal_path = NULL;
}

static void sq_stats(struct store *s, struct store_stats *out) {
    struct sq_store *q = sq(s);
    if (!q || !q->relaxed) return;
    out->relaxed_flushes = atomic_load(&q->flushes);
    uint64_t done = atomic_load(&q->flushed_through);
    out->unflushed_commits = atomic_load(&q->commits) - done;
}

static int sq_open(struct store *s, const char *url, const struct store_options *opt,
                   struct tm_error *e) {
    const char *path = strchr(url, ':') ? strchr(url, ':') + 1 : url;
    struct sq_store *q = xcalloc(1, sizeof *q);
    store_base_of(s)->impl = q;
    q->path = xstrdup(path && *path ? path : "taskmill.db");
    q->relaxed = opt->relaxed;
    q->flush_ms = opt->relaxed_flush_ms ? opt->relaxed_flush_ms : SQ_RELAXED_FLUSH_MS;
    q->exclusive = opt->sqlite_exclusive;
    q->server_fd = -1;
    q->query_timeout_ms = opt->query_timeout_ms;
    q->events_max_count = opt->events_max_count;
    q->events_max_age_ms = opt->events_max_age_ms;
    pthread_mutex_init(&q->pool_lock, NULL);
    q->rows = xcalloc(SQ_ROWS, sizeof *q->rows);

    struct buf cols, ins, upd;
    buf_init(&cols);
    buf_init(&ins);
    buf_init(&upd);
    sql_task_statements(&sql_dialect_sqlite, NCOLS, &cols, &ins, &upd);
    q->select_cols = buf_detach(&cols);
    for (size_t k = 0; k < SQ_NKEYED; k++) {
        size_t i = 0;
        while (i < NCOLS && strcmp(store_task_columns[i].name, sq_keyed_names[k]) != 0)
            i++;
        const struct store_col *c = &store_task_columns[i < NCOLS ? i : 0];
        /* sq_key compares these kinds only; a fixed column is never set */
        if (i == NCOLS || c->fixed ||
            !(c->kind == STORE_COL_PHASE || c->kind == STORE_COL_STATUS ||
              c->kind == STORE_COL_INT || c->kind == STORE_COL_DUE)) {
            fprintf(stderr, "taskmill: sqlite: column '%s' cannot be keyed\n", sq_keyed_names[k]);
            abort();
        }
        q->keyed_col[k] = i;
    }

    int rc = sq_open_conn(q->path, true, q->relaxed, q->exclusive, &q->writer);
    if (rc) {
        buf_release(&ins);
        buf_release(&upd);
        if (rc == TM_EUNAVAILABLE && q->exclusive)
            return err_set(e, TM_EUNAVAILABLE, "store",
                           "SQLite database '%.64s' is open in another process (a taskmill server, "
                           "a 'taskmill token' command, the sqlite3 shell): --sqlite-exclusive "
                           "needs it alone",
                           q->path);
        if (rc == TM_EUNAVAILABLE)
            return err_set(e, TM_EUNAVAILABLE, "store",
                           "SQLite database '%.64s' is locked by another process (a server started"
                           " with --sqlite-exclusive keeps it to itself)",
                           q->path);
        return err_set(e, TM_EINTERNAL, "store", "cannot open SQLite database '%.64s': %s", q->path,
                       q->writer.why);
    }
    sqlite3 *db = q->writer.db;
    if (opt->sole_server && (rc = sq_take_file(q))) {
        buf_release(&ins);
        buf_release(&upd);
        if (rc == TM_EUNAVAILABLE)
            return err_set(e, TM_EUNAVAILABLE, "store",
                           "SQLite database '%.64s' is served by another taskmill server; several"
                           " servers on one database need PostgreSQL",
                           q->path);
        return err_set(e, TM_EINTERNAL, "store", "cannot lock SQLite database '%.64s': %s", q->path,
                       strerror(errno));
    }
    char sql[2048];
    if ((rc = sq_migrate(db, q->path, e))) {
        buf_release(&ins);
        buf_release(&upd);
        return rc;
    }
    /* The one server of the file: no delivery is in flight at its start. */
    if (!rc && opt->sole_server)
        rc = sq_exec(db, "UPDATE webhooks SET busy_until=0 WHERE busy_until<>0");
    if (!rc) rc = sq_prepare(db, ins.p, &q->w_insert);
    if (!rc) rc = sq_prepare(db, upd.p, &q->w_update);
    snprintf(sql, sizeof sql, "SELECT %s FROM tasks WHERE id=?1", q->select_cols);
    if (!rc) rc = sq_prepare(db, sql, &q->w_load);
    if (!rc) rc = sq_prepare(db, "DELETE FROM tasks WHERE id=?1", &q->w_delete);
    if (!rc)
        rc = sq_prepare(db, "SELECT id FROM tasks WHERE namespace=?1 AND idempotency_key=?2",
                        &q->w_idem);
    snprintf(sql, sizeof sql,
             "SELECT %s FROM tasks WHERE phase='pending' AND paused=0 AND queue=?1"
             " AND (?2 IS NULL OR namespace=?2)"
             " AND (?3 IS NULL OR type IN (SELECT value FROM json_each(?3)))"
             " ORDER BY priority, ready_at, id LIMIT 1",
             q->select_cols);
    if (!rc) rc = sq_prepare(db, sql, &q->w_claim);
    /* The same for one type, without json_each's table (a worker names one
     * type more often than not). */
    snprintf(sql, sizeof sql,
             "SELECT %s FROM tasks WHERE phase='pending' AND paused=0 AND queue=?1"
             " AND (?2 IS NULL OR namespace=?2) AND type=?3"
             " ORDER BY priority, ready_at, id LIMIT 1",
             q->select_cols);
    if (!rc) rc = sq_prepare(db, sql, &q->w_claim1);
    if (!rc) rc = sq_prepare(db, "SAVEPOINT op", &q->w_savepoint);
    if (!rc) rc = sq_prepare(db, "RELEASE op", &q->w_release);
    if (!rc) rc = sq_prepare(db, "ROLLBACK TO op", &q->w_rollback_to);
    if (!rc)
        rc = sq_prepare(db,
                        "SELECT id FROM tasks WHERE due_at IS NOT NULL AND due_at<=?1"
                        " ORDER BY due_at LIMIT ?2",
                        &q->w_due);
    if (!rc)
        rc = sq_prepare(db, "SELECT min(due_at) FROM tasks WHERE due_at IS NOT NULL",
                        &q->w_next_due);
    if (!rc) rc = sq_prepare(db, "BEGIN IMMEDIATE", &q->w_begin);
    if (!rc) rc = sq_prepare(db, "PRAGMA data_version", &q->w_data_version);
    if (!rc) rc = sq_prepare(db, "COMMIT", &q->w_commit);
    if (!rc) rc = sq_prepare(db, "ROLLBACK", &q->w_rollback);
    if (!rc)
        rc = sq_prepare(db,
                        "SELECT max_retries, backoff_ms, backoff_max_ms, paused,"
                        " retain_completed_seconds, retain_failed_seconds,"
                        " retain_cancelled_seconds FROM queues WHERE name=?1",
                        &q->w_queue_get);
    if (!rc)
        rc = sq_prepare(db,
                        "INSERT INTO queues(name, max_retries, backoff_ms, backoff_max_ms,"
                        " retain_completed_seconds, retain_failed_seconds,"
                        " retain_cancelled_seconds) VALUES(?1,?2,?3,?4,?5,?6,?7)"
                        " ON CONFLICT(name) DO UPDATE SET"
                        " max_retries=excluded.max_retries, backoff_ms=excluded.backoff_ms,"
                        " backoff_max_ms=excluded.backoff_max_ms,"
                        " retain_completed_seconds=excluded.retain_completed_seconds,"
                        " retain_failed_seconds=excluded.retain_failed_seconds,"
                        " retain_cancelled_seconds=excluded.retain_cancelled_seconds,"
                        " configured=1",
                        &q->w_queue_put);
    if (!rc)
        rc = sq_prepare(db,
                        "INSERT INTO queues(name, max_retries, backoff_ms, backoff_max_ms, paused,"
                        " configured) VALUES(?1,?2,?3,?4,?5,0) ON CONFLICT(name) DO UPDATE SET"
                        " paused=excluded.paused",
                        &q->w_queue_pause);
    if (!rc)
        rc = sq_prepare(db,
                        "INSERT INTO queue_stats(queue, namespace, minute, node, submitted,"
                        " completed, failed, latency_sum, latency_n, latency_max)"
                        " VALUES(?1,?2,?3,?4,?5,?6,?7,?8,?9,?10)"
                        " ON CONFLICT(queue, namespace, minute, node) DO UPDATE SET"
                        " submitted=submitted+excluded.submitted,"
                        " completed=completed+excluded.completed, failed=failed+excluded.failed,"
                        " latency_sum=latency_sum+excluded.latency_sum,"
                        " latency_n=latency_n+excluded.latency_n,"
                        " latency_max=max(latency_max, excluded.latency_max)",
                        &q->w_stats_add);
    if (!rc) rc = sq_prepare(db, "DELETE FROM queue_stats WHERE minute < ?1", &q->w_stats_prune);
    if (!rc)
        rc = sq_prepare(db,
                        "INSERT INTO task_counts(namespace, queue, phase, paused, shard, n)"
                        " VALUES(?1,?2,?3,?4,0,?5) ON CONFLICT(namespace, queue, phase, paused,"
                        " shard) DO UPDATE SET n=n+excluded.n",
                        &q->w_counts_add);
    buf_release(&ins);
    buf_release(&upd);
    if (rc)
        return err_set(e, TM_EINTERNAL, "store", "cannot prepare SQLite database '%.64s'", q->path);
    /* In place of SQLite's automatic checkpoints, whose sync of the WAL a
     * relaxed store's deferring would skip: sq_commit runs them. */
    if (q->relaxed) sqlite3_wal_hook(db, sq_wal_hook, q);
    if (q->relaxed && q->flush_ms > 0) sq_flusher_start(q);
    return 0;
}

static void sq_close(struct store *s) {
    struct sq_store *q = sq(s);
    if (!q) return;
    sq_flusher_stop(q); /* the closing checkpoint below flushes the WAL */
    sqlite3_stmt *all[] = {q->w_insert,       q->w_update,    q->w_load,        q->w_delete,
                           q->w_idem,         q->w_claim,     q->w_due,         q->w_next_due,
                           q->w_begin,        q->w_commit,    q->w_rollback,    q->w_queue_get,
                           q->w_queue_put,    q->w_savepoint, q->w_release,     q->w_rollback_to,
                           q->w_queue_pause,  q->w_stats_add, q->w_stats_prune, q->w_counts_add,
                           q->w_data_version, q->w_claim1};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        sqlite3_finalize(all[i]);
    for (size_t m = 0; m < sizeof q->w_upd / sizeof q->w_upd[0]; m++)
        sqlite3_finalize(q->w_upd[m]);
    sq_events_close(s);
    while (q->pool) {
        struct sq_conn *c = q->pool;
        q->pool = c->next;
        sq_close_conn(c);
        free(c);
    }
    if (q->writer.db) {
        /* Fold the WAL back into the database file on a clean stop (its
         * syncs real, also in a relaxed store). */
        sq_vfs_defer(q->writer.db, false);
        sqlite3_wal_checkpoint_v2(q->writer.db, NULL, SQLITE_CHECKPOINT_TRUNCATE, NULL, NULL);
        sq_close_conn(&q->writer);
    }
    if (q->server_fd >= 0) close(q->server_fd); /* after every connection: sq_take_file */
    pthread_mutex_destroy(&q->pool_lock);
    for (size_t i = 0; q->rows && i < SQ_ROWS; i++)
        sq_row_clear(q, &q->rows[i]);
    free(q->rows);
    free(q->select_cols);
    free(q->path);
    free(q);
    store_base_of(s)->impl = NULL;
}

/* BEGIN IMMEDIATE, a new transaction for the writer's rows and notes. */
static int sq_begin_tx(struct sq_store *q) {
    if (atomic_load(&q->flush_failed)) return TM_EUNAVAILABLE;
    q->tx++;
    sq_seen_forget(q);
    int rc = sq_step_done(q->writer.db, q->w_begin);
    if (rc == 0 && (rc = sq_rows_check(q))) sq_step_done(q->writer.db, q->w_rollback);
    return rc;
}

static int sq_lazy_end(struct sq_store *q);

static int sq_begin(struct store *s) {
    struct sq_store *q = sq(s);
    /* No durable transaction begins with synchronous=NORMAL left over. */
    if (q->lazy && sq_lazy_end(q)) return TM_EINTERNAL;
    return sq_begin_tx(q);
}

/*
 * Retention's transaction: its commit does not fsync (synchronous=NORMAL
 * for this one; WAL order is kept, so the next durable commit's fsync
 * covers it, and a crash before then only brings the pruned rows back).
 * Pruning then costs the writers no fsync of its own.
 */
static int sq_begin_lazy(struct store *s) {
    struct sq_store *q = sq(s);
    if (!q->relaxed && !q->lazy) {
        sq_vfs_gather(q->writer.db, false);
        int rc = sq_exec(q->writer.db, "PRAGMA synchronous=NORMAL");
        if (rc) {
            sq_vfs_gather(q->writer.db, true);
            return rc;
        }
        q->lazy = true;
    }
    int rc = sq_begin_tx(q);
    if (rc) sq_lazy_end(q); /* no transaction: durable again */
    return rc;
}

/* Back to the durable setting after begin_lazy's transaction ends. When
 * that fails (SQLite refuses it inside a transaction, as after a COMMIT
 * that failed with the transaction still open), the store stays lazy, and
 * sq_begin tries again and begins nothing until it succeeds: a durable
 * batch's commit must sync. */
static int sq_lazy_end(struct sq_store *q) {
    if (!q->lazy) return 0;
    if (sq_exec(q->writer.db, "PRAGMA synchronous=FULL")) return TM_EINTERNAL;
    q->lazy = false;
    sq_vfs_gather(q->writer.db, true);
    return 0;
}

/* A relaxed store's WAL frames at which a commit is followed by a
 * checkpoint: SQLite's own default. */
#define SQ_CHECKPOINT_FRAMES 1000

/* A relaxed store's checkpoint: its syncs real, the WAL flushed before the
 * database file is written. One that fails leaves the WAL for the next,
 * unless it failed on I/O: its sync of the WAL is the first of the
 * deferred frames, and a later one would succeed without them
 * (sq_flush_wal), so the store stops taking writes. */
static void sq_checkpoint(struct sq_store *q) {
    sq_vfs_defer(q->writer.db, false);
    int rc = sqlite3_wal_checkpoint_v2(q->writer.db, NULL, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);
    sq_vfs_defer(q->writer.db, true);
    q->wal_frames = 0;
    if ((rc & 0xff) == SQLITE_IOERR) {
        sq_log(q->writer.db, "checkpoint");
        sq_flush_failed(q, "a checkpoint's sync of the WAL");
    }
}

static int sq_commit(struct store *s) {
    struct sq_store *q = sq(s);
    int rc = sq_step_done(q->writer.db, q->w_commit);
    /* The batch fails (SQLite rolled it back), and so does every one after:
     * the WAL may hold, before this commit's frames, those of begin_lazy's
     * transactions, written and never synced, which the next commit's
     * sync would report safe whether they reached the disk or not. */
    if (rc && sqlite3_extended_errcode(q->writer.db) == SQLITE_IOERR_FSYNC)
        sq_flush_failed(q, "a commit's sync of the WAL");
    sq_lazy_end(q);
    if (!rc && q->relaxed) atomic_fetch_add(&q->commits, 1); /* for sq_flusher */
    if (!rc && q->relaxed && q->wal_frames >= SQ_CHECKPOINT_FRAMES) sq_checkpoint(q);
    return rc;
}

static void sq_rollback(struct store *s) {
    sq_seen_forget(sq(s));
    sq_rows_undo(sq(s));
    if (!sqlite3_get_autocommit(sq(s)->writer.db))
        sq_step_done(sq(s)->writer.db, sq(s)->w_rollback);
    sq_lazy_end(sq(s));
    sq_events_rolled_back(s);
}

static int sq_savepoint(struct store *s) {
    return sq_step_done(sq(s)->writer.db, sq(s)->w_savepoint);
}

static int sq_savepoint_release(struct store *s) {
    return sq_step_done(sq(s)->writer.db, sq(s)->w_release);
}

/* Undoes the op's writes and leaves the savepoint. */
static int sq_savepoint_rollback(struct store *s) {
    sq_seen_forget(sq(s));
    sq_rows_undo(sq(s)); /* this transaction's: some may be from before the savepoint */
    int rc = sq_step_done(sq(s)->writer.db, sq(s)->w_rollback_to);
    return rc ? rc : sq_savepoint_release(s);
}

static int sq_load(struct store *s, const char *id, struct task **out) {
    struct sq_store *q = sq(s);
    struct sq_row *r = sq_row_slot(q, id);
    if (r->t && strcmp(r->t->id, id) == 0) {
        /* Taken out: the op's update puts it back, as it then is. Written
         * by the writer, its row holds every column as the task has it. */
        *out = r->t;
        r->t = NULL;
        q->rows_bytes -= r->bytes;
        sq_seen_note(q, *out, NULL);
        return 0;
    }
    sqlite3_bind_text(q->w_load, 1, id, -1, SQLITE_STATIC);
    return sq_fetch_one(q, q->writer.db, q->w_load, out);
}

static int sq_insert(struct store *s, const struct task *t) {
    struct sq_store *q = sq(s);
    sq_bind_task(q->w_insert, t);
    int rc = sq_step_bound(q->writer.db, q->w_insert);
    if (rc)
        sq_seen_forget(q);
    else
        sq_seen_note(q, t, NULL);
    return rc;
}

static int sq_update(struct store *s, const struct task *t) {
    struct sq_store *q = sq(s);
    sqlite3_stmt *st = sq_update_stmt(q, t);
    if (!st) {
        sq_seen_forget(q);
        return TM_EINTERNAL;
    }
    sq_bind_task(st, t);
    int rc = sq_step_bound(q->writer.db, st);
    if (rc) {
        sq_seen_forget(q);
        sq_row_drop(q, t->id);
    } else {
        sq_seen_note(q, t, NULL);
        sq_row_put(q, t);
    }
    return rc;
}

static int sq_remove(struct store *s, const char *id) {
    struct sq_store *q = sq(s);
    sqlite3_bind_text(q->w_delete, 1, id, -1, SQLITE_STATIC);
    sq_seen_forget(q);
    sq_row_drop(q, id);
    return sq_step_done(q->writer.db, q->w_delete);
}

/* Steps a query whose first column is an id; TM_ENOT_FOUND when no row. */
static int sq_fetch_id(sqlite3 *db, sqlite3_stmt *st, char id[ID_LEN + 1]) {
    int ret = sq_step_one(db, st, "read id");
    if (!ret) snprintf(id, ID_LEN + 1, "%s", (const char *)sqlite3_column_text(st, 0));
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return ret;
}

static int sq_find_idempotent(struct store *s, const char *ns, const char *key,
                              char id[ID_LEN + 1]) {
    struct sq_store *q = sq(s);
    sqlite3_bind_text(q->w_idem, 1, ns, -1, SQLITE_STATIC);
    sqlite3_bind_text(q->w_idem, 2, key, -1, SQLITE_STATIC);
    return sq_fetch_id(q->writer.db, q->w_idem, id);
}

static int sq_claim_next(struct store *s, const struct store_claim_query *cq, struct task **out) {
    struct sq_store *q = sq(s);
    struct buf types;
    buf_init(&types);
    sqlite3_stmt *st = cq->ntypes == 1 ? q->w_claim1 : q->w_claim;
    sqlite3_bind_text(st, 1, cq->queue, -1, SQLITE_STATIC);
    if (cq->ns) sqlite3_bind_text(st, 2, cq->ns, -1, SQLITE_STATIC);
    if (cq->ntypes == 1) {
        sqlite3_bind_text(st, 3, cq->types[0], -1, SQLITE_STATIC);
    } else if (cq->ntypes > 0) {
        buf_putc(&types, '[');
        for (int i = 0; i < cq->ntypes; i++) {
            if (i) buf_putc(&types, ',');
            json_put_str(&types, cq->types[i]);
        }
        buf_putc(&types, ']');
        sqlite3_bind_text(st, 3, types.p, (int)types.len, SQLITE_STATIC);
    }
    int rc = sq_fetch_one(q, q->writer.db, st, out);
    buf_release(&types);
    return rc;
}

static int sq_due(struct store *s, int64_t now, char (*ids)[ID_LEN + 1], size_t max, size_t *n) {
    struct sq_store *q = sq(s);
    return sq_read_ids(q->writer.db, q->w_due, now, ids, max, n);
}

static int sq_next_due(struct store *s, int64_t *at) {
    struct sq_store *q = sq(s);
    int rc = sqlite3_step(q->w_next_due);
    *at = rc == SQLITE_ROW ? sqlite3_column_int64(q->w_next_due, 0) : 0;
    sqlite3_reset(q->w_next_due);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
        sq_log(q->writer.db, "next due");
        return TM_EINTERNAL;
    }
    return 0;
}

/* ---- Readers ---- */

/* SQLite calls this every few thousand VM steps of a reader's statement;
 * nonzero stops the statement with SQLITE_INTERRUPT. */
static int sq_progress(void *cls) {
    const struct sq_conn *c = cls;
    return c->deadline_mono && time_mono_ms() > c->deadline_mono;
}

static struct sq_conn *sq_reader_take(struct sq_store *q) {
    pthread_mutex_lock(&q->pool_lock);
    struct sq_conn *c = q->pool;
    if (c) q->pool = c->next;
    pthread_mutex_unlock(&q->pool_lock);
    if (c) return c;
    c = xmalloc(sizeof *c);
    char sql[1024];
    snprintf(sql, sizeof sql, "SELECT %s FROM tasks WHERE id=?1", q->select_cols);
    if (sq_open_conn(q->path, false, q->relaxed, q->exclusive, c) ||
        sq_prepare(c->db, sql, &c->get)) {
        sq_close_conn(c);
        free(c);
        return NULL;
    }
    c->deadline_mono = 0;
    sqlite3_progress_handler(c->db, 4000, sq_progress, c);
    return c;
}

static void sq_reader_give(struct sq_store *q, struct sq_conn *c) {
    /* Never pooled inside a transaction (a read's COMMIT that failed):
     * every later read on it would see that snapshot. */
    if (!sqlite3_get_autocommit(c->db)) sqlite3_exec(c->db, "ROLLBACK", NULL, NULL, NULL);
    pthread_mutex_lock(&q->pool_lock);
    c->next = q->pool;
    q->pool = c;
    pthread_mutex_unlock(&q->pool_lock);
}

static int sq_get(struct store *s, const char *ns, const char *id, struct task **out) {
    struct sq_store *q = sq(s);
    struct sq_conn *c = sq_reader_take(q);
    if (!c) return TM_EINTERNAL;
    sqlite3_bind_text(c->get, 1, id, -1, SQLITE_STATIC);
    int rc = sq_fetch_one(NULL, c->db, c->get, out);
    sq_reader_give(q, c);
    if (rc == 0 && ns && strcmp((*out)->namespace, ns) != 0) {
        task_free(*out);
        *out = NULL;
        rc = TM_ENOT_FOUND;
    }
    return rc;
}

/* Binds a compiled list query's values (store_sql.c). */
static void sq_binds_apply(const struct sql_binds *b, sqlite3_stmt *st) {
    for (int i = 0; i < b->n; i++) {
        const struct sql_bind *v = &b->v[i];
        if (v->kind == SQL_BIND_TEXT)
            sqlite3_bind_text(st, i + 1, v->text, -1, SQLITE_STATIC);
        else if (v->kind == SQL_BIND_REAL)
            sqlite3_bind_double(st, i + 1, v->d);
        else
            sqlite3_bind_int64(st, i + 1, v->i);
    }
}

/* The index a time-range page is read from (store_sql.h,
 * sql_range_probe), or NULL: in id order. */
static const char *sq_list_range(struct sq_conn *c, const struct task_filter *f) {
    struct buf sql;
    buf_init(&sql);
    struct sql_binds b = {0};
    const char *index = sql_range_probe(&sql_dialect_sqlite, f, &sql, &b);
    sqlite3_stmt *st = NULL;
    int64_t n = SQL_RANGE_PROBE;
    if (index && sqlite3_prepare_v2(c->db, sql.p, -1, &st, NULL) == SQLITE_OK) {
        sq_binds_apply(&b, st);
        if (sqlite3_step(st) == SQLITE_ROW) n = sqlite3_column_int64(st, 0);
    }
    sqlite3_finalize(st);
    buf_release(&sql);
    sql_binds_release(&b);
    return index && n < SQL_RANGE_PROBE ? index : NULL;
}

/* Prepares the list statement (or its count) of a filter on c. */
static int sq_list_prepare(struct sq_store *q, struct sq_conn *c, const struct task_filter *f,
                           bool count, sqlite3_stmt **st, struct sql_binds *b) {
    struct buf sql;
    buf_init(&sql);
    int ret = count ? sql_list_query(&sql_dialect_sqlite, q->select_cols, f, true, &sql, b)
                    : sql_list_query_range(&sql_dialect_sqlite, q->select_cols, sq_list_range(c, f),
                                           f, &sql, b);
    if (ret == 0 && sqlite3_prepare_v2(c->db, sql.p, -1, st, NULL) != SQLITE_OK) {
        sq_log(c->db, sql.p);
        ret = TM_EINTERNAL;
    }
    if (ret == 0) sq_binds_apply(b, *st);
    buf_release(&sql);
    return ret;
}

/* Runs SELECT count(*) with the filter's WHERE clause. */
static int sq_count(struct sq_store *q, struct sq_conn *c, const struct task_filter *f,
                    int64_t *total) {
    struct sql_binds b = {0};
    sqlite3_stmt *st = NULL;
    int ret = sq_list_prepare(q, c, f, true, &st, &b);
    if (ret == 0) {
        int rc = sqlite3_step(st);
        if (rc == SQLITE_ROW) {
            *total = sqlite3_column_int64(st, 0);
        } else if (rc == SQLITE_INTERRUPT) {
            ret = TM_EQUERY_TIMEOUT;
        } else {
            sq_log(c->db, "count");
            ret = TM_EINTERNAL;
        }
    }
    sqlite3_finalize(st);
    sql_binds_release(&b);
    return ret;
}

static int sq_list(struct store *s, const struct task_filter *f, struct task_list *out) {
    struct sq_store *q = sq(s);
    struct sq_conn *c = sq_reader_take(q);
    if (!c) return TM_EINTERNAL;
    struct sql_binds b = {0};
    sqlite3_stmt *st = NULL;
    if (q->query_timeout_ms > 0) c->deadline_mono = time_mono_ms() + q->query_timeout_ms;
    int ret = sq_list_prepare(q, c, f, false, &st, &b);
    if (ret) goto out;
    out->tasks = xcalloc((size_t)f->limit + 1, sizeof *out->tasks);
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (out->n == (size_t)f->limit) {
            out->more = true;
            break;
        }
        out->tasks[out->n++] = sq_read_task(st);
    }
    if (rc == SQLITE_INTERRUPT) {
        ret = TM_EQUERY_TIMEOUT;
    } else if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
        sq_log(c->db, "list");
        ret = TM_EINTERNAL;
    }
    /* The count runs on the same connection, after the page: the two may see
     * different commits, as two requests would. */
    if (ret == 0 && f->want_total) ret = sq_count(q, c, f, &out->total);
out:
    sqlite3_finalize(st);
    c->deadline_mono = 0;
    sq_reader_give(q, c);
    sql_binds_release(&b);
    return ret;
}

/* The three retain_*_seconds columns from column col on (NULL: unset). */
static void sq_read_retention(sqlite3_stmt *st, int col, struct queue_settings *q) {
    static const enum task_phase phases[] = {TASK_COMPLETED, TASK_FAILED, TASK_CANCELLED};
    for (int i = 0; i < 3; i++)
        q->retention_seconds[phases[i]] = sqlite3_column_type(st, col + i) == SQLITE_NULL
                                              ? QUEUE_RETENTION_UNSET
                                              : sqlite3_column_int64(st, col + i);
}

/* The queues that set a retention for at least one phase. */
static int sq_queue_retention(struct store *s, struct queue_counts **out, size_t *n) {
    struct sq_store *q = sq(s);
    struct sq_conn *c = sq_reader_take(q);
    if (!c) return TM_EINTERNAL;
    sqlite3_stmt *st = NULL;
    size_t cap = 0;
    struct queue_counts *qc = NULL;
    *n = 0;
    int ret = 0, rc;
    if (sqlite3_prepare_v2(c->db,
                           "SELECT name, retain_completed_seconds, retain_failed_seconds,"
                           " retain_cancelled_seconds FROM queues"
                           " WHERE retain_completed_seconds IS NOT NULL"
                           " OR retain_failed_seconds IS NOT NULL"
                           " OR retain_cancelled_seconds IS NOT NULL ORDER BY name",
                           -1, &st, NULL) != SQLITE_OK) {
        ret = TM_EINTERNAL;
        goto out;
    }
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        struct queue_counts *e =
            store_queue_slot(&qc, n, &cap, (const char *)sqlite3_column_text(st, 0));
        sq_read_retention(st, 1, &e->settings);
    }
    if (rc != SQLITE_DONE) ret = TM_EINTERNAL;
out:
    if (ret) sq_log(c->db, "queue retention");
    sqlite3_finalize(st);
    sq_reader_give(q, c);
    *out = qc;
    return ret;
}

/* Retention: the (queue, terminal phase) pairs that have tasks. */
static int sq_retain_pairs(struct store *s, struct retain_pair **out, size_t *n) {
    struct sq_store *q = sq(s);
    *out = NULL;
    *n = 0;
    struct sq_conn *c = sq_reader_take(q);
    if (!c) return TM_EINTERNAL;
    sqlite3_stmt *st = NULL;
    size_t cap = 0;
    int ret = 0, rc;
    if (sqlite3_prepare_v2(c->db, SQL_RETAIN_PAIRS, -1, &st, NULL) != SQLITE_OK) {
        ret = TM_EINTERNAL;
        goto out;
    }
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        enum task_phase ph;
        if (task_phase_parse((const char *)sqlite3_column_text(st, 1), &ph)) continue;
        if (*n == cap) {
            cap = cap ? cap * 2 : 16;
            *out = xrealloc(*out, cap * sizeof **out);
        }
        (*out)[*n].queue = xstrdup((const char *)sqlite3_column_text(st, 0));
        (*out)[(*n)++].phase = ph;
    }
    if (rc != SQLITE_DONE) ret = TM_EINTERNAL;
out:
    if (ret) sq_log(c->db, "retention pairs");
    sqlite3_finalize(st);
    sq_reader_give(q, c);
    return ret;
}

/* Retention: one queue's tasks in phase ph older than before, oldest first. */
static int sq_retain_list(struct store *s, const char *queue, enum task_phase ph, int64_t before,
                          size_t max, char (*ids)[ID_LEN + 1], size_t *n) {
    struct sq_store *q = sq(s);
    *n = 0;
    struct sq_conn *c = sq_reader_take(q);
    if (!c) return TM_EINTERNAL;
    sqlite3_stmt *st = NULL;
    int ret = 0, rc = SQLITE_DONE;
    if (sqlite3_prepare_v2(c->db, SQL_RETAIN_LIST_SQLITE, -1, &st, NULL) != SQLITE_OK) {
        ret = TM_EINTERNAL;
        goto out;
    }
    sqlite3_bind_text(st, 1, queue, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, task_phase_name(ph), -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, before);
    sqlite3_bind_int64(st, 4, (sqlite3_int64)max);
    while (*n < max && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        const char *id = (const char *)sqlite3_column_text(st, 0);
        if (!id || strlen(id) > ID_LEN) continue;
        memcpy(ids[(*n)++], id, strlen(id) + 1);
    }
    if (*n < max && rc != SQLITE_DONE) ret = TM_EINTERNAL;
out:
    if (ret) sq_log(c->db, "retention list");
    sqlite3_finalize(st);
    sq_reader_give(q, c);
    return ret;
}

static int sq_queue_counts(struct store *s, const char *ns, struct queue_counts **out, size_t *n) {
    struct sq_store *q = sq(s);
    struct sq_conn *c = sq_reader_take(q);
    if (!c) return TM_EINTERNAL;
    sqlite3_stmt *st = NULL, *cfg = NULL;
    size_t cap = 0;
    struct queue_counts *qc = NULL;
    *n = 0;
    store_queue_slot(&qc, n, &cap, "default");
    int ret = 0, rc;
    if (sqlite3_prepare_v2(c->db,
                           "SELECT queue, phase, paused, sum(n) FROM task_counts"
                           " WHERE (?1 IS NULL OR namespace=?1)"
                           " GROUP BY queue, phase, paused HAVING sum(n)<>0 ORDER BY queue",
                           -1, &st, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(c->db,
                           "SELECT name, max_retries, backoff_ms, backoff_max_ms, paused,"
                           " configured, retain_completed_seconds, retain_failed_seconds,"
                           " retain_cancelled_seconds FROM queues ORDER BY name",
                           -1, &cfg, NULL) != SQLITE_OK) {
        ret = TM_EINTERNAL;
        goto out;
    }
    if (ns) sqlite3_bind_text(st, 1, ns, -1, SQLITE_STATIC);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        struct queue_counts *e =
            store_queue_slot(&qc, n, &cap, (const char *)sqlite3_column_text(st, 0));
        enum task_phase p;
        int64_t count = sqlite3_column_int64(st, 3);
        if (task_phase_parse((const char *)sqlite3_column_text(st, 1), &p) == 0)
            e->phase[p] += count;
        if (sqlite3_column_int(st, 2)) e->paused += count;
    }
    if (rc != SQLITE_DONE) ret = TM_EINTERNAL;
    while (!ret && (rc = sqlite3_step(cfg)) == SQLITE_ROW) {
        struct queue_counts *e =
            store_queue_slot(&qc, n, &cap, (const char *)sqlite3_column_text(cfg, 0));
        e->configured = sqlite3_column_int(cfg, 5) != 0;
        e->settings.max_retries = sqlite3_column_int64(cfg, 1);
        e->settings.backoff_ms = sqlite3_column_int64(cfg, 2);
        e->settings.backoff_max_ms = sqlite3_column_int64(cfg, 3);
        e->settings.paused = sqlite3_column_int(cfg, 4) != 0;
        sq_read_retention(cfg, 6, &e->settings);
    }
    if (!ret && rc != SQLITE_DONE) ret = TM_EINTERNAL;
out:
    if (ret) sq_log(c->db, "queue counts");
    sqlite3_finalize(st);
    sqlite3_finalize(cfg);
    sq_reader_give(q, c);
    *out = qc;
    return ret;
}

static int sq_queue_get(struct store *s, const char *queue, struct queue_settings *out) {
    struct sq_store *q = sq(s);
    sqlite3_bind_text(q->w_queue_get, 1, queue, -1, SQLITE_STATIC);
    int ret = sq_step_one(q->writer.db, q->w_queue_get, "queue settings");
    if (!ret) {
        out->max_retries = sqlite3_column_int64(q->w_queue_get, 0);
        out->backoff_ms = sqlite3_column_int64(q->w_queue_get, 1);
        out->backoff_max_ms = sqlite3_column_int64(q->w_queue_get, 2);
        out->paused = sqlite3_column_int(q->w_queue_get, 3) != 0;
        sq_read_retention(q->w_queue_get, 4, out);
    }
    sqlite3_reset(q->w_queue_get);
    sqlite3_clear_bindings(q->w_queue_get);
    return ret;
}

static int sq_queue_put(struct store *s, const char *queue, const struct queue_settings *qs) {
    struct sq_store *q = sq(s);
    sqlite3_bind_text(q->w_queue_put, 1, queue, -1, SQLITE_STATIC);
    sqlite3_bind_int64(q->w_queue_put, 2, qs->max_retries);
    sqlite3_bind_int64(q->w_queue_put, 3, qs->backoff_ms);
    sqlite3_bind_int64(q->w_queue_put, 4, qs->backoff_max_ms);
    static const enum task_phase phases[] = {TASK_COMPLETED, TASK_FAILED, TASK_CANCELLED};
    for (int i = 0; i < 3; i++) /* unbound: NULL, the server's age */
        if (qs->retention_seconds[phases[i]] >= 0)
            sqlite3_bind_int64(q->w_queue_put, 5 + i, qs->retention_seconds[phases[i]]);
    return sq_step_done(q->writer.db, q->w_queue_put);
}

static int sq_queue_pause(struct store *s, const char *queue, bool paused, bool *was) {
    struct sq_store *q = sq(s);
    /* One writer: what it reads now is what the write replaces. */
    struct queue_settings now;
    int rc = sq_queue_get(s, queue, &now);
    if (rc && rc != TM_ENOT_FOUND) return rc;
    *was = !rc && now.paused;
    struct queue_settings d;
    queue_settings_default(&d);
    sqlite3_bind_text(q->w_queue_pause, 1, queue, -1, SQLITE_STATIC);
    sqlite3_bind_int64(q->w_queue_pause, 2, d.max_retries);
    sqlite3_bind_int64(q->w_queue_pause, 3, d.backoff_ms);
    sqlite3_bind_int64(q->w_queue_pause, 4, d.backoff_max_ms);
    sqlite3_bind_int(q->w_queue_pause, 5, paused);
    return sq_step_done(q->writer.db, q->w_queue_pause);
}

static int sq_stats_add(struct store *s, const char *node, const struct store_stat_add *v,
                        size_t n) {
    struct sq_store *q = sq(s);
    sqlite3_stmt *st = q->w_stats_add;
    for (size_t i = 0; i < n; i++) {
        const struct queue_stat *x = &v[i].st;
        sqlite3_bind_text(st, 1, v[i].queue, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, v[i].ns, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 3, x->minute);
        sqlite3_bind_text(st, 4, node, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 5, x->submitted);
        sqlite3_bind_int64(st, 6, x->completed);
        sqlite3_bind_int64(st, 7, x->failed);
        sqlite3_bind_int64(st, 8, x->latency_sum);
        sqlite3_bind_int64(st, 9, x->latency_n);
        sqlite3_bind_int64(st, 10, x->latency_max);
        int rc = sq_step_done(q->writer.db, st);
        if (rc) return rc;
    }
    return 0;
}

static int sq_counts_add(struct store *s, const struct store_count_add *v, size_t n) {
    struct sq_store *q = sq(s);
    sqlite3_stmt *st = q->w_counts_add;
    for (size_t i = 0; i < n; i++) {
        sqlite3_bind_text(st, 1, v[i].ns, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, v[i].queue, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 3, task_phase_name(v[i].phase), -1, SQLITE_STATIC);
        sqlite3_bind_int(st, 4, v[i].paused);
        sqlite3_bind_int64(st, 5, v[i].n);
        int rc = sq_step_done(q->writer.db, st);
        if (rc) return rc;
    }
    return 0;
}

static int sq_stats_prune(struct store *s, int64_t before_minute) {
    struct sq_store *q = sq(s);
    sqlite3_bind_int64(q->w_stats_prune, 1, before_minute);
    return sq_step_done(q->writer.db, q->w_stats_prune);
}

static int sq_stats_read(struct store *s, const char *ns, const char *queue, int64_t from_minute,
                         int64_t to_minute, struct queue_stat **out, size_t *n) {
    struct sq_store *q = sq(s);
    struct sq_conn *c = sq_reader_take(q);
    if (!c) return TM_EINTERNAL;
    sqlite3_stmt *st = NULL;
    int ret = 0;
    if (sqlite3_prepare_v2(c->db,
                           "SELECT minute, sum(submitted), sum(completed), sum(failed),"
                           " sum(latency_sum), sum(latency_n), max(latency_max) FROM queue_stats"
                           " WHERE queue=?1 AND (?2 IS NULL OR namespace=?2) AND minute>=?3"
                           " AND minute<?4 GROUP BY minute ORDER BY minute",
                           -1, &st, NULL) != SQLITE_OK) {
        ret = TM_EINTERNAL;
        goto out;
    }
    sqlite3_bind_text(st, 1, queue, -1, SQLITE_STATIC);
    if (ns) sqlite3_bind_text(st, 2, ns, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, from_minute);
    sqlite3_bind_int64(st, 4, to_minute);
    *out = sq_read_rows(st, store_stat_fields, sizeof **out, n, &ret);
out:
    if (ret) sq_log(c->db, "queue stats");
    sqlite3_finalize(st);
    sq_reader_give(q, c);
    return ret;
}

/* For store_sqlite_events.c (store_sqlite_int.h). */
sqlite3 *sq_writer_db(struct store *s) {
    return sq(s)->writer.db;
}

sqlite3 *sq_reader_borrow(struct store *s, void **conn) {
    struct sq_conn *c = sq_reader_take(sq(s));
    *conn = c;
    return c ? c->db : NULL;
}

void sq_reader_return(struct store *s, void *conn) {
    sq_reader_give(sq(s), conn);
}

void sq_events_limits(struct store *s, int64_t *max_count, int64_t *max_age_ms) {
    *max_count = sq(s)->events_max_count;
    *max_age_ms = sq(s)->events_max_age_ms;
}

struct sq_events **sq_events_slot(struct store *s) {
    return &sq(s)->events;
}

static const char *sq_refusing(struct store *s) {
    return atomic_load(&sq(s)->flush_failed)
               ? "storage refuses writes: a sync of its write-ahead log to disk failed (the "
                 "server's log says which); restart the server"
               : NULL;
}

static int sq_ping(struct store *s) {
    struct sq_store *q = sq(s);
    /* Refusing writes until a restart (flush_failed): not a store that
     * answers, so /healthz and /readyz say 503 and a supervisor restarts. */
    if (atomic_load(&q->flush_failed)) return TM_EUNAVAILABLE;
    struct sq_conn *c = sq_reader_take(q);
    if (!c) return TM_EINTERNAL;
    int rc = sq_exec(c->db, "SELECT 1 FROM tasks LIMIT 1");
    sq_reader_give(q, c);
    return rc;
}

/* ---- API tokens (store_tokens.c). Statements are prepared per call: token
 * writes are rare, and a read by primary key prepares in microseconds. ---- */

#define SQ_TOKEN_COLS "id,name,role,namespace,secret_hash,created_at,expires_at,revoked_at"

static struct token *sq_read_token(sqlite3_stmt *st) {
    struct token *t = xcalloc(1, sizeof *t);
    const char *id = (const char *)sqlite3_column_text(st, 0);
    snprintf(t->id, sizeof t->id, "%s", id ? id : "");
    const char *name = (const char *)sqlite3_column_text(st, 1);
    t->name = name ? xstrdup(name) : NULL;
    enum token_role role = TOKEN_READER; /* an unknown stored role gets the least */
    token_role_parse((const char *)sqlite3_column_text(st, 2), &role);
    t->role = role;
    const char *ns = (const char *)sqlite3_column_text(st, 3);
    t->namespace = xstrdup(ns ? ns : "");
    if (sqlite3_column_bytes(st, 4) == TOKEN_HASH_LEN)
        memcpy(t->hash, sqlite3_column_blob(st, 4), TOKEN_HASH_LEN);
    t->created_at = sqlite3_column_int64(st, 5);
    t->expires_at = sqlite3_column_int64(st, 6);
    t->revoked_at = sqlite3_column_int64(st, 7);
    return t;
}

static int sq_token_insert(struct store *s, const struct token *t) {
    sqlite3 *db = sq(s)->writer.db;
    sqlite3_stmt *st;
    if (sq_prepare(db, "INSERT INTO tokens(" SQ_TOKEN_COLS ") VALUES(?1,?2,?3,?4,?5,?6,?7,?8)",
                   &st))
        return TM_EINTERNAL;
    sqlite3_bind_text(st, 1, t->id, -1, SQLITE_STATIC);
    if (t->name) sqlite3_bind_text(st, 2, t->name, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, token_role_name(t->role), -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, t->namespace, -1, SQLITE_STATIC);
    sqlite3_bind_blob(st, 5, t->hash, TOKEN_HASH_LEN, SQLITE_STATIC);
    sqlite3_bind_int64(st, 6, t->created_at);
    sqlite3_bind_int64(st, 7, t->expires_at);
    sqlite3_bind_int64(st, 8, t->revoked_at);
    int rc = sq_step_done(db, st);
    sqlite3_finalize(st);
    return rc;
}

static int sq_token_revoke(struct store *s, const char *id, int64_t now) {
    sqlite3 *db = sq(s)->writer.db;
    sqlite3_stmt *st;
    if (sq_prepare(db,
                   "UPDATE tokens SET revoked_at=CASE WHEN revoked_at=0 THEN ?2"
                   " ELSE revoked_at END WHERE id=?1",
                   &st))
        return TM_EINTERNAL;
    sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, now);
    int rc = sq_step_done(db, st);
    sqlite3_finalize(st);
    if (rc == 0 && sqlite3_changes(db) == 0) rc = TM_ENOT_FOUND;
    return rc;
}

static int sq_token_purge(struct store *s, int64_t now, int64_t *deleted) {
    sqlite3 *db = sq(s)->writer.db;
    sqlite3_stmt *st;
    if (sq_prepare(db,
                   "DELETE FROM tokens WHERE revoked_at<>0 OR (expires_at<>0 AND expires_at<=?1)",
                   &st))
        return TM_EINTERNAL;
    sqlite3_bind_int64(st, 1, now);
    int rc = sq_step_done(db, st);
    sqlite3_finalize(st);
    if (rc == 0) *deleted = sqlite3_changes(db);
    return rc;
}

static int sq_token_get(struct store *s, const char *id, struct token **out) {
    struct sq_store *q = sq(s);
    struct sq_conn *c = sq_reader_take(q);
    if (!c) return TM_EINTERNAL;
    sqlite3_stmt *st;
    int ret = TM_EINTERNAL;
    if (sq_prepare(c->db, "SELECT " SQ_TOKEN_COLS " FROM tokens WHERE id=?1", &st) == 0) {
        sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
        ret = sq_step_one(c->db, st, "read token");
        if (!ret) *out = sq_read_token(st);
        sqlite3_finalize(st);
    }
    sq_reader_give(q, c);
    return ret;
}

static int sq_token_list(struct store *s, struct token ***out, size_t *n) {
    struct sq_store *q = sq(s);
    struct sq_conn *c = sq_reader_take(q);
    if (!c) return TM_EINTERNAL;
    sqlite3_stmt *st;
    int ret = TM_EINTERNAL, rc = SQLITE_ERROR;
    size_t cap = 0;
    if (sq_prepare(c->db, "SELECT " SQ_TOKEN_COLS " FROM tokens ORDER BY created_at, id", &st) ==
        0) {
        while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
            if (*n == cap) {
                cap = cap ? cap * 2 : 16;
                *out = xrealloc(*out, cap * sizeof **out);
            }
            (*out)[(*n)++] = sq_read_token(st);
        }
        if (rc == SQLITE_DONE)
            ret = 0;
        else
            sq_log(c->db, "list tokens");
        sqlite3_finalize(st);
    }
    sq_reader_give(q, c);
    if (ret) {
        tokens_free(*out, *n);
        *out = NULL;
        *n = 0;
    }
    return ret;
}

static int sq_token_any(struct store *s, bool *any) {
    struct sq_store *q = sq(s);
    struct sq_conn *c = sq_reader_take(q);
    if (!c) return TM_EINTERNAL;
    sqlite3_stmt *st;
    int ret = TM_EINTERNAL;
    if (sq_prepare(c->db, "SELECT 1 FROM tokens LIMIT 1", &st) == 0) {
        int rc = sqlite3_step(st);
        if (rc == SQLITE_ROW || rc == SQLITE_DONE) {
            *any = rc == SQLITE_ROW;
            ret = 0;
        } else {
            sq_log(c->db, "any token");
        }
        sqlite3_finalize(st);
    }
    sq_reader_give(q, c);
    return ret;
}

const struct store_backend store_sqlite_backend = {
    .scheme = "sqlite",
    .shared = false,
    .open = sq_open,
    .close = sq_close,
    .stats = sq_stats,
    .begin = sq_begin,
    .begin_lazy = sq_begin_lazy,
    .commit = sq_commit,
    .rollback = sq_rollback,
    .savepoint = sq_savepoint,
    .savepoint_release = sq_savepoint_release,
    .savepoint_rollback = sq_savepoint_rollback,
    .load = sq_load,
    .insert = sq_insert,
    .update = sq_update,
    .remove = sq_remove,
    .find_idempotent = sq_find_idempotent,
    .claim_next = sq_claim_next,
    .due = sq_due,
    .next_due = sq_next_due,
    .queue_get = sq_queue_get,
    .queue_put = sq_queue_put,
    .queue_pause = sq_queue_pause,
    .stats_add = sq_stats_add,
    .counts_add = sq_counts_add,
    .stats_prune = sq_stats_prune,
    .stats_read = sq_stats_read,
    .doc_write = sq_doc_write,
    .doc_load = sq_doc_load,
    .doc_name_owner = sq_doc_name_owner,
    .doc_delete = sq_doc_delete,
    .sched_due = sq_sched_due,
    .sched_next_at = sq_sched_next_at,
    .fire_insert = sq_fire_insert,
    .fire_exists = sq_fire_exists,
    .sched_runs = sq_sched_runs,
    .fires_prune = sq_fires_prune,
    .doc_get = sq_doc_get,
    .doc_list = sq_doc_list,
    .fires_list = sq_fires_list,
    .get = sq_get,
    .list = sq_list,
    .queue_counts = sq_queue_counts,
    .queue_retention = sq_queue_retention,
    .retain_pairs = sq_retain_pairs,
    .retain_list = sq_retain_list,
    .ping = sq_ping,
    .refusing = sq_refusing,
    .token_insert = sq_token_insert,
    .token_revoke = sq_token_revoke,
    .token_get = sq_token_get,
    .token_list = sq_token_list,
    .token_purge = sq_token_purge,
    .token_any = sq_token_any,
    .events_append = sq_events_append,
    .events_prune_info = sq_events_prune_info,
    .events_delete = sq_events_delete,
    .delivery_claim = sq_delivery_claim,
    .webhook_insert = sq_webhook_insert,
    .webhook_count = sq_webhook_count,
    .webhook_delete = sq_webhook_delete,
    .webhook_update = sq_webhook_update,
    .delivery_update = sq_delivery_update,
    .events_read = sq_events_read,
    .events_head = sq_events_head,
    .webhooks_list = sq_webhooks_list,
    .deliveries_page = sq_deliveries_page,
    .deliveries_next_at = sq_deliveries_next_at,
};
