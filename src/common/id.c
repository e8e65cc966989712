/*
 * id: see id.h. Randomness comes from getrandom(2). The last id handed out
 * is kept under a mutex so that ids from one process never go backwards.
 */
#include "id.h"

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "timeutil.h"

static pthread_mutex_t id_lock = PTHREAD_MUTEX_INITIALIZER;
static unsigned char id_last[16];
/* Task ids' random bits, drawn from the kernel 400 ids at a time rather
 * than one getrandom call per id (a submit's one system call that is not
 * I/O). Not for secrets: those take id_random_bytes directly. */
static unsigned char id_pool[4000];
static size_t id_pool_left;

void id_random_bytes(void *p, size_t n) {
    unsigned char *q = p;
    while (n > 0) {
        ssize_t got = getrandom(q, n, 0);
        if (got < 0) {
            perror("taskmill: getrandom");
            abort();
        }
        q += got;
        n -= (size_t)got;
    }
}

static void id_hex(const unsigned char bytes[16], char out[ID_LEN + 1]) {
    static const char hex[] = "0123456789abcdef";
    for (int i = 0; i < 16; i++) {
        out[2 * i] = hex[bytes[i] >> 4];
        out[2 * i + 1] = hex[bytes[i] & 15];
    }
    out[ID_LEN] = '\0';
}

void id_new(char out[ID_LEN + 1]) {
    unsigned char b[16];
    uint64_t ms = (uint64_t)time_now_ms();
    for (int i = 0; i < 6; i++)
        b[i] = (unsigned char)(ms >> (8 * (5 - i)));

    pthread_mutex_lock(&id_lock);
    if (id_pool_left < 10) {
        id_random_bytes(id_pool, sizeof id_pool);
        id_pool_left = sizeof id_pool;
    }
    memcpy(b + 6, id_pool + sizeof id_pool - id_pool_left, 10);
    id_pool_left -= 10;
    if (memcmp(b, id_last, 16) <= 0) {
        /* Same millisecond (or the clock stepped back): one past the last. */
        memcpy(b, id_last, 16);
        for (int i = 15; i >= 0 && ++b[i] == 0; i--) {
        }
    }
    memcpy(id_last, b, 16);
    pthread_mutex_unlock(&id_lock);
    id_hex(b, out);
}

void id_random_hex(char out[ID_LEN + 1]) {
    unsigned char b[16];
    id_random_bytes(b, sizeof b);
    id_hex(b, out);
}

bool id_is_valid(const char *s) {
    if (!s) return false;
    for (int i = 0; i < ID_LEN; i++) {
        char c = s[i];
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
    }
    return s[ID_LEN] == '\0';
}
