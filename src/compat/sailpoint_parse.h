/*
 * sailpoint_parse: the other pure parsers of the SailPoint view: the JSON
 * Patch body of PATCH /task-status/{id}, and the form fields of
 * POST /oauth/token (application/x-www-form-urlencoded or
 * multipart/form-data, as the sailpoint-api-client SDK sends).
 *
 * No I/O, no store; the results borrow nothing from the input unless said.
 * Errors: TM_EINVALID (or TM_EMALFORMED for a body that is not JSON) with
 * the field at fault and a message naming it. Thread-safe.
 */
#ifndef TASKMILL_SAILPOINT_PARSE_H
#define TASKMILL_SAILPOINT_PARSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../common/err.h"
#include "../common/task.h"

/*
 * What a patch asks for. Paths accepted (ops add and replace only):
 *   /completionStatus  SUCCESS|WARNING|ERROR|TERMINATED|TEMPERROR, any case
 *   /completed         an RFC 3339 date-time
 *   /progress          a string (the progress text)
 *   /percentComplete   an integer 0..100
 */
struct sailpoint_patch {
    enum task_status status; /* TASK_STATUS_NONE: not asked */
    int64_t completed_ms;    /* 0: not asked */
    bool has_progress, has_percent;
    char progress[1024];
    int percent;
};

/* Parses a JSON Patch document (n bytes): 0, or an error with e set. */
int sailpoint_patch_parse(const char *body, size_t n, int max_depth, struct sailpoint_patch *out,
                          struct tm_error *e);

/*
 * Finds form field `name` in a body of the given Content-Type and copies its
 * (decoded) value into out (NUL-terminated, at most outlen - 1 bytes).
 * Returns 0, TM_ENOT_FOUND when absent, TM_EINVALID when the value is too
 * long or the body is not a form.
 */
int sailpoint_form_get(const char *content_type, const char *body, size_t n, const char *name,
                       char *out, size_t outlen);
/* How many times field `name` is in the form (0 when absent), or -1 when
 * the body is not a form of a type sailpoint_form_type_ok takes. */
int sailpoint_form_count(const char *content_type, const char *body, size_t n, const char *name);
/* Whether a body of this Content-Type is read as a form: none (taken as
 * urlencoded), application/x-www-form-urlencoded or multipart/form-data. */
bool sailpoint_form_type_ok(const char *content_type);

#endif
