/*
 * event_hub: see event_hub.h for the design. The states of a stream:
 *
 *   catching up  cursor < floor: the events it needs have left the ring
 *                (or predate this process), so it reads pages from the
 *                store, one page per call; after a page that matched
 *                nothing it yields its thread (suspends and resumes its
 *                connection) before reading the next. Leaves for `live`
 *                once its cursor reaches floor.
 *   live         cursor >= floor: it copies frames from the ring. Falling
 *                below floor again (the ring wrapped past it) ends it.
 *   suspended    live with nothing to send: its connection is suspended
 *                and only the notifier (or stop) resumes it.
 *   closing      its last bytes are going out; then end of stream.
 *
 * Invariant: the ring holds every event with floor < seq <= last_seq, in
 * seq order, at most `cap` of them and (but for the newest alone) at most
 * `max_bytes` of frames: publishing evicts the oldest to keep both. With
 * no stream open, publishing empties it and moves floor up to last_seq.
 * So with no stream open the store's feed (PostgreSQL) reads other nodes'
 * events without their task JSON (hub_needs_json); should such bare events
 * arrive after a stream opened, they are a gap: the ring is emptied, floor
 * moves past them, and every stream catches up from the store, which has
 * them whole.
 * Events reach the ring in commit order, and a store read sees only
 * committed events, so a cursor moved by either path never skips an
 * event: no gap, and since every path only moves forward, no duplicate.
 * A stream has written every matching event up to its cursor, so the
 * cursor is a resume point: a keep-alive hands it to the client as an
 * `id:` (id_sent <= cursor; equal once it has).
 */
#include "event_hub.h"

#include <microhttpd.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <time.h>

#include "../common/timeutil.h"
#include "../common/xalloc.h"
#include "key_table.h"
#include "server_int.h"

static const char *const event_kinds[] = {
    "task.created",   "task.pending", "task.waiting",   "task.running",  "task.stopping",
    "task.completed", "task.failed",  "task.cancelled", "task.progress", "task.message",
    "task.lease",     "task.paused",  "task.resumed",   "task.deleted",  "task.updated",
};
#define NKINDS (int)(sizeof event_kinds / sizeof event_kinds[0])

/* The store page size while catching up, and the bytes gathered per fill:
 * a stream holds at most this plus one frame unsent. */
#define HUB_PAGE_EVENTS 256
#define HUB_FILL_BYTES  (32 * 1024)

struct hub_event {
    int64_t seq;
    int kind;
    enum task_phase phase;
    char task_id[ID_LEN + 1];
    char *ns, *queue, *type;
    char *frame;
    size_t frame_len;
};

struct sse_stream {
    struct event_hub *hub;
    struct MHD_Connection *conn;
    int fd; /* the connection's socket (req_socket), to see whether its client has gone */
    struct sse_filter filter;
    int64_t cursor;
    int64_t id_sent; /* the last `id:` written on the stream (the first block has one) */
    bool live, suspended, closing, linked;
    bool gone; /* its client closed the connection: end it without a write */
    int64_t last_write_mono;
    bool counted;                    /* counted in hub->nstreams */
    bool token_counted;              /* counted in hub->per_token */
    char token_id[TOKEN_ID_LEN + 1]; /* "" in open mode */
    bool revoked;                    /* its token was revoked: it ends */
    struct buf out;
    size_t out_off;
    LIST_ENTRY(sse_stream) link; /* in hub->streams while `linked` */
};

struct event_hub {
    struct store *store;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    struct hub_event **ring;
    size_t cap, start, n;
    size_t bytes, max_bytes; /* frames held, and the most to hold */
    int64_t floor, last_seq;
    LIST_HEAD(, sse_stream) streams;
    bool stopping, wake;
    int keepalive_ms;
    int streams_max;           /* 0 = no cap */
    int streams_per_token_max; /* 0 = no cap */
    /* Open streams per token (key_count_take), for streams_per_token_max:
     * only tokens with a stream open are in it. */
    struct key_table per_token;
    pthread_t notifier;
    bool notifier_started;
    void (*on_deliveries)(void *cls);
    void *deliveries_cls;
    _Atomic uint64_t nstreams, events_sent, slow_disconnects;
    _Atomic uint64_t keepalives, gone; /* keep-alives written; streams whose client had gone */
    uint64_t gaps;    /* under lock: pages of bare events that came while a stream was open */
    bool always_bare; /* TASKMILL_EVENTS_FEED_BARE=1: every feed page is bare */
};

int event_kind_index(const char *kind) {
    for (int i = 0; i < NKINDS; i++) {
        if (strcmp(kind, event_kinds[i]) == 0) return i;
        if (strcmp(kind, event_kinds[i] + 5) == 0) return i; /* without "task." */
    }
    return -1;
}

void sse_filter_release(struct sse_filter *f) {
    free(f->ns);
    free(f->queue);
    free(f->type);
    free(f->task_ids);
    memset(f, 0, sizeof *f);
}

static bool sse_filter_match(const struct sse_filter *f, const char *ns, const char *queue,
                             const char *type, const char *task_id, enum task_phase phase,
                             int kind) {
    if (f->ns && strcmp(f->ns, ns) != 0) return false;
    if (f->queue && strcmp(f->queue, queue) != 0) return false;
    if (f->type && strcmp(f->type, type) != 0) return false;
    if (f->phases && !(f->phases & (1u << phase))) return false;
    if (f->kinds && (kind < 0 || !(f->kinds & (1u << kind)))) return false;
    if (f->ntask_ids) {
        for (size_t i = 0; i < f->ntask_ids; i++)
            if (strcmp(f->task_ids[i], task_id) == 0) return true;
        return false;
    }
    return true;
}

void sse_frame_write(struct buf *b, const struct store_event *ev) {
    char at[TIME_RFC3339_LEN + 1];
    time_format_rfc3339(ev->at, at);
    buf_printf(b, "id: %lld\nevent: %s\ndata: {\"seq\":%lld,\"kind\":\"%s\",\"cause\":\"%s\",",
               (long long)ev->seq, ev->kind, (long long)ev->seq, ev->kind, ev->cause);
    /* Token ids and "open" need no escaping. */
    if (ev->actor[0])
        buf_printf(b, "\"actor\":\"%s\",", ev->actor);
    else
        buf_puts(b, "\"actor\":null,");
    buf_printf(b,
               "\"at\":\"%s\",\"task_id\":\"%s\",\"phase\":\"%s\",\"version\":%lld,\"task\":", at,
               ev->task_id, task_phase_name(ev->phase), (long long)ev->version);
    buf_puts(b, ev->task_json ? ev->task_json : "null");
    buf_puts(b, "}\n\n");
}

static void hub_event_free(struct hub_event *e) {
    if (!e) return;
    free(e->ns);
    free(e->queue);
    free(e->type);
    free(e->frame);
    free(e);
}

static struct hub_event *hub_ring_at(struct event_hub *h, size_t i) {
    return h->ring[(h->start + i) % h->cap];
}

/* Index of the first ring event with seq > cursor (h->n when none). Under lock. */
static size_t hub_ring_after(struct event_hub *h, int64_t cursor) {
    size_t lo = 0, hi = h->n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (hub_ring_at(h, mid)->seq <= cursor)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* The store's feed asks before each page of other nodes' events. */
static bool hub_needs_json(void *cls) {
    struct event_hub *h = cls;
    pthread_mutex_lock(&h->lock);
    bool open = !LIST_EMPTY(&h->streams) && !h->always_bare;
    pthread_mutex_unlock(&h->lock);
    return open;
}

/* With no stream open, the ring is emptied and its floor moved past the
 * commit's events instead of their frames being written: a stream that
 * opens later reads them from the store, as it reads any event below the
 * floor. Returns false, having done nothing, when a stream is open, unless
 * the events came without their JSON (`bare`): then every open stream,
 * live or not, goes back to reading the store from its cursor, which is
 * now below the floor, instead of being ended as too slow. */
static bool hub_skip_unheard(struct event_hub *h, const struct store_commit *c) {
    int64_t last = 0;
    bool bare = false;
    for (size_t i = 0; i < c->nevents; i++) {
        if (c->events[i].seq > last) last = c->events[i].seq;
        if (!c->events[i].task_json) bare = true;
    }
    pthread_mutex_lock(&h->lock);
    if (!LIST_EMPTY(&h->streams)) {
        if (!bare) {
            pthread_mutex_unlock(&h->lock);
            return false;
        }
        struct sse_stream *st;
        LIST_FOREACH(st, &h->streams, link) {
            st->live = false;
        }
        h->gaps++;
        h->wake = true;
        pthread_cond_signal(&h->cond);
    }
    size_t n = h->n;
    struct hub_event **old = n ? xcalloc(n, sizeof *old) : NULL;
    for (size_t i = 0; i < n; i++)
        old[i] = hub_ring_at(h, i);
    h->start = h->n = 0;
    h->bytes = 0;
    if (last > h->last_seq) h->last_seq = last;
    h->floor = h->last_seq;
    pthread_mutex_unlock(&h->lock);
    for (size_t i = 0; i < n; i++)
        hub_event_free(old[i]);
    free(old);
    return true;
}

void event_hub_publish(void *cls, const struct store_commit *c) {
    struct event_hub *h = cls;
    if (c->nevents && hub_skip_unheard(h, c)) {
        if (c->deliveries && h->on_deliveries) h->on_deliveries(h->deliveries_cls);
        return;
    }
    struct hub_event **fresh = xcalloc(c->nevents, sizeof *fresh);
    for (size_t i = 0; i < c->nevents; i++) {
        const struct store_event *ev = &c->events[i];
        struct hub_event *e = xcalloc(1, sizeof *e);
        e->seq = ev->seq;
        e->kind = event_kind_index(ev->kind);
        e->phase = ev->phase;
        memcpy(e->task_id, ev->task_id, sizeof e->task_id);
        e->ns = xstrdup(ev->ns);
        e->queue = xstrdup(ev->queue);
        e->type = xstrdup(ev->type);
        struct buf b;
        buf_init(&b);
        sse_frame_write(&b, ev);
        e->frame_len = b.len;
        e->frame = buf_detach(&b);
        fresh[i] = e;
    }
    /* The byte bound may evict more events than arrive. */
    size_t capdropped = c->nevents + 16, ndropped = 0;
    struct hub_event **dropped = xcalloc(capdropped, sizeof *dropped);
    pthread_mutex_lock(&h->lock);
    for (size_t i = 0; i < c->nevents; i++) {
        while (h->n == h->cap || (h->n && h->bytes + fresh[i]->frame_len > h->max_bytes)) {
            struct hub_event *old = h->ring[h->start];
            if (old->seq > h->floor) h->floor = old->seq;
            h->bytes -= old->frame_len;
            if (ndropped == capdropped) {
                capdropped *= 2;
                dropped = xrealloc(dropped, capdropped * sizeof *dropped);
            }
            dropped[ndropped++] = old;
            h->start = (h->start + 1) % h->cap;
            h->n--;
        }
        h->ring[(h->start + h->n) % h->cap] = fresh[i];
        h->n++;
        h->bytes += fresh[i]->frame_len;
        h->last_seq = fresh[i]->seq;
    }
    /* No stream, no wake-up: a stream that opens later reads the ring under this lock. */
    if (!LIST_EMPTY(&h->streams)) {
        h->wake = true;
        pthread_cond_signal(&h->cond);
    }
    pthread_mutex_unlock(&h->lock);
    for (size_t i = 0; i < ndropped; i++)
        hub_event_free(dropped[i]);
    free(dropped);
    free(fresh);
    if (c->deliveries && h->on_deliveries) h->on_deliveries(h->deliveries_cls);
}

/* Resumes suspended streams that have something to do. Under lock. */
static void hub_wake_streams(struct event_hub *h, bool all) {
    int64_t mono = time_mono_ms();
    struct sse_stream *st;
    LIST_FOREACH(st, &h->streams, link) {
        if (!st->suspended) continue;
        if (all || st->cursor < h->last_seq || mono - st->last_write_mono >= h->keepalive_ms) {
            st->suspended = false;
            MHD_resume_connection(st->conn);
        }
    }
}

static void *hub_notifier_main(void *arg) {
    struct event_hub *h = arg;
    pthread_mutex_lock(&h->lock);
    while (!h->stopping) {
        if (!h->wake) time_cond_wait_ms(&h->cond, &h->lock, 250);
        h->wake = false;
        if (!h->stopping) hub_wake_streams(h, false);
    }
    pthread_mutex_unlock(&h->lock);
    return NULL;
}

struct event_hub *event_hub_new(struct store *s, const struct events_config *cfg, int streams_max,
                                int streams_per_token_max, void (*on_deliveries)(void *cls),
                                void *cls) {
    struct event_hub *h = xcalloc(1, sizeof *h);
    h->store = s;
    h->cap = cfg->buffer_events > 0 ? (size_t)cfg->buffer_events : 4096;
    h->max_bytes = cfg->buffer_bytes > 0 ? (size_t)cfg->buffer_bytes : 64u << 20;
    h->ring = xcalloc(h->cap, sizeof *h->ring);
    h->keepalive_ms = cfg->keepalive_ms > 0 ? cfg->keepalive_ms : 15000;
    h->streams_max = streams_max;
    h->streams_per_token_max = streams_per_token_max;
    key_table_init(&h->per_token, 64);
    LIST_INIT(&h->streams);
    h->on_deliveries = on_deliveries;
    h->deliveries_cls = cls;
    /* For tests and diagnosis: other nodes' events always come bare, so
     * every page of them is a gap that open streams read from the store. */
    const char *bare = getenv("TASKMILL_EVENTS_FEED_BARE");
    h->always_bare = bare && strcmp(bare, "1") == 0;
    pthread_mutex_init(&h->lock, NULL);
    time_cond_init(&h->cond);
    /* Listen first, then read the head: an event committed before the read
     * is at or below floor (the store has it); one after reaches the ring. */
    store_set_listener(s, event_hub_publish, h);
    store_set_listener_needs(s, hub_needs_json);
    int64_t head = 0, pruned = 0;
    struct tm_error e;
    err_clear(&e);
    store_events_head(s, &head, &pruned, &e);
    pthread_mutex_lock(&h->lock);
    h->floor = head;
    if (h->last_seq < head) h->last_seq = head;
    pthread_mutex_unlock(&h->lock);
    h->notifier_started = pthread_create(&h->notifier, NULL, hub_notifier_main, h) == 0;
    return h;
}

void event_hub_stop(struct event_hub *h) {
    if (!h) return;
    pthread_mutex_lock(&h->lock);
    h->stopping = true;
    hub_wake_streams(h, true);
    pthread_cond_signal(&h->cond);
    pthread_mutex_unlock(&h->lock);
    if (h->notifier_started) pthread_join(h->notifier, NULL);
    h->notifier_started = false;
}

void event_hub_free(struct event_hub *h) {
    if (!h) return;
    event_hub_stop(h);
    /* Streams still linked belong to responses libmicrohttpd has freed by now. */
    for (size_t i = 0; i < h->n; i++)
        hub_event_free(hub_ring_at(h, i));
    free(h->ring);
    key_table_release(&h->per_token);
    pthread_mutex_destroy(&h->lock);
    pthread_cond_destroy(&h->cond);
    free(h);
}

void event_hub_get_stats(struct event_hub *h, struct event_hub_stats *out) {
    out->streams = atomic_load(&h->nstreams);
    out->events_sent = atomic_load(&h->events_sent);
    out->slow_disconnects = atomic_load(&h->slow_disconnects);
    out->keepalives = atomic_load(&h->keepalives);
    out->gone = atomic_load(&h->gone);
    pthread_mutex_lock(&h->lock);
    out->buffer_events = h->n;
    out->buffer_bytes = h->bytes;
    out->gaps = h->gaps;
    pthread_mutex_unlock(&h->lock);
}

/* The store's head when it is ahead of the hub: with several nodes the hub
 * hears of a commit (even this node's) a moment after it is made, and a
 * stream opened after a 2xx must not replay that write. */
int64_t event_hub_now(struct event_hub *h) {
    int64_t head = 0, pruned = 0;
    struct tm_error e;
    err_clear(&e);
    if (store_events_head(h->store, &head, &pruned, &e)) head = 0;
    pthread_mutex_lock(&h->lock);
    if (h->last_seq > head) head = h->last_seq;
    pthread_mutex_unlock(&h->lock);
    return head;
}

/* Reads one page from the store after the cursor (not under lock). */
static void sse_catch_up(struct sse_stream *st) {
    struct event_page page;
    struct tm_error e;
    err_clear(&e);
    const char *task_id = st->filter.ntask_ids == 1 ? st->filter.task_ids[0] : NULL;
    if (store_events_read(st->hub->store, st->filter.ns, task_id, st->cursor, HUB_PAGE_EVENTS,
                          HUB_FILL_BYTES, &page, &e)) {
        fprintf(stderr, "taskmill: events: %s\n", e.message);
        st->closing = true;
        return;
    }
    if (page.pruned_through > st->cursor) {
        /* What it asked for is gone: say so, then go on from what is left. */
        struct tm_error pe;
        err_set(&pe, TM_EGONE, "Last-Event-ID",
                "events after %lld were removed by retention; re-read the state, then follow "
                "from %lld",
                (long long)st->cursor, (long long)page.pruned_through);
        buf_printf(&st->out, "id: %lld\nevent: error\ndata: ", (long long)page.pruned_through);
        st->id_sent = page.pruned_through;
        error_json_write(&st->out, &pe);
        buf_puts(&st->out, "\n\n");
        st->cursor = page.pruned_through;
        event_page_release(&page);
        return;
    }
    /* Stop once HUB_FILL_BYTES are gathered, the cursor on the last event
     * looked at: the next fill reads on from there. */
    size_t sent = 0, i;
    for (i = 0; i < page.n && st->out.len < HUB_FILL_BYTES; i++) {
        const struct store_event *ev = &page.events[i];
        if (sse_filter_match(&st->filter, ev->ns, ev->queue, ev->type, ev->task_id, ev->phase,
                             event_kind_index(ev->kind))) {
            sse_frame_write(&st->out, ev);
            st->id_sent = ev->seq;
            sent++;
        }
        st->cursor = ev->seq;
    }
    /* A short page read whole saw everything committed up to head in the same read. */
    if (i == page.n && !page.more && page.n < HUB_PAGE_EVENTS && page.head > st->cursor)
        st->cursor = page.head;
    atomic_fetch_add(&st->hub->events_sent, sent);
    event_page_release(&page);
}

/*
 * The keep-alive comment. When the stream has passed events since the last
 * `id:` it wrote (its filter matched none of them), the comment carries
 * the cursor as an `id:` line, in a block without data: a client takes it
 * as its last event id without an event to dispatch (WHATWG HTML, "dispatch
 * the event"), so a reconnection resumes past what was scanned instead of
 * reading it again. Every event up to the cursor that matched was written
 * before it, so resuming there loses nothing.
 */
static void sse_keepalive_write(struct sse_stream *st) {
    atomic_fetch_add(&st->hub->keepalives, 1);
    buf_puts(&st->out, ": keep-alive\n");
    if (st->cursor > st->id_sent) {
        buf_printf(&st->out, "id: %lld\n", (long long)st->cursor);
        st->id_sent = st->cursor;
    }
    buf_puts(&st->out, "\n");
}

/*
 * Whether the stream's client has closed its end. A write to a socket
 * whose peer has closed still succeeds (the kernel takes it; the peer's
 * RST comes back after), so only the write after it fails: a stream whose
 * client went away just after a keep-alive held its slot for two
 * intervals. A stream's client sends nothing after its request, so a
 * socket that reads as shut (FIN: POLLRDHUP; RST or error: POLLHUP,
 * POLLERR) is a client that has gone; with TLS too, as the FIN is under
 * the TLS records. A client that half-closes (shutdown(SHUT_WR)) and
 * still reads is taken as gone as well.
 */
static bool sse_peer_gone(int fd) {
    if (fd < 0) return false;
    struct pollfd p = {.fd = fd, .events = POLLRDHUP};
    if (poll(&p, 1, 0) != 1) return false;
    return (p.revents & (POLLRDHUP | POLLHUP | POLLERR)) != 0;
}

/* Gathers the next bytes to send into st->out. Returns false, with nothing
 * gathered, when the connection was suspended (and maybe resumed already).
 * Each call (a resume for events or for a keep-alive) first looks whether
 * the client has gone, and ends the stream without writing if so
 * (st->gone), so its slot is free at the next keep-alive at the latest. */
static bool sse_fill(struct sse_stream *st) {
    struct event_hub *h = st->hub;
    if (sse_peer_gone(st->fd)) {
        atomic_fetch_add(&h->gone, 1);
        st->gone = st->closing = true;
        return true;
    }
    pthread_mutex_lock(&h->lock);
    if (h->stopping) {
        st->closing = true;
        pthread_mutex_unlock(&h->lock);
        return true;
    }
    if (st->revoked) {
        buf_puts(&st->out, st->token_id[0] ? ": the token was revoked or has expired\n\n"
                                           : ": the server needs a token now\n\n");
        st->closing = true;
        pthread_mutex_unlock(&h->lock);
        return true;
    }
    if (st->cursor < h->floor) {
        if (st->live) {
            atomic_fetch_add(&h->slow_disconnects, 1);
            buf_printf(&st->out,
                       ": too slow: the stream fell behind; reconnect with "
                       "Last-Event-ID %lld\n\n",
                       (long long)st->cursor);
            st->closing = true;
            pthread_mutex_unlock(&h->lock);
            return true;
        }
        pthread_mutex_unlock(&h->lock);
        sse_catch_up(st);
        if (st->out.len || st->closing) return true;
        /* Nothing matched for a while: a comment, so that a proxy or the
         * client does not take a long catch-up for a dead stream. */
        if (time_mono_ms() - st->last_write_mono >= h->keepalive_ms) {
            sse_keepalive_write(st);
            return true;
        }
        pthread_mutex_lock(&h->lock);
        if (st->cursor < h->floor) {
            pthread_mutex_unlock(&h->lock);
            /* More to read from the store, and a page that matched nothing:
             * give the thread back before the next page, or a selective
             * filter would read the whole log in this one call while the
             * thread's other connections wait. Suspended and resumed at
             * once, the connection is called again on the thread's next
             * turn, after the others that are ready. Not `suspended`:
             * nobody else resumes it. */
            MHD_suspend_connection(st->conn);
            MHD_resume_connection(st->conn);
            return false;
        }
    }
    st->live = true;
    size_t sent = 0;
    for (size_t i = hub_ring_after(h, st->cursor); i < h->n && st->out.len < HUB_FILL_BYTES; i++) {
        struct hub_event *e = hub_ring_at(h, i);
        if (sse_filter_match(&st->filter, e->ns, e->queue, e->type, e->task_id, e->phase,
                             e->kind)) {
            buf_put(&st->out, e->frame, e->frame_len);
            st->id_sent = e->seq;
            sent++;
        }
        st->cursor = e->seq;
    }
    if (!st->out.len && time_mono_ms() - st->last_write_mono >= h->keepalive_ms)
        sse_keepalive_write(st);
    if (!st->out.len) {
        st->suspended = true;
        MHD_suspend_connection(st->conn);
        pthread_mutex_unlock(&h->lock);
        return false;
    }
    pthread_mutex_unlock(&h->lock);
    atomic_fetch_add(&h->events_sent, sent);
    return true;
}

static ssize_t sse_read(void *cls, uint64_t pos, char *buf, size_t max) {
    (void)pos;
    struct sse_stream *st = cls;
    while (st->out_off == st->out.len) {
        buf_clear(&st->out);
        st->out_off = 0;
        if (st->gone) return MHD_CONTENT_READER_END_WITH_ERROR; /* closes the socket */
        if (st->closing) return MHD_CONTENT_READER_END_OF_STREAM;
        if (!sse_fill(st)) return 0; /* suspended until there is more, or yielding */
    }
    size_t n = st->out.len - st->out_off;
    if (n > max) n = max;
    memcpy(buf, st->out.p + st->out_off, n);
    st->out_off += n;
    st->last_write_mono = time_mono_ms();
    return (ssize_t)n;
}

static void sse_free(void *cls) {
    struct sse_stream *st = cls;
    struct event_hub *h = st->hub;
    pthread_mutex_lock(&h->lock);
    if (st->linked) LIST_REMOVE(st, link);
    pthread_mutex_unlock(&h->lock);
    if (st->counted) atomic_fetch_sub(&h->nstreams, 1);
    if (st->token_counted) key_count_give(&h->per_token, st->token_id, strlen(st->token_id));
    sse_filter_release(&st->filter);
    buf_release(&st->out);
    free(st);
}

char (*event_hub_stream_tokens(struct event_hub *h, size_t *n))[TOKEN_ID_LEN + 1] {
    pthread_mutex_lock(&h->lock);
    size_t k = 0, cap = 0;
    struct sse_stream *st;
    LIST_FOREACH(st, &h->streams, link)
    cap++;
    char(*out)[TOKEN_ID_LEN + 1] = xmalloc((cap ? cap : 1) * sizeof *out);
    LIST_FOREACH(st, &h->streams, link)
    memcpy(out[k++], st->token_id, TOKEN_ID_LEN + 1);
    pthread_mutex_unlock(&h->lock);
    *n = k;
    return out;
}

size_t event_hub_end_token(struct event_hub *h, const char *token_id) {
    size_t n = 0;
    pthread_mutex_lock(&h->lock);
    struct sse_stream *st;
    LIST_FOREACH(st, &h->streams, link) {
        if (st->revoked || strcmp(st->token_id, token_id) != 0) continue;
        st->revoked = true;
        n++;
        if (st->suspended) {
            st->suspended = false;
            MHD_resume_connection(st->conn);
        }
    }
    pthread_mutex_unlock(&h->lock);
    return n;
}

/*
 * Bounds how long a stream's written bytes may go unacknowledged
 * (TCP_USER_TIMEOUT): a client that vanishes without a FIN or RST (a
 * pulled cable, a machine gone) held its stream until TCP gave up, about
 * 15 minutes of retransmissions. Now the socket fails that long after the
 * first keep-alive it could not take, and sse_peer_gone sees the error at
 * the next one. Twice the keep-alive, and never under 30 s, so that a slow
 * but live link is not cut. Linux also applies it to a window held shut:
 * a client that reads nothing for that long while events wait is ended
 * and resumes from its Last-Event-ID. Best effort: a failure changes nothing.
 */
static void sse_user_timeout_set(int fd, int keepalive_ms) {
#ifdef TCP_USER_TIMEOUT
    if (fd < 0) return;
    unsigned ms = keepalive_ms > 15000 ? 2u * (unsigned)keepalive_ms : 30000u;
    (void)setsockopt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &ms, sizeof ms);
#else
    (void)fd;
    (void)keepalive_ms;
#endif
}

void event_hub_reply_stream(struct event_hub *h, struct req *r, struct sse_filter *f,
                            int64_t cursor, const char *first) {
    if (strcmp(r->method, "HEAD") == 0) {
        /* The stream's header fields and no stream: a reply of unknown
         * length ends its chunks after its head, bytes a HEAD's reply must
         * not have (a client that keeps the connection read them as its
         * next reply). */
        sse_filter_release(f);
        reply_add_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-cache");
        reply_add_header(r, "X-Accel-Buffering", "no");
        struct buf none;
        buf_init(&none);
        reply_body(r, 200, &none, "text/event-stream");
        return;
    }
    /* Count the stream before spending anything on it; give the slot back
     * if it does not start. */
    if (h->streams_max > 0 && atomic_fetch_add(&h->nstreams, 1) >= (uint64_t)h->streams_max) {
        atomic_fetch_sub(&h->nstreams, 1);
        sse_filter_release(f);
        struct tm_error e;
        err_set(&e, TM_ERATE, "", "%d event streams are open already; try again", h->streams_max);
        reply_error(r, &e);
        return;
    }
    if (h->streams_max <= 0) atomic_fetch_add(&h->nstreams, 1);
    /* One token (one tenant) cannot take every place: each has its own
     * share. What was opened without a token (open mode) has none. */
    bool token_counted = false;
    if (r->token_id[0] && h->streams_per_token_max > 0) {
        if (!key_count_take(&h->per_token, r->token_id, strlen(r->token_id),
                            h->streams_per_token_max)) {
            atomic_fetch_sub(&h->nstreams, 1);
            sse_filter_release(f);
            struct tm_error e;
            err_set(&e, TM_ERATE, "", "this token has %d event streams open already; try again",
                    h->streams_per_token_max);
            reply_error(r, &e);
            return;
        }
        token_counted = true;
    }
    struct sse_stream *st = xcalloc(1, sizeof *st);
    st->counted = true;
    st->token_counted = token_counted;
    st->hub = h;
    memcpy(st->token_id, r->token_id, sizeof st->token_id);
    st->conn = r->conn;
    st->fd = req_socket(r);
    sse_user_timeout_set(st->fd, h->keepalive_ms);
    st->filter = *f;
    memset(f, 0, sizeof *f);
    buf_init(&st->out);
    st->last_write_mono = time_mono_ms();
    struct MHD_Response *resp =
        MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 4 * 1024, sse_read, st, sse_free);
    if (!resp) {
        sse_free(st);
        reply_error_code(r, TM_EINTERNAL, "", "cannot start the event stream");
        return;
    }
    /* nosniff as on every reply with a body (reply_body): events echo tenants' text. */
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "text/event-stream");
    MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-cache");
    MHD_add_response_header(resp, "X-Accel-Buffering", "no");
    if (cursor < 0) cursor = event_hub_now(h);
    /* The first block carries where the stream starts as its id, with no
     * data (as a keep-alive's): a client that is cut off before any event
     * has come reconnects with it as its Last-Event-ID, from there, and
     * not from the present of its reconnection, which would skip what was
     * committed in between. A task stream's snapshot follows with the same id. */
    buf_printf(&st->out, ": taskmill events\nretry: 1000\nid: %lld\n\n", (long long)cursor);
    if (first) buf_puts(&st->out, first);
    st->id_sent = cursor;
    pthread_mutex_lock(&h->lock);
    st->cursor = cursor;
    LIST_INSERT_HEAD(&h->streams, st, link);
    st->linked = true;
    pthread_mutex_unlock(&h->lock);
    MHD_queue_response(r->conn, MHD_HTTP_OK, resp);
    MHD_destroy_response(resp);
    r->status_sent = 200;
    server_count_reply(r->srv, 200);
}
