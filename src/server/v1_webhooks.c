/*
 * v1_webhooks: POST/GET/PATCH/DELETE /v1/webhooks and a webhook's deliveries.
 *
 * A webhook is {url, events, secret, namespace, name}; `events` are
 * Livepeer's names (task.spawned, task.updated, task.completed,
 * task.failed; all four when absent). The secret signs every delivery; one
 * is generated when the body gives none, and it is shown only in the reply
 * to the POST. A token's namespace (r->ns) overrides the body's.
 *
 * Threading: handlers run on libmicrohttpd threads; writes go through the
 * store's writer (req_submit). Ownership: the webhook handed to the op is
 * the request's and is freed when the reply has been written.
 */
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "../common/buf.h"
#include "../common/id.h"
#include "../common/xalloc.h"
#include "server_int.h"
#include "v1_decode.h"
#include "webhook.h"

static void webhook_json_write(struct buf *b, const struct webhook *w, bool with_secret) {
    buf_puts(b, "{\"id\":");
    json_put_str(b, w->id);
    json_put_key(b, "name", false);
    json_put_str(b, w->name);
    json_put_key(b, "url", false);
    json_put_str(b, w->url);
    json_put_key(b, "namespace", false);
    json_put_str(b, w->ns);
    json_put_key(b, "events", false);
    buf_putc(b, '[');
    bool first = true;
    for (int i = 0; i < WEBHOOK_EVENT_COUNT; i++) {
        if (!(w->events & (1u << i))) continue;
        if (!first) buf_putc(b, ',');
        json_put_str(b, webhook_event_name(i));
        first = false;
    }
    buf_puts(b, "],\"has_secret\":");
    json_put_bool(b, w->secret != NULL);
    if (with_secret && w->secret) {
        json_put_key(b, "secret", false);
        json_put_str(b, w->secret);
    }
    json_put_key(b, "created_at", false);
    json_put_time(b, w->created_at);
    buf_putc(b, '}');
}

static void webhooks_free_op(struct req *r) {
    webhook_release(r->op.webhook);
    free(r->op.webhook);
    r->op.webhook = NULL;
}

static void webhooks_created(struct req *r) {
    if (!reply_if_op_failed(r)) {
        struct buf b;
        buf_init(&b);
        webhook_json_write(&b, r->op.webhook, true);
        reply_add_location(r, "webhooks", r->op.webhook->id);
        reply_add_header(r, "Cache-Control", "no-store"); /* its secret, shown this once */
        reply_json(r, 201, &b);
    }
    webhooks_free_op(r);
}

static void webhooks_create(struct req *r) {
    if (req_json_body(r, false)) return;
    struct webhook *w = xcalloc(1, sizeof *w);
    struct tm_error e;
    err_clear(&e);
    int rc = v1_decode_webhook(r->json, w, &e);
    if (rc == 0 && r->ns) {
        free(w->ns);
        w->ns = xstrdup(r->ns);
    }
    if (rc == 0) rc = webhook_url_check(w->url, r->srv->cfg.events.webhook_allow_private, &e);
    if (rc) {
        webhook_release(w);
        free(w);
        reply_error(r, &e);
        return;
    }
    store_op_init(&r->op, STORE_OP_WEBHOOK_ADD);
    r->op.webhook = w;
    req_submit(r, webhooks_created);
}

static void webhooks_updated(struct req *r) {
    if (!reply_if_op_failed(r)) {
        if (r->op.webhook->set & WEBHOOK_SET_URL)
            webhook_sender_forget(r->srv->webhooks, r->op.webhook->id);
        struct buf b;
        buf_init(&b);
        webhook_json_write(&b, r->op.webhook, false);
        reply_json(r, 200, &b);
    }
    webhooks_free_op(r);
}

/* What PATCH may set, and the bit of each (store.h). */
static const struct {
    const char *key;
    unsigned bit;
} webhook_patch_keys[] = {
    {"url", WEBHOOK_SET_URL},
    {"events", WEBHOOK_SET_EVENTS},
    {"secret", WEBHOOK_SET_SECRET},
    {"name", WEBHOOK_SET_NAME},
};

/*
 * The body of a PATCH into w, through POST's field decoder so that a value
 * is judged, and its error worded, as when the webhook was created.
 * `"secret": null` unsigns.
 */
static int webhooks_decode_patch(struct req *r, struct webhook *w, struct tm_error *e) {
    if (json_object_size(r->json) == 0)
        return err_set(e, TM_EINVALID, "",
                       "nothing to change: give one or more of 'url', "
                       "'events', 'secret', 'name'");
    if (json_object_get(r->json, "namespace"))
        return err_set(e, TM_EINVALID, "namespace",
                       "'namespace' cannot be changed; create a webhook in the other namespace");
    json_t *o = json_copy(r->json);
    for (size_t i = 0; i < sizeof webhook_patch_keys / sizeof *webhook_patch_keys; i++)
        if (json_object_get(o, webhook_patch_keys[i].key)) w->set |= webhook_patch_keys[i].bit;
    if (json_is_null(json_object_get(o, "secret"))) json_object_del(o, "secret");
    int rc = v1_decode_webhook_fields(o, w, e);
    json_decref(o);
    if (rc) return rc;
    if (w->set & WEBHOOK_SET_URL)
        return webhook_url_check(w->url, r->srv->cfg.events.webhook_allow_private, e);
    return 0;
}

/* The query of a webhook read: for the deliveries (`deliveries`), each of
 * `limit`, `status` and `cursor` at most once; nothing for the others, as
 * the other resources' reads refuse what they do not know. */
struct webhooks_query {
    bool deliveries;
    const char *limit, *status, *cursor;
    struct tm_error *e;
};

static int webhooks_query_arg(void *cls, const char *key, const char *value) {
    struct webhooks_query *q = cls;
    const char **slot = NULL;
    if (q->deliveries) {
        slot = strcmp(key, "limit") == 0    ? &q->limit
               : strcmp(key, "status") == 0 ? &q->status
               : strcmp(key, "cursor") == 0 ? &q->cursor
                                            : NULL;
    }
    if (!slot) return err_set(q->e, TM_EINVALID, key, "unknown query parameter '%.64s'", key);
    if (*slot) return err_set(q->e, TM_EINVALID, key, "'%.64s' is given more than once", key);
    *slot = value ? value : "";
    return 0;
}

/* Replies 400 and returns -1 when the query holds anything but what the
 * read takes; q (may be NULL: a read that takes nothing) gets the values. */
static int webhooks_check_query(struct req *r, struct webhooks_query *q) {
    struct tm_error e;
    err_clear(&e);
    struct webhooks_query none = {false, NULL, NULL, NULL, NULL};
    if (!q) q = &none;
    q->e = &e;
    if (!req_query_each(r, webhooks_query_arg, q)) return 0;
    reply_error(r, &e);
    return -1;
}

/*
 * A deliveries cursor: where the page before ended, as "<seq>-<k>" with
 * k the index of its event's name (webhook_event_name). Clients treat it
 * as opaque; it carries no filter, as the task list's does not.
 */
static void delivery_cursor_write(struct buf *b, const struct webhook_delivery *d) {
    int k = 0;
    for (int bit = webhook_event_parse(d->event); bit > 1; bit >>= 1)
        k++;
    buf_printf(b, "\"%lld-%d\"", (long long)d->seq, k);
}

static int delivery_cursor_parse(const char *v, struct delivery_page *page, struct tm_error *e) {
    char *end = NULL;
    long long seq = -1;
    if (*v >= '0' && *v <= '9') seq = strtoll(v, &end, 10);
    if (seq < 0 || !end || end[0] != '-' || end[1] < '0' || end[1] >= '0' + WEBHOOK_EVENT_COUNT ||
        end[2] != '\0' || seq == LLONG_MAX)
        return err_set(e, TM_EINVALID, "cursor", "'cursor' is not a cursor this server gave");
    page->after_seq = seq;
    snprintf(page->after_event, sizeof page->after_event, "%s", webhook_event_name(end[1] - '0'));
    return 0;
}

static void webhooks_list(struct req *r) {
    struct webhook *w = NULL;
    size_t n = 0;
    struct tm_error e;
    err_clear(&e);
    if (webhooks_check_query(r, NULL)) return;
    const char *id = r->nparams ? r->param[0] : NULL;
    if (id && !id_is_valid(id)) {
        reply_error_code(r, TM_ENOT_FOUND, "", "webhook not found");
        return;
    }
    if (store_webhooks_list(req_store(r), r->ns, id, &w, &n, &e)) {
        reply_error(r, &e);
        return;
    }
    struct buf b;
    buf_init(&b);
    if (id) {
        webhook_json_write(&b, &w[0], false);
    } else {
        buf_puts(&b, "{\"webhooks\":[");
        for (size_t i = 0; i < n; i++) {
            if (i) buf_putc(&b, ',');
            webhook_json_write(&b, &w[i], false);
        }
        buf_puts(&b, "]}");
    }
    webhooks_free(w, n);
    reply_json(r, 200, &b);
}

static void webhooks_update(struct req *r) {
    if (webhooks_check_query(r, NULL)) return;
    if (!id_is_valid(r->param[0])) {
        reply_error_code(r, TM_ENOT_FOUND, "", "webhook not found");
        return;
    }
    if (req_json_body(r, false)) return;
    struct webhook *w = xcalloc(1, sizeof *w);
    struct tm_error e;
    err_clear(&e);
    if (webhooks_decode_patch(r, w, &e)) {
        webhook_release(w);
        free(w);
        reply_error(r, &e);
        return;
    }
    store_op_init(&r->op, STORE_OP_WEBHOOK_UPDATE);
    r->op.ns = r->ns;
    snprintf(r->op.id, sizeof r->op.id, "%s", r->param[0]);
    r->op.webhook = w;
    req_submit(r, webhooks_updated);
}

static void webhooks_delete(struct req *r) {
    if (!id_is_valid(r->param[0])) {
        reply_error_code(r, TM_ENOT_FOUND, "", "webhook not found");
        return;
    }
    store_op_init(&r->op, STORE_OP_WEBHOOK_DELETE);
    r->op.ns = r->ns;
    snprintf(r->op.id, sizeof r->op.id, "%s", r->param[0]);
    req_submit(r, reply_op_empty);
}

static void webhooks_deliveries(struct req *r) {
    const char *id = r->param[0];
    struct webhook *w = NULL;
    size_t n = 0;
    struct tm_error e;
    err_clear(&e);
    int limit;
    struct webhooks_query q = {true, NULL, NULL, NULL, NULL};
    struct delivery_page page = {NULL, -1, ""};
    if (webhooks_check_query(r, &q)) return;
    if (v1_decode_history_limit(q.limit, &limit, &e) ||
        (q.cursor && delivery_cursor_parse(q.cursor, &page, &e))) {
        reply_error(r, &e);
        return;
    }
    if (q.status) {
        if (strcmp(q.status, "pending") != 0 && strcmp(q.status, "delivered") != 0 &&
            strcmp(q.status, "failed") != 0) {
            reply_error_code(r, TM_EINVALID, "status",
                             "'status' must be one of 'pending', 'delivered', 'failed'");
            return;
        }
        page.status = q.status;
    }
    if (!id_is_valid(id) || store_webhooks_list(req_store(r), r->ns, id, &w, &n, &e)) {
        if (!e.code) err_set(&e, TM_ENOT_FOUND, "", "webhook '%.64s' not found", id);
        reply_error(r, &e);
        return;
    }
    webhooks_free(w, n);
    /* A webhook the circuit breaker holds tries none of its deliveries
     * before the hold ends, whatever each one's own next_at says. */
    int64_t held_until = webhook_sender_held_until(r->srv->webhooks, id);
    struct webhook_delivery *d = NULL;
    /* One more than the page, to know whether another follows. */
    if (store_deliveries_page(req_store(r), id, &page, limit + 1, &d, &n, &e)) {
        reply_error(r, &e);
        return;
    }
    bool more = n > (size_t)limit;
    if (more) n = (size_t)limit;
    struct buf b;
    buf_init(&b);
    buf_puts(&b, "{\"deliveries\":[");
    for (size_t i = 0; i < n; i++) {
        if (i) buf_putc(&b, ',');
        buf_puts(&b, "{\"id\":");
        json_put_str(&b, d[i].id);
        buf_printf(&b, ",\"seq\":%lld,\"event\":", (long long)d[i].seq);
        json_put_str(&b, d[i].event);
        json_put_key(&b, "status", false);
        json_put_str(&b, d[i].status);
        buf_printf(&b, ",\"attempts\":%lld,\"last_status\":%lld,\"last_error\":",
                   (long long)d[i].attempts, (long long)d[i].last_status);
        json_put_str(&b, d[i].last_error);
        json_put_key(&b, "next_attempt_at", false);
        if (strcmp(d[i].status, "pending") == 0)
            json_put_time(&b, d[i].next_at > held_until ? d[i].next_at : held_until);
        else
            buf_puts(&b, "null");
        json_put_key(&b, "created_at", false);
        json_put_time(&b, d[i].created_at);
        json_put_key(&b, "updated_at", false);
        json_put_time(&b, d[i].updated_at);
        buf_putc(&b, '}');
    }
    buf_puts(&b, "],\"next_cursor\":");
    if (more)
        delivery_cursor_write(&b, &d[n - 1]);
    else
        buf_puts(&b, "null");
    buf_putc(&b, '}');
    deliveries_free(d, more ? n + 1 : n);
    reply_json(r, 200, &b);
}

const struct route v1_webhooks_routes[] = {
    {"POST", "/v1/webhooks", webhooks_create, PERM_OWNER},
    {"GET", "/v1/webhooks", webhooks_list, PERM_OWNER},
    {"GET", "/v1/webhooks/:id", webhooks_list, PERM_OWNER},
    {"PATCH", "/v1/webhooks/:id", webhooks_update, PERM_OWNER},
    {"DELETE", "/v1/webhooks/:id", webhooks_delete, PERM_OWNER},
    {"GET", "/v1/webhooks/:id/deliveries", webhooks_deliveries, PERM_OWNER},
    {NULL, NULL, NULL, 0},
};
