/*
 * schedule: the model of task definitions and schedules (docs/schedules.md),
 * shared by the server (which validates what it is sent) and the store
 * (which reads what it stored when it fires). Pure; thread-safe.
 *
 * A definition is a named template of a task: type, queue, priority,
 * params defaults, retries, timeout, description, executor, arguments.
 * A schedule launches a definition (by id or name) or an inline task at
 * each slot of a cron expression in an IANA zone (cron.h, tz.h), or of a
 * fixed interval from its start, between start_at and end_at.
 */
#ifndef TASKMILL_SCHEDULE_H
#define TASKMILL_SCHEDULE_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "cron.h"
#include "err.h"
#include "tz.h"

#define SCHEDULE_NAME_MAX       128 /* a name stored (schedule_parse); see schedule_name_check */
#define SCHEDULE_NEW_NAME_MAX   127 /* a name given now (schedule_name_check) */
#define SCHEDULE_CATCHUP_MAX_S  (7 * 24 * 3600)
#define SCHEDULE_JITTER_MAX_S   3600
#define SCHEDULE_INTERVAL_MAX_S (366LL * 24 * 3600)
#define SCHEDULE_BACKFILL_MAX   1000 /* slots per backfill request */
#define SCHEDULE_PREVIEW_MAX    100

enum schedule_overlap {
    SCHEDULE_OVERLAP_SKIP,           /* the previous run is not finished: skip this slot */
    SCHEDULE_OVERLAP_BUFFER_ONE,     /* queue at most one run behind the unfinished one */
    SCHEDULE_OVERLAP_ALLOW_ALL,      /* launch every slot */
    SCHEDULE_OVERLAP_CANCEL_RUNNING, /* cancel the unfinished run, then launch */
};
const char *schedule_overlap_name(enum schedule_overlap o);

struct schedule {
    bool has_cron;
    struct cron_expr cron;
    char cron_text[CRON_MAX_TEXT + 1];
    int64_t interval_ms; /* without cron */
    const struct tz *tz;
    char tz_name[64];
    int64_t start_at, end_at; /* wall ms, when has_start / has_end (any value, 0 too) */
    bool has_start, has_end;  /* given: else open on that side */
    enum schedule_overlap overlap;
    int64_t catchup_ms, jitter_ms;
    char definition[SCHEDULE_NAME_MAX + 1]; /* a definition's id or name; "" = inline task */
    json_t *task;                           /* inline: the task's v1 submit body (owned) */
    json_t *params;                         /* with a definition: params over its defaults */
};

/*
 * Reads and checks a schedule's JSON (POST /v1/schedules; also what the
 * store kept). Fields: name, description, cron | interval_seconds,
 * timezone ("UTC"), start_at, end_at, definition | task, params, overlap
 * ("skip"), catchup_seconds (3600), jitter_seconds (0), paused, note.
 * TM_EINVALID naming the field; `out` is released on failure.
 */
int schedule_parse(json_t *body, struct schedule *out, struct tm_error *e);
void schedule_release(struct schedule *s);
/*
 * Anchors the body of an interval schedule without a start (start_at
 * absent or null) at anchor_ms, written as its start_at: its slots count
 * from there. Returns whether the body changed; one with cron, or with a
 * start_at, is left as it is.
 */
bool schedule_anchor(json_t *body, int64_t anchor_ms);
/*
 * The first slot strictly after `after_ms` inside [start_at, end_at], or
 * 0 when there is none (a slot after 9999-12-31T23:59:59.999Z is none). flags: CRON_FIRE_SHIFTED /
 * CRON_FIRE_REPEATED.
 */
int64_t schedule_next_slot(const struct schedule *s, int64_t after_ms, unsigned *flags);
/*
 * The first millisecond at or after `ms` that is not one of the schedule's
 * slots: a trigger's key in schedule_fires, so that a trigger asked at the
 * very millisecond of a slot does not take that slot's key (the slot would
 * then find itself fired and launch nothing).
 */
int64_t schedule_off_slot(const struct schedule *s, int64_t ms);
/*
 * The jitter delay of one slot of the schedule with id `id`: from 0 to
 * jitter_ms, 0 without jitter. A hash of the id and the slot alone, so
 * every node computes the same delay, again after a restart, with nothing
 * stored; neighbouring slots get unrelated delays.
 */
int64_t schedule_slot_delay_ms(const struct schedule *s, const char *id, int64_t slot);

/*
 * Checks a name given to a definition or a schedule: 1 to
 * SCHEDULE_NEW_NAME_MAX bytes, no control characters, no '/' and no "%00",
 * so that the name is always one path segment the server routes
 * (/v1/schedules/{name}, percent-encoded; a path holding "%00" is refused
 * and a segment is at most 127 bytes), and not 32 lowercase hex digits:
 * a path's segment of that shape is read as an id first, so such a name
 * could be another one's id and would not reach its own. TM_EINVALID
 * naming "name", or 0. schedule_parse does not apply it, so that names
 * stored before the rule (and the Scene7 view's jobNames) stay readable.
 */
int schedule_name_check(const char *name, struct tm_error *e);

/* Checks a definition's JSON (POST /v1/definitions): name, type,
 * description, queue, priority, params, max_retries, timeout_seconds,
 * executor, arguments. TM_EINVALID naming the field. */
int definition_check(json_t *body, struct tm_error *e);

/*
 * The v1 submit body of one run: with a definition (its stored body and
 * id), its template with params = defaults overlaid by `params`, and
 * `definition` {id, name, description, executor, arguments}; else the
 * inline task. `launcher` is set to "schedule:<name>" when sched_name is
 * given. Returns a new object.
 */
json_t *schedule_task_body(const json_t *def_body, const char *def_id, const json_t *inline_task,
                           const json_t *params, const char *sched_name);

#endif
