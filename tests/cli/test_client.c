/*
 * libtaskmill against the real server: submit (with an idempotency key
 * and in a batch), get, list with filters and paging, the controls, the
 * worker calls (claim, heartbeat with progress, complete, fail, release),
 * errors with the server's code, message and field, tm_watch following
 * several tasks to their end, and the abort hook and a timeout of the
 * caller's abandoning a call to a server that does not answer.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "cli_run.h"
#include "harness.h"
#include "integration/sec_util.h"
#include "taskmill.h"

static struct th_server srv;
static struct tm_client *cl;

static const char *jstr(const json_t *o, const char *k) {
    return json_string_value(json_object_get(o, k));
}

static void test_submit_get_list(void) {
    json_t *spec = json_pack("{s:s, s:s, s:s, s:{s:i}}", "type", "resize", "name", "lib one",
                             "queue", "libq", "params", "n", 3);
    json_t *t = NULL, *again = NULL;
    CHECK_INT(tm_submit(cl, spec, "key-1", &t), 0);
    CHECK_STR(jstr(t, "phase"), "pending");
    CHECK_INT(tm_submit(cl, spec, "key-1", &again), 0);
    CHECK_STR(jstr(again, "id"), jstr(t, "id"));
    json_decref(again);
    json_decref(spec);

    json_t *got = NULL;
    CHECK_INT(tm_get(cl, jstr(t, "id"), &got), 0);
    CHECK_STR(jstr(got, "name"), "lib one");
    CHECK_INT(json_integer_value(json_object_get(json_object_get(got, "params"), "n")), 3);
    json_decref(got);

    json_t *batch = json_pack("[{s:s, s:s}, {s:s, s:s}]", "type", "b", "queue", "libq", "type", "b",
                              "queue", "libq");
    json_t *tasks = NULL;
    CHECK_INT(tm_submit_batch(cl, batch, &tasks), 0);
    CHECK_INT(json_array_size(tasks), 2);
    json_decref(batch);
    json_decref(tasks);

    struct tm_list_query q = {.queue = "libq", .type = "b", .limit = 1, .order = "asc"};
    json_t *page = NULL;
    CHECK_INT(tm_list(cl, &q, &page), 0);
    CHECK_INT(json_array_size(json_object_get(page, "tasks")), 1);
    CHECK(jstr(page, "next_cursor") != NULL);
    char cursor[64];
    snprintf(cursor, sizeof cursor, "%s", jstr(page, "next_cursor"));
    json_decref(page);
    q.cursor = cursor;
    CHECK_INT(tm_list(cl, &q, &page), 0);
    CHECK_INT(json_array_size(json_object_get(page, "tasks")), 1);
    CHECK(json_is_null(json_object_get(page, "next_cursor")));
    json_decref(page);
    json_decref(t);
}

static void test_errors_carry_server_detail(void) {
    json_t *t = NULL;
    CHECK_INT(tm_get(cl, "0123456789abcdef0123456789abcdef", &t), TM_CLIENT_ENOTFOUND);
    CHECK(t == NULL);
    const struct tm_client_error *e = tm_client_last_error(cl);
    CHECK_INT(e->http_status, 404);
    CHECK_STR(e->slug, "not_found");
    CHECK(strstr(e->message, "not found") != NULL);

    json_t *bad = json_pack("{s:s, s:s}", "type", "x", "priority", "high");
    CHECK_INT(tm_submit(cl, bad, NULL, &t), TM_CLIENT_EINVALID);
    json_decref(bad);
    CHECK_STR(e->field, "priority");
    CHECK_STR(e->slug, "invalid_argument");

    bad = json_pack("{s:s}", "name", "no type");
    CHECK_INT(tm_submit(cl, bad, NULL, NULL), TM_CLIENT_EINVALID);
    json_decref(bad);
    CHECK_STR(e->field, "type");

    /* A completed task cannot be cancelled: 409. */
    char *id = th_submit(&srv, "done", "\"queue\":\"doneq\"");
    char cid[33], tok[33];
    CHECK_INT(th_claim(&srv, "doneq", NULL, cid, tok), 200);
    CHECK_INT(tm_complete(cl, id, tok, NULL, NULL, NULL), 0);
    CHECK_INT(tm_cancel(cl, id, NULL), TM_CLIENT_ECONFLICT);
    CHECK_INT(e->http_status, 409);
    free(id);

    struct tm_client *nowhere = tm_client_new("http://127.0.0.1:1", NULL);
    CHECK_INT(tm_get(nowhere, "0123456789abcdef0123456789abcdef", NULL), TM_CLIENT_ECONNECT);
    CHECK(tm_client_last_error(nowhere)->message[0] != '\0');
    tm_client_free(nowhere);
    CHECK(tm_client_new(NULL, NULL) == NULL);
    CHECK_STR(tm_strerror(TM_CLIENT_ENOTFOUND), "not found");
}

/*
 * A request whose line and headers are over the server's limit (a very long
 * id or query value) is refused with 431: TM_CLIENT_ETOOLARGE, as a body over
 * the limit is, with the server's code and message.
 */
static void test_headers_too_large(void) {
    size_t n = 20000;
    char *big = malloc(n + 1);
    memset(big, 'a', n);
    big[n] = '\0';
    json_t *t = NULL;
    CHECK_INT(tm_get(cl, big, &t), TM_CLIENT_ETOOLARGE);
    CHECK(t == NULL);
    const struct tm_client_error *e = tm_client_last_error(cl);
    CHECK_INT(e->http_status, 431);
    CHECK_STR(e->slug, "request_header_fields_too_large");
    CHECK(e->message[0] != '\0');
    struct tm_list_query q = {.name_prefix = big};
    CHECK_INT(tm_list(cl, &q, &t), TM_CLIENT_ETOOLARGE);
    CHECK(t == NULL);
    free(big);
}

/* The phase of task id, read through the test's own HTTP client (static). */
static const char *phase_of(const char *id) {
    static char phase[32];
    char path[96];
    snprintf(path, sizeof path, "/v1/tasks/%s", id);
    struct th_resp *r = th_http(&srv, "GET", path, NULL);
    snprintf(phase, sizeof phase, "%s", r->json ? jstr(r->json, "phase") : "?");
    return phase;
}

/*
 * A claim's type that is not UTF-8 (or is NULL) cannot go into the JSON
 * body: refused with the field named and nothing claimed, where it used to
 * drop out of "types" and so widen the claim to a task of another type.
 */
static void test_claim_type_not_utf8(void) {
    char *id = th_submit(&srv, "other", "\"queue\":\"utfq\"");
    const char *bad[] = {"other", "want\xff"};
    struct tm_claim_options o = {.worker = "w", .types = bad, .ntypes = 2};
    json_t *task = NULL, *claims = NULL;
    char tok[TM_LEASE_TOKEN_MAX];
    const struct tm_client_error *e = tm_client_last_error(cl);
    CHECK_INT(tm_claim(cl, "utfq", &o, &task, tok), TM_CLIENT_EINVALID);
    CHECK(task == NULL);
    CHECK_STR(e->field, "types[1]");
    CHECK(strstr(e->message, "'types[1]'") != NULL);
    CHECK_INT(e->http_status, 0);
    const char *nul[] = {"want", NULL};
    o.types = nul;
    CHECK_INT(tm_claim_many(cl, "utfq", &o, 5, &claims), TM_CLIENT_EINVALID);
    CHECK(claims == NULL);
    CHECK_STR(e->field, "types[1]");
    const char *only_bad[] = {"want\xff"};
    o.types = only_bad;
    o.ntypes = 1;
    CHECK_INT(tm_claim(cl, "utfq", &o, &task, tok), TM_CLIENT_EINVALID);
    CHECK_STR(phase_of(id), "pending"); /* not claimed */
    free(id);
}

/*
 * An idempotency key that is not UTF-8 is refused with its field, not
 * dropped: dropped, a repeat of the same submit made a second task.
 */
static void test_idempotency_key_not_utf8(void) {
    json_t *spec = json_pack("{s:s, s:s}", "type", "idem", "queue", "idemq");
    json_t *t = NULL;
    const struct tm_client_error *e = tm_client_last_error(cl);
    CHECK_INT(tm_submit(cl, spec, "key\xff", &t), TM_CLIENT_EINVALID);
    CHECK(t == NULL);
    CHECK_STR(e->field, "idempotency_key");
    CHECK_INT(tm_submit(cl, spec, "key\xff", NULL), TM_CLIENT_EINVALID);
    json_decref(spec);
    struct tm_list_query q = {.queue = "idemq"};
    json_t *page = NULL;
    CHECK_INT(tm_list(cl, &q, &page), 0);
    CHECK_INT(json_array_size(json_object_get(page, "tasks")), 0); /* nothing was submitted */
    json_decref(page);
}

/*
 * What a worker's call cannot send as given is refused naming its field,
 * and the task is unchanged: a ratio that is not a number (it used to drop
 * out, the heartbeat "succeeding"), a fail error that is not UTF-8 (the
 * server said "'error' is required"), a lease token that is not UTF-8 (it
 * aborted the program), a progress message that is not UTF-8 (dropped, the
 * call succeeding). tm_work_entry gives NULL for the first three and
 * leaves the message out.
 */
static void test_report_not_sendable(void) {
    char *id = th_submit(&srv, "rep", "\"queue\":\"repq\"");
    char cid[33], tok[33];
    CHECK_INT(th_claim(&srv, "repq", NULL, cid, tok), 200);
    json_t *t = NULL;
    CHECK_INT(tm_get(cl, id, &t), 0);
    json_int_t version = json_integer_value(json_object_get(t, "version"));
    json_decref(t);
    const struct tm_client_error *e = tm_client_last_error(cl);
    struct tm_report nan_ratio = {.has_ratio = true, .ratio = NAN, .message = "half"};
    struct tm_heartbeat_reply reply;
    CHECK_INT(tm_heartbeat(cl, id, tok, 0, &nan_ratio, &reply), TM_CLIENT_EINVALID);
    CHECK_STR(e->field, "progress.ratio");
    CHECK_INT(tm_complete(cl, id, tok, NULL, &nan_ratio, &t), TM_CLIENT_EINVALID);
    CHECK(t == NULL);
    CHECK_INT(tm_fail(cl, id, tok, "broken \xff", false, NULL, &t), TM_CLIENT_EINVALID);
    CHECK_STR(e->field, "error");
    CHECK(strstr(e->message, "UTF-8") != NULL);
    CHECK_INT(tm_heartbeat(cl, id, "tok\xff", 0, NULL, NULL), TM_CLIENT_EINVALID);
    CHECK_STR(e->field, "lease_token");
    CHECK_INT(tm_release(cl, id, "tok\xff", NULL), TM_CLIENT_EINVALID);
    CHECK_STR(e->field, "lease_token");
    /* A progress message that is not UTF-8: it was dropped and the call went through. */
    struct tm_report bad_msg = {.has_ratio = true, .ratio = 0.5, .message = "half \xff"};
    CHECK_INT(tm_heartbeat(cl, id, tok, 0, &bad_msg, &reply), TM_CLIENT_EINVALID);
    CHECK_STR(e->field, "progress.message");
    CHECK(strstr(e->message, "UTF-8") != NULL);
    CHECK_INT(tm_fail(cl, id, tok, "broken", false, &bad_msg, &t), TM_CLIENT_EINVALID);
    CHECK_STR(e->field, "progress.message");
    CHECK(t == NULL);
    CHECK_INT(tm_complete(cl, id, tok, NULL, &bad_msg, &t), TM_CLIENT_EINVALID);
    CHECK_STR(e->field, "progress.message");
    CHECK(t == NULL);
    /* tm_work_entry leaves such a message out, as its contract says. */
    json_t *entry = tm_work_entry(id, tok, &bad_msg);
    CHECK(entry != NULL);
    CHECK(json_object_get(json_object_get(entry, "progress"), "message") == NULL);
    CHECK(json_object_get(json_object_get(entry, "progress"), "ratio") != NULL);
    json_decref(entry);
    CHECK(tm_work_entry(id, "tok\xff", NULL) == NULL);
    CHECK(tm_work_entry("id\xff", tok, NULL) == NULL);
    CHECK(tm_work_entry(id, tok, &nan_ratio) == NULL);
    CHECK_INT(tm_get(cl, id, &t), 0);
    CHECK_STR(jstr(t, "phase"), "running");
    CHECK_INT(json_integer_value(json_object_get(t, "version")), version); /* unchanged */
    json_decref(t);
    CHECK_INT(tm_complete(cl, id, tok, NULL, NULL, NULL), 0);
    free(id);
}

/* Arguments a call refuses itself (nothing sent) name their field, as the server's 400 does. */
static void test_local_refusals_name_the_field(void) {
    const struct tm_client_error *e = tm_client_last_error(cl);
    CHECK_INT(tm_get(cl, "", NULL), TM_CLIENT_EINVALID);
    CHECK_STR(e->field, "id");
    CHECK_INT(e->http_status, 0);
    struct tm_claim_options o = {.worker = "w"};
    json_t *task = NULL;
    char tok[TM_LEASE_TOKEN_MAX];
    CHECK_INT(tm_claim(cl, "", &o, &task, tok), TM_CLIENT_EINVALID);
    CHECK_STR(e->field, "queue");
    o.worker = "";
    CHECK_INT(tm_claim(cl, "q", &o, &task, tok), TM_CLIENT_EINVALID);
    CHECK_STR(e->field, "worker");
    CHECK_INT(tm_submit(cl, NULL, NULL, NULL), TM_CLIENT_EINVALID);
    CHECK_STR(e->field, "task");
    json_t *out = NULL;
    CHECK_INT(tm_client_request(cl, NULL, "/v1/queues", NULL, &out), TM_CLIENT_EINVALID);
    CHECK_STR(e->field, "method");
    CHECK_INT(tm_client_request(cl, "GET\r\nX-Injected: 1", "/v1/queues", NULL, &out),
              TM_CLIENT_EINVALID);
    CHECK_STR(e->field, "method");
    CHECK_INT(tm_client_request(cl, "GET", "v1/queues", NULL, &out), TM_CLIENT_EINVALID);
    CHECK_STR(e->field, "path");
    CHECK(out == NULL);
    CHECK_INT(tm_client_request(cl, "GET", "/v1/queues", NULL, &out), 0);
    CHECK(json_is_array(json_object_get(out, "queues")));
    json_decref(out);
}

/*
 * Numbers out of range go to the server, whose 400 names them, and nothing
 * changes: a negative page size, lease or wait used to be left out of the
 * request in silence (a claim with lease_seconds -5 leased the task for
 * the default 60 s), and a wait near INT_MAX overflowed the request's
 * timeout (signed overflow: UBSan stops the test).
 */
static void test_out_of_range_numbers_reach_the_server(void) {
    const struct tm_client_error *e = tm_client_last_error(cl);
    struct tm_list_query q = {.limit = -1};
    json_t *page = NULL;
    CHECK_INT(tm_list(cl, &q, &page), TM_CLIENT_EINVALID);
    CHECK(page == NULL);
    CHECK_STR(e->field, "limit");
    CHECK_INT(e->http_status, 400);

    char *id = th_submit(&srv, "rng", "\"queue\":\"rngq\"");
    struct tm_claim_options o = {.worker = "w", .lease_seconds = -5};
    json_t *task = NULL, *claims = NULL;
    char tok[TM_LEASE_TOKEN_MAX];
    CHECK_INT(tm_claim(cl, "rngq", &o, &task, tok), TM_CLIENT_EINVALID);
    CHECK(task == NULL);
    CHECK_STR(e->field, "lease_seconds");
    CHECK_INT(tm_claim_many(cl, "rngq", &o, 2, &claims), TM_CLIENT_EINVALID);
    CHECK(claims == NULL);
    CHECK_STR(e->field, "lease_seconds");
    o.lease_seconds = 0;
    o.wait_seconds = -1;
    CHECK_INT(tm_claim(cl, "rngq", &o, &task, tok), TM_CLIENT_EINVALID);
    CHECK_STR(e->field, "wait_seconds");
    o.wait_seconds = INT_MAX;
    CHECK_INT(tm_claim(cl, "rngq", &o, &task, tok), TM_CLIENT_EINVALID);
    CHECK_STR(e->field, "wait_seconds");
    CHECK_STR(phase_of(id), "pending"); /* none of them claimed it */
    CHECK_INT(tm_get_wait(cl, id, 0, INT_MAX, &task), TM_CLIENT_EINVALID);
    CHECK(task == NULL);
    CHECK_STR(e->field, "wait");

    o.wait_seconds = 0;
    CHECK_INT(tm_claim(cl, "rngq", &o, &task, tok), 0);
    CHECK(task != NULL);
    json_int_t version = json_integer_value(json_object_get(task, "version"));
    json_decref(task);
    CHECK_INT(tm_heartbeat(cl, id, tok, -1, NULL, NULL), TM_CLIENT_EINVALID);
    CHECK_STR(e->field, "lease_seconds");
    CHECK_INT(tm_get(cl, id, &task), 0);
    CHECK_INT(json_integer_value(json_object_get(task, "version")), version);
    json_decref(task);
    CHECK_INT(tm_complete(cl, id, tok, NULL, NULL, NULL), 0);
    free(id);
}

static void test_controls(void) {
    char *id = th_submit(&srv, "ctl", "\"queue\":\"ctlq\"");
    json_t *t = NULL;
    CHECK_INT(tm_pause(cl, id, &t), 0);
    CHECK(json_is_true(json_object_get(t, "paused")));
    json_decref(t);
    json_t *claimed = NULL;
    char tok[TM_LEASE_TOKEN_MAX];
    struct tm_claim_options o = {.worker = "w"};
    CHECK_INT(tm_claim(cl, "ctlq", &o, &claimed, tok), 0);
    CHECK(claimed == NULL); /* paused: not handed out */
    CHECK_INT(tm_resume(cl, id, NULL), 0);
    CHECK_INT(tm_cancel(cl, id, &t), 0);
    CHECK_STR(jstr(t, "phase"), "cancelled");
    json_decref(t);
    CHECK_INT(tm_retry(cl, id, &t), 0);
    CHECK_STR(jstr(t, "phase"), "pending");
    json_decref(t);
    CHECK_INT(tm_cancel(cl, id, NULL), 0);
    CHECK_INT(tm_delete(cl, id), 0);
    CHECK_INT(tm_get(cl, id, NULL), TM_CLIENT_ENOTFOUND);
    free(id);
}

static void test_worker_calls(void) {
    char *id = th_submit(&srv, "enc", "\"queue\":\"wq\",\"max_retries\":1,\"backoff_ms\":0");
    json_t *task = NULL;
    char tok[TM_LEASE_TOKEN_MAX];
    const char *types[] = {"enc"};
    struct tm_claim_options o = {.worker = "lib-worker",
                                 .types = types,
                                 .ntypes = 1,
                                 .lease_seconds = 30,
                                 .wait_seconds = 1};
    CHECK_INT(tm_claim(cl, "wq", &o, &task, tok), 0);
    CHECK(task != NULL);
    CHECK_STR(jstr(task, "id"), id);
    CHECK(strlen(tok) > 0);
    json_decref(task);

    json_t *items = json_pack("[{s:s, s:f}]", "name", "a.jpg", "progress", 0.5);
    json_t *msgs = json_pack("[{s:s, s:s}]", "level", "INFO", "text", "hello");
    json_t *attrs = json_pack("{s:s}", "host", "h1");
    struct tm_report r = {.has_counts = true,
                          .processed = 1,
                          .processing = 1,
                          .pending = 2,
                          .message = "working",
                          .items = items,
                          .messages = msgs,
                          .attributes = attrs};
    struct tm_heartbeat_reply reply;
    CHECK_INT(tm_heartbeat(cl, id, tok, 0, &r, &reply), 0);
    json_decref(items);
    json_decref(msgs);
    json_decref(attrs);
    CHECK(!reply.cancel_requested);
    CHECK(reply.lease_expires_at[0] != '\0');
    json_t *t = NULL;
    CHECK_INT(tm_get(cl, id, &t), 0);
    CHECK_INT(json_integer_value(json_object_get(json_object_get(t, "progress"), "percent")), 25);
    CHECK_STR(jstr(json_object_get(t, "attributes"), "host"), "h1");
    json_decref(t);

    struct tm_report r2 = {.has_ratio = true, .ratio = 0.75};
    CHECK_INT(tm_heartbeat(cl, id, tok, 10, &r2, NULL), 0);
    CHECK_INT(tm_heartbeat(cl, id, "0000", 0, NULL, NULL), TM_CLIENT_ELEASE);

    /* A retryable failure comes back; release hands it back uncounted; complete ends it. */
    CHECK_INT(tm_fail(cl, id, tok, "disk full", true, NULL, &t), 0);
    CHECK_STR(jstr(t, "phase"), "waiting");
    json_decref(t);
    CHECK_INT(tm_fail(cl, id, tok, "", true, NULL, NULL), TM_CLIENT_EINVALID);
    task = NULL;
    for (int i = 0; i < 50 && !task; i++)
        CHECK_INT(tm_claim(cl, "wq", &o, &task, tok), 0);
    CHECK(task != NULL);
    json_decref(task);
    CHECK_INT(tm_release(cl, id, tok, &t), 0);
    CHECK_STR(jstr(t, "phase"), "pending");
    json_decref(t);
    CHECK_INT(tm_claim(cl, "wq", &o, &task, tok), 0);
    CHECK(task != NULL);
    json_decref(task);
    json_t *result = json_pack("{s:i}", "frames", 12);
    CHECK_INT(tm_complete(cl, id, tok, result, NULL, &t), 0);
    json_decref(result);
    CHECK_STR(jstr(t, "phase"), "completed");
    CHECK_INT(json_integer_value(json_object_get(json_object_get(t, "result"), "frames")), 12);
    CHECK_INT(json_integer_value(json_object_get(t, "retries")), 1);
    json_decref(t);
    free(id);
}

/* tm_claim_many and tm_work_batch: several tasks per request, each entry on its own. */
static void test_batched_worker_calls(void) {
    for (int i = 0; i < 3; i++)
        free(th_submit(&srv, "bat", "\"queue\":\"batq\""));
    struct tm_claim_options o = {.worker = "lib-batch", .lease_seconds = 30};
    json_t *claims = NULL;
    CHECK_INT(tm_claim_many(cl, "batq", &o, 5, &claims), 0);
    CHECK_INT(json_array_size(claims), 3);
    json_t *entries = json_array();
    size_t i;
    json_t *c;
    json_array_foreach(claims, i, c) {
        json_t *t = json_object_get(c, "task");
        json_array_append_new(
            entries, json_pack("{s:O,s:O,s:{s:i}}", "id", json_object_get(t, "id"), "lease_token",
                               json_object_get(c, "lease_token"), "result", "n", (int)i));
    }
    json_array_append_new(entries, json_pack("{s:s,s:s}", "id", "0123456789abcdef0123456789abcdef",
                                             "lease_token", "x"));
    json_t *results = NULL;
    CHECK_INT(tm_work_batch(cl, "complete", entries, &results), 0);
    CHECK_INT(json_array_size(results), 4);
    CHECK_STR(jstr(json_array_get(results, 0), "phase"), "completed");
    CHECK_STR(jstr(json_array_get(results, 2), "phase"), "completed");
    CHECK_STR(jstr(json_object_get(json_array_get(results, 3), "error"), "code"), "not_found");
    json_decref(results);
    CHECK_INT(tm_work_batch(cl, "finish", entries, &results), TM_CLIENT_EINVALID);
    json_decref(entries);
    json_decref(claims);
    CHECK_INT(tm_claim_many(cl, "batq", &o, 5, &claims), 0); /* nothing left: empty, not an error */
    CHECK_INT(json_array_size(claims), 0);
    json_decref(claims);
    CHECK_INT(tm_claim_many(cl, "batq", &o, 0, &claims), TM_CLIENT_EINVALID); /* the server's 400 */
}

/* NULL out-pointers: a claim refuses one before it sends anything (a task claimed
 * with nowhere to put its lease token would stay leased to no one); a batch's
 * results and the queues may be dropped, as every other call's reply may. */
static void test_null_out_pointers(void) {
    char *id = th_submit(&srv, "nul", "\"queue\":\"nulq\"");
    struct tm_claim_options o = {.worker = "lib-null", .lease_seconds = 30};
    char token[TM_LEASE_TOKEN_MAX];
    json_t *task = NULL;
    CHECK_INT(tm_claim_many(cl, "nulq", &o, 5, NULL), TM_CLIENT_EINVALID);
    CHECK_STR(tm_client_last_error(cl)->field, "claims");
    CHECK_INT(tm_claim(cl, "nulq", &o, NULL, token), TM_CLIENT_EINVALID);
    CHECK_STR(tm_client_last_error(cl)->field, "task");
    CHECK_INT(tm_claim(cl, "nulq", &o, &task, NULL), TM_CLIENT_EINVALID);
    CHECK_STR(tm_client_last_error(cl)->field, "token");
    json_t *t = NULL;
    CHECK_INT(tm_get(cl, id, &t), 0);
    CHECK_STR(jstr(t, "phase"), "pending"); /* nothing was claimed */
    json_decref(t);
    json_t *claims = NULL;
    CHECK_INT(tm_claim_many(cl, "nulq", &o, 5, &claims), 0);
    CHECK_INT(json_array_size(claims), 1);
    json_t *c0 = json_array_get(claims, 0);
    json_t *entries = json_array();
    json_array_append_new(entries, tm_work_entry(id, jstr(c0, "lease_token"), NULL));
    CHECK_INT(tm_work_batch(cl, "complete", entries, NULL), 0);
    json_decref(entries);
    json_decref(claims);
    CHECK_INT(tm_get(cl, id, &t), 0);
    CHECK_STR(jstr(t, "phase"), "completed");
    json_decref(t);
    CHECK_INT(tm_queues(cl, NULL), 0);
    free(id);
}

/* tm_work_entry: a batched entry is the one-task call's body with the task's id. */
static void test_work_entry(void) {
    struct tm_report r = {.has_ratio = true, .ratio = 0.5, .message = "half"};
    json_t *e = tm_work_entry("0123456789abcdef0123456789abcdef", "tok", &r);
    CHECK_STR(jstr(e, "id"), "0123456789abcdef0123456789abcdef");
    CHECK_STR(jstr(e, "lease_token"), "tok");
    CHECK_STR(jstr(json_object_get(e, "progress"), "message"), "half");
    json_decref(e);
    e = tm_work_entry(NULL, "tok", NULL); /* the body of tm_release */
    CHECK(json_object_get(e, "id") == NULL);
    CHECK_INT(json_object_size(e), 1);
    json_decref(e);
}

static void test_watch_follows_to_the_end(void) {
    char *a = th_submit(&srv, "wa", "\"queue\":\"watchq\"");
    char *b = th_submit(&srv, "wb", "\"queue\":\"watchq2\"");
    struct tm_watch *w = tm_watch_new(cl);
    CHECK_INT(tm_watch_add(w, a), 0);
    CHECK_INT(tm_watch_add(w, b), 0);
    CHECK_INT(tm_watch_add(w, "0123456789abcdef0123456789abcdef"), 0);
    CHECK_INT(tm_watch_active(w), 3);
    int firsts = 0, errors = 0;
    json_t *t;
    for (int i = 0; i < 3; i++) {
        int rc = tm_watch_next(w, 5000, &t);
        if (rc == 1) {
            firsts++;
            CHECK_STR(jstr(t, "phase"), "pending");
            json_decref(t);
        } else {
            CHECK_INT(rc, TM_CLIENT_ENOTFOUND);
            CHECK_STR(tm_watch_last_id(w), "0123456789abcdef0123456789abcdef");
            errors++;
        }
    }
    CHECK_INT(firsts, 2);
    CHECK_INT(errors, 1);
    CHECK_INT(tm_watch_next(w, 200, &t), 0); /* nothing changed */

    char cid[33], tok[33];
    CHECK_INT(th_claim(&srv, "watchq", NULL, cid, tok), 200);
    CHECK_INT(tm_watch_next(w, 5000, &t), 1);
    CHECK_STR(tm_watch_last_id(w), a);
    CHECK_STR(jstr(t, "phase"), "running");
    json_decref(t);
    CHECK_INT(tm_complete(cl, a, tok, NULL, NULL, NULL), 0);
    CHECK_INT(tm_watch_next(w, 5000, &t), 1);
    CHECK_STR(jstr(t, "phase"), "completed");
    json_decref(t);
    CHECK_INT(tm_watch_active(w), 1);
    CHECK_INT(tm_cancel(cl, b, NULL), 0);
    CHECK_INT(tm_watch_next(w, 5000, &t), 1);
    CHECK_STR(jstr(t, "phase"), "cancelled");
    json_decref(t);
    CHECK_INT(tm_watch_active(w), 0);
    CHECK_INT(tm_watch_next(w, 1000, &t), 0);
    tm_watch_free(w);
    free(a);
    free(b);
}

/* examples/progress_demo.c, built next to the binary under test, runs its task to the end. */
static void test_example_program(void) {
    const char *bin = getenv("TASKMILL_BIN");
    CHECK(bin != NULL);
    char cmd[1200];
    snprintf(cmd, sizeof cmd, "%.*s/examples/progress_demo %s 2>&1", (int)(strrchr(bin, '/') - bin),
             bin, srv.url);
    FILE *p = popen(cmd, "r");
    CHECK(p != NULL);
    char out[4096] = "";
    size_t n = fread(out, 1, sizeof out - 1, p);
    out[n] = '\0';
    CHECK_INT(pclose(p), 0);
    CHECK(strstr(out, "completed SUCCESS") != NULL);
}

/* The abort hook of test_abort_hook: true from `after_ms` (th_now_ms) on; counts its calls. */
struct abort_at {
    long long after_ms;
    int calls;
};

static bool abort_when_due(void *arg) {
    struct abort_at *a = arg;
    a->calls++;
    return th_now_ms() >= a->after_ms;
}

/* The abort hook of test_abort_hook's claim: true once the claim's request
 * has reached the unanswered server (its connection accepted from lfd, its
 * first bytes peeked at, not read); counts its calls. */
struct abort_sent {
    int lfd, conn; /* conn: -1 until accepted */
    int calls;
    bool sent;
};

static bool abort_once_sent(void *arg) {
    struct abort_sent *a = arg;
    static const char line[] = "POST /v1/queues/abortq/claim ";
    a->calls++;
    if (a->conn < 0) a->conn = accept(a->lfd, NULL, NULL); /* lfd does not block */
    char buf[sizeof line];
    if (a->conn >= 0 && !a->sent &&
        recv(a->conn, buf, sizeof line - 1, MSG_PEEK | MSG_DONTWAIT) == sizeof line - 1)
        a->sent = memcmp(buf, line, sizeof line - 1) == 0;
    return a->sent;
}

/* How many connections wait on lfd (non-blocking), each accepted and closed. */
static int connections_waiting(int lfd) {
    int n = 0, fd;
    while ((fd = accept(lfd, NULL, NULL)) >= 0) {
        close(fd);
        n++;
    }
    return n;
}

/* A server that never answers: a socket that listens on loopback and
 * accepts nothing (the kernel completes connections; requests wait in
 * them). Its URL in url; the socket, or -1. */
static int listen_unanswered(char url[64]) {
    int lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    if (lfd < 0) return -1;
    if (bind(lfd, (struct sockaddr *)&a, sizeof a) || listen(lfd, 8) ||
        getsockname(lfd, (struct sockaddr *)&a, &len)) {
        close(lfd);
        return -1;
    }
    snprintf(url, 64, "http://127.0.0.1:%d", ntohs(a.sin_port));
    return lfd;
}

/*
 * A server that never answers (a socket that listens and accepts nothing:
 * the kernel completes the connection, the request waits in it): a call
 * runs until its timeout, 60 s or more, unless the abort hook abandons it.
 * Abandoned, it returns TM_CLIENT_EABORTED with no HTTP status; while the
 * hook says so, nothing is sent at all; without the hook, the client
 * works as before.
 */
static void test_abort_hook(void) {
    char url[64];
    int lfd = listen_unanswered(url);
    CHECK(lfd >= 0);
    struct tm_client *hung = tm_client_new(url, NULL);
    const struct tm_client_error *e = tm_client_last_error(hung);

    /* A long-poll claim in flight: abandoned once the hook says so (its
     * timeout is 60 + 30 s away; 20 s leaves a loaded machine its time).
     * The hook says so once the request is there, not at a time: one due
     * 300 ms after it was set abandoned the claim before sending it when
     * the test was held up that long before the call. */
    struct abort_sent sent = {.lfd = lfd, .conn = -1};
    tm_client_set_abort(hung, abort_once_sent, &sent);
    struct tm_claim_options o = {.worker = "w", .wait_seconds = 30};
    json_t *task = NULL;
    char tok[TM_LEASE_TOKEN_MAX];
    long long t0 = th_now_ms();
    int rc = tm_claim(hung, "abortq", &o, &task, tok);
    long long took = th_now_ms() - t0;
    if (sent.conn >= 0) close(sent.conn);
    CHECK_INT(rc, TM_CLIENT_EABORTED);
    CHECK(task == NULL);
    CHECK(took < 20000);
    CHECK(sent.calls >= 2); /* asked before sending, and while waiting */
    CHECK(sent.sent);       /* it had been sent */
    CHECK_INT(e->code, TM_CLIENT_EABORTED);
    CHECK_INT(e->http_status, 0);
    CHECK(strstr(e->message, "abandoned") && strstr(e->message, "/v1/queues/abortq/claim"));
    CHECK_STR(tm_strerror(TM_CLIENT_EABORTED), "abandoned by the caller");
    CHECK_INT(connections_waiting(lfd), 0); /* and on that one connection */

    /* A hook that says so already: the call fails at once, sending nothing. */
    struct abort_at at = {0, 0};
    tm_client_set_abort(hung, abort_when_due, &at);
    CHECK_INT(tm_heartbeat(hung, "0123456789abcdef0123456789abcdef", "t", 0, NULL, NULL),
              TM_CLIENT_EABORTED);
    CHECK_INT(at.calls, 1);
    th_sleep_ms(200); /* a connection that was made would be waiting by now */
    CHECK_INT(connections_waiting(lfd), 0);
    tm_client_free(hung);
    close(lfd);

    /* On a server that answers, the hook is asked and the calls go through; removed, it is
     * not asked any more. */
    struct tm_client *ok = tm_client_new(srv.url, NULL);
    at = (struct abort_at){th_now_ms() + 3600 * 1000LL, 0};
    tm_client_set_abort(ok, abort_when_due, &at);
    json_t *q = NULL;
    CHECK_INT(tm_queues(ok, &q), 0);
    json_decref(q);
    CHECK(at.calls >= 1);
    tm_client_set_abort(ok, NULL, NULL);
    int calls = at.calls;
    CHECK_INT(tm_queues(ok, &q), 0);
    json_decref(q);
    CHECK_INT(at.calls, calls);
    tm_client_free(ok);
}

/*
 * A reply cut off after its status line (the server went away mid-reply):
 * TM_CLIENT_ECONNECT, as the request may have taken effect, with the
 * status the reply began with and a message that says it was cut off, not
 * that the server could not be reached. A reply that is whole but not JSON
 * is TM_CLIENT_EPROTOCOL.
 */
static void test_reply_cut_off(void) {
    struct cli_canned k;
    CHECK(cli_canned_start(&k,
                           "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                           "Content-Length: 100\r\n\r\n{\"id\": \"01",
                           NULL) == 0);
    struct tm_client *c = tm_client_new(k.url, NULL);
    const struct tm_client_error *e = tm_client_last_error(c);
    json_t *t = NULL;
    CHECK_INT(tm_get(c, "0123456789abcdef0123456789abcdef", &t), TM_CLIENT_ECONNECT);
    CHECK(t == NULL);
    CHECK_INT(e->http_status, 200);
    if (!strstr(e->message, "cut off")) printf("    message: %s\n", e->message);
    CHECK(strstr(e->message, "cut off") != NULL);
    CHECK(strstr(e->message, "cannot reach") == NULL);
    tm_client_free(c);
    cli_canned_stop(&k);

    CHECK(cli_canned_start(&k,
                           "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\n"
                           "Content-Length: 13\r\n\r\n<html></html>",
                           NULL) == 0);
    c = tm_client_new(k.url, NULL);
    e = tm_client_last_error(c);
    CHECK_INT(tm_get(c, "0123456789abcdef0123456789abcdef", &t), TM_CLIENT_EPROTOCOL);
    CHECK(t == NULL);
    CHECK_INT(e->http_status, 200);
    tm_client_free(c);
    cli_canned_stop(&k);
}

/*
 * A reply far larger than any the v1 API sends (here one that never ends)
 * is abandoned once it passes the client's limit, 64 MiB by default or
 * what tm_client_set_reply_max set: TM_CLIENT_EPROTOCOL with the status,
 * not memory spent until the timeout (30 s here; with no limit the client
 * buffered all it was sent until then). Against the real server a limit
 * below a task's size refuses the reply, and 0 restores the default.
 */
static void test_reply_too_large(void) {
    static char filler[64 * 1024 + 1];
    for (size_t i = 0; i + 1 < sizeof filler; i += 2)
        memcpy(filler + i, "1,", 2);
    struct cli_canned k;
    CHECK(cli_canned_start(&k, "HTTP/1.0 200 OK\r\nContent-Type: application/json\r\n\r\n[",
                           filler) == 0);
    struct tm_client *c = tm_client_new(k.url, NULL);
    tm_client_set_timeout(c, 30000);
    const struct tm_client_error *e = tm_client_last_error(c);
    json_t *t = NULL;
    CHECK_INT(tm_list(c, NULL, &t), TM_CLIENT_EPROTOCOL);
    CHECK(t == NULL);
    CHECK_INT(e->http_status, 200);
    if (!strstr(e->message, "larger than 67108864 bytes")) printf("    message: %s\n", e->message);
    CHECK(strstr(e->message, "larger than 67108864 bytes") != NULL);
    tm_client_set_reply_max(c, 1024 * 1024);
    CHECK_INT(tm_get(c, "0123456789abcdef0123456789abcdef", &t), TM_CLIENT_EPROTOCOL);
    CHECK(strstr(e->message, "larger than 1048576 bytes") != NULL);
    tm_client_free(c);
    cli_canned_stop(&k);

    char *id = th_submit(&srv, "big", "\"queue\":\"bigq\"");
    c = tm_client_new(srv.url, NULL);
    e = tm_client_last_error(c);
    tm_client_set_reply_max(c, 64);
    CHECK_INT(tm_get(c, id, &t), TM_CLIENT_EPROTOCOL);
    CHECK(t == NULL);
    CHECK(strstr(e->message, "larger than 64 bytes") != NULL);
    tm_client_set_reply_max(c, 0);
    CHECK_INT(tm_get(c, id, &t), 0);
    CHECK_STR(jstr(t, "id"), id);
    json_decref(t);
    tm_client_free(c);
    free(id);
}

/* Whether s is UTF-8 (jansson takes only that). */
static bool is_utf8(const char *s) {
    json_t *j = json_string(s);
    json_decref(j);
    return j != NULL;
}

/*
 * An error whose message and field are longer than the last error holds
 * them is cut at a whole UTF-8 character, so it stays text a program can
 * print or put into JSON (it used to end in half a character).
 */
static void test_long_error_text_stays_utf8(void) {
    static char reply[4096];
    char msg[1200] = "", field[200] = "";
    for (int i = 0; i < 300; i++)
        strcat(msg, "\xc3\xa9"); /* é: 600 bytes, the message holds 511 */
    for (int i = 0; i < 30; i++)
        strcat(field, "\xe2\x82\xac"); /* €: 90 bytes, the field holds 63 */
    char body[2048];
    int n =
        snprintf(body, sizeof body,
                 "{\"error\":{\"code\":\"invalid_argument\",\"message\":\"%s\",\"field\":\"%s\"}}",
                 msg, field);
    snprintf(reply, sizeof reply,
             "HTTP/1.1 400 Bad Request\r\nContent-Type: application/json\r\n"
             "Content-Length: %d\r\n\r\n%s",
             n, body);
    struct cli_canned k;
    CHECK(cli_canned_start(&k, reply, NULL) == 0);
    struct tm_client *c = tm_client_new(k.url, NULL);
    const struct tm_client_error *e = tm_client_last_error(c);
    CHECK_INT(tm_get(c, "0123456789abcdef0123456789abcdef", NULL), TM_CLIENT_EINVALID);
    CHECK_STR(e->slug, "invalid_argument");
    CHECK(is_utf8(e->message));
    CHECK_INT(strlen(e->message), 510); /* 255 whole characters */
    CHECK(strncmp(e->message, msg, 510) == 0);
    CHECK(is_utf8(e->field));
    CHECK_INT(strlen(e->field), 63); /* 21 whole characters */
    tm_client_free(c);
    cli_canned_stop(&k);
}

/*
 * tm_client_set_timeout: a call to a server that never answers (a socket
 * that listens and accepts nothing) gives up after the timeout set, with
 * TM_CLIENT_ECONNECT, instead of the 60 s default (a bound of 20 s guards
 * the hang); on a server that answers, calls go through with it set, and
 * with it cleared again.
 */
static void test_timeout(void) {
    char url[64];
    int lfd = listen_unanswered(url);
    CHECK(lfd >= 0);
    struct tm_client *hung = tm_client_new(url, NULL);
    tm_client_set_timeout(hung, 500);
    long long t0 = th_now_ms();
    int rc = tm_heartbeat(hung, "0123456789abcdef0123456789abcdef", "t", 0, NULL, NULL);
    long long took = th_now_ms() - t0;
    CHECK_INT(rc, TM_CLIENT_ECONNECT);
    CHECK(took >= 400 && took < 20000);
    CHECK_INT(tm_client_last_error(hung)->http_status, 0);
    CHECK_INT(connections_waiting(lfd), 1); /* it had been sent */
    tm_client_free(hung);
    close(lfd);

    struct tm_client *ok = tm_client_new(srv.url, NULL);
    tm_client_set_timeout(ok, 10000);
    json_t *q = NULL;
    CHECK_INT(tm_queues(ok, &q), 0);
    json_decref(q);
    tm_client_set_timeout(ok, 0);
    CHECK_INT(tm_queues(ok, &q), 0);
    json_decref(q);
    tm_client_free(ok);
}

/*
 * A server's "slow down": a 429 (its --max-rate per token) is
 * TM_CLIENT_ERATE, named "too many requests", with the reply's
 * Retry-After (1 s) in retry_after_ms; a 503 with Retry-After (a public
 * body past --max-public-body-bytes) is TM_CLIENT_ESERVER with it too;
 * the next call's error starts without it.
 */
static void test_rate_limit_and_retry_after(void) {
    struct th_server own;
    CHECK(th_server_start(&own, "--max-rate", "2", "--max-public-body-bytes", "1024", NULL) == 0);
    char bearer[128], id[32];
    CHECK_INT(sec_token(&own, "reader", "default", "", bearer, id), 0);
    WAIT_UNTIL(th_http(&own, "GET", "/v1/tasks", NULL)->status == 401, 20000,
               "the open mode to end once a token exists");
    struct tm_client *c = tm_client_new(own.url, bearer);
    const struct tm_client_error *e = tm_client_last_error(c);
    CHECK_STR(tm_strerror(TM_CLIENT_ERATE), "too many requests");
    /* A bucket of 2 a second: some of 20 calls in a row are refused. */
    int rc = 0, calls = 0;
    for (; calls < 20 && rc != TM_CLIENT_ERATE; calls++) {
        json_t *page = NULL;
        struct tm_list_query q = {.limit = 1};
        rc = tm_list(c, &q, &page);
        CHECK(rc == 0 || rc == TM_CLIENT_ERATE);
        CHECK(rc != 0 || e->retry_after_ms == 0);
        json_decref(page);
    }
    if (rc != TM_CLIENT_ERATE) printf("    %d calls, none refused\n", calls);
    CHECK_INT(rc, TM_CLIENT_ERATE);
    CHECK_INT(e->code, TM_CLIENT_ERATE);
    CHECK_INT(e->http_status, 429);
    CHECK_STR(e->slug, "too_many_requests");
    CHECK(strstr(e->message, "requests a second") != NULL);
    CHECK_INT(e->retry_after_ms, 1000);
    /* Not found is answered without it (the bucket has refilled: a second by design). */
    th_sleep_ms(1100);
    CHECK_INT(tm_get(c, "0123456789abcdef0123456789abcdef", NULL), TM_CLIENT_ENOTFOUND);
    CHECK_INT(e->retry_after_ms, 0);
    tm_client_free(c);

    /* SailPoint's token route reads its body before any credentials: past the server's
     * bound on such bodies, 503 with Retry-After: 1. */
    c = tm_client_new(own.url, NULL);
    e = tm_client_last_error(c);
    char pad[2048];
    memset(pad, 'x', sizeof pad - 1);
    pad[sizeof pad - 1] = '\0';
    json_t *body = json_pack("{s:s}", "pad", pad);
    CHECK_INT(tm_client_request(c, "POST", "/oauth/token", body, NULL), TM_CLIENT_ESERVER);
    json_decref(body);
    CHECK_INT(e->http_status, 503);
    CHECK_INT(e->retry_after_ms, 1000);
    tm_client_free(c);
    th_server_free(&own);
}

/* One canned reply's Retry-After as the client reads it: the code and retry_after_ms. */
static void retry_after_of(const char *status_line, const char *value, int want_code, int64_t *ms) {
    char reply[512];
    snprintf(reply, sizeof reply,
             "HTTP/1.1 %s\r\nContent-Type: application/json\r\nRetry-After: %s\r\n"
             "Content-Length: 2\r\nConnection: close\r\n\r\n{}",
             status_line, value);
    struct cli_canned k;
    *ms = -1;
    CHECK(cli_canned_start(&k, reply, NULL) == 0);
    struct tm_client *c = tm_client_new(k.url, NULL);
    int rc = tm_get(c, "0123456789abcdef0123456789abcdef", NULL);
    if (rc != want_code)
        printf("    '%s' with Retry-After '%s': code %d\n", status_line, value, rc);
    *ms = tm_client_last_error(c)->retry_after_ms;
    tm_client_free(c);
    cli_canned_stop(&k);
    CHECK_INT(rc, want_code);
}

/*
 * Retry-After in its two forms (RFC 9110 10.2.3): delta-seconds, and an
 * HTTP-date counted from now (0 once past); anything else is 0, a larger
 * value than a day is a day, and only a 429 or a 503 carries it.
 */
static void test_retry_after_forms(void) {
    int64_t ms;
    retry_after_of("429 Too Many Requests", "7", TM_CLIENT_ERATE, &ms);
    CHECK_INT(ms, 7000);
    retry_after_of("503 Service Unavailable", "0", TM_CLIENT_ESERVER, &ms);
    CHECK_INT(ms, 0);
    retry_after_of("429 Too Many Requests", "99999999999999999999", TM_CLIENT_ERATE, &ms);
    CHECK_INT(ms, 86400000);
    retry_after_of("429 Too Many Requests", "1.5", TM_CLIENT_ERATE, &ms);
    CHECK_INT(ms, 0);
    retry_after_of("429 Too Many Requests", "soon", TM_CLIENT_ERATE, &ms);
    CHECK_INT(ms, 0);
    retry_after_of("500 Internal Server Error", "5", TM_CLIENT_ESERVER, &ms);
    CHECK_INT(ms, 0);
    char date[64];
    time_t at = time(NULL) + 120;
    struct tm g;
    strftime(date, sizeof date, "%a, %d %b %Y %H:%M:%S GMT", gmtime_r(&at, &g));
    retry_after_of("503 Service Unavailable", date, TM_CLIENT_ESERVER, &ms);
    /* Two minutes from when the reply was made, less the time since (a bound, not a speed). */
    if (ms < 60000 || ms > 121000) printf("    '%s': %lld ms\n", date, (long long)ms);
    CHECK(ms >= 60000 && ms <= 121000);
    at = time(NULL) - 3600;
    strftime(date, sizeof date, "%a, %d %b %Y %H:%M:%S GMT", gmtime_r(&at, &g));
    retry_after_of("429 Too Many Requests", date, TM_CLIENT_ERATE, &ms);
    CHECK_INT(ms, 0);
}

static const struct th_test tests[] = {
    {"claim many, complete many (libtaskmill)", test_batched_worker_calls},
    {"NULL out-pointers: claims refuse them, a batch and the queues drop the reply",
     test_null_out_pointers},
    {"a batched entry is the one-task body with the id", test_work_entry},
    {"submit, get, list with paging", test_submit_get_list},
    {"errors carry the server's code, message and field", test_errors_carry_server_detail},
    {"request headers over the server's limit are ETOOLARGE", test_headers_too_large},
    {"a claim's type that is not UTF-8 is refused, not dropped", test_claim_type_not_utf8},
    {"an idempotency key that is not UTF-8 is refused, not dropped", test_idempotency_key_not_utf8},
    {"a report or lease token a call cannot send is refused", test_report_not_sendable},
    {"arguments a call refuses itself name their field", test_local_refusals_name_the_field},
    {"numbers out of range reach the server, not dropped",
     test_out_of_range_numbers_reach_the_server},
    {"pause, resume, cancel, retry, delete", test_controls},
    {"claim, heartbeat, fail, release, complete", test_worker_calls},
    {"watch follows tasks to their end", test_watch_follows_to_the_end},
    {"the example program", test_example_program},
    {"the abort hook abandons a call the server does not answer", test_abort_hook},
    {"a timeout set on the client bounds a call the server does not answer", test_timeout},
    {"a reply cut off mid-body says so, with its status", test_reply_cut_off},
    {"a reply over the client's limit is abandoned", test_reply_too_large},
    {"a long error message is cut at a whole character", test_long_error_text_stays_utf8},
    {"a 429 is ERATE with Retry-After; a 503 carries it too", test_rate_limit_and_retry_after},
    {"Retry-After in seconds or as an HTTP-date", test_retry_after_forms},
    {NULL, NULL},
};

int main(int argc, char **argv) {
    if (th_server_start(&srv, NULL)) {
        printf("RESULT passed=0 failed=1\n");
        return 1;
    }
    cl = tm_client_new(srv.url, NULL);
    int rc = th_main(tests, argc, argv);
    tm_client_free(cl);
    th_server_free(&srv);
    return rc || th_failed();
}
