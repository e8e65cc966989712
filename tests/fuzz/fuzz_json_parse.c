/*
 * fuzz_json_parse: json_depth and json_parse_object, the first parser every
 * request body meets (src/common/json_parse.c). Checks that a parsed value
 * is an object and that the depth limit was honoured.
 */
#include <stdlib.h>

#include "../../src/common/json_parse.h"
#include "fuzz.h"

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
    return 0;
}
