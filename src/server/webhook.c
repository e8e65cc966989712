/*
 * webhook: see webhook.h. A small pool of sender workers
 * (--webhook-senders, default 4) shares the due deliveries, with one rule:
 * a webhook has at most one delivery in flight. So deliveries to different
 * webhooks never wait for each other, a receiver that hangs holds at most
 * one worker, and each webhook still gets its deliveries one at a time in
 * order of due time then event seq, so a healthy receiver sees a task's
 * events in order; a retried delivery waits out its backoff without
 * holding back the others.
 *
 * Choosing is serialized by pick_lock: a worker reads the first due
 * delivery of a webhook that is neither busy nor held (the store leaves
 * those out, so they cannot fill the page) and marks its webhook busy in
 * the same critical section. A worker records the outcome through the
 * store's writer before it clears busy, so no read sees a stale row.
 *
 * Circuit breaker: after WEBHOOK_BREAK_AFTER consecutive attempts that
 * found no receiver (network error, timeout, 5xx), the webhook as a whole
 * is held, for the backoff doubling per further failure (capped as a
 * delivery's): one probe attempt per hold, not one per pending delivery.
 * A held delivery's attempts are not spent. The streaks live in memory
 * only; a restart forgets them and keeps every delivery.
 *
 * Each attempt sends the same `id` (the delivery's, so receivers can drop
 * repeats) with a fresh `timestamp` and signature. Delivery is at least
 * once: an attempt cut short by a stop is not recorded (its row is written
 * back as it was, which frees the webhook) and runs again.
 */
#include "webhook.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "../common/buf.h"
#include "../common/timeutil.h"
#include "../common/xalloc.h"
#include "log_limit.h"

#define WEBHOOK_BREAK_AFTER 5 /* failures in a row before a webhook is held as a whole */

/* What the sender knows of one webhook; kept while a worker sends to it or
 * while it has a failure streak, then dropped. */
struct webhook_state {
    char id[ID_LEN + 1];
    bool busy;          /* a worker has one of its deliveries in flight */
    int failures;       /* attempts in a row that found no receiver */
    int64_t failed_at;  /* wall ms of the last of them */
    int64_t held_until; /* wall ms: its deliveries wait until then */
};

struct webhook_sender {
    struct store *store;
    struct events_config cfg;
    pthread_t *threads;
    int nthreads; /* started */
    /* Reading and choosing a due delivery; guards hooks and looked_*. */
    pthread_mutex_t pick_lock;
    struct webhook_state *hooks;
    size_t nhooks, caphooks;
    /* The last read that found nothing due: the wake-up generation it
     * followed, when it was made (0: none) and the next due time it read. */
    uint64_t looked_gen;
    int64_t looked_at, looked_next;
    /* Sleeping and waking. */
    pthread_mutex_t lock;
    pthread_cond_t cond;
    uint64_t wake_gen; /* under lock: bumped by each wake */
    _Atomic bool stopping;
    _Atomic uint64_t attempts, delivered, failed, retried;
    _Atomic uint64_t wakeups;     /* by commits that queued deliveries */
    struct log_limit refused_log; /* lines of private addresses refused */
};

/* At most this many lines a second of destinations refused as private: a
 * tenant can point --max-webhooks of them at private names and cause an
 * attempt of each with every event. */
#define WEBHOOK_LOG_PER_SECOND 20

/* True for an IPv4 address (host order) a webhook must not reach: every
 * special-purpose block of RFC 6890 and its updates but the few that are
 * globally routable unicast. */
bool webhook_ipv4_is_private(uint32_t a) {
    static const struct {
        uint32_t net;
        int bits;
    } blocked[] = {
        {0x00000000, 8},  /* 0/8 "this network" */
        {0x0a000000, 8},  /* 10/8 private */
        {0x64400000, 10}, /* 100.64/10 CGNAT */
        {0x7f000000, 8},  /* 127/8 loopback */
        {0xa9fe0000, 16}, /* 169.254/16 link-local (cloud metadata) */
        {0xac100000, 12}, /* 172.16/12 private */
        {0xc0000000, 24}, /* 192.0.0/24 IETF protocol assignments */
        {0xc0000200, 24}, /* 192.0.2/24 TEST-NET-1 */
        {0xc0586300, 24}, /* 192.88.99/24 6to4 relay anycast */
        {0xc0a80000, 16}, /* 192.168/16 private */
        {0xc6120000, 15}, /* 198.18/15 benchmarking */
        {0xc6336400, 24}, /* 198.51.100/24 TEST-NET-2 */
        {0xcb007100, 24}, /* 203.0.113/24 TEST-NET-3 */
        {0xe0000000, 4},  /* 224/4 multicast */
        {0xf0000000, 4},  /* 240/4 reserved, and the broadcast address */
    };
    for (size_t i = 0; i < sizeof blocked / sizeof blocked[0]; i++) {
        uint32_t mask = ~0u << (32 - blocked[i].bits);
        if ((a & mask) == blocked[i].net) return true;
    }
    return false;
}

static uint32_t webhook_v4_at(const unsigned char *p) {
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* Whether the first `bits` bits of a equal those of prefix (bits a multiple of 8 or not). */
static bool webhook_v6_in(const unsigned char a[16], const unsigned char *prefix, int bits) {
    int whole = bits / 8, rest = bits % 8;
    if (memcmp(a, prefix, (size_t)whole) != 0) return false;
    if (!rest) return true;
    unsigned char mask = (unsigned char)(0xff << (8 - rest));
    return (a[whole] & mask) == (prefix[whole] & mask);
}

bool webhook_ipv6_is_private(const unsigned char a[16]) {
    static const unsigned char mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    static const unsigned char translated[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0, 0};
    static const unsigned char nat64[12] = {0x00, 0x64, 0xff, 0x9b};
    /* Forms that carry an IPv4 address: it decides. */
    if (webhook_v6_in(a, mapped, 96) || webhook_v6_in(a, translated, 96) ||
        webhook_v6_in(a, nat64, 96))
        return webhook_ipv4_is_private(webhook_v4_at(a + 12));
    if (a[0] == 0x20 && a[1] == 0x02) /* 2002::/16 6to4: 2002:AABB:CCDD:: */
        return webhook_ipv4_is_private(webhook_v4_at(a + 2));
    static const struct {
        unsigned char prefix[4];
        int bits;
    } blocked[] = {
        {{0x00, 0x00, 0x00, 0x00}, 96}, /* ::/96: ::, ::1, IPv4-compatible (::127.0.0.1) */
        {{0x00, 0x64, 0xff, 0x9b}, 32}, /* 64:ff9b::/32 past the /96: local-use NAT64 */
        {{0x01, 0x00, 0x00, 0x00}, 64}, /* 100::/64 discard-only */
        {{0x20, 0x01, 0x00, 0x00}, 23}, /* 2001::/23 IETF protocol assignments, Teredo */
        {{0x20, 0x01, 0x0d, 0xb8}, 32}, /* 2001:db8::/32 documentation */
        {{0x3f, 0xff, 0x00, 0x00}, 20}, /* 3fff::/20 documentation */
        {{0x5f, 0x00, 0x00, 0x00}, 16}, /* 5f00::/16 segment routing */
        {{0xfc, 0x00, 0x00, 0x00}, 7},  /* fc00::/7 unique local */
        {{0xfe, 0x80, 0x00, 0x00}, 10}, /* fe80::/10 link-local */
        {{0xfe, 0xc0, 0x00, 0x00}, 10}, /* fec0::/10 site-local (deprecated) */
        {{0xff, 0x00, 0x00, 0x00}, 8},  /* ff00::/8 multicast */
    };
    for (size_t i = 0; i < sizeof blocked / sizeof blocked[0]; i++) {
        unsigned char p[16] = {0};
        memcpy(p, blocked[i].prefix, 4);
        if (webhook_v6_in(a, p, blocked[i].bits)) return true;
    }
    return false;
}

bool webhook_addr_is_private(const struct sockaddr *sa) {
    if (sa->sa_family == AF_INET)
        return webhook_ipv4_is_private(ntohl(((const struct sockaddr_in *)sa)->sin_addr.s_addr));
    if (sa->sa_family == AF_INET6)
        return webhook_ipv6_is_private(((const struct sockaddr_in6 *)sa)->sin6_addr.s6_addr);
    return true;
}

/* True for a host name that names this machine without DNS (RFC 6761). */
static bool webhook_host_is_localhost(const char *name) {
    size_t n = strlen(name);
    if (n && name[n - 1] == '.') n--;
    if (n == 9 && strncasecmp(name, "localhost", 9) == 0) return true;
    return n > 10 && strncasecmp(name + n - 10, ".localhost", 10) == 0;
}

int webhook_url_check(const char *url, bool allow_private, struct tm_error *e) {
    if (strncmp(url, "http://", 7) != 0 && strncmp(url, "https://", 8) != 0)
        return err_set(e, TM_EINVALID, "url", "'url' must start with 'http://' or 'https://'");
    /* libcurl reads "http:///x" as host "x"; the URL has no host. */
    const char *authority = url + (url[4] == 's' ? 8 : 7);
    if (*authority == '/')
        return err_set(e, TM_EINVALID, "url", "'url' has no host (nothing between '//' and '/')");
    CURLU *u = curl_url();
    char *host = NULL, *port = NULL;
    int rc = 0;
    if (!u) abort();
    if (curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK || !host || !*host) {
        rc = err_set(e, TM_EINVALID, "url", "'url' is not a valid URL");
        goto out;
    }
    if (curl_url_get(u, CURLUPART_PORT, &port, 0) == CURLUE_OK && port &&
        strtol(port, NULL, 10) == 0) {
        rc = err_set(e, TM_EINVALID, "url", "'url' has port 0 (a port is 1-65535)");
        goto out;
    }
    if (allow_private) goto out;
    char name[256];
    snprintf(name, sizeof name, "%s", host);
    size_t len = strlen(name);
    if (len > 1 && name[0] == '[' && name[len - 1] == ']') {
        memmove(name, name + 1, len - 2);
        name[len - 2] = '\0';
        char *zone = strchr(name, '%');
        if (zone) *zone = '\0';
    }
    /* Literal addresses only: a name is not resolved here (that would block
     * an HTTP thread); its addresses are checked on every connection. */
    /* A trailing dot ("127.0.0.1.") is the same host to a resolver. */
    len = strlen(name);
    if (len > 1 && name[len - 1] == '.') name[len - 1] = '\0';
    struct in_addr v4;
    struct in6_addr v6;
    bool private = webhook_host_is_localhost(name);
    if (inet_pton(AF_INET6, name, &v6) == 1)
    private = webhook_ipv6_is_private(v6.s6_addr);
    else if (inet_aton(name, &v4)) /* also 127.1, 0x7f000001, 2130706433 */
        private = webhook_ipv4_is_private(ntohl(v4.s_addr));
    if (private)
        rc = err_set(e, TM_EINVALID, "url",
                     "host '%.64s' is a private or loopback address (the server must be started "
                     "with --webhook-allow-private)",
                     name);
out:
    curl_free(host);
    curl_free(port);
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

/* One attempt's connection, as the libcurl callbacks see it. */
struct webhook_call {
    struct webhook_sender *ws;
    CURL *c;
    bool answered;                  /* a final status and its headers came: the body is not read */
    char refused[INET6_ADDRSTRLEN]; /* the last address refused as private, or "" */
};

static curl_socket_t webhook_open_socket(void *cls, curlsocktype purpose,
                                         struct curl_sockaddr *addr) {
    struct webhook_call *call = cls;
    (void)purpose;
    if (!call->ws->cfg.webhook_allow_private && webhook_addr_is_private(&addr->addr)) {
        /* Named in the attempt's error: libcurl says only that it could not connect. */
        const void *a = addr->family == AF_INET6
                            ? (const void *)&((struct sockaddr_in6 *)&addr->addr)->sin6_addr
                            : (const void *)&((struct sockaddr_in *)&addr->addr)->sin_addr;
        if (!inet_ntop(addr->family, a, call->refused, sizeof call->refused))
            snprintf(call->refused, sizeof call->refused, "?");
        return CURL_SOCKET_BAD;
    }
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

/* Ends the transfer once the headers of a final answer are in: the status
 * decides, and a body that is huge, slow or cut short must neither hold a
 * sender until the timeout nor turn a 2xx into a retry. */
static size_t webhook_header(char *p, size_t size, size_t n, void *cls) {
    struct webhook_call *call = cls;
    size_t len = size * n;
    if (len == 0 || (p[0] != '\r' && p[0] != '\n')) return len;
    long status = 0;
    curl_easy_getinfo(call->c, CURLINFO_RESPONSE_CODE, &status);
    if (status < 200) return len; /* an interim 1xx: the answer is still to come */
    call->answered = true;
    return 0; /* stops the transfer (CURLE_WRITE_ERROR) */
}

/* The wait after the n-th failure (n >= 1): the first delay, doubling, capped. */
static int64_t webhook_backoff_ms(const struct webhook_sender *ws, int64_t n) {
    int64_t delay = ws->cfg.webhook_backoff_ms;
    for (int64_t i = 1; i < n && delay < ws->cfg.webhook_backoff_max_ms; i++)
        delay *= 2;
    return delay > ws->cfg.webhook_backoff_max_ms ? ws->cfg.webhook_backoff_max_ms : delay;
}

/* The delivery body when no view gave one (events_config.webhook_body):
 * the same envelope with the v1 task. `serve` always sets Livepeer's. */
void webhook_body_begin(struct buf *b, const struct webhook_delivery *d, int64_t now) {
    buf_puts(b, "{\"id\":");
    json_put_str(b, d->id);
    json_put_key(b, "webhookId", false);
    json_put_str(b, d->webhook_id);
    buf_printf(b, ",\"createdAt\":%lld,\"timestamp\":%lld,\"event\":", (long long)d->ev.at,
               (long long)now);
    json_put_str(b, d->event);
    json_put_key(b, "payload", false);
    buf_putc(b, '{');
    json_put_key(b, "task", true);
}

static void webhook_body_v1(struct buf *b, const struct webhook_delivery *d, int64_t now) {
    webhook_body_begin(b, d, now);
    buf_puts(b, d->ev.task_json && *d->ev.task_json ? d->ev.task_json : "null");
    buf_puts(b, "}}");
}

/* How an attempt went, for the circuit breaker. */
enum webhook_outcome {
    WEBHOOK_STOPPED,   /* cut short by a stop: the row is left as it was */
    WEBHOOK_ANSWERED,  /* the receiver answered, or there was nothing to send */
    WEBHOOK_UNREACHED, /* network error, timeout or 5xx */
};

/* One attempt; fills the outcome into d (status, attempts, next_at, ...). */
static enum webhook_outcome webhook_attempt(struct webhook_sender *ws, CURL *c,
                                            struct webhook_delivery *d) {
    int64_t now = time_now_ms();
    if (!d->ev.seq) {
        free(d->last_error);
        d->last_error = xstrdup("the event is no longer stored");
        d->updated_at = now;
        snprintf(d->status, sizeof d->status, "failed");
        return WEBHOOK_ANSWERED;
    }
    struct buf body;
    buf_init(&body);
    (ws->cfg.webhook_body ? ws->cfg.webhook_body : webhook_body_v1)(&body, d, now);
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
    struct webhook_call call = {.ws = ws, .c = c};
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
    curl_easy_setopt(c, CURLOPT_OPENSOCKETDATA, &call);
    curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, webhook_progress);
    curl_easy_setopt(c, CURLOPT_XFERINFODATA, ws);
    curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, webhook_discard);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, webhook_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, &call);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    /* No proxy, whatever the environment says: a proxy would make the
     * connection the open-socket check sees the proxy's, not the receiver's. */
    curl_easy_setopt(c, CURLOPT_PROXY, "");
    CURLcode cc = curl_easy_perform(c);
    long status = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    curl_slist_free_all(hdr);
    buf_release(&body);
    /* d is still the row as claimed: recorded as it is, it frees the webhook. */
    if (cc == CURLE_ABORTED_BY_CALLBACK && atomic_load(&ws->stopping)) return WEBHOOK_STOPPED;
    if (call.answered) cc = CURLE_OK;
    free(d->last_error);
    d->last_error = NULL;
    d->updated_at = now;

    atomic_fetch_add(&ws->attempts, 1);
    d->attempts++;
    d->last_status = cc == CURLE_OK ? status : 0;
    bool retry = false;
    if (cc == CURLE_COULDNT_CONNECT && call.refused[0]) {
        /* The address is the operator's to see, not the webhook owner's:
         * named to a tenant, it would tell what names resolve to inside
         * the server's network. */
        if (log_limit_take(&ws->refused_log, WEBHOOK_LOG_PER_SECOND,
                           "taskmill: webhooks: ", "refused private addresses", ""))
            fprintf(stderr,
                    "taskmill: webhooks: webhook %s: its url's host resolved to the private or "
                    "loopback address %s; refused (--webhook-allow-private allows it)\n",
                    d->webhook_id, call.refused);
        d->last_error = xstrdup(
            "the url's host resolved to a private or loopback address "
            "(refused: the server must be started with "
            "--webhook-allow-private; its log names the address)");
        retry = true;
    } else if (cc != CURLE_OK) {
        d->last_error = xstrdup(errbuf[0] ? errbuf : curl_easy_strerror(cc));
        retry = true;
    } else if (status >= 200 && status < 300) {
        snprintf(d->status, sizeof d->status, "delivered");
        atomic_fetch_add(&ws->delivered, 1);
        return WEBHOOK_ANSWERED;
    } else {
        char msg[80];
        snprintf(msg, sizeof msg, "the receiver answered %ld%s", status,
                 status >= 300 && status < 400 ? " (redirects are not followed)" : "");
        d->last_error = xstrdup(msg);
        retry = status >= 500;
    }
    if (retry && d->attempts < ws->cfg.webhook_max_attempts) {
        d->next_at = now + webhook_backoff_ms(ws, d->attempts);
        atomic_fetch_add(&ws->retried, 1);
    } else {
        snprintf(d->status, sizeof d->status, "failed");
        atomic_fetch_add(&ws->failed, 1);
    }
    return retry ? WEBHOOK_UNREACHED : WEBHOOK_ANSWERED;
}

static uint64_t webhook_wake_gen(struct webhook_sender *ws) {
    pthread_mutex_lock(&ws->lock);
    uint64_t gen = ws->wake_gen;
    pthread_mutex_unlock(&ws->lock);
    return gen;
}

/* Sleeps until woken after `gen`, stopped, or `until` (wall ms; 0 = a second). */
static void webhook_sleep(struct webhook_sender *ws, uint64_t gen, int64_t until) {
    int64_t now = time_now_ms();
    int64_t ms = until ? until - now : 1000;
    if (ms > 1000) ms = 1000;
    if (ms <= 0) return;
    pthread_mutex_lock(&ws->lock);
    if (ws->wake_gen == gen && !atomic_load(&ws->stopping))
        time_cond_wait_ms(&ws->cond, &ws->lock, ms);
    pthread_mutex_unlock(&ws->lock);
}

/* The state of webhook `id`, added when `add`; NULL when absent. Under pick_lock. */
static struct webhook_state *webhook_state_of(struct webhook_sender *ws, const char *id, bool add) {
    for (size_t i = 0; i < ws->nhooks; i++)
        if (strcmp(ws->hooks[i].id, id) == 0) return &ws->hooks[i];
    if (!add) return NULL;
    if (ws->nhooks == ws->caphooks) {
        ws->caphooks = ws->caphooks ? 2 * ws->caphooks : 16;
        ws->hooks = xrealloc(ws->hooks, ws->caphooks * sizeof *ws->hooks);
    }
    struct webhook_state *h = &ws->hooks[ws->nhooks++];
    memset(h, 0, sizeof *h);
    snprintf(h->id, sizeof h->id, "%s", id);
    return h;
}

/*
 * Takes the first due delivery of a webhook that is neither busy nor held
 * and marks that webhook busy. Returns 1 with *out (one row, the caller's
 * to free with deliveries_free(*out, 1)), or 0 with *until set to when to
 * look again (0: in a second, or when woken).
 */
static int webhook_pick(struct webhook_sender *ws, uint64_t gen, struct webhook_delivery **out,
                        int64_t *until) {
    *out = NULL;
    *until = 0;
    pthread_mutex_lock(&ws->pick_lock);
    int64_t now = time_now_ms(), held_min = 0;
    const char **skip = xcalloc(ws->nhooks + 1, sizeof *skip);
    size_t nskip = 0;
    for (size_t i = 0; i < ws->nhooks;) {
        struct webhook_state *h = &ws->hooks[i];
        /* A streak that has been quiet for a whole maximum backoff is over:
         * its webhook was deleted or has nothing pending. */
        if (!h->busy && h->failed_at + ws->cfg.webhook_backoff_max_ms < now) {
            *h = ws->hooks[--ws->nhooks];
            continue;
        }
        if (h->busy || h->held_until > now) skip[nskip++] = h->id;
        if (!h->busy && h->held_until > now && (!held_min || h->held_until < held_min))
            held_min = h->held_until;
        i++;
    }
    /* A read first: a claim is a write (a commit), not to be made every
     * time a sender looks and nothing is due. The senders a wake-up woke
     * read once: a read since that wake-up that found nothing due answers
     * for the others, for up to a second (another node's deliveries come
     * with no wake-up here). */
    struct tm_error e;
    err_clear(&e);
    int64_t next = 0;
    bool known = ws->looked_at && ws->looked_gen == gen && now - ws->looked_at < 1000 &&
                 (!ws->looked_next || ws->looked_next > now);
    int failed = 0;
    if (known) {
        next = ws->looked_next;
    } else if (!(failed = store_deliveries_next_at(ws->store, &next, &e)) &&
               (!next || next > now)) {
        ws->looked_gen = gen;
        ws->looked_at = now;
        ws->looked_next = next;
    }
    if (known || failed || !next || next > now) {
        free(skip);
        pthread_mutex_unlock(&ws->pick_lock);
        if (next && held_min && held_min < next) next = held_min;
        if (!next) next = held_min;
        *until = next;
        return 0;
    }
    /* The claim marks the webhook busy in the store, for every node's
     * senders, for longer than an attempt can take. */
    struct store_op op;
    store_op_init(&op, STORE_OP_DELIVERY_CLAIM);
    op.skip = skip;
    op.nskip = nskip;
    op.lease_ms = ws->cfg.webhook_timeout_ms + 5000;
    int rc = store_run(ws->store, &op);
    free(skip);
    if (!rc && op.claimed) {
        struct webhook_delivery *d = op.claimed_delivery;
        op.claimed_delivery = NULL;
        webhook_state_of(ws, d->webhook_id, true)->busy = true;
        *out = d;
        pthread_mutex_unlock(&ws->pick_lock);
        store_op_release(&op);
        return 1;
    }
    store_op_release(&op);
    pthread_mutex_unlock(&ws->pick_lock);
    if (rc) return 0;
    next = 0;
    /* Due rows of a busy webhook make next <= now: its worker wakes us. */
    if (store_deliveries_next_at(ws->store, &next, &e) || next <= now) next = 0;
    if (held_min && (!next || held_min < next)) next = held_min;
    *until = next;
    return 0;
}

static void sender_wake(struct webhook_sender *ws);

/* The attempt at d is over: its webhook is free again, its streak updated. */
static void webhook_done(struct webhook_sender *ws, const struct webhook_delivery *d,
                         enum webhook_outcome how) {
    pthread_mutex_lock(&ws->pick_lock);
    struct webhook_state *h = webhook_state_of(ws, d->webhook_id, false);
    if (h) {
        h->busy = false;
        if (how == WEBHOOK_ANSWERED) {
            h->failures = 0;
            h->held_until = 0;
        } else if (how == WEBHOOK_UNREACHED) {
            h->failed_at = time_now_ms();
            if (++h->failures >= WEBHOOK_BREAK_AFTER)
                h->held_until =
                    h->failed_at + webhook_backoff_ms(ws, h->failures - WEBHOOK_BREAK_AFTER + 1);
        }
        if (!h->failures) *h = ws->hooks[--ws->nhooks];
    }
    pthread_mutex_unlock(&ws->pick_lock);
    /* Its next delivery may be due: let an idle worker take it. */
    sender_wake(ws);
}

static void *webhook_main(void *arg) {
    struct webhook_sender *ws = arg;
    CURL *c = curl_easy_init();
    if (!c) abort();
    while (!atomic_load(&ws->stopping)) {
        uint64_t gen = webhook_wake_gen(ws);
        struct webhook_delivery *d = NULL;
        int64_t until = 0;
        if (!webhook_pick(ws, gen, &d, &until)) {
            webhook_sleep(ws, gen, until);
            continue;
        }
        enum webhook_outcome how = webhook_attempt(ws, c, d);
        /* Recorded before the webhook is freed, so no later pick reads the
         * row as it was. An attempt cut short by a stop writes the row back
         * unchanged (the store still runs: server.c stops the senders
         * first), which frees the webhook in the store: else it stayed busy
         * after a restart until the claim's hold (the timeout plus 5 s)
         * ran out. */
        struct store_op op;
        store_op_init(&op, STORE_OP_DELIVERY_SET);
        op.delivery = d;
        store_run(ws->store, &op);
        store_op_release(&op);
        webhook_done(ws, d, how);
        deliveries_free(d, 1);
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
    if (ws->cfg.webhook_senders <= 0) ws->cfg.webhook_senders = 4;
    pthread_mutex_init(&ws->pick_lock, NULL);
    pthread_mutex_init(&ws->lock, NULL);
    time_cond_init(&ws->cond);
    ws->threads = xcalloc((size_t)ws->cfg.webhook_senders, sizeof *ws->threads);
    while (ws->nthreads < ws->cfg.webhook_senders &&
           pthread_create(&ws->threads[ws->nthreads], NULL, webhook_main, ws) == 0)
        ws->nthreads++;
    return ws;
}

static void sender_wake(struct webhook_sender *ws) {
    pthread_mutex_lock(&ws->lock);
    ws->wake_gen++;
    pthread_cond_broadcast(&ws->cond);
    pthread_mutex_unlock(&ws->lock);
}

void webhook_sender_wake(void *cls) {
    struct webhook_sender *ws = cls;
    atomic_fetch_add(&ws->wakeups, 1);
    sender_wake(ws);
}

void webhook_sender_stop(struct webhook_sender *ws) {
    if (!ws || !ws->nthreads) return;
    atomic_store(&ws->stopping, true);
    sender_wake(ws);
    for (int i = 0; i < ws->nthreads; i++)
        pthread_join(ws->threads[i], NULL);
    ws->nthreads = 0;
}

void webhook_sender_free(struct webhook_sender *ws) {
    if (!ws) return;
    webhook_sender_stop(ws);
    pthread_mutex_destroy(&ws->pick_lock);
    pthread_mutex_destroy(&ws->lock);
    pthread_cond_destroy(&ws->cond);
    free(ws->threads);
    free(ws->hooks);
    free(ws);
}

int64_t webhook_sender_held_until(struct webhook_sender *ws, const char *id) {
    if (!ws) return 0;
    pthread_mutex_lock(&ws->pick_lock);
    struct webhook_state *h = webhook_state_of(ws, id, false);
    int64_t until = h && h->held_until > time_now_ms() ? h->held_until : 0;
    pthread_mutex_unlock(&ws->pick_lock);
    return until;
}

void webhook_sender_forget(struct webhook_sender *ws, const char *id) {
    if (!ws) return;
    pthread_mutex_lock(&ws->pick_lock);
    struct webhook_state *h = webhook_state_of(ws, id, false);
    if (h) {
        h->failures = 0;
        h->held_until = 0;
        if (!h->busy) *h = ws->hooks[--ws->nhooks];
    }
    pthread_mutex_unlock(&ws->pick_lock);
    sender_wake(ws);
}

void webhook_sender_get_stats(struct webhook_sender *ws, struct webhook_sender_stats *out) {
    out->attempts = atomic_load(&ws->attempts);
    out->delivered = atomic_load(&ws->delivered);
    out->failed = atomic_load(&ws->failed);
    out->retried = atomic_load(&ws->retried);
    out->wakeups = atomic_load(&ws->wakeups);
}
