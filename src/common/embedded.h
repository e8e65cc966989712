/*
 * embedded: files compiled into the binary by scripts/embed.sh (SQL
 * migrations now, the dashboard later). Read-only, static lifetime.
 */
#ifndef TASKMILL_EMBEDDED_H
#define TASKMILL_EMBEDDED_H

#include <stddef.h>

struct embedded_file {
    const char *name; /* base name, e.g. "0001_tasks.sql"; NULL ends the table */
    const char *data; /* NUL-terminated */
    size_t len;
};

#endif
