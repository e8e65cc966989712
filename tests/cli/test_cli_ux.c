/*
 * What a new user hits with the CLI and the worker (issue 15, items 1 to
 * 8), run as a user would against the real server: short ids that differ
 * and any unique prefix accepted; the list's states and its paging hint;
 * `queues`, `delete`, `--version`, relative list times; messages naming
 * the flag typed; no abbreviated long options; a worker that refuses a
 * command it cannot run, hands a task back when the command fails to
 * start, heartbeats a silent command, and says once that the server went
 * away and once that it is back; `watch` sharing a terminal with a worker
 * and fitting 80 columns.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>

#include "cli_run.h"
#include "harness.h"

static struct th_server srv;
static char logpath[400];

static const char *worker_log(const char *name) {
    snprintf(logpath, sizeof logpath, "%s/%s.log", srv.dir, name);
    return logpath;
}

/* Whether the file at path contains needle. */
static bool file_has(const char *path, const char *needle) {
    char *text = cli_slurp(path);
    bool has = strstr(text, needle) != NULL;
    free(text);
    return has;
}

static void show_log(const char *path) {
    char *s = cli_slurp(path);
    printf("    --- %s ---\n%s\n", path, s);
    free(s);
}

/* Submits n tasks in one batch (ids of one millisecond differ only at the end). */
static void batch(const char *queue, int n, char ids[][33]) {
    char body[2048] = "{\"tasks\":[";
    for (int i = 0; i < n; i++)
        snprintf(body + strlen(body), sizeof body - strlen(body),
                 "%s{\"type\":\"b\",\"queue\":\"%s\",\"name\":\"batch %d\"}", i ? "," : "", queue,
                 i);
    strcat(body, "]}");
    struct th_resp *r = th_http(&srv, "POST", "/v1/tasks/batch", "%s", body);
    for (int i = 0; i < n; i++) {
        char key[32];
        snprintf(key, sizeof key, "tasks.%d.id", i);
        const char *id = th_str(r->json, key);
        snprintf(ids[i], 33, "%s", id ? id : "");
    }
}

static void test_prefixes_accepted_everywhere(void) {
    char ids[3][33];
    batch("prefq", 3, ids);
    CHECK_INT(strlen(ids[2]), 32);
    char *out, *err;
    /* The whole id less its last digit is shared by neighbours: ambiguous, exit 2. */
    char shared[33];
    size_t common = 0;
    while (common < 32 && ids[0][common] == ids[2][common])
        common++;
    snprintf(shared, sizeof shared, "%.*s", (int)common, ids[0]);
    CHECK_INT(cli_run(&srv, NULL, &out, &err, "get", shared), 2);
    CHECK(strstr(err, "ambiguous") != NULL);
    CHECK(strstr(err, ids[2]) != NULL || strstr(err, ids[1]) != NULL);
    free(out);
    free(err);
    /* One digit more than it shares with any other tells each apart. */
    size_t need[3];
    for (int i = 0; i < 3; i++) {
        need[i] = 0;
        for (int j = 0; j < 3; j++) {
            size_t c = 0;
            while (j != i && c < 32 && ids[i][c] == ids[j][c])
                c++;
            if (j != i && c + 1 > need[i]) need[i] = c + 1;
        }
        char p[33];
        snprintf(p, sizeof p, "%.*s", (int)need[i], ids[i]);
        CHECK_INT(cli_run(&srv, NULL, &out, &err, "get", "--json", p), 0);
        CHECK(strstr(out, ids[i]) != NULL);
        free(out);
        free(err);
    }
    /* A prefix taken by every command that takes an id. */
    char p2[33];
    snprintf(p2, sizeof p2, "%.*s", (int)need[2], ids[2]);
    CHECK_INT(cli_run(&srv, NULL, &out, &err, "pause", p2), 0);
    CHECK(strstr(out, ids[2]) != NULL && strstr(out, "(paused)") != NULL);
    free(out);
    free(err);
    CHECK_INT(cli_run(&srv, NULL, &out, &err, "cancel", p2), 0);
    CHECK(strstr(out, "cancelled") != NULL);
    free(out);
    free(err);
    CHECK_INT(cli_run(&srv, NULL, &out, &err, "watch", p2), 1);
    CHECK(strncmp(out, ids[2], 32) == 0);
    free(out);
    free(err);
    CHECK_INT(cli_run(&srv, NULL, &out, &err, "delete", p2), 0);
    CHECK(strstr(out, "deleted") != NULL);
    free(out);
    free(err);
    CHECK_INT(cli_run(&srv, NULL, &out, &err, "get", ids[2]), 3);
    free(out);
    free(err);
    CHECK_INT(cli_run(&srv, NULL, &out, &err, "submit", "child", "--parent", "fffffff"), 3);
    CHECK(strstr(err, "no task has an id that starts with") != NULL);
    free(out);
    free(err);
    char p0[33];
    snprintf(p0, sizeof p0, "%.*s", (int)need[0], ids[0]);
    CHECK_INT(cli_run(&srv, NULL, &out, &err, "submit", "--json", "child", "--parent", p0), 0);
    CHECK(strstr(out, ids[0]) != NULL);
    free(out);
    free(err);
    CHECK_INT(cli_run(&srv, NULL, &out, &err, "list", "--parent", p0), 0);
    CHECK(strstr(out, "child") != NULL);
    free(out);
    free(err);
    /* Too short, and not found. */
    CHECK_INT(cli_run(&srv, NULL, &out, &err, "get", "01a"), 2);
    CHECK(strstr(err, "too short") != NULL);
    free(out);
    free(err);
    CHECK_INT(cli_run(&srv, NULL, &out, &err, "cancel", "ffffff"), 3);
    CHECK(strstr(err, "'ffffff'") != NULL);
    free(out);
    free(err);
}

/* The first word of each line of a screen that begins with one of ids' first 4 digits. */
static int screen_short_ids(const char *screen, char ids[][33], int n, char shown[][40]) {
    int found = 0;
    for (const char *l = screen; *l && found < n;) {
        size_t len = strcspn(l, "\n");
        for (int i = 0; i < n; i++) {
            if (strncmp(l, ids[i], 4) == 0) {
                snprintf(shown[found], 40, "%.*s", (int)strcspn(l, " \n"), l);
                found++;
                break;
            }
        }
        l += len + (l[len] == '\n');
    }
    return found;
}

static void test_watch_short_ids_differ(void) {
    char ids[3][33];
    batch("shortq", 3, ids);
    for (int i = 0; i < 3; i++) {
        char path[128];
        snprintf(path, sizeof path, "/v1/tasks/%s/cancel", ids[i]);
        CHECK_INT(th_http(&srv, "POST", path, NULL)->status, 200);
    }
    char *raw;
    int rc = cli_run_pty_cmd(&srv, 120, &raw, CLI_ARGS(cli_bin(), "watch", ids[0], ids[1], ids[2]));
    CHECK_INT(rc, 1);
    char *screen = cli_screen(raw);
    char shown[3][40];
    int found = screen_short_ids(screen, ids, 3, shown);
    if (found != 3) printf("    screen:\n%s\n", screen);
    CHECK_INT(found, 3);
    for (int i = 0; i < 3; i++) {
        CHECK(strlen(shown[i]) >= 12);
        CHECK(strncmp(ids[i], shown[i], strlen(shown[i])) == 0);
        for (int j = 0; j < i; j++)
            CHECK(strcmp(shown[i], shown[j]) != 0);
    }
    /* What is shown is accepted back. */
    char *out, *err;
    CHECK_INT(cli_run(&srv, NULL, &out, &err, "get", "--json", shown[1]), 0);
    CHECK(strstr(out, ids[1]) != NULL);
    free(out);
    free(err);
    free(screen);
    free(raw);
}

static void test_list_states_times_and_hint(void) {
    for (int i = 0; i < 3; i++)
        free(th_submit(&srv, "m", "\"queue\":\"multi\""));
    free(th_submit(&srv, "other", "\"queue\":\"elsewhere\""));
    char *out, *err;
    CHECK_INT(cli_run(&srv, NULL, &out, &err, "list", "--queue", "multi", "--limit", "1"), 0);
    const char *hint = strstr(err, "more: taskmill list ");
    CHECK(hint != NULL);
    CHECK(strstr(hint, "--queue multi") != NULL);
    CHECK(strstr(hint, "--limit 1") != NULL);
    /* Running the hint as printed lists the next task of the same queue. */
    char copy[512];
    snprintf(copy, sizeof copy, "%.*s", (int)strcspn(hint + 6, "\n"), hint + 6);
    const char *args[20] = {NULL};
    int n = 0;
    for (char *save = NULL, *w = strtok_r(copy + strlen("taskmill "), " ", &save); w && n < 19;
         w = strtok_r(NULL, " ", &save))
        args[n++] = w;
    free(out);
    free(err);
    CHECK_INT(cli_runv(&srv, NULL, &out, &err, args), 0);
    CHECK_INT(cli_count(out, " multi "), 1);
    CHECK(strstr(out, "elsewhere") == NULL);
    free(out);
    free(err);

    /* Paused and scheduled tasks say so. */
    CHECK_INT(cli_run(&srv, NULL, &out, &err, "submit", "later", "--queue", "stateq", "--at", "+1h",
                      "--paused"),
              0);
    free(out);
    free(err);
    free(th_submit(&srv, "now", "\"queue\":\"stateq\",\"paused\":true"));
    CHECK_INT(cli_run(&srv, NULL, &out, &err, "list", "--queue", "stateq"), 0);
    CHECK(strstr(out, "STATE") != NULL);
    CHECK(strstr(out, "pending (paused)") != NULL);
    CHECK(strstr(out, "waiting ") != NULL && strstr(out, "Z (paused)") != NULL);
    free(out);
    free(err);
    /* Relative times: created within the last hour, none in the next. */
    CHECK_INT(
        cli_run(&srv, NULL, &out, &err, "list", "--queue", "stateq", "--created-after", "-1h"), 0);
    CHECK_INT(cli_count(out, "stateq"), 2);
    free(out);
    free(err);
    CHECK_INT(
        cli_run(&srv, NULL, &out, &err, "list", "--queue", "stateq", "--created-after", "+1h"), 0);
    CHECK_STR(out, "");
    free(out);
    free(err);
    CHECK_INT(cli_run(&srv, NULL, &out, &err, "list", "--created-after", "1x"), 2);
    CHECK(strstr(err, "'--created-after 1x'") != NULL);
    free(out);
    free(err);
    CHECK_INT(cli_run(&srv, NULL, &out, &err, "list", "--phase", "nope"), 4);
    CHECK(strstr(err, "'--phase'") != NULL);
    free(out);
    free(err);
}

static void test_queues_delete_version(void) {
    free(th_submit(&srv, "q", "\"queue\":\"qsq\""));
    char *out, *err;
    CHECK_INT(cli_run(&srv, NULL, &out, &err, "queues"), 0);
    CHECK(strstr(out, "QUEUE") != NULL && strstr(out, "qsq") != NULL);
    free(out);
    free(err);
    CHECK_INT(cli_run(&srv, NULL, &out, &err, "queues", "--json"), 0);
    CHECK(strstr(out, "\"queues\"") != NULL);
    free(out);
    free(err);
    CHECK_INT(cli_run(&srv, NULL, &out, &err, "queues", "pause", "qsq"), 0);
    CHECK(strstr(out, "qsq paused") != NULL);
    free(out);
    free(err);
    CHECK_INT(cli_run(&srv, NULL, &out, &err, "queues", "resume", "qsq"), 0);
    CHECK(strstr(out, "qsq active") != NULL);
    free(out);
    free(err);
    CHECK_INT(cli_run(&srv, NULL, &out, &err, "queues", "explode"), 2);
    free(out);
    free(err);
    /* delete: only a finished task; a pending one is refused and stays. */
    char *id = th_submit(&srv, "d", "\"queue\":\"delq\"");
    CHECK_INT(cli_run(&srv, NULL, &out, &err, "delete", id), 4);
    free(out);
    free(err);
    CHECK_STR(th_phase(&srv, id), "pending");
    CHECK_INT(cli_run(&srv, NULL, &out, &err, "cancel", id), 0);
    free(out);
    free(err);
    CHECK_INT(cli_run(&srv, NULL, &out, &err, "delete", id), 0);
    CHECK(strstr(out, "deleted") != NULL);
    free(out);
    free(err);
    CHECK_INT(cli_run(&srv, NULL, &out, &err, "get", id), 3);
    free(out);
    free(err);
    free(id);
    CHECK_INT(cli_run(&srv, NULL, &out, &err, "--version"), 0);
    CHECK(strncmp(out, "taskmill ", 9) == 0 && out[9] >= '0' && out[9] <= '9');
    free(out);
    free(err);
    CHECK_INT(cli_run(&srv, NULL, &out, &err, "version"), 0);
    CHECK(strncmp(out, "taskmill ", 9) == 0);
    free(out);
    free(err);
}

static void test_flags_spelt_out_and_named(void) {
    char *out, *err;
    CHECK_INT(cli_run(&srv, NULL, &out, &err, "submit", "x", "--prio", "3"), 2);
    CHECK(strstr(err, "'--prio'") != NULL && strstr(err, "--priority") != NULL);
    free(out);
    free(err);
    CHECK_INT(cli_run(&srv, NULL, &out, &err, "submit", "x", "--prio=3"), 2);
    free(out);
    free(err);
    CHECK_INT(cli_run(&srv, NULL, &out, &err, "list", "--lim", "2"), 2);
    CHECK(strstr(err, "'--lim'") != NULL);
    free(out);
    free(err);
    CHECK_INT(cli_run(&srv, NULL, &out, &err, "get", "--js", "0123456789abcdef0123456789abcdef"),
              2);
    free(out);
    free(err);
    CHECK_INT(cli_run(&srv, NULL, &out, &err, "work", "--que", "q", "--", "true"), 2);
    free(out);
    free(err);
    /* Spelt out, the same flags work (and --priority=N too). */
    CHECK_INT(cli_run(&srv, NULL, &out, &err, "submit", "x", "--priority=3", "--queue", "flagq"),
              0);
    free(out);
    free(err);
    CHECK_INT(cli_run(&srv, NULL, &out, &err, "submit", "x", "--at", "yesterday"), 2);
    CHECK(strstr(err, "'--at yesterday'") != NULL);
    free(out);
    free(err);
    /* A relative time reaches 3650 days at most, whatever its unit (+99999999d
     * was taken and stored as 9999-08-19), and the refusal says so. */
    CHECK_INT(cli_run(&srv, NULL, &out, &err, "submit", "x", "--at", "+99999999d"), 2);
    CHECK(strstr(err, "'--at +99999999d'") != NULL && strstr(err, "3650 days") != NULL);
    free(out);
    free(err);
    CHECK_INT(cli_run(&srv, NULL, &out, &err, "list", "--created-after", "-5256001m"), 2);
    CHECK(strstr(err, "'--created-after -5256001m'") != NULL && strstr(err, "3650 days"));
    free(out);
    free(err);
    CHECK_INT(cli_run(&srv, NULL, &out, &err, "list", "--created-after", "-3650d"), 0);
    free(out);
    free(err);
    CHECK_INT(cli_run(&srv, NULL, &out, &err, "submit", "x", "--at", "+3650d", "--json"), 0);
    CHECK(strstr(out, "\"scheduled_at\":\"20") != NULL || strstr(out, "\"scheduled_at\": \"20"));
    free(out);
    free(err);
    CHECK_INT(cli_run(&srv, NULL, &out, &err, "submit", "x", "--max-retries", "5000"), 2);
    CHECK(strstr(err, "'--max-retries'") != NULL);
    free(out);
    free(err);
    /* Schedules and definitions name their flags too. */
    CHECK_INT(
        cli_run(&srv, NULL, &out, &err, "schedule", "create", "s", "--every", "ten", "--type", "x"),
        2);
    CHECK(strstr(err, "'--every'") != NULL && strstr(err, "interval_seconds") == NULL);
    free(out);
    free(err);
    CHECK_INT(cli_run(&srv, NULL, &out, &err, "schedule", "create", "s", "--every", "10", "--type",
                      "x", "--start", "yesterday"),
              4);
    CHECK(strstr(err, "'--start'") != NULL && strstr(err, "start_at") == NULL);
    free(out);
    free(err);
    CHECK_INT(cli_run(&srv, NULL, &out, &err, "definition", "create", "d", "--type", "x",
                      "--timeout", "soon"),
              2);
    CHECK(strstr(err, "'--timeout'") != NULL);
    free(out);
    free(err);
    /* work says which of --queue and the command is missing. */
    CHECK_INT(cli_run(&srv, NULL, &out, &err, "work", "--queue", "q"), 2);
    CHECK(strstr(err, "command to run is missing") != NULL);
    free(out);
    free(err);
    CHECK_INT(cli_run(&srv, NULL, &out, &err, "work", "--", "true"), 2);
    CHECK(strstr(err, "'--queue Q' is missing") != NULL);
    free(out);
    free(err);
    CHECK_INT(cli_run(&srv, NULL, &out, &err, "work"), 2);
    CHECK(strstr(err, "'--queue Q' and the command") != NULL);
    free(out);
    free(err);
    /* A queue no claim could reach (the server's rule) is refused at once,
     * not retried for good: empty, a space, a '/'. */
    const char *bad_queues[] = {"", "a b/c", "a/b"};
    for (int i = 0; i < 3; i++) {
        CHECK_INT(cli_run(&srv, NULL, &out, &err, "work", "--queue", bad_queues[i], "--", "true"),
                  2);
        CHECK(strstr(err, "'--queue' must be 1-64 of [A-Za-z0-9._-]") != NULL);
        free(out);
        free(err);
    }
    CHECK_INT(
        cli_run(&srv, NULL, &out, &err, "work", "--queue", "q", "--heartbeat", "0", "--", "true"),
        2);
    CHECK(strstr(err, "'--heartbeat 0'") != NULL);
    free(out);
    free(err);
    /* strtod's other forms: hexadecimal (8 s), a leading space, an exponent,
     * a sign. (With --lease 3 a binary that took them stops at the third.) */
    const char *odd[] = {"0x1p3", " 5", "1e1", "+2"};
    for (int i = 0; i < 4; i++) {
        CHECK_INT(cli_run(&srv, NULL, &out, &err, "work", "--queue", "q", "--lease", "3",
                          "--heartbeat", odd[i], "--", "true"),
                  2);
        CHECK(strstr(err, "must be a number of seconds") != NULL);
        free(out);
        free(err);
    }
    /* Forms that strtod reads as a value in range (0.1 s, 2 s, 0.125 s) and
     * words it knows, each refused by name. (A binary that took them stops
     * at the command, which does not exist.) */
    const char *words[] = {"1e-1", "0x1p1", "0x1p-3", "inf", "nan", "1.5e0"};
    for (int i = 0; i < 6; i++) {
        CHECK_INT(cli_run(&srv, NULL, &out, &err, "work", "--queue", "q", "--heartbeat", words[i],
                          "--", "/nonexistent/taskmill-test-command"),
                  2);
        if (!strstr(err, "'--heartbeat ") || !strstr(err, "must be a number of seconds"))
            th_fail(__FILE__, __LINE__, "--heartbeat %s: %s", words[i], err);
        free(out);
        free(err);
    }
    /* The whole-number flags take digits only: strtol's space and sign were taken. */
    const char *ints[] = {" 2", "+2"};
    for (int i = 0; i < 2; i++) {
        CHECK_INT(cli_run(&srv, NULL, &out, &err, "work", "--queue", "q", "--concurrency", ints[i],
                          "--", "/nonexistent/taskmill-test-command"),
                  2);
        if (!strstr(err, "'--concurrency' must be an integer from 1 to 256"))
            th_fail(__FILE__, __LINE__, "--concurrency '%s': %s", ints[i], err);
        free(out);
        free(err);
    }
    /* So do the other commands' (a '-' where a number may be negative): strtoll
     * took a space and a '+', and schedule's cut an overlong number to the largest. */
    static const struct {
        const char *args[9]; /* NULL-terminated */
        const char *want;
    } bad_ints[] = {
        {{"submit", "t", "--priority", " 5"}, "'--priority' must be an integer"},
        {{"submit", "t", "--max-retries", "+1"}, "'--max-retries' must be an integer"},
        {{"list", "--limit", "+5"}, "'--limit' must be an integer"},
        {{"schedule", "create", "s", "--every", " 60", "--type", "t"},
         "'--every' must be an integer"},
        {{"schedule", "create", "s", "--every", "99999999999999999999", "--type", "t"},
         "'--every' must be an integer"},
        {{"definition", "create", "d", "--type", "t", "--priority", "+1"},
         "'--priority' must be an integer"},
    };
    for (size_t i = 0; i < sizeof bad_ints / sizeof bad_ints[0]; i++) {
        CHECK_INT(cli_runv(&srv, NULL, &out, &err, bad_ints[i].args), 2);
        if (!strstr(err, bad_ints[i].want))
            th_fail(__FILE__, __LINE__, "%s %s: %s", bad_ints[i].args[0], bad_ints[i].args[1], err);
        free(out);
        free(err);
    }
    CHECK_INT(cli_run(&srv, NULL, &out, &err, "work", "--queue", "q", "--lease", "3", "--heartbeat",
                      "2", "--", "true"),
              2);
    CHECK(strstr(err, "third of '--lease'") != NULL);
    free(out);
    free(err);
}

/* Messages a newcomer meets: a missing token (and where the CLI reads one
 * from), a missing --namespace, a --params file that is not there. */
static void test_newcomer_messages(void) {
    char *out = NULL, *err = NULL;
    CHECK_INT(cli_run(&srv, NULL, &out, &err, "submit", "x", "--params", "/nonexistent/p.json"), 2);
    CHECK(strstr(err, "'--params /nonexistent/p.json'") != NULL && strstr(err, "line -1") == NULL);
    free(out);
    free(err);
    struct th_server own;
    if (th_server_start(&own, NULL)) {
        th_fail(__FILE__, __LINE__, "no server");
        return;
    }
    CHECK_INT(
        cli_run(&own, NULL, &out, &err, "token", "create", "--store", own.store, "--role", "admin"),
        2);
    CHECK(strstr(err, "'--namespace' is missing") != NULL);
    free(out);
    free(err);
    CHECK_INT(cli_run(&own, NULL, &out, &err, "token", "create", "--store", own.store), 2);
    CHECK(strstr(err, "'--role' is missing") != NULL);
    free(out);
    free(err);
    CHECK_INT(cli_run(&own, NULL, &out, &err, "token", "create", "--store", own.store, "--role",
                      "admin", "--namespace", "default"),
              0);
    free(out);
    free(err);
    unsetenv("TASKMILL_TOKEN");
    /* The server learns of the token within a second (docs/security.md). */
    int rc = 0;
    for (int i = 0; i < 200 && rc != 4; i++) {
        if (i) {
            free(out);
            free(err);
            th_sleep_ms(100);
        }
        rc = cli_run(&own, NULL, &out, &err, "list");
    }
    CHECK_INT(rc, 4);
    CHECK(strstr(err, "set TASKMILL_TOKEN") != NULL);
    free(out);
    free(err);
    setenv("TASKMILL_TOKEN", "tm_0123456789abcdef_0123456789abcdef0123456789abcdef", 1);
    CHECK_INT(cli_run(&own, NULL, &out, &err, "list"), 4);
    CHECK(strstr(err, "the token in TASKMILL_TOKEN was refused") != NULL);
    free(out);
    free(err);
    unsetenv("TASKMILL_TOKEN");
    /* A --store with no file there: create says it made a new one; the
     * other token commands refuse it. */
    char typo[600];
    snprintf(typo, sizeof typo, "sqlite:%s/typo.db", own.dir);
    CHECK_INT(cli_run(&own, NULL, &out, &err, "token", "list", "--store", typo), 1);
    CHECK(strstr(err, "no store at") != NULL);
    free(out);
    free(err);
    CHECK_INT(cli_run(&own, NULL, &out, &err, "token", "create", "--store", typo, "--role",
                      "reader", "--namespace", "default"),
              0);
    CHECK(strstr(err, "a new one is made there") != NULL);
    free(out);
    free(err);
    CHECK_INT(cli_run(&own, NULL, &out, &err, "token", "list", "--store", typo), 0);
    CHECK(strstr(err, "a new one") == NULL);
    free(out);
    free(err);
    th_server_free(&own);
}

static void test_work_refuses_a_command_it_cannot_run(void) {
    char *id = th_submit(&srv, "t", "\"queue\":\"typoq\"");
    char *out, *err;
    CHECK_INT(
        cli_run(&srv, NULL, &out, &err, "work", "--queue", "typoq", "--", "./no-such-script.sh"),
        2);
    CHECK(strstr(err, "cannot run './no-such-script.sh'") != NULL);
    free(out);
    free(err);
    CHECK_INT(
        cli_run(&srv, NULL, &out, &err, "work", "--queue", "typoq", "--", "no-such-command-xyz"),
        2);
    CHECK(strstr(err, "no executable of that name in PATH") != NULL);
    free(out);
    free(err);
    char notexec[400];
    snprintf(notexec, sizeof notexec, "%s/plain.sh", srv.dir);
    FILE *f = fopen(notexec, "w");
    CHECK(f != NULL);
    fputs("exit 0\n", f);
    fclose(f);
    CHECK_INT(cli_run(&srv, NULL, &out, &err, "work", "--queue", "typoq", "--", notexec), 2);
    CHECK(strstr(err, "not executable") != NULL);
    free(out);
    free(err);
    CHECK_INT(cli_run(&srv, NULL, &out, &err, "work", "--queue", "typoq", "--", srv.dir), 2);
    CHECK(strstr(err, "directory") != NULL);
    free(out);
    free(err);
    /* Nothing was claimed: the task is as it was. */
    char path[128];
    snprintf(path, sizeof path, "/v1/tasks/%s", id);
    struct th_resp *r = th_http(&srv, "GET", path, NULL);
    CHECK_STR(th_str(r->json, "phase"), "pending");
    CHECK_INT(th_int(r->json, "attempt"), 0);
    free(id);
}

static void test_work_hands_back_when_start_fails(void) {
    char script[400];
    snprintf(script, sizeof script, "%s/deployed.sh", srv.dir);
    FILE *f = fopen(script, "w");
    CHECK(f != NULL);
    fputs("#!/bin/sh\nexit 0\n", f);
    fclose(f);
    chmod(script, 0755);
    const char *log = worker_log("handback");
    char logcopy[400];
    snprintf(logcopy, sizeof logcopy, "%s", log);
    pid_t w = cli_spawn(&srv, logcopy, "work", "--queue", "handq", "--", script);
    /* The command vanishes after the worker checked it, before a task comes. */
    bool started = false;
    for (int i = 0; i < 200 && !started; i++) {
        char *s = cli_slurp(logcopy);
        started = strstr(s, "claiming from queue") != NULL;
        free(s);
        if (!started) th_sleep_ms(50);
    }
    CHECK(started);
    unlink(script);
    char *id = th_submit(&srv, "t", "\"queue\":\"handq\",\"max_retries\":0");
    bool handed = false;
    for (int i = 0; i < 300 && !handed; i++) {
        char *s = cli_slurp(logcopy);
        handed = strstr(s, "handed back") != NULL;
        free(s);
        if (!handed) th_sleep_ms(50);
    }
    if (!handed) show_log(logcopy);
    CHECK(handed);
    /* Not failed, no retry counted, even with max_retries 0. */
    char path[128];
    snprintf(path, sizeof path, "/v1/tasks/%s", id);
    struct th_resp *r = th_http(&srv, "GET", path, NULL);
    CHECK(strcmp(th_str(r->json, "phase"), "failed") != 0);
    CHECK_INT(th_int(r->json, "retries"), 0);
    /* Once the command is there again, the worker runs the task after its pause. */
    f = fopen(script, "w");
    CHECK(f != NULL);
    fputs("#!/bin/sh\necho 'progress 1 done'\nexit 0\n", f);
    fclose(f);
    chmod(script, 0755);
    bool done = cli_wait_phase(&srv, id, "completed", 60000);
    if (!done) show_log(logcopy);
    CHECK(done);
    kill(w, SIGTERM);
    CHECK_INT(cli_wait(w, 20000), 0);
    free(id);
}

static void test_silent_command_heartbeats_and_cancel(void) {
    char *id = th_submit(&srv, "quiet", "\"queue\":\"hbq\"");
    char logcopy[400];
    snprintf(logcopy, sizeof logcopy, "%s", worker_log("heartbeat"));
    /* A 60 s lease would heartbeat every 20 s by the lease alone; --heartbeat 0.3. */
    pid_t w = cli_spawn(&srv, logcopy, "work", "--queue", "hbq", "--lease", "60", "--heartbeat",
                        "0.3", "--max-tasks", "1", "--", "sh", "-c",
                        "echo 'progress 0.1 started'; exec sleep 120");
    CHECK(cli_wait_phase(&srv, id, "running", 10000));
    char path[128];
    snprintf(path, sizeof path, "/v1/tasks/%s", id);
    /* The command prints nothing more, yet the lease moves: heartbeats on a timer. */
    char first[64] = "";
    bool moved = false;
    for (int i = 0; i < 200 && !moved; i++) {
        struct th_resp *r = th_http(&srv, "GET", path, NULL);
        const char *exp = th_str(r->json, "lease.expires_at");
        if (exp && !first[0]) snprintf(first, sizeof first, "%s", exp);
        moved = exp && first[0] && strcmp(exp, first) != 0;
        if (!moved) th_sleep_ms(50);
    }
    CHECK(moved);
    snprintf(path, sizeof path, "/v1/tasks/%s/cancel", id);
    CHECK_INT(th_http(&srv, "POST", path, NULL)->status, 200);
    bool cancelled = cli_wait_phase(&srv, id, "cancelled", 30000);
    if (!cancelled) show_log(logcopy);
    CHECK(cancelled);
    CHECK_INT(cli_wait(w, 20000), 0);
    free(id);
}

/* Whether 127.0.0.1:port can be bound now. */
static bool port_bindable(int port) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons((uint16_t)port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    bool ok = fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof a) == 0;
    if (fd >= 0) close(fd);
    return ok;
}

/*
 * A port nothing listens on now, for a server that is killed and started
 * again on it. Below the range the kernel picks connections' local ports
 * from (ip_local_port_range): in it, while the server was down, any
 * connection (the worker's own retries among them) could take the port
 * and the restart fail. Bound and released, as before, when no such port
 * is found.
 */
static int free_port(void) {
    int lo = 32768, hi = 60999;
    FILE *f = fopen("/proc/sys/net/ipv4/ip_local_port_range", "r");
    if (f) {
        if (fscanf(f, "%d %d", &lo, &hi) != 2) lo = 32768;
        fclose(f);
    }
    unsigned seed = (unsigned)getpid() ^ (unsigned)th_now_ms();
    for (int tries = 0; lo > 11000 && tries < 200; tries++) {
        int port = 10000 + (int)(rand_r(&seed) % (unsigned)(lo - 10000));
        if (port_bindable(port)) return port;
    }
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    if (bind(fd, (struct sockaddr *)&a, sizeof a) || getsockname(fd, (struct sockaddr *)&a, &len))
        return -1;
    close(fd);
    return ntohs(a.sin_port);
}

static void test_worker_says_once_server_gone_and_back(void) {
    struct th_server own;
    char listen[64];
    snprintf(listen, sizeof listen, "127.0.0.1:%d", free_port());
    CHECK(th_server_start(&own, "--listen", listen, NULL) == 0);
    char *id = th_submit(&own, "long", "\"queue\":\"goneq\"");
    char logcopy[400];
    snprintf(logcopy, sizeof logcopy, "%s/gone.log", srv.dir);
    pid_t w = cli_spawn(&own, logcopy, "work", "--queue", "goneq", "--heartbeat", "0.2",
                        "--max-tasks", "1", "--", "sh", "-c",
                        "i=0; while [ $i -lt 40 ]; do echo \"progress 0.$i\"; i=$((i+1)); "
                        "sleep 0.1; done; exec sleep 2");
    CHECK(cli_wait_phase(&own, id, "running", 10000));
    th_server_stop(&own, true);
    /* Many heartbeats and progress lines fail while it is gone. */
    bool lost = false;
    for (int i = 0; i < 200 && !lost; i++) {
        char *s = cli_slurp(logcopy);
        lost = strstr(s, "lost the server") != NULL;
        free(s);
        th_sleep_ms(50);
    }
    CHECK(lost);
    th_sleep_ms(1500); /* by design: gone while many heartbeats (0.2 s) and progress lines fail */
    CHECK(th_server_restart(&own) == 0);
    bool back = false;
    for (int i = 0; i < 300 && !back; i++) {
        char *s = cli_slurp(logcopy);
        back = strstr(s, "answers again") != NULL;
        free(s);
        if (!back) th_sleep_ms(50);
    }
    kill(w, SIGTERM);
    cli_wait(w, 20000);
    char *s = cli_slurp(logcopy);
    if (!back || cli_count(s, "lost the server") != 1) show_log(logcopy);
    CHECK(back);
    CHECK_INT(cli_count(s, "lost the server"), 1);
    CHECK_INT(cli_count(s, "answers again"), 1);
    CHECK_INT(cli_count(s, "heartbeat failed"), 0);
    free(s);
    free(id);
    th_server_free(&own);
}

static void test_watch_shows_waiting_and_a_lost_server(void) {
    struct th_server own;
    char listen[64];
    snprintf(listen, sizeof listen, "127.0.0.1:%d", free_port());
    CHECK(th_server_start(&own, "--listen", listen, NULL) == 0);
    char at[64];
    time_t later = time(NULL) + 3600;
    strftime(at, sizeof at, "%Y-%m-%dT%H:%M:%SZ", gmtime(&later));
    char extra[200];
    snprintf(extra, sizeof extra, "\"queue\":\"lostq\",\"scheduled_at\":\"%s\"", at);
    char *w = th_submit(&own, "later", extra);
    char *p = th_submit(&own, "now", "\"queue\":\"lostq\",\"paused\":true");
    char rawpath[400];
    snprintf(rawpath, sizeof rawpath, "%s/lost.raw", srv.dir);
    fflush(stdout);
    pid_t child = fork();
    if (child == 0) {
        char *raw;
        cli_run_pty_cmd(&own, 120, &raw, CLI_ARGS(cli_bin(), "watch", w, p));
        FILE *f = fopen(rawpath, "w");
        if (f) {
            fputs(raw, f);
            fclose(f);
        }
        _exit(0);
    }
    /* The watch draws both tasks from their streams; then the server dies. */
    char screen[400];
    snprintf(screen, sizeof screen, "%s/cli.pty", own.dir); /* what the watch draws, as it comes */
    bool shown, said;
    TRY_WAIT_UNTIL(
        shown, file_has(screen, "waiting, starts in 59m") && file_has(screen, "pending (paused)"),
        20000, "the watch to draw both tasks");
    th_server_stop(&own, true); /* the watch's streams are cut; reconnecting fails */
    TRY_WAIT_UNTIL(said, file_has(screen, "server not answering for"), 20000,
                   "the watch to say the server is not answering");
    CHECK(th_server_restart(&own) == 0);
    char path[128];
    snprintf(path, sizeof path, "/v1/tasks/%s/cancel", w);
    CHECK_INT(th_http(&own, "POST", path, NULL)->status, 200);
    snprintf(path, sizeof path, "/v1/tasks/%s/cancel", p);
    CHECK_INT(th_http(&own, "POST", path, NULL)->status, 200);
    int status;
    waitpid(child, &status, 0);
    char *raw = cli_slurp(rawpath);
    bool ok = strstr(raw, "waiting, starts in 59m") != NULL && strstr(raw, "pending (paused)") &&
              strstr(raw, "server not answering for") != NULL && strstr(raw, "cancelled");
    if (!ok) printf("    raw:\n%s\n", raw);
    CHECK(strstr(raw, "waiting, starts in 59m") != NULL);
    CHECK(strstr(raw, "pending (paused)") != NULL);
    CHECK(strstr(raw, "server not answering for") != NULL);
    CHECK(strstr(raw, "cancelled") != NULL);
    free(raw);
    free(w);
    free(p);
    th_server_free(&own);
}

/* The line of screen that contains needle, copied into out (or ""). */
static void screen_line(const char *screen, const char *needle, char *out, size_t n) {
    const char *hit = strstr(screen, needle);
    out[0] = '\0';
    if (!hit) return;
    const char *start = hit;
    while (start > screen && start[-1] != '\n')
        start--;
    snprintf(out, n, "%.*s", (int)strcspn(start, "\n"), start);
}

static void test_watch_beside_a_worker_in_80_columns(void) {
    char *id = th_submit(&srv, "long",
                         "\"queue\":\"besideq\",\"name\":\"a very long task name that would "
                         "push the clocks off an eighty column terminal\"");
    char cmd[2048];
    snprintf(cmd, sizeof cmd,
             "'%s' work --queue besideq --max-tasks 1 -- sh -c 'echo hello-from-the-command; "
             "for i in 1 2 3 4 5 6 7 8; do echo progress 0.$i step $i; sleep 0.3; done' & "
             "'%s' watch %s; rc=$?; wait; exit $rc",
             cli_bin(), cli_bin(), id);
    char *raw;
    int rc = cli_run_pty_cmd(&srv, 80, &raw, CLI_ARGS("sh", "-c", cmd));
    CHECK_INT(rc, 0);
    char *screen = cli_screen(raw);
    /* The worker's lines are whole: no bar drawn over them, none drawn into a bar. */
    char line[2048];
    screen_line(screen, "hello-from-the-command", line, sizeof line);
    if (!line[0] || strstr(line, "[#") || strstr(line, "[-")) printf("    screen:\n%s\n", screen);
    CHECK(line[0] != '\0');
    CHECK(strstr(line, "[#") == NULL && strstr(line, "[-") == NULL);
    screen_line(screen, "claimed", line, sizeof line);
    CHECK(line[0] != '\0');
    CHECK(strstr(line, "[#") == NULL && strstr(line, "[-") == NULL);
    /* The bar ended on its own line, whole. */
    screen_line(screen, "] 100%", line, sizeof line);
    CHECK(line[0] != '\0');
    CHECK(strncmp(line, id, 12) == 0);
    /* Every frame fits 80 columns and, while running, keeps the ETA: the name gave way. */
    bool eta = false;
    for (const char *p = raw; (p = strstr(p, " ETA ")); p++) {
        const char *start = p;
        while (start > raw && start[-1] != '\r' && start[-1] != '\n' && start[-1] != 'J')
            start--;
        int cols = (int)(strcspn(start, "\r\n\033"));
        CHECK(cols <= 79);
        eta = true;
    }
    CHECK(eta);
    CHECK(strstr(raw, "~") != NULL); /* the shortened name */
    free(screen);
    free(raw);
    free(id);
}

static const struct th_test tests[] = {
    {"any unique id prefix, everywhere an id is taken", test_prefixes_accepted_everywhere},
    {"watch shows short ids that differ, and takes them back", test_watch_short_ids_differ},
    {"list: paused and scheduled states, relative times, the hint keeps filters",
     test_list_states_times_and_hint},
    {"queues, delete, --version", test_queues_delete_version},
    {"long options spelt out; messages name the flag typed", test_flags_spelt_out_and_named},
    {"messages a newcomer meets: no token, no namespace, no params file", test_newcomer_messages},
    {"work refuses a command it cannot run", test_work_refuses_a_command_it_cannot_run},
    {"work hands a task back when its command cannot start", test_work_hands_back_when_start_fails},
    {"a silent command heartbeats and gets the cancel", test_silent_command_heartbeats_and_cancel},
    {"the worker says once the server went away and once it is back",
     test_worker_says_once_server_gone_and_back},
    {"watch beside a worker in 80 columns", test_watch_beside_a_worker_in_80_columns},
    {"watch shows a waiting task's start, a paused one, and a lost server",
     test_watch_shows_waiting_and_a_lost_server},
    {NULL, NULL},
};

int main(int argc, char **argv) {
    return th_main_server(tests, argc, argv, &srv, NULL);
}
