/*
 * fuzz_json_parse: json_depth and json_parse_object, the first parser every
 * request body meets (src/common/json_parse.c). Checks that a value is
 * parsed only from an object without a NUL byte, within the depth limit,
 * and that the fast path never answers otherwise than jansson: when
 * json_parse_object_fast returns a value, json_loadb
 * (JSON_REJECT_DUPLICATES) returns a strictly equal one (same types, reals
 * bit for bit, strings, key order). And that every duplicate key jansson
 * refuses, in an object or in an array (JSON_DECODE_ANY), gets a path from
 * json_error_path.
 */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "../../src/common/buf.h"
#include "../../src/common/json_parse.h"
#include "../json_strict.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    struct tm_error e;
    err_clear(&e);
    const char *p = (const char *)data;
    int depth = json_depth(p, size);
    json_t *v = json_parse_object(p, size, 8, &e);
    if (v) {
        if (!json_is_object(v) || depth > 8 || memchr(p, '\0', size)) abort();
        json_decref(v);
    } else if (e.code != TM_EMALFORMED && e.code != TM_EINVALID) {
        abort();
    }
    json_t *fast = json_parse_object_fast(p, size);
    if (fast) {
        json_t *ref = json_loadb(p, size, JSON_REJECT_DUPLICATES, NULL);
        if (!ref || !json_strictly_equal(fast, ref)) abort();
        json_decref(ref);
        json_decref(fast);
    }
    json_error_t je;
    json_t *any = json_loadb(p, size, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &je);
    /* A duplicate key always has a path; so has a string holding \u0000
     * inside an object or an array (not a bare top-level string). */
    size_t lead = 0;
    while (lead < size && (p[lead] == ' ' || p[lead] == '\t' || p[lead] == '\n' || p[lead] == '\r'))
        lead++;
    bool contained = lead < size && (p[lead] == '{' || p[lead] == '[');
    if (!any && (json_error_code(&je) == json_error_duplicate_key ||
                 (json_error_code(&je) == json_error_null_character && contained))) {
        struct buf path;
        buf_init(&path);
        if (json_error_path(p, size, &je, &path) != 0) abort();
        buf_release(&path);
    }
    json_decref(any);
    return 0;
}
