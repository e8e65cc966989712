/*
 * v1_decode_events: the decoders of the events and webhooks resources.
 *
 * The query of GET /v1/events and GET /v1/tasks/{id}/events (filters,
 * ?since=, Last-Event-ID) and the body of POST /v1/webhooks, moved out of
 * v1_events.c and v1_webhooks.c so that they can be unit-tested and fuzzed
 * without a socket (tests/fuzz/fuzz_events_query.c, fuzz_webhook_body.c).
 * Pure: no I/O, no HTTP; the webhook decoder's one side effect is drawing
 * a random secret when the body gives none. Contracts in v1_decode.h.
 * Threading: none of their own; any thread.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/id.h"
#include "../common/xalloc.h"
#include "v1_decode.h"

void v1_events_query_init(struct events_query *q, bool per_task) {
    memset(q, 0, sizeof *q);
    q->since = -1;
    q->per_task = per_task;
}

void v1_events_query_release(struct events_query *q) {
    sse_filter_release(&q->filter);
}

/* Calls fn on each comma-separated part of the list parameter `key`; stops
 * at the first error. An empty list or an empty item (",a", "a,", "a,,b")
 * is refused before any item is taken: it must not turn the filter off. */
static int events_split(const char *key, const char *value,
                        int (*fn)(struct events_query *q, const char *part, struct tm_error *e),
                        struct events_query *q, struct tm_error *e) {
    size_t len = strlen(value);
    if (len == 0 || value[0] == ',' || value[len - 1] == ',' || strstr(value, ",,"))
        return err_set(e, TM_EINVALID, key, "'%.64s' has an empty list or list item", key);
    const char *p = value;
    while (*p) {
        const char *comma = strchr(p, ',');
        size_t n = comma ? (size_t)(comma - p) : strlen(p);
        char part[64];
        if (n >= sizeof part)
            return err_set(e, TM_EINVALID, key, "'%.64s' item '%.*s...' is too long", key, 16, p);
        memcpy(part, p, n);
        part[n] = '\0';
        int rc = fn(q, part, e);
        if (rc) return rc;
        p += n;
        if (*p == ',') p++;
    }
    return 0;
}

static int events_add_phase(struct events_query *q, const char *part, struct tm_error *e) {
    enum task_phase ph;
    if (task_phase_parse(part, &ph))
        return err_set(e, TM_EINVALID, "phase", "'%.64s' is not a phase", part);
    q->filter.phases |= 1u << ph;
    return 0;
}

static int events_add_kind(struct events_query *q, const char *part, struct tm_error *e) {
    int k = event_kind_index(part);
    if (k < 0) return err_set(e, TM_EINVALID, "kind", "'%.64s' is not an event kind", part);
    q->filter.kinds |= 1u << k;
    return 0;
}

int v1_events_query_add_task(struct events_query *q, const char *id, struct tm_error *e) {
    if (!id_is_valid(id)) return err_set(e, TM_EINVALID, "task_id", "'%.64s' is not a task id", id);
    if (q->filter.ntask_ids == V1_EVENTS_MAX_TASK_IDS)
        return err_set(e, TM_EINVALID, "task_id", "at most %d task ids", V1_EVENTS_MAX_TASK_IDS);
    q->filter.task_ids =
        xrealloc(q->filter.task_ids, (q->filter.ntask_ids + 1) * sizeof *q->filter.task_ids);
    snprintf(q->filter.task_ids[q->filter.ntask_ids++], ID_LEN + 1, "%s", id);
    return 0;
}

int v1_events_query_add(struct events_query *q, const char *key, const char *value,
                        struct tm_error *e) {
    int64_t v;
    if (strcmp(key, "since") == 0) {
        if (q->since >= 0)
            return err_set(e, TM_EINVALID, key, "'%.64s' is given more than once", key);
        if (v1_parse_int(value, 0, INT64_MAX, &v))
            return err_set(e, TM_EINVALID, "since", "'since' must be a sequence number (>= 0)");
        q->since = v;
        return 0;
    }
    if (strcmp(key, "phase") == 0) return events_split(key, value, events_add_phase, q, e);
    if (strcmp(key, "kind") == 0) return events_split(key, value, events_add_kind, q, e);
    if (q->per_task) return err_set(e, TM_EINVALID, key, "unknown query parameter '%.64s'", key);
    if (strcmp(key, "task_id") == 0)
        return events_split(key, value, v1_events_query_add_task, q, e);
    char **slot = strcmp(key, "queue") == 0  ? &q->filter.queue
                  : strcmp(key, "type") == 0 ? &q->filter.type
                                             : NULL;
    if (!slot) return err_set(e, TM_EINVALID, key, "unknown query parameter '%.64s'", key);
    if (*slot) return err_set(e, TM_EINVALID, key, "'%.64s' is given more than once", key);
    if (!*value || strlen(value) > 256)
        return err_set(e, TM_EINVALID, key, "'%.64s' must be 1-256 characters", key);
    *slot = xstrdup(value);
    return 0;
}

int v1_events_query_last_id(struct events_query *q, const char *value, struct tm_error *e) {
    if (!value || !*value) return 0;
    int64_t v;
    if (v1_parse_int(value, 0, INT64_MAX, &v))
        return err_set(e, TM_EINVALID, "Last-Event-ID",
                       "'Last-Event-ID' must be a sequence number");
    q->since = v; /* the reconnection wins over the URL's ?since= */
    return 0;
}

int v1_decode_webhook_fields(json_t *obj, struct webhook *w, struct tm_error *e) {
    const char *key;
    json_t *v;
    json_object_foreach(obj, key, v) {
        if (strcmp(key, "url") == 0) {
            if (!json_is_string(v) || json_string_length(v) == 0 || json_string_length(v) > 2048)
                return err_set(e, TM_EINVALID, "url", "'url' must be a string of 1-2048 bytes");
            w->url = xstrdup(json_string_value(v));
        } else if (strcmp(key, "secret") == 0) {
            if (!json_is_string(v) || json_string_length(v) < 8 || json_string_length(v) > 256)
                return err_set(e, TM_EINVALID, "secret",
                               "'secret' must be a string of 8-256 bytes");
            w->secret = xstrdup(json_string_value(v));
        } else if (strcmp(key, "name") == 0) {
            if (!json_is_string(v) || json_string_length(v) == 0 || json_string_length(v) > 256)
                return err_set(e, TM_EINVALID, key, "'name' must be a string of 1-256 bytes");
            w->name = xstrdup(json_string_value(v));
        } else if (strcmp(key, "namespace") == 0) {
            /* As a task's namespace (v1_decode_task): anything else would be
             * stored, echoed, and counted as a --max-webhooks group of its own. */
            if (!json_is_string(v) || strlen(json_string_value(v)) != json_string_length(v) ||
                !v1_is_name(json_string_value(v), 64))
                return err_set(e, TM_EINVALID, key, "'namespace' must be 1-64 of [A-Za-z0-9._-]");
            w->ns = xstrdup(json_string_value(v));
        } else if (strcmp(key, "events") == 0) {
            if (!json_is_array(v) || json_array_size(v) == 0)
                return err_set(e, TM_EINVALID, "events", "'events' must be a non-empty array");
            size_t i;
            json_t *ev;
            json_array_foreach(v, i, ev) {
                int bit = json_is_string(ev) ? webhook_event_parse(json_string_value(ev)) : 0;
                if (!bit) {
                    char field[32];
                    snprintf(field, sizeof field, "events[%zu]", i);
                    return err_set(e, TM_EINVALID, field,
                                   "'%.64s' must be one of 'task.spawned', 'task.updated', "
                                   "'task.completed', 'task.failed'",
                                   field);
                }
                w->events |= (unsigned)bit;
            }
        } else {
            return err_set(e, TM_EINVALID, key, "unknown field '%.64s'", key);
        }
    }
    return 0;
}

int v1_decode_webhook(json_t *obj, struct webhook *w, struct tm_error *e) {
    int rc = v1_decode_webhook_fields(obj, w, e);
    if (rc) return rc;
    if (!w->url) return err_set(e, TM_EINVALID, "url", "'url' is required");
    if (!w->events)
        w->events = WEBHOOK_SPAWNED | WEBHOOK_UPDATED | WEBHOOK_COMPLETED | WEBHOOK_FAILED;
    if (!w->secret) {
        char hex[ID_LEN + 1];
        id_random_hex(hex);
        w->secret = xstrdup(hex);
    }
    return 0;
}
