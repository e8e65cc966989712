/*
 * auth: who is asking, and may they? auth_check runs once per request in
 * req_dispatch, after the route is known and before its handler.
 *
 * The token named by `Authorization: Bearer tm_<id>_<secret>` is read from
 * the store on every request (no cache: a revocation counts at once), its
 * secret hashed and compared in constant time. A non-admin token scopes
 * the request to its namespace (r->ns); the store applies that scope, so
 * another namespace's task is 404. While the store has never held a token
 * (no row at all: revoked and expired tokens count) the server is open
 * (loopback only, see server_start) until one appears, checked at most
 * once a second; the open mode never returns, not even after a restart
 * with every token revoked. Only `taskmill token purge` deleting every
 * token reopens it. Requests
 * per token are capped by a token bucket (rate_per_token, same burst).
 * Threading: any libmicrohttpd thread. Errors: 401, 403, 429 through
 * reply_error, each with a log line naming the token id, never the secret.
 */
#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "../common/timeutil.h"
#include "../common/xalloc.h"
#include "key_table.h"
#include "server_int.h"

#define AUTH_RECHECK_MS     1000
#define AUTH_RATE_BUCKETS   256
#define AUTH_LOG_PER_SECOND 100

/* A token's bucket in srv->rate, keyed by its id. */
struct rate_bucket {
    struct key_entry e;
    double tokens;
    int64_t at_mono_ms;
};

/* Takes one request from the token's bucket; false when it is empty. */
static bool auth_rate_take(struct server *srv, const char *id) {
    int rate = srv->cfg.limits.rate_per_token;
    if (rate <= 0) return true;
    int64_t now = time_mono_ms();
    pthread_mutex_lock(&srv->rate.lock);
    struct rate_bucket *b = key_table_find(&srv->rate, id, strlen(id));
    if (!b) {
        b = key_table_add(&srv->rate, id, strlen(id), sizeof *b);
        b->tokens = rate;
        b->at_mono_ms = now;
    }
    b->tokens += (double)(now - b->at_mono_ms) * rate / 1000.0;
    if (b->tokens > rate) b->tokens = rate;
    b->at_mono_ms = now;
    bool ok = b->tokens >= 1.0;
    if (ok) b->tokens -= 1.0;
    pthread_mutex_unlock(&srv->rate.lock);
    return ok;
}

static void auth_client_addr(struct req *r, char *out, size_t n) {
    snprintf(out, n, "?");
    const struct sockaddr *sa = req_client_addr(r);
    if (!sa) return;
    if (sa->sa_family == AF_INET)
        inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, out, (socklen_t)n);
    else if (sa->sa_family == AF_INET6)
        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)sa)->sin6_addr, out, (socklen_t)n);
}

/* Counts a refusal and logs it (status, request, client address, token
 * id, never the secret): at most AUTH_LOG_PER_SECOND lines a second, so that a client sending bad
 * credentials (or past its rate) as fast as it can does not fill the log; the next line written
 * says how many were not. */
static void auth_log_refusal(struct req *r, int code, const char *token_id, const char *why) {
    int status = err_http_status(code);
    int k = status == 401 ? 0 : status == 403 ? 1 : status == 429 ? 2 : -1;
    if (k >= 0) atomic_fetch_add_explicit(&r->srv->auth_refused[k], 1, memory_order_relaxed);
    if (!log_limit_take(&r->srv->auth_log, AUTH_LOG_PER_SECOND, "taskmill: auth: ", "refusals",
                        "; taskmill_auth_refusals_total counts them all"))
        return;
    char addr[INET6_ADDRSTRLEN + 1];
    auth_client_addr(r, addr, sizeof addr);
    char path[160];
    snprintf(path, sizeof path, "%s", r->path);
    for (char *p = path; *p; p++) /* the path is the client's: no forged log lines */
        if ((unsigned char)*p < 0x20 || *p == 0x7f) *p = '?';
    fprintf(stderr, "taskmill: auth: %d %s %s from %s, token '%s': %s\n", status, r->method, path,
            addr, token_id && *token_id ? token_id : "-", why);
}

/* Replies with the refusal and logs it. */
static int auth_refuse(struct req *r, int code, const char *token_id, const char *why,
                       const char *message) {
    auth_log_refusal(r, code, token_id, why);
    if (code == TM_EUNAUTHENTICATED)
        reply_add_header(r, "WWW-Authenticate", "Bearer realm=\"taskmill\"");
    reply_error_code(r, code, code == TM_EUNAUTHENTICATED ? "Authorization" : "", message);
    return -1;
}

/* Fills e with a refusal and logs it; returns the code. */
static int auth_deny(struct req *r, struct tm_error *e, int code, const char *token_id,
                     const char *why, const char *message) {
    auth_log_refusal(r, code, token_id, why);
    return err_set(e, code, code == TM_EUNAUTHENTICATED ? "Authorization" : "", "%s", message);
}

/* The store holds a token: the server is closed for good. The token
 * watch starts its rounds, and cuts what was opened without a token. */
void auth_turn_on(struct server *srv) {
    if (!atomic_exchange(&srv->auth_on, true))
        fprintf(stderr,
                "taskmill: auth: the store holds a token now; every request needs "
                "one from here on\n");
}

/* Open mode: is it still open? Asks the store at most once a second.
 * 1 open, 0 closed (for good: tokens exist), -1 unknown (the store could
 * not be read: this request fails closed, and the next one asks again, so
 * a database outage does not lock an open server into 401s). */
int auth_is_open(struct server *srv) {
    if (atomic_load(&srv->auth_on)) return 0;
    int64_t now = time_mono_ms(), last = atomic_load(&srv->auth_checked_mono_ms);
    if (now - last < AUTH_RECHECK_MS) return 1;
    if (!atomic_compare_exchange_strong(&srv->auth_checked_mono_ms, &last, now)) return 1;
    bool any = false;
    struct tm_error e;
    err_clear(&e);
    if (store_token_any(srv->store, &any, &e)) {
        atomic_store(&srv->auth_checked_mono_ms, last);
        return -1;
    }
    if (any) {
        auth_turn_on(srv);
        return 0;
    }
    return 1;
}

/* Whether host ("name[:port]", as a Host header has it) names this
 * machine by an address or as localhost: not a name a DNS answer could
 * point at 127.0.0.1 for a page elsewhere (DNS rebinding). */
static bool auth_host_is_local(const char *host) {
    /* A client sends the same Host on every request: the last one found
     * local, per thread, is known without parsing it again. */
    static _Thread_local char seen[64];
    char name[256];
    size_t n = strlen(host);
    if (n == 0 || n >= sizeof name) return false;
    if (n < sizeof seen && memcmp(host, seen, n + 1) == 0) return true;
    if (host[0] == '[') { /* an IPv6 address: http_host_valid let only "[...]" or "[...]:port" by */
        const char *end = strchr(host, ']');
        struct in6_addr a6;
        if (!end || (size_t)(end - host) > sizeof name) return false;
        memcpy(name, host + 1, (size_t)(end - host - 1));
        name[end - host - 1] = '\0';
        return inet_pton(AF_INET6, name, &a6) == 1;
    }
    memcpy(name, host, n + 1);
    char *colon = strrchr(name, ':');
    if (colon) *colon = '\0';
    struct in_addr a;
    if (strcasecmp(name, "localhost") != 0 && inet_pton(AF_INET, name, &a) != 1) return false;
    if (n < sizeof seen) memcpy(seen, host, n + 1);
    return true;
}

/*
 * A request an open server lets through must come from this host's own
 * programs, not from a web page the operator has open: a page elsewhere
 * can send requests to 127.0.0.1 (a browser adds `Origin`), or rename
 * itself onto it by DNS (then `Host` is the page's name). 0, or the
 * refusal in e (403 naming the header).
 */
static int auth_open_cross_site(struct req *r, struct tm_error *e) {
    /* The target's authority when it is in absolute form (req_header): the
     * name the client asked for, which a browser takes from the URL as it
     * takes Host, so a renamed page's name is in it either way. There is
     * one: two Host fields are refused before (http_framing_refused). */
    const char *host = req_header(r, MHD_HTTP_HEADER_HOST);
    const char *origin = req_header(r, "Origin");
    if (host && !r->srv->cfg.insecure_no_auth && !auth_host_is_local(host))
        return err_set(e, TM_EFORBIDDEN, "Host",
                       "with no token in the store this server answers requests for "
                       "localhost or an IP address only, not '%.100s'; create a token",
                       host);
    if (!origin) return 0;
    const char *o = strstr(origin, "://");
    if (!host || !o || strcasecmp(o + 3, host) != 0)
        return err_set(e, TM_EFORBIDDEN, "Origin",
                       "with no token in the store this server answers no request a web page "
                       "of another origin ('%.100s') sends; create a token",
                       origin);
    return 0;
}

/* A request without credentials: let it through while the server is open. */
static int auth_open_or_refuse(struct req *r, const char *why, const char *message) {
    int open = auth_is_open(r->srv);
    struct tm_error e;
    if (open == 1 && auth_open_cross_site(r, &e)) {
        auth_log_refusal(r, e.code, NULL, "cross-site request in open mode");
        reply_error(r, &e);
        return -1;
    }
    if (open == 1) return 0;
    if (open < 0) {
        reply_error_code(r, TM_EUNAVAILABLE, "", "storage unavailable; try again");
        return -1;
    }
    return auth_refuse(r, TM_EUNAUTHENTICATED, NULL, why, message);
}

int auth_check(struct req *r, unsigned perm) {
    r->role = TOKEN_ADMIN;
    r->token_id[0] = '\0';
    if (perm & PERM_PUBLIC) return 0;
    if (perm == 0) perm = PERM_ADMIN;
    const char *hdr = req_header(r, MHD_HTTP_HEADER_AUTHORIZATION);
    if (!hdr)
        return auth_open_or_refuse(r, "no credentials",
                                   "this server needs 'Authorization: Bearer <token>'");
    char id[TOKEN_ID_LEN + 1], secret[TOKEN_SECRET_LEN + 1];
    if (token_parse_bearer(hdr, id, secret))
        return auth_refuse(r, TM_EUNAUTHENTICATED, NULL, "malformed credentials",
                           "'Authorization' must be 'Bearer tm_<id>_<secret>'");
    struct tm_error e;
    err_clear(&e);
    if (auth_check_credentials(r, id, secret, perm, &e) == 0) return 0;
    if (e.code == TM_EUNAUTHENTICATED)
        reply_add_header(r, "WWW-Authenticate", "Bearer realm=\"taskmill\"");
    reply_error(r, &e);
    return -1;
}

int auth_check_credentials(struct req *r, const char *id, const char *secret, unsigned perm,
                           struct tm_error *e) {
    return auth_check_credentials_token(r, id, secret, perm, NULL, e);
}

int auth_check_credentials_token(struct req *r, const char *id, const char *secret, unsigned perm,
                                 struct token **out, struct tm_error *e) {
    struct server *srv = r->srv;
    if (out) *out = NULL;
    r->role = TOKEN_ADMIN;
    r->token_id[0] = '\0';
    if (perm & PERM_PUBLIC) return 0;
    if (perm == 0) perm = PERM_ADMIN;
    if (!id) {
        int open = auth_is_open(srv);
        if (open == 1 && auth_open_cross_site(r, e)) {
            auth_log_refusal(r, e->code, NULL, "cross-site request in open mode");
            return e->code;
        }
        if (open == 1) return 0;
        if (open < 0) return err_set(e, TM_EUNAVAILABLE, "", "storage unavailable; try again");
        return auth_deny(r, e, TM_EUNAUTHENTICATED, NULL, "no credentials",
                         "this server needs credentials");
    }
    if (!token_id_is_valid(id) || !secret || strlen(secret) != TOKEN_SECRET_LEN)
        return auth_deny(r, e, TM_EUNAUTHENTICATED, NULL, "malformed credentials",
                         "the credentials are not a token id and secret");
    struct token *t = NULL;
    struct tm_error se;
    err_clear(&se);
    int rc = store_token_get(srv->store, id, &t, &se);
    if (rc == TM_ENOT_FOUND)
        return auth_deny(r, e, TM_EUNAUTHENTICATED, id, "unknown token", "the token is not valid");
    if (rc) return err_set(e, TM_EUNAVAILABLE, "", "cannot check credentials now");
    /* A server that started open learns here, too, that it is closed: a
     * server only ever sent credentials would otherwise never watch them. */
    auth_turn_on(srv);
    const char *why = NULL;
    if (!token_secret_matches(t, secret))
        why = "wrong secret";
    else if (t->revoked_at)
        why = "revoked";
    else if (!token_is_active(t, time_now_ms()))
        why = "expired";
    if (why) {
        token_free(t);
        return auth_deny(
            r, e, TM_EUNAUTHENTICATED, id, why,
            strcmp(why, "expired") == 0 ? "the token has expired" : "the token is not valid");
    }
    if (!(perm & TOKEN_ROLE_BIT(t->role))) {
        char msg[160];
        snprintf(msg, sizeof msg, "a '%s' token may not call '%s %s'", token_role_name(t->role),
                 r->method, r->path);
        token_free(t);
        return auth_deny(r, e, TM_EFORBIDDEN, id, "role not allowed", msg);
    }
    /* Once a request, however many times its view checks it (Scene7 does
     * before and after its parse). */
    if (!r->rate_paid && !auth_rate_take(srv, id)) {
        token_free(t);
        char msg[128];
        snprintf(msg, sizeof msg, "more than %d requests a second for this token",
                 srv->cfg.limits.rate_per_token);
        return auth_deny(r, e, TM_ERATE, id, "rate limited", msg);
    }
    r->rate_paid = true;
    r->role = t->role;
    memcpy(r->token_id, id, sizeof r->token_id);
    if (t->role != TOKEN_ADMIN) {
        free(r->ns_owned);
        r->ns_owned = xstrdup(t->namespace);
        r->ns = r->ns_owned;
    }
    if (out)
        *out = t;
    else
        token_free(t);
    return 0;
}

int auth_init(struct server *srv) {
    key_table_init(&srv->rate, AUTH_RATE_BUCKETS);
    bool any = false;
    struct tm_error e;
    err_clear(&e);
    if (store_token_any(srv->store, &any, &e)) {
        fprintf(stderr, "taskmill: cannot read the tokens: %s\n", e.message);
        return -1;
    }
    atomic_store(&srv->auth_on, any);
    atomic_store(&srv->auth_checked_mono_ms, time_mono_ms());
    return 0;
}

void auth_release(struct server *srv) {
    key_table_release(&srv->rate);
}

bool auth_addr_is_loopback(const struct sockaddr *sa) {
    if (sa->sa_family == AF_INET)
        return (ntohl(((const struct sockaddr_in *)sa)->sin_addr.s_addr) >> 24) == 127;
    if (sa->sa_family == AF_INET6) {
        const struct in6_addr *a = &((const struct sockaddr_in6 *)sa)->sin6_addr;
        if (IN6_IS_ADDR_LOOPBACK(a)) return true;
        if (IN6_IS_ADDR_V4MAPPED(a)) return a->s6_addr[12] == 127;
    }
    return false;
}
