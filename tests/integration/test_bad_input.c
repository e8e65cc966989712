/*
 * Bad input over HTTP: each refusal has the right status, the DESIGN.md
 * error shape naming the field, and changes nothing stored (the full list
 * of tasks, versions included, is the same before and after).
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

static struct th_server srv;
static char *pending_id, *running_id, *running_token, *done_id;

/* Everything stored, as text. */
static char *snapshot(void) {
    struct th_resp *r = th_http(&srv, "GET", "/v1/tasks?limit=1000", NULL);
    return strdup(r->body);
}

/* Sends a request and checks the refusal; `field` NULL means no field expected. */
static void refused(int line, const char *method, const char *path, const char *body,
                    const char *content_type, long status, const char *code, const char *field) {
    char *before = snapshot();
    char ct[128];
    snprintf(ct, sizeof ct, "Content-Type: %s", content_type ? content_type : "application/json");
    const char *const headers[] = {ct, NULL};
    struct th_resp *r = th_http_raw(&srv, method, path, body, body ? strlen(body) : 0, headers);
    if (r->status != status)
        th_fail(__FILE__, line, "%s %s: status %ld, want %ld: %.200s", method, path, r->status,
                status, r->body);
    else if (!th_str(r->json, "error.code") || strcmp(th_str(r->json, "error.code"), code) != 0)
        th_fail(__FILE__, line, "%s %s: code '%s', want '%s'", method, path,
                th_str(r->json, "error.code"), code);
    else if (!th_str(r->json, "error.message") || !*th_str(r->json, "error.message"))
        th_fail(__FILE__, line, "%s %s: no message", method, path);
    else if (field && (!th_str(r->json, "error.field") ||
                       strcmp(th_str(r->json, "error.field"), field) != 0))
        th_fail(__FILE__, line, "%s %s: field '%s', want '%s'", method, path,
                th_str(r->json, "error.field"), field);
    char *after = snapshot();
    if (strcmp(before, after) != 0)
        th_fail(__FILE__, line, "%s %s changed stored data", method, path);
    free(before);
    free(after);
}

#define REFUSED(m, p, b, st, code, field) refused(__LINE__, m, p, b, NULL, st, code, field)
#define REFUSED_CT(ct)                                                                            \
    refused(__LINE__, "POST", "/v1/tasks", "{\"type\":\"x\"}", ct, 415, "unsupported_media_type", \
            "Content-Type")

static char tpath_buf[256];
static const char *tpath(const char *id, const char *suffix) {
    snprintf(tpath_buf, sizeof tpath_buf, "/v1/tasks/%s%s", id, suffix);
    return tpath_buf;
}

static void test_malformed_json(void) {
    REFUSED("POST", "/v1/tasks", "{\"type\":", 400, "malformed_json", NULL);
    REFUSED("POST", "/v1/tasks", "{\"type\":\"x\"} trailing", 400, "malformed_json", NULL);
    REFUSED("POST", "/v1/tasks", "[{\"type\":\"x\"}]", 400, "malformed_json", NULL);
    REFUSED("POST", "/v1/tasks", "{\"type\":\"x\",\"type\":\"y\"}", 400, "malformed_json", NULL);
    REFUSED("POST", "/v1/tasks", "{\"type\":\"\xff\xfe\"}", 400, "malformed_json", NULL);
    REFUSED("POST", "/v1/tasks", "{\"type\":\"a\\u0000b\"}", 400, "malformed_json", NULL);
    REFUSED("POST", "/v1/tasks", "{\"type\":\"x\",\"priority\":99999999999999999999999}", 400,
            "malformed_json", NULL);
    REFUSED("POST", "/v1/tasks", "", 400, "malformed_json", NULL);
    REFUSED("POST", tpath(running_id, "/heartbeat"), "{lease_token:1}", 400, "malformed_json",
            NULL);
}

static void test_wrong_types_and_unknown_fields(void) {
    REFUSED("POST", "/v1/tasks", "{\"type\":5}", 400, "invalid_argument", "type");
    REFUSED("POST", "/v1/tasks", "{\"name\":\"no type\"}", 400, "invalid_argument", "type");
    REFUSED("POST", "/v1/tasks", "{\"type\":\"x\",\"priority\":\"1\"}", 400, "invalid_argument",
            "priority");
    REFUSED("POST", "/v1/tasks", "{\"type\":\"x\",\"params\":\"a=b\"}", 400, "invalid_argument",
            "params");
    REFUSED("POST", "/v1/tasks", "{\"type\":\"x\",\"queue\":\"has space\"}", 400,
            "invalid_argument", "queue");
    REFUSED("POST", "/v1/tasks", "{\"type\":\"x\",\"retries\":3}", 400, "invalid_argument",
            "retries");
    REFUSED("POST", "/v1/tasks", "{\"type\":\"x\",\"scheduled_at\":\"soon\"}", 400,
            "invalid_argument", "scheduled_at");
    /* Dates outside 1970..9999 UTC, also when the offset carries them over. */
    REFUSED("POST", "/v1/tasks", "{\"type\":\"x\",\"scheduled_at\":\"0000-01-01T00:00:00Z\"}", 400,
            "invalid_argument", "scheduled_at");
    REFUSED("POST", "/v1/tasks", "{\"type\":\"x\",\"scheduled_at\":\"1969-12-31T23:59:59Z\"}", 400,
            "invalid_argument", "scheduled_at");
    REFUSED("POST", "/v1/tasks", "{\"type\":\"x\",\"scheduled_at\":\"9999-12-31T23:30:00-01:00\"}",
            400, "invalid_argument", "scheduled_at");
    REFUSED("GET", "/v1/tasks?created_after=0001-01-01T00:00:00Z", NULL, 400, "invalid_argument",
            "created_after");
    REFUSED("POST", "/v1/tasks/batch", "{\"tasks\":{}}", 400, "invalid_argument", "tasks");
    REFUSED("POST", "/v1/tasks/batch", "{\"tasks\":[],\"x\":1}", 400, "invalid_argument", "x");
    REFUSED("POST", "/v1/tasks/batch", "{\"tasks\":[]}", 400, "invalid_argument", "tasks");
    char body[256];
    snprintf(body, sizeof body, "{\"lease_token\":\"%s\",\"progress\":{\"ratio\":\"half\"}}",
             running_token);
    REFUSED("POST", tpath(running_id, "/heartbeat"), body, 400, "invalid_argument",
            "progress.ratio");
    snprintf(body, sizeof body, "{\"lease_token\":\"%s\",\"progress\":{\"ratio\":2}}",
             running_token);
    REFUSED("POST", tpath(running_id, "/heartbeat"), body, 400, "invalid_argument",
            "progress.ratio");
    snprintf(body, sizeof body,
             "{\"lease_token\":\"%s\",\"messages\":[{\"level\":\"LOUD\",\"text\":\"x\"}]}",
             running_token);
    REFUSED("POST", tpath(running_id, "/heartbeat"), body, 400, "invalid_argument",
            "messages[0].level");
    snprintf(body, sizeof body, "{\"lease_token\":\"%s\",\"speed\":3}", running_token);
    REFUSED("POST", tpath(running_id, "/heartbeat"), body, 400, "invalid_argument", "speed");
    REFUSED("POST", tpath(running_id, "/fail"), "{\"lease_token\":\"x\"}", 400, "invalid_argument",
            "error");
    REFUSED("POST", tpath(pending_id, "/cancel"), "{\"reason\":\"x\"}", 400, "invalid_argument",
            "reason");
    REFUSED("POST", "/v1/queues/default/claim", "{}", 400, "invalid_argument", "worker");
    REFUSED("POST", "/v1/queues/default/claim", "{\"worker\":\"w\",\"types\":\"a\"}", 400,
            "invalid_argument", "types");
    /* An entry is named by its index, as tasks[0] of a batch is. */
    REFUSED("POST", "/v1/queues/default/claim", "{\"worker\":\"w\",\"types\":[\"a\",\"\"]}", 400,
            "invalid_argument", "types[1]");
    REFUSED("POST", "/v1/queues/default/claims", "{\"worker\":\"w\",\"max\":2,\"types\":[7]}", 400,
            "invalid_argument", "types[0]");
    REFUSED("POST", "/v1/queues/default/claim", "{\"worker\":\"w\",\"wait_seconds\":3600}", 400,
            "invalid_argument", "wait_seconds");
    REFUSED("POST", "/v1/queues/default/claim", "{\"worker\":\"w\",\"lease_seconds\":0}", 400,
            "invalid_argument", "lease_seconds");
    REFUSED("POST", "/v1/queues/bad%20queue/claim", "{\"worker\":\"w\"}", 400, "invalid_argument",
            "queue");
}

static void test_sizes(void) {
    size_t n = 1024 * 1024 + 10;
    char *big = malloc(n + 64);
    memset(big, 'a', n + 64);
    memcpy(big, "{\"type\":\"x\",\"name\":\"", 20);
    memcpy(big + n + 20, "\"}", 3);
    REFUSED("POST", "/v1/tasks", big, 413, "payload_too_large", NULL);
    free(big);
    char deep[256] = "{\"type\":\"x\",\"params\":";
    for (int i = 0; i < 40; i++)
        strcat(deep, "[");
    for (int i = 0; i < 40; i++)
        strcat(deep, "]");
    strcat(deep, "}");
    REFUSED("POST", "/v1/tasks", deep, 400, "invalid_argument", NULL);
    char longname[600] = "{\"type\":\"x\",\"name\":\"";
    for (int i = 0; i < 300; i++)
        strcat(longname, "n");
    strcat(longname, "\"}");
    REFUSED("POST", "/v1/tasks", longname, 400, "invalid_argument", "name");
}

static void test_unknown_ids(void) {
    const char *ghost = "0123456789abcdef0123456789abcdef";
    REFUSED("GET", tpath(ghost, ""), NULL, 404, "not_found", NULL);
    REFUSED("GET", tpath("not-an-id", ""), NULL, 404, "not_found", NULL);
    REFUSED("DELETE", tpath(ghost, ""), NULL, 404, "not_found", NULL);
    REFUSED("POST", tpath(ghost, "/cancel"), NULL, 404, "not_found", NULL);
    REFUSED("POST", tpath(ghost, "/retry"), NULL, 404, "not_found", NULL);
    REFUSED("POST", tpath(ghost, "/heartbeat"), "{\"lease_token\":\"x\"}", 404, "not_found", NULL);
    REFUSED("POST", tpath(ghost, "/complete"), "{\"lease_token\":\"x\"}", 404, "not_found", NULL);
    REFUSED("GET", "/v1/nothing-here", NULL, 404, "not_found", NULL);
    /* A message quotes at most 64 bytes of the id, which here cuts its last
     * character in two: the body is still UTF-8 (jansson reads it), the cut
     * byte a '?'. */
    char cut[200];
    snprintf(cut, sizeof cut, "/v1/tasks/%.63s%%C3%%A9",
             "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa");
    struct th_resp *r = th_http(&srv, "GET", cut, NULL);
    CHECK_INT(r->status, 404);
    CHECK(r->json != NULL);
    CHECK(strstr(th_str(r->json, "error.message"), "aaa?'") != NULL);
}

/* The longest run of c in s. */
static size_t run_of(const char *s, char c) {
    size_t best = 0, n = 0;
    for (; *s; s++) {
        n = *s == c ? n + 1 : 0;
        if (n > best) best = n;
    }
    return best;
}

/*
 * A message quotes at most 64 bytes of what was sent, whatever the
 * refusal: an unknown query parameter, a value, a route, a body's key,
 * and in a view's own shape. A name longer than `field` holds (63 bytes)
 * is left out of it, not cut: a cut name names nothing that was sent.
 */
static void test_quotes_are_bounded(void) {
    char q[201], path[512], body[512];
    memset(q, 'q', 200);
    q[200] = '\0';
    struct {
        const char *method;
        char path[300], body[300];
        long status;
        const char *field; /* NULL: left out */
    } c[5] = {
        {"GET", "", "", 400, NULL}, {"GET", "", "", 400, "phase"},
        {"GET", "", "", 404, NULL}, {"POST", "/v1/tasks", "", 400, NULL},
        {"GET", "", "", 400, NULL},
    };
    snprintf(c[0].path, sizeof c[0].path, "/v1/tasks?%s=1", q);
    snprintf(c[1].path, sizeof c[1].path, "/v1/tasks?phase=%s", q);
    snprintf(c[2].path, sizeof c[2].path, "/v1/%s", q);
    snprintf(c[3].body, sizeof c[3].body, "{\"type\":\"x\",\"%s\":1}", q);
    snprintf(c[4].path, sizeof c[4].path, "/beta/task-status?sorters=%s", q);
    char *before = snapshot();
    for (int i = 0; i < 5; i++) {
        snprintf(path, sizeof path, "%s", c[i].path);
        snprintf(body, sizeof body, "%s", c[i].body);
        const char *const headers[] = {"Content-Type: application/json", NULL};
        struct th_resp *r =
            th_http_raw(&srv, c[i].method, path, *body ? body : NULL, strlen(body), headers);
        size_t run = run_of(r->body, 'q');
        if (r->status != c[i].status || run < 32 || run > 64)
            th_fail(__FILE__, __LINE__, "case %d: %ld, quotes %zu bytes: %.300s", i, r->status, run,
                    r->body);
        if (i == 4) continue; /* SailPoint's shape has no field */
        const char *field = r->json ? th_str(r->json, "error.field") : NULL;
        if (c[i].field ? !field || strcmp(field, c[i].field) != 0 : field != NULL)
            th_fail(__FILE__, __LINE__, "case %d: field '%s', want '%s'", i, field ? field : "",
                    c[i].field ? c[i].field : "(none)");
    }
    char *after = snapshot();
    CHECK_STR(after, before);
    free(before);
    free(after);
}

static void test_illegal_transitions(void) {
    REFUSED("POST", tpath(done_id, "/cancel"), NULL, 409, "conflict", NULL);
    REFUSED("POST", tpath(done_id, "/retry"), NULL, 409, "conflict", NULL);
    REFUSED("POST", tpath(done_id, "/pause"), NULL, 409, "conflict", NULL);
    REFUSED("POST", tpath(pending_id, "/retry"), NULL, 409, "conflict", NULL);
    REFUSED("DELETE", tpath(pending_id, ""), NULL, 409, "conflict", NULL);
    REFUSED("DELETE", tpath(running_id, ""), NULL, 409, "conflict", NULL);
    REFUSED("POST", tpath(pending_id, "/complete"), "{\"lease_token\":\"x\"}", 409, "conflict",
            NULL);
    REFUSED("POST", tpath(done_id, "/heartbeat"), "{\"lease_token\":\"x\"}", 409, "conflict", NULL);
}

static void test_stale_lease(void) {
    const char *stale = "ffffffffffffffffffffffffffffffff";
    char body[128];
    snprintf(body, sizeof body, "{\"lease_token\":\"%s\"}", stale);
    REFUSED("POST", tpath(running_id, "/heartbeat"), body, 409, "lease_mismatch", "lease_token");
    REFUSED("POST", tpath(running_id, "/complete"), body, 409, "lease_mismatch", "lease_token");
    snprintf(body, sizeof body, "{\"lease_token\":\"%s\",\"error\":\"x\"}", stale);
    REFUSED("POST", tpath(running_id, "/fail"), body, 409, "lease_mismatch", "lease_token");
    snprintf(body, sizeof body,
             "{\"lease_token\":\"%s\",\"progress\":{\"ratio\":0.5},\"items\":[{\"name\":\"a\"}]}",
             stale);
    REFUSED("POST", tpath(running_id, "/heartbeat"), body, 409, "lease_mismatch", "lease_token");
}

static void test_bad_query_parameters(void) {
    REFUSED("GET", "/v1/tasks?limit=abc", NULL, 400, "invalid_argument", "limit");
    REFUSED("GET", "/v1/tasks?limit=100000", NULL, 400, "invalid_argument", "limit");
    REFUSED("GET", "/v1/tasks?phase=sleeping", NULL, 400, "invalid_argument", "phase");
    REFUSED("GET", "/v1/tasks?cursor=zzz", NULL, 400, "invalid_argument", "cursor");
    REFUSED("GET", "/v1/tasks?created_after=last-week", NULL, 400, "invalid_argument",
            "created_after");
    REFUSED("GET", "/v1/tasks?order=up", NULL, 400, "invalid_argument", "order");
    REFUSED("GET", "/v1/tasks?colour=red", NULL, 400, "invalid_argument", "colour");
    REFUSED("GET", "/v1/tasks?parent_id=x", NULL, 400, "invalid_argument", "parent_id");
    char p[128];
    snprintf(p, sizeof p, "/v1/tasks/%s?wait=-1", pending_id);
    REFUSED("GET", p, NULL, 400, "invalid_argument", "wait");
    snprintf(p, sizeof p, "/v1/tasks/%s?wait=5&version=abc", pending_id);
    REFUSED("GET", p, NULL, 400, "invalid_argument", "version");
}

/* Whether an Allow field's value names exactly the methods of want (both
 * "A, B" lists; the order is the server's routes', which says nothing). */
static bool same_methods(const char *got, const char *want) {
    size_t n = 0;
    for (const char *w = want; *w; n++) {
        size_t m = strcspn(w, ",");
        char one[16];
        snprintf(one, sizeof one, "%.*s", (int)m, w);
        bool found = false;
        for (const char *g = got; *g && !found;) {
            size_t k = strcspn(g, ",");
            found = k == m && strncmp(g, one, m) == 0;
            g += k;
            g += strspn(g, ", ");
        }
        if (!found) return false;
        w += m;
        w += strspn(w, ", ");
    }
    size_t ng = 0;
    for (const char *g = got; *g; ng++) {
        g += strcspn(g, ",");
        g += strspn(g, ", ");
    }
    return ng == n;
}

static void test_media_type_method_idempotency_header(void) {
    refused(__LINE__, "POST", "/v1/tasks", "<task/>", "application/xml", 415,
            "unsupported_media_type", "Content-Type");
    REFUSED("PUT", "/v1/tasks", "{\"type\":\"x\"}", 405, "method_not_allowed", NULL);
    REFUSED("PATCH", tpath(pending_id, ""), "{}", 405, "method_not_allowed", NULL);
    /* A 405 says which methods the path takes (RFC 9110 15.5.6). */
    static const struct {
        const char *method, *path, *allow;
    } allow[] = {
        {"PUT", "/v1/tasks", "GET, HEAD, POST"},
        {"DELETE", "/v1/queues", "GET, HEAD"},
        {"POST", "/healthz", "GET, HEAD"},
        {"GET", "/v1/queues/default/pause", "POST"},
        {"PUT", "/scene7/services/IpsApiService", "GET, HEAD, POST"},
        {"GET", "/scene7/services/IpsApiService", "GET, HEAD, POST"}, /* the view's own 405 */
    };
    for (size_t i = 0; i < sizeof allow / sizeof allow[0]; i++) {
        struct th_resp *r = th_http(&srv, allow[i].method, allow[i].path, NULL);
        char v[128] = "";
        CHECK_INT(r->status, 405);
        CHECK(th_resp_header(r, "Allow", v, sizeof v));
        if (!same_methods(v, allow[i].allow))
            th_fail(__FILE__, __LINE__, "%s %s: Allow '%s', want '%s'", allow[i].method,
                    allow[i].path, v, allow[i].allow);
    }
    char p[256], v[128] = "";
    snprintf(p, sizeof p, "/v1/tasks/%s", pending_id);
    struct th_resp *a = th_http(&srv, "PATCH", p, NULL);
    CHECK(th_resp_header(a, "Allow", v, sizeof v));
    CHECK(same_methods(v, "GET, HEAD, DELETE"));
    char key[400] = "Idempotency-Key: ";
    for (int i = 0; i < 300; i++)
        strcat(key, "k");
    const char *const headers[] = {"Content-Type: application/json", key, NULL};
    struct th_resp *r = th_http_raw(&srv, "POST", "/v1/tasks", "{\"type\":\"x\"}", 12, headers);
    CHECK_INT(r->status, 400);
    CHECK_STR(th_str(r->json, "error.field"), "Idempotency-Key");
}

/* A new connection to the server, or -1. */
static int raw_connect(void) {
    int port = atoi(strrchr(srv.url, ':') + 1);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    if (fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof a)) {
        close(fd);
        fd = -1;
    }
    return fd;
}

/* Reads fd's reply (status line, fields and a JSON body) into out, waiting
 * up to wait_ms for each part, and closes fd; "" when none came. */
static void raw_reply(int fd, char *out, size_t n, int wait_ms) {
    size_t got = 0;
    struct pollfd p = {.fd = fd, .events = POLLIN};
    while (got + 1 < n && poll(&p, 1, wait_ms) > 0) {
        ssize_t k = recv(fd, out + got, n - 1 - got, 0);
        if (k <= 0) break;
        got += (size_t)k;
        out[got] = '\0';
        if (strstr(out, "\r\n\r\n") && strstr(out, "}}")) break;
    }
    close(fd);
}

/* Sends raw bytes on a new connection; the reply's status line and body, or "" when closed. */
static void raw_exchange(const char *req, size_t len, char *out, size_t n) {
    out[0] = '\0';
    int fd = raw_connect();
    if (fd < 0) return;
    send(fd, req, len, MSG_NOSIGNAL);
    raw_reply(fd, out, n, 5000);
}

/* A raw request's refusal: its status, JSON error code and field, nothing stored. */
static void raw_refused(int line, const char *req, const char *status, const char *code,
                        const char *field) {
    char *before = snapshot();
    char out[4096];
    raw_exchange(req, strlen(req), out, sizeof out);
    char want[96];
    snprintf(want, sizeof want, "\"field\":\"%s\"", field ? field : "");
    if (strncmp(out, status, strlen(status)) != 0 || !strstr(out, code) ||
        (field && !strstr(out, want)) || strstr(out, "100 Continue"))
        th_fail(__FILE__, line, "%.60s...: got '%.300s'", req, out);
    char *after = snapshot();
    if (strcmp(before, after) != 0) th_fail(__FILE__, line, "%.60s changed stored data", req);
    free(before);
    free(after);
}

/*
 * A client that sends a too-large body whole without waiting for an
 * answer (no Expect) gets its 413 after the body: the server reads and
 * drops it first. It closed at once, and the body's bytes arriving on the
 * closed socket got a reset back, so such a client (curl without Expect)
 * saw its send fail, not the 413. Far past the cap (more than four times)
 * the 413 still comes at once, the body unread. n: the Content-Length;
 * body: whether it is sent, 300 ms after the head (the old server had
 * answered and closed by then). Returns the reply, "" when none came; *sent
 * says whether every byte of the body went.
 */
static void oversize_exchange(size_t n, bool body, char *out, size_t cap, bool *sent) {
    out[0] = '\0';
    *sent = false;
    int fd = raw_connect();
    if (fd < 0) return;
    char head[256];
    int hl = snprintf(head, sizeof head,
                      "POST /v1/tasks HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: "
                      "application/json\r\nContent-Length: %zu\r\n\r\n",
                      n);
    bool ok = send(fd, head, (size_t)hl, MSG_NOSIGNAL) == hl;
    if (ok && body) {
        th_sleep_ms(300);
        char *b = malloc(n);
        memset(b, 'a', n);
        size_t off = 0;
        while (off < n) {
            ssize_t k = send(fd, b + off, n - off, MSG_NOSIGNAL);
            if (k <= 0) break;
            off += (size_t)k;
        }
        free(b);
        ok = off == n;
    }
    *sent = ok;
    raw_reply(fd, out, cap, 10000);
}

static void test_oversize_body_sent_whole(void) {
    char *before = snapshot();
    char out[4096];
    bool sent;
    oversize_exchange(1024 * 1024 + 10, true, out, sizeof out, &sent);
    CHECK(sent); /* the old server reset it: EPIPE or ECONNRESET */
    if (strncmp(out, "HTTP/1.1 413", 12) != 0 || !strstr(out, "payload_too_large"))
        th_fail(__FILE__, __LINE__, "1 MiB + 10 sent whole: got '%.200s'", out);
    /* Far past the cap: at once, with no body sent. */
    oversize_exchange(64u << 20, false, out, sizeof out, &sent);
    if (strncmp(out, "HTTP/1.1 413", 12) != 0 || !strstr(out, "payload_too_large"))
        th_fail(__FILE__, __LINE__, "64 MiB announced: got '%.200s'", out);
    char *after = snapshot();
    CHECK_STR(after, before);
    free(before);
    free(after);
}

static void test_http_edges(void) {
    /* An oversize Content-Length is 413 at once: no 100 Continue, no body read. */
    raw_refused(__LINE__,
                "POST /v1/tasks HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                "Content-Length: 99999999\r\nExpect: 100-continue\r\n\r\n",
                "HTTP/1.1 413", "payload_too_large", NULL);
    raw_refused(__LINE__,
                "POST /v1/tasks HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                "Transfer-Encoding: gzip\r\n\r\nabc",
                "HTTP/1.1 400", "invalid_argument", "Transfer-Encoding");
    raw_refused(__LINE__,
                "POST /v1/tasks HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                "Content-Length: 5\r\nContent-Length: 12\r\n\r\n{\"type\":\"x\"}",
                "HTTP/1.1 400", "invalid_argument", "Content-Length");
    raw_refused(__LINE__,
                "POST /v1/tasks HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                "Transfer-Encoding: chunked\r\nContent-Length: 12\r\n\r\n0\r\n\r\n",
                "HTTP/1.1 400", "invalid_argument", "Content-Length");
    raw_refused(__LINE__, "GET /v1/tasks/%00abc HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
                "HTTP/1.1 400", "invalid_argument", "path");
    /* A Content-Type that is not exactly JSON in UTF-8. */
    REFUSED_CT("application/jsonx");
    REFUSED_CT("application/json; charset=latin1");
    REFUSED_CT("text/json");
    /* A parameter shorter than "charset=": nothing past it is read. The
     * raw request puts it in the head's last line, where a read past the
     * value runs off the fast path's copy of the head (AddressSanitizer). */
    REFUSED_CT("application/json;x");
    raw_refused(__LINE__,
                "POST /v1/tasks HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 12\r\n"
                "Content-Type: application/json;x\r\n\r\n{\"type\":\"x\"}",
                "HTTP/1.1 415", "unsupported_media_type", "Content-Type");
    const char *const ok_ct[] = {"Content-Type: Application/JSON; charset=\"UTF-8\"", NULL};
    struct th_resp *r =
        th_http_raw(&srv, "GET", "/v1/tasks?limit=1", NULL, 0, ok_ct); /* no body: not looked at */
    CHECK_INT(r->status, 200);
    /* A garbage request line gets no reply: the connection is closed (documented). */
    char out[256];
    raw_exchange("GARBAGE\r\n\r\n", 11, out, sizeof out);
    CHECK(strncmp(out, "HTTP/1.1 2", 10) != 0);
}

/* An empty idempotency_key in a body was a key like any other: every
 * submit that sent "" got the first such task back (200). The header
 * refuses an empty key; the body field now does too. */
static void test_empty_idempotency_key(void) {
    REFUSED("POST", "/v1/tasks", "{\"type\":\"x\",\"idempotency_key\":\"\"}", 400,
            "invalid_argument", "idempotency_key");
    REFUSED("POST", "/v1/tasks/batch", "{\"tasks\":[{\"type\":\"x\",\"idempotency_key\":\"\"}]}",
            400, "invalid_argument", "tasks[0].idempotency_key");
    /* null is no key, as before */
    struct th_resp *r = th_http(&srv, "POST", "/v1/tasks",
                                "{\"type\":\"x\",\"queue\":\"idemq\",\"idempotency_key\":null}");
    CHECK_INT(r->status, 201);
}

/* An Idempotency-Key header that is not UTF-8: on PostgreSQL the key's
 * lookup failed ("invalid byte sequence"), the reply was 500 and the
 * whole group commit with it; on SQLite it was stored as a key. */
static void test_idempotency_header_not_utf8(void) {
    char *before = snapshot();
    const char *const headers[] = {"Content-Type: application/json", "Idempotency-Key: k\xff\xfe",
                                   NULL};
    struct th_resp *r = th_http_raw(&srv, "POST", "/v1/tasks", "{\"type\":\"x\"}", 12, headers);
    long status = r->status;
    const char *f = th_str(r->json, "error.field");
    bool field_ok = f && strcmp(f, "Idempotency-Key") == 0;
    char *after = snapshot();
    bool same = strcmp(before, after) == 0;
    free(before);
    free(after);
    CHECK_INT(status, 400);
    CHECK(field_ok);
    CHECK(same);
    /* Well-formed UTF-8 beyond ASCII is a key like any other. */
    const char *const ok[] = {"Content-Type: application/json", "Idempotency-Key: caf\xc3\xa9",
                              NULL};
    const char *body = "{\"type\":\"x\",\"queue\":\"utfq\"}";
    CHECK_INT(th_http_raw(&srv, "POST", "/v1/tasks", body, strlen(body), ok)->status, 201);
    CHECK_INT(th_http_raw(&srv, "POST", "/v1/tasks", body, strlen(body), ok)->status, 200);
}

/* A list filter that is not UTF-8 (%FF): PostgreSQL refused the query
 * ("invalid byte sequence"), and the reply was 500 'storage error'. */
static void test_list_filter_not_utf8(void) {
    static const char *const keys[] = {"type", "queue", "name_prefix", "q", "namespace"};
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        char path[128];
        snprintf(path, sizeof path, "/v1/tasks?%s=a%%FFb", keys[i]);
        REFUSED("GET", path, NULL, 400, "invalid_argument", keys[i]);
    }
    /* Percent-encoded UTF-8 is a value like any other. */
    CHECK_INT(th_http(&srv, "GET", "/v1/tasks?name_prefix=caf%C3%A9", NULL)->status, 200);
}

/* A retry of a task that is not failed or cancelled said "cannot move
 * from 'pending' to 'pending'": the 409 now says what a retry needs. */
static void test_retry_refusal_says_why(void) {
    REFUSED("POST", tpath(pending_id, "/retry"), NULL, 409, "conflict", NULL);
    struct th_resp *r = th_http(&srv, "POST", tpath(pending_id, "/retry"), NULL);
    CHECK(th_str(r->json, "error.message"));
    CHECK(strstr(th_str(r->json, "error.message"),
                 "is 'pending'; only failed or cancelled tasks "
                 "can be retried") != NULL);
    r = th_http(&srv, "POST", tpath(running_id, "/retry"), NULL);
    CHECK(strstr(th_str(r->json, "error.message"), "is 'running'") != NULL);
}

/* PUT /v1/queues/{queue} with a backoff_ms above the default maximum and
 * no backoff_max_ms: refused naming backoff_max_ms, which the client did
 * not send, with no word of the default that was compared. */
static void test_queue_backoff_max_default_named(void) {
    REFUSED("PUT", "/v1/queues/qbad", "{\"backoff_ms\":400000}", 400, "invalid_argument",
            "backoff_max_ms");
    struct th_resp *r = th_http(&srv, "PUT", "/v1/queues/qbad", "{\"backoff_ms\":400000}");
    const char *m = th_str(r->json, "error.message");
    CHECK(m && strstr(m, "300000, its default when left out") && strstr(m, "(400000)"));
    REFUSED("PUT", "/v1/queues/qbad", "{\"backoff_ms\":5000,\"backoff_max_ms\":10}", 400,
            "invalid_argument", "backoff_max_ms");
    r = th_http(&srv, "GET", "/v1/queues", NULL);
    CHECK(!strstr(r->body, "qbad")); /* nothing was stored */
}

/* PUT /v1/queues/{queue} "retention": each bad value is refused naming
 * its field, and nothing is stored (not even the settings beside it). */
static void test_queue_retention_refused(void) {
    static const struct {
        const char *body, *field;
    } bad[] = {
        {"{\"retention\":{\"completed_seconds\":-1}}", "retention.completed_seconds"},
        {"{\"retention\":{\"failed_seconds\":1.5}}", "retention.failed_seconds"},
        {"{\"retention\":{\"cancelled_seconds\":\"60\"}}", "retention.cancelled_seconds"},
        {"{\"retention\":{\"completed_seconds\":null}}", "retention.completed_seconds"},
        {"{\"retention\":{\"completed_seconds\":315360001}}", "retention.completed_seconds"},
        {"{\"retention\":{\"failed_seconds\":99999999999999999999}}", NULL},
        {"{\"retention\":{\"pending_seconds\":60}}", "retention.pending_seconds"},
        {"{\"retention\":{\"completed\":60}}", "retention.completed"},
        {"{\"retention\":60}", "retention"},
        {"{\"retention\":[60]}", "retention"},
        {"{\"retention\":null}", "retention"},
        {"{\"max_retries\":2,\"retention\":{\"completed_seconds\":60,"
         "\"failed_seconds\":-5}}",
         "retention.failed_seconds"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        if (bad[i].field)
            REFUSED("PUT", "/v1/queues/qret", bad[i].body, 400, "invalid_argument", bad[i].field);
        else /* beyond a 64-bit integer: the JSON parser's own refusal */
            CHECK_INT(th_http(&srv, "PUT", "/v1/queues/qret", "%s", bad[i].body)->status, 400);
    }
    struct th_resp *r = th_http(&srv, "GET", "/v1/queues", NULL);
    CHECK(!strstr(r->body, "qret")); /* nothing was stored */
    /* And a good one is stored, shown with only the phases it sets. */
    r = th_http(&srv, "PUT", "/v1/queues/qret",
                "{\"retention\":{\"completed_seconds\":0,\"failed_seconds\":315360000}}");
    CHECK_INT(r->status, 200);
    CHECK_INT(th_int(r->json, "settings.retention.completed_seconds"), 0);
    CHECK_INT(th_int(r->json, "settings.retention.failed_seconds"), 315360000);
    CHECK(th_get(r->json, "settings.retention.cancelled_seconds") == NULL);
    r = th_http(&srv, "GET", "/v1/queues", NULL);
    CHECK(strstr(r->body,
                 "\"retention\":{\"completed_seconds\":0,"
                 "\"failed_seconds\":315360000}") != NULL);
}

/* A batch whose second task names an unknown parent was refused with
 * field "parent_id": it did not say which task, as the batch's other
 * refusals do ("tasks[1].type"). */
static void test_batch_unknown_parent_names_task(void) {
    REFUSED("POST", "/v1/tasks/batch",
            "{\"tasks\":[{\"type\":\"a\"},{\"type\":\"b\",\"parent_id\":"
            "\"0123456789abcdef0123456789abcdef\"}]}",
            400, "invalid_argument", "tasks[1].parent_id");
    /* A first task that repeats an idempotency key is skipped. */
    struct th_resp *r = th_http(&srv, "POST", "/v1/tasks",
                                "{\"type\":\"a\",\"queue\":\"bp\",\"idempotency_key\":\"bp1\"}");
    CHECK(r->status == 201 || r->status == 200);
    REFUSED(
        "POST", "/v1/tasks/batch",
        "{\"tasks\":[{\"type\":\"a\",\"queue\":\"bp\",\"idempotency_key\":\"bp1\"},"
        "{\"type\":\"c\"},{\"type\":\"b\",\"parent_id\":\"0123456789abcdef0123456789abcdef\"}]}",
        400, "invalid_argument", "tasks[2].parent_id");
}

/* An entry of items, messages or returns that is not an object was
 * refused with field "items", not the entry's "items[1]" as every other
 * nested error (and a batch's "tasks[1]") names it. */
static void test_worker_entry_not_object_named(void) {
    static const char *const calls[][3] = {
        {"/heartbeat", "items", "[{\"name\":\"a\"},5]"},
        {"/heartbeat", "messages", "[{\"level\":\"INFO\",\"text\":\"t\"},\"x\"]"},
        {"/complete", "returns", "[{\"name\":\"a\",\"attribute\":\"b\"},[]]"},
    };
    for (size_t i = 0; i < sizeof calls / sizeof calls[0]; i++) {
        char body[256], field[32];
        snprintf(body, sizeof body, "{\"lease_token\":\"%s\",\"%s\":%s}", running_token,
                 calls[i][1], calls[i][2]);
        snprintf(field, sizeof field, "%s[1]", calls[i][1]);
        REFUSED("POST", tpath(running_id, calls[i][0]), body, 400, "invalid_argument", field);
    }
}

/* A path segment or a query parameter that is not UTF-8 (%FF), on any
 * route of any API: PostgreSQL refused the text ("invalid byte
 * sequence"), so a definition's or schedule's GET, PUT, DELETE, launch or
 * trigger, and a SailPoint filter, answered 500 'storage error'. Now a
 * path names nothing there is (404) and a parameter is refused by name
 * (400), in the shape of the API the path is in, on both backends. */
static void test_path_or_query_not_utf8(void) {
    char *defs = strdup(th_http(&srv, "GET", "/v1/definitions", NULL)->body);
    char *scheds = strdup(th_http(&srv, "GET", "/v1/schedules", NULL)->body);
    static const char *const calls[][3] = {
        {"GET", "/v1/definitions/a%FFb", NULL},
        {"PUT", "/v1/definitions/a%FFb", "{\"name\":\"d\",\"type\":\"t\"}"},
        {"DELETE", "/v1/definitions/a%FFb", NULL},
        {"POST", "/v1/definitions/a%FFb/launch", "{}"},
        {"GET", "/v1/schedules/a%FFb", NULL},
        {"DELETE", "/v1/schedules/a%FFb", NULL},
        {"POST", "/v1/schedules/a%FFb/trigger", "{}"},
        {"DELETE", "/v1/webhooks/a%FFb", NULL},
        {"GET", "/v1/tasks/a%FFb", NULL},
        {"POST", "/v1/tasks/a%FFb/cancel", NULL},
    };
    for (size_t i = 0; i < sizeof calls / sizeof calls[0]; i++)
        REFUSED(calls[i][0], calls[i][1], calls[i][2], 404, "not_found", NULL);
    REFUSED("GET", "/v1/definitions?cursor=%FF", NULL, 400, "invalid_argument", "cursor");
    REFUSED("GET", "/v1/tasks?x%FFy=1", NULL, 400, "invalid_argument", "x?y");
    CHECK_STR(th_http(&srv, "GET", "/v1/definitions", NULL)->body, defs);
    CHECK_STR(th_http(&srv, "GET", "/v1/schedules", NULL)->body, scheds);
    free(defs);
    free(scheds);
    /* The other APIs' shapes: SailPoint's messages, Livepeer's errors. */
    struct th_resp *r =
        th_http(&srv, "GET", "/beta/task-status?filters=type%20eq%20%22a%FFb%22", NULL);
    CHECK_INT(r->status, 400);
    CHECK_STR(th_str(r->json, "detailCode"), "400.1 Bad Request Content");
    CHECK(strstr(r->body, "'filters' must be UTF-8") != NULL);
    r = th_http(&srv, "GET", "/api/task?limit=%FF", NULL);
    CHECK_INT(r->status, 400);
    CHECK(strstr(r->body, "{\"errors\":[\"query parameter 'limit' must be UTF-8\"]}") != NULL);
    r = th_http(&srv, "GET", "/beta/task-status/a%FFb", NULL);
    CHECK_INT(r->status, 404);
    CHECK(th_str(r->json, "detailCode") != NULL);
    /* Percent-encoded UTF-8 is a name like any other. */
    CHECK_INT(th_http(&srv, "GET", "/v1/definitions/caf%C3%A9", NULL)->status, 404);
    CHECK_INT(th_http(&srv, "POST", "/v1/definitions", "{\"name\":\"caf\xc3\xa9\",\"type\":\"t\"}")
                  ->status,
              201);
    CHECK_INT(th_http(&srv, "GET", "/v1/definitions/caf%C3%A9", NULL)->status, 200);
}

/* %00 in a query's value or name: http_unescape keeps it as the three
 * characters (a NUL never cuts a value short unseen), so it was taken for
 * them: name_prefix=a%00 listed a task named "a%00x". Refused by name, in
 * each API's shape, with nothing stored. */
static void test_query_nul_refused(void) {
    CHECK_INT(th_http(&srv, "POST", "/v1/tasks", "{\"type\":\"nul\",\"name\":\"a%%00x\"}")->status,
              201);
    REFUSED("GET", "/v1/tasks?name_prefix=a%00", NULL, 400, "invalid_argument", "name_prefix");
    REFUSED("GET", "/v1/tasks?type=nul&name_prefix=%00", NULL, 400, "invalid_argument",
            "name_prefix");
    REFUSED("GET", "/v1/tasks?x%00y=1", NULL, 400, "invalid_argument", "x%00y");
    REFUSED("POST", "/v1/tasks?x=%00", "{\"type\":\"nul\"}", 400, "invalid_argument", "x");
    struct th_resp *r = th_http(&srv, "GET", "/v1/tasks?type=nul", NULL);
    CHECK_INT(json_array_size(th_get(r->json, "tasks")), 1);
    /* The views, each in its own shape. */
    r = th_http(&srv, "GET", "/beta/task-status?filters=name%20sw%20%22a%00%22", NULL);
    CHECK_INT(r->status, 400);
    CHECK_STR(th_str(r->json, "detailCode"), "400.1 Bad Request Content");
    CHECK(strstr(r->body, "'filters' must not hold a NUL byte (%00) or the text '%00'") != NULL);
    r = th_http(&srv, "GET", "/api/task?limit=1%00", NULL);
    CHECK_INT(r->status, 400);
    CHECK(strstr(r->body,
                 "{\"errors\":[\"query parameter 'limit' must not hold a NUL byte (%00) "
                 "or the text '%00'\"]}") != NULL);
    r = th_http(&srv, "GET", "/scene7/services/IpsApiService?wsdl%00", NULL);
    CHECK_INT(r->status, 400);
    CHECK(strstr(r->body, "Fault") != NULL);
    CHECK(strstr(r->body, "must not hold a NUL byte") != NULL);
    /* %2500, the text "%00", is that once unescaped: refused too, as in a
     * path (and a schedule's name). */
    REFUSED("GET", "/v1/tasks?name_prefix=a%2500", NULL, 400, "invalid_argument", "name_prefix");
}

/* A number in a query is digits after an optional '-': strtoll took
 * leading white space and a '+' ("limit= 5", "limit=+5" were 5). */
static void test_query_integers_are_digits(void) {
    static const char *const limits[] = {"%2B5", "%205", "%0A5", "5%20", "0x5", ""};
    for (size_t i = 0; i < sizeof limits / sizeof limits[0]; i++) {
        char p[128];
        snprintf(p, sizeof p, "/v1/tasks?limit=%s", limits[i]);
        REFUSED("GET", p, NULL, 400, "invalid_argument", "limit");
    }
    char p[128];
    snprintf(p, sizeof p, "/v1/tasks/%s?wait=%%2B1&version=1", pending_id);
    REFUSED("GET", p, NULL, 400, "invalid_argument", "wait");
    struct th_resp *r = th_http(&srv, "GET", "/v1/events?since=%2B3", NULL);
    CHECK_INT(r->status, 400);
    CHECK_STR(th_str(r->json, "error.field"), "since");
    CHECK_INT(th_http(&srv, "GET", "/v1/tasks?limit=5", NULL)->status, 200);
}

/* GET /v1/events with queue, type or since given twice kept the last
 * silently; the lists (phase, kind, task_id) add up, as documented. */
static void test_events_parameter_twice(void) {
    static const char *const paths[][2] = {
        {"/v1/events?queue=a&queue=b", "queue"},
        {"/v1/events?type=a&type=b", "type"},
        {"/v1/events?since=1&since=2", "since"},
    };
    for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++) {
        struct th_resp *r = th_http(&srv, "GET", paths[i][0], NULL);
        CHECK_INT(r->status, 400);
        CHECK_STR(th_str(r->json, "error.field"), paths[i][1]);
        CHECK(strstr(th_str(r->json, "error.message"), "given more than once") != NULL);
    }
}

/* A duplicate key inside a nested object was named by the key alone
 * ("a"), whatever its depth; it is named by its path, in v1's notation
 * for nested fields, on each route that reads a JSON body (the fast path's
 * and libmicrohttpd's, "?x=1" keeping a request off the fast path). */
static void test_nested_duplicate_key_named_by_path(void) {
    char hb[256], done[256], *webhooks = strdup(th_http(&srv, "GET", "/v1/webhooks", NULL)->body);
    snprintf(hb, sizeof hb,
             "{\"lease_token\":\"%s\",\"progress\":{\"message\":\"a\",\"message\":\"b\"}}",
             running_token);
    snprintf(done, sizeof done,
             "{\"lease_token\":\"%s\",\"result\":{\"out\":[0,{\"k\":1,\"k\":2}]}}", running_token);
    static const char params_dup[] = "{\"type\":\"t\",\"params\":{\"a\":1,\"a\":2}}";
    struct {
        const char *path, *body, *field;
    } cases[] = {
        {"/v1/tasks", params_dup, "params.a"},
        {"/v1/tasks?x=1", params_dup, "params.a"},
        {"/v1/tasks", "{\"type\":\"t\",\"type\":\"u\"}", "type"},
        /* Escaped, the duplicate is still named, decoded. */
        {"/v1/tasks", "{\"type\":\"t\",\"params\":{\"a\":1,\"\\u0061\":2}}", "params.a"},
        {"/v1/tasks", "{\"type\":\"t\",\"params\":{\"x\":{\"y\":[],\"y\":[]}}}", "params.x.y"},
        {"/v1/tasks/batch",
         "{\"tasks\":[{\"type\":\"t\"},{\"type\":\"t\",\"params\":{\"a\":1,\"a\":2}}]}",
         "tasks[1].params.a"},
        {tpath(running_id, "/heartbeat"), hb, "progress.message"},
        {"/v1/work/heartbeat", "{\"items\":[{\"lease_token\":\"x\",\"lease_token\":\"y\"}]}",
         "items[0].lease_token"},
        {"/v1/webhooks", "{\"url\":\"http://127.0.0.1:9/h\",\"events\":[\"a\",{\"b\":1,\"b\":2}]}",
         "events[1].b"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        REFUSED("POST", cases[i].path, cases[i].body, 400, "malformed_json", cases[i].field);
        struct th_resp *r = th_http(&srv, "POST", cases[i].path, "%s", cases[i].body);
        char quoted[80];
        snprintf(quoted, sizeof quoted, "duplicate object key '%s'", cases[i].field);
        if (!th_str(r->json, "error.message") || !strstr(th_str(r->json, "error.message"), quoted))
            th_fail(__FILE__, __LINE__, "POST %s: message '%s' does not name '%s'", cases[i].path,
                    th_str(r->json, "error.message"), cases[i].field);
    }
    /* result is complete's: it is refused before the lease is looked at. */
    REFUSED("POST", tpath(running_id, "/complete"), done, 400, "malformed_json", "result.out[1].k");
    CHECK_STR(th_http(&srv, "GET", "/v1/webhooks", NULL)->body, webhooks);
    free(webhooks);
}

/* A raw NUL byte after a number or a literal ({"priority":1<NUL>}) was
 * taken: jansson's lexer passes over it. It is not JSON: refused, on the
 * fast path and on libmicrohttpd's, with where it is. */
static void test_nul_byte_in_body_refused(void) {
    static const char *const paths[] = {"/v1/tasks", "/v1/tasks?x=1"};
    static const char bodies[][40] = {"{\"type\":\"x\",\"priority\":1\0}",
                                      "{\"type\":\"x\",\"paused\":true\0}",
                                      "{\"type\":\"x\",\"paused\":false \0}"};
    const char *const headers[] = {"Content-Type: application/json", NULL};
    for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++) {
        for (size_t k = 0; k < sizeof bodies / sizeof bodies[0]; k++) {
            char *before = snapshot();
            size_t n = strlen(bodies[k]) + 2; /* the NUL and the brace after it */
            struct th_resp *r = th_http_raw(&srv, "POST", paths[i], bodies[k], n, headers);
            if (r->status != 400 || !th_str(r->json, "error.code") ||
                strcmp(th_str(r->json, "error.code"), "malformed_json") != 0 ||
                !strstr(th_str(r->json, "error.message"), "NUL byte"))
                th_fail(__FILE__, __LINE__, "POST %s, body %zu: %ld %.200s", paths[i], k, r->status,
                        r->body);
            char *after = snapshot();
            if (strcmp(before, after) != 0)
                th_fail(__FILE__, __LINE__, "POST %s, body %zu: stored", paths[i], k);
            free(before);
            free(after);
        }
    }
    /* Where it is: line 2, column 24 (in characters, as jansson counts: "é" is one). */
    static const char where[] = "{\"type\":\"x\",\n\"name\":\"\xc3\xa9\",\"priority\":1\0}";
    struct th_resp *r = th_http_raw(&srv, "POST", "/v1/tasks", where, sizeof where - 1, headers);
    CHECK_INT(r->status, 400);
    CHECK_STR(th_str(r->json, "error.message"),
              "malformed JSON at line 2 column 24: unexpected NUL byte");
}

/* The views parse their own JSON (SailPoint's patch body, Livepeer's
 * `filters` parameter): a duplicate key is named by its path there too,
 * and a NUL after a number, which jansson passes over, is refused; in the
 * view's own error shape, nothing stored. */
static void test_views_duplicate_key_and_nul(void) {
    char path[128];
    snprintf(path, sizeof path, "/beta/task-status/%s", pending_id);
    const char *const patch_ct[] = {"Content-Type: application/json-patch+json", NULL};
    static const char dup[] =
        "[{\"op\":\"replace\",\"path\":\"/percentComplete\","
        "\"value\":{\"a\":1,\"a\":2}}]";
    static const char nul[] =
        "[{\"op\":\"replace\",\"path\":\"/percentComplete\","
        "\"value\":5\0}]";
    char *before = snapshot();
    struct th_resp *r = th_http_raw(&srv, "PATCH", path, dup, sizeof dup - 1, patch_ct);
    CHECK_INT(r->status, 400);
    CHECK(r->body && strstr(r->body, "duplicate object key '[0].value.a'"));
    CHECK(th_get(r->json, "messages") != NULL); /* SailPoint's shape */
    r = th_http_raw(&srv, "PATCH", path, nul, sizeof nul - 1, patch_ct);
    CHECK_INT(r->status, 400);
    CHECK(r->body && strstr(r->body, "NUL byte"));
    char *after = snapshot();
    CHECK_STR(after, before);
    free(before);
    free(after);
    /* [{"id":"a","value":{"gt":1,"gt":2}}] */
    r = th_http(&srv, "GET",
                "/api/task?filters=%5B%7B%22id%22%3A%22a%22%2C%22value%22%3A%7B%22gt%22%3A1%2C"
                "%22gt%22%3A2%7D%7D%5D",
                NULL);
    CHECK_INT(r->status, 400);
    CHECK(r->body && strstr(r->body, "duplicate object key '[0].value.gt'"));
    CHECK(json_is_array(th_get(r->json, "errors"))); /* Livepeer's shape */
}

static const struct th_test tests[] = {
    {"malformed JSON", test_malformed_json},
    {"wrong types and unknown fields name the field", test_wrong_types_and_unknown_fields},
    {"oversize body 413, deep nesting, long strings", test_sizes},
    {"a too-large body sent whole without waiting gets its 413 after it",
     test_oversize_body_sent_whole},
    {"unknown ids and routes are 404", test_unknown_ids},
    {"a message quotes at most 64 bytes; a name too long for field is left out",
     test_quotes_are_bounded},
    {"illegal transitions are 409", test_illegal_transitions},
    {"stale lease tokens are 409 lease_mismatch", test_stale_lease},
    {"bad query parameters", test_bad_query_parameters},
    {"content type, method, idempotency header", test_media_type_method_idempotency_header},
    {"HTTP edges: Expect, framing, NUL, media type", test_http_edges},
    {"an empty idempotency_key is refused", test_empty_idempotency_key},
    {"an Idempotency-Key header that is not UTF-8 is refused", test_idempotency_header_not_utf8},
    {"a list filter that is not UTF-8 is refused", test_list_filter_not_utf8},
    {"a refused retry says which phases may be retried", test_retry_refusal_says_why},
    {"a queue's default backoff_max_ms is named when it refuses",
     test_queue_backoff_max_default_named},
    {"a queue's bad retention is refused naming its field", test_queue_retention_refused},
    {"a batch's unknown parent names the task", test_batch_unknown_parent_names_task},
    {"a worker call's entry that is not an object is named", test_worker_entry_not_object_named},
    {"a path or query that is not UTF-8 is refused, in every API", test_path_or_query_not_utf8},
    {"a %00 in a query is refused by name, in every API", test_query_nul_refused},
    {"a number in a query is digits, no sign or space before", test_query_integers_are_digits},
    {"an events filter given twice is refused", test_events_parameter_twice},
    {"a duplicate key in a nested object is named by its path",
     test_nested_duplicate_key_named_by_path},
    {"the views' JSON: a duplicate key named by its path, a NUL refused",
     test_views_duplicate_key_and_nul},
    {"a NUL byte in a JSON body is refused", test_nul_byte_in_body_refused},
    {NULL, NULL},
};

int main(int argc, char **argv) {
    if (th_server_start(&srv, NULL)) {
        printf("RESULT passed=0 failed=1\n");
        return 1;
    }
    /* One task in each of pending, running and completed to aim at. */
    pending_id = th_submit(&srv, "p", "\"queue\":\"bad\"");
    char *r = th_submit(&srv, "r", "\"queue\":\"bad2\"");
    char id[33], tok[33];
    th_claim(&srv, "bad2", "{\"worker\":\"w\",\"lease_seconds\":600}", id, tok);
    running_id = strdup(id);
    running_token = strdup(tok);
    done_id = th_submit(&srv, "d", "\"queue\":\"bad3\"");
    th_claim(&srv, "bad3", NULL, id, tok);
    char path[128], body[128];
    snprintf(path, sizeof path, "/v1/tasks/%s/complete", done_id);
    snprintf(body, sizeof body, "{\"lease_token\":\"%s\"}", tok);
    th_http(&srv, "POST", path, "%s", body);
    int rc = th_main(tests, argc, argv);
    th_server_free(&srv);
    free(r);
    free(pending_id);
    free(running_id);
    free(running_token);
    free(done_id);
    return rc || th_failed();
}
