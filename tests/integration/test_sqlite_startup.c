/*
 * `taskmill serve` on a SQLite file it cannot serve stops at once, with
 * one message that names the file and says why: a file that is not a
 * SQLite database, a database of a newer taskmill (a migration this one
 * does not know), a file or a directory the server may not write.
 *
 * SQLite only: the file is the server's own.
 */
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "harness.h"
#include "sec_util.h"

static char dir[] = "/tmp/taskmill-startup-XXXXXX";

/* Whether one line of out holds both a and b. */
static bool line_has(const char *out, const char *a, const char *b) {
    for (const char *p = out; *p;) {
        const char *end = strchr(p, '\n');
        size_t n = end ? (size_t)(end - p) : strlen(p);
        char line[1024];
        snprintf(line, sizeof line, "%.*s", (int)n, p);
        if (strstr(line, a) && strstr(line, b)) return true;
        p += n + (end ? 1 : 0);
    }
    return false;
}

/* Starts a server on path: its exit status, its output in out. */
static int serve(const char *path, char *out, size_t n) {
    /* Under timeout: a server that started would run for ever. */
    return sec_cli(out, n, "timeout 20 %s serve --listen 127.0.0.1:0 --store 'sqlite:%s' 2>&1",
                   sec_bin(), path);
}

static void test_not_a_database(void) {
    if (th_backend_is_pg()) {
        th_skip("a SQLite file");
        return;
    }
    char path[128], out[4096];
    snprintf(path, sizeof path, "%s/notes.db", dir);
    FILE *f = fopen(path, "w");
    CHECK(f);
    if (!f) return;
    for (int i = 0; i < 100; i++)
        fprintf(f, "these are notes, not a database\n");
    fclose(f);
    int rc = serve(path, out, sizeof out);
    CHECK(rc != 0 && rc != 124);
    if (!line_has(out, path, "not a database"))
        th_fail(__FILE__, __LINE__, "no line names '%s' and why: %s", path, out);
}

static void test_a_newer_database(void) {
    if (th_backend_is_pg()) {
        th_skip("a SQLite file");
        return;
    }
    char path[128], out[4096];
    snprintf(path, sizeof path, "%s/newer.db", dir);
    sqlite3 *db = NULL;
    CHECK(sqlite3_open(path, &db) == SQLITE_OK);
    CHECK(sqlite3_exec(db, "CREATE TABLE later(x); PRAGMA user_version=9999", NULL, NULL, NULL) ==
          SQLITE_OK);
    sqlite3_close(db);
    int rc = serve(path, out, sizeof out);
    CHECK(rc != 0 && rc != 124);
    if (!line_has(out, path, "migration 9999, newer than this taskmill"))
        th_fail(__FILE__, __LINE__, "no line names '%s' and its migration: %s", path, out);
    CHECK(strstr(out, "cannot prepare") == NULL);
    /* Refused, and left as it was. */
    CHECK(sqlite3_open(path, &db) == SQLITE_OK);
    sqlite3_stmt *st = NULL;
    CHECK(sqlite3_prepare_v2(db,
                             "SELECT (SELECT user_version FROM pragma_user_version),"
                             " (SELECT count(*) FROM sqlite_schema)",
                             -1, &st, NULL) == SQLITE_OK);
    CHECK(sqlite3_step(st) == SQLITE_ROW);
    CHECK_INT(sqlite3_column_int(st, 0), 9999);
    CHECK_INT(sqlite3_column_int(st, 1), 1);
    sqlite3_finalize(st);
    sqlite3_close(db);
}

/* Makes an empty SQLite database at path with the given mode. */
static void make_db(const char *path, mode_t mode) {
    sqlite3 *db = NULL;
    CHECK(sqlite3_open(path, &db) == SQLITE_OK);
    CHECK(sqlite3_exec(db, "CREATE TABLE t(x)", NULL, NULL, NULL) == SQLITE_OK);
    sqlite3_close(db);
    CHECK(chmod(path, mode) == 0);
}

/* Starts a server on path as a user the permissions bind (root passes
 * them: the server then runs as nobody). */
static int serve_bound(const char *path, char *out, size_t n) {
    return sec_cli(out, n, "%s timeout 20 %s serve --listen 127.0.0.1:0 --store 'sqlite:%s' 2>&1",
                   geteuid() == 0 ? "setpriv --reuid=65534 --regid=65534 --clear-groups" : "",
                   sec_bin(), path);
}

static void test_read_only(void) {
    if (th_backend_is_pg()) {
        th_skip("a SQLite file");
        return;
    }
    char sub[128], path[160], out[4096];
    /* A file the server may not write, in a directory it may. */
    snprintf(sub, sizeof sub, "%s/rofile", dir);
    CHECK(mkdir(sub, 0777) == 0 && chmod(sub, 0777) == 0);
    snprintf(path, sizeof path, "%s/ro.db", sub);
    make_db(path, 0444);
    int rc = serve_bound(path, out, sizeof out);
    CHECK(rc != 0 && rc != 124);
    if (!line_has(out, path, "readonly") || !line_has(out, path, "'-wal'"))
        th_fail(__FILE__, __LINE__, "no line names '%s', why and what to allow: %s", path, out);
    /* A file it may write, in a directory it may not (where the WAL goes). */
    snprintf(sub, sizeof sub, "%s/rodir", dir);
    CHECK(mkdir(sub, 0755) == 0);
    snprintf(path, sizeof path, "%s/rw.db", sub);
    make_db(path, 0666);
    if (geteuid() != 0) CHECK(chmod(sub, 0555) == 0);
    rc = serve_bound(path, out, sizeof out);
    CHECK(rc != 0 && rc != 124);
    if (!line_has(out, path, "'-wal'"))
        th_fail(__FILE__, __LINE__, "no line names '%s' and what to allow: %s", path, out);
    CHECK(chmod(sub, 0755) == 0);
}

static const struct th_test tests[] = {
    {"a file that is not a SQLite database is refused, naming it and why", test_not_a_database},
    {"a database of a newer taskmill is refused, naming it and its migration",
     test_a_newer_database},
    {"a read-only file or directory is refused, naming the file and what to allow", test_read_only},
    {NULL, NULL},
};

int main(int argc, char **argv) {
    if (!mkdtemp(dir) || chmod(dir, 0755)) return 1; /* a server run as nobody reaches in */
    int rc = th_main(tests, argc, argv) || th_failed();
    char cmd[100];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd)) {
    }
    return rc;
}
