/*
 * id: task ids and secrets.
 *
 * A task id is 32 lowercase hex characters: a 48-bit millisecond clock then
 * 80 random bits, so ids sort by creation time. Within one process ids are
 * strictly increasing even inside one millisecond (the random part is
 * incremented), which makes "ORDER BY id" a stable FIFO. Thread-safe.
 */
#ifndef TASKMILL_ID_H
#define TASKMILL_ID_H

#include <stdbool.h>
#include <stddef.h>

#define ID_LEN 32

/* Writes a new id and a NUL into out. */
void id_new(char out[ID_LEN + 1]);
/* Writes 32 hex characters of fresh randomness (a lease token, a secret). */
void id_random_hex(char out[ID_LEN + 1]);
/* Fills p with n cryptographically random bytes; aborts if the kernel cannot. */
void id_random_bytes(void *p, size_t n);
bool id_is_valid(const char *s);

#endif
