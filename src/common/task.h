/*
 * task: the canonical task record and its state machine.
 *
 * Every API shape (v1, SailPoint, Livepeer, Scene7) is a projection of
 * struct task. This module is pure: no I/O, no SQL, no HTTP, no clock (the
 * caller passes `now_ms` and any randomness), so every move can be tested
 * alone and every other module asks it whether a move is legal.
 *
 * Ownership: a struct task owns every string it points to; task_free frees
 * them all and task_clone copies them all, as listed in task_strings
 * (task.c), where a new string field goes too. JSON-valued fields (params, result, ...) are held as
 * compact JSON text, already validated, and written out verbatim.
 *
 * Errors: the task_* moves return 0, or TM_ECONFLICT / TM_ELEASE with the
 * reason in a struct tm_error, and leave the task unchanged on error.
 */
#ifndef TASKMILL_TASK_H
#define TASKMILL_TASK_H

#include <stdbool.h>
#include <stdint.h>

#include "err.h"
#include "id.h"

/*
 * PHASES
 *
 * pending    Ready to run; handed to the next worker that claims its queue
 *            (unless paused). Entered on create (no scheduled_at in the
 *            future), when a waiting task comes due, on release by a worker,
 *            and on a manual retry of a failed or cancelled task.
 *            Invariants: no lease, completion_status null.
 * waiting    Not to run before scheduled_at: a delayed start, or the backoff
 *            before an automatic retry. Entered on create with a future
 *            scheduled_at, on a retryable failure or a lost lease with
 *            retries left. Also a parent whose worker completed it while
 *            children were still unfinished (awaiting_children): it
 *            completes when its last child ends. Invariants: no lease;
 *            scheduled_at set, or awaiting_children.
 * running    Claimed by a worker that holds the lease. Entered only by claim,
 *            which increments attempt and issues a new lease token.
 *            Invariants: lease worker, token and expiry set.
 * stopping   Running, but a cancel was asked; the worker learns it from its
 *            next heartbeat reply. Entered by cancel of a running task.
 *            Invariants: as running.
 * completed  Terminal. completion_status SUCCESS, or WARNING when the task
 *            logged a WARN message, the worker said so, or a child of it
 *            is failed or cancelled. progress.ratio 1.
 * failed     Terminal. completion_status ERROR, or TEMPERROR when the last
 *            failure was temporary (lost lease, retryable failure) and the
 *            retries ran out.
 * cancelled  Terminal. completion_status TERMINATED.
 *
 * In every terminal phase: no lease, completed_at set. `paused` is a flag
 * beside the phase, not a phase: a paused pending task is not handed out.
 *
 * TRANSITIONS (from -> to: event)
 *
 *   pending   -> running    claim
 *   pending   -> cancelled  cancel
 *   waiting   -> pending    due (scheduled_at reached)
 *   waiting   -> cancelled  cancel
 *   running   -> completed  complete
 *   running   -> waiting    fail (retryable, retries left) or lease lost (retries left)
 *   running   -> failed     fail (not retryable, or retries spent) or lease lost (spent)
 *   running   -> pending    release (handed back; not counted as a retry)
 *   running   -> stopping   cancel
 *   stopping  -> cancelled  fail, release or lease lost (the worker stopped)
 *   running   -> waiting    complete while children are unfinished (awaits them)
 *   waiting   -> completed  the last child of an awaiting parent ended
 *   stopping  -> completed  complete (the work finished before it could stop)
 *   failed    -> pending    retry
 *   cancelled -> pending    retry
 *   pending | waiting | running | stopping -> completed | failed | cancelled
 *                         finish (an operator ends the task with a given
 *                         completion status: SailPoint's PATCH)
 *
 * Every other pair is illegal and refused with TM_ECONFLICT. Repeating a
 * cancel on a stopping or cancelled task, a pause on a paused task or a
 * resume on an unpaused one changes nothing and is not an error.
 */
enum task_phase {
    TASK_PENDING,
    TASK_WAITING,
    TASK_RUNNING,
    TASK_STOPPING,
    TASK_COMPLETED,
    TASK_FAILED,
    TASK_CANCELLED,
    TASK_PHASE_COUNT
};

enum task_status {
    TASK_STATUS_NONE,
    TASK_SUCCESS,
    TASK_WARNING,
    TASK_ERROR,
    TASK_TERMINATED,
    TASK_TEMPERROR,
    TASK_STATUS_COUNT
};

/* The bucket a child counts in on its parent's progress. */
/* The bucket a child counts in on its parent: failed and cancelled children
 * (ENDED) show as pending but do not hold up an awaiting parent. */
enum task_bucket {
    TASK_BUCKET_PENDING,
    TASK_BUCKET_PROCESSING,
    TASK_BUCKET_PROCESSED,
    TASK_BUCKET_ENDED
};

struct task_progress {
    double ratio;   /* 0..1, as last set or derived */
    bool ratio_set; /* the worker gave a ratio; otherwise it is derived from counts */
    char *message;
    int64_t processed, processing, pending;
    int64_t updated_at;
};

struct task {
    char id[ID_LEN + 1];
    char *namespace;
    char *type;
    char *name;
    char *description;
    char *queue;
    int64_t priority;
    char parent_id[ID_LEN + 1]; /* "" when none */
    char *launcher;
    char *target;     /* JSON object or NULL */
    char *definition; /* JSON object or NULL */
    char *params;     /* JSON object or NULL */

    enum task_phase phase;
    enum task_status status;
    struct task_progress progress;
    /* Counts of children by bucket, kept by the store as children move. */
    int64_t child_pending, child_processing, child_processed, child_ended;
    bool awaiting_children; /* waiting for its children to end (see phases) */
    char *items;            /* JSON array or NULL */
    char *messages;         /* JSON array or NULL */
    int64_t message_count;
    bool warned; /* a WARN message was logged this run */

    char *result;     /* JSON value or NULL */
    char *returns;    /* JSON array or NULL */
    char *attributes; /* JSON object or NULL */
    char *error;      /* last failure's message, or NULL */
    bool error_temporary;

    int64_t attempt; /* claims so far */
    int64_t retries; /* automatic re-runs after failure so far */
    int64_t max_retries;
    int64_t backoff_ms, backoff_max_ms;

    char *lease_worker;
    char lease_token[ID_LEN + 1];
    int64_t lease_ms; /* lease length the worker asked for */
    int64_t lease_expires_at;

    int64_t created_at, updated_at, scheduled_at, started_at, completed_at;
    int64_t ready_at; /* when it last became pending: FIFO order within a priority */
    int64_t version;
    bool paused;
    char *idempotency_key;
    /* The schedule that launched it ("" when none): its overlap policy
     * looks for its unfinished runs by this (store_schedules.c). */
    char schedule_id[ID_LEN + 1];
    /* Each claim, oldest first: a JSON array of {attempt, worker,
     * started_at, ended_at, outcome, error} (task_attempt_begin/end), or NULL. */
    char *attempts;
};

/*
 * Retry settings a queue gives its tasks that do not set their own
 * (PUT /v1/queues/{queue}); without any, these defaults apply. And how
 * long its finished tasks are kept, per terminal phase (the store's
 * retention sweep).
 */
struct queue_settings {
    int64_t max_retries, backoff_ms, backoff_max_ms;
    /* Per phase, only TASK_COMPLETED, TASK_FAILED and TASK_CANCELLED used:
     * seconds a task in that phase is kept once unchanged, 0 = forever,
     * QUEUE_RETENTION_UNSET = the server's --finished-max-age-seconds. */
    int64_t retention_seconds[TASK_PHASE_COUNT];
    bool paused; /* the queue hands out no task (POST /v1/queues/{queue}/pause) */
};
#define TASK_DEFAULT_MAX_RETRIES    3
#define TASK_DEFAULT_BACKOFF_MS     1000
#define TASK_DEFAULT_BACKOFF_MAX_MS 300000
#define QUEUE_RETENTION_UNSET       (-1)
#define QUEUE_RETENTION_MAX_SECONDS (3650LL * 86400) /* as --finished-max-age-seconds */

void queue_settings_default(struct queue_settings *q);
/* Fills the task's retry settings that are unset (negative) from q. */
void task_apply_queue_settings(struct task *t, const struct queue_settings *q);

/* Limits the record itself enforces. */
#define TASK_MAX_MESSAGES 1000 /* the oldest are dropped past this */
#define TASK_MAX_ITEMS    1000
/* Bytes of a task's stored messages (JSON text): the oldest are dropped
 * past this, leaving a first message that counts them. */
#define TASK_MESSAGES_MAX_BYTES (256 * 1024)
/* Bytes of a task's stored items (JSON text): a call past it is refused. */
#define TASK_ITEMS_MAX_BYTES (512 * 1024)
/* Bytes of a lease's worker name (lease_worker): a claim's "worker" is 1 to
 * this many (v1_decode_claim), and `taskmill work --name` refuses a longer one. */
#define TASK_WORKER_NAME_MAX 128

struct task *task_new(void);
void task_free(struct task *t);
struct task *task_clone(const struct task *t);
/* The bytes t and its strings take (what task_clone allocates, roughly). */
size_t task_bytes(const struct task *t);

const char *task_phase_name(enum task_phase p);
int task_phase_parse(const char *s, enum task_phase *out); /* 0 or -1 */
const char *task_status_name(enum task_status s);          /* NULL for NONE */
bool task_phase_is_terminal(enum task_phase p);
bool task_is_terminal(const struct task *t);
/* True when the table above has the move from -> to. */
bool task_can_transition(enum task_phase from, enum task_phase to);
enum task_bucket task_bucket_of(enum task_phase p);

/* Derived values. */
double task_ratio(const struct task *t);
int task_percent(const struct task *t);
/* The counts to show: the children's when it has any, else its own. */
void task_counts(const struct task *t, int64_t *processed, int64_t *processing, int64_t *pending);
/* Retry delay before re-run number `retry` (1-based), with equal jitter from `rnd`. */
int64_t task_backoff_ms(int64_t base_ms, int64_t max_ms, int64_t retry, uint32_t rnd);
/* The time the server must next act on the task (lease expiry, due time), or 0. */
int64_t task_due_at(const struct task *t);

/*
 * The moves. Each checks legality, then changes the task, bumps version and
 * updated_at; on error the task is untouched. `now` is wall-clock ms.
 */
/* Hands a pending, unpaused task to `worker` under a new lease `token`. */
int task_claim(struct task *t, const char *worker, const char *token, int64_t lease_ms, int64_t now,
               struct tm_error *e);
/* Checks that `token` names the current lease of a running or stopping task. */
int task_check_lease(const struct task *t, const char *token, struct tm_error *e);
/* Extends the lease (lease_ms 0 keeps the last length). */
int task_extend_lease(struct task *t, const char *token, int64_t lease_ms, int64_t now,
                      struct tm_error *e);
int task_complete(struct task *t, const char *token, bool warning, int64_t now, struct tm_error *e);
/* A failure reported by the worker; rnd feeds the backoff jitter. */
int task_fail(struct task *t, const char *token, const char *error, bool retryable, int64_t now,
              uint32_t rnd, struct tm_error *e);
int task_release(struct task *t, const char *token, int64_t now, struct tm_error *e);
/* The lease ran out (called by the server's sweep; no token). */
int task_lease_lost(struct task *t, int64_t now, uint32_t rnd, struct tm_error *e);
/* A waiting task whose time has come. */
int task_wake(struct task *t, int64_t now, struct tm_error *e);
int task_cancel(struct task *t, int64_t now, struct tm_error *e);
int task_retry(struct task *t, int64_t now, struct tm_error *e);
int task_pause(struct task *t, int64_t now, struct tm_error *e);
int task_resume(struct task *t, int64_t now, struct tm_error *e);
/*
 * An operator ends a task that is not terminal with `status` (SUCCESS or
 * WARNING: completed; ERROR or TEMPERROR: failed; TERMINATED: cancelled),
 * whatever its phase; a worker's lease is dropped, so its later calls get
 * TM_ELEASE. completed_at is `completed_at` when > 0, else now. TM_ECONFLICT
 * when already terminal, TM_EINVALID for TASK_STATUS_NONE.
 */
int task_finish(struct task *t, enum task_status status, int64_t completed_at, int64_t now,
                struct tm_error *e);
/* True when some child is neither completed, failed nor cancelled. */
bool task_has_open_children(const struct task *t);
/* An awaiting parent's last child ended: completed (WARNING if a child failed). */
int task_children_done(struct task *t, int64_t now, struct tm_error *e);
/* Deletion is allowed only for terminal tasks. */
int task_check_delete(const struct task *t, struct tm_error *e);

/* Sets progress; any field may be absent (has_* false). */
struct task_progress_update {
    bool has_ratio, has_message, has_processed, has_processing, has_pending;
    double ratio;
    const char *message;
    int64_t processed, processing, pending;
};
void task_set_progress(struct task *t, const struct task_progress_update *u, int64_t now);

/* Marks a change that is not a phase move (progress, items, ...). */
void task_touch(struct task *t, int64_t now);

#endif
