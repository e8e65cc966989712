/*
 * conn_limit: open connections per client address, so that one address
 * cannot take every connection the server has (--max-connections).
 *
 * libmicrohttpd asks conn_limit_admit before it accepts a connection (its
 * accept policy) and tells conn_limit_opened / conn_limit_closed when a
 * connection starts and ends. An address holding its cap is refused at
 * accept: the socket is closed at once, counted in refused. The count is
 * per exact address (IPv4, or IPv6 whole); behind a proxy every client is
 * the proxy's address, so there the cap is the proxy's cap (set it with
 * that in mind, or 0 for none).
 *
 * Threading: any libmicrohttpd thread; the table is under its own lock.
 * The check at accept and the count at start are two steps, so a burst
 * from one address may pass the cap by the number of threads at most.
 */
#include <netinet/in.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "../common/xalloc.h"
#include "server_int.h"

#define CONN_BUCKETS 1024

struct conn_addr {
    unsigned char key[17]; /* family tag, then 4 or 16 bytes */
    int open;
    struct conn_addr *next;
};

struct conn_limit {
    pthread_mutex_t lock;
    struct conn_addr *bucket[CONN_BUCKETS];
};

/* The address's key; false for a family without one (then no cap applies). */
static bool conn_key(const struct sockaddr *sa, unsigned char key[17]) {
    memset(key, 0, 17);
    if (!sa) return false;
    if (sa->sa_family == AF_INET) {
        key[0] = 4;
        memcpy(key + 1, &((const struct sockaddr_in *)sa)->sin_addr, 4);
        return true;
    }
    if (sa->sa_family == AF_INET6) {
        key[0] = 6;
        memcpy(key + 1, &((const struct sockaddr_in6 *)sa)->sin6_addr, 16);
        return true;
    }
    return false;
}

static struct conn_addr **conn_slot(struct conn_limit *cl, const unsigned char key[17]) {
    uint32_t h = 2166136261u;
    for (int i = 0; i < 17; i++)
        h = (h ^ key[i]) * 16777619u;
    struct conn_addr **pp = &cl->bucket[h % CONN_BUCKETS];
    while (*pp && memcmp((*pp)->key, key, 17) != 0)
        pp = &(*pp)->next;
    return pp;
}

void conn_limit_init(struct server *srv) {
    srv->conns = xcalloc(1, sizeof *srv->conns);
    pthread_mutex_init(&srv->conns->lock, NULL);
}

void conn_limit_release(struct server *srv) {
    struct conn_limit *cl = srv->conns;
    if (!cl) return;
    for (size_t i = 0; i < CONN_BUCKETS; i++) {
        while (cl->bucket[i]) {
            struct conn_addr *a = cl->bucket[i];
            cl->bucket[i] = a->next;
            free(a);
        }
    }
    pthread_mutex_destroy(&cl->lock);
    free(cl);
    srv->conns = NULL;
}

bool conn_limit_admit(struct server *srv, const struct sockaddr *sa) {
    int cap = srv->cfg.limits.connections_per_address_max;
    unsigned char key[17];
    if (cap <= 0 || !conn_key(sa, key)) return true;
    struct conn_limit *cl = srv->conns;
    pthread_mutex_lock(&cl->lock);
    struct conn_addr *a = *conn_slot(cl, key);
    bool ok = !a || a->open < cap;
    pthread_mutex_unlock(&cl->lock);
    if (!ok) atomic_fetch_add(&srv->conns_refused, 1);
    return ok;
}

/* Counts a connection from sa's address opened (+1) or closed (-1); an
 * address leaves the table when its last one closes. */
static void conn_count(struct server *srv, const struct sockaddr *sa, int delta) {
    unsigned char key[17];
    if (!conn_key(sa, key)) return;
    struct conn_limit *cl = srv->conns;
    pthread_mutex_lock(&cl->lock);
    struct conn_addr **pp = conn_slot(cl, key);
    if (!*pp && delta > 0) {
        *pp = xcalloc(1, sizeof **pp);
        memcpy((*pp)->key, key, 17);
    }
    if (*pp && ((*pp)->open += delta) <= 0) {
        struct conn_addr *a = *pp;
        *pp = a->next;
        free(a);
    }
    pthread_mutex_unlock(&cl->lock);
}

void conn_limit_opened(struct server *srv, const struct sockaddr *sa) {
    conn_count(srv, sa, 1);
}

void conn_limit_closed(struct server *srv, const struct sockaddr *sa) {
    conn_count(srv, sa, -1);
}
