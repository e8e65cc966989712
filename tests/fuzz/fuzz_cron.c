/*
 * fuzz_cron: cron_parse (a schedule's `cron` field), then cron_next in
 * four zones from an instant picked by the input's hash. A parse gives
 * either masks within their fields and no error, or TM_EINVALID on field
 * "cron" with a message: never both, never neither. Each fire is a whole
 * second after the instant asked about, strictly increasing when chained,
 * the first fire after the millisecond before it, and on the wall clock
 * either a match (flagged REPEATED exactly when that reading happens
 * twice) or, flagged SHIFTED, the end of a gap. The zone cache is filled
 * once and kept, so it is the same for every input.
 */
#include <stdlib.h>
#include <string.h>

#include "../../src/common/cron.h"
#include "fuzz.h"

static const char *const fuzz_zones[] = {"UTC", "America/New_York", "Australia/Lord_Howe",
                                         "Asia/Kolkata"};

static bool fuzz_matches(const struct cron_expr *c, int64_t local_s) {
    int64_t days = local_s >= 0 ? local_s / 86400 : (local_s - 86399) / 86400, y;
    int sod = (int)(local_s - days * 86400), m, d;
    tz_civil_from_days(days, &y, &m, &d);
    int wd = (int)((days % 7 + 11) % 7);
    bool dm = c->mday >> d & 1, dw = c->wday >> wd & 1;
    bool day = c->mday_any || c->wday_any ? dm && dw : dm || dw;
    return (c->month >> m & 1) && day && (c->hour >> (sod / 3600) & 1) &&
           (c->minute >> (sod / 60 % 60) & 1) && (c->second >> (sod % 60) & 1);
}

static void fuzz_check_masks(const struct cron_expr *c) {
    if (!c->second || c->second >> 60 || !c->minute || c->minute >> 60) abort();
    if (!c->hour || c->hour >> 24 || !c->mday || (c->mday & 1)) abort();
    if (!c->month || (c->month & 1) || c->month >> 13 || !c->wday || c->wday >> 7) abort();
    if (!c->has_seconds && c->second != 1) abort();
    if (c->mday_any && c->mday != 0xfffffffeu) abort();
    if (c->wday_any && c->wday != 0x7f) abort();
}

static void fuzz_check_next(const struct cron_expr *c, const struct tz *z, int64_t after) {
    for (int i = 0; i < 4; i++) {
        int64_t next = 0;
        unsigned flags = 0;
        int rc = cron_next(c, z, after, &next, &flags);
        if (rc == TM_ENOT_FOUND) return;
        if (rc != 0 || next <= after || next % 1000 != 0) abort();
        int64_t u = next / 1000, out[2];
        int n = tz_local_to_utc(z, u + tz_offset(z, u, NULL), out);
        if (flags == CRON_FIRE_SHIFTED) {
            /* The end of a gap: the offset grew at u. */
            if (tz_offset(z, u - 1, NULL) >= tz_offset(z, u, NULL)) abort();
        } else {
            if (flags & ~CRON_FIRE_REPEATED) abort();
            if (!fuzz_matches(c, u + tz_offset(z, u, NULL))) abort();
            if (n < 1 || out[0] != u || (n == 2) != (flags == CRON_FIRE_REPEATED)) abort();
        }
        int64_t again = 0;
        if (cron_next(c, z, next - 1, &again, NULL) != 0 || again != next) abort();
        after = next;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char text[CRON_MAX_TEXT + 64];
    size_t n = size < sizeof text - 1 ? size : sizeof text - 1;
    memcpy(text, data, n);
    text[n] = '\0';
    struct cron_expr c;
    struct tm_error e;
    err_clear(&e);
    int rc = cron_parse(text, &c, &e);
    if (rc != 0) {
        if (rc != TM_EINVALID || e.code != rc || strcmp(e.field, "cron") != 0) abort();
        if (strncmp(e.message, "'cron' ", 7) != 0) abort();
        return 0;
    }
    if (e.code) abort();
    fuzz_check_masks(&c);

    /* An instant from the bytes: 1900 to 2300, any millisecond. */
    uint64_t h = 14695981039346656037u;
    for (size_t i = 0; i < size; i++)
        h = (h ^ data[i]) * 1099511628211u;
    int64_t span_ms = INT64_C(400) * 366 * 86400 * 1000;
    int64_t after = (int64_t)(h % (uint64_t)span_ms) - INT64_C(70) * 365 * 86400 * 1000;
    for (size_t i = 0; i < sizeof fuzz_zones / sizeof fuzz_zones[0]; i++) {
        const struct tz *z = NULL;
        if (tz_get(fuzz_zones[i], &z, &e) != 0) abort();
        fuzz_check_next(&c, z, after);
    }
    return 0;
}
