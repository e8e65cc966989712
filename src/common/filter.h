/*
 * filter: a boolean expression over the canonical task fields, for list
 * queries richer than struct task_filter's fixed fields (SailPoint's
 * `filters` grammar; Livepeer's JSON filters may build one too).
 *
 * A front end parses its own syntax into a tree of struct filter_expr
 * whose leaves name a field as the client wrote it (`name`); it then sets
 * each leaf's canonical `field` (enum filter_field) and checks the value
 * kinds, and hands the tree to the store in task_filter.expr. The backend
 * translates it into its query language with bound parameters only.
 * Values of FILTER_FIELD_PHASE and FILTER_FIELD_STATUS are the v1 names
 * ("running", "SUCCESS"); times are epoch ms (FILTER_VAL_TIME or INT).
 *
 * Pure; a tree is owned by whoever built it and freed with filter_expr_free.
 */
#ifndef TASKMILL_FILTER_H
#define TASKMILL_FILTER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "err.h"

enum filter_op {
    FILTER_AND,
    FILTER_OR,
    FILTER_NOT, /* composite */
    FILTER_EQ,
    FILTER_NE,
    FILTER_GT,
    FILTER_GE,
    FILTER_LT,
    FILTER_LE,
    FILTER_SW,
    FILTER_CO, /* starts with, contains */
    FILTER_IN,
    FILTER_CA, /* a list of values */
    FILTER_ISNULL,
    FILTER_PR, /* no value */
    FILTER_OP_COUNT
};

enum filter_value_kind {
    FILTER_VAL_STR,
    FILTER_VAL_INT,
    FILTER_VAL_REAL,
    FILTER_VAL_BOOL,
    FILTER_VAL_TIME,
    FILTER_VAL_NULL
};

struct filter_value {
    enum filter_value_kind kind;
    char *str; /* STR: owned, NUL-terminated */
    int64_t i; /* INT, BOOL (0/1), TIME (epoch ms) */
    double d;  /* REAL */
};

/* The canonical fields a filter may test. */
enum filter_field {
    FILTER_FIELD_NONE = -1,
    FILTER_FIELD_ID,
    FILTER_FIELD_TYPE,
    FILTER_FIELD_NAME,
    FILTER_FIELD_DESCRIPTION,
    FILTER_FIELD_QUEUE,
    FILTER_FIELD_LAUNCHER,
    FILTER_FIELD_PARENT_ID,
    FILTER_FIELD_PHASE,
    FILTER_FIELD_STATUS,      /* completion_status */
    FILTER_FIELD_TARGET_ID,   /* target.id */
    FILTER_FIELD_TARGET_TYPE, /* target.type */
    FILTER_FIELD_PROGRESS_MESSAGE,
    FILTER_FIELD_PRIORITY,
    FILTER_FIELD_RETRIES,
    FILTER_FIELD_PAUSED,     /* BOOL */
    FILTER_FIELD_CREATED_AT, /* times: 0 in the record is null here */
    FILTER_FIELD_UPDATED_AT,
    FILTER_FIELD_STARTED_AT,
    FILTER_FIELD_COMPLETED_AT,
    FILTER_FIELD_SCHEDULED_AT,
    /* Derived values, as a view serves them, each backed by an index of
     * the same expression (docs/storage.md, "Indexes"): */
    FILTER_FIELD_NAME_OR_TYPE,      /* the name, else the type */
    FILTER_FIELD_LAUNCHER_OR_QUEUE, /* the launcher, else the queue */
    /* The progress message, else the phase in words ("Pending", "Waiting",
     * "Running", "Stopping", "Completed", "Failed", "Cancelled"; "Paused"
     * for a paused task that has not finished). */
    FILTER_FIELD_PROGRESS_TEXT,
    FILTER_FIELD_DESCRIPTION_OR_EMPTY, /* the description, else "" */
    FILTER_FIELD_COUNT
};

/* How a field's values are typed. */
enum filter_field_kind { FILTER_KIND_TEXT, FILTER_KIND_INT, FILTER_KIND_BOOL, FILTER_KIND_TIME };
enum filter_field_kind filter_field_kind(enum filter_field f);

#define FILTER_MAX_NODES  256 /* leaves and operators in one tree */
#define FILTER_MAX_VALUES 256 /* values in one tree, all lists together */
#define FILTER_MAX_DEPTH  32  /* nesting of not/and/or/parentheses */
/* The cost bound a tree must meet before it runs (filter_expr_check_cost):
 * leaves, leaves that no index serves (contains, and any text comparison
 * that ignores case), and the depth of the tree itself (an 'or' chain of n
 * terms is n deep; SQLite's parser takes about 90). */
#define FILTER_MAX_TERMS           64
#define FILTER_MAX_SUBSTRING_TERMS 8
#define FILTER_MAX_TREE_DEPTH      64

struct filter_expr {
    enum filter_op op;
    struct filter_expr *left, *right; /* AND, OR: both; NOT: left */
    char *name;                       /* leaf: the field as the client wrote it (owned) */
    enum filter_field field;          /* leaf: set by the front end; NONE until then */
    bool nocase;                      /* text comparisons ignore ASCII case */
    struct filter_value *values;      /* leaf: owned; 1 for EQ..CO, n for IN/CA, 0 else */
    size_t nvalues;
};

const char *filter_op_name(enum filter_op op); /* "eq", "and", ... */
/* A new node (fields zeroed, field NONE). Aborts on out of memory. */
struct filter_expr *filter_expr_new(enum filter_op op);
/* Frees the tree and every string in it. NULL is fine. */
void filter_expr_free(struct filter_expr *x);
/* `a and b` taking both (either may be NULL: the other is returned). */
struct filter_expr *filter_expr_and(struct filter_expr *a, struct filter_expr *b);
/* Visits every leaf; stops and returns the first nonzero fn result. */
int filter_expr_each_leaf(struct filter_expr *x, int (*fn)(void *cls, struct filter_expr *leaf),
                          void *cls);
/* Checks the tree against the cost bound above. 0, or TM_EINVALID naming
 * `field` (e.g. "filters") and the bound passed. */
int filter_expr_check_cost(const struct filter_expr *x, const char *field, struct tm_error *e);
/* A fully parenthesised, unambiguous text form, for tests and logs:
 * (and (eq id "a") (not (isnull completionStatus))). */
void filter_expr_format(struct buf *b, const struct filter_expr *x);

#endif
