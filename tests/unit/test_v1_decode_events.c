/*
 * The events and webhooks decoders (src/server/v1_decode_events.c): the
 * query of GET /v1/events and /v1/tasks/{id}/events with Last-Event-ID,
 * and the body of POST /v1/webhooks, with every refusal they make.
 */
#include <stdio.h>
#include <stdlib.h>

#include "../src/server/v1_decode.h"
#include "harness.h"

#define ID0 "0190aaaabbbbccccddddeeeeffff0000"
#define ID1 "0190aaaabbbbccccddddeeeeffff0001"

/* Adds one pair to a fresh query, releases it, and returns the result. */
static int ev_one(bool per_task, const char *key, const char *value, struct tm_error *e) {
    struct events_query q;
    v1_events_query_init(&q, per_task);
    err_clear(e);
    int rc = v1_events_query_add(&q, key, value, e);
    v1_events_query_release(&q);
    return rc;
}

static void test_events_defaults_and_since(void) {
    struct events_query q;
    struct tm_error e;
    v1_events_query_init(&q, false);
    CHECK_INT(q.since, -1);
    CHECK(!q.per_task && !q.filter.phases && !q.filter.kinds && !q.filter.ntask_ids);
    err_clear(&e);
    CHECK_INT(v1_events_query_add(&q, "since", "42", &e), 0);
    CHECK_INT(q.since, 42);
    CHECK_INT(v1_events_query_last_id(&q, NULL, &e), 0);
    CHECK_INT(q.since, 42);
    CHECK_INT(v1_events_query_last_id(&q, "", &e), 0);
    CHECK_INT(q.since, 42);
    CHECK_INT(v1_events_query_last_id(&q, "7", &e), 0);
    CHECK_INT(q.since, 7); /* the reconnection wins */
    CHECK_INT(v1_events_query_last_id(&q, "x7", &e), TM_EINVALID);
    CHECK_STR(e.field, "Last-Event-ID");
    CHECK_INT(v1_events_query_last_id(&q, "-1", &e), TM_EINVALID);
    v1_events_query_release(&q);

    CHECK_INT(ev_one(false, "since", "-1", &e), TM_EINVALID);
    CHECK_STR(e.field, "since");
    CHECK_INT(ev_one(false, "since", "", &e), TM_EINVALID);
    CHECK_INT(ev_one(true, "since", "0", &e), 0);
}

static void test_events_lists(void) {
    struct events_query q;
    struct tm_error e;
    v1_events_query_init(&q, false);
    err_clear(&e);
    CHECK_INT(v1_events_query_add(&q, "phase", "running,completed", &e), 0);
    CHECK_INT(q.filter.phases, (1u << TASK_RUNNING) | (1u << TASK_COMPLETED));
    CHECK_INT(v1_events_query_add(&q, "kind", "task.progress,message", &e), 0);
    CHECK_INT(q.filter.kinds,
              (1u << event_kind_index("task.progress")) | (1u << event_kind_index("message")));
    CHECK_INT(v1_events_query_add(&q, "task_id", ID0 "," ID1, &e), 0);
    CHECK_INT(q.filter.ntask_ids, 2);
    CHECK_STR(q.filter.task_ids[1], ID1);
    CHECK_INT(v1_events_query_add(&q, "queue", "q1", &e), 0);
    /* A second queue is refused (85ab145; the last one won before). */
    CHECK_INT(v1_events_query_add(&q, "queue", "q2", &e), TM_EINVALID);
    CHECK_STR(e.field, "queue");
    CHECK_STR(q.filter.queue, "q1");
    CHECK_INT(v1_events_query_add(&q, "type", "transcode", &e), 0);
    CHECK_STR(q.filter.type, "transcode");
    CHECK(!q.filter.ns);
    v1_events_query_release(&q);

    CHECK_INT(ev_one(false, "phase", "running,,failed", &e), TM_EINVALID);
    CHECK_STR(e.field, "phase");
    CHECK_INT(ev_one(false, "phase", "sleeping", &e), TM_EINVALID);
    CHECK_STR(e.field, "phase");
    CHECK_INT(ev_one(false, "kind", "task.nothing", &e), TM_EINVALID);
    CHECK_STR(e.field, "kind");
    CHECK_INT(ev_one(false, "task_id", "xyz", &e), TM_EINVALID);
    CHECK_STR(e.field, "task_id");
    char longpart[80];
    memset(longpart, 'a', sizeof longpart - 1);
    longpart[sizeof longpart - 1] = '\0';
    CHECK_INT(ev_one(false, "kind", longpart, &e), TM_EINVALID);
    CHECK_INT(ev_one(false, "queue", "", &e), TM_EINVALID);
    char big[300];
    memset(big, 'q', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    CHECK_INT(ev_one(false, "type", big, &e), TM_EINVALID);
    big[256] = '\0';
    CHECK_INT(ev_one(false, "type", big, &e), 0);
    CHECK_INT(ev_one(false, "colour", "red", &e), TM_EINVALID);
    CHECK_STR(e.field, "colour");
}

/* An empty list, or an empty item in one, is refused naming the parameter,
 * on both streams: it must not turn the filter off. */
static void test_events_empty_lists(void) {
    static const struct {
        const char *key, *value;
    } cases[] = {
        {"phase", ""},
        {"phase", ","},
        {"phase", ",running"},
        {"phase", "running,"},
        {"phase", "running,,failed"},
        {"kind", ""},
        {"kind", ","},
        {"kind", ",progress"},
        {"kind", "progress,"},
        {"kind", "progress,,message"},
        {"task_id", ""},
        {"task_id", ","},
        {"task_id", "," ID0},
        {"task_id", ID0 ","},
        {"task_id", ID0 ",," ID1},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        for (int per_task = 0; per_task < 2; per_task++) {
            struct tm_error e;
            int rc = ev_one(per_task, cases[i].key, cases[i].value, &e);
            if (rc != TM_EINVALID || strcmp(e.field, cases[i].key) != 0 || !e.message[0])
                th_fail(__FILE__, __LINE__, "%s %s='%s': rc %d field '%s'",
                        per_task ? "task stream" : "events", cases[i].key, cases[i].value, rc,
                        e.field);
        }
    }
    /* A refused list leaves the filter as it was. */
    struct events_query q;
    struct tm_error e;
    v1_events_query_init(&q, false);
    err_clear(&e);
    CHECK_INT(v1_events_query_add(&q, "phase", "", &e), TM_EINVALID);
    CHECK_INT(v1_events_query_add(&q, "kind", "", &e), TM_EINVALID);
    CHECK_INT(v1_events_query_add(&q, "task_id", "", &e), TM_EINVALID);
    CHECK(!q.filter.phases && !q.filter.kinds && !q.filter.ntask_ids);
    v1_events_query_release(&q);
}

static void test_events_task_id_cap(void) {
    struct events_query q;
    struct tm_error e;
    v1_events_query_init(&q, false);
    err_clear(&e);
    char id[ID_LEN + 1];
    for (int i = 0; i < V1_EVENTS_MAX_TASK_IDS; i++) {
        snprintf(id, sizeof id, "0190aaaabbbbccccddddeeeeffff%04x", i);
        CHECK_INT(v1_events_query_add_task(&q, id, &e), 0);
    }
    CHECK_INT(v1_events_query_add_task(&q, ID0, &e), TM_EINVALID);
    CHECK_INT(q.filter.ntask_ids, V1_EVENTS_MAX_TASK_IDS);
    v1_events_query_release(&q);
}

static void test_events_per_task(void) {
    struct tm_error e;
    CHECK_INT(ev_one(true, "phase", "running", &e), 0);
    CHECK_INT(ev_one(true, "kind", "progress", &e), 0);
    CHECK_INT(ev_one(true, "task_id", ID0, &e), TM_EINVALID);
    CHECK_INT(ev_one(true, "queue", "q", &e), TM_EINVALID);
    CHECK_INT(ev_one(true, "type", "t", &e), TM_EINVALID);
}

/* Decodes text into a fresh webhook; *w must be released by the caller. */
static int wh_decode(const char *text, struct webhook *w, struct tm_error *e) {
    memset(w, 0, sizeof *w);
    err_clear(e);
    json_error_t je;
    json_t *obj = json_loads(text, 0, &je);
    if (!obj) return -1000;
    int rc = v1_decode_webhook(obj, w, e);
    json_decref(obj);
    return rc;
}

static void test_webhook_body(void) {
    struct webhook w;
    struct tm_error e;
    CHECK_INT(wh_decode("{\"url\":\"https://example.com/h\"}", &w, &e), 0);
    CHECK_STR(w.url, "https://example.com/h");
    CHECK_INT(w.events, WEBHOOK_SPAWNED | WEBHOOK_UPDATED | WEBHOOK_COMPLETED | WEBHOOK_FAILED);
    CHECK(w.secret && strlen(w.secret) == ID_LEN); /* generated */
    CHECK(!w.name && !w.ns);
    webhook_release(&w);

    CHECK_INT(wh_decode("{\"url\":\"https://x\",\"secret\":\"0123456789\",\"name\":\"ci\","
                        "\"namespace\":\"acme\",\"events\":[\"task.completed\",\"task.failed\"]}",
                        &w, &e),
              0);
    CHECK_STR(w.secret, "0123456789");
    CHECK_STR(w.name, "ci");
    CHECK_STR(w.ns, "acme");
    CHECK_INT(w.events, WEBHOOK_COMPLETED | WEBHOOK_FAILED);
    webhook_release(&w);
}

static void test_webhook_refused(void) {
    static const struct {
        const char *body, *field;
    } cases[] = {
        {"{}", "url"},
        {"{\"url\":\"\"}", "url"},
        {"{\"url\":42}", "url"},
        {"{\"url\":\"https://x\",\"secret\":\"short\"}", "secret"},
        {"{\"url\":\"https://x\",\"name\":\"\"}", "name"},
        {"{\"url\":\"https://x\",\"namespace\":7}", "namespace"},
        {"{\"url\":\"https://x\",\"namespace\":\"bad ns\"}", "namespace"},
        {"{\"url\":\"https://x\",\"namespace\":\"a/b\\u001b[31m\"}", "namespace"},
        {"{\"url\":\"https://x\",\"events\":[]}", "events"},
        {"{\"url\":\"https://x\",\"events\":\"task.failed\"}", "events"},
        {"{\"url\":\"https://x\",\"events\":[\"task.failed\",\"task.bogus\"]}", "events[1]"},
        {"{\"url\":\"https://x\",\"events\":[1]}", "events[0]"},
        {"{\"url\":\"https://x\",\"colour\":\"red\"}", "colour"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct webhook w;
        struct tm_error e;
        int rc = wh_decode(cases[i].body, &w, &e);
        webhook_release(&w);
        if (rc != TM_EINVALID || strcmp(e.field, cases[i].field) != 0 || !e.message[0])
            th_fail(__FILE__, __LINE__, "%s: rc %d field '%s'", cases[i].body, rc, e.field);
    }
    char body[2200];
    snprintf(body, sizeof body, "{\"url\":\"https://x/%02100d\"}", 0);
    struct webhook w;
    struct tm_error e;
    CHECK_INT(wh_decode(body, &w, &e), TM_EINVALID); /* 2108 bytes */
    webhook_release(&w);
}

int main(int argc, char **argv) {
    static const struct th_test tests[] = {
        {"events_defaults_and_since", test_events_defaults_and_since},
        {"events_lists", test_events_lists},
        {"events_empty_lists", test_events_empty_lists},
        {"events_task_id_cap", test_events_task_id_cap},
        {"events_per_task", test_events_per_task},
        {"webhook_body", test_webhook_body},
        {"webhook_refused", test_webhook_refused},
        {NULL, NULL},
    };
    return th_main(tests, argc, argv);
}
