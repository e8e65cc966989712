/*
 * timeutil: wall-clock milliseconds and RFC 3339 text; the monotonic clock
 * and condition waits timed on it.
 *
 * Every stored time is an int64 of milliseconds since the Unix epoch, UTC;
 * 0 means "not set". Text form is always `YYYY-MM-DDTHH:MM:SS.mmmZ`.
 * Pure functions apart from time_now_ms; thread-safe.
 */
#ifndef TASKMILL_TIMEUTIL_H
#define TASKMILL_TIMEUTIL_H

#include <pthread.h>
#include <stdint.h>

#define TIME_RFC3339_LEN 24

int64_t time_now_ms(void);
/* Monotonic clock, for deadlines and measuring. */
int64_t time_mono_ms(void);
/* Inits a condition variable whose timed waits run on the monotonic clock,
 * so that a step of the wall clock neither stretches nor cuts them. */
void time_cond_init(pthread_cond_t *c);
/* Waits on c (from time_cond_init; m held) for at most ms milliseconds. */
void time_cond_wait_ms(pthread_cond_t *c, pthread_mutex_t *m, int64_t ms);
/* Writes exactly TIME_RFC3339_LEN characters and a NUL into out. */
void time_format_rfc3339(int64_t ms, char out[TIME_RFC3339_LEN + 1]);
/* Every date the API takes lies in this range, so every view can show it. */
#define TIME_MIN_MS       INT64_C(0)               /* 1970-01-01T00:00:00.000Z */
#define TIME_MAX_MS       INT64_C(253402300799999) /* 9999-12-31T23:59:59.999Z */
#define TIME_RFC3339_WANT "an RFC 3339 date-time from 1970 to 9999 UTC"
/*
 * Parses an RFC 3339 date-time (fraction optional, `Z` or `+hh:mm` offset).
 * Returns 0 and sets *ms, or -1 when the text is not one or lies outside
 * TIME_MIN_MS..TIME_MAX_MS once its offset is applied.
 */
int time_parse_rfc3339(const char *s, int64_t *ms);

#endif
