/*
 * Retention of finished tasks (--finished-max-age-seconds): completed,
 * failed and cancelled tasks unchanged that long are deleted by the
 * server, with their task.deleted events and the queue counts following;
 * pending and running ones stay; a pruned child keeps its counts in an
 * unfinished parent and leaves them in a finished one. A queue's own
 * retention per terminal phase (PUT /v1/queues/{queue} "retention")
 * prunes or keeps its tasks, over the server's age or without one. Both
 * backends.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"

static struct th_server srv;

static long status_of(const char *id) {
    char path[80];
    snprintf(path, sizeof path, "/v1/tasks/%s", id);
    return th_http(&srv, "GET", path, NULL)->status;
}

static void test_finished_tasks_are_deleted(void) {
    char *done = th_submit(&srv, "ret", "\"queue\":\"retq\"");
    char *cancelled = th_submit(&srv, "ret", "\"queue\":\"retq\"");
    char *running = th_submit(&srv, "ret", "\"queue\":\"retq2\"");
    char *waiting = th_submit(&srv, "ret", "\"queue\":\"retq3\"");
    CHECK(done && cancelled && running && waiting);
    char id[33], token[33], path[128];
    CHECK_INT(th_claim(&srv, "retq", NULL, id, token), 200);
    snprintf(path, sizeof path, "/v1/tasks/%s/complete", id);
    CHECK_INT(th_http(&srv, "POST", path, "{\"lease_token\":\"%s\"}", token)->status, 200);
    snprintf(path, sizeof path, "/v1/tasks/%s/cancel", cancelled);
    CHECK_INT(th_http(&srv, "POST", path, NULL)->status, 200);
    char rid[33], rtoken[33];
    CHECK_INT(th_claim(&srv, "retq2", "{\"worker\":\"w\",\"lease_seconds\":600}", rid, rtoken),
              200);
    /* Both finished ones go within a few seconds of their second; the others stay. */
    bool gone = false;
    for (int i = 0; i < 200 && !gone; i++) {
        gone = status_of(id) == 404 && status_of(cancelled) == 404;
        if (!gone) th_sleep_ms(50);
    }
    CHECK(gone);
    CHECK_INT(status_of(running), 200);
    CHECK_INT(status_of(waiting), 200);
    /* Counted, and logged as the server's own deletes (no actor). */
    struct th_resp *r = th_http(&srv, "GET", "/metrics", NULL);
    CHECK(strstr(r->body, "taskmill_tasks_pruned_total ") != NULL);
    CHECK(!strstr(r->body, "taskmill_tasks_pruned_total 0\n"));
    /* The queue counts follow the deletes. */
    r = th_http(&srv, "GET", "/v1/queues", NULL);
    json_t *queues = th_get(r->json, "queues");
    for (size_t i = 0; i < json_array_size(queues); i++) {
        json_t *q = json_array_get(queues, i);
        if (strcmp(th_str(q, "name"), "retq") != 0) continue;
        CHECK_INT(th_int(q, "counts.completed"), 0);
        CHECK_INT(th_int(q, "counts.cancelled"), 0);
        CHECK_INT(th_int(q, "total"), 0);
    }
    free(done);
    free(cancelled);
    free(running);
    free(waiting);
}

/*
 * A parent still running needs its finished children's counts: what its
 * progress shows, and whether it completes as WARNING (a child failed or
 * was cancelled). Retention took a pruned child out of them, so the
 * parent's progress went back and a parent with a cancelled child,
 * completed after the child was pruned, said SUCCESS. The pruned children
 * keep their place in an unfinished parent's counts.
 */
static void test_pruned_children_still_count_for_their_parent(void) {
    char *parent = th_submit(&srv, "retp", "\"queue\":\"retpq\"");
    CHECK(parent != NULL);
    if (!parent) return;
    char pid[33], ptoken[33], path[128], extra[80];
    CHECK_INT(th_claim(&srv, "retpq", "{\"worker\":\"w\",\"lease_seconds\":600}", pid, ptoken),
              200);
    snprintf(extra, sizeof extra, "\"queue\":\"retcq\",\"parent_id\":\"%s\"", parent);
    char *done = th_submit(&srv, "retc", extra);
    char *cancelled = th_submit(&srv, "retc", extra);
    CHECK(done && cancelled);
    char cid[33], ctoken[33];
    CHECK_INT(th_claim(&srv, "retcq", NULL, cid, ctoken), 200);
    CHECK_STR(cid, done);
    snprintf(path, sizeof path, "/v1/tasks/%s/complete", cid);
    CHECK_INT(th_http(&srv, "POST", path, "{\"lease_token\":\"%s\"}", ctoken)->status, 200);
    snprintf(path, sizeof path, "/v1/tasks/%s/cancel", cancelled);
    CHECK_INT(th_http(&srv, "POST", path, NULL)->status, 200);
    bool gone = false;
    for (int i = 0; i < 200 && !gone; i++) {
        gone = status_of(done) == 404 && status_of(cancelled) == 404;
        if (!gone) th_sleep_ms(50);
    }
    CHECK(gone);
    /* The parent's progress is what it was: one processed, one ended (shown pending). */
    snprintf(path, sizeof path, "/v1/tasks/%s", parent);
    struct th_resp *r = th_http(&srv, "GET", path, NULL);
    CHECK_INT(r->status, 200);
    CHECK_INT(th_int(r->json, "progress.processed"), 1);
    CHECK_INT(th_int(r->json, "progress.pending"), 1);
    /* And it completes as WARNING: one of its children was cancelled. */
    snprintf(path, sizeof path, "/v1/tasks/%s/complete", parent);
    r = th_http(&srv, "POST", path, "{\"lease_token\":\"%s\"}", ptoken);
    CHECK_INT(r->status, 200);
    CHECK_STR(th_str(r->json, "phase"), "completed");
    CHECK_STR(th_str(r->json, "completion_status"), "WARNING");
    free(parent);
    free(done);
    free(cancelled);
}

static long status_on(struct th_server *s, const char *id) {
    char path[80];
    snprintf(path, sizeof path, "/v1/tasks/%s", id);
    return th_http(s, "GET", path, NULL)->status;
}

/*
 * A parent already finished gives up a pruned child's counts (the other
 * half of store_parent_keeps_child); they change, and with them its clock.
 * On a true clock the window is one age period (a finished parent goes
 * soon after its children), so here the clocks are set: the child is
 * finished two days back (libfaketime), the parent cancelled now, and only
 * then does the server run with retention of a day. The child is due, the
 * parent not for a day: no race.
 */
static void test_finished_parent_gives_up_pruned_child(void) {
    struct th_server s;
    if (th_server_start_at(&s, "-2d")) return;
    char *parent = th_submit(&s, "retfp", "\"queue\":\"retfpq\"");
    char extra[96], path[128], cid[33], ctoken[33];
    snprintf(extra, sizeof extra, "\"queue\":\"retfcq\",\"parent_id\":\"%s\"",
             parent ? parent : "");
    char *child = parent ? th_submit(&s, "retfc", extra) : NULL;
    CHECK(parent && child);
    CHECK_INT(th_claim(&s, "retfcq", NULL, cid, ctoken), 200);
    snprintf(path, sizeof path, "/v1/tasks/%s/complete", cid);
    CHECK_INT(th_http(&s, "POST", path, "{\"lease_token\":\"%s\"}", ctoken)->status, 200);
    /* Now, on the true clock and without retention: the parent ends. */
    th_server_stop(&s, false);
    CHECK_INT(th_server_restart(&s), 0);
    snprintf(path, sizeof path, "/v1/tasks/%s/cancel", parent);
    CHECK_INT(th_http(&s, "POST", path, NULL)->status, 200);
    snprintf(path, sizeof path, "/v1/tasks/%s", parent);
    struct th_resp *r = th_http(&s, "GET", path, NULL);
    CHECK_STR(th_str(r->json, "phase"), "cancelled");
    CHECK_INT(th_int(r->json, "progress.processed"), 1);
    const char *was = th_str(r->json, "updated_at");
    char before[40];
    snprintf(before, sizeof before, "%s", was ? was : "");
    /* With retention of a day the child, two days old, goes; the parent stays. */
    th_server_stop(&s, false);
    s.args[0] = "--finished-max-age-seconds";
    s.args[1] = "86400";
    s.args[2] = NULL;
    CHECK_INT(th_server_restart(&s), 0);
    WAIT_UNTIL(status_on(&s, child) == 404, 20000, "the two-day-old child to be pruned");
    r = th_http(&s, "GET", path, NULL);
    CHECK_INT(r->status, 200);
    CHECK_STR(th_str(r->json, "phase"), "cancelled");
    CHECK_INT(th_int(r->json, "progress.processed"), 0);
    CHECK_INT(th_int(r->json, "progress.pending"), 0);
    const char *now = th_str(r->json, "updated_at");
    CHECK(now && strcmp(now, before) > 0); /* its counts changed: its clock starts again */
    free(parent);
    free(child);
    th_server_free(&s);
}

/* *out: a task in queue q, finished as `how` says: "completed", "failed"
 * (no retries) or "cancelled" (NULL after a failed check). */
static void finish_task(struct th_server *s, const char *q, const char *how, char **out) {
    char extra[96], path[128], id[33], token[33];
    snprintf(extra, sizeof extra, "\"queue\":\"%s\",\"max_retries\":0", q);
    char *t = *out = th_submit(s, "retq", extra);
    CHECK(t != NULL);
    if (strcmp(how, "cancelled") == 0) {
        snprintf(path, sizeof path, "/v1/tasks/%s/cancel", t);
        CHECK_INT(th_http(s, "POST", path, NULL)->status, 200);
        return;
    }
    CHECK_INT(th_claim(s, q, NULL, id, token), 200);
    CHECK_STR(id, t);
    bool done = strcmp(how, "completed") == 0;
    snprintf(path, sizeof path, "/v1/tasks/%s/%s", t, done ? "complete" : "fail");
    CHECK_INT(th_http(s, "POST", path, "{\"lease_token\":\"%s\"%s}", token,
                      done ? "" : ",\"error\":\"x\"")
                  ->status,
              200);
    CHECK_STR(th_phase(s, t), how);
}

/* Sets a sentinel queue's completed retention to a minute, so that its task
 * finished two days back goes, and waits for that: passes read the (queue,
 * phase) pairs in name order from the first after a restart, so by then
 * every queue named before the sentinel (rqa..rqd) has been read, and the
 * next pass starts only once that one's deletes are done, so after two
 * sentinels no delete of an earlier pass is still on its way. */
static bool sentinel_pruned(struct th_server *s, const char *q, const char *id) {
    char path[64];
    snprintf(path, sizeof path, "/v1/queues/%s", q);
    long st = th_http(s, "PUT", path, "{\"retention\":{\"completed_seconds\":60}}")->status;
    if (st != 200) {
        th_fail(__FILE__, __LINE__, "PUT %s: %ld", path, st);
        return false;
    }
    bool ok;
    TRY_WAIT_UNTIL(ok, status_on(s, id) == 404, 20000, "the sentinel in '%s' to be pruned", q);
    return ok;
}

/*
 * Per queue and per terminal phase (PUT /v1/queues/{queue} "retention"):
 * tasks finished two days back (libfaketime) in queues with different
 * settings, then the server on the true clock, first without an age of
 * its own (only the queues' ages prune), then with a day (the phases a
 * queue leaves out take it; a queue's 0 keeps its tasks, a queue's week
 * keeps its two-day-old task until a PUT without "retention" clears it).
 */
static void test_retention_per_queue_and_phase(void) {
    struct th_server s;
    if (th_server_start_at(&s, "-2d")) return;
    char *a_new = NULL;
    bool ok_;
    char *a_c = NULL;
    finish_task(&s, "rqa", "completed", &a_c);
    char *a_f = NULL;
    finish_task(&s, "rqa", "failed", &a_f);
    char *a_x = NULL;
    finish_task(&s, "rqa", "cancelled", &a_x);
    char *b_c = NULL;
    finish_task(&s, "rqb", "completed", &b_c);
    char *b_f = NULL;
    finish_task(&s, "rqb", "failed", &b_f);
    char *b_x = NULL;
    finish_task(&s, "rqb", "cancelled", &b_x);
    char *c_c = NULL;
    finish_task(&s, "rqc", "completed", &c_c);
    char *d_c = NULL; /* rqd keeps its completed tasks a week: longer than the server's day */
    finish_task(&s, "rqd", "completed", &d_c);
    char *s1 = NULL;
    finish_task(&s, "rqs1", "completed", &s1);
    char *s2 = NULL;
    finish_task(&s, "rqs2", "completed", &s2);
    char *s3 = NULL;
    finish_task(&s, "rqs3", "completed", &s3);
    char *s4 = NULL;
    finish_task(&s, "rqs4", "completed", &s4);
    struct th_resp *r = th_http(&s, "PUT", "/v1/queues/rqa",
                                "{\"retention\":{\"completed_seconds\":3600,"
                                "\"failed_seconds\":0}}");
    CHECK_INT(r->status, 200);
    CHECK_INT(th_int(r->json, "settings.retention.completed_seconds"), 3600);
    CHECK_INT(th_int(r->json, "settings.retention.failed_seconds"), 0);
    CHECK(th_get(r->json, "settings.retention.cancelled_seconds") == NULL);
    CHECK_INT(
        th_http(&s, "PUT", "/v1/queues/rqb", "{\"retention\":{\"failed_seconds\":3600}}")->status,
        200);
    CHECK_INT(th_http(&s, "PUT", "/v1/queues/rqd", "{\"retention\":{\"completed_seconds\":604800}}")
                  ->status,
              200);
    /* The sentinels of the second run: kept until then. */
    CHECK_INT(
        th_http(&s, "PUT", "/v1/queues/rqs3", "{\"retention\":{\"completed_seconds\":0}}")->status,
        200);
    CHECK_INT(
        th_http(&s, "PUT", "/v1/queues/rqs4", "{\"retention\":{\"completed_seconds\":0}}")->status,
        200);
    if (th_failed()) goto out;

    /* The true clock, no server age: only rqa's completed and rqb's failed go. */
    th_server_stop(&s, false);
    CHECK_INT(th_server_restart(&s), 0);
    finish_task(&s, "rqa", "completed", &a_new); /* an hour is not up */
    r = th_http(&s, "GET", "/v1/queues", NULL);
    CHECK(strstr(r->body, "\"retention\":{\"failed_seconds\":3600}") != NULL); /* rqb */
    TRY_WAIT_UNTIL(ok_, status_on(&s, a_c) == 404 && status_on(&s, b_f) == 404, 20000,
                   "rqa's completed and rqb's failed task to be pruned");
    if (!ok_) goto out;
    if (!sentinel_pruned(&s, "rqs1", s1) || !sentinel_pruned(&s, "rqs2", s2)) goto out;
    CHECK_INT(status_on(&s, a_f), 200);
    CHECK_INT(status_on(&s, a_x), 200);
    CHECK_INT(status_on(&s, b_c), 200);
    CHECK_INT(status_on(&s, b_x), 200);
    CHECK_INT(status_on(&s, c_c), 200);
    CHECK_INT(status_on(&s, d_c), 200);
    CHECK_INT(status_on(&s, a_new), 200);
    r = th_http(&s, "GET", "/v1/queues", NULL);
    CHECK(strstr(r->body, "\"name\":\"rqa\"") != NULL);

    /* A day for every phase a queue leaves out: all go but rqa's failed (0:
     * kept) and its completed one of now (its own hour). */
    th_server_stop(&s, false);
    s.args[0] = "--finished-max-age-seconds";
    s.args[1] = "86400";
    s.args[2] = NULL;
    CHECK_INT(th_server_restart(&s), 0);
    TRY_WAIT_UNTIL(ok_,
                   status_on(&s, a_x) == 404 && status_on(&s, b_c) == 404 &&
                       status_on(&s, b_x) == 404 && status_on(&s, c_c) == 404,
                   20000, "the tasks past the server's day to be pruned");
    if (!ok_) goto out;
    if (!sentinel_pruned(&s, "rqs3", s3) || !sentinel_pruned(&s, "rqs4", s4)) goto out;
    CHECK_INT(status_on(&s, a_f), 200);
    CHECK_INT(status_on(&s, a_new), 200);
    CHECK_INT(status_on(&s, d_c), 200); /* its own week, past the server's day */

    /* A PUT without "retention" clears rqd's: the server's day takes it. */
    r = th_http(&s, "PUT", "/v1/queues/rqd", "{\"max_retries\":2}");
    CHECK_INT(r->status, 200);
    CHECK(th_get(r->json, "settings.retention.completed_seconds") == NULL);
    TRY_WAIT_UNTIL(ok_, status_on(&s, d_c) == 404, 20000,
                   "rqd's task to be pruned by the server's day once its week is cleared");
    CHECK_INT(status_on(&s, a_f), 200);
out:
    free(a_c), free(a_f), free(a_x), free(b_c), free(b_f), free(b_x), free(c_c), free(d_c);
    free(s1), free(s2), free(s3), free(s4), free(a_new);
    th_server_free(&s);
}

static const struct th_test tests[] = {
    {"finished tasks past --finished-max-age-seconds are deleted; others stay",
     test_finished_tasks_are_deleted},
    {"a running parent's pruned children still count in its progress and its status",
     test_pruned_children_still_count_for_their_parent},
    {"a finished parent's pruned child leaves its counts (clocks set by libfaketime)",
     test_finished_parent_gives_up_pruned_child},
    {"each queue's retention per terminal phase prunes or keeps its finished tasks",
     test_retention_per_queue_and_phase},
    {NULL, NULL},
};

int main(int argc, char **argv) {
    return th_main_server(tests, argc, argv, &srv, "--finished-max-age-seconds", "1", NULL);
}
