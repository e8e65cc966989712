/*
 * fuzz_livepeer_query: the query string of GET /api/task (limit, cursor,
 * JSON filters, order, count), decoded by src/compat/livepeer.c, then
 * turned into the store's filter tree. The input is split as a query
 * string, "key=value&key=value", each pair handed over as libmicrohttpd
 * would (already unescaped; a key without '=' has value ""). Every refusal
 * must carry an error; every accepted query must stay within its caps.
 */
#include <stdlib.h>
#include <string.h>

#include "../../src/common/filter.h"
#include "../../src/compat/livepeer.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size > 16384) return 0;
    char *s = malloc(size + 1);
    memcpy(s, data, size);
    s[size] = '\0';
    struct livepeer_query q;
    livepeer_query_init(&q);
    struct tm_error e;
    bool refused = false;
    char *save = NULL;
    for (char *pair = strtok_r(s, "&", &save); pair; pair = strtok_r(NULL, "&", &save)) {
        char *eq = strchr(pair, '=');
        const char *value = "";
        if (eq) {
            *eq = '\0';
            value = eq + 1;
        }
        err_clear(&e);
        if (livepeer_query_add(&q, pair, value, &e)) {
            if (!e.code || !e.message[0]) abort();
            refused = true;
            break;
        }
    }
    if (!refused) {
        if (q.limit < 1 || q.limit > LIVEPEER_LIMIT_MAX) abort();
        if (q.skip < 0 || q.skip > LIVEPEER_SKIP_MAX) abort();
        if (q.ncond < 0 || q.ncond > LIVEPEER_FILTERS_MAX) abort();
        struct livepeer_sort order[LIVEPEER_ORDER_MAX];
        int n = livepeer_query_order(&q, order);
        if (n < 1 || n > LIVEPEER_ORDER_MAX) abort();
        struct filter_expr *x = livepeer_query_expr(&q);
        struct buf b;
        buf_init(&b);
        filter_expr_format(&b, x);
        buf_release(&b);
        filter_expr_free(x);
        bool conflict;
        (void)livepeer_query_project(&q, &conflict);
    }
    free(s);
    return 0;
}
