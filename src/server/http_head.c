/*
 * http_head: see http_head.h. RFC 9112's request-line and field-line
 * grammar, narrowed: where the RFC allows more than the plain form (obs-fold,
 * bare LF, absolute-form targets, other versions), the answer is HEAD_PASS.
 */
#include "http_head.h"

#include <string.h>
#include <strings.h>

/* tchar of RFC 9110 section 5.6.2. */
static bool head_is_tchar(unsigned char c) {
    if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) return true;
    return c && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

/* name: a literal, so sizeof gives its length without a strlen. */
#define head_name_is(p, s, name) \
    ((s).len == sizeof(name) - 1 && strncasecmp((p) + (s).off, name, (s).len) == 0)

/* Whether a Connection value's options (RFC 9110 7.6.1: a comma-separated
 * list, white space around each element) include "close". An element with
 * white space inside ("a close") is not "close", as libmicrohttpd reads it. */
static bool head_says_close(const char *v, size_t n) {
    for (size_t i = 0; i <= n;) {
        size_t end = i;
        while (end < n && v[end] != ',')
            end++;
        size_t s = i, e = end;
        while (s < e && (v[s] == ' ' || v[s] == '\t'))
            s++;
        while (e > s && (v[e - 1] == ' ' || v[e - 1] == '\t'))
            e--;
        if (e - s == 5 && strncasecmp(v + s, "close", 5) == 0) return true;
        i = end + 1;
    }
    return false;
}

/* Reads the request line at p[0..end) (end at its CR). */
static enum http_head_result head_request_line(const char *p, size_t end, struct http_head *h) {
    size_t sp1 = 0;
    while (sp1 < end && p[sp1] != ' ')
        sp1++;
    if ((sp1 == 3 && memcmp(p, "GET", 3) == 0) || (sp1 == 4 && memcmp(p, "POST", 4) == 0))
        h->method = (struct http_span){0, sp1};
    else
        return HEAD_PASS;
    size_t t = sp1 + 1, sp2 = t;
    while (sp2 < end && p[sp2] != ' ')
        sp2++;
    if (sp2 >= end || sp2 == t || p[t] != '/') return HEAD_PASS;
    for (size_t i = t; i < sp2; i++) {
        unsigned char c = (unsigned char)p[i];
        if (c <= 0x20 || c >= 0x7f || c == '%' || c == '?' || c == '#' || c == '+')
            return HEAD_PASS;
    }
    h->path = (struct http_span){t, sp2 - t};
    if (end - sp2 - 1 != 8 || memcmp(p + sp2 + 1, "HTTP/1.1", 8) != 0) return HEAD_PASS;
    return HEAD_OK;
}

/* Reads one field line p[s..e) (e at its CR) into h. */
static enum http_head_result head_field(const char *p, size_t s, size_t e, struct http_head *h,
                                        size_t body_max, int *ncl, bool *host) {
    size_t colon = s;
    while (colon < e && head_is_tchar((unsigned char)p[colon]))
        colon++;
    if (colon == s || colon >= e || p[colon] != ':') return HEAD_PASS;
    size_t vs = colon + 1, ve = e;
    for (size_t i = vs; i < ve; i++) {
        unsigned char c = (unsigned char)p[i];
        if ((c < 0x20 && c != '\t') || c >= 0x7f) return HEAD_PASS;
    }
    while (vs < ve && (p[vs] == ' ' || p[vs] == '\t'))
        vs++;
    /* Trailing white space is not the value's (RFC 9112 5), but
     * libmicrohttpd 0.9.75 keeps it ("Host: x " is "x "): such a request
     * is its, so that it means the same on both paths. */
    if (ve > vs && (p[ve - 1] == ' ' || p[ve - 1] == '\t')) return HEAD_PASS;
    if (h->nfields == HTTP_HEAD_FIELDS_MAX) return HEAD_PASS;
    struct http_span name = {s, colon - s}, value = {vs, ve - vs};
    h->name[h->nfields] = name;
    h->value[h->nfields] = value;
    h->nfields++;
    if (head_name_is(p, name, "Transfer-Encoding") || head_name_is(p, name, "Expect") ||
        head_name_is(p, name, "Upgrade"))
        return HEAD_PASS;
    if (head_name_is(p, name, "Host")) { /* two are libmicrohttpd's to refuse */
        if (*host) return HEAD_PASS;
        *host = true;
    }
    if (head_name_is(p, name, "Connection") && head_says_close(p + vs, ve - vs)) h->close = true;
    if (head_name_is(p, name, "Content-Length")) {
        if (++*ncl > 1 || value.len == 0 || value.len > 9) return HEAD_PASS;
        size_t v = 0;
        for (size_t i = vs; i < ve; i++) {
            if (p[i] < '0' || p[i] > '9') return HEAD_PASS;
            v = v * 10 + (size_t)(p[i] - '0');
        }
        if (v > body_max) return HEAD_PASS;
        h->content_length = v;
    }
    return HEAD_OK;
}

enum http_head_result http_head_parse(const char *p, size_t n, size_t head_max, size_t body_max,
                                      struct http_head *h) {
    memset(h, 0, sizeof *h);
    int ncl = 0;
    bool host = false;
    /* The head as libmicrohttpd's side measures it against head_max
     * (http_framing_refused: the request line, and each field as
     * "Name: value" CRLF), so that a head near the limit gets the same
     * answer on both paths. */
    size_t counted = 0;
    /* Line by line: each ends in CRLF, with no CR before it (no bare LF,
     * no bare CR); an empty line ends the head. Each line is read as it
     * comes, so that a head that is not the fast path's is handed on when
     * its first such line is in, not when the head is: libmicrohttpd
     * answers a bad line at once, and a client may send no more. */
    size_t lim = n < head_max ? n : head_max, at = 0;
    for (;;) {
        const char *nl = memchr(p + at, '\n', lim - at);
        if (!nl) {
            /* No line end yet: a CR before the limit not followed by LF is
             * bare already. */
            const char *cr = memchr(p + at, '\r', lim - at);
            if (cr && cr + 1 < p + lim) return HEAD_PASS;
            return n >= head_max ? HEAD_PASS : HEAD_PARTIAL;
        }
        size_t e = (size_t)(nl - p); /* the LF */
        if (e == at || p[e - 1] != '\r' || memchr(p + at, '\r', e - 1 - at)) return HEAD_PASS;
        size_t cr = e - 1;
        if (at == 0) { /* the request line; a head that starts with a blank line is passed on */
            if (cr == 0 || head_request_line(p, cr, h) != HEAD_OK) return HEAD_PASS;
            counted = h->method.len + h->path.len + 12;
        } else if (cr == at) { /* the empty line */
            h->head_len = e + 1;
            return host && counted <= head_max ? HEAD_OK : HEAD_PASS;
        } else {
            if (head_field(p, at, cr, h, body_max, &ncl, &host) != HEAD_OK) return HEAD_PASS;
            counted += h->name[h->nfields - 1].len + h->value[h->nfields - 1].len + 4;
        }
        at = e + 1;
    }
}
