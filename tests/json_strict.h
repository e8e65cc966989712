/*
 * json_strictly_equal: whether two jansson values are the same in every
 * respect jansson keeps: types (integer or real, true or false), reals bit
 * for bit (-0.0 too), string bytes, array order and object keys in the same
 * order. json_equal is looser (it compares reals by value and objects as
 * sets). For the tests and the fuzz target that hold taskmill's JSON fast
 * path to jansson (src/common/json_parse.c).
 */
#ifndef TASKMILL_TESTS_JSON_STRICT_H
#define TASKMILL_TESTS_JSON_STRICT_H

#include <jansson.h>
#include <stdbool.h>
#include <string.h>

static inline bool json_strictly_equal(json_t *a, json_t *b) {
    if (json_typeof(a) != json_typeof(b)) return false;
    switch (json_typeof(a)) {
    case JSON_OBJECT: {
        if (json_object_size(a) != json_object_size(b)) return false;
        void *ia = json_object_iter(a), *ib = json_object_iter(b);
        for (; ia && ib; ia = json_object_iter_next(a, ia), ib = json_object_iter_next(b, ib)) {
            size_t n = json_object_iter_key_len(ia);
            if (n != json_object_iter_key_len(ib) ||
                memcmp(json_object_iter_key(ia), json_object_iter_key(ib), n) != 0 ||
                !json_strictly_equal(json_object_iter_value(ia), json_object_iter_value(ib)))
                return false;
        }
        return !ia && !ib;
    }
    case JSON_ARRAY:
        if (json_array_size(a) != json_array_size(b)) return false;
        for (size_t i = 0; i < json_array_size(a); i++)
            if (!json_strictly_equal(json_array_get(a, i), json_array_get(b, i))) return false;
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
    default: /* true, false, null: the type says it all */
        return true;
    }
}

#endif
