/*
 * cron: see cron.h. The parser checks the text's characters first, so that
 * every message can quote the bad part as it is. cron_next searches the
 * wall clock field by field (month, day, hour, minute, second), skipping
 * with bit masks, then asks tz.h when that wall-clock reading first happens.
 */
#include "cron.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

/* The text of one bad part is quoted up to this many bytes. */
#define CRON_QUOTE_MAX 32

struct cron_field {
    const char *name; /* as messages say it */
    int lo, hi;       /* accepted in input */
    int bits_hi;      /* the highest bit set (6 for day-of-week, where 7 is 0) */
    const char *const *names;
    int names_base; /* the value of names[0] */
    const char *names_kind;
};

static const char *const cron_month_names[] = {"jan", "feb", "mar", "apr", "may", "jun", "jul",
                                               "aug", "sep", "oct", "nov", "dec", NULL};
static const char *const cron_wday_names[] = {"sun", "mon", "tue", "wed",
                                              "thu", "fri", "sat", NULL};

enum { CRON_SEC, CRON_MIN, CRON_HOUR, CRON_MDAY, CRON_MONTH, CRON_WDAY, CRON_NFIELDS };

static const struct cron_field cron_fields[CRON_NFIELDS] = {
    {"second", 0, 59, 59, NULL, 0, NULL},
    {"minute", 0, 59, 59, NULL, 0, NULL},
    {"hour", 0, 23, 23, NULL, 0, NULL},
    {"day-of-month", 1, 31, 31, NULL, 0, NULL},
    {"month", 1, 12, 12, cron_month_names, 1, "month name"},
    {"day-of-week", 0, 7, 6, cron_wday_names, 0, "day name"},
};

static const struct {
    const char *name, *expansion;
} cron_macros[] = {
    {"@yearly", "0 0 1 1 *"}, {"@annually", "0 0 1 1 *"}, {"@monthly", "0 0 1 * *"},
    {"@weekly", "0 0 * * 0"}, {"@daily", "0 0 * * *"},    {"@midnight", "0 0 * * *"},
    {"@hourly", "0 * * * *"},
};

static bool cron_is_space(char c) {
    return c == ' ' || c == '\t';
}

static int cron_fail(struct tm_error *e, const struct cron_field *f, const char *what,
                     const char *part, size_t len, const char *rest) {
    return err_set(e, TM_EINVALID, "cron", "'cron' %s field %s'%.*s'%s", f->name, what,
                   (int)(len > CRON_QUOTE_MAX ? CRON_QUOTE_MAX : len), part, rest);
}

/* A number or a name of field f, the whole of [s, s+len). */
static int cron_value(const struct cron_field *f, const char *s, size_t len, int *out,
                      struct tm_error *e) {
    if (len == 0) return cron_fail(e, f, "", s, len, " is missing a value");
    if (s[0] >= '0' && s[0] <= '9') {
        int v = 0;
        for (size_t i = 0; i < len; i++) {
            if (s[i] < '0' || s[i] > '9') return cron_fail(e, f, "", s, len, " is not a number");
            if (v <= f->hi) v = v * 10 + (s[i] - '0');
        }
        if (v < f->lo || v > f->hi) {
            char range[32];
            snprintf(range, sizeof range, " is out of range %d-%d", f->lo, f->hi);
            return cron_fail(e, f, "", s, len, range);
        }
        *out = v;
        return 0;
    }
    if (f->names && len == 3) {
        for (int i = 0; f->names[i]; i++) {
            if (strncasecmp(s, f->names[i], 3) == 0) {
                *out = f->names_base + i;
                return 0;
            }
        }
    }
    char why[48];
    snprintf(why, sizeof why, " is not a number%s%s", f->names ? " or a " : "",
             f->names ? f->names_kind : "");
    return cron_fail(e, f, "", s, len, why);
}

/* One list element: `*`, `n`, `a-b`, each with an optional `/step`. */
static int cron_element(const struct cron_field *f, const char *s, size_t len, uint64_t *bits,
                        struct tm_error *e) {
    const char *slash = memchr(s, '/', len);
    size_t base_len = slash ? (size_t)(slash - s) : len;
    int a, b, step = 1;
    if (base_len == 0) return cron_fail(e, f, "", s, len, " has no value before '/'");
    if (base_len == 1 && s[0] == '*') {
        a = f->lo;
        b = f->bits_hi;
    } else {
        const char *dash = memchr(s, '-', base_len);
        int rc;
        if (dash) {
            if (dash == s || dash == s + base_len - 1)
                return cron_fail(e, f, "range ", s, base_len, " is missing a bound");
            if ((rc = cron_value(f, s, (size_t)(dash - s), &a, e)) ||
                (rc = cron_value(f, dash + 1, base_len - (size_t)(dash - s) - 1, &b, e)))
                return rc;
            if (b < a) return cron_fail(e, f, "range ", s, base_len, " is reversed");
        } else {
            if ((rc = cron_value(f, s, base_len, &a, e))) return rc;
            b = !slash ? a : a > f->bits_hi ? a : f->bits_hi; /* n/step: from n to the end */
        }
    }
    if (slash) {
        const char *t = slash + 1;
        size_t tlen = len - base_len - 1;
        int span = f->bits_hi - f->lo + 1;
        if (tlen == 0) return cron_fail(e, f, "", s, len, " has no step after '/'");
        step = 0;
        for (size_t i = 0; i < tlen; i++) {
            if (t[i] < '0' || t[i] > '9')
                return cron_fail(e, f, "step ", t, tlen, " is not a number");
            if (step <= span) step = step * 10 + (t[i] - '0');
        }
        if (step < 1 || step > span) {
            char range[32];
            snprintf(range, sizeof range, " is out of range 1-%d", span);
            return cron_fail(e, f, "step ", t, tlen, range);
        }
    }
    for (int v = a; v <= b; v += step)
        *bits |= UINT64_C(1) << (v == 7 && f->bits_hi == 6 ? 0 : v);
    return 0;
}

/* One field: a bare `*` (or `?` for days), or a comma-separated list. */
static int cron_field_parse(const struct cron_field *f, const char *s, size_t len, uint64_t *bits,
                            bool *any, struct tm_error *e) {
    *bits = 0;
    *any = false;
    bool days = f == &cron_fields[CRON_MDAY] || f == &cron_fields[CRON_WDAY];
    if (len == 1 && (s[0] == '*' || s[0] == '?')) {
        if (s[0] == '?' && !days)
            return cron_fail(e, f, "", s, len, " is only allowed for day-of-month or day-of-week");
        *any = true;
        for (int v = f->lo; v <= f->bits_hi; v++)
            *bits |= UINT64_C(1) << v;
        return 0;
    }
    /* Vixie cron's rule: a day field that starts with '*' (a stepped star
     * too) is a star for the OR rule, restricted as it may be. */
    *any = s[0] == '*';
    const char *p = s, *end = s + len;
    for (;;) {
        const char *comma = memchr(p, ',', (size_t)(end - p));
        const char *q = comma ? comma : end;
        if (q == p) return cron_fail(e, f, "", s, len, " has an empty list element");
        int rc = cron_element(f, p, (size_t)(q - p), bits, e);
        if (rc) return rc;
        if (!comma) break;
        p = comma + 1;
    }
    return 0;
}

static int cron_month_days_max(int m) {
    static const int days[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    return days[m - 1];
}

static int64_t cron_day_gap_max(const struct cron_expr *c);

int cron_parse(const char *text, struct cron_expr *out, struct tm_error *e) {
    memset(out, 0, sizeof *out);
    if (!text) return err_set(e, TM_EINVALID, "cron", "'cron' is empty");
    size_t n = strnlen(text, CRON_MAX_TEXT + 1);
    if (n > CRON_MAX_TEXT)
        return err_set(e, TM_EINVALID, "cron", "'cron' is longer than %d characters",
                       CRON_MAX_TEXT);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)text[i];
        if ((c < 0x21 || c > 0x7e) && !cron_is_space((char)c))
            return err_set(e, TM_EINVALID, "cron",
                           "'cron' has a control or non-ASCII character at offset %zu", i);
    }
    const char *p = text, *end = text + n;
    while (p < end && cron_is_space(*p))
        p++;
    while (end > p && cron_is_space(end[-1]))
        end--;
    if (p == end) return err_set(e, TM_EINVALID, "cron", "'cron' is empty");

    if (*p == '@') {
        size_t len = (size_t)(end - p);
        for (size_t i = 0; i < sizeof cron_macros / sizeof cron_macros[0]; i++) {
            if (strlen(cron_macros[i].name) == len && strncasecmp(p, cron_macros[i].name, len) == 0)
                return cron_parse(cron_macros[i].expansion, out, e);
        }
        return err_set(e, TM_EINVALID, "cron",
                       "'cron' macro '%.*s' is not one of @yearly, @annually, @monthly, "
                       "@weekly, @daily, @midnight, @hourly",
                       (int)(len > CRON_QUOTE_MAX ? CRON_QUOTE_MAX : len), p);
    }

    const char *tok[CRON_NFIELDS];
    size_t tok_len[CRON_NFIELDS];
    int nf = 0;
    while (p < end) {
        const char *q = p;
        while (q < end && !cron_is_space(*q))
            q++;
        if (nf < CRON_NFIELDS) {
            tok[nf] = p;
            tok_len[nf] = (size_t)(q - p);
        }
        nf++;
        while (q < end && cron_is_space(*q))
            q++;
        p = q;
    }
    if (nf != 5 && nf != 6)
        return err_set(e, TM_EINVALID, "cron",
                       "'cron' has %d field%s, not 5 (minute hour day-of-month month "
                       "day-of-week) or 6 (second first)",
                       nf, nf == 1 ? "" : "s");

    uint64_t bits[CRON_NFIELDS];
    bool any[CRON_NFIELDS];
    int first = nf == 6 ? CRON_SEC : CRON_MIN;
    bits[CRON_SEC] = 1; /* five fields: at second 0 */
    any[CRON_SEC] = false;
    for (int i = first; i < CRON_NFIELDS; i++) {
        int t = i - first;
        int rc = cron_field_parse(&cron_fields[i], tok[t], tok_len[t], &bits[i], &any[i], e);
        if (rc) return rc;
    }

    /* Only day-of-month can make an expression that never fires (30 February);
     * a restricted day-of-week matches some day of every month. */
    if (any[CRON_WDAY] && !any[CRON_MDAY]) {
        bool fires = false;
        for (int m = 1; m <= 12 && !fires; m++) {
            if (!(bits[CRON_MONTH] >> m & 1)) continue;
            fires = (bits[CRON_MDAY] & ((UINT64_C(2) << cron_month_days_max(m)) - 2)) != 0;
        }
        if (!fires) {
            int md = CRON_MDAY - first, mo = CRON_MONTH - first;
            return err_set(
                e, TM_EINVALID, "cron",
                "'cron' never fires: day-of-month field '%.*s' does not occur in "
                "month field '%.*s'",
                (int)(tok_len[md] > CRON_QUOTE_MAX ? CRON_QUOTE_MAX : tok_len[md]), tok[md],
                (int)(tok_len[mo] > CRON_QUOTE_MAX ? CRON_QUOTE_MAX : tok_len[mo]), tok[mo]);
        }
    }

    out->second = bits[CRON_SEC];
    out->minute = bits[CRON_MIN];
    out->hour = (uint32_t)bits[CRON_HOUR];
    out->mday = (uint32_t)bits[CRON_MDAY];
    out->month = (uint16_t)bits[CRON_MONTH];
    out->wday = (uint8_t)bits[CRON_WDAY];
    out->has_seconds = nf == 6;
    out->mday_any = any[CRON_MDAY];
    out->wday_any = any[CRON_WDAY];

    /* Under the AND rule with both day fields short of every day, the days
     * that match may be rare (the 1st of February on a Sunday) or none: a
     * next fire is looked for CRON_HORIZON_YEARS ahead, and
     * one found nowhere stops the schedule for good, so such an expression
     * is refused here, whatever the day it is stored on. */
    int64_t gap = cron_day_gap_max(out);
    if (gap != 0) {
        int md = CRON_MDAY - first, wd = CRON_WDAY - first;
        int lm = (int)(tok_len[md] > CRON_QUOTE_MAX ? CRON_QUOTE_MAX : tok_len[md]);
        int lw = (int)(tok_len[wd] > CRON_QUOTE_MAX ? CRON_QUOTE_MAX : tok_len[wd]);
        if (gap < 0)
            return err_set(e, TM_EINVALID, "cron",
                           "'cron' never fires: no day matches both day-of-month field '%.*s' "
                           "and day-of-week field '%.*s' in its months",
                           lm, tok[md], lw, tok[wd]);
        return err_set(e, TM_EINVALID, "cron",
                       "'cron' fires on days up to %lld years apart (day-of-month field '%.*s' "
                       "and day-of-week field '%.*s' must both match): next fires are looked "
                       "for %d years ahead",
                       (long long)(gap / 365), lm, tok[md], lw, tok[wd], CRON_HORIZON_YEARS);
    }
    return 0;
}

/* ---- Next fire ---- */

/* The lowest set bit of mask at or above from, up to max; -1 if none. */
static int cron_next_bit(uint64_t mask, int from, int max) {
    if (from > max) return -1;
    uint64_t m = mask >> from;
    if (!m) return -1;
    int r = from + __builtin_ctzll(m);
    return r <= max ? r : -1;
}

static int64_t cron_floor_div(int64_t a, int64_t b) {
    int64_t q = a / b;
    return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

static bool cron_is_leap(int64_t y) {
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static bool cron_day_matches(const struct cron_expr *c, int64_t days, int d) {
    int wd = (int)((days % 7 + 11) % 7); /* 1970-01-01 was a Thursday */
    bool dm = c->mday >> d & 1, dw = c->wday >> wd & 1;
    return c->mday_any || c->wday_any ? dm && dw : dm || dw;
}

/* The AND rule (a day field that is a star, stepped or not) with both
 * fields short of every day: the longest run of days from one matching
 * day to the next, over the Gregorian calendar's 400-year cycle (which
 * repeats its weekdays), when it is longer than CRON_HORIZON_YEARS (a
 * year counted as 365 days); -1 when no day matches; else 0. */
static int64_t cron_day_gap_max(const struct cron_expr *c) {
    uint64_t all_mdays = ((UINT64_C(1) << 32) - 2), all_wdays = 0x7f;
    if (!(c->mday_any || c->wday_any) || (c->mday & all_mdays) == all_mdays ||
        (c->wday & all_wdays) == all_wdays)
        return 0;
    int64_t first = -1, last = -1, gap = 0;
    for (int64_t y = 2000; y < 2400; y++) {
        for (int mo = 1; mo <= 12; mo++) {
            if (!(c->month >> mo & 1)) continue;
            int mdays = mo == 2 ? 28 + cron_is_leap(y) : cron_month_days_max(mo);
            int64_t day1 = tz_days_from_civil(y, mo, 1);
            for (int d = 1; d <= mdays; d++) {
                if (!(c->mday >> d & 1) || !cron_day_matches(c, day1 + d - 1, d)) continue;
                if (first < 0)
                    first = day1 + d - 1;
                else if (day1 + d - 1 - last > gap)
                    gap = day1 + d - 1 - last;
                last = day1 + d - 1;
            }
        }
    }
    if (first < 0) return -1;
    if (first + 146097 - last > gap) gap = first + 146097 - last;
    return gap > CRON_HORIZON_YEARS * 365 ? gap : 0;
}

/* The first wall-clock second >= from (local seconds) that c matches,
 * within CRON_HORIZON_YEARS; -1 when there is none. */
static int cron_match_from(const struct cron_expr *c, int64_t from, int64_t *out) {
    int64_t days = cron_floor_div(from, 86400), y;
    int sod = (int)(from - days * 86400), mo, d;
    tz_civil_from_days(days, &y, &mo, &d);
    int h = sod / 3600, mi = sod / 60 % 60, s = sod % 60;
    int64_t y_end = y + CRON_HORIZON_YEARS;
    while (y <= y_end) {
        int nmo = cron_next_bit(c->month, mo, 12);
        if (nmo < 0) {
            y++, mo = 1, d = 1, h = mi = s = 0;
            continue;
        }
        if (nmo != mo) mo = nmo, d = 1, h = mi = s = 0;
        int mdays = mo == 2 ? 28 + cron_is_leap(y) : cron_month_days_max(mo);
        if (d > mdays) {
            mo++, d = 1, h = mi = s = 0;
            continue;
        }
        int64_t day = tz_days_from_civil(y, mo, d);
        if (!cron_day_matches(c, day, d)) {
            d++, h = mi = s = 0;
            continue;
        }
        int nh = cron_next_bit(c->hour, h, 23);
        if (nh < 0) {
            d++, h = mi = s = 0;
            continue;
        }
        if (nh != h) h = nh, mi = s = 0;
        int nmi = cron_next_bit(c->minute, mi, 59);
        if (nmi < 0) {
            h++, mi = s = 0; /* h = 24 ends the day above */
            continue;
        }
        if (nmi != mi) mi = nmi, s = 0;
        int ns = cron_next_bit(c->second, s, 59);
        if (ns < 0) {
            mi++, s = 0; /* mi = 60 ends the hour above */
            continue;
        }
        *out = day * 86400 + h * 3600 + mi * 60 + ns;
        return 0;
    }
    return -1;
}

/* Years 1 to 9999, in seconds since the epoch. */
#define CRON_AFTER_MIN_S INT64_C(-62135596800)
#define CRON_AFTER_MAX_S INT64_C(253402300799)

int cron_next(const struct cron_expr *c, const struct tz *z, int64_t after_ms, int64_t *next_ms,
              unsigned *flags) {
    if (flags) *flags = 0;
    int64_t a = cron_floor_div(after_ms, 1000); /* a whole second u is after after_ms iff u > a */
    if (a < CRON_AFTER_MIN_S || a > CRON_AFTER_MAX_S) return TM_ENOT_FOUND;
    /*
     * Wall-clock readings up to tz_wall_max(a) have all happened by a (in a
     * repeated hour, the first pass counts), so the next slot is the first
     * match after it. Its instant, tz_wall_first, is when the clock first
     * reads that match or later: the match itself, its first occurrence,
     * or the end of the gap it falls in. That is after a, since the clock
     * had not read the match by a.
     */
    int64_t l;
    if (cron_match_from(c, tz_wall_max(z, a) + 1, &l)) return TM_ENOT_FOUND;
    int64_t u = tz_wall_first(z, l), at[2];
    /* A slot past 9999 cannot be written as RFC 3339 (time_format_rfc3339
     * would show another date): none, as the search's input is. */
    if (u > CRON_AFTER_MAX_S) return TM_ENOT_FOUND;
    int n = tz_local_to_utc(z, l, at);
    unsigned f = 0;
    if (n == 0 || at[0] != u)
        f = CRON_FIRE_SHIFTED;
    else if (n == 2)
        f = CRON_FIRE_REPEATED;
    *next_ms = u * 1000;
    if (flags) *flags = f;
    return 0;
}
