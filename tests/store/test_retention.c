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

#include <sqlite3.h>

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

/* Waits up to 20 s (a deadline: retention runs at least once a second)
 * for pruned_through to reach at least `want`. */
static int64_t wait_pruned(struct store *s, int64_t want) {
    int64_t head = 0, pruned = 0;
    struct tm_error e;
    for (long long end = th_now_ms() + 20000; th_now_ms() < end;) {
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
    /* and a fresh one stays: judged only while it is younger than its
     * 300 ms from before its submit to after the look (a loaded machine
     * can take longer, and then it may rightly go); else a fresh one again */
    bool judged = false;
    for (int round = 0; round < 10 && !judged; round++) {
        long long t0 = th_now_ms();
        CHECK_INT(submit(s, "retage", 1), 0);
        CHECK_INT(store_events_head(s, &head, &pruned, &e), 0);
        int64_t fresh = head;
        th_sleep_ms(100); /* by design: a window, shorter than its age, in which it must not go */
        CHECK_INT(store_events_head(s, &head, &pruned, &e), 0);
        if (th_now_ms() - t0 >= 300) {
            printf("    the fresh event's look came %lld ms after it; again\n", th_now_ms() - t0);
            continue;
        }
        CHECK(pruned < fresh);
        judged = true;
    }
    CHECK(judged);
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
    /* Rounds on one store: each an old run then a new one. The split is
     * judged only when the look came before the new run was 3 s old (from
     * before its submit): later, on a loaded machine, it may rightly go too,
     * and the round is run again. */
    bool judged = false;
    for (int round = 0; round < 3 && !judged; round++) {
        CHECK_INT(submit(s, "retold", 50), 0);
        int64_t head = 0, pruned = 0;
        CHECK_INT(store_events_head(s, &head, &pruned, &e), 0);
        int64_t old_head = head;
        th_sleep_ms(3100); /* by design: the first 50 grow older than their 3 s */
        long long t_new = th_now_ms();
        CHECK_INT(submit(s, "retnew", 50), 0);
        /* retention runs at least once a second: the old run goes about 2 s
         * before the new one is 3 s old */
        CHECK(wait_pruned(s, old_head) >= old_head);
        CHECK_INT(store_events_head(s, &head, &pruned, &e), 0);
        if (th_now_ms() - t_new >= 3000) {
            printf("    the look came %lld ms after the new run; again\n", th_now_ms() - t_new);
            th_sleep_ms(3100); /* the new run old too: the next round starts clean */
            continue;
        }
        CHECK_INT(pruned, old_head); /* none of the new run */
        judged = true;
    }
    CHECK(judged);
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

/* The log from `after` on reads back whole: every seq up to the head,
 * once, in order (across the segments of a SQLite log). */
static void check_log_reads_back(struct store *s, int64_t after, int64_t head) {
    int64_t next = after + 1;
    struct tm_error e;
    while (next <= head) {
        struct event_page p = {0};
        if (store_events_read(s, NULL, NULL, next - 1, 500, 0, &p, &e) != 0 || p.n == 0) {
            th_fail(__FILE__, __LINE__, "no events after %lld (head %lld)", (long long)next - 1,
                    (long long)head);
            event_page_release(&p);
            return;
        }
        for (size_t i = 0; i < p.n; i++, next++)
            if (p.events[i].seq != next) {
                th_fail(__FILE__, __LINE__, "read seq %lld where %lld was due",
                        (long long)p.events[i].seq, (long long)next);
                event_page_release(&p);
                return;
            }
        event_page_release(&p);
    }
}

/* On SQLite: the segments listed (live: holding events) and the tables
 * there are; 0, 0 on another backend. */
static void segments(int *live, int *tables) {
    *live = *tables = 0;
    if (th_backend_is_pg()) return;
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    if (sqlite3_open_v2(url + 7, &db, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK &&
        sqlite3_prepare_v2(db, "SELECT count(first_seq), count(*) FROM event_segments", -1, &st,
                           NULL) == SQLITE_OK &&
        sqlite3_step(st) == SQLITE_ROW) {
        *live = sqlite3_column_int(st, 0);
        *tables = sqlite3_column_int(st, 1);
    }
    sqlite3_finalize(st);
    sqlite3_close(db);
}

/* A cap of 640 makes SQLite segments of 10 events: 3,000 events go
 * through about 300 of them, in 30 batches of 100 events each. */
static void test_segments_go_whole_and_their_tables_are_used_again(void) {
    struct store *s = NULL;
    struct store_options opt = {.events_max_age_ms = -1, .events_max_count = 640};
    struct tm_error e;
    CHECK_INT(store_open(url, &opt, &s, &e), 0);
    int64_t head = 0, pruned = 0;
    int live = 0, tables = 0, tables0 = 0;
    segments(&live, &tables0); /* the other tests' are there too */
    for (int i = 0; i < 30; i++)
        CHECK_INT(submit(s, "segs", 100), 0);
    CHECK_INT(store_events_head(s, &head, &pruned, &e), 0);
    /* the log keeps its newest 640 and at most one segment more */
    CHECK(wait_pruned(s, head - 650) >= head - 650);
    CHECK_INT(store_events_head(s, &head, &pruned, &e), 0);
    CHECK(head - pruned >= 640);
    check_log_reads_back(s, pruned, head);
    segments(&live, &tables);
    if (!th_backend_is_pg()) {
        /* 64 or 65 segments of 10 hold the 640 to 650 events, and the
         * emptied tables were filled again rather than made anew */
        if (live < 64 || live > 66 || tables - tables0 >= 100)
            printf("    %d segments live, %d tables, %d before\n", live, tables, tables0);
        CHECK(live >= 64 && live <= 66);
        CHECK(tables - tables0 < 100);
        CHECK(head - pruned <= 650);
    }
    store_close(s);
}

/* Segments far larger than the cap's size now (an old log, or a lower
 * cap than before) go by rows, in steps, and the log still reads back. */
static void test_oversized_segments_go_by_rows(void) {
    struct store *s = NULL;
    struct store_options big = {.events_max_age_ms = -1, .events_max_count = 6400};
    struct tm_error e;
    CHECK_INT(store_open(url, &big, &s, &e), 0);
    for (int i = 0; i < 5; i++)
        CHECK_INT(submit(s, "rows", 100), 0); /* segments of 100 on SQLite */
    store_close(s);
    struct store_options small = {.events_max_age_ms = -1, .events_max_count = 64};
    CHECK_INT(store_open(url, &small, &s, &e), 0);
    int64_t head = 0, pruned = 0;
    CHECK_INT(submit(s, "rows", 1), 0);
    CHECK_INT(store_events_head(s, &head, &pruned, &e), 0);
    CHECK(wait_pruned(s, head - 64) >= head - 64);
    CHECK_INT(store_events_head(s, &head, &pruned, &e), 0);
    CHECK(head - pruned >= 64);
    check_log_reads_back(s, pruned, head);
    store_close(s);
}

/* On SQLite: the one value `sql` gives (with ?1 bound to `arg` when not
 * NULL) on the database at path, read on a connection of its own; -1 when
 * it gives no row or fails. */
static int64_t sqlite_value(const char *path, const char *sql, const char *arg) {
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    int64_t v = -1;
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK &&
        sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK) {
        if (arg) sqlite3_bind_text(st, 1, arg, -1, SQLITE_STATIC);
        if (sqlite3_step(st) == SQLITE_ROW) v = sqlite3_column_int64(st, 0);
    }
    sqlite3_finalize(st);
    sqlite3_close(db);
    return v;
}

/* 1 when table `name`'s SQL has AUTOINCREMENT, 0 when not, -1: no table. */
static int64_t autoincrement(const char *path, const char *name) {
    return sqlite_value(path,
                        "SELECT instr(upper(sql),'AUTOINCREMENT')>0 FROM sqlite_schema"
                        " WHERE type='table' AND name=?1",
                        name);
}

/* The tests of SQLite's segments, on a database file of their own: its
 * path and URL; false (the test skipped) on PostgreSQL. */
static bool own_sqlite(const char *name, char path[300], char u[320]) {
    if (th_backend_is_pg()) {
        th_skip("segments are SQLite's");
        return false;
    }
    snprintf(path, 300, "%s/%s.db", dir, name);
    snprintf(u, 320, "sqlite:%s", path);
    return true;
}

static void test_the_first_segment_numbers_nothing_itself(void) {
    /* A new store: migration 0002's events table, AUTOINCREMENT and empty,
     * is made again at the first append, as the other segments are. */
    char path[300], u[320];
    if (!own_sqlite("plain", path, u)) return;
    struct store *s = NULL;
    struct store_options opt = {.events_max_age_ms = -1, .events_max_count = 640};
    struct tm_error e;
    CHECK_INT(store_open(u, &opt, &s, &e), 0);
    CHECK_INT(submit(s, "plain", 5), 0);
    CHECK_INT(autoincrement(path, "events_1"), 0);
    int64_t head = 0, pruned = 0;
    CHECK_INT(store_events_head(s, &head, &pruned, &e), 0);
    CHECK_INT(head, 5);
    check_log_reads_back(s, 0, head);
    store_close(s);

    /* An older store: its first segment still has AUTOINCREMENT and holds
     * events. It keeps them, and its table, until retention empties it;
     * when the slot is used again, it is made again. */
    sqlite3 *db = NULL;
    CHECK_INT(sqlite3_open(path, &db), SQLITE_OK);
    const char *old =
        "BEGIN;"
        "ALTER TABLE events_1 RENAME TO events_old;"
        "CREATE TABLE events_1 (seq INTEGER PRIMARY KEY AUTOINCREMENT, at INTEGER NOT NULL,"
        " kind TEXT NOT NULL, cause TEXT NOT NULL, task_id TEXT NOT NULL,"
        " namespace TEXT NOT NULL, queue TEXT NOT NULL, type TEXT NOT NULL,"
        " phase TEXT NOT NULL, version INTEGER NOT NULL, task TEXT NOT NULL, actor TEXT);"
        "INSERT INTO events_1 SELECT * FROM events_old;"
        "DROP TABLE events_old;"
        "CREATE INDEX events_task ON events_1 (task_id, seq);"
        "COMMIT;";
    CHECK_INT(sqlite3_exec(db, old, NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
    CHECK_INT(autoincrement(path, "events_1"), 1);
    CHECK_INT(store_open(u, &opt, &s, &e), 0);
    CHECK_INT(submit(s, "plain", 3), 0);
    CHECK_INT(autoincrement(path, "events_1"), 1); /* still holds events 1 to 8 */
    /* Segments of 10 events: after some 700 more, slot 1 was emptied; the
     * writer takes emptied slots again as it needs them. */
    int64_t first = 1;
    for (int i = 0; i < 40 && (first == 1 || first == 0); i++) {
        CHECK_INT(submit(s, "plain", 50), 0);
        first = sqlite_value(path, "SELECT coalesce(first_seq, 0) FROM event_segments WHERE slot=1",
                             NULL);
    }
    CHECK(first > 1);
    CHECK_INT(autoincrement(path, "events_1"), 0);
    CHECK_INT(store_events_head(s, &head, &pruned, &e), 0);
    CHECK(head - pruned >= 640);
    check_log_reads_back(s, pruned, head);
    store_close(s);
    /* and the numbering goes on after a restart */
    CHECK_INT(store_open(u, &opt, &s, &e), 0);
    int64_t before = head;
    CHECK_INT(submit(s, "plain", 1), 0);
    CHECK_INT(store_events_head(s, &head, &pruned, &e), 0);
    CHECK_INT(head, before + 1);
    check_log_reads_back(s, pruned, head);
    store_close(s);
}

static void test_the_head_outlives_the_events(void) {
    /* One open segment of 90 events; then a cap that makes it oversized
     * (so retention goes through it by rows) and an age that all of them
     * pass: retention empties the open segment. The head is not a row of
     * its own: after a restart it must still be 90, not 0. */
    char path[300], u[320];
    if (!own_sqlite("head", path, u)) return;
    struct store *s = NULL;
    struct store_options big = {.events_max_age_ms = -1, .events_max_count = 6400};
    struct tm_error e;
    CHECK_INT(store_open(u, &big, &s, &e), 0);
    CHECK_INT(submit(s, "head", 90), 0);
    store_close(s);
    struct store_options small = {.events_max_age_ms = 200, .events_max_count = 64};
    CHECK_INT(store_open(u, &small, &s, &e), 0);
    int64_t head = 0, pruned = 0;
    /* no writes: retention runs on its own, at least once a second (20 s:
     * a deadline) */
    for (long long end = th_now_ms() + 20000; pruned < 90 && th_now_ms() < end;) {
        th_sleep_ms(50);
        CHECK_INT(store_events_head(s, &head, &pruned, &e), 0);
    }
    CHECK_INT(pruned, 90);
    CHECK_INT(head, 90);
    store_close(s);
    /* the open segment (slot 1 here, the only one) holds nothing */
    CHECK_INT(sqlite_value(path,
                           "SELECT slot FROM event_segments"
                           " WHERE first_seq IS NOT NULL AND last_seq IS NULL",
                           NULL),
              1);
    CHECK_INT(sqlite_value(path, "SELECT count(*) FROM events_1", NULL), 0);
    CHECK_INT(store_open(u, &small, &s, &e), 0);
    CHECK_INT(store_events_head(s, &head, &pruned, &e), 0);
    CHECK_INT(head, 90);
    CHECK_INT(submit(s, "head", 1), 0);
    CHECK_INT(store_events_head(s, &head, &pruned, &e), 0);
    CHECK_INT(head, 91);
    check_log_reads_back(s, 90, head);
    store_close(s);
}

/* Runs sql on a connection of the test's own; false (reported) on a failure. */
static bool sqlite_exec(const char *path, const char *sql) {
    sqlite3 *db = NULL;
    char *err = NULL;
    bool ok = sqlite3_open(path, &db) == SQLITE_OK &&
              sqlite3_exec(db, sql, NULL, NULL, &err) == SQLITE_OK;
    if (!ok) th_fail(__FILE__, __LINE__, "%s: %s", sql, err ? err : sqlite3_errmsg(db));
    sqlite3_free(err);
    sqlite3_close(db);
    return ok;
}

static void test_a_failed_roll_leaves_the_log_as_it_was(void) {
    /* A batch whose append fills the open segment and starts the next
     * one (a new table, then its row in event_segments) fails right
     * there: a trigger of the test's refuses the row. The rollback takes
     * the new table with it; the writer must forget what it knew of the
     * segments, and the next batch makes the table again, numbers on from
     * the head, and the log reads back whole. */
    char path[300], u[320];
    if (!own_sqlite("rollfail", path, u)) return;
    struct store *s = NULL;
    struct store_options opt = {.events_max_age_ms = -1, .events_max_count = 640};
    struct tm_error e;
    CHECK_INT(store_open(u, &opt, &s, &e), 0);
    CHECK_INT(submit(s, "rollfail", 5), 0);
    int64_t head = 0, pruned = 0;
    CHECK_INT(store_events_head(s, &head, &pruned, &e), 0);
    CHECK_INT(head, 5);
    CHECK(sqlite_exec(path,
                      "CREATE TRIGGER tm_test_refuse BEFORE INSERT ON event_segments"
                      " BEGIN SELECT RAISE(ABORT, 'refused by the test'); END"));
    /* Segments of 10: the sixth event of these fills slot 1, the 11th
     * needs slot 2. */
    CHECK(submit(s, "rollfail", 10) != 0);
    CHECK_INT(store_events_head(s, &head, &pruned, &e), 0);
    CHECK_INT(head, 5);
    CHECK_INT(sqlite_value(path, "SELECT count(*) FROM tasks WHERE namespace='rollfail'", NULL), 5);
    CHECK_INT(sqlite_value(path, "SELECT count(*) FROM sqlite_schema WHERE name='events_2'", NULL),
              0);
    CHECK_INT(sqlite_value(path, "SELECT count(*) FROM event_segments", NULL), 1);
    check_log_reads_back(s, 0, head);
    CHECK(sqlite_exec(path, "DROP TRIGGER tm_test_refuse"));
    CHECK_INT(submit(s, "rollfail", 10), 0);
    CHECK_INT(store_events_head(s, &head, &pruned, &e), 0);
    CHECK_INT(head, 15);
    CHECK_INT(sqlite_value(path, "SELECT count(*) FROM events_2", NULL), 5);
    CHECK_INT(sqlite_value(path, "SELECT first_seq FROM event_segments WHERE slot=2", NULL), 11);
    check_log_reads_back(s, 0, head);
    store_close(s);
    /* and so after a restart */
    CHECK_INT(store_open(u, &opt, &s, &e), 0);
    CHECK_INT(submit(s, "rollfail", 1), 0);
    CHECK_INT(store_events_head(s, &head, &pruned, &e), 0);
    CHECK_INT(head, 16);
    check_log_reads_back(s, 0, head);
    store_close(s);
}

/* Claims the next task of retq for lease_ms; its id, or "" (a claim op). */
static void claim_one(struct store *s, const char *ns, int64_t lease_ms, char id[ID_LEN + 1]) {
    struct store_op op;
    store_op_init(&op, STORE_OP_CLAIM);
    op.ns = ns;
    op.queue = "retq";
    op.worker = "w";
    op.lease_ms = lease_ms;
    id[0] = '\0';
    if (store_run(s, &op) == 0 && op.claimed) memcpy(id, op.task->id, ID_LEN + 1);
    store_op_release(&op);
}

static const char *phase_of(struct store *s, const char *ns, const char *id) {
    struct task *t = NULL;
    struct tm_error e;
    if (store_task_get(s, ns, id, &t, &e)) return "?";
    const char *p = task_phase_name(t->phase);
    task_free(t);
    return p;
}

/*
 * A command's store (store_options.tool: the token commands) beside a
 * server does none of the server's upkeep: with retention asked of it
 * that would drop every event, it drops none, and a lease that has run
 * out stays for the server to sweep; a server's store then sweeps it.
 */
static void test_a_tools_store_does_no_upkeep(void) {
    struct store *s = NULL;
    struct store_options srv = {.events_max_age_ms = -1, .events_max_count = -1};
    struct tm_error e;
    CHECK_INT(store_open(url, &srv, &s, &e), 0);
    if (!s) return;
    CHECK_INT(submit(s, "rettool", 1), 0);
    char id[ID_LEN + 1];
    claim_one(s, "rettool", 200, id);
    CHECK(id[0]);
    store_close(s);
    s = NULL;
    struct store_options tool = {.tool = true, .events_max_age_ms = 100, .events_max_count = 1};
    CHECK_INT(store_open(url, &tool, &s, &e), 0);
    if (!s) return;
    int64_t head = 0, pruned = 0, pruned_before = 0;
    CHECK_INT(store_events_head(s, &head, &pruned_before, &e), 0);
    CHECK_INT(submit(s, "rettool", 20), 0);
    /* By design: past the events' 100 ms and the lease's 200 ms, and past
     * two of the writer's once-a-second upkeep passes, with writes. */
    for (int i = 0; i < 25; i++) {
        CHECK_INT(submit(s, "retpoke", 1), 0);
        th_sleep_ms(100);
    }
    CHECK_INT(store_events_head(s, &head, &pruned, &e), 0);
    CHECK_INT(pruned, pruned_before);
    CHECK(head - pruned >= 46);
    CHECK_STR(id[0] ? phase_of(s, "rettool", id) : "", "running");
    store_close(s);
    s = NULL;
    /* A server's store sweeps the lease at its start. */
    CHECK_INT(store_open(url, &srv, &s, &e), 0);
    if (!s) return;
    bool swept = false;
    for (long long end = th_now_ms() + 20000; !swept && th_now_ms() < end;) {
        CHECK_INT(submit(s, "retpoke", 1), 0);
        swept = strcmp(phase_of(s, "rettool", id), "running") != 0;
        if (!swept) th_sleep_ms(100);
    }
    CHECK(swept);
    store_close(s);
}

static const struct th_test tests[] = {
    {"events past their age go", test_events_past_their_age_go},
    {"the age bound splits the log between an old run and a new one",
     test_the_age_bound_splits_the_log},
    {"events past the count go, in steps, while writes go on",
     test_events_past_the_count_go_in_steps},
    {"segments go whole, and their tables are used again",
     test_segments_go_whole_and_their_tables_are_used_again},
    {"oversized segments go by rows, in steps", test_oversized_segments_go_by_rows},
    {"the first segment numbers nothing itself", test_the_first_segment_numbers_nothing_itself},
    {"a batch that fails while it starts a segment leaves the log as it was",
     test_a_failed_roll_leaves_the_log_as_it_was},
    {"the head outlives the events: an emptied open segment, then a restart",
     test_the_head_outlives_the_events},
    {"a command's store (the token commands) prunes no event and sweeps no lease",
     test_a_tools_store_does_no_upkeep},
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
