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
/* The most elements and attributes a request may have (checked by a raw
 * scan before libxml2 sees it), and how far the credentials are looked
 * for before the parse (scene7_soap_peek_auth). */
#define SCENE7_ELEMENTS_MAX      10000
#define SCENE7_ATTRS_MAX         10000
#define SCENE7_ELEMENT_ATTRS_MAX 64
#define SCENE7_AUTH_PEEK_BYTES   (64 * 1024)
#define SCENE7_HANDLE_MAX        256  /* companyHandle, jobHandle, names */
#define SCENE7_TEXT_MAX          4096 /* description, user, password, detail values */
#define SCENE7_SCHEDULE_MAX      256  /* execSchedule */
#define SCENE7_LOG_TYPES_MAX     100  /* logTypeArray items */
#define SCENE7_ROWS_MAX          1000 /* numRows and recordsPerPage: larger asks get this many */

/* ipsApiFault codes (faults/r-ips-api-fault.md). */
#define SCENE7_FAULT_EXCEPTION           30000
#define SCENE7_FAULT_INVALID_PARAMETER   30001
#define SCENE7_FAULT_MISSING_PARAMETER   30002
#define SCENE7_FAULT_INVALID_REQUEST_XML 30003

struct scene7_fault {
    int code; /* SCENE7_FAULT_* */
    char reason[256];
};

/* The operations served, X(ID, "soapName"), in the WSDL's order: they give
 * enum scene7_op, scene7_op_name and the WSDL's operations (scene7_wsdl.c). */
#define SCENE7_OPS(X)                         \
    X(SUBMIT_JOB, "submitJob")                \
    X(GET_ACTIVE_JOBS, "getActiveJobs")       \
    X(STOP_JOB, "stopJob")                    \
    X(PAUSE_JOB, "pauseJob")                  \
    X(RESUME_JOB, "resumeJob")                \
    X(EXECUTE_JOB, "executeJob")              \
    X(DELETE_JOB, "deleteJob")                \
    X(GET_SCHEDULED_JOBS, "getScheduledJobs") \
    X(GET_JOB_LOGS, "getJobLogs")             \
    X(GET_JOB_LOG_DETAILS, "getJobLogDetails")

// clang-format off
enum scene7_op {
    SCENE7_OP_NONE,
#define SCENE7_OP_ENUM(id, name) SCENE7_OP_##id,
    SCENE7_OPS(SCENE7_OP_ENUM)
#undef SCENE7_OP_ENUM
    SCENE7_OP_COUNT
};
// clang-format on

/* sortBy of getJobLogs (Job Log Sort Fields) and getJobLogDetails (Date, LogType). */
enum scene7_sort {
    SCENE7_SORT_DEFAULT, /* not given: StartDate (getJobLogs), Date (getJobLogDetails) */
    SCENE7_SORT_JOB_NAME,
    SCENE7_SORT_LOG_TYPE,
    SCENE7_SORT_START_DATE,
    SCENE7_SORT_COMPANY_NAME,
    SCENE7_SORT_USER_ID,
    SCENE7_SORT_EMAIL,
    SCENE7_SORT_FILE_ERROR_COUNT,
    SCENE7_SORT_FILE_WARNING_COUNT,
    SCENE7_SORT_FILE_SUCCESS_COUNT,
    SCENE7_SORT_DATE,
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
    /* submitJob: execSchedule as sent (trimmed), and the same schedule as a
     * taskmill cron expression (scene7_exec_schedule_cron); NULL when absent. */
    char *exec_schedule, *exec_cron;
    /* getJobLogs and getJobLogDetails. */
    enum scene7_sort sort_by;
    int sort_direction; /* 0 not given, 1 Ascending, -1 Descending */
    bool has_start_date, has_end_date;
    int64_t start_date_ms, end_date_ms;
    int64_t num_rows, records_per_page, results_page; /* 0 = not given; rows capped */
    char **log_types;                                 /* logTypeArray items */
    size_t nlog_types;
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
 * A first look, before any parse, at the credentials of a request: the
 * `user` and `password` of an `authHeader` element (any prefix) found whole
 * within the first SCENE7_AUTH_PEEK_BYTES (the SOAP Header comes before
 * the Body), as raw text (an escaped character fails the credential
 * check, as no valid one has any). Returns 1 with both set (empty when
 * absent), or 0 when there is no authHeader in the look. Linear; no
 * allocation. The full parse checks the credentials again, with the
 * operation's own permission.
 */
int scene7_soap_peek_auth(const char *body, size_t len, char *user, size_t user_n, char *password,
                          size_t password_n);

/*
 * Parses an `Authorization: Basic base64(user:password)` header value into
 * user and password (NUL-terminated, at most n-1 bytes each). Returns 0, or
 * -1 when the value is not Basic, not base64, has no ':' or is too long.
 */
int scene7_basic_parse(const char *header, char *user, size_t user_n, char *password,
                       size_t password_n);

/*
 * Turns an execSchedule (Quartz style, as IPS takes it: seconds minutes
 * hours day-of-month month [day-of-week [year]], day-of-week 1 = Sunday
 * to 7 = Saturday) into a taskmill cron expression of six fields (cron.h)
 * in out (n bytes). Five fields are the IPS example's form without a
 * day-of-week; a year must be '*'. A range whose end comes before its
 * start wraps round, as Quartz reads it (FRI-MON: FRI, SAT, SUN, MON), and
 * is written as two ranges. Refuses what cron.h cannot express
 * (L, W, #, a day-of-month and a day-of-week both restricted) and what it
 * refuses, with fault 30001 naming execSchedule. Returns 0 or -1. Pure.
 */
int scene7_exec_schedule_cron(const char *text, char *out, size_t n, struct scene7_fault *f);

/*
 * The Scene7 Job Types constant for a job-detail element
 * ("uploadUrlsJob" -> "UrlUpload"), or NULL when it is not one we accept.
 */
const char *scene7_job_type_of(const char *job_kind);

#endif
