/*
 * fuzz_sailpoint_filter: sailpoint_filter_parse (the `filters` query
 * parameter of GET /beta/task-status) and sailpoint_sorters_parse. A parse
 * gives either a tree whose every leaf has a name and the right number of
 * values, or an error with a message: never both, never neither. The same
 * bytes are also read as /oauth/token's form, urlencoded and multipart
 * (sailpoint_form_get and _count agree on whether a field is there).
 */
#include <stdlib.h>
#include <string.h>

#include "../../src/common/buf.h"
#include "../../src/compat/sailpoint_filter.h"
#include "../../src/compat/sailpoint_parse.h"
#include "fuzz.h"

static int fuzz_leaf_check(void *cls, struct filter_expr *x) {
    (void)cls;
    if (!x->name || !x->name[0]) abort();
    if ((x->op == FILTER_IN || x->op == FILTER_CA) && x->nvalues == 0) abort();
    if ((x->op == FILTER_ISNULL || x->op == FILTER_PR) && x->nvalues != 0) abort();
    return 0;
}

/* The bytes as a form of Content-Type ct: a field found by one is found by the other. */
static void fuzz_form(const char *ct, const uint8_t *data, size_t size) {
    static const char *const names[] = {"grant_type", "client_id", "a"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        char out[64];
        int got = sailpoint_form_get(ct, (const char *)data, size, names[i], out, sizeof out);
        int n = sailpoint_form_count(ct, (const char *)data, size, names[i]);
        if (got != 0 && got != TM_ENOT_FOUND && got != TM_EINVALID) abort();
        if (got == 0 && (n < 1 || strlen(out) >= sizeof out)) abort();
        if (got == TM_ENOT_FOUND && n != 0) abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    fuzz_form(NULL, data, size);
    fuzz_form("multipart/form-data; boundary=b1", data, size);
    struct filter_expr *x = NULL;
    struct tm_error e;
    err_clear(&e);
    if (sailpoint_filter_parse((const char *)data, size, &x, &e) == 0) {
        if (!x || e.code) abort();
        filter_expr_each_leaf(x, fuzz_leaf_check, NULL);
        struct buf b;
        buf_init(&b);
        filter_expr_format(&b, x);
        if (b.len < 2) abort();
        buf_release(&b);
        filter_expr_free(x);
    } else if (x || !e.code || !e.message[0]) {
        abort();
    }
    /* The same bytes as sorters, when they hold no NUL. */
    if (size < 256 && !memchr(data, 0, size)) {
        char s[256];
        memcpy(s, data, size);
        s[size] = '\0';
        bool asc = false;
        err_clear(&e);
        if (sailpoint_sorters_parse(s, &asc, &e) != 0 && !e.code) abort();
    }
    return 0;
}
