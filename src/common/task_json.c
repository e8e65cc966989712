/*
 * task_json: see task_json.h. The field order of task_json_write is the
 * order of DESIGN.md section 1, and docs/api.md shows the same.
 */
#include "task_json.h"

#include <stdio.h>
#include <string.h>

#include "timeutil.h"
#include "xalloc.h"

/*
 * json_text writes what json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY |
 * JSON_REAL_PRECISION(16)) returns, byte for byte (tests/unit checks it
 * against jansson), without jansson's dump, which hands its output to a
 * callback a few bytes at a time: stored JSON from before and after is
 * the same text, so comparisons of stored params still hold. Strings go
 * through json_put_strn_jansson (buf.h), as jansson escapes them.
 */

/* jansson's real (jsonp_dtostr): %.16g; ".0" added when it would read as
 * an integer; the exponent without '+' or leading zeros. */
static void text_real(struct buf *b, double v) {
    char tmp[48];
    int n = snprintf(tmp, sizeof tmp - 2, "%.16g", v);
    if (n < 0 || n >= (int)sizeof tmp - 2) n = 0;
    tmp[n] = '\0';
    if (!strchr(tmp, '.') && !strchr(tmp, 'e')) {
        memcpy(tmp + n, ".0", 3);
        n += 2;
    }
    char *start = strchr(tmp, 'e');
    if (start) {
        start++;
        char *end = start + 1;
        if (*start == '-') start++;
        while (*end == '0')
            end++;
        if (end != start) {
            memmove(start, end, (size_t)(tmp + n + 1 - end));
            n -= (int)(end - start);
        }
    }
    buf_put(b, tmp, (size_t)n);
}

static void text_value(struct buf *b, const json_t *v) {
    switch (json_typeof(v)) {
    case JSON_OBJECT: {
        buf_putc(b, '{');
        bool first = true;
        for (void *it = json_object_iter((json_t *)v); it;
             it = json_object_iter_next((json_t *)v, it)) {
            if (!first) buf_putc(b, ',');
            first = false;
            json_put_strn_jansson(b, json_object_iter_key(it), json_object_iter_key_len(it));
            buf_putc(b, ':');
            text_value(b, json_object_iter_value(it));
        }
        buf_putc(b, '}');
        break;
    }
    case JSON_ARRAY:
        buf_putc(b, '[');
        for (size_t i = 0; i < json_array_size(v); i++) {
            if (i) buf_putc(b, ',');
            text_value(b, json_array_get(v, i));
        }
        buf_putc(b, ']');
        break;
    case JSON_STRING:
        json_put_strn_jansson(b, json_string_value(v), json_string_length(v));
        break;
    case JSON_INTEGER:
        json_put_int(b, (int64_t)json_integer_value(v));
        break;
    case JSON_REAL:
        text_real(b, json_real_value(v));
        break;
    case JSON_TRUE:
        buf_put(b, "true", 4);
        break;
    case JSON_FALSE:
        buf_put(b, "false", 5);
        break;
    case JSON_NULL:
        buf_put(b, "null", 4);
        break;
    }
}

char *json_text(const json_t *v) {
    if (!v) return NULL;
    struct buf b;
    buf_init(&b);
    text_value(&b, v);
    buf_putc(&b, '\0');
    return buf_detach(&b);
}

void task_json_write(struct buf *b, const struct task *t) {
    task_json_write_at(b, t, NULL);
}

void task_json_write_at(struct buf *b, const struct task *t, size_t *phase_at) {
    buf_reserve(b, 990);
    size_t start = b->len;
    buf_put_lit(b, "{\"id\":");
    json_put_str(b, t->id);
    buf_put_lit(b, ",\"namespace\":");
    json_put_str(b, t->namespace);
    buf_put_lit(b, ",\"type\":");
    json_put_str(b, t->type);
    buf_put_lit(b, ",\"name\":");
    json_put_str(b, t->name);
    buf_put_lit(b, ",\"description\":");
    json_put_str(b, t->description);
    buf_put_lit(b, ",\"queue\":");
    json_put_str(b, t->queue);
    buf_put_lit(b, ",\"priority\":");
    json_put_int(b, t->priority);
    buf_put_lit(b, ",\"parent_id\":");
    json_put_str(b, t->parent_id[0] ? t->parent_id : NULL);
    buf_put_lit(b, ",\"launcher\":");
    json_put_str(b, t->launcher);
    buf_put_lit(b, ",\"target\":");
    json_put_raw(b, t->target, "null");
    buf_put_lit(b, ",\"definition\":");
    json_put_raw(b, t->definition, "null");
    buf_put_lit(b, ",\"params\":");
    json_put_raw(b, t->params, "{}");
    if (phase_at) *phase_at = b->len - start;
    buf_put_lit(b, ",\"phase\":");
    json_put_str(b, task_phase_name(t->phase));
    buf_put_lit(b, ",\"completion_status\":");
    json_put_str(b, task_status_name(t->status));

    int64_t done, doing, todo;
    task_counts(t, &done, &doing, &todo);
    buf_put_lit(b, ",\"progress\":{\"ratio\":");
    json_put_double(b, task_ratio(t));
    buf_put_lit(b, ",\"percent\":");
    json_put_int(b, task_percent(t));
    buf_put_lit(b, ",\"message\":");
    json_put_str(b, t->progress.message);
    buf_put_lit(b, ",\"processed\":");
    json_put_int(b, done);
    buf_put_lit(b, ",\"processing\":");
    json_put_int(b, doing);
    buf_put_lit(b, ",\"pending\":");
    json_put_int(b, todo);
    buf_put_lit(b, ",\"updated_at\":");
    json_put_time(b, t->progress.updated_at);
    buf_putc(b, '}');

    buf_put_lit(b, ",\"items\":");
    json_put_raw(b, t->items, "[]");
    buf_put_lit(b, ",\"messages\":");
    json_put_raw(b, t->messages, "[]");
    buf_put_lit(b, ",\"result\":");
    json_put_raw(b, t->result, "null");
    buf_put_lit(b, ",\"returns\":");
    json_put_raw(b, t->returns, "[]");
    buf_put_lit(b, ",\"attributes\":");
    json_put_raw(b, t->attributes, "{}");
    buf_put_lit(b, ",\"error\":");
    json_put_str(b, t->error);
    buf_put_lit(b, ",\"attempt\":");
    json_put_int(b, t->attempt);
    buf_put_lit(b, ",\"retries\":");
    json_put_int(b, t->retries);
    buf_put_lit(b, ",\"max_retries\":");
    json_put_int(b, t->max_retries);
    buf_put_lit(b, ",\"lease\":");
    if (t->lease_worker) {
        buf_put_lit(b, "{\"worker\":");
        json_put_str(b, t->lease_worker);
        buf_put_lit(b, ",\"expires_at\":");
        json_put_time(b, t->lease_expires_at);
        buf_putc(b, '}');
    } else {
        buf_puts(b, "null");
    }
    buf_put_lit(b, ",\"created_at\":");
    json_put_time(b, t->created_at);
    buf_put_lit(b, ",\"updated_at\":");
    json_put_time(b, t->updated_at);
    buf_put_lit(b, ",\"scheduled_at\":");
    json_put_time(b, t->scheduled_at);
    buf_put_lit(b, ",\"started_at\":");
    json_put_time(b, t->started_at);
    buf_put_lit(b, ",\"completed_at\":");
    json_put_time(b, t->completed_at);
    buf_put_lit(b, ",\"version\":");
    json_put_int(b, t->version);
    buf_put_lit(b, ",\"paused\":");
    json_put_bool(b, t->paused);
    buf_put_lit(b, ",\"awaiting_children\":");
    json_put_bool(b, t->awaiting_children);
    buf_putc(b, '}');
}

bool task_json_write_capped(struct buf *b, const struct task *t, size_t max_bytes,
                            size_t *phase_at) {
    size_t start = b->len;
    task_json_write_at(b, t, phase_at);
    if (!max_bytes || b->len - start <= max_bytes) return false;
    /* A shallow copy without the parts of unbounded size; t is not changed. */
    struct task r = *t;
    r.params = r.target = r.definition = r.attributes = NULL;
    r.items = r.messages = r.returns = r.result = NULL;
    for (int pass = 0; pass < 2; pass++) {
        b->len = start;
        b->p[start] = '\0';
        task_json_write(b, &r);
        if (b->len - start <= max_bytes) break;
        r.description = r.error = r.progress.message = NULL;
    }
    if (phase_at) *phase_at = 0;
    /* Replace the closing brace. */
    b->len--;
    b->p[b->len] = '\0';
    json_put_key(b, "truncated", false);
    json_put_bool(b, true);
    buf_putc(b, '}');
    return true;
}

#define WHOLE_PREFIX  "{\"id\":"
#define TRUNCATED_END ",\"truncated\":true}"

bool task_json_is_whole(const char *json) {
    return json && strncmp(json, WHOLE_PREFIX, sizeof WHOLE_PREFIX - 1) == 0;
}

/* The offset of the comma before the top-level "phase" key of a whole
 * task's JSON, or 0 when there is none. Keys at depth 1 follow a comma;
 * strings are skipped whole, so a "phase" inside params is not taken. */
static size_t phase_at(const char *j) {
    int depth = 0;
    for (size_t i = 0; j[i]; i++) {
        char c = j[i];
        if (c == '"') {
            if (depth == 1 && i > 0 && j[i - 1] == ',' && strncmp(j + i, "\"phase\":", 8) == 0)
                return i - 1;
            for (i++; j[i] && j[i] != '"'; i++)
                if (j[i] == '\\' && j[i + 1]) i++;
            if (!j[i]) return 0;
        } else if (c == '{' || c == '[') {
            depth++;
        } else if (c == '}' || c == ']') {
            depth--;
        }
    }
    return 0;
}

static bool ends_with(const char *s, size_t len, const char *end) {
    size_t n = strlen(end);
    return len >= n && memcmp(s + len - n, end, n) == 0;
}

char *task_json_join(const char *base, const char *rest, bool truncated) {
    size_t at = base ? phase_at(base) : 0;
    if (!at || !rest || rest[0] != '{') return NULL;
    size_t rlen = strlen(rest);
    truncated = truncated || ends_with(base, strlen(base), TRUNCATED_END);
    truncated = truncated && !ends_with(rest, rlen, TRUNCATED_END);
    struct buf b;
    buf_init(&b);
    buf_grow(&b, at + rlen + sizeof TRUNCATED_END);
    buf_put(&b, base, at);
    buf_putc(&b, ',');
    if (truncated) {
        buf_put(&b, rest + 1, rlen - 2);
        buf_puts(&b, TRUNCATED_END);
    } else {
        buf_put(&b, rest + 1, rlen - 1);
    }
    return buf_detach(&b);
}

static void json_set_time(json_t *obj, const char *key, int64_t ms) {
    char tmp[TIME_RFC3339_LEN + 1];
    time_format_rfc3339(ms, tmp);
    json_object_set_new(obj, key, json_string(tmp));
}

static json_t *json_load_or(const char *text, json_t *fallback) {
    json_t *v = text ? json_loads(text, 0, NULL) : NULL;
    if (!v) return fallback;
    json_decref(fallback);
    return v;
}

/* An attempt still running ends its task's attempts this way, as json_text
 * writes what task_attempt_begin builds: its end is written over this
 * suffix in place, with no parse (the JSON path below gives the same). */
#define ATTEMPT_OPEN_END ",\"ended_at\":null,\"outcome\":\"running\",\"error\":null}]"

/* Whether s (NULL too) is ASCII: what the paths in place take. jansson
 * refuses a string that is not UTF-8, which the JSON path then leaves out;
 * these write bytes as they are, so other text goes the JSON path. */
static bool text_ascii(const char *s) {
    for (; s && *s; s++)
        if ((unsigned char)*s >= 0x80) return false;
    return true;
}

/* Writes a time as json_set_time's string. */
static void text_time(struct buf *b, int64_t ms) {
    char tmp[TIME_RFC3339_LEN + 1];
    time_format_rfc3339(ms, tmp);
    json_put_strn_jansson(b, tmp, strlen(tmp));
}

void task_attempt_begin(struct task *t, int64_t now) {
    if (!t->attempts && text_ascii(t->lease_worker)) { /* the first: as json_text would */
        struct buf b;
        buf_init(&b);
        buf_puts(&b, "[{\"attempt\":");
        json_put_int(&b, t->attempt);
        buf_puts(&b, ",\"worker\":");
        if (t->lease_worker)
            json_put_strn_jansson(&b, t->lease_worker, strlen(t->lease_worker));
        else
            buf_puts(&b, "null");
        buf_puts(&b, ",\"started_at\":");
        text_time(&b, now);
        buf_puts(&b, ATTEMPT_OPEN_END);
        buf_putc(&b, '\0');
        t->attempts = buf_detach(&b);
        return;
    }
    json_t *all = json_load_or(t->attempts, json_array());
    if (!json_is_array(all)) {
        json_decref(all);
        all = json_array();
    }
    json_t *a = json_object();
    json_object_set_new(a, "attempt", json_integer(t->attempt));
    json_object_set_new(a, "worker", t->lease_worker ? json_string(t->lease_worker) : json_null());
    json_set_time(a, "started_at", now);
    json_object_set_new(a, "ended_at", json_null());
    json_object_set_new(a, "outcome", json_string("running"));
    json_object_set_new(a, "error", json_null());
    json_array_append_new(all, a);
    while (json_array_size(all) > TASK_MAX_ATTEMPTS)
        json_array_remove(all, 0);
    free(t->attempts);
    t->attempts = json_text(all);
    json_decref(all);
}

void task_attempt_end(struct task *t, const char *outcome, const char *error, int64_t now) {
    size_t n = t->attempts ? strlen(t->attempts) : 0, k = sizeof ATTEMPT_OPEN_END - 1;
    if (n > k && memcmp(t->attempts + n - k, ATTEMPT_OPEN_END, k) == 0 && text_ascii(outcome) &&
        text_ascii(error)) {
        struct buf b;
        buf_init(&b);
        buf_grow(&b, n + 64 + (error ? strlen(error) : 0));
        buf_put(&b, t->attempts, n - k);
        buf_puts(&b, ",\"ended_at\":");
        text_time(&b, now);
        buf_puts(&b, ",\"outcome\":");
        json_put_strn_jansson(&b, outcome, strlen(outcome));
        buf_puts(&b, ",\"error\":");
        if (error)
            json_put_strn_jansson(&b, error, strlen(error));
        else
            buf_puts(&b, "null");
        buf_puts(&b, "}]");
        buf_putc(&b, '\0');
        free(t->attempts);
        t->attempts = buf_detach(&b);
        return;
    }
    json_t *all = json_load_or(t->attempts, NULL);
    json_t *last = json_array_get(all, json_array_size(all) - 1);
    if (last && json_is_null(json_object_get(last, "ended_at"))) {
        json_set_time(last, "ended_at", now);
        json_object_set_new(last, "outcome", json_string(outcome));
        json_object_set_new(last, "error", error ? json_string(error) : json_null());
        free(t->attempts);
        t->attempts = json_text(all);
    }
    json_decref(all);
}

#define DROPPED_KEY "taskmill.messages_dropped"

/* The count of a "messages dropped" first message, or 0 when m is not one.
 * A worker may send a message with this key itself: only a count of 1 or
 * more is taken (a forged 0 or negative one stays an ordinary message). */
static int64_t dropped_count(json_t *m) {
    const char *key = json_string_value(json_object_get(m, "key"));
    if (!key || strcmp(key, DROPPED_KEY) != 0) return 0;
    json_int_t n = json_integer_value(json_object_get(json_object_get(m, "parameters"), "dropped"));
    return n > 0 ? (int64_t)n : 0;
}

/* Drops the oldest messages until at most TASK_MAX_MESSAGES of them and
 * TASK_MESSAGES_MAX_BYTES of text are left, the count message included. */
static void task_trim_messages(struct task *t, int64_t now) {
    json_t *all = json_load_or(t->messages, json_array());
    int64_t dropped = 0;
    if (json_array_size(all) && (dropped = dropped_count(json_array_get(all, 0))))
        json_array_remove(all, 0);
    size_t bytes = strlen(t->messages);
    /* Room for the count message (about 200 bytes) and a separator each. */
    while (json_array_size(all) && (json_array_size(all) + 1 > TASK_MAX_MESSAGES ||
                                    bytes + 256 > TASK_MESSAGES_MAX_BYTES)) {
        char *s = json_text(json_array_get(all, 0));
        bytes -= strlen(s) + 1 < bytes ? strlen(s) + 1 : bytes;
        free(s);
        json_array_remove(all, 0);
        if (dropped < INT64_MAX) dropped++; /* a forged count may start at the top */
    }
    if (dropped) {
        char text[96];
        snprintf(text, sizeof text, "%lld earlier messages were dropped", (long long)dropped);
        json_t *m = json_pack("{s:s, s:s, s:s, s:{s:I}}", "level", "INFO", "key", DROPPED_KEY,
                              "text", text, "parameters", "dropped", (json_int_t)dropped);
        json_set_time(m, "at", now);
        json_array_insert_new(all, 0, m);
    }
    free(t->messages);
    t->messages = json_text(all);
    t->message_count = (int64_t)json_array_size(all);
    json_decref(all);
}

void task_add_messages(struct task *t, json_t *messages, int64_t now) {
    size_t n = json_array_size(messages);
    if (n == 0) return;
    struct buf b;
    buf_init(&b);
    /* Append to the stored text without parsing it: drop its closing bracket. */
    if (t->messages && strlen(t->messages) > 2) {
        buf_put(&b, t->messages, strlen(t->messages) - 1);
    } else {
        buf_putc(&b, '[');
    }
    size_t i;
    json_t *m;
    json_array_foreach(messages, i, m) {
        json_t *copy = json_copy(m);
        json_set_time(copy, "at", now);
        const char *level = json_string_value(json_object_get(copy, "level"));
        if (level && strcmp(level, "WARN") == 0) t->warned = true;
        if (b.len > 1) buf_putc(&b, ',');
        char *s = json_text(copy);
        buf_puts(&b, s);
        free(s);
        json_decref(copy);
    }
    buf_putc(&b, ']');
    free(t->messages);
    t->messages = buf_detach(&b);
    t->message_count += (int64_t)n;
    if (t->message_count > TASK_MAX_MESSAGES || strlen(t->messages) > TASK_MESSAGES_MAX_BYTES)
        task_trim_messages(t, now);
}

/* Stores the merged value `all` (taken) as the task's JSON field *dst,
 * named `field`, unless its text is longer than max_bytes (0: no cap). */
static int task_set_json(struct task *t, json_t *all, const char *field, size_t max_bytes,
                         char **dst, struct tm_error *e) {
    char *text = json_text(all);
    json_decref(all);
    if (max_bytes && strlen(text) > max_bytes) {
        free(text);
        return err_set(e, TM_EINVALID, field,
                       "task '%.64s' would hold more than %zu bytes of '%.64s'", t->id, max_bytes,
                       field);
    }
    free(*dst);
    *dst = text;
    return 0;
}

int task_type_check(const json_t *v, struct tm_error *e) {
    if (!v || json_is_null(v)) return err_set(e, TM_EINVALID, "type", "'type' is required");
    if (!json_is_string(v)) return err_set(e, TM_EINVALID, "type", "'type' must be a string");
    const char *s = json_string_value(v);
    size_t n = json_string_length(v);
    if (n > TASK_TYPE_MAX)
        return err_set(e, TM_EINVALID, "type", "'type' is longer than %d bytes", TASK_TYPE_MAX);
    if (n == 0) return err_set(e, TM_EINVALID, "type", "'type' must not be empty");
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
            return err_set(e, TM_EINVALID, "type", "'type' must not contain control characters");
    return 0;
}

int task_merge_items(struct task *t, json_t *items, int64_t now, struct tm_error *e) {
    if (json_array_size(items) == 0) return 0;
    json_t *all = json_load_or(t->items, json_array());
    size_t i;
    json_t *item;
    json_array_foreach(items, i, item) {
        const char *name = json_string_value(json_object_get(item, "name"));
        json_t *slot = NULL;
        size_t j;
        json_t *old;
        json_array_foreach(all, j, old) {
            if (strcmp(json_string_value(json_object_get(old, "name")), name) == 0) {
                slot = old;
                break;
            }
        }
        if (!slot) {
            if (json_array_size(all) >= TASK_MAX_ITEMS) {
                json_decref(all);
                return err_set(e, TM_EINVALID, "items",
                               "task '%.64s' would hold more than %d 'items'", t->id,
                               TASK_MAX_ITEMS);
            }
            slot = json_object();
            json_object_set_new(slot, "name", json_string(name));
            json_object_set_new(slot, "progress", json_real(0));
            json_object_set_new(slot, "message", json_null());
            json_array_append_new(all, slot);
        }
        json_t *p = json_object_get(item, "progress");
        if (p) json_object_set(slot, "progress", p);
        json_t *msg = json_object_get(item, "message");
        if (msg) json_object_set(slot, "message", msg);
        json_set_time(slot, "updated_at", now);
    }
    return task_set_json(t, all, "items", TASK_ITEMS_MAX_BYTES, &t->items, e);
}

int task_merge_attributes(struct task *t, json_t *attributes, int max_keys, size_t max_bytes,
                          struct tm_error *e) {
    if (json_object_size(attributes) == 0) return 0;
    json_t *all = json_load_or(t->attributes, json_object());
    const char *key;
    json_t *v;
    json_object_foreach(attributes, key, v) {
        if (json_is_null(v))
            json_object_del(all, key);
        else
            json_object_set(all, key, v);
    }
    if (max_keys > 0 && json_object_size(all) > (size_t)max_keys) {
        json_decref(all);
        return err_set(e, TM_EINVALID, "attributes",
                       "task '%.64s' would hold more than %d 'attributes' keys", t->id, max_keys);
    }
    return task_set_json(t, all, "attributes", max_bytes, &t->attributes, e);
}
