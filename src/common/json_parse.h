/*
 * json_parse: decoding untrusted JSON with limits, before jansson sees it.
 *
 * jansson is strict (invalid UTF-8, NUL escapes, int64 overflow and
 * trailing garbage are refused; duplicates too with JSON_REJECT_DUPLICATES)
 * but has no depth limit a caller can set, so the bytes are scanned for
 * nesting depth first. Pure; thread-safe.
 */
#ifndef TASKMILL_JSON_PARSE_H
#define TASKMILL_JSON_PARSE_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "err.h"

/* Nesting depth of the JSON text (strings skipped), without validating it. */
int json_depth(const char *p, size_t n);
/* Parses a JSON object. NULL with e set (TM_EMALFORMED / TM_EINVALID) on failure. */
json_t *json_parse_object(const char *p, size_t n, int max_depth, struct tm_error *e);

#endif
