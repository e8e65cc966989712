/*
 * harness: see harness.h.
 */
#include "harness.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static int th_passed, th_nfailed, th_nskipped;
static void th_logs_show_live(void);
static bool th_cur_failed, th_cur_skipped;
static char th_skip_why[256];
static const char *th_cur_name;

void th_fail(const char *file, int line, const char *fmt, ...) {
    if (!th_cur_failed) printf("FAIL %s\n", th_cur_name);
    th_cur_failed = true;
    printf("    %s:%d: ", file, line);
    va_list ap;
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    printf("\n");
    fflush(stdout);
}

void th_wait_failed(const char *file, int line, int timeout_ms, const char *cond, const char *fmt,
                    ...) {
    char what[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    th_fail(file, line, "waited %d ms for %s: (%s) never held", timeout_ms, what, cond);
}

bool th_failed(void) {
    return th_cur_failed;
}

void th_skip(const char *fmt, ...) {
    th_cur_skipped = true;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(th_skip_why, sizeof th_skip_why, fmt, ap);
    va_end(ap);
}

/* Line-buffered standard output, set before main prints anything: what a
 * test printed before a hang reaches tests/run.sh even when it is killed. */
__attribute__((constructor)) static void th_stdout_by_line(void) {
    setvbuf(stdout, NULL, _IOLBF, 0);
}

int th_main(const struct th_test *tests, int argc, char **argv) {
    const char *only = argc > 1 ? argv[1] : NULL;
    signal(SIGPIPE, SIG_IGN);
    curl_global_init(CURL_GLOBAL_ALL);
    for (const struct th_test *t = tests; t->name; t++) {
        if (only && !strstr(t->name, only)) continue;
        th_cur_name = t->name;
        /* Before the test runs: what tests/run.sh names when the binary hangs. */
        printf("run  %s\n", t->name);
        fflush(stdout);
        th_cur_failed = th_cur_skipped = false;
        t->fn();
        if (th_cur_failed) {
            th_nfailed++;
            th_logs_show_live();
        } else if (th_cur_skipped) {
            th_nskipped++;
            printf("skip %s: %s\n", t->name, th_skip_why);
        } else {
            th_passed++;
            printf("ok   %s\n", t->name);
        }
        fflush(stdout);
    }
    th_http(NULL, NULL, NULL, NULL); /* frees the last response */
    curl_global_cleanup();
    if (th_nskipped)
        printf("RESULT passed=%d failed=%d skipped=%d\n", th_passed, th_nfailed, th_nskipped);
    else
        printf("RESULT passed=%d failed=%d\n", th_passed, th_nfailed);
    fflush(stdout); /* before any sanitizer report ends the process */
    return th_nfailed ? 1 : 0;
}

long long th_now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void th_sleep_ms(int ms) {
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) && errno == EINTR) {
    }
}

/* ---- Server ---- */

/*
 * What a test leaves behind when a CHECK returns early: servers still
 * running and PostgreSQL databases not dropped. Kept by value (a test's
 * struct th_server may be gone), cleared by stop and drop, and cleaned
 * up at exit so that nothing outlives the binary.
 */
#define TH_LEFT_MAX 64
static pthread_mutex_t th_left_lock = PTHREAD_MUTEX_INITIALIZER;
static pid_t th_left_pids[TH_LEFT_MAX];
static char th_left_dbs[TH_LEFT_MAX][64];
static pid_t th_left_owner; /* a forked child that calls exit() cleans up nothing */

static void th_left_cleanup(void) {
    if (getpid() != th_left_owner) return;
    pthread_mutex_lock(&th_left_lock);
    for (int i = 0; i < TH_LEFT_MAX; i++) {
        if (th_left_pids[i] <= 0) continue;
        kill(th_left_pids[i], SIGKILL);
        waitpid(th_left_pids[i], NULL, 0);
        th_left_pids[i] = 0;
    }
    char dbs[TH_LEFT_MAX][64];
    memcpy(dbs, th_left_dbs, sizeof dbs);
    pthread_mutex_unlock(&th_left_lock);
    for (int i = 0; i < TH_LEFT_MAX; i++)
        if (dbs[i][0]) th_pg_db_drop(dbs[i]);
}

static void th_left_arm(void) {
    if (!th_left_owner) {
        th_left_owner = getpid();
        atexit(th_left_cleanup);
    }
}

static void th_left_pid(pid_t pid, bool add) {
    pthread_mutex_lock(&th_left_lock);
    th_left_arm();
    for (int i = 0; i < TH_LEFT_MAX; i++) {
        if (add ? th_left_pids[i] == 0 : th_left_pids[i] == pid) {
            th_left_pids[i] = add ? pid : 0;
            break;
        }
    }
    pthread_mutex_unlock(&th_left_lock);
}

static void th_left_db(const char *name, bool add) {
    pthread_mutex_lock(&th_left_lock);
    th_left_arm();
    for (int i = 0; i < TH_LEFT_MAX; i++) {
        if (add ? th_left_dbs[i][0] == '\0' : strcmp(th_left_dbs[i], name) == 0) {
            snprintf(th_left_dbs[i], sizeof th_left_dbs[i], "%s", add ? name : "");
            break;
        }
    }
    pthread_mutex_unlock(&th_left_lock);
}

/* The logs of the servers not yet freed, shown when a test fails: a CHECK
 * returns before the test's th_server_free, and the log goes with the
 * server's directory when it is freed. */
static char th_logs[TH_LEFT_MAX][300];

static void th_log_note(const char *dir, bool add) {
    char log[300];
    snprintf(log, sizeof log, "%s/server.log", dir);
    pthread_mutex_lock(&th_left_lock);
    for (int i = 0; i < TH_LEFT_MAX; i++) {
        if (add && strcmp(th_logs[i], log) == 0) break;
        if (add ? th_logs[i][0] == '\0' : strcmp(th_logs[i], log) == 0) {
            snprintf(th_logs[i], sizeof th_logs[i], "%s", add ? log : "");
            break;
        }
    }
    pthread_mutex_unlock(&th_left_lock);
}

static void th_log_show(const char *log) {
    printf("    harness: the test failed; the end of %s:\n", log);
    fflush(stdout);
    char cmd[400];
    snprintf(cmd, sizeof cmd, "tail -n 40 '%s' | sed 's/^/      /'", log);
    if (system(cmd)) {
    }
}

static void th_logs_show_live(void) {
    for (int i = 0; i < TH_LEFT_MAX; i++)
        if (th_logs[i][0]) th_log_show(th_logs[i]);
}

bool th_backend_is_pg(void) {
    const char *pg = getenv("TASKMILL_TEST_PG");
    return pg && *pg;
}

int th_pg_url(const char *base, const char *dbname, char *out, size_t n) {
    const char *host = strstr(base, "://");
    if (!host) return -1;
    host += 3;
    /* The path starts at the first '/' before any '?': a socket directory
     * in the query (host=/tmp/...) is not the path. */
    size_t auth = strcspn(host, "/?");
    const char *query = strchr(host, '?');
    int len =
        snprintf(out, n, "%.*s/%s%s", (int)(host + auth - base), base, dbname, query ? query : "");
    return len < 0 || (size_t)len >= n ? -1 : 0;
}

/* Runs one SQL statement with psql on the base URL's own database; its
 * messages go to stderr. Bounded: a connect and a statement timeout. */
static int th_psql(const char *sql) {
    const char *base = getenv("TASKMILL_TEST_PG");
    if (!base || !*base) return -1;
    char conn[1024];
    int len =
        snprintf(conn, sizeof conn, "%s%sconnect_timeout=10&options=-cstatement_timeout%%3D60000",
                 base, strchr(base, '?') ? "&" : "?");
    if (len < 0 || (size_t)len >= sizeof conn) return -1;
    char *argv[] = {"psql", "-X", "-q", "-v",        "ON_ERROR_STOP=1",
                    "-d",   conn, "-c", (char *)sql, NULL};
    pid_t pid = fork();
    if (pid < 0) return -1;
    if (pid == 0) {
        int null = open("/dev/null", O_RDWR);
        if (null >= 0) {
            dup2(null, 0);
            dup2(null, 1);
        }
        execvp("psql", argv);
        _exit(127);
    }
    int status;
    while (waitpid(pid, &status, 0) < 0) {
        if (errno != EINTR) return -1;
    }
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return 0;
    fprintf(stderr, "harness: psql failed (status %d): %s\n", status, sql);
    return -1;
}

int th_pg_sql(const char *sql) {
    return th_psql(sql);
}

/*
 * A random tag drawn once per process, in the names of its databases. The
 * pid alone was not enough: a test binary killed by its timeout leaves its
 * databases behind, and a later binary given the same pid (pid_max can be
 * 32768) collided with them ('database "tm_<pid>_1" already exists').
 */
static char th_pg_tag[17];
static pthread_once_t th_pg_tag_once = PTHREAD_ONCE_INIT;

static void th_pg_tag_draw(void) {
    uint64_t r = 0;
    if (getrandom(&r, sizeof r, 0) != (ssize_t)sizeof r) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        r = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
    }
    snprintf(th_pg_tag, sizeof th_pg_tag, "%016llx", (unsigned long long)r);
}

int th_pg_db_create(char name[64], char *url, size_t url_size) {
    static int counter;
    int n = __atomic_add_fetch(&counter, 1, __ATOMIC_RELAXED);
    pthread_once(&th_pg_tag_once, th_pg_tag_draw);
    snprintf(name, 64, "tm_%ld_%s_%d", (long)getpid(), th_pg_tag, n);
    const char *base = getenv("TASKMILL_TEST_PG");
    if (!base || th_pg_url(base, name, url, url_size)) {
        fprintf(stderr, "harness: TASKMILL_TEST_PG '%s' is not a postgres:// URL\n",
                base ? base : "");
        return -1;
    }
    char sql[128];
    snprintf(sql, sizeof sql, "CREATE DATABASE %s", name);
    if (th_psql(sql)) return -1;
    th_left_db(name, true);
    return 0;
}

int th_pg_db_drop(const char *name) {
    char sql[128];
    snprintf(sql, sizeof sql, "DROP DATABASE IF EXISTS %s WITH (FORCE)", name);
    int rc = th_psql(sql);
    if (rc == 0) th_left_db(name, false);
    return rc;
}

/* LD_PRELOAD for the next server spawned only (th_server_start_resolve_log): set in its
 * child, not in the environment, where psql (creating its PostgreSQL database) would load
 * ASan's runtime too. */
static char th_spawn_preload[1200];

static int th_spawn(struct th_server *s) {
    const char *bin = getenv("TASKMILL_BIN");
    if (!bin) bin = "build/taskmill";
    int out[2];
    if (pipe(out)) return -1;
    char *argv[40] = {(char *)bin, "serve", "--listen", "127.0.0.1:0", "--store", s->store};
    int n = 6;
    for (int i = 0; s->args[i] && n < 39; i++)
        argv[n++] = s->args[i];
    argv[n] = NULL;
    char log[300];
    snprintf(log, sizeof log, "%s/server.log", s->dir);
    th_log_note(s->dir, true);
    pid_t pid = fork();
    if (pid == 0) {
        dup2(out[1], 1);
        FILE *f = fopen(log, "a");
        if (f) dup2(fileno(f), 2);
        close(out[0]);
        close(out[1]);
        if (th_spawn_preload[0]) setenv("LD_PRELOAD", th_spawn_preload, 1);
        execv(bin, argv);
        _exit(127);
    }
    close(out[1]);
    s->pid = pid;
    if (pid > 0) th_left_pid(pid, true);
    FILE *f = fdopen(out[0], "r");
    char line[256] = "";
    if (!f || !fgets(line, sizeof line, f)) {
        fprintf(stderr, "harness: server did not start (see %s)\n", log);
        if (f) fclose(f);
        return -1;
    }
    /* Keep reading stdout in the background is unnecessary: the server prints one line. */
    fclose(f);
    const char *prefix = "taskmill listening on ";
    if (strncmp(line, prefix, strlen(prefix)) != 0) return -1;
    snprintf(s->url, sizeof s->url, "%s", line + strlen(prefix));
    s->url[strcspn(s->url, "\r\n")] = '\0';
    return 0;
}

/* A fresh temporary directory for s, and its extra args from ap. */
static int th_server_prepare(struct th_server *s, va_list ap) {
    memset(s, 0, sizeof *s);
    snprintf(s->dir, sizeof s->dir, "%s/taskmill-test-XXXXXX",
             getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    if (!mkdtemp(s->dir)) return -1;
    snprintf(s->db, sizeof s->db, "%s/t.db", s->dir);
    int n = 0;
    for (char *a; (a = va_arg(ap, char *)) && n < 31;)
        s->args[n++] = a;
    s->args[n] = NULL;
    return 0;
}

/* th_server_start with the extra arguments as a va_list. */
static int th_server_startv(struct th_server *s, va_list ap) {
    if (th_server_prepare(s, ap)) return -1;
    if (th_backend_is_pg()) {
        if (th_pg_db_create(s->pgdb, s->store, sizeof s->store)) {
            s->pgdb[0] = '\0';
            return -1;
        }
        s->owns_db = true;
    } else {
        snprintf(s->store, sizeof s->store, "sqlite:%s", s->db);
    }
    return th_spawn(s);
}

int th_server_start(struct th_server *s, ...) {
    va_list ap;
    va_start(ap, s);
    int rc = th_server_startv(s, ap);
    va_end(ap);
    return rc;
}

int th_server_start_peer(struct th_server *peer, const struct th_server *of, ...) {
    if (!of->pgdb[0]) {
        memset(peer, 0, sizeof *peer);
        th_skip("several servers on one database need PostgreSQL (TASKMILL_TEST_PG)");
        return -1;
    }
    va_list ap;
    va_start(ap, of);
    int rc = th_server_prepare(peer, ap);
    va_end(ap);
    if (rc == 0) {
        snprintf(peer->store, sizeof peer->store, "%s", of->store);
        snprintf(peer->pgdb, sizeof peer->pgdb, "%s", of->pgdb);
        rc = th_spawn(peer);
    }
    if (rc)
        th_fail(__FILE__, __LINE__, "peer server on '%s' did not start (log %s/server.log)",
                of->pgdb, peer->dir);
    return rc;
}

int th_main_server(const struct th_test *tests, int argc, char **argv, struct th_server *srv, ...) {
    va_list ap;
    va_start(ap, srv);
    int started = th_server_startv(srv, ap);
    va_end(ap);
    if (started) {
        printf("RESULT passed=0 failed=1\n");
        return 1;
    }
    int rc = th_main(tests, argc, argv);
    th_server_free(srv);
    return rc || th_failed();
}

int th_server_restart(struct th_server *s) {
    return th_spawn(s);
}

/* How long a server may take to stop after SIGTERM before it is taken for
 * hung (killed, the test failed): far past a clean stop under the
 * sanitizers on a loaded machine, well inside tests/run.sh's limit, so a
 * hang is named here and the binary's other tests still run. */
#define TH_STOP_MS 120000

void th_server_stop(struct th_server *s, bool kill9) {
    if (s->pid <= 0) return;
    kill(s->pid, kill9 ? SIGKILL : SIGTERM);
    if (!kill9) kill(s->pid, SIGCONT); /* one a failed test left stopped (SIGSTOP) */
    int status = 0;
    bool hung = false;
    for (long long end = th_now_ms() + TH_STOP_MS;;) {
        pid_t w = waitpid(s->pid, &status, WNOHANG);
        if (w == s->pid || (w < 0 && errno != EINTR)) break;
        if (!hung && th_now_ms() >= end) {
            hung = true;
            kill(s->pid, SIGKILL); /* then reaped on the next turn */
        }
        th_sleep_ms(w == 0 ? 20 : 0);
    }
    th_left_pid(s->pid, false);
    if (hung) {
        printf(
            "    harness: server %d did not stop within %d s of SIGTERM; killed; log "
            "%s/server.log:\n",
            (int)s->pid, TH_STOP_MS / 1000, s->dir);
        char cmd[400];
        snprintf(cmd, sizeof cmd, "tail -n 30 %s/server.log | sed 's/^/      /'", s->dir);
        if (system(cmd)) {
        }
        th_fail(__FILE__, __LINE__, "server did not stop within %d s", TH_STOP_MS / 1000);
        s->pid = 0;
        return;
    }
    if (!kill9 && (!WIFEXITED(status) || WEXITSTATUS(status) != 0)) {
        printf("    harness: server exited badly (status %d); log %s/server.log:\n", status,
               s->dir);
        char cmd[400];
        snprintf(cmd, sizeof cmd, "tail -n 30 %s/server.log | sed 's/^/      /'", s->dir);
        if (system(cmd)) {
        }
        th_fail(__FILE__, __LINE__, "server exit status %d", status);
    }
    s->pid = 0;
}

void th_server_free(struct th_server *s) {
    /* A failed test's server log goes with its directory: show its end first
     * (th_server_stop shows it when the server exited badly). */
    bool failed = th_cur_failed;
    th_server_stop(s, false);
    if (s->dir[0]) {
        char log[300];
        snprintf(log, sizeof log, "%s/server.log", s->dir);
        if (failed) th_log_show(log);
        th_log_note(s->dir, false);
    }
    /* A sanitizer report in the log is a failure even when the status was 0. */
    char cmd[400];
    snprintf(cmd, sizeof cmd,
             "grep -q -E 'ERROR: (Address|Leak)Sanitizer|runtime error:' %s/server.log", s->dir);
    if (s->dir[0] && system(cmd) == 0) {
        snprintf(cmd, sizeof cmd, "grep -A20 -E 'Sanitizer|runtime error' %s/server.log | head -40",
                 s->dir);
        if (system(cmd)) {
        }
        th_fail(__FILE__, __LINE__, "sanitizer report in the server log");
    }
    /* So is libmicrohttpd's complaint about an option the server gave it. */
    snprintf(
        cmd, sizeof cmd,
        "grep -E 'passed to MHD but|Invalid option [0-9]|is not the first option' %s/server.log",
        s->dir);
    if (s->dir[0] && system(cmd) == 0)
        th_fail(__FILE__, __LINE__, "libmicrohttpd refused an option (above, from the server log)");
    if (s->pgdb[0] && s->owns_db) th_pg_db_drop(s->pgdb);
    s->pgdb[0] = '\0';
    s->owns_db = false;
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", s->dir);
    if (s->dir[0] && system(cmd)) {
    }
    s->dir[0] = '\0';
}

/* ---- HTTP ---- */

struct th_buf {
    char *p;
    size_t n;
};

static size_t th_write(char *data, size_t size, size_t nmemb, void *cls) {
    struct th_buf *b = cls;
    size_t n = size * nmemb;
    b->p = realloc(b->p, b->n + n + 1);
    memcpy(b->p + b->n, data, n);
    b->n += n;
    b->p[b->n] = '\0';
    return n;
}

static size_t th_header(char *data, size_t size, size_t nmemb, void *cls) {
    struct th_resp *r = cls;
    size_t n = size * nmemb, have = strlen(r->headers);
    if (have + n < sizeof r->headers) {
        memcpy(r->headers + have, data, n);
        r->headers[have + n] = '\0';
    }
    return n;
}

static __thread struct th_resp th_last;
static __thread CURL *th_curl;

struct th_resp *th_http_raw(struct th_server *s, const char *method, const char *path,
                            const char *body, size_t body_len, const char *const *headers) {
    free(th_last.body);
    json_decref(th_last.json);
    memset(&th_last, 0, sizeof th_last);
    if (!s) {
        if (th_curl) curl_easy_cleanup(th_curl);
        th_curl = NULL;
        return NULL;
    }
    if (!th_curl) th_curl = curl_easy_init();
    CURL *c = th_curl;
    curl_easy_reset(c);
    char url[16384]; /* long queries too (filter cost tests) */
    snprintf(url, sizeof url, "%s%s", s->url, path);
    struct th_buf b = {NULL, 0};
    struct curl_slist *h = NULL;
    for (int i = 0; headers && headers[i]; i++)
        h = curl_slist_append(h, headers[i]);
    h = curl_slist_append(h, "Expect:");
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, th_write);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, th_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, &th_last);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 90L);
    if (strcmp(method, "HEAD") == 0) curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
    if (body) {
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)body_len);
    }
    CURLcode rc = curl_easy_perform(c);
    curl_slist_free_all(h);
    if (rc != CURLE_OK) {
        th_last.status = -1;
        th_last.body = b.p ? b.p : strdup(curl_easy_strerror(rc));
        return &th_last;
    }
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &th_last.status);
    th_last.body = b.p ? b.p : strdup("");
    th_last.json = json_loads(th_last.body, JSON_DECODE_ANY, NULL);
    return &th_last;
}

struct th_resp *th_http(struct th_server *s, const char *method, const char *path,
                        const char *body_fmt, ...) {
    if (!s) return th_http_raw(NULL, NULL, NULL, NULL, 0, NULL);
    char *body = NULL;
    if (body_fmt) {
        va_list ap;
        va_start(ap, body_fmt);
        if (vasprintf(&body, body_fmt, ap) < 0) body = NULL;
        va_end(ap);
    }
    static const char *const json_ct[] = {"Content-Type: application/json", NULL};
    struct th_resp *r = th_http_raw(s, method, path, body, body ? strlen(body) : 0, json_ct);
    free(body);
    return r;
}

bool th_resp_header(const struct th_resp *r, const char *name, char *out, size_t n) {
    size_t len = strlen(name);
    for (const char *p = r->headers; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL) {
        if (strncasecmp(p, name, len) == 0 && p[len] == ':') {
            p += len + 1;
            while (*p == ' ')
                p++;
            size_t m = strcspn(p, "\r\n");
            snprintf(out, n, "%.*s", (int)m, p);
            return true;
        }
    }
    return false;
}

json_t *th_get(json_t *root, const char *path) {
    char tmp[256];
    snprintf(tmp, sizeof tmp, "%s", path);
    json_t *v = root;
    char *save = NULL;
    for (char *k = strtok_r(tmp, ".", &save); k && v; k = strtok_r(NULL, ".", &save)) {
        if (json_is_array(v))
            v = json_array_get(v, strtoul(k, NULL, 10));
        else
            v = json_object_get(v, k);
    }
    return v;
}

const char *th_str(json_t *root, const char *path) {
    return json_string_value(th_get(root, path));
}

long long th_int(json_t *root, const char *path) {
    json_t *v = th_get(root, path);
    return json_is_integer(v) ? json_integer_value(v) : -999999;
}

char *th_submit(struct th_server *s, const char *type, const char *extra_json) {
    struct th_resp *r;
    if (extra_json && *extra_json)
        r = th_http(s, "POST", "/v1/tasks", "{\"type\":\"%s\",%s}", type, extra_json);
    else
        r = th_http(s, "POST", "/v1/tasks", "{\"type\":\"%s\"}", type);
    if (r->status != 201 && r->status != 200) {
        printf("    harness: submit failed: %ld %s\n", r->status, r->body);
        return NULL;
    }
    return strdup(th_str(r->json, "id"));
}

long th_claim(struct th_server *s, const char *queue, const char *body_json, char id[33],
              char token[33]) {
    char path[128];
    snprintf(path, sizeof path, "/v1/queues/%s/claim", queue);
    struct th_resp *r =
        th_http(s, "POST", path, "%s", body_json ? body_json : "{\"worker\":\"w\"}");
    id[0] = token[0] = '\0';
    if (r->status == 200) {
        snprintf(id, 33, "%s", th_str(r->json, "task.id"));
        snprintf(token, 33, "%s", th_str(r->json, "lease_token"));
    }
    return r->status;
}

long long th_metric(struct th_server *s, const char *series) {
    struct th_resp *r = th_http(s, "GET", "/metrics", NULL);
    if (r->status != 200 || !r->body) return -1;
    size_t n = strlen(series);
    for (const char *p = r->body; p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL) {
        if (strncmp(p, series, n) == 0 && p[n] == ' ') return atoll(p + n + 1);
    }
    return -1;
}

const char *th_phase(struct th_server *s, const char *id) {
    static __thread char phase[32];
    char path[128];
    snprintf(path, sizeof path, "/v1/tasks/%s", id);
    struct th_resp *r = th_http(s, "GET", path, NULL);
    snprintf(phase, sizeof phase, "%s", r->status == 200 ? th_str(r->json, "phase") : "?");
    return phase;
}

int th_tcp_open(const struct th_server *s) {
    return th_tcp_open_rcvbuf(s, 0);
}

int th_tcp_open_rcvbuf(const struct th_server *s, int rcvbuf) {
    /* A server that did not start has no URL: no connection, not a crash. */
    const char *colon = strrchr(s->url, ':');
    if (!colon) return -1;
    int port = atoi(colon + 1);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    /* Before connect: the window the client offers is set from it. */
    if (fd >= 0 && rcvbuf > 0) setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
    struct sockaddr_in dst = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    inet_pton(AF_INET, "127.0.0.1", &dst.sin_addr);
    if (fd < 0 || connect(fd, (struct sockaddr *)&dst, sizeof dst)) {
        if (fd >= 0) close(fd);
        return -1;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    return fd;
}

void th_fake_clock(const char *at) {
    static char *asan_was;
    static bool saved;
    if (at) {
        const char *asan = getenv("ASAN_OPTIONS");
        asan_was = asan ? strdup(asan) : NULL;
        saved = true;
        char asan_now[512];
        snprintf(asan_now, sizeof asan_now, "%s%sverify_asan_link_order=0", asan ? asan : "",
                 asan && *asan ? ":" : "");
        setenv("ASAN_OPTIONS", asan_now, 1);
        setenv("LD_PRELOAD", TH_FAKETIME_LIB, 1);
        setenv("FAKETIME", at, 1);
        setenv("TZ", "UTC", 1);
        /* Both, or libfaketime's own timed waits return at once and spin. */
        setenv("FAKETIME_DONT_FAKE_MONOTONIC", "1", 1);
        setenv("FAKETIME_FORCE_MONOTONIC_FIX", "0", 1);
        return;
    }
    unsetenv("LD_PRELOAD");
    unsetenv("FAKETIME");
    unsetenv("FAKETIME_DONT_FAKE_MONOTONIC");
    unsetenv("FAKETIME_FORCE_MONOTONIC_FIX");
    if (saved && asan_was)
        setenv("ASAN_OPTIONS", asan_was, 1);
    else if (saved)
        unsetenv("ASAN_OPTIONS");
    free(asan_was);
    asan_was = NULL;
    saved = false;
}

/* The path of the sanitizer runtime this process runs with ("" when none), from its maps:
 * the same build's server loads the same one. */
static void th_asan_runtime(char *out, size_t n) {
    out[0] = '\0';
    FILE *f = fopen("/proc/self/maps", "r");
    if (!f) return;
    char line[1024];
    while (fgets(line, sizeof line, f)) {
        const char *path = strchr(line, '/');
        if (!path || !strstr(path, "/libasan.so")) continue;
        snprintf(out, n, "%.*s", (int)strcspn(path, "\n"), path);
        break;
    }
    fclose(f);
}

int th_server_start_resolve_log(struct th_server *s, char *log, size_t n) {
    const char *bin = getenv("TASKMILL_BIN");
    if (!bin) bin = "build/taskmill";
    char lib[600], asan[512];
    snprintf(lib, sizeof lib, "%.*s/testlib/libth_resolve_log.so",
             strrchr(bin, '/') ? (int)(strrchr(bin, '/') - bin) : 1, strrchr(bin, '/') ? bin : ".");
    if (access(lib, R_OK) != 0) {
        th_fail(__FILE__, __LINE__, "%s is missing: 'make test-build' builds it", lib);
        return -1;
    }
    snprintf(log, n, "%s/taskmill-resolve-XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    int fd = mkstemp(log);
    if (fd < 0) {
        th_fail(__FILE__, __LINE__, "cannot make '%s'", log);
        return -1;
    }
    close(fd);
    th_asan_runtime(asan, sizeof asan);
    snprintf(th_spawn_preload, sizeof th_spawn_preload, "%s%s%s", asan, asan[0] ? " " : "", lib);
    setenv("TH_RESOLVE_LOG", log, 1);
    int rc = th_server_start(s, NULL);
    th_spawn_preload[0] = '\0';
    unsetenv("TH_RESOLVE_LOG");
    if (rc) {
        th_fail(__FILE__, __LINE__, "the server did not start (log %s/server.log)", s->dir);
        th_server_stop(s, true);
        return -1;
    }
    return 0;
}

bool th_resolve_log_has(const char *log, const char *host) {
    FILE *f = fopen(log, "r");
    if (!f) return false;
    char line[1100];
    bool found = false;
    while (!found && fgets(line, sizeof line, f)) {
        line[strcspn(line, "\n")] = '\0';
        found = strcmp(line, host) == 0;
    }
    fclose(f);
    return found;
}

int th_server_start_at(struct th_server *s, const char *at) {
    if (access(TH_FAKETIME_LIB, R_OK) != 0) {
        th_fail(__FILE__, __LINE__, "%s is missing: scripts/deps.sh --test installs faketime",
                TH_FAKETIME_LIB);
        return -1;
    }
    th_fake_clock(at);
    int rc = th_server_start(s, NULL);
    th_fake_clock(NULL);
    if (rc) {
        th_fail(__FILE__, __LINE__, "the server did not start (log %s/server.log)", s->dir);
        th_server_stop(s, true);
        return -1;
    }
    return 0;
}
