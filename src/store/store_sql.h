/*
 * store_sql: the SQL of task lists, shared by the SQL backends: the WHERE
 * clause of a struct task_filter (its fixed fields and its filter_expr
 * tree), the cursor, ORDER BY, LIMIT and OFFSET of a page, and the count.
 *
 * A small dialect struct says how each backend spells what differs
 * (placeholders ?N or $N, the column expression of each filter field, the
 * substring test, case-insensitive comparison, `IS NOT` or `IS DISTINCT
 * FROM`, boolean literals); the generated statement means the same on
 * every backend. Every value from a filter is a bound parameter: the
 * compiler writes SQL text and a typed bind list (text, int, real) in
 * placeholder order, which the backend binds with its own API.
 *
 * Pure (no I/O), thread-safe. The bind list borrows the filter's strings:
 * keep the filter alive until the statement has run.
 */
#ifndef TASKMILL_STORE_SQL_H
#define TASKMILL_STORE_SQL_H

#include <stdbool.h>
#include <stdint.h>

#include "../common/buf.h"
#include "../common/filter.h"
#include "store.h"

enum sql_bind_kind { SQL_BIND_TEXT, SQL_BIND_INT, SQL_BIND_REAL, SQL_BIND_KIND_COUNT };

struct sql_bind {
    enum sql_bind_kind kind;
    const char *text; /* TEXT: borrowed, never NULL */
    int64_t i;        /* INT */
    double d;         /* REAL */
};

/* Binds in placeholder order: v[k] is placeholder number k + 1. The
 * strings the compiler makes itself (a prefix's upper bound) are owned
 * here and freed by sql_binds_release. */
struct sql_binds {
    struct sql_bind *v;
    int n, cap;
    char **owned;
    int nowned;
};

struct sql_dialect {
    const char *name;
    char placeholder; /* '?': ?N (SQLite), '$': $N (PostgreSQL) */
    /* Written after a placeholder, by bind kind ("" or a cast). */
    const char *cast[SQL_BIND_KIND_COUNT];
    const char *true_sql, *false_sql;
    /* Where set, the dialect's own expression of a canonical filter field
     * (common/filter.h); the others are spelt alike on every backend
     * (store_sql.c). Times are 0 when unset in the row and NULL here;
     * phase and status names are the v1 ones (the stored status is lower
     * case). */
    const char *fields[FILTER_FIELD_COUNT];
    const char *strpos; /* strpos(haystack, needle): 1-based position, 0 when absent */
    /* Case-insensitive (ASCII) text comparison `col OP val`, written as
     * nocase_col OP nocase_val, each with its one "%s" replaced by the
     * column or the placeholder. */
    const char *nocase_col, *nocase_val;
    const char *is_distinct; /* null-safe `<>` */
    /* The task UPDATE leaves out the columns that never change
     * (store_col.fixed), their numbered parameters unused: SQLite then
     * skips every index on them alone. PostgreSQL infers each parameter's
     * type from its use, so there an unused one is an error; and since an
     * UPDATE that changes an indexed column writes a new entry in every
     * index anyway (no HOT update), naming them costs nothing there. */
    bool update_skips_fixed;
};

extern const struct sql_dialect sql_dialect_sqlite;
extern const struct sql_dialect sql_dialect_pg;

/* Appends the task row's statements in dialect d (store_task_columns): the
 * first ncols_read column names, as a read selects them; the INSERT of
 * every column; and the UPDATE of all but id (WHERE id=) and, where the
 * dialect allows, the fixed columns, each value a placeholder numbered by
 * column. */
void sql_task_statements(const struct sql_dialect *d, size_t ncols_read, struct buf *select_cols,
                         struct buf *insert, struct buf *update);
/* Appends sql_task_statements' UPDATE, leaving out also each column i
 * with leave[i] (leave: NULL, or store_task_ncols flags). */
void sql_task_update(const struct sql_dialect *d, const bool *leave, struct buf *update);

void sql_binds_release(struct sql_binds *b);

/*
 * Appends " WHERE ..." for the filter's fixed fields and expression (no
 * cursor, no paging) to sql, and its values to b. Returns 0, or
 * TM_EINVALID when the expression is malformed (a leaf's field unset, a
 * value of the wrong kind, too deep); sql and b are then partly written.
 */
int sql_where(const struct sql_dialect *d, const struct task_filter *f, struct buf *sql,
              struct sql_binds *b);
/* Appends the cursor condition (it continues sql_where's clause), ORDER BY,
 * LIMIT f->limit + 1 (one more row says whether another page follows) and
 * OFFSET. */
void sql_list_tail(const struct sql_dialect *d, const struct task_filter *f, struct buf *sql,
                   struct sql_binds *b);
/*
 * The whole statement: `SELECT select_cols FROM tasks WHERE ... ORDER BY ...
 * LIMIT ...`, or with count `SELECT count(*) FROM tasks WHERE ...` (the
 * rows matching, ignoring cursor, offset and limit: task_list.total).
 * Returns 0 or TM_EINVALID, as sql_where.
 */
int sql_list_query(const struct sql_dialect *d, const char *select_cols,
                   const struct task_filter *f, bool count, struct buf *sql, struct sql_binds *b);
/*
 * Retention of finished tasks (store.c, store_prune_finished), the same
 * text on both backends apart from placeholders. SQL_RETAIN_PAIRS: the
 * (queue, terminal phase) pairs that have tasks, from the small task_counts
 * table (a sum below 0, counts made wrong by a node of the version before
 * 0009 beside newer ones, still counts as having tasks). SQL_RETAIN_LIST_*: one pair's tasks
 * unchanged since before a bound, oldest first, up to a limit: a range of the partial index
 * tasks_retain (queue, phase, updated_at), whose predicate
 * SQL_RETAIN_PHASES the query repeats word for word so that both planners
 * can prove it (bind 1 queue, 2 phase name, 3 bound, 4 limit).
 */
#define SQL_RETAIN_PHASES "phase IN ('completed','failed','cancelled')"
/* SQLite's index predicate (migration 0016) is three comparisons: an IN
 * list there made every UPDATE of updated_at run through a temporary table. */
#define SQL_RETAIN_PHASES_SQLITE "(phase = 'completed' OR phase = 'failed' OR phase = 'cancelled')"
#define SQL_RETAIN_PAIRS                                            \
    "SELECT queue, phase FROM task_counts WHERE " SQL_RETAIN_PHASES \
    " GROUP BY queue, phase HAVING sum(n)<>0"
#define SQL_RETAIN_LIST_SQLITE                                                       \
    "SELECT id FROM tasks WHERE queue=?1 AND phase=?2 AND " SQL_RETAIN_PHASES_SQLITE \
    " AND updated_at<?3 ORDER BY updated_at LIMIT ?4"
#define SQL_RETAIN_LIST_PG                                                    \
    "SELECT id FROM tasks WHERE queue=$1 AND phase=$2 AND " SQL_RETAIN_PHASES \
    " AND updated_at<$3::bigint ORDER BY updated_at LIMIT $4::bigint"

/*
 * A page in id order with a time range (created_* or updated_*): neither
 * planner knows that old rows sit at the old end of the id order, so each
 * walks the primary key from the newest row, a scan when the range holds
 * only old tasks. The backend first runs the probe: `SELECT count(*)` of
 * the range's rows in its index, at most SQL_RANGE_PROBE. When fewer, the
 * page is read with sql_list_query_range(..., index): from that index
 * (SQLite INDEXED BY; PostgreSQL an ORDER BY the primary key cannot
 * serve), and those rows are sorted; otherwise in id order as usual, which
 * then meets matching rows soon. sql_range_probe writes the probe and
 * returns the index's name, or NULL (and writes nothing) when f has no
 * time range or is sorted by other keys.
 */
#define SQL_RANGE_PROBE 4096
const char *sql_range_probe(const struct sql_dialect *d, const struct task_filter *f,
                            struct buf *sql, struct sql_binds *b);
/* The list statement of f; with index (from sql_range_probe, fewer rows
 * than SQL_RANGE_PROBE), read from that index. NULL: sql_list_query. */
int sql_list_query_range(const struct sql_dialect *d, const char *select_cols, const char *index,
                         const struct task_filter *f, struct buf *sql, struct sql_binds *b);
/* The same, reading `from` instead of "tasks" (SQLite's `tasks INDEXED BY
 * ...`). With count and f->total_max, counts at most total_max + 1 rows. */
int sql_list_query_from(const struct sql_dialect *d, const char *select_cols, const char *from,
                        const struct task_filter *f, bool count, struct buf *sql,
                        struct sql_binds *b);

#endif
