/*
 * test_sailpoint_filter: the pure parsers of the SailPoint view: the
 * `filters` grammar (precedence not > and > or, parentheses, quoting,
 * unquoted date-times, numbers and booleans, every refusal), `sorters`,
 * the JSON Patch of PATCH /task-status/{id}, and the /oauth/token form.
 * Trees are compared through filter_expr_format's unambiguous text.
 */
#include <stdlib.h>

#include "../src/common/buf.h"
#include "../src/compat/sailpoint_filter.h"
#include "../src/compat/sailpoint_parse.h"
#include "../src/compat/views.h"
#include "harness.h"

/* The text form of the parse of s, or "ERR: message". Caller frees. */
static char *parse_fmt(const char *s) {
    struct filter_expr *x = NULL;
    struct tm_error e;
    err_clear(&e);
    struct buf b;
    buf_init(&b);
    if (sailpoint_filter_parse(s, strlen(s), &x, &e)) {
        buf_printf(&b, "ERR: %s", e.message);
    } else {
        filter_expr_format(&b, x);
        filter_expr_free(x);
    }
    return buf_detach(&b);
}

#define CHECK_PARSE(in, want)                                                             \
    do {                                                                                  \
        char *got_ = parse_fmt(in);                                                       \
        bool ok_ = strcmp(got_, want) == 0;                                               \
        if (!ok_) th_fail(__FILE__, __LINE__, "parse(%s): '%s' != '%s'", in, got_, want); \
        free(got_);                                                                       \
        if (!ok_) return;                                                                 \
    } while (0)

#define CHECK_REFUSED(in, needle)                                                              \
    do {                                                                                       \
        char *got_ = parse_fmt(in);                                                            \
        bool ok_ = strncmp(got_, "ERR: ", 5) == 0 && strstr(got_, needle) != NULL;             \
        if (!ok_)                                                                              \
            th_fail(__FILE__, __LINE__, "parse(%s) = '%s', want an error with '%s'", in, got_, \
                    needle);                                                                   \
        free(got_);                                                                            \
        if (!ok_) return;                                                                      \
    } while (0)

static void test_comparisons(void) {
    CHECK_PARSE("completionStatus eq \"Success\"", "(eq completionStatus \"Success\")");
    CHECK_PARSE("id ne \"a\"", "(ne id \"a\")");
    CHECK_PARSE("uniqueName sw \"Cloud\"", "(sw uniqueName \"Cloud\")");
    CHECK_PARSE("description co \"x\"", "(co description \"x\")");
    CHECK_PARSE("completionStatus isnull", "(isnull completionStatus)");
    CHECK_PARSE("launcher pr", "(pr launcher)");
    CHECK_PARSE("id in (\"a\", \"b\",\"c\")", "(in id [\"a\" \"b\" \"c\"])");
    CHECK_PARSE("id in (\"a\")", "(in id [\"a\"])");
    CHECK_PARSE("n gt 5", "(gt n 5)");
    CHECK_PARSE("n ge -1.5", "(ge n -1.5)");
    CHECK_PARSE("n lt 1e3", "(lt n 1000)");
    CHECK_PARSE("b le true", "(le b true)");
    CHECK_PARSE("b eq null", "(eq b null)");
}

static void test_dates(void) {
    CHECK_PARSE("created gt 2018-12-18T23:05:55Z", "(gt created @\"2018-12-18T23:05:55.000Z\")");
    CHECK_PARSE("created ge 2020-07-11T21:23:15.123Z",
                "(ge created @\"2020-07-11T21:23:15.123Z\")");
    CHECK_PARSE("created lt 2020-07-11T23:23:15+02:00",
                "(lt created @\"2020-07-11T21:23:15.000Z\")");
    CHECK_PARSE("created le 2020-07-11", "(le created @\"2020-07-11T00:00:00.000Z\")");
    CHECK_REFUSED("created gt 2020-13-45T99:00:00Z", "date-time");
    CHECK_REFUSED("created gt 2020-07-11Tnoon", "date-time");
}

static void test_precedence(void) {
    /* not > and > or */
    CHECK_PARSE("a eq \"1\" or b eq \"2\" and c eq \"3\"",
                "(or (eq a \"1\") (and (eq b \"2\") (eq c \"3\")))");
    CHECK_PARSE("a eq \"1\" and b eq \"2\" or c eq \"3\"",
                "(or (and (eq a \"1\") (eq b \"2\")) (eq c \"3\"))");
    CHECK_PARSE("not a eq \"1\" and b eq \"2\"", "(and (not (eq a \"1\")) (eq b \"2\"))");
    CHECK_PARSE("not (a eq \"1\" and b eq \"2\")", "(not (and (eq a \"1\") (eq b \"2\")))");
    CHECK_PARSE("(a eq \"1\" or b eq \"2\") and c eq \"3\"",
                "(and (or (eq a \"1\") (eq b \"2\")) (eq c \"3\"))");
    CHECK_PARSE("not not a isnull", "(not (not (isnull a)))");
    /* left-associative */
    CHECK_PARSE("a pr or b pr or c pr", "(or (or (pr a) (pr b)) (pr c))");
    CHECK_PARSE("  ( ( a pr ) )  ", "(pr a)");
}

static void test_strings(void) {
    CHECK_PARSE("name eq \"say \\\"hi\\\"\"", "(eq name \"say \\\"hi\\\"\")");
    CHECK_PARSE("name eq \"back\\\\slash\"", "(eq name \"back\\\\slash\")");
    CHECK_PARSE("name eq \"\"", "(eq name \"\")");
    CHECK_PARSE("name eq \"and or not ( ) ,\"", "(eq name \"and or not ( ) ,\")");
    CHECK_PARSE("name eq \"caf\xc3\xa9\"", "(eq name \"caf\xc3\xa9\")");
}

static void test_refusals(void) {
    CHECK_REFUSED("", "empty");
    CHECK_REFUSED("   ", "empty");
    CHECK_REFUSED("id", "operator");
    CHECK_REFUSED("id EQ \"a\"", "operator"); /* operators are lower case only */
    CHECK_REFUSED("id eq", "value");
    CHECK_REFUSED("id eq \"a", "unterminated");
    CHECK_REFUSED("id eq Success", "quote strings");
    CHECK_REFUSED("id eq \"a\" AND id eq \"b\"", "'and', 'or'");
    CHECK_REFUSED("id eq \"a\" and", "field name");
    CHECK_REFUSED("(id eq \"a\"", "')'");
    CHECK_REFUSED("id eq \"a\")", "'and', 'or'");
    CHECK_REFUSED("id in \"a\"", "'('");
    CHECK_REFUSED("id in ()", "value");
    CHECK_REFUSED("id in (\"a\" \"b\")", "','");
    CHECK_REFUSED("id in (\"a\",)", "value");
    CHECK_REFUSED("1d eq \"a\"", "field name");
    CHECK_REFUSED("and eq \"a\"", "field name");
    CHECK_REFUSED("n eq 99999999999999999999", "range");
    CHECK_REFUSED("id eq \"a\" ; drop", "");
    /* NUL inside a string */
    struct filter_expr *x = NULL;
    struct tm_error e;
    err_clear(&e);
    CHECK_INT(sailpoint_filter_parse("id eq \"a\0b\"", 11, &x, &e), TM_EINVALID);
    CHECK(x == NULL);
    CHECK_STR(e.field, "filters");
}

static void test_limits(void) {
    struct buf b;
    buf_init(&b);
    for (int i = 0; i < 40; i++)
        buf_putc(&b, '(');
    buf_puts(&b, "a pr");
    for (int i = 0; i < 40; i++)
        buf_putc(&b, ')');
    char *deep = buf_detach(&b);
    CHECK_REFUSED(deep, "nested too deeply");
    free(deep);
    buf_init(&b);
    for (int i = 0; i < 30; i++)
        buf_puts(&b, "not ");
    buf_puts(&b, "a pr");
    char *nots = buf_detach(&b);
    CHECK_PARSE(nots + 4 * 20,
                "(not (not (not (not (not (not (not (not (not (not (pr a)))))))))))");
    free(nots);
    buf_init(&b);
    buf_puts(&b, "id in (");
    for (int i = 0; i < 300; i++)
        buf_printf(&b, "%s\"%d\"", i ? "," : "", i);
    buf_putc(&b, ')');
    char *many = buf_detach(&b);
    CHECK_REFUSED(many, "too many values");
    free(many);
    buf_init(&b);
    for (int i = 0; i < 200; i++)
        buf_printf(&b, "%sa%d pr", i ? " or " : "", i);
    char *wide = buf_detach(&b);
    CHECK_REFUSED(wide, "too long");
    free(wide);
    char *huge = malloc(SAILPOINT_FILTER_MAX_BYTES + 2);
    memset(huge, ' ', SAILPOINT_FILTER_MAX_BYTES + 1);
    huge[SAILPOINT_FILTER_MAX_BYTES + 1] = '\0';
    CHECK_REFUSED(huge, "longer than");
    free(huge);
}

static void test_sorters(void) {
    struct tm_error e;
    err_clear(&e);
    bool asc = false;
    CHECK_INT(sailpoint_sorters_parse("created", &asc, &e), 0);
    CHECK(asc);
    CHECK_INT(sailpoint_sorters_parse("-created", &asc, &e), 0);
    CHECK(!asc);
    CHECK_INT(sailpoint_sorters_parse("-created,created", &asc, &e), 0);
    CHECK(asc);
    CHECK_INT(sailpoint_sorters_parse("name", &asc, &e), TM_EINVALID);
    CHECK_STR(e.field, "sorters");
    CHECK(strstr(e.message, "'name'") != NULL);
    CHECK_INT(sailpoint_sorters_parse("", &asc, &e), TM_EINVALID);
    CHECK_INT(sailpoint_sorters_parse("created,", &asc, &e), TM_EINVALID);
    CHECK_INT(sailpoint_sorters_parse("--created", &asc, &e), TM_EINVALID);
}

static int patch(const char *s, struct sailpoint_patch *p, struct tm_error *e) {
    err_clear(e);
    return sailpoint_patch_parse(s, strlen(s), 32, p, e);
}

static void test_patch(void) {
    struct sailpoint_patch p;
    struct tm_error e;
    /* SailPoint's own example, with "Error" in mixed case. */
    CHECK_INT(
        patch(
            "[{\"op\":\"replace\",\"path\":\"/completionStatus\",\"value\":\"Error\"},"
            "{\"op\":\"replace\",\"path\":\"/completed\",\"value\":\"2024-05-17T19:33:16.470Z\"}]",
            &p, &e),
        0);
    CHECK_INT(p.status, TASK_ERROR);
    CHECK_INT(p.completed_ms, 1715974396470LL);
    CHECK(!p.has_progress && !p.has_percent);
    CHECK_INT(
        patch("[{\"op\":\"add\",\"path\":\"/completionStatus\",\"value\":\"temperror\"}]", &p, &e),
        0);
    CHECK_INT(p.status, TASK_TEMPERROR);
    CHECK_INT(patch("[{\"op\":\"replace\",\"path\":\"/progress\",\"value\":\"Half way\"},"
                    "{\"op\":\"replace\",\"path\":\"/percentComplete\",\"value\":50}]",
                    &p, &e),
              0);
    CHECK(p.has_progress && p.has_percent);
    CHECK_STR(p.progress, "Half way");
    CHECK_INT(p.percent, 50);
    CHECK_INT(p.status, TASK_STATUS_NONE);
    CHECK_INT(patch("[]", &p, &e), 0);

    CHECK_INT(patch("[{\"op\":\"replace\",\"path\":\"/launched\",\"value\":\"x\"}]", &p, &e),
              TM_EINVALID);
    CHECK_STR(e.field, "path");
    CHECK_INT(patch("[{\"op\":\"remove\",\"path\":\"/progress\"}]", &p, &e), TM_EINVALID);
    CHECK_STR(e.field, "op");
    CHECK_INT(
        patch("[{\"op\":\"replace\",\"path\":\"/completionStatus\",\"value\":\"DONE\"}]", &p, &e),
        TM_EINVALID);
    CHECK_STR(e.field, "completionStatus");
    CHECK_INT(patch("[{\"op\":\"replace\",\"path\":\"/completionStatus\",\"value\":null}]", &p, &e),
              TM_EINVALID);
    CHECK_INT(
        patch("[{\"op\":\"replace\",\"path\":\"/completed\",\"value\":\"yesterday\"}]", &p, &e),
        TM_EINVALID);
    CHECK_STR(e.field, "completed");
    CHECK_INT(patch("[{\"op\":\"replace\",\"path\":\"/percentComplete\",\"value\":101}]", &p, &e),
              TM_EINVALID);
    CHECK_INT(patch("[{\"op\":\"replace\",\"path\":\"/percentComplete\",\"value\":5.5}]", &p, &e),
              TM_EINVALID);
    CHECK_INT(patch("[{\"op\":\"replace\",\"path\":\"/progress\",\"value\":3}]", &p, &e),
              TM_EINVALID);
    CHECK_INT(patch("[{\"op\":\"replace\",\"path\":\"/progress\"}]", &p, &e), TM_EINVALID);
    CHECK_STR(e.field, "value");
    CHECK_INT(
        patch("[{\"op\":\"replace\",\"path\":\"/progress\",\"value\":\"a\",\"x\":1}]", &p, &e),
        TM_EINVALID);
    CHECK_INT(patch("[1]", &p, &e), TM_EINVALID);
    CHECK_INT(patch("{\"op\":\"replace\"}", &p, &e), TM_EINVALID);
    CHECK_INT(patch("[{\"op\":", &p, &e), TM_EMALFORMED);
    CHECK_INT(patch("", &p, &e), TM_EMALFORMED);
    CHECK_INT(
        patch("[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]",
              &p, &e),
        TM_EINVALID);
}

static void test_form(void) {
    char out[128];
    const char *u = "grant_type=client_credentials&client_id=abc&client_secret=a%2Bb+c";
    CHECK_INT(sailpoint_form_get("application/x-www-form-urlencoded", u, strlen(u), "client_id",
                                 out, sizeof out),
              0);
    CHECK_STR(out, "abc");
    CHECK_INT(sailpoint_form_get(NULL, u, strlen(u), "client_secret", out, sizeof out), 0);
    CHECK_STR(out, "a+b c");
    CHECK_INT(sailpoint_form_get(NULL, u, strlen(u), "scope", out, sizeof out), TM_ENOT_FOUND);
    CHECK_INT(sailpoint_form_get(NULL, u, strlen(u), "client_id", out, 3), TM_EINVALID);
    const char *m =
        "--XyZ\r\nContent-Disposition: form-data; name=\"grant_type\"\r\n\r\n"
        "client_credentials\r\n--XyZ\r\nContent-Disposition: form-data; "
        "name=\"client_id\"\r\n\r\nf41a\r\n--XyZ--\r\n";
    const char *ct = "multipart/form-data; boundary=XyZ";
    CHECK_INT(sailpoint_form_get(ct, m, strlen(m), "grant_type", out, sizeof out), 0);
    CHECK_STR(out, "client_credentials");
    CHECK_INT(sailpoint_form_get(ct, m, strlen(m), "client_id", out, sizeof out), 0);
    CHECK_STR(out, "f41a");
    CHECK_INT(sailpoint_form_get(ct, m, strlen(m), "client_secret", out, sizeof out),
              TM_ENOT_FOUND);
    CHECK_INT(sailpoint_form_get("multipart/form-data", m, strlen(m), "client_id", out, sizeof out),
              TM_EINVALID);
    CHECK_INT(sailpoint_form_get("text/plain", m, strlen(m), "client_id", out, sizeof out),
              TM_EINVALID);
    const char *cut = "--XyZ\r\nContent-Disposition: form-data; name=\"client_id\"\r\n\r\nf41a";
    CHECK_INT(sailpoint_form_get(ct, cut, strlen(cut), "client_id", out, sizeof out),
              TM_ENOT_FOUND);
    /* How often a field comes (RFC 6749 3.2: at most once). */
    const char *u2 = "client_id=a&grant_type=x&client_id=b&client_idx=c";
    CHECK_INT(sailpoint_form_count(NULL, u2, strlen(u2), "client_id"), 2);
    CHECK_INT(sailpoint_form_count(NULL, u2, strlen(u2), "grant_type"), 1);
    CHECK_INT(sailpoint_form_count(NULL, u2, strlen(u2), "scope"), 0);
    CHECK_INT(sailpoint_form_get(NULL, u2, strlen(u2), "client_id", out, sizeof out), 0);
    CHECK_STR(out, "a");
    const char *m2 =
        "--XyZ\r\nContent-Disposition: form-data; name=\"client_id\"\r\n\r\na\r\n"
        "--XyZ\r\nContent-Disposition: form-data; name=\"client_id\"\r\n\r\nb\r\n--XyZ--\r\n";
    CHECK_INT(sailpoint_form_count(ct, m2, strlen(m2), "client_id"), 2);
    CHECK_INT(sailpoint_form_count(ct, m, strlen(m), "client_id"), 1);
    CHECK_INT(sailpoint_form_count("application/json", u2, strlen(u2), "client_id"), -1);
    CHECK(sailpoint_form_type_ok(NULL));
    CHECK(sailpoint_form_type_ok("application/x-www-form-urlencoded; charset=UTF-8"));
    CHECK(sailpoint_form_type_ok(ct));
    CHECK(!sailpoint_form_type_ok("application/json"));
    /* A part's name as .NET's MultipartFormDataContent writes it (the
     * PowerShell SDK): a token, unquoted; the key in any case; and never
     * a `filename`. The search for `name="..."` found none of the first
     * and took the last for a field. */
    const char *net =
        "--b1\r\nContent-Type: text/plain; charset=utf-8\r\n"
        "Content-Disposition: form-data; name=grant_type\r\n\r\nclient_credentials\r\n"
        "--b1\r\ncontent-disposition: form-data; NAME = client_id\r\n\r\nf41a\r\n"
        "--b1\r\nContent-Disposition: form-data; name=\"x\"; filename=\"client_id\"\r\n\r\nz\r\n"
        "--b1\r\nContent-Disposition: form-data; filename=\"scope\"; name=\"sc\\\"ope\"\r\n\r\n"
        "q\r\n--b1--\r\n";
    const char *nct = "multipart/form-data; boundary=\"b1\"";
    CHECK_INT(sailpoint_form_get(nct, net, strlen(net), "grant_type", out, sizeof out), 0);
    CHECK_STR(out, "client_credentials");
    CHECK_INT(sailpoint_form_get(nct, net, strlen(net), "client_id", out, sizeof out), 0);
    CHECK_STR(out, "f41a");
    CHECK_INT(sailpoint_form_count(nct, net, strlen(net), "client_id"), 1);
    CHECK_INT(sailpoint_form_count(nct, net, strlen(net), "scope"), 0);
    CHECK_INT(sailpoint_form_count(nct, net, strlen(net), "sc\"ope"), 1);
    CHECK_INT(sailpoint_form_count(nct, net, strlen(net), "grant"), 0);
    CHECK_INT(sailpoint_form_count(nct, net, strlen(net), "grant_type_x"), 0);
}

/* An error body is JSON, so UTF-8, even when its message quotes the
 * client with "%.64s" and so ends in half a character: jansson (strict
 * about UTF-8) reads it, and the cut byte is a '?'. */
static void test_error_utf8(void) {
    char id[80];
    memset(id, 'a', 63);
    snprintf(id + 63, sizeof id - 63, "\xc3\xa9");
    struct tm_error e;
    err_set(&e, TM_ENOT_FOUND, "id", "TaskStatus with the given id '%.64s' was not found", id);
    struct buf b;
    buf_init(&b);
    sailpoint_write_error(&b, 404, &e);
    json_error_t je;
    json_t *j = json_loads(b.p, 0, &je);
    CHECK(j != NULL);
    const char *text = json_string_value(
        json_object_get(json_array_get(json_object_get(j, "messages"), 0), "text"));
    CHECK(text && strstr(text, "aaa?' was not found"));
    json_decref(j);
    buf_clear(&b);
    err_set(&e, TM_EINVALID, "client_id", "bad \xe2\x82");
    sailpoint_oauth_write_error(&b, 400, &e);
    CHECK_STR(b.p, "{\"error\":\"invalid_request\",\"error_description\":\"bad ??\"}");
    buf_clear(&b);
    err_set(&e, TM_EINVALID, "", "caf\xc3\xa9 \xf0\x9f\x98\x80");
    sailpoint_write_error(&b, 429, &e);
    CHECK_STR(b.p, "{\"message\":\"caf\xc3\xa9 \xf0\x9f\x98\x80\"}");
    buf_release(&b);
}

static const struct th_test tests[] = {
    {"error bodies are UTF-8 when a message cuts a character", test_error_utf8},
    {"filters: each comparison", test_comparisons},
    {"filters: unquoted date-times", test_dates},
    {"filters: not > and > or, parentheses", test_precedence},
    {"filters: quoted strings and escapes", test_strings},
    {"filters: every refusal names the problem", test_refusals},
    {"filters: depth, values, nodes and length are capped", test_limits},
    {"sorters: created and -created only", test_sorters},
    {"JSON Patch: the four paths, and refusals", test_patch},
    {"oauth form: urlencoded and multipart", test_form},
    {NULL, NULL},
};

int main(int argc, char **argv) {
    return th_main(tests, argc, argv);
}
