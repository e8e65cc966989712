/*
 * task: see task.h for the phases and the transition table. The table is
 * encoded once, in task_moves, and every move function asks
 * task_can_transition before it writes anything; task_assert_invariants
 * checks each phase's invariants after every move in debug builds.
 */
#include "task.h"

#include <assert.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "utf8.h"
#include "xalloc.h"

static const char *const phase_names[TASK_PHASE_COUNT] = {
    "pending", "waiting", "running", "stopping", "completed", "failed", "cancelled",
};

static const char *const status_names[TASK_STATUS_COUNT] = {
    NULL, "SUCCESS", "WARNING", "ERROR", "TERMINATED", "TEMPERROR",
};

/* task_moves[from] has bit `to` set when from -> to is legal. */
#define B(p) (1u << (p))
static const unsigned task_moves[TASK_PHASE_COUNT] = {
    [TASK_PENDING] = B(TASK_RUNNING) | B(TASK_CANCELLED) | B(TASK_COMPLETED) | B(TASK_FAILED),
    [TASK_WAITING] = B(TASK_PENDING) | B(TASK_CANCELLED) | B(TASK_COMPLETED) | B(TASK_FAILED),
    [TASK_RUNNING] = B(TASK_COMPLETED) | B(TASK_WAITING) | B(TASK_FAILED) | B(TASK_PENDING) |
                     B(TASK_STOPPING) | B(TASK_CANCELLED),
    [TASK_STOPPING] = B(TASK_CANCELLED) | B(TASK_COMPLETED) | B(TASK_FAILED),
    [TASK_COMPLETED] = 0,
    [TASK_FAILED] = B(TASK_PENDING),
    [TASK_CANCELLED] = B(TASK_PENDING),
};
#undef B

struct task *task_new(void) {
    struct task *t = xcalloc(1, sizeof *t);
    t->max_retries = TASK_DEFAULT_MAX_RETRIES;
    t->backoff_ms = TASK_DEFAULT_BACKOFF_MS;
    t->backoff_max_ms = TASK_DEFAULT_BACKOFF_MAX_MS;
    return t;
}

void queue_settings_default(struct queue_settings *q) {
    q->max_retries = TASK_DEFAULT_MAX_RETRIES;
    q->backoff_ms = TASK_DEFAULT_BACKOFF_MS;
    q->backoff_max_ms = TASK_DEFAULT_BACKOFF_MAX_MS;
    for (int p = 0; p < TASK_PHASE_COUNT; p++)
        q->retention_seconds[p] = QUEUE_RETENTION_UNSET;
    q->paused = false;
}

void task_apply_queue_settings(struct task *t, const struct queue_settings *q) {
    if (t->max_retries < 0) t->max_retries = q->max_retries;
    if (t->backoff_ms < 0) t->backoff_ms = q->backoff_ms;
    if (t->backoff_max_ms < 0) t->backoff_max_ms = q->backoff_max_ms;
    if (t->backoff_max_ms < t->backoff_ms) t->backoff_max_ms = t->backoff_ms;
}

/* Every string a task owns: task_free frees them and task_clone copies them. */
static const size_t task_strings[] = {
    offsetof(struct task, namespace),    offsetof(struct task, type),
    offsetof(struct task, name),         offsetof(struct task, description),
    offsetof(struct task, queue),        offsetof(struct task, launcher),
    offsetof(struct task, target),       offsetof(struct task, definition),
    offsetof(struct task, params),       offsetof(struct task, progress.message),
    offsetof(struct task, items),        offsetof(struct task, messages),
    offsetof(struct task, result),       offsetof(struct task, returns),
    offsetof(struct task, attributes),   offsetof(struct task, error),
    offsetof(struct task, lease_worker), offsetof(struct task, idempotency_key),
    offsetof(struct task, attempts),
};

static char **task_string(struct task *t, size_t i) {
    return (char **)((char *)t + task_strings[i]);
}

void task_free(struct task *t) {
    if (!t) return;
    for (size_t i = 0; i < sizeof task_strings / sizeof task_strings[0]; i++)
        free(*task_string(t, i));
    free(t);
}

struct task *task_clone(const struct task *t) {
    struct task *c = xmalloc(sizeof *c);
    *c = *t; /* then c's own copy of each string it shares with t */
    for (size_t i = 0; i < sizeof task_strings / sizeof task_strings[0]; i++)
        *task_string(c, i) = xstrdup(*task_string(c, i));
    return c;
}

size_t task_bytes(const struct task *t) {
    size_t n = sizeof *t;
    for (size_t i = 0; i < sizeof task_strings / sizeof task_strings[0]; i++) {
        const char *v = *task_string((struct task *)t, i);
        if (v) n += strlen(v) + 1;
    }
    return n;
}

const char *task_phase_name(enum task_phase p) {
    return (unsigned)p < TASK_PHASE_COUNT ? phase_names[p] : "unknown";
}

int task_phase_parse(const char *s, enum task_phase *out) {
    for (int i = 0; i < TASK_PHASE_COUNT; i++) {
        if (strcmp(s, phase_names[i]) == 0) {
            *out = (enum task_phase)i;
            return 0;
        }
    }
    return -1;
}

const char *task_status_name(enum task_status s) {
    return (unsigned)s < TASK_STATUS_COUNT ? status_names[s] : NULL;
}

bool task_phase_is_terminal(enum task_phase p) {
    return p == TASK_COMPLETED || p == TASK_FAILED || p == TASK_CANCELLED;
}

bool task_is_terminal(const struct task *t) {
    return task_phase_is_terminal(t->phase);
}

bool task_can_transition(enum task_phase from, enum task_phase to) {
    if ((unsigned)from >= TASK_PHASE_COUNT || (unsigned)to >= TASK_PHASE_COUNT) return false;
    return (task_moves[from] >> to) & 1u;
}

enum task_bucket task_bucket_of(enum task_phase p) {
    switch (p) {
    case TASK_COMPLETED:
        return TASK_BUCKET_PROCESSED;
    case TASK_RUNNING:
    case TASK_STOPPING:
        return TASK_BUCKET_PROCESSING;
    case TASK_FAILED:
    case TASK_CANCELLED:
        return TASK_BUCKET_ENDED;
    default:
        return TASK_BUCKET_PENDING;
    }
}

void task_counts(const struct task *t, int64_t *processed, int64_t *processing, int64_t *pending) {
    if (t->child_pending + t->child_processing + t->child_processed + t->child_ended > 0) {
        *processed = t->child_processed;
        *processing = t->child_processing;
        *pending = t->child_pending + t->child_ended;
    } else {
        *processed = t->progress.processed;
        *processing = t->progress.processing;
        *pending = t->progress.pending;
    }
}

double task_ratio(const struct task *t) {
    if (t->phase == TASK_COMPLETED) return 1.0;
    if (t->progress.ratio_set) return t->progress.ratio;
    int64_t done, doing, todo;
    task_counts(t, &done, &doing, &todo);
    int64_t total = done + doing + todo;
    return total > 0 ? (double)done / (double)total : 0.0;
}

int task_percent(const struct task *t) {
    if (t->phase == TASK_COMPLETED) return 100;
    /* ratio * 100 in binary floating point falls just short of some whole
     * numbers (0.29 * 100 is 28.999999999999996): a worker's percent 29,
     * or 29 of 100 items, must read back as 29, not 28. */
    int p = (int)floor(task_ratio(t) * 100.0 + 1e-9);
    return p > 99 ? 99 : p < 0 ? 0 : p;
}

int64_t task_backoff_ms(int64_t base_ms, int64_t max_ms, int64_t retry, uint32_t rnd) {
    if (base_ms <= 0) return 0;
    int64_t d = base_ms;
    for (int64_t i = 1; i < retry && d < max_ms; i++)
        d *= 2;
    if (d > max_ms) d = max_ms;
    /* Equal jitter: half fixed, half random, so retries spread but never bunch at 0. */
    int64_t half = d / 2;
    return half + (half > 0 ? (int64_t)(rnd % (uint64_t)(half + 1)) : 0);
}

int64_t task_due_at(const struct task *t) {
    switch (t->phase) {
    case TASK_RUNNING:
    case TASK_STOPPING:
        return t->lease_expires_at;
    case TASK_WAITING:
        return t->scheduled_at;
    default:
        return 0;
    }
}

static void task_assert_invariants(const struct task *t) {
    switch (t->phase) {
    case TASK_PENDING:
        assert(!t->lease_worker && t->status == TASK_STATUS_NONE);
        break;
    case TASK_WAITING:
        assert(!t->lease_worker && (t->scheduled_at > 0 || t->awaiting_children));
        break;
    case TASK_RUNNING:
    case TASK_STOPPING:
        assert(t->lease_worker && t->lease_token[0] && t->lease_expires_at > 0);
        break;
    default:
        assert(!t->lease_worker && t->completed_at > 0 && t->status != TASK_STATUS_NONE);
        break;
    }
    (void)t;
}

void task_touch(struct task *t, int64_t now) {
    t->version++;
    t->updated_at = now > t->updated_at ? now : t->updated_at;
}

static int task_refuse(const struct task *t, enum task_phase to, struct tm_error *e) {
    return err_set(e, TM_ECONFLICT, "", "task '%.64s' cannot move from '%.64s' to '%.64s'", t->id,
                   task_phase_name(t->phase), task_phase_name(to));
}

/* Moves the task to `to`, with the bookkeeping every move shares. */
static void task_move(struct task *t, enum task_phase to, int64_t now) {
    assert(task_can_transition(t->phase, to));
    t->phase = to;
    if (to == TASK_PENDING) t->ready_at = now;
    if (to != TASK_RUNNING && to != TASK_STOPPING) {
        free(t->lease_worker);
        t->lease_worker = NULL;
        t->lease_token[0] = '\0';
        t->lease_expires_at = 0;
    }
    if (task_phase_is_terminal(to)) t->completed_at = now;
    if (to != TASK_WAITING) t->awaiting_children = false;
    task_touch(t, now);
    task_assert_invariants(t);
}

int task_claim(struct task *t, const char *worker, const char *token, int64_t lease_ms, int64_t now,
               struct tm_error *e) {
    if (!task_can_transition(t->phase, TASK_RUNNING)) return task_refuse(t, TASK_RUNNING, e);
    if (t->paused) return err_set(e, TM_ECONFLICT, "", "task '%.64s' is paused", t->id);
    free(t->lease_worker);
    t->lease_worker = xstrdup(worker);
    snprintf(t->lease_token, sizeof t->lease_token, "%s", token);
    t->lease_ms = lease_ms;
    t->lease_expires_at = now + lease_ms;
    t->attempt++;
    t->warned = false;
    if (!t->started_at) t->started_at = now;
    task_move(t, TASK_RUNNING, now);
    return 0;
}

int task_check_lease(const struct task *t, const char *token, struct tm_error *e) {
    if (t->phase != TASK_RUNNING && t->phase != TASK_STOPPING)
        return err_set(e, TM_ECONFLICT, "", "task '%.64s' is '%.64s', not running", t->id,
                       task_phase_name(t->phase));
    /* Compared in constant time: where a guess first differs does not show
     * in the reply's timing (the length, always ID_LEN, may). */
    size_t len = strlen(t->lease_token);
    if (!token || strlen(token) != len || !len || CRYPTO_memcmp(token, t->lease_token, len) != 0)
        return err_set(e, TM_ELEASE, "lease_token",
                       "'lease_token' is not the current lease of task '%.64s' (attempt %lld)",
                       t->id, (long long)t->attempt);
    return 0;
}

int task_extend_lease(struct task *t, const char *token, int64_t lease_ms, int64_t now,
                      struct tm_error *e) {
    int rc = task_check_lease(t, token, e);
    if (rc) return rc;
    if (lease_ms > 0) t->lease_ms = lease_ms;
    t->lease_expires_at = now + t->lease_ms;
    task_touch(t, now);
    return 0;
}

int task_complete(struct task *t, const char *token, bool warning, int64_t now,
                  struct tm_error *e) {
    int rc = task_check_lease(t, token, e);
    if (rc) return rc;
    if (t->phase == TASK_RUNNING && task_has_open_children(t)) {
        /* The parent's own work is done; it completes with its last child. */
        t->warned = t->warned || warning;
        t->scheduled_at = 0;
        t->awaiting_children = true;
        task_move(t, TASK_WAITING, now);
        return 0;
    }
    /* A child that failed or was cancelled makes it WARNING, whether that
     * child ended before this complete or after it (task_children_done). */
    t->status = warning || t->warned || t->child_ended > 0 ? TASK_WARNING : TASK_SUCCESS;
    t->progress.ratio = 1.0;
    t->progress.ratio_set = true;
    t->progress.updated_at = now;
    task_move(t, TASK_COMPLETED, now);
    return 0;
}

static void task_set_error(struct task *t, const char *error, bool temporary) {
    free(t->error);
    t->error = xstrdup(error);
    t->error_temporary = temporary;
}

/* A failed run: retry after a backoff while retries last, else fail for good. */
static void task_after_failure(struct task *t, const char *error, bool retryable, int64_t now,
                               uint32_t rnd) {
    task_set_error(t, error, retryable);
    if (retryable && t->retries < t->max_retries) {
        t->retries++;
        t->scheduled_at = now + task_backoff_ms(t->backoff_ms, t->backoff_max_ms, t->retries, rnd);
        if (t->scheduled_at <= now) t->scheduled_at = now + 1;
        task_move(t, TASK_WAITING, now);
        return;
    }
    t->status = retryable ? TASK_TEMPERROR : TASK_ERROR;
    task_move(t, TASK_FAILED, now);
}

static void task_stopped(struct task *t, int64_t now) {
    t->status = TASK_TERMINATED;
    task_move(t, TASK_CANCELLED, now);
}

int task_fail(struct task *t, const char *token, const char *error, bool retryable, int64_t now,
              uint32_t rnd, struct tm_error *e) {
    int rc = task_check_lease(t, token, e);
    if (rc) return rc;
    if (t->phase == TASK_STOPPING) {
        task_set_error(t, error, false);
        task_stopped(t, now);
        return 0;
    }
    task_after_failure(t, error, retryable, now, rnd);
    return 0;
}

int task_release(struct task *t, const char *token, int64_t now, struct tm_error *e) {
    int rc = task_check_lease(t, token, e);
    if (rc) return rc;
    if (t->phase == TASK_STOPPING)
        task_stopped(t, now);
    else
        task_move(t, TASK_PENDING, now);
    return 0;
}

int task_lease_lost(struct task *t, int64_t now, uint32_t rnd, struct tm_error *e) {
    if (t->phase == TASK_STOPPING) {
        task_stopped(t, now);
        return 0;
    }
    if (t->phase != TASK_RUNNING)
        return err_set(e, TM_ECONFLICT, "", "task '%.64s' is '%.64s' and holds no lease", t->id,
                       task_phase_name(t->phase));
    /* The whole name (the API keeps it to 128 bytes): a cut could split a
     * character, and text that is not UTF-8 is refused by PostgreSQL (the
     * sweep's whole commit failed, again at every sweep) and makes the
     * task's JSON invalid. A longer name is cut, and its cut scrubbed. */
    char msg[192];
    snprintf(msg, sizeof msg, "lease of worker '%.*s' expired", TASK_WORKER_NAME_MAX,
             t->lease_worker);
    utf8_scrub(msg);
    task_after_failure(t, msg, true, now, rnd);
    return 0;
}

bool task_has_open_children(const struct task *t) {
    return t->child_pending + t->child_processing > 0;
}

int task_children_done(struct task *t, int64_t now, struct tm_error *e) {
    if (t->phase != TASK_WAITING || !t->awaiting_children || task_has_open_children(t))
        return task_refuse(t, TASK_COMPLETED, e);
    t->status = t->warned || t->child_ended > 0 ? TASK_WARNING : TASK_SUCCESS;
    t->progress.ratio = 1.0;
    t->progress.ratio_set = true;
    t->progress.updated_at = now;
    task_move(t, TASK_COMPLETED, now);
    return 0;
}

int task_wake(struct task *t, int64_t now, struct tm_error *e) {
    if (t->phase != TASK_WAITING || t->awaiting_children) return task_refuse(t, TASK_PENDING, e);
    task_move(t, TASK_PENDING, now);
    return 0;
}

int task_cancel(struct task *t, int64_t now, struct tm_error *e) {
    switch (t->phase) {
    case TASK_STOPPING:
    case TASK_CANCELLED:
        return 0; /* already asked: nothing changes */
    case TASK_RUNNING:
        task_move(t, TASK_STOPPING, now);
        return 0;
    case TASK_PENDING:
    case TASK_WAITING:
        task_stopped(t, now);
        return 0;
    default:
        return task_refuse(t, TASK_CANCELLED, e);
    }
}

int task_finish(struct task *t, enum task_status status, int64_t completed_at, int64_t now,
                struct tm_error *e) {
    enum task_phase to;
    switch (status) {
    case TASK_SUCCESS:
    case TASK_WARNING:
        to = TASK_COMPLETED;
        break;
    case TASK_ERROR:
    case TASK_TEMPERROR:
        to = TASK_FAILED;
        break;
    case TASK_TERMINATED:
        to = TASK_CANCELLED;
        break;
    default:
        return err_set(e, TM_EINVALID, "", "a task cannot finish without a status");
    }
    if (!task_can_transition(t->phase, to)) return task_refuse(t, to, e);
    t->status = status;
    if (to == TASK_COMPLETED) {
        t->progress.ratio = 1.0;
        t->progress.ratio_set = true;
        t->progress.updated_at = now;
    }
    if (to == TASK_FAILED) t->error_temporary = status == TASK_TEMPERROR;
    task_move(t, to, now);
    if (completed_at > 0) t->completed_at = completed_at;
    return 0;
}

int task_retry(struct task *t, int64_t now, struct tm_error *e) {
    /* Says what a retry needs ("from 'pending' to 'pending'" said nothing). */
    if (t->phase != TASK_FAILED && t->phase != TASK_CANCELLED)
        return err_set(e, TM_ECONFLICT, "",
                       "task '%.64s' is '%.64s'; only failed or cancelled tasks can be retried",
                       t->id, task_phase_name(t->phase));
    t->status = TASK_STATUS_NONE;
    t->completed_at = 0;
    t->scheduled_at = 0;
    free(t->error);
    t->error = NULL;
    t->error_temporary = false;
    free(t->progress.message);
    memset(&t->progress, 0, sizeof t->progress);
    free(t->items);
    t->items = NULL;
    task_move(t, TASK_PENDING, now);
    t->completed_at = 0;
    return 0;
}

int task_pause(struct task *t, int64_t now, struct tm_error *e) {
    if (task_is_terminal(t))
        return err_set(e, TM_ECONFLICT, "", "task '%.64s' is '%.64s' and cannot be paused", t->id,
                       task_phase_name(t->phase));
    if (t->paused) return 0;
    t->paused = true;
    task_touch(t, now);
    return 0;
}

int task_resume(struct task *t, int64_t now, struct tm_error *e) {
    if (task_is_terminal(t))
        return err_set(e, TM_ECONFLICT, "", "task '%.64s' is '%.64s' and cannot be resumed", t->id,
                       task_phase_name(t->phase));
    if (!t->paused) return 0;
    t->paused = false;
    if (t->phase == TASK_PENDING) t->ready_at = now;
    task_touch(t, now);
    return 0;
}

int task_check_delete(const struct task *t, struct tm_error *e) {
    if (!task_is_terminal(t))
        return err_set(e, TM_ECONFLICT, "",
                       "task '%.64s' is '%.64s'; only finished tasks can be deleted", t->id,
                       task_phase_name(t->phase));
    return 0;
}

void task_set_progress(struct task *t, const struct task_progress_update *u, int64_t now) {
    struct task_progress *p = &t->progress;
    if (u->has_ratio) {
        p->ratio = u->ratio;
        p->ratio_set = true;
    }
    if (u->has_processed) p->processed = u->processed;
    if (u->has_processing) p->processing = u->processing;
    if (u->has_pending) p->pending = u->pending;
    /* Counts without a ratio: the ratio follows the counts from now on. */
    if (!u->has_ratio && (u->has_processed || u->has_processing || u->has_pending))
        p->ratio_set = false;
    if (u->has_message) {
        free(p->message);
        p->message = xstrdup(u->message);
    }
    p->updated_at = now;
}
