/*
 * schedule: checks definitions and schedules, computes a schedule's slots
 * and composes the task a slot launches (schedule.h).
 */
#include "schedule.h"

#include <stdio.h>
#include <string.h>

#include "id.h"
#include "task_json.h"
#include "timeutil.h"

static const char *const overlap_names[] = {"skip", "buffer_one", "allow_all", "cancel_running"};

const char *schedule_overlap_name(enum schedule_overlap o) {
    return (unsigned)o < 4 ? overlap_names[o] : "skip";
}

/* A name: 1..max bytes, no control characters. */
static bool name_ok(const char *s, size_t max) {
    size_t n = s ? strlen(s) : 0;
    if (n == 0 || n > max) return false;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f) return false;
    return true;
}

int schedule_name_check(const char *name, struct tm_error *e) {
    if (id_is_valid(name))
        return err_set(
            e, TM_EINVALID, "name",
            "'name' must not be 32 lowercase hex digits: '%.64s' has the shape of an id, "
            "and a path reads it as one",
            name);
    if (name_ok(name, SCHEDULE_NEW_NAME_MAX) && !strchr(name, '/') && !strstr(name, "%00"))
        return 0;
    return err_set(e, TM_EINVALID, "name",
                   "'name' must be 1 to %d bytes with no control characters, '/' or '%%00'",
                   SCHEDULE_NEW_NAME_MAX);
}

/* A schedule's field, null as absent: every field of a schedule reads a
 * null as not given (its default, or none). */
static json_t *field(json_t *body, const char *key) {
    json_t *v = json_object_get(body, key);
    return json_is_null(v) ? NULL : v;
}

static int get_seconds(json_t *body, const char *key, int64_t lo, int64_t hi, int64_t dflt,
                       int64_t *out_ms, struct tm_error *e) {
    json_t *v = field(body, key);
    if (!v) {
        *out_ms = dflt * 1000;
        return 0;
    }
    if (!json_is_integer(v) || json_integer_value(v) < lo || json_integer_value(v) > hi)
        return err_set(e, TM_EINVALID, key, "'%.64s' must be an integer from %lld to %lld", key,
                       (long long)lo, (long long)hi);
    *out_ms = json_integer_value(v) * 1000;
    return 0;
}

/* An optional time (null as absent): *has says whether one was given, as
 * 1970-01-01T00:00:00Z is 0 and must bound the schedule like any other. */
static int get_time(json_t *body, const char *key, int64_t *out, bool *has, struct tm_error *e) {
    json_t *v = field(body, key);
    *out = 0;
    *has = false;
    if (!v) return 0;
    if (!json_is_string(v) || time_parse_rfc3339(json_string_value(v), out))
        return err_set(e, TM_EINVALID, key, "'%.64s' must be " TIME_RFC3339_WANT, key);
    *has = true;
    return 0;
}

/* The body must be an object whose every key is one of known[0..n). */
static int check_fields(json_t *body, const char *const *known, size_t n, struct tm_error *e) {
    if (!json_is_object(body)) return err_set(e, TM_EINVALID, "", "the body must be an object");
    const char *key;
    json_t *v;
    json_object_foreach(body, key, v) {
        bool ok = false;
        for (size_t i = 0; i < n && !ok; i++)
            ok = strcmp(key, known[i]) == 0;
        if (!ok) return err_set(e, TM_EINVALID, key, "unknown field '%.64s'", key);
    }
    return 0;
}

/* An optional string of at most max bytes (null as absent). */
static int get_text(json_t *body, const char *key, size_t max, struct tm_error *e) {
    json_t *v = field(body, key);
    if (!v || (json_is_string(v) && strlen(json_string_value(v)) <= max)) return 0;
    return err_set(e, TM_EINVALID, key, "'%.64s' must be a string of at most %zu bytes", key, max);
}

/* Exactly one of the fields a and b, into *va and *vb; a_note follows 'a'
 * in the message. */
static int get_one_of(json_t *body, const char *a, const char *a_note, const char *b, json_t **va,
                      json_t **vb, struct tm_error *e) {
    *va = field(body, a);
    *vb = field(body, b);
    if ((*va != NULL) != (*vb != NULL)) return 0;
    return err_set(e, TM_EINVALID, *va ? a : b, "give exactly one of '%.64s'%s and '%.64s'", a,
                   a_note, b);
}

int schedule_parse(json_t *body, struct schedule *out, struct tm_error *e) {
    static const char *const known[] = {
        "name",     "description", "cron",           "interval_seconds",
        "timezone", "start_at",    "end_at",         "definition",
        "task",     "params",      "overlap",        "catchup_seconds",
        "paused",   "note",        "jitter_seconds",
    };
    memset(out, 0, sizeof *out);
    if (check_fields(body, known, sizeof known / sizeof known[0], e)) return TM_EINVALID;
    json_t *v;
    int rc = TM_EINVALID;
    const char *name = json_string_value(field(body, "name"));
    if (!name_ok(name, SCHEDULE_NAME_MAX)) {
        err_set(e, rc, "name", "'name' must be 1 to %d bytes with no control characters",
                SCHEDULE_NAME_MAX);
        goto fail;
    }
    if (get_text(body, "description", 4096, e) || get_text(body, "note", 1024, e)) goto fail;
    v = field(body, "paused");
    if (v && !json_is_boolean(v)) {
        err_set(e, rc, "paused", "'paused' must be true or false");
        goto fail;
    }
    json_t *cron, *iv;
    if (get_one_of(body, "cron", "", "interval_seconds", &cron, &iv, e)) goto fail;
    if (cron) {
        if (!json_is_string(cron)) {
            err_set(e, rc, "cron", "'cron' must be a string such as \"0 * * * *\"");
            goto fail;
        }
        if (cron_parse(json_string_value(cron), &out->cron, e)) goto fail;
        out->has_cron = true;
        snprintf(out->cron_text, sizeof out->cron_text, "%s", json_string_value(cron));
    } else if (get_seconds(body, "interval_seconds", 1, SCHEDULE_INTERVAL_MAX_S, 0,
                           &out->interval_ms, e)) {
        goto fail;
    }
    v = field(body, "timezone");
    const char *zone = v ? json_string_value(v) : "UTC";
    if (!zone) {
        err_set(e, rc, "timezone", "'timezone' must be an IANA zone name such as \"Europe/Paris\"");
        goto fail;
    }
    if (tz_get(zone, &out->tz, e)) {
        snprintf(e->field, sizeof e->field, "timezone");
        goto fail;
    }
    snprintf(out->tz_name, sizeof out->tz_name, "%s", zone);
    if (get_time(body, "start_at", &out->start_at, &out->has_start, e) ||
        get_time(body, "end_at", &out->end_at, &out->has_end, e))
        goto fail;
    if (out->has_start && out->has_end && out->end_at <= out->start_at) {
        err_set(e, rc, "end_at", "'end_at' must be after 'start_at'");
        goto fail;
    }
    json_t *def, *task;
    if (get_one_of(body, "definition", " (a definition's id or name)", "task", &def, &task, e))
        goto fail;
    if (def) {
        if (!name_ok(json_string_value(def), SCHEDULE_NAME_MAX)) {
            err_set(e, rc, "definition", "'definition' must be a definition's id or name");
            goto fail;
        }
        snprintf(out->definition, sizeof out->definition, "%s", json_string_value(def));
        json_t *p = field(body, "params");
        if (p && !json_is_object(p)) {
            err_set(e, rc, "params", "'params' must be an object");
            goto fail;
        }
        out->params = p ? json_incref(p) : NULL;
    } else {
        if (!json_is_object(task)) {
            err_set(e, rc, "task", "'task' must be a task object as POST /v1/tasks takes");
            goto fail;
        }
        if (field(body, "params")) {
            err_set(e, rc, "params", "'params' goes with 'definition'; put it in 'task'");
            goto fail;
        }
        out->task = json_incref(task);
    }
    v = field(body, "overlap");
    out->overlap = SCHEDULE_OVERLAP_SKIP;
    if (v) {
        int found = -1;
        for (int i = 0; i < 4 && json_is_string(v); i++)
            if (strcmp(json_string_value(v), overlap_names[i]) == 0) found = i;
        if (found < 0) {
            err_set(e, rc, "overlap",
                    "'overlap' must be skip, buffer_one, allow_all or cancel_running");
            goto fail;
        }
        out->overlap = (enum schedule_overlap)found;
    }
    if (get_seconds(body, "catchup_seconds", 0, SCHEDULE_CATCHUP_MAX_S, 3600, &out->catchup_ms,
                    e) ||
        get_seconds(body, "jitter_seconds", 0, SCHEDULE_JITTER_MAX_S, 0, &out->jitter_ms, e))
        goto fail;
    return 0;
fail:
    schedule_release(out);
    return rc;
}

void schedule_release(struct schedule *s) {
    tz_release(s->tz);
    s->tz = NULL;
    json_decref(s->task);
    json_decref(s->params);
    s->task = s->params = NULL;
}

bool schedule_anchor(json_t *body, int64_t anchor_ms) {
    if (field(body, "cron") || !field(body, "interval_seconds") || field(body, "start_at"))
        return false;
    char at[TIME_RFC3339_LEN + 1];
    time_format_rfc3339(anchor_ms, at);
    json_object_set_new(body, "start_at", json_string(at));
    return true;
}

int64_t schedule_next_slot(const struct schedule *s, int64_t after_ms, unsigned *flags) {
    if (flags) *flags = 0;
    int64_t slot = 0;
    if (s->has_cron) {
        int64_t from = s->has_start && after_ms < s->start_at ? s->start_at - 1 : after_ms;
        if (cron_next(&s->cron, s->tz, from, &slot, flags)) return 0;
    } else {
        int64_t start = s->start_at; /* 0 without one: only a check reads it unanchored */
        if (after_ms < start) {
            slot = start;
        } else {
            int64_t k = (after_ms - start) / s->interval_ms + 1;
            slot = start + k * s->interval_ms;
        }
    }
    if (s->has_end && slot > s->end_at) return 0;
    if (slot > TIME_MAX_MS) return 0; /* past 9999: not written in RFC 3339, so none */
    return slot;
}

int64_t schedule_off_slot(const struct schedule *s, int64_t ms) {
    while (schedule_next_slot(s, ms - 1, NULL) == ms)
        ms++;
    return ms;
}

/* splitmix64's finaliser: every bit of x reaches every bit of the result. */
static uint64_t mix64(uint64_t x) {
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ULL;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}

int64_t schedule_slot_delay_ms(const struct schedule *s, const char *id, int64_t slot) {
    if (s->jitter_ms <= 0) return 0;
    uint64_t h = 0xcbf29ce484222325ULL; /* FNV-1a over the id */
    for (const char *p = id ? id : ""; *p; p++)
        h = (h ^ (unsigned char)*p) * 0x100000001b3ULL;
    h = mix64(h ^ mix64((uint64_t)slot));
    return (int64_t)(h % (uint64_t)(s->jitter_ms + 1));
}

int definition_check(json_t *body, struct tm_error *e) {
    static const char *const known[] = {"name",     "type",     "description", "queue",
                                        "priority", "params",   "max_retries", "timeout_seconds",
                                        "executor", "arguments"};
    if (check_fields(body, known, sizeof known / sizeof known[0], e)) return TM_EINVALID;
    json_t *v;
    if (schedule_name_check(json_string_value(json_object_get(body, "name")), e))
        return TM_EINVALID;
    /* The type as a task's, which a launch makes of it. */
    if (task_type_check(json_object_get(body, "type"), e)) return TM_EINVALID;
    static const char *const strs[] = {"description", "queue", "executor"};
    for (int i = 0; i < 3; i++) {
        v = json_object_get(body, strs[i]);
        if (v && !json_is_null(v) && !json_is_string(v))
            return err_set(e, TM_EINVALID, strs[i], "'%.64s' must be a string", strs[i]);
        if (v && json_is_string(v) && json_string_length(v) > 4096)
            return err_set(e, TM_EINVALID, strs[i], "'%.64s' is longer than 4096 bytes", strs[i]);
    }
    static const char *const objs[] = {"params", "arguments"};
    for (int i = 0; i < 2; i++) {
        v = json_object_get(body, objs[i]);
        if (v && !json_is_null(v) && !json_is_object(v))
            return err_set(e, TM_EINVALID, objs[i], "'%.64s' must be an object", objs[i]);
    }
    v = json_object_get(body, "timeout_seconds");
    if (v && !json_is_null(v) &&
        (!json_is_integer(v) || json_integer_value(v) < 1 || json_integer_value(v) > 7 * 86400))
        return err_set(e, TM_EINVALID, "timeout_seconds",
                       "'timeout_seconds' must be an integer from 1 to 604800");
    return 0; /* priority, max_retries, queue's shape: checked as the task is (v1_decode_task) */
}

json_t *schedule_task_body(const json_t *def_body, const char *def_id, const json_t *inline_task,
                           const json_t *params, const char *sched_name) {
    json_t *t;
    if (def_body) {
        t = json_object();
        static const char *const copy[] = {"type", "queue", "priority", "max_retries",
                                           "description"};
        for (int i = 0; i < 5; i++) {
            json_t *v = json_object_get(def_body, copy[i]);
            if (v && !json_is_null(v)) json_object_set(t, copy[i], v);
        }
        json_t *p = json_object();
        json_t *dp = json_object_get(def_body, "params");
        if (json_is_object(dp)) json_object_update(p, dp);
        if (json_is_object(params)) json_object_update(p, (json_t *)params);
        json_object_set_new(t, "params", p);
        json_t *d = json_object();
        json_object_set_new(d, "id", json_string(def_id));
        json_object_set(d, "name", json_object_get(def_body, "name"));
        static const char *const dk[] = {"description", "executor", "arguments"};
        for (int i = 0; i < 3; i++) {
            json_t *v = json_object_get(def_body, dk[i]);
            json_object_set(d, dk[i], v ? v : json_null());
        }
        json_object_set_new(t, "definition", d);
    } else {
        t = json_deep_copy(inline_task);
    }
    if (sched_name) {
        char launcher[SCHEDULE_NAME_MAX + 16];
        snprintf(launcher, sizeof launcher, "schedule:%s", sched_name);
        json_object_set_new(t, "launcher", json_string(launcher));
    }
    return t;
}
