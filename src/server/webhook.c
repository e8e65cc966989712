/*
 * webhook: see webhook.h. One sender thread, one attempt at a time, in
 * order of due time then event seq, so a healthy receiver sees a task's
 * events in order; a retried delivery waits out its backoff without
 * holding back the others.
 *
 * Each attempt sends the same `id` (the delivery's, so receivers can drop
 * repeats) with a fresh `timestamp` and signature. Delivery is at least
 * once: an attempt cut short by a stop is not recorded and runs again.
 */
#include "webhook.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <netdb.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "../common/buf.h"
#include "../common/timeutil.h"
#include "../common/xalloc.h"
#include "../compat/livepeer.h"

#define WEBHOOK_BATCH 32

struct webhook_sender {
    struct store *store;
    struct events_config cfg;
    pthread_t thread;
    bool started;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    bool wake; /* under lock */
    _Atomic bool stopping;
    _Atomic uint64_t attempts, delivered, failed, retried;
};

/* True for addresses a webhook must not reach unless allowed. */
static bool webhook_addr_is_private(const struct sockaddr *sa) {
    if (sa->sa_family == AF_INET) {
        uint32_t a = ntohl(((const struct sockaddr_in *)sa)->sin_addr.s_addr);
        return (a >> 24) == 0 || (a >> 24) == 10 || (a >> 24) == 127 ||
               (a >> 20) == (172u << 4 | 1) || (a >> 16) == (192u << 8 | 168) ||
               (a >> 16) == (169u << 8 | 254) || (a >> 22) == (100u << 2 | 1) ||
               (a >> 28) >= 14; /* 100.64/10 above; multicast and reserved */
    }
    if (sa->sa_family == AF_INET6) {
        const struct in6_addr *a = &((const struct sockaddr_in6 *)sa)->sin6_addr;
        if (IN6_IS_ADDR_V4MAPPED(a)) {
            struct sockaddr_in v4 = {.sin_family = AF_INET};
            memcpy(&v4.sin_addr, &a->s6_addr[12], 4);
            return webhook_addr_is_private((const struct sockaddr *)&v4);
        }
        return IN6_IS_ADDR_LOOPBACK(a) || IN6_IS_ADDR_UNSPECIFIED(a) || IN6_IS_ADDR_LINKLOCAL(a) ||
               IN6_IS_ADDR_MULTICAST(a) || (a->s6_addr[0] & 0xfe) == 0xfc;
    }
    return true;
}

int webhook_url_check(const char *url, bool allow_private, struct tm_error *e) {
    if (strncmp(url, "http://", 7) != 0 && strncmp(url, "https://", 8) != 0)
        return err_set(e, TM_EINVALID, "url", "'url' must start with 'http://' or 'https://'");
    CURLU *u = curl_url();
    char *host = NULL;
    int rc = 0;
    if (!u) abort();
    if (curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK || !host || !*host) {
        rc = err_set(e, TM_EINVALID, "url", "'url' is not a valid URL");
        goto out;
    }
    char name[256];
    snprintf(name, sizeof name, "%s", host);
    size_t len = strlen(name);
    if (len > 1 && name[0] == '[' && name[len - 1] == ']') {
        memmove(name, name + 1, len - 2);
        name[len - 2] = '\0';
    }
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *ai = NULL;
    if (getaddrinfo(name, NULL, &hints, &ai) != 0) {
        rc = err_set(e, TM_EINVALID, "url", "host '%s' does not resolve", name);
        goto out;
    }
    for (struct addrinfo *p = ai; p && !allow_private; p = p->ai_next) {
        if (webhook_addr_is_private(p->ai_addr)) {
            rc = err_set(e, TM_EINVALID, "url",
                         "host '%s' is a private or loopback address (the server must be started "
                         "with --webhook-allow-private)",
                         name);
            break;
        }
    }
    freeaddrinfo(ai);
out:
    curl_free(host);
    curl_url_cleanup(u);
    return rc;
}

void webhook_sign(const char *secret, const char *body, size_t len, char hex[65]) {
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    HMAC(EVP_sha256(), secret, (int)strlen(secret), (const unsigned char *)body, len, mac, &n);
    for (unsigned i = 0; i < n && i < 32; i++)
        snprintf(hex + 2 * i, 3, "%02x", mac[i]);
    hex[64] = '\0';
}

static curl_socket_t webhook_open_socket(void *cls, curlsocktype purpose,
                                         struct curl_sockaddr *addr) {
    struct webhook_sender *ws = cls;
    (void)purpose;
    if (!ws->cfg.webhook_allow_private && webhook_addr_is_private(&addr->addr))
        return CURL_SOCKET_BAD;
    return socket(addr->family, addr->socktype, addr->protocol);
}

static int webhook_progress(void *cls, curl_off_t a, curl_off_t b, curl_off_t c, curl_off_t d) {
    (void)a, (void)b, (void)c, (void)d;
    struct webhook_sender *ws = cls;
    return atomic_load(&ws->stopping) ? 1 : 0;
}

static size_t webhook_discard(char *p, size_t size, size_t n, void *cls) {
    (void)p, (void)cls;
    return size * n;
}

/* Livepeer's delivery body for one attempt. */
static void webhook_body(struct buf *b, const struct webhook_delivery *d, int64_t now) {
    buf_puts(b, "{\"id\":");
    json_put_str(b, d->id);
    buf_puts(b, ",\"webhookId\":");
    json_put_str(b, d->webhook_id);
    buf_printf(b, ",\"createdAt\":%lld,\"timestamp\":%lld,\"event\":", (long long)d->ev.at,
               (long long)now);
    json_put_str(b, d->event);
    buf_puts(b, ",\"payload\":{\"task\":{\"id\":");
    json_put_str(b, d->ev.task_id);
    buf_puts(b, ",\"type\":");
    json_put_str(b, d->ev.type);
    buf_puts(b, ",\"snapshot\":");
    /* Livepeer's Task object, as GET /api/task/{id} shows it (docs/compat.md). */
    livepeer_task_write_v1(b, d->ev.task_json);
    buf_putc(b, '}');
    if (strcmp(d->event, "task.completed") == 0) buf_puts(b, ",\"success\":true");
    if (strcmp(d->event, "task.failed") == 0) buf_puts(b, ",\"success\":false");
    buf_puts(b, "}}");
}

/* One attempt; fills the outcome into d (status, attempts, next_at, ...).
 * Returns false when it was cut short by a stop (record nothing). */
static bool webhook_attempt(struct webhook_sender *ws, CURL *c, struct webhook_delivery *d) {
    int64_t now = time_now_ms();
    free(d->last_error);
    d->last_error = NULL;
    d->updated_at = now;
    if (!d->ev.seq) {
        snprintf(d->status, sizeof d->status, "failed");
        d->last_error = xstrdup("the event is no longer stored");
        return true;
    }
    struct buf body;
    buf_init(&body);
    webhook_body(&body, d, now);
    struct curl_slist *hdr = NULL;
    hdr = curl_slist_append(hdr, "Content-Type: application/json");
    hdr = curl_slist_append(hdr, "User-Agent: taskmill");
    hdr = curl_slist_append(hdr, "Expect:");
    if (d->secret && *d->secret) {
        char hex[65], line[160];
        webhook_sign(d->secret, body.p, body.len, hex);
        snprintf(line, sizeof line, "Livepeer-Signature: t=%lld,v1=%s", (long long)now, hex);
        hdr = curl_slist_append(hdr, line);
    }
    char errbuf[CURL_ERROR_SIZE] = "";
    curl_easy_reset(c);
    curl_easy_setopt(c, CURLOPT_URL, d->url);
    curl_easy_setopt(c, CURLOPT_POST, 1L);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, body.p);
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)body.len);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdr);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)ws->cfg.webhook_timeout_ms);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, (long)ws->cfg.webhook_timeout_ms);
    curl_easy_setopt(c, CURLOPT_OPENSOCKETFUNCTION, webhook_open_socket);
    curl_easy_setopt(c, CURLOPT_OPENSOCKETDATA, ws);
    curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, webhook_progress);
    curl_easy_setopt(c, CURLOPT_XFERINFODATA, ws);
    curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, webhook_discard);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    CURLcode cc = curl_easy_perform(c);
    long status = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    curl_slist_free_all(hdr);
    buf_release(&body);
    if (cc == CURLE_ABORTED_BY_CALLBACK && atomic_load(&ws->stopping)) return false;

    atomic_fetch_add(&ws->attempts, 1);
    d->attempts++;
    d->last_status = cc == CURLE_OK ? status : 0;
    bool retry = false;
    if (cc != CURLE_OK) {
        d->last_error = xstrdup(errbuf[0] ? errbuf : curl_easy_strerror(cc));
        retry = true;
    } else if (status >= 200 && status < 300) {
        snprintf(d->status, sizeof d->status, "delivered");
        atomic_fetch_add(&ws->delivered, 1);
        return true;
    } else {
        char msg[64];
        snprintf(msg, sizeof msg, "the receiver answered %ld", status);
        d->last_error = xstrdup(msg);
        retry = status >= 500;
    }
    if (retry && d->attempts < ws->cfg.webhook_max_attempts) {
        int64_t delay = ws->cfg.webhook_backoff_ms;
        for (int64_t i = 1; i < d->attempts && delay < ws->cfg.webhook_backoff_max_ms; i++)
            delay *= 2;
        if (delay > ws->cfg.webhook_backoff_max_ms) delay = ws->cfg.webhook_backoff_max_ms;
        d->next_at = now + delay;
        atomic_fetch_add(&ws->retried, 1);
    } else {
        snprintf(d->status, sizeof d->status, "failed");
        atomic_fetch_add(&ws->failed, 1);
    }
    return true;
}

/* Sleeps until woken, stopped, or `until` (wall ms; 0 = a second). */
static void webhook_sleep(struct webhook_sender *ws, int64_t until) {
    int64_t now = time_now_ms();
    int64_t ms = until ? until - now : 1000;
    if (ms > 1000) ms = 1000;
    if (ms <= 0) return;
    pthread_mutex_lock(&ws->lock);
    if (!ws->wake && !atomic_load(&ws->stopping)) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        ts.tv_sec += ms / 1000;
        ts.tv_nsec += (ms % 1000) * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&ws->cond, &ws->lock, &ts);
    }
    ws->wake = false;
    pthread_mutex_unlock(&ws->lock);
}

static void *webhook_main(void *arg) {
    struct webhook_sender *ws = arg;
    CURL *c = curl_easy_init();
    if (!c) abort();
    while (!atomic_load(&ws->stopping)) {
        pthread_mutex_lock(&ws->lock);
        ws->wake = false;
        pthread_mutex_unlock(&ws->lock);
        struct webhook_delivery *d = NULL;
        size_t n = 0;
        struct tm_error e;
        err_clear(&e);
        if (store_deliveries_due(ws->store, time_now_ms(), WEBHOOK_BATCH, &d, &n, &e)) {
            webhook_sleep(ws, 0);
            continue;
        }
        for (size_t i = 0; i < n && !atomic_load(&ws->stopping); i++) {
            if (!webhook_attempt(ws, c, &d[i])) break;
            struct store_op op;
            store_op_init(&op, STORE_OP_DELIVERY_SET);
            op.delivery = &d[i];
            store_run(ws->store, &op);
            store_op_release(&op);
        }
        deliveries_free(d, n);
        if (n == WEBHOOK_BATCH) continue;
        int64_t next = 0;
        if (store_deliveries_next_at(ws->store, &next, &e)) next = 0;
        webhook_sleep(ws, next);
    }
    curl_easy_cleanup(c);
    return NULL;
}

struct webhook_sender *webhook_sender_new(struct store *s, const struct events_config *cfg) {
    curl_global_init(CURL_GLOBAL_DEFAULT);
    struct webhook_sender *ws = xcalloc(1, sizeof *ws);
    ws->store = s;
    ws->cfg = *cfg;
    if (ws->cfg.webhook_backoff_ms <= 0) ws->cfg.webhook_backoff_ms = 5000;
    if (ws->cfg.webhook_backoff_max_ms <= 0) ws->cfg.webhook_backoff_max_ms = 3600 * 1000;
    if (ws->cfg.webhook_max_attempts <= 0) ws->cfg.webhook_max_attempts = 34;
    if (ws->cfg.webhook_timeout_ms <= 0) ws->cfg.webhook_timeout_ms = 10000;
    pthread_mutex_init(&ws->lock, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&ws->cond, &ca);
    pthread_condattr_destroy(&ca);
    ws->started = pthread_create(&ws->thread, NULL, webhook_main, ws) == 0;
    return ws;
}

void webhook_sender_wake(void *cls) {
    struct webhook_sender *ws = cls;
    pthread_mutex_lock(&ws->lock);
    ws->wake = true;
    pthread_cond_signal(&ws->cond);
    pthread_mutex_unlock(&ws->lock);
}

void webhook_sender_stop(struct webhook_sender *ws) {
    if (!ws || !ws->started) return;
    atomic_store(&ws->stopping, true);
    webhook_sender_wake(ws);
    pthread_join(ws->thread, NULL);
    ws->started = false;
}

void webhook_sender_free(struct webhook_sender *ws) {
    if (!ws) return;
    webhook_sender_stop(ws);
    pthread_mutex_destroy(&ws->lock);
    pthread_cond_destroy(&ws->cond);
    free(ws);
}

void webhook_sender_get_stats(struct webhook_sender *ws, struct webhook_sender_stats *out) {
    out->attempts = atomic_load(&ws->attempts);
    out->delivered = atomic_load(&ws->delivered);
    out->failed = atomic_load(&ws->failed);
    out->retried = atomic_load(&ws->retried);
}
