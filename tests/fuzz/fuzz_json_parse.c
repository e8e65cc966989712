/*
 * fuzz_json_parse: json_depth and json_parse_object, the first parser every
 * request body meets (src/common/json_parse.c). Checks that a parsed value
 * is an object and that the depth limit was honoured, and that the fast
 * path never answers otherwise than jansson: when json_parse_object_fast
 * returns a value, json_loadb (JSON_REJECT_DUPLICATES) returns a strictly
 * equal one (same types, reals bit for bit, strings, key order).
 */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "../../src/common/json_parse.h"
#include "fuzz.h"

static bool strictly_equal(json_t *a, json_t *b) {
    if (json_typeof(a) != json_typeof(b)) return false;
    switch (json_typeof(a)) {
    case JSON_OBJECT: {
        if (json_object_size(a) != json_object_size(b)) return false;
        void *ia = json_object_iter(a), *ib = json_object_iter(b);
        for (; ia && ib; ia = json_object_iter_next(a, ia), ib = json_object_iter_next(b, ib)) {
            size_t n = json_object_iter_key_len(ia);
            if (n != json_object_iter_key_len(ib) ||
                memcmp(json_object_iter_key(ia), json_object_iter_key(ib), n) != 0 ||
                !strictly_equal(json_object_iter_value(ia), json_object_iter_value(ib)))
                return false;
        }
        return !ia && !ib;
    }
    case JSON_ARRAY:
        if (json_array_size(a) != json_array_size(b)) return false;
        for (size_t i = 0; i < json_array_size(a); i++)
            if (!strictly_equal(json_array_get(a, i), json_array_get(b, i))) return false;
        return true;
    case JSON_STRING:
        return json_string_length(a) == json_string_length(b) &&
               memcmp(json_string_value(a), json_string_value(b), json_string_length(a)) == 0;
    case JSON_INTEGER:
        return json_integer_value(a) == json_integer_value(b);
    case JSON_REAL: {
        double x = json_real_value(a), y = json_real_value(b);
        return memcmp(&x, &y, sizeof x) == 0;
    }
    default:
        return true;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    struct tm_error e;
    err_clear(&e);
    const char *p = (const char *)data;
    int depth = json_depth(p, size);
    json_t *v = json_parse_object(p, size, 8, &e);
    if (v) {
        if (!json_is_object(v) || depth > 8) abort();
        json_decref(v);
    } else if (e.code != TM_EMALFORMED && e.code != TM_EINVALID) {
        abort();
    }
    json_t *fast = json_parse_object_fast(p, size);
    if (fast) {
        json_t *ref = json_loadb(p, size, JSON_REJECT_DUPLICATES, NULL);
        if (!ref || !strictly_equal(fast, ref)) abort();
        json_decref(ref);
        json_decref(fast);
    }
    return 0;
}
