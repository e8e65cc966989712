/*
 * key_table: see key_table.h.
 */
#include "key_table.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../common/xalloc.h"

/* The key as the table keeps it: the first KEY_TABLE_KEY_LEN bytes, zero-padded. */
static void key_pad(unsigned char out[KEY_TABLE_KEY_LEN], const void *key, size_t klen) {
    memset(out, 0, KEY_TABLE_KEY_LEN);
    memcpy(out, key, klen < KEY_TABLE_KEY_LEN ? klen : KEY_TABLE_KEY_LEN);
}

/* The link that points at the padded key's entry, or the NULL ending its chain. */
static struct key_entry **key_table_slot(struct key_table *t,
                                         const unsigned char key[KEY_TABLE_KEY_LEN]) {
    uint32_t h = 2166136261u; /* FNV-1a */
    for (int i = 0; i < KEY_TABLE_KEY_LEN; i++)
        h = (h ^ key[i]) * 16777619u;
    struct key_entry **pp = &t->bucket[h % t->nbuckets];
    while (*pp && memcmp((*pp)->key, key, KEY_TABLE_KEY_LEN) != 0)
        pp = &(*pp)->next;
    return pp;
}

void key_table_init(struct key_table *t, size_t nbuckets) {
    pthread_mutex_init(&t->lock, NULL);
    t->bucket = xcalloc(nbuckets, sizeof *t->bucket);
    t->nbuckets = nbuckets;
}

void key_table_release(struct key_table *t) {
    if (!t->bucket) return;
    for (size_t i = 0; i < t->nbuckets; i++) {
        while (t->bucket[i]) {
            struct key_entry *e = t->bucket[i];
            t->bucket[i] = e->next;
            free(e);
        }
    }
    free(t->bucket);
    t->bucket = NULL;
    t->nbuckets = 0;
    pthread_mutex_destroy(&t->lock);
}

void *key_table_find(struct key_table *t, const void *key, size_t klen) {
    unsigned char k[KEY_TABLE_KEY_LEN];
    key_pad(k, key, klen);
    return *key_table_slot(t, k);
}

void *key_table_add(struct key_table *t, const void *key, size_t klen, size_t size) {
    unsigned char k[KEY_TABLE_KEY_LEN];
    key_pad(k, key, klen);
    struct key_entry **pp = key_table_slot(t, k);
    struct key_entry *e = xcalloc(1, size);
    memcpy(e->key, k, KEY_TABLE_KEY_LEN);
    e->next = *pp; /* NULL: the key is not there */
    *pp = e;
    return e;
}

void key_table_remove(struct key_table *t, void *entry) {
    struct key_entry *e = entry;
    struct key_entry **pp = key_table_slot(t, e->key);
    if (*pp == e) *pp = e->next;
    free(e);
}

struct key_count {
    struct key_entry e;
    int64_t n;
};

bool key_count_take(struct key_table *t, const void *key, size_t klen, int max) {
    return key_count_take_n(t, key, klen, 1, max);
}

void key_count_give(struct key_table *t, const void *key, size_t klen) {
    key_count_give_n(t, key, klen, 1);
}

bool key_count_take_n(struct key_table *t, const void *key, size_t klen, int64_t n, int64_t max) {
    pthread_mutex_lock(&t->lock);
    struct key_count *c = key_table_find(t, key, klen);
    bool ok = !c || c->n + n <= max; /* none held: any n, so that one always goes */
    if (ok && !c) c = key_table_add(t, key, klen, sizeof *c);
    if (ok) c->n += n;
    pthread_mutex_unlock(&t->lock);
    return ok;
}

void key_count_give_n(struct key_table *t, const void *key, size_t klen, int64_t n) {
    pthread_mutex_lock(&t->lock);
    struct key_count *c = key_table_find(t, key, klen);
    if (c && (c->n -= n) <= 0) key_table_remove(t, c);
    pthread_mutex_unlock(&t->lock);
}
