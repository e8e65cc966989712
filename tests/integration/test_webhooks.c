/*
 * Webhooks against the real server and a receiver thread in the test:
 * create, list, delete; private destinations refused unless allowed; a
 * receiver that fails the first attempts still gets every event, each with
 * a Livepeer signature it verifies; deliveries listed with their outcome;
 * deliveries pending across a crash of the server are sent after restart;
 * a receiver that accepts and never answers holds up neither another
 * webhook's deliveries nor more than one connection, and is retried; the
 * senders are woken only by commits that queued a delivery.
 */
#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"
#include "hook_receiver.h"
#include "sec_util.h"

#define SECRET   "s3cret-for-tests"
#define MAX_SEEN 256

/* A tiny HTTP receiver: answers `fail_first` requests with 503, then 200. */
struct receiver {
    int fd, port;
    pthread_t thread;
    _Atomic int fail_first;
    _Atomic bool down; /* answer 503 to everything */
    _Atomic bool stop;
    pthread_mutex_t lock;
    int requests, bad_signatures;
    char *ids[MAX_SEEN]; /* delivery ids answered 200, in order */
    char *events[MAX_SEEN];
    int nseen;
};

static void receiver_handle(struct receiver *rv, int c) {
    char buf[1 << 16];
    size_t at, clen;
    if (!read_request(c, buf, sizeof buf, &at, &clen)) return;
    const char *body = buf + at;
    char sig[200] = "";
    char *s = strcasestr(buf, "\r\nLivepeer-Signature: ");
    if (s) sscanf(s + 22, "%199[^\r]", sig);
    long long t = 0;
    bool good = signature_ok(SECRET, sig[0] ? sig : NULL, body, clen, &t);
    json_t *j = json_loadb(body, clen, 0, NULL);
    if (good && (!j || th_int(j, "timestamp") != t)) good = false;
    pthread_mutex_lock(&rv->lock);
    rv->requests++;
    if (!good) rv->bad_signatures++;
    int status = 200;
    if (atomic_load(&rv->down)) {
        status = 503;
    } else if (atomic_load(&rv->fail_first) > 0) {
        atomic_fetch_sub(&rv->fail_first, 1);
        status = 503;
    }
    if (status == 200 && j && rv->nseen < MAX_SEEN) {
        rv->ids[rv->nseen] = strdup(th_str(j, "id") ? th_str(j, "id") : "");
        rv->events[rv->nseen] = strdup(th_str(j, "event") ? th_str(j, "event") : "");
        rv->nseen++;
    }
    pthread_mutex_unlock(&rv->lock);
    json_decref(j);
    char reply[128];
    int n = snprintf(reply, sizeof reply,
                     "HTTP/1.1 %d %s\r\nContent-Length: 0\r\nConnection: close\r\n\r\n", status,
                     status == 200 ? "OK" : "Unavailable");
    if (write(c, reply, (size_t)n) < 0) {
    }
}

static void *receiver_main(void *arg) {
    struct receiver *rv = arg;
    while (!atomic_load(&rv->stop)) {
        int c = accept(rv->fd, NULL, NULL);
        if (c < 0) continue;
        if (!atomic_load(&rv->stop)) receiver_handle(rv, c);
        close(c);
    }
    return NULL;
}

static int receiver_start(struct receiver *rv) {
    memset(rv, 0, sizeof *rv);
    pthread_mutex_init(&rv->lock, NULL);
    if ((rv->fd = listen_loopback(&rv->port)) < 0) return -1;
    return pthread_create(&rv->thread, NULL, receiver_main, rv);
}

static void receiver_stop(struct receiver *rv) {
    atomic_store(&rv->stop, true);
    wake_accept(rv->port);
    pthread_join(rv->thread, NULL);
    close(rv->fd);
    for (int i = 0; i < rv->nseen; i++) {
        free(rv->ids[i]);
        free(rv->events[i]);
    }
    pthread_mutex_destroy(&rv->lock);
}

static int receiver_seen(struct receiver *rv) {
    pthread_mutex_lock(&rv->lock);
    int n = rv->nseen;
    pthread_mutex_unlock(&rv->lock);
    return n;
}

static int receiver_requests(struct receiver *rv) {
    pthread_mutex_lock(&rv->lock);
    int n = rv->requests;
    pthread_mutex_unlock(&rv->lock);
    return n;
}

static bool wait_seen(struct receiver *rv, int want, int timeout_ms) {
    for (int waited = 0; waited < timeout_ms; waited += 50) {
        if (receiver_seen(rv) >= want) return true;
        th_sleep_ms(50);
    }
    return receiver_seen(rv) >= want;
}

static char *create_webhook(struct th_server *srv, int port, const char *events) {
    struct th_resp *r = th_http(srv, "POST", "/v1/webhooks",
                                "{\"url\":\"http://127.0.0.1:%d/hook\",\"secret\":\"" SECRET
                                "\",\"name\":\"t\"%s%s}",
                                port, events ? ",\"events\":" : "", events ? events : "");
    if (r->status != 201) {
        printf("    create webhook: %ld %s\n", r->status, r->body);
        return NULL;
    }
    return strdup(th_str(r->json, "id"));
}

static void test_crud_and_private_refused(void) {
    struct th_server srv;
    CHECK(th_server_start(&srv, NULL) == 0);
    struct th_resp *r =
        th_http(&srv, "POST", "/v1/webhooks", "{\"url\":\"http://127.0.0.1:9/hook\"}");
    CHECK_INT(r->status, 400);
    CHECK_STR(th_str(r->json, "error.field"), "url");
    CHECK_INT(th_http(&srv, "POST", "/v1/webhooks", "{\"url\":\"http://10.1.2.3/x\"}")->status,
              400);
    CHECK_INT(th_http(&srv, "POST", "/v1/webhooks", "{\"url\":\"ftp://example.com/\"}")->status,
              400);
    th_server_free(&srv);

    CHECK(th_server_start(&srv, "--webhook-allow-private", NULL) == 0);
    CHECK_INT(th_http(&srv, "POST", "/v1/webhooks",
                      "{\"url\":\"http://127.0.0.1:9/\",\"events\":[\"task.nope\"]}")
                  ->status,
              400);
    CHECK_INT(
        th_http(&srv, "POST", "/v1/webhooks", "{\"url\":\"http://127.0.0.1:9/\",\"x\":1}")->status,
        400);
    r = th_http(&srv, "POST", "/v1/webhooks",
                "{\"url\":\"http://127.0.0.1:9/\",\"events\":[\"task.completed\"]}");
    CHECK_INT(r->status, 201);
    CHECK(th_str(r->json, "secret") != NULL); /* generated, shown once */
    CHECK_STR(th_str(r->json, "events.0"), "task.completed");
    char *id = strdup(th_str(r->json, "id"));
    r = th_http(&srv, "GET", "/v1/webhooks", NULL);
    CHECK_INT(r->status, 200);
    CHECK_STR(th_str(r->json, "webhooks.0.id"), id);
    CHECK(th_get(r->json, "webhooks.0.secret") == NULL);
    char path[128];
    snprintf(path, sizeof path, "/v1/webhooks/%s", id);
    CHECK_INT(th_http(&srv, "GET", path, NULL)->status, 200);
    CHECK_INT(th_http(&srv, "DELETE", path, NULL)->status, 204);
    CHECK_INT(th_http(&srv, "DELETE", path, NULL)->status, 404);
    CHECK_INT(th_http(&srv, "GET", path, NULL)->status, 404);
    free(id);
    th_server_free(&srv);
}

/* Each bad create body is 400 naming its field, and nothing is stored. */
static void test_bad_bodies_named_nothing_stored(void) {
    static const struct {
        const char *body, *field;
    } bad[] = {
        {"{\"url\":\"http:///hook\"}", "url"}, /* libcurl would send it to host 'hook' */
        {"{\"url\":\"https:///x/y\"}", "url"},
        {"{\"url\":\"http://example.com:0/hook\"}", "url"},
        {"{\"url\":\"http://127.0.0.1./hook\"}", "url"}, /* a literal, with a root dot */
        {"{\"url\":\"http://10.0.0.1./hook\"}", "url"},
        {"{\"url\":\"http://exa mple.com/\"}", "url"},
        {"{\"url\":\"http://example.com:99999/\"}", "url"},
        {"{\"url\":\"ftp://example.com/\"}", "url"},
        {"{\"url\":\"\"}", "url"},
        {"{\"url\":7}", "url"},
        {"{\"events\":[\"task.spawned\"]}", "url"},
        {"{\"url\":\"http://example.com/\",\"events\":[]}", "events"},
        {"{\"url\":\"http://example.com/\",\"events\":[\"task.created\"]}", "events[0]"},
        {"{\"url\":\"http://example.com/\",\"events\":\"task.spawned\"}", "events"},
        {"{\"url\":\"http://example.com/\",\"secret\":\"short\"}", "secret"},
        {"{\"url\":\"http://example.com/\",\"name\":\"\"}", "name"},
        {"{\"url\":\"http://example.com/\",\"namespace\":null}", "namespace"},
        /* A namespace as everywhere else (1-64 of [A-Za-z0-9._-]): a made-up
         * string was stored, echoed, and counted as a --max-webhooks group. */
        {"{\"url\":\"http://example.com/\",\"namespace\":\"bad ns\"}", "namespace"},
        {"{\"url\":\"http://example.com/\",\"namespace\":\"a/b\\u001b[31m\"}", "namespace"},
        {"{\"url\":\"http://example.com/\",\"namespace\":\"a\\u0000b\"}", "namespace"},
        {"{\"url\":\"http://example.com/\",\"namespace\":\"\"}", "namespace"},
        {"{\"url\":\"http://example.com/\",\"namespace\":\""
         "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\"}",
         "namespace"}, /* 65 */
        {"{\"url\":\"http://example.com/\",\"namespace\":7}", "namespace"},
        {"{\"url\":\"http://example.com/\",\"extra\":1}", "extra"},
    };
    struct th_server srv;
    CHECK(th_server_start(&srv, NULL) == 0);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct th_resp *r = th_http(&srv, "POST", "/v1/webhooks", "%s", bad[i].body);
        if (r->status != 400 || !th_str(r->json, "error.field") ||
            strcmp(th_str(r->json, "error.field"), bad[i].field) != 0)
            th_fail(__FILE__, __LINE__, "%s: %ld %s", bad[i].body, r->status, r->body);
    }
    struct th_resp *r = th_http(&srv, "GET", "/v1/webhooks", NULL);
    CHECK_INT(r->status, 200);
    CHECK_INT((long long)json_array_size(th_get(r->json, "webhooks")), 0);
    th_server_free(&srv);
}

/* The reads take `limit` (deliveries) once and nothing else: a filter the
 * list does not have is 400 naming it, not ignored (which listed every
 * delivery as if it had filtered). */
static void test_read_queries_checked(void) {
    struct th_server srv;
    CHECK(th_server_start(&srv, "--webhook-allow-private", NULL) == 0);
    char *hook = create_webhook(&srv, 9, NULL);
    CHECK(hook);
    static const struct {
        const char *query, *field;
    } bad[] = {
        {"?status=nope", "status"}, /* status and cursor: test_webhooks_deliveries.c */
        {"?limit=5&limit=6", "limit"},
        {"?limit=0", "limit"},
        {"?limit=5&cursor=x", "cursor"},
    };
    char path[200];
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        snprintf(path, sizeof path, "/v1/webhooks/%s/deliveries%s", hook, bad[i].query);
        struct th_resp *r = th_http(&srv, "GET", path, NULL);
        if (r->status != 400 || !th_str(r->json, "error.field") ||
            strcmp(th_str(r->json, "error.field"), bad[i].field) != 0)
            th_fail(__FILE__, __LINE__, "%s: %ld %s", path, r->status, r->body);
    }
    snprintf(path, sizeof path, "/v1/webhooks/%s/deliveries?limit=5", hook);
    CHECK_INT(th_http(&srv, "GET", path, NULL)->status, 200);
    struct th_resp *r = th_http(&srv, "GET", "/v1/webhooks?namespace=x", NULL);
    CHECK_INT(r->status, 400);
    CHECK_STR(th_str(r->json, "error.field"), "namespace");
    snprintf(path, sizeof path, "/v1/webhooks/%s?x=1", hook);
    CHECK_INT(th_http(&srv, "GET", path, NULL)->status, 400);
    CHECK_INT(th_http(&srv, "GET", "/v1/webhooks", NULL)->status, 200);
    free(hook);
    th_server_free(&srv);
}

static void test_failing_receiver_gets_every_event_signed(void) {
    struct receiver rv;
    CHECK(receiver_start(&rv) == 0);
    atomic_store(&rv.fail_first, 3);
    struct th_server srv;
    CHECK(th_server_start(&srv, "--webhook-allow-private", "--webhook-backoff-ms", "100", NULL) ==
          0);
    char *hook = create_webhook(&srv, rv.port, NULL);
    CHECK(hook);
    char *id = th_submit(&srv, "transcode-file", NULL);
    char cid[33], tok[33];
    CHECK_INT(th_claim(&srv, "default", NULL, cid, tok), 200);
    char path[160];
    snprintf(path, sizeof path, "/v1/tasks/%s/heartbeat", id);
    CHECK_INT(
        th_http(&srv, "POST", path, "{\"lease_token\":\"%s\",\"progress\":{\"ratio\":0.5}}", tok)
            ->status,
        200);
    snprintf(path, sizeof path, "/v1/tasks/%s/complete", id);
    CHECK_INT(th_http(&srv, "POST", path, "{\"lease_token\":\"%s\"}", tok)->status, 200);
    /* spawned; updated x3 (claim, heartbeat, complete); completed. */
    bool all = wait_seen(&rv, 5, 20000);
    pthread_mutex_lock(&rv.lock);
    int n = rv.nseen, bad = rv.bad_signatures, requests = rv.requests;
    int spawned = 0, updated = 0, completed = 0, dup = 0;
    for (int i = 0; i < n; i++) {
        spawned += strcmp(rv.events[i], "task.spawned") == 0;
        updated += strcmp(rv.events[i], "task.updated") == 0;
        completed += strcmp(rv.events[i], "task.completed") == 0;
        for (int k = 0; k < i; k++)
            dup += strcmp(rv.ids[i], rv.ids[k]) == 0;
    }
    pthread_mutex_unlock(&rv.lock);
    CHECK(all);
    CHECK_INT(n, 5);
    CHECK_INT(bad, 0);
    CHECK_INT(requests, 8); /* three refused first */
    CHECK_INT(spawned, 1);
    CHECK_INT(updated, 3);
    CHECK_INT(completed, 1);
    CHECK_INT(dup, 0);
    snprintf(path, sizeof path, "/v1/webhooks/%s/deliveries", hook);
    /* The receiver has answered; the server records each outcome just after. */
    struct th_resp *r = NULL;
    for (int waited = 0; waited < 10000; waited += 50) {
        r = th_http(&srv, "GET", path, NULL);
        json_t *all5 = th_get(r->json, "deliveries");
        size_t delivered = 0;
        for (size_t i = 0; i < json_array_size(all5); i++)
            if (strcmp(th_str(json_array_get(all5, i), "status"), "delivered") == 0) delivered++;
        if (r->status != 200 || delivered == 5) break;
        th_sleep_ms(50);
    }
    CHECK_INT(r->status, 200);
    json_t *d = th_get(r->json, "deliveries");
    CHECK(json_array_size(d) == 5);
    int retried = 0;
    for (size_t i = 0; i < json_array_size(d); i++) {
        json_t *one = json_array_get(d, i);
        if (strcmp(th_str(one, "status"), "delivered") != 0)
            th_fail(__FILE__, __LINE__, "delivery %zu is '%s'", i, th_str(one, "status"));
        if (th_int(one, "attempts") > 1) retried++;
    }
    CHECK(retried >= 1);
    free(id);
    free(hook);
    th_server_free(&srv);
    receiver_stop(&rv);
}

/* One task through claim and completion, without a progress update. */
static void run_one(struct th_server *srv) {
    char *id = th_submit(srv, "transcode-file", NULL);
    char cid[33], tok[33], path[160];
    CHECK_INT(th_claim(srv, "default", NULL, cid, tok), 200);
    snprintf(path, sizeof path, "/v1/tasks/%s/complete", cid);
    CHECK_INT(th_http(srv, "POST", path, "{\"lease_token\":\"%s\"}", tok)->status, 200);
    free(id);
}

/* The senders are woken by a commit only when it queued a delivery: not
 * by every event some webhook could subscribe to (each wake-up makes every
 * sender read the store). */
static void test_senders_wake_for_deliveries_only(void) {
    struct receiver rv;
    CHECK(receiver_start(&rv) == 0);
    struct th_server srv;
    CHECK(th_server_start(&srv, "--webhook-allow-private", NULL) == 0);
    for (int i = 0; i < 3; i++)
        run_one(&srv);
    char *hook = create_webhook(&srv, rv.port, "[\"task.completed\"]");
    CHECK(hook);
    /* Submits and claims queue nothing for this webhook; the completion
     * queues one delivery. Events reach the senders in commit order, so
     * once that delivery has woken them, every earlier commit has passed. */
    for (int i = 0; i < 3; i++)
        free(th_submit(&srv, "transcode-file", NULL));
    char cid[33], tok[33], path[160];
    CHECK_INT(th_claim(&srv, "default", NULL, cid, tok), 200);
    snprintf(path, sizeof path, "/v1/tasks/%s/complete", cid);
    CHECK_INT(th_http(&srv, "POST", path, "{\"lease_token\":\"%s\"}", tok)->status, 200);
    CHECK(wait_seen(&rv, 1, 20000));
    WAIT_UNTIL(th_metric(&srv, "taskmill_webhook_wakeups_total") >= 1, 10000,
               "the completion's commit woke the senders");
    CHECK_INT(th_metric(&srv, "taskmill_webhook_wakeups_total"), 1);
    pthread_mutex_lock(&rv.lock);
    CHECK_INT(rv.nseen, 1);
    CHECK_STR(rv.events[0], "task.completed");
    pthread_mutex_unlock(&rv.lock);
    free(hook);
    th_server_free(&srv);
    receiver_stop(&rv);
}

static void test_restart_during_delivery_loses_nothing(void) {
    struct receiver rv;
    CHECK(receiver_start(&rv) == 0);
    atomic_store(&rv.down, true);
    struct th_server srv;
    CHECK(th_server_start(&srv, "--webhook-allow-private", "--webhook-backoff-ms", "200", NULL) ==
          0);
    char *hook = create_webhook(&srv, rv.port, "[\"task.spawned\"]");
    CHECK(hook);
    for (int i = 0; i < 10; i++)
        free(th_submit(&srv, "upload", NULL));
    /* Some attempts fail while the receiver is down. */
    WAIT_UNTIL(receiver_requests(&rv) >= 1, 10000, "a delivery refused by the receiver");
    th_server_stop(&srv, true); /* a crash */
    atomic_store(&rv.down, false);
    CHECK(th_server_restart(&srv) == 0);
    bool all = wait_seen(&rv, 10, 30000);
    CHECK(all);
    th_sleep_ms(300); /* by design: a window in which a doubled delivery would come */
    CHECK_INT(receiver_seen(&rv), 10); /* each once: none doubled by the restart */
    CHECK_INT(rv.bad_signatures, 0);
    free(hook);
    th_server_free(&srv);
    receiver_stop(&rv);
}

/* Whether every pending delivery in the list `d` says it will not be tried
 * before the last failure recorded (a held webhook's deliveries wait for
 * the hold, which starts at that failure). Times compare as ISO strings. */
static bool next_attempts_after_last_failure(json_t *d) {
    const char *last = "";
    for (size_t i = 0; i < json_array_size(d); i++) {
        const char *at = th_str(json_array_get(d, i), "updated_at");
        if (th_int(json_array_get(d, i), "attempts") > 0 && at && strcmp(at, last) > 0) last = at;
    }
    for (size_t i = 0; i < json_array_size(d); i++) {
        json_t *one = json_array_get(d, i);
        const char *next = th_str(one, "next_attempt_at");
        if (strcmp(th_str(one, "status"), "pending") == 0 && (!next || strcmp(next, last) < 0)) {
            printf("    seq %lld: next_attempt_at %s, last failure %s\n", th_int(one, "seq"),
                   next ? next : "null", last);
            return false;
        }
    }
    return true;
}

/* After the circuit breaker has held a dead receiver's webhook, the
 * delivery list does not show next attempts in the past (it showed each
 * delivery's own due time, long gone for those the hold keeps waiting). */
static void test_held_webhook_list_shows_when(void) {
    struct receiver rv;
    CHECK(receiver_start(&rv) == 0);
    atomic_store(&rv.down, true);
    struct th_server srv;
    CHECK(th_server_start(&srv, "--webhook-allow-private", "--webhook-backoff-ms", "1000",
                          "--webhook-senders", "1", NULL) == 0);
    char *hook = create_webhook(&srv, rv.port, "[\"task.spawned\"]");
    CHECK(hook);
    for (int i = 0; i < 8; i++)
        free(th_submit(&srv, "upload", NULL));
    /* Five failures start the hold; the sixth is its first probe. */
    WAIT_UNTIL(receiver_requests(&rv) >= 6, 20000, "six attempts at the dead receiver");
    char path[160];
    snprintf(path, sizeof path, "/v1/webhooks/%s/deliveries", hook);
    bool ok = false;
    /* A few looks: one may fall while a probe is in flight (no hold then). */
    for (int i = 0; i < 5 && !ok; i++) {
        struct th_resp *r = th_http(&srv, "GET", path, NULL);
        CHECK_INT(r->status, 200);
        CHECK_INT((long long)json_array_size(th_get(r->json, "deliveries")), 8);
        ok = next_attempts_after_last_failure(th_get(r->json, "deliveries"));
        if (!ok) th_sleep_ms(100);
    }
    CHECK(ok);
    free(hook);
    th_server_free(&srv);
    receiver_stop(&rv);
}

/* A black hole: accepts connections and never answers, keeping them open. */
struct black_hole {
    int fd, port;
    pthread_t thread;
    _Atomic bool stop;
    _Atomic int accepted;
    int conns[64];
};

static void *black_hole_main(void *arg) {
    struct black_hole *bh = arg;
    while (!atomic_load(&bh->stop)) {
        int c = accept(bh->fd, NULL, NULL);
        if (c < 0) continue;
        int n = atomic_load(&bh->accepted);
        if (atomic_load(&bh->stop) || n >= 64) {
            close(c);
            continue;
        }
        bh->conns[n] = c;
        atomic_store(&bh->accepted, n + 1);
    }
    return NULL;
}

static int black_hole_start(struct black_hole *bh) {
    memset(bh, 0, sizeof *bh);
    if ((bh->fd = listen_loopback(&bh->port)) < 0) return -1;
    return pthread_create(&bh->thread, NULL, black_hole_main, bh);
}

/* Hangs up on every connection taken so far: an attempt in flight there
 * fails as a network error would, at once. */
static void black_hole_hang_up(struct black_hole *bh) {
    for (int i = 0; i < atomic_load(&bh->accepted); i++)
        shutdown(bh->conns[i], SHUT_RDWR);
}

static void black_hole_stop(struct black_hole *bh) {
    atomic_store(&bh->stop, true);
    wake_accept(bh->port);
    pthread_join(bh->thread, NULL);
    close(bh->fd);
    for (int i = 0; i < atomic_load(&bh->accepted); i++)
        close(bh->conns[i]);
}

static int64_t mono_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void test_black_hole_holds_up_no_other_webhook(void) {
    struct black_hole bh;
    struct receiver rv;
    CHECK(black_hole_start(&bh) == 0);
    CHECK(receiver_start(&rv) == 0);
    struct th_server srv;
    CHECK(th_server_start(&srv, "--webhook-allow-private", "--webhook-timeout-ms", "10000",
                          "--webhook-backoff-ms", "500", "--webhook-senders", "2", NULL) == 0);
    /* The black hole first, so its deliveries come first in due order. */
    char *dark = create_webhook(&srv, bh.port, "[\"task.spawned\"]");
    char *good = create_webhook(&srv, rv.port, "[\"task.spawned\"]");
    CHECK(dark && good);
    int64_t t0 = mono_ms();
    for (int i = 0; i < 5; i++)
        free(th_submit(&srv, "upload", NULL));
    /* One sender used to wait out the timeout per black-hole delivery
     * first. All five come while the black hole's first attempt is still
     * in flight: no attempt has failed yet (its timeout is 10 s). That
     * order, not a time (1.5 s once, which a loaded machine missed), says
     * the healthy receiver was not held up. */
    bool all = wait_seen(&rv, 5, 30000);
    long long retried = th_metric(&srv, "taskmill_webhook_retries_total");
    printf("    the healthy receiver had all 5 after %lld ms\n", (long long)(mono_ms() - t0));
    CHECK(all);
    CHECK_INT(retried, 0);
    /* At most one delivery in flight per webhook: one connection so far. */
    CHECK_INT(atomic_load(&bh.accepted), 1);
    /* After the timeout the black hole's deliveries are tried again. */
    WAIT_UNTIL(atomic_load(&bh.accepted) >= 2, 30000, "a second attempt at the black hole");
    CHECK(th_metric(&srv, "taskmill_webhook_retries_total") >= 1);
    char path[160];
    snprintf(path, sizeof path, "/v1/webhooks/%s/deliveries", dark);
    struct th_resp *r = th_http(&srv, "GET", path, NULL);
    CHECK_INT(r->status, 200);
    json_t *d = th_get(r->json, "deliveries");
    int tried = 0, pending = 0;
    for (size_t i = 0; i < json_array_size(d); i++) {
        json_t *one = json_array_get(d, i);
        pending += strcmp(th_str(one, "status"), "pending") == 0;
        tried += th_int(one, "attempts") >= 1 && th_str(one, "last_error") != NULL;
    }
    CHECK_INT((int)json_array_size(d), 5);
    CHECK_INT(pending, 5); /* none given up, none lost */
    CHECK(tried >= 1);
    CHECK_INT(receiver_seen(&rv), 5); /* each once */
    CHECK_INT(rv.bad_signatures, 0);
    free(dark);
    free(good);
    th_server_free(&srv);
    receiver_stop(&rv);
    black_hole_stop(&bh);
}

/* A scripted receiver: reads each request whole, writes `reply`, then
 * closes the connection or, when `hold`, keeps it open until stopped. */
struct scripted {
    int fd, port;
    pthread_t thread;
    _Atomic(const char *) reply; /* may change while it runs */
    _Atomic bool hold;
    _Atomic bool stop;
    _Atomic int requests;
    int held[64];
    int nheld;
    /* The first request as received, readable once requests >= 1. */
    char first[1 << 16];
    size_t first_body_at, first_body_len;
};

static void *scripted_main(void *arg) {
    struct scripted *sc = arg;
    char *buf = malloc(1 << 16);
    while (!atomic_load(&sc->stop)) {
        int c = accept(sc->fd, NULL, NULL);
        if (c < 0) continue;
        size_t at, len;
        if (atomic_load(&sc->stop) || !read_request(c, buf, 1 << 16, &at, &len)) {
            close(c);
            continue;
        }
        if (atomic_load(&sc->requests) == 0) {
            memcpy(sc->first, buf, sizeof sc->first);
            sc->first_body_at = at;
            sc->first_body_len = len;
        }
        atomic_fetch_add(&sc->requests, 1);
        const char *reply = atomic_load(&sc->reply);
        if (*reply && write(c, reply, strlen(reply)) < 0) {
        }
        if (atomic_load(&sc->hold) && sc->nheld < 64)
            sc->held[sc->nheld++] = c;
        else
            close(c);
    }
    free(buf);
    return NULL;
}

static int scripted_start(struct scripted *sc, const char *reply, bool hold) {
    memset(sc, 0, sizeof *sc);
    atomic_store(&sc->reply, reply);
    atomic_store(&sc->hold, hold);
    if ((sc->fd = listen_loopback(&sc->port)) < 0) return -1;
    return pthread_create(&sc->thread, NULL, scripted_main, sc);
}

static void scripted_stop(struct scripted *sc) {
    atomic_store(&sc->stop, true);
    wake_accept(sc->port);
    pthread_join(sc->thread, NULL);
    close(sc->fd);
    for (int i = 0; i < sc->nheld; i++)
        close(sc->held[i]);
}

/* The only delivery of webhook `hook` once it has been tried (tried) or is
 * no longer pending, or after timeout_ms; the response is the harness's. */
static json_t *delivery_when(struct th_server *srv, const char *hook, int timeout_ms, bool tried) {
    char path[160];
    snprintf(path, sizeof path, "/v1/webhooks/%s/deliveries", hook);
    json_t *d = NULL;
    for (int waited = 0; waited <= timeout_ms; waited += 50) {
        d = th_get(th_http(srv, "GET", path, NULL)->json, "deliveries.0");
        if (d && (tried ? th_int(d, "attempts") >= 1 : strcmp(th_str(d, "status"), "pending") != 0))
            break;
        th_sleep_ms(50);
    }
    return d;
}

/* The only delivery of webhook `hook` once it is no longer pending (or after timeout_ms). */
static json_t *settled_delivery(struct th_server *srv, const char *hook, int timeout_ms) {
    return delivery_when(srv, hook, timeout_ms, false);
}

/* The only delivery of webhook `hook` once it has been tried (or after timeout_ms). */
static json_t *tried_delivery(struct th_server *srv, const char *hook, int timeout_ms) {
    return delivery_when(srv, hook, timeout_ms, true);
}

/* The answer's status decides as soon as its headers are in: a 2xx whose
 * body never ends, or is cut short, is delivered at the first attempt
 * (both used to wait for the body: the endless one held a sender until the
 * timeout, and each was retried as a network error with last_status 0).
 * The timeout is 10 s, not 2 s: a receiver held up 2 s before its answer
 * saw the attempt time out, to be retried a minute later. */
static void test_answer_body_is_not_read(void) {
    struct scripted endless, cut;
    CHECK(scripted_start(&endless,
                         "HTTP/1.1 200 OK\r\nContent-Length: 100000000000\r\n\r\nstill coming",
                         true) == 0);
    CHECK(scripted_start(&cut, "HTTP/1.1 202 Accepted\r\nContent-Length: 100\r\n\r\nabc", false) ==
          0);
    struct th_server srv;
    CHECK(th_server_start(&srv, "--webhook-allow-private", "--webhook-timeout-ms", "10000",
                          "--webhook-backoff-ms", "60000", NULL) == 0);
    char *a = create_webhook(&srv, endless.port, "[\"task.spawned\"]");
    char *b = create_webhook(&srv, cut.port, "[\"task.spawned\"]");
    CHECK(a && b);
    free(th_submit(&srv, "upload", NULL));
    const char *hooks[2] = {a, b};
    const long want[2] = {200, 202};
    for (int i = 0; i < 2; i++) {
        json_t *d = settled_delivery(&srv, hooks[i], 20000);
        CHECK(d != NULL);
        if (!d) continue;
        CHECK_STR(th_str(d, "status"), "delivered");
        CHECK_INT(th_int(d, "attempts"), 1);
        CHECK_INT(th_int(d, "last_status"), want[i]);
        CHECK(th_str(d, "last_error") == NULL);
    }
    CHECK_INT(atomic_load(&endless.requests), 1);
    CHECK_INT(atomic_load(&cut.requests), 1);
    free(a);
    free(b);
    th_server_free(&srv);
    scripted_stop(&endless);
    scripted_stop(&cut);
}

/* The value of header `name` in the request head `req` (up to the blank
 * line), copied into out; NULL when absent. Names match case-insensitively. */
static const char *header_of(const char *req, const char *name, char *out, size_t cap) {
    const char *end = strstr(req, "\r\n\r\n");
    size_t n = strlen(name);
    for (const char *p = strstr(req, "\r\n"); p && p < end; p = strstr(p + 2, "\r\n")) {
        if (strncasecmp(p + 2, name, n) != 0 || p[2 + n] != ':') continue;
        const char *v = p + 3 + n;
        while (*v == ' ')
            v++;
        size_t len = strcspn(v, "\r");
        if (len >= cap) len = cap - 1;
        memcpy(out, v, len);
        out[len] = '\0';
        return out;
    }
    return NULL;
}

/* A receiver that follows docs/events.md ("A delivery") and nothing else:
 * the secret as the POST showed it (generated here), the
 * Livepeer-Signature header's t= and v1=, HMAC-SHA256 keyed with the
 * secret's bytes over the raw body, t equal to the body's timestamp and
 * recent, and the documented headers and envelope. */
static void test_receiver_verifies_as_documented(void) {
    struct scripted sc;
    CHECK(scripted_start(&sc, "HTTP/1.1 204 No Content\r\n\r\n", false) == 0);
    struct th_server srv;
    CHECK(th_server_start(&srv, "--webhook-allow-private", NULL) == 0);
    struct th_resp *r =
        th_http(&srv, "POST", "/v1/webhooks",
                "{\"url\":\"http://127.0.0.1:%d/in\",\"events\":[\"task.spawned\"]}", sc.port);
    CHECK_INT(r->status, 201);
    char *hook = strdup(th_str(r->json, "id"));
    char *secret = strdup(th_str(r->json, "secret"));
    char *task = th_submit(&srv, "upload", NULL);
    WAIT_UNTIL(atomic_load(&sc.requests) >= 1, 10000, "the delivery reached the receiver");
    const char *req = sc.first, *body = sc.first + sc.first_body_at;
    size_t body_len = sc.first_body_len;
    CHECK(strncmp(req, "POST /in HTTP/1.1\r\n", 19) == 0);
    char v[256];
    CHECK_STR(header_of(req, "Content-Type", v, sizeof v), "application/json");
    CHECK_STR(header_of(req, "User-Agent", v, sizeof v), "taskmill");
    CHECK(header_of(req, "Livepeer-Signature", v, sizeof v) != NULL);
    /* t=<ms>,v1=<64 lowercase hex> */
    char *comma = strchr(v, ',');
    CHECK(strncmp(v, "t=", 2) == 0 && comma && strncmp(comma, ",v1=", 4) == 0);
    *comma = '\0';
    long long t = strtoll(v + 2, NULL, 10);
    const char *hex = comma + 4;
    CHECK_INT((long long)strlen(hex), 64);
    CHECK_INT((long long)strspn(hex, "0123456789abcdef"), 64);
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    HMAC(EVP_sha256(), secret, (int)strlen(secret), (const unsigned char *)body, body_len, mac, &n);
    char want[65];
    for (unsigned i = 0; i < n; i++)
        snprintf(want + 2 * i, 3, "%02x", mac[i]);
    CHECK(n == 32 && CRYPTO_memcmp(want, hex, 64) == 0);
    json_t *j = json_loadb(body, body_len, 0, NULL);
    CHECK(j != NULL);
    CHECK_INT(th_int(j, "timestamp"), t);
    long long now = (long long)time(NULL) * 1000;
    CHECK(t > now - 5 * 60 * 1000 && t < now + 5 * 60 * 1000); /* ms since the epoch */
    CHECK(th_str(j, "id") && strlen(th_str(j, "id")) == 32);
    CHECK_STR(th_str(j, "webhookId"), hook);
    CHECK_STR(th_str(j, "event"), "task.spawned");
    CHECK(th_int(j, "createdAt") > 0 && th_int(j, "createdAt") <= t);
    CHECK_STR(th_str(j, "payload.task.id"), task);
    CHECK_STR(th_str(j, "payload.task.type"), "upload");
    CHECK(th_get(j, "payload.task.snapshot") != NULL);
    json_decref(j);
    free(task);
    free(secret);
    free(hook);
    th_server_free(&srv);
    scripted_stop(&sc);
}

/* A redirect is not followed (it could lead anywhere, a private address
 * among them): the delivery fails at once and says why. */
static void test_redirect_not_followed(void) {
    struct scripted target, redirect;
    CHECK(scripted_start(&target, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", false) == 0);
    char reply[200];
    snprintf(reply, sizeof reply,
             "HTTP/1.1 307 Temporary Redirect\r\nLocation: http://127.0.0.1:%d/moved\r\n"
             "Content-Length: 0\r\n\r\n",
             target.port);
    CHECK(scripted_start(&redirect, reply, false) == 0);
    struct th_server srv;
    CHECK(th_server_start(&srv, "--webhook-allow-private", NULL) == 0);
    char *hook = create_webhook(&srv, redirect.port, "[\"task.spawned\"]");
    CHECK(hook);
    free(th_submit(&srv, "upload", NULL));
    json_t *d = settled_delivery(&srv, hook, 10000);
    CHECK(d != NULL);
    CHECK_STR(th_str(d, "status"), "failed");
    CHECK_INT(th_int(d, "attempts"), 1);
    CHECK_INT(th_int(d, "last_status"), 307);
    CHECK_STR(th_str(d, "last_error"), "the receiver answered 307 (redirects are not followed)");
    CHECK_INT(atomic_load(&target.requests), 0);
    free(hook);
    th_server_free(&srv);
    scripted_stop(&redirect);
    scripted_stop(&target);
}

/* A receiver whose certificate does not verify (self-signed): each attempt
 * fails with libcurl's reason, and the delivery stays pending for retries
 * (a certificate can be fixed). The receiver is a taskmill server on TLS. */
static void test_bad_certificate_is_named_and_retried(void) {
    char dir[256], cmd[1024];
    snprintf(dir, sizeof dir, "%s/taskmill-hook-tls-XXXXXX",
             getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    CHECK(mkdtemp(dir) != NULL);
    char cert[300], key[300];
    snprintf(cert, sizeof cert, "%s/cert.pem", dir);
    snprintf(key, sizeof key, "%s/key.pem", dir);
    snprintf(cmd, sizeof cmd,
             "openssl req -x509 -newkey rsa:2048 -nodes -keyout %s -out %s -days 1 "
             "-subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 >/dev/null 2>&1",
             key, cert);
    CHECK(system(cmd) == 0);
    struct th_server tls, srv;
    CHECK(th_server_start(&tls, "--tls-cert", cert, "--tls-key", key, NULL) == 0);
    CHECK(strncmp(tls.url, "https://", 8) == 0);
    CHECK(th_server_start(&srv, "--webhook-allow-private", "--webhook-backoff-ms", "60000", NULL) ==
          0);
    struct th_resp *r = th_http(&srv, "POST", "/v1/webhooks",
                                "{\"url\":\"%s/v1/tasks\",\"events\":[\"task.spawned\"]}", tls.url);
    CHECK_INT(r->status, 201);
    char *hook = strdup(th_str(r->json, "id"));
    free(th_submit(&srv, "upload", NULL));
    json_t *d = tried_delivery(&srv, hook, 10000);
    CHECK(d != NULL);
    CHECK_STR(th_str(d, "status"), "pending");
    CHECK_INT(th_int(d, "attempts"), 1);
    CHECK_INT(th_int(d, "last_status"), 0);
    const char *why = th_str(d, "last_error");
    CHECK(why && strstr(why, "certificate"));
    CHECK(th_str(d, "next_attempt_at") != NULL);
    free(hook);
    th_server_free(&srv);
    th_server_free(&tls);
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    CHECK(system(cmd) == 0);
}

/* A webhook deleted while one of its deliveries is in flight: that attempt
 * ends as it would (here when the receiver hangs up), records nothing, and
 * nothing more is sent; the list answers 404. The attempt ends when the
 * test says, not at a 1 s timeout: a test held up that long before its
 * DELETE saw the attempt time out and a retry sent first. */
static void test_delete_during_attempt(void) {
    struct black_hole bh;
    CHECK(black_hole_start(&bh) == 0);
    struct th_server srv;
    CHECK(th_server_start(&srv, "--webhook-allow-private", "--webhook-timeout-ms", "600000",
                          "--webhook-backoff-ms", "100", NULL) == 0);
    char *hook = create_webhook(&srv, bh.port, "[\"task.spawned\"]");
    CHECK(hook);
    for (int i = 0; i < 3; i++)
        free(th_submit(&srv, "upload", NULL));
    WAIT_UNTIL(atomic_load(&bh.accepted) >= 1, 10000, "an attempt in flight");
    char path[160];
    snprintf(path, sizeof path, "/v1/webhooks/%s", hook);
    CHECK_INT(th_http(&srv, "DELETE", path, NULL)->status, 204);
    snprintf(path, sizeof path, "/v1/webhooks/%s/deliveries", hook);
    CHECK_INT(th_http(&srv, "GET", path, NULL)->status, 404);
    CHECK_INT(th_metric(&srv, "taskmill_webhook_attempts_total"), 0); /* still in flight */
    CHECK_INT(atomic_load(&bh.accepted), 1);
    /* The receiver hangs up; a retry would come 100 ms later. */
    black_hole_hang_up(&bh);
    WAIT_UNTIL(th_metric(&srv, "taskmill_webhook_attempts_total") >= 1, 20000,
               "the attempt in flight ended");
    th_sleep_ms(1000); /* by design: the window in which a retry would come */
    CHECK_INT(atomic_load(&bh.accepted), 1);
    CHECK_INT(th_http(&srv, "GET", path, NULL)->status, 404);
    free(hook);
    th_server_free(&srv);
    black_hole_stop(&bh);
}

/* A clean stop during an attempt frees the webhook in the store: after the
 * restart its delivery is sent at once, not when the claim's hold (the
 * attempt's timeout plus 5 s, here over ten minutes) runs out. */
static void test_stop_during_attempt_frees_the_webhook(void) {
    struct scripted sc;
    CHECK(scripted_start(&sc, "", true) == 0); /* answers nothing, holds on */
    struct th_server srv;
    CHECK(th_server_start(&srv, "--webhook-allow-private", "--webhook-timeout-ms", "600000",
                          NULL) == 0);
    char *hook = create_webhook(&srv, sc.port, "[\"task.spawned\"]");
    CHECK(hook);
    free(th_submit(&srv, "upload", NULL));
    WAIT_UNTIL(atomic_load(&sc.requests) >= 1, 10000, "an attempt in flight");
    th_server_stop(&srv, false); /* a clean stop */
    atomic_store(&sc.hold, false);
    atomic_store(&sc.reply, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
    CHECK(th_server_restart(&srv) == 0);
    json_t *d = settled_delivery(&srv, hook, 30000);
    CHECK(d != NULL);
    CHECK_STR(th_str(d, "status"), "delivered");
    CHECK_INT(th_int(d, "attempts"), 1); /* the stopped one was not counted */
    CHECK_INT(atomic_load(&sc.requests), 2);
    free(hook);
    th_server_free(&srv);
    scripted_stop(&sc);
}

/* This machine's host name, when it resolves to a loopback or private IPv4
 * address without being `localhost` (refused at creation), and that
 * address in addr; else NULL. */
static const char *private_host_name(char *name, size_t cap, char addr[INET_ADDRSTRLEN]) {
    if (gethostname(name, cap) || !*name || strcasecmp(name, "localhost") == 0) return NULL;
    struct addrinfo hints = {.ai_family = AF_INET, .ai_socktype = SOCK_STREAM}, *ai = NULL;
    if (getaddrinfo(name, NULL, &hints, &ai) || !ai) return NULL;
    struct in_addr in = ((struct sockaddr_in *)ai->ai_addr)->sin_addr;
    freeaddrinfo(ai);
    uint32_t a = ntohl(in.s_addr);
    bool private = (a >> 24) == 127 || (a >> 24) == 10 || (a >> 20) == 0xac1 || (a >> 16) == 0xc0a8;
    if (!private || !inet_ntop(AF_INET, &in, addr, INET_ADDRSTRLEN)) return NULL;
    return name;
}

/* A name is accepted when created (it is not resolved then); the address it
 * resolves to is refused when the connection is opened, and the attempt's
 * error says so (it used to read "Couldn't connect to server", as if the
 * receiver were down). The address itself is in the server's log only: to
 * the webhook's owner it would tell what a name resolves to inside the
 * server's network. */
static void test_private_address_of_a_name_is_named(void) {
    char name[256], addr[INET_ADDRSTRLEN];
    if (!private_host_name(name, sizeof name, addr)) {
        th_skip("this machine's host name does not resolve to a private IPv4 address");
        return;
    }
    struct receiver rv;
    CHECK(receiver_start(&rv) == 0);
    struct th_server srv;
    CHECK(th_server_start(&srv, "--webhook-backoff-ms", "60000", NULL) == 0);
    struct th_resp *r =
        th_http(&srv, "POST", "/v1/webhooks",
                "{\"url\":\"http://%s:%d/hook\",\"events\":[\"task.spawned\"]}", name, rv.port);
    CHECK_INT(r->status, 201);
    char *hook = strdup(th_str(r->json, "id"));
    free(th_submit(&srv, "upload", NULL));
    json_t *d = tried_delivery(&srv, hook, 10000);
    CHECK(d != NULL);
    CHECK_STR(th_str(d, "status"), "pending"); /* retried: DNS may change */
    const char *why = th_str(d, "last_error");
    CHECK(why && strstr(why, "private or loopback address") &&
          strstr(why, "--webhook-allow-private"));
    CHECK(why && !strstr(why, addr));
    char logged[400];
    snprintf(logged, sizeof logged,
             "webhook %s: its url's host resolved to the private or loopback address %s;", hook,
             addr);
    CHECK(sec_log_has(&srv, logged));
    CHECK_INT(receiver_requests(&rv), 0);
    free(hook);
    th_server_free(&srv);
    receiver_stop(&rv);
}

static const struct th_test tests[] = {
    {"create, list, delete; private destinations refused", test_crud_and_private_refused},
    {"bad create bodies are 400 naming the field; nothing stored",
     test_bad_bodies_named_nothing_stored},
    {"the reads refuse what their query does not take", test_read_queries_checked},
    {"a failing receiver gets every event, signed", test_failing_receiver_gets_every_event_signed},
    {"senders are woken only by commits that queued deliveries",
     test_senders_wake_for_deliveries_only},
    {"a restart during delivery loses nothing", test_restart_during_delivery_loses_nothing},
    {"a black-hole receiver holds up no other webhook", test_black_hole_holds_up_no_other_webhook},
    {"an answer's status decides; its body is not read", test_answer_body_is_not_read},
    {"a name's private address is refused, and the attempt says why",
     test_private_address_of_a_name_is_named},
    {"a receiver verifies a delivery following only the docs",
     test_receiver_verifies_as_documented},
    {"a held webhook's deliveries show when they will be tried", test_held_webhook_list_shows_when},
    {"a redirect is not followed, and the delivery says so", test_redirect_not_followed},
    {"a bad certificate is named and retried", test_bad_certificate_is_named_and_retried},
    {"a webhook deleted during an attempt gets nothing more", test_delete_during_attempt},
    {"a clean stop during an attempt frees the webhook",
     test_stop_during_attempt_frees_the_webhook},
    {NULL, NULL},
};

int main(int argc, char **argv) {
    return th_main(tests, argc, argv);
}
