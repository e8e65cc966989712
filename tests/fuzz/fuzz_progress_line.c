/*
 * fuzz_progress_line: progress_line_parse (src/cli/progress_line.c), the
 * parser of the lines a worker's command prints, which `taskmill work`
 * reads from a program it does not control. Checks the contract: slices
 * point inside the input, ratios are in 0..1, item counts are ordered.
 */
#include <stdlib.h>
#include <string.h>

#include "../../src/cli/progress_line.h"
#include "fuzz.h"

static void fuzz_check_slice(struct progress_slice s, const uint8_t *data, size_t size) {
    if (s.n == 0) return;
    const uint8_t *p = (const uint8_t *)s.p;
    if (p < data || p + s.n > data + size) abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    struct progress_line pl;
    memset(&pl, 0xa5, sizeof pl);
    progress_line_parse((const char *)data, size, &pl);
    fuzz_check_slice(pl.name, data, size);
    fuzz_check_slice(pl.text, data, size);
    switch (pl.kind) {
    case PROGRESS_LINE_PROGRESS:
    case PROGRESS_LINE_ITEM:
        if (!(pl.ratio >= 0 && pl.ratio <= 1)) abort();
        break;
    case PROGRESS_LINE_ITEMS:
        if (pl.processed < 0 || pl.processed > pl.total) abort();
        break;
    case PROGRESS_LINE_MESSAGE:
        if (strcmp(pl.level, "INFO") && strcmp(pl.level, "WARN") && strcmp(pl.level, "ERROR"))
            abort();
        break;
    default:
        break;
    }
    return 0;
}
