/*
 * fuzz_scene7_soap: the Scene7 SOAP request parser and the HTTP Basic
 * decoder (src/compat/scene7_soap.c), the first code a Scene7 request
 * meets. Checks the parser's promises: a refusal carries one of the four
 * ipsApiFault codes and a reason; a success names an operation and holds
 * every parameter that operation requires, each within its cap; a
 * submitJob has a known job kind and a JSON object of details, and an
 * execSchedule it took maps to a cron expression cron_parse takes. The
 * input is also read as an Authorization header value, and as an
 * execSchedule alone (the Quartz-to-cron mapping).
 */
#include <stdlib.h>
#include <string.h>

#include "../../src/common/cron.h"
#include "../../src/compat/scene7_soap.h"
#include "fuzz.h"

static void fuzz_check_len(const char *s, size_t max) {
    if (s && (strlen(s) > max || !*s)) abort();
}

/* A mapped execSchedule is a cron expression of six fields that cron_parse takes. */
static void fuzz_check_cron(const char *cron) {
    struct cron_expr c;
    struct tm_error e;
    err_clear(&e);
    if (cron_parse(cron, &c, &e) || !c.has_seconds) abort();
}

static bool op_needs_company(enum scene7_op op) {
    return op != SCENE7_OP_GET_ACTIVE_JOBS && op != SCENE7_OP_GET_JOB_LOGS;
}

static bool op_needs_job_handle(enum scene7_op op) {
    return op >= SCENE7_OP_STOP_JOB && op <= SCENE7_OP_DELETE_JOB;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    struct scene7_request q;
    struct scene7_fault f;
    if (scene7_soap_parse((const char *)data, size, &q, &f) == 0) {
        if (!scene7_op_name(q.op)) abort();
        fuzz_check_len(q.company_handle, SCENE7_HANDLE_MAX);
        fuzz_check_len(q.job_handle, SCENE7_HANDLE_MAX);
        fuzz_check_len(q.job_name, SCENE7_HANDLE_MAX);
        fuzz_check_len(q.description, SCENE7_TEXT_MAX);
        if (op_needs_company(q.op) && !q.company_handle) abort();
        if (op_needs_job_handle(q.op) && !q.job_handle) abort();
        if ((q.exec_schedule != NULL) != (q.exec_cron != NULL)) abort();
        if (q.exec_schedule) fuzz_check_cron(q.exec_cron);
        if (q.exec_schedule && q.has_exec_time) abort();
        if (q.num_rows < 0 || q.num_rows > SCENE7_ROWS_MAX || q.records_per_page < 0 ||
            q.records_per_page > SCENE7_ROWS_MAX || q.results_page < 0 ||
            q.nlog_types > SCENE7_LOG_TYPES_MAX)
            abort();
        if (q.op == SCENE7_OP_SUBMIT_JOB &&
            (!q.job_name || !q.job_kind || !scene7_job_type_of(q.job_kind) ||
             !json_is_object(q.job_detail)))
            abort();
        if (q.auth.fault_http_status &&
            (q.auth.fault_http_status < 100 || q.auth.fault_http_status > 599))
            abort();
    } else if (f.code < SCENE7_FAULT_EXCEPTION || f.code > SCENE7_FAULT_INVALID_REQUEST_XML ||
               !f.reason[0]) {
        abort();
    }
    scene7_request_release(&q);

    char *s = malloc(size + 1);
    memcpy(s, data, size);
    s[size] = '\0';
    char cron[CRON_MAX_TEXT + 1];
    if (scene7_exec_schedule_cron(s, cron, sizeof cron, &f) == 0)
        fuzz_check_cron(cron);
    else if (f.code != SCENE7_FAULT_INVALID_PARAMETER || strncmp(f.reason, "'execSchedule' ", 15))
        abort();
    char user[64], password[128];
    if (scene7_basic_parse(s, user, sizeof user, password, sizeof password) == 0 &&
        (strlen(user) >= sizeof user || strlen(password) >= sizeof password || strchr(user, ':')))
        abort();
    free(s);
    return 0;
}
