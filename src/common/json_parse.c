/*
 * json_parse: see json_parse.h.
 */
#include "json_parse.h"

int json_depth(const char *p, size_t n) {
    int depth = 0, max = 0;
    bool in_str = false;
    for (size_t i = 0; i < n; i++) {
        char c = p[i];
        if (in_str) {
            if (c == '\\')
                i++;
            else if (c == '"')
                in_str = false;
            continue;
        }
        if (c == '"') {
            in_str = true;
        } else if (c == '{' || c == '[') {
            if (++depth > max) max = depth;
        } else if (c == '}' || c == ']') {
            depth--;
        }
    }
    return max;
}

json_t *json_parse_object(const char *p, size_t n, int max_depth, struct tm_error *e) {
    if (json_depth(p, n) > max_depth) {
        err_set(e, TM_EINVALID, "", "JSON nests deeper than %d levels", max_depth);
        return NULL;
    }
    json_error_t je;
    json_t *v = json_loadb(p, n, JSON_REJECT_DUPLICATES, &je);
    if (!v) {
        err_set(e, TM_EMALFORMED, "", "malformed JSON at line %d column %d: %s", je.line, je.column,
                je.text);
        return NULL;
    }
    if (!json_is_object(v)) {
        json_decref(v);
        err_set(e, TM_EMALFORMED, "", "request body must be a JSON object");
        return NULL;
    }
    return v;
}
