/*
 * Several `taskmill serve` nodes on one PostgreSQL database (DESIGN section
 * 4, "Several nodes on PostgreSQL"): what one node writes, every node reads,
 * claims, wakes on and streams; claims from all nodes at once hand out each
 * task once; a lease that runs out is swept once, whichever node sweeps.
 *
 * Each test starts node A (th_server_start) and node B on A's database
 * (th_server_start_peer). On SQLite there is no second node: every test is
 * skipped. Threads are the tests' own; th_http keeps one connection per
 * thread.
 */
#include <libpq-fe.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "harness.h"
#include "pg_util.h"
#include "sse_client.h"

static char *tpath(const char *id, const char *tail) {
    static __thread char p[160];
    snprintf(p, sizeof p, "/v1/tasks/%s%s", id, tail);
    return p;
}

/* Starts a and, on its database, b. False (skipped or failed) when there is no b. */
static bool two_nodes(struct th_server *a, struct th_server *b) {
    if (!th_backend_is_pg()) {
        memset(a, 0, sizeof *a);
        memset(b, 0, sizeof *b);
        th_skip("several nodes on one database need PostgreSQL (TASKMILL_TEST_PG)");
        return false;
    }
    if (th_server_start(a, NULL)) {
        th_fail(__FILE__, __LINE__, "node A did not start (log %s/server.log)", a->dir);
        th_server_stop(a, true);
        return false;
    }
    if (th_server_start_peer(b, a, NULL)) {
        th_server_free(a);
        return false;
    }
    return true;
}

static void free_nodes(struct th_server *a, struct th_server *b) {
    th_server_free(b);
    th_server_free(a);
}

static void test_one_task_through_both_nodes(void) {
    struct th_server a, b;
    if (!two_nodes(&a, &b)) return;
    char *id = th_submit(&a, "mn", "\"queue\":\"mnq\"");
    struct th_resp *r = id ? th_http(&b, "GET", tpath(id, ""), NULL) : NULL;
    bool read = r && r->status == 200 && strcmp(th_str(r->json, "phase"), "pending") == 0;
    char cid[33] = "", tok[33] = "";
    long claimed = id ? th_claim(&b, "mnq", NULL, cid, tok) : 0;
    long hb = 0, done = 0;
    const char *phase = "?";
    if (claimed == 200) {
        hb = th_http(&a, "POST", tpath(id, "/heartbeat"),
                     "{\"lease_token\":\"%s\",\"progress\":{\"ratio\":0.5}}", tok)
                 ->status;
        done = th_http(&b, "POST", tpath(id, "/complete"), "{\"lease_token\":\"%s\"}", tok)->status;
        phase = th_phase(&a, id);
    }
    free_nodes(&a, &b);
    bool same = id && strcmp(cid, id) == 0;
    free(id);
    CHECK(read);
    CHECK_INT(claimed, 200);
    CHECK(same);
    CHECK_INT(hb, 200);
    CHECK_INT(done, 200);
    CHECK_STR(phase, "completed");
}

struct waiter {
    struct th_server *node;
    const char *path, *body; /* body: a claim (POST); NULL: a long-poll read (GET) */
    long status;
    long long version;
    long long took_ms;
    char id[33];
};

static void *waiter_run(void *arg) {
    struct waiter *w = arg;
    long long t0 = sse_now_ms();
    struct th_resp *r = w->body ? th_http(w->node, "POST", w->path, "%s", w->body)
                                : th_http(w->node, "GET", w->path, NULL);
    w->took_ms = sse_now_ms() - t0;
    w->status = r->status;
    w->version = th_int(r->json, w->body ? "task.version" : "version");
    const char *id = th_str(r->json, w->body ? "task.id" : "id");
    snprintf(w->id, sizeof w->id, "%s", id ? id : "");
    th_http(NULL, NULL, NULL, NULL);
    return NULL;
}

static void test_parked_claim_woken_by_other_node(void) {
    struct th_server a, b;
    if (!two_nodes(&a, &b)) return;
    struct waiter w = {.node = &b,
                       .path = "/v1/queues/wakeq/claim",
                       .body = "{\"worker\":\"w\",\"wait_seconds\":20}"};
    pthread_t th;
    pthread_create(&th, NULL, waiter_run, &w);
    bool parked;
    TRY_WAIT_UNTIL(parked, th_metric(&b, "taskmill_parked_claims") >= 1, 10000,
                   "the claim to be parked on node b");
    char *id = th_submit(&a, "wake", "\"queue\":\"wakeq\"");
    pthread_join(th, NULL);
    free_nodes(&a, &b);
    char want[33];
    snprintf(want, sizeof want, "%s", id ? id : "(none)");
    free(id);
    CHECK_INT(w.status, 200);
    CHECK_STR(w.id, want);
    /* Woken by the other node's commit, not by the end of the wait. */
    CHECK(w.took_ms < 10000);
}

static void test_long_poll_woken_by_other_node(void) {
    struct th_server a, b;
    if (!two_nodes(&a, &b)) return;
    char *id = th_submit(&a, "lp", "\"queue\":\"lpq\"");
    if (!id) {
        free_nodes(&a, &b);
        CHECK(id);
    }
    char path[200];
    snprintf(path, sizeof path, "/v1/tasks/%s?wait=20&version=1", id);
    struct waiter w = {.node = &b, .path = path};
    pthread_t th;
    pthread_create(&th, NULL, waiter_run, &w);
    bool parked;
    TRY_WAIT_UNTIL(parked, th_metric(&b, "taskmill_parked_watches") >= 1, 10000,
                   "the long-poll to be parked on node b");
    long paused = th_http(&a, "POST", tpath(id, "/pause"), NULL)->status;
    pthread_join(th, NULL);
    free_nodes(&a, &b);
    free(id);
    CHECK_INT(paused, 200);
    CHECK_INT(w.status, 200);
    CHECK_INT(w.version, 2);
    CHECK(w.took_ms < 10000);
}

/* A stream on A sees the events of both nodes, exactly once and in order.
 * `bare`: the nodes' feeds read other nodes' events without their JSON
 * even while the stream is open (TASKMILL_EVENTS_FEED_BARE), so each page
 * of B's events is a gap the stream must read back from the store. */
static void stream_sees_every_node(bool bare) {
    struct th_server a, b;
    if (bare) setenv("TASKMILL_EVENTS_FEED_BARE", "1", 1);
    bool up = two_nodes(&a, &b);
    unsetenv("TASKMILL_EVENTS_FEED_BARE");
    if (!up) return;
    struct sse_conn c;
    bool opened = sse_open(&c, a.url, "/v1/events?since=0", -1, 0) == 0;
    enum { N = 10 };
    char *ids[N];
    for (int i = 0; i < N; i++)
        ids[i] = th_submit(i % 2 ? &b : &a, "fan", "\"queue\":\"fanq\"");
    int got = 0, dup = 0, unknown = 0;
    long long last = 0;
    bool ordered = true;
    bool seen[N] = {false};
    long long deadline = sse_now_ms() + 10000;
    while (opened && got + unknown < N && sse_now_ms() < deadline) {
        struct sse_event ev = {.id = -1};
        if (sse_next(&c, &ev, (int)(deadline - sse_now_ms())) != 1) break;
        if (strcmp(ev.event, "task.created") == 0) {
            if (ev.id <= last) ordered = false;
            last = ev.id;
            json_t *j = json_loads(ev.data, 0, NULL);
            const char *tid = th_str(j, "task_id");
            int at = -1;
            for (int i = 0; i < N && tid; i++)
                if (ids[i] && strcmp(ids[i], tid) == 0) at = i;
            if (at < 0)
                unknown++;
            else if (seen[at])
                dup++;
            else {
                seen[at] = true;
                got++;
            }
            json_decref(j);
        }
        sse_event_clear(&ev);
    }
    if (opened) sse_close(&c);
    long long gaps = th_metric(&a, "taskmill_sse_gaps_total");
    long long read_bare = th_metric(&a, "taskmill_feed_events_bare_total");
    free_nodes(&a, &b);
    for (int i = 0; i < N; i++)
        free(ids[i]);
    CHECK(opened);
    CHECK_INT(got, N); /* B's five too, through the event log */
    CHECK_INT(dup, 0);
    CHECK_INT(unknown, 0);
    CHECK(ordered);
    if (bare) {
        CHECK(gaps >= 1);
        CHECK(read_bare >= 5);
    } else {
        CHECK_INT(gaps, 0);
        CHECK_INT(read_bare, 0); /* the stream was open before B wrote */
    }
}

static void test_stream_sees_every_node(void) {
    stream_sees_every_node(false);
}

static void test_stream_sees_every_node_through_gaps(void) {
    stream_sees_every_node(true);
}

/* ---- Claims from both nodes at once ---- */

enum { RACE_TASKS = 60, RACE_THREADS = 4 };

struct race {
    struct th_server *nodes[2];
    pthread_mutex_t lock;
    char ids[RACE_TASKS * 2][33];
    int n, errors;
};

struct race_arg {
    struct race *r;
    int index;
};

static void *race_run(void *arg) {
    struct race_arg *ra = arg;
    struct race *r = ra->r;
    struct th_server *node = r->nodes[ra->index % 2];
    for (;;) {
        char id[33], tok[33];
        long st = th_claim(node, "raceq", "{\"worker\":\"racer\"}", id, tok);
        pthread_mutex_lock(&r->lock);
        if (st == 200 && r->n < RACE_TASKS * 2) memcpy(r->ids[r->n++], id, 33);
        if (st != 200 && st != 204) r->errors++;
        pthread_mutex_unlock(&r->lock);
        if (st != 200) break;
    }
    th_http(NULL, NULL, NULL, NULL);
    return NULL;
}

static void test_claims_from_both_nodes_once_each(void) {
    static struct th_server a, b;
    if (!two_nodes(&a, &b)) return;
    /* One batch of RACE_TASKS tasks. */
    char *body = malloc(64 * RACE_TASKS + 32);
    size_t len = (size_t)sprintf(body, "{\"tasks\":[");
    for (int i = 0; i < RACE_TASKS; i++)
        len +=
            (size_t)sprintf(body + len, "%s{\"type\":\"race\",\"queue\":\"raceq\"}", i ? "," : "");
    sprintf(body + len, "]}");
    static const char *const ct[] = {"Content-Type: application/json", NULL};
    long created = th_http_raw(&a, "POST", "/v1/tasks/batch", body, strlen(body), ct)->status;
    free(body);
    static struct race r;
    memset(&r, 0, sizeof r);
    r.nodes[0] = &a;
    r.nodes[1] = &b;
    pthread_mutex_init(&r.lock, NULL);
    pthread_t th[RACE_THREADS];
    struct race_arg args[RACE_THREADS];
    for (int i = 0; i < RACE_THREADS && created / 100 == 2; i++) {
        args[i] = (struct race_arg){&r, i};
        pthread_create(&th[i], NULL, race_run, &args[i]);
    }
    for (int i = 0; i < RACE_THREADS && created / 100 == 2; i++)
        pthread_join(th[i], NULL);
    pthread_mutex_destroy(&r.lock);
    free_nodes(&a, &b);
    CHECK_INT(created / 100, 2);
    CHECK_INT(r.errors, 0);
    CHECK_INT(r.n, RACE_TASKS);
    for (int i = 0; i < r.n; i++)
        for (int j = i + 1; j < r.n; j++)
            if (strcmp(r.ids[i], r.ids[j]) == 0) {
                th_fail(__FILE__, __LINE__, "task %s handed out twice", r.ids[i]);
                return;
            }
}

static void test_expired_lease_swept_once(void) {
    struct th_server a, b;
    if (!two_nodes(&a, &b)) return;
    char *id = th_submit(&a, "slow", "\"queue\":\"sweepq\",\"max_retries\":3,\"backoff_ms\":0");
    char cid[33] = "", tok[33] = "";
    long claimed =
        id ? th_claim(&b, "sweepq", "{\"worker\":\"w1\",\"lease_seconds\":1}", cid, tok) : 0;
    /* Both nodes sweep; the task comes back once, to the next worker. */
    char cid2[33] = "", tok2[33] = "";
    long again =
        claimed == 200
            ? th_claim(&a, "sweepq", "{\"worker\":\"w2\",\"lease_seconds\":60,\"wait_seconds\":30}",
                       cid2, tok2)
            : 0;
    th_sleep_ms(1500); /* by design: time for a second, wrong, sweep to show */
    struct th_resp *r = id ? th_http(&b, "GET", tpath(id, ""), NULL) : NULL;
    long long retries = r ? th_int(r->json, "retries") : -1;
    long long attempt = r ? th_int(r->json, "attempt") : -1;
    const char *phase = r && th_str(r->json, "phase") ? th_str(r->json, "phase") : "?";
    bool running = strcmp(phase, "running") == 0;
    bool same = id && strcmp(cid2, id) == 0;
    free_nodes(&a, &b);
    free(id);
    CHECK_INT(claimed, 200);
    CHECK_INT(again, 200);
    CHECK(same);
    CHECK(running);
    CHECK_INT(retries, 1);
    CHECK_INT(attempt, 2);
}

/* A worker whose lease ran out and was swept on one node, the task claimed
 * again through the other, reports through either node under its old
 * token: every call is refused (409) and changes nothing; the new worker's
 * calls go on. */
static void test_stale_token_refused_on_both_nodes(void) {
    struct th_server a, b;
    if (!two_nodes(&a, &b)) return;
    char *id = th_submit(&a, "slow", "\"queue\":\"fenceq\",\"max_retries\":3,\"backoff_ms\":0");
    char cid[33] = "", tok[33] = "", cid2[33] = "", tok2[33] = "";
    long claimed =
        id ? th_claim(&a, "fenceq", "{\"worker\":\"w1\",\"lease_seconds\":1}", cid, tok) : 0;
    long again =
        claimed == 200
            ? th_claim(&b, "fenceq", "{\"worker\":\"w2\",\"lease_seconds\":60,\"wait_seconds\":30}",
                       cid2, tok2)
            : 0;
    static const char *const calls[] = {"/heartbeat", "/complete", "/fail", "/release"};
    long stale[2][4] = {{0}};
    long long before = -1, version = -1;
    if (again == 200) before = th_int(th_http(&b, "GET", tpath(id, ""), NULL)->json, "version");
    for (int n = 0; n < 2 && again == 200; n++)
        for (int k = 0; k < 4; k++)
            stale[n][k] =
                th_http(n ? &b : &a, "POST", tpath(id, calls[k]), "{\"lease_token\":\"%s\"%s}", tok,
                        k == 2 ? ",\"error\":\"late\"" : "")
                    ->status;
    long hb = 0, done = 0;
    if (again == 200) {
        struct th_resp *r = th_http(&a, "GET", tpath(id, ""), NULL);
        version = th_int(r->json, "version");
        hb = th_http(&a, "POST", tpath(id, "/heartbeat"), "{\"lease_token\":\"%s\"}", tok2)->status;
        done =
            th_http(&b, "POST", tpath(id, "/complete"), "{\"lease_token\":\"%s\"}", tok2)->status;
    }
    struct th_resp *r = id ? th_http(&b, "GET", tpath(id, ""), NULL) : NULL;
    const char *phase = r && th_str(r->json, "phase") ? th_str(r->json, "phase") : "?";
    bool completed = strcmp(phase, "completed") == 0;
    long long attempt = r ? th_int(r->json, "attempt") : -1;
    bool same = id && strcmp(cid2, id) == 0;
    free_nodes(&a, &b);
    free(id);
    CHECK_INT(claimed, 200);
    CHECK_INT(again, 200);
    CHECK(same);
    for (int n = 0; n < 2; n++)
        for (int k = 0; k < 4; k++)
            CHECK_INT(stale[n][k], 409);
    CHECK(before > 0);
    CHECK_INT(version, before); /* the refused calls changed nothing */
    CHECK_INT(hb, 200);
    CHECK_INT(done, 200);
    CHECK(completed);
    CHECK_INT(attempt, 2);
}

/* The value of a /metrics line "name VALUE" of s, or fallback when there is none. */
static long long metric(struct th_server *s, const char *name, long long fallback) {
    const struct th_resp *r = th_http(s, "GET", "/metrics", NULL);
    char key[96];
    snprintf(key, sizeof key, "\n%s ", name);
    const char *at = r->status == 200 && r->body ? strstr(r->body, key) : NULL;
    return at ? strtoll(at + strlen(key), NULL, 10) : fallback;
}

/* Whether s's log says what. */
static bool log_says(const struct th_server *s, const char *what) {
    char path[300], text[65536];
    snprintf(path, sizeof path, "%s/server.log", s->dir);
    FILE *f = fopen(path, "r");
    size_t n = f ? fread(text, 1, sizeof text - 1, f) : 0;
    if (f) fclose(f);
    text[n] = '\0';
    return strstr(text, what) != NULL;
}

/*
 * A node whose clock runs 5 s ahead (libfaketime, from scripts/deps.sh
 * --test) says so in its log and in /metrics: nodes compare each other's
 * times, so it would expire other nodes' leases 5 s early. A node in step
 * shows an offset near 0 and says nothing.
 */
static void test_clock_ahead_is_reported(void) {
    const char *lib = "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1";
    if (!th_backend_is_pg()) {
        th_skip("the clock check compares a node with PostgreSQL's clock");
        return;
    }
    if (access(lib, R_OK) != 0) {
        th_fail(__FILE__, __LINE__, "%s is missing: scripts/deps.sh --test installs faketime", lib);
        return;
    }
    struct th_server a, b;
    if (th_server_start(&a, NULL)) {
        th_fail(__FILE__, __LINE__, "node A did not start (log %s/server.log)", a.dir);
        th_server_stop(&a, true);
        return;
    }
    /* B alone runs with the clock ahead; the monotonic clock stays true. */
    const char *asan = getenv("ASAN_OPTIONS");
    char *asan_was = asan ? strdup(asan) : NULL, asan_now[512];
    snprintf(asan_now, sizeof asan_now, "%s%sverify_asan_link_order=0", asan ? asan : "",
             asan && *asan ? ":" : "");
    setenv("ASAN_OPTIONS", asan_now, 1);
    setenv("LD_PRELOAD", lib, 1);
    setenv("FAKETIME", "+5s", 1);
    /* Both, or libfaketime's own timed condition waits return at once and
     * every waiting thread of the node spins. */
    setenv("FAKETIME_DONT_FAKE_MONOTONIC", "1", 1);
    setenv("FAKETIME_FORCE_MONOTONIC_FIX", "0", 1);
    int rc = th_server_start_peer(&b, &a, NULL);
    unsetenv("LD_PRELOAD");
    unsetenv("FAKETIME");
    unsetenv("FAKETIME_DONT_FAKE_MONOTONIC");
    unsetenv("FAKETIME_FORCE_MONOTONIC_FIX");
    if (asan_was)
        setenv("ASAN_OPTIONS", asan_was, 1);
    else
        unsetenv("ASAN_OPTIONS");
    free(asan_was);
    if (rc) {
        th_server_free(&a);
        return;
    }
    /* The first check runs as the node starts; wait for its figure. */
    long long off_b = LLONG_MIN, off_a = LLONG_MIN;
    for (int i = 0; i < 100 && (off_b == LLONG_MIN || off_a == LLONG_MIN); i++) {
        off_b = metric(&b, "taskmill_clock_offset_ms", LLONG_MIN);
        off_a = metric(&a, "taskmill_clock_offset_ms", LLONG_MIN);
        if (off_b == LLONG_MIN || off_a == LLONG_MIN) th_sleep_ms(100);
    }
    if (off_b > -4500 || off_b < -5500) printf("    node B's offset: %lld ms\n", off_b);
    CHECK(off_b <= -4500 && off_b >= -5500);
    CHECK(off_a != LLONG_MIN && off_a > -1000 && off_a < 1000);
    CHECK(log_says(&b, "this node's clock is"));
    CHECK(log_says(&b, "ahead of the database's"));
    CHECK(log_says(&b, "keep the clocks in step (NTP)"));
    CHECK(!log_says(&a, "this node's clock is"));
    free_nodes(&a, &b);
}

static long task_status(struct th_server *s, const char *id) {
    return th_http(s, "GET", tpath(id, ""), NULL)->status;
}

/*
 * Retention on two nodes at once: both may pick the same finished tasks
 * (here surely, as a session holds their rows until both nodes' deletes
 * wait for them); each task is deleted once, and the nodes' counts of
 * tasks deleted by retention add up to the tasks deleted. Each node
 * counted the tasks it queued for deletion, so the sum was twice that.
 */
static void test_retention_on_both_nodes_counts_each_task_once(void) {
    struct th_server a, b;
    if (!th_backend_is_pg()) {
        th_skip("several nodes on one database need PostgreSQL (TASKMILL_TEST_PG)");
        return;
    }
    if (th_server_start(&a, "--finished-max-age-seconds", "1", NULL)) {
        th_fail(__FILE__, __LINE__, "node A did not start (log %s/server.log)", a.dir);
        th_server_stop(&a, true);
        return;
    }
    if (th_server_start_peer(&b, &a, "--finished-max-age-seconds", "1", NULL)) {
        th_server_free(&a);
        return;
    }
    enum { N = 4 };
    char *ids[N] = {0};
    for (int i = 0; i < N; i++) {
        ids[i] = th_submit(&a, "rt", "\"queue\":\"rtq\"");
        CHECK(ids[i] != NULL);
        if (ids[i]) CHECK_INT(th_http(&a, "POST", tpath(ids[i], "/cancel"), NULL)->status, 200);
    }
    /* Another session holds the rows before they are a second old. */
    PGconn *other = PQconnectdb(a.store), *watch = PQconnectdb(a.store);
    CHECK(PQstatus(other) == CONNECTION_OK && PQstatus(watch) == CONNECTION_OK);
    CHECK(pg_run(other, "BEGIN") &&
          pg_run(other, "SELECT id FROM tasks WHERE queue = 'rtq' FOR UPDATE"));
    bool both;
    TRY_WAIT_UNTIL(both,
                   pg_ask(watch,
                          "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type ="
                          " 'Lock' AND datname = current_database()") == 2,
                   10000, "both nodes' retention deletes to wait for the rows");
    CHECK(pg_run(other, "ROLLBACK"));
    bool gone = false;
    for (int i = 0; i < 200 && !gone; i++) {
        gone = true;
        for (int k = 0; k < N && gone; k++)
            gone = ids[k] && task_status(&a, ids[k]) == 404;
        if (!gone) th_sleep_ms(50);
    }
    CHECK(gone);
    /* Both nodes are done with their deletes once neither waits. */
    bool settled;
    TRY_WAIT_UNTIL(settled,
                   pg_ask(watch,
                          "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type ="
                          " 'Lock' AND datname = current_database()") == 0 &&
                       metric(&a, "taskmill_tasks_pruned_total", 0) +
                               metric(&b, "taskmill_tasks_pruned_total", 0) >=
                           N,
                   10000, "both nodes to finish their deletes");
    th_sleep_ms(500);
    long long pa = metric(&a, "taskmill_tasks_pruned_total", -1);
    long long pb = metric(&b, "taskmill_tasks_pruned_total", -1);
    if (pa + pb != N) printf("    pruned: node A %lld, node B %lld\n", pa, pb);
    CHECK_INT(pa + pb, N);
    (void)both;
    (void)settled;
    PQfinish(other);
    PQfinish(watch);
    for (int i = 0; i < N; i++)
        free(ids[i]);
    free_nodes(&a, &b);
}

static const struct th_test tests[] = {
    {"a task submitted on one node is read, claimed and finished through another",
     test_one_task_through_both_nodes},
    {"a claim parked on one node is woken by a submit on another",
     test_parked_claim_woken_by_other_node},
    {"a long-poll on one node returns on a change made on another",
     test_long_poll_woken_by_other_node},
    {"one node's event stream carries every node's writes, in order, once",
     test_stream_sees_every_node},
    {"the stream carries them once and in order when other nodes' events come without JSON",
     test_stream_sees_every_node_through_gaps},
    {"claims from both nodes at once hand out every task once",
     test_claims_from_both_nodes_once_each},
    {"a lease that runs out is swept once, whichever node sweeps", test_expired_lease_swept_once},
    {"a worker's old token is refused on both nodes once the task was claimed again",
     test_stale_token_refused_on_both_nodes},
    {"a node whose clock runs ahead of the database's says so", test_clock_ahead_is_reported},
    {"retention on both nodes deletes each task once and counts it once",
     test_retention_on_both_nodes_counts_each_task_once},
    {NULL, NULL},
};

int main(int argc, char **argv) {
    return th_main(tests, argc, argv) || th_failed();
}
