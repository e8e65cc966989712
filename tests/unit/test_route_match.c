/*
 * test_route_match: the router's path matcher (src/server/http.c), which
 * every request's path is tried against, route by route; and the fast
 * path's reader of request heads on the cases it hands on.
 */
#include <string.h>

#include "../src/server/http_head.h"
#include "../src/server/server_int.h"
#include "harness.h"

static void test_matches(void) {
    static const struct {
        const char *pattern, *path;
        bool match;
        const char *p0, *p1;
    } cases[] = {
        {"/v1/tasks", "/v1/tasks", true, NULL, NULL},
        {"/v1/tasks", "/v1/tasks/", false, NULL, NULL},
        {"/v1/tasks", "/v1/task", false, NULL, NULL},
        {"/v1/tasks", "/v1/tasksx", false, NULL, NULL},
        {"/v1/tasks", "/v1//tasks", false, NULL, NULL},
        {"/v1/tasks/:id", "/v1/tasks/abc", true, "abc", NULL},
        {"/v1/tasks/:id", "/v1/tasks/", false, NULL, NULL},
        {"/v1/tasks/:id", "/v1/tasks", false, NULL, NULL},
        {"/v1/tasks/:id", "/v1/tasks/a/b", false, NULL, NULL},
        {"/v1/tasks/:id/heartbeat", "/v1/tasks/x1/heartbeat", true, "x1", NULL},
        {"/v1/tasks/:id/heartbeat", "/v1/tasks/x1/heartbeats", false, NULL, NULL},
        {"/v1/queues/:queue/claims", "/v1/queues/q/claims", true, "q", NULL},
        {"/a/:x/b/:y", "/a/1/b/2", true, "1", "2"},
        {"/", "/", true, NULL, NULL},
        {"/", "/x", false, NULL, NULL},
        {"/ui/:file", "/ui/app.js", true, "app.js", NULL},
        {"/v1/tasks", "*", false, NULL, NULL},
        {"/v1/tasks", "", false, NULL, NULL},
        {"/v1/tasks/:id", "/v1/tasks/x/", false, NULL, NULL},
        {"/v1/tasks/:id", "//v1/tasks/x", false, NULL, NULL},
        {"/a/:x/b", "/a//b", false, NULL, NULL},
        {"/a/:x/b", "/a/:x/b", true, ":x", NULL},
        {"/a/b", "/a/b/c/d/e/f/g/h/i/j", false, NULL, NULL},
        {"/a/:1/:2/:3/:4/:5", "/a/1/2/3/4/5", false, NULL, NULL},
        {"/:x", "/", false, NULL, NULL},
        {"/x/", "/x/", true, NULL, NULL},
        {"/x/", "/x", false, NULL, NULL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct req r;
        memset(&r, 0, sizeof r);
        bool got = route_match(cases[i].pattern, cases[i].path, &r);
        if (got != cases[i].match)
            th_fail(__FILE__, __LINE__, "'%s' against '%s': %d", cases[i].pattern, cases[i].path,
                    got);
        CHECK(route_match(cases[i].pattern, cases[i].path, NULL) == cases[i].match);
        if (!got) continue;
        CHECK_INT(r.nparams, (cases[i].p0 != NULL) + (cases[i].p1 != NULL));
        if (cases[i].p0) CHECK_STR(r.param[0], cases[i].p0);
        if (cases[i].p1) CHECK_STR(r.param[1], cases[i].p1);
    }
    /* A segment of 128 bytes or more is no parameter (404, as before). */
    char path[300] = "/v1/tasks/";
    memset(path + 10, 'a', 128);
    path[138] = '\0';
    struct req r;
    memset(&r, 0, sizeof r);
    CHECK(!route_match("/v1/tasks/:id", path, &r));
    path[137] = '\0';
    CHECK(route_match("/v1/tasks/:id", path, &r));
    CHECK_INT(strlen(r.param[0]), 127);
    /* Four parameters, the most a request keeps. */
    memset(&r, 0, sizeof r);
    CHECK(route_match("/a/:1/:2/:3/:4", "/a/w/x/y/z", &r));
    CHECK_INT(r.nparams, 4);
    CHECK_STR(r.param[0], "w");
    CHECK_STR(r.param[3], "z");
}

static enum http_head_result head(const char *s) {
    struct http_head h;
    return http_head_parse(s, strlen(s), 16 * 1024, 64 * 1024, &h);
}

static void test_head(void) {
    struct http_head h;
    const char ok[] =
        "POST /v1/tasks HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n"
        "Connection: keep-alive, Close\r\n\r\n{}";
    CHECK_INT(http_head_parse(ok, sizeof ok - 1, 16 * 1024, 64 * 1024, &h), HEAD_OK);
    CHECK_INT(h.content_length, 2);
    CHECK_INT(h.head_len, sizeof ok - 3);
    CHECK(h.close);
    CHECK_INT(h.nfields, 3);
    /* "close" is an element of the Connection list, not a word in one. */
    static const struct {
        const char *value;
        bool close;
    } conns[] = {{"close", true},       {"x ,\tCLOSE", true}, {",close,", true},
                 {"a close", false},    {"close a", false},   {"x\tclose", false},
                 {"keep-alive", false}, {"closex", false}};
    for (size_t i = 0; i < sizeof conns / sizeof conns[0]; i++) {
        char text[128];
        snprintf(text, sizeof text, "GET / HTTP/1.1\r\nHost: x\r\nConnection: %s\r\n\r\n",
                 conns[i].value);
        CHECK_INT(http_head_parse(text, strlen(text), 1024, 10, &h), HEAD_OK);
        if (h.close != conns[i].close)
            th_fail(__FILE__, __LINE__, "'Connection: %s' read as %s", conns[i].value,
                    h.close ? "close" : "not close");
    }
    /* Leading white space is not the value's. */
    const char lead[] = "GET /v1/tasks HTTP/1.1\r\nHost: \t x\r\nX:\r\n\r\n";
    CHECK_INT(http_head_parse(lead, sizeof lead - 1, 16 * 1024, 64 * 1024, &h), HEAD_OK);
    CHECK_INT(h.value[0].len, 1);
    CHECK(lead[h.value[0].off] == 'x');
    CHECK_INT(h.value[1].len, 0);
    CHECK_INT(head("GET /v1/tasks/1 HTTP/1.1\r\nHost: x\r\n"), HEAD_PARTIAL);
    /* Not all there, but passed on at its first line that libmicrohttpd
     * answers at once (or that cannot be split into lines as it splits
     * them); a head that is only not plain is read to its end, for a
     * control character in a value further on (HEAD_BAD). */
    CHECK_INT(head("GET /v1/tasks/1 HTTP/1.1\r\nHost: x\r\nno colon\r\n"), HEAD_PASS);
    CHECK_INT(head("GET /v1/tasks/1 HTTP/1.1\r\nHost: x\r\nX: a\rb"), HEAD_PASS);
    CHECK_INT(head("GET /v1/tasks/1 HTTP/1.2.3\r\nHost: x\r\n"), HEAD_PASS);
    CHECK_INT(head("GET /v1/tasks/1 HTTP/2.0\r\nHost: x\r\n"), HEAD_PASS);
    CHECK_INT(head("G(T /v1/tasks/1 HTTP/1.1\r\nHost: x\r\n"), HEAD_PASS);
    CHECK_INT(head("GET /v1/tasks?limit=1 HTTP/1.1\r\n"), HEAD_PARTIAL);
    CHECK_INT(head("GET /v1/tasks/1 HTTP/1.1\r\nTransfer-Encoding: chunked\r\nHo"), HEAD_PARTIAL);
    /* A control character but tab in a value, wherever the head is not
     * plain: HEAD_BAD, naming the field (a folded line's is the one before). */
    static const char bad[][80] = {
        "GET /v1/tasks HTTP/1.1\r\nHost: \x01\r\n\r\n",
        "GET /v1/tasks HTTP/1.1\r\nHost: x\x7f\r\n\r\n",
        "GET /v1/tasks HTTP/1.1\r\nHost: a\0b\r\n\r\n",
        "GET /v1/tasks?x=1 HTTP/1.1\r\nHost: a\0b\r\n",
        "PUT /v1/tasks HTTP/1.0\r\nX-A: 1 \r\nHost: \0\r\n",
        "GET http://x/ HTTP/1.1\r\nTransfer-Encoding: x\r\nHost: \x1b\r\n",
        "GET / HTTP/1.1\r\nHost: x\r\n more\0\r\n",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        size_t n = sizeof bad[i];
        while (n && !bad[i][n - 1])
            n--; /* the literal's length, NULs inside it kept */
        if (http_head_parse(bad[i], n, 16 * 1024, 64 * 1024, &h) != HEAD_BAD ||
            h.bad_name.len != 4 || strncmp(bad[i] + h.bad_name.off, "Host", 4) != 0)
            th_fail(__FILE__, __LINE__, "not bad, naming Host: %zu", i);
    }
    /* A NUL before a line's colon, or in a line without one: libmicrohttpd
     * read a line that starts with one as the end of the head. */
    static const char nul_name[][64] = {
        "GET / HTTP/1.1\r\nHost: x\r\n\0: 1\r\n",
        "GET /?a HTTP/1.1\r\nHost: x\r\n\0\r\n",
        "GET / HTTP/1.1\r\nHost: x\r\nX-A\0: 1\r\n",
        "GET / HTTP/1.1\r\nHost: x\r\nX-A\0\r\n",
    };
    for (size_t i = 0; i < sizeof nul_name / sizeof nul_name[0]; i++) {
        size_t n = sizeof nul_name[i];
        while (n && !nul_name[i][n - 1])
            n--;
        if (http_head_parse(nul_name[i], n, 16 * 1024, 64 * 1024, &h) != HEAD_BAD ||
            h.bad != HEAD_BAD_NUL_NAME || h.bad_name.len != (i < 2 ? 0 : 3))
            th_fail(__FILE__, __LINE__, "a NUL in a name not refused: %zu", i);
    }
    /* A folded line (obs-fold): libmicrohttpd made it part of the name. */
    static const char *const folded[] = {
        "GET /v1/tasks HTTP/1.1\r\nHost: x\r\nX-A: 1\r\n folded\r\n\r\n",
        "GET /?q HTTP/1.1\r\nHost: x\r\nX-A: 1\r\n\t2\r\n",
    };
    for (size_t i = 0; i < sizeof folded / sizeof folded[0]; i++) {
        const char *f = folded[i];
        if (http_head_parse(f, strlen(f), 16 * 1024, 64 * 1024, &h) != HEAD_BAD ||
            h.bad != HEAD_BAD_FOLD || h.bad_name.len != 3 || strncmp(f + h.bad_name.off, "X-A", 3))
            th_fail(__FILE__, __LINE__, "a folded line not refused, naming X-A: %zu", i);
    }
    /* Before any field, a name that is not a token: libmicrohttpd's to refuse. */
    CHECK_INT(head("GET /v1/tasks HTTP/1.1\r\n folded: x\r\n"), HEAD_PASS);
    CHECK_INT(http_head_parse(bad[3], strlen(bad[3]) + 4, 16 * 1024, 64 * 1024, &h), HEAD_BAD);
    CHECK_INT(h.target.len, 13);
    CHECK(strncmp(bad[3] + h.target.off, "/v1/tasks?x=1", 13) == 0);
    CHECK_INT(head("GET /v1/tasks/1 HTTP/1.1\r\nHost: x\r\nno colon"), HEAD_PARTIAL);
    /* Each of these goes to libmicrohttpd, unread. */
    const char *pass[] = {
        "GET /v1/tasks?limit=1 HTTP/1.1\r\nHost: x\r\n\r\n",
        "GET /v1/tasks/a%20b HTTP/1.1\r\nHost: x\r\n\r\n",
        "GET /v1/tasks/a+b HTTP/1.1\r\nHost: x\r\n\r\n",
        "GET /v1/tasks HTTP/1.0\r\nHost: x\r\n\r\n",
        "HEAD /v1/tasks HTTP/1.1\r\nHost: x\r\n\r\n",
        "GET /v1/tasks HTTP/1.1\r\n\r\n",
        "GET /v1/tasks HTTP/1.1\r\nHost: x\r\nhost: x\r\n\r\n",
        "GET /v1/tasks HTTP/1.1\r\nHost:\r\n\r\n",
        "GET /v1/tasks HTTP/1.1\r\nHost: a b\r\n\r\n",
        "GET /v1/tasks HTTP/1.1\r\nHost: u@x\r\n\r\n",
        "GET /v1/tasks HTTP/1.1\nHost: x\n\n",
        "GET /v1/tasks HTTP/1.1\r\nHost : x\r\n\r\n",
        "GET /v1/tasks HTTP/1.1\r\nHost: caf\xc3\xa9\r\n\r\n",
        "POST /v1/tasks HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n",
        "POST /v1/tasks HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n",
        "GET /v1/tasks HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n\r\n",
        "POST /v1/tasks HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\n",
        "POST /v1/tasks HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n",
        "POST /v1/tasks HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999\r\n\r\n",
        "POST /v1/tasks HTTP/1.1\r\nHost: x\r\nContent-Length: \r\n\r\n",
        "GET http://x/v1/tasks HTTP/1.1\r\nHost: x\r\n\r\n",
        /* libmicrohttpd keeps white space at a value's end. */
        "GET /v1/tasks HTTP/1.1\r\nHost: x \r\n\r\n",
        "POST /v1/tasks HTTP/1.1\r\nHost: x\r\nContent-Length: 2\t\r\n\r\n{}",
    };
    for (size_t i = 0; i < sizeof pass / sizeof pass[0]; i++)
        if (head(pass[i]) != HEAD_PASS) th_fail(__FILE__, __LINE__, "not passed on: %s", pass[i]);
    /* A head that reaches its limit without ending is passed on too. */
    char big[200];
    memset(big, 'a', sizeof big);
    memcpy(big, "GET / HTTP/1.1\r\nX: ", 19);
    CHECK_INT(http_head_parse(big, sizeof big, 100, 10, &h), HEAD_PASS);
    CHECK_INT(http_head_parse(big, 50, 100, 10, &h), HEAD_PARTIAL);
    /* 47 bytes, but 50 as libmicrohttpd's side counts them ("Name: value"
     * CRLF for each field, no blank line): passed on under 50. */
    const char tight[] = "GET /a HTTP/1.1\r\nHost:x\r\nA:1\r\nB:2\r\nC:3\r\nD:4\r\n\r\n";
    CHECK_INT(sizeof tight - 1, 47);
    CHECK_INT(http_head_parse(tight, sizeof tight - 1, 50, 10, &h), HEAD_OK);
    CHECK_INT(http_head_parse(tight, sizeof tight - 1, 49, 10, &h), HEAD_PASS);
}

static const struct th_test tests[] = {
    {"route patterns: literal and ':' segments, edges", test_matches},
    {"request heads: the plain ones read, the others passed on", test_head},
    {NULL, NULL},
};

int main(int argc, char **argv) {
    return th_main(tests, argc, argv);
}
