/*
 * A server that asks its clients to slow down (`--max-rate`: 429 with
 * Retry-After: 1), against the real server: `taskmill work`, one task at a
 * time and batched, says so once (not "lost the server"), completes every
 * task (its heartbeats and end reports refused for rate are sent again,
 * not given up), and sends nothing sooner than the Retry-After asked: the
 * refusals the server counts stay within one a second for each of the
 * worker's threads, bound by the time the run took. Another command
 * refused for rate says when to try again and exits 5.
 *
 * The tests make tokens (the server is closed from then on); the test's
 * own requests go with a token of their own, 600 ms apart (own_http), so
 * that every refusal the server counts while a worker runs is the worker's.
 */
#include <stdio.h>
#include <stdlib.h>

#include "cli_run.h"
#include "harness.h"
#include "integration/sec_util.h"

static struct th_server srv;
static char own[128]; /* the test's token: admin */

/* A request with the test's token, 600 ms at least after its last: by design, so that the
 * test's own requests stay under --max-rate (2 a second) and are never refused. */
static struct th_resp *own_http(const char *method, const char *path, const char *body) {
    static long long last_ms;
    long long wait = last_ms + 600 - th_now_ms();
    if (wait > 0) th_sleep_ms((int)wait);
    struct th_resp *r = sec_http(&srv, own, method, path, body);
    last_ms = th_now_ms();
    return r;
}

static char logpath[400];

static const char *worker_log(const char *name) {
    snprintf(logpath, sizeof logpath, "%s/%s.log", srv.dir, name);
    return logpath;
}

static void show_log(const char *name) {
    char *s = cli_slurp(worker_log(name));
    printf("    --- %s ---\n%s\n", name, s);
    free(s);
}

/* How many times the log of worker `name` holds text. */
static int log_count(const char *name, const char *text) {
    char *s = cli_slurp(worker_log(name));
    int n = 0;
    for (const char *p = s; (p = strstr(p, text)); p += strlen(text))
        n++;
    free(s);
    return n;
}

/* The server's count of 429 refusals (a request with the test's token), or -1. */
static long long refusals_429(void) {
    struct th_resp *r = own_http("GET", "/metrics", NULL);
    const char *series = "taskmill_auth_refusals_total{status=\"429\"} ";
    const char *p = r->status == 200 && r->body ? strstr(r->body, series) : NULL;
    return p ? atoll(p + strlen(series)) : -1;
}

/* How many tasks of queue q are completed (a request with the test's token), or -1. */
static int completed(const char *q) {
    char path[128];
    snprintf(path, sizeof path, "/v1/tasks?queue=%s&phase=completed&limit=100", q);
    struct th_resp *r = own_http("GET", path, NULL);
    return r->status == 200 ? (int)json_array_size(th_get(r->json, "tasks")) : -1;
}

/* Submits n tasks to queue q in one request with the test's token; 0 or -1. */
static int submit_many(const char *q, int n) {
    json_t *batch = json_array();
    for (int i = 0; i < n; i++)
        json_array_append_new(batch, json_pack("{s:s, s:s}", "type", "rated", "queue", q));
    json_t *whole = json_pack("{s:o}", "tasks", batch);
    char *body = json_dumps(whole, JSON_COMPACT);
    json_decref(whole);
    struct th_resp *r = own_http("POST", "/v1/tasks/batch", body);
    free(body);
    if (r->status != 201 && r->status != 200) {
        printf("    batch submit: %ld %s\n", r->status, r->body ? r->body : "");
        return -1;
    }
    return 0;
}

/*
 * Runs a worker with its own token on n tasks of queue q (with
 * `--concurrency conc`; `threads` of it speak to the server) until it
 * exits after --max-tasks; the commands report progress, so heartbeats
 * go too (every 0.2 s). Checks what the top says.
 */
static void run_rated_worker(const char *q, const char *conc, int threads) {
    enum { N = 6 };
    char bearer[128], id[32];
    CHECK_INT(sec_token(&srv, "admin", "default", "", bearer, id), 0);
    CHECK_INT(submit_many(q, N), 0);
    long long before = refusals_429();
    CHECK(before >= 0);
    setenv("TASKMILL_TOKEN", bearer, 1);
    long long start = th_now_ms();
    pid_t w = cli_spawn(&srv, worker_log(q), "work", "--queue", q, "--concurrency", conc,
                        "--max-tasks", "6", "--heartbeat", "0.2", "--lease", "10", "--", "sh", "-c",
                        "echo 'progress 0.3 a'; sleep 0.3; echo 'progress 0.6 b'; exit 0");
    unsetenv("TASKMILL_TOKEN");
    int rc = cli_wait(w, 120000);
    long long took_ms = th_now_ms() - start;
    if (rc == -1) {
        kill(-w, SIGKILL);
        cli_wait(w, 10000);
    }
    long long after = refusals_429();
    int done = completed(q);
    int slow = log_count(q, "the server asks to slow down");
    int lost = log_count(q, "lost the server");
    int not_reported = log_count(q, "cannot report");
    long long refused = after - before;
    /* Each thread waits the Retry-After (1 s) after each of its refusals. */
    long long most = (long long)threads * (took_ms / 1000 + 2);
    printf("    %d of %d completed in %lld ms; %lld refusals (at most %lld); exit %d\n", done, N,
           took_ms, refused, most, rc);
    if (rc != 0 || done != N || slow != 1 || lost || not_reported || refused > most) show_log(q);
    CHECK_INT(rc, 0); /* -1: still running after 120 s */
    CHECK_INT(done, N);
    CHECK(refused >= 1); /* the rate was met: else this test shows nothing */
    CHECK_INT(slow, 1);  /* once for the episode */
    CHECK_INT(lost, 0);
    CHECK_INT(not_reported, 0);
    CHECK(refused <= most);
}

static void test_one_slot_slows_down(void) {
    run_rated_worker("rate1", "1", 1);
}

static void test_batched_slows_down(void) {
    run_rated_worker("rate3", "3", 2); /* a claimer and a runner */
}

/*
 * Another command refused for rate says so and when to try again, and
 * exits 5 (as for a server that cannot answer now). The test spends the
 * token's requests first, then runs the command at once; on a machine so
 * slow that the bucket refills meanwhile, it tries again (20 times at most).
 */
static void test_command_refused_for_rate(void) {
    char bearer[128], id[32];
    CHECK_INT(sec_token(&srv, "admin", "default", "", bearer, id), 0);
    setenv("TASKMILL_TOKEN", bearer, 1);
    int rc = -1;
    char *err = NULL;
    for (int i = 0; i < 20 && rc != 5; i++) {
        for (int k = 0; k < 4; k++)
            sec_http(&srv, bearer, "GET", "/v1/tasks?limit=1", NULL);
        free(err);
        err = NULL;
        rc = cli_run(&srv, NULL, NULL, &err, "list", "--limit", "1");
        if (rc != 0 && rc != 5) break;
    }
    unsetenv("TASKMILL_TOKEN");
    printf("    exit %d: %s", rc, err ? err : "");
    bool named = err && strstr(err, "taskmill list: ") == err;
    bool why = err && strstr(err, "requests a second") != NULL;
    bool when = err && strstr(err, "too many requests: the server asks to try again after 1 s");
    free(err);
    CHECK_INT(rc, 5);
    CHECK(named);
    CHECK(why);
    CHECK(when);
}

static const struct th_test tests[] = {
    {"work, one task at a time, slows down as a 429 asks and completes its tasks",
     test_one_slot_slows_down},
    {"work --concurrency 3 slows down as a 429 asks and completes its tasks",
     test_batched_slows_down},
    {"a command refused for rate says when to try again and exits 5",
     test_command_refused_for_rate},
    {NULL, NULL},
};

int main(int argc, char **argv) {
    char id[32];
    if (th_server_start(&srv, "--max-rate", "2", NULL) ||
        sec_token(&srv, "admin", "default", "", own, id) != 0) {
        printf("RESULT passed=0 failed=1\n");
        th_server_free(&srv);
        return 1;
    }
    /* Open mode ends with the first token: wait until a request without one is refused. */
    long long until = th_now_ms() + 20000;
    while (th_http(&srv, "GET", "/v1/tasks", NULL)->status != 401 && th_now_ms() < until)
        th_sleep_ms(100);
    int rc = th_main(tests, argc, argv);
    th_server_free(&srv);
    return rc || th_failed();
}
