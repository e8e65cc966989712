/*
 * What the dashboard reads and does through the v1 API (docs/dashboard.md,
 * docs/api.md): who the caller is, search over name, params and error, the
 * attempt history, bulk controls with a count confirmed first, pausing a
 * whole queue, the per-minute queue stats (kept across a restart), and the
 * token recorded on each event. On both backends; bad input changes nothing.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

#include "harness.h"
#include "sec_util.h"
#include "sse_client.h"

static struct th_server srv;

static char *tpath(const char *id, const char *tail) {
    static __thread char p[160];
    snprintf(p, sizeof p, "/v1/tasks/%s%s", id, tail);
    return p;
}

/* Claims from queue and completes (ok) or fails for good; returns the task's id in id. */
static void run_one(const char *queue, bool ok, char id[33]) {
    char tok[33];
    char body[64];
    snprintf(body, sizeof body, "{\"worker\":\"w-%s\"}", queue);
    if (th_claim(&srv, queue, body, id, tok) != 200) {
        id[0] = '\0';
        return;
    }
    if (ok)
        th_http(&srv, "POST", tpath(id, "/complete"), "{\"lease_token\":\"%s\"}", tok);
    else
        th_http(&srv, "POST", tpath(id, "/fail"),
                "{\"lease_token\":\"%s\",\"error\":\"disk full\",\"retryable\":false}", tok);
}

static void test_whoami_open(void) {
    struct th_resp *r = th_http(&srv, "GET", "/v1/whoami", NULL);
    CHECK_INT(r->status, 200);
    CHECK(json_is_true(th_get(r->json, "open")));
    CHECK_STR(th_str(r->json, "role"), "admin");
    CHECK(json_is_null(th_get(r->json, "namespace")));
    CHECK(json_is_null(th_get(r->json, "token_id")));
}

static void test_whoami_with_tokens(void) {
    struct th_server s;
    CHECK(th_server_start(&s, NULL) == 0);
    char admin[128], admin_id[32], reader[128], reader_id[32];
    bool made = sec_token(&s, "admin", "default", "--name boss", admin, admin_id) == 0 &&
                sec_token(&s, "reader", "team-a", "--name viewer", reader, reader_id) == 0;
    /* A server that started open learns of tokens made beside it on its next look;
     * a restart makes that now. */
    th_server_stop(&s, false);
    made = made && th_server_restart(&s) == 0;
    struct th_resp *r = made ? sec_http(&s, NULL, "GET", "/v1/whoami", NULL) : NULL;
    long anon = r ? r->status : 0;
    r = made ? sec_http(&s, reader, "GET", "/v1/whoami", NULL) : NULL;
    bool rd = r && r->status == 200 && json_is_false(th_get(r->json, "open")) &&
              strcmp(th_str(r->json, "role"), "reader") == 0 &&
              strcmp(th_str(r->json, "namespace"), "team-a") == 0 &&
              strcmp(th_str(r->json, "token_id"), reader_id) == 0 &&
              strcmp(th_str(r->json, "name"), "viewer") == 0;
    r = made ? sec_http(&s, admin, "GET", "/v1/whoami", NULL) : NULL;
    bool ad = r && r->status == 200 && strcmp(th_str(r->json, "role"), "admin") == 0 &&
              json_is_null(th_get(r->json, "namespace"));
    /* A reader may not pause a queue or act in bulk. */
    r = made ? sec_http(&s, reader, "POST", "/v1/queues/q/pause", NULL) : NULL;
    long rpause = r ? r->status : 0;
    r = made ? sec_http(&s, reader, "POST", "/v1/tasks/bulk",
                        "{\"action\":\"cancel\",\"dry_run\":true}")
             : NULL;
    long rbulk = r ? r->status : 0;
    th_server_free(&s);
    CHECK(made);
    CHECK_INT(anon, 401);
    CHECK(rd);
    CHECK(ad);
    CHECK_INT(rpause, 403);
    CHECK_INT(rbulk, 403);
}

static void test_search(void) {
    char *a = th_submit(&srv, "srch", "\"queue\":\"sq\",\"name\":\"Nightly Export\"");
    char *b = th_submit(&srv, "srch", "\"queue\":\"sq\",\"params\":{\"file\":\"HOLIDAY.jpg\"}");
    char *c = th_submit(&srv, "srch", "\"queue\":\"sq\",\"name\":\"other\"");
    CHECK(a && b && c);
    char id[33];
    run_one("sq", false, id); /* fails the oldest (a) with "disk full" */
    CHECK_STR(id, a);
    struct th_resp *r = th_http(&srv, "GET", "/v1/tasks?queue=sq&q=export", NULL);
    CHECK_INT(r->status, 200);
    CHECK_INT(json_array_size(th_get(r->json, "tasks")), 1);
    CHECK_STR(th_str(r->json, "tasks.0.id"), a);
    r = th_http(&srv, "GET", "/v1/tasks?queue=sq&q=holiday", NULL);
    CHECK_INT(json_array_size(th_get(r->json, "tasks")), 1);
    CHECK_STR(th_str(r->json, "tasks.0.id"), b);
    r = th_http(&srv, "GET", "/v1/tasks?queue=sq&q=DISK%20FULL", NULL);
    CHECK_INT(json_array_size(th_get(r->json, "tasks")), 1);
    CHECK_STR(th_str(r->json, "tasks.0.id"), a);
    r = th_http(&srv, "GET", "/v1/tasks?queue=sq&q=nothing-like-this", NULL);
    CHECK_INT(json_array_size(th_get(r->json, "tasks")), 0);
    r = th_http(&srv, "GET", "/v1/tasks?queue=sq&namespace=default", NULL);
    CHECK_INT(json_array_size(th_get(r->json, "tasks")), 3);
    r = th_http(&srv, "GET", "/v1/tasks?queue=sq&namespace=elsewhere", NULL);
    CHECK_INT(json_array_size(th_get(r->json, "tasks")), 0);
    r = th_http(&srv, "GET", "/v1/tasks?q=", NULL);
    CHECK_INT(r->status, 400);
    CHECK_STR(th_str(r->json, "error.field"), "q");
    free(a);
    free(b);
    free(c);
}

static void test_attempts(void) {
    char *id = th_submit(&srv, "att", "\"queue\":\"aq\",\"max_retries\":2,\"backoff_ms\":0");
    CHECK(id);
    char cid[33], tok[33];
    CHECK_INT(th_claim(&srv, "aq", "{\"worker\":\"w1\"}", cid, tok), 200);
    th_http(&srv, "POST", tpath(id, "/fail"),
            "{\"lease_token\":\"%s\",\"error\":\"flaky\",\"retryable\":true}", tok);
    long st = 0;
    for (int i = 0; i < 200 && st != 200; i++) { /* the retry comes due at once (backoff 0) */
        st = th_claim(&srv, "aq", "{\"worker\":\"w2\"}", cid, tok);
        if (st != 200) th_sleep_ms(100);
    }
    CHECK_INT(st, 200);
    CHECK_STR(cid, id);
    struct th_resp *r = th_http(&srv, "GET", tpath(id, "/attempts"), NULL);
    CHECK_INT(r->status, 200);
    CHECK_INT(th_int(r->json, "attempt"), 2);
    CHECK_INT(json_array_size(th_get(r->json, "attempts")), 2);
    CHECK_STR(th_str(r->json, "attempts.0.worker"), "w1");
    CHECK_STR(th_str(r->json, "attempts.0.outcome"), "retry");
    CHECK_STR(th_str(r->json, "attempts.0.error"), "flaky");
    CHECK(th_str(r->json, "attempts.0.ended_at"));
    CHECK_STR(th_str(r->json, "attempts.1.outcome"), "running");
    CHECK(json_is_null(th_get(r->json, "attempts.1.ended_at")));
    th_http(&srv, "POST", tpath(id, "/complete"), "{\"lease_token\":\"%s\"}", tok);
    r = th_http(&srv, "GET", tpath(id, "/attempts"), NULL);
    CHECK_STR(th_str(r->json, "attempts.1.worker"), "w2");
    CHECK_STR(th_str(r->json, "attempts.1.outcome"), "completed");
    CHECK(json_is_null(th_get(r->json, "attempts.1.error")));
    r = th_http(&srv, "GET", tpath("0123456789abcdef0123456789abcdef", "/attempts"), NULL);
    CHECK_INT(r->status, 404);
    free(id);
}

/* A lease that runs out ends the attempt as lease_expired; the sweep's event has no actor. */
static void test_attempt_lease_expired(void) {
    char *id = th_submit(&srv, "att", "\"queue\":\"lq\",\"max_retries\":0");
    CHECK(id);
    char cid[33], tok[33];
    CHECK_INT(th_claim(&srv, "lq", "{\"worker\":\"gone\",\"lease_seconds\":1}", cid, tok), 200);
    const char *outcome = "?";
    struct th_resp *r = NULL;
    for (int i = 0; i < 200; i++) {
        r = th_http(&srv, "GET", tpath(id, "/attempts"), NULL);
        outcome = th_str(r->json, "attempts.0.outcome");
        if (outcome && strcmp(outcome, "running") != 0) break;
        th_sleep_ms(100);
    }
    CHECK_STR(outcome, "lease_expired");
    CHECK(th_str(r->json, "attempts.0.error"));
    struct sse_conn c;
    CHECK(sse_open(&c, srv.url, tpath(id, "/events?since=0"), -1, 0) == 0);
    struct sse_event ev = {0};
    bool saw_sweep = false, claim_by_open = false;
    while (sse_next(&c, &ev, 20000) == 1) {
        json_t *j = json_loads(ev.data, 0, NULL);
        const char *cause = th_str(j, "cause");
        if (cause && strcmp(cause, "lease_expired") == 0)
            saw_sweep = json_is_null(th_get(j, "actor"));
        if (cause && strcmp(cause, "claim") == 0)
            claim_by_open = th_str(j, "actor") && strcmp(th_str(j, "actor"), "open") == 0;
        json_decref(j);
        sse_event_clear(&ev);
        if (saw_sweep) break;
    }
    sse_close(&c);
    CHECK(claim_by_open);
    CHECK(saw_sweep);
    free(id);
}

static void test_bulk(void) {
    char *ids[4];
    for (int i = 0; i < 4; i++) {
        ids[i] = th_submit(&srv, "blk", "\"queue\":\"bq\",\"max_retries\":0");
        CHECK(ids[i]);
    }
    char id[33];
    for (int i = 0; i < 3; i++)
        run_one("bq", false, id); /* three fail, one stays pending */
    const char *f = "\"filter\":{\"queue\":\"bq\",\"phase\":\"failed\"}";
    struct th_resp *r =
        th_http(&srv, "POST", "/v1/tasks/bulk", "{\"action\":\"retry\",%s,\"dry_run\":true}", f);
    CHECK_INT(r->status, 200);
    CHECK_INT(th_int(r->json, "matched"), 3);
    /* A count that no longer holds changes nothing. */
    r = th_http(&srv, "POST", "/v1/tasks/bulk", "{\"action\":\"retry\",%s,\"expected\":2}", f);
    CHECK_INT(r->status, 409);
    CHECK_STR(th_str(r->json, "error.field"), "expected");
    r = th_http(&srv, "GET", "/v1/tasks?queue=bq&phase=failed", NULL);
    CHECK_INT(json_array_size(th_get(r->json, "tasks")), 3);
    /* Bad input: each named, nothing changed. */
    static const struct {
        const char *body, *field;
        long status;
    } bad[] = {
        {"{\"action\":\"explode\",\"dry_run\":true}", "action", 400},
        {"{\"dry_run\":true}", "action", 400},
        {"{\"action\":\"retry\"}", "expected", 400},
        {"{\"action\":\"retry\",\"expected\":-1}", "expected", 400},
        {"{\"action\":\"retry\",\"dry_run\":\"yes\"}", "dry_run", 400},
        {"{\"action\":\"retry\",\"dry_run\":true,\"filter\":[]}", "filter", 400},
        {"{\"action\":\"retry\",\"dry_run\":true,\"filter\":{\"phase\":\"sleepy\"}}",
         "filter.phase", 400},
        {"{\"action\":\"retry\",\"dry_run\":true,\"filter\":{\"queue\":7}}", "filter", 400},
        {"{\"action\":\"retry\",\"dry_run\":true,\"filter\":{\"limit\":\"5\"}}", "filter", 400},
        {"{\"action\":\"retry\",\"dry_run\":true,\"colour\":1}", "colour", 400},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        r = th_http(&srv, "POST", "/v1/tasks/bulk", "%s", bad[i].body);
        if (r->status != bad[i].status || !th_str(r->json, "error.field") ||
            strcmp(th_str(r->json, "error.field"), bad[i].field) != 0) {
            th_fail(__FILE__, __LINE__, "bulk %s: %ld %s", bad[i].body, r->status, r->body);
            return;
        }
    }
    r = th_http(&srv, "GET", "/v1/tasks?queue=bq&phase=failed", NULL);
    CHECK_INT(json_array_size(th_get(r->json, "tasks")), 3);
    r = th_http(&srv, "POST", "/v1/tasks/bulk", "{\"action\":\"retry\",%s,\"expected\":3}", f);
    CHECK_INT(r->status, 200);
    CHECK_INT(th_int(r->json, "matched"), 3);
    CHECK_INT(th_int(r->json, "changed"), 3);
    CHECK_INT(th_int(r->json, "skipped"), 0);
    r = th_http(&srv, "GET", "/v1/tasks?queue=bq&phase=pending", NULL);
    CHECK_INT(json_array_size(th_get(r->json, "tasks")), 4);
    /* Pause every pending one. */
    r = th_http(&srv, "POST", "/v1/tasks/bulk",
                "{\"action\":\"pause\",\"filter\":{\"queue\":\"bq\"},\"expected\":4}");
    CHECK_INT(r->status, 200);
    CHECK_INT(th_int(r->json, "changed"), 4);
    r = th_http(&srv, "GET", tpath(ids[3], ""), NULL);
    CHECK(json_is_true(th_get(r->json, "paused")));
    /* Retry applies to none of them now: each is skipped, none changed. */
    r = th_http(&srv, "POST", "/v1/tasks/bulk",
                "{\"action\":\"retry\",\"filter\":{\"queue\":\"bq\"},\"expected\":4}");
    CHECK_INT(r->status, 200);
    CHECK_INT(th_int(r->json, "changed"), 0);
    CHECK_INT(th_int(r->json, "skipped"), 4);
    /* Cancel, then delete them all (admin in open mode). */
    r = th_http(&srv, "POST", "/v1/tasks/bulk",
                "{\"action\":\"cancel\",\"filter\":{\"queue\":\"bq\"},\"expected\":4}");
    CHECK_INT(th_int(r->json, "changed"), 4);
    r = th_http(&srv, "POST", "/v1/tasks/bulk",
                "{\"action\":\"delete\",\"filter\":{\"queue\":\"bq\"},\"expected\":4}");
    CHECK_INT(r->status, 200);
    CHECK_INT(th_int(r->json, "changed"), 4);
    r = th_http(&srv, "GET", "/v1/tasks?queue=bq", NULL);
    CHECK_INT(json_array_size(th_get(r->json, "tasks")), 0);
    for (int i = 0; i < 4; i++)
        free(ids[i]);
}

/* A client token may bulk-cancel in its namespace but not delete; its events carry its id. */
static void test_bulk_roles_and_actor(void) {
    struct th_server s;
    CHECK(th_server_start(&s, NULL) == 0);
    char cl[128], cl_id[32], other[128], other_id[32];
    bool made = sec_token(&s, "client", "ns1", "", cl, cl_id) == 0 &&
                sec_token(&s, "client", "ns2", "", other, other_id) == 0;
    th_server_stop(&s, false);
    made = made && th_server_restart(&s) == 0;
    struct th_resp *r = NULL;
    char id[40] = "";
    if (made) {
        r = sec_http(&s, cl, "POST", "/v1/tasks", "{\"type\":\"x\",\"queue\":\"rq\"}");
        if (r->status == 201) snprintf(id, sizeof id, "%s", th_str(r->json, "id"));
        sec_http(&s, other, "POST", "/v1/tasks", "{\"type\":\"x\",\"queue\":\"rq\"}");
    }
    r = made ? sec_http(&s, cl, "POST", "/v1/tasks/bulk",
                        "{\"action\":\"delete\",\"filter\":{\"queue\":\"rq\"},\"dry_run\":true}")
             : NULL;
    long del = r ? r->status : 0;
    r = made ? sec_http(&s, cl, "POST", "/v1/tasks/bulk",
                        "{\"action\":\"cancel\",\"filter\":{\"queue\":\"rq\"},\"dry_run\":true}")
             : NULL;
    long matched = r && r->status == 200 ? th_int(r->json, "matched") : -1;
    r = made ? sec_http(&s, cl, "POST", "/v1/tasks/bulk",
                        "{\"action\":\"cancel\",\"filter\":{\"queue\":\"rq\"},\"expected\":1}")
             : NULL;
    long changed = r && r->status == 200 ? th_int(r->json, "changed") : -1;
    /* The cancel's event names the client's token. */
    char hdr[200];
    snprintf(hdr, sizeof hdr, "Authorization: Bearer %s", cl);
    bool actor_ok = false;
    struct sse_conn c;
    if (id[0] && sse_open_with(&c, s.url, tpath(id, "/events?since=0"), -1, 0, hdr) == 0) {
        struct sse_event ev = {0};
        while (!actor_ok && sse_next(&c, &ev, 20000) == 1) {
            json_t *j = json_loads(ev.data, 0, NULL);
            const char *cause = th_str(j, "cause"), *actor = th_str(j, "actor");
            actor_ok = cause && strcmp(cause, "cancel") == 0 && actor && strcmp(actor, cl_id) == 0;
            json_decref(j);
            sse_event_clear(&ev);
        }
        sse_close(&c);
    }
    th_server_free(&s);
    CHECK(made);
    CHECK(id[0]);
    CHECK_INT(del, 403);
    CHECK_INT(matched, 1); /* only its own namespace's task */
    CHECK_INT(changed, 1);
    CHECK(actor_ok);
}

static void test_queue_pause(void) {
    char *id = th_submit(&srv, "qp", "\"queue\":\"pq\"");
    CHECK(id);
    struct th_resp *r = th_http(&srv, "POST", "/v1/queues/pq/pause", NULL);
    CHECK_INT(r->status, 200);
    CHECK_STR(th_str(r->json, "name"), "pq");
    CHECK_STR(th_str(r->json, "state"), "paused");
    CHECK(json_is_false(th_get(r->json, "configured")));
    CHECK_INT(th_int(r->json, "counts.pending"), 1);
    char cid[33], tok[33];
    CHECK_INT(th_claim(&srv, "pq", "{\"worker\":\"w\"}", cid, tok), 204);
    /* Settings set while paused keep it paused. */
    r = th_http(&srv, "PUT", "/v1/queues/pq", "{\"max_retries\":7}");
    CHECK_INT(r->status, 200);
    CHECK_INT(th_claim(&srv, "pq", "{\"worker\":\"w\"}", cid, tok), 204);
    r = th_http(&srv, "GET", "/v1/queues", NULL);
    bool listed = false;
    size_t i;
    json_t *q;
    json_array_foreach(th_get(r->json, "queues"), i, q) {
        if (strcmp(json_string_value(json_object_get(q, "name")), "pq") != 0) continue;
        listed = strcmp(json_string_value(json_object_get(q, "state")), "paused") == 0 &&
                 json_is_true(json_object_get(q, "configured"));
    }
    CHECK(listed);
    /* Bad input changes nothing. */
    r = th_http(&srv, "POST", "/v1/queues/bad%20name/resume", NULL);
    CHECK_INT(r->status, 400);
    CHECK_STR(th_str(r->json, "error.field"), "queue");
    r = th_http(&srv, "POST", "/v1/queues/pq/resume", "{\"now\":true}");
    CHECK_INT(r->status, 400);
    CHECK_STR(th_str(r->json, "error.field"), "now");
    CHECK_INT(th_claim(&srv, "pq", "{\"worker\":\"w\"}", cid, tok), 204);
    r = th_http(&srv, "POST", "/v1/queues/pq/resume", NULL);
    CHECK_INT(r->status, 200);
    CHECK_STR(th_str(r->json, "state"), "active");
    CHECK_INT(th_claim(&srv, "pq", "{\"worker\":\"w\"}", cid, tok), 200);
    CHECK_STR(cid, id);
    th_http(&srv, "POST", tpath(id, "/complete"), "{\"lease_token\":\"%s\"}", tok);
    free(id);
}

/* A claim parked on a paused queue is served when the queue resumes. */
struct parked {
    long status;
    char id[33];
};

static void *parked_claim(void *arg) {
    struct parked *p = arg;
    char tok[33];
    p->status = th_claim(&srv, "pw", "{\"worker\":\"w\",\"wait_seconds\":10}", p->id, tok);
    th_http_raw(NULL, NULL, NULL, NULL, 0, NULL); /* this thread's connection */
    return NULL;
}

static void test_queue_resume_wakes_claim(void) {
    th_http(&srv, "POST", "/v1/queues/pw/pause", NULL);
    char *id = th_submit(&srv, "qp", "\"queue\":\"pw\"");
    CHECK(id);
    struct parked p = {0};
    pthread_t t;
    pthread_create(&t, NULL, parked_claim, &p);
    bool parked;
    TRY_WAIT_UNTIL(parked, th_metric(&srv, "taskmill_parked_claims") >= 1, 10000,
                   "the claim on the paused queue to be parked");
    struct th_resp *r = th_http(&srv, "POST", "/v1/queues/pw/resume", NULL);
    long resumed = r->status;
    pthread_join(t, NULL);
    CHECK_INT(resumed, 200);
    CHECK_INT(p.status, 200);
    CHECK_STR(p.id, id);
    free(id);
}

static long long bucket_sum(json_t *stats, const char *key) {
    long long n = 0;
    size_t i;
    json_t *b;
    json_array_foreach(json_object_get(stats, "buckets"), i, b) n +=
        json_integer_value(json_object_get(b, key));
    return n;
}

static void test_queue_stats_survive_restart(void) {
    struct th_server s;
    CHECK(th_server_start(&s, NULL) == 0);
    for (int i = 0; i < 3; i++) {
        struct th_resp *r = th_http(&s, "POST", "/v1/tasks", "{\"type\":\"st\",\"queue\":\"stq\"}");
        if (r->status != 201) {
            th_server_free(&s);
            CHECK(!"submit");
        }
    }
    int done = 0, failed = 0;
    for (int i = 0; i < 3; i++) {
        char id[33], tok[33];
        if (th_claim(&s, "stq", "{\"worker\":\"w\"}", id, tok) != 200) break;
        struct th_resp *r =
            i < 2 ? th_http(&s, "POST", tpath(id, "/complete"), "{\"lease_token\":\"%s\"}", tok)
                  : th_http(&s, "POST", tpath(id, "/fail"),
                            "{\"lease_token\":\"%s\",\"error\":\"x\",\"retryable\":false}", tok);
        if (r->status == 200) (i < 2 ? done++ : failed++);
    }
    th_server_stop(&s, false);
    bool up = th_server_restart(&s) == 0;
    struct th_resp *r = up ? th_http(&s, "GET", "/v1/queues/stq/stats", NULL) : NULL;
    long st = r ? r->status : 0;
    long long sub = r ? bucket_sum(r->json, "submitted") : -1;
    long long comp = r ? bucket_sum(r->json, "completed") : -1;
    long long fail = r ? bucket_sum(r->json, "failed") : -1;
    size_t nb = r ? json_array_size(th_get(r->json, "buckets")) : 0;
    long long secs = r ? th_int(r->json, "bucket_seconds") : 0;
    /* The latest bucket with claims has a latency. */
    bool latency = false;
    size_t i;
    json_t *b;
    if (r)
        json_array_foreach(th_get(r->json, "buckets"), i, b) latency =
            latency || json_is_number(json_object_get(b, "latency_ms_avg"));
    r = up ? th_http(&s, "GET", "/v1/queues/stq/stats?range=day", NULL) : NULL;
    size_t nday = r && r->status == 200 ? json_array_size(th_get(r->json, "buckets")) : 0;
    long long day_sub = r ? bucket_sum(r->json, "submitted") : -1;
    long long day_secs = r ? th_int(r->json, "bucket_seconds") : 0;
    r = up ? th_http(&s, "GET", "/v1/queues/stq/stats?range=week", NULL) : NULL;
    long bad_range = r ? r->status : 0;
    const char *bad_field = r ? th_str(r->json, "error.field") : NULL;
    bool bad_field_ok = bad_field && strcmp(bad_field, "range") == 0;
    r = up ? th_http(&s, "GET", "/v1/queues/stq/stats?colour=red", NULL) : NULL;
    long bad_param = r ? r->status : 0;
    r = up ? th_http(&s, "GET", "/v1/queues/nothing-here/stats", NULL) : NULL;
    long long empty = r && r->status == 200 ? bucket_sum(r->json, "submitted") : -1;
    th_server_free(&s);
    CHECK(up);
    CHECK_INT(done, 2);
    CHECK_INT(failed, 1);
    CHECK_INT(st, 200);
    CHECK_INT(nb, 60);
    CHECK_INT(secs, 60);
    CHECK_INT(sub, 3);
    CHECK_INT(comp, 2);
    CHECK_INT(fail, 1);
    CHECK(latency);
    CHECK_INT(nday, 96);
    CHECK_INT(day_secs, 900);
    CHECK_INT(day_sub, 3);
    CHECK_INT(bad_range, 400);
    CHECK(bad_field_ok);
    CHECK_INT(bad_param, 400);
    CHECK_INT(empty, 0);
}

int main(int argc, char **argv) {
    static const struct th_test tests[] = {
        {"whoami in open mode", test_whoami_open},
        {"whoami with tokens; a reader may not pause or bulk", test_whoami_with_tokens},
        {"search over name, params and error", test_search},
        {"attempt history: retry, then completed", test_attempts},
        {"attempt history: lease expired; the sweep's event has no actor",
         test_attempt_lease_expired},
        {"bulk: count first, a stale count changes nothing, bad input named", test_bulk},
        {"bulk: a client token's namespace and role; its token on the events",
         test_bulk_roles_and_actor},
        {"queue pause: no claims, settings keep it, resume", test_queue_pause},
        {"queue resume wakes a parked claim", test_queue_resume_wakes_claim},
        {"queue stats per minute and per 15 minutes, kept across a restart",
         test_queue_stats_survive_restart},
        {NULL, NULL},
    };
    return th_main_server(tests, argc, argv, &srv, NULL);
}
