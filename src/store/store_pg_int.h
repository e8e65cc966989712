/*
 * store_pg_int: what the PostgreSQL backend's files share, for store_pg.c
 * and store_pg_events.c only.
 *
 * store_pg.c owns the connections: the writer (writer thread only), a pool
 * of readers (borrowed with pg_reader_take, given back with
 * pg_reader_give) and the listener (feed thread only). Every statement
 * goes through pg_run or pg_run_sql, which prepare it once per connection,
 * wait for the result with a deadline, and turn a failure into a TM_E
 * code: TM_EUNAVAILABLE when the connection broke (it is closed, and
 * reopened on a later call), TM_ERETRY on a serialization failure or
 * deadlock, TM_ECONFLICT on a unique key, TM_EINTERNAL otherwise (logged
 * with `taskmill: postgres:`). A PGresult is the caller's to PQclear;
 * nothing may point into it after the op returns.
 */
#ifndef TASKMILL_STORE_PG_INT_H
#define TASKMILL_STORE_PG_INT_H

#include <libpq-fe.h>

#include "../common/buf.h"
#include "store_int.h"

/* Every prepared statement, one name per id ("tm<id>") on each connection. */
enum pg_stmt_id {
    PGS_LOAD,
    PGS_PRELOAD,
    PGS_INSERT,
    PGS_UPDATE,
    PGS_FLUSH,
    PGS_INSERT_MANY,
    PGS_REMOVE,
    PGS_IDEM,
    PGS_IDEM_LOCK,
    PGS_IDEM_LOCK_MANY,
    PGS_CLAIM,
    PGS_DUE,
    PGS_NEXT_DUE,
    PGS_QUEUE_GET,
    PGS_QUEUE_PUT,
    PGS_QUEUE_ROW,
    PGS_QUEUE_PAUSE,
    PGS_STATS_ADD,
    PGS_STATS_PRUNE,
    PGS_COUNTS_FOLD,
    PGS_COUNTS_ADD,
    PGS_STATS_READ,
    PGS_GET,
    PGS_QUEUE_COUNTS,
    PGS_QUEUE_CFG,
    PGS_QUEUE_RETENTION,
    PGS_RETAIN_PAIRS,
    PGS_RETAIN_LIST,
    PGS_PING,
    PGS_COMMIT_XID,
    PGS_TOKEN_INSERT,
    PGS_TOKEN_REVOKE,
    PGS_TOKEN_GET,
    PGS_TOKEN_LIST,
    PGS_TOKEN_ANY,
    PGS_TOKEN_PURGE,
    PGS_EV_APPEND,
    PGS_EV_PRUNE_INFO,
    PGS_EV_DELETE,
    PGS_HOOK_INSERT,
    PGS_HOOK_COUNT,
    PGS_HOOK_DELETE,
    PGS_DELIVERY_UPDATE,
    PGS_DELIVERY_CLAIM,
    PGS_DELIVERY_TAKE,
    PGS_EV_READ,
    PGS_EV_READ_TASK,
    PGS_EV_READ_BARE,
    PGS_EV_HEAD,
    PGS_HOOKS_LIST,
    PGS_DELIVERIES_NEXT_AT,
    PGS_COUNT
};

struct pg_stmt {
    enum pg_stmt_id id;
    const char *sql;
};

struct pg_tx;
struct pg_ahead;

/* One connection and the statements prepared on it. */
struct pg_conn {
    PGconn *pg; /* NULL when closed (broken, or not opened yet) */
    const char *role;
    bool prepared[PGS_COUNT];
    int err; /* the writer: the first failure of the open transaction */
    /* The writer: a statement of the open transaction was refused because
     * the database is read-only (SQLSTATE 25006), with the server's message
     * for the log; store_pg.c, "a database that refuses writes". */
    bool read_only;
    char read_only_msg[160];
    struct pg_conn *next; /* reader free list */
    /* The writer: its transaction's rows and the updates it keeps, which
     * pg_run and pg_run_sql write first when a statement could see them
     * (store_pg.c, "the batch's rows"). NULL on readers and the listener. */
    struct pg_tx *tx;
    /* The writer: statements sent ahead in pipeline mode (pg_run_ahead),
     * whose results are read with the next statement that waits for its
     * own (store_pg.c, "statements sent ahead"). */
    struct pg_ahead *ahead;
    size_t nahead, capahead;
    /* The writer: its store, whose sessions that block a statement of its
     * it looks at while it waits (store_pg.c, "a stalled node's locks").
     * NULL on readers and the listener. */
    struct store *watch;
};

/* Parameters of one statement, sent as text unless pgp_bin'd. */
#define PG_MAX_PARAMS 64
struct pg_params {
    int n;
    const char *v[PG_MAX_PARAMS];
    int len[PG_MAX_PARAMS];
    int fmt[PG_MAX_PARAMS];
    char num[PG_MAX_PARAMS][32];
};

void pgp_init(struct pg_params *p);
/* Borrowed until the statement has run; NULL is SQL NULL. */
void pgp_text(struct pg_params *p, const char *s);
void pgp_int(struct pg_params *p, int64_t v);
void pgp_real(struct pg_params *p, double v);
/* Adds row's first `max` fields (all: SIZE_MAX) as parameters, as `fields`
 * says (store_int.h); borrowed. */
void pgp_fields(struct pg_params *p, const struct store_field *fields, size_t max, const void *row);
/* Binary format (bytea, or an array built with pga_*); borrowed. */
void pgp_bin(struct pg_params *p, const void *data, size_t n);

/* One-dimensional arrays in PostgreSQL's binary format, for $n::T[]
 * parameters (no text escaping of large JSON). */
#define PG_OID_INT4   23
#define PG_OID_INT8   20
#define PG_OID_TEXT   25
#define PG_OID_FLOAT8 701
void pga_begin(struct buf *b, unsigned oid, size_t n);
void pga_text(struct buf *b, const char *s); /* NULL: an empty string */
/* Adds a text[] parameter of v[0..n-1], built in arr (the caller's, kept
 * until the statement has run, then released). */
void pgp_text_array(struct pg_params *p, struct buf *arr, const char *const *v, size_t n);
void pga_int8(struct buf *b, int64_t v);
void pga_int4(struct buf *b, int32_t v);
void pga_float8(struct buf *b, double v);
/* An SQL NULL element; b must hold this one array from its start (the
 * header's has-NULLs flag is set). */
void pga_null(struct buf *b);

/* Runs a prepared statement (preparing it on this connection first);
 * on 0, *res holds the rows (PQclear it). */
int pg_run(struct pg_conn *c, const struct pg_stmt *st, const struct pg_params *p, PGresult **res);
/*
 * The writer's pg_run without the wait: sends st ahead in pipeline mode
 * and returns. Its result is read with the next statement that waits for
 * its own (pg_run, pg_run_sql; in a batch at the latest the COMMIT) and
 * handed to done (NULL: a command whose rows do not matter), which returns
 * 0 or a TM_E code. arg (may be NULL) is free()d after done, or instead
 * of it when st failed or did not run. A failure fails that later
 * statement, with the code of the first failure. Only for statements
 * whose failure fails the whole batch: never one a caller must see fail
 * by itself (an insert under a savepoint). Parameters are borrowed for
 * the call only.
 */
int pg_run_ahead(struct pg_conn *c, const struct pg_stmt *st, const struct pg_params *p,
                 int (*done)(struct pg_conn *c, PGresult *r, void *arg), void *arg);
/* pg_run for a statement whose rows, if any, do not matter. */
int pg_run_cmd(struct pg_conn *c, const struct pg_stmt *st, const struct pg_params *p);
/* pg_run for one integer: the first row's first column (0 for no row, or NULL). */
int pg_run_int(struct pg_conn *c, const struct pg_stmt *st, const struct pg_params *p,
               int64_t *out);
/* Runs SQL text once (unnamed statement); p may be NULL. */
int pg_run_sql(struct pg_conn *c, const char *sql, const struct pg_params *p, PGresult **res);

/* pg_run and pg_run_sql on a reader, taken for the one statement and given
 * back (the rows outlive it); TM_EUNAVAILABLE when none can be opened. */
int pg_read(struct store *s, const struct pg_stmt *st, const struct pg_params *p, PGresult **res);
int pg_read_sql(struct store *s, const char *sql, const struct pg_params *p, PGresult **res);

struct pg_conn *pg_writer(struct store *s);
/* A reader (opened on demand), or NULL when none can be opened (TM_EUNAVAILABLE). */
struct pg_conn *pg_reader_take(struct store *s);
void pg_reader_give(struct store *s, struct pg_conn *c);

/* Copies out of a result. */
char *pg_dup(const PGresult *r, int row, int col); /* NULL for SQL NULL */
int64_t pg_int(const PGresult *r, int row, int col);
void pg_copy(char *dst, size_t n, const PGresult *r, int row, int col);
/* Reads row's columns from col on into out's fields, as `fields` says (store_int.h). */
void pg_read_fields(const PGresult *r, int row, int col, const struct store_field *fields,
                    void *out);
/* Every row of r read as pg_read_fields does, into a new array of *n
 * structs of `size` bytes (NULL when none; the caller frees it). */
void *pg_read_rows(const PGresult *r, const struct store_field *fields, size_t size, size_t *n);

/* store_pg_events.c */
int pg_events_append(struct store *s, struct store_event *evs, size_t n, size_t *deliveries);
int pg_events_prune_info(struct store *s, int64_t before_at, struct store_prune_info *out);
int pg_events_delete(struct store *s, int64_t *through, int64_t *deleted);
int pg_webhook_insert(struct store *s, const struct webhook *w);
int pg_webhook_count(struct store *s, const char *ns, int64_t *n);
int pg_webhook_delete(struct store *s, const char *ns, const char *id);
int pg_webhook_update(struct store *s, const char *ns, const char *id, struct webhook *w,
                      int64_t now);
int pg_delivery_update(struct store *s, const struct webhook_delivery *d);
int pg_delivery_claim(struct store *s, int64_t now, const char *const *skip, size_t nskip,
                      int64_t busy_until, struct webhook_delivery **out);
int pg_events_read(struct store *s, const char *ns, const char *task_id, int64_t after, int limit,
                   size_t max_bytes, struct event_page *out);
int pg_events_read_bare(struct store *s, int64_t after, int limit, struct event_page *out);
int pg_events_head(struct store *s, int64_t *head, int64_t *pruned_through);
int pg_webhooks_list(struct store *s, const char *ns, const char *id, struct webhook **out,
                     size_t *n);
int pg_deliveries_page(struct store *s, const char *webhook_id, const struct delivery_page *page,
                       int limit, struct webhook_delivery **out, size_t *n);
int pg_deliveries_next_at(struct store *s, int64_t *at);

/* store_pg.c: migrations, and the name of a node's writer session.
 * pg_test_set_migrations puts list (ended by a NULL name) in place of the
 * built-in migrations for the stores opened after it, and NULL puts them
 * back: tests only (test_pg_migrate). */
struct embedded_file;
void pg_test_set_migrations(const struct embedded_file *list);
/* Whether nodes built before migration m cannot run beside a database that
 * has it: m has the marker line PG_NOT_BESIDE_OLDER (store_pg.c). */
bool pg_migration_not_beside_older(const struct embedded_file *m);
/* The highest migration a writer session named app knows: N for
 * "taskmill writer/N", -1 for "taskmill writer" (a node built before the
 * number), -2 for a name that is not a taskmill writer's. */
int pg_writer_app(const char *app);

/* store_pg_docs.c */
int pg_doc_write(struct store *s, enum store_doc_kind k, const struct store_doc *d, bool insert);
int pg_doc_load(struct store *s, enum store_doc_kind k, const char *ns, const char *key,
                struct store_doc *out);
int pg_doc_delete(struct store *s, enum store_doc_kind k, const char *ns, const char *id);
int pg_doc_name_owner(struct store *s, enum store_doc_kind k, const char *ns, const char *name,
                      char id[ID_LEN + 1]);
int pg_sched_due(struct store *s, int64_t now, char (*ids)[ID_LEN + 1], size_t max, size_t *n);
int pg_sched_next_at(struct store *s, int64_t *at);
int pg_fire_insert(struct store *s, const char *sched_id, const struct schedule_fire *f);
int pg_fire_exists(struct store *s, const char *sched_id, int64_t slot);
int pg_sched_runs(struct store *s, const char *sched_id, bool writer, size_t max,
                  char (*ids)[ID_LEN + 1], size_t *n);
int pg_fires_prune(struct store *s, int64_t before, int keep, int max, int64_t *deleted);
int pg_doc_get(struct store *s, enum store_doc_kind k, const char *ns, const char *key,
               struct store_doc *out);
int pg_doc_list(struct store *s, enum store_doc_kind k, const char *ns, struct store_doc **out,
                size_t *n);
int pg_fires_list(struct store *s, const char *sched_id, int limit, struct schedule_fire **out,
                  size_t *n);

#endif
