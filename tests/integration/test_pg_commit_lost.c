/*
 * A batch whose COMMIT reached PostgreSQL but whose answer never came back
 * (the connection broke in between: a restart, a failover, a network cut).
 * What must hold: the write is answered as what it became, a 2xx when
 * PostgreSQL committed it, never a 503 for a change that is stored.
 *
 * The cut is made by a proxy of our own on a Unix socket between the
 * server and the cluster: armed with a marker (a task type), it forwards
 * the first COMMIT sent after that marker, forwards the server's answers
 * up to the COMMIT's own CommandComplete, then closes both sides; so the
 * transaction commits and its answer is lost. Every other connection and
 * statement passes through untouched. Armed to lose every answer (lose_all),
 * it relays nothing back once that COMMIT is sent, and closes both sides
 * half a second later: the answers of what was sent with the COMMIT, or
 * just before it without waiting, are lost with COMMIT's.
 *
 * PostgreSQL only (TASKMILL_TEST_PG); skipped on SQLite.
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "harness.h"

#define PROXY_MAX 64

struct pair {
    int cfd, sfd;      /* the client (taskmill) and the server (PostgreSQL) sides; -1: closed */
    char acc[1 << 16]; /* client bytes since the last COMMIT seen */
    size_t nacc;
    bool doomed;            /* its COMMIT's answer is to be lost */
    long long doomed_at_ms; /* a deadline, should the answer never come */
};

struct proxy {
    int lfd;
    char dir[256];      /* holds our socket */
    char upstream[300]; /* the cluster's socket */
    char marker[64];
    bool lose_all;
    atomic_bool armed, fired, stop;
    struct pair pairs[PROXY_MAX];
    pthread_t th;
};

static int unix_connect(const char *path) {
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    snprintf(sa.sun_path, sizeof sa.sun_path, "%s", path);
    if (fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof sa) == 0) return fd;
    if (fd >= 0) close(fd);
    return -1;
}

static void pair_close(struct pair *p) {
    if (p->cfd >= 0) close(p->cfd);
    if (p->sfd >= 0) close(p->sfd);
    p->cfd = p->sfd = -1;
}

static bool write_all(int fd, const char *b, size_t n) {
    while (n) {
        ssize_t w = write(fd, b, n);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return false;
        b += w;
        n -= (size_t)w;
    }
    return true;
}

/* Client to server: forwarded; a COMMIT after the marker dooms the pair. */
static void from_client(struct proxy *x, struct pair *p, const char *b, size_t n) {
    if (!write_all(p->sfd, b, n)) {
        pair_close(p);
        return;
    }
    size_t keep = n < sizeof p->acc - p->nacc ? n : sizeof p->acc - p->nacc;
    memcpy(p->acc + p->nacc, b, keep);
    p->nacc += keep;
    if (!memmem(p->acc, p->nacc, "COMMIT", 6)) return;
    bool mine = memmem(p->acc, p->nacc, x->marker, strlen(x->marker)) != NULL;
    p->nacc = 0;
    if (mine && atomic_exchange(&x->armed, false)) {
        p->doomed = true;
        p->doomed_at_ms = th_now_ms() + (x->lose_all ? 500 : 5000);
    }
}

/* Server to client: forwarded, but a doomed pair stops before the
 * COMMIT's CommandComplete and is closed. */
static void from_server(struct proxy *x, struct pair *p, const char *b, size_t n) {
    static const char done[] =
        "C\0\0\0\x0b"
        "COMMIT";
    if (p->doomed && x->lose_all) return;
    const char *at = p->doomed ? memmem(b, n, done, sizeof done - 1) : NULL;
    size_t pass = at ? (size_t)(at - b) : n;
    if (pass && !write_all(p->cfd, b, pass)) {
        pair_close(p);
        return;
    }
    if (at) {
        pair_close(p);
        atomic_store(&x->fired, true);
    }
}

static void *proxy_main(void *arg) {
    struct proxy *x = arg;
    char buf[1 << 16];
    while (!atomic_load(&x->stop)) {
        struct pollfd pfd[1 + 2 * PROXY_MAX];
        int map[1 + 2 * PROXY_MAX];
        int n = 0;
        pfd[n] = (struct pollfd){.fd = x->lfd, .events = POLLIN};
        map[n++] = -1;
        for (int i = 0; i < PROXY_MAX; i++) {
            struct pair *p = &x->pairs[i];
            if (p->cfd < 0) continue;
            if (p->doomed && th_now_ms() > p->doomed_at_ms) {
                if (x->lose_all) atomic_store(&x->fired, true);
                pair_close(p);
                continue;
            }
            pfd[n] = (struct pollfd){.fd = p->cfd, .events = POLLIN};
            map[n++] = 2 * i;
            pfd[n] = (struct pollfd){.fd = p->sfd, .events = POLLIN};
            map[n++] = 2 * i + 1;
        }
        if (poll(pfd, (nfds_t)n, 100) <= 0) continue;
        for (int k = 0; k < n; k++) {
            if (!pfd[k].revents) continue;
            if (map[k] < 0) {
                int c = accept4(x->lfd, NULL, NULL, SOCK_CLOEXEC);
                if (c < 0) continue;
                int s = unix_connect(x->upstream);
                int slot = -1;
                for (int i = 0; i < PROXY_MAX && slot < 0; i++)
                    if (x->pairs[i].cfd < 0) slot = i;
                if (s < 0 || slot < 0) {
                    close(c);
                    if (s >= 0) close(s);
                    continue;
                }
                x->pairs[slot] = (struct pair){.cfd = c, .sfd = s};
                continue;
            }
            struct pair *p = &x->pairs[map[k] / 2];
            bool client = map[k] % 2 == 0;
            int fd = client ? p->cfd : p->sfd;
            if (fd < 0 || fd != pfd[k].fd) continue; /* closed in this round */
            ssize_t r = read(fd, buf, sizeof buf);
            if (r <= 0) {
                pair_close(p);
                continue;
            }
            if (client)
                from_client(x, p, buf, (size_t)r);
            else
                from_server(x, p, buf, (size_t)r);
        }
    }
    for (int i = 0; i < PROXY_MAX; i++)
        pair_close(&x->pairs[i]);
    return NULL;
}

/* The value of `name=` in a URL's query, into out. */
static bool url_param(const char *url, const char *name, char *out, size_t n) {
    char key[32];
    snprintf(key, sizeof key, "%s=", name);
    const char *q = strchr(url, '?');
    for (const char *p = q; p && *p; p = strchr(p + 1, '&')) {
        if (strncmp(p + 1, key, strlen(key)) != 0) continue;
        const char *v = p + 1 + strlen(key);
        snprintf(out, n, "%.*s", (int)strcspn(v, "&"), v);
        return true;
    }
    return false;
}

/* Starts a proxy in front of the cluster of `store` (a postgres:// URL on
 * a Unix socket: host=DIR&port=N) and writes the URL that goes through it. */
static int proxy_start(struct proxy *x, const char *store, char *url, size_t url_n) {
    memset(x, 0, sizeof *x);
    x->lfd = -1;
    for (int i = 0; i < PROXY_MAX; i++)
        x->pairs[i].cfd = x->pairs[i].sfd = -1;
    char host[200], port[16];
    if (!url_param(store, "host", host, sizeof host) ||
        !url_param(store, "port", port, sizeof port))
        return -1;
    snprintf(x->upstream, sizeof x->upstream, "%s/.s.PGSQL.%s", host, port);
    snprintf(x->dir, sizeof x->dir, "/tmp/tm-proxy-XXXXXX");
    if (!mkdtemp(x->dir)) return -1;
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    snprintf(sa.sun_path, sizeof sa.sun_path, "%s/.s.PGSQL.%s", x->dir, port);
    x->lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (x->lfd < 0 || bind(x->lfd, (struct sockaddr *)&sa, sizeof sa) || listen(x->lfd, 64))
        return -1;
    /* The same URL with the proxy's directory as its host. */
    const char *h = strstr(store, "host=");
    snprintf(url, url_n, "%.*shost=%s%s", (int)(h - store), store, x->dir,
             h + 5 + strcspn(h + 5, "&"));
    return pthread_create(&x->th, NULL, proxy_main, x) ? -1 : 0;
}

static void proxy_stop(struct proxy *x) {
    atomic_store(&x->stop, true);
    pthread_join(x->th, NULL);
    close(x->lfd);
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", x->dir);
    if (system(cmd)) {
    }
}

static void commit_answer_lost(bool lose_all) {
    if (!th_backend_is_pg()) {
        th_skip("a lost COMMIT answer needs PostgreSQL (TASKMILL_TEST_PG)");
        return;
    }
    struct th_server srv;
    CHECK_INT(th_server_start(&srv, NULL), 0); /* makes and migrates the database */
    th_server_stop(&srv, false);
    struct proxy x;
    char url[512];
    if (proxy_start(&x, srv.store, url, sizeof url)) {
        th_server_free(&srv);
        CHECK(!"the proxy started");
    }
    snprintf(srv.store, sizeof srv.store, "%s", url);
    bool started = th_server_restart(&srv) == 0;
    snprintf(x.marker, sizeof x.marker, "commitlost%d", (int)getpid());
    x.lose_all = lose_all;
    atomic_store(&x.armed, true);
    long status = 0;
    char id[64] = "";
    if (started) {
        struct th_resp *r =
            th_http(&srv, "POST", "/v1/tasks", "{\"type\":\"%s\",\"queue\":\"cl\"}", x.marker);
        status = r->status;
        if (r->status == 201) snprintf(id, sizeof id, "%s", th_str(r->json, "id"));
        if (r->status != 201) printf("    the submit answered %ld: %.200s\n", r->status, r->body);
    }
    bool fired = atomic_load(&x.fired);
    /* What is stored: the task, once, whatever the answer said. */
    long long stored = -1;
    for (long long deadline = th_now_ms() + 10000; started && th_now_ms() < deadline;) {
        char path[160];
        snprintf(path, sizeof path, "/v1/tasks?type=%s&limit=10", x.marker);
        struct th_resp *r = th_http(&srv, "GET", path, NULL);
        if (r->status == 200) {
            stored = (long long)json_array_size(th_get(r->json, "tasks"));
            if (stored == 1 && id[0] && strcmp(th_str(r->json, "tasks.0.id"), id) != 0) stored = -2;
            break;
        }
        th_sleep_ms(100);
    }
    th_server_free(&srv);
    proxy_stop(&x);
    CHECK(started);
    CHECK(fired); /* the COMMIT's answer was lost */
    CHECK_INT(stored, 1);
    CHECK_INT(status, 201); /* it committed: a 503 would invite a duplicate */
}

static void test_commit_answer_lost_after_it_committed(void) {
    commit_answer_lost(false);
}

/* Every answer after COMMIT went lost, the transaction id's too, unless
 * it was had before COMMIT was sent. */
static void test_every_answer_lost_after_commit_was_sent(void) {
    commit_answer_lost(true);
}

static const struct th_test tests[] = {
    {"a COMMIT whose answer is lost after PostgreSQL committed it answers 2xx",
     test_commit_answer_lost_after_it_committed},
    {"every answer lost once COMMIT was sent, its transaction's id too: still 2xx",
     test_every_answer_lost_after_commit_was_sent},
    {NULL, NULL},
};

int main(int argc, char **argv) {
    return th_main(tests, argc, argv) || th_failed();
}
