/*
 * scene7_joblog: getJobLogs and getJobLogDetails (scene7_int.h).
 *
 * A job (a task) has a log once it has started or ended. Its JobLog's
 * counters come from its progress and messages; its detail rows from its
 * attempt history (each claim with worker, start, end, outcome and error:
 * what GET /v1/tasks/{id}/attempts serves), its messages, and, from the
 * event log, the owner's controls with the token that asked (pause,
 * resume, stop, retry). The attempts and messages are written in the
 * transaction of each change, like the event log's entries, but are kept
 * as long as the task, while the event log is pruned by its own retention;
 * the control rows go with the log. A schedule's log is the logs of the
 * tasks it launched (its fires).
 *
 * Log types: the IPS list (string-constants/r-job-log-types.md) has
 * Begin/End/Success/Error/Warning names per kind of job; a job type with
 * such a family uses it ("BeginUpload", "UploadError"), any other uses our
 * own "Job" family ("BeginJob", "JobError"). docs/compat.md has the table.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "../common/timeutil.h"
#include "../common/xalloc.h"
#include "scene7_int.h"

#define SCENE7_JOB_LOGS_MAX 1000 /* getJobLogs: matching jobs looked at, newest first */
#define SCENE7_LOG_JOBS_MAX 100  /* getJobLogDetails: jobs per reply, newest first */
#define LOG_TYPE_LEN        64

/* ---- One job's log ---- */

/* The family of log types a Job Types constant has in the IPS list. */
static const char *log_stem(const char *type) {
    static const char *const stems[][2] = {
        {"ImageServingPublish", "ImageServingPublish"},
        {"ImageRenderingPublish", "ImageRenderingPublish"},
        {"ServerDirectoryPublish", "ServerDirectoryPublish"},
        {"VideoPublish", "VideoPublish"},
        {"UploadFromServerDirectory", "Upload"},
        {"UrlUpload", "Upload"},
    };
    for (size_t i = 0; type && i < sizeof stems / sizeof stems[0]; i++)
        if (strcmp(type, stems[i][0]) == 0) return stems[i][1];
    return "Job";
}

static bool has_log(const struct task *t) {
    return t->started_at || task_is_terminal(t);
}

struct job_log {
    struct task *t; /* owned */
    char log_type[LOG_TYPE_LEN];
    int64_t start, end; /* end 0 while not finished */
    int64_t success, errors, warnings, total;
};

static void job_log_init(struct job_log *l, struct task *t) {
    memset(l, 0, sizeof *l);
    l->t = t;
    const char *stem = log_stem(t->type);
    switch (t->phase) {
    case TASK_COMPLETED:
        snprintf(l->log_type, sizeof l->log_type, "%sSuccess", stem);
        break;
    case TASK_FAILED:
        snprintf(l->log_type, sizeof l->log_type, "%sError", stem);
        break;
    case TASK_CANCELLED:
        snprintf(l->log_type, sizeof l->log_type, "End%s", stem);
        break;
    default:
        snprintf(l->log_type, sizeof l->log_type, "Begin%s", stem);
        break;
    }
    l->start = t->started_at ? t->started_at : t->created_at;
    l->end = task_is_terminal(t) ? t->completed_at : 0;
    int64_t doing, todo;
    task_counts(t, &l->success, &doing, &todo);
    l->total = l->success + doing + todo;
    json_t *msgs = t->messages ? json_loads(t->messages, 0, NULL) : NULL;
    size_t i;
    json_t *m;
    json_array_foreach(msgs, i, m) {
        const char *level = json_string_value(json_object_get(m, "level"));
        if (level && strcmp(level, "ERROR") == 0) l->errors++;
        if (level && strcmp(level, "WARN") == 0) l->warnings++;
    }
    json_decref(msgs);
}

static void job_logs_free(struct job_log *l, size_t n) {
    for (size_t i = 0; i < n; i++)
        task_free(l[i].t);
    free(l);
}

/* A JobLogDetail: when, its log type and its text. */
struct log_row {
    int64_t at;
    size_t seq; /* order of making: breaks ties of at */
    char type[LOG_TYPE_LEN];
    char *message;
};

struct log_rows {
    struct log_row *v;
    size_t n, cap;
};

static void rows_release(struct log_rows *rows) {
    for (size_t i = 0; i < rows->n; i++)
        free(rows->v[i].message);
    free(rows->v);
    memset(rows, 0, sizeof *rows);
}

static void row_add(struct log_rows *rows, int64_t at, const char *type, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void row_add(struct log_rows *rows, int64_t at, const char *type, const char *fmt, ...) {
    if (rows->n == rows->cap) {
        rows->cap = rows->cap ? rows->cap * 2 : 16;
        rows->v = xrealloc(rows->v, rows->cap * sizeof *rows->v);
    }
    struct log_row *row = &rows->v[rows->n];
    row->at = at;
    row->seq = rows->n++;
    snprintf(row->type, sizeof row->type, "%s", type);
    va_list ap, again;
    va_start(ap, fmt);
    va_copy(again, ap);
    int len = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    row->message = xmalloc(len > 0 ? (size_t)len + 1 : 1);
    row->message[0] = '\0';
    if (len > 0) vsnprintf(row->message, (size_t)len + 1, fmt, again);
    va_end(again);
}

static int64_t json_time(const json_t *o, const char *key) {
    int64_t ms = 0;
    const char *s = json_string_value(json_object_get(o, key));
    return s && time_parse_rfc3339(s, &ms) == 0 ? ms : 0;
}

/* What ended one attempt that the job's end does not already tell. */
static void attempt_end_row(struct log_rows *rows, const char *stem, json_t *a) {
    long long n = (long long)json_integer_value(json_object_get(a, "attempt"));
    int64_t at = json_time(a, "ended_at");
    const char *outcome = json_string_value(json_object_get(a, "outcome"));
    const char *error = json_string_value(json_object_get(a, "error"));
    char type[LOG_TYPE_LEN];
    if (!at || !outcome) return;
    if (strcmp(outcome, "retry") == 0 || strcmp(outcome, "failed") == 0) {
        snprintf(type, sizeof type, "%sError", stem);
        row_add(rows, at, type, "attempt %lld failed: %s", n, error ? error : "no reason given");
    } else if (strcmp(outcome, "lease_expired") == 0) {
        snprintf(type, sizeof type, "%sError", stem);
        row_add(rows, at, type, "attempt %lld lost its worker%s%s", n, error ? ": " : "",
                error ? error : "");
    } else if (strcmp(outcome, "cancelled") == 0) {
        snprintf(type, sizeof type, "End%s", stem);
        row_add(rows, at, type, "attempt %lld stopped", n);
    } else if (strcmp(outcome, "released") == 0) {
        snprintf(type, sizeof type, "%sWarning", stem);
        row_add(rows, at, type, "attempt %lld handed back by its worker", n);
    } else if (strcmp(outcome, "completed") != 0) {
        snprintf(type, sizeof type, "%sWarning", stem);
        row_add(rows, at, type, "attempt %lld ended: %s", n, outcome);
    }
}

/*
 * The owner's controls on a job, from the event log while retention keeps
 * them (GET /v1/tasks/{id}/events has the same): a pause, a resume, a stop
 * request and a retry, each with the token that asked ("open" without
 * tokens). The attempts and messages above outlive the log; these do not.
 */
static void control_rows(struct store *s, const struct task *t, struct log_rows *rows) {
    static const struct {
        const char *cause, *type, *text;
    } controls[] = {
        {"pause", "PauseJob", "job paused"},
        {"resume", "ResumeJob", "job resumed"},
        {"cancel", "StopJob", "job stop requested"},
        {"retry", "RetryJob", "job run again"},
    };
    int64_t after = 0;
    for (int page = 0; page < 8; page++) { /* at most 8 pages of 256 events */
        struct event_page p;
        struct tm_error e;
        err_clear(&e);
        if (store_events_read(s, t->namespace, t->id, after, 256, 64 * 1024, &p, &e)) return;
        for (size_t i = 0; i < p.n; i++) {
            const struct store_event *ev = &p.events[i];
            for (size_t k = 0; k < sizeof controls / sizeof controls[0]; k++) {
                if (strcmp(ev->cause, controls[k].cause) != 0) continue;
                row_add(rows, ev->at, controls[k].type, "%s by '%s'", controls[k].text,
                        ev->actor[0] ? ev->actor : "the server");
            }
            after = ev->seq;
        }
        bool more = p.n == 256 || p.more;
        event_page_release(&p);
        if (!more) return;
    }
}

/* The detail rows of a job, oldest first. */
static void rows_build(struct store *s, const struct task *t, struct log_rows *rows) {
    const char *stem = log_stem(t->type);
    char type[LOG_TYPE_LEN];
    row_add(rows, t->created_at, "OriginalJobName", "%s", t->name ? t->name : t->id);
    row_add(rows, t->created_at, "JobType", "%s", t->type ? t->type : "");
    if (t->launcher && strncmp(t->launcher, "schedule:", 9) == 0)
        row_add(rows, t->created_at, "InitiatingJobName", "%s", t->launcher + 9);
    json_t *attempts = t->attempts ? json_loads(t->attempts, 0, NULL) : NULL;
    size_t i, na = json_array_size(attempts);
    json_t *a;
    json_array_foreach(attempts, i, a) {
        const char *worker = json_string_value(json_object_get(a, "worker"));
        snprintf(type, sizeof type, "Begin%s", stem);
        row_add(rows, json_time(a, "started_at"), type, "attempt %lld started%s%s%s",
                (long long)json_integer_value(json_object_get(a, "attempt")),
                worker ? " on worker '" : "", worker ? worker : "", worker ? "'" : "");
        if (i + 1 < na || !task_is_terminal(t)) attempt_end_row(rows, stem, a);
    }
    json_decref(attempts);
    json_t *msgs = t->messages ? json_loads(t->messages, 0, NULL) : NULL;
    json_t *m;
    json_array_foreach(msgs, i, m) {
        const char *level = json_string_value(json_object_get(m, "level"));
        const char *text = json_string_value(json_object_get(m, "text"));
        if (level && strcmp(level, "ERROR") == 0)
            snprintf(type, sizeof type, "%sError", stem);
        else if (level && strcmp(level, "WARN") == 0)
            snprintf(type, sizeof type, "%sWarning", stem);
        else
            snprintf(type, sizeof type, "FileProgress");
        row_add(rows, json_time(m, "at"), type, "%s", text ? text : "");
    }
    json_decref(msgs);
    control_rows(s, t, rows);
    if (!task_is_terminal(t)) return;
    if (t->phase == TASK_COMPLETED) {
        snprintf(type, sizeof type, "%sSuccess", stem);
        row_add(rows, t->completed_at, type, "job completed%s",
                t->status == TASK_WARNING ? " with warnings" : "");
    } else if (t->phase == TASK_FAILED) {
        row_add(rows, t->completed_at, "FatalError", "%s", t->error ? t->error : "job failed");
    }
    snprintf(type, sizeof type, "End%s", stem);
    row_add(rows, t->completed_at, type, "%s",
            t->phase == TASK_CANCELLED ? "job stopped" : "job ended");
}

/* ---- Writing ---- */

/* One JobLog, in the XSD order of the WSDL; with rows, its detailArray. */
static void job_log_write(struct buf *b, const struct job_log *l, const struct log_rows *rows,
                          size_t from, size_t count, size_t total) {
    const struct task *t = l->t;
    const char *name = t->name ? t->name : t->id;
    buf_puts(b, "<items>");
    scene7_xml_el(b, "companyHandle", t->namespace);
    scene7_xml_el(b, "jobHandle", t->id);
    scene7_xml_el(b, "jobName", name);
    scene7_xml_el(b, "originalJobName", name);
    scene7_xml_el(b, "submitUserEmail", t->launcher);
    scene7_xml_el(b, "logType", l->log_type);
    scene7_xml_time(b, "startDate", l->start);
    if (l->end) scene7_xml_time(b, "endDate", l->end);
    if (t->description) scene7_xml_el(b, "description", t->description);
    scene7_xml_int(b, "fileSuccessCount", l->success);
    scene7_xml_int(b, "fileErrorCount", l->errors);
    scene7_xml_int(b, "fileWarningCount", l->warnings);
    scene7_xml_int(b, "fileDuplicateCount", 0);
    scene7_xml_int(b, "fileUpdateCount", 0);
    scene7_xml_int(b, "totalFileCount", l->total);
    buf_printf(b, "<fatalError>%s</fatalError>", t->phase == TASK_FAILED ? "true" : "false");
    if (rows) {
        scene7_xml_int(b, "detailTotalRows", (int64_t)total);
        buf_puts(b, "<detailArray>");
        for (size_t i = from; i < from + count; i++) {
            buf_puts(b, "<items>");
            scene7_xml_el(b, "logMessage", rows->v[i].message);
            scene7_xml_el(b, "logType", rows->v[i].type);
            buf_puts(b, "</items>");
        }
        buf_puts(b, "</detailArray>");
    }
    buf_puts(b, "</items>");
}

/* ---- getJobLogs ---- */

static int cmp_int(int64_t a, int64_t b) {
    return (a > b) - (a < b);
}

static int cmp_str(const char *a, const char *b) {
    return strcmp(a ? a : "", b ? b : "");
}

/* Orders JobLogs by the request's sortBy; ties newest first (by id). */
static int job_log_cmp(const void *pa, const void *pb, void *arg) {
    const struct job_log *a = pa, *b = pb;
    const struct scene7_request *q = arg;
    int c = 0;
    switch (q->sort_by) {
    case SCENE7_SORT_JOB_NAME:
        c = cmp_str(scene7_original_name(a->t), scene7_original_name(b->t));
        break;
    case SCENE7_SORT_LOG_TYPE:
        c = strcmp(a->log_type, b->log_type);
        break;
    case SCENE7_SORT_COMPANY_NAME:
        c = cmp_str(a->t->namespace, b->t->namespace);
        break;
    case SCENE7_SORT_USER_ID:
    case SCENE7_SORT_EMAIL:
        c = cmp_str(a->t->launcher, b->t->launcher);
        break;
    case SCENE7_SORT_FILE_ERROR_COUNT:
        c = cmp_int(a->errors, b->errors);
        break;
    case SCENE7_SORT_FILE_WARNING_COUNT:
        c = cmp_int(a->warnings, b->warnings);
        break;
    case SCENE7_SORT_FILE_SUCCESS_COUNT:
        c = cmp_int(a->success, b->success);
        break;
    default:
        c = cmp_int(a->start, b->start);
        break;
    }
    if (c == 0) c = strcmp(a->t->id, b->t->id);
    /* StartDate sorts newest first unless asked; the rest ascending. */
    int dir = q->sort_direction ? q->sort_direction
              : q->sort_by == SCENE7_SORT_DEFAULT || q->sort_by == SCENE7_SORT_START_DATE ? -1
                                                                                          : 1;
    return dir * c;
}

/* Whether a job is in a getJobLogs answer (its filters but numRows). */
static bool job_logs_wants(const struct scene7_request *q, const struct task *t) {
    if (!has_log(t)) return false;
    if (q->user_handle && cmp_str(q->user_handle, t->launcher) != 0) return false;
    int64_t start = t->started_at ? t->started_at : t->created_at;
    return (!q->has_start_date || start >= q->start_date_ms) &&
           (!q->has_end_date || start <= q->end_date_ms);
}

/*
 * The jobs of ns that `wants` accepts, newest first, at most max, into
 * *out (taken from the store's list). 0, or an error with e set.
 */
static int job_logs_collect(struct req *r, const char *ns, const char *name, size_t max,
                            bool (*wants)(const struct scene7_request *, const struct task *),
                            struct job_log **out, size_t *n, struct tm_error *e) {
    const struct scene7_request *q = &scene7_call_of(r)->q;
    struct task_filter f = {0};
    f.ns = ns;
    f.name_prefix = name;
    int page = req_limits(r)->page_max > 0 ? req_limits(r)->page_max : 100;
    *out = NULL;
    *n = 0;
    for (;;) {
        f.limit = page;
        struct task_list l;
        if (store_task_list(req_store(r), &f, &l, e)) return e->code;
        char last[ID_LEN + 1] = "";
        if (l.n) memcpy(last, l.tasks[l.n - 1]->id, sizeof last);
        for (size_t i = 0; i < l.n && *n < max; i++) {
            if (name && cmp_str(name, scene7_original_name(l.tasks[i])) != 0) continue;
            if (!wants(q, l.tasks[i])) continue;
            if (!*out) *out = xcalloc(max, sizeof **out);
            job_log_init(&(*out)[(*n)++], l.tasks[i]);
            l.tasks[i] = NULL; /* taken */
        }
        bool more = l.more && l.n && *n < max;
        if (more) memcpy(f.cursor, last, sizeof last);
        task_list_release(&l);
        if (!more) break;
    }
    /* An unnamed task whose id the name is (the caller sorts). */
    struct task *extra = NULL;
    if (scene7_unnamed_job(r, ns, name, &extra, e)) return e->code;
    if (extra && *n < max && wants(q, extra)) {
        if (!*out) *out = xcalloc(max, sizeof **out);
        job_log_init(&(*out)[(*n)++], extra);
    } else {
        task_free(extra);
    }
    return 0;
}

static int details_collect(struct req *r, const char *ns, struct job_log **out, size_t *n,
                           struct tm_error *e);

/* The jobs the call asks for, in the caller's scope: getJobLogs', or with
 * `details` getJobLogDetails'. 0, or -1 after a fault. */
static int job_logs_read(struct req *r, bool details, struct job_log **logs, size_t *n) {
    const char *ns;
    if (scene7_scope(r, &ns)) return -1;
    struct tm_error e;
    err_clear(&e);
    int rc = details
                 ? details_collect(r, ns, logs, n, &e)
                 : job_logs_collect(r, ns, NULL, SCENE7_JOB_LOGS_MAX, job_logs_wants, logs, n, &e);
    if (!rc) return 0;
    job_logs_free(*logs, *n);
    scene7_fault_from(r, &e);
    return -1;
}

void scene7_get_job_logs(struct req *r) {
    struct scene7_request *q = &scene7_call_of(r)->q;
    struct job_log *logs = NULL;
    size_t n = 0;
    if (job_logs_read(r, false, &logs, &n)) return;
    if (n) qsort_r(logs, n, sizeof *logs, job_log_cmp, q);
    size_t rows = q->num_rows ? (size_t)q->num_rows : SCENE7_ROWS_MAX;
    struct buf b;
    buf_init(&b);
    buf_puts(&b, "<jobLogArray>");
    for (size_t i = 0; i < n && i < rows; i++)
        job_log_write(&b, &logs[i], NULL, 0, 0, 0);
    buf_puts(&b, "</jobLogArray>");
    job_logs_free(logs, n);
    scene7_reply(r, "getJobLogs", &b);
}

/* ---- getJobLogDetails ---- */

static int row_cmp(const void *pa, const void *pb, void *arg) {
    const struct log_row *a = pa, *b = pb;
    const struct scene7_request *q = arg;
    int c = q->sort_by == SCENE7_SORT_LOG_TYPE ? strcmp(a->type, b->type) : 0;
    if (c == 0) c = cmp_int(a->at, b->at);
    if (c == 0) c = cmp_int((int64_t)a->seq, (int64_t)b->seq);
    return q->sort_direction < 0 ? -c : c;
}

static bool wanted_type(const struct scene7_request *q, const char *type) {
    if (!q->nlog_types) return true;
    for (size_t i = 0; i < q->nlog_types; i++)
        if (strcasecmp(q->log_types[i], type) == 0) return true;
    return false;
}

static bool details_wants(const struct scene7_request *q, const struct task *t) {
    (void)q;
    return has_log(t);
}

/* The runs of schedule `id` that have a log, newest first. */
static int schedule_runs(struct req *r, const char *ns, const char *id, struct job_log **out,
                         size_t *n, struct tm_error *e) {
    const struct scene7_request *q = &scene7_call_of(r)->q;
    struct schedule_fire *f = NULL;
    size_t nf = 0;
    *out = NULL;
    *n = 0;
    /* Skipped slots launched nothing: read a few more fires than runs. */
    if (store_fires_list(req_store(r), id, 4 * SCENE7_LOG_JOBS_MAX, &f, &nf, e)) return e->code;
    for (size_t i = 0; i < nf && *n < SCENE7_LOG_JOBS_MAX; i++) {
        struct task *t = NULL;
        if (!f[i].task_id[0]) continue;
        int rc = store_task_get(req_store(r), ns, f[i].task_id, &t, e);
        if (rc && rc != TM_ENOT_FOUND) {
            free(f);
            return rc;
        }
        if (!t || !has_log(t) ||
            (q->original_name && cmp_str(q->original_name, scene7_original_name(t)) != 0)) {
            task_free(t);
            continue;
        }
        if (!*out) *out = xcalloc(SCENE7_LOG_JOBS_MAX, sizeof **out);
        job_log_init(&(*out)[(*n)++], t);
    }
    free(f);
    err_clear(e);
    return 0;
}

/* The jobs a getJobLogDetails names: a job, a schedule's runs, or by name. */
static int details_collect(struct req *r, const char *ns, struct job_log **out, size_t *n,
                           struct tm_error *e) {
    const struct scene7_request *q = &scene7_call_of(r)->q;
    *out = NULL;
    *n = 0;
    if (!q->job_handle)
        return job_logs_collect(r, ns, q->original_name, SCENE7_LOG_JOBS_MAX, details_wants, out, n,
                                e);
    if (!id_is_valid(q->job_handle)) return 0; /* a filter: an unknown handle matches nothing */
    struct task *t = NULL;
    int rc = store_task_get(req_store(r), ns, q->job_handle, &t, e);
    if (rc == 0) {
        if (has_log(t) &&
            (!q->original_name || cmp_str(q->original_name, scene7_original_name(t)) == 0)) {
            *out = xcalloc(1, sizeof **out);
            job_log_init(&(*out)[(*n)++], t);
        } else {
            task_free(t);
        }
        return 0;
    }
    if (rc != TM_ENOT_FOUND) return rc;
    err_clear(e);
    rc = scene7_schedule_find(r, ns, q->job_handle, e);
    if (rc == TM_ENOT_FOUND) {
        err_clear(e);
        return 0;
    }
    return rc ? rc : schedule_runs(r, ns, q->job_handle, out, n, e);
}

void scene7_get_job_log_details(struct req *r) {
    struct scene7_request *q = &scene7_call_of(r)->q;
    struct job_log *logs = NULL;
    size_t n = 0;
    if (job_logs_read(r, true, &logs, &n)) return;
    size_t per = q->records_per_page ? (size_t)q->records_per_page : SCENE7_ROWS_MAX;
    size_t skip = ((size_t)(q->results_page ? q->results_page : 1) - 1) * per;
    struct buf b;
    buf_init(&b);
    buf_puts(&b, "<jobLogArray>");
    for (size_t i = 0; i < n; i++) {
        struct log_rows rows = {0};
        rows_build(req_store(r), logs[i].t, &rows);
        size_t kept = 0; /* the asked log types only */
        for (size_t k = 0; k < rows.n; k++) {
            if (wanted_type(q, rows.v[k].type))
                rows.v[kept++] = rows.v[k];
            else
                free(rows.v[k].message);
        }
        rows.n = kept;
        if (rows.n) qsort_r(rows.v, rows.n, sizeof *rows.v, row_cmp, q);
        size_t from = skip < rows.n ? skip : rows.n;
        size_t count = rows.n - from < per ? rows.n - from : per;
        job_log_write(&b, &logs[i], &rows, from, count, rows.n);
        rows_release(&rows);
    }
    buf_puts(&b, "</jobLogArray>");
    job_logs_free(logs, n);
    scene7_reply(r, "getJobLogDetails", &b);
}
