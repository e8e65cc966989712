/*
 * store_events: the event log and webhooks on the store's side: naming the
 * event of each change, the webhook writes applied by the writer thread,
 * and the reads (events after a seq, webhooks, deliveries) that any thread
 * may make through the backend's ops table.
 *
 * Threading: store_event_kind, store_event_cause, store_event_fill and
 * store_webhook_apply run on the writer thread, inside its transaction;
 * the store_*_list/read functions are reads and run on any thread.
 * Ownership: every struct filled here owns its strings; the *_release and
 * *_free functions free them and accept empty or NULL input.
 * Errors: reads answer TM_ENOT_FOUND or TM_EINTERNAL ("storage error",
 * with the backend's own message in the log), as store.c's reads do.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/id.h"
#include "../common/task_json.h"
#include "../common/xalloc.h"
#include "store_int.h"

static const char *const webhook_event_names[WEBHOOK_EVENT_COUNT] = {
    "task.spawned",
    "task.updated",
    "task.completed",
    "task.failed",
};

const char *webhook_event_name(int index) {
    return index >= 0 && index < WEBHOOK_EVENT_COUNT ? webhook_event_names[index] : NULL;
}

int webhook_event_parse(const char *name) {
    for (int i = 0; i < WEBHOOK_EVENT_COUNT; i++)
        if (strcmp(name, webhook_event_names[i]) == 0) return 1 << i;
    return 0;
}

void store_event_release(struct store_event *ev) {
    if (!ev) return;
    free(ev->ns);
    free(ev->queue);
    free(ev->type);
    free(ev->task_json);
    free(ev->stored);
    free(ev->base);
    ev->ns = ev->queue = ev->type = ev->task_json = ev->stored = ev->base = NULL;
}

bool store_event_fill(struct store_event *ev, const struct task *t, const char *kind,
                      const char *cause, int64_t now, size_t task_max_bytes) {
    memset(ev, 0, sizeof *ev);
    ev->at = now;
    ev->version = t->version;
    store_copy_str(ev->kind, sizeof ev->kind, kind);
    store_copy_str(ev->cause, sizeof ev->cause, cause);
    memcpy(ev->task_id, t->id, sizeof ev->task_id);
    ev->ns = xstrdup(t->namespace ? t->namespace : "");
    ev->queue = xstrdup(t->queue ? t->queue : "");
    ev->type = xstrdup(t->type ? t->type : "");
    ev->phase = t->phase;
    ev->hooks = store_event_hooks(kind);
    struct buf b;
    buf_init(&b);
    size_t at = 0;
    bool reduced = task_json_write_capped(&b, t, task_max_bytes, &at);
    ev->task_json = buf_detach(&b);
    /* A task's first and last (deleted) events carry it whole; the others
     * store only what can change (from "phase" on), unless reduced. */
    if (at && strcmp(kind, "task.created") != 0 && strcmp(kind, "task.deleted") != 0) {
        size_t n = strlen(ev->task_json + at + 1);
        ev->stored = xmalloc(n + 2);
        ev->stored[0] = '{';
        memcpy(ev->stored + 1, ev->task_json + at + 1, n + 1);
    }
    return reduced;
}

/* The task as stored now, as whole JSON (its creation keys never
 * change), or NULL when it is gone. */
static char *store_event_task_now(struct store *s, const char *id) {
    struct task *t = NULL;
    if (store_base_of(s)->backend->get(s, NULL, id, &t) != 0) return NULL;
    struct buf b;
    buf_init(&b);
    task_json_write(&b, t);
    task_free(t);
    return buf_detach(&b);
}

/* The creation keys the event row has (id, namespace, type, queue), the
 * others reduced: for a deleted task whose first events retention removed
 * (its task.deleted event, later in the log, is whole). */
static char *store_event_reduced(const struct store_event *ev) {
    struct task r = {0};
    memcpy(r.id, ev->task_id, sizeof r.id);
    r.namespace = ev->ns;
    r.type = ev->type;
    r.queue = ev->queue;
    struct buf b;
    buf_init(&b);
    task_json_write(&b, &r);
    char *whole = task_json_join(b.p, ev->task_json, true);
    buf_release(&b);
    return whole;
}

void store_events_resolve(struct store *s, struct store_event *evs, size_t n) {
    char *now = NULL; /* the task as stored now, of now_id */
    const char *now_id = NULL;
    for (size_t i = 0; i < n; i++) {
        struct store_event *ev = &evs[i];
        char *whole = NULL;
        if (ev->task_json && !task_json_is_whole(ev->task_json)) {
            if (task_json_is_whole(ev->base)) {
                whole = task_json_join(ev->base, ev->task_json, false);
            } else {
                if (!now_id || strcmp(now_id, ev->task_id) != 0) {
                    free(now);
                    now = store_event_task_now(s, ev->task_id);
                    now_id = ev->task_id;
                }
                if (now) whole = task_json_join(now, ev->task_json, false);
            }
            if (!whole) whole = store_event_reduced(ev);
        }
        free(ev->base);
        ev->base = NULL;
        if (whole) {
            free(ev->task_json);
            ev->task_json = whole;
        }
    }
    free(now);
}

/* Livepeer's names: spawned on create, updated on every later change, and
 * completed / failed besides updated on those phases. */
unsigned store_event_hooks(const char *kind) {
    if (strcmp(kind, "task.created") == 0) return WEBHOOK_SPAWNED;
    if (strcmp(kind, "task.deleted") == 0) return 0;
    if (strcmp(kind, "task.completed") == 0) return WEBHOOK_UPDATED | WEBHOOK_COMPLETED;
    if (strcmp(kind, "task.failed") == 0) return WEBHOOK_UPDATED | WEBHOOK_FAILED;
    return WEBHOOK_UPDATED;
}

const char *store_event_kind(const struct store_op *op, int before, const struct task *t,
                             char buf[24]) {
    if (before < 0) return "task.created";
    if (before != (int)t->phase) {
        snprintf(buf, 24, "task.%s", task_phase_name(t->phase));
        return buf;
    }
    if (!op) return "task.updated";
    switch (op->kind) {
    case STORE_OP_PAUSE:
        return "task.paused";
    case STORE_OP_RESUME:
        return "task.resumed";
    case STORE_OP_HEARTBEAT:
    case STORE_OP_COMPLETE:
    case STORE_OP_FAIL:
    case STORE_OP_RELEASE:
        if (op->messages) return "task.message";
        if (op->has_progress || op->items || op->attributes) return "task.progress";
        return "task.lease";
    case STORE_OP_FINISH:
        return op->has_progress ? "task.progress" : "task.updated";
    default:
        return "task.updated";
    }
}

const char *store_event_cause(const struct store_op *op, int before) {
    if (!op) return before == TASK_WAITING ? "due" : "lease_expired";
    switch (op->kind) {
    case STORE_OP_CREATE:
        return "create";
    case STORE_OP_CLAIM:
        return "claim";
    case STORE_OP_HEARTBEAT:
        return "heartbeat";
    case STORE_OP_COMPLETE:
        return "complete";
    case STORE_OP_FAIL:
        return "fail";
    case STORE_OP_RELEASE:
        return "release";
    case STORE_OP_CANCEL:
        return "cancel";
    case STORE_OP_RETRY:
        return "retry";
    case STORE_OP_PAUSE:
        return "pause";
    case STORE_OP_RESUME:
        return "resume";
    case STORE_OP_DELETE:
        return "delete";
    case STORE_OP_FINISH:
        return "finish";
    default:
        return "update";
    }
}

int store_webhook_apply(struct store *s, struct store_op *op, int64_t now) {
    const struct store_backend *be = store_base_of(s)->backend;
    int rc;
    switch (op->kind) {
    case STORE_OP_WEBHOOK_ADD: {
        /* Each webhook adds a delivery row to every matching event's
         * transaction, which every tenant's writes share: cap them. */
        int64_t n = 0;
        int max = store_options_of(s)->webhooks_max;
        if ((rc = be->webhook_count(s, op->webhook->ns, &n))) return rc;
        if (max > 0 && n >= max) {
            if (op->webhook->ns)
                return err_set(&op->err, TM_ECONFLICT, "namespace",
                               "namespace '%.64s' has %d webhooks already, the most allowed; "
                               "delete one first",
                               op->webhook->ns, max);
            return err_set(&op->err, TM_ECONFLICT, "namespace",
                           "%d webhooks without a namespace exist already, the most allowed; "
                           "delete one first",
                           max);
        }
        id_new(op->webhook->id);
        op->webhook->created_at = now;
        return be->webhook_insert(s, op->webhook);
    }
    case STORE_OP_WEBHOOK_DELETE:
        rc = be->webhook_delete(s, op->ns, op->id);
        if (rc == TM_ENOT_FOUND)
            return err_set(&op->err, rc, "", "webhook '%.64s' not found", op->id);
        return rc;
    case STORE_OP_WEBHOOK_UPDATE:
        rc = be->webhook_update(s, op->ns, op->id, op->webhook, now);
        if (rc == TM_ENOT_FOUND)
            return err_set(&op->err, rc, "", "webhook '%.64s' not found", op->id);
        return rc;
    default:
        return be->delivery_update(s, op->delivery);
    }
}

/* ---- Reads ---- */

static int store_events_error(int rc, struct tm_error *e, const char *what, const char *id) {
    if (rc == TM_ENOT_FOUND) return err_set(e, rc, "", "%s '%.64s' not found", what, id ? id : "");
    if (rc == TM_EUNAVAILABLE) return err_set(e, rc, "", "storage unavailable; try again");
    return err_set(e, TM_EINTERNAL, "", "storage error");
}

int store_events_read(struct store *s, const char *ns, const char *task_id, int64_t after,
                      int limit, size_t max_bytes, struct event_page *out, struct tm_error *e) {
    memset(out, 0, sizeof *out);
    int rc = store_base_of(s)->backend->events_read(s, ns, task_id, after, limit, max_bytes, out);
    if (rc) event_page_release(out);
    if (!rc) store_events_resolve(s, out->events, out->n);
    return rc ? store_events_error(rc, e, "event", NULL) : 0;
}

void event_page_release(struct event_page *p) {
    for (size_t i = 0; i < p->n; i++)
        store_event_release(&p->events[i]);
    free(p->events);
    memset(p, 0, sizeof *p);
}

int store_events_head(struct store *s, int64_t *head, int64_t *pruned_through, struct tm_error *e) {
    int rc = store_base_of(s)->backend->events_head(s, head, pruned_through);
    return rc ? store_events_error(rc, e, "event", NULL) : 0;
}

void webhook_release(struct webhook *w) {
    if (!w) return;
    free(w->ns);
    free(w->name);
    free(w->url);
    free(w->secret);
    w->ns = w->name = w->url = w->secret = NULL;
}

void webhooks_free(struct webhook *w, size_t n) {
    for (size_t i = 0; w && i < n; i++)
        webhook_release(&w[i]);
    free(w);
}

void deliveries_free(struct webhook_delivery *d, size_t n) {
    for (size_t i = 0; d && i < n; i++) {
        free(d[i].last_error);
        free(d[i].url);
        free(d[i].secret);
        store_event_release(&d[i].ev);
    }
    free(d);
}

int store_webhooks_list(struct store *s, const char *ns, const char *id, struct webhook **out,
                        size_t *n, struct tm_error *e) {
    *out = NULL;
    *n = 0;
    int rc = store_base_of(s)->backend->webhooks_list(s, ns, id, out, n);
    if (rc == 0 && id && *n == 0) rc = TM_ENOT_FOUND;
    return rc ? store_events_error(rc, e, "webhook", id) : 0;
}

int store_deliveries_list(struct store *s, const char *webhook_id, int limit,
                          struct webhook_delivery **out, size_t *n, struct tm_error *e) {
    return store_deliveries_page(s, webhook_id, NULL, limit, out, n, e);
}

int store_deliveries_page(struct store *s, const char *webhook_id, const struct delivery_page *page,
                          int limit, struct webhook_delivery **out, size_t *n, struct tm_error *e) {
    *out = NULL;
    *n = 0;
    int rc = store_base_of(s)->backend->deliveries_page(s, webhook_id, page, limit, out, n);
    return rc ? store_events_error(rc, e, "webhook", webhook_id) : 0;
}

int store_deliveries_next_at(struct store *s, int64_t *at, struct tm_error *e) {
    int rc = store_base_of(s)->backend->deliveries_next_at(s, at);
    return rc ? store_events_error(rc, e, "delivery", NULL) : 0;
}
