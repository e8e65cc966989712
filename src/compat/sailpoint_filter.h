/*
 * sailpoint_filter: SailPoint's collection query grammar, as pure parsers
 * from bytes to structs (developer.sailpoint.com "standard collection
 * parameters"; docs/compat.md). Used by sailpoint.c and the fuzz target.
 *
 *   filters  := or ; or := and ('or' and)* ; and := not ('and' not)*
 *   not      := 'not' not | '(' or ')' | FIELD op
 *   op       := (eq|ne|gt|ge|lt|le|sw|co) VALUE | (in|ca) '(' VALUE (',' VALUE)* ')'
 *             | isnull | pr
 *   VALUE    := "quoted \"string\"" | true | false | null | number | date-time
 *
 * Keywords and operators are lower case only. Leaves keep the field name as
 * written (field FILTER_FIELD_NONE); the caller resolves names. Sizes are
 * capped (SAILPOINT_FILTER_MAX_BYTES, FILTER_MAX_*) before memory is spent.
 * Errors: TM_EINVALID with field "filters" / "sorters" and a message that
 * names the offending text. Thread-safe; the tree belongs to the caller.
 */
#ifndef TASKMILL_SAILPOINT_FILTER_H
#define TASKMILL_SAILPOINT_FILTER_H

#include <stdbool.h>
#include <stddef.h>

#include "../common/err.h"
#include "../common/filter.h"

#define SAILPOINT_FILTER_MAX_BYTES 4096

/* Parses `filters` (n bytes, no NUL needed). 0 and *out, or TM_EINVALID. */
int sailpoint_filter_parse(const char *s, size_t n, struct filter_expr **out, struct tm_error *e);

/* Parses `sorters` ("created", "-created"; comma-separated, the last wins).
 * 0 and *ascending, or TM_EINVALID for any other sorter. */
int sailpoint_sorters_parse(const char *s, bool *ascending, struct tm_error *e);

#endif
