/*
 * The limits against the real server, each set low by its flag: body,
 * JSON depth, string length, items and messages per call, batch size,
 * page size, header bytes, long-poll waiters and requests per second per
 * token. Every oversize or malformed input is refused with a clear error
 * and stores nothing.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "harness.h"
#include "sec_util.h"

static struct th_server srv;

static int tcp_from(const struct th_server *s, const char *from);

/* How many tasks the queue holds (open mode: no token needed yet). */
static long queue_count(const char *queue) {
    char path[128];
    snprintf(path, sizeof path, "/v1/tasks?queue=%s", queue);
    struct th_resp *r = th_http(&srv, "GET", path, NULL);
    return r->status == 200 ? (long)json_array_size(th_get(r->json, "tasks")) : -1;
}

static void test_body_too_large(void) {
    char *body = malloc(4096);
    int n = snprintf(body, 4096, "{\"type\":\"big\",\"queue\":\"lq1\",\"params\":{\"s\":\"");
    memset(body + n, 'x', 4000 - n);
    snprintf(body + 4000, 96, "\"}}");
    const char *h[] = {"Content-Type: application/json", NULL};
    struct th_resp *r = th_http_raw(&srv, "POST", "/v1/tasks", body, strlen(body), h);
    free(body);
    CHECK_INT(r->status, 413);
    CHECK_STR(th_str(r->json, "error.code"), "payload_too_large");
    CHECK_INT(queue_count("lq1"), 0);
}

static void test_malformed_and_deep_json(void) {
    struct th_resp *r = th_http(&srv, "POST", "/v1/tasks", "{\"type\":\"m\",\"queue\":\"lq2\"");
    CHECK_INT(r->status, 400);
    CHECK_STR(th_str(r->json, "error.code"), "malformed_json");
    r = th_http(&srv, "POST", "/v1/tasks",
                "{\"type\":\"m\",\"queue\":\"lq2\",\"params\":{\"a\":[[[[[1]]]]]}}");
    CHECK_INT(r->status, 400);
    CHECK(strstr(th_str(r->json, "error.message"), "deeper than 4") != NULL);
    r = th_http(&srv, "POST", "/v1/tasks", "{\"type\":\"m\",\"queue\":\"lq2\",\"type\":\"n\"}");
    CHECK_INT(r->status, 400);
    CHECK_STR(th_str(r->json, "error.code"), "malformed_json");
    CHECK_STR(th_str(r->json, "error.field"), "type"); /* it named none */
    const char *h[] = {"Content-Type: application/json", NULL};
    r = th_http_raw(&srv, "POST", "/v1/tasks", "{\"type\":\"m\\u0000\",\"queue\":\"lq2\"}", 32, h);
    CHECK_INT(r->status, 400);
    CHECK_STR(th_str(r->json, "error.code"), "malformed_json");
    CHECK_STR(th_str(r->json, "error.field"), "type"); /* it named none */
    /* In JSON's words: jansson's named a flag of its API (JSON_ALLOW_NUL). */
    CHECK_STR(th_str(r->json, "error.message"),
              "malformed JSON at line 1 column 17: \\u0000 (a NUL character) in a string "
              "('type')");
    CHECK_INT(queue_count("lq2"), 0);
}

static void test_batch_and_page(void) {
    struct th_resp *r = th_http(&srv, "POST", "/v1/tasks/batch",
                                "{\"tasks\":[{\"type\":\"b\",\"queue\":\"lq3\"},{\"type\":\"b\","
                                "\"queue\":\"lq3\"},{\"type\":\"b\",\"queue\":\"lq3\"}]}");
    CHECK_INT(r->status, 400);
    CHECK_STR(th_str(r->json, "error.field"), "tasks");
    /* One bad entry refuses the whole batch. */
    r = th_http(&srv, "POST", "/v1/tasks/batch",
                "{\"tasks\":[{\"type\":\"b\",\"queue\":\"lq3\"},{\"type\":7,\"queue\":\"lq3\"}]}");
    CHECK_INT(r->status, 400);
    CHECK_INT(queue_count("lq3"), 0);
    CHECK_INT(th_http(&srv, "GET", "/v1/tasks?limit=11", NULL)->status, 400);
    CHECK_INT(th_http(&srv, "GET", "/v1/tasks?limit=10", NULL)->status, 200);
}

static void test_heartbeat_limits(void) {
    char *id = th_submit(&srv, "hb", "\"queue\":\"lq4\"");
    CHECK(id);
    char cid[33], token[33], path[128], body[1024];
    CHECK_INT(th_claim(&srv, "lq4", NULL, cid, token), 200);
    snprintf(path, sizeof path, "/v1/tasks/%s/heartbeat", id);
    char longtext[200];
    memset(longtext, 'y', 150);
    longtext[150] = '\0';
    snprintf(body, sizeof body,
             "{\"lease_token\":\"%s\",\"messages\":[{\"level\":\"INFO\",\"text\":\"%s\"}]}", token,
             longtext);
    struct th_resp *r = th_http(&srv, "POST", path, "%s", body);
    CHECK_INT(r->status, 400);
    snprintf(body, sizeof body,
             "{\"lease_token\":\"%s\",\"items\":[{\"name\":\"a\"},{\"name\":\"b\"},{\"name\":"
             "\"c\"}]}",
             token);
    CHECK_INT(th_http(&srv, "POST", path, "%s", body)->status, 400);
    snprintf(body, sizeof body,
             "{\"lease_token\":\"%s\",\"messages\":[{\"level\":\"INFO\",\"text\":\"1\"},{"
             "\"level\":\"INFO\",\"text\":\"2\"},{\"level\":\"INFO\",\"text\":\"3\"}]}",
             token);
    CHECK_INT(th_http(&srv, "POST", path, "%s", body)->status, 400);
    /* Nothing of the refused calls was stored. */
    snprintf(path, sizeof path, "/v1/tasks/%s", id);
    r = th_http(&srv, "GET", path, NULL);
    CHECK_INT(json_array_size(th_get(r->json, "items")), 0);
    CHECK_INT(json_array_size(th_get(r->json, "messages")), 0);
    free(id);
}

/* One request on a connection of its own: path with a header padded so
 * the request is `total` bytes; the reply's status, or -1 when the
 * connection closed with none. */
static int padded_request_status(const char *path, size_t total) {
    int fd = tcp_from(&srv, "127.0.0.1");
    if (fd < 0) return -1;
    char head[256];
    int n = snprintf(head, sizeof head, "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Pad: ", path);
    size_t pad = total > (size_t)n + 4 ? total - (size_t)n - 4 : 0;
    char *req = malloc((size_t)n + pad + 5);
    memcpy(req, head, (size_t)n);
    memset(req + n, 'p', pad);
    memcpy(req + n + pad, "\r\n\r\n", 5);
    size_t len = (size_t)n + pad + 4, sent = 0;
    while (sent < len) {
        ssize_t w = send(fd, req + sent, len - sent, MSG_NOSIGNAL);
        if (w <= 0) break;
        sent += (size_t)w;
    }
    free(req);
    struct timeval tv = {.tv_sec = 10};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    char buf[64];
    ssize_t got = recv(fd, buf, sizeof buf - 1, 0);
    close(fd);
    if (got <= 0) return -1;
    buf[got] = '\0';
    int status = -1;
    sscanf(buf, "HTTP/1.%*d %d", &status);
    return status;
}

/*
 * --max-header-bytes 8192: a head over it is 431 in the shape of the API it
 * came through, and stores nothing. Every size near the limit gets a
 * reply: libmicrohttpd, given only the limit for its buffers, used to
 * close without one when a head left no room for the reply.
 */
static void test_header_bytes(void) {
    char *big = malloc(12000);
    int n = snprintf(big, 12000, "X-Padding: ");
    memset(big + n, 'p', 11000);
    big[n + 11000] = '\0';
    const char *h[] = {big, "Content-Type: application/json", NULL};
    const char *task = "{\"type\":\"h\",\"queue\":\"lqh\"}";
    struct th_resp *r = th_http_raw(&srv, "POST", "/v1/tasks", task, strlen(task), h);
    CHECK_INT(r->status, 431);
    CHECK_STR(th_str(r->json, "error.code"), "request_header_fields_too_large");
    CHECK(strstr(th_str(r->json, "error.message"), "8192") != NULL);
    r = th_http_raw(&srv, "GET", "/api/task/abc", NULL, 0, h); /* Livepeer's shape */
    CHECK_INT(r->status, 431);
    CHECK(json_is_string(json_array_get(th_get(r->json, "errors"), 0)));
    r = th_http_raw(&srv, "GET", "/healthz", NULL, 0, h);
    CHECK_INT(r->status, 431);
    free(big);
    CHECK_INT(queue_count("lqh"), 0);
    /* Around the limit, on a path libmicrohttpd serves: a reply every time
     * (404 under the limit, 431 over it). */
    int none = 0, under = 0, over = 0;
    for (size_t total = 8192 - 600; total <= 8192 + 200; total += 8) {
        int st = padded_request_status("/beta/task-status/abc", total);
        if (st < 0) none++;
        if (st == 404) under++;
        if (st == 431) over++;
    }
    CHECK_INT(none, 0);
    CHECK(under > 0 && over > 0);
    /* Far past it (and past the buffers): still 431, libmicrohttpd's own. */
    CHECK_INT(padded_request_status("/beta/task-status/abc", 40000), 431);
    CHECK_INT(th_http(&srv, "GET", "/healthz", NULL)->status, 200);
}

static void *long_poll(void *arg) {
    long *status = arg;
    *status =
        th_http(&srv, "POST", "/v1/queues/lq5/claim", "{\"worker\":\"w\",\"wait_seconds\":30}")
            ->status;
    th_http(NULL, NULL, NULL, NULL);
    return NULL;
}

static void test_waiters(void) {
    long first = 0;
    pthread_t t;
    pthread_create(&t, NULL, long_poll, &first);
    bool parked;
    TRY_WAIT_UNTIL(parked, th_metric(&srv, "taskmill_parked_claims") >= 1, 10000,
                   "the first long-poll to be parked");
    struct th_resp *r =
        th_http(&srv, "POST", "/v1/queues/lq5/claim", "{\"worker\":\"w2\",\"wait_seconds\":2}");
    long second = r->status;
    char ra[16] = "";
    bool has_ra = th_resp_header(r, "Retry-After", ra, sizeof ra);
    /* A claim that does not wait is not counted. */
    long nowait = th_http(&srv, "POST", "/v1/queues/lq5/claim", "{\"worker\":\"w3\"}")->status;
    /* The first still waits (30 s: it must outlast the checks above, which
     * a loaded machine can stretch past a shorter wait, the second then
     * parked in its place): a task ends its wait. */
    long submitted =
        th_http(&srv, "POST", "/v1/tasks", "{\"type\":\"t\",\"queue\":\"lq5\"}")->status;
    pthread_join(t, NULL);
    CHECK_INT(submitted, 201);
    CHECK_INT(first, 200);
    CHECK_INT(second, 429);
    CHECK(has_ra);
    CHECK_INT(nowait, 204);
    /* The slot is free again. */
    CHECK_INT(th_http(&srv, "POST", "/v1/queues/lq5/claim", "{\"worker\":\"w\",\"wait_seconds\":1}")
                  ->status,
              204);
}

struct token_poll {
    struct th_server *s;
    const char *bearer;
    long status;
};

static void *token_long_poll(void *arg) {
    struct token_poll *tp = arg;
    tp->status = sec_http(tp->s, tp->bearer, "POST", "/v1/queues/tq/claim",
                          "{\"worker\":\"w1\",\"wait_seconds\":30}")
                     ->status;
    th_http(NULL, NULL, NULL, NULL);
    return NULL;
}

/* A /metrics series read with a bearer token, once the open mode has ended; or -1. */
static long long metric_as(struct th_server *s, const char *bearer, const char *series) {
    struct th_resp *r = sec_http(s, bearer, "GET", "/metrics", NULL);
    const char *at = r->status == 200 && r->body ? strstr(r->body, series) : NULL;
    return at && at[strlen(series)] == ' ' ? atoll(at + strlen(series) + 1) : -1;
}

static void test_waiters_per_token(void) {
    struct th_server s;
    CHECK_INT(th_server_start(&s, "--max-waiters-per-token", "1", NULL), 0);
    char a[128], a_id[32], b[128], b_id[32], rd[128], rd_id[32], cl[128], cl_id[32];
    CHECK(sec_token(&s, "client", "acme", "", cl, cl_id) == 0); /* submits */
    CHECK(sec_token(&s, "worker", "acme", "", a, a_id) == 0);
    CHECK(sec_token(&s, "worker", "acme", "", b, b_id) == 0);
    CHECK(sec_token(&s, "reader", "acme", "", rd, rd_id) == 0); /* reads /metrics */
    WAIT_UNTIL(th_http(&s, "GET", "/v1/tasks", NULL)->status == 401, 20000, "the open mode to end");
    struct token_poll first = {&s, a, 0};
    pthread_t t;
    pthread_create(&t, NULL, token_long_poll, &first);
    bool parked;
    TRY_WAIT_UNTIL(parked, metric_as(&s, rd, "\ntaskmill_parked_claims") >= 1, 10000,
                   "token a's long-poll to be parked");
    /* Token a has its one place; token b still has its own. */
    long again =
        sec_http(&s, a, "POST", "/v1/queues/tq/claim", "{\"worker\":\"w2\",\"wait_seconds\":1}")
            ->status;
    long other =
        sec_http(&s, b, "POST", "/v1/queues/tq/claim", "{\"worker\":\"w3\",\"wait_seconds\":1}")
            ->status;
    /* Token a's long-poll still waits (30 s, to outlast the two claims
     * above on a loaded machine): a task ends it. */
    long submitted =
        sec_http(&s, cl, "POST", "/v1/tasks", "{\"type\":\"t\",\"queue\":\"tq\"}")->status;
    pthread_join(t, NULL);
    CHECK_INT(submitted, 201);
    CHECK_INT(first.status, 200);
    CHECK_INT(again, 429);
    CHECK_INT(other, 204);
    /* The place is given back when the wait ends. */
    CHECK_INT(
        sec_http(&s, a, "POST", "/v1/queues/tq/claim", "{\"worker\":\"w\",\"wait_seconds\":1}")
            ->status,
        204);
    th_server_free(&s);
}

static void test_rate_per_token(void) {
    char bearer[128], id[32], other[128], other_id[32];
    CHECK(sec_token(&srv, "reader", "acme", "", bearer, id) == 0);
    CHECK(sec_token(&srv, "reader", "acme", "", other, other_id) == 0);
    WAIT_UNTIL(th_http(&srv, "GET", "/v1/tasks", NULL)->status == 401, 20000,
               "the open mode to end");
    int ok = 0, limited = 0;
    bool retry_after = false;
    for (int i = 0; i < 20; i++) {
        struct th_resp *r = sec_http(&srv, bearer, "GET", "/v1/tasks?limit=1", NULL);
        if (r->status == 200) ok++;
        if (r->status == 429) {
            limited++;
            char ra[16];
            retry_after = th_resp_header(r, "Retry-After", ra, sizeof ra) && atoi(ra) >= 1;
        }
    }
    CHECK(ok >= 5);
    CHECK(limited >= 10);
    CHECK(retry_after);
    CHECK(sec_log_has(&srv, "rate limited"));
    /* Another token has its own bucket; this one refills. */
    CHECK_INT(sec_http(&srv, other, "GET", "/v1/tasks?limit=1", NULL)->status, 200);
    th_sleep_ms(1100); /* by design: a second passes and the bucket refills */
    CHECK_INT(sec_http(&srv, bearer, "GET", "/v1/tasks?limit=1", NULL)->status, 200);
    /* A Scene7 call costs one request of the rate, though the view checks
     * its caller twice (before its parse and after): a token's 5 calls in
     * a row are all answered. */
    char third[128], third_id[32], envelope[900], h_auth[64];
    CHECK(sec_token(&srv, "reader", "acme", "", third, third_id) == 0);
    snprintf(envelope, sizeof envelope,
             "<soapenv:Envelope xmlns:soapenv=\"http://schemas.xmlsoap.org/soap/envelope/\""
             " xmlns:t=\"http://www.scene7.com/IpsApi/xsd/2014-04-03\"><soapenv:Header>"
             "<t:authHeader><t:user>%s</t:user><t:password>%s</t:password></t:authHeader>"
             "</soapenv:Header><soapenv:Body><t:getActiveJobsParam/></soapenv:Body>"
             "</soapenv:Envelope>",
             third_id, third);
    snprintf(h_auth, sizeof h_auth, "Content-Type: text/xml");
    const char *xml[] = {h_auth, NULL};
    int answered = 0;
    for (int i = 0; i < 5; i++)
        if (th_http_raw(&srv, "POST", "/scene7/services/IpsApiService", envelope, strlen(envelope),
                        xml)
                ->status == 200)
            answered++;
    CHECK_INT(answered, 5);
}

static void test_bad_limit_flags(void) {
    char out[64];
    CHECK_INT(sec_cli(out, sizeof out, "%s serve --max-rate -1 2>/dev/null", sec_bin()), 2);
    CHECK_INT(sec_cli(out, sizeof out, "%s serve --max-json-depth x 2>/dev/null", sec_bin()), 2);
    /* Past the hour the doubling stops at: it was taken and cut to the hour. (A store that
     * cannot open, and a timeout: a server that took the flag stops at once, exit 1.) */
    CHECK_INT(sec_cli(out, sizeof out,
                      "timeout 10 %s serve --webhook-backoff-ms 3600001 --listen 127.0.0.1:0 "
                      "--store sqlite:/nonexistent/x.db 2>/dev/null",
                      sec_bin()),
              2);
    CHECK_INT(sec_cli(out, sizeof out,
                      "%s serve --tls-cert /nonexistent --listen 127.0.0.1:0 "
                      "--store sqlite:/nonexistent/x.db 2>/dev/null",
                      sec_bin()),
              1);
}

/* A --listen whose port is missing, not a number or past 65535 is refused by name; before,
 * 99999 listened on 34463 and an empty port on a free one. */
static void test_bad_listen_port(void) {
    char dir[] = "/tmp/taskmill-listen-XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    const char *bad[] = {"127.0.0.1:99999", "127.0.0.1:65536", "127.0.0.1:", "127.0.0.1:80x",
                         "127.0.0.1: 80",   "127.0.0.1:+80",   "[::1]",      "127.0.0.1:http"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char out[512];
        int rc = sec_cli(out, sizeof out,
                         "timeout 10 %s serve --listen '%s' --store sqlite:%s/x.db 2>&1", sec_bin(),
                         bad[i], dir);
        if (rc != 1 || !strstr(out, "--listen wants HOST:PORT") || !strstr(out, bad[i]))
            printf("    --listen '%s': exit %d: %s\n", bad[i], rc, out);
        CHECK_INT(rc, 1);
        CHECK(strstr(out, "--listen wants HOST:PORT with PORT a number from 0 to 65535") != NULL);
        CHECK(strstr(out, bad[i]) != NULL);
        CHECK(strstr(out, "listening on") == NULL);
    }
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    CHECK_INT(system(cmd), 0);
}

/* A TCP connection to s from source address `from` ("127.0.0.2"), or -1. */
static int tcp_from(const struct th_server *s, const char *from) {
    int port = atoi(strrchr(s->url, ':') + 1);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in src = {.sin_family = AF_INET}, dst = {.sin_family = AF_INET};
    inet_pton(AF_INET, from, &src.sin_addr);
    inet_pton(AF_INET, "127.0.0.1", &dst.sin_addr);
    dst.sin_port = htons((uint16_t)port);
    if (fd < 0 || bind(fd, (struct sockaddr *)&src, sizeof src) ||
        connect(fd, (struct sockaddr *)&dst, sizeof dst)) {
        if (fd >= 0) close(fd);
        return -1;
    }
    return fd;
}

/* Connections to 127.0.0.1:port the server has not accepted yet: the
 * accept queue of its listening socket (/proc/net/tcp); -1 when not found. */
static int accept_queue(int port) {
    FILE *f = fopen("/proc/net/tcp", "r");
    if (!f) return -1;
    char line[512];
    int n = -1;
    while (n < 0 && fgets(line, sizeof line, f)) {
        unsigned lport, state, rxq;
        if (sscanf(line, " %*d: %*x:%x %*x:%*x %x %*x:%x", &lport, &state, &rxq) == 3 &&
            state == 0x0A /* LISTEN */ && (int)lport == port)
            n = (int)rxq;
    }
    fclose(f);
    return n;
}

/* Whether the server closes fd (EOF or reset) within ms. */
static bool closed_within(int fd, int ms) {
    struct pollfd p = {.fd = fd, .events = POLLIN};
    if (poll(&p, 1, ms) <= 0) return false;
    char c;
    return recv(fd, &c, 1, 0) <= 0;
}

/* GET /healthz over fd; the status, or -1. */
static int get_status(int fd) {
    const char req[] = "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    if (send(fd, req, sizeof req - 1, MSG_NOSIGNAL) != (ssize_t)(sizeof req - 1)) return -1;
    char buf[256];
    ssize_t n = recv(fd, buf, sizeof buf - 1, 0);
    if (n <= 0) return -1;
    buf[n] = '\0';
    int status = -1;
    sscanf(buf, "HTTP/1.%*d %d", &status);
    return status;
}

/* The cap and the idle timeout on servers of their own: with both on one
 * server, a test descheduled for the idle timeout's second between its
 * fourth connection and its fifth saw the four closed as idle, and the
 * fifth served and then closed as idle too, never refused (once in CI). */
static void test_connections_per_address(void) {
    struct th_server s2;
    CHECK(th_server_start(&s2, "--max-connections-per-address", "4", NULL) == 0);
    int idle[4];
    for (int i = 0; i < 4; i++)
        CHECK((idle[i] = tcp_from(&s2, "127.0.0.1")) >= 0);
    /* A fifth from that address is closed at accept; another address is
     * served. The accept queue can be empty a moment before the thread that
     * took the fourth has counted it, so a fifth let in is let go and
     * another tried; one let in stays open (the idle timeout is 15 s). */
    WAIT_UNTIL(accept_queue(atoi(strrchr(s2.url, ':') + 1)) == 0, 20000,
               "the server to accept the 4 idle connections");
    bool refused = false;
    for (int i = 0; i < 20 && !refused; i++) {
        int fifth = tcp_from(&s2, "127.0.0.1");
        CHECK(fifth >= 0);
        refused = fifth >= 0 && closed_within(fifth, 1000);
        if (fifth >= 0) close(fifth);
        /* One let in is closed before the next try, or a cap one too high
         * would refuse that try (5 open) and pass. */
        if (!refused) th_sleep_ms(500);
    }
    CHECK(refused);
    int other = tcp_from(&s2, "127.0.0.2");
    CHECK_INT(get_status(other), 200);
    if (other >= 0) close(other);
    /* The four still stand: the refusal was the cap's, not a timeout's. */
    for (int i = 0; i < 4; i++)
        CHECK(idle[i] >= 0 && !closed_within(idle[i], 0));
    /* Once they close, the address is served again; the refusal was counted. */
    for (int i = 0; i < 4; i++)
        if (idle[i] >= 0) close(idle[i]);
    bool served = false;
    for (int i = 0; i < 200 && !served; i++) {
        int fd = tcp_from(&s2, "127.0.0.1");
        served = get_status(fd) == 200;
        if (fd >= 0) close(fd);
        if (!served) th_sleep_ms(100);
    }
    CHECK(served);
    struct th_resp *r = th_http(&s2, "GET", "/metrics", NULL);
    CHECK_INT(r->status, 200);
    CHECK(strstr(r->body, "taskmill_connections_refused_total{reason=\"per_address\"} ") != NULL);
    CHECK(!strstr(r->body, "taskmill_connections_refused_total{reason=\"per_address\"} 0\n"));
    th_server_free(&s2);

    /* Connections that never sent a request are closed after the idle
     * timeout, and the server keeps serving. */
    struct th_server s3;
    CHECK(th_server_start(&s3, "--idle-timeout-seconds", "1", NULL) == 0);
    for (int i = 0; i < 4; i++)
        CHECK((idle[i] = tcp_from(&s3, "127.0.0.1")) >= 0);
    for (int i = 0; i < 4; i++) {
        CHECK(idle[i] >= 0 && closed_within(idle[i], 10000));
        if (idle[i] >= 0) close(idle[i]);
    }
    int fd = tcp_from(&s3, "127.0.0.1");
    CHECK_INT(get_status(fd), 200);
    if (fd >= 0) close(fd);
    th_server_free(&s3);
}

/* The lines of s's log holding needle, and (*untold) the sum of the
 * refusals its "N more refusals were not logged" lines say. */
static int log_count(struct th_server *s, const char *needle, long *untold) {
    char path[400], line[1024];
    snprintf(path, sizeof path, "%s/server.log", s->dir);
    FILE *f = fopen(path, "r");
    int n = 0;
    *untold = 0;
    const char *pre = "taskmill: auth: ";
    while (f && fgets(line, sizeof line, f)) {
        if (strstr(line, needle)) n++;
        if (strstr(line, " more refusals were not logged") && strncmp(line, pre, strlen(pre)) == 0)
            *untold += atol(line + strlen(pre));
    }
    if (f) fclose(f);
    return n;
}

/* 300 requests with a wrong token as fast as one connection goes: every
 * one is refused and counted, but at most 100 lines a second are logged;
 * the first line of a later second says how many were not. */
static void test_refusals_logged_at_most(void) {
    struct th_server s;
    CHECK(th_server_start(&s, NULL) == 0);
    char bearer[128], id[32], wrong[128];
    CHECK(sec_token(&s, "admin", "default", "", bearer, id) == 0);
    snprintf(wrong, sizeof wrong, "tm_%s_%064d", id, 0);
    /* Each refusal's second (the monotonic clock's, as the server counts
     * them, th_now_ms's too) lies between the second its request was sent
     * in and the one its reply came back in. */
    enum { N = 300, SPAN = 64 };
    static long long sent_s[N], back_s[N];
    long long t0 = th_now_ms();
    for (int i = 0; i < N; i++) {
        sent_s[i] = th_now_ms() / 1000;
        CHECK_INT(sec_http(&s, wrong, "GET", "/v1/tasks?limit=1", NULL)->status, 401);
        back_s[i] = th_now_ms() / 1000;
    }
    long long took = th_now_ms() - t0;
    /* The most refusals each second can have had, and the fewest. */
    int most[SPAN] = {0}, fewest[SPAN] = {0};
    long long first_s = sent_s[0];
    for (int i = 0; i < N; i++) {
        for (long long b = sent_s[i]; b <= back_s[i] && b - first_s < SPAN; b++)
            most[b - first_s]++;
        if (sent_s[i] == back_s[i] && sent_s[i] - first_s < SPAN) fewest[sent_s[i] - first_s]++;
    }
    int lines_max = 1, certain_over = 0; /* the later refusal's line */
    for (int b = 0; b < SPAN; b++) {
        lines_max += most[b] < 100 ? most[b] : 100;
        if (fewest[b] > 100) certain_over = 1;
    }
    th_sleep_ms(1100); /* by design: a new second, whose first refusal says the rest */
    CHECK_INT(sec_http(&s, wrong, "GET", "/v1/tasks?limit=1", NULL)->status, 401);
    struct th_resp *m = sec_http(&s, bearer, "GET", "/metrics", NULL);
    CHECK_INT(m->status, 200);
    CHECK(strstr(m->body, "\ntaskmill_auth_refusals_total{status=\"401\"} 301\n") != NULL);
    long untold = 0;
    int lines = 0;
    /* The log is written as the replies go: the last line may trail them. */
    for (int i = 0; i < 200; i++) { /* 20 s: a deadline */
        lines = log_count(&s, "wrong secret", &untold);
        if (lines + untold == 301) break;
        th_sleep_ms(100);
    }
    printf("300 refusals in %lld ms, then one: %d lines, %ld said not logged\n", took, lines,
           untold);
    CHECK_INT(lines + untold, 301);
    /* At most 100 lines in each second the refusals fell in, and the last
     * refusal's line: bounded by the seconds as they were (a run of 1.5
     * to 2 s touches three, where the bound was 201 for any run under 2 s);
     * some not logged when a second surely had more than 100. */
    if (lines > lines_max || (certain_over && untold == 0))
        printf("    at most %d lines, a second over 100: %d\n", lines_max, certain_over);
    CHECK(lines <= lines_max);
    if (certain_over) CHECK(untold > 0);
    th_server_free(&s);
}

static const struct th_test tests[] = {
    {"a body over --max-body-bytes is 413 and stores nothing", test_body_too_large},
    {"malformed, too deep or duplicate JSON is 400 and stores nothing",
     test_malformed_and_deep_json},
    {"--max-batch and --max-page", test_batch_and_page},
    {"--max-string-bytes, --max-items, --max-messages", test_heartbeat_limits},
    {"--max-header-bytes: 431 in the API's shape, stores nothing, a reply at every size",
     test_header_bytes},
    {"--max-waiters: one more long-poll is 429", test_waiters},
    {"--max-waiters-per-token: one token cannot take every place", test_waiters_per_token},
    {"--max-rate: 429 with Retry-After per token", test_rate_per_token},
    {"refusals: every one counted, at most 100 log lines a second", test_refusals_logged_at_most},
    {"--max-connections-per-address and --idle-timeout-seconds", test_connections_per_address},
    {"bad limit flags are usage errors", test_bad_limit_flags},
    {"a --listen port missing, not a number or past 65535 is refused", test_bad_listen_port},
    {NULL, NULL},
};

int main(int argc, char **argv) {
    if (th_server_start(&srv, "--max-body-bytes", "2048", "--max-json-depth", "4",
                        "--max-string-bytes", "100", "--max-items", "2", "--max-messages", "2",
                        "--max-batch", "2", "--max-page", "10", "--max-header-bytes", "8192",
                        "--max-waiters", "1", "--max-rate", "5", NULL))
        th_fail(__FILE__, __LINE__, "server did not start");
    int rc = th_main(tests, argc, argv);
    th_server_free(&srv);
    return rc || th_failed();
}
