/*
 * log_limit: a bound on the lines of one kind that clients can cause, so
 * that a client sending bad requests as fast as it can does not fill the
 * log (log_limit.h).
 */
#include "log_limit.h"

#include <stdio.h>

#include "../common/timeutil.h"

bool log_limit_admit(struct log_limit *l, int per_second, uint64_t *dropped_before) {
    int64_t sec = time_mono_ms() / 1000, cur = atomic_load(&l->sec);
    *dropped_before = 0;
    /* Only forward: a thread that read the clock before another moved to
     * the next second counts in that one, rather than starting its own
     * again (which would let through more than per_second in it). */
    if (sec > cur && atomic_compare_exchange_strong(&l->sec, &cur, sec)) {
        *dropped_before = atomic_exchange(&l->dropped, 0);
        atomic_store(&l->count, 0);
    }
    if (atomic_fetch_add(&l->count, 1) < per_second) return true;
    atomic_fetch_add(&l->dropped, 1);
    return false;
}

bool log_limit_take(struct log_limit *l, int per_second, const char *prefix, const char *what,
                    const char *note) {
    uint64_t dropped = 0;
    bool admit = log_limit_admit(l, per_second, &dropped);
    if (dropped)
        fprintf(stderr, "%s%llu more %s were not logged (at most %d a second are%s)\n", prefix,
                (unsigned long long)dropped, what, per_second, note);
    return admit;
}
