/*
 * The `taskmill` client subcommands run as a user would run them, against
 * the real server: their output for people and with --json, their exit
 * codes (docs/cli.md), and `watch` both through a pipe (plain lines) and
 * in a pseudo-terminal (bars redrawn in place).
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>

#include "cli_run.h"
#include "harness.h"

static struct th_server srv;

/* The id printed by `submit` (first line of out), into id. */
static void first_line(const char *out, char id[64]) {
    snprintf(id, 64, "%.*s", (int)strcspn(out, "\n"), out);
}

static void test_submit_and_get(void) {
    char *out, *err;
    CHECK_INT(cli_run(&srv, NULL, &out, &err, "submit", "resize", "--name", "cli one", "--queue",
                      "cliq", "--priority", "5", "--param", "size=large", "--param", "n:=3",
                      "--max-retries", "2"),
              0);
    char id[64];
    first_line(out, id);
    free(out);
    free(err);
    CHECK_INT(strlen(id), 32);
    char path[128];
    snprintf(path, sizeof path, "/v1/tasks/%s", id);
    struct th_resp *r = th_http(&srv, "GET", path, NULL);
    CHECK_STR(th_str(r->json, "name"), "cli one");
    CHECK_STR(th_str(r->json, "queue"), "cliq");
    CHECK_INT(th_int(r->json, "priority"), 5);
    CHECK_INT(th_int(r->json, "max_retries"), 2);
    CHECK_STR(th_str(r->json, "params.size"), "large");
    CHECK_INT(th_int(r->json, "params.n"), 3);

    CHECK_INT(cli_run(&srv, NULL, &out, &err, "get", id), 0);
    CHECK(strstr(out, "phase       pending") != NULL);
    CHECK(strstr(out, "cli one") != NULL);
    free(out);
    free(err);
    CHECK_INT(cli_run(&srv, NULL, &out, &err, "get", "--json", id), 0);
    json_t *j = json_loads(out, 0, NULL);
    free(out);
    free(err);
    CHECK(j != NULL);
    CHECK_STR(th_str(j, "id"), id);
    json_decref(j);
}

static void test_submit_params_file_and_json(void) {
    char *out, *err;
    CHECK_INT(cli_run(&srv, "{\"a\": 1, \"b\": \"x\"}", &out, &err, "submit", "--json", "p",
                      "--params", "-", "--param", "b=y", "--at", "+1h"),
              0);
    json_t *j = json_loads(out, 0, NULL);
    free(out);
    free(err);
    CHECK(j != NULL);
    CHECK_INT(th_int(j, "params.a"), 1);
    CHECK_STR(th_str(j, "params.b"), "y");
    CHECK(th_str(j, "scheduled_at") != NULL);
    json_decref(j);
}

static void test_exit_codes(void) {
    char *out, *err;
    CHECK_INT(cli_run(&srv, NULL, &out, &err, "get", "0123456789abcdef0123456789abcdef"), 3);
    CHECK(strstr(err, "not found") != NULL);
    free(out);
    free(err);
    CHECK_INT(cli_run(&srv, NULL, &out, &err, "submit"), 2);
    free(out);
    free(err);
    CHECK_INT(cli_run(&srv, NULL, &out, &err, "submit", "x", "--param", "novalue"), 2);
    CHECK(strstr(err, "'--param novalue'") != NULL);
    free(out);
    free(err);
    CHECK_INT(cli_run(&srv, NULL, &out, &err, "submit", "x", "--queue", "bad queue"), 4);
    /* The message names the flag the user typed, not the API field. */
    CHECK(strstr(err, "'--queue'") != NULL);
    CHECK(strstr(err, "'queue'") == NULL);
    free(out);
    free(err);
    CHECK_INT(cli_run(&srv, NULL, &out, &err, "list", "--phase", "sleeping"), 4);
    free(out);
    free(err);
    CHECK_INT(cli_run(&srv, NULL, &out, &err, "get", "--server", "http://127.0.0.1:1",
                      "0123456789abcdef0123456789abcdef"),
              5);
    free(out);
    free(err);
    CHECK_INT(cli_run(&srv, NULL, &out, &err, "work", "--queue", "q"), 2);
    free(out);
    free(err);
    CHECK_INT(cli_run(&srv, NULL, &out, &err, "nonsense"), 2);
    free(out);
    free(err);
}

static void test_list_table_json_and_paging(void) {
    for (int i = 0; i < 3; i++)
        free(th_submit(&srv, "listed", "\"queue\":\"listq\""));
    char *out, *err;
    CHECK_INT(cli_run(&srv, NULL, &out, &err, "list", "--queue", "listq"), 0);
    CHECK(strncmp(out, "ID ", 3) == 0);
    CHECK_INT(cli_count(out, "listed"), 3);
    free(out);
    free(err);
    CHECK_INT(cli_run(&srv, NULL, &out, &err, "list", "--queue", "listq", "--limit", "2"), 0);
    CHECK_INT(cli_count(out, "listed"), 2);
    CHECK(strstr(err, "--cursor") != NULL);
    free(out);
    free(err);
    CHECK_INT(cli_run(&srv, NULL, &out, &err, "list", "--queue", "listq", "--limit", "2", "--all",
                      "--json"),
              0);
    json_t *j = json_loads(out, 0, NULL);
    free(out);
    free(err);
    CHECK(j != NULL);
    CHECK_INT(json_array_size(json_object_get(j, "tasks")), 3);
    json_decref(j);
    CHECK_INT(cli_run(&srv, NULL, &out, &err, "list", "--queue", "listq", "--phase", "running"), 0);
    CHECK_STR(out, "");
    free(out);
    free(err);
}

static void test_controls(void) {
    char *id = th_submit(&srv, "ctl", "\"queue\":\"ctlq\"");
    char *out, *err;
    CHECK_INT(cli_run(&srv, NULL, &out, &err, "pause", id), 0);
    CHECK(strstr(out, "pending (paused)") != NULL);
    free(out);
    free(err);
    CHECK_INT(cli_run(&srv, NULL, &out, &err, "resume", id), 0);
    free(out);
    free(err);
    CHECK_INT(cli_run(&srv, NULL, &out, &err, "cancel", id), 0);
    CHECK(strstr(out, "cancelled") != NULL);
    free(out);
    free(err);
    CHECK_INT(cli_run(&srv, NULL, &out, &err, "resume", id), 4); /* 409: not pausable now */
    free(out);
    free(err);
    CHECK_INT(cli_run(&srv, NULL, &out, &err, "retry", "--json", id), 0);
    CHECK(strstr(out, "\"pending\"") != NULL);
    free(out);
    free(err);
    free(id);
}

/*
 * Whether the watch's output (the file at out) has a row for key (the
 * task's id, or its name on a terminal) showing text: some occurrence of
 * key is followed by text before its line ends (a newline, a carriage
 * return, or an escape that redraws).
 */
static bool watch_shows(const char *out, const char *key, const char *text) {
    char *all = cli_slurp(out);
    bool shown = false;
    for (const char *p = all; !shown && (p = strstr(p, key)); p += strlen(key)) {
        size_t row = strcspn(p, "\n\r\033");
        const char *at = strstr(p, text);
        shown = at && at < p + row;
    }
    free(all);
    return shown;
}

/* Waits (up to 20 s) until the watch shows text for key; a watch that never
 * does is said here (a forked child's failure) and fails the test's checks. */
static void drive_await(const char *out, const char *key, const char *text) {
    if (!out) return;
    long long deadline = th_now_ms() + 20000;
    while (!watch_shows(out, key, text)) {
        if (th_now_ms() >= deadline) {
            printf("    drive: waited 20000 ms for the watch to show '%s' for '%s' in %s\n", text,
                   key, out);
            return;
        }
        th_sleep_ms(TH_WAIT_POLL_MS);
    }
}

/*
 * Drives a task through progress in the background: claim, two heartbeats,
 * then how it ends. With `out`, the watch's output file, each change waits
 * until the watch shows the one before it (keyed by `name` on a terminal,
 * else by the task's id), so it sees every one.
 */
static void drive(const char *queue, bool complete, const char *out, const char *name) {
    char cid[33], tok[33];
    for (int i = 0; i < 1000 && th_claim(&srv, queue, NULL, cid, tok) != 200; i++)
        th_sleep_ms(20);
    const char *key = name ? name : cid;
    char path[128];
    snprintf(path, sizeof path, "/v1/tasks/%s/heartbeat", cid);
    drive_await(out, key, "running");
    th_http(&srv, "POST", path,
            "{\"lease_token\":\"%s\",\"progress\":{\"processed\":1,\"pending\":3,"
            "\"message\":\"first\"}}",
            tok);
    drive_await(out, key, "1/4");
    th_http(&srv, "POST", path,
            "{\"lease_token\":\"%s\",\"progress\":{\"processed\":2,\"pending\":2,"
            "\"message\":\"second\"}}",
            tok);
    drive_await(out, key, "2/4");
    snprintf(path, sizeof path, "/v1/tasks/%s/%s", cid, complete ? "complete" : "fail");
    if (complete)
        th_http(&srv, "POST", path, "{\"lease_token\":\"%s\"}", tok);
    else
        th_http(&srv, "POST", path,
                "{\"lease_token\":\"%s\",\"error\":\"broke\",\"retryable\":false}", tok);
}

/* Runs drive() in a child process while the parent watches. `out`: "plain"
 * for cli_run's output, "tty" for cli_run_pty's, NULL for none to wait on. */
static pid_t drive_async(const char *queue, bool complete, const char *out, const char *name) {
    char file[400];
    if (out)
        snprintf(file, sizeof file, "%s/%s", srv.dir,
                 strcmp(out, "tty") == 0 ? "cli.pty" : "cli.out");
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        th_http(NULL, NULL, NULL, NULL); /* never share the parent's connection */
        drive(queue, complete, out ? file : NULL, name);
        th_http(NULL, NULL, NULL, NULL);
        _exit(0);
    }
    return pid;
}

static void test_watch_plain_lines(void) {
    char *id = th_submit(&srv, "w", "\"queue\":\"plainq\",\"name\":\"plain\"");
    pid_t d = drive_async("plainq", true, "plain", NULL);
    char *out, *err;
    int rc = cli_run(&srv, NULL, &out, &err, "watch", id);
    waitpid(d, NULL, 0);
    CHECK_INT(rc, 0);
    CHECK(strchr(out, '\r') == NULL);
    CHECK(strchr(out, '\033') == NULL);
    CHECK(strstr(out, " running 25% 1/4 first") != NULL);
    CHECK(strstr(out, " running 50% 2/4 second") != NULL);
    CHECK(strstr(out, " completed 100%") != NULL);
    CHECK(strncmp(out, id, 32) == 0);
    free(out);
    free(err);
    free(id);
}

static void test_watch_failed_exit_code(void) {
    char *id = th_submit(&srv, "w", "\"queue\":\"failq\"");
    pid_t d = drive_async("failq", false, "plain", NULL);
    char *out, *err;
    int rc = cli_run(&srv, NULL, &out, &err, "watch", id);
    waitpid(d, NULL, 0);
    CHECK_INT(rc, 1);
    CHECK(strstr(out, "failed") != NULL);
    CHECK(strstr(out, "broke") != NULL);
    free(out);
    free(err);
    /* Already ended: watch returns at once; an unknown id is 3. */
    CHECK_INT(cli_run(&srv, NULL, &out, &err, "watch", id), 1);
    free(out);
    free(err);
    CHECK_INT(cli_run(&srv, NULL, &out, &err, "watch", "0123456789abcdef0123456789abcdef"), 3);
    free(out);
    free(err);
    /* A prefix that finds nothing is said, and the others are still
     * followed to their end: the worst outcome wins, as for cancel A B. */
    CHECK_INT(cli_run(&srv, NULL, &out, &err, "watch", "ffffffffffff", id), 3);
    CHECK(strstr(err, "no task has an id that starts with 'ffffffffffff'") != NULL);
    CHECK(strstr(out, id) != NULL);
    CHECK(strstr(out, "failed") != NULL);
    free(out);
    free(err);
    free(id);
}

static void test_watch_tty_redraws_in_place(void) {
    char *a = th_submit(&srv, "w", "\"queue\":\"ttyq\",\"name\":\"bar-a\"");
    char *b = th_submit(&srv, "w", "\"queue\":\"ttyq2\",\"name\":\"bar-b\"");
    pid_t d1 = drive_async("ttyq", true, "tty", "bar-a");
    pid_t d2 = drive_async("ttyq2", true, "tty", "bar-b");
    char *out;
    int rc = cli_run_pty(&srv, &out, "watch", a, b);
    waitpid(d1, NULL, 0);
    waitpid(d2, NULL, 0);
    CHECK_INT(rc, 0);
    /* Two rows, redrawn where the cursor rests (the first row's start, one line up from
     * the second), clearing from there down; the last draw ends below the rows. */
    CHECK(cli_count(out, "\r\033[J") >= 3);
    CHECK(cli_count(out, "\033[1A\r") >= 2);
    CHECK(cli_count(out, "\033[2A") == 0);
    CHECK(strstr(out, "bar-a") != NULL);
    CHECK(strstr(out, "bar-b") != NULL);
    CHECK(strstr(out, "[#####---------------]  25% 1/4") != NULL);
    CHECK(strstr(out, "[####################] 100%") != NULL);
    CHECK(strstr(out, "first") != NULL);
    CHECK(strstr(out, "ETA") != NULL);
    free(out);
    free(a);
    free(b);
}

/*
 * On a terminal, a task's row says "(waiting for the server)" only when
 * the server has not answered within a short grace: watching an ended task
 * on a healthy server never shows it (the first draw, before any answer,
 * showed it). A server that takes the connection and never answers gets
 * it on the screen.
 */
static void test_watch_tty_waiting_only_when_unanswered(void) {
    char *id = th_submit(&srv, "w", "\"queue\":\"graceq\"");
    char path[128];
    snprintf(path, sizeof path, "/v1/tasks/%s/cancel", id);
    CHECK_INT(th_http(&srv, "POST", path, "{}")->status, 200);
    char *out;
    CHECK_INT(cli_run_pty(&srv, &out, "watch", id), 1);
    CHECK(strstr(out, "cancelled") != NULL);
    if (strstr(out, "waiting for the server"))
        th_fail(__FILE__, __LINE__, "a healthy server's watch drew '%s'", out);
    free(out);
    /* A listener that never accepts: the connection is made, no answer comes. */
    int lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET};
    inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
    socklen_t len = sizeof sa;
    CHECK(bind(lfd, (struct sockaddr *)&sa, sizeof sa) == 0 && listen(lfd, 8) == 0 &&
          getsockname(lfd, (struct sockaddr *)&sa, &len) == 0);
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d", ntohs(sa.sin_port));
    int master;
    struct winsize ws = {.ws_row = 24, .ws_col = 120};
    fflush(stdout);
    pid_t pid = forkpty(&master, NULL, NULL, &ws);
    if (pid == 0) {
        setenv("TASKMILL_URL", url, 1);
        execl(getenv("TASKMILL_BIN"), "taskmill", "watch", id, (char *)NULL);
        _exit(127);
    }
    char screen[8192];
    cli_pty_read_until(master, screen, sizeof screen, "waiting for the server", 10000);
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    close(master);
    close(lfd);
    if (!strstr(screen, "waiting for the server"))
        th_fail(__FILE__, __LINE__, "an unanswering server's watch drew '%s'", screen);
    free(id);
}

static void test_submit_wait(void) {
    pid_t d = drive_async("waitq", true, "plain", NULL);
    char *out, *err;
    int rc = cli_run(&srv, NULL, &out, &err, "submit", "job", "--queue", "waitq", "--wait");
    waitpid(d, NULL, 0);
    CHECK_INT(rc, 0);
    CHECK(strstr(out, "completed 100%") != NULL);
    free(out);
    free(err);
    d = drive_async("waitq", false, NULL, NULL); /* --json: only the end */
    rc = cli_run(&srv, NULL, &out, &err, "submit", "job", "--queue", "waitq", "--wait", "--json");
    waitpid(d, NULL, 0);
    CHECK_INT(rc, 1);
    json_t *j = json_loads(out, 0, NULL);
    free(out);
    free(err);
    CHECK(j != NULL);
    CHECK_STR(th_str(j, "phase"), "failed");
    json_decref(j);
}

/* queue list|pause|resume: state shown, claims refused while paused, usage errors. */
static void test_queue_commands(void) {
    char *id = th_submit(&srv, "qc", "\"queue\":\"cliq\"");
    char *out, *err;
    CHECK_INT(cli_run(&srv, NULL, &out, &err, "queue", "pause", "cliq"), 0);
    CHECK(strstr(out, "cliq paused") != NULL);
    free(out);
    free(err);
    char cid[33], tok[33];
    CHECK_INT(th_claim(&srv, "cliq", NULL, cid, tok), 204);
    CHECK_INT(cli_run(&srv, NULL, &out, &err, "queue", "list"), 0);
    CHECK(strstr(out, "STATE") != NULL);
    CHECK(strstr(out, "cliq") != NULL && strstr(strstr(out, "cliq"), "paused") != NULL);
    free(out);
    free(err);
    CHECK_INT(cli_run(&srv, NULL, &out, &err, "queue", "resume", "--json", "cliq"), 0);
    CHECK(strstr(out, "\"active\"") != NULL);
    free(out);
    free(err);
    CHECK_INT(th_claim(&srv, "cliq", NULL, cid, tok), 200);
    CHECK_INT(cli_run(&srv, NULL, &out, &err, "queue", "pause", "bad name"), 4);
    CHECK(strstr(err, "queue") != NULL);
    free(out);
    free(err);
    CHECK_INT(cli_run(&srv, NULL, &out, &err, "queue", "explode"), 2);
    free(out);
    free(err);
    CHECK_INT(cli_run(&srv, NULL, &out, &err, "queue", "list", "extra"), 2);
    free(out);
    free(err);
    free(id);
}

/* definition create|list|launch and schedule create|list|preview|pause|trigger|delete. */
static void test_schedule_commands(void) {
    char *out, *err;
    CHECK_INT(cli_run(&srv, NULL, &out, &err, "definition", "create", "clidef", "--type", "rep",
                      "--queue", "cdq", "--param", "kind=daily", "--param", "n:=3"),
              0);
    CHECK(strstr(out, "clidef") != NULL);
    free(out);
    free(err);
    CHECK_INT(cli_run(&srv, NULL, &out, &err, "definition", "list"), 0);
    CHECK(strstr(out, "clidef") != NULL && strstr(out, "cdq") != NULL);
    free(out);
    free(err);
    CHECK_INT(cli_run(&srv, NULL, &out, &err, "definition", "launch", "--json", "clidef", "--param",
                      "kind=weekly"),
              0);
    CHECK(strstr(out, "\"weekly\"") != NULL && strstr(out, "\"clidef\"") != NULL);
    free(out);
    free(err);
    CHECK_INT(
        cli_run(&srv, NULL, &out, &err, "schedule", "create", "clisched", "--cron", "30 2 * * *",
                "--timezone", "America/New_York", "--definition", "clidef", "--paused"),
        0);
    free(out);
    free(err);
    CHECK_INT(cli_run(&srv, NULL, &out, &err, "schedule", "list"), 0);
    CHECK(strstr(out, "NEXT FIRE") != NULL && strstr(out, "clisched") != NULL);
    CHECK(strstr(out, "paused") != NULL);
    free(out);
    free(err);
    CHECK_INT(cli_run(&srv, NULL, &out, &err, "schedule", "preview", "clisched"), 0);
    CHECK(strstr(out, "local") != NULL);
    free(out);
    free(err);
    CHECK_INT(cli_run(&srv, NULL, &out, &err, "schedule", "trigger", "--json", "clisched"), 0);
    CHECK(strstr(out, "schedule:clisched") != NULL);
    free(out);
    free(err);
    CHECK_INT(cli_run(&srv, NULL, &out, &err, "schedule", "resume", "clisched", "--note", "go"), 0);
    CHECK(strstr(out, "active") != NULL);
    free(out);
    free(err);
    /* A schedule with an inline task: its template is not a launched task
     * ("task (null)" was printed); a trigger prints the task it launched. */
    CHECK_INT(cli_run(&srv, NULL, &out, &err, "schedule", "create", "cliinline", "--every", "3600",
                      "--type", "tick", "--queue", "ticks"),
              0);
    CHECK(strstr(out, "cliinline") != NULL && strstr(out, "(null)") == NULL);
    CHECK(strstr(out, "task ") == NULL);
    free(out);
    free(err);
    CHECK_INT(cli_run(&srv, NULL, &out, &err, "schedule", "get", "cliinline"), 0);
    CHECK(strstr(out, "(null)") == NULL && strstr(out, "task ") == NULL);
    free(out);
    free(err);
    CHECK_INT(cli_run(&srv, NULL, &out, &err, "schedule", "trigger", "cliinline"), 0);
    CHECK(strstr(out, "task 01") != NULL);
    free(out);
    free(err);
    CHECK_INT(cli_run(&srv, NULL, &out, &err, "schedule", "delete", "cliinline"), 0);
    free(out);
    free(err);
    /* Bad input: the server's message names the field; exit 4. */
    CHECK_INT(cli_run(&srv, NULL, &out, &err, "schedule", "create", "bad", "--cron", "61 * * * *",
                      "--type", "x"),
              4);
    CHECK(strstr(err, "minute") != NULL);
    free(out);
    free(err);
    CHECK_INT(cli_run(&srv, NULL, &out, &err, "schedule", "create", "bad", "--every", "10",
                      "--timezone", "Nowhere/City", "--type", "x"),
              4);
    CHECK(strstr(err, "Nowhere/City") != NULL);
    free(out);
    free(err);
    CHECK_INT(cli_run(&srv, NULL, &out, &err, "schedule", "delete", "clisched"), 0);
    free(out);
    free(err);
    CHECK_INT(cli_run(&srv, NULL, &out, &err, "schedule", "get", "clisched"), 3);
    free(out);
    free(err);
}

/* The integer at key of the JSON object o, or -999 when it is missing. */
static long long int_at(const json_t *o, const char *key) {
    const json_t *v = json_object_get(o, key);
    return json_is_integer(v) ? (long long)json_integer_value(v) : -999;
}

/*
 * Finding: `schedule create` could not give an inline task a priority or
 * retries (the flags were refused as not taken), though the API takes
 * both in `task`. They are the task's now: stored in the schedule and on
 * each task it launches. A value out of the task's range, or not a whole
 * number, is exit 2 naming the flag, and so is either with --definition
 * (the API takes no task field beside a definition); no schedule is made.
 */
static void test_schedule_inline_priority_retries(void) {
    char *out, *err;
    CHECK_INT(cli_run(&srv, NULL, &out, &err, "schedule", "create", "cliprio", "--every", "3600",
                      "--type", "prio", "--queue", "prioq", "--priority", "-7", "--max-retries",
                      "4", "--paused"),
              0);
    if (strstr(err, "taskmill")) printf("    %s", err);
    free(out);
    free(err);
    struct th_resp *r = th_http(&srv, "GET", "/v1/schedules/cliprio", NULL);
    CHECK_INT(r->status, 200);
    const json_t *task = json_object_get(r->json, "task");
    CHECK_INT(int_at(task, "priority"), -7);
    CHECK_INT(int_at(task, "max_retries"), 4);
    CHECK_STR(th_str(r->json, "task.queue"), "prioq");
    CHECK_INT(cli_run(&srv, NULL, &out, &err, "schedule", "trigger", "--json", "cliprio"), 0);
    json_t *fired = json_loads(out, 0, NULL);
    const json_t *launched = json_object_get(fired, "task");
    CHECK_INT(int_at(launched, "priority"), -7);
    CHECK_INT(int_at(launched, "max_retries"), 4);
    json_decref(fired);
    free(out);
    free(err);
    CHECK_INT(cli_run(&srv, NULL, &out, &err, "schedule", "delete", "cliprio"), 0);
    free(out);
    free(err);

    r = th_http(&srv, "GET", "/v1/schedules", NULL);
    size_t before = json_array_size(json_object_get(r->json, "schedules"));
    CHECK_INT(
        cli_run(&srv, NULL, &out, &err, "definition", "create", "cliprio-def", "--type", "prio"),
        0);
    free(out);
    free(err);
    static const struct {
        const char *flag, *value, *says;
        bool with_definition;
    } bad[] = {
        {"--priority", "1000001", "'--priority' must be an integer from -1000000 to 1000000", 0},
        {"--priority", "high", "'--priority' must be an integer", 0},
        {"--priority", "+3", "'--priority' must be an integer", 0},
        {"--max-retries", "-1", "'--max-retries' must be an integer from 0 to 1000", 0},
        {"--max-retries", "1001", "'--max-retries' must be an integer from 0 to 1000", 0},
        {"--priority", "3", "'--priority' is not taken with '--definition'", 1},
        {"--max-retries", "2", "'--max-retries' is not taken with '--definition'", 1},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int rc =
            bad[i].with_definition
                ? cli_run(&srv, NULL, &out, &err, "schedule", "create", "cliprio-bad", "--every",
                          "60", "--definition", "cliprio-def", bad[i].flag, bad[i].value)
                : cli_run(&srv, NULL, &out, &err, "schedule", "create", "cliprio-bad", "--every",
                          "60", "--type", "prio", bad[i].flag, bad[i].value);
        if (rc != 2 || !strstr(err, bad[i].says) || !strstr(err, "taskmill schedule create: "))
            th_fail(__FILE__, __LINE__, "%s %s: exit %d, '%s' (want 2, '%s')", bad[i].flag,
                    bad[i].value, rc, err, bad[i].says);
        free(out);
        free(err);
    }
    r = th_http(&srv, "GET", "/v1/schedules", NULL);
    CHECK_INT(json_array_size(json_object_get(r->json, "schedules")), before);
    r = th_http(&srv, "GET", "/v1/schedules/cliprio-bad", NULL);
    CHECK_INT(r->status, 404);
    CHECK_INT(cli_run(&srv, NULL, &out, &err, "definition", "delete", "cliprio-def"), 0);
    free(out);
    free(err);
}

/* A refusal names by its flag only a field the verb has a flag for: a trigger of a
 * schedule whose definition is gone said "'--definition': ...", a flag trigger does
 * not take. */
static void test_schedule_trigger_refusal_names_no_flag(void) {
    char *out, *err;
    CHECK_INT(cli_run(&srv, NULL, &out, &err, "definition", "create", "cligone-def", "--type", "g"),
              0);
    free(out);
    free(err);
    CHECK_INT(cli_run(&srv, NULL, &out, &err, "schedule", "create", "cligone", "--every", "3600",
                      "--definition", "cligone-def"),
              0);
    free(out);
    free(err);
    CHECK_INT(cli_run(&srv, NULL, &out, &err, "definition", "delete", "cligone-def"), 0);
    free(out);
    free(err);
    CHECK_INT(cli_run(&srv, NULL, &out, &err, "schedule", "trigger", "cligone"), 4);
    CHECK(strncmp(err,
                  "taskmill schedule trigger: the schedule launched nothing: definition "
                  "'cligone-def' not found",
                  strlen("taskmill schedule trigger: the schedule launched nothing: definition "
                         "'cligone-def' not found")) == 0);
    CHECK(strstr(err, "--definition") == NULL);
    free(out);
    free(err);
    /* Where the verb takes the flag, the field is still named by it. */
    CHECK_INT(cli_run(&srv, NULL, &out, &err, "schedule", "create", "cligone2", "--every", "3600",
                      "--definition", "no-such-def"),
              4);
    CHECK(strstr(err, "'--definition'") != NULL);
    free(out);
    free(err);
    CHECK_INT(cli_run(&srv, NULL, &out, &err, "schedule", "delete", "cligone"), 0);
    free(out);
    free(err);
}

/* Whether s holds a control character a terminal acts on (C0 but the newline, DEL, C1). */
static bool has_control(const char *s) {
    for (const unsigned char *u = (const unsigned char *)s; *u; u++)
        if ((*u < 0x20 && *u != '\n') || *u == 0x7f ||
            (u[0] == 0xc2 && u[1] >= 0x80 && u[1] <= 0x9f))
            return true;
    return false;
}

/*
 * A task's text (its name, its error) that holds escape sequences and
 * newlines is printed with '?' for them by get, list and watch: they went
 * to the terminal as they were (a title set, the screen cleared, a table
 * row or a watch line broken in two). --json is escaped as ever.
 */
static void test_control_characters_not_printed(void) {
    char *id = th_submit(&srv, "ctl",
                         "\"queue\":\"ctlq\",\"max_retries\":0,"
                         "\"name\":\"evil\\u001b]0;pwned\\u0007\\nname\\u009b2J\\tend\"");
    struct th_resp *r = th_http(&srv, "POST", "/v1/queues/ctlq/claim", "{\"worker\":\"w\"}");
    char body[400], path[128];
    snprintf(body, sizeof body,
             "{\"lease_token\":\"%s\",\"retryable\":false,"
             "\"error\":\"boom\\u001b[2J\\nsecond line\"}",
             th_str(r->json, "lease_token"));
    snprintf(path, sizeof path, "/v1/tasks/%s/fail", id);
    CHECK_INT(th_http(&srv, "POST", path, "%s", body)->status, 200);
    char *get, *list, *watch, *err;
    int get_rc = cli_run(&srv, NULL, &get, &err, "get", id);
    free(err);
    int list_rc = cli_run(&srv, NULL, &list, &err, "list", "--queue", "ctlq");
    free(err);
    int watch_rc = cli_run(&srv, NULL, &watch, &err, "watch", id);
    free(err);
    bool get_ok = strstr(get, "name        evil?]0;pwned??name?2J end\n") &&
                  strstr(get, "error       boom?[2J?second line\n");
    bool list_ok = strstr(list, "evil?]0;pwned??name?2J end\n") != NULL;
    int watch_lines = cli_count(watch, "\n");
    bool watch_ok = strstr(watch, "boom?[2J?second line\n") != NULL;
    bool clean = !has_control(get) && !has_control(list) && !has_control(watch);
    if (!get_ok || !list_ok || !watch_ok || !clean || watch_lines != 1)
        printf("    get:\n%s    list:\n%s    watch:\n%s", get, list, watch);
    free(get);
    free(list);
    free(watch);
    free(id);
    CHECK_INT(get_rc, 0);
    CHECK_INT(list_rc, 0);
    CHECK_INT(watch_rc, 1);
    CHECK(clean);
    CHECK(get_ok);
    CHECK(list_ok);
    CHECK(watch_ok);
    CHECK_INT(watch_lines, 1);
}

/* Whether s holds DEL or a C1 control (U+0080 to U+009F) as raw bytes. */
static bool has_raw_del_or_c1(const char *s) {
    for (const unsigned char *u = (const unsigned char *)s; *u; u++)
        if (*u == 0x7f || (u[0] == 0xc2 && u[1] >= 0x80 && u[1] <= 0x9f)) return true;
    return false;
}

/* Whether the JSON text out holds `text` at `path` (th_get's dotted path). */
static bool json_says(const char *out, const char *path, const char *text) {
    json_t *j = json_loads(out, JSON_DISABLE_EOF_CHECK, NULL);
    const char *got = j ? th_str(j, path) : NULL;
    bool same = got && strcmp(got, text) == 0;
    json_decref(j);
    return same;
}

/*
 * --json escapes DEL and the C1 controls (CSI among them, U+009B) as
 * \u007f and \u009b: JSON allows them raw, and jansson wrote them so,
 * straight to the terminal. The same string comes back when parsed, and
 * other non-ASCII text ('é') stays as it is. get, list and watch.
 */
static void test_json_escapes_del_and_c1(void) {
    const char *text =
        "a\x7f"
        "b\xc2\x9b"
        "2Jc \xc3\xa9t\xc3\xa9";
    const char *json_text = "a\\u007fb\\u009b2Jc \xc3\xa9t\xc3\xa9";
    char *id = th_submit(&srv, "c1",
                         "\"queue\":\"c1q\",\"name\":\"a\\u007fb\\u009b2Jc \xc3\xa9t\xc3\xa9\"");
    CHECK(id != NULL);
    if (!id) return;
    char tid[33], token[33], path[128];
    CHECK_INT(th_claim(&srv, "c1q", NULL, tid, token), 200);
    snprintf(path, sizeof path, "/v1/tasks/%s/heartbeat", id);
    CHECK_INT(
        th_http(&srv, "POST", path,
                "{\"lease_token\":\"%s\",\"messages\":[{\"level\":\"INFO\",\"text\":\"%s\"}]}",
                token, json_text)
            ->status,
        200);
    snprintf(path, sizeof path, "/v1/tasks/%s/complete", id);
    CHECK_INT(th_http(&srv, "POST", path, "{\"lease_token\":\"%s\"}", token)->status, 200);
    char *get, *list, *watch, *err;
    int get_rc = cli_run(&srv, NULL, &get, &err, "get", "--json", id);
    free(err);
    int list_rc = cli_run(&srv, NULL, &list, &err, "list", "--queue", "c1q", "--json");
    free(err);
    int watch_rc = cli_run(&srv, NULL, &watch, &err, "watch", "--json", id);
    free(err);
    bool raw = has_raw_del_or_c1(get) || has_raw_del_or_c1(list) || has_raw_del_or_c1(watch);
    bool same = json_says(get, "messages.0.text", text) && json_says(get, "name", text) &&
                json_says(list, "tasks.0.name", text) && json_says(watch, "messages.0.text", text);
    bool escaped = strstr(get, "a\\u007fb\\u009b2Jc \xc3\xa9t\xc3\xa9") &&
                   strstr(list, "a\\u007fb\\u009b2Jc \xc3\xa9t\xc3\xa9") &&
                   strstr(watch, "a\\u007fb\\u009b2Jc \xc3\xa9t\xc3\xa9");
    if (raw || !same || !escaped)
        printf("    get:\n%s    list:\n%s    watch:\n%s", get, list, watch);
    free(get);
    free(list);
    free(watch);
    free(id);
    CHECK_INT(get_rc, 0);
    CHECK_INT(list_rc, 0);
    CHECK_INT(watch_rc, 0);
    CHECK(!raw);
    CHECK(same);
    CHECK(escaped);
}

/*
 * Runs `taskmill ARGS...` with standard output on /dev/full (every write
 * fails with ENOSPC); returns its exit status, or -1 when it is still
 * running after 20 s (then it is killed), and its stderr in *err.
 */
static int run_full(char **err, const char *const *args) {
    pid_t pid = cli_spawn_outv(&srv, "/dev/full", args);
    int rc = cli_wait(pid, 20000);
    if (rc < 0) {
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
    }
    char e[300];
    snprintf(e, sizeof e, "%s/cli.err", srv.dir);
    *err = cli_slurp(e);
    return rc;
}

#define RUN_FULL(err, ...) run_full(err, CLI_ARGS(__VA_ARGS__))

/* A command whose output cannot be written fails (exit 6) saying so, one line on stderr; it
 * exited 0 having printed nothing. `watch` stops at its first line rather than following on. */
static void test_stdout_write_fails(void) {
    char *id = th_submit(&srv, "full", "\"queue\":\"fullq\"");
    char *err;
    CHECK_INT(RUN_FULL(&err, "get", id), 6);
    CHECK_STR(err, "taskmill get: cannot write the output: No space left on device\n");
    free(err);
    CHECK_INT(RUN_FULL(&err, "get", "--json", id), 6);
    CHECK_STR(err, "taskmill get: cannot write the output: No space left on device\n");
    free(err);
    CHECK_INT(RUN_FULL(&err, "list", "--queue", "fullq"), 6);
    CHECK_STR(err, "taskmill list: cannot write the output: No space left on device\n");
    free(err);
    CHECK_INT(RUN_FULL(&err, "list", "--json", "--queue", "fullq"), 6);
    free(err);
    CHECK_INT(RUN_FULL(&err, "queues", "--json"), 6);
    CHECK_STR(err, "taskmill queues: cannot write the output: No space left on device\n");
    free(err);
    CHECK_INT(RUN_FULL(&err, "--version"), 6);
    CHECK_STR(err, "taskmill: cannot write the output: No space left on device\n");
    free(err);
    /* A task that stays pending: the watch's first line fails, and it ends then. */
    CHECK_INT(RUN_FULL(&err, "watch", id), 6);
    CHECK_STR(err, "taskmill watch: cannot write the output: No space left on device\n");
    free(err);
    /* A command that wrote nothing on stdout keeps its own exit code. */
    CHECK_INT(RUN_FULL(&err, "get", "0123456789abcdef0123456789abcdef"), 3);
    free(err);
    char *out;
    CHECK_INT(cli_run(&srv, NULL, &out, &err, "cancel", id), 0);
    free(out);
    free(err);
    CHECK_INT(RUN_FULL(&err, "watch", "--json", id), 6);
    free(err);
    /* A reader that has gone (`taskmill get ID | head -0`): the command ends by
     * SIGPIPE without a word, as other Unix tools do; it said "cannot write the
     * output: Broken pipe" and exited 6. */
    int fds[2];
    CHECK(pipe(fds) == 0);
    close(fds[0]);
    char e[300];
    snprintf(e, sizeof e, "%s/cli.err", srv.dir);
    char *argv[64];
    cli_collect(argv, CLI_ARGS("get", id), 64);
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        setenv("TASKMILL_URL", srv.url, 1);
        int fe = open(e, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        dup2(fds[1], 1);
        dup2(fe, 2);
        execv(argv[0], argv);
        _exit(127);
    }
    close(fds[1]);
    int rc = cli_wait(pid, 20000);
    if (rc < 0) kill(pid, SIGKILL), waitpid(pid, NULL, 0);
    CHECK_INT(rc, 128 + SIGPIPE);
    err = cli_slurp(e);
    CHECK_STR(err, "");
    free(err);
    /* Output that is written still exits as before. */
    CHECK_INT(cli_run(&srv, NULL, &out, &err, "get", id), 0);
    free(out);
    free(err);
    free(id);
}

static const struct th_test tests[] = {
    {"--json escapes DEL and C1 controls, other text as it is", test_json_escapes_del_and_c1},
    {"schedule create gives an inline task --priority and --max-retries",
     test_schedule_inline_priority_retries},
    {"a trigger's refusal names no flag trigger does not take",
     test_schedule_trigger_refusal_names_no_flag},
    {"control characters in a task's text are not printed", test_control_characters_not_printed},
    {"submit with flags, get", test_submit_and_get},
    {"submit --params - --param --at --json", test_submit_params_file_and_json},
    {"exit codes", test_exit_codes},
    {"list: table, paging, --all --json", test_list_table_json_and_paging},
    {"pause, resume, cancel, retry", test_controls},
    {"watch through a pipe prints plain lines", test_watch_plain_lines},
    {"watch exits 1 for a failed task, 3 for an unknown one", test_watch_failed_exit_code},
    {"watch in a terminal redraws bars in place", test_watch_tty_redraws_in_place},
    {"watch on a terminal says it waits for the server only when it does",
     test_watch_tty_waiting_only_when_unanswered},
    {"submit --wait", test_submit_wait},
    {"queue list, pause, resume", test_queue_commands},
    {"definition and schedule commands", test_schedule_commands},
    {"stdout write fails", test_stdout_write_fails},
    {NULL, NULL},
};

int main(int argc, char **argv) {
    return th_main_server(tests, argc, argv, &srv, NULL);
}
