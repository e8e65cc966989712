/*
 * The v1 API end to end against the real server: idempotency, batches,
 * long-polls, listing and paging, the controls, claims that wait, retries
 * with backoff, lease expiry, parent/child roll-up, delayed starts,
 * priorities, queue counts, and durability across a crash.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "../src/common/buf.h"
#include "harness.h"
#include "sec_util.h"

static struct th_server srv;

/* "/v1/tasks/ID" followed by `suffix`. */
static char *tpath(const char *id, const char *suffix) {
    static __thread char p[256];
    snprintf(p, sizeof p, "/v1/tasks/%s%s", id, suffix);
    return p;
}

static long long queue_total(struct th_server *s, const char *queue) {
    struct th_resp *r = th_http(s, "GET", "/v1/queues", NULL);
    json_t *qs = th_get(r->json, "queues");
    size_t i;
    json_t *q;
    json_array_foreach(qs, i, q) {
        if (strcmp(json_string_value(json_object_get(q, "name")), queue) == 0)
            return json_integer_value(json_object_get(q, "total"));
    }
    return 0;
}

static void test_idempotency_key(void) {
    static const char *const h1[] = {"Content-Type: application/json", "Idempotency-Key: k-1",
                                     NULL};
    const char *body = "{\"type\":\"idem\",\"queue\":\"idem\"}";
    struct th_resp *r = th_http_raw(&srv, "POST", "/v1/tasks", body, strlen(body), h1);
    CHECK_INT(r->status, 201);
    char *id = strdup(th_str(r->json, "id"));
    r = th_http_raw(&srv, "POST", "/v1/tasks", body, strlen(body), h1);
    CHECK_INT(r->status, 200);
    CHECK_STR(th_str(r->json, "id"), id);
    static const char *const h2[] = {"Content-Type: application/json", "Idempotency-Key: k-2",
                                     NULL};
    r = th_http_raw(&srv, "POST", "/v1/tasks", body, strlen(body), h2);
    CHECK_INT(r->status, 201);
    CHECK(strcmp(th_str(r->json, "id"), id) != 0);
    CHECK_INT(queue_total(&srv, "idem"), 2);
    free(id);
}

static void test_batch_submit(void) {
    struct th_resp *r =
        th_http(&srv, "POST", "/v1/tasks/batch",
                "{\"tasks\":[{\"type\":\"b1\",\"queue\":\"batch\"},{\"type\":\"b2\","
                "\"queue\":\"batch\"},{\"type\":\"b3\",\"queue\":\"batch\"}]}");
    CHECK_INT(r->status, 201);
    CHECK_INT(json_array_size(th_get(r->json, "tasks")), 3);
    CHECK_STR(th_str(r->json, "tasks.2.type"), "b3");
    CHECK_STR(th_str(r->json, "tasks.0.phase"), "pending");
    CHECK_INT(queue_total(&srv, "batch"), 3);
    /* One bad task refuses the whole batch. */
    r = th_http(&srv, "POST", "/v1/tasks/batch",
                "{\"tasks\":[{\"type\":\"b4\",\"queue\":\"batch\"},{\"queue\":\"batch\"}]}");
    CHECK_INT(r->status, 400);
    CHECK_STR(th_str(r->json, "error.field"), "tasks[1].type");
    CHECK_INT(queue_total(&srv, "batch"), 3);
    /* One key twice in a batch is refused before it reaches the store. */
    r = th_http(&srv, "POST", "/v1/tasks/batch",
                "{\"tasks\":[{\"type\":\"b5\",\"queue\":\"batch\",\"idempotency_key\":\"k\"},"
                "{\"type\":\"b6\",\"queue\":\"batch\",\"idempotency_key\":\"k\"}]}");
    CHECK_INT(r->status, 400);
    CHECK_STR(th_str(r->json, "error.field"), "tasks[1].idempotency_key");
    CHECK_INT(queue_total(&srv, "batch"), 3);
    /* A key seen before returns the first task in its place. */
    r = th_http(&srv, "POST", "/v1/tasks/batch",
                "{\"tasks\":[{\"type\":\"b7\",\"queue\":\"batch\",\"idempotency_key\":\"k7\"}]}");
    CHECK_INT(r->status, 201);
    r = th_http(&srv, "POST", "/v1/tasks/batch",
                "{\"tasks\":[{\"type\":\"b7\",\"queue\":\"batch\",\"idempotency_key\":\"k7\"},"
                "{\"type\":\"b8\",\"queue\":\"batch\"}]}");
    CHECK_INT(r->status, 201);
    CHECK_STR(th_str(r->json, "tasks.0.type"), "b7");
    CHECK_INT(queue_total(&srv, "batch"), 5);
}

struct longpoll {
    const char *path;
    long status;
    long long version;
    char body[64];
};

static void *longpoll_run(void *arg) {
    struct longpoll *lp = arg;
    struct th_resp *r = th_http(&srv, "GET", lp->path, NULL);
    lp->status = r->status;
    lp->version = th_int(r->json, "version");
    if (r->json && th_str(r->json, "task.id"))
        snprintf(lp->body, sizeof lp->body, "%s", th_str(r->json, "task.id"));
    th_http(NULL, NULL, NULL, NULL);
    return NULL;
}

static void test_get_long_poll(void) {
    char *id = th_submit(&srv, "lp", "\"queue\":\"lp\"");
    CHECK(id);
    char path[200];
    snprintf(path, sizeof path, "/v1/tasks/%s?wait=10&version=1", id);
    struct longpoll lp = {path, 0, 0, ""};
    pthread_t th;
    pthread_create(&th, NULL, longpoll_run, &lp);
    bool parked;
    TRY_WAIT_UNTIL(parked, th_metric(&srv, "taskmill_parked_watches") >= 1, 10000,
                   "the long-poll to be parked");
    if (!parked) {
        pthread_join(th, NULL);
        return;
    }
    CHECK_INT(lp.status, 0); /* still waiting */
    CHECK_INT(th_http(&srv, "POST", tpath(id, "/pause"), NULL)->status, 200);
    pthread_join(th, NULL);
    CHECK_INT(lp.status, 200);
    CHECK_INT(lp.version, 2);
    /* A wait that sees no change returns the task as it is when the time is up. */
    snprintf(path, sizeof path, "/v1/tasks/%s?wait=1&version=2", id);
    struct th_resp *r = th_http(&srv, "GET", path, NULL);
    CHECK_INT(r->status, 200);
    CHECK_INT(th_int(r->json, "version"), 2);
    /* An older version answers at once. */
    snprintf(path, sizeof path, "/v1/tasks/%s?wait=30&version=1", id);
    CHECK_INT(th_int(th_http(&srv, "GET", path, NULL)->json, "version"), 2);
    free(id);
}

static void test_list_filters_and_paging(void) {
    for (int i = 0; i < 5; i++) {
        char extra[128];
        snprintf(extra, sizeof extra, "\"queue\":\"list\",\"name\":\"img-%d\"", i);
        char *id = th_submit(&srv, i % 2 ? "odd" : "even", extra);
        CHECK(id);
        free(id);
    }
    struct th_resp *r = th_http(&srv, "GET", "/v1/tasks?queue=list&type=odd", NULL);
    CHECK_INT(r->status, 200);
    CHECK_INT(json_array_size(th_get(r->json, "tasks")), 2);
    r = th_http(&srv, "GET", "/v1/tasks?queue=list&name_prefix=img-3", NULL);
    CHECK_INT(json_array_size(th_get(r->json, "tasks")), 1);
    CHECK_STR(th_str(r->json, "tasks.0.name"), "img-3");
    r = th_http(&srv, "GET", "/v1/tasks?queue=list&phase=running,completed", NULL);
    CHECK_INT(json_array_size(th_get(r->json, "tasks")), 0);
    r = th_http(
        &srv, "GET",
        "/v1/"
        "tasks?queue=list&created_after=2000-01-01T00:00:00Z&created_before=2999-01-01T00:00:00Z",
        NULL);
    CHECK_INT(json_array_size(th_get(r->json, "tasks")), 5);
    r = th_http(&srv, "GET", "/v1/tasks?queue=list&updated_after=2999-01-01T00:00:00Z", NULL);
    CHECK_INT(json_array_size(th_get(r->json, "tasks")), 0);

    /* Paging oldest first, two at a time: every task once, in order. */
    char path[256] = "/v1/tasks?queue=list&order=asc&limit=2";
    int seen = 0, pages = 0;
    char last[40] = "";
    for (;;) {
        r = th_http(&srv, "GET", path, NULL);
        CHECK_INT(r->status, 200);
        json_t *tasks = th_get(r->json, "tasks");
        size_t i;
        json_t *t;
        json_array_foreach(tasks, i, t) {
            const char *id = json_string_value(json_object_get(t, "id"));
            CHECK(strcmp(last, id) < 0);
            snprintf(last, sizeof last, "%s", id);
            char want[16];
            snprintf(want, sizeof want, "img-%d", seen);
            CHECK_STR(json_string_value(json_object_get(t, "name")), want);
            seen++;
        }
        pages++;
        const char *next = th_str(r->json, "next_cursor");
        if (!next) break;
        snprintf(path, sizeof path, "/v1/tasks?queue=list&order=asc&limit=2&cursor=%s", next);
    }
    CHECK_INT(seen, 5);
    CHECK_INT(pages, 3);
    /* Newest first is the default. */
    r = th_http(&srv, "GET", "/v1/tasks?queue=list&limit=1", NULL);
    CHECK_STR(th_str(r->json, "tasks.0.name"), "img-4");
}

static void test_cancel_pending_and_running(void) {
    char *a = th_submit(&srv, "c", "\"queue\":\"cancel\"");
    struct th_resp *r = th_http(&srv, "POST", tpath(a, "/cancel"), NULL);
    CHECK_INT(r->status, 200);
    CHECK_STR(th_str(r->json, "phase"), "cancelled");
    CHECK_STR(th_str(r->json, "completion_status"), "TERMINATED");
    /* Again: no change, no error. */
    CHECK_INT(th_http(&srv, "POST", tpath(a, "/cancel"), NULL)->status, 200);

    char *b = th_submit(&srv, "c", "\"queue\":\"cancel\"");
    char id[33], tok[33];
    CHECK_INT(th_claim(&srv, "cancel", NULL, id, tok), 200);
    CHECK_STR(id, b);
    r = th_http(&srv, "POST", tpath(b, "/cancel"), "{}");
    CHECK_STR(th_str(r->json, "phase"), "stopping");
    r = th_http(&srv, "POST", tpath(b, "/heartbeat"), "{\"lease_token\":\"%s\"}", tok);
    CHECK_INT(r->status, 200);
    CHECK(json_is_true(th_get(r->json, "cancel_requested")));
    r = th_http(&srv, "POST", tpath(b, "/fail"),
                "{\"lease_token\":\"%s\",\"error\":\"stopped on request\"}", tok);
    CHECK_INT(r->status, 200);
    CHECK_STR(th_str(r->json, "phase"), "cancelled");
    CHECK_STR(th_str(r->json, "completion_status"), "TERMINATED");
    free(a);
    free(b);
}

static void test_pause_resume_retry_delete(void) {
    char *a = th_submit(&srv, "p", "\"queue\":\"pause\"");
    CHECK_INT(th_http(&srv, "POST", tpath(a, "/pause"), NULL)->status, 200);
    char id[33], tok[33];
    CHECK_INT(th_claim(&srv, "pause", NULL, id, tok), 204);
    struct th_resp *r = th_http(&srv, "POST", tpath(a, "/resume"), NULL);
    CHECK(json_is_false(th_get(r->json, "paused")));
    CHECK_INT(th_claim(&srv, "pause", NULL, id, tok), 200);
    CHECK_STR(id, a);
    /* Pausing a running task is asked of its worker through the heartbeat. */
    CHECK_INT(th_http(&srv, "POST", tpath(a, "/pause"), NULL)->status, 200);
    r = th_http(&srv, "POST", tpath(a, "/heartbeat"), "{\"lease_token\":\"%s\"}", tok);
    CHECK(json_is_true(th_get(r->json, "pause_requested")));
    r = th_http(&srv, "POST", tpath(a, "/release"), "{\"lease_token\":\"%s\"}", tok);
    CHECK_STR(th_str(r->json, "phase"), "pending");
    CHECK_INT(th_int(r->json, "retries"), 0);
    CHECK_INT(th_http(&srv, "POST", tpath(a, "/resume"), NULL)->status, 200);
    CHECK_INT(th_claim(&srv, "pause", NULL, id, tok), 200);
    CHECK_INT(th_http(&srv, "DELETE", tpath(a, ""), NULL)->status, 409);
    r = th_http(&srv, "POST", tpath(a, "/fail"),
                "{\"lease_token\":\"%s\",\"error\":\"disk full\",\"retryable\":false}", tok);
    CHECK_STR(th_str(r->json, "phase"), "failed");
    CHECK_STR(th_str(r->json, "completion_status"), "ERROR");
    CHECK_STR(th_str(r->json, "error"), "disk full");
    r = th_http(&srv, "POST", tpath(a, "/retry"), NULL);
    CHECK_INT(r->status, 200);
    CHECK_STR(th_str(r->json, "phase"), "pending");
    CHECK(json_is_null(th_get(r->json, "error")));
    CHECK_INT(th_http(&srv, "POST", tpath(a, "/cancel"), NULL)->status, 200);
    CHECK_INT(th_http(&srv, "DELETE", tpath(a, ""), NULL)->status, 204);
    CHECK_INT(th_http(&srv, "GET", tpath(a, ""), NULL)->status, 404);
    free(a);
}

struct claim_wait {
    const char *queue;
    long status;
    char id[33];
};

static void *claim_wait_run(void *arg) {
    struct claim_wait *cw = arg;
    char tok[33];
    cw->status =
        th_claim(&srv, cw->queue, "{\"worker\":\"waiter\",\"wait_seconds\":10}", cw->id, tok);
    th_http(NULL, NULL, NULL, NULL);
    return NULL;
}

static void test_claim_waits_for_work(void) {
    struct claim_wait cw = {"waitq", 0, ""};
    pthread_t th;
    pthread_create(&th, NULL, claim_wait_run, &cw);
    bool parked;
    TRY_WAIT_UNTIL(parked, th_metric(&srv, "taskmill_parked_claims") >= 1, 10000,
                   "the claim to be parked");
    if (!parked) {
        pthread_join(th, NULL);
        return;
    }
    CHECK_INT(cw.status, 0);
    char *id = th_submit(&srv, "w", "\"queue\":\"waitq\"");
    pthread_join(th, NULL);
    CHECK_INT(cw.status, 200);
    CHECK_STR(cw.id, id);
    CHECK_STR(th_phase(&srv, id), "running");
    /* Nothing comes: 204 when the wait is over. */
    char cid[33], tok[33];
    CHECK_INT(th_claim(&srv, "waitq", "{\"worker\":\"w\",\"wait_seconds\":1}", cid, tok), 204);
    free(id);
}

static void test_retry_with_backoff_then_temperror(void) {
    char *a = th_submit(&srv, "flaky", "\"queue\":\"retry\",\"max_retries\":1,\"backoff_ms\":200");
    char id[33], tok[33];
    CHECK_INT(th_claim(&srv, "retry", NULL, id, tok), 200);
    struct th_resp *r = th_http(&srv, "POST", tpath(a, "/fail"),
                                "{\"lease_token\":\"%s\",\"error\":\"timeout\"}", tok);
    CHECK_STR(th_str(r->json, "phase"), "waiting");
    CHECK_INT(th_int(r->json, "retries"), 1);
    CHECK(th_str(r->json, "scheduled_at") != NULL);
    CHECK_INT(th_claim(&srv, "retry", NULL, id, tok), 204); /* not before the backoff */
    CHECK_INT(th_claim(&srv, "retry", "{\"worker\":\"w\",\"wait_seconds\":5}", id, tok), 200);
    CHECK_STR(id, a);
    r = th_http(&srv, "GET", tpath(a, ""), NULL);
    CHECK_INT(th_int(r->json, "attempt"), 2);
    r = th_http(&srv, "POST", tpath(a, "/fail"),
                "{\"lease_token\":\"%s\",\"error\":\"timeout again\"}", tok);
    CHECK_STR(th_str(r->json, "phase"), "failed");
    CHECK_STR(th_str(r->json, "completion_status"), "TEMPERROR");
    free(a);
}

static void test_lease_expiry(void) {
    char *a = th_submit(&srv, "slow", "\"queue\":\"lease\",\"max_retries\":1,\"backoff_ms\":0");
    char id[33], tok[33];
    CHECK_INT(th_claim(&srv, "lease", "{\"worker\":\"w1\",\"lease_seconds\":1}", id, tok), 200);
    /* The lease runs out; the task comes back (backoff 0) to the next
     * worker. Its lease is long while the old token is tried: with a 1 s
     * lease, a test held up for a second before that try found the task
     * failed by the second expiry, and the stale token refused as a
     * conflict, not as a lease mismatch. */
    char id2[33], tok2[33];
    CHECK_INT(th_claim(&srv, "lease",
                       "{\"worker\":\"w2\",\"lease_seconds\":60,\"wait_seconds\":30}", id2, tok2),
              200);
    CHECK_STR(id2, a);
    struct th_resp *r = th_http(&srv, "GET", tpath(a, ""), NULL);
    CHECK_INT(th_int(r->json, "retries"), 1);
    CHECK_INT(th_int(r->json, "attempt"), 2);
    CHECK(strstr(th_str(r->json, "error"), "expired") != NULL);
    /* The first worker's token is fenced off. */
    r = th_http(&srv, "POST", tpath(a, "/complete"), "{\"lease_token\":\"%s\"}", tok);
    CHECK_INT(r->status, 409);
    CHECK_STR(th_str(r->json, "error.code"), "lease_mismatch");
    CHECK_STR(th_phase(&srv, a), "running");
    /* Retries spent: the second expiry (its lease cut to 1 s by a
     * heartbeat) fails it as temporary. */
    r = th_http(&srv, "POST", tpath(a, "/heartbeat"),
                "{\"lease_token\":\"%s\",\"lease_seconds\":1}", tok2);
    CHECK_INT(r->status, 200);
    for (int i = 0; i < 200 && strcmp(th_phase(&srv, a), "failed") != 0; i++)
        th_sleep_ms(100);
    r = th_http(&srv, "GET", tpath(a, ""), NULL);
    CHECK_STR(th_str(r->json, "phase"), "failed");
    CHECK_STR(th_str(r->json, "completion_status"), "TEMPERROR");
    free(a);
}

static void check_counts(const char *parent, int processed, int processing, int pending) {
    struct th_resp *r = th_http(&srv, "GET", tpath(parent, ""), NULL);
    if (th_int(r->json, "progress.processed") != processed ||
        th_int(r->json, "progress.processing") != processing ||
        th_int(r->json, "progress.pending") != pending)
        th_fail(__FILE__, __LINE__, "parent counts %lld/%lld/%lld, want %d/%d/%d",
                th_int(r->json, "progress.processed"), th_int(r->json, "progress.processing"),
                th_int(r->json, "progress.pending"), processed, processing, pending);
}

static void test_parent_rollup(void) {
    char *p = th_submit(&srv, "batch", "\"queue\":\"parents\"");
    char extra[128];
    snprintf(extra, sizeof extra, "\"queue\":\"children\",\"parent_id\":\"%s\",\"max_retries\":0",
             p);
    char *c[3];
    for (int i = 0; i < 3; i++)
        c[i] = th_submit(&srv, "child", extra);
    check_counts(p, 0, 0, 3);
    char id[33], tok[33];
    CHECK_INT(th_claim(&srv, "children", NULL, id, tok), 200);
    CHECK_STR(id, c[0]);
    check_counts(p, 0, 1, 2);
    th_http(&srv, "POST", tpath(c[0], "/complete"), "{\"lease_token\":\"%s\"}", tok);
    check_counts(p, 1, 0, 2);
    struct th_resp *r = th_http(&srv, "GET", tpath(p, ""), NULL);
    CHECK_INT(th_int(r->json, "progress.percent"), 33);
    CHECK_INT(th_claim(&srv, "children", NULL, id, tok), 200);
    th_http(&srv, "POST", tpath(id, "/fail"), "{\"lease_token\":\"%s\",\"error\":\"x\"}", tok);
    check_counts(p, 1, 0, 2); /* a failed child is not processed */
    CHECK_INT(th_http(&srv, "POST", tpath(c[1], "/retry"), NULL)->status, 200);
    check_counts(p, 1, 0, 2);
    CHECK_INT(th_http(&srv, "DELETE", tpath(c[0], ""), NULL)->status, 204);
    check_counts(p, 0, 0, 2);
    char list[128];
    snprintf(list, sizeof list, "/v1/tasks?parent_id=%s", p);
    r = th_http(&srv, "GET", list, NULL);
    CHECK_INT(json_array_size(th_get(r->json, "tasks")), 2);
    /* A child's parent must exist. */
    r = th_http(&srv, "POST", "/v1/tasks",
                "{\"type\":\"orphan\",\"parent_id\":\"0123456789abcdef0123456789abcdef\"}");
    CHECK_INT(r->status, 400);
    CHECK_STR(th_str(r->json, "error.field"), "parent_id");
    free(p);
    for (int i = 0; i < 3; i++)
        free(c[i]);
}

static void test_parent_waits_for_children(void) {
    char *p = th_submit(&srv, "batch", "\"queue\":\"wparents\"");
    char extra[128];
    snprintf(extra, sizeof extra, "\"queue\":\"wchildren\",\"parent_id\":\"%s\"", p);
    char *c = th_submit(&srv, "child", extra);
    char id[33], tok[33];
    CHECK_INT(th_claim(&srv, "wparents", NULL, id, tok), 200);
    struct th_resp *r = th_http(&srv, "POST", tpath(p, "/complete"),
                                "{\"lease_token\":\"%s\",\"result\":{\"n\":1}}", tok);
    CHECK_INT(r->status, 200);
    CHECK_STR(th_str(r->json, "phase"), "waiting");
    CHECK(json_is_true(th_get(r->json, "awaiting_children")));
    CHECK(json_is_null(th_get(r->json, "lease")));
    CHECK_INT(th_claim(&srv, "wchildren", NULL, id, tok), 200);
    CHECK_STR(id, c);
    CHECK_INT(th_http(&srv, "POST", tpath(c, "/complete"), "{\"lease_token\":\"%s\"}", tok)->status,
              200);
    r = th_http(&srv, "GET", tpath(p, ""), NULL);
    CHECK_STR(th_str(r->json, "phase"), "completed");
    CHECK_STR(th_str(r->json, "completion_status"), "SUCCESS");
    CHECK(json_is_false(th_get(r->json, "awaiting_children")));
    CHECK_INT(th_int(r->json, "result.n"), 1);
    CHECK_INT(th_int(r->json, "progress.percent"), 100);
    free(p);
    free(c);
}

static void test_delayed_start(void) {
    char when[64];
    time_t t = time(NULL) + 1;
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%S.999Z", &tm);
    char extra[128];
    snprintf(extra, sizeof extra, "\"queue\":\"later\",\"scheduled_at\":\"%s\"", when);
    char *a = th_submit(&srv, "later", extra);
    CHECK_STR(th_phase(&srv, a), "waiting");
    char id[33], tok[33];
    CHECK_INT(th_claim(&srv, "later", NULL, id, tok), 204);
    CHECK_INT(th_claim(&srv, "later", "{\"worker\":\"w\",\"wait_seconds\":5}", id, tok), 200);
    CHECK_STR(id, a);
    free(a);
}

static void test_priority_then_fifo(void) {
    char *low1 = th_submit(&srv, "x", "\"queue\":\"prio\",\"priority\":5");
    char *low2 = th_submit(&srv, "x", "\"queue\":\"prio\",\"priority\":5");
    char *high = th_submit(&srv, "x", "\"queue\":\"prio\",\"priority\":-1");
    char id[33], tok[33];
    CHECK_INT(th_claim(&srv, "prio", NULL, id, tok), 200);
    CHECK_STR(id, high);
    CHECK_INT(th_claim(&srv, "prio", NULL, id, tok), 200);
    CHECK_STR(id, low1);
    CHECK_INT(th_claim(&srv, "prio", NULL, id, tok), 200);
    CHECK_STR(id, low2);
    /* Claims filter by type. */
    char *t1 = th_submit(&srv, "video", "\"queue\":\"prio\"");
    CHECK_INT(th_claim(&srv, "prio", "{\"worker\":\"w\",\"types\":[\"audio\"]}", id, tok), 204);
    CHECK_INT(th_claim(&srv, "prio", "{\"worker\":\"w\",\"types\":[\"audio\",\"video\"]}", id, tok),
              200);
    CHECK_STR(id, t1);
    /* One type (a statement of its own on SQLite): the same order. */
    char *v5 = th_submit(&srv, "video", "\"queue\":\"one\",\"priority\":5");
    char *v1 = th_submit(&srv, "video", "\"queue\":\"one\",\"priority\":-1");
    char *a9 = th_submit(&srv, "audio", "\"queue\":\"one\",\"priority\":-9");
    const char *video = "{\"worker\":\"w\",\"types\":[\"video\"]}";
    CHECK_INT(th_claim(&srv, "one", video, id, tok), 200);
    CHECK_STR(id, v1);
    CHECK_INT(th_claim(&srv, "one", video, id, tok), 200);
    CHECK_STR(id, v5);
    CHECK_INT(th_claim(&srv, "one", video, id, tok), 204);
    CHECK_INT(th_claim(&srv, "one", "{\"worker\":\"w\",\"types\":[\"audio\"]}", id, tok), 200);
    CHECK_STR(id, a9);
    free(low1);
    free(low2);
    free(high);
    free(t1);
    free(v5);
    free(v1);
    free(a9);
}

static void test_queue_counts_and_health(void) {
    struct th_resp *r = th_http(&srv, "GET", "/v1/queues", NULL);
    CHECK_INT(r->status, 200);
    CHECK_STR(th_str(r->json, "queues.0.name"), "default");
    bool found = false;
    size_t i;
    json_t *q;
    json_array_foreach(th_get(r->json, "queues"), i, q) {
        if (strcmp(json_string_value(json_object_get(q, "name")), "prio") == 0) {
            found = true;
            CHECK_INT(th_int(q, "counts.running"), 4);
        }
    }
    CHECK(found);
    r = th_http(&srv, "GET", "/healthz", NULL);
    CHECK_INT(r->status, 200);
    CHECK_STR(th_str(r->json, "status"), "ok");
    r = th_http(&srv, "GET", "/metrics", NULL);
    CHECK_INT(r->status, 200);
    CHECK(strstr(r->body, "taskmill_store_batches_total") != NULL);
}

static void test_queue_settings(void) {
    struct th_resp *r = th_http(&srv, "PUT", "/v1/queues/strict",
                                "{\"max_retries\":0,\"backoff_ms\":50,\"backoff_max_ms\":100}");
    CHECK_INT(r->status, 200);
    CHECK_INT(th_int(r->json, "settings.max_retries"), 0);
    /* A task that sets nothing takes its queue's settings; one that does keeps its own. */
    char *a = th_submit(&srv, "x", "\"queue\":\"strict\"");
    char *b = th_submit(&srv, "x", "\"queue\":\"strict\",\"max_retries\":2");
    r = th_http(&srv, "GET", tpath(a, ""), NULL);
    CHECK_INT(th_int(r->json, "max_retries"), 0);
    r = th_http(&srv, "GET", tpath(b, ""), NULL);
    CHECK_INT(th_int(r->json, "max_retries"), 2);
    char id[33], tok[33];
    CHECK_INT(th_claim(&srv, "strict", NULL, id, tok), 200);
    r = th_http(&srv, "POST", tpath(id, "/fail"), "{\"lease_token\":\"%s\",\"error\":\"x\"}", tok);
    CHECK_STR(th_str(r->json, "phase"), "failed");
    r = th_http(&srv, "GET", "/v1/queues", NULL);
    bool found = false;
    size_t i;
    json_t *q;
    json_array_foreach(th_get(r->json, "queues"), i, q) {
        if (strcmp(json_string_value(json_object_get(q, "name")), "strict") == 0) {
            found = true;
            CHECK(json_is_true(json_object_get(q, "configured")));
            CHECK_INT(th_int(q, "settings.backoff_max_ms"), 100);
        }
        if (strcmp(json_string_value(json_object_get(q, "name")), "default") == 0)
            CHECK_INT(th_int(q, "settings.max_retries"), 3);
    }
    CHECK(found);
    /* Bad settings are refused and change nothing. */
    r = th_http(&srv, "PUT", "/v1/queues/strict", "{\"backoff_ms\":500,\"backoff_max_ms\":100}");
    CHECK_INT(r->status, 400);
    CHECK_STR(th_str(r->json, "error.field"), "backoff_max_ms");
    r = th_http(&srv, "PUT", "/v1/queues/strict", "{\"retries\":1}");
    CHECK_STR(th_str(r->json, "error.field"), "retries");
    r = th_http(&srv, "PUT", "/v1/queues/strict", "{\"max_retries\":-1}");
    CHECK_STR(th_str(r->json, "error.field"), "max_retries");
    char *c = th_submit(&srv, "x", "\"queue\":\"strict\"");
    r = th_http(&srv, "GET", tpath(c, ""), NULL);
    CHECK_INT(th_int(r->json, "max_retries"), 0);
    free(a);
    free(b);
    free(c);
}

struct burst {
    int n;
    int ok;
};

static void *burst_run(void *arg) {
    struct burst *b = arg;
    for (int i = 0; i < b->n; i++) {
        struct th_resp *r =
            th_http(&srv, "POST", "/v1/tasks", "{\"type\":\"burst\",\"queue\":\"burst\"}");
        if (r->status == 201) b->ok++;
    }
    th_http(NULL, NULL, NULL, NULL);
    return NULL;
}

static long long metric(const char *name) {
    struct th_resp *r = th_http(&srv, "GET", "/metrics", NULL);
    char pat[128];
    snprintf(pat, sizeof pat, "\n%s ", name);
    const char *p = strstr(r->body, pat);
    return p ? atoll(p + strlen(pat)) : -1;
}

static void test_group_commit_and_crash_durability(void) {
    long long batches0 = metric("taskmill_store_batches_total");
    long long ops0 = metric("taskmill_store_ops_total");
    pthread_t th[8];
    struct burst b[8];
    for (int i = 0; i < 8; i++) {
        b[i] = (struct burst){50, 0};
        pthread_create(&th[i], NULL, burst_run, &b[i]);
    }
    int ok = 0;
    for (int i = 0; i < 8; i++) {
        pthread_join(th[i], NULL);
        ok += b[i].ok;
    }
    CHECK_INT(ok, 400);
    long long batches = metric("taskmill_store_batches_total") - batches0;
    long long ops = metric("taskmill_store_ops_total") - ops0;
    /* Concurrent writes shared transactions. */
    CHECK(ops >= 400);
    CHECK(batches < ops);
    printf("    (400 concurrent submits: %lld ops in %lld commits)\n", ops, batches);
    /* Every acknowledged write survives a crash. */
    th_server_stop(&srv, true);
    CHECK_INT(th_server_restart(&srv), 0);
    CHECK_INT(queue_total(&srv, "burst"), 400);
}

/*
 * serve --sqlite-exclusive: the server keeps the database to itself. Its
 * work is as durable (kill -9 and a restart keep every acknowledged
 * write), another process that opens the file is told why it cannot, and
 * once the server has stopped the file opens as usual.
 */
static void test_sqlite_exclusive(void) {
    if (th_backend_is_pg()) {
        th_skip("--sqlite-exclusive is SQLite's");
        return;
    }
    /* Bad input: the flag with a PostgreSQL store is refused before it starts. */
    char out[1024];
    int rc = sec_cli(out, sizeof out,
                     "%s serve --listen 127.0.0.1:0 --store postgres://u@127.0.0.1:1/db"
                     " --sqlite-exclusive 2>&1",
                     sec_bin());
    CHECK_INT(rc, 2);
    CHECK(strstr(out, "'--sqlite-exclusive' needs a sqlite: store") != NULL);
    struct th_server x;
    if (th_server_start(&x, "--sqlite-exclusive", NULL)) {
        th_fail(__FILE__, __LINE__, "the server did not start with --sqlite-exclusive");
        return;
    }
    for (int i = 0; i < 20; i++)
        free(th_submit(&x, "ex", "\"queue\":\"exq\""));
    char id[33], token[33];
    CHECK_INT(th_claim(&x, "exq", NULL, id, token), 200);
    char path[96];
    snprintf(path, sizeof path, "/v1/tasks/%s/heartbeat", id);
    CHECK_INT(
        th_http(&x, "POST", path, "{\"lease_token\":\"%s\",\"progress\":{\"ratio\":0.5}}", token)
            ->status,
        200);
    snprintf(path, sizeof path, "/v1/tasks/%s/complete", id);
    CHECK_INT(th_http(&x, "POST", path, "{\"lease_token\":\"%s\"}", token)->status, 200);
    /* Another process: refused, with the reason, after SQLite's busy wait. */
    rc = sec_cli(out, sizeof out, "%s token list --store '%s' 2>&1", sec_bin(), x.store);
    CHECK(rc != 0);
    CHECK(strstr(out, "is locked by another process") != NULL);
    CHECK(strstr(out, "--sqlite-exclusive") != NULL);
    /* A crash and a restart: every acknowledged write is there. */
    th_server_stop(&x, true);
    CHECK_INT(th_server_restart(&x), 0);
    CHECK_INT(queue_total(&x, "exq"), 20);
    CHECK_STR(th_phase(&x, id), "completed");
    for (int i = 0; i < 5; i++)
        free(th_submit(&x, "ex", "\"queue\":\"exq\""));
    /* Stopped, the file is anyone's again. */
    th_server_stop(&x, false);
    rc = sec_cli(out, sizeof out, "%s token list --store '%s' 2>&1", sec_bin(), x.store);
    CHECK_INT(rc, 0);
    th_server_free(&x);
}

/*
 * A second `taskmill serve` on a SQLite file another server is serving is
 * refused with the reason (what a server keeps in memory holds only while
 * it alone writes the file); the token commands still open it beside the
 * server; once the first server is gone, even by kill -9, a server starts.
 */
static void test_second_server_refused(void) {
    if (th_backend_is_pg()) {
        th_skip("several servers on one PostgreSQL database are nodes (test_multinode)");
        return;
    }
    struct th_server x;
    if (th_server_start(&x, NULL)) {
        th_fail(__FILE__, __LINE__, "the server did not start");
        return;
    }
    char *id = th_submit(&x, "two", "\"queue\":\"twoq\"");
    char out[1024];
    /* Under timeout: a second server that started would run for ever. */
    int rc = sec_cli(out, sizeof out, "timeout 20 %s serve --listen 127.0.0.1:0 --store '%s' 2>&1",
                     sec_bin(), x.store);
    CHECK(rc != 0 && rc != 124);
    CHECK(strstr(out, "is served by another taskmill server") != NULL);
    CHECK(strstr(out, "PostgreSQL") != NULL);
    /* One that asks for the file alone is told it is open elsewhere (it said a server with
     * --sqlite-exclusive held it, which this one is not). */
    rc = sec_cli(out, sizeof out,
                 "timeout 20 %s serve --listen 127.0.0.1:0 --sqlite-exclusive --store '%s' 2>&1",
                 sec_bin(), x.store);
    CHECK(rc != 0 && rc != 124);
    CHECK(strstr(out, "is open in another process") != NULL);
    CHECK(strstr(out, "--sqlite-exclusive needs it alone") != NULL);
    CHECK(strstr(out, "keeps it to itself") == NULL);
    /* (A token created would close the open server to tokenless requests.) */
    rc = sec_cli(out, sizeof out, "%s token list --store '%s' 2>&1", sec_bin(), x.store);
    CHECK_INT(rc, 0);
    CHECK_STR(id ? th_phase(&x, id) : "", "pending");
    th_server_stop(&x, true);
    CHECK_INT(th_server_restart(&x), 0);
    CHECK_STR(id ? th_phase(&x, id) : "", "pending");
    free(id);
    th_server_free(&x);
}

/* A list page ends early once it holds 8 MiB of tasks; the cursor goes on. */
static void test_list_bounded_in_bytes(void) {
    size_t pad = 600 * 1000;
    char *body = malloc(pad + 100);
    int n = snprintf(body, pad + 100, "{\"type\":\"big\",\"queue\":\"bigq\",\"params\":{\"p\":\"");
    memset(body + n, 'x', pad);
    snprintf(body + n + pad, 100, "\"}}");
    const char *h[] = {"Content-Type: application/json", NULL};
    for (int i = 0; i < 20; i++)
        CHECK_INT(th_http_raw(&srv, "POST", "/v1/tasks", body, strlen(body), h)->status, 201);
    free(body);
    char path[160] = "/v1/tasks?queue=bigq&limit=100";
    int pages = 0, seen = 0;
    for (;;) {
        struct th_resp *r = th_http(&srv, "GET", path, NULL);
        CHECK_INT(r->status, 200);
        if (r->status != 200) break;
        CHECK(strlen(r->body) <= (8u << 20) + 700 * 1000); /* the bound plus one task */
        seen += (int)json_array_size(th_get(r->json, "tasks"));
        pages++;
        const char *next = th_str(r->json, "next_cursor");
        if (!next || pages > 20) break;
        snprintf(path, sizeof path, "/v1/tasks?queue=bigq&limit=100&cursor=%s", next);
    }
    CHECK_INT(seen, 20);
    CHECK(pages >= 2);
}

/* A task's messages stay bounded in bytes; a first message counts the dropped. */
static void test_messages_bounded(void) {
    char *id = th_submit(&srv, "chatty", "\"queue\":\"chatq\"");
    char cid[33], token[33], path[128];
    CHECK_INT(th_claim(&srv, "chatq", NULL, cid, token), 200);
    snprintf(path, sizeof path, "/v1/tasks/%s/heartbeat", id);
    struct buf b;
    buf_init(&b);
    char pad[3001];
    memset(pad, 'q', 3000);
    pad[3000] = '\0';
    for (int call = 0; call < 4; call++) {
        buf_clear(&b);
        buf_printf(&b, "{\"lease_token\":\"%s\",\"messages\":[", token);
        for (int i = 0; i < 100; i++)
            buf_printf(&b, "%s{\"level\":\"INFO\",\"text\":\"m%d\",\"parameters\":{\"p\":\"%s\"}}",
                       i ? "," : "", call * 100 + i, pad);
        buf_puts(&b, "]}");
        const char *h[] = {"Content-Type: application/json", NULL};
        CHECK_INT(th_http_raw(&srv, "POST", path, b.p, b.len, h)->status, 200);
    }
    buf_release(&b);
    snprintf(path, sizeof path, "/v1/tasks/%s", id);
    struct th_resp *r = th_http(&srv, "GET", path, NULL);
    json_t *msgs = th_get(r->json, "messages");
    CHECK(json_array_size(msgs) < 400);
    CHECK_STR(th_str(json_array_get(msgs, 0), "key"), "taskmill.messages_dropped");
    long long dropped = th_int(json_array_get(msgs, 0), "parameters.dropped");
    CHECK_INT(dropped + (long long)json_array_size(msgs) - 1, 400);
    CHECK_STR(th_str(json_array_get(msgs, json_array_size(msgs) - 1), "text"), "m399");
    free(id);
}

/*
 * A write's reply carries the task as its event rendered it (store.h,
 * store_op_write_task) rather than rendering it again: the bytes must be
 * what a read of that version gives. A child's replies must be the
 * child's, though its changes roll up into its parent in the same op; a
 * task past the events' size cap (reduced in its event) must still be
 * answered whole.
 */
static char *body_copy(const struct th_resp *r) {
    return strdup(r->body ? r->body : "");
}

static void same_as_read(const char *id, const char *reply_task) {
    struct th_resp *g = th_http(&srv, "GET", tpath(id, ""), NULL);
    CHECK_INT(g->status, 200);
    if (strcmp(g->body, reply_task) != 0)
        th_fail(__FILE__, __LINE__, "reply %.300s\n  read %.300s", reply_task, g->body);
}

static void test_write_replies_match_reads(void) {
    char *parent = th_submit(&srv, "reply-parent", "\"queue\":\"replies-p\"");
    char extra[160];
    snprintf(extra, sizeof extra, "\"queue\":\"replies\",\"parent_id\":\"%s\"", parent);
    struct th_resp *r =
        th_http(&srv, "POST", "/v1/tasks",
                "{\"type\":\"reply-child\",\"params\":{\"n\":1.5,\"s\":\"a\\u0001\"},%s}", extra);
    CHECK_INT(r->status, 201);
    char *child = strdup(th_str(r->json, "id"));
    char *reply = body_copy(r);
    same_as_read(child, reply);
    free(reply);

    /* The claim's reply: {"task":...,"lease_token":"..."} */
    r = th_http(&srv, "POST", "/v1/queues/replies/claim",
                "{\"worker\":\"w\",\"lease_seconds\":60}");
    CHECK_INT(r->status, 200);
    char token[64];
    snprintf(token, sizeof token, "%s", th_str(r->json, "lease_token"));
    const char *start = strstr(r->body, "{\"task\":");
    const char *end = strstr(r->body, ",\"lease_token\":");
    CHECK(start && end && end > start);
    if (start && end && end > start) {
        reply = strndup(start + 8, (size_t)(end - start - 8));
        same_as_read(child, reply);
        free(reply);
    }
    r = th_http(&srv, "POST", tpath(child, "/complete"),
                "{\"lease_token\":\"%s\",\"result\":{\"ok\":true}}", token);
    CHECK_INT(r->status, 200);
    CHECK_STR(th_str(r->json, "id"), child);
    reply = body_copy(r);
    same_as_read(child, reply);
    free(reply);

    /* Past the events' cap (64 KiB by default): its event is reduced, its
     * reply is whole. */
    size_t n = 70 * 1024;
    char *big = malloc(n + 128);
    int len = snprintf(big, n + 128,
                       "{\"type\":\"reply-big\",\"queue\":\"replies-big\",\"params\":{\"pad\":\"");
    memset(big + len, 'x', n);
    strcpy(big + len + n, "\"}}");
    static const char *const ct[] = {"Content-Type: application/json", NULL};
    r = th_http_raw(&srv, "POST", "/v1/tasks", big, strlen(big), ct);
    free(big);
    CHECK_INT(r->status, 201);
    CHECK(r->body && strlen(r->body) > n && !strstr(r->body, "\"truncated\""));
    char *bid = strdup(th_str(r->json, "id"));
    reply = body_copy(r);
    same_as_read(bid, reply);
    free(reply);
    free(bid);
    free(child);
    free(parent);
}

/*
 * HEAD is answered wherever GET is (RFC 9110 9.3.2): the GET's status and
 * fields, no body. A stream's HEAD opens no stream that stays.
 */
static void test_head_as_get(void) {
    char *id = th_submit(&srv, "headed", NULL);
    char path[96], len[32] = "", type[64] = "";
    snprintf(path, sizeof path, "/v1/tasks/%s", id);
    struct th_resp *r = th_http(&srv, "GET", path, NULL);
    CHECK_INT(r->status, 200);
    size_t get_len = strlen(r->body);
    r = th_http(&srv, "HEAD", path, NULL);
    CHECK_INT(r->status, 200);
    CHECK_STR(r->body, "");
    CHECK(th_resp_header(r, "Content-Length", len, sizeof len));
    CHECK_INT(atoll(len), (long long)get_len);
    CHECK(th_resp_header(r, "Content-Type", type, sizeof type));
    CHECK_STR(type, "application/json");
    /* The GET's refusals too. */
    r = th_http(&srv, "HEAD", "/v1/tasks/0123456789abcdef0123456789abcdef", NULL);
    CHECK_INT(r->status, 404);
    CHECK_STR(r->body, "");
    r = th_http(&srv, "HEAD", "/v1/tasks?limit=0", NULL);
    CHECK_INT(r->status, 400);
    r = th_http(&srv, "HEAD", "/", NULL);
    CHECK_INT(r->status, 200);
    CHECK(th_resp_header(r, "Content-Type", type, sizeof type));
    CHECK(strncmp(type, "text/html", 9) == 0);
    r = th_http(&srv, "HEAD", "/v1/events", NULL);
    CHECK_INT(r->status, 200);
    CHECK(th_resp_header(r, "Content-Type", type, sizeof type));
    CHECK_STR(type, "text/event-stream");
    WAIT_UNTIL(th_metric(&srv, "taskmill_sse_streams") == 0, 10000, "the HEAD's stream to end");
    /* Nothing after a stream's HEAD reply's head: the next reply on the
     * connection starts right there (a chunked end after it was read as
     * the start of the next reply by a client that kept the connection). */
    int port = atoi(strrchr(srv.url, ':') + 1);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    CHECK(fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof a) == 0);
    static const char two[] =
        "HEAD /v1/events HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
        "GET /v1/whoami HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        "Connection: close\r\n\r\n";
    CHECK(send(fd, two, sizeof two - 1, MSG_NOSIGNAL) == (ssize_t)(sizeof two - 1));
    char got[4096] = "";
    size_t n = 0;
    struct pollfd p = {.fd = fd, .events = POLLIN};
    while (n + 1 < sizeof got && poll(&p, 1, 10000) > 0) {
        ssize_t k = recv(fd, got + n, sizeof got - 1 - n, 0);
        if (k <= 0) break;
        n += (size_t)k;
        got[n] = '\0';
    }
    close(fd);
    const char *end = strstr(got, "\r\n\r\n");
    CHECK(strncmp(got, "HTTP/1.1 200", 12) == 0);
    if (!end || strncmp(end + 4, "HTTP/1.1 200", 12) != 0)
        th_fail(__FILE__, __LINE__, "after a stream's HEAD reply: '%.300s'", got);
    /* A path with no GET takes no HEAD; one with a GET lists it. */
    r = th_http(&srv, "HEAD", "/v1/queues/default/claim", NULL);
    CHECK_INT(r->status, 405);
    char allow[64] = "";
    r = th_http(&srv, "DELETE", "/v1/queues", NULL);
    CHECK(th_resp_header(r, "Allow", allow, sizeof allow));
    CHECK(strstr(allow, "HEAD") != NULL);
    free(id);
}

static const struct th_test tests[] = {
    {"Idempotency-Key returns the first task", test_idempotency_key},
    {"HEAD is answered as GET, without the body", test_head_as_get},
    {"batch submit is all or nothing", test_batch_submit},
    {"GET long-polls until the version passes", test_get_long_poll},
    {"list filters and cursor paging", test_list_filters_and_paging},
    {"cancel a pending and a running task", test_cancel_pending_and_running},
    {"pause, resume, release, fail, retry, delete", test_pause_resume_retry_delete},
    {"a claim waits for work to arrive", test_claim_waits_for_work},
    {"retryable failure backs off, then TEMPERROR", test_retry_with_backoff_then_temperror},
    {"an expired lease is retried, then failed; old token fenced", test_lease_expiry},
    {"children roll up into the parent's counts", test_parent_rollup},
    {"a parent completed early waits for its children", test_parent_waits_for_children},
    {"scheduled_at delays the start", test_delayed_start},
    {"priority first, then FIFO; claim by type", test_priority_then_fifo},
    {"queue counts, healthz, metrics", test_queue_counts_and_health},
    {"queues give retry settings to their tasks", test_queue_settings},
    {"a list page is bounded in bytes; the cursor goes on", test_list_bounded_in_bytes},
    {"a task's messages are bounded in bytes, the dropped counted", test_messages_bounded},
    {"a write's reply is the task a read of its version gives, byte for byte",
     test_write_replies_match_reads},
    {"group commit; acknowledged writes survive kill -9", test_group_commit_and_crash_durability},
    {"--sqlite-exclusive: durable, and the file is the server's alone while it runs",
     test_sqlite_exclusive},
    {"a second server on a SQLite file being served is refused; token commands open it beside",
     test_second_server_refused},
    {NULL, NULL},
};

int main(int argc, char **argv) {
    return th_main_server(tests, argc, argv, &srv, NULL);
}
