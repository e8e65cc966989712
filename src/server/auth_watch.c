/*
 * auth_watch: a revoked or expired token loses what it holds open.
 *
 * auth_check admits each request once, at its start; a long-poll, a
 * waiting claim or an event stream then lives on for minutes. The watch
 * keeps a list of the waiting requests that came with a token (auth_wait_add
 * before their ops reach the store, auth_wait_remove when libmicrohttpd
 * frees them) and, every AUTH_WATCH_MS while authentication is on, reads
 * each distinct token among them and among the hub's open streams from
 * the store. For a token that is gone, revoked or expired it asks the
 * store to answer its parked ops with 401 (store_op_cancel) and the hub
 * to end its streams: within a second of the revocation, on whichever
 * node the request waits, since each node reads the shared store.
 *
 * A store that cannot be read cuts nothing (as auth_check, which answers
 * 503 then, never "allowed": the request was allowed already).
 * Threading: one watch thread; the list is under srv->wait_lock, taken
 * before no other lock is held; store_op_cancel and the hub take their own.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../common/timeutil.h"
#include "../common/token.h"
#include "../common/xalloc.h"
#include "../store/store.h"
#include "event_hub.h"
#include "server_int.h"

#define AUTH_WATCH_MS 500
/* The most distinct tokens one round reads; the rest wait for the next. */
#define AUTH_WATCH_TOKENS 256

void auth_wait_add(struct req *r, struct store_op *ops, size_t n) {
    if (!r->token_id[0] || r->wait_listed) return;
    struct server *srv = r->srv;
    r->wait_ops = ops;
    r->nwait_ops = n;
    pthread_mutex_lock(&srv->wait_lock);
    LIST_INSERT_HEAD(&srv->wait_list, r, wait_link);
    r->wait_listed = true;
    pthread_mutex_unlock(&srv->wait_lock);
}

void auth_wait_remove(struct req *r) {
    if (!r->wait_listed) return;
    struct server *srv = r->srv;
    pthread_mutex_lock(&srv->wait_lock);
    LIST_REMOVE(r, wait_link);
    r->wait_listed = false;
    pthread_mutex_unlock(&srv->wait_lock);
}

/* Adds id to ids[0..*n) unless there or full. */
static void ids_add(char (*ids)[TOKEN_ID_LEN + 1], size_t *n, const char *id) {
    for (size_t i = 0; i < *n; i++)
        if (strcmp(ids[i], id) == 0) return;
    if (*n < AUTH_WATCH_TOKENS) snprintf(ids[(*n)++], TOKEN_ID_LEN + 1, "%s", id);
}

/* Whether the token may still hold requests open: false when it is
 * unknown, revoked or expired; true also when the store cannot say. */
static bool token_alive(struct server *srv, const char *id, int64_t now) {
    struct token *t = NULL;
    struct tm_error e;
    err_clear(&e);
    int rc = store_token_get(srv->store, id, &t, &e);
    if (rc) return rc != TM_ENOT_FOUND;
    bool alive = !t->revoked_at && !(t->expires_at && t->expires_at <= now);
    token_free(t);
    return alive;
}

/* One round: reads the tokens that hold something open, cuts the dead ones. */
static void auth_watch_round(struct server *srv) {
    char(*ids)[TOKEN_ID_LEN + 1] = xcalloc(AUTH_WATCH_TOKENS, sizeof *ids);
    size_t n = 0;
    struct req *r;
    pthread_mutex_lock(&srv->wait_lock);
    LIST_FOREACH(r, &srv->wait_list, wait_link)
    ids_add(ids, &n, r->token_id);
    pthread_mutex_unlock(&srv->wait_lock);
    char(*streams)[TOKEN_ID_LEN + 1] = xcalloc(AUTH_WATCH_TOKENS, sizeof *streams);
    size_t ns = event_hub_stream_tokens(srv->hub, streams, AUTH_WATCH_TOKENS);
    for (size_t i = 0; i < ns; i++)
        ids_add(ids, &n, streams[i]);
    free(streams);
    int64_t now = time_now_ms();
    for (size_t i = 0; i < n; i++) {
        if (token_alive(srv, ids[i], now)) continue;
        size_t cut = 0;
        pthread_mutex_lock(&srv->wait_lock);
        LIST_FOREACH(r, &srv->wait_list, wait_link) {
            if (strcmp(r->token_id, ids[i]) != 0) continue;
            for (size_t k = 0; k < r->nwait_ops; k++) {
                if (r->wait_ops[k].deadline_ms <= 0) continue;
                store_op_cancel(srv->store, &r->wait_ops[k], TM_EUNAUTHENTICATED,
                                "the token was revoked or has expired");
                cut++;
            }
        }
        pthread_mutex_unlock(&srv->wait_lock);
        size_t ended = event_hub_end_token(srv->hub, ids[i]);
        if (cut || ended)
            fprintf(stderr,
                    "taskmill: auth: token '%s' is revoked or expired: %zu waiting request(s) "
                    "answered 401, %zu event stream(s) ended\n",
                    ids[i], cut, ended);
    }
    free(ids);
}

static void *auth_watch_main(void *arg) {
    struct server *srv = arg;
    pthread_mutex_lock(&srv->wait_lock);
    while (!srv->watch_stopping) {
        time_cond_wait_ms(&srv->watch_cond, &srv->wait_lock, AUTH_WATCH_MS);
        if (srv->watch_stopping || !atomic_load(&srv->auth_on)) continue;
        pthread_mutex_unlock(&srv->wait_lock);
        auth_watch_round(srv);
        pthread_mutex_lock(&srv->wait_lock);
    }
    pthread_mutex_unlock(&srv->wait_lock);
    return NULL;
}

int auth_watch_start(struct server *srv) {
    time_cond_init(&srv->watch_cond);
    srv->watch_cond_ready = true;
    if (pthread_create(&srv->watch_thread, NULL, auth_watch_main, srv) != 0) {
        fprintf(stderr, "taskmill: cannot start the token watch\n");
        return -1;
    }
    srv->watch_started = true;
    return 0;
}

void auth_watch_stop(struct server *srv) {
    if (srv->watch_started) {
        pthread_mutex_lock(&srv->wait_lock);
        srv->watch_stopping = true;
        pthread_cond_signal(&srv->watch_cond);
        pthread_mutex_unlock(&srv->wait_lock);
        pthread_join(srv->watch_thread, NULL);
        srv->watch_started = false;
    }
    if (srv->watch_cond_ready) pthread_cond_destroy(&srv->watch_cond);
    srv->watch_cond_ready = false;
}
