/*
 * fuzz_bearer: the parsers in front of every authenticated request
 * (src/common/token.c): the Authorization header value, and the duration
 * of `--expires` / "expires_in". The input is split at its first NUL:
 * header before, duration after. A parsed token must have the documented
 * shape: 16 lowercase hex id, 64 lowercase hex secret.
 */
#include <stdlib.h>
#include <string.h>

#include "../../src/common/token.h"
#include "fuzz.h"

static void fuzz_check_hex(const char *s, size_t n) {
    if (strlen(s) != n) abort();
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f'))) abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char *s = malloc(size + 2);
    memcpy(s, data, size);
    s[size] = '\0';
    s[size + 1] = '\0';
    char id[TOKEN_ID_LEN + 1], secret[TOKEN_SECRET_LEN + 1];
    if (token_parse_bearer(s, id, secret) == 0) {
        fuzz_check_hex(id, TOKEN_ID_LEN);
        fuzz_check_hex(secret, TOKEN_SECRET_LEN);
        if (!token_id_is_valid(id)) abort();
    }
    if (token_parse(s, strnlen(s, size), id, secret) == 0) fuzz_check_hex(id, TOKEN_ID_LEN);
    const char *dur = s + strlen(s) + 1;
    int64_t ms = -1;
    if (dur <= s + size && token_parse_duration(dur, &ms) == 0 &&
        (ms <= 0 || ms > 10LL * 366 * 24 * 3600 * 1000))
        abort();
    free(s);
    return 0;
}
