/*
 * sse: the Server-Sent Events parser (see sse.h for the contract).
 *
 * Bytes collect in `line` until a line ends; a finished line is either a
 * comment (handed out at once), a field (folded into the event being
 * built), or empty (the event is dispatched). The only state that spans
 * calls besides the buffers is `skip_lf`, so that a CRLF split between two
 * feeds ends one line, not two, and the BOM matcher at the very start.
 * Pure: no I/O, no globals.
 */
#include "sse.h"

#include <stdlib.h>
#include <string.h>

#include "../common/xalloc.h"

static const unsigned char sse_bom[3] = {0xef, 0xbb, 0xbf};

void sse_parser_init(struct sse_parser *p, size_t max_bytes) {
    memset(p, 0, sizeof *p);
    p->retry_ms = -1;
    p->max_bytes = max_bytes ? max_bytes : SSE_DEFAULT_MAX_BYTES;
}

void sse_parser_release(struct sse_parser *p) {
    free(p->line);
    free(p->data);
    memset(p, 0, sizeof *p);
}

/* Appends n bytes to a growable buffer, keeping room for a NUL; -1 past max. */
static int sse_append(char **buf, size_t *len, size_t *cap, const char *s, size_t n, size_t max) {
    if (n > max || *len > max - n) return -1;
    if (*len + n + 1 > *cap) {
        size_t want = *cap ? *cap : 256;
        while (want < *len + n + 1)
            want *= 2;
        *buf = xrealloc(*buf, want);
        *cap = want;
    }
    memcpy(*buf + *len, s, n);
    *len += n;
    (*buf)[*len] = '\0';
    return 0;
}

static bool sse_field_is(const char *f, size_t n, const char *name) {
    return n == strlen(name) && memcmp(f, name, n) == 0;
}

static void sse_dispatch(struct sse_parser *p, sse_item_fn fn, void *cls) {
    memcpy(p->last_id, p->id_buf, sizeof p->last_id);
    if (p->data_len == 0) {
        p->event[0] = '\0'; /* an event with no data is dropped, its type too */
        return;
    }
    p->data[--p->data_len] = '\0'; /* the LF after the last data line */
    struct sse_item it = {
        .kind = SSE_ITEM_EVENT,
        .event = p->event[0] ? p->event : "message",
        .data = p->data,
        .data_len = p->data_len,
        .last_id = p->last_id,
    };
    fn(cls, &it);
    p->data_len = 0;
    p->event[0] = '\0';
}

/* Handles one finished line (without its end); -1 when the event grows past max. */
static int sse_line(struct sse_parser *p, const char *s, size_t n, sse_item_fn fn, void *cls) {
    if (n == 0) {
        sse_dispatch(p, fn, cls);
        return 0;
    }
    if (s[0] == ':') {
        size_t skip = n > 1 && s[1] == ' ' ? 2 : 1;
        struct sse_item it = {.kind = SSE_ITEM_COMMENT,
                              .event = "",
                              .data = s + skip,
                              .data_len = n - skip,
                              .last_id = p->last_id};
        fn(cls, &it);
        return 0;
    }
    const char *colon = memchr(s, ':', n);
    size_t flen = colon ? (size_t)(colon - s) : n;
    const char *v = colon ? colon + 1 : s + n;
    size_t vlen = colon ? n - flen - 1 : 0;
    if (vlen > 0 && v[0] == ' ') {
        v++;
        vlen--;
    }
    if (sse_field_is(s, flen, "data")) {
        if (sse_append(&p->data, &p->data_len, &p->data_cap, v, vlen, p->max_bytes)) return -1;
        if (sse_append(&p->data, &p->data_len, &p->data_cap, "\n", 1, p->max_bytes)) return -1;
    } else if (sse_field_is(s, flen, "event")) {
        size_t k = vlen < sizeof p->event - 1 ? vlen : sizeof p->event - 1;
        memcpy(p->event, v, k);
        p->event[k] = '\0';
    } else if (sse_field_is(s, flen, "id")) {
        if (vlen <= SSE_ID_MAX && !memchr(v, '\0', vlen)) {
            memcpy(p->id_buf, v, vlen);
            p->id_buf[vlen] = '\0';
        }
    } else if (sse_field_is(s, flen, "retry")) {
        int64_t ms = 0;
        size_t i = 0;
        for (; i < vlen && v[i] >= '0' && v[i] <= '9'; i++)
            if (ms < INT64_MAX / 100) ms = ms * 10 + (v[i] - '0');
        if (vlen > 0 && i == vlen) p->retry_ms = ms;
    }
    return 0;
}

/* Ends the current line; -1 on overflow. */
static int sse_end_line(struct sse_parser *p, sse_item_fn fn, void *cls) {
    int rc = sse_line(p, p->line ? p->line : "", p->line_len, fn, cls);
    p->line_len = 0;
    return rc;
}

static int sse_fail(struct sse_parser *p) {
    p->failed = true;
    return SSE_ETOOBIG;
}

int sse_parser_feed(struct sse_parser *p, const char *buf, size_t len, sse_item_fn fn, void *cls) {
    if (p->failed) return SSE_ETOOBIG;
    size_t i = 0;
    /* A UTF-8 BOM may open the stream; its bytes can arrive one feed at a time. */
    while (!p->bom_done && i < len) {
        if ((unsigned char)buf[i] == sse_bom[p->bom_got]) {
            i++;
            if (++p->bom_got == sizeof sse_bom) p->bom_done = true;
            continue;
        }
        p->bom_done = true;
        /* Not a BOM after all: the bytes matched so far are the line's start. */
        if (sse_append(&p->line, &p->line_len, &p->line_cap, (const char *)sse_bom, p->bom_got,
                       p->max_bytes))
            return sse_fail(p);
    }
    while (i < len) {
        char ch = buf[i];
        if (p->skip_lf) {
            p->skip_lf = false;
            if (ch == '\n') {
                i++;
                continue;
            }
        }
        if (ch == '\r' || ch == '\n') {
            p->skip_lf = ch == '\r';
            i++;
            if (sse_end_line(p, fn, cls)) return sse_fail(p);
            continue;
        }
        /* Take the whole run up to the next line end at once. */
        size_t j = i;
        while (j < len && buf[j] != '\r' && buf[j] != '\n')
            j++;
        if (sse_append(&p->line, &p->line_len, &p->line_cap, buf + i, j - i, p->max_bytes))
            return sse_fail(p);
        i = j;
    }
    return 0;
}
