/*
 * client_int: what the files of libtaskmill share (client.c, watch.c) and
 * nobody else includes. (sse.h, the pure SSE parser, is separate so that
 * its tests and fuzz target need no libcurl.)
 *
 * The HTTP plumbing over libcurl: a growable reply buffer, an easy handle
 * set up with the client's URL and token, and the one function that turns
 * a reply's status and body into the client's last error. Same threading
 * and ownership rules as taskmill.h.
 */
#ifndef TASKMILL_CLIENT_INT_H
#define TASKMILL_CLIENT_INT_H

#include <curl/curl.h>

#include "taskmill.h"

struct tm_client {
    char *url;   /* no trailing slash */
    char *token; /* NULL when none */
    CURL *curl;  /* reused between calls, so connections are kept alive */
    struct tm_client_error err;
    tm_abort_fn abort_fn; /* tm_client_set_abort; NULL when none */
    void *abort_arg;
    long timeout_ms;  /* tm_client_set_timeout; 0: the defaults */
    size_t reply_max; /* tm_client_set_reply_max; 0: CLIENT_REPLY_MAX_BYTES */
};

/* The largest reply body a call accepts unless tm_client_set_reply_max says otherwise. */
#define CLIENT_REPLY_MAX_BYTES ((size_t)64 * 1024 * 1024)

/* A reply body being received, NUL-terminated; at most `max` bytes (0: no limit). */
struct client_buf {
    char *p;
    size_t len, cap;
    size_t max;
    bool too_big; /* more than max came: the transfer was stopped */
};

/* Appends n bytes; false (and too_big set, nothing added) when that would pass max. */
bool client_buf_append(struct client_buf *b, const char *data, size_t n);
/* Frees the bytes; max stays. */
void client_buf_release(struct client_buf *b);

/*
 * Sets up `easy` (reset first) for `method` on c->url + path with the
 * token, `body` (NUL-terminated JSON or NULL) and a reply into `b`; *h
 * receives the header list, which the caller frees after the transfer.
 * `extra` (NULL-ended "Name: value" lines, may be NULL) adds headers; an
 * Accept among them replaces the default application/json. A timeout_s
 * of 0 means no limit on the whole transfer. Sets b's max to the client's
 * reply limit.
 */
void client_easy_setup(struct tm_client *c, CURL *easy, const char *method, const char *path,
                       const char *body, long timeout_s, struct client_buf *b,
                       struct curl_slist **h, const char *const *extra);

/*
 * Records the outcome of a finished transfer in c->err and returns 0 for
 * a 2xx reply (setting *out to the parsed body, NULL when empty; out may
 * be NULL) or the negative code (TM_CLIENT_EPROTOCOL when b went over its
 * max). retry_after_ms is the reply's (client_retry_after_ms: 0 but on a
 * 429 or a 503), kept in c->err.
 */
int client_finish(struct tm_client *c, int64_t retry_after_ms, CURLcode rc, long status,
                  const struct client_buf *b, json_t **out);
/* The Retry-After of the reply `easy` (may be NULL: 0) received last, of status `status`, in
 * milliseconds; 0 when it has none, and for any status but 429 and 503. */
int64_t client_retry_after_ms(CURL *easy, long status);

/* Sets c->err to a local error (no reply) and returns code. */
int client_fail(struct tm_client *c, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Sets c->err to the refusal of a bad argument, naming it in err.field as the server names
 * a request's field, and returns TM_CLIENT_EINVALID; nothing is sent. */
int client_fail_arg(struct tm_client *c, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Percent-encodes s for a path segment or query value; caller frees. */
char *client_escape(const char *s);

#endif
