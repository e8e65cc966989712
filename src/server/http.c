/*
 * http: see http.h. libmicrohttpd runs in epoll mode with its own small
 * thread pool; connections that wait (on the store's group commit, a
 * long-poll, a claim) are suspended and resumed by the store's writer.
 *
 * Threading: a req is touched by one libmicrohttpd thread at a time; while
 * it is suspended only the store writer touches r->op, and then only to
 * fill its outputs and call req_op_done, which resumes the connection.
 */
#include "http.h"

#include <ctype.h>
#include <limits.h>
#include <microhttpd.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "../common/json_parse.h"
#include "../common/task_json.h"
#include "../common/timeutil.h"
#include "../common/utf8.h"
#include "../common/xalloc.h"
#include "event_hub.h"
#include "http_head.h"
#include "server_int.h"
#include "v1_decode.h"

static const struct route_table route_tables[] = {
    {v1_tasks_routes, NULL, NULL},     {v1_work_routes, NULL, NULL},
    {v1_queues_routes, NULL, NULL},    {health_routes, NULL, NULL},
    {v1_tokens_routes, NULL, NULL},    {v1_events_routes, NULL, NULL},
    {v1_webhooks_routes, NULL, NULL},  {v1_definitions_routes, NULL, NULL},
    {v1_schedules_routes, NULL, NULL}, {web_routes, NULL, NULL},
};
#define NV1_TABLES (sizeof route_tables / sizeof route_tables[0])

/* The i-th route table: v1's, then the views' the server was handed; NULL past the end. */
static const struct route_table *route_table_at(const struct server *srv, size_t i) {
    if (i < NV1_TABLES) return &route_tables[i];
    const struct route_table *v = srv->cfg.views;
    for (size_t k = NV1_TABLES; v && v->routes; k++, v++)
        if (k == i) return v;
    return NULL;
}

struct store *req_store(struct req *r) {
    return r->srv->store;
}

const struct limits *req_limits(struct req *r) {
    return &r->srv->cfg.limits;
}

/* The fast path takes no request with a query (http_head.h). */
const char *req_query(struct req *r, const char *key) {
    if (r->fast) return NULL;
    return MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, key);
}

/* A header value without the white space at its end, which is not the
 * value's (RFC 9112 5) and which libmicrohttpd keeps ("k " for "k"):
 * kept with the request. */
struct req_str {
    struct req_str *next;
    char s[];
};

/* A copy of s[0..n), NUL-ended, freed with the request. */
static const char *req_keep(struct req *r, const char *s, size_t n) {
    struct req_str *t = xmalloc(sizeof *t + n + 1);
    memcpy(t->s, s, n);
    t->s[n] = '\0';
    t->next = r->trimmed;
    r->trimmed = t;
    return t->s;
}

/* Host is the target's authority when the target is in absolute form
 * (RFC 9112 7.2: the Host field is then ignored), for auth.c's open-mode
 * check and for the links the views build alike. */
const char *req_header(struct req *r, const char *key) {
    if (r->fast) return http_fast_header(r->fast, key); /* never has any */
    if (r->authority && strcasecmp(key, MHD_HTTP_HEADER_HOST) == 0) return r->authority;
    const char *v = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, key);
    size_t n = v ? strlen(v) : 0;
    if (!n || (v[n - 1] != ' ' && v[n - 1] != '\t')) return v;
    while (n && (v[n - 1] == ' ' || v[n - 1] == '\t'))
        n--;
    return req_keep(r, v, n);
}

const struct sockaddr *req_client_addr(struct req *r) {
    if (r->fast) return http_fast_client_addr(r->fast);
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(r->conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    return ci ? ci->client_addr : NULL;
}

int req_socket(struct req *r) {
    if (r->fast) return http_fast_fd(r->fast);
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(r->conn, MHD_CONNECTION_INFO_CONNECTION_FD);
    return ci ? ci->connect_fd : -1;
}

const char *req_scheme(struct req *r) {
    return r->srv->tls_cert ? "https" : "http";
}

struct query_iter {
    int (*fn)(void *cls, const char *key, const char *value);
    void *cls;
    int rc;
};

static enum MHD_Result query_iter_one(void *cls, enum MHD_ValueKind kind, const char *key,
                                      const char *value) {
    (void)kind;
    struct query_iter *it = cls;
    it->rc = it->fn(it->cls, key, value ? value : "");
    return it->rc ? MHD_NO : MHD_YES;
}

int req_query_each(struct req *r, int (*fn)(void *cls, const char *key, const char *value),
                   void *cls) {
    struct query_iter it = {fn, cls, 0};
    if (r->fast) return 0;
    MHD_get_connection_values(r->conn, MHD_GET_ARGUMENT_KIND, query_iter_one, &it);
    return it.rc;
}

void reply_add_header(struct req *r, const char *name, const char *value) {
    if (r->nhdr == 4) return;
    r->hdr_name[r->nhdr] = xstrdup(name);
    r->hdr_value[r->nhdr] = xstrdup(value);
    r->nhdr++;
}

void reply_add_location(struct req *r, const char *collection, const char *id) {
    char loc[128];
    snprintf(loc, sizeof loc, "/v1/%s/%s", collection, id);
    reply_add_header(r, "Location", loc);
}

/* The request no longer waits: its places among the waiting requests are
 * free again. At the reply, so that a client that has its answer can wait
 * again at once; and when the request ends without one. */
static void req_waiter_release(struct req *r) {
    if (r->waiter_counted) atomic_fetch_sub(&r->srv->waiters, 1);
    if (r->waiter_token_counted)
        key_count_give(&r->srv->token_waiters, r->token_id, strlen(r->token_id));
    r->waiter_counted = r->waiter_token_counted = false;
}

/* A 2xx reply of this many bytes or more is counted while it is not sent
 * whole: a smaller one is held for a client that does not read only by
 * the connection it came on (one reply at a time), as the kernel's own
 * buffer holds bytes for it. */
#define UNSENT_COUNT_MIN (16 * 1024)

/* A 2xx reply of len bytes (at least UNSENT_COUNT_MIN) holds them until it
 * is sent whole or its connection is gone (req_free gives them back). A
 * read's (a GET or HEAD, or a view's read sent by POST: r->reply_is_read) is
 * refused past --max-unsent-bytes or its token's
 * --max-unsent-bytes-per-token: false, with e set. A reply larger than a
 * cap goes when nothing else is held under it, or it could never go. A
 * write's reply is counted and never refused: what it answers is done. */
static bool req_unsent_take(struct req *r, size_t len, struct tm_error *e) {
    struct server *srv = r->srv;
    const struct limits *lim = &srv->cfg.limits;
    bool read = r->reply_is_read || strcmp(r->method, "GET") == 0 || strcmp(r->method, "HEAD") == 0;
    int64_t n = (int64_t)len;
    int64_t max = read && lim->unsent_max_bytes ? (int64_t)lim->unsent_max_bytes : INT64_MAX;
    int64_t token_max = read && lim->unsent_per_token_max_bytes
                            ? (int64_t)lim->unsent_per_token_max_bytes
                            : INT64_MAX;
    int64_t before = atomic_fetch_add(&srv->unsent_bytes, n);
    const char *flag = NULL, *whose = NULL;
    int64_t cap = 0;
    if (before > 0 && before > max - n)
        flag = "--max-unsent-bytes", whose = "their", cap = max;
    else if (!key_count_take_n(&srv->token_unsent, r->token_id, strlen(r->token_id), n, token_max))
        flag = "--max-unsent-bytes-per-token", whose = "this token's", cap = token_max;
    if (flag) {
        atomic_fetch_sub(&srv->unsent_bytes, n);
        atomic_fetch_add(&srv->unsent_refused, 1);
        err_set(e, TM_EUNAVAILABLE, "",
                "replies not yet taken by %s clients would hold more than %lld bytes with this "
                "one (%s); try again once they are read",
                whose, (long long)cap, flag);
        return false;
    }
    r->unsent_held = len;
    return true;
}

/* Gives back what r's reply held of those bounds. */
static void req_unsent_release(struct req *r) {
    if (!r->unsent_held) return;
    key_count_give_n(&r->srv->token_unsent, r->token_id, strlen(r->token_id),
                     (int64_t)r->unsent_held);
    atomic_fetch_sub(&r->srv->unsent_bytes, (int64_t)r->unsent_held);
    r->unsent_held = 0;
}

/* Drops the headers added for the reply (reply_add_header). */
static void req_headers_clear(struct req *r) {
    for (int i = 0; i < r->nhdr; i++) {
        free(r->hdr_name[i]);
        free(r->hdr_value[i]);
    }
    r->nhdr = 0;
}

static void reply_send(struct req *r, int status, char *body, size_t len, const char *type) {
    struct tm_error e;
    if (status / 100 == 2 && len >= UNSENT_COUNT_MIN && !req_unsent_take(r, len, &e)) {
        /* Not this reply, nor the headers it was to carry (its page's
         * links and counts): the refusal in the API's shape instead. */
        free(body);
        req_headers_clear(r);
        reply_error(r, &e);
        return;
    }
    req_waiter_release(r);
    r->status_sent = status;
    server_count_reply(r->srv, status);
    if (r->fast) {
        http_fast_reply(r, status, body, len, type);
        return;
    }
    struct MHD_Response *resp = MHD_create_response_from_buffer(
        len, body, body ? MHD_RESPMEM_MUST_FREE : MHD_RESPMEM_PERSISTENT);
    /* A body is what its type says (http_fast_reply too): a reply echoes
     * tenants' text, which no browser may sniff into a page or a script. */
    if (type) {
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, type);
        MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
    }
    for (int i = 0; i < r->nhdr; i++)
        MHD_add_response_header(resp, r->hdr_name[i], r->hdr_value[i]);
    MHD_queue_response(r->conn, (unsigned)status, resp);
    MHD_destroy_response(resp);
}

void reply_body(struct req *r, int status, struct buf *body, const char *content_type) {
    size_t len = body->len;
    reply_send(r, status, buf_detach(body), len, content_type);
}

void reply_json(struct req *r, int status, struct buf *body) {
    reply_body(r, status, body, "application/json");
}

void reply_task(struct req *r, int status, const struct task *t) {
    struct buf b;
    buf_init(&b);
    store_op_write_task(&b, &r->op, t);
    reply_json(r, status, &b);
}

size_t task_page_write(struct buf *b, const struct task_list *l, size_t max_bytes,
                       void (*write)(struct buf *b, const struct task *t), bool *more) {
    size_t n = 0;
    buf_putc(b, '[');
    while (n < l->n && (n == 0 || b->len < max_bytes)) {
        if (n) buf_putc(b, ',');
        write(b, l->tasks[n++]);
    }
    buf_putc(b, ']');
    *more = l->more || n < l->n;
    return n;
}

void reply_add_total(struct req *r, const struct task_list *l) {
    char total[24];
    snprintf(total, sizeof total, "%lld", (long long)l->total);
    reply_add_header(r, "X-Total-Count", total);
    if (l->total_capped) reply_add_header(r, "X-Total-Count-Capped", "true");
}

void reply_empty(struct req *r, int status) {
    reply_send(r, status, NULL, 0, NULL);
}

void error_json_write(struct buf *b, const struct tm_error *e) {
    int code = e->code ? e->code : TM_EINTERNAL;
    buf_puts(b, "{\"error\":{\"code\":");
    json_put_str(b, err_slug(code));
    json_put_key(b, "message", false);
    json_put_str(b, e->message[0] ? e->message : err_default_message(code));
    if (e->field[0]) {
        json_put_key(b, "field", false);
        json_put_str(b, e->field);
    }
    buf_puts(b, "}}");
}

static bool reply_has_header(const struct req *r, const char *name) {
    for (int i = 0; i < r->nhdr; i++)
        if (strcasecmp(r->hdr_name[i], name) == 0) return true;
    return false;
}

void reply_error(struct req *r, const struct tm_error *e) {
    int code = e->code ? e->code : TM_EINTERNAL;
    int status = err_http_status(code);
    struct buf b;
    buf_init(&b);
    if (r->write_error)
        r->write_error(&b, status, e);
    else
        error_json_write(&b, e);
    /* Past a rate or a cap (429), or the store or the server not able to
     * serve now (503): when to try again, which libtaskmill and `taskmill
     * work` wait for. */
    if (code == TM_ERATE || code == TM_EUNAVAILABLE) reply_add_header(r, "Retry-After", "1");
    /* A v1 401 says what it wants (RFC 6750), also when it is not a
     * refusal at the door (auth.c adds it there, for the views too) but
     * a waiting request cut because its token went (auth_watch.c). */
    if (code == TM_EUNAUTHENTICATED && !r->write_error && !reply_has_header(r, "WWW-Authenticate"))
        reply_add_header(r, "WWW-Authenticate", "Bearer realm=\"taskmill\"");
    reply_body(r, status, &b, r->error_type ? r->error_type : "application/json");
}

bool reply_if_op_failed(struct req *r) {
    if (!r->op.err.code) return false;
    reply_error(r, &r->op.err);
    return true;
}

void reply_op_empty(struct req *r) {
    if (!reply_if_op_failed(r)) reply_empty(r, 204);
}

void reply_op_task(struct req *r) {
    if (!reply_if_op_failed(r)) reply_task(r, 200, r->op.task);
}

void reply_error_code(struct req *r, int code, const char *field, const char *message) {
    struct tm_error e;
    err_set(&e, code, field, "%s", message ? message : err_default_message(code));
    reply_error(r, &e);
}

bool http_content_type_is_in(const char *ct, const char *const *types, const char *const *charsets,
                             int *charset) {
    *charset = -1;
    size_t n = strcspn(ct, ";");
    while (n && isspace((unsigned char)ct[n - 1]))
        n--;
    bool ok = false;
    for (size_t i = 0; types[i] && !ok; i++)
        ok = n == strlen(types[i]) && strncasecmp(ct, types[i], n) == 0;
    for (const char *p = strchr(ct, ';'); ok && p; p = strchr(p + 1, ';')) {
        const char *q = p + 1;
        while (isspace((unsigned char)*q))
            q++;
        if (!*q) continue;
        ok = strncasecmp(q, "charset=", 8) == 0;
        if (!ok) break; /* q may be shorter than "charset=" */
        const char *v = q + 8, *rest;
        size_t len;
        if (*v == '"') {
            v++;
            len = strcspn(v, "\"");
            rest = v[len] == '"' ? v + len + 1 : NULL;
        } else {
            len = strcspn(v, "; \t");
            rest = v + len;
        }
        ok = false;
        for (int i = 0; rest && charsets[i] && !ok; i++) {
            ok = len == strlen(charsets[i]) && strncasecmp(v, charsets[i], len) == 0;
            if (ok && *charset <= 0) *charset = i;
        }
        while (ok && *rest && *rest != ';') {
            if (!isspace((unsigned char)*rest)) ok = false;
            rest++;
        }
    }
    return ok;
}

bool http_content_type_is(const char *ct, const char *const *types) {
    static const char *const utf8[] = {"utf-8", NULL};
    int charset;
    return http_content_type_is_in(ct, types, utf8, &charset);
}

/* Whether a Content-Type names JSON text: exactly application/json (or
 * text/plain, what a browser's simple request sends). */
static bool http_content_type_is_json(const char *ct) {
    static const char *const json[] = {"application/json", "text/plain", NULL};
    return http_content_type_is(ct, json);
}

int req_json_body(struct req *r, bool empty_ok) {
    struct tm_error e;
    err_clear(&e);
    if (r->body.len == 0 && empty_ok) {
        r->json = json_object();
        return 0;
    }
    const char *ct = req_header(r, MHD_HTTP_HEADER_CONTENT_TYPE);
    if (ct && !http_content_type_is_json(ct)) {
        reply_error_code(r, TM_EMEDIA_TYPE, "Content-Type",
                         "'Content-Type' must be 'application/json' (UTF-8)");
        return -1;
    }
    r->json = json_parse_object(r->body.p ? r->body.p : "", r->body.len,
                                req_limits(r)->json_max_depth, &e);
    if (!r->json) {
        reply_error(r, &e);
        return -1;
    }
    return 0;
}

int req_json_fields(struct req *r, bool empty_ok, const char *const *fields) {
    if (req_json_body(r, empty_ok)) return -1;
    const char *key;
    json_t *v;
    json_object_foreach(r->json, key, v) {
        bool known = false;
        for (size_t i = 0; fields && fields[i] && !known; i++)
            known = strcmp(key, fields[i]) == 0;
        if (known) continue;
        struct tm_error e;
        err_set(&e, TM_EINVALID, key, "unknown field '%.64s'", key);
        reply_error(r, &e);
        return -1;
    }
    return 0;
}

/* The request's ops are done (on the store's writer): its handler goes on. */
static void req_resume(struct req *r) {
    if (r->fast)
        http_fast_resume(r);
    else
        MHD_resume_connection(r->conn);
}

static void req_suspend(struct req *r) {
    r->suspended = true;
    if (!r->fast) MHD_suspend_connection(r->conn);
}

static void req_op_done(struct store_op *op) {
    req_resume(op->udata);
}

/* Counts a request that will wait (a long-poll, a waiting claim) against
 * the limits on waiting requests, in all and per token; false after
 * replying 429 when it has no place. */
static bool req_waiter_admit(struct req *r) {
    if (r->waiter_counted) return true;
    /* A long-poll or a waiting claim holds a connection for long: cap them,
     * in all and per token, so one tenant cannot take every place. */
    const struct limits *lim = &r->srv->cfg.limits;
    struct tm_error e;
    if (lim->waiters_max > 0 && atomic_fetch_add(&r->srv->waiters, 1) >= lim->waiters_max) {
        atomic_fetch_sub(&r->srv->waiters, 1);
        err_set(&e, TM_ERATE, "", "%d requests are waiting already; try again", lim->waiters_max);
        reply_error(r, &e);
        return false;
    }
    if (lim->waiters_max <= 0) atomic_fetch_add(&r->srv->waiters, 1);
    r->waiter_counted = true;
    if (r->token_id[0] && lim->waiters_per_token_max > 0) {
        if (!key_count_take(&r->srv->token_waiters, r->token_id, strlen(r->token_id),
                            lim->waiters_per_token_max)) {
            err_set(&e, TM_ERATE, "", "this token has %d requests waiting already; try again",
                    lim->waiters_per_token_max);
            reply_error(r, &e);
            return false;
        }
        r->waiter_token_counted = true;
    }
    return true;
}

void req_submit(struct req *r, handler_fn on_resume) {
    /* Who asked, for the events of the change: the token, or "open" in open mode. */
    if (!r->op.actor) r->op.actor = r->token_id[0] ? r->token_id : "open";
    if (r->op.deadline_ms > 0 && !req_waiter_admit(r)) return;
    if (r->op.deadline_ms > 0) auth_wait_add(r, &r->op, 1);
    r->on_resume = on_resume;
    r->op.done = req_op_done;
    r->op.udata = r;
    req_suspend(r);
    store_submit(r->srv->store, &r->op);
}

static void req_many_done(struct store_op *op) {
    struct req *r = op->udata;
    if (atomic_fetch_sub(&r->ops_left, 1) == 1) req_resume(r);
}

void req_submit_many(struct req *r, struct store_op *ops, size_t n, handler_fn on_resume) {
    size_t todo = 0;
    bool waits = false;
    for (size_t i = 0; i < n; i++) {
        if (ops[i].err.code) continue;
        todo++;
        if (ops[i].deadline_ms > 0 && !req_waiter_admit(r)) return;
        waits |= ops[i].deadline_ms > 0;
    }
    if (waits) auth_wait_add(r, ops, n);
    const char *actor = r->token_id[0] ? r->token_id : "open";
    r->on_resume = on_resume;
    atomic_store(&r->ops_left, todo);
    req_suspend(r);
    struct store_op **list = xmalloc((todo ? todo : 1) * sizeof *list);
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (ops[i].err.code) continue; /* refused before the store: not sent */
        if (!ops[i].actor) ops[i].actor = actor;
        ops[i].done = req_many_done;
        ops[i].udata = r;
        list[k++] = &ops[i];
    }
    /* Together, so that nothing comes between them (store_submit_list). */
    store_submit_list(r->srv->store, list, k);
    free(list);
}

/*
 * Routing (server_int.h). The routes' patterns are split once, when the
 * daemon starts (and the fast path's, when it starts), and a request's
 * path once, so that trying a route is a count of segments and one memcmp
 * a literal segment (docs/performance.md: walking both strings route by
 * route was a quarter of a status read's instructions).
 */
void route_path_split(const char *s, struct path_segs *ps, bool pattern) {
    ps->n = -1;
    if (*s != '/') return;
    ps->n = 0;
    while (*s == '/') {
        const char *p = ++s;
        s = strchrnul(s, '/');
        if (ps->n == ROUTE_MAX_SEGS) {
            ps->n = -2;
            return;
        }
        ps->seg[ps->n] = pattern && *p == ':' ? NULL : p;
        ps->len[ps->n++] = (size_t)(s - p);
    }
}

bool route_segs_match(const struct path_segs *pat, const struct path_segs *path, struct req *r) {
    if (pat->n != path->n || pat->n < 0) return false;
    int n = 0;
    for (int k = 0; k < pat->n; k++) {
        if (pat->seg[k]) {
            if (pat->len[k] != path->len[k] || memcmp(pat->seg[k], path->seg[k], pat->len[k]) != 0)
                return false;
        } else {
            if (path->len[k] == 0 || path->len[k] >= sizeof r->param_buf[0] || n == REQ_MAX_PARAMS)
                return false;
            n++;
        }
    }
    if (!r) return true;
    n = 0;
    for (int k = 0; k < pat->n; k++) {
        if (pat->seg[k]) continue;
        memcpy(r->param_buf[n], path->seg[k], path->len[k]);
        r->param_buf[n][path->len[k]] = '\0';
        r->param[n] = r->param_buf[n];
        n++;
    }
    r->nparams = n;
    return true;
}

/* Matches "/v1/tasks/:id" against a path, capturing ':' segments into r
 * (none when r is NULL). */
bool route_match(const char *pattern, const char *path, struct req *r) {
    struct path_segs pat, ps;
    route_path_split(pattern, &pat, true);
    route_path_split(path, &ps, false);
    return route_segs_match(&pat, &ps, r);
}

struct route_segs {
    struct path_segs pat;
};

static void route_segs_free(struct server *srv) {
    for (size_t t = 0; t < srv->nroute_segs; t++)
        free(srv->route_segs[t]);
    free(srv->route_segs);
    srv->route_segs = NULL;
    srv->nroute_segs = 0;
}

/* Splits every route's pattern; -1 with a message for one that is longer
 * than ROUTE_MAX_SEGS (a route no path could reach). */
static int route_segs_init(struct server *srv) {
    size_t nt = 0;
    while (route_table_at(srv, nt))
        nt++;
    srv->route_segs = xcalloc(nt, sizeof *srv->route_segs);
    srv->nroute_segs = nt;
    for (size_t t = 0; t < nt; t++) {
        const struct route *routes = route_table_at(srv, t)->routes;
        size_t n = 0;
        while (routes[n].method)
            n++;
        srv->route_segs[t] = xcalloc(n ? n : 1, sizeof *srv->route_segs[t]);
        for (size_t i = 0; i < n; i++) {
            route_path_split(routes[i].pattern, &srv->route_segs[t][i].pat, true);
            if (srv->route_segs[t][i].pat.n < 0) {
                fprintf(stderr, "taskmill: route '%s' is not a path of at most %d segments\n",
                        routes[i].pattern, ROUTE_MAX_SEGS);
                route_segs_free(srv);
                return -1;
            }
        }
    }
    return 0;
}

/* Whether the i-th route of table t matches the path (split into path);
 * its ':' segments captured into r. */
static bool route_matches(struct req *r, const struct path_segs *path, size_t t, size_t i) {
    return route_segs_match(&r->srv->route_segs[t][i].pat, path, r);
}

/* True when the pattern's first segment is the path's (a literal, not ':'). */
static bool route_same_root(const char *pattern, const char *path) {
    size_t pl = strcspn(pattern + 1, "/"), sl = strcspn(path + 1, "/");
    return pattern[0] == '/' && path[0] == '/' && pl > 0 && pl == sl && pattern[1] != ':' &&
           memcmp(pattern + 1, path + 1, pl) == 0;
}

/* Picks the error writer of the API that owns the path (see http.h). */
static void req_pick_error_writer(struct req *r) {
    const struct route_table *tb;
    struct path_segs path;
    route_path_split(r->path, &path, false);
    for (int pass = 0; pass < 2; pass++) {
        for (size_t t = 0; (tb = route_table_at(r->srv, t)); t++) {
            for (const struct route *rt = tb->routes; rt->method; rt++) {
                if (pass == 0 ? route_matches(r, &path, t, (size_t)(rt - tb->routes))
                              : route_same_root(rt->pattern, r->path)) {
                    r->write_error = tb->write_error;
                    r->error_type = tb->error_type;
                    if (pass == 0) { /* where req_dispatch starts looking */
                        r->first_table = t;
                        r->first_route = rt;
                    }
                    return;
                }
            }
        }
    }
}

/* A query parameter refused by req_refuse_not_utf8: its name, and why. */
struct query_bad {
    const char *key;
    bool nul; /* it holds %00, which http_unescape keeps as those three characters */
};

static int query_not_utf8(void *cls, const char *key, const char *value) {
    struct query_bad *bad = cls;
    bad->nul = strstr(key, "%00") || strstr(value, "%00");
    if (!bad->nul && utf8_valid(key, strlen(key)) && utf8_valid(value, strlen(value))) return 0;
    bad->key = key;
    return 1;
}

/* What a path or a query names reaches the store as text, and PostgreSQL
 * refuses text that is not UTF-8 (a 500, and with a write the batch's
 * transaction). No API names anything so: a path segment that is not
 * UTF-8 names nothing there is (404); a query parameter is refused by its
 * name (400). Both in the shape of the API the path is in. So is a query
 * parameter with %00 in its name or value: http_unescape keeps it as the
 * three characters, so that a NUL never cuts a value short unseen, and
 * it would be taken for them ("name_prefix=a%00" matched a name
 * "a%00x"); no API names anything with a NUL. "%2500", the text "%00",
 * is the same once unescaped, and refused too, as in a path (and in a
 * schedule's name, schedule.c). Here, before any handler,
 * so that v1 and each view refuse it alike, in their own shapes. */
static bool req_refuse_not_utf8(struct req *r) {
    for (int i = 0; i < r->nparams; i++) {
        if (!utf8_valid(r->param[i], strlen(r->param[i]))) {
            struct tm_error e;
            err_set(&e, TM_ENOT_FOUND, "", "no such resource: '%.64s' is not UTF-8", r->path);
            reply_error(r, &e);
            return true;
        }
    }
    struct query_bad bad = {NULL, false};
    if (req_query_each(r, query_not_utf8, &bad)) {
        struct tm_error e;
        if (bad.nul)
            err_set(&e, TM_EINVALID, bad.key,
                    "query parameter '%.100s' must not hold a NUL byte (%%00) or the text '%%00'",
                    bad.key);
        else
            err_set(&e, TM_EINVALID, bad.key, "query parameter '%.64s' must be UTF-8", bad.key);
        reply_error(r, &e);
        return true;
    }
    return false;
}

/* Calls each(rt, cls) for every route whose pattern matches r's path, in
 * the tables' order, its ':' segments captured into r first, until each
 * returns true; returns that route, or NULL. The routes before the first
 * that matches (req_pick_error_writer found it, its segments kept) are not
 * tried again. */
static const struct route *req_path_routes(struct req *r,
                                           bool (*each)(const struct route *rt, void *cls),
                                           void *cls) {
    const struct route_table *tb;
    struct path_segs path = {.n = -3}; /* split when a route past the first is tried */
    for (size_t t = r->first_table; r->first_route && (tb = route_table_at(r->srv, t)); t++) {
        const struct route *rt = t == r->first_table ? r->first_route : tb->routes;
        for (; rt->method; rt++) {
            if (rt != r->first_route) {
                if (path.n == -3) route_path_split(r->path, &path, false);
                if (!route_matches(r, &path, t, (size_t)(rt - tb->routes))) continue;
            }
            if (each(rt, cls)) return rt;
        }
    }
    return NULL;
}

struct route_find {
    const char *method;
    bool head, path_known;
    const struct route *get; /* HEAD: the path's first GET route */
};

static bool route_find_each(const struct route *rt, void *cls) {
    struct route_find *f = cls;
    f->path_known = true;
    if (strcmp(rt->method, f->method) == 0) return true;
    if (f->head && !f->get && strcmp(rt->method, "GET") == 0) f->get = rt;
    return false;
}

static bool route_is(const struct route *rt, void *cls) {
    return rt == cls;
}

/* The route for r's method and path, its ':' segments captured into r, or
 * NULL; *path_known says whether a route of another method has the path.
 * HEAD takes the GET route of a path that has no HEAD route of its own
 * (RFC 9110 9.3.2: libmicrohttpd sends a HEAD's reply without its body). */
static const struct route *req_route_find(struct req *r, bool *path_known) {
    struct route_find f = {.method = r->method, .head = strcmp(r->method, "HEAD") == 0};
    const struct route *rt = req_path_routes(r, route_find_each, &f);
    *path_known = f.path_known;
    if (rt || !f.get) return rt;
    /* The GET route's ':' segments again: a later route's match overwrote them. */
    return req_path_routes(r, route_is, (void *)f.get);
}

/* An Allow field's value being built: its methods, each once. */
struct allow {
    char *out;
    size_t cap, len;
};

static void allow_add(struct allow *a, const char *method) {
    size_t m = strlen(method);
    for (const char *p = a->out; *p; p += strspn(p, ", ")) {
        size_t k = strcspn(p, ",");
        if (k == m && strncmp(p, method, m) == 0) return;
        p += k;
    }
    if (a->len + m + 3 > a->cap) return; /* no room: what fitted */
    a->len +=
        (size_t)snprintf(a->out + a->len, a->cap - a->len, "%s%s", a->len ? ", " : "", method);
}

static bool allow_each(const struct route *rt, void *cls) {
    allow_add(cls, rt->method);
    if (strcmp(rt->method, "GET") == 0) allow_add(cls, "HEAD"); /* req_route_find */
    return false;
}

/* The methods of the routes that have r's path, as an Allow field gives
 * them ("GET, HEAD, DELETE"), each once, in the routes' order. */
static void req_allowed_methods(struct req *r, char *out, size_t cap) {
    struct allow a = {out, cap, 0};
    out[0] = '\0';
    req_path_routes(r, allow_each, &a);
}

/* Replies 405, with the path's methods in Allow (RFC 9110 15.5.6), or 404
 * to a request no route serves. */
static void req_reply_no_route(struct req *r, bool path_known) {
    if (path_known) {
        char allow[128];
        req_allowed_methods(r, allow, sizeof allow);
        if (allow[0]) reply_add_header(r, "Allow", allow);
        reply_error_code(r, TM_EMETHOD, "", "method not allowed on this path");
        return;
    }
    struct tm_error e;
    err_set(&e, TM_ENOT_FOUND, "", "no route for '%.16s %.64s'", r->method, r->path);
    reply_error(r, &e);
}

/* How long a token checked before its request's body stays checked. */
#define HTTP_REAUTH_MS 1000

/* Runs the handler of the route for the method and path; none means 404
 * (405 when another method's route has the path). */
static void req_dispatch(struct req *r) {
    bool path_known;
    const struct route *rt = req_route_find(r, &path_known);
    if (!rt) {
        req_reply_no_route(r, path_known);
        return;
    }
    /* Checked before its body was read: again, should the body have taken
     * long enough for its token to have been revoked or to have expired
     * meanwhile (a check is a store read, so not for every body). */
    bool fresh = r->authed && time_mono_ms() - r->authed_mono <= HTTP_REAUTH_MS;
    if (!fresh && auth_check(r, rt->perm)) return;
    if (req_refuse_not_utf8(r)) return;
    r->route = rt;
    rt->handler(r);
}

/* A body read before its credentials are checked (r->public_body) holds
 * n more bytes, if --max-public-body-bytes allows: all such bodies at once
 * are bounded, since anyone may send them. False when it does not. */
static bool req_public_take(struct req *r, size_t n) {
    struct server *srv = r->srv;
    int64_t max = (int64_t)srv->cfg.limits.public_body_max_bytes;
    if (max <= 0) max = 64 << 20;
    if (atomic_fetch_add(&srv->public_body_bytes, (int64_t)n) + (int64_t)n > max) {
        atomic_fetch_sub(&srv->public_body_bytes, (int64_t)n);
        atomic_fetch_add(&srv->public_body_refused, 1);
        return false;
    }
    r->public_held += n;
    return true;
}

/* Gives back what r's body held of that bound. */
static void req_public_release(struct req *r) {
    if (!r->public_held) return;
    atomic_fetch_sub(&r->srv->public_body_bytes, (int64_t)r->public_held);
    r->public_held = 0;
}

/*
 * A request that comes with a body is routed and authenticated once its
 * head is in, before libmicrohttpd reads its body: a client without
 * credentials (or with a bad token, or another role's) cannot make the
 * server hold up to --max-body-bytes for each of its connections. Routes
 * that need no token (PERM_PUBLIC: their body may be the credentials) are
 * left to read theirs. True when refused, the reply queued (libmicrohttpd
 * closes the connection after it; a client that sent `Expect:
 * 100-continue` gets it instead of `100 Continue`); on success r->authed
 * spares req_dispatch the second look.
 */
static bool req_refused_before_body(struct req *r) {
    bool path_known;
    const struct route *rt = req_route_find(r, &path_known);
    if (!rt) {
        req_reply_no_route(r, path_known);
        return true;
    }
    if (rt->perm & PERM_PUBLIC) {
        r->public_body = true;
        return false;
    }
    if (auth_check(r, rt->perm)) return true;
    r->authed = true;
    r->authed_mono = time_mono_ms();
    return false;
}

struct cl_count {
    int n;
    bool differ;
    const char *first;
    size_t head_bytes;     /* the head's bytes, as sent near enough: every field's */
    const char *bad_name;  /* a field name that is not a token ("Content-Length ") */
    int hosts;             /* Host fields */
    int tes;               /* Transfer-Encoding fields */
    const char *bad_value; /* the name of a field whose value holds a control character */
};

/* Whether s is a token (RFC 9110 5.6.2): what a field name must be. */
static bool http_is_token(const char *s) {
    if (!*s) return false;
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (!isalnum(c) && !strchr("!#$%&'*+-.^_`|~", c)) return false;
    }
    return true;
}

/* Whether a field value holds a control character other than tab (RFC
 * 9110 5.5): a bare CR too, which libmicrohttpd keeps in the value. A NUL
 * it does not: its copy ends there (the fast path refuses one, HEAD_BAD). */
static bool http_has_ctl(const char *v) {
    for (; *v; v++)
        if (((unsigned char)*v < 0x20 && *v != '\t') || *v == 0x7f) return true;
    return false;
}

/* What libmicrohttpd's pool keeps past --max-header-bytes: the reply's head. */
#define HTTP_REPLY_ROOM (16 * 1024)

/* Adds a query argument's bytes ("k=v&") to the head's (a cl_count). */
static enum MHD_Result http_count_arg(void *cls, enum MHD_ValueKind kind, const char *key,
                                      const char *value) {
    (void)kind;
    ((struct cl_count *)cls)->head_bytes += strlen(key) + (value ? strlen(value) : 0) + 2;
    return MHD_YES;
}

static enum MHD_Result http_count_cl(void *cls, enum MHD_ValueKind kind, const char *key,
                                     const char *value) {
    (void)kind;
    struct cl_count *c = cls;
    c->head_bytes += strlen(key) + (value ? strlen(value) : 0) + 4; /* ": " and CRLF */
    if (!c->bad_name && !http_is_token(key)) c->bad_name = key;
    if (!c->bad_value && value && http_has_ctl(value)) c->bad_value = key;
    if (strcasecmp(key, MHD_HTTP_HEADER_HOST) == 0) c->hosts++;
    if (strcasecmp(key, MHD_HTTP_HEADER_TRANSFER_ENCODING) == 0) c->tes++;
    if (strcasecmp(key, MHD_HTTP_HEADER_CONTENT_LENGTH) != 0) return MHD_YES;
    if (c->n++ == 0)
        c->first = value;
    else if (strcmp(c->first ? c->first : "", value ? value : "") != 0)
        c->differ = true;
    return MHD_YES;
}

/* Checks the framing of a request before its body is read: a body over
 * the limit by its Content-Length, a Transfer-Encoding other than chunked,
 * both framings at once, Content-Length headers that disagree, NUL in the
 * path (%00: http_unescape keeps it), a field name that is not a token.
 * The last is RFC 9112 5.1's "whitespace between a field name and colon":
 * libmicrohttpd keeps "Content-Length : 52" as a field of another name and
 * frames the request as having no body, so the body would be read as the
 * next request (smuggled past a proxy that frames it by that header).
 * An HTTP/1.1 request (any but HTTP/1.0: libmicrohttpd takes 1.0 to 1.9)
 * must carry a Host of a host and an optional port (RFC 9112 3.2), and no
 * request two (libmicrohttpd's lookup takes the first, so auth.c's
 * open-mode check and the handlers would each read one of two names);
 * libmicrohttpd's own check (MHD_OPTION_STRICT_FOR_CLIENT) answers in its
 * HTML, not the API's shape. A field value with a control character but
 * tab (RFC 9110 5.5) is refused by its name.
 * 1 with e filled, or 0. */
static int http_framing_refused(struct req *r, const char *version, struct tm_error *e) {
    struct MHD_Connection *conn = r->conn;
    size_t max = r->srv->cfg.limits.body_max_bytes;
    const char *te =
        MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_TRANSFER_ENCODING);
    const char *cl =
        MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
    /* The request line ("GET /path?query HTTP/1.1\r\n") and the fields. */
    struct cl_count n = {.head_bytes = strlen(r->method) + strlen(r->path) + 12};
    MHD_get_connection_values(conn, MHD_HEADER_KIND, http_count_cl, &n);
    MHD_get_connection_values(conn, MHD_GET_ARGUMENT_KIND, http_count_arg, &n);
    size_t head_max =
        r->srv->cfg.limits.header_max_bytes ? r->srv->cfg.limits.header_max_bytes : 16 * 1024;
    if (n.head_bytes > head_max) {
        err_set(e, TM_EHEADERS_TOO_LARGE, "", "request headers exceed %zu bytes", head_max);
        return 1;
    }
    if (n.bad_name) {
        err_set(e, TM_EINVALID, n.bad_name,
                "header name '%.40s' is not a token (no white space before ':')", n.bad_name);
        return 1;
    }
    if (n.bad_value) {
        err_set(e, TM_EINVALID, n.bad_value, HTTP_FIELD_CTL_MESSAGE, n.bad_value);
        return 1;
    }
    if (n.hosts == 0 && strcmp(version, MHD_HTTP_VERSION_1_0) != 0) {
        err_set(e, TM_EINVALID, "Host", "an HTTP/1.1 request must carry a 'Host' header");
        return 1;
    }
    if (n.hosts > 1) {
        err_set(e, TM_EINVALID, "Host", "a request must carry one 'Host' header, not %d", n.hosts);
        return 1;
    }
    const char *host = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_HOST);
    size_t host_len = host ? strlen(host) : 0;
    while (host_len && (host[host_len - 1] == ' ' || host[host_len - 1] == '\t'))
        host_len--; /* not the value's (RFC 9112 5) */
    if (host && !http_host_valid(host, host_len)) {
        /* RFC 9112 3.2: an invalid Host is a 400, empty too (an http URI has a host). */
        err_set(e, TM_EINVALID, "Host", "'Host' must be a host and an optional port, not '%.*s'",
                (int)(host_len < 100 ? host_len : 100), host);
        return 1;
    }
    if (strstr(r->path, "%00")) {
        err_set(e, TM_EINVALID, "path", "the path must not hold a NUL byte (%%00)");
        return 1;
    }
    /* Codings are case-insensitive, and white space after the value is not
     * its (RFC 9112 5); but libmicrohttpd 0.9.75 dechunks only a value of
     * exactly "chunked", case aside, and reads any other body up to the
     * close: "chunked " is refused by what it is, not as another coding. */
    size_t te_len = te ? strlen(te) : 0;
    while (te_len && (te[te_len - 1] == ' ' || te[te_len - 1] == '\t'))
        te_len--;
    if (te && te_len == 7 && strncasecmp(te, "chunked", 7) == 0 && te[7]) {
        err_set(e, TM_EINVALID, "Transfer-Encoding",
                "'Transfer-Encoding' must be 'chunked' with no white space after it");
        return 1;
    }
    if (te && strcasecmp(te, "chunked") != 0) {
        err_set(e, TM_EINVALID, "Transfer-Encoding",
                "'Transfer-Encoding' '%.*s' is not supported: send the body plain or chunked",
                (int)(te_len < 40 ? te_len : 40), te);
        return 1;
    }
    if (te && strcmp(version, MHD_HTTP_VERSION_1_0) == 0) {
        /* RFC 9112 6.1: HTTP/1.0 has no chunked coding; its framing is faulty. */
        err_set(e, TM_EINVALID, "Transfer-Encoding",
                "an HTTP/1.0 request must not carry 'Transfer-Encoding': send 'Content-Length'");
        return 1;
    }
    if (n.tes > 1) { /* "chunked" twice is not chunked (RFC 9112 6.1) */
        err_set(e, TM_EINVALID, "Transfer-Encoding",
                "a request must carry one 'Transfer-Encoding' header, not %d", n.tes);
        return 1;
    }
    if (te && n.n) {
        err_set(e, TM_EINVALID, "Content-Length",
                "a request must not carry both 'Transfer-Encoding' and 'Content-Length'");
        return 1;
    }
    if (n.differ) {
        err_set(e, TM_EINVALID, "Content-Length", "the 'Content-Length' headers disagree");
        return 1;
    }
    if (cl && strtoull(cl, NULL, 10) > max) {
        err_set(e, TM_ETOO_LARGE, "", "request body exceeds %zu bytes", max);
        return 1;
    }
    return 0;
}

/* Decodes %XX in place, as libmicrohttpd's own unescaper, but keeps %00
 * as it is, so a NUL never cuts a path or value short unseen:
 * http_framing_refused refuses such a path. Returns the new length. */
static size_t http_unescape(void *cls, struct MHD_Connection *conn, char *s) {
    (void)cls;
    (void)conn;
    char *w = s;
    for (const char *p = s; *p; p++) {
        if (p[0] == '%' && isxdigit((unsigned char)p[1]) && isxdigit((unsigned char)p[2]) &&
            !(p[1] == '0' && p[2] == '0')) {
            char hex[3] = {p[1], p[2], '\0'};
            *w++ = (char)strtol(hex, NULL, 16);
            p += 2;
        } else {
            *w++ = *p;
        }
    }
    *w = '\0';
    return (size_t)(w - s);
}

struct req *req_new(struct server *srv, const char *method, const char *path) {
    struct req *r = xcalloc(1, sizeof *r);
    r->srv = srv;
    r->method = method;
    r->path = path;
    r->ns = NULL;
    r->t_start_mono = time_mono_ms();
    buf_init(&r->body);
    req_pick_error_writer(r);
    return r;
}

void req_start(struct req *r) {
    if (atomic_load(&r->srv->stopping)) {
        struct tm_error e;
        err_set(&e, TM_EUNAVAILABLE, "", "the server is stopping");
        reply_error(r, &e);
        return;
    }
    req_dispatch(r);
}

void req_resumed(struct req *r) {
    r->suspended = false;
    handler_fn next = r->on_resume;
    r->on_resume = NULL;
    next(r);
}

void req_free(struct req *r) {
    req_public_release(r);
    req_unsent_release(r);
    auth_wait_remove(r);
    store_op_release(&r->op);
    req_waiter_release(r);
    free(r->ns_owned);
    for (struct req_str *t = r->trimmed, *next; t; t = next) {
        next = t->next;
        free(t);
    }
    if (r->owned_free) r->owned_free(r->owned);
    json_decref(r->json);
    buf_release(&r->body);
    req_headers_clear(r);
    free(r);
}

/* An absolute-form target ("http://authority/path", RFC 9112 3.2.2),
 * which an origin server must accept: its path, "/" when it has none
 * (sets *authority and its length), or url itself for any other target.
 * libmicrohttpd has taken the query off already. */
static const char *http_target_path(const char *url, const char **authority, size_t *len) {
    *authority = NULL;
    *len = 0;
    size_t scheme = strncasecmp(url, "http://", 7) == 0    ? 7
                    : strncasecmp(url, "https://", 8) == 0 ? 8
                                                           : 0;
    if (!scheme) return url;
    *authority = url + scheme;
    *len = strcspn(*authority, "/");
    return (*authority)[*len] ? *authority + *len : "/";
}

/* Whether an absolute-form target's authority can stand for Host. 0, or 1
 * with e filled. */
static int http_authority_refused(const char *a, size_t n, struct tm_error *e) {
    if (n == 0) {
        err_set(e, TM_EINVALID, "target",
                "an absolute request target must name a host ('http://host/path')");
        return 1;
    }
    if (!http_host_valid(a, n)) {
        err_set(e, TM_EINVALID, "target",
                "the request target's authority '%.*s' must be a host and port only",
                (int)(n < 100 ? n : 100), a);
        return 1;
    }
    return 0;
}

/* Whether the request announces a body: a Content-Length above 0, or
 * chunked (http_framing_refused has refused any other framing). */
static bool http_has_body(struct MHD_Connection *conn) {
    const char *cl =
        MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
    if (MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_TRANSFER_ENCODING))
        return true;
    return cl && strtoull(cl, NULL, 10) > 0;
}

/* The connection's head_watch entry (http_connection), or NULL. */
static struct head_conn *http_head_conn(struct MHD_Connection *conn) {
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    return ci ? ci->socket_context : NULL;
}

/*
 * Whether a body announced past --max-body-bytes is read and dropped
 * before its 413, rather than refused at once: when its Content-Length is
 * at most HTTP_DISCARD_FACTOR times the cap and the client sent no
 * `Expect: 100-continue` (that one waits, and gets the 413 instead). A
 * client that sends its whole body without waiting for an answer (curl
 * without Expect, most libraries) otherwise had its connection closed
 * under its body's bytes, which the kernel answers with a reset that can
 * reach it before the 413 does: the client saw "connection reset" or a
 * failed send, not the refusal (RFC 9112 9.6 asks a server to close in
 * stages for this). Past the factor the connection is closed at once, as
 * before: the body's first --max-body-bytes only buy it time (head_watch).
 */
#define HTTP_DISCARD_FACTOR 4
static bool http_body_dropped_first(struct MHD_Connection *conn, size_t max) {
    const char *expect = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Expect");
    if (expect && *expect) return false;
    const char *cl =
        MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
    return cl && strtoull(cl, NULL, 10) / HTTP_DISCARD_FACTOR <= max;
}

static enum MHD_Result http_access(void *cls, struct MHD_Connection *conn, const char *url,
                                   const char *method, const char *version, const char *upload_data,
                                   size_t *upload_data_size, void **con_cls) {
    struct server *srv = cls;
    struct req *r = *con_cls;
    if (!r) {
        const char *authority;
        size_t authority_len;
        r = req_new(srv, method, http_target_path(url, &authority, &authority_len));
        r->conn = conn;
        head_watch_head_in(srv, http_head_conn(conn));
        if (authority) r->authority = req_keep(r, authority, authority_len);
        /* A request in progress may wait, stream or upload slowly: it gets
         * the long timeout; http_completed gives the idle one back. */
        MHD_set_connection_option(conn, MHD_CONNECTION_OPTION_TIMEOUT,
                                  (unsigned)http_long_seconds(&srv->cfg.limits));
        *con_cls = r;
        /* Refused before the body is read: no 100 Continue is sent, and
         * libmicrohttpd closes the connection after the reply. */
        struct tm_error e;
        if (http_framing_refused(r, version, &e) ||
            (authority && http_authority_refused(authority, authority_len, &e))) {
            r->body_too_large = true; /* nothing of a body is kept */
            /* Too large by its Content-Length (framing's last check): answered
             * once the body is in and dropped, when it is not much too large,
             * and only after its route and credentials pass (no body is read
             * for a request they refuse). */
            if (e.code != TM_ETOO_LARGE ||
                !http_body_dropped_first(conn, srv->cfg.limits.body_max_bytes))
                reply_error(r, &e);
            else if (!atomic_load(&srv->stopping))
                req_refused_before_body(r);
        } else if (http_has_body(conn) && !atomic_load(&srv->stopping) &&
                   req_refused_before_body(r)) {
            r->body_too_large = true;
        }
        return MHD_YES;
    }
    if (*upload_data_size) {
        head_watch_body_part(srv, http_head_conn(conn), *upload_data_size);
        if (!r->body_too_large && !r->public_busy) {
            if (r->body.len + *upload_data_size > srv->cfg.limits.body_max_bytes) {
                r->body_too_large = true;
                buf_release(&r->body);
                req_public_release(r);
            } else if (r->public_body && !req_public_take(r, *upload_data_size)) {
                r->public_busy = true;
                buf_release(&r->body);
                req_public_release(r);
            } else {
                buf_put(&r->body, upload_data, *upload_data_size);
            }
        }
        *upload_data_size = 0;
        return MHD_YES;
    }
    if (!r->body_in) { /* the first call after the body (or a head without one) */
        r->body_in = true;
        head_watch_body_in(srv, http_head_conn(conn));
    }
    if (r->suspended) {
        /* Resumed by the store: the op is done. */
        req_resumed(r);
        return MHD_YES;
    }
    if (r->status_sent) return MHD_YES;
    if (r->body_too_large && !atomic_load(&srv->stopping)) {
        struct tm_error e;
        err_set(&e, TM_ETOO_LARGE, "", "request body exceeds %zu bytes",
                srv->cfg.limits.body_max_bytes);
        reply_error(r, &e);
        return MHD_YES;
    }
    if (r->public_busy && !atomic_load(&srv->stopping)) {
        struct tm_error e;
        err_set(&e, TM_EUNAVAILABLE, "",
                "too many request bodies are being read before their credentials are checked "
                "(--max-public-body-bytes); try again");
        reply_error(r, &e);
        return MHD_YES;
    }
    req_start(r);
    return MHD_YES;
}

/* Whether the fast path accepts the connections (plain HTTP, not
 * --no-fast-path): then libmicrohttpd has only those it hands on. */
static bool http_fast_is_on(const struct server *srv) {
    return !srv->tls_cert && !srv->cfg.http_fast_off;
}

/* libmicrohttpd's accept policy: the per-address cap (conn_limit.c). Not
 * for a connection the fast path hands on (all of them, when it runs):
 * the fast path admitted it at its accept and counts it until
 * libmicrohttpd starts it (http_connection). */
static enum MHD_Result http_accept(void *cls, const struct sockaddr *addr, socklen_t addrlen) {
    (void)addrlen;
    struct server *srv = cls;
    if (http_fast_is_on(srv)) return MHD_YES;
    return conn_limit_admit(srv, addr) ? MHD_YES : MHD_NO;
}

/* Counts a connection of its address from start to close. One the fast
 * path handed on (every one, when it runs) is counted already, in
 * srv->handing and under its address: its start takes that over. Its
 * head_watch entry is its socket context. */
static void http_connection(void *cls, struct MHD_Connection *conn, void **socket_context,
                            enum MHD_ConnectionNotificationCode toe) {
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    const struct sockaddr *sa = ci ? ci->client_addr : NULL;
    struct server *srv = cls;
    if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
        atomic_fetch_add(&srv->mhd_conns, 1);
        if (http_fast_is_on(srv))
            atomic_fetch_sub(&srv->handing, 1); /* after the add: the sum never dips */
        else
            conn_limit_opened(srv, sa);
        const union MHD_ConnectionInfo *fi =
            MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
        /* counted: its close is counted too */
        *socket_context = head_watch_opened(srv, fi ? fi->connect_fd : -1);
    } else if (*socket_context) {
        head_watch_closed(srv, *socket_context);
        conn_limit_closed(srv, sa);
        atomic_fetch_sub(&srv->mhd_conns, 1);
        *socket_context = NULL;
    }
}

/* The request has ended: `toe` says whether its reply went out whole. */
static void http_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                           enum MHD_RequestTerminationCode toe) {
    (void)cls;
    struct req *r = *con_cls;
    if (!r) return;
    /* Before req_free, where a claim whose reply was lost gives its tasks back. */
    if (toe != MHD_REQUEST_TERMINATED_COMPLETED_OK) req_reply_failed(r);
    head_watch_reply_end(r->srv, http_head_conn(conn));
    MHD_set_connection_option(conn, MHD_CONNECTION_OPTION_TIMEOUT,
                              (unsigned)http_idle_seconds(&r->srv->cfg.limits));
    req_free(r);
    *con_cls = NULL;
}

/* At most this many of libmicrohttpd's lines a second: most are of a
 * connection a client broke off (before its head or body ended, or past
 * its deadlines: head_watch.c), so a client can cause as many as it likes. */
#define HTTP_LOG_PER_SECOND 100

static void http_log(void *cls, const char *fmt, va_list ap) {
    struct server *srv = cls;
    char msg[1024];
    vsnprintf(msg, sizeof msg, fmt, ap);
    /* A client that left before its reply ended (a watcher closing its
     * stream is the usual one): normal, and one line each. */
    if (strstr(msg, "The socket is no longer available for sending")) return;
    if (log_limit_take(&srv->http_log, HTTP_LOG_PER_SECOND,
                       "taskmill: http: ", "lines of libmicrohttpd", ""))
        fprintf(stderr, "taskmill: http: %s", msg);
}

const char *http_reason_phrase(int status) {
    return MHD_get_reason_phrase_for((unsigned)status);
}

void http_daemon_take(struct server *srv, int fd, const struct sockaddr *sa, unsigned sa_len,
                      int64_t head_since_mono, int64_t body_since_mono) {
    /* It closes fd when it cannot take it; then it never starts it. Once
     * taken, it starts it on its thread (0.9.75 queues it there), unless
     * that fails first: out of memory, or the thread's share of
     * MHD_OPTION_CONNECTION_LIMIT, which http_daemon_start puts out of
     * reach when the fast path runs. */
    /* before its start can be told */
    head_watch_handing(srv, fd, head_since_mono, body_since_mono);
    if (MHD_add_connection(srv->mhd, fd, sa, (socklen_t)sa_len) != MHD_YES) {
        head_watch_handing_failed(srv, fd);
        atomic_fetch_sub(&srv->handing, 1);
        conn_limit_closed(srv, sa);
    }
}

/* GnuTLS priorities of the HTTPS server: its defaults, but no protocol
 * before TLS 1.2. */
#define HTTP_TLS_PRIORITIES "NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2"

int http_daemon_start(struct server *srv) {
    if (route_segs_init(srv)) return -1;
    if (head_watch_start(srv)) {
        head_watch_stop(srv);
        route_segs_free(srv);
        return -1;
    }
    unsigned flags = MHD_USE_EPOLL_INTERNAL_THREAD | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG;
    /* On plain HTTP the fast path accepts the connections and hands on
     * those it does not serve; libmicrohttpd gets no listening socket. */
    bool fast = http_fast_is_on(srv);
    if (fast) flags |= MHD_USE_NO_LISTEN_SOCKET;
    /* The listening socket, or TLS (which the fast path never has), or neither
     * (the fast path: the last item alone, MHD_OPTION_END).
     * TLS 1.2 and 1.3 only: GnuTLS's NORMAL, which libmicrohttpd takes when
     * told nothing, still speaks TLS 1.0 and 1.1 (RFC 8996 retires them). */
    struct MHD_OptionItem more[] = {
        {MHD_OPTION_LISTEN_SOCKET, srv->listen_fd, NULL},
        {MHD_OPTION_HTTPS_MEM_CERT, 0, srv->tls_cert},
        {MHD_OPTION_HTTPS_MEM_KEY, 0, srv->tls_key},
        {MHD_OPTION_HTTPS_PRIORITIES, 0, (void *)HTTP_TLS_PRIORITIES},
        {MHD_OPTION_END, 0, NULL},
    };
    if (!srv->tls_cert) more[1].option = MHD_OPTION_END;
    if (srv->tls_cert) flags |= MHD_USE_TLS;
    /* Room past the header limit for the reply: a head just under the
     * pool's size leaves none, and libmicrohttpd then closes without one.
     * Heads over the limit are refused by http_framing_refused with 431 in
     * their API's shape; only those past the pool get libmicrohttpd's own. */
    size_t memory =
        (srv->cfg.limits.header_max_bytes ? srv->cfg.limits.header_max_bytes : 16 * 1024) +
        HTTP_REPLY_ROOM;
    unsigned conns =
        srv->cfg.limits.connections_max > 0 ? (unsigned)srv->cfg.limits.connections_max : 10000u;
    /* With the fast path, its accept holds both paths to conns; libmicrohttpd
     * splits its own limit among its threads and checks a thread's share
     * only when it starts a connection already handed on, too late for a
     * refusal to be counted (http_daemon_take): each thread's share is
     * twice the whole, room for the connections closed but not yet
     * cleaned up. */
    unsigned nthreads = (unsigned)(srv->cfg.threads > 0 ? srv->cfg.threads : 2);
    if (fast && conns <= UINT_MAX / 2 / nthreads) conns *= 2 * nthreads;
    /* A connection with no request in progress closes after the idle
     * timeout; one with a request gets the long one (http_access). */
    unsigned idle = (unsigned)http_idle_seconds(&srv->cfg.limits);
    srv->mhd = MHD_start_daemon(
        flags, 0, http_accept, srv, http_access, srv, MHD_OPTION_EXTERNAL_LOGGER, http_log, srv,
        MHD_OPTION_THREAD_POOL_SIZE, nthreads, MHD_OPTION_CONNECTION_TIMEOUT, idle,
        MHD_OPTION_NOTIFY_CONNECTION, http_connection, srv, MHD_OPTION_UNESCAPE_CALLBACK,
        http_unescape, NULL, MHD_OPTION_CONNECTION_LIMIT, conns,
        /* headers and read buffer; MHD zeroes it on every request */
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, memory, MHD_OPTION_NOTIFY_COMPLETED, http_completed,
        srv, MHD_OPTION_ARRAY, fast ? &more[sizeof more / sizeof more[0] - 1] : more,
        MHD_OPTION_END);
    if (!srv->mhd) {
        if (srv->tls_cert)
            fprintf(stderr,
                    "taskmill: cannot start the HTTPS server: '--tls-cert %s' and '--tls-key %s' "
                    "are not a certificate and its private key that TLS can use (see above)\n",
                    srv->cfg.tls_cert_path, srv->cfg.tls_key_path);
        else
            fprintf(stderr, "taskmill: cannot start the HTTP server\n");
        head_watch_stop(srv);
        route_segs_free(srv);
        return -1;
    }
    if (fast && http_fast_start(srv)) {
        MHD_stop_daemon(srv->mhd);
        srv->mhd = NULL;
        head_watch_stop(srv);
        route_segs_free(srv);
        return -1;
    }
    return 0;
}

void http_daemon_stop(struct server *srv) {
    bool fast = srv->fast != NULL;
    http_fast_stop(srv);
    MHD_stop_daemon(srv->mhd);
    srv->mhd = NULL;
    head_watch_stop(srv);            /* after libmicrohttpd told every close */
    if (fast) close(srv->listen_fd); /* else MHD_stop_daemon closed it */
    srv->listen_fd = -1;
    route_segs_free(srv);
}
