/*
 * json_parse_object's fast path (src/common/json_parse.c) must never answer
 * differently from jansson: whenever json_parse_object_fast returns a value,
 * json_loadb with JSON_REJECT_DUPLICATES returns a strictly equal one (same
 * types, bit-identical reals, same strings, same key order). Checked on
 * chosen edge cases, on many random valid bodies and on many mutants of
 * them. The plain bodies (valid UTF-8, no \u escape, within the documented
 * limits) must also be accepted, so a fast path that always declines
 * fails. And json_parse_object's errors stay jansson's, word for word.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../src/common/buf.h"
#include "../src/common/json_parse.h"
#include "json_strict.h"
#include "harness.h"

/* What the fast path did with a body, compared with jansson. */
enum verdict {
    DECLINED, /* the fast path declined */
    ACCEPTED, /* it returned a value, strictly equal to jansson's */
    WRONG,    /* it returned a value jansson refuses or builds otherwise */
};

static enum verdict compare(const char *p, size_t n) {
    json_t *fast = json_parse_object_fast(p, n);
    if (!fast) return DECLINED;
    json_error_t je;
    json_t *ref = json_loadb(p, n, JSON_REJECT_DUPLICATES, &je);
    enum verdict v = ref && json_strictly_equal(fast, ref) ? ACCEPTED : WRONG;
    json_decref(fast);
    json_decref(ref);
    return v;
}

static int reported;

/* Prints a body the check failed on (the first few), escaped. */
static void report(const char *what, const char *p, size_t n) {
    if (reported++ >= 5) return;
    fprintf(stderr, "  %s: \"", what);
    for (size_t i = 0; i < n && i < 300; i++) {
        unsigned char c = (unsigned char)p[i];
        if (c >= 0x20 && c < 0x7f && c != '\\')
            fputc(c, stderr);
        else
            fprintf(stderr, "\\x%02x", c);
    }
    fprintf(stderr, "\"\n");
}

/* ---- Edge cases ---- */

enum expect {
    ANY,    /* jansson decides; the fast path may decline */
    ACCEPT, /* plain and valid: the fast path must answer */
};

struct edge {
    const char *body;
    size_t len; /* 0: strlen(body) */
    enum expect expect;
};

static const struct edge edges[] = {
    /* Bodies as clients send them. */
    {"{\"type\":\"bench\",\"queue\":\"q\",\"payload\":{\"n\":1,\"s\":\"x\"},\"priority\":3}", 0,
     ACCEPT},
    {"{\"lease_token\":\"0123456789abcdef0123456789abcdef\",\"lease_seconds\":30,"
     "\"progress\":{\"ratio\":0.42,\"message\":\"step 3 of 7\",\"processed\":42,\"pending\":58},"
     "\"items\":[{\"name\":\"frame-1\",\"progress\":{\"ratio\":1.0},\"message\":\"done\"},"
     "{\"name\":\"frame-2\",\"progress\":{\"percent\":12.5}}]}",
     0, ACCEPT},
    {"{\"types\":[\"a\",\"b\"],\"wait_ms\":1000}", 0, ACCEPT},
    {"{\"lease_token\":\"0123456789abcdef0123456789abcdef\",\"result\":{\"ok\":true,"
     "\"frames\":[1,2,3],\"score\":-0.125,\"note\":null,\"path\":\"\\/tmp\\/out\"}}",
     0, ACCEPT},
    {"{\n  \"type\": \"bench\",\n  \"payload\": {\"x\": [1, 2.5, \"s\"]}\r\n}\n", 0, ACCEPT},
    /* Nesting and emptiness. */
    {"{}", 0, ACCEPT},
    {" \t\r\n{ \t\r\n} \t\r\n", 0, ACCEPT},
    {"{\"a\":[]}", 0, ACCEPT},
    {"{\"a\":{}}", 0, ACCEPT},
    {"{\"a\":[[]],\"b\":[{}],\"c\":[[[[1]]]]}", 0, ACCEPT},
    {"{\"a\":{\"b\":{\"c\":[[],[{}],{\"d\":[1,[2,[3,{\"e\":null}]]]}]}}}", 0, ACCEPT},
    {"{\"\":\"\"}", 0, ACCEPT},
    {"{\"a\":{\"a\":{\"a\":1}},\"b\":{\"a\":2}}", 0, ACCEPT}, /* same key, other objects */
    {"{\"z\":1,\"y\":2,\"x\":3,\"a\":4,\"b\":5}", 0, ACCEPT}, /* key order kept */
    /* Numbers. */
    {"{\"v\":0}", 0, ACCEPT},
    {"{\"v\":-0}", 0, ACCEPT},
    {"{\"v\":-0.0}", 0, ACCEPT},
    {"{\"v\":0.0}", 0, ACCEPT},
    {"{\"v\":1.0}", 0, ACCEPT},
    {"{\"v\":1e5}", 0, ACCEPT},
    {"{\"v\":1E-5}", 0, ACCEPT},
    {"{\"v\":1e+5}", 0, ACCEPT},
    {"{\"v\":-2.5E+10}", 0, ACCEPT},
    {"{\"v\":0e0}", 0, ACCEPT},
    {"{\"v\":1.5e300}", 0, ACCEPT},
    {"{\"v\":-1.5e-300}", 0, ACCEPT},
    {"{\"v\":0.1}", 0, ACCEPT},
    {"{\"v\":2.2250738585072014e-308}", 0, ACCEPT}, /* DBL_MIN */
    {"{\"v\":1.7976931348623157e308}", 0, ACCEPT},  /* DBL_MAX */
    {"{\"v\":1e400}", 0, ANY},
    {"{\"v\":-1e400}", 0, ANY},
    {"{\"v\":1.8e308}", 0, ANY},
    {"{\"v\":1e-310}", 0, ANY}, /* subnormal: jansson's, the fast path declines */
    {"{\"v\":1e-400}", 0, ANY},
    {"{\"v\":0.100000000000000000000000000000000000000000000001}", 0, ANY}, /* long */
    {"{\"v\":9223372036854775807}", 0, ACCEPT},
    {"{\"v\":-9223372036854775808}", 0, ACCEPT},
    {"{\"v\":9223372036854775806}", 0, ACCEPT},
    {"{\"v\":999999999999999999}", 0, ACCEPT},
    {"{\"v\":1000000000000000000}", 0, ACCEPT},
    {"{\"v\":9223372036854775808}", 0, ANY},
    {"{\"v\":-9223372036854775809}", 0, ANY},
    {"{\"v\":9999999999999999999}", 0, ANY},
    {"{\"v\":18446744073709551616}", 0, ANY},
    {"{\"v\":123456789012345678901234567890}", 0, ANY},
    {"{\"v\":01}", 0, ANY},
    {"{\"v\":-01}", 0, ANY},
    {"{\"v\":00}", 0, ANY},
    {"{\"v\":1.}", 0, ANY},
    {"{\"v\":.5}", 0, ANY},
    {"{\"v\":+1}", 0, ANY},
    {"{\"v\":-}", 0, ANY},
    {"{\"v\":--1}", 0, ANY},
    {"{\"v\":1e}", 0, ANY},
    {"{\"v\":1e+}", 0, ANY},
    {"{\"v\":1.e5}", 0, ANY},
    {"{\"v\":1.5.3}", 0, ANY},
    {"{\"v\":0x10}", 0, ANY},
    {"{\"v\":1x}", 0, ANY},
    {"{\"v\":NaN}", 0, ANY},
    {"{\"v\":Infinity}", 0, ANY},
    {"{\"v\":-Infinity}", 0, ANY},
    {"{\"v\":inf}", 0, ANY},
    {"{\"v\":[1-2]}", 0, ANY},
    {"{\"v\":[0 1]}", 0, ANY},
    /* Strings. */
    {"{\"s\":\"\\\"\\\\\\/\\b\\f\\n\\r\\t\"}", 0, ACCEPT},
    {"{\"\\\"\\\\\\/\\b\\f\\n\\r\\t\":1}", 0, ACCEPT},
    {"{\"s\":\"\x7f ~ !#$%&'()*+,-./:;<=>?@[]^_`{|}\"}", 0, ACCEPT},
    {"{\"s\":\"\\u00e9\"}", 0, ANY},
    {"{\"s\":\"\\u0041\"}", 0, ANY},
    {"{\"s\":\"\\u0000\"}", 0, ANY},
    {"{\"\\u0000\":1}", 0, ANY},
    {"{\"s\":\"\\ud83d\\ude00\"}", 0, ANY},
    {"{\"s\":\"\\ud83d\"}", 0, ANY},
    {"{\"s\":\"\\u12\"}", 0, ANY},
    /* UTF-8, taken as jansson checks it: the first and last of each length. */
    {"{\"s\":\"caf\xc3\xa9\"}", 0, ACCEPT},
    {"{\"caf\xc3\xa9\":1}", 0, ACCEPT},
    {"{\"s\":\"\xc2\x80 \xdf\xbf \xe0\xa0\x80 \xef\xbf\xbf\"}", 0, ACCEPT},
    {"{\"s\":\"\xed\x9f\xbf \xee\x80\x80 \xe2\x82\xac\"}", 0, ACCEPT}, /* around surrogates */
    {"{\"s\":\"\xf0\x90\x80\x80 \xf0\x9f\x98\x80 \xf4\x8f\xbf\xbf\"}", 0, ACCEPT},
    {"{\"\xe6\x97\xa5\xe6\x9c\xac\":[\"\xd0\x9f\xd1\x80\xd0\xb8\\n\"]}", 0, ACCEPT},
    /* Not UTF-8 as jansson checks it. */
    {"{\"s\":\"\xff\"}", 0, ANY},
    {"{\"s\":\"\xc3\"}", 0, ANY},
    {"{\"s\":\"\xc3", 0, ANY},
    {"{\"s\":\"\xe2\x82\"}", 0, ANY},
    {"{\"s\":\"\xf0\x9f\x98\"}", 0, ANY},
    {"{\"s\":\"\x80\"}", 0, ANY},
    {"{\"s\":\"\xbf\"}", 0, ANY},
    {"{\"s\":\"\xc0\x80\"}", 0, ANY},
    {"{\"s\":\"\xc1\xbf\"}", 0, ANY},
    {"{\"s\":\"\xe0\x80\x80\"}", 0, ANY},
    {"{\"s\":\"\xe0\x9f\xbf\"}", 0, ANY},
    {"{\"s\":\"\xf0\x80\x80\x80\"}", 0, ANY},
    {"{\"s\":\"\xf0\x8f\xbf\xbf\"}", 0, ANY},
    {"{\"s\":\"\xed\xa0\x80\"}", 0, ANY},
    {"{\"s\":\"\xed\xbf\xbf\"}", 0, ANY},
    {"{\"s\":\"\xf4\x90\x80\x80\"}", 0, ANY},
    {"{\"s\":\"\xf5\x80\x80\x80\"}", 0, ANY},
    {"{\"s\":\"\xf8\x88\x80\x80\x80\"}", 0, ANY},
    {"{\"s\":\"\xc3\xc3\xa9\"}", 0, ANY},
    {"{\"s\":\"\xe2\x28\xa1\"}", 0, ANY},
    {"{\"s\":1,\"\xc3\xa9\":\xc3\xa9}", 0, ANY}, /* outside a string */
    {"{\"s\":\"a\x01z\"}", 0, ANY},
    {"{\"s\":\"a\tz\"}", 0, ANY},
    {"{\"s\":\"a\nz\"}", 0, ANY},
    {"{\"s\":\"a\x1fz\"}", 0, ANY},
    {"{\"s\":\"a\\xz\"}", 0, ANY},
    {"{\"s\":\"a\\'z\"}", 0, ANY},
    {"{\"s\":\"a\\\"}", 0, ANY},
    {"{\"s\":\"a\\", 0, ANY},
    {"{\"s\":\"b\0c\"}", 11, ANY},
    {"{\"b\0c\":1}", 9, ANY},
    {"{\"s\":\"\\\0\"}", 10, ANY},
    {"{\"s\":1}\0", 8, ANY},
    {"\0{\"s\":1}", 8, ANY},
    {"{\"s\":1,\0\"t\":2}", 14, ANY},
    /* Keys. */
    {"{\"a\":1,\"a\":2}", 0, ANY},
    {"{\"a\":1,\"b\":2,\"a\":1}", 0, ANY},
    {"{\"/\":1,\"\\/\":2}", 0, ANY},
    {"{\"x\":{\"k\":[],\"k\":{}}}", 0, ANY},
    {"{\"x\":[{\"k\":1,\"j\":2,\"k\":3}]}", 0, ANY},
    {"{\"a\":1,\"A\":2}", 0, ACCEPT},
    {"{1:2}", 0, ANY},
    {"{'a':1}", 0, ANY},
    {"{a:1}", 0, ANY},
    {"{null:1}", 0, ANY},
    /* Punctuation. */
    {"{\"a\":1,}", 0, ANY},
    {"{,}", 0, ANY},
    {"{,\"a\":1}", 0, ANY},
    {"{\"a\":1,,\"b\":2}", 0, ANY},
    {"{\"a\" 1}", 0, ANY},
    {"{\"a\"::1}", 0, ANY},
    {"{\"a\":1 \"b\":2}", 0, ANY},
    {"{\"a\":[1,]}", 0, ANY},
    {"{\"a\":[,1]}", 0, ANY},
    {"{\"a\":[1 2]}", 0, ANY},
    {"{\"a\":[1}", 0, ANY},
    {"{\"a\":{]}", 0, ANY},
    {"{\"a\":1]", 0, ANY},
    {"{\"a\":}", 0, ANY},
    /* Whitespace jansson does not take. */
    {"\f{}", 0, ANY},
    {"{\v}", 0, ANY},
    {"{\"a\":\xc2\xa0 1}", 0, ANY},
    {"\xef\xbb\xbf{}", 0, ANY},
    /* After the object. */
    {"{\"a\":1}x", 0, ANY},
    {"{\"a\":1}}", 0, ANY},
    {"{\"a\":1} {}", 0, ANY},
    {"{\"a\":1},", 0, ANY},
    {"{\"a\":1} \n\t\r", 0, ACCEPT},
    {"{\"a\":1}\xff", 0, ANY},
    {"{\"a\":1} // c", 0, ANY},
    /* Truncated. */
    {"", 0, ANY},
    {" \n", 0, ANY},
    {"{", 0, ANY},
    {"{\"", 0, ANY},
    {"{\"a", 0, ANY},
    {"{\"a\"", 0, ANY},
    {"{\"a\":", 0, ANY},
    {"{\"a\":1", 0, ANY},
    {"{\"a\":1,", 0, ANY},
    {"{\"a\":1,\"", 0, ANY},
    {"{\"a\":\"x", 0, ANY},
    {"{\"a\":[1,2", 0, ANY},
    {"{\"a\":{\"b\":1}", 0, ANY},
    {"{\"a\":tru", 0, ANY},
    {"{\"a\":-", 0, ANY},
    {"{\"a\":1.", 0, ANY},
    {"{\"a\":1e", 0, ANY},
    /* Literals and their misspellings. */
    {"{\"t\":true,\"f\":false,\"n\":null}", 0, ACCEPT},
    {"{\"a\":[true,false,null]}", 0, ACCEPT},
    {"{\"a\":tru}", 0, ANY},
    {"{\"a\":True}", 0, ANY},
    {"{\"a\":TRUE}", 0, ANY},
    {"{\"a\":truex}", 0, ANY},
    {"{\"a\":true1}", 0, ANY},
    {"{\"a\":truefalse}", 0, ANY},
    {"{\"a\":fals}", 0, ANY},
    {"{\"a\":falsey}", 0, ANY},
    {"{\"a\":nul}", 0, ANY},
    {"{\"a\":nulll}", 0, ANY},
    {"{\"a\":Null}", 0, ANY},
    {"{\"a\":undefined}", 0, ANY},
    /* Not an object at the top. */
    {"[]", 0, ANY},
    {"[1,2]", 0, ANY},
    {"[{\"a\":1}]", 0, ANY},
    {"1", 0, ANY},
    {"-0", 0, ANY},
    {"\"s\"", 0, ANY},
    {"true", 0, ANY},
    {"false", 0, ANY},
    {"null", 0, ANY},
    {"}", 0, ANY},
};

static void test_edge_cases(void) {
    reported = 0;
    int wrong = 0, unaccepted = 0, accepted = 0;
    for (size_t i = 0; i < sizeof edges / sizeof edges[0]; i++) {
        const struct edge *c = &edges[i];
        size_t n = c->len ? c->len : strlen(c->body);
        enum verdict v = compare(c->body, n);
        if (v == WRONG) {
            wrong++;
            report("fast path differs from jansson", c->body, n);
        } else if (c->expect == ACCEPT && v != ACCEPTED) {
            unaccepted++;
            report("fast path declined a plain body", c->body, n);
        }
        accepted += v == ACCEPTED;
    }
    CHECK_INT(wrong, 0);
    CHECK_INT(unaccepted, 0);
    CHECK(accepted > 40);
}

/* A few values checked by hand too, not only against jansson. */
static void test_values_by_hand(void) {
    const char *body = "{\"z\":-0,\"r\":-0.0,\"i\":1.0,\"m\":-9223372036854775808}";
    json_t *v = json_parse_object_fast(body, strlen(body));
    CHECK(v != NULL);
    const char *keys[] = {"z", "r", "i", "m"};
    size_t k = 0;
    const char *key;
    json_t *x;
    json_object_foreach(v, key, x) {
        if (k < 4 && strcmp(key, keys[k]) == 0) k++;
    }
    bool ok =
        k == 4 && json_is_integer(json_object_get(v, "z")) &&
        json_integer_value(json_object_get(v, "z")) == 0 && json_is_real(json_object_get(v, "r")) &&
        signbit(json_real_value(json_object_get(v, "r"))) &&
        json_real_value(json_object_get(v, "r")) == 0.0 && json_is_real(json_object_get(v, "i")) &&
        json_integer_value(json_object_get(v, "m")) == INT64_MIN;
    json_decref(v);
    CHECK(ok);
    body = "{\"s\":\"a\\nb\\/c\\\"\"}";
    v = json_parse_object_fast(body, strlen(body));
    CHECK(v != NULL);
    ok = strcmp(json_string_value(json_object_get(v, "s")), "a\nb/c\"") == 0;
    json_decref(v);
    CHECK(ok);
    /* 64 levels are taken; deeper declines, and jansson still answers. */
    for (int levels = 60; levels <= 70; levels++) {
        char deep[8 * 70];
        size_t n = 0;
        for (int i = 0; i < levels; i++) {
            memcpy(deep + n, i % 2 ? "[" : "{\"a\":", i % 2 ? 1 : 5);
            n += i % 2 ? 1 : 5;
        }
        deep[n++] = '1';
        for (int i = levels - 1; i >= 0; i--)
            deep[n++] = i % 2 ? ']' : '}';
        enum verdict want = levels <= 64 ? ACCEPTED : DECLINED;
        CHECK_INT(compare(deep, n), want);
    }
}

/* ---- Random bodies ---- */

/* xorshift64*, seeded: the same bodies every run. */
static uint64_t rng;
static uint64_t next(void) {
    rng ^= rng >> 12;
    rng ^= rng << 25;
    rng ^= rng >> 27;
    return rng * 2685821657736338717u;
}

struct text {
    char *p;
    size_t n, cap;
    bool plain; /* no \u escape: the fast path must take it */
};

static void put(struct text *t, const char *s, size_t n) {
    if (t->n + n + 1 > t->cap) {
        t->cap = (t->n + n + 1) * 2;
        t->p = realloc(t->p, t->cap);
        if (!t->p) abort();
    }
    memcpy(t->p + t->n, s, n);
    t->n += n;
    t->p[t->n] = '\0';
}

static void puts_(struct text *t, const char *s) {
    put(t, s, strlen(s));
}

/* Whitespace between tokens: mostly none, sometimes a mix of jansson's four. */
static void put_ws(struct text *t) {
    static const char *const ws[] = {"", "", "", "", " ", "\n", "\t", "\r\n", "  \n    ", " \t\r"};
    puts_(t, ws[next() % (sizeof ws / sizeof ws[0])]);
}

/* A code point of 2 to 4 bytes of UTF-8, never a surrogate, written raw. */
static void put_utf8(struct text *t) {
    static const uint32_t lo[] = {0x80, 0x800, 0xE000, 0x10000};
    static const uint32_t hi[] = {0x7FF, 0xD7FF, 0xFFFF, 0x10FFFF};
    size_t k = next() % 4;
    uint32_t cp = lo[k] + (uint32_t)(next() % (hi[k] - lo[k] + 1));
    char c[4];
    size_t n;
    if (cp < 0x800) {
        c[0] = (char)(0xC0 | cp >> 6);
        n = 2;
    } else if (cp < 0x10000) {
        c[0] = (char)(0xE0 | cp >> 12);
        c[1] = (char)(0x80 | (cp >> 6 & 0x3F));
        n = 3;
    } else {
        c[0] = (char)(0xF0 | cp >> 18);
        c[1] = (char)(0x80 | (cp >> 12 & 0x3F));
        c[2] = (char)(0x80 | (cp >> 6 & 0x3F));
        n = 4;
    }
    c[n - 1] = (char)(0x80 | (cp & 0x3F));
    put(t, c, n);
}

/* A string's contents: printable ASCII raw, the short escapes, raw UTF-8,
 * and rarely a \u escape (then the body is no longer plain). */
static void put_string_body(struct text *t) {
    size_t want = next() % 10 == 0 ? 100 + next() % 300 : next() % 14;
    for (size_t k = 0; k < want; k++) {
        unsigned r = (unsigned)(next() % 100);
        char c[8];
        if (r < 60) {
            do
                c[0] = (char)(0x20 + next() % 0x60);
            while (c[0] == '"' || c[0] == '\\');
            put(t, c, 1);
        } else if (r < 72) {
            put_utf8(t);
        } else if (r < 97) {
            static const char *const esc[] = {"\\\"", "\\\\", "\\/", "\\b",
                                              "\\f",  "\\n",  "\\r", "\\t"};
            puts_(t, esc[next() % 8]);
        } else if (r < 99) {
            snprintf(c, sizeof c, "\\u%04x", (unsigned)(1 + next() % 0xd7ff));
            puts_(t, c);
            t->plain = false;
        } else {
            put_utf8(t);
        }
    }
}

static void put_integer(struct text *t) {
    char s[32];
    switch (next() % 6) {
    case 0: /* any int64 */
        snprintf(s, sizeof s, "%lld", (long long)next());
        break;
    case 1: { /* any number of digits */
        long long v = (long long)(next() >> (1 + next() % 63));
        snprintf(s, sizeof s, "%lld", next() % 2 ? v : -v);
        break;
    }
    case 2: {
        static const char *const ends[] = {"9223372036854775807",
                                           "-9223372036854775808",
                                           "-9223372036854775807",
                                           "-0",
                                           "0",
                                           "1",
                                           "-1"};
        snprintf(s, sizeof s, "%s", ends[next() % 7]);
        break;
    }
    default:
        snprintf(s, sizeof s, "%lld", (long long)(next() % 2001) - 1000);
        break;
    }
    puts_(t, s);
}

/* A real token with a fraction or an exponent, at most 40 characters, in
 * the normal range whatever it rounds to (subnormals are jansson's). */
static void put_real(struct text *t) {
    char s[64];
    double d;
    switch (next() % 4) {
    case 0: { /* any double between 1e-300 and 1e300, or zero, of either sign */
        do {
            uint64_t bits = next();
            memcpy(&d, &bits, sizeof d);
        } while (!(d == 0 || (fabs(d) > 1e-300 && fabs(d) < 1e300)));
        break;
    }
    case 1:
        d = (double)(int64_t)(next() % 2000001) - 1000000.0;
        break;
    case 2:
        d = (double)(next() % 100000) / 1000.0 * (next() % 2 ? 1 : -1);
        break;
    default: { /* digits, fraction, exponent put together by hand */
        int len = snprintf(s, sizeof s, "%s%llu", next() % 2 ? "-" : "",
                           (unsigned long long)(next() >> (14 + next() % 50)));
        bool fraction = next() % 2;
        if (fraction)
            len += snprintf(s + len, sizeof s - (size_t)len, ".%0*llu", (int)(1 + next() % 5),
                            (unsigned long long)(next() % 1000));
        if (!fraction || next() % 2)
            snprintf(s + len, sizeof s - (size_t)len, "%s%s%d", next() % 2 ? "e" : "E",
                     (const char *[]){"", "+", "-"}[next() % 3], (int)(next() % 200));
        puts_(t, s);
        return;
    }
    }
    switch (next() % (fabs(d) < 1e6 ? 6 : 5)) {
    case 0:
        snprintf(s, sizeof s, "%.17g", d);
        break;
    case 1:
        snprintf(s, sizeof s, "%.15g", d);
        break;
    case 2:
        snprintf(s, sizeof s, "%g", d);
        break;
    case 3:
        snprintf(s, sizeof s, "%.3e", d);
        break;
    case 4:
        snprintf(s, sizeof s, "%.10E", d);
        break;
    default:
        snprintf(s, sizeof s, "%.1f", d);
        break;
    }
    if (!strpbrk(s, ".eE")) strcat(s, next() % 2 ? ".0" : "e0");
    puts_(t, s);
}

static void put_value(struct text *t, int depth);

static void put_object(struct text *t, int depth) {
    puts_(t, "{");
    put_ws(t);
    int members = (int)(next() % (depth < 3 ? 6 : 3));
    for (int k = 0; k < members; k++) {
        if (k) {
            puts_(t, ",");
            put_ws(t);
        }
        /* Random contents, then a suffix unique in this object: keys never
         * repeat, escapes or not. */
        char suffix[16];
        puts_(t, "\"");
        if (next() % 2) put_string_body(t);
        snprintf(suffix, sizeof suffix, "_%d\"", k);
        puts_(t, suffix);
        put_ws(t);
        puts_(t, ":");
        put_ws(t);
        put_value(t, depth + 1);
        put_ws(t);
    }
    puts_(t, "}");
}

static void put_value(struct text *t, int depth) {
    switch (next() % (depth < 5 ? 9 : 7)) {
    case 0:
    case 1:
        put_integer(t);
        break;
    case 2:
        put_real(t);
        break;
    case 3:
        puts_(t, "\"");
        put_string_body(t);
        puts_(t, "\"");
        break;
    case 4:
        puts_(t, next() % 2 ? "true" : "false");
        break;
    case 5:
        puts_(t, "null");
        break;
    case 6:
        put_integer(t);
        break;
    case 7: {
        puts_(t, "[");
        put_ws(t);
        for (int k = (int)(next() % 5); k > 0; k--) {
            put_value(t, depth + 1);
            put_ws(t);
            if (k > 1) {
                puts_(t, ",");
                put_ws(t);
            }
        }
        puts_(t, "]");
        break;
    }
    default:
        put_object(t, depth);
        break;
    }
}

/* A random valid body: an object, whitespace around it sometimes. */
static void random_body(struct text *t) {
    t->n = 0;
    t->plain = true;
    puts_(t, "");
    put_ws(t);
    put_object(t, 0);
    put_ws(t);
}

static void test_random_bodies(void) {
    reported = 0;
    rng = 0x9e3779b97f4a7c15u;
    struct text t = {0};
    int wrong = 0, unaccepted = 0, accepted = 0, plain = 0, refused = 0;
    for (int i = 0; i < 20000; i++) {
        random_body(&t);
        /* The generator's own check: jansson takes every body. */
        json_t *ref = json_loadb(t.p, t.n, JSON_REJECT_DUPLICATES, NULL);
        if (!ref) {
            refused++;
            report("jansson refuses a generated body", t.p, t.n);
        }
        json_decref(ref);
        enum verdict v = compare(t.p, t.n);
        plain += t.plain;
        accepted += v == ACCEPTED;
        if (v == WRONG) {
            wrong++;
            report("fast path differs from jansson", t.p, t.n);
        } else if (t.plain && v != ACCEPTED) {
            unaccepted++;
            report("fast path declined a plain body", t.p, t.n);
        }
    }
    free(t.p);
    CHECK_INT(refused, 0);
    CHECK_INT(wrong, 0);
    CHECK_INT(unaccepted, 0);
    CHECK(plain > 10000);
    CHECK_INT(accepted, plain);
}

/* ---- Mutants ---- */

/* A byte for a mutation: mostly JSON's own characters, digits, the
 * whitespace jansson does and does not take, NUL and high bytes. */
static char mutation_byte(void) {
    static const char interesting[] =
        "{}[],:\"\\/0123456789-+.eEtrufalsn \t\r\n\f\v\x7f\x80\xc3\xff";
    if (next() % 4 == 0) return (char)(next() % 256);
    return interesting[next() % (sizeof interesting)]; /* the NUL at the end too */
}

static void mutate(struct text *t) {
    for (int m = (int)(1 + next() % 3); m > 0; m--) {
        size_t at = t->n ? (size_t)(next() % t->n) : 0;
        switch (next() % 6) {
        case 0: /* replace a byte */
        case 1:
            if (t->n) t->p[at] = mutation_byte();
            break;
        case 2: { /* insert a byte */
            char c = mutation_byte();
            put(t, "", 1);
            memmove(t->p + at + 1, t->p + at, t->n - 1 - at);
            t->p[at] = c;
            break;
        }
        case 3: /* delete a byte */
            if (t->n) {
                memmove(t->p + at, t->p + at + 1, t->n - at - 1);
                t->n--;
            }
            break;
        case 4: /* truncate */
            t->n = at;
            break;
        default: { /* copy a slice over another place: repeats keys and values */
            if (t->n < 2) break;
            size_t from = (size_t)(next() % t->n), len = 1 + (size_t)(next() % 12);
            if (from + len > t->n) len = t->n - from;
            char slice[12];
            memcpy(slice, t->p + from, len);
            if (at + len > t->n) len = t->n - at;
            memcpy(t->p + at, slice, len);
            break;
        }
        }
    }
}

static void test_mutants(void) {
    reported = 0;
    rng = 0x2545f4914f6cdd1du;
    struct text t = {0};
    int wrong = 0, accepted = 0, declined = 0;
    for (int i = 0; i < 50000; i++) {
        random_body(&t);
        mutate(&t);
        enum verdict v = compare(t.p, t.n);
        accepted += v == ACCEPTED;
        declined += v == DECLINED;
        if (v == WRONG) {
            wrong++;
            report("fast path differs from jansson", t.p, t.n);
        }
    }
    free(t.p);
    fprintf(stderr, "  mutants: %d accepted by the fast path, %d declined\n", accepted, declined);
    CHECK_INT(wrong, 0);
    CHECK(accepted > 1000);
    CHECK(declined > 1000);
}

/* ---- json_parse_object ---- */

/* json_parse_object's answer for a body: the value jansson builds, or
 * exactly the message built from jansson's json_error_t (a duplicate key
 * named by its path, which test_duplicate_path checks). */
static void check_parse_object(const char *body, size_t n) {
    struct tm_error e;
    err_clear(&e);
    json_t *v = json_parse_object(body, n, 32, &e);
    json_error_t je;
    json_t *ref = json_loadb(body, n, JSON_REJECT_DUPLICATES, &je);
    char want[256] = "";
    struct buf path;
    buf_init(&path);
    if (memchr(body, '\0', n)) /* refused before jansson: test_nul_byte */
        snprintf(want, sizeof want, "unexpected NUL byte");
    else if (!ref && json_error_code(&je) == json_error_null_character) /* test_nul_escape */
        snprintf(want, sizeof want, "malformed JSON at line %d column %d: \\u0000 (a NUL", je.line,
                 je.column);
    else if (!ref && json_error_path(body, n, &je, &path) == 0)
        snprintf(want, sizeof want,
                 "malformed JSON at line %d column %d: duplicate object key '%s'", je.line,
                 je.column, path.p);
    else if (!ref)
        snprintf(want, sizeof want, "malformed JSON at line %d column %d: %s", je.line, je.column,
                 je.text);
    else if (!json_is_object(ref))
        snprintf(want, sizeof want, "request body must be a JSON object");
    buf_release(&path);
    bool ok = ref && json_is_object(ref) && !memchr(body, '\0', n)
                  ? v && json_strictly_equal(v, ref)
                  : !v && e.code == TM_EMALFORMED &&
                        (memchr(body, '\0', n) || json_error_code(&je) == json_error_null_character
                             ? strstr(e.message, want) != NULL
                             : strcmp(e.message, want) == 0);
    if (!ok) report(v ? "json_parse_object's value differs" : e.message, body, n);
    json_decref(v);
    json_decref(ref);
    CHECK(ok);
}

static void test_parse_object_errors(void) {
    reported = 0;
    const char *bodies[] = {
        "{\"a\":}",
        "{\"a\":1",
        "{\"a\":1}x",
        "{\"a\":1,\"a\":2}",
        "{\"s\":\"\\u0000\"}",
        "{\"s\":\"\xff\"}",
        "{\"s\":\"a\x01\"}",
        "{\"v\":01}",
        "{\"v\":1.}",
        "{\"v\":1e400}",
        "{\"v\":9223372036854775808}",
        "{\"a\":tru}",
        "\n\n  {\"a\":\n [1,,2]}",
        "",
        "[1,2]",
        "\"s\"",
        "{\"type\":\"bench\",\"payload\":{\"n\":1}}",
        "{\"s\":\"\\u00e9\",\"r\":1e-310}",
    };
    for (size_t i = 0; i < sizeof bodies / sizeof bodies[0]; i++) {
        check_parse_object(bodies[i], strlen(bodies[i]));
        if (th_failed()) return;
    }
    check_parse_object("{\"a\":\"b\0c\"}", 11);
    /* The depth check still comes first, for either parser. */
    struct tm_error e;
    err_clear(&e);
    json_t *v = json_parse_object("{\"a\":{\"b\":{\"c\":{}}}}", 20, 3, &e);
    CHECK(v == NULL);
    CHECK_INT(e.code, TM_EINVALID);
    CHECK_STR(e.message, "JSON nests deeper than 3 levels");
    /* At the limit, taken (by the fast path, which reads the depth itself). */
    err_clear(&e);
    v = json_parse_object("{\"a\":{\"b\":{\"c\":[]}}}", 20, 3, &e);
    CHECK(v == NULL);
    CHECK_STR(e.message, "JSON nests deeper than 3 levels");
    err_clear(&e);
    v = json_parse_object("{\"a\":{\"b\":{\"c\":1}}}", 19, 3, &e);
    CHECK(v != NULL && json_integer_value(json_object_get(
                           json_object_get(json_object_get(v, "a"), "b"), "c")) == 1);
    json_decref(v);
}

/* A duplicate key is named by its path, as v1 names nested fields: in the
 * message, and in the field when it fits there (63 bytes). */
static void test_duplicate_path(void) {
    static const struct {
        const char *body, *path;
    } cases[] = {
        {"{\"a\":1,\"a\":2}", "a"},
        {"{\"type\":\"t\",\"params\":{\"a\":1,\"a\":2}}", "params.a"},
        {"{\"p\":{\"a\":{},\"b\":{\"c\":1}, \"b\" : 2}}", "p.b"},
        {"{\"tasks\":[{\"a\":1},{\"p\":{\"k\":[0,{\"x\":1,\"x\":2}]}}]}", "tasks[1].p.k[1].x"},
        /* Brackets, commas and quotes inside strings are not structure. */
        {"{\"s\":\"[{,\\\"}]\",\"t\":[\"],[\",{\"a\\\"b\":1,\"a\\\"b\":2}]}", "t[1].a\"b"},
        /* Escapes decoded: "\u0061" is "a". */
        {"{\"o\":{\"a\":1,\"\\u0061\":2}}", "o.a"},
        {"{\"\\u00e9\":{\"\\u00e9\":1,\"\xc3\xa9\":2}}", "\xc3\xa9.\xc3\xa9"},
        {"{\"\":{\"\":1,\"\":2}}", "."},
        /* A top-level array (the compat views' JSON Patch). */
        {"[{\"op\":\"add\"},{\"op\":\"add\",\"value\":1,\"value\":2}]", "[1].value"},
        {"[[1,[2]],[{\"a\":[],\"a\":[]}]]", "[1][0].a"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const char *b = cases[i].body;
        json_error_t je;
        json_t *v = json_loadb(b, strlen(b), JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &je);
        CHECK(v == NULL);
        struct buf path;
        buf_init(&path);
        buf_puts(&path, "x");
        CHECK_INT(json_error_path(b, strlen(b), &je, &path), 0);
        CHECK_STR(path.p + 1, cases[i].path); /* appended */
        buf_release(&path);
        if (b[0] != '{') continue;
        struct tm_error e;
        err_clear(&e);
        CHECK(json_parse_object(b, strlen(b), 32, &e) == NULL);
        CHECK_INT(e.code, TM_EMALFORMED);
        CHECK_STR(e.field, cases[i].path);
        char quoted[80];
        snprintf(quoted, sizeof quoted, ": duplicate object key '%s'", cases[i].path);
        CHECK(strstr(e.message, quoted) != NULL);
    }
    /* jansson passes over a NUL after a number or a literal without
     * counting it in the error's position. */
    static const char nul[] = "{\"n\":0\0,\"t\":true\0,\"a\":{\"k\":1,\"k\":2}}";
    json_error_t jn;
    CHECK(json_loadb(nul, sizeof nul - 1, JSON_REJECT_DUPLICATES, &jn) == NULL);
    struct buf np;
    buf_init(&np);
    CHECK_INT(json_error_path(nul, sizeof nul - 1, &jn, &np), 0);
    CHECK_STR(np.p, "a.k");
    buf_release(&np);
    /* Another error: no path, out as it was. */
    json_error_t je;
    CHECK(json_loadb("{\"a\":}", 6, JSON_REJECT_DUPLICATES, &je) == NULL);
    struct buf path;
    buf_init(&path);
    buf_puts(&path, "x");
    CHECK_INT(json_error_path("{\"a\":}", 6, &je, &path), -1);
    CHECK_STR(path.p, "x");
    buf_release(&path);
    /* A path longer than the field holds is in the message only. */
    char body[256];
    snprintf(body, sizeof body, "{\"%070d\":{\"a\":1,\"a\":2}}", 0);
    struct tm_error e;
    err_clear(&e);
    CHECK(json_parse_object(body, strlen(body), 32, &e) == NULL);
    CHECK_STR(e.field, "");
    CHECK(strstr(e.message, "0000.a'") != NULL);
}

/* A NUL byte is refused wherever it is, with its line and column (in
 * characters, as jansson counts them). jansson took one after a number or
 * a literal: its lexer passes over it. */
static void test_nul_byte(void) {
    static const struct {
        const char *body;
        size_t n;
        const char *message;
    } cases[] = {
        {"{\"a\":1\0}", 8, "malformed JSON at line 1 column 7: unexpected NUL byte"},
        {"{\"a\":true\0}", 11, "malformed JSON at line 1 column 10: unexpected NUL byte"},
        {"{\"a\":null \0}", 12, "malformed JSON at line 1 column 11: unexpected NUL byte"},
        {"{\"a\":\"b\0c\"}", 11, "malformed JSON at line 1 column 8: unexpected NUL byte"},
        {"\0{}", 3, "malformed JSON at line 1 column 1: unexpected NUL byte"},
        {"{}\0", 3, "malformed JSON at line 1 column 3: unexpected NUL byte"},
        {"{\"\xc3\xa9\":\n\n [1,\0]}", 16,
         "malformed JSON at line 3 column 5: unexpected NUL byte"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct tm_error e;
        err_clear(&e);
        json_t *v = json_parse_object(cases[i].body, cases[i].n, 32, &e);
        CHECK(v == NULL);
        json_decref(v);
        CHECK_INT(e.code, TM_EMALFORMED);
        CHECK_STR(e.message, cases[i].message);
    }
    /* jansson itself takes the first one. */
    json_t *j = json_loadb("{\"a\":1\0}", 8, JSON_REJECT_DUPLICATES, NULL);
    CHECK(j != NULL);
    json_decref(j);
}

/* \u0000 in a string is refused in words of JSON, not jansson's (which
 * named a flag of its API, JSON_ALLOW_NUL), with the string's path in the
 * message and the field. A NUL in a key keeps jansson's words, which name
 * nothing of its API. */
static void test_nul_escape(void) {
    static const struct {
        const char *body, *message, *field;
    } cases[] = {
        {"{\"type\":\"a\\u0000\"}",
         "malformed JSON at line 1 column 17: \\u0000 (a NUL character) in a string ('type')",
         "type"},
        {"{\"p\":{\"x\":[1,\"\\u0000b\"]}}",
         "malformed JSON at line 1 column 22: \\u0000 (a NUL character) in a string ('p.x[1]')",
         "p.x[1]"},
        {"{\"tasks\":[{\"type\":\"t\"},{\"params\":{\"k\\u0061\":\"\\u0000\"}}]}",
         "malformed JSON at line 1 column 52: \\u0000 (a NUL character) in a string "
         "('tasks[1].params.ka')",
         "tasks[1].params.ka"},
        {"{\"a\\u0000\":1}",
         "malformed JSON at line 1 column 10: NUL byte in object key not supported "
         "near '\"a\\u0000\"'",
         ""},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct tm_error e;
        err_clear(&e);
        CHECK(json_parse_object(cases[i].body, strlen(cases[i].body), 32, &e) == NULL);
        CHECK_INT(e.code, TM_EMALFORMED);
        CHECK_STR(e.message, cases[i].message);
        CHECK_STR(e.field, cases[i].field);
        CHECK(strstr(e.message, "JSON_ALLOW_NUL") == NULL);
    }
}

static const struct th_test tests[] = {
    {"fast JSON path agrees with jansson on edge cases and takes the plain ones", test_edge_cases},
    {"fast JSON path builds the values by hand too", test_values_by_hand},
    {"fast JSON path takes 20,000 random plain bodies as jansson does", test_random_bodies},
    {"fast JSON path never answers otherwise than jansson on 50,000 mutants", test_mutants},
    {"json_parse_object's errors are jansson's, word for word", test_parse_object_errors},
    {"\\u0000 in a string is refused by its path, in JSON's words", test_nul_escape},
    {"a duplicate key is named by its path", test_duplicate_path},
    {"a NUL byte is refused, with where it is", test_nul_byte},
    {NULL, NULL},
};

int main(int argc, char **argv) {
    return th_main(tests, argc, argv);
}
