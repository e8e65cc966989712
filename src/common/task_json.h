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

/* Appends messages (array of {level,key,text,locale,parameters}), stamping `at`,
 * dropping the oldest past TASK_MAX_MESSAGES; a WARN marks the run warned. */
void task_add_messages(struct task *t, json_t *messages, int64_t now);
/* Upserts items by name (array of {name,progress,message}). Returns
 * TM_EINVALID if the task would hold more than TASK_MAX_ITEMS. */
int task_merge_items(struct task *t, json_t *items, int64_t now, struct tm_error *e);
/* Shallow-merges an object into attributes; a null value removes the key. */
void task_merge_attributes(struct task *t, json_t *attributes);

/* Compact JSON text of a value (caller frees), or NULL for NULL. */
char *json_text(const json_t *v);

#endif
