/*
 * store_sql: the task-list SQL of every SQL backend (store_sql.h), from a
 * struct task_filter and a dialect. Moved out of store_sqlite.c, whose
 * statements it reproduces with the SQLite dialect: each placeholder is
 * numbered (?N), which SQLite reads as the plain `?` it replaces.
 *
 * Every leaf of a filter expression is 0 or 1 (false or true), never
 * NULL, so `not` is the complement; every value is a bound parameter. The
 * only text written from a filter besides placeholders is the phase names
 * of its bitmask and the LIMIT, which are not client text.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/task.h"
#include "../common/xalloc.h"
#include "store_int.h"
#include <stddef.h>
#include <stdint.h>

#include "store_sql.h"

/*
 * The derived fields, spelt alike on both backends. Each indexed one is
 * written in its migration (sqlite 0009, pg 0008) with exactly this text
 * inside lower(), as an index on an expression serves only a query that
 * repeats it.
 */
#define SQL_NAME_OR_TYPE         "coalesce(name,type)"
#define SQL_LAUNCHER_OR_QUEUE    "coalesce(launcher,queue)"
#define SQL_DESCRIPTION_OR_EMPTY "coalesce(description,'')"
#define SQL_PROGRESS_TEXT                                            \
    "coalesce(progress_message,CASE WHEN paused<>0 AND phase NOT IN" \
    " ('completed','failed','cancelled') THEN 'Paused'"              \
    " ELSE upper(substr(phase,1,1))||substr(phase,2) END)"

/* The expression of each canonical filter field, but for those a dialect
 * spells its own way (sql_dialect.fields). */
static const char *const sql_fields[FILTER_FIELD_COUNT] = {
    [FILTER_FIELD_ID] = "id",
    [FILTER_FIELD_TYPE] = "type",
    [FILTER_FIELD_NAME] = "name",
    [FILTER_FIELD_DESCRIPTION] = "description",
    [FILTER_FIELD_QUEUE] = "queue",
    [FILTER_FIELD_LAUNCHER] = "launcher",
    [FILTER_FIELD_PARENT_ID] = "parent_id",
    [FILTER_FIELD_PHASE] = "phase",
    [FILTER_FIELD_STATUS] = "upper(completion_status)",
    [FILTER_FIELD_PROGRESS_MESSAGE] = "progress_message",
    [FILTER_FIELD_PRIORITY] = "priority",
    [FILTER_FIELD_RETRIES] = "retries",
    [FILTER_FIELD_PAUSED] = "paused",
    [FILTER_FIELD_CREATED_AT] = "nullif(created_at,0)",
    [FILTER_FIELD_UPDATED_AT] = "nullif(updated_at,0)",
    [FILTER_FIELD_STARTED_AT] = "nullif(started_at,0)",
    [FILTER_FIELD_COMPLETED_AT] = "nullif(completed_at,0)",
    [FILTER_FIELD_SCHEDULED_AT] = "nullif(scheduled_at,0)",
    [FILTER_FIELD_NAME_OR_TYPE] = SQL_NAME_OR_TYPE,
    [FILTER_FIELD_LAUNCHER_OR_QUEUE] = SQL_LAUNCHER_OR_QUEUE,
    [FILTER_FIELD_PROGRESS_TEXT] = SQL_PROGRESS_TEXT,
    [FILTER_FIELD_DESCRIPTION_OR_EMPTY] = SQL_DESCRIPTION_OR_EMPTY,
};

/* Where set, the expression a case-insensitive comparison reads instead of
 * nocase_col around the field's (the stored status is lower case already,
 * so its plain index serves). */
static const char *const sql_nocase_fields[FILTER_FIELD_COUNT] = {
    [FILTER_FIELD_STATUS] = "completion_status",
};

const struct sql_dialect sql_dialect_sqlite = {
    .name = "sqlite",
    .placeholder = '?',
    .cast = {"", "", ""},
    .true_sql = "1",
    .false_sql = "0",
    .fields =
        {
            [FILTER_FIELD_TARGET_ID] = "json_extract(target,'$.id')",
            [FILTER_FIELD_TARGET_TYPE] = "json_extract(target,'$.type')",
        },
    .strpos = "instr",
    /* lower() as PostgreSQL's, so an index on lower(expr) serves both;
     * SQLite's built-in lower() folds ASCII only, as COLLATE NOCASE does. */
    .nocase_col = "lower(%s)",
    .nocase_val = "lower(%s)",
    .is_distinct = "IS NOT",
    .update_skips_fixed = true,
};

/*
 * PostgreSQL: the task table's text columns are COLLATE "C" (migrations/pg
 * 0001) and every text value is bound as text COLLATE "C", so comparisons
 * and sorts are bytewise and lower()/upper() fold ASCII only, as SQLite's
 * BINARY collation and built-in lower() do. Values carry their type, so
 * an int column compared with a real compares numerically, as in SQLite.
 */
const struct sql_dialect sql_dialect_pg = {
    .name = "postgres",
    .placeholder = '$',
    .cast = {"::text COLLATE \"C\"", "::bigint", "::double precision"},
    .true_sql = "true",
    .false_sql = "false",
    .fields =
        {
            /* json, not jsonb: a nested value comes back as written, as
             * SQLite's json_extract gives it; NULL when absent or when
             * target is not an object. */
            [FILTER_FIELD_TARGET_ID] = "(target::json->>'id')",
            [FILTER_FIELD_TARGET_TYPE] = "(target::json->>'type')",
        },
    .strpos = "strpos",
    .nocase_col = "lower(%s)",
    .nocase_val = "lower(%s)",
    .is_distinct = "IS DISTINCT FROM",
};

/* The expression of field f in dialect d. */
static const char *sql_field(const struct sql_dialect *d, enum filter_field f) {
    return d->fields[f] ? d->fields[f] : sql_fields[f];
}

void sql_binds_release(struct sql_binds *b) {
    free(b->v);
    for (int i = 0; i < b->nowned; i++)
        free(b->owned[i]);
    free(b->owned);
    b->v = NULL;
    b->owned = NULL;
    b->n = b->cap = b->nowned = 0;
}

/* Keeps s (malloc'd) until the binds are released; returns it. */
static const char *sql_own(struct sql_binds *b, char *s) {
    b->owned = xrealloc(b->owned, (size_t)(b->nowned + 1) * sizeof *b->owned);
    b->owned[b->nowned++] = s;
    return s;
}

/*
 * The least string above every string that starts with p, so that
 * `col >= p AND col < bound` is `col starts with p` as a range an index
 * serves: p with its last code point raised by one (U+10FFFF dropped and
 * the one before raised instead; surrogates skipped). UTF-8 sorts
 * bytewise in code point order and the bound stays valid UTF-8, which
 * PostgreSQL insists on. NULL when there is none (p empty, or all
 * U+10FFFF) or p is not valid UTF-8; *bad says which.
 */
static char *sql_prefix_bound(const char *p, bool *bad) {
    size_t n = strlen(p), k = 0, nc = 0;
    uint32_t *cp = xmalloc((n + 1) * sizeof *cp);
    *bad = false;
    while (k < n) {
        const unsigned char *u = (const unsigned char *)p + k;
        uint32_t c;
        size_t len;
        if (u[0] < 0x80) {
            c = u[0];
            len = 1;
        } else if (u[0] >= 0xC2 && u[0] < 0xE0) {
            c = u[0] & 0x1F;
            len = 2;
        } else if (u[0] >= 0xE0 && u[0] < 0xF0) {
            c = u[0] & 0x0F;
            len = 3;
        } else if (u[0] >= 0xF0 && u[0] < 0xF5) {
            c = u[0] & 0x07;
            len = 4;
        } else {
            *bad = true;
            break;
        }
        if (k + len > n) {
            *bad = true;
            break;
        }
        for (size_t i = 1; i < len; i++) {
            if ((u[i] & 0xC0) != 0x80) *bad = true;
            c = (c << 6) | (u[i] & 0x3F);
        }
        static const uint32_t least[] = {0, 0, 0x80, 0x800, 0x10000};
        if (*bad || c < least[len] || c > 0x10FFFF || (c >= 0xD800 && c < 0xE000)) {
            *bad = true;
            break;
        }
        cp[nc++] = c;
        k += len;
    }
    while (!*bad && nc > 0 && cp[nc - 1] == 0x10FFFF)
        nc--;
    if (*bad || nc == 0) {
        free(cp);
        return NULL;
    }
    cp[nc - 1] = cp[nc - 1] == 0xD7FF ? 0xE000 : cp[nc - 1] + 1;
    char *out = xmalloc(4 * nc + 1), *o = out;
    for (size_t i = 0; i < nc; i++) {
        uint32_t c = cp[i];
        if (c < 0x80) {
            *o++ = (char)c;
        } else if (c < 0x800) {
            *o++ = (char)(0xC0 | (c >> 6));
            *o++ = (char)(0x80 | (c & 0x3F));
        } else if (c < 0x10000) {
            *o++ = (char)(0xE0 | (c >> 12));
            *o++ = (char)(0x80 | ((c >> 6) & 0x3F));
            *o++ = (char)(0x80 | (c & 0x3F));
        } else {
            *o++ = (char)(0xF0 | (c >> 18));
            *o++ = (char)(0x80 | ((c >> 12) & 0x3F));
            *o++ = (char)(0x80 | ((c >> 6) & 0x3F));
            *o++ = (char)(0x80 | (c & 0x3F));
        }
    }
    *o = '\0';
    free(cp);
    return out;
}

/* A copy of s with ASCII letters lowered, as SQL lower() does on both backends. */
static char *sql_ascii_lower(const char *s) {
    char *l = xstrdup(s);
    for (char *c = l; *c; c++)
        if (*c >= 'A' && *c <= 'Z') *c = (char)(*c - 'A' + 'a');
    return l;
}

static struct sql_bind *sql_bind_new(struct sql_binds *b, enum sql_bind_kind kind) {
    if (b->n == b->cap) {
        b->cap = b->cap ? b->cap * 2 : 16;
        b->v = xrealloc(b->v, (size_t)b->cap * sizeof *b->v);
    }
    struct sql_bind *v = &b->v[b->n++];
    *v = (struct sql_bind){.kind = kind};
    return v;
}

/* Writes placeholder number `num` (1-based) with its cast into ph. */
static void sql_ph(const struct sql_dialect *d, int num, enum sql_bind_kind kind, char *ph,
                   size_t n) {
    snprintf(ph, n, "%c%d%s", d->placeholder, num, d->cast[kind]);
}

/* Binds a text value and appends its placeholder. */
static void sql_put_text(const struct sql_dialect *d, struct buf *sql, struct sql_binds *b,
                         const char *v) {
    sql_bind_new(b, SQL_BIND_TEXT)->text = v;
    char ph[64];
    sql_ph(d, b->n, SQL_BIND_TEXT, ph, sizeof ph);
    buf_puts(sql, ph);
}

static void sql_put_int(const struct sql_dialect *d, struct buf *sql, struct sql_binds *b,
                        int64_t v) {
    sql_bind_new(b, SQL_BIND_INT)->i = v;
    char ph[64];
    sql_ph(d, b->n, SQL_BIND_INT, ph, sizeof ph);
    buf_puts(sql, ph);
}

/* Binds a filter value compared with a field of kind k and writes its
 * placeholder into ph; TM_EINVALID when the value cannot be compared. */
static int sql_value(const struct sql_dialect *d, struct sql_binds *b, enum filter_field_kind k,
                     const struct filter_value *v, char *ph, size_t n) {
    struct sql_bind *x;
    switch (v->kind) {
    case FILTER_VAL_STR:
        if (k != FILTER_KIND_TEXT) return TM_EINVALID;
        x = sql_bind_new(b, SQL_BIND_TEXT);
        x->text = v->str ? v->str : "";
        break;
    case FILTER_VAL_REAL:
        if (k != FILTER_KIND_INT) return TM_EINVALID;
        x = sql_bind_new(b, SQL_BIND_REAL);
        x->d = v->d;
        break;
    case FILTER_VAL_INT:
    case FILTER_VAL_BOOL:
    case FILTER_VAL_TIME:
        if (k == FILTER_KIND_TEXT) return TM_EINVALID;
        x = sql_bind_new(b, SQL_BIND_INT);
        x->i = v->i;
        break;
    default:
        return TM_EINVALID;
    }
    sql_ph(d, b->n, x->kind, ph, n);
    return 0;
}

/* Appends fmt with its one "%s" replaced by arg when `wrap`, else arg. */
static void sql_wrapped(struct buf *sql, bool wrap, const char *fmt, const char *arg) {
    const char *at = wrap ? strstr(fmt, "%s") : NULL;
    if (!at) {
        buf_puts(sql, arg);
        return;
    }
    buf_put(sql, fmt, (size_t)(at - fmt));
    buf_puts(sql, arg);
    buf_puts(sql, at + 2);
}

/* Appends `col` as a case-insensitive comparison reads it. */
static void sql_nocase_col(const struct sql_dialect *d, struct buf *sql, enum filter_field f,
                           bool nocase) {
    if (nocase && sql_nocase_fields[f])
        buf_puts(sql, sql_nocase_fields[f]);
    else
        sql_wrapped(sql, nocase, d->nocase_col, sql_field(d, f));
}

/* Appends a text value's placeholder as a case-insensitive comparison
 * reads it (an overridden field's values are lowered here instead). */
static void sql_nocase_val(const struct sql_dialect *d, struct buf *sql, enum filter_field f,
                           bool nocase, const char *ph) {
    if (nocase && sql_nocase_fields[f])
        sql_wrapped(sql, true, "lower(%s)", ph);
    else
        sql_wrapped(sql, nocase, d->nocase_val, ph);
}

/*
 * `starts with` as a range an index serves: col >= p AND col < bound
 * (sql_prefix_bound). Returns 1 when p is not valid UTF-8 (the caller
 * writes the substring test instead).
 */
static int sql_prefix_range(const struct sql_dialect *d, struct buf *sql, struct sql_binds *b,
                            enum filter_field f, bool nocase, const char *p) {
    const char *low = nocase ? sql_own(b, sql_ascii_lower(p)) : p;
    bool bad;
    char *bound = sql_prefix_bound(low, &bad);
    if (bad) return 1;
    buf_putc(sql, '(');
    sql_nocase_col(d, sql, f, nocase);
    buf_puts(sql, ">=");
    sql_put_text(d, sql, b, low);
    if (bound) {
        buf_puts(sql, " AND ");
        sql_nocase_col(d, sql, f, nocase);
        buf_puts(sql, "<");
        sql_put_text(d, sql, b, sql_own(b, bound));
    }
    buf_putc(sql, ')');
    return 0;
}

/*
 * Appends the expression as SQL. `pos`: no `not` above this node, so a
 * leaf that is NULL (unknown) rejects the row just as false does, and the
 * leaf is written bare (`col = ?`), which an index serves; under a `not`
 * it is wrapped in coalesce(..., false) so that `not` is the complement.
 */
static int sql_filter(const struct sql_dialect *d, struct buf *sql, struct sql_binds *b,
                      const struct filter_expr *x, int depth, bool pos) {
    if (!x || depth > 2 * FILTER_MAX_DEPTH + FILTER_MAX_NODES) return TM_EINVALID;
    int rc;
    switch (x->op) {
    case FILTER_AND:
    case FILTER_OR:
        buf_putc(sql, '(');
        if ((rc = sql_filter(d, sql, b, x->left, depth + 1, pos))) return rc;
        buf_puts(sql, x->op == FILTER_AND ? " AND " : " OR ");
        if ((rc = sql_filter(d, sql, b, x->right, depth + 1, pos))) return rc;
        buf_putc(sql, ')');
        return 0;
    case FILTER_NOT:
        buf_puts(sql, "(NOT ");
        if ((rc = sql_filter(d, sql, b, x->left, depth + 1, false))) return rc;
        buf_putc(sql, ')');
        return 0;
    default:
        break;
    }
    if ((unsigned)x->field >= FILTER_FIELD_COUNT) return TM_EINVALID;
    const char *col = sql_field(d, x->field);
    enum filter_field_kind k = filter_field_kind(x->field);
    bool nocase = k == FILTER_KIND_TEXT && x->nocase;
    char ph[64];
    switch (x->op) {
    case FILTER_ISNULL:
        buf_printf(sql, "(%s IS NULL)", col);
        return 0;
    case FILTER_PR:
        buf_printf(sql, "(%s IS NOT NULL)", col);
        return 0;
    case FILTER_IN:
        if (x->nvalues == 0) return TM_EINVALID;
        buf_puts(sql, pos ? "(" : "coalesce(");
        sql_nocase_col(d, sql, x->field, nocase);
        buf_puts(sql, " IN (");
        for (size_t i = 0; i < x->nvalues; i++) {
            if (i) buf_putc(sql, ',');
            if ((rc = sql_value(d, b, k, &x->values[i], ph, sizeof ph))) return rc;
            sql_nocase_val(d, sql, x->field, nocase, ph);
        }
        if (pos)
            buf_puts(sql, "))");
        else
            buf_printf(sql, "),%s)", d->false_sql);
        return 0;
    case FILTER_SW:
    case FILTER_CO:
        if (k != FILTER_KIND_TEXT || x->nvalues != 1) return TM_EINVALID;
        if (x->op == FILTER_SW && pos && x->values[0].kind == FILTER_VAL_STR &&
            sql_prefix_range(d, sql, b, x->field, nocase,
                             x->values[0].str ? x->values[0].str : "") == 0)
            return 0;
        if ((rc = sql_value(d, b, k, &x->values[0], ph, sizeof ph))) return rc;
        if (x->nocase)
            buf_printf(sql, "coalesce(%s(lower(%s),lower(%s))%s,%s)", d->strpos, col, ph,
                       x->op == FILTER_SW ? "=1" : ">0", d->false_sql);
        else
            buf_printf(sql, "coalesce(%s(%s,%s)%s,%s)", d->strpos, col, ph,
                       x->op == FILTER_SW ? "=1" : ">0", d->false_sql);
        return 0;
    case FILTER_NE:
        if (x->nvalues != 1) return TM_EINVALID;
        if ((rc = sql_value(d, b, k, &x->values[0], ph, sizeof ph))) return rc;
        buf_putc(sql, '(');
        sql_nocase_col(d, sql, x->field, nocase);
        buf_printf(sql, " %s ", d->is_distinct);
        sql_nocase_val(d, sql, x->field, nocase, ph);
        buf_putc(sql, ')');
        return 0;
    case FILTER_EQ:
    case FILTER_GT:
    case FILTER_GE:
    case FILTER_LT:
    case FILTER_LE: {
        static const char *const cmp[] = {[FILTER_EQ] = "=",
                                          [FILTER_GT] = ">",
                                          [FILTER_GE] = ">=",
                                          [FILTER_LT] = "<",
                                          [FILTER_LE] = "<="};
        if (x->nvalues != 1) return TM_EINVALID;
        if ((rc = sql_value(d, b, k, &x->values[0], ph, sizeof ph))) return rc;
        buf_puts(sql, pos ? "(" : "coalesce(");
        sql_nocase_col(d, sql, x->field, nocase);
        buf_printf(sql, " %s ", cmp[x->op]);
        sql_nocase_val(d, sql, x->field, nocase, ph);
        if (pos)
            buf_putc(sql, ')');
        else
            buf_printf(sql, ",%s)", d->false_sql);
        return 0;
    }
    default:
        return TM_EINVALID; /* ca: no list-valued fields */
    }
}

int sql_where(const struct sql_dialect *d, const struct task_filter *f, struct buf *sql,
              struct sql_binds *b) {
    buf_printf(sql, " WHERE %s", d->true_sql);
    if (f->ns) {
        buf_puts(sql, " AND namespace=");
        sql_put_text(d, sql, b, f->ns);
    }
    if (f->phases) {
        buf_puts(sql, " AND phase IN (");
        bool first = true;
        for (int p = 0; p < TASK_PHASE_COUNT; p++) {
            if (!(f->phases & (1u << p))) continue;
            buf_printf(sql, "%s'%s'", first ? "" : ",", task_phase_name((enum task_phase)p));
            first = false;
        }
        buf_putc(sql, ')');
    }
    const struct {
        const char *sql, *v;
    } eq[] = {
        {" AND type=", f->type}, {" AND queue=", f->queue}, {" AND parent_id=", f->parent_id}};
    for (size_t i = 0; i < sizeof eq / sizeof eq[0]; i++) {
        if (!eq[i].v) continue;
        buf_puts(sql, eq[i].sql);
        sql_put_text(d, sql, b, eq[i].v);
    }
    if (f->namespace_eq) {
        buf_puts(sql, " AND namespace=");
        sql_put_text(d, sql, b, f->namespace_eq);
    }
    if (f->search) {
        /* One parameter, named three times. */
        sql_bind_new(b, SQL_BIND_TEXT)->text = f->search;
        char ph[64];
        sql_ph(d, b->n, SQL_BIND_TEXT, ph, sizeof ph);
        buf_puts(sql, " AND (");
        static const char *const cols[] = {"name", "params", "error"};
        for (int i = 0; i < 3; i++)
            buf_printf(sql, "%scoalesce(%s(lower(%s),lower(%s)),0)>0", i ? " OR " : "", d->strpos,
                       cols[i], ph);
        buf_putc(sql, ')');
    }
    if (f->id_prefix[0]) {
        buf_puts(sql, " AND id>=");
        sql_put_text(d, sql, b, f->id_prefix);
        buf_puts(sql, " AND id<");
        sql_put_text(d, sql, b, f->id_prefix_end);
    }
    if (f->name_prefix) {
        buf_puts(sql, " AND ");
        if (sql_prefix_range(d, sql, b, FILTER_FIELD_NAME, false, f->name_prefix)) {
            /* Not UTF-8: no range; one parameter, named twice. */
            sql_bind_new(b, SQL_BIND_TEXT)->text = f->name_prefix;
            char ph[64];
            sql_ph(d, b->n, SQL_BIND_TEXT, ph, sizeof ph);
            buf_printf(sql, "substr(name,1,length(%s))=%s", ph, ph);
        }
    }
    const struct {
        const char *sql;
        int64_t v;
    } range[] = {{" AND created_at>", f->created_after},
                 {" AND created_at<", f->created_before},
                 {" AND updated_at>", f->updated_after},
                 {" AND updated_at<", f->updated_before}};
    for (size_t i = 0; i < sizeof range / sizeof range[0]; i++) {
        if (!range[i].v) continue;
        buf_puts(sql, range[i].sql);
        sql_put_int(d, sql, b, range[i].v);
    }
    if (f->expr) {
        buf_puts(sql, " AND ");
        return sql_filter(d, sql, b, f->expr, 0, true);
    }
    return 0;
}

void sql_list_tail(const struct sql_dialect *d, const struct task_filter *f, struct buf *sql,
                   struct sql_binds *b) {
    if (f->cursor[0] && f->nsort == 0) {
        buf_puts(sql, f->ascending ? " AND id>" : " AND id<");
        sql_put_text(d, sql, b, f->cursor);
    }
    if (f->nsort > 0) {
        static const char *const cols[] = {[TASK_SORT_ID] = "id",
                                           [TASK_SORT_CREATED_AT] = "created_at",
                                           [TASK_SORT_UPDATED_AT] = "updated_at",
                                           [TASK_SORT_NAME] = "name",
                                           [TASK_SORT_TYPE] = "type"};
        buf_puts(sql, " ORDER BY ");
        bool desc = false;
        for (int i = 0; i < f->nsort && i < TASK_SORT_MAX; i++) {
            if ((unsigned)f->sort[i].key > TASK_SORT_TYPE) continue;
            desc = f->sort[i].desc;
            /* Only the name may be null; saying NULLS LAST of the others
             * would keep PostgreSQL from reading an index backwards. */
            buf_printf(sql, "%s %s%s, ", cols[f->sort[i].key], desc ? "DESC" : "ASC",
                       f->sort[i].key == TASK_SORT_NAME ? " NULLS LAST" : "");
        }
        buf_printf(sql, "id %s LIMIT %d", desc ? "DESC" : "ASC", f->limit + 1);
    } else {
        buf_printf(sql, " ORDER BY id %s LIMIT %d", f->ascending ? "ASC" : "DESC", f->limit + 1);
    }
    if (f->offset > 0) {
        buf_puts(sql, " OFFSET ");
        sql_put_int(d, sql, b, f->offset);
    }
}

const char *sql_range_probe(const struct sql_dialect *d, const struct task_filter *f,
                            struct buf *sql, struct sql_binds *b) {
    if (f->nsort > 0) return NULL;
    const char *col, *index;
    int64_t lo, hi;
    if (f->created_after || f->created_before) {
        col = "created_at";
        index = "tasks_created";
        lo = f->created_after;
        hi = f->created_before;
    } else if (f->updated_after || f->updated_before) {
        col = "updated_at";
        index = "tasks_updated";
        lo = f->updated_after;
        hi = f->updated_before;
    } else {
        return NULL;
    }
    buf_puts(sql, "SELECT count(*) FROM (SELECT 1 FROM tasks");
    if (d->placeholder == '?') buf_printf(sql, " INDEXED BY %s", index);
    buf_printf(sql, " WHERE %s>", col);
    sql_put_int(d, sql, b, lo);
    buf_printf(sql, " AND %s<", col);
    sql_put_int(d, sql, b, hi ? hi : INT64_MAX);
    buf_printf(sql, " LIMIT %d) AS c", SQL_RANGE_PROBE);
    return index;
}

int sql_list_query_range(const struct sql_dialect *d, const char *select_cols, const char *index,
                         const struct task_filter *f, struct buf *sql, struct sql_binds *b) {
    if (!index) return sql_list_query(d, select_cols, f, false, sql, b);
    if (d->placeholder == '?') {
        char from[64];
        snprintf(from, sizeof from, "tasks INDEXED BY %s", index);
        return sql_list_query_from(d, select_cols, from, f, false, sql, b);
    }
    /* PostgreSQL: an order the primary key cannot give (id||'' sorts as
     * id: the column is COLLATE "C"), so the planner reads the range. */
    buf_printf(sql, "SELECT %s FROM tasks", select_cols);
    int rc = sql_where(d, f, sql, b);
    if (rc) return rc;
    if (f->cursor[0]) {
        buf_puts(sql, f->ascending ? " AND id>" : " AND id<");
        sql_put_text(d, sql, b, f->cursor);
    }
    buf_printf(sql, " ORDER BY id||'' %s LIMIT %d", f->ascending ? "ASC" : "DESC", f->limit + 1);
    if (f->offset > 0) {
        buf_puts(sql, " OFFSET ");
        sql_put_int(d, sql, b, f->offset);
    }
    return 0;
}

int sql_list_query_from(const struct sql_dialect *d, const char *select_cols, const char *from,
                        const struct task_filter *f, bool count, struct buf *sql,
                        struct sql_binds *b) {
    bool capped = count && f->total_max > 0;
    /* PostgreSQL, a page in id order: the ids first, then their rows. The
     * planner prices "the primary key backwards, filtering" as if matching
     * rows were spread evenly over the ids; when they are not (the newest
     * 100,000 tasks held no failed one at 1M) that read the table (64 ms
     * a page). Asked for ids alone, an index that holds the filter's
     * column and the id (tasks_phase) answers without the rows and wins. */
    bool ids_first = !count && f->nsort == 0 && d->placeholder != '?';
    if (capped)
        buf_printf(sql, "SELECT count(*) FROM (SELECT 1 FROM %s", from);
    else if (ids_first)
        buf_printf(sql, "SELECT %s FROM (SELECT id AS page_id FROM %s", select_cols, from);
    else
        buf_printf(sql, "SELECT %s FROM %s", count ? "count(*)" : select_cols, from);
    int rc = sql_where(d, f, sql, b);
    if (rc == 0 && capped) buf_printf(sql, " LIMIT %lld) AS c", (long long)f->total_max + 1);
    if (rc == 0 && !count) sql_list_tail(d, f, sql, b);
    /* Joined in the page's order, which the join keeps: no sort. */
    if (rc == 0 && ids_first)
        buf_printf(sql, ") AS page JOIN tasks ON tasks.id = page.page_id ORDER BY page.page_id %s",
                   f->ascending ? "ASC" : "DESC");
    return rc;
}

int sql_list_query(const struct sql_dialect *d, const char *select_cols,
                   const struct task_filter *f, bool count, struct buf *sql, struct sql_binds *b) {
    return sql_list_query_from(d, select_cols, "tasks", f, count, sql, b);
}

/* The task row, for every SQL backend (store_int.h). */
#define C(name, kind, field) \
    { name, kind, offsetof(struct task, field), false }
/* A column that no op changes after the task is created (store_col.fixed). */
#define FIXED(name, kind, field) \
    { name, kind, offsetof(struct task, field), true }
const struct store_col store_task_columns[] = {
    FIXED("id", STORE_COL_ID, id),
    FIXED("namespace", STORE_COL_TEXT, namespace),
    FIXED("type", STORE_COL_TEXT, type),
    FIXED("name", STORE_COL_TEXT, name),
    C("description", STORE_COL_TEXT, description),
    FIXED("queue", STORE_COL_TEXT, queue),
    C("priority", STORE_COL_INT, priority),
    FIXED("parent_id", STORE_COL_ID, parent_id),
    FIXED("launcher", STORE_COL_TEXT, launcher),
    C("target", STORE_COL_TEXT, target),
    C("definition", STORE_COL_TEXT, definition),
    C("params", STORE_COL_TEXT, params),
    C("phase", STORE_COL_PHASE, phase),
    C("completion_status", STORE_COL_STATUS, status),
    C("ratio", STORE_COL_REAL, progress.ratio),
    C("ratio_set", STORE_COL_BOOL, progress.ratio_set),
    C("progress_message", STORE_COL_TEXT, progress.message),
    C("processed", STORE_COL_INT, progress.processed),
    C("processing", STORE_COL_INT, progress.processing),
    C("pending", STORE_COL_INT, progress.pending),
    C("progress_at", STORE_COL_INT, progress.updated_at),
    C("child_pending", STORE_COL_INT, child_pending),
    C("child_processing", STORE_COL_INT, child_processing),
    C("child_processed", STORE_COL_INT, child_processed),
    C("child_ended", STORE_COL_INT, child_ended),
    C("awaiting_children", STORE_COL_BOOL, awaiting_children),
    C("items", STORE_COL_TEXT, items),
    C("messages", STORE_COL_TEXT, messages),
    C("message_count", STORE_COL_INT, message_count),
    C("warned", STORE_COL_BOOL, warned),
    C("result", STORE_COL_TEXT, result),
    C("returns", STORE_COL_TEXT, returns),
    C("attributes", STORE_COL_TEXT, attributes),
    C("error", STORE_COL_TEXT, error),
    C("error_temporary", STORE_COL_BOOL, error_temporary),
    C("attempt", STORE_COL_INT, attempt),
    C("retries", STORE_COL_INT, retries),
    C("max_retries", STORE_COL_INT, max_retries),
    C("backoff_ms", STORE_COL_INT, backoff_ms),
    C("backoff_max_ms", STORE_COL_INT, backoff_max_ms),
    C("lease_worker", STORE_COL_TEXT, lease_worker),
    C("lease_token", STORE_COL_ID, lease_token),
    C("lease_ms", STORE_COL_INT, lease_ms),
    C("lease_expires_at", STORE_COL_INT, lease_expires_at),
    FIXED("created_at", STORE_COL_INT, created_at),
    C("updated_at", STORE_COL_INT, updated_at),
    C("scheduled_at", STORE_COL_INT, scheduled_at),
    C("started_at", STORE_COL_INT, started_at),
    C("completed_at", STORE_COL_INT, completed_at),
    C("ready_at", STORE_COL_INT, ready_at),
    C("version", STORE_COL_INT, version),
    C("paused", STORE_COL_BOOL, paused),
    FIXED("idempotency_key", STORE_COL_TEXT, idempotency_key),
    C("attempts", STORE_COL_TEXT, attempts),
    FIXED("schedule_id", STORE_COL_ID, schedule_id),
    C("due_at", STORE_COL_DUE, id), /* derived: task_due_at(); written, never read */
};
#undef C
#undef FIXED
const size_t store_task_ncols = sizeof store_task_columns / sizeof store_task_columns[0];

/* The other rows, for every SQL backend (store_int.h). */
#define F(kind, type, field) \
    { kind, offsetof(type, field), sizeof(((type *)0)->field) }
const struct store_field store_doc_fields[] = {
    F(STORE_FIELD_COPY, struct store_doc, id),
    F(STORE_FIELD_DUP, struct store_doc, ns),
    F(STORE_FIELD_DUP, struct store_doc, name),
    F(STORE_FIELD_DUP, struct store_doc, body),
    F(STORE_FIELD_INT, struct store_doc, created_at),
    F(STORE_FIELD_INT, struct store_doc, updated_at),
    F(STORE_FIELD_DUP, struct store_doc, state),
    F(STORE_FIELD_INT, struct store_doc, next_at),
    {STORE_FIELD_END, 0, 0},
};
const struct store_field store_delivery_fields[] = {
    F(STORE_FIELD_COPY, struct webhook_delivery, id),
    F(STORE_FIELD_COPY, struct webhook_delivery, webhook_id),
    F(STORE_FIELD_INT, struct webhook_delivery, seq),
    F(STORE_FIELD_COPY, struct webhook_delivery, event),
    F(STORE_FIELD_COPY, struct webhook_delivery, status),
    F(STORE_FIELD_INT, struct webhook_delivery, attempts),
    F(STORE_FIELD_INT, struct webhook_delivery, next_at),
    F(STORE_FIELD_INT, struct webhook_delivery, last_status),
    F(STORE_FIELD_DUP, struct webhook_delivery, last_error),
    F(STORE_FIELD_INT, struct webhook_delivery, created_at),
    F(STORE_FIELD_INT, struct webhook_delivery, updated_at),
    {STORE_FIELD_END, 0, 0},
};
const struct store_field store_delivery_set_fields[] = {
    F(STORE_FIELD_COPY, struct webhook_delivery, id),
    F(STORE_FIELD_COPY, struct webhook_delivery, status),
    F(STORE_FIELD_INT, struct webhook_delivery, attempts),
    F(STORE_FIELD_INT, struct webhook_delivery, next_at),
    F(STORE_FIELD_INT, struct webhook_delivery, last_status),
    F(STORE_FIELD_DUP, struct webhook_delivery, last_error),
    F(STORE_FIELD_INT, struct webhook_delivery, updated_at),
    {STORE_FIELD_END, 0, 0},
};
const struct store_field store_fire_fields[] = {
    F(STORE_FIELD_INT, struct schedule_fire, slot),
    F(STORE_FIELD_INT, struct schedule_fire, at),
    F(STORE_FIELD_COPY, struct schedule_fire, kind),
    F(STORE_FIELD_COPY, struct schedule_fire, outcome),
    F(STORE_FIELD_COPY, struct schedule_fire, task_id),
    {STORE_FIELD_END, 0, 0},
};
const struct store_field store_stat_fields[] = {
    F(STORE_FIELD_INT, struct queue_stat, minute),
    F(STORE_FIELD_INT, struct queue_stat, submitted),
    F(STORE_FIELD_INT, struct queue_stat, completed),
    F(STORE_FIELD_INT, struct queue_stat, failed),
    F(STORE_FIELD_INT, struct queue_stat, latency_sum),
    F(STORE_FIELD_INT, struct queue_stat, latency_n),
    F(STORE_FIELD_INT, struct queue_stat, latency_max),
    {STORE_FIELD_END, 0, 0},
};
#undef F

void store_field_set(void *row, const struct store_field *f, const struct store_value *v) {
    char *p = (char *)row + f->off;
    const char *text = v->kind == STORE_VALUE_TEXT ? v->text : NULL;
    switch (f->kind) {
    case STORE_FIELD_INT:
        *(int64_t *)p = text ? strtoll(text, NULL, 10) : v->kind == STORE_VALUE_INT ? v->i : 0;
        break;
    case STORE_FIELD_DUP:
        *(char **)p = text ? xstrdup(text) : NULL;
        break;
    case STORE_FIELD_COPY:
        snprintf(p, f->size, "%s", text ? text : "");
        break;
    case STORE_FIELD_END:
        break;
    }
}

void store_fields_release(void *row, const struct store_field *fields) {
    for (const struct store_field *f = fields; f->kind != STORE_FIELD_END; f++) {
        if (f->kind != STORE_FIELD_DUP) continue;
        char **p = (char **)((char *)row + f->off);
        free(*p);
        *p = NULL;
    }
}

struct store_value store_field_value(const void *row, const struct store_field *f) {
    const char *p = (const char *)row + f->off;
    switch (f->kind) {
    case STORE_FIELD_INT:
        return (struct store_value){.kind = STORE_VALUE_INT, .i = *(const int64_t *)p};
    case STORE_FIELD_DUP:
        p = *(char *const *)p;
        break;
    case STORE_FIELD_COPY:
    case STORE_FIELD_END:
        break;
    }
    return (struct store_value){.kind = p ? STORE_VALUE_TEXT : STORE_VALUE_NULL, .text = p};
}

void sql_task_statements(const struct sql_dialect *d, size_t ncols_read, struct buf *select_cols,
                         struct buf *insert, struct buf *update) {
    for (size_t i = 0; i < ncols_read; i++)
        buf_printf(select_cols, "%s%s", i ? "," : "", store_task_columns[i].name);
    buf_puts(insert, "INSERT INTO tasks(");
    for (size_t i = 0; i < store_task_ncols; i++)
        buf_printf(insert, "%s%s", i ? "," : "", store_task_columns[i].name);
    buf_puts(insert, ") VALUES(");
    for (size_t i = 0; i < store_task_ncols; i++)
        buf_printf(insert, "%s%c%zu", i ? "," : "", d->placeholder, i + 1);
    buf_puts(insert, ")");
    sql_task_update(d, NULL, update);
}

void sql_task_update(const struct sql_dialect *d, const bool *leave, struct buf *update) {
    buf_puts(update, "UPDATE tasks SET ");
    bool first = true;
    for (size_t i = 1; i < store_task_ncols; i++) { /* not the id: the WHERE */
        const struct store_col *c = &store_task_columns[i];
        if ((c->fixed && d->update_skips_fixed) || (leave && leave[i])) continue;
        buf_printf(update, "%s%s=%c%zu", first ? "" : ",", c->name, d->placeholder, i + 1);
        first = false;
    }
    buf_printf(update, " WHERE id=%c1", d->placeholder);
}

struct store_value store_col_value(const struct task *t, const struct store_col *c) {
    const char *f = (const char *)t + c->off;
    struct store_value v = {.kind = STORE_VALUE_NULL};
    switch (c->kind) {
    case STORE_COL_TEXT:
        v.text = *(char *const *)f;
        break;
    case STORE_COL_ID:
        v.text = *f ? f : NULL;
        break;
    case STORE_COL_INT:
        v.kind = STORE_VALUE_INT;
        v.i = *(const int64_t *)f;
        return v;
    case STORE_COL_BOOL:
        v.kind = STORE_VALUE_INT;
        v.i = *(const bool *)f;
        return v;
    case STORE_COL_REAL:
        v.kind = STORE_VALUE_REAL;
        v.r = *(const double *)f;
        return v;
    case STORE_COL_PHASE:
        v.text = task_phase_name(t->phase);
        break;
    case STORE_COL_STATUS:
        v.text = store_status_name(t->status);
        break;
    case STORE_COL_DUE:
        v.i = task_due_at(t);
        if (v.i) v.kind = STORE_VALUE_INT;
        return v;
    }
    if (v.text) v.kind = STORE_VALUE_TEXT;
    return v;
}

void store_col_set(struct task *t, const struct store_col *c, const struct store_value *v) {
    char *f = (char *)t + c->off;
    const char *text = v->kind == STORE_VALUE_TEXT ? v->text : NULL;
    switch (c->kind) {
    case STORE_COL_TEXT:
        *(char **)f = text ? xstrdup(text) : NULL;
        break;
    case STORE_COL_ID: {
        size_t n = text ? strnlen(text, ID_LEN) : 0; /* as snprintf would cut it, cheaper */
        if (n) memcpy(f, text, n);
        f[n] = '\0';
        break;
    }
    case STORE_COL_INT:
        *(int64_t *)f = text ? strtoll(text, NULL, 10) : v->i;
        break;
    case STORE_COL_BOOL:
        *(bool *)f = text ? strcmp(text, "0") != 0 : v->i != 0;
        break;
    case STORE_COL_REAL:
        *(double *)f = text ? strtod(text, NULL) : v->r;
        break;
    case STORE_COL_PHASE:
        if (!text || task_phase_parse(text, &t->phase)) t->phase = TASK_PENDING;
        break;
    case STORE_COL_STATUS:
        t->status = store_status_parse(text);
        break;
    case STORE_COL_DUE: /* written, never read back */
        break;
    }
}
