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

#include <getopt.h>
#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "taskmill.h"

/* The exit codes of the client subcommands; docs/cli.md lists them. */
enum cli_exit {
    CLI_EXIT_OK = 0,
    CLI_EXIT_NOT_COMPLETED = 1, /* a watched task ended failed or cancelled */
    CLI_EXIT_USAGE = 2,         /* bad flags or arguments */
    CLI_EXIT_NOT_FOUND = 3,     /* no such task */
    CLI_EXIT_REFUSED = 4,       /* the server refused the request (400, 401, 403, 409, 413) */
    CLI_EXIT_UNAVAILABLE = 5,   /* no connection, a 5xx, or a reply that made no sense */
    CLI_EXIT_OUTPUT =
        6, /* writing standard output failed (a full disk; a closed pipe ends by SIGPIPE) */
};

/*
 * Flushes standard output, and says whether a write to it has failed
 * (then or before); the first failure's reason is kept for
 * cli_output_close's message. For a long-running command (watch) to stop
 * at once rather than go on writing to no one.
 */
bool cli_output_flush(void);
/*
 * Flushes and closes standard output, for main once the command has run.
 * When that or any write before it failed, prints "taskmill CMD: cannot
 * write the output: REASON" and returns CLI_EXIT_OUTPUT; else 0. A pipe
 * whose reader has gone (EPIPE) ends the process by SIGPIPE instead, with
 * no message, as `yes | head` ends. Nothing may be written on stdout after it.
 */
int cli_output_close(const char *cmd);

/* The default server when neither --server nor TASKMILL_URL says. */
#define CLI_DEFAULT_URL "http://127.0.0.1:8080"

/* A client for `server` (may be NULL: then TASKMILL_URL, then the default) with TASKMILL_TOKEN. */
struct tm_client *cli_client_new(const char *server);
/* How many operands (task ids, queue names) a command takes after its options. */
enum cli_operands { CLI_OPERANDS_NONE, CLI_OPERANDS_ONE, CLI_OPERANDS_SOME };
/*
 * Parses the options of the commands that take only --server, --json and
 * --help (get, watch, the controls, queue) and checks the operands' count.
 * `usage` is printed for --help (to stdout) and for mistakes (to stderr).
 * Returns -1 to go on (the operands start at optind), or the exit code to
 * end with.
 */
int cli_parse_args(const char *cmd, int argc, char **argv, const char *usage,
                   enum cli_operands want, const char **server, bool *json);
/* Prints "taskmill CMD: WHAT: message" for the client's last error; returns the exit code for it.
 */
int cli_client_error(const char *cmd, struct tm_client *c, const char *what);
/* The exit code for a TM_CLIENT_E... code. */
int cli_exit_for(int code);
/* Adds "KEY=VALUE" (a string) or "KEY:=JSON" to params; -1 after a message naming cmd
 * (also for a key or a string that is not UTF-8, which JSON cannot hold). */
int cli_param_add(const char *cmd, json_t *params, const char *arg);
/*
 * Sets key of o to the string value, which the user typed for `flag`.
 * Returns 0, or -1 after "taskmill CMD: 'FLAG' must be UTF-8": jansson
 * makes no string of other bytes, and a value left out of a request
 * silently (a task sent to the default queue) is worse than a refusal.
 */
int cli_json_set_text(const char *cmd, json_t *o, const char *key, const char *flag,
                      const char *value);
/* Whether value is UTF-8; if not, says "taskmill CMD: 'FLAG' must be UTF-8" (flag as typed). */
bool cli_text_ok(const char *cmd, const char *flag, const char *value);
/*
 * Whether `flag` (a long option's name, without "--") is one of `takes`,
 * the space-separated flags a verb takes besides --server, --json and
 * --help; if not, says "taskmill CMD: option '--FLAG' is not taken by
 * 'VERB'" (a flag another verb uses is refused, not ignored).
 */
bool cli_flag_taken(const char *cmd, const char *verb, const char *takes, const char *flag);
/* s percent-encoded as one segment of a URL's path (RFC 3986: all but the unreserved
 * characters; a segment of dots too, which would otherwise be read as '.' or '..').
 * Returns a malloc'ed string. */
char *cli_path_segment(const char *s);
/*
 * getopt_long for the subcommands, except that a long option must be
 * spelt out: getopt_long takes any unambiguous prefix (`--prio` for
 * `--priority`), which hides typos in scripts. A prefix is refused with a
 * message naming what was typed and the option it would have meant, and
 * '?' is returned as for any unknown option. Every refusal (an unknown
 * option, a value missing, a value given to a switch) is said as
 * "taskmill CMD: ..." (getopt's own messages name the bare command) and
 * returns '?'.
 */
int cli_getopt(const char *cmd, int argc, char **argv, const char *shortopts,
               const struct option *opts);

/* A flag whose value a command keeps as typed, in a `const char *` field of
 * its arguments' struct (at `off`). */
struct cli_value_flag {
    const char *name;
    size_t off;
};
/* The getopt value of a command's value_flags[0] (the others follow). */
#define CLI_VALUE_OPT 1000
/*
 * Fills opts, which has room for n + the others' count, with one option per
 * value flag (taking an argument, with getopt value CLI_VALUE_OPT + i), then
 * `others` up to and including its {NULL} end.
 */
void cli_options_build(struct option *opts, const struct cli_value_flag *flags, size_t n,
                       const struct option *others);
/* When ch (from cli_getopt) is one of the n value flags, stores optarg in
 * its field of args and returns true; otherwise false. */
bool cli_value_flag_set(int ch, const struct cli_value_flag *flags, size_t n, void *args);

/*
 * Blocks SIGINT and SIGTERM in the calling thread, and so in every thread
 * it starts after, and sets *stop to them for the one thread that waits
 * (sigwait): serve and work. Ignores SIGPIPE: a peer that went away is an
 * error return, not the end of the process.
 */
void cli_block_stop_signals(sigset_t *stop);

/* The flag a command's user typed for an API field: {"scheduled_at", "--at"}. */
struct cli_flag {
    const char *field, *flag;
};
/*
 * As cli_client_error, but the message names the flags the user typed, not
 * the API fields: every quoted field that `flags` (ended by {NULL, NULL})
 * maps to a flag is written as the flag ("'--at' must be ..." for
 * "'scheduled_at' must be ...", both of "one of 'cron' and
 * 'interval_seconds'"), unless the quoted text is one of the strings of
 * `sent` (the request's body, may be NULL: a value the user gave, such as
 * a definition named 'queue'). When the server named a field with a flag
 * the message does not quote, the flag comes first: "'--definition': ...".
 */
int cli_client_error_flags(const char *cmd, struct tm_client *c, const char *what,
                           const struct cli_flag *flags, const json_t *sent);

/* A copy of s fit to print on a terminal, as cli_json_printable makes strings; NULL when
 * s is fit as it is. The caller frees it. */
char *cli_printable_copy(const char *s);
/* Makes every string of j (not the keys) fit to print on a terminal: a control character
 * (C0, DEL, C1) that a task's text may hold (an escape sequence, a newline that would
 * break a table or the redrawn bars of `watch`) becomes '?', a tab a space. For what is
 * shown as text; JSON output is escaped by the encoder. */
void cli_json_printable(json_t *j);

/* The shortest id prefix `taskmill` prints (the first 12 digits are the
 * creation time in ms): watch and work print at least this much. */
#define CLI_SHORT_ID_MIN 12
/* How many digits of ids[i] tell it apart from every other id of ids, at
 * least CLI_SHORT_ID_MIN (git's short ids, among what is shown). */
int cli_short_id_len(char *const *ids, size_t n, size_t i);
/* The fewest digits a prefix given for an id must have. */
#define CLI_ID_PREFIX_MIN 4
/*
 * Turns what the user typed for a task id into the id: a whole id as it
 * is; a shorter run of hex digits (at least CLI_ID_PREFIX_MIN) into the one
 * task whose id starts with it; hex digits in either case. Anything else
 * is passed on as typed (the server says what is wrong). Returns 0 with
 * out set, or prints "taskmill CMD: ..." and returns the exit code: not
 * found (3), ambiguous (2, naming the first matches), too short (2), or
 * the list request's.
 */
int cli_resolve_id(const char *cmd, struct tm_client *c, const char *typed, char out[TM_ID_MAX]);

/*
 * A time flag: RFC 3339, or relative to now: "+30s", "+5m", "+2h", "+1d"
 * ahead, or with '-' that long ago. Writes RFC 3339 (UTC, ms) into out.
 * Returns 0, or -1 after a message naming `flag` as typed.
 */
int cli_parse_time(const char *cmd, const char *flag, const char *value, char out[32]);

/*
 * A task's state in words for tables and bars (cmd_task.c): the phase,
 * " (paused)" when paused, and for a waiting task its time ("waiting
 * 14:03:00Z", or "waiting 12-04 09:00Z" on another day, UTC).
 */
void cli_task_state(const json_t *t, int64_t now_ms, char *out, size_t n);

/* Prints a JSON value on stdout, indented, with a newline. DEL and the C1
 * controls in its strings are written escaped (\u007f, \u009b): the same
 * JSON, nothing a terminal takes for a control. Every --json output goes
 * through here. */
void cli_print_json(const json_t *v);
/* The same with jansson's `flags` (JSON_COMPACT: one line). */
void cli_print_json_as(const json_t *v, size_t flags);
/* Writes JSON text made otherwise (token's) on stdout, escaped as those. */
void cli_print_json_text(const char *text);

/*
 * Follows the tasks `ids` until each is terminal, drawing progress bars on
 * a terminal and plain lines otherwise (`json`: the final tasks as JSON
 * lines instead). Returns the exit code: 0 when every task completed;
 * CLI_EXIT_OUTPUT, at once, when a write to stdout fails.
 */
int cli_watch_run(struct tm_client *c, char *const *ids, size_t n, bool json);

#endif
