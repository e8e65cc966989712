/*
 * err: the one table of taskmill's errors.
 *
 * Each error has a negative code (TM_E...), a stable JSON slug, an HTTP
 * status and a default message, generated from TM_ERR_MAP so they cannot
 * drift apart (libuv's UV_ERRNO_MAP). Functions return 0 or a negative
 * code; when they can say more they fill a struct tm_error: which field was
 * wrong and a message, lower case, subject in quotes. Thread-safe.
 */
#ifndef TASKMILL_ERR_H
#define TASKMILL_ERR_H

#include <stdarg.h>

/*      name               slug                  status  default message */
#define TM_ERR_MAP(X)                                                                     \
    X(INVALID, "invalid_argument", 400, "invalid argument")                               \
    X(MALFORMED, "malformed_json", 400, "request body is not valid JSON")                 \
    X(UNAUTHENTICATED, "unauthenticated", 401, "missing or invalid credentials")          \
    X(FORBIDDEN, "permission_denied", 403, "not allowed")                                 \
    X(NOT_FOUND, "not_found", 404, "not found")                                           \
    X(METHOD, "method_not_allowed", 405, "method not allowed")                            \
    X(CONFLICT, "conflict", 409, "the task cannot make that move now")                    \
    X(LEASE, "lease_mismatch", 409, "the lease token is not the task's current lease")    \
    X(TOO_LARGE, "payload_too_large", 413, "request body too large")                      \
    X(MEDIA_TYPE, "unsupported_media_type", 415, "body must be application/json")         \
    X(RATE, "too_many_requests", 429, "too many requests")                                \
    X(GONE, "events_pruned", 410, "the events asked for were removed; re-read the state") \
    X(INTERNAL, "internal", 500, "internal error")                                        \
    X(UNAVAILABLE, "unavailable", 503, "server is shutting down or overloaded")           \
    X(QUERY_TIMEOUT, "query_timeout", 400, "the query ran past its time limit")           \
    X(HEADERS_TOO_LARGE, "request_header_fields_too_large", 431, "request headers too large")

enum tm_err {
    TM_OK = 0,
#define TM_ERR_ENUM(name, slug, status, msg) TM_E##name,
    TM_ERR_FIRST_ = -100,
    TM_ERR_MAP(TM_ERR_ENUM) TM_ERR_END_
#undef TM_ERR_ENUM
};

/* An error with the detail a client needs. Embedded; no heap. */
struct tm_error {
    int code;       /* TM_E..., or TM_OK */
    char field[64]; /* the request field at fault, or "" */
    char message[256];
};

const char *err_slug(int code);
int err_http_status(int code);
const char *err_default_message(int code);
/* Sets e and returns code, so a caller can `return err_set(e, ...)`. */
int err_set(struct tm_error *e, int code, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
void err_clear(struct tm_error *e);
/* For a parameter that may come once: when key is one of the n names
 * (at most 32), marks it in *seen (bit i: names[i] came) and, when it had
 * come before, sets e to 400 "'key' is given more than once" naming it and
 * returns TM_EINVALID; else 0. */
int err_once(const char *const *names, unsigned n, unsigned *seen, const char *key,
             struct tm_error *e);

#endif
