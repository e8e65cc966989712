/*
 * The Livepeer view's schema check (src/compat/livepeer_schema.c): which
 * params and output members the `livepeer` SDK 3.5.0 parses, member by
 * member (every expectation here was confirmed against the SDK's own zod
 * schemas; tests/compat/livepeer.test.mjs compares the two wholesale),
 * what livepeer_schema_keep leaves out, and the Task objects the
 * projection writes around a task whose data is in the wrong shape.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "../src/common/buf.h"
#include "../src/common/task.h"
#include "../src/common/task_json.h"
#include "../src/common/xalloc.h"
#include "../src/compat/livepeer.h"
#include "../src/compat/livepeer_schema.h"
#include "harness.h"

#define P LIVEPEER_PART_PARAMS
#define O LIVEPEER_PART_OUTPUT

/* An Asset with only its required keys, to vary one key at a time. */
#define ASSET_MIN "\"id\":\"a\",\"name\":\"n\",\"source\":{\"type\":\"url\",\"url\":\"u\"}"

static const struct {
    enum livepeer_part part;
    const char *key;
    const char *json;
    bool conforms;
} cases[] = {
    /* params.upload */
    {P, "upload", "{}", true},
    {P, "upload", "[]", false},
    {P, "upload", "null", false},
    {P, "upload", "\"https://x\"", false},
    {P, "upload", "{\"url\":5}", false},
    {P, "upload", "{\"url\":\"u\",\"junk\":[1,{\"a\":null}]}", true},
    {P, "upload", "{\"url\":null}", false},
    {P, "upload", "{\"encryption\":{}}", true},
    {P, "upload", "{\"encryption\":{\"key\":1}}", true},
    {P, "upload", "{\"encryption\":[]}", false},
    {P, "upload", "{\"c2pa\":true}", true},
    {P, "upload", "{\"c2pa\":\"yes\"}", false},
    {P, "upload", "{\"profiles\":[]}", true},
    {P, "upload", "{\"profiles\":[{\"bitrate\":1000}]}", true},
    {P, "upload", "{\"profiles\":[{}]}", false},
    {P, "upload", "{\"profiles\":{\"bitrate\":1}}", false},
    {P, "upload", "{\"profiles\":[{\"bitrate\":1},null]}", false},
    {P, "upload", "{\"profiles\":[{\"bitrate\":1.5}]}", false},
    {P, "upload", "{\"profiles\":[{\"bitrate\":2.0}]}", true},
    {P, "upload", "{\"profiles\":[{\"bitrate\":9007199254740991}]}", true},
    {P, "upload", "{\"profiles\":[{\"bitrate\":-9007199254740991}]}", true},
    {P, "upload", "{\"profiles\":[{\"bitrate\":9007199254740992}]}", false},
    {P, "upload", "{\"profiles\":[{\"bitrate\":1e20}]}", false},
    {P, "upload", "{\"profiles\":[{\"bitrate\":\"1000\"}]}", false},
    {P, "upload", "{\"profiles\":[{\"bitrate\":1,\"profile\":\"H264High\",\"encoder\":\"H.264\"}]}",
     true},
    {P, "upload", "{\"profiles\":[{\"bitrate\":1,\"profile\":\"h264high\"}]}", false},
    {P, "upload", "{\"profiles\":[{\"bitrate\":1,\"encoder\":\"AV1\"}]}", false},
    {P, "upload", "{\"profiles\":[{\"bitrate\":1,\"fps\":29.97}]}", false},
    {P, "upload", "{\"profiles\":[{\"bitrate\":1,\"gop\":2}]}", false},
    {P, "upload", "{\"targetSegmentSizeSecs\":1.5}", true},
    {P, "upload", "{\"targetSegmentSizeSecs\":1e300}", true},
    {P, "upload", "{\"targetSegmentSizeSecs\":\"2\"}", false},
    /* params.export: {custom} or {ipfs} */
    {P, "export", "{}", false},
    {P, "export", "{\"custom\":{\"url\":\"u\"}}", true},
    {P, "export", "{\"custom\":{}}", false},
    {P, "export", "{\"custom\":{\"url\":\"u\",\"method\":\"POST\"}}", true},
    {P, "export", "{\"custom\":{\"url\":\"u\",\"method\":null}}", false},
    {P, "export", "{\"custom\":{\"url\":\"u\",\"headers\":{\"a\":\"b\"}}}", true},
    {P, "export", "{\"custom\":{\"url\":\"u\",\"headers\":{\"a\":1}}}", false},
    {P, "export", "{\"custom\":{\"url\":\"u\",\"headers\":[]}}", false},
    {P, "export", "{\"custom\":{\"url\":\"u\",\"headers\":{\"__proto__\":1}}}", true},
    {P, "export", "{\"ipfs\":{}}", true},
    {P, "export", "{\"ipfs\":null}", false},
    {P, "export", "{\"ipfs\":{\"$ref\":null,\"pinata\":{\"apiKey\":\"k\"}}}", true},
    {P, "export", "{\"ipfs\":{\"pinata\":{\"apiKey\":1}}}", true}, /* {} is an option too */
    {P, "export", "{\"ipfs\":{\"pinata\":[]}}", false},
    {P, "export", "{\"custom\":{\"url\":\"u\"},\"ipfs\":5}", true}, /* one option is enough */
    /* params.exportData */
    {P, "exportData", "{}", false},
    {P, "exportData", "{\"content\":{}}", true},
    {P, "exportData", "{\"content\":{\"any\":[\"thing\"]},\"type\":\"json\",\"id\":\"x\"}", true},
    {P, "exportData", "{\"content\":[]}", false},
    {P, "exportData", "{\"content\":null}", false},
    {P, "exportData", "{\"content\":{},\"ipfs\":null}", false},
    {P, "exportData", "{\"content\":{},\"id\":7}", false},
    /* params.transcode-file */
    {P, "transcode-file", "{\"input\":{\"url\":\"s3://in\"},\"storage\":{\"url\":\"s3://out\"}}",
     true},
    {P, "transcode-file", "{\"input\":\"s3://in\"}", false},
    {P, "transcode-file", "{\"outputs\":{\"hls\":{\"path\":\"/h\"},\"mp4\":{}}}", true},
    {P, "transcode-file", "{\"outputs\":{\"hls\":{\"path\":1}}}", false},
    {P, "transcode-file", "{\"creatorId\":\"me\"}", true},
    {P, "transcode-file", "{\"creatorId\":{\"type\":\"unverified\",\"value\":\"v\"}}", true},
    {P, "transcode-file", "{\"creatorId\":{\"type\":\"verified\",\"value\":\"v\"}}", false},
    {P, "transcode-file", "{\"creatorId\":{\"type\":\"unverified\"}}", false},
    {P, "transcode-file", "{\"c2pa\":1}", false},
    {P, "transcode-file", "{\"profiles\":[{\"bitrate\":1,\"width\":-3}]}", true},
    /* params.clip */
    {P, "clip", "{\"url\":\"u\",\"clipStrategy\":{\"startTime\":1.5,\"endTime\":2}}", true},
    {P, "clip", "{\"clipStrategy\":{\"playbackId\":5}}", false},
    {P, "clip", "{\"catalystPipelineStrategy\":\"background_mist\"}", true},
    {P, "clip", "{\"catalystPipelineStrategy\":\"fast\"}", false},
    {P, "clip", "{\"sessionId\":5}", false},
    {P, "clip", "{\"inputId\":[]}", false},
    /* keys the SDK does not know: it drops them */
    {P, "export-data", "5", true},
    {P, "transcode", "null", true},
    {P, "transcodeFile", "[]", true},
    /* output.upload: any other key, assetSpec an Asset */
    {O, "upload", "{}", true},
    {O, "upload", "{\"foo\":null,\"bar\":[1]}", true},
    {O, "upload", "[]", false},
    {O, "upload", "{\"assetSpec\":null}", false},
    {O, "upload", "{\"assetSpec\":{" ASSET_MIN "}}", true},
    {O, "upload", "{\"assetSpec\":{\"id\":\"a\",\"source\":{\"type\":\"url\",\"url\":\"u\"}}}",
     false},
    {O, "upload", "{\"assetSpec\":{\"id\":\"a\",\"name\":\"n\"}}", false},
    {O, "upload", "{\"assetSpec\":{\"id\":\"a\",\"name\":\"n\",\"source\":{\"type\":\"clip\"}}}",
     true},
    {O, "upload",
     "{\"assetSpec\":{\"id\":\"a\",\"name\":\"n\",\"source\":{\"type\":\"recording\"}}}", false},
    {O, "upload",
     "{\"assetSpec\":{\"id\":\"a\",\"name\":\"n\",\"source\":{\"type\":\"recording\","
     "\"sessionId\":\"s\"}}}",
     true},
    {O, "upload", "{\"assetSpec\":{\"id\":\"a\",\"name\":\"n\",\"source\":{\"type\":\"url\"}}}",
     false},
    {O, "upload", "{\"assetSpec\":{" ASSET_MIN ",\"type\":\"image\"}}", false},
    {O, "upload", "{\"assetSpec\":{" ASSET_MIN ",\"playbackPolicy\":null}}", true},
    {O, "upload", "{\"assetSpec\":{" ASSET_MIN ",\"playbackPolicy\":{\"type\":\"jwt\"}}}", true},
    {O, "upload",
     "{\"assetSpec\":{" ASSET_MIN
     ",\"playbackPolicy\":{\"type\":\"jwt\",\"webhookContext\":{\"a\":null}}}}",
     true},
    {O, "upload",
     "{\"assetSpec\":{" ASSET_MIN ",\"playbackPolicy\":{\"type\":\"jwt\",\"webhookContext\":[]}}}",
     false},
    {O, "upload",
     "{\"assetSpec\":{" ASSET_MIN
     ",\"playbackPolicy\":{\"type\":\"public\",\"allowedOrigins\":[\"a\",2]}}}",
     false},
    {O, "upload", "{\"assetSpec\":{" ASSET_MIN ",\"hash\":null}}", true},
    {O, "upload", "{\"assetSpec\":{" ASSET_MIN ",\"hash\":[{\"hash\":\"h\"}]}}", true},
    {O, "upload", "{\"assetSpec\":{" ASSET_MIN ",\"hash\":[{\"hash\":1}]}}", false},
    {O, "upload", "{\"assetSpec\":{" ASSET_MIN ",\"creatorId\":\"me\"}}", false},
    {O, "upload",
     "{\"assetSpec\":{" ASSET_MIN ",\"storage\":{\"ipfs\":{\"spec\":{\"nftMetadataTemplate\":"
     "null}}}}}",
     false},
    {O, "upload",
     "{\"assetSpec\":{" ASSET_MIN
     ",\"storage\":{\"ipfs\":{\"spec\":{},\"$ref\":null,\"nftMetadata\":{\"cid\":\"c\"}}}}}",
     true},
    {O, "upload", "{\"assetSpec\":{" ASSET_MIN ",\"storage\":{\"status\":{\"phase\":\"ready\"}}}}",
     false},
    {O, "upload",
     "{\"assetSpec\":{" ASSET_MIN ",\"storage\":{\"status\":{\"phase\":\"ready\",\"tasks\":{}}}}}",
     true},
    {O, "upload",
     "{\"assetSpec\":{" ASSET_MIN ",\"status\":{\"phase\":\"ready\",\"updatedAt\":1}}}", true},
    {O, "upload", "{\"assetSpec\":{" ASSET_MIN ",\"status\":{\"phase\":\"done\",\"updatedAt\":1}}}",
     false},
    {O, "upload",
     "{\"assetSpec\":{" ASSET_MIN
     ",\"videoSpec\":{\"tracks\":[{\"type\":\"video\",\"codec\":\"h264\",\"fps\":29.97}]}}}",
     true},
    {O, "upload",
     "{\"assetSpec\":{" ASSET_MIN ",\"videoSpec\":{\"tracks\":[{\"type\":\"video\"}]}}}", false},
    {O, "upload", "{\"assetSpec\":{" ASSET_MIN ",\"profiles\":[{\"bitrate\":0.5}]}}", false},
    /* output.export, output.exportData */
    {O, "export", "{}", true},
    {O, "export", "{\"ipfs\":{\"videoFileCid\":\"Qm\",\"videoFileUrl\":\"ipfs://Qm\"}}", true},
    {O, "export", "{\"ipfs\":{}}", false},
    {O, "export", "{\"ipfs\":null}", false},
    {O, "export", "{\"ipfs\":{\"videoFileCid\":\"Qm\",\"nftMetadataCid\":1}}", false},
    {O, "export", "5", false},
    {O, "exportData", "{\"ipfs\":{\"cid\":\"c\"}}", true},
    {O, "exportData", "{\"ipfs\":{\"cid\":1}}", false},
    {O, "exportData", "{\"ipfs\":[]}", false},
    /* keys Output does not have */
    {O, "clip", "5", true},
    {O, "transcode-file", "\"x\"", true},
};

static void test_members(void) {
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        json_error_t je;
        json_t *v = json_loads(cases[i].json, JSON_DECODE_ANY, &je);
        if (!v) {
            th_fail(__FILE__, __LINE__, "case %zu: bad JSON %s", i, cases[i].json);
            return;
        }
        bool got = livepeer_schema_conforms(cases[i].part, cases[i].key, v);
        if (got != cases[i].conforms)
            th_fail(__FILE__, __LINE__, "case %zu: %s.%s = %s: %s, expected %s", i,
                    cases[i].part == P ? "params" : "output", cases[i].key, cases[i].json,
                    got ? "conforms" : "does not conform",
                    cases[i].conforms ? "conforms" : "does not conform");
        json_decref(v);
    }
    CHECK(livepeer_schema_conforms(P, "upload", NULL)); /* absent: every member is optional */
}

static void test_keep(void) {
    size_t dropped = 9;
    CHECK(livepeer_schema_keep(P, NULL, &dropped) == NULL);
    CHECK_INT(dropped, 0);
    CHECK(livepeer_schema_keep(P, "[{\"upload\":{}}]", &dropped) == NULL);
    CHECK(livepeer_schema_keep(P, "\"upload\"", &dropped) == NULL);
    CHECK(livepeer_schema_keep(P, "{not json", &dropped) == NULL);

    json_t *o = livepeer_schema_keep(
        P, "{\"upload\":{\"url\":5},\"clip\":{\"url\":\"c\"},\"export\":[],\"x\":1}", &dropped);
    CHECK(o);
    CHECK_INT(dropped, 2);
    char *text = json_text(o);
    CHECK_STR(text, "{\"clip\":{\"url\":\"c\"},\"x\":1}");
    free(text);
    json_decref(o);

    o = livepeer_schema_keep(O, "{\"export\":{\"ipfs\":{\"videoFileCid\":\"Q\"}}}", &dropped);
    CHECK(o);
    CHECK_INT(dropped, 0);
    json_decref(o);

    /* Output's members are not Params': output.clip is not checked. */
    o = livepeer_schema_keep(O, "{\"clip\":5,\"exportData\":{\"ipfs\":{}}}", &dropped);
    CHECK(o);
    CHECK_INT(dropped, 1);
    text = json_text(o);
    CHECK_STR(text, "{\"clip\":5}");
    free(text);
    json_decref(o);
}

static struct task *lp_task(const char *type, const char *params, const char *result) {
    struct task *t = task_new();
    snprintf(t->id, sizeof t->id, "0190aaaabbbbccccddddeeeeffff0000");
    t->namespace = xstrdup("default");
    t->type = xstrdup(type);
    t->queue = xstrdup("default");
    t->phase = TASK_COMPLETED;
    t->created_at = 1700000000000;
    t->updated_at = 1700000000500;
    t->params = params ? xstrdup(params) : NULL;
    t->result = result ? xstrdup(result) : NULL;
    return t;
}

/* The Task text of t, and the same through its v1 JSON (the webhook path). */
static void lp_write(const struct task *t, struct buf *direct, struct buf *via) {
    struct buf v1;
    buf_init(&v1);
    livepeer_task_write(direct, t);
    task_json_write(&v1, t);
    livepeer_task_write_v1(via, v1.p);
    buf_release(&v1);
}

#define TASK_HEAD                                                                     \
    "{\"id\":\"0190aaaabbbbccccddddeeeeffff0000\",\"type\":\"upload\",\"createdAt\":" \
    "1700000000000,\"projectId\":\"default\""
#define TASK_STATUS ",\"status\":{\"phase\":\"completed\",\"updatedAt\":1700000000500}"

static void test_projection(void) {
    static const struct {
        const char *params, *result, *want;
    } proj[] = {
        /* in the SDK's shapes: the stored text as it is */
        {"{\"upload\":{\"url\":\"u\"},\"pad\":\"x\"}", "{\"upload\":{\"k\":1}}",
         TASK_HEAD ",\"params\":{\"upload\":{\"url\":\"u\"},\"pad\":\"x\"}" TASK_STATUS
                   ",\"output\":{\"upload\":{\"k\":1}}}"},
        /* the one member in a wrong shape left out, the rest served */
        {"{\"upload\":{\"url\":5},\"clip\":{\"url\":\"c\"}}",
         "{\"upload\":{\"k\":1},\"export\":{\"ipfs\":{}}}",
         TASK_HEAD ",\"params\":{\"clip\":{\"url\":\"c\"}}" TASK_STATUS
                   ",\"output\":{\"upload\":{\"k\":1}}}"},
        /* nothing left: no params, no output key */
        {"{\"upload\":[]}", "{\"export\":null}", TASK_HEAD TASK_STATUS "}"},
        {"{\"exportData\":{\"id\":\"x\"}}", "{\"exportData\":{\"ipfs\":{\"cid\":7}}}",
         TASK_HEAD TASK_STATUS "}"},
        /* not objects, empty objects: left out as before */
        {"[1,2]", "\"done\"", TASK_HEAD TASK_STATUS "}"},
        {"{}", "{}", TASK_HEAD TASK_STATUS "}"},
    };
    for (size_t i = 0; i < sizeof proj / sizeof proj[0]; i++) {
        struct task *t = lp_task("upload", proj[i].params, proj[i].result);
        struct buf direct, via;
        buf_init(&direct);
        buf_init(&via);
        lp_write(t, &direct, &via);
        if (strcmp(direct.p, proj[i].want) != 0)
            th_fail(__FILE__, __LINE__, "case %zu:\n  got  %s\n  want %s", i, direct.p,
                    proj[i].want);
        if (strcmp(via.p, proj[i].want) != 0)
            th_fail(__FILE__, __LINE__, "case %zu (from v1):\n  got  %s\n  want %s", i, via.p,
                    proj[i].want);
        buf_release(&direct);
        buf_release(&via);
        task_free(t);
        if (th_failed()) return;
    }
}

/* The other keys stay in the SDK's schema whatever the record holds. */
static void test_odd_fields(void) {
    static const double ratios[] = {NAN, INFINITY, -INFINITY, -3, 7, 1e-300, 0.5};
    for (size_t i = 0; i < sizeof ratios / sizeof ratios[0]; i++) {
        struct task *t = lp_task("Upload", "{\"upload\":{}}", NULL);
        t->phase = TASK_RUNNING;
        t->progress.ratio = ratios[i];
        t->progress.ratio_set = true;
        t->progress.updated_at = 1700000000400;
        t->retries = -1;
        t->error = xstrdup("bad \"input\"\n\x01\x1f\\");
        struct buf b;
        buf_init(&b);
        livepeer_task_write(&b, t);
        json_error_t je;
        json_t *j = json_loads(b.p, 0, &je);
        CHECK(j);
        CHECK(json_object_get(j, "type") == NULL); /* not in the SDK's enum */
        CHECK(json_object_get(j, "params") == NULL);
        json_t *st = json_object_get(j, "status");
        CHECK_STR(json_string_value(json_object_get(st, "phase")), "running");
        CHECK(json_is_integer(json_object_get(st, "updatedAt")));
        CHECK(json_is_integer(json_object_get(st, "retries")));
        double p = json_number_value(json_object_get(st, "progress"));
        CHECK(json_is_number(json_object_get(st, "progress")) && p >= 0 && p <= 1);
        const char *k;
        json_t *v;
        json_object_foreach(j, k, v) {
            CHECK(!json_is_null(v));
        }
        json_decref(j);
        buf_release(&b);
        task_free(t);
    }
    struct task *t = lp_task("upload", NULL, NULL);
    t->phase = TASK_FAILED;
    t->error = xstrdup("bad \"input\"\n\x01\x1f\\");
    struct buf b;
    buf_init(&b);
    livepeer_task_write(&b, t);
    json_error_t je;
    json_t *j = json_loads(b.p, 0, &je);
    CHECK(j);
    CHECK_STR(json_string_value(json_object_get(json_object_get(j, "status"), "errorMessage")),
              "bad \"input\"\n\x01\x1f\\");
    json_decref(j);
    buf_release(&b);
    task_free(t);
}

int main(int argc, char **argv) {
    static const struct th_test tests[] = {
        {"members", test_members},       {"keep", test_keep}, {"projection", test_projection},
        {"odd_fields", test_odd_fields}, {NULL, NULL},
    };
    return th_main(tests, argc, argv);
}
