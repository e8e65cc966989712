/*
 * event_hub: fans the store's event log out to SSE streams.
 *
 * The store's writer hands each commit's events to event_hub_publish
 * (its listener); the hub formats each event's SSE frame once and keeps
 * the newest `buffer_events` (at most `buffer_bytes` of frames) in a ring
 * shared by every stream; while no stream is open it keeps nothing (the
 * store has every event). A stream is
 * a cursor (the last seq it has passed) over that ring, reading from the
 * store instead while it is catching up on older events. A stream with
 * nothing to send suspends its connection; the hub's notifier thread
 * resumes it when newer events arrive or a keep-alive is due, so no thread
 * is held per stream and writers never wait for readers. A live stream
 * whose cursor falls out of the ring (a slow consumer) is ended; it
 * resumes from its Last-Event-ID, from the store.
 *
 * Threading: the ring, the stream list and each stream's `suspended` flag
 * are under the hub's lock. Ownership: the hub owns streams; a stream is
 * freed when libmicrohttpd frees its response.
 */
#ifndef TASKMILL_EVENT_HUB_H
#define TASKMILL_EVENT_HUB_H

#include <stdbool.h>
#include <stdint.h>

#include "http.h"

struct event_hub;

/* What a stream wants; every set field must match. Owned by the stream. */
struct sse_filter {
    char *ns, *queue, *type;
    char (*task_ids)[ID_LEN + 1];
    size_t ntask_ids;
    unsigned phases; /* bit per enum task_phase; 0 = any */
    unsigned kinds;  /* bit per event_kind_index; 0 = any */
};
void sse_filter_release(struct sse_filter *f);

/* The index of an event kind ("task.progress" or "progress"), or -1. */
int event_kind_index(const char *kind);

/* Becomes the store's listener and starts the notifier; `on_deliveries`
 * is called (writer thread) when a commit queued webhook deliveries. Reads
 * buffer_events, buffer_bytes and keepalive_ms of cfg (0: the default);
 * at most `streams_max` streams are open at once, and at most
 * `streams_per_token_max` of one token (0: no cap). */
struct event_hub *event_hub_new(struct store *s, const struct events_config *cfg, int streams_max,
                                int streams_per_token_max, void (*on_deliveries)(void *cls),
                                void *cls);
/* The store listener (store_set_listener(s, event_hub_publish, hub)). */
void event_hub_publish(void *hub, const struct store_commit *c);
/* Ends every stream and stops the notifier; streams are freed with their responses. */
void event_hub_stop(struct event_hub *h);
void event_hub_free(struct event_hub *h);

struct event_hub_stats {
    uint64_t streams, events_sent, slow_disconnects;
    uint64_t keepalives; /* keep-alive comments written */
    uint64_t gone;       /* streams ended because their client had closed its end */
    uint64_t buffer_events, buffer_bytes; /* what the ring holds now */
    uint64_t gaps; /* pages of other nodes' events read without JSON as a stream opened */
};
void event_hub_get_stats(struct event_hub *h, struct event_hub_stats *out);

/*
 * Replies 200 with an SSE stream of the events after `cursor` (-1: from
 * now) that match `f` (taken, also on refusal). `first` (may be NULL) is
 * sent first, as is, and must carry `id: cursor` (the task stream's
 * snapshot). Keep-alives carry `id:` when the stream has passed events
 * since its last one, so a client resumes past what it scanned. With
 * streams_max streams open already, or streams_per_token_max of r's
 * token, it replies 429 (Retry-After) instead.
 */
void event_hub_reply_stream(struct event_hub *h, struct req *r, struct sse_filter *f,
                            int64_t cursor, const char *first);
/* "Now" for a stream that starts from the present: the last seq committed
 * (the store's head, or the hub's last published seq if that is later). */
int64_t event_hub_now(struct event_hub *h);
/* The token of each open stream ("" for one opened in open mode), in
 * *n entries the caller frees, for the revocation watch (auth_watch.c). */
char (*event_hub_stream_tokens(struct event_hub *h, size_t *n))[TOKEN_ID_LEN + 1];
/* Ends every stream opened with token_id (a last comment says why);
 * returns how many. */
size_t event_hub_end_token(struct event_hub *h, const char *token_id);
/* Writes one SSE frame for a store event. */
void sse_frame_write(struct buf *b, const struct store_event *ev);

#endif
