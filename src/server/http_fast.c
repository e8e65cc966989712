/*
 * http_fast: see server_int.h. libmicrohttpd costs a request that waits on
 * the store about eight system calls besides its read and its reply: it
 * takes the socket out of its epoll set when the request is suspended and
 * puts it back when it is resumed, signals the resume through an eventfd
 * for each request, and polls its set again before and after sending. Here
 * a connection stays in one thread's epoll set for its whole life, and the
 * store's writer wakes that thread once for all the requests of a batch.
 *
 * A request is read with MSG_PEEK and taken off the socket only once it is
 * known to be one of ours, complete (head and body), so that any other
 * request can still be handed, unread, to libmicrohttpd with the
 * connection (http_daemon_take). Once handed on, a connection stays there.
 * The few heads libmicrohttpd cannot be handed (HEAD_BAD, http_head.h) are
 * answered here with a 400, and the connection closed (fast_refuse).
 * Where the kernel has SO_PEEK_OFF for TCP, served requests are taken off
 * many at a time (struct fast_conn).
 *
 * Threading: each connection belongs to one thread, which alone touches it,
 * except that the store's writer pushes a resumed request onto its thread's
 * ready list (under the thread's lock). One request at a time per connection;
 * pipelined requests wait in the socket until the one before is answered.
 */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/queue.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "../common/timeutil.h"
#include "../common/xalloc.h"
#include "http_head.h"
#include "server_int.h"

/* The requests the fast path serves; any other goes to libmicrohttpd. None
 * of these streams its reply. */
static const struct {
    const char *method, *pattern;
} fast_routes[] = {
    {"POST", "/v1/tasks"},
    {"GET", "/v1/tasks/:id"},
    {"POST", "/v1/tasks/:id/heartbeat"},
    {"POST", "/v1/tasks/:id/complete"},
    {"POST", "/v1/tasks/:id/fail"},
    {"POST", "/v1/tasks/:id/release"},
    {"POST", "/v1/queues/:queue/claim"},
    {"POST", "/v1/queues/:queue/claims"},
    {"POST", "/v1/work/heartbeat"},
    {"POST", "/v1/work/complete"},
    {"POST", "/v1/work/fail"},
    {"POST", "/v1/work/release"},
};

/* Bodies above this go to libmicrohttpd: a request is peeked whole (again
 * at each arrival of its bytes without SO_PEEK_OFF). */
#define FAST_BODY_MAX (64 * 1024)
/* Bytes of requests served that may stay in a socket's queue before one
 * discard takes them (with SO_PEEK_OFF). */
#define FAST_HELD_MAX (32 * 1024)
/* A request that is not all there waits, unread, in the socket's receive
 * buffer, whose window the unread bytes close: one larger than this, or
 * one that has come in more pieces than FAST_PARTIAL_TRIES (each of which
 * is peeked again from its start without SO_PEEK_OFF), is handed on to
 * libmicrohttpd, which reads it into memory of its own. */
#define FAST_PARTIAL_MAX   (32 * 1024)
#define FAST_PARTIAL_TRIES 8
/* Bytes taken off a closing connection's queue, at most (fast_close). */
#define FAST_DRAIN_MAX (1 << 20)

struct fast_thread;

struct fast_conn {
    int fd;
    struct fast_thread *th;
    struct sockaddr_storage addr;
    socklen_t addr_len;
    struct req *req;    /* the request in progress, or NULL */
    char *head;         /* its head, a copy: method, path, fields, NUL-ended */
    struct http_head h; /* spans into head */
    bool input;         /* bytes may be waiting that were not looked at */
    bool gone;          /* the peer closed or failed: close once the request ends */
    bool close_after;   /* the request said "Connection: close" */
    bool want_out;      /* EPOLLOUT is asked for */
    bool body_due;      /* a request's head is in, its body not all yet */
    /* With SO_PEEK_OFF (Linux 6.10 and later for TCP), peeked bytes are
     * passed over by the next peek: requests served stay in the socket's
     * queue (held) until a discard takes many at once, and bytes after the
     * last request served are kept in buf (len). Without it, each request
     * is discarded as it starts and len stays 0. */
    bool peek_off;
    char *buf;
    size_t len, held;
    int partial; /* arrivals of the next request while it was not all there */
    char *out;   /* the unsent rest of a reply */
    size_t out_len, out_off;
    int64_t active_mono; /* last byte in or out, for the idle timeout */
    int64_t head_mono;   /* opened, or its last reply ended: the next head is due (head_watch.c) */
    int64_t body_mono;   /* body_due: its head was in then */
    int64_t body_got;    /* body_due: how much of its body came */
    LIST_ENTRY(fast_conn) link;
    struct fast_conn *ready_next; /* on the ready list; on the dead list once closed */
};

struct fast_thread {
    struct http_fast *fast;
    pthread_t tid;
    bool started;
    int epfd, evfd;
    pthread_mutex_t lock;
    struct fast_conn *ready; /* resumed requests (under lock) */
    LIST_HEAD(, fast_conn) conns;
    /* Closed or handed on during this round of events: freed after it, since
     * a later event of the same epoll_wait may still name them. */
    struct fast_conn *dead;
    char *peek;
    size_t peek_cap;
    int64_t swept_mono;
    char date[40]; /* the Date header's value, for date_sec */
    size_t date_len;
    time_t date_sec;
};

struct http_fast {
    struct server *srv;
    bool no_peek_off; /* TASKMILL_HTTP_NO_PEEK_OFF: as on kernels without it (tests) */
    _Atomic bool stopping;
    _Atomic int nconns;
    int nthreads;
    struct fast_thread *th;
    struct path_segs routes[sizeof fast_routes / sizeof fast_routes[0]]; /* split once */
};

/* epoll tags of the listening socket and a thread's eventfd. */
static char tag_listen, tag_wake;

const char *http_fast_header(struct fast_conn *c, const char *name) {
    size_t n = strlen(name);
    for (int i = 0; i < c->h.nfields; i++)
        if (c->h.name[i].len == n && strncasecmp(c->head + c->h.name[i].off, name, n) == 0)
            return c->head + c->h.value[i].off;
    return NULL;
}

int http_fast_fd(struct fast_conn *c) {
    return c->fd; /* open while a request is in progress on it */
}

const struct sockaddr *http_fast_client_addr(struct fast_conn *c) {
    return (const struct sockaddr *)&c->addr;
}

/* Takes c out of its thread's connections, no longer counted (closed);
 * freed after this round of events. */
static void fast_unlist(struct fast_conn *c) {
    LIST_REMOVE(c, link);
    c->fd = -1;
    c->ready_next = c->th->dead;
    c->th->dead = c;
}

static void fast_forget(struct fast_conn *c) {
    struct http_fast *f = c->th->fast;
    conn_limit_closed(f->srv, (const struct sockaddr *)&c->addr);
    atomic_fetch_sub(&f->nconns, 1);
    fast_unlist(c);
}

static void fast_free_dead(struct fast_thread *th) {
    while (th->dead) {
        struct fast_conn *c = th->dead;
        th->dead = c->ready_next;
        free(c->out);
        free(c->head);
        free(c->buf);
        free(c);
    }
}

static void fast_close(struct fast_conn *c) {
    /* Bytes left unread at close (requests served but held, a request
     * kept, anything sent after "Connection: close") make the kernel
     * answer with a reset and drop what it has not sent yet: the end of
     * the last reply. They are taken off first, so the close is a FIN
     * after the whole reply. */
    size_t drained = 0;
    for (;;) {
        ssize_t k = recv(c->fd, c->th->peek, c->th->peek_cap, MSG_TRUNC | MSG_DONTWAIT);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0 || (drained += (size_t)k) >= FAST_DRAIN_MAX) break;
    }
    close(c->fd);
    fast_forget(c);
}

/* Discards n bytes at the head of the socket's queue (peeked already):
 * nothing is copied. false when the connection failed (c is then closed). */
static bool fast_discard(struct fast_conn *c, size_t n) {
    while (n > 0) {
        ssize_t k = recv(c->fd, c->th->peek, n, MSG_TRUNC);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) {
            fast_close(c);
            return false;
        }
        n -= (size_t)k;
    }
    return true;
}

/* Hands the connection, its next request unread, to libmicrohttpd. */
static void fast_hand_on(struct fast_conn *c) {
    struct http_fast *f = c->th->fast;
    /* The requests served go; the one handed on is then at the queue's head. */
    if (c->held && !fast_discard(c, c->held)) return;
    int fd = c->fd;
    epoll_ctl(c->th->epfd, EPOLL_CTL_DEL, fd, NULL);
    /* Counted as handing until libmicrohttpd's thread starts it (its
     * notify), under its address as it was: were it let go here, another
     * accept could take its place before libmicrohttpd counts it, and more
     * than --max-connections (or the address's cap) be open. Added before
     * it leaves nconns, so that the sum never dips. */
    atomic_fetch_add(&f->srv->handing, 1);
    atomic_fetch_sub(&f->nconns, 1);
    fast_unlist(c);
    http_daemon_take(f->srv, fd, (const struct sockaddr *)&c->addr, (unsigned)c->addr_len,
                     c->head_mono, c->body_due ? c->body_mono : 0);
}

static void fast_want_out(struct fast_conn *c, bool want) {
    if (c->want_out == want) return;
    struct epoll_event ev = {.events = EPOLLIN | EPOLLRDHUP | EPOLLET | (want ? EPOLLOUT : 0),
                             .data.ptr = c};
    if (epoll_ctl(c->th->epfd, EPOLL_CTL_MOD, c->fd, &ev) == 0) c->want_out = want;
}

/* The request is answered (its reply sent whole, or its send failed:
 * c->gone). A reply the socket did not take whole waits in c->out with its
 * request (fast_reply_sent): a claim's tasks go back (req_reply_failed)
 * should the rest fail, or the client stop reading it (fast_sweep). */
static void fast_request_end(struct fast_conn *c) {
    if (c->gone) req_reply_failed(c->req); /* before req_free, which gives back */
    req_free(c->req);
    c->req = NULL;
    c->head_mono = time_mono_ms();
    free(c->head);
    c->head = NULL;
}

/* Sends what is left of a reply. false when the connection failed. */
static bool fast_flush(struct fast_conn *c) {
    while (c->out_off < c->out_len) {
        ssize_t n = send(c->fd, c->out + c->out_off, c->out_len - c->out_off, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            fast_want_out(c, true);
            return true;
        }
        if (n <= 0) {
            c->gone = true;
            break;
        }
        c->out_off += (size_t)n;
        c->active_mono = time_mono_ms();
    }
    free(c->out);
    c->out = NULL;
    c->out_len = c->out_off = 0;
    if (!c->gone) fast_want_out(c, false);
    return !c->gone;
}

static const char *fast_date(struct fast_thread *th, size_t *len) {
    time_t now = time(NULL);
    if (now != th->date_sec) {
        struct tm tm;
        gmtime_r(&now, &tm);
        th->date_len = strftime(th->date, sizeof th->date, "%a, %d %b %Y %H:%M:%S GMT", &tm);
        th->date_sec = now;
    }
    *len = th->date_len;
    return th->date;
}

void http_fast_reply(struct req *r, int status, char *body, size_t len, const char *type) {
    struct fast_conn *c = r->fast;
    struct buf h;
    buf_init(&h);
    buf_grow(&h, 256);
    /* Literals by buf_put_lit, their lengths known when compiled. */
    buf_put_lit(&h, "HTTP/1.1 ");
    json_put_int(&h, status);
    buf_put_lit(&h, " ");
    buf_puts(&h, http_reason_phrase(status));
    buf_put_lit(&h, "\r\nDate: ");
    size_t date_len;
    const char *date = fast_date(c->th, &date_len);
    buf_put(&h, date, date_len);
    if (type) {
        buf_put_lit(&h, "\r\nContent-Type: ");
        buf_puts(&h, type);
        buf_put_lit(&h, "\r\nX-Content-Type-Options: nosniff");
    }
    for (int i = 0; i < r->nhdr; i++) {
        buf_puts(&h, "\r\n");
        buf_puts(&h, r->hdr_name[i]);
        buf_puts(&h, ": ");
        buf_puts(&h, r->hdr_value[i]);
    }
    if (c->close_after) buf_put_lit(&h, "\r\nConnection: close");
    /* No body, and no Content-Length, for 1xx, 204 and 304 (RFC 9110 8.6). */
    if (status >= 200 && status != 204 && status != 304) {
        buf_put_lit(&h, "\r\nContent-Length: ");
        json_put_int(&h, (int64_t)len);
    } else {
        len = 0;
    }
    buf_put_lit(&h, "\r\n\r\n");
    struct iovec iov[2] = {{h.p, h.len}, {body, len}};
    struct msghdr msg = {.msg_iov = iov, .msg_iovlen = len ? 2 : 1};
    size_t total = h.len + len;
    ssize_t n;
    do
        n = sendmsg(c->fd, &msg, MSG_NOSIGNAL);
    while (n < 0 && errno == EINTR);
    if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK) {
        c->gone = true;
    } else {
        size_t sent = n > 0 ? (size_t)n : 0;
        c->active_mono = time_mono_ms();
        if (sent < total) {
            /* The socket is full: keep the rest for EPOLLOUT. */
            c->out = xmalloc(total - sent);
            size_t k = 0;
            if (sent < h.len) {
                memcpy(c->out, h.p + sent, h.len - sent);
                k = h.len - sent;
            }
            size_t boff = sent > h.len ? sent - h.len : 0;
            if (len > boff) memcpy(c->out + k, body + boff, len - boff);
            c->out_len = total - sent;
            c->out_off = 0;
            fast_flush(c);
        }
    }
    buf_release(&h);
    free(body);
}

/* Ends c's request if its reply is sent whole or cannot be. */
static void fast_reply_sent(struct fast_conn *c) {
    struct req *r = c->req;
    if (r && r->status_sent && !r->suspended && (!c->out || c->gone)) fast_request_end(c);
}

/* Runs a request's handler (or its on_resume) and ends it when it replied. */
static void fast_run(struct fast_conn *c, bool resumed) {
    struct req *r = c->req;
    if (resumed)
        req_resumed(r);
    else
        req_start(r);
    fast_reply_sent(c);
}

static bool fast_route_ok(const struct http_fast *f, const char *method, const char *path) {
    struct path_segs ps;
    route_path_split(path, &ps, false);
    for (size_t i = 0; i < sizeof fast_routes / sizeof fast_routes[0]; i++)
        if (strcmp(fast_routes[i].method, method) == 0 &&
            route_segs_match(&f->routes[i], &ps, NULL))
            return true;
    return false;
}

enum fast_next { NEXT_WAIT, NEXT_FREED, NEXT_STARTED };

/* Takes the request h, at the start of p[0..len), off the socket and starts it. */
static enum fast_next fast_begin(struct fast_conn *c, const struct http_head *h, const char *p,
                                 size_t len) {
    struct fast_thread *th = c->th;
    struct http_fast *f = th->fast;
    size_t total = h->head_len + h->content_length;
    /* The head, copied with NULs after the method, the path and each value,
     * and the body, before p's bytes move. */
    c->head = xmalloc(h->head_len + 1);
    memcpy(c->head, p, h->head_len);
    c->head[h->head_len] = '\0';
    c->h = *h;
    c->head[h->method.off + h->method.len] = '\0';
    c->head[h->path.off + h->path.len] = '\0';
    for (int i = 0; i < h->nfields; i++)
        c->head[h->value[i].off + h->value[i].len] = '\0';
    struct req *r = req_new(f->srv, c->head + h->method.off, c->head + h->path.off);
    r->fast = c;
    if (h->content_length) buf_put(&r->body, p + h->head_len, h->content_length);
    c->req = r;
    c->close_after = h->close;
    c->partial = 0;
    if (c->peek_off) {
        /* The request stays in the socket's queue, behind the peek offset,
         * until FAST_HELD_MAX bytes are: then one discard for them all. What
         * follows it (a pipelined request, or part of one) is kept. */
        size_t rest = len - total;
        if (rest) {
            if (!c->buf) c->buf = xmalloc(th->peek_cap);
            memmove(c->buf, p + total, rest);
        }
        c->len = rest;
        c->held += total;
        if (c->held >= FAST_HELD_MAX) {
            size_t held = c->held;
            c->held = 0;
            if (!fast_discard(c, held)) {
                req_free(r); /* c is gone with it */
                return NEXT_FREED;
            }
        }
    } else {
        /* Taken off now; a pipelined request is peeked again from the start. */
        c->len = 0;
        if (len > total) c->input = true;
        if (!fast_discard(c, total)) {
            req_free(r);
            return NEXT_FREED;
        }
    }
    fast_run(c, false);
    return NEXT_STARTED;
}

/* The next request, of `need` bytes or more, is not all there: it waits
 * in the socket for the rest, with the requests served before it taken
 * off (their bytes would hold the receive window shut), unless it is too
 * large or too slow to wait unread (FAST_PARTIAL_MAX). */
static enum fast_next fast_wait(struct fast_conn *c, size_t need) {
    if (need > FAST_PARTIAL_MAX || c->partial > FAST_PARTIAL_TRIES) {
        fast_hand_on(c);
        return NEXT_FREED;
    }
    if (c->held) {
        size_t held = c->held;
        c->held = 0;
        if (!fast_discard(c, held)) return NEXT_FREED;
    }
    return NEXT_WAIT;
}

/* A head with a NUL in a field line, a control character in a value, or a
 * folded line (HEAD_BAD), which libmicrohttpd cannot be handed: its copy
 * of a line ends at a NUL, and it adds a folded line to the field's name.
 * The 400 libmicrohttpd's side gives a value with any other
 * control character (http.c), in the shape of the API the target's path
 * is in; then the connection closes, the rest of the request unread. */
static enum fast_next fast_refuse(struct fast_conn *c, const struct http_head *h, const char *p) {
    const char *t = p + h->target.off, *tend = t + h->target.len, *path = t;
    if (*t != '/') { /* absolute form: the path after the authority */
        const char *a = memmem(t, h->target.len, "://", 3);
        path = a ? memchr(a + 3, '/', (size_t)(tend - a - 3)) : NULL;
        if (!path) path = tend;
    }
    size_t plen = (size_t)(tend - path), q = 0;
    while (q < plen && path[q] != '?')
        q++;
    size_t ml = h->method.len, nl = h->bad_name.len;
    /* method, path ("/" when none) and the field's name, each NUL-ended */
    char *head = c->head = xmalloc(ml + 1 + (q ? q : 1) + 1 + nl + 1);
    memcpy(head, p + h->method.off, ml);
    head[ml] = '\0';
    char *rp = head + ml + 1;
    memcpy(rp, q ? path : "/", q ? q : 1);
    rp[q ? q : 1] = '\0';
    char *name = rp + (q ? q : 1) + 1;
    memcpy(name, p + h->bad_name.off, nl);
    name[nl] = '\0';
    memset(&c->h, 0, sizeof c->h); /* no fields: http_fast_header finds none */
    struct req *r = req_new(c->th->fast->srv, head, rp);
    r->fast = c;
    c->req = r;
    c->close_after = true;
    struct tm_error e;
    if (h->bad == HEAD_BAD_NUL_NAME && !*name)
        err_set(&e, TM_EINVALID, "", "a header line must not start with a NUL byte");
    else if (h->bad == HEAD_BAD_FOLD)
        err_set(&e, TM_EINVALID, name,
                "header '%.40s' is folded onto another line (obsolete line folding, RFC 9112 "
                "5.2): send it on one line",
                name);
    else if (h->bad == HEAD_BAD_NUL_NAME)
        err_set(&e, TM_EINVALID, name, "header name '%.40s' must not be followed by a NUL byte",
                name);
    else
        err_set(&e, TM_EINVALID, name, HTTP_FIELD_CTL_MESSAGE, name);
    reply_error(r, &e);
    fast_request_end(c);
    return NEXT_STARTED;
}

/* What to do with the bytes p[0..len) of the next request. */
static enum fast_next fast_parse(struct fast_conn *c, const char *p, size_t len) {
    struct http_fast *f = c->th->fast;
    const struct limits *lim = &f->srv->cfg.limits;
    size_t head_max = lim->header_max_bytes ? lim->header_max_bytes : 16 * 1024;
    size_t body_max = lim->body_max_bytes < FAST_BODY_MAX ? lim->body_max_bytes : FAST_BODY_MAX;
    struct http_head h;
    switch (http_head_parse(p, len, head_max, body_max, &h)) {
    case HEAD_PARTIAL:
        return fast_wait(c, len); /* the rest comes with the next EPOLLIN */
    case HEAD_PASS:
        fast_hand_on(c);
        return NEXT_FREED;
    case HEAD_BAD:
        return fast_refuse(c, &h, p);
    case HEAD_OK:
        break;
    }
    char method[8], path[256];
    if (h.path.len >= sizeof path) {
        fast_hand_on(c);
        return NEXT_FREED;
    }
    memcpy(method, p + h.method.off, h.method.len);
    method[h.method.len] = '\0';
    memcpy(path, p + h.path.off, h.path.len);
    path[h.path.len] = '\0';
    if (!fast_route_ok(c->th->fast, method, path)) {
        fast_hand_on(c);
        return NEXT_FREED;
    }
    /* The body is coming: like libmicrohttpd, a request under way gets the
     * long timeout, and the body its deadline from now (head_watch.c). */
    bool due = len < h.head_len + h.content_length;
    if (due && !c->body_due) c->body_mono = time_mono_ms();
    c->body_due = due;
    if (due) {
        c->body_got = (int64_t)(len - h.head_len);
        return fast_wait(c, h.head_len + h.content_length);
    }
    return fast_begin(c, &h, p, len);
}

/* Starts the next request when it is all there: from the bytes kept, or
 * after peeking at what the socket has. */
static enum fast_next fast_next(struct fast_conn *c) {
    struct fast_thread *th = c->th;
    if (c->len) {
        enum fast_next kept = fast_parse(c, c->buf, c->len);
        if (kept != NEXT_WAIT || !c->input) return kept;
    }
    if (!c->input) return NEXT_WAIT;
    c->input = false;
    /* With the peek offset, a peek returns only bytes not seen yet: they go
     * after those kept. Without, it returns the queue from its head. */
    char *to = c->len ? c->buf + c->len : th->peek;
    size_t room = th->peek_cap - c->len;
    ssize_t n;
    do
        n = recv(c->fd, to, room, MSG_PEEK);
    while (n < 0 && errno == EINTR);
    if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK)) {
        fast_close(c);
        return NEXT_FREED;
    }
    if (n < 0) return NEXT_WAIT;
    c->active_mono = time_mono_ms();
    c->partial++;                           /* back to 0 when the request starts (fast_begin) */
    if ((size_t)n == room) c->input = true; /* there may be more than fitted */
    if (c->len) {
        c->len += (size_t)n;
        return fast_parse(c, c->buf, c->len);
    }
    enum fast_next r = fast_parse(c, th->peek, (size_t)n);
    if (r == NEXT_WAIT && c->peek_off) {
        /* Peeked past: keep the part that came, the rest follows it. */
        if (!c->buf) c->buf = xmalloc(th->peek_cap);
        memcpy(c->buf, th->peek, (size_t)n);
        c->len = (size_t)n;
    }
    return r;
}

/* Whatever the connection can do next: close, or take its next request and
 * the ones after it that are answered at once (a loop, not recursion, for
 * a client that pipelines many). */
static void fast_after(struct fast_conn *c) {
    for (;;) {
        if (c->req || (c->out && !c->gone)) return; /* one at a time: the input waits */
        if (c->gone || c->close_after) {
            fast_close(c);
            return;
        }
        if ((!c->input && !c->len) || fast_next(c) != NEXT_STARTED) return;
    }
}

static void fast_accept(struct fast_thread *th) {
    struct http_fast *f = th->fast;
    struct server *srv = f->srv;
    int max = srv->cfg.limits.connections_max > 0 ? srv->cfg.limits.connections_max : 10000;
    for (;;) {
        struct sockaddr_storage ss;
        socklen_t sl = sizeof ss;
        int fd = accept4(srv->listen_fd, (struct sockaddr *)&ss, &sl, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED) continue;
            if (errno == EMFILE || errno == ENFILE) usleep(10 * 1000); /* no busy loop */
            return;
        }
        const struct sockaddr *sa = (const struct sockaddr *)&ss;
        /* Connections handed on count too: --max-connections is for both
         * paths. Its place is taken before the sum is read, so that two
         * threads accepting at once cannot both take the last one. */
        int mine = atomic_fetch_add(&f->nconns, 1) + 1;
        if (mine + atomic_load(&srv->handing) + atomic_load(&srv->mhd_conns) > max ||
            !conn_limit_admit(srv, sa)) {
            atomic_fetch_sub(&f->nconns, 1);
            close(fd);
            continue;
        }
        int one = 1, zero = 0;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        struct fast_conn *c = xcalloc(1, sizeof *c);
        c->peek_off =
            !f->no_peek_off && setsockopt(fd, SOL_SOCKET, SO_PEEK_OFF, &zero, sizeof zero) == 0;
        c->fd = fd;
        c->th = th;
        memcpy(&c->addr, &ss, sl);
        c->addr_len = sl;
        c->active_mono = c->head_mono = time_mono_ms();
        struct epoll_event ev = {.events = EPOLLIN | EPOLLRDHUP | EPOLLET, .data.ptr = c};
        if (epoll_ctl(th->epfd, EPOLL_CTL_ADD, fd, &ev) != 0) {
            atomic_fetch_sub(&f->nconns, 1);
            close(fd);
            free(c);
            continue;
        }
        conn_limit_opened(srv, sa);
        LIST_INSERT_HEAD(&th->conns, c, link);
    }
}

void http_fast_resume(struct req *r) {
    struct fast_conn *c = r->fast;
    struct fast_thread *th = c->th;
    pthread_mutex_lock(&th->lock);
    bool wake = th->ready == NULL; /* else a wake-up is on its way already */
    c->ready_next = th->ready;
    th->ready = c;
    pthread_mutex_unlock(&th->lock);
    if (wake) {
        uint64_t one = 1;
        if (write(th->evfd, &one, sizeof one) < 0) { /* full counter: a wake-up is pending */
        }
    }
}

/* Runs the on_resume of every request the store is done with. */
static void fast_ready(struct fast_thread *th) {
    uint64_t v;
    if (read(th->evfd, &v, sizeof v) < 0) { /* EAGAIN: nothing signalled */
    }
    pthread_mutex_lock(&th->lock);
    struct fast_conn *c = th->ready;
    th->ready = NULL;
    pthread_mutex_unlock(&th->lock);
    while (c) {
        struct fast_conn *next = c->ready_next;
        fast_run(c, true);
        fast_after(c);
        c = next;
    }
}

/* Closes connections idle past the idle timeout (none with a request in
 * progress; one whose reply waits unread for long, its send failed), and
 * those whose next head, or whose request's body, is not all in by its
 * deadline (head_watch.c). */
static void fast_sweep(struct fast_thread *th, int64_t now) {
    struct server *srv = th->fast->srv;
    const struct limits *lim = &srv->cfg.limits;
    int64_t idle_ms = 1000LL * http_idle_seconds(lim);
    int64_t long_ms = 1000LL * http_long_seconds(lim);
    int64_t head_ms = head_watch_limit_ms(srv);
    struct fast_conn *c = LIST_FIRST(&th->conns), *next;
    for (; c; c = next) {
        next = LIST_NEXT(c, link);
        if (c->req && !c->out) continue;
        bool idle = now - c->active_mono > (c->out || c->body_due ? long_ms : idle_ms);
        /* Bytes keep coming, but no request (so no reply waiting either)
         * and its head not all in; or its body not all in. */
        bool head_late = !idle && !c->req && !c->body_due && now - c->head_mono > head_ms;
        bool body_late = !idle && !c->req && c->body_due &&
                         now - c->body_mono > head_watch_body_limit_ms(srv, c->body_got);
        if (!idle && !head_late && !body_late) continue;
        if (head_late) atomic_fetch_add(&srv->head_timeouts, 1);
        if (body_late) atomic_fetch_add(&srv->body_timeouts, 1);
        if (c->req) {
            c->gone = true;
            fast_request_end(c);
        }
        fast_close(c);
    }
    th->swept_mono = now;
}

static void fast_event(struct fast_conn *c, uint32_t events) {
    if (c->fd < 0) return; /* closed earlier in this round */
    if (events & (EPOLLERR | EPOLLHUP)) c->gone = true;
    if (events & (EPOLLIN | EPOLLRDHUP)) c->input = true;
    if ((events & EPOLLOUT) && c->out && !c->gone) fast_flush(c);
    fast_reply_sent(c);
    fast_after(c);
}

static void *fast_main(void *arg) {
    struct fast_thread *th = arg;
    struct epoll_event ev[64];
    while (!atomic_load(&th->fast->stopping)) {
        int n = epoll_wait(th->epfd, ev, 64, 1000);
        for (int i = 0; i < n; i++) {
            if (ev[i].data.ptr == &tag_listen)
                fast_accept(th);
            else if (ev[i].data.ptr == &tag_wake)
                fast_ready(th);
            else
                fast_event(ev[i].data.ptr, ev[i].events);
        }
        int64_t now = time_mono_ms();
        if (now - th->swept_mono >= 1000) fast_sweep(th, now);
        fast_free_dead(th);
    }
    return NULL;
}

int http_fast_start(struct server *srv) {
    struct http_fast *f = xcalloc(1, sizeof *f);
    f->srv = srv;
    const char *np = getenv("TASKMILL_HTTP_NO_PEEK_OFF");
    f->no_peek_off = np && *np && strcmp(np, "0") != 0;
    f->nthreads = srv->cfg.threads > 0 ? srv->cfg.threads : 2;
    for (size_t i = 0; i < sizeof fast_routes / sizeof fast_routes[0]; i++)
        route_path_split(fast_routes[i].pattern, &f->routes[i], true);
    f->th = xcalloc((size_t)f->nthreads, sizeof *f->th);
    srv->fast = f;
    const struct limits *lim = &srv->cfg.limits;
    for (int i = 0; i < f->nthreads; i++) {
        struct fast_thread *th = &f->th[i];
        th->fast = f;
        th->epfd = epoll_create1(EPOLL_CLOEXEC);
        th->evfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
        pthread_mutex_init(&th->lock, NULL);
        LIST_INIT(&th->conns);
        th->peek_cap = (lim->header_max_bytes ? lim->header_max_bytes : 16 * 1024) + FAST_BODY_MAX;
        th->peek = xmalloc(th->peek_cap);
        th->swept_mono = time_mono_ms();
        struct epoll_event lev = {.events = EPOLLIN | EPOLLEXCLUSIVE, .data.ptr = &tag_listen};
        struct epoll_event wev = {.events = EPOLLIN, .data.ptr = &tag_wake};
        if (th->epfd < 0 || th->evfd < 0 ||
            epoll_ctl(th->epfd, EPOLL_CTL_ADD, srv->listen_fd, &lev) != 0 ||
            epoll_ctl(th->epfd, EPOLL_CTL_ADD, th->evfd, &wev) != 0 ||
            pthread_create(&th->tid, NULL, fast_main, th) != 0) {
            fprintf(stderr, "taskmill: cannot start the HTTP threads: %s\n", strerror(errno));
            http_fast_stop(srv);
            return -1;
        }
        th->started = true;
    }
    return 0;
}

void http_fast_stop(struct server *srv) {
    struct http_fast *f = srv->fast;
    if (!f) return;
    atomic_store(&f->stopping, true);
    for (int i = 0; i < f->nthreads; i++) {
        struct fast_thread *th = &f->th[i];
        if (!th->started) continue;
        uint64_t one = 1;
        if (write(th->evfd, &one, sizeof one) < 0) { /* it wakes within a second anyway */
        }
        pthread_join(th->tid, NULL);
    }
    for (int i = 0; i < f->nthreads; i++) {
        struct fast_thread *th = &f->th[i];
        if (!th->fast) continue; /* not set up */
        /* The store is stopped: every op is answered, and those not yet
         * replied to are on the ready list. */
        if (th->started) fast_ready(th);
        while (!LIST_EMPTY(&th->conns)) {
            struct fast_conn *c = LIST_FIRST(&th->conns);
            if (c->req) req_free(c->req);
            fast_close(c);
        }
        fast_free_dead(th);
        if (th->epfd >= 0) close(th->epfd);
        if (th->evfd >= 0) close(th->evfd);
        pthread_mutex_destroy(&th->lock);
        free(th->peek);
    }
    free(f->th);
    free(f);
    srv->fast = NULL;
}
