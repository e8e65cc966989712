/*
 * livepeer: see livepeer.h. Four parts: the projection of a struct task
 * to Livepeer's Task object (also reached from an event's v1 JSON, for
 * the webhook snapshots), serving only the members of params and result
 * that livepeer_schema.c finds in the SDK's shapes; the decoder of the
 * list query (limit, cursor, filters, order, count) and its translation
 * to a filter tree, all pure; and the routes, which read through store.h
 * and retry through a STORE_OP_RETRY like v1's.
 *
 * Threading: handlers run on libmicrohttpd's threads, one request each;
 * nothing here holds state between requests. Ownership: tasks read from
 * the store are freed before the handler returns; the retry's outputs
 * belong to the request's op. Errors: every refusal goes through
 * reply_error, which hands it to livepeer_error_write (the table's writer
 * in http.c), so auth's 401/403, the router's 404/405 and ours share
 * Livepeer's body `{"errors":["..."]}`.
 */
#include "livepeer.h"
#include "livepeer_schema.h"

#include <ctype.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/filter.h"
#include "../common/json_parse.h"
#include "../common/task_json.h"
#include "../common/timeutil.h"
#include "../common/xalloc.h"
#include "../server/http.h"
#include "../server/webhook.h"
#include "views.h"

/* The bytes of tasks one list reply holds before its page ends early. */
#define LIVEPEER_REPLY_MAX_BYTES (8u << 20)

/* `count` counts at most this many tasks; past it X-Total-Count is this
 * bound and X-Total-Count-Capped: true (docs/compat.md). */
#define LIVEPEER_TOTAL_MAX 10000

/* ---- The projection ---- */

const char *livepeer_phase_name(enum task_phase p) {
    switch (p) {
    case TASK_PENDING:
        return "pending";
    case TASK_WAITING:
        return "waiting";
    case TASK_RUNNING:
    case TASK_STOPPING:
        return "running"; /* Livepeer has no stopping phase */
    case TASK_COMPLETED:
        return "completed";
    case TASK_FAILED:
        return "failed";
    case TASK_CANCELLED:
        return "cancelled";
    default:
        return "pending";
    }
}

static const char *const livepeer_types[] = {"upload", "export", "export-data", "transcode-file",
                                             "clip"};

const char *livepeer_type_of(const char *type) {
    if (!type) return NULL;
    for (size_t i = 0; i < sizeof livepeer_types / sizeof livepeer_types[0]; i++)
        if (strcmp(type, livepeer_types[i]) == 0) return livepeer_types[i];
    return NULL;
}

/*
 * Writes `"key":` and the stored object (params or result) with the members
 * the SDK cannot parse left out (livepeer_schema.h), so one task's data
 * never fails a page in the SDK; writes nothing when the text is not an
 * object or nothing is left of it. When nothing is left out the stored
 * text goes as it is.
 */
static void livepeer_part_write(struct buf *b, const char *key, enum livepeer_part part,
                                const char *text) {
    size_t dropped = 0;
    json_t *o = livepeer_schema_keep(part, text, &dropped);
    if (!o) return;
    if (json_object_size(o) > 0) {
        json_put_key(b, key, false);
        if (dropped == 0) {
            json_put_raw(b, text, "{}");
        } else {
            char *kept = json_text(o);
            buf_puts(b, kept);
            free(kept);
        }
    }
    json_decref(o);
}

/* Whether anything is known of the task's progress (else the key is left out). */
static bool livepeer_progress_known(const struct task *t) {
    int64_t done, doing, todo;
    task_counts(t, &done, &doing, &todo);
    return t->progress.ratio_set || t->progress.updated_at || done + doing + todo > 0;
}

/*
 * Livepeer replaces the whole status object on each update, so which keys
 * it holds depends on the phase (compat-research.md 3.2); so here.
 */
static void livepeer_status_write(struct buf *b, const struct task *t) {
    buf_putc(b, '{');
    json_put_key(b, "phase", true);
    json_put_str(b, livepeer_phase_name(t->phase));
    json_put_key(b, "updatedAt", false);
    json_put_int(b, t->updated_at);
    switch (t->phase) {
    case TASK_WAITING:
        json_put_key(b, "retries", false);
        json_put_int(b, t->retries);
        if (t->error) {
            /* the failure a retry is waiting out */
            json_put_key(b, "errorMessage", false);
            json_put_str(b, t->error);
        }
        break;
    case TASK_RUNNING:
    case TASK_STOPPING:
        json_put_key(b, "retries", false);
        json_put_int(b, t->retries);
        if (livepeer_progress_known(t)) {
            double ratio = task_ratio(t);
            json_put_key(b, "progress", false);
            json_put_double(b, ratio < 0 ? 0 : ratio > 1 ? 1 : ratio);
        }
        break;
    case TASK_FAILED:
        if (t->error) {
            json_put_key(b, "errorMessage", false);
            json_put_str(b, t->error);
        }
        json_put_key(b, "retries", false);
        json_put_int(b, t->retries);
        break;
    default: /* pending, completed, cancelled: phase and updatedAt only */
        break;
    }
    buf_putc(b, '}');
}

void livepeer_task_write(struct buf *b, const struct task *t) {
    const char *type = livepeer_type_of(t->type);
    buf_grow(b, 256);
    buf_putc(b, '{');
    json_put_key(b, "id", true);
    json_put_str(b, t->id);
    if (type) {
        json_put_key(b, "type", false);
        json_put_str(b, type);
    }
    json_put_key(b, "createdAt", false);
    json_put_int(b, t->created_at);
    if (t->scheduled_at) {
        json_put_key(b, "scheduledAt", false);
        json_put_int(b, t->scheduled_at);
    }
    if (t->namespace) {
        json_put_key(b, "projectId", false);
        json_put_str(b, t->namespace);
    }
    /* Type-specific parts only for Livepeer's own types, and of those only
     * the members in the SDK's shapes (docs/compat.md). */
    if (type) livepeer_part_write(b, "params", LIVEPEER_PART_PARAMS, t->params);
    json_put_key(b, "status", false);
    livepeer_status_write(b, t);
    if (type && t->phase == TASK_COMPLETED)
        livepeer_part_write(b, "output", LIVEPEER_PART_OUTPUT, t->result);
    buf_putc(b, '}');
}

/* A v1 time (RFC 3339 text or null) in ms; 0 when absent. */
static int64_t livepeer_v1_time(const json_t *o, const char *key) {
    int64_t ms = 0;
    const char *s = json_string_value(json_object_get(o, key));
    if (s && time_parse_rfc3339(s, &ms)) ms = 0;
    return ms;
}

static char *livepeer_v1_str(const json_t *o, const char *key) {
    const char *s = json_string_value(json_object_get(o, key));
    return s ? xstrdup(s) : NULL;
}

static char *livepeer_v1_json(const json_t *o, const char *key) {
    const json_t *v = json_object_get(o, key);
    return v && !json_is_null(v) ? json_text(v) : NULL;
}

void livepeer_task_write_v1(struct buf *b, const char *v1_json) {
    json_error_t je;
    json_t *o = v1_json ? json_loads(v1_json, 0, &je) : NULL;
    const char *id = json_string_value(json_object_get(o, "id"));
    const char *phase = json_string_value(json_object_get(o, "phase"));
    struct task *t = task_new();
    if (!json_is_object(o) || !id || strlen(id) != ID_LEN || !phase ||
        task_phase_parse(phase, &t->phase)) {
        buf_puts(b, "null");
        goto out;
    }
    memcpy(t->id, id, ID_LEN + 1);
    t->namespace = livepeer_v1_str(o, "namespace");
    t->type = livepeer_v1_str(o, "type");
    t->params = livepeer_v1_json(o, "params");
    t->result = livepeer_v1_json(o, "result");
    t->error = livepeer_v1_str(o, "error");
    t->retries = json_integer_value(json_object_get(o, "retries"));
    t->created_at = livepeer_v1_time(o, "created_at");
    t->updated_at = livepeer_v1_time(o, "updated_at");
    t->scheduled_at = livepeer_v1_time(o, "scheduled_at");
    const json_t *p = json_object_get(o, "progress");
    t->progress.updated_at = livepeer_v1_time(p, "updated_at");
    t->progress.processed = json_integer_value(json_object_get(p, "processed"));
    t->progress.processing = json_integer_value(json_object_get(p, "processing"));
    t->progress.pending = json_integer_value(json_object_get(p, "pending"));
    t->progress.ratio = json_number_value(json_object_get(p, "ratio"));
    /* v1 shows the ratio as derived; it is the one to show. */
    t->progress.ratio_set = t->progress.updated_at != 0 || t->progress.ratio > 0;
    livepeer_task_write(b, t);
out:
    task_free(t);
    json_decref(o);
}

void livepeer_error_write(struct buf *b, int status, const struct tm_error *e) {
    (void)status;
    int code = e->code ? e->code : TM_EINTERNAL;
    buf_puts(b, "{\"errors\":[");
    json_put_str(b, e->message[0] ? e->message : err_default_message(code));
    buf_puts(b, "]}");
}

/* ---- The query decoder ---- */

void livepeer_query_init(struct livepeer_query *q) {
    memset(q, 0, sizeof *q);
    q->limit = LIVEPEER_LIMIT_DEFAULT;
}

/* Livepeer's filter and sort fields, and what a filter on each reads of the
 * record (projectId: none, it picks the namespace). */
static const struct {
    const char *name;
    enum livepeer_field field;
    bool is_time;
    enum filter_field filter;
    bool nocase; /* compared without case */
} livepeer_fields[] = {
    {"id", LIVEPEER_F_ID, false, FILTER_FIELD_ID, false},
    {"name", LIVEPEER_F_NAME, false, FILTER_FIELD_NAME, true},
    {"createdAt", LIVEPEER_F_CREATED_AT, true, FILTER_FIELD_CREATED_AT, false},
    {"updatedAt", LIVEPEER_F_UPDATED_AT, true, FILTER_FIELD_UPDATED_AT, false},
    {"type", LIVEPEER_F_TYPE, false, FILTER_FIELD_TYPE, false},
    {"projectId", LIVEPEER_F_PROJECT_ID, false, FILTER_FIELD_NONE, false},
};

/* Fields Livepeer filters on that have no counterpart in the record. */
static const char *const livepeer_fields_unsupported[] = {"userId", "user.email", "inputAssetId",
                                                          "outputAssetId"};

static int livepeer_field_find(const char *name) {
    for (size_t i = 0; i < sizeof livepeer_fields / sizeof livepeer_fields[0]; i++)
        if (strcmp(name, livepeer_fields[i].name) == 0) return (int)i;
    return -1;
}

/* A decimal integer, the whole string; 0 or -1. */
static int livepeer_parse_int(const char *s, int64_t max, int64_t *out) {
    if (!*s) return -1;
    int64_t v = 0;
    for (const char *p = s; *p; p++) {
        if (*p < '0' || *p > '9') return -1;
        v = v * 10 + (*p - '0');
        if (v > max) v = max + 1; /* saturate: the caller decides */
    }
    *out = v;
    return 0;
}

static int livepeer_limit(struct livepeer_query *q, const char *v, struct tm_error *e) {
    int64_t n;
    if (livepeer_parse_int(v, 1000000000, &n) || n < 1)
        return err_set(e, TM_EINVALID, "limit", "'limit' must be a positive integer, got '%.40s'",
                       v);
    q->limit = n > LIVEPEER_LIMIT_MAX ? LIVEPEER_LIMIT_MAX : (int)n;
    return 0;
}

static int livepeer_cursor(struct livepeer_query *q, const char *v, struct tm_error *e) {
    int64_t n;
    if (!*v) {
        q->skip = 0;
        return 0;
    }
    if (strncmp(v, "skip", 4) != 0 || livepeer_parse_int(v + 4, LIVEPEER_SKIP_MAX, &n) ||
        n > LIVEPEER_SKIP_MAX)
        return err_set(e, TM_EINVALID, "cursor",
                       "error parsing cursor: '%.40s' is not a cursor this server gave", v);
    q->skip = n;
    return 0;
}

/* Decodes %XX escapes (a filters value URL-encoded twice, as Livepeer's own
 * dashboard sends it). out holds at least strlen(s) + 1 bytes. */
static int livepeer_pct_decode(const char *s, char *out) {
    size_t n = 0;
    for (const char *p = s; *p; p++) {
        if (*p == '%') {
            if (!isxdigit((unsigned char)p[1]) || !isxdigit((unsigned char)p[2])) return -1;
            char hex[3] = {p[1], p[2], 0};
            out[n++] = (char)strtol(hex, NULL, 16);
            p += 2;
        } else {
            out[n++] = *p;
        }
    }
    out[n] = '\0';
    return 0;
}

static int livepeer_cond_add(struct livepeer_query *q, enum livepeer_field f, enum livepeer_op op,
                             const char *text, int64_t num, struct tm_error *e) {
    if (q->ncond == LIVEPEER_FILTERS_MAX)
        return err_set(e, TM_EINVALID, "filters", "error parsing filters: more than %d conditions",
                       LIVEPEER_FILTERS_MAX);
    struct livepeer_cond *c = &q->cond[q->ncond++];
    c->field = f;
    c->op = op;
    c->num = num;
    snprintf(c->text, sizeof c->text, "%s", text ? text : "");
    return 0;
}

/* A time value: an integer number of milliseconds (a real is truncated). */
static int livepeer_time_value(const json_t *v, const char *field, int64_t *out,
                               struct tm_error *e) {
    if (json_is_integer(v)) {
        *out = json_integer_value(v);
        return 0;
    }
    if (json_is_real(v) && isfinite(json_real_value(v)) && fabs(json_real_value(v)) < 9e15) {
        *out = (int64_t)json_real_value(v);
        return 0;
    }
    return err_set(e, TM_EINVALID, "filters",
                   "error parsing filters: expected a number of milliseconds for field \"%s\"",
                   field);
}

static int livepeer_filter_one(struct livepeer_query *q, const json_t *f, struct tm_error *e) {
    if (!json_is_object(f))
        return err_set(e, TM_EINVALID, "filters",
                       "error parsing filters: each filter must be an object {\"id\",\"value\"}");
    const json_t *jid = json_object_get(f, "id");
    const json_t *val = json_object_get(f, "value");
    if (!json_is_string(jid))
        return err_set(e, TM_EINVALID, "filters",
                       "error parsing filters: filter \"id\" must be a string");
    const char *name = json_string_value(jid);
    if (!val)
        return err_set(e, TM_EINVALID, "filters",
                       "error parsing filters: missing filter value for id \"%.64s\"", name);
    int i = livepeer_field_find(name);
    if (i < 0) {
        for (size_t u = 0;
             u < sizeof livepeer_fields_unsupported / sizeof livepeer_fields_unsupported[0]; u++)
            if (strcmp(name, livepeer_fields_unsupported[u]) == 0)
                return err_set(
                    e, TM_EINVALID, "filters",
                    "error parsing filters: field \"%s\" is not supported by this server", name);
        return err_set(e, TM_EINVALID, "filters", "error parsing filters: unknown field: \"%.64s\"",
                       name);
    }
    enum livepeer_field field = livepeer_fields[i].field;
    if (!livepeer_fields[i].is_time) {
        if (!json_is_string(val))
            return err_set(e, TM_EINVALID, "filters",
                           "error parsing filters: expected a string value for field \"%s\"", name);
        if (json_string_length(val) >= LIVEPEER_VALUE_MAX)
            return err_set(e, TM_EINVALID, "filters",
                           "error parsing filters: value of field \"%s\" is longer than %d bytes",
                           name, LIVEPEER_VALUE_MAX - 1);
        enum livepeer_op op = field == LIVEPEER_F_NAME ? LIVEPEER_CONTAINS : LIVEPEER_EQ;
        return livepeer_cond_add(q, field, op, json_string_value(val), 0, e);
    }
    int64_t n;
    if (!json_is_object(val)) {
        if (livepeer_time_value(val, name, &n, e)) return e->code;
        return livepeer_cond_add(q, field, LIVEPEER_EQ, NULL, n, e);
    }
    static const struct {
        const char *key;
        enum livepeer_op op;
    } cmp[] = {{"gt", LIVEPEER_GT},
               {"gte", LIVEPEER_GTE},
               {"lt", LIVEPEER_LT},
               {"lte", LIVEPEER_LTE},
               {"eq", LIVEPEER_EQ}};
    const char *key;
    const json_t *v;
    json_object_foreach((json_t *)val, key, v) {
        size_t c = 0;
        while (c < sizeof cmp / sizeof cmp[0] && strcmp(key, cmp[c].key) != 0)
            c++;
        if (c == sizeof cmp / sizeof cmp[0])
            return err_set(e, TM_EINVALID, "filters",
                           "error parsing filters: unknown comparison: \"%.32s\"", key);
        if (livepeer_time_value(v, name, &n, e)) return e->code;
        if (livepeer_cond_add(q, field, cmp[c].op, NULL, n, e)) return e->code;
    }
    return 0;
}

#define LIVEPEER_FILTERS_MAX_BYTES 8192

static int livepeer_filters(struct livepeer_query *q, const char *v, struct tm_error *e) {
    size_t len = strlen(v);
    if (len == 0) return 0;
    if (len > LIVEPEER_FILTERS_MAX_BYTES)
        return err_set(e, TM_EINVALID, "filters", "error parsing filters: longer than %d bytes",
                       LIVEPEER_FILTERS_MAX_BYTES);
    char decoded[LIVEPEER_FILTERS_MAX_BYTES + 1];
    if (v[0] == '%') {
        if (livepeer_pct_decode(v, decoded))
            return err_set(e, TM_EINVALID, "filters", "error parsing filters: bad %%-escape");
        v = decoded;
        len = strlen(v);
    }
    if (json_depth(v, len) > 4)
        return err_set(e, TM_EINVALID, "filters", "error parsing filters: nested too deeply");
    char why[200];
    json_t *root = json_load_strict(v, len, why, sizeof why, NULL, 0);
    if (!root)
        return err_set(e, TM_EINVALID, "filters", "error parsing filters: not valid JSON (%s)",
                       why);
    int rc = 0;
    if (!json_is_array(root)) {
        rc = err_set(e, TM_EINVALID, "filters", "error parsing filters: must be an array");
    } else {
        size_t i;
        json_t *f;
        json_array_foreach(root, i, f) {
            if ((rc = livepeer_filter_one(q, f, e))) break;
        }
    }
    json_decref(root);
    return rc;
}

/* `order`: comma list of <field>-<true|false> (true = descending). Entries
 * with an unknown field or another shape are skipped, as Livepeer does. */
/* Adds v's keys after those of an `order` given before: Livepeer reads a
 * repeated argument as its values joined with ',' (toStringValues). */
static int livepeer_order(struct livepeer_query *q, const char *v, struct tm_error *e) {
    (void)e;
    const char *p = v;
    while (*p && q->norder < LIVEPEER_ORDER_MAX) {
        const char *end = strchr(p, ',');
        size_t n = end ? (size_t)(end - p) : strlen(p);
        char part[64];
        if (n < sizeof part) {
            memcpy(part, p, n);
            part[n] = '\0';
            char *dash = strchr(part, '-');
            if (dash && !strchr(dash + 1, '-')) {
                *dash = '\0';
                int i = livepeer_field_find(part);
                /* projectId is one value per caller: nothing to order by. */
                if (i >= 0 && livepeer_fields[i].field != LIVEPEER_F_PROJECT_ID) {
                    q->order[q->norder].field = livepeer_fields[i].field;
                    q->order[q->norder].desc = strcmp(dash + 1, "true") == 0;
                    q->norder++;
                }
            }
        }
        if (!end) break;
        p = end + 1;
    }
    return 0;
}

int livepeer_query_add(struct livepeer_query *q, const char *key, const char *value,
                       struct tm_error *e) {
    /* One value each (our choice): the last of a repeated limit or cursor
     * won, and the Link's next page carried both; repeated filters were
     * and-ed. Livepeer joins a repeated argument's values with ',', which
     * for these is no valid value (a limit of "1,3" it reads as 1). A
     * repeated order or count is read joined, as there. */
    static const char *const once[] = {"limit", "cursor", "filters"};
    if (err_once(once, sizeof once / sizeof once[0], &q->seen, key, e)) return TM_EINVALID;
    if (!value) value = "";
    if (strcmp(key, "limit") == 0) return livepeer_limit(q, value, e);
    if (strcmp(key, "cursor") == 0) return livepeer_cursor(q, value, e);
    if (strcmp(key, "filters") == 0) return livepeer_filters(q, value, e);
    if (strcmp(key, "order") == 0) return livepeer_order(q, value, e);
    if (strcmp(key, "count") == 0) {
        /* Any non-empty value, as a JS truthy string; two or more joined
         * with ',' are never empty. */
        q->count = q->count_seen || *value != '\0';
        q->count_seen = true;
        return 0;
    }
    return 0; /* all, allUsers, ...: accepted and ignored */
}

int livepeer_query_order(const struct livepeer_query *q, struct livepeer_sort *out) {
    if (q->norder == 0) {
        out[0] = (struct livepeer_sort){LIVEPEER_F_UPDATED_AT, true};
        out[1] = (struct livepeer_sort){LIVEPEER_F_CREATED_AT, true};
        return 2;
    }
    memcpy(out, q->order, (size_t)q->norder * sizeof *out);
    return q->norder;
}

static struct filter_expr *livepeer_leaf(const struct livepeer_cond *c) {
    static const enum filter_op ops[] = {
        [LIVEPEER_EQ] = FILTER_EQ,  [LIVEPEER_CONTAINS] = FILTER_CO, [LIVEPEER_GT] = FILTER_GT,
        [LIVEPEER_GTE] = FILTER_GE, [LIVEPEER_LT] = FILTER_LT,       [LIVEPEER_LTE] = FILTER_LE,
    };
    struct filter_expr *x = filter_expr_new(ops[c->op]);
    x->values = xcalloc(1, sizeof *x->values);
    x->nvalues = 1;
    for (size_t i = 0; i < sizeof livepeer_fields / sizeof livepeer_fields[0]; i++) {
        if (livepeer_fields[i].field != c->field) continue;
        x->name = xstrdup(livepeer_fields[i].name);
        x->field = livepeer_fields[i].filter;
        x->nocase = livepeer_fields[i].nocase;
    }
    if (filter_field_kind(x->field) == FILTER_KIND_TIME) {
        x->values[0].kind = FILTER_VAL_TIME;
        x->values[0].i = c->num;
    } else {
        x->values[0].kind = FILTER_VAL_STR;
        x->values[0].str = xstrdup(c->text);
    }
    return x;
}

struct filter_expr *livepeer_query_expr(const struct livepeer_query *q) {
    struct filter_expr *x = NULL;
    for (int i = 0; i < q->ncond; i++) {
        if (q->cond[i].field == LIVEPEER_F_PROJECT_ID) continue;
        x = filter_expr_and(x, livepeer_leaf(&q->cond[i]));
    }
    return x;
}

const char *livepeer_query_project(const struct livepeer_query *q, bool *conflict) {
    const char *p = NULL;
    *conflict = false;
    for (int i = 0; i < q->ncond; i++) {
        if (q->cond[i].field != LIVEPEER_F_PROJECT_ID) continue;
        if (p && strcmp(p, q->cond[i].text) != 0) *conflict = true;
        p = q->cond[i].text;
    }
    return p;
}

/* ---- The routes ---- */

/* Livepeer's words for the refusals its clients know. */
#define LIVEPEER_NOT_FOUND     "not found"
#define LIVEPEER_NOT_RETRYABLE "task is not in a retryable state"

/* The task id in the path, or NULL after a 404 (ids of another shape are
 * never stored, so they are unknown, not malformed). */
static const char *livepeer_path_id(struct req *r) {
    if (id_is_valid(r->param[0])) return r->param[0];
    reply_error_code(r, TM_ENOT_FOUND, "", LIVEPEER_NOT_FOUND);
    return NULL;
}

/* Replies with the store's error, in Livepeer's words where it has them. */
static void livepeer_reply_store_error(struct req *r, const struct tm_error *e) {
    if (e->code == TM_ENOT_FOUND)
        reply_error_code(r, TM_ENOT_FOUND, "", LIVEPEER_NOT_FOUND);
    else
        reply_error(r, e);
}

static void livepeer_reply_task(struct req *r, const struct task *t) {
    struct buf b;
    buf_init(&b);
    livepeer_task_write(&b, t);
    reply_json(r, 200, &b);
}

static void livepeer_task_get(struct req *r) {
    const char *id = livepeer_path_id(r);
    if (!id) return;
    struct tm_error e;
    err_clear(&e);
    /* Through the read cache, as GET /v1/tasks/{id} (docs/storage.md). */
    struct buf b;
    buf_init(&b);
    if (store_task_render(req_store(r), r->ns, id, livepeer_task_write, &b, &e)) {
        buf_release(&b);
        livepeer_reply_store_error(r, &e);
        return;
    }
    reply_json(r, 200, &b);
}

static void livepeer_task_retried(struct req *r) {
    if (r->op.err.code == TM_ECONFLICT) {
        /* Livepeer answers 400, not 409, for a task that is not failed or cancelled. */
        reply_error_code(r, TM_EINVALID, "", LIVEPEER_NOT_RETRYABLE);
        return;
    }
    if (r->op.err.code) {
        livepeer_reply_store_error(r, &r->op.err);
        return;
    }
    livepeer_reply_task(r, r->op.task);
}

/* POST /api/task/{id}/retry: a failed or cancelled task runs again. The
 * body, if any, is not read (Livepeer takes none). */
static void livepeer_task_retry(struct req *r) {
    const char *id = livepeer_path_id(r);
    if (!id) return;
    store_op_init(&r->op, STORE_OP_RETRY);
    r->op.ns = r->ns;
    memcpy(r->op.id, id, ID_LEN + 1);
    req_submit(r, livepeer_task_retried);
}

/* Sets the store's order from the query's (see docs/compat.md). */
static void livepeer_filter_order(const struct livepeer_query *q, struct task_filter *f) {
    static const enum task_sort_key keys[] = {
        [LIVEPEER_F_ID] = TASK_SORT_ID,
        [LIVEPEER_F_NAME] = TASK_SORT_NAME,
        [LIVEPEER_F_CREATED_AT] = TASK_SORT_CREATED_AT,
        [LIVEPEER_F_UPDATED_AT] = TASK_SORT_UPDATED_AT,
        [LIVEPEER_F_TYPE] = TASK_SORT_TYPE,
        [LIVEPEER_F_PROJECT_ID] = TASK_SORT_ID,
    };
    struct livepeer_sort s[LIVEPEER_ORDER_MAX];
    int n = livepeer_query_order(q, s);
    for (int i = 0; i < n && i < TASK_SORT_MAX; i++) {
        f->sort[i].key = keys[s[i].field];
        f->sort[i].desc = s[i].desc;
    }
    f->nsort = n < TASK_SORT_MAX ? n : TASK_SORT_MAX;
}

struct livepeer_list_ctx {
    struct livepeer_query q;
    struct tm_error e;
    struct buf next; /* the query of the next page, without its cursor */
};

/* Percent-encodes s for a query string (RFC 3986 unreserved kept). */
static void livepeer_url_encode(struct buf *b, const char *s) {
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (isalnum(*p) || *p == '-' || *p == '_' || *p == '.' || *p == '~')
            buf_putc(b, (char)*p);
        else
            buf_printf(b, "%%%02X", *p);
    }
}

static int livepeer_list_arg(void *cls, const char *key, const char *value) {
    struct livepeer_list_ctx *c = cls;
    if (livepeer_query_add(&c->q, key, value, &c->e)) return -1;
    if (strcmp(key, "cursor") != 0) {
        livepeer_url_encode(&c->next, key);
        buf_putc(&c->next, '=');
        livepeer_url_encode(&c->next, value ? value : "");
        buf_putc(&c->next, '&');
    }
    return 0;
}

/* The Link header of the next page: the request's own URL with the cursor
 * replaced, absolute when the Host header allows, as Livepeer sends it.
 * A reply's headers share the connection's memory with the request's
 * (--max-header-bytes), so a link longer than a quarter of it is refused
 * (400 naming the filters) rather than sent as a reply libmicrohttpd
 * cannot build. 0, or -1 after replying. */
static int livepeer_link_next(struct req *r, struct livepeer_list_ctx *c, int64_t skip) {
    struct buf b;
    buf_init(&b);
    const char *host = req_header(r, "Host");
    buf_putc(&b, '<');
    if (host && *host && !strpbrk(host, "<>\"\\ \r\n"))
        buf_printf(&b, "%s://%s", req_scheme(r), host);
    buf_puts(&b, "/api/task?");
    if (c->next.len) buf_put(&b, c->next.p, c->next.len);
    buf_printf(&b, "cursor=skip%lld>; rel=\"next\"", (long long)skip);
    size_t max = req_limits(r)->header_max_bytes / 4;
    if (b.len > max) {
        buf_release(&b);
        char msg[160];
        snprintf(msg, sizeof msg,
                 "the query is too long to link its next page (at most %zu bytes); use fewer "
                 "filters",
                 max);
        reply_error_code(r, TM_EINVALID, "filters", msg);
        return -1;
    }
    reply_add_header(r, "Link", b.p);
    buf_release(&b);
    return 0;
}

static void livepeer_task_list(struct req *r) {
    struct livepeer_list_ctx c;
    livepeer_query_init(&c.q);
    err_clear(&c.e);
    buf_init(&c.next);
    struct filter_expr *expr = NULL;
    struct task_list l = {0};
    if (req_query_each(r, livepeer_list_arg, &c)) {
        reply_error(r, &c.e);
        goto out;
    }
    struct task_filter f = {0};
    f.ns = r->ns;
    /* The server's --max-page holds here too; the Link goes on from the page's end. */
    f.limit = c.q.limit < req_limits(r)->page_max ? c.q.limit : req_limits(r)->page_max;
    f.offset = c.q.skip;
    f.want_total = c.q.count;
    f.total_max = LIVEPEER_TOTAL_MAX;
    bool conflict = false;
    const char *project = livepeer_query_project(&c.q, &conflict);
    bool none = conflict || (project && r->ns && strcmp(project, r->ns) != 0);
    if (project && !r->ns) f.ns = project;
    expr = livepeer_query_expr(&c.q);
    if (filter_expr_check_cost(expr, "filters", &c.e)) {
        reply_error(r, &c.e);
        goto out;
    }
    f.expr = expr;
    livepeer_filter_order(&c.q, &f);
    if (!none && store_task_list(req_store(r), &f, &l, &c.e)) {
        reply_error(r, &c.e);
        goto out;
    }
    if (c.q.count) reply_add_total(r, &l);
    /* A page that ends early has a Link to where the next begins. */
    struct buf b;
    buf_init(&b);
    bool more;
    size_t n = task_page_write(&b, &l, LIVEPEER_REPLY_MAX_BYTES, livepeer_task_write, &more);
    if (more && livepeer_link_next(r, &c, c.q.skip + (int64_t)n)) {
        buf_release(&b);
        goto out;
    }
    reply_json(r, 200, &b);
out:
    task_list_release(&l);
    filter_expr_free(expr);
    buf_release(&c.next);
}

const struct route livepeer_routes[] = {
    {"GET", "/api/task", livepeer_task_list, PERM_READ},
    {"GET", "/api/task/:id", livepeer_task_get, PERM_READ},
    {"POST", "/api/task/:id/retry", livepeer_task_retry, PERM_OWNER},
    {NULL, NULL, NULL, 0},
};

void livepeer_webhook_body(struct buf *b, const struct webhook_delivery *d, int64_t now) {
    webhook_body_begin(b, d, now);
    buf_puts(b, "{\"id\":");
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
