/*
 * Retention of finished tasks (--finished-max-age-seconds): completed,
 * failed and cancelled tasks unchanged that long are deleted by the
 * server, with their task.deleted events and the queue counts following;
 * pending and running ones stay. Both backends.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

static const struct th_test tests[] = {
    {"finished tasks past --finished-max-age-seconds are deleted; others stay",
     test_finished_tasks_are_deleted},
    {"a running parent's pruned children still count in its progress and its status",
     test_pruned_children_still_count_for_their_parent},
    {NULL, NULL},
};

int main(int argc, char **argv) {
    return th_main_server(tests, argc, argv, &srv, "--finished-max-age-seconds", "1", NULL);
}
