/*
 * The cron parser, the time-zone engine and next-fire times (cron.h,
 * tz.h), with the system's tzdata. Expected instants were read from zdump
 * and `date -u -d 'TZ="Zone" ...'` (tzdata 2025b), not from this code; a
 * brute-force model (minute by minute in UTC, from tz_offset alone) checks
 * cron_next around every 2026 transition of the four zones of issue 11
 * and of Europe/Berlin.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../src/common/cron.h"
#include "../src/common/timeutil.h"
#include "../src/common/tz.h"
#include "harness.h"

/* RFC 3339 text to ms; aborts the binary on a typo in a test. The API
 * refuses dates before 1970, but the cron functions take any time: an
 * earlier one is read 400 years later (the Gregorian cycle, 146,097 days)
 * and moved back. */
static int64_t at(const char *s) {
    int64_t ms;
    char later[64];
    int year = atoi(s);
    if (year < 1970 && strlen(s) < sizeof later && strlen(s) > 4) {
        snprintf(later, sizeof later, "%04d%s", year + 400, s + 4);
        if (time_parse_rfc3339(later, &ms) == 0) return ms - INT64_C(146097) * 86400 * 1000;
    }
    if (time_parse_rfc3339(s, &ms) != 0) {
        fprintf(stderr, "bad time in test: %s\n", s);
        abort();
    }
    return ms;
}

static uint64_t bits(const int *v, int n) {
    uint64_t b = 0;
    for (int i = 0; i < n; i++)
        b |= UINT64_C(1) << v[i];
    return b;
}
#define BITS(...) bits((const int[]){__VA_ARGS__}, sizeof((int[]){__VA_ARGS__}) / sizeof(int))

static uint64_t range_bits(int lo, int hi) {
    uint64_t b = 0;
    for (int i = lo; i <= hi; i++)
        b |= UINT64_C(1) << i;
    return b;
}

static const struct tz *zone(const char *name) {
    const struct tz *z = NULL;
    struct tm_error e;
    err_clear(&e);
    if (tz_get(name, &z, &e) != 0) {
        fprintf(stderr, "zone %s: %s\n", name, e.message);
        abort();
    }
    return z;
}

/* ---- Parsing ---- */

static void test_parse_fields(void) {
    struct cron_expr c;
    struct tm_error e;
    err_clear(&e);
    CHECK_INT(cron_parse("*/15 * * * *", &c, &e), 0);
    CHECK(c.minute == BITS(0, 15, 30, 45));
    CHECK(c.second == 1 && !c.has_seconds);
    CHECK(c.hour == range_bits(0, 23) && c.mday == range_bits(1, 31));
    CHECK(c.month == range_bits(1, 12) && c.wday == range_bits(0, 6));
    CHECK(c.mday_any && c.wday_any);

    CHECK_INT(cron_parse("5-20/5 9-17 * * MON-FRI", &c, &e), 0);
    CHECK(c.minute == BITS(5, 10, 15, 20));
    CHECK(c.hour == range_bits(9, 17));
    CHECK(c.wday == range_bits(1, 5) && !c.wday_any && c.mday_any);

    CHECK_INT(cron_parse("0 0 1,15 JAN,jul,Dec *", &c, &e), 0);
    CHECK(c.mday == BITS(1, 15) && c.month == BITS(1, 7, 12) && !c.mday_any);

    CHECK_INT(cron_parse("0 0 * * 7", &c, &e), 0); /* 7 is Sunday */
    CHECK(c.wday == BITS(0));
    CHECK_INT(cron_parse("0 0 * * 5-7", &c, &e), 0);
    CHECK(c.wday == BITS(0, 5, 6));
    CHECK_INT(cron_parse("0 0 * * sun,Sat", &c, &e), 0);
    CHECK(c.wday == BITS(0, 6));
    CHECK_INT(cron_parse("0 0 ? * SUN", &c, &e), 0);
    CHECK(c.mday_any && !c.wday_any && c.mday == range_bits(1, 31));
    CHECK_INT(cron_parse("0 0 1 * ?", &c, &e), 0);
    CHECK(c.wday_any && !c.mday_any && c.wday == range_bits(0, 6));
    /* A field that starts with '*' is a star for the OR rule (Vixie cron). */
    CHECK_INT(cron_parse("0 0 */1 * *", &c, &e), 0);
    CHECK(c.mday_any && c.mday == range_bits(1, 31));
    CHECK_INT(cron_parse("0 0 */2 * 1", &c, &e), 0);
    CHECK(c.mday_any && !c.wday_any &&
          c.mday == BITS(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31));

    /* Bounds of every field, a step from a value, and tabs and padding. */
    CHECK_INT(cron_parse("  59\t23 31 12 6 ", &c, &e), 0);
    CHECK(c.minute == BITS(59) && c.hour == BITS(23) && c.mday == BITS(31));
    CHECK(c.month == BITS(12) && c.wday == BITS(6));
    CHECK_INT(cron_parse("10/20 0 1 1 0", &c, &e), 0);
    CHECK(c.minute == BITS(10, 30, 50) && c.mday == BITS(1) && c.month == BITS(1));
    CHECK_INT(cron_parse("0 */5 1-31/10 2-12/3 1/2", &c, &e), 0);
    CHECK(c.hour == BITS(0, 5, 10, 15, 20) && c.mday == BITS(1, 11, 21, 31));
    CHECK(c.month == BITS(2, 5, 8, 11) && c.wday == BITS(1, 3, 5));
    CHECK_INT(cron_parse("0 0 * * 7/2", &c, &e), 0); /* from 7: Sunday alone */
    CHECK(c.wday == BITS(0));
    CHECK_INT(cron_parse("007 1,2,1 * * *", &c, &e), 0);
    CHECK(c.minute == BITS(7) && c.hour == BITS(1, 2));

    /* Six fields: seconds first. */
    CHECK_INT(cron_parse("*/20 30 4 * * *", &c, &e), 0);
    CHECK(c.has_seconds && c.second == BITS(0, 20, 40));
    CHECK(c.minute == BITS(30) && c.hour == BITS(4));
    CHECK_INT(cron_parse("59 0-59/30 * * * *", &c, &e), 0);
    CHECK(c.second == BITS(59) && c.minute == BITS(0, 30));

    /* Feb 29 fires in leap years; Feb 30 with a weekday fires on the weekday. */
    CHECK_INT(cron_parse("0 0 29 2 *", &c, &e), 0);
    CHECK_INT(cron_parse("0 0 30 2 1", &c, &e), 0);
    CHECK_INT(cron_parse("0 0 31 1-12 *", &c, &e), 0);
    CHECK_INT(e.code, 0);
}

static void test_parse_macros(void) {
    static const char *const pairs[][2] = {
        {"@yearly", "0 0 1 1 *"}, {"@annually", "0 0 1 1 *"}, {"@monthly", "0 0 1 * *"},
        {"@weekly", "0 0 * * 0"}, {"@daily", "0 0 * * *"},    {"@midnight", "0 0 * * *"},
        {"@hourly", "0 * * * *"}, {" @DAILY\t", "0 0 * * *"}, {"@Hourly", "0 * * * *"},
    };
    for (size_t i = 0; i < sizeof pairs / sizeof pairs[0]; i++) {
        struct cron_expr a, b;
        struct tm_error e;
        err_clear(&e);
        CHECK_INT(cron_parse(pairs[i][0], &a, &e), 0);
        CHECK_INT(cron_parse(pairs[i][1], &b, &e), 0);
        if (memcmp(&a, &b, sizeof a) != 0) {
            th_fail(__FILE__, __LINE__, "'%s' is not '%s'", pairs[i][0], pairs[i][1]);
            return;
        }
    }
}

static void test_parse_errors(void) {
    char longer[CRON_MAX_TEXT + 8];
    memset(longer, ' ', sizeof longer - 1);
    memcpy(longer, "* * * * *", 9);
    longer[sizeof longer - 1] = '\0';
    /* The text, then what the message must hold (the field, the bad part). */
    const char *table[][2] = {
        {"", "'cron' is empty"},
        {" \t ", "'cron' is empty"},
        {longer, "'cron' is longer than 256 characters"},
        {"* * * *", "'cron' has 4 fields, not 5"},
        {"* * * * * * *", "'cron' has 7 fields"},
        {"*", "'cron' has 1 field,"},
        {"61 * * * *", "'cron' minute field '61' is out of range 0-59"},
        {"99999999999999999999 * * * *", "minute field '99999999999999999999' is out of range"},
        {"0 24 * * *", "'cron' hour field '24' is out of range 0-23"},
        {"0 0 0 * *", "'cron' day-of-month field '0' is out of range 1-31"},
        {"0 0 32 * *", "'cron' day-of-month field '32' is out of range 1-31"},
        {"0 0 * 13 *", "'cron' month field '13' is out of range 1-12"},
        {"0 0 * 0 *", "'cron' month field '0' is out of range 1-12"},
        {"0 0 * * 8", "'cron' day-of-week field '8' is out of range 0-7"},
        {"60 * * * * *", "'cron' second field '60' is out of range 0-59"},
        {"0 0-60 * * *", "'cron' hour field '60' is out of range 0-23"},
        {"*/0 * * * *", "'cron' minute field step '0' is out of range 1-60"},
        {"0 */25 * * *", "'cron' hour field step '25' is out of range 1-24"},
        {"*/x * * * *", "'cron' minute field step 'x' is not a number"},
        {"0 0 * * */-1", "'cron' day-of-week field step '-1' is not a number"},
        {"*/ * * * *", "'cron' minute field '*/' has no step after '/'"},
        {"/5 * * * *", "'cron' minute field '/5' has no value before '/'"},
        {"0 5-2 * * *", "'cron' hour field range '5-2' is reversed"},
        {"0 0 * DEC-JAN *", "'cron' month field range 'DEC-JAN' is reversed"},
        {"-5 * * * *", "'cron' minute field range '-5' is missing a bound"},
        {"0 0 * FOO *", "'cron' month field 'FOO' is not a number or a month name"},
        {"0 0 * * FUN", "'cron' day-of-week field 'FUN' is not a number or a day name"},
        {"0 0 * * MONDAY", "'cron' day-of-week field 'MONDAY' is not a number or a day name"},
        {"0 0 JAN * *", "'cron' day-of-month field 'JAN' is not a number"},
        {"0 0 L * *", "'cron' day-of-month field 'L' is not a number"},
        {"0 0 * * 5#3", "'cron' day-of-week field '5#3' is not a number"},
        {"1x * * * *", "'cron' minute field '1x' is not a number"},
        {"1,,2 * * * *", "'cron' minute field '1,,2' has an empty list element"},
        {"1, * * * *", "'cron' minute field '1,' has an empty list element"},
        {"? * * * *", "'cron' minute field '?' is only allowed for day-of-month or day-of-week"},
        {"@reboot", "'cron' macro '@reboot' is not one of @yearly"},
        {"@daily 5", "'cron' macro '@daily 5' is not one of"},
        {"0 0 * * 1\x01", "'cron' has a control or non-ASCII character at offset 9"},
        {"0 0 * * 1\n", "'cron' has a control or non-ASCII character at offset 9"},
        {"0 0 * * caf\xc3\xa9", "'cron' has a control or non-ASCII character at offset 11"},
        {"0 0 30 2 *",
         "'cron' never fires: day-of-month field '30' does not occur in month "
         "field '2'"},
        {"0 0 31 4,6,9,11 ?",
         "never fires: day-of-month field '31' does not occur in month "
         "field '4,6,9,11'"},
        {"0 0 0 30,31 FEB *",
         "never fires: day-of-month field '30,31' does not occur in month "
         "field 'FEB'"},
        /* Both day fields must match (a stepped star is a star): days
         * rarer than the 8 years a next fire is looked for, or none. */
        {"0 0 */31 2 */7",
         "years apart (day-of-month field '*/31' and day-of-week field "
         "'*/7' must both match): next fires are looked for 8 years ahead"},
        {"0 0 1 2 */7",
         "years apart (day-of-month field '1' and day-of-week field '*/7' must "
         "both match)"},
    };
    for (size_t i = 0; i < sizeof table / sizeof table[0]; i++) {
        struct cron_expr c;
        struct tm_error e;
        err_clear(&e);
        int rc = cron_parse(table[i][0], &c, &e);
        if (rc != TM_EINVALID || e.code != TM_EINVALID || strcmp(e.field, "cron") != 0 ||
            !strstr(e.message, table[i][1])) {
            th_fail(__FILE__, __LINE__, "'%s': rc %d field '%s' message '%s', wanted '%s'",
                    table[i][0], rc, e.field, e.message, table[i][1]);
            return;
        }
    }
    struct cron_expr c;
    struct tm_error e;
    err_clear(&e);
    CHECK_INT(cron_parse(NULL, &c, &e), TM_EINVALID);
    CHECK_STR(e.field, "cron");
    /* Exactly at the limit is fine; a NULL error pointer is allowed. */
    longer[CRON_MAX_TEXT] = '\0';
    CHECK_INT(cron_parse(longer, &c, &e), 0);
    CHECK_INT(cron_parse("61 * * * *", &c, NULL), TM_EINVALID);
}

/* ---- Next fire in UTC ---- */

/* Checks that successive fires of expr in zone from `from` are want[],
 * with flags[] (NULL: all 0). */
static bool expect_fires(int line, const char *expr, const char *zname, const char *from,
                         const char *const *want, const unsigned *want_flags, size_t n) {
    struct cron_expr c;
    struct tm_error e;
    err_clear(&e);
    if (cron_parse(expr, &c, &e) != 0) {
        th_fail(__FILE__, line, "'%s': %s", expr, e.message);
        return false;
    }
    const struct tz *z = zone(zname);
    int64_t t = at(from);
    for (size_t i = 0; i < n; i++) {
        int64_t next = 0;
        unsigned flags = 99;
        int rc = cron_next(&c, z, t, &next, &flags);
        char got[TIME_RFC3339_LEN + 1];
        time_format_rfc3339(next, got);
        unsigned wf = want_flags ? want_flags[i] : 0;
        if (rc != 0 || next != at(want[i]) || flags != wf) {
            th_fail(__FILE__, line,
                    "'%s' in %s, fire %zu after %s: rc %d, %s flags %u; wanted %s "
                    "flags %u",
                    expr, zname, i, from, rc, rc ? "-" : got, flags, want[i], wf);
            return false;
        }
        t = next;
    }
    return true;
}
#define FIRES(expr, zname, from, ...)                                                              \
    do {                                                                                           \
        static const char *const want_[] = {__VA_ARGS__};                                          \
        if (!expect_fires(__LINE__, expr, zname, from, want_, NULL, sizeof want_ / sizeof *want_)) \
            return;                                                                                \
    } while (0)
#define FIRES_FLAGS(expr, zname, from, flags, ...)                                           \
    do {                                                                                     \
        static const char *const want_[] = {__VA_ARGS__};                                    \
        static const unsigned flags_[] = flags;                                              \
        _Static_assert(sizeof flags_ / sizeof *flags_ == sizeof want_ / sizeof *want_, "n"); \
        if (!expect_fires(__LINE__, expr, zname, from, want_, flags_,                        \
                          sizeof want_ / sizeof *want_))                                     \
            return;                                                                          \
    } while (0)
#define F(...) \
    { __VA_ARGS__ }
#define S CRON_FIRE_SHIFTED
#define R CRON_FIRE_REPEATED

static void test_next_utc(void) {
    FIRES("*/15 * * * *", "UTC", "2026-01-01T00:07:00Z", "2026-01-01T00:15:00Z",
          "2026-01-01T00:30:00Z", "2026-01-01T00:45:00Z", "2026-01-01T01:00:00Z");
    /* Strictly after: from a fire time, and a millisecond before one. */
    FIRES("*/15 * * * *", "UTC", "2026-01-01T00:15:00.000Z", "2026-01-01T00:30:00Z");
    FIRES("*/15 * * * *", "UTC", "2026-01-01T00:14:59.999Z", "2026-01-01T00:15:00Z");
    FIRES("*/15 * * * *", "Etc/UTC", "1969-12-31T23:59:59.500Z", "1970-01-01T00:00:00Z");
    /* Month ends: the 31st skips the short months; the year's last minute. */
    FIRES("0 0 31 * *", "UTC", "2026-01-31T00:00:00Z", "2026-03-31T00:00:00Z",
          "2026-05-31T00:00:00Z", "2026-07-31T00:00:00Z", "2026-08-31T00:00:00Z",
          "2026-10-31T00:00:00Z", "2026-12-31T00:00:00Z", "2027-01-31T00:00:00Z");
    FIRES("59 23 31 12 *", "UTC", "2026-06-01T00:00:00Z", "2026-12-31T23:59:00Z",
          "2027-12-31T23:59:00Z");
    FIRES("0 12 28-31 2 *", "UTC", "2027-01-01T00:00:00Z", "2027-02-28T12:00:00Z",
          "2028-02-28T12:00:00Z", "2028-02-29T12:00:00Z", "2029-02-28T12:00:00Z");
    /* The leap day, across 2100 (not a leap year): eight years apart. */
    FIRES("0 0 29 2 *", "UTC", "2026-01-01T00:00:00Z", "2028-02-29T00:00:00Z",
          "2032-02-29T00:00:00Z");
    FIRES("0 0 29 2 *", "UTC", "2096-03-01T00:00:00Z", "2104-02-29T00:00:00Z");
    FIRES("@yearly", "UTC", "2026-05-05T00:00:00Z", "2027-01-01T00:00:00Z", "2028-01-01T00:00:00Z");
    /* The OR rule: the 13th or a Friday (February 2026: Fridays 6, 13, 20, 27). */
    FIRES("0 12 13 * 5", "UTC", "2026-02-01T00:00:00Z", "2026-02-06T12:00:00Z",
          "2026-02-13T12:00:00Z", "2026-02-20T12:00:00Z", "2026-02-27T12:00:00Z",
          "2026-03-06T12:00:00Z", "2026-03-13T12:00:00Z", "2026-03-20T12:00:00Z");
    /* A stepped star is a star (Vixie cron): Mondays that are odd days, not
     * odd days or Mondays (January 2026: Mondays 5, 12, 19, 26). */
    FIRES("0 0 */2 * 1", "UTC", "2026-01-01T00:00:00Z", "2026-01-05T00:00:00Z",
          "2026-01-19T00:00:00Z", "2026-02-09T00:00:00Z", "2026-02-23T00:00:00Z");
    FIRES("0 0 13 * */7", "UTC", "2026-01-01T00:00:00Z", "2026-09-13T00:00:00Z",
          "2026-12-13T00:00:00Z");
    /* The 1st or a Monday; 1 March 2026 is a Sunday. */
    FIRES("0 12 1 * MON", "UTC", "2026-02-20T00:00:00Z", "2026-02-23T12:00:00Z",
          "2026-03-01T12:00:00Z", "2026-03-02T12:00:00Z", "2026-03-09T12:00:00Z");
    /* With a bare * or ? in one, only the other counts. */
    FIRES("0 12 * * MON", "UTC", "2026-02-20T00:00:00Z", "2026-02-23T12:00:00Z",
          "2026-03-02T12:00:00Z");
    FIRES("0 12 1 * ?", "UTC", "2026-02-20T00:00:00Z", "2026-03-01T12:00:00Z",
          "2026-04-01T12:00:00Z");
    FIRES("0 0 30 2 1", "UTC", "2026-01-31T00:00:00Z", "2026-02-02T00:00:00Z",
          "2026-02-09T00:00:00Z");
    /* Seconds. */
    FIRES("*/20 * * * * *", "UTC", "2026-01-01T12:00:00.500Z", "2026-01-01T12:00:20Z",
          "2026-01-01T12:00:40Z", "2026-01-01T12:01:00Z");
    FIRES("30 59 23 * * *", "UTC", "2026-12-31T23:59:30Z", "2027-01-01T23:59:30Z");
    /* Hours and minutes roll over days, months and years. */
    FIRES("45 22,23 * * *", "UTC", "2026-12-31T23:45:00Z", "2027-01-01T22:45:00Z",
          "2027-01-01T23:45:00Z", "2027-01-02T22:45:00Z");
}

static void test_next_not_found(void) {
    struct cron_expr c;
    memset(&c, 0, sizeof c); /* matches nothing: searched to the horizon */
    const struct tz *z = zone("UTC");
    int64_t next = 123;
    unsigned flags = 9;
    CHECK_INT(cron_next(&c, z, at("2026-01-01T00:00:00Z"), &next, &flags), TM_ENOT_FOUND);
    CHECK_INT(flags, 0);
    struct tm_error e;
    err_clear(&e);
    CHECK_INT(cron_parse("0 0 29 2 *", &c, &e), 0);
    /* 2097 to 2104 is more than the horizon from 2096's late December. */
    CHECK_INT(cron_next(&c, z, at("2096-12-31T00:00:00Z"), &next, NULL), 0);
    CHECK_INT(next, at("2104-02-29T00:00:00Z"));
    /* Outside years 1 to 9999. */
    CHECK_INT(cron_parse("* * * * *", &c, &e), 0);
    CHECK_INT(cron_next(&c, z, INT64_MAX, &next, NULL), TM_ENOT_FOUND);
    CHECK_INT(cron_next(&c, z, INT64_MIN, &next, NULL), TM_ENOT_FOUND);
    CHECK_INT(cron_next(&c, z, at("9999-12-31T23:58:00Z"), &next, NULL), 0);
    CHECK_INT(next, at("9999-12-31T23:59:00Z"));
    /* No slot past 9999, which RFC 3339 cannot write, from a time before it. */
    CHECK_INT(cron_next(&c, z, at("9999-12-31T23:59:00Z"), &next, NULL), TM_ENOT_FOUND);
    CHECK_INT(cron_parse("30 2 * * *", &c, &e), 0);
    z = zone("America/New_York");
    CHECK_INT(cron_next(&c, z, at("9999-12-30T12:00:00Z"), &next, NULL), 0);
    CHECK_INT(next, at("9999-12-31T07:30:00Z"));
    CHECK_INT(cron_next(&c, z, next, &next, NULL), TM_ENOT_FOUND);
}

/* ---- Daylight saving ---- */

static void test_dst_new_york(void) {
    /* 2026-03-08 02:00 EST -> 03:00 EDT (07:00Z); 2026-11-01 02:00 EDT -> 01:00 EST (06:00Z). */
    FIRES_FLAGS("30 2 * * *", "America/New_York", "2026-03-06T12:00:00Z", F(0, S, 0),
                "2026-03-07T07:30:00Z", "2026-03-08T07:00:00Z", "2026-03-09T06:30:00Z");
    FIRES_FLAGS("30 1 * * *", "America/New_York", "2026-10-31T12:00:00Z", F(R, 0),
                "2026-11-01T05:30:00Z", "2026-11-02T06:30:00Z");
    /* From inside the second pass of the repeated hour: not again. */
    FIRES("30 1 * * *", "America/New_York", "2026-11-01T06:10:00Z", "2026-11-02T06:30:00Z");
    FIRES("30 1 * * *", "America/New_York", "2026-11-01T05:40:00Z", "2026-11-02T06:30:00Z");
    /* Hourly: 02:00 (absent) fires at 03:00 EDT, and 03:00 is that same instant. */
    FIRES_FLAGS("0 * * * *", "America/New_York", "2026-03-08T05:30:00Z", F(0, S, 0, 0),
                "2026-03-08T06:00:00Z", "2026-03-08T07:00:00Z", "2026-03-08T08:00:00Z",
                "2026-03-08T09:00:00Z");
    /* Hourly in the fall: 01:00 fires in EDT only; 02:00 EST is two hours on. */
    FIRES_FLAGS("0 * * * *", "America/New_York", "2026-11-01T03:30:00Z", F(0, R, 0, 0),
                "2026-11-01T04:00:00Z", "2026-11-01T05:00:00Z", "2026-11-01T07:00:00Z",
                "2026-11-01T08:00:00Z");
    FIRES_FLAGS("*/15 * * * *", "America/New_York", "2026-03-08T06:40:00Z", F(0, S, 0, 0),
                "2026-03-08T06:45:00Z", "2026-03-08T07:00:00Z", "2026-03-08T07:15:00Z",
                "2026-03-08T07:30:00Z");
    FIRES_FLAGS("*/15 * * * *", "America/New_York", "2026-11-01T04:40:00Z", F(0, R, R, R, R, 0, 0),
                "2026-11-01T04:45:00Z", "2026-11-01T05:00:00Z", "2026-11-01T05:15:00Z",
                "2026-11-01T05:30:00Z", "2026-11-01T05:45:00Z", "2026-11-01T07:00:00Z",
                "2026-11-01T07:15:00Z");
    /* Several slots in one gap fire once, with seconds too. */
    FIRES_FLAGS("0 */20 2 * * *", "America/New_York", "2026-03-07T06:30:00Z", F(0, 0, 0, S, 0),
                "2026-03-07T07:00:00Z", "2026-03-07T07:20:00Z", "2026-03-07T07:40:00Z",
                "2026-03-08T07:00:00Z", "2026-03-09T06:00:00Z");
}

static void test_dst_london(void) {
    /* 2026-03-29 01:00 GMT -> 02:00 BST (01:00Z); 2026-10-25 02:00 BST -> 01:00 GMT (01:00Z). */
    FIRES_FLAGS("30 1 * * *", "Europe/London", "2026-03-28T12:00:00Z", F(S, 0),
                "2026-03-29T01:00:00Z", "2026-03-30T00:30:00Z");
    FIRES_FLAGS("30 1 * * *", "Europe/London", "2026-10-24T12:00:00Z", F(R, 0),
                "2026-10-25T00:30:00Z", "2026-10-26T01:30:00Z");
    FIRES_FLAGS("0 * * * *", "Europe/London", "2026-03-28T23:30:00Z", F(0, S, 0),
                "2026-03-29T00:00:00Z", "2026-03-29T01:00:00Z", "2026-03-29T02:00:00Z");
    FIRES_FLAGS("0 * * * *", "Europe/London", "2026-10-24T23:30:00Z", F(R, 0, 0),
                "2026-10-25T00:00:00Z", "2026-10-25T02:00:00Z", "2026-10-25T03:00:00Z");
    FIRES_FLAGS("*/15 * * * *", "Europe/London", "2026-03-29T00:40:00Z", F(0, S, 0),
                "2026-03-29T00:45:00Z", "2026-03-29T01:00:00Z", "2026-03-29T01:15:00Z");
    FIRES_FLAGS("*/15 * * * *", "Europe/London", "2026-10-24T23:50:00Z", F(R, R, R, R, 0, 0),
                "2026-10-25T00:00:00Z", "2026-10-25T00:15:00Z", "2026-10-25T00:30:00Z",
                "2026-10-25T00:45:00Z", "2026-10-25T02:00:00Z", "2026-10-25T02:15:00Z");
    /* A time outside the changed hour is not touched. */
    FIRES("0 3 * * *", "Europe/London", "2026-03-28T12:00:00Z", "2026-03-29T02:00:00Z",
          "2026-03-30T02:00:00Z");
}

static void test_dst_berlin(void) {
    /* 2026-03-29 02:00 CET -> 03:00 CEST (01:00Z); 2026-10-25 03:00 CEST -> 02:00 CET (01:00Z).
     * A 02:30 daily job: at 03:00 CEST on the day 02:30 is skipped, at the
     * first 02:30 (CEST) on the day it happens twice, and once a day. */
    FIRES_FLAGS("30 2 * * *", "Europe/Berlin", "2026-03-27T12:00:00Z", F(0, S, 0),
                "2026-03-28T01:30:00Z", "2026-03-29T01:00:00Z", "2026-03-30T00:30:00Z");
    FIRES_FLAGS("30 2 * * *", "Europe/Berlin", "2026-10-23T12:00:00Z", F(0, R, 0),
                "2026-10-24T00:30:00Z", "2026-10-25T00:30:00Z", "2026-10-26T01:30:00Z");
    /* From inside the second pass of the repeated hour: not again. */
    FIRES("30 2 * * *", "Europe/Berlin", "2026-10-25T01:10:00Z", "2026-10-26T01:30:00Z");
}

static void test_dst_kolkata(void) {
    /* +05:30 all year: no flags on the dates others change. */
    FIRES("30 9 * * *", "Asia/Kolkata", "2026-03-01T00:00:00Z", "2026-03-01T04:00:00Z",
          "2026-03-02T04:00:00Z");
    FIRES("0 0 * * *", "Asia/Kolkata", "2026-03-07T00:00:00Z", "2026-03-07T18:30:00Z",
          "2026-03-08T18:30:00Z", "2026-03-09T18:30:00Z");
    FIRES("*/15 * * * *", "Asia/Kolkata", "2026-11-01T05:40:00Z", "2026-11-01T05:45:00Z",
          "2026-11-01T06:00:00Z", "2026-11-01T06:15:00Z");
    FIRES("0 * * * *", "Asia/Kolkata", "2026-03-29T00:00:00Z", "2026-03-29T00:30:00Z",
          "2026-03-29T01:30:00Z");
}

static void test_dst_lord_howe(void) {
    /* 2026-04-05 02:00 +11 -> 01:30 +1030 (15:00Z on the 4th): 01:30-01:59 twice.
     * 2026-10-04 02:00 +1030 -> 02:30 +11 (15:30Z on the 3rd): 02:00-02:29 absent. */
    FIRES_FLAGS("15 2 * * *", "Australia/Lord_Howe", "2026-10-02T00:00:00Z", F(0, S, 0),
                "2026-10-02T15:45:00Z", "2026-10-03T15:30:00Z", "2026-10-04T15:15:00Z");
    FIRES_FLAGS("45 1 * * *", "Australia/Lord_Howe", "2026-04-03T00:00:00Z", F(0, R, 0),
                "2026-04-03T14:45:00Z", "2026-04-04T14:45:00Z", "2026-04-05T15:15:00Z");
    /* 02:30 is the gap's end, a real time: not shifted; 01:15 happens once. */
    FIRES("30 2 * * *", "Australia/Lord_Howe", "2026-10-03T00:00:00Z", "2026-10-03T15:30:00Z");
    FIRES("15 1 * * *", "Australia/Lord_Howe", "2026-04-04T00:00:00Z", "2026-04-04T14:15:00Z",
          "2026-04-05T14:45:00Z");
    FIRES_FLAGS("*/15 * * * *", "Australia/Lord_Howe", "2026-10-03T15:10:00Z", F(0, S, 0, 0),
                "2026-10-03T15:15:00Z", "2026-10-03T15:30:00Z", "2026-10-03T15:45:00Z",
                "2026-10-03T16:00:00Z");
    FIRES_FLAGS("*/15 * * * *", "Australia/Lord_Howe", "2026-04-04T14:10:00Z", F(0, R, R, 0),
                "2026-04-04T14:15:00Z", "2026-04-04T14:30:00Z", "2026-04-04T14:45:00Z",
                "2026-04-04T15:30:00Z");
    FIRES_FLAGS("0 * * * *", "Australia/Lord_Howe", "2026-10-03T14:00:00Z", F(0, S, 0),
                "2026-10-03T14:30:00Z", "2026-10-03T15:30:00Z", "2026-10-03T16:00:00Z");
    FIRES("0 * * * *", "Australia/Lord_Howe", "2026-04-04T13:30:00Z", "2026-04-04T14:00:00Z",
          "2026-04-04T15:30:00Z", "2026-04-04T16:30:00Z");
}

/*
 * A model of the rules from tz_offset alone: walk UTC minute by minute,
 * keeping the highest wall-clock reading so far; at each minute u whose
 * reading passes it, the first match in between fires once, at u; shifted
 * when the clock jumped over it, repeated when the clock reads it again
 * within two hours. cron_next must give the same fires, chained from the
 * window's start and from any instant in the window.
 */
static bool model_match(const struct cron_expr *c, int64_t local_s) {
    int64_t days = local_s >= 0 ? local_s / 86400 : (local_s - 86399) / 86400, y;
    int sod = (int)(local_s - days * 86400), m, d;
    tz_civil_from_days(days, &y, &m, &d);
    int wd = (int)(((days % 7) + 11) % 7);
    bool dm = c->mday >> d & 1, dw = c->wday >> wd & 1;
    bool day = c->mday_any || c->wday_any ? dm && dw : dm || dw;
    return (c->month >> m & 1) && day && (c->hour >> (sod / 3600) & 1) &&
           (c->minute >> (sod / 60 % 60) & 1) && (c->second >> (sod % 60) & 1);
}

#define MODEL_MAX 2000

static bool model_check(int line, const char *expr, const char *zname, const char *from_s,
                        const char *to_s, int *count) {
    struct cron_expr c;
    struct tm_error e;
    err_clear(&e);
    if (cron_parse(expr, &c, &e) != 0 || c.has_seconds) {
        th_fail(__FILE__, line, "'%s': %s", expr, e.message);
        return false;
    }
    const struct tz *z = zone(zname);
    int64_t from = at(from_s) / 1000, to = at(to_s) / 1000;
    static int64_t fire[MODEL_MAX];
    static unsigned fire_flags[MODEL_MAX];
    int n = 0;
    int64_t hi = from + tz_offset(z, from, NULL); /* fires up to from are not modelled */
    for (int64_t u = from + 60; u <= to && n < MODEL_MAX; u += 60) {
        int64_t loc = u + tz_offset(z, u, NULL);
        if (loc <= hi) continue;
        int64_t l = hi + 60;
        while (l <= loc && !model_match(&c, l))
            l += 60;
        hi = loc;
        if (l > loc) continue;
        unsigned f = l < loc ? CRON_FIRE_SHIFTED : 0;
        for (int64_t v = u + 60; v <= u + 7200 && !f; v += 60)
            if (v + tz_offset(z, v, NULL) == l) f = CRON_FIRE_REPEATED;
        fire[n] = u * 1000;
        fire_flags[n++] = f;
    }
    char a[TIME_RFC3339_LEN + 1], b[TIME_RFC3339_LEN + 1], w[TIME_RFC3339_LEN + 1];
    /* Chained from the window's start, then from instants all over it. */
    int64_t t = from * 1000;
    for (int i = 0; i < n; i++) {
        int64_t next = 0;
        unsigned flags = 0;
        if (cron_next(&c, z, t, &next, &flags) != 0 || next != fire[i] || flags != fire_flags[i]) {
            time_format_rfc3339(fire[i], a);
            time_format_rfc3339(next, b);
            th_fail(__FILE__, line,
                    "'%s' in %s: the model fires at %s (flags %u), cron_next at "
                    "%s (flags %u)",
                    expr, zname, a, fire_flags[i], b, flags);
            return false;
        }
        t = next;
    }
    int i = 0;
    for (int64_t ms = from * 1000; n && ms < fire[n - 1]; ms += 7 * 60 * 1000 + 13001) {
        while (fire[i] <= ms)
            i++;
        int64_t next = 0;
        unsigned flags = 0;
        if (cron_next(&c, z, ms, &next, &flags) != 0 || next != fire[i] || flags != fire_flags[i]) {
            time_format_rfc3339(ms, w);
            time_format_rfc3339(fire[i], a);
            time_format_rfc3339(next, b);
            th_fail(__FILE__, line,
                    "'%s' in %s after %s: the model fires at %s (flags %u), "
                    "cron_next at %s (flags %u)",
                    expr, zname, w, a, fire_flags[i], b, flags);
            return false;
        }
    }
    *count += n;
    return true;
}

static void test_dst_model(void) {
    static const char *const exprs[] = {
        "*/15 * * * *", "0 * * * *",     "30 2 * * *", "30 1 * * *",      "45 1 * * *",
        "15 2 * * *",   "*/7 0-3 * * *", "0 0 * * *",  "59 1,2 * * *",    "0,30 1-2 * * SUN",
        "* 1 * * *",    "29,31 2 * * *", "0 3 * * *",  "5 0-4/2 1,4 * *", "*/10 2 8,25 * *",
    };
    static const struct {
        const char *zone, *from, *to;
    } windows[] = {
        {"America/New_York", "2026-03-06T00:00:00Z", "2026-03-10T00:00:00Z"},
        {"America/New_York", "2026-10-30T00:00:00Z", "2026-11-03T00:00:00Z"},
        {"Europe/London", "2026-03-27T00:00:00Z", "2026-03-31T00:00:00Z"},
        {"Europe/London", "2026-10-23T00:00:00Z", "2026-10-27T00:00:00Z"},
        {"Europe/Berlin", "2026-03-27T00:00:00Z", "2026-03-31T00:00:00Z"},
        {"Europe/Berlin", "2026-10-23T00:00:00Z", "2026-10-27T00:00:00Z"},
        {"Asia/Kolkata", "2026-03-06T00:00:00Z", "2026-03-10T00:00:00Z"},
        {"Australia/Lord_Howe", "2026-04-02T00:00:00Z", "2026-04-07T00:00:00Z"},
        {"Australia/Lord_Howe", "2026-10-01T00:00:00Z", "2026-10-06T00:00:00Z"},
        {"Australia/Lord_Howe", "2040-10-04T00:00:00Z", "2040-10-09T00:00:00Z"},
        {"America/New_York", "2040-11-02T00:00:00Z", "2040-11-06T00:00:00Z"},
    };
    for (size_t i = 0; i < sizeof exprs / sizeof exprs[0]; i++) {
        int count = 0;
        for (size_t w = 0; w < sizeof windows / sizeof windows[0]; w++) {
            if (!model_check(__LINE__, exprs[i], windows[w].zone, windows[w].from, windows[w].to,
                             &count))
                return;
        }
        if (count == 0) {
            th_fail(__FILE__, __LINE__, "'%s' fired in no window", exprs[i]);
            return;
        }
    }
}

/* ---- Time zones ---- */

static void test_tz_names(void) {
    static const char *const bad[] = {
        "../etc/passwd",
        "Nowhere/City",
        "",
        "/etc/passwd",
        "America//New_York",
        "America/",
        "America",
        "a b",
        "America/New_York\n",
        "zone.tab",
        "Europe/../UTC",
        "leapseconds",
        "right/UTC",
        "x234567890123456789012345678901234567890123456789012345678901234", /* 64 */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        const struct tz *z = NULL;
        struct tm_error e;
        err_clear(&e);
        if (tz_get(bad[i], &z, &e) != TM_EINVALID || z || strcmp(e.field, "timezone") != 0 ||
            !e.message[0]) {
            th_fail(__FILE__, __LINE__, "'%s' was not refused (field '%s')", bad[i], e.field);
            return;
        }
    }
    const struct tz *z = NULL;
    struct tm_error e;
    err_clear(&e);
    CHECK_INT(tz_get("Nowhere/City", &z, &e), TM_EINVALID);
    CHECK_STR(e.message, "timezone 'Nowhere/City' is not a zone of the system's tzdata");
    CHECK_INT(tz_get("../etc/passwd", &z, &e), TM_EINVALID);
    CHECK_STR(e.message, "timezone '../etc/passwd' is not a valid zone name");
    CHECK_INT(tz_get(NULL, &z, &e), TM_EINVALID);
    CHECK_INT(tz_get("right/UTC", &z, &e), TM_EINVALID);
    CHECK(strstr(e.message, "leap seconds"));
    /* Names that are zones: links, the odd characters. */
    static const char *const good[] = {"UTC",
                                       "Etc/UTC",
                                       "Etc/GMT+5",
                                       "Etc/GMT-14",
                                       "US/Eastern",
                                       "America/Port-au-Prince",
                                       "America/Argentina/Buenos_Aires"};
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        CHECK_INT(tz_get(good[i], &z, &e), 0);
        CHECK_STR(tz_name(z), good[i]);
    }
    CHECK_INT(tz_offset(zone("Etc/GMT+5"), 0, NULL), -5 * 3600);
    CHECK_INT(tz_offset(zone("Etc/GMT-14"), 0, NULL), 14 * 3600);
}

static void test_tz_utc(void) {
    const struct tz *a = zone("UTC"), *b = zone("UTC"), *c = zone("Etc/UTC");
    CHECK(a == b); /* cached */
    CHECK_STR(tz_name(c), "Etc/UTC");
    bool dst = true;
    CHECK_INT(tz_offset(a, 0, &dst), 0);
    CHECK(!dst);
    CHECK_INT(tz_offset(c, INT64_MAX, NULL), 0);
    CHECK_INT(tz_offset(c, INT64_MIN, NULL), 0);
    int64_t out[2];
    CHECK_INT(tz_local_to_utc(a, 1234567, out), 1);
    CHECK_INT(out[0], 1234567);
    CHECK_INT(tz_wall_first(a, 99), 99);
    CHECK_INT(tz_wall_max(a, 99), 99);
}

#define OFF(zname, when, off, isdst)                                    \
    do {                                                                \
        bool d_ = !(isdst);                                             \
        CHECK_INT(tz_offset(zone(zname), at(when) / 1000, &d_), (off)); \
        CHECK_INT(d_, (isdst));                                         \
    } while (0)

static void test_tz_offsets(void) {
    /* From zdump -v (tzdata 2025b). */
    OFF("America/New_York", "2026-03-08T06:59:59Z", -18000, false);
    OFF("America/New_York", "2026-03-08T07:00:00Z", -14400, true);
    OFF("America/New_York", "2026-11-01T05:59:59Z", -14400, true);
    OFF("America/New_York", "2026-11-01T06:00:00Z", -18000, false);
    OFF("America/New_York", "1883-11-18T16:59:59Z", -17762, false); /* LMT */
    OFF("America/New_York", "1883-11-18T17:00:00Z", -18000, false);
    OFF("America/New_York", "1700-01-01T00:00:00Z", -17762, false); /* before the first */
    OFF("Europe/London", "2026-03-29T00:59:59Z", 0, false);
    OFF("Europe/London", "2026-03-29T01:00:00Z", 3600, true);
    OFF("Europe/London", "2026-10-25T00:59:59Z", 3600, true);
    OFF("Europe/London", "2026-10-25T01:00:00Z", 0, false);
    OFF("Asia/Kolkata", "2026-06-01T00:00:00Z", 19800, false);
    OFF("Asia/Kolkata", "1941-09-30T18:29:59Z", 19800, false);
    OFF("Asia/Kolkata", "1941-09-30T18:30:00Z", 23400, true);
    OFF("Australia/Lord_Howe", "2026-04-04T14:59:59Z", 39600, true);
    OFF("Australia/Lord_Howe", "2026-04-04T15:00:00Z", 37800, false);
    OFF("Australia/Lord_Howe", "2026-10-03T15:29:59Z", 37800, false);
    OFF("Australia/Lord_Howe", "2026-10-03T15:30:00Z", 39600, true);

    /* Local to UTC: a gap (none), an overlap (two, earliest first), plain. */
    const struct tz *ny = zone("America/New_York");
    int64_t out[2];
    CHECK_INT(tz_local_to_utc(ny, at("2026-03-08T02:30:00Z") / 1000, out), 0);
    CHECK_INT(tz_wall_first(ny, at("2026-03-08T02:30:00Z") / 1000),
              at("2026-03-08T07:00:00Z") / 1000);
    CHECK_INT(tz_local_to_utc(ny, at("2026-03-08T03:00:00Z") / 1000, out), 1);
    CHECK_INT(out[0], at("2026-03-08T07:00:00Z") / 1000);
    CHECK_INT(tz_local_to_utc(ny, at("2026-11-01T01:30:00Z") / 1000, out), 2);
    CHECK_INT(out[0], at("2026-11-01T05:30:00Z") / 1000);
    CHECK_INT(out[1], at("2026-11-01T06:30:00Z") / 1000);
    CHECK_INT(tz_local_to_utc(ny, at("2026-07-04T12:00:00Z") / 1000, out), 1);
    CHECK_INT(out[0], at("2026-07-04T16:00:00Z") / 1000);
    /* During the second 01:30 the clock has already read 01:59:59 EDT. */
    CHECK_INT(tz_wall_max(ny, at("2026-11-01T06:30:00Z") / 1000),
              at("2026-11-01T01:59:59Z") / 1000);
    CHECK_INT(tz_wall_max(ny, at("2026-11-01T07:00:00Z") / 1000),
              at("2026-11-01T02:00:00Z") / 1000);
    const struct tz *lh = zone("Australia/Lord_Howe");
    CHECK_INT(tz_local_to_utc(lh, at("2026-10-04T02:29:59Z") / 1000, out), 0);
    CHECK_INT(tz_local_to_utc(lh, at("2026-04-05T01:30:00Z") / 1000, out), 2);
    CHECK_INT(out[0], at("2026-04-04T14:30:00Z") / 1000);
    CHECK_INT(out[1], at("2026-04-04T15:00:00Z") / 1000);
    CHECK_INT(tz_local_to_utc(lh, at("2026-04-05T01:29:59Z") / 1000, out), 1);
}

static void test_tz_footer(void) {
    /* 2040 is past the files' last transition (2037): the POSIX TZ string rules. */
    OFF("America/New_York", "2040-03-11T06:59:59Z", -18000, false);
    OFF("America/New_York", "2040-03-11T07:00:00Z", -14400, true);
    OFF("America/New_York", "2040-11-04T05:59:59Z", -14400, true);
    OFF("America/New_York", "2040-11-04T06:00:00Z", -18000, false);
    OFF("Europe/London", "2040-03-25T01:00:00Z", 3600, true);
    OFF("Europe/London", "2040-03-25T00:59:59Z", 0, false);
    OFF("Australia/Lord_Howe", "2040-03-31T14:59:59Z", 39600, true);
    OFF("Australia/Lord_Howe", "2040-03-31T15:00:00Z", 37800, false);
    OFF("Australia/Lord_Howe", "2040-10-06T15:29:59Z", 37800, false);
    OFF("Australia/Lord_Howe", "2040-10-06T15:30:00Z", 39600, true);
    OFF("Asia/Kolkata", "2040-01-01T00:00:00Z", 19800, false);
    /* 2300: the US rule still holds (second Sunday of March 2300 is the 11th). */
    OFF("America/New_York", "2300-03-11T06:59:59Z", -18000, false);
    OFF("America/New_York", "2300-03-11T07:00:00Z", -14400, true);
    FIRES_FLAGS("30 2 * * *", "America/New_York", "2040-03-10T12:00:00Z", F(S, 0),
                "2040-03-11T07:00:00Z", "2040-03-12T06:30:00Z");
    FIRES_FLAGS("30 1 * * *", "America/New_York", "2040-11-03T12:00:00Z", F(R, 0),
                "2040-11-04T05:30:00Z", "2040-11-05T06:30:00Z");
    FIRES_FLAGS("15 2 * * *", "Australia/Lord_Howe", "2040-10-06T00:00:00Z", F(S, 0),
                "2040-10-06T15:30:00Z", "2040-10-07T15:15:00Z");
}

static void test_tz_cache_clear(void) {
    const struct tz *z = zone("Europe/London");
    CHECK_STR(tz_name(z), "Europe/London");
    tz_cache_clear();
    z = zone("Europe/London");
    CHECK_INT(tz_offset(z, at("2026-07-01T00:00:00Z") / 1000, NULL), 3600);
}

/* ---- Threads ---- */

struct run {
    const char *zone, *expr;
    int64_t fires[400];
};

static void *run_fires(void *arg) {
    struct run *r = arg;
    const struct tz *z = NULL;
    struct cron_expr c;
    struct tm_error e;
    err_clear(&e);
    if (tz_get(r->zone, &z, &e) || cron_parse(r->expr, &c, &e)) return NULL;
    int64_t t = at("2026-01-01T00:00:00Z");
    for (int i = 0; i < 400; i++) {
        if (cron_next(&c, z, t, &t, NULL)) break;
        r->fires[i] = t;
    }
    return r;
}

static void test_threads(void) {
    struct run one[2] = {{"America/New_York", "0 1,2 * * *", {0}},
                         {"Australia/Lord_Howe", "30 1,2 * * *", {0}}};
    struct run two[2] = {one[0], one[1]};
    tz_cache_clear(); /* so the threads race to load the zones too */
    CHECK(run_fires(&one[0]) && run_fires(&one[1]));
    tz_cache_clear();
    pthread_t th[2];
    for (int i = 0; i < 2; i++)
        CHECK_INT(pthread_create(&th[i], NULL, run_fires, &two[i]), 0);
    void *ret[2];
    for (int i = 0; i < 2; i++)
        CHECK_INT(pthread_join(th[i], &ret[i]), 0);
    CHECK(ret[0] && ret[1]);
    for (int i = 0; i < 2; i++)
        CHECK(memcmp(one[i].fires, two[i].fires, sizeof one[i].fires) == 0);
    CHECK(one[0].fires[399] > at("2026-06-01T00:00:00Z"));
}

static const struct th_test tests[] = {
    {"cron parses each field, names, steps and lists", test_parse_fields},
    {"cron macros are their expansions", test_parse_macros},
    {"cron refusals name the field and the bad part", test_parse_errors},
    {"next fire in UTC: steps, month ends, leap day, the OR rule", test_next_utc},
    {"next fire: nothing within the horizon", test_next_not_found},
    {"DST in America/New_York", test_dst_new_york},
    {"DST in Europe/London", test_dst_london},
    {"DST in Europe/Berlin: a 02:30 daily job", test_dst_berlin},
    {"no DST in Asia/Kolkata (+05:30)", test_dst_kolkata},
    {"half-hour DST in Australia/Lord_Howe", test_dst_lord_howe},
    {"next fire agrees with a minute-by-minute model around transitions", test_dst_model},
    {"tz refuses bad and unknown names", test_tz_names},
    {"tz UTC is built in and cached", test_tz_utc},
    {"tz offsets around transitions, local to UTC", test_tz_offsets},
    {"tz POSIX footer after the last transition (2040, 2300)", test_tz_footer},
    {"tz cache clear", test_tz_cache_clear},
    {"two threads in two zones agree with one", test_threads},
    {NULL, NULL},
};

int main(int argc, char **argv) {
    return th_main(tests, argc, argv);
}
