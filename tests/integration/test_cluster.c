/*
 * Three `taskmill serve` nodes on one PostgreSQL database, under load
 * (issue 9's multi-node tests; test_multinode.c has the two-node basics):
 *
 * - 10,000 tasks submitted through all three nodes and worked by workers
 *   spread over them: each task is handed out once and completed once.
 * - kill -9 of one node under load: every write it acknowledged is stored;
 *   the leases its workers held run out and the other nodes re-run those
 *   tasks, once each.
 * - webhooks with two nodes sending at once (proved: two requests in flight
 *   together, one sender per node): every event is delivered once.
 * - an SSE subscriber that disconnects and resumes many times, on any
 *   node, while three nodes write: every event once, in order, no gap.
 * - the database stops and comes back under load: writes answer 201 or
 *   503 (never 500, never a hang), succeed again by themselves, and every
 *   acknowledged one is stored once (idempotency keys make retries safe).
 *
 * PostgreSQL only (TASKMILL_TEST_PG); each test is skipped on SQLite.
 * Threads are the tests' own; th_http keeps one connection per thread.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>

#include "harness.h"
#include "sse_client.h"

#define NODES 3

static const char *const ct[] = {"Content-Type: application/json", NULL};

/* Frees this thread's HTTP connection (th_http keeps one per thread). */
static void *thread_done(void) {
    th_http_raw(NULL, NULL, NULL, NULL, 0, NULL);
    return NULL;
}

/* Starts NODES nodes on one database, each with the extra args a to e (up to the first NULL). */
static bool nodes_start_with(struct th_server n[NODES], const char *a, const char *b, const char *c,
                             const char *d, const char *e) {
    memset(n, 0, NODES * sizeof *n);
    if (!th_backend_is_pg()) {
        th_skip("several nodes on one database need PostgreSQL (TASKMILL_TEST_PG)");
        return false;
    }
    if (th_server_start(&n[0], a, b, c, d, e, NULL)) {
        th_fail(__FILE__, __LINE__, "node 0 did not start (log %s/server.log)", n[0].dir);
        th_server_free(&n[0]);
        return false;
    }
    for (int i = 1; i < NODES; i++) {
        if (th_server_start_peer(&n[i], &n[0], a, b, c, d, e, NULL)) {
            for (int k = i - 1; k >= 0; k--)
                th_server_free(&n[k]);
            return false;
        }
    }
    return true;
}

/* Starts NODES nodes on one database (extra: one arg for each, or NULL). */
static bool nodes_start(struct th_server n[NODES], const char *extra) {
    return nodes_start_with(n, extra, NULL, NULL, NULL, NULL);
}

static void nodes_free(struct th_server n[NODES]) {
    for (int i = NODES - 1; i >= 0; i--)
        th_server_free(&n[i]);
}

/* A set of task ids, each with a count. */
struct idset {
    pthread_mutex_t lock;
    char (*ids)[33];
    int *count;
    size_t n, cap;
};

static void idset_init(struct idset *s) {
    memset(s, 0, sizeof *s);
    pthread_mutex_init(&s->lock, NULL);
}

static void idset_release(struct idset *s) {
    free(s->ids);
    free(s->count);
    pthread_mutex_destroy(&s->lock);
}

/* Adds one to id's count (linear scan per bucket would be slow: keep it sorted later). */
static void idset_add(struct idset *s, const char *id) {
    pthread_mutex_lock(&s->lock);
    if (s->n == s->cap) {
        s->cap = s->cap ? 2 * s->cap : 1024;
        s->ids = realloc(s->ids, s->cap * sizeof *s->ids);
        s->count = realloc(s->count, s->cap * sizeof *s->count);
    }
    snprintf(s->ids[s->n], 33, "%s", id);
    s->count[s->n++] = 1;
    pthread_mutex_unlock(&s->lock);
}

static int cmp_id(const void *a, const void *b) {
    return strcmp(a, b);
}

/* Sorts the ids; returns how many appear more than once (and prints the first). */
static size_t idset_count(struct idset *s) {
    pthread_mutex_lock(&s->lock);
    size_t n = s->n;
    pthread_mutex_unlock(&s->lock);
    return n;
}

static size_t idset_duplicates(struct idset *s, size_t *distinct) {
    qsort(s->ids, s->n, sizeof *s->ids, cmp_id);
    size_t dups = 0, d = 0;
    for (size_t i = 0; i < s->n; i++) {
        if (i && strcmp(s->ids[i], s->ids[i - 1]) == 0) {
            if (!dups) printf("    '%s' seen twice\n", s->ids[i]);
            dups++;
        } else {
            d++;
        }
    }
    *distinct = d;
    return dups;
}

static bool idset_has(struct idset *s, const char *id) {
    return bsearch(id, s->ids, s->n, sizeof *s->ids, cmp_id) != NULL;
}

/* ---- 10,000 tasks through three nodes ---- */

#define LOAD_TASKS 10000
#define LOAD_BATCH 500

struct load {
    struct th_server *nodes;
    const char *queue;
    _Atomic int submitted, completed, errors;
    atomic_bool submitting_done;
    int total;
    struct idset claimed, done;
};

struct load_arg {
    struct load *l;
    int node;
    int batches; /* submitter: how many batches of LOAD_BATCH */
};

static void *submitter_main(void *p) {
    struct load_arg *a = p;
    struct load *l = a->l;
    size_t cap = LOAD_BATCH * 64 + 64;
    char *body = malloc(cap);
    for (int b = 0; b < a->batches; b++) {
        size_t len = (size_t)snprintf(body, cap, "{\"tasks\":[");
        for (int i = 0; i < LOAD_BATCH; i++)
            len += (size_t)snprintf(body + len, cap - len, "%s{\"type\":\"load\",\"queue\":\"%s\"}",
                                    i ? "," : "", l->queue);
        snprintf(body + len, cap - len, "]}");
        struct th_resp *r =
            th_http_raw(&l->nodes[a->node], "POST", "/v1/tasks/batch", body, strlen(body), ct);
        if (r->status == 201 || r->status == 200) {
            atomic_fetch_add(&l->submitted, (int)json_array_size(th_get(r->json, "tasks")));
        } else {
            printf("    batch submit on node %d: %ld %.200s\n", a->node, r->status, r->body);
            atomic_fetch_add(&l->errors, 1);
        }
    }
    free(body);
    return thread_done();
}

static void *worker_main(void *p) {
    struct load_arg *a = p;
    struct load *l = a->l;
    char body[128];
    snprintf(body, sizeof body, "{\"worker\":\"w%d\",\"lease_seconds\":60,\"wait_seconds\":1}",
             a->node);
    int idle = 0;
    while (atomic_load(&l->completed) < l->total && atomic_load(&l->errors) < 20 && idle < 20) {
        char id[33], tok[33];
        long st = th_claim(&l->nodes[a->node], l->queue, body, id, tok);
        if (st == 204) {
            if (atomic_load(&l->submitting_done)) idle++;
            continue;
        }
        if (st != 200) {
            printf("    claim on node %d: %ld\n", a->node, st);
            atomic_fetch_add(&l->errors, 1);
            continue;
        }
        idle = 0;
        idset_add(&l->claimed, id);
        char path[96];
        snprintf(path, sizeof path, "/v1/tasks/%s/complete", id);
        struct th_resp *r =
            th_http(&l->nodes[a->node], "POST", path, "{\"lease_token\":\"%s\"}", tok);
        if (r->status != 200) {
            printf("    complete on node %d: %ld %.200s\n", a->node, r->status, r->body);
            atomic_fetch_add(&l->errors, 1);
            continue;
        }
        idset_add(&l->done, id);
        atomic_fetch_add(&l->completed, 1);
    }
    return thread_done();
}

static void test_ten_thousand_tasks_each_once(void) {
    struct th_server n[NODES];
    if (!nodes_start(n, NULL)) return;
    struct load l = {.nodes = n, .queue = "load", .total = LOAD_TASKS};
    idset_init(&l.claimed);
    idset_init(&l.done);
    enum { WORKERS_PER_NODE = 2 };
    pthread_t sub[NODES], wk[NODES * WORKERS_PER_NODE];
    struct load_arg sa[NODES], wa[NODES * WORKERS_PER_NODE];
    int per_node = LOAD_TASKS / LOAD_BATCH / NODES, extra = LOAD_TASKS / LOAD_BATCH % NODES;
    long long t0 = sse_now_ms();
    for (int i = 0; i < NODES; i++) {
        sa[i] = (struct load_arg){&l, i, per_node + (i < extra)};
        pthread_create(&sub[i], NULL, submitter_main, &sa[i]);
    }
    for (int i = 0; i < NODES * WORKERS_PER_NODE; i++) {
        wa[i] = (struct load_arg){&l, i % NODES, 0};
        pthread_create(&wk[i], NULL, worker_main, &wa[i]);
    }
    for (int i = 0; i < NODES; i++)
        pthread_join(sub[i], NULL);
    atomic_store(&l.submitting_done, true);
    for (int i = 0; i < NODES * WORKERS_PER_NODE; i++)
        pthread_join(wk[i], NULL);
    printf("    %d submitted, %d completed by %d workers on %d nodes in %lld ms\n",
           atomic_load(&l.submitted), atomic_load(&l.completed), NODES * WORKERS_PER_NODE, NODES,
           sse_now_ms() - t0);
    size_t claimed_distinct = 0, done_distinct = 0;
    size_t claimed_dups = idset_duplicates(&l.claimed, &claimed_distinct);
    size_t done_dups = idset_duplicates(&l.done, &done_distinct);
    /* Every node counts the same: 10,000 completed, nothing else. */
    bool counts = true;
    for (int i = 0; i < NODES && counts; i++) {
        struct th_resp *r = th_http(&n[i], "GET", "/v1/queues", NULL);
        json_t *qs = th_get(r->json, "queues");
        size_t k;
        json_t *q;
        long long completed = -1, pending = -1, running = -1;
        json_array_foreach(qs, k, q) {
            if (strcmp(th_str(q, "name") ? th_str(q, "name") : "", "load") != 0) continue;
            completed = th_int(q, "counts.completed");
            pending = th_int(q, "counts.pending");
            running = th_int(q, "counts.running");
        }
        if (completed != LOAD_TASKS || pending != 0 || running != 0) {
            printf("    node %d counts: completed %lld pending %lld running %lld (%.300s)\n", i,
                   completed, pending, running, r->body);
            counts = false;
        }
    }
    int errors = atomic_load(&l.errors), submitted = atomic_load(&l.submitted);
    idset_release(&l.claimed);
    idset_release(&l.done);
    nodes_free(n);
    CHECK_INT(errors, 0);
    CHECK_INT(submitted, LOAD_TASKS);
    CHECK_INT(claimed_dups, 0);
    CHECK_INT(done_dups, 0);
    CHECK_INT(claimed_distinct, LOAD_TASKS);
    CHECK_INT(done_distinct, LOAD_TASKS);
    CHECK(counts);
}

/* ---- kill -9 of a node under load ---- */

struct hammer {
    struct th_server *srv;
    atomic_bool stop;
    struct idset acked;
    _Atomic int failed; /* refused or cut off: not acknowledged */
    _Atomic int bad;    /* a 2xx without an id, or a 500 */
};

static void *hammer_main(void *p) {
    struct hammer *h = p;
    while (!atomic_load(&h->stop)) {
        struct th_resp *r = th_http_raw(h->srv, "POST", "/v1/tasks",
                                        "{\"type\":\"k\",\"queue\":\"crash\",\"backoff_ms\":100}",
                                        strlen("{\"type\":\"k\",\"queue\":\"crash\","
                                               "\"backoff_ms\":100}"),
                                        ct);
        if (r->status == 201 && th_str(r->json, "id")) {
            idset_add(&h->acked, th_str(r->json, "id"));
        } else if (r->status <= 0 || r->status == 503) {
            atomic_fetch_add(&h->failed, 1); /* the node is gone: no answer */
            th_sleep_ms(20);
        } else {
            printf("    submit: %ld %.200s\n", r->status, r->body);
            atomic_fetch_add(&h->bad, 1);
        }
    }
    return thread_done();
}

static void test_kill9_node_leases_rerun_elsewhere(void) {
    struct th_server n[NODES];
    if (!nodes_start(n, NULL)) return;
    /* Node 2's worker holds leases of 2 s on 20 tasks, then node 2 dies. */
    for (int i = 0; i < 20; i++) {
        char *id = th_submit(&n[i % NODES], "k", "\"queue\":\"crash\",\"backoff_ms\":100");
        CHECK(id);
        free(id);
    }
    char held[20][33];
    int nheld = 0;
    for (int i = 0; i < 20; i++) {
        char tok[33];
        if (th_claim(&n[2], "crash", "{\"worker\":\"doomed\",\"lease_seconds\":2}", held[nheld],
                     tok) == 200)
            nheld++;
    }
    CHECK_INT(nheld, 20);
    /* Writes keep coming to node 2 while it is killed. */
    struct hammer h = {.srv = &n[2]};
    idset_init(&h.acked);
    pthread_t ht;
    pthread_create(&ht, NULL, hammer_main, &h);
    bool hammering, refused;
    TRY_WAIT_UNTIL(hammering, idset_count(&h.acked) >= 20, 30000,
                   "node 2 to acknowledge 20 submits");
    th_server_stop(&n[2], true);
    /* The writes go on against the dead node until some are refused. */
    TRY_WAIT_UNTIL(refused, atomic_load(&h.failed) >= 1, 10000,
                   "a submit to the killed node to be refused");
    atomic_store(&h.stop, true);
    pthread_join(ht, NULL);
    printf("    node 2 acknowledged %zu submits before kill -9\n", h.acked.n);

    /* Workers on the other nodes finish everything: the acknowledged
     * submits and, once their leases run out, the 20 held tasks. */
    size_t want = 20 + h.acked.n;
    qsort(h.acked.ids, h.acked.n, sizeof *h.acked.ids, cmp_id);
    struct idset done;
    idset_init(&done);
    long long deadline = sse_now_ms() + 60000;
    int k = 0, idle = 0;
    /* Until the queue stays empty: node 2 may have stored submits it never
     * acknowledged, and they are worked too. */
    while (idle < 4 && sse_now_ms() < deadline) {
        char id[33], tok[33];
        struct th_server *s = &n[k++ % 2];
        long st = th_claim(s, "crash", "{\"worker\":\"survivor\",\"wait_seconds\":1}", id, tok);
        if (st != 200) {
            /* Empty now; the held tasks come back once their leases run out. */
            idle = done.n >= want ? idle + 1 : 0;
            continue;
        }
        idle = 0;
        char path[96];
        snprintf(path, sizeof path, "/v1/tasks/%s/complete", id);
        if (th_http(s, "POST", path, "{\"lease_token\":\"%s\"}", tok)->status == 200)
            idset_add(&done, id);
    }
    size_t distinct = 0, dups = idset_duplicates(&done, &distinct);
    /* Every acknowledged submit is there, completed; the held ones ran twice. */
    size_t missing = 0;
    for (size_t i = 0; i < h.acked.n; i++)
        if (!idset_has(&done, h.acked.ids[i])) missing++;
    bool held_rerun = true;
    for (int i = 0; i < nheld && held_rerun; i++) {
        char path[96];
        snprintf(path, sizeof path, "/v1/tasks/%s", held[i]);
        struct th_resp *r = th_http(&n[0], "GET", path, NULL);
        held_rerun = r->status == 200 && strcmp(th_str(r->json, "phase"), "completed") == 0 &&
                     th_int(r->json, "attempt") == 2 && th_int(r->json, "retries") == 1;
        if (!held_rerun) printf("    held task: %.300s\n", r->body);
    }
    int bad = atomic_load(&h.bad);
    idset_release(&done);
    idset_release(&h.acked);
    nodes_free(n);
    CHECK_INT(bad, 0);
    CHECK_INT(dups, 0);
    CHECK_INT(missing, 0);
    CHECK(distinct >= want);
    CHECK(held_rerun);
}

/* ---- webhooks with two nodes sending ---- */

#define HOOK_TASKS 150
#define HOOKS      2
/* How long the receiver holds a request while it waits for a second one
 * (then it answers and holds the next): far below the senders'
 * --webhook-timeout-ms below, so no hold makes a sender give up and send a
 * delivery twice. */
#define HOOK_HOLD_MS 10000

/*
 * Counts the task ids of the task.spawned deliveries it receives, per
 * webhook (its URL ends in /hook/K), one thread per connection. Until two
 * requests have been in flight at once, it holds each request's answer
 * until a second one comes (or HOOK_HOLD_MS pass). With one sender per node
 * (--webhook-senders 1), two requests in flight at once come from two
 * nodes: a node's sender sends its next request only once it has the
 * answer to the last, and `inflight` counts a request until just before
 * its answer is written.
 */
struct receiver {
    int fd, port;
    pthread_t thread;
    atomic_bool stop;
    struct idset seen[HOOKS];
    _Atomic size_t total;
    pthread_mutex_t lock; /* guards what follows */
    pthread_cond_t cond;
    int inflight, most_inflight, holds_expired;
    pthread_t *conns;
    size_t nconns, capconns;
};

struct receiver_conn {
    struct receiver *rv;
    int fd;
};

/* Reads one request; 0 with its webhook's index and the task id of a
 * task.spawned delivery (id "" for another event), or -1. */
static int receiver_read(int c, int *hook, char id[33]) {
    char buf[1 << 17];
    size_t len = 0;
    id[0] = '\0';
    while (len < sizeof buf - 1) {
        ssize_t n = read(c, buf + len, sizeof buf - 1 - len);
        if (n <= 0) return -1;
        len += (size_t)n;
        buf[len] = '\0';
        char *end = strstr(buf, "\r\n\r\n");
        char *cl = end ? strcasestr(buf, "content-length:") : NULL;
        size_t clen = cl ? strtoul(cl + 15, NULL, 10) : 0;
        if (end && (size_t)(buf + len - (end + 4)) >= clen) {
            *hook = strncmp(buf, "POST /hook/", 11) == 0 ? atoi(buf + 11) : -1;
            json_t *j = json_loadb(end + 4, clen, 0, NULL);
            const char *tid = th_str(j, "payload.task.id"), *ev = th_str(j, "event");
            if (tid && ev && strcmp(ev, "task.spawned") == 0) snprintf(id, 33, "%s", tid);
            json_decref(j);
            return 0;
        }
    }
    return -1;
}

static void *receiver_conn_main(void *p) {
    struct receiver_conn *rc = p;
    struct receiver *rv = rc->rv;
    int c = rc->fd, hook;
    free(rc);
    char id[33];
    if (receiver_read(c, &hook, id)) {
        close(c);
        return NULL;
    }
    if (hook < 0 || hook >= HOOKS) {
        printf("    receiver: a request for no webhook of the test\n");
        hook = 0;
    }
    if (id[0]) {
        idset_add(&rv->seen[hook], id);
        atomic_fetch_add(&rv->total, 1);
    }
    pthread_mutex_lock(&rv->lock);
    rv->inflight++;
    if (rv->inflight > rv->most_inflight) rv->most_inflight = rv->inflight;
    pthread_cond_broadcast(&rv->cond);
    long long until = th_now_ms() + HOOK_HOLD_MS;
    while (rv->most_inflight < 2 && !atomic_load(&rv->stop) && th_now_ms() < until) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += 50 * 1000000L;
        if (ts.tv_nsec >= 1000000000L) ts.tv_sec++, ts.tv_nsec -= 1000000000L;
        pthread_cond_timedwait(&rv->cond, &rv->lock, &ts);
    }
    if (rv->most_inflight < 2) rv->holds_expired++;
    rv->inflight--; /* before the answer: the sender's next request comes after it */
    pthread_mutex_unlock(&rv->lock);
    static const char ok[] =
        "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n"
        "Connection: close\r\n\r\n";
    if (write(c, ok, sizeof ok - 1) < 0) {
    }
    close(c);
    return NULL;
}

static void *receiver_main(void *p) {
    struct receiver *rv = p;
    while (!atomic_load(&rv->stop)) {
        int c = accept(rv->fd, NULL, NULL);
        if (c < 0) continue;
        if (atomic_load(&rv->stop)) {
            close(c);
            break;
        }
        /* A sender that connects and sends nothing ends its thread, in time. */
        struct timeval tv = {30, 0};
        setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        struct receiver_conn *rc = malloc(sizeof *rc);
        *rc = (struct receiver_conn){rv, c};
        pthread_mutex_lock(&rv->lock);
        if (rv->nconns == rv->capconns) {
            rv->capconns = rv->capconns ? 2 * rv->capconns : 256;
            rv->conns = realloc(rv->conns, rv->capconns * sizeof *rv->conns);
        }
        if (pthread_create(&rv->conns[rv->nconns], NULL, receiver_conn_main, rc) == 0) {
            rv->nconns++;
        } else {
            close(c);
            free(rc);
        }
        pthread_mutex_unlock(&rv->lock);
    }
    return NULL;
}

static int receiver_start(struct receiver *rv) {
    memset(rv, 0, sizeof *rv);
    for (int k = 0; k < HOOKS; k++)
        idset_init(&rv->seen[k]);
    pthread_mutex_init(&rv->lock, NULL);
    pthread_cond_init(&rv->cond, NULL);
    rv->fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET};
    inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
    if (bind(rv->fd, (struct sockaddr *)&sa, sizeof sa) || listen(rv->fd, 128)) return -1;
    socklen_t sl = sizeof sa;
    getsockname(rv->fd, (struct sockaddr *)&sa, &sl);
    rv->port = ntohs(sa.sin_port);
    return pthread_create(&rv->thread, NULL, receiver_main, rv);
}

static void receiver_stop(struct receiver *rv) {
    atomic_store(&rv->stop, true);
    pthread_mutex_lock(&rv->lock);
    pthread_cond_broadcast(&rv->cond);
    pthread_mutex_unlock(&rv->lock);
    int c = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)rv->port)};
    inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
    if (connect(c, (struct sockaddr *)&sa, sizeof sa)) {
    }
    close(c);
    pthread_join(rv->thread, NULL);
    for (size_t i = 0; i < rv->nconns; i++)
        pthread_join(rv->conns[i], NULL);
    free(rv->conns);
    close(rv->fd);
    for (int k = 0; k < HOOKS; k++)
        idset_release(&rv->seen[k]);
    pthread_cond_destroy(&rv->cond);
    pthread_mutex_destroy(&rv->lock);
}

static void test_webhooks_once_with_two_senders(void) {
    struct th_server n[NODES];
    /* One sender per node: see struct receiver. A timeout of 30 s, thrice
     * the receiver's longest hold. */
    if (!nodes_start_with(n, "--webhook-allow-private", "--webhook-senders", "1",
                          "--webhook-timeout-ms", "30000"))
        return;
    struct receiver rv;
    CHECK_INT(receiver_start(&rv), 0);
    /* Two webhooks: one has at most one delivery in flight, on any node. */
    for (int k = 0; k < HOOKS; k++) {
        struct th_resp *r = th_http(
            &n[0], "POST", "/v1/webhooks",
            "{\"url\":\"http://127.0.0.1:%d/hook/%d\",\"events\":[\"task.spawned\"]}", rv.port, k);
        CHECK_INT(r->status, 201);
    }
    /* Submitted through every node; every node's sender is at work. */
    for (int i = 0; i < HOOK_TASKS; i++) {
        char *id = th_submit(&n[i % NODES], "hooked", NULL);
        CHECK(id);
        free(id);
    }
    bool all = false;
    TRY_WAIT_UNTIL(all, atomic_load(&rv.total) >= (size_t)HOOKS * HOOK_TASKS, 120000,
                   "%d deliveries", HOOKS * HOOK_TASKS);
    th_sleep_ms(1500); /* by design: a window in which a double delivery would come */
    size_t got = atomic_load(&rv.total), distinct[HOOKS], dups = 0;
    for (int k = 0; k < HOOKS; k++) {
        pthread_mutex_lock(&rv.seen[k].lock);
        dups += idset_duplicates(&rv.seen[k], &distinct[k]);
        pthread_mutex_unlock(&rv.seen[k].lock);
    }
    pthread_mutex_lock(&rv.lock);
    int most = rv.most_inflight, expired = rv.holds_expired;
    pthread_mutex_unlock(&rv.lock);
    /* More than one node sent (each logs nothing per delivery: ask /metrics). */
    int senders = 0;
    for (int i = 0; i < NODES; i++) {
        struct th_resp *m = th_http(&n[i], "GET", "/metrics", NULL);
        const char *at = m->body ? strstr(m->body, "\ntaskmill_webhook_delivered_total ") : NULL;
        if (at && atoll(at + strlen("\ntaskmill_webhook_delivered_total ")) > 0) senders++;
    }
    printf(
        "    %zu deliveries for %d tasks and %d webhooks, sent by %d of %d nodes; at most %d "
        "at once (%d holds ran out)\n",
        got, HOOK_TASKS, HOOKS, senders, NODES, most, expired);
    receiver_stop(&rv);
    nodes_free(n);
    CHECK(all);
    CHECK_INT(dups, 0);
    for (int k = 0; k < HOOKS; k++)
        CHECK_INT(distinct[k], HOOK_TASKS);
    CHECK_INT(got, HOOKS * HOOK_TASKS);
    CHECK(most >= 2); /* two nodes sent at once (one sender each) */
    CHECK(senders >= 2);
}

/* ---- an SSE subscriber resuming across nodes ---- */

#define SSE_WRITERS_TASKS 400

struct writer_arg {
    struct th_server *srv;
    int node;
    int tasks;
    _Atomic int *errors;
};

/* Submits, claims and completes, in a queue of its own: three events a task. */
static void *sse_writer_main(void *p) {
    struct writer_arg *a = p;
    char extra[64], queue[16];
    snprintf(queue, sizeof queue, "sse%d", a->node);
    snprintf(extra, sizeof extra, "\"queue\":\"%s\"", queue);
    for (int i = 0; i < a->tasks; i++) {
        char *id = th_submit(a->srv, "s", extra);
        char cid[33], tok[33];
        long st = id ? th_claim(a->srv, queue, NULL, cid, tok) : 0;
        if (st != 200) {
            printf("    writer %d: submit %s, claim %ld\n", a->node, id ? "ok" : "failed", st);
            atomic_fetch_add(a->errors, 1);
            free(id);
            continue;
        }
        char path[96];
        snprintf(path, sizeof path, "/v1/tasks/%s/complete", cid);
        if (th_http(a->srv, "POST", path, "{\"lease_token\":\"%s\"}", tok)->status != 200)
            atomic_fetch_add(a->errors, 1);
        free(id);
    }
    return thread_done();
}

static void test_sse_resumes_across_nodes_gapless(void) {
    struct th_server n[NODES];
    if (!nodes_start(n, NULL)) return;
    _Atomic int errors = 0;
    pthread_t w[NODES];
    struct writer_arg wa[NODES];
    for (int i = 0; i < NODES; i++) {
        wa[i] = (struct writer_arg){&n[i], i, SSE_WRITERS_TASKS / NODES, &errors};
        pthread_create(&w[i], NULL, sse_writer_main, &wa[i]);
    }
    /* Read a few events from a node, drop the connection, resume on the next. */
    long long last = 0, want = 3LL * (SSE_WRITERS_TASKS / NODES) * NODES;
    int resumes = 0, gaps = 0, quiet_ms = 0;
    unsigned seed = 7;
    while (last < want && quiet_ms < 15000) {
        struct sse_conn c;
        struct th_server *s = &n[resumes % NODES];
        if (sse_open(&c, s->url, "/v1/events", last, 0)) {
            th_sleep_ms(50);
            quiet_ms += 50;
            continue;
        }
        resumes++;
        int take = 1 + (int)(rand_r(&seed) % 60);
        for (int k = 0; k < take; k++) {
            struct sse_event ev = {.id = -1};
            if (sse_next(&c, &ev, 300) != 1) {
                quiet_ms += 300;
                break;
            }
            quiet_ms = 0;
            if (ev.id >= 0) {
                if (ev.id != last + 1) {
                    if (!gaps) printf("    after %lld came %lld (%s)\n", last, ev.id, ev.event);
                    gaps++;
                }
                if (ev.id > last) last = ev.id;
            }
            sse_event_clear(&ev);
        }
        sse_close(&c);
    }
    for (int i = 0; i < NODES; i++)
        pthread_join(w[i], NULL);
    printf("    %lld events read over %d connections to %d nodes\n", last, resumes, NODES);
    nodes_free(n);
    CHECK_INT(atomic_load(&errors), 0);
    CHECK_INT(gaps, 0);
    CHECK_INT(last, want);
    CHECK(resumes > 20);
}

/* ---- the database stops and comes back ---- */

/* The cluster's directory: TASKMILL_TEST_PG's host=DIR. */
static bool pg_dir(char *out, size_t n) {
    const char *u = getenv("TASKMILL_TEST_PG");
    const char *h = u ? strstr(u, "host=") : NULL;
    if (!h) return false;
    snprintf(out, n, "%.*s", (int)strcspn(h + 5, "&"), h + 5);
    return out[0] == '/';
}

struct keyed {
    struct th_server *srv;
    int node;
    atomic_bool stop;
    _Atomic int acked, unavailable, bad, retried_ok;
    struct idset ids; /* acknowledged task ids */
};

/* Submits with an idempotency key; a 503 is tried again with the same key. */
static void *keyed_main(void *p) {
    struct keyed *k = p;
    for (int i = 0; !atomic_load(&k->stop); i++) {
        char hdr[96];
        snprintf(hdr, sizeof hdr, "Idempotency-Key: n%d-%d", k->node, i);
        const char *h[] = {"Content-Type: application/json", hdr, NULL};
        const char *body = "{\"type\":\"outage\",\"queue\":\"outage\"}";
        bool was_503 = false;
        for (;;) {
            struct th_resp *r = th_http_raw(k->srv, "POST", "/v1/tasks", body, strlen(body), h);
            if ((r->status == 201 || r->status == 200) && th_str(r->json, "id")) {
                idset_add(&k->ids, th_str(r->json, "id"));
                atomic_fetch_add(&k->acked, 1);
                if (was_503) atomic_fetch_add(&k->retried_ok, 1);
                break;
            }
            if (r->status == 503) {
                atomic_fetch_add(&k->unavailable, 1);
                was_503 = true;
                th_sleep_ms(50);
                continue;
            }
            printf("    node %d submit: %ld %.200s\n", k->node, r->status, r->body);
            /* The node's own words on it: its log goes with the test. */
            char cmd[400];
            snprintf(cmd, sizeof cmd,
                     "grep 'taskmill: postgres' '%s/server.log' | tail -n 8 | sed 's/^/      /'",
                     k->srv->dir);
            if (system(cmd)) {
            }
            atomic_fetch_add(&k->bad, 1);
            break;
        }
    }
    return thread_done();
}

static void test_database_stops_and_comes_back(void) {
    struct th_server n[NODES];
    char dir[256];
    if (th_backend_is_pg() && !pg_dir(dir, sizeof dir)) {
        th_fail(__FILE__, __LINE__, "TASKMILL_TEST_PG names no host=DIR");
        return;
    }
    if (!nodes_start(n, NULL)) return;
    struct keyed k[2];
    pthread_t t[2];
    for (int i = 0; i < 2; i++) {
        memset(&k[i], 0, sizeof k[i]);
        k[i].srv = &n[i];
        k[i].node = i;
        idset_init(&k[i].ids);
        pthread_create(&t[i], NULL, keyed_main, &k[i]);
    }
    bool writing, down;
    TRY_WAIT_UNTIL(writing, atomic_load(&k[0].acked) >= 20 && atomic_load(&k[1].acked) >= 20, 30000,
                   "both writers to have 20 submits acknowledged");
    char cmd[512];
    snprintf(cmd, sizeof cmd, "scripts/pg.sh halt '%s' >/dev/null 2>&1", dir);
    int halted = system(cmd);
    /* Down: both writers get 503s and /healthz says so. */
    TRY_WAIT_UNTIL(down,
                   atomic_load(&k[0].unavailable) >= 1 && atomic_load(&k[1].unavailable) >= 1 &&
                       th_http(&n[2], "GET", "/healthz", NULL)->status == 503,
                   30000, "both writers refused with 503 and /healthz at 503 while it is down");
    int healthz_down = (int)th_http(&n[2], "GET", "/healthz", NULL)->status;
    snprintf(cmd, sizeof cmd, "scripts/pg.sh start '%s' >/dev/null 2>&1", dir);
    int started = system(cmd);
    /* Writes succeed again by themselves: wait for a few more acks. */
    int before = atomic_load(&k[0].acked) + atomic_load(&k[1].acked);
    long long deadline = sse_now_ms() + 30000;
    while (atomic_load(&k[0].acked) + atomic_load(&k[1].acked) < before + 50 &&
           sse_now_ms() < deadline)
        th_sleep_ms(100);
    int after = atomic_load(&k[0].acked) + atomic_load(&k[1].acked);
    for (int i = 0; i < 2; i++) {
        atomic_store(&k[i].stop, true);
        pthread_join(t[i], NULL);
    }
    /* Every acknowledged id is stored, and each key made one task. */
    size_t acked = 0, missing = 0, dups = 0, distinct = 0;
    for (int i = 0; i < 2; i++) {
        dups += idset_duplicates(&k[i].ids, &distinct);
        for (size_t j = 0; j < k[i].ids.n; j++) {
            char path[96];
            snprintf(path, sizeof path, "/v1/tasks/%s", k[i].ids.ids[j]);
            if (th_http(&n[2], "GET", path, NULL)->status != 200) missing++;
        }
        acked += k[i].ids.n;
    }
    struct th_resp *r = th_http(&n[2], "GET", "/v1/queues", NULL);
    long long stored = -1;
    size_t qi;
    json_t *q;
    json_array_foreach(th_get(r->json, "queues"), qi, q) {
        if (strcmp(th_str(q, "name") ? th_str(q, "name") : "", "outage") == 0)
            stored = th_int(q, "counts.pending");
    }
    int unavailable = atomic_load(&k[0].unavailable) + atomic_load(&k[1].unavailable);
    int bad = atomic_load(&k[0].bad) + atomic_load(&k[1].bad);
    int healthz_up = (int)th_http(&n[2], "GET", "/healthz", NULL)->status;
    printf(
        "    %zu acknowledged, %d answered 503 meanwhile, %d more after the restart; "
        "/healthz %d while down\n",
        acked, unavailable, after - before, healthz_down);
    for (int i = 0; i < 2; i++)
        idset_release(&k[i].ids);
    nodes_free(n);
    CHECK_INT(halted, 0);
    CHECK_INT(started, 0);
    CHECK_INT(bad, 0);
    CHECK(unavailable > 0);
    CHECK_INT(healthz_down, 503);
    CHECK_INT(healthz_up, 200);
    CHECK(after >= before + 50);
    CHECK_INT(missing, 0);
    CHECK_INT(dups, 0);
    CHECK_INT(stored, (long long)acked);
}

int main(int argc, char **argv) {
    static const struct th_test tests[] = {
        {"three nodes: 10,000 tasks, each handed out and completed once",
         test_ten_thousand_tasks_each_once},
        {"kill -9 of a node under load: nothing acknowledged lost, its leases re-run elsewhere",
         test_kill9_node_leases_rerun_elsewhere},
        {"webhooks with several nodes sending: every event delivered once",
         test_webhooks_once_with_two_senders},
        {"an SSE stream resumed many times across three writing nodes: every event once, in order",
         test_sse_resumes_across_nodes_gapless},
        {"the database stops and comes back under load: 503 meanwhile, nothing acknowledged lost",
         test_database_stops_and_comes_back},
        {NULL, NULL},
    };
    return th_main(tests, argc, argv);
}
