/*
 * client: libtaskmill's client object and its request/reply calls over
 * libcurl (see taskmill.h for the contract of each call).
 *
 * Every typed call builds a jansson body, goes through client_call, and
 * parses the reply; client_finish is the one place where an HTTP status
 * and an error body become a TM_CLIENT_E... code and the client's last
 * error. One easy handle per client keeps the connection alive between
 * calls; the abort hook (tm_client_set_abort) is asked before each request
 * and by libcurl's progress callback while it is in flight, and a timeout
 * set by tm_client_set_timeout replaces each request's own. A client is not
 * thread-safe; curl_global_init runs once per process under pthread_once.
 * Out of memory aborts (xalloc).
 */
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "../common/xalloc.h"
#include "client_int.h"

/* Requests that do not long-poll get this long, connect included; a long-poll gets it plus
 * its wait. */
#define CLIENT_TIMEOUT_S 60
/* tm_client_request, which cannot tell a long-poll, gets CLIENT_TIMEOUT_S plus this much. */
#define CLIENT_WAIT_SLACK_S 30

static pthread_once_t client_once = PTHREAD_ONCE_INIT;

static void client_global_init(void) {
    curl_global_init(CURL_GLOBAL_ALL);
}

struct tm_client *tm_client_new(const char *url, const char *token) {
    if (!url || !*url) return NULL;
    pthread_once(&client_once, client_global_init);
    struct tm_client *c = xcalloc(1, sizeof *c);
    c->url = xstrdup(url);
    size_t n = strlen(c->url);
    while (n > 0 && c->url[n - 1] == '/')
        c->url[--n] = '\0';
    c->token = token && *token ? xstrdup(token) : NULL;
    return c;
}

void tm_client_free(struct tm_client *c) {
    if (!c) return;
    if (c->curl) curl_easy_cleanup(c->curl);
    free(c->url);
    free(c->token);
    free(c);
}

const char *tm_client_url(const struct tm_client *c) {
    return c->url;
}

const struct tm_client_error *tm_client_last_error(const struct tm_client *c) {
    return &c->err;
}

const char *tm_strerror(int code) {
    switch (code) {
    case TM_CLIENT_OK:
        return "success";
    case TM_CLIENT_EINVALID:
        return "invalid argument";
    case TM_CLIENT_EAUTH:
        return "not authorised";
    case TM_CLIENT_ENOTFOUND:
        return "not found";
    case TM_CLIENT_ECONFLICT:
        return "conflict";
    case TM_CLIENT_ELEASE:
        return "lease lost";
    case TM_CLIENT_ETOOLARGE:
        return "request too large";
    case TM_CLIENT_ESERVER:
        return "server error";
    case TM_CLIENT_ECONNECT:
        return "cannot reach the server";
    case TM_CLIENT_EPROTOCOL:
        return "unexpected reply from the server";
    case TM_CLIENT_EABORTED:
        return "abandoned by the caller";
    case TM_CLIENT_ERATE:
        return "too many requests";
    default:
        return "unknown error";
    }
}

void tm_client_set_abort(struct tm_client *c, tm_abort_fn fn, void *arg) {
    c->abort_fn = fn;
    c->abort_arg = fn ? arg : NULL;
}

void tm_client_set_timeout(struct tm_client *c, long timeout_ms) {
    c->timeout_ms = timeout_ms > 0 ? timeout_ms : 0;
}

void tm_client_set_reply_max(struct tm_client *c, size_t max_bytes) {
    c->reply_max = max_bytes;
}

bool tm_phase_is_terminal(const char *phase) {
    return phase && (strcmp(phase, "completed") == 0 || strcmp(phase, "failed") == 0 ||
                     strcmp(phase, "cancelled") == 0);
}

/* ---- Plumbing shared with watch.c ---- */

void client_buf_release(struct client_buf *b) {
    free(b->p);
    b->p = NULL;
    b->len = b->cap = 0;
    b->too_big = false;
}

bool client_buf_append(struct client_buf *b, const char *data, size_t n) {
    if (b->max && (n > b->max || b->len > b->max - n)) {
        b->too_big = true;
        return false;
    }
    if (b->len + n + 1 > b->cap) {
        /* Doubling: a large reply arrives in many small pieces. */
        size_t want = b->cap ? b->cap : 4096;
        while (want < b->len + n + 1)
            want *= 2;
        b->p = xrealloc(b->p, want);
        b->cap = want;
    }
    memcpy(b->p + b->len, data, n);
    b->len += n;
    b->p[b->len] = '\0';
    return true;
}

/* libcurl's write callback: a short count (past the limit) stops the transfer. */
static size_t client_on_data(char *data, size_t size, size_t nmemb, void *cls) {
    size_t n = size * nmemb;
    return client_buf_append(cls, data, n) ? n : 0;
}

char *client_escape(const char *s) {
    static const char hex[] = "0123456789ABCDEF";
    char *out = xmalloc(strlen(s) * 3 + 1), *o = out;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
            *p == '-' || *p == '_' || *p == '.' || *p == '~') {
            *o++ = (char)*p;
        } else {
            *o++ = '%';
            *o++ = hex[*p >> 4];
            *o++ = hex[*p & 15];
        }
    }
    *o = '\0';
    return out;
}

void client_easy_setup(struct tm_client *c, CURL *easy, const char *method, const char *path,
                       const char *body, long timeout_s, struct client_buf *b,
                       struct curl_slist **h, const char *const *extra) {
    curl_easy_reset(easy);
    size_t n = strlen(c->url) + strlen(path) + 1;
    char *url = xmalloc(n);
    snprintf(url, n, "%s%s", c->url, path);
    curl_easy_setopt(easy, CURLOPT_URL, url);
    free(url); /* libcurl copies strings it is given */
    *h = NULL;
    if (c->token) {
        size_t m = strlen(c->token) + 32;
        char *auth = xmalloc(m);
        snprintf(auth, m, "Authorization: Bearer %s", c->token);
        *h = curl_slist_append(*h, auth);
        free(auth);
    }
    bool accept = false;
    for (size_t i = 0; extra && extra[i]; i++) {
        *h = curl_slist_append(*h, extra[i]);
        if (strncasecmp(extra[i], "Accept:", 7) == 0) accept = true;
    }
    if (!accept) *h = curl_slist_append(*h, "Accept: application/json");
    *h = curl_slist_append(*h, "Expect:");
    if (body) *h = curl_slist_append(*h, "Content-Type: application/json");
    if (!*h) abort(); /* curl_slist_append fails only on allocation */
    curl_easy_setopt(easy, CURLOPT_HTTPHEADER, *h);
    curl_easy_setopt(easy, CURLOPT_CUSTOMREQUEST, method);
    if (strcmp(method, "GET") == 0) curl_easy_setopt(easy, CURLOPT_HTTPGET, 1L);
    if (body) {
        curl_easy_setopt(easy, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)strlen(body));
        curl_easy_setopt(easy, CURLOPT_COPYPOSTFIELDS, body);
    }
    b->max = c->reply_max ? c->reply_max : CLIENT_REPLY_MAX_BYTES;
    b->too_big = false;
    curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, client_on_data);
    curl_easy_setopt(easy, CURLOPT_WRITEDATA, b);
    curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(easy, CURLOPT_CONNECTTIMEOUT, 10L);
    curl_easy_setopt(easy, CURLOPT_TIMEOUT, timeout_s);
    curl_easy_setopt(easy, CURLOPT_USERAGENT, "libtaskmill/1");
    /* https:// URLs: a private CA (a self-signed server) comes from TASKMILL_CA_FILE. */
    const char *ca = getenv("TASKMILL_CA_FILE");
    if (ca && *ca) curl_easy_setopt(easy, CURLOPT_CAINFO, ca);
}

/* After a string was cut to fit a buffer (`needed` bytes did not fit in `cap`): drops a last
 * UTF-8 character left incomplete, so that the text stays UTF-8 (a JSON string, a terminal). */
static void client_cut_whole(char *s, int needed, size_t cap) {
    if (needed < 0 || (size_t)needed < cap) return;
    size_t i = strlen(s), tail = 0;
    while (i > 0 && tail < 3 && ((unsigned char)s[i - 1] & 0xC0) == 0x80) {
        i--;
        tail++;
    }
    if (i == 0) return;
    unsigned char lead = (unsigned char)s[i - 1];
    size_t len = lead >= 0xF0 ? 4 : lead >= 0xE0 ? 3 : lead >= 0xC0 ? 2 : 1;
    if (len > tail + 1) s[i - 1] = '\0';
}

/* Copies src into dst (cap bytes), cut, when it must be, at a whole UTF-8 character. */
static void client_copy_text(char *dst, size_t cap, const char *src) {
    client_cut_whole(dst, snprintf(dst, cap, "%s", src ? src : ""), cap);
}

static int client_vfail(struct tm_client *c, int code, const char *field, const char *fmt,
                        va_list ap) {
    memset(&c->err, 0, sizeof c->err);
    c->err.code = code;
    client_copy_text(c->err.field, sizeof c->err.field, field);
    client_cut_whole(c->err.message, vsnprintf(c->err.message, sizeof c->err.message, fmt, ap),
                     sizeof c->err.message);
    return code;
}

int client_fail(struct tm_client *c, int code, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    client_vfail(c, code, NULL, fmt, ap);
    va_end(ap);
    return code;
}

int client_fail_arg(struct tm_client *c, const char *field, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    client_vfail(c, TM_CLIENT_EINVALID, field, fmt, ap);
    va_end(ap);
    return TM_CLIENT_EINVALID;
}

/* Whether s is UTF-8 that a JSON string can hold (jansson refuses anything else, and a
 * string it refuses would otherwise drop out of a request body without a word). */
static bool client_is_utf8(const char *s) {
    json_t *j = json_string(s);
    json_decref(j);
    return j != NULL;
}

static int client_code_for(long status, const char *slug) {
    if (status == 400) return TM_CLIENT_EINVALID;
    if (status == 401 || status == 403) return TM_CLIENT_EAUTH;
    if (status == 404) return TM_CLIENT_ENOTFOUND;
    if (status == 409)
        return strcmp(slug, "lease_mismatch") == 0 ? TM_CLIENT_ELEASE : TM_CLIENT_ECONFLICT;
    if (status == 413 || status == 431) return TM_CLIENT_ETOOLARGE;
    if (status == 429) return TM_CLIENT_ERATE;
    return TM_CLIENT_ESERVER;
}

/* The longest Retry-After kept, in seconds: a day (a larger one is a mistake or an outage). */
#define CLIENT_RETRY_AFTER_MAX_S 86400

/*
 * The Retry-After of the reply `easy` received last, of status `status`,
 * in milliseconds: its delta-seconds, or its HTTP-date less the time now
 * (0 when past); 0 when there is none or it is neither (RFC 9110 10.2.3),
 * and for any status but 429 and 503 (not looked for: most replies are
 * 2xx). Read from the reply's own headers, so that one of an earlier
 * reply on a kept handle cannot leak in.
 */
int64_t client_retry_after_ms(CURL *easy, long status) {
    struct curl_header *h = NULL;
    if (!easy || (status != 429 && status != 503) ||
        curl_easy_header(easy, "Retry-After", 0, CURLH_HEADER, -1, &h) != CURLHE_OK || !h ||
        !h->value)
        return 0;
    const char *v = h->value;
    while (*v == ' ' || *v == '\t')
        v++;
    int64_t s = 0;
    if (*v >= '0' && *v <= '9') {
        const char *p = v;
        for (; *p >= '0' && *p <= '9'; p++)
            if (s <= CLIENT_RETRY_AFTER_MAX_S) s = s * 10 + (*p - '0');
        while (*p == ' ' || *p == '\t')
            p++;
        if (*p) return 0; /* "1.5", "10s": neither form */
    } else {
        time_t at = curl_getdate(v, NULL);
        if (at == (time_t)-1) return 0;
        time_t now = time(NULL);
        s = at > now ? (int64_t)(at - now) : 0;
    }
    if (s > CLIENT_RETRY_AFTER_MAX_S) s = CLIENT_RETRY_AFTER_MAX_S;
    return s * 1000;
}

int client_finish(struct tm_client *c, int64_t retry_after_ms, CURLcode rc, long status,
                  const struct client_buf *b, json_t **out) {
    if (out) *out = NULL;
    memset(&c->err, 0, sizeof c->err);
    if (b->too_big) {
        client_fail(c, TM_CLIENT_EPROTOCOL,
                    "the reply of status %ld from '%s' is larger than %zu bytes; abandoned", status,
                    c->url, b->max);
        c->err.http_status = status;
        return c->err.code;
    }
    if (rc != CURLE_OK && status != 0) {
        /* The server answered, then the reply stopped short (it went away, a timeout). */
        client_fail(c, TM_CLIENT_ECONNECT, "the reply of status %ld from '%s' was cut off: %s",
                    status, c->url, curl_easy_strerror(rc));
        c->err.http_status = status;
        return c->err.code;
    }
    if (rc != CURLE_OK)
        return client_fail(c, TM_CLIENT_ECONNECT, "cannot reach '%s': %s", c->url,
                           curl_easy_strerror(rc));
    c->err.http_status = status;
    json_t *j = NULL;
    if (b->len > 0) j = json_loadb(b->p, b->len, JSON_DECODE_ANY, NULL);
    if (status >= 200 && status < 300) {
        if (b->len > 0 && !j) {
            c->err.code = TM_CLIENT_EPROTOCOL;
            snprintf(c->err.message, sizeof c->err.message, "reply of status %ld is not JSON",
                     status);
            return c->err.code;
        }
        if (out)
            *out = j;
        else
            json_decref(j);
        return 0;
    }
    json_t *e = json_object_get(j, "error");
    const char *slug = json_string_value(json_object_get(e, "code"));
    const char *msg = json_string_value(json_object_get(e, "message"));
    const char *field = json_string_value(json_object_get(e, "field"));
    client_copy_text(c->err.slug, sizeof c->err.slug, slug);
    client_copy_text(c->err.field, sizeof c->err.field, field);
    if (msg)
        client_copy_text(c->err.message, sizeof c->err.message, msg);
    else
        snprintf(c->err.message, sizeof c->err.message, "server replied with status %ld", status);
    c->err.code = client_code_for(status, c->err.slug);
    c->err.retry_after_ms = retry_after_ms;
    json_decref(j);
    return c->err.code;
}

/* libcurl's progress callback: asks the abort hook whether to abandon the transfer. */
static int client_on_progress(void *cls, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
                              curl_off_t ulnow) {
    (void)dltotal, (void)dlnow, (void)ultotal, (void)ulnow;
    struct tm_client *c = cls;
    return c->abort_fn(c->abort_arg) ? 1 : 0;
}

static int client_aborted(struct tm_client *c, const char *method, const char *path) {
    return client_fail(c, TM_CLIENT_EABORTED, "request %s %s to '%s' abandoned by the abort hook",
                       method, path, c->url);
}

/* One request on the client's own handle; `timeout_s` covers the whole transfer, unless
 * tm_client_set_timeout replaced it. The abort hook, if any, is asked before it is sent and
 * while it is in flight. */
static int client_call(struct tm_client *c, const char *method, const char *path,
                       const json_t *body, long timeout_s, json_t **out) {
    if (out) *out = NULL;
    if (c->abort_fn && c->abort_fn(c->abort_arg)) return client_aborted(c, method, path);
    char *text = NULL;
    if (body) {
        text = json_dumps(body, JSON_COMPACT | JSON_ENCODE_ANY | JSON_REAL_PRECISION(16));
        if (!text) return client_fail(c, TM_CLIENT_EINVALID, "request body cannot be encoded");
    }
    if (!c->curl && !(c->curl = curl_easy_init())) abort();
    struct client_buf b = {NULL, 0};
    struct curl_slist *h;
    client_easy_setup(c, c->curl, method, path, text, timeout_s, &b, &h, NULL);
    if (c->timeout_ms) curl_easy_setopt(c->curl, CURLOPT_TIMEOUT_MS, c->timeout_ms);
    if (c->abort_fn) {
        curl_easy_setopt(c->curl, CURLOPT_XFERINFOFUNCTION, client_on_progress);
        curl_easy_setopt(c->curl, CURLOPT_XFERINFODATA, c);
        curl_easy_setopt(c->curl, CURLOPT_NOPROGRESS, 0L);
    }
    CURLcode rc = curl_easy_perform(c->curl);
    long status = 0;
    curl_easy_getinfo(c->curl, CURLINFO_RESPONSE_CODE, &status);
    int r = rc == CURLE_ABORTED_BY_CALLBACK
                ? client_aborted(c, method, path)
                : client_finish(c, client_retry_after_ms(c->curl, status), rc, status, &b, out);
    curl_slist_free_all(h);
    client_buf_release(&b);
    free(text);
    return r;
}

int tm_client_request(struct tm_client *c, const char *method, const char *path, const json_t *body,
                      json_t **out) {
    if (out) *out = NULL;
    if (!method || !*method || strspn(method, "ABCDEFGHIJKLMNOPQRSTUVWXYZ") != strlen(method))
        return client_fail_arg(c, "method", "'method' must be an HTTP method such as \"GET\"");
    if (!path || path[0] != '/') return client_fail_arg(c, "path", "'path' must start with '/'");
    return client_call(c, method, path, body, CLIENT_TIMEOUT_S + CLIENT_WAIT_SLACK_S, out);
}

/* The whole-transfer timeout of a request that long-polls up to wait_seconds (0 or less: none);
 * in long, as an int wait near INT_MAX plus the slack would overflow. */
static long client_wait_timeout_s(int wait_seconds) {
    return CLIENT_TIMEOUT_S + (wait_seconds > 0 ? (long)wait_seconds : 0L);
}

/* "/v1/tasks/{id}{suffix}" with the id escaped, or an error when id is empty. */
static char *client_task_path(struct tm_client *c, const char *id, const char *suffix) {
    if (!id || !*id) {
        client_fail_arg(c, "id", "'id' must not be empty");
        return NULL;
    }
    char *e = client_escape(id);
    size_t n = strlen(e) + strlen(suffix) + 16;
    char *p = xmalloc(n);
    snprintf(p, n, "/v1/tasks/%s%s", e, suffix);
    free(e);
    return p;
}

/* Expects a JSON object reply; anything else is a protocol error. */
static int client_want_object(struct tm_client *c, int rc, json_t **reply, json_t **out) {
    if (rc == 0 && !json_is_object(*reply)) {
        json_decref(*reply);
        *reply = NULL;
        rc = client_fail(c, TM_CLIENT_EPROTOCOL, "the server's reply is not a JSON object");
    }
    if (out)
        *out = *reply;
    else
        json_decref(*reply);
    return rc;
}

/* ---- Tasks ---- */

int tm_submit(struct tm_client *c, const json_t *task, const char *idempotency_key, json_t **out) {
    if (out) *out = NULL;
    if (!json_is_object(task)) return client_fail_arg(c, "task", "'task' must be an object");
    if (idempotency_key && !client_is_utf8(idempotency_key))
        return client_fail_arg(c, "idempotency_key", "'idempotency_key' must be UTF-8");
    json_t *body = json_deep_copy(task);
    if (!body) abort();
    if (idempotency_key && *idempotency_key)
        json_object_set_new(body, "idempotency_key", json_string(idempotency_key));
    json_t *reply = NULL;
    int rc = client_call(c, "POST", "/v1/tasks", body, CLIENT_TIMEOUT_S, &reply);
    json_decref(body);
    return client_want_object(c, rc, &reply, out);
}

int tm_submit_batch(struct tm_client *c, const json_t *tasks, json_t **out) {
    if (out) *out = NULL;
    if (!json_is_array(tasks)) return client_fail_arg(c, "tasks", "'tasks' must be an array");
    json_t *body = json_pack("{s:O}", "tasks", (json_t *)tasks);
    if (!body) abort();
    json_t *reply = NULL;
    int rc = client_call(c, "POST", "/v1/tasks/batch", body, CLIENT_TIMEOUT_S, &reply);
    json_decref(body);
    if (rc) return rc;
    json_t *arr = json_object_get(reply, "tasks");
    if (!json_is_array(arr)) {
        json_decref(reply);
        return client_fail(c, TM_CLIENT_EPROTOCOL, "the batch reply holds no 'tasks' array");
    }
    if (out) *out = json_incref(arr);
    json_decref(reply);
    return 0;
}

int tm_get(struct tm_client *c, const char *id, json_t **out) {
    return tm_get_wait(c, id, -1, 0, out);
}

int tm_get_wait(struct tm_client *c, const char *id, int64_t version, int wait_seconds,
                json_t **out) {
    if (out) *out = NULL;
    char suffix[64] = "";
    if (wait_seconds > 0 && version >= 0)
        snprintf(suffix, sizeof suffix, "?wait=%d&version=%lld", wait_seconds, (long long)version);
    char *path = client_task_path(c, id, suffix);
    if (!path) return c->err.code;
    json_t *reply = NULL;
    int rc = client_call(c, "GET", path, NULL, client_wait_timeout_s(wait_seconds), &reply);
    free(path);
    return client_want_object(c, rc, &reply, out);
}

/* Appends "&key=value" (value escaped) when value is set. */
static void client_query_add(char **q, size_t *len, const char *key, const char *value) {
    if (!value || !*value) return;
    char *e = client_escape(value);
    size_t add = strlen(key) + strlen(e) + 2;
    *q = xrealloc(*q, *len + add + 1);
    snprintf(*q + *len, add + 1, "%c%s=%s", *len ? '&' : '?', key, e);
    *len += add;
    free(e);
}

int tm_list(struct tm_client *c, const struct tm_list_query *q, json_t **out) {
    if (out) *out = NULL;
    char *query = xstrdup("/v1/tasks");
    size_t base = strlen(query), len = 0;
    char *rest = NULL;
    if (q) {
        char limit[16] = "";
        /* A negative limit goes too, for the server's 400 naming it. */
        if (q->limit != 0) snprintf(limit, sizeof limit, "%d", q->limit);
        client_query_add(&rest, &len, "phase", q->phase);
        client_query_add(&rest, &len, "type", q->type);
        client_query_add(&rest, &len, "queue", q->queue);
        client_query_add(&rest, &len, "parent_id", q->parent_id);
        client_query_add(&rest, &len, "name_prefix", q->name_prefix);
        client_query_add(&rest, &len, "id_prefix", q->id_prefix);
        client_query_add(&rest, &len, "created_after", q->created_after);
        client_query_add(&rest, &len, "created_before", q->created_before);
        client_query_add(&rest, &len, "updated_after", q->updated_after);
        client_query_add(&rest, &len, "updated_before", q->updated_before);
        client_query_add(&rest, &len, "limit", limit);
        client_query_add(&rest, &len, "cursor", q->cursor);
        client_query_add(&rest, &len, "order", q->order);
    }
    if (rest) {
        query = xrealloc(query, base + len + 1);
        memcpy(query + base, rest, len + 1);
        free(rest);
    }
    json_t *reply = NULL;
    int rc = client_call(c, "GET", query, NULL, CLIENT_TIMEOUT_S, &reply);
    free(query);
    if (rc == 0 && !json_is_array(json_object_get(reply, "tasks"))) {
        json_decref(reply);
        return client_fail(c, TM_CLIENT_EPROTOCOL, "the list reply holds no 'tasks' array");
    }
    if (out)
        *out = reply;
    else
        json_decref(reply);
    return rc;
}

static int client_control(struct tm_client *c, const char *id, const char *verb, json_t **out) {
    if (out) *out = NULL;
    char *path = client_task_path(c, id, verb);
    if (!path) return c->err.code;
    json_t *body = json_object(), *reply = NULL;
    int rc = client_call(c, "POST", path, body, CLIENT_TIMEOUT_S, &reply);
    json_decref(body);
    free(path);
    return client_want_object(c, rc, &reply, out);
}

int tm_cancel(struct tm_client *c, const char *id, json_t **out) {
    return client_control(c, id, "/cancel", out);
}

int tm_retry(struct tm_client *c, const char *id, json_t **out) {
    return client_control(c, id, "/retry", out);
}

int tm_pause(struct tm_client *c, const char *id, json_t **out) {
    return client_control(c, id, "/pause", out);
}

int tm_resume(struct tm_client *c, const char *id, json_t **out) {
    return client_control(c, id, "/resume", out);
}

int tm_delete(struct tm_client *c, const char *id) {
    char *path = client_task_path(c, id, "");
    if (!path) return c->err.code;
    int rc = client_call(c, "DELETE", path, NULL, CLIENT_TIMEOUT_S, NULL);
    free(path);
    return rc;
}

/* ---- Workers, many tasks per request ---- */

/* Sets *out to the array `key` of reply (a new reference) and frees the
 * reply; TM_CLIENT_EPROTOCOL with `missing` as the message when it has none. */
static int client_take_array(struct tm_client *c, json_t *reply, const char *key,
                             const char *missing, json_t **out) {
    json_t *arr = json_object_get(reply, key);
    int rc = json_is_array(arr) ? 0 : client_fail(c, TM_CLIENT_EPROTOCOL, "%s", missing);
    if (!rc) *out = json_incref(arr);
    json_decref(reply);
    return rc;
}

/* POSTs a claim of `queue` (`many`: the batched form, /claims, with max)
 * and sets *reply (NULL on 204). */
static int client_claim_call(struct tm_client *c, const char *queue,
                             const struct tm_claim_options *o, bool many, int max, json_t **reply) {
    *reply = NULL;
    if (!queue || !*queue) return client_fail_arg(c, "queue", "'queue' must not be empty");
    if (!o || !o->worker || !*o->worker)
        return client_fail_arg(c, "worker", "'worker' must not be empty");
    /* A type dropped here would widen the claim to types the worker never asked for. */
    for (size_t i = 0; o->types && i < o->ntypes; i++) {
        if (!o->types[i] || !client_is_utf8(o->types[i])) {
            char field[32]; /* named as the server names an entry */
            snprintf(field, sizeof field, "types[%zu]", i);
            return client_fail_arg(c, field, "'%s' must be a UTF-8 string", field);
        }
    }
    json_t *body = json_pack("{s:s}", "worker", o->worker);
    if (!body) return client_fail_arg(c, "worker", "'worker' must be UTF-8");
    if (many) json_object_set_new(body, "max", json_integer(max));
    if (o->types && o->ntypes) {
        json_t *types = json_array();
        for (size_t i = 0; i < o->ntypes; i++)
            json_array_append_new(types, json_string(o->types[i]));
        json_object_set_new(body, "types", types);
    }
    /* 0 leaves one out; any other value goes, for the server's 400 when it is out of range. */
    if (o->lease_seconds != 0)
        json_object_set_new(body, "lease_seconds", json_integer(o->lease_seconds));
    if (o->wait_seconds != 0)
        json_object_set_new(body, "wait_seconds", json_integer(o->wait_seconds));
    char *e = client_escape(queue);
    size_t n = strlen(e) + 32;
    char *path = xmalloc(n);
    snprintf(path, n, "/v1/queues/%s/%s", e, many ? "claims" : "claim");
    free(e);
    int rc = client_call(c, "POST", path, body, client_wait_timeout_s(o->wait_seconds), reply);
    free(path);
    json_decref(body);
    return rc;
}

int tm_claim_many(struct tm_client *c, const char *queue, const struct tm_claim_options *o, int max,
                  json_t **claims) {
    /* A claim whose tasks could not be handed back would leave them leased to no one. */
    if (!claims) return client_fail_arg(c, "claims", "'claims' must not be NULL");
    *claims = NULL;
    json_t *reply = NULL;
    int rc = client_claim_call(c, queue, o, true, max, &reply);
    if (rc) return rc;
    if (!reply) { /* 204: nothing came */
        *claims = json_array();
        return 0;
    }
    return client_take_array(c, reply, "claims", "the claims reply holds no 'claims' array",
                             claims);
}

int tm_work_batch(struct tm_client *c, const char *verb, const json_t *entries, json_t **results) {
    if (results) *results = NULL;
    static const char *const verbs[] = {"heartbeat", "complete", "fail", "release"};
    bool ok = false;
    for (int i = 0; i < 4 && verb && !ok; i++)
        ok = strcmp(verb, verbs[i]) == 0;
    if (!ok)
        return client_fail_arg(c, "verb", "'verb' must be heartbeat, complete, fail or release");
    if (!json_is_array(entries)) return client_fail_arg(c, "entries", "'entries' must be an array");
    char path[64];
    snprintf(path, sizeof path, "/v1/work/%s", verb);
    json_t *body = json_pack("{s:O}", "entries", entries), *reply = NULL;
    int rc = client_call(c, "POST", path, body, CLIENT_TIMEOUT_S, &reply);
    json_decref(body);
    if (rc) return rc;
    json_t *dropped = NULL;
    rc = client_take_array(c, reply, "results", "the reply holds no 'results' array",
                           results ? results : &dropped);
    json_decref(dropped);
    return rc;
}

/* ---- Queues ---- */

int tm_queues(struct tm_client *c, json_t **out) {
    if (out) *out = NULL;
    json_t *reply = NULL;
    int rc = client_call(c, "GET", "/v1/queues", NULL, CLIENT_TIMEOUT_S, &reply);
    return client_want_object(c, rc, &reply, out);
}

int tm_queue_pause(struct tm_client *c, const char *queue, bool paused, json_t **out) {
    if (out) *out = NULL;
    if (!queue || !*queue) return client_fail_arg(c, "queue", "'queue' must not be empty");
    char *e = client_escape(queue);
    size_t n = strlen(e) + 32;
    char *path = xmalloc(n);
    snprintf(path, n, "/v1/queues/%s/%s", e, paused ? "pause" : "resume");
    free(e);
    json_t *body = json_object(), *reply = NULL;
    int rc = client_call(c, "POST", path, body, CLIENT_TIMEOUT_S, &reply);
    json_decref(body);
    free(path);
    return client_want_object(c, rc, &reply, out);
}

/* ---- Workers ---- */

int tm_claim(struct tm_client *c, const char *queue, const struct tm_claim_options *o,
             json_t **task, char token[TM_LEASE_TOKEN_MAX]) {
    /* As tm_claim_many: a task claimed with nowhere to put it would stay leased to no one. */
    if (!task || !token)
        return client_fail_arg(c, task ? "token" : "task", "'%s' must not be NULL",
                               task ? "token" : "task");
    *task = NULL;
    token[0] = '\0';
    json_t *reply = NULL;
    int rc = client_claim_call(c, queue, o, false, 0, &reply);
    if (rc) return rc;
    if (!reply) return 0; /* 204: nothing to do */
    json_t *t = json_object_get(reply, "task");
    const char *tok = json_string_value(json_object_get(reply, "lease_token"));
    if (!json_is_object(t) || !tok || strlen(tok) >= TM_LEASE_TOKEN_MAX) {
        json_decref(reply);
        return client_fail(c, TM_CLIENT_EPROTOCOL, "the claim reply holds no task and lease token");
    }
    snprintf(token, TM_LEASE_TOKEN_MAX, "%s", tok);
    *task = json_incref(t);
    json_decref(reply);
    return 0;
}

/* What a report cannot send as given, as the field at fault, or NULL: a task id or lease
 * token that is not UTF-8, a ratio that is not a number (JSON has no NaN), and with `message`
 * a progress message that is not UTF-8 (which tm_work_entry leaves out, as documented). */
static const char *client_entry_bad(const char *id, const char *token, const struct tm_report *r,
                                    bool message) {
    if (id && !client_is_utf8(id)) return "id";
    if (token && !client_is_utf8(token)) return "lease_token";
    if (r && r->has_ratio && !isfinite(r->ratio)) return "progress.ratio";
    if (message && r && r->message && !client_is_utf8(r->message)) return "progress.message";
    return NULL;
}

/* Refuses, as TM_CLIENT_EINVALID naming the field, what a one-task call cannot send. */
static int client_entry_check(struct tm_client *c, const char *token, const struct tm_report *r) {
    const char *field = client_entry_bad(NULL, token, r, true);
    if (!field) return 0;
    if (strcmp(field, "progress.ratio") == 0)
        return client_fail_arg(c, field, "'progress.ratio' must be between 0 and 1");
    return client_fail_arg(c, field, "'%s' must be UTF-8", field);
}

json_t *tm_work_entry(const char *id, const char *token, const struct tm_report *r) {
    if (client_entry_bad(id, token, r, false)) return NULL;
    json_t *body = id ? json_pack("{s:s, s:s}", "id", id, "lease_token", token ? token : "")
                      : json_pack("{s:s}", "lease_token", token ? token : "");
    if (!body) abort();
    if (!r) return body;
    if (r->has_ratio || r->message || r->has_counts) {
        json_t *p = json_object();
        if (r->has_ratio) json_object_set_new(p, "ratio", json_real(r->ratio));
        if (r->message) json_object_set_new(p, "message", json_string(r->message));
        if (r->has_counts) {
            json_object_set_new(p, "processed", json_integer(r->processed));
            json_object_set_new(p, "processing", json_integer(r->processing));
            json_object_set_new(p, "pending", json_integer(r->pending));
        }
        json_object_set_new(body, "progress", p);
    }
    if (r->items) json_object_set(body, "items", (json_t *)r->items);
    if (r->messages) json_object_set(body, "messages", (json_t *)r->messages);
    if (r->attributes) json_object_set(body, "attributes", (json_t *)r->attributes);
    return body;
}

int tm_heartbeat(struct tm_client *c, const char *id, const char *token, int lease_seconds,
                 const struct tm_report *r, struct tm_heartbeat_reply *reply) {
    if (reply) memset(reply, 0, sizeof *reply);
    if (client_entry_check(c, token, r)) return c->err.code;
    char *path = client_task_path(c, id, "/heartbeat");
    if (!path) return c->err.code;
    json_t *body = tm_work_entry(NULL, token, r), *out = NULL;
    if (lease_seconds != 0) json_object_set_new(body, "lease_seconds", json_integer(lease_seconds));
    int rc = client_call(c, "POST", path, body, CLIENT_TIMEOUT_S, &out);
    free(path);
    json_decref(body);
    rc = client_want_object(c, rc, &out, &out);
    if (rc) return rc;
    if (reply) {
        reply->cancel_requested = json_is_true(json_object_get(out, "cancel_requested"));
        reply->pause_requested = json_is_true(json_object_get(out, "pause_requested"));
        reply->version = json_integer_value(json_object_get(out, "version"));
        const char *exp = json_string_value(json_object_get(out, "lease_expires_at"));
        snprintf(reply->lease_expires_at, sizeof reply->lease_expires_at, "%s", exp ? exp : "");
    }
    json_decref(out);
    return 0;
}

int tm_complete(struct tm_client *c, const char *id, const char *token, const json_t *result,
                const struct tm_report *r, json_t **out) {
    if (out) *out = NULL;
    if (client_entry_check(c, token, r)) return c->err.code;
    char *path = client_task_path(c, id, "/complete");
    if (!path) return c->err.code;
    json_t *body = tm_work_entry(NULL, token, r), *reply = NULL;
    if (result) json_object_set(body, "result", (json_t *)result);
    int rc = client_call(c, "POST", path, body, CLIENT_TIMEOUT_S, &reply);
    free(path);
    json_decref(body);
    return client_want_object(c, rc, &reply, out);
}

int tm_fail(struct tm_client *c, const char *id, const char *token, const char *error,
            bool retryable, const struct tm_report *r, json_t **out) {
    if (out) *out = NULL;
    if (!error || !*error) return client_fail_arg(c, "error", "'error' must not be empty");
    if (!client_is_utf8(error)) return client_fail_arg(c, "error", "'error' must be UTF-8");
    if (client_entry_check(c, token, r)) return c->err.code;
    char *path = client_task_path(c, id, "/fail");
    if (!path) return c->err.code;
    json_t *body = tm_work_entry(NULL, token, r), *reply = NULL;
    json_object_set_new(body, "error", json_string(error));
    json_object_set_new(body, "retryable", json_boolean(retryable));
    int rc = client_call(c, "POST", path, body, CLIENT_TIMEOUT_S, &reply);
    free(path);
    json_decref(body);
    return client_want_object(c, rc, &reply, out);
}

int tm_release(struct tm_client *c, const char *id, const char *token, json_t **out) {
    if (out) *out = NULL;
    if (client_entry_check(c, token, NULL)) return c->err.code;
    char *path = client_task_path(c, id, "/release");
    if (!path) return c->err.code;
    json_t *body = tm_work_entry(NULL, token, NULL), *reply = NULL;
    int rc = client_call(c, "POST", path, body, CLIENT_TIMEOUT_S, &reply);
    free(path);
    json_decref(body);
    return client_want_object(c, rc, &reply, out);
}
