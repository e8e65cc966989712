/*
 * The SQLite backend's VFS (src/store/store_sqlite_vfs.c): a commit's WAL
 * frames go to the file in a few gathered writes, and nothing another
 * connection or a restart reads is different for it: committed rows are
 * seen at once by a second connection, survive kill -9 of the writing
 * process, and the database passes integrity_check after commits larger
 * than the buffer, after frames rewritten within one transaction (a small
 * page cache spills them), and with gathering off (synchronous=NORMAL);
 * and a relaxed store's deferred syncs, which write and do not flush.
 * Also the one-time setup that comes with registering it: SQLite keeps no
 * memory statistics.
 */
#include <signal.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../src/store/store_sqlite_int.h"
#include "harness.h"

static char dir[256];
static int serial;

static sqlite3 *open_db(const char *path, bool writer) {
    sqlite3 *db = NULL;
    const char *vfs = sq_vfs_name(false);
    if (!vfs) return NULL;
    int flags = SQLITE_OPEN_READWRITE | (writer ? SQLITE_OPEN_CREATE : 0);
    if (sqlite3_open_v2(path, &db, flags, vfs) != SQLITE_OK) {
        sqlite3_close(db);
        return NULL;
    }
    sqlite3_busy_timeout(db, 5000);
    if (writer) {
        sqlite3_exec(db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL", NULL, NULL, NULL);
        sq_vfs_gather(db, true);
    }
    return db;
}

/* A fresh database in the test's directory, its path in path, with one
 * table t(id, body): its writer connection, gathering, or NULL. */
static sqlite3 *new_db(char path[300]) {
    snprintf(path, 300, "%s/v%d.db", dir, ++serial);
    sqlite3 *w = open_db(path, true);
    if (w && sqlite3_exec(w, "CREATE TABLE t(id INTEGER PRIMARY KEY, body BLOB)", NULL, NULL,
                          NULL) != SQLITE_OK) {
        sqlite3_close(w);
        w = NULL;
    }
    return w;
}

static int64_t scalar(sqlite3 *db, const char *sql) {
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) return -1;
    int64_t v = sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int64(st, 0) : -1;
    sqlite3_finalize(st);
    return v;
}

static bool integrity_ok(sqlite3 *db) {
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &st, NULL) != SQLITE_OK) return false;
    bool ok = sqlite3_step(st) == SQLITE_ROW &&
              strcmp((const char *)sqlite3_column_text(st, 0), "ok") == 0;
    sqlite3_finalize(st);
    return ok;
}

/* Inserts rows [from, to) with a payload of `size` bytes in one transaction. */
static int insert_rows(sqlite3 *db, int from, int to, int size) {
    sqlite3_stmt *st;
    if (sqlite3_exec(db, "BEGIN", NULL, NULL, NULL) != SQLITE_OK) return -1;
    if (sqlite3_prepare_v2(db, "INSERT INTO t(id, body) VALUES (?1, randomblob(?2))", -1, &st,
                           NULL) != SQLITE_OK)
        return -1;
    for (int i = from; i < to; i++) {
        sqlite3_bind_int(st, 1, i);
        sqlite3_bind_int(st, 2, size);
        if (sqlite3_step(st) != SQLITE_DONE) {
            sqlite3_finalize(st);
            return -1;
        }
        sqlite3_reset(st);
    }
    sqlite3_finalize(st);
    return sqlite3_exec(db, "COMMIT", NULL, NULL, NULL) == SQLITE_OK ? 0 : -1;
}

static void test_commits_are_gathered_and_read_at_once(void) {
    char path[300];
    sqlite3 *w = new_db(path), *r = NULL;
    CHECK(w);
    r = open_db(path, false);
    CHECK(r);
    uint64_t g0, w0, g1, w1;
    sq_vfs_counts(&g0, &w0);
    for (int c = 0; c < 50; c++) {
        CHECK_INT(insert_rows(w, c * 20, c * 20 + 20, 300), 0);
        /* The other connection sees each commit as soon as it returns. */
        CHECK_INT(scalar(r, "SELECT count(*) FROM t"), c * 20 + 20);
    }
    sq_vfs_counts(&g1, &w1);
    /* Two writes a frame were asked for; far fewer reached the file. */
    printf("    50 commits: %llu WAL writes gathered into %llu\n", (unsigned long long)(g1 - g0),
           (unsigned long long)(w1 - w0));
    CHECK(g1 - g0 >= 200);
    CHECK(w1 - w0 <= (g1 - g0) / 4);
    CHECK(integrity_ok(r));
    sqlite3_close(r);
    sqlite3_close(w);
}

static void test_a_commit_larger_than_the_buffer(void) {
    char path[300];
    sqlite3 *w = new_db(path);
    CHECK(w);
    /* 3,000 rows of 1,000 bytes: about 3 MB of frames in one commit, more
     * than the 1 MiB buffer and than one write of the unix VFS (128 KiB). */
    CHECK_INT(insert_rows(w, 0, 3000, 1000), 0);
    sqlite3 *r = open_db(path, false);
    CHECK(r);
    CHECK_INT(scalar(r, "SELECT count(*) FROM t"), 3000);
    CHECK_INT(scalar(r, "SELECT sum(length(body)) FROM t"), 3000000);
    CHECK(integrity_ok(r));
    sqlite3_close(r);
    CHECK_INT(sqlite3_exec(w, "PRAGMA wal_checkpoint(TRUNCATE)", NULL, NULL, NULL), SQLITE_OK);
    CHECK(integrity_ok(w));
    sqlite3_close(w);
}

static void test_frames_rewritten_within_a_transaction(void) {
    char path[300];
    sqlite3 *w = new_db(path);
    CHECK(w);
    CHECK_INT(insert_rows(w, 0, 400, 200), 0);
    /* A page cache of 8 pages spills dirty pages to the WAL mid-transaction;
     * updating every row 5 times then writes spilled pages again, over
     * their frames (SQLite's in-place rewrite, then its checksum pass). */
    CHECK_INT(sqlite3_exec(w, "PRAGMA cache_size=8; PRAGMA cache_spill=1", NULL, NULL, NULL),
              SQLITE_OK);
    CHECK_INT(sqlite3_exec(w,
                           "BEGIN;"
                           "UPDATE t SET body = randomblob(200);"
                           "UPDATE t SET body = randomblob(210);"
                           "UPDATE t SET body = randomblob(220);"
                           "UPDATE t SET body = randomblob(230);"
                           "UPDATE t SET body = zeroblob(240) WHERE id % 2 = 0;"
                           "COMMIT",
                           NULL, NULL, NULL),
              SQLITE_OK);
    sqlite3 *r = open_db(path, false);
    CHECK(r);
    CHECK_INT(scalar(r, "SELECT count(*) FROM t WHERE length(body) = 240"), 200);
    CHECK_INT(scalar(r, "SELECT count(*) FROM t WHERE length(body) = 230"), 200);
    CHECK_INT(scalar(r, "SELECT count(*) FROM t WHERE body = zeroblob(240)"), 200);
    CHECK(integrity_ok(r));
    sqlite3_close(r);
    sqlite3_close(w);
}

static void test_gathering_off_with_synchronous_normal(void) {
    char path[300];
    sqlite3 *w = new_db(path);
    CHECK(w);
    sqlite3 *r = open_db(path, false);
    CHECK(r);
    uint64_t g0, w0, g1, w1;
    for (int c = 0; c < 10; c++) {
        bool lazy = c % 2 == 1;
        if (lazy) {
            sq_vfs_gather(w, false);
            sqlite3_exec(w, "PRAGMA synchronous=NORMAL", NULL, NULL, NULL);
        }
        sq_vfs_counts(&g0, &w0);
        CHECK_INT(insert_rows(w, c * 50, c * 50 + 50, 400), 0);
        sq_vfs_counts(&g1, &w1);
        /* No commit without a sync is held back: the frames went straight
         * to the file, and the reader sees them. */
        if (lazy) CHECK_INT(g1 - g0, 0);
        CHECK_INT(scalar(r, "SELECT count(*) FROM t"), c * 50 + 50);
        if (lazy) {
            sqlite3_exec(w, "PRAGMA synchronous=FULL", NULL, NULL, NULL);
            sq_vfs_gather(w, true);
        }
    }
    CHECK(integrity_ok(r));
    sqlite3_close(r);
    sqlite3_close(w);
}

/* With psow=0 (no power-safe overwrite) a commit pads the WAL to a sector
 * boundary and writes part of it after its sync: nothing is gathered, so
 * nothing waits past the commit. */
static void test_no_gathering_without_powersafe_overwrite(void) {
    char path[300], uri[340];
    snprintf(path, sizeof path, "%s/v%d.db", dir, ++serial);
    snprintf(uri, sizeof uri, "file:%s?psow=0", path);
    sqlite3 *w = NULL;
    CHECK_INT(sqlite3_open_v2(uri, &w, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_URI,
                              sq_vfs_name(false)),
              SQLITE_OK);
    CHECK_INT(sqlite3_exec(w,
                           "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;"
                           "CREATE TABLE t(id INTEGER PRIMARY KEY, body BLOB)",
                           NULL, NULL, NULL),
              SQLITE_OK);
    sq_vfs_gather(w, true);
    sqlite3 *r = open_db(path, false);
    CHECK(r);
    uint64_t g0, w0, g1, w1;
    sq_vfs_counts(&g0, &w0);
    for (int c = 0; c < 20; c++) {
        CHECK_INT(insert_rows(w, c * 10, c * 10 + 10, 300), 0);
        CHECK_INT(scalar(r, "SELECT count(*) FROM t"), c * 10 + 10);
    }
    sq_vfs_counts(&g1, &w1);
    CHECK_INT(g1 - g0, 0);
    CHECK(integrity_ok(r));
    sqlite3_close(r);
    sqlite3_close(w);
}

/* A relaxed store's WAL: each commit's sync writes its frames (gathered)
 * and skips the flush, so a second connection reads each commit at once;
 * with deferring off again the syncs are real; a checkpoint between the
 * two leaves the database whole. */
static void test_deferred_syncs_write_and_do_not_flush(void) {
    char path[300];
    sqlite3 *w = new_db(path);
    CHECK(w);
    sqlite3 *r = open_db(path, false);
    CHECK(r);
    uint64_t d0 = sq_vfs_deferred(), g0, w0, g1, w1;
    sq_vfs_defer(w, true);
    sq_vfs_counts(&g0, &w0);
    for (int c = 0; c < 10; c++) {
        CHECK_INT(insert_rows(w, c * 20, c * 20 + 20, 400), 0);
        CHECK_INT(scalar(r, "SELECT count(*) FROM t"), c * 20 + 20);
    }
    sq_vfs_counts(&g1, &w1);
    CHECK(g1 - g0 >= 10);                /* still gathered */
    CHECK(sq_vfs_deferred() - d0 >= 10); /* a sync a commit, not flushed */
    sq_vfs_defer(w, false);
    uint64_t d1 = sq_vfs_deferred();
    CHECK_INT(sqlite3_wal_checkpoint_v2(w, NULL, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL), SQLITE_OK);
    CHECK_INT(insert_rows(w, 200, 220, 400), 0);
    CHECK_INT(sq_vfs_deferred(), d1); /* real again */
    CHECK_INT(scalar(r, "SELECT count(*) FROM t"), 220);
    CHECK(integrity_ok(r));
    sqlite3_close(r);
    sqlite3_close(w);
}

/* A process that commits and acknowledges, killed: every acknowledged row
 * is there (deferred: written, not flushed, which a killed process does
 * not lose either). */
static void kill9_case(bool defer) {
    char path[300];
    sqlite3 *w = new_db(path);
    CHECK(w);
    sqlite3_close(w);
    int fds[2];
    CHECK_INT(pipe(fds), 0);
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        /* The child commits batches forever and acknowledges each on the pipe. */
        close(fds[0]);
        sqlite3 *cw = open_db(path, true);
        if (cw && defer) sq_vfs_defer(cw, true);
        for (int c = 0; cw; c++) {
            if (insert_rows(cw, c * 25, c * 25 + 25, 500)) _exit(2);
            int acked = c * 25 + 25;
            if (write(fds[1], &acked, sizeof acked) != sizeof acked) _exit(3);
        }
        _exit(1);
    }
    close(fds[1]);
    int acked = 0, v;
    while (acked < 2000 && read(fds[0], &v, sizeof v) == sizeof v)
        acked = v;
    kill(pid, SIGKILL);
    int status;
    waitpid(pid, &status, 0);
    close(fds[0]);
    CHECK(WIFSIGNALED(status));
    CHECK(acked >= 2000);
    sqlite3 *r = open_db(path, false);
    CHECK(r);
    int64_t n = scalar(r, "SELECT count(*) FROM t");
    printf("    %d rows acknowledged before kill -9, %lld stored\n", acked, (long long)n);
    CHECK(n >= acked);
    CHECK_INT(scalar(r, "SELECT count(*) FROM t WHERE id < 2000"), 2000);
    CHECK(integrity_ok(r));
    sqlite3_close(r);
}

static void test_acknowledged_commits_survive_kill9(void) {
    kill9_case(false);
}

static void test_deferred_commits_survive_kill9(void) {
    kill9_case(true);
}

/* sq_vfs_name ran before SQLite's first use (main): no memory statistics,
 * so no process-wide mutex on each allocation. */
static void test_memory_statistics_off(void) {
    char path[300];
    sqlite3 *w = new_db(path);
    CHECK(w);
    CHECK_INT(insert_rows(w, 0, 100, 1000), 0);
    CHECK_INT(sqlite3_memory_used(), 0);
    sqlite3_close(w);
}

static const struct th_test tests[] = {
    {"a commit's WAL writes are gathered, and read at once",
     test_commits_are_gathered_and_read_at_once},
    {"a commit larger than the buffer", test_a_commit_larger_than_the_buffer},
    {"a transaction that spills its page cache to the WAL",
     test_frames_rewritten_within_a_transaction},
    {"no gathering with synchronous=NORMAL", test_gathering_off_with_synchronous_normal},
    {"no gathering without power-safe overwrite (psow=0)",
     test_no_gathering_without_powersafe_overwrite},
    {"acknowledged commits survive kill -9", test_acknowledged_commits_survive_kill9},
    {"deferred syncs write the frames and do not flush them",
     test_deferred_syncs_write_and_do_not_flush},
    {"commits with deferred syncs survive kill -9 of the process",
     test_deferred_commits_survive_kill9},
    {"SQLite keeps no memory statistics", test_memory_statistics_off},
    {NULL, NULL},
};

int main(int argc, char **argv) {
    snprintf(dir, sizeof dir, "%s/taskmill-vfs-XXXXXX",
             getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    if (!mkdtemp(dir)) return 1;
    if (!sq_vfs_name(false)) {
        printf("FAIL the taskmill VFS did not register\n");
        printf("RESULT passed=0 failed=1\n");
        return 1;
    }
    int rc = th_main(tests, argc, argv);
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd)) {
    }
    return rc;
}
