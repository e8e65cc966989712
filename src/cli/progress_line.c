/*
 * progress_line: see progress_line.h. A hand-written scanner over a byte
 * range: words are separated by spaces or tabs, numbers are plain
 * decimals (no exponent, no sign, no locale), and every field is checked
 * before the line counts as a protocol line. Pure and thread-safe.
 */
#include "progress_line.h"

#include <string.h>

#include "../common/utf8.h"

/* The most bytes an item's name may have (the server refuses a heartbeat with a longer one,
 * and with it everything else the heartbeat carried). */
#define PROGRESS_ITEM_NAME_MAX 256

/* Counts above 2^53 cannot pass through JSON exactly. */
#define PROGRESS_COUNT_MAX ((int64_t)1 << 53)

struct scan {
    const char *p, *end;
};

static bool is_blank(char c) {
    return c == ' ' || c == '\t';
}

static void scan_blanks(struct scan *s) {
    while (s->p < s->end && is_blank(*s->p))
        s->p++;
}

/* The next word (up to a blank or the end); empty at the end. */
static struct progress_slice scan_word(struct scan *s) {
    scan_blanks(s);
    struct progress_slice w = {s->p, 0};
    while (s->p < s->end && !is_blank(*s->p))
        s->p++;
    w.n = (size_t)(s->p - w.p);
    return w;
}

/* The rest of the line with blanks trimmed at both ends. */
static struct progress_slice scan_rest(struct scan *s) {
    scan_blanks(s);
    const char *e = s->end;
    while (e > s->p && is_blank(e[-1]))
        e--;
    struct progress_slice r = {s->p, (size_t)(e - s->p)};
    s->p = s->end;
    return r;
}

static bool slice_is(struct progress_slice w, const char *lit) {
    size_t n = strlen(lit);
    return w.n == n && memcmp(w.p, lit, n) == 0;
}

/* A whole-word decimal: digits, optionally "." digits; -1 when it is not one. */
static int parse_decimal(const char *p, size_t n, double *out) {
    size_t i = 0;
    double v = 0;
    int digits = 0;
    while (i < n && p[i] >= '0' && p[i] <= '9') {
        if (digits < 20)
            v = v * 10 + (p[i] - '0');
        else
            return -1;
        i++;
        digits++;
    }
    if (i < n && p[i] == '.') {
        i++;
        double scale = 0.1;
        int frac = 0;
        while (i < n && p[i] >= '0' && p[i] <= '9') {
            if (frac < 17) v += (p[i] - '0') * scale;
            scale /= 10;
            i++;
            frac++;
        }
        digits += frac;
    }
    if (digits == 0 || i != n) return -1;
    *out = v;
    return 0;
}

/* "0.4" (a ratio, 0..1) or "40%" / "40.5%" (a percent, 0..100), into a ratio. */
static int parse_ratio(struct progress_slice w, double *ratio) {
    if (w.n == 0) return -1;
    double v;
    if (w.p[w.n - 1] == '%') {
        if (parse_decimal(w.p, w.n - 1, &v) || v > 100) return -1;
        *ratio = v / 100;
        return 0;
    }
    if (parse_decimal(w.p, w.n, &v) || v > 1) return -1;
    *ratio = v;
    return 0;
}

static int parse_count(const char *p, size_t n, int64_t *out) {
    if (n == 0 || n > 16) return -1;
    int64_t v = 0;
    for (size_t i = 0; i < n; i++) {
        if (p[i] < '0' || p[i] > '9') return -1;
        v = v * 10 + (p[i] - '0');
    }
    if (v > PROGRESS_COUNT_MAX) return -1;
    *out = v;
    return 0;
}

static void line_text(struct progress_line *out, const char *line, size_t len, const char *error) {
    memset(out, 0, sizeof *out);
    out->kind = PROGRESS_LINE_TEXT;
    out->text.p = line;
    out->text.n = len;
    out->error = error;
}

void progress_line_parse(const char *line, size_t len, struct progress_line *out) {
    if (len && line[len - 1] == '\n') len--;
    if (len && line[len - 1] == '\r') len--;
    line_text(out, line, len, NULL);
    struct scan s = {line, line + len};
    struct progress_slice kw = scan_word(&s);
    if (kw.p != line) return; /* a protocol line starts at the first byte */
    struct progress_line r;
    memset(&r, 0, sizeof r);
    const char *bad = NULL; /* what a malformed line lacks: it is then output */
    if (slice_is(kw, "progress")) {
        r.kind = PROGRESS_LINE_PROGRESS;
        if (parse_ratio(scan_word(&s), &r.ratio))
            bad = "'progress' needs a ratio from 0 to 1 (0.4) or a percent from 0 to 100 (40%)";
        r.text = scan_rest(&s);
    } else if (slice_is(kw, "items")) {
        r.kind = PROGRESS_LINE_ITEMS;
        struct progress_slice w = scan_word(&s);
        const char *slash = w.n ? memchr(w.p, '/', w.n) : NULL;
        if (!slash || parse_count(w.p, (size_t)(slash - w.p), &r.processed) ||
            parse_count(slash + 1, (size_t)(w.p + w.n - slash - 1), &r.total) ||
            r.processed > r.total)
            bad = "'items' needs PROCESSED/TOTAL, e.g. 3/10";
        r.ratio = r.total ? (double)r.processed / (double)r.total : 0;
        r.text = scan_rest(&s);
    } else if (slice_is(kw, "item")) {
        r.kind = PROGRESS_LINE_ITEM;
        r.name = scan_word(&s);
        if (r.name.n == 0 || parse_ratio(scan_word(&s), &r.ratio))
            bad = "'item' needs a NAME and a PROGRESS (0.4 or 40%)";
        else if (r.name.n > PROGRESS_ITEM_NAME_MAX)
            bad = "'item' NAME must be at most 256 bytes";
        r.text = scan_rest(&s);
    } else if (slice_is(kw, "message")) {
        r.kind = PROGRESS_LINE_MESSAGE;
        struct progress_slice lv = scan_word(&s);
        if (slice_is(lv, "INFO") || slice_is(lv, "WARN") || slice_is(lv, "ERROR")) {
            memcpy(r.level, lv.p, lv.n);
            r.level[lv.n] = '\0';
            r.text = scan_rest(&s);
            if (r.text.n == 0) bad = "'message' needs a text";
        } else {
            bad = "'message' needs a level: INFO, WARN or ERROR";
        }
    } else if (slice_is(kw, "result")) {
        r.kind = PROGRESS_LINE_RESULT;
        r.text = scan_rest(&s);
        if (r.text.n == 0) bad = "'result' needs a JSON value";
    } else if (slice_is(kw, "attribute")) {
        r.kind = PROGRESS_LINE_ATTRIBUTE;
        r.name = scan_word(&s);
        r.text = scan_rest(&s);
        if (r.name.n == 0 || r.text.n == 0)
            bad = "'attribute' needs a KEY and a VALUE";
        else if (r.name.n > PROGRESS_ATTRIBUTE_KEY_MAX)
            bad = "'attribute' KEY must be at most 256 bytes";
        else if (!utf8_valid(r.name.p, r.name.n) || memchr(r.name.p, '\0', r.name.n))
            bad = "'attribute' KEY must be UTF-8 with no NUL";
    } else {
        return;
    }
    if (bad)
        line_text(out, line, len, bad);
    else
        *out = r;
}
