/*
 * fuzz_v1_queue_settings: v1_decode_queue_settings, the body of
 * PUT /v1/queues/{queue}. Accepted settings must be in their ranges, the
 * backoff ceiling at least the backoff.
 */
#include <stdlib.h>

#include "../../src/common/json_parse.h"
#include "../../src/server/v1_decode.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    struct tm_error e;
    err_clear(&e);
    json_t *obj = json_parse_object((const char *)data, size, 32, &e);
    if (!obj) return 0;
    struct queue_settings q;
    if (v1_decode_queue_settings(obj, &q, &e) == 0) {
        if (q.max_retries < 0 || q.max_retries > 1000 || q.backoff_ms < 0 ||
            q.backoff_max_ms < q.backoff_ms)
            abort();
    } else if (!e.code) {
        abort();
    }
    json_decref(obj);
    return 0;
}
