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

static const struct th_test tests[] = {
    {"finished tasks past --finished-max-age-seconds are deleted; others stay",
     test_finished_tasks_are_deleted},
    {NULL, NULL},
};

int main(int argc, char **argv) {
    return th_main_server(tests, argc, argv, &srv, "--finished-max-age-seconds", "1", NULL);
}
