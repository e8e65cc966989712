/*
 * fuzz_v1_worker_call: v1_decode_worker_call, the bodies of heartbeat,
 * complete, fail and release. The first byte picks the call; the rest is
 * the JSON body.
 */
#include <stdlib.h>

#include "../../src/common/json_parse.h"
#include "../../src/server/v1_decode.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static const enum store_op_kind kinds[] = {STORE_OP_HEARTBEAT, STORE_OP_COMPLETE, STORE_OP_FAIL,
                                               STORE_OP_RELEASE};
    if (size < 1) return 0;
    struct limits lim = fuzz_limits();
    struct tm_error e;
    err_clear(&e);
    json_t *obj = json_parse_object((const char *)data + 1, size - 1, lim.json_max_depth, &e);
    if (!obj) return 0;
    struct store_op op;
    store_op_init(&op, kinds[data[0] % 4]);
    if (v1_decode_worker_call(obj, &lim, &op, &e) == 0 && !op.lease_token) abort();
    store_op_release(&op);
    json_decref(obj);
    return 0;
}
