/*
 * A claim served to a client that has gone: the task goes back to its
 * queue at once (pending, no retry counted, its lease void, a message
 * saying why), not after the lease a worker that is no more holds runs
 * out. One-task and batched claims, the fast path and libmicrohttpd (a
 * chunked body goes there, and every request with --no-fast-path); and a
 * claim whose client reads its reply keeps its task. Raw sockets: the
 * client closes (or resets) at a moment it picks.
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "harness.h"

static struct th_server srv;

/* Sends POST path with body on a new connection (chunked: through
 * libmicrohttpd); the socket, or -1. */
static int post_open(struct th_server *s, const char *path, const char *body, bool chunked) {
    int fd = th_tcp_open(s);
    if (fd < 0) return -1;
    char req[1024];
    int n = chunked ? snprintf(req, sizeof req,
                               "POST %s HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                               "Content-Type: application/json\r\nTransfer-Encoding: chunked"
                               "\r\n\r\n%zx\r\n%s\r\n0\r\n\r\n",
                               path, strlen(body), body)
                    : snprintf(req, sizeof req,
                               "POST %s HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                               "Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n%s",
                               path, strlen(body), body);
    if (send(fd, req, (size_t)n, MSG_NOSIGNAL) != n) {
        close(fd);
        return -1;
    }
    return fd;
}

/* A waiting claim of worker "gone" (one task, or batched with max 2). */
static int gone_claim_open(const char *queue, bool batched, bool chunked) {
    char path[128];
    snprintf(path, sizeof path, "/v1/queues/%s/%s", queue, batched ? "claims" : "claim");
    return post_open(&srv, path,
                     batched ? "{\"worker\":\"gone\",\"max\":2,\"wait_seconds\":30}"
                             : "{\"worker\":\"gone\",\"wait_seconds\":30}",
                     chunked);
}

/* Reads one whole reply (head and Content-Length body) into buf; its
 * status, or -1. */
static int read_reply(int fd, char *buf, size_t cap) {
    size_t len = 0;
    for (;;) {
        ssize_t k = recv(fd, buf + len, cap - 1 - len, 0);
        if (k <= 0) return -1;
        len += (size_t)k;
        buf[len] = '\0';
        char *end = strstr(buf, "\r\n\r\n");
        if (!end) continue;
        const char *cl = strcasestr(buf, "Content-Length:");
        size_t body = cl && cl < end ? (size_t)atol(cl + 15) : 0;
        if (len >= (size_t)(end + 4 - buf) + body) break;
    }
    return atoi(buf + 9);
}

/* The number of parked claims, from /metrics. */
static long parked_claims(void) {
    struct th_resp *r = th_http(&srv, "GET", "/metrics", NULL);
    const char *p = r->body ? strstr(r->body, "\ntaskmill_parked_claims ") : NULL;
    return p ? atol(p + strlen("\ntaskmill_parked_claims ")) : -1;
}

/* The task's phase, attempt, retries and lease worker now. */
static bool task_state(struct th_server *s, const char *id, char phase[16], long *attempt,
                       long *retries, char worker[32]) {
    char path[128];
    snprintf(path, sizeof path, "/v1/tasks/%s", id);
    struct th_resp *r = th_http(s, "GET", path, NULL);
    if (r->status != 200) return false;
    snprintf(phase, 16, "%s", th_str(r->json, "phase") ? th_str(r->json, "phase") : "");
    *attempt = th_int(r->json, "attempt");
    *retries = th_int(r->json, "retries");
    const char *w = th_str(r->json, "lease.worker");
    snprintf(worker, 32, "%s", w ? w : "");
    return true;
}

/* Whether the task shows its give-back: the gone worker's attempt ended
 * "released" (as a release, a task.pending event of cause release), and
 * the task carries the message saying why. */
static bool has_give_back(struct th_server *s, const char *id) {
    char path[160];
    snprintf(path, sizeof path, "/v1/tasks/%s/attempts", id);
    struct th_resp *r = th_http(s, "GET", path, NULL);
    const char *w = th_str(r->json, "attempts.0.worker");
    const char *o = th_str(r->json, "attempts.0.outcome");
    if (!w || strcmp(w, "gone") != 0 || !o || strcmp(o, "released") != 0) return false;
    snprintf(path, sizeof path, "/v1/tasks/%s", id);
    r = th_http(s, "GET", path, NULL);
    json_t *m = th_get(r->json, "messages");
    size_t i;
    json_t *v;
    json_array_foreach(m, i, v) {
        const char *t = json_string_value(json_object_get(v, "text"));
        if (t && strstr(t, "the claim's")) return true;
    }
    return false;
}

/* A live worker's claims on queue, without waiting, until one gets a
 * task or 20 s pass (a deadline, not a speed): its status, and the id it
 * got (or ""). */
static long live_claim(struct th_server *s, const char *queue, char id[33]) {
    char tok[33];
    long st = 0;
    for (int i = 0; i < 400; i++) {
        id[0] = '\0';
        st = th_claim(s, queue, "{\"worker\":\"live\"}", id, tok);
        if (st != 204) break;
        th_sleep_ms(50);
    }
    return st;
}

/* Closes first, then a task comes at once (before the watch's next look,
 * most rounds): the parked claim of the gone client must not keep it. */
static void gone_then_submit(bool batched, bool chunked) {
    char queue[32];
    snprintf(queue, sizeof queue, "gq_%d%d", batched, chunked);
    WAIT_UNTIL(parked_claims() == 0, 20000, "no claim parked");
    int fd = gone_claim_open(queue, batched, chunked);
    CHECK(fd >= 0);
    WAIT_UNTIL(parked_claims() == 1, 20000, "the claim parked");
    close(fd);
    char extra[64];
    snprintf(extra, sizeof extra, "\"queue\":\"%s\"", queue);
    char *sid = th_submit(&srv, "t", extra), id[33];
    CHECK(sid);
    snprintf(id, sizeof id, "%s", sid);
    free(sid);
    char got[33];
    long st = live_claim(&srv, queue, got);
    char phase[16], worker[32];
    long attempt = 0, retries = 0;
    CHECK(task_state(&srv, id, phase, &attempt, &retries, worker));
    if (st != 200)
        fprintf(stderr, "task %s: %s under '%s', attempt %ld\n", id, phase, worker, attempt);
    CHECK_INT(st, 200);
    CHECK_STR(got, id);
    CHECK_STR(worker, "live");
    CHECK_INT(retries, 0);
    /* Given out to the gone client first (attempt 2), then only with its give-back. */
    if (attempt > 1) CHECK(has_give_back(&srv, id));
}

static void test_one_gone_then_submit(void) {
    gone_then_submit(false, false);
}
static void test_one_gone_then_submit_mhd(void) {
    gone_then_submit(false, true);
}
static void test_many_gone_then_submit(void) {
    gone_then_submit(true, false);
}
static void test_many_gone_then_submit_mhd(void) {
    gone_then_submit(true, true);
}

/* The race: a submit is sent and the claim's client closes its end at
 * once, round after round, so that the claim is served before, while and
 * after the close. The client half-closes (the server reads that as gone,
 * docs/api.md 7.7) and then reads what comes, so each round has an
 * answer: with no 200, the task must end with the live worker (given
 * back, or never given out), never running under the gone one; a 200
 * that reached the client delivered the task (kept, or given back when
 * the server saw the close first: either is right). */
static void race(bool batched) {
    char queue[32], extra[64];
    snprintf(queue, sizeof queue, "race_%d", batched);
    snprintf(extra, sizeof extra, "{\"type\":\"t\",\"queue\":\"%s\"}", queue);
    int delivered = 0, back = 0, refused = 0;
    for (int round = 0; round < 25; round++) {
        /* The last round's claim settled (the watch looks every 500 ms). */
        WAIT_UNTIL(parked_claims() == 0, 20000, "no claim parked");
        int fd = gone_claim_open(queue, batched, false);
        CHECK(fd >= 0);
        WAIT_UNTIL(parked_claims() == 1, 20000, "the claim parked");
        int sub = post_open(&srv, "/v1/tasks", extra, false);
        CHECK(sub >= 0);
        if (round % 3) th_sleep_ms(round % 3); /* a little later, some rounds */
        shutdown(fd, SHUT_WR);
        char buf[8192];
        int st = read_reply(sub, buf, sizeof buf);
        close(sub);
        CHECK_INT(st, 201);
        const char *p = strstr(buf, "\"id\":\"");
        CHECK(p);
        char id[33];
        memcpy(id, p + 6, 32);
        id[32] = '\0';
        struct timeval tv = {5, 0};
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        int cst = read_reply(fd, buf, sizeof buf);
        close(fd);
        char phase[16], worker[32];
        long attempt = 0, retries = 0;
        if (cst == 200) {
            /* Delivered: kept by the gone worker, or given back (maybe not
             * yet). As its worker, release it (409 once given back), so
             * the live worker takes it and the queue is empty again. */
            delivered++;
            const char *t = strstr(buf, "\"lease_token\":\"");
            CHECK(t);
            char path[128], body[96];
            snprintf(path, sizeof path, "/v1/tasks/%s/release", id);
            snprintf(body, sizeof body, "{\"lease_token\":\"%.32s\"}", t + 15);
            long rst = th_http(&srv, "POST", path, "%s", body)->status;
            CHECK(rst == 200 || rst == 409);
            char got[33];
            CHECK_INT(live_claim(&srv, queue, got), 200);
            CHECK_STR(got, id);
            CHECK(task_state(&srv, id, phase, &attempt, &retries, worker));
            CHECK_INT(retries, 0);
            continue;
        }
        CHECK_INT(cst, 503); /* answered: its client had gone */
        char got[33];
        long lst = live_claim(&srv, queue, got);
        CHECK(task_state(&srv, id, phase, &attempt, &retries, worker));
        if (lst != 200)
            fprintf(stderr, "round %d: task %s %s under '%s', attempt %ld\n", round, id, phase,
                    worker, attempt);
        CHECK_INT(lst, 200);
        CHECK_STR(got, id);
        CHECK_INT(retries, 0);
        if (attempt > 1) {
            CHECK(has_give_back(&srv, id));
            back++;
        } else {
            refused++;
        }
    }
    printf("race: %d not given out, %d given back, %d delivered (200 read)\n", refused, back,
           delivered);
}

static void test_one_race(void) {
    race(false);
}
static void test_many_race(void) {
    race(true);
}

/* A claim, one-task or batched (no wait, a task ready), whose client half-closes as
 * it sends it, on the fast path and through libmicrohttpd: the claim
 * commits, then its handler finds the client gone and answers 503, and
 * the task goes back, rather than going out in a 200 to a client that has
 * gone. (A client must not half-close while it waits: api.md 7.7.) */
static void gone_before_reply(bool batched) {
    for (int chunked = 0; chunked < 2; chunked++) {
        char queue[32], extra[64], path[64];
        snprintf(queue, sizeof queue, "gb_%d_%d", batched, chunked);
        snprintf(extra, sizeof extra, "\"queue\":\"%s\"", queue);
        snprintf(path, sizeof path, "/v1/queues/%s/%s", queue, batched ? "claims" : "claim");
        char *sid = th_submit(&srv, "t", extra), id[33];
        CHECK(sid);
        snprintf(id, sizeof id, "%s", sid);
        free(sid);
        int fd = post_open(&srv, path,
                           batched ? "{\"worker\":\"gone\",\"max\":2}" : "{\"worker\":\"gone\"}",
                           chunked);
        CHECK(fd >= 0);
        shutdown(fd, SHUT_WR);
        struct timeval tv = {10, 0};
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        char buf[8192];
        int st = read_reply(fd, buf, sizeof buf);
        close(fd);
        char got[33], phase[16], worker[32];
        long attempt = 0, retries = 0;
        long lst = live_claim(&srv, queue, got);
        CHECK(task_state(&srv, id, phase, &attempt, &retries, worker));
        if (st != 503 || lst != 200)
            fprintf(stderr, "%s: %d to the gone client; task %s %s under '%s', attempt %ld\n",
                    chunked ? "libmicrohttpd" : "fast path", st, id, phase, worker, attempt);
        CHECK_INT(st, 503);
        CHECK_INT(lst, 200);
        CHECK_STR(got, id);
        CHECK_INT(retries, 0);
        CHECK_INT(attempt, 2);
        CHECK(has_give_back(&srv, id));
    }
}

static void test_one_gone_before_reply(void) {
    gone_before_reply(false);
}

/* The same with a batched claim: all it took went back, so 503 too. */
static void test_many_gone_before_reply(void) {
    gone_before_reply(true);
}

/* A client that reads its reply keeps its task, closing after or not. */
static void test_read_reply_keeps_task(void) {
    for (int batched = 0; batched < 2; batched++) {
        char queue[32], extra[64];
        snprintf(queue, sizeof queue, "kept_%d", batched);
        WAIT_UNTIL(parked_claims() == 0, 20000, "no claim parked");
        int fd = gone_claim_open(queue, batched, false);
        CHECK(fd >= 0);
        WAIT_UNTIL(parked_claims() == 1, 20000, "the claim parked");
        snprintf(extra, sizeof extra, "\"queue\":\"%s\"", queue);
        char *sid = th_submit(&srv, "t", extra), id[33];
        CHECK(sid);
        snprintf(id, sizeof id, "%s", sid);
        free(sid);
        char buf[16384];
        CHECK_INT(read_reply(fd, buf, sizeof buf), 200);
        close(fd);
        const char *p = strstr(buf, "\"lease_token\":\"");
        CHECK(p);
        char tok[33];
        memcpy(tok, p + 15, 32);
        tok[32] = '\0';
        th_sleep_ms(1200); /* two looks of the watch: nothing must come back */
        char phase[16], worker[32];
        long attempt = 0, retries = 0;
        CHECK(task_state(&srv, id, phase, &attempt, &retries, worker));
        CHECK_STR(phase, "running");
        CHECK_STR(worker, "gone");
        CHECK_INT(attempt, 1);
        char path[128];
        snprintf(path, sizeof path, "/v1/tasks/%s/heartbeat", id);
        CHECK_INT(th_http(&srv, "POST", path, "{\"lease_token\":\"%s\"}", tok)->status, 200);
    }
}

/* Closes fd with a reset (SO_LINGER 0): the server's next send to it fails. */
static void reset_close(int fd) {
    struct linger l = {.l_onoff = 1, .l_linger = 0};
    setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof l);
    close(fd);
}

/* Whether every thread of process pid is stopped. */
static bool all_threads_stopped(pid_t pid) {
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/task", (int)pid);
    DIR *d = opendir(path);
    if (!d) return false;
    bool all = true;
    int seen = 0;
    for (struct dirent *e; all && (e = readdir(d));) {
        if (e->d_name[0] == '.') continue;
        char stat[128], st[512];
        snprintf(stat, sizeof stat, "%s/%.20s/stat", path, e->d_name);
        FILE *f = fopen(stat, "r");
        if (!f) continue; /* a thread that ended */
        size_t n = fread(st, 1, sizeof st - 1, f);
        fclose(f);
        st[n] = '\0';
        const char *p = strrchr(st, ')'); /* the state follows the name */
        all = p && p[1] == ' ' && (p[2] == 'T' || p[2] == 't');
        seen++;
    }
    closedir(d);
    return all && seen > 0;
}

/* Stops the server (SIGSTOP) and waits until each of its threads is
 * stopped, and a little more for what its last send put on loopback to
 * land. False, the server running, when it does not stop within 5 s. */
static bool server_stop(struct th_server *s) {
    if (kill(s->pid, SIGSTOP) != 0) return false;
    for (long long end = th_now_ms() + 5000; th_now_ms() < end; th_sleep_ms(1)) {
        if (all_threads_stopped(s->pid)) {
            th_sleep_ms(2);
            return true;
        }
    }
    kill(s->pid, SIGCONT);
    return false;
}

/* libmicrohttpd's path (--no-fast-path, as under TLS): a claim (a task
 * ready, no wait) whose client resets its connection at once or a few ms
 * later, round after round: reset before the server read it, the claim
 * takes nothing; reset while it is in the store, it is served and its
 * reply cannot be sent, and the task must go back at once, not when its
 * lease runs out. A round whose reply came before the reset is a
 * delivery (kept, as the docs say), and its task is released. */
static void test_reset_no_fast_path(void) {
    struct th_server m;
    CHECK(th_server_start(&m, "--no-fast-path", NULL) == 0);
    int back = 0, delivered = 0, refused = 0;
    for (int round = 0; round < 40; round++) {
        char *sid = th_submit(&m, "t", "\"queue\":\"rst\""), id[33];
        CHECK(sid);
        snprintf(id, sizeof id, "%s", sid);
        free(sid);
        int fd = post_open(&m, "/v1/queues/rst/claim", "{\"worker\":\"gone\"}", false);
        CHECK(fd >= 0);
        if (round % 5) th_sleep_ms(round % 5); /* the claim in the store, some rounds */
        /* Whether the reply came and the reset must be one step as the
         * server sees it: a reply sent between a look and the reset is a
         * delivery the test would take for a task not given back. So the
         * server is stopped while the client looks and resets. */
        CHECK(server_stop(&m));
        int queued = 0;
        ioctl(fd, FIONREAD, &queued);
        if (!queued) reset_close(fd);
        kill(m.pid, SIGCONT);
        if (queued) {
            char buf[16384];
            CHECK_INT(read_reply(fd, buf, sizeof buf), 200);
            const char *t = strstr(buf, "\"lease_token\":\"");
            CHECK(t);
            char path[128];
            snprintf(path, sizeof path, "/v1/tasks/%s/release", id);
            CHECK_INT(th_http(&m, "POST", path, "{\"lease_token\":\"%.32s\"}", t + 15)->status,
                      200);
            close(fd);
            delivered++;
        }
        /* The live worker gets the task: given back, or never given out. */
        char got[33], phase[16], worker[32];
        long attempt = 0, retries = 0;
        long st = live_claim(&m, "rst", got);
        CHECK(task_state(&m, id, phase, &attempt, &retries, worker));
        if (st != 200)
            fprintf(stderr, "round %d: task %s %s under '%s', attempt %ld\n", round, id, phase,
                    worker, attempt);
        CHECK_INT(st, 200);
        CHECK_STR(got, id);
        CHECK_INT(retries, 0);
        if (queued) continue;
        if (attempt > 1) {
            CHECK(has_give_back(&m, id));
            back++;
        } else {
            refused++;
        }
    }
    printf("reset: %d given back, %d not given out, %d delivered before the reset\n", back, refused,
           delivered);
    CHECK(back + refused > 0); /* some round was a reset, or nothing was tested */
    th_server_free(&m);
}

/* The most a TCP socket's send buffer grows to here (tcp_wmem's third
 * field), or 4 MiB when it cannot be read. */
static long tcp_wmem_max(void) {
    long lo = 0, def = 0, max = 0;
    FILE *f = fopen("/proc/sys/net/ipv4/tcp_wmem", "r");
    if (f && fscanf(f, "%ld %ld %ld", &lo, &def, &max) != 3) max = 0;
    if (f) fclose(f);
    return max > 0 ? max : 4L << 20;
}

/* A batched claim whose reply the socket does not take whole (a hundred
 * tasks, together twice the largest send buffer; a client with a small
 * receive buffer that reads a little of it) and whose client resets once
 * the server has sent what its socket took: the rest of the reply cannot
 * be sent, and every task goes back at once; not held by a worker that
 * is no more until the leases run out. */
static void test_many_reset_mid_reply(void) {
    enum { N = 100 };
    long size = 2 * tcp_wmem_max() / N;
    if (size < 60000) size = 60000;
    if (size > 900000) size = 900000; /* under --max-body-bytes' 1 MiB */
    char *blob = malloc((size_t)size + 1);
    memset(blob, 'b', (size_t)size);
    blob[size] = '\0';
    char *extra = NULL;
    CHECK(asprintf(&extra, "\"queue\":\"midq\",\"params\":{\"b\":\"%s\"}", blob) > 0);
    free(blob);
    char ids[N][33];
    int made = 0;
    for (; made < N; made++) {
        char *sid = th_submit(&srv, "t", extra);
        if (!sid) break;
        snprintf(ids[made], sizeof ids[made], "%s", sid);
        free(sid);
    }
    free(extra);
    CHECK_INT(made, N);
    int fd = th_tcp_open_rcvbuf(&srv, 4096);
    CHECK(fd >= 0);
    const char *body = "{\"worker\":\"gone\",\"max\":100}";
    char req[512];
    int n = snprintf(req, sizeof req,
                     "POST /v1/queues/midq/claims HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                     "Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n%s",
                     strlen(body), body);
    CHECK(send(fd, req, (size_t)n, MSG_NOSIGNAL) == n);
    /* The head and a little of the body, then a reset with most unread. */
    char buf[4096];
    ssize_t got = 0;
    struct timeval tv = {10, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    while (got < 1000) {
        ssize_t k = recv(fd, buf + got, sizeof buf - 1 - (size_t)got, 0);
        if (k <= 0) break;
        got += k;
    }
    buf[got] = '\0';
    CHECK(strncmp(buf, "HTTP/1.1 200", 12) == 0);
    th_sleep_ms(300); /* the server past its first send, the rest waiting */
    reset_close(fd);
    /* Every task pending again, no retry counted, within 25 s (a deadline,
     * not a speed: the leases are the default's 30 s and more, and a task
     * back by its lease running out would count a retry). */
    int back = 0;
    for (long long end = th_now_ms() + 25000; th_now_ms() < end; th_sleep_ms(100)) {
        back = 0;
        for (int i = 0; i < N; i++) {
            char phase[16], worker[32];
            long attempt = 0, retries = 0;
            if (task_state(&srv, ids[i], phase, &attempt, &retries, worker) &&
                strcmp(phase, "pending") == 0 && retries == 0)
                back++;
        }
        if (back == N) break;
    }
    CHECK_INT(back, N);
    CHECK(has_give_back(&srv, ids[0]));
    CHECK(has_give_back(&srv, ids[N - 1]));
}

static const struct th_test tests[] = {
    {"a gone client's claim leaves a task that follows to the next worker",
     test_one_gone_then_submit},
    {"the same through libmicrohttpd", test_one_gone_then_submit_mhd},
    {"a gone client's batched claim leaves it too", test_many_gone_then_submit},
    {"the batched claim through libmicrohttpd", test_many_gone_then_submit_mhd},
    {"a claim served as its client closes: every task ends with the live worker", test_one_race},
    {"the same race with batched claims", test_many_race},
    {"a one-task claim whose client went before its reply is 503, its task back",
     test_one_gone_before_reply},
    {"a batched claim whose client went before its reply is 503, its tasks back",
     test_many_gone_before_reply},
    {"a claim whose client reads its reply keeps its task", test_read_reply_keeps_task},
    {"--no-fast-path: a claim whose client resets gives its task back", test_reset_no_fast_path},
    {"a batched claim whose client resets mid-reply gives every task back",
     test_many_reset_mid_reply},
    {NULL, NULL},
};

int main(int argc, char **argv) {
    return th_main_server(tests, argc, argv, &srv, NULL);
}
