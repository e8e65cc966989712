/*
 * auth_watch: a revoked or expired token loses what it holds open.
 *
 * auth_check admits each request once, at its start; a long-poll, a
 * waiting claim or an event stream then lives on for minutes. The watch
 * keeps a list of the waiting requests (auth_wait_add before their ops
 * reach the store, auth_wait_remove when libmicrohttpd frees them) and,
 * every AUTH_WATCH_MS while authentication is on, reads the distinct
 * tokens among them and among the hub's open streams from the store,
 * AUTH_WATCH_TOKENS a round, in turn (ids sorted, the next round going on
 * from where this one stopped). For a token that is gone, revoked or
 * expired it asks the store to answer its parked ops with 401
 * (store_op_cancel) and the hub to end its streams: within a second of
 * the revocation while fewer than AUTH_WATCH_TOKENS tokens hold anything
 * open (a second more for each AUTH_WATCH_TOKENS beyond), on whichever
 * node the request waits, since each node reads the shared store. What
 * was opened without a token, while the server was open, is cut in its
 * turn once it is closed, as a revoked token's is; while it is open, the
 * watch asks the store whether a token has appeared (at most once a
 * second), so that happens with no request coming.
 *
 * The same watch, every AUTH_WATCH_MS whatever the authentication, looks
 * at each waiting request's socket: a client that has closed its end
 * (a worker stopped, a timeout of its own) gets its parked ops answered
 * (store_op_cancel), so that a claim it left does not lease a task to no
 * one, held until the lease runs out, up to --max-wait-seconds later.
 *
 * A claim that was served all the same (a task came just as its client
 * went, or its client went as the reply was sent) is given back to its
 * queue as a release gives it (pending again, no retry counted, the lease
 * token void, a message saying why), when the request ends
 * (auth_wait_remove) if the server knows its reply did not reach a live
 * client: the store found the client gone once the claim had committed
 * (store_op.withdrawn; each claim's handler also looks just before its
 * reply), sending the reply failed (req_reply_failed, which both HTTP
 * paths call before they free the request: libmicrohttpd's end other than
 * COMPLETED_OK, the fast path's failed send), no reply was sent, or the
 * socket was reset after the reply (the client's kernel refused it). A
 * reply the kernel accepted whole (the fast path keeps the request until
 * its last byte is taken) and nothing refused is taken as delivered: a
 * client that goes after that point, or whose reset comes back after the
 * request ended, holds its task until the lease runs out.
 *
 * A store that cannot be read cuts nothing (as auth_check, which answers
 * 503 then, never "allowed": the request was allowed already).
 * Threading: one watch thread; the list is under srv->wait_lock, taken
 * before no other lock is held; store_op_cancel and the hub take their own.
 */
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../common/id.h"
#include "../common/timeutil.h"
#include "../common/token.h"
#include "../common/xalloc.h"
#include "../store/store.h"
#include "event_hub.h"
#include "server_int.h"

#define AUTH_WATCH_MS 500
/* The most distinct tokens one round reads; the others wait their turn. */
#define AUTH_WATCH_TOKENS 256

/* Whether the peer of socket fd has closed its end, or the socket failed. */
static bool client_gone(int fd) {
    if (fd < 0) return false;
    struct pollfd p = {.fd = fd, .events = POLLRDHUP};
    return poll(&p, 1, 0) == 1 && (p.revents & (POLLRDHUP | POLLHUP | POLLERR));
}

bool req_client_gone(struct req *r) {
    return client_gone(req_socket(r));
}

/* store_op.gone of a parked claim, on the store's writer: its request is
 * alive while the claim is parked. */
static bool claim_client_gone(const struct store_op *op) {
    return client_gone(req_socket(op->gone_cls));
}

/* Every wait is listed, a tokenless one (open mode) too: once the server
 * is closed, those are cut as a revoked token's are. */
void auth_wait_add(struct req *r, struct store_op *ops, size_t n) {
    if (r->wait_listed) return;
    struct server *srv = r->srv;
    r->wait_ops = ops;
    r->nwait_ops = n;
    for (size_t i = 0; i < n; i++) {
        if (ops[i].kind != STORE_OP_CLAIM || ops[i].deadline_ms <= 0) continue;
        ops[i].gone = claim_client_gone;
        ops[i].gone_cls = r;
    }
    pthread_mutex_lock(&srv->wait_lock);
    LIST_INSERT_HEAD(&srv->wait_list, r, wait_link);
    r->wait_listed = true;
    pthread_mutex_unlock(&srv->wait_lock);
}

/* A claimed task given back: the op and what it borrows, freed when done. */
struct give_back {
    struct store_op op;
    char lease_token[ID_LEN + 1];
    char actor[TOKEN_ID_LEN + 8];
    json_t *messages;
};

static void give_back_done(struct store_op *op) {
    struct give_back *g = op->udata;
    if (op->err.code)
        fprintf(stderr, "taskmill: claim: task '%s' could not be given back: %s\n", op->id,
                op->err.message[0] ? op->err.message : err_default_message(op->err.code));
    store_op_release(op);
    json_decref(g->messages);
    free(g);
}

/* Releases the task that `claim` leased, with its lease token and a
 * message saying why; the claim's worker is gone, so no one is told. */
static void claim_give_back(struct server *srv, const struct store_op *claim, const char *why) {
    struct give_back *g = xcalloc(1, sizeof *g);
    store_op_init(&g->op, STORE_OP_RELEASE);
    memcpy(g->op.id, claim->task->id, ID_LEN + 1);
    memcpy(g->lease_token, claim->new_lease_token, sizeof g->lease_token);
    g->op.lease_token = g->lease_token;
    snprintf(g->actor, sizeof g->actor, "%s", claim->actor ? claim->actor : "");
    g->op.actor = g->actor[0] ? g->actor : NULL;
    g->messages = json_pack("[{s:s,s:s}]", "level", "INFO", "text", why);
    g->op.messages = g->messages;
    g->op.done = give_back_done;
    g->op.udata = g;
    fprintf(stderr, "taskmill: claim: task '%s' of worker '%s' given back to its queue: %s\n",
            g->op.id, claim->worker ? claim->worker : "", why);
    store_submit(srv->store, &g->op);
}

/* Whether r's reply surely did not reach its client: none was sent, or
 * its socket was reset since (POLLERR: a reset not read yet). A send that
 * failed on a reset read the error already: req_reply_failed says so.
 * libmicrohttpd's own shutdown of a closing connection makes POLLHUP say
 * nothing. */
static bool reply_lost(struct req *r) {
    if (!r->status_sent) return true;
    int fd = req_socket(r);
    if (fd < 0) return false;
    struct pollfd p = {.fd = fd, .events = 0};
    return poll(&p, 1, 0) == 1 && (p.revents & POLLERR);
}

/* r's claim ops (those it waits on, or its one op), their count in *n. */
static struct store_op *req_claims(struct req *r, size_t *n) {
    *n = r->nwait_ops;
    if (r->wait_ops) return r->wait_ops;
    *n = r->op.kind == STORE_OP_CLAIM; /* a claim that did not wait */
    return &r->op;
}

/* Whether op leased a task (which its client may not know of). */
static bool claim_leased(const struct store_op *op) {
    return op->kind == STORE_OP_CLAIM && op->claimed && !op->err.code && op->task;
}

void req_reply_failed(struct req *r) {
    size_t n;
    struct store_op *ops = req_claims(r, &n);
    for (size_t i = 0; i < n; i++)
        if (claim_leased(&ops[i])) ops[i].withdrawn = true;
}

/* The tasks r's claims leased that no live client heard of go back. */
static void claims_give_back(struct req *r) {
    size_t n;
    struct store_op *ops = req_claims(r, &n);
    bool any = false, withdrawn = false;
    for (size_t i = 0; i < n; i++) {
        const struct store_op *op = &ops[i];
        if (!claim_leased(op)) continue;
        any = true;
        withdrawn |= op->withdrawn;
    }
    if (!any) return;
    bool lost = reply_lost(r);
    if (!withdrawn && !lost) return;
    for (size_t i = 0; i < n; i++) {
        const struct store_op *op = &ops[i];
        if (!claim_leased(op)) continue;
        if (op->withdrawn)
            claim_give_back(r->srv, op, "the claim's client had gone before its reply was sent");
        else if (lost)
            claim_give_back(r->srv, op, "the claim's reply did not reach its client");
    }
}

void auth_wait_remove(struct req *r) {
    if (r->wait_listed) {
        struct server *srv = r->srv;
        pthread_mutex_lock(&srv->wait_lock);
        LIST_REMOVE(r, wait_link);
        r->wait_listed = false;
        pthread_mutex_unlock(&srv->wait_lock);
    }
    claims_give_back(r);
}

typedef char token_id_t[TOKEN_ID_LEN + 1];

static int token_id_cmp(const void *a, const void *b) {
    return strcmp(*(const token_id_t *)a, *(const token_id_t *)b);
}

/* The distinct token ids ("" for what was opened without one) of the
 * waiting requests and the hub's streams, sorted; their count in *n. */
static token_id_t *watched_ids(struct server *srv, size_t *n) {
    size_t cap = 64, k = 0;
    token_id_t *ids = xmalloc(cap * sizeof *ids);
    struct req *r;
    pthread_mutex_lock(&srv->wait_lock);
    LIST_FOREACH(r, &srv->wait_list, wait_link) {
        if (k == cap) ids = xrealloc(ids, (cap *= 2) * sizeof *ids);
        memcpy(ids[k++], r->token_id, sizeof *ids);
    }
    pthread_mutex_unlock(&srv->wait_lock);
    size_t ns = 0;
    token_id_t *streams = event_hub_stream_tokens(srv->hub, &ns);
    if (k + ns > cap) ids = xrealloc(ids, (cap = k + ns) * sizeof *ids);
    memcpy(ids + k, streams, ns * sizeof *ids);
    k += ns;
    free(streams);
    qsort(ids, k, sizeof *ids, token_id_cmp);
    size_t u = 0;
    for (size_t i = 0; i < k; i++)
        if (u == 0 || strcmp(ids[u - 1], ids[i]) != 0) memcpy(ids[u++], ids[i], sizeof *ids);
    *n = u;
    return ids;
}

/* Whether the token may still hold requests open: false when it is
 * unknown, revoked or expired; true also when the store cannot say. */
static bool token_alive(struct server *srv, const char *id, int64_t now) {
    if (!id[0]) return false; /* opened while the server was open; it is closed now */
    struct token *t = NULL;
    struct tm_error e;
    err_clear(&e);
    int rc = store_token_get(srv->store, id, &t, &e);
    if (rc) return rc != TM_ENOT_FOUND;
    bool alive = !t->revoked_at && !(t->expires_at && t->expires_at <= now);
    token_free(t);
    return alive;
}

/* One round: reads AUTH_WATCH_TOKENS of the tokens that hold something
 * open, from srv->watch_next on, and cuts the dead ones. */
static void auth_watch_round(struct server *srv) {
    size_t all = 0;
    token_id_t *ids = watched_ids(srv, &all);
    struct req *r;
    int64_t now = time_now_ms();
    size_t from = srv->watch_next < all ? srv->watch_next : 0;
    size_t n = all < AUTH_WATCH_TOKENS ? all : AUTH_WATCH_TOKENS;
    srv->watch_next = from + n < all ? from + n : 0;
    for (size_t j = 0; j < n; j++) {
        size_t i = (from + j) % all;
        if (token_alive(srv, ids[i], now)) continue;
        size_t cut = 0;
        pthread_mutex_lock(&srv->wait_lock);
        LIST_FOREACH(r, &srv->wait_list, wait_link) {
            if (strcmp(r->token_id, ids[i]) != 0) continue;
            for (size_t k = 0; k < r->nwait_ops; k++) {
                if (r->wait_ops[k].deadline_ms <= 0) continue;
                store_op_cancel(srv->store, &r->wait_ops[k], TM_EUNAUTHENTICATED,
                                ids[i][0] ? "the token was revoked or has expired"
                                          : "the server needs a token now: send "
                                            "'Authorization: Bearer <token>'");
                cut++;
            }
        }
        pthread_mutex_unlock(&srv->wait_lock);
        size_t ended = event_hub_end_token(srv->hub, ids[i]);
        if ((cut || ended) && ids[i][0])
            fprintf(stderr,
                    "taskmill: auth: token '%s' is revoked or expired: %zu waiting request(s) "
                    "answered 401, %zu event stream(s) ended\n",
                    ids[i], cut, ended);
        else if (cut || ended)
            fprintf(stderr,
                    "taskmill: auth: the server needs tokens now: %zu waiting request(s) and "
                    "%zu event stream(s) opened without one ended\n",
                    cut, ended);
    }
    free(ids);
}

/* Answers the parked ops of every waiting request whose client is gone. */
static void hangup_round(struct server *srv) {
    struct req *r;
    pthread_mutex_lock(&srv->wait_lock);
    LIST_FOREACH(r, &srv->wait_list, wait_link) {
        if (!client_gone(req_socket(r))) continue;
        for (size_t k = 0; k < r->nwait_ops; k++)
            if (r->wait_ops[k].deadline_ms > 0)
                store_op_cancel(srv->store, &r->wait_ops[k], TM_EUNAVAILABLE,
                                "the client closed its connection");
    }
    pthread_mutex_unlock(&srv->wait_lock);
}

static void *auth_watch_main(void *arg) {
    struct server *srv = arg;
    pthread_mutex_lock(&srv->wait_lock);
    while (!srv->watch_stopping) {
        time_cond_wait_ms(&srv->watch_cond, &srv->wait_lock, AUTH_WATCH_MS);
        if (srv->watch_stopping) continue;
        pthread_mutex_unlock(&srv->wait_lock);
        hangup_round(srv);
        /* Open mode ends when a token appears in the store, made by `taskmill
         * token` or on another node too: asked here as well, so that what was
         * opened without a token is cut with no request coming. */
        if (atomic_load(&srv->auth_on) || auth_is_open(srv) == 0) auth_watch_round(srv);
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
