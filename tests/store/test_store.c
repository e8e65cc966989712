/*
 * The store conformance suite: store.h's contract, exercised directly (no
 * HTTP), so that every backend proves itself on the same tests. The URL
 * comes from TASKMILL_TEST_STORE (a `{dir}` in it is replaced by a fresh
 * temporary directory); the default is a SQLite file there.
 *
 * With TASKMILL_TEST_PG set instead (a base URL from scripts/pg.sh), the
 * run gets a fresh PostgreSQL database, dropped at the end.
 *
 * What a backend must do: create and read back every field; idempotency
 * per namespace; claims in priority then FIFO order, by type and
 * namespace; parked claims and watches woken by later commits; the sweep
 * of expired leases and due waiting tasks; refused ops that write
 * nothing; parent counts; list filters and cursors; queue counts and
 * settings; everything durable across close and open; the event log
 * (strictly increasing seq, reads after a seq, the head, the commit
 * listener); webhooks and their deliveries; API tokens; and claims from
 * many threads at once (and, on PostgreSQL, from two stores on one
 * database) handing out every task exactly once.
 *
 * Every test opens its own store on the one database of the run and uses
 * namespaces and queues of its own, so tests do not see each other's
 * tasks; a background sweep may still append events for tasks an earlier
 * test left claimed, which is why event checks read one namespace.
 */
#include <stdio.h>
#include <stdlib.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <libpq-fe.h>
#include <sqlite3.h>

#include "../src/common/task_json.h"
#include "../src/common/timeutil.h"
#include "../src/common/token.h"
#include "../src/common/xalloc.h"
#include "../src/store/store.h"
#include "harness.h"

static char dir[256], url[512];

static struct store *open_store_opt(const struct store_options *opt) {
    struct store *s = NULL;
    struct tm_error e;
    err_clear(&e);
    if (store_open(url, opt, &s, &e)) {
        th_fail(__FILE__, __LINE__, "store_open('%s'): %s", url, e.message);
        return NULL;
    }
    return s;
}

/* A store that does not sweep (as the token commands' beside a server),
 * for a test that counts the whole log's events: the leases of 60 s the
 * tests before it leave held run out some 60 s into the suite, and a
 * sweep's event among the counted ones made one too many (it did, on
 * PostgreSQL, to '600 submits in one op'). */
static struct store *open_store_quiet(void) {
    struct store_options opt = {.tool = true};
    return open_store_opt(&opt);
}

static struct store *open_store(int64_t sweep_max_ms) {
    struct store *s = NULL;
    struct store_options opt = {.sweep_max_ms = sweep_max_ms};
    struct tm_error e;
    err_clear(&e);
    if (store_open(url, &opt, &s, &e)) {
        th_fail(__FILE__, __LINE__, "store_open('%s'): %s", url, e.message);
        return NULL;
    }
    return s;
}

static struct task *new_task(const char *ns, const char *queue, const char *type, int64_t prio) {
    struct task *t = task_new();
    t->namespace = xstrdup(ns);
    t->queue = xstrdup(queue);
    t->type = xstrdup(type);
    t->priority = prio;
    return t;
}

/* Creates one task; returns its id (static buffer per call site is the caller's). */
static int create(struct store *s, struct task *t, char id[ID_LEN + 1]) {
    struct store_op op;
    store_op_init(&op, STORE_OP_CREATE);
    op.tasks = xmalloc(sizeof *op.tasks);
    op.tasks[0] = t;
    op.ntasks = 1;
    int rc = store_run(s, &op);
    if (rc == 0) memcpy(id, op.task->id, ID_LEN + 1);
    store_op_release(&op);
    return rc;
}

static int claim(struct store *s, const char *ns, const char *queue, const char *type,
                 int64_t lease_ms, int64_t wait_ms, char id[ID_LEN + 1], char token[ID_LEN + 1]) {
    struct store_op op;
    store_op_init(&op, STORE_OP_CLAIM);
    op.ns = ns;
    op.queue = queue;
    op.worker = "w";
    if (type) op.types[op.ntypes++] = type;
    op.lease_ms = lease_ms;
    if (wait_ms) op.deadline_ms = time_mono_ms() + wait_ms;
    int rc = store_run(s, &op);
    id[0] = token[0] = '\0';
    if (rc == 0 && op.claimed) {
        memcpy(id, op.task->id, ID_LEN + 1);
        memcpy(token, op.new_lease_token, ID_LEN + 1);
    }
    store_op_release(&op);
    return rc;
}

static int simple(struct store *s, enum store_op_kind kind, const char *ns, const char *id,
                  const char *token, struct task **out) {
    struct store_op op;
    store_op_init(&op, kind);
    op.ns = ns;
    snprintf(op.id, sizeof op.id, "%s", id);
    op.lease_token = token;
    if (kind == STORE_OP_FAIL) {
        op.error = "boom";
        op.retryable = true;
    }
    int rc = store_run(s, &op);
    if (out) {
        *out = op.task;
        op.task = NULL;
    }
    store_op_release(&op);
    return rc;
}

/* Creates a task in ns and queue and claims it: its id and lease token;
 * false (a failed check) when either fails. */
static bool create_claimed(struct store *s, const char *ns, const char *queue, char id[ID_LEN + 1],
                           char tok[ID_LEN + 1]) {
    char cid[ID_LEN + 1];
    if (create(s, new_task(ns, queue, "x", 0), id) != 0 ||
        claim(s, ns, queue, NULL, 60000, 0, cid, tok) != 0 || strcmp(cid, id) != 0) {
        th_fail(__FILE__, __LINE__, "could not create and claim a task in %s/%s", ns, queue);
        return false;
    }
    return true;
}

static struct task *get(struct store *s, const char *ns, const char *id) {
    struct task *t = NULL;
    struct tm_error e;
    err_clear(&e);
    if (store_task_get(s, ns, id, &t, &e)) return NULL;
    return t;
}

static void test_create_and_read_back(void) {
    struct store *s = open_store(0);
    CHECK(s);
    struct task *t = new_task("acme", "q1", "resize", 5);
    t->name = xstrdup("n");
    t->params = xstrdup("{\"a\":[1,2]}");
    t->max_retries = 7;
    char id[ID_LEN + 1];
    CHECK_INT(create(s, t, id), 0);
    struct task *r = get(s, "acme", id);
    CHECK(r);
    CHECK_STR(r->type, "resize");
    CHECK_STR(r->name, "n");
    CHECK_STR(r->params, "{\"a\":[1,2]}");
    CHECK_INT(r->priority, 5);
    CHECK_INT(r->max_retries, 7);
    CHECK_INT(r->phase, TASK_PENDING);
    CHECK_INT(r->version, 1);
    CHECK(r->created_at > 0);
    task_free(r);
    CHECK(get(s, "other", id) == NULL); /* another namespace does not see it */
    store_close(s);
}

static void test_idempotency_per_namespace(void) {
    struct store *s = open_store(0);
    CHECK(s);
    char a[ID_LEN + 1], b[ID_LEN + 1], c[ID_LEN + 1];
    struct task *t = new_task("n1", "idem", "x", 0);
    t->idempotency_key = xstrdup("k");
    CHECK_INT(create(s, t, a), 0);
    t = new_task("n1", "idem", "x", 0);
    t->idempotency_key = xstrdup("k");
    CHECK_INT(create(s, t, b), 0);
    CHECK_STR(a, b);
    t = new_task("n2", "idem", "x", 0);
    t->idempotency_key = xstrdup("k");
    CHECK_INT(create(s, t, c), 0);
    CHECK(strcmp(a, c) != 0);
    store_close(s);
}

static void test_claim_order_type_namespace(void) {
    struct store *s = open_store(0);
    CHECK(s);
    char lo1[ID_LEN + 1], lo2[ID_LEN + 1], hi[ID_LEN + 1], other[ID_LEN + 1], vid[ID_LEN + 1];
    CHECK_INT(create(s, new_task("n", "order", "x", 5), lo1), 0);
    CHECK_INT(create(s, new_task("n", "order", "x", 5), lo2), 0);
    CHECK_INT(create(s, new_task("n", "order", "x", -5), hi), 0);
    CHECK_INT(create(s, new_task("m", "order", "x", -9), other), 0);
    CHECK_INT(create(s, new_task("n", "order", "video", 9), vid), 0);
    char id[ID_LEN + 1], tok[ID_LEN + 1];
    CHECK_INT(claim(s, "n", "order", "video", 1000, 0, id, tok), 0);
    CHECK_STR(id, vid);
    CHECK_INT(claim(s, "n", "order", NULL, 1000, 0, id, tok), 0);
    CHECK_STR(id, hi);
    CHECK_INT(claim(s, "n", "order", NULL, 1000, 0, id, tok), 0);
    CHECK_STR(id, lo1);
    CHECK_INT(claim(s, "n", "order", NULL, 1000, 0, id, tok), 0);
    CHECK_STR(id, lo2);
    CHECK_INT(claim(s, "n", "order", NULL, 1000, 0, id, tok), 0);
    CHECK_STR(id, ""); /* m's task is not n's */
    CHECK_INT(claim(s, NULL, "order", NULL, 1000, 0, id, tok), 0);
    CHECK_STR(id, other);
    store_close(s);
}

static void test_refused_op_writes_nothing(void) {
    struct store *s = open_store(0);
    CHECK(s);
    char id[ID_LEN + 1], cid[ID_LEN + 1], tok[ID_LEN + 1];
    CHECK_INT(create(s, new_task("n", "refuse", "x", 0), id), 0);
    CHECK_INT(claim(s, "n", "refuse", NULL, 60000, 0, cid, tok), 0);
    struct task *before = get(s, "n", id);
    CHECK(before);
    struct store_op op;
    store_op_init(&op, STORE_OP_HEARTBEAT);
    snprintf(op.id, sizeof op.id, "%s", id);
    op.lease_token = "ffffffffffffffffffffffffffffffff";
    op.has_progress = true;
    op.progress.has_ratio = true;
    op.progress.ratio = 0.5;
    CHECK_INT(store_run(s, &op), TM_ELEASE);
    store_op_release(&op);
    CHECK_INT(simple(s, STORE_OP_RETRY, "n", id, NULL, NULL), TM_ECONFLICT);
    CHECK_INT(simple(s, STORE_OP_DELETE, "n", id, NULL, NULL), TM_ECONFLICT);
    struct task *after = get(s, "n", id);
    CHECK(after);
    CHECK_INT(after->version, before->version);
    CHECK(after->progress.ratio == before->progress.ratio);
    task_free(before);
    task_free(after);
    store_close(s);
}

struct watch_run {
    struct store *s;
    char id[ID_LEN + 1];
    int64_t since;
    int rc;
    int64_t version;
};

static void *watch_thread(void *arg) {
    struct watch_run *wr = arg;
    struct store_op op;
    store_op_init(&op, STORE_OP_WATCH);
    memcpy(op.id, wr->id, sizeof op.id);
    op.version = wr->since;
    op.deadline_ms = time_mono_ms() + 5000;
    int rc = store_run(wr->s, &op);
    if (rc == 0 && op.task) wr->version = op.task->version;
    store_op_release(&op);
    wr->rc = rc;
    return NULL;
}

/* How many claims, or watches, the store holds parked now. */
static uint64_t parked(struct store *s, bool watches) {
    struct store_stats st;
    store_get_stats(s, &st);
    return watches ? st.parked_watches : st.parked_claims;
}

struct later {
    struct store *s;
    char id[ID_LEN + 1];
};

/* Creates a task once a claim is parked, to wake it. */
static void *later_create(void *arg) {
    struct later *l = arg;
    bool ok;
    TRY_WAIT_UNTIL(ok, parked(l->s, false) >= 1, 10000, "the claim to be parked");
    create(l->s, new_task("n", "park", "x", 0), l->id);
    return NULL;
}

static void test_parked_claim_and_watch(void) {
    struct store *s = open_store(0);
    CHECK(s);
    struct later l = {s, ""};
    pthread_t th;
    pthread_create(&th, NULL, later_create, &l);
    char id[ID_LEN + 1], tok[ID_LEN + 1];
    int64_t t0 = time_mono_ms();
    CHECK_INT(claim(s, "n", "park", NULL, 60000, 5000, id, tok), 0);
    pthread_join(th, NULL);
    CHECK_STR(id, l.id);
    CHECK(time_mono_ms() - t0 < 4000); /* woken by the create, not by the deadline */
    /* A watch returns at the next change of the task. */
    struct watch_run wr = {s, "", 2, -1, 0};
    memcpy(wr.id, id, sizeof wr.id);
    pthread_create(&th, NULL, watch_thread, &wr);
    bool watching;
    TRY_WAIT_UNTIL(watching, parked(s, true) >= 1, 10000, "the watch to be parked");
    CHECK_INT(wr.rc, -1); /* still parked */
    struct store_op hb;
    store_op_init(&hb, STORE_OP_HEARTBEAT);
    snprintf(hb.id, sizeof hb.id, "%s", id);
    hb.lease_token = tok;
    CHECK_INT(store_run(s, &hb), 0);
    store_op_release(&hb);
    pthread_join(th, NULL);
    CHECK_INT(wr.rc, 0);
    CHECK_INT(wr.version, 3);
    store_close(s);
}

static void test_sweep_expires_leases_and_wakes(void) {
    struct store *s = open_store(50);
    CHECK(s);
    struct task *t = new_task("n", "sweep", "x", 0);
    t->max_retries = 1;
    t->backoff_ms = 0;
    char id[ID_LEN + 1], cid[ID_LEN + 1], tok[ID_LEN + 1];
    CHECK_INT(create(s, t, id), 0);
    CHECK_INT(claim(s, "n", "sweep", NULL, 100, 0, cid, tok), 0);
    CHECK_STR(cid, id);
    /* The lease runs out, the task comes back, a waiting claim gets it again. */
    char id2[ID_LEN + 1], tok2[ID_LEN + 1];
    CHECK_INT(claim(s, "n", "sweep", NULL, 100, 3000, id2, tok2), 0);
    CHECK_STR(id2, id);
    struct task *r = get(s, "n", id);
    CHECK(r);
    CHECK_INT(r->retries, 1);
    CHECK_INT(r->attempt, 2);
    task_free(r);
    /* Retries spent: the next expiry fails it as temporary. */
    for (int i = 0; i < 60; i++) {
        r = get(s, "n", id);
        bool done = r && r->phase == TASK_FAILED;
        if (done) break;
        task_free(r);
        r = NULL;
        th_sleep_ms(50);
    }
    CHECK(r);
    CHECK_INT(r->phase, TASK_FAILED);
    CHECK_INT(r->status, TASK_TEMPERROR);
    task_free(r);
    store_close(s);
}

static int heartbeat(struct store *s, const char *id, const char *tok, double ratio);

/* The ids of a list, in its order, as "a,b,c". */
static void list_ids(struct store *s, const struct task_filter *f, char *out, size_t cap,
                     int64_t *total) {
    struct task_list l;
    struct tm_error e;
    out[0] = '\0';
    CHECK_INT(store_task_list(s, f, &l, &e), 0);
    size_t at = 0;
    for (size_t i = 0; i < l.n; i++)
        at += (size_t)snprintf(out + at, cap - at, "%s%s", i ? "," : "", l.tasks[i]->id);
    if (total) *total = l.total;
    task_list_release(&l);
}

/*
 * Lists by update time: a running task's update time moves with each
 * heartbeat, and the lists follow it, with offsets, ranges and counts.
 */
static void test_lists_by_update_time_follow_heartbeats(void) {
    struct store *s = open_store(0);
    CHECK(s);
    char id[5][ID_LEN + 1], cid[ID_LEN + 1], tok0[ID_LEN + 1], tok1[ID_LEN + 1];
    for (int i = 0; i < 5; i++) {
        CHECK_INT(create(s, new_task("upd", "updq", "x", 0), id[i]), 0);
        th_sleep_ms(3); /* by design: each write a time (ms) of its own */
    }
    CHECK_INT(claim(s, "upd", "updq", NULL, 60000, 0, cid, tok0), 0);
    CHECK_STR(cid, id[0]);
    th_sleep_ms(3);
    CHECK_INT(claim(s, "upd", "updq", NULL, 60000, 0, cid, tok1), 0);
    CHECK_STR(cid, id[1]);
    th_sleep_ms(3);
    CHECK_INT(simple(s, STORE_OP_COMPLETE, "upd", id[1], tok1, NULL), 0);
    th_sleep_ms(3);
    CHECK_INT(heartbeat(s, id[0], tok0, 0.25), 0);
    /* By update time: 0 (running, its heartbeat the latest), 1 (completed),
     * then 4, 3, 2 as created. */
    char want[6 * (ID_LEN + 1)], got[6 * (ID_LEN + 1)];
    snprintf(want, sizeof want, "%s,%s,%s,%s,%s", id[0], id[1], id[4], id[3], id[2]);
    struct task_filter f = {.ns = "upd", .limit = 10, .nsort = 1};
    f.sort[0] = (struct task_sort){TASK_SORT_UPDATED_AT, true};
    list_ids(s, &f, got, sizeof got, NULL);
    CHECK_STR(got, want);
    /* Ascending, and a page with an offset. */
    f.sort[0].desc = false;
    snprintf(want, sizeof want, "%s,%s,%s,%s,%s", id[2], id[3], id[4], id[1], id[0]);
    list_ids(s, &f, got, sizeof got, NULL);
    CHECK_STR(got, want);
    f.sort[0].desc = true;
    f.offset = 1;
    f.limit = 2;
    snprintf(want, sizeof want, "%s,%s", id[1], id[4]);
    list_ids(s, &f, got, sizeof got, NULL);
    CHECK_STR(got, want);
    /* With a second key (Livepeer's updatedAt desc, createdAt desc). */
    f.offset = 0;
    f.limit = 10;
    f.nsort = 2;
    f.sort[1] = (struct task_sort){TASK_SORT_CREATED_AT, true};
    snprintf(want, sizeof want, "%s,%s,%s,%s,%s", id[0], id[1], id[4], id[3], id[2]);
    list_ids(s, &f, got, sizeof got, NULL);
    CHECK_STR(got, want);
    /* Updated after task 4's creation: 1 and 0, in id order (newest id
     * first), counted; after task 1's completion: the running one only. */
    struct task *t4 = get(s, "upd", id[4]), *t1 = get(s, "upd", id[1]);
    CHECK(t4 && t1);
    if (t4 && t1) {
        struct task_filter g = {.ns = "upd", .limit = 10, .want_total = true};
        g.updated_after = t4->updated_at;
        int64_t total = -1;
        snprintf(want, sizeof want, "%s,%s", id[1], id[0]);
        list_ids(s, &g, got, sizeof got, &total);
        CHECK_STR(got, want);
        CHECK_INT(total, 2);
        g.updated_after = t1->updated_at;
        snprintf(want, sizeof want, "%s", id[0]);
        list_ids(s, &g, got, sizeof got, &total);
        CHECK_STR(got, want);
        CHECK_INT(total, 1);
        /* before task 1's completion, after task 3's creation: 4 alone */
        g.updated_before = t1->updated_at;
        g.updated_after = t4->updated_at - 1;
        snprintf(want, sizeof want, "%s", id[4]);
        list_ids(s, &g, got, sizeof got, &total);
        CHECK_STR(got, want);
        CHECK_INT(total, 1);
    }
    task_free(t4);
    task_free(t1);
    store_close(s);
}

/* A parent in `pqueue` with two children in `cqueue`, in namespace n. */
static int create_family(struct store *s, const char *pqueue, const char *cqueue,
                         char parent[ID_LEN + 1]) {
    int rc = create(s, new_task("n", pqueue, "x", 0), parent);
    for (int i = 0; i < 2 && rc == 0; i++) {
        struct task *t = new_task("n", cqueue, "x", 0);
        memcpy(t->parent_id, parent, sizeof t->parent_id);
        char child[ID_LEN + 1];
        rc = create(s, t, child);
    }
    return rc;
}

static void test_parent_counts(void) {
    struct store *s = open_store(0);
    CHECK(s);
    char p[ID_LEN + 1];
    CHECK_INT(create_family(s, "par", "kids", p), 0);
    struct task *t;
    char id[ID_LEN + 1], tok[ID_LEN + 1];
    CHECK_INT(claim(s, "n", "kids", NULL, 60000, 0, id, tok), 0);
    CHECK_INT(simple(s, STORE_OP_COMPLETE, "n", id, tok, NULL), 0);
    struct task *r = get(s, "n", p);
    CHECK(r);
    CHECK_INT(r->child_processed, 1);
    CHECK_INT(r->child_pending, 1);
    task_free(r);
    CHECK_INT(simple(s, STORE_OP_DELETE, "n", id, NULL, NULL), 0);
    r = get(s, "n", p);
    CHECK_INT(r->child_processed, 0);
    CHECK_INT(r->child_pending, 1);
    task_free(r);
    /* A parent in another namespace is refused, and nothing is created. */
    t = new_task("m", "kids", "x", 0);
    memcpy(t->parent_id, p, sizeof t->parent_id);
    CHECK_INT(create(s, t, id), TM_EINVALID);
    store_close(s);
}

static void test_parent_waits_for_children(void) {
    struct store *s = open_store(0);
    CHECK(s);
    char p[ID_LEN + 1];
    CHECK_INT(create_family(s, "wpar", "wkids", p), 0);
    char id[ID_LEN + 1], ptok[ID_LEN + 1], tok[ID_LEN + 1];
    CHECK_INT(claim(s, "n", "wpar", NULL, 60000, 0, id, ptok), 0);
    CHECK_STR(id, p);
    CHECK_INT(simple(s, STORE_OP_COMPLETE, "n", p, ptok, NULL), 0);
    struct task *r = get(s, "n", p);
    CHECK_INT(r->phase, TASK_WAITING);
    CHECK(r->awaiting_children);
    task_free(r);
    /* First child completes: still waiting. Second fails for good: it completes. */
    CHECK_INT(claim(s, "n", "wkids", NULL, 60000, 0, id, tok), 0);
    CHECK_INT(simple(s, STORE_OP_COMPLETE, "n", id, tok, NULL), 0);
    r = get(s, "n", p);
    CHECK_INT(r->phase, TASK_WAITING);
    task_free(r);
    CHECK_INT(claim(s, "n", "wkids", NULL, 60000, 0, id, tok), 0);
    struct store_op op;
    store_op_init(&op, STORE_OP_FAIL);
    snprintf(op.id, sizeof op.id, "%s", id);
    op.lease_token = tok;
    op.error = "no";
    op.retryable = false;
    CHECK_INT(store_run(s, &op), 0);
    store_op_release(&op);
    r = get(s, "n", p);
    CHECK_INT(r->phase, TASK_COMPLETED);
    CHECK_INT(r->status, TASK_WARNING);
    CHECK_INT(r->child_ended, 1);
    CHECK_INT(r->child_processed, 1);
    task_free(r);
    store_close(s);
}

static void test_list_filters_and_cursor(void) {
    struct store *s = open_store(0);
    CHECK(s);
    char ids[5][ID_LEN + 1];
    for (int i = 0; i < 5; i++) {
        struct task *t = new_task("lst", "listq", i % 2 ? "odd" : "even", 0);
        char name[16];
        snprintf(name, sizeof name, "img-%d", i);
        t->name = xstrdup(name);
        CHECK_INT(create(s, t, ids[i]), 0);
    }
    struct task_filter f = {0};
    f.ns = "lst";
    f.queue = "listq";
    f.ascending = true;
    f.limit = 2;
    struct task_list l;
    struct tm_error e;
    int seen = 0;
    for (;;) {
        CHECK_INT(store_task_list(s, &f, &l, &e), 0);
        for (size_t i = 0; i < l.n; i++)
            CHECK_STR(l.tasks[i]->id, ids[seen++]);
        bool more = l.more;
        if (more) memcpy(f.cursor, l.tasks[l.n - 1]->id, ID_LEN + 1);
        task_list_release(&l);
        if (!more) break;
    }
    CHECK_INT(seen, 5);
    struct task_filter g = {0};
    g.ns = "lst";
    g.type = "odd";
    g.limit = 10;
    CHECK_INT(store_task_list(s, &g, &l, &e), 0);
    CHECK_INT(l.n, 2);
    task_list_release(&l);
    struct task_filter h = {0};
    h.ns = "lst";
    h.name_prefix = "img-3";
    h.limit = 10;
    CHECK_INT(store_task_list(s, &h, &l, &e), 0);
    CHECK_INT(l.n, 1);
    task_list_release(&l);
    store_close(s);
}

static void test_queue_counts_and_settings(void) {
    struct store *s = open_store(0);
    CHECK(s);
    struct store_op op;
    store_op_init(&op, STORE_OP_QUEUE_SET);
    op.queue = "cfgq";
    op.queue_settings =
        (struct queue_settings){.max_retries = 0, .backoff_ms = 10, .backoff_max_ms = 20};
    CHECK_INT(store_run(s, &op), 0);
    store_op_release(&op);
    struct task *t = new_task("n", "cfgq", "x", 0);
    t->max_retries = t->backoff_ms = t->backoff_max_ms = -1; /* unset: from the queue */
    char id[ID_LEN + 1];
    CHECK_INT(create(s, t, id), 0);
    struct task *r = get(s, NULL, id);
    CHECK_INT(r->max_retries, 0);
    CHECK_INT(r->backoff_max_ms, 20);
    task_free(r);
    struct queue_counts *qc = NULL;
    size_t n = 0;
    struct tm_error e;
    CHECK_INT(store_queue_counts(s, NULL, &qc, &n, &e), 0);
    bool found = false;
    for (size_t i = 0; i < n; i++) {
        if (strcmp(qc[i].queue, "cfgq") != 0) continue;
        found = true;
        CHECK(qc[i].configured);
        CHECK_INT(qc[i].phase[TASK_PENDING], 1);
    }
    queue_counts_free(qc, n);
    CHECK(found);
    store_close(s);
}

static void test_durable_across_reopen(void) {
    struct store *s = open_store(0);
    CHECK(s);
    char id[ID_LEN + 1], cid[ID_LEN + 1], tok[ID_LEN + 1];
    CHECK_INT(create(s, new_task("n", "dur", "x", 0), id), 0);
    CHECK_INT(claim(s, "n", "dur", NULL, 60000, 0, cid, tok), 0);
    CHECK_INT(simple(s, STORE_OP_COMPLETE, "n", id, tok, NULL), 0);
    store_close(s);
    s = open_store(0);
    CHECK(s);
    struct task *r = get(s, "n", id);
    CHECK(r);
    CHECK_INT(r->phase, TASK_COMPLETED);
    CHECK_INT(r->status, TASK_SUCCESS);
    task_free(r);
    store_close(s);
}

/* ---- The event log ---- */

static int heartbeat(struct store *s, const char *id, const char *tok, double ratio) {
    struct store_op op;
    store_op_init(&op, STORE_OP_HEARTBEAT);
    snprintf(op.id, sizeof op.id, "%s", id);
    op.lease_token = tok;
    if (ratio >= 0) {
        op.has_progress = true;
        op.progress.has_ratio = true;
        op.progress.ratio = ratio;
    }
    int rc = store_run(s, &op);
    store_op_release(&op);
    return rc;
}

/* What the commit listener saw of one namespace. */
struct heard {
    pthread_mutex_t lock;
    const char *ns;
    int64_t seqs[64];
    int n;
    bool out_of_order;
    int64_t last; /* of every namespace: commit order is seq order */
};

static void listen_fn(void *cls, const struct store_commit *c) {
    struct heard *h = cls;
    pthread_mutex_lock(&h->lock);
    for (size_t i = 0; i < c->nevents; i++) {
        const struct store_event *ev = &c->events[i];
        if (ev->seq <= h->last) h->out_of_order = true;
        h->last = ev->seq;
        if (strcmp(ev->ns, h->ns) == 0 && h->n < 64) h->seqs[h->n++] = ev->seq;
    }
    pthread_mutex_unlock(&h->lock);
}

static void test_events_every_write_in_order(void) {
    struct store *s = open_store(0);
    CHECK(s);
    struct heard h = {.lock = PTHREAD_MUTEX_INITIALIZER, .ns = "ev"};
    store_set_listener(s, listen_fn, &h);
    struct tm_error e;
    int64_t head0 = -1, pruned0 = -1;
    CHECK_INT(store_events_head(s, &head0, &pruned0, &e), 0);
    CHECK(head0 >= 0);
    CHECK(pruned0 >= 0 && pruned0 <= head0);

    /* create, claim, heartbeat (progress), heartbeat (lease only), complete. */
    char id[ID_LEN + 1], cid[ID_LEN + 1], tok[ID_LEN + 1];
    CHECK_INT(create(s, new_task("ev", "evq", "x", 0), id), 0);
    CHECK_INT(claim(s, "ev", "evq", NULL, 60000, 0, cid, tok), 0);
    CHECK_STR(cid, id);
    CHECK_INT(heartbeat(s, id, tok, 0.5), 0);
    CHECK_INT(heartbeat(s, id, tok, -1), 0);
    /* A refused write appends nothing. */
    CHECK_INT(heartbeat(s, id, "ffffffffffffffffffffffffffffffff", 0.7), TM_ELEASE);
    CHECK_INT(simple(s, STORE_OP_COMPLETE, "ev", id, tok, NULL), 0);

    static const char *const kinds[] = {"task.created", "task.running", "task.progress",
                                        "task.lease", "task.completed"};
    static const char *const causes[] = {"create", "claim", "heartbeat", "heartbeat", "complete"};
    static const enum task_phase phases[] = {TASK_PENDING, TASK_RUNNING, TASK_RUNNING, TASK_RUNNING,
                                             TASK_COMPLETED};
    struct event_page p;
    CHECK_INT(store_events_read(s, "ev", NULL, head0, 100, 0, &p, &e), 0);
    int64_t seqs[5] = {0};
    bool ok = p.n == 5;
    for (size_t i = 0; ok && i < p.n; i++) {
        const struct store_event *ev = &p.events[i];
        seqs[i] = ev->seq;
        if (ev->seq <= head0 || (i > 0 && ev->seq <= p.events[i - 1].seq) ||
            strcmp(ev->kind, kinds[i]) != 0 || strcmp(ev->cause, causes[i]) != 0 ||
            strcmp(ev->task_id, id) != 0 || ev->phase != phases[i] ||
            ev->version != (int64_t)i + 1 || !ev->ns || strcmp(ev->ns, "ev") != 0 || !ev->queue ||
            strcmp(ev->queue, "evq") != 0 || !ev->type || strcmp(ev->type, "x") != 0 ||
            !ev->task_json || !strstr(ev->task_json, id) || ev->at <= 0) {
            th_fail(__FILE__, __LINE__, "event %zu: seq %lld kind '%s' cause '%s' version %lld", i,
                    (long long)ev->seq, ev->kind, ev->cause, (long long)ev->version);
            ok = false;
        }
    }
    int64_t page_head = p.head;
    if (!ok && p.n != 5) th_fail(__FILE__, __LINE__, "%zu events, not 5", p.n);
    event_page_release(&p);
    if (!ok) {
        store_close(s);
        return;
    }
    CHECK(page_head >= seqs[4]);

    /* After the second: exactly the three later ones, in order. */
    CHECK_INT(store_events_read(s, "ev", NULL, seqs[1], 100, 0, &p, &e), 0);
    bool later = p.n == 3 && p.events[0].seq == seqs[2] && p.events[1].seq == seqs[3] &&
                 p.events[2].seq == seqs[4];
    event_page_release(&p);
    CHECK(later);
    /* A limit cuts the page; max_bytes stops after the event that reaches it. */
    CHECK_INT(store_events_read(s, "ev", NULL, head0, 2, 0, &p, &e), 0);
    bool limited = p.n == 2 && p.events[0].seq == seqs[0] && p.events[1].seq == seqs[1];
    event_page_release(&p);
    CHECK(limited);
    CHECK_INT(store_events_read(s, "ev", NULL, head0, 100, 1, &p, &e), 0);
    bool bounded = p.n == 1 && p.more && p.events[0].seq == seqs[0];
    event_page_release(&p);
    CHECK(bounded);
    /* By task: another task's events are not in it. */
    char other[ID_LEN + 1];
    CHECK_INT(create(s, new_task("ev", "evq2", "x", 0), other), 0);
    CHECK_INT(store_events_read(s, NULL, id, head0, 100, 0, &p, &e), 0);
    size_t of_task = p.n;
    event_page_release(&p);
    CHECK_INT(of_task, 5);
    CHECK_INT(store_events_read(s, "ev", other, head0, 100, 0, &p, &e), 0);
    bool one =
        p.n == 1 && p.events[0].seq > seqs[4] && strcmp(p.events[0].kind, "task.created") == 0;
    event_page_release(&p);
    CHECK(one);
    /* The head moved to at least the last event; nothing of ours after it. */
    int64_t head1 = 0, pruned1 = 0;
    CHECK_INT(store_events_head(s, &head1, &pruned1, &e), 0);
    CHECK(head1 > seqs[4]);
    CHECK(pruned1 <= head1);
    CHECK_INT(store_events_read(s, "ev", NULL, head1, 100, 0, &p, &e), 0);
    size_t after_head = p.n;
    event_page_release(&p);
    CHECK_INT(after_head, 0);
    /* The listener heard the same six events, in seq order. */
    store_close(s);
    CHECK(!h.out_of_order);
    CHECK_INT(h.n, 6);
    for (int i = 0; i < 5; i++)
        CHECK_INT(h.seqs[i], seqs[i]);
}

/* ---- What the log stores of each event ---- */

/* Every event of one namespace (ns, set before the listener) as the
 * commit listener got it (whole). */
static struct kept {
    pthread_mutex_t lock;
    const char *ns;
    int64_t seqs[32];
    char *json[32];
    int n;
} kept = {.lock = PTHREAD_MUTEX_INITIALIZER};

static void keep_fn(void *cls, const struct store_commit *c) {
    (void)cls;
    pthread_mutex_lock(&kept.lock);
    for (size_t i = 0; i < c->nevents; i++) {
        const struct store_event *ev = &c->events[i];
        if (strcmp(ev->ns, kept.ns) != 0 || kept.n == 32) continue;
        kept.seqs[kept.n] = ev->seq;
        kept.json[kept.n++] = xstrdup(ev->task_json);
    }
    pthread_mutex_unlock(&kept.lock);
}

/* Waits until the listener has heard n events (it hears them on the
 * store's feed thread, after the commit). */
static bool kept_wait(int n) {
    for (int i = 0; i < 200; i++) {
        pthread_mutex_lock(&kept.lock);
        int have = kept.n;
        pthread_mutex_unlock(&kept.lock);
        if (have >= n) return have == n;
        usleep(25 * 1000);
    }
    return false;
}

static void kept_reset(void) {
    pthread_mutex_lock(&kept.lock);
    for (int i = 0; i < kept.n; i++)
        free(kept.json[i]);
    kept.n = 0;
    pthread_mutex_unlock(&kept.lock);
}

static const char *kept_json(int64_t seq) {
    for (int i = 0; i < kept.n; i++)
        if (kept.seqs[i] == seq) return kept.json[i];
    return NULL;
}

/* The log's own text of an event, straight from the database at `db`. */
static char *stored_text(const char *db_url, int64_t seq) {
    char *out = NULL;
    if (strncmp(db_url, "sqlite:", 7) == 0) {
        sqlite3 *db = NULL;
        sqlite3_stmt *st = NULL;
        /* the log is in segments: the one that holds seq, then the row */
        long long slot = 0;
        if (sqlite3_open_v2(db_url + 7, &db, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK &&
            sqlite3_prepare_v2(db,
                               "SELECT slot FROM event_segments WHERE first_seq<=?1"
                               " AND (last_seq IS NULL OR last_seq>=?1)",
                               -1, &st, NULL) == SQLITE_OK) {
            sqlite3_bind_int64(st, 1, seq);
            if (sqlite3_step(st) == SQLITE_ROW) slot = sqlite3_column_int64(st, 0);
        }
        sqlite3_finalize(st);
        st = NULL;
        char q[80];
        snprintf(q, sizeof q, "SELECT task FROM events_%lld WHERE seq=?1", slot);
        if (slot && sqlite3_prepare_v2(db, q, -1, &st, NULL) == SQLITE_OK) {
            sqlite3_bind_int64(st, 1, seq);
            if (sqlite3_step(st) == SQLITE_ROW)
                out = xstrdup((const char *)sqlite3_column_text(st, 0));
        }
        sqlite3_finalize(st);
        sqlite3_close(db);
        return out;
    }
    PGconn *c = PQconnectdb(db_url);
    char q[96];
    snprintf(q, sizeof q, "SELECT task FROM events WHERE seq = %lld", (long long)seq);
    PGresult *r = PQstatus(c) == CONNECTION_OK ? PQexec(c, q) : NULL;
    if (r && PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1)
        out = xstrdup(PQgetvalue(r, 0, 0));
    PQclear(r);
    PQfinish(c);
    return out;
}

/* Waits until retention has removed every event up to `seq`. */
static bool pruned_past(struct store *s, int64_t seq) {
    struct tm_error e;
    for (int i = 0; i < 200; i++) {
        int64_t head = 0, pruned = 0;
        if (store_events_head(s, &head, &pruned, &e) == 0 && pruned >= seq) return true;
        usleep(25 * 1000);
    }
    th_fail(__FILE__, __LINE__, "retention did not pass seq %lld in 5 s", (long long)seq);
    return false;
}

/* Reads every event of a task and compares each with what was heard. */
static int read_matches(struct store *s, const char *id, size_t want) {
    struct event_page p;
    struct tm_error e;
    if (store_events_read(s, NULL, id, 0, 100, 0, &p, &e)) return -1;
    int bad = p.n == want ? 0 : 1;
    if (bad) th_fail(__FILE__, __LINE__, "%zu events of %s, not %zu", p.n, id, want);
    for (size_t i = 0; i < p.n; i++) {
        const char *heard = kept_json(p.events[i].seq);
        if (!heard || strcmp(heard, p.events[i].task_json) != 0) {
            th_fail(__FILE__, __LINE__, "event %lld read back as %s, was %s",
                    (long long)p.events[i].seq, p.events[i].task_json, heard ? heard : "(unheard)");
            bad++;
        }
    }
    event_page_release(&p);
    return bad;
}

/* The top-level "phase" key of this test's task (its params have one too). */
static const char *phase_key(const char *j) {
    const char *at = strstr(j, ",\"phase\":\"running\"");
    return at ? at : strstr(j, ",\"phase\":\"completed\"");
}

static void slim_steps(struct store *s, const char *db_url) {
    /* params that hold a "phase" key of their own at the top level. */
    struct task *t = new_task("slim", "slimq", "x", 0);
    t->params = xstrdup("{\"a\":\"{\\\"x\\\":\",\"phase\":\"not this one\",\"b\":[{\"phase\":1}]}");
    t->name = xstrdup("keep my name");
    char id[ID_LEN + 1], cid[ID_LEN + 1], tok[ID_LEN + 1];
    CHECK_INT(create(s, t, id), 0);
    CHECK_INT(claim(s, "slim", "slimq", NULL, 60000, 0, cid, tok), 0);
    CHECK_STR(cid, id);
    CHECK_INT(heartbeat(s, id, tok, 0.25), 0);
    CHECK(kept_wait(3));

    /* The first event is stored whole, the others from "phase" on; each
     * reads back as the listener heard it, byte for byte. */
    char *first = stored_text(db_url, kept.seqs[0]), *second = stored_text(db_url, kept.seqs[1]);
    bool whole = first && strcmp(first, kept.json[0]) == 0;
    bool part = second && strncmp(second, "{\"phase\":\"running\"", 18) == 0 &&
                !strstr(second, "keep my name") && !strstr(second, id) &&
                strlen(second) < strlen(kept.json[1]);
    if (!part) th_fail(__FILE__, __LINE__, "stored: %s", second ? second : "(none)");
    free(first);
    free(second);
    CHECK(whole);
    CHECK(part);
    CHECK_INT(read_matches(s, id, 3), 0);

    /* Retention (4 events) removes the first two: the rest are whole
     * again, from the task as stored now. */
    CHECK_INT(heartbeat(s, id, tok, 0.5), 0);
    CHECK_INT(heartbeat(s, id, tok, 0.75), 0);
    CHECK_INT(heartbeat(s, id, tok, 0.9), 0);
    CHECK(kept_wait(6));
    CHECK(pruned_past(s, kept.seqs[1]));
    CHECK_INT(read_matches(s, id, 4), 0);

    /* A deleted task's task.deleted event is whole; its earlier events,
     * with neither the first event nor the task left, come reduced and
     * marked, with what changed intact. */
    CHECK_INT(simple(s, STORE_OP_COMPLETE, "slim", id, tok, NULL), 0);
    CHECK_INT(simple(s, STORE_OP_DELETE, "slim", id, NULL, NULL), 0);
    CHECK(kept_wait(8));
    CHECK(pruned_past(s, kept.seqs[3]));
    int64_t last = kept.seqs[7];
    char *del = stored_text(db_url, last);
    bool del_whole = del && strcmp(del, kept.json[7]) == 0 && strstr(del, "keep my name");
    free(del);
    CHECK(del_whole);
    struct event_page p;
    struct tm_error e;
    CHECK_INT(store_events_read(s, NULL, id, 0, 100, 0, &p, &e), 0);
    size_t n = p.n, good = 0;
    for (size_t i = 0; i < p.n; i++) {
        const char *heard = kept_json(p.events[i].seq);
        const char *got = p.events[i].task_json;
        if (p.events[i].seq == last) {
            good += heard && strcmp(got, heard) == 0;
            continue;
        }
        /* Same id, namespace and what follows "phase"; params reduced. */
        const char *rest = heard ? phase_key(heard) : NULL;
        const char *from = phase_key(got);
        size_t rlen = rest ? strlen(rest) - 1 : 0;
        bool ok = rest && from && strstr(got, id) && strstr(got, "\"namespace\":\"slim\"") &&
                  strstr(got, "\"params\":{},") && !strstr(got, "keep my name") &&
                  strncmp(from, rest, rlen) == 0 &&
                  strcmp(got + strlen(got) - 18, ",\"truncated\":true}") == 0;
        if (!ok) th_fail(__FILE__, __LINE__, "event %lld: %s", (long long)p.events[i].seq, got);
        good += ok;
    }
    event_page_release(&p);
    CHECK_INT(n, 4);
    CHECK_INT(good, 4);
}

/* A store on a database of the test's own: a SQLite file `name` in the
 * run's directory, or a fresh PostgreSQL database (named in pgdb, for the
 * test to drop). Its URL in db_url; NULL (the failure reported) when it
 * cannot open. */
static struct store *open_own_store(const char *name, const struct store_options *opt,
                                    char db_url[600], char pgdb[64]) {
    pgdb[0] = 0;
    if (strncmp(url, "sqlite:", 7) == 0) {
        snprintf(db_url, 600, "sqlite:%s/%s.db", dir, name);
    } else if (th_pg_db_create(pgdb, db_url, 600)) {
        th_fail(__FILE__, __LINE__, "no PostgreSQL database of its own");
        return NULL;
    }
    struct store *s = NULL;
    struct tm_error e;
    err_clear(&e);
    if (store_open(db_url, opt, &s, &e)) th_fail(__FILE__, __LINE__, "%s", e.message);
    return s;
}

/* SQLite: a relaxed store skips the WAL's flush at commit, and with it
 * SQLite's automatic checkpoints (their sync of the WAL would be skipped
 * too): its own keep the WAL from growing without end, and the database
 * whole. */
static void test_relaxed_store_checkpoints(void) {
    if (strncmp(url, "sqlite:", 7) != 0) {
        th_skip("SQLite's WAL; PostgreSQL's relaxed commits are its own");
        return;
    }
    char db_url[600], pgdb[64], wal[700];
    struct store_options opt = {.relaxed = true};
    struct store *s = open_own_store("relaxed", &opt, db_url, pgdb);
    if (!s) return;
    snprintf(wal, sizeof wal, "%s-wal", db_url + 7);
    char id[ID_LEN + 1];
    struct stat st;
    off_t most = 0;
    /* About 5 frames a one-task commit: some 15,000 frames in all. */
    for (int i = 0; i < 3000; i++) {
        if (create(s, new_task("rx", "q", "x", 0), id) != 0) {
            th_fail(__FILE__, __LINE__, "submit %d", i);
            break;
        }
        if (i % 100 == 99 && stat(wal, &st) == 0 && st.st_size > most) most = st.st_size;
    }
    printf("    the WAL at most %lld bytes over 3,000 commits\n", (long long)most);
    CHECK(most > 0);
    CHECK(most < 8 * 1024 * 1024); /* 1,000 frames and a commit's, not 15,000 */
    store_close(s);
    sqlite3 *db = NULL;
    sqlite3_stmt *q = NULL;
    CHECK(sqlite3_open_v2(db_url + 7, &db, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK);
    CHECK(sqlite3_prepare_v2(db,
                             "SELECT (SELECT count(*) FROM tasks WHERE namespace='rx'),"
                             " (SELECT integrity_check FROM pragma_integrity_check)",
                             -1, &q, NULL) == SQLITE_OK);
    CHECK(sqlite3_step(q) == SQLITE_ROW);
    CHECK_INT(sqlite3_column_int(q, 0), 3000);
    CHECK_STR((const char *)sqlite3_column_text(q, 1), "ok");
    sqlite3_finalize(q);
    sqlite3_close(db);
}

/* SQLite: a relaxed store's commits are flushed by its timer, at most
 * relaxed_flush_ms after them; without the timer they stay unflushed (the
 * system writes them back when it does); a durable store has none. */
static void test_relaxed_store_flushes_on_its_timer(void) {
    if (strncmp(url, "sqlite:", 7) != 0) {
        th_skip("SQLite's WAL; PostgreSQL's relaxed commits are its WAL writer's");
        return;
    }
    char db_url[600], pgdb[64], id[ID_LEN + 1];
    struct store_stats st;
    struct store_options timed = {.relaxed = true, .relaxed_flush_ms = 20};
    struct store *s = open_own_store("relaxed-timed", &timed, db_url, pgdb);
    if (!s) return;
    for (int i = 0; i < 5; i++)
        CHECK_INT(create(s, new_task("rf", "q", "x", 0), id), 0);
    /* Polled: 10 s is 500 times the interval, not a speed. */
    for (int i = 0; i < 1000; i++) {
        store_get_stats(s, &st);
        if (st.unflushed_commits == 0 && st.relaxed_flushes >= 1) break;
        th_sleep_ms(10);
    }
    CHECK_INT(st.unflushed_commits, 0);
    CHECK(st.relaxed_flushes >= 1);
    uint64_t flushes = st.relaxed_flushes;
    th_sleep_ms(100); /* nothing committed since: nothing more to flush */
    store_get_stats(s, &st);
    CHECK_INT(st.relaxed_flushes, flushes);
    CHECK_INT(st.unflushed_commits, 0);
    CHECK_INT(create(s, new_task("rf", "q", "x", 0), id), 0);
    for (int i = 0; i < 1000; i++) {
        store_get_stats(s, &st);
        if (st.unflushed_commits == 0 && st.relaxed_flushes > flushes) break;
        th_sleep_ms(10);
    }
    CHECK_INT(st.unflushed_commits, 0);
    CHECK(st.relaxed_flushes > flushes);
    store_close(s);

    struct store_options untimed = {.relaxed = true, .relaxed_flush_ms = -1};
    s = open_own_store("relaxed-untimed", &untimed, db_url, pgdb);
    if (!s) return;
    for (int i = 0; i < 3; i++)
        CHECK_INT(create(s, new_task("rf", "q", "x", 0), id), 0);
    th_sleep_ms(200);
    store_get_stats(s, &st);
    CHECK(st.unflushed_commits >= 3);
    CHECK_INT(st.relaxed_flushes, 0);
    store_close(s);

    struct store_options durable = {.relaxed_flush_ms = 20};
    s = open_own_store("relaxed-durable", &durable, db_url, pgdb);
    if (!s) return;
    CHECK_INT(create(s, new_task("rf", "q", "x", 0), id), 0);
    th_sleep_ms(100);
    store_get_stats(s, &st);
    CHECK_INT(st.unflushed_commits, 0);
    CHECK_INT(st.relaxed_flushes, 0);
    store_close(s);
}

static void test_events_store_the_changing_part(void) {
    /* A database of its own: other tests' leftovers would take events
     * from the retention count. */
    char db_url[600], pgdb[64];
    struct store_options opt = {.events_max_count = 4, .events_max_age_ms = -1};
    struct store *s = open_own_store("slim", &opt, db_url, pgdb);
    if (s) {
        kept.ns = "slim";
        store_set_listener(s, keep_fn, NULL);
        slim_steps(s, db_url);
        store_close(s);
    }
    kept_reset();
    if (pgdb[0]) th_pg_db_drop(pgdb);
}

/* ---- Webhooks ---- */

static int webhook_add(struct store *s, const char *ns, unsigned events, struct webhook *w) {
    memset(w, 0, sizeof *w);
    w->ns = ns ? xstrdup(ns) : NULL;
    w->name = xstrdup("hook");
    w->url = xstrdup("http://127.0.0.1:9/hook");
    w->secret = xstrdup("sekret");
    w->events = events;
    struct store_op op;
    store_op_init(&op, STORE_OP_WEBHOOK_ADD);
    op.webhook = w;
    int rc = store_run(s, &op);
    store_op_release(&op);
    return rc;
}

static int webhook_delete(struct store *s, const char *ns, const char *id) {
    struct store_op op;
    store_op_init(&op, STORE_OP_WEBHOOK_DELETE);
    op.ns = ns;
    snprintf(op.id, sizeof op.id, "%s", id);
    int rc = store_run(s, &op);
    store_op_release(&op);
    return rc;
}

/* Claims the next due delivery (as a webhook sender does), leaving out the
 * webhooks in skip[0..nskip); NULL when none is due. Busy for lease_ms. */
static struct webhook_delivery *claim_delivery(struct store *s, const char *const *skip,
                                               size_t nskip, int64_t lease_ms) {
    struct store_op op;
    store_op_init(&op, STORE_OP_DELIVERY_CLAIM);
    op.skip = skip;
    op.nskip = nskip;
    op.lease_ms = lease_ms;
    int rc = store_run(s, &op);
    struct webhook_delivery *d = op.claimed_delivery;
    op.claimed_delivery = NULL;
    if (rc) th_fail(__FILE__, __LINE__, "delivery claim: %s", op.err.message);
    store_op_release(&op);
    return d;
}

/* Records an attempt's outcome, which frees the delivery's webhook. */
static int delivery_set(struct store *s, const struct webhook_delivery *d, const char *status,
                        int64_t last_status) {
    struct webhook_delivery upd;
    memset(&upd, 0, sizeof upd);
    memcpy(upd.id, d->id, sizeof upd.id);
    memcpy(upd.webhook_id, d->webhook_id, sizeof upd.webhook_id);
    snprintf(upd.status, sizeof upd.status, "%s", status);
    upd.attempts = d->attempts + 1;
    upd.last_status = last_status;
    upd.next_at = d->next_at;
    upd.updated_at = time_now_ms();
    upd.claimed_until = d->claimed_until; /* the attempt's claim, which fences it */
    struct store_op op;
    store_op_init(&op, STORE_OP_DELIVERY_SET);
    op.delivery = &upd;
    int rc = store_run(s, &op);
    store_op_release(&op);
    return rc;
}

/* The deliveries queued for webhook `hook` (up to 100), or -1. */
static int64_t deliveries_of(struct store *s, const char *hook) {
    struct webhook_delivery *d = NULL;
    size_t n = 0;
    struct tm_error e;
    int rc = store_deliveries_list(s, hook, 100, &d, &n, &e);
    deliveries_free(d, n);
    return rc ? -1 : (int64_t)n;
}

/*
 * An attempt whose claim ran out before its outcome was recorded (a slow
 * writer; another node claimed the webhook meanwhile and is sending)
 * records nothing and frees nothing: neither over the newer attempt's
 * outcome, nor while it is in flight.
 */
static void test_late_outcome_records_nothing(void) {
    struct store *s = open_store(0);
    CHECK(s);
    if (!s) return;
    struct webhook w;
    CHECK_INT(webhook_add(s, "late", WEBHOOK_SPAWNED, &w), 0);
    char hook[ID_LEN + 1], id[ID_LEN + 1];
    memcpy(hook, w.id, sizeof hook);
    webhook_release(&w);
    CHECK_INT(create(s, new_task("late", "lateq", "x", 0), id), 0);
    /* Other tests' webhooks, with deliveries due perhaps, are left out. */
    const char *others[64];
    size_t nothers = 0, n = 0;
    struct webhook *all = NULL;
    struct tm_error e;
    CHECK_INT(store_webhooks_list(s, NULL, NULL, &all, &n, &e), 0);
    for (size_t i = 0; i < n && nothers < 64; i++)
        if (strcmp(all[i].id, hook) != 0) others[nothers++] = xstrdup(all[i].id);
    webhooks_free(all, n);

    struct webhook_delivery *a = claim_delivery(s, others, nothers, 50);
    CHECK(a && strcmp(a->webhook_id, hook) == 0);
    th_sleep_ms(150); /* a's claim runs out */
    struct webhook_delivery *b = claim_delivery(s, others, nothers, 60000);
    CHECK(b && a && strcmp(b->id, a->id) == 0); /* the same delivery, again */
    /* a's outcome, late: nothing recorded, the webhook still b's. */
    if (a) CHECK_INT(delivery_set(s, a, "pending", 500), 0);
    struct webhook_delivery *c = claim_delivery(s, others, nothers, 60000);
    CHECK(c == NULL);
    deliveries_free(c, c ? 1 : 0);
    struct webhook_delivery *d = NULL;
    CHECK_INT(store_deliveries_list(s, hook, 10, &d, &n, &e), 0);
    CHECK(n == 1 && strcmp(d[0].status, "pending") == 0 && d[0].attempts == 0);
    deliveries_free(d, n);
    /* b's outcome stands; a's, later still, changes nothing. */
    if (b) CHECK_INT(delivery_set(s, b, "delivered", 204), 0);
    if (a) CHECK_INT(delivery_set(s, a, "pending", 500), 0);
    CHECK_INT(store_deliveries_list(s, hook, 10, &d, &n, &e), 0);
    CHECK(n == 1 && strcmp(d[0].status, "delivered") == 0 && d[0].attempts == 1 &&
          d[0].last_status == 204);
    deliveries_free(d, n);
    deliveries_free(a, a ? 1 : 0);
    deliveries_free(b, b ? 1 : 0);
    CHECK_INT(webhook_delete(s, "late", hook), 0);
    for (size_t i = 0; i < nothers; i++)
        free((char *)others[i]);
    store_close(s);
}

static void test_deliveries_follow_the_webhooks_there_are(void) {
    /* A database of its own, with no webhook of any other test: the first
     * events find none; each add and delete after is seen by the next
     * event. */
    char db_url[600], pgdb[64];
    struct store_options opt = {0};
    struct store *s = open_own_store("hooks", &opt, db_url, pgdb);
    CHECK(s);
    char id[ID_LEN + 1], hook[ID_LEN + 1];
    CHECK_INT(create(s, new_task("fw", "fwq", "x", 0), id), 0);
    struct webhook w;
    CHECK_INT(webhook_add(s, "fw", WEBHOOK_SPAWNED, &w), 0);
    memcpy(hook, w.id, sizeof hook);
    webhook_release(&w);
    CHECK_INT(deliveries_of(s, hook), 0); /* added after the first task */
    CHECK_INT(create(s, new_task("fw", "fwq", "x", 0), id), 0);
    CHECK_INT(deliveries_of(s, hook), 1);
    CHECK_INT(webhook_delete(s, "fw", hook), 0);
    CHECK_INT(create(s, new_task("fw", "fwq", "x", 0), id), 0);
    /* None again, then one more added: its first task is delivered. */
    CHECK_INT(webhook_add(s, "fw", WEBHOOK_SPAWNED, &w), 0);
    memcpy(hook, w.id, sizeof hook);
    webhook_release(&w);
    CHECK_INT(create(s, new_task("fw", "fwq", "x", 0), id), 0);
    CHECK_INT(deliveries_of(s, hook), 1);
    /* Added just before a task, in one call: that task is delivered to it. */
    struct webhook w2;
    memset(&w2, 0, sizeof w2);
    w2.ns = xstrdup("fw");
    w2.name = xstrdup("hook2");
    w2.url = xstrdup("http://127.0.0.1:9/hook2");
    w2.secret = xstrdup("sekret");
    w2.events = WEBHOOK_SPAWNED;
    struct store_op ops[2];
    store_op_init(&ops[0], STORE_OP_WEBHOOK_ADD);
    ops[0].webhook = &w2;
    store_op_init_create(&ops[1], "fw", new_task("fw", "fwq", "x", 0));
    store_run_many(s, ops, 2);
    CHECK_INT(ops[0].err.code, 0);
    CHECK_INT(ops[1].err.code, 0);
    CHECK_INT(deliveries_of(s, w2.id), 1);
    CHECK_INT(deliveries_of(s, hook), 2);
    store_op_release(&ops[0]);
    store_op_release(&ops[1]);
    webhook_release(&w2);
    store_close(s);
    if (pgdb[0]) th_pg_db_drop(pgdb);
}

static void test_webhooks_and_deliveries(void) {
    struct store_options opt = {.webhooks_max = 2};
    struct store *s = open_store_opt(&opt);
    CHECK(s);
    struct tm_error e;
    struct webhook w;
    int64_t t0 = time_now_ms();
    CHECK_INT(webhook_add(s, "wh", WEBHOOK_SPAWNED | WEBHOOK_COMPLETED, &w), 0);
    char hook[ID_LEN + 1];
    memcpy(hook, w.id, sizeof hook);
    CHECK(hook[0]);
    CHECK(w.created_at >= t0 - 1000);
    webhook_release(&w);
    /* Listed in its namespace, by id, and among all; not in another namespace. */
    struct webhook *l = NULL;
    size_t n = 0;
    CHECK_INT(store_webhooks_list(s, "wh", NULL, &l, &n, &e), 0);
    bool listed = n == 1 && strcmp(l[0].id, hook) == 0 && l[0].ns && strcmp(l[0].ns, "wh") == 0 &&
                  l[0].name && strcmp(l[0].name, "hook") == 0 && l[0].url &&
                  strcmp(l[0].url, "http://127.0.0.1:9/hook") == 0 && l[0].secret &&
                  strcmp(l[0].secret, "sekret") == 0 &&
                  l[0].events == (WEBHOOK_SPAWNED | WEBHOOK_COMPLETED) && l[0].created_at > 0;
    webhooks_free(l, n);
    CHECK(listed);
    CHECK_INT(store_webhooks_list(s, "wh", hook, &l, &n, &e), 0);
    webhooks_free(l, n);
    CHECK_INT(n, 1);
    CHECK_INT(store_webhooks_list(s, "nothere", NULL, &l, &n, &e), 0);
    webhooks_free(l, n);
    CHECK_INT(n, 0);
    /* A read that fails hands back nothing: callers free the list only on success. */
    CHECK_INT(store_webhooks_list(s, "nothere", hook, &l, &n, &e), TM_ENOT_FOUND);
    bool nothing = l == NULL && n == 0;
    webhooks_free(l, n);
    CHECK(nothing);
    CHECK_INT(store_webhooks_list(s, NULL, NULL, &l, &n, &e), 0);
    bool among = false;
    for (size_t i = 0; i < n; i++)
        among = among || strcmp(l[i].id, hook) == 0;
    webhooks_free(l, n);
    CHECK(among);
    /* The cap per namespace. */
    struct webhook w2, w3;
    CHECK_INT(webhook_add(s, "wh", WEBHOOK_FAILED, &w2), 0);
    CHECK_INT(webhook_add(s, "wh", WEBHOOK_FAILED, &w3), TM_ECONFLICT);
    webhook_release(&w3);
    CHECK_INT(webhook_delete(s, "wh", w2.id), 0);
    webhook_release(&w2);

    /* spawned on create; completed on complete (task.updated is not asked for);
     * another namespace's task queues nothing. */
    char id[ID_LEN + 1], cid[ID_LEN + 1], tok[ID_LEN + 1], other[ID_LEN + 1];
    CHECK_INT(create(s, new_task("wh", "whq", "x", 0), id), 0);
    CHECK_INT(create(s, new_task("nowh", "whq", "x", 0), other), 0);
    CHECK_INT(claim(s, "wh", "whq", NULL, 60000, 0, cid, tok), 0);
    CHECK_STR(cid, id);
    CHECK_INT(simple(s, STORE_OP_COMPLETE, "wh", id, tok, NULL), 0);
    struct event_page p;
    CHECK_INT(store_events_read(s, NULL, id, 0, 100, 0, &p, &e), 0);
    int64_t created_seq = p.n ? p.events[0].seq : -1,
            completed_seq = p.n ? p.events[p.n - 1].seq : -1;
    bool kinds = p.n == 3 && strcmp(p.events[2].kind, "task.completed") == 0;
    event_page_release(&p);
    CHECK(kinds);

    struct webhook_delivery *d = NULL;
    CHECK_INT(store_deliveries_list(s, hook, 10, &d, &n, &e), 0);
    bool newest_first = n == 2 && strcmp(d[0].event, "task.completed") == 0 &&
                        d[0].seq == completed_seq && strcmp(d[1].event, "task.spawned") == 0 &&
                        d[1].seq == created_seq && strcmp(d[0].webhook_id, hook) == 0 &&
                        strcmp(d[0].status, "pending") == 0 && d[0].attempts == 0 &&
                        strcmp(d[0].id, d[1].id) != 0;
    if (!newest_first)
        for (size_t i = 0; i < n; i++)
            printf("    delivery %zu: event '%s' seq %lld status '%s'\n", i, d[i].event,
                   (long long)d[i].seq, d[i].status);
    deliveries_free(d, n);
    CHECK(newest_first);

    /* Claimed oldest first, with the webhook's url and secret and the event;
     * one delivery per webhook in flight: while the first is out, none. */
    struct webhook_delivery *c1 = claim_delivery(s, NULL, 0, 60000);
    bool due_ok = c1 && strcmp(c1->webhook_id, hook) == 0 &&
                  strcmp(c1->event, "task.spawned") == 0 && c1->url &&
                  strcmp(c1->url, "http://127.0.0.1:9/hook") == 0 && c1->secret &&
                  strcmp(c1->secret, "sekret") == 0 && c1->ev.seq == created_seq &&
                  strcmp(c1->ev.task_id, id) == 0 && strcmp(c1->ev.kind, "task.created") == 0 &&
                  c1->ev.task_json;
    struct webhook_delivery *busy = claim_delivery(s, NULL, 0, 60000);
    bool none_while_busy = busy == NULL;
    deliveries_free(busy, busy ? 1 : 0);
    if (!due_ok || !none_while_busy) deliveries_free(c1, c1 ? 1 : 0);
    CHECK(due_ok);
    CHECK(none_while_busy);
    int64_t next_at = 0;
    CHECK_INT(store_deliveries_next_at(s, &next_at, &e), 0);
    CHECK(next_at > 0 && next_at <= time_now_ms());

    /* Delivered: no longer due, and the webhook is free for the next one. */
    int rc = delivery_set(s, c1, "delivered", 204);
    deliveries_free(c1, 1);
    CHECK_INT(rc, 0);
    /* A skipped webhook gives nothing. */
    const char *skip[] = {hook};
    struct webhook_delivery *c2 = claim_delivery(s, skip, 1, 60000);
    bool skipped = c2 == NULL;
    deliveries_free(c2, c2 ? 1 : 0);
    CHECK(skipped);
    c2 = claim_delivery(s, NULL, 0, 60000);
    bool second = c2 && strcmp(c2->event, "task.completed") == 0 && c2->ev.seq == completed_seq &&
                  c2->ev.phase == TASK_COMPLETED;
    /* Failed for now (due again later): the webhook is free, the row pending. */
    rc = c2 ? delivery_set(s, c2, "pending", 500) : -1;
    deliveries_free(c2, c2 ? 1 : 0);
    CHECK(second);
    CHECK_INT(rc, 0);
    CHECK_INT(store_deliveries_list(s, hook, 10, &d, &n, &e), 0);
    bool updated = n == 2 && strcmp(d[1].status, "delivered") == 0 && d[1].attempts == 1 &&
                   d[1].last_status == 204 && strcmp(d[0].status, "pending") == 0 &&
                   d[0].last_status == 500;
    deliveries_free(d, n);
    CHECK(updated);

    /* Deleted in another namespace: not found; in its own: gone with its deliveries. */
    CHECK_INT(webhook_delete(s, "nowh", hook), TM_ENOT_FOUND);
    CHECK_INT(webhook_delete(s, "wh", hook), 0);
    CHECK_INT(webhook_delete(s, "wh", hook), TM_ENOT_FOUND);
    CHECK_INT(store_webhooks_list(s, "wh", NULL, &l, &n, &e), 0);
    webhooks_free(l, n);
    CHECK_INT(n, 0);
    CHECK_INT(store_deliveries_list(s, hook, 10, &d, &n, &e), 0);
    deliveries_free(d, n);
    CHECK_INT(n, 0);
    struct webhook_delivery *gone = claim_delivery(s, NULL, 0, 60000);
    bool none_left = gone == NULL;
    deliveries_free(gone, gone ? 1 : 0);
    CHECK(none_left);
    store_close(s);
}

/* ---- API tokens ---- */

static int token_create(struct store *s, const struct token *t) {
    struct store_op op;
    store_op_init(&op, STORE_OP_TOKEN_CREATE);
    op.token = t;
    int rc = store_run(s, &op);
    store_op_release(&op);
    return rc;
}

static int64_t token_purge(struct store *s) {
    struct store_op op;
    store_op_init(&op, STORE_OP_TOKEN_PURGE);
    int rc = store_run(s, &op);
    store_op_release(&op);
    return rc ? -1 : op.fired;
}

static int token_revoke(struct store *s, const char *id) {
    struct store_op op;
    store_op_init(&op, STORE_OP_TOKEN_REVOKE);
    snprintf(op.id, sizeof op.id, "%s", id);
    int rc = store_run(s, &op);
    store_op_release(&op);
    return rc;
}

static void test_tokens(void) {
    struct store *s = open_store(0);
    CHECK(s);
    struct tm_error e;
    bool any = true;
    int64_t now = time_now_ms();
    struct token **all = NULL;
    size_t n0 = 0, n = 0;
    CHECK_INT(store_token_list(s, &all, &n0, &e), 0);
    tokens_free(all, n0);
    CHECK_INT(store_token_any(s, &any, &e), 0);
    if (n0 == 0) CHECK(!any); /* a fresh database */
    char bearer[TOKEN_STRING_LEN + 1];
    /* Expired a second ago: a token all the same (no open mode). */
    struct token *old = token_new(TOKEN_READER, "tk", NULL, now - 5000, now - 1000, bearer);
    struct token *t = token_new(TOKEN_WORKER, "tk", "builder", now, 0, bearer);
    CHECK_INT(token_create(s, old), 0);
    CHECK_INT(store_token_any(s, &any, &e), 0);
    CHECK(any);
    CHECK_INT(token_create(s, t), 0);
    CHECK_INT(token_create(s, t), TM_ECONFLICT); /* the same id again */
    CHECK_INT(store_token_any(s, &any, &e), 0);
    CHECK(any);

    struct token *r = NULL;
    CHECK_INT(store_token_get(s, t->id, &r, &e), 0);
    bool same = r && strcmp(r->id, t->id) == 0 && r->role == TOKEN_WORKER && r->namespace &&
                strcmp(r->namespace, "tk") == 0 && r->name && strcmp(r->name, "builder") == 0 &&
                memcmp(r->hash, t->hash, TOKEN_HASH_LEN) == 0 && r->created_at == now &&
                r->expires_at == 0 && r->revoked_at == 0;
    token_free(r);
    CHECK(same);
    CHECK_INT(store_token_get(s, old->id, &r, &e), 0);
    bool old_same = r && r->role == TOKEN_READER && r->name == NULL && r->expires_at == now - 1000;
    token_free(r);
    CHECK(old_same);
    r = NULL;
    CHECK_INT(store_token_get(s, "0123456789abcdef", &r, &e), TM_ENOT_FOUND);
    CHECK(r == NULL);

    /* Listed oldest first. */
    CHECK_INT(store_token_list(s, &all, &n, &e), 0);
    int at_old = -1, at_t = -1;
    for (size_t i = 0; i < n; i++) {
        if (strcmp(all[i]->id, old->id) == 0) at_old = (int)i;
        if (strcmp(all[i]->id, t->id) == 0) at_t = (int)i;
    }
    tokens_free(all, n);
    CHECK_INT(n, n0 + 2);
    CHECK(at_old >= 0 && at_t > at_old);

    /* Revoked: seen by the next read; a repeat is fine; unknown ids are not found. */
    CHECK_INT(token_revoke(s, t->id), 0);
    CHECK_INT(store_token_get(s, t->id, &r, &e), 0);
    int64_t revoked_at = r ? r->revoked_at : 0;
    token_free(r);
    CHECK(revoked_at > 0);
    CHECK_INT(token_revoke(s, t->id), 0);
    CHECK_INT(token_revoke(s, "0123456789abcdef"), TM_ENOT_FOUND);
    /* Every token revoked or expired: still tokens, until purged. */
    CHECK_INT(store_token_any(s, &any, &e), 0);
    CHECK(any);
    CHECK(token_purge(s) >= 2);
    CHECK_INT(store_token_get(s, t->id, &r, &e), TM_ENOT_FOUND);
    CHECK_INT(store_token_get(s, old->id, &r, &e), TM_ENOT_FOUND);
    if (n0 == 0) {
        CHECK_INT(store_token_any(s, &any, &e), 0);
        CHECK(!any);
    }
    CHECK_INT(token_purge(s), 0);
    token_free(old);
    token_free(t);
    store_close(s);
}

/* ---- Claims from many threads at once ---- */

#define CONC_TASKS   120
#define CONC_THREADS 6

struct conc {
    struct store *s[2]; /* the threads take turns between them (one store, or two on PostgreSQL) */
    const char *queue;
    pthread_mutex_t lock;
    char ids[CONC_TASKS * 2][ID_LEN + 1];
    char tokens[CONC_TASKS * 2][ID_LEN + 1];
    int n;
    int errors;
    /* store_submit bursts */
    pthread_cond_t cond;
    int pending;
};

static void conc_record(struct conc *c, int rc, const struct store_op *op) {
    pthread_mutex_lock(&c->lock);
    if (rc)
        c->errors++;
    else if (op->claimed && c->n < CONC_TASKS * 2) {
        memcpy(c->ids[c->n], op->task->id, ID_LEN + 1);
        memcpy(c->tokens[c->n], op->new_lease_token, ID_LEN + 1);
        c->n++;
    }
    pthread_mutex_unlock(&c->lock);
}

static void conc_claim_init(struct store_op *op, const char *queue) {
    store_op_init(op, STORE_OP_CLAIM);
    op->ns = "cc";
    op->queue = queue;
    op->worker = "w";
    op->lease_ms = 60000;
}

struct conc_arg {
    struct conc *c;
    int index;
};

/* Claims with store_run until nothing comes. */
static void *conc_thread(void *arg) {
    struct conc_arg *a = arg;
    struct store *s = a->c->s[a->index % 2] ? a->c->s[a->index % 2] : a->c->s[0];
    for (int empty = 0; empty < 2;) {
        struct store_op op;
        conc_claim_init(&op, a->c->queue);
        int rc = store_run(s, &op);
        conc_record(a->c, rc, &op);
        if (rc || !op.claimed) empty++;
        store_op_release(&op);
    }
    return NULL;
}

static void conc_done(struct store_op *op) {
    struct conc *c = op->udata;
    conc_record(c, op->err.code, op);
    pthread_mutex_lock(&c->lock);
    c->pending--;
    pthread_cond_signal(&c->cond);
    pthread_mutex_unlock(&c->lock);
}

/* Every task of `queue` claimed exactly once, by threads on the stores
 * in c->s and bursts of submits from this thread into c->s[0]. */
static void conc_run(struct conc *c, const char ids[][ID_LEN + 1]) {
    pthread_t th[CONC_THREADS];
    struct conc_arg args[CONC_THREADS];
    for (int i = 0; i < CONC_THREADS; i++) {
        args[i] = (struct conc_arg){c, i};
        pthread_create(&th[i], NULL, conc_thread, &args[i]);
    }
    /* Meanwhile, bursts of claims handed to the writer at once, so that
     * several claims share one batch. */
    enum { BURST = 16 };
    struct store_op ops[BURST];
    for (int round = 0; round < 3; round++) {
        pthread_mutex_lock(&c->lock);
        c->pending = BURST;
        pthread_mutex_unlock(&c->lock);
        for (int i = 0; i < BURST; i++) {
            conc_claim_init(&ops[i], c->queue);
            ops[i].done = conc_done;
            ops[i].udata = c;
            store_submit(c->s[0], &ops[i]);
        }
        pthread_mutex_lock(&c->lock);
        while (c->pending > 0)
            pthread_cond_wait(&c->cond, &c->lock);
        pthread_mutex_unlock(&c->lock);
        for (int i = 0; i < BURST; i++)
            store_op_release(&ops[i]);
    }
    for (int i = 0; i < CONC_THREADS; i++)
        pthread_join(th[i], NULL);
    CHECK_INT(c->errors, 0);
    CHECK_INT(c->n, CONC_TASKS);
    /* Each task exactly once, each with its own lease token. */
    for (int i = 0; i < CONC_TASKS; i++) {
        int seen = 0;
        for (int j = 0; j < c->n; j++)
            seen += strcmp(c->ids[j], ids[i]) == 0;
        if (seen != 1) {
            th_fail(__FILE__, __LINE__, "task %s handed out %d times", ids[i], seen);
            return;
        }
        for (int j = i + 1; j < c->n; j++)
            CHECK(strcmp(c->tokens[i], c->tokens[j]) != 0);
    }
    for (int i = 0; i < CONC_TASKS; i++) {
        struct task *t = get(c->s[0], "cc", ids[i]);
        CHECK(t);
        bool once = t->phase == TASK_RUNNING && t->attempt == 1;
        task_free(t);
        CHECK(once);
    }
}

/* CONC_TASKS tasks in `queue`, created in batches of 20. */
static int conc_create(struct store *s, const char *queue, char ids[][ID_LEN + 1]) {
    for (int b = 0; b < CONC_TASKS; b += 20) {
        struct store_op op;
        store_op_init(&op, STORE_OP_CREATE);
        op.tasks = xcalloc(20, sizeof *op.tasks);
        for (int i = 0; i < 20; i++)
            op.tasks[i] = new_task("cc", queue, "x", 0);
        op.ntasks = 20;
        int rc = store_run(s, &op);
        for (int i = 0; rc == 0 && i < 20; i++)
            memcpy(ids[b + i], op.tasks[i]->id, ID_LEN + 1);
        store_op_release(&op);
        if (rc) return rc;
    }
    return 0;
}

static void test_concurrent_claims_once_each(void) {
    struct store *s = open_store(0);
    CHECK(s);
    static char ids[CONC_TASKS][ID_LEN + 1];
    static struct conc c;
    memset(&c, 0, sizeof c);
    c.s[0] = s;
    c.queue = "concq";
    pthread_mutex_init(&c.lock, NULL);
    pthread_cond_init(&c.cond, NULL);
    if (conc_create(s, c.queue, ids) == 0)
        conc_run(&c, ids);
    else
        th_fail(__FILE__, __LINE__, "creating the tasks failed");
    pthread_mutex_destroy(&c.lock);
    pthread_cond_destroy(&c.cond);
    store_close(s);
}

static void test_two_stores_claim_once_each(void) {
    if (strncmp(url, "postgres", 8) != 0) {
        th_skip("two stores on one database need PostgreSQL");
        return;
    }
    struct store *a = open_store(0);
    CHECK(a);
    struct store *b = open_store(0);
    if (!b) {
        store_close(a);
        return;
    }
    static char ids[CONC_TASKS][ID_LEN + 1];
    static struct conc c;
    memset(&c, 0, sizeof c);
    c.s[0] = a;
    c.s[1] = b;
    c.queue = "conc2q";
    pthread_mutex_init(&c.lock, NULL);
    pthread_cond_init(&c.cond, NULL);
    if (conc_create(b, c.queue, ids) == 0)
        conc_run(&c, ids);
    else
        th_fail(__FILE__, __LINE__, "creating the tasks failed");
    pthread_mutex_destroy(&c.lock);
    pthread_cond_destroy(&c.cond);
    store_close(b);
    store_close(a);
}

/* ---- Ops of one batch: what a backend keeps between them ---- */

/*
 * A gate on the writer: an op whose done() (called on the writer thread,
 * after its batch commits) waits until the gate opens. Ops submitted
 * meanwhile queue up, and the writer takes them all as its next batch:
 * the one way to be sure that several ops share one transaction.
 */
struct gate {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    bool entered, open;
    int left; /* ops of the batch not done yet */
};

static void gate_hold(struct store_op *op) {
    struct gate *g = op->udata;
    pthread_mutex_lock(&g->lock);
    g->entered = true;
    pthread_cond_broadcast(&g->cond);
    while (!g->open)
        pthread_cond_wait(&g->cond, &g->lock);
    pthread_mutex_unlock(&g->lock);
}

static void gate_op_done(struct store_op *op) {
    struct gate *g = op->udata;
    pthread_mutex_lock(&g->lock);
    g->left--;
    pthread_cond_broadcast(&g->cond);
    pthread_mutex_unlock(&g->lock);
}

/* Applies ops[0..n) as one batch of the writer (see struct gate) and
 * waits until each is done; each op's outcome is in its err. */
static void run_one_batch(struct store *s, struct store_op *ops, size_t n) {
    struct gate g = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, false, false, (int)n};
    struct store_op hold;
    store_op_init(&hold, STORE_OP_WATCH); /* of no task: done at once */
    snprintf(hold.id, sizeof hold.id, "%s", "00000000000000000000000000000000");
    hold.done = gate_hold;
    hold.udata = &g;
    store_submit(s, &hold);
    pthread_mutex_lock(&g.lock);
    while (!g.entered)
        pthread_cond_wait(&g.cond, &g.lock);
    pthread_mutex_unlock(&g.lock);
    for (size_t i = 0; i < n; i++) {
        ops[i].done = gate_op_done;
        ops[i].udata = &g;
        store_submit(s, &ops[i]);
    }
    pthread_mutex_lock(&g.lock);
    g.open = true;
    pthread_cond_broadcast(&g.cond);
    while (g.left > 0)
        pthread_cond_wait(&g.cond, &g.lock);
    pthread_mutex_unlock(&g.lock);
    store_op_release(&hold);
    pthread_mutex_destroy(&g.lock);
    pthread_cond_destroy(&g.cond);
}

static void claim_op_init(struct store_op *op, const char *ns, const char *queue) {
    store_op_init(op, STORE_OP_CLAIM);
    op->ns = ns;
    op->queue = queue;
    op->worker = "w";
    op->lease_ms = 60000;
}

static void id_op_init(struct store_op *op, enum store_op_kind kind, const char *ns, const char *id,
                       const char *token) {
    store_op_init(op, kind);
    op->ns = ns;
    snprintf(op->id, sizeof op->id, "%s", id);
    op->lease_token = token;
}

static void test_batch_claim_many_in_order(void) {
    struct store *s = open_store(0);
    CHECK(s);
    enum { N = 20, CLAIMS = 25 };
    char ids[N][ID_LEN + 1];
    /* Priorities in a shuffled order: i * 7 % N is a permutation of 0..N-1. */
    for (int i = 0; i < N; i++)
        CHECK_INT(create(s, new_task("bc", "bclaim", "x", i * 7 % N), ids[i]), 0);
    struct store_op ops[CLAIMS];
    for (int i = 0; i < CLAIMS; i++)
        claim_op_init(&ops[i], "bc", "bclaim");
    run_one_batch(s, ops, CLAIMS);
    /* The first N claims get every task, lowest priority first; the rest none. */
    for (int i = 0; i < CLAIMS; i++) {
        CHECK_INT(ops[i].err.code, 0);
        CHECK(ops[i].claimed == (i < N));
        if (i >= N || !ops[i].claimed) continue;
        CHECK_INT(ops[i].task->priority, i);
        CHECK_INT(ops[i].task->phase, TASK_RUNNING);
        struct task *t = get(s, "bc", ops[i].task->id);
        CHECK(t);
        if (!t) continue;
        CHECK_INT(t->phase, TASK_RUNNING);
        CHECK_INT(t->attempt, 1);
        CHECK_INT(t->priority, i);
        CHECK_STR(t->lease_token, ops[i].new_lease_token);
        task_free(t);
        for (int k = 0; k < i; k++)
            CHECK(strcmp(ops[k].task->id, ops[i].task->id) != 0);
    }
    for (int i = 0; i < CLAIMS; i++)
        store_op_release(&ops[i]);
    char id[ID_LEN + 1], tok[ID_LEN + 1];
    CHECK_INT(claim(s, "bc", "bclaim", NULL, 1000, 0, id, tok), 0);
    CHECK_STR(id, "");
    store_close(s);
}

static void test_batch_claim_skips_changed(void) {
    struct store *s = open_store(0);
    CHECK(s);
    char a[ID_LEN + 1], b[ID_LEN + 1], c[ID_LEN + 1], d[ID_LEN + 1], e[ID_LEN + 1];
    CHECK_INT(create(s, new_task("bk", "bskip", "x", 1), a), 0);
    CHECK_INT(create(s, new_task("bk", "bskip", "x", 2), b), 0);
    CHECK_INT(create(s, new_task("bk", "bskip", "x", 3), c), 0);
    CHECK_INT(create(s, new_task("bk", "bskip", "x", 4), d), 0);
    CHECK_INT(create(s, new_task("bk", "bskip", "x", 0), e), 0);
    /* E, first in line, is cancelled before any claim. The first claim
     * may find A, B and C at once (three claims of the queue): C, cancelled
     * after it, must not reach the third. */
    enum { N = 5 };
    struct store_op ops[N];
    id_op_init(&ops[0], STORE_OP_CANCEL, "bk", e, NULL);
    claim_op_init(&ops[1], "bk", "bskip");
    id_op_init(&ops[2], STORE_OP_CANCEL, "bk", c, NULL);
    claim_op_init(&ops[3], "bk", "bskip");
    claim_op_init(&ops[4], "bk", "bskip");
    run_one_batch(s, ops, N);
    for (int i = 0; i < N; i++)
        CHECK_INT(ops[i].err.code, 0);
    CHECK(ops[0].task && ops[0].task->phase == TASK_CANCELLED);
    CHECK(ops[1].claimed && strcmp(ops[1].task->id, a) == 0);
    CHECK(ops[2].task && ops[2].task->phase == TASK_CANCELLED);
    CHECK(ops[3].claimed && strcmp(ops[3].task->id, b) == 0);
    CHECK(ops[4].claimed && strcmp(ops[4].task->id, d) == 0);
    for (int i = 0; i < N; i++)
        store_op_release(&ops[i]);
    const char *cancelled[] = {c, e};
    for (int i = 0; i < 2; i++) {
        struct task *t = get(s, "bk", cancelled[i]);
        CHECK(t && t->phase == TASK_CANCELLED && t->attempt == 0);
        task_free(t);
    }
    /* The same with a pause: G paused between two claims is not handed out. */
    char f[ID_LEN + 1], g[ID_LEN + 1], h[ID_LEN + 1];
    CHECK_INT(create(s, new_task("bk", "bpause", "x", 1), f), 0);
    CHECK_INT(create(s, new_task("bk", "bpause", "x", 2), g), 0);
    CHECK_INT(create(s, new_task("bk", "bpause", "x", 3), h), 0);
    claim_op_init(&ops[0], "bk", "bpause");
    id_op_init(&ops[1], STORE_OP_PAUSE, "bk", g, NULL);
    claim_op_init(&ops[2], "bk", "bpause");
    claim_op_init(&ops[3], "bk", "bpause");
    run_one_batch(s, ops, 4);
    for (int i = 0; i < 4; i++)
        CHECK_INT(ops[i].err.code, 0);
    CHECK(ops[0].claimed && strcmp(ops[0].task->id, f) == 0);
    CHECK(ops[1].task && ops[1].task->paused);
    CHECK(ops[2].claimed && strcmp(ops[2].task->id, h) == 0);
    CHECK(!ops[3].claimed);
    for (int i = 0; i < 4; i++)
        store_op_release(&ops[i]);
    struct task *t = get(s, "bk", g);
    CHECK(t && t->phase == TASK_PENDING && t->paused && t->attempt == 0);
    task_free(t);
    store_close(s);
}

static void test_batch_claim_sees_new_ready(void) {
    struct store *s = open_store(0);
    CHECK(s);
    char x[ID_LEN + 1], y[ID_LEN + 1], z[ID_LEN + 1];
    CHECK_INT(create(s, new_task("bn", "bnew", "x", 5), x), 0);
    CHECK_INT(create(s, new_task("bn", "bnew", "x", 6), y), 0);
    CHECK_INT(create(s, new_task("bn", "bnew", "x", 0), z), 0);
    CHECK_INT(simple(s, STORE_OP_PAUSE, "bn", z, NULL, NULL), 0);
    /* X goes first (Y may be kept for the next claim); Z resumed, then W
     * submitted, each ahead of Y, come before it. */
    struct store_op ops[5];
    claim_op_init(&ops[0], "bn", "bnew");
    id_op_init(&ops[1], STORE_OP_RESUME, "bn", z, NULL);
    claim_op_init(&ops[2], "bn", "bnew");
    store_op_init_create(&ops[3], "bn", new_task("bn", "bnew", "x", -1));
    claim_op_init(&ops[4], "bn", "bnew");
    run_one_batch(s, ops, 5);
    for (int i = 0; i < 5; i++)
        CHECK_INT(ops[i].err.code, 0);
    CHECK(ops[0].claimed && strcmp(ops[0].task->id, x) == 0);
    CHECK(ops[2].claimed && strcmp(ops[2].task->id, z) == 0);
    CHECK(ops[3].task && ops[3].created);
    CHECK(ops[4].claimed && ops[3].task && strcmp(ops[4].task->id, ops[3].task->id) == 0);
    for (int i = 0; i < 5; i++)
        store_op_release(&ops[i]);
    struct task *t = get(s, "bn", y);
    CHECK(t && t->phase == TASK_PENDING);
    task_free(t);
    store_close(s);
}

static void test_batch_two_heartbeats(void) {
    struct store *s = open_store(0);
    CHECK(s);
    char id[ID_LEN + 1], tok[ID_LEN + 1];
    if (!create_claimed(s, "bh", "bhb", id, tok)) return;
    struct task *before = get(s, "bh", id);
    CHECK(before);
    if (!before) return;
    json_t *a1 = json_pack("{s:i}", "first", 1), *a2 = json_pack("{s:i}", "second", 2);
    struct store_op ops[2];
    for (int i = 0; i < 2; i++) {
        id_op_init(&ops[i], STORE_OP_HEARTBEAT, "bh", id, tok);
        ops[i].lease_ms = 60000;
        ops[i].attributes = i ? a2 : a1;
        ops[i].has_progress = true;
        ops[i].progress.has_processed = true;
        ops[i].progress.processed = i + 1;
    }
    ops[1].progress.has_ratio = true;
    ops[1].progress.ratio = 0.5;
    run_one_batch(s, ops, 2);
    CHECK_INT(ops[0].err.code, 0);
    CHECK_INT(ops[1].err.code, 0);
    /* The second saw the first: both attributes, and one version each. */
    CHECK(ops[1].task && ops[1].task->version == before->version + 2);
    for (int i = 0; i < 2; i++)
        store_op_release(&ops[i]);
    json_decref(a1);
    json_decref(a2);
    struct task *t = get(s, "bh", id);
    CHECK(t);
    if (t) {
        CHECK_INT(t->version, before->version + 2);
        CHECK(t->attributes && strstr(t->attributes, "\"first\"") &&
              strstr(t->attributes, "\"second\""));
        CHECK_INT(t->progress.processed, 2);
        CHECK(t->progress.ratio == 0.5);
        CHECK_INT(t->phase, TASK_RUNNING);
    }
    task_free(t);
    task_free(before);
    /* The events of the batch: one per heartbeat, versions in order. */
    struct event_page p = {0};
    struct tm_error e;
    err_clear(&e);
    CHECK_INT(store_events_read(s, "bh", id, 0, 100, 0, &p, &e), 0);
    int64_t last = 0;
    size_t hb = 0;
    for (size_t i = 0; i < p.n; i++) {
        CHECK(p.events[i].version > last);
        last = p.events[i].version;
        hb += strcmp(p.events[i].cause, "heartbeat") == 0;
    }
    CHECK_INT(hb, 2);
    event_page_release(&p);
    store_close(s);
}

static void test_batch_child_and_parent(void) {
    struct store *s = open_store(0);
    CHECK(s);
    char p[ID_LEN + 1];
    CHECK_INT(create_family(s, "bpar", "bkids", p), 0);
    char pid[ID_LEN + 1], ptok[ID_LEN + 1];
    CHECK_INT(claim(s, "n", "bpar", NULL, 60000, 0, pid, ptok), 0);
    CHECK_STR(pid, p);
    CHECK_INT(simple(s, STORE_OP_COMPLETE, "n", p, ptok, NULL), 0);
    struct task *r = get(s, "n", p);
    CHECK(r && r->phase == TASK_WAITING && r->awaiting_children);
    int64_t version = r ? r->version : 0;
    task_free(r);
    /* Both children claimed in one batch, then completed in another: each
     * roll-up sees the one before it, and the last completes the parent. */
    struct store_op ops[2];
    claim_op_init(&ops[0], "n", "bkids");
    claim_op_init(&ops[1], "n", "bkids");
    run_one_batch(s, ops, 2);
    CHECK(ops[0].claimed && ops[1].claimed);
    r = get(s, "n", p);
    CHECK(r && r->child_processing == 2 && r->child_pending == 0);
    CHECK(r && r->version == version + 2);
    task_free(r);
    struct store_op done[2];
    for (int i = 0; i < 2; i++) {
        id_op_init(&done[i], STORE_OP_COMPLETE, "n", ops[i].claimed ? ops[i].task->id : "",
                   ops[i].new_lease_token);
    }
    run_one_batch(s, done, 2);
    CHECK_INT(done[0].err.code, 0);
    CHECK_INT(done[1].err.code, 0);
    for (int i = 0; i < 2; i++) {
        store_op_release(&ops[i]);
        store_op_release(&done[i]);
    }
    r = get(s, "n", p);
    CHECK(r);
    if (r) {
        CHECK_INT(r->child_processed, 2);
        CHECK_INT(r->child_processing, 0);
        CHECK_INT(r->child_pending, 0);
        CHECK_INT(r->phase, TASK_COMPLETED);
        CHECK(!r->awaiting_children);
    }
    task_free(r);
    store_close(s);
}

/* ---- Two writers claiming and completing batches at once ---- */

#define WORK_TASKS   150
#define WORK_THREADS 4
#define WORK_CLAIMS  8

struct work_run {
    struct store *s[2];
    pthread_mutex_t lock;
    char ids[WORK_TASKS * 2][ID_LEN + 1];
    int n, errors;
};

struct work_arg {
    struct work_run *w;
    int index;
};

/* Claims WORK_CLAIMS at a time, then heartbeats and completes what came,
 * each task's two calls in one batch, until a claim finds nothing twice. */
static void *work_thread(void *arg) {
    struct work_arg *a = arg;
    struct work_run *w = a->w;
    struct store *s = w->s[a->index % 2] ? w->s[a->index % 2] : w->s[0];
    for (int empty = 0; empty < 2;) {
        struct store_op ops[WORK_CLAIMS];
        for (int i = 0; i < WORK_CLAIMS; i++)
            claim_op_init(&ops[i], "wk", "work");
        store_run_many(s, ops, WORK_CLAIMS);
        struct store_op calls[2 * WORK_CLAIMS];
        int ncalls = 0, got = 0;
        pthread_mutex_lock(&w->lock);
        for (int i = 0; i < WORK_CLAIMS; i++) {
            if (ops[i].err.code) w->errors++;
            if (!ops[i].claimed) continue;
            got++;
            if (w->n < WORK_TASKS * 2) memcpy(w->ids[w->n++], ops[i].task->id, ID_LEN + 1);
            id_op_init(&calls[ncalls], STORE_OP_HEARTBEAT, "wk", ops[i].task->id,
                       ops[i].new_lease_token);
            calls[ncalls++].lease_ms = 60000;
            id_op_init(&calls[ncalls++], STORE_OP_COMPLETE, "wk", ops[i].task->id,
                       ops[i].new_lease_token);
        }
        pthread_mutex_unlock(&w->lock);
        if (ncalls) store_run_many(s, calls, (size_t)ncalls);
        pthread_mutex_lock(&w->lock);
        for (int i = 0; i < ncalls; i++) {
            if (calls[i].err.code) w->errors++;
            store_op_release(&calls[i]);
        }
        pthread_mutex_unlock(&w->lock);
        for (int i = 0; i < WORK_CLAIMS; i++)
            store_op_release(&ops[i]);
        empty = got ? 0 : empty + 1;
    }
    return NULL;
}

static void test_two_stores_work_batches(void) {
    if (strncmp(url, "postgres", 8) != 0) {
        th_skip("two stores on one database need PostgreSQL");
        return;
    }
    struct store *a = open_store(0);
    CHECK(a);
    struct store *b = open_store(0);
    if (!a || !b) {
        store_close(a);
        store_close(b);
        return;
    }
    /* Every task a child of one parent: every claim and completion, on
     * either store, also writes the parent's row. */
    char parent[ID_LEN + 1];
    CHECK_INT(create(a, new_task("wk", "workparent", "x", 0), parent), 0);
    static char ids[WORK_TASKS][ID_LEN + 1];
    for (int k = 0; k < WORK_TASKS; k += 25) {
        struct store_op op;
        store_op_init(&op, STORE_OP_CREATE);
        op.tasks = xcalloc(25, sizeof *op.tasks);
        for (int i = 0; i < 25; i++) {
            op.tasks[i] = new_task("wk", "work", "x", (k + i) % 7);
            memcpy(op.tasks[i]->parent_id, parent, ID_LEN + 1);
        }
        op.ntasks = 25;
        CHECK_INT(store_run(b, &op), 0);
        for (int i = 0; i < 25 && op.task; i++)
            memcpy(ids[k + i], op.tasks[i]->id, ID_LEN + 1);
        store_op_release(&op);
    }
    static struct work_run w;
    memset(&w, 0, sizeof w);
    w.s[0] = a;
    w.s[1] = b;
    pthread_mutex_init(&w.lock, NULL);
    pthread_t th[WORK_THREADS];
    struct work_arg args[WORK_THREADS];
    for (int i = 0; i < WORK_THREADS; i++) {
        args[i] = (struct work_arg){&w, i};
        pthread_create(&th[i], NULL, work_thread, &args[i]);
    }
    for (int i = 0; i < WORK_THREADS; i++)
        pthread_join(th[i], NULL);
    pthread_mutex_destroy(&w.lock);
    CHECK_INT(w.errors, 0);
    CHECK_INT(w.n, WORK_TASKS);
    /* Each task handed out once, then heartbeated and completed once. */
    for (int i = 0; i < WORK_TASKS; i++) {
        int seen = 0;
        for (int j = 0; j < w.n; j++)
            seen += strcmp(w.ids[j], ids[i]) == 0;
        if (seen != 1) {
            th_fail(__FILE__, __LINE__, "task %s handed out %d times", ids[i], seen);
            break;
        }
        struct task *t = get(a, "wk", ids[i]);
        bool once = t && t->phase == TASK_COMPLETED && t->attempt == 1 && t->version == 4;
        if (!once)
            th_fail(__FILE__, __LINE__, "task %s: phase %d, attempt %lld, version %lld", ids[i],
                    t ? (int)t->phase : -1, t ? (long long)t->attempt : -1,
                    t ? (long long)t->version : -1);
        task_free(t);
        if (!once) break;
    }
    /* No roll-up lost: created (+1), claimed (+1) and completed (+1) each
     * moved the parent's counts once. */
    struct task *p = get(a, "wk", parent);
    CHECK(p);
    if (p) {
        CHECK_INT(p->child_processed, WORK_TASKS);
        CHECK_INT(p->child_processing, 0);
        CHECK_INT(p->child_pending, 0);
        CHECK_INT(p->version, 1 + 3 * WORK_TASKS);
    }
    task_free(p);
    store_close(b);
    store_close(a);
}

/* ---- A batch that loses a deadlock is applied again, from the database ---- */

/* One statement on a connection of the test's own; its rows, or NULL on a
 * failure (reported). */
static PGresult *pg_exec_ok(PGconn *c, const char *sql) {
    PGresult *r = PQexec(c, sql);
    ExecStatusType st = PQresultStatus(r);
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
        th_fail(__FILE__, __LINE__, "%s: %s", sql, PQresultErrorMessage(r));
        PQclear(r);
        return NULL;
    }
    return r;
}

/* Whether a statement of another session waits on a lock x holds, asked
 * until one does or 20 s have passed: the tests below commit x's insert
 * once the store's statement waits on it, not after a fixed 300 ms (a
 * thread slow to start then met the key already committed, and the race
 * the test is about was never run, silently). pg_locks is read live, not
 * from the snapshot pg_stat_activity keeps for x's open transaction. */
static bool blocked_by(PGconn *x) {
    for (long long end = th_now_ms() + 20000;; th_sleep_ms(10)) {
        PGresult *r = pg_exec_ok(x,
                                 "SELECT count(*) FROM pg_locks l WHERE NOT l.granted"
                                 " AND pg_backend_pid() = ANY(pg_blocking_pids(l.pid))");
        bool blocked = r && atoi(PQgetvalue(r, 0, 0)) > 0;
        PQclear(r);
        if (blocked || !r) return blocked;
        if (th_now_ms() >= end) {
            th_fail(__FILE__, __LINE__, "waited 20000 ms for a statement to wait on the key");
            return false;
        }
    }
}

/*
 * A submit with an idempotency key whose insert meets the same key
 * inserted by another transaction that commits first (another node): its
 * savepoint undoes the insert, it finds the other task, and what the
 * undone insert noted (the queue's "submitted") is undone with it.
 */
struct keyed_submit {
    struct store *s;
    int rc;
    bool created;
    char id[ID_LEN + 1];
};

static void *keyed_submit_main(void *arg) {
    struct keyed_submit *k = arg;
    struct task *t = new_task("ik", "ikq", "x", 0);
    t->idempotency_key = xstrdup("the-key");
    struct store_op op;
    store_op_init_create(&op, "ik", t);
    k->rc = store_run(k->s, &op);
    k->created = op.created;
    if (k->rc == 0 && op.task) memcpy(k->id, op.task->id, ID_LEN + 1);
    store_op_release(&op);
    return NULL;
}

static void test_idempotency_race_undoes_its_insert(void) {
    if (strncmp(url, "postgres", 8) != 0) {
        th_skip("another transaction inserting first needs PostgreSQL (SQLite has one writer)");
        return;
    }
    struct store *s = open_store(0);
    CHECK(s);
    if (!s) return;
    char first[ID_LEN + 1];
    CHECK_INT(create(s, new_task("ik", "ikq", "x", 0), first), 0);
    /* Another transaction inserts a copy of it with the key, and holds it. */
    char other[ID_LEN + 1];
    id_new(other);
    PGconn *x = PQconnectdb(url);
    CHECK(PQstatus(x) == CONNECTION_OK);
    char sql[600];
    snprintf(sql, sizeof sql,
             "BEGIN; CREATE TEMP TABLE ik_copy AS SELECT * FROM tasks WHERE id = '%s';"
             " UPDATE ik_copy SET id = '%s', idempotency_key = 'the-key';"
             " INSERT INTO tasks SELECT * FROM ik_copy",
             first, other);
    PQclear(pg_exec_ok(x, sql));
    struct keyed_submit k = {.s = s};
    pthread_t t;
    pthread_create(&t, NULL, keyed_submit_main, &k);
    bool blocked = blocked_by(x); /* its insert waits on the other's key */
    PQclear(pg_exec_ok(x, "COMMIT"));
    PQfinish(x);
    pthread_join(t, NULL);
    CHECK(blocked);
    CHECK_INT(k.rc, 0);
    CHECK(!k.created);
    CHECK_STR(k.id, other);
    /* One submit counted (the first), not the undone one. */
    struct queue_stat *qs = NULL;
    size_t n = 0;
    struct tm_error e;
    int64_t minute = time_now_ms() / 60000;
    CHECK_INT(store_queue_stats(s, "ik", "ikq", minute - 1, minute + 1, &qs, &n, &e), 0);
    int64_t submitted = 0;
    for (size_t i = 0; i < n; i++)
        submitted += qs[i].submitted;
    free(qs);
    CHECK_INT(submitted, 1);
    store_close(s);
}

/*
 * On PostgreSQL a claim skips a task another transaction has locked (SKIP
 * LOCKED). If that transaction ends without changing the task, no event
 * says so: a claim that parked meanwhile looks again on its own (once a
 * sweep interval) and takes it within its wait, not after.
 */
struct parked_claim {
    struct store *s;
    int rc;
    char id[ID_LEN + 1], tok[ID_LEN + 1];
};

static void *parked_claim_main(void *arg) {
    struct parked_claim *pc = arg;
    pc->rc = claim(pc->s, "lk", "lkq", NULL, 60000, 5000, pc->id, pc->tok);
    return NULL;
}

static void test_parked_claim_looks_again_after_a_lock(void) {
    if (strncmp(url, "postgres", 8) != 0) {
        th_skip("SKIP LOCKED is PostgreSQL's; SQLite has one writer");
        return;
    }
    struct store *s = open_store(0);
    CHECK(s);
    if (!s) return;
    char id[ID_LEN + 1];
    CHECK_INT(create(s, new_task("lk", "lkq", "x", 0), id), 0);
    PGconn *x = PQconnectdb(url);
    CHECK(PQstatus(x) == CONNECTION_OK);
    char sql[200];
    snprintf(sql, sizeof sql, "BEGIN; SELECT id FROM tasks WHERE id = '%s' FOR UPDATE", id);
    PQclear(pg_exec_ok(x, sql));
    struct parked_claim pc = {.s = s};
    pthread_t t;
    pthread_create(&t, NULL, parked_claim_main, &pc);
    bool held;
    TRY_WAIT_UNTIL(held, parked(s, false) >= 1, 5000, "the claim to park");
    PQclear(pg_exec_ok(x, "COMMIT")); /* the task unchanged: no event */
    PQfinish(x);
    pthread_join(t, NULL);
    CHECK_INT(pc.rc, 0);
    CHECK_STR(pc.id, id);
    store_close(s);
}

struct batch_run {
    struct store *s;
    struct store_op *ops;
    size_t n;
};

static void *batch_thread(void *arg) {
    struct batch_run *br = arg;
    run_one_batch(br->s, br->ops, br->n);
    return NULL;
}

/*
 * A rename to a name that another transaction (another node) is inserting:
 * the rename's check cannot see that row, its UPDATE waits on the unique
 * key and is refused when the other commits. That refusal is the rename's
 * own 409; the other ops of its batch go through.
 */
static struct store_doc *doc_new(const char *name) {
    struct store_doc *d = xcalloc(1, sizeof *d);
    d->ns = xstrdup("dr");
    d->name = xstrdup(name);
    d->body = xstrdup("{\"type\":\"x\"}");
    return d;
}

static void doc_put_op(struct store_op *op, struct store_doc *d, bool create) {
    store_op_init(op, STORE_OP_DOC_PUT);
    op->ns = "dr";
    op->doc_kind = STORE_DOC_DEFINITION;
    op->doc = d;
    op->flag = create;
}

/* Creates d (a definition or a schedule), which it frees; its id in id. */
static void doc_create(struct store *s, struct store_doc *d, enum store_doc_kind kind,
                       char id[ID_LEN + 1]) {
    struct store_op op;
    doc_put_op(&op, d, true);
    op.doc_kind = kind;
    CHECK_INT(store_run(s, &op), 0);
    CHECK_INT(op.err.code, 0);
    memcpy(id, d->id, ID_LEN + 1);
    store_op_release(&op);
    store_doc_release(d);
    free(d);
}

static void test_rename_meets_a_name_being_inserted(void) {
    if (strncmp(url, "postgres", 8) != 0) {
        th_skip("another transaction inserting first needs PostgreSQL (SQLite has one writer)");
        return;
    }
    struct store *s = open_store(0);
    CHECK(s);
    if (!s) return;
    char aid[ID_LEN + 1];
    doc_create(s, doc_new("dr-a"), STORE_DOC_DEFINITION, aid);
    /* Another transaction inserts "dr-taken" and holds it. */
    char other[ID_LEN + 1];
    id_new(other);
    PGconn *x = PQconnectdb(url);
    CHECK(PQstatus(x) == CONNECTION_OK);
    char sql[400];
    snprintf(sql, sizeof sql,
             "BEGIN; INSERT INTO definitions(id,namespace,name,body,created_at,updated_at)"
             " VALUES('%s','dr','dr-taken','{}',0,0)",
             other);
    PQclear(pg_exec_ok(x, sql));
    /* One batch: the rename of dr-a to dr-taken, and a task submitted. */
    struct store_op ops[2];
    struct store_doc *r = doc_new("dr-taken");
    memcpy(r->id, aid, sizeof r->id);
    doc_put_op(&ops[0], r, false);
    store_op_init_create(&ops[1], "dr", new_task("dr", "drq", "x", 0));
    struct batch_run br = {s, ops, 2};
    pthread_t t;
    pthread_create(&t, NULL, batch_thread, &br);
    bool blocked = blocked_by(x); /* the rename waits on the other's key */
    PQclear(pg_exec_ok(x, "COMMIT"));
    PQfinish(x);
    pthread_join(t, NULL);
    CHECK(blocked);
    CHECK_INT(ops[0].err.code, TM_ECONFLICT);
    CHECK_STR(ops[0].err.field, "name");
    CHECK_INT(ops[1].err.code, 0);
    CHECK(ops[1].created);
    store_op_release(&ops[0]);
    store_op_release(&ops[1]);
    store_doc_release(r);
    free(r);
    struct store_doc got;
    struct tm_error e;
    CHECK_INT(store_doc_get(s, STORE_DOC_DEFINITION, "dr", aid, &got, &e), 0);
    CHECK_STR(got.name, "dr-a");
    store_doc_release(&got);
    store_close(s);
}

/*
 * A name that reads as another doc's id is not that doc's name: the store
 * creates it, and a rename to it, rather than a false 409 (its check looked
 * the name up as an id or a name). The v1 API refuses such names (400
 * 'name'); the store does not judge names.
 */
static void test_name_like_another_id_is_not_taken(void) {
    struct store *s = open_store(0);
    CHECK(s);
    if (!s) return;
    char aid[ID_LEN + 1], bid[ID_LEN + 1], cid[ID_LEN + 1];
    doc_create(s, doc_new("dr-idname"), STORE_DOC_DEFINITION, aid);
    struct store_op op;
    struct store_doc *d = doc_new(aid);
    doc_put_op(&op, d, true);
    CHECK_INT(store_run(s, &op), 0);
    CHECK_INT(op.err.code, 0);
    memcpy(bid, d->id, ID_LEN + 1);
    store_op_release(&op);
    store_doc_release(d);
    free(d);
    /* A rename of a third to the first's id as well: its own name is taken
     * now (by the second), and only that is a 409. */
    doc_create(s, doc_new("dr-idname-c"), STORE_DOC_DEFINITION, cid);
    d = doc_new(aid);
    memcpy(d->id, cid, ID_LEN + 1);
    doc_put_op(&op, d, false);
    store_run(s, &op);
    CHECK_INT(op.err.code, TM_ECONFLICT);
    CHECK_STR(op.err.field, "name");
    store_op_release(&op);
    store_doc_release(d);
    free(d);
    struct store_doc got;
    struct tm_error e;
    CHECK_INT(store_doc_get(s, STORE_DOC_DEFINITION, "dr", bid, &got, &e), 0);
    CHECK_STR(got.name, aid);
    store_doc_release(&got);
    CHECK_INT(store_doc_get(s, STORE_DOC_DEFINITION, "dr", aid, &got, &e), 0);
    CHECK_STR(got.name, "dr-idname"); /* by id first */
    store_doc_release(&got);
    CHECK_INT(store_doc_get(s, STORE_DOC_DEFINITION, "dr", cid, &got, &e), 0);
    CHECK_STR(got.name, "dr-idname-c");
    store_doc_release(&got);
    store_close(s);
}

/*
 * A schedule whose inline task has an idempotency key, triggered while
 * another transaction (another node) inserts a task with that key: the
 * launch's insert is refused, its savepoint undoes it, and the trigger
 * finds the other task, rather than failing its batch.
 */
static int sk_make_task(void *cls, json_t *body, const char *ns, struct task **out,
                        struct tm_error *e) {
    (void)cls;
    const char *type = json_string_value(json_object_get(body, "type"));
    const char *key = json_string_value(json_object_get(body, "idempotency_key"));
    if (!type) return err_set(e, TM_EINVALID, "type", "'type' is required");
    struct task *t = new_task(ns, json_string_value(json_object_get(body, "queue")), type, 0);
    if (key) t->idempotency_key = xstrdup(key);
    *out = t;
    return 0;
}

static void test_schedule_launch_meets_a_key_being_inserted(void) {
    if (strncmp(url, "postgres", 8) != 0) {
        th_skip("another transaction inserting first needs PostgreSQL (SQLite has one writer)");
        return;
    }
    struct store_options opt = {.make_task = sk_make_task};
    struct store *s = open_store_opt(&opt);
    CHECK(s);
    if (!s) return;
    char first[ID_LEN + 1];
    CHECK_INT(create(s, new_task("dr", "skq", "x", 0), first), 0);
    struct store_doc *d = doc_new("sk");
    free(d->body);
    d->body = xstrdup(
        "{\"name\":\"sk\",\"interval_seconds\":3600,\"overlap\":\"allow_all\","
        "\"task\":{\"type\":\"x\",\"queue\":\"skq\",\"idempotency_key\":\"sk-key\"}}");
    char sid[ID_LEN + 1];
    doc_create(s, d, STORE_DOC_SCHEDULE, sid);
    /* Another transaction inserts a copy of the task with the key, and holds it. */
    char other[ID_LEN + 1];
    id_new(other);
    PGconn *x = PQconnectdb(url);
    CHECK(PQstatus(x) == CONNECTION_OK);
    char sql[600];
    snprintf(sql, sizeof sql,
             "BEGIN; CREATE TEMP TABLE sk_copy AS SELECT * FROM tasks WHERE id = '%s';"
             " UPDATE sk_copy SET id = '%s', idempotency_key = 'sk-key';"
             " INSERT INTO tasks SELECT * FROM sk_copy",
             first, other);
    PQclear(pg_exec_ok(x, sql));
    /* One batch: the trigger, and a task submitted. */
    struct store_op ops[2];
    store_op_init(&ops[0], STORE_OP_SCHED_TRIGGER);
    ops[0].ns = "dr";
    memcpy(ops[0].id, sid, sizeof sid);
    store_op_init_create(&ops[1], "dr", new_task("dr", "skq", "x", 0));
    struct batch_run br = {s, ops, 2};
    pthread_t t;
    pthread_create(&t, NULL, batch_thread, &br);
    bool blocked = blocked_by(x); /* the launch's insert waits on the other's key */
    PQclear(pg_exec_ok(x, "COMMIT"));
    PQfinish(x);
    pthread_join(t, NULL);
    CHECK(blocked);
    CHECK_INT(ops[0].err.code, 0);
    CHECK(ops[0].task);
    if (ops[0].task) CHECK_STR(ops[0].task->id, other);
    CHECK_INT(ops[1].err.code, 0);
    CHECK(ops[1].created);
    store_op_release(&ops[0]);
    store_op_release(&ops[1]);
    store_close(s);
}

/* ---- Old fire rows go, each schedule's newest 1,000 stay ---- */

/* One statement on the store's database from a connection of the test's
 * own; with `count`, the integer it reads. 0, or -1 (reported). */
static int db_sql(const char *sql, int64_t *count) {
    int rc = -1;
    if (strncmp(url, "sqlite:", 7) == 0) {
        sqlite3 *db = NULL;
        sqlite3_stmt *st = NULL;
        if (sqlite3_open(url + 7, &db) == SQLITE_OK &&
            sqlite3_busy_timeout(db, 5000) == SQLITE_OK &&
            sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK) {
            int step = sqlite3_step(st);
            if (count && step == SQLITE_ROW) *count = sqlite3_column_int64(st, 0);
            rc = step == SQLITE_ROW || step == SQLITE_DONE ? 0 : -1;
        }
        if (rc) th_fail(__FILE__, __LINE__, "%s: %s", sql, sqlite3_errmsg(db));
        sqlite3_finalize(st);
        sqlite3_close(db);
        return rc;
    }
    PGconn *c = PQconnectdb(url);
    PGresult *r = pg_exec_ok(c, sql);
    if (r) {
        if (count && PQntuples(r) == 1) *count = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
        rc = 0;
    }
    PQclear(r);
    PQfinish(c);
    return rc;
}

/* n fire rows of schedule `id`, the i-th at slot i*1000, recorded an hour
 * ago for i <= old_through and now for the others. */
static void fires_insert(const char *id, int n, int old_through, int64_t now) {
    char sql[700];
    snprintf(sql, sizeof sql,
             "WITH RECURSIVE k(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM k WHERE i<%d)"
             " INSERT INTO schedule_fires(schedule_id,slot,kind,task_id,outcome,at)"
             " SELECT '%s', i*1000, 'slot', NULL, 'skipped',"
             " CASE WHEN i<=%d THEN %lld ELSE %lld END FROM k",
             n, id, old_through, (long long)(now - 3600000), (long long)now);
    CHECK_INT(db_sql(sql, NULL), 0);
}

static int64_t fires_count(const char *id, const char *what) {
    char sql[200];
    int64_t n = -1;
    snprintf(sql, sizeof sql, "SELECT %s FROM schedule_fires WHERE schedule_id='%s'", what, id);
    db_sql(sql, &n);
    return n;
}

/*
 * Fire rows older than the events' age go, in steps of 5,000, except each
 * schedule's newest 1,000 (what GET .../fires can show); young rows stay
 * however many; a store that keeps its history (age -1) deletes none.
 */
static void test_old_fires_go_the_newest_stay(void) {
    struct store_options keep = {.events_max_age_ms = -1, .events_max_count = -1};
    struct store *s = open_store_opt(&keep);
    CHECK(s);
    if (!s) return;
    const char *names[3] = {"fa", "fb", "fc"};
    char ids[3][ID_LEN + 1];
    for (int i = 0; i < 3; i++) {
        struct store_doc *d = doc_new(names[i]);
        free(d->body);
        char body[200];
        snprintf(body, sizeof body,
                 "{\"name\":\"%s\",\"interval_seconds\":3600,\"task\":{\"type\":\"x\"}}", names[i]);
        d->body = xstrdup(body);
        doc_create(s, d, STORE_DOC_SCHEDULE, ids[i]);
    }
    int64_t now = time_now_ms();
    /* fa: 7,500 rows, the newest 100 recent; fb: 50, all old; fc: 1,200, all recent */
    fires_insert(ids[0], 7500, 7400, now);
    fires_insert(ids[1], 50, 50, now);
    fires_insert(ids[2], 1200, 0, now);
    /* A store that keeps history: its passes delete nothing. */
    char id[ID_LEN + 1];
    CHECK_INT(create(s, new_task("dr", "fq", "x", 0), id), 0);
    store_close(s);
    s = open_store_opt(&keep);
    CHECK(s);
    if (!s) return;
    CHECK_INT(create(s, new_task("dr", "fq", "x", 0), id), 0);
    th_sleep_ms(200); /* by design: a window for a pass that must not delete */
    CHECK_INT(fires_count(ids[0], "count(*)"), 7500);
    store_close(s);
    /* Ten minutes of history: fa's 6,400 old rows past its newest 1,000 go,
     * in two steps (the second a second after the first). */
    struct store_options ten = {.events_max_age_ms = 600000, .events_max_count = -1};
    s = open_store_opt(&ten);
    CHECK(s);
    if (!s) return;
    int64_t left = -1;
    for (int i = 0; i < 200; i++) {                                /* 20 s and more: a deadline */
        CHECK_INT(create(s, new_task("dr", "fq", "x", 0), id), 0); /* a batch, then upkeep */
        left = fires_count(ids[0], "count(*)");
        if (left <= 1000) break;
        th_sleep_ms(100);
    }
    CHECK_INT(left, 1000);
    CHECK_INT(fires_count(ids[0], "min(slot)"), 6501000);
    CHECK_INT(fires_count(ids[0], "max(slot)"), 7500000);
    CHECK_INT(fires_count(ids[1], "count(*)"), 50);
    CHECK_INT(fires_count(ids[2], "count(*)"), 1200);
    /* What the list shows is untouched: its newest 1,000. */
    struct schedule_fire *f = NULL;
    size_t n = 0;
    struct tm_error e;
    CHECK_INT(store_fires_list(s, ids[0], 1000, &f, &n, &e), 0);
    CHECK_INT(n, 1000);
    if (n == 1000) {
        CHECK_INT(f[0].slot, 7500000);
        CHECK_INT(f[999].slot, 6501000);
    }
    free(f);
    store_close(s);
}

/*
 * An interval schedule down for 200,000 of its slots (its cursor moved back
 * by hand, as a long downtime leaves it) counts every one as missed, not
 * the first 100,000, and fires those in its catch-up window.
 */
static void missed_slots_counted(const char *name, const char *marks, int64_t skipped) {
    struct store_options opt = {.make_task = sk_make_task};
    struct store *s = open_store_opt(&opt);
    CHECK(s);
    if (!s) return;
    struct store_doc *d = doc_new(name);
    free(d->body);
    char body[300];
    snprintf(body, sizeof body,
             "{\"name\":\"%s\",\"interval_seconds\":1,\"catchup_seconds\":10,"
             "\"start_at\":\"2026-01-01T00:00:00Z\",\"task\":{\"type\":\"x\",\"queue\":\"mq\"}}",
             name);
    d->body = xstrdup(body);
    char sid[ID_LEN + 1];
    doc_create(s, d, STORE_DOC_SCHEDULE, sid);
    store_close(s);
    int64_t now = time_now_ms(), back = now - now % 1000 - 200000LL * 1000;
    char sql[600], state[300];
    /* marks: offsets in seconds from `back`, made times here */
    long long m[6] = {0};
    int nm = marks ? sscanf(marks, "%lld %lld %lld %lld %lld %lld", &m[0], &m[1], &m[2], &m[3],
                            &m[4], &m[5])
                   : 0;
    for (int i = 0; i < nm; i++)
        m[i] = back + m[i] * 1000;
    if (nm == 6)
        snprintf(state, sizeof state,
                 "{\"cursor\":%lld,\"skip_after\":%lld,\"skip_to\":%lld,"
                 "\"skip_more\":[[%lld,%lld],[%lld,%lld]]}",
                 (long long)back, m[0], m[1], m[2], m[3], m[4], m[5]);
    else if (nm == 2) /* as a node that knows only the first mark leaves it */
        snprintf(state, sizeof state, "{\"cursor\":%lld,\"skip_more\":[[%lld,%lld]]}",
                 (long long)back, m[0], m[1]);
    else
        snprintf(state, sizeof state, "{\"cursor\":%lld}", (long long)back);
    snprintf(sql, sizeof sql, "UPDATE schedules SET state='%s', next_at=%lld WHERE id='%s'", state,
             (long long)now, sid);
    CHECK_INT(db_sql(sql, NULL), 0);
    s = open_store_opt(&opt);
    CHECK(s);
    if (!s) return;
    int64_t missed = 0, fires = 0;
    for (int i = 0; i < 50 && !missed; i++) {
        char id[ID_LEN + 1];
        CHECK_INT(create(s, new_task("dr", "mq", "x", 0), id), 0); /* a batch: it fires */
        struct store_doc got = {0};
        struct tm_error e;
        if (store_doc_get(s, STORE_DOC_SCHEDULE, "dr", name, &got, &e) == 0) {
            json_t *st = json_loads(got.state ? got.state : "{}", 0, NULL);
            missed = json_integer_value(json_object_get(st, "missed"));
            fires = json_integer_value(json_object_get(st, "fires"));
            json_decref(st);
        }
        store_doc_release(&got);
        if (!missed) th_sleep_ms(100);
    }
    /* The slots after the cursor up to 11 s before the pass (the catch-up
     * window, a second of slack), the pass at `back` + 200,000 s + r:
     * 199,988 + floor((999 + r) / 1000). r is at least now's milliseconds
     * past its second and at most that plus the time the loop took, so a
     * pass after the next second boundary counts one more (199,990). */
    int64_t r_lo = now % 1000, r_hi = r_lo + (time_now_ms() - now);
    printf("     missed %lld, fired %lld\n", (long long)missed, (long long)fires);
    CHECK(missed >= 199988 - skipped + (999 + r_lo) / 1000 &&
          missed <= 199988 - skipped + (999 + r_hi) / 1000);
    CHECK(fires >= 10 && fires <= 100);
    store_close(s);
}

static void test_missed_slots_of_a_long_downtime_are_counted(void) {
    missed_slots_counted("mi", NULL, 0);
}

/*
 * The same with three pauses' skips marked (resumed before the slots owed
 * from the first had fired): the slots of each, 10,000 + 10,000 + 500,
 * are neither fired nor missed; the ones between them are missed.
 */
static void test_missed_slots_skip_every_marked_pause(void) {
    missed_slots_counted("mk", "50000 60000 100000 110000 150000 150500", 20500);
}

/* A node of the version before, which knows only the first mark, used it
 * and left the later one: that one is still skipped. */
static void test_missed_slots_skip_a_mark_left_alone(void) {
    missed_slots_counted("ml", "100000 104000", 4000);
}

/*
 * A pause, a resume, a trigger and a backfill of a schedule whose stored
 * body no longer parses (its zone gone from tzdata), in one batch with a
 * submit: each is its own 409 naming the field, and the submit is created
 * (the batch commits; the ops' failures are not the backend's).
 */
static void test_unreadable_schedule_op_fails_alone(void) {
    struct store_options opt = {.make_task = sk_make_task};
    struct store *s = open_store_opt(&opt);
    CHECK(s);
    if (!s) return;
    struct store_doc *d = doc_new("ur");
    free(d->body);
    d->body = xstrdup(
        "{\"name\":\"ur\",\"cron\":\"0 0 1 1 *\",\"timezone\":\"America/New_York\","
        "\"task\":{\"type\":\"x\",\"queue\":\"urq\"}}");
    char sid[ID_LEN + 1];
    doc_create(s, d, STORE_DOC_SCHEDULE, sid);
    store_close(s);
    char sql[300];
    snprintf(sql, sizeof sql,
             "UPDATE schedules SET body = replace(body, 'America/New_York', 'America/Gone')"
             " WHERE id = '%s'",
             sid);
    CHECK_INT(db_sql(sql, NULL), 0);
    s = open_store_opt(&opt);
    CHECK(s);
    if (!s) return;
    static const enum store_op_kind kinds[] = {STORE_OP_SCHED_PAUSE, STORE_OP_SCHED_PAUSE,
                                               STORE_OP_SCHED_TRIGGER, STORE_OP_SCHED_BACKFILL};
    struct store_op ops[5];
    for (int i = 0; i < 4; i++) {
        store_op_init(&ops[i], kinds[i]);
        ops[i].ns = "dr";
        ops[i].doc_kind = STORE_DOC_SCHEDULE;
        memcpy(ops[i].id, sid, sizeof sid);
    }
    ops[0].flag = true; /* a pause; ops[1] a resume */
    ops[3].from_ms = time_now_ms() - 2 * 86400000LL;
    ops[3].to_ms = time_now_ms();
    store_op_init_create(&ops[4], "dr", new_task("dr", "urq", "x", 0));
    run_one_batch(s, ops, 5);
    for (int i = 0; i < 4; i++) {
        if (ops[i].err.code != TM_ECONFLICT || strcmp(ops[i].err.field, "timezone") != 0 ||
            !strstr(ops[i].err.message, "stored schedule 'ur' cannot be read"))
            th_fail(__FILE__, __LINE__, "op %d: code %d field '%s': %s", i, ops[i].err.code,
                    ops[i].err.field, ops[i].err.message);
    }
    CHECK_INT(ops[4].err.code, 0);
    CHECK(ops[4].created);
    for (int i = 0; i < 5; i++)
        store_op_release(&ops[i]);
    store_close(s);
}

static void test_batch_retried_after_deadlock(void) {
    if (strncmp(url, "postgres", 8) != 0) {
        th_skip("a deadlock with another connection needs PostgreSQL");
        return;
    }
    struct store *s = open_store(0);
    CHECK(s);
    if (!s) return;
    /* Two parents, one child each: completing the children loads and
     * updates P1, then P2. */
    char p1[ID_LEN + 1], p2[ID_LEN + 1], c1[ID_LEN + 1], c2[ID_LEN + 1];
    char t1[ID_LEN + 1], t2[ID_LEN + 1], got[ID_LEN + 1];
    CHECK_INT(create(s, new_task("dl", "dlpar", "x", 0), p1), 0);
    CHECK_INT(create(s, new_task("dl", "dlpar", "x", 0), p2), 0);
    struct task *t = new_task("dl", "dlkid", "x", 0);
    memcpy(t->parent_id, p1, sizeof t->parent_id);
    CHECK_INT(create(s, t, c1), 0);
    t = new_task("dl", "dlkid", "x", 1);
    memcpy(t->parent_id, p2, sizeof t->parent_id);
    CHECK_INT(create(s, t, c2), 0);
    CHECK_INT(claim(s, "dl", "dlkid", NULL, 60000, 0, got, t1), 0);
    CHECK_STR(got, c1);
    CHECK_INT(claim(s, "dl", "dlkid", NULL, 60000, 0, got, t2), 0);
    CHECK_STR(got, c2);
    struct task *before1 = get(s, "dl", p1), *before2 = get(s, "dl", p2);
    CHECK(before1 && before2);
    struct store_stats st0;
    store_get_stats(s, &st0);
    /* Another connection holds P2; once the batch has P1 and waits for P2,
     * it asks for P1: a deadlock, which the batch's writer detects first
     * (the other's deadlock_timeout is long), so the batch is the one
     * rolled back, with the update of P1 it kept, and applied again. */
    PGconn *x = PQconnectdb(url);
    CHECK(PQstatus(x) == CONNECTION_OK);
    char sql[256];
    PQclear(pg_exec_ok(x, "SET deadlock_timeout = '20s'"));
    PQclear(pg_exec_ok(x, "BEGIN"));
    snprintf(sql, sizeof sql, "SELECT 1 FROM tasks WHERE id='%s' FOR UPDATE", p2);
    PQclear(pg_exec_ok(x, sql));
    struct store_op ops[2];
    id_op_init(&ops[0], STORE_OP_COMPLETE, "dl", c1, t1);
    id_op_init(&ops[1], STORE_OP_COMPLETE, "dl", c2, t2);
    struct batch_run br = {s, ops, 2};
    pthread_t th;
    pthread_create(&th, NULL, batch_thread, &br);
    bool waiting = false;
    for (int i = 0; i < 2000 && !waiting; i++) {
        PGresult *r = pg_exec_ok(
            x, "SELECT count(*) FROM pg_locks WHERE NOT granted AND pid <> pg_backend_pid()");
        waiting = r && atoi(PQgetvalue(r, 0, 0)) > 0;
        PQclear(r);
        if (!waiting) th_sleep_ms(5);
    }
    CHECK(waiting);
    snprintf(sql, sizeof sql, "SELECT 1 FROM tasks WHERE id='%s' FOR UPDATE", p1);
    PQclear(pg_exec_ok(x, sql)); /* waits until the batch is rolled back */
    PQclear(pg_exec_ok(x, "COMMIT"));
    PQfinish(x);
    pthread_join(th, NULL);
    CHECK_INT(ops[0].err.code, 0);
    CHECK_INT(ops[1].err.code, 0);
    store_op_release(&ops[0]);
    store_op_release(&ops[1]);
    struct store_stats st1;
    store_get_stats(s, &st1);
    CHECK(st1.batch_retries > st0.batch_retries);
    /* Applied once: each parent moved its child once, one version up. */
    const char *ps[] = {p1, p2};
    struct task *before[] = {before1, before2};
    for (int i = 0; i < 2; i++) {
        struct task *p = get(s, "dl", ps[i]);
        CHECK(p && before[i]);
        if (p && before[i]) {
            CHECK_INT(p->child_processed, 1);
            CHECK_INT(p->child_processing, 0);
            CHECK_INT(p->version, before[i]->version + 1);
        }
        task_free(p);
        task_free(before[i]);
    }
    const char *cs[] = {c1, c2};
    for (int i = 0; i < 2; i++) {
        struct task *c = get(s, "dl", cs[i]);
        CHECK(c && c->phase == TASK_COMPLETED && c->version == 3);
        task_free(c);
    }
    store_close(s);
}

/* ---- A statement sent ahead that fails fails its batch ---- */

/* The ops of one batch: a heartbeat of task id that sets processed to 7,
 * then a submit of one task to ns and queue. */
static void heartbeat_and_submit_ops(struct store_op ops[2], const char *ns, const char *queue,
                                     const char *id, const char *tok) {
    id_op_init(&ops[0], STORE_OP_HEARTBEAT, ns, id, tok);
    ops[0].lease_ms = 60000;
    ops[0].has_progress = true;
    ops[0].progress.has_processed = true;
    ops[0].progress.processed = 7;
    store_op_init(&ops[1], STORE_OP_CREATE);
    ops[1].tasks = xmalloc(sizeof *ops[1].tasks);
    ops[1].tasks[0] = new_task(ns, queue, "y", 0);
    ops[1].ntasks = 1;
}

/* PostgreSQL sends a batch's inserts, kept updates, statistics and events
 * ahead and reads their answers with its COMMIT (storage.md, "statements
 * sent ahead"). An insert refused there (a trigger of the test's) must fail
 * every op of the batch, store none of it, and leave the writer able to
 * run the next batch. */
static void test_failure_sent_ahead_fails_the_batch(void) {
    if (strncmp(url, "postgres", 8) != 0) {
        th_skip("statements sent ahead are PostgreSQL's");
        return;
    }
    struct store *s = open_store_quiet(); /* its counts of events are the log's */
    CHECK(s);
    if (!s) return;
    char id[ID_LEN + 1], tok[ID_LEN + 1];
    if (!create_claimed(s, "ah", "ahq", id, tok)) return;
    struct task *before = get(s, "ah", id);
    CHECK(before);
    if (!before) return;
    struct tm_error e;
    err_clear(&e);
    int64_t head0 = 0, pruned = 0;
    CHECK_INT(store_events_head(s, &head0, &pruned, &e), 0);
    PGconn *x = PQconnectdb(url);
    CHECK(PQstatus(x) == CONNECTION_OK);
    PQclear(pg_exec_ok(x,
                       "CREATE FUNCTION tm_test_refuse() RETURNS trigger LANGUAGE plpgsql"
                       " AS $$BEGIN RAISE EXCEPTION 'refused by the test'; END$$"));
    PQclear(pg_exec_ok(x,
                       "CREATE TRIGGER tm_test_refuse BEFORE INSERT ON tasks"
                       " FOR EACH ROW EXECUTE FUNCTION tm_test_refuse()"));
    for (int round = 0; round < 2; round++) {
        if (round == 1) PQclear(pg_exec_ok(x, "DROP TRIGGER tm_test_refuse ON tasks"));
        /* One batch: a heartbeat (its row preloaded, its update kept and
         * sent ahead), then a submit (its insert sent ahead). */
        struct store_op ops[2];
        heartbeat_and_submit_ops(ops, "ah", "ahq", id, tok);
        run_one_batch(s, ops, 2);
        PGresult *r = pg_exec_ok(x, "SELECT count(*) FROM tasks WHERE namespace = 'ah'");
        int ntasks = r ? atoi(PQgetvalue(r, 0, 0)) : -1;
        PQclear(r);
        struct task *t = get(s, "ah", id);
        CHECK(t);
        int64_t head = 0;
        CHECK_INT(store_events_head(s, &head, &pruned, &e), 0);
        if (round == 0) {
            CHECK(ops[0].err.code != 0);
            CHECK(ops[1].err.code != 0);
            CHECK_INT(ntasks, 1);
            CHECK(t && t->version == before->version && t->progress.processed == 0);
            CHECK_INT(head, head0);
        } else {
            CHECK_INT(ops[0].err.code, 0);
            CHECK_INT(ops[1].err.code, 0);
            CHECK_INT(ntasks, 2);
            CHECK(t && t->version == before->version + 1 && t->progress.processed == 7);
            /* Numbered right after the head: the refused batch took no seq. */
            CHECK_INT(head, head0 + 2);
            struct event_page p = {0};
            CHECK_INT(store_events_read(s, "ah", NULL, head0, 10, 0, &p, &e), 0);
            CHECK_INT(p.n, 2);
            for (size_t i = 0; i < p.n; i++)
                CHECK_INT(p.events[i].seq, head0 + 1 + (int64_t)i);
            event_page_release(&p);
        }
        task_free(t);
        store_op_release(&ops[0]);
        store_op_release(&ops[1]);
    }
    PQclear(pg_exec_ok(x, "DROP FUNCTION tm_test_refuse()"));
    PQfinish(x);
    task_free(before);
    store_close(s);
}

/* ---- A rolled-back batch leaves nothing the writer keeps ---- */

/* Runs sql on a connection of the test's own to the store's database. */
static void exec_on_store_db(const char *sql) {
    if (strncmp(url, "sqlite:", 7) == 0) {
        sqlite3 *db = NULL;
        CHECK(sqlite3_open(url + 7, &db) == SQLITE_OK);
        sqlite3_busy_timeout(db, 5000);
        char *err = NULL;
        if (sqlite3_exec(db, sql, NULL, NULL, &err) != SQLITE_OK)
            th_fail(__FILE__, __LINE__, "%s: %s", sql, err ? err : "?");
        sqlite3_free(err);
        sqlite3_close(db);
        return;
    }
    PGconn *x = PQconnectdb(url);
    CHECK(PQstatus(x) == CONNECTION_OK);
    PQclear(pg_exec_ok(x, sql));
    PQfinish(x);
}

/*
 * The SQLite writer keeps the rows it last wrote or read and loads a task
 * from there (store_sqlite.c, "the writer's rows"). A batch that rolls
 * back must take its rows with it: here a heartbeat's update, in a batch
 * whose submit a trigger of the test's refuses. The next op on the task
 * must find it as committed (by a load of the writer, not only a read).
 */
static void test_rolled_back_batch_leaves_no_kept_row(void) {
    struct store *s = open_store(0);
    CHECK(s);
    if (!s) return;
    char id[ID_LEN + 1], tok[ID_LEN + 1];
    if (!create_claimed(s, "rb", "rbq", id, tok)) return;
    /* A heartbeat first, so that the writer keeps the row (an update). */
    CHECK_INT(heartbeat(s, id, tok, 0.25), 0);
    struct task *before = get(s, "rb", id);
    CHECK(before);
    if (!before) return;
    bool pg = strncmp(url, "postgres", 8) == 0;
    exec_on_store_db(pg ? "CREATE FUNCTION tm_test_refuse2() RETURNS trigger LANGUAGE plpgsql"
                          " AS $$BEGIN RAISE EXCEPTION 'refused by the test'; END$$;"
                          " CREATE TRIGGER tm_test_refuse2 BEFORE INSERT ON tasks"
                          " FOR EACH ROW EXECUTE FUNCTION tm_test_refuse2()"
                        : "CREATE TRIGGER tm_test_refuse2 BEFORE INSERT ON tasks"
                          " BEGIN SELECT RAISE(ABORT, 'refused by the test'); END");
    struct store_op ops[2];
    heartbeat_and_submit_ops(ops, "rb", "rbq", id, tok);
    run_one_batch(s, ops, 2);
    CHECK(ops[0].err.code != 0);
    CHECK(ops[1].err.code != 0);
    store_op_release(&ops[0]);
    store_op_release(&ops[1]);
    exec_on_store_db(pg ? "DROP TRIGGER tm_test_refuse2 ON tasks; DROP FUNCTION tm_test_refuse2()"
                        : "DROP TRIGGER tm_test_refuse2");
    /* The writer loads the task for this heartbeat: as committed, so one
     * version on, and nothing of the rolled-back progress. */
    id_op_init(&ops[0], STORE_OP_HEARTBEAT, "rb", id, tok);
    ops[0].lease_ms = 60000;
    CHECK_INT(store_run(s, &ops[0]), 0);
    CHECK(ops[0].task && ops[0].task->version == before->version + 1);
    CHECK(ops[0].task && ops[0].task->progress.processed == 0);
    CHECK(ops[0].task && ops[0].task->progress.ratio == 0.25);
    store_op_release(&ops[0]);
    struct task *t = get(s, "rb", id);
    CHECK(t && t->version == before->version + 1 && t->progress.processed == 0);
    task_free(t);
    task_free(before);
    store_close(s);
}

/*
 * A batch that fails answers every op of it with the failure, refusals
 * too: here two completes of one task, then a submit a trigger of the
 * test's refuses. The second complete's "not running" was found against
 * the first, which is undone with the batch: it fails as storage, and the
 * task is still running, its lease good.
 */
static void test_failed_batch_fails_refusals_too(void) {
    struct store *s = open_store(0);
    CHECK(s);
    if (!s) return;
    char id[ID_LEN + 1], tok[ID_LEN + 1];
    if (!create_claimed(s, "fb", "fbq", id, tok)) return;
    bool pg = strncmp(url, "postgres", 8) == 0;
    exec_on_store_db(pg ? "CREATE FUNCTION tm_test_refuse3() RETURNS trigger LANGUAGE plpgsql"
                          " AS $$BEGIN RAISE EXCEPTION 'refused by the test'; END$$;"
                          " CREATE TRIGGER tm_test_refuse3 BEFORE INSERT ON tasks"
                          " FOR EACH ROW EXECUTE FUNCTION tm_test_refuse3()"
                        : "CREATE TRIGGER tm_test_refuse3 BEFORE INSERT ON tasks"
                          " BEGIN SELECT RAISE(ABORT, 'refused by the test'); END");
    struct store_op ops[3];
    for (int i = 0; i < 2; i++)
        id_op_init(&ops[i], STORE_OP_COMPLETE, "fb", id, tok);
    store_op_init_create(&ops[2], "fb", new_task("fb", "fbq", "next", 0));
    run_one_batch(s, ops, 3);
    for (int i = 0; i < 3; i++) {
        if (ops[i].err.code != TM_EINTERNAL)
            th_fail(__FILE__, __LINE__, "op %d: code %d (%s), not a storage error", i,
                    ops[i].err.code, ops[i].err.message);
        store_op_release(&ops[i]);
    }
    exec_on_store_db(pg ? "DROP TRIGGER tm_test_refuse3 ON tasks; DROP FUNCTION tm_test_refuse3()"
                        : "DROP TRIGGER tm_test_refuse3");
    struct task *now = get(s, "fb", id);
    CHECK(now && now->phase == TASK_RUNNING);
    task_free(now);
    id_op_init(&ops[0], STORE_OP_COMPLETE, "fb", id, tok);
    CHECK_INT(store_run(s, &ops[0]), 0);
    store_op_release(&ops[0]);
    store_close(s);
}

/*
 * The rows the SQLite writer keeps hold only while it is the one process
 * that writes the file. A commit by another connection (a hand edit here;
 * a second server on the file by mistake) must be seen by the next batch:
 * its load reads the row again rather than writing over the change.
 */
static void test_foreign_commit_drops_kept_rows(void) {
    struct store *s = open_store(0);
    CHECK(s);
    if (!s) return;
    char id[ID_LEN + 1], tok[ID_LEN + 1];
    if (!create_claimed(s, "fc", "fcq", id, tok)) return;
    CHECK_INT(heartbeat(s, id, tok, 0.25), 0); /* kept: an update */
    struct task *before = get(s, "fc", id);
    CHECK(before);
    if (!before) return;
    char sql[200];
    snprintf(sql, sizeof sql,
             "UPDATE tasks SET progress_message='by hand', version=version+5 WHERE id='%s'", id);
    exec_on_store_db(sql);
    struct store_op op;
    id_op_init(&op, STORE_OP_HEARTBEAT, "fc", id, tok);
    op.lease_ms = 60000;
    CHECK_INT(store_run(s, &op), 0);
    CHECK(op.task && op.task->version == before->version + 6);
    CHECK(op.task && op.task->progress.message &&
          strcmp(op.task->progress.message, "by hand") == 0);
    store_op_release(&op);
    struct task *t = get(s, "fc", id);
    CHECK(t && t->version == before->version + 6 && t->progress.message &&
          strcmp(t->progress.message, "by hand") == 0);
    task_free(t);
    task_free(before);
    store_close(s);
}

/* An op of n submits to namespace "many"; its rc. */
static int create_many(struct store *s, int n, struct store_op *op) {
    store_op_init(op, STORE_OP_CREATE);
    op->tasks = xcalloc((size_t)n, sizeof *op->tasks);
    op->ntasks = (size_t)n;
    for (int i = 0; i < n; i++)
        op->tasks[i] = new_task("many", "manyq", "x", 0);
    return store_run(s, op);
}

/* One op of 600 submits: on PostgreSQL, 600 inserts sent ahead (more than
 * PG_AHEAD_MAX, so the writer syncs between them) and one append. */
static void test_many_submits_in_one_op(void) {
    struct store *s = open_store_quiet(); /* its counts of events are the log's */
    CHECK(s);
    if (!s) return;
    enum { N = 600 };
    struct tm_error e;
    err_clear(&e);
    int64_t head0 = 0, pruned = 0;
    CHECK_INT(store_events_head(s, &head0, &pruned, &e), 0);
    struct store_op op;
    if (strncmp(url, "postgres", 8) == 0) {
        /* A refusal after the writer has synced twice: the syncs commit
         * nothing, so none of the 600 is stored. */
        PGconn *x = PQconnectdb(url);
        CHECK(PQstatus(x) == CONNECTION_OK);
        PQclear(pg_exec_ok(x,
                           "CREATE FUNCTION tm_test_refuse_many() RETURNS trigger"
                           " LANGUAGE plpgsql AS $$BEGIN IF (SELECT count(*) FROM tasks"
                           " WHERE namespace = 'many') >= 550 THEN RAISE EXCEPTION"
                           " 'refused by the test'; END IF; RETURN NEW; END$$"));
        PQclear(pg_exec_ok(x,
                           "CREATE TRIGGER tm_test_refuse_many BEFORE INSERT ON tasks"
                           " FOR EACH ROW EXECUTE FUNCTION tm_test_refuse_many()"));
        CHECK(create_many(s, N, &op) != 0);
        store_op_release(&op);
        PGresult *r = pg_exec_ok(x, "SELECT count(*) FROM tasks WHERE namespace = 'many'");
        CHECK_INT(r ? atoi(PQgetvalue(r, 0, 0)) : -1, 0);
        PQclear(r);
        int64_t head = 0;
        CHECK_INT(store_events_head(s, &head, &pruned, &e), 0);
        CHECK_INT(head, head0);
        PQclear(pg_exec_ok(x, "DROP TRIGGER tm_test_refuse_many ON tasks"));
        PQclear(pg_exec_ok(x, "DROP FUNCTION tm_test_refuse_many()"));
        PQfinish(x);
    }
    CHECK_INT(create_many(s, N, &op), 0);
    char first[ID_LEN + 1] = "", last[ID_LEN + 1] = "";
    if (op.ntasks == N && op.tasks[0] && op.tasks[N - 1]) {
        memcpy(first, op.tasks[0]->id, sizeof first);
        memcpy(last, op.tasks[N - 1]->id, sizeof last);
    }
    store_op_release(&op);
    struct task *a = get(s, "many", first), *b = get(s, "many", last);
    CHECK(a && b);
    task_free(a);
    task_free(b);
    int64_t head = 0;
    CHECK_INT(store_events_head(s, &head, &pruned, &e), 0);
    CHECK_INT(head, head0 + N);
    /* every event, numbered in order */
    int64_t next = head0 + 1;
    while (next <= head) {
        struct event_page p = {0};
        CHECK_INT(store_events_read(s, "many", NULL, next - 1, 250, 0, &p, &e), 0);
        CHECK(p.n > 0);
        if (p.n == 0) break;
        for (size_t i = 0; i < p.n; i++, next++)
            CHECK_INT(p.events[i].seq, next);
        event_page_release(&p);
    }
    struct queue_counts *qc = NULL;
    size_t nqc = 0;
    CHECK_INT(store_queue_counts(s, "many", &qc, &nqc, &e), 0);
    int64_t pending = 0;
    for (size_t i = 0; i < nqc; i++)
        if (strcmp(qc[i].queue, "manyq") == 0) pending += qc[i].phase[TASK_PENDING];
    CHECK_INT(pending, N);
    queue_counts_free(qc, nqc);
    store_close(s);
}

/* ---- Another node's events, as this node's feed hands them on ---- */

/* Another node's events, stored as a changing part, reach this node's
 * listener whole (joined with their task's first event) and byte for byte
 * as a read of the log gives them back: for a task made before this node
 * started and for one made while it listens. */
static void test_feed_joins_other_nodes_events(void) {
    if (strncmp(url, "postgres", 8) != 0) {
        th_skip("another node's events need PostgreSQL");
        return;
    }
    struct store *a = open_store(0);
    CHECK(a);
    if (!a) return;
    char t1[ID_LEN + 1], t2[ID_LEN + 1], cid[ID_LEN + 1], tok1[ID_LEN + 1], tok2[ID_LEN + 1];
    CHECK_INT(create(a, new_task("feedb", "feedq", "x", 0), t1), 0);
    struct store *b = open_store(0);
    CHECK(b);
    if (!b) {
        store_close(a);
        return;
    }
    kept.ns = "feedb";
    store_set_listener(b, keep_fn, NULL);
    /* t1's first event came before b; t2 is made while b listens. */
    CHECK_INT(claim(a, "feedb", "feedq", NULL, 60000, 0, cid, tok1), 0);
    CHECK_STR(cid, t1);
    /* b hears that claim first, on a page of its own */
    CHECK(kept_wait(1));
    CHECK_INT(create(a, new_task("feedb", "feedq", "x", 0), t2), 0);
    CHECK_INT(claim(a, "feedb", "feedq", NULL, 60000, 0, cid, tok2), 0);
    CHECK_STR(cid, t2);
    CHECK_INT(simple(a, STORE_OP_COMPLETE, "feedb", t2, tok2, NULL), 0);
    CHECK(kept_wait(4));
    pthread_mutex_lock(&kept.lock);
    for (int i = 0; i < kept.n; i++) {
        struct event_page p = {0};
        struct tm_error e;
        err_clear(&e);
        if (store_events_read(b, "feedb", NULL, kept.seqs[i] - 1, 1, 0, &p, &e) == 0 && p.n == 1) {
            CHECK_INT(p.events[0].seq, kept.seqs[i]);
            CHECK_STR(kept.json[i], p.events[0].task_json);
            CHECK(task_json_is_whole(kept.json[i]));
        } else {
            th_fail(__FILE__, __LINE__, "event %lld not read back", (long long)kept.seqs[i]);
        }
        event_page_release(&p);
    }
    pthread_mutex_unlock(&kept.lock);
    store_close(b);
    kept_reset();
    store_close(a);
}

/* Whether the listener of the next test needs task JSON; read by the feed. */
static atomic_bool kept_needs;
static bool kept_needs_fn(void *cls) {
    (void)cls;
    return atomic_load(&kept_needs);
}

/* While the listener says it needs no task JSON, another node's events
 * reach it without (task_json NULL), with everything else, and counted as
 * bare; once it says it needs it, they come whole again. None is skipped or
 * repeated across the change, and the log itself still has them whole. */
static void test_feed_bare_while_unneeded(void) {
    if (strncmp(url, "postgres", 8) != 0) {
        th_skip("another node's events need PostgreSQL");
        return;
    }
    struct store *a = open_store(0), *b = a ? open_store(0) : NULL;
    CHECK(a && b);
    if (!a || !b) {
        if (a) store_close(a);
        return;
    }
    kept.ns = "feedbare";
    atomic_store(&kept_needs, false);
    store_set_listener(b, keep_fn, NULL);
    store_set_listener_needs(b, kept_needs_fn);
    char t1[ID_LEN + 1], cid[ID_LEN + 1], tok[ID_LEN + 1];
    CHECK_INT(create(a, new_task("feedbare", "bq", "x", 0), t1), 0);
    CHECK(kept_wait(1));
    struct store_stats st;
    store_get_stats(b, &st);
    CHECK(st.feed_bare >= 1);
    uint64_t bare = st.feed_bare;
    atomic_store(&kept_needs, true);
    CHECK_INT(claim(a, "feedbare", "bq", NULL, 60000, 0, cid, tok), 0);
    CHECK_STR(cid, t1);
    CHECK_INT(simple(a, STORE_OP_COMPLETE, "feedbare", t1, tok, NULL), 0);
    CHECK(kept_wait(3));
    struct event_page p = {0};
    struct tm_error e;
    err_clear(&e);
    CHECK_INT(store_events_read(b, "feedbare", NULL, 0, 10, 0, &p, &e), 0);
    CHECK_INT(p.n, 3);
    pthread_mutex_lock(&kept.lock);
    CHECK_INT(kept.n, 3);
    for (int i = 0; i < kept.n && i < (int)p.n; i++) {
        CHECK_INT(kept.seqs[i], p.events[i].seq);
        CHECK(task_json_is_whole(p.events[i].task_json));
        if (i == 0)
            CHECK(kept.json[i] == NULL);
        else
            CHECK_STR(kept.json[i], p.events[i].task_json);
    }
    pthread_mutex_unlock(&kept.lock);
    event_page_release(&p);
    /* Nothing more was read bare once the listener needed JSON. */
    store_get_stats(b, &st);
    CHECK_INT(st.feed_bare, bare);
    store_close(b);
    kept_reset();
    store_close(a);
}

/* A list of namespace ns filtered by phase (through its index where there
 * is one) finds just want, or nothing when want is NULL. */
static void check_in_phase(struct store *s, const char *ns, enum task_phase phase,
                           const char *want) {
    struct task_filter f = {0};
    f.ns = ns;
    f.phases = 1u << phase;
    f.limit = 10;
    struct task_list l;
    struct tm_error e;
    err_clear(&e);
    CHECK_INT(store_task_list(s, &f, &l, &e), 0);
    CHECK_INT(l.n, want ? 1 : 0);
    if (want && l.n == 1) CHECK_STR(l.tasks[0]->id, want);
    task_list_release(&l);
}

/* SQLite only: the database at url passes integrity_check (every index
 * agrees with the table), and task id's row holds phase and due_at as
 * given (due NULL: no due time). */
static void check_sqlite_row(const char *id, const char *phase, const char *due) {
    if (strncmp(url, "sqlite:", 7) != 0) return;
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    CHECK(sqlite3_open_v2(url + 7, &db, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK);
    CHECK(sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &st, NULL) == SQLITE_OK);
    CHECK(sqlite3_step(st) == SQLITE_ROW);
    CHECK_STR((const char *)sqlite3_column_text(st, 0), "ok");
    sqlite3_finalize(st);
    CHECK(sqlite3_prepare_v2(db, "SELECT phase, due_at FROM tasks WHERE id=?1", -1, &st, NULL) ==
          SQLITE_OK);
    sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    CHECK(sqlite3_step(st) == SQLITE_ROW);
    CHECK_STR((const char *)sqlite3_column_text(st, 0), phase);
    if (due)
        CHECK_STR((const char *)sqlite3_column_text(st, 1), due);
    else
        CHECK_INT(sqlite3_column_type(st, 1), SQLITE_NULL);
    sqlite3_finalize(st);
    sqlite3_close(db);
}

/*
 * The indexed columns follow every change, several in one batch: a
 * heartbeat, a release and a claim again; a heartbeat and a completion. The
 * SQLite writer leaves out of an update the indexed columns it knows
 * unchanged (store_sqlite.c, sq_seen): this is where a wrong guess would
 * show, in the row or in an index.
 */
static void test_updates_follow_each_change(void) {
    struct store *s = open_store(0);
    CHECK(s);
    if (!s) return;
    char x[ID_LEN + 1], tok[ID_LEN + 1];
    if (!create_claimed(s, "ku", "kuq", x, tok)) return;
    struct store_op ops[3];
    id_op_init(&ops[0], STORE_OP_HEARTBEAT, "ku", x, tok);
    ops[0].lease_ms = 60000;
    ops[0].has_progress = true;
    ops[0].progress.has_ratio = true;
    ops[0].progress.ratio = 0.25;
    id_op_init(&ops[1], STORE_OP_RELEASE, "ku", x, tok);
    claim_op_init(&ops[2], "ku", "kuq");
    run_one_batch(s, ops, 3);
    for (int i = 0; i < 3; i++)
        CHECK_INT(ops[i].err.code, 0);
    CHECK(ops[1].task && ops[1].task->phase == TASK_PENDING);
    CHECK(ops[2].claimed && strcmp(ops[2].task->id, x) == 0);
    char tok2[ID_LEN + 1];
    snprintf(tok2, sizeof tok2, "%s", ops[2].claimed ? ops[2].new_lease_token : "");
    for (int i = 0; i < 3; i++)
        store_op_release(&ops[i]);
    struct task *t = get(s, "ku", x);
    CHECK(t && t->phase == TASK_RUNNING && t->lease_expires_at > 0);
    char due[32];
    snprintf(due, sizeof due, "%lld", t ? (long long)t->lease_expires_at : 0LL);
    task_free(t);
    check_in_phase(s, "ku", TASK_RUNNING, x);
    check_in_phase(s, "ku", TASK_PENDING, NULL);
    check_sqlite_row(x, task_phase_name(TASK_RUNNING), due);

    id_op_init(&ops[0], STORE_OP_HEARTBEAT, "ku", x, tok2);
    ops[0].lease_ms = 60000;
    id_op_init(&ops[1], STORE_OP_COMPLETE, "ku", x, tok2);
    run_one_batch(s, ops, 2);
    CHECK_INT(ops[0].err.code, 0);
    CHECK_INT(ops[1].err.code, 0);
    for (int i = 0; i < 2; i++)
        store_op_release(&ops[i]);
    t = get(s, "ku", x);
    CHECK(t && t->phase == TASK_COMPLETED && t->status != TASK_STATUS_NONE);
    task_free(t);
    check_in_phase(s, "ku", TASK_COMPLETED, x);
    check_in_phase(s, "ku", TASK_RUNNING, NULL);
    check_sqlite_row(x, task_phase_name(TASK_COMPLETED), NULL);

    /* A column that does not hold what the writer would store (a due time
     * set by hand here; a migration's, say) is written over, not trusted. */
    char y[ID_LEN + 1];
    CHECK_INT(create(s, new_task("ku", "kuq", "x", 0), y), 0);
    if (strncmp(url, "sqlite:", 7) == 0) {
        sqlite3 *db = NULL;
        char sql[160];
        snprintf(sql, sizeof sql, "UPDATE tasks SET due_at=4102444800000 WHERE id='%s'", y);
        CHECK(sqlite3_open(url + 7, &db) == SQLITE_OK);
        sqlite3_busy_timeout(db, 5000);
        CHECK(sqlite3_exec(db, sql, NULL, NULL, NULL) == SQLITE_OK);
        sqlite3_close(db);
        check_sqlite_row(y, task_phase_name(TASK_PENDING), "4102444800000");
    }
    CHECK_INT(simple(s, STORE_OP_PAUSE, "ku", y, NULL, NULL), 0);
    t = get(s, "ku", y);
    CHECK(t && t->phase == TASK_PENDING && t->paused);
    task_free(t);
    check_sqlite_row(y, task_phase_name(TASK_PENDING), NULL);
    store_close(s);
}

/* store_task_render's render for the cache tests: the version and the
 * progress, counted; the first call after `change_in_render` is set
 * heartbeats the task itself, on the writer, before it writes the task it
 * was given (a write that commits while a read renders). */
static struct {
    int calls;
    struct store *s;
    const char *change_in_render, *token;
} rc_state;

static void render_counted(struct buf *b, const struct task *t) {
    rc_state.calls++;
    if (rc_state.change_in_render) {
        const char *id = rc_state.change_in_render;
        rc_state.change_in_render = NULL;
        CHECK_INT(heartbeat(rc_state.s, id, rc_state.token, 0.75), 0);
    }
    buf_printf(b, "v%lld r%.2f", (long long)t->version, t->progress.ratio);
}

static void render_other(struct buf *b, const struct task *t) {
    buf_printf(b, "other v%lld", (long long)t->version);
}

/* Renders task id through store_task_render; the text, or NULL with *rc. */
static char *render(struct store *s, const char *ns, const char *id,
                    void (*fn)(struct buf *, const struct task *), int *rc) {
    struct buf b;
    buf_init(&b);
    struct tm_error e;
    err_clear(&e);
    *rc = store_task_render(s, ns, id, fn, &b, &e);
    if (*rc) {
        buf_release(&b);
        return NULL;
    }
    buf_putc(&b, '\0');
    return buf_detach(&b);
}

static void check_render(struct store *s, const char *ns, const char *id,
                         void (*fn)(struct buf *, const struct task *), const char *want,
                         int calls) {
    int rc = 0;
    char *got = render(s, ns, id, fn, &rc);
    CHECK_INT(rc, 0);
    if (got) CHECK_STR(got, want);
    free(got);
    CHECK_INT(rc_state.calls, calls);
}

/*
 * The read cache (SQLite): a render is kept and handed out again until the
 * task changes; a change committed while a read renders is not hidden by
 * that read's render; a namespace that may not see the task still does not;
 * a deleted task is gone. PostgreSQL keeps nothing (other nodes write too).
 */
static void test_reads_keep_renders_until_a_change(void) {
    struct store *s = open_store(0);
    CHECK(s);
    if (!s) return;
    bool keeps = strncmp(url, "sqlite:", 7) == 0;
    memset(&rc_state, 0, sizeof rc_state);
    rc_state.s = s;
    char id[ID_LEN + 1], tok[ID_LEN + 1];
    if (!create_claimed(s, "rc", "rcq", id, tok)) return;
    struct task *t = get(s, "rc", id);
    CHECK(t);
    if (!t) return;
    long long v = (long long)t->version;
    task_free(t);
    char want[64];
    snprintf(want, sizeof want, "v%lld r0.00", v);
    check_render(s, "rc", id, render_counted, want, 1);
    check_render(s, "rc", id, render_counted, want, keeps ? 1 : 2);
    check_render(s, NULL, id, render_counted, want, keeps ? 1 : 3);
    int calls = rc_state.calls;
    /* Another render is kept apart. */
    char other[64];
    snprintf(other, sizeof other, "other v%lld", v);
    check_render(s, "rc", id, render_other, other, calls);

    /* A namespace that may not see it: not found, kept render or not. */
    int rc = 0;
    CHECK(render(s, "elsewhere", id, render_counted, &rc) == NULL);
    CHECK_INT(rc, TM_ENOT_FOUND);

    /* A heartbeat: the next read renders the new state. */
    CHECK_INT(heartbeat(s, id, tok, 0.5), 0);
    snprintf(want, sizeof want, "v%lld r0.50", v + 1);
    check_render(s, "rc", id, render_counted, want, ++calls);
    check_render(s, "rc", id, render_counted, want, keeps ? calls : ++calls);

    /* A change that commits while a read renders: that read shows the
     * state it read, and keeps nothing; the next read shows the change. */
    CHECK_INT(heartbeat(s, id, tok, 0.25), 0);
    rc_state.change_in_render = id;
    rc_state.token = tok;
    snprintf(want, sizeof want, "v%lld r0.25", v + 2);
    check_render(s, "rc", id, render_counted, want, ++calls);
    snprintf(want, sizeof want, "v%lld r0.75", v + 3);
    check_render(s, "rc", id, render_counted, want, ++calls);
    check_render(s, "rc", id, render_counted, want, keeps ? calls : ++calls);

    struct store_stats st;
    store_get_stats(s, &st);
    if (keeps) {
        CHECK(st.read_cache_hits >= 4);
        CHECK(st.read_cache_entries >= 1 && st.read_cache_bytes > 0);
    } else {
        CHECK_INT(st.read_cache_hits, 0);
        CHECK_INT(st.read_cache_entries, 0);
    }

    /* Completed, then deleted: not found, though a render was kept. */
    CHECK_INT(simple(s, STORE_OP_COMPLETE, "rc", id, tok, NULL), 0);
    snprintf(want, sizeof want, "v%lld r1.00", v + 4);
    check_render(s, "rc", id, render_counted, want, ++calls);
    CHECK_INT(simple(s, STORE_OP_DELETE, "rc", id, NULL, NULL), 0);
    CHECK(render(s, "rc", id, render_counted, &rc) == NULL);
    CHECK_INT(rc, TM_ENOT_FOUND);
    store_close(s);
}

static const struct th_test tests[] = {
    {"create and read back; namespaces", test_create_and_read_back},
    {"idempotency keys are per namespace", test_idempotency_per_namespace},
    {"claims: priority, FIFO, type, namespace", test_claim_order_type_namespace},
    {"a refused op writes nothing", test_refused_op_writes_nothing},
    {"parked claims and watches wake on commit", test_parked_claim_and_watch},
    {"the sweep expires leases and wakes waiting tasks", test_sweep_expires_leases_and_wakes},
    {"lists by update time follow heartbeats, in order",
     test_lists_by_update_time_follow_heartbeats},
    {"parent counts follow children", test_parent_counts},
    {"a completed parent waits for its children", test_parent_waits_for_children},
    {"list filters and cursor", test_list_filters_and_cursor},
    {"queue settings and counts", test_queue_counts_and_settings},
    {"durable across close and open", test_durable_across_reopen},
    {"events: every write appends, in seq order; reads after a seq; the head",
     test_events_every_write_in_order},
    {"events store the changing part; reads give the whole task back, byte for byte",
     test_events_store_the_changing_part},
    {"webhooks: add, list, cap, delete; deliveries queued and due", test_webhooks_and_deliveries},
    {"deliveries follow the webhooks there are, added and deleted",
     test_deliveries_follow_the_webhooks_there_are},
    {"a webhook attempt whose claim ran out records nothing and frees nothing",
     test_late_outcome_records_nothing},
    {"tokens: create, get, list, revoke, any active", test_tokens},
    {"a relaxed SQLite store checkpoints its WAL itself", test_relaxed_store_checkpoints},
    {"a relaxed SQLite store flushes its commits on its timer",
     test_relaxed_store_flushes_on_its_timer},
    {"a parked claim looks again for a task another transaction had locked",
     test_parked_claim_looks_again_after_a_lock},
    {"an idempotency key another transaction inserts first: the insert and its counts undone",
     test_idempotency_race_undoes_its_insert},
    {"claims from many threads at once: every task exactly once", test_concurrent_claims_once_each},
    {"claims from two stores on one database: every task exactly once",
     test_two_stores_claim_once_each},
    {"a batched claim of N: N distinct tasks, in priority order", test_batch_claim_many_in_order},
    {"a batch's claims skip tasks it cancelled or paused", test_batch_claim_skips_changed},
    {"a batch's claims see tasks it made ready", test_batch_claim_sees_new_ready},
    {"two heartbeats of one task in one batch: the second sees the first",
     test_batch_two_heartbeats},
    {"updates follow each change of an indexed column, several in one batch",
     test_updates_follow_each_change},
    {"reads keep a task's render until it changes (SQLite), even mid-read",
     test_reads_keep_renders_until_a_change},
    {"children's claims and completions roll up into the parent in one batch",
     test_batch_child_and_parent},
    {"two stores claiming and completing batches: each task once, no update lost",
     test_two_stores_work_batches},
    {"a batch that loses a deadlock is applied again, once", test_batch_retried_after_deadlock},
    {"a rename meets a name another transaction is inserting: its own 409, the batch goes on",
     test_rename_meets_a_name_being_inserted},
    {"a name that reads as another doc's id is not taken by it: created, no false 409",
     test_name_like_another_id_is_not_taken},
    {"a schedule's launch meets its idempotency key being inserted: it finds that task",
     test_schedule_launch_meets_a_key_being_inserted},
    {"fire rows past the events' age go, in steps; each schedule's newest 1,000 stay",
     test_old_fires_go_the_newest_stay},
    {"an interval's missed slots are all counted after a long downtime",
     test_missed_slots_of_a_long_downtime_are_counted},
    {"an interval's missed slots leave out every marked pause's slots",
     test_missed_slots_skip_every_marked_pause},
    {"a pause's mark left behind the first by an older node is still skipped",
     test_missed_slots_skip_a_mark_left_alone},
    {"an op on a schedule whose stored body no longer parses fails alone, not its batch",
     test_unreadable_schedule_op_fails_alone},
    {"a statement sent ahead that fails fails its batch, which stores nothing",
     test_failure_sent_ahead_fails_the_batch},
    {"a rolled-back batch leaves no row the writer keeps: the next load finds it as committed",
     test_rolled_back_batch_leaves_no_kept_row},
    {"a failed batch fails every op of it, refusals found against its undone ops too",
     test_failed_batch_fails_refusals_too},
    {"another process's commit to the file is seen by the next load, not written over",
     test_foreign_commit_drops_kept_rows},
    {"600 submits in one op: all stored, their events in order, counted",
     test_many_submits_in_one_op},
    {"another node's events reach the listener whole, as the log gives them back",
     test_feed_joins_other_nodes_events},
    {"another node's events come without task JSON while the listener needs none",
     test_feed_bare_while_unneeded},
    {NULL, NULL},
};

int main(int argc, char **argv) {
    snprintf(dir, sizeof dir, "%s/taskmill-store-XXXXXX",
             getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    if (!mkdtemp(dir)) return 1;
    const char *want = getenv("TASKMILL_TEST_STORE");
    char pgdb[64] = "";
    if (!want && th_backend_is_pg()) {
        if (th_pg_db_create(pgdb, url, sizeof url)) {
            printf("FAIL no database for the store suite on '%s'\n", getenv("TASKMILL_TEST_PG"));
            printf("RESULT passed=0 failed=1\n");
            return 1;
        }
        want = url;
    }
    if (!want) want = "sqlite:{dir}/store.db";
    const char *at = strstr(want, "{dir}");
    if (at)
        snprintf(url, sizeof url, "%.*s%s%s", (int)(at - want), want, dir, at + 5);
    else if (want != url)
        snprintf(url, sizeof url, "%s", want);
    int rc = th_main(tests, argc, argv);
    if (pgdb[0] && th_pg_db_drop(pgdb)) rc = 1;
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd)) {
    }
    return rc;
}
