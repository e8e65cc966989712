/*
 * fuzz: what the libFuzzer targets in tests/fuzz share.
 *
 * Each fuzz_<target>.c defines LLVMFuzzerTestOneInput for one parser of
 * untrusted input. It is linked twice: with libFuzzer (`make fuzz`, under
 * build/fuzz) and with replay.c (`make test`), which feeds it every file of
 * tests/fuzz/corpus/<target>/ and tests/fuzz/crashes/<target>/. A target
 * must free everything it allocates, so that LeakSanitizer stays quiet, and
 * must not keep state between inputs. Single-threaded.
 */
#ifndef TASKMILL_FUZZ_H
#define TASKMILL_FUZZ_H

#include <stddef.h>
#include <stdint.h>

#include "../../src/server/http.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The server's default limits (serve_default_limits), smaller where a
 * smaller cap lets the fuzzer reach the refusal paths quickly. */
static inline struct limits fuzz_limits(void) {
    struct limits l = {0};
    l.body_max_bytes = 1024 * 1024;
    l.json_max_depth = 32;
    l.batch_max = 1000;
    l.page_max = 1000;
    l.wait_max_seconds = 60;
    l.string_max_bytes = 4096;
    l.items_max_per_call = 64;
    l.messages_max_per_call = 16;
    return l;
}

#endif
