/*
 * v1_decode: see v1_decode.h. The field tables below are the reference
 * for which fields each body takes; docs/api.md lists the same.
 */
#include "v1_decode.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/task_json.h"
#include "../common/timeutil.h"
#include "../common/utf8.h"
#include "../common/xalloc.h"

bool v1_is_name(const char *s, size_t max) {
    size_t n = 0;
    for (; s[n]; n++) {
        char c = s[n];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '.' || c == '_' || c == '-';
        if (!ok || n >= max) return false;
    }
    return n > 0;
}

int v1_parse_int(const char *s, int64_t min, int64_t max, int64_t *out) {
    /* Digits after an optional '-': strtoll alone would take white space
     * and a '+' before them ("limit= 5", "limit=+5"). */
    if (!s || !s[*s == '-'] || (unsigned)(s[*s == '-'] - '0') > 9) return -1;
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || *end || v < min || v > max) return -1;
    *out = v;
    return 0;
}

/* Refuses keys not in `allowed` (NULL-terminated). */
static int check_fields(json_t *obj, const char *const *allowed, const char *prefix,
                        struct tm_error *e) {
    const char *key;
    json_t *v;
    json_object_foreach(obj, key, v) {
        const char *const *a = allowed;
        while (*a && strcmp(*a, key) != 0)
            a++;
        if (!*a) {
            char field[320]; /* longer than err_set keeps: left out of field (err.c) */
            snprintf(field, sizeof field, "%s%s", prefix, key);
            return err_set(e, TM_EINVALID, field, "unknown field '%.64s'", field);
        }
    }
    return 0;
}

static bool has_control(const char *s) {
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f) return true;
    return false;
}

/* An optional string; *out stays NULL when absent or null. */
static int get_str(json_t *obj, const char *key, const char *field, size_t max, bool required,
                   const char **out, struct tm_error *e) {
    json_t *v = json_object_get(obj, key);
    *out = NULL;
    if (!v || json_is_null(v)) {
        if (required) return err_set(e, TM_EINVALID, field, "'%.64s' is required", field);
        return 0;
    }
    if (!json_is_string(v))
        return err_set(e, TM_EINVALID, field, "'%.64s' must be a string", field);
    if (json_string_length(v) > max)
        return err_set(e, TM_EINVALID, field, "'%.64s' is longer than %zu bytes", field, max);
    if (required && json_string_length(v) == 0)
        return err_set(e, TM_EINVALID, field, "'%.64s' must not be empty", field);
    *out = json_string_value(v);
    return 0;
}

static int get_int(json_t *obj, const char *key, const char *field, int64_t min, int64_t max,
                   bool *has, int64_t *out, struct tm_error *e) {
    json_t *v = json_object_get(obj, key);
    if (has) *has = false;
    if (!v) return 0;
    if (!json_is_integer(v))
        return err_set(e, TM_EINVALID, field, "'%.64s' must be an integer", field);
    json_int_t i = json_integer_value(v);
    if (i < min || i > max)
        return err_set(e, TM_EINVALID, field, "'%.64s' must be between %lld and %lld", field,
                       (long long)min, (long long)max);
    *out = i;
    if (has) *has = true;
    return 0;
}

static int get_bool(json_t *obj, const char *key, bool *out, struct tm_error *e) {
    json_t *v = json_object_get(obj, key);
    if (!v) return 0;
    if (!json_is_boolean(v))
        return err_set(e, TM_EINVALID, key, "'%.64s' must be true or false", key);
    *out = json_is_true(v);
    return 0;
}

static int get_number(json_t *v, const char *field, double min, double max, double *out,
                      struct tm_error *e) {
    if (!json_is_number(v))
        return err_set(e, TM_EINVALID, field, "'%.64s' must be a number", field);
    double d = json_number_value(v);
    if (!(d >= min && d <= max))
        return err_set(e, TM_EINVALID, field, "'%.64s' must be between %g and %g", field, min, max);
    *out = d;
    return 0;
}

/* A JSON object of strings only, with the allowed keys. */
static int get_string_object(json_t *obj, const char *key, const char *const *allowed, size_t max,
                             char **out, struct tm_error *e) {
    json_t *v = json_object_get(obj, key);
    if (!v || json_is_null(v)) return 0;
    if (!json_is_object(v)) return err_set(e, TM_EINVALID, key, "'%.64s' must be an object", key);
    char prefix[32];
    snprintf(prefix, sizeof prefix, "%s.", key);
    int rc = check_fields(v, allowed, prefix, e);
    if (rc) return rc;
    const char *k;
    json_t *x;
    json_object_foreach(v, k, x) {
        if (strcmp(k, "arguments") == 0) {
            if (!json_is_object(x) && !json_is_null(x))
                return err_set(e, TM_EINVALID, "definition.arguments",
                               "'definition.arguments' must be an object");
            continue;
        }
        char field[320];
        snprintf(field, sizeof field, "%s.%s", key, k);
        if (!json_is_string(x) && !json_is_null(x))
            return err_set(e, TM_EINVALID, field, "'%.64s' must be a string", field);
        if (json_string_length(x) > max)
            return err_set(e, TM_EINVALID, field, "'%.64s' is longer than %zu bytes", field, max);
    }
    *out = json_text(v);
    return 0;
}

static const char *const task_fields[] = {
    "namespace",  "type",           "name",         "description", "queue",           "priority",
    "parent_id",  "launcher",       "target",       "definition",  "params",          "max_retries",
    "backoff_ms", "backoff_max_ms", "scheduled_at", "paused",      "idempotency_key", NULL,
};

int v1_decode_task(json_t *obj, const struct limits *lim, const char *ns, struct task **out,
                   struct tm_error *e) {
    static const char *const target_fields[] = {"id", "type", "name", NULL};
    static const char *const definition_fields[] = {"id",       "name",      "description",
                                                    "executor", "arguments", NULL};
    if (!json_is_object(obj)) return err_set(e, TM_EINVALID, "", "a task must be a JSON object");
    int rc = check_fields(obj, task_fields, "", e);
    if (rc) return rc;
    const char *type, *name, *description, *queue, *parent, *launcher, *sched, *idem, *body_ns;
    if ((rc = task_type_check(json_object_get(obj, "type"), e))) return rc;
    type = json_string_value(json_object_get(obj, "type"));
    if ((rc = get_str(obj, "name", "name", 256, false, &name, e)) ||
        (rc = get_str(obj, "description", "description", 4096, false, &description, e)) ||
        (rc = get_str(obj, "queue", "queue", 64, false, &queue, e)) ||
        (rc = get_str(obj, "parent_id", "parent_id", ID_LEN, false, &parent, e)) ||
        (rc = get_str(obj, "launcher", "launcher", 256, false, &launcher, e)) ||
        (rc = get_str(obj, "scheduled_at", "scheduled_at", 64, false, &sched, e)) ||
        (rc = get_str(obj, "idempotency_key", "idempotency_key", 256, false, &idem, e)) ||
        (rc = get_str(obj, "namespace", "namespace", 64, false, &body_ns, e)))
        return rc;
    if (queue && !v1_is_name(queue, 64))
        return err_set(e, TM_EINVALID, "queue", "'queue' must be 1-64 of [A-Za-z0-9._-]");
    if (body_ns && !v1_is_name(body_ns, 64))
        return err_set(e, TM_EINVALID, "namespace", "'namespace' must be 1-64 of [A-Za-z0-9._-]");
    if (ns && body_ns && strcmp(ns, body_ns) != 0)
        return err_set(e, TM_EINVALID, "namespace", "'namespace' must be '%.64s' for this token",
                       ns);
    if (idem && !*idem) /* as the header: an empty key would be one key for every submit */
        return err_set(e, TM_EINVALID, "idempotency_key",
                       "'idempotency_key' must be 1 to 256 bytes");
    if (parent && !id_is_valid(parent))
        return err_set(e, TM_EINVALID, "parent_id", "'parent_id' must be a task id (32 hex)");
    int64_t sched_ms = 0;
    if (sched && time_parse_rfc3339(sched, &sched_ms))
        return err_set(e, TM_EINVALID, "scheduled_at", "'scheduled_at' must be " TIME_RFC3339_WANT);
    json_t *params = json_object_get(obj, "params");
    if (params && !json_is_object(params) && !json_is_null(params))
        return err_set(e, TM_EINVALID, "params", "'params' must be an object");

    struct task *t = task_new();
    /* Unset retry settings come from the queue when the store takes the task. */
    t->max_retries = t->backoff_ms = t->backoff_max_ms = -1;
    bool has;
    if ((rc = get_int(obj, "priority", "priority", -1000000, 1000000, &has, &t->priority, e)) ||
        (rc = get_int(obj, "max_retries", "max_retries", 0, 1000, &has, &t->max_retries, e)) ||
        (rc = get_int(obj, "backoff_ms", "backoff_ms", 0, 86400000, &has, &t->backoff_ms, e)) ||
        (rc = get_int(obj, "backoff_max_ms", "backoff_max_ms", 0, 604800000, &has,
                      &t->backoff_max_ms, e)) ||
        (rc = get_bool(obj, "paused", &t->paused, e)) ||
        (rc = get_string_object(obj, "target", target_fields, 256, &t->target, e)) ||
        (rc = get_string_object(obj, "definition", definition_fields, 4096, &t->definition, e)))
        goto fail;
    t->namespace = xstrdup(body_ns ? body_ns : ns ? ns : "default");
    t->type = xstrdup(type);
    t->name = xstrdup(name);
    t->description = xstrdup(description);
    t->queue = xstrdup(queue ? queue : "default");
    if (parent) memcpy(t->parent_id, parent, ID_LEN + 1);
    t->launcher = xstrdup(launcher);
    t->scheduled_at = sched_ms;
    t->idempotency_key = xstrdup(idem);
    if (params && json_is_object(params)) t->params = json_text(params);
    (void)lim;
    *out = t;
    return 0;
fail:
    task_free(t);
    return rc;
}

/* A queue's "retention": {"completed_seconds": N, ...}; a phase left out
 * keeps QUEUE_RETENTION_UNSET (the server's age), 0 keeps forever. */
static int decode_retention(json_t *obj, struct queue_settings *q, struct tm_error *e) {
    static const char *const fields[] = {"completed_seconds", "failed_seconds", "cancelled_seconds",
                                         NULL};
    static const enum task_phase phases[] = {TASK_COMPLETED, TASK_FAILED, TASK_CANCELLED};
    json_t *r = json_object_get(obj, "retention");
    if (!r) return 0;
    if (!json_is_object(r))
        return err_set(e, TM_EINVALID, "retention", "'retention' must be an object");
    int rc = check_fields(r, fields, "retention.", e);
    for (int i = 0; i < 3 && rc == 0; i++) {
        char field[48];
        snprintf(field, sizeof field, "retention.%s", fields[i]);
        rc = get_int(r, fields[i], field, 0, QUEUE_RETENTION_MAX_SECONDS, NULL,
                     &q->retention_seconds[phases[i]], e);
    }
    return rc;
}

int v1_decode_queue_settings(json_t *obj, struct queue_settings *q, struct tm_error *e) {
    static const char *const fields[] = {"max_retries", "backoff_ms", "backoff_max_ms", "retention",
                                         NULL};
    int rc = check_fields(obj, fields, "", e);
    if (rc) return rc;
    queue_settings_default(q);
    bool has_max = false;
    if ((rc = get_int(obj, "max_retries", "max_retries", 0, 1000, NULL, &q->max_retries, e)) ||
        (rc = get_int(obj, "backoff_ms", "backoff_ms", 0, 86400000, NULL, &q->backoff_ms, e)) ||
        (rc = get_int(obj, "backoff_max_ms", "backoff_max_ms", 0, 604800000, &has_max,
                      &q->backoff_max_ms, e)) ||
        (rc = decode_retention(obj, q, e)))
        return rc;
    /* Name the default when the body left it out: the client sent no
     * 'backoff_max_ms' and must see where the number came from. */
    if (q->backoff_max_ms < q->backoff_ms)
        return err_set(e, TM_EINVALID, "backoff_max_ms",
                       "'backoff_max_ms' (%lld%s) must not be less than 'backoff_ms' (%lld)",
                       (long long)q->backoff_max_ms, has_max ? "" : ", its default when left out",
                       (long long)q->backoff_ms);
    return 0;
}

int v1_decode_claim(json_t *obj, const struct limits *lim, struct store_op *op, int *wait_s,
                    struct tm_error *e) {
    static const char *const fields[] = {"worker", "types", "lease_seconds", "wait_seconds", NULL};
    int rc = check_fields(obj, fields, "", e);
    if (rc) return rc;
    if ((rc = get_str(obj, "worker", "worker", TASK_WORKER_NAME_MAX, true, &op->worker, e)))
        return rc;
    if (has_control(op->worker))
        return err_set(e, TM_EINVALID, "worker", "'worker' must not contain control characters");
    json_t *types = json_object_get(obj, "types");
    if (types && !json_is_null(types)) {
        if (!json_is_array(types))
            return err_set(e, TM_EINVALID, "types", "'types' must be an array of strings");
        if (json_array_size(types) > STORE_CLAIM_MAX_TYPES)
            return err_set(e, TM_EINVALID, "types", "'types' holds more than %d entries",
                           STORE_CLAIM_MAX_TYPES);
        size_t i;
        json_t *v;
        json_array_foreach(types, i, v) {
            if (!json_is_string(v) || json_string_length(v) == 0 || json_string_length(v) > 128) {
                char field[32];
                snprintf(field, sizeof field, "types[%zu]", i);
                return err_set(e, TM_EINVALID, field, "'%.64s' must be a type name", field);
            }
            op->types[op->ntypes++] = json_string_value(v);
        }
    }
    int64_t lease = 60, wait = 0;
    if ((rc = get_int(obj, "lease_seconds", "lease_seconds", 1, 86400, NULL, &lease, e)) ||
        (rc = get_int(obj, "wait_seconds", "wait_seconds", 0, lim->wait_max_seconds, NULL, &wait,
                      e)))
        return rc;
    op->lease_ms = lease * 1000;
    *wait_s = (int)wait;
    return 0;
}

static int decode_progress(json_t *p, struct store_op *op, const struct limits *lim,
                           struct tm_error *e) {
    static const char *const fields[] = {"ratio",      "percent", "message",    "processed",
                                         "processing", "pending", "updated_at", NULL};
    if (!json_is_object(p))
        return err_set(e, TM_EINVALID, "progress", "'progress' must be an object");
    int rc = check_fields(p, fields, "progress.", e);
    if (rc) return rc;
    struct task_progress_update *u = &op->progress;
    json_t *v;
    if ((v = json_object_get(p, "ratio"))) {
        if ((rc = get_number(v, "progress.ratio", 0, 1, &u->ratio, e))) return rc;
        u->has_ratio = true;
    }
    if ((v = json_object_get(p, "percent"))) {
        double pct;
        if ((rc = get_number(v, "progress.percent", 0, 100, &pct, e))) return rc;
        if (!u->has_ratio) u->ratio = pct / 100.0;
        u->has_ratio = true;
    }
    if ((v = json_object_get(p, "message"))) {
        if (!json_is_string(v) && !json_is_null(v))
            return err_set(e, TM_EINVALID, "progress.message",
                           "'progress.message' must be a string");
        if (json_string_length(v) > lim->string_max_bytes)
            return err_set(e, TM_EINVALID, "progress.message",
                           "'progress.message' is longer than %zu bytes", lim->string_max_bytes);
        u->message = json_string_value(v);
        u->has_message = true;
    }
    const int64_t big = (int64_t)1 << 53;
    if ((rc = get_int(p, "processed", "progress.processed", 0, big, &u->has_processed,
                      &u->processed, e)) ||
        (rc = get_int(p, "processing", "progress.processing", 0, big, &u->has_processing,
                      &u->processing, e)) ||
        (rc = get_int(p, "pending", "progress.pending", 0, big, &u->has_pending, &u->pending, e)))
        return rc;
    op->has_progress = true;
    return 0;
}

/* One entry of an array decode_entries checks; `prefix` names its fields
 * in errors ("items[3]."). */
typedef int (*entry_fn)(json_t *entry, const char *prefix, const struct limits *lim,
                        struct tm_error *e);

/*
 * The skeleton of every array of objects a worker sends: `arr` (the body's
 * `name`) must be an array of at most `max` entries (-1: no cap), each an
 * object holding only `fields`, which `entry` then checks.
 */
static int decode_entries(json_t *arr, const char *name, int max, const char *const *fields,
                          entry_fn entry, const struct limits *lim, struct tm_error *e) {
    if (!json_is_array(arr)) return err_set(e, TM_EINVALID, name, "'%.64s' must be an array", name);
    if (max >= 0 && json_array_size(arr) > (size_t)max)
        return err_set(e, TM_EINVALID, name, "'%.64s' holds more than %d entries", name, max);
    size_t i;
    json_t *x;
    json_array_foreach(arr, i, x) {
        char prefix[32];
        snprintf(prefix, sizeof prefix, "%s[%zu].", name, i);
        if (!json_is_object(x)) { /* named "items[3]", as a batch names "tasks[3]" */
            char field[32];
            snprintf(field, sizeof field, "%s[%zu]", name, i);
            return err_set(e, TM_EINVALID, field, "'%.64s' must be an object", field);
        }
        int rc = check_fields(x, fields, prefix, e);
        if (!rc) rc = entry(x, prefix, lim, e);
        if (rc) return rc;
    }
    return 0;
}

/* get_str on an entry's `key`, named prefix + key in errors. */
static int get_entry_str(json_t *obj, const char *prefix, const char *key, size_t max,
                         bool required, const char **out, struct tm_error *e) {
    char field[64];
    snprintf(field, sizeof field, "%s%s", prefix, key);
    return get_str(obj, key, field, max, required, out, e);
}

static int decode_item(json_t *it, const char *prefix, const struct limits *lim,
                       struct tm_error *e) {
    const char *name, *msg;
    int rc;
    if ((rc = get_entry_str(it, prefix, "name", 256, true, &name, e)) ||
        (rc = get_entry_str(it, prefix, "message", lim->string_max_bytes, false, &msg, e)))
        return rc;
    json_t *p = json_object_get(it, "progress");
    char field[64];
    double d;
    snprintf(field, sizeof field, "%sprogress", prefix);
    return p ? get_number(p, field, 0, 1, &d, e) : 0;
}

static int decode_items(json_t *items, const struct limits *lim, struct tm_error *e) {
    static const char *const fields[] = {"name", "progress", "message", NULL};
    return decode_entries(items, "items", lim->items_max_per_call, fields, decode_item, lim, e);
}

static int decode_message(json_t *m, const char *prefix, const struct limits *lim,
                          struct tm_error *e) {
    const char *level, *text, *key, *locale;
    char field[64];
    int rc;
    if ((rc = get_entry_str(m, prefix, "level", 8, true, &level, e))) return rc;
    if (strcmp(level, "INFO") && strcmp(level, "WARN") && strcmp(level, "ERROR")) {
        snprintf(field, sizeof field, "%slevel", prefix);
        return err_set(e, TM_EINVALID, field, "'%.64s' must be INFO, WARN or ERROR", field);
    }
    if ((rc = get_entry_str(m, prefix, "text", lim->string_max_bytes, true, &text, e)) ||
        (rc = get_entry_str(m, prefix, "key", 256, false, &key, e)) ||
        (rc = get_entry_str(m, prefix, "locale", 32, false, &locale, e)))
        return rc;
    json_t *params = json_object_get(m, "parameters");
    if (params && !json_is_array(params) && !json_is_object(params) && !json_is_null(params)) {
        snprintf(field, sizeof field, "%sparameters", prefix);
        return err_set(e, TM_EINVALID, field, "'%.64s' must be an array or object", field);
    }
    return 0;
}

static int decode_messages(json_t *msgs, const struct limits *lim, struct tm_error *e) {
    static const char *const fields[] = {"level", "key", "text", "locale", "parameters", NULL};
    return decode_entries(msgs, "messages", lim->messages_max_per_call, fields, decode_message, lim,
                          e);
}

static int decode_return(json_t *x, const char *prefix, const struct limits *lim,
                         struct tm_error *e) {
    (void)lim;
    const char *s;
    int rc = get_entry_str(x, prefix, "name", 256, true, &s, e);
    return rc ? rc : get_entry_str(x, prefix, "attribute", 256, true, &s, e);
}

static int decode_returns(json_t *r, const struct limits *lim, struct tm_error *e) {
    static const char *const fields[] = {"name", "attribute", NULL};
    return decode_entries(r, "returns", -1, fields, decode_return, lim, e);
}

int v1_decode_worker_call(json_t *obj, const struct limits *lim, struct store_op *op,
                          struct tm_error *e) {
    static const char *const heartbeat[] = {"lease_token", "lease_seconds", "progress", "items",
                                            "messages",    "attributes",    NULL};
    static const char *const complete[] = {"lease_token", "result",  "returns",
                                           "attributes",  "warning", "progress",
                                           "messages",    "items",   NULL};
    static const char *const fail[] = {"lease_token", "error",      "retryable",
                                       "result",      "attributes", "messages",
                                       "progress",    "items",      NULL};
    static const char *const release[] = {"lease_token", NULL};
    const char *const *fields = op->kind == STORE_OP_HEARTBEAT  ? heartbeat
                                : op->kind == STORE_OP_COMPLETE ? complete
                                : op->kind == STORE_OP_FAIL     ? fail
                                                                : release;
    int rc = check_fields(obj, fields, "", e);
    if (rc) return rc;
    if ((rc = get_str(obj, "lease_token", "lease_token", 64, true, &op->lease_token, e))) return rc;
    int64_t lease_s = 0;
    if ((rc = get_int(obj, "lease_seconds", "lease_seconds", 1, 86400, NULL, &lease_s, e)))
        return rc;
    op->lease_ms = lease_s * 1000;
    json_t *v;
    if ((v = json_object_get(obj, "progress")) && (rc = decode_progress(v, op, lim, e))) return rc;
    if ((v = json_object_get(obj, "items"))) {
        if ((rc = decode_items(v, lim, e))) return rc;
        op->items = v;
    }
    if ((v = json_object_get(obj, "messages"))) {
        if ((rc = decode_messages(v, lim, e))) return rc;
        op->messages = v;
    }
    if ((v = json_object_get(obj, "attributes"))) {
        if (!json_is_object(v))
            return err_set(e, TM_EINVALID, "attributes", "'attributes' must be an object");
        op->attributes = v;
    }
    if ((v = json_object_get(obj, "returns"))) {
        if ((rc = decode_returns(v, lim, e))) return rc;
        op->returns = v;
    }
    op->result = json_object_get(obj, "result");
    if ((rc = get_bool(obj, "warning", &op->warning, e))) return rc;
    if (op->kind == STORE_OP_FAIL) {
        op->retryable = true;
        if ((rc = get_bool(obj, "retryable", &op->retryable, e)) ||
            (rc = get_str(obj, "error", "error", lim->string_max_bytes, true, &op->error, e)))
            return rc;
    }
    return 0;
}

void v1_list_query_init(struct list_query *q) {
    memset(q, 0, sizeof *q);
    q->filter.limit = 50;
}

static int list_time(const char *key, const char *value, int64_t *out, struct tm_error *e) {
    if (time_parse_rfc3339(value, out))
        return err_set(e, TM_EINVALID, key, "'%.64s' must be " TIME_RFC3339_WANT, key);
    return 0;
}

int v1_list_query_add(struct list_query *q, const struct limits *lim, const char *key,
                      const char *value, struct tm_error *e) {
    struct task_filter *f = &q->filter;
    if (strlen(value) > 256) return err_set(e, TM_EINVALID, key, "'%.64s' is too long", key);
    /* PostgreSQL refuses other bytes in a text comparison: a 500 it was. */
    if (!utf8_valid(value, strlen(value)))
        return err_set(e, TM_EINVALID, key, "'%.64s' must be UTF-8", key);
    if (strcmp(key, "phase") == 0) {
        char tmp[257];
        snprintf(tmp, sizeof tmp, "%s", value);
        char *save = NULL;
        for (char *p = strtok_r(tmp, ",", &save); p; p = strtok_r(NULL, ",", &save)) {
            enum task_phase ph;
            if (task_phase_parse(p, &ph))
                return err_set(e, TM_EINVALID, "phase", "'phase' has unknown phase '%.64s'", p);
            f->phases |= 1u << ph;
        }
        if (!f->phases) return err_set(e, TM_EINVALID, "phase", "'phase' must name a phase");
    } else if (strcmp(key, "type") == 0) {
        f->type = value;
    } else if (strcmp(key, "queue") == 0) {
        f->queue = value;
    } else if (strcmp(key, "parent_id") == 0) {
        if (!id_is_valid(value))
            return err_set(e, TM_EINVALID, key, "'parent_id' must be a task id (32 hex)");
        f->parent_id = value;
    } else if (strcmp(key, "id_prefix") == 0) {
        size_t n = strlen(value);
        if (n < 1 || n > ID_LEN || strspn(value, "0123456789abcdef") != n)
            return err_set(e, TM_EINVALID, key,
                           "'id_prefix' must be 1 to 32 lowercase hex characters");
        memcpy(f->id_prefix, value, n + 1);
        memcpy(f->id_prefix_end, value, n + 1);
        f->id_prefix_end[n - 1]++; /* '9' + 1 is ':', below 'a': still the end */
    } else if (strcmp(key, "name_prefix") == 0) {
        f->name_prefix = value;
    } else if (strcmp(key, "q") == 0) {
        if (!*value) return err_set(e, TM_EINVALID, key, "'q' must not be empty");
        f->search = value;
    } else if (strcmp(key, "namespace") == 0) {
        if (!*value) return err_set(e, TM_EINVALID, key, "'namespace' must not be empty");
        f->namespace_eq = value;
    } else if (strcmp(key, "created_after") == 0) {
        return list_time(key, value, &f->created_after, e);
    } else if (strcmp(key, "created_before") == 0) {
        return list_time(key, value, &f->created_before, e);
    } else if (strcmp(key, "updated_after") == 0) {
        return list_time(key, value, &f->updated_after, e);
    } else if (strcmp(key, "updated_before") == 0) {
        return list_time(key, value, &f->updated_before, e);
    } else if (strcmp(key, "limit") == 0) {
        int64_t n;
        if (v1_parse_int(value, 1, lim->page_max, &n))
            return err_set(e, TM_EINVALID, key, "'limit' must be an integer from 1 to %d",
                           lim->page_max);
        f->limit = (int)n;
    } else if (strcmp(key, "cursor") == 0) {
        if (!id_is_valid(value))
            return err_set(e, TM_EINVALID, key, "'cursor' is not a cursor this server gave");
        memcpy(f->cursor, value, ID_LEN + 1);
    } else if (strcmp(key, "order") == 0) {
        if (strcmp(value, "asc") == 0)
            f->ascending = true;
        else if (strcmp(value, "desc") == 0)
            f->ascending = false;
        else
            return err_set(e, TM_EINVALID, key, "'order' must be 'asc' or 'desc'");
    } else {
        return err_set(e, TM_EINVALID, key, "unknown query parameter '%.64s'", key);
    }
    return 0;
}

int v1_decode_history_limit(const char *value, int *limit, struct tm_error *e) {
    int64_t n = 100;
    if (value && v1_parse_int(value, 1, 1000, &n))
        return err_set(e, TM_EINVALID, "limit", "'limit' must be an integer from 1 to 1000");
    *limit = (int)n;
    return 0;
}

int v1_decode_wait(const char *wait, const char *version, const struct limits *lim, int *wait_s,
                   int64_t *ver, struct tm_error *e) {
    int64_t w = 0, v = -1;
    if (wait && v1_parse_int(wait, 0, lim->wait_max_seconds, &w))
        return err_set(e, TM_EINVALID, "wait", "'wait' must be an integer from 0 to %d",
                       lim->wait_max_seconds);
    if (version && v1_parse_int(version, 0, INT64_MAX, &v))
        return err_set(e, TM_EINVALID, "version", "'version' must be a non-negative integer");
    *wait_s = (int)w;
    *ver = v;
    return 0;
}
