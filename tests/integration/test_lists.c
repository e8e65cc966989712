/*
 * GET /v1/tasks on both backends: what a list query's parameters may hold
 * and what each refusal looks like (400 naming the parameter, nothing
 * stored changed), and that the two backends answer alike where their
 * SQL differs.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

static struct th_server srv;

/* Everything stored, as text. */
static char *snapshot(void) {
    struct th_resp *r = th_http(&srv, "GET", "/v1/tasks?limit=1000&order=asc", NULL);
    return strdup(r->body ? r->body : "");
}

/* GET path must be 400 invalid_argument naming `field`, and change nothing. */
static void refused(int line, const char *path, const char *field) {
    char *before = snapshot();
    struct th_resp *r = th_http(&srv, "GET", path, NULL);
    const char *code = th_str(r->json, "error.code"), *got = th_str(r->json, "error.field");
    if (r->status != 400)
        th_fail(__FILE__, line, "GET %s: status %ld, want 400: %.200s", path, r->status, r->body);
    else if (!code || strcmp(code, "invalid_argument") != 0)
        th_fail(__FILE__, line, "GET %s: code '%s', want 'invalid_argument'", path, code);
    else if (!got || strcmp(got, field) != 0)
        th_fail(__FILE__, line, "GET %s: field '%s', want '%s'", path, got, field);
    char *after = snapshot();
    if (strcmp(before, after) != 0) th_fail(__FILE__, line, "GET %s changed stored data", path);
    free(before);
    free(after);
}
#define REFUSED(path, field) refused(__LINE__, path, field)

/* The number of tasks GET /v1/tasks?query lists (-1 on any other reply than 200). */
static long long list_count(const char *query) {
    char path[512];
    snprintf(path, sizeof path, "/v1/tasks?%s", query);
    struct th_resp *r = th_http(&srv, "GET", path, NULL);
    if (r->status != 200) return -1;
    return (long long)json_array_size(json_object_get(r->json, "tasks"));
}

/* Submits a task (th_submit); true when it was stored. */
static bool submit(const char *type, const char *extra_json) {
    char *id = th_submit(&srv, type, extra_json);
    free(id);
    return id != NULL;
}

/* The dry-run count of POST /v1/tasks/bulk with filter (JSON object text); -1 on an error. */
static long long bulk_count(const char *filter) {
    struct th_resp *r = th_http(&srv, "POST", "/v1/tasks/bulk",
                                "{\"action\":\"cancel\",\"dry_run\":true,\"filter\":%s}", filter);
    if (r->status != 200) return -1;
    return th_int(r->json, "matched");
}

/* `created_before` and `updated_before` at the epoch itself ask for the
 * tasks before 1970, which are none; 0 is "no bound" in the store's
 * filter, and every task was listed (and counted for a bulk action). */
static void test_before_the_epoch(void) {
    CHECK(submit("ep", "\"queue\":\"epq\""));
    CHECK(submit("ep", "\"queue\":\"epq\""));
    CHECK_INT(list_count("queue=epq"), 2);
    CHECK_INT(list_count("queue=epq&created_after=1970-01-01T00:00:00Z"), 2);
    CHECK_INT(list_count("queue=epq&updated_after=1970-01-01T00:00:00Z"), 2);
    CHECK_INT(list_count("queue=epq&created_before=1970-01-01T00:00:00Z"), 0);
    CHECK_INT(list_count("queue=epq&created_before=1970-01-01T01:00:00%2B01:00"), 0);
    CHECK_INT(list_count("queue=epq&updated_before=1970-01-01T00:00:00.000Z"), 0);
    CHECK_INT(list_count("queue=epq&created_before=1970-01-01T00:00:00.001Z"), 0);
    CHECK_INT(list_count("queue=epq&created_before=9999-12-31T23:59:59.999Z"), 2);
    CHECK_INT(bulk_count("{\"queue\":\"epq\"}"), 2);
    CHECK_INT(bulk_count("{\"queue\":\"epq\",\"created_before\":\"1970-01-01T00:00:00Z\"}"), 0);
    CHECK_INT(bulk_count("{\"queue\":\"epq\",\"updated_before\":\"1970-01-01T00:00:00Z\"}"), 0);
}

/* An empty type, queue or name_prefix matched no task (type and queue
 * are never empty) or every named one, with a 200: a form field sent
 * blank read as a filter that holds. Refused, naming the parameter, as an
 * empty q or namespace is; in the bulk filter too. */
static void test_empty_values(void) {
    CHECK(submit("em", "\"queue\":\"emq\",\"name\":\"n\""));
    REFUSED("/v1/tasks?type=", "type");
    REFUSED("/v1/tasks?queue=", "queue");
    REFUSED("/v1/tasks?queue", "queue");
    REFUSED("/v1/tasks?queue=emq&name_prefix=", "name_prefix");
    struct th_resp *r = th_http(&srv, "POST", "/v1/tasks/bulk",
                                "{\"action\":\"cancel\",\"expected\":1,\"filter\":"
                                "{\"queue\":\"emq\",\"type\":\"\"}}");
    CHECK_INT(r->status, 400);
    CHECK_STR(th_str(r->json, "error.field"), "filter.type");
    CHECK_STR(th_phase(&srv, th_str(th_http(&srv, "GET", "/v1/tasks?queue=emq", NULL)->json,
                                    "tasks.0.id")),
              "pending");
    CHECK_INT(list_count("queue=emq&name_prefix=n"), 1);
}

/* A parameter given twice (queue=a&queue=b) took the last value and
 * dropped the first, with a 200: a client meaning "a or b" got b alone.
 * Refused naming it; phase may repeat, its lists adding up. */
static void test_repeated_parameters(void) {
    CHECK(submit("rp", "\"queue\":\"rpa\""));
    CHECK(submit("rp", "\"queue\":\"rpb\""));
    REFUSED("/v1/tasks?queue=rpa&queue=rpb", "queue");
    REFUSED("/v1/tasks?type=rp&queue=rpa&type=rp", "type");
    REFUSED("/v1/tasks?type=rp&limit=1&limit=1000", "limit");
    REFUSED("/v1/tasks?type=rp&order=asc&order=desc", "order");
    REFUSED(
        "/v1/tasks?type=rp&created_after=2020-01-01T00:00:00Z&created_after=2021-01-01T00:00:00Z",
        "created_after");
    CHECK_INT(list_count("type=rp&phase=running&phase=pending"), 2);
    CHECK_INT(list_count("type=rp&phase=running&phase=failed"), 0);
}

/*
 * Walks GET /v1/tasks?query with cursors, `limit` a page, into ids[]
 * (at most max); returns how many came, or -1 on an error reply or when
 * an id repeats or breaks the order (ascending when asc).
 */
static int walk(const char *query, int limit, bool asc, char (*ids)[33], int max) {
    char cursor[33] = "";
    int n = 0;
    for (int pages = 0; pages <= max + 1; pages++) {
        char path[512];
        snprintf(path, sizeof path, "/v1/tasks?%s&order=%s&limit=%d%s%s", query,
                 asc ? "asc" : "desc", limit, cursor[0] ? "&cursor=" : "", cursor);
        struct th_resp *r = th_http(&srv, "GET", path, NULL);
        if (r->status != 200) return -1;
        json_t *tasks = json_object_get(r->json, "tasks");
        for (size_t i = 0; i < json_array_size(tasks); i++) {
            const char *id = json_string_value(json_object_get(json_array_get(tasks, i), "id"));
            if (!id || n == max) return -1;
            if (n && (asc ? strcmp(ids[n - 1], id) >= 0 : strcmp(ids[n - 1], id) <= 0)) return -1;
            snprintf(ids[n++], sizeof ids[0], "%s", id);
        }
        const char *next = th_str(r->json, "next_cursor");
        if (!next) return n;
        if ((int)json_array_size(tasks) != limit) return -1; /* a short page that goes on */
        snprintf(cursor, sizeof cursor, "%s", next);
    }
    return -1;
}

/* A batch's tasks share one created_at and updated_at millisecond; each
 * walk, by any page size, either order, and through the time-range index
 * (created_after, updated_before), lists each once, in id order. */
static void test_paging_ties(void) {
    enum { N = 150 };
    static char body[N * 64 + 64];
    size_t at = (size_t)snprintf(body, sizeof body, "{\"tasks\":[");
    for (int i = 0; i < N; i++)
        at += (size_t)snprintf(body + at, sizeof body - at,
                               "%s{\"type\":\"tie\",\"queue\":\"tieq\"}", i ? "," : "");
    snprintf(body + at, sizeof body - at, "]}");
    struct th_resp *r = th_http(&srv, "POST", "/v1/tasks/batch", "%s", body);
    CHECK_INT(r->status, 201);
    CHECK_STR(th_str(r->json, "tasks.0.created_at"), th_str(r->json, "tasks.149.created_at"));
    static char ids[N + 1][33];
    static const char *const queries[] = {
        "queue=tieq",
        "queue=tieq&created_after=2020-01-01T00:00:00Z",
        "queue=tieq&updated_before=9999-01-01T00:00:00Z",
        "type=tie&phase=pending",
    };
    static const int limits[] = {1, 7, 149, 150, 1000};
    for (size_t q = 0; q < sizeof queries / sizeof queries[0]; q++)
        for (size_t l = 0; l < sizeof limits / sizeof limits[0]; l++)
            for (int asc = 0; asc < 2; asc++) {
                int n = walk(queries[q], limits[l], asc, ids, N + 1);
                if (n != N)
                    th_fail(__FILE__, __LINE__, "%s limit %d %s: %d tasks, want %d each once",
                            queries[q], limits[l], asc ? "asc" : "desc", n, N);
                if (th_failed()) return;
            }
}

/* Submits 20 tasks to s in two batches of 10; the last batch's status. */
static long submit_twenty(struct th_server *s) {
    struct th_resp *r = NULL;
    for (int i = 0; i < 2; i++) {
        r = th_http(s, "POST", "/v1/tasks/batch",
                    "{\"tasks\":[{\"type\":\"mp\"},{\"type\":\"mp\"},{\"type\":\"mp\"},"
                    "{\"type\":\"mp\"},{\"type\":\"mp\"},{\"type\":\"mp\"},{\"type\":\"mp\"},"
                    "{\"type\":\"mp\"},{\"type\":\"mp\"},{\"type\":\"mp\"}]}");
        if (r->status != 201) break;
    }
    return r->status;
}

/* Under --max-page 10, a list without `limit` took the default 50 and
 * served 20 tasks in one page, past the operator's cap; the default is
 * the cap when the cap is smaller. */
static void test_default_limit_within_max_page(void) {
    struct th_server small;
    CHECK(th_server_start(&small, "--max-page", "10", NULL) == 0);
    long status = submit_twenty(&small);
    struct th_resp *r = th_http(&small, "GET", "/v1/tasks", NULL);
    long list_status = r->status;
    size_t n = json_array_size(json_object_get(r->json, "tasks"));
    bool more = th_str(r->json, "next_cursor") != NULL;
    th_server_free(&small);
    CHECK_INT(status, 201);
    CHECK_INT(list_status, 200);
    CHECK_INT(n, 10);
    CHECK(more);
}

/* SailPoint's and Livepeer's lists took their own caps (250, 1000)
 * whatever --max-page said: under --max-page 10, limit=20 served 20. */
static void test_views_page_within_max_page(void) {
    struct th_server small;
    CHECK(th_server_start(&small, "--max-page", "10", NULL) == 0);
    long status = submit_twenty(&small);
    struct th_resp *r = th_http(&small, "GET", "/beta/task-status?limit=20", NULL);
    long sp_status = r->status;
    size_t sp_n = json_array_size(r->json);
    r = th_http(&small, "GET", "/beta/task-status?limit=20&offset=10", NULL);
    size_t sp_rest = json_array_size(r->json);
    r = th_http(&small, "GET", "/api/task?limit=20", NULL);
    long lp_status = r->status;
    size_t lp_n = json_array_size(r->json);
    r = th_http(&small, "GET", "/api/task?limit=20&cursor=skip10", NULL);
    size_t lp_rest = json_array_size(r->json);
    th_server_free(&small);
    CHECK_INT(status, 201);
    CHECK_INT(sp_status, 200);
    CHECK_INT(sp_n, 10);
    CHECK_INT(sp_rest, 10);
    CHECK_INT(lp_status, 200);
    CHECK_INT(lp_n, 10);
    CHECK_INT(lp_rest, 10);
}

/* The cursor is a position in id order (api.md §7.4): a deleted task's id
 * still is one, and with the other order it serves the other side. */
static void test_cursor_is_a_position(void) {
    char *a = th_submit(&srv, "cp", "\"queue\":\"cpq\"");
    char *b = th_submit(&srv, "cp", "\"queue\":\"cpq\"");
    char *c = th_submit(&srv, "cp", "\"queue\":\"cpq\"");
    bool made = a && b && c;
    char path[160];
    long cancel = 0, del = 0;
    if (made) {
        snprintf(path, sizeof path, "/v1/tasks/%s/cancel", b);
        cancel = th_http(&srv, "POST", path, NULL)->status;
        snprintf(path, sizeof path, "/v1/tasks/%s", b);
        del = th_http(&srv, "DELETE", path, NULL)->status;
    }
    char ids[3][33] = {"", "", ""};
    int asc = -2, desc = -2;
    if (made) {
        snprintf(path, sizeof path, "queue=cpq&cursor=%s", b);
        asc = walk(path, 10, true, ids, 3);
        snprintf(ids[2], sizeof ids[2], "%s", ids[0]);
        desc = walk(path, 10, false, ids, 3);
    }
    bool asc_ok = made && strcmp(ids[2], c) == 0, desc_ok = made && strcmp(ids[0], a) == 0;
    free(a);
    free(b);
    free(c);
    CHECK(made);
    CHECK_INT(cancel, 200);
    CHECK_INT(del, 204);
    CHECK_INT(asc, 1);
    CHECK(asc_ok);
    CHECK_INT(desc, 1);
    CHECK(desc_ok);
}

int main(int argc, char **argv) {
    static const struct th_test tests[] = {
        {"created_before and updated_before the epoch list nothing", test_before_the_epoch},
        {"an empty type, queue or name_prefix is 400", test_empty_values},
        {"a list parameter given twice is 400, but phase", test_repeated_parameters},
        {"tasks of one millisecond page once each, in id order, any size or way", test_paging_ties},
        {"a list's default page is at most --max-page", test_default_limit_within_max_page},
        {"the views' pages are at most --max-page too", test_views_page_within_max_page},
        {"a cursor is a position in id order, a deleted task's id too", test_cursor_is_a_position},
        {NULL, NULL},
    };
    return th_main_server(tests, argc, argv, &srv, NULL);
}
