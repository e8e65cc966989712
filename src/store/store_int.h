/*
 * store_int: the backend ops table behind store.h. Included only by the
 * files that implement the store (store.c, store_events.c, store_tokens.c,
 * store_sql.c and one file per backend), as curl's vtls_int.h is.
 *
 * Writer-side ops run only on the writer thread, between begin and commit,
 * on the backend's one write connection. Reader-side ops may run on any
 * thread at once; the backend keeps its own reader connections. Every op
 * returns 0 or a negative TM_E code; rows are copied out before return.
 *
 * Several writers (PostgreSQL, `shared` below): every row a write reads
 * through `load`, `claim_next` or `due` is locked until the transaction
 * ends, so two nodes never both act on the same version of a task. A
 * writer op that fails on a serialization failure or a deadlock returns
 * TM_ERETRY: store.c rolls the batch back and applies it again. A lost
 * connection is TM_EUNAVAILABLE (reads too); the backend reconnects by
 * itself on a later call. Any other failure is TM_EINTERNAL, with the
 * backend's own message in the log.
 *
 * Domain logic (which Livepeer events an event is delivered as, retention
 * arithmetic, the filter grammar's SQL, stored enum names) lives in
 * store.c, store_events.c and store_sql.c, shared by every backend.
 */
#ifndef TASKMILL_STORE_INT_H
#define TASKMILL_STORE_INT_H

#include <string.h>

#include "store.h"

/* Not in err.h's table: never reaches a client. A serialization failure or
 * deadlock; the batch is applied again. */
#define TM_ERETRY (-1)

struct store_claim_query {
    const char *ns, *queue;
    const char *const *types;
    int ntypes;
    /* Claims of this very query (namespace, queue, types) the batch still
     * applies, this one included (>= 1): a backend may find that many
     * tasks in one statement and hand them to the next claims of the
     * query in the same transaction (PostgreSQL). A hint: SQLite ignores it. */
    int count;
};

/* What retention needs to know, read in the pruning transaction. */
struct store_prune_info {
    int64_t head;           /* the last seq handed out (0: none yet) */
    int64_t pruned_through; /* every event with seq <= this is gone */
    int64_t aged_through;   /* the highest seq with at < before_at (0: none) */
    int64_t pending_min;    /* the lowest seq a pending delivery needs (0: none) */
    /* A backend whose log is in segments (SQLite) drops whole ones only:
     * `whole` is then set, and whole_through is the last seq of the oldest
     * segment that may go (0: none can). Otherwise (PostgreSQL, or an old
     * segment far larger than the rest) events go by rows, up to any seq. */
    bool whole;
    int64_t whole_through;
};

/* What a batch adds to one queue_stats row (store.c). */
struct store_stat_add {
    char *queue, *ns;
    struct queue_stat st;
};

/* What a batch adds to one task_counts row (store.c): n tasks more (or
 * fewer) of (namespace, queue, phase, paused). */
struct store_count_add {
    char *ns, *queue;
    enum task_phase phase;
    bool paused;
    int64_t n;
};

/* A queue and terminal phase that have tasks (retain_pairs). */
struct retain_pair {
    char *queue;
    enum task_phase phase;
};
void retain_pairs_free(struct retain_pair *v, size_t n);

struct store_backend {
    const char *scheme;  /* "sqlite", "postgres" */
    const char *scheme2; /* another accepted URL scheme ("postgresql"), or NULL */
    /* Other processes may write the same database at once: store.c then
     * learns of commits from the event log (feed_wait + events_read),
     * not only from its own writer. */
    bool shared;
    /* `url` is the whole URL as given (scheme included). Applies the
     * backend's numbered migrations, safely when several nodes start at once. */
    int (*open)(struct store *s, const char *url, const struct store_options *opt,
                struct tm_error *e);
    void (*close)(struct store *s);
    /* Fills the counters of store_stats that the backend keeps (may be NULL). */
    void (*stats)(struct store *s, struct store_stats *out);

    /* ---- Writer thread only. ---- */
    int (*begin)(struct store *s);
    /* As begin, for a transaction whose commit need not be durable at once
     * (retention): it may skip its own flush, as long as a later durable
     * commit makes it durable too and a crash can only undo it whole. */
    int (*begin_lazy)(struct store *s);
    /* TM_ERETRY: the transaction lost a race; it is rolled back already.
     * TM_EUNAVAILABLE: the connection broke during COMMIT, so whether it
     * committed is unknown; the batch is not applied again (its ops answer
     * 503, and a client may retry with its idempotency key). */
    int (*commit)(struct store *s);
    void (*rollback)(struct store *s);
    /* One level of savepoint around an op that may hit a unique key, so a
     * refused op does not poison the batch's transaction. */
    int (*savepoint)(struct store *s);
    int (*savepoint_release)(struct store *s);
    int (*savepoint_rollback)(struct store *s);
    /* Loads and locks (PostgreSQL: FOR UPDATE) a task; TM_ENOT_FOUND when absent. */
    int (*load)(struct store *s, const char *id, struct task **out);
    /*
     * Optional (NULL: none, as on SQLite). Loads and locks ids[0..n) (in
     * any order, repeats allowed) at once, as `load` would one by one, so
     * that the transaction's later loads of them need no statement of their
     * own; an id that names no task stays TM_ENOT_FOUND for them. store.c
     * calls it after begin with the ids the batch's by-id ops will load,
     * again for ops that join the batch, and with the ids `due` returned.
     */
    int (*preload)(struct store *s, const char (*ids)[ID_LEN + 1], size_t n);
    /* TM_ECONFLICT when a unique key (idempotency per namespace) is taken. */
    int (*insert)(struct store *s, const struct task *t);
    /* May be kept and written later in the transaction (PostgreSQL writes
     * a batch's updates in one statement), as long as every later op of
     * the transaction, and its commit, sees it; a failure to write it
     * then fails that op (or the commit) as the update's own would have. */
    int (*update)(struct store *s, const struct task *t);
    int (*remove)(struct store *s, const char *id);
    int (*find_idempotent)(struct store *s, const char *ns, const char *key, char id[ID_LEN + 1]);
    /* Optional (NULL: none, as on SQLite). Takes the locks find_idempotent
     * takes on (ns[i], keys[i]), i < n, all at once in one order every node
     * follows, so that batches sharing keys wait for each other instead of
     * deadlocking. store.c calls it after begin with the keys of the
     * batch's submits, and again for submits that join the batch. */
    int (*lock_keys)(struct store *s, const char *const *ns, const char *const *keys, size_t n);
    /* The next task to claim (pending, not paused, lowest priority, then
     * ready_at, then id), loaded and locked in one statement, skipping rows
     * other transactions hold (SKIP LOCKED); TM_ENOT_FOUND when none. Never
     * a task this transaction has changed since it was found: a backend
     * that keeps candidates (q->count) drops those the batch updated or
     * removed, and all of them once the batch inserts a task or makes one
     * pending. */
    int (*claim_next)(struct store *s, const struct store_claim_query *q, struct task **out);
    /* Ids of tasks whose due time (due_at) is <= now, earliest first, at most
     * max, locked and skipping locked ones. */
    int (*due)(struct store *s, int64_t now, char (*ids)[ID_LEN + 1], size_t max, size_t *n);
    /* The earliest due time, or 0 when none. May run outside a transaction. */
    int (*next_due)(struct store *s, int64_t *at);
    /* A queue's settings and paused flag; TM_ENOT_FOUND when it has no row. */
    int (*queue_get)(struct store *s, const char *queue, struct queue_settings *out);
    /* Sets the retry settings (the row becomes configured); paused stays. */
    int (*queue_put)(struct store *s, const char *queue, const struct queue_settings *q);
    /* Sets paused; a new row gets the default settings and is not configured.
     * *was: whether it was paused before (false without a row), as the
     * row stood when this write took it (another node's write waited for). */
    int (*queue_pause)(struct store *s, const char *queue, bool paused, bool *was);
    /* Adds each entry to the queue_stats row of (queue, ns, minute, node). */
    int (*stats_add)(struct store *s, const char *node, const struct store_stat_add *v, size_t n);
    /* Adds each entry's n to its task_counts row (this writer's own rows
     * on a shared backend). The entries come sorted by namespace, queue,
     * phase and paused, so two writers take the rows' locks in one order. */
    int (*counts_add)(struct store *s, const struct store_count_add *v, size_t n);
    /* Deletes queue_stats rows with minute < before_minute. */
    int (*stats_prune)(struct store *s, int64_t before_minute);

    /* Definitions and schedules (store_schedules.c). `key` is an id or a name. */
    int (*doc_write)(struct store *s, enum store_doc_kind k, const struct store_doc *d,
                     bool insert); /* TM_ECONFLICT: the id or (namespace, name) is taken */
    int (*doc_load)(struct store *s, enum store_doc_kind k, const char *ns, const char *key,
                    struct store_doc *out); /* locked (FOR UPDATE) */
    /* The id of the doc named `name` in namespace ns, by its name alone (not
     * one whose id reads so); TM_ENOT_FOUND when none. */
    int (*doc_name_owner)(struct store *s, enum store_doc_kind k, const char *ns, const char *name,
                          char id[ID_LEN + 1]);
    int (*doc_delete)(struct store *s, enum store_doc_kind k, const char *ns, const char *id);
    /* Schedules with next_at <= now, locked, skipping locked ones. */
    int (*sched_due)(struct store *s, int64_t now, char (*ids)[ID_LEN + 1], size_t max, size_t *n);
    int (*sched_next_at)(struct store *s, int64_t *at); /* 0 when none */
    /* 0 when inserted, TM_ECONFLICT when the slot has fired already. */
    int (*fire_insert)(struct store *s, const char *sched_id, const struct schedule_fire *f);
    int (*fire_exists)(struct store *s, const char *sched_id,
                       int64_t slot); /* 0 or TM_ENOT_FOUND */
    /* The ids of the tasks schedule sched_id launched that are not
     * finished (tasks.schedule_id, phase not terminal), oldest first, at
     * most max: read from the partial index tasks_schedule_runs. On the
     * writer's transaction when `writer` (what the batch wrote included),
     * else on a reader (any thread). */
    int (*sched_runs)(struct store *s, const char *sched_id, bool writer, size_t max,
                      char (*ids)[ID_LEN + 1], size_t *n);
    /* Deletes up to max fire rows recorded before `before` that are not
     * among their schedule's `keep` newest (rows another node holds are
     * skipped); *deleted says how many went. */
    int (*fires_prune)(struct store *s, int64_t before, int keep, int max, int64_t *deleted);

    /* ---- Any thread. ---- */
    int (*get)(struct store *s, const char *ns, const char *id, struct task **out);
    /* SQL from store_sql.c (sql_where / sql_list_tail). */
    int (*list)(struct store *s, const struct task_filter *f, struct task_list *out);
    int (*queue_counts)(struct store *s, const char *ns, struct queue_counts **out, size_t *n);
    /* The queues whose settings set a retention for at least one terminal
     * phase (only name and settings.retention_seconds filled), through a
     * reader. Caller frees with queue_counts_free. */
    int (*queue_retention)(struct store *s, struct queue_counts **out, size_t *n);
    /* Retention (store_prune_finished), through a reader. retain_pairs:
     * the (queue, terminal phase) pairs that have tasks, from task_counts
     * (SQL_RETAIN_PAIRS), in no order; free with retain_pairs_free.
     * retain_list: up to max ids of queue's tasks in phase ph unchanged
     * since before `before`, oldest first, from tasks_retain
     * (SQL_RETAIN_LIST_*). */
    int (*retain_pairs)(struct store *s, struct retain_pair **out, size_t *n);
    int (*retain_list)(struct store *s, const char *queue, enum task_phase ph, int64_t before,
                       size_t max, char (*ids)[ID_LEN + 1], size_t *n);
    /* store_queue_stats: *out is malloc'd (NULL when n is 0). */
    int (*stats_read)(struct store *s, const char *ns, const char *queue, int64_t from_minute,
                      int64_t to_minute, struct queue_stat **out, size_t *n);
    int (*ping)(struct store *s);
    /* Why the store refuses every write now, for the ops it fails (503)
     * and for /readyz (store_refusing); NULL when it takes writes (may be
     * NULL). A static string; any thread. A state only a restart ends
     * also fails ping (SQLite's failed sync); one that ends by itself
     * does not (PostgreSQL read-only). */
    const char *(*refusing)(struct store *s);
    /* The database's clock, Unix ms (shared backends: store_clock_check),
     * with this node's clock just before the query was sent (*sent_ms) and
     * just after its answer came (*got_ms): the round trip of the query
     * alone, without taking or opening a connection or preparing. */
    int (*clock_ms)(struct store *s, int64_t *ms, int64_t *sent_ms, int64_t *got_ms);
    int (*doc_get)(struct store *s, enum store_doc_kind k, const char *ns, const char *key,
                   struct store_doc *out);
    int (*doc_list)(struct store *s, enum store_doc_kind k, const char *ns, struct store_doc **out,
                    size_t *n);
    int (*fires_list)(struct store *s, const char *sched_id, int limit, struct schedule_fire **out,
                      size_t *n);

    /* ---- The event log and webhooks. Writer thread: ---- */
    /*
     * Appends evs[0..n) as one block, once per batch, just before commit:
     * sets evs[i].seq to consecutive numbers after the last seq any writer
     * handed out, and queues one pending delivery for every webhook whose
     * namespace matches (a webhook without one matches all) and that asked
     * for one of the Livepeer events in evs[i].hooks (WEBHOOK_* bits), with
     * the event name stored per row. The numbering must make seq order the
     * commit order across writers (PostgreSQL: a counter row updated in the
     * transaction, so concurrent batches number in turn), so a reader that
     * has seen seq N has seen every seq below it. A shared backend also
     * announces the new head to the other nodes at commit (NOTIFY).
     * The seqs and *deliveries may be set only by the time commit returns
     * (PostgreSQL sends the statement ahead and reads it with the COMMIT):
     * evs and deliveries must stay where they are until then.
     */
    int (*events_append)(struct store *s, struct store_event *evs, size_t n, size_t *deliveries);
    /* Reads the retention state, locking it (PostgreSQL: FOR UPDATE on the
     * meta row) so that two nodes pruning at once take turns. */
    int (*events_prune_info)(struct store *s, int64_t before_at, struct store_prune_info *out);
    /* Deletes the events with seq in (pruned_through, *through], the
     * delivered and failed deliveries with seq <= that, and records it as
     * the new pruned_through (adding *deleted to the pruned total). A
     * backend that drops whole segments stops at the end of the last one
     * that fits and sets *through to it. */
    int (*events_delete)(struct store *s, int64_t *through, int64_t *deleted);
    int (*webhook_insert)(struct store *s, const struct webhook *w);
    /* How many webhooks have exactly this namespace (NULL: those without one). */
    int (*webhook_count)(struct store *s, const char *ns, int64_t *n);
    /* Removes the webhook (scoped to ns unless NULL) with its deliveries;
     * TM_ENOT_FOUND when absent. */
    int (*webhook_delete)(struct store *s, const char *ns, const char *id);
    /*
     * Sets w->set's fields of webhook `id` (in ns unless NULL), fails the
     * pending deliveries of events w->events no longer asks for when
     * WEBHOOK_SET_EVENTS is set (last_error says why, updated_at = now),
     * and reads the webhook back into *w (its strings replaced, set kept);
     * TM_ENOT_FOUND when there is no such webhook.
     */
    int (*webhook_update)(struct store *s, const char *ns, const char *id, struct webhook *w,
                          int64_t now);
    /* Records an attempt's outcome and frees its webhook (busy_until = 0). */
    int (*delivery_update)(struct store *s, const struct webhook_delivery *d);
    /*
     * Takes the first due delivery (pending, next_at <= now; by next_at,
     * seq, then spawned < updated < completed/failed) of a webhook that is
     * not busy (busy_until <= now) and not in skip[0..nskip), locking that
     * webhook's row (SKIP LOCKED) and marking it busy until busy_until, so
     * one delivery per webhook is in flight across every node. Fills *out
     * (one row, with url, secret and the event; the caller frees it with
     * deliveries_free(*out, 1)); TM_ENOT_FOUND when none is due.
     */
    int (*delivery_claim)(struct store *s, int64_t now, const char *const *skip, size_t nskip,
                          int64_t busy_until, struct webhook_delivery **out);
    /* ---- Any thread: ---- */
    /* One read transaction: head, pruned_through and the events agree. */
    int (*events_read)(struct store *s, const char *ns, const char *task_id, int64_t after,
                       int limit, size_t max_bytes, struct event_page *out);
    int (*events_head)(struct store *s, int64_t *head, int64_t *pruned_through);
    int (*webhooks_list)(struct store *s, const char *ns, const char *id, struct webhook **out,
                         size_t *n);
    /* A webhook's deliveries, newest first (seq desc, event desc), at most
     * limit, from where page says (store.h; NULL: the newest, any status). */
    int (*deliveries_page)(struct store *s, const char *webhook_id,
                           const struct delivery_page *page, int limit,
                           struct webhook_delivery **out, size_t *n);
    /* The earliest next_at of a pending delivery, or 0 when none. */
    int (*deliveries_next_at)(struct store *s, int64_t *at);

    /*
     * ---- Shared backends only (NULL otherwise); the feed thread. ----
     * Waits up to timeout_ms for another node's announcement of a new head
     * (LISTEN on a connection of its own; this node's own announcements are
     * passed over: its commits reach the feed from the writer). Returns 0 when one came (*head is
     * the newest announced, or 0 when unknown), TM_ENOT_FOUND on timeout or
     * when feed_interrupt woke it, or an error when the listening connection
     * is lost (it is reopened, and LISTEN issued again, on the next call). A
     * half-open connection must be noticed: probe it when it has been quiet
     * for a while. Either way the caller then reads the log.
     */
    int (*feed_wait)(struct store *s, int timeout_ms, int64_t *head);
    /* Wakes a feed_wait in progress at once (from any thread). */
    void (*feed_interrupt)(struct store *s);
    /* As events_read with no filter and no byte bound, but each event's
     * task_json is NULL: the feed's page while its listener needs no task
     * JSON (store_set_listener_needs), without the stored parts, their
     * bases, or their bytes on the wire. */
    int (*events_read_bare)(struct store *s, int64_t after, int limit, struct event_page *out);

    /* API tokens (store_tokens.c). Writer thread: */
    /* TM_ECONFLICT when the id is taken. */
    int (*token_insert)(struct store *s, const struct token *t);
    /* Sets revoked_at unless already set; TM_ENOT_FOUND when no such token. */
    int (*token_revoke)(struct store *s, const char *id, int64_t now);
    /* Deletes revoked tokens and those expired at now; *deleted := how many. */
    int (*token_purge)(struct store *s, int64_t now, int64_t *deleted);
    /* Any thread: */
    int (*token_get)(struct store *s, const char *id, struct token **out);
    int (*token_list)(struct store *s, struct token ***out, size_t *n);
    int (*token_any)(struct store *s, bool *any);
};

/* The options the store was opened with, defaults filled in (store.c). */
const struct store_options *store_options_of(const struct store *s);

/* Stored enum names (lower case, stable): "success" .. "temperror"; NULL for
 * TASK_STATUS_NONE. Parse answers TASK_STATUS_NONE for NULL or unknown. */
const char *store_status_name(enum task_status st);
enum task_status store_status_parse(const char *name);

/*
 * The task row as every SQL backend stores it: one column per entry, in
 * this order, with the struct task field it holds (store_sql.c). Insert,
 * update and read statements are generated from it, so the row is
 * described once. The last column, due_at, is derived (task_due_at):
 * written, never read back.
 */
enum store_col_kind {
    STORE_COL_TEXT,
    STORE_COL_ID,
    STORE_COL_INT,
    STORE_COL_BOOL,
    STORE_COL_REAL,
    STORE_COL_PHASE,
    STORE_COL_STATUS, /* store_status_name */
    STORE_COL_DUE
};
struct store_col {
    const char *name;
    enum store_col_kind kind;
    size_t off; /* offsetof(struct task, ...) */
    /* Set when the task is created and never changed after: an UPDATE
     * leaves it out where the dialect allows (sql_dialect.update_skips_fixed),
     * so the indexes on it are not rewritten with each write. */
    bool fixed;
};
/* The entry for `name` in a growing list of queues (*qc, *n of *cap), added
 * with the default settings if new: store_queue_counts of every backend. */
struct queue_counts *store_queue_slot(struct queue_counts **qc, size_t *n, size_t *cap,
                                      const char *name);

extern const struct store_col store_task_columns[];
extern const size_t store_task_ncols;

/* A column's value as a backend binds it: NULL, text, an integer or a real. */
struct store_value {
    enum { STORE_VALUE_NULL, STORE_VALUE_TEXT, STORE_VALUE_INT, STORE_VALUE_REAL } kind;
    const char *text; /* borrowed from the task, or static */
    int64_t i;
    double r;
};
/* The value task t stores in column c (store_sql.c), so that every backend
 * writes a row alike. */
struct store_value store_col_value(const struct task *t, const struct store_col *c);
/* Sets the field of column c in t from the row's value v: every backend
 * reads a row alike. A number may come as text (PostgreSQL's rows do). */
void store_col_set(struct task *t, const struct store_col *c, const struct store_value *v);

/*
 * The smaller rows every SQL backend reads (store_sql.c): one entry per
 * column of the SELECT, in order, with the field of the row struct it
 * fills, ended by STORE_FIELD_END; so a row is read alike on every
 * backend, and a column added is added once.
 */
enum store_field_kind {
    STORE_FIELD_END,
    STORE_FIELD_INT,  /* int64_t; NULL reads as 0 */
    STORE_FIELD_DUP,  /* char *, a copy of its own; NULL stays NULL */
    STORE_FIELD_COPY, /* char[size], cut to fit; NULL reads as "" */
};
struct store_field {
    enum store_field_kind kind;
    size_t off, size; /* where the field is in the row struct, and its size */
};
/* id,namespace,name,body,created_at,updated_at,state,next_at */
extern const struct store_field store_doc_fields[];
/* id,webhook_id,seq,event,status,attempts,next_at,last_status,last_error,created_at,updated_at */
extern const struct store_field store_delivery_fields[];
/* slot,at,kind,outcome,task_id */
extern const struct store_field store_fire_fields[];
/* minute and the sums of submitted,completed,failed,latency_sum,latency_n, and max(latency_max) */
extern const struct store_field store_stat_fields[];
/* The first fields of store_doc_fields, which definitions have too:
 * schedules add state and next_at. */
#define STORE_DOC_COMMON_FIELDS 6
/* What updating a delivery writes: id,status,attempts,next_at,last_status,last_error,updated_at */
extern const struct store_field store_delivery_set_fields[];
/* Sets the field f of row from a column's value v, as store_col_set does a task's. */
void store_field_set(void *row, const struct store_field *f, const struct store_value *v);
/* Frees row's DUP fields and sets them to NULL (the rest stay). */
void store_fields_release(void *row, const struct store_field *fields);
/* The value row's field f is written as, as store_col_value is a task's
 * (text borrowed from the row). */
struct store_value store_field_value(const void *row, const struct store_field *f);

/* store_events.c: helpers of the writer (store.c). */
/* Fills ev from the task after a change; ev owns copies. The task JSON is
 * reduced past task_max_bytes (task_json_write_capped; returns whether it
 * was). Sets ev->hooks. */
bool store_event_fill(struct store_event *ev, const struct task *t, const char *kind,
                      const char *cause, int64_t now, size_t task_max_bytes);
/* After a read from the log: makes each event's task_json whole where the
 * row held only the part from "phase" on (store_event.stored), from its
 * base, else the task as stored now (read once for a run of events of one
 * task), else reduced and marked truncated. Any thread; may read the store. */
void store_events_resolve(struct store *s, struct store_event *evs, size_t n);
/* The Livepeer events (WEBHOOK_* bits) an event of this kind is delivered as. */
unsigned store_event_hooks(const char *kind);
/* The kind of the change an op made to t, whose phase was `before` (-1: new). */
const char *store_event_kind(const struct store_op *op, int before, const struct task *t,
                             char buf[24]);
/* What caused the change: the op's verb, or the sweep's reason. */
const char *store_event_cause(const struct store_op *op, int before);
/* Applies a webhook op on the writer; 0, a client error in op->err, or a backend error. */
int store_webhook_apply(struct store *s, struct store_op *op, int64_t now);

/* store_tokens.c: applies a token op on the writer; 0, a client error in
 * op->err, or a backend error. */
int store_token_apply(struct store *s, struct store_op *op, int64_t now);

/* A task changed (by a batch, or another node), and its version after. */
struct store_change {
    char id[ID_LEN + 1];
    int64_t version;
};

/*
 * store_cache.c: rendered tasks kept for the next read (store_task_render),
 * on a store with one writer. get appends a kept render of task id (in ns,
 * unless ns is NULL) by kind (the render function) to out and returns true;
 * either way *gen is the moment to hand to put, which keeps a render read
 * after it unless the task was forgotten since or is being committed. The
 * writer forgets a batch's changes just before its commit (committing) and
 * again after it, before anything of the batch is told.
 */
struct store_cache;
struct store_cache *store_cache_new(size_t max_bytes);
void store_cache_free(struct store_cache *c);
bool store_cache_get(struct store_cache *c, const char *ns, const char *id, const void *kind,
                     struct buf *out, uint64_t *gen);
void store_cache_put(struct store_cache *c, uint64_t gen, const char *ns, const char *id,
                     const void *kind, const char *data, size_t len);
void store_cache_forget(struct store_cache *c, const struct store_change *changed, size_t n,
                        bool committing);
void store_cache_stats(struct store_cache *c, uint64_t *hits, uint64_t *misses, uint64_t *entries,
                       uint64_t *bytes);

/* struct store begins with this; the backend keeps its state in impl. */
struct store_base {
    const struct store_backend *backend;
    void *impl;
};

/* Copies src into dst of size bytes, cut to fit, always terminated: what
 * snprintf(dst, size, "%s", src) does, without its format machinery (three
 * of them an event). */
static inline void store_copy_str(char *dst, size_t size, const char *src) {
    size_t n = strnlen(src, size - 1);
    memcpy(dst, src, n);
    dst[n] = '\0';
}

static inline struct store_base *store_base_of(struct store *s) {
    return (struct store_base *)s;
}

extern const struct store_backend store_sqlite_backend;
extern const struct store_backend store_pg_backend;

/* ---- store.c's writer, for store_schedules.c ---- */
struct batch;
/* Creates t (taken, and freed) inside the running batch, as a submit
 * would; its id into id. 0, or an error in e (a client error) or a backend
 * code (the batch has failed). */
int store_batch_create(struct store *s, struct batch *b, struct task *t, int64_t now,
                       struct tm_error *e, char id[ID_LEN + 1]);
/* Cancels a task inside the batch (nothing when it is finished or gone). */
int store_batch_cancel(struct store *s, struct batch *b, const char *id, int64_t now);
void store_batch_failed(struct batch *b, int rc);
bool store_batch_has_failed(const struct batch *b);
void store_count_schedules(struct store *s, int64_t fires, int64_t missed); /* for /metrics */
void store_count_schedule_unreadable(struct store *s);                      /* for /metrics */
/* Holds schedule `id` back on this node until `until` (wall ms): a schedule
 * it cannot read, left to the nodes that can. Writer thread only; a few
 * are remembered (16), the one held longest ago forgotten first. */
void store_sched_hold(struct store *s, const char *id, int64_t until);
bool store_sched_is_held(struct store *s, const char *id, int64_t now);
/* How far the database's clock was ahead of this node's at its last check
 * (negative: this node is ahead); 0 before one, and on SQLite (one node). */
int64_t store_clock_offset_ms(struct store *s);
int store_make_task(struct store *s, json_t *body, const char *ns, struct task **out,
                    struct tm_error *e);

/* store_schedules.c, called by store.c's writer. */
int store_schedule_apply(struct store *s, struct batch *b, struct store_op *op, int64_t now);
/* Fires every due schedule; returns the earliest next_at left (0: none). */
int64_t store_schedules_fire(struct store *s, struct batch *b, int64_t now);

#endif
