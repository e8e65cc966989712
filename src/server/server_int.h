/*
 * server_int: the server's shared state, for the files of src/server only.
 */
#ifndef TASKMILL_SERVER_INT_H
#define TASKMILL_SERVER_INT_H

#include <stdatomic.h>
#include <stdint.h>

#include "http.h"

struct server {
    struct server_config cfg;
    struct store *store;
    void *mhd; /* struct MHD_Daemon */
    int listen_fd;
    int64_t started_mono;
    /* Replies by status class: 2xx, 3xx, 4xx, 5xx. */
    _Atomic uint64_t replies[6];
};

static inline void server_count_reply(struct server *srv, int status)
{
    int c = status / 100;
    if (c >= 1 && c <= 5) atomic_fetch_add_explicit(&srv->replies[c], 1, memory_order_relaxed);
}

#endif
