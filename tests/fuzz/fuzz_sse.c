/*
 * fuzz_sse: sse_parser_feed (src/client/sse.c), the parser of the event
 * streams tm_watch reads from a server (or whatever answers in its place).
 * The first input byte picks where to split the rest in two; the items
 * must be the same as from one feed, each event's data must be
 * NUL-terminated at data_len, and the id must stay within SSE_ID_MAX.
 */
#include <stdlib.h>
#include <string.h>

#include "../../src/client/sse.h"
#include "fuzz.h"

/* A running digest of the items seen, to compare two parses. */
struct fuzz_sse_digest {
    uint64_t h;
    size_t items;
};

static void fuzz_sse_mix(struct fuzz_sse_digest *d, const void *p, size_t n) {
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++)
        d->h = (d->h ^ b[i]) * 1099511628211ULL;
    d->h = (d->h ^ 0xff) * 1099511628211ULL;
}

static void fuzz_sse_item(void *cls, const struct sse_item *it) {
    struct fuzz_sse_digest *d = cls;
    if (it->data[it->data_len] != '\0') abort();
    if (strlen(it->last_id) > SSE_ID_MAX) abort();
    if (it->kind == SSE_ITEM_EVENT && !*it->event) abort();
    d->items++;
    fuzz_sse_mix(d, &it->kind, sizeof it->kind);
    fuzz_sse_mix(d, it->event, strlen(it->event));
    fuzz_sse_mix(d, it->data, it->data_len);
    fuzz_sse_mix(d, it->last_id, strlen(it->last_id));
}

static int fuzz_sse_run(const char *p, size_t n, size_t split, struct fuzz_sse_digest *d) {
    struct sse_parser ps;
    sse_parser_init(&ps, 4096);
    int rc = sse_parser_feed(&ps, p, split, fuzz_sse_item, d);
    int rc2 = sse_parser_feed(&ps, p + split, n - split, fuzz_sse_item, d);
    if (rc && !rc2) abort(); /* a failed parser stays failed */
    fuzz_sse_mix(d, ps.last_id, strlen(ps.last_id));
    fuzz_sse_mix(d, &ps.retry_ms, sizeof ps.retry_ms);
    sse_parser_release(&ps);
    return rc2;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size == 0) return 0;
    const char *p = (const char *)data + 1;
    size_t n = size - 1;
    size_t split = n ? data[0] % (n + 1) : 0;
    struct fuzz_sse_digest whole = {14695981039346656037ULL, 0};
    struct fuzz_sse_digest parts = {14695981039346656037ULL, 0};
    int a = fuzz_sse_run(p, n, n, &whole);
    int b = fuzz_sse_run(p, n, split, &parts);
    if (a != b || whole.items != parts.items || whole.h != parts.h) abort();
    return 0;
}
