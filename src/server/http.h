/*
 * http: the HTTP glue between libmicrohttpd and taskmill's handlers.
 *
 * One struct req per request, created on the first call of the access
 * handler and freed when libmicrohttpd reports the request complete. The
 * body is read whole (capped at limits.body_max_bytes) before the handler
 * runs. A handler either replies at once or starts a store op with
 * req_submit, which suspends the connection; when the op is done the
 * writer thread resumes it and the handler's `on_resume` replies. Nothing
 * blocks a libmicrohttpd thread while waiting on the disk or on a
 * long-poll.
 *
 * Every error reply goes through reply_error, with the DESIGN.md shape:
 * {"error":{"code":"...","message":"...","field":"..."}}.
 */
#ifndef TASKMILL_HTTP_H
#define TASKMILL_HTTP_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "../common/buf.h"
#include "../common/err.h"
#include "../store/store.h"

struct server;
struct req;

typedef void (*handler_fn)(struct req *r);

struct route {
    const char *method;  /* "GET", "POST", ... */
    const char *pattern; /* "/v1/tasks/:id/cancel": ':' segments are captured */
    handler_fn handler;
};

#define REQ_MAX_PARAMS 4

struct limits {
    size_t body_max_bytes;
    int json_max_depth;
    int batch_max;
    int page_max;
    int wait_max_seconds;
    size_t string_max_bytes;
    int items_max_per_call;
    int messages_max_per_call;
};

struct req {
    struct server *srv;
    void *conn; /* struct MHD_Connection */
    const char *method;
    const char *path;
    struct buf body;
    bool body_too_large;
    bool suspended;
    const char *ns; /* namespace scope; NULL = every namespace */
    const char *param[REQ_MAX_PARAMS];
    char param_buf[REQ_MAX_PARAMS][128];
    int nparams;

    handler_fn on_resume;
    struct store_op op;
    json_t *json;    /* the parsed body; ops borrow from it */
    int64_t t_start_mono;
    int status_sent;
    char *hdr_name[4], *hdr_value[4];
    int nhdr;
};

struct store *req_store(struct req *r);
const struct limits *req_limits(struct req *r);
/* A query-string value, or NULL. */
const char *req_query(struct req *r, const char *key);
const char *req_header(struct req *r, const char *key);
/* Calls fn for each query argument; stops early when fn returns nonzero. */
int req_query_each(struct req *r, int (*fn)(void *cls, const char *key, const char *value),
                   void *cls);

/*
 * Parses the body as a JSON object into r->json (an empty body is {} when
 * `empty_ok`). Replies with the error and returns -1 on failure.
 */
int req_json_body(struct req *r, bool empty_ok);

/* Suspends the request and hands r->op to the store; on_resume runs when it is done. */
void req_submit(struct req *r, handler_fn on_resume);

/* Replies. Each takes the body. Exactly one reply per request. */
void reply_json(struct req *r, int status, struct buf *body);
void reply_body(struct req *r, int status, struct buf *body, const char *content_type);
void reply_empty(struct req *r, int status);
void reply_error(struct req *r, const struct tm_error *e);
void reply_error_code(struct req *r, int code, const char *field, const char *message);
/* Replies with the task's v1 JSON. */
void reply_task(struct req *r, int status, const struct task *t);
/* Adds a header to the reply about to be sent (call before reply_*). */
void reply_add_header(struct req *r, const char *name, const char *value);

struct server_config {
    const char *listen;   /* host:port */
    const char *store_url;
    int threads;
    bool relaxed;
    struct limits limits;
};

/* Starts serving; prints the listening line. Returns 0 or -1. */
int server_start(const struct server_config *cfg, struct server **out);
/* Stops accepting, answers parked requests, stops the store, frees. */
void server_stop(struct server *srv);

/* The route tables, one per resource file. */
extern const struct route v1_tasks_routes[];
extern const struct route v1_work_routes[];
extern const struct route v1_queues_routes[];
extern const struct route health_routes[];

#endif
