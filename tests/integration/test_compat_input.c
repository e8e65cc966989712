/*
 * Bad input through the compatibility views (docs/compat.md): each
 * refusal is in the shape of the API it came through (SailPoint's
 * ErrorResponseDto, Livepeer's {"errors":[...]}, RFC 6749's token error,
 * a Scene7 SOAP fault), names what was wrong, and changes nothing stored
 * (the full v1 list, versions included, is the same before and after).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

static struct th_server srv;

/* Everything stored, as text. */
static char *snapshot(void) {
    return strdup(th_http(&srv, "GET", "/v1/tasks?limit=1000", NULL)->body);
}

/* A GET refused with `status`, its body holding `needle`, nothing stored changed. */
static void get_refused(int line, const char *path, long status, const char *needle) {
    char *before = snapshot();
    struct th_resp *r = th_http(&srv, "GET", path, NULL);
    if (r->status != status)
        th_fail(__FILE__, line, "GET %s: status %ld, want %ld: %.300s", path, r->status, status,
                r->body);
    else if (!strstr(r->body, needle))
        th_fail(__FILE__, line, "GET %s: body lacks '%s': %.300s", path, needle, r->body);
    char *after = snapshot();
    if (strcmp(before, after) != 0) th_fail(__FILE__, line, "GET %s changed stored data", path);
    free(before);
    free(after);
}

#define GET_REFUSED(path, status, needle) get_refused(__LINE__, path, status, needle)

/* A list parameter given twice was read once: SailPoint's the first
 * (`filters=A&filters=B` listed what A alone matched, `limit=1&limit=300`
 * passed the 250 bound unseen), Livepeer's the last (its Link carried
 * both) or, for filters, both and-ed. Each is 400 naming it. */
static void test_list_parameter_twice(void) {
    char *ida = th_submit(&srv, "twice", "\"name\":\"tw-a\"");
    char *idb = th_submit(&srv, "twice", "\"name\":\"tw-b\"");
    static const char *const sp[] = {
        "/beta/"
        "task-status?filters=uniqueName%20eq%20%22tw-a%22&filters=uniqueName%20eq%20%22tw-b%22",
        "/beta/task-status?limit=1&limit=300",
        "/v2025/task-status?offset=0&offset=1",
        "/v2024/task-status?count=true&count=false",
        "/beta/task-status?sorters=created&sorters=-created",
        "/beta/task-status/pending-tasks?limit=1&limit=2",
    };
    static const char *const sp_names[] = {"filters", "limit",   "offset",
                                           "count",   "sorters", "limit"};
    for (size_t i = 0; i < sizeof sp / sizeof sp[0]; i++) {
        char needle[96];
        snprintf(needle, sizeof needle, "\"text\":\"'%s' is given more than once\"", sp_names[i]);
        GET_REFUSED(sp[i], 400, "\"detailCode\":\"400.1 Bad Request Content\"");
        GET_REFUSED(sp[i], 400, needle);
    }
    /* pending-tasks takes no filters: a repeated one is ignored like one alone. */
    CHECK_INT(
        th_http(&srv, "GET", "/beta/task-status/pending-tasks?filters=a&filters=b", NULL)->status,
        200);
    struct th_resp *r = th_http(
        &srv, "GET", "/beta/task-status?filters=uniqueName%20eq%20%22tw-a%22&limit=5", NULL);
    CHECK_INT(r->status, 200);
    CHECK_INT(json_array_size(r->json), 1);

    static const char *const lp[] = {
        "/api/task?limit=1&limit=3",
        "/api/task?cursor=skip0&cursor=skip1",
        "/api/task?filters=%5B%7B%22id%22%3A%22name%22%2C%22value%22%3A%22tw-a%22%7D%5D"
        "&filters=%5B%7B%22id%22%3A%22name%22%2C%22value%22%3A%22tw-b%22%7D%5D",
    };
    static const char *const lp_names[] = {"limit", "cursor", "filters"};
    for (size_t i = 0; i < sizeof lp / sizeof lp[0]; i++) {
        char needle[96];
        snprintf(needle, sizeof needle, "{\"errors\":[\"'%s' is given more than once\"]}",
                 lp_names[i]);
        GET_REFUSED(lp[i], 400, needle);
    }
    /* A repeated order or count is read as Livepeer reads it, joined with
     * ',': two keys of order (the names ascending, then ids); a count. */
    r = th_http(&srv, "GET",
                "/api/task?order=name-false&order=id-false&count=1&count=1&filters="
                "%5B%7B%22id%22%3A%22name%22%2C%22value%22%3A%22tw-%22%7D%5D",
                NULL);
    CHECK_INT(r->status, 200);
    CHECK_INT(json_array_size(r->json), 2);
    CHECK_STR(th_str(json_array_get(r->json, 0), "id"), ida);
    CHECK_STR(th_str(json_array_get(r->json, 1), "id"), idb);
    char total[16];
    CHECK(th_resp_header(r, "X-Total-Count", total, sizeof total));
    CHECK_STR(total, "2");
    r = th_http(&srv, "GET",
                "/api/task?order=name-true&order=id-false&filters="
                "%5B%7B%22id%22%3A%22name%22%2C%22value%22%3A%22tw-%22%7D%5D",
                NULL);
    CHECK_INT(r->status, 200);
    CHECK_INT(json_array_size(r->json), 2);
    CHECK_STR(th_str(json_array_get(r->json, 0), "id"), idb);
    /* Arguments the view ignores may repeat, as one alone. */
    CHECK_INT(th_http(&srv, "GET", "/api/task?all=1&all=0", NULL)->status, 200);
    r = th_http(
        &srv, "GET",
        "/api/task?limit=1&filters=%5B%7B%22id%22%3A%22name%22%2C%22value%22%3A%22tw-%22%7D%5D",
        NULL);
    CHECK_INT(r->status, 200);
    CHECK_INT(json_array_size(r->json), 1);
    free(ida);
    free(idb);
}

/* POST /oauth/token with body (Content-Type ct, NULL for none) and extra query q. */
static struct th_resp *oauth(struct th_server *s, const char *q, const char *ct, const char *body) {
    char path[256], hdr[128];
    snprintf(path, sizeof path, "/oauth/token%s", q ? q : "");
    snprintf(hdr, sizeof hdr, "Content-Type: %s", ct ? ct : "application/x-www-form-urlencoded");
    const char *const headers[] = {hdr, NULL};
    return th_http_raw(s, "POST", path, body, strlen(body), headers);
}

/* RFC 6749's token request: a parameter at most once (3.2), a form body;
 * each refusal is 400 invalid_request naming it. The first of a repeated
 * client_id won; a JSON body and a missing grant_type were answered
 * unsupported_grant_type "'grant_type' must be 'client_credentials'". */
static void test_oauth_token_request(void) {
    struct th_server s;
    CHECK_INT(th_server_start(&s, NULL), 0);
    struct th_resp *r =
        th_http(&s, "POST", "/v1/tokens", "{\"role\":\"client\",\"namespace\":\"default\"}");
    CHECK_INT(r->status, 201);
    char id[32], secret[128], good[300];
    snprintf(id, sizeof id, "%s", th_str(r->json, "id"));
    snprintf(secret, sizeof secret, "%s", th_str(r->json, "secret"));
    snprintf(good, sizeof good, "grant_type=client_credentials&client_id=%s&client_secret=%s", id,
             secret);
    char body[400];
    static const struct {
        const char *query, *ct, *extra, *name;
    } twice[] = {
        {NULL, NULL, "&client_id=ffffffffffffffff", "client_id"},
        {"?client_id=ffffffffffffffff", NULL, "", "client_id"},
        {NULL, NULL, "&grant_type=password", "grant_type"},
        {"?client_secret=x", NULL, "", "client_secret"},
        {NULL, NULL, "&scope=a&scope=b", "scope"},
    };
    for (size_t i = 0; i < sizeof twice / sizeof twice[0]; i++) {
        snprintf(body, sizeof body, "%s%s", good, twice[i].extra);
        r = oauth(&s, twice[i].query, twice[i].ct, body);
        CHECK_INT(r->status, 400);
        CHECK_STR(th_str(r->json, "error"), "invalid_request");
        char want[80];
        snprintf(want, sizeof want, "'%s' is given more than once", twice[i].name);
        CHECK_STR(th_str(r->json, "error_description"), want);
    }
    /* The same pair in multipart/form-data, client_id twice. */
    snprintf(
        body, sizeof body,
        "--B\r\nContent-Disposition: form-data; name=\"grant_type\"\r\n\r\n"
        "client_credentials\r\n--B\r\nContent-Disposition: form-data; name=\"client_id\"\r\n\r\n"
        "%s\r\n--B\r\nContent-Disposition: form-data; name=\"client_id\"\r\n\r\n"
        "ffffffffffffffff\r\n--B\r\nContent-Disposition: form-data; "
        "name=\"client_secret\"\r\n\r\n%s\r\n--B--\r\n",
        id, secret);
    r = oauth(&s, NULL, "multipart/form-data; boundary=B", body);
    CHECK_INT(r->status, 400);
    CHECK_STR(th_str(r->json, "error_description"), "'client_id' is given more than once");
    /* No grant_type: invalid_request, not unsupported_grant_type. */
    snprintf(body, sizeof body, "client_id=%s&client_secret=%s", id, secret);
    r = oauth(&s, NULL, NULL, body);
    CHECK_INT(r->status, 400);
    CHECK_STR(th_str(r->json, "error"), "invalid_request");
    CHECK(strstr(th_str(r->json, "error_description"), "'grant_type' is required") != NULL);
    /* A JSON body is not a form. */
    snprintf(
        body, sizeof body,
        "{\"grant_type\":\"client_credentials\",\"client_id\":\"%s\",\"client_secret\":\"%s\"}", id,
        secret);
    r = oauth(&s, NULL, "application/json", body);
    CHECK_INT(r->status, 400);
    CHECK_STR(th_str(r->json, "error"), "invalid_request");
    CHECK(strstr(th_str(r->json, "error_description"), "application/x-www-form-urlencoded") !=
          NULL);
    /* What is served stays served: the form, once each, and a grant not served. */
    r = oauth(&s, NULL, NULL, good);
    CHECK_INT(r->status, 200);
    CHECK_STR(th_str(r->json, "access_token"), secret);
    snprintf(body, sizeof body, "grant_type=password&client_id=%s&client_secret=%s", id, secret);
    r = oauth(&s, NULL, NULL, body);
    CHECK_INT(r->status, 400);
    CHECK_STR(th_str(r->json, "error"), "unsupported_grant_type");
    th_server_free(&s);
}

/* The token reply's tenant_id is the token's namespace, a string as
 * SailPoint's always is: an admin token's (r->ns NULL, as it acts in every
 * namespace) was null. Now it is the admin token's home namespace. */
static void test_oauth_token_tenant(void) {
    struct th_server s;
    CHECK_INT(th_server_start(&s, NULL), 0);
    struct th_resp *r =
        th_http(&s, "POST", "/v1/tokens", "{\"role\":\"admin\",\"namespace\":\"ops-home\"}");
    CHECK_INT(r->status, 201);
    char admin_id[32], admin[128], auth[160];
    snprintf(admin_id, sizeof admin_id, "%s", th_str(r->json, "id"));
    snprintf(admin, sizeof admin, "%s", th_str(r->json, "secret"));
    snprintf(auth, sizeof auth, "Authorization: Bearer %s", admin);
    const char *const ah[] = {auth, NULL};
    const char *const jh[] = {auth, "Content-Type: application/json", NULL};
    const char *create = "{\"role\":\"client\",\"namespace\":\"acme\"}";
    r = th_http_raw(&s, "POST", "/v1/tokens", create, strlen(create), jh);
    CHECK_INT(r->status, 201);
    char client_id[32], client[128];
    snprintf(client_id, sizeof client_id, "%s", th_str(r->json, "id"));
    snprintf(client, sizeof client, "%s", th_str(r->json, "secret"));
    static const char *const ns[] = {"ops-home", "acme"};
    const char *ids[] = {admin_id, client_id}, *secrets[] = {admin, client};
    for (int i = 0; i < 2; i++) {
        char body[400];
        snprintf(body, sizeof body, "grant_type=client_credentials&client_id=%s&client_secret=%s",
                 ids[i], secrets[i]);
        r = oauth(&s, NULL, NULL, body);
        CHECK_INT(r->status, 200);
        CHECK_STR(th_str(r->json, "access_token"), secrets[i]);
        CHECK(json_is_string(th_get(r->json, "tenant_id")));
        CHECK_STR(th_str(r->json, "tenant_id"), ns[i]);
        CHECK_STR(th_str(r->json, "identity_id"), ids[i]);
    }
    /* A revoked token, admin or not, and an unknown one are 401 invalid_client with no
     * bearer. The handler read an admin token twice (the check, then its home namespace):
     * one revoked or deleted between the reads was let in by the first and got the second's
     * 404 or 503. It reads it once now; that interleaving is not forced here (it needs a
     * pause between the reads), these are the answers either read must give. */
    const char *create2 = "{\"role\":\"admin\",\"namespace\":\"ops-two\"}";
    r = th_http_raw(&s, "POST", "/v1/tokens", create2, strlen(create2), jh);
    CHECK_INT(r->status, 201);
    char admin2_id[32], admin2[128];
    snprintf(admin2_id, sizeof admin2_id, "%s", th_str(r->json, "id"));
    snprintf(admin2, sizeof admin2, "%s", th_str(r->json, "secret"));
    const char *revoked_ids[] = {admin2_id, client_id}, *revoked[] = {admin2, client};
    for (int i = 0; i < 2; i++) {
        char path_tok[64], body[400];
        snprintf(path_tok, sizeof path_tok, "/v1/tokens/%s", revoked_ids[i]);
        CHECK_INT(th_http_raw(&s, "DELETE", path_tok, NULL, 0, ah)->status, 204);
        snprintf(body, sizeof body, "grant_type=client_credentials&client_id=%s&client_secret=%s",
                 revoked_ids[i], revoked[i]);
        r = oauth(&s, NULL, NULL, body);
        CHECK_INT(r->status, 401);
        CHECK_STR(th_str(r->json, "error"), "invalid_client");
        CHECK(th_get(r->json, "access_token") == NULL);
    }
    {
        char body[400];
        /* The revoked admin's secret under an id no token has. */
        const char *secret_hex = strrchr(admin2, '_') + 1;
        snprintf(body, sizeof body,
                 "grant_type=client_credentials&client_id=ffffffffffffffff&client_secret=%s",
                 secret_hex);
        r = oauth(&s, NULL, NULL, body);
        CHECK_INT(r->status, 401);
        CHECK_STR(th_str(r->json, "error"), "invalid_client");
        CHECK(th_get(r->json, "access_token") == NULL);
    }
    /* The admin's bearer still reads every namespace through the view. */
    const char *task = "{\"type\":\"sp-tenant\",\"namespace\":\"acme\"}";
    r = th_http_raw(&s, "POST", "/v1/tasks", task, strlen(task), jh);
    CHECK_INT(r->status, 201);
    char path[96];
    snprintf(path, sizeof path, "/beta/task-status/%s", th_str(r->json, "id"));
    r = th_http_raw(&s, "GET", path, NULL, 0, ah);
    CHECK_INT(r->status, 200);
    th_server_free(&s);
}

/* SailPoint's PATCH takes a JSON Patch: its media type is matched whole,
 * with no parameter but a UTF-8 charset. A prefix match took
 * "application/jsonx" and a Latin-1 charset, and applied the patch. */
static void test_sailpoint_patch_media_type(void) {
    char *id = th_submit(&srv, "sp-ct", NULL);
    char path[96];
    snprintf(path, sizeof path, "/beta/task-status/%s", id);
    const char *patch = "[{\"op\":\"replace\",\"path\":\"/progress\",\"value\":\"half\"}]";
    static const char *const refused[] = {
        "application/jsonx",
        "application/json-patch+jsonfoo",
        "application/json-patch+json; charset=iso-8859-1",
        "application/json-patch+json; x=y",
        "application/merge-patch+json",
        "text/plain",
    };
    char *before = snapshot();
    for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++) {
        char hdr[128];
        snprintf(hdr, sizeof hdr, "Content-Type: %s", refused[i]);
        const char *const headers[] = {hdr, NULL};
        struct th_resp *r = th_http_raw(&srv, "PATCH", path, patch, strlen(patch), headers);
        if (r->status != 415 || !th_str(r->json, "detailCode") ||
            strcmp(th_str(r->json, "detailCode"), "415 Unsupported Media Type") != 0 ||
            !strstr(r->body, "'Content-Type' must be"))
            th_fail(__FILE__, __LINE__, "PATCH as '%s': %ld %.300s", refused[i], r->status,
                    r->body);
    }
    char *after = snapshot();
    CHECK_STR(after, before);
    free(before);
    free(after);
    static const char *const taken[] = {
        "application/json-patch+json",
        "Application/JSON-Patch+JSON; charset=\"UTF-8\"",
        "application/json; charset=utf-8",
    };
    /* Each its own value, so that each 200 is seen to apply its patch. */
    for (size_t i = 0; i < sizeof taken / sizeof taken[0]; i++) {
        char hdr[128], value[16], mine[96];
        snprintf(hdr, sizeof hdr, "Content-Type: %s", taken[i]);
        snprintf(value, sizeof value, "step %zu", i);
        snprintf(mine, sizeof mine,
                 "[{\"op\":\"replace\",\"path\":\"/progress\",\"value\":\"%s\"}]", value);
        const char *const headers[] = {hdr, NULL};
        struct th_resp *r = th_http_raw(&srv, "PATCH", path, mine, strlen(mine), headers);
        CHECK_INT(r->status, 200);
        CHECK_STR(th_str(r->json, "progress"), value);
    }
    free(id);
}

/* A SOAP 1.1 request of the Scene7 view whose Body holds `param`. */
static struct th_resp *soap(const char *param) {
    char body[4096];
    snprintf(body, sizeof body,
             "<?xml version=\"1.0\" encoding=\"UTF-8\"?><s:Envelope "
             "xmlns:s=\"http://schemas.xmlsoap.org/soap/envelope/\" "
             "xmlns:t=\"http://www.scene7.com/IpsApi/xsd/2014-04-03\"><s:Body>%s</s:Body>"
             "</s:Envelope>",
             param);
    const char *const headers[] = {"Content-Type: text/xml; charset=utf-8", NULL};
    return th_http_raw(&srv, "POST", "/scene7/services/IpsApiService", body, strlen(body), headers);
}

/* A companyHandle that is no namespace name is fault 30001 naming it in
 * every operation: only submitJob checked, so a read with an IPS-style
 * handle ("c|47") answered an empty jobArray and a control "jobHandle
 * not found", as if the company were right and had no such job. */
static void test_scene7_company_not_a_name(void) {
    char *id = th_submit(&srv, "s7", "\"name\":\"s7-job\"");
    /* Each operation, and whether its request names the job. */
    static const struct {
        const char *op;
        bool job;
    } ops[] = {
        {"getActiveJobs", true},    {"getScheduledJobs", true}, {"getJobLogs", false},
        {"getJobLogDetails", true}, {"stopJob", true},          {"pauseJob", true},
        {"resumeJob", true},        {"executeJob", true},       {"deleteJob", true},
    };
    static const char *const companies[] = {"c|47", "default ", "caf\xc3\xa9", ""};
    char *before = snapshot();
    char *scheds = strdup(th_http(&srv, "GET", "/v1/schedules", NULL)->body);
    for (size_t i = 0; i <= sizeof ops / sizeof ops[0]; i++) {
        for (size_t k = 0; k < sizeof companies / sizeof companies[0]; k++) {
            char param[1024];
            const char *op = i < sizeof ops / sizeof ops[0] ? ops[i].op : "submitJob";
            if (i < sizeof ops / sizeof ops[0])
                snprintf(param, sizeof param,
                         "<t:%sParam><t:companyHandle>%s</t:companyHandle>%s%s%s</t:%sParam>", op,
                         companies[k], ops[i].job ? "<t:jobHandle>" : "", ops[i].job ? id : "",
                         ops[i].job ? "</t:jobHandle>" : "", op);
            else
                snprintf(param, sizeof param,
                         "<t:submitJobParam><t:companyHandle>%s</t:companyHandle>"
                         "<t:jobName>s7</t:jobName><t:uploadUrlsJob/></t:submitJobParam>",
                         companies[k]);
            struct th_resp *r = soap(param);
            if (!*companies[k]) {
                /* Empty is absent: required by all but getActiveJobs and getJobLogs. */
                CHECK(r->status == 200 || strstr(r->body, "<code>30002</code>"));
                continue;
            }
            if (r->status != 500 || !strstr(r->body, "<ipsApiFault") ||
                !strstr(r->body, "<code>30001</code>") ||
                !strstr(r->body, "companyHandle must be 1-64 of [A-Za-z0-9._-]"))
                th_fail(__FILE__, __LINE__, "%s with companyHandle '%s': %ld %.400s", op,
                        companies[k], r->status, r->body);
        }
    }
    char *after = snapshot();
    CHECK_STR(after, before);
    CHECK_STR(th_http(&srv, "GET", "/v1/schedules", NULL)->body, scheds);
    free(after);
    free(before);
    free(scheds);
    /* The right company still finds the job. */
    char param[512];
    snprintf(param, sizeof param,
             "<t:getActiveJobsParam><t:companyHandle>default</t:companyHandle>"
             "<t:jobHandle>%s</t:jobHandle></t:getActiveJobsParam>",
             id);
    struct th_resp *r = soap(param);
    CHECK_INT(r->status, 200);
    CHECK(strstr(r->body, id) != NULL);
    free(id);
}

/* The Scene7 service took any Content-Type, or none: a SOAP 1.1 request
 * comes as text/xml, and anything else is 415 with a fault naming
 * 'Content-Type' (ipsApiFault 30003), nothing stored; text/xml with a UTF-8
 * charset, as SOAP clients send it, is taken. */
static void test_scene7_content_type(void) {
    static const char *const submit =
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?><s:Envelope "
        "xmlns:s=\"http://schemas.xmlsoap.org/soap/envelope/\" "
        "xmlns:t=\"http://www.scene7.com/IpsApi/xsd/2014-04-03\"><s:Body><t:submitJobParam>"
        "<t:companyHandle>default</t:companyHandle><t:jobName>s7-ct</t:jobName>"
        "<t:uploadUrlsJob/></t:submitJobParam></s:Body></s:Envelope>";
    static const struct {
        const char *header, *reason;
    } refused[] = {
        {"Content-Type:", "'Content-Type' is missing"}, /* curl sends none */
        {"Content-Type: application/x-www-form-urlencoded",
         "'Content-Type' must be 'text/xml' (SOAP 1.1, charset UTF-8 or US-ASCII), not "
         "'application/x-www-form-urlencoded'"},
        {"Content-Type: application/json", "not 'application/json'"},
        {"Content-Type: text/plain", "not 'text/plain'"},
        {"Content-Type: application/xml", "not 'application/xml'"},
        {"Content-Type: text/xmlx", "not 'text/xmlx'"},
        {"Content-Type: text/xml; charset=iso-8859-1", "not 'text/xml; charset=iso-8859-1'"},
        {"Content-Type: text/xml; charset=\"ISO-8859-1\"",
         "not 'text/xml; charset=\"ISO-8859-1\"'"},
        {"Content-Type: text/xml; charset=utf-16", "not 'text/xml; charset=utf-16'"},
        {"Content-Type: text/xml; charset=us-ascii7", "not 'text/xml; charset=us-ascii7'"},
        {"Content-Type: text/xml; charset=\"us-ascii", "not 'text/xml; charset=\"us-ascii'"},
        {"Content-Type: text/xml; x=<y>", "not 'text/xml; x=&lt;y&gt;'"},
        {"Content-Type: application/soap+xml; charset=utf-8",
         "'application/soap+xml' is SOAP 1.2; this service speaks SOAP 1.1"},
        /* SOAP 1.2 clients send their action as a parameter. */
        {"Content-Type: application/soap+xml; charset=utf-8; action=\"urn:submitJob\"",
         "'application/soap+xml' is SOAP 1.2; this service speaks SOAP 1.1"},
    };
    char *before = snapshot();
    for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++) {
        const char *const headers[] = {refused[i].header, NULL};
        struct th_resp *r = th_http_raw(&srv, "POST", "/scene7/services/IpsApiService", submit,
                                        strlen(submit), headers);
        char ct[128] = "";
        th_resp_header(r, "Content-Type", ct, sizeof ct);
        if (r->status != 415 || strcmp(ct, "text/xml; charset=utf-8") != 0 ||
            !strstr(r->body, "<faultcode>soapenv:Client</faultcode>") ||
            !strstr(r->body,
                    "<ipsApiFault xmlns=\"http://www.scene7.com/IpsApi/xsd/2014-04-03\">"
                    "<code>30003</code>") ||
            !strstr(r->body, refused[i].reason))
            th_fail(__FILE__, __LINE__, "'%s': %ld %s %.500s", refused[i].header, r->status, ct,
                    r->body);
    }
    /* A byte above 0x7F under a US-ASCII label: the body is not what it says (Latin-1, most
     * likely, which reading it as UTF-8 would get wrong), so it is refused, naming the
     * charset. The same bytes labelled UTF-8 are taken below. */
    static const char *const high =
        "<?xml version=\"1.0\"?><s:Envelope "
        "xmlns:s=\"http://schemas.xmlsoap.org/soap/envelope/\" "
        "xmlns:t=\"http://www.scene7.com/IpsApi/xsd/2014-04-03\"><s:Body><t:submitJobParam>"
        "<t:companyHandle>default</t:companyHandle><t:jobName>s7-ct-\xc3\xa9</t:jobName>"
        "<t:uploadUrlsJob/></t:submitJobParam></s:Body></s:Envelope>";
    static const struct {
        const char *header, *charset;
    } ascii_high[] = {
        {"Content-Type: text/xml; charset=us-ascii", "'us-ascii'"},
        {"Content-Type: text/xml; charset=\"ASCII\"", "'ascii'"},
        {"Content-Type: text/xml; charset=ansi_x3.4-1968", "'ANSI_X3.4-1968'"},
    };
    for (size_t i = 0; i < sizeof ascii_high / sizeof ascii_high[0]; i++) {
        const char *const headers[] = {ascii_high[i].header, NULL};
        struct th_resp *r = th_http_raw(&srv, "POST", "/scene7/services/IpsApiService", high,
                                        strlen(high), headers);
        char want[128];
        snprintf(want, sizeof want, "the body holds byte 0xC3 (at %zu), which charset %s",
                 (size_t)(strstr(high, "\xc3") - high), ascii_high[i].charset);
        if (r->status != 415 || !strstr(r->body, "<faultcode>soapenv:Client</faultcode>") ||
            !strstr(r->body, "<code>30003</code>") || !strstr(r->body, want))
            th_fail(__FILE__, __LINE__, "'%s': %ld %.500s", ascii_high[i].header, r->status,
                    r->body);
    }
    char *after = snapshot();
    CHECK_STR(after, before);
    free(before);
    free(after);
    const char *const utf8_headers[] = {"Content-Type: text/xml; charset=utf-8", NULL};
    struct th_resp *hr = th_http_raw(&srv, "POST", "/scene7/services/IpsApiService", high,
                                     strlen(high), utf8_headers);
    CHECK_INT(hr->status, 200);
    /* US-ASCII is UTF-8's first 128 characters: a 7-bit body so labelled was refused (415). */
    static const char *const taken[] = {
        "Content-Type: text/xml",
        "Content-Type: text/xml; charset=utf-8",
        "Content-Type: TEXT/XML;charset=\"UTF-8\"",
        "Content-Type: text/xml; charset=us-ascii",
        "Content-Type: text/xml; charset=\"US-ASCII\"",
        "Content-Type: text/xml;charset=ascii ",
        "Content-Type: text/xml; charset=ANSI_X3.4-1968",
    };
    for (size_t i = 0; i < sizeof taken / sizeof taken[0]; i++) {
        const char *const headers[] = {taken[i], NULL};
        struct th_resp *r = th_http_raw(&srv, "POST", "/scene7/services/IpsApiService", submit,
                                        strlen(submit), headers);
        if (r->status != 200 || !strstr(r->body, "<submitJobReturn"))
            th_fail(__FILE__, __LINE__, "'%s': %ld %.300s", taken[i], r->status, r->body);
    }
    struct th_resp *r = th_http(&srv, "GET", "/v1/tasks?name_prefix=s7-ct", NULL);
    CHECK_INT(json_array_size(th_get(r->json, "tasks")), 8);
}

/* An authorizationFault names the operation the token may not call: the
 * reason named the service's one path ("may not call 'POST
 * /scene7/services/IpsApiService'"), the same for all ten operations. */
static void test_scene7_authorization_names_operation(void) {
    struct th_server s;
    CHECK_INT(th_server_start(&s, NULL), 0);
    struct th_resp *r =
        th_http(&s, "POST", "/v1/tokens", "{\"role\":\"admin\",\"namespace\":\"default\"}");
    CHECK_INT(r->status, 201);
    char admin[160], auth[200];
    snprintf(admin, sizeof admin, "%s", th_str(r->json, "secret"));
    snprintf(auth, sizeof auth, "Authorization: Bearer %s", admin);
    const char *const ah[] = {auth, "Content-Type: application/json", NULL};
    static const char *const roles[] = {"reader", "client"};
    static const char *const ops[] = {"stopJob", "deleteJob"};
    const char *task = "{\"type\":\"t\",\"name\":\"az\"}";
    r = th_http_raw(&s, "POST", "/v1/tasks", task, strlen(task), ah);
    CHECK_INT(r->status, 201);
    char id[40];
    snprintf(id, sizeof id, "%s", th_str(r->json, "id"));
    for (int i = 0; i < 2; i++) {
        char body[160];
        snprintf(body, sizeof body, "{\"role\":\"%s\",\"namespace\":\"default\"}", roles[i]);
        r = th_http_raw(&s, "POST", "/v1/tokens", body, strlen(body), ah);
        CHECK_INT(r->status, 201);
        char secret[160], env[2048];
        snprintf(secret, sizeof secret, "%s", th_str(r->json, "secret"));
        snprintf(env, sizeof env,
                 "<?xml version=\"1.0\"?><s:Envelope "
                 "xmlns:s=\"http://schemas.xmlsoap.org/soap/envelope/\" "
                 "xmlns:t=\"http://www.scene7.com/IpsApi/xsd/2014-04-03\"><s:Header><t:authHeader>"
                 "<t:user></t:user><t:password>%s</t:password></t:authHeader></s:Header><s:Body>"
                 "<t:%sParam><t:companyHandle>default</t:companyHandle><t:jobHandle>%s"
                 "</t:jobHandle></t:%sParam></s:Body></s:Envelope>",
                 secret, ops[i], id, ops[i]);
        const char *const xh[] = {"Content-Type: text/xml; charset=utf-8", NULL};
        r = th_http_raw(&s, "POST", "/scene7/services/IpsApiService", env, strlen(env), xh);
        CHECK_INT(r->status, 500);
        CHECK(strstr(r->body, "<authorizationFault") != NULL);
        char want[160];
        snprintf(want, sizeof want, "<reason>a '%s' token may not call '%s'</reason>", roles[i],
                 ops[i]);
        if (!strstr(r->body, want)) th_fail(__FILE__, __LINE__, "want %s in %.600s", want, r->body);
    }
    r = th_http_raw(&s, "GET", "/v1/tasks?limit=10", NULL, 0, ah);
    CHECK_INT(r->status, 200);
    CHECK_STR(th_str(r->json, "tasks.0.phase"), "pending"); /* neither stopped nor deleted */
    th_server_free(&s);
}

static const struct th_test tests[] = {
    {"list_parameter_twice", test_list_parameter_twice},
    {"oauth_token_request", test_oauth_token_request},
    {"oauth_token_tenant", test_oauth_token_tenant},
    {"scene7_company_not_a_name", test_scene7_company_not_a_name},
    {"sailpoint_patch_media_type", test_sailpoint_patch_media_type},
    {"scene7_authorization_names_operation", test_scene7_authorization_names_operation},
    {"scene7_content_type", test_scene7_content_type},
    {NULL, NULL},
};

int main(int argc, char **argv) {
    return th_main_server(tests, argc, argv, &srv, NULL);
}
