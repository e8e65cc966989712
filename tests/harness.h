/*
 * harness: taskmill's small test harness, for unit and integration tests.
 *
 * A test file lists its tests in a NULL-terminated table and calls
 * th_main. A CHECK that fails records file, line and expression, and ends
 * that test (the next test still runs). Each binary prints `run  NAME` as
 * a test starts and `ok   NAME` (or `FAIL NAME`, `skip NAME: why`) for its
 * outcome, and a last line `RESULT passed=N failed=M` that tests/run.sh
 * adds up into the suite's `N passed, N failed`; when run.sh's timeout
 * kills a binary, the last `run` line without an outcome names the test
 * that hung. Standard output is line-buffered, so nothing printed before
 * a hang is lost.
 *
 * Tests wait on conditions, not fixed times: WAIT_UNTIL polls a condition
 * up to a deadline and fails naming what it waited for. th_sleep_ms is
 * left for time that must pass by design (a window in which something
 * must not happen, a clock or lease boundary to cross), with a comment.
 *
 * Integration tests start the real server (TASKMILL_BIN, built with the
 * sanitizers) on port 0 with a temporary database, and talk HTTP to it
 * with libcurl. Single-threaded unless a test makes threads itself.
 *
 * The backend comes from the environment: with TASKMILL_TEST_PG set to a
 * PostgreSQL base URL (as scripts/pg.sh prints it), every server gets a
 * fresh database of its own, created with psql and dropped by
 * th_server_free; without it, a SQLite file in the server's temporary
 * directory. Tests read s->store for the URL either way. A server or
 * database a test leaves behind (a failed CHECK returns early) is killed
 * or dropped when the binary exits.
 */
#ifndef TASKMILL_HARNESS_H
#define TASKMILL_HARNESS_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <sys/types.h>

struct th_test {
    const char *name;
    void (*fn)(void);
};

int th_main(const struct th_test *tests, int argc, char **argv);
struct th_server;
/* th_main around one server every test shares: started first (extra args
 * NULL-ended after srv), freed last. Returns main's exit code. */
int th_main_server(const struct th_test *tests, int argc, char **argv, struct th_server *srv, ...);
void th_fail(const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
bool th_failed(void);
/* Marks the running test skipped (printed, counted as neither passed nor
 * failed) unless it also fails. For tests that do not apply to the backend. */
void th_skip(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#define CHECK(cond)                                          \
    do {                                                     \
        if (!(cond)) {                                       \
            th_fail(__FILE__, __LINE__, "CHECK(%s)", #cond); \
            return;                                          \
        }                                                    \
    } while (0)

#define CHECK_INT(a, b)                                                            \
    do {                                                                           \
        long long a_ = (long long)(a), b_ = (long long)(b);                        \
        if (a_ != b_) {                                                            \
            th_fail(__FILE__, __LINE__, "%s == %s: %lld != %lld", #a, #b, a_, b_); \
            return;                                                                \
        }                                                                          \
    } while (0)

#define CHECK_STR(a, b)                                                                       \
    do {                                                                                      \
        const char *a_ = (a), *b_ = (b);                                                      \
        if (!a_ || !b_ || strcmp(a_, b_) != 0) {                                              \
            th_fail(__FILE__, __LINE__, "%s == %s: '%s' != '%s'", #a, #b, a_ ? a_ : "(null)", \
                    b_ ? b_ : "(null)");                                                      \
            return;                                                                           \
        }                                                                                     \
    } while (0)

/* ---- A real server ---- */

struct th_server {
    pid_t pid;
    char url[128];
    char dir[256];   /* temporary: server.log, and the SQLite file */
    char db[300];    /* the SQLite file (there but unused on PostgreSQL) */
    char store[512]; /* the --store URL the server runs on, either backend */
    char pgdb[64];   /* PostgreSQL: the database's name; "" on SQLite */
    bool owns_db;    /* th_server_free drops pgdb (not so for a peer) */
    char *args[32];  /* the extra args, NULL-ended, borrowed: used again by restart */
};

/* Whether the tests run on PostgreSQL (TASKMILL_TEST_PG is set). */
bool th_backend_is_pg(void);

/* Starts `taskmill serve` on 127.0.0.1:0 with a fresh database; extra args may follow (NULL-ended).
 */
int th_server_start(struct th_server *s, ...);
/* Starts it again on the same database, with the same extra args (after th_server_stop). */
int th_server_restart(struct th_server *s);
/*
 * Starts another server (a second node) on the database of `of`, with its
 * own port and directory and the extra args given (NULL-ended; not those
 * of `of`). Several nodes on one database need PostgreSQL: on SQLite it
 * marks the test skipped (th_skip) and returns -1. On PostgreSQL it returns
 * 0, or -1 after th_fail when the server did not start. So a multi-node
 * test begins `if (th_server_start_peer(&b, &a, NULL)) return;` and is a
 * skip on SQLite, a failure on PostgreSQL. Free peers before `of`: its
 * th_server_free drops the database under them.
 */
int th_server_start_peer(struct th_server *peer, const struct th_server *of, ...);
/* SIGTERM and wait; `kill9` for a crash. Keeps the database. */
void th_server_stop(struct th_server *s, bool kill9);
/* Stops, removes the temporary directory and drops its PostgreSQL database (if it owns one). */
void th_server_free(struct th_server *s);

/*
 * PostgreSQL plumbing, for tests that open a store themselves: creates a
 * fresh database `tm_<pid>_<tag>_<n>` (tag: 16 random hex digits drawn once
 * per process) on TASKMILL_TEST_PG's cluster and writes its
 * name and URL (the base URL with its database replaced). Returns 0, or -1
 * (psql's message on stderr). Databases not dropped are dropped at exit.
 */
int th_pg_db_create(char name[64], char *url, size_t url_size);
/* Drops a database made by th_pg_db_create (WITH (FORCE)). Returns 0 or -1. */
int th_pg_db_drop(const char *name);
/* Runs one SQL statement with psql as the cluster's superuser, on its
 * `postgres` database (pg_terminate_backend and such). Returns 0 or -1. */
int th_pg_sql(const char *sql);
/* `base` (a postgres:// URL) with its database replaced by `dbname`. Returns 0, or -1 when
 * it is not a URL or does not fit. */
int th_pg_url(const char *base, const char *dbname, char *out, size_t n);

struct th_resp {
    long status;
    char *body;
    json_t *json; /* parsed body, or NULL */
    char headers[2048];
};

/*
 * Sends a request with an optional body (printf-style, may be NULL) with
 * Content-Type application/json. The response stays valid until the next
 * call of th_http in this thread (and is freed then).
 */
struct th_resp *th_http(struct th_server *s, const char *method, const char *path,
                        const char *body_fmt, ...) __attribute__((format(printf, 4, 5)));
/* As th_http with extra request headers ("Name: value", NULL-ended) and a raw body. */
struct th_resp *th_http_raw(struct th_server *s, const char *method, const char *path,
                            const char *body, size_t body_len, const char *const *headers);
/* The value of a response header, into out. */
bool th_resp_header(const struct th_resp *r, const char *name, char *out, size_t n);

/* Shortcuts. A dotted path into the JSON: "task.progress.ratio", "tasks.0.id". */
json_t *th_get(json_t *root, const char *path);
const char *th_str(json_t *root, const char *path);
long long th_int(json_t *root, const char *path);

/* Submits a task of `type` (body extra fields as JSON object text, may be NULL); returns its id. */
char *th_submit(struct th_server *s, const char *type, const char *extra_json);
/* Claims from a queue; fills id and token; returns the HTTP status. */
long th_claim(struct th_server *s, const char *queue, const char *body_json, char id[33],
              char token[33]);
/* Reads a task's phase (static buffer). */
const char *th_phase(struct th_server *s, const char *id);

/* The value of one series of the server's /metrics (`taskmill_parked_claims`,
 * `name{label="v"}`), or -1 when it is absent or /metrics does not answer.
 * Frees the last th_http response of this thread, as th_http does. */
long long th_metric(struct th_server *s, const char *series);

/* Sleeps ms: only for time that must pass by design (see the top). */
void th_sleep_ms(int ms);
/* A TCP connection to s (127.0.0.1, its port) with TCP_NODELAY, for tests
 * that write a request by hand; -1 when it cannot connect. */
int th_tcp_open(const struct th_server *s);
/* The same with SO_RCVBUF set to rcvbuf bytes before it connects (a client
 * slow to read: the server's sends stop once that and its own buffer are
 * full); rcvbuf 0 leaves the default. */
int th_tcp_open_rcvbuf(const struct th_server *s, int rcvbuf);
/* Milliseconds on the monotonic clock, for deadlines. */
long long th_now_ms(void);

/* ---- Waiting on a condition ---- */

#define TH_WAIT_POLL_MS 20

/*
 * Polls `cond` every TH_WAIT_POLL_MS until it holds, for at most
 * `timeout_ms`. When it still does not hold then, the test fails with
 * `waited N ms for WHAT` (WHAT: printf-style, what was awaited) and
 * WAIT_UNTIL returns, as CHECK does. TRY_WAIT_UNTIL records the same
 * failure but goes on with `ok` (a bool) false, for a test that must still
 * join its threads and free its servers. `cond` is evaluated once more
 * after the deadline has passed, never after it first holds.
 */
#define TRY_WAIT_UNTIL(ok, cond, timeout_ms, ...)                                        \
    do {                                                                                 \
        long long th_deadline_ = th_now_ms() + (timeout_ms);                             \
        while (!((ok) = (cond)) && th_now_ms() < th_deadline_)                           \
            th_sleep_ms(TH_WAIT_POLL_MS);                                                \
        if (!(ok)) th_wait_failed(__FILE__, __LINE__, (timeout_ms), #cond, __VA_ARGS__); \
    } while (0)

#define WAIT_UNTIL(cond, timeout_ms, ...)                      \
    do {                                                       \
        bool th_ok_;                                           \
        TRY_WAIT_UNTIL(th_ok_, cond, timeout_ms, __VA_ARGS__); \
        if (!th_ok_) return;                                   \
    } while (0)

/* ---- The server's wall clock ---- */

/* libfaketime's library, from scripts/deps.sh --test. */
#define TH_FAKETIME_LIB "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1"

/*
 * Sets the environment that runs the next server started with the wall
 * clock libfaketime's FAKETIME `at` gives (TH_FAKETIME_LIB must be there):
 * "@2026-12-01 01:59:50" (UTC) starts it there, "+5s" runs it 5 s ahead,
 * "-2d" two days behind; NULL puts it back. The monotonic clock stays true.
 */
void th_fake_clock(const char *at);
/* th_server_start (no extra args) on the wall clock `at` (th_fake_clock);
 * 0, or -1 after a th_fail saying why (libfaketime missing, or the
 * server's log), the server stopped. */
int th_server_start_at(struct th_server *s, const char *at);

/* ---- The server's name lookups ---- */

/*
 * Starts a server (th_server_start, no extra args) with the test library
 * tests/shim/resolve_log.c preloaded, which appends the host name of each
 * getaddrinfo call the server makes to a new file, whose path goes to
 * log (n bytes; the caller unlinks it). The library is built by `make
 * test-build` as testlib/libth_resolve_log.so beside TASKMILL_BIN. Under
 * AddressSanitizer, ASan's runtime is preloaded ahead of it, as ASan
 * needs to come first (its getaddrinfo then calls the library's, which
 * calls libc's). 0, or -1 after a th_fail saying why.
 */
int th_server_start_resolve_log(struct th_server *s, char *log, size_t n);
/* Whether the file a server logs its lookups in (above) has the line `host`. */
bool th_resolve_log_has(const char *log, const char *host);

/* The failure of a wait: th_fail with what was awaited, for how long, and the condition. */
void th_wait_failed(const char *file, int line, int timeout_ms, const char *cond, const char *fmt,
                    ...) __attribute__((format(printf, 5, 6)));

#endif
