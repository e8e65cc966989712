/*
 * --head-timeout-seconds: a request's head must be all in within that long
 * (never less than the idle timeout) of its connection's opening or of its
 * previous reply's end. A client sending its head a byte at a time, each
 * well within the idle timeout (slowloris), is closed at the deadline,
 * on the fast path, on libmicrohttpd's (--no-fast-path, as under TLS) and
 * when the fast path hands its head on; a keep-alive connection between
 * requests and a request in progress (a waiting claim) are not.
 *
 * --body-timeout-seconds and --body-min-rate: likewise a request's body,
 * from its head's end, with a second more for every --body-min-rate bytes
 * of it that came: a body dripped a byte at a time (a "slow POST") is
 * closed and nothing of it stored; one that comes at the rate is not cut,
 * however long it takes.
 */
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"

/* The deadline the servers here run with, and their idle timeout. */
#define HEAD_S  "4"
#define IDLE_S  "2"
#define HEAD_MS 4000

/* Whether fd has been closed by the server (EOF, a reset or a reply of
 * its own: nothing should come but the end), waiting up to ms. */
static bool closed_within(int fd, int ms, char *got, size_t n) {
    struct pollfd p = {.fd = fd, .events = POLLIN};
    if (poll(&p, 1, ms) <= 0) return false;
    ssize_t k = recv(fd, got, n - 1, 0);
    got[k > 0 ? k : 0] = '\0';
    return true;
}

/* The count of connections closed for a late head (the harness's own
 * connection may have been closed as idle: up to three tries). */
static long long head_timeouts(struct th_server *s) {
    long long n = -1;
    for (int i = 0; i < 3 && n < 0; i++)
        n = th_metric(s, "taskmill_connections_closed_total{reason=\"head_timeout\"}");
    return n;
}

/* Sends the head `start` and then one byte of a header line every
 * `every_ms`, never ending it; how many ms after the connection opened it
 * was closed, or -1 when it was still open after 25 s (a deadline). What
 * came before the close, if anything, is in got; the longest time between
 * two looks at the connection (every_ms when the test was not held up) in
 * *held_ms. */
static long long drip_once(struct th_server *s, const char *start, int every_ms, char *got,
                           size_t n, long long *held_ms) {
    int fd = th_tcp_open(s);
    if (fd < 0) return -1;
    long long t0 = th_now_ms(), closed = -1, last = t0;
    *held_ms = 0;
    got[0] = '\0';
    if (send(fd, start, strlen(start), MSG_NOSIGNAL) < 0) closed = th_now_ms() - t0;
    while (closed < 0 && th_now_ms() - t0 < 25000) {
        bool gone = closed_within(fd, every_ms, got, n);
        long long now = th_now_ms();
        if (now - last > *held_ms) *held_ms = now - last;
        last = now;
        if (gone || send(fd, "a", 1, MSG_NOSIGNAL) < 0) /* refused: closed */
            closed = now - t0;
    }
    close(fd);
    return closed;
}

/* drip_once, on a fresh connection again (up to three times) when the
 * test was held up for 700 ms more than every_ms between two bytes: then
 * a head may have been closed as idle (2 s) rather than at its deadline,
 * and the close was seen late, so its time says nothing (a pause of 2.5 s
 * in the dripping failed the head tests so). */
static long long drip(struct th_server *s, const char *start, int every_ms, char *got, size_t n) {
    long long at = -1, held = 0;
    for (int i = 0; i < 3; i++) {
        at = drip_once(s, start, every_ms, got, n, &held);
        /* Never closed is the fault itself: dripped again it only waits
         * its 25 s once more (a held-up test's close may be the idle
         * timeout's, which is what is tried again). */
        if (at < 0 || held <= every_ms + 700) break;
        printf("held up %lld ms between two bytes (a byte every %d ms): dripped again\n", held,
               every_ms);
    }
    return at;
}

static void drip_closed(const char *path_flag, const char *start, int every_ms) {
    struct th_server s;
    CHECK(th_server_start(&s, "--idle-timeout-seconds", IDLE_S, "--head-timeout-seconds", HEAD_S,
                          path_flag, NULL) == 0);
    char got[512];
    long long at = drip(&s, start, every_ms, got, sizeof got);
    printf("closed %lld ms after it opened (%s, a byte every %d ms)\n", at,
           path_flag ? path_flag : "fast path", every_ms);
    CHECK(at >= 0);             /* closed, where it once was held as long as it dripped */
    CHECK(at >= HEAD_MS - 100); /* not before its deadline (100 ms for the clocks) */
    CHECK(!strstr(got, "200")); /* nothing was served */
    CHECK(head_timeouts(&s) >= 1);
    th_server_free(&s);
}

/* A head that never ends, a byte every 300 ms (the idle timeout is 2 s):
 * the fast path holds it unread, up to its 8 arrivals. */
static void test_drip_fast(void) {
    drip_closed(NULL, "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ", 300);
}

/* libmicrohttpd reads it (as under TLS). */
static void test_drip_mhd(void) {
    drip_closed("--no-fast-path", "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ", 300);
}

/* The fast path hands a head that comes in many pieces to libmicrohttpd,
 * which then has it, with the time its deadline counts from. */
static void test_drip_handed_on(void) {
    drip_closed(NULL, "POST /v1/tasks HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ", 100);
}

/* Nothing at all: the idle timeout closes it first, counted as idle. */
static void test_silent_is_idle(void) {
    struct th_server s;
    CHECK(th_server_start(&s, "--idle-timeout-seconds", IDLE_S, "--head-timeout-seconds", HEAD_S,
                          NULL) == 0);
    int fd = th_tcp_open(&s);
    CHECK(fd >= 0);
    char got[64];
    long long t0 = th_now_ms();
    CHECK(closed_within(fd, 25000, got, sizeof got));
    long long at = th_now_ms() - t0;
    close(fd);
    printf("closed %lld ms after it opened\n", at);
    CHECK_INT(head_timeouts(&s), 0);
    th_server_free(&s);
}

/* Sends req on fd and reads one reply whole (Content-Length framed); its
 * status, or -1. */
static int exchange(int fd, const char *req) {
    if (send(fd, req, strlen(req), MSG_NOSIGNAL) != (ssize_t)strlen(req)) return -1;
    char buf[8192];
    size_t len = 0;
    for (;;) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (poll(&p, 1, 20000) <= 0) return -1;
        ssize_t k = recv(fd, buf + len, sizeof buf - 1 - len, 0);
        if (k <= 0) return -1;
        len += (size_t)k;
        buf[len] = '\0';
        const char *end = strstr(buf, "\r\n\r\n");
        if (!end) continue;
        const char *cl = strcasestr(buf, "\r\nContent-Length:");
        size_t body = cl && cl < end ? strtoul(cl + 17, NULL, 10) : 0;
        if (len >= (size_t)(end + 4 - buf) + body) break;
    }
    int status = -1;
    sscanf(buf, "HTTP/1.1 %d", &status);
    return status;
}

/* The body deadline the servers below run with. */
#define BODY_S  "3"
#define BODY_MS 3000

static long long body_timeouts(struct th_server *s) {
    long long n = -1;
    for (int i = 0; i < 3 && n < 0; i++)
        n = th_metric(s, "taskmill_connections_closed_total{reason=\"body_timeout\"}");
    return n;
}

/* Keep-alive requests spread past the deadline on one connection, each
 * within the idle timeout of the last reply, submits with their bodies
 * among them, one whose body comes a second after its head (within its
 * body's deadline of 4 s, past the first body's), and a claim that waits
 * past both deadlines: none is cut, none counted. The idle timeout is the
 * head's 4 s here, not 2 s, and the body's deadline 4 s, not 2 s, so that
 * only a test held up for 3 s or more between two requests, or after the
 * second before a body, would see its connection closed. */
static void kept(const char *path_flag) {
    struct th_server s;
    CHECK(th_server_start(&s, "--idle-timeout-seconds", HEAD_S, "--head-timeout-seconds", HEAD_S,
                          "--body-timeout-seconds", "4", path_flag, NULL) == 0);
    int fd = th_tcp_open(&s);
    CHECK(fd >= 0);
    static const char submit_head[] =
        "POST /v1/tasks HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: "
        "application/json\r\nContent-Length: 15\r\n\r\n";
    static const char submit_body[] = "{\"type\":\"kept\"}";
    char submit[256];
    snprintf(submit, sizeof submit, "%s%s", submit_head, submit_body);
    long long t0 = th_now_ms();
    int n = 0;
    while (th_now_ms() - t0 < HEAD_MS + 2000) { /* past the deadline from the opening */
        CHECK_INT(exchange(fd, n % 2 ? submit : "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"),
                  n % 2 ? 201 : 200);
        n++;
        th_sleep_ms(400);
    }
    CHECK(send(fd, submit_head, sizeof submit_head - 1, MSG_NOSIGNAL) > 0);
    th_sleep_ms(1000);
    CHECK_INT(exchange(fd, submit_body), 201);
    n++;
    const char body[] = "{\"worker\":\"w\",\"wait_seconds\":6}";
    char req[256];
    snprintf(req, sizeof req,
             "POST /v1/queues/kept/claim HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: "
             "application/json\r\nContent-Length: %zu\r\n\r\n%s",
             sizeof body - 1, body);
    long long c0 = th_now_ms();
    CHECK_INT(exchange(fd, req), 204); /* it waited its 6 s, past the deadline; nothing came */
    long long waited = th_now_ms() - c0;
    CHECK(waited >= 5900);
    CHECK_INT(exchange(fd, "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"), 200);
    close(fd);
    printf("%d requests over %lld ms, then a claim that waited %lld ms, on one connection (%s)\n",
           n + 2, th_now_ms() - t0, waited, path_flag ? path_flag : "fast path");
    CHECK_INT(head_timeouts(&s), 0);
    CHECK_INT(body_timeouts(&s), 0);
    th_server_free(&s);
}

static void test_kept_fast(void) {
    kept(NULL);
}

static void test_kept_mhd(void) {
    kept("--no-fast-path");
}

static long long tasks_stored(struct th_server *s) {
    struct th_resp *r = th_http(s, "GET", "/v1/tasks", NULL);
    return r->status == 200 ? (long long)json_array_size(json_object_get(r->json, "tasks")) : -1;
}

/* A submit's head whole, with a body of `length` bytes promised, then a
 * body byte every every_ms: closed at the body's deadline (the rate at
 * which the bytes come adds nothing: --body-min-rate is far above it),
 * counted as such, and no task stored. */
static void body_drip_closed(const char *path_flag, size_t length, int every_ms, long long before) {
    struct th_server s;
    CHECK(th_server_start(&s, "--idle-timeout-seconds", IDLE_S, "--head-timeout-seconds", HEAD_S,
                          "--body-timeout-seconds", BODY_S, "--body-min-rate", "1000000", path_flag,
                          NULL) == 0);
    char head[256], got[512];
    snprintf(head, sizeof head,
             "POST /v1/tasks HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: "
             "application/json\r\nContent-Length: %zu\r\n\r\n{\"type\":\"slow\",\"x\":\"",
             length);
    long long at = drip(&s, head, every_ms, got, sizeof got);
    printf("closed %lld ms after it opened (%s, %zu bytes promised, a byte every %d ms)\n", at,
           path_flag ? path_flag : "fast path", length, every_ms);
    CHECK(at >= 0);             /* closed, where it was held as long as it dripped */
    CHECK(at >= BODY_MS - 100); /* not before its deadline (100 ms for the clocks) */
    if (before) CHECK(at < before);
    CHECK(!strstr(got, "201")); /* nothing was served */
    CHECK(body_timeouts(&s) >= 1);
    CHECK_INT(head_timeouts(&s), 0);
    CHECK_INT(tasks_stored(&s), 0);
    th_server_free(&s);
}

/* Held unread by the fast path (a byte every 500 ms: six arrivals by the
 * deadline, within its eight). */
static void test_body_drip_fast(void) {
    body_drip_closed(NULL, 1000, 500, 0);
}

static void test_body_drip_mhd(void) {
    body_drip_closed("--no-fast-path", 1000, 300, 0);
}

/* Handed on to libmicrohttpd by the fast path after eight arrivals (a
 * byte every 300 ms: at 2.4 s or later), with the time its body's clock
 * started: cut at 3–4 s (the watch looks once a second), where a clock
 * started anew at the hand-on would cut it at 5.4 s or later. And a
 * body larger than the fast path holds, handed on with its head. */
static void test_body_drip_handed_on(void) {
    body_drip_closed(NULL, 1000, 300, 5300);
    body_drip_closed(NULL, 200000, 300, 0);
}

/* Sends chunks of 200 bytes every 100 ms on fd (2,000 bytes a second)
 * until the server closes it or 20 s; ms until it was closed, or -1. */
static long long chunks_until_closed(int fd) {
    char chunk[256] = "c8\r\n";
    memset(chunk + 4, 'x', 200);
    memcpy(chunk + 204, "\r\n", 2);
    long long t0 = th_now_ms();
    while (th_now_ms() - t0 < 20000) {
        char got[64];
        if (closed_within(fd, 100, got, sizeof got) || send(fd, chunk, 206, MSG_NOSIGNAL) < 0)
            return th_now_ms() - t0;
    }
    return -1;
}

/* A chunked body without end, at twice --body-min-rate: the bytes past
 * --max-body-bytes (read and dropped) buy no time, so it is cut at
 * 3 s + 1,024 bytes' second, where it once was held as long as it came. */
static void chunked_endless(const char *path_flag) {
    struct th_server s;
    CHECK(th_server_start(&s, "--idle-timeout-seconds", IDLE_S, "--head-timeout-seconds", HEAD_S,
                          "--body-timeout-seconds", BODY_S, "--body-min-rate", "1000",
                          "--max-body-bytes", "1024", path_flag, NULL) == 0);
    int fd = th_tcp_open(&s);
    CHECK(fd >= 0);
    static const char head[] =
        "POST /v1/tasks HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: "
        "application/json\r\nTransfer-Encoding: chunked\r\n\r\n";
    CHECK(send(fd, head, sizeof head - 1, MSG_NOSIGNAL) > 0);
    long long at = chunks_until_closed(fd);
    close(fd);
    printf("an endless chunked body closed after %lld ms (%s)\n", at,
           path_flag ? path_flag : "fast path");
    CHECK(at >= 0);
    CHECK(body_timeouts(&s) >= 1);
    CHECK_INT(tasks_stored(&s), 0);
    th_server_free(&s);
}

static void test_chunked_endless_fast(void) {
    chunked_endless(NULL);
}

static void test_chunked_endless_mhd(void) {
    chunked_endless("--no-fast-path");
}

/* A submit whose body of 1,600 bytes comes at 400 bytes a second, twice
 * --body-min-rate (200): four seconds, past the 3 s deadline with nothing
 * come, but a second more for every 200 bytes: served, and stored. */
static void body_at_rate(const char *path_flag) {
    struct th_server s;
    CHECK(th_server_start(&s, "--idle-timeout-seconds", IDLE_S, "--head-timeout-seconds", HEAD_S,
                          "--body-timeout-seconds", BODY_S, "--body-min-rate", "200", path_flag,
                          NULL) == 0);
    char body[1601];
    int n = snprintf(body, sizeof body, "{\"type\":\"steady\",\"params\":{\"pad\":\"");
    memset(body + n, 'x', sizeof body - 1 - (size_t)n - 3);
    memcpy(body + sizeof body - 4, "\"}}", 4);
    char head[256];
    snprintf(head, sizeof head,
             "POST /v1/tasks HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: "
             "application/json\r\nContent-Length: %zu\r\n\r\n",
             strlen(body));
    int fd = th_tcp_open(&s);
    CHECK(fd >= 0);
    CHECK(send(fd, head, strlen(head), MSG_NOSIGNAL) == (ssize_t)strlen(head));
    long long t0 = th_now_ms();
    size_t sent = 0, len = strlen(body);
    while (sent + 40 < len) { /* 40 bytes every 100 ms, the last piece with the exchange */
        CHECK(send(fd, body + sent, 40, MSG_NOSIGNAL) == 40);
        sent += 40;
        th_sleep_ms(100);
    }
    CHECK_INT(exchange(fd, body + sent), 201);
    long long took = th_now_ms() - t0;
    close(fd);
    printf("a body of %zu bytes over %lld ms served (%s)\n", len, took,
           path_flag ? path_flag : "fast path");
    CHECK(took > BODY_MS); /* past the deadline as it would be with nothing come */
    CHECK_INT(body_timeouts(&s), 0);
    CHECK_INT(tasks_stored(&s), 1);
    th_server_free(&s);
}

static void test_body_at_rate_fast(void) {
    body_at_rate(NULL);
}

static void test_body_at_rate_mhd(void) {
    body_at_rate("--no-fast-path");
}

/* Opens n connections that each send a head a byte every 300 ms, never
 * ending it, until each is closed (or 25 s: a deadline); how many were. */
static int drip_many(struct th_server *s, int n) {
    int *fd = calloc((size_t)n, sizeof *fd), open = 0, closed = 0;
    static const char start[] = "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ";
    for (int i = 0; i < n; i++) {
        fd[i] = th_tcp_open(s);
        if (fd[i] >= 0 && send(fd[i], start, sizeof start - 1, MSG_NOSIGNAL) > 0) open++;
    }
    for (long long t0 = th_now_ms(); closed < open && th_now_ms() - t0 < 25000;) {
        th_sleep_ms(300);
        for (int i = 0; i < n; i++) {
            if (fd[i] < 0) continue;
            char c;
            struct pollfd p = {.fd = fd[i], .events = POLLIN};
            bool gone = poll(&p, 1, 0) > 0 && recv(fd[i], &c, 1, MSG_DONTWAIT) <= 0;
            if (gone || send(fd[i], "a", 1, MSG_NOSIGNAL) < 0) {
                close(fd[i]);
                fd[i] = -1;
                closed++;
            }
        }
    }
    for (int i = 0; i < n; i++)
        if (fd[i] >= 0) close(fd[i]);
    free(fd);
    return closed;
}

/* In the server's log: lines holding `what`, and the sum of the counts of
 * the "N more lines of libmicrohttpd were not logged" lines. */
static int log_lines(struct th_server *s, const char *what, long *untold) {
    char path[400], line[1024];
    snprintf(path, sizeof path, "%s/server.log", s->dir);
    FILE *f = fopen(path, "r");
    int n = 0;
    *untold = 0;
    if (!f) return 0;
    while (fgets(line, sizeof line, f)) {
        if (strstr(line, what)) n++;
        const char *m = strstr(line, "taskmill: http: ");
        if (m && strstr(m, " more lines of libmicrohttpd were not logged"))
            *untold += atol(m + strlen("taskmill: http: "));
    }
    fclose(f);
    return n;
}

/* libmicrohttpd writes a line for each connection cut past its deadline
 * (one a client can cause as often as it likes): at most 100 a second
 * are written, and the next one says how many were not. 400 heads cut in
 * the same one or two rounds of the watch (their deadlines within a few
 * ms), then one more in a later second. The idle timeout is the head's
 * 4 s: with 2 s, a test held up 2 s between two rounds of bytes saw heads
 * closed as idle, not counted as cut at their deadline. */
static void test_cut_lines_bounded(void) {
    struct th_server s;
    CHECK(th_server_start(&s, "--no-fast-path", "--idle-timeout-seconds", HEAD_S,
                          "--head-timeout-seconds", HEAD_S, NULL) == 0);
    CHECK_INT(drip_many(&s, 400), 400);
    CHECK_INT(drip_many(&s, 1), 1); /* cut 4 s later: a new second, whose line says the rest */
    static const char cut[] = "when reading request";
    long untold = 0;
    int lines = 0;
    for (int i = 0; i < 200; i++) { /* 20 s: a deadline (a line may trail its close) */
        lines = log_lines(&s, cut, &untold);
        if (lines + untold >= 401) break;
        th_sleep_ms(100);
    }
    printf("401 connections cut: %d lines, %ld said not logged\n", lines, untold);
    CHECK_INT(head_timeouts(&s), 401);
    CHECK_INT(lines + untold, 401); /* a line each, written or counted */
    /* 400 cut in one or two rounds of the watch, a second apart, and their
     * lines written as they are cut: within three seconds even if
     * libmicrohttpd's threads lag, then the last. */
    CHECK(lines <= 301);
    CHECK(untold >= 100);
    th_server_free(&s);
}

/* Out of its range, or not a number: a usage error (2), by name. */
static void test_bad_flag(void) {
    const char *bin = getenv("TASKMILL_BIN") ? getenv("TASKMILL_BIN") : "build/taskmill";
    const struct {
        const char *flag, *value;
    } bad[] = {
        {"--head-timeout-seconds", "0"},   {"--head-timeout-seconds", "3601"},
        {"--head-timeout-seconds", "x"},   {"--head-timeout-seconds", "-1"},
        {"--body-timeout-seconds", "0"},   {"--body-timeout-seconds", "3601"},
        {"--body-timeout-seconds", "1s"},  {"--body-min-rate", "0"},
        {"--body-min-rate", "2000000000"}, {"--body-min-rate", "fast"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char cmd[512], out[1024] = "";
        snprintf(cmd, sizeof cmd,
                 "timeout 10 %s serve --listen 127.0.0.1:0 --store sqlite:/nonexistent/x.db "
                 "%s %s 2>&1",
                 bin, bad[i].flag, bad[i].value);
        FILE *p = popen(cmd, "r");
        CHECK(p);
        size_t k = fread(out, 1, sizeof out - 1, p);
        out[k] = '\0';
        int rc = pclose(p);
        CHECK_INT(WIFEXITED(rc) ? WEXITSTATUS(rc) : -1, 2);
        CHECK(strstr(out, bad[i].flag) != NULL);
    }
}

static const struct th_test tests[] = {
    {"a head dripped a byte at a time is closed at its deadline (fast path)", test_drip_fast},
    {"the same through libmicrohttpd (--no-fast-path, as under TLS)", test_drip_mhd},
    {"a head the fast path hands on to libmicrohttpd is closed at its deadline too",
     test_drip_handed_on},
    {"a connection that sends nothing is the idle timeout's", test_silent_is_idle},
    {"keep-alive requests and a waiting claim past the deadline are not cut (fast path)",
     test_kept_fast},
    {"the same through libmicrohttpd", test_kept_mhd},
    {"a body dripped a byte at a time is closed at its deadline, nothing stored (fast path)",
     test_body_drip_fast},
    {"the same through libmicrohttpd (--no-fast-path, as under TLS)", test_body_drip_mhd},
    {"a body the fast path hands on is closed at its deadline too", test_body_drip_handed_on},
    {"an endless chunked body is cut: bytes past --max-body-bytes buy no time (fast path)",
     test_chunked_endless_fast},
    {"the same through libmicrohttpd", test_chunked_endless_mhd},
    {"a body coming at --body-min-rate is not cut, however long (fast path)",
     test_body_at_rate_fast},
    {"the same through libmicrohttpd", test_body_at_rate_mhd},
    {"libmicrohttpd's lines of connections cut: at most 100 a second", test_cut_lines_bounded},
    {"the deadlines' flags out of range are usage errors", test_bad_flag},
    {NULL, NULL},
};

int main(int argc, char **argv) {
    return th_main(tests, argc, argv);
}
