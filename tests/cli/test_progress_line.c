/*
 * progress_line_parse, the pure parser of the lines a worker's command
 * prints: every form of docs/cli.md, the edges of each number, and lines
 * that look like protocol lines but are not (they must stay log text).
 */
#include <stdio.h>

#include "cli/progress_line.h"
#include "harness.h"

static struct progress_line pl;

static void parse(const char *s) {
    progress_line_parse(s, strlen(s), &pl);
}

static bool text_is(struct progress_slice sl, const char *want) {
    return sl.n == strlen(want) && memcmp(sl.p, want, sl.n) == 0;
}

static void test_progress_ratio_and_percent(void) {
    parse("progress 0.4 Encoding video\n");
    CHECK_INT(pl.kind, PROGRESS_LINE_PROGRESS);
    CHECK(pl.ratio > 0.3999 && pl.ratio < 0.4001);
    CHECK(text_is(pl.text, "Encoding video"));
    CHECK(pl.error == NULL);
    parse("progress 40%");
    CHECK_INT(pl.kind, PROGRESS_LINE_PROGRESS);
    CHECK(pl.ratio > 0.3999 && pl.ratio < 0.4001);
    CHECK_INT(pl.text.n, 0);
    parse("progress 1");
    CHECK_INT(pl.kind, PROGRESS_LINE_PROGRESS);
    CHECK(pl.ratio == 1.0);
    parse("progress 100%\r\n");
    CHECK(pl.ratio == 1.0);
    parse("progress 0 starting  ");
    CHECK(pl.ratio == 0.0);
    CHECK(text_is(pl.text, "starting"));
    parse("progress 12.5%\tquarter-ish");
    CHECK(pl.ratio > 0.1249 && pl.ratio < 0.1251);
    CHECK(text_is(pl.text, "quarter-ish"));
}

static void test_progress_refused(void) {
    const char *bad[] = {"progress",
                         "progress 1.5",
                         "progress 101%",
                         "progress -0.1",
                         "progress abc",
                         "progress 1e-1",
                         "progress .",
                         "progress 0.4x",
                         "progress %",
                         "progress 4 0%",
                         NULL};
    for (int i = 0; bad[i]; i++) {
        parse(bad[i]);
        if (pl.kind != PROGRESS_LINE_TEXT || !pl.error) {
            th_fail(__FILE__, __LINE__, "'%s' was not refused", bad[i]);
            return;
        }
        CHECK(text_is(pl.text, bad[i]));
    }
    /* Not keywords at all: plain text with no complaint. */
    parse(" progress 0.5");
    CHECK_INT(pl.kind, PROGRESS_LINE_TEXT);
    CHECK(pl.error == NULL);
    parse("progressive 0.5");
    CHECK_INT(pl.kind, PROGRESS_LINE_TEXT);
    CHECK(pl.error == NULL);
    parse("Progress 0.5");
    CHECK_INT(pl.kind, PROGRESS_LINE_TEXT);
    parse("");
    CHECK_INT(pl.kind, PROGRESS_LINE_TEXT);
    CHECK_INT(pl.text.n, 0);
}

static void test_items(void) {
    parse("items 3/10 resizing");
    CHECK_INT(pl.kind, PROGRESS_LINE_ITEMS);
    CHECK_INT(pl.processed, 3);
    CHECK_INT(pl.total, 10);
    CHECK(pl.ratio > 0.2999 && pl.ratio < 0.3001);
    CHECK(text_is(pl.text, "resizing"));
    parse("items 0/0");
    CHECK_INT(pl.kind, PROGRESS_LINE_ITEMS);
    CHECK(pl.ratio == 0);
    const char *bad[] = {"items 11/10",
                         "items 3",
                         "items /10",
                         "items 3/",
                         "items a/b",
                         "items 3/10/2",
                         "items 99999999999999999/99999999999999999",
                         NULL};
    for (int i = 0; bad[i]; i++) {
        parse(bad[i]);
        if (pl.kind != PROGRESS_LINE_TEXT || !pl.error) {
            th_fail(__FILE__, __LINE__, "'%s' was not refused", bad[i]);
            return;
        }
    }
}

static void test_item(void) {
    parse("item a.jpg 0.5 half way");
    CHECK_INT(pl.kind, PROGRESS_LINE_ITEM);
    CHECK(text_is(pl.name, "a.jpg"));
    CHECK(pl.ratio == 0.5);
    CHECK(text_is(pl.text, "half way"));
    parse("item b.png 100%");
    CHECK_INT(pl.kind, PROGRESS_LINE_ITEM);
    CHECK(pl.ratio == 1.0);
    parse("item b.png");
    CHECK_INT(pl.kind, PROGRESS_LINE_TEXT);
    CHECK(pl.error != NULL);
    parse("item");
    CHECK_INT(pl.kind, PROGRESS_LINE_TEXT);
    /* A name the server takes (256 bytes) and one it refuses with the whole heartbeat. */
    char line[400];
    snprintf(
        line, sizeof line, "item %.*s 50%%", 256,
        "nnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnn"
        "nnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnn"
        "nnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnn");
    parse(line);
    CHECK_INT(pl.kind, PROGRESS_LINE_ITEM);
    CHECK_INT(pl.name.n, 256);
    snprintf(
        line, sizeof line, "item x%.*s 50%%", 256,
        "nnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnn"
        "nnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnn"
        "nnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnn");
    parse(line);
    CHECK_INT(pl.kind, PROGRESS_LINE_TEXT);
    CHECK(pl.error != NULL);
}

static void test_message(void) {
    parse("message WARN disk almost full");
    CHECK_INT(pl.kind, PROGRESS_LINE_MESSAGE);
    CHECK_STR(pl.level, "WARN");
    CHECK(text_is(pl.text, "disk almost full"));
    parse("message ERROR x");
    CHECK_STR(pl.level, "ERROR");
    parse("message INFO   spaced  out  ");
    CHECK(text_is(pl.text, "spaced  out"));
    parse("message DEBUG no");
    CHECK_INT(pl.kind, PROGRESS_LINE_TEXT);
    CHECK(pl.error != NULL);
    parse("message INFO");
    CHECK_INT(pl.kind, PROGRESS_LINE_TEXT);
    parse("message info lower");
    CHECK_INT(pl.kind, PROGRESS_LINE_TEXT);
}

static void test_result_and_attribute(void) {
    parse("result {\"files\": 3}\n");
    CHECK_INT(pl.kind, PROGRESS_LINE_RESULT);
    CHECK(text_is(pl.text, "{\"files\": 3}"));
    parse("result");
    CHECK_INT(pl.kind, PROGRESS_LINE_TEXT);
    parse("attribute host web-1");
    CHECK_INT(pl.kind, PROGRESS_LINE_ATTRIBUTE);
    CHECK(text_is(pl.name, "host"));
    CHECK(text_is(pl.text, "web-1"));
    parse("attribute size {\"w\": 3}");
    CHECK(text_is(pl.text, "{\"w\": 3}"));
    parse("attribute host");
    CHECK_INT(pl.kind, PROGRESS_LINE_TEXT);
    CHECK(pl.error != NULL);
}

/* An attribute KEY over 256 bytes or not UTF-8 is refused, the line output with the reason;
 * the worker cut the first at 255 bytes and dropped the second without a word. */
static void test_attribute_key_refused(void) {
    char line[600];
    char key[300];
    memset(key, 'k', 256);
    key[256] = '\0';
    snprintf(line, sizeof line, "attribute %s v", key);
    parse(line);
    CHECK_INT(pl.kind, PROGRESS_LINE_ATTRIBUTE); /* 256 bytes: taken */
    CHECK_INT(pl.name.n, 256);
    key[256] = 'k';
    key[257] = '\0';
    snprintf(line, sizeof line, "attribute %s v", key);
    parse(line);
    CHECK_INT(pl.kind, PROGRESS_LINE_TEXT);
    CHECK(pl.error && strstr(pl.error, "at most 256 bytes"));
    CHECK(text_is(pl.text, line));
    parse("attribute caf\xe9 1");
    CHECK_INT(pl.kind, PROGRESS_LINE_TEXT);
    CHECK(pl.error && strstr(pl.error, "UTF-8"));
    const char nul[] = "attribute a\0b 1";
    progress_line_parse(nul, sizeof nul - 1, &pl);
    CHECK_INT(pl.kind, PROGRESS_LINE_TEXT);
    CHECK(pl.error != NULL);
    parse("attribute caf\xc3\xa9 1"); /* UTF-8: taken */
    CHECK_INT(pl.kind, PROGRESS_LINE_ATTRIBUTE);
}

static void test_odd_bytes(void) {
    /* NUL bytes and invalid UTF-8 pass through as slices; lengths are honoured. */
    const char raw[] = "progress 0.5 a\0b";
    progress_line_parse(raw, sizeof raw - 1, &pl);
    CHECK_INT(pl.kind, PROGRESS_LINE_PROGRESS);
    CHECK_INT(pl.text.n, 3);
    const char cut[] = "progress 0.25";
    progress_line_parse(cut, 12, &pl); /* "progress 0.2" */
    CHECK(pl.ratio > 0.1999 && pl.ratio < 0.2001);
    progress_line_parse("\xff\xfe progress", 11, &pl);
    CHECK_INT(pl.kind, PROGRESS_LINE_TEXT);
    progress_line_parse("x", 0, &pl);
    CHECK_INT(pl.kind, PROGRESS_LINE_TEXT);
    CHECK_INT(pl.text.n, 0);
    char longline[5000];
    memset(longline, '9', sizeof longline);
    memcpy(longline, "progress 0.", 11);
    progress_line_parse(longline, sizeof longline, &pl);
    CHECK_INT(pl.kind, PROGRESS_LINE_PROGRESS);
    CHECK(pl.ratio <= 1.0 && pl.ratio > 0.99);
}

static const struct th_test tests[] = {
    {"progress: ratio and percent", test_progress_ratio_and_percent},
    {"progress: malformed lines stay text", test_progress_refused},
    {"items P/T", test_items},
    {"item NAME PROGRESS", test_item},
    {"message LEVEL text", test_message},
    {"result and attribute", test_result_and_attribute},
    {"an attribute key too long or not UTF-8 is refused", test_attribute_key_refused},
    {"odd bytes", test_odd_bytes},
    {NULL, NULL},
};

int main(int argc, char **argv) {
    return th_main(tests, argc, argv);
}
