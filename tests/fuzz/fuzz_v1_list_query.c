/*
 * fuzz_v1_list_query: the query string of GET /v1/tasks (filters, paging)
 * and the ?wait=&version= of GET /v1/tasks/{id}. The input is split as a
 * query string, "key=value&key=value", and each pair handed over as
 * libmicrohttpd would (already unescaped; a key without '=' has value "").
 */
#include <stdlib.h>
#include <string.h>

#include "../../src/server/v1_decode.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size > 4096) return 0;
    struct limits lim = fuzz_limits();
    char *s = malloc(size + 1);
    memcpy(s, data, size);
    s[size] = '\0';
    struct list_query q;
    v1_list_query_init(&q);
    struct tm_error e;
    const char *wait = NULL, *version = NULL;
    char *save = NULL;
    for (char *pair = strtok_r(s, "&", &save); pair; pair = strtok_r(NULL, "&", &save)) {
        char *eq = strchr(pair, '=');
        const char *value = "";
        if (eq) {
            *eq = '\0';
            value = eq + 1;
        }
        if (strcmp(pair, "wait") == 0) wait = value;
        if (strcmp(pair, "version") == 0) version = value;
        err_clear(&e);
        if (v1_list_query_add(&q, &lim, pair, value, &e)) {
            if (!e.code) abort();
            break;
        }
    }
    if (q.filter.limit < 1 || q.filter.limit > lim.page_max) abort();
    int wait_s = 0;
    int64_t ver = 0;
    err_clear(&e);
    if (v1_decode_wait(wait, version, &lim, &wait_s, &ver, &e) == 0 &&
        (wait_s < 0 || wait_s > lim.wait_max_seconds || ver < -1))
        abort();
    free(s);
    return 0;
}
