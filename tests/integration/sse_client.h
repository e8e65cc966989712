/*
 * sse_client: a small Server-Sent Events reader for the event tests.
 *
 * Speaks HTTP/1.0 over a plain socket, so the stream is the raw body with
 * no chunking, and parses `id:`, `event:`, `data:` lines and comments.
 * Header-only (static functions) because each test binary is one file plus
 * the harness. Single-threaded per connection; the caller frees with
 * sse_close. Errors are returned, never asserted.
 */
#ifndef TASKMILL_TEST_SSE_CLIENT_H
#define TASKMILL_TEST_SSE_CLIENT_H

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

struct sse_conn {
    int fd;
    char *buf;
    size_t len, cap;
    bool headers_done, eof;
    int status;
    int comments;    /* comment lines seen (keep-alives and others) */
    char head[1024]; /* the reply's head (its first 1,023 bytes) */
    char last_comment[160];
    long long last_id; /* the last `id:` seen, in any block (a browser's last event ID); -1: none */
};

struct sse_event {
    long long id; /* -1 when the event had no id line */
    char event[48];
    char *data; /* malloc'd; sse_event_clear frees */
};

static inline void sse_event_clear(struct sse_event *ev) {
    free(ev->data);
    memset(ev, 0, sizeof *ev);
    ev->id = -1;
}

static inline long long sse_now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Connects to url ("http://127.0.0.1:PORT") and asks for path. last_id < 0: no Last-Event-ID.
 * rcvbuf > 0 sets a small receive buffer (a slow consumer). `header` is one
 * more request header line ("Authorization: Bearer ..."), or NULL. 0 or -1. */
static inline int sse_open_with(struct sse_conn *c, const char *url, const char *path,
                                long long last_id, int rcvbuf, const char *header) {
    memset(c, 0, sizeof *c);
    c->fd = -1;
    c->last_id = -1;
    const char *hp = strstr(url, "://");
    hp = hp ? hp + 3 : url;
    char host[64];
    int port = 0;
    if (sscanf(hp, "%63[^:]:%d", host, &port) != 2) return -1;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return -1;
    if (rcvbuf > 0) setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    inet_pton(AF_INET, host, &sa.sin_addr);
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa)) {
        close(fd);
        return -1;
    }
    char req[1024];
    int n = snprintf(req, sizeof req,
                     "GET %s HTTP/1.0\r\nHost: %s\r\nAccept: text/event-stream\r\n", path, host);
    if (last_id >= 0)
        n += snprintf(req + n, sizeof req - (size_t)n, "Last-Event-ID: %lld\r\n", last_id);
    if (header) n += snprintf(req + n, sizeof req - (size_t)n, "%s\r\n", header);
    n += snprintf(req + n, sizeof req - (size_t)n, "\r\n");
    if (write(fd, req, (size_t)n) != n) {
        close(fd);
        return -1;
    }
    c->fd = fd;
    c->cap = 1 << 16;
    c->buf = malloc(c->cap);
    c->buf[0] = '\0';
    return 0;
}

static inline int sse_open(struct sse_conn *c, const char *url, const char *path, long long last_id,
                           int rcvbuf) {
    return sse_open_with(c, url, path, last_id, rcvbuf, NULL);
}

static inline void sse_close(struct sse_conn *c) {
    if (c->fd >= 0) close(c->fd);
    free(c->buf);
    c->fd = -1;
    c->buf = NULL;
}

/* Reads more bytes, waiting at most timeout_ms. 1 read, 0 timeout, -1 closed. */
static inline int sse_fill(struct sse_conn *c, int timeout_ms) {
    if (c->eof) return -1;
    struct pollfd p = {.fd = c->fd, .events = POLLIN};
    int pr = poll(&p, 1, timeout_ms);
    if (pr == 0) return 0;
    if (pr < 0) return errno == EINTR ? 0 : -1;
    if (c->len + 8192 > c->cap) {
        c->cap *= 2;
        c->buf = realloc(c->buf, c->cap);
    }
    ssize_t n = read(c->fd, c->buf + c->len, c->cap - c->len - 1);
    if (n <= 0) {
        c->eof = true;
        return -1;
    }
    c->len += (size_t)n;
    c->buf[c->len] = '\0';
    return 1;
}

static inline void sse_consume(struct sse_conn *c, size_t n) {
    memmove(c->buf, c->buf + n, c->len - n);
    c->len -= n;
    c->buf[c->len] = '\0';
}

/*
 * The next event (comments are counted, not returned). 1 with ev filled,
 * 0 on timeout, -1 when the stream ended (or the status was not 200).
 */
static inline int sse_next(struct sse_conn *c, struct sse_event *ev, int timeout_ms) {
    long long deadline = sse_now_ms() + timeout_ms;
    sse_event_clear(ev);
    for (;;) {
        if (c->buf && !c->headers_done) {
            char *end = strstr(c->buf, "\r\n\r\n");
            if (end) {
                sscanf(c->buf, "HTTP/%*s %d", &c->status);
                snprintf(c->head, sizeof c->head, "%.*s", (int)(end - c->buf), c->buf);
                c->headers_done = true;
                sse_consume(c, (size_t)(end + 4 - c->buf));
                if (c->status != 200) return -1;
            }
        }
        if (c->headers_done) {
            char *end = strstr(c->buf, "\n\n");
            if (end) {
                size_t blen = (size_t)(end - c->buf) + 2;
                char *block = strndup(c->buf, blen - 2);
                sse_consume(c, blen);
                bool any = false;
                long long block_id = -1;
                for (char *line = strtok(block, "\n"); line; line = strtok(NULL, "\n")) {
                    if (line[0] == ':') {
                        c->comments++;
                        snprintf(c->last_comment, sizeof c->last_comment, "%s", line);
                    } else if (strncmp(line, "id: ", 4) == 0) {
                        block_id = atoll(line + 4);
                        c->last_id = block_id;
                        any = true;
                    } else if (strncmp(line, "event: ", 7) == 0) {
                        snprintf(ev->event, sizeof ev->event, "%s", line + 7);
                        any = true;
                    } else if (strncmp(line, "data: ", 6) == 0) {
                        free(ev->data);
                        ev->data = strdup(line + 6);
                        any = true;
                    }
                }
                free(block);
                /* A block without data (a keep-alive's id) dispatches nothing:
                 * its id is only the connection's last_id. */
                if (any && ev->data) {
                    ev->id = block_id;
                    return 1;
                }
                sse_event_clear(ev);
                continue;
            }
        }
        long long left = deadline - sse_now_ms();
        if (left <= 0) return 0;
        int r = sse_fill(c, (int)left);
        if (r < 0) return -1;
    }
}

/*
 * Reads until the stream has started: its head and its first comment (the
 * server's opening line) are in, an event has come, the stream has ended
 * or timeout_ms have passed. A deadline, not a speed: a loaded machine can
 * take more than a few hundred ms to answer. Returns sse_next's last
 * answer: 0 (started, or the deadline: then c->status or c->comments
 * says), 1 with an event in ev, -1 when the stream ended.
 */
static inline int sse_started(struct sse_conn *c, struct sse_event *ev, int timeout_ms) {
    long long deadline = sse_now_ms() + timeout_ms;
    int r = 0;
    while (r == 0 && !(c->headers_done && c->comments > 0)) {
        long long left = deadline - sse_now_ms();
        if (left <= 0) break;
        r = sse_next(c, ev, left < 100 ? (int)left : 100);
    }
    return r;
}

#endif
