/*
 * buf: see buf.h. The JSON writer escapes per RFC 8259: quote, backslash
 * and control characters; everything else, UTF-8 included, is copied (the
 * input was validated as UTF-8 when it was decoded).
 */
#include "buf.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "timeutil.h"
#include "xalloc.h"

void buf_init(struct buf *b) {
    b->p = NULL;
    b->len = 0;
    b->cap = 0;
}

void buf_release(struct buf *b) {
    free(b->p);
    buf_init(b);
}

void buf_clear(struct buf *b) {
    b->len = 0;
    if (b->p) b->p[0] = '\0';
}

char *buf_detach(struct buf *b) {
    char *p = b->p;
    if (!p) p = xstrdup("");
    buf_init(b);
    return p;
}

void buf_grow(struct buf *b, size_t extra) {
    if (b->len + extra + 1 <= b->cap) return;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + extra + 1)
        cap *= 2;
    b->p = xrealloc(b->p, cap);
    b->cap = cap;
}

void buf_reserve(struct buf *b, size_t extra) {
    if (b->cap) {
        buf_grow(b, extra);
        return;
    }
    b->p = xmalloc(extra + 1);
    b->p[0] = '\0';
    b->cap = extra + 1;
}

void buf_put_grow(struct buf *b, const void *p, size_t n) {
    buf_grow(b, n);
    memcpy(b->p + b->len, p, n);
    b->len += n;
    b->p[b->len] = '\0';
}

void buf_puts(struct buf *b, const char *s) {
    buf_put(b, s, strlen(s));
}

void buf_putc(struct buf *b, char c) {
    buf_grow(b, 1);
    b->p[b->len++] = c;
    b->p[b->len] = '\0';
}

void buf_printf(struct buf *b, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    char tmp[256];
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n < 0) return;
    if ((size_t)n < sizeof tmp) {
        buf_put(b, tmp, (size_t)n);
        return;
    }
    buf_grow(b, (size_t)n);
    va_start(ap, fmt);
    vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

/* A JSON string: the bytes with an entry in short_escape as a backslash
 * and that letter, other control bytes as \u00XX in `hex`'s digits. */
static void put_escaped(struct buf *b, const char *s, size_t n, const char short_escape[128],
                        const char hex[16]) {
    buf_grow(b, n + 2);
    b->p[b->len++] = '"';
    size_t run = 0; /* start of the pending run of plain bytes */
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c != '"' && c != '\\') continue;
        buf_put(b, s + run, i - run);
        run = i + 1;
        if (short_escape[c]) {
            char esc[2] = {'\\', short_escape[c]};
            buf_put(b, esc, 2);
        } else {
            char esc[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
            buf_put(b, esc, 6);
        }
    }
    buf_put(b, s + run, n - run);
    buf_putc(b, '"');
}

void json_put_strn(struct buf *b, const char *s, size_t n) {
    static const char short_escape[128] = {
        ['"'] = '"', ['\\'] = '\\', ['\n'] = 'n', ['\r'] = 'r', ['\t'] = 't',
    };
    put_escaped(b, s, n, short_escape, "0123456789abcdef");
}

void json_put_strn_jansson(struct buf *b, const char *s, size_t n) {
    static const char short_escape[128] = {
        ['"'] = '"',  ['\\'] = '\\', ['\b'] = 'b', ['\f'] = 'f',
        ['\n'] = 'n', ['\r'] = 'r',  ['\t'] = 't',
    };
    put_escaped(b, s, n, short_escape, "0123456789ABCDEF");
}

void json_put_str(struct buf *b, const char *s) {
    if (!s) {
        buf_put(b, "null", 4);
        return;
    }
    json_put_strn(b, s, strlen(s));
}

void json_put_int(struct buf *b, int64_t v) {
    /* By hand: replies are full of integers and snprintf is slow at this. */
    char tmp[24], *p = tmp + sizeof tmp;
    uint64_t u = v < 0 ? 0 - (uint64_t)v : (uint64_t)v;
    do {
        *--p = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    if (v < 0) *--p = '-';
    buf_put(b, p, (size_t)(tmp + sizeof tmp - p));
}

void json_put_double(struct buf *b, double v) {
    if (!isfinite(v)) v = 0;
    /* A whole number below a million is what %.6g prints it as (a percent,
     * a count); -0 is "-0" there, so it takes the long way. */
    if (v > -1e6 && v < 1e6 && v == (double)(int64_t)v && !(v == 0 && signbit(v))) {
        json_put_int(b, (int64_t)v);
        return;
    }
    char tmp[32];
    int n = snprintf(tmp, sizeof tmp, "%.6g", v);
    buf_put(b, tmp, (size_t)n);
}

void json_put_bool(struct buf *b, bool v) {
    if (v)
        buf_put(b, "true", 4);
    else
        buf_put(b, "false", 5);
}

void json_put_time(struct buf *b, int64_t ms) {
    if (ms <= 0) {
        buf_put(b, "null", 4);
        return;
    }
    char tmp[TIME_RFC3339_LEN + 3];
    time_format_rfc3339(ms, tmp + 1);
    tmp[0] = tmp[TIME_RFC3339_LEN + 1] = '"';
    buf_put(b, tmp, TIME_RFC3339_LEN + 2);
}

void json_put_raw(struct buf *b, const char *json, const char *fallback) {
    buf_puts(b, json && *json ? json : fallback);
}

void json_put_key(struct buf *b, const char *key, bool first) {
    size_t n = strlen(key);
    buf_grow(b, n + 4);
    char *p = b->p + b->len;
    if (!first) *p++ = ',';
    *p++ = '"';
    memcpy(p, key, n);
    p += n;
    *p++ = '"';
    *p++ = ':';
    *p = '\0';
    b->len = (size_t)(p - b->p);
}
