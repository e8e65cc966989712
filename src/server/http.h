/*
 * http: the HTTP glue between the handlers and the two ways a request
 * comes in: libmicrohttpd, and on plain HTTP the fast path of http_fast.c
 * for the hot v1 requests. The handlers see one struct req either way.
 *
 * One struct req per request, created on the first call of the access
 * handler (or by the fast path once the request is all there) and freed
 * when libmicrohttpd reports the request complete (or the fast path has
 * sent the reply). The
 * body is read whole (capped at limits.body_max_bytes) before the handler
 * runs. A handler either replies at once or starts a store op with
 * req_submit, which suspends the connection; when the op is done the
 * writer thread resumes it and the handler's `on_resume` replies. Nothing
 * blocks an HTTP thread while waiting on the disk or on a long-poll.
 *
 * Every error reply goes through reply_error, with the DESIGN.md shape:
 * {"error":{"code":"...","message":"...","field":"..."}}.
 */
#ifndef TASKMILL_HTTP_H
#define TASKMILL_HTTP_H

#include <jansson.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/queue.h>

#include "../common/buf.h"
#include "../common/err.h"
#include "../common/token.h"
#include "../store/store.h"
#include "server.h"

struct server;
struct req;
struct sockaddr;

typedef void (*handler_fn)(struct req *r);

/*
 * An API's own error body. A compatibility view whose errors have another
 * shape than v1's hands its routes to the server as a route_table
 * {my_routes, my_write_error, my_error_type} (server_config.views, which
 * the `serve` command assembles: server/ knows no view). The writer is picked when the request
 * arrives, from the table whose route matches the path, or else whose
 * routes share the path's first segment ("/beta/..." for "/beta/x/y"), so
 * every error on those paths -- the router's 404 and 405, body too large,
 * auth's 401/403/429 and each handler's reply_error -- is written by it.
 * Handlers keep calling reply_error; `status` is the HTTP status that
 * reply_error sends (err_http_status(e->code)). NULL: v1's shape.
 */
typedef void (*error_writer_fn)(struct buf *b, int status, const struct tm_error *e);

struct route_table {
    const struct route *routes;
    error_writer_fn write_error; /* NULL: error_json_write */
    const char *error_type;      /* its Content-Type; NULL: application/json */
};

struct route {
    const char *method;  /* "GET", "POST", ... */
    const char *pattern; /* "/v1/tasks/:id/cancel": ':' segments are captured */
    handler_fn handler;
    unsigned perm; /* PERM_* bits of the roles allowed; 0 = admin only */
    /*
     * For a handler that serves several routes, what this one asks of it
     * (the handler reads r->route): `arg`, an op kind or a flag; `data`, the
     * resource it serves (a definition or schedule's struct v1_doc_type).
     * An entry that needs neither leaves them out (0, NULL).
     */
    int arg;
    const void *data;
};

/*
 * Who may call a route (docs/security.md has the table). A route's perm is
 * checked in one place, before its handler runs (auth.c); a table entry
 * written without one gets 0, which admits admin tokens only.
 */
#define PERM_ADMIN  TOKEN_ROLE_BIT(TOKEN_ADMIN)
#define PERM_CLIENT TOKEN_ROLE_BIT(TOKEN_CLIENT)
#define PERM_WORKER TOKEN_ROLE_BIT(TOKEN_WORKER)
#define PERM_READER TOKEN_ROLE_BIT(TOKEN_READER)
#define PERM_PUBLIC (1u << 15) /* no token needed (health checks) */
#define PERM_READ   (PERM_ADMIN | PERM_CLIENT | PERM_READER)
#define PERM_OWNER  (PERM_ADMIN | PERM_CLIENT)
#define PERM_WORK   (PERM_ADMIN | PERM_WORKER)

#define REQ_MAX_PARAMS 4

/*
 * Checks a token id and secret (64 hex) against the store, as auth_check
 * does for a bearer header, for routes that are PERM_PUBLIC and carry
 * their credentials elsewhere (the Scene7 SOAP authHeader, HTTP Basic).
 * id NULL means none were given: allowed only while the server is open.
 * On success sets r->role, r->token_id and r->ns and returns 0; otherwise
 * logs the refusal and returns TM_EUNAUTHENTICATED, TM_EFORBIDDEN,
 * TM_ERATE or TM_EUNAVAILABLE with e filled, and replies nothing.
 */
struct tm_error;
int auth_check_credentials(struct req *r, const char *id, const char *secret, unsigned perm,
                           struct tm_error *e);
/*
 * auth_check_credentials, also handing the caller the token it read and
 * judged in *out (the caller frees it; NULL when none was read or on
 * refusal): a view that needs more of the token than r holds (SailPoint's
 * tenant_id, an admin token's home namespace) uses that one read, so a
 * token revoked meanwhile cannot be let in by the first read and missed by
 * a second.
 */
struct token;
int auth_check_credentials_token(struct req *r, const char *id, const char *secret, unsigned perm,
                                 struct token **out, struct tm_error *e);

struct fast_conn;

struct req {
    struct server *srv;
    void *conn;             /* struct MHD_Connection, or NULL on the fast path */
    struct fast_conn *fast; /* the fast path's connection (http_fast.c), or NULL */
    const char *method;
    const char *path;
    struct buf body;
    bool body_too_large;
    bool suspended;
    const char *ns; /* namespace scope; NULL = every namespace */
    const char *param[REQ_MAX_PARAMS];
    char param_buf[REQ_MAX_PARAMS][128];
    int nparams;
    const struct route *route; /* the route matched, set before its handler runs */
    /* The first route whose pattern matches the path, whatever its method,
     * and its table's index (NULL: none matches). */
    const struct route *first_route;
    size_t first_table;

    handler_fn on_resume;
    struct store_op op;
    _Atomic size_t ops_left; /* req_submit_many: ops not done yet */
    json_t *json;            /* the parsed body; ops borrow from it */
    int64_t t_start_mono;
    int status_sent;
    char *hdr_name[4], *hdr_value[4];
    int nhdr;

    /* Who is asking, set by auth_check before the handler runs. */
    enum token_role role;            /* TOKEN_ADMIN when authentication is off */
    char token_id[TOKEN_ID_LEN + 1]; /* "" when authentication is off */
    char *ns_owned;                  /* the token's namespace; r->ns points here */
    struct req_str *trimmed;         /* req_header's copies of values without trailing space */
    /* An absolute-form target's authority ("GET http://a:1/p": "a:1"),
     * which req_header gives as Host (RFC 9112 7.2); NULL for origin-form. */
    const char *authority;
    bool waiter_counted;       /* counted against limits.waiters_max */
    bool waiter_token_counted; /* and against limits.waiters_per_token_max */
    bool rate_paid;            /* auth: its token's rate bucket gave one already */
    bool authed;               /* auth_check passed before the body was read (http_access) */
    int64_t authed_mono;       /* when: a body that took longer is checked again */
    /* A route whose body holds its credentials (PERM_PUBLIC): its body's
     * bytes held, counted in srv->public_body_bytes (http_access). */
    bool public_body;
    bool public_busy; /* refused: --max-public-body-bytes was held by others */
    bool body_in;     /* libmicrohttpd's path: its body all in (head_watch_body_in told) */
    size_t public_held;
    /* A view's read that comes by POST (Scene7's get* operations): its
     * reply is refused, not held, past --max-unsent-bytes, as a GET's. */
    bool reply_is_read;
    size_t unsent_held; /* bytes of its 2xx reply counted until sent (http.c) */
    /* auth_watch.c: listed while it waits with a token. */
    struct store_op *wait_ops;
    size_t nwait_ops;
    LIST_ENTRY(req) wait_link;
    bool wait_listed;
    error_writer_fn write_error; /* the path's API error shape; NULL = v1 */
    const char *error_type;      /* its Content-Type; NULL = application/json */
    /* A handler's own allocation, freed with the request (owned_free(owned)). */
    void *owned;
    void (*owned_free)(void *p);
};

struct store *req_store(struct req *r);
const struct limits *req_limits(struct req *r);
/* A query-string value, or NULL. */
const char *req_query(struct req *r, const char *key);
const char *req_header(struct req *r, const char *key);
/* The client's address, or NULL when it is not known. */
const struct sockaddr *req_client_addr(struct req *r);
/* The request's socket, or -1: for a look at whether the client is still
 * there (auth_watch), while the request is alive. */
int req_socket(struct req *r);
/* "https" when the server speaks TLS, else "http" (for absolute links). */
const char *req_scheme(struct req *r);
/* Calls fn for each query argument; stops early when fn returns nonzero. */
int req_query_each(struct req *r, int (*fn)(void *cls, const char *key, const char *value),
                   void *cls);

/*
 * Parses the body as a JSON object into r->json (an empty body is {} when
 * `empty_ok`). Replies with the error and returns -1 on failure.
 */
int req_json_body(struct req *r, bool empty_ok);
/* req_json_body, then 400 'unknown field' (naming it) for a key not in
 * `fields` (NULL-ended; NULL: no field at all). */
int req_json_fields(struct req *r, bool empty_ok, const char *const *fields);

/* Suspends the request and hands r->op to the store; on_resume runs when it is done. */
void req_submit(struct req *r, handler_fn on_resume);
/* Suspends the request and hands ops[0..n) (the caller's, kept alive
 * until on_resume) to the store at once, except those with err.code set
 * already (at least one must be without); on_resume runs when every one
 * sent is done. Their writes share the store's group commits. */
void req_submit_many(struct req *r, struct store_op *ops, size_t n, handler_fn on_resume);

/* Whether a Content-Type is one of `types` (NULL-ended, "type/subtype"),
 * case aside, with no parameter but a UTF-8 charset (the body is JSON or
 * XML read as UTF-8 whatever it says). */
bool http_content_type_is(const char *ct, const char *const *types);
/* As http_content_type_is, with the charsets `charsets` (NULL-ended, case
 * aside, quoted or not) taken rather than UTF-8 alone; *charset is the
 * index of the one named (the first other than charsets[0] when several
 * are), or -1 when none is. */
bool http_content_type_is_in(const char *ct, const char *const *types, const char *const *charsets,
                             int *charset);

/* Replies. Each takes the body. Exactly one reply per request. */
void reply_json(struct req *r, int status, struct buf *body);
void reply_body(struct req *r, int status, struct buf *body, const char *content_type);
void reply_empty(struct req *r, int status);
void reply_error(struct req *r, const struct tm_error *e);
void reply_error_code(struct req *r, int code, const char *field, const char *message);
/*
 * The store op's answer, for an on_resume: when r->op failed, replies with
 * its error (reply_error) and returns true; false leaves the reply to the
 * caller, which has a result in r->op. reply_op_empty and reply_op_task
 * are whole on_resumes: the error, or else 204, or else 200 with r->op.task.
 */
bool reply_if_op_failed(struct req *r);
void reply_op_empty(struct req *r);
void reply_op_task(struct req *r);
/* Writes v1's error JSON (reply_error's unless the route table has a writer;
 * also for an SSE error event). */
void error_json_write(struct buf *b, const struct tm_error *e);
/* Replies with the task's v1 JSON. */
void reply_task(struct req *r, int status, const struct task *t);
/*
 * Writes a page of a task list for a list reply, as a JSON array: l's
 * tasks, each with `write` (the task's JSON in the caller's API), ending the
 * page early once b holds max_bytes (one task at least), so a reply is
 * bounded in bytes as well as in rows. Returns how many it wrote; *more says
 * whether a page follows (the store has more, or the page ended early).
 */
size_t task_page_write(struct buf *b, const struct task_list *l, size_t max_bytes,
                       void (*write)(struct buf *b, const struct task *t), bool *more);
/* Adds X-Total-Count: l->total, and X-Total-Count-Capped: true when the
 * count stopped at its bound (a list the caller asked to count). */
void reply_add_total(struct req *r, const struct task_list *l);
/* Adds a header to the reply about to be sent (call before reply_*). */
void reply_add_header(struct req *r, const char *name, const char *value);
/* Adds "Location: /v1/{collection}/{id}", for a reply to what created it. */
void reply_add_location(struct req *r, const char *collection, const char *id);

/* The route tables, one per resource file. */
extern const struct route v1_tasks_routes[];
extern const struct route v1_work_routes[];
extern const struct route v1_queues_routes[];
extern const struct route health_routes[];
extern const struct route v1_tokens_routes[];
extern const struct route v1_events_routes[];
extern const struct route v1_webhooks_routes[];
extern const struct route v1_definitions_routes[]; /* v1_definitions.c */
extern const struct route v1_schedules_routes[];   /* v1_schedules.c */
extern const struct route web_routes[];            /* the dashboard at / and /ui/ (web.c) */

#endif
