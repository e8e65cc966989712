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
    int (*find_idempotent)(struct store *s, const char *ns, const char *key, char id[ID_LEN + 1]);
    int (*next_claimable)(struct store *s, const struct store_claim_query *q, char id[ID_LEN + 1]);
    /* Ids of tasks whose due time is <= now, at most max. */
    int (*due)(struct store *s, int64_t now, char (*ids)[ID_LEN + 1], size_t max, size_t *n);
    /* The earliest due time, or 0 when none. */
    int (*next_due)(struct store *s, int64_t *at);
    /* A queue's settings; TM_ENOT_FOUND when it has none. */
    int (*queue_get)(struct store *s, const char *queue, struct queue_settings *out);
    int (*queue_put)(struct store *s, const char *queue, const struct queue_settings *q);

    /* Any thread. */
    int (*get)(struct store *s, const char *ns, const char *id, struct task **out);
    int (*list)(struct store *s, const struct task_filter *f, struct task_list *out);
    int (*queue_counts)(struct store *s, const char *ns, struct queue_counts **out, size_t *n);
    int (*ping)(struct store *s);

    /* The event log and webhooks (store_events.c). Writer thread: */
    /* Appends ev (sets ev->seq) and queues the webhook deliveries it calls for. */
    int (*event_append)(struct store *s, struct store_event *ev, size_t *deliveries);
    /* Removes at most max_rows events older than before_at or below the newest
     * keep_count, never one a pending delivery still needs. */
    int (*events_prune)(struct store *s, int64_t before_at, int64_t keep_count, int max_rows,
                        int64_t *pruned, int64_t *through);
    int (*webhook_insert)(struct store *s, const struct webhook *w);
    /* How many webhooks have exactly this namespace (NULL: those without one). */
    int (*webhook_count)(struct store *s, const char *ns, int64_t *n);
    int (*webhook_delete)(struct store *s, const char *ns, const char *id);
    int (*delivery_update)(struct store *s, const struct webhook_delivery *d);
    /* Any thread: */
    int (*events_read)(struct store *s, const char *ns, const char *task_id, int64_t after,
                       int limit, size_t max_bytes, struct event_page *out);
    int (*events_head)(struct store *s, int64_t *head, int64_t *pruned_through);
    int (*webhooks_list)(struct store *s, const char *ns, const char *id, struct webhook **out,
                         size_t *n);
    /* due_only: pending with next_at <= now, joined with url, secret, event,
     * leaving out the webhooks whose ids `skip_json` (a JSON array or NULL) lists. */
    int (*deliveries_list)(struct store *s, const char *webhook_id, bool due_only, int64_t now,
                           const char *skip_json, int limit, struct webhook_delivery **out,
                           size_t *n);
    int (*deliveries_next_at)(struct store *s, int64_t *at);

    /* API tokens (store_tokens.c). Writer thread: */
    int (*token_insert)(struct store *s, const struct token *t);
    /* Sets revoked_at unless already set; TM_ENOT_FOUND when no such token. */
    int (*token_revoke)(struct store *s, const char *id, int64_t now);
    /* Any thread: */
    int (*token_get)(struct store *s, const char *id, struct token **out);
    int (*token_list)(struct store *s, struct token ***out, size_t *n);
    int (*token_any_active)(struct store *s, int64_t now, bool *any);
};

/* The options the store was opened with, defaults filled in (store.c). */
const struct store_options *store_options_of(const struct store *s);

/* store_events.c: helpers of the writer (store.c). */
/* Fills ev from the task after a change; ev owns copies. The task JSON is
 * reduced past task_max_bytes (task_json_write_capped). */
void store_event_fill(struct store_event *ev, const struct task *t, const char *kind,
                      const char *cause, int64_t now, size_t task_max_bytes);
/* The kind of the change an op made to t, whose phase was `before` (-1: new). */
const char *store_event_kind(const struct store_op *op, int before, const struct task *t,
                             char buf[24]);
/* What caused the change: the op's verb, or the sweep's reason. */
const char *store_event_cause(const struct store_op *op, int before);
/* Applies a webhook op on the writer; 0, a client error in op->err, or a backend error. */
int store_webhook_apply(struct store *s, struct store_op *op, int64_t now);

/* store_tokens.c: applies a token op on the writer; 0, a client error in
 * op->err, or a backend error. */
int store_token_apply(struct store *s, struct store_op *op, int64_t now);

/* struct store begins with this; the backend keeps its state in impl. */
struct store_base {
    const struct store_backend *backend;
    void *impl;
};

static inline struct store_base *store_base_of(struct store *s) {
    return (struct store_base *)s;
}

extern const struct store_backend store_sqlite_backend;

#endif
