/*
 * json_text (src/common/task_json.c) writes stored JSON itself: it must be
 * byte for byte what jansson's json_dumps wrote before it, with the same
 * flags, so that text stored by either compares equal. Checked on chosen
 * edge cases and on many random values.
 */
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../src/common/task.h"
#include "../src/common/task_json.h"
#include "../src/common/timeutil.h"
#include "harness.h"

#define FLAGS (JSON_COMPACT | JSON_ENCODE_ANY | JSON_REAL_PRECISION(16))

static int mismatches;

static void same_as_jansson(json_t *v) {
    char *ours = json_text(v);
    char *theirs = json_dumps(v, FLAGS);
    if (!ours || !theirs || strcmp(ours, theirs) != 0) {
        if (mismatches++ < 5)
            fprintf(stderr, "  json_text: %s\n  json_dumps: %s\n", ours ? ours : "(null)",
                    theirs ? theirs : "(null)");
    }
    free(ours);
    free(theirs);
    json_decref(v);
}

static void test_edge_cases(void) {
    mismatches = 0;
    const double reals[] = {0.0,
                            -0.0,
                            0.1,
                            0.2,
                            1.0,
                            -1.5,
                            1e16,
                            1e17,
                            1e21,
                            1e-5,
                            1.5e-7,
                            123.456,
                            1e300,
                            -1e-300,
                            DBL_MAX,
                            DBL_MIN,
                            5e-324,
                            2.5e-310,
                            0.1 + 0.2,
                            100.0,
                            1e15,
                            9007199254740993.0,
                            3.14159265358979,
                            1e-4,
                            12345678901234567890.0};
    for (size_t i = 0; i < sizeof reals / sizeof reals[0]; i++)
        same_as_jansson(json_real(reals[i]));
    const json_int_t ints[] = {0, 1, -1, 42, INT64_MAX, INT64_MIN, 1000000, -999999999999};
    for (size_t i = 0; i < sizeof ints / sizeof ints[0]; i++)
        same_as_jansson(json_integer(ints[i]));
    const char *strs[] = {"",
                          "plain",
                          "quote \" and \\ backslash",
                          "a/b",
                          "tab\there\nnew\rret",
                          "\b\f\x01\x1f\x7f",
                          "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80",
                          "\xe2\x80\xa8 line separator"};
    for (size_t i = 0; i < sizeof strs / sizeof strs[0]; i++)
        same_as_jansson(json_string(strs[i]));
    same_as_jansson(json_stringn("nul\0inside", 10));
    same_as_jansson(json_true());
    same_as_jansson(json_false());
    same_as_jansson(json_null());
    same_as_jansson(json_object());
    same_as_jansson(json_array());
    const char *texts[] = {
        "{\"b\":1,\"a\":[1,2.5,{\"c\":null}],\"\":\"e\",\"k\\u001fy\":true}",
        "[[],{},[[[]]],\"\\u00e9\\ud83d\\ude00\",-0.0,1E+2,1e-07]",
        "{\"z\":{\"y\":{\"x\":[false,true,null,0]}}}",
    };
    for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++) {
        json_error_t je;
        json_t *v = json_loads(texts[i], JSON_ALLOW_NUL, &je);
        if (!v) fprintf(stderr, "  %s: %s\n", texts[i], je.text);
        CHECK(v != NULL);
        if (v) same_as_jansson(v);
    }
    CHECK_INT(mismatches, 0);
    CHECK(json_text(NULL) == NULL);
}

/* xorshift64*, seeded: the same values every run. */
static uint64_t rng = 0x9e3779b97f4a7c15u;
static uint64_t next(void) {
    rng ^= rng >> 12;
    rng ^= rng << 25;
    rng ^= rng >> 27;
    return rng * 2685821657736338717u;
}

/* A random string of valid UTF-8: ASCII (control bytes, quote, backslash
 * included), two-, three- and four-byte sequences, and NUL. */
static size_t random_text(char *out, size_t cap) {
    size_t n = 0, want = next() % 12;
    for (size_t k = 0; k < want && n + 4 < cap; k++) {
        switch (next() % 6) {
        case 0:
            out[n++] = (char)(next() % 0x20); /* control, NUL too */
            break;
        case 1:
            out[n++] = "\"\\/ az{}[]:,"[next() % 12];
            break;
        case 2:
            out[n++] = (char)(0x20 + next() % 0x60);
            break;
        case 3: { /* U+0080..U+07FF */
            unsigned c = 0x80 + (unsigned)(next() % 0x780);
            out[n++] = (char)(0xc0 | (c >> 6));
            out[n++] = (char)(0x80 | (c & 0x3f));
            break;
        }
        case 4: { /* U+0800..U+FFFF, not surrogates */
            unsigned c = 0x800 + (unsigned)(next() % (0xd800 - 0x800));
            out[n++] = (char)(0xe0 | (c >> 12));
            out[n++] = (char)(0x80 | ((c >> 6) & 0x3f));
            out[n++] = (char)(0x80 | (c & 0x3f));
            break;
        }
        default: { /* U+10000..U+10FFFF */
            unsigned c = 0x10000 + (unsigned)(next() % 0x100000);
            out[n++] = (char)(0xf0 | (c >> 18));
            out[n++] = (char)(0x80 | ((c >> 12) & 0x3f));
            out[n++] = (char)(0x80 | ((c >> 6) & 0x3f));
            out[n++] = (char)(0x80 | (c & 0x3f));
            break;
        }
        }
    }
    return n;
}

static double random_real(void) {
    double d;
    switch (next() % 4) {
    case 0: { /* any finite bit pattern */
        uint64_t bits;
        do {
            bits = next();
            memcpy(&d, &bits, sizeof d);
        } while (!isfinite(d));
        return d;
    }
    case 1:
        return (double)(int64_t)(next() % 2000000) - 1000000.0; /* whole */
    case 2:
        return (double)(next() % 100000) / 1000.0;
    default:
        return ldexp((double)(next() % 1000) - 500, (int)(next() % 200) - 100);
    }
}

static json_t *random_value(int depth) {
    char s[64];
    switch (next() % (depth < 4 ? 8 : 6)) {
    case 0:
        return json_integer((json_int_t)next());
    case 1:
        return json_real(random_real());
    case 2:
        return json_stringn(s, random_text(s, sizeof s));
    case 3:
        return next() % 2 ? json_true() : json_false();
    case 4:
        return json_null();
    case 5:
        return json_integer((json_int_t)(next() % 1000) - 500);
    case 6: {
        json_t *a = json_array();
        for (int k = (int)(next() % 5); k > 0; k--)
            json_array_append_new(a, random_value(depth + 1));
        return a;
    }
    default: {
        json_t *o = json_object();
        for (int k = (int)(next() % 5); k > 0; k--) {
            size_t n = random_text(s, sizeof s);
            json_object_setn_new(o, s, n, random_value(depth + 1));
        }
        return o;
    }
    }
}

static void test_random_values(void) {
    mismatches = 0;
    for (int i = 0; i < 20000; i++)
        same_as_jansson(random_value(0));
    CHECK_INT(mismatches, 0);
}

/* The attempts' JSON as task_attempt_begin and _end wrote it through
 * jansson before they wrote it in place: the reference they must match. */
static char *ref_begin(const char *attempts, int64_t attempt, const char *worker, int64_t now) {
    json_t *all = attempts ? json_loads(attempts, 0, NULL) : json_array();
    json_t *a = json_object();
    char tmp[TIME_RFC3339_LEN + 1];
    time_format_rfc3339(now, tmp);
    json_object_set_new(a, "attempt", json_integer(attempt));
    json_object_set_new(a, "worker", worker ? json_string(worker) : json_null());
    json_object_set_new(a, "started_at", json_string(tmp));
    json_object_set_new(a, "ended_at", json_null());
    json_object_set_new(a, "outcome", json_string("running"));
    json_object_set_new(a, "error", json_null());
    json_array_append_new(all, a);
    char *out = json_dumps(all, FLAGS);
    json_decref(all);
    return out;
}

static char *ref_end(const char *attempts, const char *outcome, const char *error, int64_t now) {
    json_t *all = json_loads(attempts, 0, NULL);
    json_t *last = json_array_get(all, json_array_size(all) - 1);
    char tmp[TIME_RFC3339_LEN + 1];
    time_format_rfc3339(now, tmp);
    json_object_set_new(last, "ended_at", json_string(tmp));
    json_object_set_new(last, "outcome", json_string(outcome));
    json_object_set_new(last, "error", error ? json_string(error) : json_null());
    char *out = json_dumps(all, FLAGS);
    json_decref(all);
    return out;
}

static void test_attempts_written_in_place(void) {
    const char *workers[] = {NULL, "w-1", "quote\" back\\ tab\t nl\n \x01",
                             "caf\xc3\xa9 \xf0\x9f\x98\x80"};
    const char *errors[] = {NULL, "lease lost", "boom:\n\"x\"\\ \x1f end",
                            "\xc3\xa9"
                            "chec \xff"};
    const char *outcomes[] = {"completed", "failed", "lease_lost", "released"};
    int64_t now = 1733390000123;
    for (size_t w = 0; w < 4; w++) {
        struct task *t = task_new();
        t->lease_worker = workers[w] ? strdup(workers[w]) : NULL;
        for (int k = 0; k < 4; k++) {
            t->attempt = k + 1;
            char *want = ref_begin(t->attempts, t->attempt, t->lease_worker, now + k);
            task_attempt_begin(t, now + k);
            CHECK_STR(t->attempts, want);
            free(want);
            want = ref_end(t->attempts, outcomes[k], errors[(w + (size_t)k) % 4], now + k + 7);
            task_attempt_end(t, outcomes[k], errors[(w + (size_t)k) % 4], now + k + 7);
            CHECK_STR(t->attempts, want);
            free(want);
            /* Ended: a second end changes nothing. */
            char *before = strdup(t->attempts);
            task_attempt_end(t, "failed", "again", now + 99);
            CHECK_STR(t->attempts, before);
            free(before);
        }
        task_free(t);
    }
}

static const struct th_test tests[] = {
    {"task attempts are begun and ended in place as jansson wrote them",
     test_attempts_written_in_place},
    {"json_text writes what json_dumps wrote: edge cases", test_edge_cases},
    {"json_text writes what json_dumps wrote: 20,000 random values", test_random_values},
    {NULL, NULL},
};

int main(int argc, char **argv) {
    return th_main(tests, argc, argv);
}
