/*
 * `taskmill token` on the server's own store, on either backend: its help
 * names both kinds of --store URL, and a token it makes there ends the
 * server's open mode (docs/security.md, "Managing tokens";
 * docs/operations.md puts tokens in a PostgreSQL database this way).
 */
#include "cli/cli_run.h"

static struct th_server srv;

static void test_help_names_both_stores(void) {
    char *out = NULL, *err = NULL;
    CHECK_INT(cli_run(&srv, NULL, &out, &err, "token", "--help"), 0);
    CHECK(strstr(out, "sqlite:PATH") != NULL);
    CHECK(strstr(out, "postgres://") != NULL);
    free(out);
    free(err);
}

static void test_create_on_the_servers_store(void) {
    char *out = NULL, *err = NULL;
    unsetenv("TASKMILL_TOKEN");
    CHECK_INT(cli_run(&srv, NULL, &out, &err, "token", "create", "--store", srv.store, "--role",
                      "reader", "--namespace", "default"),
              0);
    CHECK(strncmp(out, "tm_", 3) == 0);
    free(out);
    free(err);
    CHECK_INT(cli_run(&srv, NULL, &out, &err, "token", "list", "--store", srv.store), 0);
    CHECK(strstr(out, "reader") != NULL);
    free(out);
    free(err);
    /* The server learns of the token within a second (docs/security.md). */
    WAIT_UNTIL(th_http(&srv, "GET", "/v1/tasks", NULL)->status == 401, 20000,
               "the server to need a token");
}

static const struct th_test tests[] = {
    {"token --help names sqlite: and postgres:// stores", test_help_names_both_stores},
    {"token create on the server's --store ends open mode", test_create_on_the_servers_store},
    {NULL, NULL},
};

int main(int argc, char **argv) {
    return th_main_server(tests, argc, argv, &srv, NULL);
}
