/*
 * store_cache: tasks as a reader rendered them, kept for the next read of
 * the same task (store_task_render; docs/storage.md, "The read cache").
 *
 * Only a store with one writer keeps it (SQLite), for then the writer sees
 * every change. It forgets the tasks a batch changed twice
 * (store_cache_forget): just before the commit, and just after it, before
 * the batch's replies and events go out. A reader that missed reads the
 * task from the database and renders it; it keeps the bytes only if no
 * change to that task was forgotten since it began and none is being
 * committed, which the ring of the last forgotten ids tells (a read that
 * overlaps more changes than the ring holds keeps nothing). So from the
 * moment a commit is visible in the database until its second forget no
 * render of the task is kept at all, and after it only renders read after
 * the commit: a read by id never returns an older state than a list read
 * at the same moment would.
 *
 * Two-way: an id hashes to a set of two slots; a new entry takes a free
 * slot, or the one read least lately. One lock: a hit copies a few hundred
 * bytes under it.
 */
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../common/xalloc.h"
#include "store_int.h"

#define CACHE_SETS      (1u << 16) /* of 2 slots */
#define CACHE_RING      1024
#define CACHE_ENTRY_MAX (64 * 1024) /* larger renders are not kept */

struct cache_entry {
    char id[ID_LEN + 1];
    const void *kind; /* the render function */
    char *ns;         /* the task's namespace (in the same allocation) */
    size_t size;      /* of the allocation */
    uint64_t used;    /* the cache's clock when it was last read */
    size_t len;
    char data[];
};

struct store_cache {
    pthread_mutex_t lock;
    size_t max_bytes, bytes;
    struct cache_entry **slot;   /* set i: slot[2i], slot[2i+1] */
    uint64_t clock;              /* reads so far */
    uint64_t gen;                /* ids forgotten so far */
    uint64_t pending;            /* gen when the commit now under way was forgotten; or none */
    uint64_t ring[CACHE_RING];   /* the hash of the id forgotten as gen % CACHE_RING */
    uint64_t hits, misses, kept; /* kept: entries now */
};

static uint64_t cache_hash(const char *id) {
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (const char *p = id; *p; p++)
        h = (h ^ (unsigned char)*p) * 1099511628211ull;
    return h;
}

struct store_cache *store_cache_new(size_t max_bytes) {
    struct store_cache *c = xcalloc(1, sizeof *c);
    pthread_mutex_init(&c->lock, NULL);
    c->max_bytes = max_bytes;
    c->slot = xcalloc(2 * (size_t)CACHE_SETS, sizeof *c->slot);
    c->pending = UINT64_MAX;
    return c;
}

static void cache_drop(struct store_cache *c, struct cache_entry **at) {
    if (!*at) return;
    c->bytes -= (*at)->size;
    c->kept--;
    free(*at);
    *at = NULL;
}

void store_cache_free(struct store_cache *c) {
    if (!c) return;
    for (size_t i = 0; i < 2 * (size_t)CACHE_SETS; i++)
        free(c->slot[i]);
    free(c->slot);
    pthread_mutex_destroy(&c->lock);
    free(c);
}

/* The slot of set h that holds id, or NULL. */
static struct cache_entry **cache_find(struct store_cache *c, uint64_t h, const char *id) {
    struct cache_entry **set = &c->slot[2 * (h % CACHE_SETS)];
    for (int i = 0; i < 2; i++)
        if (set[i] && strcmp(set[i]->id, id) == 0) return &set[i];
    return NULL;
}

bool store_cache_get(struct store_cache *c, const char *ns, const char *id, const void *kind,
                     struct buf *out, uint64_t *gen) {
    uint64_t h = cache_hash(id);
    pthread_mutex_lock(&c->lock);
    struct cache_entry **at = cache_find(c, h, id);
    struct cache_entry *e = at ? *at : NULL;
    bool hit = e && e->kind == kind && (!ns || strcmp(e->ns, ns) == 0);
    if (hit) {
        buf_put(out, e->data, e->len);
        e->used = ++c->clock;
        c->hits++;
    } else {
        c->misses++;
    }
    *gen = c->gen;
    pthread_mutex_unlock(&c->lock);
    return hit;
}

void store_cache_put(struct store_cache *c, uint64_t gen, const char *ns, const char *id,
                     const void *kind, const char *data, size_t len) {
    if (len > CACHE_ENTRY_MAX) return;
    uint64_t h = cache_hash(id);
    size_t nslen = strlen(ns) + 1;
    struct cache_entry *e = xmalloc(sizeof *e + len + nslen);
    memcpy(e->id, id, sizeof e->id);
    e->kind = kind;
    e->size = sizeof *e + len + nslen;
    e->len = len;
    memcpy(e->data, data, len);
    e->ns = e->data + len;
    memcpy(e->ns, ns, nslen);
    pthread_mutex_lock(&c->lock);
    /* Changed since the read began, or being committed (or too much changed
     * to tell)? */
    if (c->pending < gen) gen = c->pending;
    bool stale = c->gen - gen > CACHE_RING;
    for (uint64_t g = gen; g < c->gen && !stale; g++)
        stale = c->ring[g % CACHE_RING] == h;
    struct cache_entry **at = cache_find(c, h, id);
    if (!at) { /* a free slot of the set, else the one read least lately */
        struct cache_entry **set = &c->slot[2 * (h % CACHE_SETS)];
        at = !set[0] || (set[1] && set[0]->used <= set[1]->used) ? &set[0] : &set[1];
    }
    size_t had = *at ? (*at)->size : 0;
    if (!stale && c->bytes - had + e->size <= c->max_bytes) {
        cache_drop(c, at);
        e->used = c->clock;
        *at = e;
        c->bytes += e->size;
        c->kept++;
        e = NULL;
    }
    pthread_mutex_unlock(&c->lock);
    free(e);
}

void store_cache_forget(struct store_cache *c, const struct store_change *changed, size_t n,
                        bool committing) {
    if (!c) return;
    pthread_mutex_lock(&c->lock);
    if (!committing)
        c->pending = UINT64_MAX;
    else if (c->pending == UINT64_MAX)
        c->pending = c->gen;
    for (size_t i = 0; i < n; i++) {
        uint64_t h = cache_hash(changed[i].id);
        struct cache_entry **at = cache_find(c, h, changed[i].id);
        if (at) cache_drop(c, at);
        c->ring[c->gen++ % CACHE_RING] = h;
    }
    pthread_mutex_unlock(&c->lock);
}

void store_cache_stats(struct store_cache *c, uint64_t *hits, uint64_t *misses, uint64_t *entries,
                       uint64_t *bytes) {
    if (!c) return;
    pthread_mutex_lock(&c->lock);
    *hits = c->hits;
    *misses = c->misses;
    *entries = c->kept;
    *bytes = c->bytes;
    pthread_mutex_unlock(&c->lock);
}
