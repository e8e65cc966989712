/*
 * test_http_fast: the HTTP fast path (src/server/http_fast.c) over raw
 * sockets: pipelined and split requests, a connection that moves on to
 * libmicrohttpd in the middle, bad input answered in v1's shape with
 * nothing stored, "Connection: close", a client gone while its claim
 * waits, and the same answers with --no-fast-path.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "harness.h"

static struct th_server srv;

static bool send_all(int fd, const char *p, size_t n) {
    while (n) {
        ssize_t k = send(fd, p, n, MSG_NOSIGNAL);
        if (k <= 0) return false;
        p += k;
        n -= (size_t)k;
    }
    return true;
}

/* A request with a JSON body (NULL: none), as a client writes it. */
static char *req_text(const char *method, const char *path, const char *body, const char *extra) {
    /* Measured, then written (asprintf's char ** made gcc 12 at -O2 see a
     * dangling pointer in every caller). */
    static const char fmt[] =
        "%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\n%s%s"
        "Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n%s";
    size_t n = body ? strlen(body) : 0;
    const char *x = extra ? extra : "", *xe = extra ? "\r\n" : "", *b = body ? body : "";
    int len = snprintf(NULL, 0, fmt, method, path, x, xe, n, b);
    char *out = len < 0 ? NULL : malloc((size_t)len + 1);
    if (!out) abort();
    snprintf(out, (size_t)len + 1, fmt, method, path, x, xe, n, b);
    return out;
}

struct resp {
    int status;
    char headers[2048];
    char *body;
    json_t *json;
};

static void resp_clear(struct resp *r) {
    free(r->body);
    json_decref(r->json);
    memset(r, 0, sizeof *r);
}

/* Bytes read past the last response on a connection. */
struct conn_in {
    char buf[65536];
    size_t n;
};
static struct conn_in in1; /* the single-threaded tests' one connection at a time */

/* Reads one response from fd within 10 s: 0, or -1 (EOF, timeout, garbage). */
static int read_resp_in(int fd, struct conn_in *in, struct resp *r) {
    char *pending = in->buf;
    size_t npending = in->n;
    memset(r, 0, sizeof *r);
    long long deadline = th_now_ms() + 10000;
    for (;;) {
        char *end = memmem(pending, npending, "\r\n\r\n", 4);
        if (end) {
            size_t head = (size_t)(end - pending) + 4;
            size_t cl = 0;
            for (char *p = pending; p + 17 <= end; p++)
                if (strncasecmp(p, "\r\nContent-Length:", 17) == 0) {
                    cl = strtoul(p + 17, NULL, 10);
                    break;
                }
            if (npending >= head + cl) {
                if (sscanf(pending, "HTTP/1.1 %d", &r->status) != 1) return -1;
                size_t hl = head < sizeof r->headers ? head : sizeof r->headers - 1;
                memcpy(r->headers, pending, hl);
                r->body = strndup(pending + head, cl);
                r->json = json_loads(r->body, 0, NULL);
                memmove(pending, pending + head + cl, npending - head - cl);
                in->n = npending - head - cl;
                return 0;
            }
        }
        struct pollfd pf = {.fd = fd, .events = POLLIN};
        int left = (int)(deadline - th_now_ms());
        if (left <= 0 || poll(&pf, 1, left) <= 0) return -1;
        ssize_t k = recv(fd, pending + npending, sizeof in->buf - npending, 0);
        if (k <= 0) return -1;
        npending += (size_t)k;
        in->n = npending;
    }
}

static int read_resp(int fd, struct resp *r) {
    return read_resp_in(fd, &in1, r);
}

/* Reads the next reply on fd: its status, and one string field of its JSON.
 * A macro, so that a failure names the caller's line. */
#define EXPECT_RESP(fd_, status_, key_, value_)       \
    do {                                              \
        struct resp r_;                               \
        CHECK(read_resp((fd_), &r_) == 0);            \
        CHECK_INT(r_.status, (status_));              \
        CHECK_STR(th_str(r_.json, (key_)), (value_)); \
        resp_clear(&r_);                              \
    } while (0)

/* A connection for the single-threaded tests, with nothing read on it yet. */
static int fresh_conn(const struct th_server *s) {
    in1.n = 0;
    return th_tcp_open(s);
}

/*
 * How long a test waits for a close the server makes at once (at accept
 * past a cap, after "Connection: close") or an answer it gives at once: a
 * deadline, not a speed. A server held up on a loaded machine makes it
 * late, and 5 s was once too little. The servers these waits are on have
 * an idle timeout of an hour (IDLE_NEVER), so a close the wait sees is
 * never the idle timeout's: with the default 15 s, a server that did not
 * close would have been closed by it inside the wait, and passed.
 */
#define PROMPT_WAIT_MS 60000
#define IDLE_NEVER     "--idle-timeout-seconds", "3600"

/* Whether the server closes fd (EOF or reset) within ms. */
static bool closed_within(int fd, int ms) {
    struct pollfd p = {.fd = fd, .events = POLLIN};
    if (poll(&p, 1, ms) <= 0) return false;
    char c;
    return recv(fd, &c, 1, 0) <= 0;
}

/* Whether the server closes fd with a FIN within ms: end of stream, not a
 * reset (which drops the part of a reply the kernel had not sent yet). */
static bool closed_cleanly_within(int fd, int ms) {
    struct pollfd p = {.fd = fd, .events = POLLIN};
    if (poll(&p, 1, ms) <= 0) return false;
    char c;
    return recv(fd, &c, 1, 0) == 0;
}

static long long task_count(struct th_server *s) {
    struct th_resp *r = th_http(s, "GET", "/v1/tasks?limit=1000", NULL);
    if (r->status != 200 || !th_get(r->json, "tasks")) return -1;
    return (long long)json_array_size(th_get(r->json, "tasks"));
}

static void test_pipelined(void) {
    int fd = fresh_conn(&srv);
    CHECK(fd >= 0);
    /* Three submits and a read of a task that is not there, in one write. */
    char *a = req_text("POST", "/v1/tasks", "{\"type\":\"pipe\",\"name\":\"a\"}", NULL);
    char *b = req_text("POST", "/v1/tasks", "{\"type\":\"pipe\",\"name\":\"b\"}", NULL);
    char *c = req_text("POST", "/v1/tasks", "{\"type\":\"pipe\",\"name\":\"c\"}", NULL);
    char *d = req_text("GET", "/v1/tasks/00000000000000000000000000000000", NULL, NULL);
    char all[4096];
    snprintf(all, sizeof all, "%s%s%s%s", a, b, c, d);
    free(a);
    free(b);
    free(c);
    free(d);
    CHECK(send_all(fd, all, strlen(all)));
    struct resp r[4];
    const char *names[] = {"a", "b", "c"};
    char ids[3][40];
    for (int i = 0; i < 3; i++) {
        CHECK(read_resp(fd, &r[i]) == 0);
        CHECK_INT(r[i].status, 201);
        CHECK_STR(th_str(r[i].json, "name"), names[i]); /* in order */
        CHECK_STR(th_str(r[i].json, "phase"), "pending");
        CHECK(strstr(r[i].headers, "\r\nLocation: /v1/tasks/") != NULL);
        snprintf(ids[i], sizeof ids[i], "%s", th_str(r[i].json, "id"));
        resp_clear(&r[i]);
    }
    CHECK(read_resp(fd, &r[3]) == 0);
    CHECK_INT(r[3].status, 404);
    CHECK_STR(th_str(r[3].json, "error.code"), "not_found");
    resp_clear(&r[3]);
    /* Then each read back on the same connection. */
    for (int i = 0; i < 3; i++) {
        char path[80];
        snprintf(path, sizeof path, "/v1/tasks/%s", ids[i]);
        char *g = req_text("GET", path, NULL, NULL);
        CHECK(send_all(fd, g, strlen(g)));
        free(g);
        struct resp x;
        CHECK(read_resp(fd, &x) == 0);
        CHECK_INT(x.status, 200);
        CHECK_STR(th_str(x.json, "id"), ids[i]);
        resp_clear(&x);
    }
    close(fd);
}

/* 400 requests on one connection, 200 of them pipelined at once (more bytes
 * than the fast path leaves in a socket's queue before discarding them),
 * then one handed on: it must find its own bytes at the queue's head. */
static void test_long_connection(void) {
    int fd = fresh_conn(&srv);
    CHECK(fd >= 0);
    char *one = req_text("GET", "/v1/tasks/00000000000000000000000000000000", NULL, NULL);
    size_t n1 = strlen(one);
    char *many = malloc(n1 * 200 + 1);
    for (int i = 0; i < 200; i++)
        memcpy(many + (size_t)i * n1, one, n1);
    many[n1 * 200] = '\0';
    for (int round = 0; round < 2; round++) {
        CHECK(send_all(fd, many, n1 * 200));
        for (int i = 0; i < 200; i++) {
            struct resp r;
            CHECK(read_resp(fd, &r) == 0);
            CHECK_INT(r.status, 404);
            resp_clear(&r);
        }
    }
    free(many);
    free(one);
    char *a = req_text("POST", "/v1/tasks", "{\"type\":\"long\",\"name\":\"after 400\"}", NULL);
    const char list[] = "GET /v1/tasks?type=long HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
    char both[512];
    snprintf(both, sizeof both, "%s%s", a, list);
    free(a);
    CHECK(send_all(fd, both, strlen(both)));
    struct resp r;
    CHECK(read_resp(fd, &r) == 0);
    CHECK_INT(r.status, 201);
    resp_clear(&r);
    EXPECT_RESP(fd, 200, "tasks.0.name", "after 400");
    close(fd);
}

/* A fresh connection to s with the first n bytes of p sent on it within
 * half a second of its opening, well inside test_slow_body's 1 s idle
 * timeout: a test held up past that between the two (the connection then
 * maybe closed as idle before its request came) opens another. -1 when
 * five tries could not. */
static int open_sending(const struct th_server *s, const char *p, size_t n) {
    for (int i = 0; i < 5; i++) {
        long long t0 = th_now_ms();
        int fd = fresh_conn(s);
        if (fd < 0) return -1;
        if (send_all(fd, p, n) && th_now_ms() - t0 < 500) return fd;
        printf("    %lld ms from the opening to the send: opened again\n", th_now_ms() - t0);
        close(fd);
    }
    return -1;
}

/* A body slower than --idle-timeout-seconds: the request is under way, so
 * it has the long timeout, as libmicrohttpd gives it; an idle connection
 * is still closed. */
static void test_slow_body(void) {
    struct th_server s2;
    CHECK(th_server_start(&s2, "--idle-timeout-seconds", "1", NULL) == 0);
    int idle = th_tcp_open(&s2);
    /* Idle after a request served: its close is a FIN too, with the
     * request's bytes (held with SO_PEEK_OFF) taken off first. */
    char *g = req_text("GET", "/v1/tasks/00000000000000000000000000000000", NULL, NULL);
    int served = open_sending(&s2, g, strlen(g));
    free(g);
    CHECK(served >= 0);
    struct resp gr;
    struct conn_in *gin = calloc(1, sizeof *gin);
    CHECK(read_resp_in(served, gin, &gr) == 0);
    CHECK_INT(gr.status, 404);
    resp_clear(&gr);
    free(gin);
    char *q = req_text("POST", "/v1/tasks", "{\"type\":\"slow\",\"name\":\"slow body\"}", NULL);
    size_t head = (size_t)(strstr(q, "\r\n\r\n") - q) + 4;
    int fd = open_sending(&s2, q, head + 5);
    CHECK(fd >= 0 && idle >= 0);
    th_sleep_ms(2500); /* past the idle timeout, twice */
    CHECK(send_all(fd, q + head + 5, strlen(q) - head - 5));
    free(q);
    EXPECT_RESP(fd, 201, "name", "slow body");
    /* Closed by the idle timeout, most likely in the 2.5 s above; within
     * 20 s, a deadline: the server's timer runs late on a loaded machine. */
    CHECK(closed_within(idle, 20000));
    CHECK(closed_cleanly_within(served, 20000));
    close(fd);
    close(idle);
    close(served);
    th_server_free(&s2);
}

static void test_split(void) {
    int fd = fresh_conn(&srv);
    CHECK(fd >= 0);
    char *q = req_text("POST", "/v1/tasks", "{\"type\":\"split\",\"name\":\"late body\"}", NULL);
    size_t n = strlen(q), head = (size_t)(strstr(q, "\r\n\r\n") - q) + 4;
    /* The request line, the rest of the head, then the body in two parts:
     * each its own segment (the pauses are the point of the test). */
    size_t cuts[] = {10, head, head + 5, n};
    size_t at = 0;
    for (int i = 0; i < 4; i++) {
        CHECK(send_all(fd, q + at, cuts[i] - at));
        at = cuts[i];
        if (i < 3) th_sleep_ms(60);
    }
    free(q);
    EXPECT_RESP(fd, 201, "name", "late body");
    close(fd);
}

static void test_hand_on(void) {
    int fd = fresh_conn(&srv);
    CHECK(fd >= 0);
    struct resp r;
    /* A submit (fast path), a list with a query (libmicrohttpd's), then a
     * chunked submit and a plain one, all on one connection, in order. */
    char *a = req_text("POST", "/v1/tasks", "{\"type\":\"handon\",\"name\":\"first\"}", NULL);
    CHECK(send_all(fd, a, strlen(a)));
    free(a);
    CHECK(read_resp(fd, &r) == 0);
    CHECK_INT(r.status, 201);
    resp_clear(&r);
    const char list[] = "GET /v1/tasks?type=handon&limit=5 HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
    CHECK(send_all(fd, list, sizeof list - 1));
    EXPECT_RESP(fd, 200, "tasks.0.name", "first");
    const char body[] = "{\"type\":\"handon\",\"name\":\"chunked\"}";
    char chunked[512];
    snprintf(chunked, sizeof chunked,
             "POST /v1/tasks HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
             "Transfer-Encoding: chunked\r\n\r\n%zx\r\n%s\r\n0\r\n\r\n",
             sizeof body - 1, body);
    CHECK(send_all(fd, chunked, strlen(chunked)));
    EXPECT_RESP(fd, 201, "name", "chunked");
    /* And a request the fast path would serve, now libmicrohttpd's. */
    char *b = req_text("POST", "/v1/tasks", "{\"type\":\"handon\",\"name\":\"last\"}", NULL);
    CHECK(send_all(fd, b, strlen(b)));
    free(b);
    EXPECT_RESP(fd, 201, "name", "last");
    close(fd);
    struct th_resp *l = th_http(&srv, "GET", "/v1/tasks?type=handon&limit=5", NULL);
    CHECK_INT(l->status, 200);
    CHECK_INT(json_array_size(th_get(l->json, "tasks")), 3);
    /* HTTP/1.0 is libmicrohttpd's too. */
    fd = fresh_conn(&srv);
    CHECK(fd >= 0);
    const char old[] = "GET /v1/tasks/00000000000000000000000000000000 HTTP/1.0\r\n\r\n";
    CHECK(send_all(fd, old, sizeof old - 1));
    char buf[512];
    ssize_t k = recv(fd, buf, sizeof buf - 1, 0);
    CHECK(k > 0);
    buf[k > 0 ? k : 0] = '\0';
    CHECK(strncmp(buf, "HTTP/1.", 7) == 0 && strstr(buf, " 404 ") != NULL);
    close(fd);
}

static void test_bad_input(void) {
    long long before = task_count(&srv);
    CHECK(before >= 0);
    int fd = fresh_conn(&srv);
    CHECK(fd >= 0);
    struct resp r;
    /* Each answered in v1's shape, naming the field; the connection goes on. */
    struct {
        const char *body, *extra;
        int status;
        const char *code, *field;
    } cases[] = {
        {"{\"type\":", NULL, 400, "malformed_json", NULL},
        {"{\"type\":\"x\",\"nope\":1}", NULL, 400, "invalid_argument", "nope"},
        {"{\"type\":\"x\",\"priority\":\"high\"}", NULL, 400, "invalid_argument", "priority"},
        {"{\"type\":\"x\"}", "Content-Type: text/csv", 415, "unsupported_media_type",
         "Content-Type"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *q = req_text("POST", "/v1/tasks", cases[i].body, cases[i].extra);
        if (cases[i].extra) { /* the second Content-Type comes first: the server reads it */
            char *ct = strstr(q, "Content-Type: application/json\r\n");
            memmove(ct, ct + 32, strlen(ct + 32) + 1);
        }
        CHECK(send_all(fd, q, strlen(q)));
        free(q);
        CHECK(read_resp(fd, &r) == 0);
        CHECK_INT(r.status, cases[i].status);
        CHECK_STR(th_str(r.json, "error.code"), cases[i].code);
        if (cases[i].field) CHECK_STR(th_str(r.json, "error.field"), cases[i].field);
        resp_clear(&r);
    }
    /* A heartbeat with a wrong lease on a task that is not running. */
    char *id = th_submit(&srv, "bad", NULL);
    char path[96];
    snprintf(path, sizeof path, "/v1/tasks/%s/heartbeat", id);
    char *h = req_text("POST", path, "{\"lease_token\":\"0123\",\"progress\":{\"ratio\":2}}", NULL);
    CHECK(send_all(fd, h, strlen(h)));
    free(h);
    CHECK(read_resp(fd, &r) == 0);
    CHECK(r.status == 400 || r.status == 409);
    CHECK(th_str(r.json, "error.code") != NULL);
    resp_clear(&r);
    free(id);
    close(fd);
    /* Nothing stored but the one submitted on purpose. */
    CHECK_INT(task_count(&srv), before + 1);
}

static void test_connection_close(void) {
    int fd = fresh_conn(&srv);
    CHECK(fd >= 0);
    char *q = req_text("POST", "/v1/tasks", "{\"type\":\"closing\"}", "Connection: close");
    CHECK(send_all(fd, q, strlen(q)));
    free(q);
    struct resp r;
    CHECK(read_resp(fd, &r) == 0);
    CHECK_INT(r.status, 201);
    CHECK(strcasestr(r.headers, "\r\nConnection: close\r\n") != NULL);
    resp_clear(&r);
    CHECK(closed_cleanly_within(fd, PROMPT_WAIT_MS));
    close(fd);
}

/* A reply larger than the client's receive buffer, then "Connection:
 * close": the server has queued the reply's end in its socket when it
 * closes, and the client, reading late, gets all of it and then the end of
 * the stream. (Bytes left unread in the server's socket at close, such as
 * the request itself where SO_PEEK_OFF keeps served requests there, made
 * the kernel reset the connection and drop that end.) */
static void test_close_after_long_reply(void) {
    size_t big = 600 * 1000;
    char *body = malloc(big + 64);
    int n = snprintf(body, big + 64, "{\"type\":\"long reply\",\"params\":{\"p\":\"");
    memset(body + n, 'x', big);
    strcpy(body + n + big, "\"}}");
    struct th_resp *t = th_http(&srv, "POST", "/v1/tasks", "%s", body);
    free(body);
    CHECK_INT(t->status, 201);
    char id[33];
    snprintf(id, sizeof id, "%s", th_str(t->json, "id"));

    int port = atoi(strrchr(srv.url, ':') + 1);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    int small = 4096;
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof small); /* before connect */
    struct sockaddr_in dst = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    inet_pton(AF_INET, "127.0.0.1", &dst.sin_addr);
    CHECK(fd >= 0 && connect(fd, (struct sockaddr *)&dst, sizeof dst) == 0);
    char path[64];
    snprintf(path, sizeof path, "/v1/tasks/%s", id);
    char *q = req_text("GET", path, NULL, "Connection: close");
    CHECK(send_all(fd, q, strlen(q)));
    free(q);
    th_sleep_ms(500); /* the server sends what it can, queues the rest and closes */
    size_t cap = big + 65536, got = 0;
    char *in = malloc(cap);
    ssize_t k = 0;
    long long deadline = th_now_ms() + 10000;
    while (got < cap && th_now_ms() < deadline) {
        struct pollfd pf = {.fd = fd, .events = POLLIN};
        if (poll(&pf, 1, 1000) <= 0) continue;
        k = recv(fd, in + got, cap - got, 0);
        if (k <= 0) break;
        got += (size_t)k;
    }
    if (k != 0)
        th_fail(__FILE__, __LINE__, "the stream ended with %zd (%s) after %zu bytes, not a FIN", k,
                k < 0 ? strerror(errno) : "no end", got);
    char *end = memmem(in, got, "\r\n\r\n", 4);
    CHECK(end != NULL);
    if (end) {
        size_t head = (size_t)(end - in) + 4;
        char *cl = strcasestr(in, "\r\nContent-Length:");
        CHECK(cl != NULL && cl < end);
        size_t want = cl ? strtoul(cl + 17, NULL, 10) : 0;
        CHECK(want > big);
        if (got - head != want)
            th_fail(__FILE__, __LINE__, "%zu bytes of a %zu-byte body", got - head, want);
        CHECK(strncmp(in, "HTTP/1.1 200", 12) == 0);
    }
    free(in);
    close(fd);
}

/* A request that is not all there waits unread in the socket: one larger
 * than 32 KiB, or one that has come in more than eight pieces, goes to
 * libmicrohttpd, which then serves the connection. Both after requests the
 * fast path served on the same connection (held in the socket's queue with
 * SO_PEEK_OFF, taken off before the wait). */
static void test_partial_requests(void) {
    int fd = fresh_conn(&srv);
    CHECK(fd >= 0);
    for (int i = 0; i < 40; i++) {
        char *q = req_text("GET", "/v1/tasks/00000000000000000000000000000000", NULL, NULL);
        CHECK(send_all(fd, q, strlen(q)));
        free(q);
        struct resp r;
        CHECK(read_resp(fd, &r) == 0);
        CHECK_INT(r.status, 404);
        resp_clear(&r);
    }
    /* 40 KB of body, in three parts. */
    size_t big = 40 * 1000;
    char *body = malloc(big + 64);
    int n = snprintf(body, big + 64, "{\"type\":\"partial\",\"name\":\"big\",\"params\":{\"p\":\"");
    memset(body + n, 'y', big);
    strcpy(body + n + big, "\"}}");
    char *q = req_text("POST", "/v1/tasks", body, NULL);
    free(body);
    size_t len = strlen(q), head = (size_t)(strstr(q, "\r\n\r\n") - q) + 4;
    size_t cuts[] = {head + 100, head + 20000, len};
    size_t at = 0;
    for (int i = 0; i < 3; i++) {
        CHECK(send_all(fd, q + at, cuts[i] - at));
        at = cuts[i];
        if (i < 2) th_sleep_ms(60);
    }
    free(q);
    EXPECT_RESP(fd, 201, "name", "big");
    /* The connection goes on (libmicrohttpd's now). */
    char *a = req_text("POST", "/v1/tasks", "{\"type\":\"partial\",\"name\":\"after big\"}", NULL);
    CHECK(send_all(fd, a, strlen(a)));
    free(a);
    EXPECT_RESP(fd, 201, "name", "after big");
    close(fd);

    /* A small request in twelve pieces, on a fresh connection after one served. */
    fd = fresh_conn(&srv);
    CHECK(fd >= 0);
    char *first = req_text("POST", "/v1/tasks", "{\"type\":\"partial\",\"name\":\"first\"}", NULL);
    CHECK(send_all(fd, first, strlen(first)));
    free(first);
    EXPECT_RESP(fd, 201, "name", "first");
    char *slow =
        req_text("POST", "/v1/tasks", "{\"type\":\"partial\",\"name\":\"in pieces\"}", NULL);
    len = strlen(slow);
    for (int i = 0; i < 12; i++) {
        size_t from = len * (size_t)i / 12, to = len * (size_t)(i + 1) / 12;
        CHECK(send_all(fd, slow + from, to - from));
        if (i < 11) th_sleep_ms(30);
    }
    free(slow);
    EXPECT_RESP(fd, 201, "name", "in pieces");
    close(fd);
    struct th_resp *l = th_http(&srv, "GET", "/v1/tasks?type=partial&limit=10", NULL);
    CHECK_INT(l->status, 200);
    CHECK_INT(json_array_size(th_get(l->json, "tasks")), 4);
}

/* --max-connections counts the connections of both paths together: ones
 * handed on to libmicrohttpd stay counted. */
static void test_connection_cap_both_paths(void) {
    struct th_server s2;
    CHECK(th_server_start(&s2, "--max-connections", "4", "--max-connections-per-address", "0",
                          IDLE_NEVER, NULL) == 0);
    int fds[5];
    const char list[] = "GET /v1/tasks?limit=1 HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
    for (int i = 0; i < 4; i++) {
        fds[i] = th_tcp_open(&s2);
        CHECK(fds[i] >= 0);
        in1.n = 0;
        if (i < 2) { /* handed on: a list is libmicrohttpd's */
            CHECK(send_all(fds[i], list, sizeof list - 1));
            struct resp r;
            CHECK(read_resp(fds[i], &r) == 0);
            CHECK_INT(r.status, 200);
            resp_clear(&r);
        } else {
            char *q = req_text("GET", "/v1/tasks/00000000000000000000000000000000", NULL, NULL);
            CHECK(send_all(fds[i], q, strlen(q)));
            free(q);
            struct resp r;
            CHECK(read_resp(fds[i], &r) == 0);
            CHECK_INT(r.status, 404);
            resp_clear(&r);
        }
    }
    /* A fifth is closed at accept. */
    fds[4] = th_tcp_open(&s2);
    CHECK(fds[4] >= 0);
    CHECK(closed_within(fds[4], PROMPT_WAIT_MS));
    close(fds[4]);
    /* One handed-on connection closes: there is room again, once the
     * server has seen it go (a connection refused meanwhile is closed at
     * once; the next try comes 100 ms later, for up to 10 s). */
    close(fds[0]);
    char *q = req_text("POST", "/v1/tasks", "{\"type\":\"cap\",\"name\":\"room\"}", NULL);
    struct resp r;
    bool answered = false;
    for (int tries = 0; tries < 100 && !answered; tries++) {
        if (tries) th_sleep_ms(100);
        fds[0] = th_tcp_open(&s2);
        in1.n = 0;
        answered = fds[0] >= 0 && send_all(fds[0], q, strlen(q)) && read_resp(fds[0], &r) == 0;
        if (!answered && fds[0] >= 0) close(fds[0]);
    }
    free(q);
    CHECK(answered);
    if (answered) {
        CHECK_INT(r.status, 201);
        CHECK_STR(th_str(r.json, "name"), "room");
        resp_clear(&r);
    }
    for (int i = answered ? 0 : 1; i < 4; i++)
        close(fds[i]);
    th_server_free(&s2);
}

/* Whether a new connection to s gets `status` for `text`, trying for up
 * to 10 s while the server sees earlier ones go (one over a cap is closed
 * at accept); the connection is left open in *fd_out, or closed when NULL. */
static bool served_within(const struct th_server *s, const char *text, int status, int *fd_out) {
    bool ok = false;
    for (int tries = 0; tries < 100 && !ok; tries++) {
        if (tries) th_sleep_ms(100);
        int fd = th_tcp_open(s);
        struct resp r;
        in1.n = 0;
        ok = fd >= 0 && send_all(fd, text, strlen(text)) && read_resp(fd, &r) == 0 &&
             r.status == status;
        if (ok) resp_clear(&r);
        if (ok && fd_out)
            *fd_out = fd;
        else if (fd >= 0)
            close(fd);
    }
    return ok;
}

/* A connection handed to libmicrohttpd stays counted, against
 * --max-connections and its address's cap, until libmicrohttpd starts it
 * (it did not between the two counts, so another accept could take its
 * place: more than the limit open, which no test can force, the window
 * being libmicrohttpd's thread's next turn). Here: the counts come back
 * whole after many hand-ons, so a place is neither lost nor gained. */
static void test_hand_on_counts_come_back(void) {
    struct th_server s2;
    CHECK(th_server_start(&s2, "--max-connections", "3", "--max-connections-per-address", "2",
                          IDLE_NEVER, NULL) == 0);
    const char list[] = "GET /v1/tasks?limit=1 HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
    for (int i = 0; i < 20; i++)
        CHECK(served_within(&s2, list, 200, NULL));
    /* Two places for this address once the server has seen all go, and
     * not a third. */
    char *q = req_text("GET", "/v1/tasks/00000000000000000000000000000000", NULL, NULL);
    int a = -1, b = -1;
    bool two = served_within(&s2, q, 404, &a) && served_within(&s2, q, 404, &b);
    free(q);
    CHECK(two);
    int c = th_tcp_open(&s2);
    CHECK(c >= 0);
    CHECK(closed_within(c, PROMPT_WAIT_MS));
    close(c);
    close(a);
    close(b);
    th_server_free(&s2);
}

static void test_gone_while_waiting(void) {
    /* A claim that waits, its client gone before the answer. The client
     * goes once the claim is parked: a claim the server had not read yet
     * when the task below came (a loaded machine, after a fixed sleep)
     * would take it, and the claim after would find nothing. */
    WAIT_UNTIL(th_metric(&srv, "taskmill_parked_claims") == 0, 20000, "no claim parked");
    int fd = th_tcp_open(&srv);
    CHECK(fd >= 0);
    char *q =
        req_text("POST", "/v1/queues/gone/claim", "{\"worker\":\"w\",\"wait_seconds\":30}", NULL);
    CHECK(send_all(fd, q, strlen(q)));
    free(q);
    WAIT_UNTIL(th_metric(&srv, "taskmill_parked_claims") == 1, 20000, "the claim parked");
    close(fd);
    /* Its wait ends (the server sees the client gone, long before the 30
     * s: a deadline) and the server goes on serving. */
    WAIT_UNTIL(th_metric(&srv, "taskmill_parked_claims") == 0, 20000, "the gone claim's end");
    struct th_resp *r =
        th_http(&srv, "POST", "/v1/tasks", "{\"type\":\"after\",\"queue\":\"gone\"}");
    CHECK_INT(r->status, 201);
    char id[33], token[33];
    CHECK_INT(th_claim(&srv, "gone", NULL, id, token), 200);
}

/* One client of test_concurrent: rounds of pipelined requests on fresh
 * connections, each with a hand-on; every third round sends one submit and
 * hangs up before its answer. A complete request is stored all the same
 * (requests pipelined behind it may not be: the reply meets a closed
 * socket, and the connection is reset). */
struct client_arg {
    int k, created, failures;
    char detail[160];
};

#define CONC_CLIENTS 8
#define CONC_ROUNDS  25

static void *conc_client(void *p) {
    struct client_arg *a = p;
    struct conn_in *in = malloc(sizeof *in);
    for (int round = 0; round < CONC_ROUNDS && !a->failures; round++) {
        int fd = th_tcp_open(&srv);
        if (fd < 0) {
            a->failures++;
            snprintf(a->detail, sizeof a->detail, "cannot connect");
            break;
        }
        in->n = 0;
        char body[128], queue[32];
        snprintf(queue, sizeof queue, "conc%d", a->k);
        snprintf(body, sizeof body, "{\"type\":\"conc\",\"queue\":\"%s\"}", queue);
        char *s1 = req_text("POST", "/v1/tasks", body, NULL);
        char *s2 = req_text("GET", "/v1/tasks/00000000000000000000000000000000", NULL, NULL);
        char cpath[64];
        snprintf(cpath, sizeof cpath, "/v1/queues/%s/claim", queue);
        char *s3 = req_text("POST", cpath, "{\"worker\":\"w\"}", NULL);
        const char s4[] = "GET /v1/tasks?limit=1 HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
        char *s5 = req_text("POST", "/v1/tasks", body, NULL);
        char all[2048];
        snprintf(all, sizeof all, "%s%s%s%s%s", s1, s2, s3, s4, s5);
        bool hang_up = round % 3 == 2;
        size_t len = hang_up ? strlen(s1) : strlen(all); /* hanging up: the submit alone */
        free(s1);
        free(s2);
        free(s3);
        free(s5);
        if (!send_all(fd, all, len)) {
            a->failures++;
            snprintf(a->detail, sizeof a->detail, "send failed");
        }
        if (hang_up) {
            a->created += 1;
            close(fd); /* gone without reading: the server goes on */
            continue;
        }
        a->created += 2;
        const int want[] = {201, 404, 200, 200, 201};
        for (int i = 0; i < 5 && !a->failures; i++) {
            struct resp r;
            if (read_resp_in(fd, in, &r) != 0 || r.status != want[i]) {
                a->failures++;
                snprintf(a->detail, sizeof a->detail, "round %d reply %d: status %d, want %d",
                         round, i, r.status, want[i]);
            }
            resp_clear(&r);
        }
        close(fd);
    }
    free(in);
    return NULL;
}

static void test_concurrent(void) {
    long long before = task_count(&srv);
    pthread_t t[CONC_CLIENTS];
    struct client_arg a[CONC_CLIENTS];
    for (int i = 0; i < CONC_CLIENTS; i++) {
        a[i] = (struct client_arg){.k = i};
        pthread_create(&t[i], NULL, conc_client, &a[i]);
    }
    int created = 0;
    for (int i = 0; i < CONC_CLIENTS; i++) {
        pthread_join(t[i], NULL);
        if (a[i].failures) th_fail(__FILE__, __LINE__, "client %d: %s", i, a[i].detail);
        created += a[i].created;
    }
    /* Every submit stored once, also those whose client hung up. */
    WAIT_UNTIL(task_count(&srv) == before + created, 10000, "%d tasks to be stored", created);
}

/* Kernels before 6.10 have no SO_PEEK_OFF on TCP: the fast path then takes
 * each request off the socket as it starts. The same tests, that way. */
static void test_without_peek_offset(void) {
    setenv("TASKMILL_HTTP_NO_PEEK_OFF", "1", 1);
    struct th_server s2;
    int rc = th_server_start(&s2, NULL);
    unsetenv("TASKMILL_HTTP_NO_PEEK_OFF");
    CHECK(rc == 0);
    struct th_server saved = srv;
    srv = s2;
    test_pipelined();
    if (!th_failed()) test_split();
    if (!th_failed()) test_long_connection();
    if (!th_failed()) test_hand_on();
    if (!th_failed()) test_connection_close();
    if (!th_failed()) test_close_after_long_reply();
    if (!th_failed()) test_partial_requests();
    if (!th_failed()) test_concurrent();
    s2 = srv;
    srv = saved;
    th_server_free(&s2);
}

/* The status and error code of the one reply to `text` on a fresh
 * connection, "closed" when it closed without one. */
static void answer_of(const char *text, char *out, size_t cap) {
    int fd = th_tcp_open(&srv);
    struct conn_in *in = calloc(1, sizeof *in);
    struct resp r;
    if (fd >= 0 && send_all(fd, text, strlen(text)) && read_resp_in(fd, in, &r) == 0) {
        snprintf(out, cap, "%d %s", r.status,
                 th_str(r.json, "error.code") ? th_str(r.json, "error.code") : "");
        resp_clear(&r);
    } else {
        snprintf(out, cap, "closed");
    }
    free(in);
    if (fd >= 0) close(fd);
}

/* Whether `fast` (a request the fast path could take) and `mhd` (the same
 * with a query, which the fast path never takes: libmicrohttpd's) get the
 * same answer; a failure names the caller's line. */
static void same_answer(int line, const char *fast, const char *mhd) {
    char a[64], b[64];
    answer_of(fast, a, sizeof a);
    answer_of(mhd, b, sizeof b);
    if (strcmp(a, b) != 0)
        th_fail(__FILE__, line, "'%s' on the fast path, '%s' on libmicrohttpd's, for %.120s", a, b,
                fast);
}

/* Requests the fast path could take, each answered as libmicrohttpd
 * answers it: the same request with "?x=1" is libmicrohttpd's. */
static void test_same_as_mhd(void) {
    static const char zero[] = "/v1/tasks/00000000000000000000000000000000";
    static const char *const rests[] = {
        /* libmicrohttpd keeps a value's trailing white space (the fast
         * path dropped it): the server answers only for "127.0.0.1". */
        "Host: 127.0.0.1 \r\n\r\n",
        "Host: 127.0.0.1\t\r\n\r\n",
        /* Leading white space goes on both. */
        "Host:\t 127.0.0.1\r\n\r\n",
    };
    for (size_t i = 0; i < sizeof rests / sizeof rests[0]; i++) {
        char fast[1024], mhd[1024];
        snprintf(fast, sizeof fast, "GET %s HTTP/1.1\r\n%s", zero, rests[i]);
        snprintf(mhd, sizeof mhd, "GET %s?x=1 HTTP/1.1\r\n%s", zero, rests[i]);
        same_answer(__LINE__, fast, mhd);
    }
}

/* A head with a line libmicrohttpd refuses, and no blank line yet:
 * libmicrohttpd answers 400 when the line comes (--no-fast-path shows
 * it). The fast path waited for the rest of the head before handing it on,
 * a request with a query too, so a client that sent no more got no answer
 * (the idle timeout closed it). Each is answered here before the
 * connection could be closed as idle (IDLE_NEVER on both servers). */
static void test_bad_line_answered_at_once(void) {
    static const char zero[] = "/v1/tasks/00000000000000000000000000000000";
    static const char *const rests[] = {
        "Host: 127.0.0.1\r\nno colon\r\n",
        "Host: 127.0.0.1\r\nX-A: 1\r\n-\r\n",
    };
    struct th_server mhd;
    CHECK(th_server_start(&mhd, "--no-fast-path", IDLE_NEVER, NULL) == 0);
    struct th_server *servers[] = {&srv, &mhd};
    for (int s = 0; s < 2; s++) {
        for (size_t i = 0; i < sizeof rests / sizeof rests[0]; i++) {
            for (int q = 0; q < 2; q++) {
                char text[512];
                snprintf(text, sizeof text, "GET %s%s HTTP/1.1\r\n%s", zero, q ? "?x=1" : "",
                         rests[i]);
                int fd = th_tcp_open(servers[s]);
                CHECK(fd >= 0);
                CHECK(send_all(fd, text, strlen(text)));
                struct pollfd pf = {.fd = fd, .events = POLLIN};
                char buf[512];
                ssize_t k =
                    poll(&pf, 1, PROMPT_WAIT_MS) == 1 ? recv(fd, buf, sizeof buf - 1, 0) : -1;
                buf[k > 0 ? k : 0] = '\0';
                if (strncmp(buf, "HTTP/1.1 400 ", 13) != 0)
                    th_fail(__FILE__, __LINE__, "%s, head %zu%s: '%.40s', not 400 at once",
                            s ? "--no-fast-path" : "fast path on", i, q ? " with a query" : "",
                            buf);
                close(fd);
            }
        }
    }
    th_server_free(&mhd);
}

/* Replies to `text` (two requests) on a fresh connection: 2, or 1 when
 * the server closed after the first, 0 when none came. */
static int replies_to_two(const char *text) {
    int fd = th_tcp_open(&srv), n = 0;
    struct conn_in *in = calloc(1, sizeof *in);
    struct resp r;
    if (fd >= 0 && send_all(fd, text, strlen(text)))
        while (n < 2 && read_resp_in(fd, in, &r) == 0) {
            resp_clear(&r);
            n++;
        }
    free(in);
    if (fd >= 0) close(fd);
    return n;
}

/* White space at the end of a value is not the value's (RFC 9112 5).
 * The fast path hands such a request on, and libmicrohttpd kept the space:
 * an Idempotency-Key "k " named another task than "k". */
static void test_trailing_space_not_the_value(void) {
    static const char body[] = "{\"type\":\"x\"}";
    const char *const spaced[] = {"Content-Type: application/json", "Idempotency-Key: trail-1 \t ",
                                  NULL};
    const char *const plain[] = {"Content-Type: application/json", "Idempotency-Key: trail-1",
                                 NULL};
    struct th_resp *r = th_http_raw(&srv, "POST", "/v1/tasks", body, sizeof body - 1, spaced);
    CHECK_INT(r->status, 201);
    char *first = strdup(th_str(r->json, "id") ? th_str(r->json, "id") : "");
    r = th_http_raw(&srv, "POST", "/v1/tasks", body, sizeof body - 1, plain);
    CHECK(r->status == 200 || r->status == 201);
    CHECK_STR(th_str(r->json, "id"), first);
    free(first);
}

/* White space between a field name and its colon ("Content-Length : N"):
 * libmicrohttpd kept it as a field of another name and framed the request
 * as bodiless, so its body was read as a second request: a submit smuggled
 * past anything that frames by that header. RFC 9112 5.1: a 400, and the
 * connection closed with nothing of the body served. */
static void test_space_before_colon_refused(void) {
    static const char inner[] =
        "POST /v1/tasks HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        "Content-Type: application/json\r\nContent-Length: 12\r\n\r\n"
        "{\"type\":\"x\"}";
    static const char *const names[] = {"Content-Length :", "Content-Length\t:", "X-A b:"};
    long long before = task_count(&srv);
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        char text[1024], more[64] = "";
        /* A name with a space inside, beside a Content-Length of its own. */
        if (strncmp(names[i], "Content", 7) != 0)
            snprintf(more, sizeof more, "Content-Length: %zu\r\n", sizeof inner - 1);
        snprintf(text, sizeof text,
                 "POST /v1/tasks HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                 "Content-Type: application/json\r\n%s %zu\r\n%s\r\n%s",
                 names[i], sizeof inner - 1, more, inner);
        int fd = fresh_conn(&srv);
        struct resp r;
        CHECK(fd >= 0 && send_all(fd, text, strlen(text)));
        CHECK_INT(read_resp(fd, &r), 0);
        CHECK_INT(r.status, 400);
        CHECK(r.body && strstr(r.body, "is not a token"));
        /* The field is the name as sent, white space and all. */
        CHECK(r.json &&
              strncmp(th_str(r.json, "error.field"), names[i], strlen(names[i]) - 1) == 0);
        resp_clear(&r);
        CHECK(closed_within(fd, 20000)); /* the body is not read as a request */
        close(fd);
        CHECK_INT(replies_to_two(text), 1);
    }
    CHECK_INT(task_count(&srv), before);
}

/* "Connection: close" is an element of a comma-separated list. The fast
 * path also split the value at spaces and tabs, so "a close" or
 * "keep-alive close" closed the connection there, and not on
 * libmicrohttpd's path (the same request with a query). */
static void test_connection_close_as_mhd(void) {
    static const char zero[] = "/v1/tasks/00000000000000000000000000000000";
    static const char *const values[] = {
        "close",   "Close",   "x, close", "close ,x", ",close",           "close,",     "closex",
        "close;x", "a close", "close a",  "x\tclose", "keep-alive close", "x, close y", "\tclose",
    };
    for (size_t i = 0; i < sizeof values / sizeof values[0]; i++) {
        int n[2];
        for (int q = 0; q < 2; q++) {
            char text[512];
            snprintf(text, sizeof text,
                     "GET %s%s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: %s\r\n\r\n"
                     "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
                     zero, q ? "?x=1" : "", values[i], zero);
            n[q] = replies_to_two(text);
        }
        if (n[0] != n[1] || n[0] == 0)
            th_fail(__FILE__, __LINE__,
                    "'Connection: %s': %d replies on the fast path, %d on libmicrohttpd's",
                    values[i], n[0], n[1]);
    }
}

/* A head about --max-header-bytes long (16 KiB here), written with or
 * without a space after each colon. libmicrohttpd's side counts a field
 * as "Name: value\r\n" (http_framing_refused) and the request line, not
 * the blank line: the fast path took heads that count more than the
 * limit there, and answered what libmicrohttpd refuses with 431. */
static void test_head_limit_same_as_mhd(void) {
    static const char zero[] = "/v1/tasks/00000000000000000000000000000000";
    const size_t max = 16 * 1024;
    for (int spaced = 0; spaced < 2; spaced++) {
        for (size_t total = max - 40; total <= max + 4; total++) {
            char *text[2];
            for (int q = 0; q < 2; q++) { /* the fast path's, then libmicrohttpd's */
                char *t = text[q] = malloc(max + 64);
                /* "?x=1" is counted there as its argument, "x=1&". */
                size_t n = (size_t)snprintf(t, max + 64, "GET %s%s HTTP/1.1\r\nHost: 127.0.0.1\r\n",
                                            zero, q ? "?x=1" : "");
                for (int f = 0; f < 30; f++)
                    n +=
                        (size_t)snprintf(t + n, max + 64 - n, "X-%d:%s1\r\n", f, spaced ? " " : "");
                n += (size_t)snprintf(t + n, max + 64 - n, "X-Pad:%s", spaced ? " " : "");
                memset(t + n, 'p', total - 4 - n);
                memcpy(t + total - 4, "\r\n\r\n", 5);
            }
            same_answer(__LINE__, text[0], text[1]);
            free(text[0]);
            free(text[1]);
            if (th_failed()) return;
        }
    }
}

/* Sends `fmt` (a request with "%s" where "?x=1" may go) on a fresh
 * connection, once as is (the fast path's, if it takes it) and once with
 * the query (libmicrohttpd's): each must be 400 invalid_argument naming
 * `field`, with nothing stored. A failure names the caller's line. */
static void refused_both(int line, const char *fmt, size_t fmt_len, const char *field) {
    long long before = task_count(&srv);
    for (int q = 0; q < 2; q++) {
        /* fmt may hold NUL bytes: "%s" is found with memmem, not printf. */
        const char *at = memmem(fmt, fmt_len, "%s", 2);
        const char *query = q ? "?x=1" : "";
        size_t head = at ? (size_t)(at - fmt) : fmt_len, ql = strlen(query);
        size_t rest = at ? fmt_len - head - 2 : 0, n = head + ql + rest;
        char *text = malloc(n);
        memcpy(text, fmt, head);
        memcpy(text + head, query, ql);
        if (at) memcpy(text + head + ql, at + 2, rest);
        int fd = th_tcp_open(&srv);
        struct conn_in *in = calloc(1, sizeof *in);
        struct resp r;
        memset(&r, 0, sizeof r);
        bool got = fd >= 0 && send_all(fd, text, n) && read_resp_in(fd, in, &r) == 0;
        const char *code = got ? th_str(r.json, "error.code") : NULL;
        const char *f = got ? th_str(r.json, "error.field") : NULL;
        if (!got || r.status != 400 || !code || strcmp(code, "invalid_argument") != 0 || !f ||
            strcmp(f, field) != 0)
            th_fail(__FILE__, line, "%s: %d %s field '%s', want 400 naming '%s': %.200s",
                    q ? "with a query" : "as is", got ? r.status : 0, code ? code : "-",
                    f ? f : "-", field, got && r.body ? r.body : "(no reply)");
        resp_clear(&r);
        free(in);
        free(text);
        if (fd >= 0) close(fd);
    }
    if (task_count(&srv) != before) th_fail(__FILE__, line, "a refused request stored a task");
}
#define REFUSED_BOTH(lit, field) refused_both(__LINE__, lit, sizeof lit - 1, field)

/* RFC 9112 3.2: an HTTP/1.1 request without Host is a 400 (libmicrohttpd
 * served it, and the fast path handed it on); HTTP/1.0 needs none. */
static void test_host_required(void) {
    REFUSED_BOTH("GET /v1/tasks/00000000000000000000000000000000%s HTTP/1.1\r\n\r\n", "Host");
    REFUSED_BOTH(
        "POST /v1/tasks%s HTTP/1.1\r\nContent-Type: application/json\r\n"
        "Content-Length: 12\r\n\r\n{\"type\":\"x\"}",
        "Host");
    /* HTTP/1.2 to 1.9 are 1.1 to libmicrohttpd. */
    REFUSED_BOTH("GET /v1/tasks/00000000000000000000000000000000%s HTTP/1.2\r\n\r\n", "Host");
    char a[64];
    answer_of("GET /v1/tasks/00000000000000000000000000000000 HTTP/1.0\r\n\r\n", a, sizeof a);
    CHECK_STR(a, "404 not_found");
}

/* RFC 9112 3.2: two Host fields are a 400. The first was taken, on
 * either path: the server answered for one name and a proxy before it
 * may have routed by the other. Open mode's DNS-rebinding check read the
 * first too, whichever it was. */
static void test_two_hosts_refused(void) {
    REFUSED_BOTH(
        "GET /v1/tasks/00000000000000000000000000000000%s HTTP/1.1\r\n"
        "Host: 127.0.0.1\r\nHost: evil.example\r\n\r\n",
        "Host");
    REFUSED_BOTH(
        "GET /v1/tasks/00000000000000000000000000000000%s HTTP/1.1\r\n"
        "Host: evil.example\r\nHost: 127.0.0.1\r\n\r\n",
        "Host");
    REFUSED_BOTH(
        "GET /v1/tasks/00000000000000000000000000000000%s HTTP/1.1\r\n"
        "Host: 127.0.0.1\r\nX-A: 1\r\nhost: 127.0.0.1\r\n\r\n",
        "Host");
    REFUSED_BOTH(
        "POST /v1/tasks%s HTTP/1.1\r\nHost: 127.0.0.1\r\nHOST: 127.0.0.1\r\n"
        "Content-Type: application/json\r\nContent-Length: 12\r\n\r\n{\"type\":\"x\"}",
        "Host");
}

/* RFC 9112 3.2: a Host that is not a host and an optional port is a 400,
 * an empty one too (an http URI has a host). Open mode refused it as
 * another name (403); with tokens it was served. */
static void test_invalid_host_refused(void) {
    REFUSED_BOTH("GET /v1/tasks/00000000000000000000000000000000%s HTTP/1.1\r\nHost:\r\n\r\n",
                 "Host");
    REFUSED_BOTH("GET /v1/tasks/00000000000000000000000000000000%s HTTP/1.1\r\nHost: \t \r\n\r\n",
                 "Host");
    REFUSED_BOTH(
        "GET /v1/tasks/00000000000000000000000000000000%s HTTP/1.1\r\n"
        "Host: 127.0.0.1 x\r\n\r\n",
        "Host");
    REFUSED_BOTH(
        "POST /v1/tasks%s HTTP/1.1\r\nHost: u@127.0.0.1\r\n"
        "Content-Type: application/json\r\nContent-Length: 12\r\n\r\n{\"type\":\"x\"}",
        "Host");
    REFUSED_BOTH(
        "GET /v1/tasks/00000000000000000000000000000000%s HTTP/1.0\r\n"
        "Host: <b>\r\n\r\n",
        "Host");
    /* A port is digits; a bracketed host an IPv6 address's characters;
     * nothing after the host but a port. */
    static const char *const bad[] = {"localhost:x",  "localhost:80:80", ":80", "[evil]",
                                      "[::1]x",       "[::1]:x",         "[]",  "[::1",
                                      "127.0.0.1:8 0"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char text[256];
        snprintf(text, sizeof text,
                 "GET /v1/tasks/00000000000000000000000000000000%%s HTTP/1.1\r\nHost: %s\r\n\r\n",
                 bad[i]);
        refused_both(__LINE__, text, strlen(text), "Host");
    }
    /* A host, a port, an IPv6 address: served. */
    static const char *const good[] = {"127.0.0.1:1", "localhost",  "[::1]:8080",
                                       "LOCALHOST",   "127.0.0.1:", "[::1]"};
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        char text[256], a[64];
        snprintf(text, sizeof text,
                 "GET /v1/tasks/00000000000000000000000000000000 HTTP/1.1\r\nHost: %s\r\n\r\n",
                 good[i]);
        answer_of(text, a, sizeof a);
        if (strcmp(a, "404 not_found") != 0) th_fail(__FILE__, __LINE__, "'%s': %s", good[i], a);
    }
}

/* Transfer-Encoding (never the fast path's): white space after "chunked"
 * is not the value's (RFC 9112 5), but libmicrohttpd dechunks only
 * "chunked" exactly, so it is refused as what it is, not as an unknown
 * coding; codings are case-insensitive; a coding before chunked, or
 * chunked twice (two fields, of which the first was taken), is refused. */
static void test_transfer_encoding(void) {
    long long before = task_count(&srv);
    static const char *const tes[] = {"chunked ",         "chunked\t",
                                      "Chunked ",         "gzip, chunked",
                                      "chunked, chunked", "chunked\r\nTransfer-Encoding: chunked"};
    for (size_t i = 0; i < sizeof tes / sizeof tes[0]; i++) {
        char text[512];
        snprintf(text, sizeof text,
                 "POST /v1/tasks HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                 "Transfer-Encoding: %s\r\n\r\nc\r\n{\"type\":\"x\"}\r\n0\r\n\r\n",
                 tes[i]);
        int fd = fresh_conn(&srv);
        struct resp r;
        CHECK(fd >= 0 && send_all(fd, text, strlen(text)));
        CHECK_INT(read_resp(fd, &r), 0);
        if (r.status != 400 || !th_str(r.json, "error.field") ||
            strcmp(th_str(r.json, "error.field"), "Transfer-Encoding") != 0 ||
            (i < 3 && !strstr(r.body, "no white space after it")))
            th_fail(__FILE__, __LINE__, "'%s': %d %s", tes[i], r.status, r.body);
        resp_clear(&r);
        close(fd);
    }
    /* HTTP/1.0 has no chunked coding (RFC 9112 6.1): libmicrohttpd read it. */
    REFUSED_BOTH(
        "POST /v1/tasks%s HTTP/1.0\r\nContent-Type: application/json\r\n"
        "Transfer-Encoding: chunked\r\n\r\nc\r\n{\"type\":\"x\"}\r\n0\r\n\r\n",
        "Transfer-Encoding");
    CHECK_INT(task_count(&srv), before);
    int fd = fresh_conn(&srv);
    const char body[] = "{\"type\":\"x\"}";
    char text[512];
    snprintf(text, sizeof text,
             "POST /v1/tasks HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
             "Transfer-Encoding: Chunked\r\n\r\n%zx\r\n%s\r\n0\r\n\r\n",
             sizeof body - 1, body);
    CHECK(fd >= 0 && send_all(fd, text, strlen(text)));
    EXPECT_RESP(fd, 201, "type", "x");
    close(fd);
}

/* The reply to `text` on a fresh connection, into r. */
static int exchange(const char *text, struct resp *r) {
    int fd = fresh_conn(&srv);
    int rc = fd >= 0 && send_all(fd, text, strlen(text)) ? read_resp(fd, r) : -1;
    if (fd >= 0) close(fd);
    return rc;
}

/* RFC 9112 3.2.2: an origin server must accept an absolute-form target
 * ("GET http://host:port/path"), which was 404 'no route'; it is served by
 * its path, and its authority stands for Host (7.2), also in open mode's
 * DNS-rebinding check. */
static void test_absolute_form(void) {
    int port = atoi(strrchr(srv.url, ':') + 1);
    struct th_resp *made = th_http(&srv, "POST", "/v1/tasks", "{\"type\":\"abs\"}");
    CHECK_INT(made->status, 201);
    char id[64], text[512];
    snprintf(id, sizeof id, "%s", th_str(made->json, "id"));
    struct resp r;
    snprintf(text, sizeof text,
             "GET http://127.0.0.1:%d/v1/tasks/%s HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", port, id);
    CHECK_INT(exchange(text, &r), 0);
    CHECK_INT(r.status, 200);
    CHECK_STR(th_str(r.json, "id"), id);
    resp_clear(&r);
    /* Any case of the scheme, a query, and the Host field ignored. */
    snprintf(text, sizeof text,
             "GET HTTP://localhost:%d/v1/tasks?type=abs HTTP/1.1\r\nHost: evil.example\r\n\r\n",
             port);
    CHECK_INT(exchange(text, &r), 0);
    CHECK_INT(r.status, 200);
    CHECK_STR(th_str(r.json, "tasks.0.id"), id);
    resp_clear(&r);
    char *post = req_text("POST", "http://127.0.0.1/v1/tasks", "{\"type\":\"abs\"}", NULL);
    CHECK_INT(exchange(post, &r), 0);
    free(post);
    CHECK_INT(r.status, 201);
    resp_clear(&r);
    /* Open mode answers only for a local name: the authority's, not Host's. */
    snprintf(text, sizeof text,
             "GET http://evil.example:%d/v1/tasks/%s HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", port,
             id);
    CHECK_INT(exchange(text, &r), 0);
    CHECK_INT(r.status, 403);
    CHECK_STR(th_str(r.json, "error.field"), "Host");
    CHECK(strstr(r.body, "evil.example") != NULL);
    resp_clear(&r);
    /* And the Origin is held against the authority. */
    snprintf(text, sizeof text,
             "GET http://127.0.0.1:%d/v1/tasks/%s HTTP/1.1\r\nHost: localhost:%d\r\n"
             "Origin: http://localhost:%d\r\n\r\n",
             port, id, port, port);
    CHECK_INT(exchange(text, &r), 0);
    CHECK_INT(r.status, 403);
    CHECK_STR(th_str(r.json, "error.field"), "Origin");
    resp_clear(&r);
    /* No host, or userinfo: 400 naming the target, nothing stored. */
    REFUSED_BOTH(
        "GET http:///v1/tasks/00000000000000000000000000000000%s HTTP/1.1\r\n"
        "Host: 127.0.0.1\r\n\r\n",
        "target");
    REFUSED_BOTH(
        "POST http://u:p@127.0.0.1/v1/tasks%s HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        "Content-Type: application/json\r\nContent-Length: 12\r\n\r\n{\"type\":\"x\"}",
        "target");
    /* Host is still required (RFC 9112 3.2). */
    REFUSED_BOTH(
        "GET http://127.0.0.1/v1/tasks/00000000000000000000000000000000%s HTTP/1.1\r\n\r\n",
        "Host");
}

/* RFC 9110 5.5: a field value with a NUL, a bare CR or another control
 * character but tab is a 400 naming the field. All were taken: a NUL ends
 * libmicrohttpd's copy of a value, unseen ("Host: 127.0.0.1<NUL>.evil" was
 * 127.0.0.1), so the fast path, which reads every plain-HTTP head first,
 * refuses those itself, on any request; libmicrohttpd's side refuses the
 * others (--no-fast-path below, and under TLS). */
static void test_control_characters_in_values(void) {
    REFUSED_BOTH(
        "GET /v1/tasks/00000000000000000000000000000000%s HTTP/1.1\r\n"
        "Host: 127.0.0.1\0.evil.example\r\n\r\n",
        "Host");
    REFUSED_BOTH(
        "POST /v1/tasks%s HTTP/1.1\r\nHost: 127.0.0.1\r\nIdempotency-Key: k\0x\r\n"
        "Content-Type: application/json\r\nContent-Length: 12\r\n\r\n{\"type\":\"x\"}",
        "Idempotency-Key");
    /* After a line the fast path does not take, and in a folded line. */
    REFUSED_BOTH(
        "POST /v1/tasks%s HTTP/1.1\r\nHost: 127.0.0.1\r\nExpect: 100-continue\r\n"
        "X-A: \0\r\nContent-Type: application/json\r\nContent-Length: 12\r\n\r\n"
        "{\"type\":\"x\"}",
        "X-A");
    REFUSED_BOTH(
        "GET /v1/tasks/00000000000000000000000000000000%s HTTP/1.1\r\n"
        "Host: 127.0.0.1\r\nX-B: 1\r\n 2\0\r\n\r\n",
        "X-B");
    REFUSED_BOTH(
        "GET /v1/tasks/00000000000000000000000000000000%s HTTP/1.1\r\n"
        "Host: 127.0.0.1\r\nX-A: a\x01\r\n\r\n",
        "X-A");
    REFUSED_BOTH(
        "GET /v1/tasks/00000000000000000000000000000000%s HTTP/1.1\r\n"
        "Host: 127.0.0.1\r\nX-A: a\x7f\r\n\r\n",
        "X-A");
    REFUSED_BOTH(
        "GET /v1/tasks/00000000000000000000000000000000%s HTTP/1.1\r\n"
        "Host: 127.0.0.1\r\nX-A: a\rb\r\n\r\n",
        "X-A");
    /* A NUL before a line's colon ended libmicrohttpd's copy of the line:
     * at its start, the head, so that the body and the rest of the head
     * were read as the next request; refused by what comes before it. */
    REFUSED_BOTH(
        "POST /v1/tasks%s HTTP/1.1\r\nHost: 127.0.0.1\r\nX-A\0: 1\r\n"
        "Content-Type: application/json\r\nContent-Length: 12\r\n\r\n{\"type\":\"x\"}",
        "X-A");
    struct resp r;
    long long before = task_count(&srv);
    static const char *const outer[] = {"/v1/tasks", "/v1/tasks?x=1"};
    for (int q = 0; q < 2; q++) {
        char smuggle[512];
        int n = snprintf(smuggle, sizeof smuggle,
                         "POST %s HTTP/1.1\r\nHost: 127.0.0.1\r\n%%s"
                         "Content-Type: application/json\r\nContent-Length: 78\r\n\r\n"
                         "POST /v1/tasks HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 12\r\n\r\n"
                         "{\"type\":\"x\"}",
                         outer[q]);
        char *at = strstr(smuggle, "%s"); /* a line of one NUL goes there */
        CHECK(n > 0 && at);
        memmove(at + 3, at + 2, strlen(at + 2) + 1);
        memcpy(at, "\0\r\n", 3);
        n++;
        int fd = fresh_conn(&srv);
        CHECK(fd >= 0 && send_all(fd, smuggle, (size_t)n));
        CHECK_INT(read_resp(fd, &r), 0);
        CHECK_INT(r.status, 400);
        CHECK(strstr(r.body, "must not start with a NUL byte") != NULL);
        resp_clear(&r);
        CHECK(closed_within(fd, 20000));
        close(fd);
    }
    CHECK_INT(task_count(&srv), before);
    /* A folded line (obs-fold, RFC 9112 5.2): libmicrohttpd added it to
     * the field's name, so "Idempotency-Key: k1" CRLF " x" lost its key and
     * each retry made another task. */
    REFUSED_BOTH(
        "POST /v1/tasks%s HTTP/1.1\r\nHost: 127.0.0.1\r\nIdempotency-Key: k1\r\n x\r\n"
        "Content-Type: application/json\r\nContent-Length: 12\r\n\r\n{\"type\":\"x\"}",
        "Idempotency-Key");
    CHECK_INT(exchange("GET /v1/tasks HTTP/1.1\r\nHost: 127.0.0.1\r\nX-A: 1\r\n\t2\r\n\r\n", &r),
              0);
    CHECK_INT(r.status, 400);
    CHECK(r.body && strstr(r.body, "obsolete line folding") != NULL);
    resp_clear(&r);
    /* Tab is allowed; obs-text too. */
    char a[64];
    answer_of(
        "GET /v1/tasks/00000000000000000000000000000000 HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        "X-A: a\tb\xe9\r\n\r\n",
        a, sizeof a);
    CHECK_STR(a, "404 not_found");
    /* In the shape of the API the path is in. */
    CHECK_INT(
        exchange("GET /api/task?limit=1 HTTP/1.1\r\nHost: 127.0.0.1\r\nX-A: \x02\r\n\r\n", &r), 0);
    CHECK_INT(r.status, 400);
    CHECK(r.body && strstr(r.body, "{\"errors\":[\"header 'X-A' must not hold a control") != NULL);
    resp_clear(&r);
    /* libmicrohttpd's side alone: all but the NUL, which it cannot see. */
    struct th_server mhd;
    CHECK(th_server_start(&mhd, "--no-fast-path", NULL) == 0);
    struct th_server saved = srv;
    srv = mhd;
    REFUSED_BOTH(
        "GET /v1/tasks/00000000000000000000000000000000%s HTTP/1.1\r\n"
        "Host: 127.0.0.1\r\nX-A: a\x01\r\n\r\n",
        "X-A");
    REFUSED_BOTH(
        "POST /v1/tasks%s HTTP/1.1\r\nHost: 127.0.0.1\r\nX-A: a\rb\r\n"
        "Content-Type: application/json\r\nContent-Length: 12\r\n\r\n{\"type\":\"x\"}",
        "X-A");
    srv = saved;
    th_server_free(&mhd);
}

static void test_no_fast_path(void) {
    struct th_server s2;
    CHECK(th_server_start(&s2, "--no-fast-path", NULL) == 0);
    int fd = fresh_conn(&s2);
    CHECK(fd >= 0);
    char *a = req_text("POST", "/v1/tasks", "{\"type\":\"mhd\",\"name\":\"a\"}", NULL);
    char *b = req_text("POST", "/v1/tasks", "{\"type\":\"mhd\",\"nope\":1}", NULL);
    char two[1024];
    snprintf(two, sizeof two, "%s%s", a, b);
    free(a);
    free(b);
    CHECK(send_all(fd, two, strlen(two)));
    EXPECT_RESP(fd, 201, "name", "a");
    EXPECT_RESP(fd, 400, "error.field", "nope");
    close(fd);
    th_server_free(&s2);
}

/* Every reply with a body says X-Content-Type-Options: nosniff once, on
 * both paths: a reply echoes tenants' text, which no browser may sniff
 * into a page or a script (only the dashboard's own files said it). */
static void test_nosniff(void) {
    char *id = th_submit(&srv, "sniff", "\"name\":\"<script>alert(1)</script>\"");
    CHECK(id != NULL);
    char fast[128];
    snprintf(fast, sizeof fast, "/v1/tasks/%s", id ? id : "x");
    const char *paths[] = {
        fast,       "/v1/tasks?limit=1", "/v1/tasks/00000000000000000000000000000000",
        "/v1/nope", "/metrics",          "/"};
    for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++) {
        struct th_resp *r = th_http(&srv, "GET", paths[i], NULL);
        int n = 0;
        for (const char *p = r->headers; (p = strcasestr(p, "X-Content-Type-Options: nosniff"));
             p++)
            n++;
        if (n != 1)
            th_fail(__FILE__, __LINE__, "GET %s (%ld): nosniff %d times", paths[i], r->status, n);
    }
    free(id);
}

static const struct th_test tests[] = {
    {"pipelined requests on one connection are answered in order", test_pipelined},
    {"a request that comes in pieces", test_split},
    {"a long keep-alive connection, then a request handed on", test_long_connection},
    {"a body slower than the idle timeout is waited for; an idle connection is not",
     test_slow_body},
    {"a connection moves on to libmicrohttpd for a request the fast path does not serve",
     test_hand_on},
    {"bad input on the fast path: v1's errors, the connection goes on, nothing stored",
     test_bad_input},
    {"Connection: close is answered, then closed", test_connection_close},
    {"a reply longer than the client's buffer, then Connection: close: all of it, then a FIN",
     test_close_after_long_reply},
    {"a request not all there: held requests go, a large or slow one is handed on",
     test_partial_requests},
    {"--max-connections counts both paths together", test_connection_cap_both_paths},
    {"a connection handed on is counted until libmicrohttpd starts it, then given back",
     test_hand_on_counts_come_back},
    {"a client gone while its claim waits", test_gone_while_waiting},
    {"many clients at once: pipelined, handed on, hung up", test_concurrent},
    {"without SO_PEEK_OFF (kernels before 6.10): the same answers", test_without_peek_offset},
    {"--no-fast-path answers the same", test_no_fast_path},
    {"every reply with a body says nosniff, on both paths", test_nosniff},
    {"a request the fast path takes is answered as libmicrohttpd answers it", test_same_as_mhd},
    {"a head at --max-header-bytes is answered as libmicrohttpd answers it",
     test_head_limit_same_as_mhd},
    {"a bad line in a head not all there is answered at once, as libmicrohttpd does",
     test_bad_line_answered_at_once},
    {"Connection: close is read as libmicrohttpd reads it", test_connection_close_as_mhd},
    {"white space before a field name's colon is refused, its body never a request",
     test_space_before_colon_refused},
    {"white space at the end of a value is not the value's, on either path",
     test_trailing_space_not_the_value},
    {"an HTTP/1.1 request without Host is refused, on either path", test_host_required},
    {"two Host fields are refused, on either path", test_two_hosts_refused},
    {"a Host that is not a host and port is refused, on either path", test_invalid_host_refused},
    {"Transfer-Encoding: white space after chunked, its case, other codings",
     test_transfer_encoding},
    {"an absolute-form target is served by its path, its authority taken for Host",
     test_absolute_form},
    {"a control character in a field value is refused, naming the field",
     test_control_characters_in_values},
    {NULL, NULL},
};

int main(int argc, char **argv) {
    if (th_server_start(&srv, IDLE_NEVER, NULL))
        th_fail(__FILE__, __LINE__, "server did not start");
    int rc = th_main(tests, argc, argv);
    th_server_free(&srv);
    return rc || th_failed();
}
