/*
 * The whole life of tasks over HTTP against the real server: submit,
 * claim, heartbeat, complete; failure with retries and backoff; cancel of
 * a running task through the heartbeat; lease expiry; long-polls.
 */
#include <stdio.h>
#include <stdlib.h>

#include "harness.h"

static struct th_server srv;

static void setup(void) {
    if (th_server_start(&srv, NULL)) th_fail(__FILE__, __LINE__, "server did not start");
}

static void teardown(void) {
    th_server_free(&srv);
}

static void test_submit_claim_heartbeat_complete(void) {
    struct th_resp *r = th_http(&srv, "POST", "/v1/tasks",
                                "{\"type\":\"resize\",\"name\":\"batch 1\",\"params\":{\"n\":3}}");
    CHECK_INT(r->status, 201);
    CHECK_STR(th_str(r->json, "phase"), "pending");
    CHECK_INT(th_int(r->json, "version"), 1);
    CHECK_STR(th_str(r->json, "queue"), "default");
    char loc[128];
    CHECK(th_resp_header(r, "Location", loc, sizeof loc));
    char *id = strdup(th_str(r->json, "id"));

    char cid[33], tok[33];
    CHECK_INT(th_claim(&srv, "default", "{\"worker\":\"w1\",\"types\":[\"resize\"]}", cid, tok),
              200);
    CHECK_STR(cid, id);
    CHECK_STR(th_phase(&srv, id), "running");

    char path[128];
    snprintf(path, sizeof path, "/v1/tasks/%s/heartbeat", id);
    r = th_http(&srv, "POST", path,
                "{\"lease_token\":\"%s\",\"progress\":{\"processed\":1,\"processing\":1,"
                "\"pending\":2,\"message\":\"working\"},\"items\":[{\"name\":\"a.jpg\","
                "\"progress\":1}],\"messages\":[{\"level\":\"INFO\",\"text\":\"started\"}],"
                "\"attributes\":{\"host\":\"h1\"}}",
                tok);
    CHECK_INT(r->status, 200);
    CHECK(json_is_false(th_get(r->json, "cancel_requested")));
    CHECK(json_is_false(th_get(r->json, "pause_requested")));
    CHECK(th_str(r->json, "lease_expires_at") != NULL);

    snprintf(path, sizeof path, "/v1/tasks/%s", id);
    r = th_http(&srv, "GET", path, NULL);
    CHECK_INT(th_int(r->json, "progress.percent"), 25);
    CHECK_INT(th_int(r->json, "progress.processed"), 1);
    CHECK_STR(th_str(r->json, "progress.message"), "working");
    CHECK_STR(th_str(r->json, "items.0.name"), "a.jpg");
    CHECK_STR(th_str(r->json, "messages.0.level"), "INFO");
    CHECK_STR(th_str(r->json, "attributes.host"), "h1");
    CHECK_STR(th_str(r->json, "lease.worker"), "w1");

    snprintf(path, sizeof path, "/v1/tasks/%s/complete", id);
    r = th_http(&srv, "POST", path, "{\"lease_token\":\"%s\",\"result\":{\"ok\":true}}", tok);
    CHECK_INT(r->status, 200);
    CHECK_STR(th_str(r->json, "phase"), "completed");
    CHECK_STR(th_str(r->json, "completion_status"), "SUCCESS");
    CHECK_INT(th_int(r->json, "progress.percent"), 100);
    CHECK(json_is_true(th_get(r->json, "result.ok")));
    CHECK(json_is_null(th_get(r->json, "lease")));
    CHECK(th_str(r->json, "completed_at") != NULL);
    free(id);
}

static void test_warning_completion(void) {
    char *id = th_submit(&srv, "warn", "\"queue\":\"warnq\"");
    CHECK(id);
    char cid[33], tok[33];
    CHECK_INT(th_claim(&srv, "warnq", NULL, cid, tok), 200);
    char path[128];
    snprintf(path, sizeof path, "/v1/tasks/%s/heartbeat", id);
    CHECK_INT(
        th_http(&srv, "POST", path,
                "{\"lease_token\":\"%s\",\"messages\":[{\"level\":\"WARN\",\"text\":\"odd\"}]}",
                tok)
            ->status,
        200);
    snprintf(path, sizeof path, "/v1/tasks/%s/complete", id);
    struct th_resp *r = th_http(&srv, "POST", path, "{\"lease_token\":\"%s\"}", tok);
    CHECK_STR(th_str(r->json, "completion_status"), "WARNING");
    free(id);
}

/* Submits a task of `type` to `queue` and claims it: its id and lease token. */
static bool running_task(const char *queue, char id[33], char tok[33]) {
    char extra[96];
    snprintf(extra, sizeof extra, "\"queue\":\"%s\"", queue);
    char *sub = th_submit(&srv, "t", extra);
    bool ok = sub && th_claim(&srv, queue, NULL, id, tok) == 200 && strcmp(id, sub) == 0;
    free(sub);
    return ok;
}

/* A whole percent a worker sends, or 29 of 100 items, reads back as itself
 * (floor(0.29 * 100) in floating point was 28). */
static void test_percent_reads_back(void) {
    char id[33], tok[33], path[128];
    CHECK(running_task("pctq", id, tok));
    snprintf(path, sizeof path, "/v1/tasks/%s/heartbeat", id);
    CHECK_INT(
        th_http(&srv, "POST", path, "{\"lease_token\":\"%s\",\"progress\":{\"percent\":29}}", tok)
            ->status,
        200);
    snprintf(path, sizeof path, "/v1/tasks/%s", id);
    CHECK_INT(th_int(th_http(&srv, "GET", path, NULL)->json, "progress.percent"), 29);
    snprintf(path, sizeof path, "/v1/tasks/%s/heartbeat", id);
    CHECK_INT(
        th_http(&srv, "POST", path,
                "{\"lease_token\":\"%s\",\"progress\":{\"processed\":58,\"pending\":42}}", tok)
            ->status,
        200);
    snprintf(path, sizeof path, "/v1/tasks/%s", id);
    CHECK_INT(th_int(th_http(&srv, "GET", path, NULL)->json, "progress.percent"), 58);
}

static const struct th_test tests[] = {
    {"submit, claim, heartbeat, complete", test_submit_claim_heartbeat_complete},
    {"a WARN message completes with WARNING", test_warning_completion},
    {"a whole percent reads back as itself", test_percent_reads_back},
    {NULL, NULL},
};

int main(int argc, char **argv) {
    setup();
    int rc = th_main(tests, argc, argv);
    teardown();
    return rc || th_failed();
}
