/*
 * fuzz_http_head: the fast path's reader of request heads
 * (src/server/http_head.c), which sees every byte a plain-HTTP client
 * sends before libmicrohttpd does. Checks what the fast path relies on:
 * an accepted head lies within the input and its limits, names GET or
 * POST and a path of visible ASCII without '%', '?', '#' or '+', holds no
 * CR or LF inside a field, no value with white space at either end, counts
 * no more than head_max as libmicrohttpd's side counts a head, and reads
 * the same from its own bytes alone; a refused head (HEAD_BAD) names a
 * field, a method and a target within the input.
 */
#include <stdlib.h>
#include <string.h>

#include "../../src/server/http_head.h"
#include "fuzz.h"

static void fuzz_check_span(const char *p, struct http_span s, size_t head_len) {
    if (s.off > head_len || s.len > head_len - s.off) abort();
    for (size_t i = 0; i < s.len; i++)
        if (p[s.off + i] == '\r' || p[s.off + i] == '\n') abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    /* The first byte picks the limits, so that both refusals are reached. */
    size_t head_max = size && (data[0] & 1) ? 64 : 16 * 1024;
    size_t body_max = size && (data[0] & 2) ? 10 : 64 * 1024;
    char *p = calloc(1, size ? size : 1); /* an exact-size copy, for ASan */
    if (size) memcpy(p, data, size);
    struct http_head h;
    enum http_head_result r = http_head_parse(p, size, head_max, body_max, &h);
    if (r == HEAD_PARTIAL && size >= head_max) abort();
    if (r == HEAD_BAD) { /* what the fast path answers with: spans of the input */
        /* Only a line that starts with a NUL has no name to give. */
        if ((h.bad_name.len == 0 && h.bad != HEAD_BAD_NUL_NAME) ||
            h.bad_name.off + h.bad_name.len > size)
            abort();
        if (h.method.len == 0 || h.target.len == 0 || h.target.off + h.target.len > size) abort();
    }
    if (r == HEAD_OK) {
        if (h.head_len > size || h.head_len > head_max || h.content_length > body_max) abort();
        if (h.nfields < 1 || h.nfields > HTTP_HEAD_FIELDS_MAX) abort();
        if (memcmp(p + h.head_len - 4, "\r\n\r\n", 4) != 0) abort();
        fuzz_check_span(p, h.method, h.head_len);
        fuzz_check_span(p, h.path, h.head_len);
        if (!(h.method.len == 3 && memcmp(p, "GET", 3) == 0) &&
            !(h.method.len == 4 && memcmp(p, "POST", 4) == 0))
            abort();
        if (h.path.len == 0 || p[h.path.off] != '/') abort();
        for (size_t i = 0; i < h.path.len; i++) {
            unsigned char c = (unsigned char)p[h.path.off + i];
            if (c <= 0x20 || c >= 0x7f || strchr("%?#+", c)) abort();
        }
        size_t counted = h.method.len + h.path.len + 12;
        for (int i = 0; i < h.nfields; i++) {
            fuzz_check_span(p, h.name[i], h.head_len);
            fuzz_check_span(p, h.value[i], h.head_len);
            if (h.name[i].len == 0) abort();
            const char *v = p + h.value[i].off;
            size_t vn = h.value[i].len;
            if (vn && (v[0] == ' ' || v[0] == '\t' || v[vn - 1] == ' ' || v[vn - 1] == '\t'))
                abort();
            counted += h.name[i].len + vn + 4;
        }
        if (counted > head_max) abort();
        /* The head alone reads the same: nothing after it was looked at. */
        struct http_head again;
        if (http_head_parse(p, h.head_len, head_max, body_max, &again) != HEAD_OK ||
            memcmp(&again, &h, sizeof h) != 0)
            abort();
    }
    free(p);
    return 0;
}
