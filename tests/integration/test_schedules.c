/*
 * Task definitions and schedules (docs/schedules.md), on both backends:
 * templates and launches, bad input refused with nothing stored, slots
 * fired once each whatever happens (overlap policies, pause, trigger,
 * backfill, catch-up after downtime, kill -9 and restarts, two nodes),
 * and the preview across daylight-saving changes.
 */
#include <libpq-fe.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "../src/common/schedule.h"
#include "../src/common/timeutil.h"
#include "harness.h"
#include "pg_util.h"
#include "sec_util.h"

static struct th_server srv;

static long count_tasks(struct th_server *s, const char *query) {
    struct th_resp *r = th_http(s, "GET", query, NULL);
    return r->status == 200 ? (long)json_array_size(th_get(r->json, "tasks")) : -1;
}

/* The schedule's fires: how many, how many made a task, and whether a slot repeats. */
static void fires_of(struct th_server *s, const char *sched, long *n, long *created, bool *dup) {
    char path[200];
    snprintf(path, sizeof path, "/v1/schedules/%s/fires?limit=1000", sched);
    struct th_resp *r = th_http(s, "GET", path, NULL);
    json_t *f = th_get(r->json, "fires");
    *n = (long)json_array_size(f);
    *created = 0;
    *dup = false;
    for (size_t i = 0; i < json_array_size(f); i++) {
        json_t *a = json_array_get(f, i);
        if (json_string_value(json_object_get(a, "task_id"))) (*created)++;
        for (size_t j = 0; j < i; j++)
            if (json_equal(json_object_get(a, "slot"),
                           json_object_get(json_array_get(f, j), "slot")))
                *dup = true;
    }
}

static void test_definitions(void) {
    struct th_resp *r = th_http(&srv, "POST", "/v1/definitions",
                                "{\"name\":\"resize\",\"type\":\"img.resize\",\"queue\":\"dq\","
                                "\"params\":{\"w\":100,\"fmt\":\"jpg\"},\"executor\":\"resizer\","
                                "\"arguments\":{\"a\":1},\"description\":\"Resize\","
                                "\"max_retries\":2,\"timeout_seconds\":60}");
    CHECK_INT(r->status, 201);
    char id[33];
    snprintf(id, sizeof id, "%s", th_str(r->json, "id"));
    CHECK_STR(th_str(r->json, "namespace"), "default");
    CHECK_INT(th_int(r->json, "params.w"), 100);
    r = th_http(&srv, "POST", "/v1/definitions", "{\"name\":\"resize\",\"type\":\"x\"}");
    CHECK_INT(r->status, 409);
    CHECK_STR(th_str(r->json, "error.field"), "name");
    static const struct {
        const char *body, *field;
    } bad[] = {
        {"{\"type\":\"x\"}", "name"},
        {"{\"name\":\"a\"}", "type"},
        {"{\"name\":\"a\",\"type\":\"x\",\"params\":[1]}", "params"},
        {"{\"name\":\"a\",\"type\":\"x\",\"colour\":1}", "colour"},
        {"{\"name\":\"a\",\"type\":\"x\",\"queue\":\"bad queue\"}", "queue"},
        {"{\"name\":\"a\",\"type\":\"x\",\"timeout_seconds\":0}", "timeout_seconds"},
        {"{\"name\":\"a\",\"type\":\"x\",\"priority\":\"high\"}", "priority"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        r = th_http(&srv, "POST", "/v1/definitions", "%s", bad[i].body);
        if (r->status != 400 || !th_str(r->json, "error.field") ||
            strcmp(th_str(r->json, "error.field"), bad[i].field) != 0) {
            th_fail(__FILE__, __LINE__, "%s: %ld %s", bad[i].body, r->status, r->body);
            return;
        }
    }
    r = th_http(&srv, "GET", "/v1/definitions", NULL);
    CHECK_INT(json_array_size(th_get(r->json, "definitions")), 1);
    r = th_http(&srv, "GET", "/v1/definitions/resize", NULL);
    CHECK_INT(r->status, 200);
    CHECK_STR(th_str(r->json, "id"), id);
    r = th_http(&srv, "POST", "/v1/definitions/resize/launch",
                "{\"params\":{\"w\":300},\"name\":\"one\"}");
    CHECK_INT(r->status, 201);
    CHECK_STR(th_str(r->json, "type"), "img.resize");
    CHECK_STR(th_str(r->json, "queue"), "dq");
    CHECK_STR(th_str(r->json, "name"), "one");
    CHECK_INT(th_int(r->json, "params.w"), 300);
    CHECK_STR(th_str(r->json, "params.fmt"), "jpg");
    CHECK_INT(th_int(r->json, "max_retries"), 2);
    CHECK_STR(th_str(r->json, "definition.id"), id);
    CHECK_STR(th_str(r->json, "definition.name"), "resize");
    CHECK_STR(th_str(r->json, "definition.executor"), "resizer");
    r = th_http(&srv, "POST", "/v1/definitions/resize/launch", "{\"params\":[]}");
    CHECK_INT(r->status, 400);
    r = th_http(&srv, "POST", "/v1/definitions/nothing/launch", NULL);
    CHECK_INT(r->status, 404);
    r = th_http(&srv, "PUT", "/v1/definitions/resize",
                "{\"name\":\"resize\",\"type\":\"img.resize2\"}");
    CHECK_INT(r->status, 200);
    CHECK_STR(th_str(r->json, "type"), "img.resize2");
    CHECK_STR(th_str(r->json, "id"), id);
    r = th_http(&srv, "DELETE", "/v1/definitions/resize", NULL);
    CHECK_INT(r->status, 204);
    r = th_http(&srv, "GET", "/v1/definitions/resize", NULL);
    CHECK_INT(r->status, 404);
}

/* A definition's type and texts are checked as a task's, which a launch
 * makes of them: a 100-byte type is a task's, so a definition's too. */
static void test_definition_checked_as_a_task(void) {
    char type[130], body[5200];
    memset(type, 't', 100);
    type[100] = '\0';
    struct th_resp *r =
        th_http(&srv, "POST", "/v1/definitions", "{\"name\":\"long-type\",\"type\":\"%s\"}", type);
    CHECK_INT(r->status, 201);
    r = th_http(&srv, "POST", "/v1/definitions/long-type/launch", NULL);
    CHECK_INT(r->status, 201);
    CHECK_STR(th_str(r->json, "type"), type);
    memset(type, 't', 129);
    type[129] = '\0';
    static const char *const fields[] = {"type", "type", "description", "description"};
    const char *want[] = {
        "'type' is longer than 128 bytes", "'type' must not contain control characters",
        "'description' is longer than 4096 bytes", "'description' must be a string"};
    for (int i = 0; i < 4; i++) {
        if (i == 0)
            snprintf(body, sizeof body, "{\"name\":\"bad-def\",\"type\":\"%s\"}", type);
        else if (i == 1)
            snprintf(body, sizeof body, "{\"name\":\"bad-def\",\"type\":\"a\\u0001b\"}");
        else if (i == 2)
            snprintf(body, sizeof body,
                     "{\"name\":\"bad-def\",\"type\":\"x\",\"description\":\"%5000s\"}", "");
        else
            snprintf(body, sizeof body, "{\"name\":\"bad-def\",\"type\":\"x\",\"description\":12}");
        r = th_http(&srv, "POST", "/v1/definitions", "%s", body);
        CHECK_INT(r->status, 400);
        CHECK_STR(th_str(r->json, "error.field"), fields[i]);
        CHECK_STR(th_str(r->json, "error.message"), want[i]);
    }
    r = th_http(&srv, "GET", "/v1/definitions/bad-def", NULL);
    CHECK_INT(r->status, 404); /* nothing stored */
    r = th_http(&srv, "DELETE", "/v1/definitions/long-type", NULL);
    CHECK_INT(r->status, 204);
}

static void test_schedule_bad_input(void) {
    static const struct {
        const char *body, *field;
    } bad[] = {
        {"{\"name\":\"b\",\"cron\":\"61 * * * *\",\"task\":{\"type\":\"x\"}}", "cron"},
        {"{\"name\":\"b\",\"cron\":\"* * *\",\"task\":{\"type\":\"x\"}}", "cron"},
        {"{\"name\":\"b\",\"cron\":\"0 0 30 2 *\",\"task\":{\"type\":\"x\"}}", "cron"},
        {"{\"name\":\"b\",\"cron\":\"@hourly\",\"timezone\":\"Mars/Olympus\",\"task\":{\"type\":"
         "\"x\"}}",
         "timezone"},
        {"{\"name\":\"b\",\"cron\":\"@hourly\",\"timezone\":\"../etc/passwd\",\"task\":{\"type\":"
         "\"x\"}}",
         "timezone"},
        {"{\"name\":\"b\",\"cron\":\"@hourly\",\"start_at\":\"2027-01-02T00:00:00Z\",\"end_at\":"
         "\"2027-01-01T00:00:00Z\",\"task\":{\"type\":\"x\"}}",
         "end_at"},
        {"{\"name\":\"b\",\"cron\":\"@hourly\",\"start_at\":\"2030-01-01T00:00:00Z\",\"end_at\":"
         "\"1970-01-01T00:00:00Z\",\"task\":{\"type\":\"x\"}}",
         "end_at"},
        {"{\"name\":\"b\",\"interval_seconds\":0,\"task\":{\"type\":\"x\"}}", "interval_seconds"},
        {"{\"name\":\"b\",\"interval_seconds\":60,\"end_at\":\"2020-01-01T00:00:00Z\",\"task\":{"
         "\"type\":\"x\"}}",
         "end_at"},
        {"{\"name\":\"b\",\"cron\":\"@hourly\",\"interval_seconds\":5,\"task\":{\"type\":\"x\"}}",
         "cron"},
        {"{\"name\":\"b\",\"task\":{\"type\":\"x\"}}", "interval_seconds"},
        {"{\"name\":\"b\",\"cron\":\"@hourly\"}", "task"},
        {"{\"name\":\"b\",\"cron\":\"@hourly\",\"definition\":\"nope\"}", "definition"},
        {"{\"name\":\"b\",\"cron\":\"@hourly\",\"task\":{\"queue\":\"q\"}}", "task.type"},
        {"{\"name\":\"b\",\"cron\":\"@hourly\",\"task\":{\"type\":\"x\",\"idempotency_key\":"
         "\"k\"}}",
         "task.idempotency_key"},
        {"{\"name\":\"b\",\"cron\":\"@hourly\",\"task\":{\"type\":\"x\"},\"overlap\":\"maybe\"}",
         "overlap"},
        {"{\"name\":\"b\",\"cron\":\"@hourly\",\"task\":{\"type\":\"x\"},\"catchup_seconds\":-1}",
         "catchup_seconds"},
        {"{\"name\":\"b\",\"cron\":\"@hourly\",\"task\":{\"type\":\"x\"},\"jitter_seconds\":"
         "99999}",
         "jitter_seconds"},
        {"{\"cron\":\"@hourly\",\"task\":{\"type\":\"x\"}}", "name"},
        {"{\"name\":\"b\",\"cron\":\"@hourly\",\"task\":{\"type\":\"x\"},\"when\":1}", "when"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct th_resp *r = th_http(&srv, "POST", "/v1/schedules", "%s", bad[i].body);
        if (r->status != 400 || !th_str(r->json, "error.field") ||
            strcmp(th_str(r->json, "error.field"), bad[i].field) != 0) {
            th_fail(__FILE__, __LINE__, "%s: %ld %s", bad[i].body, r->status, r->body);
            return;
        }
    }
    struct th_resp *r = th_http(&srv, "GET", "/v1/schedules", NULL);
    CHECK_INT(r->status, 200);
    json_t *all = th_get(r->json, "schedules");
    for (size_t i = 0; i < json_array_size(all); i++)
        CHECK(strcmp(json_string_value(json_object_get(json_array_get(all, i), "name")), "b"));
    /* A replace is checked as a create: refused, the schedule as it was. */
    r = th_http(&srv, "POST", "/v1/schedules",
                "{\"name\":\"g\",\"cron\":\"@hourly\",\"task\":{\"type\":\"x\"}}");
    CHECK_INT(r->status, 201);
    r = th_http(&srv, "PUT", "/v1/schedules/g",
                "{\"name\":\"g\",\"cron\":\"@daily\",\"task\":{\"type\":\"y\","
                "\"idempotency_key\":\"k\"}}");
    CHECK_INT(r->status, 400);
    CHECK_STR(th_str(r->json, "error.field"), "task.idempotency_key");
    CHECK(strstr(th_str(r->json, "error.message"), "every slot"));
    r = th_http(&srv, "GET", "/v1/schedules/g", NULL);
    CHECK_STR(th_str(r->json, "cron"), "@hourly");
    CHECK_STR(th_str(r->json, "task.type"), "x");
    CHECK(!th_get(r->json, "task.idempotency_key"));
    th_http(&srv, "DELETE", "/v1/schedules/g", NULL);
}

static long count_docs(const char *collection) {
    char path[64];
    snprintf(path, sizeof path, "/v1/%s", collection);
    struct th_resp *r = th_http(&srv, "GET", path, NULL);
    return r->status == 200 ? (long)json_array_size(th_get(r->json, collection)) : -1;
}

/* A name is one path segment the server routes: '/', "%00", more than 127
 * bytes and 32 lowercase hex (an id's shape, which a path reads as an id)
 * are refused; any other name is reached by it, percent-encoded. */
static void test_names_are_path_segments(void) {
    char n127[128], n128[129];
    memset(n127, 'm', 127);
    n127[127] = '\0';
    memset(n128, 'n', 128);
    n128[128] = '\0';
    const char *bad[] = {"a/b", "/", "x%00y", n128};
    long scheds = count_docs("schedules"), defs = count_docs("definitions");
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct th_resp *r = th_http(&srv, "POST", "/v1/schedules",
                                    "{\"name\":\"%s\",\"cron\":\"@hourly\",\"paused\":true,"
                                    "\"task\":{\"type\":\"x\"}}",
                                    bad[i]);
        if (r->status != 400 || !th_str(r->json, "error.field") ||
            strcmp(th_str(r->json, "error.field"), "name") != 0) {
            th_fail(__FILE__, __LINE__, "schedule '%s': %ld %s", bad[i], r->status, r->body);
            return;
        }
        r = th_http(&srv, "POST", "/v1/definitions", "{\"name\":\"%s\",\"type\":\"x\"}", bad[i]);
        if (r->status != 400 || !th_str(r->json, "error.field") ||
            strcmp(th_str(r->json, "error.field"), "name") != 0) {
            th_fail(__FILE__, __LINE__, "definition '%s': %ld %s", bad[i], r->status, r->body);
            return;
        }
    }
    CHECK_INT(count_docs("schedules"), scheds);
    CHECK_INT(count_docs("definitions"), defs);
    /* A name of an id's shape: another's id (it was a false 409, and by
     * path the other one answers), or no one's, is refused too. */
    struct th_resp *r0 = th_http(&srv, "POST", "/v1/schedules",
                                 "{\"name\":\"idt\",\"cron\":\"@hourly\",\"paused\":true,"
                                 "\"task\":{\"type\":\"x\"}}");
    CHECK_INT(r0->status, 201);
    char other[33] = "";
    if (th_str(r0->json, "id")) snprintf(other, sizeof other, "%s", th_str(r0->json, "id"));
    r0 = th_http(&srv, "POST", "/v1/definitions", "{\"name\":\"idd\",\"type\":\"x\"}");
    CHECK_INT(r0->status, 201);
    char other_def[33] = "";
    if (th_str(r0->json, "id")) snprintf(other_def, sizeof other_def, "%s", th_str(r0->json, "id"));
    scheds = count_docs("schedules");
    defs = count_docs("definitions");
    const char *idlike[] = {other, other_def, "0123456789abcdef0123456789abcdef"};
    for (size_t i = 0; i < 3; i++) {
        r0 = th_http(&srv, "POST", "/v1/schedules",
                     "{\"name\":\"%s\",\"cron\":\"@hourly\",\"paused\":true,"
                     "\"task\":{\"type\":\"x\"}}",
                     idlike[i]);
        CHECK_INT(r0->status, 400);
        CHECK_STR(th_str(r0->json, "error.field"), "name");
        r0 =
            th_http(&srv, "POST", "/v1/definitions", "{\"name\":\"%s\",\"type\":\"x\"}", idlike[i]);
        CHECK_INT(r0->status, 400);
        CHECK_STR(th_str(r0->json, "error.field"), "name");
        r0 = th_http(&srv, "PUT", "/v1/schedules/idt",
                     "{\"name\":\"%s\",\"cron\":\"@hourly\",\"task\":{\"type\":\"x\"}}", idlike[i]);
        CHECK_INT(r0->status, 400);
        CHECK_STR(th_str(r0->json, "error.field"), "name");
    }
    CHECK_INT(count_docs("schedules"), scheds);
    CHECK_INT(count_docs("definitions"), defs);
    r0 = th_http(&srv, "GET", "/v1/schedules/idt", NULL);
    CHECK_STR(th_str(r0->json, "id"), other);
    /* Upper-case hex is not an id's shape: a name like any other. */
    r0 = th_http(&srv, "POST", "/v1/definitions",
                 "{\"name\":\"0123456789ABCDEF0123456789ABCDEF\",\"type\":\"x\"}");
    CHECK_INT(r0->status, 201);
    th_http(&srv, "DELETE", "/v1/definitions/0123456789ABCDEF0123456789ABCDEF", NULL);
    th_http(&srv, "DELETE", "/v1/schedules/idt", NULL);
    th_http(&srv, "DELETE", "/v1/definitions/idd", NULL);
    /* A rename to such a name is refused too, the schedule kept. */
    struct th_resp *r = th_http(&srv, "POST", "/v1/schedules",
                                "{\"name\":\"q?r #s\",\"cron\":\"@hourly\",\"paused\":true,"
                                "\"task\":{\"type\":\"x\"}}");
    CHECK_INT(r->status, 201);
    r = th_http(&srv, "PUT", "/v1/schedules/q%3Fr%20%23s",
                "{\"name\":\"a/b\",\"cron\":\"@hourly\",\"task\":{\"type\":\"x\"}}");
    CHECK_INT(r->status, 400);
    CHECK_STR(th_str(r->json, "error.field"), "name");
    r = th_http(&srv, "GET", "/v1/schedules/q%3Fr%20%23s", NULL);
    CHECK_INT(r->status, 200);
    CHECK_STR(th_str(r->json, "name"), "q?r #s");
    th_http(&srv, "DELETE", "/v1/schedules/q%3Fr%20%23s", NULL);
    r = th_http(&srv, "POST", "/v1/definitions", "{\"name\":\"%s\",\"type\":\"x\"}", n127);
    CHECK_INT(r->status, 201);
    char path[200];
    snprintf(path, sizeof path, "/v1/definitions/%s", n127);
    r = th_http(&srv, "GET", path, NULL);
    CHECK_INT(r->status, 200);
    th_http(&srv, "DELETE", path, NULL);
}

/* Whether the schedule has fired at least `fires` slots, `created` of them with a task. */
static bool fires_at_least(struct th_server *s, const char *sched, long fires, long created) {
    long n, c;
    bool dup;
    fires_of(s, sched, &n, &c, &dup);
    return n >= fires && c >= created;
}

/*
 * The schedule's fires (read on fs) and the tasks of `query` (read on ts),
 * read together: true when the fires are the same before and after the
 * tasks are counted, so that no fire landed in between.
 */
static bool fires_and_tasks(struct th_server *fs, const char *sched, struct th_server *ts,
                            const char *query, long *n, long *created, bool *dup, long *tasks) {
    long again, c;
    bool d;
    fires_of(fs, sched, n, created, dup);
    *tasks = count_tasks(ts, query);
    fires_of(fs, sched, &again, &c, &d);
    return again == *n && c == *created;
}

/* 'cu' after its long stop: a catch-up fire, 4 runs or more, 2 missed slots or more. */
static bool caught_up_after_stop(struct th_server *s, const char *sched) {
    long n, created;
    bool dup;
    fires_of(s, sched, &n, &created, &dup);
    char path[200];
    snprintf(path, sizeof path, "/v1/schedules/%s", sched);
    if (created < 4 || th_int(th_http(s, "GET", path, NULL)->json, "missed") < 2) return false;
    snprintf(path, sizeof path, "/v1/schedules/%s/fires?limit=1000", sched);
    json_t *f = th_get(th_http(s, "GET", path, NULL)->json, "fires");
    for (size_t i = 0; i < json_array_size(f); i++) {
        const char *kind = json_string_value(json_object_get(json_array_get(f, i), "kind"));
        if (kind && strcmp(kind, "catchup") == 0) return true;
    }
    return false;
}

/* An every-second schedule fires once per slot, each run a task launched by it. */
static void test_interval_fires(void) {
    long long t0 = th_now_ms();
    struct th_resp *r = th_http(&srv, "POST", "/v1/schedules",
                                "{\"name\":\"tick\",\"interval_seconds\":1,\"overlap\":"
                                "\"allow_all\",\"task\":{\"type\":\"tick\",\"queue\":\"tq\"}}");
    CHECK_INT(r->status, 201);
    char id[33];
    snprintf(id, sizeof id, "%s", th_str(r->json, "id"));
    CHECK(th_str(r->json, "next_fire_at"));
    th_sleep_ms(3500); /* by design: the window whose fires are counted */
    /* Two fires at least (a deadline: a loaded machine may run the
     * scheduler late), then at most one a slot begun in the window, and
     * one more: the window is measured, from before the create to after
     * the count, not taken to be the 3.5 s slept (a slow create or delete
     * made it longer, with a fire more than a fixed bound allowed). */
    WAIT_UNTIL(count_tasks(&srv, "/v1/tasks?queue=tq&limit=1000") >= 2, 30000,
               "two fires of 'tick'");
    r = th_http(&srv, "DELETE", "/v1/schedules/tick", NULL);
    CHECK_INT(r->status, 204);
    long tasks = count_tasks(&srv, "/v1/tasks?queue=tq&limit=1000");
    long long window_ms = th_now_ms() - t0;
    if (tasks < 2 || tasks > window_ms / 1000 + 2)
        printf("    %ld fires in a window of %lld ms\n", tasks, window_ms);
    CHECK(tasks >= 2 && tasks <= window_ms / 1000 + 2);
    r = th_http(&srv, "GET", "/v1/tasks?queue=tq&limit=1", NULL);
    CHECK_STR(th_str(r->json, "tasks.0.launcher"), "schedule:tick");
    r = th_http(&srv, "GET", "/v1/schedules/tick", NULL);
    CHECK_INT(r->status, 404);
}

/* The schedule's count of missed slots, or -1 when it cannot be read. */
static long long missed_of(struct th_server *s, const char *sched) {
    char path[200];
    snprintf(path, sizeof path, "/v1/schedules/%s", sched);
    struct th_resp *r = th_http(s, "GET", path, NULL);
    return r->status == 200 ? th_int(r->json, "missed") : -1;
}

/* A catch-up window shorter than the firing delay (the writer's wake-up,
 * the jitter) does not count on-time slots as missed. */
static void test_short_catchup_fires_on_time(void) {
    static const char *const bodies[] = {
        "{\"name\":\"z0\",\"interval_seconds\":1,\"catchup_seconds\":0,\"overlap\":"
        "\"allow_all\",\"task\":{\"type\":\"z\",\"queue\":\"z0q\"}}",
        "{\"name\":\"zj\",\"interval_seconds\":1,\"catchup_seconds\":0,\"jitter_seconds\":1,"
        "\"overlap\":\"allow_all\",\"task\":{\"type\":\"z\",\"queue\":\"zjq\"}}",
    };
    for (int i = 0; i < 2; i++) {
        struct th_resp *r = th_http(&srv, "POST", "/v1/schedules", "%s", bodies[i]);
        CHECK_INT(r->status, 201);
    }
    /* Until each has run 3 slots, or one has missed a slot. */
    WAIT_UNTIL((fires_at_least(&srv, "z0", 3, 3) && fires_at_least(&srv, "zj", 3, 3)) ||
                   missed_of(&srv, "z0") != 0 || missed_of(&srv, "zj") != 0,
               15000, "3 runs of 'z0' and 'zj', or a missed slot");
    th_http(&srv, "POST", "/v1/schedules/z0/pause", NULL);
    th_http(&srv, "POST", "/v1/schedules/zj/pause", NULL);
    long long missed0 = missed_of(&srv, "z0"), missedj = missed_of(&srv, "zj");
    th_http(&srv, "DELETE", "/v1/schedules/z0", NULL);
    th_http(&srv, "DELETE", "/v1/schedules/zj", NULL);
    CHECK_INT(missed0, 0);
    CHECK_INT(missedj, 0);
}

static void test_overlap_and_pause(void) {
    /* skip: the first run is never claimed, so later slots are skipped. */
    struct th_resp *r = th_http(&srv, "POST", "/v1/schedules",
                                "{\"name\":\"sk\",\"interval_seconds\":1,\"task\":{\"type\":"
                                "\"s\",\"queue\":\"skq\"}}");
    CHECK_INT(r->status, 201);
    char sk[33];
    snprintf(sk, sizeof sk, "%s", th_str(r->json, "id"));
    /* cancel_running: each slot cancels the one before. */
    r = th_http(&srv, "POST", "/v1/schedules",
                "{\"name\":\"cr\",\"interval_seconds\":1,\"overlap\":\"cancel_running\","
                "\"task\":{\"type\":\"c\",\"queue\":\"crq\"}}");
    CHECK_INT(r->status, 201);
    char cr[33];
    snprintf(cr, sizeof cr, "%s", th_str(r->json, "id"));
    /* buffer_one: one run waits behind the unfinished one; later slots are skipped. */
    r = th_http(&srv, "POST", "/v1/schedules",
                "{\"name\":\"bo\",\"interval_seconds\":1,\"overlap\":\"buffer_one\","
                "\"task\":{\"type\":\"b\",\"queue\":\"boq\"}}");
    CHECK_INT(r->status, 201);
    char bo[33];
    snprintf(bo, sizeof bo, "%s", th_str(r->json, "id"));
    /* Enough slots for each policy to show: a skip, a buffered run, a cancel. */
    WAIT_UNTIL(fires_at_least(&srv, sk, 2, 0) && fires_at_least(&srv, bo, 3, 0) &&
                   fires_at_least(&srv, cr, 0, 2),
               20000, "2 fires of 'sk', 3 of 'bo' and 2 runs of 'cr'");
    th_http(&srv, "POST", "/v1/schedules/bo/pause", NULL);
    r = th_http(&srv, "POST", "/v1/schedules/sk/pause", "{\"note\":\"maintenance\"}");
    CHECK_INT(r->status, 200);
    CHECK(json_is_true(th_get(r->json, "paused")));
    CHECK_STR(th_str(r->json, "note"), "maintenance");
    CHECK(json_is_null(th_get(r->json, "next_fire_at")));
    th_http(&srv, "POST", "/v1/schedules/cr/pause", NULL);
    long n, created;
    bool dup;
    fires_of(&srv, sk, &n, &created, &dup);
    CHECK(!dup);
    CHECK_INT(created, 1);
    CHECK(n >= 2);
    CHECK_INT(count_tasks(&srv, "/v1/tasks?queue=skq"), 1);
    fires_of(&srv, bo, &n, &created, &dup);
    CHECK(!dup);
    CHECK_INT(created, 2);
    CHECK(n >= 3);
    CHECK_INT(count_tasks(&srv, "/v1/tasks?queue=boq"), 2);
    th_http(&srv, "DELETE", "/v1/schedules/bo", NULL);
    r = th_http(&srv, "GET", "/v1/schedules/sk", NULL);
    CHECK_STR(th_str(r->json, "last_outcome"), "skipped");
    fires_of(&srv, cr, &n, &created, &dup);
    CHECK(!dup);
    CHECK(created >= 2);
    long cancelled = count_tasks(&srv, "/v1/tasks?queue=crq&phase=cancelled");
    CHECK_INT(cancelled, created - 1);
    /* Paused: nothing more fires. */
    long before = n;
    th_sleep_ms(1500); /* by design: a window of a slot and more in which nothing may fire */
    fires_of(&srv, cr, &n, &created, &dup);
    CHECK_INT(n, before);
    /* Resume fires again; a trigger launches one now even with skip. */
    r = th_http(&srv, "POST", "/v1/schedules/cr/resume", "{\"note\":\"back\"}");
    CHECK_INT(r->status, 200);
    CHECK(th_str(r->json, "next_fire_at"));
    WAIT_UNTIL(fires_at_least(&srv, cr, before + 1, 0), 10000, "'cr' to fire again once resumed");
    fires_of(&srv, cr, &n, &created, &dup);
    CHECK(n > before);
    r = th_http(&srv, "POST", "/v1/schedules/sk/trigger", NULL);
    CHECK_INT(r->status, 201);
    CHECK_STR(th_str(r->json, "task.launcher"), "schedule:sk");
    CHECK_INT(count_tasks(&srv, "/v1/tasks?queue=skq"), 2);
    r = th_http(&srv, "POST", "/v1/schedules/sk/trigger", "{\"x\":1}");
    CHECK_INT(r->status, 400);
    r = th_http(&srv, "POST", "/v1/schedules/sk/pause", "{\"note\":5}");
    CHECK_INT(r->status, 400);
    CHECK_STR(th_str(r->json, "error.field"), "note");
    th_http(&srv, "DELETE", "/v1/schedules/sk", NULL);
    th_http(&srv, "DELETE", "/v1/schedules/cr", NULL);
}

/* The phase of task id, or "" when it cannot be read. */
static const char *task_phase(const char *id, char out[16]) {
    char path[100];
    snprintf(path, sizeof path, "/v1/tasks/%s", id);
    struct th_resp *r = th_http(&srv, "GET", path, NULL);
    snprintf(out, 16, "%s",
             r->status == 200 && th_str(r->json, "phase") ? th_str(r->json, "phase") : "");
    return out;
}

/*
 * The overlap policy sees every unfinished run, not only the last 8 the
 * schedule's state remembers: 10 runs launched by triggers (which launch
 * whatever the policy says), the 8 newest finished, and the 2 oldest still
 * pending hold back the next slot under skip and buffer_one; under
 * cancel_running the slot cancels all 10. Each remembered only the last
 * 8: skip and buffer_one launched, cancel_running left the 2 oldest.
 */
static void test_overlap_sees_every_run(void) {
    static const char *const policies[] = {"skip", "buffer_one", "cancel_running"};
    for (int p = 0; p < 3; p++) {
        char name[32], queue[32], path[160];
        snprintf(name, sizeof name, "ov-%s", policies[p]);
        snprintf(queue, sizeof queue, "ovq-%d", p);
        struct th_resp *r =
            th_http(&srv, "POST", "/v1/schedules",
                    "{\"name\":\"%s\",\"interval_seconds\":1,\"overlap\":\"%s\",\"paused\":true,"
                    "\"task\":{\"type\":\"ov\",\"queue\":\"%s\"}}",
                    name, policies[p], queue);
        CHECK_INT(r->status, 201);
        char sched[33] = "";
        if (th_str(r->json, "id")) snprintf(sched, sizeof sched, "%s", th_str(r->json, "id"));
        char runs[10][33];
        snprintf(path, sizeof path, "/v1/schedules/%s/trigger", name);
        for (int i = 0; i < 10; i++) {
            r = th_http(&srv, "POST", path, NULL);
            CHECK_INT(r->status, 201);
            snprintf(runs[i], sizeof runs[i], "%s",
                     th_str(r->json, "task.id") ? th_str(r->json, "task.id") : "");
        }
        bool cancel = strcmp(policies[p], "cancel_running") == 0;
        /* skip, buffer_one: the 8 newest finish, the 2 oldest stay pending. */
        for (int i = 2; i < 10 && !cancel; i++) {
            snprintf(path, sizeof path, "/v1/tasks/%s/cancel", runs[i]);
            CHECK_INT(th_http(&srv, "POST", path, NULL)->status, 200);
        }
        snprintf(path, sizeof path, "/v1/schedules/%s/resume", name);
        CHECK_INT(th_http(&srv, "POST", path, NULL)->status, 200);
        WAIT_UNTIL(fires_at_least(&srv, sched, 11, 0), 10000, "a slot of '%s' to fire", name);
        snprintf(path, sizeof path, "/v1/schedules/%s/pause", name);
        CHECK_INT(th_http(&srv, "POST", path, NULL)->status, 200);
        snprintf(path, sizeof path, "/v1/tasks?queue=%s&phase=pending", queue);
        long pending = count_tasks(&srv, path);
        snprintf(path, sizeof path, "/v1/schedules/%s/fires?limit=1000", sched);
        r = th_http(&srv, "GET", path, NULL);
        json_t *fires = th_get(r->json, "fires");
        long slots = 0, skipped = 0, launched = 0;
        for (size_t i = 0; i < json_array_size(fires); i++) {
            json_t *f = json_array_get(fires, i);
            if (strcmp(json_string_value(json_object_get(f, "kind")), "trigger") == 0) continue;
            slots++;
            const char *outcome = json_string_value(json_object_get(f, "outcome"));
            if (strcmp(outcome, "skipped") == 0) skipped++;
            if (json_string_value(json_object_get(f, "task_id"))) launched++;
        }
        CHECK(slots >= 1);
        char phase[16];
        if (!cancel) {
            /* Every slot skipped: the 2 oldest runs are not finished. */
            CHECK_INT(skipped, slots);
            CHECK_INT(launched, 0);
            CHECK_INT(pending, 2);
            CHECK_STR(task_phase(runs[0], phase), "pending");
            CHECK_STR(task_phase(runs[1], phase), "pending");
        } else {
            /* The first slot cancelled all 10; each later one the run before. */
            CHECK_INT(launched, slots);
            for (int i = 0; i < 10; i++)
                CHECK_STR(task_phase(runs[i], phase), "cancelled");
            CHECK_INT(pending, 1);
        }
        snprintf(path, sizeof path, "/v1/schedules/%s", name);
        th_http(&srv, "DELETE", path, NULL);
    }
}

/* A replace without 'paused' keeps the schedule paused, note and all; with it, sets it. */
static void test_replace_keeps_pause(void) {
    struct th_resp *r = th_http(&srv, "POST", "/v1/schedules",
                                "{\"name\":\"pz\",\"cron\":\"@hourly\",\"task\":{\"type\":"
                                "\"x\"},\"paused\":true,\"note\":\"frozen\"}");
    CHECK_INT(r->status, 201);
    r = th_http(&srv, "PUT", "/v1/schedules/pz",
                "{\"name\":\"pz\",\"cron\":\"@daily\",\"task\":{\"type\":\"x\"}}");
    CHECK_INT(r->status, 200);
    CHECK_STR(th_str(r->json, "cron"), "@daily");
    CHECK(json_is_true(th_get(r->json, "paused")));
    CHECK_STR(th_str(r->json, "note"), "frozen");
    CHECK(json_is_null(th_get(r->json, "next_fire_at")));
    r = th_http(&srv, "GET", "/v1/schedules/pz", NULL);
    CHECK(json_is_true(th_get(r->json, "paused")));
    r = th_http(&srv, "PUT", "/v1/schedules/pz",
                "{\"name\":\"pz\",\"cron\":\"@daily\",\"task\":{\"type\":\"x\"},"
                "\"paused\":false}");
    CHECK_INT(r->status, 200);
    CHECK(json_is_false(th_get(r->json, "paused")));
    CHECK(th_str(r->json, "next_fire_at"));
    r = th_http(&srv, "PUT", "/v1/schedules/pz",
                "{\"name\":\"pz\",\"cron\":\"@daily\",\"task\":{\"type\":\"x\"}}");
    CHECK(json_is_false(th_get(r->json, "paused"))); /* running stays running */
    CHECK(th_str(r->json, "next_fire_at"));
    r = th_http(&srv, "PUT", "/v1/schedules/pz",
                "{\"name\":\"pz\",\"cron\":\"@daily\",\"task\":{\"type\":\"x\"},"
                "\"paused\":true,\"note\":\"again\"}");
    CHECK(json_is_true(th_get(r->json, "paused")));
    CHECK_STR(th_str(r->json, "note"), "again");
    CHECK(json_is_null(th_get(r->json, "next_fire_at")));
    th_http(&srv, "DELETE", "/v1/schedules/pz", NULL);
}

/* An admin's replace checks 'definition' in the schedule's own namespace,
 * the one the store keeps, not the body's (default when absent). */
static void test_replace_checks_own_namespace(void) {
    struct th_server s;
    CHECK(th_server_start(&s, NULL) == 0);
    char admin[128], admin_id[32];
    bool ok = sec_token(&s, "admin", "default", "", admin, admin_id) == 0;
    if (ok) /* out of open mode: the token is what lets the requests in */
        TRY_WAIT_UNTIL(ok, sec_http(&s, NULL, "GET", "/v1/schedules", NULL)->status == 401, 20000,
                       "the server to see its first token");
    long st[6] = {0};
    char field[65] = "", ns[65] = "", def[65] = "", cron[65] = "";
    if (ok) {
        st[0] = sec_http(&s, admin, "POST", "/v1/definitions",
                         "{\"name\":\"tdef\",\"type\":\"t\",\"namespace\":\"team\"}")
                    ->status;
        st[1] = sec_http(&s, admin, "POST", "/v1/definitions", "{\"name\":\"ddef\",\"type\":\"d\"}")
                    ->status;
        st[2] = sec_http(&s, admin, "POST", "/v1/schedules",
                         "{\"name\":\"ts\",\"cron\":\"@hourly\",\"definition\":\"tdef\","
                         "\"namespace\":\"team\",\"paused\":true}")
                    ->status;
        /* team's definition, the body naming no namespace: accepted. */
        struct th_resp *r =
            sec_http(&s, admin, "PUT", "/v1/schedules/ts",
                     "{\"name\":\"ts\",\"cron\":\"@daily\",\"definition\":\"tdef\"}");
        st[3] = r->status;
        /* A definition only default has: refused, nothing changed. */
        r = sec_http(&s, admin, "PUT", "/v1/schedules/ts",
                     "{\"name\":\"ts\",\"cron\":\"@weekly\",\"definition\":\"ddef\"}");
        st[4] = r->status;
        snprintf(field, sizeof field, "%s",
                 th_str(r->json, "error.field") ? th_str(r->json, "error.field") : "");
        r = sec_http(&s, admin, "GET", "/v1/schedules/ts", NULL);
        st[5] = r->status;
        snprintf(ns, sizeof ns, "%s",
                 th_str(r->json, "namespace") ? th_str(r->json, "namespace") : "");
        snprintf(def, sizeof def, "%s",
                 th_str(r->json, "definition") ? th_str(r->json, "definition") : "");
        snprintf(cron, sizeof cron, "%s", th_str(r->json, "cron") ? th_str(r->json, "cron") : "");
    }
    th_server_free(&s);
    CHECK(ok);
    CHECK_INT(st[0], 201);
    CHECK_INT(st[1], 201);
    CHECK_INT(st[2], 201);
    CHECK_INT(st[3], 200);
    CHECK_INT(st[4], 400);
    CHECK_STR(field, "definition");
    CHECK_INT(st[5], 200);
    CHECK_STR(ns, "team");
    CHECK_STR(def, "tdef");
    CHECK_STR(cron, "@daily");
}

static void test_backfill_and_definition(void) {
    struct th_resp *r = th_http(&srv, "POST", "/v1/definitions",
                                "{\"name\":\"report\",\"type\":\"rep\",\"queue\":\"bfq\","
                                "\"params\":{\"kind\":\"daily\"}}");
    CHECK_INT(r->status, 201);
    r = th_http(&srv, "POST", "/v1/schedules",
                "{\"name\":\"hourly\",\"cron\":\"0 * * * *\",\"definition\":\"report\","
                "\"params\":{\"kind\":\"hourly\"}}");
    CHECK_INT(r->status, 201);
    /* Three whole hours, ending at the last full hour. */
    int64_t now = time(NULL), last = now - now % 3600;
    char from[40], to[40];
    time_t f = (time_t)(last - 3 * 3600), t = (time_t)last;
    strftime(from, sizeof from, "%Y-%m-%dT%H:%M:%SZ", gmtime(&f));
    strftime(to, sizeof to, "%Y-%m-%dT%H:%M:%SZ", gmtime(&t));
    r = th_http(&srv, "POST", "/v1/schedules/hourly/backfill", "{\"from\":\"%s\",\"to\":\"%s\"}",
                from, to);
    CHECK_INT(r->status, 200);
    CHECK_INT(th_int(r->json, "fired"), 3);
    CHECK_INT(th_int(r->json, "skipped"), 0);
    r = th_http(&srv, "POST", "/v1/schedules/hourly/backfill", "{\"from\":\"%s\",\"to\":\"%s\"}",
                from, to);
    CHECK_INT(th_int(r->json, "fired"), 0);
    CHECK_INT(th_int(r->json, "skipped"), 3);
    CHECK_INT(count_tasks(&srv, "/v1/tasks?queue=bfq"), 3);
    r = th_http(&srv, "GET", "/v1/tasks?queue=bfq&limit=1", NULL);
    CHECK_STR(th_str(r->json, "tasks.0.params.kind"), "hourly");
    CHECK_STR(th_str(r->json, "tasks.0.definition.name"), "report");
    r = th_http(&srv, "POST", "/v1/schedules/hourly/backfill", "{\"from\":\"%s\",\"to\":\"%s\"}",
                to, from);
    CHECK_INT(r->status, 400);
    CHECK_STR(th_str(r->json, "error.field"), "to");
    r = th_http(&srv, "POST", "/v1/schedules/hourly/backfill", "{\"from\":\"yesterday\"}");
    CHECK_INT(r->status, 400);
    CHECK_STR(th_str(r->json, "error.field"), "from");
    r = th_http(&srv, "POST", "/v1/schedules/hourly/backfill",
                "{\"from\":\"2020-01-01T00:00:00Z\",\"to\":\"2021-01-01T00:00:00Z\"}");
    CHECK_INT(r->status, 400); /* more slots than one request takes */
    CHECK_INT(count_tasks(&srv, "/v1/tasks?queue=bfq"), 3);
    th_http(&srv, "DELETE", "/v1/schedules/hourly", NULL);
}

/*
 * A trigger that launches nothing (its definition deleted) is a 400 naming
 * 'definition', and is recorded as a slot's error is: the fire row and the
 * schedule's state (fires, last_outcome, last_error) agree.
 */
static void test_trigger_error_recorded(void) {
    struct th_resp *r =
        th_http(&srv, "POST", "/v1/definitions", "{\"name\":\"gone\",\"type\":\"g\"}");
    CHECK_INT(r->status, 201);
    r = th_http(&srv, "POST", "/v1/schedules",
                "{\"name\":\"orphan\",\"cron\":\"@yearly\",\"definition\":\"gone\","
                "\"paused\":true}");
    CHECK_INT(r->status, 201);
    th_http(&srv, "DELETE", "/v1/definitions/gone", NULL);
    r = th_http(&srv, "POST", "/v1/schedules/orphan/trigger", NULL);
    CHECK_INT(r->status, 400);
    CHECK_STR(th_str(r->json, "error.field"), "definition");
    CHECK(th_str(r->json, "error.message") &&
          strstr(th_str(r->json, "error.message"), "definition 'gone' not found"));
    r = th_http(&srv, "GET", "/v1/schedules/orphan/fires", NULL);
    CHECK_INT(json_array_size(th_get(r->json, "fires")), 1);
    CHECK_STR(th_str(r->json, "fires.0.kind"), "trigger");
    CHECK_STR(th_str(r->json, "fires.0.outcome"), "error");
    r = th_http(&srv, "GET", "/v1/schedules/orphan", NULL);
    CHECK_INT(th_int(r->json, "fires"), 1);
    CHECK_STR(th_str(r->json, "last_outcome"), "error");
    CHECK(th_str(r->json, "last_error") &&
          strstr(th_str(r->json, "last_error"), "definition 'gone' not found"));
    CHECK(th_str(r->json, "last_fire_at"));
    CHECK(json_is_null(th_get(r->json, "last_task_id")));
    th_http(&srv, "DELETE", "/v1/schedules/orphan", NULL);
}

/*
 * 'running' lists the runs not finished as they are when read: a run
 * cancelled since it was launched is gone from GET, the list and a pause's
 * reply, and reading writes nothing (updated_at stays).
 */
static void test_running_is_current(void) {
    struct th_resp *r = th_http(&srv, "POST", "/v1/schedules",
                                "{\"name\":\"rn\",\"cron\":\"@yearly\",\"paused\":true,"
                                "\"task\":{\"type\":\"r\",\"queue\":\"rnq\"}}");
    CHECK_INT(r->status, 201);
    r = th_http(&srv, "POST", "/v1/schedules/rn/trigger", NULL);
    CHECK_INT(r->status, 201);
    char task[33] = "";
    if (th_str(r->json, "task.id")) snprintf(task, sizeof task, "%s", th_str(r->json, "task.id"));
    CHECK_INT(json_array_size(th_get(r->json, "schedule.running")), 1);
    CHECK_STR(th_str(r->json, "schedule.running.0"), task);
    char path[100];
    snprintf(path, sizeof path, "/v1/tasks/%s/cancel", task);
    r = th_http(&srv, "POST", path, NULL);
    CHECK_INT(r->status, 200);
    r = th_http(&srv, "GET", "/v1/schedules/rn", NULL);
    CHECK_INT(r->status, 200);
    CHECK(json_is_array(th_get(r->json, "running")));
    CHECK_INT(json_array_size(th_get(r->json, "running")), 0);
    char updated[64] = "";
    if (th_str(r->json, "updated_at"))
        snprintf(updated, sizeof updated, "%s", th_str(r->json, "updated_at"));
    r = th_http(&srv, "GET", "/v1/schedules", NULL);
    json_t *all = th_get(r->json, "schedules");
    for (size_t i = 0; i < json_array_size(all); i++) {
        json_t *one = json_array_get(all, i);
        if (strcmp(json_string_value(json_object_get(one, "name")), "rn") != 0) continue;
        CHECK_INT(json_array_size(json_object_get(one, "running")), 0);
        CHECK_STR(json_string_value(json_object_get(one, "updated_at")), updated);
    }
    r = th_http(&srv, "GET", "/v1/schedules/rn", NULL);
    CHECK_STR(th_str(r->json, "updated_at"), updated);
    r = th_http(&srv, "POST", "/v1/schedules/rn/pause", "{\"note\":\"n\"}");
    CHECK_INT(r->status, 200);
    CHECK_INT(json_array_size(th_get(r->json, "running")), 0);
    th_http(&srv, "DELETE", "/v1/schedules/rn", NULL);
}

/* Jitter delays a fire by up to jitter_seconds after its slot; the slot stays the key. */
static void test_jitter(void) {
    int64_t before = (int64_t)time(NULL) * 1000;
    struct th_resp *r = th_http(&srv, "POST", "/v1/schedules",
                                "{\"name\":\"jit\",\"interval_seconds\":60,\"jitter_seconds\":30,"
                                "\"start_at\":\"2026-01-01T00:00:00Z\",\"task\":{\"type\":\"j\"}}");
    int64_t after = (int64_t)time(NULL) * 1000 + 999;
    CHECK_INT(r->status, 201);
    int64_t next = 0;
    CHECK(th_str(r->json, "next_fire_at") &&
          time_parse_rfc3339(th_str(r->json, "next_fire_at"), &next) == 0);
    th_http(&srv, "DELETE", "/v1/schedules/jit", NULL);
    /* start_at is on a whole minute: the next slot is the minute after creation. */
    int64_t lo = (before / 60000 + 1) * 60000, hi = (after / 60000 + 1) * 60000 + 30000;
    if (next < lo || next > hi)
        th_fail(__FILE__, __LINE__, "next_fire_at %lld not within [%lld, %lld]", (long long)next,
                (long long)lo, (long long)hi);
}

/* Parses a field of RFC 3339 time, or 0. */
static int64_t time_of(json_t *root, const char *path) {
    int64_t ms = 0;
    const char *t = th_str(root, path);
    return t && time_parse_rfc3339(t, &ms) == 0 ? ms : 0;
}

/*
 * An interval counts from its start_at, from its creation without one
 * ("start_at": null is none), and a replace without start_at keeps that
 * anchor: its slots do not move.
 */
static void test_interval_anchor(void) {
    struct th_resp *r = th_http(&srv, "POST", "/v1/schedules",
                                "{\"name\":\"an\",\"interval_seconds\":3600,\"start_at\":null,"
                                "\"task\":{\"type\":\"a\"}}");
    CHECK_INT(r->status, 201);
    int64_t created = time_of(r->json, "created_at");
    CHECK(created != 0);
    CHECK_INT(time_of(r->json, "start_at"), created);
    CHECK_INT(time_of(r->json, "next_fire_at"), created + 3600000);
    th_sleep_ms(20); /* by design: each replace comes a few ms after the creation */
    static const char *const same[] = {
        "{\"name\":\"an\",\"interval_seconds\":3600,\"description\":\"d\",\"task\":{\"type\":"
        "\"a\"}}",
        "{\"name\":\"an\",\"interval_seconds\":3600,\"start_at\":null,\"task\":{\"type\":\"a\"}}",
    };
    for (int i = 0; i < 2; i++) {
        r = th_http(&srv, "PUT", "/v1/schedules/an", "%s", same[i]);
        CHECK_INT(r->status, 200);
        CHECK_INT(time_of(r->json, "start_at"), created);
        CHECK_INT(time_of(r->json, "next_fire_at"), created + 3600000);
    }
    /* A start_at given is the anchor, and a replace without one keeps it. */
    r = th_http(&srv, "PUT", "/v1/schedules/an",
                "{\"name\":\"an\",\"interval_seconds\":3600,\"start_at\":"
                "\"2026-01-01T00:10:00Z\",\"task\":{\"type\":\"a\"}}");
    CHECK_INT(r->status, 200);
    int64_t given = 0;
    time_parse_rfc3339("2026-01-01T00:10:00Z", &given);
    int64_t next = time_of(r->json, "next_fire_at");
    CHECK_INT((next - given) % 3600000, 0);
    r = th_http(&srv, "PUT", "/v1/schedules/an",
                "{\"name\":\"an\",\"interval_seconds\":3600,\"task\":{\"type\":\"a\"}}");
    CHECK_INT(r->status, 200);
    CHECK_INT(time_of(r->json, "start_at"), given);
    CHECK_INT(time_of(r->json, "next_fire_at"), next);
    th_http(&srv, "DELETE", "/v1/schedules/an", NULL);
    /* A cron schedule made an interval counts from the schedule's creation. */
    r = th_http(&srv, "POST", "/v1/schedules",
                "{\"name\":\"ac\",\"cron\":\"@hourly\",\"task\":{\"type\":\"a\"}}");
    CHECK_INT(r->status, 201);
    created = time_of(r->json, "created_at");
    CHECK(json_is_null(th_get(r->json, "start_at")) || !th_get(r->json, "start_at"));
    th_sleep_ms(20); /* by design: the replace comes a few ms after the creation */
    r = th_http(&srv, "PUT", "/v1/schedules/ac",
                "{\"name\":\"ac\",\"interval_seconds\":3600,\"task\":{\"type\":\"a\"}}");
    CHECK_INT(r->status, 200);
    CHECK_INT(time_of(r->json, "start_at"), created);
    CHECK_INT(time_of(r->json, "next_fire_at"), created + 3600000);
    th_http(&srv, "DELETE", "/v1/schedules/ac", NULL);
}

/* One fire read back. */
struct fire_seen {
    int64_t slot, at, delay;
    bool slot_kind, created;
};

/*
 * Jitter is each slot's own: an every-second schedule with 2 s of jitter
 * (slots closer together than their jitter) fires each slot at or after
 * its own delay (schedule_slot_delay_ms, what every node computes), in slot
 * order, at most the jitter and a second late, none skipped, and not all in
 * one burst. Its next fire is the next slot plus that slot's delay.
 */
static void test_jitter_per_slot(void) {
    static const char body[] =
        "{\"name\":\"jps\",\"interval_seconds\":1,\"jitter_seconds\":2,"
        "\"overlap\":\"allow_all\",\"task\":{\"type\":\"j\"}}";
    struct th_resp *r = th_http(&srv, "POST", "/v1/schedules", "%s", body);
    long status = r->status;
    char id[33] = "";
    if (status == 201) snprintf(id, sizeof id, "%s", th_str(r->json, "id"));
    int64_t created = status == 201 ? time_of(r->json, "created_at") : 0;
    int64_t next = status == 201 ? time_of(r->json, "next_fire_at") : 0;
    /* The schedule as the server keeps it: its interval counts from its creation. */
    json_t *j = json_loads(body, 0, NULL);
    const char *start = status == 201 ? th_str(r->json, "start_at") : NULL;
    json_object_set_new(j, "start_at", json_string(start ? start : "2026-01-01T00:00:00Z"));
    struct schedule sc;
    struct tm_error e;
    err_clear(&e);
    int parsed = schedule_parse(j, &sc, &e);
    json_decref(j);
    if (parsed) th_http(&srv, "DELETE", "/v1/schedules/jps", NULL);
    CHECK_INT(parsed, 0);
    /* The first slot after creation (the cursor), and when it is due. */
    int64_t first = created ? schedule_next_slot(&sc, created, NULL) : 0;
    int64_t first_due = first ? first + schedule_slot_delay_ms(&sc, id, first) : 0;
    bool fired = false;
    if (id[0])
        TRY_WAIT_UNTIL(fired, fires_at_least(&srv, id, 4, 4), 15000,
                       "4 runs of 'jps' (1 s apart, 2 s of jitter)");
    th_http(&srv, "POST", "/v1/schedules/jps/pause", NULL);
    char path[200];
    snprintf(path, sizeof path, "/v1/schedules/%s/fires?limit=1000", id);
    r = th_http(&srv, "GET", path, NULL);
    json_t *fl = th_get(r->json, "fires");
    struct fire_seen f[64];
    size_t n = 0;
    for (size_t i = 0; i < json_array_size(fl) && n < 64; i++) {
        json_t *a = json_array_get(fl, i);
        struct fire_seen x = {.slot = time_of(a, "slot"), .at = time_of(a, "at")};
        x.delay = schedule_slot_delay_ms(&sc, id, x.slot);
        const char *kind = json_string_value(json_object_get(a, "kind"));
        const char *outcome = json_string_value(json_object_get(a, "outcome"));
        x.slot_kind = kind && strcmp(kind, "slot") == 0;
        x.created = outcome && strcmp(outcome, "created") == 0;
        size_t k = n++; /* by slot, oldest first */
        for (; k > 0 && f[k - 1].slot > x.slot; k--)
            f[k] = f[k - 1];
        f[k] = x;
    }
    th_http(&srv, "DELETE", "/v1/schedules/jps", NULL);
    schedule_release(&sc);
    CHECK_INT(status, 201);
    CHECK(created && first);
    CHECK_INT(next, first_due);
    CHECK(fired);
    CHECK(n >= 4);
    bool all_equal = true;
    for (size_t i = 0; i < n; i++) {
        if (f[i].slot != first + (int64_t)i * 1000 || !f[i].slot_kind || !f[i].created ||
            f[i].at < f[i].slot + f[i].delay || f[i].at > f[i].slot + 2000 + 1000 ||
            (i > 0 && f[i].at < f[i - 1].at)) {
            th_fail(__FILE__, __LINE__,
                    "fire %zu of %zu: slot %+lld ms from the first, at slot %+lld ms (its delay "
                    "%lld ms), kind slot %d, created %d",
                    i, n, (long long)(f[i].slot - first), (long long)(f[i].at - f[i].slot),
                    (long long)f[i].delay, f[i].slot_kind, f[i].created);
            return;
        }
        all_equal = all_equal && f[i].at == f[0].at;
    }
    CHECK(!all_equal);
}

/* The preview marks the fires a daylight-saving change moves. */
static void test_preview_dst(void) {
    struct th_resp *r = th_http(&srv, "POST", "/v1/schedules",
                                "{\"name\":\"ny\",\"cron\":\"30 2 * * *\",\"timezone\":"
                                "\"America/New_York\",\"task\":{\"type\":\"x\"},\"paused\":true}");
    CHECK_INT(r->status, 201);
    r = th_http(&srv, "GET", "/v1/schedules/ny/preview?count=2&after=2026-03-07T12:00:00Z", NULL);
    CHECK_INT(r->status, 200);
    /* 02:30 does not exist on 8 March: the first valid instant, 03:00 EDT. */
    CHECK_STR(th_str(r->json, "fires.0.at"), "2026-03-08T07:00:00.000Z");
    CHECK(json_is_true(th_get(r->json, "fires.0.shifted")));
    CHECK_STR(th_str(r->json, "fires.1.at"), "2026-03-09T06:30:00.000Z");
    CHECK(json_is_false(th_get(r->json, "fires.1.shifted")));
    r = th_http(&srv, "PUT", "/v1/schedules/ny",
                "{\"name\":\"ny\",\"cron\":\"30 1 * * *\",\"timezone\":\"America/New_York\","
                "\"task\":{\"type\":\"x\"},\"paused\":true}");
    CHECK_INT(r->status, 200);
    r = th_http(&srv, "GET", "/v1/schedules/ny/preview?count=2&after=2026-10-31T12:00:00Z", NULL);
    /* 01:30 happens twice on 1 November: once, at the first (EDT). */
    CHECK_STR(th_str(r->json, "fires.0.at"), "2026-11-01T05:30:00.000Z");
    CHECK(json_is_true(th_get(r->json, "fires.0.repeated")));
    CHECK_STR(th_str(r->json, "fires.1.at"), "2026-11-02T06:30:00.000Z");
    /* None past 9999: the last is on 31 December, not a wrong date after it. */
    r = th_http(&srv, "GET", "/v1/schedules/ny/preview?count=3&after=9999-12-30T12:00:00Z", NULL);
    CHECK_INT(r->status, 200);
    CHECK_INT(json_array_size(th_get(r->json, "fires")), 1);
    CHECK_STR(th_str(r->json, "fires.0.at"), "9999-12-31T06:30:00.000Z");
    r = th_http(&srv, "GET", "/v1/schedules/ny/preview?count=0", NULL);
    CHECK_INT(r->status, 400);
    CHECK_STR(th_str(r->json, "error.field"), "count");
    th_http(&srv, "DELETE", "/v1/schedules/ny", NULL);
}

/* Copies the file `from` to `to`; false on any failure. */
static bool file_copy(const char *from, const char *to) {
    FILE *in = fopen(from, "rb"), *out = in ? fopen(to, "wb") : NULL;
    char buf[4096];
    size_t n;
    bool ok = in && out;
    while (ok && (n = fread(buf, 1, sizeof buf, in)) > 0)
        ok = fwrite(buf, 1, n, out) == n;
    if (in) fclose(in);
    if (out && fclose(out)) ok = false;
    return ok;
}

/* A zone directory of its own for a server's TZDIR: Test/Swap there is a
 * copy of the system's `zone` (NULL: none). Its path into dir. */
static bool zone_dir_make(char dir[256], const char *zone) {
    snprintf(dir, 256, "%s/taskmill-tz-XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    if (!mkdtemp(dir)) return false;
    char path[400];
    snprintf(path, sizeof path, "%s/Test", dir);
    if (mkdir(path, 0755)) return false;
    if (!zone) return true;
    char from[200];
    snprintf(from, sizeof from, "/usr/share/zoneinfo/%s", zone);
    snprintf(path, sizeof path, "%s/Test/Swap", dir);
    return file_copy(from, path);
}

static void zone_dir_remove(const char *dir) {
    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd)) {
    }
}

/* Whether the first slot of schedule `name` after 2026-06-01T00:00:00Z is `at`. */
static bool first_slot_is(struct th_server *s, const char *name, const char *at) {
    char path[200];
    snprintf(path, sizeof path, "/v1/schedules/%s/preview?count=1&after=2026-06-01T00:00:00Z",
             name);
    const char *got = th_str(th_http(s, "GET", path, NULL)->json, "fires.0.at");
    return got && strcmp(got, at) == 0;
}

/*
 * A server reads its zones from $TZDIR when set, and a zone file replaced
 * under it (a tzdata upgrade: new rules) is read again, without a restart:
 * Test/Swap goes from UTC+5 (Etc/GMT-5) to UTC-3 (Etc/GMT+3) by a rename,
 * as dpkg replaces a file, and noon there moves from 07:00Z to 15:00Z. A
 * zone the directory lacks is refused, though the system has it.
 */
static void test_zone_file_replaced_is_read_again(void) {
    char dir[256];
    CHECK(zone_dir_make(dir, "Etc/GMT-5"));
    struct th_server s;
    setenv("TZDIR", dir, 1);
    int started = th_server_start(&s, NULL);
    unsetenv("TZDIR");
    if (started) {
        zone_dir_remove(dir);
        CHECK(started == 0);
    }
    struct th_resp *r = th_http(&s, "POST", "/v1/schedules",
                                "{\"name\":\"ny\",\"cron\":\"0 12 * * *\",\"timezone\":"
                                "\"America/New_York\",\"paused\":true,\"task\":{\"type\":\"x\"}}");
    long ny_status = r->status;
    char ny_field[64] = "";
    if (th_str(r->json, "error.field"))
        snprintf(ny_field, sizeof ny_field, "%s", th_str(r->json, "error.field"));
    long scheds =
        (long)json_array_size(th_get(th_http(&s, "GET", "/v1/schedules", NULL)->json, "schedules"));
    r = th_http(&s, "POST", "/v1/schedules",
                "{\"name\":\"swap\",\"cron\":\"0 12 * * *\",\"timezone\":\"Test/Swap\","
                "\"paused\":true,\"task\":{\"type\":\"x\"}}");
    long status = r->status;
    bool before = first_slot_is(&s, "swap", "2026-06-01T07:00:00.000Z");
    char from[200], tmp[400], to[400];
    snprintf(from, sizeof from, "/usr/share/zoneinfo/Etc/GMT+3");
    snprintf(tmp, sizeof tmp, "%s/Test/.Swap.new", dir);
    snprintf(to, sizeof to, "%s/Test/Swap", dir);
    bool swapped = file_copy(from, tmp) && rename(tmp, to) == 0, after = false;
    if (swapped && before)
        TRY_WAIT_UNTIL(after, first_slot_is(&s, "swap", "2026-06-01T15:00:00.000Z"), 30000,
                       "noon in Test/Swap to follow its new file");
    th_server_free(&s);
    zone_dir_remove(dir);
    CHECK_INT(ny_status, 400);
    CHECK_STR(ny_field, "timezone");
    CHECK_INT(scheds, 0);
    CHECK_INT(status, 201);
    CHECK(before);
    CHECK(swapped);
    CHECK(after);
}

/* Previews schedule `name` (which looks at its zone's file when due), then
 * whether the server's log holds `text`. */
static bool previewed_and_logged(struct th_server *s, const char *name, const char *text) {
    first_slot_is(s, name, "");
    char path[400];
    snprintf(path, sizeof path, "%s/server.log", s->dir);
    FILE *f = fopen(path, "r");
    char line[1024];
    bool found = false;
    while (f && !found && fgets(line, sizeof line, f))
        found = strstr(line, text) != NULL;
    if (f) fclose(f);
    return found;
}

/*
 * A zone file rewritten in place with bytes that do not read as a zone (a
 * write caught half done, garbage) keeps the zone as last read, logged,
 * so that the schedules in it go on; the zone was dropped, and they did
 * not read until the file did again. A good file after it is read again.
 */
static void test_zone_file_garbage_keeps_zone(void) {
    char dir[256];
    CHECK(zone_dir_make(dir, "Etc/GMT-5"));
    struct th_server s;
    setenv("TZDIR", dir, 1);
    int started = th_server_start(&s, NULL);
    unsetenv("TZDIR");
    if (started) {
        zone_dir_remove(dir);
        CHECK(started == 0);
    }
    struct th_resp *r = th_http(&s, "POST", "/v1/schedules",
                                "{\"name\":\"garbled\",\"cron\":\"0 12 * * *\",\"timezone\":"
                                "\"Test/Swap\",\"paused\":true,\"task\":{\"type\":\"x\"}}");
    long status = r->status;
    bool before = first_slot_is(&s, "garbled", "2026-06-01T07:00:00.000Z");
    char path[400], tmp[400];
    snprintf(path, sizeof path, "%s/Test/Swap", dir);
    FILE *f = fopen(path, "wb"); /* in place: the same inode, truncated */
    bool garbled = f != NULL;
    for (int i = 0; f && i < 20; i++)
        garbled = fputs("this is not a TZif file\n", f) >= 0 && garbled;
    if (f && fclose(f)) garbled = false;
    bool logged = false, kept = false, after = false;
    if (garbled && before) {
        TRY_WAIT_UNTIL(logged, previewed_and_logged(&s, "garbled", "does not read as a zone"),
                       30000, "the garbled zone file to be logged");
        kept = first_slot_is(&s, "garbled", "2026-06-01T07:00:00.000Z");
        r = th_http(&s, "POST", "/v1/schedules/garbled/resume", NULL);
        kept = kept && r->status == 200;
        snprintf(tmp, sizeof tmp, "%s/Test/.Swap.new", dir);
        if (file_copy("/usr/share/zoneinfo/Etc/GMT+3", tmp) && rename(tmp, path) == 0)
            TRY_WAIT_UNTIL(after, first_slot_is(&s, "garbled", "2026-06-01T15:00:00.000Z"), 30000,
                           "noon in Test/Swap to follow its good file");
    }
    th_server_free(&s);
    zone_dir_remove(dir);
    CHECK_INT(status, 201);
    CHECK(before);
    CHECK(garbled);
    CHECK(logged);
    CHECK(kept);
    CHECK(after);
}

/* Down for a while: slots inside the catch-up window run once each, older ones are counted. */
static void test_catchup_and_kill9(void) {
    struct th_server s;
    CHECK(th_server_start(&s, NULL) == 0);
    struct th_resp *r = th_http(&s, "POST", "/v1/schedules",
                                "{\"name\":\"cu\",\"interval_seconds\":1,\"overlap\":"
                                "\"allow_all\",\"catchup_seconds\":2,\"task\":{\"type\":\"c\","
                                "\"queue\":\"cuq\"}}");
    char id[33] = "";
    if (r->status == 201) snprintf(id, sizeof id, "%s", th_str(r->json, "id"));
    bool ok = id[0];
    /* Crashes mid-stream, then a long stop. */
    for (int i = 0; ok && i < 3; i++) {
        th_sleep_ms(700 + 300 * i); /* by design: each crash at another point of a slot */
        th_server_stop(&s, true);
        ok = th_server_restart(&s) == 0;
    }
    if (ok) {
        th_server_stop(&s, false);
        th_sleep_ms(6000); /* by design: down for 6 slots, more than the 2 s catch-up window */
        ok = th_server_restart(&s) == 0;
    }
    /* The catch-up after the long stop: its fires, and the older slots counted as missed. */
    bool caught_up = false;
    if (ok)
        TRY_WAIT_UNTIL(caught_up, caught_up_after_stop(&s, id), 20000,
                       "a catch-up fire, 4 runs and 2 missed slots of 'cu'");
    long n = 0, created = 0, tasks = -1, missed = -1;
    bool dup = true;
    if (ok) {
        th_http(&s, "POST", "/v1/schedules/cu/pause", NULL);
        fires_of(&s, id, &n, &created, &dup);
        tasks = count_tasks(&s, "/v1/tasks?queue=cuq&limit=1000");
        r = th_http(&s, "GET", "/v1/schedules/cu", NULL);
        missed = th_int(r->json, "missed");
    }
    r = ok ? th_http(&s, "GET", "/v1/schedules/cu/fires?limit=1000", NULL) : NULL;
    bool catchup = false;
    for (size_t i = 0; r && i < json_array_size(th_get(r->json, "fires")); i++)
        catchup = catchup || strcmp(json_string_value(json_object_get(
                                        json_array_get(th_get(r->json, "fires"), i), "kind")),
                                    "catchup") == 0;
    th_server_free(&s);
    CHECK(ok);
    CHECK(!dup);
    CHECK_INT(tasks, created); /* each task has its fired slot, and no slot two tasks */
    CHECK(created >= 4);
    CHECK(missed >= 2); /* about 6 s down with a 2 s window */
    CHECK(catchup);
}

/*
 * A server down for a day and a half under a daily 02:30 job (as
 * docs/schedules.md says): with the default catch-up window (an hour)
 * neither missed 02:30 fires, both are counted in 'missed'; with a week's
 * window each fires once, oldest first, as a catch-up. None fires twice
 * and none is left out. The server's clock is libfaketime's.
 */
static void test_down_for_a_day(void) {
    struct th_server s;
    if (th_server_start_at(&s, "@2026-12-01 01:59:50")) return;
    struct th_resp *r = th_http(&s, "POST", "/v1/schedules",
                                "{\"name\":\"hour\",\"cron\":\"30 2 * * *\",\"overlap\":"
                                "\"allow_all\",\"task\":{\"type\":\"d\",\"queue\":\"dq1\"}}");
    CHECK_INT(r->status, 201);
    CHECK_STR(th_str(r->json, "next_fire_at"), "2026-12-01T02:30:00.000Z");
    r = th_http(&s, "POST", "/v1/schedules",
                "{\"name\":\"week\",\"cron\":\"30 2 * * *\",\"overlap\":\"allow_all\","
                "\"catchup_seconds\":604800,\"task\":{\"type\":\"d\",\"queue\":\"dq2\"}}");
    CHECK_INT(r->status, 201);
    th_server_stop(&s, false);
    /* Back a day and a half later: the slots of 1 and 2 December have passed. */
    th_fake_clock("@2026-12-02 10:00:00");
    int rc = th_server_restart(&s);
    th_fake_clock(NULL);
    if (rc) {
        th_fail(__FILE__, __LINE__, "the server did not restart (log %s/server.log)", s.dir);
        th_server_free(&s);
        return;
    }
    bool done;
    TRY_WAIT_UNTIL(done,
                   th_int(th_http(&s, "GET", "/v1/schedules/week", NULL)->json, "fires") >= 2 &&
                       th_int(th_http(&s, "GET", "/v1/schedules/hour", NULL)->json, "missed") >= 2,
                   20000, "the downtime's two slots handled by both schedules");
    th_sleep_ms(1500); /* by design: a pass more, which must add nothing */
    r = th_http(&s, "GET", "/v1/schedules/hour", NULL);
    CHECK_INT(th_int(r->json, "fires"), 0);
    CHECK_INT(th_int(r->json, "missed"), 2);
    CHECK_STR(th_str(r->json, "next_fire_at"), "2026-12-03T02:30:00.000Z");
    CHECK_INT(count_tasks(&s, "/v1/tasks?queue=dq1"), 0);
    r = th_http(&s, "GET", "/v1/schedules/week", NULL);
    CHECK_INT(th_int(r->json, "fires"), 2);
    CHECK_INT(th_int(r->json, "missed"), 0);
    CHECK_STR(th_str(r->json, "next_fire_at"), "2026-12-03T02:30:00.000Z");
    CHECK_INT(count_tasks(&s, "/v1/tasks?queue=dq2"), 2);
    r = th_http(&s, "GET", "/v1/schedules/week/fires", NULL);
    CHECK_INT((long long)json_array_size(th_get(r->json, "fires")), 2);
    CHECK_STR(th_str(r->json, "fires.0.slot"), "2026-12-02T02:30:00.000Z");
    CHECK_STR(th_str(r->json, "fires.0.kind"), "catchup");
    CHECK_STR(th_str(r->json, "fires.1.slot"), "2026-12-01T02:30:00.000Z");
    CHECK_STR(th_str(r->json, "fires.1.kind"), "catchup");
    (void)done;
    th_server_free(&s);
}

/* One statement on s's database, on a connection of the test's own while
 * the server runs (what an operator's sqlite3 or psql would do): 0, or -1
 * after th_fail. */
static int server_sql(const struct th_server *s, const char *sql) {
    int rc = -1;
    if (!th_backend_is_pg()) {
        sqlite3 *db = NULL;
        char *err = NULL;
        if (sqlite3_open(s->db, &db) == SQLITE_OK && sqlite3_busy_timeout(db, 5000) == SQLITE_OK &&
            sqlite3_exec(db, sql, NULL, NULL, &err) == SQLITE_OK)
            rc = 0;
        if (rc) th_fail(__FILE__, __LINE__, "%s: %s", sql, err ? err : sqlite3_errmsg(db));
        sqlite3_free(err);
        sqlite3_close(db);
        return rc;
    }
    PGconn *c = PQconnectdb(s->store);
    PGresult *r = PQstatus(c) == CONNECTION_OK ? PQexec(c, sql) : NULL;
    if (r && (PQresultStatus(r) == PGRES_COMMAND_OK || PQresultStatus(r) == PGRES_TUPLES_OK))
        rc = 0;
    if (rc) th_fail(__FILE__, __LINE__, "%s: %s", sql, PQerrorMessage(c));
    PQclear(r);
    PQfinish(c);
    return rc;
}

/* Makes the stored body of schedule `name` name the zone `to` where it named
 * `from`, as a tzdata upgrade that drops a zone leaves it. */
static int body_zone_set(const struct th_server *s, const char *name, const char *from,
                         const char *to) {
    char sql[300];
    snprintf(sql, sizeof sql,
             "UPDATE schedules SET body = replace(body, '%s', '%s') WHERE name = '%s'", from, to,
             name);
    return server_sql(s, sql);
}

/* Submits and operations on an unreadable schedule, side by side. */
struct mixed_run {
    int idx;
    int submits_failed, bad_as_wanted, bad_otherwise;
    long bad_status;
    char bad_body[300];
};

static void *mixed_thread(void *p) {
    struct mixed_run *m = p;
    static const char *const ops[] = {"pause", "resume", "trigger", "backfill"};
    for (int i = 0; i < 12; i++) {
        struct th_resp *r =
            th_http(&srv, "POST", "/v1/tasks", "{\"type\":\"mx\",\"queue\":\"mxq\"}");
        if (r->status != 201) m->submits_failed++;
        if (i % 2) continue;
        const char *op = ops[(m->idx + i / 2) % 4];
        char path[80];
        snprintf(path, sizeof path, "/v1/schedules/gone/%s", op);
        r = th_http(&srv, "POST", path, "%s",
                    strcmp(op, "backfill") == 0
                        ? "{\"from\":\"2026-01-01T00:00:00Z\",\"to\":\"2026-01-03T00:00:00Z\"}"
                        : "{}");
        const char *field = th_str(r->json, "error.field");
        const char *msg = th_str(r->json, "error.message");
        if (r->status == 409 && field && strcmp(field, "timezone") == 0 && msg &&
            strstr(msg, "cannot be read") && strstr(msg, "America/Gone")) {
            m->bad_as_wanted++;
        } else {
            m->bad_otherwise++;
            m->bad_status = r->status;
            snprintf(m->bad_body, sizeof m->bad_body, "%s", r->body ? r->body : "");
        }
    }
    th_http(NULL, NULL, NULL, NULL); /* this thread's connection */
    return NULL;
}

/*
 * A schedule whose stored body no longer parses (its zone gone from the
 * system's tzdata): a pause, resume, trigger or backfill of it is its own
 * 409 naming the field and why, and the submits the writer takes in the
 * same batches all succeed (the op's failure is not the batch's).
 */
static void test_unreadable_schedule_fails_alone(void) {
    struct th_resp *r = th_http(&srv, "POST", "/v1/schedules",
                                "{\"name\":\"gone\",\"cron\":\"0 0 1 1 *\",\"timezone\":"
                                "\"America/New_York\",\"task\":{\"type\":\"g\"}}");
    CHECK_INT(r->status, 201);
    if (body_zone_set(&srv, "gone", "America/New_York", "America/Gone")) return;
    enum { NTHREADS = 8 };
    struct mixed_run m[NTHREADS];
    pthread_t th[NTHREADS];
    for (int i = 0; i < NTHREADS; i++) {
        memset(&m[i], 0, sizeof m[i]);
        m[i].idx = i;
        pthread_create(&th[i], NULL, mixed_thread, &m[i]);
    }
    int failed = 0, wanted = 0, otherwise = 0;
    for (int i = 0; i < NTHREADS; i++) {
        pthread_join(th[i], NULL);
        failed += m[i].submits_failed;
        wanted += m[i].bad_as_wanted;
        otherwise += m[i].bad_otherwise;
        if (m[i].bad_otherwise)
            printf("    an op on 'gone': %ld %s\n", m[i].bad_status, m[i].bad_body);
    }
    printf("    submits failed %d of %d; ops on 'gone' as wanted %d, otherwise %d\n", failed,
           NTHREADS * 12, wanted, otherwise);
    long tasks = count_tasks(&srv, "/v1/tasks?queue=mxq&limit=1000");
    r = th_http(&srv, "POST", "/v1/schedules/gone/pause", NULL);
    long status = r->status;
    char field[64] = "", message[256] = "";
    if (th_str(r->json, "error.field"))
        snprintf(field, sizeof field, "%s", th_str(r->json, "error.field"));
    if (th_str(r->json, "error.message"))
        snprintf(message, sizeof message, "%s", th_str(r->json, "error.message"));
    r = th_http(&srv, "GET", "/v1/schedules/gone", NULL);
    bool paused = json_is_true(th_get(r->json, "paused"));
    th_http(&srv, "DELETE", "/v1/schedules/gone", NULL);
    CHECK_INT(failed, 0);
    CHECK_INT(tasks, NTHREADS * 12);
    CHECK_INT(otherwise, 0);
    CHECK_INT(wanted, NTHREADS * 6);
    CHECK_INT(status, 409);
    CHECK_STR(field, "timezone");
    CHECK_STR(message,
              "the stored schedule 'gone' cannot be read: its 'timezone' field: timezone "
              "'America/Gone' is not a zone of the system's tzdata");
    CHECK(!paused); /* changed nothing */
}

/* The last outcome of schedule `name` on s is `want`. */
static bool last_outcome_is(struct th_server *s, const char *name, const char *want) {
    char path[200];
    snprintf(path, sizeof path, "/v1/schedules/%s", name);
    const char *got = th_str(th_http(s, "GET", path, NULL)->json, "last_outcome");
    return got && strcmp(got, want) == 0;
}

/* Whether the last outcome of schedule `name` on s is one of a fire that worked. */
static bool last_outcome_fired(struct th_server *s, const char *name) {
    return last_outcome_is(s, name, "created") || last_outcome_is(s, name, "skipped");
}

/*
 * A running schedule whose stored body stops parsing is not switched off
 * for good: its pass records outcome 'error' and why in last_error, counts
 * it in taskmill_schedule_unreadable_total, and looks again a minute on;
 * the zone back, it fires again by itself (the minute is made to pass by
 * moving next_at, and a restart shows nothing else is needed).
 */
static void test_unreadable_schedule_retried(void) {
    struct th_server s;
    CHECK(th_server_start(&s, NULL) == 0);
    struct th_resp *r = th_http(&s, "POST", "/v1/schedules",
                                "{\"name\":\"lost\",\"cron\":\"* * * * * *\",\"timezone\":"
                                "\"America/New_York\",\"catchup_seconds\":0,"
                                "\"task\":{\"type\":\"l\",\"queue\":\"lq\"}}");
    char id[33] = "";
    if (r->status == 201) snprintf(id, sizeof id, "%s", th_str(r->json, "id"));
    bool ok = id[0] && body_zone_set(&s, "lost", "America/New_York", "America/Gone") == 0;
    bool errored = false, paused = true, again = false;
    int64_t next = 0, asked = 0;
    long long unreadable = -1;
    char last_error[256] = "";
    if (ok)
        TRY_WAIT_UNTIL(errored, last_outcome_is(&s, "lost", "error"), 20000,
                       "an unreadable 'lost' to record an error");
    if (errored) {
        asked = time_now_ms();
        r = th_http(&s, "GET", "/v1/schedules/lost", NULL);
        paused = json_is_true(th_get(r->json, "paused"));
        next = time_of(r->json, "next_fire_at");
        if (th_str(r->json, "last_error"))
            snprintf(last_error, sizeof last_error, "%s", th_str(r->json, "last_error"));
        unreadable = th_metric(&s, "taskmill_schedule_unreadable_total");
        /* The zone back; the minute made to pass; a restart. */
        char sql[200];
        snprintf(sql, sizeof sql, "UPDATE schedules SET next_at = %lld WHERE name = 'lost'",
                 (long long)time_now_ms());
        ok = body_zone_set(&s, "lost", "America/Gone", "America/New_York") == 0 &&
             server_sql(&s, sql) == 0;
        th_server_stop(&s, false);
        ok = ok && th_server_restart(&s) == 0;
        if (ok)
            TRY_WAIT_UNTIL(again, last_outcome_fired(&s, "lost"), 20000,
                           "'lost' to fire again once its zone is back");
    }
    th_server_free(&s);
    CHECK(ok);
    CHECK(errored);
    CHECK(!paused);
    CHECK(next >= asked + 30000 && next <= asked + 61000);
    CHECK_STR(last_error,
              "the stored schedule 'lost' cannot be read: its 'timezone' field: "
              "timezone 'America/Gone' is not a zone of the system's tzdata");
    CHECK(unreadable >= 1);
    CHECK(again);
}

/* The slots schedule `id` has fired (its fire rows), oldest first; how many. */
static size_t slots_fired(struct th_server *s, const char *id, int64_t *out, size_t max) {
    char path[200];
    snprintf(path, sizeof path, "/v1/schedules/%s/fires?limit=1000", id);
    json_t *f = th_get(th_http(s, "GET", path, NULL)->json, "fires");
    size_t n = 0;
    for (size_t i = 0; i < json_array_size(f) && n < max; i++) {
        int64_t x = time_of(json_array_get(f, i), "slot");
        size_t k = n++;
        for (; k > 0 && out[k - 1] > x; k--)
            out[k] = out[k - 1];
        out[k] = x;
    }
    return n;
}

/* The newest slot schedule `id` has fired, or 0. */
static int64_t last_slot_fired(struct th_server *s, const char *id) {
    int64_t slots[200];
    size_t n = slots_fired(s, id, slots, 200);
    return n ? slots[n - 1] : 0;
}

/*
 * An every-second schedule with 3 s of jitter always has slots whose time
 * has passed and whose delay has not. Replaces that change only its
 * description keep them (each slot fires), and so does a pause: the slots
 * before it fire after the resume, the ones of the pause are skipped.
 */
static void test_replace_and_resume_keep_jittered_slots(void) {
    static const char body[] =
        "{\"name\":\"jk\",\"cron\":\"* * * * * *\",\"jitter_seconds\":3,"
        "\"description\":\"%d\",\"task\":{\"type\":\"k\",\"queue\":\"jkq\"}}";
    struct th_resp *r = th_http(&srv, "POST", "/v1/schedules", body, 0);
    CHECK_INT(r->status, 201);
    char id[33];
    snprintf(id, sizeof id, "%s", th_str(r->json, "id"));
    WAIT_UNTIL(fires_at_least(&srv, id, 2, 0), 20000, "2 fires of 'jk'");
    int puts_ok = 0;
    for (int i = 1; i <= 6; i++) {
        r = th_http(&srv, "PUT", "/v1/schedules/jk", body, i);
        puts_ok += r->status == 200;
        th_sleep_ms(250); /* by design: each replace at another point of the slots' delays */
    }
    int64_t p0 = time_now_ms();
    long paused = th_http(&srv, "POST", "/v1/schedules/jk/pause", NULL)->status;
    int64_t p1 = time_now_ms();
    th_sleep_ms(1500); /* by design: a pause with slots in it, to be skipped */
    int64_t r0 = time_now_ms();
    long resumed = th_http(&srv, "POST", "/v1/schedules/jk/resume", NULL)->status;
    int64_t r1 = time_now_ms();
    bool fired = false;
    TRY_WAIT_UNTIL(fired, last_slot_fired(&srv, id) >= r1 + 5000, 30000,
                   "'jk' to fire slots 5 s after its resume");
    th_http(&srv, "POST", "/v1/schedules/jk/pause", NULL);
    int64_t slots[200];
    size_t n = slots_fired(&srv, id, slots, 200);
    th_http(&srv, "DELETE", "/v1/schedules/jk", NULL);
    CHECK_INT(puts_ok, 6);
    CHECK_INT(paused, 200);
    CHECK_INT(resumed, 200);
    CHECK(fired);
    CHECK(n >= 2);
    /* Every second from the first slot to the pause, none of the pause's,
     * every second from the resume on. */
    size_t k = 0;
    for (int64_t t = slots[0]; t <= slots[n - 1]; t += 1000) {
        bool have = k < n && slots[k] == t;
        if (have) k++;
        bool want = t <= p0 || t > r1;
        bool skip = t > p1 && t <= r0;
        if ((want && !have) || (skip && have)) {
            th_fail(__FILE__, __LINE__,
                    "slot %+lld ms from the pause (%lld ms paused, resumed %+lld ms): %s",
                    (long long)(t - p0), (long long)(p1 - p0), (long long)(r0 - p0),
                    have ? "fired, in the pause" : "not fired");
            return;
        }
    }
}

/* Sleeps until wall-clock ms `t` (at once when past). */
static void sleep_until_ms(int64_t t) {
    int64_t d = t - time_now_ms();
    if (d > 0) th_sleep_ms((int)d);
}

/*
 * Two pauses before a slot owed from before the first has fired: each
 * pause's slots are skipped and the slots between the two pauses fire. An
 * every-second schedule with 3 s of jitter; the test reads the slots'
 * delays (a hash of the id and the slot, as the server computes them),
 * picks a slot s0 due 2.5 s or more after its time and pauses right after
 * it, for 0.3 s, then again from s0 + 1.3 s: s0 is still owed at the
 * second resume, and s0 + 1 s lies between the pauses. Tried again with a
 * new schedule when the machine was too slow for those times to hold.
 */
static void test_two_pauses_keep_slots_between(void) {
    static const char body[] =
        "{\"name\":\"jp\",\"cron\":\"* * * * * *\",\"jitter_seconds\":3,"
        "\"task\":{\"type\":\"k\",\"queue\":\"jpq\"}}";
    struct schedule sc = {.jitter_ms = 3000};
    char id[33] = "";
    int64_t s0 = 0, p1[2], r1[2], p2[2], r2[2];
    bool held = false;
    int created = 0;
    for (int attempt = 0; attempt < 5 && !held; attempt++) {
        struct th_resp *r = th_http(&srv, "POST", "/v1/schedules", body);
        created += r->status == 201;
        snprintf(id, sizeof id, "%s", th_str(r->json, "id"));
        s0 = (time_now_ms() / 1000 + 1) * 1000;
        while (schedule_slot_delay_ms(&sc, id, s0) < 2500)
            s0 += 1000;
        sleep_until_ms(s0 + 30);
        p1[0] = time_now_ms();
        long a = th_http(&srv, "POST", "/v1/schedules/jp/pause", NULL)->status;
        p1[1] = time_now_ms();
        sleep_until_ms(s0 + 330); /* by design: the first pause, no slot in it */
        r1[0] = time_now_ms();
        long b = th_http(&srv, "POST", "/v1/schedules/jp/resume", NULL)->status;
        r1[1] = time_now_ms();
        sleep_until_ms(s0 + 1300); /* by design: s0 + 1 s comes between the pauses */
        p2[0] = time_now_ms();
        long c = th_http(&srv, "POST", "/v1/schedules/jp/pause", NULL)->status;
        p2[1] = time_now_ms();
        sleep_until_ms(s0 + 1600); /* by design: the second pause */
        r2[0] = time_now_ms();
        long d = th_http(&srv, "POST", "/v1/schedules/jp/resume", NULL)->status;
        r2[1] = time_now_ms();
        CHECK(a == 200 && b == 200 && c == 200 && d == 200);
        held = p1[0] > s0 && r1[1] < s0 + 1000 && p2[0] > s0 + 1000 &&
               r2[1] < s0 + schedule_slot_delay_ms(&sc, id, s0);
        if (!held) th_http(&srv, "DELETE", "/v1/schedules/jp", NULL);
    }
    CHECK(created >= 1);
    CHECK(held);
    if (!held) return;
    bool fired = false;
    TRY_WAIT_UNTIL(fired, last_slot_fired(&srv, id) >= r2[1] + 4000, 30000,
                   "'jp' to fire slots 4 s after its second resume");
    th_http(&srv, "POST", "/v1/schedules/jp/pause", NULL);
    int64_t slots[200];
    size_t n = slots_fired(&srv, id, slots, 200);
    th_http(&srv, "DELETE", "/v1/schedules/jp", NULL);
    CHECK(fired);
    CHECK(n >= 2);
    bool between = false; /* s0 + 1 s, the slot between the pauses, fired */
    size_t k = 0;
    for (int64_t t = slots[0]; n && t <= slots[n - 1]; t += 1000) {
        bool have = k < n && slots[k] == t;
        if (have) k++;
        bool want = t <= p1[0] || (t > r1[1] && t <= p2[0]) || t > r2[1];
        bool skip = (t > p1[1] && t <= r1[0]) || (t > p2[1] && t <= r2[0]);
        between = between || (have && t == s0 + 1000);
        if ((want && !have) || (skip && have)) {
            th_fail(__FILE__, __LINE__,
                    "slot %+lld ms from s0 (pauses %+lld..%+lld, %+lld..%+lld): %s",
                    (long long)(t - s0), (long long)(p1[0] - s0), (long long)(r1[1] - s0),
                    (long long)(p2[0] - s0), (long long)(r2[1] - s0),
                    have ? "fired, in a pause" : "not fired");
            return;
        }
    }
    CHECK(between);
}

/*
 * last_error is the last outcome's: a trigger that launches nothing (its
 * definition renamed away) says why, naming the rename, and one that
 * launches clears it. A null is an absent field everywhere in a schedule
 * (a replace's "paused": null keeps the pause), and is not stored. An empty name is refused
 * with the rule new names follow, 1 to 127 bytes.
 */
static void test_last_error_cleared_and_nulls(void) {
    struct th_resp *r =
        th_http(&srv, "POST", "/v1/definitions", "{\"name\":\"rn\",\"type\":\"rn\"}");
    CHECK_INT(r->status, 201);
    static const char body[] =
        "{\"name\":\"rs\",\"cron\":\"0 0 1 1 *\",\"interval_seconds\":null,\"definition\":\"rn\","
        "\"params\":null,\"timezone\":null,\"overlap\":null,\"catchup_seconds\":null,"
        "\"jitter_seconds\":null,\"start_at\":null,\"end_at\":null,\"paused\":null%s}";
    r = th_http(&srv, "POST", "/v1/schedules", body, "");
    long created = r->status;
    /* Stored without its nulls (the schedule shows what is stored), so
     * that a node of the version before, which refused them, reads it. */
    bool nulls_dropped = !th_get(r->json, "timezone") && !th_get(r->json, "overlap") &&
                         !th_get(r->json, "catchup_seconds") && !th_get(r->json, "params");
    r = th_http(&srv, "PUT", "/v1/definitions/rn", "{\"name\":\"rn2\",\"type\":\"rn\"}");
    long renamed = r->status;
    long refused = th_http(&srv, "POST", "/v1/schedules/rs/trigger", NULL)->status;
    r = th_http(&srv, "GET", "/v1/schedules/rs", NULL);
    char outcome1[32] = "", error1[256] = "";
    if (th_str(r->json, "last_outcome"))
        snprintf(outcome1, sizeof outcome1, "%s", th_str(r->json, "last_outcome"));
    if (th_str(r->json, "last_error"))
        snprintf(error1, sizeof error1, "%s", th_str(r->json, "last_error"));
    th_http(&srv, "PUT", "/v1/definitions/rn2", "{\"name\":\"rn\",\"type\":\"rn\"}");
    long launched = th_http(&srv, "POST", "/v1/schedules/rs/trigger", NULL)->status;
    r = th_http(&srv, "GET", "/v1/schedules/rs", NULL);
    char outcome2[32] = "";
    if (th_str(r->json, "last_outcome"))
        snprintf(outcome2, sizeof outcome2, "%s", th_str(r->json, "last_outcome"));
    bool error2_null = json_is_null(th_get(r->json, "last_error"));
    th_http(&srv, "POST", "/v1/schedules/rs/pause", "{\"note\":\"kept\"}");
    r = th_http(&srv, "PUT", "/v1/schedules/rs", body, ",\"description\":\"d\",\"note\":null");
    long replaced = r->status;
    bool still_paused = json_is_true(th_get(r->json, "paused"));
    const char *note = th_str(r->json, "note");
    bool note_kept = note && strcmp(note, "kept") == 0;
    th_http(&srv, "DELETE", "/v1/schedules/rs", NULL);
    th_http(&srv, "DELETE", "/v1/definitions/rn", NULL);
    CHECK_INT(created, 201);
    CHECK(nulls_dropped);
    CHECK_INT(renamed, 200);
    CHECK_INT(refused, 400);
    CHECK_STR(outcome1, "error");
    CHECK_STR(error1,
              "definition 'rn' not found in namespace 'default' (deleted or renamed?): "
              "point the schedule at one with PUT");
    CHECK_INT(launched, 201);
    CHECK_STR(outcome2, "created");
    CHECK(error2_null);
    CHECK_INT(replaced, 200);
    CHECK(still_paused);
    CHECK(note_kept);
    r = th_http(&srv, "POST", "/v1/schedules",
                "{\"name\":\"\",\"cron\":\"@hourly\",\"task\":{\"type\":\"x\"}}");
    CHECK_INT(r->status, 400);
    CHECK_STR(th_str(r->json, "error.field"), "name");
    CHECK(strstr(th_str(r->json, "error.message"), "1 to 127 bytes"));
}

/* Two nodes on one database fire each slot once. */
/* A backfill sent from a thread of its own, and its reply. */
struct backfill_call {
    struct th_server *s;
    const char *path;
    char from[40], to[40];
    long status;
    long long fired, skipped;
};

static void *backfill_thread(void *p) {
    struct backfill_call *x = p;
    struct th_resp *r =
        th_http(x->s, "POST", x->path, "{\"from\":\"%s\",\"to\":\"%s\"}", x->from, x->to);
    x->status = r->status;
    x->fired = th_int(r->json, "fired");
    x->skipped = th_int(r->json, "skipped");
    th_http(NULL, NULL, NULL, NULL); /* this thread's connection */
    return NULL;
}

/*
 * A backfill whose batch is applied again (a deadlock with another node,
 * here a session of the test's: it holds the event log's head row, which
 * the batch needs last, then asks for the schedule's row, which the batch
 * holds; PostgreSQL ends the batch's transaction, the node applies the
 * batch again) answers with the slots it fired, once: its counts were
 * kept across the attempts, and the reply said twice as many as fired.
 */
static void test_backfill_counted_once_when_applied_again(void) {
    if (!th_backend_is_pg()) {
        th_skip("a batch applied again after a deadlock needs PostgreSQL");
        return;
    }
    struct th_server a;
    if (th_server_start(&a, NULL)) {
        th_fail(__FILE__, __LINE__, "the server did not start (log %s/server.log)", a.dir);
        th_server_stop(&a, true);
        return;
    }
    struct th_resp *r = th_http(&a, "POST", "/v1/schedules",
                                "{\"name\":\"again\",\"cron\":\"* * * * *\",\"paused\":true,"
                                "\"overlap\":\"allow_all\",\"task\":{\"type\":\"ag\",\"queue\":"
                                "\"agq\"}}");
    CHECK_INT(r->status, 201);
    long long retries = th_metric(&a, "taskmill_store_batch_retries_total");
    /* Five whole minutes, ten minutes ago. */
    struct backfill_call x = {.s = &a, .path = "/v1/schedules/again/backfill", .status = -1};
    time_t f = time(NULL) / 60 * 60 - 600, t = f + 300;
    strftime(x.from, sizeof x.from, "%Y-%m-%dT%H:%M:%SZ", gmtime(&f));
    strftime(x.to, sizeof x.to, "%Y-%m-%dT%H:%M:%SZ", gmtime(&t));
    PGconn *other = PQconnectdb(a.store), *watch = PQconnectdb(a.store);
    CHECK(PQstatus(other) == CONNECTION_OK && PQstatus(watch) == CONNECTION_OK);
    CHECK(pg_run(other, "BEGIN") &&
          pg_run(other, "UPDATE event_meta SET value = value WHERE name = 'head'"));
    pthread_t th;
    CHECK(pthread_create(&th, NULL, backfill_thread, &x) == 0);
    /* The batch has fired the slots, holds the schedule's row and waits
     * for the head row; asking for the schedule's row closes the circle. */
    bool waits;
    TRY_WAIT_UNTIL(waits,
                   pg_ask(watch,
                          "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type ="
                          " 'Lock' AND query LIKE '%event_meta%'") == 1,
                   10000, "the backfill's batch to wait for the head row");
    CHECK(PQsendQuery(other, "SELECT 1 FROM schedules WHERE name = 'again' FOR UPDATE"));
    PGresult *res;
    while ((res = PQgetResult(other)))
        PQclear(res);
    CHECK(pg_run(other, "ROLLBACK"));
    pthread_join(th, NULL);
    CHECK_INT(x.status, 200);
    /* The batch was applied again (else this test shows nothing) ... */
    CHECK(th_metric(&a, "taskmill_store_batch_retries_total") > retries);
    /* ... and says what it did: five slots fired, once each. */
    CHECK_INT(x.fired, 5);
    CHECK_INT(x.skipped, 0);
    CHECK_INT(count_tasks(&a, "/v1/tasks?queue=agq"), 5);
    r = th_http(&a, "GET", "/v1/schedules/again", NULL);
    CHECK_INT(th_int(r->json, "fires"), 5);
    (void)waits;
    PQfinish(other);
    PQfinish(watch);
    th_server_free(&a);
}

/*
 * A due schedule whose row another node holds (here a session of the
 * test's, as a node's long batch would: a replace waiting on a lock, a
 * stalled connection) is passed over by SKIP LOCKED, and looked at again
 * a little later: the writer ran batch after batch at once, hundreds a
 * second, each a transaction on the database, for as long as the row was
 * held. Once it is free the schedule fires again.
 */
static void test_schedule_held_by_another_node_no_spin(void) {
    if (!th_backend_is_pg()) {
        th_skip("a schedule's row held by another node needs PostgreSQL");
        return;
    }
    struct th_server a;
    if (th_server_start(&a, NULL)) {
        th_fail(__FILE__, __LINE__, "the server did not start (log %s/server.log)", a.dir);
        th_server_stop(&a, true);
        return;
    }
    struct th_resp *r = th_http(&a, "POST", "/v1/schedules",
                                "{\"name\":\"held\",\"interval_seconds\":1,\"overlap\":"
                                "\"allow_all\",\"task\":{\"type\":\"hd\",\"queue\":\"hdq\"}}");
    CHECK_INT(r->status, 201);
    WAIT_UNTIL(th_metric(&a, "taskmill_schedule_fires_total") >= 1, 10000,
               "the schedule's first fire");
    PGconn *other = PQconnectdb(a.store);
    CHECK(PQstatus(other) == CONNECTION_OK);
    CHECK(pg_run(other, "BEGIN") &&
          pg_run(other, "SELECT id FROM schedules WHERE name = 'held' FOR UPDATE"));
    long long fires = th_metric(&a, "taskmill_schedule_fires_total");
    /* Its next slot comes due while the row is held. */
    th_sleep_ms(1500);
    long long t0 = th_now_ms(), batches = th_metric(&a, "taskmill_store_batches_total");
    th_sleep_ms(2000);
    long long batches_after = th_metric(&a, "taskmill_store_batches_total");
    long long seconds = (th_now_ms() - t0 + 999) / 1000; /* 2, more on a loaded machine */
    CHECK_INT(th_metric(&a, "taskmill_schedule_fires_total"), fires);
    /* A look every 50 ms at most, and a sweep a second; the spin ran
     * hundreds a second. Counted per second of the window as measured. */
    printf("    %lld batches in %lld s with the row held\n", batches_after - batches, seconds);
    CHECK(batches_after - batches <= 40 * seconds);
    CHECK(pg_run(other, "ROLLBACK"));
    WAIT_UNTIL(th_metric(&a, "taskmill_schedule_fires_total") > fires, 10000,
               "the schedule to fire once its row is free");
    PQfinish(other);
    th_server_free(&a);
}

/* An every-second schedule `name` made on node `on`, with no catch-up
 * window, fired by the nodes a, b and c until 12 runs, then paused: each
 * slot fired once, every second from the first to the last, none missed. */
static void skew_schedule(struct th_server *on, struct th_server *a, struct th_server *b,
                          struct th_server *c, const char *name) {
    struct th_resp *r = th_http(on, "POST", "/v1/schedules",
                                "{\"name\":\"%s\",\"cron\":\"* * * * * *\",\"overlap\":"
                                "\"allow_all\",\"catchup_seconds\":0,\"task\":{\"type\":\"k\","
                                "\"queue\":\"%s-q\"}}",
                                name, name);
    CHECK_INT(r->status, 201);
    char id[33] = "", path[96], list[128];
    snprintf(id, sizeof id, "%s", th_str(r->json, "id"));
    bool fired = false;
    TRY_WAIT_UNTIL(fired, fires_at_least(a, id, 0, 12), 30000, "12 runs of '%s'", name);
    snprintf(path, sizeof path, "/v1/schedules/%s/pause", name);
    th_http(a, "POST", path, NULL);
    long n = 0, created = 0, tasks = -1;
    bool dup = true, still = false;
    snprintf(list, sizeof list, "/v1/tasks?queue=%s-q&limit=1000", name);
    TRY_WAIT_UNTIL(still, fires_and_tasks(b, id, c, list, &n, &created, &dup, &tasks), 10000,
                   "the fires of '%s' to stand still once it is paused", name);
    static int64_t slots[1000];
    size_t k = slots_fired(a, id, slots, 1000); /* oldest first */
    size_t gaps = 0;
    for (size_t i = 1; i < k; i++)
        if (slots[i] - slots[i - 1] != 1000) gaps++;
    snprintf(path, sizeof path, "/v1/schedules/%s", name);
    r = th_http(a, "GET", path, NULL);
    long long missed = th_int(r->json, "missed");
    printf("    '%s': %zu slots fired, %lld missed\n", name, k, missed);
    CHECK(!dup);
    CHECK(created >= 12);
    CHECK_INT(tasks, created);
    CHECK_INT((long long)k, n);
    CHECK_INT(gaps, 0); /* every second from the first slot to the last */
    CHECK_INT(missed, 0);
    (void)fired;
    (void)still;
}

/*
 * Three nodes on one database whose clocks differ: one on time, one 5 s
 * ahead, one 5 s behind (libfaketime). An every-second schedule made on
 * the one on time, and another made on the one behind, with no catch-up
 * window, fires each slot once,
 * whichever node comes first (the one ahead, mostly), and none is left
 * out: the slots fired are every second from the first to the last, each
 * with its own task, none counted missed. The node ahead found the others'
 * on-time slots late by its clock, and counted them missed: never fired.
 */
static void test_nodes_with_clocks_apart(void) {
    const char *lib = "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1";
    if (!th_backend_is_pg()) {
        th_skip("several nodes on one database need PostgreSQL");
        return;
    }
    if (access(lib, R_OK) != 0) {
        th_fail(__FILE__, __LINE__, "%s is missing: scripts/deps.sh --test installs faketime", lib);
        return;
    }
    struct th_server a, b, c;
    if (th_server_start(&a, NULL)) {
        th_fail(__FILE__, __LINE__, "node A did not start (log %s/server.log)", a.dir);
        th_server_stop(&a, true);
        return;
    }
    th_fake_clock("+5s");
    int rc = th_server_start_peer(&b, &a, NULL);
    th_fake_clock(NULL);
    if (rc) {
        th_server_free(&a);
        return;
    }
    th_fake_clock("-5s");
    rc = th_server_start_peer(&c, &a, NULL);
    th_fake_clock(NULL);
    if (rc) {
        th_server_free(&b);
        th_server_free(&a);
        return;
    }
    /* Made on the node on time, then on the node behind: its cursor
     * started 5 s in the others' past, and they found its first slots late
     * (missed, with no catch-up window). */
    skew_schedule(&a, &a, &b, &c, "skew");
    skew_schedule(&c, &a, &b, &c, "skewc");
    th_server_free(&c);
    th_server_free(&b);
    th_server_free(&a);
}

static void test_two_nodes(void) {
    struct th_server a, b;
    if (!th_backend_is_pg()) {
        th_skip("two nodes on one database need PostgreSQL");
        return;
    }
    CHECK(th_server_start(&a, NULL) == 0);
    if (th_server_start_peer(&b, &a, NULL)) {
        th_server_free(&a);
        return;
    }
    struct th_resp *r = th_http(&a, "POST", "/v1/schedules",
                                "{\"name\":\"both\",\"cron\":\"* * * * * *\",\"overlap\":"
                                "\"allow_all\",\"task\":{\"type\":\"b\",\"queue\":\"2nq\"}}");
    char id[33] = "";
    if (r->status == 201) snprintf(id, sizeof id, "%s", th_str(r->json, "id"));
    bool fired = false;
    if (id[0])
        TRY_WAIT_UNTIL(fired, fires_at_least(&b, id, 0, 3), 20000,
                       "3 runs of 'both' between the two nodes");
    th_http(&b, "POST", "/v1/schedules/both/pause", NULL);
    long n = 0, created = 0, tasks = -1;
    bool dup = true, still;
    TRY_WAIT_UNTIL(
        still,
        fires_and_tasks(&b, id, &a, "/v1/tasks?queue=2nq&limit=1000", &n, &created, &dup, &tasks),
        10000, "the fires of 'both' to stand still once it is paused");
    th_server_free(&b);
    th_server_free(&a);
    CHECK(id[0]);
    CHECK(!dup);
    CHECK(created >= 3);
    CHECK_INT(tasks, created);
}

/* Whether s's server.log holds `text`. */
static bool log_has(const struct th_server *s, const char *text) {
    char path[400], line[1024];
    snprintf(path, sizeof path, "%s/server.log", s->dir);
    FILE *f = fopen(path, "r");
    bool found = false;
    while (f && !found && fgets(line, sizeof line, f))
        found = strstr(line, text) != NULL;
    if (f) fclose(f);
    return found;
}

/*
 * A rolling upgrade: a node that cannot read a schedule (here its zone is
 * not in that node's TZDIR, as a zone or a field only newer nodes know)
 * leaves it to the node that can, which fires every slot. It used to take
 * the due schedule now and then, write its error and put next_at a minute
 * on, for every node: a minute of slots missed. (A catch-up window of 5 s:
 * a slot the loaded test machine fires a second late is not counted
 * missed, one held back a minute is.)
 */
static void unreadable_on_one_node(const char *b_clock) {
    struct th_server a, b;
    if (!th_backend_is_pg()) {
        th_skip("two nodes on one database need PostgreSQL");
        return;
    }
    char dir[256];
    CHECK(zone_dir_make(dir, NULL)); /* no America/New_York there */
    if (th_server_start(&a, NULL)) {
        zone_dir_remove(dir);
        CHECK(false);
    }
    setenv("TZDIR", dir, 1);
    th_fake_clock(b_clock);
    int peer = th_server_start_peer(&b, &a, NULL);
    th_fake_clock(NULL);
    unsetenv("TZDIR");
    if (peer) {
        th_server_free(&a);
        zone_dir_remove(dir);
        return;
    }
    struct th_resp *r = th_http(&a, "POST", "/v1/schedules",
                                "{\"name\":\"half\",\"cron\":\"* * * * * *\",\"timezone\":"
                                "\"America/New_York\",\"catchup_seconds\":5,\"overlap\":"
                                "\"allow_all\",\"task\":{\"type\":\"h\",\"queue\":\"hq\"}}");
    char id[33] = "";
    if (r->status == 201) snprintf(id, sizeof id, "%s", th_str(r->json, "id"));
    bool fired = false, met = false;
    if (id[0])
        TRY_WAIT_UNTIL(fired, fires_at_least(&a, id, 10, 10), 30000,
                       "10 runs of 'half', fired by the node that reads it");
    if (fired)
        TRY_WAIT_UNTIL(met, log_has(&b, "cannot be read"), 20000,
                       "the other node to have met 'half' and not read it");
    th_http(&a, "POST", "/v1/schedules/half/pause", NULL);
    r = th_http(&a, "GET", "/v1/schedules/half", NULL);
    long missed = th_int(r->json, "missed");
    const char *outcome = th_str(r->json, "last_outcome");
    bool errored = outcome && strcmp(outcome, "error") == 0;
    int64_t slots[200];
    size_t n = id[0] ? slots_fired(&a, id, slots, 200) : 0;
    size_t gaps = 0;
    for (size_t i = 1; i < n; i++)
        if (slots[i] != slots[i - 1] + 1000) gaps++;
    th_server_free(&b);
    th_server_free(&a);
    zone_dir_remove(dir);
    CHECK(id[0]);
    CHECK(fired);
    CHECK(met);
    CHECK_INT(missed, 0);
    CHECK(!errored);
    CHECK_INT(gaps, 0);
}

static void test_unreadable_on_one_node_fires_on_the_other(void) {
    unreadable_on_one_node(NULL);
}

/* The same with the node that cannot read it 15 s ahead of the others:
 * its grace is judged on the database's clock. On its own it was over as
 * soon as the schedule was due, and the node wrote its error and a minute
 * on (fired 0 of 10). */
static void test_unreadable_on_a_node_ahead(void) {
    unreadable_on_one_node("+15s");
}

int main(int argc, char **argv) {
    static const struct th_test tests[] = {
        {"definitions: create, name taken, bad input, launch, replace, delete", test_definitions},
        {"a definition's type and texts are checked as a task's",
         test_definition_checked_as_a_task},
        {"schedules: bad input named, nothing stored", test_schedule_bad_input},
        {"names: '/', '%00', over 127 bytes and an id's shape refused, the rest reached by path",
         test_names_are_path_segments},
        {"an interval schedule fires each slot, tasks launched by it", test_interval_fires},
        {"a catch-up window under the firing delay misses no on-time slot",
         test_short_catchup_fires_on_time},
        {"overlap skip, buffer_one and cancel_running; pause with a note, resume, trigger",
         test_overlap_and_pause},
        {"overlap sees every unfinished run: 10 triggered, skip skips, cancel_running cancels all",
         test_overlap_sees_every_run},
        {"a replace without 'paused' keeps the pause and its note", test_replace_keeps_pause},
        {"an admin's replace checks the definition in the schedule's namespace",
         test_replace_checks_own_namespace},
        {"backfill fires each slot once, a definition's params overlaid",
         test_backfill_and_definition},
        {"a trigger that launches nothing: 400 'definition', fire and state agree",
         test_trigger_error_recorded},
        {"'running' lists the runs not finished when read, with no write", test_running_is_current},
        {"jitter delays a fire within its bound", test_jitter},
        {"an interval counts from its creation (start_at null too); a replace keeps it",
         test_interval_anchor},
        {"jitter is per slot: each fires after its own delay, in order, no burst",
         test_jitter_per_slot},
        {"preview across daylight-saving changes (America/New_York)", test_preview_dst},
        {"catch-up after downtime, kill -9 mid-stream: one task per slot", test_catchup_and_kill9},
        {"down for a day under a daily job: missed past the window, each caught up within it",
         test_down_for_a_day},
        {"an unreadable stored schedule: its ops 409 naming why, the batch's submits go on",
         test_unreadable_schedule_fails_alone},
        {"an unreadable stored schedule records its error and is tried again, not dropped",
         test_unreadable_schedule_retried},
        {"a replace keeping the timing, and a pause, keep slots waiting for their jitter",
         test_replace_and_resume_keep_jittered_slots},
        {"two pauses before an owed slot fired: the slots between them fire",
         test_two_pauses_keep_slots_between},
        {"last_error is the last outcome's; null is an absent field; an empty name's rule",
         test_last_error_cleared_and_nulls},
        {"a zone file replaced under a running server is read again (TZDIR)",
         test_zone_file_replaced_is_read_again},
        {"a zone file rewritten with garbage keeps the zone as last read, logged (TZDIR)",
         test_zone_file_garbage_keeps_zone},
        {"two nodes fire each slot once", test_two_nodes},
        {"a node 15 s ahead that cannot read a schedule leaves it to one that can",
         test_unreadable_on_a_node_ahead},
        {"a node that cannot read a schedule leaves it to one that can: every slot on time",
         test_unreadable_on_one_node_fires_on_the_other},
        {"three nodes, clocks 5 s apart: each slot fired once, none left out",
         test_nodes_with_clocks_apart},
        {"a backfill applied again after a deadlock counts its slots once",
         test_backfill_counted_once_when_applied_again},
        {"a due schedule another node holds is looked at again later, not in a spin",
         test_schedule_held_by_another_node_no_spin},
        {NULL, NULL},
    };
    return th_main_server(tests, argc, argv, &srv, NULL);
}
