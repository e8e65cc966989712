/*
 * v1_docs: the shared part of /v1/definitions and /v1/schedules (v1_docs.h).
 */
#include "v1_docs.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/timeutil.h"
#include "../common/xalloc.h"
#include "server_int.h"
#include "v1_decode.h"

int v1_doc_namespace(struct req *r, char ns[65], struct tm_error *e) {
    json_t *v = json_object_get(r->json, "namespace");
    const char *given = json_string_value(v);
    if (v && (!given || !v1_is_name(given, 64)))
        return err_set(e, TM_EINVALID, "namespace", "'namespace' must be 1-64 of [A-Za-z0-9._-]");
    if (given && r->ns && strcmp(given, r->ns) != 0)
        return err_set(e, TM_EINVALID, "namespace", "'namespace' must be '%.64s' for this token",
                       r->ns);
    snprintf(ns, 65, "%s", r->ns ? r->ns : given ? given : "default");
    if (v) json_object_del(r->json, "namespace");
    return 0;
}

static void doc_free(void *p) {
    struct store_doc *d = p;
    store_doc_release(d);
    free(d);
}

struct store_doc *v1_doc_new(struct req *r, const char *ns) {
    struct store_doc *d = xcalloc(1, sizeof *d);
    d->ns = xstrdup(ns);
    r->owned = d;
    r->owned_free = doc_free;
    return d;
}

static void put_time(json_t *o, const char *key, int64_t ms) {
    if (!ms) {
        json_object_set_new(o, key, json_null());
        return;
    }
    char t[TIME_RFC3339_LEN + 1];
    time_format_rfc3339(ms, t);
    json_object_set_new(o, key, json_string(t));
}

/* Whether run `id` of a schedule in ns is not finished now: one gone or
 * terminal is finished; one that cannot be read now is kept. */
static bool run_is_unfinished(struct req *r, const char *ns, const char *id) {
    struct task *t = NULL;
    struct tm_error e;
    err_clear(&e);
    int rc = id ? store_task_get(req_store(r), ns, id, &t, &e) : TM_ENOT_FOUND;
    bool unfinished = rc ? rc != TM_ENOT_FOUND : !task_is_terminal(t);
    task_free(t);
    return unfinished;
}

/* The doc's JSON; with r, a schedule's "running" is what its stored
 * "active" (ACTIVE_MAX ids at most) still holds unfinished, read now and
 * not written back. Without r it is as stored, which the store refreshes
 * when it fires or changes the schedule (trigger and backfill replies). */
static void doc_write(struct buf *b, const struct store_doc *d, struct req *r) {
    json_t *o = json_object(), *body = d->body ? json_loads(d->body, 0, NULL) : NULL;
    json_object_set_new(o, "id", json_string(d->id));
    json_object_set_new(o, "namespace", json_string(d->ns ? d->ns : ""));
    if (json_is_object(body)) json_object_update(o, body);
    json_decref(body);
    if (d->state) { /* a schedule: what firing keeps */
        json_t *st = json_loads(d->state, 0, NULL);
        json_object_set_new(o, "paused", json_boolean(json_is_true(json_object_get(st, "paused"))));
        json_t *note = json_object_get(st, "note");
        json_object_set(o, "note", note ? note : json_null());
        put_time(o, "next_fire_at", d->next_at);
        put_time(o, "last_fire_at", json_integer_value(json_object_get(st, "last_fire_at")));
        put_time(o, "last_slot", json_integer_value(json_object_get(st, "last_slot")));
        static const char *const keys[] = {"last_outcome", "last_task_id", "last_error"};
        for (int i = 0; i < 3; i++) {
            json_t *v = json_object_get(st, keys[i]);
            json_object_set(o, keys[i], v ? v : json_null());
        }
        json_object_set_new(o, "fires",
                            json_integer(json_integer_value(json_object_get(st, "fires"))));
        json_object_set_new(o, "missed",
                            json_integer(json_integer_value(json_object_get(st, "missed"))));
        json_t *running = json_array(), *v;
        size_t i;
        json_array_foreach(json_object_get(st, "active"), i, v) {
            if (!r || run_is_unfinished(r, d->ns, json_string_value(v)))
                json_array_append(running, v);
        }
        json_object_set_new(o, "running", running);
        json_decref(st);
    }
    put_time(o, "created_at", d->created_at);
    put_time(o, "updated_at", d->updated_at);
    char *s = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
    buf_puts(b, s);
    free(s);
    json_decref(o);
}

void v1_doc_write(struct buf *b, const struct store_doc *d) {
    doc_write(b, d, NULL);
}

void v1_doc_reply(struct req *r, int status, const struct store_doc *d) {
    struct buf b;
    buf_init(&b);
    doc_write(&b, d, r);
    reply_json(r, status, &b);
}

void v1_doc_list(struct req *r) {
    const struct v1_doc_type *ty = r->route->data;
    struct store_doc *d = NULL;
    size_t n = 0;
    struct tm_error e;
    err_clear(&e);
    if (store_doc_list(req_store(r), ty->kind, r->ns, &d, &n, &e)) {
        reply_error(r, &e);
        return;
    }
    struct buf b;
    buf_init(&b);
    buf_printf(&b, "{\"%s\":[", ty->collection);
    for (size_t i = 0; i < n; i++) {
        if (i) buf_putc(&b, ',');
        doc_write(&b, &d[i], r);
    }
    buf_puts(&b, "]}");
    store_docs_free(d, n);
    reply_json(r, 200, &b);
}

static void doc_put_done(struct req *r) {
    const struct v1_doc_type *ty = r->route->data;
    if (reply_if_op_failed(r)) return;
    if (r->op.created) reply_add_location(r, ty->collection, r->op.doc->id);
    v1_doc_reply(r, r->op.created ? 201 : 200, r->op.doc);
}

/* POST (key NULL: create) or PUT (replace the one named key). */
static void doc_put(struct req *r, const char *key) {
    const struct v1_doc_type *ty = r->route->data;
    enum store_doc_kind k = ty->kind;
    if (req_json_body(r, false)) return;
    struct tm_error e;
    err_clear(&e);
    char ns[65];
    if (v1_doc_namespace(r, ns, &e)) {
        reply_error(r, &e);
        return;
    }
    struct store_doc cur = {0};
    if (key) {
        if (store_doc_get(req_store(r), k, r->ns, key, &cur, &e)) {
            reply_error(r, &e);
            return;
        }
        /* A replace keeps its namespace (the store's doc_put): checked there. */
        snprintf(ns, sizeof ns, "%s", cur.ns);
    }
    if (ty->check(r, ns, &e)) {
        store_doc_release(&cur);
        reply_error(r, &e);
        return;
    }
    struct store_doc *d = v1_doc_new(r, ns);
    if (key) memcpy(d->id, cur.id, sizeof d->id);
    store_doc_release(&cur);
    d->name = xstrdup(json_string_value(json_object_get(r->json, "name")));
    if (k == STORE_DOC_SCHEDULE) {
        /* A null is a field left out: stored without it, so that a node of
         * the version before (which refused nulls, and switched such a
         * schedule off for good) reads it during a rolling upgrade. */
        const char *key_name;
        json_t *v;
        void *tmp;
        json_object_foreach_safe(r->json, tmp, key_name, v) {
            if (json_is_null(v)) json_object_del(r->json, key_name);
        }
    }
    d->body = json_dumps(r->json, JSON_COMPACT | JSON_SORT_KEYS);
    store_op_init(&r->op, STORE_OP_DOC_PUT);
    r->op.ns = r->ns;
    r->op.doc_kind = k;
    r->op.doc = d;
    r->op.flag = key == NULL;
    req_submit(r, doc_put_done);
}

void v1_doc_create(struct req *r) {
    doc_put(r, NULL);
}

void v1_doc_replace(struct req *r) {
    doc_put(r, r->param[0]);
}

int v1_doc_path_get(struct req *r, enum store_doc_kind k, struct store_doc *d) {
    struct tm_error e;
    err_clear(&e);
    if (store_doc_get(req_store(r), k, r->ns, r->param[0], d, &e) == 0) return 0;
    reply_error(r, &e);
    return -1;
}

void v1_doc_get(struct req *r) {
    const struct v1_doc_type *ty = r->route->data;
    struct store_doc d;
    if (v1_doc_path_get(r, ty->kind, &d)) return;
    v1_doc_reply(r, 200, &d);
    store_doc_release(&d);
}

void v1_doc_delete(struct req *r) {
    const struct v1_doc_type *ty = r->route->data;
    struct store_doc d;
    if (v1_doc_path_get(r, ty->kind, &d)) return;
    store_op_init(&r->op, STORE_OP_DOC_DELETE);
    r->op.ns = r->ns;
    r->op.doc_kind = ty->kind;
    memcpy(r->op.id, d.id, ID_LEN + 1);
    store_doc_release(&d);
    req_submit(r, reply_op_empty);
}
