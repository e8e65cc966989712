/*
 * The store failing under the server: the disk fills up (the server runs
 * under `ulimit -f`, so writes past the limit fail). Every write in a
 * failed batch is answered 500 and nothing of it is stored; the server
 * stays up, keeps answering, takes writes again once there is space (the
 * limit lifted with prlimit), keeps every acknowledged one through kill
 * -9, and exits cleanly with no sanitizer report.
 *
 * SQLite only: the database file is the server's own. On PostgreSQL the
 * database is another process's disk; its failures (connections cut, the
 * server stopped and started) are test_pg_reconnect.c and test_multinode.c.
 */
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "harness.h"

static void test_disk_full_fails_batches_cleanly(void) {
    if (th_backend_is_pg()) {
        th_skip(
            "the server's own disk filling up is a SQLite case; PostgreSQL's failures are "
            "test_pg_reconnect");
        return;
    }
    /* A wrapper that limits the size of the files the server may write. */
    char dir[] = "/tmp/taskmill-full-XXXXXX";
    CHECK(mkdtemp(dir));
    char wrapper[128];
    snprintf(wrapper, sizeof wrapper, "%s/taskmill", dir);
    const char *real = getenv("TASKMILL_BIN") ? getenv("TASKMILL_BIN") : "build/taskmill";
    FILE *f = fopen(wrapper, "w");
    CHECK(f);
    fprintf(f, "#!/bin/bash\ntrap '' XFSZ\nulimit -S -f 3000\nexec '%s' \"$@\"\n", real);
    fclose(f);
    chmod(wrapper, 0755);
    setenv("TASKMILL_BIN", wrapper, 1);
    struct th_server srv;
    int started = th_server_start(&srv, NULL);
    setenv("TASKMILL_BIN", real, 1);
    CHECK_INT(started, 0);

    /* 300 KB of params a task: the 3 MB limit is reached within a dozen. */
    size_t n = 300 * 1024;
    char *body = malloc(n + 100);
    int len = snprintf(body, n + 100, "{\"type\":\"big\",\"params\":{\"blob\":\"");
    memset(body + len, 'x', n);
    strcpy(body + len + n, "\"}}");
    static const char *const ct[] = {"Content-Type: application/json", NULL};
    int created = 0, failed = 0;
    for (int i = 0; i < 40 && failed < 3; i++) {
        struct th_resp *r = th_http_raw(&srv, "POST", "/v1/tasks", body, strlen(body), ct);
        if (r->status == 201)
            created++;
        else if (r->status == 500) {
            failed++;
            CHECK_STR(th_str(r->json, "error.code"), "internal");
        } else {
            th_fail(__FILE__, __LINE__, "unexpected status %ld: %.200s", r->status, r->body);
            break;
        }
    }
    CHECK(created > 0);
    CHECK(failed > 0);
    /* Still up, and only the acknowledged tasks are stored. */
    struct th_resp *r = th_http(&srv, "GET", "/v1/tasks?limit=1000", NULL);
    CHECK_INT(r->status, 200);
    CHECK_INT(json_array_size(th_get(r->json, "tasks")), created);
    CHECK_INT(th_http(&srv, "GET", "/healthz", NULL)->status, 200);

    /* Space comes back (the limit lifted on the running server): writes
     * succeed again, and every acknowledged one outlives kill -9. */
    char cmd0[200];
    snprintf(cmd0, sizeof cmd0, "prlimit --pid %d --fsize=unlimited:", (int)srv.pid);
    CHECK_INT(system(cmd0), 0);
    r = th_http_raw(&srv, "POST", "/v1/tasks", body, strlen(body), ct);
    CHECK_INT(r->status, 201);
    if (r->status == 201) created++;
    r = th_http(&srv, "POST", "/v1/tasks", "{\"type\":\"small\"}");
    CHECK_INT(r->status, 201);
    if (r->status == 201) created++;
    th_server_stop(&srv, true);
    CHECK_INT(th_server_restart(&srv), 0);
    r = th_http(&srv, "GET", "/v1/tasks?limit=1000", NULL);
    CHECK_INT(r->status, 200);
    CHECK_INT(json_array_size(th_get(r->json, "tasks")), created);
    free(body);
    th_server_free(&srv);
    char cmd[200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd)) {
    }
}

static const struct th_test tests[] = {
    {"a full disk fails whole batches, stores nothing of them, and the server lives on",
     test_disk_full_fails_batches_cleanly},
    {NULL, NULL},
};

int main(int argc, char **argv) {
    return th_main(tests, argc, argv) || th_failed();
}
