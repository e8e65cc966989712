/*
 * v1_events: the SSE streams GET /v1/events and GET /v1/tasks/{id}/events.
 *
 * A handler checks the query (filters, ?since=) and the Last-Event-ID
 * header, then hands the connection to the event hub (event_hub.h), which
 * streams from there without holding a thread. Bad input is answered with
 * an ordinary error reply before any stream starts. Without a starting
 * point a stream begins at the present; the task stream then opens with a
 * `task.snapshot` event carrying the task as it is.
 *
 * Threading: handlers run on libmicrohttpd threads and only read the
 * store. Ownership: the filter is built here and taken by the hub.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/buf.h"
#include "../common/task_json.h"
#include "../common/xalloc.h"
#include "event_hub.h"
#include "server_int.h"
#include "v1_decode.h"

#define EVENTS_MAX_TASK_IDS 100

struct events_query {
    struct sse_filter filter;
    int64_t since; /* -1 = from now */
    bool per_task;
};

/* Calls fn on each comma-separated part of value; stops at the first error. */
static int events_split(const char *value,
                        int (*fn)(struct events_query *q, const char *part, struct tm_error *e),
                        struct events_query *q, struct tm_error *e) {
    const char *p = value;
    while (*p) {
        const char *comma = strchr(p, ',');
        size_t n = comma ? (size_t)(comma - p) : strlen(p);
        char part[64];
        if (n == 0 || n >= sizeof part)
            return err_set(e, TM_EINVALID, "", "list item '%.*s' is empty or too long", (int)n, p);
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
        return err_set(e, TM_EINVALID, "phase", "'%s' is not a phase", part);
    q->filter.phases |= 1u << ph;
    return 0;
}

static int events_add_kind(struct events_query *q, const char *part, struct tm_error *e) {
    int k = event_kind_index(part);
    if (k < 0) return err_set(e, TM_EINVALID, "kind", "'%s' is not an event kind", part);
    q->filter.kinds |= 1u << k;
    return 0;
}

static int events_add_task(struct events_query *q, const char *part, struct tm_error *e) {
    if (!id_is_valid(part))
        return err_set(e, TM_EINVALID, "task_id", "'%s' is not a task id", part);
    if (q->filter.ntask_ids == EVENTS_MAX_TASK_IDS)
        return err_set(e, TM_EINVALID, "task_id", "at most %d task ids", EVENTS_MAX_TASK_IDS);
    q->filter.task_ids =
        xrealloc(q->filter.task_ids, (q->filter.ntask_ids + 1) * sizeof *q->filter.task_ids);
    snprintf(q->filter.task_ids[q->filter.ntask_ids++], ID_LEN + 1, "%s", part);
    return 0;
}

/* One query pair of an events request; pure. */
static int events_query_add(void *cls, const char *key, const char *value) {
    struct events_query *q = ((void **)cls)[0];
    struct tm_error *e = ((void **)cls)[1];
    int64_t v;
    if (strcmp(key, "since") == 0) {
        if (v1_parse_int(value, 0, INT64_MAX, &v))
            return err_set(e, TM_EINVALID, "since", "'since' must be a sequence number (>= 0)");
        q->since = v;
        return 0;
    }
    if (strcmp(key, "phase") == 0) return events_split(value, events_add_phase, q, e);
    if (strcmp(key, "kind") == 0) return events_split(value, events_add_kind, q, e);
    if (q->per_task) return err_set(e, TM_EINVALID, key, "unknown query parameter '%s'", key);
    if (strcmp(key, "task_id") == 0) return events_split(value, events_add_task, q, e);
    char **slot = strcmp(key, "queue") == 0  ? &q->filter.queue
                  : strcmp(key, "type") == 0 ? &q->filter.type
                                             : NULL;
    if (!slot) return err_set(e, TM_EINVALID, key, "unknown query parameter '%s'", key);
    if (!*value || strlen(value) > 256)
        return err_set(e, TM_EINVALID, key, "'%s' must be 1-256 characters", key);
    free(*slot);
    *slot = xstrdup(value);
    return 0;
}

/* Reads the query and Last-Event-ID; replies with the error and returns -1 on bad input. */
static int events_query_read(struct req *r, struct events_query *q) {
    struct tm_error e;
    err_clear(&e);
    void *cls[2] = {q, &e};
    q->since = -1;
    if (req_query_each(r, events_query_add, cls)) goto bad;
    const char *last = req_header(r, "Last-Event-ID");
    if (last && *last) {
        int64_t v;
        if (v1_parse_int(last, 0, INT64_MAX, &v)) {
            err_set(&e, TM_EINVALID, "Last-Event-ID", "'Last-Event-ID' must be a sequence number");
            goto bad;
        }
        q->since = v; /* the reconnection wins over the URL's ?since= */
    }
    if (r->ns) q->filter.ns = xstrdup(r->ns);
    return 0;
bad:
    sse_filter_release(&q->filter);
    reply_error(r, &e);
    return -1;
}

static void events_all(struct req *r) {
    struct events_query q = {0};
    if (events_query_read(r, &q)) return;
    event_hub_reply_stream(r->srv->hub, r, &q.filter, q.since, NULL);
}

static void events_task(struct req *r) {
    const char *id = r->param[0];
    if (!id_is_valid(id)) {
        reply_error_code(r, TM_ENOT_FOUND, "", "task not found");
        return;
    }
    struct events_query q = {.per_task = true};
    if (events_query_read(r, &q)) return;
    events_add_task(&q, id, NULL);
    if (q.since >= 0) {
        event_hub_reply_stream(r->srv->hub, r, &q.filter, q.since, NULL);
        return;
    }
    /* From now, opening with the task as it is. The snapshot is read after
     * the cursor is fixed, so it may already show an event that follows;
     * clients skip events whose task version is not above the snapshot's. */
    int64_t cursor = event_hub_last_seq(r->srv->hub);
    struct task *t = NULL;
    struct tm_error e;
    err_clear(&e);
    if (store_task_get(req_store(r), r->ns, id, &t, &e)) {
        sse_filter_release(&q.filter);
        reply_error(r, &e);
        return;
    }
    struct buf b;
    buf_init(&b);
    buf_printf(&b,
               "id: %lld\nevent: task.snapshot\ndata: {\"seq\":%lld,\"kind\":\"task.snapshot\","
               "\"task_id\":\"%s\",\"phase\":\"%s\",\"version\":%lld,\"task\":",
               (long long)cursor, (long long)cursor, t->id, task_phase_name(t->phase),
               (long long)t->version);
    task_json_write(&b, t);
    buf_puts(&b, "}\n\n");
    task_free(t);
    event_hub_reply_stream(r->srv->hub, r, &q.filter, cursor, b.p);
    buf_release(&b);
}

const struct route v1_events_routes[] = {
    {"GET", "/v1/events", events_all, PERM_READ},
    {"GET", "/v1/tasks/:id/events", events_task, PERM_READ},
    {NULL, NULL, NULL, 0},
};
