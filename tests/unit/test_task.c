/*
 * The state machine (src/common/task.c): every legal and every illegal
 * transition, each move from every phase, the progress rules, backoff.
 * A refused move must leave the task byte-for-byte unchanged.
 */
#include <stdio.h>
#include <stdlib.h>

#include "../src/common/buf.h"
#include "../src/common/task.h"
#include "../src/common/task_json.h"
#include "../src/common/xalloc.h"
#include "harness.h"

#define P(x) TASK_##x
/* The table of DESIGN.md section 2, written out independently of task.c. */
static const struct {
    enum task_phase from, to;
} legal[] = {
    {P(PENDING), P(RUNNING)},
    {P(PENDING), P(CANCELLED)},
    {P(WAITING), P(PENDING)},
    {P(WAITING), P(CANCELLED)},
    {P(RUNNING), P(COMPLETED)},
    {P(RUNNING), P(WAITING)},
    {P(RUNNING), P(FAILED)},
    {P(RUNNING), P(PENDING)},
    {P(RUNNING), P(STOPPING)},
    {P(STOPPING), P(CANCELLED)},
    {P(STOPPING), P(COMPLETED)},
    {P(FAILED), P(PENDING)},
    {P(CANCELLED), P(PENDING)},
    /* finish (an operator's end, SailPoint PATCH) */
    {P(PENDING), P(COMPLETED)},
    {P(PENDING), P(FAILED)},
    {P(WAITING), P(COMPLETED)},
    {P(WAITING), P(FAILED)},
    {P(RUNNING), P(CANCELLED)},
    {P(STOPPING), P(FAILED)},
};

static bool is_legal(enum task_phase from, enum task_phase to) {
    for (size_t i = 0; i < sizeof legal / sizeof legal[0]; i++)
        if (legal[i].from == from && legal[i].to == to) return true;
    return false;
}

static void test_transition_table(void) {
    int checked = 0;
    for (int f = 0; f < TASK_PHASE_COUNT; f++) {
        for (int t = 0; t < TASK_PHASE_COUNT; t++) {
            bool want = is_legal((enum task_phase)f, (enum task_phase)t);
            bool got = task_can_transition((enum task_phase)f, (enum task_phase)t);
            if (want != got) {
                th_fail(__FILE__, __LINE__, "%s -> %s: table says %d, task.c says %d",
                        task_phase_name((enum task_phase)f), task_phase_name((enum task_phase)t),
                        want, got);
                return;
            }
            checked++;
        }
    }
    CHECK_INT(checked, 49);
    CHECK(!task_can_transition(TASK_PHASE_COUNT, TASK_PENDING));
}

/* A task in the given phase with every invariant of that phase. */
static struct task *task_in(enum task_phase p) {
    struct task *t = task_new();
    snprintf(t->id, sizeof t->id, "%032d", 7);
    t->namespace = xstrdup("default");
    t->type = xstrdup("x");
    t->queue = xstrdup("default");
    t->created_at = t->updated_at = 1000;
    t->version = 1;
    t->phase = p;
    if (p == TASK_RUNNING || p == TASK_STOPPING) {
        t->lease_worker = xstrdup("w");
        snprintf(t->lease_token, sizeof t->lease_token, "%032d", 1);
        t->lease_ms = 1000;
        t->lease_expires_at = 5000;
        t->attempt = 1;
    }
    if (p == TASK_WAITING) t->scheduled_at = 9000;
    if (task_phase_is_terminal(p)) {
        t->completed_at = 2000;
        t->status = p == TASK_COMPLETED ? TASK_SUCCESS
                    : p == TASK_FAILED  ? TASK_ERROR
                                        : TASK_TERMINATED;
    }
    return t;
}

static char *task_text(const struct task *t) {
    struct buf b;
    buf_init(&b);
    task_json_write(&b, t);
    return buf_detach(&b);
}

enum move {
    M_CLAIM,
    M_COMPLETE,
    M_FAIL_RETRY,
    M_FAIL_FATAL,
    M_RELEASE,
    M_LEASE_LOST,
    M_WAKE,
    M_CANCEL,
    M_RETRY,
    M_COUNT
};
static const char *const move_names[M_COUNT] = {"claim",       "complete", "fail(retryable)",
                                                "fail(fatal)", "release",  "lease lost",
                                                "wake",        "cancel",   "retry"};

static int do_move(struct task *t, enum move m, struct tm_error *e) {
    char tok[33];
    snprintf(tok, sizeof tok, "%032d", 1);
    switch (m) {
    case M_CLAIM:
        return task_claim(t, "w2", "abcdefabcdefabcdefabcdefabcdefab", 1000, 3000, e);
    case M_COMPLETE:
        return task_complete(t, tok, false, 3000, e);
    case M_FAIL_RETRY:
        return task_fail(t, tok, "boom", true, 3000, 7, e);
    case M_FAIL_FATAL:
        return task_fail(t, tok, "boom", false, 3000, 7, e);
    case M_RELEASE:
        return task_release(t, tok, 3000, e);
    case M_LEASE_LOST:
        return task_lease_lost(t, 3000, 7, e);
    case M_WAKE:
        return task_wake(t, 3000, e);
    case M_CANCEL:
        return task_cancel(t, 3000, e);
    default:
        return task_retry(t, 3000, e);
    }
}

/* The phase each move leads to from each phase; -1 = refused, -2 = allowed but no change. */
static int expected(enum task_phase p, enum move m) {
    bool leased = p == TASK_RUNNING || p == TASK_STOPPING;
    switch (m) {
    case M_CLAIM:
        return p == TASK_PENDING ? TASK_RUNNING : -1;
    case M_COMPLETE:
        return leased ? TASK_COMPLETED : -1;
    case M_FAIL_RETRY:
        return p == TASK_RUNNING ? TASK_WAITING : p == TASK_STOPPING ? TASK_CANCELLED : -1;
    case M_FAIL_FATAL:
        return p == TASK_RUNNING ? TASK_FAILED : p == TASK_STOPPING ? TASK_CANCELLED : -1;
    case M_RELEASE:
        return p == TASK_RUNNING ? TASK_PENDING : p == TASK_STOPPING ? TASK_CANCELLED : -1;
    case M_LEASE_LOST:
        return p == TASK_RUNNING ? TASK_WAITING : p == TASK_STOPPING ? TASK_CANCELLED : -1;
    case M_WAKE:
        return p == TASK_WAITING ? TASK_PENDING : -1;
    case M_CANCEL:
        if (p == TASK_PENDING || p == TASK_WAITING) return TASK_CANCELLED;
        if (p == TASK_RUNNING) return TASK_STOPPING;
        if (p == TASK_STOPPING || p == TASK_CANCELLED) return -2;
        return -1;
    default:
        return p == TASK_FAILED || p == TASK_CANCELLED ? TASK_PENDING : -1;
    }
}

static void test_every_move_from_every_phase(void) {
    int n = 0;
    for (int p = 0; p < TASK_PHASE_COUNT; p++) {
        for (int m = 0; m < M_COUNT; m++) {
            struct task *t = task_in((enum task_phase)p);
            char *before = task_text(t);
            struct tm_error e;
            err_clear(&e);
            int rc = do_move(t, (enum move)m, &e);
            int want = expected((enum task_phase)p, (enum move)m);
            char *after = task_text(t);
            bool ok;
            if (want == -1)
                ok = rc == TM_ECONFLICT && strcmp(before, after) == 0 && e.message[0];
            else if (want == -2)
                ok = rc == 0 && strcmp(before, after) == 0;
            else
                ok = rc == 0 && t->phase == (enum task_phase)want && t->version == 2 &&
                     task_can_transition((enum task_phase)p, t->phase);
            if (!ok)
                th_fail(__FILE__, __LINE__, "%s from '%s': rc %d phase '%s' (want %d): %s",
                        move_names[m], task_phase_name((enum task_phase)p), rc,
                        task_phase_name(t->phase), want, e.message);
            free(before);
            free(after);
            task_free(t);
            n++;
            if (!ok) return;
        }
    }
    CHECK_INT(n, TASK_PHASE_COUNT * M_COUNT);
}

static void test_stale_lease_refused(void) {
    struct task *t = task_in(TASK_RUNNING);
    char *before = task_text(t);
    struct tm_error e;
    err_clear(&e);
    CHECK_INT(task_complete(t, "ffffffffffffffffffffffffffffffff", false, 3000, &e), TM_ELEASE);
    CHECK_STR(e.field, "lease_token");
    CHECK_INT(task_extend_lease(t, NULL, 0, 3000, &e), TM_ELEASE);
    /* The token's prefix, the token and more, the empty string: refused. */
    char tok[2 * ID_LEN + 2];
    snprintf(tok, sizeof tok, "%.31s", t->lease_token);
    CHECK_INT(task_extend_lease(t, tok, 0, 3000, &e), TM_ELEASE);
    snprintf(tok, sizeof tok, "%s0", t->lease_token);
    CHECK_INT(task_extend_lease(t, tok, 0, 3000, &e), TM_ELEASE);
    CHECK_INT(task_extend_lease(t, "", 0, 3000, &e), TM_ELEASE);
    char *after = task_text(t);
    CHECK_STR(before, after);
    free(before);
    free(after);
    /* The token itself is taken. */
    snprintf(tok, sizeof tok, "%s", t->lease_token);
    CHECK_INT(task_extend_lease(t, tok, 0, 3000, &e), 0);
    task_free(t);
}

static void test_retries_then_temperror(void) {
    struct task *t = task_in(TASK_PENDING);
    t->max_retries = 2;
    struct tm_error e;
    char tok[33];
    int64_t now = 10000;
    for (int run = 0; run < 3; run++) {
        snprintf(tok, sizeof tok, "%032d", run + 1);
        CHECK_INT(task_claim(t, "w", tok, 1000, now, &e), 0);
        CHECK_INT(t->attempt, run + 1);
        CHECK_INT(task_fail(t, tok, "flaky", true, now, 12345, &e), 0);
        if (run < 2) {
            CHECK_INT(t->phase, TASK_WAITING);
            CHECK_INT(t->retries, run + 1);
            CHECK(t->scheduled_at > now);
            CHECK_INT(task_wake(t, t->scheduled_at, &e), 0);
            now = t->scheduled_at;
        }
    }
    CHECK_INT(t->phase, TASK_FAILED);
    CHECK_STR(task_status_name(t->status), "TEMPERROR");
    CHECK_STR(t->error, "flaky");
    /* A manual retry clears the outcome and runs it again. */
    CHECK_INT(task_retry(t, now, &e), 0);
    CHECK_INT(t->phase, TASK_PENDING);
    CHECK(t->status == TASK_STATUS_NONE && !t->error && !t->completed_at);
    task_free(t);
}

static void test_fatal_failure_is_error(void) {
    struct task *t = task_in(TASK_RUNNING);
    struct tm_error e;
    char tok[33];
    snprintf(tok, sizeof tok, "%032d", 1);
    CHECK_INT(task_fail(t, tok, "bad input", false, 3000, 0, &e), 0);
    CHECK_INT(t->phase, TASK_FAILED);
    CHECK_STR(task_status_name(t->status), "ERROR");
    CHECK_INT(t->retries, 0);
    task_free(t);
}

static void test_progress_rules(void) {
    struct task *t = task_in(TASK_RUNNING);
    struct task_progress_update u = {0};
    u.has_processed = u.has_processing = u.has_pending = true;
    u.processed = 1;
    u.processing = 1;
    u.pending = 1;
    task_set_progress(t, &u, 3000);
    CHECK_INT(task_percent(t), 33);
    u = (struct task_progress_update){.has_ratio = true, .ratio = 0.999};
    task_set_progress(t, &u, 3000);
    CHECK_INT(task_percent(t), 99); /* 100 only when completed */
    u = (struct task_progress_update){.has_ratio = true, .ratio = 1.0};
    task_set_progress(t, &u, 3000);
    CHECK_INT(task_percent(t), 99);
    /* Counts without a ratio: the ratio follows the counts again. */
    u = (struct task_progress_update){.has_processed = true, .processed = 2};
    task_set_progress(t, &u, 3000);
    CHECK_INT(task_percent(t), 50); /* 2 of 2+1+1 */
    /* Children's counts win over the task's own. */
    t->child_processed = 3;
    t->child_processing = 0;
    t->child_pending = 1;
    CHECK_INT(task_percent(t), 75);
    /* The open child ends (a parent with open children would wait for them:
     * test_parent_awaits_children); completing it then shows 100. */
    t->child_pending = 0;
    t->child_ended = 1;
    struct tm_error e;
    char tok[33];
    snprintf(tok, sizeof tok, "%032d", 1);
    CHECK_INT(task_complete(t, tok, false, 4000, &e), 0);
    CHECK_INT(t->phase, TASK_COMPLETED);
    CHECK_INT(task_percent(t), 100);
    task_free(t);
}

static void test_pause_resume(void) {
    struct tm_error e;
    struct task *t = task_in(TASK_PENDING);
    CHECK_INT(task_pause(t, 2000, &e), 0);
    CHECK(t->paused);
    CHECK_INT(task_claim(t, "w", "abcdefabcdefabcdefabcdefabcdefab", 1000, 2000, &e), TM_ECONFLICT);
    int64_t v = t->version;
    CHECK_INT(task_pause(t, 2000, &e), 0); /* again: no change */
    CHECK_INT(t->version, v);
    CHECK_INT(task_resume(t, 2500, &e), 0);
    CHECK(!t->paused);
    CHECK_INT(t->ready_at, 2500);
    task_free(t);
    t = task_in(TASK_COMPLETED);
    CHECK_INT(task_pause(t, 2000, &e), TM_ECONFLICT);
    CHECK_INT(task_resume(t, 2000, &e), TM_ECONFLICT);
    task_free(t);
}

static void test_backoff(void) {
    /* Equal jitter: between half and all of base * 2^(n-1), capped. */
    for (uint32_t rnd = 0; rnd < 2000; rnd += 37) {
        int64_t d1 = task_backoff_ms(1000, 60000, 1, rnd);
        int64_t d3 = task_backoff_ms(1000, 60000, 3, rnd);
        int64_t d20 = task_backoff_ms(1000, 60000, 20, rnd);
        CHECK(d1 >= 500 && d1 <= 1000);
        CHECK(d3 >= 2000 && d3 <= 4000);
        CHECK(d20 >= 30000 && d20 <= 60000);
    }
    CHECK_INT(task_backoff_ms(0, 1000, 3, 5), 0);
}

static void test_delete_only_terminal(void) {
    struct tm_error e;
    for (int p = 0; p < TASK_PHASE_COUNT; p++) {
        struct task *t = task_in((enum task_phase)p);
        int rc = task_check_delete(t, &e);
        CHECK_INT(rc, task_phase_is_terminal((enum task_phase)p) ? 0 : TM_ECONFLICT);
        task_free(t);
    }
}

static void test_parent_awaits_children(void) {
    struct tm_error e;
    struct task *t = task_in(TASK_RUNNING);
    t->child_pending = 1;
    t->child_processed = 1;
    char tok[33];
    snprintf(tok, sizeof tok, "%032d", 1);
    /* Its own work done, a child still open: it waits, with no lease. */
    CHECK_INT(task_complete(t, tok, false, 3000, &e), 0);
    CHECK_INT(t->phase, TASK_WAITING);
    CHECK(t->awaiting_children);
    CHECK(t->lease_worker == NULL);
    CHECK_INT(task_due_at(t), 0); /* not the sweep's to wake */
    CHECK_INT(task_wake(t, 3500, &e), TM_ECONFLICT);
    CHECK_INT(task_children_done(t, 3500, &e), TM_ECONFLICT); /* a child is still open */
    /* The child ends failed: the parent completes, with a warning. */
    t->child_pending = 0;
    t->child_ended = 1;
    CHECK(!task_has_open_children(t));
    CHECK_INT(task_children_done(t, 4000, &e), 0);
    CHECK_INT(t->phase, TASK_COMPLETED);
    CHECK_INT(t->status, TASK_WARNING);
    CHECK(!t->awaiting_children);
    CHECK_INT(task_percent(t), 100);
    task_free(t);
    /* Failed and cancelled children show as pending. */
    t = task_in(TASK_PENDING);
    t->child_ended = 2;
    t->child_processed = 2;
    int64_t done, doing, todo;
    task_counts(t, &done, &doing, &todo);
    CHECK_INT(todo, 2);
    CHECK_INT(task_percent(t), 50);
    /* Cancelling an awaiting parent ends the wait. */
    task_free(t);
    t = task_in(TASK_RUNNING);
    t->child_processing = 1;
    CHECK_INT(task_complete(t, tok, false, 3000, &e), 0);
    CHECK_INT(task_cancel(t, 3100, &e), 0);
    CHECK_INT(t->phase, TASK_CANCELLED);
    CHECK(!t->awaiting_children);
    task_free(t);
}

/* Every whole percent a worker can send, as a ratio and as counts of 100
 * items, reads back as itself: 0.29 * 100 is 28.999999999999996 in
 * binary floating point, which a bare floor made 28 (57 and 58 too). */
static void test_percent_whole_numbers(void) {
    struct task *t = task_in(TASK_RUNNING);
    for (int pct = 0; pct < 100; pct++) {
        struct task_progress_update u = {.has_ratio = true, .ratio = pct / 100.0};
        task_set_progress(t, &u, 3000);
        if (task_percent(t) != pct) {
            th_fail(__FILE__, __LINE__, "ratio %d/100 gives percent %d", pct, task_percent(t));
            break;
        }
        u = (struct task_progress_update){
            .has_processed = true, .processed = pct, .has_pending = true, .pending = 100 - pct};
        task_set_progress(t, &u, 3000);
        if (task_percent(t) != pct) {
            th_fail(__FILE__, __LINE__, "%d of 100 items gives percent %d", pct, task_percent(t));
            break;
        }
    }
    /* Just below a whole number by more than rounding: still floored. */
    struct task_progress_update u = {.has_ratio = true, .ratio = 0.289999};
    task_set_progress(t, &u, 3000);
    CHECK_INT(task_percent(t), 28);
    task_free(t);
}

/* A parent whose child had already failed when its worker completed it
 * was SUCCESS, while one whose child failed after the complete (it
 * awaited it) was WARNING: the order of two ends decided the status. */
static void test_parent_with_ended_child_warns(void) {
    struct tm_error e;
    char tok[33];
    snprintf(tok, sizeof tok, "%032d", 1);
    struct task *t = task_in(TASK_RUNNING);
    t->child_ended = 1;
    t->child_processed = 1;
    CHECK_INT(task_complete(t, tok, false, 3000, &e), 0);
    CHECK_INT(t->phase, TASK_COMPLETED);
    CHECK_INT(t->status, TASK_WARNING);
    task_free(t);
    t = task_in(TASK_RUNNING); /* children all completed: SUCCESS */
    t->child_processed = 2;
    CHECK_INT(task_complete(t, tok, false, 3000, &e), 0);
    CHECK_INT(t->status, TASK_SUCCESS);
    task_free(t);
}

/* A lost lease's error named the worker cut at 40 bytes, which could
 * split a character: the stored error was not UTF-8. */
static void test_lease_lost_error_is_utf8(void) {
    struct tm_error e;
    struct task *t = task_in(TASK_RUNNING);
    free(t->lease_worker);
    t->lease_worker = xstrdup("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\xc3\xa9"); /* 39 + 'é' */
    CHECK_INT(task_lease_lost(t, 6000, 0, &e), 0);
    CHECK_STR(t->error,
              "lease of worker 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\xc3\xa9' expired");
    task_free(t);
}

static const struct th_test tests[] = {
    {"transition table matches DESIGN.md", test_transition_table},
    {"every move from every phase", test_every_move_from_every_phase},
    {"a stale lease token is refused and changes nothing", test_stale_lease_refused},
    {"retryable failures back off, then TEMPERROR; manual retry", test_retries_then_temperror},
    {"a fatal failure is ERROR without retries", test_fatal_failure_is_error},
    {"progress: counts, ratio, percent, children", test_progress_rules},
    {"pause and resume", test_pause_resume},
    {"backoff is exponential, jittered and capped", test_backoff},
    {"only terminal tasks can be deleted", test_delete_only_terminal},
    {"a parent completed with open children waits for them", test_parent_awaits_children},
    {"a whole percent reads back as itself", test_percent_whole_numbers},
    {"a parent with a failed or cancelled child completes WARNING",
     test_parent_with_ended_child_warns},
    {"a lost lease's error keeps the worker's name whole", test_lease_lost_error_is_utf8},
    {NULL, NULL},
};

int main(int argc, char **argv) {
    return th_main(tests, argc, argv);
}
