/*
 * conn_limit: open connections per client address, so that one address
 * cannot take every connection the server has (--max-connections).
 *
 * Whoever accepts a connection asks conn_limit_admit first and tells
 * conn_limit_opened / conn_limit_closed when it starts and ends: the fast
 * path on plain HTTP (http_fast.c), else libmicrohttpd (its accept policy
 * and notify, http.c). A connection the fast path hands to libmicrohttpd
 * stays counted throughout: libmicrohttpd's start takes its count over
 * rather than counting it again. An address holding its cap is refused at
 * accept: the socket is closed at once, counted in refused. The count is
 * per exact address (IPv4, or IPv6 whole); behind a proxy every client is
 * the proxy's address, so there the cap is the proxy's cap (set it with
 * that in mind, or 0 for none).
 *
 * Threading: any fast-path or libmicrohttpd thread; the table is under its
 * own lock.
 * The check at accept and the count at start are two steps, so a burst
 * from one address may pass the cap by the number of threads at most.
 */
#include <netinet/in.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "key_table.h"
#include "server_int.h"

#define CONN_BUCKETS 1024

/* An address's open connections in srv->conns, keyed by conn_key. */
struct conn_addr {
    struct key_entry e;
    int open;
};

/* The address's key (a family tag, then 4 or 16 bytes); false for a family
 * without one (then no cap applies). */
static bool conn_key(const struct sockaddr *sa, unsigned char key[KEY_TABLE_KEY_LEN]) {
    memset(key, 0, KEY_TABLE_KEY_LEN);
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

void conn_limit_init(struct server *srv) {
    key_table_init(&srv->conns, CONN_BUCKETS);
}

void conn_limit_release(struct server *srv) {
    key_table_release(&srv->conns);
}

bool conn_limit_admit(struct server *srv, const struct sockaddr *sa) {
    int cap = srv->cfg.limits.connections_per_address_max;
    unsigned char key[KEY_TABLE_KEY_LEN];
    if (cap <= 0 || !conn_key(sa, key)) return true;
    pthread_mutex_lock(&srv->conns.lock);
    struct conn_addr *a = key_table_find(&srv->conns, key, sizeof key);
    bool ok = !a || a->open < cap;
    pthread_mutex_unlock(&srv->conns.lock);
    if (!ok) atomic_fetch_add(&srv->conns_refused, 1);
    return ok;
}

/* Counts a connection from sa's address opened (+1) or closed (-1); an
 * address leaves the table when its last one closes. */
static void conn_count(struct server *srv, const struct sockaddr *sa, int delta) {
    unsigned char key[KEY_TABLE_KEY_LEN];
    if (!conn_key(sa, key)) return;
    pthread_mutex_lock(&srv->conns.lock);
    struct conn_addr *a = key_table_find(&srv->conns, key, sizeof key);
    if (!a && delta > 0) a = key_table_add(&srv->conns, key, sizeof key, sizeof *a);
    if (a && (a->open += delta) <= 0) key_table_remove(&srv->conns, a);
    pthread_mutex_unlock(&srv->conns.lock);
}

void conn_limit_opened(struct server *srv, const struct sockaddr *sa) {
    conn_count(srv, sa, 1);
}

void conn_limit_closed(struct server *srv, const struct sockaddr *sa) {
    conn_count(srv, sa, -1);
}
