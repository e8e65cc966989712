/*
 * xalloc: allocation that never returns NULL.
 *
 * Every module allocates through these. Out of memory is not an error a
 * request can recover from, so it prints one line to stderr and aborts
 * (OpenBSD's xmalloc). Thread-safe; callers own what they get and free it
 * with free().
 */
#ifndef TASKMILL_XALLOC_H
#define TASKMILL_XALLOC_H

#include <stddef.h>

void *xmalloc(size_t n);
void *xcalloc(size_t count, size_t n);
void *xrealloc(void *p, size_t n);
/* Copies a NUL-terminated string; NULL gives NULL. */
char *xstrdup(const char *s);
/* Copies n bytes and adds a NUL. */
char *xstrndup(const char *s, size_t n);

#endif
