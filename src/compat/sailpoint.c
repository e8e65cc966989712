/*
 * sailpoint: SailPoint Identity Security Cloud's task-status API
 * (/beta, /v2024 and /v2025 /task-status, and POST /oauth/token), served
 * as a projection of the canonical record: no state of its own. The field
 * mapping and every choice made where SailPoint's material is silent are
 * in docs/compat.md; the shapes are spec research section 2.
 *
 * Reads run on the calling libmicrohttpd thread; the PATCH is one
 * STORE_OP_FINISH, answered when durable. Parsers are pure and live in
 * sailpoint_filter.c and sailpoint_parse.c. Every error, auth refusals
 * included, leaves through reply_error and sailpoint_write_error (the
 * route table's error writer, http.h): SailPoint's ErrorResponseDto, or
 * RFC 6749's {"error","error_description"} on /oauth/token.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "../common/filter.h"
#include "../common/id.h"
#include "../common/task_json.h"
#include "../common/timeutil.h"
#include "../common/xalloc.h"
#include "../server/http.h"
#include "views.h"
#include "sailpoint_filter.h"
#include "sailpoint_parse.h"

#define SP_LIMIT_MAX 250
/* X-Total-Count counts at most this many tasks; past it the header says
 * this bound and X-Total-Count-Capped: true (docs/compat.md). */
#define SP_TOTAL_MAX       10000
#define SP_TOKEN_EXPIRES_S 43199 /* what SailPoint's own tokens say */

/* ---- Errors ---- */

static const char *sailpoint_detail_code(int status) {
    switch (status) {
    case 400:
        return "400.1 Bad Request Content";
    case 401:
        return "401 Unauthorized";
    case 403:
        return "403 Forbidden";
    case 404:
        return "404 Not found";
    case 405:
        return "405 Method Not Allowed";
    case 409:
        return "409 Conflict";
    case 413:
        return "413 Payload Too Large";
    case 415:
        return "415 Unsupported Media Type";
    case 431:
        return "431 Request Header Fields Too Large";
    case 503:
        return "503 Service Unavailable";
    default:
        return status >= 500 ? "500.0 Internal Fault" : "400.0 Bad Request";
    }
}

void sailpoint_write_error(struct buf *b, int status, const struct tm_error *e) {
    int code = e->code ? e->code : TM_EINTERNAL;
    const char *text = e->message[0] ? e->message : err_default_message(code);
    if (status == 429) { /* SailPoint's 429 body (idn/v3/responses/429.yaml) */
        buf_puts(b, "{\"message\":");
        json_put_str(b, text);
        buf_putc(b, '}');
        return;
    }
    char tracking[ID_LEN + 1];
    id_random_hex(tracking);
    buf_puts(b, "{\"detailCode\":");
    json_put_str(b, sailpoint_detail_code(status));
    json_put_key(b, "trackingId", false);
    json_put_str(b, tracking);
    buf_puts(b, ",\"messages\":[{\"locale\":\"en-US\",\"localeOrigin\":\"DEFAULT\",\"text\":");
    json_put_str(b, text);
    buf_puts(b, "}],\"causes\":[]}");
}

void sailpoint_oauth_write_error(struct buf *b, int status, const struct tm_error *e) {
    const char *kind = status == 401                         ? "invalid_client"
                       : status == 403                       ? "unauthorized_client"
                       : status >= 500                       ? "server_error"
                       : strcmp(e->field, "grant_type") == 0 ? "unsupported_grant_type"
                                                             : "invalid_request";
    buf_puts(b, "{\"error\":");
    json_put_str(b, kind);
    json_put_key(b, "error_description", false);
    json_put_str(b, e->message[0] ? e->message : err_default_message(e->code));
    buf_putc(b, '}');
}

/* ---- Projection ---- */

/* TaskStatus.type: QUARTZ for a task a schedule launched (launcher
 * "schedule:<name>"), else the canonical type when it is one of SailPoint's
 * three, else QUEUED_TASK. */
static const char *sp_type(const struct task *t) {
    static const char *const types[] = {"QUARTZ", "QPOC", "QUEUED_TASK"};
    if (t->launcher && strncmp(t->launcher, "schedule:", 9) == 0) return "QUARTZ";
    for (int i = 0; i < 3; i++)
        if (t->type && strcasecmp(t->type, types[i]) == 0) return types[i];
    return "QUEUED_TASK";
}

/* TaskStatus.progress when no progress text was set: the phase in words. */
static const char *sp_progress_word(const struct task *t) {
    static const char *const words[TASK_PHASE_COUNT] = {
        "Pending", "Waiting", "Running", "Stopping", "Completed", "Failed", "Cancelled",
    };
    if (t->paused && !task_is_terminal(t)) return "Paused";
    return (unsigned)t->phase < TASK_PHASE_COUNT ? words[t->phase] : "Unknown";
}

static const char *sp_jstr(json_t *obj, const char *key) {
    return json_string_value(json_object_get(obj, key));
}

static void sp_put_str_or(struct buf *b, const char *s, const char *fallback) {
    json_put_str(b, s ? s : fallback);
}

/* A message's parameters in the seed's type, a list of objects (or
 * strings), whatever a worker sent: an object is one entry, a string stays,
 * any other value becomes its JSON text; a scalar alone becomes a list of one. */
static void sp_write_parameters(struct buf *b, json_t *p) {
    if (!p || json_is_null(p)) {
        buf_puts(b, "[]");
        return;
    }
    json_t *list = json_is_array(p) ? json_incref(p) : json_pack("[O]", p);
    buf_putc(b, '[');
    size_t i;
    json_t *v;
    json_array_foreach(list, i, v) {
        if (i) buf_putc(b, ',');
        if (json_is_object(v) || json_is_string(v)) {
            char *text = json_text(v);
            buf_puts(b, text);
            free(text);
        } else {
            char *text = json_text(v);
            json_put_str(b, text);
            free(text);
        }
    }
    buf_putc(b, ']');
    json_decref(list);
}

/* The messages; a failed task's v1 error comes last as an ERROR message
 * (key taskmill.error), so the view says why it failed. */
static void sp_write_messages(struct buf *b, const struct task *t) {
    json_t *all = t->messages ? json_loads(t->messages, 0, NULL) : NULL;
    buf_putc(b, '[');
    size_t i;
    json_t *m;
    size_t n = 0;
    json_array_foreach(all, i, m) {
        if (n++) buf_putc(b, ',');
        buf_puts(b, "{\"type\":");
        sp_put_str_or(b, sp_jstr(m, "level"), "INFO");
        json_put_key(b, "localizedText", false);
        buf_putc(b, '{');
        json_put_key(b, "locale", true);
        sp_put_str_or(b, sp_jstr(m, "locale"), "en-US");
        json_put_key(b, "message", false);
        sp_put_str_or(b, sp_jstr(m, "text"), "");
        buf_puts(b, "},\"key\":");
        sp_put_str_or(b, sp_jstr(m, "key"), "taskmill.message");
        json_put_key(b, "parameters", false);
        sp_write_parameters(b, json_object_get(m, "parameters"));
        buf_putc(b, '}');
    }
    if (t->error && *t->error && t->phase == TASK_FAILED) {
        if (n) buf_putc(b, ',');
        buf_puts(b, "{\"type\":\"ERROR\",\"localizedText\":{\"locale\":\"en-US\",\"message\":");
        json_put_str(b, t->error);
        buf_puts(b, "},\"key\":\"taskmill.error\",\"parameters\":[]}");
    }
    buf_putc(b, ']');
    json_decref(all);
}

static void sp_write_returns(struct buf *b, const char *text) {
    json_t *all = text ? json_loads(text, 0, NULL) : NULL;
    buf_putc(b, '[');
    size_t i;
    json_t *r;
    json_array_foreach(all, i, r) {
        if (i) buf_putc(b, ',');
        buf_puts(b, "{\"name\":");
        sp_put_str_or(b, sp_jstr(r, "name"), "");
        json_put_key(b, "attributeName", false);
        sp_put_str_or(b, sp_jstr(r, "attribute"), "");
        buf_putc(b, '}');
    }
    buf_putc(b, ']');
    json_decref(all);
}

static void sp_write_target(struct buf *b, const char *text) {
    json_t *tg = text ? json_loads(text, 0, NULL) : NULL;
    if (!json_is_object(tg)) {
        buf_puts(b, "null");
    } else {
        buf_puts(b, "{\"id\":");
        sp_put_str_or(b, sp_jstr(tg, "id"), "");
        json_put_key(b, "type", false);
        json_put_str(b, sp_jstr(tg, "type"));
        json_put_key(b, "name", false);
        sp_put_str_or(b, sp_jstr(tg, "name"), "");
        buf_putc(b, '}');
    }
    json_decref(tg);
}

/* taskDefinitionSummary, written only when the task has a definition. */
static void sp_write_definition(struct buf *b, const char *text) {
    json_t *d = text ? json_loads(text, 0, NULL) : NULL;
    if (json_is_object(d)) {
        const char *name = sp_jstr(d, "name");
        json_put_key(b, "taskDefinitionSummary", false);
        buf_putc(b, '{');
        json_put_key(b, "id", true);
        sp_put_str_or(b, sp_jstr(d, "id"), "");
        json_put_key(b, "uniqueName", false);
        sp_put_str_or(b, name, "");
        json_put_key(b, "description", false);
        json_put_str(b, sp_jstr(d, "description"));
        json_put_key(b, "parentName", false);
        sp_put_str_or(b, name, "");
        json_put_key(b, "executor", false);
        json_put_str(b, sp_jstr(d, "executor"));
        json_put_key(b, "arguments", false);
        json_t *args = json_object_get(d, "arguments");
        char *atext = json_is_object(args) ? json_text(args) : NULL;
        buf_puts(b, atext ? atext : "{}");
        free(atext);
        buf_putc(b, '}');
    }
    json_decref(d);
}

/* Writes the TaskStatus of t; parent_name is the parent's uniqueName or NULL. */
static void sp_task_write(struct buf *b, const struct task *t, const char *parent_name) {
    buf_puts(b, "{\"id\":");
    json_put_str(b, t->id);
    json_put_key(b, "type", false);
    json_put_str(b, sp_type(t));
    json_put_key(b, "uniqueName", false);
    sp_put_str_or(b, t->name, t->type ? t->type : "");
    json_put_key(b, "description", false);
    sp_put_str_or(b, t->description, "");
    json_put_key(b, "parentName", false);
    json_put_str(b, parent_name);
    json_put_key(b, "launcher", false);
    sp_put_str_or(b, t->launcher, t->queue ? t->queue : "");
    json_put_key(b, "target", false);
    sp_write_target(b, t->target);
    json_put_key(b, "created", false);
    json_put_time(b, t->created_at);
    json_put_key(b, "modified", false);
    json_put_time(b, t->updated_at);
    json_put_key(b, "launched", false);
    json_put_time(b, t->started_at);
    json_put_key(b, "completed", false);
    json_put_time(b, task_is_terminal(t) ? t->completed_at : 0);
    json_put_key(b, "completionStatus", false);
    json_put_str(b, task_is_terminal(t) ? task_status_name(t->status) : NULL);
    json_put_key(b, "messages", false);
    sp_write_messages(b, t);
    json_put_key(b, "returns", false);
    sp_write_returns(b, t->returns);
    json_put_key(b, "attributes", false);
    json_put_raw(b, t->attributes, "{}");
    json_put_key(b, "progress", false);
    sp_put_str_or(b, t->progress.message, sp_progress_word(t));
    json_put_key(b, "percentComplete", false);
    json_put_int(b, task_percent(t));
    sp_write_definition(b, t->definition);
    buf_putc(b, '}');
}

/* The parent's uniqueName (name, else type), read now; NULL when none. */
static char *sp_parent_name(struct req *r, const struct task *t) {
    if (!t->parent_id[0]) return NULL;
    struct task *p = NULL;
    struct tm_error e;
    err_clear(&e);
    if (store_task_get(req_store(r), r->ns, t->parent_id, &p, &e)) return NULL;
    char *name = xstrdup(p->name ? p->name : p->type ? p->type : "");
    task_free(p);
    return name;
}

static void sp_reply_task(struct req *r, const struct task *t) {
    char *parent = sp_parent_name(r, t);
    struct buf b;
    buf_init(&b);
    sp_task_write(&b, t, parent);
    free(parent);
    reply_json(r, 200, &b);
}

/* ---- GET /task-status/{id} ---- */

static int sp_not_found(struct req *r, const char *id) {
    struct tm_error e;
    err_set(&e, TM_ENOT_FOUND, "id", "TaskStatus with the given id '%.64s' was not found", id);
    reply_error(r, &e);
    return -1;
}

static void sp_get(struct req *r) {
    const char *id = r->param[0];
    if (!id_is_valid(id)) {
        sp_not_found(r, id);
        return;
    }
    struct task *t = NULL;
    struct tm_error e;
    err_clear(&e);
    int rc = store_task_get(req_store(r), r->ns, id, &t, &e);
    if (rc == TM_ENOT_FOUND) {
        sp_not_found(r, id);
        return;
    }
    if (rc) {
        reply_error(r, &e);
        return;
    }
    sp_reply_task(r, t);
    task_free(t);
}

/* ---- GET /task-status: filters, sorters, paging ---- */

/* SailPoint's filterable fields and their canonical fields (docs/compat.md).
 * A field the view fills in from another (sp_task_write: uniqueName from
 * the type, launcher from the queue, description "", progress from the
 * phase) is filtered on that derived value, so a filter finds what a read
 * shows; uniqueName and launcher are indexed as such (docs/storage.md). */
static const struct {
    const char *name;
    enum filter_field field;
} sp_fields[] = {
    {"id", FILTER_FIELD_ID},
    {"sourceId", FILTER_FIELD_TARGET_ID},
    {"completionStatus", FILTER_FIELD_STATUS},
    {"type", FILTER_FIELD_TYPE},
    {"launcher", FILTER_FIELD_LAUNCHER_OR_QUEUE},
    {"uniqueName", FILTER_FIELD_NAME_OR_TYPE},
    {"description", FILTER_FIELD_DESCRIPTION_OR_EMPTY},
    {"progress", FILTER_FIELD_PROGRESS_TEXT},
    {"created", FILTER_FIELD_CREATED_AT},
    {"modified", FILTER_FIELD_UPDATED_AT},
    {"launched", FILTER_FIELD_STARTED_AT},
    {"completed", FILTER_FIELD_COMPLETED_AT},
};

static int sp_filter_reject(struct tm_error *e, const struct filter_expr *x, const char *why) {
    return err_set(e, TM_EINVALID, "filters", "filter '%.64s %s' is not supported: %s", x->name,
                   filter_op_name(x->op), why);
}

/* Resolves one leaf: the field, the operator, the values (e is the cls). */
static int sp_filter_resolve(void *cls, struct filter_expr *x) {
    struct tm_error *e = cls;
    for (size_t i = 0; i < sizeof sp_fields / sizeof sp_fields[0]; i++)
        if (strcmp(x->name, sp_fields[i].name) == 0) x->field = sp_fields[i].field;
    if (x->field == FILTER_FIELD_NONE)
        return err_set(e, TM_EINVALID, "filters",
                       "filter field '%.64s' is not supported; use id, sourceId, "
                       "completionStatus, type, launcher, uniqueName, description, progress, "
                       "created, modified, launched or completed",
                       x->name);
    bool time = filter_field_kind(x->field) == FILTER_KIND_TIME;
    if (x->op == FILTER_CA) return sp_filter_reject(e, x, "no field is a list");
    if (time && (x->op == FILTER_SW || x->op == FILTER_CO))
        return sp_filter_reject(e, x, "dates take eq, ne, gt, ge, lt, le, in, isnull and pr");
    for (size_t i = 0; i < x->nvalues; i++) {
        struct filter_value *v = &x->values[i];
        if (time) {
            if (v->kind == FILTER_VAL_STR) { /* a quoted date-time is accepted too */
                int64_t ms;
                if (time_parse_rfc3339(v->str, &ms))
                    return sp_filter_reject(e, x, "the value is not an RFC 3339 date-time");
                free(v->str);
                v->str = NULL;
                v->kind = FILTER_VAL_TIME;
                v->i = ms;
            }
            if (v->kind != FILTER_VAL_TIME)
                return sp_filter_reject(e, x, "the value must be a date-time");
            continue;
        }
        if (v->kind != FILTER_VAL_STR)
            return sp_filter_reject(e, x, "the value must be a quoted string");
        if (x->field == FILTER_FIELD_STATUS &&
            (x->op == FILTER_EQ || x->op == FILTER_NE || x->op == FILTER_IN)) {
            static const char *const ok[] = {"SUCCESS", "WARNING", "ERROR", "TERMINATED",
                                             "TEMPERROR"};
            bool known = false;
            for (size_t k = 0; k < 5; k++)
                known = known || strcasecmp(v->str, ok[k]) == 0;
            if (!known)
                return sp_filter_reject(e, x,
                                        "completionStatus is SUCCESS, WARNING, ERROR, "
                                        "TERMINATED or TEMPERROR");
        }
    }
    return 0;
}

struct sp_query {
    int limit;
    int64_t offset;
    bool count;
    bool ascending;
    struct filter_expr *expr;
};

/* A whole decimal number in [min, max], or -1 with e set. A sign may lead
 * (Java's Integer.parseInt takes "+5"); white space may not. */
static int sp_query_int(const char *s, const char *name, int64_t min, int64_t max, int64_t *out,
                        struct tm_error *e) {
    char *end;
    bool digits = s && (isdigit((unsigned char)s[0]) ||
                        ((s[0] == '+' || s[0] == '-') && isdigit((unsigned char)s[1])));
    long long v = digits ? strtoll(s, &end, 10) : 0;
    if (!digits || *end || v < min || v > max)
        return err_set(e, TM_EINVALID, name, "'%.64s' must be an integer from %lld to %lld", name,
                       (long long)min, (long long)max);
    *out = v;
    return 0;
}

/* The list parameters, each taken once: req_query reads only the first of
 * a repeated one, so `filters=A&filters=B` listed what A alone matched and
 * `limit=1&limit=300` passed the bound unseen. */
static const char *const sp_query_once[] = {"limit", "offset", "count", "filters", "sorters"};

struct sp_query_seen {
    unsigned n;    /* the first n of sp_query_once (pending-tasks takes no filters, sorters) */
    unsigned seen; /* bit i: sp_query_once[i] came */
    struct tm_error *e;
};

static int sp_query_repeat(void *cls, const char *key, const char *value) {
    (void)value;
    struct sp_query_seen *c = cls;
    return err_once(sp_query_once, c->n, &c->seen, key, c->e);
}

static int sp_query_parse(struct req *r, bool with_filters, struct sp_query *q,
                          struct tm_error *e) {
    memset(q, 0, sizeof *q);
    q->limit = SP_LIMIT_MAX;
    q->ascending = true;
    const char *s;
    int64_t v;
    struct sp_query_seen seen = {with_filters ? 5 : 3, 0, e};
    if (req_query_each(r, sp_query_repeat, &seen)) return -1;
    if ((s = req_query(r, "limit"))) {
        if (sp_query_int(s, "limit", 0, SP_LIMIT_MAX, &v, e)) return -1;
        q->limit = (int)v;
    }
    if ((s = req_query(r, "offset"))) {
        if (sp_query_int(s, "offset", 0, INT32_MAX, &v, e)) return -1;
        q->offset = v;
    }
    if ((s = req_query(r, "count"))) {
        if (strcasecmp(s, "true") != 0 && strcasecmp(s, "false") != 0)
            return err_set(e, TM_EINVALID, "count", "'count' must be true or false");
        q->count = strcasecmp(s, "true") == 0;
    }
    if (!with_filters) return 0;
    if ((s = req_query(r, "sorters")) && sailpoint_sorters_parse(s, &q->ascending, e)) return -1;
    if ((s = req_query(r, "filters"))) {
        if (sailpoint_filter_parse(s, strlen(s), &q->expr, e)) return -1;
        if (filter_expr_each_leaf(q->expr, sp_filter_resolve, e) ||
            filter_expr_check_cost(q->expr, "filters", e)) {
            filter_expr_free(q->expr);
            q->expr = NULL;
            return -1;
        }
    }
    return 0;
}

/* GET .../task-status: lists tasks. With `pending` (the route's arg), GET
 * .../pending-tasks: adds `completionStatus isnull` and answers 204 when empty. */
static void sp_list(struct req *r) {
    bool pending = r->route->arg != 0;
    struct tm_error e;
    err_clear(&e);
    struct sp_query q;
    if (sp_query_parse(r, !pending, &q, &e)) {
        reply_error(r, &e);
        return;
    }
    if (pending) {
        struct filter_expr *x = filter_expr_new(FILTER_ISNULL);
        x->name = xstrdup("completionStatus");
        x->field = FILTER_FIELD_STATUS;
        q.expr = filter_expr_and(q.expr, x);
    }
    struct task_filter f = {
        .ns = r->ns,
        .expr = q.expr,
        .offset = q.offset,
        .ascending = q.ascending,
        .want_total = q.count,
        .total_max = SP_TOTAL_MAX,
        /* The server's --max-page holds here too. */
        .limit = q.limit < req_limits(r)->page_max ? q.limit : req_limits(r)->page_max};
    struct task_list l;
    int rc = store_task_list(req_store(r), &f, &l, &e);
    filter_expr_free(q.expr);
    if (rc) {
        reply_error(r, &e);
        return;
    }
    if (q.count) reply_add_total(r, &l);
    if (pending && l.n == 0) {
        task_list_release(&l);
        reply_empty(r, 204);
        return;
    }
    struct buf b;
    buf_init(&b);
    buf_putc(&b, '[');
    for (size_t i = 0; i < l.n; i++) {
        if (i) buf_putc(&b, ',');
        char *parent = sp_parent_name(r, l.tasks[i]);
        sp_task_write(&b, l.tasks[i], parent);
        free(parent);
    }
    buf_putc(&b, ']');
    task_list_release(&l);
    reply_json(r, 200, &b);
}

/* ---- PATCH /task-status/{id} ---- */

static void sp_patched(struct req *r) {
    if (r->op.err.code == TM_ENOT_FOUND) {
        sp_not_found(r, r->op.id);
        return;
    }
    if (reply_if_op_failed(r)) return;
    sp_reply_task(r, r->op.task);
}

static void sp_patch(struct req *r) {
    const char *id = r->param[0];
    if (!id_is_valid(id)) {
        sp_not_found(r, id);
        return;
    }
    /* The media type whole: a prefix match took "application/jsonx" and
     * "application/json-patch+json; charset=iso-8859-1". */
    static const char *const patch_types[] = {"application/json-patch+json", "application/json",
                                              NULL};
    const char *ct = req_header(r, "Content-Type");
    if (ct && !http_content_type_is(ct, patch_types)) {
        reply_error_code(r, TM_EMEDIA_TYPE, "Content-Type",
                         "'Content-Type' must be 'application/json-patch+json'");
        return;
    }
    struct sailpoint_patch p;
    struct tm_error e;
    err_clear(&e);
    if (sailpoint_patch_parse(r->body.p ? r->body.p : "", r->body.len,
                              req_limits(r)->json_max_depth, &p, &e)) {
        reply_error(r, &e);
        return;
    }
    store_op_init(&r->op, STORE_OP_FINISH);
    r->op.ns = r->ns;
    memcpy(r->op.id, id, ID_LEN + 1);
    r->op.finish_status = p.status;
    r->op.finish_at = p.completed_ms;
    if (p.has_progress || p.has_percent) {
        r->op.has_progress = true;
        r->op.progress.has_message = p.has_progress;
        char *msg = xstrdup(p.progress);
        r->owned = msg; /* the op borrows it until the reply */
        r->owned_free = free;
        r->op.progress.message = msg;
        r->op.progress.has_ratio = p.has_percent;
        r->op.progress.ratio = p.percent / 100.0;
    }
    req_submit(r, sp_patched);
}

/* ---- POST /oauth/token ---- */

/* A form field from the body, else the query string (SailPoint's docs show both). */
static int sp_oauth_param(struct req *r, const char *name, char *out, size_t outlen) {
    int rc = TM_ENOT_FOUND;
    if (r->body.len)
        rc = sailpoint_form_get(req_header(r, "Content-Type"), r->body.p, r->body.len, name, out,
                                outlen);
    if (rc == TM_ENOT_FOUND) {
        const char *q = req_query(r, name);
        if (q && strlen(q) < outlen) {
            snprintf(out, outlen, "%s", q);
            rc = 0;
        }
    }
    return rc;
}

struct sp_oauth_count {
    const char *name;
    int n;
};

static int sp_oauth_count_arg(void *cls, const char *key, const char *value) {
    (void)value;
    struct sp_oauth_count *c = cls;
    if (strcmp(key, c->name) == 0) c->n++;
    return 0;
}

/* RFC 6749 3.2 and 5.2: a token request in a body that is not a form, or
 * with a parameter given more than once (in the body, the query or both),
 * is invalid_request; so is one without grant_type (unsupported_grant_type
 * is for a grant named and not served). Replies and returns -1 when so.
 * Before, the first of a repeated client_id won, and a JSON body was
 * answered "'grant_type' must be 'client_credentials'". */
static int sp_oauth_check_form(struct req *r) {
    const char *ct = req_header(r, "Content-Type");
    if (r->body.len && !sailpoint_form_type_ok(ct)) {
        reply_error_code(r, TM_EINVALID, "Content-Type",
                         "the body must be 'application/x-www-form-urlencoded' or "
                         "'multipart/form-data'");
        return -1;
    }
    static const char *const names[] = {"grant_type", "client_id", "client_secret", "scope"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        struct sp_oauth_count c = {names[i], 0};
        if (r->body.len) c.n = sailpoint_form_count(ct, r->body.p, r->body.len, names[i]);
        if (c.n < 0) {
            reply_error_code(r, TM_EINVALID, "Content-Type",
                             "the body is not a well-formed multipart/form-data form");
            return -1;
        }
        req_query_each(r, sp_oauth_count_arg, &c);
        if (c.n > 1) {
            char msg[80];
            snprintf(msg, sizeof msg, "'%s' is given more than once", names[i]);
            /* Field "" for grant_type: sailpoint_oauth_write_error says
             * unsupported_grant_type only for a grant named and not served. */
            reply_error_code(r, TM_EINVALID, i == 0 ? "" : names[i], msg);
            return -1;
        }
        if (c.n == 0 && i == 0) {
            reply_error_code(r, TM_EINVALID, "", "'grant_type' is required: 'client_credentials'");
            return -1;
        }
    }
    return 0;
}

static void sp_oauth_token(struct req *r) {
    char grant[64], id[TOKEN_ID_LEN + 8], secret[TOKEN_STRING_LEN + 8];
    struct tm_error e;
    err_clear(&e);
    if (sp_oauth_check_form(r)) return;
    if (sp_oauth_param(r, "grant_type", grant, sizeof grant) ||
        strcmp(grant, "client_credentials") != 0) {
        reply_error_code(r, TM_EINVALID, "grant_type", "'grant_type' must be 'client_credentials'");
        return;
    }
    if (sp_oauth_param(r, "client_id", id, sizeof id) ||
        sp_oauth_param(r, "client_secret", secret, sizeof secret)) {
        reply_error_code(r, TM_EUNAUTHENTICATED, "client_id",
                         "'client_id' and 'client_secret' are needed: a taskmill token's id and "
                         "secret");
        return;
    }
    /* The secret is the 64 hex characters, or the whole tm_<id>_<secret> string. */
    char tid[TOKEN_ID_LEN + 1], tsecret[TOKEN_SECRET_LEN + 1];
    if (token_parse(secret, strlen(secret), tid, tsecret) == 0) {
        if (strcmp(tid, id) != 0) {
            reply_error_code(r, TM_EUNAUTHENTICATED, "client_secret",
                             "'client_secret' belongs to another 'client_id'");
            return;
        }
    } else {
        snprintf(tsecret, sizeof tsecret, "%s", secret);
        if (strlen(secret) != TOKEN_SECRET_LEN) tsecret[0] = '\0';
    }
    /* tenant_id: the token's namespace. SailPoint's is always a string (a
     * token belongs to one tenant), so an admin token, which acts in every
     * namespace and has r->ns NULL, gives its own home namespace, as
     * /v1/whoami's token_namespace does, rather than null. It comes from the
     * token the check read: a second read could find the token revoked (or
     * gone) after the check let it in, and answered 404 or 503, not 401. */
    struct token *t = NULL;
    if (auth_check_credentials_token(
            r, id, tsecret, PERM_ADMIN | PERM_CLIENT | PERM_WORKER | PERM_READER, &t, &e)) {
        reply_error(r, &e);
        return;
    }
    const char *tenant = r->ns ? r->ns : t->namespace;
    char bearer[TOKEN_STRING_LEN + 1], jti[ID_LEN + 1];
    snprintf(bearer, sizeof bearer, "tm_%s_%s", id, tsecret);
    id_random_hex(jti);
    struct buf b;
    buf_init(&b);
    buf_puts(&b, "{\"access_token\":");
    json_put_str(&b, bearer);
    buf_printf(&b, ",\"token_type\":\"bearer\",\"expires_in\":%d,\"scope\":\"sp:scopes:all\"",
               SP_TOKEN_EXPIRES_S);
    json_put_key(&b, "tenant_id", false);
    json_put_str(&b, tenant);
    token_free(t);
    json_put_key(&b, "identity_id", false);
    json_put_str(&b, id);
    json_put_key(&b, "jti", false);
    json_put_str(&b, jti);
    buf_putc(&b, '}');
    reply_add_header(r, "Cache-Control", "no-store");
    reply_json(r, 200, &b);
}

/* ---- Routes ---- */

#define SP_ROUTES(v)                                                            \
    {"GET", "/" v "/task-status", sp_list, PERM_READ},                          \
        {"GET", "/" v "/task-status/pending-tasks", sp_list, PERM_READ, true},  \
        {"HEAD", "/" v "/task-status/pending-tasks", sp_list, PERM_READ, true}, \
        {"GET", "/" v "/task-status/:id", sp_get, PERM_READ}, {                 \
        "PATCH", "/" v "/task-status/:id", sp_patch, PERM_OWNER                 \
    }

const struct route sailpoint_routes[] = {
    SP_ROUTES("beta"),
    SP_ROUTES("v2024"),
    SP_ROUTES("v2025"),
    {NULL, NULL, NULL, 0},
};

const struct route sailpoint_oauth_routes[] = {
    {"POST", "/oauth/token", sp_oauth_token, PERM_PUBLIC},
    {NULL, NULL, NULL, 0},
};
