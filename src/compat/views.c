/*
 * views: the table of compatibility views (views.h).
 */
#include "views.h"

#include <string.h>

size_t compat_utf8_len(const char *s) {
    const unsigned char *u = (const unsigned char *)s;
    unsigned c = u[0];
    size_t n;
    unsigned min;
    if (c < 0x80) return 1;
    if (c >= 0xC2 && c <= 0xDF) {
        n = 2, min = 0x80;
    } else if (c >= 0xE0 && c <= 0xEF) {
        n = 3, min = 0x800;
    } else if (c >= 0xF0 && c <= 0xF4) {
        n = 4, min = 0x10000;
    } else {
        return 0; /* a continuation byte, C0, C1 or F5..FF */
    }
    unsigned cp = c & (0x7Fu >> n);
    for (size_t i = 1; i < n; i++) {
        if ((u[i] & 0xC0) != 0x80) return 0; /* also the NUL of a cut sequence */
        cp = cp << 6 | (u[i] & 0x3Fu);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
    return n;
}

char *compat_utf8_clean(const char *s, char *out, size_t n) {
    size_t o = 0;
    while (*s) {
        size_t k = compat_utf8_len(s);
        if (o + (k ? k : 1) >= n) break;
        if (k) {
            memcpy(out + o, s, k);
            o += k;
            s += k;
        } else {
            out[o++] = '?';
            s++;
        }
    }
    out[o] = '\0';
    return out;
}

const struct route_table compat_views[] = {
    {sailpoint_routes, sailpoint_write_error, NULL},
    {sailpoint_oauth_routes, sailpoint_oauth_write_error, NULL},
    {livepeer_routes, livepeer_error_write, NULL},
    {scene7_routes, scene7_error_write, "text/xml; charset=utf-8"},
    {NULL, NULL, NULL},
};
