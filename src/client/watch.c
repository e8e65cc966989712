/*
 * watch: tm_watch, which follows several tasks' changes at once (see
 * taskmill.h), over Server-Sent Events with the long-poll as fallback.
 *
 * Every followed task has up to two transfers on the watch's one curl
 * multi handle: `stream`, GET /v1/tasks/{id}/events read incrementally
 * by the SSE parser (sse.h), and `req`, a long-poll GET /v1/tasks/{id}
 * ?wait=&version= or a plain re-read. A task is in one of these states:
 *
 *   opening    stream sent, no `200 text/event-stream` yet. Entered from
 *              tm_watch_add (auto and sse modes) and on every reconnect.
 *   streaming  stream open (it answered `200 text/event-stream`, even if
 *              it ended before a byte of it): each task.* event newer than
 *              `version` is queued; an `error` event (events_pruned) asks for a re-read
 *              through `req`. Invariant: last_event_id is the id of the
 *              last event parsed, so a reconnect loses and repeats nothing.
 *   waiting    no transfer; a reconnect is due at retry_at_ms. Entered when
 *              a stream ended (at once if it brought a newer version, else
 *              after the server's `retry:`, doubled for each such end in a
 *              row: a server or proxy that sends one event and closes is
 *              not asked again hundreds of times a second), or when a
 *              reconnect could not open (backing off, WATCH_SSE_RETRIES
 *              times at most).
 *   polling    the long-poll of the previous design, for good. Entered from
 *              opening when SSE cannot be had (404/405 on the events path,
 *              any other refusal, a stream the parser cannot read), in
 *              auto mode; in sse mode that is an error instead. A long-poll
 *              that brought no newer version is sent again no sooner than
 *              WATCH_RETRY_MIN_MS (doubled for each in a row) after the last
 *              was sent; one that found no server, a 5xx or a 429 once a
 *              state was read is sent again after a backoff as the stream's
 *              (retry_at_ms, WATCH_SSE_RETRIES times at most) before the
 *              task is dropped.
 *   done       inactive: terminal state queued, deleted, or failed. Its
 *              transfers are stopped by watch_reap.
 *
 * Same threading as its client (one thread); the watch owns its handles,
 * tasks and queued events. Versions only move forward, whichever transfer
 * brings a state, so no state is handed out twice.
 *
 * Waking: each watch has its own pipe (no state shared between watches).
 * tm_watch_wake, async-signal-safe, writes a byte to it; tm_watch_next
 * passes its read end to curl_multi_poll, so a wake (or a signal whose
 * handler wakes) ends the wait at once, and drains it at the top of each
 * turn: a wake seen there makes the call return 0. A wake before the call
 * is seen by it, so none is lost between a caller's check and the wait.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "../common/xalloc.h"
#include "client_int.h"
#include "sse.h"

/* How long one long-poll asks the server to wait (it caps the wait itself). */
#define WATCH_WAIT_S 25
/* Failed reconnects in a row before a stream is given up. */
#define WATCH_SSE_RETRIES 8
/* Bounds on the delay between reconnects, whatever `retry:` says. */
#define WATCH_RETRY_MIN_MS 100
#define WATCH_RETRY_MAX_MS 5000
/* A stream silent this long (the server sends keep-alives) is dropped and resumed. */
#define WATCH_STREAM_IDLE_S 90
/* An error reply read from the events path is cut at this size. */
#define WATCH_ERROR_BODY_MAX (64 * 1024)

struct watch_task;

/* One transfer of a task; CURLOPT_PRIVATE points here. */
struct watch_conn {
    struct watch_task *t;
    CURL *easy; /* in flight when not NULL */
    struct curl_slist *headers;
    struct client_buf body;
};

struct watch_task {
    struct tm_watch *w;
    char *id;
    int64_t version; /* last version given out; -1 before the first */
    bool active;     /* still followed */
    bool polling;    /* follows by long-poll from now on */
    struct watch_conn stream, req;
    struct sse_parser parser; /* the current stream's; reset on each connection */
    bool stream_open;         /* the current stream answered 200 text/event-stream */
    bool stream_broken;       /* ... and the parser gave up on it */
    bool ever_open;           /* some stream of this task opened */
    bool refresh;             /* a re-read is wanted once `req` is free */
    bool sse_probe;           /* the events path said 404/405: does the task exist? */
    int failures;             /* opens (or long-polls) failed in a row since the last success */
    int idle;                 /* streams (or long-polls) in a row that brought no newer version */
    int64_t sent_at_ms;       /* when the current stream or long-poll was sent (monotonic) */
    int64_t sent_version;     /* `version` then */
    int64_t lost_at_ms;       /* when the server stopped answering (monotonic); 0 = it answers */
    int64_t retry_at_ms;      /* waiting: reconnect then (monotonic); 0 = not waiting */
    int64_t retry_ms;         /* the server's `retry:`, bounded */
    size_t queued;            /* its events not yet handed out */
    char last_event_id[SSE_ID_MAX + 1];
};

/* A change waiting to be handed out, or an error. */
struct watch_event {
    struct watch_task *t;
    json_t *task;
    char id[256];
    struct tm_client_error err;
};

struct tm_watch {
    struct tm_client *c;
    CURLM *multi;
    enum tm_watch_mode mode;
    bool no_sse; /* the server has no events path: later tasks poll at once */
    struct watch_task **tasks;
    size_t ntasks;
    struct watch_event *queue;
    size_t nqueue, queue_cap;
    char last_id[256];
    int wake[2]; /* the pipe tm_watch_wake writes to; -1, -1 when none could be made */
};

static int64_t watch_now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* TASKMILL_WATCH_MODE: "sse", "poll" or "auto" (also when unset or unknown). */
static enum tm_watch_mode watch_mode_from_env(void) {
    const char *m = getenv("TASKMILL_WATCH_MODE");
    if (m && strcasecmp(m, "sse") == 0) return TM_WATCH_SSE;
    if (m && strcasecmp(m, "poll") == 0) return TM_WATCH_POLL;
    return TM_WATCH_AUTO;
}

struct tm_watch *tm_watch_new(struct tm_client *c) {
    struct tm_watch *w = xcalloc(1, sizeof *w);
    w->c = c;
    w->mode = watch_mode_from_env();
    w->multi = curl_multi_init();
    if (!w->multi) abort();
    /* Without a pipe (no file descriptor left) a wake does nothing: tm_watch_next still
     * returns within its timeout. */
    if (pipe2(w->wake, O_CLOEXEC | O_NONBLOCK)) w->wake[0] = w->wake[1] = -1;
    return w;
}

void tm_watch_wake(struct tm_watch *w) {
    if (!w || w->wake[1] < 0) return;
    int saved = errno;                    /* a signal handler's caller must not see it change */
    ssize_t n = write(w->wake[1], "", 1); /* a full pipe (EAGAIN) has a wake pending already */
    (void)n;
    errno = saved;
}

/* Whether a wake came since the last look: drains the pipe, so it counts once. */
static bool watch_woken(struct tm_watch *w) {
    bool woken = false;
    char buf[64];
    while (w->wake[0] >= 0 && read(w->wake[0], buf, sizeof buf) > 0)
        woken = true;
    return woken;
}

int tm_watch_set_mode(struct tm_watch *w, enum tm_watch_mode mode) {
    if (mode != TM_WATCH_AUTO && mode != TM_WATCH_SSE && mode != TM_WATCH_POLL)
        return client_fail_arg(w->c, "mode", "'mode' must be auto, sse or poll");
    w->mode = mode;
    return 0;
}

static void watch_conn_stop(struct tm_watch *w, struct watch_conn *cn) {
    if (cn->easy) {
        curl_multi_remove_handle(w->multi, cn->easy);
        curl_easy_cleanup(cn->easy);
        cn->easy = NULL;
    }
    curl_slist_free_all(cn->headers);
    cn->headers = NULL;
    client_buf_release(&cn->body);
}

void tm_watch_free(struct tm_watch *w) {
    if (!w) return;
    for (size_t i = 0; i < w->ntasks; i++) {
        struct watch_task *t = w->tasks[i];
        watch_conn_stop(w, &t->stream);
        watch_conn_stop(w, &t->req);
        sse_parser_release(&t->parser);
        free(t->id);
        free(t);
    }
    for (size_t i = 0; i < w->nqueue; i++)
        json_decref(w->queue[i].task);
    curl_multi_cleanup(w->multi);
    if (w->wake[0] >= 0) {
        close(w->wake[0]);
        close(w->wake[1]);
    }
    free(w->tasks);
    free(w->queue);
    free(w);
}

static void watch_push(struct tm_watch *w, struct watch_task *t, json_t *task,
                       const struct tm_client_error *err) {
    if (w->nqueue == w->queue_cap) {
        w->queue_cap = w->queue_cap ? w->queue_cap * 2 : 8;
        w->queue = xrealloc(w->queue, w->queue_cap * sizeof *w->queue);
    }
    struct watch_event *e = &w->queue[w->nqueue++];
    memset(e, 0, sizeof *e);
    e->t = t;
    e->task = task;
    snprintf(e->id, sizeof e->id, "%s", t->id);
    t->queued++;
    if (err) e->err = *err;
}

/* Queues `task` (taken) if it is newer than what was given out; the terminal state ends it. */
static void watch_offer(struct watch_task *t, json_t *task) {
    json_int_t v = json_integer_value(json_object_get(task, "version"));
    if (!t->active || v <= t->version) {
        json_decref(task);
        return;
    }
    t->version = v;
    if (tm_phase_is_terminal(json_string_value(json_object_get(task, "phase")))) t->active = false;
    watch_push(t->w, t, task, NULL);
}

/* Ends following t with the client's last error. */
static void watch_drop(struct watch_task *t) {
    t->active = false;
    watch_push(t->w, t, NULL, &t->w->c->err);
}

/* "/v1/tasks/{id}{suffix}" with the id escaped; caller frees. */
static char *watch_task_path(const struct watch_task *t, const char *suffix) {
    char *id = client_escape(t->id);
    size_t n = strlen(id) + strlen(suffix) + 16;
    char *path = xmalloc(n);
    snprintf(path, n, "/v1/tasks/%s%s", id, suffix);
    free(id);
    return path;
}

/* Sends `req`: a plain read (first, or a re-read) or a long-poll past the version. */
static void watch_req_send(struct watch_task *t, bool wait) {
    struct tm_watch *w = t->w;
    char suffix[96] = "";
    if (wait && t->version >= 0)
        snprintf(suffix, sizeof suffix, "?wait=%d&version=%lld", WATCH_WAIT_S,
                 (long long)t->version);
    char *path = watch_task_path(t, suffix);
    t->req.t = t;
    t->req.easy = curl_easy_init();
    if (!t->req.easy) abort();
    client_easy_setup(w->c, t->req.easy, "GET", path, NULL, WATCH_WAIT_S + 35L, &t->req.body,
                      &t->req.headers, NULL);
    curl_easy_setopt(t->req.easy, CURLOPT_PRIVATE, &t->req);
    free(path);
    if (t->polling) {
        t->sent_at_ms = watch_now_ms();
        t->sent_version = t->version;
    }
    curl_multi_add_handle(w->multi, t->req.easy);
}

static void watch_start_polling(struct watch_task *t) {
    t->polling = true;
    t->retry_at_ms = 0;
    if (!t->req.easy) watch_req_send(t, true);
}

/* The stream's events: queue newer states, ask for a re-read on an error event. */
static void watch_on_item(void *cls, const struct sse_item *it) {
    struct watch_task *t = cls;
    if (it->kind != SSE_ITEM_EVENT) return;
    if (!t->active) return;
    if (strcmp(it->event, "error") == 0) {
        /* events_pruned: some events are gone; the state is re-read, the stream goes on. */
        t->refresh = true;
        return;
    }
    if (strncmp(it->event, "task.", 5) != 0) return;
    json_t *j = json_loadb(it->data, it->data_len, 0, NULL);
    json_t *task = json_object_get(j, "task");
    if (json_is_object(task))
        watch_offer(t, json_incref(task));
    else if (json_integer_value(json_object_get(j, "version")) > t->version)
        t->refresh = true; /* an event without its task: read it */
    if (t->active && strcmp(it->event, "task.deleted") == 0) {
        client_fail(t->w->c, TM_CLIENT_ENOTFOUND, "task '%s' was deleted", t->id);
        watch_drop(t);
    }
    json_decref(j);
}

/* Whether the stream's transfer has answered 200 text/event-stream (its headers suffice). */
static bool watch_stream_answered(const struct watch_task *t) {
    long status = 0;
    char *ct = NULL;
    curl_easy_getinfo(t->stream.easy, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_getinfo(t->stream.easy, CURLINFO_CONTENT_TYPE, &ct);
    return status == 200 && ct && strncasecmp(ct, "text/event-stream", 17) == 0;
}

/* The stream answered as an event stream: streaming, and the server is there again. */
static void watch_stream_opened(struct watch_task *t) {
    t->stream_open = true;
    t->ever_open = true;
    t->failures = 0;
    t->lost_at_ms = 0;
}

/* The stream's body: the SSE bytes once it is open, else the error reply. */
static size_t watch_on_stream(char *data, size_t size, size_t nmemb, void *cls) {
    struct watch_task *t = cls;
    size_t n = size * nmemb;
    if (!t->active) return 0; /* ends the transfer; watch_reap cleans up */
    if (!t->stream_open) {
        if (watch_stream_answered(t)) {
            watch_stream_opened(t);
        } else {
            t->stream.body.max = WATCH_ERROR_BODY_MAX;
            return client_buf_append(&t->stream.body, data, n) ? n : 0;
        }
    }
    int rc = sse_parser_feed(&t->parser, data, n, watch_on_item, t);
    /* An id-only frame moves the resume point too. */
    snprintf(t->last_event_id, sizeof t->last_event_id, "%s", t->parser.last_id);
    if (rc) {
        t->stream_broken = true;
        return 0;
    }
    if (t->parser.retry_ms >= 0) {
        int64_t r = t->parser.retry_ms;
        t->retry_ms = r < WATCH_RETRY_MIN_MS   ? WATCH_RETRY_MIN_MS
                      : r > WATCH_RETRY_MAX_MS ? WATCH_RETRY_MAX_MS
                                               : r;
    }
    return t->active ? n : 0;
}

/* Opens the task's event stream, resuming after last_event_id when there is one. */
static void watch_stream_send(struct watch_task *t) {
    struct tm_watch *w = t->w;
    char *path = watch_task_path(t, "/events");
    char last[SSE_ID_MAX + 32];
    snprintf(last, sizeof last, "Last-Event-ID: %s", t->last_event_id);
    const char *extra[] = {"Accept: text/event-stream", "Cache-Control: no-cache",
                           t->last_event_id[0] ? last : NULL, NULL};
    t->stream.t = t;
    t->stream.easy = curl_easy_init();
    if (!t->stream.easy) abort();
    client_easy_setup(w->c, t->stream.easy, "GET", path, NULL, 0, &t->stream.body,
                      &t->stream.headers, extra);
    free(path);
    curl_easy_setopt(t->stream.easy, CURLOPT_WRITEFUNCTION, watch_on_stream);
    curl_easy_setopt(t->stream.easy, CURLOPT_WRITEDATA, t);
    curl_easy_setopt(t->stream.easy, CURLOPT_PRIVATE, &t->stream);
    curl_easy_setopt(t->stream.easy, CURLOPT_LOW_SPEED_LIMIT, 1L);
    curl_easy_setopt(t->stream.easy, CURLOPT_LOW_SPEED_TIME, (long)WATCH_STREAM_IDLE_S);
    sse_parser_release(&t->parser);
    sse_parser_init(&t->parser, 0);
    /* The id to resume after carries over from one connection to the next, as in EventSource. */
    memcpy(t->parser.id_buf, t->last_event_id, sizeof t->parser.id_buf);
    memcpy(t->parser.last_id, t->last_event_id, sizeof t->parser.last_id);
    t->stream_open = t->stream_broken = false;
    t->retry_at_ms = 0;
    t->sent_at_ms = watch_now_ms();
    t->sent_version = t->version;
    curl_multi_add_handle(w->multi, t->stream.easy);
}

int tm_watch_add(struct tm_watch *w, const char *id) {
    if (!id || !*id) return client_fail_arg(w->c, "id", "'id' must not be empty");
    w->tasks = xrealloc(w->tasks, (w->ntasks + 1) * sizeof *w->tasks);
    struct watch_task *t = xcalloc(1, sizeof *t);
    w->tasks[w->ntasks++] = t;
    t->w = w;
    t->id = xstrdup(id);
    t->version = -1;
    t->active = true;
    t->retry_ms = 1000;
    sse_parser_init(&t->parser, 0);
    if (w->mode == TM_WATCH_POLL || (w->mode == TM_WATCH_AUTO && w->no_sse))
        watch_start_polling(t);
    else
        watch_stream_send(t);
    return 0;
}

size_t tm_watch_active(const struct tm_watch *w) {
    size_t n = 0;
    for (size_t i = 0; i < w->ntasks; i++)
        n += w->tasks[i]->active || w->tasks[i]->queued > 0;
    return n;
}

/* A delay: base_ms doubled for each of n-1 (n >= 1) in a row, at most WATCH_RETRY_MAX_MS; and
 * never less than floor_ms (a refusal's Retry-After, 0: none). */
static int64_t watch_backoff_ms(int64_t base_ms, int n, int64_t floor_ms) {
    int64_t delay = base_ms;
    for (int i = 1; i < n && delay < WATCH_RETRY_MAX_MS; i++)
        delay *= 2;
    if (delay > WATCH_RETRY_MAX_MS) delay = WATCH_RETRY_MAX_MS;
    return delay < floor_ms ? floor_ms : delay;
}

/* A finished long-poll or re-read: queue a newer state or the error; poll again if polling. */
static void watch_req_done(struct watch_task *t, CURLcode rc) {
    struct tm_watch *w = t->w;
    long status = 0;
    curl_easy_getinfo(t->req.easy, CURLINFO_RESPONSE_CODE, &status);
    json_t *task = NULL;
    int r = client_finish(w->c, client_retry_after_ms(t->req.easy, status), rc, status,
                          &t->req.body, &task);
    watch_conn_stop(w, &t->req);
    if (!t->active) {
        json_decref(task);
        return;
    }
    if (r == 0 && !json_is_object(task)) {
        json_decref(task);
        r = client_fail(w->c, TM_CLIENT_EPROTOCOL, "reply for task '%s' is not a task", t->id);
    }
    if (r && !t->polling) {
        /* A re-read beside a live stream only matters when the task is gone. */
        if (r == TM_CLIENT_ENOTFOUND) watch_drop(t);
        return;
    }
    if (r) {
        /* No server (a restart), 503 (it is stopping) or 429 once the task was read: asked
         * again after a backoff, as a stream is reopened, and the task dropped only after as
         * many tries; lost_at_ms tells the caller the server is not answering meanwhile. */
        bool transient = r == TM_CLIENT_ECONNECT || r == TM_CLIENT_ESERVER || r == TM_CLIENT_ERATE;
        if (transient && t->version >= 0 && t->failures < WATCH_SSE_RETRIES) {
            int64_t now = watch_now_ms();
            if (!t->lost_at_ms) t->lost_at_ms = now;
            t->failures++;
            t->retry_at_ms =
                now + watch_backoff_ms(t->retry_ms, t->failures, w->c->err.retry_after_ms);
        } else {
            watch_drop(t);
        }
        return;
    }
    if (t->polling) {
        t->failures = 0;
        t->lost_at_ms = 0;
    }
    if (t->sse_probe) {
        /* The task exists, so the 404/405 came from a server without the events path. */
        t->sse_probe = false;
        w->no_sse = true;
    }
    watch_offer(t, task);
    if (!t->active || !t->polling) return;
    /* A reply with no newer version that came back at once (a proxy, a server that does not
     * wait) is not asked again at once: the next is sent WATCH_RETRY_MIN_MS, doubled for each
     * such reply in a row, after this one was. A long-poll that waited has paced itself. */
    int64_t due = 0;
    if (t->version > t->sent_version) {
        t->idle = 0;
    } else {
        t->idle++;
        due = t->sent_at_ms + watch_backoff_ms(WATCH_RETRY_MIN_MS, t->idle, 0);
    }
    if (due <= watch_now_ms())
        watch_req_send(t, true);
    else
        t->retry_at_ms = due;
}

/* A finished stream: resume it, back off, fall back to polling, or report the error. */
static void watch_stream_done(struct watch_task *t, CURLcode rc) {
    struct tm_watch *w = t->w;
    long status = 0;
    curl_easy_getinfo(t->stream.easy, CURLINFO_RESPONSE_CODE, &status);
    /* An event stream that ended before its first byte (the server went away just then) was
     * open all the same: it is resumed, not taken for a server without event streams. */
    if (!t->stream_open && t->active && watch_stream_answered(t)) watch_stream_opened(t);
    struct client_buf body = t->stream.body;
    t->stream.body = (struct client_buf){0};
    int64_t retry_after_ms = client_retry_after_ms(t->stream.easy, status);
    watch_conn_stop(w, &t->stream);
    bool was_open = t->stream_open, broken = t->stream_broken;
    t->stream_open = false;
    if (!t->active) goto out;
    if (broken) {
        client_fail(w->c, TM_CLIENT_EPROTOCOL, "event stream of task '%s' cannot be read", t->id);
        if (w->mode == TM_WATCH_SSE)
            watch_drop(t);
        else
            watch_start_polling(t);
        goto out;
    }
    if (was_open) {
        /* Cut off (a restart, a proxy, `too slow`): resume after the last id, at once if the
         * stream brought a newer version; else after `retry:`, doubled for each such end in a
         * row (one that stayed open a while starts the count again). */
        int64_t now = watch_now_ms();
        if (t->version > t->sent_version) {
            t->idle = 0;
            watch_stream_send(t);
        } else {
            if (now - t->sent_at_ms >= WATCH_RETRY_MAX_MS) t->idle = 0;
            t->idle++;
            t->retry_at_ms = now + watch_backoff_ms(t->retry_ms, t->idle, 0);
        }
        goto out;
    }
    bool transient = rc != CURLE_OK && status == 0; /* no reply at all */
    /* A stream that was open and cannot be had again now (the server away, or too many
     * streams or requests of this token: 429) is tried again, as its Retry-After asks. */
    if ((transient || status >= 500 || status == 429) && t->ever_open &&
        t->failures < WATCH_SSE_RETRIES) {
        if (!t->lost_at_ms) t->lost_at_ms = watch_now_ms();
        t->failures++;
        t->retry_at_ms =
            watch_now_ms() + watch_backoff_ms(t->retry_ms, t->failures, retry_after_ms);
        goto out;
    }
    if (w->mode == TM_WATCH_SSE) {
        if (status == 200)
            client_fail(w->c, TM_CLIENT_EPROTOCOL, "events of task '%s' are not an event stream",
                        t->id);
        else {
            body.too_big = false; /* an error reply read only in part: its status still says */
            client_finish(w->c, retry_after_ms, status >= 300 ? CURLE_OK : rc, status, &body, NULL);
        }
        watch_drop(t);
        goto out;
    }
    /* No stream to be had: the long-poll does the rest, and reports real errors. */
    t->sse_probe = status == 404 || status == 405;
    watch_start_polling(t);
out:
    client_buf_release(&body);
}

/* Stops the transfers of tasks that are done; starts due reconnects and re-reads. */
static void watch_reap(struct tm_watch *w) {
    int64_t now = watch_now_ms();
    for (size_t i = 0; i < w->ntasks; i++) {
        struct watch_task *t = w->tasks[i];
        if (!t->active) {
            watch_conn_stop(w, &t->stream);
            watch_conn_stop(w, &t->req);
            continue;
        }
        if (t->polling) {
            if (!t->req.easy && t->retry_at_ms && t->retry_at_ms <= now) {
                t->retry_at_ms = 0;
                watch_req_send(t, true);
            }
            continue;
        }
        if (!t->stream.easy && t->retry_at_ms && t->retry_at_ms <= now) watch_stream_send(t);
        if (t->refresh && !t->req.easy) {
            t->refresh = false;
            watch_req_send(t, false);
        }
    }
}

/* Milliseconds until the next reconnect is due, or `cap` when none is sooner. */
static int64_t watch_next_due(const struct tm_watch *w, int64_t cap) {
    int64_t now = watch_now_ms(), best = cap;
    for (size_t i = 0; i < w->ntasks; i++) {
        const struct watch_task *t = w->tasks[i];
        if (!t->active || !t->retry_at_ms || (t->polling ? t->req.easy : t->stream.easy)) continue;
        int64_t left = t->retry_at_ms - now;
        if (left < best) best = left < 0 ? 0 : left;
    }
    return best;
}

/* Hands out the oldest queued event: 1 with a task, or the error's code. */
static int watch_pop(struct tm_watch *w, json_t **task) {
    struct watch_event e = w->queue[0];
    memmove(w->queue, w->queue + 1, (w->nqueue - 1) * sizeof *w->queue);
    w->nqueue--;
    e.t->queued--;
    memcpy(w->last_id, e.id, sizeof w->last_id);
    if (e.task) {
        *task = e.task;
        memset(&w->c->err, 0, sizeof w->c->err);
        return 1;
    }
    w->c->err = e.err;
    return e.err.code ? e.err.code : TM_CLIENT_EPROTOCOL;
}

int tm_watch_next(struct tm_watch *w, int timeout_ms, json_t **task) {
    *task = NULL;
    int64_t deadline = watch_now_ms() + (timeout_ms > 0 ? timeout_ms : 0);
    for (;;) {
        if (w->nqueue) return watch_pop(w, task);
        if (watch_woken(w)) return 0; /* the caller has something to look at first */
        watch_reap(w);
        int running = 0;
        curl_multi_perform(w->multi, &running);
        CURLMsg *m;
        int nmsg;
        while ((m = curl_multi_info_read(w->multi, &nmsg))) {
            if (m->msg != CURLMSG_DONE) continue;
            struct watch_conn *cn = NULL;
            curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&cn);
            if (!cn) continue;
            /* Handles are removed as they are handled, so later messages stay valid. */
            if (cn == &cn->t->stream)
                watch_stream_done(cn->t, m->data.result);
            else
                watch_req_done(cn->t, m->data.result);
        }
        watch_reap(w);
        if (w->nqueue) return watch_pop(w, task);
        int64_t left = deadline - watch_now_ms();
        if (left <= 0 || tm_watch_active(w) == 0) return 0; /* nothing queued here */
        int64_t wait = watch_next_due(w, left > 1000 ? 1000 : left);
        /* The wake pipe ends the wait at once; a signal alone (EINTR) may not, so a handler
         * wakes the watch (taskmill.h). */
        struct curl_waitfd wfd = {.fd = w->wake[0], .events = CURL_WAIT_POLLIN};
        curl_multi_poll(w->multi, w->wake[0] >= 0 ? &wfd : NULL, w->wake[0] >= 0 ? 1 : 0, (int)wait,
                        NULL);
    }
}

const char *tm_watch_last_id(const struct tm_watch *w) {
    return w->last_id[0] ? w->last_id : NULL;
}

int64_t tm_watch_lost_ms(const struct tm_watch *w, const char *id) {
    for (size_t i = 0; id && i < w->ntasks; i++) {
        const struct watch_task *t = w->tasks[i];
        if (strcmp(t->id, id) == 0 && t->active && t->lost_at_ms) {
            int64_t d = watch_now_ms() - t->lost_at_ms;
            return d > 0 ? d : 1;
        }
    }
    return 0;
}
