/*
 * Tokens, roles and namespaces against the real server: the open mode on
 * loopback and its end when a token appears; every role against every
 * endpoint (allowed and refused); another namespace's tasks answering 404;
 * revoked, expired and malformed tokens refused; the admin token API; the
 * refusal to listen on a non-loopback address without tokens.
 */
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <stdlib.h>

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
    CHECK_INT(open_queue_count("csq"), 2);
    CHECK(sec_log_has(&srv, "cross-site request in open mode"));
}

static void test_first_token_ends_open_mode(void) {
    for (int i = 0; i < NTOK; i++)
        CHECK(sec_token(&srv, tok_role[i], tok_ns[i], "--name test", tok[i], tok_id[i]) == 0);
    char spare[128];
    CHECK(sec_token(&srv, "client", "acme", "", spare, spare_id) == 0);
    /* The open server asks the store at most once a second: closed within that. */
    WAIT_UNTIL(th_http(&srv, "GET", "/v1/tasks", NULL)->status != 200, 1100,
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

struct endpoint {
    const char *method, *path, *body;
    unsigned allowed; /* bit per ADMIN..READER */
    bool stream;      /* a stream: only refusals are checked */
};
#define A (1u << ADMIN)
#define C (1u << CLIENT)
#define W (1u << WORKER)
#define R (1u << READER)

static void fixtures(void) {
    struct th_resp *r = sec_http(&srv, tok[CLIENT], "POST", "/v1/tasks", "{\"type\":\"a\"}");
    snprintf(task_a, sizeof task_a, "%s", r->status == 201 ? th_str(r->json, "id") : "");
    r = sec_http(&srv, tok[CLIENT], "POST", "/v1/tasks", "{\"type\":\"d\",\"queue\":\"dq\"}");
    snprintf(task_del, sizeof task_del, "%s", r->status == 201 ? th_str(r->json, "id") : "");
}

static void test_every_role_every_endpoint(void) {
    fixtures();
    CHECK(task_a[0] && task_del[0]);
    char p[32][160];
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
        {"POST", p[6], "{\"lease_token\":\"00000000000000000000000000000000\"}", A | W, false},
        {"POST", p[7], "{\"lease_token\":\"00000000000000000000000000000000\"}", A | W, false},
        {"POST", p[8], "{\"lease_token\":\"00000000000000000000000000000000\"}", A | W, false},
        {"POST", p[9], "{\"lease_token\":\"00000000000000000000000000000000\"}", A | W, false},
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
    };
    snprintf(p[0], sizeof p[0], "/v1/tasks/%s", task_a);
    snprintf(p[1], sizeof p[1], "/v1/tasks/%s", task_del);
    const char *verbs[] = {"cancel",    "retry",    "pause", "resume",
                           "heartbeat", "complete", "fail",  "release"};
    for (int i = 0; i < 8; i++)
        snprintf(p[2 + i], sizeof p[0], "/v1/tasks/%s/%s", task_a, verbs[i]);
    snprintf(p[10], sizeof p[0], "/v1/tokens/%s", spare_id);
    snprintf(p[11], sizeof p[0], "/v1/tasks/%s/events", task_a);
    int checked = 0;
    for (size_t e = 0; e < sizeof ep / sizeof ep[0]; e++) {
        /* No token: 401 everywhere. */
        struct th_resp *r = sec_http(&srv, NULL, ep[e].method, ep[e].path, ep[e].body);
        if (r->status != 401) {
            th_fail(__FILE__, __LINE__, "no token: %s %s gave %ld, not 401", ep[e].method,
                    ep[e].path, r->status);
            return;
        }
        for (int role = ADMIN; role <= READER; role++) {
            bool allowed = ep[e].allowed & (1u << role);
            if (allowed && ep[e].stream) continue;
            r = sec_http(&srv, tok[role], ep[e].method, ep[e].path, ep[e].body);
            bool ok = allowed ? (r->status != 401 && r->status != 403 && r->status > 0)
                              : r->status == 403;
            if (!ok) {
                th_fail(__FILE__, __LINE__, "%s token: %s %s gave %ld (%s), expected %s",
                        tok_role[role], ep[e].method, ep[e].path, r->status, r->body,
                        allowed ? "not 401/403" : "403");
                return;
            }
            if (!allowed) CHECK_STR(th_str(r->json, "error.code"), "permission_denied");
            checked++;
        }
    }
    CHECK(checked > 80);
    CHECK(sec_log_has(&srv, "role not allowed"));
    /* /healthz needs no token. */
    CHECK_INT(sec_http(&srv, NULL, "GET", "/healthz", NULL)->status, 200);
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
              1);
    CHECK(sec_cli(out, sizeof out, "%s token list --store '%s'", sec_bin(), srv.store) == 0);
    CHECK(strstr(out, "revoked") != NULL);
}

static void test_expired_token_refused(void) {
    char bearer[128], id[32], out[8192];
    CHECK(sec_token(&srv, "reader", "acme", "--expires 1s", bearer, id) == 0);
    CHECK_INT(sec_http(&srv, bearer, "GET", "/v1/tasks", NULL)->status, 200);
    th_sleep_ms(1200); /* by design: the clock passes the token's expiry */
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
    CHECK(th_str(r->json, "expires_at") != NULL);
    CHECK(th_get(r->json, "hash") == NULL);
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
};

static void *claim_waiting(void *p) {
    struct claim_arg *a = p;
    a->status = sec_http(&srv, a->bearer, "POST", "/v1/queues/revq/claim",
                         "{\"worker\":\"w1\",\"wait_seconds\":30}")
                    ->status;
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
    CHECK(sec_log_has(&srv, "1 waiting request(s) answered 401"));
    sse_event_clear(&ev);
    sse_close(&c);
    /* A new stream with the revoked token is refused. */
    CHECK(sse_open_with(&c, srv.url, "/v1/events", -1, 0, hdr) == 0);
    CHECK_INT(sse_next(&c, &ev, 5000), -1);
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
    /* One event for every stream: each is open once it has it. */
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
    long status;
};

static void *open_claim_waiting(void *p) {
    struct open_claim *a = p;
    a->status =
        th_http(a->s, "POST", "/v1/queues/openq/claim", "{\"worker\":\"w1\",\"wait_seconds\":30}")
            ->status;
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
    CHECK_INT(sse_next(&open_c, &ev, 300), 0);
    CHECK_INT(open_c.status, 200);
    struct open_claim a = {&s2, 0};
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
    CHECK_INT(sse_next(&c, &ev, 300), 0);
    CHECK_INT(c.status, 200);
    /* What was opened without a token ends long before its own time. */
    CHECK_INT(sse_next(&open_c, &ev, 10000), -1);
    CHECK(strstr(open_c.last_comment, "the server needs a token now") != NULL);
    pthread_join(th, NULL);
    CHECK_INT(a.status, 401);
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

/* Empties a server's log, so the next start's lines are its own. */
static void log_clear(struct th_server *s) {
    char path[400];
    snprintf(path, sizeof path, "%s/server.log", s->dir);
    FILE *f = fopen(path, "w");
    if (f) fclose(f);
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
    CHECK_INT(th_http(&s2, "GET", "/v1/tasks", NULL)->status, 200);
    th_server_free(&s2);
}

static void test_non_loopback_needs_tokens_or_flag(void) {
    struct th_server s2;
    CHECK(th_server_start(&s2, "--listen", "0.0.0.0:0", NULL) != 0);
    th_server_stop(&s2, true);
    bool refused = sec_log_has(&s2, "refusing to listen on '0.0.0.0:0' without authentication");
    th_server_free(&s2);
    CHECK(refused);

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
    {"a revoked token is refused on the next request", test_revoked_token_refused_at_once},
    {"an expired token is refused", test_expired_token_refused},
    {"malformed credentials are refused", test_malformed_credentials},
    {"the admin token API", test_admin_token_api},
    {"the token CLI refuses bad usage", test_token_cli_usage},
    {"revoking a token ends its event streams and parked claims",
     test_revocation_ends_streams_and_waits},
    {"a reader's /metrics names no queue or type of another namespace",
     test_metrics_of_one_namespace},
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
