/*
 * The cost of one read is bounded (issue 13, item 2): a list query that
 * runs past --query-timeout-ms is stopped by the backend (SQLite's
 * progress handler, PostgreSQL's statement_timeout) and answered 400
 * query_timeout, and the server goes on serving; a SailPoint filter past
 * its cost bound (terms, substring terms, depth) is a 400 naming the
 * bound before it runs, never a 500. Both backends.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../src/common/buf.h"
#include "harness.h"

static struct th_server srv;

/* 20,000 tasks with 1 KB of params each, in batches of 500. */
static void fill(void) {
    struct buf b;
    buf_init(&b);
    char pad[1001];
    memset(pad, 'p', 1000);
    pad[1000] = '\0';
    for (int batch = 0; batch < 40; batch++) {
        buf_clear(&b);
        buf_puts(&b, "{\"tasks\":[");
        for (int i = 0; i < 500; i++)
            buf_printf(&b, "%s{\"type\":\"cost\",\"queue\":\"costq\",\"params\":{\"p\":\"%s%d\"}}",
                       i ? "," : "", pad, batch * 500 + i);
        buf_puts(&b, "]}");
        const char *h[] = {"Content-Type: application/json", NULL};
        struct th_resp *r = th_http_raw(&srv, "POST", "/v1/tasks/batch", b.p, b.len, h);
        if (r->status != 201) {
            CHECK_INT(r->status, 201);
            break;
        }
    }
    buf_release(&b);
}

static void test_statement_time_limit(void) {
    fill();
    /* A search over every task's params cannot finish in 1 ms. */
    struct th_resp *r = th_http(&srv, "GET", "/v1/tasks?q=no-such-text&limit=10", NULL);
    CHECK_INT(r->status, 400);
    CHECK_STR(th_str(r->json, "error.code"), "query_timeout");
    CHECK(strstr(th_str(r->json, "error.message"), "--query-timeout-ms") != NULL);
    /* The same through a vendor view: its own error shape, the same status. */
    r = th_http(&srv, "GET", "/v2025/task-status?filters=description%20co%20%22zzz%22&count=true",
                NULL);
    CHECK_INT(r->status, 400);
    /* The server goes on: a point read and healthz answer. */
    CHECK_INT(th_http(&srv, "GET", "/healthz", NULL)->status, 200);
    r = th_http(&srv, "GET", "/v1/tasks?queue=costq&limit=1", NULL);
    if (r->status == 200) {
        char path[80];
        snprintf(path, sizeof path, "/v1/tasks/%s", th_str(r->json, "tasks.0.id"));
        CHECK_INT(th_http(&srv, "GET", path, NULL)->status, 200);
    }
}

static void test_filter_cost_bound(void) {
    /* 9 substring terms: over the bound of 8, refused before it runs. */
    struct buf f;
    buf_init(&f);
    buf_puts(&f, "/v2025/task-status?filters=");
    for (int i = 0; i < 9; i++)
        buf_printf(&f, "%sdescription%%20co%%20%%22x%d%%22", i ? "%20or%20" : "", i);
    struct th_resp *r = th_http(&srv, "GET", f.p, NULL);
    CHECK_INT(r->status, 400);
    CHECK(r->body && strstr(r->body, "substring terms"));
    /* 87 equality terms in an 'or' chain: a 400 naming the bound, not a 500. */
    buf_clear(&f);
    buf_puts(&f, "/v2025/task-status?filters=");
    for (int i = 0; i < 87; i++)
        buf_printf(&f, "%suniqueName%%20eq%%20%%22n%d%%22", i ? "%20or%20" : "", i);
    r = th_http(&srv, "GET", f.p, NULL);
    CHECK_INT(r->status, 400);
    CHECK(r->body && strstr(r->body, "terms"));
    buf_release(&f);
}

static const struct th_test tests[] = {
    {"a list past --query-timeout-ms is stopped and answered 400", test_statement_time_limit},
    {"a SailPoint filter past its cost bound is 400 before it runs", test_filter_cost_bound},
    {NULL, NULL},
};

int main(int argc, char **argv) {
    return th_main_server(tests, argc, argv, &srv, "--query-timeout-ms", "1", NULL);
}
