/*
 * progress_line: the parser of the lines a command run by `taskmill work`
 * prints to report progress (the protocol is in docs/cli.md):
 *
 *   progress 0.4 Encoding      progress 40% [message]
 *   items 3/10 [message]       item NAME PROGRESS [message]
 *   message INFO|WARN|ERROR text
 *   result {json}              attribute KEY VALUE
 *
 * A pure function from bytes to a struct: no I/O, no allocation, no
 * locale, so it can be unit-tested and fuzzed. The struct's slices point
 * into the caller's bytes. Any line that is not a valid protocol line is
 * PROGRESS_LINE_TEXT (the task's log); `error` then says why a line that
 * began with a keyword was refused.
 */
#ifndef TASKMILL_PROGRESS_LINE_H
#define TASKMILL_PROGRESS_LINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum progress_line_kind {
    PROGRESS_LINE_TEXT,      /* text: the whole line */
    PROGRESS_LINE_PROGRESS,  /* ratio; text: the message (may be empty) */
    PROGRESS_LINE_ITEMS,     /* processed, total; text: the message */
    PROGRESS_LINE_ITEM,      /* name, ratio; text: the message */
    PROGRESS_LINE_MESSAGE,   /* level; text */
    PROGRESS_LINE_RESULT,    /* text: the JSON, not yet parsed */
    PROGRESS_LINE_ATTRIBUTE, /* name: the key; text: the value (JSON if it parses, else a string) */
};

/* The most bytes an attribute's KEY may have; a longer one, or one that is not UTF-8 (or
 * holds a NUL), makes the line TEXT with its `error`, as any malformed line. */
#define PROGRESS_ATTRIBUTE_KEY_MAX 256

/* A borrowed run of bytes; not NUL-terminated. */
struct progress_slice {
    const char *p;
    size_t n;
};

struct progress_line {
    enum progress_line_kind kind;
    const char *error;        /* static text, or NULL */
    double ratio;             /* 0..1; a percent is divided by 100 */
    int64_t processed, total; /* items: 0 <= processed <= total */
    char level[6];            /* "INFO", "WARN" or "ERROR" */
    struct progress_slice name;
    struct progress_slice text;
};

/*
 * Parses one line of `len` bytes (a trailing "\n" or "\r\n" is ignored)
 * into *out. Never fails: a line that is not a protocol line is TEXT.
 */
void progress_line_parse(const char *line, size_t len, struct progress_line *out);

#endif
