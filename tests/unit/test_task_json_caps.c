/*
 * The size caps of a task's JSON (src/common/task_json.c), pure: the
 * reduced form task_json_write_capped writes past its bound, and the
 * keys and bytes task_merge_attributes refuses, leaving the task as it was.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
    CHECK(!task_json_write_capped(&b, t, 4096, NULL)); /* under the bound: the same bytes */
    CHECK_STR(a.p, b.p);
    CHECK(!task_json_write_capped(&b, t, 0, NULL) && b.len == 2 * a.len);
    task_free(t);
    buf_release(&a);
    buf_release(&b);

    t = task_with_params(10000);
    t->error = xstrdup("boom");
    buf_init(&b);
    buf_puts(&b, "prefix:");
    CHECK(task_json_write_capped(&b, t, 4096, NULL));
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
    CHECK(task_json_write_capped(&b, t, 4096, NULL));
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

/* n messages of `pad` bytes of parameters each, as one call's array. */
static json_t *messages_of(int n, size_t pad) {
    char *big = xmalloc(pad + 1);
    memset(big, 'p', pad);
    big[pad] = '\0';
    json_t *a = json_array();
    for (int i = 0; i < n; i++)
        json_array_append_new(a, json_pack("{s:s, s:s, s:{s:s}}", "level", "INFO", "text", "m",
                                           "parameters", "pad", big));
    free(big);
    return a;
}

static void test_messages_caps(void) {
    struct task *t = task_with_params(1);
    /* By count: 2000 small messages keep 999 and a first one counting the rest. */
    for (int i = 0; i < 20; i++) {
        json_t *m = messages_of(100, 1);
        task_add_messages(t, m, 1000 + i);
        json_decref(m);
    }
    json_t *all = json_loads(t->messages, 0, NULL);
    CHECK_INT(json_array_size(all), TASK_MAX_MESSAGES);
    CHECK_INT(t->message_count, TASK_MAX_MESSAGES);
    json_t *first = json_array_get(all, 0);
    CHECK_STR(json_string_value(json_object_get(first, "key")), "taskmill.messages_dropped");
    CHECK_INT(json_integer_value(json_object_get(json_object_get(first, "parameters"), "dropped")),
              1001);
    json_decref(all);
    task_free(t);

    /* By bytes: 60 messages of 20 KB hold at most TASK_MESSAGES_MAX_BYTES. */
    t = task_with_params(1);
    for (int i = 0; i < 6; i++) {
        json_t *m = messages_of(10, 20000);
        task_add_messages(t, m, 1000 + i);
        json_decref(m);
    }
    CHECK(strlen(t->messages) <= TASK_MESSAGES_MAX_BYTES);
    all = json_loads(t->messages, 0, NULL);
    first = json_array_get(all, 0);
    int64_t dropped =
        json_integer_value(json_object_get(json_object_get(first, "parameters"), "dropped"));
    CHECK(dropped > 0);
    CHECK_INT(dropped + (int64_t)json_array_size(all) - 1, 60);
    /* The newest is kept, whole. */
    json_t *last = json_array_get(all, json_array_size(all) - 1);
    CHECK_INT(
        strlen(json_string_value(json_object_get(json_object_get(last, "parameters"), "pad"))),
        20000);
    json_decref(all);
    task_free(t);
}

static void test_items_caps(void) {
    struct task *t = task_with_params(1);
    char msg[2001];
    memset(msg, 'i', 2000);
    msg[2000] = '\0';
    int refused_at = -1;
    for (int i = 0; i < 400 && refused_at < 0; i++) {
        char name[32];
        snprintf(name, sizeof name, "item-%d", i);
        json_t *items =
            json_pack("[{s:s, s:f, s:s}]", "name", name, "progress", 0.5, "message", msg);
        char *before = t->items ? xstrdup(t->items) : NULL;
        struct tm_error e;
        err_clear(&e);
        if (task_merge_items(t, items, 1000, &e)) {
            refused_at = i;
            CHECK_STR(e.field, "items");
            CHECK(strstr(e.message, "bytes of 'items'") != NULL);
            CHECK_STR(t->items, before); /* unchanged */
        }
        free(before);
        json_decref(items);
    }
    CHECK(refused_at > 200); /* 2 KB each: about 256 fit in 512 KiB */
    CHECK(strlen(t->items) <= TASK_ITEMS_MAX_BYTES);
    task_free(t);
}

/* The event log's split (task_json_write_at, task_json_join): the part
 * from "phase" on joined to any whole JSON of the task gives it back. */
static void test_split_and_join(void) {
    struct task *t = task_with_params(4);
    free(t->params);
    /* A top-level "phase" key, an escaped quote and `,"phase":` in strings. */
    t->params =
        xstrdup("{\"q\":\"a\\\",\\\"phase\\\":1\",\"phase\":{\"phase\":[\",\\\"phase\\\":\"]}}");
    t->name = xstrdup(",\"phase\":\"name\"");
    struct buf a;
    buf_init(&a);
    size_t at = 0;
    task_json_write_at(&a, t, &at);
    CHECK(at > 0 && strncmp(a.p + at, ",\"phase\":\"pending\"", 18) == 0);
    char *rest = xmalloc(a.len - at + 1);
    rest[0] = '{';
    memcpy(rest + 1, a.p + at + 1, a.len - at);
    CHECK(task_json_is_whole(a.p) && !task_json_is_whole(rest) && !task_json_is_whole(NULL));
    /* The base may be an older state of the task: only its creation keys count. */
    t->phase = TASK_COMPLETED;
    t->version = 99;
    struct buf older;
    buf_init(&older);
    task_json_write(&older, t);
    char *again = task_json_join(older.p, rest, false);
    bool same = again && strcmp(again, a.p) == 0;
    if (!same) th_fail(__FILE__, __LINE__, "joined: %s", again ? again : "(null)");
    free(again);
    /* Asked for, or from a reduced base: marked truncated. */
    char *marked = task_json_join(a.p, rest, true);
    bool ends = marked && strlen(marked) == a.len + 17 &&
                strcmp(marked + a.len - 1, ",\"truncated\":true}") == 0;
    free(marked);
    struct buf reduced;
    buf_init(&reduced);
    CHECK(task_json_write_capped(&reduced, t, 700, &at) && at == 0);
    char *from_reduced = task_json_join(reduced.p, rest, false);
    bool reduced_marked =
        from_reduced && strstr(from_reduced, "\"params\":{},\"phase\":\"pending\"") &&
        strcmp(from_reduced + strlen(from_reduced) - 18, ",\"truncated\":true}") == 0;
    free(from_reduced);
    /* Not a task, or not a part: no join. */
    char *none1 = task_json_join("{\"id\":\"x\"}", rest, false);
    char *none2 = task_json_join(a.p, "\"phase\"", false);
    CHECK(!none1 && !none2);
    free(rest);
    buf_release(&a);
    buf_release(&older);
    buf_release(&reduced);
    task_free(t);
    CHECK(same);
    CHECK(ends);
    CHECK(reduced_marked);
}

static const struct th_test tests[] = {
    {"an event's stored part joins back to the whole task, byte for byte", test_split_and_join},
    {"past its bound a task is written reduced and marked", test_capped_write},
    {"attributes are capped in keys and bytes; a refusal changes nothing", test_attributes_caps},
    {"messages are capped in count and bytes; a first message counts the dropped",
     test_messages_caps},
    {"items are capped in bytes; a refusal changes nothing", test_items_caps},
    {NULL, NULL},
};

int main(int argc, char **argv) {
    return th_main(tests, argc, argv);
}
