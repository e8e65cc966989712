/*
 * common/schedule: checking schedules and definitions, slots of intervals
 * and cron expressions within start and end, and the task a slot launches.
 */
#include <stdlib.h>

#include "../src/common/schedule.h"
#include "../src/common/timeutil.h"
#include "harness.h"

static int parse(const char *text, struct schedule *sc, struct tm_error *e) {
    json_t *j = json_loads(text, 0, NULL);
    err_clear(e);
    int rc = j ? schedule_parse(j, sc, e) : -1;
    json_decref(j);
    return rc;
}

static int64_t at(const char *rfc) {
    int64_t ms = 0;
    time_parse_rfc3339(rfc, &ms);
    return ms;
}

static void test_parse_errors(void) {
    static const struct {
        const char *body, *field;
    } bad[] = {
        {"[]", ""},
        {"{\"cron\":\"@daily\",\"task\":{}}", "name"},
        {"{\"name\":\"a\\u0001\",\"cron\":\"@daily\",\"task\":{}}", "name"},
        {"{\"name\":\"a\",\"task\":{}}", "interval_seconds"},
        {"{\"name\":\"a\",\"cron\":5,\"task\":{}}", "cron"},
        {"{\"name\":\"a\",\"cron\":\"* * * * * * *\",\"task\":{}}", "cron"},
        {"{\"name\":\"a\",\"interval_seconds\":1.5,\"task\":{}}", "interval_seconds"},
        {"{\"name\":\"a\",\"cron\":\"@daily\",\"timezone\":7,\"task\":{}}", "timezone"},
        {"{\"name\":\"a\",\"cron\":\"@daily\",\"timezone\":\"Etc/Nowhere\",\"task\":{}}",
         "timezone"},
        {"{\"name\":\"a\",\"cron\":\"@daily\",\"start_at\":\"soon\",\"task\":{}}", "start_at"},
        {"{\"name\":\"a\",\"cron\":\"@daily\",\"task\":{},\"definition\":\"d\"}", "definition"},
        {"{\"name\":\"a\",\"cron\":\"@daily\",\"task\":[]}", "task"},
        {"{\"name\":\"a\",\"cron\":\"@daily\",\"task\":{},\"params\":{}}", "params"},
        {"{\"name\":\"a\",\"cron\":\"@daily\",\"definition\":\"d\",\"params\":1}", "params"},
        {"{\"name\":\"a\",\"cron\":\"@daily\",\"task\":{},\"paused\":1}", "paused"},
        {"{\"name\":\"a\",\"cron\":\"@daily\",\"task\":{},\"note\":false}", "note"},
        /* The epoch is a time like any other, not "no end". */
        {"{\"name\":\"a\",\"cron\":\"@daily\",\"task\":{},\"start_at\":\"2030-01-01T00:00:00Z\","
         "\"end_at\":\"1970-01-01T00:00:00Z\"}",
         "end_at"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct schedule sc;
        struct tm_error e;
        int rc = parse(bad[i].body, &sc, &e);
        if (rc != TM_EINVALID || strcmp(e.field, bad[i].field) != 0) {
            th_fail(__FILE__, __LINE__, "%s: rc %d field '%s' (%s)", bad[i].body, rc, e.field,
                    e.message);
            return;
        }
    }
}

static void test_interval_slots(void) {
    struct schedule sc;
    struct tm_error e;
    CHECK_INT(parse("{\"name\":\"i\",\"interval_seconds\":60,\"start_at\":\"2026-01-01T00:00:00Z\","
                    "\"end_at\":\"2026-01-01T00:03:00Z\",\"task\":{\"type\":\"x\"}}",
                    &sc, &e),
              0);
    CHECK_INT(schedule_next_slot(&sc, at("2025-12-31T00:00:00Z"), NULL),
              at("2026-01-01T00:00:00Z"));
    CHECK_INT(schedule_next_slot(&sc, at("2026-01-01T00:00:00Z"), NULL),
              at("2026-01-01T00:01:00Z"));
    CHECK_INT(schedule_next_slot(&sc, at("2026-01-01T00:01:30Z"), NULL),
              at("2026-01-01T00:02:00Z"));
    CHECK_INT(schedule_next_slot(&sc, at("2026-01-01T00:02:00Z"), NULL),
              at("2026-01-01T00:03:00Z"));
    CHECK_INT(schedule_next_slot(&sc, at("2026-01-01T00:03:00Z"), NULL), 0); /* past end_at */
    /* A trigger's key steps off a slot's millisecond, and only off one. */
    CHECK_INT(schedule_off_slot(&sc, at("2026-01-01T00:01:00Z")), at("2026-01-01T00:01:00Z") + 1);
    CHECK_INT(schedule_off_slot(&sc, at("2026-01-01T00:01:00Z") + 1),
              at("2026-01-01T00:01:00Z") + 1);
    CHECK_INT(schedule_off_slot(&sc, at("2026-01-01T00:01:30Z")), at("2026-01-01T00:01:30Z"));
    CHECK_INT(schedule_off_slot(&sc, at("2026-01-01T00:04:00Z")), at("2026-01-01T00:04:00Z"));
    CHECK_INT(sc.overlap, SCHEDULE_OVERLAP_SKIP);
    CHECK_INT(sc.catchup_ms, 3600000);
    schedule_release(&sc);
}

/* 1970-01-01T00:00:00Z as start_at or end_at bounds the slots as any time does. */
static void test_epoch_bounds(void) {
    struct schedule sc;
    struct tm_error e;
    CHECK_INT(parse("{\"name\":\"c\",\"cron\":\"@daily\",\"end_at\":\"1970-01-01T00:00:00Z\","
                    "\"task\":{\"type\":\"x\"}}",
                    &sc, &e),
              0);
    CHECK(sc.has_end && !sc.has_start);
    CHECK_INT(schedule_next_slot(&sc, at("2026-01-01T00:00:00Z"), NULL), 0); /* ended */
    schedule_release(&sc);
    CHECK_INT(parse("{\"name\":\"c\",\"cron\":\"@daily\",\"start_at\":\"1970-01-01T00:00:00Z\","
                    "\"end_at\":\"1970-01-03T00:00:00Z\",\"task\":{\"type\":\"x\"}}",
                    &sc, &e),
              0);
    CHECK_INT(schedule_next_slot(&sc, 0, NULL), at("1970-01-02T00:00:00Z"));
    CHECK_INT(schedule_next_slot(&sc, at("1970-01-03T00:00:00Z"), NULL), 0);
    schedule_release(&sc);
}

/* A null is an absent field: its default, or none. */
static void test_null_is_absent(void) {
    struct schedule sc;
    struct tm_error e;
    CHECK_INT(parse("{\"name\":\"n\",\"cron\":\"@daily\",\"interval_seconds\":null,\"definition\":"
                    "\"d\",\"task\":null,\"params\":null,\"timezone\":null,\"overlap\":null,"
                    "\"catchup_seconds\":null,\"jitter_seconds\":null,\"paused\":null,"
                    "\"start_at\":null,\"end_at\":null,\"description\":null,\"note\":null}",
                    &sc, &e),
              0);
    CHECK_STR(sc.tz_name, "UTC");
    CHECK(!sc.params && !sc.has_start && !sc.has_end);
    CHECK_INT(sc.overlap, SCHEDULE_OVERLAP_SKIP);
    CHECK_INT(sc.catchup_ms, 3600000);
    CHECK_INT(sc.jitter_ms, 0);
    schedule_release(&sc);
    /* An interval with "cron": null is anchored as one without cron. */
    json_t *j = json_loads("{\"name\":\"i\",\"cron\":null,\"interval_seconds\":60}", 0, NULL);
    CHECK(schedule_anchor(j, 1000));
    json_decref(j);
}

/* No slot after 9999-12-31T23:59:59.999Z, which RFC 3339 cannot write. */
static void test_no_slot_past_9999(void) {
    struct schedule sc;
    struct tm_error e;
    CHECK_INT(parse("{\"name\":\"i\",\"interval_seconds\":3600,\"start_at\":"
                    "\"9999-12-31T22:30:00Z\",\"task\":{\"type\":\"x\"}}",
                    &sc, &e),
              0);
    CHECK_INT(schedule_next_slot(&sc, at("9999-12-31T22:00:00Z"), NULL),
              at("9999-12-31T22:30:00Z"));
    CHECK_INT(schedule_next_slot(&sc, at("9999-12-31T22:30:00Z"), NULL),
              at("9999-12-31T23:30:00Z"));
    CHECK_INT(schedule_next_slot(&sc, at("9999-12-31T23:30:00Z"), NULL), 0);
    schedule_release(&sc);
    CHECK_INT(parse("{\"name\":\"c\",\"cron\":\"30 2 * * *\",\"timezone\":\"America/New_York\","
                    "\"task\":{\"type\":\"x\"}}",
                    &sc, &e),
              0);
    int64_t slot = schedule_next_slot(&sc, at("9999-12-30T12:00:00Z"), NULL);
    CHECK_INT(slot, at("9999-12-31T07:30:00Z"));
    CHECK_INT(schedule_next_slot(&sc, slot, NULL), 0);
    schedule_release(&sc);
}

/* An interval without a start is anchored where it is told; nothing else is. */
static void test_anchor(void) {
    static const struct {
        const char *body;
        bool anchored;
    } cases[] = {
        {"{\"name\":\"i\",\"interval_seconds\":60,\"task\":{\"type\":\"x\"}}", true},
        {"{\"name\":\"i\",\"interval_seconds\":60,\"start_at\":null,\"task\":{\"type\":\"x\"}}",
         true},
        {"{\"name\":\"i\",\"interval_seconds\":60,\"start_at\":\"2026-01-01T00:00:30Z\",\"task\":{"
         "\"type\":\"x\"}}",
         false},
        {"{\"name\":\"c\",\"cron\":\"@hourly\",\"task\":{\"type\":\"x\"}}", false},
    };
    int64_t anchor = at("2026-01-01T00:00:10.250Z");
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        json_t *j = json_loads(cases[i].body, 0, NULL);
        json_t *before = json_deep_copy(j);
        bool changed = schedule_anchor(j, anchor);
        struct schedule sc;
        struct tm_error e;
        err_clear(&e);
        int rc = schedule_parse(j, &sc, &e);
        bool ok = rc == 0 && changed == cases[i].anchored && (changed || json_equal(j, before)) &&
                  (!cases[i].anchored || schedule_next_slot(&sc, anchor, NULL) == anchor + 60000);
        if (rc == 0) schedule_release(&sc);
        json_decref(before);
        json_decref(j);
        if (!ok) {
            th_fail(__FILE__, __LINE__, "%s: rc %d, changed %d", cases[i].body, rc, changed);
            return;
        }
    }
}

static void test_cron_slots_in_zone(void) {
    struct schedule sc;
    struct tm_error e;
    CHECK_INT(parse("{\"name\":\"c\",\"cron\":\"0 9 * * 1-5\",\"timezone\":\"Asia/Kolkata\","
                    "\"start_at\":\"2026-06-01T00:00:00Z\",\"definition\":\"d\","
                    "\"overlap\":\"buffer_one\",\"jitter_seconds\":5,\"catchup_seconds\":0}",
                    &sc, &e),
              0);
    /* 09:00 IST is 03:30 UTC; 2026-06-06 is a Saturday, so Friday's is followed by Monday's. */
    CHECK_INT(schedule_next_slot(&sc, at("2026-01-01T00:00:00Z"), NULL),
              at("2026-06-01T03:30:00Z"));
    CHECK_INT(schedule_next_slot(&sc, at("2026-06-05T03:30:00Z"), NULL),
              at("2026-06-08T03:30:00Z"));
    CHECK_INT(schedule_off_slot(&sc, at("2026-06-08T03:30:00Z")), at("2026-06-08T03:30:00Z") + 1);
    CHECK_INT(schedule_off_slot(&sc, at("2026-06-06T03:30:00Z")), at("2026-06-06T03:30:00Z"));
    CHECK_INT(sc.overlap, SCHEDULE_OVERLAP_BUFFER_ONE);
    CHECK_INT(sc.jitter_ms, 5000);
    CHECK_INT(sc.catchup_ms, 0);
    CHECK_STR(sc.definition, "d");
    schedule_release(&sc);
}

static void test_task_body(void) {
    json_t *def = json_loads(
        "{\"name\":\"rep\",\"type\":\"report\",\"queue\":\"q\",\"priority\":2,"
        "\"params\":{\"a\":1,\"b\":2},\"executor\":\"ex\",\"arguments\":{"
        "\"x\":true},\"description\":\"D\",\"timeout_seconds\":9}",
        0, NULL);
    json_t *params = json_loads("{\"b\":3,\"c\":4}", 0, NULL);
    json_t *t = schedule_task_body(def, "0123456789abcdef0123456789abcdef", NULL, params, "s1");
    CHECK_STR(json_string_value(json_object_get(t, "type")), "report");
    CHECK_STR(json_string_value(json_object_get(t, "queue")), "q");
    CHECK_INT(json_integer_value(json_object_get(t, "priority")), 2);
    json_t *p = json_object_get(t, "params");
    CHECK_INT(json_integer_value(json_object_get(p, "a")), 1);
    CHECK_INT(json_integer_value(json_object_get(p, "b")), 3);
    CHECK_INT(json_integer_value(json_object_get(p, "c")), 4);
    json_t *d = json_object_get(t, "definition");
    CHECK_STR(json_string_value(json_object_get(d, "id")), "0123456789abcdef0123456789abcdef");
    CHECK_STR(json_string_value(json_object_get(d, "name")), "rep");
    CHECK_STR(json_string_value(json_object_get(d, "executor")), "ex");
    CHECK(json_object_get(d, "timeout_seconds") == NULL); /* not part of a task's definition */
    CHECK_STR(json_string_value(json_object_get(t, "launcher")), "schedule:s1");
    json_decref(t);
    json_t *inl = json_loads("{\"type\":\"x\",\"params\":{\"k\":1}}", 0, NULL);
    t = schedule_task_body(NULL, NULL, inl, NULL, NULL);
    CHECK(json_equal(t, inl)); /* no launcher without a schedule */
    json_decref(t);
    json_decref(inl);
    json_decref(params);
    json_decref(def);
}

static void test_definition_check(void) {
    struct tm_error e;
    json_t *ok =
        json_loads("{\"name\":\"n\",\"type\":\"t\",\"params\":{},\"timeout_seconds\":5}", 0, NULL);
    err_clear(&e);
    CHECK_INT(definition_check(ok, &e), 0);
    json_decref(ok);
    static const struct {
        const char *body, *field;
    } bad[] = {
        {"{\"type\":\"t\"}", "name"},
        {"{\"name\":\"n\"}", "type"},
        {"{\"name\":\"n\",\"type\":\"t\",\"arguments\":[]}", "arguments"},
        {"{\"name\":\"n\",\"type\":\"t\",\"executor\":1}", "executor"},
        {"{\"name\":\"n\",\"type\":\"t\",\"timeout_seconds\":604801}", "timeout_seconds"},
        {"{\"name\":\"n\",\"type\":\"t\",\"x\":1}", "x"},
        {"{\"name\":\"a/b\",\"type\":\"t\"}", "name"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        json_t *j = json_loads(bad[i].body, 0, NULL);
        err_clear(&e);
        int rc = definition_check(j, &e);
        json_decref(j);
        if (rc != TM_EINVALID || strcmp(e.field, bad[i].field) != 0) {
            th_fail(__FILE__, __LINE__, "%s: rc %d field '%s'", bad[i].body, rc, e.field);
            return;
        }
    }
}

/* A slot's jitter delay: the same for the same schedule and slot, within
 * [0, jitter], spread over that range from slot to slot, another for
 * another schedule, and 0 without jitter. */
static void test_slot_delay(void) {
    struct schedule sc;
    struct tm_error e;
    CHECK_INT(parse("{\"name\":\"j\",\"interval_seconds\":1,\"jitter_seconds\":3,"
                    "\"task\":{\"type\":\"x\"}}",
                    &sc, &e),
              0);
    CHECK_INT(sc.jitter_ms, 3000);
    const char *a = "0190c2a4e3d07a1b8c9d0e1f2a3b4c5d", *b = "0190c2a4e3d07a1b8c9d0e1f2a3b4c5e";
    int64_t base = at("2026-06-01T00:00:00Z"), lo = 3000, hi = 0, same_b = 0;
    int64_t sum = 0, ties = 0, prev = -1;
    for (int i = 0; i < 1000; i++) {
        int64_t slot = base + (int64_t)i * 1000, d = schedule_slot_delay_ms(&sc, a, slot);
        if (d < 0 || d > 3000 || d != schedule_slot_delay_ms(&sc, a, slot)) {
            th_fail(__FILE__, __LINE__, "slot %d: delay %lld", i, (long long)d);
            schedule_release(&sc);
            return;
        }
        lo = d < lo ? d : lo;
        hi = d > hi ? d : hi;
        sum += d;
        ties += d == prev;
        prev = d;
        same_b += d == schedule_slot_delay_ms(&sc, b, slot);
    }
    sc.jitter_ms = 0;
    int64_t none = schedule_slot_delay_ms(&sc, a, base);
    schedule_release(&sc);
    CHECK(lo < 100 && hi > 2900);          /* the whole range is used */
    CHECK(sum > 1300000 && sum < 1700000); /* about 1500 on average */
    CHECK(ties < 10);                      /* neighbours differ */
    CHECK(same_b < 10);                    /* another schedule, other delays */
    CHECK_INT(none, 0);
}

static void test_name_check(void) {
    char n127[128], n128[129];
    memset(n127, 'm', 127);
    n127[127] = '\0';
    memset(n128, 'n', 128);
    n128[128] = '\0';
    const char *ok[] = {"nightly", "q?r #s", "p%41", "..", "caf\xc3\xa9", "100%", n127};
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        struct tm_error e;
        err_clear(&e);
        if (schedule_name_check(ok[i], &e) != 0) {
            th_fail(__FILE__, __LINE__, "'%s' refused: %s", ok[i], e.message);
            return;
        }
    }
    const char *bad[] = {NULL, "", "a/b", "/", "x%00y", "%00", "a\x01", "a\x7f", n128};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct tm_error e;
        err_clear(&e);
        if (schedule_name_check(bad[i], &e) != TM_EINVALID || strcmp(e.field, "name") != 0) {
            th_fail(__FILE__, __LINE__, "name %zu accepted", i);
            return;
        }
    }
}

int main(int argc, char **argv) {
    static const struct th_test tests[] = {
        {"schedule_parse refuses bad fields, naming each", test_parse_errors},
        {"interval slots from start_at, none past end_at", test_interval_slots},
        {"start_at and end_at at 1970-01-01T00:00:00Z bound the slots", test_epoch_bounds},
        {"no slot past 9999, interval or cron", test_no_slot_past_9999},
        {"a null is an absent field", test_null_is_absent},
        {"an interval without a start is anchored; one with a start, or cron, is not", test_anchor},
        {"cron slots in a zone, weekdays only", test_cron_slots_in_zone},
        {"the task a slot launches: defaults, params over them, definition", test_task_body},
        {"definition_check", test_definition_check},
        {"names: what a path segment can carry", test_name_check},
        {"a slot's jitter delay: its own, in range, the same on every call", test_slot_delay},
        {NULL, NULL},
    };
    return th_main(tests, argc, argv);
}
