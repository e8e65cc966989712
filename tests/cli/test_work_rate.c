/*
 * A server that asks its clients to slow down (`--max-rate`: 429 with
 * Retry-After: 1), against the real server: a command refused for rate
 * says when to try again and exits 5.
 *
 * The tests make tokens (the server is closed from then on).
 */
#include <stdio.h>
#include <stdlib.h>

#include "cli_run.h"
#include "harness.h"
#include "integration/sec_util.h"

static struct th_server srv;
static char own[128]; /* the first token: it closes the server */

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

static const struct th_test tests[] = {
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
