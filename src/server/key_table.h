/*
 * key_table: a small chained hash of heap entries, each keyed by a short
 * byte string, with its lock, for the server's counters per token and per
 * client address: auth.c's rate buckets, conn_limit.c's open connections,
 * and (key_count_take/give) http.c's waiting requests, its replies' unsent
 * bytes and event_hub.c's open streams per token.
 *
 * An entry is its owner's struct with a struct key_entry as its first
 * member; the table allocates it (zeroed) on key_table_add and frees it on
 * key_table_remove or key_table_release. Keys are compared as
 * KEY_TABLE_KEY_LEN bytes, zero-padded. Threading: callers hold t->lock
 * around find, add, remove and their use of the entry.
 */
#ifndef TASKMILL_KEY_TABLE_H
#define TASKMILL_KEY_TABLE_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* A token id with its NUL, or an address: a family tag and 16 bytes. */
#define KEY_TABLE_KEY_LEN 17

struct key_entry {
    struct key_entry *next;
    unsigned char key[KEY_TABLE_KEY_LEN];
};

struct key_table {
    pthread_mutex_t lock;
    struct key_entry **bucket; /* NULL until key_table_init */
    size_t nbuckets;
};

void key_table_init(struct key_table *t, size_t nbuckets);
/* Frees every entry, the buckets and the lock; a table never initialised
 * (all zero) or released already is left as it is. */
void key_table_release(struct key_table *t);
/* The entry keyed by key[0..klen) (at most KEY_TABLE_KEY_LEN bytes count), or NULL. */
void *key_table_find(struct key_table *t, const void *key, size_t klen);
/* Adds a zeroed entry of `size` bytes (its struct key_entry first) keyed
 * by key[0..klen), which is not in the table yet; returns it. */
void *key_table_add(struct key_table *t, const void *key, size_t klen, size_t size);
/* Takes the entry out of the table and frees it. */
void key_table_remove(struct key_table *t, void *entry);

/* A count per key, under the table's lock (a table used for nothing else):
 * take counts one more for key[0..klen) and returns true, or returns
 * false when the key has `max` already; give counts one fewer, and the key
 * leaves the table at none. */
bool key_count_take(struct key_table *t, const void *key, size_t klen, int max);
void key_count_give(struct key_table *t, const void *key, size_t klen);
/* The same by n at once (bytes: http.c's replies not yet sent per token):
 * take adds n unless the key holds some already and would pass max (a key
 * that holds none takes any n, so that a single n above max is not
 * refused for ever). */
bool key_count_take_n(struct key_table *t, const void *key, size_t klen, int64_t n, int64_t max);
void key_count_give_n(struct key_table *t, const void *key, size_t klen, int64_t n);

#endif
