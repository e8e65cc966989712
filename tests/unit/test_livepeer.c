/*
 * The Livepeer view's pure parts (src/compat/livepeer.c): the projection of
 * each phase to the Task object (which status keys are present, no nulls,
 * the type enum), the error body, and the list query decoder (limit,
 * cursor, filters, order, count) with every refusal it makes.
 */
#include <stdio.h>
#include <stdlib.h>

#include "../src/common/buf.h"
#include "../src/common/filter.h"
#include "../src/common/task.h"
#include "../src/common/task_json.h"
#include "../src/common/xalloc.h"
#include "../src/compat/livepeer.h"
#include "harness.h"

static struct task *lp_task(enum task_phase phase) {
    struct task *t = task_new();
    snprintf(t->id, sizeof t->id, "0190aaaabbbbccccddddeeeeffff0000");
    t->namespace = xstrdup("default");
    t->type = xstrdup("transcode-file");
    t->queue = xstrdup("default");
    t->phase = phase;
    t->created_at = 1700000000000;
    t->updated_at = 1700000000500;
    return t;
}

/* The Task JSON of t, parsed (caller decrefs). */
static json_t *lp_json(const struct task *t, char **text) {
    struct buf b;
    buf_init(&b);
    livepeer_task_write(&b, t);
    json_error_t je;
    json_t *j = json_loads(b.p, 0, &je);
    if (text)
        *text = buf_detach(&b);
    else
        buf_release(&b);
    return j;
}

/* The keys of the status object, in order, joined by commas. */
static void status_keys(json_t *j, char *out, size_t n) {
    out[0] = '\0';
    const char *k;
    json_t *v;
    json_object_foreach(json_object_get(j, "status"), k, v) {
        if (out[0]) strncat(out, ",", n - strlen(out) - 1);
        strncat(out, k, n - strlen(out) - 1);
    }
}

static void test_phase_names(void) {
    CHECK_STR(livepeer_phase_name(TASK_PENDING), "pending");
    CHECK_STR(livepeer_phase_name(TASK_WAITING), "waiting");
    CHECK_STR(livepeer_phase_name(TASK_RUNNING), "running");
    CHECK_STR(livepeer_phase_name(TASK_STOPPING), "running");
    CHECK_STR(livepeer_phase_name(TASK_COMPLETED), "completed");
    CHECK_STR(livepeer_phase_name(TASK_FAILED), "failed");
    CHECK_STR(livepeer_phase_name(TASK_CANCELLED), "cancelled");
}

static void test_type_enum(void) {
    CHECK_STR(livepeer_type_of("upload"), "upload");
    CHECK_STR(livepeer_type_of("export-data"), "export-data");
    CHECK_STR(livepeer_type_of("transcode-file"), "transcode-file");
    CHECK_STR(livepeer_type_of("clip"), "clip");
    CHECK(livepeer_type_of("transcode") == NULL); /* removed from Livepeer's enum */
    CHECK(livepeer_type_of("Upload") == NULL);
    CHECK(livepeer_type_of("image.resize") == NULL);
    CHECK(livepeer_type_of(NULL) == NULL);

    struct task *t = lp_task(TASK_PENDING);
    free(t->type);
    t->type = xstrdup("image.resize");
    t->params = xstrdup("{\"upload\":{\"url\":\"x\"}}");
    json_t *j = lp_json(t, NULL);
    CHECK(j);
    CHECK(json_object_get(j, "type") == NULL);
    CHECK(json_object_get(j, "params") == NULL); /* only for Livepeer's own types */
    json_decref(j);
    task_free(t);
}

static void test_status_keys_per_phase(void) {
    static const struct {
        enum task_phase phase;
        bool error, progress;
        const char *keys;
    } cases[] = {
        {TASK_PENDING, false, false, "phase,updatedAt"},
        {TASK_WAITING, false, false, "phase,updatedAt,retries"},
        {TASK_WAITING, true, false, "phase,updatedAt,retries,errorMessage"},
        {TASK_RUNNING, false, false, "phase,updatedAt,retries"},
        {TASK_RUNNING, false, true, "phase,updatedAt,retries,progress"},
        {TASK_STOPPING, false, true, "phase,updatedAt,retries,progress"},
        {TASK_COMPLETED, false, true, "phase,updatedAt"},
        {TASK_FAILED, true, false, "phase,updatedAt,errorMessage,retries"},
        {TASK_FAILED, false, false, "phase,updatedAt,retries"},
        {TASK_CANCELLED, true, false, "phase,updatedAt"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct task *t = lp_task(cases[i].phase);
        if (cases[i].error) t->error = xstrdup("boom");
        if (cases[i].progress) {
            t->progress.ratio = 0.25;
            t->progress.ratio_set = true;
            t->progress.updated_at = 1700000000400;
        }
        t->retries = 2;
        char keys[128];
        json_t *j = lp_json(t, NULL);
        CHECK(j);
        status_keys(j, keys, sizeof keys);
        if (strcmp(keys, cases[i].keys) != 0)
            th_fail(__FILE__, __LINE__, "case %zu: '%s' != '%s'", i, keys, cases[i].keys);
        CHECK_INT(json_integer_value(json_object_get(json_object_get(j, "status"), "updatedAt")),
                  1700000000500);
        if (cases[i].progress && cases[i].phase != TASK_COMPLETED) {
            json_t *p = json_object_get(json_object_get(j, "status"), "progress");
            CHECK(json_is_number(p) && json_number_value(p) == 0.25);
        }
        json_decref(j);
        task_free(t);
    }
}

static void test_task_object_exact(void) {
    struct task *t = lp_task(TASK_COMPLETED);
    t->scheduled_at = 1700000000100;
    t->params = xstrdup("{\"transcode-file\":{\"input\":{\"url\":\"s3://in\"}}}");
    t->result = xstrdup("{\"export\":{\"ipfs\":{\"videoFileCid\":\"Qm\"}}}");
    char *text = NULL;
    json_t *j = lp_json(t, &text);
    CHECK(j);
    CHECK_STR(text,
              "{\"id\":\"0190aaaabbbbccccddddeeeeffff0000\",\"type\":\"transcode-file\","
              "\"createdAt\":1700000000000,\"scheduledAt\":1700000000100,"
              "\"projectId\":\"default\","
              "\"params\":{\"transcode-file\":{\"input\":{\"url\":\"s3://in\"}}},"
              "\"status\":{\"phase\":\"completed\",\"updatedAt\":1700000000500},"
              "\"output\":{\"export\":{\"ipfs\":{\"videoFileCid\":\"Qm\"}}}}");
    free(text);
    json_decref(j);
    task_free(t);
}

/* The webhook snapshot path (from v1 JSON) writes what the view writes. */
static void test_from_v1_agrees(void) {
    for (int p = 0; p < TASK_PHASE_COUNT; p++) {
        for (int variant = 0; variant < 3; variant++) {
            struct task *t = lp_task((enum task_phase)p);
            if (variant >= 1) {
                t->error = xstrdup("upload \"x\" failed");
                t->retries = 1;
                t->scheduled_at = 1700000000300;
                t->params = xstrdup("{\"transcode-file\":{\"profiles\":[]}}");
                t->result = xstrdup("{\"export\":{}}");
            }
            if (variant == 1) {
                t->progress.ratio = 1.0 / 3.0;
                t->progress.ratio_set = true;
                t->progress.updated_at = 1700000000400;
            }
            if (variant == 2) {
                t->progress.processed = 1;
                t->progress.pending = 3;
                t->progress.updated_at = 1700000000400;
                free(t->type);
                t->type = xstrdup("nope");
            }
            struct buf direct, v1, via;
            buf_init(&direct);
            buf_init(&v1);
            buf_init(&via);
            livepeer_task_write(&direct, t);
            task_json_write(&v1, t);
            livepeer_task_write_v1(&via, v1.p);
            if (strcmp(direct.p, via.p) != 0)
                th_fail(__FILE__, __LINE__, "phase %d variant %d:\n  %s\n  %s", p, variant,
                        direct.p, via.p);
            buf_release(&direct);
            buf_release(&v1);
            buf_release(&via);
            task_free(t);
            if (th_failed()) return;
        }
    }
    struct buf b;
    buf_init(&b);
    livepeer_task_write_v1(&b, "{\"id\":\"short\",\"phase\":\"running\"}");
    CHECK_STR(b.p, "null");
    buf_clear(&b);
    livepeer_task_write_v1(&b, NULL);
    CHECK_STR(b.p, "null");
    buf_release(&b);
}

static void test_error_body(void) {
    struct tm_error e;
    err_set(&e, TM_ENOT_FOUND, "", "not found");
    struct buf b;
    buf_init(&b);
    livepeer_error_write(&b, 404, &e);
    CHECK_STR(b.p, "{\"errors\":[\"not found\"]}");
    buf_clear(&b);
    err_set(&e, TM_EINVALID, "x", "say \"hi\"");
    livepeer_error_write(&b, 400, &e);
    CHECK_STR(b.p, "{\"errors\":[\"say \\\"hi\\\"\"]}");
    buf_release(&b);
}

/* A message that quotes the client with "%.Ns" can end in half a
 * character; the body stays UTF-8 (the cut byte becomes '?'). */
static void test_error_body_utf8(void) {
    struct tm_error e;
    err_set(&e, TM_EINVALID, "cursor", "bad '%.4s'", "abc\xc3\xa9");
    struct buf b;
    buf_init(&b);
    livepeer_error_write(&b, 400, &e);
    CHECK_STR(b.p, "{\"errors\":[\"bad 'abc?'\"]}");
    buf_clear(&b);
    err_set(&e, TM_EINVALID, "", "x \xff\x80 \xed\xa0\x80 \xc0\xaf \xc3\xa9 \xf0\x9f\x98\x80");
    livepeer_error_write(&b, 400, &e);
    CHECK_STR(b.p, "{\"errors\":[\"x ?? ??? ?? \xc3\xa9 \xf0\x9f\x98\x80\"]}");
    buf_release(&b);
}

/* Decodes key=value pairs; returns the error code (0 on success). */
static int lp_decode(struct livepeer_query *q, struct tm_error *e, const char *key,
                     const char *value) {
    livepeer_query_init(q);
    err_clear(e);
    return livepeer_query_add(q, key, value, e);
}

static void test_limit(void) {
    struct livepeer_query q;
    struct tm_error e;
    livepeer_query_init(&q);
    CHECK_INT(q.limit, 20);
    CHECK_INT(lp_decode(&q, &e, "limit", "1"), 0);
    CHECK_INT(q.limit, 1);
    CHECK_INT(lp_decode(&q, &e, "limit", "1000"), 0);
    CHECK_INT(q.limit, 1000);
    CHECK_INT(lp_decode(&q, &e, "limit", "1001"), 0);
    CHECK_INT(q.limit, 1000); /* capped, as Livepeer */
    CHECK_INT(lp_decode(&q, &e, "limit", "99999999999999999999999"), 0);
    CHECK_INT(q.limit, 1000);
    const char *bad[] = {"0", "-1", "abc", "", "20abc", "1.5", " 5"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        CHECK_INT(lp_decode(&q, &e, "limit", bad[i]), TM_EINVALID);
        CHECK_STR(e.field, "limit");
    }
}

static void test_cursor(void) {
    struct livepeer_query q;
    struct tm_error e;
    CHECK_INT(lp_decode(&q, &e, "cursor", "skip40"), 0);
    CHECK_INT(q.skip, 40);
    CHECK_INT(lp_decode(&q, &e, "cursor", "skip0"), 0);
    CHECK_INT(q.skip, 0);
    CHECK_INT(lp_decode(&q, &e, "cursor", ""), 0);
    CHECK_INT(q.skip, 0);
    const char *bad[] = {"skip",
                         "skip-1",
                         "skipx",
                         "undefined",
                         "0190aaaabbbbccccddddeeeeffff0000",
                         "skip99999999999",
                         "SKIP5"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        CHECK_INT(lp_decode(&q, &e, "cursor", bad[i]), TM_EINVALID);
        CHECK(strstr(e.message, "error parsing cursor") == e.message);
    }
}

/* Each argument the view reads comes once; the others may repeat. */
static void test_argument_twice(void) {
    static const char *const keys[][2] = {{"limit", "5"}, {"cursor", "skip1"}, {"filters", "[]"}};
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        struct livepeer_query q;
        struct tm_error e;
        CHECK_INT(lp_decode(&q, &e, keys[i][0], keys[i][1]), 0);
        CHECK_INT(livepeer_query_add(&q, "all", "1", &e), 0);
        CHECK_INT(livepeer_query_add(&q, "all", "1", &e), 0);
        CHECK_INT(livepeer_query_add(&q, keys[i][0], keys[i][1], &e), TM_EINVALID);
        CHECK_STR(e.field, keys[i][0]);
        CHECK(strstr(e.message, "is given more than once") != NULL);
    }
    /* A repeated order or count is Livepeer's: its values joined with ','
     * (two orders are one of two keys; two counts, even empty, are ","). */
    struct livepeer_query q;
    struct tm_error e;
    CHECK_INT(lp_decode(&q, &e, "order", "name-true"), 0);
    CHECK_INT(livepeer_query_add(&q, "order", "id-false", &e), 0);
    CHECK_INT(q.norder, 2);
    CHECK_INT(q.order[0].field, LIVEPEER_F_NAME);
    CHECK(q.order[0].desc);
    CHECK_INT(q.order[1].field, LIVEPEER_F_ID);
    CHECK(!q.order[1].desc);
    CHECK_INT(lp_decode(&q, &e, "count", ""), 0);
    CHECK(!q.count);
    CHECK_INT(livepeer_query_add(&q, "count", "", &e), 0);
    CHECK(q.count);
}

/* The filter tree of a filters value, formatted (static buffer). */
static const char *lp_expr(const char *filters) {
    static char out[512];
    struct livepeer_query q;
    struct tm_error e;
    if (lp_decode(&q, &e, "filters", filters)) {
        snprintf(out, sizeof out, "ERR %s", e.message);
        return out;
    }
    struct filter_expr *x = livepeer_query_expr(&q);
    struct buf b;
    buf_init(&b);
    filter_expr_format(&b, x);
    snprintf(out, sizeof out, "%s", b.p);
    buf_release(&b);
    filter_expr_free(x);
    return out;
}

static void test_filters(void) {
    CHECK_STR(lp_expr("[]"), "()");
    CHECK_STR(lp_expr(""), "()");
    CHECK_STR(lp_expr("[{\"id\":\"id\",\"value\":\"abc\"}]"), "(eq id \"abc\")");
    CHECK_STR(lp_expr("[{\"id\":\"name\",\"value\":\"Clip\"}]"), "(co name \"Clip\")");
    CHECK_STR(lp_expr("[{\"id\":\"type\",\"value\":\"clip\"}]"), "(eq type \"clip\")");
    CHECK_STR(lp_expr("[{\"id\":\"createdAt\",\"value\":1700000000000}]"),
              "(eq createdAt @\"2023-11-14T22:13:20.000Z\")");
    CHECK_STR(
        lp_expr("[{\"id\":\"updatedAt\",\"value\":{\"gte\":1700000000000,\"lt\":1700000001000}}]"),
        "(and (ge updatedAt @\"2023-11-14T22:13:20.000Z\") (lt updatedAt "
        "@\"2023-11-14T22:13:21.000Z\"))");
    CHECK_STR(
        lp_expr(
            "[{\"id\":\"type\",\"value\":\"clip\"},{\"id\":\"createdAt\",\"value\":{\"gt\":0}}]"),
        "(and (eq type \"clip\") (gt createdAt @null))");
    /* Twice URL-encoded, as Livepeer decodes it once more. */
    CHECK_STR(lp_expr("%5B%7B%22id%22%3A%22type%22%2C%22value%22%3A%22clip%22%7D%5D"),
              "(eq type \"clip\")");
    /* projectId selects the namespace, not a tree leaf. */
    CHECK_STR(lp_expr("[{\"id\":\"projectId\",\"value\":\"default\"}]"), "()");
    struct livepeer_query q;
    struct tm_error e;
    bool conflict;
    CHECK_INT(
        lp_decode(
            &q, &e, "filters",
            "[{\"id\":\"projectId\",\"value\":\"a\"},{\"id\":\"projectId\",\"value\":\"b\"}]"),
        0);
    CHECK_STR(livepeer_query_project(&q, &conflict), "b");
    CHECK(conflict);
}

static void test_filters_refused(void) {
    static const struct {
        const char *in, *msg;
    } bad[] = {
        {"{", "error parsing filters: not valid JSON"},
        {"{\"id\":\"type\",\"value\":\"clip\"}", "error parsing filters: must be an array"},
        {"[1]", "error parsing filters: each filter must be an object"},
        {"[{\"value\":\"x\"}]", "error parsing filters: filter \"id\" must be a string"},
        {"[{\"id\":\"type\"}]", "error parsing filters: missing filter value for id \"type\""},
        {"[{\"id\":\"colour\",\"value\":\"x\"}]",
         "error parsing filters: unknown field: \"colour\""},
        {"[{\"id\":\"userId\",\"value\":\"x\"}]",
         "error parsing filters: field \"userId\" is not supported"},
        {"[{\"id\":\"type\",\"value\":5}]", "error parsing filters: expected a string value"},
        {"[{\"id\":\"createdAt\",\"value\":\"yesterday\"}]",
         "error parsing filters: expected a number"},
        {"[{\"id\":\"createdAt\",\"value\":{\"near\":5}}]",
         "error parsing filters: unknown comparison: \"near\""},
        {"[[[[[[1]]]]]]", "error parsing filters: nested too deeply"},
        {"[{\"id\":\"type\",\"value\":\"a\",\"value\":\"b\"}]",
         "error parsing filters: not valid JSON"},
        {"%ZZ", "error parsing filters: bad %-escape"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        const char *got = lp_expr(bad[i].in);
        if (strncmp(got, "ERR ", 4) != 0 || strstr(got + 4, bad[i].msg) != got + 4)
            th_fail(__FILE__, __LINE__, "filters %s: got '%s', want '%s'", bad[i].in, got,
                    bad[i].msg);
    }
    /* More conditions than fit. */
    char many[2048] = "[";
    for (int i = 0; i <= LIVEPEER_FILTERS_MAX; i++)
        snprintf(many + strlen(many), sizeof many - strlen(many),
                 "%s{\"id\":\"type\",\"value\":\"x\"}", i ? "," : "");
    strcat(many, "]");
    CHECK(strstr(lp_expr(many), "more than 16 conditions"));
}

static void test_order_and_count(void) {
    struct livepeer_query q;
    struct tm_error e;
    struct livepeer_sort s[LIVEPEER_ORDER_MAX];
    livepeer_query_init(&q);
    CHECK_INT(livepeer_query_order(&q, s), 2);
    CHECK(s[0].field == LIVEPEER_F_UPDATED_AT && s[0].desc);
    CHECK(s[1].field == LIVEPEER_F_CREATED_AT && s[1].desc);
    CHECK_INT(lp_decode(&q, &e, "order", "createdAt-false,name-true"), 0);
    CHECK_INT(livepeer_query_order(&q, s), 2);
    CHECK(s[0].field == LIVEPEER_F_CREATED_AT && !s[0].desc);
    CHECK(s[1].field == LIVEPEER_F_NAME && s[1].desc);
    /* Unknown fields and other shapes are skipped, as Livepeer does. */
    CHECK_INT(lp_decode(&q, &e, "order", "user.email-true,bogus,id-true-x,type-TRUE"), 0);
    CHECK_INT(livepeer_query_order(&q, s), 1);
    CHECK(s[0].field == LIVEPEER_F_TYPE && !s[0].desc);
    CHECK_INT(lp_decode(&q, &e, "order", "nothing-true"), 0);
    CHECK_INT(livepeer_query_order(&q, s), 2); /* nothing usable: the default */

    CHECK_INT(lp_decode(&q, &e, "count", "1"), 0);
    CHECK(q.count);
    CHECK_INT(lp_decode(&q, &e, "count", "false"), 0);
    CHECK(q.count); /* any non-empty value, as a JavaScript string */
    CHECK_INT(lp_decode(&q, &e, "count", ""), 0);
    CHECK(!q.count);
    CHECK_INT(lp_decode(&q, &e, "allUsers", "true"), 0); /* ignored */
}

int main(int argc, char **argv) {
    static const struct th_test tests[] = {
        {"phase_names", test_phase_names},
        {"type_enum", test_type_enum},
        {"status_keys_per_phase", test_status_keys_per_phase},
        {"task_object_exact", test_task_object_exact},
        {"from_v1_agrees", test_from_v1_agrees},
        {"error_body", test_error_body},
        {"error_body_utf8", test_error_body_utf8},
        {"limit", test_limit},
        {"cursor", test_cursor},
        {"argument_twice", test_argument_twice},
        {"filters", test_filters},
        {"filters_refused", test_filters_refused},
        {"order_and_count", test_order_and_count},
        {NULL, NULL},
    };
    return th_main(tests, argc, argv);
}
