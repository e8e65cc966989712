/*
 * fuzz_v1_claim: v1_decode_claim, the body of POST /v1/queues/{q}/claim.
 * The wait it returns must stay within the limit.
 */
#include <stdlib.h>

#include "../../src/common/json_parse.h"
#include "../../src/server/v1_decode.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    struct limits lim = fuzz_limits();
    struct tm_error e;
    err_clear(&e);
    json_t *obj = json_parse_object((const char *)data, size, lim.json_max_depth, &e);
    if (!obj) return 0;
    struct store_op op;
    store_op_init(&op, STORE_OP_CLAIM);
    int wait_s = -1;
    if (v1_decode_claim(obj, &lim, &op, &wait_s, &e) == 0) {
        if (wait_s < 0 || wait_s > lim.wait_max_seconds) abort();
        if (op.ntypes > STORE_CLAIM_MAX_TYPES || !op.worker) abort();
    }
    store_op_release(&op);
    json_decref(obj);
    return 0;
}
