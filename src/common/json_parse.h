/*
 * json_parse: decoding untrusted JSON with limits, before jansson sees it.
 *
 * jansson is strict (invalid UTF-8, NUL escapes, int64 overflow and
 * trailing garbage are refused; duplicates too with JSON_REJECT_DUPLICATES)
 * but has no depth limit a caller can set, so the bytes are scanned for
 * nesting depth before jansson reads them. Pure; thread-safe.
 *
 * jansson's parse is slow (a character at a time through a callback, a
 * string buffer grown per token), so json_parse_object tries a fast path
 * of its own first, for the plain JSON request bodies are made of, and
 * falls back on jansson for everything else. The fast path only answers
 * when jansson would build an equal value; every error is jansson's. It
 * counts the depth as it goes, declining past the limit, so an answer from
 * it needs no scan.
 */
#ifndef TASKMILL_JSON_PARSE_H
#define TASKMILL_JSON_PARSE_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "err.h"

struct buf;

/* Nesting depth of the JSON text (strings skipped), without validating it. */
int json_depth(const char *p, size_t n);
/*
 * Parses a JSON object: the fast path, then jansson (json_loadb with
 * JSON_REJECT_DUPLICATES) when it declines. Returns a new reference, or NULL
 * with e set: TM_EINVALID when the text nests deeper than max_depth,
 * TM_EMALFORMED with jansson's message ("malformed JSON at line L column C:
 * TEXT"), for a NUL byte anywhere (which jansson's lexer passes over after
 * a number or a literal), or when the value is not an object. A duplicate
 * key, or a string holding \u0000, is named by its path (json_error_path),
 * in the message and, when it fits, in the field.
 */
json_t *json_parse_object(const char *p, size_t n, int max_depth, struct tm_error *e);
/*
 * json_loadb with JSON_REJECT_DUPLICATES, for a value of any kind, also
 * refusing a NUL byte anywhere (which jansson passes over after a number
 * or a literal). NULL with why[0..cap) saying where and what is wrong
 * ("line L column C: ..."): jansson's text, a NUL, a duplicate key by its
 * path, or \u0000 in a string, whose path also goes in field[0..field_cap)
 * when it fits (else field is ""). json_parse_object's core; the views'
 * bodies and parameters use it with messages of their own.
 */
json_t *json_load_strict(const char *p, size_t n, char *why, size_t cap, char *field,
                         size_t field_cap);
/*
 * Appends to out the path of the key jansson refused as a duplicate, or of
 * the string value it refused for holding \u0000, je being json_loadb's
 * error on p[0..n): object keys decoded and joined by '.', array indexes
 * in brackets, as v1 names nested fields ("type", "params.a",
 * "tasks[1].params.a", "[0].value" in a top-level array). Returns 0, or -1
 * (out as it was) when je is another error.
 */
int json_error_path(const char *p, size_t n, const json_error_t *je, struct buf *out);
/*
 * The fast path alone (exposed for tests and the fuzzer). Returns a new
 * reference to the object, or NULL when it declines, having freed what it
 * built. Whenever it returns a value, jansson's json_loadb with
 * JSON_REJECT_DUPLICATES returns an equal one: same types (integer or
 * real), bit-identical reals (-0.0 too), same strings, keys in the same
 * order. It accepts, with only space, tab, CR and LF between tokens:
 *   - a top-level object, nothing but whitespace after it;
 *   - objects without duplicate keys, arrays, nested up to 64 deep;
 *   - strings of bytes 0x20..0x7F (quote and backslash escaped), UTF-8
 *     as jansson checks it (no overlong form, no surrogate, nothing past
 *     U+10FFFF), and the escapes \" \\ \/ \b \f \n \r \t;
 *   - integers in int64 range (-0 is the integer 0, as in jansson);
 *   - reals of at most 40 characters that strtod converts without ERANGE;
 *   - true, false, null.
 * It declines everything else: \u escapes, bytes < 0x20, bytes that are
 * not such UTF-8, other whitespace, top-level arrays and scalars, and all
 * that is not JSON.
 */
json_t *json_parse_object_fast(const char *p, size_t n);

#endif
