/*
 * The whole life of tasks over HTTP against the real server: submit,
 * claim, heartbeat, complete; failure with retries and backoff; cancel of
 * a running task through the heartbeat; lease expiry; long-polls.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

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

/* Sends `n` heartbeats of 100 INFO messages each to a running task. */
static bool send_messages(const char *id, const char *tok, int n) {
    char path[128];
    snprintf(path, sizeof path, "/v1/tasks/%s/heartbeat", id);
    for (int k = 0; k < n; k++) {
        char body[8192];
        int len = snprintf(body, sizeof body, "{\"lease_token\":\"%s\",\"messages\":[", tok);
        for (int i = 0; i < 100; i++)
            len += snprintf(body + len, sizeof body - (size_t)len,
                            "%s{\"level\":\"INFO\",\"text\":\"m%d\"}", i ? "," : "", k * 100 + i);
        snprintf(body + len, sizeof body - (size_t)len, "]}");
        if (th_http(&srv, "POST", path, "%s", body)->status != 200) return false;
    }
    return true;
}

/* A worker's own first message with the key of the server's "messages
 * dropped" count: a count at the top of int64 overflowed when more were
 * dropped (UBSan stopped the server), and a negative one was taken as the
 * count and shown ("-4 earlier messages were dropped"). */
static void test_forged_dropped_count(void) {
    static const char *const forged[] = {"9223372036854775807", "-5"};
    for (int f = 0; f < 2; f++) {
        char id[33], tok[33], path[128];
        CHECK(running_task(f ? "dropq2" : "dropq1", id, tok));
        snprintf(path, sizeof path, "/v1/tasks/%s/heartbeat", id);
        struct th_resp *r =
            th_http(&srv, "POST", path,
                    "{\"lease_token\":\"%s\",\"messages\":[{\"level\":\"INFO\",\"text\":\"x\","
                    "\"key\":\"taskmill.messages_dropped\",\"parameters\":{\"dropped\":%s}}]}",
                    tok, forged[f]);
        CHECK_INT(r->status, 200);
        CHECK(send_messages(id, tok, 10)); /* 1001 in all: the oldest go */
        snprintf(path, sizeof path, "/v1/tasks/%s", id);
        r = th_http(&srv, "GET", path, NULL);
        CHECK_INT(r->status, 200);
        CHECK_INT(json_array_size(th_get(r->json, "messages")), 1000);
        CHECK_STR(th_str(r->json, "messages.0.key"), "taskmill.messages_dropped");
        if (f == 1) { /* the forged -5 was an ordinary message: it and m0 went */
            CHECK_INT(th_int(r->json, "messages.0.parameters.dropped"), 2);
            CHECK_STR(th_str(r->json, "messages.1.text"), "m1");
        }
        CHECK(th_int(r->json, "messages.0.parameters.dropped") > 0);
    }
}

/* A launch that repeats an idempotency_key answers as a submit does: 200
 * with the first task (it answered 201, as if it had made a new one). */
static void test_launch_repeat_is_200(void) {
    struct th_resp *r = th_http(&srv, "POST", "/v1/definitions",
                                "{\"name\":\"launch-idem\",\"type\":\"t\",\"queue\":\"lq\"}");
    CHECK_INT(r->status, 201);
    r = th_http(&srv, "POST", "/v1/definitions/launch-idem/launch", "{\"idempotency_key\":\"L1\"}");
    CHECK_INT(r->status, 201);
    char *first = strdup(th_str(r->json, "id"));
    r = th_http(&srv, "POST", "/v1/definitions/launch-idem/launch",
                "{\"idempotency_key\":\"L1\",\"params\":{\"other\":1}}");
    long status = r->status;
    bool same = th_str(r->json, "id") && strcmp(th_str(r->json, "id"), first) == 0;
    free(first);
    CHECK_INT(status, 200);
    CHECK(same);
}

/* A parent completes WARNING when a child was cancelled, also when the
 * child ended before the parent's complete (it was SUCCESS then, and
 * WARNING only when the parent had to await the child). */
static void test_parent_with_cancelled_child_warns(void) {
    char pid[33], tok[33], extra[128], path[128];
    CHECK(running_task("warnparent", pid, tok));
    snprintf(extra, sizeof extra, "\"queue\":\"warnkids\",\"parent_id\":\"%s\"", pid);
    char *kid = th_submit(&srv, "kid", extra);
    CHECK(kid);
    snprintf(path, sizeof path, "/v1/tasks/%s/cancel", kid);
    free(kid);
    CHECK_INT(th_http(&srv, "POST", path, NULL)->status, 200);
    snprintf(path, sizeof path, "/v1/tasks/%s/complete", pid);
    struct th_resp *r = th_http(&srv, "POST", path, "{\"lease_token\":\"%s\"}", tok);
    CHECK_INT(r->status, 200);
    CHECK_STR(th_str(r->json, "phase"), "completed");
    CHECK_STR(th_str(r->json, "completion_status"), "WARNING");
}

/* A worker whose name has a two-byte character across byte 40 loses its
 * lease: the error cut the name there, so it was not UTF-8. On
 * PostgreSQL the sweep's commit then failed at every sweep (the task
 * stayed running for ever); on SQLite the task's JSON was invalid. */
static void test_lease_lost_worker_name_utf8(void) {
    char *id = th_submit(&srv, "t", "\"queue\":\"utf8lease\"");
    CHECK(id);
    const char *worker = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\xc3\xa9"; /* 39 + 'é' */
    char body[128], cid[33], tok[33], path[128];
    snprintf(body, sizeof body, "{\"worker\":\"%s\",\"lease_seconds\":1}", worker);
    long st = th_claim(&srv, "utf8lease", body, cid, tok);
    snprintf(path, sizeof path, "/v1/tasks/%s", id);
    free(id);
    CHECK_INT(st, 200);
    /* The lease runs out after 1 s; the sweep then handles it. */
    WAIT_UNTIL(th_str(th_http(&srv, "GET", path, NULL)->json, "error") != NULL, 15000,
               "the lease of '%s' to expire", cid);
    struct th_resp *r = th_http(&srv, "GET", path, NULL);
    CHECK(r->json != NULL); /* jansson takes only UTF-8 */
    char want[128];
    snprintf(want, sizeof want, "lease of worker '%s' expired", worker);
    CHECK_STR(th_str(r->json, "error"), want);
}

/* A chain of parents, each awaiting its one child, completes from the
 * leaf up in one transaction. The writer walked it by recursion, a few
 * hundred bytes of stack a level with no limit on the depth (about
 * 15,000 levels would have overflowed it under ASan; not forced here);
 * it loops now. */
static void test_parent_chain_completes_up(void) {
    enum { DEPTH = 150 };
    static char ids[DEPTH][33], toks[DEPTH][33];
    char extra[128], path[128];
    for (int i = 0; i < DEPTH; i++) {
        if (i == 0)
            snprintf(extra, sizeof extra, "\"queue\":\"chainq\"");
        else
            snprintf(extra, sizeof extra, "\"queue\":\"chainq\",\"parent_id\":\"%s\"", ids[i - 1]);
        char *id = th_submit(&srv, "link", extra);
        CHECK(id);
        if (!id) return;
        CHECK_INT(th_claim(&srv, "chainq", NULL, ids[i], toks[i]), 200);
        CHECK_STR(ids[i], id);
        free(id);
    }
    /* Each link but the leaf has an open child: its complete waits. */
    for (int i = 0; i < DEPTH - 1; i++) {
        snprintf(path, sizeof path, "/v1/tasks/%s/complete", ids[i]);
        struct th_resp *r = th_http(&srv, "POST", path, "{\"lease_token\":\"%s\"}", toks[i]);
        CHECK_INT(r->status, 200);
        CHECK_STR(th_str(r->json, "phase"), "waiting");
    }
    snprintf(path, sizeof path, "/v1/tasks/%s/complete", ids[DEPTH - 1]);
    struct th_resp *r = th_http(&srv, "POST", path, "{\"lease_token\":\"%s\"}", toks[DEPTH - 1]);
    CHECK_INT(r->status, 200);
    CHECK_STR(th_str(r->json, "phase"), "completed");
    for (int i = 0; i < DEPTH; i++) {
        snprintf(path, sizeof path, "/v1/tasks/%s", ids[i]);
        r = th_http(&srv, "GET", path, NULL);
        CHECK_STR(th_str(r->json, "phase"), "completed");
        CHECK_STR(th_str(r->json, "completion_status"), "SUCCESS");
    }
}

static void sleep_ms(int ms) {
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Sends a waiting claim on its own connection, then closes it. */
static bool claim_then_hang_up(const char *queue, bool chunked) {
    int fd = th_tcp_open(&srv);
    if (fd < 0) return false;
    const char *body = "{\"worker\":\"gone\",\"wait_seconds\":30}";
    char req[512];
    int n = chunked ? snprintf(req, sizeof req,
                               "POST /v1/queues/%s/claim HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                               "Content-Type: application/json\r\nTransfer-Encoding: chunked"
                               "\r\n\r\n%zx\r\n%s\r\n0\r\n\r\n",
                               queue, strlen(body), body)
                    : snprintf(req, sizeof req,
                               "POST /v1/queues/%s/claim HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                               "Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n%s",
                               queue, strlen(body), body);
    bool ok = send(fd, req, (size_t)n, 0) == n;
    sleep_ms(300); /* parked by now */
    close(fd);
    return ok;
}

/* A worker that stops (or times out) while its claim waits closes the
 * connection: the parked claim stayed in the store until its wait ran out
 * and leased the next task to no one (it came back only when that lease
 * expired). It is answered once the client is seen gone now. On the fast
 * path and through libmicrohttpd (a chunked body). */
static void test_claim_of_gone_client_takes_nothing(void) {
    static const char *const queues[] = {"goneq_fast", "goneq_mhd"};
    for (int i = 0; i < 2; i++) {
        CHECK(claim_then_hang_up(queues[i], i == 1));
        sleep_ms(1500); /* the watch looks every 500 ms */
        char extra[64], path[128];
        snprintf(extra, sizeof extra, "\"queue\":\"%s\"", queues[i]);
        char *id = th_submit(&srv, "t", extra);
        CHECK(id);
        if (!id) return;
        sleep_ms(300);
        snprintf(path, sizeof path, "/v1/tasks/%s", id);
        CHECK_STR(th_str(th_http(&srv, "GET", path, NULL)->json, "phase"), "pending");
        char cid[33], tok[33];
        CHECK_INT(th_claim(&srv, queues[i], NULL, cid, tok), 200);
        CHECK_STR(cid, id);
        free(id);
    }
}

/* Sends POST path with body on a new connection; the socket, or -1. */
static int raw_post(const char *path, const char *body) {
    int fd = th_tcp_open(&srv);
    if (fd < 0) return -1;
    size_t n = strlen(body);
    char head[256];
    int h = snprintf(head, sizeof head,
                     "POST %s HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                     "Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n",
                     path, n);
    if (send(fd, head, (size_t)h, MSG_NOSIGNAL) != h ||
        send(fd, body, n, MSG_NOSIGNAL) != (ssize_t)n) {
        close(fd);
        return -1;
    }
    return fd;
}

/* The status of the reply on fd (its head is enough), or -1. */
static int raw_status(int fd) {
    char buf[64];
    size_t len = 0;
    while (len < 12) {
        ssize_t k = recv(fd, buf + len, sizeof buf - 1 - len, 0);
        if (k <= 0) return -1;
        len += (size_t)k;
    }
    buf[len] = '\0';
    return atoi(buf + 9);
}

/* A waiting claim and a submit to its queue that join one group commit,
 * the claim first (while a large batch is applied, what comes joins it):
 * the claim, parking only once the commit is done, was not among the
 * parked claims the submit's task was offered to, and waited out its
 * wait (204) with the task pending in its queue. */
static void test_claim_gets_task_of_its_own_commit(void) {
    static char body[40000];
    size_t len = (size_t)snprintf(body, sizeof body, "{\"tasks\":[");
    for (int i = 0; i < 1000; i++)
        len += (size_t)snprintf(body + len, sizeof body - len,
                                "%s{\"type\":\"t\",\"queue\":\"busyq\"}", i ? "," : "");
    snprintf(body + len, sizeof body - len, "]}");
    for (int round = 0; round < 5; round++) {
        int busy = raw_post("/v1/tasks/batch", body);
        int claim = raw_post("/v1/queues/samebatch/claim", "{\"worker\":\"w\",\"wait_seconds\":4}");
        int sub = raw_post("/v1/tasks", "{\"type\":\"t\",\"queue\":\"samebatch\"}");
        int st_busy = raw_status(busy), st_sub = raw_status(sub), st = raw_status(claim);
        close(busy);
        close(sub);
        close(claim);
        CHECK_INT(st_busy, 201);
        CHECK_INT(st_sub, 201);
        CHECK_INT(st, 200); /* not 204 after the 4 s */
    }
}

static const struct th_test tests[] = {
    {"submit, claim, heartbeat, complete", test_submit_claim_heartbeat_complete},
    {"a WARN message completes with WARNING", test_warning_completion},
    {"a whole percent reads back as itself", test_percent_reads_back},
    {"a forged 'messages dropped' count neither overflows nor goes negative",
     test_forged_dropped_count},
    {"a launch that repeats an idempotency key is 200", test_launch_repeat_is_200},
    {"a parent with a cancelled child completes WARNING", test_parent_with_cancelled_child_warns},
    {"a lost lease of a worker with a non-ASCII name", test_lease_lost_worker_name_utf8},
    {"a chain of awaiting parents completes from the leaf up", test_parent_chain_completes_up},
    {"a waiting claim whose client hung up takes no task", test_claim_of_gone_client_takes_nothing},
    {"a waiting claim gets the task submitted in its own commit",
     test_claim_gets_task_of_its_own_commit},
    {NULL, NULL},
};

int main(int argc, char **argv) {
    setup();
    int rc = th_main(tests, argc, argv);
    teardown();
    return rc || th_failed();
}
