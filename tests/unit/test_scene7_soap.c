/*
 * The Scene7 SOAP request parser (src/compat/scene7_soap.c): every
 * operation's parameters, the authHeader, the fault code of each refusal
 * (missing 30002, invalid 30001, bad XML 30003), hostile XML (DTDs,
 * entities, UTF-16) and HTTP Basic credentials. Pure: no server.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../src/common/cron.h"
#include "../src/common/tz.h"
#include "../src/compat/scene7_int.h"
#include "../src/compat/scene7_soap.h"
#include "../src/compat/views.h"
#include "harness.h"

#define ENV_OPEN                                 \
    "<?xml version=\"1.0\" encoding=\"UTF-8\"?>" \
    "<s:Envelope xmlns:s=\"http://schemas.xmlsoap.org/soap/envelope/\" xmlns:t=\"" SCENE7_NS "\">"
#define AUTH                                                                                  \
    "<s:Header><t:authHeader><t:user>u1</t:user><t:password>p1</t:password></t:authHeader></" \
    "s:Header>"
#define ENV(body) ENV_OPEN AUTH "<s:Body>" body "</s:Body></s:Envelope>"

/* Parses s; returns the fault code (0 on success) and leaves the request in q. */
static int parse(const char *s, struct scene7_request *q, struct scene7_fault *f) {
    int rc = scene7_soap_parse(s, strlen(s), q, f);
    return rc ? f->code : 0;
}

static int parse_code(const char *s) {
    struct scene7_request q;
    struct scene7_fault f;
    int code = parse(s, &q, &f);
    scene7_request_release(&q);
    return code;
}

static void test_get_active_jobs(void) {
    struct scene7_request q;
    struct scene7_fault f;
    CHECK_INT(parse(ENV("<t:getActiveJobsParam><t:companyHandle>acme</t:companyHandle>"
                        "<t:originalName> a &amp; b </t:originalName></t:getActiveJobsParam>"),
                    &q, &f),
              0);
    CHECK_INT(q.op, SCENE7_OP_GET_ACTIVE_JOBS);
    CHECK(q.auth.present);
    CHECK_STR(q.auth.user, "u1");
    CHECK_STR(q.auth.password, "p1");
    CHECK_STR(q.company_handle, "acme");
    CHECK_STR(q.original_name, " a & b ");
    CHECK(!q.job_handle);
    scene7_request_release(&q);
    /* No parameters at all; no header; unprefixed children; CDATA. */
    CHECK_INT(parse(ENV_OPEN "<s:Body><t:getActiveJobsParam/></s:Body></s:Envelope>", &q, &f), 0);
    CHECK(!q.auth.present);
    scene7_request_release(&q);
    CHECK_INT(
        parse(ENV_OPEN
              "<s:Body><getActiveJobsParam xmlns=\"" SCENE7_NS "\">"
              "<jobHandle><![CDATA[x<y]]></jobHandle></getActiveJobsParam></s:Body></s:Envelope>",
              &q, &f),
        0);
    CHECK_STR(q.job_handle, "x<y");
    scene7_request_release(&q);
}

static void test_controls(void) {
    const char *ops[] = {"stopJob", "pauseJob", "resumeJob", "executeJob", "deleteJob"};
    enum scene7_op want[] = {SCENE7_OP_STOP_JOB, SCENE7_OP_PAUSE_JOB, SCENE7_OP_RESUME_JOB,
                             SCENE7_OP_EXECUTE_JOB, SCENE7_OP_DELETE_JOB};
    for (size_t i = 0; i < 5; i++) {
        char doc[1024];
        struct scene7_request q;
        struct scene7_fault f;
        snprintf(doc, sizeof doc,
                 ENV("<t:%sParam><t:companyHandle>c</t:companyHandle><t:jobHandle>j</t:jobHandle></"
                     "t:%sParam>"),
                 ops[i], ops[i]);
        CHECK_INT(parse(doc, &q, &f), 0);
        CHECK_INT(q.op, want[i]);
        CHECK_STR(scene7_op_name(q.op), ops[i]);
        CHECK_STR(q.company_handle, "c");
        CHECK_STR(q.job_handle, "j");
        scene7_request_release(&q);
        snprintf(doc, sizeof doc,
                 ENV("<t:%sParam><t:companyHandle>c</t:companyHandle></t:%sParam>"), ops[i],
                 ops[i]);
        CHECK_INT(parse(doc, &q, &f), SCENE7_FAULT_MISSING_PARAMETER);
        CHECK(strstr(f.reason, "jobHandle"));
        scene7_request_release(&q);
        snprintf(doc, sizeof doc,
                 ENV("<t:%sParam><t:jobHandle>j</t:jobHandle><t:companyHandle/></t:%sParam>"),
                 ops[i], ops[i]);
        CHECK_INT(parse(doc, &q, &f), SCENE7_FAULT_MISSING_PARAMETER);
        CHECK(strstr(f.reason, "companyHandle"));
        scene7_request_release(&q);
    }
    /* Unknown, repeated and nil parameters. */
    CHECK_INT(parse_code(ENV(
                  "<t:stopJobParam><t:companyHandle>c</t:companyHandle><t:jobHandle>j</t:jobHandle>"
                  "<t:extra>1</t:extra></t:stopJobParam>")),
              SCENE7_FAULT_INVALID_PARAMETER);
    CHECK_INT(parse_code(ENV("<t:stopJobParam><t:companyHandle>c</"
                             "t:companyHandle><t:companyHandle>d</t:companyHandle>"
                             "<t:jobHandle>j</t:jobHandle></t:stopJobParam>")),
              SCENE7_FAULT_INVALID_PARAMETER);
    CHECK_INT(
        parse_code(ENV("<t:stopJobParam xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\">"
                       "<t:companyHandle>c</t:companyHandle><t:jobHandle "
                       "xsi:nil=\"true\"/></t:stopJobParam>")),
        SCENE7_FAULT_MISSING_PARAMETER);
    CHECK_INT(parse_code(ENV("<t:stopJobParam><t:companyHandle><b>c</b></"
                             "t:companyHandle><t:jobHandle>j</t:jobHandle>"
                             "</t:stopJobParam>")),
              SCENE7_FAULT_INVALID_PARAMETER);
    /* A detail element is not a parameter of stopJob. */
    CHECK_INT(parse_code(ENV(
                  "<t:stopJobParam><t:companyHandle>c</t:companyHandle><t:jobHandle>j</t:jobHandle>"
                  "<t:uploadUrlsJob/></t:stopJobParam>")),
              SCENE7_FAULT_INVALID_PARAMETER);
}

static void test_submit_job(void) {
    struct scene7_request q;
    struct scene7_fault f;
    CHECK_INT(parse(ENV("<t:submitJobParam><t:companyHandle>acme</"
                        "t:companyHandle><t:userHandle>ann</t:userHandle>"
                        "<t:locale>en-US</t:locale><t:jobName>My Test Job</t:jobName>"
                        "<t:execTime> 2026-11-22T17:18:57.907+01:00 "
                        "</t:execTime><t:description>d</t:description>"
                        "<t:uploadUrlsJob><t:destFolder>f/</"
                        "t:destFolder><t:urlArray><t:items><t:sourceUrl>a</t:sourceUrl>"
                        "</t:items><t:items><t:sourceUrl>b</t:sourceUrl></t:items></t:urlArray></"
                        "t:uploadUrlsJob>"
                        "</t:submitJobParam>"),
                    &q, &f),
              0);
    CHECK_INT(q.op, SCENE7_OP_SUBMIT_JOB);
    CHECK_STR(q.company_handle, "acme");
    CHECK_STR(q.user_handle, "ann");
    CHECK_STR(q.locale, "en-US");
    CHECK_STR(q.job_name, "My Test Job");
    CHECK_STR(q.description, "d");
    CHECK(q.has_exec_time);
    CHECK_INT(q.exec_time_ms, 1795364337907LL);
    CHECK_STR(q.job_kind, "uploadUrlsJob");
    CHECK_STR(scene7_job_type_of(q.job_kind), "UrlUpload");
    char *js = json_dumps(q.job_detail, JSON_COMPACT | JSON_SORT_KEYS);
    CHECK_STR(js,
              "{\"destFolder\":\"f/"
              "\",\"urlArray\":{\"items\":[{\"sourceUrl\":\"a\"},{\"sourceUrl\":\"b\"}]}}");
    free(js);
    scene7_request_release(&q);
    /* An empty detail element is an empty object. */
    CHECK_INT(
        parse(ENV("<t:submitJobParam><t:companyHandle>a</t:companyHandle><t:jobName>n</t:jobName>"
                  "<t:exportJob/></t:submitJobParam>"),
              &q, &f),
        0);
    CHECK(json_is_object(q.job_detail) && json_object_size(q.job_detail) == 0);
    CHECK(!q.has_exec_time);
    scene7_request_release(&q);
    /* Refusals. */
    CHECK_INT(parse_code(ENV(
                  "<t:submitJobParam><t:companyHandle>a</t:companyHandle><t:jobName>n</t:jobName>"
                  "</t:submitJobParam>")),
              SCENE7_FAULT_MISSING_PARAMETER);
    CHECK_INT(parse_code(ENV("<t:submitJobParam><t:companyHandle>a</t:companyHandle><t:exportJob/>"
                             "</t:submitJobParam>")),
              SCENE7_FAULT_MISSING_PARAMETER);
    CHECK_INT(parse_code(ENV(
                  "<t:submitJobParam><t:companyHandle>a</t:companyHandle><t:jobName>n</t:jobName>"
                  "<t:exportJob/><t:ripPdfsJob/></t:submitJobParam>")),
              SCENE7_FAULT_INVALID_PARAMETER);
    CHECK_INT(parse_code(ENV(
                  "<t:submitJobParam><t:companyHandle>a</t:companyHandle><t:jobName>n</t:jobName>"
                  "<t:execTime>2026-11-22T17:18:57</t:execTime><t:exportJob/></t:submitJobParam>")),
              SCENE7_FAULT_INVALID_PARAMETER);
    CHECK_INT(parse_code(ENV(
                  "<t:submitJobParam><t:companyHandle>a</t:companyHandle><t:jobName>n</t:jobName>"
                  "<t:execSchedule>0 0 * *</t:execSchedule><t:exportJob/></t:submitJobParam>")),
              SCENE7_FAULT_INVALID_PARAMETER);
    CHECK_INT(
        parse_code(
            ENV("<t:submitJobParam><t:companyHandle>a</t:companyHandle><t:jobName>n&#1;</t:jobName>"
                "<t:exportJob/></t:submitJobParam>")),
        SCENE7_FAULT_INVALID_REQUEST_XML); /* &#1; is not an XML 1.0 character */
    CHECK_INT(parse_code(ENV(
                  "<t:submitJobParam><t:companyHandle>a</t:companyHandle><t:jobName>n</t:jobName>"
                  "<t:cleanupJob/></t:submitJobParam>")),
              SCENE7_FAULT_INVALID_PARAMETER);
    /* Too long, too deep. */
    char *big = malloc(2 * SCENE7_HANDLE_MAX + 512);
    snprintf(big, 2 * SCENE7_HANDLE_MAX + 512,
             ENV("<t:submitJobParam><t:companyHandle>a</t:companyHandle><t:jobName>%0*d</t:jobName>"
                 "<t:exportJob/></t:submitJobParam>"),
             SCENE7_HANDLE_MAX + 1, 0);
    CHECK_INT(parse_code(big), SCENE7_FAULT_INVALID_PARAMETER);
    free(big);
    char deep[2048] = ENV_OPEN
        "<s:Body><t:submitJobParam><t:companyHandle>a</t:companyHandle>"
        "<t:jobName>n</t:jobName><t:exportJob>";
    for (int i = 0; i < 10; i++)
        strcat(deep, "<a>");
    strcat(deep, "x");
    for (int i = 0; i < 10; i++)
        strcat(deep, "</a>");
    strcat(deep, "</t:exportJob></t:submitJobParam></s:Body></s:Envelope>");
    CHECK_INT(parse_code(deep), SCENE7_FAULT_INVALID_PARAMETER);
}

/* execSchedule as cron, or the fault's code (out: the cron text). */
static int exec_cron(const char *exec, char *out, struct scene7_fault *f) {
    return scene7_exec_schedule_cron(exec, out, CRON_MAX_TEXT + 1, f) ? f->code : 0;
}

/* The UTC weekdays (Sunday 0) of the next `n` fires after 2026-12-07
 * (a Monday), each day once, as a string of digits. */
static void fire_days(const char *cron, int n, char *days) {
    struct cron_expr c;
    struct tm_error e;
    const struct tz *utc;
    CHECK_INT(cron_parse(cron, &c, &e), 0);
    CHECK_INT(tz_get("UTC", &utc, &e), 0);
    int64_t at = INT64_C(1796601600000); /* 2026-12-07T00:00:00Z */
    for (int i = 0; i < n; i++) {
        CHECK_INT(cron_next(&c, utc, at, &at, NULL), 0);
        days[i] = (char)('0' + (at / 86400000 + 4) % 7);
    }
    days[n] = '\0';
}

/* Quartz reads a range whose end comes first as wrapping round the field
 * (CronExpression.addToSet): FRI-MON is FRI, SAT, SUN, MON. */
static void test_exec_schedule_wrap(void) {
    static const struct {
        const char *exec, *cron;
    } good[] = {
        {"0 0 12 ? * FRI-MON", "0 0 12 ? * 5-6,0-1"},
        {"0 0 12 ? * fri-mon", "0 0 12 ? * 5-6,0-1"},
        {"0 0 12 ? * 6-2", "0 0 12 ? * 5-6,0-1"},
        {"0 0 12 ? * SAT-SUN", "0 0 12 ? * 6-6,0-0"},
        {"0 0 12 ? * 7-1", "0 0 12 ? * 6-6,0-0"},
        /* After a range of names Quartz drops the step; after numbers not. */
        {"0 0 12 ? * FRI-MON/2", "0 0 12 ? * 5-6,0-1"},
        {"0 0 12 ? * 6-2/2", "0 0 12 ? * 5-6/2,0-1/2"},
        {"0 0 12 ? * MON-FRI/2", "0 0 12 ? * MON-FRI"},
        {"0 0 12 ? * FRI-MON/8", "0 0 12 ? * 5-6,0-1"},
        {"0 0 12 ? * WED,FRI-MON", "0 0 12 ? * WED,5-6,0-1"},
        {"0 0 12 ? * MON-FRI", "0 0 12 ? * MON-FRI"},
        {"0 0 0 1 NOV-FEB/2 ?", "0 0 0 1 11-12,1-2 ?"},
        {"0 0 0 1 JAN-DEC/3 ?", "0 0 0 1 JAN-DEC ?"},
        {"0 0 0 1 NOV-FEB ?", "0 0 0 1 11-12,1-2 ?"},
        {"0 0 0 1 11-2/2 ?", "0 0 0 1 11-12/2,1-2/2 ?"},
        {"0 0 0 1 DEC-JAN ?", "0 0 0 1 12-12,1-1 ?"},
        {"0 0 0 28-3 * ?", "0 0 0 28-31,1-3 * ?"},
        {"0 0 22-2 * * ?", "0 0 22-23,0-2 * * ?"},
        {"0 50-10/15 * * * ?", "0 50-59/15,5-10/15 * * * ?"},
        {"50-10 0 0 * * ?", "50-59,0-10 0 0 * * ?"},
        {"0 0 0 31-30/30 * ?", "0 0 0 31-31/30,30-30/30 * ?"},
    };
    char out[CRON_MAX_TEXT + 1];
    struct scene7_fault f;
    struct cron_expr c;
    struct tm_error e;
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        CHECK_INT(exec_cron(good[i].exec, out, &f), 0);
        CHECK_STR(out, good[i].cron);
        CHECK_INT(cron_parse(out, &c, &e), 0);
    }
    /* The days they fire on. */
    char days[16];
    fire_days("0 0 12 ? * 5-6,0-1", 8, days);
    CHECK_STR(days, "15601560"); /* Monday 7 December first */
    fire_days("0 0 12 ? * 5-6/2,0-1/2", 4, days);
    CHECK_STR(days, "5050");
    CHECK_INT(exec_cron("0 0 0 1 NOV-FEB ?", out, &f), 0);
    CHECK_INT(cron_parse(out, &c, &e), 0);
    CHECK_INT(c.month, (1 << 11) | (1 << 12) | (1 << 1) | (1 << 2));
    CHECK_INT(exec_cron("0 0 22-2 * * ?", out, &f), 0);
    CHECK_INT(cron_parse(out, &c, &e), 0);
    CHECK_INT(c.hour, (1 << 22) | (1 << 23) | 1 | 2 | 4);

    /* Still refused, naming execSchedule: what Quartz refuses too. */
    static const struct {
        const char *exec, *reason;
    } bad[] = {
        {"0 0 12 ? * FRI-", "'execSchedule' day-of-week field range 'FRI-' is missing a bound"},
        {"0 0 12 ? * -MON", "'execSchedule' day-of-week field range '-MON' is missing a bound"},
        {"0 0 12 ? * FRI-XYZ",
         "'execSchedule' day-of-week field 'XYZ' is not a number or a day name"},
        {"0 0 12 ? * 8-2", "'execSchedule' day-of-week '8-2' is out of range 1-7 (1 = Sunday)"},
        {"0 0 12 ? * 6-0", "'execSchedule' day-of-week '6-0' is out of range 1-7 (1 = Sunday)"},
        {"0 0 12 ? 13-2 *", "'execSchedule' month field '13' is out of range 1-12"},
        {"0 0 12 ? 11-2/0 *", "'execSchedule' month step '0' is not a number in 1-12"},
        {"0 0 12 ? NOV-FEB/x *", "'execSchedule' month step 'x' is not a number in 1-12"},
        {"0 0 12 ? * 6-2/8", "'execSchedule' day-of-week step '8' is not a number in 1-7"},
        {"0 0 12 ? * FRI-2",
         "'execSchedule' day-of-week range 'FRI-2' mixes a name and a number: write both as "
         "names or both as numbers"},
        {"0 0 12 ? 6-MAR *",
         "'execSchedule' month range '6-MAR' mixes a name and a number: write both as names or "
         "both as numbers"},
        {"0 0 25-2 * * ?", "'execSchedule' hour field '25' is out of range 0-23"},
        {"0 0 12 ? * ,FRI-MON",
         "'execSchedule' day-of-week field ',5-6,0-1' has an empty list element (in the "
         "expression as read: '0 0 12 ? * ,5-6,0-1', day-of-week 0 = Sunday)"},
        {"0 0 12 ? * FRI-MON,",
         "'execSchedule' day-of-week field '5-6,0-1,' has an empty list element (in the "
         "expression as read: '0 0 12 ? * 5-6,0-1,', day-of-week 0 = Sunday)"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        CHECK_INT(exec_cron(bad[i].exec, out, &f), SCENE7_FAULT_INVALID_PARAMETER);
        CHECK_STR(f.reason, bad[i].reason);
    }
}

static void test_auth_header(void) {
    struct scene7_request q;
    struct scene7_fault f;
    CHECK_INT(
        parse(ENV_OPEN "<s:Header><t:authHeader><t:user>u</t:user><t:password>p</t:password>"
                       "<t:appName>x</t:appName><t:faultHttpStatusCode>200</t:faultHttpStatusCode>"
                       "</t:authHeader><o:other xmlns:o=\"urn:o\"/></s:Header>"
                       "<s:Body><t:getActiveJobsParam/></s:Body></s:Envelope>",
              &q, &f),
        0);
    CHECK_INT(q.auth.fault_http_status, 200);
    scene7_request_release(&q);
    CHECK_INT(
        parse_code(
            ENV_OPEN
            "<s:Header><t:authHeader><t:faultHttpStatusCode>20</t:faultHttpStatusCode>"
            "</t:authHeader></s:Header><s:Body><t:getActiveJobsParam/></s:Body></s:Envelope>"),
        SCENE7_FAULT_INVALID_PARAMETER);
    /* 1xx and 3xx are refused: a 101 would look like a protocol switch to a proxy. */
    const char *const statuses[] = {"101", "100", "302", "399", "600"};
    for (size_t i = 0; i < sizeof statuses / sizeof statuses[0]; i++) {
        char body[512];
        snprintf(body, sizeof body,
                 ENV_OPEN
                 "<s:Header><t:authHeader><t:faultHttpStatusCode>%s</t:faultHttpStatusCode>"
                 "</t:authHeader></s:Header><s:Body><t:getActiveJobsParam/></s:Body>"
                 "</s:Envelope>",
                 statuses[i]);
        CHECK_INT(parse_code(body), SCENE7_FAULT_INVALID_PARAMETER);
    }
    CHECK_INT(
        parse_code(ENV_OPEN "<s:Header><o:x xmlns:o=\"urn:o\" s:mustUnderstand=\"1\"/></s:Header>"
                            "<s:Body><t:getActiveJobsParam/></s:Body></s:Envelope>"),
        SCENE7_FAULT_INVALID_REQUEST_XML);
}

static void test_bad_xml(void) {
    const char *bad[] = {
        "",
        "not xml",
        "<a>",
        "<x xmlns=\"urn:x\"/>",
        /* SOAP 1.2 */
        "<s:Envelope "
        "xmlns:s=\"http://www.w3.org/2003/05/"
        "soap-envelope\"><s:Body><t:getActiveJobsParam "
        "xmlns:t=\"" SCENE7_NS "\"/></s:Body></s:Envelope>",
        ENV_OPEN "</s:Envelope>",
        ENV_OPEN "<s:Body/></s:Envelope>",
        ENV("<t:getActiveJobsParam/><t:getActiveJobsParam/>"),
        ENV("<t:getAssetJobLogsParam/>"),
        ENV("<t:getActiveJobs/>"),
        ENV_OPEN
        "<s:Body><x:getActiveJobsParam "
        "xmlns:x=\"http://www.scene7.com/IpsApi/xsd/2013-02-15\"/></s:Body></"
        "s:Envelope>",
        ENV("text<t:getActiveJobsParam/>"),
        ENV("<t:getActiveJobsParam><t:jobHandle>&undefined;</t:jobHandle></"
            "t:getActiveJobsParam>"),
        /* billion laughs, external entity, external DTD, parameter entity */
        "<?xml version=\"1.0\"?><!DOCTYPE l [<!ENTITY a \"aaaaaaaaaa\"><!ENTITY b "
        "\"&a;&a;&a;&a;&a;&a;&a;&a;\">"
        "<!ENTITY c \"&b;&b;&b;&b;&b;&b;&b;&b;\">]>" ENV(
            "<t:getActiveJobsParam><t:jobHandle>&c;</t:jobHandle>"
            "</t:getActiveJobsParam>"),
        "<!DOCTYPE x [<!ENTITY e SYSTEM \"file:///etc/passwd\">]>" ENV(
            "<t:getActiveJobsParam><t:jobHandle>&e;"
            "</t:jobHandle></t:getActiveJobsParam>"),
        "<!DOCTYPE s:Envelope SYSTEM \"http://127.0.0.1:1/x.dtd\">" ENV("<t:getActiveJobsParam/>"),
        "<!DOCTYPE x [<!ENTITY % p SYSTEM \"http://127.0.0.1:1/p\"> %p;]>" ENV(
            "<t:getActiveJobsParam/>"),
        ENV("<t:getActiveJobsParam><t:jobHandle>a</t:jobHandle></"
            "t:getActiveJobsParam>") "<!DOCTYPE x>",
        /* UTF-8 bytes that claim to be UTF-16: refused, never re-decoded */
        "<?xml version=\"1.0\" encoding=\"UTF-16\"?>" ENV("<t:getActiveJobsParam/>"),
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct scene7_request q;
        struct scene7_fault f;
        int rc = scene7_soap_parse(bad[i], strlen(bad[i]), &q, &f);
        scene7_request_release(&q);
        if (rc != -1 || f.code != SCENE7_FAULT_INVALID_REQUEST_XML)
            th_fail(__FILE__, __LINE__, "bad[%zu]: rc %d code %d '%s'", i, rc, f.code, f.reason);
    }
    /* NUL bytes (UTF-16 and friends) and oversize input. */
    static const char utf16[] = "<\0s\0:\0E\0";
    struct scene7_request q;
    struct scene7_fault f;
    CHECK_INT(scene7_soap_parse(utf16, sizeof utf16 - 1, &q, &f), -1);
    CHECK_INT(f.code, SCENE7_FAULT_INVALID_REQUEST_XML);
    scene7_request_release(&q);
    size_t n = SCENE7_SOAP_MAX_BYTES + 1;
    char *huge = malloc(n);
    memset(huge, ' ', n);
    CHECK_INT(scene7_soap_parse(huge, n, &q, &f), -1);
    free(huge);
    CHECK_INT(f.code, SCENE7_FAULT_INVALID_REQUEST_XML);
    scene7_request_release(&q);
}

static void test_peek_auth(void) {
    char u[64], pw[128];
    const char *prefixed =
        "<s:Envelope xmlns:s='x'><s:Header><t:authHeader xmlns:t='y'>"
        "<t:user> abc </t:user><t:password>tm_1_2</t:password>"
        "</t:authHeader></s:Header><s:Body/></s:Envelope>";
    CHECK_INT(scene7_soap_peek_auth(prefixed, strlen(prefixed), u, sizeof u, pw, sizeof pw), 1);
    CHECK_STR(u, "abc");
    CHECK_STR(pw, "tm_1_2");
    const char *bare =
        "<Envelope><Header><authHeader><password>p</password></authHeader>"
        "</Header></Envelope>";
    CHECK_INT(scene7_soap_peek_auth(bare, strlen(bare), u, sizeof u, pw, sizeof pw), 1);
    CHECK_STR(u, "");
    CHECK_STR(pw, "p");
    /* Not an authHeader element, no end tag, or out of the look: none. */
    const char *none[] = {"<Envelope><xauthHeader><user>a</user></xauthHeader></Envelope>",
                          "<Envelope><authHeader><user>a</user>",
                          "<Envelope>authHeader <user>a</user></Envelope>", ""};
    for (size_t i = 0; i < sizeof none / sizeof none[0]; i++)
        CHECK_INT(scene7_soap_peek_auth(none[i], strlen(none[i]), u, sizeof u, pw, sizeof pw), 0);
    size_t pad = SCENE7_AUTH_PEEK_BYTES;
    char *far = malloc(pad + 200);
    memset(far, ' ', pad);
    strcpy(far + pad, "<authHeader><user>a</user><password>b</password></authHeader>");
    CHECK_INT(scene7_soap_peek_auth(far, strlen(far), u, sizeof u, pw, sizeof pw), 0);
    free(far);
}

static void test_basic(void) {
    char u[64], p[128];
    CHECK_INT(scene7_basic_parse("Basic dTE6cDE=", u, sizeof u, p, sizeof p), 0); /* u1:p1 */
    CHECK_STR(u, "u1");
    CHECK_STR(p, "p1");
    CHECK_INT(scene7_basic_parse("basic   YTpiOmM= ", u, sizeof u, p, sizeof p), 0); /* a:b:c */
    CHECK_STR(u, "a");
    CHECK_STR(p, "b:c");
    CHECK_INT(scene7_basic_parse("Basic Og==", u, sizeof u, p, sizeof p), 0); /* ":" */
    CHECK_STR(u, "");
    const char *bad[] = {"Bearer x",
                         "Basic",
                         "Basic ",
                         "Basic dTE",
                         "Basic dTE2",
                         "Basic d=E6",
                         "Basic dTE6cDE=dTE6cDE=",
                         "Basic AAAA",
                         "Basicdte6cde="};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        if (scene7_basic_parse(bad[i], u, sizeof u, p, sizeof p) == 0)
            th_fail(__FILE__, __LINE__, "'%s' parsed", bad[i]);
    char tiny[2];
    CHECK_INT(scene7_basic_parse("Basic dTE6cDE=", tiny, sizeof tiny, p, sizeof p), -1);
}

/* The reply writers send only what XML 1.0 allows in UTF-8: a byte that
 * starts no UTF-8 sequence (a fault's reason that quotes the client with
 * "%.64s" can cut a character in two) and U+FFFE, U+FFFF (jansson, so v1,
 * accepts them in a task's name) are '?'; other characters pass. */
static void test_xml_text(void) {
    struct buf b;
    buf_init(&b);
    scene7_xml_text(&b,
                    "a\xef\xbf\xbf b\xef\xbf\xbe c\xef\xbf\xbd d\xc3\xa9 \xf0\x9f\x98\x80 <&>\x01");
    CHECK_STR(b.p, "a? b? c\xef\xbf\xbd d\xc3\xa9 \xf0\x9f\x98\x80 &lt;&amp;&gt;?");
    buf_clear(&b);
    scene7_xml_text(&b, "cut \xc3 \xe2\x82 \x80 \xed\xa0\x80 \xf4\x90\x80\x80 \xc1\xbf");
    CHECK_STR(b.p, "cut ? ?? ? ??? ???? ??");
    buf_clear(&b);
    char handle[80];
    memset(handle, 'a', 63);
    snprintf(handle + 63, sizeof handle - 63, "\xc3\xa9");
    struct tm_error e;
    err_set(&e, TM_EINVALID, "", "jobHandle '%.64s' not found", handle);
    scene7_error_write(&b, 400, &e);
    CHECK(strstr(b.p, "aaa?' not found</faultstring>") != NULL);
    CHECK(strchr(b.p, '\xc3') == NULL);
    buf_release(&b);
}

int main(int argc, char **argv) {
    static const struct th_test tests[] = {
        {"xml_text", test_xml_text},
        {"get_active_jobs", test_get_active_jobs},
        {"controls", test_controls},
        {"submit_job", test_submit_job},
        {"exec_schedule_wrap", test_exec_schedule_wrap},
        {"auth_header", test_auth_header},
        {"bad_xml", test_bad_xml},
        {"basic", test_basic},
        {"peek_auth", test_peek_auth},
        {NULL, NULL},
    };
    return th_main(tests, argc, argv);
}
