/*
 * server: the server's configuration, and starting and stopping it
 * (server.c): the store, auth, the event hub, the webhook senders and the
 * HTTP daemon (http.c), in that order, and back. The `serve` command fills
 * a server_config (with the compatibility views' route tables) and calls
 * server_start.
 */
#ifndef TASKMILL_SERVER_H
#define TASKMILL_SERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct buf;
struct server;
struct route_table;
struct webhook_delivery;

/* Request limits (docs/security.md lists them with their flags). */
struct limits {
    size_t body_max_bytes;
    size_t
        public_body_max_bytes; /* bodies read before their credentials are checked, all at once */
    int json_max_depth;
    int batch_max;
    int page_max;
    int wait_max_seconds;
    size_t string_max_bytes;
    int items_max_per_call;
    int messages_max_per_call;
    size_t header_max_bytes; /* a connection's memory: request line and headers */
    int connections_max;
    int connections_per_address_max; /* open connections from one address; 0 = no cap */
    int idle_timeout_seconds;        /* a connection without a request in progress */
    int head_timeout_seconds;  /* a request's head, from its connection's start or last reply */
    int body_timeout_seconds;  /* its body, from its head's end ... */
    size_t body_min_rate;      /* ... and a second more for each this many bytes that came */
    int waiters_max;           /* requests parked in a long-poll or a waiting claim */
    int waiters_per_token_max; /* of those, from one token; 0 = no cap */
    int rate_per_token;        /* requests per second per token; 0 = no limit */
    int streams_max;           /* open SSE streams; 0 = no cap */
    int streams_per_token_max; /* of those, of one token; 0 = no cap */
    size_t unsent_max_bytes;   /* reads' replies not yet sent whole; 0 = no cap */
    size_t unsent_per_token_max_bytes; /* of those, of one token; 0 = no cap */
    int webhooks_max;                  /* webhooks per namespace */
    int attributes_max_keys;           /* keys of a task's attributes */
    size_t attributes_max_bytes;       /* a task's attributes as JSON text */
    int query_timeout_ms;              /* how long one list query may run on a reader */
    int finished_max_age_seconds;      /* finished tasks are deleted after this (0: kept) */
};

/* The event log, SSE streams and webhooks (docs/events.md); 0 = default. */
struct events_config {
    int buffer_events;              /* events kept in memory for streams (4096) */
    int64_t buffer_bytes;           /* their frames' bytes at most (64 MiB) */
    int64_t task_max_bytes;         /* task JSON carried by one event (64 KiB) */
    int keepalive_ms;               /* SSE comment when idle this long (15000) */
    int64_t max_age_ms;             /* event retention by age (7 days; <0 keeps) */
    int64_t max_count;              /* event retention by count (1000000; <0 keeps) */
    bool webhook_allow_private;     /* let webhooks reach loopback/private addresses */
    int64_t webhook_backoff_ms;     /* first retry delay, doubling (5000) */
    int64_t webhook_backoff_max_ms; /* (3600000) */
    int webhook_max_attempts;       /* (34: the first and 33 retries, as Livepeer) */
    int64_t webhook_timeout_ms;     /* per attempt (10000) */
    int webhook_senders;            /* sender workers, one webhook each at a time (4) */
    /* Writes the body of one delivery attempt (Livepeer's shape, from
     * src/compat, set by `serve`); NULL: webhook.c's plain v1 body. */
    void (*webhook_body)(struct buf *b, const struct webhook_delivery *d, int64_t now);
};

struct server_config {
    const char *listen; /* host:port */
    const char *store_url;
    const char *store_shown; /* store_url as messages may show it (no password); NULL: store_url */
    int threads;
    bool relaxed;
    int relaxed_flush_ms;  /* SQLite, relaxed: flush its commits this often; 0: never */
    bool sqlite_exclusive; /* store_options.sqlite_exclusive */
    int read_cache_mb;     /* rendered tasks kept for reads (SQLite); 0: none */
    bool reuse_port;       /* share the port with other nodes on this machine (SO_REUSEPORT) */
    bool http_fast_off;    /* every request through libmicrohttpd (no fast path) */
    struct limits limits;
    const char *tls_cert_path, *tls_key_path; /* PEM files; both or neither */
    bool insecure_no_auth;                    /* serve any address without tokens */
    struct events_config events;
    /* The compatibility views' route tables, after v1's (NULL-ended, or
     * NULL for none): the `serve` command hands them in. */
    const struct route_table *views;
};

/* Starts serving; prints the listening line. Returns 0 or -1. */
int server_start(const struct server_config *cfg, struct server **out);
/* Stops accepting, answers parked requests, stops the store, frees. */
void server_stop(struct server *srv);

#endif
