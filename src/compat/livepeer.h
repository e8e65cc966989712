/*
 * livepeer: the Livepeer Studio task API as a view of the canonical record.
 *
 * Serves `GET /api/task`, `GET /api/task/{id}` and `POST /api/task/{id}/retry`
 * (routes in livepeer.c, listed in http.c's route_tables with their own
 * error writer, so every error on /api/... is `{"errors":["..."]}`). The
 * view keeps no data: a Task object is written from a struct task, and a
 * list query becomes a struct task_filter for the store.
 *
 * The projection and the query decoder are pure (no I/O, no clock) and
 * thread-safe, so tests/unit/test_livepeer.c drives them without a server.
 * docs/compat.md (section Livepeer) has the field mapping and every choice
 * made where Livepeer's public material is silent.
 *
 * Errors: the decoder returns 0 or TM_EINVALID with a message in Livepeer's
 * words ("error parsing filters: ..."); a decoded query owns no memory.
 */
#ifndef TASKMILL_LIVEPEER_H
#define TASKMILL_LIVEPEER_H

#include <stdbool.h>
#include <stdint.h>

#include "../common/buf.h"
#include "../common/err.h"
#include "../common/task.h"

#define LIVEPEER_LIMIT_DEFAULT 20
#define LIVEPEER_LIMIT_MAX     1000
#define LIVEPEER_FILTERS_MAX   16
#define LIVEPEER_ORDER_MAX     4
#define LIVEPEER_VALUE_MAX     256
#define LIVEPEER_SKIP_MAX      1000000000LL

/* The Livepeer phase of a taskmill phase (stopping shows as running). */
const char *livepeer_phase_name(enum task_phase p);
/* The Livepeer task type of a taskmill type: the type itself when it is one
 * of Livepeer's enum values, else NULL (the key is then left out). */
const char *livepeer_type_of(const char *type);

/* Writes the task as Livepeer's Task object (absent keys, never nulls). */
void livepeer_task_write(struct buf *b, const struct task *t);
/*
 * Writes the Livepeer Task of a task's v1 JSON text (an event's stored
 * snapshot, for the webhook bodies), through livepeer_task_write, so both
 * shapes agree; writes `null` when the text is not a v1 task.
 */
void livepeer_task_write_v1(struct buf *b, const char *v1_json);
/* Writes Livepeer's error body {"errors":["<message>"]}; http.c calls it
 * for every error on the view's paths (an error_writer_fn). */
void livepeer_error_write(struct buf *b, int status, const struct tm_error *e);
/* livepeer_webhook_body and the routes: views.h. */

/* Fields a list may be filtered or ordered by. */
enum livepeer_field {
    LIVEPEER_F_ID,
    LIVEPEER_F_NAME,
    LIVEPEER_F_CREATED_AT,
    LIVEPEER_F_UPDATED_AT,
    LIVEPEER_F_TYPE,
    LIVEPEER_F_PROJECT_ID,
};

enum livepeer_op {
    LIVEPEER_EQ,
    LIVEPEER_CONTAINS,
    LIVEPEER_GT,
    LIVEPEER_GTE,
    LIVEPEER_LT,
    LIVEPEER_LTE
};

/* One condition of `filters`: text fields compare `text`, times `num`. */
struct livepeer_cond {
    enum livepeer_field field;
    enum livepeer_op op;
    char text[LIVEPEER_VALUE_MAX];
    int64_t num;
};

struct livepeer_sort {
    enum livepeer_field field;
    bool desc;
};

/* A decoded `GET /api/task` query. */
struct livepeer_query {
    int limit;
    int64_t skip; /* from the cursor `skip<N>` */
    bool count;   /* `count` given: send X-Total-Count */
    struct livepeer_cond cond[LIVEPEER_FILTERS_MAX];
    int ncond;
    struct livepeer_sort order[LIVEPEER_ORDER_MAX]; /* none given: the default */
    int norder;
    unsigned seen;   /* limit, cursor, filters given so far, one bit each: none may repeat */
    bool count_seen; /* a count came before (a repeated one is read joined, so true) */
};

void livepeer_query_init(struct livepeer_query *q);
/*
 * Adds one query argument (`limit`, `cursor`, `filters`, `order`, `count`;
 * other keys are ignored, as Livepeer does). `limit`, `cursor` and
 * `filters` may come once: a second is refused, naming it. A repeated
 * `order` or `count` is read as Livepeer reads it, its values joined with
 * ','. Returns 0, or TM_EINVALID with e set; q is then unspecified and
 * must not be used.
 */
int livepeer_query_add(struct livepeer_query *q, const char *key, const char *value,
                       struct tm_error *e);
/* The effective order: the one given, else updatedAt desc, createdAt desc.
 * Fills out[0..LIVEPEER_ORDER_MAX) and returns how many. */
int livepeer_query_order(const struct livepeer_query *q, struct livepeer_sort *out);

struct filter_expr;
/*
 * The conditions as a filter expression over canonical fields (all of
 * them and-ed), or NULL when there are none; the caller frees it with
 * filter_expr_free. projectId conditions are left out: they select the
 * namespace (livepeer_query_project).
 */
struct filter_expr *livepeer_query_expr(const struct livepeer_query *q);
/* The projectId asked for, or NULL; *conflict when two differ (no task matches). */
const char *livepeer_query_project(const struct livepeer_query *q, bool *conflict);

#endif
