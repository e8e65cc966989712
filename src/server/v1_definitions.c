/*
 * v1_definitions: task definitions, named templates of a task
 * (docs/schedules.md):
 *
 *   POST   /v1/definitions              {name, type, ...} -> 201
 *   GET    /v1/definitions              {"definitions": [...]}
 *   GET    /v1/definitions/{id|name}
 *   PUT    /v1/definitions/{id|name}    the whole definition again
 *   DELETE /v1/definitions/{id|name}    204
 *   POST   /v1/definitions/{id|name}/launch  {params?, name?, ...} -> 201 the task
 *
 * A task launched from one carries `definition` {id, name, description,
 * executor, arguments}. Writes are store ops; reads run on the caller.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/schedule.h"
#include "../common/timeutil.h"
#include "server_int.h"
#include "v1_decode.h"
#include "v1_docs.h"

/* Checks a definition body as a task would be (type, queue, priority, retries). */
static int definition_check_task(struct req *r, const char *ns, struct tm_error *e) {
    if (definition_check(r->json, e)) return -1;
    json_t *tb = schedule_task_body(r->json, "00000000000000000000000000000000", NULL, NULL, NULL);
    struct task *t = NULL;
    int rc = v1_decode_task(tb, req_limits(r), ns, &t, e);
    json_decref(tb);
    task_free(t);
    return rc ? -1 : 0;
}

static const struct v1_doc_type definitions = {STORE_DOC_DEFINITION, "definitions",
                                               definition_check_task};

static void definitions_launched(struct req *r) {
    if (reply_if_op_failed(r)) return;
    reply_add_location(r, "tasks", r->op.task->id);
    /* A repeat of an idempotency_key is the first task, as POST /v1/tasks gives it. */
    reply_task(r, r->op.created ? 201 : 200, r->op.task);
}

/* POST /v1/definitions/{id|name}/launch: {params?} over the defaults, and
 * the submit fields a launch may set: name, parent_id, scheduled_at,
 * paused, idempotency_key, priority. */
static void definitions_launch(struct req *r) {
    static const char *const fields[] = {"params",          "name",     "parent_id",
                                         "scheduled_at",    "paused",   "launcher",
                                         "idempotency_key", "priority", NULL};
    if (req_json_fields(r, true, fields)) return;
    const char *k;
    json_t *v;
    struct tm_error e;
    err_clear(&e);
    json_t *params = json_object_get(r->json, "params");
    if (params && !json_is_object(params)) {
        reply_error_code(r, TM_EINVALID, "params", "'params' must be an object");
        return;
    }
    struct store_doc d;
    if (v1_doc_path_get(r, STORE_DOC_DEFINITION, &d)) return;
    json_t *def = json_loads(d.body, 0, NULL);
    json_t *tb = schedule_task_body(def, d.id, NULL, params, NULL);
    json_decref(def);
    json_object_foreach(r->json, k, v) {
        if (strcmp(k, "params") != 0) json_object_set(tb, k, v);
    }
    struct task *t = NULL;
    int rc = v1_decode_task(tb, req_limits(r), r->ns ? r->ns : d.ns, &t, &e);
    json_decref(tb);
    store_doc_release(&d);
    if (rc) {
        reply_error(r, &e);
        return;
    }
    store_op_init_create(&r->op, r->ns, t);
    req_submit(r, definitions_launched);
}

const struct route v1_definitions_routes[] = {
    V1_DOC_ROUTES("definitions", definitions),
    {"POST", "/v1/definitions/:id/launch", definitions_launch, PERM_OWNER},
    {NULL, NULL, NULL, 0},
};
