/*
 * timeutil: see timeutil.h. Calendar arithmetic is done by hand (days from
 * civil, after Howard Hinnant's public-domain algorithm description) so that
 * parsing and formatting never touch the process time zone.
 */
#include "timeutil.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

int64_t time_now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t time_mono_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void time_cond_init(pthread_cond_t *c) {
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(c, &ca);
    pthread_condattr_destroy(&ca);
}

void time_cond_wait_ms(pthread_cond_t *c, pthread_mutex_t *m, int64_t ms) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    ts.tv_sec += ms / 1000;
    ts.tv_nsec += (ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    pthread_cond_timedwait(c, m, &ts);
}

static int64_t days_from_civil(int64_t y, int64_t m, int64_t d) {
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static void civil_from_days(int64_t z, int64_t *y, int *m, int *d) {
    z += 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    *d = (int)(doy - (153 * mp + 2) / 5 + 1);
    *m = (int)(mp < 10 ? mp + 3 : mp - 9);
    *y = yoe + era * 400 + (*m <= 2);
}

void time_format_rfc3339(int64_t ms, char out[TIME_RFC3339_LEN + 1]) {
    int64_t secs = ms >= 0 ? ms / 1000 : (ms - 999) / 1000;
    int msec = (int)(ms - secs * 1000);
    /* A reply or an event names the same second several times (created,
     * updated, the lease, the progress): the thread keeps the last one's
     * "YYYY-MM-DDTHH:MM:SS" and only the milliseconds are new. */
    static _Thread_local int64_t last_secs = INT64_MIN;
    static _Thread_local char last[20];
    if (secs != last_secs) {
        int64_t days = secs >= 0 ? secs / 86400 : (secs - 86399) / 86400;
        int sod = (int)(secs - days * 86400);
        int64_t y;
        int mo, d;
        civil_from_days(days, &y, &mo, &d);
        if (y < 0 || y > 9999) y = y < 0 ? 0 : 9999;
        /* By hand: this runs for every time field of every reply. */
        int v[] = {(int)y / 100, (int)y % 100, mo, d, sod / 3600, sod / 60 % 60, sod % 60};
        static const char sep[] = "\0\0--T::";
        char *p = last;
        for (int i = 0; i < 7; i++) {
            if (sep[i]) *p++ = sep[i];
            *p++ = (char)('0' + v[i] / 10);
            *p++ = (char)('0' + v[i] % 10);
        }
        last_secs = secs;
    }
    memcpy(out, last, 19);
    char *p = out + 19;
    *p++ = '.';
    *p++ = (char)('0' + msec / 100);
    *p++ = (char)('0' + msec / 10 % 10);
    *p++ = (char)('0' + msec % 10);
    *p++ = 'Z';
    *p = '\0';
}

static int take_digits(const char **s, int n, int *out) {
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (!isdigit((unsigned char)(*s)[i])) return -1;
        v = v * 10 + ((*s)[i] - '0');
    }
    *s += n;
    *out = v;
    return 0;
}

int time_parse_rfc3339(const char *s, int64_t *ms) {
    int y, mo, d, h, mi, se, frac = 0;
    if (take_digits(&s, 4, &y) || *s++ != '-' || take_digits(&s, 2, &mo) || *s++ != '-' ||
        take_digits(&s, 2, &d))
        return -1;
    if (*s != 'T' && *s != 't' && *s != ' ') return -1;
    s++;
    if (take_digits(&s, 2, &h) || *s++ != ':' || take_digits(&s, 2, &mi) || *s++ != ':' ||
        take_digits(&s, 2, &se))
        return -1;
    if (*s == '.') {
        s++;
        int n = 0;
        while (isdigit((unsigned char)*s)) {
            if (n < 3) frac = frac * 10 + (*s - '0');
            n++;
            s++;
        }
        if (n == 0 || n > 9) return -1;
        for (; n < 3; n++)
            frac *= 10;
    }
    int offset_min = 0;
    if (*s == 'Z' || *s == 'z') {
        s++;
    } else if (*s == '+' || *s == '-') {
        int sign = *s++ == '-' ? -1 : 1, oh, om;
        if (take_digits(&s, 2, &oh) || *s++ != ':' || take_digits(&s, 2, &om)) return -1;
        if (oh > 23 || om > 59) return -1;
        offset_min = sign * (oh * 60 + om);
    } else {
        return -1;
    }
    if (*s) return -1;
    static const int mdays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (mo < 1 || mo > 12 || d < 1 || d > mdays[mo - 1] || h > 23 || mi > 59 || se > 60) return -1;

    int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    if (mo == 2 && d == 29 && !leap) return -1;
    if (se == 60) se = 59;
    int64_t days = days_from_civil(y, mo, d);
    int64_t t = ((days * 86400 + h * 3600 + mi * 60 + se) - (int64_t)offset_min * 60) * 1000 + frac;
    if (t < TIME_MIN_MS || t > TIME_MAX_MS) return -1;
    *ms = t;
    return 0;
}
