/*
 * buf: a growable byte buffer, and the JSON writer built on it.
 *
 * Hot replies (a task, a list) are written straight into a buf instead of
 * being built as a jansson tree and dumped, which halves their CPU cost.
 * A buf is embedded: buf_init, then buf_release (or buf_detach to take the
 * bytes). The contents are always NUL-terminated. Not thread-safe; one
 * owner at a time. Growth aborts on out of memory.
 */
#ifndef TASKMILL_BUF_H
#define TASKMILL_BUF_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

struct buf {
    char *p;
    size_t len;
    size_t cap;
};

void buf_init(struct buf *b);
void buf_release(struct buf *b);
/* Empties the buffer but keeps its memory. */
void buf_clear(struct buf *b);
/* Returns the bytes (caller frees) and leaves the buffer empty. */
char *buf_detach(struct buf *b);
void buf_grow(struct buf *b, size_t extra);
/* As buf_grow, but an empty buffer is given just what it asks for. */
void buf_reserve(struct buf *b, size_t extra);
void buf_put_grow(struct buf *b, const void *p, size_t n);
/* Appends n bytes. Inline: a reply or an event is written in many short
 * pieces, and most fit where the buffer already has room. */
static inline void buf_put(struct buf *b, const void *p, size_t n) {
    if (b->len + n >= b->cap) {
        buf_put_grow(b, p, n);
        return;
    }
    memcpy(b->p + b->len, p, n);
    b->len += n;
    b->p[b->len] = '\0';
}
/* Appends a string literal, its length known when compiled. */
#define buf_put_lit(b, lit) buf_put((b), "" lit, sizeof(lit) - 1)
void buf_puts(struct buf *b, const char *s);
void buf_putc(struct buf *b, char c);
void buf_printf(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* JSON writing: values only; the caller writes the punctuation. */
void json_put_str(struct buf *b, const char *s); /* "s" escaped, or null for NULL */
void json_put_strn(struct buf *b, const char *s, size_t n);
/* As jansson's json_dumps writes a string: \b and \f too, \u00XX in upper case. */
void json_put_strn_jansson(struct buf *b, const char *s, size_t n);
void json_put_int(struct buf *b, int64_t v);
void json_put_double(struct buf *b, double v);
void json_put_bool(struct buf *b, bool v);
void json_put_time(struct buf *b, int64_t ms); /* RFC 3339 string, or null for 0 */
void json_put_raw(struct buf *b, const char *json, const char *fallback); /* verbatim JSON */
/* Writes "key": with a leading comma unless first. */
void json_put_key(struct buf *b, const char *key, bool first);

#endif
