/*
 * Tokens, roles and namespaces against the real server: the open mode on
 * loopback and its end when a token appears; every role against every
 * endpoint (allowed and refused), every route of the router included (the
 * matrix fails on one it does not call); another namespace's tasks,
 * definitions, schedules and webhooks answering 404, also through the
 * SailPoint, Livepeer and Scene7 views, with nothing changed by a refused
 * write (read back with the admin token); revoked, expired and malformed
 * tokens refused; the admin token API; the refusal to listen on a
 * non-loopback address without tokens.
 */
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <stdlib.h>

#include "../src/common/timeutil.h"
#include "../src/compat/views.h"
#include "harness.h"
#include "sec_util.h"
#include "sse_client.h"

static struct th_server srv;

enum { ADMIN, CLIENT, WORKER, READER, CLIENT_B, WORKER_B, READER_B, NTOK };
static const char *const tok_role[NTOK] = {"admin",  "client", "worker", "reader",
                                           "client", "worker", "reader"};
static const char *const tok_ns[NTOK] = {"default", "acme", "acme", "acme", "beta", "beta", "beta"};
static char tok[NTOK][128], tok_id[NTOK][32];
static char task_a[64], task_del[64], spare_id[32];

static void test_open_mode(void) {
    struct th_resp *r = th_http(&srv, "GET", "/v1/tasks", NULL);
    CHECK_INT(r->status, 200);
    CHECK(sec_log_has(&srv, "authentication is off and only this host (loopback)"));
}

/* Tasks of queue q (open mode). */
static long open_queue_count(const char *q) {
    char path[96];
    snprintf(path, sizeof path, "/v1/tasks?queue=%s", q);
    struct th_resp *r = th_http(&srv, "GET", path, NULL);
    return r->status == 200 ? (long)json_array_size(th_get(r->json, "tasks")) : -1;
}

/*
 * Open mode answers this host's programs, not a web page the operator has
 * open: a request a page of another origin sends (it carries `Origin`), or
 * one for a host name (DNS rebinding) is 403 naming the header, in the
 * shape of its API, and stores nothing. Same-origin (the dashboard) and
 * requests without `Origin` (curl, the SDKs) go through.
 */
static void test_open_mode_refuses_web_pages(void) {
    char host[64], origin[80];
    snprintf(host, sizeof host, "Host: %s", strstr(srv.url, "://") + 3);
    snprintf(origin, sizeof origin, "Origin: %s", srv.url);
    const char *body = "{\"type\":\"x\",\"queue\":\"csq\"}";
    const char *evil[] = {"Origin: http://evil.example", "Content-Type: text/plain", NULL};
    struct th_resp *r = th_http_raw(&srv, "POST", "/v1/tasks", body, strlen(body), evil);
    CHECK_INT(r->status, 403);
    CHECK_STR(th_str(r->json, "error.field"), "Origin");
    const char *null_origin[] = {"Origin: null", "Content-Type: application/json", NULL};
    r = th_http_raw(&srv, "POST", "/v1/tasks", body, strlen(body), null_origin);
    CHECK_INT(r->status, 403);
    const char *rebound[] = {"Host: evil.example", "Content-Type: application/json", NULL};
    r = th_http_raw(&srv, "POST", "/v1/tasks", body, strlen(body), rebound);
    CHECK_INT(r->status, 403);
    CHECK_STR(th_str(r->json, "error.field"), "Host");
    r = th_http_raw(&srv, "GET", "/api/task/abc", NULL, 0, evil); /* Livepeer's shape */
    CHECK_INT(r->status, 403);
    CHECK(json_is_string(json_array_get(th_get(r->json, "errors"), 0)));
    CHECK_INT(open_queue_count("csq"), 0);
    /* Its own origin, localhost, and no Origin at all: served. */
    const char *same[] = {host, origin, "Content-Type: application/json", NULL};
    CHECK_INT(th_http_raw(&srv, "POST", "/v1/tasks", body, strlen(body), same)->status, 201);
    const char *local[] = {"Host: localhost:1", "Origin: http://localhost:1", NULL};
    CHECK_INT(th_http_raw(&srv, "GET", "/v1/tasks", NULL, 0, local)->status, 200);
    CHECK_INT(th_http(&srv, "POST", "/v1/tasks", "%s", body)->status, 201);
    /* Refused again after local ones were served (each HTTP thread
     * remembers the last local Host it saw). */
    r = th_http_raw(&srv, "POST", "/v1/tasks", body, strlen(body), rebound);
    CHECK_INT(r->status, 403);
    CHECK_STR(th_str(r->json, "error.field"), "Host");
    const char *near[] = {"Host: localhost:10", "Content-Type: application/json", NULL};
    CHECK_INT(th_http_raw(&srv, "POST", "/v1/tasks", body, strlen(body), near)->status, 201);
    const char *longer[] = {"Host: localhost.evil.example:1", "Content-Type: application/json",
                            NULL};
    CHECK_INT(th_http_raw(&srv, "POST", "/v1/tasks", body, strlen(body), longer)->status, 403);
    /* In brackets, an IPv6 address; hex digits alone are a name. */
    const char *v6[] = {"Host: [::1]:1", "Content-Type: application/json", NULL};
    CHECK_INT(th_http_raw(&srv, "POST", "/v1/tasks", body, strlen(body), v6)->status, 201);
    const char *hexname[] = {"Host: [dead]", "Content-Type: application/json", NULL};
    r = th_http_raw(&srv, "POST", "/v1/tasks", body, strlen(body), hexname);
    CHECK_INT(r->status, 403);
    CHECK_STR(th_str(r->json, "error.field"), "Host");
    CHECK_INT(open_queue_count("csq"), 4);
    CHECK(sec_log_has(&srv, "cross-site request in open mode"));
}

static void test_first_token_ends_open_mode(void) {
    for (int i = 0; i < NTOK; i++)
        CHECK(sec_token(&srv, tok_role[i], tok_ns[i], "--name test", tok[i], tok_id[i]) == 0);
    char spare[128];
    CHECK(sec_token(&srv, "client", "acme", "", spare, spare_id) == 0);
    /* The open server asks the store at most once a second: closed soon
     * after (20 s is a deadline, not a speed). */
    WAIT_UNTIL(th_http(&srv, "GET", "/v1/tasks", NULL)->status != 200, 20000,
               "the open mode to end");
    struct th_resp *r = th_http(&srv, "GET", "/v1/tasks", NULL);
    CHECK_INT(r->status, 401);
    CHECK_STR(th_str(r->json, "error.code"), "unauthenticated");
    char h[128];
    CHECK(th_resp_header(r, "WWW-Authenticate", h, sizeof h));
    CHECK(sec_log_has(&srv, "every request needs one from here on"));
    /* A restart finds the tokens at once. */
    th_server_stop(&srv, false);
    CHECK(th_server_restart(&srv) == 0);
    CHECK(sec_log_has(&srv, "authentication on"));
    CHECK_INT(th_http(&srv, "GET", "/v1/tasks", NULL)->status, 401);
    CHECK_INT(sec_http(&srv, tok[ADMIN], "GET", "/v1/tasks", NULL)->status, 200);
}

/* The shape of a refusal: v1's JSON error, or a compatibility view's own. */
enum shape { SHAPE_V1, SHAPE_SAILPOINT, SHAPE_LIVEPEER };

struct endpoint {
    const char *method, *path, *body;
    unsigned allowed; /* bit per ADMIN..READER */
    bool stream;      /* a stream: only refusals are checked */
    long want;        /* the status an allowed role gets; 0: any but 401/403 */
    enum shape shape; /* how a refusal is written */
    bool pub;         /* needs no token (every role allowed, and none) */
};
#define A (1u << ADMIN)
#define C (1u << CLIENT)
#define W (1u << WORKER)
#define R (1u << READER)

/* A printf'd string that lives until 16 more calls (paths and bodies of one check). */
static const char *fmt(const char *f, ...) __attribute__((format(printf, 1, 2)));
static const char *fmt(const char *f, ...) {
    static char ring[16][1024];
    static unsigned next;
    char *s = ring[next++ % 16];
    va_list ap;
    va_start(ap, f);
    vsnprintf(s, sizeof ring[0], f, ap);
    va_end(ap);
    return s;
}

/*
 * Sends a request with tok[who]'s token (who < 0: none) and fails the test,
 * naming the request and the reply, unless the status is `want` and, when
 * `code` is given, error.code is `code`. Returns the reply, or NULL after
 * the failure. EXPECT and EXPECT_R return from the test on failure.
 */
static struct th_resp *expect(int line, int who, const char *method, const char *path,
                              const char *body, long want, const char *code) {
    struct th_resp *r = sec_http(&srv, who < 0 ? NULL : tok[who], method, path, body);
    const char *got = th_str(r->json, "error.code");
    if (r->status == want && (!code || (got && strcmp(got, code) == 0))) return r;
    th_fail(__FILE__, line, "%s token (%s): %s %s %s gave %ld %s, expected %ld %s",
            who < 0 ? "no" : tok_role[who], who < 0 ? "-" : tok_ns[who], method, path,
            body ? body : "", r->status, r->body, want, code ? code : "");
    return NULL;
}
#define EXPECT(who, m, p, b, st, code)                         \
    do {                                                       \
        if (!expect(__LINE__, who, m, p, b, st, code)) return; \
    } while (0)
#define EXPECT_R(r, who, m, p, b, st, code)                          \
    do {                                                             \
        if (!(r = expect(__LINE__, who, m, p, b, st, code))) return; \
    } while (0)

/* The admin's view of a path: its JSON when 200, else NULL. Valid until the next call. */
static json_t *admin_json(const char *path) {
    static json_t *last;
    json_decref(last);
    last = NULL;
    struct th_resp *r = sec_http(&srv, tok[ADMIN], "GET", path, NULL);
    if (r->status == 200) last = json_incref(r->json);
    return last;
}

/* The tasks an admin's GET /v1/tasks?<query> lists, or -1. */
static long admin_count(const char *query) {
    json_t *j = admin_json(fmt("/v1/tasks?%s", query));
    return j ? (long)json_array_size(json_object_get(j, "tasks")) : -1;
}

/* The element of array `arr` whose string `key` is `val`, or NULL. */
static json_t *find_by(json_t *arr, const char *key, const char *val) {
    size_t i;
    json_t *v;
    json_array_foreach(arr, i, v) {
        const char *s = json_string_value(json_object_get(v, key));
        if (s && strcmp(s, val) == 0) return v;
    }
    return NULL;
}

static void fixtures(void) {
    struct th_resp *r = sec_http(&srv, tok[CLIENT], "POST", "/v1/tasks", "{\"type\":\"a\"}");
    snprintf(task_a, sizeof task_a, "%s", r->status == 201 ? th_str(r->json, "id") : "");
    r = sec_http(&srv, tok[CLIENT], "POST", "/v1/tasks", "{\"type\":\"d\",\"queue\":\"dq\"}");
    snprintf(task_del, sizeof task_del, "%s", r->status == 201 ? th_str(r->json, "id") : "");
    /* A definition and a schedule of acme's, which the reads find. */
    sec_http(&srv, tok[CLIENT], "POST", "/v1/definitions",
             "{\"name\":\"fx-def\",\"type\":\"fx\",\"queue\":\"fxq\"}");
    sec_http(&srv, tok[CLIENT], "POST", "/v1/schedules",
             "{\"name\":\"fx-sched\",\"cron\":\"0 3 1 1 *\",\"definition\":\"fx-def\"}");
}

/* Whether a refusal (401 or 403) is in the shape of its API (a HEAD has no
 * body to look at). */
static bool refusal_shaped(const struct endpoint *ep, struct th_resp *r) {
    if (strcmp(ep->method, "HEAD") == 0) return true;
    const char *want;
    switch (ep->shape) {
    case SHAPE_SAILPOINT:
        want = r->status == 401 ? "401 Unauthorized" : "403 Forbidden";
        return th_str(r->json, "detailCode") && strcmp(th_str(r->json, "detailCode"), want) == 0;
    case SHAPE_LIVEPEER:
        return json_is_string(json_array_get(th_get(r->json, "errors"), 0));
    default:
        want = r->status == 401 ? "unauthenticated" : "permission_denied";
        return th_str(r->json, "error.code") && strcmp(th_str(r->json, "error.code"), want) == 0;
    }
}

/* Whether a request path (its query aside) is one a route pattern takes: its
 * ':' segments take any one non-empty segment. */
static bool pattern_takes(const char *pattern, const char *path) {
    size_t plen = strcspn(path, "?");
    if (strcmp(pattern, "/") == 0) return plen == 1 && path[0] == '/';
    const char *end = path + plen;
    while (*pattern && path < end) {
        if (*pattern++ != '/' || *path++ != '/') return false;
        size_t pl = strcspn(pattern, "/"), sl = strcspn(path, "/?");
        if (sl == 0 || (pattern[0] != ':' && (pl != sl || memcmp(pattern, path, pl) != 0)))
            return false;
        pattern += pl;
        path += sl;
    }
    return !*pattern && path == end;
}

/* Routes whose roles other tests here check, each with its own credentials. */
static const char *const covered_elsewhere[][3] = {
    {"POST", "/scene7/services/IpsApiService", "test_scene7_roles_and_namespaces"},
    {"POST", "/oauth/token", "test_views_other_namespace_and_roles"},
};

/*
 * Fails the test naming each route of the server's tables (v1's, the
 * health and dashboard routes, and the views' of compat_views[]) that no
 * entry of the matrix calls and no other test covers: a route added
 * later must come with its line in the matrix.
 */
/* Counts the routes of table rt that no entry of ep calls and no other test covers,
 * naming each. */
static size_t routes_unchecked(const struct route *rt, const struct endpoint *ep, size_t n) {
    size_t missing = 0;
    for (; rt->method; rt++) {
        bool found = false;
        for (size_t e = 0; e < n && !found; e++)
            found = strcmp(ep[e].method, rt->method) == 0 && pattern_takes(rt->pattern, ep[e].path);
        for (size_t e = 0; e < sizeof covered_elsewhere / sizeof covered_elsewhere[0]; e++)
            found = found || (strcmp(covered_elsewhere[e][0], rt->method) == 0 &&
                              strcmp(covered_elsewhere[e][1], rt->pattern) == 0);
        if (!found) {
            printf("    no check of the roles of %s %s\n", rt->method, rt->pattern);
            missing++;
        }
    }
    return missing;
}

/*
 * Whether every route of the server's tables (v1's, the health and
 * dashboard routes, and the views' of compat_views[]) is called by an entry
 * of the matrix or covered by another test: a route added later must come
 * with its line in the matrix.
 */
static bool every_route_in(const struct endpoint *ep, size_t n) {
    const struct route *const tables[] = {
        v1_tasks_routes,     v1_work_routes,   v1_queues_routes,   health_routes,
        v1_tokens_routes,    v1_events_routes, v1_webhooks_routes, v1_definitions_routes,
        v1_schedules_routes, web_routes,
    };
    size_t missing = 0;
    for (size_t t = 0; t < sizeof tables / sizeof tables[0]; t++)
        missing += routes_unchecked(tables[t], ep, n);
    for (const struct route_table *v = compat_views; v->routes; v++)
        missing += routes_unchecked(v->routes, ep, n);
    return missing == 0;
}

static void test_every_role_every_endpoint(void) {
    fixtures();
    CHECK(task_a[0] && task_del[0]);
    const char *zero = "00000000000000000000000000000000";
    const char *lease = "{\"lease_token\":\"00000000000000000000000000000000\"}";
    const char *entries =
        "{\"entries\":[{\"id\":\"00000000000000000000000000000000\","
        "\"lease_token\":\"00000000000000000000000000000000\"}]}";
    const char *sched =
        "{\"name\":\"nothing-here\",\"cron\":\"0 3 1 1 *\",\"task\":{\"type\":\"m\"}}";
    const char *backfill = "{\"from\":\"2020-01-01T00:00:00Z\",\"to\":\"2020-01-02T00:00:00Z\"}";
    const char *patch = "[{\"op\":\"replace\",\"path\":\"/progress\",\"value\":\"x\"}]";
    char p[64][160];
    const struct endpoint ep[] = {
        {"POST", "/v1/tasks", "{\"type\":\"m\",\"queue\":\"mq\"}", A | C, false},
        {"GET", "/v1/tasks", NULL, A | C | R, false},
        {"POST", "/v1/tasks/batch", "{\"tasks\":[{\"type\":\"m\",\"queue\":\"mq\"}]}", A | C,
         false},
        {"GET", p[0], NULL, A | C | W | R, false},
        {"DELETE", p[1], NULL, A, false},
        {"POST", p[2], NULL, A | C, false},
        {"POST", p[3], NULL, A | C, false},
        {"POST", p[4], NULL, A | C, false},
        {"POST", p[5], NULL, A | C, false},
        {"POST", p[6], lease, A | W, false},
        {"POST", p[7], lease, A | W, false},
        {"POST", p[8], lease, A | W, false},
        {"POST", p[9], lease, A | W, false},
        {"POST", "/v1/queues/nothing-here/claim", "{\"worker\":\"w\"}", A | W, false},
        {"GET", "/v1/queues", NULL, A | C | R, false},
        {"PUT", "/v1/queues/mq", "{}", A, false},
        {"GET", "/metrics", NULL, A | R, false},
        {"GET", "/v1/tokens", NULL, A, false},
        {"POST", "/v1/tokens", "{\"role\":\"reader\",\"namespace\":\"acme\"}", A, false},
        {"GET", p[10], NULL, A, false},
        {"DELETE", p[10], NULL, A, false},
        {"GET", "/v1/webhooks", NULL, A | C, false},
        {"DELETE", "/v1/webhooks/00000000000000000000000000000000", NULL, A | C, false},
        {"GET", "/v1/events", NULL, A | C | R, true},
        {"GET", p[11], NULL, A | C | R, true},
        /* Tasks: history, bulk (delete is admin only, in the handler). */
        {"GET", p[12], NULL, A | C | R, false, 200},
        {"POST", "/v1/tasks/bulk",
         "{\"action\":\"cancel\",\"filter\":{\"queue\":\"nothing-here\"},\"dry_run\":true}", A | C,
         false, 200},
        {"POST", "/v1/tasks/bulk",
         "{\"action\":\"delete\",\"filter\":{\"queue\":\"nothing-here\"},\"dry_run\":true}", A,
         false, 200},
        /* The batched worker protocol. */
        {"POST", "/v1/queues/nothing-here/claims", "{\"worker\":\"w\",\"max\":2}", A | W, false,
         204},
        {"POST", "/v1/work/heartbeat", entries, A | W, false, 200},
        {"POST", "/v1/work/complete", entries, A | W, false, 200},
        {"POST", "/v1/work/fail", entries, A | W, false, 200},
        {"POST", "/v1/work/release", entries, A | W, false, 200},
        /* Queues: pause and resume (admin only), stats. */
        {"POST", "/v1/queues/matrixq/pause", NULL, A, false, 200},
        {"POST", "/v1/queues/matrixq/resume", NULL, A, false, 200},
        {"GET", "/v1/queues/mq/stats", NULL, A | C | R, false, 200},
        /* Who am I: every role. */
        {"GET", "/v1/whoami", NULL, A | C | W | R, false, 200},
        /* Webhooks (more in test_webhooks_by_role_and_namespace): the admin's goes to
         * a namespace of its choosing, the client's to acme; both are deleted below. */
        {"POST", "/v1/webhooks",
         "{\"url\":\"https://hooks.example.com/matrix\",\"namespace\":\"matrix-hooks\"}", A | C,
         false, 201},
        {"GET", p[13], NULL, A | C, false, 404},
        {"GET", p[14], NULL, A | C, false, 404},
        {"PATCH", p[13], "{\"name\":\"m\"}", A | C, false, 404},
        /* Definitions. */
        {"POST", "/v1/definitions", "{\"name\":\"m-def\",\"type\":\"m\"}", A | C, false, 201},
        {"GET", "/v1/definitions", NULL, A | C | R, false, 200},
        {"GET", "/v1/definitions/fx-def", NULL, A | C | R, false, 200},
        {"PUT", "/v1/definitions/nothing-here", "{\"name\":\"nothing-here\",\"type\":\"m\"}", A | C,
         false, 404},
        {"DELETE", "/v1/definitions/nothing-here", NULL, A | C, false, 404},
        {"POST", "/v1/definitions/nothing-here/launch", "{}", A | C, false, 404},
        /* Schedules. */
        {"POST", "/v1/schedules",
         "{\"name\":\"m-sched\",\"cron\":\"0 3 1 1 *\",\"paused\":true,\"task\":{\"type\":\"m\"}}",
         A | C, false, 201},
        {"GET", "/v1/schedules", NULL, A | C | R, false, 200},
        {"GET", "/v1/schedules/fx-sched", NULL, A | C | R, false, 200},
        {"GET", "/v1/schedules/fx-sched/preview", NULL, A | C | R, false, 200},
        {"GET", "/v1/schedules/fx-sched/fires", NULL, A | C | R, false, 200},
        {"PUT", "/v1/schedules/nothing-here", sched, A | C, false, 404},
        {"DELETE", "/v1/schedules/nothing-here", NULL, A | C, false, 404},
        {"POST", "/v1/schedules/nothing-here/pause", NULL, A | C, false, 404},
        {"POST", "/v1/schedules/nothing-here/resume", NULL, A | C, false, 404},
        {"POST", "/v1/schedules/nothing-here/trigger", NULL, A | C, false, 404},
        {"POST", "/v1/schedules/nothing-here/backfill", backfill, A | C, false, 404},
        /* Public: health, readiness, the dashboard's files, the Scene7 WSDL. */
        {"GET", "/healthz", NULL, 0, false, 200, SHAPE_V1, true},
        {"HEAD", "/healthz", NULL, 0, false, 200, SHAPE_V1, true},
        {"HEAD", "/readyz", NULL, 0, false, 200, SHAPE_V1, true},
        {"GET", "/readyz", NULL, 0, false, 200, SHAPE_V1, true},
        {"GET", "/", NULL, 0, false, 200, SHAPE_V1, true},
        {"GET", "/ui/app.js", NULL, 0, false, 200, SHAPE_V1, true},
        {"GET", "/scene7/webservice/IpsApi.wsdl", NULL, 0, false, 200, SHAPE_V1, true},
        {"GET", "/scene7/webservice/IpsApi-2014-04-03.wsdl", NULL, 0, false, 200, SHAPE_V1, true},
        {"GET", "/scene7/services/IpsApiService?wsdl", NULL, 0, false, 200, SHAPE_V1, true},
        /* SailPoint (docs/compat.md), under each prefix: reads admin, client, reader;
         * PATCH admin, client. */
        {"GET", "/beta/task-status", NULL, A | C | R, false, 200, SHAPE_SAILPOINT},
        {"GET", "/v2024/task-status", NULL, A | C | R, false, 200, SHAPE_SAILPOINT},
        {"GET", "/v2025/task-status", NULL, A | C | R, false, 200, SHAPE_SAILPOINT},
        {"GET", "/beta/task-status/pending-tasks", NULL, A | C | R, false, 0, SHAPE_SAILPOINT},
        {"GET", "/v2024/task-status/pending-tasks", NULL, A | C | R, false, 0, SHAPE_SAILPOINT},
        {"GET", "/v2025/task-status/pending-tasks", NULL, A | C | R, false, 0, SHAPE_SAILPOINT},
        {"HEAD", "/beta/task-status/pending-tasks", NULL, A | C | R, false, 0, SHAPE_SAILPOINT},
        {"HEAD", "/v2024/task-status/pending-tasks", NULL, A | C | R, false, 0, SHAPE_SAILPOINT},
        {"HEAD", "/v2025/task-status/pending-tasks", NULL, A | C | R, false, 0, SHAPE_SAILPOINT},
        {"GET", p[15], NULL, A | C | R, false, 200, SHAPE_SAILPOINT},
        {"GET", p[16], NULL, A | C | R, false, 200, SHAPE_SAILPOINT},
        {"GET", p[17], NULL, A | C | R, false, 200, SHAPE_SAILPOINT},
        {"PATCH", p[18], patch, A | C, false, 404, SHAPE_SAILPOINT},
        {"PATCH", p[19], patch, A | C, false, 404, SHAPE_SAILPOINT},
        {"PATCH", p[20], patch, A | C, false, 404, SHAPE_SAILPOINT},
        /* Livepeer: reads admin, client, reader; retry admin, client. */
        {"GET", "/api/task", NULL, A | C | R, false, 200, SHAPE_LIVEPEER},
        {"GET", p[21], NULL, A | C | R, false, 200, SHAPE_LIVEPEER},
        {"POST", p[22], NULL, A | C, false, 404, SHAPE_LIVEPEER},
    };
    snprintf(p[0], sizeof p[0], "/v1/tasks/%s", task_a);
    snprintf(p[1], sizeof p[1], "/v1/tasks/%s", task_del);
    const char *verbs[] = {"cancel",    "retry",    "pause", "resume",
                           "heartbeat", "complete", "fail",  "release"};
    for (int i = 0; i < 8; i++)
        snprintf(p[2 + i], sizeof p[0], "/v1/tasks/%s/%s", task_a, verbs[i]);
    snprintf(p[10], sizeof p[0], "/v1/tokens/%s", spare_id);
    snprintf(p[11], sizeof p[0], "/v1/tasks/%s/events", task_a);
    snprintf(p[12], sizeof p[0], "/v1/tasks/%s/attempts", task_a);
    snprintf(p[13], sizeof p[0], "/v1/webhooks/%s", zero);
    snprintf(p[14], sizeof p[0], "/v1/webhooks/%s/deliveries", zero);
    const char *sp[] = {"beta", "v2024", "v2025"};
    for (int i = 0; i < 3; i++) {
        snprintf(p[15 + i], sizeof p[0], "/%s/task-status/%s", sp[i], task_a);
        snprintf(p[18 + i], sizeof p[0], "/%s/task-status/%s", sp[i], zero);
    }
    snprintf(p[21], sizeof p[0], "/api/task/%s", task_a);
    snprintf(p[22], sizeof p[0], "/api/task/%s/retry", zero);
    CHECK(every_route_in(ep, sizeof ep / sizeof ep[0]));
    int checked = 0;
    for (size_t e = 0; e < sizeof ep / sizeof ep[0]; e++) {
        /* No token: 401 everywhere but the public routes. */
        struct th_resp *r = sec_http(&srv, NULL, ep[e].method, ep[e].path, ep[e].body);
        if (ep[e].pub ? r->status != ep[e].want : r->status != 401 || !refusal_shaped(&ep[e], r)) {
            th_fail(__FILE__, __LINE__, "no token: %s %s gave %ld (%s), not %ld in its shape",
                    ep[e].method, ep[e].path, r->status, r->body, ep[e].pub ? ep[e].want : 401);
            return;
        }
        for (int role = ADMIN; role <= READER; role++) {
            bool allowed = ep[e].pub || (ep[e].allowed & (1u << role));
            if (allowed && ep[e].stream) continue;
            r = sec_http(&srv, tok[role], ep[e].method, ep[e].path, ep[e].body);
            bool ok = !allowed ? r->status == 403
                      : ep[e].want && !ep[e].pub
                          ? r->status == ep[e].want
                          : (r->status != 401 && r->status != 403 && r->status > 0);
            if (ok && !allowed) ok = refusal_shaped(&ep[e], r);
            if (!ok) {
                th_fail(__FILE__, __LINE__, "%s token: %s %s %s gave %ld (%s), expected %s",
                        tok_role[role], ep[e].method, ep[e].path, ep[e].body ? ep[e].body : "",
                        r->status, r->body,
                        !allowed     ? "403 permission_denied in its API's shape"
                        : ep[e].want ? fmt("%ld", ep[e].want)
                                     : "not 401/403");
                return;
            }
            checked++;
        }
    }
    CHECK(checked > 300);
    CHECK(sec_log_has(&srv, "role not allowed"));
    /* /healthz needs no token. */
    CHECK_INT(sec_http(&srv, NULL, "GET", "/healthz", NULL)->status, 200);
    /* What the allowed writes above made: the queue is active again; the
     * admin's definition and schedule are in its own namespace, the client's in acme. */
    json_t *q = find_by(th_get(admin_json("/v1/queues"), "queues"), "name", "matrixq");
    CHECK(q != NULL);
    CHECK_STR(json_string_value(json_object_get(q, "state")), "active");
    const char *docs[][2] = {{"definitions", "m-def"}, {"schedules", "m-sched"}};
    size_t i;
    json_t *v;
    for (int k = 0; k < 2; k++) {
        int in_default = 0, in_acme = 0, elsewhere = 0;
        json_array_foreach(th_get(admin_json(fmt("/v1/%s", docs[k][0])), docs[k][0]), i, v) {
            if (strcmp(json_string_value(json_object_get(v, "name")), docs[k][1]) != 0) continue;
            const char *ns = json_string_value(json_object_get(v, "namespace"));
            if (strcmp(ns, "default") == 0)
                in_default++;
            else if (strcmp(ns, "acme") == 0)
                in_acme++;
            else
                elsewhere++;
        }
        CHECK(in_default == 1 && in_acme == 1 && elsewhere == 0);
    }
    json_t *hooks = th_get(admin_json("/v1/webhooks"), "webhooks");
    CHECK_INT(json_array_size(hooks), 2);
    CHECK(find_by(hooks, "namespace", "matrix-hooks") && find_by(hooks, "namespace", "acme"));
    char ids[2][64];
    for (i = 0; i < 2; i++)
        snprintf(ids[i], sizeof ids[i], "%s", th_str(json_array_get(hooks, i), "id"));
    for (i = 0; i < 2; i++)
        CHECK_INT(
            sec_http(&srv, tok[ADMIN], "DELETE", fmt("/v1/webhooks/%s", ids[i]), NULL)->status,
            204);
}

static void test_other_namespace_is_404(void) {
    struct th_resp *r =
        sec_http(&srv, tok[CLIENT], "POST", "/v1/tasks", "{\"type\":\"secret\",\"queue\":\"xq\"}");
    CHECK_INT(r->status, 201);
    CHECK_STR(th_str(r->json, "namespace"), "acme");
    char id[64], path[160];
    snprintf(id, sizeof id, "%s", th_str(r->json, "id"));
    snprintf(path, sizeof path, "/v1/tasks/%s", id);
    /* Reads from beta: as if it did not exist. */
    r = sec_http(&srv, tok[CLIENT_B], "GET", path, NULL);
    CHECK_INT(r->status, 404);
    CHECK_STR(th_str(r->json, "error.code"), "not_found");
    CHECK_INT(sec_http(&srv, tok[READER_B], "GET", path, NULL)->status, 404);
    CHECK_INT(sec_http(&srv, tok[WORKER_B], "GET", path, NULL)->status, 404);
    r = sec_http(&srv, tok[CLIENT_B], "GET", "/v1/tasks?queue=xq", NULL);
    CHECK_INT(r->status, 200);
    CHECK_INT(json_array_size(th_get(r->json, "tasks")), 0);
    /* Writes from beta. */
    snprintf(path, sizeof path, "/v1/tasks/%s/cancel", id);
    CHECK_INT(sec_http(&srv, tok[CLIENT_B], "POST", path, NULL)->status, 404);
    snprintf(path, sizeof path, "/v1/tasks/%s/pause", id);
    CHECK_INT(sec_http(&srv, tok[CLIENT_B], "POST", path, NULL)->status, 404);
    CHECK_INT(
        sec_http(&srv, tok[WORKER_B], "POST", "/v1/queues/xq/claim", "{\"worker\":\"b\"}")->status,
        204);
    /* Submitting into another namespace is refused and stores nothing. */
    r = sec_http(&srv, tok[CLIENT], "POST", "/v1/tasks",
                 "{\"type\":\"x\",\"queue\":\"yq\",\"namespace\":\"beta\"}");
    CHECK_INT(r->status, 400);
    CHECK_STR(th_str(r->json, "error.field"), "namespace");
    r = sec_http(&srv, tok[ADMIN], "GET", "/v1/tasks?queue=yq", NULL);
    CHECK_INT(json_array_size(th_get(r->json, "tasks")), 0);
    /* The owner's worker claims it; beta's worker cannot touch the lease. */
    r = sec_http(&srv, tok[WORKER], "POST", "/v1/queues/xq/claim", "{\"worker\":\"a\"}");
    CHECK_INT(r->status, 200);
    CHECK_STR(th_str(r->json, "task.id"), id);
    char body[128];
    snprintf(body, sizeof body, "{\"lease_token\":\"%s\"}", th_str(r->json, "lease_token"));
    snprintf(path, sizeof path, "/v1/tasks/%s/heartbeat", id);
    CHECK_INT(sec_http(&srv, tok[WORKER_B], "POST", path, body)->status, 404);
    CHECK_INT(sec_http(&srv, tok[WORKER], "POST", path, body)->status, 200);
    /* The worker may read what it claimed; the admin sees every namespace. */
    snprintf(path, sizeof path, "/v1/tasks/%s", id);
    CHECK_INT(sec_http(&srv, tok[WORKER], "GET", path, NULL)->status, 200);
    CHECK_INT(sec_http(&srv, tok[ADMIN], "GET", path, NULL)->status, 200);
    /* Queue counts are per namespace too. */
    r = sec_http(&srv, tok[READER_B], "GET", "/v1/queues", NULL);
    CHECK_INT(r->status, 200);
    CHECK(!strstr(r->body, "\"xq\""));
}

/*
 * Definitions and schedules, role by role (docs/security.md: reads admin,
 * client, reader; writes admin, client; docs/schedules.md for what each
 * does). A refused write is 403 and leaves the definition, the schedule,
 * its fires and the tasks as they were, read back with the admin token.
 */
static void test_definitions_and_schedules_by_role(void) {
    struct th_resp *r;
    char def_id[64], sched_id[64], def_at[64], sched_at[64];
    EXPECT_R(r, CLIENT, "POST", "/v1/definitions",
             "{\"name\":\"rd-def\",\"type\":\"rd\",\"queue\":\"rdq\",\"params\":{\"k\":\"v\"}}",
             201, NULL);
    CHECK_STR(th_str(r->json, "namespace"), "acme");
    snprintf(def_id, sizeof def_id, "%s", th_str(r->json, "id"));
    snprintf(def_at, sizeof def_at, "%s", th_str(r->json, "updated_at"));
    EXPECT_R(r, CLIENT, "POST", "/v1/schedules",
             "{\"name\":\"rd-sched\",\"cron\":\"0 3 1 1 *\",\"definition\":\"rd-def\"}", 201, NULL);
    CHECK_STR(th_str(r->json, "namespace"), "acme");
    snprintf(sched_id, sizeof sched_id, "%s", th_str(r->json, "id"));
    snprintf(sched_at, sizeof sched_at, "%s", th_str(r->json, "updated_at"));
    const char *backfill = "{\"from\":\"2020-01-01T00:00:00Z\",\"to\":\"2020-01-02T00:00:00Z\"}";

    /* A worker and a reader may write none of it: each write is 403. */
    for (int who = WORKER; who <= READER; who++) {
        const char *keys[] = {"rd-def", def_id};
        EXPECT(who, "POST", "/v1/definitions",
               fmt("{\"name\":\"rd-%s\",\"type\":\"x\"}", tok_role[who]), 403, "permission_denied");
        EXPECT(who, "POST", "/v1/schedules",
               fmt("{\"name\":\"rd-%s\",\"cron\":\"0 3 1 1 *\",\"task\":{\"type\":\"x\"}}",
                   tok_role[who]),
               403, "permission_denied");
        for (int k = 0; k < 2; k++) {
            EXPECT(who, "PUT", fmt("/v1/definitions/%s", keys[k]),
                   "{\"name\":\"rd-def\",\"type\":\"changed\"}", 403, "permission_denied");
            EXPECT(who, "DELETE", fmt("/v1/definitions/%s", keys[k]), NULL, 403,
                   "permission_denied");
            EXPECT(who, "POST", fmt("/v1/definitions/%s/launch", keys[k]), "{}", 403,
                   "permission_denied");
        }
        const char *skeys[] = {"rd-sched", sched_id};
        for (int k = 0; k < 2; k++) {
            const char *s = skeys[k];
            EXPECT(who, "PUT", fmt("/v1/schedules/%s", s),
                   "{\"name\":\"rd-sched\",\"cron\":\"* * * * *\",\"definition\":\"rd-def\"}", 403,
                   "permission_denied");
            EXPECT(who, "POST", fmt("/v1/schedules/%s/pause", s), "{\"note\":\"no\"}", 403,
                   "permission_denied");
            EXPECT(who, "POST", fmt("/v1/schedules/%s/resume", s), NULL, 403, "permission_denied");
            EXPECT(who, "POST", fmt("/v1/schedules/%s/trigger", s), NULL, 403, "permission_denied");
            EXPECT(who, "POST", fmt("/v1/schedules/%s/backfill", s), backfill, 403,
                   "permission_denied");
            EXPECT(who, "DELETE", fmt("/v1/schedules/%s", s), NULL, 403, "permission_denied");
        }
    }
    /* Nothing of that was stored or changed. */
    json_t *j = admin_json(fmt("/v1/definitions/%s", def_id));
    CHECK(j != NULL);
    CHECK_STR(th_str(j, "type"), "rd");
    CHECK_STR(th_str(j, "updated_at"), def_at);
    j = admin_json("/v1/definitions");
    CHECK(j && !find_by(th_get(j, "definitions"), "name", "rd-worker"));
    CHECK(!find_by(th_get(j, "definitions"), "name", "rd-reader"));
    j = admin_json(fmt("/v1/schedules/%s", sched_id));
    CHECK(j != NULL);
    CHECK_STR(th_str(j, "cron"), "0 3 1 1 *");
    CHECK(json_is_false(th_get(j, "paused")));
    CHECK(json_is_null(th_get(j, "note")));
    CHECK_INT(th_int(j, "fires"), 0);
    CHECK_STR(th_str(j, "updated_at"), sched_at);
    j = admin_json(fmt("/v1/schedules/%s/fires", sched_id));
    CHECK(j && json_array_size(th_get(j, "fires")) == 0);
    j = admin_json("/v1/schedules");
    CHECK(j && !find_by(th_get(j, "schedules"), "name", "rd-worker"));
    CHECK(!find_by(th_get(j, "schedules"), "name", "rd-reader"));
    CHECK_INT(admin_count("queue=rdq"), 0); /* no launch, trigger or backfill made a task */

    /* Reads: the reader gets them, the worker does not. */
    const char *reads[] = {"/v1/definitions",
                           "/v1/definitions/rd-def",
                           "/v1/schedules",
                           "/v1/schedules/rd-sched",
                           "/v1/schedules/rd-sched/preview?count=2",
                           "/v1/schedules/rd-sched/fires"};
    for (size_t i = 0; i < sizeof reads / sizeof reads[0]; i++) {
        EXPECT(READER, "GET", reads[i], NULL, 200, NULL);
        EXPECT(CLIENT, "GET", reads[i], NULL, 200, NULL);
        EXPECT(WORKER, "GET", reads[i], NULL, 403, "permission_denied");
    }
    EXPECT_R(r, READER, "GET", "/v1/schedules/rd-sched/preview?count=2", NULL, 200, NULL);
    CHECK_INT(json_array_size(th_get(r->json, "fires")), 2);

    /* The client's writes work, in its namespace. */
    EXPECT_R(r, CLIENT, "PUT", "/v1/definitions/rd-def",
             "{\"name\":\"rd-def\",\"type\":\"rd2\",\"queue\":\"rdq\"}", 200, NULL);
    CHECK_STR(th_str(r->json, "type"), "rd2");
    EXPECT_R(r, CLIENT, "POST", "/v1/definitions/rd-def/launch", "{\"params\":{\"n\":\"1\"}}", 201,
             NULL);
    CHECK_STR(th_str(r->json, "namespace"), "acme");
    CHECK_STR(th_str(r->json, "definition.id"), def_id);
    EXPECT_R(r, CLIENT, "POST", "/v1/schedules/rd-sched/pause", "{\"note\":\"maintenance\"}", 200,
             NULL);
    CHECK(json_is_true(th_get(r->json, "paused")));
    CHECK_STR(th_str(r->json, "note"), "maintenance");
    /* A reader cannot resume it either. */
    EXPECT(READER, "POST", "/v1/schedules/rd-sched/resume", NULL, 403, "permission_denied");
    CHECK(json_is_true(th_get(admin_json(fmt("/v1/schedules/%s", sched_id)), "paused")));
    EXPECT_R(r, CLIENT, "POST", "/v1/schedules/rd-sched/resume", NULL, 200, NULL);
    CHECK(json_is_false(th_get(r->json, "paused")));
    EXPECT_R(r, CLIENT, "POST", "/v1/schedules/rd-sched/trigger", NULL, 201, NULL);
    CHECK_STR(th_str(r->json, "task.namespace"), "acme");
    CHECK_STR(th_str(r->json, "task.launcher"), "schedule:rd-sched");
    EXPECT_R(r, CLIENT, "POST", "/v1/schedules/rd-sched/backfill", backfill, 200, NULL);
    CHECK_INT(th_int(r->json, "fired"), 1);
    CHECK_INT(admin_count("queue=rdq"), 3); /* launch, trigger, backfill */
    EXPECT_R(r, CLIENT, "PUT", "/v1/schedules/rd-sched",
             "{\"name\":\"rd-sched\",\"cron\":\"0 4 1 1 *\",\"definition\":\"rd-def\"}", 200, NULL);
    CHECK_STR(th_str(r->json, "cron"), "0 4 1 1 *");
    /* The admin steers the client's schedule too (every namespace). */
    EXPECT_R(r, ADMIN, "POST", fmt("/v1/schedules/%s/trigger", sched_id), NULL, 201, NULL);
    CHECK_STR(th_str(r->json, "task.namespace"), "acme");
    EXPECT(ADMIN, "POST", fmt("/v1/schedules/%s/pause", sched_id), NULL, 200, NULL);
    EXPECT(ADMIN, "POST", fmt("/v1/schedules/%s/resume", sched_id), NULL, 200, NULL);
    /* And the client deletes both. */
    EXPECT(CLIENT, "DELETE", "/v1/schedules/rd-sched", NULL, 204, NULL);
    EXPECT(ADMIN, "GET", fmt("/v1/schedules/%s", sched_id), NULL, 404, "not_found");
    EXPECT(CLIENT, "DELETE", fmt("/v1/definitions/%s", def_id), NULL, 204, NULL);
    EXPECT(ADMIN, "GET", fmt("/v1/definitions/%s", def_id), NULL, 404, "not_found");
}

/*
 * Another namespace's definitions and schedules answer 404 not_found, by
 * id and by name, for every read and write, exactly as ones that do not
 * exist (docs/security.md, "Tenants do not trust each other"); a name
 * taken in acme is free in beta (a 409 would tell beta it exists); and a
 * body cannot place one in another namespace or point at another
 * namespace's definition.
 */
static void test_definitions_and_schedules_other_namespace(void) {
    struct th_resp *r;
    char def_id[64], sched_id[64], def_at[64], sched_at[64];
    EXPECT_R(r, CLIENT, "POST", "/v1/definitions",
             "{\"name\":\"ns-def\",\"type\":\"ns\",\"queue\":\"nsq\"}", 201, NULL);
    snprintf(def_id, sizeof def_id, "%s", th_str(r->json, "id"));
    snprintf(def_at, sizeof def_at, "%s", th_str(r->json, "updated_at"));
    EXPECT_R(r, CLIENT, "POST", "/v1/schedules",
             "{\"name\":\"ns-sched\",\"cron\":\"0 3 1 1 *\",\"definition\":\"ns-def\"}", 201, NULL);
    snprintf(sched_id, sizeof sched_id, "%s", th_str(r->json, "id"));
    snprintf(sched_at, sizeof sched_at, "%s", th_str(r->json, "updated_at"));
    const char *backfill = "{\"from\":\"2020-01-01T00:00:00Z\",\"to\":\"2020-01-02T00:00:00Z\"}";
    const char *dkeys[] = {"ns-def", def_id}, *skeys[] = {"ns-sched", sched_id};
    for (int k = 0; k < 2; k++) {
        const char *d = dkeys[k], *s = skeys[k];
        /* Reads, by beta's client and reader. */
        for (int who = CLIENT_B; who <= READER_B; who += READER_B - CLIENT_B) {
            EXPECT(who, "GET", fmt("/v1/definitions/%s", d), NULL, 404, "not_found");
            EXPECT(who, "GET", fmt("/v1/schedules/%s", s), NULL, 404, "not_found");
            EXPECT(who, "GET", fmt("/v1/schedules/%s/preview", s), NULL, 404, "not_found");
            EXPECT(who, "GET", fmt("/v1/schedules/%s/fires", s), NULL, 404, "not_found");
        }
        /* Writes, by beta's client. */
        EXPECT(CLIENT_B, "PUT", fmt("/v1/definitions/%s", d),
               "{\"name\":\"ns-def\",\"type\":\"stolen\"}", 404, "not_found");
        EXPECT(CLIENT_B, "POST", fmt("/v1/definitions/%s/launch", d), "{}", 404, "not_found");
        EXPECT(CLIENT_B, "DELETE", fmt("/v1/definitions/%s", d), NULL, 404, "not_found");
        EXPECT(CLIENT_B, "PUT", fmt("/v1/schedules/%s", s),
               "{\"name\":\"ns-sched\",\"cron\":\"* * * * *\",\"task\":{\"type\":\"x\"}}", 404,
               "not_found");
        EXPECT(CLIENT_B, "POST", fmt("/v1/schedules/%s/pause", s), NULL, 404, "not_found");
        EXPECT(CLIENT_B, "POST", fmt("/v1/schedules/%s/resume", s), NULL, 404, "not_found");
        EXPECT(CLIENT_B, "POST", fmt("/v1/schedules/%s/trigger", s), NULL, 404, "not_found");
        EXPECT(CLIENT_B, "POST", fmt("/v1/schedules/%s/backfill", s), backfill, 404, "not_found");
        EXPECT(CLIENT_B, "DELETE", fmt("/v1/schedules/%s", s), NULL, 404, "not_found");
        /* beta's worker: its role first. */
        EXPECT(WORKER_B, "GET", fmt("/v1/schedules/%s", s), NULL, 403, "permission_denied");
    }
    /* beta's lists do not show them. */
    EXPECT_R(r, CLIENT_B, "GET", "/v1/definitions", NULL, 200, NULL);
    CHECK(!find_by(th_get(r->json, "definitions"), "id", def_id));
    EXPECT_R(r, READER_B, "GET", "/v1/schedules", NULL, 200, NULL);
    CHECK(!find_by(th_get(r->json, "schedules"), "id", sched_id));
    /* A schedule of beta's cannot launch acme's definition. */
    EXPECT_R(r, CLIENT_B, "POST", "/v1/schedules",
             fmt("{\"name\":\"ns-steal\",\"cron\":\"0 3 1 1 *\",\"definition\":\"%s\"}", def_id),
             400, "invalid_argument");
    CHECK_STR(th_str(r->json, "error.field"), "definition");
    /* acme's client cannot place one in beta. */
    EXPECT_R(r, CLIENT, "POST", "/v1/definitions",
             "{\"name\":\"ns-into-beta\",\"type\":\"x\",\"namespace\":\"beta\"}", 400,
             "invalid_argument");
    CHECK_STR(th_str(r->json, "error.field"), "namespace");
    EXPECT_R(r, CLIENT, "POST", "/v1/schedules",
             "{\"name\":\"ns-into-beta\",\"cron\":\"0 3 1 1 *\",\"namespace\":\"beta\","
             "\"task\":{\"type\":\"x\"}}",
             400, "invalid_argument");
    CHECK_STR(th_str(r->json, "error.field"), "namespace");
    EXPECT_R(r, CLIENT, "POST", "/v1/schedules",
             "{\"name\":\"ns-into-beta\",\"cron\":\"0 3 1 1 *\","
             "\"task\":{\"type\":\"x\",\"namespace\":\"beta\"}}",
             400, "invalid_argument");
    CHECK_STR(th_str(r->json, "error.field"), "task.namespace");
    json_t *j = admin_json("/v1/definitions");
    CHECK(j && !find_by(th_get(j, "definitions"), "name", "ns-into-beta"));
    j = admin_json("/v1/schedules");
    CHECK(j && !find_by(th_get(j, "schedules"), "name", "ns-into-beta"));
    CHECK(!find_by(th_get(j, "schedules"), "name", "ns-steal"));
    /* acme's are as they were: nothing fired, nothing launched, nothing renamed. */
    j = admin_json(fmt("/v1/definitions/%s", def_id));
    CHECK(j != NULL);
    CHECK_STR(th_str(j, "type"), "ns");
    CHECK_STR(th_str(j, "namespace"), "acme");
    CHECK_STR(th_str(j, "updated_at"), def_at);
    j = admin_json(fmt("/v1/schedules/%s", sched_id));
    CHECK(j != NULL);
    CHECK_STR(th_str(j, "cron"), "0 3 1 1 *");
    CHECK(json_is_false(th_get(j, "paused")));
    CHECK_INT(th_int(j, "fires"), 0);
    CHECK_STR(th_str(j, "updated_at"), sched_at);
    CHECK_INT(admin_count("queue=nsq"), 0);
    /* The same names are free in beta: acme's taking them is not visible there. */
    EXPECT_R(r, CLIENT_B, "POST", "/v1/definitions", "{\"name\":\"ns-def\",\"type\":\"b\"}", 201,
             NULL);
    CHECK_STR(th_str(r->json, "namespace"), "beta");
    CHECK(strcmp(th_str(r->json, "id"), def_id) != 0);
    EXPECT_R(r, CLIENT_B, "POST", "/v1/schedules",
             "{\"name\":\"ns-sched\",\"cron\":\"0 3 1 1 *\",\"definition\":\"ns-def\"}", 201, NULL);
    CHECK_STR(th_str(r->json, "namespace"), "beta");
    /* Each namespace's name now finds its own. */
    EXPECT_R(r, CLIENT, "GET", "/v1/definitions/ns-def", NULL, 200, NULL);
    CHECK_STR(th_str(r->json, "id"), def_id);
    EXPECT_R(r, CLIENT_B, "GET", "/v1/definitions/ns-def", NULL, 200, NULL);
    CHECK_STR(th_str(r->json, "type"), "b");
    EXPECT_R(r, CLIENT_B, "POST", "/v1/schedules/ns-sched/trigger", NULL, 201, NULL);
    CHECK_STR(th_str(r->json, "task.namespace"), "beta");
    CHECK_STR(th_str(r->json, "task.type"), "b");
    j = admin_json(fmt("/v1/schedules/%s", sched_id));
    CHECK(j && th_int(j, "fires") == 0);
    /* The admin, who has no namespace, names them by a name both have:
     * 409, whichever the call, and nothing changes; by id it reaches each. */
    EXPECT(ADMIN, "GET", "/v1/definitions/ns-def", NULL, 409, "conflict");
    EXPECT_R(r, ADMIN, "PUT", "/v1/definitions/ns-def", "{\"name\":\"ns-def\",\"type\":\"admin\"}",
             409, "conflict");
    CHECK(strstr(th_str(r->json, "error.message"), "several namespaces") != NULL);
    EXPECT(ADMIN, "POST", "/v1/definitions/ns-def/launch", "{}", 409, "conflict");
    EXPECT(ADMIN, "DELETE", "/v1/definitions/ns-def", NULL, 409, "conflict");
    EXPECT(ADMIN, "GET", "/v1/schedules/ns-sched", NULL, 409, "conflict");
    EXPECT(ADMIN, "POST", "/v1/schedules/ns-sched/pause", NULL, 409, "conflict");
    EXPECT(ADMIN, "POST", "/v1/schedules/ns-sched/trigger", NULL, 409, "conflict");
    EXPECT(ADMIN, "DELETE", "/v1/schedules/ns-sched", NULL, 409, "conflict");
    j = admin_json(fmt("/v1/definitions/%s", def_id));
    CHECK(j && strcmp(th_str(j, "type"), "ns") == 0);
    j = admin_json(fmt("/v1/schedules/%s", sched_id));
    CHECK(j && json_is_false(th_get(j, "paused")) && th_int(j, "fires") == 0);
    EXPECT(ADMIN, "POST", fmt("/v1/schedules/%s/pause", sched_id), NULL, 200, NULL);
    EXPECT(ADMIN, "POST", fmt("/v1/schedules/%s/resume", sched_id), NULL, 200, NULL);
}

/* The webhooks an admin sees whose url is `url`. */
static int admin_webhooks_with_url(const char *url) {
    json_t *j = admin_json("/v1/webhooks");
    int n = 0;
    size_t i;
    json_t *v;
    json_array_foreach(json_object_get(j, "webhooks"), i, v) {
        if (strcmp(json_string_value(json_object_get(v, "url")), url) == 0) n++;
    }
    return j ? n : -1;
}

/*
 * POST /v1/webhooks with each role (admin and client may; docs/events.md:
 * a token's namespace overrides the body's), and another namespace's
 * webhooks: 404 to read, list, delete or read the deliveries of, including
 * an admin's webhook of every namespace. The webhooks made are deleted at
 * the end, so nothing is sent for the tests after.
 */
static void test_webhooks_by_role_and_namespace(void) {
    struct th_resp *r;
    char admin_hook[64], client_hook[64], moved_hook[64], global_hook[64];
    EXPECT_R(r, ADMIN, "POST", "/v1/webhooks",
             "{\"url\":\"https://hooks.example.com/admin\",\"namespace\":\"acme\"}", 201, NULL);
    CHECK_STR(th_str(r->json, "namespace"), "acme");
    CHECK(th_str(r->json, "secret") != NULL);
    CHECK(strcasestr(r->headers, "Cache-Control: no-store") != NULL);
    snprintf(admin_hook, sizeof admin_hook, "%s", th_str(r->json, "id"));
    EXPECT_R(r, CLIENT, "POST", "/v1/webhooks", "{\"url\":\"https://hooks.example.com/client\"}",
             201, NULL);
    CHECK_STR(th_str(r->json, "namespace"), "acme");
    snprintf(client_hook, sizeof client_hook, "%s", th_str(r->json, "id"));
    /* A body naming another namespace gets the token's (docs/events.md). */
    EXPECT_R(r, CLIENT, "POST", "/v1/webhooks",
             "{\"url\":\"https://hooks.example.com/moved\",\"namespace\":\"beta\"}", 201, NULL);
    CHECK_STR(th_str(r->json, "namespace"), "acme");
    snprintf(moved_hook, sizeof moved_hook, "%s", th_str(r->json, "id"));
    EXPECT_R(r, CLIENT_B, "GET", "/v1/webhooks", NULL, 200, NULL);
    CHECK(!find_by(th_get(r->json, "webhooks"), "id", moved_hook));
    /* A namespace that is no namespace is 400 for the client too, as a task's
     * is, though the token's would replace it: nothing stored. */
    EXPECT_R(r, CLIENT, "POST", "/v1/webhooks",
             "{\"url\":\"https://hooks.example.com/badns\",\"namespace\":\"bad ns\"}", 400,
             "invalid_argument");
    CHECK_STR(th_str(r->json, "error.field"), "namespace");
    CHECK_INT(admin_webhooks_with_url("https://hooks.example.com/badns"), 0);
    /* Worker and reader: 403, and nothing stored. */
    for (int who = WORKER; who <= READER; who++) {
        EXPECT(who, "POST", "/v1/webhooks",
               fmt("{\"url\":\"https://hooks.example.com/%s\"}", tok_role[who]), 403,
               "permission_denied");
        CHECK_INT(admin_webhooks_with_url(fmt("https://hooks.example.com/%s", tok_role[who])), 0);
        EXPECT(who, "GET", fmt("/v1/webhooks/%s", client_hook), NULL, 403, "permission_denied");
        EXPECT(who, "GET", fmt("/v1/webhooks/%s/deliveries", client_hook), NULL, 403,
               "permission_denied");
        EXPECT(who, "DELETE", fmt("/v1/webhooks/%s", client_hook), NULL, 403, "permission_denied");
    }
    EXPECT(CLIENT, "GET", fmt("/v1/webhooks/%s", admin_hook), NULL, 200, NULL);
    EXPECT(CLIENT, "GET", fmt("/v1/webhooks/%s/deliveries", client_hook), NULL, 200, NULL);
    /* An admin's webhook of every namespace is not a tenant's to see or delete. */
    EXPECT_R(r, ADMIN, "POST", "/v1/webhooks", "{\"url\":\"https://hooks.example.com/global\"}",
             201, NULL);
    CHECK(json_is_null(th_get(r->json, "namespace")));
    snprintf(global_hook, sizeof global_hook, "%s", th_str(r->json, "id"));
    EXPECT_R(r, CLIENT, "GET", "/v1/webhooks", NULL, 200, NULL);
    CHECK(!find_by(th_get(r->json, "webhooks"), "id", global_hook));
    EXPECT(CLIENT, "GET", fmt("/v1/webhooks/%s", global_hook), NULL, 404, "not_found");
    EXPECT(CLIENT, "GET", fmt("/v1/webhooks/%s/deliveries", global_hook), NULL, 404, "not_found");
    EXPECT(CLIENT, "DELETE", fmt("/v1/webhooks/%s", global_hook), NULL, 404, "not_found");
    CHECK_INT(admin_webhooks_with_url("https://hooks.example.com/global"), 1);
    EXPECT(ADMIN, "DELETE", fmt("/v1/webhooks/%s", global_hook), NULL, 204, NULL);
    /* beta's client: acme's are not there. */
    const char *acme_hooks[] = {admin_hook, client_hook};
    for (int k = 0; k < 2; k++) {
        EXPECT(CLIENT_B, "GET", fmt("/v1/webhooks/%s", acme_hooks[k]), NULL, 404, "not_found");
        EXPECT(CLIENT_B, "GET", fmt("/v1/webhooks/%s/deliveries", acme_hooks[k]), NULL, 404,
               "not_found");
        EXPECT(CLIENT_B, "DELETE", fmt("/v1/webhooks/%s", acme_hooks[k]), NULL, 404, "not_found");
    }
    EXPECT_R(r, CLIENT_B, "GET", "/v1/webhooks", NULL, 200, NULL);
    CHECK(!find_by(th_get(r->json, "webhooks"), "id", admin_hook));
    CHECK(!find_by(th_get(r->json, "webhooks"), "id", client_hook));
    CHECK_INT(admin_webhooks_with_url("https://hooks.example.com/admin"), 1);
    CHECK_INT(admin_webhooks_with_url("https://hooks.example.com/client"), 1);
    /* The client deletes its namespace's, the admin's among them. */
    EXPECT(CLIENT, "DELETE", fmt("/v1/webhooks/%s", admin_hook), NULL, 204, NULL);
    EXPECT(CLIENT, "DELETE", fmt("/v1/webhooks/%s", client_hook), NULL, 204, NULL);
    EXPECT(ADMIN, "DELETE", fmt("/v1/webhooks/%s", moved_hook), NULL, 204, NULL);
    EXPECT_R(r, ADMIN, "GET", "/v1/webhooks", NULL, 200, NULL);
    CHECK_INT(json_array_size(th_get(r->json, "webhooks")), 0);
}

/* A task's phase as the admin reads it ("" when it cannot). */
static const char *admin_phase(const char *id) {
    static char phase[32];
    json_t *j = admin_json(fmt("/v1/tasks/%s", id));
    snprintf(phase, sizeof phase, "%s", j && th_str(j, "phase") ? th_str(j, "phase") : "");
    return phase;
}

/* Submits a task as tok[who]; its id into id (64), or "" */
static void submit_as(int who, const char *body, char *id) {
    struct th_resp *r = sec_http(&srv, tok[who], "POST", "/v1/tasks", body);
    snprintf(id, 64, "%s", r->status == 201 && th_str(r->json, "id") ? th_str(r->json, "id") : "");
}

/*
 * POST /v1/tasks/bulk (docs/api.md 7.5b): cancel, retry, pause, resume for
 * admin and client, delete for admin only (403 otherwise, field action);
 * workers and readers not at all. A client's filter sees only its
 * namespace, whatever `namespace` the filter names.
 */
static void test_bulk_by_role_and_namespace(void) {
    struct th_resp *r;
    char a1[64], a2[64], b1[64];
    submit_as(CLIENT, "{\"type\":\"bk\",\"queue\":\"bulkq\"}", a1);
    submit_as(CLIENT, "{\"type\":\"bk\",\"queue\":\"bulkq\"}", a2);
    submit_as(CLIENT_B, "{\"type\":\"bk\",\"queue\":\"bulkq\"}", b1);
    CHECK(a1[0] && a2[0] && b1[0]);
    const char *cancel2 = "{\"action\":\"cancel\",\"filter\":{\"queue\":\"bulkq\"},\"expected\":2}";
    for (int who = WORKER; who <= READER; who++) {
        EXPECT(who, "POST", "/v1/tasks/bulk",
               "{\"action\":\"cancel\",\"filter\":{\"queue\":\"bulkq\"},\"dry_run\":true}", 403,
               "permission_denied");
        EXPECT(who, "POST", "/v1/tasks/bulk", cancel2, 403, "permission_denied");
    }
    CHECK_STR(admin_phase(a1), "pending");
    CHECK_STR(admin_phase(a2), "pending");
    /* The client counts its own two, not beta's. */
    EXPECT_R(r, CLIENT, "POST", "/v1/tasks/bulk",
             "{\"action\":\"cancel\",\"filter\":{\"queue\":\"bulkq\"},\"dry_run\":true}", 200,
             NULL);
    CHECK_INT(th_int(r->json, "matched"), 2);
    EXPECT_R(r, CLIENT, "POST", "/v1/tasks/bulk",
             "{\"action\":\"cancel\",\"filter\":{\"namespace\":\"beta\"},\"dry_run\":true}", 200,
             NULL);
    CHECK_INT(th_int(r->json, "matched"), 0);
    /* Delete is the admin's: 403 naming `action`, dry run or not, and nothing goes. */
    EXPECT_R(r, CLIENT, "POST", "/v1/tasks/bulk",
             "{\"action\":\"delete\",\"filter\":{\"queue\":\"bulkq\"},\"dry_run\":true}", 403,
             "permission_denied");
    CHECK_STR(th_str(r->json, "error.field"), "action");
    EXPECT(CLIENT, "POST", "/v1/tasks/bulk",
           "{\"action\":\"delete\",\"filter\":{\"queue\":\"bulkq\"},\"expected\":2}", 403,
           "permission_denied");
    CHECK_INT(admin_count("queue=bulkq"), 3);
    /* The client's cancel: its two, not beta's. */
    EXPECT_R(r, CLIENT, "POST", "/v1/tasks/bulk", cancel2, 200, NULL);
    CHECK_INT(th_int(r->json, "changed"), 2);
    CHECK_STR(admin_phase(a1), "cancelled");
    CHECK_STR(admin_phase(a2), "cancelled");
    CHECK_STR(admin_phase(b1), "pending");
    /* A filter naming beta acts on nothing. */
    EXPECT_R(r, CLIENT, "POST", "/v1/tasks/bulk",
             "{\"action\":\"pause\",\"filter\":{\"namespace\":\"beta\"},\"expected\":0}", 200,
             NULL);
    CHECK_INT(th_int(r->json, "changed"), 0);
    json_t *j = admin_json(fmt("/v1/tasks/%s", b1));
    CHECK(j && json_is_false(th_get(j, "paused")));
    /* beta's client does not see acme's cancelled tasks to retry. */
    EXPECT_R(r, CLIENT_B, "POST", "/v1/tasks/bulk",
             "{\"action\":\"retry\",\"filter\":{\"queue\":\"bulkq\",\"phase\":\"cancelled\"},"
             "\"dry_run\":true}",
             200, NULL);
    CHECK_INT(th_int(r->json, "matched"), 0);
    /* The admin deletes them. */
    const char *del =
        "{\"action\":\"delete\",\"filter\":{\"queue\":\"bulkq\",\"phase\":"
        "\"cancelled\"},\"expected\":2}";
    EXPECT_R(r, ADMIN, "POST", "/v1/tasks/bulk", del, 200, NULL);
    CHECK_INT(th_int(r->json, "changed"), 2);
    EXPECT(ADMIN, "GET", fmt("/v1/tasks/%s", a1), NULL, 404, "not_found");
    CHECK_STR(admin_phase(b1), "pending");
}

/* The sum of `submitted` over a stats reply's buckets. */
static long long stats_submitted(json_t *j) {
    long long n = 0;
    size_t i;
    json_t *v;
    json_array_foreach(json_object_get(j, "buckets"), i, v) {
        n += json_integer_value(json_object_get(v, "submitted"));
    }
    return n;
}

/* The state of queue q in the admin's GET /v1/queues ("" when not listed). */
static const char *queue_state(const char *q) {
    json_t *v = find_by(th_get(admin_json("/v1/queues"), "queues"), "name", q);
    const char *s = v ? json_string_value(json_object_get(v, "state")) : NULL;
    return s ? s : "";
}

/*
 * Queue pause and resume (admin only), queue stats (admin, client,
 * reader; counts of the token's namespace), a task's attempts (admin,
 * client, reader; another namespace's task 404) and whoami (every role).
 */
static void test_queues_attempts_whoami_by_role(void) {
    struct th_resp *r;
    char t1[64], t2[64];
    submit_as(CLIENT, "{\"type\":\"pq\",\"queue\":\"pauseq\"}", t1);
    CHECK(t1[0]);
    /* Refused pauses leave it handing out tasks. */
    for (int who = CLIENT; who <= READER; who++)
        EXPECT(who, "POST", "/v1/queues/pauseq/pause", NULL, 403, "permission_denied");
    CHECK_STR(queue_state("pauseq"), "active");
    EXPECT_R(r, WORKER, "POST", "/v1/queues/pauseq/claim", "{\"worker\":\"w-att\"}", 200, NULL);
    CHECK_STR(th_str(r->json, "task.id"), t1);
    char body[128];
    snprintf(body, sizeof body, "{\"lease_token\":\"%s\",\"error\":\"flaky\",\"retryable\":false}",
             th_str(r->json, "lease_token"));
    EXPECT(WORKER, "POST", fmt("/v1/tasks/%s/fail", t1), body, 200, NULL);
    /* The admin pauses it; refused resumes leave it paused. */
    EXPECT_R(r, ADMIN, "POST", "/v1/queues/pauseq/pause", NULL, 200, NULL);
    CHECK_STR(th_str(r->json, "state"), "paused");
    submit_as(CLIENT, "{\"type\":\"pq\",\"queue\":\"pauseq\"}", t2);
    CHECK(t2[0]);
    for (int who = CLIENT; who <= READER; who++)
        EXPECT(who, "POST", "/v1/queues/pauseq/resume", NULL, 403, "permission_denied");
    CHECK_STR(queue_state("pauseq"), "paused");
    EXPECT(WORKER, "POST", "/v1/queues/pauseq/claim", "{\"worker\":\"w\"}", 204, NULL);
    EXPECT_R(r, ADMIN, "POST", "/v1/queues/pauseq/resume", NULL, 200, NULL);
    CHECK_STR(th_str(r->json, "state"), "active");
    CHECK(sec_log_has(&srv, fmt("queue 'pauseq' paused by '%s'", tok_id[ADMIN])));
    /* A repeat is a no-op, and not logged as a pause: the lines are written
     * before each reply, in order, so the resume's line follows every pause's. */
    EXPECT(ADMIN, "POST", "/v1/queues/pauseq/pause", NULL, 200, NULL);
    EXPECT(ADMIN, "POST", "/v1/queues/pauseq/pause", NULL, 200, NULL);
    EXPECT(ADMIN, "POST", "/v1/queues/pauseq/resume", NULL, 200, NULL);
    EXPECT(ADMIN, "POST", "/v1/queues/pauseq/resume", NULL, 200, NULL);
    CHECK(sec_log_lines(&srv, "queue 'pauseq' resumed by", NULL) == 2);
    CHECK(sec_log_lines(&srv, "queue 'pauseq' paused by", NULL) == 2);

    /* Stats: acme's reader and client count acme's submits; beta's reader none of them. */
    for (int who = CLIENT; who <= READER; who += READER - CLIENT) {
        EXPECT_R(r, who, "GET", "/v1/queues/pauseq/stats", NULL, 200, NULL);
        CHECK_INT(stats_submitted(r->json), 2);
    }
    EXPECT_R(r, READER_B, "GET", "/v1/queues/pauseq/stats", NULL, 200, NULL);
    CHECK_INT(json_array_size(th_get(r->json, "buckets")), 60);
    CHECK_INT(stats_submitted(r->json), 0);
    EXPECT(WORKER, "GET", "/v1/queues/pauseq/stats", NULL, 403, "permission_denied");
    EXPECT_R(r, ADMIN, "GET", "/v1/queues/pauseq/stats?range=day", NULL, 200, NULL);
    CHECK(stats_submitted(r->json) >= 2);

    /* Attempts: the claim above, for readers; not for workers; 404 to beta. */
    for (int who = ADMIN; who <= READER; who++) {
        if (who == WORKER) continue;
        EXPECT_R(r, who, "GET", fmt("/v1/tasks/%s/attempts", t1), NULL, 200, NULL);
        CHECK_STR(th_str(r->json, "task_id"), t1);
        CHECK_STR(th_str(r->json, "attempts.0.worker"), "w-att");
        CHECK_STR(th_str(r->json, "attempts.0.error"), "flaky");
    }
    EXPECT(WORKER, "GET", fmt("/v1/tasks/%s/attempts", t1), NULL, 403, "permission_denied");
    EXPECT(CLIENT_B, "GET", fmt("/v1/tasks/%s/attempts", t1), NULL, 404, "not_found");
    EXPECT(READER_B, "GET", fmt("/v1/tasks/%s/attempts", t1), NULL, 404, "not_found");
    EXPECT(CLIENT, "GET", "/v1/tasks/00000000000000000000000000000000/attempts", NULL, 404,
           "not_found");

    /* whoami: every role, its own namespace; an admin's is null (it sees all). */
    for (int who = ADMIN; who < NTOK; who++) {
        EXPECT_R(r, who, "GET", "/v1/whoami", NULL, 200, NULL);
        CHECK(json_is_false(th_get(r->json, "open")));
        CHECK_STR(th_str(r->json, "role"), tok_role[who]);
        CHECK_STR(th_str(r->json, "token_id"), tok_id[who]);
        CHECK_STR(th_str(r->json, "name"), "test");
        if (who == ADMIN) {
            CHECK(json_is_null(th_get(r->json, "namespace")));
            CHECK_STR(th_str(r->json, "token_namespace"), tok_ns[who]);
        } else {
            CHECK_STR(th_str(r->json, "namespace"), tok_ns[who]);
        }
    }
    EXPECT(-1, "GET", "/v1/whoami", NULL, 401, "unauthenticated");
}

/* Whether a JSON array (a view's list) has an element whose "id" is id. */
static bool listed(json_t *arr, const char *id) {
    return json_is_array(arr) && find_by(arr, "id", id) != NULL;
}

/*
 * The SailPoint and Livepeer views (docs/compat.md): a token of acme can
 * neither read nor change a task of beta through them, which answers as a
 * task that does not exist does, in each API's shape (SailPoint's
 * ErrorResponseDto "404 Not found", Livepeer's {"errors":["not found"]});
 * their lists and filters do not show it; and their role rules (reads
 * admin, client, reader; PATCH and retry admin, client).
 */
static void test_views_other_namespace_and_roles(void) {
    struct th_resp *r;
    char pend[64], canc[64];
    submit_as(CLIENT_B, "{\"type\":\"vw\",\"queue\":\"viewq\",\"name\":\"beta-secret\"}", pend);
    submit_as(CLIENT_B, "{\"type\":\"vw\",\"queue\":\"viewq\"}", canc);
    CHECK(pend[0] && canc[0]);
    EXPECT(CLIENT_B, "POST", fmt("/v1/tasks/%s/cancel", canc), NULL, 200, NULL);
    /* Its owner reads it through each view, twice (the second from the read cache). */
    for (int i = 0; i < 2; i++) {
        EXPECT(CLIENT_B, "GET", fmt("/api/task/%s", pend), NULL, 200, NULL);
        EXPECT(CLIENT_B, "GET", fmt("/v2025/task-status/%s", pend), NULL, 200, NULL);
    }
    const char *ids[] = {pend, canc};
    /* Livepeer. */
    for (int who = CLIENT; who <= READER; who += READER - CLIENT) {
        for (int k = 0; k < 2; k++) {
            EXPECT_R(r, who, "GET", fmt("/api/task/%s", ids[k]), NULL, 404, NULL);
            CHECK_STR(json_string_value(json_array_get(th_get(r->json, "errors"), 0)), "not found");
        }
        EXPECT_R(r, who, "GET", "/api/task?limit=1000&count=1", NULL, 200, NULL);
        CHECK(json_is_array(r->json));
        CHECK(!listed(r->json, pend) && !listed(r->json, canc));
        EXPECT_R(r, who, "GET",
                 "/api/task?count=1&filters=%5B%7B%22id%22%3A%22projectId%22%2C%22value%22%3A%"
                 "22beta%22%7D%5D",
                 NULL, 200, NULL);
        CHECK_INT(json_array_size(r->json), 0);
        EXPECT_R(
            r, who, "GET",
            fmt("/api/task?filters=%%5B%%7B%%22id%%22%%3A%%22id%%22%%2C%%22value%%22%%3A%%22%s%%"
                "22%%7D%%5D",
                pend),
            NULL, 200, NULL);
        CHECK_INT(json_array_size(r->json), 0);
        EXPECT_R(r, who, "GET",
                 "/api/task?count=1&filters=%5B%7B%22id%22%3A%22projectId%22%2C%22value%22%3A%"
                 "22beta%22%7D%5D",
                 NULL, 200, NULL);
        char h[32];
        CHECK(th_resp_header(r, "X-Total-Count", h, sizeof h));
        CHECK_STR(h, "0");
    }
    EXPECT_R(r, CLIENT, "POST", fmt("/api/task/%s/retry", canc), NULL, 404, NULL);
    CHECK_STR(json_string_value(json_array_get(th_get(r->json, "errors"), 0)), "not found");
    CHECK_STR(admin_phase(canc), "cancelled");
    EXPECT_R(r, READER, "POST", fmt("/api/task/%s/retry", canc), NULL, 403, NULL);
    CHECK(json_is_string(json_array_get(th_get(r->json, "errors"), 0)));
    EXPECT_R(r, READER_B, "POST", fmt("/api/task/%s/retry", canc), NULL, 403, NULL);
    CHECK_STR(admin_phase(canc), "cancelled");
    EXPECT(WORKER, "GET", fmt("/api/task/%s", pend), NULL, 403, NULL);
    EXPECT(WORKER_B, "GET", fmt("/api/task/%s", pend), NULL, 403, NULL);

    /* SailPoint, under each of its prefixes. */
    const char *versions[] = {"beta", "v2024", "v2025"};
    for (int v = 0; v < 3; v++) {
        for (int who = CLIENT; who <= READER; who += READER - CLIENT) {
            EXPECT_R(r, who, "GET", fmt("/%s/task-status/%s", versions[v], pend), NULL, 404, NULL);
            CHECK_STR(th_str(r->json, "detailCode"), "404 Not found");
            EXPECT_R(r, who, "GET", fmt("/%s/task-status?limit=250", versions[v]), NULL, 200, NULL);
            CHECK(!listed(r->json, pend) && !listed(r->json, canc));
            r = sec_http(&srv, tok[who], "GET",
                         fmt("/%s/task-status/pending-tasks?limit=250", versions[v]), NULL);
            CHECK(r->status == 200 || r->status == 204);
            CHECK(r->status == 204 || !listed(r->json, pend));
            EXPECT_R(r, who, "GET",
                     fmt("/%s/task-status?filters=id%%20eq%%20%%22%s%%22", versions[v], pend), NULL,
                     200, NULL);
            CHECK_INT(json_array_size(r->json), 0);
        }
        EXPECT_R(r, WORKER, "GET", fmt("/%s/task-status/%s", versions[v], pend), NULL, 403, NULL);
        CHECK_STR(th_str(r->json, "detailCode"), "403 Forbidden");
    }
    const char *finish =
        "[{\"op\":\"replace\",\"path\":\"/completionStatus\",\"value\":\"SUCCESS\"}]";
    EXPECT_R(r, CLIENT, "PATCH", fmt("/v2025/task-status/%s", pend), finish, 404, NULL);
    CHECK_STR(th_str(r->json, "detailCode"), "404 Not found");
    EXPECT_R(r, READER, "PATCH", fmt("/v2025/task-status/%s", pend), finish, 403, NULL);
    CHECK_STR(th_str(r->json, "detailCode"), "403 Forbidden");
    EXPECT_R(r, READER_B, "PATCH", fmt("/beta/task-status/%s", pend), finish, 403, NULL);
    CHECK_STR(th_str(r->json, "detailCode"), "403 Forbidden");
    json_t *j = admin_json(fmt("/v1/tasks/%s", pend));
    CHECK(j != NULL);
    CHECK_STR(th_str(j, "phase"), "pending");
    CHECK(json_is_null(th_get(j, "completion_status")));
    CHECK_INT(th_int(j, "version"), 1);
    /* SailPoint's OAuth endpoint hands every role its own bearer (its roles then
     * apply as above), with its namespace as the tenant; a wrong secret gets none. */
    for (int who = ADMIN; who <= READER; who++) {
        const char *form = fmt("grant_type=client_credentials&client_id=%s&client_secret=%s",
                               tok_id[who], tok[who]);
        const char *h[] = {"Content-Type: application/x-www-form-urlencoded", NULL};
        r = th_http_raw(&srv, "POST", "/oauth/token", form, strlen(form), h);
        CHECK_INT(r->status, 200);
        CHECK_STR(th_str(r->json, "access_token"), tok[who]);
        /* An admin token's is its home namespace: a string, never null. */
        CHECK_STR(th_str(r->json, "tenant_id"), tok_ns[who]);
    }
    char wrong[128];
    snprintf(wrong, sizeof wrong, "%s", tok[READER]);
    wrong[strlen(wrong) - 1] = wrong[strlen(wrong) - 1] == '0' ? '1' : '0';
    const char *form =
        fmt("grant_type=client_credentials&client_id=%s&client_secret=%s", tok_id[READER], wrong);
    const char *form_h[] = {"Content-Type: application/x-www-form-urlencoded", NULL};
    r = th_http_raw(&srv, "POST", "/oauth/token", form, strlen(form), form_h);
    CHECK_INT(r->status, 401);
    CHECK_STR(th_str(r->json, "error"), "invalid_client");
    CHECK(th_get(r->json, "access_token") == NULL);
    /* The owner can do both: the requests above were sound. */
    EXPECT_R(r, CLIENT_B, "PATCH", fmt("/v2025/task-status/%s", pend),
             "[{\"op\":\"replace\",\"path\":\"/progress\",\"value\":\"half\"}]", 200, NULL);
    CHECK_STR(th_str(r->json, "progress"), "half");
    EXPECT_R(r, CLIENT_B, "POST", fmt("/api/task/%s/retry", canc), NULL, 200, NULL);
    CHECK_STR(th_str(r->json, "status.phase"), "pending");
}

/* Sends one Scene7 operation as tok[who], its credentials in the SOAP
 * authHeader, or (bearer) in an HTTP Authorization header. */
static struct th_resp *s7_call(int who, bool bearer, const char *op, const char *params) {
    char env[4096], auth[256];
    const char *soap_auth =
        bearer ? ""
               : fmt("<soapenv:Header><t:authHeader><t:user>%s</t:user><t:password>%s"
                     "</t:password></t:authHeader></soapenv:Header>",
                     tok_id[who], tok[who]);
    snprintf(env, sizeof env,
             "<soapenv:Envelope xmlns:soapenv=\"http://schemas.xmlsoap.org/soap/envelope/\""
             " xmlns:t=\"http://www.scene7.com/IpsApi/xsd/2014-04-03\">%s<soapenv:Body>"
             "<t:%sParam>%s</t:%sParam></soapenv:Body></soapenv:Envelope>",
             soap_auth, op, params, op);
    snprintf(auth, sizeof auth, "Authorization: Bearer %s", tok[who]);
    const char *h[] = {"Content-Type: text/xml; charset=utf-8", bearer ? auth : NULL, NULL};
    return th_http_raw(&srv, "POST", "/scene7/services/IpsApiService", env, strlen(env), h);
}

/*
 * One Scene7 call, and what must come back: `fault` NULL, the operation's
 * reply (200, <opReturn>); else a SOAP fault (HTTP 500) whose detail is
 * that element with `code`. Fails the test naming the call otherwise.
 */
static struct th_resp *s7_expect(int line, int who, bool bearer, const char *op, const char *params,
                                 const char *fault, int code) {
    struct th_resp *r = s7_call(who, bearer, op, params);
    bool ok = fault ? r->status == 500 && strstr(r->body, fmt("<%s ", fault)) &&
                          strstr(r->body, fmt("<code>%d</code>", code))
                    : r->status == 200 && strstr(r->body, fmt("<%sReturn", op)) &&
                          !strstr(r->body, "Fault");
    if (ok) return r;
    th_fail(__FILE__, line, "%s token (%s), Scene7 %s(%s) gave %ld %s, expected %s %d",
            tok_role[who], tok_ns[who], op, params, r->status, r->body, fault ? fault : "its reply",
            code);
    return NULL;
}
#define S7(who, op, params, fault, code)                                       \
    do {                                                                       \
        if (!s7_expect(__LINE__, who, false, op, params, fault, code)) return; \
    } while (0)
#define S7_R(r, who, op, params, fault, code)                                        \
    do {                                                                             \
        if (!(r = s7_expect(__LINE__, who, false, op, params, fault, code))) return; \
    } while (0)

/* The jobHandle of a submitJob reply, into h (64), or "". */
static void s7_handle(const struct th_resp *r, char *h) {
    const char *p = r ? strstr(r->body, "<jobHandle>") : NULL;
    h[0] = '\0';
    if (p && strlen(p) > 11 + 32) snprintf(h, 64, "%.32s", p + 11);
}

/*
 * The Scene7 view's roles (docs/compat.md, "Identity, authentication,
 * permissions": reads admin, client, reader; submitJob and the controls
 * admin, client; deleteJob admin only; authorizationFault otherwise, and
 * nothing changes), and namespaces: another companyHandle is fault 30001,
 * another namespace's job or schedule is "not found" (30001) to every
 * control and absent from every read.
 */
static void test_scene7_roles_and_namespaces(void) {
    struct th_resp *r;
    char job[64], bjob[64], bsched[64];
    S7_R(r, CLIENT, "submitJob",
         "<t:companyHandle>acme</t:companyHandle><t:jobName>s7-job</t:jobName><t:exportJob/>", NULL,
         0);
    s7_handle(r, job);
    CHECK(job[0]);
    const char *authz = "authorizationFault", *ips = "ipsApiFault";
    const char *co = "<t:companyHandle>acme</t:companyHandle>";
    const char *on_job = fmt("%s<t:jobHandle>%s</t:jobHandle>", co, job);
    char on_job_s[200];
    snprintf(on_job_s, sizeof on_job_s, "%s", on_job);
    /* Reads: admin, client, reader; not a worker. */
    const char *reads[] = {"getActiveJobs", "getScheduledJobs", "getJobLogs", "getJobLogDetails"};
    for (int i = 0; i < 4; i++) {
        const char *params = strcmp(reads[i], "getJobLogs") == 0 ? co : on_job_s;
        for (int who = ADMIN; who <= READER; who++)
            S7(who, reads[i], params, who == WORKER ? authz : NULL, 30001);
    }
    /* Writes by a worker or a reader: refused, and nothing stored or changed. */
    const char *controls[] = {"stopJob", "pauseJob", "resumeJob", "executeJob", "deleteJob"};
    for (int who = WORKER; who <= READER; who++) {
        S7(who, "submitJob", fmt("%s<t:jobName>s7-%s</t:jobName><t:exportJob/>", co, tok_role[who]),
           authz, 30001);
        CHECK_INT(admin_count(fmt("name_prefix=s7-%s", tok_role[who])), 0);
        for (int i = 0; i < 5; i++)
            S7(who, controls[i], on_job_s, authz, 30001);
    }
    S7(CLIENT, "deleteJob", on_job_s, authz, 30001); /* deleteJob is the admin's */
    json_t *j = admin_json(fmt("/v1/tasks/%s", job));
    CHECK(j != NULL);
    CHECK_STR(th_str(j, "phase"), "pending");
    CHECK(json_is_false(th_get(j, "paused")));
    CHECK_INT(th_int(j, "version"), 1);
    /* No credentials at all: authenticationFault, before any parse, and nothing stored. */
    const char *anon =
        "<soapenv:Envelope xmlns:soapenv=\"http://schemas.xmlsoap.org/soap/envelope/\""
        " xmlns:t=\"http://www.scene7.com/IpsApi/xsd/2014-04-03\"><soapenv:Body>"
        "<t:submitJobParam><t:companyHandle>acme</t:companyHandle><t:jobName>"
        "s7-anon</t:jobName><t:exportJob/></t:submitJobParam></soapenv:Body>"
        "</soapenv:Envelope>";
    const char *xml_h[] = {"Content-Type: text/xml; charset=utf-8", NULL};
    r = th_http_raw(&srv, "POST", "/scene7/services/IpsApiService", anon, strlen(anon), xml_h);
    CHECK_INT(r->status, 500);
    CHECK(strstr(r->body, "<authenticationFault ") != NULL);
    CHECK_INT(admin_count("name_prefix=s7-anon"), 0);
    /* The same through an HTTP bearer header instead of the authHeader. */
    CHECK(s7_expect(__LINE__, READER, true, "getActiveJobs", on_job_s, NULL, 0));
    CHECK(s7_expect(__LINE__, WORKER, true, "getActiveJobs", on_job_s, authz, 30001));
    CHECK(s7_expect(__LINE__, READER, true, "pauseJob", on_job_s, authz, 30001));
    /* The client's controls work. */
    S7(CLIENT, "pauseJob", on_job_s, NULL, 0);
    CHECK(json_is_true(th_get(admin_json(fmt("/v1/tasks/%s", job)), "paused")));
    S7(CLIENT, "resumeJob", on_job_s, NULL, 0);
    S7(CLIENT, "stopJob", on_job_s, NULL, 0);
    CHECK_STR(admin_phase(job), "cancelled");
    S7(CLIENT, "executeJob", on_job_s, NULL, 0);
    CHECK_STR(admin_phase(job), "pending");

    /* beta's job and schedule, through v1. */
    submit_as(CLIENT_B, "{\"type\":\"s7\",\"name\":\"beta-s7\"}", bjob);
    CHECK(bjob[0]);
    EXPECT_R(r, CLIENT_B, "POST", "/v1/schedules",
             "{\"name\":\"beta-s7-sched\",\"cron\":\"0 3 1 1 *\",\"task\":{\"type\":\"s7\"}}", 201,
             NULL);
    snprintf(bsched, sizeof bsched, "%s", th_str(r->json, "id"));
    const char *handles[] = {bjob, bsched};
    for (int k = 0; k < 2; k++) {
        char mine[200], theirs[200], bare[100];
        snprintf(mine, sizeof mine, "%s<t:jobHandle>%s</t:jobHandle>", co, handles[k]);
        snprintf(theirs, sizeof theirs,
                 "<t:companyHandle>beta</t:companyHandle><t:jobHandle>%s</t:jobHandle>",
                 handles[k]);
        snprintf(bare, sizeof bare, "<t:jobHandle>%s</t:jobHandle>", handles[k]);
        for (int i = 0; i < 4; i++) { /* deleteJob: the client's role first */
            S7_R(r, CLIENT, controls[i], mine, ips, 30001);
            CHECK(strstr(r->body, "not found") != NULL);
            S7(CLIENT, controls[i], theirs, ips, 30001);
        }
        /* Reads: nothing of beta's, by handle or by company. */
        for (int who = CLIENT; who <= READER; who += READER - CLIENT) {
            S7_R(r, who, "getActiveJobs", mine, NULL, 0);
            CHECK(strstr(r->body, "<jobArray></jobArray>") != NULL);
            S7_R(r, who, "getActiveJobs", bare, NULL, 0);
            CHECK(strstr(r->body, "<jobArray></jobArray>") != NULL);
            S7(who, "getActiveJobs", theirs, ips, 30001);
            S7_R(r, who, "getJobLogDetails", mine, NULL, 0);
            CHECK(strstr(r->body, "<jobLogArray></jobLogArray>") != NULL);
            S7(who, "getJobLogDetails", theirs, ips, 30001);
            S7_R(r, who, "getScheduledJobs", co, NULL, 0);
            CHECK(strstr(r->body, handles[k]) == NULL);
            S7(who, "getScheduledJobs", "<t:companyHandle>beta</t:companyHandle>", ips, 30001);
            S7(who, "getJobLogs", "<t:companyHandle>beta</t:companyHandle>", ips, 30001);
        }
    }
    S7(CLIENT, "submitJob",
       "<t:companyHandle>beta</t:companyHandle><t:jobName>s7-into-beta</t:jobName><t:exportJob/>",
       ips, 30001);
    CHECK_INT(admin_count("name_prefix=s7-into-beta"), 0);
    /* beta's are as they were. */
    j = admin_json(fmt("/v1/tasks/%s", bjob));
    CHECK(j != NULL);
    CHECK_STR(th_str(j, "phase"), "pending");
    CHECK_INT(th_int(j, "version"), 1);
    j = admin_json(fmt("/v1/schedules/%s", bsched));
    CHECK(j != NULL);
    CHECK(json_is_false(th_get(j, "paused")));
    CHECK_INT(th_int(j, "fires"), 0);
    CHECK(json_is_null(th_get(j, "last_task_id")));
    /* Its owner steers them: the calls above were sound. */
    S7(CLIENT_B, "pauseJob",
       fmt("<t:companyHandle>beta</t:companyHandle><t:jobHandle>%s</t:jobHandle>", bsched), NULL,
       0);
    CHECK(json_is_true(th_get(admin_json(fmt("/v1/schedules/%s", bsched)), "paused")));
    /* And the admin deletes acme's job (pending: cancelled, then deleted). */
    S7(ADMIN, "deleteJob", on_job_s, NULL, 0);
    EXPECT(ADMIN, "GET", fmt("/v1/tasks/%s", job), NULL, 404, "not_found");
}

static void test_revoked_token_refused_at_once(void) {
    char bearer[128], id[32], out[8192];
    CHECK(sec_token(&srv, "client", "acme", "", bearer, id) == 0);
    CHECK_INT(sec_http(&srv, bearer, "GET", "/v1/tasks", NULL)->status, 200);
    CHECK_INT(
        sec_cli(out, sizeof out, "%s token revoke %s --store '%s' 2>&1", sec_bin(), id, srv.store),
        0);
    struct th_resp *r = sec_http(&srv, bearer, "GET", "/v1/tasks", NULL);
    CHECK_INT(r->status, 401);
    CHECK(sec_log_has(&srv, "revoked"));
    /* Revoking again is fine; an unknown id is an error. */
    CHECK_INT(
        sec_cli(out, sizeof out, "%s token revoke %s --store '%s' 2>&1", sec_bin(), id, srv.store),
        0);
    CHECK_INT(sec_cli(out, sizeof out, "%s token revoke 0123456789abcdef --store '%s' 2>&1",
                      sec_bin(), srv.store),
              3); /* not found, as the client commands say it */
    CHECK(sec_cli(out, sizeof out, "%s token list --store '%s'", sec_bin(), srv.store) == 0);
    CHECK(strstr(out, "revoked") != NULL);
}

/* The wall clock in ms, as the server and the CLI read it for expiry. */
static int64_t wall_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/*
 * A token that expires `expires` after it is made (the CLI takes its time
 * before it writes the token): its secret and when it expires. Returns 0
 * or -1.
 */
static int expiring_token(const char *expires, char bearer[128], int64_t *expires_at) {
    char out[2048];
    int rc = sec_cli(out, sizeof out,
                     "%s token create --store '%s' --role reader --namespace acme --expires %s "
                     "--json 2>/dev/null",
                     sec_bin(), srv.store, expires);
    json_t *j = json_loads(out, 0, NULL);
    const char *sec = json_string_value(json_object_get(j, "secret"));
    const char *at = json_string_value(json_object_get(j, "expires_at"));
    int ok = rc == 0 && sec && at && time_parse_rfc3339(at, expires_at) == 0;
    if (ok) snprintf(bearer, 128, "%s", sec);
    if (!ok) printf("    token create failed (exit %d): %s\n", rc, out);
    json_decref(j);
    return ok ? 0 : -1;
}

static void test_expired_token_refused(void) {
    char bearer[128], out[8192];
    /* The token is good until it expires: a request answered before then
     * is 200. Made by a process of its own (slow under the sanitizers on a
     * loaded machine), a 1 s token can expire before the first request
     * comes back, and then that request cannot tell: so one answered after
     * the expiry is asked again with a token twice as long-lived. */
    static const char *const lives[] = {"1s", "2s", "4s", "8s", "16s", "32s"};
    int64_t expires_at = 0;
    bool checked = false;
    for (size_t i = 0; !checked && i < sizeof lives / sizeof lives[0]; i++) {
        CHECK(expiring_token(lives[i], bearer, &expires_at) == 0);
        long st = sec_http(&srv, bearer, "GET", "/v1/tasks", NULL)->status;
        if (wall_ms() >= expires_at) {
            printf("    a %s token expired before its first answer came (%ld); again\n", lives[i],
                   st);
            continue;
        }
        CHECK_INT(st, 200);
        checked = true;
    }
    CHECK(checked);
    /* By design: the clock passes the token's expiry. */
    while (wall_ms() < expires_at + 200)
        th_sleep_ms(50);
    struct th_resp *r = sec_http(&srv, bearer, "GET", "/v1/tasks", NULL);
    CHECK_INT(r->status, 401);
    CHECK_STR(th_str(r->json, "error.message"), "the token has expired");
    CHECK(sec_cli(out, sizeof out, "%s token list --store '%s'", sec_bin(), srv.store) == 0);
    CHECK(strstr(out, "expired") != NULL);
    /* A bad duration is a usage error. */
    CHECK_INT(sec_cli(out, sizeof out,
                      "%s token create --store '%s' --role reader --namespace a "
                      "--expires soon 2>/dev/null",
                      sec_bin(), srv.store),
              2);
}

static void test_malformed_credentials(void) {
    static const char *const bad[] = {
        "Authorization: Bearer",
        "Authorization: Basic dXNlcjpwYXNz",
        "Authorization: Bearer tm_x_y",
        "Authorization: Bearer tm_0123456789abcdef_0000000000000000000000000000000000000000000000"
        "000000000000000000",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        const char *h[] = {bad[i], NULL};
        struct th_resp *r = th_http_raw(&srv, "GET", "/v1/tasks", NULL, 0, h);
        CHECK_INT(r->status, 401);
    }
    /* The right id with a wrong secret. */
    char wrong[128];
    snprintf(wrong, sizeof wrong, "%s", tok[ADMIN]);
    size_t n = strlen(wrong);
    wrong[n - 1] = wrong[n - 1] == '0' ? '1' : '0';
    CHECK_INT(sec_http(&srv, wrong, "GET", "/v1/tasks", NULL)->status, 401);
    CHECK(sec_log_has(&srv, "wrong secret"));
    /* The scheme is case-insensitive. */
    char ok[200];
    snprintf(ok, sizeof ok, "Authorization: bearer %s", tok[READER]);
    const char *h[] = {ok, NULL};
    CHECK_INT(th_http_raw(&srv, "GET", "/v1/tasks", NULL, 0, h)->status, 200);
}

static void test_admin_token_api(void) {
    struct th_resp *r = sec_http(&srv, tok[ADMIN], "POST", "/v1/tokens",
                                 "{\"role\":\"reader\",\"namespace\":\"acme\",\"name\":\"remote\","
                                 "\"expires_in\":\"1h\"}");
    CHECK_INT(r->status, 201);
    char id[32], bearer[128], path[64];
    snprintf(id, sizeof id, "%s", th_str(r->json, "id"));
    snprintf(bearer, sizeof bearer, "%s", th_str(r->json, "secret"));
    CHECK_STR(th_str(r->json, "role"), "reader");
    CHECK(strcasestr(r->headers, "Cache-Control: no-store") != NULL); /* it holds the secret */
    CHECK(th_str(r->json, "expires_at") != NULL);
    CHECK(th_get(r->json, "hash") == NULL);
    /* Past the cap (as the CLI's --expires): the message says the cap. */
    struct th_resp *far =
        sec_http(&srv, tok[ADMIN], "POST", "/v1/tokens",
                 "{\"role\":\"reader\",\"namespace\":\"acme\",\"expires_in\":\"600w\"}");
    CHECK_INT(far->status, 400);
    CHECK_STR(th_str(far->json, "error.field"), "expires_in");
    CHECK(strstr(th_str(far->json, "error.message"), "at most ten years") != NULL);
    CHECK_INT(sec_http(&srv, bearer, "GET", "/v1/tasks", NULL)->status, 200);
    CHECK_INT(sec_http(&srv, bearer, "POST", "/v1/tasks", "{\"type\":\"x\"}")->status, 403);
    r = sec_http(&srv, tok[ADMIN], "GET", "/v1/tokens", NULL);
    CHECK_INT(r->status, 200);
    CHECK(strstr(r->body, id) != NULL);
    CHECK(strstr(r->body, "tm_") == NULL); /* no secret is ever listed */
    snprintf(path, sizeof path, "/v1/tokens/%s", id);
    CHECK_INT(sec_http(&srv, tok[ADMIN], "DELETE", path, NULL)->status, 204);
    CHECK_INT(sec_http(&srv, bearer, "GET", "/v1/tasks", NULL)->status, 401);
    r = sec_http(&srv, tok[ADMIN], "GET", path, NULL);
    CHECK_STR(th_str(r->json, "status"), "revoked");
    CHECK_INT(sec_http(&srv, tok[ADMIN], "DELETE", "/v1/tokens/0123456789abcdef", NULL)->status,
              404);
    /* The log tells of the revocation that happened, not of the 404. */
    char said[80];
    snprintf(said, sizeof said, "token '%s' revoked by", id);
    CHECK(sec_log_has(&srv, said));
    /* by design: a window (after the line above) in which it would show */
    CHECK(!sec_log_within(&srv, "token '0123456789abcdef' revoked", 1000));
    r = sec_http(&srv, tok[ADMIN], "POST", "/v1/tokens", "{\"role\":\"root\",\"namespace\":\"a\"}");
    CHECK_INT(r->status, 400);
    CHECK_STR(th_str(r->json, "error.field"), "role");
    r = sec_http(&srv, tok[ADMIN], "POST", "/v1/tokens",
                 "{\"role\":\"reader\",\"namespace\":\"a b\"}");
    CHECK_INT(r->status, 400);
}

struct claim_arg {
    const char *bearer;
    long status;
    char challenge[128]; /* the reply's WWW-Authenticate ("" when none) */
    char message[256];   /* its error.message */
};

/* What a waiting request's reply r said, into a. */
static void claim_keep(struct claim_arg *a, const struct th_resp *r) {
    a->status = r->status;
    if (!th_resp_header(r, "WWW-Authenticate", a->challenge, sizeof a->challenge))
        a->challenge[0] = '\0';
    const char *m = r->json ? th_str(r->json, "error.message") : NULL;
    snprintf(a->message, sizeof a->message, "%s", m ? m : "");
}

static void *claim_waiting(void *p) {
    struct claim_arg *a = p;
    claim_keep(a, sec_http(&srv, a->bearer, "POST", "/v1/queues/revq/claim",
                           "{\"worker\":\"w1\",\"wait_seconds\":30}"));
    th_http(NULL, NULL, NULL, NULL); /* frees this thread's handle */
    return NULL;
}

/* Waits (up to 10 s) until /metrics shows `line`. */
static bool metrics_show(const char *line) {
    for (int i = 0; i < 200; i++) {
        struct th_resp *r = sec_http(&srv, tok[ADMIN], "GET", "/metrics", NULL);
        if (r->status == 200 && strstr(r->body, line)) return true;
        th_sleep_ms(50);
    }
    return false;
}

static void test_revocation_ends_streams_and_waits(void) {
    char worker[128], wid[32], reader[128], rid[32], out[8192], hdr[200];
    CHECK(sec_token(&srv, "worker", "acme", "", worker, wid) == 0);
    CHECK(sec_token(&srv, "reader", "acme", "", reader, rid) == 0);
    /* An event stream of the reader's, and a claim of the worker's parked for 30 s. */
    snprintf(hdr, sizeof hdr, "Authorization: Bearer %s", reader);
    struct sse_conn c;
    CHECK(sse_open_with(&c, srv.url, "/v1/events", -1, 0, hdr) == 0);
    struct sse_event ev = {.id = -1};
    CHECK_INT(sse_started(&c, &ev, 20000), 0);
    CHECK_INT(sse_next(&c, &ev, 300), 0);
    CHECK_INT(c.status, 200);
    pthread_t th;
    struct claim_arg a = {worker, 0};
    CHECK(pthread_create(&th, NULL, claim_waiting, &a) == 0);
    CHECK(metrics_show("taskmill_parked_claims 1"));
    CHECK_INT(
        sec_cli(out, sizeof out, "%s token revoke %s --store '%s' 2>&1", sec_bin(), rid, srv.store),
        0);
    CHECK_INT(
        sec_cli(out, sizeof out, "%s token revoke %s --store '%s' 2>&1", sec_bin(), wid, srv.store),
        0);
    /* Both end long before their own time: the stream with a last comment,
     * the claim with 401 instead of 204 after 30 s. */
    CHECK_INT(sse_next(&c, &ev, 10000), -1);
    CHECK(strstr(c.last_comment, "the token was revoked") != NULL);
    pthread_join(th, NULL);
    CHECK_INT(a.status, 401);
    /* A 401 as any other: the challenge, and why. */
    CHECK_STR(a.challenge, "Bearer realm=\"taskmill\"");
    CHECK_STR(a.message, "the token was revoked or has expired");
    CHECK(sec_log_has(&srv, "1 waiting request(s) answered 401"));
    sse_event_clear(&ev);
    sse_close(&c);
    /* A new stream with the revoked token is refused. */
    CHECK(sse_open_with(&c, srv.url, "/v1/events", -1, 0, hdr) == 0);
    CHECK_INT(sse_next(&c, &ev, 20000), -1);
    CHECK_INT(c.status, 401);
    sse_event_clear(&ev);
    sse_close(&c);
}

/*
 * More tokens hold streams open than the watch reads in one round
 * (AUTH_WATCH_TOKENS, 256): each is still read in its turn. The token
 * revoked is the one the watch reads last, past the first round's 256.
 */
#define MANY_STREAMS 300
static void test_revocation_with_many_tokens_streaming(void) {
    static struct sse_conn c[MANY_STREAMS];
    static char ids[MANY_STREAMS][32];
    int opened = 0;
    struct sse_event ev = {.id = -1};
    for (int i = 0; i < MANY_STREAMS; i++) {
        struct th_resp *r = sec_http(&srv, tok[ADMIN], "POST", "/v1/tokens",
                                     "{\"role\":\"reader\",\"namespace\":\"many\"}");
        if (r->status != 201) break;
        char hdr[200];
        snprintf(ids[i], sizeof ids[i], "%s", th_str(r->json, "id"));
        snprintf(hdr, sizeof hdr, "Authorization: Bearer %s", th_str(r->json, "secret"));
        if (sse_open_with(&c[i], srv.url, "/v1/events", -1, 0, hdr) != 0) break;
        opened++;
    }
    /* Each stream is open once its first bytes came: a request the server
     * has not reached yet would start after the event below and miss it. */
    int started = 0;
    long long deadline = sse_now_ms() + 60000;
    for (int i = 0; i < opened; i++) {
        while (!strstr(c[i].buf, ": taskmill events") && sse_now_ms() < deadline)
            if (sse_fill(&c[i], 200) < 0) break;
        started += strstr(c[i].buf, ": taskmill events") != NULL;
    }
    CHECK_INT(started, MANY_STREAMS);
    /* One event for every stream. */
    struct th_resp *r =
        sec_http(&srv, tok[ADMIN], "POST", "/v1/tasks", "{\"type\":\"x\",\"namespace\":\"many\"}");
    CHECK_INT(r->status, 201);
    int streaming = 0;
    for (int i = 0; i < opened; i++)
        if (sse_next(&c[i], &ev, 10000) == 1 && c[i].status == 200) streaming++;
    CHECK_INT(streaming, MANY_STREAMS);
    /* The token read last in each pass (the watch reads them sorted). */
    int last = 0;
    for (int i = 1; i < opened; i++)
        if (strcmp(ids[i], ids[last]) > 0) last = i;
    if (opened > 0) {
        char path[64];
        snprintf(path, sizeof path, "/v1/tokens/%s", ids[last]);
        CHECK_INT(sec_http(&srv, tok[ADMIN], "DELETE", path, NULL)->status, 204);
        CHECK_INT(sse_next(&c[last], &ev, 10000), -1);
        CHECK(strstr(c[last].last_comment, "the token was revoked") != NULL);
    }
    sse_event_clear(&ev);
    for (int i = 0; i < opened; i++)
        sse_close(&c[i]);
}

/* A reader's /metrics names no queue or type of another namespace; an
 * admin's has the per-queue and per-type series of every one. */
static void test_metrics_of_one_namespace(void) {
    struct th_resp *r = sec_http(&srv, tok[CLIENT_B], "POST", "/v1/tasks",
                                 "{\"type\":\"beta-payroll\",\"queue\":\"beta-secret-q\"}");
    CHECK_INT(r->status, 201);
    r = sec_http(&srv, tok[WORKER_B], "POST", "/v1/queues/beta-secret-q/claim",
                 "{\"worker\":\"w\"}");
    CHECK_INT(r->status, 200);
    r = sec_http(&srv, tok[READER], "GET", "/metrics", NULL);
    CHECK_INT(r->status, 200);
    CHECK(r->body && strstr(r->body, "taskmill_store_batches_total") != NULL);
    CHECK(r->body && strstr(r->body, "beta-secret-q") == NULL);
    CHECK(r->body && strstr(r->body, "beta-payroll") == NULL);
    r = sec_http(&srv, tok[READER_B], "GET", "/metrics", NULL);
    CHECK(r->body &&
          strstr(r->body, "taskmill_tasks{queue=\"beta-secret-q\",phase=\"running\"} 1"));
    CHECK(r->body && strstr(r->body, "taskmill_task_queued_seconds") == NULL);
    r = sec_http(&srv, tok[ADMIN], "GET", "/metrics", NULL);
    CHECK(r->body &&
          strstr(r->body, "taskmill_task_queued_seconds_count{queue=\"beta-secret-q\"") != NULL);
}

struct open_claim {
    struct th_server *s;
    struct claim_arg got;
};

static void *open_claim_waiting(void *p) {
    struct open_claim *a = p;
    claim_keep(&a->got, th_http(a->s, "POST", "/v1/queues/openq/claim",
                                "{\"worker\":\"w1\",\"wait_seconds\":30}"));
    th_http(NULL, NULL, NULL, NULL);
    return NULL;
}

/*
 * A server that starts open and, once tokens exist, is only ever sent
 * credentials (no request without one tells it that it is closed): what
 * was opened without a token ends, and a revoked token's stream ends, as
 * on a server that started closed.
 */
static void test_closed_after_open_start(void) {
    struct th_server s2;
    if (th_server_start(&s2, NULL)) {
        th_fail(__FILE__, __LINE__, "the server did not start");
        return;
    }
    /* Open mode: a stream and a parked claim without a token. */
    struct sse_conn open_c, c;
    struct sse_event ev = {.id = -1};
    CHECK(sse_open_with(&open_c, s2.url, "/v1/events", -1, 0, NULL) == 0);
    CHECK_INT(sse_started(&open_c, &ev, 20000), 0);
    CHECK_INT(sse_next(&open_c, &ev, 300), 0);
    CHECK_INT(open_c.status, 200);
    struct open_claim a = {.s = &s2};
    pthread_t th;
    CHECK(pthread_create(&th, NULL, open_claim_waiting, &a) == 0);
    bool parked;
    TRY_WAIT_UNTIL(parked, th_metric(&s2, "taskmill_parked_claims") == 1, 10000,
                   "the tokenless claim to park");
    /* Tokens from the CLI; from here on only credentialed requests. */
    char admin[128], aid[32], reader[128], rid[32], out[8192], hdr[200];
    CHECK(sec_token(&s2, "admin", "default", "", admin, aid) == 0);
    CHECK(sec_token(&s2, "reader", "acme", "", reader, rid) == 0);
    snprintf(hdr, sizeof hdr, "Authorization: Bearer %s", reader);
    CHECK(sse_open_with(&c, s2.url, "/v1/events", -1, 0, hdr) == 0);
    CHECK_INT(sse_started(&c, &ev, 20000), 0);
    CHECK_INT(sse_next(&c, &ev, 300), 0);
    CHECK_INT(c.status, 200);
    /* What was opened without a token ends long before its own time. */
    CHECK_INT(sse_next(&open_c, &ev, 10000), -1);
    CHECK(strstr(open_c.last_comment, "the server needs a token now") != NULL);
    pthread_join(th, NULL);
    CHECK_INT(a.got.status, 401);
    /* It never had a token: told so, not that one was revoked. */
    CHECK_STR(a.got.challenge, "Bearer realm=\"taskmill\"");
    CHECK_STR(a.got.message, "the server needs a token now: send 'Authorization: Bearer <token>'");
    /* And a revoked token's stream ends. */
    CHECK_INT(
        sec_cli(out, sizeof out, "%s token revoke %s --store '%s' 2>&1", sec_bin(), rid, s2.store),
        0);
    CHECK_INT(sse_next(&c, &ev, 10000), -1);
    CHECK(strstr(c.last_comment, "the token was revoked") != NULL);
    sse_event_clear(&ev);
    sse_close(&c);
    sse_close(&open_c);
    th_server_free(&s2);
}

/*
 * A server that starts open and then gets no request at all: a token made
 * by `taskmill token create` still ends what was opened without one (the
 * watch asks the store), and a token made through the API ends it at once.
 */
static void test_closed_with_no_request(void) {
    for (int via_api = 0; via_api < 2; via_api++) {
        struct th_server s2;
        if (th_server_start(&s2, NULL)) {
            th_fail(__FILE__, __LINE__, "the server did not start");
            return;
        }
        struct sse_conn open_c;
        struct sse_event ev = {.id = -1};
        CHECK(sse_open_with(&open_c, s2.url, "/v1/events", -1, 0, NULL) == 0);
        CHECK_INT(sse_started(&open_c, &ev, 20000), 0);
        CHECK_INT(sse_next(&open_c, &ev, 300), 0);
        CHECK_INT(open_c.status, 200);
        if (via_api) {
            CHECK_INT(
                th_http(&s2, "POST", "/v1/tokens", "{\"role\":\"admin\",\"namespace\":\"default\"}")
                    ->status,
                201);
        } else {
            char admin[128], aid[32];
            CHECK(sec_token(&s2, "admin", "default", "", admin, aid) == 0);
        }
        /* No request from here on: the stream ends long before its own time. */
        CHECK_INT(sse_next(&open_c, &ev, 10000), -1);
        CHECK(strstr(open_c.last_comment, "the server needs a token now") != NULL);
        sse_event_clear(&ev);
        sse_close(&open_c);
        th_server_free(&s2);
    }
}

/* Empties a server's log, so the next start's lines are its own. */
static void log_clear(struct th_server *s) {
    char path[400];
    snprintf(path, sizeof path, "%s/server.log", s->dir);
    FILE *f = fopen(path, "w");
    if (f) fclose(f);
}

/* The store as the server's hints write it for a shell: in double quotes
 * when it holds more than [A-Za-z0-9_./:@%=+,-] (a PostgreSQL URL's ?, &). */
static const char *sec_store_arg(const struct th_server *s) {
    static char arg[600];
    const char *u = s->store;
    if (u[strspn(u, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_./:@%=+,-")])
        snprintf(arg, sizeof arg, "\"%s\"", u);
    else
        snprintf(arg, sizeof arg, "%s", u);
    return arg;
}

static void test_revoked_tokens_keep_it_closed(void) {
    struct th_server s2;
    CHECK(th_server_start(&s2, NULL) == 0);
    if (!th_backend_is_pg()) {
        struct stat st;
        CHECK(stat(s2.store + strlen("sqlite:"), &st) == 0);
        CHECK_INT(st.st_mode & 0777, 0600);
    }
    char bearer[128], id[32], out[8192];
    CHECK(sec_token(&s2, "admin", "default", "", bearer, id) == 0);
    CHECK_INT(
        sec_cli(out, sizeof out, "%s token revoke %s --store '%s' 2>&1", sec_bin(), id, s2.store),
        0);
    /* Every token revoked, then a restart: still closed, not open mode. */
    th_server_stop(&s2, false);
    log_clear(&s2);
    CHECK(th_server_restart(&s2) == 0);
    CHECK(sec_log_has(&s2, "authentication on"));
    CHECK_INT(th_http(&s2, "GET", "/v1/tasks", NULL)->status, 401);
    CHECK_INT(sec_http(&s2, bearer, "GET", "/v1/tasks", NULL)->status, 401);
    /* The operator's deliberate way back: purge the dead tokens. */
    CHECK_INT(sec_cli(out, sizeof out, "%s token purge --store '%s' 2>&1", sec_bin(), s2.store), 0);
    CHECK(strstr(out, "deleted 1 revoked or expired token(s)") != NULL);
    CHECK(strstr(out, "holds no token now") != NULL);
    CHECK_INT(
        sec_cli(out, sizeof out, "%s token purge extra --store '%s' 2>&1", sec_bin(), s2.store), 2);
    th_server_stop(&s2, false);
    log_clear(&s2);
    CHECK(th_server_restart(&s2) == 0);
    CHECK(sec_log_has(&s2, "authentication is off"));
    char create[600];
    snprintf(create, sizeof create, "('taskmill token create --store %s', or POST",
             sec_store_arg(&s2));
    CHECK(sec_log_has(&s2, create));
    CHECK_INT(th_http(&s2, "GET", "/v1/tasks", NULL)->status, 200);
    th_server_free(&s2);
}

static void test_non_loopback_needs_tokens_or_flag(void) {
    struct th_server s2;
    CHECK(th_server_start(&s2, "--listen", "0.0.0.0:0", NULL) != 0);
    th_server_stop(&s2, true);
    bool refused = sec_log_has(&s2, "refusing to listen on '0.0.0.0:0' without authentication");
    /* The way out names this server's store: 'taskmill token' alone reads ./taskmill.db. */
    char create[600];
    snprintf(create, sizeof create, "'taskmill token create --store %s --role admin",
             sec_store_arg(&s2));
    bool named = sec_log_has(&s2, create);
    th_server_free(&s2);
    CHECK(refused);
    CHECK(named);

    CHECK(th_server_start(&s2, "--listen", "0.0.0.0:0", "--insecure-no-auth", NULL) == 0);
    bool warned = sec_log_has(&s2, "ANYONE");
    long st = th_http(&s2, "GET", "/v1/tasks", NULL)->status;
    th_server_free(&s2);
    CHECK(warned);
    CHECK_INT(st, 200);
}

static void test_token_cli_usage(void) {
    char out[256];
    CHECK_INT(sec_cli(out, sizeof out,
                      "%s token create --store '%s' --role root --namespace a 2>/dev/null",
                      sec_bin(), srv.store),
              2);
    CHECK_INT(sec_cli(out, sizeof out, "%s token create --store '%s' --role reader 2>/dev/null",
                      sec_bin(), srv.store),
              2);
    CHECK_INT(sec_cli(out, sizeof out, "%s token revoke nothex --store '%s' 2>/dev/null", sec_bin(),
                      srv.store),
              2);
    /* Without --json the secret is the only line on stdout. */
    CHECK_INT(sec_cli(out, sizeof out,
                      "%s token create --store '%s' --role reader --namespace a 2>/dev/null",
                      sec_bin(), srv.store),
              0);
    CHECK(strncmp(out, "tm_", 3) == 0);
    CHECK_INT(strlen(out), 3 + 16 + 1 + 64 + 1);
}

static const struct th_test tests[] = {
    {"open mode: no token, loopback only, no credentials needed", test_open_mode},
    {"open mode refuses what a web page of another origin or host name sends",
     test_open_mode_refuses_web_pages},
    {"the first token ends the open mode", test_first_token_ends_open_mode},
    {"every role against every endpoint", test_every_role_every_endpoint},
    {"another namespace's task is 404, its writes refused", test_other_namespace_is_404},
    {"definitions and schedules: each role's reads and writes",
     test_definitions_and_schedules_by_role},
    {"definitions and schedules of another namespace are 404, by id and by name",
     test_definitions_and_schedules_other_namespace},
    {"webhooks: each role creates or not; another namespace's are 404",
     test_webhooks_by_role_and_namespace},
    {"bulk controls: delete is the admin's; a client's filter sees its namespace only",
     test_bulk_by_role_and_namespace},
    {"queue pause and stats, attempts, whoami: each role", test_queues_attempts_whoami_by_role},
    {"SailPoint and Livepeer views: another namespace's task is not found; their roles",
     test_views_other_namespace_and_roles},
    {"Scene7 view: each operation's roles; another namespace's jobs and schedules not found",
     test_scene7_roles_and_namespaces},
    {"a revoked token is refused on the next request", test_revoked_token_refused_at_once},
    {"an expired token is refused", test_expired_token_refused},
    {"malformed credentials are refused", test_malformed_credentials},
    {"the admin token API", test_admin_token_api},
    {"the token CLI refuses bad usage", test_token_cli_usage},
    {"revoking a token ends its event streams and parked claims",
     test_revocation_ends_streams_and_waits},
    {"a reader's /metrics names no queue or type of another namespace",
     test_metrics_of_one_namespace},
    {"started open, then no request: a token made by the CLI or the API still closes it",
     test_closed_with_no_request},
    {"more tokens streaming than a round reads: a revoked one's stream still ends",
     test_revocation_with_many_tokens_streaming},
    {"started open, then only credentials: tokenless waits end, a revoked token's stream ends",
     test_closed_after_open_start},
    {"only revoked tokens: a restart stays closed; purge reopens; the file is 0600",
     test_revoked_tokens_keep_it_closed},
    {"a non-loopback address needs tokens or --insecure-no-auth",
     test_non_loopback_needs_tokens_or_flag},
    {NULL, NULL},
};

int main(int argc, char **argv) {
    if (th_server_start(&srv, NULL)) th_fail(__FILE__, __LINE__, "server did not start");
    int rc = th_main(tests, argc, argv);
    th_server_free(&srv);
    return rc || th_failed();
}
