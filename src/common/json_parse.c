/*
 * json_parse: see json_parse.h.
 *
 * The fast path is a recursive-descent parser over the bytes, building
 * jansson values directly. It never reports an error: on anything outside
 * the subset described in json_parse.h it declines (returns NULL, having
 * freed what it built) and json_parse_object asks jansson, so every error
 * message and every value outside the subset is jansson's own. Inside the
 * subset each rule below matches what jansson 2.14's json_loadb does with
 * JSON_REJECT_DUPLICATES, so both build equal values; where matching would
 * take care (\u escapes, underflowing reals), it declines instead.
 */
#include "json_parse.h"

#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "utf8.h"
#include "xalloc.h"

int json_depth(const char *p, size_t n) {
    int depth = 0, max = 0;
    bool in_str = false;
    for (size_t i = 0; i < n; i++) {
        char c = p[i];
        if (in_str) {
            if (c == '\\')
                i++;
            else if (c == '"')
                in_str = false;
            continue;
        }
        if (c == '"') {
            in_str = true;
        } else if (c == '{' || c == '[') {
            if (++depth > max) max = depth;
        } else if (c == '}' || c == ']') {
            depth--;
        }
    }
    return max;
}

/* Containers the fast path opens before it declines. It bounds the
 * recursion when json_parse_object_fast runs without json_depth first (the
 * fuzzer), and stays far below jansson's own limit (2048 levels). */
#define FAST_MAX_DEPTH 64
/* The longest real number token converted; a longer one declines. */
#define FAST_REAL_MAX 40
/* An escaped string decodes into a stack buffer of this size when it fits. */
#define FAST_SCRATCH 128

struct fast {
    const char *p; /* the next byte */
    const char *end;
    int depth;     /* containers open */
    int max_depth; /* more declines */
};

/* A string token as scanned: the bytes between the quotes, undecoded. */
struct fast_str {
    const char *raw;
    size_t len;
    bool escaped; /* it holds at least one backslash escape */
};

static json_t *fast_value(struct fast *f);

static bool fast_is_digit(char c) {
    return c >= '0' && c <= '9';
}

/* jansson's whitespace is these four; a form feed or a vertical tab is not. */
static void fast_skip_ws(struct fast *f) {
    while (f->p < f->end && (*f->p == ' ' || *f->p == '\t' || *f->p == '\n' || *f->p == '\r'))
        f->p++;
}

/*
 * Scans the string token at f->p into s and moves past it. Returns 0, or -1
 * to decline. Accepted: bytes 0x20..0x7F but the quote and the backslash,
 * UTF-8 sequences as jansson checks them (utf8_char_len), and the escapes
 * \" \\ \/ \b \f \n \r \t. Declined: \u (it can make NUL, which jansson
 * refuses, or a surrogate pair to combine), control bytes (jansson refuses
 * them), any other byte. So every string the fast path makes is valid UTF-8
 * without NUL, the same bytes jansson decodes.
 */
static int fast_scan_string(struct fast *f, struct fast_str *s) {
    if (f->p == f->end || *f->p != '"') return -1;
    const unsigned char *q = (const unsigned char *)f->p + 1;
    const unsigned char *end = (const unsigned char *)f->end;
    s->raw = (const char *)q;
    s->escaped = false;
    for (;;) {
        if (q == end) return -1;
        unsigned char c = *q;
        if (c == '"') break;
        if (c < 0x20) return -1;
        if (c >= 0x80) {
            size_t n = utf8_char_len((const char *)q, (const char *)end);
            if (!n) return -1;
            q += n;
            continue;
        }
        if (c == '\\') {
            if (end - q < 2) return -1;
            if (!memchr("\"\\/bfnrt", q[1], 8)) return -1;
            s->escaped = true;
            q += 2;
            continue;
        }
        q++;
    }
    s->len = (size_t)((const char *)q - s->raw);
    f->p = (const char *)q + 1;
    return 0;
}

/* Decodes a scanned string's escapes into out (room for s->len bytes: no
 * escape grows). Returns the decoded length. */
static size_t fast_unescape(const struct fast_str *s, char *out) {
    size_t n = 0;
    for (size_t i = 0; i < s->len; i++) {
        char c = s->raw[i];
        if (c == '\\') {
            c = s->raw[++i];
            switch (c) {
            case 'b':
                c = '\b';
                break;
            case 'f':
                c = '\f';
                break;
            case 'n':
                c = '\n';
                break;
            case 'r':
                c = '\r';
                break;
            case 't':
                c = '\t';
                break;
            default: /* " \ / stand for themselves */
                break;
            }
        }
        out[n++] = c;
    }
    return n;
}

/* The decoded bytes of s: its raw bytes when it has no escape, else in buf
 * (FAST_SCRATCH bytes) or in *heap (malloc'd, the caller frees it). NULL
 * when out of memory. */
static const char *fast_decoded(const struct fast_str *s, char *buf, char **heap, size_t *n) {
    *heap = NULL;
    if (!s->escaped) {
        *n = s->len;
        return s->raw;
    }
    char *out = buf;
    if (s->len > FAST_SCRATCH && !(out = *heap = malloc(s->len))) return NULL;
    *n = fast_unescape(s, out);
    return out;
}

static json_t *fast_string_new(const struct fast_str *s) {
    char buf[FAST_SCRATCH], *heap;
    size_t n;
    const char *d = fast_decoded(s, buf, &heap, &n);
    json_t *v = d ? json_stringn_nocheck(d, n) : NULL;
    free(heap);
    return v;
}

/*
 * Sets o's key (a scanned string) to v, taking v. Returns 0, or -1 to
 * decline: out of memory, or a duplicate key, which jansson refuses with
 * JSON_REJECT_DUPLICATES. A duplicate is seen as the object not growing,
 * json_object_setn_new_nocheck having replaced the earlier value; one hash
 * lookup instead of a get and a set, and it compares decoded keys, so
 * "/" and "\/" are duplicates here as there.
 */
static int fast_object_set(json_t *o, const struct fast_str *key, json_t *v) {
    char buf[FAST_SCRATCH], *heap;
    size_t n, before = json_object_size(o);
    const char *d = fast_decoded(key, buf, &heap, &n);
    int rc = -1;
    if (!d)
        json_decref(v);
    else if (json_object_setn_new_nocheck(o, d, n, v) == 0 && json_object_size(o) > before)
        rc = 0;
    free(heap);
    return rc;
}

/* The object at f->p ('{'). A trailing comma, a key that is not a string,
 * or anything jansson would refuse declines. */
static json_t *fast_object(struct fast *f) {
    if (++f->depth > f->max_depth) return NULL;
    json_t *o = json_object();
    if (!o) return NULL;
    f->p++;
    fast_skip_ws(f);
    if (f->p < f->end && *f->p == '}') {
        f->p++;
        f->depth--;
        return o;
    }
    for (;;) {
        struct fast_str key;
        if (fast_scan_string(f, &key)) goto decline;
        fast_skip_ws(f);
        if (f->p == f->end || *f->p != ':') goto decline;
        f->p++;
        fast_skip_ws(f);
        json_t *v = fast_value(f);
        if (!v || fast_object_set(o, &key, v)) goto decline;
        fast_skip_ws(f);
        if (f->p == f->end) goto decline;
        char c = *f->p++;
        if (c == '}') break;
        if (c != ',') goto decline;
        fast_skip_ws(f);
    }
    f->depth--;
    return o;
decline:
    json_decref(o);
    return NULL;
}

/* The array at f->p ('['). */
static json_t *fast_array(struct fast *f) {
    if (++f->depth > f->max_depth) return NULL;
    json_t *a = json_array();
    if (!a) return NULL;
    f->p++;
    fast_skip_ws(f);
    if (f->p < f->end && *f->p == ']') {
        f->p++;
        f->depth--;
        return a;
    }
    for (;;) {
        json_t *v = fast_value(f);
        if (!v || json_array_append_new(a, v)) goto decline;
        fast_skip_ws(f);
        if (f->p == f->end) goto decline;
        char c = *f->p++;
        if (c == ']') break;
        if (c != ',') goto decline;
        fast_skip_ws(f);
    }
    f->depth--;
    return a;
decline:
    json_decref(a);
    return NULL;
}

/*
 * An integer token: digits (no sign, no leading zero but "0") and a sign.
 * jansson converts it with strtoll and refuses it on ERANGE; here at most
 * 19 digits are summed in uint64_t (below 10^19, so no overflow) and the
 * int64 range checked the same way. "-0" is the integer 0 there and here.
 */
static json_t *fast_integer(const char *digits, size_t n, bool negative) {
    if (n > 19) return NULL;
    uint64_t mag = 0;
    for (size_t i = 0; i < n; i++)
        mag = mag * 10 + (uint64_t)(digits[i] - '0');
    if (!negative) return mag <= (uint64_t)INT64_MAX ? json_integer((json_int_t)mag) : NULL;
    if (mag <= (uint64_t)INT64_MAX) return json_integer(-(json_int_t)mag);
    return mag == (uint64_t)INT64_MAX + 1 ? json_integer(INT64_MIN) : NULL;
}

/*
 * A real token (it has a fraction or an exponent), converted with strtod as
 * jansson does. jansson swaps '.' for the locale's decimal point first; the
 * server runs in the C locale, and should it not, strtod stops at the '.'
 * and the check on its end declines. ERANGE declines: overflow is an error
 * in jansson, and underflow (subnormal results) is left to it too.
 */
static json_t *fast_real(const char *tok, size_t n) {
    if (n > FAST_REAL_MAX) return NULL;
    char buf[FAST_REAL_MAX + 1], *end;
    memcpy(buf, tok, n);
    buf[n] = '\0';
    errno = 0;
    double d = strtod(buf, &end);
    if (end != buf + n || errno == ERANGE || !isfinite(d)) return NULL;
    return json_real(d);
}

/*
 * The number at f->p, in JSON's grammar (jansson's lexer reads the same):
 *     -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
 * It is an integer when it has neither a fraction nor an exponent, as in
 * jansson. What follows it ("01", "1x") is the caller's to refuse.
 */
static json_t *fast_number(struct fast *f) {
    const char *q = f->p, *end = f->end;
    bool negative = q < end && *q == '-';
    if (negative) q++;
    const char *digits = q;
    if (q < end && *q == '0') {
        q++;
    } else if (q < end && *q >= '1' && *q <= '9') {
        while (q < end && fast_is_digit(*q))
            q++;
    } else {
        return NULL;
    }
    size_t ndigits = (size_t)(q - digits);
    bool real = false;
    if (q < end && *q == '.') {
        q++;
        if (q == end || !fast_is_digit(*q)) return NULL;
        while (q < end && fast_is_digit(*q))
            q++;
        real = true;
    }
    if (q < end && (*q == 'e' || *q == 'E')) {
        q++;
        if (q < end && (*q == '+' || *q == '-')) q++;
        if (q == end || !fast_is_digit(*q)) return NULL;
        while (q < end && fast_is_digit(*q))
            q++;
        real = true;
    }
    const char *tok = f->p;
    f->p = q;
    return real ? fast_real(tok, (size_t)(q - tok)) : fast_integer(digits, ndigits, negative);
}

/* Whether true, false or null (word) is at f->p; moves past it if so. What
 * follows it ("truex") is the caller's to refuse. */
static bool fast_literal(struct fast *f, const char *word) {
    size_t n = strlen(word);
    if ((size_t)(f->end - f->p) < n || memcmp(f->p, word, n) != 0) return false;
    f->p += n;
    return true;
}

static json_t *fast_value(struct fast *f) {
    if (f->p == f->end) return NULL;
    switch (*f->p) {
    case '{':
        return fast_object(f);
    case '[':
        return fast_array(f);
    case '"': {
        struct fast_str s;
        return fast_scan_string(f, &s) ? NULL : fast_string_new(&s);
    }
    case 't':
        return fast_literal(f, "true") ? json_true() : NULL;
    case 'f':
        return fast_literal(f, "false") ? json_false() : NULL;
    case 'n':
        return fast_literal(f, "null") ? json_null() : NULL;
    default:
        return fast_number(f);
    }
}

/* json_parse_object_fast, declining containers nested deeper than max_depth. */
static json_t *fast_parse(const char *p, size_t n, int max_depth) {
    if (!p) return NULL;
    struct fast f = {p, p + n, 0, max_depth < FAST_MAX_DEPTH ? max_depth : FAST_MAX_DEPTH};
    fast_skip_ws(&f);
    if (f.p == f.end || *f.p != '{') return NULL;
    json_t *v = fast_object(&f);
    if (!v) return NULL;
    fast_skip_ws(&f); /* jansson: nothing but whitespace may follow */
    if (f.p != f.end) {
        json_decref(v);
        return NULL;
    }
    return v;
}

json_t *json_parse_object_fast(const char *p, size_t n) {
    return fast_parse(p, n, FAST_MAX_DEPTH);
}

/* One container open at the point jansson stopped (json_error_path). */
struct dup_frame {
    bool object;
    size_t key_off, key_len; /* object: its current key's token, quotes included */
    size_t index;            /* array: the current element's index */
};

/* Appends the decoded key token p[0..len) (quotes included) to b. */
static bool dup_put_key(struct buf *b, const char *p, size_t len) {
    if (!memchr(p, '\\', len)) {
        buf_put(b, p + 1, len - 2);
        return true;
    }
    /* Escaped: jansson, which read it a moment ago, decodes it again. */
    json_t *k = json_loadb(p, len, JSON_DECODE_ANY, NULL);
    bool ok = json_is_string(k);
    if (ok) buf_put(b, json_string_value(k), json_string_length(k));
    json_decref(k);
    return ok;
}

int json_error_path(const char *p, size_t n, const json_error_t *je, struct buf *out) {
    enum json_error_code code = json_error_code(je);
    if ((code != json_error_duplicate_key && code != json_error_null_character) ||
        je->position <= 0 || (size_t)je->position > n)
        return -1;
    /* p[0..end) is JSON jansson took, up to the closing quote of the
     * duplicate key or of the string holding \u0000: only the containers
     * open and their keys or indexes matter. */
    size_t end = (size_t)je->position, depth = 0, cap = 0, last_key = SIZE_MAX,
           last_value = SIZE_MAX, start = out->len;
    struct dup_frame *st = NULL;
    bool expect_key = false;
    int rc = -1;
    for (size_t i = 0; i < end && i < n; i++) {
        char c = p[i];
        if (c == '\0') {
            /* jansson passes over a NUL after a number or a literal (its
             * lexer puts a byte back, and a NUL reads as the end of what
             * it put back) without counting it; any other is an error. */
            end++;
        } else if (c == '"') {
            size_t s = i++;
            while (i < end && p[i] != '"')
                i += p[i] == '\\' ? 2 : 1;
            if (i >= end) goto done; /* the prefix ends inside a string */
            if (depth && st[depth - 1].object && expect_key) {
                st[depth - 1].key_off = s;
                st[depth - 1].key_len = i + 1 - s;
                expect_key = false;
                last_key = i + 1;
            } else {
                last_value = i + 1;
            }
        } else if (c == '{' || c == '[') {
            if (depth == cap) st = xrealloc(st, (cap = cap ? 2 * cap : 16) * sizeof *st);
            st[depth++] = (struct dup_frame){.object = c == '{'};
            expect_key = c == '{';
        } else if (c == '}' || c == ']') {
            if (!depth) goto done;
            depth--;
            expect_key = false;
        } else if (c == ',' && depth) {
            if (st[depth - 1].object)
                expect_key = true;
            else
                st[depth - 1].index++;
        }
    }
    /* The text must end with a key of the innermost object (a duplicate),
     * or with a string value in the innermost container (\u0000). */
    if (!depth) goto done;
    if (code == json_error_duplicate_key ? !st[depth - 1].object || last_key != end
                                         : last_value != end)
        goto done;
    for (size_t d = 0; d < depth; d++) {
        if (!st[d].object) {
            buf_putc(out, '[');
            json_put_int(out, (int64_t)st[d].index);
            buf_putc(out, ']');
            continue;
        }
        if (d) buf_putc(out, '.');
        if (!dup_put_key(out, p + st[d].key_off, st[d].key_len)) goto done;
    }
    rc = 0;
done:
    if (rc && out->p) out->p[out->len = start] = '\0';
    free(st);
    return rc;
}

json_t *json_load_strict(const char *p, size_t n, char *why, size_t cap, char *field,
                         size_t field_cap) {
    if (field_cap) field[0] = '\0';
    /* jansson's lexer passes over a NUL after a number or a literal (it
     * puts back the byte after the token, and a NUL put back reads as
     * nothing): {"priority":1<NUL>} was taken. A NUL is not JSON anywhere
     * (inside a string it is a control character), so it is refused first,
     * where it is: line, and column in characters as jansson counts them. */
    const char *nul = p ? memchr(p, '\0', n) : NULL;
    if (nul) {
        int line = 1, column = 1;
        for (const char *q = p; q < nul; q++) {
            if (*q == '\n') {
                line++;
                column = 1;
            } else if (((unsigned char)*q & 0xC0) != 0x80) {
                column++;
            }
        }
        snprintf(why, cap, "line %d column %d: unexpected NUL byte", line, column);
        return NULL;
    }
    json_error_t je;
    json_t *v = json_loadb(p, n, JSON_REJECT_DUPLICATES, &je);
    if (v) return v;
    /* A duplicate key is named by its path ("params.a", v1's notation for a
     * nested field), in field when it fits there; so is a string holding
     * \u0000, which jansson's own words explain by a flag of its API. */
    struct buf path;
    buf_init(&path);
    bool named = json_error_path(p, n, &je, &path) == 0;
    const char *name = named && path.p ? path.p : "";
    if (named && path.len < field_cap) memcpy(field, name, path.len + 1);
    if (json_error_code(&je) == json_error_duplicate_key && named) {
        snprintf(why, cap, "line %d column %d: duplicate object key '%s'", je.line, je.column,
                 name);
    } else if (json_error_code(&je) == json_error_null_character) {
        snprintf(why, cap, "line %d column %d: \\u0000 (a NUL character) in a string%s%s%s",
                 je.line, je.column, named ? " ('" : "", name, named ? "')" : "");
    } else {
        snprintf(why, cap, "line %d column %d: %s", je.line, je.column, je.text);
    }
    buf_release(&path);
    return NULL;
}

json_t *json_parse_object(const char *p, size_t n, int max_depth, struct tm_error *e) {
    /* What the fast path takes is JSON nested no deeper than max_depth, so
     * json_depth, which counts the brackets, would have let it through: it
     * runs only before jansson. */
    json_t *v = fast_parse(p, n, max_depth);
    if (v) return v;
    if (json_depth(p, n) > max_depth) {
        err_set(e, TM_EINVALID, "", "JSON nests deeper than %d levels", max_depth);
        return NULL;
    }
    char why[sizeof e->message], field[sizeof e->field];
    v = json_load_strict(p, n, why, sizeof why, field, sizeof field);
    if (!v) {
        err_set(e, TM_EMALFORMED, field, "malformed JSON at %s", why);
        return NULL;
    }
    if (!json_is_object(v)) {
        json_decref(v);
        err_set(e, TM_EMALFORMED, "", "request body must be a JSON object");
        return NULL;
    }
    return v;
}
