/*
 * store: the one interface to task storage.
 *
 * Backends sit behind an ops table (store_int.h) and are picked from the
 * URL: `sqlite:PATH` or `postgres://...` (several servers may share one
 * PostgreSQL database). Callers never see SQL.
 *
 * Reads are synchronous, from any thread, and see every committed write.
 *
 * Writes are asynchronous operations (struct store_op) handed to one writer
 * thread, which applies a whole queue of them in one transaction and one
 * fsync (group commit), then calls each op's `done` on the writer thread.
 * A write's `done` is called only once the change is durable (unless the
 * store was opened relaxed), so a 2xx reply sent from it is a promise.
 * `done` must be quick and must not call back into the store synchronously
 * (it typically resumes a suspended HTTP connection).
 *
 * Claims and watches may park: a claim with a wait waits inside the writer
 * until a task becomes ready in its queue or its deadline passes; a watch
 * waits until the task's version passes the one given. Both are finished by
 * the writer and are not durable writes unless a claim succeeds.
 *
 * Ownership: an op's inputs are borrowed until `done`; its outputs (task,
 * tasks) belong to the op and are freed by store_op_release.
 */
#ifndef TASKMILL_STORE_H
#define TASKMILL_STORE_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../common/buf.h"
#include "../common/err.h"
#include "../common/task.h"

struct store;

#define STORE_EVENT_TASK_MAX_BYTES (64 * 1024) /* store_options.event_task_max_bytes */

struct store_options {
    bool relaxed; /* commit without waiting for fsync */
    /* SQLite, a relaxed store: flush the commits acknowledged unflushed at
     * most this long after them, from a thread of its own (0: the default,
     * 200; <0: never, the operating system writes them back when it does). */
    int64_t relaxed_flush_ms;
    /* SQLite: keep the database to this process (SQLite's "unix-excl"): its
     * transactions lock in memory, with no system call; no other process
     * can open the file while the store is open (docs/storage.md). */
    bool sqlite_exclusive;
    /* SQLite: this process serves the file (`taskmill serve`). Another
     * store opened so is refused while this one is open, since what a
     * server keeps in memory (the read cache, deliveries in flight) holds
     * only while it alone writes the file. Others (the token commands)
     * open it beside the server. */
    bool sole_server;
    /* A command's store (the token commands), beside a server: it applies
     * the ops it is given and does none of the writer's own work (expired
     * leases, tasks that came due, retention, schedules), which is the
     * server's, by the server's settings, not this store's defaults. */
    bool tool;
    int64_t sweep_max_ms;      /* longest sleep of the writer between sweeps (default 1000) */
    int64_t events_max_age_ms; /* event retention by age (default 7 days; <0 = keep) */
    int64_t events_max_count;  /* event retention by count (default 1000000; <0 = keep) */
    /* Size caps the writer enforces (0: the default). */
    size_t event_task_max_bytes; /* task JSON an event carries (64 KiB; larger is reduced) */
    int attributes_max_keys;     /* keys of a task's attributes (1000) */
    size_t attributes_max_bytes; /* a task's attributes as JSON text (256 KiB) */
    int webhooks_max;            /* webhooks per namespace (100) */
    /* How long one list query may run on a reader (5000; <0: no limit):
     * past it the backend stops it and the list fails TM_EQUERY_TIMEOUT. */
    int64_t query_timeout_ms;
    /* Finished (completed, failed, cancelled) tasks unchanged this long are
     * deleted by the writer, in small steps (0: kept for ever). */
    int64_t finished_max_age_ms;
    /* Bytes of rendered tasks kept for reads (store_task_render), on a
     * store with one writer (SQLite): 0 the default (64 MiB), <0 none. */
    int64_t read_cache_bytes;
    /* Turns a v1 submit body into a task (the server's decoder), for the
     * tasks schedules launch on the writer thread. NULL: schedules do not
     * fire (their slots wait for a server that can). */
    int (*make_task)(void *cls, json_t *body, const char *ns, struct task **out,
                     struct tm_error *e);
    void *make_task_cls;
};

int store_open(const char *url, const struct store_options *opt, struct store **out,
               struct tm_error *e);
/* The store URL as it may be shown (logs, messages) into out: a password
 * in its userinfo ("postgres://u:secret@h" -> "u:***@h") or in a
 * `password=` parameter ("?password=secret", as libpq takes it) becomes
 * "***". Truncated to fit n. */
void store_url_redact(const char *url, char *out, size_t n);
/* Finishes queued ops, answers parked ones as unavailable and stops the
 * writer; later submits are answered unavailable at once. Idempotent. */
void store_stop(struct store *s);
/* Stops (if not yet) and frees. NULL is fine. */
void store_close(struct store *s);
const char *store_backend_name(const struct store *s);

/* ---- Reads: synchronous, any thread. `ns` NULL means every namespace. ---- */

/* Loads one task. TM_ENOT_FOUND when absent or in another namespace. */
int store_task_get(struct store *s, const char *ns, const char *id, struct task **out,
                   struct tm_error *e);
/* Loads one task as store_task_get does and appends render(task) to out.
 * On a store with one writer the bytes are kept (read_cache_bytes), and a
 * later call for the same task and render, the task unchanged since,
 * appends them without reading the database (docs/storage.md). render
 * must depend on the task alone. */
int store_task_render(struct store *s, const char *ns, const char *id,
                      void (*render)(struct buf *b, const struct task *t), struct buf *out,
                      struct tm_error *e);

struct filter_expr; /* common/filter.h */

/* A sort key of a list (task_filter.sort). */
enum task_sort_key {
    TASK_SORT_ID,
    TASK_SORT_CREATED_AT,
    TASK_SORT_UPDATED_AT,
    TASK_SORT_NAME,
    TASK_SORT_TYPE
};
#define TASK_SORT_MAX 4
struct task_sort {
    enum task_sort_key key;
    bool desc; /* a null name sorts last either way */
};

struct task_filter {
    const char *ns;
    unsigned phases; /* bit per enum task_phase; 0 = any */
    const char *type, *queue, *parent_id, *name_prefix;
    /* Only ids that start with id_prefix (lowercase hex, "" = any): the range
     * [id_prefix, id_prefix_end), id_prefix_end being the prefix with its last
     * character one higher, so the primary key's index serves it. */
    char id_prefix[ID_LEN + 1], id_prefix_end[ID_LEN + 1];
    /* A case-insensitive (ASCII) substring of the name, the params' JSON
     * text or the error (a scan: not backed by an index); NULL = none. */
    const char *search;
    /* Only this namespace, within ns (an admin's choice); NULL = any. */
    const char *namespace_eq;
    int64_t created_after, created_before, updated_after, updated_before; /* 0 = open */
    /* And this expression, its leaves' `field` set and values checked
     * (borrowed for the call); NULL = none. */
    const struct filter_expr *expr;
    char cursor[ID_LEN + 1]; /* "" = from the start */
    int64_t offset;          /* rows skipped before the page (offset paging) */
    bool ascending;          /* oldest first; default newest first (id = creation order) */
    bool want_total;         /* fill task_list.total */
    /* With want_total: count at most this many rows (0: exact). Counting
     * is linear in the rows that match; a bound keeps it cheap. */
    int64_t total_max;
    /* Sort keys, most significant first; nsort 0 = by id as `ascending` says.
     * The id breaks ties in the last key's direction. With nsort > 0 the
     * cursor is ignored: page with offset. */
    struct task_sort sort[TASK_SORT_MAX];
    int nsort;
    int limit;
};

struct task_list {
    struct task **tasks;
    size_t n;
    bool more;     /* another page follows; its cursor is the last task's id */
    int64_t total; /* with want_total: rows matching, ignoring cursor, offset and limit */
    /* More than total_max rows match: total is total_max. */
    bool total_capped;
};

int store_task_list(struct store *s, const struct task_filter *f, struct task_list *out,
                    struct tm_error *e);
void task_list_release(struct task_list *l);

struct queue_counts {
    char *queue;
    int64_t phase[TASK_PHASE_COUNT];
    int64_t paused;
    struct queue_settings settings; /* as configured, or the defaults */
    bool configured;
};
/* Per queue and phase, with each queue's settings; the queue `default` and
 * every configured queue are always listed. Caller frees with queue_counts_free. */
int store_queue_counts(struct store *s, const char *ns, struct queue_counts **out, size_t *n,
                       struct tm_error *e);
void queue_counts_free(struct queue_counts *q, size_t n);
int store_ping(struct store *s, struct tm_error *e);
/* Why the store refuses every write now (the message its refused ops'
 * 503s carry: a failed sync until a restart, a read-only database until it
 * takes writes again), or NULL when it takes them. Static; any thread. */
const char *store_refusing(struct store *s);

/*
 * What happened in a queue, per minute (kept STORE_STATS_KEEP_MINUTES): the
 * tasks submitted, completed and failed (for good), and the queue latency
 * of each claim (from when the task became ready to its claim).
 */
#define STORE_STATS_KEEP_MINUTES (2 * 24 * 60)
struct queue_stat {
    int64_t minute; /* wall ms / 60000 */
    int64_t submitted, completed, failed;
    int64_t latency_sum, latency_n, latency_max; /* ms */
};
/* A queue's minutes in [from, to), oldest first, summed over the nodes and,
 * with ns NULL, the namespaces; minutes with nothing are left out. */
int store_queue_stats(struct store *s, const char *ns, const char *queue, int64_t from_minute,
                      int64_t to_minute, struct queue_stat **out, size_t *n, struct tm_error *e);

/* ---- Writes ---- */

enum store_op_kind {
    STORE_OP_CREATE, /* tasks[0..ntasks): all or none; idempotency by key */
    STORE_OP_CLAIM,
    STORE_OP_HEARTBEAT,
    STORE_OP_COMPLETE,
    STORE_OP_FAIL,
    STORE_OP_RELEASE,
    STORE_OP_CANCEL,
    STORE_OP_RETRY,
    STORE_OP_PAUSE,
    STORE_OP_RESUME,
    STORE_OP_DELETE,
    STORE_OP_WATCH,          /* parks until the task's version > version, or deadline */
    STORE_OP_QUEUE_SET,      /* queue's settings := queue_settings */
    STORE_OP_WEBHOOK_ADD,    /* webhook: inserted; its id is set by the store */
    STORE_OP_WEBHOOK_DELETE, /* id: removed with its deliveries */
    /* id (in ns unless NULL): webhook->set's fields := webhook's; the
     * webhook as stored after is written back into *webhook. */
    STORE_OP_WEBHOOK_UPDATE,
    STORE_OP_DELIVERY_SET, /* delivery: the outcome of an attempt; frees its webhook */
    /* Takes the next due delivery of a webhook that no node is sending to
     * (none of skip[0..nskip)), marking that webhook busy for lease_ms;
     * claimed and claimed_delivery say what came (store_op_release frees it). */
    STORE_OP_DELIVERY_CLAIM,
    STORE_OP_TOKEN_CREATE, /* token: inserted (store_tokens.c) */
    STORE_OP_TOKEN_REVOKE, /* id: the token's id; revoked now (a repeat is fine) */
    STORE_OP_TOKEN_PURGE,  /* revoked and expired tokens deleted; fired := how many */
    STORE_OP_RUN_NOW,      /* id: a waiting task is due now (Scene7 executeJob); else 409 */
    /* id: an operator's edit (SailPoint PATCH), all or nothing: progress
     * (has_progress) and/or the end of the task with finish_status at
     * finish_at (0 = now; task_finish), or with a terminal task and no
     * finish_status, its completed_at := finish_at. */
    STORE_OP_FINISH,
    /* queue: paused := queue_settings.paused (its other settings stay). */
    STORE_OP_QUEUE_PAUSE,
    /* doc_kind, doc: a definition or schedule created (flag; the store sets
     * doc->id) or replaced (by doc->id, in ns); a name taken is 409.
     * A schedule's next fire is computed here; its state is kept. */
    STORE_OP_DOC_PUT,
    STORE_OP_DOC_DELETE,     /* doc_kind, id: removed (a schedule's fires with it) */
    STORE_OP_SCHED_PAUSE,    /* id: paused := flag, with note */
    STORE_OP_SCHED_TRIGGER,  /* id: launch one run now (kind trigger); task set */
    STORE_OP_SCHED_BACKFILL, /* id: fire each slot in [from_ms, to_ms) not fired yet */
};

struct webhook;
struct webhook_delivery;
enum store_doc_kind { STORE_DOC_DEFINITION, STORE_DOC_SCHEDULE };

#define STORE_CLAIM_MAX_TYPES 16

struct store_op {
    enum store_op_kind kind;
    const char *ns;      /* scope; NULL = any namespace */
    const char *actor;   /* who asks (a token id, "open"), kept in its events; NULL = none */
    char id[ID_LEN + 1]; /* the task acted on */

    /* CREATE: taken over by the op (freed by store_op_release). */
    struct task **tasks;
    size_t ntasks;

    /* CLAIM */
    const char *queue, *worker;
    const char *types[STORE_CLAIM_MAX_TYPES];
    int ntypes;
    int64_t lease_ms;
    int64_t deadline_ms; /* CLAIM and WATCH: monotonic ms; 0 = no wait */
    /* CLAIM that parks: whether no one waits for its answer any more (its
     * client has gone), asked on the writer thread just before a task is
     * handed to it and again once that commit is done; gone_cls is the
     * caller's. A claim found gone before is answered 503 with no task;
     * one found gone after has `withdrawn` set. NULL: never asked. */
    bool (*gone)(const struct store_op *op);
    void *gone_cls;

    /* HEARTBEAT / COMPLETE / FAIL / RELEASE */
    const char *lease_token;
    struct task_progress_update progress;
    bool has_progress;
    json_t *items, *messages, *attributes; /* borrowed, validated, or NULL */
    json_t *result, *returns;              /* COMPLETE (result also on FAIL) */
    bool warning;                          /* COMPLETE */
    const char *error;                     /* FAIL */
    bool retryable;                        /* FAIL */
    enum task_status finish_status;        /* FINISH; TASK_STATUS_NONE = no end */
    int64_t finish_at;                     /* FINISH */

    /* WATCH */
    int64_t version;

    /* QUEUE_SET (with queue) */
    struct queue_settings queue_settings;

    /* WEBHOOK_ADD / WEBHOOK_UPDATE / DELIVERY_SET: borrowed. */
    struct webhook *webhook;
    const struct webhook_delivery *delivery;

    /* TOKEN_CREATE: borrowed. */
    const struct token *token;

    /* DELIVERY_CLAIM: webhook ids to leave out (borrowed). */
    const char *const *skip;
    size_t nskip;

    /* DOC_PUT (borrowed; its id is set on create), SCHED_*: the schedule after. */
    enum store_doc_kind doc_kind;
    struct store_doc *doc;
    bool flag;              /* SCHED_PAUSE: paused; DOC_PUT: create; DELETE: retention's */
    const char *note;       /* SCHED_PAUSE */
    int64_t from_ms, to_ms; /* SCHED_BACKFILL */
    int64_t fired, skipped; /* SCHED_BACKFILL: slots fired, slots already fired before;
                             * TOKEN_PURGE: fired = tokens deleted */

    /* Outputs, valid in done(). */
    struct tm_error err; /* err.code 0 on success */
    struct task *task;   /* the task after the change (CREATE: tasks[0]) */
    bool created;        /* CREATE: false when an idempotent repeat */
    bool claimed;        /* CLAIM: false when nothing came in time */
    bool changed;        /* QUEUE_PAUSE: the queue was not paused (or was) before */
    /* CLAIM: claimed, but its `gone` said so once the claim had committed:
     * the task is leased to no one who will hear of it, and the caller
     * should give it back (a RELEASE with new_lease_token). */
    bool withdrawn;
    char new_lease_token[ID_LEN + 1];
    struct webhook_delivery *claimed_delivery; /* DELIVERY_CLAIM */
    /* The v1 JSON of a task the op changed, as its event rendered it (the
     * first task the op changed, at its last change; whole, not reduced),
     * or NULL: store_op_write_task sends it for that task and version. */
    char *task_json;
    char task_json_id[ID_LEN + 1];
    int64_t task_json_version;

    void (*done)(struct store_op *op);
    void *udata;

    /* Private to the store. */
    struct store_op *next;
    bool parked;
    bool park;      /* wants to park once its batch commits */
    bool taken;     /* a parked claim served by the running batch */
    bool gone_seen; /* a parked claim whose `gone` said so: answered, no task */
    /* store_op_cancel: when set, a parked op is answered with this error. */
    _Atomic int cancel_code;
    char cancel_message[96];
};

void store_op_init(struct store_op *op, enum store_op_kind kind);
/* Inits op as a STORE_OP_CREATE of the one task t (which the op takes) in ns. */
void store_op_init_create(struct store_op *op, const char *ns, struct task *t);
/* Frees the op's outputs and taken inputs; the op itself is the caller's. */
void store_op_release(struct store_op *op);
/* Writes t's v1 JSON (task_json_write): the op's own render of it when
 * that is of t's id and version (op->task_json), else rendered here. */
void store_op_write_task(struct buf *b, const struct store_op *op, const struct task *t);
/* Queues the op for the writer. `done` is always called exactly once. */
void store_submit(struct store *s, struct store_op *op);
/* Queues ops[0..n) together: the writer takes them in one batch, one after
 * another, with no other op between (a batched claim's first op waits only
 * if the others, seeing the same tasks, found none either). */
void store_submit_list(struct store *s, struct store_op *const *ops, size_t n);
/* Submits and waits for done (for tools and tests). Returns op->err.code. */
int store_run(struct store *s, struct store_op *op);
/* Submits ops[0..n) at once (their writes share group commits) and waits
 * until every one is done; each op's outcome is in its err. */
void store_run_many(struct store *s, struct store_op *ops, size_t n);
/* Asks the writer to answer a waiting op (a parked claim or watch) at once
 * with error `code` and `message` (e.g. its token was revoked); one that
 * parks later is answered as it parks. No effect on an op that does not
 * wait. Any thread; the caller keeps op alive until its done() as always. */
void store_op_cancel(struct store *s, struct store_op *op, int code, const char *message);

/* Counters for /metrics. */
struct store_stats {
    uint64_t batches, ops, commits_failed, sweeps, leases_expired, parked_claims, parked_watches;
    uint64_t events_appended, events_pruned, event_seq, events_pruned_through;
    uint64_t tasks_pruned;    /* finished tasks retention deleted (not another node) */
    uint64_t batch_retries;   /* batches applied again after a serialization failure */
    uint64_t feed_events;     /* events read back from the log by the feed (shared backends) */
    uint64_t feed_bare;       /* of them, read without their task JSON (no one needed it) */
    uint64_t feed_wakeups;    /* announcements from other nodes */
    uint64_t feed_errors;     /* feed reads or listens that failed */
    uint64_t schedule_fires;  /* slots that schedules fired (a task, a skip or an error) */
    uint64_t schedule_missed; /* slots past the catch-up window, not fired */
    /* Passes that found a due schedule's stored body unreadable. */
    uint64_t schedule_unreadable;
    /* SQLite, a relaxed store: flushes of the WAL by its timer, and commits
     * acknowledged and not flushed yet (store_options.relaxed_flush_ms). */
    uint64_t relaxed_flushes, unflushed_commits;
    /* store_task_render: reads answered from kept renders, reads that were
     * not, and what is kept now (all 0 without a read cache). */
    uint64_t read_cache_hits, read_cache_misses, read_cache_entries, read_cache_bytes;
    /* PostgreSQL: other nodes' writer sessions this node's writer ended for
     * holding what it waited for while they waited on their stalled node. */
    uint64_t pg_stalled_ended;
    /* Shared backends: how far the database's clock is ahead of this node's
     * (ms; negative: behind), as last measured, and whether it was. */
    int64_t clock_offset_ms;
    bool clock_measured;
};
void store_get_stats(struct store *s, struct store_stats *out);

/* ---- The event log (store_events.c; docs/events.md) ---- */

/*
 * Every change to a task appends one event, in the transaction of the
 * change, with a global strictly increasing `seq`. Kinds (stable strings):
 *   task.created                  submitted
 *   task.pending .. task.cancelled the phase changed (one kind per phase)
 *   task.progress                 progress, items or attributes changed, or
 *                                 a parent's counts moved with a child
 *   task.message                  messages were logged (maybe with progress)
 *   task.lease                    a heartbeat only extended the lease
 *   task.paused, task.resumed     the paused flag changed
 *   task.deleted                  removed; `task_json` is its last state
 * `cause` names what did it: create, claim, heartbeat, complete, fail,
 * release, cancel, retry, pause, resume, delete, due, lease_expired, child.
 */
struct store_event {
    int64_t seq, at, version;
    char kind[24];
    char cause[16];
    char task_id[ID_LEN + 1];
    char *ns, *queue, *type;
    enum task_phase phase;
    unsigned hooks;  /* Livepeer webhook events it is delivered as (WEBHOOK_* bits) */
    char *task_json; /* the task's v1 JSON after the change */
    char actor[24];  /* the token that caused it, "open" in open mode; "" = the server */
    /* Inside the store only. Writer: what the log stores, the part of
     * task_json from "phase" on (task_json_join), or NULL to store it
     * whole. Readers: a whole JSON of the same task to join a stored part
     * with, or NULL; store_events_resolve consumes it. */
    char *stored, *base;
};
void store_event_release(struct store_event *ev);

/* What one commit appended, given to the listener. */
struct store_commit {
    const struct store_event *events; /* in seq order; borrowed for the call */
    size_t nevents;
    size_t deliveries; /* webhook deliveries queued by this commit */
};
/*
 * Sets the one function called after every commit that appended events,
 * in seq order, which is commit order. With one process on the database
 * (SQLite) it runs on the writer thread with each commit's events; with a
 * shared backend (PostgreSQL) it runs on the store's feed thread with the
 * events of every node, read back from the log in order, so each event
 * reaches it exactly once. It must be quick and must not call into the
 * store. Set it before the first write.
 */
void store_set_listener(struct store *s, void (*fn)(void *cls, const struct store_commit *c),
                        void *cls);
/*
 * Lets a shared backend's feed ask, before it reads each page of the log,
 * whether the listener needs the task JSON of other nodes' events
 * (called with the listener's cls; it must be quick and must not call into
 * the store). While it answers false the feed reads the log without it,
 * and such events reach the listener with task_json NULL; the listener
 * must then take them as a gap it reads back from the store if it has
 * come to need them (event_hub.c). Unset, every event carries its JSON.
 */
void store_set_listener_needs(struct store *s, bool (*needs_json)(void *cls));

struct event_page {
    struct store_event *events;
    size_t n;
    int64_t pruned_through; /* events with seq <= this are gone (retention) */
    int64_t head;           /* the last seq committed when read */
    bool more;              /* stopped by max_bytes: events may follow before head */
};
/*
 * Reads up to `limit` events with seq > after, oldest first, in one read
 * transaction (so pruned_through and head agree with the events), and
 * stops after the event that brings their task JSON to `max_bytes` (0: no
 * byte bound), so a page's memory is bounded by max_bytes plus one event.
 * `ns` and `task_id` narrow it (NULL = any). Caller releases the page.
 */
int store_events_read(struct store *s, const char *ns, const char *task_id, int64_t after,
                      int limit, size_t max_bytes, struct event_page *out, struct tm_error *e);
void event_page_release(struct event_page *p);
/* The last committed seq and the retention mark, as one read. */
int store_events_head(struct store *s, int64_t *head, int64_t *pruned_through, struct tm_error *e);

/* ---- Webhooks (store_events.c) ---- */

/* Livepeer event names a webhook may ask for; stored as strings. */
enum webhook_event_bit {
    WEBHOOK_SPAWNED = 1,
    WEBHOOK_UPDATED = 2,
    WEBHOOK_COMPLETED = 4,
    WEBHOOK_FAILED = 8,
};
#define WEBHOOK_EVENT_COUNT 4
const char *webhook_event_name(int index); /* "task.spawned" .. for bit 1 << index */
int webhook_event_parse(const char *name); /* the bit, or 0 */

struct webhook {
    char id[ID_LEN + 1];
    char *ns; /* NULL = every namespace */
    char *name;
    char *url;
    char *secret; /* NULL = deliveries are not signed */
    unsigned events;
    int64_t created_at;
    unsigned set; /* STORE_OP_WEBHOOK_UPDATE: the fields it sets (WEBHOOK_SET_*) */
};
enum webhook_set_bit {
    WEBHOOK_SET_URL = 1,
    WEBHOOK_SET_EVENTS = 2,
    WEBHOOK_SET_SECRET = 4, /* secret NULL: deliveries are no longer signed */
    WEBHOOK_SET_NAME = 8,
};
void webhook_release(struct webhook *w);
void webhooks_free(struct webhook *w, size_t n);

struct webhook_delivery {
    char id[ID_LEN + 1];
    char webhook_id[ID_LEN + 1];
    int64_t seq;
    char event[24];  /* Livepeer name */
    char status[12]; /* pending, delivered, failed */
    int64_t attempts, next_at, last_status, created_at, updated_at;
    char *last_error;
    /* Filled by STORE_OP_DELIVERY_CLAIM only. */
    char *url, *secret;
    struct store_event ev;
    /* The webhook's busy_until the claim set: on a shared database the
     * attempt's outcome is recorded, and the webhook freed, only while it
     * still holds (another node claims the webhook once it has passed). */
    int64_t claimed_until;
};
void deliveries_free(struct webhook_delivery *d, size_t n);

/* Webhooks of a namespace (NULL = all); `id` non-NULL reads that one (TM_ENOT_FOUND). */
int store_webhooks_list(struct store *s, const char *ns, const char *id, struct webhook **out,
                        size_t *n, struct tm_error *e);
/* A webhook's deliveries, newest first, at most limit. */
int store_deliveries_list(struct store *s, const char *webhook_id, int limit,
                          struct webhook_delivery **out, size_t *n, struct tm_error *e);
/* Where a page of a webhook's deliveries starts: after the delivery at
 * (after_seq, after_event) in the list's order, or at the newest when
 * after_seq < 0; only those with this status when status is non-NULL. */
struct delivery_page {
    const char *status; /* "pending", "delivered", "failed" or NULL */
    int64_t after_seq;  /* < 0: from the newest */
    char after_event[24];
};
/* store_deliveries_list from where page says (NULL: the newest, any status). */
int store_deliveries_page(struct store *s, const char *webhook_id, const struct delivery_page *page,
                          int limit, struct webhook_delivery **out, size_t *n, struct tm_error *e);
/* When the next pending delivery is due; 0 when none. */
int store_deliveries_next_at(struct store *s, int64_t *at, struct tm_error *e);

/* ---- Definitions and schedules (store_schedules.c; docs/schedules.md) ---- */

/* A definition or a schedule: its JSON as checked (common/schedule.h). */
struct store_doc {
    char id[ID_LEN + 1];
    char *ns, *name;
    char *body;      /* JSON object text */
    char *state;     /* schedules: what firing keeps (JSON object text) */
    int64_t next_at; /* schedules: wall ms of the next fire; 0 = none (paused, ended) */
    int64_t created_at, updated_at;
};
void store_doc_release(struct store_doc *d);
void store_docs_free(struct store_doc *d, size_t n);
/* By id (32 hex) or by name, in ns (NULL = any). TM_ENOT_FOUND when absent. */
int store_doc_get(struct store *s, enum store_doc_kind k, const char *ns, const char *key,
                  struct store_doc *out, struct tm_error *e);
/* Every one of a namespace (NULL = all), by name. */
int store_doc_list(struct store *s, enum store_doc_kind k, const char *ns, struct store_doc **out,
                   size_t *n, struct tm_error *e);

/* A schedule's runs not finished yet, at most max: the tasks it launched
 * (tasks.schedule_id), oldest first, then those its state remembers that
 * name no schedule (a node of the version before launched them), each read
 * to see it unfinished. A read: what a batch has not committed is not seen. */
int store_schedule_runs(struct store *s, const struct store_doc *d, size_t max,
                        char (*ids)[ID_LEN + 1], size_t *n, struct tm_error *e);

/* One fired slot of a schedule (the unique key that makes it fire once). */
struct schedule_fire {
    int64_t slot, at;
    char kind[12];            /* slot, catchup, trigger, backfill */
    char outcome[24];         /* created, skipped, cancelled_previous, error */
    char task_id[ID_LEN + 1]; /* "" when no task was made */
};
/* A schedule's fires, newest slot first, at most limit. */
int store_fires_list(struct store *s, const char *sched_id, int limit, struct schedule_fire **out,
                     size_t *n, struct tm_error *e);
/* ---- API tokens (store_tokens.c; docs/security.md) ---- */

struct token;
/* Loads a token by id, revoked and expired ones too. TM_ENOT_FOUND when absent.
 * A read: a revocation committed before the call is seen. */
int store_token_get(struct store *s, const char *id, struct token **out, struct tm_error *e);
/* Every token, oldest first. The caller frees them with tokens_free. */
int store_token_list(struct store *s, struct token ***out, size_t *n, struct tm_error *e);
/* Whether the store holds any token, revoked and expired ones too: once
 * one has existed the server never falls back to open mode by itself
 * (only `taskmill token purge` deleting every token reopens it). */
int store_token_any(struct store *s, bool *any, struct tm_error *e);

#endif
