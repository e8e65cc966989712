/*
 * fuzz_scene7_soap: the Scene7 SOAP request parser and the HTTP Basic
 * decoder (src/compat/scene7_soap.c), the first code a Scene7 request
 * meets. Checks the parser's promises: a refusal carries one of the four
 * ipsApiFault codes and a reason; a success names an operation and holds
 * every parameter that operation requires, each within its cap; a
 * submitJob has a known job kind and a JSON object of details. The input
 * is also read as an Authorization header value.
 */
#include <stdlib.h>
#include <string.h>

#include "../../src/compat/scene7_soap.h"
#include "fuzz.h"

static void fuzz_check_len(const char *s, size_t max) {
    if (s && (strlen(s) > max || !*s)) abort();
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
        if (q.op != SCENE7_OP_GET_ACTIVE_JOBS && !q.company_handle) abort();
        if (q.op != SCENE7_OP_GET_ACTIVE_JOBS && q.op != SCENE7_OP_SUBMIT_JOB && !q.job_handle)
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
    char user[64], password[128];
    if (scene7_basic_parse(s, user, sizeof user, password, sizeof password) == 0 &&
        (strlen(user) >= sizeof user || strlen(password) >= sizeof password || strchr(user, ':')))
        abort();
    free(s);
    return 0;
}
