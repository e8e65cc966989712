/*
 * sse: an incremental parser of a Server-Sent Events stream (the WHATWG
 * "event stream interpretation"), used by tm_watch (watch.c) to follow
 * GET /v1/tasks/{id}/events.
 *
 * It never does I/O: bytes go in as they arrive, split anywhere (even
 * inside a CRLF), and each complete event or comment comes out through a
 * callback, so it can be unit-tested and fuzzed without a socket. Lines
 * end in LF, CR or CRLF; a leading BOM is skipped; `data:` lines join with
 * LF; an event with no data is not dispatched; `id:` persists across
 * events and counts once its event's blank line has come, dispatched or
 * not (last_id: the Last-Event-ID to resume from); an `id:` holding a NUL
 * is ignored; `retry:` with only digits sets retry_ms; other fields are
 * ignored. Lines and events are capped so a hostile stream cannot grow
 * memory without bound.
 *
 * Threading: one parser per stream, one thread at a time. Ownership: the
 * parser owns its buffers; what a callback sees is valid only during the
 * call. Out of memory aborts (xalloc).
 */
#ifndef TASKMILL_CLIENT_SSE_H
#define TASKMILL_CLIENT_SSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The largest line and the largest event's data, unless sse_parser_init is told otherwise. */
#define SSE_DEFAULT_MAX_BYTES (16u * 1024 * 1024)
/* The longest id kept; a longer id is ignored like one with a NUL. */
#define SSE_ID_MAX 128

/* sse_parser_feed's error: a line or an event went over max_bytes. */
#define SSE_ETOOBIG (-1)

enum sse_item_kind {
    SSE_ITEM_EVENT,   /* a dispatched event: event, data, last_id */
    SSE_ITEM_COMMENT, /* a line starting with ':', the colon (and one space) removed */
};

struct sse_item {
    enum sse_item_kind kind;
    const char *event; /* the event type; "message" when the event named none */
    const char *data;  /* NUL-terminated, data_len bytes (may hold NULs); comment text too */
    size_t data_len;
    const char *last_id; /* the stream's last event id so far ("" before any) */
};

typedef void (*sse_item_fn)(void *cls, const struct sse_item *it);

struct sse_parser {
    char *line; /* the line being read */
    size_t line_len, line_cap;
    char *data; /* the event's data so far, each line followed by LF */
    size_t data_len, data_cap;
    char event[64];               /* the event type field; "" when none */
    char id_buf[SSE_ID_MAX + 1];  /* the last `id:` line's value */
    char last_id[SSE_ID_MAX + 1]; /* id_buf as of the last blank line: the id to resume after */
    int64_t retry_ms;             /* the last valid `retry:`, or -1 */
    size_t max_bytes;
    bool skip_lf;   /* the previous byte was a CR: an LF next ends nothing */
    bool bom_done;  /* the first bytes were checked for a BOM */
    size_t bom_got; /* bytes of a BOM matched so far, while !bom_done */
    bool failed;    /* went over max_bytes; every later feed fails */
};

/* Sets up an empty parser; max_bytes 0 means SSE_DEFAULT_MAX_BYTES. */
void sse_parser_init(struct sse_parser *p, size_t max_bytes);
/* Frees the parser's buffers; it may be initialised again. */
void sse_parser_release(struct sse_parser *p);
/*
 * Parses the next `len` bytes of the stream, calling fn for each complete
 * event and comment in order. Returns 0, or SSE_ETOOBIG when a line or an
 * event's data went over max_bytes: the parser then stays failed (the
 * stream must be dropped). Items before the failure have been delivered.
 */
int sse_parser_feed(struct sse_parser *p, const char *buf, size_t len, sse_item_fn fn, void *cls);

#endif
