/*
 * livepeer_schema: which parts of a task's params and result the `livepeer`
 * npm SDK (3.5.0) can parse, so the Livepeer view serves only those.
 *
 * The SDK checks every Task it receives against zod schemas, and one task
 * that fails fails the whole `task.getAll()` page. A task's params and
 * result are whatever its producer and worker sent, so the view checks
 * each member the SDK knows (`params.upload`, `params.export`,
 * `params.exportData`, `params.transcode-file`, `params.clip`;
 * `output.upload`, `output.export`, `output.exportData`) against a table
 * that mirrors the SDK's schemas (src/models/components/task.ts and the
 * components it uses) and leaves out the members that do not conform.
 * Members the SDK does not know conform: it drops them itself.
 *
 * Pure and thread-safe: the tables are constant; nothing is kept between
 * calls. docs/compat.md (Livepeer) states the rule; tests/compat/
 * livepeer.test.mjs checks the tables against the SDK's own zod schemas.
 */
#ifndef TASKMILL_LIVEPEER_SCHEMA_H
#define TASKMILL_LIVEPEER_SCHEMA_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

/* The two objects of a Task whose members are checked. */
enum livepeer_part {
    LIVEPEER_PART_PARAMS, /* Task.params, from the v1 params */
    LIVEPEER_PART_OUTPUT, /* Task.output, from the v1 result */
};

/*
 * Whether v, as member `key` of the part, parses through the SDK's schema
 * for that member: the right JSON types, every required key, enum values
 * from the SDK's enums, integers where the SDK wants safe integers, nested
 * objects alike. A key the SDK does not know always conforms, and so does
 * an absent member (v NULL): every member is optional.
 */
bool livepeer_schema_conforms(enum livepeer_part part, const char *key, const json_t *v);

/*
 * The part to serve for stored JSON text (a v1 params or result): NULL
 * when the text is not a JSON object; else the object with every member
 * that does not conform deleted (the caller decrefs). *dropped counts the
 * members deleted, so a caller may serve the stored text as it is when 0.
 */
json_t *livepeer_schema_keep(enum livepeer_part part, const char *text, size_t *dropped);

#endif
