/*
 * Authentication comes before a request's body is read: a client without
 * a valid token for the route (none, a wrong secret, a role the route does
 * not admit) or a request no route serves is answered once its head is in,
 * so it cannot make the server hold --max-body-bytes per connection before
 * it has shown a token. The refusals go out instead of `100 Continue`, and
 * while a body is still on its way; nothing is stored. A valid token's
 * request with a body is served as before. Raw sockets, since libcurl
 * would send the body regardless.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "harness.h"
#include "sec_util.h"

static struct th_server srv;
static char admin[128], client[128], reader[128], id_unused[32];

/* Reads one reply on fd into out (n bytes at most: its head and as much
 * of its body as fits): until an interim 1xx head (`100 Continue`: the
 * client's turn) or a final head and its Content-Length of body are in,
 * the connection closes, or 10 s pass with nothing (so a server that
 * waits for a body fails the test rather than hanging it). */
static void read_reply(int fd, char *out, size_t n) {
    size_t got = 0;
    out[0] = '\0';
    struct pollfd p = {.fd = fd, .events = POLLIN};
    while (got + 1 < n && poll(&p, 1, 10000) > 0) {
        ssize_t k = recv(fd, out + got, n - 1 - got, 0);
        if (k <= 0) break;
        got += (size_t)k;
        out[got] = '\0';
        const char *end = strstr(out, "\r\n\r\n"), *cl = strcasestr(out, "\r\nContent-Length: ");
        if (end && strncmp(out, "HTTP/1.1 1", 10) == 0) break;
        if (end && cl && cl < end && got >= (size_t)(end + 4 - out) + strtoul(cl + 18, NULL, 10))
            break;
    }
}

/* Sends req on a new connection and reads its reply (read_reply). `out`
 * gets what came; the fd stays open in *fd_out when fd_out is not NULL. */
static void raw_send_read(const char *req, char *out, size_t n, int *fd_out) {
    out[0] = '\0';
    int fd = th_tcp_open(&srv);
    if (fd_out) *fd_out = fd;
    if (fd < 0) return;
    send(fd, req, strlen(req), MSG_NOSIGNAL);
    read_reply(fd, out, n);
    if (!fd_out) close(fd);
}

/* The tasks the admin sees (every namespace), or -1. */
static long task_count(void) {
    struct th_resp *r = sec_http(&srv, admin, "GET", "/v1/tasks?limit=1000", NULL);
    return r->status == 200 ? (long)json_array_size(th_get(r->json, "tasks")) : -1;
}

/* A head announcing a body of 900,000 bytes (under the 1 MiB limit). */
static void big_head(char *out, size_t n, const char *method, const char *path, const char *bearer,
                     bool expect) {
    char auth[200] = "";
    if (bearer) snprintf(auth, sizeof auth, "Authorization: Bearer %s\r\n", bearer);
    snprintf(out, n,
             "%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
             "%sContent-Length: 900000\r\n%s\r\n",
             method, path, auth, expect ? "Expect: 100-continue\r\n" : "");
}

static void refused_before_body(int line, const char *method, const char *path, const char *bearer,
                                const char *status, const char *code) {
    char head[512], out[4096];
    for (int expect = 1; expect >= 0; expect--) {
        big_head(head, sizeof head, method, path, bearer, expect);
        /* Without Expect, a little of the body follows the head: the rest
         * never comes, and the reply must not wait for it. */
        char req[2048];
        snprintf(req, sizeof req, "%s%s", head, expect ? "" : "{\"type\":\"x\",\"name\":\"");
        raw_send_read(req, out, sizeof out, NULL);
        if (strncmp(out, status, strlen(status)) != 0 || !strstr(out, code))
            th_fail(__FILE__, line, "%s %s (%s, %s Expect): want '%s' '%s', got '%.300s'", method,
                    path, bearer ? "a token" : "no token", expect ? "with" : "without", status,
                    code, out);
    }
}

static void test_refused_before_the_body(void) {
    long before = task_count();
    CHECK(before >= 0);
    char wrong[128];
    snprintf(wrong, sizeof wrong, "tm_%s_%064d", id_unused, 0);
    refused_before_body(__LINE__, "POST", "/v1/tasks", NULL, "HTTP/1.1 401", "unauthenticated");
    refused_before_body(__LINE__, "POST", "/v1/tasks", wrong, "HTTP/1.1 401", "unauthenticated");
    refused_before_body(__LINE__, "POST", "/v1/tasks/batch", "tm_x", "HTTP/1.1 401",
                        "unauthenticated");
    refused_before_body(__LINE__, "POST", "/v1/tasks", reader, "HTTP/1.1 403", "permission_denied");
    refused_before_body(__LINE__, "PUT", "/v1/queues/q1", client, "HTTP/1.1 403",
                        "permission_denied");
    refused_before_body(__LINE__, "POST", "/v1/no-such-thing", client, "HTTP/1.1 404", "not_found");
    refused_before_body(__LINE__, "PUT", "/v1/tasks", client, "HTTP/1.1 405", "method_not_allowed");
    /* A view's route, in its own shape (SailPoint's errors carry its own
     * fields; the status is what is checked). */
    refused_before_body(__LINE__, "PATCH", "/beta/task-status/abc", NULL, "HTTP/1.1 401", "");
    /* A body announced past the cap (but not four times past it), which the
     * server reads and drops before a 413, is still refused by its route and
     * credentials before any of it is read. */
    static const struct {
        const char *path;
        bool token; /* the client's */
        const char *status;
    } over[] = {{"/v1/tasks", false, "HTTP/1.1 401"},
                {"/v1/no-such-thing", true, "HTTP/1.1 404"},
                {"/v1/tasks", true, "HTTP/1.1 413"}};
    for (size_t i = 0; i < sizeof over / sizeof over[0]; i++) {
        char req[512], out[4096];
        snprintf(req, sizeof req,
                 "POST %s HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                 "%s%s%sContent-Length: 2000000\r\n\r\n",
                 over[i].path, over[i].token ? "Authorization: Bearer " : "",
                 over[i].token ? client : "", over[i].token ? "\r\n" : "");
        int fd = -1;
        if (strcmp(over[i].status, "HTTP/1.1 413") == 0) {
            /* Its credentials pass: the body is read (sent here) and dropped first. */
            fd = th_tcp_open(&srv);
            char *body = calloc(1, 2000000);
            memset(body, 'a', 2000000);
            CHECK(send(fd, req, strlen(req), MSG_NOSIGNAL) == (ssize_t)strlen(req));
            size_t off = 0;
            while (off < 2000000) {
                ssize_t k = send(fd, body + off, 2000000 - off, MSG_NOSIGNAL);
                if (k <= 0) break;
                off += (size_t)k;
            }
            free(body);
            CHECK(off == 2000000);
            read_reply(fd, out, sizeof out);
            close(fd);
        } else {
            raw_send_read(req, out, sizeof out, NULL);
        }
        if (strncmp(out, over[i].status, strlen(over[i].status)) != 0)
            th_fail(__FILE__, __LINE__,
                    "POST %s, 2,000,000 bytes announced: want '%s', got '%.200s'", over[i].path,
                    over[i].status, out);
    }
    CHECK(sec_log_has(&srv, "auth: 401 POST /v1/tasks from 127.0.0.1, token '-'"));
    CHECK_INT(task_count(), before);
}

/* A token the route admits: `100 Continue`, then the body is read and served. */
static void test_valid_token_body_served(void) {
    long before = task_count();
    const char *body = "{\"type\":\"after-continue\",\"namespace\":\"acme\"}";
    char req[1024], out[4096];
    snprintf(req, sizeof req,
             "POST /v1/tasks HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
             "Authorization: Bearer %s\r\nContent-Length: %zu\r\nExpect: 100-continue\r\n\r\n",
             client, strlen(body));
    int fd = -1;
    raw_send_read(req, out, sizeof out, &fd);
    CHECK(fd >= 0);
    bool cont = strncmp(out, "HTTP/1.1 100", 12) == 0;
    if (!cont) printf("    got: %.300s\n", out);
    if (cont) {
        send(fd, body, strlen(body), MSG_NOSIGNAL);
        read_reply(fd, out, sizeof out);
    }
    if (fd >= 0) close(fd);
    CHECK(cont);
    CHECK(strncmp(out, "HTTP/1.1 201", 12) == 0);
    CHECK(strstr(out, "after-continue") != NULL);
    CHECK_INT(task_count(), before + 1);
    /* And through libcurl, a body past the fast path's 64 KiB. */
    char big[80 * 1024];
    int n = snprintf(big, sizeof big, "{\"type\":\"big\",\"params\":{\"pad\":\"");
    memset(big + n, 'a', 70 * 1024);
    snprintf(big + n + 70 * 1024, sizeof big - (size_t)n - 70 * 1024, "\"}}");
    struct th_resp *r = sec_http(&srv, client, "POST", "/v1/tasks", big);
    CHECK_INT(r->status, 201);
    CHECK_INT(task_count(), before + 2);
}

/* Sends a head announcing `len` bytes and `send_len` of them (a form of
 * 'a's) on a new connection; the fd. */
static int public_body_open(struct th_server *s, const char *path, const char *type, size_t len,
                            size_t send_len) {
    int fd = th_tcp_open(s);
    if (fd < 0) return -1;
    char head[512];
    int n = snprintf(head, sizeof head,
                     "POST %s HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: %s\r\n"
                     "Content-Length: %zu\r\n\r\n",
                     path, type, len);
    char *body = malloc(send_len + 1);
    memset(body, 'a', send_len);
    bool ok = send(fd, head, (size_t)n, MSG_NOSIGNAL) == n;
    for (size_t off = 0; ok && off < send_len;) {
        ssize_t k = send(fd, body + off, send_len - off, MSG_NOSIGNAL);
        ok = k > 0;
        if (ok) off += (size_t)k;
    }
    free(body);
    if (!ok) {
        close(fd);
        return -1;
    }
    return fd;
}

/* The routes whose credentials are in their body (SailPoint's /oauth/token,
 * Scene7's SOAP service) read it before any check: the bytes all such
 * bodies hold at once are bounded (--max-public-body-bytes); past it a
 * request is refused with 503 and Retry-After in its API's shape, and
 * once the bodies in progress end, such requests are served again. */
static void test_public_bodies_bounded(void) {
    struct th_server s;
    CHECK(th_server_start(&s, "--max-public-body-bytes", "1048576", NULL) == 0);
    const char *form = "application/x-www-form-urlencoded";
    int a = public_body_open(&s, "/oauth/token", form, 900000, 800000);
    CHECK(a >= 0);
    WAIT_UNTIL(th_metric(&s, "taskmill_public_body_bytes") >= 800000, 20000,
               "the server to hold the first body's 800,000 bytes");
    char out[8192];
    int b = public_body_open(&s, "/oauth/token", form, 400000, 400000);
    CHECK(b >= 0);
    read_reply(b, out, sizeof out);
    close(b);
    CHECK(strncmp(out, "HTTP/1.1 503", 12) == 0);
    CHECK(strcasestr(out, "\r\nRetry-After: 1\r\n") != NULL);
    CHECK(strstr(out, "\"error\"") != NULL); /* RFC 6749's shape */
    CHECK(strstr(out, "--max-public-body-bytes") != NULL);
    int c = public_body_open(&s, "/scene7/services/IpsApiService", "text/xml", 400000, 400000);
    CHECK(c >= 0);
    read_reply(c, out, sizeof out);
    close(c);
    printf("SOAP: %.*s\n", (int)strcspn(out, "\r"), out);
    CHECK(strstr(out, "Fault") != NULL); /* a SOAP fault */
    CHECK(strstr(out, "--max-public-body-bytes") != NULL);
    CHECK(th_metric(&s, "taskmill_public_body_refused_total") >= 2);
    /* The first body ends (its client goes): its bytes are given back,
     * and the next is read and answered by its route. */
    close(a);
    WAIT_UNTIL(th_metric(&s, "taskmill_public_body_bytes") == 0, 20000,
               "the first body's bytes to be given back");
    b = public_body_open(&s, "/oauth/token", form, 400000, 400000);
    CHECK(b >= 0);
    read_reply(b, out, sizeof out);
    close(b);
    CHECK(strncmp(out, "HTTP/1.1 4", 10) == 0); /* not a grant, and not 503 */
    CHECK(strstr(out, "\"error\"") != NULL);
    CHECK(!strstr(out, "--max-public-body-bytes"));
    /* given back as the request ends, just after its reply went */
    WAIT_UNTIL(th_metric(&s, "taskmill_public_body_bytes") == 0, 20000,
               "the last body's bytes to be given back");
    th_server_free(&s);
}

/* A body that takes longer than a second after its head: its token is
 * checked again once the body is in. Revoked meanwhile, the request is
 * 401 and stores nothing; still valid, it is served. libmicrohttpd's
 * path, where the head's check comes before the body (the fast path
 * checks a request once it is whole). */
static void test_revoked_during_body(void) {
    struct th_server m;
    CHECK(th_server_start(&m, "--no-fast-path", NULL) == 0);
    char adm[128], cli[128], cli_id[32], id[32];
    CHECK(sec_token(&m, "admin", "default", "", adm, id) == 0);
    CHECK(sec_token(&m, "client", "acme", "", cli, cli_id) == 0);
    for (int revoke = 0; revoke < 2; revoke++) {
        char body[128], head[512], out[4096];
        snprintf(body, sizeof body, "{\"type\":\"slow-body\",\"name\":\"revoke-%d\"}", revoke);
        size_t half = strlen(body) / 2;
        int n = snprintf(head, sizeof head,
                         "POST /v1/tasks HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: "
                         "application/json\r\nAuthorization: Bearer %s\r\nContent-Length: "
                         "%zu\r\n\r\n%.*s",
                         cli, strlen(body), (int)half, body);
        int fd = th_tcp_open(&m);
        CHECK(fd >= 0);
        CHECK(send(fd, head, (size_t)n, MSG_NOSIGNAL) == n);
        if (revoke)
            CHECK_INT(sec_cli(out, sizeof out, "%s token revoke %s --store '%s' 2>&1", sec_bin(),
                              cli_id, m.store),
                      0);
        th_sleep_ms(1200); /* past the second a head's check is kept */
        CHECK(send(fd, body + half, strlen(body) - half, MSG_NOSIGNAL) ==
              (ssize_t)(strlen(body) - half));
        read_reply(fd, out, sizeof out);
        close(fd);
        if (revoke) {
            CHECK(strncmp(out, "HTTP/1.1 401", 12) == 0);
            CHECK(strstr(out, "unauthenticated") != NULL);
        } else {
            CHECK(strncmp(out, "HTTP/1.1 201", 12) == 0);
        }
        struct th_resp *r = sec_http(&m, adm, "GET", "/v1/tasks?type=slow-body&limit=10", NULL);
        CHECK_INT(r->status, 200);
        CHECK_INT((long)json_array_size(th_get(r->json, "tasks")), 1); /* the first only */
    }
    CHECK(sec_log_has(&m, "revoked"));
    th_server_free(&m);
}

static const struct th_test tests[] = {
    {"no token, a wrong one or another role's: refused before the body is read",
     test_refused_before_the_body},
    {"a token the route admits: 100 Continue, and its body served", test_valid_token_body_served},
    {"bodies read before their credentials are bounded together (--max-public-body-bytes)",
     test_public_bodies_bounded},
    {"a token revoked while its request's body comes: 401, nothing stored",
     test_revoked_during_body},
    {NULL, NULL},
};

int main(int argc, char **argv) {
    char id[32];
    if (th_server_start(&srv, NULL) || sec_token(&srv, "admin", "default", "", admin, id) ||
        sec_token(&srv, "client", "acme", "", client, id) ||
        sec_token(&srv, "reader", "acme", "", reader, id_unused)) /* its id, for a wrong secret */
        th_fail(__FILE__, __LINE__, "server or tokens did not start");
    int rc = th_main(tests, argc, argv);
    th_server_free(&srv);
    return rc || th_failed();
}
