/*
 * The store conformance suite: store.h's contract, exercised directly (no
 * HTTP), so that every backend proves itself on the same tests. The URL
 * comes from TASKMILL_TEST_STORE (a `{dir}` in it is replaced by a fresh
 * temporary directory); the default is a SQLite file there.
 *
 * What a backend must do: create and read back every field; idempotency
 * per namespace; claims in priority then FIFO order, by type and
 * namespace; parked claims and watches woken by later commits; the sweep
 * of expired leases and due waiting tasks; refused ops that write
 * nothing; parent counts; list filters and cursors; queue counts and
 * settings; everything durable across close and open.
 */
#include <stdio.h>
#include <stdlib.h>
#include <pthread.h>
#include <string.h>
#include <unistd.h>

#include "../src/common/timeutil.h"
#include "../src/common/xalloc.h"
#include "../src/store/store.h"
#include "harness.h"

static char dir[256], url[512];

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

struct later {
    struct store *s;
    int delay_ms;
    char id[ID_LEN + 1];
};

static void *later_create(void *arg) {
    struct later *l = arg;
    th_sleep_ms(l->delay_ms);
    create(l->s, new_task("n", "park", "x", 0), l->id);
    return NULL;
}

static void test_parked_claim_and_watch(void) {
    struct store *s = open_store(0);
    CHECK(s);
    struct later l = {s, 200, ""};
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
    th_sleep_ms(200);
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
    op.queue_settings = (struct queue_settings){0, 10, 20};
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

static const struct th_test tests[] = {
    {"create and read back; namespaces", test_create_and_read_back},
    {"idempotency keys are per namespace", test_idempotency_per_namespace},
    {"claims: priority, FIFO, type, namespace", test_claim_order_type_namespace},
    {"a refused op writes nothing", test_refused_op_writes_nothing},
    {"parked claims and watches wake on commit", test_parked_claim_and_watch},
    {"the sweep expires leases and wakes waiting tasks", test_sweep_expires_leases_and_wakes},
    {"parent counts follow children", test_parent_counts},
    {"a completed parent waits for its children", test_parent_waits_for_children},
    {"list filters and cursor", test_list_filters_and_cursor},
    {"queue settings and counts", test_queue_counts_and_settings},
    {"durable across close and open", test_durable_across_reopen},
    {NULL, NULL},
};

int main(int argc, char **argv) {
    snprintf(dir, sizeof dir, "%s/taskmill-store-XXXXXX",
             getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    if (!mkdtemp(dir)) return 1;
    const char *want = getenv("TASKMILL_TEST_STORE");
    if (!want) want = "sqlite:{dir}/store.db";
    const char *at = strstr(want, "{dir}");
    if (at)
        snprintf(url, sizeof url, "%.*s%s%s", (int)(at - want), want, dir, at + 5);
    else
        snprintf(url, sizeof url, "%s", want);
    int rc = th_main(tests, argc, argv);
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd)) {
    }
    return rc;
}
