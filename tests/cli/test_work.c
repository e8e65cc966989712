/*
 * `taskmill work` running real shell commands against the real server:
 * a command that reports progress and reads its params completes; a
 * failure is retried; a permanent exit code fails for good; a cancel
 * reaches the command as SIGTERM (and SIGKILL after the grace); a worker
 * stopped by SIGTERM hands its task back; a silent command is kept alive
 * by heartbeats; a SIGKILLed worker's lease expires and another worker
 * finishes the task.
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>

#include "cli_run.h"
#include "harness.h"

static struct th_server srv;

static char *task_get(const char *id) {
    char path[128];
    snprintf(path, sizeof path, "/v1/tasks/%s", id);
    struct th_resp *r = th_http(&srv, "GET", path, NULL);
    return r->status == 200 ? json_dumps(r->json, 0) : NULL;
}

static char logpath[400];

static const char *worker_log(const char *name) {
    snprintf(logpath, sizeof logpath, "%s/%s.log", srv.dir, name);
    return logpath;
}

static void show_log(const char *name) {
    char *s = cli_slurp(worker_log(name));
    printf("    --- %s ---\n%s\n", name, s);
    free(s);
}

/* Whether the log of worker `name` holds text. */
static bool log_says(const char *name, const char *text) {
    char *s = cli_slurp(worker_log(name));
    bool says = strstr(s, text) != NULL;
    free(s);
    return says;
}

static bool file_exists(const char *name) {
    char p[400];
    snprintf(p, sizeof p, "%s/%s", srv.dir, name);
    return access(p, F_OK) == 0;
}

/* Whether the task's progress message is `message` (the command printed its line). */
static bool progress_says(const char *id, const char *message) {
    char path[128];
    snprintf(path, sizeof path, "/v1/tasks/%s", id);
    const char *m = th_str(th_http(&srv, "GET", path, NULL)->json, "progress.message");
    return m && strcmp(m, message) == 0;
}

/* The pid written in the file at path, or 0. */
static int pid_in(const char *path) {
    char *text = cli_slurp(path);
    int pid = atoi(text);
    free(text);
    return pid;
}

static const char *report_script =
    "read -r params; "
    "echo \"message INFO got $params\"; "
    "echo 'progress 0.5 halfway'; "
    "echo 'item a.jpg 100% resized'; "
    "echo 'items 1/2'; "
    "echo 'just some output'; "
    "echo 'progress 2.0 refused'; "
    "echo 'message WARN careful' ; "
    "echo \"attribute who $TASKMILL_PARAM_WHO\"; "
    "echo 'attribute size {\"w\":3}'; "
    "echo \"result {\\\"id\\\":\\\"$TASKMILL_TASK_ID\\\",\\\"n\\\":$TASKMILL_PARAM_N_COUNT}\"; "
    "echo 'to stderr' >&2; "
    "exit 0";

static void test_success_with_progress(void) {
    char *id =
        th_submit(&srv, "rep", "\"queue\":\"okq\",\"params\":{\"who\":\"me\",\"n-count\":7}");
    pid_t w = cli_spawn(&srv, worker_log("ok"), "work", "--queue", "okq", "--max-tasks", "1",
                        "--lease", "5", "--", "sh", "-c", report_script);
    int rc = cli_wait(w, 15000);
    if (rc != 0) show_log("ok");
    CHECK_INT(rc, 0);
    char path[128];
    snprintf(path, sizeof path, "/v1/tasks/%s", id);
    struct th_resp *r = th_http(&srv, "GET", path, NULL);
    CHECK_STR(th_str(r->json, "phase"), "completed");
    CHECK_STR(th_str(r->json, "completion_status"), "WARNING"); /* a WARN message was logged */
    CHECK_STR(th_str(r->json, "result.id"), id);
    CHECK_INT(th_int(r->json, "result.n"), 7);
    CHECK_STR(th_str(r->json, "attributes.who"), "me");
    CHECK_INT(th_int(r->json, "attributes.size.w"), 3);
    const char *tail = th_str(r->json, "attributes.log_tail");
    CHECK(tail && strstr(tail, "just some output") && strstr(tail, "to stderr"));
    CHECK(strstr(tail, "progress 2.0 refused") != NULL);
    CHECK_STR(th_str(r->json, "items.0.name"), "a.jpg");
    CHECK_STR(th_str(r->json, "messages.0.level"), "INFO");
    CHECK(strstr(th_str(r->json, "messages.0.text"), "\"who\":\"me\"") != NULL);
    CHECK_STR(th_str(r->json, "messages.1.level"), "WARN");
    CHECK_INT(th_int(r->json, "progress.processed"), 1);
    CHECK_INT(th_int(r->json, "attempt"), 1);
    free(id);
}

static void test_failure_then_retry(void) {
    char *id = th_submit(&srv, "flaky", "\"queue\":\"retryq\",\"backoff_ms\":10");
    char script[600];
    snprintf(script, sizeof script,
             "if [ -e %s/tried ]; then echo done; exit 0; fi; touch %s/tried; "
             "echo 'it broke' >&2; exit 1",
             srv.dir, srv.dir);
    pid_t w = cli_spawn(&srv, worker_log("retry"), "work", "--queue", "retryq", "--max-tasks", "2",
                        "--", "sh", "-c", script);
    int rc = cli_wait(w, 20000);
    if (rc != 0) show_log("retry");
    CHECK_INT(rc, 0);
    char path[128];
    snprintf(path, sizeof path, "/v1/tasks/%s", id);
    struct th_resp *r = th_http(&srv, "GET", path, NULL);
    CHECK_STR(th_str(r->json, "phase"), "completed");
    CHECK_INT(th_int(r->json, "attempt"), 2);
    CHECK_INT(th_int(r->json, "retries"), 1);
    free(id);
}

static void test_permanent_exit_code(void) {
    char *id = th_submit(&srv, "bad", "\"queue\":\"permq\"");
    pid_t w = cli_spawn(&srv, worker_log("perm"), "work", "--queue", "permq", "--max-tasks", "1",
                        "--", "sh", "-c", "echo 'bad input'; exit 3");
    CHECK_INT(cli_wait(w, 15000), 0);
    char path[128];
    snprintf(path, sizeof path, "/v1/tasks/%s", id);
    struct th_resp *r = th_http(&srv, "GET", path, NULL);
    CHECK_STR(th_str(r->json, "phase"), "failed");
    CHECK_STR(th_str(r->json, "completion_status"), "ERROR");
    CHECK_INT(th_int(r->json, "retries"), 0);
    CHECK_STR(th_str(r->json, "error"), "command exited with status 3: bad input");

    /* --permanent-exit-code picks another code; 3 is then retryable. */
    id = (free(id), th_submit(&srv, "bad", "\"queue\":\"permq2\",\"max_retries\":0"));
    w = cli_spawn(&srv, worker_log("perm2"), "work", "--queue", "permq2", "--max-tasks", "1",
                  "--permanent-exit-code", "9", "--", "sh", "-c", "exit 3");
    CHECK_INT(cli_wait(w, 15000), 0);
    snprintf(path, sizeof path, "/v1/tasks/%s", id);
    r = th_http(&srv, "GET", path, NULL);
    CHECK_STR(th_str(r->json, "completion_status"), "TEMPERROR");
    free(id);
}

/* A 30 s lease, heartbeats every 0.2 s (the cancel seen at once): with a
 * 3 s lease, a worker held up 3 s lost it, and the task ended by the
 * lease's end (or went back for a retry) rather than by the worker's
 * answer to the cancel. Now 'cancelled' comes only from that answer. */
static void test_cancel_reaches_command(void) {
    char *id = th_submit(&srv, "long", "\"queue\":\"cancelq\"");
    char script[600];
    snprintf(script, sizeof script,
             "trap 'touch %s/got_term; exit 143' TERM; echo 'progress 0.1 started'; "
             "while :; do sleep 0.1; done",
             srv.dir);
    pid_t w = cli_spawn(&srv, worker_log("cancel"), "work", "--queue", "cancelq", "--lease", "30",
                        "--heartbeat", "0.2", "--", "sh", "-c", script);
    CHECK(cli_wait_phase(&srv, id, "running", 20000));
    /* Its progress line comes after its trap is set. */
    WAIT_UNTIL(progress_says(id, "started"), 20000, "the command's first progress line");
    char *out, *err;
    CHECK_INT(cli_run(&srv, NULL, &out, &err, "cancel", id), 0);
    free(out);
    free(err);
    bool cancelled = cli_wait_phase(&srv, id, "cancelled", 20000);
    if (!cancelled) show_log("cancel");
    CHECK(cancelled);
    CHECK(file_exists("got_term"));
    char path[128];
    snprintf(path, sizeof path, "/v1/tasks/%s", id);
    struct th_resp *r = th_http(&srv, "GET", path, NULL);
    CHECK_STR(th_str(r->json, "completion_status"), "TERMINATED");
    /* The worker goes on; SIGTERM stops it cleanly. */
    CHECK_INT(cli_wait(w, 200), -1);
    kill(w, SIGTERM);
    CHECK_INT(cli_wait(w, 10000), 0);
    free(id);
}

/* A 10 s lease, heartbeats every 0.2 s (the cancel seen at once): with a
 * 2 s lease, a worker held up 2 s after the cancel lost the lease, the
 * task went to 'cancelled' by the lease's end, and the kill was reported
 * to no one. */
static void test_cancel_kills_after_grace(void) {
    char *id = th_submit(&srv, "stubborn", "\"queue\":\"graceq\"");
    pid_t w = cli_spawn(&srv, worker_log("grace"), "work", "--queue", "graceq", "--lease", "10",
                        "--heartbeat", "0.2", "--grace", "1", "--max-tasks", "1", "--", "sh", "-c",
                        "trap '' TERM; while :; do sleep 0.1; done");
    CHECK(cli_wait_phase(&srv, id, "running", 10000));
    char path[128];
    snprintf(path, sizeof path, "/v1/tasks/%s/cancel", id);
    CHECK_INT(th_http(&srv, "POST", path, NULL)->status, 200);
    CHECK(cli_wait_phase(&srv, id, "cancelled", 20000));
    int rc = cli_wait(w, 20000);
    if (rc != 0) show_log("grace");
    CHECK_INT(rc, 0);
    char *t = task_get(id);
    CHECK(t && strstr(t, "signal 9"));
    free(t);
    free(id);
}

/*
 * Output that is not UTF-8 (a stray byte, a NUL) reaches the server with
 * '?' for each bad byte: the failure naming the last line is taken (it was
 * refused, 'error' is required, and the task stayed running until its lease
 * ran out), and so is a progress message; good characters stay as they are.
 * One task at a time, and batched.
 */
static void run_output_not_utf8(const char *queue, bool batched) {
    char extra[100];
    snprintf(extra, sizeof extra, "\"queue\":\"%s\",\"max_retries\":0", queue);
    char *id = th_submit(&srv, "binary", extra);
    pid_t w =
        cli_spawn(&srv, worker_log(queue), "work", "--queue", queue, "--max-tasks", "1",
                  "--concurrency", batched ? "2" : "1", "--", "sh", "-c",
                  "printf 'progress 0.5 caf\\303\\251 \\377\\n'; printf 'ok caf\\303\\251\\n'; "
                  "printf 'nul\\000byte\\n'; printf 'bad \\377 byte\\n'; exit 1");
    int rc = cli_wait(w, 15000);
    char path[128];
    snprintf(path, sizeof path, "/v1/tasks/%s", id);
    free(id);
    struct th_resp *r = th_http(&srv, "GET", path, NULL);
    if (rc != 0 || strcmp(th_str(r->json, "phase"), "failed")) show_log(queue);
    CHECK_INT(rc, 0);
    CHECK_STR(th_str(r->json, "phase"), "failed");
    CHECK_STR(th_str(r->json, "error"), "command exited with status 1: bad ? byte");
    CHECK_STR(th_str(r->json, "progress.message"), "caf\xc3\xa9 ?");
    const char *tail = th_str(r->json, "attributes.log_tail");
    CHECK(tail && strstr(tail, "ok caf\xc3\xa9\nnul?byte\nbad ? byte"));
}

static void test_output_not_utf8(void) {
    run_output_not_utf8("utf8q", false);
    if (!th_failed()) run_output_not_utf8("butf8q", true);
}

/*
 * Params too large for the command's environment: 5 strings of 60,000
 * bytes make TASKMILL_PARAMS 300 KB, past the 128 KiB one variable may
 * hold, so it is left out and the command runs (the params on standard
 * input, TASKMILL_PARAM_A there); with a stack limit of 1 MiB (arguments
 * and environment get a quarter of it) the TASKMILL_PARAM_* are too much
 * together, and the command runs without them. It was never started: the
 * task was handed back, claimed again and handed back for good.
 */
static void run_params_too_large(const char *queue, long stack_kib) {
    size_t big = 60000;
    char *extra = malloc(5 * (big + 16) + 200), *p = extra;
    p += sprintf(p, "\"queue\":\"%s\",\"max_retries\":0,\"params\":{", queue);
    for (int k = 0; k < 5; k++) {
        p += sprintf(p, "%s\"%c\":\"", k ? "," : "", 'a' + k);
        memset(p, 'x', big);
        p += big;
        *p++ = '"';
    }
    strcpy(p, "}");
    char *id = th_submit(&srv, "huge", extra);
    free(extra);
    struct rlimit old, small;
    getrlimit(RLIMIT_STACK, &old);
    small = old;
    if (stack_kib) small.rlim_cur = (rlim_t)stack_kib * 1024;
    setrlimit(RLIMIT_STACK, &small); /* the worker inherits it */
    pid_t w = cli_spawn(
        &srv, worker_log(queue), "work", "--queue", queue, "--max-tasks", "1", "--", "sh", "-c",
        "read -r p; echo \"result {\\\"stdin\\\":${#p},\\\"all\\\":${#TASKMILL_PARAMS},"
        "\\\"a\\\":${#TASKMILL_PARAM_A}}\"");
    setrlimit(RLIMIT_STACK, &old);
    int rc = cli_wait(w, 15000);
    char path[128];
    snprintf(path, sizeof path, "/v1/tasks/%s", id);
    free(id);
    struct th_resp *r = th_http(&srv, "GET", path, NULL);
    if (rc != 0 || strcmp(th_str(r->json, "phase"), "completed")) show_log(queue);
    CHECK_INT(rc, 0);
    CHECK_STR(th_str(r->json, "phase"), "completed");
    CHECK_INT(th_int(r->json, "attempt"), 1);
    CHECK_INT(th_int(r->json, "result.stdin"), 5 * (60000 + 6) + 4 + 2);
    CHECK_INT(th_int(r->json, "result.all"), 0);
    CHECK_INT(th_int(r->json, "result.a"), stack_kib ? 0 : 60000);
    char *log = cli_slurp(worker_log(queue));
    bool said = strstr(log, stack_kib ? "too large for the command's environment"
                                      : "TASKMILL_PARAMS is left out") != NULL;
    free(log);
    CHECK(said);
}

static void test_params_too_large(void) {
    run_params_too_large("hugeq", 0);
    if (!th_failed()) run_params_too_large("hugeq2", 1024);
}

/* Whether process pid is there and not a zombie. */
static bool proc_alive(int pid) {
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/stat", pid);
    char *st = cli_slurp(path);
    const char *paren = strrchr(st, ')');
    bool alive = paren && paren[1] == ' ' && paren[2] != 'Z' && paren[2] != 'X';
    free(st);
    return alive;
}

/*
 * A cancelled command that exits on SIGTERM at once, but whose child (in
 * its process group) ignores SIGTERM: the child is killed after the grace
 * too, before the task is reported cancelled; it was left running for
 * good. One task at a time, and batched.
 */
static void run_cancel_kills_lingering_child(const char *queue, bool batched) {
    char extra[100];
    snprintf(extra, sizeof extra, "\"queue\":\"%s\"", queue);
    char *id = th_submit(&srv, "lingering", extra);
    char pidfile[400], script[900];
    snprintf(pidfile, sizeof pidfile, "%s/%s.pid", srv.dir, queue);
    snprintf(script, sizeof script,
             "sh -c 'trap \"\" TERM; echo $$ > %s; while :; do sleep 0.1; done' & "
             "while [ ! -s %s ]; do sleep 0.05; done; echo 'progress 0.1 started'; wait",
             pidfile, pidfile);
    pid_t w =
        cli_spawn(&srv, worker_log(queue), "work", "--queue", queue, "--grace", "1", "--heartbeat",
                  "0.3", "--concurrency", batched ? "2" : "1", "--", "sh", "-c", script);
    WAIT_UNTIL(progress_says(id, "started"), 10000, "the command's first progress line");
    int child = pid_in(pidfile);
    bool started = child > 0 && proc_alive(child);
    char path[128];
    snprintf(path, sizeof path, "/v1/tasks/%s/cancel", id);
    int status = th_http(&srv, "POST", path, NULL)->status;
    bool cancelled = cli_wait_phase(&srv, id, "cancelled", 10000);
    bool lingers = child > 0 && proc_alive(child); /* gone by the time the task is cancelled */
    if (!cancelled || lingers) show_log(queue);
    if (child > 0) kill(child, SIGKILL);
    kill(w, SIGTERM);
    int rc = cli_wait(w, 10000);
    free(id);
    CHECK(started);
    CHECK_INT(status, 200);
    CHECK(cancelled);
    CHECK(!lingers);
    CHECK_INT(rc, 0);
}

static void test_cancel_kills_lingering_child(void) {
    run_cancel_kills_lingering_child("lingerq", false);
    if (!th_failed()) run_cancel_kills_lingering_child("blingerq", true);
}

static void test_sigterm_hands_task_back(void) {
    char *id = th_submit(&srv, "slow", "\"queue\":\"stopq\"");
    char script[600];
    snprintf(script, sizeof script,
             "trap 'touch %s/stop_term; exit 143' TERM; touch %s/stop_ready; "
             "while :; do sleep 0.1; done",
             srv.dir, srv.dir);
    pid_t w =
        cli_spawn(&srv, worker_log("stop"), "work", "--queue", "stopq", "--", "sh", "-c", script);
    CHECK(cli_wait_phase(&srv, id, "running", 10000));
    /* The task runs once claimed, but its command may not have set its trap yet: a
     * SIGTERM before that ends the shell without the file. Wait for the command. */
    for (int i = 0; i < 200 && !file_exists("stop_ready"); i++)
        th_sleep_ms(50);
    CHECK(file_exists("stop_ready"));
    kill(w, SIGTERM);
    int rc = cli_wait(w, 10000);
    if (rc != 0) show_log("stop");
    CHECK_INT(rc, 0);
    CHECK(file_exists("stop_term"));
    char path[128];
    snprintf(path, sizeof path, "/v1/tasks/%s", id);
    struct th_resp *r = th_http(&srv, "GET", path, NULL);
    CHECK_STR(th_str(r->json, "phase"), "pending");
    CHECK_INT(th_int(r->json, "retries"), 0);
    free(id);
}

/* Milliseconds since 1970 of an RFC 3339 UTC time as the server writes
 * it ("2026-12-07T15:40:00.123Z"), or -1. */
static long long utc_ms(const char *t) {
    struct tm tm = {0};
    int ms = 0;
    if (!t || sscanf(t, "%d-%d-%dT%d:%d:%d.%dZ", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour,
                     &tm.tm_min, &tm.tm_sec, &ms) != 7)
        return -1;
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    return (long long)timegm(&tm) * 1000 + ms;
}

/* The end of the task's lease, as the server has it (ms), or -1. */
static long long lease_end_ms(const char *id) {
    char path[128];
    snprintf(path, sizeof path, "/v1/tasks/%s", id);
    return utc_ms(th_str(th_http(&srv, "GET", path, NULL)->json, "lease.expires_at"));
}

#define SILENT_LEASE_MS 8000 /* its --lease */

/*
 * A command that says nothing for more than twice its lease keeps it:
 * heartbeats alone hold it. The command runs until the server has moved
 * the lease's end two leases past where it first stood (a heartbeat sent
 * two leases after the claim at the earliest), then until told; with
 * max_retries 0 a lapse would fail the task. An 8 s lease with heartbeats
 * every 0.4 s: a worker held up 7 s keeps it. A 3 s lease and a fixed
 * 'sleep 7' lost it to a worker held up 3 s on a loaded machine.
 */
static void test_silent_command_keeps_its_lease(void) {
    char *id = th_submit(&srv, "quiet", "\"queue\":\"silentq\",\"max_retries\":0");
    char script[400];
    snprintf(script, sizeof script,
             "i=0; while [ ! -e %s/silent-go ]; do i=$((i+1)); [ $i -gt 3000 ] && exit 1; "
             "sleep 0.05; done; exit 0",
             srv.dir);
    pid_t w = cli_spawn(&srv, worker_log("silent"), "work", "--queue", "silentq", "--lease", "8",
                        "--heartbeat", "0.4", "--max-tasks", "1", "--", "sh", "-c", script);
    CHECK(cli_wait_phase(&srv, id, "running", 20000));
    long long first = lease_end_ms(id);
    CHECK(first > 0);
    bool held;
    TRY_WAIT_UNTIL(held, lease_end_ms(id) >= first + 2 * SILENT_LEASE_MS, 60000,
                   "the lease to be held two leases on by heartbeats");
    char go[400];
    snprintf(go, sizeof go, "%s/silent-go", srv.dir);
    FILE *f = fopen(go, "w");
    if (f) fclose(f);
    int rc = cli_wait(w, 20000);
    if (rc != 0 || !held) show_log("silent");
    CHECK(held);
    CHECK_INT(rc, 0);
    char path[128];
    snprintf(path, sizeof path, "/v1/tasks/%s", id);
    struct th_resp *r = th_http(&srv, "GET", path, NULL);
    CHECK_STR(th_str(r->json, "phase"), "completed");
    CHECK_INT(th_int(r->json, "attempt"), 1);
    free(id);
}

static void test_killed_worker_lease_expires(void) {
    char *id = th_submit(&srv, "orphan", "\"queue\":\"killq\",\"backoff_ms\":10");
    char script[600];
    snprintf(script, sizeof script,
             "if [ -n \"$TASKMILL_ATTEMPT\" ] && [ \"$TASKMILL_ATTEMPT\" -gt 1 ]; then "
             "echo 'progress 1 second attempt'; exit 0; fi; echo $$ > %s/cmd.pid; exec sleep 60",
             srv.dir);
    pid_t w = cli_spawn(&srv, worker_log("kill"), "work", "--queue", "killq", "--lease", "2", "--",
                        "sh", "-c", script);
    CHECK(cli_wait_phase(&srv, id, "running", 10000));
    char pidfile[400];
    snprintf(pidfile, sizeof pidfile, "%s/cmd.pid", srv.dir);
    WAIT_UNTIL(pid_in(pidfile) > 0, 10000, "the command to write its pid to %s", pidfile);
    kill(w, SIGKILL);
    CHECK_INT(cli_wait(w, 5000), 128 + SIGKILL);
    /* The command outlives a SIGKILLed worker (own process group); end it here. */
    int cmd = pid_in(pidfile);
    if (cmd > 0) kill(cmd, SIGKILL);
    /* The lease runs out within ~2 s and the sweep puts the task back for a retry. */
    bool back = false;
    for (int i = 0; i < 100 && !back; i++) {
        const char *ph = th_phase(&srv, id);
        back = strcmp(ph, "waiting") == 0 || strcmp(ph, "pending") == 0;
        if (!back) th_sleep_ms(100);
    }
    CHECK(back);
    char *t = task_get(id);
    CHECK(t && strstr(t, "expired"));
    free(t);
    pid_t w2 = cli_spawn(&srv, worker_log("kill2"), "work", "--queue", "killq", "--max-tasks", "1",
                         "--", "sh", "-c", script);
    int rc = cli_wait(w2, 15000);
    if (rc != 0) show_log("kill2");
    CHECK_INT(rc, 0);
    char path[128];
    snprintf(path, sizeof path, "/v1/tasks/%s", id);
    struct th_resp *r = th_http(&srv, "GET", path, NULL);
    CHECK_STR(th_str(r->json, "phase"), "completed");
    CHECK_INT(th_int(r->json, "attempt"), 2);
    free(id);
}

/* Four tasks at --concurrency 4 run at once: each command waits until all
 * four have started (their pids in par.pids), and fails after 20 s
 * without: one at a time, the first would never see the others. Shown by
 * what ran, not by how long it took (a loaded machine can start four
 * commands slower than a second apart). */
static void test_concurrency(void) {
    char *ids[4];
    for (int i = 0; i < 4; i++)
        ids[i] = th_submit(&srv, "par", "\"queue\":\"parq\",\"max_retries\":0");
    char script[600];
    snprintf(script, sizeof script,
             "echo $$ >> %s/par.pids; i=0; while [ $(wc -l < %s/par.pids) -lt 4 ]; do "
             "i=$((i+1)); if [ $i -gt 200 ]; then echo 'not four at once' >&2; exit 1; fi; "
             "sleep 0.1; done",
             srv.dir, srv.dir);
    pid_t w = cli_spawn(&srv, worker_log("par"), "work", "--queue", "parq", "--concurrency", "4",
                        "--max-tasks", "4", "--", "sh", "-c", script);
    int rc = cli_wait(w, 60000);
    if (rc != 0) show_log("par");
    CHECK_INT(rc, 0);
    for (int i = 0; i < 4; i++) {
        CHECK_STR(th_phase(&srv, ids[i]), "completed");
        free(ids[i]);
    }
}

/* A report the server refuses as such (items past the 1,000 a task holds:
 * 600 names, a heartbeat, 600 more) is dropped, with a line in the
 * worker's log: the next call goes bare, the lease holds and the end is
 * taken. `during` makes the command outlive its lease twice over after
 * the second 600 (heartbeats carry them); otherwise it ends at once (its
 * end carries them). Its message comes 1.5 s after the second 600, three
 * heartbeat intervals, so the refused report has gone without it on a
 * loaded machine too (0.3 s was once too little). The lease is 4 s, not
 * 2 s: a worker held up 2 s on a loaded machine lost a 2 s lease with no
 * report refused at all. One task at a time, and batched (--concurrency 2). */
static void run_refused_report(const char *queue, bool batched, bool during) {
    char extra[120];
    snprintf(extra, sizeof extra, "\"queue\":\"%s\",\"max_retries\":0", queue);
    char *id = th_submit(&srv, "many-items", extra);
    char script[400];
    snprintf(script, sizeof script,
             "i=0; while [ $i -lt 1200 ]; do echo \"item f$i 100%% done\"; i=$((i+1)); "
             "if [ $i = 600 ]; then sleep 1.5; fi; done; %s echo 'result {\"ok\":true}'; exit 0",
             during ? "sleep 1.5; echo 'message INFO after the refusal'; sleep 7.5;" : "");
    pid_t w = cli_spawn(&srv, worker_log(queue), "work", "--queue", queue, "--lease", "4",
                        "--heartbeat", "0.5", "--max-tasks", "1", "--concurrency",
                        batched ? "2" : "1", "--", "sh", "-c", script);
    int rc = cli_wait(w, 30000);
    char *log = cli_slurp(worker_log(queue));
    if (rc != 0 || !strstr(log, "is dropped")) show_log(queue);
    CHECK_INT(rc, 0);
    CHECK(strstr(log, "its report (items, messages, attributes) is dropped") != NULL);
    free(log);
    char path[128];
    snprintf(path, sizeof path, "/v1/tasks/%s", id);
    struct th_resp *r = th_http(&srv, "GET", path, NULL);
    CHECK_STR(th_str(r->json, "phase"), "completed");
    CHECK_INT(th_int(r->json, "attempt"), 1);
    CHECK(json_is_true(th_get(r->json, "result.ok")));
    CHECK(json_array_size(th_get(r->json, "items")) <= 1000); /* what came before the refusal */
    /* What the command said after the refusal is not lost with it. */
    if (during) CHECK_STR(th_str(r->json, "messages.0.text"), "after the refusal");
    free(id);
}

static void test_refused_report_is_dropped(void) {
    run_refused_report("refusedhb", false, true);
    if (!th_failed()) run_refused_report("refusedend", false, false);
    if (!th_failed()) run_refused_report("brefusedhb", true, true);
    if (!th_failed()) run_refused_report("brefusedend", true, false);
}

/* The shell example of the docs, run by a worker. */
static void test_example_script(void) {
    char *id = th_submit(&srv, "demo", "\"queue\":\"exq\",\"params\":{\"steps\":3,\"delay\":0.05}");
    pid_t w = cli_spawn(&srv, worker_log("example"), "work", "--queue", "exq", "--max-tasks", "1",
                        "--", "examples/report_progress.sh");
    int rc = cli_wait(w, 15000);
    if (rc != 0) show_log("example");
    CHECK_INT(rc, 0);
    char path[128];
    snprintf(path, sizeof path, "/v1/tasks/%s", id);
    struct th_resp *r = th_http(&srv, "GET", path, NULL);
    CHECK_STR(th_str(r->json, "phase"), "completed");
    CHECK_INT(th_int(r->json, "result.steps"), 3);
    CHECK_INT(th_int(r->json, "progress.processed"), 3);
    CHECK_STR(th_str(r->json, "items.2.name"), "part-3");
    free(id);
}

/* ---- --concurrency N > 1: the batched protocol ---- */

/*
 * A relay between a worker and the server that keeps a copy of the bytes
 * of each connection, what the worker sent (PREFIX.up.K) and what it got
 * (PREFIX.down.K), so a test sees the very requests the worker made. A
 * child process with one poll loop; it ends when the test process does.
 * Started with relay_start_holding, it holds every request whose bytes
 * hold `hold`: noted, never passed on, never answered, as a server that
 * hangs on them would (that connection is held from then on), until a
 * file PREFIX.pass exists: requests after that pass on. Started
 * with relay_start_answering, it answers them itself with `answer` and
 * closes the connection, as a proxy in front of a server that is away.
 */
struct relay {
    pid_t pid;
    int port;
    int reserve;          /* bound to port, never listening: see relay_start_answering */
    struct th_server via; /* srv with the relay's URL, for cli_spawn */
    char prefix[400];
};

static void relay_serve(int lfd, int server_port, const char *prefix, pid_t parent,
                        const char *hold, const char *answer) {
    struct {
        int fd[2], log[2]; /* [0] the worker's side, [1] the server's */
        bool held;
    } c[64];
    int n = 0, accepted = 0;
    for (;;) {
        if (getppid() != parent) _exit(0);
        struct pollfd p[1 + 2 * 64];
        p[0] = (struct pollfd){lfd, POLLIN, 0};
        for (int i = 0; i < n; i++) {
            p[1 + 2 * i] = (struct pollfd){c[i].fd[0], POLLIN, 0};
            p[2 + 2 * i] = (struct pollfd){c[i].fd[1], POLLIN, 0};
        }
        if (poll(p, (nfds_t)(1 + 2 * n), 500) <= 0) continue;
        int polled = n;
        for (int i = 0; i < polled; i++) {
            for (int side = 0; side < 2 && c[i].fd[0] >= 0; side++) {
                if (!p[1 + 2 * i + side].revents) continue;
                char buf[65536];
                ssize_t got = read(c[i].fd[side], buf, sizeof buf);
                bool ok = got > 0 && write(c[i].log[side], buf, (size_t)got) == got;
                if (ok && side == 0 && hold && !c[i].held) {
                    char pass[460];
                    snprintf(pass, sizeof pass, "%s.pass", prefix);
                    c[i].held = memmem(buf, (size_t)got, hold, strlen(hold)) != NULL &&
                                access(pass, F_OK) != 0;
                }
                if (ok && c[i].held && answer) {
                    ok = write(c[i].fd[0], answer, strlen(answer)) > 0 &&
                         write(c[i].log[1], answer, strlen(answer)) > 0;
                    ok = false; /* answered: the connection closes */
                }
                for (ssize_t off = 0; ok && !c[i].held && off < got;) {
                    ssize_t w = write(c[i].fd[!side], buf + off, (size_t)(got - off));
                    ok = w > 0;
                    off += w;
                }
                if (!ok) {
                    for (int k = 0; k < 2; k++) {
                        close(c[i].fd[k]);
                        close(c[i].log[k]);
                    }
                    c[i].fd[0] = -1;
                }
            }
        }
        int kept = 0;
        for (int i = 0; i < n; i++)
            if (c[i].fd[0] >= 0) c[kept++] = c[i];
        n = kept;
        if (p[0].revents && n < 64) {
            int a = accept(lfd, NULL, NULL);
            int b = socket(AF_INET, SOCK_STREAM, 0);
            struct sockaddr_in sa = {.sin_family = AF_INET,
                                     .sin_port = htons((uint16_t)server_port),
                                     .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
            if (a < 0 || b < 0 || connect(b, (struct sockaddr *)&sa, sizeof sa)) {
                close(a);
                close(b);
                continue;
            }
            char path[460];
            snprintf(path, sizeof path, "%s.up.%d", prefix, accepted);
            c[n].log[0] = open(path, O_WRONLY | O_CREAT | O_APPEND, 0600);
            snprintf(path, sizeof path, "%s.down.%d", prefix, accepted++);
            c[n].log[1] = open(path, O_WRONLY | O_CREAT | O_APPEND, 0600);
            c[n].fd[0] = a;
            c[n].fd[1] = b;
            c[n].held = false;
            n++;
        }
    }
}

/* A socket with SO_REUSEADDR bound to 127.0.0.1:port (0: any free one); -1 on error. */
static int relay_bind(int port) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons((uint16_t)port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) ||
        bind(fd, (struct sockaddr *)&a, sizeof a)) {
        if (fd >= 0) close(fd);
        return -1;
    }
    return fd;
}

/* Starts the relay's process on rl->port, which rl->reserve holds. */
static int relay_spawn(struct relay *rl, const char *tag, const char *hold, const char *answer) {
    int lfd = relay_bind(rl->port);
    if (lfd < 0 || listen(lfd, 16)) {
        if (lfd >= 0) close(lfd);
        return -1;
    }
    rl->via = srv;
    snprintf(rl->via.url, sizeof rl->via.url, "http://127.0.0.1:%d", rl->port);
    snprintf(rl->prefix, sizeof rl->prefix, "%s/%s", srv.dir, tag);
    const char *colon = strrchr(srv.url, ':');
    int server_port = colon ? atoi(colon + 1) : 0;
    pid_t parent = getpid();
    fflush(stdout);
    rl->pid = fork();
    if (rl->pid == 0) {
        relay_serve(lfd, server_port, rl->prefix, parent, hold, answer);
        _exit(0);
    }
    close(lfd);
    return rl->pid > 0 ? 0 : -1;
}

/*
 * Starts a relay to srv on a free port; files under srv.dir named after tag.
 * Requests holding `hold` (NULL: none) are held, unanswered, or answered with
 * `answer`. The port is reserved until relay_stop: a second socket bound to
 * it (SO_REUSEADDR on both) that never listens, so a connection finds no
 * one there once relay_pause has ended the relay's process (refused, as a
 * server gone), yet no connection made meanwhile can take the port as its
 * own local port (the kernel leaves bound ports out of those it picks), and
 * relay_resume cannot fail on it. Bound and released, a port in the range
 * the kernel picks from could be taken by any connection (the worker's
 * retries among them), and the restart failed with EADDRINUSE.
 */
static int relay_start_answering(struct relay *rl, const char *tag, const char *hold,
                                 const char *answer) {
    memset(rl, 0, sizeof *rl);
    struct sockaddr_in a;
    socklen_t len = sizeof a;
    rl->reserve = relay_bind(0);
    if (rl->reserve < 0 || getsockname(rl->reserve, (struct sockaddr *)&a, &len)) {
        if (rl->reserve >= 0) close(rl->reserve);
        rl->reserve = -1;
        return -1;
    }
    rl->port = ntohs(a.sin_port);
    if (relay_spawn(rl, tag, hold, answer) == 0) return 0;
    close(rl->reserve);
    rl->reserve = -1;
    return -1;
}

static int relay_start_holding(struct relay *rl, const char *tag, const char *hold) {
    return relay_start_answering(rl, tag, hold, NULL);
}

static int relay_start(struct relay *rl, const char *tag) {
    return relay_start_holding(rl, tag, NULL);
}

/* Ends the relay's process, its port still reserved: the server is out of reach. */
static void relay_pause(struct relay *rl) {
    if (rl->pid <= 0) return;
    kill(rl->pid, SIGKILL);
    waitpid(rl->pid, NULL, 0);
    rl->pid = 0;
}

/* Starts a paused relay again on its port, passing everything; new files named after tag. */
static int relay_resume(struct relay *rl, const char *tag) {
    return rl->pid > 0 || rl->reserve < 0 ? -1 : relay_spawn(rl, tag, NULL, NULL);
}

static void relay_stop(struct relay *rl) {
    relay_pause(rl);
    if (rl->reserve >= 0) close(rl->reserve);
    rl->reserve = -1;
}

/* What went through the relay one way ("up" or "down"), connection after connection. */
static char *relay_text(const struct relay *rl, const char *way) {
    char *all = strdup("");
    for (int k = 0;; k++) {
        char path[460];
        snprintf(path, sizeof path, "%s.%s.%d", rl->prefix, way, k);
        if (access(path, F_OK)) break;
        char *s = cli_slurp(path);
        size_t n = strlen(all);
        all = realloc(all, n + strlen(s) + 1);
        strcpy(all + n, s);
        free(s);
    }
    return all;
}

/*
 * The messages in text that start with `start` (a request line, or a
 * status line): how many there are (*count), and the most and the sum of
 * `needle` one of them holds, up to the next request or status line.
 */
static int relay_most(const char *text, const char *start, const char *needle, int *count,
                      int *sum) {
    int most = 0;
    *count = *sum = 0;
    for (const char *p = strstr(text, start); p; p = strstr(p + 1, start)) {
        const char *end = strstr(p + 1, "POST /"), *status = strstr(p + 1, "HTTP/1.1 ");
        if (status && strncmp(start, "HTTP/1.1", 8) == 0 && (!end || status < end)) end = status;
        int k = 0;
        for (const char *q = strstr(p, needle); q && (!end || q < end); q = strstr(q + 1, needle))
            k++;
        (*count)++;
        *sum += k;
        if (k > most) most = k;
    }
    return most;
}

/* How many times `needle` is in what the worker sent through rl. */
static int relay_count(const struct relay *rl, const char *needle) {
    char *up = relay_text(rl, "up");
    int n = cli_count(up, needle);
    free(up);
    return n;
}

/*
 * When the requests holding `needle` reached the relay, in the order of
 * their connections (at most max): the time its copy of the connection was
 * last written (wall ms), which for a held request is when its bytes came,
 * as nothing passes on a held connection after them. Returns how many.
 */
static int relay_times(const struct relay *rl, const char *needle, long long *at, int max) {
    int n = 0;
    for (int k = 0; n < max; k++) {
        char path[460];
        snprintf(path, sizeof path, "%s.up.%d", rl->prefix, k);
        struct stat st;
        if (stat(path, &st)) break;
        char *s = cli_slurp(path);
        if (strstr(s, needle))
            at[n++] = (long long)st.st_mtim.tv_sec * 1000 + st.st_mtim.tv_nsec / 1000000;
        free(s);
    }
    return n;
}

/* How long process pid's threads have waited for a CPU, runnable, in all (ms; 0 unknown):
 * what a loaded machine delayed it by. */
static long long run_delay_ms(pid_t pid) {
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/task", (int)pid);
    DIR *d = opendir(path);
    if (!d) return 0;
    long long ns = 0;
    for (struct dirent *e; (e = readdir(d));) {
        if (e->d_name[0] == '.') continue;
        char stat[300];
        snprintf(stat, sizeof stat, "%s/%s/schedstat", path, e->d_name);
        FILE *f = fopen(stat, "r");
        unsigned long long run, wait;
        if (f && fscanf(f, "%llu %llu", &run, &wait) == 2) ns += (long long)wait;
        if (f) fclose(f);
    }
    closedir(d);
    return ns / 1000000;
}

/* Ends a worker that a failed check leaves behind, its commands with it. */
static void worker_end(pid_t w) {
    kill(w, SIGTERM);
    if (cli_wait(w, 15000) == -1) {
        kill(w, SIGKILL);
        cli_wait(w, 5000);
    }
}

/* Waits up to ms for a heartbeat request through rl with `entries` entries. */
static bool relay_wait_heartbeat(const struct relay *rl, int entries, int ms) {
    for (int waited = 0; waited <= ms; waited += 50) {
        char *up = relay_text(rl, "up");
        int count, sum;
        int most = relay_most(up, "POST /v1/work/heartbeat ", "\"lease_token\"", &count, &sum);
        free(up);
        if (most >= entries) return true;
        th_sleep_ms(50);
    }
    return false;
}

/* Whether srv.dir holds a file named PREFIX-ID. */
static bool task_file(const char *prefix, const char *id) {
    char name[200];
    snprintf(name, sizeof name, "%s-%s", prefix, id);
    return file_exists(name);
}

static void test_batched_concurrency(void) {
    char *ids[8];
    for (int i = 0; i < 8; i++) {
        char extra[100];
        snprintf(extra, sizeof extra, "\"queue\":\"batchq\",\"params\":{\"n\":%d}", i);
        ids[i] = th_submit(&srv, "many", extra);
    }
    struct relay rl;
    CHECK(relay_start(&rl, "batch") == 0);
    /* Each command holds its slot until the test lets it go: the 4 run together. */
    char script[800];
    snprintf(script, sizeof script,
             "echo 'progress 0.5 half'; echo \"result {\\\"n\\\":$TASKMILL_PARAM_N}\"; "
             "i=0; while [ ! -e %s/batch-go ] && [ $i -lt 600 ]; do sleep 0.05; i=$((i+1)); "
             "done; if [ \"$TASKMILL_PARAM_N\" = 7 ]; then echo 'bad input'; exit 3; fi; exit 0",
             srv.dir);
    pid_t w = cli_spawn(&rl.via, worker_log("batch"), "work", "--queue", "batchq", "--concurrency",
                        "4", "--heartbeat", "0.2", "--max-tasks", "8", "--", "sh", "-c", script);
    /* One heartbeat request carries the leases of all 4 running tasks. */
    bool four = relay_wait_heartbeat(&rl, 4, 15000);
    struct th_resp *r = th_http(&srv, "GET", "/v1/tasks?queue=batchq&phase=running", NULL);
    size_t running = json_array_size(th_get(r->json, "tasks"));
    r = th_http(&srv, "GET", "/v1/tasks?queue=batchq&phase=pending", NULL);
    size_t pending = json_array_size(th_get(r->json, "tasks"));
    if (!four || running != 4 || pending != 4) {
        show_log("batch");
        worker_end(w);
        relay_stop(&rl);
    }
    CHECK(four);
    CHECK_INT(running, 4);
    CHECK_INT(pending, 4);
    char go[460];
    snprintf(go, sizeof go, "%s/batch-go", srv.dir);
    FILE *f = fopen(go, "w");
    CHECK(f != NULL);
    fclose(f);
    int rc = cli_wait(w, 30000);
    if (rc != 0) {
        show_log("batch");
        worker_end(w);
    }
    relay_stop(&rl);
    CHECK_INT(rc, 0);
    for (int i = 0; i < 8; i++) {
        char path[128];
        snprintf(path, sizeof path, "/v1/tasks/%s", ids[i]);
        r = th_http(&srv, "GET", path, NULL);
        if (i == 7) {
            CHECK_STR(th_str(r->json, "phase"), "failed");
            CHECK_STR(th_str(r->json, "error"), "command exited with status 3: bad input");
        } else {
            CHECK_STR(th_str(r->json, "phase"), "completed");
            CHECK_INT(th_int(r->json, "result.n"), i);
        }
        CHECK_STR(th_str(r->json, "progress.message"), "half");
        free(ids[i]);
    }
    /* What the worker asked: batched claims, heartbeats and ends, no one-task call. */
    char *up = relay_text(&rl, "up"), *down = relay_text(&rl, "down");
    int one_task =
        cli_count(up, "POST /v1/tasks/") + cli_count(up, "POST /v1/queues/batchq/claim ");
    int claims, asked4, replies, tokens, completes, completed, fails, failed;
    relay_most(up, "POST /v1/queues/batchq/claims ", "\"max\":4", &claims, &asked4);
    /* One claim brought 4 tasks, each with its own lease token. */
    int most_claimed = relay_most(down, "HTTP/1.1 200", "\"lease_token\"", &replies, &tokens);
    relay_most(up, "POST /v1/work/complete ", "\"lease_token\"", &completes, &completed);
    relay_most(up, "POST /v1/work/fail ", "\"lease_token\"", &fails, &failed);
    free(up);
    free(down);
    CHECK_INT(one_task, 0);
    CHECK(claims >= 2 && asked4 >= 1); /* 8 tasks through 4 slots; the first claim asked for 4 */
    CHECK_INT(most_claimed, 4);
    CHECK_INT(completed, 7);
    CHECK(completes >= 1 && completes <= 7);
    CHECK_INT(failed, 1);
}

/* Creates srv.dir/NAME, which the commands of these tests wait for. */
static bool let_go(const char *name) {
    char path[460];
    snprintf(path, sizeof path, "%s/%s", srv.dir, name);
    FILE *f = fopen(path, "w");
    if (f) fclose(f);
    return f != NULL;
}

/* A command that says it is ready, notes a SIGTERM, and ends 0 when NAME-go exists. */
static void waiting_script(char *out, size_t n, const char *name) {
    snprintf(out, n,
             "trap 'touch %s/%s-term-$TASKMILL_TASK_ID; exit 143' TERM; "
             "touch %s/%s-ready-$TASKMILL_TASK_ID; "
             "i=0; while [ ! -e %s/%s-go ] && [ $i -lt 600 ]; do sleep 0.05; i=$((i+1)); done; "
             "exit 0",
             srv.dir, name, srv.dir, name, srv.dir, name);
}

/* Waits up to ms for every task's command to have written PREFIX-ID. */
static bool tasks_files(const char *prefix, char **ids, int n, int ms) {
    for (int waited = 0; waited <= ms; waited += 50) {
        int have = 0;
        for (int i = 0; i < n; i++)
            have += task_file(prefix, ids[i]);
        if (have == n) return true;
        th_sleep_ms(50);
    }
    return false;
}

static void test_batched_lost_lease_and_cancel(void) {
    char *ids[4];
    for (int i = 0; i < 4; i++)
        ids[i] = th_submit(&srv, "held", "\"queue\":\"lostq\"");
    struct relay rl;
    CHECK(relay_start(&rl, "lost") == 0);
    char script[800];
    waiting_script(script, sizeof script, "lost");
    pid_t w = cli_spawn(&rl.via, worker_log("lost"), "work", "--queue", "lostq", "--concurrency",
                        "4", "--lease", "6", "--heartbeat", "0.2", "--max-tasks", "4", "--", "sh",
                        "-c", script);
    bool ready = tasks_files("lost-ready", ids, 4, 15000) && relay_wait_heartbeat(&rl, 4, 15000);
    /* Task 0's lease goes to another worker: released with the token the worker was
     * given (read from the relay), then claimed by "thief". Task 1 is cancelled. */
    char *down = relay_text(&rl, "down");
    char needle[80], token[65] = "";
    snprintf(needle, sizeof needle, "\"id\":\"%s\"", ids[0]);
    const char *at = strstr(down, needle);
    at = at ? strstr(at, "\"lease_token\":\"") : NULL;
    if (at) sscanf(at + strlen("\"lease_token\":\""), "%64[0-9a-f]", token);
    free(down);
    char path[200];
    snprintf(path, sizeof path, "/v1/tasks/%s/release", ids[0]);
    long released = th_http(&srv, "POST", path, "{\"lease_token\":\"%s\"}", token)->status;
    char got[33], thief_token[33];
    long claimed =
        th_claim(&srv, "lostq", "{\"worker\":\"thief\",\"lease_seconds\":60}", got, thief_token);
    snprintf(path, sizeof path, "/v1/tasks/%s/cancel", ids[1]);
    long cancelled = th_http(&srv, "POST", path, NULL)->status;
    bool stopped = tasks_files("lost-term", ids, 2, 15000);
    bool ok = ready && token[0] && released == 200 && claimed == 200 && strcmp(got, ids[0]) == 0 &&
              cancelled == 200 && stopped;
    if (!ok) {
        show_log("lost");
        worker_end(w);
        relay_stop(&rl);
    }
    CHECK(ready);
    CHECK(token[0]);
    CHECK_INT(released, 200);
    CHECK_INT(claimed, 200);
    CHECK_STR(got, ids[0]);
    CHECK_INT(cancelled, 200);
    CHECK(stopped);
    /* The two others run on, untouched. */
    bool others = !task_file("lost-term", ids[2]) && !task_file("lost-term", ids[3]) &&
                  strcmp(th_phase(&srv, ids[2]), "running") == 0 &&
                  strcmp(th_phase(&srv, ids[3]), "running") == 0;
    bool go = let_go("lost-go");
    int rc = cli_wait(w, 30000);
    if (rc != 0 || !others) {
        show_log("lost");
        worker_end(w);
    }
    relay_stop(&rl);
    CHECK(others);
    CHECK(go);
    CHECK_INT(rc, 0);
    CHECK(cli_wait_phase(&srv, ids[1], "cancelled", 10000));
    CHECK_STR(th_phase(&srv, ids[2]), "completed");
    CHECK_STR(th_phase(&srv, ids[3]), "completed");
    /* Task 0 is the thief's still: the worker reported nothing more for it. */
    snprintf(path, sizeof path, "/v1/tasks/%s", ids[0]);
    struct th_resp *r = th_http(&srv, "GET", path, NULL);
    CHECK_STR(th_str(r->json, "phase"), "running");
    CHECK_STR(th_str(r->json, "lease.worker"), "thief");
    char *log = cli_slurp(worker_log("lost"));
    char said[2][120];
    snprintf(said[0], sizeof said[0], "task '%s': lease lost", ids[0]);
    snprintf(said[1], sizeof said[1], "task '%s': cancel requested", ids[1]);
    bool lost = strstr(log, said[0]) != NULL, asked = strstr(log, said[1]) != NULL;
    int losses = cli_count(log, "lease lost");
    free(log);
    CHECK(lost);
    CHECK(asked);
    CHECK_INT(losses, 1);
    for (int i = 0; i < 4; i++)
        free(ids[i]);
}

static void test_batched_sigterm_hands_back(void) {
    char *ids[3];
    for (int i = 0; i < 3; i++)
        ids[i] = th_submit(&srv, "slow", "\"queue\":\"stopbq\"");
    struct relay rl;
    CHECK(relay_start(&rl, "stopb") == 0);
    char script[800];
    waiting_script(script, sizeof script, "stopb");
    /* A free slot keeps a claim out: the tasks handed back must not go to it. */
    pid_t w = cli_spawn(&rl.via, worker_log("stopb"), "work", "--queue", "stopbq", "--concurrency",
                        "4", "--", "sh", "-c", script);
    bool ready = tasks_files("stopb-ready", ids, 3, 15000);
    if (!ready) {
        show_log("stopb");
        worker_end(w);
        relay_stop(&rl);
    }
    CHECK(ready);
    kill(w, SIGTERM);
    int rc = cli_wait(w, 20000);
    if (rc != 0) {
        show_log("stopb");
        worker_end(w);
    }
    relay_stop(&rl);
    CHECK_INT(rc, 0);
    CHECK(tasks_files("stopb-term", ids, 3, 0));
    for (int i = 0; i < 3; i++) {
        char path[128];
        snprintf(path, sizeof path, "/v1/tasks/%s", ids[i]);
        struct th_resp *r = th_http(&srv, "GET", path, NULL);
        CHECK_STR(th_str(r->json, "phase"), "pending");
        CHECK_INT(th_int(r->json, "retries"), 0);
        CHECK_INT(th_int(r->json, "attempt"), 1);
        free(ids[i]);
    }
    char *up = relay_text(&rl, "up");
    int count, released;
    relay_most(up, "POST /v1/work/release ", "\"lease_token\"", &count, &released);
    int one_task = cli_count(up, "POST /v1/tasks/");
    free(up);
    CHECK_INT(one_task, 0);
    CHECK_INT(released, 3);
}

static void test_batched_hands_back_when_start_fails(void) {
    char cmd[400];
    snprintf(cmd, sizeof cmd, "%s/deployed-b.sh", srv.dir);
    FILE *f = fopen(cmd, "w");
    CHECK(f != NULL);
    fputs("#!/bin/sh\nexit 0\n", f);
    fclose(f);
    chmod(cmd, 0755);
    pid_t w = cli_spawn(&srv, worker_log("handb"), "work", "--queue", "handbq", "--concurrency",
                        "2", "--", cmd);
    /* The command vanishes after the worker checked it, before the tasks come. */
    bool started = false;
    for (int i = 0; i < 300 && !started; i++) {
        char *s = cli_slurp(worker_log("handb"));
        started = strstr(s, "claiming from queue") != NULL;
        free(s);
        if (!started) th_sleep_ms(50);
    }
    unlink(cmd);
    char *ids[2];
    for (int i = 0; i < 2; i++)
        ids[i] = th_submit(&srv, "t", "\"queue\":\"handbq\",\"max_retries\":0");
    int handed = 0;
    for (int i = 0; i < 300 && handed < 2; i++) {
        char *s = cli_slurp(worker_log("handb"));
        handed = cli_count(s, "handed back");
        free(s);
        if (handed < 2) th_sleep_ms(50);
    }
    /* Handed back, not failed, no retry counted, even with max_retries 0. */
    bool back = true;
    for (int i = 0; i < 2; i++) {
        char path[128];
        snprintf(path, sizeof path, "/v1/tasks/%s", ids[i]);
        struct th_resp *r = th_http(&srv, "GET", path, NULL);
        back = back && strcmp(th_str(r->json, "phase"), "failed") != 0 &&
               th_int(r->json, "retries") == 0;
    }
    /* Once the command is there again, the worker runs the tasks after its pause. */
    f = fopen(cmd, "w");
    if (f) {
        fputs("#!/bin/sh\necho 'progress 1 done'\nexit 0\n", f);
        fclose(f);
        chmod(cmd, 0755);
    }
    bool done = cli_wait_phase(&srv, ids[0], "completed", 60000) &&
                cli_wait_phase(&srv, ids[1], "completed", 60000);
    if (!started || handed < 2 || !back || !done) show_log("handb");
    kill(w, SIGTERM);
    int rc = cli_wait(w, 20000);
    if (rc == -1) worker_end(w);
    CHECK(started);
    CHECK(handed >= 2);
    CHECK(back);
    CHECK(f != NULL);
    CHECK(done);
    CHECK_INT(rc, 0);
    for (int i = 0; i < 2; i++)
        free(ids[i]);
}

static void test_batched_server_gone_and_back(void) {
    char *ids[2];
    for (int i = 0; i < 2; i++)
        ids[i] = th_submit(&srv, "long", "\"queue\":\"goneb\"");
    struct relay rl;
    CHECK(relay_start(&rl, "goneb") == 0);
    char script[800];
    snprintf(
        script, sizeof script,
        "i=0; while [ ! -e %s/goneb-go ] && [ $i -lt 600 ]; do echo \"progress 0.$((i %% 10))\"; "
        "sleep 0.05; i=$((i+1)); done; exit 0",
        srv.dir);
    char logcopy[400];
    snprintf(logcopy, sizeof logcopy, "%s", worker_log("goneb"));
    pid_t w = cli_spawn(&rl.via, logcopy, "work", "--queue", "goneb", "--concurrency", "2",
                        "--heartbeat", "0.2", "--max-tasks", "2", "--", "sh", "-c", script);
    bool running = relay_wait_heartbeat(&rl, 2, 15000);
    /* The server is out of reach: many heartbeats fail while the commands run on. */
    relay_pause(&rl);
    bool lost = false;
    for (int i = 0; i < 300 && !lost; i++) {
        char *s = cli_slurp(logcopy);
        lost = strstr(s, "lost the server") != NULL;
        free(s);
        if (!lost) th_sleep_ms(50);
    }
    th_sleep_ms(1000);
    bool again = relay_resume(&rl, "goneb2") == 0;
    bool back = false;
    for (int i = 0; again && i < 300 && !back; i++) {
        char *s = cli_slurp(logcopy);
        back = strstr(s, "answers again") != NULL;
        free(s);
        if (!back) th_sleep_ms(50);
    }
    bool go = let_go("goneb-go");
    int rc = cli_wait(w, 30000);
    if (rc == -1) worker_end(w);
    relay_stop(&rl);
    char *s = cli_slurp(logcopy);
    int losses = cli_count(s, "lost the server"), returns = cli_count(s, "answers again"),
        refusals = cli_count(s, "refused");
    free(s);
    if (!running || !lost || !back || rc != 0 || losses != 1) show_log("goneb");
    CHECK(running);
    CHECK(lost);
    CHECK(again);
    CHECK(back);
    CHECK(go);
    CHECK_INT(rc, 0);
    CHECK_INT(losses, 1);
    CHECK_INT(returns, 1);
    CHECK_INT(refusals, 0);
    for (int i = 0; i < 2; i++) {
        CHECK_STR(th_phase(&srv, ids[i]), "completed");
        free(ids[i]);
    }
}

/*
 * A second SIGTERM kills the commands at once, even while the worker waits
 * on a server that does not answer (the relay stopped: a heartbeat hangs
 * until its request times out, a minute later). The commands ignore
 * SIGTERM; they lived on until that request gave up. One slot, and batched.
 */
static void run_second_signal_with_server_hung(const char *queue, bool batched) {
    char extra[100];
    snprintf(extra, sizeof extra, "\"queue\":\"%s\"", queue);
    char *id = th_submit(&srv, "hung", extra);
    struct relay rl;
    CHECK(relay_start(&rl, queue) == 0);
    char pidfile[400], script[600];
    snprintf(pidfile, sizeof pidfile, "%s/%s.pid", srv.dir, queue);
    snprintf(script, sizeof script,
             "trap '' TERM; echo $$ > %s; echo 'progress 0.1 started'; while :; do sleep 0.1; done",
             pidfile);
    pid_t w =
        cli_spawn(&rl.via, worker_log(queue), "work", "--queue", queue, "--heartbeat", "0.2",
                  "--grace", "600", "--concurrency", batched ? "2" : "1", "--", "sh", "-c", script);
    bool started = false;
    for (int i = 0; i < 200 && !started; i++) {
        started = progress_says(id, "started");
        if (!started) th_sleep_ms(50);
    }
    int cmd = pid_in(pidfile);
    kill(rl.pid, SIGSTOP); /* the worker's requests go unanswered from now on */
    th_sleep_ms(600);      /* a heartbeat is out, waiting */
    kill(w, SIGTERM);
    /* The second signal once the worker has taken the first (it says so
     * after it has read it): two sent before it reads are one signal, and
     * the commands wait out their 600 s grace (after a fixed 300 ms, so on
     * a loaded machine). */
    bool took = false;
    TRY_WAIT_UNTIL(took, log_says(queue, "stopping: handing back running tasks"), 20000,
                   "the worker to take the first SIGTERM");
    kill(w, SIGTERM);
    /* At once: not after the hung request's minute (20 s is a deadline). */
    bool gone = false;
    for (long long end = th_now_ms() + 20000; !gone; th_sleep_ms(50)) {
        gone = cmd > 0 && !proc_alive(cmd);
        if (th_now_ms() >= end) break;
    }
    kill(rl.pid, SIGCONT);
    if (!gone) show_log(queue);
    if (cmd > 0) kill(cmd, SIGKILL);
    int rc = cli_wait(w, 20000);
    if (rc == -1) worker_end(w);
    relay_stop(&rl);
    free(id);
    CHECK(started);
    CHECK(cmd > 0);
    CHECK(took);
    CHECK(gone); /* within 20 s of the second signal, not the request's minute */
    CHECK_INT(rc, 0);
}

static void test_second_signal_with_server_hung(void) {
    run_second_signal_with_server_hung("hungq", false);
    if (!th_failed()) run_second_signal_with_server_hung("bhungq", true);
}

/*
 * The first SIGTERM reaches the commands at once, even while the worker
 * waits on a server that does not answer (the relay stopped: a heartbeat
 * hangs, and would until its request timed out, a minute later), and
 * SIGKILL follows after --grace. The worker abandons the heartbeat, tries
 * to hand the task back for a bounded time (5 s a request), and exits 0
 * well within a supervisor's 30 s. The command notes the SIGTERM and
 * ignores it. One slot, and batched.
 */
static void run_first_signal_with_server_hung(const char *queue, bool batched) {
    char extra[100];
    snprintf(extra, sizeof extra, "\"queue\":\"%s\"", queue);
    char *id = th_submit(&srv, "hung", extra);
    struct relay rl;
    CHECK(relay_start(&rl, queue) == 0);
    char pidfile[400], marker[100], script[900];
    snprintf(pidfile, sizeof pidfile, "%s/%s.pid", srv.dir, queue);
    snprintf(marker, sizeof marker, "%s.term", queue);
    snprintf(script, sizeof script,
             "trap 'touch %s/%s' TERM; echo $$ > %s; echo 'progress 0.1 started'; "
             "while :; do sleep 0.1; done",
             srv.dir, marker, pidfile);
    pid_t w =
        cli_spawn(&rl.via, worker_log(queue), "work", "--queue", queue, "--heartbeat", "0.2",
                  "--grace", "2", "--concurrency", batched ? "2" : "1", "--", "sh", "-c", script);
    bool started = false;
    for (int i = 0; i < 200 && !started; i++) {
        started = progress_says(id, "started");
        if (!started) th_sleep_ms(50);
    }
    int cmd = pid_in(pidfile);
    kill(rl.pid, SIGSTOP); /* the worker's requests go unanswered from now on */
    th_sleep_ms(600);      /* a heartbeat is out, waiting */
    kill(w, SIGTERM);
    bool termed = false, killed = false;
    /* At once: 20 s is a deadline, not a speed (the hung request would
     * keep them a minute). */
    TRY_WAIT_UNTIL(termed, file_exists(marker), 20000, "the command's SIGTERM");
    /* SIGKILL follows the grace (2 s), even while the worker waits on the server. */
    TRY_WAIT_UNTIL(killed, cmd > 0 && !proc_alive(cmd), 20000, "the command's SIGKILL");
    int rc = cli_wait(w, 30000);
    if (!termed || !killed || rc != 0) show_log(queue);
    if (rc == -1) worker_end(w);
    if (cmd > 0) kill(cmd, SIGKILL);
    relay_stop(&rl);
    char *log = cli_slurp(worker_log(queue));
    bool said = strstr(log, "cannot report it released: no answer within 5 s") != NULL;
    free(log);
    free(id);
    CHECK(started);
    CHECK(cmd > 0);
    CHECK(termed);
    CHECK(killed);
    CHECK_INT(rc, 0);
    CHECK(said);
}

static void test_first_signal_with_server_hung(void) {
    run_first_signal_with_server_hung("hung1q", false);
    if (!th_failed()) run_first_signal_with_server_hung("bhung1q", true);
}

/*
 * A worker whose claim waits on a server that does not answer (the relay
 * stopped) stops at the first SIGTERM: the claim is abandoned, not waited
 * out (its long-poll plus 30 s, then the request's timeout). One slot, and
 * batched.
 */
static void run_signal_abandons_claim(const char *queue, bool batched) {
    struct relay rl;
    CHECK(relay_start(&rl, queue) == 0);
    pid_t w = cli_spawn(&rl.via, worker_log(queue), "work", "--queue", queue, "--concurrency",
                        batched ? "2" : "1", "--", "sh", "-c", "exit 0");
    bool claiming = false;
    for (int i = 0; i < 300 && !claiming; i++) {
        char *s = cli_slurp(worker_log(queue));
        claiming = strstr(s, "claiming from queue") != NULL;
        free(s);
        if (!claiming) th_sleep_ms(50);
    }
    th_sleep_ms(300); /* its first claim is out */
    kill(rl.pid, SIGSTOP);
    th_sleep_ms(2500); /* that claim's long-poll (2 s) is over: its answer or the next claim
                          waits in the stopped relay */
    kill(w, SIGTERM);
    int rc = cli_wait(w, 15000);
    if (rc != 0) show_log(queue);
    if (rc == -1) worker_end(w);
    relay_stop(&rl);
    CHECK(claiming);
    CHECK_INT(rc, 0);
}

static void test_signal_abandons_claim(void) {
    run_signal_abandons_claim("hungcq", false);
    if (!th_failed()) run_signal_abandons_claim("bhungcq", true);
}

/*
 * A task that the claim in flight brings after the stop signal goes back
 * unstarted: the relay holds the claim's answer (the task) until the
 * worker has had its SIGTERM. Its command never runs (it would write a
 * file), the task is pending with no retry counted, and the worker says
 * so. With one slot the command was started and stopped at once. One
 * slot, and batched.
 */
static void run_claimed_while_stopping(const char *queue, bool batched) {
    struct relay rl;
    CHECK(relay_start(&rl, queue) == 0);
    char marker[100], script[600], claim[120];
    snprintf(marker, sizeof marker, "%s.ran", queue);
    snprintf(script, sizeof script, "touch %s/%s; sleep 30", srv.dir, marker);
    snprintf(claim, sizeof claim, "POST /v1/queues/%s/claim", queue);
    pid_t w = cli_spawn(&rl.via, worker_log(queue), "work", "--queue", queue, "--concurrency",
                        batched ? "2" : "1", "--", "sh", "-c", script);
    char extra[100];
    snprintf(extra, sizeof extra, "\"queue\":\"%s\"", queue);
    char *id = NULL;
    int before = 0, now = 0;
    bool parked = false, taken = false;
    /* Rounds, until a task comes while the claim waits at the server. A
     * claim parks for 2 s (the worker's long-poll): on a loaded machine it
     * can end, empty, before the task is there. Then nothing can take the
     * task (the relay is stopped, and with it the worker's next claim), so
     * the round is cancelled and run again: a task only ever goes to a
     * claim whose answer the relay holds. */
    for (int round = 0; round < 5 && !taken; round++) {
        /* A claim that has just gone out (they follow each other every 2 s). */
        char *up = relay_text(&rl, "up");
        before = now = cli_count(up, claim);
        free(up);
        for (int i = 0; i < 500 && now == before; i++) {
            th_sleep_ms(20);
            up = relay_text(&rl, "up");
            now = cli_count(up, claim);
            free(up);
        }
        /* The relay has passed it on: it waits at the server (the relay
         * notes a request before it passes it on, so its note is not
         * enough: stopped in between, it would keep the claim). */
        TRY_WAIT_UNTIL(parked, th_metric(&srv, "taskmill_parked_claims") == 1, 20000,
                       "the worker's claim parked at the server");
        kill(rl.pid, SIGSTOP);
        if (!parked) break;
        free(id);
        id = th_submit(&srv, "late", extra);
        if (!id) break;
        /* Taken by that claim, its answer held; or the claim had ended. */
        const char *ph = "?";
        for (long long end = th_now_ms() + 20000; th_now_ms() < end; th_sleep_ms(50)) {
            ph = th_phase(&srv, id);
            if (strcmp(ph, "pending") != 0) break;
            if (th_metric(&srv, "taskmill_parked_claims") == 0) {
                ph = th_phase(&srv, id); /* the claim's end, with the task or without */
                break;
            }
        }
        taken = strcmp(ph, "running") == 0;
        if (taken || strcmp(ph, "pending") != 0) break;
        printf("    round %d: the claim ended before the task came; again\n", round);
        char path[128];
        snprintf(path, sizeof path, "/v1/tasks/%s/cancel", id);
        th_http(&srv, "POST", path, NULL);
        if (strcmp(th_phase(&srv, id), "cancelled") != 0) break;
        kill(rl.pid, SIGCONT);
    }
    kill(w, SIGTERM);
    th_sleep_ms(300); /* the worker is stopping before the answer comes */
    kill(rl.pid, SIGCONT);
    int rc = cli_wait(w, 15000);
    char *log = cli_slurp(worker_log(queue));
    bool said = strstr(log, "the worker is stopping: handed back unstarted") != NULL;
    free(log);
    if (!taken || rc != 0 || !said) show_log(queue);
    if (rc == -1) worker_end(w);
    relay_stop(&rl);
    CHECK(now > before);
    CHECK(taken);
    CHECK_INT(rc, 0);
    CHECK(said);
    CHECK(!file_exists(marker));
    char path[128];
    snprintf(path, sizeof path, "/v1/tasks/%s", id);
    struct th_resp *r = th_http(&srv, "GET", path, NULL);
    CHECK_STR(th_str(r->json, "phase"), "pending");
    CHECK_INT(th_int(r->json, "retries"), 0);
    free(id);
}

static void test_claimed_while_stopping(void) {
    run_claimed_while_stopping("latecq", false);
    if (!th_failed()) run_claimed_while_stopping("blatecq", true);
}

/*
 * A worker stopped while its claim waits on the server itself (no relay):
 * a task submitted just after the stop signal is either handed to that
 * claim, and back unstarted, or left to the queue; the worker exits (15 s
 * is a hang guard, not a speed: it waits out its claim, up to 3 s, rather
 * than close it, docs/cli.md) and leaves no task running and no claim
 * parked. One slot (one-task claims), and two (batched).
 */
static void run_stop_with_claim_parked(const char *queue, bool batched) {
    char marker[100], script[400];
    snprintf(marker, sizeof marker, "%s.ran", queue);
    snprintf(script, sizeof script, "touch %s/%s; sleep 30", srv.dir, marker);
    WAIT_UNTIL(th_metric(&srv, "taskmill_parked_claims") == 0, 20000, "no claim parked");
    pid_t w = cli_spawn(&srv, worker_log(queue), "work", "--queue", queue, "--concurrency",
                        batched ? "2" : "1", "--", "sh", "-c", script);
    bool parked = false;
    TRY_WAIT_UNTIL(parked, th_metric(&srv, "taskmill_parked_claims") == 1, 10000,
                   "the worker's claim parked");
    kill(w, SIGTERM);
    char extra[100];
    snprintf(extra, sizeof extra, "\"queue\":\"%s\"", queue);
    char *id = th_submit(&srv, "late", extra);
    int rc = cli_wait(w, 15000);
    if (rc != 0) show_log(queue);
    if (rc == -1) worker_end(w);
    CHECK(parked);
    CHECK(id);
    CHECK_INT(rc, 0);
    WAIT_UNTIL(th_metric(&srv, "taskmill_parked_claims") == 0, 20000, "its claim gone");
    char path[128];
    snprintf(path, sizeof path, "/v1/tasks/%s", id);
    struct th_resp *r = th_http(&srv, "GET", path, NULL);
    CHECK_STR(th_str(r->json, "phase"), "pending");
    CHECK_INT(th_int(r->json, "retries"), 0);
    CHECK(!file_exists(marker));
    free(id);
}

static void test_stop_with_claim_parked(void) {
    run_stop_with_claim_parked("parkcq", false);
    if (!th_failed()) run_stop_with_claim_parked("bparkcq", true);
}

/*
 * --name is the worker's name in its tasks' leases, by the server's rule
 * for it: 1 to 128 bytes of UTF-8 without control characters. Another is
 * a usage error at once (exit 2, naming the flag), before any claim: a
 * longer one was cut to 159 bytes, sent, and refused by the server (exit
 * 4, naming 'worker'). 128 bytes are taken whole.
 */
static void test_name_limit(void) {
    char *id = th_submit(&srv, "named", "\"queue\":\"nameq\"");
    char long_name[201], name129[130], name128[129];
    memset(long_name, 'w', 200);
    long_name[200] = '\0';
    snprintf(name129, sizeof name129, "%s", long_name);
    snprintf(name128, sizeof name128, "%s", long_name);
    const struct {
        const char *name, *says;
    } bad[] = {
        {long_name, "'--name' is 200 bytes, longer than the 128"},
        {name129, "'--name' is 129 bytes, longer than the 128"},
        {"", "'--name' must not be empty"},
        {"tab\there", "'--name' must not contain control characters"},
        {"\xff", "'--name' must be UTF-8 text"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char *out, *err;
        int rc = cli_run(&srv, NULL, &out, &err, "work", "--queue", "nameq", "--max-tasks", "1",
                         "--name", bad[i].name, "--", "sh", "-c", "exit 0");
        bool says = strstr(err, bad[i].says) != NULL;
        if (rc != 2 || !says)
            printf("    --name of %zu bytes: exit %d: %s\n", strlen(bad[i].name), rc, err);
        free(out);
        free(err);
        CHECK_INT(rc, 2);
        CHECK(says);
    }
    CHECK_STR(th_phase(&srv, id), "pending"); /* nothing was claimed */
    pid_t w = cli_spawn(&srv, worker_log("name"), "work", "--queue", "nameq", "--max-tasks", "1",
                        "--name", name128, "--", "sh", "-c", "exit 0");
    int rc = cli_wait(w, 15000);
    if (rc != 0) show_log("name");
    if (rc == -1) worker_end(w);
    CHECK_INT(rc, 0);
    CHECK_STR(th_phase(&srv, id), "completed");
    char path[128];
    snprintf(path, sizeof path, "/v1/tasks/%s/attempts", id);
    struct th_resp *r = th_http(&srv, "GET", path, NULL);
    CHECK_STR(th_str(r->json, "attempts.0.worker"), name128);
    free(id);
}

/*
 * A heartbeat the server does not answer (the relay passes the claim on
 * and holds every heartbeat) is given up after a third of the lease (10 s
 * here: 3.3 s) and sent again, so the lease can still be kept; it waited
 * out the client's 60 s, the task's later heartbeats (with several slots,
 * every task's) behind it, while the lease ran out. Each heartbeat after
 * the first arrives within twice that bound of the one before (a hang
 * guard), plus what the worker and the relay were measured to wait for a
 * CPU. Once none has been answered for the lease's length, the worker
 * says the task may be another worker's now, once, also when a heartbeat
 * is given up after that. One slot, and batched.
 */
static void run_hung_heartbeat_retried(const char *queue, bool batched) {
    /* The lease runs out (it is not checked) and the task's retry waits 10 minutes: with
     * a free slot (batched) the worker would claim it again, and that run would say the
     * lapse once more, its own, 10 s later. */
    char extra[160];
    snprintf(extra, sizeof extra,
             "\"queue\":\"%s\",\"backoff_ms\":600000,\"backoff_max_ms\":600000", queue);
    char *id = th_submit(&srv, "hunghb", extra);
    struct relay rl;
    CHECK(relay_start_holding(&rl, queue, "/heartbeat HTTP/1.1") == 0);
    pid_t w = cli_spawn(&rl.via, worker_log(queue), "work", "--queue", queue, "--lease", "10",
                        "--concurrency", batched ? "2" : "1", "--", "sh", "-c",
                        "echo 'progress 0.1 started'; while :; do sleep 0.1; done");
    /* The first heartbeat, then two more, each within 2 x 3.3 s of the one before, as
     * the relay saw them come (not as this loop, which a loaded machine delays, saw
     * them in its files), give or take the time the worker and the relay waited for
     * a CPU meanwhile (measured: a loaded machine's delay is no hang). A heartbeat
     * that waited out the client's 60 s would make the three take over a minute:
     * 30 s is no speed asked of the worker. */
    const char *hb = "/heartbeat HTTP/1.1";
    long long at[3] = {0, 0, 0};
    int seen = 0;
    bool three = false;
    long long delay0 = run_delay_ms(w) + run_delay_ms(rl.pid);
    TRY_WAIT_UNTIL(three, (seen = relay_times(&rl, hb, at, 3)) == 3, 30000,
                   "three heartbeats through the relay");
    long long most_apart = 0, bound = 6700 + run_delay_ms(w) + run_delay_ms(rl.pid) - delay0;
    for (int i = 1; i < seen; i++)
        if (at[i] - at[i - 1] > most_apart) most_apart = at[i] - at[i - 1];
    const char *lapse = "no heartbeat answered for 10 s, the length of its lease";
    bool said = false, after = false;
    TRY_WAIT_UNTIL(said, log_says(queue, lapse), 20000, "the lapse noticed");
    /* Said once, also when a heartbeat is given up after it was said: the worker says
     * it as it gives one up (heartbeat k), before it sends the next (k + 1), so once
     * two more have come than had when the line was read, k + 1 was given up too. */
    int before = relay_count(&rl, hb);
    long long t_said = th_now_ms();
    TRY_WAIT_UNTIL(after, relay_count(&rl, hb) >= before + 2, 20000,
                   "two heartbeats after the lapse was said (%d before)", before);
    printf(
        "    heartbeats at most %lld ms apart (bound %lld ms); two more %lld ms after the "
        "lapse was read\n",
        most_apart, bound, th_now_ms() - t_said);
    kill(w, SIGTERM);
    int rc = cli_wait(w, 30000);
    char *log = cli_slurp(worker_log(queue));
    int times = cli_count(log, lapse);
    free(log);
    if (!three || most_apart > bound || !after || rc != 0 || times != 1) {
        printf("    heartbeats seen: %d\n", seen);
        show_log(queue);
    }
    if (rc == -1) worker_end(w);
    relay_stop(&rl);
    free(id);
    CHECK(three);
    CHECK(most_apart <= bound);
    CHECK(said);
    CHECK(after);
    CHECK_INT(times, 1);
    CHECK_INT(rc, 0);
}

static void test_hung_heartbeat_retried(void) {
    run_hung_heartbeat_retried("hunghbq", false);
    if (!th_failed()) run_hung_heartbeat_retried("bhunghbq", true);
}

/*
 * Heartbeats hang (the relay holds them) while claims pass: the 3 s lease
 * lapses, the server puts the task back, and the worker's free slot claims
 * it again (same id, attempt 2). The worker takes the earlier run's lease
 * as lost: it stops that command (SIGTERM) and starts the new one only
 * once it has exited, never two copies of one task at once; it started the
 * second copy beside the first, which ran on until a heartbeat answered.
 * Each copy notes, as it starts, whether another is still alive.
 */
static void test_batched_reclaimed_task_runs_once(void) {
    char *id =
        th_submit(&srv, "lapse", "\"queue\":\"lapseq\",\"backoff_ms\":10,\"max_retries\":20");
    struct relay rl;
    CHECK(relay_start_holding(&rl, "lapseq", "/heartbeat HTTP/1.1") == 0);
    char script[900];
    snprintf(script, sizeof script,
             "d=%s; a=$TASKMILL_ATTEMPT; if [ -e $d/lapse-alive ]; then touch $d/lapse-overlap; "
             "fi; touch $d/lapse-alive $d/lapse-start-$a; "
             "trap 'rm -f $d/lapse-alive; touch $d/lapse-term-$a; exit 143' TERM; "
             "while :; do sleep 0.1; done",
             srv.dir);
    pid_t w = cli_spawn(&rl.via, worker_log("lapse"), "work", "--queue", "lapseq", "--lease", "3",
                        "--concurrency", "2", "--grace", "2", "--", "sh", "-c", script);
    bool second = false;
    TRY_WAIT_UNTIL(second, file_exists("lapse-start-2"), 30000, "the task claimed again");
    th_sleep_ms(300);
    bool overlap = file_exists("lapse-overlap"), first_stopped = file_exists("lapse-term-1");
    kill(w, SIGTERM);
    int rc = cli_wait(w, 30000);
    char said[160];
    snprintf(said, sizeof said, "task '%s': claimed again while its earlier run is here", id);
    bool told = log_says("lapse", said);
    if (!second || overlap || !first_stopped || !told || rc != 0) show_log("lapse");
    if (rc == -1) worker_end(w);
    relay_stop(&rl);
    free(id);
    CHECK(second);
    CHECK(!overlap);
    CHECK(first_stopped);
    CHECK(told);
    CHECK_INT(rc, 0);
}

/*
 * A run that waits, unstarted, for the earlier copy of its task to exit
 * (as above, with a command that ignores SIGTERM, so it waits out the
 * grace) says, when none of its heartbeats is answered for its lease, that
 * its command has not started, and when it then loses its lease (or is
 * cancelled), that its command will not start: it never started one. The
 * log said "the command goes on" and "stopping the command". Once the
 * waiting run's lease has lapsed, the relay lets heartbeats through and
 * the task is cancelled: its next heartbeat hears the lease is gone.
 */
static void test_batched_waiting_run_dropped_unstarted(void) {
    char *id = th_submit(&srv, "drop", "\"queue\":\"dropq\",\"backoff_ms\":10,\"max_retries\":20");
    struct relay rl;
    CHECK(relay_start_holding(&rl, "drop", "/heartbeat HTTP/1.1") == 0);
    char script[300];
    snprintf(script, sizeof script,
             "trap '' TERM; touch %s/drop-start-$TASKMILL_ATTEMPT; while :; do sleep 0.1; done",
             srv.dir);
    pid_t w = cli_spawn(&rl.via, worker_log("drop"), "work", "--queue", "dropq", "--lease", "3",
                        "--concurrency", "2", "--grace", "30", "--", "sh", "-c", script);
    char again[160];
    snprintf(again, sizeof again, "task '%s': claimed again while its earlier run is here", id);
    bool claimed = false, heard = false;
    TRY_WAIT_UNTIL(claimed, log_says("drop", again), 30000, "the task claimed again");
    bool lapsed = false;
    TRY_WAIT_UNTIL(lapsed,
                   log_says("drop", "(its command has not started: it waits for the earlier run"),
                   15000, "the waiting run's lease lapsed");
    char pass[460], path[128];
    snprintf(pass, sizeof pass, "%s.pass", rl.prefix);
    FILE *pf = fopen(pass, "w");
    if (pf) fclose(pf);
    snprintf(path, sizeof path, "/v1/tasks/%s/cancel", id);
    long status = th_http(&srv, "POST", path, "{}")->status;
    TRY_WAIT_UNTIL(heard, log_says("drop", "; its command will not start"), 20000,
                   "the waiting run dropped");
    bool wrong = log_says("drop", "; stopping the command");
    bool second = file_exists("drop-start-2");
    if (!claimed || !lapsed || !heard || wrong || second) show_log("drop");
    /* Twice: the copy that ignores SIGTERM is killed at once. The second
     * once the worker has taken the first: two before it reads are one. */
    kill(w, SIGTERM);
    bool took = false;
    TRY_WAIT_UNTIL(took, log_says("drop", "stopping: handing back running tasks"), 20000,
                   "the worker to take the first SIGTERM");
    kill(w, SIGTERM);
    if (cli_wait(w, 30000) == -1) worker_end(w);
    relay_stop(&rl);
    free(id);
    CHECK(status == 200);
    CHECK(claimed);
    CHECK(lapsed);
    CHECK(heard);
    CHECK(!wrong);
    CHECK(!second);
    CHECK(took);
}

/*
 * A proxy in front of the server answers the heartbeats 404 with a page of
 * its own (an ingress whose backend is being replaced): that is the server
 * not answering, not the server saying the task is gone. The command runs
 * on and its end is reported; with one slot the worker took it as the
 * lease lost, stopped the command and reported nothing (the task stayed
 * running until its lease ran out); batched, it said 'heartbeat refused'
 * at every tick. One slot, and batched.
 */
static void run_proxy_404(const char *queue, bool batched) {
    char extra[100];
    snprintf(extra, sizeof extra, "\"queue\":\"%s\"", queue);
    char *id = th_submit(&srv, "p404", extra);
    struct relay rl;
    CHECK(relay_start_answering(&rl, queue, "/heartbeat HTTP/1.1",
                                "HTTP/1.1 404 Not Found\r\nContent-Type: text/html\r\n"
                                "Content-Length: 22\r\nConnection: close\r\n\r\n"
                                "<h1>404 Not Found</h1>") == 0);
    pid_t w =
        cli_spawn(&rl.via, worker_log(queue), "work", "--queue", queue, "--lease", "30",
                  "--heartbeat", "0.2", "--concurrency", batched ? "2" : "1", "--max-tasks", "1",
                  "--", "sh", "-c", "echo 'progress 0.5 half'; sleep 2; echo 'result {\"ok\":1}'");
    int rc = cli_wait(w, 30000);
    const char *phase = th_phase(&srv, id);
    char *log = cli_slurp(worker_log(queue));
    bool lost = strstr(log, "lease lost") != NULL, refused = strstr(log, "refused") != NULL,
         down = strstr(log, "lost the server") != NULL;
    free(log);
    if (rc != 0 || strcmp(phase, "completed") != 0 || lost || refused || !down) show_log(queue);
    if (rc == -1) worker_end(w);
    relay_stop(&rl);
    free(id);
    CHECK_INT(rc, 0);
    CHECK_STR(phase, "completed");
    CHECK(!lost);
    CHECK(!refused);
    CHECK(down);
}

static void test_proxy_404_is_no_lost_lease(void) {
    run_proxy_404("p404q", false);
    if (!th_failed()) run_proxy_404("bp404q", true);
}

/*
 * systemd (KillMode=control-group, its default) sends SIGTERM to every
 * process of the service at once: the worker and its commands. A command
 * killed so before the worker has signalled it is stopped with the worker:
 * its task is handed back (no retry counted), as for the worker's own
 * SIGTERM; it was reported failed ('command killed by signal 15'), a retry
 * counted, and past max_retries the task failed for good. One slot, and
 * batched.
 */
/* The state letter of process pid in /proc (Z: a zombie, not yet reaped), or 0. */
static char proc_state(int pid) {
    char path[64], buf[512];
    snprintf(path, sizeof path, "/proc/%d/stat", pid);
    FILE *f = fopen(path, "r");
    if (!f) return 0;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    const char *p = strrchr(buf, ')');
    return p && p[1] == ' ' ? p[2] : 0;
}

/* Whether every thread of process pid is stopped (SIGSTOP). */
static bool threads_stopped(pid_t pid) {
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/task", (int)pid);
    DIR *d = opendir(path);
    if (!d) return false;
    bool all = true;
    int n = 0;
    for (struct dirent *e; all && (e = readdir(d));) {
        if (e->d_name[0] == '.') continue;
        char stat[300], buf[512];
        snprintf(stat, sizeof stat, "%s/%s/stat", path, e->d_name);
        FILE *f = fopen(stat, "r");
        size_t got = f ? fread(buf, 1, sizeof buf - 1, f) : 0;
        if (f) fclose(f);
        buf[got] = '\0';
        const char *p = strrchr(buf, ')');
        all = p && p[1] == ' ' && p[2] == 'T';
        n++;
    }
    closedir(d);
    return all && n > 0;
}

static void run_stop_signal_to_all(const char *queue, bool batched) {
    char extra[100], pidfile[460], script[600];
    snprintf(extra, sizeof extra, "\"queue\":\"%s\"", queue);
    char *id = th_submit(&srv, "cgkill", extra);
    snprintf(pidfile, sizeof pidfile, "%s/%s.pid", srv.dir, queue);
    snprintf(script, sizeof script, "echo $$ > %s; while :; do sleep 0.1; done", pidfile);
    pid_t w = cli_spawn(&srv, worker_log(queue), "work", "--queue", queue, "--concurrency",
                        batched ? "2" : "1", "--", "sh", "-c", script);
    bool ready = false;
    TRY_WAIT_UNTIL(ready, pid_in(pidfile) > 0, 15000, "the command's pid in %s", pidfile);
    int pid = pid_in(pidfile);
    /* systemd signals the main process first, then the rest; which of them acts first is the
     * scheduler's choice. Forced here: the worker is held (SIGSTOP) while its SIGTERM comes and
     * the command dies of its own, then let go. */
    kill(w, SIGSTOP);
    bool held = false; /* every thread of it: SIGSTOP takes a moment to reach them all */
    TRY_WAIT_UNTIL(held, threads_stopped(w), 10000, "the worker %d to stop", (int)w);
    kill(w, SIGTERM);
    if (pid > 0) kill(-pid, SIGTERM);
    bool dead = false;
    TRY_WAIT_UNTIL(dead, proc_state(pid) == 'Z', 10000, "the command %d to die", pid);
    kill(w, SIGCONT);
    int rc = cli_wait(w, 20000);
    char path[128];
    snprintf(path, sizeof path, "/v1/tasks/%s", id);
    struct th_resp *r = th_http(&srv, "GET", path, NULL);
    const char *phase = th_str(r->json, "phase");
    long long retries = th_int(r->json, "retries");
    if (rc != 0 || strcmp(phase, "pending") != 0 || retries != 0) show_log(queue);
    if (rc == -1) worker_end(w);
    free(id);
    CHECK(ready);
    CHECK(held);
    CHECK(dead);
    CHECK_INT(rc, 0);
    CHECK_STR(phase, "pending");
    CHECK_INT(retries, 0);
}

static void test_stop_signal_to_all(void) {
    run_stop_signal_to_all("cgkillq", false);
    if (!th_failed()) run_stop_signal_to_all("bcgkillq", true);
}

/*
 * Lines that end in "\r\n" (tools written for Windows, or a terminal's
 * line discipline) are the same lines without the '\r', on standard error
 * as on standard output: in the log tail, in the error, and in the
 * worker's own echo. A stderr line kept it: on a terminal the "\033[K"
 * after it erased the line, and journald showed a blob.
 */
static void test_crlf_output(void) {
    char *id = th_submit(&srv, "crlf", "\"queue\":\"crlfq\",\"max_retries\":0");
    pid_t w = cli_spawn(&srv, worker_log("crlf"), "work", "--queue", "crlfq", "--max-tasks", "1",
                        "--", "sh", "-c",
                        "printf 'out line\\r\\n'; sleep 0.3; printf 'err line\\r\\n' >&2; exit 1");
    int rc = cli_wait(w, 20000);
    char path[128];
    snprintf(path, sizeof path, "/v1/tasks/%s", id);
    struct th_resp *r = th_http(&srv, "GET", path, NULL);
    char *log = cli_slurp(worker_log("crlf"));
    bool cr = strchr(log, '\r') != NULL, echoed = strstr(log, "] err line\n") != NULL;
    free(log);
    if (rc != 0 || cr || !echoed) show_log("crlf");
    free(id);
    CHECK_INT(rc, 0);
    CHECK_STR(th_str(r->json, "phase"), "failed");
    CHECK_STR(th_str(r->json, "error"), "command exited with status 1: err line");
    CHECK_STR(th_str(r->json, "attributes.log_tail"), "out line\nerr line");
    CHECK(!cr);
    CHECK(echoed);
}

/*
 * A command's escape sequences and bells are echoed as \xNN when the
 * worker's standard error is not a terminal (journald, a file): one raw
 * ESC made journald keep the whole line as binary data. The task's log
 * tail keeps the output as it was.
 */
static void test_control_chars_echoed_escaped(void) {
    char *id = th_submit(&srv, "ctl", "\"queue\":\"ctlq\"");
    pid_t w = cli_spawn(&srv, worker_log("ctl"), "work", "--queue", "ctlq", "--max-tasks", "1",
                        "--", "sh", "-c", "printf 'a \\033[31mred\\033[0m\\a\\tz\\n'");
    int rc = cli_wait(w, 20000);
    char *log = cli_slurp(worker_log("ctl"));
    bool raw = strchr(log, '\033') != NULL || strchr(log, '\a') != NULL;
    bool escaped = strstr(log, "] a \\x1b[31mred\\x1b[0m\\x07\tz\n") != NULL;
    free(log);
    char path[128];
    snprintf(path, sizeof path, "/v1/tasks/%s", id);
    struct th_resp *r = th_http(&srv, "GET", path, NULL);
    if (rc != 0 || raw || !escaped) show_log("ctl");
    free(id);
    CHECK_INT(rc, 0);
    CHECK(!raw);
    CHECK(escaped);
    CHECK_STR(th_str(r->json, "attributes.log_tail"), "a \033[31mred\033[0m\a\tz");
}

/*
 * Off a terminal, every string of the command's that the worker writes is
 * escaped: its C1 controls (U+009B, CSI, as "\xc2\x9b") and bytes that
 * are not UTF-8 in the echo, and its last line where the end-of-task line
 * quotes it (`... failed (now 'failed'): command exited with status 9:
 * LINE`). Both went out raw.
 */
static void test_c1_and_end_line_escaped(void) {
    char *id = th_submit(&srv, "c1", "\"queue\":\"c1q\"");
    pid_t w = cli_spawn(&srv, worker_log("c1"), "work", "--queue", "c1q", "--max-tasks", "1", "--",
                        "sh", "-c",
                        "printf 'a \\302\\23331m b\\377c\\n'; "
                        "printf 'last \\033[1m\\302\\233\\377\\n'; exit 9");
    int rc = cli_wait(w, 20000);
    char *log = cli_slurp(worker_log("c1"));
    bool raw = strchr(log, '\033') || strstr(log, "\xc2\x9b") || strchr(log, '\xff');
    bool echoed = strstr(log, "] a \\xc2\\x9b31m b\\xffc\n") != NULL;
    bool end = strstr(log, "command exited with status 9: last \\x1b[1m\\xc2\\x9b") != NULL;
    if (rc != 0 || raw || !echoed || !end) show_log("c1");
    free(log);
    free(id);
    CHECK_INT(rc, 0);
    CHECK(!raw);
    CHECK(echoed);
    CHECK(end);
}

/* A '--type' a claim cannot carry (empty, over 128 bytes, not UTF-8), or more than 16 of
 * them, is exit 2 at start, naming the flag; the worker exited 4 at its first claim. */
static void test_bad_type_refused_at_start(void) {
    char long_type[130];
    memset(long_type, 't', 129);
    long_type[129] = '\0';
    const char *bad[] = {"", long_type, "\xff"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char *out, *err;
        int rc = cli_run(&srv, NULL, &out, &err, "work", "--queue", "typeq", "--max-tasks", "1",
                         "--type", bad[i], "--", "sh", "-c", "exit 0");
        bool says = strstr(err, "'--type' must be 1 to 128 bytes of UTF-8") != NULL;
        if (rc != 2 || !says)
            printf("    --type of %zu bytes: exit %d: %s\n", strlen(bad[i]), rc, err);
        free(out);
        free(err);
        CHECK_INT(rc, 2);
        CHECK(says);
    }
    /* 17 types: more than a claim takes (the server refused every claim, exit 4). */
    const char *args[64] = {"work", "--queue", "typeq", "--max-tasks", "1"};
    int na = 5;
    for (int i = 0; i < 17; i++) {
        args[na++] = "--type";
        args[na++] = "t";
    }
    const char *tail[] = {"--", "sh", "-c", "exit 0", NULL};
    for (int i = 0; tail[i]; i++)
        args[na++] = tail[i];
    args[na] = NULL;
    char *out, *err;
    int rc = cli_runv(&srv, NULL, &out, &err, args);
    bool says = strstr(err, "at most 16 '--type' flags") != NULL;
    if (rc != 2 || !says) printf("    17 types: exit %d: %s\n", rc, err);
    free(out);
    free(err);
    CHECK_INT(rc, 2);
    CHECK(says);
    /* The help gives the same bound (it said 64). */
    rc = cli_run(&srv, NULL, &out, &err, "work", "--help");
    CHECK_INT(rc, 0);
    CHECK(strstr(out, "up to 16;") != NULL);
    free(out);
    free(err);
}

/*
 * --quiet leaves out the commands' output and the routine lines (each task
 * claimed and ended), never what goes wrong: a quiet worker whose server
 * cannot be reached says so. It said nothing at all, so a supervisor's log
 * showed a worker that had lost its server as one with no work.
 */
static void test_quiet_still_says_problems(void) {
    char *id = th_submit(&srv, "hush", "\"queue\":\"quietq\"");
    pid_t w = cli_spawn(&srv, worker_log("quiet"), "work", "--queue", "quietq", "--quiet",
                        "--max-tasks", "1", "--", "sh", "-c", "echo 'hello there'");
    int rc = cli_wait(w, 20000);
    char *log = cli_slurp(worker_log("quiet"));
    bool silent = !strstr(log, "hello there") && !strstr(log, "claimed");
    free(log);
    if (rc != 0 || !silent) show_log("quiet");
    CHECK_INT(rc, 0);
    CHECK(silent);
    CHECK(cli_wait_phase(&srv, id, "completed", 5000));
    free(id);
    /* A port nothing listens on. */
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    CHECK(fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof a) == 0 &&
          getsockname(fd, (struct sockaddr *)&a, &len) == 0);
    close(fd);
    struct th_server gone = srv;
    snprintf(gone.url, sizeof gone.url, "http://127.0.0.1:%d", ntohs(a.sin_port));
    w = cli_spawn(&gone, worker_log("quietgone"), "work", "--queue", "quietq", "--quiet", "--",
                  "true");
    bool said = false;
    TRY_WAIT_UNTIL(said, log_says("quietgone", "lost the server"), 10000, "the outage said");
    kill(w, SIGTERM);
    rc = cli_wait(w, 20000);
    if (!said || rc != 0) show_log("quietgone");
    if (rc == -1) worker_end(w);
    CHECK(said);
    CHECK_INT(rc, 0);
}

/*
 * SIGHUP (the terminal the worker runs in is closed) stops the worker as
 * SIGTERM does: the command is stopped and its task handed back. It ended
 * the worker at once, and the command, in a process group of its own, ran
 * on without it while its task came back to other workers.
 */
static void test_sighup_hands_task_back(void) {
    char *id = th_submit(&srv, "hup", "\"queue\":\"hupq\"");
    char pidfile[460], script[600];
    snprintf(pidfile, sizeof pidfile, "%s/hup.pid", srv.dir);
    snprintf(script, sizeof script, "echo $$ > %s; while :; do sleep 0.1; done", pidfile);
    pid_t w =
        cli_spawn(&srv, worker_log("hup"), "work", "--queue", "hupq", "--", "sh", "-c", script);
    bool ready = false;
    TRY_WAIT_UNTIL(ready, pid_in(pidfile) > 0, 15000, "the command's pid in %s", pidfile);
    int pid = pid_in(pidfile);
    kill(w, SIGHUP);
    int rc = cli_wait(w, 20000);
    bool gone = false;
    TRY_WAIT_UNTIL(gone, pid > 0 && kill(pid, 0) != 0, 20000, "the command %d to end", pid);
    if (pid > 0 && !gone) kill(-pid, SIGKILL);
    char path[128];
    snprintf(path, sizeof path, "/v1/tasks/%s", id);
    struct th_resp *r = th_http(&srv, "GET", path, NULL);
    if (rc != 0) show_log("hup");
    if (rc == -1) worker_end(w);
    free(id);
    CHECK(ready);
    CHECK_INT(rc, 0);
    CHECK(gone);
    CHECK_STR(th_str(r->json, "phase"), "pending");
    CHECK_INT(th_int(r->json, "retries"), 0);
}

/*
 * The worker as PID 1 of its namespace (a container with no init: unshare
 * -fp here) inherits every process a command leaves behind, and reaps them
 * as they end. The first task's command leaves a `sleep 0.2` behind; the
 * second counts the zombies in the namespace a second later. They stayed
 * zombies for good.
 */
static void test_pid1_reaps_orphans(void) {
    char *first = th_submit(&srv, "orphaner", "\"queue\":\"initq\"");
    char *second = th_submit(&srv, "counter", "\"queue\":\"initq\"");
    if (system("unshare -fp --mount-proc true >/dev/null 2>&1") != 0) {
        th_skip("no 'unshare -fp --mount-proc' here to make the worker PID 1");
        free(first);
        free(second);
        return;
    }
    const char *script =
        "if [ \"$TASKMILL_TASK_TYPE\" = orphaner ]; then sleep 0.2 >/dev/null 2>&1 & exit 0; fi; "
        "sleep 1; n=$(grep -l '^State:.Z' /proc/[0-9]*/status 2>/dev/null | wc -l); "
        "echo \"result {\\\"zombies\\\":$n}\"";
    const char *bin = getenv("TASKMILL_BIN");
    fflush(stdout);
    pid_t w = fork();
    if (w == 0) {
        setpgid(0, 0);
        setenv("TASKMILL_URL", srv.url, 1);
        int fd = open(worker_log("init"), O_WRONLY | O_CREAT | O_APPEND, 0600);
        dup2(fd, 1);
        dup2(fd, 2);
        execlp("unshare", "unshare", "-fp", "--mount-proc", bin, "work", "--queue", "initq",
               "--max-tasks", "2", "--", "sh", "-c", script, (char *)NULL);
        _exit(127);
    }
    int rc = cli_wait(w, 30000);
    if (rc == -1) {
        kill(-w, SIGKILL);
        cli_wait(w, 5000);
    }
    char path[128];
    snprintf(path, sizeof path, "/v1/tasks/%s", second);
    struct th_resp *r = th_http(&srv, "GET", path, NULL);
    const char *phase = th_str(r->json, "phase");
    long long zombies = th_int(r->json, "result.zombies");
    if (rc != 0 || strcmp(phase, "completed") != 0 || zombies != 0) show_log("init");
    free(first);
    free(second);
    CHECK_INT(rc, 0);
    CHECK_STR(phase, "completed");
    CHECK_INT(zombies, 0);
}

/*
 * A report larger than the server takes (413: its --max-body-bytes is
 * 4096 here, or a proxy's cap) is refused as such: its items, messages
 * and attributes are dropped and the next call goes bare, so the lease
 * holds and the end is taken. It was sent again as it was, refused at
 * every heartbeat, and the task's end given up: the task stayed running.
 * One slot, and batched.
 */
static void run_report_too_large(struct th_server *own, const char *queue, bool batched) {
    char extra[100];
    snprintf(extra, sizeof extra, "\"queue\":\"%s\"", queue);
    char *id = th_submit(own, "big", extra);
    char log[460];
    snprintf(log, sizeof log, "%s/%s.log", srv.dir, queue);
    /* One attribute of 5000 bytes: past 4096 bytes in any report that holds it (60
     * messages of 100 bytes could go out a few at a time). */
    pid_t w = cli_spawn(own, log, "work", "--queue", queue, "--heartbeat", "0.2", "--concurrency",
                        batched ? "2" : "1", "--max-tasks", "1", "--", "sh", "-c",
                        "echo \"attribute big $(printf '%05000d' 0)\"; sleep 1; "
                        "echo 'progress 0.9 nearly'; sleep 1");
    int rc = cli_wait(w, 30000);
    const char *phase = th_phase(own, id);
    char *text = cli_slurp(log);
    bool dropped = strstr(text, "is dropped") != NULL;
    if (rc != 0 || strcmp(phase, "completed") != 0 || !dropped) printf("%s\n", text);
    free(text);
    if (rc == -1) worker_end(w);
    free(id);
    CHECK_INT(rc, 0);
    CHECK_STR(phase, "completed");
    CHECK(dropped);
}

static void test_report_too_large(void) {
    struct th_server own;
    if (th_server_start(&own, "--max-body-bytes", "4096", NULL)) {
        th_fail(__FILE__, __LINE__, "no server");
        return;
    }
    run_report_too_large(&own, "bigq", false);
    if (!th_failed()) run_report_too_large(&own, "bbigq", true);
    th_server_stop(&own, false);
}

/*
 * Output drawn over itself with '\r' (a progress bar: "10%\r20%\rdone")
 * is taken as a terminal shows it, the text after the last '\r': in the
 * log tail, the error, the worker's log, and a progress line too. It was
 * kept whole, '\r's and all (a blob in journald), and a progress line so
 * drawn was ordinary output.
 */
static void test_carriage_return_output(void) {
    char *id = th_submit(&srv, "bar", "\"queue\":\"crq\",\"max_retries\":0");
    pid_t w = cli_spawn(&srv, worker_log("cr"), "work", "--queue", "crq", "--max-tasks", "1", "--",
                        "sh", "-c",
                        "printf 'progress 0.1\\rprogress 0.7 seventy\\n'; "
                        "printf 'fetch 10%%\\rfetch 20%%\\rfetch done\\n'; sleep 0.3; "
                        "printf 'up 1\\rup 2\\rsaved\\n' >&2; exit 1");
    int rc = cli_wait(w, 20000);
    char path[128];
    snprintf(path, sizeof path, "/v1/tasks/%s", id);
    struct th_resp *r = th_http(&srv, "GET", path, NULL);
    char *log = cli_slurp(worker_log("cr"));
    bool cr = strchr(log, '\r') != NULL;
    free(log);
    if (rc != 0 || cr) show_log("cr");
    free(id);
    CHECK_INT(rc, 0);
    CHECK_STR(th_str(r->json, "error"), "command exited with status 1: saved");
    CHECK_STR(th_str(r->json, "attributes.log_tail"), "fetch done\nsaved");
    CHECK_STR(th_str(r->json, "progress.message"), "seventy");
    CHECK(!cr);
}

/*
 * The report of a task's end outlasts 30 tries while the task's lease
 * holds: a proxy answers every report 503 for more than 30 s (the server
 * behind it away), then passes them again. The worker gave up after 30
 * tries, a second apart ('cannot report it completed'), and the finished
 * task, its lease 120 s, ran again later. One slot and batched, at once.
 */
static void test_end_report_outlasts_tries(void) {
    static const char *const queues[2] = {"outq", "boutq"};
    static const char *const away =
        "HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain\r\n"
        "Content-Length: 5\r\nConnection: close\r\n\r\naway\n";
    char *ids[2];
    struct relay rl[2];
    pid_t w[2];
    for (int i = 0; i < 2; i++) {
        char extra[100];
        snprintf(extra, sizeof extra, "\"queue\":\"%s\"", queues[i]);
        ids[i] = th_submit(&srv, "out", extra);
        CHECK(relay_start_answering(&rl[i], queues[i], "/complete HTTP/1.1", away) == 0);
        w[i] = cli_spawn(&rl[i].via, worker_log(queues[i]), "work", "--queue", queues[i], "--lease",
                         "120", "--heartbeat", "0.2", "--concurrency", i ? "2" : "1", "--max-tasks",
                         "1", "--", "sh", "-c", "echo 'result {\"ok\":1}'");
    }
    /* Until each worker has tried its report 32 times (or has given up and exited). */
    int tries[2] = {0, 0};
    /* A try a second: 32 s when idle; the deadline leaves room for a loaded machine. */
    for (long long t0 = th_now_ms();
         th_now_ms() - t0 < 120000 && (tries[0] < 32 || tries[1] < 32);) {
        for (int i = 0; i < 2; i++) {
            char *up = relay_text(&rl[i], "up");
            tries[i] = cli_count(up, "/complete HTTP/1.1");
            free(up);
            if (tries[i] < 32 && waitpid(w[i], NULL, WNOHANG) == w[i]) tries[i] = 1000 + tries[i];
        }
        th_sleep_ms(200);
    }
    for (int i = 0; i < 2; i++) {
        relay_pause(&rl[i]);
        char tag[32];
        snprintf(tag, sizeof tag, "%s-back", queues[i]);
        CHECK(relay_resume(&rl[i], tag) == 0);
    }
    int rc[2];
    bool completed[2], gave_up[2];
    for (int i = 0; i < 2; i++) {
        rc[i] = tries[i] >= 1000 ? -2 : cli_wait(w[i], 30000);
        completed[i] = strcmp(th_phase(&srv, ids[i]), "completed") == 0;
        char *log = cli_slurp(worker_log(queues[i]));
        gave_up[i] = strstr(log, "cannot report") != NULL;
        free(log);
        if (rc[i] != 0 || !completed[i] || gave_up[i]) {
            printf("    %s: %d reports sent while the server was away\n", queues[i],
                   tries[i] % 1000);
            show_log(queues[i]);
        }
        if (rc[i] == -1) worker_end(w[i]);
        relay_stop(&rl[i]);
        free(ids[i]);
    }
    for (int i = 0; i < 2; i++) {
        CHECK(tries[i] >= 32 && tries[i] < 1000); /* it was still trying */
        CHECK_INT(rc[i], 0);
        CHECK(completed[i]);
        CHECK(!gave_up[i]);
    }
}

/*
 * The report of a task's end refused with 429 and Retry-After: 30 (a
 * proxy's, say) goes again while the task's lease (10 s) holds, not after
 * the 30 s: nothing heartbeats a run that ended, so the lease would lapse
 * and the result be lost (the server then answers 409). The relay answers
 * the first report itself, then passes them. One slot and batched.
 */
static void test_end_report_not_held_past_lease(void) {
    static const char *const queues[2] = {"holdq", "bholdq"};
    static const char *const slow =
        "HTTP/1.1 429 Too Many Requests\r\nContent-Type: application/json\r\n"
        "Retry-After: 30\r\nContent-Length: 60\r\nConnection: close\r\n\r\n"
        "{\"error\":{\"code\":\"too_many_requests\",\"message\":\"slow down\"}}";
    char *ids[2];
    struct relay rl[2];
    pid_t w[2];
    for (int i = 0; i < 2; i++) {
        char extra[100];
        snprintf(extra, sizeof extra, "\"queue\":\"%s\",\"max_retries\":0", queues[i]);
        ids[i] = th_submit(&srv, "hold", extra);
        CHECK(relay_start_answering(&rl[i], queues[i], "/complete HTTP/1.1", slow) == 0);
        w[i] = cli_spawn(&rl[i].via, worker_log(queues[i]), "work", "--queue", queues[i], "--lease",
                         "10", "--concurrency", i ? "2" : "1", "--max-tasks", "1", "--", "sh", "-c",
                         "echo 'result {\"ok\":1}'");
    }
    for (int i = 0; i < 2; i++) {
        bool refused = false; /* the first report answered 429 */
        for (long long end = th_now_ms() + 20000; !refused && th_now_ms() < end; th_sleep_ms(50)) {
            char *up = relay_text(&rl[i], "up");
            refused = cli_count(up, "/complete HTTP/1.1") >= 1;
            free(up);
        }
        CHECK(refused);
        relay_pause(&rl[i]);
        char tag[32];
        snprintf(tag, sizeof tag, "%s-back", queues[i]);
        CHECK(relay_resume(&rl[i], tag) == 0); /* passes every request from now on */
    }
    for (int i = 0; i < 2; i++) {
        /* With the lease's 10 s, the report goes again within about 7 s of the last
         * heartbeat; held for the 30 s, the worker would still be waiting here. */
        int rc = cli_wait(w[i], 25000);
        bool done = strcmp(th_phase(&srv, ids[i]), "completed") == 0;
        if (rc != 0 || !done) show_log(queues[i]);
        if (rc == -1) worker_end(w[i]);
        relay_stop(&rl[i]);
        free(ids[i]);
        CHECK_INT(rc, 0);
        CHECK(done);
    }
}

/*
 * Finding: on a terminal the worker's own lines went out as they were, and
 * they quote the server's message (`lost the server: MESSAGE`), so a
 * server's (or a proxy's) escape sequence acted on the terminal. They are
 * printed as task text is now, a control character as '?'; the erase at
 * the end of each line stays. (Off a terminal they were escaped already.)
 */
static void test_server_message_printable_on_a_terminal(void) {
    const char *body =
        "{\"error\": {\"code\": \"unavailable\", \"message\": \"no "
        "\\u001b[2Jgood\\u0007 \\u009b\"}}";
    char reply[512];
    snprintf(reply, sizeof reply,
             "HTTP/1.1 503 X\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n"
             "Connection: close\r\n\r\n%s",
             strlen(body), body);
    struct cli_canned k;
    CHECK(cli_canned_start(&k, reply, NULL) == 0);
    char *argv[16];
    cli_collect(argv, CLI_ARGS("work", "--server", k.url, "--queue", "q", "--", "true"), 16);
    int master = -1;
    struct winsize ws = {.ws_row = 24, .ws_col = 120};
    fflush(stdout);
    pid_t pid = forkpty(&master, NULL, NULL, &ws);
    if (pid == 0) {
        execv(argv[0], argv);
        _exit(127);
    }
    char out[8192];
    cli_pty_read_until(master, out, sizeof out, "retrying", 20000);
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    close(master);
    cli_canned_stop(&k);
    bool said = strstr(out, "lost the server: no ?[2Jgood? ?") != NULL;
    /* The only escape left is the erase at each line's end. */
    int escapes = cli_count(out, "\033"), erases = cli_count(out, "\033[K");
    bool c1 = strstr(out, "\xc2\x9b") != NULL, bell = strchr(out, '\a') != NULL;
    if (!said || escapes != erases || c1 || bell) printf("    the terminal got:\n%s\n", out);
    CHECK(said);
    CHECK_INT(escapes, erases);
    CHECK(!c1);
    CHECK(!bell);
}

static const struct th_test tests[] = {
    {"a command's progress lines, params, result and log tail", test_success_with_progress},
    {"a failed command is retried", test_failure_then_retry},
    {"the permanent exit code fails for good", test_permanent_exit_code},
    {"cancel sends SIGTERM to the command", test_cancel_reaches_command},
    {"cancel sends SIGKILL after the grace", test_cancel_kills_after_grace},
    {"output that is not UTF-8 is reported with '?' for its bad bytes", test_output_not_utf8},
    {"params too large for the environment are left out of it", test_params_too_large},
    {"cancel kills the command's child that ignores SIGTERM after the grace",
     test_cancel_kills_lingering_child},
    {"SIGTERM to the worker hands the task back", test_sigterm_hands_task_back},
    {"a silent command keeps its lease", test_silent_command_keeps_its_lease},
    {"a SIGKILLed worker's lease expires", test_killed_worker_lease_expires},
    {"--concurrency runs tasks at once", test_concurrency},
    {"a report the server refuses is dropped: the lease holds, the end is taken",
     test_refused_report_is_dropped},
    {"examples/report_progress.sh", test_example_script},
    {"--concurrency 4: batched claims, heartbeats and ends", test_batched_concurrency},
    {"batched: a lost lease and a cancel stop only their commands",
     test_batched_lost_lease_and_cancel},
    {"batched: SIGTERM to the worker hands every task back", test_batched_sigterm_hands_back},
    {"batched: a command that cannot start hands its tasks back",
     test_batched_hands_back_when_start_fails},
    {"batched: the server goes away and comes back", test_batched_server_gone_and_back},
    {"a second SIGTERM kills the commands while the server does not answer",
     test_second_signal_with_server_hung},
    {"the first SIGTERM reaches the commands while the server does not answer",
     test_first_signal_with_server_hung},
    {"SIGTERM abandons a claim the server does not answer", test_signal_abandons_claim},
    {"--name is refused past the server's 128 bytes, not cut", test_name_limit},
    {"a task claimed as the worker stops goes back unstarted", test_claimed_while_stopping},
    {"a worker stopped with its claim parked leaves no task running", test_stop_with_claim_parked},
    {"a heartbeat the server does not answer is given up within a third of the lease",
     test_hung_heartbeat_retried},
    {"batched: a run waiting for its earlier copy, then cancelled, says it never started",
     test_batched_waiting_run_dropped_unstarted},
    {"batched: a task claimed again runs once: the earlier copy is stopped first",
     test_batched_reclaimed_task_runs_once},
    {"a proxy's 404 to a heartbeat is the server away, not the lease lost",
     test_proxy_404_is_no_lost_lease},
    {"SIGTERM to the worker and its commands at once (systemd) hands the task back",
     test_stop_signal_to_all},
    {"lines ending in CRLF lose the CR, on standard error too", test_crlf_output},
    {"--quiet still says what goes wrong", test_quiet_still_says_problems},
    {"SIGHUP to the worker hands the task back", test_sighup_hands_task_back},
    {"as PID 1 the worker reaps what its commands leave behind", test_pid1_reaps_orphans},
    {"a report larger than the server takes is dropped: the end is taken", test_report_too_large},
    {"output drawn over itself with CR is taken as a terminal shows it",
     test_carriage_return_output},
    {"the report of a task's end is tried while its lease holds, past 30 tries",
     test_end_report_outlasts_tries},
    {"a report refused with a long Retry-After goes again before its lease lapses",
     test_end_report_not_held_past_lease},
    {"control characters of a command's output are echoed as \\xNN off a terminal",
     test_control_chars_echoed_escaped},
    {"C1 controls, bad bytes and the end line's output are escaped off a terminal",
     test_c1_and_end_line_escaped},
    {"a '--type' a claim cannot carry is exit 2 at start", test_bad_type_refused_at_start},
    {"on a terminal the server's message in the worker's lines has no control characters",
     test_server_message_printable_on_a_terminal},
    {NULL, NULL},
};

int main(int argc, char **argv) {
    return th_main_server(tests, argc, argv, &srv, NULL);
}
