/*
 * Fan-out: 1,000 SSE subscribers on one server all receive a burst of
 * events, each event exactly once. The subscribers are plain sockets read
 * from one epoll loop in the test, so the machine (2 cores) spends its
 * time in the server, not in a thousand test threads.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "harness.h"
#include "sse_client.h"

#define SUBSCRIBERS 1000
#define BURST       100

struct sub {
    int fd;
    bool started;  /* the stream's first comment arrived */
    bool ended;    /* the server closed it, or a read failed */
    size_t bytes;  /* how many arrived */
    char head[96]; /* the first bytes, for a report when it never started */
    int events;
    char tail[32]; /* the end of the last read, for a marker split across reads */
    size_t ntail;
};

/* Counts "event: task.created\n" in what arrived, including across reads. */
static void sub_feed(struct sub *s, const char *p, size_t n) {
    static const char mark[] = "event: task.created\n";
    const size_t mlen = sizeof mark - 1;
    for (size_t i = 0; i < n && s->bytes + i < sizeof s->head - 1; i++)
        s->head[s->bytes + i] = p[i] == '\r' || p[i] == '\n' ? '|' : p[i];
    s->bytes += n;
    char *joined = malloc(s->ntail + n + 1);
    memcpy(joined, s->tail, s->ntail);
    memcpy(joined + s->ntail, p, n);
    size_t len = s->ntail + n;
    joined[len] = '\0';
    if (!s->started && strstr(joined, ": taskmill events")) s->started = true;
    for (char *q = joined; (q = strstr(q, mark)); q += mlen)
        s->events++;
    /* Keep a tail shorter than the marker, so no marker is counted twice. */
    s->ntail = len < mlen - 1 ? len : mlen - 1;
    memcpy(s->tail, joined + len - s->ntail, s->ntail);
    free(joined);
}

static int sub_connect(const char *url) {
    const char *hp = strstr(url, "://") + 3;
    char host[64];
    int port = 0;
    sscanf(hp, "%63[^:]:%d", host, &port);
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    inet_pton(AF_INET, host, &sa.sin_addr);
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa)) {
        close(fd);
        return -1;
    }
    const char req[] = "GET /v1/events?kind=created HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n";
    if (write(fd, req, sizeof req - 1) != (ssize_t)(sizeof req - 1)) {
        close(fd);
        return -1;
    }
    return fd;
}

/* Reads whatever is ready for up to timeout_ms; returns how many subs satisfy pred. */
static int pump(int ep, struct sub *subs, int timeout_ms, bool (*pred)(const struct sub *),
                int want) {
    struct epoll_event evs[256];
    char buf[65536];
    long long deadline = sse_now_ms() + timeout_ms;
    int ok = 0;
    for (;;) {
        ok = 0;
        for (int i = 0; i < SUBSCRIBERS; i++)
            ok += pred(&subs[i]);
        if (ok >= want) return ok;
        long long left = deadline - sse_now_ms();
        if (left <= 0) return ok;
        int n = epoll_wait(ep, evs, 256, (int)(left < 200 ? left : 200));
        for (int i = 0; i < n; i++) {
            struct sub *s = evs[i].data.ptr;
            ssize_t r = read(s->fd, buf, sizeof buf);
            if (r > 0) {
                sub_feed(s, buf, (size_t)r);
            } else {
                s->ended = true;
                epoll_ctl(ep, EPOLL_CTL_DEL, s->fd, NULL);
            }
        }
    }
}

static bool sub_started(const struct sub *s) {
    return s->started;
}

/* What the streams that never started got, and what the server counts:
 * enough to tell a connection never served from a stream never written. */
static void report_unstarted(struct th_server *srv, const struct sub *subs, int opened) {
    int silent = 0, ended = 0, other = 0;
    const struct sub *eg = NULL;
    for (int i = 0; i < opened; i++) {
        if (subs[i].started) continue;
        if (subs[i].ended) ended++;
        if (subs[i].bytes == 0)
            silent++;
        else if (!eg)
            eg = &subs[i], other++;
        else
            other++;
    }
    printf("    unstarted: %d with no byte, %d with bytes, %d closed by the server\n", silent,
           other, ended);
    if (eg) printf("    the first bytes of one: %s\n", eg->head);
    struct th_resp *m = th_http(srv, "GET", "/metrics", NULL);
    for (const char *l = m->body; l && *l;) {
        const char *e = strchr(l, '\n');
        size_t len = e ? (size_t)(e - l) : strlen(l);
        if (*l != '#' && (!strncmp(l, "taskmill_sse_", 13) || !strncmp(l, "taskmill_http", 13) ||
                          !strncmp(l, "taskmill_conn", 13)))
            printf("    %.*s\n", (int)len, l);
        l = e ? e + 1 : NULL;
    }
    /* The server's side of each connection: state, and bytes unread or unsent. */
    const char *port = strrchr(srv->url, ':');
    char cmd[300];
    snprintf(cmd, sizeof cmd,
             "ss -tnH state all '( sport = :%s )' | awk '{print \"    \" $1, ($2 > 0 ? "
             "\"unread\" : \"-\"), ($3 > 0 ? \"unsent\" : \"-\")}' | sort | uniq -c",
             port ? port + 1 : "0");
    fflush(stdout);
    if (system(cmd)) {
    }
}

static bool sub_done(const struct sub *s) {
    return s->events >= BURST;
}

static void test_1000_subscribers_get_a_burst(void) {
    struct th_server srv;
    /* Every subscriber comes from 127.0.0.1: lift the per-address cap (1024). */
    CHECK(th_server_start(&srv, "--max-connections-per-address", "0", NULL) == 0);
    struct sub *subs = calloc(SUBSCRIBERS, sizeof *subs);
    int ep = epoll_create1(EPOLL_CLOEXEC);
    int opened = 0;
    long long c0 = sse_now_ms();
    for (int i = 0; i < SUBSCRIBERS; i++) {
        subs[i].fd = sub_connect(srv.url);
        if (subs[i].fd < 0) break;
        struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &subs[i]};
        epoll_ctl(ep, EPOLL_CTL_ADD, subs[i].fd, &ev);
        opened++;
    }
    long long c1 = sse_now_ms();
    int started = pump(ep, subs, 60000, sub_started, SUBSCRIBERS);
    printf("    %d connected in %lld ms, %d streams started %lld ms later\n", opened, c1 - c0,
           started, sse_now_ms() - c1);
    bool all_open = opened == SUBSCRIBERS && started == SUBSCRIBERS;
    if (!all_open) report_unstarted(&srv, subs, opened);
    int done = 0;
    long long t0 = 0, t1 = 0;
    if (all_open) {
        struct buf_s {
            char *p;
            size_t n;
        } body = {malloc(64 * BURST + 32), 0};
        body.n = (size_t)sprintf(body.p, "{\"tasks\":[");
        for (int i = 0; i < BURST; i++)
            body.n += (size_t)sprintf(body.p + body.n, "%s{\"type\":\"burst\"}", i ? "," : "");
        body.n += (size_t)sprintf(body.p + body.n, "]}");
        t0 = sse_now_ms();
        struct th_resp *r = th_http(&srv, "POST", "/v1/tasks/batch", "%s", body.p);
        free(body.p);
        if (r->status != 201 && r->status != 200)
            th_fail(__FILE__, __LINE__, "batch submit: %ld %s", r->status, r->body);
        done = pump(ep, subs, 120000, sub_done, SUBSCRIBERS);
        t1 = sse_now_ms();
    }
    int over = 0;
    for (int i = 0; i < opened; i++) {
        over += subs[i].events > BURST;
        close(subs[i].fd);
    }
    close(ep);
    free(subs);
    CHECK_INT(opened, SUBSCRIBERS);
    CHECK_INT(started, SUBSCRIBERS);
    CHECK_INT(done, SUBSCRIBERS);
    CHECK_INT(over, 0);
    printf("    %d subscribers x %d events in %lld ms\n", SUBSCRIBERS, BURST, t1 - t0);
    struct th_resp *m = th_http(&srv, "GET", "/metrics", NULL);
    CHECK(strstr(m->body, "taskmill_sse_streams") != NULL);
    th_server_free(&srv);
}

static const struct th_test tests[] = {
    {"1,000 subscribers all receive a burst, each event once", test_1000_subscribers_get_a_burst},
    {NULL, NULL},
};

int main(int argc, char **argv) {
    return th_main(tests, argc, argv);
}
