/*
 * sec_util: helpers of the security tests (test_auth, test_limits,
 * test_tls): running the `taskmill token` CLI against a test server's
 * database, and requests that carry a bearer token. Header-only, static,
 * so that each test binary stays one .c file plus the harness.
 * Single-threaded unless noted; th_http_raw's response rules apply.
 */
#ifndef TASKMILL_SEC_UTIL_H
#define TASKMILL_SEC_UTIL_H

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "harness.h"

static inline const char *sec_bin(void) {
    return getenv("TASKMILL_BIN") ? getenv("TASKMILL_BIN") : "build/taskmill";
}

/* Runs a shell command, capturing stdout into out; returns its exit status. */
static inline int sec_cli(char *out, size_t n, const char *fmt, ...) {
    char cmd[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    FILE *p = popen(cmd, "r");
    if (!p) return -1;
    size_t got = 0;
    if (out && n) {
        got = fread(out, 1, n - 1, p);
        out[got] = '\0';
    }
    char sink[256];
    while (fread(sink, 1, sizeof sink, p) > 0) {
    }
    int st = pclose(p);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/*
 * Makes a token in the server's store with `taskmill token create --json`.
 * Fills bearer (the secret string) and id. `extra` is more CLI flags or "".
 */
static inline int sec_token(struct th_server *s, const char *role, const char *ns,
                            const char *extra, char bearer[128], char id[32]) {
    char out[2048];
    int rc = sec_cli(out, sizeof out,
                     "%s token create --store '%s' --role %s --namespace %s %s --json "
                     "2>/dev/null",
                     sec_bin(), s->store, role, ns, extra ? extra : "");
    json_t *j = json_loads(out, 0, NULL);
    const char *sec = json_string_value(json_object_get(j, "secret"));
    const char *tid = json_string_value(json_object_get(j, "id"));
    if (rc != 0 || !sec || !tid) {
        printf("    sec_token: create failed (exit %d): %s\n", rc, out);
        json_decref(j);
        return -1;
    }
    snprintf(bearer, 128, "%s", sec);
    snprintf(id, 32, "%s", tid);
    json_decref(j);
    return 0;
}

/* A request with `Authorization: Bearer <bearer>` (none when bearer is NULL). */
static inline struct th_resp *sec_http(struct th_server *s, const char *bearer, const char *method,
                                       const char *path, const char *body) {
    char auth[256];
    snprintf(auth, sizeof auth, "Authorization: Bearer %s", bearer ? bearer : "");
    const char *h[] = {"Content-Type: application/json", bearer ? auth : NULL, NULL};
    return th_http_raw(s, method, path, body, body ? strlen(body) : 0, h);
}

/* Whether the server log contains `needle`, waiting up to ms for it (the
 * server logs after it answers). */
static inline bool sec_log_within(struct th_server *s, const char *needle, int ms) {
    char path[400];
    snprintf(path, sizeof path, "%s/server.log", s->dir);
    for (long long end = th_now_ms() + ms;; th_sleep_ms(50)) {
        bool late = th_now_ms() >= end; /* one more look after the deadline */
        FILE *f = fopen(path, "r");
        if (f) {
            char line[1024];
            bool found = false;
            while (!found && fgets(line, sizeof line, f))
                found = strstr(line, needle) != NULL;
            fclose(f);
            if (found) return true;
        }
        if (late) return false;
    }
}

/* How many lines of the server log hold a (and b, when not NULL) now. */
static inline int sec_log_lines(struct th_server *s, const char *a, const char *b) {
    char path[400];
    snprintf(path, sizeof path, "%s/server.log", s->dir);
    FILE *f = fopen(path, "r");
    int n = 0;
    char line[2048];
    while (f && fgets(line, sizeof line, f))
        n += strstr(line, a) && (!b || strstr(line, b));
    if (f) fclose(f);
    return n;
}

/* Whether the server log comes to contain `needle`, within 20 s: a
 * deadline, not a speed (a loaded machine with the sanitizers can take
 * more than a second to write a line after its answer). */
static inline bool sec_log_has(struct th_server *s, const char *needle) {
    return sec_log_within(s, needle, 20000);
}

#endif
