/*
 * cron: cron expressions, and when they next fire in a time zone.
 *
 * Used by schedules (schedule.h) to check an expression when one is stored
 * and to find each slot's instant. cron_parse is a pure function from text
 * to a plain struct (no pointers: copy it, store it), so it can be fuzzed;
 * cron_next reads a zone from tz.h, which has its own TZif reader and never
 * touches the process's TZ, so both are thread-safe and take no lock.
 *
 * Syntax: five fields (minute hour day-of-month month day-of-week) or six
 * (second first), separated by spaces or tabs. Each field is a list of
 * `*`, `n`, `a-b`, each optionally `/step`, or `n/step` for n to the end.
 * Months JAN-DEC and days SUN-SAT may be named (any case); day-of-week 7 is
 * Sunday too; `?` means `*` in day-of-month and day-of-week. Macros:
 * @yearly (= @annually), @monthly, @weekly, @daily (= @midnight), @hourly.
 * Day-of-month and day-of-week follow Vixie cron (cronie): when both are
 * restricted a day matches if either does; when one starts with `*` (a
 * bare star, or a stepped one: star, slash, 2) or is `?`, a day must
 * match both, so "0 0 * / 2 * 1" (without the spaces) fires on Mondays
 * that are odd days of the month, as in Vixie cron, not on every odd day.
 *
 * Daylight saving (see cron_next): matches are read on the zone's wall
 * clock, and each wall-clock slot fires at most once. A slot that falls in
 * a spring-forward gap fires once, at the first instant after the gap
 * (all the slots of one gap, and a slot at the gap's end, fire as one,
 * flagged shifted: hourly in New York on 2026-03-08 gives 01:00 EST, then
 * 03:00 EDT for 02:00 and 03:00); a slot that happens twice in a fall back
 * fires at its first occurrence only. So an expression that fires many
 * times an hour ("0,15,30,45 * * * *") fires through the first pass of a
 * repeated hour and not the second: in America/New_York on 2026-11-01 it
 * fires at 01:00, 01:15, 01:30 and 01:45 EDT, then at 02:00 EST, an hour
 * and a quarter later.
 */
#ifndef TASKMILL_CRON_H
#define TASKMILL_CRON_H

#include <stdbool.h>
#include <stdint.h>

#include "err.h"
#include "tz.h"

/* The longest expression taken, in bytes. */
#define CRON_MAX_TEXT 256

/* A parsed expression: bit n set when value n matches. Plain data. */
struct cron_expr {
    uint64_t second;         /* bits 0..59; only bit 0 for five fields */
    uint64_t minute;         /* bits 0..59 */
    uint32_t hour;           /* bits 0..23 */
    uint32_t mday;           /* bits 1..31 */
    uint16_t month;          /* bits 1..12 */
    uint8_t wday;            /* bits 0..6, Sunday 0 (7 accepted as Sunday in input) */
    bool has_seconds;        /* six fields given */
    bool mday_any, wday_any; /* the field starts with '*' or is '?': see the OR rule above */
};

/*
 * Parses an expression (syntax above). Returns 0 and fills *out, or
 * TM_EINVALID with field "cron" and a message naming the cron field and
 * the bad part ("'cron' minute field '61' is out of range 0-59"). Refuses
 * an expression that can never fire (30 February). Pure.
 */
int cron_parse(const char *text, struct cron_expr *out, struct tm_error *e);

/* The wall time does not exist (spring forward): fired at the first valid instant after the gap. */
#define CRON_FIRE_SHIFTED 1u
/* The wall time happens twice (fall back): fired once, at the first. */
#define CRON_FIRE_REPEATED 2u

/*
 * The first fire time strictly after after_ms (UTC milliseconds) in zone
 * z. Returns 0 and sets *next_ms (a whole second) and *flags (CRON_FIRE_*,
 * or 0; flags may be NULL), or TM_ENOT_FOUND when none falls within
 * CRON_HORIZON_YEARS of after_ms (a 29 February across 2100 is found) or
 * after_ms is outside years 1 to 9999, or the slot would be after
 * 9999-12-31T23:59:59Z (not written in RFC 3339: none). Successive calls, each from the
 * last result, give every slot once in order, by the rules above. Cost is
 * a few steps per month, day, hour and minute skipped, never one per second.
 */
#define CRON_HORIZON_YEARS 8
int cron_next(const struct cron_expr *c, const struct tz *z, int64_t after_ms, int64_t *next_ms,
              unsigned *flags);

#endif
