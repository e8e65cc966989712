/*
 * A server that asks its clients to slow down (`--max-rate`: 429 with
 * Retry-After: 1), against the real server: `taskmill work`, one task at a
 * time and batched, says so once (not "lost the server"), completes every
 * task (its heartbeats and end reports refused for rate are sent again,
 * not given up), and sends nothing sooner than the Retry-After asked: the
 * refusals the server counts stay within one a second for each of the
 * worker's threads, bound by the time the run took. A server away whose
 * 503 carries Retry-After (a fake one) is claimed from no sooner than it
 * says. Another command refused for rate says when to try again and
 * exits 5.
 *
 * The tests make tokens (the server is closed from then on); the test's
 * own requests go with a token of their own, 600 ms apart (own_http), so
 * that every refusal the server counts while a worker runs is the worker's.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>

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

/* A fake server that answers every request 503 with `Retry-After: 2` and closes the
 * connection, counting the requests. */
struct away {
    int retry_after; /* seconds: its 503s' Retry-After */
    int lfd;
    char url[64];
    atomic_int requests;
    atomic_bool stop;
    pthread_t th;
};

static void *away_main(void *arg) {
    struct away *a = arg;
    static const char body[] = "{\"error\":{\"code\":\"unavailable\",\"message\":\"down\"}}";
    char reply[512];
    int len = snprintf(reply, sizeof reply,
                       "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
                       "Retry-After: %d\r\nConnection: close\r\nContent-Length: %zu\r\n\r\n%s",
                       a->retry_after, sizeof body - 1, body);
    while (!atomic_load(&a->stop)) {
        struct pollfd pf = {a->lfd, POLLIN, 0};
        if (poll(&pf, 1, 100) <= 0) continue;
        int fd = accept(a->lfd, NULL, NULL);
        if (fd < 0) continue;
        char head[8192];
        size_t n = 0;
        head[0] = '\0';
        while (!strstr(head, "\r\n\r\n") && n < sizeof head - 1) {
            struct pollfd cp = {fd, POLLIN, 0};
            if (poll(&cp, 1, 2000) <= 0) break;
            ssize_t r = recv(fd, head + n, sizeof head - 1 - n, 0);
            if (r <= 0) break;
            n += (size_t)r;
            head[n] = '\0';
        }
        if (strstr(head, "\r\n\r\n")) atomic_fetch_add(&a->requests, 1);
        if (send(fd, reply, (size_t)len, MSG_NOSIGNAL) < 0) {
            /* the client went */
        }
        close(fd);
    }
    return NULL;
}

static int away_start(struct away *a, int retry_after) {
    memset(a, 0, sizeof *a);
    a->retry_after = retry_after;
    a->lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in in = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof in;
    if (a->lfd < 0 || bind(a->lfd, (struct sockaddr *)&in, sizeof in) || listen(a->lfd, 8) ||
        getsockname(a->lfd, (struct sockaddr *)&in, &len))
        return -1;
    snprintf(a->url, sizeof a->url, "http://127.0.0.1:%d", ntohs(in.sin_port));
    return pthread_create(&a->th, NULL, away_main, a) ? -1 : 0;
}

static void away_stop(struct away *a) {
    atomic_store(&a->stop, true);
    pthread_join(a->th, NULL);
    close(a->lfd);
}

/*
 * A server away that answers 503 with Retry-After: 2 (a proxy in front of
 * it, say): the worker says it lost the server, once, and claims no
 * sooner than 2 s after each refusal: its requests stay within one per
 * 2 s of the time it ran, plus the first. A stop ends its wait.
 */
static void test_unavailable_with_retry_after(void) {
    struct away a;
    CHECK(away_start(&a, 2) == 0);
    long long start = th_now_ms();
    pid_t w = cli_spawn(&srv, worker_log("away"), "work", "--server", a.url, "--queue", "awayq",
                        "--", "true");
    bool three = false;
    for (long long end = th_now_ms() + 30000; !three && th_now_ms() < end; th_sleep_ms(50))
        three = atomic_load(&a.requests) >= 3;
    kill(w, SIGTERM);
    int rc = cli_wait(w, 20000);
    if (rc == -1) {
        kill(-w, SIGKILL);
        cli_wait(w, 10000);
    }
    long long took_ms = th_now_ms() - start;
    away_stop(&a);
    int requests = atomic_load(&a.requests);
    long long most = took_ms / 2000 + 1;
    int lost = log_count("away", "lost the server");
    printf("    %d requests in %lld ms (at most %lld); exit %d\n", requests, took_ms, most, rc);
    if (!three || rc != 0 || lost != 1 || requests > most) show_log("away");
    CHECK(three);     /* 3 claims within 30 s */
    CHECK_INT(rc, 0); /* -1: still running 20 s after SIGTERM */
    CHECK_INT(lost, 1);
    CHECK(requests <= most);
}

/*
 * A stop ends a long wait the server asked for: a 503 with Retry-After:
 * 30 (the worker waits it, capped at 60 s), then SIGTERM a second into
 * the wait; the worker is gone well before the 30 s (its stop allows a
 * call 5 s; nothing is running), and sent nothing more meanwhile.
 */
static void test_stop_ends_a_long_wait(void) {
    struct away a;
    CHECK(away_start(&a, 30) == 0);
    pid_t w = cli_spawn(&srv, worker_log("awaylong"), "work", "--server", a.url, "--queue",
                        "awaylongq", "--", "true");
    bool asked = false;
    for (long long end = th_now_ms() + 30000; !asked && th_now_ms() < end; th_sleep_ms(50))
        asked = atomic_load(&a.requests) >= 1;
    th_sleep_ms(1000); /* by design: into the wait */
    long long t0 = th_now_ms();
    kill(w, SIGTERM);
    int rc = cli_wait(w, 20000);
    long long took_ms = th_now_ms() - t0;
    if (rc == -1) {
        kill(-w, SIGKILL);
        cli_wait(w, 10000);
    }
    away_stop(&a);
    int requests = atomic_load(&a.requests);
    printf("    stopped %lld ms after SIGTERM, %d requests\n", took_ms, requests);
    if (!asked || rc != 0 || requests != 1) show_log("awaylong");
    CHECK(asked);
    CHECK_INT(rc, 0);       /* -1: still waiting 20 s after SIGTERM, the 30 s not cut short */
    CHECK_INT(requests, 1); /* nothing sooner than the 30 s */
}

static const struct th_test tests[] = {
    {"work, one task at a time, slows down as a 429 asks and completes its tasks",
     test_one_slot_slows_down},
    {"work --concurrency 3 slows down as a 429 asks and completes its tasks",
     test_batched_slows_down},
    {"work waits a 503's Retry-After before claiming again", test_unavailable_with_retry_after},
    {"a stop ends a long wait a Retry-After asked for", test_stop_ends_a_long_wait},
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
