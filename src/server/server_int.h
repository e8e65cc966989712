/*
 * server_int: the server's shared state, for the files of src/server only.
 */
#ifndef TASKMILL_SERVER_INT_H
#define TASKMILL_SERVER_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "http.h"
#include "key_table.h"
#include "log_limit.h"

struct server {
    struct server_config cfg;
    struct store *store;
    void *mhd; /* struct MHD_Daemon */
    int listen_fd;
    struct http_fast *fast; /* http_fast.c: the fast path, NULL when off */
    /* http.c: each route table's patterns split into segments, by table
     * index then route (NULL until the daemon starts). */
    struct route_segs **route_segs;
    size_t nroute_segs;
    int64_t started_mono;
    /* Replies by status class: 2xx, 3xx, 4xx, 5xx. */
    _Atomic uint64_t replies[6];

    /* auth.c */
    _Atomic bool stopping;                /* server_stop began: new requests get 503 */
    _Atomic bool auth_on;                 /* an active token was seen: no open mode */
    _Atomic int64_t auth_checked_mono_ms; /* open mode: the store was last asked then */
    struct key_table rate;                /* a struct rate_bucket per token id */
    _Atomic uint64_t auth_refused[3];     /* refusals: 401, 403, 429 */
    struct log_limit auth_log;            /* refusal lines */
    _Atomic int waiters;                  /* requests counted against waiters_max */
    /* Parked requests per token (key_count_take), for waiters_per_token_max:
     * small, since only tokens with a request parked right now are in it. */
    struct key_table token_waiters;
    /* auth_watch.c: waiting requests with a token, and the thread that
     * cuts them when the token is revoked or expires. */
    pthread_mutex_t wait_lock;
    LIST_HEAD(, req) wait_list;
    pthread_cond_t watch_cond;
    pthread_t watch_thread;
    bool watch_started, watch_cond_ready, watch_stopping;
    size_t watch_next;        /* auth_watch.c: where its next round starts */
    char *tls_cert, *tls_key; /* PEM, kept while libmicrohttpd runs */

    struct key_table conns; /* conn_limit.c: connections per address */
    _Atomic int mhd_conns;  /* libmicrohttpd's open connections (the fast
                             * path's accept counts them with its own) */
    /* Connections the fast path handed to libmicrohttpd that it has not
     * started yet (MHD_add_connection queues them for its thread): still
     * counted, here and under their address, until its notify takes them
     * over, so that --max-connections has no gap between the two counts. */
    _Atomic int handing;
    _Atomic uint64_t conns_refused; /* connections refused for their address's cap */
    /* http.c: bytes held now by the bodies of routes whose credentials
     * are in their body, and the requests refused past the cap. */
    _Atomic int64_t public_body_bytes;
    _Atomic uint64_t public_body_refused;
    /* http.c: bytes of 2xx replies of 16 KiB or more not yet sent whole,
     * over every connection and per token, and the reads refused past
     * --max-unsent-bytes or --max-unsent-bytes-per-token. */
    _Atomic int64_t unsent_bytes;
    struct key_table token_unsent;
    _Atomic uint64_t unsent_refused;
    /* head_watch.c: libmicrohttpd's connections (and those handed to it,
     * not started yet), for the deadline of a request's head. */
    pthread_mutex_t head_lock;
    pthread_cond_t head_cond;
    pthread_t head_thread;
    bool head_ready, head_started, head_stopping;
    LIST_HEAD(, head_conn) head_list;
    _Atomic uint64_t head_timeouts;  /* connections closed for a head past it, both paths */
    _Atomic uint64_t body_timeouts;  /* and for a body past its deadline */
    struct log_limit http_log;       /* http.c: libmicrohttpd's lines */
    struct event_hub *hub;           /* event_hub.c: SSE streams */
    struct webhook_sender *webhooks; /* webhook.c: deliveries */
};

static inline void server_count_reply(struct server *srv, int status) {
    int c = status / 100;
    if (c >= 1 && c <= 5) atomic_fetch_add_explicit(&srv->replies[c], 1, memory_order_relaxed);
}

struct sockaddr;
/* Checks the caller's token against the route's perm (PERM_*), sets
 * r->role and r->ns; 0 to go on, or -1 after replying 401, 403 or 429. */
int auth_check(struct req *r, unsigned perm);
/* Reads whether the store holds tokens (open mode when not). 0 or -1. */
int auth_init(struct server *srv);
/* The store holds a token (one was just made here): the server is closed
 * for good; the token watch cuts what was opened without one. */
void auth_turn_on(struct server *srv);
/* Open mode: is it still open? Asks the store at most once a second. 1
 * open, 0 closed (turned on), -1 unknown (the store could not be read). */
int auth_is_open(struct server *srv);
void auth_release(struct server *srv);

/* http.c: the HTTP daemon on srv->listen_fd with the server's callbacks;
 * stopping it closes the socket. 0, or -1 with a message. */
int http_daemon_start(struct server *srv);
void http_daemon_stop(struct server *srv);
/* http.c: hands an accepted connection, with its next request still unread
 * in the socket, to libmicrohttpd, which serves it from then on (and
 * closes it, also on failure). The caller has counted it in srv->handing
 * and under its address; libmicrohttpd's start takes both counts over, and
 * a refusal here gives them back. */
void http_daemon_take(struct server *srv, int fd, const struct sockaddr *sa, unsigned sa_len,
                      int64_t head_since_mono, int64_t body_since_mono);
/* head_watch.c: the idle timeout (--idle-timeout-seconds, or the long one
 * when unset) and the long one of a request in progress
 * (--max-wait-seconds and 30), both paths. */
int http_idle_seconds(const struct limits *lim);
int http_long_seconds(const struct limits *lim);
/* head_watch.c: a request's head must be all in within head_watch_limit_ms
 * (--head-timeout-seconds, never less than the idle timeout) of its
 * connection's start or of its previous reply's end, and its body within
 * head_watch_body_limit_ms (--body-timeout-seconds, and a second for every
 * --body-min-rate bytes of the `got` that came) of its head's end; the
 * fast path keeps these itself. On libmicrohttpd's connections: opened
 * at its start (the times it was handed on with count from when they
 * started: head_watch_handing before MHD_add_connection, with the body's
 * or 0, head_watch_handing_failed when that fails), head_in at a
 * request's first call, body_part for each piece of its body, body_in at
 * the first call after its body, reply_end at its end, closed at the
 * connection's close. The start and stop go with the daemon's. */
struct head_conn;
int head_watch_start(struct server *srv);
void head_watch_stop(struct server *srv);
int64_t head_watch_limit_ms(const struct server *srv);
int64_t head_watch_body_limit_ms(const struct server *srv, int64_t got);
void head_watch_handing(struct server *srv, int fd, int64_t since_mono, int64_t body_mono);
void head_watch_handing_failed(struct server *srv, int fd);
struct head_conn *head_watch_opened(struct server *srv, int fd);
void head_watch_head_in(struct server *srv, struct head_conn *h);
void head_watch_body_part(struct server *srv, struct head_conn *h, size_t n);
void head_watch_body_in(struct server *srv, struct head_conn *h);
void head_watch_reply_end(struct server *srv, struct head_conn *h);
void head_watch_closed(struct server *srv, struct head_conn *h);
/* The refusal of a field value with a control character, on either path
 * (a printf format for the field's name). */
#define HTTP_FIELD_CTL_MESSAGE "header '%.40s' must not hold a control character (but tab)"
/* http.c: the reason phrase of a status, as libmicrohttpd writes it ("Not Found"). */
const char *http_reason_phrase(int status);

/* http.c, for the two ways a request comes in (libmicrohttpd's and the
 * fast path's): a request for `method` `path` (kept by the caller until
 * req_free); req_start runs it once its body is in r->body (503 while
 * the server stops, else the route's handler); req_resumed runs its
 * on_resume once its ops are done; req_free ends it. */
struct req *req_new(struct server *srv, const char *method, const char *path);
void req_start(struct req *r);
void req_resumed(struct req *r);
void req_free(struct req *r);
/* http.c: whether a route pattern matches the path; captures its ':'
 * segments into r, unless r is NULL. */
bool route_match(const char *pattern, const char *path, struct req *r);
/* http.c: route_match in two steps, for one path tried against many
 * patterns: a path, or a pattern, split at each '/' into what follows it
 * up to the next ("/v1/tasks/x": "v1", "tasks", "x"; a pattern's ':'
 * segments have seg NULL), then a pattern's segments against a path's. */
#define ROUTE_MAX_SEGS 8 /* a route's; a longer path matches none */
struct path_segs {
    int n; /* -1: not starting with '/'; -2: more than ROUTE_MAX_SEGS */
    const char *seg[ROUTE_MAX_SEGS];
    size_t len[ROUTE_MAX_SEGS];
};
void route_path_split(const char *s, struct path_segs *ps, bool pattern);
bool route_segs_match(const struct path_segs *pat, const struct path_segs *path, struct req *r);

/*
 * http_fast.c: taskmill's own HTTP/1.1 path for the hot v1 requests (submit,
 * read, claim, heartbeat, complete and fail, one at a time or batched), on
 * plain HTTP. It accepts the connections; a request it does not serve
 * (http_head.h) is left unread and the connection handed to libmicrohttpd,
 * but for a head libmicrohttpd cannot be handed (a NUL, a control
 * character, a folded line), which it answers with a 400 itself.
 * docs/operations.md, "The HTTP path".
 */
struct http_fast;
struct fast_conn;
/* Starts its threads on srv->listen_fd: 0, or -1 with a message. */
int http_fast_start(struct server *srv);
/* Stops the threads and closes its connections (not the listen socket). */
void http_fast_stop(struct server *srv);
const char *http_fast_header(struct fast_conn *c, const char *name);
const struct sockaddr *http_fast_client_addr(struct fast_conn *c);
int http_fast_fd(struct fast_conn *c);
/* Sends r's reply (takes body, a malloc'd buffer or NULL). */
void http_fast_reply(struct req *r, int status, char *body, size_t len, const char *type);
/* From any thread: r's ops are done; its thread runs its on_resume. */
void http_fast_resume(struct req *r);

/* auth_watch.c: lists a waiting request (its ops[0..n) that wait, kept
 * alive until it is removed) under its token, if it has one; removes it
 * before libmicrohttpd frees it. The watch answers those ops with 401 and
 * ends the token's event streams within a second of a revocation. */
void auth_wait_add(struct req *r, struct store_op *ops, size_t n);
void auth_wait_remove(struct req *r);
/* Whether r's client has closed its end of the connection, or reset it. */
bool req_client_gone(struct req *r);
/* r's reply could not be sent whole (a send failed, the connection ended
 * before): the tasks its claims leased go back to their queues when it is
 * freed, as a withdrawn claim's do. Called by each HTTP path before
 * req_free, which is where they go back. */
void req_reply_failed(struct req *r);
int auth_watch_start(struct server *srv);
void auth_watch_stop(struct server *srv);

/* conn_limit.c: connections per client address (limits.connections_per_address_max). */
void conn_limit_init(struct server *srv);
void conn_limit_release(struct server *srv);
/* The accept policy: false (counted in conns_refused) when the address holds its cap. */
bool conn_limit_admit(struct server *srv, const struct sockaddr *sa);
void conn_limit_opened(struct server *srv, const struct sockaddr *sa);
void conn_limit_closed(struct server *srv, const struct sockaddr *sa);

/* v1_queues.c: the queue name in the path (r->param[0]), or NULL after a 400 naming 'queue'. */
const char *v1_path_queue(struct req *r);
/* v1_tasks.c: the task id in the path (r->param[0]), or NULL after a 404. */
const char *v1_path_task_id(struct req *r);
/* v1_tasks.c: the task `id` in the caller's namespace, read now; NULL after
 * replying with the store's error (404 when there is none). Caller frees. */
struct task *v1_task_read(struct req *r, const char *id);
/* v1_tasks.c: inits r->op as a `kind` op on the task `id` in the caller's namespace. */
void v1_task_op_init(struct req *r, enum store_op_kind kind, const char *id);
bool auth_addr_is_loopback(const struct sockaddr *sa);

#endif
