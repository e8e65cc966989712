/*
 * http_head: see http_head.h. RFC 9112's request-line and field-line
 * grammar, narrowed: where the RFC allows more than the plain form (obs-fold,
 * bare LF, absolute-form targets, other versions), the answer is HEAD_PASS;
 * a control character in a field value is HEAD_BAD.
 */
#include "http_head.h"

#include <ctype.h>
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

/* What one line makes of a head: it may be part of a plain one; it is
 * not (the head is passed on once all of it is in, unless a later line is
 * bad); it holds a control character (HEAD_BAD); or it is to be passed on
 * now (libmicrohttpd answers it at once). */
enum head_line { LINE_PLAIN, LINE_OTHER, LINE_BAD, LINE_PASS };

/* Reads the request line at p[0..end) (end at its CR): a token, a target
 * of bytes above space but DEL, and HTTP/1.x, else LINE_PASS (libmicrohttpd
 * answers a malformed line, or another version, at once). */
static enum head_line head_request_line(const char *p, size_t end, struct http_head *h) {
    size_t sp1 = 0;
    while (sp1 < end && head_is_tchar((unsigned char)p[sp1]))
        sp1++;
    if (sp1 == 0 || sp1 >= end || p[sp1] != ' ') return LINE_PASS;
    h->method = (struct http_span){0, sp1};
    bool plain = (sp1 == 3 && memcmp(p, "GET", 3) == 0) || (sp1 == 4 && memcmp(p, "POST", 4) == 0);
    size_t t = sp1 + 1, sp2 = t;
    for (; sp2 < end && p[sp2] != ' '; sp2++) {
        unsigned char c = (unsigned char)p[sp2];
        if (c < 0x20 || c == 0x7f) return LINE_PASS;
        if (c > 0x7f || c == '%' || c == '?' || c == '#' || c == '+') plain = false;
    }
    if (sp2 >= end || sp2 == t) return LINE_PASS;
    h->target = (struct http_span){t, sp2 - t};
    const char *v = p + sp2 + 1;
    if (end - sp2 - 1 != 8 || memcmp(v, "HTTP/1.", 7) != 0 || v[7] < '0' || v[7] > '9')
        return LINE_PASS;
    if (p[t] != '/' || v[7] != '1') plain = false;
    if (plain) h->path = h->target;
    return plain ? LINE_PLAIN : LINE_OTHER;
}

/* Whether p[s..e) holds a control character other than tab (RFC 9110 5.5). */
static bool head_has_ctl(const char *p, size_t s, size_t e) {
    for (size_t i = s; i < e; i++) {
        unsigned char c = (unsigned char)p[i];
        if ((c < 0x20 && c != '\t') || c == 0x7f) return true;
    }
    return false;
}

/* Reads one field line p[s..e) (e at its CR) into h; *last is the field
 * before (a folded line's). */
static enum head_line head_field(const char *p, size_t s, size_t e, struct http_head *h,
                                 size_t body_max, int *ncl, bool *host, struct http_span *last) {
    size_t colon = s;
    while (colon < e && head_is_tchar((unsigned char)p[colon]))
        colon++;
    if (colon == s && (p[s] == ' ' || p[s] == '\t')) {
        /* obs-fold: libmicrohttpd appends the line to the name of the field
         * before ("X-A: 1" CRLF " 2" is "X-A2: 1"). Before any field it is
         * a name that is not a token, refused there. */
        if (!last->len) return LINE_PASS;
        h->bad = head_has_ctl(p, s, e) ? HEAD_BAD_CTL : HEAD_BAD_FOLD;
        h->bad_name = *last;
        return LINE_BAD;
    }
    if (colon == s || colon >= e || p[colon] != ':') {
        /* libmicrohttpd's copy of the line ends at a NUL: one before the
         * colon makes it a line without one, or, at its start, the empty
         * line that ends the head (what follows would be read as the
         * body, or the next request). */
        const char *c = memchr(p + s, ':', e - s);
        const char *nul = memchr(p + s, '\0', (size_t)((c ? c : p + e) - (p + s)));
        if (nul) {
            h->bad = HEAD_BAD_NUL_NAME;
            h->bad_name = (struct http_span){s, (size_t)(nul - (p + s))};
            return LINE_BAD;
        }
        /* A name that is not a token is refused on libmicrohttpd's side
         * whatever its value; a line with no colon is answered there at
         * once. */
        return c ? LINE_OTHER : LINE_PASS;
    }
    struct http_span name = {s, colon - s};
    *last = name;
    size_t vs = colon + 1, ve = e;
    bool plain = true; /* no byte above 0x7f: one pass for that and the controls */
    for (size_t i = vs; i < ve; i++) {
        unsigned char c = (unsigned char)p[i];
        if ((c < 0x20 && c != '\t') || c == 0x7f) {
            h->bad = HEAD_BAD_CTL;
            h->bad_name = name;
            return LINE_BAD;
        }
        if (c > 0x7f) plain = false;
    }
    while (vs < ve && (p[vs] == ' ' || p[vs] == '\t'))
        vs++;
    /* Trailing white space is not the value's (RFC 9112 5), but
     * libmicrohttpd 0.9.75 keeps it ("Host: x " is "x "): such a request
     * is its, so that it means the same on both paths. */
    if (ve > vs && (p[ve - 1] == ' ' || p[ve - 1] == '\t')) return LINE_OTHER;
    if (!plain || h->nfields == HTTP_HEAD_FIELDS_MAX) return LINE_OTHER;
    struct http_span value = {vs, ve - vs};
    h->name[h->nfields] = name;
    h->value[h->nfields] = value;
    h->nfields++;
    if (head_name_is(p, name, "Transfer-Encoding") || head_name_is(p, name, "Expect") ||
        head_name_is(p, name, "Upgrade"))
        return LINE_OTHER;
    if (head_name_is(p, name, "Host")) { /* two, or one not a host, are libmicrohttpd's to refuse */
        if (*host || !http_host_valid(p + vs, ve - vs)) return LINE_OTHER;
        *host = true;
    }
    if (head_name_is(p, name, "Connection") && head_says_close(p + vs, ve - vs)) h->close = true;
    if (head_name_is(p, name, "Content-Length")) {
        if (++*ncl > 1 || value.len == 0 || value.len > 9) return LINE_OTHER;
        size_t v = 0;
        for (size_t i = vs; i < ve; i++) {
            if (p[i] < '0' || p[i] > '9') return LINE_OTHER;
            v = v * 10 + (size_t)(p[i] - '0');
        }
        if (v > body_max) return LINE_OTHER;
        h->content_length = v;
    }
    return LINE_PLAIN;
}

enum http_head_result http_head_parse(const char *p, size_t n, size_t head_max, size_t body_max,
                                      struct http_head *h) {
    memset(h, 0, sizeof *h);
    int ncl = 0;
    bool host = false, plain = true;
    struct http_span last = {0, 0};
    /* The head as libmicrohttpd's side measures it against head_max
     * (http_framing_refused: the request line, and each field as
     * "Name: value" CRLF), so that a head near the limit gets the same
     * answer on both paths. */
    size_t counted = 0;
    /* Line by line: each ends in CRLF, with no CR before it (no bare LF,
     * no bare CR); an empty line ends the head. Each line is read as it
     * comes, so that a head with a line libmicrohttpd answers at once is
     * handed on when that line is in, not when the head is: a client may
     * send no more. */
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
        enum head_line line;
        if (at == 0) { /* the request line; a head that starts with a blank line is passed on */
            if (cr == 0) return HEAD_PASS;
            line = head_request_line(p, cr, h);
            counted = h->method.len + h->path.len + 12;
        } else if (cr == at) { /* the empty line */
            h->head_len = e + 1;
            return plain && host && counted <= head_max ? HEAD_OK : HEAD_PASS;
        } else {
            line = head_field(p, at, cr, h, body_max, &ncl, &host, &last);
            if (line == LINE_PLAIN)
                counted += h->name[h->nfields - 1].len + h->value[h->nfields - 1].len + 4;
        }
        if (line == LINE_PASS) return HEAD_PASS;
        if (line == LINE_BAD) return HEAD_BAD;
        if (line == LINE_OTHER) plain = false;
        at = e + 1;
    }
}

bool http_host_valid(const char *s, size_t n) {
    size_t i = 0;
    if (n && s[0] == '[') { /* an IP literal: what inet_pton(AF_INET6) may take */
        for (i = 1; i < n && s[i] != ']'; i++)
            if (!isxdigit((unsigned char)s[i]) && s[i] != ':' && s[i] != '.') return false;
        if (i == n || i == 1) return false;
        i++;
    } else { /* a reg-name: unreserved, %-escapes, sub-delims */
        for (; i < n && s[i] != ':'; i++) {
            unsigned char c = (unsigned char)s[i];
            if (!isalnum(c) && !(c && strchr("-._~%!$&'()*+,;=", c))) return false;
        }
        if (i == 0) return false;
    }
    if (i == n) return true;
    if (s[i] != ':') return false;
    for (i++; i < n; i++)
        if (!isdigit((unsigned char)s[i])) return false;
    return true;
}
