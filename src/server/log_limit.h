/*
 * log_limit: lines of one kind that clients can cause (refusals,
 * libmicrohttpd's complaints of a connection, webhook destinations
 * refused), at most a number a second; the first line written in a later
 * second says how many were not. Lock-free, for any thread.
 */
#ifndef TASKMILL_LOG_LIMIT_H
#define TASKMILL_LOG_LIMIT_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

struct log_limit {
    _Atomic int64_t sec;      /* the second whose lines are counted */
    _Atomic int count;        /* lines of it so far */
    _Atomic uint64_t dropped; /* lines not written, not said yet */
};

/* Whether one more line may be written this second (the first per_second
 * may); *dropped_before gets the lines not written in the seconds before,
 * for the caller to say first. */
bool log_limit_admit(struct log_limit *l, int per_second, uint64_t *dropped_before);

/* log_limit_admit, and when lines went unwritten in the seconds before, a
 * line on stderr saying so first: "<prefix><n> more <what> were not logged
 * (at most <per_second> a second are<note>)". Whether the caller may write
 * its line. */
bool log_limit_take(struct log_limit *l, int per_second, const char *prefix, const char *what,
                    const char *note);

#endif
