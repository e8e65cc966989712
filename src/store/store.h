/*
 * store: the one interface to task storage.
 *
 * Backends (SQLite now, PostgreSQL later) sit behind an ops table and are
 * picked from the URL (`sqlite:path`). Callers never see SQL.
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

#include "../common/err.h"
#include "../common/task.h"

struct store;

struct store_options {
    bool relaxed;          /* commit without waiting for fsync */
    int64_t sweep_max_ms;  /* longest sleep of the writer between sweeps (default 1000) */
};

int store_open(const char *url, const struct store_options *opt, struct store **out,
               struct tm_error *e);
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

struct task_filter {
    const char *ns;
    unsigned phases;         /* bit per enum task_phase; 0 = any */
    const char *type, *queue, *parent_id, *name_prefix;
    int64_t created_after, created_before, updated_after, updated_before; /* 0 = open */
    char cursor[ID_LEN + 1]; /* "" = from the start */
    bool ascending;          /* oldest first; default newest first */
    int limit;
};

struct task_list {
    struct task **tasks;
    size_t n;
    bool more; /* another page follows; its cursor is the last task's id */
};

int store_task_list(struct store *s, const struct task_filter *f, struct task_list *out,
                    struct tm_error *e);
void task_list_release(struct task_list *l);

struct queue_counts {
    char *queue;
    int64_t phase[TASK_PHASE_COUNT];
    int64_t paused;
};
/* Per queue and phase; the queue `default` is always listed. Caller frees with
 * queue_counts_free. */
int store_queue_counts(struct store *s, const char *ns, struct queue_counts **out, size_t *n,
                       struct tm_error *e);
void queue_counts_free(struct queue_counts *q, size_t n);
int store_ping(struct store *s, struct tm_error *e);

/* ---- Writes ---- */

enum store_op_kind {
    STORE_OP_CREATE,    /* tasks[0..ntasks): all or none; idempotency by key */
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
    STORE_OP_WATCH,     /* parks until the task's version > version, or deadline */
};

#define STORE_CLAIM_MAX_TYPES 16

struct store_op {
    enum store_op_kind kind;
    const char *ns;                  /* scope; NULL = any namespace */
    char id[ID_LEN + 1];             /* the task acted on */

    /* CREATE: taken over by the op (freed by store_op_release). */
    struct task **tasks;
    size_t ntasks;

    /* CLAIM */
    const char *queue, *worker;
    const char *types[STORE_CLAIM_MAX_TYPES];
    int ntypes;
    int64_t lease_ms;
    int64_t deadline_ms;             /* CLAIM and WATCH: monotonic ms; 0 = no wait */

    /* HEARTBEAT / COMPLETE / FAIL / RELEASE */
    const char *lease_token;
    struct task_progress_update progress;
    bool has_progress;
    json_t *items, *messages, *attributes; /* borrowed, validated, or NULL */
    json_t *result, *returns;               /* COMPLETE (result also on FAIL) */
    bool warning;                           /* COMPLETE */
    const char *error;                      /* FAIL */
    bool retryable;                         /* FAIL */

    /* WATCH */
    int64_t version;

    /* Outputs, valid in done(). */
    struct tm_error err;             /* err.code 0 on success */
    struct task *task;               /* the task after the change (CREATE: tasks[0]) */
    bool created;                    /* CREATE: false when an idempotent repeat */
    bool claimed;                    /* CLAIM: false when nothing came in time */
    char new_lease_token[ID_LEN + 1];

    void (*done)(struct store_op *op);
    void *udata;

    /* Private to the store. */
    struct store_op *next;
    bool parked;
};

void store_op_init(struct store_op *op, enum store_op_kind kind);
/* Frees the op's outputs and taken inputs; the op itself is the caller's. */
void store_op_release(struct store_op *op);
/* Queues the op for the writer. `done` is always called exactly once. */
void store_submit(struct store *s, struct store_op *op);
/* Submits and waits for done (for tools and tests). Returns op->err.code. */
int store_run(struct store *s, struct store_op *op);

/* Counters for /metrics. */
struct store_stats {
    uint64_t batches, ops, commits_failed, sweeps, leases_expired, parked_claims,
        parked_watches;
};
void store_get_stats(struct store *s, struct store_stats *out);

#endif
