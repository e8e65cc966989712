/*
 * PATCH /v1/webhooks/{id} and the paging of a webhook's deliveries,
 * against the real server and a receiver thread in the test: each field
 * set alone, the secret never echoed; every bad body 400 naming its field
 * with nothing stored; another namespace's webhook 404; a delivery
 * pending across a PATCH sent to the new URL signed with the new secret;
 * the pending deliveries of an event the webhook no longer asks for
 * failed, not sent; the delivery list paged by cursor with none repeated
 * and none missed, filtered by status, and its bad queries 400 naming the
 * parameter.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "harness.h"
#include "hook_receiver.h"
#include "sec_util.h"

#define SECRET_OLD "old-secret-1234"
#define SECRET_NEW "new-secret-5678"
#define MAX_SEEN   512

/* One request the receiver answered. */
struct seen {
    char path[16];  /* "/a" or "/b" */
    char id[40];    /* the delivery's */
    char event[24]; /* its Livepeer name */
    int signed_by;  /* 1: SECRET_OLD, 2: SECRET_NEW, 0: neither or unsigned */
    int status;     /* what the receiver answered */
};

/* Answers /a with 503 while a_down, every other request with 200, except
 * an event's status in code[] when set (by its WEBHOOK_* index). */
struct receiver {
    int fd, port;
    pthread_t thread;
    _Atomic bool a_down, stop;
    _Atomic bool a_hold; /* /a: read the request, then wait for this to clear */
    _Atomic int a_held;  /* requests to /a that waited */
    _Atomic int code[4]; /* spawned, updated, completed, failed; 0: 200 */
    pthread_mutex_t lock;
    struct seen seen[MAX_SEEN];
    int nseen;
};

static int event_index(const char *ev) {
    static const char *const names[4] = {"task.spawned", "task.updated", "task.completed",
                                         "task.failed"};
    for (int i = 0; i < 4; i++)
        if (strcmp(ev, names[i]) == 0) return i;
    return -1;
}

static void receiver_handle(struct receiver *rv, int c) {
    char buf[1 << 16];
    size_t at, clen;
    if (!read_request(c, buf, sizeof buf, &at, &clen)) return;
    const char *body = buf + at;
    struct seen s = {0};
    sscanf(buf, "POST %15s", s.path);
    char sig[200] = "";
    char *h = strcasestr(buf, "\r\nLivepeer-Signature: ");
    if (h) sscanf(h + 22, "%199[^\r]", sig);
    s.signed_by = !sig[0]                                           ? 0
                  : signature_ok(SECRET_OLD, sig, body, clen, NULL) ? 1
                  : signature_ok(SECRET_NEW, sig, body, clen, NULL) ? 2
                                                                    : 0;
    json_t *j = json_loadb(body, clen, 0, NULL);
    snprintf(s.id, sizeof s.id, "%s", th_str(j, "id") ? th_str(j, "id") : "");
    snprintf(s.event, sizeof s.event, "%s", th_str(j, "event") ? th_str(j, "event") : "");
    json_decref(j);
    if (strcmp(s.path, "/a") == 0 && atomic_load(&rv->a_hold)) {
        atomic_fetch_add(&rv->a_held, 1);
        while (atomic_load(&rv->a_hold) && !atomic_load(&rv->stop))
            th_sleep_ms(5);
    }
    int k = event_index(s.event);
    s.status = strcmp(s.path, "/a") == 0 && atomic_load(&rv->a_down) ? 503
               : k >= 0 && atomic_load(&rv->code[k])                 ? atomic_load(&rv->code[k])
                                                                     : 200;
    pthread_mutex_lock(&rv->lock);
    if (rv->nseen < MAX_SEEN) rv->seen[rv->nseen++] = s;
    pthread_mutex_unlock(&rv->lock);
    char reply[128];
    int n = snprintf(reply, sizeof reply,
                     "HTTP/1.1 %d X\r\nContent-Length: 0\r\nConnection: close\r\n\r\n", s.status);
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
    pthread_mutex_destroy(&rv->lock);
}

/* How many requests to `path` the receiver has seen (answered anything). */
static int receiver_count(struct receiver *rv, const char *path) {
    pthread_mutex_lock(&rv->lock);
    int n = 0;
    for (int i = 0; i < rv->nseen; i++)
        n += strcmp(rv->seen[i].path, path) == 0;
    pthread_mutex_unlock(&rv->lock);
    return n;
}

/* The first request to `path` of delivery `id` answered 200, copied into *out. */
static bool receiver_got(struct receiver *rv, const char *path, const char *id, struct seen *out) {
    bool found = false;
    pthread_mutex_lock(&rv->lock);
    for (int i = 0; i < rv->nseen && !found; i++) {
        struct seen *s = &rv->seen[i];
        if (strcmp(s->path, path) == 0 && strcmp(s->id, id) == 0 && s->status == 200) {
            *out = *s;
            found = true;
        }
    }
    pthread_mutex_unlock(&rv->lock);
    return found;
}

/* The body of GET /v1/webhooks/{id}, or NULL when it is not 200 (malloc'd). */
static char *webhook_read(struct th_server *srv, const char *id) {
    char path[128];
    snprintf(path, sizeof path, "/v1/webhooks/%s", id);
    struct th_resp *r = th_http(srv, "GET", path, NULL);
    return r->status == 200 ? strdup(r->body) : NULL;
}

/* Each field alone; the reply is GET's shape and never shows the secret. */
static void test_patch_sets_each_field(void) {
    struct th_server srv;
    CHECK(th_server_start(&srv, NULL) == 0);
    struct th_resp *r = th_http(&srv, "POST", "/v1/webhooks",
                                "{\"url\":\"https://hooks.example.com/a\",\"name\":\"one\","
                                "\"secret\":\"" SECRET_OLD "\"}");
    CHECK_INT(r->status, 201);
    char *id = strdup(th_str(r->json, "id"));
    char *created_at = strdup(th_str(r->json, "created_at"));
    char path[128];
    snprintf(path, sizeof path, "/v1/webhooks/%s", id);

    r = th_http(&srv, "PATCH", path, "{\"name\":\"two\"}");
    CHECK_INT(r->status, 200);
    CHECK_STR(th_str(r->json, "id"), id);
    CHECK_STR(th_str(r->json, "name"), "two");
    CHECK_STR(th_str(r->json, "url"), "https://hooks.example.com/a");
    CHECK_INT((long long)json_array_size(th_get(r->json, "events")), 4);
    CHECK(json_is_true(th_get(r->json, "has_secret")));
    CHECK(th_get(r->json, "secret") == NULL);
    CHECK_STR(th_str(r->json, "created_at"), created_at);
    char *after = webhook_read(&srv, id);
    CHECK(after);
    r = th_http(&srv, "PATCH", path, "{\"name\":\"two\"}"); /* the same again: same answer */
    CHECK_INT(r->status, 200);
    CHECK_STR(r->body, after);
    free(after);

    r = th_http(&srv, "PATCH", path,
                "{\"url\":\"https://hooks.example.com/b\",\"events\":[\"task.completed\","
                "\"task.failed\"]}");
    CHECK_INT(r->status, 200);
    CHECK_STR(th_str(r->json, "url"), "https://hooks.example.com/b");
    CHECK_INT((long long)json_array_size(th_get(r->json, "events")), 2);
    CHECK_STR(th_str(r->json, "events.0"), "task.completed");
    CHECK_STR(th_str(r->json, "events.1"), "task.failed");
    CHECK_STR(th_str(r->json, "name"), "two");

    r = th_http(&srv, "PATCH", path, "{\"secret\":null}");
    CHECK_INT(r->status, 200);
    CHECK(json_is_false(th_get(r->json, "has_secret")));
    r = th_http(&srv, "PATCH", path, "{\"secret\":\"" SECRET_NEW "\"}");
    CHECK_INT(r->status, 200);
    CHECK(json_is_true(th_get(r->json, "has_secret")));
    CHECK(th_get(r->json, "secret") == NULL);
    CHECK(strstr(r->body, SECRET_NEW) == NULL);

    /* GET shows what the last PATCH answered. */
    char *reply = strdup(r->body);
    char *got = webhook_read(&srv, id);
    CHECK(got);
    CHECK_STR(got, reply);
    free(got);
    free(reply);

    /* Not there: 404, as GET. */
    CHECK_INT(
        th_http(&srv, "PATCH", "/v1/webhooks/0123456789abcdef0123456789abcdef", "{\"name\":\"x\"}")
            ->status,
        404);
    CHECK_INT(th_http(&srv, "PATCH", "/v1/webhooks/nope", "{\"name\":\"x\"}")->status, 404);
    CHECK_INT(th_http(&srv, "PATCH", "/v1/webhooks/a%FFb", "{\"name\":\"x\"}")->status, 404);
    free(id);
    free(created_at);
    th_server_free(&srv);
}

/* Each bad body is 400 naming its field, in POST's words, and the webhook
 * reads back byte for byte as before. */
static void test_patch_bad_bodies_change_nothing(void) {
    static const struct {
        const char *body, *field, *message; /* message: a part of it, or NULL */
    } bad[] = {
        {"{}", "", "nothing to change"},
        {"{\"url\":\"\"}", "url", "'url' must be a string of 1-2048 bytes"},
        {"{\"url\":null}", "url", NULL},
        {"{\"url\":\"ftp://example.com/\"}", "url", "'url' must start with"},
        {"{\"url\":\"http://127.0.0.1/hook\"}", "url", NULL}, /* private, not allowed */
        {"{\"url\":\"http:///hook\"}", "url", NULL},
        {"{\"events\":[]}", "events", "'events' must be a non-empty array"},
        {"{\"events\":[\"task.created\"]}", "events[0]", NULL},
        {"{\"events\":null}", "events", NULL},
        {"{\"secret\":\"short\"}", "secret", "'secret' must be a string of 8-256 bytes"},
        {"{\"secret\":7}", "secret", NULL},
        {"{\"name\":\"\"}", "name", "'name' must be a string of 1-256 bytes"},
        {"{\"name\":null}", "name", NULL},
        {"{\"namespace\":\"other\"}", "namespace", "'namespace' cannot be changed"},
        {"{\"namespace\":\"bad ns\"}", "namespace", "'namespace' cannot be changed"},
        {"{\"name\":\"ok\",\"colour\":\"red\"}", "colour", "unknown field 'colour'"},
        /* A good field beside a bad one: neither is stored. */
        {"{\"name\":\"changed\",\"secret\":\"short\"}", "secret", NULL},
        {"{\"url\":\"https://hooks.example.com/new\",\"events\":[\"x\"]}", "events[0]", NULL},
    };
    struct th_server srv;
    CHECK(th_server_start(&srv, NULL) == 0);
    struct th_resp *r = th_http(&srv, "POST", "/v1/webhooks",
                                "{\"url\":\"https://hooks.example.com/a\",\"name\":\"one\","
                                "\"events\":[\"task.spawned\"],\"secret\":\"" SECRET_OLD "\"}");
    CHECK_INT(r->status, 201);
    char *id = strdup(th_str(r->json, "id"));
    char *before = webhook_read(&srv, id);
    CHECK(before);
    char path[128];
    snprintf(path, sizeof path, "/v1/webhooks/%s", id);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        r = th_http(&srv, "PATCH", path, "%s", bad[i].body);
        const char *field = th_str(r->json, "error.field");
        const char *msg = th_str(r->json, "error.message");
        if (r->status != 400 || strcmp(field ? field : "", bad[i].field) != 0 ||
            (bad[i].message && (!msg || !strstr(msg, bad[i].message))))
            th_fail(__FILE__, __LINE__, "%s: %ld %s", bad[i].body, r->status, r->body);
    }
    /* Not JSON, not an object, no body. */
    CHECK_INT(th_http(&srv, "PATCH", path, "{\"name\":")->status, 400);
    CHECK_INT(th_http(&srv, "PATCH", path, "[]")->status, 400);
    CHECK_INT(th_http(&srv, "PATCH", path, NULL)->status, 400);
    /* A query parameter, as the reads refuse one. */
    char qpath[160];
    snprintf(qpath, sizeof qpath, "%s?name=x", path);
    r = th_http(&srv, "PATCH", qpath, "{\"name\":\"x\"}");
    CHECK_INT(r->status, 400);
    CHECK_STR(th_str(r->json, "error.field"), "name");
    char *after = webhook_read(&srv, id);
    CHECK(after);
    CHECK_STR(after, before);
    /* The secret is unchanged too: nothing says so but a signature, which
     * test_pending_delivery_follows_the_patch checks; here the flag. */
    free(before);
    free(after);
    free(id);
    th_server_free(&srv);
}

/* Another namespace's webhook is 404 to PATCH, as to GET, and unchanged;
 * a worker or a reader may not PATCH (403). */
static void test_patch_other_namespace_is_404(void) {
    struct th_server srv;
    CHECK(th_server_start(&srv, NULL) == 0);
    char admin[128], admin_id[32], acme[128], acme_id[32], beta[128], beta_id[32];
    char worker[128], worker_id[32];
    CHECK(sec_token(&srv, "admin", "default", "", admin, admin_id) == 0);
    CHECK(sec_token(&srv, "client", "acme", "", acme, acme_id) == 0);
    CHECK(sec_token(&srv, "client", "beta", "", beta, beta_id) == 0);
    CHECK(sec_token(&srv, "worker", "acme", "", worker, worker_id) == 0);
    struct th_resp *r = sec_http(&srv, acme, "POST", "/v1/webhooks",
                                 "{\"url\":\"https://hooks.example.com/acme\",\"name\":\"a\"}");
    CHECK_INT(r->status, 201);
    char path[128];
    snprintf(path, sizeof path, "/v1/webhooks/%s", th_str(r->json, "id"));
    r = sec_http(&srv, admin, "GET", path, NULL);
    CHECK_INT(r->status, 200);
    char *before = strdup(r->body);
    CHECK_INT(sec_http(&srv, beta, "GET", path, NULL)->status, 404);
    r = sec_http(&srv, beta, "PATCH", path, "{\"name\":\"taken\"}");
    CHECK_INT(r->status, 404);
    CHECK_STR(th_str(r->json, "error.code"), "not_found");
    CHECK_INT(sec_http(&srv, worker, "PATCH", path, "{\"name\":\"taken\"}")->status, 403);
    r = sec_http(&srv, admin, "GET", path, NULL);
    CHECK_STR(r->body, before);
    /* Its own namespace's client and the admin may. */
    r = sec_http(&srv, acme, "PATCH", path, "{\"name\":\"b\"}");
    CHECK_INT(r->status, 200);
    CHECK_STR(th_str(r->json, "namespace"), "acme");
    r = sec_http(&srv, admin, "PATCH", path, "{\"name\":\"c\"}");
    CHECK_INT(r->status, 200);
    CHECK_STR(th_str(r->json, "name"), "c");
    free(before);
    th_server_free(&srv);
}

/* A delivery's status in the list ("" when it is not there). */
static const char *delivery_status(json_t *list, const char *event, const char **last_error) {
    for (size_t i = 0; i < json_array_size(list); i++) {
        json_t *d = json_array_get(list, i);
        if (strcmp(th_str(d, "event"), event) == 0) {
            if (last_error) *last_error = th_str(d, "last_error");
            return th_str(d, "status");
        }
    }
    return "";
}

/*
 * A delivery pending on a dead URL goes, after a PATCH of url and secret,
 * to the new URL signed with the new secret. The pending delivery of an
 * event the PATCH took out of the webhook's list is failed, not sent.
 */
static void test_pending_delivery_follows_the_patch(void) {
    struct receiver rv;
    CHECK(receiver_start(&rv) == 0);
    atomic_store(&rv.a_down, true);
    struct th_server srv;
    CHECK(th_server_start(&srv, "--webhook-allow-private", "--webhook-backoff-ms", "100", NULL) ==
          0);
    struct th_resp *r = th_http(&srv, "POST", "/v1/webhooks",
                                "{\"url\":\"http://127.0.0.1:%d/a\",\"secret\":\"" SECRET_OLD
                                "\",\"events\":[\"task.spawned\",\"task.updated\"]}",
                                rv.port);
    CHECK_INT(r->status, 201);
    char *hook = strdup(th_str(r->json, "id"));
    char *task = th_submit(&srv, "transcode-file", NULL);
    char cid[33], tok[33];
    CHECK_INT(th_claim(&srv, "default", NULL, cid, tok), 200);
    /* spawned and updated, both refused by /a. */
    WAIT_UNTIL(receiver_count(&rv, "/a") >= 2, 20000, "two attempts at the dead URL");
    char path[160];
    snprintf(path, sizeof path, "/v1/webhooks/%s", hook);
    r = th_http(&srv, "PATCH", path,
                "{\"url\":\"http://127.0.0.1:%d/b\",\"secret\":\"" SECRET_NEW
                "\",\"events\":[\"task.spawned\"]}",
                rv.port);
    CHECK_INT(r->status, 200);
    /* The updated delivery is failed by the PATCH itself, and says why. */
    snprintf(path, sizeof path, "/v1/webhooks/%s/deliveries", hook);
    r = th_http(&srv, "GET", path, NULL);
    CHECK_INT(r->status, 200);
    const char *why = NULL;
    CHECK_STR(delivery_status(th_get(r->json, "deliveries"), "task.updated", &why), "failed");
    CHECK(why && strstr(why, "'task.updated'"));
    /* The spawned one is delivered to /b, signed with the new secret. */
    const char *status = "";
    for (long long end = th_now_ms() + 20000; th_now_ms() < end; th_sleep_ms(TH_WAIT_POLL_MS)) {
        r = th_http(&srv, "GET", path, NULL);
        status = delivery_status(th_get(r->json, "deliveries"), "task.spawned", NULL);
        if (strcmp(status, "delivered") == 0) break;
    }
    CHECK_STR(status, "delivered");
    const char *spawned_id = NULL;
    json_t *list = th_get(r->json, "deliveries");
    for (size_t i = 0; i < json_array_size(list); i++)
        if (strcmp(th_str(json_array_get(list, i), "event"), "task.spawned") == 0)
            spawned_id = th_str(json_array_get(list, i), "id");
    CHECK(spawned_id);
    struct seen s;
    CHECK(receiver_got(&rv, "/b", spawned_id, &s));
    CHECK_INT(s.signed_by, 2);
    /* /b never got the updated delivery (failed before any attempt there);
     * every /a request was signed with the old secret. */
    pthread_mutex_lock(&rv.lock);
    int updated_at_b = 0, a_not_old = 0;
    for (int i = 0; i < rv.nseen; i++) {
        if (strcmp(rv.seen[i].path, "/b") == 0 && strcmp(rv.seen[i].event, "task.updated") == 0)
            updated_at_b++;
        if (strcmp(rv.seen[i].path, "/a") == 0 && rv.seen[i].signed_by != 1) a_not_old++;
    }
    pthread_mutex_unlock(&rv.lock);
    CHECK_INT(updated_at_b, 0);
    CHECK_INT(a_not_old, 0);
    /* An unsigned webhook's next delivery has no signature. */
    snprintf(path, sizeof path, "/v1/webhooks/%s", hook);
    CHECK_INT(th_http(&srv, "PATCH", path, "{\"secret\":null}")->status, 200);
    char *task2 = th_submit(&srv, "transcode-file", NULL);
    WAIT_UNTIL(receiver_count(&rv, "/b") >= 2, 20000, "the second task's spawned delivery");
    pthread_mutex_lock(&rv.lock);
    int last_signed = rv.seen[rv.nseen - 1].signed_by;
    pthread_mutex_unlock(&rv.lock);
    CHECK_INT(last_signed, 0);
    free(task2);
    free(task);
    free(hook);
    th_server_free(&srv);
    receiver_stop(&rv);
}

/* An attempt under way when the PATCH commits finishes with the url and
 * secret it started with, and its outcome is recorded: the delivery is
 * not sent again to the new url. The next delivery goes there. */
static void test_attempt_in_flight_keeps_what_it_had(void) {
    struct receiver rv;
    CHECK(receiver_start(&rv) == 0);
    atomic_store(&rv.a_hold, true);
    struct th_server srv;
    CHECK(th_server_start(&srv, "--webhook-allow-private", NULL) == 0);
    struct th_resp *r = th_http(&srv, "POST", "/v1/webhooks",
                                "{\"url\":\"http://127.0.0.1:%d/a\",\"secret\":\"" SECRET_OLD
                                "\",\"events\":[\"task.spawned\"]}",
                                rv.port);
    CHECK_INT(r->status, 201);
    char *hook = strdup(th_str(r->json, "id"));
    free(th_submit(&srv, "transcode-file", NULL));
    WAIT_UNTIL(atomic_load(&rv.a_held) == 1, 20000, "the attempt held at /a");
    char path[160];
    snprintf(path, sizeof path, "/v1/webhooks/%s", hook);
    r = th_http(&srv, "PATCH", path,
                "{\"url\":\"http://127.0.0.1:%d/b\",\"secret\":\"" SECRET_NEW "\"}", rv.port);
    CHECK_INT(r->status, 200);
    atomic_store(&rv.a_hold, false);
    snprintf(path, sizeof path, "/v1/webhooks/%s/deliveries", hook);
    const char *status = "";
    for (long long end = th_now_ms() + 20000; th_now_ms() < end; th_sleep_ms(TH_WAIT_POLL_MS)) {
        r = th_http(&srv, "GET", path, NULL);
        status = th_str(r->json, "deliveries.0.status");
        if (status && strcmp(status, "delivered") == 0) break;
    }
    CHECK_STR(status, "delivered");
    CHECK_INT(th_int(r->json, "deliveries.0.attempts"), 1);
    char *first = strdup(th_str(r->json, "deliveries.0.id"));
    struct seen s;
    CHECK(receiver_got(&rv, "/a", first, &s));
    CHECK_INT(s.signed_by, 1);
    free(th_submit(&srv, "transcode-file", NULL));
    WAIT_UNTIL(receiver_count(&rv, "/b") >= 1, 20000, "the next delivery at the new url");
    pthread_mutex_lock(&rv.lock);
    int at_b_first = 0, b_signed = -1;
    for (int i = 0; i < rv.nseen; i++) {
        if (strcmp(rv.seen[i].path, "/b") != 0) continue;
        at_b_first += strcmp(rv.seen[i].id, first) == 0;
        b_signed = rv.seen[i].signed_by;
    }
    pthread_mutex_unlock(&rv.lock);
    CHECK_INT(at_b_first, 0);
    CHECK_INT(b_signed, 2);
    free(first);
    free(hook);
    th_server_free(&srv);
    receiver_stop(&rv);
}

/* Two nodes on one PostgreSQL database: a PATCH made on one is what the
 * other's senders use from their next claim on (they cache nothing). */
static void test_patch_on_one_node_reaches_the_other(void) {
    struct receiver rv;
    CHECK(receiver_start(&rv) == 0);
    atomic_store(&rv.a_down, true);
    struct th_server a, b;
    CHECK(th_server_start(&a, "--webhook-allow-private", "--webhook-backoff-ms", "100", NULL) == 0);
    if (th_server_start_peer(&b, &a, "--webhook-allow-private", "--webhook-backoff-ms", "100",
                             NULL)) {
        th_server_free(&a);
        receiver_stop(&rv);
        return;
    }
    struct th_resp *r = th_http(&a, "POST", "/v1/webhooks",
                                "{\"url\":\"http://127.0.0.1:%d/a\",\"secret\":\"" SECRET_OLD
                                "\",\"events\":[\"task.spawned\"]}",
                                rv.port);
    CHECK_INT(r->status, 201);
    char path[160];
    snprintf(path, sizeof path, "/v1/webhooks/%s", th_str(r->json, "id"));
    char *task = th_submit(&a, "transcode-file", NULL);
    WAIT_UNTIL(receiver_count(&rv, "/a") >= 2, 20000, "attempts at the dead URL");
    r = th_http(&b, "PATCH", path,
                "{\"url\":\"http://127.0.0.1:%d/b\",\"secret\":\"" SECRET_NEW "\"}", rv.port);
    CHECK_INT(r->status, 200);
    WAIT_UNTIL(receiver_count(&rv, "/b") >= 1, 20000, "the delivery at the new URL");
    pthread_mutex_lock(&rv.lock);
    int signed_by = -1;
    for (int i = 0; i < rv.nseen; i++)
        if (strcmp(rv.seen[i].path, "/b") == 0) signed_by = rv.seen[i].signed_by;
    pthread_mutex_unlock(&rv.lock);
    CHECK_INT(signed_by, 2);
    free(task);
    th_server_free(&b);
    th_server_free(&a);
    receiver_stop(&rv);
}

/* GET path into a new reference to its "deliveries" and *next (malloc'd, NULL for null). */
static json_t *deliveries_get(struct th_server *srv, const char *path, char **next, long *status) {
    struct th_resp *r = th_http(srv, "GET", path, NULL);
    *status = r->status;
    *next = th_str(r->json, "next_cursor") ? strdup(th_str(r->json, "next_cursor")) : NULL;
    json_t *d = th_get(r->json, "deliveries");
    return d ? json_incref(d) : json_array();
}

/* Walks every page of `query` (limit and status) into one array; fails
 * the test (returns NULL) on a non-200 or more pages than `max_pages`. */
static json_t *deliveries_walk(struct th_server *srv, const char *hook, const char *query,
                               int max_pages) {
    json_t *all = json_array();
    char *cursor = NULL;
    for (int page = 0; page < max_pages; page++) {
        char path[400];
        snprintf(path, sizeof path, "/v1/webhooks/%s/deliveries?%s%s%s", hook, query,
                 cursor ? "&cursor=" : "", cursor ? cursor : "");
        free(cursor);
        long status;
        json_t *d = deliveries_get(srv, path, &cursor, &status);
        if (status != 200) {
            th_fail(__FILE__, __LINE__, "%s: %ld", path, status);
            json_decref(d);
            json_decref(all);
            free(cursor);
            return NULL;
        }
        json_array_extend(all, d);
        json_decref(d);
        if (!cursor) return all;
    }
    th_fail(__FILE__, __LINE__, "%s: more than %d pages", query, max_pages);
    free(cursor);
    json_decref(all);
    return NULL;
}

/* How many of list have this status (NULL: any); -1 when two share an id. */
static int deliveries_count(json_t *list, const char *status) {
    int n = 0;
    for (size_t i = 0; i < json_array_size(list); i++) {
        json_t *d = json_array_get(list, i);
        for (size_t k = 0; k < i; k++)
            if (strcmp(th_str(d, "id"), th_str(json_array_get(list, k), "id")) == 0) return -1;
        if (!status || strcmp(th_str(d, "status"), status) == 0) n++;
    }
    return n;
}

/*
 * 30 tasks: 30 spawned deliveries delivered, 5 updated failed (410), 2
 * completed pending (503, retried an hour later). Every page size walks
 * the same list as one read, in the same order, with none twice; each
 * status filter walks exactly its own.
 */
static void test_deliveries_paged_and_filtered(void) {
    struct receiver rv;
    CHECK(receiver_start(&rv) == 0);
    atomic_store(&rv.code[1], 410);
    atomic_store(&rv.code[2], 503);
    struct th_server srv;
    CHECK(th_server_start(&srv, "--webhook-allow-private", "--webhook-backoff-ms", "3600000",
                          NULL) == 0);
    struct th_resp *r =
        th_http(&srv, "POST", "/v1/webhooks", "{\"url\":\"http://127.0.0.1:%d/b\"}", rv.port);
    CHECK_INT(r->status, 201);
    char *hook = strdup(th_str(r->json, "id"));
    for (int i = 0; i < 30; i++)
        free(th_submit(&srv, "transcode-file", NULL));
    for (int i = 0; i < 3; i++) {
        char cid[33], tok[33], path[160];
        CHECK_INT(th_claim(&srv, "default", NULL, cid, tok), 200);
        if (i == 2) continue;
        snprintf(path, sizeof path, "/v1/tasks/%s/complete", cid);
        CHECK_INT(th_http(&srv, "POST", path, "{\"lease_token\":\"%s\"}", tok)->status, 200);
    }
    /* Settled: 37 requests answered, and their outcomes recorded. */
    WAIT_UNTIL(receiver_count(&rv, "/b") >= 37, 30000, "37 attempts");
    char path[200];
    snprintf(path, sizeof path, "/v1/webhooks/%s/deliveries?limit=1000", hook);
    json_t *whole = NULL;
    for (long long end = th_now_ms() + 20000; th_now_ms() < end; th_sleep_ms(TH_WAIT_POLL_MS)) {
        char *next;
        long status;
        json_decref(whole);
        whole = deliveries_get(&srv, path, &next, &status);
        free(next);
        if (deliveries_count(whole, "delivered") == 30 && deliveries_count(whole, "failed") == 5)
            break;
    }
    CHECK_INT(json_array_size(whole), 37);
    CHECK_INT(deliveries_count(whole, "delivered"), 30);
    CHECK_INT(deliveries_count(whole, "failed"), 5);
    CHECK_INT(deliveries_count(whole, "pending"), 2);
    /* Newest first: seq never rises down the list. */
    for (size_t i = 1; i < json_array_size(whole); i++)
        CHECK(th_int(json_array_get(whole, i), "seq") <=
              th_int(json_array_get(whole, i - 1), "seq"));

    static const int sizes[] = {1, 4, 7, 36, 37, 100};
    for (size_t k = 0; k < sizeof sizes / sizeof *sizes; k++) {
        char query[64];
        snprintf(query, sizeof query, "limit=%d", sizes[k]);
        json_t *walked = deliveries_walk(&srv, hook, query, 40);
        CHECK(walked);
        bool same = json_array_size(walked) == json_array_size(whole);
        for (size_t i = 0; same && i < json_array_size(whole); i++)
            same = strcmp(th_str(json_array_get(walked, i), "id"),
                          th_str(json_array_get(whole, i), "id")) == 0;
        json_decref(walked);
        if (!same) th_fail(__FILE__, __LINE__, "pages of %d differ from the whole list", sizes[k]);
    }
    /* A page exactly as long as the rest ends the walk: next_cursor null. */
    snprintf(path, sizeof path, "/v1/webhooks/%s/deliveries?limit=37", hook);
    r = th_http(&srv, "GET", path, NULL);
    CHECK(json_is_null(th_get(r->json, "next_cursor")));
    snprintf(path, sizeof path, "/v1/webhooks/%s/deliveries?limit=36", hook);
    r = th_http(&srv, "GET", path, NULL);
    CHECK(json_is_string(th_get(r->json, "next_cursor")));

    static const struct {
        const char *status, *event;
        int n;
    } want[] = {{"delivered", "task.spawned", 30},
                {"failed", "task.updated", 5},
                {"pending", "task.completed", 2}};
    for (size_t k = 0; k < sizeof want / sizeof *want; k++) {
        char query[64];
        snprintf(query, sizeof query, "limit=3&status=%s", want[k].status);
        json_t *walked = deliveries_walk(&srv, hook, query, 40);
        CHECK(walked);
        int n = deliveries_count(walked, want[k].status), events = 0;
        for (size_t i = 0; i < json_array_size(walked); i++)
            events += strcmp(th_str(json_array_get(walked, i), "event"), want[k].event) == 0;
        size_t total = json_array_size(walked);
        json_decref(walked);
        CHECK_INT(total, want[k].n);
        CHECK_INT(n, want[k].n);
        CHECK_INT(events, want[k].n);
    }
    json_decref(whole);
    free(hook);
    th_server_free(&srv);
    receiver_stop(&rv);
}

/* Each bad query of the delivery list is 400 naming the parameter. */
static void test_deliveries_bad_queries(void) {
    static const struct {
        const char *query, *field;
    } bad[] = {
        {"status=nope", "status"},
        {"status=", "status"},
        {"status=PENDING", "status"},
        {"status=pending&status=failed", "status"},
        {"cursor=", "cursor"},
        {"cursor=abc", "cursor"},
        {"cursor=12", "cursor"},
        {"cursor=12-", "cursor"},
        {"cursor=12-4", "cursor"},
        {"cursor=12-1x", "cursor"},
        {"cursor=-1-0", "cursor"},
        {"cursor=99999999999999999999-0", "cursor"},
        {"cursor=1-0&cursor=2-0", "cursor"},
        {"limit=0", "limit"},
        {"limit=1001", "limit"},
        {"limit=x", "limit"},
        {"limit=5&limit=5", "limit"},
        {"order=asc", "order"},
        {"cursor=%FF", "cursor"}, /* not UTF-8 */
        {"status=%FF", "status"},
    };
    struct th_server srv;
    CHECK(th_server_start(&srv, NULL) == 0);
    struct th_resp *r =
        th_http(&srv, "POST", "/v1/webhooks", "{\"url\":\"https://hooks.example.com/x\"}");
    CHECK_INT(r->status, 201);
    char *hook = strdup(th_str(r->json, "id"));
    char path[300];
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        snprintf(path, sizeof path, "/v1/webhooks/%s/deliveries?%s", hook, bad[i].query);
        r = th_http(&srv, "GET", path, NULL);
        const char *field = th_str(r->json, "error.field");
        if (r->status != 400 || !field || strcmp(field, bad[i].field) != 0)
            th_fail(__FILE__, __LINE__, "%s: %ld %s", bad[i].query, r->status, r->body);
    }
    /* Good ones, on an empty list. */
    snprintf(path, sizeof path, "/v1/webhooks/%s/deliveries?status=failed&cursor=12-3&limit=1",
             hook);
    r = th_http(&srv, "GET", path, NULL);
    CHECK_INT(r->status, 200);
    CHECK_INT(json_array_size(th_get(r->json, "deliveries")), 0);
    CHECK(json_is_null(th_get(r->json, "next_cursor")));
    free(hook);
    th_server_free(&srv);
}

static const struct th_test tests[] = {
    {"PATCH sets each field alone and never shows the secret", test_patch_sets_each_field},
    {"bad PATCH bodies are 400 naming the field; nothing changes",
     test_patch_bad_bodies_change_nothing},
    {"another namespace's webhook is 404 to PATCH", test_patch_other_namespace_is_404},
    {"a pending delivery follows a PATCH of url and secret",
     test_pending_delivery_follows_the_patch},
    {"an attempt in flight during a PATCH keeps its url and secret",
     test_attempt_in_flight_keeps_what_it_had},
    {"a PATCH on one node reaches the other's senders", test_patch_on_one_node_reaches_the_other},
    {"deliveries page by cursor, none twice or missed, and filter by status",
     test_deliveries_paged_and_filtered},
    {"bad delivery list queries are 400 naming the parameter", test_deliveries_bad_queries},
    {NULL, NULL},
};

int main(int argc, char **argv) {
    return th_main(tests, argc, argv);
}
