/*
 * fuzz_v1_task: v1_decode_task, the body of POST /v1/tasks (and each entry
 * of a batch), with and without a token's namespace. A decoded task must
 * carry the token's namespace when one is given.
 */
#include <stdlib.h>
#include <string.h>

#include "../../src/common/json_parse.h"
#include "../../src/server/v1_decode.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    struct limits lim = fuzz_limits();
    struct tm_error e;
    err_clear(&e);
    json_t *obj = json_parse_object((const char *)data, size, lim.json_max_depth, &e);
    if (!obj) return 0;
    static const char *const scopes[] = {NULL, "acme"};
    for (size_t i = 0; i < 2; i++) {
        struct task *t = NULL;
        err_clear(&e);
        if (v1_decode_task(obj, &lim, scopes[i], &t, &e) == 0) {
            if (!t || !t->namespace) abort();
            if (scopes[i] && strcmp(t->namespace, scopes[i]) != 0) abort();
            task_free(t);
        } else if (t || !e.code) {
            abort();
        }
    }
    json_decref(obj);
    return 0;
}
