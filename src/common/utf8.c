/*
 * utf8: see utf8.h.
 */
#include "utf8.h"

#include <stdint.h>
#include <string.h>

size_t utf8_char_len(const char *s, const char *end) {
    const unsigned char *q = (const unsigned char *)s;
    size_t n;
    uint32_t cp;
    if (q[0] < 0x80) return 1;
    if (q[0] >= 0xC2 && q[0] <= 0xDF) {
        n = 2;
        cp = q[0] & 0x1Fu;
    } else if (q[0] >= 0xE0 && q[0] <= 0xEF) {
        n = 3;
        cp = q[0] & 0x0Fu;
    } else if (q[0] >= 0xF0 && q[0] <= 0xF4) {
        n = 4;
        cp = q[0] & 0x07u;
    } else {
        return 0; /* a continuation byte, C0, C1, F5..FF */
    }
    if ((size_t)(end - s) < n) return 0;
    for (size_t i = 1; i < n; i++) {
        if ((q[i] & 0xC0) != 0x80) return 0;
        cp = cp << 6 | (q[i] & 0x3Fu);
    }
    if ((n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000) || cp > 0x10FFFF ||
        (cp >= 0xD800 && cp <= 0xDFFF))
        return 0;
    return n;
}

bool utf8_valid(const char *s, size_t n) {
    const char *end = s + n;
    for (size_t k; s < end; s += k) {
        /* ASCII, the common case (ids, names, keys), a byte at a time. */
        while (s < end && (unsigned char)*s < 0x80)
            s++;
        if (s == end) break;
        if (!(k = utf8_char_len(s, end))) return false;
    }
    return true;
}

void utf8_scrub_n(char *s, size_t n) {
    const char *end = s + n;
    for (char *p = s; p < end;) {
        size_t k = *p ? utf8_char_len(p, end) : 0;
        if (k) {
            p += k;
        } else {
            *p++ = '?';
        }
    }
}

char *utf8_scrub(char *s) {
    utf8_scrub_n(s, strlen(s));
    return s;
}
