/*
 * fuzz_webhook_body: v1_decode_webhook, the body of POST /v1/webhooks,
 * after the JSON parser the server uses. A decode gives either a webhook
 * with a url, a secret of 8-256 bytes and a non-empty set of known events,
 * or an error with a message; the webhook is released either way, as the
 * route does, so LeakSanitizer sees anything left behind.
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
    struct webhook w;
    memset(&w, 0, sizeof w);
    err_clear(&e);
    static const unsigned all =
        WEBHOOK_SPAWNED | WEBHOOK_UPDATED | WEBHOOK_COMPLETED | WEBHOOK_FAILED;
    if (v1_decode_webhook(obj, &w, &e) == 0) {
        if (e.code || !w.url || !w.secret) abort();
        size_t n = strlen(w.secret);
        if (n < 8 || n > 256) abort();
        if (strlen(w.url) > 2048) abort();
        if (!w.events || (w.events & ~all)) abort();
        if (w.name && (!w.name[0] || strlen(w.name) > 256)) abort();
    } else if (!e.code || !e.message[0]) {
        abort();
    }
    webhook_release(&w);
    json_decref(obj);
    return 0;
}
