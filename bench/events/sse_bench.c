/*
 * sse_bench: how fast taskmill fans events out to SSE subscribers, and how
 * long an event takes to reach them.
 *
 *   sse_bench URL SUBSCRIBERS EVENTS WRITERS
 *
 * Opens SUBSCRIBERS streams on GET /v1/events?kind=progress (plain sockets,
 * HTTP/1.0, one epoll loop), then:
 *  1. throughput: WRITERS threads send EVENTS heartbeats with progress as
 *     fast as the server answers; reports events/s written and delivered
 *     (events x subscribers / time until the last subscriber has them all);
 *  2. delay: one writer sends 200 heartbeats one after another, 5 ms apart;
 *     for each subscriber and heartbeat, the delay from the heartbeat's HTTP
 *     reply to its event arriving (negative when the event came first),
 *     reported as p50 and p99.
 * Threading: the main thread reads the streams; writers are threads with
 * their own sockets. Errors print a line and exit 1. POSIX only, no
 * third-party code, like bench/loadgen.c.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define LAT_BEATS 200
static const char MARK[] = "event: task.progress\n";
#define MLEN (sizeof MARK - 1)

static char host[64];
static int port;

struct sub {
    int fd;
    bool started;
    long count;
    char tail[MLEN];
    size_t ntail;
    double *lat_at; /* arrival time of the k-th event in the delay phase */
    long lat_base;  /* count when the delay phase began */
};

static double now_us(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

static void die(const char *what) {
    fprintf(stderr, "sse_bench: %s: %s\n", what, strerror(errno));
    exit(1);
}

static int dial(void) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    inet_pton(AF_INET, host, &sa.sin_addr);
    if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof sa)) die("connect");
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    return fd;
}

/* One HTTP/1.1 request on a kept-alive socket; returns the status, body into out. */
static int http(int fd, const char *method, const char *path, const char *body, char *out,
                size_t outn) {
    char req[2048];
    int n = snprintf(req, sizeof req,
                     "%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                     "Content-Length: %zu\r\n\r\n%s",
                     method, path, strlen(body), body);
    if (write(fd, req, (size_t)n) != n) die("write");
    size_t len = 0;
    for (;;) {
        ssize_t r = read(fd, out + len, outn - 1 - len);
        if (r <= 0) die("read");
        len += (size_t)r;
        out[len] = '\0';
        char *end = strstr(out, "\r\n\r\n");
        if (!end) continue;
        char *cl = strcasestr(out, "content-length:");
        size_t want = cl ? strtoul(cl + 15, NULL, 10) : 0;
        if ((size_t)(out + len - end - 4) >= want) {
            int status = len > 12 ? atoi(out + 9) : 0;
            memmove(out, end + 4, want);
            out[want] = '\0';
            return status;
        }
    }
}

/* Creates a task in queue `q` and claims it; fills id and lease token. */
static void task_take(int fd, const char *q, char id[33], char tok[33]) {
    char out[65536], body[256], path[128];
    snprintf(body, sizeof body, "{\"type\":\"bench\",\"queue\":\"%s\"}", q);
    http(fd, "POST", "/v1/tasks", body, out, sizeof out);
    snprintf(path, sizeof path, "/v1/queues/%s/claim", q);
    http(fd, "POST", path, "{\"worker\":\"bench\"}", out, sizeof out);
    char *p = strstr(out, "\"id\":\"");
    char *t = strstr(out, "\"lease_token\":\"");
    if (!p || !t) {
        fprintf(stderr, "sse_bench: claim failed: %.200s\n", out);
        exit(1);
    }
    memcpy(id, p + 6, 32);
    id[32] = '\0';
    memcpy(tok, t + 15, 32);
    tok[32] = '\0';
}

struct writer {
    int fd;
    char id[33], tok[33];
    long beats;
    double gap_us;    /* pause between beats (delay phase) */
    double *reply_at; /* when each reply arrived (delay phase) */
};

static void *writer_main(void *arg) {
    struct writer *w = arg;
    char out[65536], path[128], body[256];
    snprintf(path, sizeof path, "/v1/tasks/%s/heartbeat", w->id);
    for (long i = 1; i <= w->beats; i++) {
        snprintf(body, sizeof body, "{\"lease_token\":\"%s\",\"progress\":{\"processed\":%ld}}",
                 w->tok, i);
        int status = http(w->fd, "POST", path, body, out, sizeof out);
        if (status != 200) {
            fprintf(stderr, "sse_bench: heartbeat answered %d: %.200s\n", status, out);
            exit(1);
        }
        if (w->reply_at) w->reply_at[i - 1] = now_us();
        if (w->gap_us > 0) {
            struct timespec ts = {0, (long)(w->gap_us * 1000)};
            nanosleep(&ts, NULL);
        }
    }
    return NULL;
}

static void feed(struct sub *s, const char *p, size_t n, double t) {
    char joined[MLEN + 65536];
    memcpy(joined, s->tail, s->ntail);
    memcpy(joined + s->ntail, p, n);
    size_t len = s->ntail + n;
    joined[len] = '\0';
    if (!s->started && strstr(joined, ": taskmill events")) s->started = true;
    for (char *q = joined; (q = strstr(q, MARK)); q += MLEN) {
        s->count++;
        long k = s->count - s->lat_base - 1;
        if (s->lat_at && k >= 0 && k < LAT_BEATS) s->lat_at[k] = t;
    }
    s->ntail = len < MLEN - 1 ? len : MLEN - 1;
    memcpy(s->tail, joined + len - s->ntail, s->ntail);
}

/* Reads until every subscriber has `want` events (or started, want < 0). */
static void pump(int ep, struct sub *subs, int n, long want, double limit_s) {
    struct epoll_event evs[256];
    char buf[65536];
    double end = now_us() + limit_s * 1e6;
    for (;;) {
        int ok = 0;
        for (int i = 0; i < n; i++)
            ok += want < 0 ? subs[i].started : subs[i].count >= want;
        if (ok == n) return;
        if (now_us() > end) {
            fprintf(stderr, "sse_bench: timed out: %d of %d subscribers done\n", ok, n);
            exit(1);
        }
        int k = epoll_wait(ep, evs, 256, 100);
        double t = now_us();
        for (int i = 0; i < k; i++) {
            struct sub *s = evs[i].data.ptr;
            ssize_t r = read(s->fd, buf, sizeof buf);
            if (r > 0)
                feed(s, buf, (size_t)r, t);
            else {
                fprintf(stderr,
                        "sse_bench: a subscriber's stream ended after %ld events (cut off "
                        "as too slow? raise --events-buffer)\n",
                        s->count);
                exit(1);
            }
        }
    }
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv) {
    if (argc != 5 || sscanf(argv[1], "http://%63[^:]:%d", host, &port) != 2) {
        fprintf(stderr, "usage: sse_bench http://HOST:PORT SUBSCRIBERS EVENTS WRITERS\n");
        return 2;
    }
    int nsub = atoi(argv[2]), writers = atoi(argv[4]);
    long events = atol(argv[3]);
    struct sub *subs = calloc((size_t)nsub, sizeof *subs);
    int ep = epoll_create1(EPOLL_CLOEXEC);
    const char req[] = "GET /v1/events?kind=progress HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n";
    for (int i = 0; i < nsub; i++) {
        subs[i].fd = dial();
        if (write(subs[i].fd, req, sizeof req - 1) < 0) die("write");
        subs[i].lat_at = calloc(LAT_BEATS, sizeof(double));
        struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &subs[i]};
        epoll_ctl(ep, EPOLL_CTL_ADD, subs[i].fd, &ev);
    }
    pump(ep, subs, nsub, -1, 60);

    /* 1. Throughput. */
    struct writer *w = calloc((size_t)writers, sizeof *w);
    pthread_t *th = calloc((size_t)writers, sizeof *th);
    for (int i = 0; i < writers; i++) {
        w[i].fd = dial();
        char q[32];
        snprintf(q, sizeof q, "bench%d", i);
        task_take(w[i].fd, q, w[i].id, w[i].tok);
        w[i].beats = events / writers;
    }
    long total = (events / writers) * writers;
    double t0 = now_us();
    for (int i = 0; i < writers; i++)
        pthread_create(&th[i], NULL, writer_main, &w[i]);
    for (int i = 0; i < writers; i++)
        pthread_join(th[i], NULL);
    double t_written = now_us();
    pump(ep, subs, nsub, total, 300);
    double t1 = now_us();
    double secs = (t1 - t0) / 1e6;
    printf("fan-out: %d subscribers, %ld events by %d writers\n", nsub, total, writers);
    printf("  written   %.0f events/s (%.2f s)\n", (double)total / ((t_written - t0) / 1e6),
           (t_written - t0) / 1e6);
    printf(
        "  delivered %.0f events/s to all subscribers (%.0f event copies/s; last arrived "
        "after %.2f s)\n",
        (double)total / secs, (double)total * nsub / secs, secs);

    /* 2. Delay from a heartbeat's reply to its event at each subscriber. */
    for (int i = 0; i < nsub; i++)
        subs[i].lat_base = subs[i].count;
    struct writer lw = {.fd = w[0].fd, .beats = LAT_BEATS, .gap_us = 5000};
    memcpy(lw.id, w[0].id, sizeof lw.id);
    memcpy(lw.tok, w[0].tok, sizeof lw.tok);
    lw.reply_at = calloc(LAT_BEATS, sizeof(double));
    pthread_t lt;
    pthread_create(&lt, NULL, writer_main, &lw);
    pump(ep, subs, nsub, total + LAT_BEATS, 120);
    pthread_join(lt, NULL);
    size_t nd = (size_t)nsub * LAT_BEATS, k = 0;
    double *d = calloc(nd, sizeof *d);
    for (int i = 0; i < nsub; i++)
        for (int b = 0; b < LAT_BEATS; b++)
            d[k++] = (subs[i].lat_at[b] - lw.reply_at[b]) / 1000.0;
    qsort(d, nd, sizeof *d, cmp_double);
    printf("  reply->event delay over %zu deliveries: p50 %.2f ms, p99 %.2f ms, max %.2f ms\n", nd,
           d[nd / 2], d[nd * 99 / 100], d[nd - 1]);
    return 0;
}
