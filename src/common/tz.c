/*
 * tz: see tz.h. A zone is three things read from its TZif file: the
 * transitions (sorted UTC instants, each starting a local time type), the
 * types (UTC offset, DST flag), and the footer's POSIX TZ rule for what
 * follows the last transition. Everything else answers from one primitive,
 * tz_at: the offset at an instant and where that offset's interval ends.
 * Local-to-UTC questions walk those intervals over the few days where an
 * answer can lie (bounded by the zone's smallest and largest offsets), so
 * they need no search over the calendar and no process time zone.
 */
#include "tz.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "xalloc.h"

/* Instants beyond this many seconds from the epoch are clamped to it
 * (about 278,000 years), so that calendar sums cannot overflow. */
#define TZ_LIMIT_S (INT64_C(1) << 43)
/* A TZif file larger than this is not one (the largest is a few KiB). */
#define TZ_FILE_MAX (1 << 20)
/* No zone has ever been 26 hours from UTC; refusing more bounds the walks. */
#define TZ_OFFSET_MAX (26 * 3600)
/* The longest footer taken (real ones are under 60 characters). */
#define TZ_FOOTER_MAX 127
/* A loaded zone's file is looked at (one stat) at most this often, and
 * read again when it changed: a tzdata upgrade under a running server. */
#define TZ_RECHECK_MS 10000
/* The longest zone directory taken from TZDIR. */
#define TZ_DIR_MAX 1024

/* One date rule of a POSIX TZ string: Jn (day 1..365, 29 February never
 * counted), n (day 0..365, counted), or Mm.w.d (day d of week w of month
 * m, week 5 meaning the last), at time_s local seconds past midnight. */
enum tz_rule_kind { TZ_RULE_JULIAN1, TZ_RULE_DAY0, TZ_RULE_MONTH };
struct tz_rule_date {
    enum tz_rule_kind kind;
    int n, m, w, d;
    int32_t time_s;
};

/* The footer: standard time, and daylight time between start and end. */
struct tz_posix {
    bool present;
    bool has_dst;
    int32_t std_off, dst_off; /* seconds east of UTC */
    struct tz_rule_date start, end;
};

struct tz_type {
    int32_t off;
    bool dst;
};

/* What a zone file was when it was read: a change of any is a new file. */
struct tz_stamp {
    dev_t dev;
    ino_t ino;
    off_t size;
    struct timespec mtime;
};

struct tz {
    char *name;
    size_t ntrans;
    int64_t *trans;      /* ascending UTC instants */
    uint8_t *trans_type; /* the type each transition starts */
    size_t ntypes;       /* >= 1; type 0 rules before the first transition */
    struct tz_type *types;
    struct tz_posix footer;
    int32_t off_min, off_max; /* over every type and the footer */
    struct tz *next;          /* the cache's list, or the retired ones' */
    /* The file it was read from, as it was then (none for the built-in
     * UTC), and when it was last compared with the file; the file that
     * replaced it and did not read (logged once, bad_logged): under the
     * cache's lock, unlike the zone itself. */
    bool from_file;
    struct tz_stamp file;
    int64_t checked_ms; /* CLOCK_MONOTONIC */
    bool bad_logged;
    struct tz_stamp bad;
    /* The borrowers holding it (tz_get, tz_release), and whether it left
     * the cache (tz_retire): a retired zone is freed when the last one
     * gives it back. Under the cache's lock. */
    long refs;
    bool retired;
};

/* ---- Calendar ---- */

static int64_t floor_div(int64_t a, int64_t b) {
    int64_t q = a / b;
    return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

int64_t tz_days_from_civil(int64_t y, int m, int d) {
    /* Counted from 1 March, so that the leap day ends the year. */
    y -= m <= 2;
    int64_t era = floor_div(y, 400);
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

void tz_civil_from_days(int64_t days, int64_t *y, int *m, int *d) {
    days += 719468;
    int64_t era = floor_div(days, 146097);
    int64_t doe = days - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    *d = (int)(doy - (153 * mp + 2) / 5 + 1);
    *m = (int)(mp < 10 ? mp + 3 : mp - 9);
    *y = yoe + era * 400 + (*m <= 2);
}

static bool tz_is_leap(int64_t y) {
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static int tz_month_days(int64_t y, int m) {
    static const int days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    return m == 2 && tz_is_leap(y) ? 29 : days[m - 1];
}

static int64_t tz_clamp(int64_t s) {
    return s < -TZ_LIMIT_S ? -TZ_LIMIT_S : s > TZ_LIMIT_S ? TZ_LIMIT_S : s;
}

/* ---- The footer's rule ---- */

/* The UTC instant at which a rule date of `year` happens, read on a wall
 * clock `off` seconds east of UTC (standard time for the start of DST,
 * daylight time for its end, as POSIX says). */
static int64_t tz_rule_instant(const struct tz_rule_date *r, int64_t year, int32_t off) {
    int64_t jan1 = tz_days_from_civil(year, 1, 1), day;
    if (r->kind == TZ_RULE_JULIAN1) {
        day = jan1 + r->n - 1 + (tz_is_leap(year) && r->n >= 60);
    } else if (r->kind == TZ_RULE_DAY0) {
        day = jan1 + r->n;
    } else {
        int64_t first = tz_days_from_civil(year, r->m, 1);
        int wday_first = (int)((first % 7 + 11) % 7); /* 1970-01-01 was a Thursday */
        day = first + (r->d - wday_first + 7) % 7 + (int64_t)(r->w - 1) * 7;
        if (day >= first + tz_month_days(year, r->m)) day -= 7; /* week 5: the last */
    }
    return day * 86400 + r->time_s - off;
}

/* The footer's offset at u, and the next instant > u at which the rule
 * changes something (or INT64_MAX). */
static void tz_posix_at(const struct tz_posix *p, int64_t u, int32_t *off, bool *dst,
                        int64_t *end) {
    *off = p->std_off;
    *dst = false;
    *end = INT64_MAX;
    if (!p->has_dst) return;
    int64_t y;
    int m, d;
    tz_civil_from_days(floor_div(u + p->std_off, 86400), &y, &m, &d);
    /* The changes of five years around u, in time order; a rule's time may
     * be up to a week from its date, so the nearer years alone can miss. On
     * a tie the later-listed change wins (all-year DST's end and start). */
    struct tz_change {
        int64_t t;
        bool to_dst;
    } ev[10];
    int n = 0;
    for (int64_t yy = y - 2; yy <= y + 2; yy++) {
        ev[n].t = tz_rule_instant(&p->start, yy, p->std_off);
        ev[n++].to_dst = true;
        ev[n].t = tz_rule_instant(&p->end, yy, p->dst_off);
        ev[n++].to_dst = false;
    }
    for (int i = 1; i < n; i++) {
        for (int j = i; j > 0 && ev[j - 1].t > ev[j].t; j--) {
            struct tz_change tmp = ev[j];
            ev[j] = ev[j - 1];
            ev[j - 1] = tmp;
        }
    }
    for (int i = 0; i < n; i++) {
        if (ev[i].t <= u) {
            *dst = ev[i].to_dst;
        } else {
            *end = ev[i].t;
            break;
        }
    }
    *off = *dst ? p->dst_off : p->std_off;
}

/* ---- The primitive ---- */

/* The zone's offset and DST flag at u, and the end of the interval of
 * instants that share them (> u; INT64_MAX when nothing changes again). */
static void tz_at(const struct tz *z, int64_t u, int32_t *off, bool *dst, int64_t *end) {
    size_t t = 0;
    if (z->ntrans == 0 || u >= z->trans[z->ntrans - 1]) {
        if (z->footer.present) {
            tz_posix_at(&z->footer, u, off, dst, end);
            return;
        }
        t = z->ntrans ? z->trans_type[z->ntrans - 1] : 0;
        *end = INT64_MAX;
    } else if (u < z->trans[0]) {
        *end = z->trans[0];
    } else {
        size_t lo = 0, hi = z->ntrans - 1; /* trans[lo] <= u < trans[hi] */
        while (hi - lo > 1) {
            size_t mid = lo + (hi - lo) / 2;
            if (z->trans[mid] <= u)
                lo = mid;
            else
                hi = mid;
        }
        t = z->trans_type[lo];
        *end = z->trans[hi];
    }
    *off = z->types[t].off;
    *dst = z->types[t].dst;
}

int32_t tz_offset(const struct tz *z, int64_t utc_s, bool *dst) {
    int32_t off;
    bool d;
    int64_t end;
    tz_at(z, tz_clamp(utc_s), &off, &d, &end);
    if (dst) *dst = d;
    return off;
}

/*
 * The walks below visit the intervals of tz_at from a window's start. An
 * instant u reads u + off on the wall clock with off_min <= off <= off_max,
 * so every instant that reads L lies in [L - off_max, L - off_min].
 */
int tz_local_to_utc(const struct tz *z, int64_t local_s, int64_t out[2]) {
    int64_t l = tz_clamp(local_s);
    int64_t u = l - z->off_max, last = l - z->off_min;
    int n = 0;
    while (u <= last) {
        int32_t off;
        bool dst;
        int64_t end;
        tz_at(z, u, &off, &dst, &end);
        int64_t x = l - off;
        if (x >= u && x < end && n < 2) out[n++] = x;
        if (end == INT64_MAX) break;
        u = end;
    }
    return n;
}

int64_t tz_wall_first(const struct tz *z, int64_t local_s) {
    int64_t l = tz_clamp(local_s);
    int64_t u = l - z->off_max;
    for (;;) {
        int32_t off;
        bool dst;
        int64_t end;
        tz_at(z, u, &off, &dst, &end);
        if (u + off >= l) return u; /* the clock jumped over l at u (or u reads l) */
        if (l - off < end) return l - off;
        u = end; /* ends by l - off_min, where u + off >= l */
    }
}

int64_t tz_wall_max(const struct tz *z, int64_t utc_s) {
    /* Before a - (off_max - off_min) the clock read less than it does at a. */
    int64_t a = tz_clamp(utc_s);
    int64_t u = a - (z->off_max - z->off_min), best = INT64_MIN;
    while (u <= a) {
        int32_t off;
        bool dst;
        int64_t end;
        tz_at(z, u, &off, &dst, &end);
        int64_t hi = end - 1 < a ? end - 1 : a;
        if (hi + off > best) best = hi + off;
        if (end == INT64_MAX) break;
        u = end;
    }
    return best;
}

const char *tz_name(const struct tz *z) {
    return z->name;
}

/* ---- The POSIX TZ string ---- */

/* A zone abbreviation: three or more letters, or <...> of letters, digits, '+' and '-'. */
static bool tz_px_name(const char **s) {
    const char *p = *s;
    size_t n = 0;
    if (*p == '<') {
        for (p++; (*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') ||
                  (*p >= '0' && *p <= '9') || *p == '+' || *p == '-';
             p++)
            n++;
        if (*p != '>' || n < 3) return false;
        p++;
    } else {
        for (; (*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z'); p++)
            n++;
        if (n < 3) return false;
    }
    *s = p;
    return true;
}

static bool tz_px_number(const char **s, int digits_max, int max, int *out) {
    const char *p = *s;
    int v = 0, n = 0;
    while (*p >= '0' && *p <= '9') {
        if (++n > digits_max) return false;
        v = v * 10 + (*p++ - '0');
    }
    if (n == 0 || v > max) return false;
    *s = p;
    *out = v;
    return true;
}

/* [+-]hh[:mm[:ss]], hours up to hours_max; seconds, signed. */
static bool tz_px_hms(const char **s, int hours_max, int32_t *out) {
    const char *p = *s;
    int sign = 1, h, m = 0, sec = 0;
    if (*p == '+' || *p == '-') sign = *p++ == '-' ? -1 : 1;
    if (!tz_px_number(&p, 3, hours_max, &h)) return false;
    if (*p == ':') {
        p++;
        if (!tz_px_number(&p, 2, 59, &m)) return false;
        if (*p == ':') {
            p++;
            if (!tz_px_number(&p, 2, 59, &sec)) return false;
        }
    }
    *s = p;
    *out = sign * (h * 3600 + m * 60 + sec);
    return true;
}

static bool tz_px_date(const char **s, struct tz_rule_date *r) {
    const char *p = *s;
    memset(r, 0, sizeof *r);
    if (*p == 'J') {
        p++;
        r->kind = TZ_RULE_JULIAN1;
        if (!tz_px_number(&p, 3, 365, &r->n) || r->n < 1) return false;
    } else if (*p == 'M') {
        p++;
        r->kind = TZ_RULE_MONTH;
        if (!tz_px_number(&p, 2, 12, &r->m) || r->m < 1 || *p++ != '.') return false;
        if (!tz_px_number(&p, 1, 5, &r->w) || r->w < 1 || *p++ != '.') return false;
        if (!tz_px_number(&p, 1, 6, &r->d)) return false;
    } else {
        r->kind = TZ_RULE_DAY0;
        if (!tz_px_number(&p, 3, 365, &r->n)) return false;
    }
    r->time_s = 7200; /* 02:00 unless given */
    if (*p == '/') {
        p++;
        if (!tz_px_hms(&p, 167, &r->time_s)) return false; /* RFC 8536's extension */
    }
    *s = p;
    return true;
}

/* Parses a whole POSIX TZ string ("EST5EDT,M3.2.0,M11.1.0"); false if it is not one. */
static bool tz_px_parse(const char *s, struct tz_posix *p) {
    memset(p, 0, sizeof *p);
    int32_t v;
    if (!tz_px_name(&s) || !tz_px_hms(&s, 24, &v)) return false;
    p->std_off = -v; /* POSIX counts west of UTC */
    if (*s) {
        if (!tz_px_name(&s)) return false;
        p->has_dst = true;
        p->dst_off = p->std_off + 3600;
        if (*s && *s != ',') {
            if (!tz_px_hms(&s, 24, &v)) return false;
            p->dst_off = -v;
        }
        if (*s == ',') {
            s++;
            if (!tz_px_date(&s, &p->start) || *s++ != ',' || !tz_px_date(&s, &p->end)) return false;
        } else {
            /* No rule: the United States' since 2007, as glibc assumes. */
            p->start = (struct tz_rule_date){TZ_RULE_MONTH, 0, 3, 2, 0, 7200};
            p->end = (struct tz_rule_date){TZ_RULE_MONTH, 0, 11, 1, 0, 7200};
        }
    }
    if (*s) return false;
    if (p->std_off < -TZ_OFFSET_MAX || p->std_off > TZ_OFFSET_MAX) return false;
    if (p->dst_off < -TZ_OFFSET_MAX || p->dst_off > TZ_OFFSET_MAX) return false;
    p->present = true;
    return true;
}

/* ---- TZif ---- */

struct tz_header {
    int version;
    uint32_t isutcnt, isstdcnt, leapcnt, timecnt, typecnt, charcnt;
};

static uint32_t tz_be32(const uint8_t *p) {
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static int64_t tz_be64(const uint8_t *p) {
    return (int64_t)((uint64_t)tz_be32(p) << 32 | tz_be32(p + 4));
}

#define TZ_HEADER_LEN 44

static bool tz_header_read(const uint8_t *p, size_t n, struct tz_header *h) {
    if (n < TZ_HEADER_LEN || memcmp(p, "TZif", 4) != 0) return false;
    if (p[4] == 0)
        h->version = 1;
    else if (p[4] >= '2' && p[4] <= '4')
        h->version = p[4] - '0';
    else
        return false;
    h->isutcnt = tz_be32(p + 20);
    h->isstdcnt = tz_be32(p + 24);
    h->leapcnt = tz_be32(p + 28);
    h->timecnt = tz_be32(p + 32);
    h->typecnt = tz_be32(p + 36);
    h->charcnt = tz_be32(p + 40);
    return true;
}

/* The data block's length after a header, with times of `ts` bytes. */
static uint64_t tz_block_len(const struct tz_header *h, unsigned ts) {
    return (uint64_t)h->timecnt * (ts + 1) + (uint64_t)h->typecnt * 6 + h->charcnt +
           (uint64_t)h->leapcnt * (ts + 4) + h->isstdcnt + h->isutcnt;
}

static void tz_free(struct tz *z) {
    if (!z) return;
    free(z->name);
    free(z->trans);
    free(z->trans_type);
    free(z->types);
    free(z);
}

static void tz_bounds(struct tz *z) {
    z->off_min = z->off_max = z->types[0].off;
    for (size_t i = 0; i < z->ntypes; i++) {
        if (z->types[i].off < z->off_min) z->off_min = z->types[i].off;
        if (z->types[i].off > z->off_max) z->off_max = z->types[i].off;
    }
    if (z->footer.present) {
        int32_t f[2] = {z->footer.std_off,
                        z->footer.has_dst ? z->footer.dst_off : z->footer.std_off};
        for (int i = 0; i < 2; i++) {
            if (f[i] < z->off_min) z->off_min = f[i];
            if (f[i] > z->off_max) z->off_max = f[i];
        }
    }
}

/* Reads a TZif file's bytes into a zone. NULL when they are not one, or
 * when the zone counts leap seconds (*leap set). */
static struct tz *tz_parse(const uint8_t *p, size_t n, bool *leap) {
    struct tz_header h;
    *leap = false;
    if (!tz_header_read(p, n, &h)) return NULL;
    unsigned ts = 4;
    uint64_t len = tz_block_len(&h, 4);
    const uint8_t *end = p + n;
    if (len > n - TZ_HEADER_LEN) return NULL;
    const uint8_t *d = p + TZ_HEADER_LEN;
    if (h.version >= 2) {
        /* Skip the 32-bit data: the 64-bit header, data and footer follow. */
        const uint8_t *p2 = d + len;
        if (!tz_header_read(p2, (size_t)(end - p2), &h)) return NULL;
        ts = 8;
        len = tz_block_len(&h, 8);
        d = p2 + TZ_HEADER_LEN;
        if (len > (uint64_t)(end - d)) return NULL;
    }
    if (h.leapcnt) {
        *leap = true;
        return NULL;
    }
    if (h.typecnt == 0 || h.typecnt > 256 || h.charcnt == 0) return NULL;
    if ((h.isstdcnt && h.isstdcnt != h.typecnt) || (h.isutcnt && h.isutcnt != h.typecnt))
        return NULL;

    struct tz *z = xcalloc(1, sizeof *z);
    z->ntrans = h.timecnt;
    z->ntypes = h.typecnt;
    z->trans = xmalloc((h.timecnt ? h.timecnt : 1) * sizeof *z->trans);
    z->trans_type = xmalloc(h.timecnt ? h.timecnt : 1);
    z->types = xmalloc(h.typecnt * sizeof *z->types);
    const uint8_t *q = d;
    for (size_t i = 0; i < z->ntrans; i++, q += ts) {
        z->trans[i] = ts == 8 ? tz_be64(q) : (int32_t)tz_be32(q);
        if (i && z->trans[i] <= z->trans[i - 1]) goto bad;
    }
    for (size_t i = 0; i < z->ntrans; i++, q++) {
        if (*q >= h.typecnt) goto bad;
        z->trans_type[i] = *q;
    }
    for (size_t i = 0; i < z->ntypes; i++, q += 6) {
        int32_t off = (int32_t)tz_be32(q);
        if (off < -TZ_OFFSET_MAX || off > TZ_OFFSET_MAX || q[4] > 1 || q[5] >= h.charcnt) goto bad;
        z->types[i].off = off;
        z->types[i].dst = q[4];
    }
    if (ts == 8) {
        /* The footer: "\n" TZ-string "\n"; an empty string says no rule. */
        const uint8_t *f = d + len;
        if (f >= end || *f != '\n') goto bad;
        const uint8_t *nl = memchr(f + 1, '\n', (size_t)(end - f - 1));
        if (!nl || nl - f - 1 > TZ_FOOTER_MAX) goto bad;
        size_t flen = (size_t)(nl - f - 1);
        if (flen) {
            char text[TZ_FOOTER_MAX + 1];
            memcpy(text, f + 1, flen);
            text[flen] = '\0';
            if (memchr(text, '\0', flen) || !tz_px_parse(text, &z->footer)) goto bad;
        }
    }
    tz_bounds(z);
    return z;
bad:
    tz_free(z);
    return NULL;
}

/* ---- Names and the cache ---- */

static bool tz_name_is_valid(const char *name) {
    size_t n = strlen(name);
    if (n == 0 || n > TZ_NAME_MAX || name[0] == '/' || name[n - 1] == '/') return false;
    for (size_t i = 0; i < n; i++) {
        char c = name[i];
        bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                  c == '/' || c == '_' || c == '-' || c == '+';
        if (!ok || (c == '/' && name[i + 1] == '/')) return false;
    }
    return true; /* no '.', so no ".." either */
}

/* Where zones are read: $TZDIR when set (as glibc takes it), else TZ_DIR.
 * Read once, under the cache's lock, by the first load: a recheck outside
 * the lock (tz_file_check) comes after its zone's load. */
static const char *tz_dir(void) {
    static char dir[TZ_DIR_MAX + 1];
    if (!dir[0]) {
        const char *env = getenv("TZDIR");
        snprintf(dir, sizeof dir, "%s", env && env[0] && strlen(env) <= TZ_DIR_MAX ? env : TZ_DIR);
    }
    return dir;
}

static void tz_path(char *path, size_t size, const char *name) {
    snprintf(path, size, "%s/%s", tz_dir(), name);
}

/* The zone file's bytes and its stat, or NULL when there is no regular
 * file of a sane size. */
static uint8_t *tz_file_read(const char *name, size_t *len, struct stat *st_out) {
    char path[TZ_DIR_MAX + TZ_NAME_MAX + 2];
    tz_path(path, sizeof path, name);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return NULL;
    struct stat st;
    uint8_t *data = NULL;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size < TZ_HEADER_LEN ||
        st.st_size > TZ_FILE_MAX)
        goto out;
    size_t n = (size_t)st.st_size, got = 0;
    data = xmalloc(n);
    while (got < n) {
        ssize_t r = read(fd, data + got, n - got);
        if (r <= 0) {
            free(data);
            data = NULL;
            goto out;
        }
        got += (size_t)r;
    }
    *len = n;
    *st_out = st;
out:
    close(fd);
    return data;
}

static pthread_mutex_t tz_cache_lock = PTHREAD_MUTEX_INITIALIZER;
static struct tz *tz_cache; /* guarded by tz_cache_lock; entries immutable */
/* Zones whose file changed since they were read, out of the cache and
 * still held by a borrower (a schedule being fired, read or changed):
 * each is freed by the tz_release that gives back its last reference. */
static struct tz *tz_retired;

static int64_t tz_mono_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void tz_stamp_of(struct tz_stamp *t, const struct stat *st) {
    *t = (struct tz_stamp){st->st_dev, st->st_ino, st->st_size, st->st_mtim};
}

static bool tz_stamp_equal(const struct tz_stamp *a, const struct tz_stamp *b) {
    return a->dev == b->dev && a->ino == b->ino && a->size == b->size &&
           a->mtime.tv_sec == b->mtime.tv_sec && a->mtime.tv_nsec == b->mtime.tv_nsec;
}

/* The zone in name's file, without its name; NULL when there is no such
 * file or it does not read as a zone (*leap: one with leap seconds). */
static struct tz *tz_file_load(const char *name, bool *leap) {
    size_t len = 0;
    struct stat st = {0};
    uint8_t *data = tz_file_read(name, &len, &st);
    struct tz *z = data ? tz_parse(data, len, leap) : NULL;
    free(data);
    if (z) {
        z->from_file = true;
        tz_stamp_of(&z->file, &st);
        z->checked_ms = tz_mono_ms();
    }
    return z;
}

/* What a zone's file is now, next to the one it was read from. */
enum tz_check {
    TZ_SAME, /* the same file, or one that cannot be looked at now (EACCES, EMFILE) */
    TZ_GONE, /* no file by that name any more */
    TZ_NEW,  /* another file, read: *nz */
    TZ_BAD,  /* another file that does not read as a zone (*bad: its stamp) */
};

/* Compares zone name's file with `was` (one stat) and reads it when it
 * changed (replaced, as dpkg does, or rewritten). Takes no lock: the
 * cache's lock is not held over file I/O. */
static enum tz_check tz_file_check(const char *name, const struct tz_stamp *was, struct tz **nz,
                                   struct tz_stamp *bad) {
    char path[TZ_DIR_MAX + TZ_NAME_MAX + 2];
    tz_path(path, sizeof path, name);
    struct stat st;
    if (stat(path, &st) != 0) return errno == ENOENT || errno == ENOTDIR ? TZ_GONE : TZ_SAME;
    tz_stamp_of(bad, &st);
    if (tz_stamp_equal(bad, was)) return TZ_SAME;
    bool leap = false;
    *nz = tz_file_load(name, &leap);
    return *nz ? TZ_NEW : TZ_BAD;
}

static struct tz *tz_utc_new(void) {
    struct tz *z = xcalloc(1, sizeof *z);
    z->ntypes = 1;
    z->types = xcalloc(1, sizeof *z->types);
    tz_bounds(z);
    return z;
}

/* The cache's link to zone `name`: *at is the zone, or NULL. Under the lock. */
static struct tz **tz_cache_find(const char *name) {
    struct tz **at = &tz_cache;
    while (*at && strcmp((*at)->name, name) != 0)
        at = &(*at)->next;
    return at;
}

/* Takes z out of the cache (*at): freed now when nobody holds it, else
 * kept, retired, until the last borrower gives it back. Under the lock. */
static void tz_retire(struct tz **at, struct tz *z) {
    *at = z->next;
    z->retired = true;
    if (z->refs == 0) {
        tz_free(z);
        return;
    }
    z->next = tz_retired;
    tz_retired = z;
}

void tz_release(const struct tz *cz) {
    if (!cz) return;
    struct tz *z = (struct tz *)cz; /* the cache's own: only its lock-guarded fields change */
    pthread_mutex_lock(&tz_cache_lock);
    if (--z->refs == 0 && z->retired) {
        struct tz **at = &tz_retired;
        while (*at && *at != z)
            at = &(*at)->next;
        if (*at) *at = z->next;
        tz_free(z);
    }
    pthread_mutex_unlock(&tz_cache_lock);
}

size_t tz_retired_count(void) {
    pthread_mutex_lock(&tz_cache_lock);
    size_t n = 0;
    for (const struct tz *z = tz_retired; z; z = z->next)
        n++;
    pthread_mutex_unlock(&tz_cache_lock);
    return n;
}

/*
 * Every TZ_RECHECK_MS a zone's file is compared with the one it was read
 * from (tz_file_check), outside the lock: the thread whose lookup finds
 * the check due claims it (checked_ms) and the others go on with the zone
 * as it is meanwhile. Then, under the lock again, and only if the zone is
 * still the cache's: a new file that reads replaces it (the old one
 * retired); a file gone drops it (read again at once, as at first use:
 * an error); a file that does not read (rewritten in place and caught
 * half written, or garbage) keeps it, logged once a file, and is looked
 * at again at the next check.
 */
int tz_get(const char *name, const struct tz **out, struct tm_error *e) {
    if (!name || !name[0]) return err_set(e, TM_EINVALID, "timezone", "timezone is empty");
    if (!tz_name_is_valid(name))
        return err_set(e, TM_EINVALID, "timezone", "timezone '%.64s' is not a valid zone name",
                       name);
    int rc = 0;
    pthread_mutex_lock(&tz_cache_lock);
    struct tz **at = tz_cache_find(name), *z = *at;
    int64_t now = tz_mono_ms();
    if (z && z->from_file && now - z->checked_ms >= TZ_RECHECK_MS) {
        z->checked_ms = now;
        struct tz_stamp was = z->file, bad;
        struct tz *checked = z;
        checked->refs++; /* held over the check: not freed under it */
        pthread_mutex_unlock(&tz_cache_lock);
        struct tz *nz = NULL;
        enum tz_check c = tz_file_check(name, &was, &nz, &bad);
        pthread_mutex_lock(&tz_cache_lock);
        at = tz_cache_find(name);
        z = *at;
        if (z && z == checked) {
            if (c == TZ_GONE) {
                tz_retire(at, z);
                z = NULL;
            } else if (c == TZ_NEW) {
                nz->name = xstrdup(name);
                tz_retire(at, z);
                nz->next = tz_cache;
                tz_cache = z = nz;
                nz = NULL;
            } else if (c == TZ_BAD && !(z->bad_logged && tz_stamp_equal(&z->bad, &bad))) {
                z->bad = bad;
                z->bad_logged = true;
                fprintf(stderr,
                        "taskmill: timezone '%s': its file in %s changed and does not read as a "
                        "zone (TZif) file; the zone as last read is kept until it does\n",
                        name, tz_dir());
            }
        }
        tz_free(nz); /* another thread's check came first (or a clear) */
        pthread_mutex_unlock(&tz_cache_lock);
        tz_release(checked); /* freed there if it was retired here */
        pthread_mutex_lock(&tz_cache_lock);
        at = tz_cache_find(name);
        z = *at; /* a zone this retired, and another thread's load, alike */
    }
    if (!z) {
        /* Loaded under the lock, so that each name is read once. */
        bool leap = false;
        if (strcmp(name, "UTC") == 0 || strcmp(name, "Etc/UTC") == 0)
            z = tz_utc_new();
        else
            z = tz_file_load(name, &leap);
        if (z) {
            z->name = xstrdup(name);
            z->next = tz_cache;
            tz_cache = z;
        } else if (leap) {
            rc = err_set(e, TM_EINVALID, "timezone",
                         "timezone '%.64s' counts leap seconds, which schedules do not support",
                         name);
        } else {
            rc = err_set(e, TM_EINVALID, "timezone",
                         "timezone '%.64s' is not a zone of the system's tzdata", name);
        }
    }
    if (rc == 0) z->refs++;
    pthread_mutex_unlock(&tz_cache_lock);
    if (rc == 0) *out = z;
    return rc;
}

void tz_cache_clear(void) {
    pthread_mutex_lock(&tz_cache_lock);
    struct tz **lists[] = {&tz_cache, &tz_retired};
    for (int i = 0; i < 2; i++) {
        while (*lists[i]) {
            struct tz *next = (*lists[i])->next;
            tz_free(*lists[i]);
            *lists[i] = next;
        }
    }
    pthread_mutex_unlock(&tz_cache_lock);
}
