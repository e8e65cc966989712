/*
 * `taskmill work` running real shell commands against the real server:
 * a command that reports progress and reads its params completes; a
 * failure is retried; a permanent exit code fails for good; a cancel
 * reaches the command as SIGTERM (and SIGKILL after the grace); a worker
 * stopped by SIGTERM hands its task back; a silent command is kept alive
 * by heartbeats; a SIGKILLed worker's lease expires and another worker
 * finishes the task.
 */
#include <stdio.h>
#include <stdlib.h>

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

static void test_cancel_reaches_command(void) {
    char *id = th_submit(&srv, "long", "\"queue\":\"cancelq\"");
    char script[600];
    snprintf(script, sizeof script,
             "trap 'touch %s/got_term; exit 143' TERM; echo 'progress 0.1 started'; "
             "while :; do sleep 0.1; done",
             srv.dir);
    pid_t w = cli_spawn(&srv, worker_log("cancel"), "work", "--queue", "cancelq", "--lease", "3",
                        "--", "sh", "-c", script);
    CHECK(cli_wait_phase(&srv, id, "running", 10000));
    /* Its progress line comes after its trap is set. */
    WAIT_UNTIL(progress_says(id, "started"), 10000, "the command's first progress line");
    char *out, *err;
    CHECK_INT(cli_run(&srv, NULL, &out, &err, "cancel", id), 0);
    free(out);
    free(err);
    bool cancelled = cli_wait_phase(&srv, id, "cancelled", 10000);
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

static void test_cancel_kills_after_grace(void) {
    char *id = th_submit(&srv, "stubborn", "\"queue\":\"graceq\"");
    pid_t w = cli_spawn(&srv, worker_log("grace"), "work", "--queue", "graceq", "--lease", "2",
                        "--grace", "1", "--max-tasks", "1", "--", "sh", "-c",
                        "trap '' TERM; while :; do sleep 0.1; done");
    CHECK(cli_wait_phase(&srv, id, "running", 10000));
    char path[128];
    snprintf(path, sizeof path, "/v1/tasks/%s/cancel", id);
    CHECK_INT(th_http(&srv, "POST", path, NULL)->status, 200);
    CHECK(cli_wait_phase(&srv, id, "cancelled", 8000));
    int rc = cli_wait(w, 8000);
    if (rc != 0) show_log("grace");
    CHECK_INT(rc, 0);
    char *t = task_get(id);
    CHECK(t && strstr(t, "signal 9"));
    free(t);
    free(id);
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

static void test_silent_command_keeps_its_lease(void) {
    char *id = th_submit(&srv, "quiet", "\"queue\":\"silentq\",\"max_retries\":0");
    pid_t w = cli_spawn(&srv, worker_log("silent"), "work", "--queue", "silentq", "--lease", "1",
                        "--max-tasks", "1", "--", "sh", "-c", "sleep 3.5");
    int rc = cli_wait(w, 15000);
    if (rc != 0) show_log("silent");
    CHECK_INT(rc, 0);
    CHECK_STR(th_phase(&srv, id), "completed");
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

static void test_concurrency(void) {
    char *ids[4];
    for (int i = 0; i < 4; i++)
        ids[i] = th_submit(&srv, "par", "\"queue\":\"parq\"");
    char script[600];
    snprintf(script, sizeof script, "echo $$ >> %s/par.pids; sleep 1", srv.dir);
    pid_t w = cli_spawn(&srv, worker_log("par"), "work", "--queue", "parq", "--concurrency", "4",
                        "--max-tasks", "4", "--", "sh", "-c", script);
    int rc = cli_wait(w, 3500); /* serially it would take 4 s or more */
    if (rc != 0) show_log("par");
    CHECK_INT(rc, 0);
    for (int i = 0; i < 4; i++) {
        CHECK_STR(th_phase(&srv, ids[i]), "completed");
        free(ids[i]);
    }
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

static const struct th_test tests[] = {
    {"a command's progress lines, params, result and log tail", test_success_with_progress},
    {"a failed command is retried", test_failure_then_retry},
    {"the permanent exit code fails for good", test_permanent_exit_code},
    {"cancel sends SIGTERM to the command", test_cancel_reaches_command},
    {"cancel sends SIGKILL after the grace", test_cancel_kills_after_grace},
    {"SIGTERM to the worker hands the task back", test_sigterm_hands_task_back},
    {"a silent command keeps its lease", test_silent_command_keeps_its_lease},
    {"a SIGKILLed worker's lease expires", test_killed_worker_lease_expires},
    {"--concurrency runs tasks at once", test_concurrency},
    {"examples/report_progress.sh", test_example_script},
    {NULL, NULL},
};

int main(int argc, char **argv) {
    return th_main_server(tests, argc, argv, &srv, NULL);
}
