/*
 * --max-unsent-bytes and --max-unsent-bytes-per-token against the real
 * server: a read's reply that would pass what replies not yet taken by
 * their clients may hold is refused 503 with Retry-After, in the API's
 * shape (v1 and Livepeer), on both HTTP paths; a write's reply is never
 * refused; another token keeps its own share; the bytes are given back
 * when a client takes its reply or goes away.
 *
 * A client that asks for pages and does not read them is a raw
 * connection with a 4 KiB receive buffer: its page (about 7 MB) does not
 * fit the kernel's buffers on the loopback, so the server holds it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "harness.h"
#include "sec_util.h"

#define BIG_TASKS  10
#define BIG_PARAMS 700000 /* bytes of each big task's params: a page of 10 is about 7 MB */

static long long metric_as(struct th_server *s, const char *bearer, const char *series) {
    struct th_resp *r = sec_http(s, bearer, "GET", "/metrics", NULL);
    const char *at = r->status == 200 && r->body ? strstr(r->body, series) : NULL;
    return at && at[strlen(series)] == ' ' ? atoll(at + strlen(series) + 1) : -1;
}

/* Submits BIG_TASKS tasks of BIG_PARAMS bytes of params to queue bq with
 * bearer's token; the first one's id into id. Livepeer "clip" tasks, whose
 * params' clip.url its view shows, so its pages are as big as v1's. */
static bool submit_big(struct th_server *s, const char *bearer, char id[64]) {
    size_t cap = BIG_PARAMS + 128;
    char *body = malloc(cap);
    int n =
        snprintf(body, cap, "{\"type\":\"clip\",\"queue\":\"bq\",\"params\":{\"clip\":{\"url\":\"");
    memset(body + n, 'b', BIG_PARAMS);
    snprintf(body + n + BIG_PARAMS, cap - (size_t)n - BIG_PARAMS, "\"}}}");
    bool ok = true;
    for (int i = 0; i < BIG_TASKS && ok; i++) {
        struct th_resp *r = sec_http(s, bearer, "POST", "/v1/tasks", body);
        ok = r->status == 201;
        if (ok && i == 0) snprintf(id, 64, "%s", th_str(r->json, "id"));
    }
    free(body);
    return ok;
}

/* Asks for a page of every big task on a connection that does not read
 * it; its socket, or -1. */
static int page_unread(struct th_server *s, const char *bearer) {
    int fd = th_tcp_open_rcvbuf(s, 4096);
    if (fd < 0) return -1;
    char req[512];
    int n = snprintf(req, sizeof req,
                     "GET /v1/tasks?queue=bq&limit=%d HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                     "Authorization: Bearer %s\r\n\r\n",
                     BIG_TASKS, bearer);
    if (send(fd, req, (size_t)n, MSG_NOSIGNAL) != n) {
        close(fd);
        return -1;
    }
    return fd;
}

/* Ten running tasks of queue pq (submitted by client, claimed by worker),
 * each with a progress message of 60,000 bytes. */
static bool running_jobs(struct th_server *s, const char *client, const char *worker) {
    size_t cap = 61000;
    char *hb = malloc(cap);
    bool ok = true;
    for (int i = 0; i < 10 && ok; i++) {
        ok =
            sec_http(s, client, "POST", "/v1/tasks", "{\"type\":\"r\",\"queue\":\"pq\"}")->status ==
            201;
        struct th_resp *r =
            ok ? sec_http(s, worker, "POST", "/v1/queues/pq/claim", "{\"worker\":\"w\"}") : NULL;
        ok = r && r->status == 200 && th_str(r->json, "task.id") && th_str(r->json, "lease_token");
        if (!ok) break;
        char path[128];
        snprintf(path, sizeof path, "/v1/tasks/%s/heartbeat", th_str(r->json, "task.id"));
        int n = snprintf(hb, cap, "{\"lease_token\":\"%s\",\"progress\":{\"message\":\"",
                         th_str(r->json, "lease_token"));
        memset(hb + n, 'm', 60000);
        snprintf(hb + n + 60000, cap - (size_t)n - 60000, "\"}}");
        ok = sec_http(s, worker, "POST", path, hb)->status == 200;
    }
    free(hb);
    return ok;
}

static bool is_unsent_refusal(struct th_resp *r, const char *flag) {
    char ra[16];
    const char *msg = th_str(r->json, "error.message");
    return r->status == 503 && th_resp_header(r, "Retry-After", ra, sizeof ra) && atoi(ra) >= 1 &&
           msg && strstr(msg, flag) != NULL;
}

/* One token's unread pages take its share; its next reads of 16 KiB or
 * more are refused on both paths (v1 and Livepeer's shape), a small read
 * and a write are not, another token is served, and the share comes back
 * once the client goes. */
static void test_per_token(void) {
    struct th_server s;
    CHECK_INT(th_server_start(&s, "--max-unsent-bytes-per-token", "7500000", "--max-unsent-bytes",
                              "40000000", NULL),
              0);
    char a[128], a_id[32], b[128], b_id[32], rd[128], rd_id[32], w[128], w_id[32];
    CHECK(sec_token(&s, "client", "acme", "", a, a_id) == 0);
    CHECK(sec_token(&s, "client", "acme", "", b, b_id) == 0);
    CHECK(sec_token(&s, "reader", "acme", "", rd, rd_id) == 0); /* reads /metrics */
    CHECK(sec_token(&s, "worker", "acme", "", w, w_id) == 0);
    WAIT_UNTIL(th_http(&s, "GET", "/v1/tasks", NULL)->status == 401, 20000, "the open mode to end");
    char big_id[64];
    CHECK(submit_big(&s, a, big_id));
    struct th_resp *r =
        sec_http(&s, a, "POST", "/v1/tasks", "{\"type\":\"small\",\"queue\":\"sq\"}");
    CHECK_INT(r->status, 201);
    char small_id[64];
    snprintf(small_id, sizeof small_id, "%s", th_str(r->json, "id") ? th_str(r->json, "id") : "");
    CHECK_INT(metric_as(&s, rd, "\ntaskmill_unsent_reply_bytes"), 0);

    int fd = page_unread(&s, a);
    CHECK(fd >= 0);
    WAIT_UNTIL(metric_as(&s, rd, "\ntaskmill_unsent_reply_bytes") >= BIG_TASKS * BIG_PARAMS, 20000,
               "the unread page to be counted");
    long long held = metric_as(&s, rd, "\ntaskmill_unsent_reply_bytes");

    /* Token a's next page (libmicrohttpd's path), Livepeer's list, and one
     * big task (the fast path): each would pass a's 7.5 MB. */
    r = sec_http(&s, a, "GET", "/v1/tasks?queue=bq&limit=10", NULL);
    CHECK(is_unsent_refusal(r, "--max-unsent-bytes-per-token"));
    CHECK(!strstr(r->headers, "Link:") && !strstr(r->headers, "X-Total-Count"));
    r = sec_http(&s, a, "GET", "/api/task?limit=10", NULL);
    CHECK_INT(r->status, 503);
    const char *lp = json_string_value(json_array_get(th_get(r->json, "errors"), 0));
    CHECK(lp && strstr(lp, "--max-unsent-bytes-per-token"));
    char path[128];
    snprintf(path, sizeof path, "/v1/tasks/%s", big_id);
    r = sec_http(&s, a, "GET", path, NULL);
    CHECK(is_unsent_refusal(r, "--max-unsent-bytes-per-token"));
    /* Scene7's reads come by POST: a getActiveJobs of ten running jobs,
     * each with a 60 KB progress message, is refused in SOAP's shape. */
    CHECK(running_jobs(&s, a, w));
    char env[1024];
    snprintf(env, sizeof env,
             "<soapenv:Envelope xmlns:soapenv=\"http://schemas.xmlsoap.org/soap/envelope/\""
             " xmlns:t=\"http://www.scene7.com/IpsApi/xsd/2014-04-03\"><soapenv:Header>"
             "<t:authHeader><t:user>%s</t:user><t:password>%s</t:password></t:authHeader>"
             "</soapenv:Header><soapenv:Body><t:getActiveJobsParam/></soapenv:Body>"
             "</soapenv:Envelope>",
             a_id, a);
    const char *xml[] = {"Content-Type: text/xml; charset=utf-8", NULL};
    r = th_http_raw(&s, "POST", "/scene7/services/IpsApiService", env, strlen(env), xml);
    CHECK(r->status >= 500 && r->body && strstr(r->body, "<soapenv:Fault>") &&
          strstr(r->body, "--max-unsent-bytes-per-token"));
    /* A read under 16 KiB is not counted; a write's reply is never refused. */
    snprintf(path, sizeof path, "/v1/tasks/%s", small_id);
    CHECK_INT(sec_http(&s, a, "GET", path, NULL)->status, 200);
    size_t cap = 100000;
    char *note = malloc(cap);
    int n = snprintf(note, cap, "{\"type\":\"w\",\"queue\":\"wq\",\"params\":{\"n\":\"");
    memset(note + n, 'n', 50000);
    snprintf(note + n + 50000, cap - (size_t)n - 50000, "\"}}");
    r = sec_http(&s, a, "POST", "/v1/tasks", note);
    CHECK_INT(r->status, 201);
    free(note);
    /* Another token has its own share. */
    r = sec_http(&s, b, "GET", "/v1/tasks?queue=bq&limit=10", NULL);
    CHECK_INT(r->status, 200);
    CHECK_INT((long long)json_array_size(th_get(r->json, "tasks")), BIG_TASKS);
    CHECK(metric_as(&s, rd, "\ntaskmill_unsent_refused_total") >= 3);
    /* Still held: none of the refusals counted, nor took, anything (b's
     * page is given back when its request ends, after its last send: a
     * wait, not a look). */
    WAIT_UNTIL(metric_as(&s, rd, "\ntaskmill_unsent_reply_bytes") == held, 20000,
               "b's page to be given back, a's still held");

    /* The client goes without reading: its bytes come back, and a's page
     * is served again. */
    close(fd);
    WAIT_UNTIL(metric_as(&s, rd, "\ntaskmill_unsent_reply_bytes") == 0, 20000,
               "the unread page's bytes to be given back");
    r = sec_http(&s, a, "GET", "/v1/tasks?queue=bq&limit=10", NULL);
    CHECK_INT(r->status, 200);
    CHECK_INT((long long)json_array_size(th_get(r->json, "tasks")), BIG_TASKS);
    r = th_http_raw(&s, "POST", "/scene7/services/IpsApiService", env, strlen(env), xml);
    CHECK_INT(r->status, 200);
    CHECK(r->body && strlen(r->body) > 10 * 2 * 60000); /* it was refused for its size */
    /* A page read whole gives its bytes back too. */
    WAIT_UNTIL(metric_as(&s, rd, "\ntaskmill_unsent_reply_bytes") == 0, 20000,
               "the pages read whole to be given back");
    th_server_free(&s);
}

/* --max-unsent-bytes is over every token: one token's unread page leaves
 * too little for another's. A page larger than the cap (7 MB against 5)
 * goes when nothing else is held, or it would be refused for ever. */
static void test_server_wide(void) {
    struct th_server s;
    CHECK_INT(th_server_start(&s, "--max-unsent-bytes", "5000000", "--max-unsent-bytes-per-token",
                              "0", NULL),
              0);
    char a[128], a_id[32], b[128], b_id[32], rd[128], rd_id[32];
    CHECK(sec_token(&s, "client", "acme", "", a, a_id) == 0);
    CHECK(sec_token(&s, "client", "other", "", b, b_id) == 0);
    CHECK(sec_token(&s, "reader", "acme", "", rd, rd_id) == 0);
    WAIT_UNTIL(th_http(&s, "GET", "/v1/tasks", NULL)->status == 401, 20000, "the open mode to end");
    char id_a[64], id_b[64];
    CHECK(submit_big(&s, a, id_a));
    CHECK(submit_big(&s, b, id_b));
    int fd = page_unread(&s, a);
    CHECK(fd >= 0);
    WAIT_UNTIL(metric_as(&s, rd, "\ntaskmill_unsent_reply_bytes") >= BIG_TASKS * BIG_PARAMS, 20000,
               "the unread page to be counted");
    struct th_resp *r = sec_http(&s, b, "GET", "/v1/tasks?queue=bq&limit=10", NULL);
    CHECK(is_unsent_refusal(r, "--max-unsent-bytes)"));
    /* The message names no other tenant's bytes, only the server's cap. */
    CHECK(strstr(th_str(r->json, "error.message"), "5000000") != NULL);
    close(fd);
    WAIT_UNTIL(metric_as(&s, rd, "\ntaskmill_unsent_reply_bytes") == 0, 20000,
               "the unread page's bytes to be given back");
    r = sec_http(&s, b, "GET", "/v1/tasks?queue=bq&limit=10", NULL);
    CHECK_INT(r->status, 200);
    CHECK(r->body && strlen(r->body) > 5000000);
    th_server_free(&s);
}

static void test_bad_flags(void) {
    char out[64];
    CHECK_INT(sec_cli(out, sizeof out, "%s serve --max-unsent-bytes -1 2>/dev/null", sec_bin()), 2);
    CHECK_INT(
        sec_cli(out, sizeof out, "%s serve --max-unsent-bytes-per-token x 2>/dev/null", sec_bin()),
        2);
}

static const struct th_test tests[] = {
    {"--max-unsent-bytes-per-token: unread pages refuse that token's big reads", test_per_token},
    {"--max-unsent-bytes: over every token", test_server_wide},
    {"bad --max-unsent-bytes values are usage errors", test_bad_flags},
    {NULL, NULL},
};

int main(int argc, char **argv) {
    return th_main(tests, argc, argv) || th_failed();
}
