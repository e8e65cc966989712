/*
 * v1_decode: the v1 API's request decoders.
 *
 * Pure functions from a parsed JSON body (or query pairs) to the structs
 * the store takes: no I/O, no HTTP, so each can be unit-tested and fuzzed
 * alone. Each checks every field's type, range and size and refuses
 * unknown fields, filling a struct tm_error that names the field (dotted
 * for nested ones: "progress.ratio", "items[2].name"). On error nothing is
 * allocated that the caller must free. Values stored in a store_op are
 * borrowed from the JSON object, which must outlive the op.
 */
#ifndef TASKMILL_V1_DECODE_H
#define TASKMILL_V1_DECODE_H

#include <jansson.h>

#include "../common/task.h"
#include "../store/store.h"
#include "event_hub.h"
#include "http.h"

/* A task to submit. `ns` is the namespace to use when the body names none. */
int v1_decode_task(json_t *obj, const struct limits *lim, const char *ns, struct task **out,
                   struct tm_error *e);
/* The body of PUT /v1/queues/{queue}; absent fields take the defaults. */
int v1_decode_queue_settings(json_t *obj, struct queue_settings *q, struct tm_error *e);
/* The claim body into op (kind CLAIM); the deadline is left to the caller. */
int v1_decode_claim(json_t *obj, const struct limits *lim, struct store_op *op, int *wait_s,
                    struct tm_error *e);
/* Heartbeat, complete, fail and release bodies, by op->kind. */
int v1_decode_worker_call(json_t *obj, const struct limits *lim, struct store_op *op,
                          struct tm_error *e);

struct list_query {
    struct task_filter filter;
};
/* Sets defaults (limit 50, newest first). */
void v1_list_query_init(struct list_query *q);
/* Takes one query-string pair of GET /v1/tasks. */
int v1_list_query_add(struct list_query *q, const struct limits *lim, const char *key,
                      const char *value, struct tm_error *e);

/* ?limit=N of a resource's history (a schedule's fires, a webhook's
 * deliveries, newest first): 1 to 1000, 100 when absent (value NULL). */
int v1_decode_history_limit(const char *value, int *limit, struct tm_error *e);

/* ?wait=S&version=N of GET /v1/tasks/{id}. version -1 when absent. */
int v1_decode_wait(const char *wait, const char *version, const struct limits *lim, int *wait_s,
                   int64_t *ver, struct tm_error *e);

/* The query of GET /v1/events and GET /v1/tasks/{id}/events
 * (v1_decode_events.c). `since` is -1 (from now) unless ?since= or a
 * Last-Event-ID gives a sequence number. A per-task query takes only
 * since, phase and kind. The filter's strings are owned by the query until
 * it is handed to the hub; on error the query keeps what it had taken, so
 * release it either way. */
#define V1_EVENTS_MAX_TASK_IDS 100
struct events_query {
    struct sse_filter filter;
    int64_t since; /* -1 = from now */
    bool per_task;
};
void v1_events_query_init(struct events_query *q, bool per_task);
void v1_events_query_release(struct events_query *q);
/* Takes one query-string pair: since, phase and kind (comma-separated
 * lists), and unless per_task task_id (a list of at most
 * V1_EVENTS_MAX_TASK_IDS), queue and type (1-256 bytes). The lists may
 * be given again (they add up); since, queue and type may not. */
int v1_events_query_add(struct events_query *q, const char *key, const char *value,
                        struct tm_error *e);
/* Adds one task id to the filter; TM_EINVALID for a malformed id or one too many. */
int v1_events_query_add_task(struct events_query *q, const char *id, struct tm_error *e);
/* The Last-Event-ID header (NULL or "" when absent), which wins over ?since=. */
int v1_events_query_last_id(struct events_query *q, const char *value, struct tm_error *e);

/* The body of POST /v1/webhooks into w (zeroed by the caller): url
 * required, secret (8-256 bytes; a random one when absent), name,
 * namespace, events (all four when absent). Unlike the decoders above, w
 * may hold copies of some fields on error: webhook_release it either way. */
int v1_decode_webhook(json_t *obj, struct webhook *w, struct tm_error *e);
/* The fields obj names, each checked as v1_decode_webhook checks it, and
 * nothing required or filled in: the body of PATCH /v1/webhooks/{id}. */
int v1_decode_webhook_fields(json_t *obj, struct webhook *w, struct tm_error *e);

/* Validators shared with other decoders. */
bool v1_is_name(const char *s, size_t max); /* [A-Za-z0-9._-]{1,max} */
/* A decimal integer in min..max: an optional '-' and digits, nothing else. 0 or -1. */
int v1_parse_int(const char *s, int64_t min, int64_t max, int64_t *out);

#endif
