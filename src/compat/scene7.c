/*
 * scene7: see scene7.h. SOAP 1.1 at /scene7/services/IpsApiService and its
 * WSDL at /scene7/webservice/IpsApi.wsdl.
 *
 * The service route is PERM_PUBLIC: the credentials travel in the SOAP
 * authHeader (or HTTP Basic, or a bearer header), so the handler parses
 * the body first (scene7_soap_parse) and then checks them through
 * auth_check_credentials with the operation's own permission. Every
 * refusal is a SOAP fault (ipsApiFault, authenticationFault,
 * authorizationFault), never v1 JSON; HTTP 500 unless the authHeader asks
 * for another status (faultHttpStatusCode), and 415 for a body that is
 * not text/xml (scene7_check_content_type), refused before it is read.
 *
 * Identity: companyHandle is the namespace, jobHandle is the task id (or,
 * for a recurring job, the schedule id: scene7_schedule.c). Reads run on
 * the calling thread; writes are store ops (req_submit), and the parsed
 * request lives in r->owned until the request ends. scene7_int.h lists
 * what the other scene7_*.c files take from here.
 */
#include "scene7.h"

#include <jansson.h>
#include <microhttpd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "../common/timeutil.h"
#include "../common/utf8.h"
#include "../common/xalloc.h"
#include "../server/v1_decode.h"
#include "scene7_int.h"
#include "views.h"

#define SOAP_ENV_OPEN                                                                \
    "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"                                   \
    "<soapenv:Envelope xmlns:soapenv=\"http://schemas.xmlsoap.org/soap/envelope/\">" \
    "<soapenv:Body>"
#define SOAP_ENV_CLOSE    "</soapenv:Body></soapenv:Envelope>\n"
#define SOAP_CONTENT_TYPE "text/xml; charset=utf-8"
/* getActiveJobs has no paging: at most this many jobs, newest first. */
#define SCENE7_ACTIVE_JOBS_MAX 1000

/* ---- Projection ---- */

void scene7_xml_text(struct buf *b, const char *s) {
    static const char *const entities[128] = {
        ['&'] = "&amp;",
        ['<'] = "&lt;",
        ['>'] = "&gt;",
        ['\r'] = "&#13;",
    };
    if (!s) return;
    const char *end = s + strlen(s);
    while (*s) {
        unsigned char c = (unsigned char)*s;
        if (c < 128 && entities[c]) {
            buf_puts(b, entities[c]);
            s++;
            continue;
        }
        if (c < 0x20 && c != '\t' && c != '\n') {
            buf_putc(b, '?'); /* not allowed in XML 1.0 */
            s++;
            continue;
        }
        /* Only characters XML 1.0 allows, in UTF-8: a byte that starts no
         * UTF-8 sequence (a message that quotes the client with "%.64s" can
         * cut a character in two) and U+FFFE, U+FFFF (which jansson, so v1,
         * accepts in a name) become '?', else the reply is not well-formed
         * and a strict client rejects all of it. */
        size_t k = utf8_char_len(s, end);
        const unsigned char *u = (const unsigned char *)s;
        if (k == 0 || (k == 3 && u[0] == 0xEF && u[1] == 0xBF && u[2] >= 0xBE)) {
            buf_putc(b, '?');
            s += k ? k : 1;
            continue;
        }
        buf_put(b, s, k);
        s += k;
    }
}

void scene7_xml_el(struct buf *b, const char *name, const char *text) {
    buf_printf(b, "<%s>", name);
    scene7_xml_text(b, text ? text : "");
    buf_printf(b, "</%s>", name);
}

void scene7_xml_int(struct buf *b, const char *name, int64_t v) {
    if (v > INT32_MAX) v = INT32_MAX; /* xsd:int */
    if (v < INT32_MIN) v = INT32_MIN;
    buf_printf(b, "<%s>%lld</%s>", name, (long long)v, name);
}

static void xml_double(struct buf *b, const char *name, double v) {
    buf_printf(b, "<%s>", name);
    json_put_double(b, v);
    buf_printf(b, "</%s>", name);
}

void scene7_xml_time(struct buf *b, const char *name, int64_t ms) {
    char tmp[TIME_RFC3339_LEN + 1];
    time_format_rfc3339(ms, tmp);
    scene7_xml_el(b, name, tmp);
}

const char *scene7_job_state(const struct task *t) {
    switch (t->phase) {
    case TASK_PENDING:
        return t->paused ? "WaitingClient" : "New";
    case TASK_WAITING:
        return t->paused ? "WaitingClient" : "WaitingCoordinator";
    case TASK_RUNNING:
        return t->paused ? "WaitingClient" : "Running";
    case TASK_STOPPING:
        return "Stopping";
    case TASK_COMPLETED:
    case TASK_FAILED:
    case TASK_CANCELLED:
        return "Done";
    default:
        return "Unknown";
    }
}

const char *scene7_task_state(const struct task *t) {
    switch (t->phase) {
    case TASK_PENDING:
    case TASK_WAITING:
        return "New";
    case TASK_RUNNING:
        return "Processing";
    case TASK_STOPPING:
        return "Stopping";
    case TASK_COMPLETED:
    case TASK_CANCELLED:
        return "Done";
    case TASK_FAILED:
        return "Failed";
    default:
        return "Unknown";
    }
}

static int64_t task_progress_time(const struct task *t) {
    return t->progress.updated_at ? t->progress.updated_at : t->updated_at;
}

/* The progress text: the worker's message; else, once failed, the error. */
static const char *task_progress_message(const struct task *t) {
    if (t->progress.message) return t->progress.message;
    if (t->phase == TASK_FAILED && t->error) return t->error;
    return "";
}

static void task_items_write(struct buf *b, const struct task *t) {
    buf_puts(b, "<taskItemProgressArray>");
    json_t *items = t->items ? json_loads(t->items, 0, NULL) : NULL;
    size_t i;
    json_t *it;
    json_array_foreach(items, i, it) {
        buf_puts(b, "<items>");
        scene7_xml_el(b, "itemName", json_string_value(json_object_get(it, "name")));
        xml_double(b, "progress", json_number_value(json_object_get(it, "progress")));
        scene7_xml_el(b, "progressMessage", json_string_value(json_object_get(it, "message")));
        int64_t at = 0;
        const char *s = json_string_value(json_object_get(it, "updated_at"));
        if (!s || time_parse_rfc3339(s, &at)) at = task_progress_time(t);
        scene7_xml_time(b, "lastProgressUpdate", at);
        buf_puts(b, "</items>");
    }
    json_decref(items);
    buf_puts(b, "</taskItemProgressArray>");
}

static void task_progress_write(struct buf *b, const struct task *t) {
    int64_t done, doing, todo;
    task_counts(t, &done, &doing, &todo);
    buf_puts(b, "<items>");
    scene7_xml_el(b, "taskType", t->type);
    scene7_xml_el(b, "taskState", scene7_task_state(t));
    scene7_xml_int(b, "numProcessed", done);
    scene7_xml_int(b, "numProcessing", doing);
    scene7_xml_int(b, "numPending", todo);
    xml_double(b, "progress", task_ratio(t));
    scene7_xml_el(b, "progressMessage", task_progress_message(t));
    scene7_xml_time(b, "lastProgressUpdate", task_progress_time(t));
    task_items_write(b, t);
    buf_puts(b, "</items>");
}

void scene7_active_job_write(struct buf *b, const struct task *t) {
    int64_t done, doing, todo;
    task_counts(t, &done, &doing, &todo);
    const char *name = t->name ? t->name : t->id;
    int64_t start = t->started_at     ? t->started_at
                    : t->scheduled_at ? t->scheduled_at
                                      : t->created_at;
    scene7_xml_el(b, "companyHandle", t->namespace);
    scene7_xml_el(b, "jobHandle", t->id);
    scene7_xml_el(b, "name", name);
    scene7_xml_el(b, "originalName", name);
    scene7_xml_el(b, "type", t->type);
    scene7_xml_el(b, "state", scene7_job_state(t));
    scene7_xml_el(b, "submitUserEmail", t->launcher);
    scene7_xml_el(b, "serverName", t->lease_worker ? t->lease_worker : "taskmill");
    scene7_xml_time(b, "startDate", start);
    scene7_xml_time(b, "triggerTime", t->scheduled_at ? t->scheduled_at : t->created_at);
    scene7_xml_int(b, "totalSize", done + doing + todo);
    scene7_xml_int(b, "progress", task_percent(t));
    scene7_xml_el(b, "progressMessage", task_progress_message(t));
    scene7_xml_time(b, "lastProgressUpdate", task_progress_time(t));
    buf_puts(b, "<taskProgressArray>");
    task_progress_write(b, t);
    buf_puts(b, "</taskProgressArray>");
}

/* ---- Replies ---- */

static void scene7_call_free(void *p) {
    struct scene7_call *c = p;
    if (!c) return;
    scene7_request_release(&c->q);
    store_doc_release(&c->doc);
    free(c->stop_ids);
    free(c);
}

/* A SOAP 1.1 Fault whose detail is `element` (ipsApiFault, ...) with code and reason. */
static void scene7_fault_write(struct buf *b, const char *element, int code, const char *reason) {
    buf_puts(b, SOAP_ENV_OPEN "<soapenv:Fault><faultcode>");
    buf_puts(b, code == SCENE7_FAULT_EXCEPTION ? "soapenv:Server" : "soapenv:Client");
    buf_puts(b, "</faultcode><faultstring>");
    scene7_xml_text(b, reason);
    buf_printf(b, "</faultstring><detail><%s xmlns=\"" SCENE7_NS "\"><code>%d</code><reason>",
               element, code);
    scene7_xml_text(b, reason);
    buf_printf(b, "</reason></%s></detail></soapenv:Fault>" SOAP_ENV_CLOSE, element);
}

static void scene7_fault_reply(struct req *r, int status, const char *element, int code,
                               const char *reason) {
    struct buf b;
    buf_init(&b);
    scene7_fault_write(&b, element, code, reason);
    reply_body(r, status ? status : 500, &b, SOAP_CONTENT_TYPE);
}

/* The router's errors on /scene7 paths (404, 405, body too large, ...). */
void scene7_error_write(struct buf *b, int status, const struct tm_error *e) {
    const char *msg = e->message[0] ? e->message : err_default_message(e->code);
    if (status == 401)
        scene7_fault_write(b, "authenticationFault", SCENE7_FAULT_INVALID_PARAMETER, msg);
    else if (status == 403)
        scene7_fault_write(b, "authorizationFault", SCENE7_FAULT_INVALID_PARAMETER, msg);
    else
        scene7_fault_write(
            b, "ipsApiFault",
            status >= 500 ? SCENE7_FAULT_EXCEPTION : SCENE7_FAULT_INVALID_REQUEST_XML, msg);
}

struct scene7_call *scene7_call_of(struct req *r) {
    return r->owned;
}

void scene7_fault(struct req *r, int code, const char *fmt, ...) {
    char reason[300];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(reason, sizeof reason, fmt, ap);
    va_end(ap);
    struct scene7_call *c = scene7_call_of(r);
    scene7_fault_reply(r, c ? c->fault_status : 0, "ipsApiFault", code, reason);
}

void scene7_fault_from(struct req *r, const struct tm_error *e) {
    const char *msg = e->message[0] ? e->message : err_default_message(e->code);
    switch (e->code) {
    case TM_ENOT_FOUND:
    case TM_EINVALID:
    case TM_ECONFLICT:
        scene7_fault(r, SCENE7_FAULT_INVALID_PARAMETER, "%s", msg);
        break;
    default:
        scene7_fault(r, SCENE7_FAULT_EXCEPTION, "%s", msg);
        break;
    }
}

void scene7_reply(struct req *r, const char *op, struct buf *content) {
    struct buf b;
    buf_init(&b);
    buf_printf(&b, SOAP_ENV_OPEN "<%sReturn xmlns=\"" SCENE7_NS "\"", op);
    if (content && content->len) {
        buf_putc(&b, '>');
        buf_put(&b, content->p, content->len);
        buf_printf(&b, "</%sReturn>", op);
    } else {
        buf_puts(&b, "/>");
    }
    buf_puts(&b, SOAP_ENV_CLOSE);
    if (content) buf_release(content);
    /* getActiveJobs, getJobLogs, ...: a read, refused rather than held
     * past --max-unsent-bytes (http.h). */
    if (strncmp(op, "get", 3) == 0) r->reply_is_read = true;
    reply_body(r, 200, &b, SOAP_CONTENT_TYPE);
}

/* ---- The WSDL ---- */

static void scene7_wsdl_get(struct req *r) {
    const char *host = req_header(r, MHD_HTTP_HEADER_HOST);
    char addr[512];
    bool host_ok = host && *host && strlen(host) < 256;
    for (const char *p = host; host_ok && *p; p++)
        if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-:[]", *p))
            host_ok = false; /* the Host header is the client's: no markup into the WSDL */
    snprintf(addr, sizeof addr, "%s://%s/scene7/services/IpsApiService", req_scheme(r),
             host_ok ? host : "localhost");
    const char *mark = strstr(scene7_wsdl, SCENE7_WSDL_ADDRESS);
    struct buf b;
    buf_init(&b);
    buf_put(&b, scene7_wsdl, (size_t)(mark - scene7_wsdl));
    buf_puts(&b, addr);
    buf_puts(&b, mark + strlen(SCENE7_WSDL_ADDRESS));
    reply_body(r, 200, &b, SOAP_CONTENT_TYPE);
}

static int scene7_is_wsdl_arg(void *cls, const char *key, const char *value) {
    (void)cls;
    (void)value;
    return strcasecmp(key, "wsdl") == 0;
}

static void scene7_service_get(struct req *r) {
    if (req_query_each(r, scene7_is_wsdl_arg, NULL)) { /* "?wsdl" has no value */
        scene7_wsdl_get(r);
        return;
    }
    /* A 405 names what the path takes (RFC 9110 15.5.6), as the router's do. */
    reply_add_header(r, "Allow", "GET, HEAD, POST");
    scene7_fault_reply(r, 405, "ipsApiFault", SCENE7_FAULT_INVALID_REQUEST_XML,
                       "POST a SOAP 1.1 request here; the WSDL is at ?wsdl");
}

/* ---- Operations ---- */

int scene7_scope(struct req *r, const char **ns) {
    const char *company = scene7_call_of(r)->q.company_handle;
    *ns = r->ns;
    if (!company) return 0;
    /* Every operation, not submitJob alone: a read or a control with an
     * IPS-style handle ("c|47") or a typo found no job and said nothing
     * (an empty jobArray, "jobHandle not found"). */
    if (!v1_is_name(company, 64)) {
        scene7_fault(r, SCENE7_FAULT_INVALID_PARAMETER,
                     "companyHandle must be 1-64 of [A-Za-z0-9._-] (a taskmill namespace)");
        return -1;
    }
    if (r->ns && strcmp(r->ns, company) != 0) {
        scene7_fault(r, SCENE7_FAULT_INVALID_PARAMETER,
                     "companyHandle '%.64s' is not the company of this user", company);
        return -1;
    }
    *ns = company;
    return 0;
}

/* The task id in jobHandle, or a fault naming it. */
static const char *scene7_job_id(struct req *r) {
    const char *h = scene7_call_of(r)->q.job_handle;
    if (id_is_valid(h)) return h;
    scene7_fault(r, SCENE7_FAULT_INVALID_PARAMETER, "jobHandle '%.64s' not found", h);
    return NULL;
}

const char *scene7_original_name(const struct task *t) {
    return t->name ? t->name : t->id;
}

int scene7_unnamed_job(struct req *r, const char *ns, const char *original_name, struct task **out,
                       struct tm_error *e) {
    *out = NULL;
    if (!original_name || !id_is_valid(original_name)) return 0;
    int rc = store_task_get(req_store(r), ns, original_name, out, e);
    if (rc == TM_ENOT_FOUND) {
        err_clear(e);
        return 0;
    }
    if (rc == 0 && (*out)->name) {
        task_free(*out);
        *out = NULL;
    }
    return rc;
}

static bool scene7_matches(const struct scene7_request *q, const struct task *t) {
    return !q->original_name || strcmp(q->original_name, scene7_original_name(t)) == 0;
}

static void scene7_active_item(struct buf *b, const struct task *t) {
    buf_puts(b, "<items>");
    scene7_active_job_write(b, t);
    buf_puts(b, "</items>");
}

static void scene7_get_active_jobs(struct req *r) {
    const struct scene7_request *q = &scene7_call_of(r)->q;
    const char *ns;
    if (scene7_scope(r, &ns)) return;
    struct buf jobs;
    buf_init(&jobs);
    buf_puts(&jobs, "<jobArray>");
    struct tm_error e;
    err_clear(&e);
    if (q->job_handle) {
        struct task *t = NULL;
        int rc = id_is_valid(q->job_handle)
                     ? store_task_get(req_store(r), ns, q->job_handle, &t, &e)
                     : TM_ENOT_FOUND;
        if (rc && rc != TM_ENOT_FOUND) {
            buf_release(&jobs);
            scene7_fault_from(r, &e);
            return;
        }
        if (t && scene7_matches(q, t)) scene7_active_item(&jobs, t);
        task_free(t);
    } else {
        /* By name from the store's list, newest first (by id); and an
         * unnamed task whose id the name is, in its place by id. */
        struct task *extra = NULL;
        if (scene7_unnamed_job(r, ns, q->original_name, &extra, &e)) {
            buf_release(&jobs);
            scene7_fault_from(r, &e);
            return;
        }
        struct task_filter f = {0};
        f.ns = ns;
        f.name_prefix = q->original_name;
        int page = req_limits(r)->page_max > 0 ? req_limits(r)->page_max : 100;
        int count = 0;
        for (;;) {
            f.limit = page;
            struct task_list l;
            if (store_task_list(req_store(r), &f, &l, &e)) {
                task_free(extra);
                buf_release(&jobs);
                scene7_fault_from(r, &e);
                return;
            }
            for (size_t i = 0; i < l.n && count < SCENE7_ACTIVE_JOBS_MAX; i++) {
                if (!scene7_matches(q, l.tasks[i])) continue;
                if (extra && strcmp(extra->id, l.tasks[i]->id) > 0) {
                    scene7_active_item(&jobs, extra);
                    task_free(extra);
                    extra = NULL;
                    if (++count == SCENE7_ACTIVE_JOBS_MAX) break;
                }
                scene7_active_item(&jobs, l.tasks[i]);
                count++;
            }
            bool more = l.more && l.n && count < SCENE7_ACTIVE_JOBS_MAX;
            if (more) memcpy(f.cursor, l.tasks[l.n - 1]->id, ID_LEN + 1);
            task_list_release(&l);
            if (!more) break;
        }
        if (extra && count < SCENE7_ACTIVE_JOBS_MAX) scene7_active_item(&jobs, extra);
        task_free(extra);
    }
    buf_puts(&jobs, "</jobArray>");
    scene7_reply(r, "getActiveJobs", &jobs);
}

static void scene7_submitted(struct req *r) {
    if (r->op.err.code) {
        scene7_fault_from(r, &r->op.err);
        return;
    }
    struct buf b;
    buf_init(&b);
    scene7_xml_el(&b, "jobHandle", r->op.task->id);
    scene7_reply(r, "submitJob", &b);
}

/* The v1 submit body (POST /v1/tasks) of the job a submitJob describes. */
static json_t *scene7_task_body(const struct scene7_request *q) {
    json_t *b = json_object(), *params = json_object();
    json_object_set_new(b, "type", json_string(scene7_job_type_of(q->job_kind)));
    json_object_set_new(b, "name", json_string(q->job_name));
    if (q->description) json_object_set_new(b, "description", json_string(q->description));
    json_object_set_new(b, "queue", json_string("default"));
    if (q->user_handle) json_object_set_new(b, "launcher", json_string(q->user_handle));
    if (q->has_exec_time) {
        char at[TIME_RFC3339_LEN + 1];
        time_format_rfc3339(q->exec_time_ms, at);
        json_object_set_new(b, "scheduled_at", json_string(at));
    }
    json_object_set(params, q->job_kind, q->job_detail);
    if (q->locale) json_object_set_new(params, "locale", json_string(q->locale));
    json_object_set_new(b, "params", params);
    return b;
}

static void scene7_submit_job(struct req *r) {
    const struct scene7_request *q = &scene7_call_of(r)->q;
    const char *ns;
    if (scene7_scope(r, &ns)) return; /* companyHandle is required here: checked there */
    json_t *body = scene7_task_body(q);
    if (q->exec_schedule) {
        scene7_schedule_submit(r, ns, body);
        return;
    }
    struct task *t = NULL;
    struct tm_error e;
    err_clear(&e);
    int rc = v1_decode_task(body, req_limits(r), q->company_handle, &t, &e);
    json_decref(body);
    if (rc) {
        scene7_fault_from(r, &e);
        return;
    }
    store_op_init_create(&r->op, ns, t);
    req_submit(r, scene7_submitted);
}

static void scene7_controlled(struct req *r) {
    if (r->op.err.code) {
        scene7_fault_from(r, &r->op.err);
        return;
    }
    struct scene7_call *c = scene7_call_of(r);
    if (c->delete_after_cancel && r->op.task && task_is_terminal(r->op.task)) {
        c->delete_after_cancel = false;
        const char *ns = r->op.ns;
        char id[ID_LEN + 1];
        memcpy(id, r->op.id, sizeof id);
        store_op_release(&r->op);
        store_op_init(&r->op, STORE_OP_DELETE);
        r->op.ns = ns;
        memcpy(r->op.id, id, sizeof id);
        req_submit(r, scene7_controlled);
        return;
    }
    scene7_reply(r, scene7_op_name(c->q.op), NULL);
}

static void scene7_control_submit(struct req *r, enum store_op_kind kind, const char *ns,
                                  const char *id) {
    store_op_init(&r->op, kind);
    r->op.ns = ns;
    memcpy(r->op.id, id, ID_LEN + 1);
    req_submit(r, scene7_controlled);
}

/* stopJob, pauseJob, resumeJob, executeJob, deleteJob: on a job (a task),
 * or on a recurring job (a schedule, scene7_schedule.c). */
static void scene7_control(struct req *r) {
    struct scene7_call *c = scene7_call_of(r);
    const char *ns;
    if (scene7_scope(r, &ns)) return;
    const char *id = scene7_job_id(r);
    if (!id) return;
    struct task *t = NULL;
    struct tm_error e;
    err_clear(&e);
    int rc = store_task_get(req_store(r), ns, id, &t, &e);
    if (rc == TM_ENOT_FOUND) {
        err_clear(&e);
        rc = scene7_schedule_find(r, ns, id, &e);
        if (rc == 0) {
            scene7_schedule_control(r, ns, id);
            return;
        }
    }
    if (rc) {
        if (rc == TM_ENOT_FOUND)
            scene7_fault(r, SCENE7_FAULT_INVALID_PARAMETER, "jobHandle '%.64s' not found", id);
        else
            scene7_fault_from(r, &e);
        return;
    }
    enum task_phase phase = t->phase;
    task_free(t);
    switch (c->q.op) {
    case SCENE7_OP_STOP_JOB:
        scene7_control_submit(r, STORE_OP_CANCEL, ns, id);
        return;
    case SCENE7_OP_PAUSE_JOB:
        scene7_control_submit(r, STORE_OP_PAUSE, ns, id);
        return;
    case SCENE7_OP_RESUME_JOB:
        scene7_control_submit(r, STORE_OP_RESUME, ns, id);
        return;
    default:
        break;
    }
    /* executeJob and deleteJob depend on where the job is now. */
    if (c->q.op == SCENE7_OP_EXECUTE_JOB) {
        switch (phase) {
        case TASK_WAITING:
            scene7_control_submit(r, STORE_OP_RUN_NOW, ns, id);
            return;
        case TASK_FAILED:
        case TASK_CANCELLED:
            scene7_control_submit(r, STORE_OP_RETRY, ns, id);
            return;
        case TASK_COMPLETED:
            scene7_fault(r, SCENE7_FAULT_INVALID_PARAMETER,
                         "job '%.64s' is done; submit it again to run it again", id);
            return;
        default:
            scene7_reply(r, "executeJob", NULL);
            return; /* running or about to */
        }
    }
    if (task_phase_is_terminal(phase)) {
        scene7_control_submit(r, STORE_OP_DELETE, ns, id);
        return;
    }
    /* Not finished: stop it first; a pending or waiting job is then deleted,
     * a running one stays (Stopping) until its worker lets go. */
    c->delete_after_cancel = true;
    scene7_control_submit(r, STORE_OP_CANCEL, ns, id);
}

/* What each operation needs of the caller's token. */
static unsigned scene7_perm(enum scene7_op op) {
    switch (op) {
    case SCENE7_OP_GET_ACTIVE_JOBS:
    case SCENE7_OP_GET_SCHEDULED_JOBS:
    case SCENE7_OP_GET_JOB_LOGS:
    case SCENE7_OP_GET_JOB_LOG_DETAILS:
        return PERM_READ;
    case SCENE7_OP_DELETE_JOB:
        return PERM_ADMIN;
    default:
        return PERM_OWNER;
    }
}

/* The authorizationFault's reason: the server's "a 'reader' token may not
 * call 'POST /scene7/services/IpsApiService'" names the one path every
 * operation shares, so the operation is named instead once it is known. */
static const char *scene7_forbidden_reason(struct req *r, const char *msg, char *out, size_t n) {
    const char *op = scene7_op_name(scene7_call_of(r)->q.op);
    char route[128];
    snprintf(route, sizeof route, "'%s %s'", r->method, r->path);
    const char *at = op ? strstr(msg, route) : NULL;
    if (!at) return msg;
    snprintf(out, n, "%.*s'%s'%s", (int)(at - msg), msg, op, at + strlen(route));
    return out;
}

/* Checks the caller: the authHeader's soap_user and soap_pass (when
 * soap_user is not NULL), else HTTP Basic, else a bearer header, against
 * `perm`; on refusal replies with the fault when `reply`. */
static int scene7_check_caller(struct req *r, const char *soap_user, const char *soap_pass,
                               unsigned perm, bool reply) {
    struct scene7_call *c = scene7_call_of(r);
    char user[SCENE7_TEXT_MAX + 1], pass[SCENE7_TEXT_MAX + 1];
    const char *u = NULL, *p = NULL;
    const char *hdr = req_header(r, MHD_HTTP_HEADER_AUTHORIZATION);
    char id[TOKEN_ID_LEN + 1] = "", secret[TOKEN_SECRET_LEN + 1] = "";
    bool given = true, bad = false;
    if (soap_user) {
        u = soap_user;
        p = soap_pass ? soap_pass : "";
    } else if (hdr && scene7_basic_parse(hdr, user, sizeof user, pass, sizeof pass) == 0) {
        u = user;
        p = pass;
    } else if (hdr) {
        bad = token_parse_bearer(hdr, id, secret) != 0;
    } else {
        given = false;
    }
    if (p) {
        /* password: the 64-hex secret, or the whole tm_<id>_<secret> string */
        if (strncmp(p, "tm_", 3) == 0) {
            bad = token_parse(p, strlen(p), id, secret) != 0 || (*u && strcmp(u, id) != 0);
        } else if (strlen(u) == TOKEN_ID_LEN && strlen(p) == TOKEN_SECRET_LEN) {
            memcpy(id, u, sizeof id);
            memcpy(secret, p, sizeof secret);
        } else {
            bad = true;
        }
    }
    struct tm_error e;
    err_clear(&e);
    char reason[sizeof e.message + 64];
    int rc;
    if (bad)
        rc = err_set(&e, TM_EUNAUTHENTICATED, "", "invalid user or password");
    else
        rc = auth_check_credentials(r, given ? id : NULL, given ? secret : NULL, perm, &e);
    if (rc == 0 || !reply) return rc;
    const char *msg = e.message[0] ? e.message : err_default_message(rc);
    if (rc == TM_EUNAUTHENTICATED)
        scene7_fault_reply(r, c->fault_status, "authenticationFault",
                           SCENE7_FAULT_INVALID_PARAMETER,
                           bad || !given ? "invalid user or password" : msg);
    else if (rc == TM_EFORBIDDEN)
        scene7_fault_reply(r, c->fault_status, "authorizationFault", SCENE7_FAULT_INVALID_PARAMETER,
                           scene7_forbidden_reason(r, msg, reason, sizeof reason));
    else
        scene7_fault_reply(r, c->fault_status, "ipsApiFault", SCENE7_FAULT_EXCEPTION, msg);
    return -1;
}

/* The caller, as the parsed request names it, with its operation's permission. */
static int scene7_authenticate(struct req *r, bool reply) {
    struct scene7_call *c = scene7_call_of(r);
    const struct scene7_auth *a = &c->q.auth;
    return scene7_check_caller(r, a->present ? (a->user ? a->user : "") : NULL, a->password,
                               scene7_perm(c->q.op), reply);
}

/* Before the parse: are these credentials of any role at all (or is the
 * server open)? So that no one without them makes the server parse up to
 * SCENE7_SOAP_MAX_BYTES of XML. The operation's own permission is checked
 * after the parse. */
static int scene7_authenticate_early(struct req *r) {
    char user[SCENE7_TEXT_MAX + 1], pass[SCENE7_TEXT_MAX + 1];
    bool soap = scene7_soap_peek_auth(r->body.p ? r->body.p : "", r->body.len, user, sizeof user,
                                      pass, sizeof pass) == 1;
    return scene7_check_caller(r, soap ? user : NULL, soap ? pass : NULL,
                               PERM_ADMIN | PERM_CLIENT | PERM_WORKER | PERM_READER, true);
}

/*
 * SOAP 1.1's HTTP binding sends the envelope as text/xml (SOAP 1.1 6.1.1);
 * application/soap+xml is SOAP 1.2's, which this service does not speak.
 * Anything else, or none, is refused with 415, as WS-I Basic Profile 1.1
 * (R1115), SOAP 1.2 part 2 (7.5.2.2) and JAX-WS stacks answer it, in a
 * fault like every refusal here, before the credentials and the body are
 * looked at (so the authHeader's faultHttpStatusCode does not apply).
 * The media type whole, and no parameter but a UTF-8 charset, as
 * SailPoint's PATCH: "text/xml; charset=utf-8" is what SOAP 1.1 clients
 * (npm soap, JAX-WS, .NET, Axis) send. US-ASCII (as "us-ascii", "ascii"
 * or "ANSI_X3.4-1968") is taken too, being UTF-8's first 128 characters;
 * a body so labelled with a byte above 0x7F is not what it says (most
 * likely Latin-1 or Windows-1252, which reading it as UTF-8 would get
 * wrong) and is refused the same way, naming the charset.
 */
static int scene7_check_content_type(struct req *r) {
    static const char *const soap11[] = {"text/xml", NULL};
    static const char *const charsets[] = {"utf-8", "us-ascii", "ascii", "ANSI_X3.4-1968", NULL};
    static const char soap12[] = "application/soap+xml";
    const char *ct = req_header(r, MHD_HTTP_HEADER_CONTENT_TYPE);
    /* SOAP 1.2 by its media type alone: its clients add an action parameter. */
    size_t mt = ct ? strcspn(ct, "; \t") : 0;
    char reason[200];
    int charset = -1;
    if (!ct || !*ct) {
        snprintf(reason, sizeof reason,
                 "'Content-Type' is missing: a SOAP 1.1 request is sent as 'text/xml'");
    } else if (http_content_type_is_in(ct, soap11, charsets, &charset)) {
        size_t at = 0;
        const unsigned char *u = (const unsigned char *)r->body.p;
        while (charset > 0 && at < r->body.len && u[at] < 0x80)
            at++;
        if (charset <= 0 || at == r->body.len) return 0;
        snprintf(reason, sizeof reason,
                 "the body holds byte 0x%02X (at %zu), which charset '%s' (7 bits) has not: "
                 "send 'text/xml; charset=utf-8'",
                 u[at], at, charsets[charset]);
    } else if (mt == sizeof soap12 - 1 && strncasecmp(ct, soap12, mt) == 0)
        snprintf(reason, sizeof reason,
                 "'Content-Type' 'application/soap+xml' is SOAP 1.2; this service speaks SOAP "
                 "1.1: send 'text/xml'");
    else
        snprintf(reason, sizeof reason,
                 "'Content-Type' must be 'text/xml' (SOAP 1.1, charset UTF-8 or US-ASCII), not "
                 "'%.64s'",
                 ct);
    scene7_fault_reply(r, 415, "ipsApiFault", SCENE7_FAULT_INVALID_REQUEST_XML, reason);
    return -1;
}

static void scene7_service_post(struct req *r) {
    struct scene7_call *c = xcalloc(1, sizeof *c);
    r->owned = c;
    r->owned_free = scene7_call_free;
    if (scene7_check_content_type(r)) return;
    if (scene7_authenticate_early(r)) return;
    struct scene7_fault f;
    /* The caller's faultHttpStatusCode applies only once it is authenticated. */
    if (scene7_soap_parse(r->body.p ? r->body.p : "", r->body.len, &c->q, &f)) {
        if (c->q.auth.present && scene7_authenticate(r, false) == 0)
            c->fault_status = c->q.auth.fault_http_status;
        scene7_fault(r, f.code, "%s", f.reason);
        return;
    }
    if (scene7_authenticate(r, true)) return;
    c->fault_status = c->q.auth.fault_http_status;
    switch (c->q.op) {
    case SCENE7_OP_SUBMIT_JOB:
        scene7_submit_job(r);
        return;
    case SCENE7_OP_GET_ACTIVE_JOBS:
        scene7_get_active_jobs(r);
        return;
    case SCENE7_OP_GET_SCHEDULED_JOBS:
        scene7_get_scheduled_jobs(r);
        return;
    case SCENE7_OP_GET_JOB_LOGS:
        scene7_get_job_logs(r);
        return;
    case SCENE7_OP_GET_JOB_LOG_DETAILS:
        scene7_get_job_log_details(r);
        return;
    default:
        scene7_control(r);
        return;
    }
}

const struct route scene7_routes[] = {
    {"GET", "/scene7/webservice/IpsApi.wsdl", scene7_wsdl_get, PERM_PUBLIC},
    {"GET", "/scene7/webservice/IpsApi-2014-04-03.wsdl", scene7_wsdl_get, PERM_PUBLIC},
    {"GET", "/scene7/services/IpsApiService", scene7_service_get, PERM_PUBLIC},
    {"POST", "/scene7/services/IpsApiService", scene7_service_post, PERM_PUBLIC},
    {NULL, NULL, NULL, 0},
};
