/*
 * scene7_int: what the files of the Scene7 view share, and nobody else
 * includes: the call in flight, the XML and SOAP reply writers of
 * scene7.c, and the operations that live in their own files:
 *
 *   scene7.c           routes, authentication, ActiveJob, submitJob and the
 *                      control operations on jobs (tasks)
 *   scene7_schedule.c  recurring jobs: submitJob with execSchedule,
 *                      getScheduledJobs, and the control operations when a
 *                      jobHandle names a schedule
 *   scene7_joblog.c    getJobLogs and getJobLogDetails
 *
 * Handlers run on libmicrohttpd threads and keep no data of their own; the
 * call lives in r->owned until the request ends. Every refusal is a fault
 * written by scene7_fault / scene7_fault_from.
 */
#ifndef TASKMILL_SCENE7_INT_H
#define TASKMILL_SCENE7_INT_H

#include "../server/http.h"
#include "../store/store.h"
#include "scene7.h"
#include "scene7_soap.h"

/* One call in flight: the parsed request and what its store ops need. */
struct scene7_call {
    struct scene7_request q;
    int fault_status;
    bool delete_after_cancel;
    struct store_doc doc; /* submitJob with execSchedule: the schedule stored */
    /* stopJob of a schedule: its unfinished runs, cancelled one after another. */
    char (*stop_ids)[ID_LEN + 1];
    size_t nstop, istop;
};

struct scene7_call *scene7_call_of(struct req *r);

/* <name>text</name>, escaped; NULL is written as empty. */
void scene7_xml_el(struct buf *b, const char *name, const char *text);
/* An xsd:int, clamped to its range. */
void scene7_xml_int(struct buf *b, const char *name, int64_t v);
/* An xsd:dateTime in UTC with milliseconds. */
void scene7_xml_time(struct buf *b, const char *name, int64_t ms);

/* An ipsApiFault with the code and a formatted reason. */
void scene7_fault(struct req *r, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* A store or decoder error as a fault: bad input, conflicts and unknown
 * records are 30001, the rest 30000. */
void scene7_fault_from(struct req *r, const struct tm_error *e);
/* The <op>Return reply holding content (taken and released; NULL = empty). */
void scene7_reply(struct req *r, const char *op, struct buf *content);
/* The namespace the call acts in: companyHandle, checked against the
 * token (a fault and -1 when it is not a namespace name or not the
 * token's); the token's own when no companyHandle is given (NULL for an
 * admin: every namespace). */
int scene7_scope(struct req *r, const char **ns);
/* A job's originalName (and name): its task's name, or its id when it has none. */
const char *scene7_original_name(const struct task *t);
/* The job an originalName filter matches outside the store's name index:
 * the task of ns whose id it is, when that task has no name (so shows its
 * id as its name). 0 with *out NULL when there is none; an error else. */
int scene7_unnamed_job(struct req *r, const char *ns, const char *original_name, struct task **out,
                       struct tm_error *e);

/* submitJob with execSchedule: stores a schedule launching `task` (the v1
 * submit body of the job, taken) and replies with its id as jobHandle. */
void scene7_schedule_submit(struct req *r, const char *ns, json_t *task);
void scene7_get_scheduled_jobs(struct req *r);
/* stopJob, pauseJob, resumeJob, executeJob, deleteJob on schedule `id` of ns. */
void scene7_schedule_control(struct req *r, const char *ns, const char *id);
/* Whether id (32 hex) is a schedule's id in ns: 0, TM_ENOT_FOUND, or a
 * read error with e set. */
int scene7_schedule_find(struct req *r, const char *ns, const char *id, struct tm_error *e);

void scene7_get_job_logs(struct req *r);
void scene7_get_job_log_details(struct req *r);

#endif
