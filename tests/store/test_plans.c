/*
 * Query plans of the lists the APIs offer: each filter, sort and count
 * that the v1 API, the dashboard and the views send is answered from an
 * index, on the backend of the run (docs/storage.md, "Indexes and
 * counters"). A plan is what the database says it will do, so this is
 * not a timing test: the figures are in bench/scale and
 * docs/performance.md.
 *
 * The statements are the ones the backends run: sql_list_query with the
 * backend's dialect, on a store migrated by store_open. SQLite's plan is
 * read with EXPLAIN QUERY PLAN; PostgreSQL's with EXPLAIN and
 * enable_seqscan off (on a near-empty table a sequential scan is always
 * cheapest, so the question asked is whether an index *can* serve).
 *
 * Also here: queue counts (GET /v1/queues) read maintained counters that
 * follow every insert, phase change, pause and delete, and agree with a
 * count of the rows.
 */
#include <libpq-fe.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../src/common/filter.h"
#include "../src/common/timeutil.h"
#include "../src/common/xalloc.h"
#include "../src/store/store.h"
#include "../src/store/store_sql.h"
#include "../src/store/store_sqlite_int.h"
#include "harness.h"

static char dir[256], url[512];
static bool pg;

/* The plan of statement sql (EXPLAIN ... written) with binds b, as one
 * text; NULL on error. */
static char *plan_sql(const char *sqltext, const struct sql_binds *bb) {
    const struct sql_binds b = *bb;
    struct buf plan;
    buf_init(&plan);
    if (pg) {
        PGconn *c = PQconnectdb(url);
        if (PQstatus(c) != CONNECTION_OK) {
            PQfinish(c);
            buf_release(&plan);
            return NULL;
        }
        PQclear(PQexec(c, "SET enable_seqscan = off"));
        const char **vals = xcalloc((size_t)b.n + 1, sizeof *vals);
        char(*nums)[24] = xcalloc((size_t)b.n + 1, sizeof *nums);
        for (int i = 0; i < b.n; i++) {
            if (b.v[i].kind == SQL_BIND_TEXT) {
                vals[i] = b.v[i].text;
            } else {
                if (b.v[i].kind == SQL_BIND_INT)
                    snprintf(nums[i], sizeof nums[i], "%lld", (long long)b.v[i].i);
                else
                    snprintf(nums[i], sizeof nums[i], "%.17g", b.v[i].d);
                vals[i] = nums[i];
            }
        }
        PGresult *r = PQexecParams(c, sqltext, b.n, NULL, vals, NULL, NULL, 0);
        if (PQresultStatus(r) == PGRES_TUPLES_OK)
            for (int i = 0; i < PQntuples(r); i++)
                buf_printf(&plan, "%s\n", PQgetvalue(r, i, 0));
        else
            fprintf(stderr, "explain: %s\n", PQerrorMessage(c));
        PQclear(r);
        free(vals);
        free(nums);
        PQfinish(c);
    } else {
        const char *path = strchr(url, ':') + 1;
        sqlite3 *db = NULL;
        sqlite3_stmt *st = NULL;
        if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK &&
            sqlite3_prepare_v2(db, sqltext, -1, &st, NULL) == SQLITE_OK) {
            for (int i = 0; i < b.n; i++) {
                if (b.v[i].kind == SQL_BIND_TEXT)
                    sqlite3_bind_text(st, i + 1, b.v[i].text, -1, SQLITE_STATIC);
                else if (b.v[i].kind == SQL_BIND_INT)
                    sqlite3_bind_int64(st, i + 1, b.v[i].i);
                else
                    sqlite3_bind_double(st, i + 1, b.v[i].d);
            }
            while (sqlite3_step(st) == SQLITE_ROW)
                buf_printf(&plan, "%s\n", (const char *)sqlite3_column_text(st, 3));
        } else {
            fprintf(stderr, "explain: %s\n", sqlite3_errmsg(db));
        }
        sqlite3_finalize(st);
        sqlite3_close(db);
    }
    char *out = plan.len ? buf_detach(&plan) : NULL;
    buf_release(&plan);
    return out;
}

/* The plan of the list (or count) of f read from `from`; NULL on error. */
static char *plan_of_from(const struct task_filter *f, bool count, const char *from) {
    const struct sql_dialect *d = pg ? &sql_dialect_pg : &sql_dialect_sqlite;
    struct buf sql;
    buf_init(&sql);
    struct sql_binds b = {0};
    buf_puts(&sql, pg ? "EXPLAIN " : "EXPLAIN QUERY PLAN ");
    char *out = NULL;
    if (sql_list_query_from(d, "id", from, f, count, &sql, &b) == 0) out = plan_sql(sql.p, &b);
    buf_release(&sql);
    sql_binds_release(&b);
    return out;
}

static char *plan_of(const struct task_filter *f, bool count) {
    return plan_of_from(f, count, "tasks");
}

/* Whether the plan reads index `index` (the whole name). */
static bool plan_uses(const char *plan, const char *index) {
    static const char *const sqlite_forms[] = {"INDEX ", NULL};
    static const char *const pg_forms[] = {"using ", "Index Scan on ", NULL};
    for (const char *const *form = pg ? pg_forms : sqlite_forms; *form; form++) {
        char needle[96];
        snprintf(needle, sizeof needle, "%s%s", *form, index);
        for (const char *at = strstr(plan, needle); at; at = strstr(at + 1, needle)) {
            char c = at[strlen(needle)];
            if (c == ' ' || c == '\n' || c == '\0' || c == '(') return true;
        }
    }
    return false;
}

/* The plan of f (read from `from`) reads the index `index`, and unless
 * `sorted`, never sorts the rows it found. */
static void expect_index_from(int line, const char *what, const struct task_filter *f, bool count,
                              const char *from, const char *index, bool sorted) {
    char *plan = plan_of_from(f, count, from);
    if (!plan) {
        th_fail(__FILE__, line, "%s: no plan", what);
        return;
    }
    if (!plan_uses(plan, index))
        th_fail(__FILE__, line, "%s: the plan does not use index %s:\n%s", what, index, plan);
    if (!sorted && (strstr(plan, "TEMP B-TREE") || strstr(plan, "Sort")))
        th_fail(__FILE__, line, "%s: the plan sorts the rows it found:\n%s", what, plan);
    free(plan);
}

static void expect_index(int line, const char *what, const struct task_filter *f, bool count,
                         const char *index, bool sorted) {
    expect_index_from(line, what, f, count, "tasks", index, sorted);
}

/*
 * A time range read in id order. Neither planner knows that old rows sit at
 * the old end of the id order: the backends first count the range in its
 * index (sql_range_probe) and, when it holds few rows, read the page with
 * sql_list_query_range from that index; that statement is the one checked,
 * and so is the probe.
 */
static void expect_range(int line, const char *what, struct task_filter *f, const char *index) {
    const struct sql_dialect *d = pg ? &sql_dialect_pg : &sql_dialect_sqlite;
    struct buf probe;
    buf_init(&probe);
    struct sql_binds pb = {0};
    const char *got = sql_range_probe(d, f, &probe, &pb);
    if (!got || strcmp(got, index) != 0)
        th_fail(__FILE__, line, "%s: the probe names index %s, not %s", what, got ? got : "none",
                index);
    buf_release(&probe);
    sql_binds_release(&pb);
    struct buf sql;
    buf_init(&sql);
    struct sql_binds b = {0};
    buf_puts(&sql, pg ? "EXPLAIN " : "EXPLAIN QUERY PLAN ");
    char *plan = NULL;
    if (sql_list_query_range(d, "id", index, f, &sql, &b) == 0) plan = plan_sql(sql.p, &b);
    if (!plan || !plan_uses(plan, index))
        th_fail(__FILE__, line, "%s: the page is not read from %s:\n%s", what, index,
                plan ? plan : "");
    free(plan);
    buf_release(&sql);
    sql_binds_release(&b);
}

static struct filter_expr *leaf(enum filter_op op, enum filter_field field, const char *v) {
    struct filter_expr *x = filter_expr_new(op);
    x->name = xstrdup("f");
    x->field = field;
    x->nocase = true; /* as SailPoint's filters are */
    x->values = xcalloc(1, sizeof *x->values);
    x->nvalues = 1;
    x->values[0].kind = FILTER_VAL_STR;
    x->values[0].str = xstrdup(v);
    return x;
}

static void test_every_list_filter_uses_an_index(void) {
    struct task_filter f = {.limit = 20};
    /* v1 and the dashboard */
    f.phases = 1u << TASK_COMPLETED;
    expect_index(__LINE__, "?phase=completed", &f, false, "tasks_phase", false);
    f.phases = 0;
    f.queue = "images";
    expect_index(__LINE__, "?queue=images", &f, false, "tasks_queue", false);
    f.queue = NULL;
    f.type = "resize";
    expect_index(__LINE__, "?type=resize", &f, false, "tasks_type", false);
    f.type = NULL;
    f.name_prefix = "img-";
    expect_index(__LINE__, "?name_prefix=img-", &f, false, "tasks_name", true);
    f.name_prefix = "\xc3\xa9t\xc3\xa9-"; /* a bound past a multi-byte character */
    expect_index(__LINE__, "?name_prefix=été-", &f, false, "tasks_name", true);
    f.name_prefix = NULL;
    f.created_before = 1700000000000;
    expect_range(__LINE__, "?created_before=", &f, "tasks_created");
    f.created_before = 0;
    f.created_after = 1700000000000;
    expect_range(__LINE__, "?created_after=", &f, "tasks_created");
    f.created_after = 0;
    f.updated_after = 1700000000000;
    expect_range(__LINE__, "?updated_after=", &f, "tasks_updated");
    f.updated_after = 0;
    /* SailPoint: completionStatus, with the count, and projected fields */
    struct filter_expr *x = leaf(FILTER_EQ, FILTER_FIELD_STATUS, "SUCCESS");
    f.expr = x;
    f.ascending = true;
    expect_index(__LINE__, "completionStatus eq \"SUCCESS\"", &f, false, "tasks_status", false);
    expect_index(__LINE__, "completionStatus eq \"SUCCESS\" (count)", &f, true, "tasks_status",
                 true);
    filter_expr_free(x);
    x = leaf(FILTER_IN, FILTER_FIELD_STATUS, "ERROR");
    f.expr = x;
    expect_index(__LINE__, "completionStatus in (\"ERROR\")", &f, false, "tasks_status", true);
    filter_expr_free(x);
    x = leaf(FILTER_EQ, FILTER_FIELD_NAME_OR_TYPE, "Cloud Group Aggregation");
    f.expr = x;
    expect_index(__LINE__, "uniqueName eq", &f, false, "tasks_name_or_type", false);
    filter_expr_free(x);
    x = leaf(FILTER_SW, FILTER_FIELD_NAME_OR_TYPE, "Cloud");
    f.expr = x;
    expect_index(__LINE__, "uniqueName sw", &f, false, "tasks_name_or_type", true);
    filter_expr_free(x);
    x = leaf(FILTER_EQ, FILTER_FIELD_LAUNCHER_OR_QUEUE, "support");
    f.expr = x;
    expect_index(__LINE__, "launcher eq", &f, false, "tasks_launcher_or_queue", false);
    filter_expr_free(x);
    /* and the same leaf inside an `and` with another */
    x = filter_expr_and(leaf(FILTER_EQ, FILTER_FIELD_STATUS, "ERROR"),
                        leaf(FILTER_EQ, FILTER_FIELD_NAME_OR_TYPE, "nightly"));
    f.expr = x;
    char *plan = plan_of(&f, false);
    CHECK(plan && (strstr(plan, "tasks_status") || strstr(plan, "tasks_name_or_type")));
    free(plan);
    filter_expr_free(x);
    f.expr = NULL;
    f.ascending = false;
    /* Livepeer's first page: updatedAt desc, then createdAt desc */
    f.sort[0] = (struct task_sort){TASK_SORT_UPDATED_AT, true};
    f.sort[1] = (struct task_sort){TASK_SORT_CREATED_AT, true};
    f.nsort = 2;
    expect_index(__LINE__, "Livepeer GET /api/task", &f, false, "tasks_updated", false);
    f.nsort = 1;
    f.sort[0] = (struct task_sort){TASK_SORT_CREATED_AT, false};
    expect_index(__LINE__, "order by createdAt", &f, false, "tasks_created", false);
}

static struct task *new_task(const char *ns, const char *queue) {
    struct task *t = task_new();
    t->namespace = xstrdup(ns);
    t->queue = xstrdup(queue);
    t->type = xstrdup("x");
    return t;
}

static int64_t count_of(struct store *s, const char *ns, const char *queue, int phase) {
    struct queue_counts *qc = NULL;
    size_t n = 0;
    struct tm_error e;
    int64_t v = -1;
    if (store_queue_counts(s, ns, &qc, &n, &e) != 0) return -2;
    for (size_t i = 0; i < n; i++)
        if (strcmp(qc[i].queue, queue) == 0) v = phase < 0 ? qc[i].paused : qc[i].phase[phase];
    queue_counts_free(qc, n);
    return v;
}

static int run_op(struct store *s, enum store_op_kind kind, const char *id) {
    struct store_op op;
    store_op_init(&op, kind);
    snprintf(op.id, sizeof op.id, "%s", id);
    int rc = store_run(s, &op);
    store_op_release(&op);
    return rc;
}

static void test_queue_counts_follow_every_write(void) {
    struct store *s = NULL;
    struct store_options opt = {0};
    struct tm_error e;
    CHECK_INT(store_open(url, &opt, &s, &e), 0);
    char ids[3][ID_LEN + 1];
    for (int i = 0; i < 3; i++) {
        struct store_op op;
        store_op_init(&op, STORE_OP_CREATE);
        op.tasks = xmalloc(sizeof *op.tasks);
        op.tasks[0] = new_task(i == 2 ? "cnt2" : "cnt", "cntq");
        op.ntasks = 1;
        CHECK_INT(store_run(s, &op), 0);
        memcpy(ids[i], op.task->id, ID_LEN + 1);
        store_op_release(&op);
    }
    CHECK_INT(count_of(s, NULL, "cntq", TASK_PENDING), 3);
    CHECK_INT(count_of(s, "cnt", "cntq", TASK_PENDING), 2);
    CHECK_INT(count_of(s, "cnt2", "cntq", TASK_PENDING), 1);
    /* a pause moves a task to the paused count; a cancel to cancelled */
    CHECK_INT(run_op(s, STORE_OP_PAUSE, ids[0]), 0);
    CHECK_INT(count_of(s, NULL, "cntq", -1), 1);
    CHECK_INT(count_of(s, NULL, "cntq", TASK_PENDING), 3);
    CHECK_INT(run_op(s, STORE_OP_CANCEL, ids[1]), 0);
    CHECK_INT(count_of(s, NULL, "cntq", TASK_PENDING), 2);
    CHECK_INT(count_of(s, NULL, "cntq", TASK_CANCELLED), 1);
    /* a refused op (retry of a pending task) changes no count */
    CHECK_INT(run_op(s, STORE_OP_RETRY, ids[2]), TM_ECONFLICT);
    CHECK_INT(count_of(s, NULL, "cntq", TASK_CANCELLED), 1);
    CHECK_INT(count_of(s, NULL, "cntq", TASK_PENDING), 2);
    /* a delete takes the task out */
    CHECK_INT(run_op(s, STORE_OP_DELETE, ids[1]), 0);
    CHECK_INT(count_of(s, NULL, "cntq", TASK_CANCELLED), 0);
    CHECK_INT(count_of(s, NULL, "cntq", TASK_PENDING), 2);
    /* the counts agree with a count of the rows, after close and open */
    store_close(s);
    s = NULL;
    CHECK_INT(store_open(url, &opt, &s, &e), 0);
    struct task_filter f = {.ns = "cnt", .queue = "cntq", .limit = 10, .want_total = true};
    struct task_list l;
    CHECK_INT(store_task_list(s, &f, &l, &e), 0);
    CHECK_INT(l.total, 1);
    task_list_release(&l);
    CHECK_INT(count_of(s, "cnt", "cntq", TASK_PENDING), 1);
    CHECK_INT(count_of(s, "cnt", "cntq", -1), 1);
    store_close(s);
}

/* Claims the next task of queue q in namespace ns with a lease of
 * lease_ms; fills id and token ("" when none). */
static int claim_one(struct store *s, const char *ns, const char *q, int64_t lease_ms,
                     char id[ID_LEN + 1], char token[ID_LEN + 1]) {
    struct store_op op;
    store_op_init(&op, STORE_OP_CLAIM);
    op.ns = ns;
    op.queue = q;
    op.worker = "w";
    op.lease_ms = lease_ms;
    int rc = store_run(s, &op);
    id[0] = token[0] = '\0';
    if (rc == 0 && op.claimed) {
        memcpy(id, op.task->id, ID_LEN + 1);
        memcpy(token, op.new_lease_token, ID_LEN + 1);
    }
    store_op_release(&op);
    return rc;
}

static int leased(struct store *s, enum store_op_kind kind, const char *id, const char *token) {
    struct store_op op;
    store_op_init(&op, kind);
    snprintf(op.id, sizeof op.id, "%s", id);
    op.lease_token = token;
    op.error = "boom";
    op.retryable = false;
    int rc = store_run(s, &op);
    store_op_release(&op);
    return rc;
}

/* Every phase's counter of queue q in ns equals a count of its rows. */
static void expect_counts_match_rows(int line, struct store *s, const char *ns, const char *q) {
    for (int p = 0; p < TASK_PHASE_COUNT; p++) {
        struct task_filter f = {
            .ns = ns, .queue = q, .phases = 1u << p, .limit = 1, .want_total = true};
        struct task_list l;
        struct tm_error e;
        if (store_task_list(s, &f, &l, &e) != 0) {
            th_fail(__FILE__, line, "list: %s", e.message);
            return;
        }
        int64_t counted = count_of(s, ns, q, p);
        if (counted < 0) counted = 0; /* the queue is not listed when it has no task */
        if (counted != l.total)
            th_fail(__FILE__, line, "phase '%s': the counter says %lld, the rows %lld",
                    task_phase_name((enum task_phase)p), (long long)counted, (long long)l.total);
        task_list_release(&l);
    }
}

static void test_queue_counts_after_a_busy_run(void) {
    struct store *s = NULL;
    struct store_options opt = {.sweep_max_ms = 20};
    struct tm_error e;
    CHECK_INT(store_open(url, &opt, &s, &e), 0);
    /* twelve tasks, two of them paused, one waiting for later */
    char ids[12][ID_LEN + 1];
    struct store_op op;
    store_op_init(&op, STORE_OP_CREATE);
    op.tasks = xcalloc(12, sizeof *op.tasks);
    op.ntasks = 12;
    for (int i = 0; i < 12; i++) {
        op.tasks[i] = new_task("busy", "busyq");
        op.tasks[i]->max_retries = 0;
    }
    op.tasks[11]->scheduled_at = time_now_ms() + 3600 * 1000;
    CHECK_INT(store_run(s, &op), 0);
    for (size_t i = 0; i < op.ntasks; i++)
        memcpy(ids[i], op.tasks[i]->id, ID_LEN + 1);
    store_op_release(&op);
    CHECK_INT(run_op(s, STORE_OP_PAUSE, ids[9]), 0);
    CHECK_INT(run_op(s, STORE_OP_PAUSE, ids[10]), 0);
    CHECK_INT(run_op(s, STORE_OP_RESUME, ids[10]), 0);
    expect_counts_match_rows(__LINE__, s, "busy", "busyq");
    /* claims: complete two, fail one, release one, cancel one running,
     * let one lease run out (no retries left: failed), keep one running */
    char id[ID_LEN + 1], tok[7][ID_LEN + 1], cid[7][ID_LEN + 1];
    for (int i = 0; i < 7; i++) {
        CHECK_INT(claim_one(s, "busy", "busyq", i == 5 ? 50 : 600000, cid[i], tok[i]), 0);
        CHECK(cid[i][0]);
    }
    CHECK_INT(leased(s, STORE_OP_COMPLETE, cid[0], tok[0]), 0);
    CHECK_INT(leased(s, STORE_OP_COMPLETE, cid[1], tok[1]), 0);
    CHECK_INT(leased(s, STORE_OP_FAIL, cid[2], tok[2]), 0);
    CHECK_INT(leased(s, STORE_OP_RELEASE, cid[3], tok[3]), 0);
    CHECK_INT(run_op(s, STORE_OP_CANCEL, cid[4]), 0); /* running: now stopping */
    /* a stale lease is refused and changes no count */
    CHECK_INT(leased(s, STORE_OP_COMPLETE, cid[0], tok[1]), TM_ECONFLICT);
    for (int i = 0; i < 100; i++) {
        struct task *t = NULL;
        if (store_task_get(s, NULL, cid[5], &t, &e) == 0 && t->phase == TASK_FAILED) {
            task_free(t);
            break;
        }
        task_free(t);
        th_sleep_ms(20);
    }
    expect_counts_match_rows(__LINE__, s, "busy", "busyq");
    /* retry a failed one, delete a completed one */
    CHECK_INT(run_op(s, STORE_OP_RETRY, cid[2]), 0);
    CHECK_INT(run_op(s, STORE_OP_DELETE, cid[0]), 0);
    CHECK(claim_one(s, "busy", "busyq", 600000, id, tok[0]) == 0);
    expect_counts_match_rows(__LINE__, s, "busy", "busyq");
    CHECK_INT(count_of(s, "busy", "busyq", -1), 1);
    store_close(s);
}

/* The ids of the tasks in namespace ns that x matches, in id order, as
 * one string of their names' first letters. */
static void match(struct store *s, const char *ns, struct filter_expr *x, char *out, size_t n) {
    struct task_filter f = {
        .ns = ns, .expr = x, .ascending = true, .limit = 50, .want_total = true};
    struct task_list l;
    struct tm_error e;
    out[0] = '\0';
    if (store_task_list(s, &f, &l, &e) != 0) {
        snprintf(out, n, "error: %s", e.message);
    } else {
        size_t k = 0;
        for (size_t i = 0; i < l.n && k + 1 < n; i++)
            out[k++] = l.tasks[i]->description[0];
        out[k] = '\0';
        if ((int64_t)l.n != l.total) snprintf(out, n, "count %lld", (long long)l.total);
    }
    task_list_release(&l);
    filter_expr_free(x);
}

static void test_derived_fields_filter_as_served(void) {
    struct store *s = NULL;
    struct store_options opt = {0};
    struct tm_error e;
    CHECK_INT(store_open(url, &opt, &s, &e), 0);
    /* a: named, launched by someone; b: no name, no launcher; c: message
     * set; d: paused and pending; the description's letter names each. */
    const char *names[] = {"Nightly Run", NULL, NULL, NULL};
    const char *launchers[] = {"alice", NULL, NULL, NULL};
    char ids[4][ID_LEN + 1];
    for (int i = 0; i < 4; i++) {
        struct store_op op;
        store_op_init(&op, STORE_OP_CREATE);
        struct task *t = new_task("derived", i == 3 ? "other" : "dq");
        free(t->type);
        t->type = xstrdup("Aggregation");
        if (names[i]) t->name = xstrdup(names[i]);
        if (launchers[i]) t->launcher = xstrdup(launchers[i]);
        char d[2] = {(char)('a' + i), 0};
        t->description = xstrdup(d);
        if (i == 2) t->progress.message = xstrdup("Step 2 of 5");
        op.tasks = xmalloc(sizeof *op.tasks);
        op.tasks[0] = t;
        op.ntasks = 1;
        CHECK_INT(store_run(s, &op), 0);
        memcpy(ids[i], op.task->id, ID_LEN + 1);
        store_op_release(&op);
    }
    CHECK_INT(run_op(s, STORE_OP_PAUSE, ids[3]), 0);
    char got[64];
    match(s, "derived", leaf(FILTER_EQ, FILTER_FIELD_NAME_OR_TYPE, "aggregation"), got, sizeof got);
    CHECK_STR(got, "bcd");
    match(s, "derived", leaf(FILTER_SW, FILTER_FIELD_NAME_OR_TYPE, "NIGHTLY"), got, sizeof got);
    CHECK_STR(got, "a");
    match(s, "derived", leaf(FILTER_EQ, FILTER_FIELD_LAUNCHER_OR_QUEUE, "dq"), got, sizeof got);
    CHECK_STR(got, "bc");
    match(s, "derived", leaf(FILTER_EQ, FILTER_FIELD_LAUNCHER_OR_QUEUE, "ALICE"), got, sizeof got);
    CHECK_STR(got, "a");
    match(s, "derived", leaf(FILTER_EQ, FILTER_FIELD_PROGRESS_TEXT, "pending"), got, sizeof got);
    CHECK_STR(got, "ab");
    match(s, "derived", leaf(FILTER_EQ, FILTER_FIELD_PROGRESS_TEXT, "Paused"), got, sizeof got);
    CHECK_STR(got, "d");
    match(s, "derived", leaf(FILTER_SW, FILTER_FIELD_PROGRESS_TEXT, "step 2"), got, sizeof got);
    CHECK_STR(got, "c");
    match(s, "derived", leaf(FILTER_EQ, FILTER_FIELD_DESCRIPTION_OR_EMPTY, "c"), got, sizeof got);
    CHECK_STR(got, "c");
    /* under a `not`, a derived field is the complement */
    struct filter_expr *n = filter_expr_new(FILTER_NOT);
    n->left = leaf(FILTER_EQ, FILTER_FIELD_PROGRESS_TEXT, "Pending");
    match(s, "derived", n, got, sizeof got);
    CHECK_STR(got, "cd");
    /* a cancelled task's progress is its phase in words */
    CHECK_INT(run_op(s, STORE_OP_CANCEL, ids[1]), 0);
    match(s, "derived", leaf(FILTER_EQ, FILTER_FIELD_PROGRESS_TEXT, "Cancelled"), got, sizeof got);
    CHECK_STR(got, "b");
    /* a prefix past a multi-byte character, and one of U+10FFFF alone */
    match(s, "derived", leaf(FILTER_SW, FILTER_FIELD_NAME_OR_TYPE, "Nightly Ru\xc3\xa9"), got,
          sizeof got);
    CHECK_STR(got, "");
    match(s, "derived", leaf(FILTER_SW, FILTER_FIELD_NAME_OR_TYPE, "\xf4\x8f\xbf\xbf"), got,
          sizeof got);
    CHECK_STR(got, "");
    /* the count is capped past total_max, and says so */
    struct task_filter f = {.ns = "derived", .limit = 1, .want_total = true, .total_max = 2};
    struct task_list l;
    CHECK_INT(store_task_list(s, &f, &l, &e), 0);
    CHECK_INT(l.total, 2);
    CHECK(l.total_capped);
    task_list_release(&l);
    f.total_max = 4;
    CHECK_INT(store_task_list(s, &f, &l, &e), 0);
    CHECK_INT(l.total, 4);
    CHECK(!l.total_capped);
    task_list_release(&l);
    store_close(s);
}

static void test_time_ranges_list_the_right_rows(void) {
    struct store *s = NULL;
    struct store_options opt = {0};
    struct tm_error e;
    CHECK_INT(store_open(url, &opt, &s, &e), 0);
    char ids[5][ID_LEN + 1];
    int64_t at[5];
    for (int i = 0; i < 5; i++) {
        struct store_op op;
        store_op_init(&op, STORE_OP_CREATE);
        op.tasks = xmalloc(sizeof *op.tasks);
        op.tasks[0] = new_task("ranges", "rq");
        op.ntasks = 1;
        CHECK_INT(store_run(s, &op), 0);
        memcpy(ids[i], op.task->id, ID_LEN + 1);
        at[i] = op.task->created_at;
        store_op_release(&op);
        th_sleep_ms(3); /* by design: each task a created_at (ms) of its own */
    }
    /* created_before at[3]: the first three, newest first, paged by two */
    struct task_filter f = {.ns = "ranges", .created_before = at[3], .limit = 2};
    struct task_list l;
    CHECK_INT(store_task_list(s, &f, &l, &e), 0);
    CHECK_INT(l.n, 2);
    if (l.n == 2) {
        CHECK_STR(l.tasks[0]->id, ids[2]);
        CHECK_STR(l.tasks[1]->id, ids[1]);
        CHECK(l.more);
        memcpy(f.cursor, l.tasks[1]->id, ID_LEN + 1);
    }
    task_list_release(&l);
    CHECK_INT(store_task_list(s, &f, &l, &e), 0);
    CHECK_INT(l.n, 1);
    if (l.n == 1) CHECK_STR(l.tasks[0]->id, ids[0]);
    CHECK(!l.more);
    task_list_release(&l);
    /* created_after at[1], oldest first, with the count */
    struct task_filter g = {
        .ns = "ranges", .created_after = at[1], .ascending = true, .limit = 10, .want_total = true};
    CHECK_INT(store_task_list(s, &g, &l, &e), 0);
    CHECK_INT(l.n, 3);
    CHECK_INT(l.total, 3);
    if (l.n == 3) {
        CHECK_STR(l.tasks[0]->id, ids[2]);
        CHECK_STR(l.tasks[2]->id, ids[4]);
    }
    task_list_release(&l);
    /* updated_before with an offset */
    struct task_filter h = {.ns = "ranges", .updated_before = at[4] + 1, .offset = 1, .limit = 10};
    CHECK_INT(store_task_list(s, &h, &l, &e), 0);
    CHECK_INT(l.n, 4);
    if (l.n == 4) CHECK_STR(l.tasks[0]->id, ids[3]);
    task_list_release(&l);
    store_close(s);
}

/* Retention deletes the sent (or given up) deliveries of the events it
 * drops, with this statement (store_sqlite_events.c, store_pg_events.c):
 * it read the whole deliveries table at every step before
 * webhook_deliveries_done. */
/* The plan of a statement without binds (PostgreSQL's text or SQLite's)
 * reads `index`; `what` names it in the failure. */
static void check_reads_index(const char *pg_sql, const char *sqlite_sql, const char *index,
                              const char *what) {
    struct sql_binds none = {0};
    char *plan = plan_sql(pg ? pg_sql : sqlite_sql, &none);
    CHECK(plan != NULL);
    if (plan && !plan_uses(plan, index))
        th_fail(__FILE__, __LINE__, "%s does not read %s:\n%s", what, index, plan);
    free(plan);
}

static void test_retention_reads_an_index(void) {
    check_reads_index(
        "EXPLAIN DELETE FROM webhook_deliveries"
        " WHERE status <> 'pending' AND seq <= 5::bigint",
        "EXPLAIN QUERY PLAN DELETE FROM webhook_deliveries"
        " WHERE status<>'pending' AND seq<=5",
        "webhook_deliveries_done", "the delete of sent deliveries");
}

/* Retention's list of one queue's finished tasks in one phase, older than
 * a bound, oldest first (store_prune_finished, SQL_RETAIN_LIST_*): a range
 * of tasks_retain holding only those candidates, not a walk of the queue's
 * tasks (tasks_queue) or of a time range over every queue, and no sort. */
static void test_retention_candidates_read_a_range(void) {
    struct sql_bind v[] = {{.kind = SQL_BIND_TEXT, .text = "images"},
                           {.kind = SQL_BIND_TEXT, .text = "completed"},
                           {.kind = SQL_BIND_INT, .i = 1700000000000},
                           {.kind = SQL_BIND_INT, .i = 500}};
    const struct sql_binds b = {.v = v, .n = 4};
    char *plan = plan_sql(
        pg ? "EXPLAIN " SQL_RETAIN_LIST_PG : "EXPLAIN QUERY PLAN " SQL_RETAIN_LIST_SQLITE, &b);
    CHECK(plan != NULL);
    if (!plan) return;
    printf("# retention list plan:\n%s", plan);
    if (!plan_uses(plan, "tasks_retain"))
        th_fail(__FILE__, __LINE__, "the retention list does not read tasks_retain:\n%s", plan);
    if (strstr(plan, "TEMP B-TREE") || strstr(plan, "Sort"))
        th_fail(__FILE__, __LINE__, "the retention list sorts the rows it found:\n%s", plan);
    if (!pg && !strstr(plan, "updated_at<?"))
        th_fail(__FILE__, __LINE__, "the retention list does not bound the range:\n%s", plan);
    free(plan);
}

/* A webhook delivery claim, as the SQLite backend runs it: one probe of
 * each free webhook's due deliveries (webhook_deliveries_hook_due), not a
 * walk of every due delivery in time order past a busy webhook's backlog.
 * PostgreSQL's claim (a LATERAL of the same index) is the pg side. */
static void test_a_delivery_claim_probes_each_webhook(void) {
    check_reads_index(
        "EXPLAIN SELECT w.id FROM webhooks w CROSS JOIN LATERAL"
        " (SELECT x.next_at, x.seq FROM webhook_deliveries x"
        " WHERE x.webhook_id = w.id AND x.status = 'pending' AND x.next_at <= 5"
        " ORDER BY x.next_at, x.seq, CASE x.event WHEN 'task.spawned' THEN 0"
        " WHEN 'task.updated' THEN 1 ELSE 2 END LIMIT 1) f"
        " WHERE w.busy_until <= 5 ORDER BY f.next_at, f.seq LIMIT 1",
        "EXPLAIN QUERY PLAN SELECT d.id " SQ_DELIVERY_CLAIM_HEAD
        " AND w.id NOT IN ('a') " SQ_DELIVERY_CLAIM_TAIL,
        "webhook_deliveries_hook_due", "a delivery claim");
}

/* One task's events after a seq (a stream or a page of /v1/events with
 * task=, the Scene7 job log), as the backends read them
 * (store_sqlite_events.c: each segment; the first, events_1, keeps the
 * index name events_task; store_pg_events.c): from the per-task index,
 * not a scan of the log by seq. */
static void test_a_tasks_events_read_an_index(void) {
    /* On SQLite, slot 1's index is events_task while it is migration
     * 0002's table, and events_1_task once the writer has made it again
     * as the other segments (docs/storage.md): at the first append, which
     * this makes sure of. */
    struct store *s = NULL;
    struct store_options opt = {0};
    struct tm_error e;
    CHECK_INT(store_open(url, &opt, &s, &e), 0);
    struct store_op op;
    store_op_init_create(&op, "plans-events", new_task("plans-events", "q"));
    CHECK_INT(store_run(s, &op), 0);
    store_op_release(&op);
    store_close(s);
    check_reads_index(
        "EXPLAIN SELECT seq FROM events WHERE seq > 5::bigint"
        " AND task_id = '0123' ORDER BY seq LIMIT 100",
        "EXPLAIN QUERY PLAN SELECT seq FROM events_1 WHERE seq>5"
        " AND (NULL IS NULL OR namespace=NULL) AND task_id='0123'"
        " ORDER BY seq LIMIT 100",
        pg ? "events_task" : "events_1_task", "the read of a task's events");
}

/* A schedule's unfinished runs, as its overlap policy reads them at each
 * slot (store_sqlite_docs.c, store_pg_docs.c: sched_runs): from the
 * partial index of the unfinished tasks that name a schedule, not a scan
 * of the schedule's finished runs or of the tasks no schedule launched. */
static void test_a_schedules_runs_read_an_index(void) {
    check_reads_index(
        "EXPLAIN SELECT id FROM tasks WHERE schedule_id='0123'"
        " AND schedule_id IS NOT NULL"
        " AND phase NOT IN ('completed', 'failed', 'cancelled')"
        " ORDER BY id LIMIT 1000",
        "EXPLAIN QUERY PLAN SELECT id FROM tasks WHERE schedule_id='0123'"
        " AND schedule_id IS NOT NULL"
        " AND phase <> 'completed' AND phase <> 'failed' AND phase <> 'cancelled'"
        " ORDER BY id LIMIT 1000",
        "tasks_schedule_runs", "the read of a schedule's unfinished runs");
}

/* An UPDATE of a task (SQLite: the writer sets the columns that changed)
 * runs in one pass, with no temporary table: a partial index whose WHERE
 * held an IN list (tasks_retain, tasks_schedule_runs as first written)
 * made SQLite evaluate it through one, allocated and freed each statement,
 * and a batched lifecycle cost 7 times the CPU. Every column but the key
 * is set, so every index's predicate is evaluated. */
static void test_an_update_needs_no_temporary_table(void) {
    if (pg) return;
    const char *path = strchr(url, ':') + 1;
    sqlite3 *db = NULL;
    CHECK(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK);
    struct buf sql;
    buf_init(&sql);
    buf_puts(&sql, "EXPLAIN UPDATE tasks SET ");
    sqlite3_stmt *st = NULL;
    CHECK(sqlite3_prepare_v2(db, "SELECT name FROM pragma_table_info('tasks') WHERE pk = 0", -1,
                             &st, NULL) == SQLITE_OK);
    int cols = 0;
    while (sqlite3_step(st) == SQLITE_ROW)
        buf_printf(&sql, "%s%s = ?", cols++ ? ", " : "", (const char *)sqlite3_column_text(st, 0));
    sqlite3_finalize(st);
    buf_puts(&sql, " WHERE id = ?");
    CHECK(cols > 40);
    st = NULL;
    CHECK(sqlite3_prepare_v2(db, sql.p, -1, &st, NULL) == SQLITE_OK);
    int ephemeral = 0, ops = 0;
    while (st && sqlite3_step(st) == SQLITE_ROW) {
        ops++;
        if (strcmp((const char *)sqlite3_column_text(st, 1), "OpenEphemeral") == 0) ephemeral++;
    }
    sqlite3_finalize(st);
    sqlite3_close(db);
    buf_release(&sql);
    CHECK(ops > 0);
    CHECK_INT(ephemeral, 0);
}

static const struct th_test tests[] = {
    {"an update of a task needs no temporary table (SQLite)",
     test_an_update_needs_no_temporary_table},
    {"a schedule's unfinished runs are read through their partial index",
     test_a_schedules_runs_read_an_index},
    {"time ranges list the right rows, read from their index",
     test_time_ranges_list_the_right_rows},
    {"derived fields filter as a view serves them", test_derived_fields_filter_as_served},
    {"every list filter, sort and count reads an index", test_every_list_filter_uses_an_index},
    {"queue counts follow every write", test_queue_counts_follow_every_write},
    {"retention's delete of sent deliveries reads an index", test_retention_reads_an_index},
    {"retention's candidates are a range of tasks_retain", test_retention_candidates_read_a_range},
    {"a task's events are read through its index", test_a_tasks_events_read_an_index},
    {"a webhook delivery claim probes each free webhook's first due delivery",
     test_a_delivery_claim_probes_each_webhook},
    {"queue counts equal a count of the rows after a busy run", test_queue_counts_after_a_busy_run},
    {NULL, NULL},
};

int main(int argc, char **argv) {
    snprintf(dir, sizeof dir, "%s/taskmill-plans-XXXXXX",
             getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    if (!mkdtemp(dir)) return 1;
    char pgdb[64] = "";
    pg = th_backend_is_pg();
    if (pg) {
        if (th_pg_db_create(pgdb, url, sizeof url)) {
            printf("FAIL no database for the plan suite on '%s'\n", getenv("TASKMILL_TEST_PG"));
            printf("RESULT passed=0 failed=1\n");
            return 1;
        }
    } else {
        snprintf(url, sizeof url, "sqlite:%s/plans.db", dir);
    }
    /* Migrate once, before any plan is asked for. */
    struct store *s = NULL;
    struct store_options opt = {0};
    struct tm_error e;
    if (store_open(url, &opt, &s, &e)) {
        printf("FAIL store_open('%s'): %s\n", url, e.message);
        printf("RESULT passed=0 failed=1\n");
        return 1;
    }
    store_close(s);
    int rc = th_main(tests, argc, argv);
    if (pgdb[0] && th_pg_db_drop(pgdb)) rc = 1;
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd)) {
    }
    return rc;
}
