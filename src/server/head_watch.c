/*
 * head_watch: the deadlines of a request's head (--head-timeout-seconds)
 * and of its body (--body-timeout-seconds, --body-min-rate) on
 * libmicrohttpd's connections. The idle timeout closes a connection only
 * when no byte comes for that long, so a client sending its head a byte
 * at a time (slowloris) would hold its connection for ever: the head must
 * be all in within head_watch_limit_ms of the connection's start or of
 * its previous reply's end. Likewise a body sent a byte at a time (a
 * "slow POST"): it must be all in within head_watch_body_limit_ms of its
 * head's end, a limit that grows with the bytes that came, so that a body
 * coming at least --body-min-rate bytes a second is never cut.
 * libmicrohttpd has no such deadlines and does not say when a head's
 * first byte came; this thread shuts down the socket of a connection past
 * one, and libmicrohttpd, reading the end of its input, closes it. The
 * fast path keeps the same deadlines itself (fast_sweep) and hands a
 * connection on with the times its clocks started.
 *
 * Threading: libmicrohttpd's threads tell a connection's start, head,
 * reply end and close; the fast path's threads tell a connection handed
 * on; the watch's thread looks once a second. All under srv->head_lock.
 * libmicrohttpd tells a connection's close before it closes its socket,
 * so the watch never shuts down a descriptor that is another's by then.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <time.h>

#include "../common/timeutil.h"
#include "../common/xalloc.h"
#include "server_int.h"

/* A connection handed on whose start libmicrohttpd did not tell within
 * this long was not started (it closed the socket): forgotten. */
#define HEAD_HANDING_MAX_MS 10000

struct head_conn {
    int fd;
    bool started;       /* libmicrohttpd told its start; else handed on, not started yet */
    bool waiting;       /* no request in progress: a head is due */
    bool body;          /* a request's head is in, its body not all yet */
    bool shut;          /* shut down past a deadline */
    int64_t since_mono; /* waiting: when the head's clock started */
    int64_t body_mono;  /* body: when the head was in (handed on: when it was, or 0) */
    int64_t body_bytes; /* body: how much of it came */
    LIST_ENTRY(head_conn) link;
};

int http_idle_seconds(const struct limits *lim) {
    return lim->idle_timeout_seconds > 0 ? lim->idle_timeout_seconds : http_long_seconds(lim);
}

int http_long_seconds(const struct limits *lim) {
    return lim->wait_max_seconds + 30;
}

int64_t head_watch_limit_ms(const struct server *srv) {
    const struct limits *lim = &srv->cfg.limits;
    int head = lim->head_timeout_seconds > 0 ? lim->head_timeout_seconds : 30;
    int idle = http_idle_seconds(lim);
    /* Never before the idle timeout: an idle connection is the idle
     * timeout's, not a late head. */
    return 1000LL * (head > idle ? head : idle);
}

int64_t head_watch_body_limit_ms(const struct server *srv, int64_t got) {
    const struct limits *lim = &srv->cfg.limits;
    int64_t base = lim->body_timeout_seconds > 0 ? lim->body_timeout_seconds : 30;
    int64_t rate = lim->body_min_rate > 0 ? (int64_t)lim->body_min_rate : 4096;
    /* Bytes past --max-body-bytes (a chunked body, read and dropped) buy
     * no time: an endless body, however fast, is cut. */
    if (lim->body_max_bytes > 0 && got > (int64_t)lim->body_max_bytes)
        got = (int64_t)lim->body_max_bytes;
    return 1000 * base + 1000 * got / rate;
}

static void head_watch_shut(struct head_conn *h, _Atomic uint64_t *count) {
    shutdown(h->fd, SHUT_RDWR);
    h->shut = true;
    atomic_fetch_add(count, 1);
}

static void head_watch_round(struct server *srv, int64_t now) {
    int64_t limit = head_watch_limit_ms(srv);
    struct head_conn *h = LIST_FIRST(&srv->head_list), *next;
    for (; h; h = next) {
        next = LIST_NEXT(h, link);
        if (!h->started) {
            if (now - h->since_mono > HEAD_HANDING_MAX_MS) {
                LIST_REMOVE(h, link);
                free(h);
            }
        } else if (h->shut) {
            continue;
        } else if (h->waiting && now - h->since_mono > limit) {
            head_watch_shut(h, &srv->head_timeouts);
        } else if (h->body && now - h->body_mono > head_watch_body_limit_ms(srv, h->body_bytes)) {
            head_watch_shut(h, &srv->body_timeouts);
        }
    }
}

static void *head_watch_main(void *arg) {
    struct server *srv = arg;
    pthread_mutex_lock(&srv->head_lock);
    while (!srv->head_stopping) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        ts.tv_sec += 1;
        pthread_cond_timedwait(&srv->head_cond, &srv->head_lock, &ts);
        if (!srv->head_stopping) head_watch_round(srv, time_mono_ms());
    }
    pthread_mutex_unlock(&srv->head_lock);
    return NULL;
}

int head_watch_start(struct server *srv) {
    pthread_mutex_init(&srv->head_lock, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&srv->head_cond, &ca);
    pthread_condattr_destroy(&ca);
    LIST_INIT(&srv->head_list);
    srv->head_stopping = false;
    srv->head_ready = true;
    if (pthread_create(&srv->head_thread, NULL, head_watch_main, srv) != 0) {
        fprintf(stderr, "taskmill: cannot start the thread that watches heads\n");
        return -1;
    }
    srv->head_started = true;
    return 0;
}

void head_watch_stop(struct server *srv) {
    if (!srv->head_ready) return;
    if (srv->head_started) {
        pthread_mutex_lock(&srv->head_lock);
        srv->head_stopping = true;
        pthread_cond_signal(&srv->head_cond);
        pthread_mutex_unlock(&srv->head_lock);
        pthread_join(srv->head_thread, NULL);
        srv->head_started = false;
    }
    /* libmicrohttpd has stopped: what is left was handed on, never started. */
    while (!LIST_EMPTY(&srv->head_list)) {
        struct head_conn *h = LIST_FIRST(&srv->head_list);
        LIST_REMOVE(h, link);
        free(h);
    }
    pthread_cond_destroy(&srv->head_cond);
    pthread_mutex_destroy(&srv->head_lock);
    srv->head_ready = false;
}

/* The entry of fd handed on and not started yet, or NULL. Under the lock. */
static struct head_conn *head_handed(struct server *srv, int fd) {
    struct head_conn *h;
    LIST_FOREACH(h, &srv->head_list, link)
    if (!h->started && h->fd == fd) return h;
    return NULL;
}

void head_watch_handing(struct server *srv, int fd, int64_t since_mono, int64_t body_mono) {
    pthread_mutex_lock(&srv->head_lock);
    /* One there already is from a socket libmicrohttpd closed unstarted:
     * this fd was accepted again since. */
    struct head_conn *h = head_handed(srv, fd);
    if (!h) {
        h = xcalloc(1, sizeof *h);
        h->fd = fd;
        LIST_INSERT_HEAD(&srv->head_list, h, link);
    }
    h->since_mono = since_mono;
    h->body_mono = body_mono;
    pthread_mutex_unlock(&srv->head_lock);
}

void head_watch_handing_failed(struct server *srv, int fd) {
    pthread_mutex_lock(&srv->head_lock);
    struct head_conn *h = head_handed(srv, fd);
    if (h) {
        LIST_REMOVE(h, link);
        free(h);
    }
    pthread_mutex_unlock(&srv->head_lock);
}

struct head_conn *head_watch_opened(struct server *srv, int fd) {
    pthread_mutex_lock(&srv->head_lock);
    struct head_conn *h = head_handed(srv, fd);
    if (!h) {
        h = xcalloc(1, sizeof *h);
        h->fd = fd;
        h->since_mono = time_mono_ms();
        LIST_INSERT_HEAD(&srv->head_list, h, link);
    }
    h->started = true;
    /* Handed on with its head in and its body under way: the body's clock
     * runs, not the head's (head_watch_head_in comes when libmicrohttpd
     * has read the head again). */
    h->waiting = !h->body_mono;
    h->body = h->body_mono != 0;
    pthread_mutex_unlock(&srv->head_lock);
    return h;
}

void head_watch_head_in(struct server *srv, struct head_conn *h) {
    if (!h) return;
    pthread_mutex_lock(&srv->head_lock);
    h->waiting = false;
    h->body = true;
    /* Handed on with its body coming: its clock started on the fast path. */
    if (!h->body_mono) h->body_mono = time_mono_ms();
    h->body_bytes = 0;
    pthread_mutex_unlock(&srv->head_lock);
}

void head_watch_body_part(struct server *srv, struct head_conn *h, size_t n) {
    if (!h) return;
    pthread_mutex_lock(&srv->head_lock);
    h->body_bytes += (int64_t)n;
    pthread_mutex_unlock(&srv->head_lock);
}

void head_watch_body_in(struct server *srv, struct head_conn *h) {
    if (!h) return;
    pthread_mutex_lock(&srv->head_lock);
    h->body = false;
    pthread_mutex_unlock(&srv->head_lock);
}

void head_watch_reply_end(struct server *srv, struct head_conn *h) {
    if (!h) return;
    pthread_mutex_lock(&srv->head_lock);
    h->waiting = true;
    h->body = false;
    h->body_mono = 0;
    h->since_mono = time_mono_ms();
    pthread_mutex_unlock(&srv->head_lock);
}

void head_watch_closed(struct server *srv, struct head_conn *h) {
    if (!h) return;
    pthread_mutex_lock(&srv->head_lock);
    LIST_REMOVE(h, link);
    pthread_mutex_unlock(&srv->head_lock);
    free(h);
}
