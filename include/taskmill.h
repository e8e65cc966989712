/*
 * taskmill.h: libtaskmill, the C client of a taskmill server's v1 API.
 *
 * Programs submit, read, list, watch and control tasks, and workers claim
 * tasks, report progress and finish them. The `taskmill` CLI and its
 * command worker are built on this library; these comments are its
 * reference (docs/api.md describes the HTTP API underneath).
 *
 * Threading: a struct tm_client is used by one thread at a time; use one
 * client per thread. Different clients are independent.
 * Ownership: arguments are borrowed. A json_t ** result belongs to the
 * caller, who releases it with json_decref. Tasks come back as the v1 JSON
 * task object (DESIGN.md section 1): "id", "phase", "progress", ...
 * Errors: every call returns 0 (or a count) on success and a negative
 * TM_CLIENT_E... code on failure; tm_client_last_error then gives the HTTP
 * status and the server's error code, message and field. An argument that
 * cannot be sent as given (a string that is not UTF-8, a ratio that is not
 * a number, an empty id) is refused before anything is sent, with
 * TM_CLIENT_EINVALID and the field named, never dropped from the request.
 * Out of memory aborts the process with a message.
 * Build: `pkg-config --cflags --libs taskmill` (needs jansson and libcurl).
 */
#ifndef TASKMILL_H
#define TASKMILL_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define TM_API __attribute__((visibility("default")))
#else
#define TM_API
#endif

/* The negative codes calls return. tm_strerror names them. */
enum tm_client_code {
    TM_CLIENT_OK = 0,
    TM_CLIENT_EINVALID = -1,  /* 400, or a bad argument to a libtaskmill call (nothing sent) */
    TM_CLIENT_EAUTH = -2,     /* 401 or 403: missing, bad or too weak a token */
    TM_CLIENT_ENOTFOUND = -3, /* 404: no such task (or queue) */
    TM_CLIENT_ECONFLICT = -4, /* 409 conflict: the task cannot make that move now */
    TM_CLIENT_ELEASE = -5,    /* 409 lease_mismatch: the lease is no longer this worker's */
    TM_CLIENT_ETOOLARGE = -6, /* 413 or 431: the request's body, or its line and headers (a
                                 very long id or query value), larger than the server accepts */
    TM_CLIENT_ESERVER = -7,   /* 5xx or another unexpected status */
    TM_CLIENT_ECONNECT = -8,  /* no complete HTTP reply: refused, reset, timed out, bad URL,
                                 or cut off after its status (http_status then says which) */
    TM_CLIENT_EPROTOCOL = -9, /* a reply that is not what the v1 API promises */
    TM_CLIENT_EABORTED = -10, /* the client's abort hook abandoned the call (tm_client_set_abort) */
    TM_CLIENT_ERATE = -11,    /* 429: too many requests (the token's --max-rate, or too many of its
                                 requests waiting); try again after the error's retry_after_ms */
};

/* The longest lease token a claim returns, with its NUL. */
#define TM_LEASE_TOKEN_MAX 65
/* A task id is 32 lowercase hex digits; with its NUL. */
#define TM_ID_MAX 33

/* What the last failed call of a client said. */
struct tm_client_error {
    int code;          /* TM_CLIENT_E..., or TM_CLIENT_OK after a success */
    long http_status;  /* the reply's status, or 0 when no reply began */
    char slug[48];     /* the server's "error.code", e.g. "invalid_argument", or "" */
    char field[64];    /* the request field at fault, or the argument a call refused; or "" */
    char message[512]; /* the server's message, or the transport's; lower case */
    /* The reply's Retry-After (seconds, or an HTTP-date counted from now) in milliseconds, on
     * a 429 or a 503; 0 when it had none, or a date now past. At most a day. Added last, so
     * that a program built against an older header reads the fields before it unchanged. */
    int64_t retry_after_ms;
};

struct tm_client;

/*
 * Makes a client for the server at `url` (e.g. "http://127.0.0.1:8080"),
 * sending `token` as a bearer token unless it is NULL or empty. Copies
 * both strings. No connection is made until the first call. Returns NULL
 * only when url is NULL or empty.
 */
TM_API struct tm_client *tm_client_new(const char *url, const char *token);
/* Closes connections and frees the client; NULL is allowed. */
TM_API void tm_client_free(struct tm_client *c);
/* The server URL the client was made with (no trailing slash). */
TM_API const char *tm_client_url(const struct tm_client *c);
/* The error of the client's last call (code 0 when it succeeded). Valid until the next call. */
TM_API const struct tm_client_error *tm_client_last_error(const struct tm_client *c);
/* A short lower-case description of a TM_CLIENT_E... code ("not found"). Static string. */
TM_API const char *tm_strerror(int code);
/* Whether `phase` is completed, failed or cancelled: a task that will not change on its own. */
TM_API bool tm_phase_is_terminal(const char *phase);

/*
 * An abort hook: whether to abandon the request in progress. libtaskmill
 * calls it from the thread making the call, with the `arg` given to
 * tm_client_set_abort: once before each request is sent, then while it
 * waits for the reply, at least once a second (more often while data
 * moves). It must not call into the same client.
 */
typedef bool (*tm_abort_fn)(void *arg);
/*
 * Keeps fn and arg as c's abort hook (fn NULL removes it): arg must stay
 * valid while the hook is set. While the hook returns true, every call on
 * c returns TM_CLIENT_EABORTED within about a second, whatever the server
 * does: a request not sent yet is not sent, one in flight is abandoned and
 * its connection closed. For a program that must stop promptly: a worker
 * told to stop abandons its claim's long-poll instead of waiting out the
 * request's timeout (60 s, or 60 s plus a long-poll's wait). A request
 * abandoned after it was sent may still take effect on the server (an
 * abandoned claim may lease a task, which comes back when its lease
 * expires). Covers the calls made on c, not a tm_watch's streams
 * (tm_watch_next returns within its timeout).
 */
TM_API void tm_client_set_abort(struct tm_client *c, tm_abort_fn fn, void *arg);

/*
 * Sets how long each following request on c may take in all, connecting
 * included, in milliseconds, in place of the defaults (60 s; a long-poll,
 * tm_get_wait or a claim, 60 s plus its wait; tm_client_request, which may
 * long-poll, 90 s); 0 or less restores them. A request that takes
 * longer fails with TM_CLIENT_ECONNECT and its connection is closed; it
 * may still have taken effect on the server. For a call that is of no use
 * late: `taskmill work` bounds each heartbeat by its lease, so a heartbeat
 * the server does not answer is given up and sent again while the lease
 * holds, not after a minute. A long-poll's wait must fit in it. Covers the
 * calls made on c, not a tm_watch's streams.
 */
TM_API void tm_client_set_timeout(struct tm_client *c, long timeout_ms);

/*
 * Sets the largest reply body a call on c accepts, in bytes, in place of
 * the default (64 MiB; a page of tasks is at most 8 MiB); 0 restores it.
 * A longer reply is abandoned as it arrives, its connection closed, and
 * the call fails with TM_CLIENT_EPROTOCOL (the request may still have
 * taken effect), so whatever answers at the URL cannot make the program
 * spend memory without bound. Covers the calls made on c and a tm_watch's
 * reads of its tasks (an event of a stream is capped at 16 MiB).
 */
TM_API void tm_client_set_reply_max(struct tm_client *c, size_t max_bytes);

/*
 * Sends any v1 request: `method` (upper-case letters: "GET") to `path`
 * (starting with "/", query included) with `body` (JSON, may be NULL). On
 * 2xx returns 0 and sets *out to the parsed reply, or NULL for an empty
 * one (out may be NULL to drop it). The typed calls below are built on
 * this one.
 */
TM_API int tm_client_request(struct tm_client *c, const char *method, const char *path,
                             const json_t *body, json_t **out);

/* ---- Tasks ---- */

/*
 * Submits one task: `task` is the v1 task object ({"type": ..., "params":
 * {...}, ...}; "type" is required). With `idempotency_key` (UTF-8; NULL or
 * "" for none) a repeat of the same key returns the first task instead of
 * a new one.
 * Sets *out to the stored task (out may be NULL).
 */
TM_API int tm_submit(struct tm_client *c, const json_t *task, const char *idempotency_key,
                     json_t **out);
/* Submits an array of task objects in one request, all or none; *out is the array of tasks. */
TM_API int tm_submit_batch(struct tm_client *c, const json_t *tasks, json_t **out);
/* Reads a task. TM_CLIENT_ENOTFOUND when no task has that id. */
TM_API int tm_get(struct tm_client *c, const char *id, json_t **out);
/*
 * Reads a task once its version is greater than `version`, waiting up to
 * `wait_seconds` (the server refuses more than its cap, 60 s by default,
 * with TM_CLIENT_EINVALID naming "wait"); with wait_seconds 0 or less, or
 * version below 0, it reads at once. After the wait the task comes back
 * unchanged, so compare its "version".
 */
TM_API int tm_get_wait(struct tm_client *c, const char *id, int64_t version, int wait_seconds,
                       json_t **out);

/* Filters for tm_list; NULL, "" or 0 leaves one out. Times are RFC 3339. */
struct tm_list_query {
    const char *phase; /* comma-separated phases: "running,stopping" */
    const char *type;
    const char *queue;
    const char *parent_id;
    const char *name_prefix;
    const char *created_after, *created_before;
    const char *updated_after, *updated_before;
    const char *cursor;    /* "next_cursor" of the previous page */
    const char *order;     /* "asc" or "desc" (the default: newest first) */
    int limit;             /* page size (1..1000); 0 for the server's default (50) */
    const char *id_prefix; /* ids that start with these lowercase hex digits */
};

/* Lists one page of tasks: *out is {"tasks": [...], "next_cursor": "..." or null}. q may be NULL.
 */
TM_API int tm_list(struct tm_client *c, const struct tm_list_query *q, json_t **out);
/*
 * The owner's controls. Cancel stops a pending task at once and asks a
 * running one to stop (phase "stopping" until its worker acknowledges);
 * retry puts a failed or cancelled task back to pending; pause keeps a
 * task from being claimed; resume undoes pause. Each sets *out to the task
 * (out may be NULL); TM_CLIENT_ECONFLICT when the phase does not allow it.
 */
TM_API int tm_cancel(struct tm_client *c, const char *id, json_t **out);
TM_API int tm_retry(struct tm_client *c, const char *id, json_t **out);
TM_API int tm_pause(struct tm_client *c, const char *id, json_t **out);
TM_API int tm_resume(struct tm_client *c, const char *id, json_t **out);
/* Removes a finished task for good. */
TM_API int tm_delete(struct tm_client *c, const char *id);

/* ---- Queues ---- */

/* Every queue with its settings, state and counts: *out is {"queues": [...]}
 * (out may be NULL). */
TM_API int tm_queues(struct tm_client *c, json_t **out);
/* Pauses (paused true) or resumes a whole queue: a paused queue hands out
 * no task. Sets *out to the queue (out may be NULL). Admin tokens only. */
TM_API int tm_queue_pause(struct tm_client *c, const char *queue, bool paused, json_t **out);

/* ---- Watching ---- */

struct tm_watch;

/* How a watch follows its tasks. */
enum tm_watch_mode {
    TM_WATCH_AUTO = 0, /* SSE, and the long-poll for a task whose event stream cannot be opened */
    TM_WATCH_SSE = 1,  /* SSE only: a stream that cannot be opened is that task's error */
    TM_WATCH_POLL = 2, /* the long-poll only, GET /v1/tasks/{id}?wait=&version= */
};

/*
 * Makes a watch that follows tasks' changes on the client's server. Keeps
 * a pointer to `c`, which must outlive the watch; errors land in c's last
 * error. The watch makes its own connections, so c stays usable.
 *
 * Each task is followed through its event stream, GET /v1/tasks/{id}/events
 * (docs/events.md): the snapshot first, then each change as it commits. A
 * stream that ends is resumed with Last-Event-ID, so nothing is missed or
 * given twice; after an `events_pruned` error the task is read again. When
 * the server has no event stream (404/405) or refuses it, the task is
 * long-polled instead. While the server is away (no answer, 5xx, 429) a
 * stream is reopened, or a long-poll sent again, with backoff (at most 5 s
 * apart, never sooner than a Retry-After, 8 times) before the task fails;
 * tm_watch_lost_ms says so meanwhile. The mode starts from the
 * environment variable TASKMILL_WATCH_MODE ("auto", "sse" or "poll"; auto
 * when unset or unknown).
 */
TM_API struct tm_watch *tm_watch_new(struct tm_client *c);
TM_API void tm_watch_free(struct tm_watch *w);
/* Sets how tasks added from now on are followed (overrides TASKMILL_WATCH_MODE). */
TM_API int tm_watch_set_mode(struct tm_watch *w, enum tm_watch_mode mode);
/* Starts following task `id`; its current state is the first thing tm_watch_next gives. */
TM_API int tm_watch_add(struct tm_watch *w, const char *id);
/* How many tasks are still followed (not yet ended or failed) or have states left to hand out. */
TM_API size_t tm_watch_active(const struct tm_watch *w);
/*
 * Waits up to `timeout_ms` for a followed task to change. Returns 1 and
 * sets *task to the task's new state (the caller owns it), 0 when the time
 * ran out, nothing is followed any more or tm_watch_wake was called (a
 * signal alone does not end the wait), or a negative code when
 * following one task failed (c's last error names it; that task is
 * dropped, the others go on). A task is dropped after its terminal state
 * has been given. States come in version order, never twice. Over SSE
 * every change comes; the long-poll (and a re-read after pruned events)
 * may skip versions of a fast task, but the latest state always comes.
 */
TM_API int tm_watch_next(struct tm_watch *w, int timeout_ms, json_t **task);
/*
 * Makes tm_watch_next return 0 at once: the call waiting now, or when none
 * is, the next one (after handing out a state it already holds, if any).
 * Wakes that come before tm_watch_next looks count as one. For a program
 * that stops on a signal: its handler sets the program's flag and calls
 * this, and the loop checks the flag whenever tm_watch_next returns, so
 * Ctrl-C is seen at once rather than at the end of the wait.
 * Async-signal-safe (it writes a byte to a pipe of this watch's own and
 * leaves errno as it was), and the one call on a watch that another thread
 * may make while tm_watch_next runs; w must not be freed meanwhile. NULL
 * is allowed. Each watch has its own pipe: waking one wakes no other.
 */
TM_API void tm_watch_wake(struct tm_watch *w);
/* The id of the task tm_watch_next last reported (a change or an error), or NULL. */
TM_API const char *tm_watch_last_id(const struct tm_watch *w);
/*
 * How long, in milliseconds, the server has not answered for task `id`
 * (its stream was cut and reconnecting fails, or its long-poll finds no
 * server, a 5xx or a 429), or 0 while it answers or the task is not
 * followed. For showing "reconnecting" instead of a frozen state; it says
 * nothing about the task itself.
 */
TM_API int64_t tm_watch_lost_ms(const struct tm_watch *w, const char *id);

/* ---- Workers ---- */

struct tm_claim_options {
    const char *worker;       /* the worker's name, shown in the task's lease; required */
    const char *const *types; /* claim only these types (UTF-8 strings); NULL for any */
    size_t ntypes;
    int lease_seconds; /* 1..86400; 0 for the server's default (60) */
    int wait_seconds;  /* long-poll this long for a task (up to the server's cap, 60 s by
                          default); 0 to return at once */
};
/* A value out of range in these options (or tm_list's limit, tm_heartbeat's lease_seconds)
 * goes to the server, whose 400 names it: TM_CLIENT_EINVALID, nothing claimed or changed. */

/*
 * Claims the next task of `queue`. Returns 0 and sets *task (the caller
 * owns it) and `token`, the lease token every later call on the task
 * carries; when no task came within the wait, returns 0 with *task NULL.
 * task and token must not be NULL (TM_CLIENT_EINVALID, nothing claimed).
 */
TM_API int tm_claim(struct tm_client *c, const char *queue, const struct tm_claim_options *o,
                    json_t **task, char token[TM_LEASE_TOKEN_MAX]);

/* What a worker reports about its task; unset parts are left as they are. */
struct tm_report {
    bool has_ratio;
    double ratio;        /* 0..1; NaN or infinity is refused */
    const char *message; /* the progress message (UTF-8), or NULL */
    bool has_counts;
    int64_t processed, processing, pending; /* item counts; the ratio follows them */
    const json_t *items;      /* [{"name","progress","message"}], merged by name, or NULL */
    const json_t *messages;   /* [{"level":"INFO|WARN|ERROR","text",...}], appended, or NULL */
    const json_t *attributes; /* {"key": value}, merged into the task's, or NULL */
};

struct tm_heartbeat_reply {
    bool cancel_requested; /* the owner cancelled: stop and call tm_fail or tm_release */
    bool pause_requested;
    int64_t version;
    char lease_expires_at[40];
};

/*
 * Extends the lease (to `lease_seconds`, or the claim's when 0) and
 * records the report (r may be NULL). `reply` (may be NULL) says whether
 * a cancel was asked. TM_CLIENT_ELEASE when the lease was lost: stop work.
 */
TM_API int tm_heartbeat(struct tm_client *c, const char *id, const char *token, int lease_seconds,
                        const struct tm_report *r, struct tm_heartbeat_reply *reply);
/* Completes the task with `result` (any JSON, may be NULL) and a last report (may be NULL). */
TM_API int tm_complete(struct tm_client *c, const char *id, const char *token, const json_t *result,
                       const struct tm_report *r, json_t **out);
/*
 * Fails this attempt with `error` (required, UTF-8). A retryable failure runs
 * again after a backoff while retries last; a task whose cancel was asked
 * ends cancelled instead.
 */
TM_API int tm_fail(struct tm_client *c, const char *id, const char *token, const char *error,
                   bool retryable, const struct tm_report *r, json_t **out);
/* Hands the task back unfinished without counting a retry (cancelled if a cancel was asked). */
TM_API int tm_release(struct tm_client *c, const char *id, const char *token, json_t **out);

/* ---- Workers, many tasks per request (docs/api.md, the batched protocol) ---- */

/*
 * Claims up to `max` (1..100) tasks of `queue` at once, with the options of
 * tm_claim (the wait applies to the first). Sets *claims to an array of
 * {"task": {...}, "lease_token": "..."} (the caller owns it), empty when
 * nothing came within the wait. claims must not be NULL (TM_CLIENT_EINVALID,
 * nothing claimed): a lease token dropped would leave its task leased to no one.
 */
TM_API int tm_claim_many(struct tm_client *c, const char *queue, const struct tm_claim_options *o,
                         int max, json_t **claims);
/*
 * One request for many tasks' calls: `verb` is "heartbeat", "complete",
 * "fail" or "release"; `entries` an array of {"id", "lease_token", ...the
 * body of the one-task call}. Each entry succeeds or fails on its own: sets
 * *results to the array of outcomes in order, each {"id", "phase",
 * "version", ...} or {"id", "error": {"code", "message", "field"}}
 * (results may be NULL to drop them).
 */
TM_API int tm_work_batch(struct tm_client *c, const char *verb, const json_t *entries,
                         json_t **results);
/*
 * An entry of tm_work_batch for one task: {"id", "lease_token"} and the
 * report r (may be NULL) as tm_heartbeat, tm_complete and tm_fail send it
 * (with `id` NULL, that call's body itself). The caller owns it and adds
 * the verb's own fields ("result", or "error" and "retryable"); the
 * report's items, messages and attributes are shared, not copied. A
 * message that is not UTF-8 is left out (the one-task calls refuse it with
 * TM_CLIENT_EINVALID naming "progress.message"). Returns NULL when id or
 * token is not UTF-8 or the ratio is not a number (what the one-task calls
 * refuse with TM_CLIENT_EINVALID).
 */
TM_API json_t *tm_work_entry(const char *id, const char *token, const struct tm_report *r);

#ifdef __cplusplus
}
#endif

#endif
