/*
 * tm_watch and `taskmill watch` over Server-Sent Events, against the real
 * server: a task followed through its whole life with every version in
 * order (and the server's SSE counters to prove the stream was used), a
 * stream cut again and again that resumes with Last-Event-ID and loses
 * and repeats nothing, a resume from the id a keep-alive carried, a
 * re-read after an events_pruned error, and the
 * fall back to the long-poll when the events path answers 404.
 *
 * The cuts, the 404s and the held reconnection come from a small HTTP
 * proxy in this file (a thread per connection) that forwards to the
 * server over HTTP/1.0, so the stream it relays is the raw SSE body. It
 * counts what it forwards, so the tests can see which way the watch went.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/socket.h>

#include "cli_run.h"
#include "taskmill.h"

/* ---- The proxy ---- */

enum proxy_mode {
    PROXY_PASS,      /* forward everything */
    PROXY_NO_SSE,    /* answer 404 on .../events, as a server without SSE */
    PROXY_CUT,       /* end each event stream a few bytes into its `cut_frames`th frame */
    PROXY_CUT_ID,    /* end the first event stream right after a keep-alive with an id */
    PROXY_CUT_HEAD,  /* end the first event stream right after its headers, before any byte of it */
    PROXY_BUSY,      /* as PROXY_CUT_HEAD, then answer the second 429 with Retry-After: 3 */
    PROXY_ONE_EVENT, /* answer each event stream itself: one event (version 1), then close */
    PROXY_SAME_POLL, /* answer each GET /v1/tasks/{id} itself, at once: version 1, pending */
    PROXY_STOPPING,  /* answer the 2nd and 3rd long-polls 503 "stopping", Retry-After: 1 */
};

struct proxy {
    int lfd;
    atomic_int upstream_port; /* moves when the server restarts behind the proxy */
    char url[64];
    enum proxy_mode mode;
    int cut_frames;
    atomic_bool hold;        /* hold every event stream after the first while set */
    atomic_int events_reqs;  /* requests for .../events */
    atomic_int resumed_reqs; /* ... with a Last-Event-ID */
    atomic_llong resumed_id; /* the last such Last-Event-ID, or -1 */
    atomic_int poll_reqs;    /* GET /v1/tasks/{id}?wait=... */
    atomic_int read_reqs;    /* plain GET /v1/tasks/{id} */
    atomic_int live;         /* connection threads running */
    atomic_llong busy_ms;    /* PROXY_BUSY: when it answered 429 (th_now_ms) */
    atomic_llong after_ms;   /* ... and when the next event stream was asked for */
    atomic_bool stop;
    pthread_t th;
};

struct proxy_conn {
    struct proxy *p;
    int fd;
};

static int proxy_connect_upstream(int port) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
    if (fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof sa) == 0) return fd;
    if (fd >= 0) close(fd);
    return -1;
}

static bool proxy_write_all(int fd, const char *p, size_t n) {
    while (n > 0) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w <= 0) return false;
        p += w;
        n -= (size_t)w;
    }
    return true;
}

/* Writes a whole reply of status `status_line` ("200 OK") that ends with the connection. */
static void proxy_reply(int fd, const char *status_line, const char *type, const char *extra,
                        const char *body) {
    char reply[2048];
    int m = snprintf(reply, sizeof reply,
                     "HTTP/1.1 %s\r\nContent-Type: %s\r\n%sContent-Length: %zu\r\n"
                     "Connection: close\r\n\r\n%s",
                     status_line, type, extra, strlen(body), body);
    proxy_write_all(fd, reply, (size_t)m);
}

static void *proxy_conn_main(void *arg) {
    struct proxy_conn *pc = arg;
    struct proxy *p = pc->p;
    int cfd = pc->fd, ufd = -1;
    free(pc);
    char head[8192];
    size_t n = 0;
    char *end = NULL;
    while (!end && n < sizeof head - 1) {
        struct pollfd pf = {cfd, POLLIN, 0};
        if (poll(&pf, 1, 100) <= 0) {
            if (atomic_load(&p->stop)) goto out;
            continue;
        }
        ssize_t r = recv(cfd, head + n, sizeof head - 1 - n, 0);
        if (r <= 0) goto out;
        n += (size_t)r;
        head[n] = '\0';
        end = strstr(head, "\r\n\r\n");
    }
    if (!end) goto out;
    char method[16], path[1024];
    if (sscanf(head, "%15s %1023s", method, path) != 2) goto out;
    bool events = strstr(path, "/events") != NULL;
    int nth = 0;
    if (events) {
        nth = atomic_fetch_add(&p->events_reqs, 1) + 1;
        const char *last = strcasestr(head, "\r\nLast-Event-ID:");
        if (last) {
            atomic_fetch_add(&p->resumed_reqs, 1);
            atomic_store(&p->resumed_id, atoll(last + 17));
        }
        if (p->mode == PROXY_NO_SSE) {
            const char body[] = "{\"error\":{\"code\":\"not_found\",\"message\":\"no route\"}}";
            char reply[512];
            int m = snprintf(reply, sizeof reply,
                             "HTTP/1.1 404 Not Found\r\nContent-Type: application/json\r\n"
                             "Content-Length: %zu\r\nConnection: close\r\n\r\n%s",
                             sizeof body - 1, body);
            proxy_write_all(cfd, reply, (size_t)m);
            goto out;
        }
        if (p->mode == PROXY_BUSY && nth == 2) {
            const char body[] = "{\"error\":{\"code\":\"too_many_requests\",\"message\":\"busy\"}}";
            char reply[512];
            int m = snprintf(reply, sizeof reply,
                             "HTTP/1.1 429 Too Many Requests\r\nContent-Type: application/json\r\n"
                             "Retry-After: 3\r\nContent-Length: %zu\r\nConnection: close\r\n\r\n%s",
                             sizeof body - 1, body);
            atomic_store(&p->busy_ms, th_now_ms());
            proxy_write_all(cfd, reply, (size_t)m);
            goto out;
        }
        if (p->mode == PROXY_BUSY && nth == 3) atomic_store(&p->after_ms, th_now_ms());
        if (p->mode == PROXY_ONE_EVENT) {
            /* No Content-Length: the stream is the body up to the close. */
            const char reply[] =
                "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
                "Connection: close\r\n\r\nid: 5\nevent: task.created\n"
                "data: {\"task\":{\"version\":1,\"phase\":\"pending\"}}\n\n";
            proxy_write_all(cfd, reply, sizeof reply - 1);
            goto out;
        }
        while (nth > 1 && atomic_load(&p->hold) && !atomic_load(&p->stop))
            th_sleep_ms(20);
    } else if (strncmp(path, "/v1/tasks/", 10) == 0 && strcmp(method, "GET") == 0) {
        int nth_req =
            atomic_fetch_add(strstr(path, "wait=") ? &p->poll_reqs : &p->read_reqs, 1) + 1;
        if (p->mode == PROXY_SAME_POLL) {
            proxy_reply(cfd, "200 OK", "application/json", "",
                        "{\"id\":\"x\",\"version\":1,\"phase\":\"pending\"}");
            goto out;
        }
        if (p->mode == PROXY_STOPPING && strstr(path, "wait=") && (nth_req == 2 || nth_req == 3)) {
            if (nth_req == 3) atomic_store(&p->busy_ms, th_now_ms());
            proxy_reply(cfd, "503 Service Unavailable", "application/json", "Retry-After: 1\r\n",
                        "{\"error\":{\"code\":\"unavailable\",\"message\":"
                        "\"the server is stopping\"}}");
            goto out;
        }
        if (p->mode == PROXY_STOPPING && strstr(path, "wait=") && nth_req == 4)
            atomic_store(&p->after_ms, th_now_ms());
    }
    ufd = proxy_connect_upstream(atomic_load(&p->upstream_port));
    if (ufd < 0) goto out;
    /* HTTP/1.0 upstream: a raw body ended by the close, so frames can be counted. */
    char *ver = strstr(head, " HTTP/1.1\r\n");
    if (ver && ver < strstr(head, "\r\n")) memcpy(ver, " HTTP/1.0\r\n", 11);
    if (!proxy_write_all(ufd, head, n)) goto out;
    int frames = 0, tail = -1; /* bytes still to pass once the cut frame is reached */
    char prev = 0;
    char frame[4096]; /* PROXY_CUT_ID: the frame so far, a '\n' before it */
    size_t flen = 1;
    int head_end = 0; /* PROXY_CUT_HEAD: bytes of the "\r\n\r\n" that ends the headers seen */
    frame[0] = '\n';
    for (;;) {
        struct pollfd pf[2] = {{cfd, POLLIN, 0}, {ufd, POLLIN, 0}};
        int r = poll(pf, 2, 100);
        if (atomic_load(&p->stop)) break;
        if (r <= 0) continue;
        char buf[4096];
        if (pf[0].revents) {
            ssize_t got = recv(cfd, buf, sizeof buf, 0);
            if (got <= 0 || !proxy_write_all(ufd, buf, (size_t)got)) break;
        }
        if (pf[1].revents) {
            ssize_t got = recv(ufd, buf, sizeof buf, 0);
            if (got <= 0) break;
            size_t pass = (size_t)got;
            bool cut = false;
            if (events && p->mode == PROXY_CUT) {
                for (size_t i = 0; i < (size_t)got; i++) {
                    if (tail >= 0 && tail-- == 0) {
                        pass = i;
                        break;
                    }
                    if (buf[i] == '\n' && prev == '\n' && ++frames == p->cut_frames) tail = 7;
                    prev = buf[i];
                }
            }
            if (events && p->mode == PROXY_CUT_ID && nth == 1) {
                for (size_t i = 0; i < (size_t)got; i++) {
                    if (flen < sizeof frame - 1) frame[flen++] = buf[i];
                    frame[flen] = '\0';
                    if (buf[i] != '\n' || prev != '\n') {
                        prev = buf[i];
                        continue;
                    }
                    prev = 0;
                    /* A keep-alive's id; not the opening block's, which has
                     * one too (where the stream starts). */
                    bool id_only = strstr(frame, "\nid: ") && !strstr(frame, "\ndata:") &&
                                   strstr(frame, ": keep-alive");
                    flen = 1;
                    if (id_only) {
                        pass = i + 1;
                        cut = true;
                        break;
                    }
                }
            }
            if (events && (p->mode == PROXY_CUT_HEAD || p->mode == PROXY_BUSY) && nth == 1) {
                for (size_t i = 0; i < (size_t)got && !cut; i++) {
                    head_end = buf[i] == "\r\n\r\n"[head_end] ? head_end + 1
                               : buf[i] == '\r'               ? 1
                                                              : 0;
                    if (head_end == 4) {
                        pass = i + 1;
                        cut = true;
                    }
                }
            }
            if (!proxy_write_all(cfd, buf, pass) || pass < (size_t)got || cut) break;
        }
    }
out:
    if (ufd >= 0) close(ufd);
    close(cfd);
    atomic_fetch_sub(&p->live, 1);
    return NULL;
}

static void *proxy_main(void *arg) {
    struct proxy *p = arg;
    while (!atomic_load(&p->stop)) {
        struct pollfd pf = {p->lfd, POLLIN, 0};
        if (poll(&pf, 1, 100) <= 0) continue;
        int fd = accept4(p->lfd, NULL, NULL, SOCK_CLOEXEC);
        if (fd < 0) continue;
        struct proxy_conn *pc = malloc(sizeof *pc);
        pc->p = p;
        pc->fd = fd;
        atomic_fetch_add(&p->live, 1);
        pthread_t t;
        if (pthread_create(&t, NULL, proxy_conn_main, pc) == 0) {
            pthread_detach(t);
        } else {
            close(fd);
            free(pc);
            atomic_fetch_sub(&p->live, 1);
        }
    }
    return NULL;
}

/* Starts a proxy on 127.0.0.1:0 in front of server s. 0 or -1. Each test's
 * proxy is a static: a failing CHECK returns before proxy_stop, and the
 * proxy's threads, still running, must not then read a stack frame that is
 * gone (they did, and the crash took the later tests' results with it). */
static int proxy_start(struct proxy *p, const struct th_server *s, enum proxy_mode mode) {
    memset(p, 0, sizeof *p);
    p->mode = mode;
    atomic_store(&p->resumed_id, -1);
    p->cut_frames = 3;
    const char *colon = strrchr(s->url, ':');
    atomic_store(&p->upstream_port, colon ? atoi(colon + 1) : 0);
    p->lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET};
    inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
    socklen_t len = sizeof sa;
    if (p->lfd < 0 || bind(p->lfd, (struct sockaddr *)&sa, sizeof sa) || listen(p->lfd, 64) ||
        getsockname(p->lfd, (struct sockaddr *)&sa, &len))
        return -1;
    snprintf(p->url, sizeof p->url, "http://127.0.0.1:%d", ntohs(sa.sin_port));
    return pthread_create(&p->th, NULL, proxy_main, p) == 0 ? 0 : -1;
}

static void proxy_stop(struct proxy *p) {
    atomic_store(&p->stop, true);
    pthread_join(p->th, NULL);
    close(p->lfd);
    for (int i = 0; i < 250 && atomic_load(&p->live) > 0; i++)
        th_sleep_ms(20);
}

/* ---- Helpers ---- */

static struct th_server srv;

static const char *jstr(const json_t *o, const char *k) {
    return json_string_value(json_object_get(o, k));
}

/* A counter's value in the server's /metrics, or -1. */
static long long metric(struct th_server *s, const char *name) {
    struct th_resp *r = th_http(s, "GET", "/metrics", NULL);
    char key[128];
    snprintf(key, sizeof key, "\n%s ", name);
    const char *at = r->body ? strstr(r->body, key) : NULL;
    return at ? atoll(at + strlen(key)) : -1;
}

/* Heartbeats progress i/n for i = 1..n, then completes. */
static void drive(struct tm_client *c, const char *id, const char *tok, int n) {
    for (int i = 1; i <= n; i++) {
        struct tm_report r = {.has_ratio = true, .ratio = (double)i / n, .message = "step"};
        if (tm_heartbeat(c, id, tok, 0, &r, NULL)) return;
    }
    tm_complete(c, id, tok, NULL, NULL, NULL);
}

/* States follow() has taken, for drive_main in another thread; a test sets it to 0 first. */
static _Atomic int followed;

/* Whether the file at path (a CLI watch's output) names task id yet. */
static bool output_names(const char *path, const char *id) {
    char *text = cli_slurp(path);
    bool named = strstr(text, id) != NULL;
    free(text);
    return named;
}

/*
 * What drive_main waits for before it drives: the watch must have its
 * first state, so that its stream is open (a task stream starts at the
 * present) and sees every change that follows.
 */
struct drive_args {
    const char *url, *id, *tok;
    int n;
    const char *watch_out; /* a CLI watch's output file: wait until it names the task */
    bool after_follow;     /* wait until follow() has taken a state */
};

static void *drive_main(void *arg) {
    struct drive_args *a = arg;
    bool ready = true;
    if (a->watch_out)
        TRY_WAIT_UNTIL(ready, output_names(a->watch_out, a->id), 10000,
                       "the watch to print task %s", a->id);
    if (a->after_follow)
        TRY_WAIT_UNTIL(ready, atomic_load(&followed) >= 1, 10000, "the watch's first state");
    struct tm_client *c = tm_client_new(a->url, NULL);
    drive(c, a->id, a->tok, a->n);
    tm_client_free(c);
    return NULL;
}

/*
 * Follows id with w until it ends, checking that versions come in order
 * and never twice; *nseen gets how many states came, *consecutive whether
 * each was the one after the last. Returns the final phase (static).
 */
static const char *follow(struct tm_watch *w, int *nseen, bool *consecutive) {
    static char phase[32];
    phase[0] = '\0';
    *nseen = 0;
    *consecutive = true;
    long long last = -1;
    while (tm_watch_active(w) > 0) {
        json_t *t = NULL;
        int rc = tm_watch_next(w, 10000, &t);
        if (rc != 1) {
            printf("    tm_watch_next: %d\n", rc);
            break;
        }
        long long v = json_integer_value(json_object_get(t, "version"));
        if (last >= 0 && v != last + 1) {
            printf("    version %lld after %lld\n", v, last);
            *consecutive = false;
        }
        last = v;
        (*nseen)++;
        atomic_fetch_add(&followed, 1);
        snprintf(phase, sizeof phase, "%s", jstr(t, "phase") ? jstr(t, "phase") : "?");
        json_decref(t);
    }
    /* A task dropped with an error leaves the error queued. */
    json_t *t = NULL;
    int rc = tm_watch_next(w, 0, &t);
    if (rc < 0) printf("    dropped: %s\n", tm_strerror(rc));
    json_decref(t);
    return phase;
}

/* ---- Tests ---- */

static void test_follows_over_sse(void) {
    long long sent0 = metric(&srv, "taskmill_sse_events_sent_total");
    char *id = th_submit(&srv, "sse", "\"queue\":\"sseq\"");
    struct tm_client *c = tm_client_new(srv.url, NULL);
    struct tm_watch *w = tm_watch_new(c);
    CHECK_INT(tm_watch_set_mode(w, TM_WATCH_SSE), 0);
    CHECK_INT(tm_watch_add(w, id), 0);
    json_t *t = NULL;
    CHECK_INT(tm_watch_next(w, 5000, &t), 1);
    CHECK_STR(jstr(t, "phase"), "pending");
    json_decref(t);
    CHECK_INT(metric(&srv, "taskmill_sse_streams"), 1);
    char cid[33], tok[33];
    CHECK_INT(th_claim(&srv, "sseq", NULL, cid, tok), 200);
    pthread_t th;
    struct drive_args a = {srv.url, id, tok, 20, NULL, false}; /* the watch has its first state */
    pthread_create(&th, NULL, drive_main, &a);
    int n;
    bool consecutive;
    const char *phase = follow(w, &n, &consecutive);
    pthread_join(th, NULL);
    CHECK_STR(phase, "completed");
    /* running, 20 heartbeats, completed: every version, in order. */
    CHECK_INT(n, 22);
    CHECK(consecutive);
    CHECK(metric(&srv, "taskmill_sse_events_sent_total") >= sent0 + 22);
    tm_watch_free(w);
    /* The stream is closed once the task has ended (the server notices at a keep-alive). */
    for (int i = 0; i < 1000 && metric(&srv, "taskmill_sse_streams") != 0; i++)
        th_sleep_ms(20);
    CHECK_INT(metric(&srv, "taskmill_sse_streams"), 0);
    tm_client_free(c);
    free(id);
}

static void test_cli_watch_uses_sse(void) {
    char *id = th_submit(&srv, "cli", "\"queue\":\"cliq\"");
    char cid[33], tok[33];
    CHECK_INT(th_claim(&srv, "cliq", NULL, cid, tok), 200);
    long long sent0 = metric(&srv, "taskmill_sse_events_sent_total");
    setenv("TASKMILL_WATCH_MODE", "sse", 1);
    pthread_t th;
    char watch_out[400];
    snprintf(watch_out, sizeof watch_out, "%s/cli.out", srv.dir); /* where cli_run writes */
    struct drive_args a = {srv.url, id, tok, 5, watch_out, false};
    pthread_create(&th, NULL, drive_main, &a);
    char *out = NULL, *err = NULL;
    int rc = cli_run(&srv, NULL, &out, &err, "watch", id);
    unsetenv("TASKMILL_WATCH_MODE");
    pthread_join(th, NULL);
    bool ok = rc == 0 && strstr(out, " completed 100%") && strstr(out, " running 60% step");
    if (!ok) printf("    rc %d out:\n%s\nerr:\n%s\n", rc, out, err);
    free(out);
    free(err);
    free(id);
    CHECK(ok);
    CHECK(metric(&srv, "taskmill_sse_events_sent_total") >= sent0 + 6);
}

static void test_resumes_after_cuts(void) {
    static struct proxy p; /* static: see proxy_start */
    CHECK(proxy_start(&p, &srv, PROXY_CUT) == 0);
    char *id = th_submit(&srv, "cut", "\"queue\":\"cutq\"");
    char cid[33], tok[33];
    CHECK_INT(th_claim(&srv, "cutq", NULL, cid, tok), 200);
    struct tm_client *c = tm_client_new(p.url, NULL);
    struct tm_watch *w = tm_watch_new(c);
    CHECK_INT(tm_watch_set_mode(w, TM_WATCH_SSE), 0);
    CHECK_INT(tm_watch_add(w, id), 0);
    pthread_t th;
    struct drive_args a = {srv.url, id, tok, 30, NULL, true};
    atomic_store(&followed, 0);
    pthread_create(&th, NULL, drive_main, &a);
    int n;
    bool consecutive;
    const char *phase = follow(w, &n, &consecutive);
    pthread_join(th, NULL);
    tm_watch_free(w);
    tm_client_free(c);
    proxy_stop(&p);
    free(id);
    CHECK_STR(phase, "completed");
    /* The snapshot (running), 30 heartbeats, completed: none lost, none twice. */
    CHECK_INT(n, 32);
    CHECK(consecutive);
    /* Two events per connection at most, so it was cut and resumed many times. */
    if (atomic_load(&p.resumed_reqs) < 10)
        printf("    %d streams, %d resumed\n", atomic_load(&p.events_reqs),
               atomic_load(&p.resumed_reqs));
    CHECK(atomic_load(&p.resumed_reqs) >= 10);
    CHECK_INT(atomic_load(&p.poll_reqs), 0);
}

/*
 * A keep-alive that carries an id (the stream passed other tasks' events)
 * moves the watch's resume point: the proxy cuts the stream right after
 * that frame, and the watch resumes with that id, not the snapshot's.
 * Then the task's next change still comes, once.
 */
static void test_resumes_from_a_keep_alive_id(void) {
    static struct proxy p; /* static: see proxy_start */
    CHECK(proxy_start(&p, &srv, PROXY_CUT_ID) == 0);
    char *id = th_submit(&srv, "kaid", "\"queue\":\"kaidq\"");
    struct tm_client *c = tm_client_new(p.url, NULL);
    struct tm_watch *w = tm_watch_new(c);
    CHECK_INT(tm_watch_set_mode(w, TM_WATCH_SSE), 0);
    CHECK_INT(tm_watch_add(w, id), 0);
    json_t *t = NULL;
    CHECK_INT(tm_watch_next(w, 5000, &t), 1); /* the snapshot: the stream is open */
    json_decref(t);
    /* Other tasks' events, in one commit: the stream passes them all at once. */
    struct th_resp *r = th_http(&srv, "POST", "/v1/tasks/batch",
                                "{\"tasks\":[{\"type\":\"o\"},{\"type\":\"o\"},{\"type\":\"o\"}]}");
    CHECK_INT(r->status, 201);
    long long head = metric(&srv, "taskmill_event_seq");
    /* The watch reads on: the cut, the resume; then the task is cancelled. */
    for (int i = 0; i < 100 && atomic_load(&p.resumed_reqs) == 0; i++)
        tm_watch_next(w, 50, &t) == 1 ? json_decref(t) : (void)0;
    CHECK_INT(atomic_load(&p.resumed_reqs), 1);
    CHECK_INT(atomic_load(&p.resumed_id), head);
    char path[128];
    snprintf(path, sizeof path, "/v1/tasks/%s/cancel", id);
    CHECK_INT(th_http(&srv, "POST", path, "{}")->status, 200);
    CHECK_INT(tm_watch_next(w, 5000, &t), 1);
    CHECK_STR(jstr(t, "phase"), "cancelled");
    json_decref(t);
    tm_watch_free(w);
    tm_client_free(c);
    proxy_stop(&p);
    free(id);
}

/* Restarts s (same database, new port) and points the proxy at it. */
static bool restart_behind(struct th_server *s, struct proxy *p) {
    th_server_stop(s, false);
    if (th_server_restart(s)) return false;
    const char *colon = strrchr(s->url, ':');
    atomic_store(&p->upstream_port, colon ? atoi(colon + 1) : 0);
    return true;
}

static void test_resumes_across_restart(void) {
    struct th_server s2;
    CHECK(th_server_start(&s2, NULL) == 0);
    static struct proxy p; /* static: see proxy_start */
    CHECK(proxy_start(&p, &s2, PROXY_PASS) == 0);
    char *id = th_submit(&s2, "rs", "\"queue\":\"rsq\"");
    struct tm_client *c = tm_client_new(p.url, NULL);
    struct tm_watch *w = tm_watch_new(c);
    CHECK_INT(tm_watch_add(w, id), 0);
    json_t *t = NULL;
    CHECK_INT(tm_watch_next(w, 5000, &t), 1);
    CHECK_INT(json_integer_value(json_object_get(t, "version")), 1);
    json_decref(t);
    /* The stream ends with the server; reconnections fail until it is back. */
    CHECK(restart_behind(&s2, &p));
    char cid[33], tok[33];
    CHECK_INT(th_claim(&s2, "rsq", NULL, cid, tok), 200);
    struct tm_client *wc = tm_client_new(s2.url, NULL);
    drive(wc, id, tok, 10);
    int n;
    bool consecutive;
    const char *phase = follow(w, &n, &consecutive);
    tm_watch_free(w);
    tm_client_free(c);
    tm_client_free(wc);
    proxy_stop(&p);
    free(id);
    th_server_free(&s2);
    CHECK_STR(phase, "completed");
    /* running, 10 heartbeats, completed: read back from the store after the restart. */
    CHECK_INT(n, 12);
    CHECK(consecutive);
    CHECK(atomic_load(&p.resumed_reqs) >= 1);
    CHECK_INT(atomic_load(&p.poll_reqs), 0);
}

static void test_rereads_after_pruned_events(void) {
    struct th_server s2;
    CHECK(th_server_start(&s2, "--events-max-count", "2", NULL) == 0);
    static struct proxy p; /* static: see proxy_start */
    CHECK(proxy_start(&p, &s2, PROXY_CUT) == 0);
    p.cut_frames = 2; /* the preamble and the snapshot; the next event cuts the stream */
    atomic_store(&p.hold, true);
    char *id = th_submit(&s2, "pr", "\"queue\":\"prq\"");
    struct tm_client *c = tm_client_new(p.url, NULL);
    struct tm_watch *w = tm_watch_new(c);
    CHECK_INT(tm_watch_add(w, id), 0);
    json_t *t = NULL;
    CHECK_INT(tm_watch_next(w, 5000, &t), 1);
    CHECK_STR(jstr(t, "phase"), "pending");
    json_decref(t);
    /* The claim cuts the stream; the resumption is held while the task moves on, retention
     * removes the events it would need, and the server restarts (its memory of events gone). */
    char cid[33], tok[33];
    CHECK_INT(th_claim(&s2, "prq", NULL, cid, tok), 200);
    CHECK_INT(tm_watch_next(w, 300, &t), 0);
    struct tm_client *wc = tm_client_new(s2.url, NULL);
    for (int i = 1; i <= 10; i++) {
        struct tm_report r = {.has_ratio = true, .ratio = i / 20.0};
        CHECK_INT(tm_heartbeat(wc, id, tok, 0, &r, NULL), 0);
    }
    tm_client_free(wc);
    long long head = metric(&s2, "taskmill_event_seq");
    for (int i = 0; i < 400 && metric(&s2, "taskmill_events_pruned_through") < head - 2; i++)
        th_sleep_ms(50);
    CHECK(head > 10 && metric(&s2, "taskmill_events_pruned_through") >= head - 2);
    CHECK(restart_behind(&s2, &p));
    wc = tm_client_new(s2.url, NULL);
    CHECK_INT(tm_watch_next(w, 300, &t), 0); /* nothing while held */
    char path[96];
    snprintf(path, sizeof path, "/v1/tasks/%s", id);
    long long vlast = th_int(th_http(&s2, "GET", path, NULL)->json, "version");
    atomic_store(&p.hold, false);
    /* events_pruned: the watch reads the task again and goes on with the stream. The
     * events left after the gap may come first; the latest state comes either way. */
    long long v = -1;
    for (int i = 0; i < 50 && (v < vlast || atomic_load(&p.read_reqs) < 1); i++) {
        int rc = tm_watch_next(w, 100, &t);
        CHECK(rc >= 0);
        if (rc == 0) continue;
        CHECK_STR(jstr(t, "phase"), "running");
        long long tv = json_integer_value(json_object_get(t, "version"));
        CHECK(tv > v);
        v = tv;
        json_decref(t);
    }
    CHECK_INT(v, vlast);
    CHECK(atomic_load(&p.read_reqs) >= 1);
    CHECK_INT(tm_complete(wc, id, tok, NULL, NULL, NULL), 0);
    int n;
    bool consecutive;
    const char *phase = follow(w, &n, &consecutive);
    tm_watch_free(w);
    tm_client_free(wc);
    tm_client_free(c);
    proxy_stop(&p);
    free(id);
    th_server_free(&s2);
    CHECK_STR(phase, "completed");
    CHECK_INT(n, 1);
    CHECK(atomic_load(&p.resumed_reqs) >= 1);
    CHECK_INT(atomic_load(&p.poll_reqs), 0);
}

static void test_falls_back_to_long_poll(void) {
    static struct proxy p; /* static: see proxy_start */
    CHECK(proxy_start(&p, &srv, PROXY_NO_SSE) == 0);
    char *a = th_submit(&srv, "fa", "\"queue\":\"fbq\"");
    char *b = th_submit(&srv, "fb", "\"queue\":\"fbq2\"");
    struct tm_client *c = tm_client_new(p.url, NULL);
    struct tm_watch *w = tm_watch_new(c);
    CHECK_INT(tm_watch_add(w, a), 0);
    json_t *t = NULL;
    CHECK_INT(tm_watch_next(w, 5000, &t), 1);
    CHECK_STR(jstr(t, "phase"), "pending");
    json_decref(t);
    /* The first 404 showed the server has no events path: the next task polls at once. */
    CHECK_INT(tm_watch_add(w, b), 0);
    CHECK_INT(tm_watch_next(w, 5000, &t), 1);
    json_decref(t);
    CHECK_INT(atomic_load(&p.events_reqs), 1);
    /* An unknown task is still "not found", through the long-poll. */
    CHECK_INT(tm_watch_add(w, "0123456789abcdef0123456789abcdef"), 0);
    CHECK_INT(tm_watch_next(w, 5000, &t), TM_CLIENT_ENOTFOUND);
    char cid[33], tok[33];
    CHECK_INT(th_claim(&srv, "fbq", NULL, cid, tok), 200);
    CHECK_INT(tm_watch_next(w, 5000, &t), 1);
    CHECK_STR(jstr(t, "phase"), "running");
    json_decref(t);
    CHECK_INT(tm_cancel(c, b, NULL), 0);
    CHECK_INT(tm_complete(c, a, tok, NULL, NULL, NULL), 0);
    int done = 0;
    while (tm_watch_active(w) > 0 && tm_watch_next(w, 5000, &t) == 1) {
        done += tm_phase_is_terminal(jstr(t, "phase"));
        json_decref(t);
    }
    CHECK_INT(done, 2);
    CHECK(atomic_load(&p.poll_reqs) >= 2);
    tm_watch_free(w);
    tm_client_free(c);

    /* The CLI, in auto mode, falls back the same way and prints its plain lines. */
    char *d = th_submit(&srv, "fd", "\"queue\":\"fbq3\"");
    CHECK_INT(th_claim(&srv, "fbq3", NULL, cid, tok), 200);
    pthread_t th;
    char watch_out[400];
    snprintf(watch_out, sizeof watch_out, "%s/cli.out", srv.dir); /* where cli_run writes */
    struct drive_args da = {srv.url, d, tok, 3, watch_out, false};
    pthread_create(&th, NULL, drive_main, &da);
    struct th_server via = srv; /* the CLI talks to the proxy */
    snprintf(via.url, sizeof via.url, "%s", p.url);
    int before = atomic_load(&p.events_reqs);
    char *out = NULL, *err = NULL;
    int rc = cli_run(&via, NULL, &out, &err, "watch", d);
    pthread_join(th, NULL);
    bool ok = rc == 0 && strstr(out, " completed 100%") != NULL;
    if (!ok) printf("    rc %d out:\n%s\nerr:\n%s\n", rc, out, err);
    free(out);
    free(err);
    proxy_stop(&p);
    CHECK(ok);
    CHECK_INT(atomic_load(&p.events_reqs), before + 1);
    free(a);
    free(b);
    free(d);
}

/*
 * A stream that answered 200 text/event-stream and was cut before its
 * first byte (the server went away just then) is an event stream cut
 * short like any other: the watch opens it again and the task's state
 * comes. It was taken for a server without event streams: in sse mode the
 * task was dropped with "not an event stream" (in auto mode it was
 * long-polled for good).
 */
static void test_stream_cut_after_its_headers(void) {
    static struct proxy p; /* static: see proxy_start */
    CHECK(proxy_start(&p, &srv, PROXY_CUT_HEAD) == 0);
    char *id = th_submit(&srv, "ch", "\"queue\":\"chq\"");
    struct tm_client *c = tm_client_new(p.url, NULL);
    struct tm_watch *w = tm_watch_new(c);
    CHECK_INT(tm_watch_set_mode(w, TM_WATCH_SSE), 0);
    CHECK_INT(tm_watch_add(w, id), 0);
    json_t *t = NULL;
    int rc = tm_watch_next(w, 10000, &t);
    if (rc != 1) printf("    rc %d: %s\n", rc, tm_client_last_error(c)->message);
    CHECK_INT(rc, 1);
    CHECK_STR(jstr(t, "phase"), "pending");
    json_decref(t);
    CHECK(atomic_load(&p.events_reqs) >= 2); /* the cut stream, then the one that answered */
    CHECK_INT(atomic_load(&p.poll_reqs), 0);
    CHECK_INT(tm_cancel(c, id, NULL), 0);
    CHECK_INT(tm_watch_next(w, 5000, &t), 1);
    CHECK_STR(jstr(t, "phase"), "cancelled");
    json_decref(t);
    tm_watch_free(w);
    tm_client_free(c);
    proxy_stop(&p);
    free(id);
}

/*
 * A stream that was open, cut, and whose reopening is refused 429 with
 * Retry-After: 3 (too many streams of the token, say) is opened again
 * once the 3 s are over, not sooner (its own backoff would have been a
 * second), and the task's state comes. It was dropped, in sse mode, with
 * the 429 as its error.
 */
static void test_reopen_waits_retry_after(void) {
    static struct proxy p; /* static: see proxy_start */
    CHECK(proxy_start(&p, &srv, PROXY_BUSY) == 0);
    char *id = th_submit(&srv, "busy", "\"queue\":\"busyq\"");
    struct tm_client *c = tm_client_new(p.url, NULL);
    struct tm_watch *w = tm_watch_new(c);
    CHECK_INT(tm_watch_set_mode(w, TM_WATCH_SSE), 0);
    CHECK_INT(tm_watch_add(w, id), 0);
    json_t *t = NULL;
    int rc = tm_watch_next(w, 20000, &t);
    if (rc != 1) printf("    rc %d: %s\n", rc, tm_client_last_error(c)->message);
    CHECK_INT(rc, 1);
    CHECK_STR(jstr(t, "phase"), "pending");
    json_decref(t);
    long long busy = atomic_load(&p.busy_ms), after = atomic_load(&p.after_ms);
    printf("    reopened %lld ms after the 429\n", after - busy);
    CHECK(busy > 0 && after > 0);
    CHECK(after - busy >= 2900); /* Retry-After: 3, 100 ms for the clocks */
    CHECK_INT(atomic_load(&p.poll_reqs), 0);
    CHECK_INT(tm_cancel(c, id, NULL), 0);
    CHECK_INT(tm_watch_next(w, 5000, &t), 1);
    CHECK_STR(jstr(t, "phase"), "cancelled");
    json_decref(t);
    tm_watch_free(w);
    tm_client_free(c);
    proxy_stop(&p);
    free(id);
}

static void test_poll_mode_never_streams(void) {
    static struct proxy p; /* static: see proxy_start */
    CHECK(proxy_start(&p, &srv, PROXY_PASS) == 0);
    char *id = th_submit(&srv, "pm", "\"queue\":\"pmq\"");
    struct tm_client *c = tm_client_new(p.url, NULL);
    struct tm_watch *w = tm_watch_new(c);
    CHECK_INT(tm_watch_set_mode(w, TM_WATCH_POLL), 0);
    CHECK_INT(tm_watch_set_mode(w, (enum tm_watch_mode)7), TM_CLIENT_EINVALID);
    CHECK_INT(tm_watch_add(w, id), 0);
    json_t *t = NULL;
    CHECK_INT(tm_watch_next(w, 5000, &t), 1);
    json_decref(t);
    CHECK_INT(tm_cancel(c, id, NULL), 0);
    CHECK_INT(tm_watch_next(w, 5000, &t), 1);
    CHECK_STR(jstr(t, "phase"), "cancelled");
    json_decref(t);
    tm_watch_free(w);
    tm_client_free(c);
    proxy_stop(&p);
    CHECK_INT(atomic_load(&p.events_reqs), 0);
    CHECK(atomic_load(&p.poll_reqs) >= 1);
    /* In sse mode an unknown task is the stream's own 404. */
    c = tm_client_new(srv.url, NULL);
    w = tm_watch_new(c);
    tm_watch_set_mode(w, TM_WATCH_SSE);
    CHECK_INT(tm_watch_add(w, "0123456789abcdef0123456789abcdef"), 0);
    CHECK_INT(tm_watch_next(w, 5000, &t), TM_CLIENT_ENOTFOUND);
    CHECK_INT(tm_client_last_error(c)->http_status, 404);
    tm_watch_free(w);
    tm_client_free(c);
    free(id);
}

/*
 * A long-poll refused 503 "the server is stopping" with Retry-After: 1
 * (twice) is sent again after its Retry-After, and the task's next state
 * comes; the watch ended at the first 503 (`taskmill watch` exited 5 on a
 * server restart in poll mode).
 */
static void test_poll_survives_stopping(void) {
    static struct proxy p; /* static: see proxy_start */
    CHECK(proxy_start(&p, &srv, PROXY_STOPPING) == 0);
    char *id = th_submit(&srv, "stop", "\"queue\":\"stopq\"");
    struct tm_client *c = tm_client_new(p.url, NULL);
    struct tm_watch *w = tm_watch_new(c);
    CHECK_INT(tm_watch_set_mode(w, TM_WATCH_POLL), 0);
    CHECK_INT(tm_watch_add(w, id), 0);
    json_t *t = NULL;
    CHECK_INT(tm_watch_next(w, 5000, &t), 1); /* the first read */
    CHECK_STR(jstr(t, "phase"), "pending");
    json_decref(t);
    /* The first long-poll waits; the task moves; the next two are refused. */
    char cid[33], tok[33];
    CHECK_INT(th_claim(&srv, "stopq", NULL, cid, tok), 200);
    CHECK_INT(tm_watch_next(w, 5000, &t), 1);
    CHECK_STR(jstr(t, "phase"), "running");
    json_decref(t);
    bool lost = false;
    for (int i = 0; i < 100 && atomic_load(&p.poll_reqs) < 3; i++) {
        int rc = tm_watch_next(w, 50, &t);
        CHECK_INT(rc, 0);
        lost = lost || tm_watch_lost_ms(w, id) > 0;
    }
    CHECK_INT(atomic_load(&p.poll_reqs), 3); /* the two refusals came */
    lost = lost || tm_watch_lost_ms(w, id) > 0;
    CHECK(lost); /* the bar says the server is not answering */
    CHECK_INT(tm_complete(c, id, tok, NULL, NULL, NULL), 0);
    int rc = tm_watch_next(w, 20000, &t);
    if (rc != 1) printf("    rc %d: %s\n", rc, tm_client_last_error(c)->message);
    CHECK_INT(rc, 1);
    CHECK_STR(jstr(t, "phase"), "completed");
    json_decref(t);
    CHECK_INT(tm_watch_lost_ms(w, id), 0);
    long long busy = atomic_load(&p.busy_ms), after = atomic_load(&p.after_ms);
    printf("    polled again %lld ms after the second 503\n", after - busy);
    CHECK(busy > 0 && after > 0);
    CHECK(after - busy >= 900); /* Retry-After: 1, 100 ms for the clocks */
    tm_watch_free(w);
    tm_client_free(c);
    proxy_stop(&p);
    free(id);
}

/*
 * `taskmill watch` in poll mode across a server restart (no server for a
 * moment, then one on the same database): it follows the task to its end.
 * It exited 5 with the first refused long-poll.
 */
static void test_cli_poll_survives_restart(void) {
    struct th_server s2;
    CHECK(th_server_start(&s2, NULL) == 0);
    static struct proxy p; /* static: see proxy_start */
    CHECK(proxy_start(&p, &s2, PROXY_PASS) == 0);
    char *id = th_submit(&s2, "prs", "\"queue\":\"prsq\"");
    struct th_server via = s2; /* the CLI talks to the proxy */
    snprintf(via.url, sizeof via.url, "%s", p.url);
    char log[400];
    snprintf(log, sizeof log, "%s/watch.log", s2.dir);
    setenv("TASKMILL_WATCH_MODE", "poll", 1);
    pid_t pid = cli_spawn(&via, log, "watch", id);
    unsetenv("TASKMILL_WATCH_MODE");
    bool named = false;
    TRY_WAIT_UNTIL(named, output_names(log, id), 10000, "the watch to print task %s", id);
    CHECK(named);
    CHECK(restart_behind(&s2, &p));
    char cid[33], tok[33];
    CHECK_INT(th_claim(&s2, "prsq", NULL, cid, tok), 200);
    struct tm_client *wc = tm_client_new(s2.url, NULL);
    drive(wc, id, tok, 3);
    tm_client_free(wc);
    int rc = cli_wait(pid, 40000);
    if (rc < 0) kill(-pid, SIGKILL), cli_wait(pid, 5000);
    char *out = cli_slurp(log);
    bool ok = rc == 0 && strstr(out, " completed 100%") != NULL;
    if (!ok) printf("    rc %d out:\n%s\n", rc, out);
    free(out);
    proxy_stop(&p);
    free(id);
    th_server_free(&s2);
    CHECK(ok);
    CHECK(atomic_load(&p.poll_reqs) >= 2);
    CHECK_INT(atomic_load(&p.events_reqs), 0);
}

/*
 * Follows one task through a proxy in `mode` for 3 s after its first
 * version, with no newer one ever coming, and gives back how many streams
 * (`streams`) or long-polls the watch opened in all, in *n (-1 when a
 * check on the way failed). When the test was held up a second or more
 * in those 3 s (the watch runs in its turns), on past them while it has
 * opened fewer than two (20 s: a deadline): held up through the 3 s, it
 * gave the watch no turn in which to open the second, and saw one.
 */
static void requests_in_3s(enum proxy_mode mode, enum tm_watch_mode watch_mode, bool streams,
                           int *n) {
    *n = -1;
    static struct proxy p; /* static: see proxy_start */
    CHECK(proxy_start(&p, &srv, mode) == 0);
    struct tm_client *c = tm_client_new(p.url, NULL);
    struct tm_watch *w = tm_watch_new(c);
    CHECK_INT(tm_watch_set_mode(w, watch_mode), 0);
    CHECK_INT(tm_watch_add(w, "0123456789abcdef0123456789abcdef"), 0);
    json_t *t = NULL;
    CHECK_INT(tm_watch_next(w, 5000, &t), 1);
    json_decref(t);
    int64_t until = th_now_ms() + 3000, turned = th_now_ms(), held = 0;
    for (int64_t now; (now = th_now_ms()) < until;) {
        int ms = (int)(until - now);
        if (now - turned > held) held = now - turned; /* between two turns */
        CHECK_INT(tm_watch_next(w, ms, &t), 0);
        turned = th_now_ms();
        if (turned - now - ms > held) held = turned - now - ms; /* past a turn's time */
    }
    if (th_now_ms() - turned > held) held = th_now_ms() - turned; /* after the last */
    atomic_int *asked = streams ? &p.events_reqs : &p.poll_reqs;
    if (held >= 1000 && atomic_load(asked) < 2) {
        printf("    held up %lld ms in the 3 s: on until it asks again\n", (long long)held);
        for (int64_t end = th_now_ms() + 20000; atomic_load(asked) < 2 && th_now_ms() < end;)
            CHECK_INT(tm_watch_next(w, 100, &t), 0);
    }
    *n = atomic_load(asked);
    if (streams) CHECK_INT(atomic_load(&p.resumed_id), 5);
    tm_watch_free(w);
    tm_client_free(c);
    proxy_stop(&p);
}

/*
 * A stream that sends one event (a version the watch has) and ends is
 * opened again after `retry:` (1 s here, none sent), doubled for each such
 * end, not at once: a few times in 3 s (it was some 900).
 */
static void test_stream_ending_at_once_is_paced(void) {
    int n;
    requests_in_3s(PROXY_ONE_EVENT, TM_WATCH_SSE, true, &n);
    printf("    %d streams in 3 s\n", n);
    CHECK(n >= 2);  /* it was opened again */
    CHECK(n <= 10); /* 1 s, 2 s, ...: four or so */
}

/*
 * A long-poll answered at once with the version the watch has is sent
 * again WATCH_RETRY_MIN_MS later, doubled for each such answer: a handful
 * of times in 3 s (it was thousands).
 */
static void test_poll_answered_at_once_is_paced(void) {
    int n;
    requests_in_3s(PROXY_SAME_POLL, TM_WATCH_POLL, false, &n);
    printf("    %d long-polls in 3 s\n", n);
    CHECK(n >= 2);  /* it went on asking */
    CHECK(n <= 15); /* 100, 200, 400 ... ms apart: five or so */
}

/* The watch SIGALRM wakes (test_wake_ends_the_wait). */
static _Atomic(struct tm_watch *) alarm_watch;

static void on_alarm(int sig) {
    (void)sig;
    tm_watch_wake(atomic_load(&alarm_watch));
}

/* Cancels task id on the server. */
static void cancel_task(const char *id) {
    char path[128];
    snprintf(path, sizeof path, "/v1/tasks/%s/cancel", id);
    th_http(&srv, "POST", path, "{}");
}

/*
 * tm_watch_wake from a signal handler ends tm_watch_next's wait of a
 * minute (a signal alone did not: the poll goes on after EINTR); the
 * bound below is half the timeout, so it holds on a loaded machine and
 * still tells "at once" from "at the timeout". Wakes before a call count
 * once and are used up by it: the next call hands out the change that
 * follows. Waking one watch wakes no other: each has its own pipe.
 */
static void test_wake_ends_the_wait(void) {
    char *id1 = th_submit(&srv, "wake", "\"queue\":\"wakeq\"");
    char *id2 = th_submit(&srv, "wake", "\"queue\":\"wakeq\"");
    struct tm_client *c = tm_client_new(srv.url, NULL);
    struct tm_watch *w1 = tm_watch_new(c), *w2 = tm_watch_new(c);
    CHECK_INT(tm_watch_add(w1, id1), 0);
    CHECK_INT(tm_watch_add(w2, id2), 0);
    json_t *t = NULL;
    CHECK_INT(tm_watch_next(w1, 10000, &t), 1);
    json_decref(t);
    CHECK_INT(tm_watch_next(w2, 10000, &t), 1);
    json_decref(t);

    struct sigaction sa, old;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_alarm; /* no SA_RESTART: the poll sees EINTR */
    sigemptyset(&sa.sa_mask);
    sigaction(SIGALRM, &sa, &old);
    atomic_store(&alarm_watch, w1);
    alarm(1);
    long long t0 = th_now_ms();
    int rc = tm_watch_next(w1, 60000, &t);
    long long took = th_now_ms() - t0;
    alarm(0);
    sigaction(SIGALRM, &old, NULL);
    atomic_store(&alarm_watch, NULL);
    CHECK_INT(rc, 0);
    CHECK(t == NULL);
    if (took >= 30000) printf("    tm_watch_next returned after %lld ms\n", took);
    CHECK(took < 30000);

    /* Two wakes before the call: it returns 0, and the next gets the cancel. */
    tm_watch_wake(w1);
    tm_watch_wake(w1);
    CHECK_INT(tm_watch_next(w1, 60000, &t), 0);
    cancel_task(id1);
    CHECK_INT(tm_watch_next(w1, 60000, &t), 1);
    CHECK_STR(jstr(t, "phase"), "cancelled");
    json_decref(t);

    /* w1 woken: w2 still waits for its change. */
    tm_watch_wake(w1);
    cancel_task(id2);
    CHECK_INT(tm_watch_next(w2, 60000, &t), 1);
    CHECK_STR(jstr(t, "phase"), "cancelled");
    json_decref(t);
    tm_watch_wake(NULL); /* allowed */
    tm_watch_free(w1);
    tm_watch_free(w2);
    tm_client_free(c);
    free(id1);
    free(id2);
}

static const struct th_test tests[] = {
    {"watch follows a task's every version over SSE", test_follows_over_sse},
    {"taskmill watch follows over SSE", test_cli_watch_uses_sse},
    {"a stream cut again and again resumes with Last-Event-ID", test_resumes_after_cuts},
    {"a keep-alive's id moves the resume point", test_resumes_from_a_keep_alive_id},
    {"a stream resumes across a server restart", test_resumes_across_restart},
    {"events_pruned on resume: the task is read again", test_rereads_after_pruned_events},
    {"no events path: watch and taskmill watch fall back to the long-poll",
     test_falls_back_to_long_poll},
    {"a stream cut right after its headers is opened again", test_stream_cut_after_its_headers},
    {"a stream refused 429 is opened again after its Retry-After", test_reopen_waits_retry_after},
    {"poll mode never opens a stream; sse mode reports the stream's 404",
     test_poll_mode_never_streams},
    {"a long-poll refused 503 with Retry-After is sent again", test_poll_survives_stopping},
    {"taskmill watch in poll mode survives a server restart", test_cli_poll_survives_restart},
    {"a stream that ends after an event it had is not reopened at once",
     test_stream_ending_at_once_is_paced},
    {"a long-poll answered at once with no newer version is paced",
     test_poll_answered_at_once_is_paced},
    {"tm_watch_wake from a signal handler ends the wait; one wake, one watch",
     test_wake_ends_the_wait},
    {NULL, NULL},
};

int main(int argc, char **argv) {
    unsetenv("TASKMILL_WATCH_MODE");
    if (th_server_start(&srv, "--sse-keepalive-ms", "500", NULL)) {
        printf("RESULT passed=0 failed=1\n");
        return 1;
    }
    int rc = th_main(tests, argc, argv);
    th_server_free(&srv);
    return rc;
}
