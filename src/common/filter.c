/*
 * filter: see filter.h. Tree building, freeing and a text form; no
 * parsing (each front end has its own grammar) and no I/O. Pure.
 */
#include "filter.h"

#include <stdlib.h>

#include "xalloc.h"

static const char *const filter_op_names[FILTER_OP_COUNT] = {
    "and", "or", "not", "eq", "ne", "gt", "ge", "lt", "le", "sw", "co", "in", "ca", "isnull", "pr",
};

const char *filter_op_name(enum filter_op op) {
    return (unsigned)op < FILTER_OP_COUNT ? filter_op_names[op] : "?";
}

enum filter_field_kind filter_field_kind(enum filter_field f) {
    switch (f) {
    case FILTER_FIELD_PRIORITY:
    case FILTER_FIELD_RETRIES:
        return FILTER_KIND_INT;
    case FILTER_FIELD_PAUSED:
        return FILTER_KIND_BOOL;
    case FILTER_FIELD_CREATED_AT:
    case FILTER_FIELD_UPDATED_AT:
    case FILTER_FIELD_STARTED_AT:
    case FILTER_FIELD_COMPLETED_AT:
    case FILTER_FIELD_SCHEDULED_AT:
        return FILTER_KIND_TIME;
    default:
        return FILTER_KIND_TEXT;
    }
}

struct filter_expr *filter_expr_new(enum filter_op op) {
    struct filter_expr *x = xcalloc(1, sizeof *x);
    x->op = op;
    x->field = FILTER_FIELD_NONE;
    return x;
}

struct filter_cost {
    int terms, substring, depth;
};

static void filter_cost_walk(const struct filter_expr *x, int depth, struct filter_cost *c) {
    if (!x) return;
    if (depth > c->depth) c->depth = depth;
    if (x->op == FILTER_AND || x->op == FILTER_OR || x->op == FILTER_NOT) {
        filter_cost_walk(x->left, depth + 1, c);
        filter_cost_walk(x->right, depth + 1, c);
        return;
    }
    c->terms++;
    if (x->op == FILTER_CO || (x->nocase && x->op != FILTER_ISNULL && x->op != FILTER_PR &&
                               x->field >= 0 && filter_field_kind(x->field) == FILTER_KIND_TEXT))
        c->substring++;
}

int filter_expr_check_cost(const struct filter_expr *x, const char *field, struct tm_error *e) {
    struct filter_cost c = {0, 0, 0};
    filter_cost_walk(x, 1, &c);
    if (c.terms > FILTER_MAX_TERMS)
        return err_set(e, TM_EINVALID, field, "'%.64s' has %d terms; at most %d", field, c.terms,
                       FILTER_MAX_TERMS);
    if (c.substring > FILTER_MAX_SUBSTRING_TERMS)
        return err_set(
            e, TM_EINVALID, field,
            "'%.64s' has %d substring terms ('co', or text ignoring case), which no index "
            "serves; at most %d",
            field, c.substring, FILTER_MAX_SUBSTRING_TERMS);
    if (c.depth > FILTER_MAX_TREE_DEPTH)
        return err_set(e, TM_EINVALID, field, "'%.64s' is nested %d deep; at most %d", field,
                       c.depth, FILTER_MAX_TREE_DEPTH);
    return 0;
}

void filter_expr_free(struct filter_expr *x) {
    if (!x) return;
    filter_expr_free(x->left);
    filter_expr_free(x->right);
    for (size_t i = 0; i < x->nvalues; i++)
        free(x->values[i].str);
    free(x->values);
    free(x->name);
    free(x);
}

struct filter_expr *filter_expr_and(struct filter_expr *a, struct filter_expr *b) {
    if (!a) return b;
    if (!b) return a;
    struct filter_expr *x = filter_expr_new(FILTER_AND);
    x->left = a;
    x->right = b;
    return x;
}

int filter_expr_each_leaf(struct filter_expr *x, int (*fn)(void *cls, struct filter_expr *leaf),
                          void *cls) {
    if (!x) return 0;
    if (x->op == FILTER_AND || x->op == FILTER_OR || x->op == FILTER_NOT) {
        int rc = filter_expr_each_leaf(x->left, fn, cls);
        return rc ? rc : filter_expr_each_leaf(x->right, fn, cls);
    }
    return fn(cls, x);
}

static void filter_value_format(struct buf *b, const struct filter_value *v) {
    switch (v->kind) {
    case FILTER_VAL_STR:
        json_put_str(b, v->str);
        break;
    case FILTER_VAL_INT:
        buf_printf(b, "%lld", (long long)v->i);
        break;
    case FILTER_VAL_REAL:
        buf_printf(b, "%.17g", v->d);
        break;
    case FILTER_VAL_BOOL:
        buf_puts(b, v->i ? "true" : "false");
        break;
    case FILTER_VAL_TIME:
        buf_puts(b, "@");
        json_put_time(b, v->i);
        break;
    case FILTER_VAL_NULL:
        buf_puts(b, "null");
        break;
    }
}

void filter_expr_format(struct buf *b, const struct filter_expr *x) {
    if (!x) {
        buf_puts(b, "()");
        return;
    }
    buf_printf(b, "(%s", filter_op_name(x->op));
    if (x->op == FILTER_AND || x->op == FILTER_OR || x->op == FILTER_NOT) {
        buf_putc(b, ' ');
        filter_expr_format(b, x->left);
        if (x->right) {
            buf_putc(b, ' ');
            filter_expr_format(b, x->right);
        }
    } else {
        buf_printf(b, " %s", x->name ? x->name : "?");
        bool list = x->op == FILTER_IN || x->op == FILTER_CA;
        if (list) buf_puts(b, " [");
        for (size_t i = 0; i < x->nvalues; i++) {
            if (!list || i) buf_putc(b, ' ');
            filter_value_format(b, &x->values[i]);
        }
        if (list) buf_putc(b, ']');
    }
    buf_putc(b, ')');
}
