/*
 * v1_schedules: recurring work (docs/schedules.md):
 *
 *   POST   /v1/schedules                      {name, cron|interval_seconds, ...} -> 201
 *   GET    /v1/schedules                      {"schedules": [...]}
 *   GET    /v1/schedules/{id|name}
 *   PUT    /v1/schedules/{id|name}            the whole schedule again
 *   DELETE /v1/schedules/{id|name}            204
 *   POST   /v1/schedules/{id|name}/pause      {note?}
 *   POST   /v1/schedules/{id|name}/resume     {note?}
 *   POST   /v1/schedules/{id|name}/trigger    -> 201 the task
 *   POST   /v1/schedules/{id|name}/backfill   {from, to} -> {fired, skipped}
 *   GET    /v1/schedules/{id|name}/preview    ?count=N&after=T: the next fire times
 *   GET    /v1/schedules/{id|name}/fires      ?limit=N: the fired slots, newest first
 *
 * The store fires them (store_schedules.c); this file checks what it is
 * sent, so nothing invalid is stored.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/schedule.h"
#include "../common/task_json.h"
#include "../common/timeutil.h"
#include "../common/xalloc.h"
#include "server_int.h"
#include "v1_decode.h"
#include "v1_docs.h"

/* Checks a schedule body; its name as one a path can carry, the inline task as
 * a submit, the definition as existing. (The store anchors an interval without
 * start_at: store_schedules.c.) */
static int schedule_check(struct req *r, const char *ns, struct tm_error *e) {
    struct schedule sc;
    /* The name first: a new name's rule (127 bytes) is the one to state. */
    if (schedule_name_check(json_string_value(json_object_get(r->json, "name")), e) ||
        schedule_parse(r->json, &sc, e))
        return -1;
    int rc;
    if (sc.task) {
        struct task *t = NULL;
        rc = v1_decode_task(sc.task, req_limits(r), ns, &t, e);
        task_free(t);
        if (rc) {
            char field[sizeof e->field];
            snprintf(field, sizeof field, "task%s%s", e->field[0] ? "." : "", e->field);
            snprintf(e->field, sizeof e->field, "%s", field);
        }
        /* One key for every slot would hand each slot the first slot's task. */
        json_t *key = json_object_get(sc.task, "idempotency_key");
        if (rc == 0 && key && !json_is_null(key))
            rc = err_set(e, TM_EINVALID, "task.idempotency_key",
                         "a schedule's task must not have 'idempotency_key': every slot would "
                         "get the first slot's task (each slot launches once without it)");
    } else {
        struct store_doc d;
        rc = store_doc_get(req_store(r), STORE_DOC_DEFINITION, ns, sc.definition, &d, e);
        if (rc == TM_ENOT_FOUND) {
            err_set(e, TM_EINVALID, "definition",
                    "definition '%.64s' not found in namespace '%.64s'", sc.definition, ns);
        } else if (rc == 0) {
            /* Its params over the defaults must still make a task. */
            json_t *db = json_loads(d.body, 0, NULL);
            json_t *tb = schedule_task_body(db, d.id, NULL, sc.params, "x");
            struct task *t = NULL;
            rc = v1_decode_task(tb, req_limits(r), ns, &t, e);
            task_free(t);
            json_decref(tb);
            json_decref(db);
            store_doc_release(&d);
        }
    }
    schedule_release(&sc);
    return rc ? -1 : 0;
}

static const struct v1_doc_type schedules = {STORE_DOC_SCHEDULE, "schedules", schedule_check};

static void schedules_changed(struct req *r) {
    if (!reply_if_op_failed(r)) v1_doc_reply(r, 200, r->op.doc);
}

/* Starts an op on the path's schedule; NULL after a reply. */
static struct store_op *schedule_op(struct req *r, enum store_op_kind kind) {
    struct store_doc d;
    if (v1_doc_path_get(r, STORE_DOC_SCHEDULE, &d)) return NULL;
    store_op_init(&r->op, kind);
    r->op.ns = r->ns;
    r->op.doc_kind = STORE_DOC_SCHEDULE;
    memcpy(r->op.id, d.id, ID_LEN + 1);
    r->op.doc = v1_doc_new(r, d.ns);
    store_doc_release(&d);
    return &r->op;
}

/* POST .../pause and .../resume (the route's arg: 1 pauses, 0 resumes). */
static void schedules_pause_set(struct req *r) {
    static const char *const fields[] = {"note", NULL};
    if (req_json_fields(r, true, fields)) return;
    json_t *note = json_object_get(r->json, "note");
    if (note && (!json_is_string(note) || strlen(json_string_value(note)) > 1024)) {
        reply_error_code(r, TM_EINVALID, "note", "'note' must be a string of at most 1024 bytes");
        return;
    }
    if (!schedule_op(r, STORE_OP_SCHED_PAUSE)) return;
    r->op.flag = r->route->arg != 0;
    r->op.note = json_string_value(note);
    req_submit(r, schedules_changed);
}

static void schedules_triggered(struct req *r) {
    if (reply_if_op_failed(r)) return;
    struct buf b;
    buf_init(&b);
    buf_puts(&b, "{\"task\":");
    if (r->op.task)
        store_op_write_task(&b, &r->op, r->op.task);
    else
        buf_puts(&b, "null");
    json_put_key(&b, "schedule", false);
    v1_doc_write(&b, r->op.doc);
    buf_putc(&b, '}');
    reply_json(r, 201, &b);
}

static void schedules_trigger(struct req *r) {
    if (req_json_fields(r, true, NULL)) return;
    if (!schedule_op(r, STORE_OP_SCHED_TRIGGER)) return;
    req_submit(r, schedules_triggered);
}

static void schedules_backfilled(struct req *r) {
    if (reply_if_op_failed(r)) return;
    struct buf b;
    buf_init(&b);
    buf_printf(&b, "{\"fired\":%lld,\"skipped\":%lld,\"schedule\":", (long long)r->op.fired,
               (long long)r->op.skipped);
    v1_doc_write(&b, r->op.doc);
    buf_putc(&b, '}');
    reply_json(r, 200, &b);
}

/* POST .../backfill {from, to}: every slot in [from, to) not fired yet. */
static void schedules_backfill(struct req *r) {
    static const char *const fields[] = {"from", "to", NULL};
    if (req_json_fields(r, false, fields)) return;
    int64_t from = 0, to = 0;
    const char *fs = json_string_value(json_object_get(r->json, "from"));
    const char *ts = json_string_value(json_object_get(r->json, "to"));
    if (!fs || time_parse_rfc3339(fs, &from)) {
        reply_error_code(r, TM_EINVALID, "from", "'from' must be " TIME_RFC3339_WANT);
        return;
    }
    if (!ts || time_parse_rfc3339(ts, &to)) {
        reply_error_code(r, TM_EINVALID, "to", "'to' must be " TIME_RFC3339_WANT);
        return;
    }
    if (to <= from) {
        reply_error_code(r, TM_EINVALID, "to", "'to' must be after 'from'");
        return;
    }
    if (to > time_now_ms()) {
        reply_error_code(r, TM_EINVALID, "to", "'to' must not be in the future");
        return;
    }
    if (!schedule_op(r, STORE_OP_SCHED_BACKFILL)) return;
    r->op.from_ms = from;
    r->op.to_ms = to;
    req_submit(r, schedules_backfilled);
}

/* GET .../preview?count=N&after=T: the next N fires, with the ones a
 * daylight-saving change moves marked. */
static void schedules_preview(struct req *r) {
    struct store_doc d;
    if (v1_doc_path_get(r, STORE_DOC_SCHEDULE, &d)) return;
    struct tm_error e;
    err_clear(&e);
    int64_t count = 10, after = time_now_ms();
    const char *cs = req_query(r, "count"), *as = req_query(r, "after");
    if (cs && v1_parse_int(cs, 1, SCHEDULE_PREVIEW_MAX, &count)) {
        store_doc_release(&d);
        err_set(&e, TM_EINVALID, "count", "'count' must be an integer from 1 to %d",
                SCHEDULE_PREVIEW_MAX);
        reply_error(r, &e);
        return;
    }
    if (as && time_parse_rfc3339(as, &after)) {
        store_doc_release(&d);
        reply_error_code(r, TM_EINVALID, "after", "'after' must be " TIME_RFC3339_WANT);
        return;
    }
    json_t *body = json_loads(d.body, 0, NULL);
    struct schedule sc;
    int rc = schedule_parse(body, &sc, &e);
    json_decref(body);
    if (rc) {
        store_doc_release(&d);
        reply_error(r, &e);
        return;
    }
    struct buf b;
    buf_init(&b);
    buf_puts(&b, "{\"schedule_id\":");
    json_put_str(&b, d.id);
    json_put_key(&b, "timezone", false);
    json_put_str(&b, sc.tz_name);
    json_put_key(&b, "fires", false);
    buf_putc(&b, '[');
    int64_t cur = after;
    for (int64_t i = 0; i < count; i++) {
        unsigned flags = 0;
        int64_t slot = schedule_next_slot(&sc, cur, &flags);
        if (!slot) break;
        char at[TIME_RFC3339_LEN + 1];
        time_format_rfc3339(slot, at);
        bool dst;
        int32_t off = tz_offset(sc.tz, slot / 1000, &dst);
        char local[TIME_RFC3339_LEN + 1];
        time_format_rfc3339(slot + (int64_t)off * 1000, local);
        local[19] = '\0'; /* the wall clock, without the Z */
        buf_printf(&b,
                   "%s{\"at\":\"%s\",\"local\":\"%s\",\"utc_offset_seconds\":%d,\"dst\":%s,"
                   "\"shifted\":%s,\"repeated\":%s}",
                   i ? "," : "", at, local, (int)off, dst ? "true" : "false",
                   flags & CRON_FIRE_SHIFTED ? "true" : "false",
                   flags & CRON_FIRE_REPEATED ? "true" : "false");
        cur = slot;
    }
    buf_puts(&b, "]}");
    schedule_release(&sc);
    store_doc_release(&d);
    reply_json(r, 200, &b);
}

/* GET .../fires?limit=N (1..1000, 100): what each slot did, newest first. */
static void schedules_fires(struct req *r) {
    struct store_doc d;
    if (v1_doc_path_get(r, STORE_DOC_SCHEDULE, &d)) return;
    struct tm_error e;
    err_clear(&e);
    int limit;
    if (v1_decode_history_limit(req_query(r, "limit"), &limit, &e)) {
        store_doc_release(&d);
        reply_error(r, &e);
        return;
    }
    struct schedule_fire *f = NULL;
    size_t n = 0;
    int rc = store_fires_list(req_store(r), d.id, limit, &f, &n, &e);
    store_doc_release(&d);
    if (rc) {
        reply_error(r, &e);
        return;
    }
    struct buf b;
    buf_init(&b);
    buf_puts(&b, "{\"fires\":[");
    for (size_t i = 0; i < n; i++) {
        char slot[TIME_RFC3339_LEN + 1], at[TIME_RFC3339_LEN + 1];
        time_format_rfc3339(f[i].slot, slot);
        time_format_rfc3339(f[i].at, at);
        buf_printf(&b, "%s{\"slot\":\"%s\",\"kind\":\"%s\",\"outcome\":\"%s\",\"task_id\":",
                   i ? "," : "", slot, f[i].kind, f[i].outcome);
        json_put_str(&b, f[i].task_id[0] ? f[i].task_id : NULL);
        buf_printf(&b, ",\"at\":\"%s\"}", at);
    }
    buf_puts(&b, "]}");
    free(f);
    reply_json(r, 200, &b);
}

const struct route v1_schedules_routes[] = {
    V1_DOC_ROUTES("schedules", schedules),
    {"POST", "/v1/schedules/:id/pause", schedules_pause_set, PERM_OWNER, true},
    {"POST", "/v1/schedules/:id/resume", schedules_pause_set, PERM_OWNER, false},
    {"POST", "/v1/schedules/:id/trigger", schedules_trigger, PERM_OWNER},
    {"POST", "/v1/schedules/:id/backfill", schedules_backfill, PERM_OWNER},
    {"GET", "/v1/schedules/:id/preview", schedules_preview, PERM_READ},
    {"GET", "/v1/schedules/:id/fires", schedules_fires, PERM_READ},
    {NULL, NULL, NULL, 0},
};
