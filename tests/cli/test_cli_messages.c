/*
 * The CLI's messages for mistakes, run as a user would against the real
 * server: an unknown or valueless option is reported as `taskmill
 * COMMAND[ SUB]: ...` (docs/cli.md), not with getopt's bare command name.
 */
#include <stdio.h>
#include <stdlib.h>

#include "cli_run.h"
#include "harness.h"

static struct th_server srv;

/*
 * Runs `taskmill ARGS...` and checks its exit code is want, that its
 * standard error starts with "taskmill " and holds each of needles (ended
 * by NULL), and that getopt printed nothing of its own ("list:
 * unrecognized option ...").
 */
static void expect_err(int line, int want, const char *const *args, const char *const *needles) {
    char *out = NULL, *err = NULL;
    int rc = cli_runv(&srv, NULL, &out, &err, args);
    if (rc != want) th_fail(__FILE__, line, "exit %d, not %d; stderr: %s", rc, want, err);
    for (int i = 0; needles[i]; i++)
        if (!strstr(err, needles[i]))
            th_fail(__FILE__, line, "stderr lacks \"%s\": %s", needles[i], err);
    if (strncmp(err, "taskmill ", 9) != 0)
        th_fail(__FILE__, line, "stderr does not start with 'taskmill ': %s", err);
    if (strstr(err, "unrecognized") || strstr(err, "requires an argument"))
        th_fail(__FILE__, line, "getopt's own message: %s", err);
    free(out);
    free(err);
}

#define EXPECT_ERR(want, args, ...) \
    expect_err(__LINE__, want, args, (const char *const[]){__VA_ARGS__, NULL})

static void test_unknown_and_valueless_options(void) {
    EXPECT_ERR(2, CLI_ARGS("list", "--bogus"), "taskmill list: unknown option '--bogus'");
    EXPECT_ERR(2, CLI_ARGS("list", "--bogus=3"), "taskmill list: unknown option '--bogus'");
    EXPECT_ERR(2, CLI_ARGS("list", "--limit"), "taskmill list: option '--limit' requires a value");
    EXPECT_ERR(2, CLI_ARGS("list", "--json=yes"), "taskmill list: option '--json' takes no value");
    EXPECT_ERR(2, CLI_ARGS("submit", "x", "--bogus"), "taskmill submit: unknown option '--bogus'");
    EXPECT_ERR(2, CLI_ARGS("submit", "x", "--name"),
               "taskmill submit: option '--name' requires a value");
    EXPECT_ERR(2, CLI_ARGS("get", "-x", "0123"), "taskmill get: unknown option '-x'");
    EXPECT_ERR(2, CLI_ARGS("get", "0123", "-s"), "taskmill get: option '-s' requires a value");
    EXPECT_ERR(2, CLI_ARGS("cancel", "--bogus", "0123"),
               "taskmill cancel: unknown option '--bogus'");
    EXPECT_ERR(2, CLI_ARGS("watch", "--bogus", "0123"), "taskmill watch: unknown option '--bogus'");
    EXPECT_ERR(2, CLI_ARGS("work", "--bogus", "--queue", "q", "--", "true"),
               "taskmill work: unknown option '--bogus'");
    EXPECT_ERR(2, CLI_ARGS("work", "--queue"), "taskmill work: option '--queue' requires a value");
    EXPECT_ERR(2, CLI_ARGS("serve", "--bogus"), "taskmill serve: unknown option '--bogus'");
    EXPECT_ERR(2, CLI_ARGS("serve", "--store"),
               "taskmill serve: option '--store' requires a value");
    /* A subcommand is named where the command's other messages name it (not for token). */
    EXPECT_ERR(2, CLI_ARGS("queues", "--bogus"), "taskmill queues: unknown option '--bogus'");
    EXPECT_ERR(2, CLI_ARGS("queue", "pause", "--bogus", "q"),
               "taskmill queue pause: unknown option '--bogus'");
    EXPECT_ERR(2, CLI_ARGS("schedule", "create", "s", "--bogus"),
               "taskmill schedule create: unknown option '--bogus'");
    EXPECT_ERR(2, CLI_ARGS("schedule", "create", "s", "--type", "t", "--every"),
               "taskmill schedule create: option '--every' requires a value");
    EXPECT_ERR(2, CLI_ARGS("definition", "list", "--json=1"),
               "taskmill definition list: option '--json' takes no value");
    EXPECT_ERR(2, CLI_ARGS("token", "create", "--bogus"),
               "taskmill token: unknown option '--bogus'");
    EXPECT_ERR(2, CLI_ARGS("token", "list", "--store"),
               "taskmill token: option '--store' requires a value");
    /* An abbreviation is still refused naming the option meant, also when
     * its value is missing or given to an option that takes none. */
    EXPECT_ERR(2, CLI_ARGS("list", "--lim", "2"), "taskmill list: unknown option '--lim'",
               "'--limit'?");
    EXPECT_ERR(2, CLI_ARGS("list", "--pa"), "taskmill list: unknown option '--pa'", "'--parent'?");
    EXPECT_ERR(2, CLI_ARGS("list", "--js=1"), "taskmill list: unknown option '--js'", "'--json'?");
}

/* How many schedules the server holds. */
static size_t schedule_count(void) {
    struct th_resp *r = th_http(&srv, "GET", "/v1/schedules", NULL);
    return json_array_size(json_object_get(r->json, "schedules"));
}

/* Every field a message quotes is named by the flag typed for it, not
 * only the one the server's error names; a value that happens to be a
 * field's name stays as it is. Nothing is stored. */
static void test_messages_name_every_flag(void) {
    size_t before = schedule_count();
    EXPECT_ERR(
        4,
        CLI_ARGS("schedule", "create", "x", "--every", "5", "--cron", "* * * * *", "--type", "t"),
        "taskmill schedule create: give exactly one of '--cron' and '--every'");
    EXPECT_ERR(4, CLI_ARGS("schedule", "create", "x", "--type", "t"),
               "give exactly one of '--cron' and '--every'");
    EXPECT_ERR(4, CLI_ARGS("schedule", "create", "x", "--every", "5"),
               "taskmill schedule create: '--type' is required");
    EXPECT_ERR(4,
               CLI_ARGS("schedule", "create", "x", "--every", "5", "--type", "t", "--queue", "a b"),
               "taskmill schedule create: '--queue' must be");
    EXPECT_ERR(4,
               CLI_ARGS("schedule", "create", "x", "--every", "5", "--type", "t", "--start",
                        "2026-02-01T00:00:00Z", "--end", "2026-01-01T00:00:00Z"),
               "'--end' must be after '--start'");
    EXPECT_ERR(4, CLI_ARGS("schedule", "create", "x", "--every", "5", "--definition", "queue"),
               "'--definition'", "definition 'queue' not found");
    CHECK_INT(schedule_count(), before);
    char *out = NULL, *err = NULL;
    CHECK_INT(cli_run(&srv, NULL, &out, &err, "schedule", "create", "bf", "--every", "60", "--type",
                      "t", "--paused"),
              0);
    free(out);
    free(err);
    EXPECT_ERR(4,
               CLI_ARGS("schedule", "backfill", "bf", "--from", "2026-01-02T00:00:00Z", "--to",
                        "2026-01-01T00:00:00Z"),
               "taskmill schedule backfill: '--to' must be after '--from'");
    struct th_resp *r = th_http(&srv, "GET", "/v1/tasks?type=t", NULL);
    CHECK_INT(json_array_size(json_object_get(r->json, "tasks")), 0);
    EXPECT_ERR(4, CLI_ARGS("list", "--order", "sideways"), "taskmill list: '--order' must be");
    EXPECT_ERR(4, CLI_ARGS("list", "--phase", "queue"), "'--phase'", "phase 'queue'");
}

/* A schedule's or a definition's verb is in the prefix of every message,
 * the server's refusals and the CLI's own (it said only 'taskmill schedule:').
 * (A name with a space or a '?' is escaped in the path now, not refused:
 * test_cli_args.c.) */
static void test_schedule_verbs_named(void) {
    EXPECT_ERR(3, CLI_ARGS("schedule", "pause", "nothing-here"), "taskmill schedule pause: ");
    EXPECT_ERR(3, CLI_ARGS("schedule", "trigger", "nothing-here"), "taskmill schedule trigger: ");
    EXPECT_ERR(3, CLI_ARGS("schedule", "resume", "a b"),
               "taskmill schedule resume: schedule 'a b' not found");
    EXPECT_ERR(3, CLI_ARGS("definition", "launch", "a?b"),
               "taskmill definition launch: definition 'a?b' not found");
    EXPECT_ERR(2, CLI_ARGS("schedule", "resume", ""),
               "taskmill schedule resume: 'NAME' must not be empty");
    EXPECT_ERR(2, CLI_ARGS("definition", "launch", "d", "--queue", "q"),
               "taskmill definition launch: option '--queue' is not taken");
}

/* --params names itself as typed, '-' (standard input) as a path; nothing is submitted. */
static void test_params_named_as_typed(void) {
    char *out = NULL, *err = NULL;
    CHECK_INT(cli_run(&srv, "[1]", &out, &err, "submit", "pt", "--params", "-"), 2);
    CHECK(strstr(err, "taskmill submit: '--params -' must hold a JSON object") != NULL);
    free(out);
    free(err);
    CHECK_INT(cli_run(&srv, "{\"a\":", &out, &err, "submit", "pt", "--params", "-"), 2);
    CHECK(strstr(err, "taskmill submit: '--params -' is not JSON") != NULL);
    free(out);
    free(err);
    char path[400];
    snprintf(path, sizeof path, "%s/p.json", srv.dir);
    FILE *f = fopen(path, "w");
    if (f) {
        fputs("[2]", f);
        fclose(f);
    }
    CHECK_INT(cli_run(&srv, NULL, &out, &err, "submit", "pt", "--params", path), 2);
    char want[500];
    snprintf(want, sizeof want, "'--params %s' must hold a JSON object", path);
    CHECK(strstr(err, want) != NULL);
    free(out);
    free(err);
    struct th_resp *r = th_http(&srv, "GET", "/v1/tasks?type=pt", NULL);
    CHECK_INT(json_array_size(json_object_get(r->json, "tasks")), 0);
}

/* token create --expires past the ten-year cap says the cap; no token is made. (A store of
 * its own: a token in the server's would end its open mode.) */
static void test_token_expires_cap(void) {
    char store[600];
    snprintf(store, sizeof store, "sqlite:%s/tokens.db", srv.dir);
    char *out = NULL, *err = NULL;
    CHECK_INT(cli_run(&srv, NULL, &out, &err, "token", "create", "--store", store, "--role",
                      "reader", "--namespace", "default", "--expires", "1d"),
              0);
    free(out);
    free(err);
    CHECK_INT(cli_run(&srv, NULL, &out, &err, "token", "create", "--store", store, "--role",
                      "admin", "--namespace", "default", "--expires", "600w"),
              2);
    CHECK(strstr(err, "taskmill token: '--expires 600w'") != NULL);
    CHECK(strstr(err, "at most ten years") != NULL);
    free(out);
    free(err);
    CHECK_INT(cli_run(&srv, NULL, &out, &err, "token", "list", "--store", store), 0);
    CHECK_INT(cli_count(out, "reader"), 1);
    CHECK(strstr(out, "admin") == NULL);
    free(out);
    free(err);
    /* The cap itself is taken. */
    CHECK_INT(cli_run(&srv, NULL, &out, &err, "token", "create", "--store", store, "--role",
                      "reader", "--namespace", "default", "--expires", "3660d"),
              0);
    free(out);
    free(err);
}

static const struct th_test tests[] = {
    {"unknown and valueless options name taskmill and the command",
     test_unknown_and_valueless_options},
    {"messages name every flag typed, not the API's fields", test_messages_name_every_flag},
    {"--params is named as typed, '-' too", test_params_named_as_typed},
    {"token create --expires says the ten-year cap", test_token_expires_cap},
    {"schedule and definition messages name the verb", test_schedule_verbs_named},
    {NULL, NULL},
};

int main(int argc, char **argv) {
    return th_main_server(tests, argc, argv, &srv, NULL);
}
