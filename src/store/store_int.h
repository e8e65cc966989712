/*
 * store_int: the backend ops table behind store.h. Included only by the
 * files that implement the store (store.c and one file per backend), as
 * curl's vtls_int.h is.
 *
 * Writer-side ops run only on the writer thread, between begin and commit,
 * on the backend's one write connection. Reader-side ops may run on any
 * thread at once; the backend keeps its own reader connections. Every op
 * returns 0 or a negative TM_E code; rows are copied out before return.
 */
#ifndef TASKMILL_STORE_INT_H
#define TASKMILL_STORE_INT_H

#include "store.h"

struct store_claim_query {
    const char *ns, *queue;
    const char *const *types;
    int ntypes;
};

struct store_backend {
    const char *scheme; /* "sqlite" */
    int (*open)(struct store *s, const char *rest, const struct store_options *opt,
                struct tm_error *e);
    void (*close)(struct store *s);

    /* Writer thread only. */
    int (*begin)(struct store *s);
    int (*commit)(struct store *s);
    void (*rollback)(struct store *s);
    int (*load)(struct store *s, const char *id, struct task **out);
    int (*insert)(struct store *s, const struct task *t);
    int (*update)(struct store *s, const struct task *t);
    int (*remove)(struct store *s, const char *id);
    int (*find_idempotent)(struct store *s, const char *ns, const char *key,
                           char id[ID_LEN + 1]);
    int (*next_claimable)(struct store *s, const struct store_claim_query *q,
                          char id[ID_LEN + 1]);
    /* Ids of tasks whose due time is <= now, at most max. */
    int (*due)(struct store *s, int64_t now, char (*ids)[ID_LEN + 1], size_t max, size_t *n);
    /* The earliest due time, or 0 when none. */
    int (*next_due)(struct store *s, int64_t *at);

    /* Any thread. */
    int (*get)(struct store *s, const char *ns, const char *id, struct task **out);
    int (*list)(struct store *s, const struct task_filter *f, struct task_list *out);
    int (*queue_counts)(struct store *s, const char *ns, struct queue_counts **out, size_t *n);
    int (*ping)(struct store *s);
};

/* struct store begins with this; the backend keeps its state in impl. */
struct store_base {
    const struct store_backend *backend;
    void *impl;
};

static inline struct store_base *store_base_of(struct store *s)
{
    return (struct store_base *)s;
}

extern const struct store_backend store_sqlite_backend;

#endif
