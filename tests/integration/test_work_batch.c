/*
 * The batched worker protocol (docs/api.md section 7.8a): claim many tasks
 * in one request, and heartbeat, complete, fail or release many in one,
 * each entry with its own fenced lease and its own outcome. Both backends.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

#include "harness.h"

static struct th_server srv;

static const char *phase_of(const char *id) {
    return th_phase(&srv, id);
}

static void test_claim_many(void) {
    char *ids[5];
    for (int i = 0; i < 5; i++) {
        ids[i] = th_submit(&srv, "cm", "\"queue\":\"cmq\"");
        CHECK(ids[i]);
    }
    struct th_resp *r =
        th_http(&srv, "POST", "/v1/queues/cmq/claims", "{\"worker\":\"w\",\"max\":3}");
    CHECK_INT(r->status, 200);
    json_t *c = th_get(r->json, "claims");
    CHECK_INT(json_array_size(c), 3);
    /* Oldest first, each its own lease. */
    CHECK_STR(th_str(r->json, "claims.0.task.id"), ids[0]);
    CHECK_STR(th_str(r->json, "claims.2.task.id"), ids[2]);
    CHECK(strcmp(th_str(r->json, "claims.0.lease_token"), th_str(r->json, "claims.1.lease_token")));
    CHECK_STR(th_str(r->json, "claims.1.task.phase"), "running");
    r = th_http(&srv, "POST", "/v1/queues/cmq/claims", "{\"worker\":\"w\",\"max\":10}");
    CHECK_INT(json_array_size(th_get(r->json, "claims")), 2);
    r = th_http(&srv, "POST", "/v1/queues/cmq/claims", "{\"worker\":\"w\",\"max\":10}");
    CHECK_INT(r->status, 204);
    static const struct {
        const char *body, *field;
    } bad[] = {
        {"{\"worker\":\"w\"}", "max"},
        {"{\"worker\":\"w\",\"max\":0}", "max"},
        {"{\"worker\":\"w\",\"max\":101}", "max"},
        {"{\"worker\":\"w\",\"max\":\"3\"}", "max"},
        {"{\"max\":3}", "worker"},
        {"{\"worker\":\"w\",\"max\":3,\"colour\":1}", "colour"},
        {"{\"worker\":\"w\",\"max\":3,\"lease_seconds\":0}", "lease_seconds"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        r = th_http(&srv, "POST", "/v1/queues/cmq/claims", "%s", bad[i].body);
        if (r->status != 400 || strcmp(th_str(r->json, "error.field"), bad[i].field) != 0) {
            th_fail(__FILE__, __LINE__, "%s: %ld %s", bad[i].body, r->status, r->body);
            return;
        }
    }
    r = th_http(&srv, "POST", "/v1/queues/bad%20q/claims", "{\"worker\":\"w\",\"max\":1}");
    CHECK_INT(r->status, 400);
    for (int i = 0; i < 5; i++)
        free(ids[i]);
}

struct waiter {
    long status;
    size_t n;
};

static void *claim_wait(void *arg) {
    struct waiter *w = arg;
    struct th_resp *r = th_http(&srv, "POST", "/v1/queues/cwq/claims",
                                "{\"worker\":\"w\",\"max\":4,\"wait_seconds\":10}");
    w->status = r->status;
    w->n = json_array_size(th_get(r->json, "claims"));
    th_http_raw(NULL, NULL, NULL, NULL, 0, NULL);
    return NULL;
}

static void test_claim_many_waits(void) {
    struct waiter w = {0};
    pthread_t t;
    pthread_create(&t, NULL, claim_wait, &w);
    bool parked;
    TRY_WAIT_UNTIL(parked, th_metric(&srv, "taskmill_parked_claims") >= 1, 10000,
                   "the claim of many to be parked");
    char *id = th_submit(&srv, "cw", "\"queue\":\"cwq\"");
    pthread_join(t, NULL);
    CHECK(id);
    CHECK_INT(w.status, 200);
    CHECK_INT(w.n, 1);
    CHECK_STR(phase_of(id), "running");
    free(id);
}

/* Claims n tasks of a fresh queue; fills ids and tokens. */
static int claim_n(const char *queue, int n, char ids[][33], char toks[][33]) {
    for (int i = 0; i < n; i++) {
        char q[80];
        snprintf(q, sizeof q, "\"queue\":\"%s\"", queue);
        free(th_submit(&srv, "wb", q));
    }
    char path[100];
    snprintf(path, sizeof path, "/v1/queues/%s/claims", queue);
    struct th_resp *r = th_http(&srv, "POST", path, "{\"worker\":\"w\",\"max\":%d}", n);
    json_t *c = th_get(r->json, "claims");
    for (size_t i = 0; i < json_array_size(c); i++) {
        json_t *e = json_array_get(c, i);
        snprintf(ids[i], 33, "%s",
                 json_string_value(json_object_get(json_object_get(e, "task"), "id")));
        snprintf(toks[i], 33, "%s", json_string_value(json_object_get(e, "lease_token")));
    }
    return (int)json_array_size(c);
}

static void test_heartbeat_and_finish_many(void) {
    char ids[4][33], toks[4][33];
    CHECK_INT(claim_n("hbq", 4, ids, toks), 4);
    /* One heartbeat request for all four; the third carries a stale token. */
    struct th_resp *r = th_http(
        &srv, "POST", "/v1/work/heartbeat",
        "{\"entries\":[{\"id\":\"%s\",\"lease_token\":\"%s\",\"progress\":{\"ratio\":0.25}},"
        "{\"id\":\"%s\",\"lease_token\":\"%s\",\"progress\":{\"ratio\":0.5}},"
        "{\"id\":\"%s\",\"lease_token\":\"00000000000000000000000000000000\"},"
        "{\"id\":\"%s\",\"lease_token\":\"%s\",\"messages\":[{\"level\":\"INFO\",\"text\":\"hi\"}]}"
        "]}",
        ids[0], toks[0], ids[1], toks[1], ids[2], ids[3], toks[3]);
    CHECK_INT(r->status, 200);
    CHECK_INT(json_array_size(th_get(r->json, "results")), 4);
    CHECK_STR(th_str(r->json, "results.0.id"), ids[0]);
    CHECK_STR(th_str(r->json, "results.0.phase"), "running");
    CHECK(json_is_false(th_get(r->json, "results.1.cancel_requested")));
    CHECK_STR(th_str(r->json, "results.2.error.code"), "lease_mismatch");
    CHECK_STR(th_str(r->json, "results.3.phase"), "running");
    char path[80];
    snprintf(path, sizeof path, "/v1/tasks/%s", ids[1]);
    r = th_http(&srv, "GET", path, NULL);
    CHECK(th_get(r->json, "progress.ratio") &&
          json_real_value(th_get(r->json, "progress.ratio")) == 0.5);
    /* Cancel one: its next heartbeat in a batch says so. */
    snprintf(path, sizeof path, "/v1/tasks/%s/cancel", ids[3]);
    th_http(&srv, "POST", path, NULL);
    r = th_http(&srv, "POST", "/v1/work/heartbeat",
                "{\"entries\":[{\"id\":\"%s\",\"lease_token\":\"%s\"}]}", ids[3], toks[3]);
    CHECK(json_is_true(th_get(r->json, "results.0.cancel_requested")));
    /* Finish them in three requests of mixed entries. */
    r = th_http(&srv, "POST", "/v1/work/complete",
                "{\"entries\":[{\"id\":\"%s\",\"lease_token\":\"%s\",\"result\":{\"n\":1}},"
                "{\"id\":\"nope\",\"lease_token\":\"x\"},"
                "{\"id\":\"%s\",\"lease_token\":\"%s\",\"colour\":1},"
                "{\"id\":\"0123456789abcdef0123456789abcdef\",\"lease_token\":\"%s\"},7]}",
                ids[0], toks[0], ids[1], toks[1], toks[1]);
    CHECK_INT(r->status, 200);
    CHECK_STR(th_str(r->json, "results.0.phase"), "completed");
    CHECK_STR(th_str(r->json, "results.0.completion_status"), "SUCCESS");
    CHECK_STR(th_str(r->json, "results.1.error.field"), "id");
    CHECK_STR(th_str(r->json, "results.2.error.field"), "colour");
    CHECK_STR(th_str(r->json, "results.3.error.code"), "not_found");
    CHECK(th_get(r->json, "results.3.error.field") == NULL); /* none applies: left out */
    CHECK_STR(th_str(r->json, "results.4.error.code"), "invalid_argument");
    CHECK_STR(phase_of(ids[1]), "running"); /* its entry was refused: nothing changed */
    r = th_http(&srv, "POST", "/v1/work/fail",
                "{\"entries\":[{\"id\":\"%s\",\"lease_token\":\"%s\",\"error\":\"bad\","
                "\"retryable\":false}]}",
                ids[1], toks[1]);
    CHECK_STR(th_str(r->json, "results.0.phase"), "failed");
    r = th_http(&srv, "POST", "/v1/work/release",
                "{\"entries\":[{\"id\":\"%s\",\"lease_token\":\"%s\"},"
                "{\"id\":\"%s\",\"lease_token\":\"%s\"}]}",
                ids[2], toks[2], ids[3], toks[3]);
    CHECK_STR(th_str(r->json, "results.0.phase"), "pending");
    CHECK_STR(th_str(r->json, "results.1.phase"), "cancelled");
    /* The whole request refused: nothing changed. */
    r = th_http(&srv, "POST", "/v1/work/complete", "{\"entries\":[]}");
    CHECK_INT(r->status, 400);
    CHECK_STR(th_str(r->json, "error.field"), "entries");
    r = th_http(&srv, "POST", "/v1/work/complete", "{\"entries\":{}}");
    CHECK_INT(r->status, 400);
    r = th_http(&srv, "POST", "/v1/work/complete", "{\"entries\":[],\"x\":1}");
    CHECK_INT(r->status, 400);
    CHECK_STR(th_str(r->json, "error.field"), "x");
    r = th_http(&srv, "POST", "/v1/work/finish", "{\"entries\":[]}");
    CHECK_INT(r->status, 404);
}

int main(int argc, char **argv) {
    static const struct th_test tests[] = {
        {"claim many: oldest first, each its own lease; bad input named", test_claim_many},
        {"claim many with a wait is served by the next submit", test_claim_many_waits},
        {"heartbeat, complete, fail, release many: each entry on its own",
         test_heartbeat_and_finish_many},
        {NULL, NULL},
    };
    return th_main_server(tests, argc, argv, &srv, NULL);
}
