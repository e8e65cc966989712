/*
 * The pure helpers: RFC 3339 times, the JSON writer, ids, the depth scan,
 * and the v1 request decoders (src/server/v1_decode.c), which must name
 * the offending field for every refusal.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../src/common/buf.h"
#include "../src/common/id.h"
#include "../src/common/json_parse.h"
#include "../src/common/timeutil.h"
#include "../src/common/utf8.h"
#include "../src/server/v1_decode.h"
#include "harness.h"

static void test_time_roundtrip(void) {
    char out[TIME_RFC3339_LEN + 1];
    time_format_rfc3339(0 + 1, out);
    CHECK_STR(out, "1970-01-01T00:00:00.001Z");
    time_format_rfc3339(1795364337907LL, out);
    CHECK_STR(out, "2026-11-22T16:18:57.907Z");
    int64_t ms;
    CHECK_INT(time_parse_rfc3339("2026-11-22T16:18:57.907Z", &ms), 0);
    CHECK_INT(ms, 1795364337907LL);
    CHECK_INT(time_parse_rfc3339("2026-11-22T17:18:57.907+01:00", &ms), 0);
    CHECK_INT(ms, 1795364337907LL);
    CHECK_INT(time_parse_rfc3339("2024-02-29T00:00:00Z", &ms), 0);
    CHECK_INT(time_parse_rfc3339("1970-01-01T00:00:00Z", &ms), 0);
    CHECK_INT(ms, 0);
    CHECK_INT(time_parse_rfc3339("9999-12-31T23:59:59.999Z", &ms), 0);
    CHECK_INT(ms, TIME_MAX_MS);
    const char *bad[] = {"", "2026-11-22", "2026-13-01T00:00:00Z", "2023-02-29T00:00:00Z",
                         "2026-11-22T25:00:00Z", "2026-11-22T10:00:00", "2026-11-22T10:00:00Zjunk",
                         "2026-11-22T10:00:00.Z",
                         /* outside 1970..9999 UTC */
                         "0000-01-01T00:00:00Z", "1969-12-31T23:59:59.999Z",
                         "1970-01-01T00:30:00+01:00", "9999-12-31T23:59:59-00:01"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        if (time_parse_rfc3339(bad[i], &ms) != -1) {
            th_fail(__FILE__, __LINE__, "'%s' parsed", bad[i]);
            return;
        }
    }
}

/* What gmtime_r says of ms, in the RFC 3339 form. */
static void time_reference(int64_t ms, char out[TIME_RFC3339_LEN + 1]) {
    time_t secs = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&secs, &tm);
    snprintf(out, TIME_RFC3339_LEN + 1, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
             tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(ms % 1000));
}

/* time_format_rfc3339 keeps the last second it wrote (per thread): a
 * sequence that comes back to a second, steps one millisecond over a
 * second's, a day's and a year's end, and jumps, must read as gmtime_r. */
static int time_sequence_checks(uint64_t seed, int n) {
    int bad = 0;
    int64_t t = 1795364337907LL;
    for (int i = 0; i < n; i++) {
        seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
        uint64_t r = seed >> 33;
        switch (r % 6) {
        case 0: /* the same second, mostly */
            t += 1;
            break;
        case 1: /* its last millisecond */
            t = t / 1000 * 1000 + 999;
            break;
        case 2: /* the next second's first */
            t = (t / 1000 + 1) * 1000;
            break;
        case 3: /* back to the second before */
            t -= 1000;
            break;
        case 4: /* anywhere */
            t = (int64_t)(r % (uint64_t)TIME_MAX_MS);
            break;
        default: /* a day's last millisecond */
            t = (t / 86400000 + 1) * 86400000 - 1;
            break;
        }
        if (t < 1) t = 1;
        if (t > TIME_MAX_MS) t = TIME_MAX_MS;
        char got[TIME_RFC3339_LEN + 1], want[TIME_RFC3339_LEN + 1];
        time_format_rfc3339(t, got);
        time_reference(t, want);
        if (strcmp(got, want) != 0) {
            if (bad++ < 3) fprintf(stderr, "    %lld: got %s, want %s\n", (long long)t, got, want);
        }
        /* The same time again, from the kept second. */
        time_format_rfc3339(t, got);
        if (strcmp(got, want) != 0) bad++;
    }
    return bad;
}

static void *time_thread(void *arg) {
    int *seed_then_bad = arg;
    *seed_then_bad = time_sequence_checks((uint64_t)*seed_then_bad, 200000);
    return NULL;
}

static void test_time_format_sequences(void) {
    char out[TIME_RFC3339_LEN + 1];
    const int64_t edge[] = {1,
                            999,
                            1000,
                            59999,
                            60000,
                            86399999,
                            86400000,
                            951782399999,
                            951782400000, /* 2000-02-29 */
                            978307199999,
                            978307200000,
                            TIME_MAX_MS - 999,
                            TIME_MAX_MS};
    for (size_t i = 0; i < sizeof edge / sizeof edge[0]; i++) {
        char want[TIME_RFC3339_LEN + 1];
        time_reference(edge[i], want);
        time_format_rfc3339(edge[i], out);
        CHECK_STR(out, want);
    }
    CHECK_INT(time_sequence_checks(42, 200000), 0);
    /* Two threads at once, each with its own sequence: a second kept for
     * the whole process instead of per thread would mix them up. */
    int a = 7, b = 11;
    pthread_t ta, tb;
    CHECK(pthread_create(&ta, NULL, time_thread, &a) == 0);
    CHECK(pthread_create(&tb, NULL, time_thread, &b) == 0);
    pthread_join(ta, NULL);
    pthread_join(tb, NULL);
    CHECK_INT(a, 0);
    CHECK_INT(b, 0);
}

/* buf_put's inline path and its growing one meet at the capacity: with
 * 256 bytes, 10 more fit after 245 (and the NUL), not after 246. */
static void test_buf_put_at_capacity(void) {
    int fitted = 0, grown = 0;
    for (size_t fill = 240; fill < 256; fill++) {
        struct buf b;
        buf_init(&b);
        buf_reserve(&b, 255); /* an empty buffer: 256 bytes exactly */
        for (size_t i = 0; i < fill; i++)
            buf_putc(&b, (char)('a' + i % 26));
        size_t cap = b.cap;
        buf_put_lit(&b, "0123456789");
        CHECK_INT(b.len, fill + 10);
        CHECK(b.cap > b.len);
        CHECK_INT(b.p[b.len], 0);
        CHECK(memcmp(b.p + fill, "0123456789", 10) == 0);
        CHECK(b.p[fill - 1] == (char)('a' + (fill - 1) % 26));
        CHECK_INT(cap, 256);
        if (fill + 10 < cap) {
            CHECK_INT(b.cap, cap); /* it fitted: no growth */
            fitted++;
        } else {
            CHECK(b.cap > cap);
            grown++;
        }
        buf_put(&b, "", 0);
        CHECK_INT(b.len, fill + 10);
        buf_release(&b);
    }
    CHECK_INT(fitted, 6); /* fills 240 to 245 */
    CHECK_INT(grown, 10);
    struct buf e;
    buf_init(&e);
    buf_put(&e, "", 0); /* an empty buffer still gets its NUL */
    CHECK(e.p != NULL && e.p[0] == 0 && e.len == 0);
    buf_release(&e);
}

/* time_cond_wait_ms waits its time on the monotonic clock, across a second. */
static void test_cond_wait_ms(void) {
    pthread_mutex_t m = PTHREAD_MUTEX_INITIALIZER;
    pthread_cond_t c;
    time_cond_init(&c);
    pthread_mutex_lock(&m);
    const int64_t waits[] = {40, 1010};
    for (size_t i = 0; i < sizeof waits / sizeof waits[0]; i++) {
        int64_t start = time_mono_ms();
        time_cond_wait_ms(&c, &m, waits[i]); /* nobody signals: it times out */
        int64_t took = time_mono_ms() - start;
        CHECK(took >= waits[i] - 1); /* the clock reads whole ms */
        CHECK(took < waits[i] + 2000);
    }
    pthread_mutex_unlock(&m);
    pthread_cond_destroy(&c);
}

static void test_json_writer_escapes(void) {
    struct buf b;
    buf_init(&b);
    json_put_str(&b, "a\"b\\c\n\x01\xc3\xa9");
    CHECK_STR(b.p, "\"a\\\"b\\\\c\\n\\u0001\xc3\xa9\"");
    buf_clear(&b);
    json_put_str(&b, NULL);
    json_put_double(&b, 0.25);
    json_put_time(&b, 0);
    CHECK_STR(b.p, "null0.25null");
    buf_release(&b);
}

/* json_put_double writes what "%.6g" writes, whole numbers by a shorter way. */
static void test_json_double_as_printf(void) {
    const double v[] = {0,       -0.0,     1,    25,        100,   -3,     999999,
                        -999999, 1e6,      1e7,  0.25,      0.1,   1.5,    -2.5,
                        1e-7,    123456.7, 4096, 33.333333, 1e300, -1e300, 0.999999};
    struct buf b;
    buf_init(&b);
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
        char want[40];
        snprintf(want, sizeof want, "%.6g", v[i]);
        buf_clear(&b);
        json_put_double(&b, v[i]);
        CHECK_STR(b.p, want);
    }
    buf_release(&b);
}

/* UTF-8 as jansson takes it, and error messages kept to it. */
static void test_utf8(void) {
    static const struct {
        const char *s;
        size_t len;
    } cases[] = {
        {"a", 1},
        {"\xC3\xA9", 2},
        {"\xE2\x82\xAC", 3},
        {"\xF0\x9F\x98\x80", 4},
        {"\xC3", 0},
        {"\x80", 0},
        {"\xC0\xAF", 0},
        {"\xE0\x80\xAF", 0},
        {"\xED\xA0\x80", 0},
        {"\xF4\x90\x80\x80", 0},
        {"\xF5\x80\x80\x80", 0},
        {"\xE2\x82", 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const char *s = cases[i].s;
        if (utf8_char_len(s, s + strlen(s)) != cases[i].len)
            th_fail(__FILE__, __LINE__, "case %zu: %zu, not %zu", i,
                    utf8_char_len(s, s + strlen(s)), cases[i].len);
    }
    /* A sequence longer than what is left is not one. */
    CHECK_INT(utf8_char_len("\xC3\xA9", "\xC3\xA9" + 1), 0);
    char bad[] = "ok \xC3\xA9 \xC3 \xFF\xE2\x82\xAC \xE2\x82";
    CHECK_STR(utf8_scrub(bad), "ok \xC3\xA9 ? ?\xE2\x82\xAC ??");
    CHECK(utf8_valid("ok \xC3\xA9 \xE2\x82\xAC", 9));
    CHECK(utf8_valid("", 0));
    CHECK(!utf8_valid("a\xFF", 2));
    CHECK(!utf8_valid("\xE2\x82\xAC", 2)); /* cut by the length */
    CHECK(!utf8_valid("\xED\xA0\x80", 3)); /* a surrogate */
    /* By length: a NUL inside is a '?' too (the worker's output). */
    char raw[] = {'a', '\0', 'b', '\xC3', '\xA9', '\xE2', '\0'};
    utf8_scrub_n(raw, 6);
    CHECK(memcmp(raw, "a?b\xC3\xA9?", 6) == 0);
    /* err_set: "%.4s" cuts the euro sign; the field too. */
    struct tm_error e;
    err_set(&e, TM_EINVALID, "a\xE2\x82", "'%.4s' is not known", "ab\xE2\x82\xAC");
    CHECK_STR(e.message,
              "'ab?"
              "?' is not known");
    CHECK_STR(e.field, "a??");
}

static void test_ids_increase(void) {
    char prev[ID_LEN + 1] = "", cur[ID_LEN + 1];
    for (int i = 0; i < 10000; i++) {
        id_new(cur);
        CHECK(id_is_valid(cur));
        CHECK(strcmp(prev, cur) < 0);
        memcpy(prev, cur, sizeof cur);
    }
    CHECK(!id_is_valid("0123"));
    CHECK(!id_is_valid("0123456789ABCDEF0123456789abcdef"));
}

/* The random part comes from a pool refilled every 400 ids: ids made in
 * different milliseconds (so not one past the last) across several
 * refills never repeat a random part. */
static void test_id_random_parts_differ(void) {
    enum { N = 900 };
    static char rand_part[N][21];
    char prev[ID_LEN + 1] = "", cur[ID_LEN + 1];
    int n = 0;
    while (n < N) {
        id_new(cur);
        if (strncmp(prev, cur, 12) != 0 && prev[0]) {
            memcpy(rand_part[n], cur + 12, 20);
            rand_part[n][20] = '\0';
            n++;
        }
        memcpy(prev, cur, sizeof cur);
    }
    for (int i = 0; i < N; i++)
        for (int j = i + 1; j < N; j++)
            CHECK(strcmp(rand_part[i], rand_part[j]) != 0);
}

static void test_depth(void) {
    CHECK_INT(json_depth("{\"a\":[[1]],\"b\":\"[[[[\"}", 22), 3);
    struct tm_error e;
    err_clear(&e);
    char deep[200] = "";
    for (int i = 0; i < 40; i++)
        strcat(deep, "[");
    CHECK(json_parse_object(deep, strlen(deep), 32, &e) == NULL);
    CHECK_INT(e.code, TM_EINVALID);
    CHECK(json_parse_object("[1]", 3, 32, &e) == NULL);
    CHECK_INT(e.code, TM_EMALFORMED);
    CHECK(json_parse_object("{\"a\":1,\"a\":2}", 13, 32, &e) == NULL);
    CHECK(json_parse_object("{\"a\":1} x", 9, 32, &e) == NULL);
    CHECK(json_parse_object("{\"a\":\"\\u0000\"}", 14, 32, &e) == NULL);
    CHECK(json_parse_object("{\"a\":99999999999999999999}", 26, 32, &e) == NULL);
}

static struct limits lim = {
    .body_max_bytes = 1 << 20,
    .json_max_depth = 32,
    .batch_max = 1000,
    .page_max = 1000,
    .wait_max_seconds = 60,
    .string_max_bytes = 65536,
    .items_max_per_call = 1000,
    .messages_max_per_call = 100,
};

/* Decodes a task body and returns the field named by the refusal ("" if accepted). */
static const char *task_refusal(const char *text) {
    static char field[64];
    json_t *j = json_loads(text, 0, NULL);
    if (!j) return "(bad test JSON)";
    struct task *t = NULL;
    struct tm_error e;
    err_clear(&e);
    int rc = v1_decode_task(j, &lim, NULL, &t, &e);
    json_decref(j);
    task_free(t);
    snprintf(field, sizeof field, "%s", rc ? (e.field[0] ? e.field : "(no field)") : "");
    return field;
}

static void test_decode_task_fields(void) {
    CHECK_STR(task_refusal("{\"type\":\"x\"}"), "");
    CHECK_STR(task_refusal("{}"), "type");
    CHECK_STR(task_refusal("{\"type\":\"\"}"), "type");
    CHECK_STR(task_refusal("{\"type\":7}"), "type");
    CHECK_STR(task_refusal("{\"type\":\"x\",\"colour\":1}"), "colour");
    CHECK_STR(task_refusal("{\"type\":\"x\",\"priority\":\"high\"}"), "priority");
    CHECK_STR(task_refusal("{\"type\":\"x\",\"priority\":1.5}"), "priority");
    CHECK_STR(task_refusal("{\"type\":\"x\",\"priority\":99999999}"), "priority");
    CHECK_STR(task_refusal("{\"type\":\"x\",\"queue\":\"a b\"}"), "queue");
    CHECK_STR(task_refusal("{\"type\":\"x\",\"params\":[1]}"), "params");
    CHECK_STR(task_refusal("{\"type\":\"x\",\"parent_id\":\"nope\"}"), "parent_id");
    CHECK_STR(task_refusal("{\"type\":\"x\",\"scheduled_at\":\"tomorrow\"}"), "scheduled_at");
    CHECK_STR(task_refusal("{\"type\":\"x\",\"max_retries\":-1}"), "max_retries");
    CHECK_STR(task_refusal("{\"type\":\"x\",\"paused\":\"yes\"}"), "paused");
    CHECK_STR(task_refusal("{\"type\":\"x\",\"target\":{\"id\":1}}"), "target.id");
    CHECK_STR(task_refusal("{\"type\":\"x\",\"target\":{\"colour\":\"r\"}}"), "target.colour");
    CHECK_STR(task_refusal("{\"type\":\"x\",\"definition\":{\"arguments\":[]}}"),
              "definition.arguments");
    CHECK_STR(task_refusal("{\"type\":\"x\",\"namespace\":\"a/b\"}"), "namespace");
    CHECK_STR(task_refusal("{\"type\":\"a\\nb\"}"), "type");
}

/* Decodes a worker call and returns the refused field ("" if accepted). */
static const char *call_refusal(enum store_op_kind kind, const char *text) {
    static char field[64];
    json_t *j = json_loads(text, 0, NULL);
    if (!j) return "(bad test JSON)";
    struct store_op op;
    store_op_init(&op, kind);
    struct tm_error e;
    err_clear(&e);
    int rc = v1_decode_worker_call(j, &lim, &op, &e);
    json_decref(j);
    snprintf(field, sizeof field, "%s", rc ? (e.field[0] ? e.field : "(no field)") : "");
    return field;
}

static void test_decode_worker_calls(void) {
    enum store_op_kind hb = STORE_OP_HEARTBEAT;
    CHECK_STR(call_refusal(hb, "{\"lease_token\":\"t\"}"), "");
    CHECK_STR(call_refusal(hb, "{}"), "lease_token");
    CHECK_STR(call_refusal(hb, "{\"lease_token\":\"t\",\"progress\":{\"ratio\":1.5}}"),
              "progress.ratio");
    CHECK_STR(call_refusal(hb, "{\"lease_token\":\"t\",\"progress\":{\"percent\":101}}"),
              "progress.percent");
    CHECK_STR(call_refusal(hb, "{\"lease_token\":\"t\",\"progress\":{\"processed\":-1}}"),
              "progress.processed");
    CHECK_STR(call_refusal(hb, "{\"lease_token\":\"t\",\"progress\":{\"eta\":3}}"), "progress.eta");
    CHECK_STR(call_refusal(hb, "{\"lease_token\":\"t\",\"items\":[{\"progress\":1}]}"),
              "items[0].name");
    CHECK_STR(
        call_refusal(hb, "{\"lease_token\":\"t\",\"items\":[{\"name\":\"a\",\"progress\":2}]}"),
        "items[0].progress");
    CHECK_STR(
        call_refusal(hb,
                     "{\"lease_token\":\"t\",\"messages\":[{\"level\":\"DEBUG\",\"text\":\"x\"}]}"),
        "messages[0].level");
    CHECK_STR(call_refusal(hb, "{\"lease_token\":\"t\",\"messages\":[{\"level\":\"INFO\"}]}"),
              "messages[0].text");
    CHECK_STR(call_refusal(hb, "{\"lease_token\":\"t\",\"attributes\":[]}"), "attributes");
    CHECK_STR(call_refusal(hb, "{\"lease_token\":\"t\",\"result\":1}"), "result");
    CHECK_STR(
        call_refusal(STORE_OP_COMPLETE, "{\"lease_token\":\"t\",\"result\":1,\"warning\":true}"),
        "");
    CHECK_STR(
        call_refusal(STORE_OP_COMPLETE, "{\"lease_token\":\"t\",\"returns\":[{\"name\":\"a\"}]}"),
        "returns[0].attribute");
    CHECK_STR(call_refusal(STORE_OP_FAIL, "{\"lease_token\":\"t\"}"), "error");
    CHECK_STR(
        call_refusal(STORE_OP_FAIL, "{\"lease_token\":\"t\",\"error\":\"x\",\"retryable\":1}"),
        "retryable");
    CHECK_STR(call_refusal(STORE_OP_RELEASE, "{\"lease_token\":\"t\",\"error\":\"x\"}"), "error");
}

static void test_decode_list_query(void) {
    struct list_query q;
    struct tm_error e;
    v1_list_query_init(&q);
    CHECK_INT(v1_list_query_add(&q, &lim, "phase", "pending,running", &e), 0);
    CHECK_INT(q.filter.phases, (1u << TASK_PENDING) | (1u << TASK_RUNNING));
    CHECK_INT(v1_list_query_add(&q, &lim, "phase", "asleep", &e), TM_EINVALID);
    CHECK_STR(e.field, "phase");
    CHECK_INT(v1_list_query_add(&q, &lim, "limit", "0", &e), TM_EINVALID);
    CHECK_INT(v1_list_query_add(&q, &lim, "limit", "1001", &e), TM_EINVALID);
    CHECK_INT(v1_list_query_add(&q, &lim, "limit", "10", &e), 0);
    CHECK_INT(q.filter.limit, 10);
    CHECK_INT(v1_list_query_add(&q, &lim, "created_after", "yesterday", &e), TM_EINVALID);
    CHECK_STR(e.field, "created_after");
    CHECK_INT(v1_list_query_add(&q, &lim, "cursor", "xyz", &e), TM_EINVALID);
    CHECK_INT(v1_list_query_add(&q, &lim, "order", "sideways", &e), TM_EINVALID);
    CHECK_INT(v1_list_query_add(&q, &lim, "colour", "red", &e), TM_EINVALID);
    CHECK_STR(e.field, "colour");
}

static const struct th_test tests[] = {
    {"RFC 3339 format and parse", test_time_roundtrip},
    {"RFC 3339 format: the kept second, over sequences and threads", test_time_format_sequences},
    {"buf_put at the buffer's capacity", test_buf_put_at_capacity},
    {"condition waits timed on the monotonic clock", test_cond_wait_ms},
    {"JSON writer escapes", test_json_writer_escapes},
    {"JSON numbers: json_put_double writes what %.6g writes", test_json_double_as_printf},
    {"UTF-8: lengths as jansson checks them; errors scrubbed of cut characters", test_utf8},
    {"ids are valid and strictly increasing", test_ids_increase},
    {"ids from different milliseconds have different random parts", test_id_random_parts_differ},
    {"depth limit and strict JSON", test_depth},
    {"task decoder names each bad field", test_decode_task_fields},
    {"worker call decoder names each bad field", test_decode_worker_calls},
    {"list query decoder", test_decode_list_query},
    {NULL, NULL},
};

int main(int argc, char **argv) {
    return th_main(tests, argc, argv);
}
