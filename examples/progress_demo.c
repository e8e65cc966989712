/*
 * progress_demo: a small program using libtaskmill on both sides of a task.
 *
 * It submits a "demo" task to queue "demo", claims it as a worker, reports
 * ten steps of progress (ratio, counts, one item each, an INFO message) in
 * heartbeats, completes it with a result, and prints the final state. It
 * stops early if someone cancels the task (`taskmill cancel ID`).
 *
 *   make && build/examples/progress_demo [URL]     (default $TASKMILL_URL or
 *                                                   http://127.0.0.1:8080)
 * Build elsewhere with: cc progress_demo.c $(pkg-config --cflags --libs taskmill)
 * Single-threaded; exits 0 when the task completed, 1 otherwise.
 */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include <taskmill.h>

static int fail(struct tm_client *c, const char *what) {
    const struct tm_client_error *e = tm_client_last_error(c);
    fprintf(stderr, "progress_demo: %s: %s (%s)\n", what, e->message, tm_strerror(e->code));
    return 1;
}

int main(int argc, char **argv) {
    const char *url = argc > 1 ? argv[1] : getenv("TASKMILL_URL");
    struct tm_client *c =
        tm_client_new(url ? url : "http://127.0.0.1:8080", getenv("TASKMILL_TOKEN"));
    int rc = 1;
    json_t *task = NULL;

    /* The submitting side: a task with params. */
    json_t *spec = json_pack("{s:s, s:s, s:s, s:{s:i}}", "type", "demo", "queue", "demo", "name",
                             "progress demo", "params", "steps", 10);
    if (tm_submit(c, spec, NULL, &task)) {
        rc = fail(c, "submit");
        goto out;
    }
    printf("submitted %s\n", json_string_value(json_object_get(task, "id")));
    json_decref(task);
    task = NULL;

    /* The worker side: claim it and report progress. */
    struct tm_claim_options opt = {
        .worker = "progress_demo", .lease_seconds = 30, .wait_seconds = 5};
    char token[TM_LEASE_TOKEN_MAX];
    if (tm_claim(c, "demo", &opt, &task, token)) {
        rc = fail(c, "claim");
        goto out;
    }
    if (!task) {
        fprintf(stderr, "progress_demo: no task to claim in queue 'demo'\n");
        goto out;
    }
    const char *id = json_string_value(json_object_get(task, "id"));
    int steps = (int)json_integer_value(json_object_get(json_object_get(task, "params"), "steps"));
    for (int i = 1; i <= steps; i++) {
        struct timespec ts = {0, 200 * 1000000L};
        nanosleep(&ts, NULL); /* the work */
        char name[32], msg[64];
        snprintf(name, sizeof name, "part-%d", i);
        snprintf(msg, sizeof msg, "finished part %d of %d", i, steps);
        json_t *items = json_pack("[{s:s, s:f}]", "name", name, "progress", 1.0);
        json_t *messages = json_pack("[{s:s, s:s}]", "level", "INFO", "text", msg);
        struct tm_report r = {.message = msg,
                              .has_counts = true,
                              .processed = i,
                              .pending = steps - i,
                              .items = items,
                              .messages = messages};
        struct tm_heartbeat_reply reply;
        int hb = tm_heartbeat(c, id, token, 0, &r, &reply);
        json_decref(items);
        json_decref(messages);
        if (hb) {
            rc = fail(c, "heartbeat");
            goto out;
        }
        if (reply.cancel_requested) {
            printf("cancel requested; stopping\n");
            tm_fail(c, id, token, "cancelled by request", false, NULL, NULL);
            goto out;
        }
    }
    json_t *result = json_pack("{s:i}", "parts", steps), *done = NULL;
    int crc = tm_complete(c, id, token, result, NULL, &done);
    json_decref(result);
    if (crc) {
        rc = fail(c, "complete");
        goto out;
    }
    printf("%s %s\n", json_string_value(json_object_get(done, "phase")),
           json_string_value(json_object_get(done, "completion_status")));
    rc = 0;
    json_decref(done);
out:
    json_decref(spec);
    json_decref(task);
    tm_client_free(c);
    return rc;
}
