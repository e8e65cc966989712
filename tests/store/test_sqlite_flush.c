/*
 * A SQLite store whose sync of the WAL fails (docs/storage.md, "What a
 * 2xx means"): a relaxed store's flusher or checkpoint, a durable store's
 * commit. After a failed fdatasync the kernel may have marked the pages it
 * could not write clean, so the next one succeeds without them: the store
 * must not count commits flushed by a retry, and stops taking writes
 * instead (the "fsyncgate" lesson).
 *
 * The failure is made here: this file defines fsync and fdatasync, which
 * the store and the system's SQLite then call, and fails the next one when
 * asked. SQLite only.
 */
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "../src/common/err.h"
#include "../src/common/xalloc.h"
#include "../src/store/store.h"
#include "harness.h"

static char dir[256];
static _Atomic int fail_next; /* syncs still to fail */
static _Atomic int failed;    /* syncs failed so far */

static int sync_failing(void) {
    int n = atomic_load(&fail_next);
    while (n > 0 && !atomic_compare_exchange_weak(&fail_next, &n, n - 1)) {
    }
    if (n <= 0) return 0;
    atomic_fetch_add(&failed, 1);
    errno = EIO;
    return -1;
}

int fdatasync(int fd) {
    return sync_failing() ? -1 : (int)syscall(SYS_fdatasync, fd);
}

int fsync(int fd) {
    return sync_failing() ? -1 : (int)syscall(SYS_fsync, fd);
}

static struct store *open_relaxed(const char *name, int64_t flush_ms) {
    char url[400];
    snprintf(url, sizeof url, "sqlite:%s/%s.db", dir, name);
    struct store_options opt = {.relaxed = true, .relaxed_flush_ms = flush_ms};
    struct store *s = NULL;
    struct tm_error e;
    err_clear(&e);
    if (store_open(url, &opt, &s, &e)) th_fail(__FILE__, __LINE__, "%s", e.message);
    return s;
}

/* The message of submit's last error, if any. */
static char submit_msg[256];

static int submit(struct store *s) {
    struct store_op op;
    store_op_init(&op, STORE_OP_CREATE);
    op.tasks = xmalloc(sizeof *op.tasks);
    op.tasks[0] = task_new();
    op.tasks[0]->namespace = xstrdup("fl");
    op.tasks[0]->queue = xstrdup("q");
    op.tasks[0]->type = xstrdup("x");
    op.ntasks = 1;
    int rc = store_run(s, &op);
    snprintf(submit_msg, sizeof submit_msg, "%s", rc ? op.err.message : "");
    store_op_release(&op);
    return rc;
}

static void test_a_failed_flush_is_not_retried(void) {
    if (th_backend_is_pg()) {
        th_skip("SQLite's WAL; PostgreSQL's relaxed commits are its WAL writer's");
        return;
    }
    struct store *s = open_relaxed("flusher", 20);
    if (!s) return;
    struct store_stats st;
    CHECK_INT(submit(s), 0);
    /* Polled: 10 s is 500 times the interval, not a speed. */
    for (int i = 0; i < 1000; i++) {
        store_get_stats(s, &st);
        if (st.unflushed_commits == 0 && st.relaxed_flushes >= 1) break;
        th_sleep_ms(10);
    }
    CHECK_INT(st.unflushed_commits, 0);
    atomic_store(&failed, 0);
    atomic_store(&fail_next, 1);
    CHECK_INT(submit(s), 0);
    for (int i = 0; i < 1000 && atomic_load(&failed) == 0; i++)
        th_sleep_ms(10);
    CHECK_INT(atomic_load(&failed), 1);
    /* Ten intervals: a retry would have succeeded by now. */
    th_sleep_ms(200);
    store_get_stats(s, &st);
    CHECK(st.unflushed_commits >= 1);
    /* And no write is acknowledged that nothing can flush. */
    CHECK_INT(submit(s), TM_EUNAVAILABLE);
    CHECK(strstr(submit_msg, "restart the server"));
    struct task_list l = {0};
    struct task_filter f = {.ns = "fl", .limit = 10};
    struct tm_error e;
    CHECK_INT(store_task_list(s, &f, &l, &e), 0);
    CHECK_INT(l.n, 2);
    task_list_release(&l);
    store_close(s);
}

static void test_a_failed_checkpoint_sync_stops_writes(void) {
    if (th_backend_is_pg()) {
        th_skip("SQLite's WAL; PostgreSQL's relaxed commits are its WAL writer's");
        return;
    }
    /* No flusher: the checkpoint's sync of the WAL is the first. */
    struct store *s = open_relaxed("checkpoint", -1);
    if (!s) return;
    atomic_store(&failed, 0);
    atomic_store(&fail_next, 1);
    /* About 5 frames a commit: the checkpoint comes after some 200. */
    int acked = 0, rc = 0;
    for (int i = 0; i < 1000 && atomic_load(&failed) == 0; i++) {
        if ((rc = submit(s)) != 0) break;
        acked++;
    }
    CHECK_INT(rc, 0);
    CHECK_INT(atomic_load(&failed), 1);
    CHECK(acked > 1);
    CHECK_INT(submit(s), TM_EUNAVAILABLE);
    CHECK(strstr(submit_msg, "restart the server"));
    struct task_list l = {0};
    struct task_filter f = {.ns = "fl", .limit = 2000};
    struct tm_error e;
    CHECK_INT(store_task_list(s, &f, &l, &e), 0);
    CHECK_INT(l.n, acked);
    task_list_release(&l);
    store_close(s);
}

/* The default, durable store: the commit whose sync failed is refused and
 * not stored, and so is every write after it (the next commit's sync
 * would succeed whatever became of the unsynced frames before it: those
 * of retention's begin_lazy transactions). */
static void test_a_failed_commit_sync_stops_writes(void) {
    if (th_backend_is_pg()) {
        th_skip("SQLite's WAL; PostgreSQL's fsync failures are its own (it stops)");
        return;
    }
    char url[400];
    snprintf(url, sizeof url, "sqlite:%s/durable.db", dir);
    struct store_options opt = {0};
    struct store *s = NULL;
    struct tm_error e;
    err_clear(&e);
    if (store_open(url, &opt, &s, &e)) {
        th_fail(__FILE__, __LINE__, "%s", e.message);
        return;
    }
    CHECK_INT(submit(s), 0);
    CHECK_INT(store_ping(s, &e), 0);
    atomic_store(&failed, 0);
    atomic_store(&fail_next, 1);
    CHECK(submit(s) != 0);
    CHECK_INT(atomic_load(&failed), 1);
    CHECK_INT(submit(s), TM_EUNAVAILABLE);
    CHECK(strstr(submit_msg, "restart the server"));
    /* Health checks say so: a supervisor restarts the server. */
    CHECK(store_ping(s, &e) != 0);
    struct task_list l = {0};
    struct task_filter f = {.ns = "fl", .limit = 10};
    CHECK_INT(store_task_list(s, &f, &l, &e), 0);
    CHECK_INT(l.n, 1);
    task_list_release(&l);
    store_close(s);
}

static const struct th_test tests[] = {
    {"a relaxed store's failed flush is not retried as if it had written",
     test_a_failed_flush_is_not_retried},
    {"a relaxed store whose checkpoint cannot flush the WAL takes no more writes",
     test_a_failed_checkpoint_sync_stops_writes},
    {"a durable store whose commit cannot sync the WAL takes no more writes",
     test_a_failed_commit_sync_stops_writes},
    {NULL, NULL},
};

int main(int argc, char **argv) {
    snprintf(dir, sizeof dir, "%s/taskmill-flush-XXXXXX",
             getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    if (!mkdtemp(dir)) return 1;
    int rc = th_main(tests, argc, argv);
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd)) {
    }
    return rc || th_failed();
}
