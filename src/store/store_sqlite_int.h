/*
 * store_sqlite_int: what the SQLite backend's files share, for
 * store_sqlite.c and store_sqlite_events.c only.
 *
 * store_sqlite.c owns the connections; store_sqlite_events.c keeps the
 * event log's and webhooks' statements in a struct sq_events hung off the
 * backend's state and freed by sq_events_close before the connections
 * close. The writer connection is the writer thread's alone; a reader
 * connection is borrowed with sq_reader_borrow and given back after use.
 */
#ifndef TASKMILL_STORE_SQLITE_INT_H
#define TASKMILL_STORE_SQLITE_INT_H

#include <sqlite3.h>

#include "store_int.h"

struct sq_events;

/* store_sqlite_vfs.c: the VFS every connection of the backend opens with,
 * the default one gathering a commit's WAL appends into one write. */
#define SQ_VFS_NAME      "taskmill"
#define SQ_VFS_EXCL_NAME "taskmill-excl"
/* Sets SQLite up and registers the VFSes, once: the name of the one to
 * open with, or NULL (use the default) when it cannot. `exclusive`: the
 * one over "unix-excl", which keeps the database to this process
 * (store_options.sqlite_exclusive). Called before any other use of SQLite. */
const char *sq_vfs_name(bool exclusive);
/* Gathering on or off for db's WAL: on only while every commit of db
 * syncs (synchronous=FULL). */
void sq_vfs_gather(sqlite3 *db, bool on);
/* Deferring on or off for db's WAL: its syncs write the frames and do not
 * flush them (a relaxed store); off for a checkpoint, whose sync of the
 * WAL must be real. */
void sq_vfs_defer(sqlite3 *db, bool on);
/* Since the process started: syncs of a WAL that deferring skipped. */
uint64_t sq_vfs_deferred(void);
/* Since the process started: WAL writes SQLite asked for that were
 * gathered, and the writes that carried them to the file. */
void sq_vfs_counts(uint64_t *gathered, uint64_t *written);

/* Logs the connection's last error after `what`. */
void sq_log(sqlite3 *db, const char *what);
/* Steps a statement that gives at most one row: 0 with the row to read,
 * TM_ENOT_FOUND for none, TM_EINTERNAL (logged with `what`) on error. The
 * caller resets or finalizes st. */
int sq_step_one(sqlite3 *db, sqlite3_stmt *st, const char *what);
/* Prepares a statement on db; TM_EINTERNAL (logged with the SQL) when it cannot. */
int sq_prepare(sqlite3 *db, const char *sql, sqlite3_stmt **st);
/* Runs a statement to completion (no rows expected), then resets it and
 * clears its bindings: 0, TM_ECONFLICT on a unique key, else TM_EINTERNAL
 * (logged). */
int sq_step_done(sqlite3 *db, sqlite3_stmt *st);
/* sq_step_done for a statement whose every parameter is bound before each
 * step (a task's row, an event): the bindings are left, since clearing a
 * row's 56 costs more than the next binds overwriting them. */
int sq_step_bound(sqlite3 *db, sqlite3_stmt *st);
/* Binds text (copied), or NULL when v is. */
void sq_bind_text(sqlite3_stmt *st, int at, const char *v);
/* Binds row's first `max` fields (all: SIZE_MAX) to ?1, ?2, ..., as
 * `fields` says (store_int.h). */
void sq_bind_fields(sqlite3_stmt *st, const struct store_field *fields, size_t max,
                    const void *row);
/* Runs a one-value statement (?1, if it has one, is a) once on db: *v is
 * 0 when it gives NULL or no row. 0, or TM_EINTERNAL (logged). */
int sq_scalar(sqlite3 *db, const char *sql, int64_t a, int64_t *v);
/* Runs st, a "due" statement (?1 now, ?2 max) that selects ids, into
 * ids[0..*n) and resets it. 0, or TM_EINTERNAL (logged). */
int sq_read_ids(sqlite3 *db, sqlite3_stmt *st, int64_t now, char (*ids)[ID_LEN + 1], size_t max,
                size_t *n);
/* Column `at` as a string of its own, or NULL for NULL. */
char *sq_col_dup(sqlite3_stmt *st, int at);
/* Reads the columns from `at` on into row's fields, as `fields` says (store_int.h). */
void sq_read_fields(sqlite3_stmt *st, int at, const struct store_field *fields, void *row);
/* Steps st to its end, each row read as sq_read_fields does into a new
 * array of *n structs of `size` bytes, which it returns (NULL for none;
 * the caller frees it). *rc: 0, or TM_EINTERNAL when a step failed. */
void *sq_read_rows(sqlite3_stmt *st, const struct store_field *fields, size_t size, size_t *n,
                   int *rc);

sqlite3 *sq_writer_db(struct store *s);
/* A reader connection (NULL when none can be opened); give it back with sq_reader_return. */
sqlite3 *sq_reader_borrow(struct store *s, void **conn);
void sq_reader_return(struct store *s, void *conn);
struct sq_events **sq_events_slot(struct store *s);
/* The retention limits of store_options (the segments' size follows them). */
void sq_events_limits(struct store *s, int64_t *max_count, int64_t *max_age_ms);
/* The writer's transaction was rolled back: what it knew of the log may
 * be stale. */
void sq_events_rolled_back(struct store *s);
void sq_events_close(struct store *s);

int sq_events_append(struct store *s, struct store_event *evs, size_t n, size_t *deliveries);
int sq_events_prune_info(struct store *s, int64_t before_at, struct store_prune_info *out);
int sq_events_delete(struct store *s, int64_t *through, int64_t *deleted);
/* The order deliveries are claimed in, of the deliveries' alias x: the
 * key of the index webhook_deliveries_hook_due after its webhook_id. */
#define SQ_DELIVERY_ORDER(x)                                        \
    x ".next_at," x ".seq,CASE " x                                  \
      ".event WHEN 'task.spawned' THEN 0 WHEN 'task.updated' THEN " \
      "1 ELSE 2 END"
/* The claim's delivery: the free webhook (of w) whose first due delivery,
 * one probe of webhook_deliveries_hook_due each, comes first. ?1 now; the
 * caller may add "AND w.id NOT IN (...)" before SQ_DELIVERY_CLAIM_TAIL. */
#define SQ_DELIVERY_CLAIM_HEAD                                                 \
    "FROM webhooks w JOIN webhook_deliveries d ON d.id=(SELECT x.id FROM"      \
    " webhook_deliveries x WHERE x.webhook_id=w.id AND x.status='pending' AND" \
    " x.next_at<=?1 ORDER BY " SQ_DELIVERY_ORDER("x") " LIMIT 1) WHERE w.busy_until<=?1"
#define SQ_DELIVERY_CLAIM_TAIL " ORDER BY " SQ_DELIVERY_ORDER("d") " LIMIT 1"
int sq_delivery_claim(struct store *s, int64_t now, const char *const *skip, size_t nskip,
                      int64_t busy_until, struct webhook_delivery **out);
int sq_webhook_insert(struct store *s, const struct webhook *w);
int sq_webhook_count(struct store *s, const char *ns, int64_t *n);
int sq_webhook_delete(struct store *s, const char *ns, const char *id);
int sq_webhook_update(struct store *s, const char *ns, const char *id, struct webhook *w,
                      int64_t now);
int sq_delivery_update(struct store *s, const struct webhook_delivery *d);
int sq_events_read(struct store *s, const char *ns, const char *task_id, int64_t after, int limit,
                   size_t max_bytes, struct event_page *out);
int sq_events_head(struct store *s, int64_t *head, int64_t *pruned_through);
int sq_webhooks_list(struct store *s, const char *ns, const char *id, struct webhook **out,
                     size_t *n);
int sq_deliveries_page(struct store *s, const char *webhook_id, const struct delivery_page *page,
                       int limit, struct webhook_delivery **out, size_t *n);
int sq_deliveries_next_at(struct store *s, int64_t *at);

/* store_sqlite_docs.c */
int sq_doc_write(struct store *s, enum store_doc_kind k, const struct store_doc *d, bool insert);
int sq_doc_load(struct store *s, enum store_doc_kind k, const char *ns, const char *key,
                struct store_doc *out);
int sq_doc_delete(struct store *s, enum store_doc_kind k, const char *ns, const char *id);
int sq_doc_name_owner(struct store *s, enum store_doc_kind k, const char *ns, const char *name,
                      char id[ID_LEN + 1]);
int sq_sched_due(struct store *s, int64_t now, char (*ids)[ID_LEN + 1], size_t max, size_t *n);
int sq_sched_next_at(struct store *s, int64_t *at);
int sq_fire_insert(struct store *s, const char *sched_id, const struct schedule_fire *f);
int sq_fire_exists(struct store *s, const char *sched_id, int64_t slot);
int sq_sched_runs(struct store *s, const char *sched_id, bool writer, size_t max,
                  char (*ids)[ID_LEN + 1], size_t *n);
int sq_fires_prune(struct store *s, int64_t before, int keep, int max, int64_t *deleted);
int sq_doc_get(struct store *s, enum store_doc_kind k, const char *ns, const char *key,
               struct store_doc *out);
int sq_doc_list(struct store *s, enum store_doc_kind k, const char *ns, struct store_doc **out,
                size_t *n);
int sq_fires_list(struct store *s, const char *sched_id, int limit, struct schedule_fire **out,
                  size_t *n);

#endif
