/*
 * scene7_soap: the request side of the Scene7 IPS view: a SOAP 1.1 body
 * (bytes) to a struct scene7_request, and HTTP Basic credentials to a
 * user and password. Pure functions: no I/O, no clock, no store, so both
 * can be unit-tested (tests/unit/test_scene7_soap.c) and fuzzed
 * (tests/fuzz/fuzz_scene7_soap.c).
 *
 * XML is read by libxml2 with network access off, entity substitution off
 * and no DTD loaded; a document with a DOCTYPE is refused before libxml2
 * sees it, so no entity can be defined at all (no billion laughs, no
 * external entities). The input is read as UTF-8 whatever it declares.
 *
 * Ownership: a filled request owns its strings and its JSON; release it
 * with scene7_request_release (also after an error). Thread-safe.
 * Errors: a struct scene7_fault with the ipsApiFault code and a reason.
 */
#ifndef TASKMILL_SCENE7_SOAP_H
#define TASKMILL_SCENE7_SOAP_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The service's one target namespace (WSDL 6.8 / 2014R1). */
#define SCENE7_NS             "http://www.scene7.com/IpsApi/xsd/2014-04-03"
#define SCENE7_SOAP_MAX_BYTES (1024 * 1024)
#define SCENE7_HANDLE_MAX     256  /* companyHandle, jobHandle, names */
#define SCENE7_TEXT_MAX       4096 /* description, user, password, detail values */

/* ipsApiFault codes (faults/r-ips-api-fault.md). */
#define SCENE7_FAULT_EXCEPTION           30000
#define SCENE7_FAULT_INVALID_PARAMETER   30001
#define SCENE7_FAULT_MISSING_PARAMETER   30002
#define SCENE7_FAULT_INVALID_REQUEST_XML 30003

struct scene7_fault {
    int code; /* SCENE7_FAULT_* */
    char reason[256];
};

enum scene7_op {
    SCENE7_OP_NONE,
    SCENE7_OP_SUBMIT_JOB,
    SCENE7_OP_GET_ACTIVE_JOBS,
    SCENE7_OP_STOP_JOB,
    SCENE7_OP_PAUSE_JOB,
    SCENE7_OP_RESUME_JOB,
    SCENE7_OP_EXECUTE_JOB,
    SCENE7_OP_DELETE_JOB,
    SCENE7_OP_COUNT
};

/* The SOAP `authHeader`. */
struct scene7_auth {
    bool present;
    char *user, *password;
    int fault_http_status; /* faultHttpStatusCode, 0 = the default (500) */
};

struct scene7_request {
    enum scene7_op op;
    struct scene7_auth auth;
    /* Parameters; NULL when absent. Required ones are checked per op. */
    char *company_handle, *job_handle, *original_name;
    char *job_name, *user_handle, *locale, *description;
    bool has_exec_time;
    int64_t exec_time_ms;
    /* submitJob: the job-detail element's local name ("uploadUrlsJob") and
     * its content as a JSON object (leaf elements strings, repeated names
     * arrays). */
    char *job_kind;
    json_t *job_detail;
};

/* "getActiveJobs" for SCENE7_OP_GET_ACTIVE_JOBS; NULL for NONE. */
const char *scene7_op_name(enum scene7_op op);
/*
 * Parses a SOAP 1.1 request: the envelope, the authHeader (optional) and
 * the one `<op>Param` element of the body, checking each parameter of that
 * operation (required, length, type, no unknown or repeated elements).
 * Returns 0, or -1 with *f set; `out` must be released either way.
 */
int scene7_soap_parse(const char *body, size_t len, struct scene7_request *out,
                      struct scene7_fault *f);
void scene7_request_release(struct scene7_request *r);

/*
 * Parses an `Authorization: Basic base64(user:password)` header value into
 * user and password (NUL-terminated, at most n-1 bytes each). Returns 0, or
 * -1 when the value is not Basic, not base64, has no ':' or is too long.
 */
int scene7_basic_parse(const char *header, char *user, size_t user_n, char *password,
                       size_t password_n);

/*
 * The Scene7 Job Types constant for a job-detail element
 * ("uploadUrlsJob" -> "UrlUpload"), or NULL when it is not one we accept.
 */
const char *scene7_job_type_of(const char *job_kind);

#endif
