/*
 * v1_events: the SSE streams GET /v1/events and GET /v1/tasks/{id}/events.
 *
 * A handler checks the query (filters, ?since=) and the Last-Event-ID
 * header, then hands the connection to the event hub (event_hub.h), which
 * streams from there without holding a thread. Bad input is answered with
 * an ordinary error reply before any stream starts, as is a starting
 * point past the store's newest event. Without a starting point a stream
 * begins at the present; the task stream then opens with a
 * `task.snapshot` event carrying the task as it is.
 *
 * Threading: handlers run on libmicrohttpd threads and only read the
 * store. The query is decoded by v1_events_query_add (v1_decode.h, pure).
 * Ownership: the filter is built here and taken by the hub.
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

/* One query pair of an events request; cls is {query, error}. */
static int events_query_pair(void *cls, const char *key, const char *value) {
    return v1_events_query_add(((void **)cls)[0], key, value, ((void **)cls)[1]);
}

/*
 * Refuses a resume point past the newest event of the store: a
 * Last-Event-ID from another store, or from before a restore, would
 * otherwise wait for that number and skip every event up to it, against
 * "no gap". The newest is read from the database (its event counter),
 * never from this node's hub alone: with several nodes on PostgreSQL the
 * hub hears of another node's commit a moment after it is made, and a
 * client may resume here from an event it read there. `field` names where
 * the point came from. 0, or -1 with e set.
 */
static int events_since_check(struct req *r, int64_t since, const char *field, struct tm_error *e) {
    if (since <= 0) return 0;
    /* What the hub has published is committed: a point it has reached needs
     * no read (a storm of reconnects costs the store nothing); past it, the
     * store's own head (on PostgreSQL, other nodes' commits too) decides. */
    int64_t head = event_hub_now(r->srv->hub);
    if (since <= head) return 0;
    int64_t stored = 0, pruned = 0;
    if (store_events_head(r->srv->store, &stored, &pruned, e)) return -1;
    if (stored > head) head = stored;
    if (since <= head) return 0;
    if (head == 0)
        return err_set(e, TM_EINVALID, field,
                       "'%s' is %lld, but the log has no event yet (a resume point from "
                       "another or a restored store?): resume from 0",
                       field, (long long)since);
    return err_set(e, TM_EINVALID, field,
                   "'%s' is %lld, past the newest event: the log ends at %lld (a resume point "
                   "from another or a restored store?); resume from %lld or lower, or from 0 "
                   "to read the log again",
                   field, (long long)since, (long long)head, (long long)head);
}

/* Reads the query and Last-Event-ID; replies with the error and returns -1 on bad input. */
static int events_query_read(struct req *r, struct events_query *q) {
    struct tm_error e;
    err_clear(&e);
    void *cls[2] = {q, &e};
    if (req_query_each(r, events_query_pair, cls)) goto bad;
    const char *last_id = req_header(r, "Last-Event-ID");
    if (v1_events_query_last_id(q, last_id, &e)) goto bad;
    if (events_since_check(r, q->since, last_id && *last_id ? "Last-Event-ID" : "since", &e))
        goto bad;
    if (r->ns) q->filter.ns = xstrdup(r->ns);
    return 0;
bad:
    v1_events_query_release(q);
    reply_error(r, &e);
    return -1;
}

static void events_all(struct req *r) {
    struct events_query q;
    v1_events_query_init(&q, false);
    if (events_query_read(r, &q)) return;
    event_hub_reply_stream(r->srv->hub, r, &q.filter, q.since, NULL);
}

static void events_task(struct req *r) {
    const char *id = r->param[0];
    if (!id_is_valid(id)) {
        reply_error_code(r, TM_ENOT_FOUND, "", "task not found");
        return;
    }
    struct events_query q;
    v1_events_query_init(&q, true);
    if (events_query_read(r, &q)) return;
    v1_events_query_add_task(&q, id, NULL);
    if (q.since >= 0) {
        event_hub_reply_stream(r->srv->hub, r, &q.filter, q.since, NULL);
        return;
    }
    /* From now, opening with the task as it is. The snapshot is read after
     * the cursor is fixed, so it may already show an event that follows;
     * clients skip events whose task version is not above the snapshot's. */
    int64_t cursor = event_hub_now(r->srv->hub);
    struct task *t = v1_task_read(r, id);
    if (!t) {
        v1_events_query_release(&q);
        return;
    }
    struct buf b;
    buf_init(&b);
    buf_printf(&b,
               "id: %lld\nevent: task.snapshot\ndata: {\"seq\":%lld,\"kind\":\"task.snapshot\","
               "\"task_id\":\"%s\",\"phase\":\"%s\",\"version\":%lld,\"task\":",
               (long long)cursor, (long long)cursor, t->id, task_phase_name(t->phase),
               (long long)t->version);
    /* Bounded as every event's task is (docs/events.md). */
    task_json_write_capped(&b, t, (size_t)r->srv->cfg.events.task_max_bytes, NULL);
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
