/*
 * What the client commands do with the arguments they are given, run as a
 * user would against the real server:
 * - a value that is not UTF-8 (JSON cannot hold it) is refused with exit
 *   2 naming the flag, and nothing is sent: it is never dropped from the
 *   request;
 * - a flag the verb does not take is refused, not ignored.
 */
#include <stdio.h>
#include <stdlib.h>

#include "cli_run.h"
#include "harness.h"

static struct th_server srv;

/* Runs `taskmill ARGS...`; checks the exit code and that stderr holds each needle. */
static bool expect(int line, int want, const char *const *args, const char *const *needles) {
    char *out = NULL, *err = NULL;
    int rc = cli_runv(&srv, NULL, &out, &err, args);
    bool ok = true;
    if (rc != want) {
        th_fail(__FILE__, line, "%s %s: exit %d, not %d; stderr: %s", args[0],
                args[1] ? args[1] : "", rc, want, err);
        ok = false;
    }
    for (int i = 0; ok && needles[i]; i++)
        if (!strstr(err, needles[i])) {
            th_fail(__FILE__, line, "stderr lacks \"%s\": %s", needles[i], err);
            ok = false;
        }
    free(out);
    free(err);
    return ok;
}

#define EXPECT(want, args, ...) \
    if (!expect(__LINE__, want, args, (const char *const[]){__VA_ARGS__, NULL})) return

/* How many items the list at `key` of GET path holds. */
static size_t count(const char *path, const char *key) {
    struct th_resp *r = th_http(&srv, "GET", path, NULL);
    return json_array_size(json_object_get(r->json, key));
}

/* Finding: a flag's value that is not UTF-8 was left out of the request
 * (json_string gives NULL, json_object_set_new then fails silently): the
 * task went to queue 'default' with exit 0. Each is exit 2 naming the
 * flag, and nothing is made. */
static void test_non_utf8_values_refused(void) {
    size_t tasks = count("/v1/tasks?limit=1000", "tasks");
    EXPECT(2, CLI_ARGS("submit", "demo", "--name", "bad\xffname"),
           "taskmill submit: '--name' must be UTF-8");
    EXPECT(2, CLI_ARGS("submit", "demo", "--queue", "q\xff"),
           "taskmill submit: '--queue' must be UTF-8");
    EXPECT(2, CLI_ARGS("submit", "demo", "--description", "d\xfe"),
           "taskmill submit: '--description' must be UTF-8");
    EXPECT(2, CLI_ARGS("submit", "ty\xffpe"), "taskmill submit: 'TYPE' must be UTF-8");
    EXPECT(2, CLI_ARGS("submit", "pk", "--param", "k\xff=v"),
           "taskmill submit: '--param' key must be UTF-8");
    EXPECT(2, CLI_ARGS("submit", "pk", "--param", "k\xff:=1"),
           "taskmill submit: '--param' key must be UTF-8");
    EXPECT(2, CLI_ARGS("submit", "pk", "--parent", "p\xff"),
           "taskmill submit: '--parent' must be UTF-8");
    EXPECT(2, CLI_ARGS("submit", "pk", "--idempotency-key", "k\xff"),
           "taskmill submit: '--idempotency-key' must be UTF-8");
    CHECK_INT(count("/v1/tasks?limit=1000", "tasks"), tasks);

    size_t schedules = count("/v1/schedules", "schedules");
    EXPECT(
        2,
        CLI_ARGS("schedule", "create", "s9", "--every", "60", "--type", "ok", "--queue", "q\xff"),
        "taskmill schedule create: '--queue' must be UTF-8");
    EXPECT(2, CLI_ARGS("schedule", "create", "s9", "--every", "60", "--type", "o\xffk"),
           "taskmill schedule create: '--type' must be UTF-8");
    EXPECT(2,
           CLI_ARGS("schedule", "create", "s9", "--every", "60", "--type", "ok", "--timezone",
                    "Europe/Par\xeds"),
           "taskmill schedule create: '--timezone' must be UTF-8");
    EXPECT(2, CLI_ARGS("schedule", "create", "s9", "--every", "60", "--definition", "d\xff"),
           "taskmill schedule create: '--definition' must be UTF-8");
    EXPECT(2, CLI_ARGS("schedule", "create", "s\xff", "--every", "60", "--type", "ok"),
           "taskmill schedule create: 'NAME' must be UTF-8");
    EXPECT(
        2,
        CLI_ARGS("schedule", "create", "s9", "--every", "60", "--type", "ok", "--param", "k\xff=v"),
        "taskmill schedule create: '--param' key must be UTF-8");
    CHECK_INT(count("/v1/schedules", "schedules"), schedules);
    EXPECT(0, CLI_ARGS("schedule", "create", "s9", "--every", "60", "--type", "ok", "--paused"),
           "");
    EXPECT(2, CLI_ARGS("schedule", "pause", "s9", "--note", "n\xff"),
           "taskmill schedule pause: '--note' must be UTF-8");
    EXPECT(2, CLI_ARGS("schedule", "get", "s\xff"), "taskmill schedule get: 'NAME' must be UTF-8");
    struct th_resp *r = th_http(&srv, "GET", "/v1/schedules/s9", NULL);
    CHECK(th_str(r->json, "note") == NULL);

    size_t defs = count("/v1/definitions", "definitions");
    EXPECT(2, CLI_ARGS("definition", "create", "d9", "--type", "t", "--description", "d\xfe"),
           "taskmill definition create: '--description' must be UTF-8");
    EXPECT(2, CLI_ARGS("definition", "create", "d9", "--type", "t", "--executor", "e\xfe"),
           "taskmill definition create: '--executor' must be UTF-8");
    CHECK_INT(count("/v1/definitions", "definitions"), defs);

    /* UTF-8 that is not ASCII is taken as it is. */
    char *out = NULL, *err = NULL;
    CHECK_INT(cli_run(&srv, NULL, &out, &err, "submit", "demo", "--name", "caf\xc3\xa9"), 0);
    out[strcspn(out, "\n")] = '\0';
    char path[128];
    snprintf(path, sizeof path, "/v1/tasks/%s", out);
    r = th_http(&srv, "GET", path, NULL);
    CHECK_STR(th_str(r->json, "name"), "caf\xc3\xa9");
    free(out);
    free(err);
}

/* token create --name that is not UTF-8 is refused; no token is made (a store of its own:
 * a token in the server's would end its open mode). */
static void test_token_name_not_utf8(void) {
    char store[600];
    snprintf(store, sizeof store, "sqlite:%s/args-tokens.db", srv.dir);
    EXPECT(2,
           CLI_ARGS("token", "create", "--store", store, "--role", "reader", "--namespace",
                    "default", "--name", "n\xff"),
           "taskmill token: '--name' must be UTF-8");
    char *out = NULL, *err = NULL;
    CHECK_INT(cli_run(&srv, NULL, &out, &err, "token", "create", "--store", store, "--role",
                      "reader", "--namespace", "default", "--name", "good"),
              0);
    free(out);
    free(err);
    CHECK_INT(cli_run(&srv, NULL, &out, &err, "token", "list", "--store", store, "--json"), 0);
    json_t *list = json_loads(out, 0, NULL);
    CHECK_INT(json_array_size(list), 1);
    json_decref(list);
    free(out);
    free(err);
}

/* Finding: schedule, definition and token took every flag of every verb and
 * ignored the ones the verb does not use (`schedule create --priority 7`
 * made a schedule whose task had no priority, exit 0). */
static void test_verbs_take_only_their_flags(void) {
    size_t schedules = count("/v1/schedules", "schedules");
    size_t defs = count("/v1/definitions", "definitions");
    EXPECT(2,
           CLI_ARGS("schedule", "create", "s1", "--every", "3600", "--type", "demo", "--priority",
                    "7"),
           "taskmill schedule create: option '--priority' is not taken by 'schedule create'");
    EXPECT(2,
           CLI_ARGS("schedule", "create", "s1", "--every", "3600", "--type", "demo",
                    "--max-retries", "9"),
           "option '--max-retries' is not taken by 'schedule create'");
    EXPECT(
        2,
        CLI_ARGS("schedule", "create", "s1", "--every", "3600", "--type", "demo", "--timeout", "5"),
        "option '--timeout' is not taken by 'schedule create'");
    EXPECT(2,
           CLI_ARGS("schedule", "create", "s1", "--every", "3600", "--type", "demo", "--note", "n"),
           "option '--note' is not taken by 'schedule create'");
    EXPECT(2,
           CLI_ARGS("schedule", "create", "s1", "--every", "3600", "--type", "demo", "--from",
                    "2026-01-01T00:00:00Z"),
           "option '--from' is not taken by 'schedule create'");
    EXPECT(2,
           CLI_ARGS("schedule", "create", "s1", "--every", "3600", "--definition", "d", "--type",
                    "demo"),
           "taskmill schedule create: '--type' is not taken with '--definition'");
    EXPECT(2,
           CLI_ARGS("schedule", "create", "s1", "--every", "3600", "--definition", "d", "--queue",
                    "q"),
           "taskmill schedule create: '--queue' is not taken with '--definition'");
    EXPECT(2, CLI_ARGS("schedule", "list", "--type", "x"),
           "taskmill schedule list: option '--type' is not taken by 'schedule list'");
    EXPECT(2, CLI_ARGS("schedule", "trigger", "s1", "--note", "n"),
           "option '--note' is not taken by 'schedule trigger'");
    EXPECT(2, CLI_ARGS("schedule", "get", "s1", "--paused"),
           "option '--paused' is not taken by 'schedule get'");
    EXPECT(2, CLI_ARGS("schedule", "pause", "s1", "--param", "a=b"),
           "option '--param' is not taken by 'schedule pause'");
    EXPECT(2,
           CLI_ARGS("schedule", "backfill", "s1", "--from", "2026-01-01T00:00:00Z", "--to",
                    "2026-01-02T00:00:00Z", "--every", "5"),
           "option '--every' is not taken by 'schedule backfill'");
    EXPECT(2, CLI_ARGS("definition", "create", "d1", "--type", "x", "--cron", "* * * * *"),
           "taskmill definition create: option '--cron' is not taken by 'definition create'");
    EXPECT(2, CLI_ARGS("definition", "create", "d1", "--type", "x", "--paused"),
           "option '--paused' is not taken by 'definition create'");
    EXPECT(2, CLI_ARGS("definition", "launch", "d1", "--queue", "q"),
           "taskmill definition launch: option '--queue' is not taken by 'definition launch'");
    EXPECT(2, CLI_ARGS("definition", "list", "--type", "x"),
           "option '--type' is not taken by 'definition list'");
    CHECK_INT(count("/v1/schedules", "schedules"), schedules);
    CHECK_INT(count("/v1/definitions", "definitions"), defs);
    EXPECT(2, CLI_ARGS("token", "list", "--role", "admin"),
           "taskmill token: option '--role' is not taken by 'token list'");
    EXPECT(2, CLI_ARGS("token", "purge", "--namespace", "x"),
           "option '--namespace' is not taken by 'token purge'");
    EXPECT(2, CLI_ARGS("token", "revoke", "0123456789abcdef", "--json"),
           "option '--json' is not taken by 'token revoke'");
    EXPECT(2, CLI_ARGS("schedule", "frobnicate", "s1"),
           "taskmill schedule: unknown verb 'frobnicate'");

    /* Every flag docs/cli.md gives a verb is taken and sent. */
    EXPECT(0,
           CLI_ARGS("definition", "create", "d-all", "--type", "x", "--queue", "qa", "--priority",
                    "7", "--max-retries", "9", "--timeout", "5", "--description", "dd",
                    "--executor", "ee", "--param", "a=b"),
           "");
    struct th_resp *r = th_http(&srv, "GET", "/v1/definitions/d-all", NULL);
    CHECK_INT(th_int(r->json, "priority"), 7);
    CHECK_INT(th_int(r->json, "max_retries"), 9);
    CHECK_INT(th_int(r->json, "timeout_seconds"), 5);
    CHECK_STR(th_str(r->json, "queue"), "qa");
    CHECK_STR(th_str(r->json, "description"), "dd");
    CHECK_STR(th_str(r->json, "executor"), "ee");
    CHECK_STR(th_str(r->json, "params.a"), "b");
    EXPECT(0,
           CLI_ARGS("schedule", "create", "s-all", "--cron", "0 3 * * *", "--timezone",
                    "Europe/Paris", "--type", "x", "--queue", "qs", "--param", "k=v", "--overlap",
                    "allow_all", "--catchup", "60", "--jitter", "2", "--start",
                    "2026-01-01T00:00:00Z", "--end", "2036-01-01T00:00:00Z", "--paused"),
           "");
    r = th_http(&srv, "GET", "/v1/schedules/s-all", NULL);
    CHECK_STR(th_str(r->json, "cron"), "0 3 * * *");
    CHECK_STR(th_str(r->json, "timezone"), "Europe/Paris");
    CHECK_STR(th_str(r->json, "task.queue"), "qs");
    CHECK_STR(th_str(r->json, "task.params.k"), "v");
    CHECK_STR(th_str(r->json, "overlap"), "allow_all");
    CHECK_INT(th_int(r->json, "catchup_seconds"), 60);
    CHECK_INT(th_int(r->json, "jitter_seconds"), 2);
    CHECK(json_is_true(th_get(r->json, "paused")));
    EXPECT(0, CLI_ARGS("schedule", "resume", "s-all", "--note", "back"), "");
    r = th_http(&srv, "GET", "/v1/schedules/s-all", NULL);
    CHECK_STR(th_str(r->json, "note"), "back");
    EXPECT(0,
           CLI_ARGS("schedule", "create", "s-def", "--every", "3600", "--definition", "d-all",
                    "--param", "a=c", "--paused"),
           "");
    r = th_http(&srv, "GET", "/v1/schedules/s-def", NULL);
    CHECK_STR(th_str(r->json, "params.a"), "c");
}

static const struct th_test tests[] = {
    {"flag values that are not UTF-8 are refused naming the flag", test_non_utf8_values_refused},
    {"token create --name that is not UTF-8 is refused", test_token_name_not_utf8},
    {"schedule, definition and token verbs take only their flags",
     test_verbs_take_only_their_flags},
    {NULL, NULL},
};

int main(int argc, char **argv) {
    return th_main_server(tests, argc, argv, &srv, NULL);
}
