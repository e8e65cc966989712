/*
 * cli_client: what the client subcommands (submit, get, list, watch,
 * cancel, retry, pause, resume, work) share: the exit codes, picking the
 * server from --server / TASKMILL_URL / TASKMILL_TOKEN, turning a
 * libtaskmill error into a message and an exit code, and the watch loop
 * that `watch` and `submit --wait` both run.
 *
 * Single-threaded helpers except where noted; messages go to stderr in
 * lower case with the subject in quotes.
 */
#ifndef TASKMILL_CLI_CLIENT_H
#define TASKMILL_CLI_CLIENT_H

#include <stdbool.h>
#include <stddef.h>

#include "taskmill.h"

/* The exit codes of the client subcommands; docs/cli.md lists them. */
enum cli_exit {
    CLI_EXIT_OK = 0,
    CLI_EXIT_NOT_COMPLETED = 1, /* a watched task ended failed or cancelled */
    CLI_EXIT_USAGE = 2,         /* bad flags or arguments */
    CLI_EXIT_NOT_FOUND = 3,     /* no such task */
    CLI_EXIT_REFUSED = 4,       /* the server refused the request (400, 401, 403, 409, 413) */
    CLI_EXIT_UNAVAILABLE = 5,   /* no connection, a 5xx, or a reply that made no sense */
};

/* The default server when neither --server nor TASKMILL_URL says. */
#define CLI_DEFAULT_URL "http://127.0.0.1:8080"

/* A client for `server` (may be NULL: then TASKMILL_URL, then the default) with TASKMILL_TOKEN. */
struct tm_client *cli_client_new(const char *server);
/*
 * Parses the options of the commands that take task ids (--server, --json,
 * --help) and checks the ids: exactly one when `one_id`, else at least one.
 * `usage` is printed for --help (to stdout) and for mistakes (to stderr).
 * Returns -1 to go on (the ids start at optind), or the exit code to end with.
 */
int cli_parse_id_args(int argc, char **argv, const char *usage, bool one_id, const char **server,
                      bool *json);
/* Prints "taskmill CMD: WHAT: message" for the client's last error; returns the exit code for it.
 */
int cli_client_error(const char *cmd, struct tm_client *c, const char *what);
/* The exit code for a TM_CLIENT_E... code. */
int cli_exit_for(int code);
/* Adds "KEY=VALUE" (a string) or "KEY:=JSON" to params; -1 after a message naming cmd. */
int cli_param_add(const char *cmd, json_t *params, const char *arg);
/* Prints a JSON value on stdout, indented, with a newline. */
void cli_print_json(const json_t *v);

/*
 * Follows the tasks `ids` until each is terminal, drawing progress bars on
 * a terminal and plain lines otherwise (`json`: the final tasks as JSON
 * lines instead). Returns the exit code: 0 when every task completed.
 */
int cli_watch_run(struct tm_client *c, char *const *ids, size_t n, bool json);

#endif
