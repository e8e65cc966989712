/*
 * GET /v1/tasks?id_prefix=P: the tasks whose id starts with P, as the CLI
 * resolves a short id (docs/cli.md). Checked on both backends: a batch's
 * ids share all but their last characters, so the prefix must select
 * exactly, not by time; bad prefixes are refused naming the parameter.
 */
#include <stdio.h>
#include <stdlib.h>

#include "harness.h"

static struct th_server srv;

/* The number of tasks GET /v1/tasks?id_prefix=P&... lists (-1 on an error reply). */
static long long list_count(const char *query) {
    char path[256];
    snprintf(path, sizeof path, "/v1/tasks?%s", query);
    struct th_resp *r = th_http(&srv, "GET", path, NULL);
    if (r->status != 200) return -1;
    return (long long)json_array_size(json_object_get(r->json, "tasks"));
}

static void test_prefix_selects_exactly(void) {
    struct th_resp *r =
        th_http(&srv, "POST", "/v1/tasks/batch",
                "{\"tasks\":[{\"type\":\"p\",\"queue\":\"pq\"},"
                "{\"type\":\"p\",\"queue\":\"pq\"},{\"type\":\"p\",\"queue\":\"pq\"}]}");
    CHECK_INT(r->status, 201);
    char ids[3][33];
    for (int i = 0; i < 3; i++) {
        char key[32];
        snprintf(key, sizeof key, "tasks.%d.id", i);
        CHECK(th_str(r->json, key) != NULL);
        snprintf(ids[i], sizeof ids[i], "%s", th_str(r->json, key));
    }
    char q[128];
    for (int i = 0; i < 3; i++) {
        snprintf(q, sizeof q, "id_prefix=%s", ids[i]);
        CHECK_INT(list_count(q), 1);
        snprintf(q, sizeof q, "/v1/tasks?id_prefix=%s", ids[i]);
        r = th_http(&srv, "GET", q, NULL);
        CHECK_STR(th_str(r->json, "tasks.0.id"), ids[i]);
    }
    /* The ids of one batch share their first 30 characters or so: the
     * prefix of all three but the last characters finds each alone. */
    size_t common = 0;
    while (common < 32 && ids[0][common] == ids[2][common])
        common++;
    snprintf(q, sizeof q, "id_prefix=%.*s&queue=pq", (int)common, ids[0]);
    CHECK_INT(list_count(q), 3);
    snprintf(q, sizeof q, "id_prefix=%.1s", ids[0]);
    CHECK(list_count(q) >= 3);
    CHECK_INT(list_count("id_prefix=ffffffffffff"), 0);
    CHECK_INT(list_count("id_prefix=0000"), 0);
}

static void test_prefix_ending_in_nine_and_f(void) {
    /* Walk every length of a real id: each prefix finds the task, and the
     * range stops at the prefix's end whatever its last digit. */
    char *id = th_submit(&srv, "walk", "\"queue\":\"walkq\"");
    CHECK(id != NULL);
    for (size_t n = 1; n <= 32; n++) {
        char q[128];
        snprintf(q, sizeof q, "/v1/tasks?queue=walkq&id_prefix=%.*s", (int)n, id);
        struct th_resp *r = th_http(&srv, "GET", q, NULL);
        CHECK_INT(r->status, 200);
        CHECK_INT(json_array_size(json_object_get(r->json, "tasks")), 1);
        /* The same prefix with its last digit changed matches nothing of walkq. */
        char other[33];
        snprintf(other, sizeof other, "%.*s", (int)n, id);
        other[n - 1] = other[n - 1] == '9'   ? 'a'
                       : other[n - 1] == 'f' ? '0'
                                             : (char)(other[n - 1] + 1);
        snprintf(q, sizeof q, "/v1/tasks?queue=walkq&id_prefix=%s", other);
        r = th_http(&srv, "GET", q, NULL);
        CHECK_INT(r->status, 200);
        CHECK_INT(json_array_size(json_object_get(r->json, "tasks")), 0);
    }
    free(id);
}

static void test_bad_prefix_refused(void) {
    const char *bad[] = {"id_prefix=", "id_prefix=ABC", "id_prefix=xyz", "id_prefix=01%2F",
                         "id_prefix=0123456789abcdef0123456789abcdef0"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char path[128];
        snprintf(path, sizeof path, "/v1/tasks?%s", bad[i]);
        struct th_resp *r = th_http(&srv, "GET", path, NULL);
        CHECK_INT(r->status, 400);
        CHECK_STR(th_str(r->json, "error.field"), "id_prefix");
        CHECK(strstr(th_str(r->json, "error.message"), "'id_prefix'") != NULL);
    }
}

int main(int argc, char **argv) {
    static const struct th_test tests[] = {
        {"prefix_selects_exactly", test_prefix_selects_exactly},
        {"prefix_ending_in_nine_and_f", test_prefix_ending_in_nine_and_f},
        {"bad_prefix_refused", test_bad_prefix_refused},
        {NULL, NULL},
    };
    return th_main_server(tests, argc, argv, &srv, NULL);
}
