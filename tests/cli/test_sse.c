/*
 * The SSE parser libtaskmill's watch reads event streams with
 * (src/client/sse.c): the server's own frames, every line ending, input
 * split at every byte, comments, ids that persist, retry, the BOM, and
 * the size cap. No server: the parser is pure.
 */
#include <stdio.h>
#include <stdlib.h>

#include "client/sse.h"
#include "harness.h"

/* What the callback saw, as one string: `E<event>|<id>|<data>;` or `C<comment>;` per item. */
struct seen {
    char text[4096];
    int events, comments;
};

static void on_item(void *cls, const struct sse_item *it) {
    struct seen *s = cls;
    size_t n = strlen(s->text);
    if (it->kind == SSE_ITEM_EVENT) {
        s->events++;
        snprintf(s->text + n, sizeof s->text - n, "E%s|%s|%.*s;", it->event, it->last_id,
                 (int)it->data_len, it->data);
    } else {
        s->comments++;
        snprintf(s->text + n, sizeof s->text - n, "C%.*s;", (int)it->data_len, it->data);
    }
}

/* Feeds `in` whole, then again split in chunks of every size, and checks each gives `want`. */
static bool parses_to(const char *in, const char *want) {
    size_t len = strlen(in);
    for (size_t chunk = 0; chunk <= len; chunk++) {
        struct sse_parser p;
        sse_parser_init(&p, 0);
        struct seen s = {{0}, 0, 0};
        size_t step = chunk ? chunk : len;
        for (size_t off = 0; off < len; off += step) {
            size_t n = len - off < step ? len - off : step;
            if (sse_parser_feed(&p, in + off, n, on_item, &s)) {
                sse_parser_release(&p);
                return false;
            }
        }
        sse_parser_release(&p);
        if (strcmp(s.text, want) != 0) {
            printf("  chunk %zu: got '%s'\n  want '%s'\n", chunk, s.text, want);
            return false;
        }
        if (len == 0) break;
    }
    return true;
}

static void test_server_frames(void) {
    const char *in =
        ": taskmill events\nretry: 1000\n\n"
        "id: 7\nevent: task.snapshot\ndata: {\"seq\":7,\"version\":1}\n\n"
        ": keep-alive\n\n"
        "id: 9\nevent: task.progress\ndata: {\"seq\":9,\"version\":2}\n\n"
        "id: 1500\nevent: error\ndata: {\"error\":{\"code\":\"events_pruned\"}}\n\n"
        /* A keep-alive that carries the id the stream has passed: no event, a new last id. */
        ": keep-alive\nid: 1800\n\n";
    CHECK(parses_to(in,
                    "Ctaskmill events;"
                    "Etask.snapshot|7|{\"seq\":7,\"version\":1};"
                    "Ckeep-alive;"
                    "Etask.progress|9|{\"seq\":9,\"version\":2};"
                    "Eerror|1500|{\"error\":{\"code\":\"events_pruned\"}};"
                    "Ckeep-alive;"));
    struct sse_parser p;
    sse_parser_init(&p, 0);
    struct seen s = {{0}, 0, 0};
    CHECK_INT(sse_parser_feed(&p, in, strlen(in), on_item, &s), 0);
    CHECK_INT(p.retry_ms, 1000);
    CHECK_STR(p.last_id, "1800");
    CHECK_INT(s.events, 3);
    CHECK_INT(s.comments, 3);
    sse_parser_release(&p);
}

static void test_line_endings(void) {
    CHECK(
        parses_to("data: a\r\n\r\ndata: b\r\rdata: c\n\n", "Emessage||a;Emessage||b;Emessage||c;"));
    /* CR then LF is one line end, even when they arrive apart (parses_to splits everywhere). */
    CHECK(parses_to("data: x\r\ndata: y\r\n\r\n", "Emessage||x\ny;"));
    /* A lone CR at the end of a feed still ends the line. */
    CHECK(parses_to("data: a\r\r", "Emessage||a;"));
}

static void test_fields(void) {
    /* Multi-line data joins with LF; no space after the colon is fine; only one space is eaten. */
    CHECK(parses_to("data:one\ndata:  two\ndata\n\n", "Emessage||one\n two\n;"));
    /* Unknown fields and a field with no colon are ignored; `event` names the type. */
    CHECK(parses_to("foo: bar\nevent: ping\nnocolon\ndata: 1\n\n", "Eping||1;"));
    /* An event without data is not dispatched, and its type does not leak into the next. */
    CHECK(parses_to("event: lost\n\ndata: 2\n\n", "Emessage||2;"));
    /* Nothing after the last blank line is dispatched. */
    CHECK(parses_to("data: 1\n\ndata: half", "Emessage||1;"));
}

static void test_ids(void) {
    /* The id persists; an id with a NUL is ignored; an empty id resets it. */
    CHECK(parses_to("id: 5\ndata: a\n\ndata: b\n\nid\ndata: c\n\n",
                    "Emessage|5|a;Emessage|5|b;Emessage||c;"));
    struct sse_parser p;
    sse_parser_init(&p, 0);
    struct seen s = {{0}, 0, 0};
    static const char nul_id[] = "id: 6\n\nid: 7\0x\ndata: d\n\n";
    CHECK_INT(sse_parser_feed(&p, nul_id, sizeof nul_id - 1, on_item, &s), 0);
    CHECK_STR(s.text, "Emessage|6|d;");
    /* An id-only frame counts at its blank line; an unfinished frame's id does not. */
    CHECK_INT(sse_parser_feed(&p, "id: 8\n\nid: 9\n", 13, on_item, &s), 0);
    CHECK_STR(p.last_id, "8");
    sse_parser_release(&p);
}

static void test_retry_and_bom(void) {
    struct sse_parser p;
    sse_parser_init(&p, 0);
    struct seen s = {{0}, 0, 0};
    CHECK_INT(sse_parser_feed(&p, "retry: 250\nretry: x1\nretry: \n", 29, on_item, &s), 0);
    CHECK_INT(p.retry_ms, 250);
    sse_parser_release(&p);
    CHECK(
        parses_to("\xef\xbb\xbf"
                  "data: bom\n\n",
                  "Emessage||bom;"));
    /* Bytes that only start like a BOM are kept. */
    CHECK(
        parses_to("\xef\xbb"
                  "data: x\n\n",
                  ""));
    CHECK(
        parses_to("\xef"
                  "\n: c\n",
                  "Cc;"));
}

static void test_size_cap(void) {
    struct sse_parser p;
    sse_parser_init(&p, 16);
    struct seen s = {{0}, 0, 0};
    CHECK_INT(sse_parser_feed(&p, "data: 0123456789\n\n", 18, on_item, &s), 0);
    CHECK_INT(s.events, 1);
    /* A line over the cap fails the parser for good. */
    CHECK_INT(sse_parser_feed(&p, "data: 0123456789abcdef", 22, on_item, &s), SSE_ETOOBIG);
    CHECK_INT(sse_parser_feed(&p, "\n\n", 2, on_item, &s), SSE_ETOOBIG);
    sse_parser_release(&p);
    /* So does an event whose data lines add up past it. */
    sse_parser_init(&p, 16);
    CHECK_INT(sse_parser_feed(&p, "data: 12345678\ndata: 12345678\n", 30, on_item, &s),
              SSE_ETOOBIG);
    sse_parser_release(&p);
}

static const struct th_test tests[] = {
    {"the server's frames, split at every byte", test_server_frames},
    {"LF, CR and CRLF line endings", test_line_endings},
    {"data, event, unknown fields, undispatched events", test_fields},
    {"ids persist, NUL ids are ignored, id-only frames", test_ids},
    {"retry and the BOM", test_retry_and_bom},
    {"lines and events are capped", test_size_cap},
    {NULL, NULL},
};

int main(int argc, char **argv) {
    return th_main(tests, argc, argv);
}
