/*
 * A store URL's password reaches no line taskmill writes: not `serve`'s
 * start-up lines (the store it runs on, the refusal to listen without a
 * token and the `taskmill token create --store ...` it suggests), nor the
 * error for a URL whose scheme names no backend (a typo), from `serve` or
 * `taskmill token`. libpq takes a password in the URL's userinfo
 * (`postgres://u:pw@h/db`) or as a parameter (`?password=pw`); both show
 * as `***`. On PostgreSQL a real server is started on such URLs (the test
 * cluster trusts local connections, so libpq never sends the password).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "sec_util.h"

/* Runs `taskmill ARGS` (stopped by SIGINT after 3 s if it serves), its
 * stdout and stderr into said; its exit status. */
static int run_bounded(char *said, size_t n, const char *args) {
    return sec_cli(said, n, "timeout --preserve-status -s INT 3 %s %s 2>&1", sec_bin(), args);
}

static void check_hidden(int line, const char *said, const char *secret, const char *shown) {
    if (strstr(said, secret) || !strstr(said, shown))
        th_fail(__FILE__, line, "want '%s' and no '%s' in: %s", shown, secret, said);
}

static void test_unknown_scheme_hides_password(void) {
    char said[4096];
    CHECK(run_bounded(
              said, sizeof said,
              "serve --listen 127.0.0.1:0 --store 'postgress://ann:hunter2@db.example/x'") != 0);
    CHECK(strstr(said, "names no known backend") != NULL);
    check_hidden(__LINE__, said, "hunter2", "postgress://ann:***@db.example/x");
    CHECK(run_bounded(said, sizeof said,
                      "token list --store 'postgress://ann@db.example/x?password=hunter2'") != 0);
    CHECK(strstr(said, "names no known backend") != NULL);
    check_hidden(__LINE__, said, "hunter2", "?password=***");
    /* libpq decodes a parameter's name: "pass%77ord" is "password". */
    CHECK(run_bounded(said, sizeof said,
                      "token list --store 'postgress://h/x?sslmode=disable&pass%77ord=hunter2'") !=
          0);
    check_hidden(__LINE__, said, "hunter2", "&pass%77ord=***");
    /* The scheme left out: the userinfo is still one (it was shown whole). */
    CHECK(run_bounded(said, sizeof said, "serve --listen 127.0.0.1:0 --store 'ann:hunter2@db/x'") !=
          0);
    CHECK(strstr(said, "names no known backend") != NULL);
    check_hidden(__LINE__, said, "hunter2", "'ann:***@db/x'");
    CHECK(run_bounded(said, sizeof said, "token list --store 'mysql:ann:hunter2@db'") != 0);
    check_hidden(__LINE__, said, "hunter2", "'mysql:***@db'");
}

/* A server on PostgreSQL, the password in the URL both ways. */
static void test_serve_lines_hide_password(void) {
    if (!th_backend_is_pg()) {
        /* No PostgreSQL: the SQLite URL has no password, and is shown whole. */
        char said[4096], dir[] = "/tmp/taskmill-secrets-XXXXXX", args[512];
        CHECK(mkdtemp(dir) != NULL);
        snprintf(args, sizeof args, "serve --listen 127.0.0.1:0 --store sqlite:%s/a.db", dir);
        CHECK_INT(run_bounded(said, sizeof said, args), 0);
        snprintf(args, sizeof args, "taskmill: store sqlite:%s/a.db", dir);
        CHECK(strstr(said, args) != NULL);
        snprintf(args, sizeof args, "rm -rf '%s'", dir);
        CHECK_INT(system(args), 0);
        return;
    }
    char name[64], url[512];
    CHECK_INT(th_pg_db_create(name, url, sizeof url), 0);
    /* postgres://taskmill@/DB?host=...: the user gets a password, and the
     * query one more parameter. */
    char with_user[600], with_param[600], args[1400], said[8192];
    const char *at = strchr(url, '@');
    CHECK(at != NULL);
    snprintf(with_user, sizeof with_user, "%.*s:hunter2%s", (int)(at - url), url, at);
    snprintf(with_param, sizeof with_param, "%s%spassword=hunter3", url,
             strchr(url, '?') ? "&" : "?");
    snprintf(args, sizeof args, "serve --listen 127.0.0.1:0 --store '%s'", with_user);
    CHECK_INT(run_bounded(said, sizeof said, args), 0);
    CHECK(strstr(said, "taskmill listening on http://") != NULL);
    check_hidden(__LINE__, said, "hunter2", "taskmill:***@");
    snprintf(args, sizeof args, "serve --listen 127.0.0.1:0 --store '%s'", with_param);
    CHECK_INT(run_bounded(said, sizeof said, args), 0);
    CHECK(strstr(said, "taskmill listening on http://") != NULL);
    check_hidden(__LINE__, said, "hunter3", "password=***");
    /* No token in the store: another address is refused, and the line
     * gives the command that makes one, with the URL. */
    snprintf(args, sizeof args, "serve --listen 0.0.0.0:0 --store '%s'", with_param);
    CHECK_INT(run_bounded(said, sizeof said, args), 1);
    CHECK(strstr(said, "refusing to listen on '0.0.0.0:0'") != NULL);
    check_hidden(__LINE__, said, "hunter3", "password=***");
    th_pg_db_drop(name);
}

static const struct th_test tests[] = {
    {"a URL naming no backend: its password is not in the error",
     test_unknown_scheme_hides_password},
    {"serve's start-up lines show a store URL's password as ***", test_serve_lines_hide_password},
    {NULL, NULL},
};

int main(int argc, char **argv) {
    int rc = th_main(tests, argc, argv);
    return rc || th_failed();
}
