/*
 * Event retention on the backend of the run (docs/storage.md, "Retention:
 * small steps between batches"): events past their age go, events past
 * the count go, in steps, while writes go on; what is kept is never an
 * event younger than the age limit nor one of the newest `count`.
 *
 * The store comes from TASKMILL_TEST_PG (a fresh database) or a SQLite
 * file in a temporary directory, as in test_store.c.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../src/common/timeutil.h"
#include "../src/common/xalloc.h"
#include "../src/store/store.h"
#include "harness.h"

static char dir[256], url[512];

static int submit(struct store *s, const char *ns, int n) {
    struct store_op op;
    store_op_init(&op, STORE_OP_CREATE);
    op.tasks = xcalloc((size_t)n, sizeof *op.tasks);
    op.ntasks = (size_t)n;
    for (int i = 0; i < n; i++) {
        struct task *t = task_new();
        t->namespace = xstrdup(ns);
        t->queue = xstrdup("retq");
        t->type = xstrdup("x");
        op.tasks[i] = t;
    }
    int rc = store_run(s, &op);
    store_op_release(&op);
    return rc;
}

/* Waits up to 5 s for pruned_through to reach at least `want`. */
static int64_t wait_pruned(struct store *s, int64_t want) {
    int64_t head = 0, pruned = 0;
    struct tm_error e;
    for (int i = 0; i < 100; i++) {
        if (store_events_head(s, &head, &pruned, &e) != 0) return -1;
        if (pruned >= want) break;
        /* a write gives the writer a batch after which it prunes */
        if (submit(s, "retpoke", 1)) return -1;
        th_sleep_ms(50);
    }
    return pruned;
}

static void test_events_past_their_age_go(void) {
    struct store *s = NULL;
    struct store_options opt = {.events_max_age_ms = 300, .events_max_count = -1};
    struct tm_error e;
    CHECK_INT(store_open(url, &opt, &s, &e), 0);
    CHECK_INT(submit(s, "retage", 50), 0);
    int64_t head = 0, pruned = 0;
    CHECK_INT(store_events_head(s, &head, &pruned, &e), 0);
    int64_t old_head = head;
    th_sleep_ms(400); /* by design: the 50 events grow older than their 300 ms */
    /* every event of the 50 is past its age now: they go */
    CHECK(wait_pruned(s, old_head) >= old_head);
    /* and a fresh one stays */
    CHECK_INT(submit(s, "retage", 1), 0);
    CHECK_INT(store_events_head(s, &head, &pruned, &e), 0);
    int64_t fresh = head;
    th_sleep_ms(100); /* by design: a window, shorter than its age, in which it must not go */
    CHECK_INT(store_events_head(s, &head, &pruned, &e), 0);
    CHECK(pruned < fresh);
    store_close(s);
}

/* The age bound falls between two runs of events: the old run goes whole,
 * the newer one stays (on SQLite the bound is a search on seq, not an
 * index on the time). */
static void test_the_age_bound_splits_the_log(void) {
    struct store *s = NULL;
    struct store_options opt = {.events_max_age_ms = 3000, .events_max_count = -1};
    struct tm_error e;
    CHECK_INT(store_open(url, &opt, &s, &e), 0);
    CHECK_INT(submit(s, "retold", 50), 0);
    int64_t head = 0, pruned = 0;
    CHECK_INT(store_events_head(s, &head, &pruned, &e), 0);
    int64_t old_head = head;
    th_sleep_ms(3100); /* by design: the first 50 grow older than their 3 s */
    CHECK_INT(submit(s, "retnew", 50), 0);
    /* retention runs at least once a second: the old run goes about 2 s
     * before the new one is 3 s old */
    CHECK(wait_pruned(s, old_head) >= old_head);
    CHECK_INT(store_events_head(s, &head, &pruned, &e), 0);
    CHECK_INT(pruned, old_head); /* none of the new run */
    store_close(s);
}

static void test_events_past_the_count_go_in_steps(void) {
    struct store *s = NULL;
    struct store_options opt = {.events_max_age_ms = -1, .events_max_count = 100};
    struct tm_error e;
    CHECK_INT(store_open(url, &opt, &s, &e), 0);
    /* 2,500 events: more than one retention step (500) past the count */
    for (int i = 0; i < 5; i++)
        CHECK_INT(submit(s, "retcount", 500), 0);
    int64_t head = 0, pruned = 0;
    CHECK_INT(store_events_head(s, &head, &pruned, &e), 0);
    int64_t want = head - 100;
    pruned = wait_pruned(s, want);
    CHECK(pruned >= want);
    CHECK_INT(store_events_head(s, &head, &pruned, &e), 0);
    /* the newest 100 are kept */
    CHECK(head - pruned >= 100);
    store_close(s);
}

static const struct th_test tests[] = {
    {"events past their age go", test_events_past_their_age_go},
    {"the age bound splits the log between an old run and a new one",
     test_the_age_bound_splits_the_log},
    {"events past the count go, in steps, while writes go on",
     test_events_past_the_count_go_in_steps},
    {NULL, NULL},
};

int main(int argc, char **argv) {
    snprintf(dir, sizeof dir, "%s/taskmill-retention-XXXXXX",
             getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    if (!mkdtemp(dir)) return 1;
    char pgdb[64] = "";
    if (th_backend_is_pg()) {
        if (th_pg_db_create(pgdb, url, sizeof url)) {
            printf("FAIL no database for the retention suite on '%s'\n",
                   getenv("TASKMILL_TEST_PG"));
            printf("RESULT passed=0 failed=1\n");
            return 1;
        }
    } else {
        snprintf(url, sizeof url, "sqlite:%s/retention.db", dir);
    }
    int rc = th_main(tests, argc, argv);
    if (pgdb[0] && th_pg_db_drop(pgdb)) rc = 1;
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd)) {
    }
    return rc;
}
