/*
 * task_json: the v1 JSON form of a task, and merging of JSON-valued parts.
 *
 * task_json_write is the hot path of every read: it writes the record
 * straight into a buf with no intermediate tree. The merge functions take
 * already-validated jansson values (the request decoders check shapes and
 * sizes) and update the task's stored JSON text. Pure; thread-safe.
 */
#ifndef TASKMILL_TASK_JSON_H
#define TASKMILL_TASK_JSON_H

#include <jansson.h>

#include "buf.h"
#include "task.h"

void task_json_write(struct buf *b, const struct task *t);
/* As task_json_write; also sets *phase_at (when not NULL) to the length,
 * from where it started writing, of the keys set at creation (id to
 * params), which end just before the comma of "phase". */
void task_json_write_at(struct buf *b, const struct task *t, size_t *phase_at);
/*
 * Writes the v1 JSON of t as task_json_write does when it takes at most
 * max_bytes (0: no bound). Past that it writes a reduced form instead,
 * with the same keys and shapes: params, target, definition, attributes
 * `{}`-or-null, items, messages, returns `[]`, result null, and one more
 * key, "truncated": true. If even that is over max_bytes, description,
 * error and progress.message are null too, which leaves only fields of
 * fixed bound. Returns whether it reduced. Readers re-read the task.
 */
bool task_json_write_capped(struct buf *b, const struct task *t, size_t max_bytes,
                            size_t *phase_at);

/*
 * A task's JSON in two parts, as the event log stores most events: the
 * keys set at creation (id to params, which never change) and the rest
 * (`{"phase":...}`, every key from phase on). task_json_write_at gives the
 * split point; the rest is "{" plus what follows the comma there.
 * task_json_is_whole: json begins with the "id" key (not a rest).
 * task_json_join: base's creation keys (base is any whole JSON of the
 * same task) followed by rest's keys: the whole task again, byte for byte.
 * When base was reduced ("truncated": true), or `truncated` is asked, the
 * result ends with "truncated": true too. NULL when base has no "phase"
 * key or rest is not an object. Returns malloc'd text.
 */
bool task_json_is_whole(const char *json);
char *task_json_join(const char *base, const char *rest, bool truncated);

/*
 * The attempt history (task.attempts). A claim opens an entry {attempt,
 * worker, started_at, ended_at: null, outcome: "running", error: null};
 * the end of the run closes the open one with its outcome (completed,
 * failed, retry, released, lease_expired, cancelled) and error. The
 * newest TASK_MAX_ATTEMPTS are kept.
 */
#define TASK_MAX_ATTEMPTS 50
void task_attempt_begin(struct task *t, int64_t now);
void task_attempt_end(struct task *t, const char *outcome, const char *error, int64_t now);

/* Appends messages (array of {level,key,text,locale,parameters}), stamping `at`,
 * dropping the oldest past TASK_MAX_MESSAGES or TASK_MESSAGES_MAX_BYTES; a WARN
 * marks the run warned. What was dropped is counted by a first message
 * {"level":"INFO","key":"taskmill.messages_dropped","text":"N earlier
 * messages were dropped",...,"parameters":{"dropped":N}}, itself kept. */
void task_add_messages(struct task *t, json_t *messages, int64_t now);
/* Upserts items by name (array of {name,progress,message}). Returns
 * TM_EINVALID (field `items`), leaving t unchanged, if the task would hold
 * more than TASK_MAX_ITEMS or TASK_ITEMS_MAX_BYTES of items. */
int task_merge_items(struct task *t, json_t *items, int64_t now, struct tm_error *e);
/* A task's `type` as a body gives it (v, NULL when absent): a string of 1
 * to TASK_TYPE_MAX bytes with no control character. 0, or TM_EINVALID
 * with the field named: a submit's and a definition's checks are one. */
#define TASK_TYPE_MAX 128
int task_type_check(const json_t *v, struct tm_error *e);
/* Shallow-merges an object into attributes; a null value removes the key.
 * Returns TM_EINVALID (field `attributes`), leaving t unchanged, if the
 * result would hold more than max_keys keys or more than max_bytes of
 * JSON text (0: no bound). */
int task_merge_attributes(struct task *t, json_t *attributes, int max_keys, size_t max_bytes,
                          struct tm_error *e);

/* Compact JSON text of a value (caller frees), or NULL for NULL. */
char *json_text(const json_t *v);

#endif
