/*
 * scene7_schedule: recurring jobs in the Scene7 view (scene7_int.h).
 *
 * A submitJob with execSchedule stores a taskmill schedule (docs/
 * schedules.md) through the store op v1's POST /v1/schedules uses
 * (STORE_OP_DOC_PUT), after the same checks: the body is read back with
 * schedule_parse and its inline task decoded as a submit, so nothing that
 * cannot fire is stored. The schedule's name is the jobName, its cron the
 * execSchedule mapped by scene7_exec_schedule_cron, its zone UTC, and its
 * inline task the job an immediate submitJob would have created, with
 * params.execSchedule keeping the text as sent. Its id is the jobHandle.
 *
 * getScheduledJobs projects every schedule of the company, and every job
 * submitted with an execTime that has not run yet (a one-off schedule),
 * onto ScheduledJob. The control operations on a schedule's jobHandle
 * pause, resume, trigger or delete it, or stop its unfinished runs.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/schedule.h"
#include "../common/timeutil.h"
#include "../common/xalloc.h"
#include "../server/v1_decode.h"
#include "scene7_int.h"

/* getScheduledJobs has no paging: at most this many jobs. */
#define SCENE7_SCHEDULED_JOBS_MAX 1000
/* The unfinished runs one stopJob cancels, oldest first (as a cancel_running slot). */
#define SCENE7_RUNS_MAX 1000

/* ---- submitJob with execSchedule ---- */

static void scene7_scheduled(struct req *r) {
    struct scene7_call *c = scene7_call_of(r);
    if (r->op.err.code == TM_ECONFLICT) {
        scene7_fault(r, SCENE7_FAULT_INVALID_PARAMETER,
                     "a scheduled job named '%.128s' exists in company '%.64s'; delete it "
                     "(deleteJob) or choose another jobName",
                     c->q.job_name, c->q.company_handle);
        return;
    }
    if (r->op.err.code) {
        scene7_fault_from(r, &r->op.err);
        return;
    }
    struct buf b;
    buf_init(&b);
    scene7_xml_el(&b, "jobHandle", c->doc.id);
    scene7_reply(r, "submitJob", &b);
}

void scene7_schedule_submit(struct req *r, const char *ns, json_t *task) {
    struct scene7_call *c = scene7_call_of(r);
    const struct scene7_request *q = &c->q;
    if (strlen(q->job_name) > SCHEDULE_NAME_MAX) {
        json_decref(task);
        scene7_fault(r, SCENE7_FAULT_INVALID_PARAMETER,
                     "'jobName' of a scheduled job must be at most %d bytes", SCHEDULE_NAME_MAX);
        return;
    }
    json_object_set_new(json_object_get(task, "params"), "execSchedule",
                        json_string(q->exec_schedule));
    json_t *body = json_object();
    json_object_set_new(body, "name", json_string(q->job_name));
    if (q->description) json_object_set_new(body, "description", json_string(q->description));
    json_object_set_new(body, "cron", json_string(q->exec_cron));
    json_object_set_new(body, "timezone", json_string("UTC"));
    json_object_set_new(body, "task", task);
    struct tm_error e;
    err_clear(&e);
    struct schedule sc;
    struct task *t = NULL;
    int rc = schedule_parse(body, &sc, &e);
    if (rc == 0) {
        schedule_release(&sc);
        rc = v1_decode_task(task, req_limits(r), q->company_handle, &t, &e);
        task_free(t);
    }
    if (rc) {
        json_decref(body);
        scene7_fault_from(r, &e);
        return;
    }
    c->doc.ns = xstrdup(q->company_handle);
    c->doc.name = xstrdup(q->job_name);
    c->doc.body = json_dumps(body, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(body);
    store_op_init(&r->op, STORE_OP_DOC_PUT);
    r->op.ns = ns;
    r->op.doc_kind = STORE_DOC_SCHEDULE;
    r->op.doc = &c->doc;
    r->op.flag = true; /* create */
    req_submit(r, scene7_scheduled);
}

/* ---- getScheduledJobs ---- */

static const char *jstr(const json_t *o, const char *key) {
    return json_string_value(json_object_get(o, key));
}

/* The runs of a schedule not finished yet: every task it launched
 * (store_schedule_runs), not only the 8 its state remembers. */
static int unfinished_runs(struct req *r, const struct store_doc *d, char (*ids)[ID_LEN + 1],
                           size_t max, size_t *n, struct tm_error *e) {
    return store_schedule_runs(req_store(r), d, max, ids, n, e);
}

/*
 * Job Trigger States (the Quartz trigger states IPS shows): Paused when
 * paused, Complete when no slot is left (past end_at), Error when the last
 * slot could not launch, Blocked when the overlap policy holds the next
 * run back behind unfinished ones, else Normal.
 */
static const char *trigger_state(struct req *r, const struct store_doc *d, const json_t *st,
                                 const struct schedule *sc, bool paused, int64_t next) {
    if (paused) return "Paused";
    if (!next) return "Complete";
    const char *last = jstr(st, "last_outcome");
    if (last && strcmp(last, "error") == 0) return "Error";
    if (sc->overlap == SCHEDULE_OVERLAP_SKIP || sc->overlap == SCHEDULE_OVERLAP_BUFFER_ONE) {
        char ids[2][ID_LEN + 1]; /* enough to tell: skip holds at 1, buffer_one at 2 */
        size_t n = 0;
        struct tm_error e;
        err_clear(&e);
        if (unfinished_runs(r, d, ids, 2, &n, &e) == 0 &&
            n >= (sc->overlap == SCHEDULE_OVERLAP_SKIP ? 1u : 2u))
            return "Blocked";
    }
    return "Normal";
}

/* The Job Types constant (or the type) of what a schedule launches. */
static char *launched_type(struct req *r, const struct store_doc *d, const json_t *body) {
    const char *type = jstr(json_object_get(body, "task"), "type");
    if (type) return xstrdup(type);
    struct store_doc def;
    struct tm_error e;
    err_clear(&e);
    const char *key = jstr(body, "definition");
    if (!key || store_doc_get(req_store(r), STORE_DOC_DEFINITION, d->ns, key, &def, &e))
        return xstrdup("");
    json_t *db = json_loads(def.body, 0, NULL);
    char *out = xstrdup(jstr(db, "type") ? jstr(db, "type") : "");
    json_decref(db);
    store_doc_release(&def);
    return out;
}

static bool name_matches(const struct scene7_request *q, const char *id, const char *name) {
    return (!q->job_handle || strcmp(q->job_handle, id) == 0) &&
           (!q->original_name || strcmp(q->original_name, name) == 0);
}

/* One ScheduledJob of a schedule, in the XSD order of the WSDL. */
static void schedule_write(struct req *r, struct buf *b, const struct store_doc *d, int64_t now) {
    json_t *body = json_loads(d->body, 0, NULL),
           *st = json_loads(d->state ? d->state : "{}", 0, NULL);
    json_t *task = json_object_get(body, "task"), *params = json_object_get(task, "params");
    const char *original = jstr(task, "name") ? jstr(task, "name") : d->name;
    struct schedule sc;
    struct tm_error e;
    err_clear(&e);
    if (!name_matches(&scene7_call_of(r)->q, d->id, original) || schedule_parse(body, &sc, &e)) {
        json_decref(body);
        json_decref(st);
        return;
    }
    bool paused = json_is_true(json_object_get(st, "paused"));
    /* A paused schedule keeps its next slot, as a paused trigger does. */
    int64_t next = paused ? schedule_next_slot(&sc, now, NULL) : d->next_at;
    char *type = launched_type(r, d, body);
    const char *exec = jstr(params, "execSchedule");
    buf_puts(b, "<items>");
    scene7_xml_el(b, "companyHandle", d->ns);
    scene7_xml_el(b, "jobHandle", d->id);
    scene7_xml_el(b, "name", d->name);
    scene7_xml_el(b, "originalName", original);
    scene7_xml_el(b, "type", type);
    scene7_xml_el(b, "submitUserEmail", jstr(task, "launcher"));
    if (jstr(params, "locale")) scene7_xml_el(b, "locale", jstr(params, "locale"));
    if (jstr(body, "description")) scene7_xml_el(b, "description", jstr(body, "description"));
    scene7_xml_el(b, "execSchedule", exec ? exec : jstr(body, "cron"));
    if (next) scene7_xml_time(b, "nextFireTime", next);
    scene7_xml_el(b, "timeZone", sc.tz_name);
    scene7_xml_el(b, "triggerState", trigger_state(r, d, st, &sc, paused, next));
    buf_puts(b, "</items>");
    free(type);
    schedule_release(&sc);
    json_decref(body);
    json_decref(st);
}

/* One ScheduledJob of a job submitted with an execTime that has not run yet. */
static void one_off_write(struct buf *b, const struct task *t) {
    json_t *params = t->params ? json_loads(t->params, 0, NULL) : NULL;
    buf_puts(b, "<items>");
    scene7_xml_el(b, "companyHandle", t->namespace);
    scene7_xml_el(b, "jobHandle", t->id);
    scene7_xml_el(b, "name", t->name ? t->name : t->id);
    scene7_xml_el(b, "originalName", t->name ? t->name : t->id);
    scene7_xml_el(b, "type", t->type);
    scene7_xml_el(b, "submitUserEmail", t->launcher);
    if (jstr(params, "locale")) scene7_xml_el(b, "locale", jstr(params, "locale"));
    if (t->description) scene7_xml_el(b, "description", t->description);
    scene7_xml_el(b, "execSchedule", "");
    scene7_xml_time(b, "nextFireTime", t->scheduled_at);
    scene7_xml_el(b, "timeZone", "UTC");
    scene7_xml_el(b, "triggerState", t->paused ? "Paused" : "Normal");
    buf_puts(b, "</items>");
    json_decref(params);
}

/* A delayed start (waiting, never claimed), not a retry's backoff. */
static bool is_one_off(const struct task *t) {
    return t->phase == TASK_WAITING && t->attempt == 0 && t->scheduled_at && !t->awaiting_children;
}

/* The one-off jobs of ns into jobs; at most `room`. */
static int one_offs_write(struct req *r, const char *ns, struct buf *jobs, int room,
                          struct tm_error *e) {
    const struct scene7_request *q = &scene7_call_of(r)->q;
    if (q->job_handle) {
        struct task *t = NULL;
        int rc = id_is_valid(q->job_handle) ? store_task_get(req_store(r), ns, q->job_handle, &t, e)
                                            : TM_ENOT_FOUND;
        if (rc && rc != TM_ENOT_FOUND) return rc;
        if (t && room > 0 && is_one_off(t) && name_matches(q, t->id, t->name ? t->name : t->id))
            one_off_write(jobs, t);
        task_free(t);
        return 0;
    }
    struct task_filter f = {0};
    f.ns = ns;
    f.phases = 1u << TASK_WAITING;
    f.name_prefix = q->original_name;
    int page = req_limits(r)->page_max > 0 ? req_limits(r)->page_max : 100;
    for (int count = 0;;) {
        f.limit = page;
        struct task_list l;
        if (store_task_list(req_store(r), &f, &l, e)) return e->code;
        for (size_t i = 0; i < l.n && count < room; i++) {
            const struct task *t = l.tasks[i];
            if (!is_one_off(t) || !name_matches(q, t->id, t->name ? t->name : t->id)) continue;
            one_off_write(jobs, t);
            count++;
        }
        bool more = l.more && l.n && count < room;
        if (more) memcpy(f.cursor, l.tasks[l.n - 1]->id, ID_LEN + 1);
        task_list_release(&l);
        if (!more) return 0;
    }
}

void scene7_get_scheduled_jobs(struct req *r) {
    const char *ns;
    if (scene7_scope(r, &ns)) return;
    struct store_doc *d = NULL;
    size_t n = 0;
    struct tm_error e;
    err_clear(&e);
    if (store_doc_list(req_store(r), STORE_DOC_SCHEDULE, ns, &d, &n, &e)) {
        scene7_fault_from(r, &e);
        return;
    }
    struct buf jobs;
    buf_init(&jobs);
    buf_puts(&jobs, "<jobArray>");
    int64_t now = time_now_ms();
    size_t shown = 0;
    for (size_t i = 0; i < n && shown < SCENE7_SCHEDULED_JOBS_MAX; i++) {
        size_t before = jobs.len;
        schedule_write(r, &jobs, &d[i], now);
        shown += jobs.len > before;
    }
    store_docs_free(d, n);
    if (one_offs_write(r, ns, &jobs, SCENE7_SCHEDULED_JOBS_MAX - (int)shown, &e)) {
        buf_release(&jobs);
        scene7_fault_from(r, &e);
        return;
    }
    buf_puts(&jobs, "</jobArray>");
    scene7_reply(r, "getScheduledJobs", &jobs);
}

/* ---- Control of a schedule ---- */

int scene7_schedule_find(struct req *r, const char *ns, const char *id, struct tm_error *e) {
    struct store_doc d;
    int rc = store_doc_get(req_store(r), STORE_DOC_SCHEDULE, ns, id, &d, e);
    if (rc) return rc;
    bool same = strcmp(d.id, id) == 0; /* not a schedule whose name looks like an id */
    store_doc_release(&d);
    return same ? 0 : TM_ENOT_FOUND;
}

static void schedule_controlled(struct req *r);

/* stopJob: cancels the next unfinished run, or replies when none is left. */
static void schedule_stop_next(struct req *r, const char *ns) {
    struct scene7_call *c = scene7_call_of(r);
    if (c->istop == c->nstop) {
        scene7_reply(r, "stopJob", NULL);
        return;
    }
    store_op_init(&r->op, STORE_OP_CANCEL);
    r->op.ns = ns;
    memcpy(r->op.id, c->stop_ids[c->istop++], ID_LEN + 1);
    req_submit(r, schedule_controlled);
}

static void schedule_controlled(struct req *r) {
    struct scene7_call *c = scene7_call_of(r);
    int code = r->op.err.code;
    if (c->q.op == SCENE7_OP_STOP_JOB &&
        (code == 0 || code == TM_ENOT_FOUND || code == TM_ECONFLICT)) { /* it ended meanwhile */
        const char *ns = r->op.ns;
        store_op_release(&r->op);
        schedule_stop_next(r, ns);
        return;
    }
    if (code) {
        scene7_fault_from(r, &r->op.err);
        return;
    }
    scene7_reply(r, scene7_op_name(c->q.op), NULL);
}

void scene7_schedule_control(struct req *r, const char *ns, const char *id) {
    struct scene7_call *c = scene7_call_of(r);
    enum store_op_kind kind;
    switch (c->q.op) {
    case SCENE7_OP_PAUSE_JOB:
    case SCENE7_OP_RESUME_JOB:
        kind = STORE_OP_SCHED_PAUSE;
        break;
    case SCENE7_OP_EXECUTE_JOB:
        kind = STORE_OP_SCHED_TRIGGER;
        break;
    case SCENE7_OP_DELETE_JOB:
        kind = STORE_OP_DOC_DELETE;
        break;
    default: { /* stopJob: its runs in progress */
        struct store_doc d;
        struct tm_error e;
        err_clear(&e);
        int rc = store_doc_get(req_store(r), STORE_DOC_SCHEDULE, ns, id, &d, &e);
        if (rc == 0) {
            c->stop_ids = xcalloc(SCENE7_RUNS_MAX, sizeof *c->stop_ids);
            rc = unfinished_runs(r, &d, c->stop_ids, SCENE7_RUNS_MAX, &c->nstop, &e);
            store_doc_release(&d);
        }
        if (rc) {
            scene7_fault_from(r, &e);
            return;
        }
        schedule_stop_next(r, ns);
        return;
    }
    }
    store_op_init(&r->op, kind);
    r->op.ns = ns;
    r->op.doc_kind = STORE_DOC_SCHEDULE;
    memcpy(r->op.id, id, ID_LEN + 1);
    r->op.flag = c->q.op == SCENE7_OP_PAUSE_JOB;
    req_submit(r, schedule_controlled);
}
