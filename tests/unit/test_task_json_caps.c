/*
 * The size caps of a task's JSON (src/common/task_json.c), pure: the
 * reduced form task_json_write_capped writes past its bound, and the
 * keys and bytes task_merge_attributes refuses, leaving the task as it was.
 */
#include <stdio.h>
#include <stdlib.h>

#include "../src/common/buf.h"
#include "../src/common/task.h"
#include "../src/common/task_json.h"
#include "../src/common/xalloc.h"
#include "harness.h"

static struct task *task_with_params(size_t pad) {
    struct task *t = task_new();
    snprintf(t->id, sizeof t->id, "0123456789abcdef0123456789abcdef");
    t->type = xstrdup("resize");
    t->queue = xstrdup("default");
    t->version = 7;
    char *p = xmalloc(pad + 16);
    int n = snprintf(p, pad + 16, "{\"pad\":\"");
    memset(p + n, 'x', pad);
    snprintf(p + n + pad, 16, "\"}");
    t->params = p;
    t->attributes = xstrdup("{\"k\":1}");
    t->result = xstrdup("[1,2,3]");
    return t;
}

static void test_capped_write(void) {
    struct task *t = task_with_params(10);
    struct buf a, b;
    buf_init(&a);
    buf_init(&b);
    task_json_write(&a, t);
    CHECK(!task_json_write_capped(&b, t, 4096)); /* under the bound: the same bytes */
    CHECK_STR(a.p, b.p);
    CHECK(!task_json_write_capped(&b, t, 0) && b.len == 2 * a.len);
    task_free(t);
    buf_release(&a);
    buf_release(&b);

    t = task_with_params(10000);
    t->error = xstrdup("boom");
    buf_init(&b);
    buf_puts(&b, "prefix:");
    CHECK(task_json_write_capped(&b, t, 4096));
    CHECK(strncmp(b.p, "prefix:", 7) == 0);
    CHECK(b.len - 7 <= 4096 + 32);
    json_t *j = json_loads(b.p + 7, 0, NULL);
    buf_release(&b);
    CHECK(j);
    CHECK(json_is_true(th_get(j, "truncated")));
    CHECK(json_is_object(th_get(j, "params")) && json_object_size(th_get(j, "params")) == 0);
    CHECK(json_is_object(th_get(j, "attributes")) &&
          json_object_size(th_get(j, "attributes")) == 0);
    CHECK(json_is_null(th_get(j, "result")));
    CHECK(json_is_array(th_get(j, "items")) && json_is_array(th_get(j, "messages")));
    CHECK_STR(th_str(j, "error"), "boom");
    CHECK_STR(th_str(j, "type"), "resize");
    CHECK_INT(th_int(j, "version"), 7);
    json_decref(j);
    /* The task is not changed by the reduction. */
    CHECK(strlen(t->params) > 10000 && strcmp(t->attributes, "{\"k\":1}") == 0);

    /* A huge error too: the strings go as well, the rest stays. */
    free(t->error);
    t->error = xmalloc(9001);
    memset(t->error, 'e', 9000);
    t->error[9000] = '\0';
    buf_init(&b);
    CHECK(task_json_write_capped(&b, t, 4096));
    CHECK(b.len <= 4096 + 32);
    j = json_loads(b.p, 0, NULL);
    buf_release(&b);
    CHECK(j);
    CHECK(json_is_null(th_get(j, "error")) && json_is_true(th_get(j, "truncated")));
    CHECK_STR(th_str(j, "id"), "0123456789abcdef0123456789abcdef");
    json_decref(j);
    task_free(t);
}

static void test_attributes_caps(void) {
    struct task *t = task_with_params(1);
    struct tm_error e;
    err_clear(&e);
    json_t *add = json_pack("{s:i,s:i}", "a", 1, "b", 2);
    CHECK_INT(task_merge_attributes(t, add, 3, 1024, &e), 0);
    json_decref(add);
    CHECK_STR(t->attributes, "{\"k\":1,\"a\":1,\"b\":2}");
    /* A fourth key is refused and the task keeps its text. */
    add = json_pack("{s:i}", "c", 3);
    CHECK_INT(task_merge_attributes(t, add, 3, 1024, &e), TM_EINVALID);
    json_decref(add);
    CHECK_STR(e.field, "attributes");
    CHECK_STR(t->attributes, "{\"k\":1,\"a\":1,\"b\":2}");
    /* Deleting one in the same call makes room. */
    add = json_pack("{s:n,s:i}", "k", "c", 3);
    err_clear(&e);
    CHECK_INT(task_merge_attributes(t, add, 3, 1024, &e), 0);
    json_decref(add);
    CHECK_STR(t->attributes, "{\"a\":1,\"b\":2,\"c\":3}");
    /* Bytes. */
    char big[2000];
    memset(big, 'v', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    add = json_pack("{s:s}", "a", big);
    CHECK_INT(task_merge_attributes(t, add, 3, 1024, &e), TM_EINVALID);
    CHECK(strstr(e.message, "bytes") != NULL);
    CHECK_STR(t->attributes, "{\"a\":1,\"b\":2,\"c\":3}");
    err_clear(&e);
    CHECK_INT(task_merge_attributes(t, add, 3, 0, &e), 0); /* 0: no byte bound */
    json_decref(add);
    task_free(t);
}

static const struct th_test tests[] = {
    {"past its bound a task is written reduced and marked", test_capped_write},
    {"attributes are capped in keys and bytes; a refusal changes nothing", test_attributes_caps},
    {NULL, NULL},
};

int main(int argc, char **argv) {
    return th_main(tests, argc, argv);
}
