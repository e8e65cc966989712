/*
 * tz: IANA time zones, read from the system's tzdata, for schedules.
 *
 * Thread-safe by construction. The C library's zone machinery (setenv("TZ")
 * then tzset and localtime_r) keeps its zone in process-global state, so a
 * server that evaluates schedules in several zones at once cannot use it.
 * This module has its own reader of TZif files (RFC 8536: versions 1 to 4,
 * the 64-bit section when there is one, and the POSIX TZ string in the
 * footer, which rules every instant after the last transition), and never
 * reads or changes TZ.
 *
 * Zones come from $TZDIR/<Name> when the environment sets TZDIR (as glibc
 * reads it), else TZ_DIR/<Name> (Debian's tzdata package), and are loaded
 * into a process-wide cache guarded by a mutex. A loaded zone is immutable
 * and shared: callers hold it from tz_get to tz_release, and reading it
 * takes no lock. A lookup compares the zone's file with the one
 * it was read from at most every 10 s (one stat, outside the cache's lock)
 * and reads it again when it changed (a tzdata upgrade under a running
 * server: new DST rules); the zone it replaces stays valid for its
 * borrowers. A changed file that does not read as a zone keeps the zone
 * as last read (logged once a file); a file gone drops it. "UTC" and "Etc/UTC" are
 * built in and work without tzdata. Zones with leap seconds (right/...)
 * are refused.
 *
 * Times are int64 seconds: UTC instants since the epoch, and "local
 * seconds", the reading of a zone's wall clock counted as if it were UTC.
 * Instants are clamped to about +-278,000 years.
 */
#ifndef TASKMILL_TZ_H
#define TASKMILL_TZ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"

#ifndef TZ_DIR
#define TZ_DIR "/usr/share/zoneinfo"
#endif
/* The longest zone name taken (IANA's longest is about 32). */
#define TZ_NAME_MAX 63

struct tz; /* immutable once loaded; shared */

/*
 * Finds a zone by IANA name in the cache, loading it on first use. A name
 * is letters, digits, '/', '_', '-' and '+', not starting or ending with
 * '/', with no empty part. Returns 0 and sets *out (borrowed: valid until
 * tz_cache_clear, or tz_release; never free it), or TM_EINVALID with field "timezone" for
 * a bad name or one that is not a TZif file under the zone directory.
 * Later calls give the zone as its file is then (read again once it
 * changed, within 10 s).
 */
int tz_get(const char *name, const struct tz **out, struct tm_error *e);
/* Gives back a zone tz_get gave (NULL: nothing): each tz_get is matched by
 * one tz_release once the caller is done with the zone. A zone whose file
 * changed is freed by the release of its last borrower; one not given
 * back stays until tz_cache_clear. */
void tz_release(const struct tz *z);
/* How many zones replaced by a changed file are still held. Tests only. */
size_t tz_retired_count(void);
/* The name the zone was loaded by. */
const char *tz_name(const struct tz *z);
/* The UTC offset in seconds at a UTC instant, and (dst may be NULL) whether
 * daylight-saving time is on then. */
int32_t tz_offset(const struct tz *z, int64_t utc_s, bool *dst);
/*
 * Local civil time to UTC. A wall-clock reading can happen at no instant
 * (a spring-forward gap), one, or two (a fall-back overlap). Returns how
 * many (0..2) and fills out[] with them, earliest first.
 */
int tz_local_to_utc(const struct tz *z, int64_t local_s, int64_t out[2]);
/*
 * The first instant at which the wall clock reads local_s or later: the
 * instant local_s happens, its first occurrence when it happens twice, and
 * the end of the gap when it never does. Never decreases as local_s grows,
 * which is what lets cron_next fire each wall-clock slot once.
 */
int64_t tz_wall_first(const struct tz *z, int64_t local_s);
/* The highest reading of the wall clock at any instant up to utc_s: above
 * the current reading just after a fall back, while the hour repeats. */
int64_t tz_wall_max(const struct tz *z, int64_t utc_s);
/* Proleptic Gregorian calendar arithmetic, no zone involved: the days
 * since 1970-01-01 of a civil date (m 1..12, d 1..31), and back. */
int64_t tz_days_from_civil(int64_t y, int m, int d);
void tz_civil_from_days(int64_t days, int64_t *y, int *m, int *d);
/* Frees every cached zone, invalidating all pointers tz_get gave out
 * (tz_release them no more). Tests only. */
void tz_cache_clear(void);

#endif
