/*
 * cmd_queue: `taskmill queue list|pause|resume`: the queues with their
 * state and counts, and pausing or resuming a whole queue (a paused queue
 * hands out no task; workers' claims wait or come back empty).
 *
 * Single-threaded; every allocation is freed before the command returns.
 */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "cli_client.h"

static const char queue_usage[] =
    "usage: taskmill queues [list] [--server URL] [--json]\n"
    "       taskmill queues pause|resume [--server URL] [--json] QUEUE...\n"
    "  list (the default): each queue's state (active or paused) and its tasks per\n"
    "  phase. pause: the queue hands out no task until resumed (admin tokens only).\n"
    "  'taskmill queue' is the same command.\n";

static long long count_of(const json_t *q, const char *phase) {
    return (long long)json_integer_value(json_object_get(json_object_get(q, "counts"), phase));
}

static int queue_list(struct tm_client *c, const char *cmd, bool json) {
    json_t *out = NULL;
    if (tm_queues(c, &out)) return cli_client_error(cmd, c, NULL);
    if (json) {
        cli_print_json(out);
    } else {
        /* A name or a state is the server's text: printed as task text is (the server
         * restricts queue names, but a proxy or another server need not). */
        cli_json_printable(out);
        printf("%-20s  %-6s  %8s  %8s  %8s  %9s  %8s  %9s\n", "QUEUE", "STATE", "PENDING",
               "WAITING", "RUNNING", "COMPLETED", "FAILED", "CANCELLED");
        size_t i;
        json_t *q;
        json_array_foreach(json_object_get(out, "queues"), i, q) {
            const char *state = json_string_value(json_object_get(q, "state"));
            const char *name = json_string_value(json_object_get(q, "name"));
            printf("%-20s  %-6s  %8lld  %8lld  %8lld  %9lld  %8lld  %9lld\n", name ? name : "-",
                   state ? state : "-", count_of(q, "pending"), count_of(q, "waiting"),
                   count_of(q, "running") + count_of(q, "stopping"), count_of(q, "completed"),
                   count_of(q, "failed"), count_of(q, "cancelled"));
        }
    }
    json_decref(out);
    return CLI_EXIT_OK;
}

/* `taskmill queue VERB ...`; cmd is what messages name it: argv[0] ("queue" or "queues") and
 * the verb, or argv[0] alone when `queues` put in the "list" that was not typed. */
static int queue_run(int argc, char **argv, bool verb_typed) {
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        fputs(queue_usage, argc < 2 ? stderr : stdout);
        return argc < 2 ? CLI_EXIT_USAGE : CLI_EXIT_OK;
    }
    const char *verb = argv[1];
    if (strcmp(verb, "ls") == 0) verb = "list";
    bool list = strcmp(verb, "list") == 0, pause = strcmp(verb, "pause") == 0;
    if (!list && !pause && strcmp(verb, "resume") != 0) {
        fprintf(stderr, "taskmill %s: unknown subcommand '%s'\n", argv[0], verb);
        fputs(queue_usage, stderr);
        return CLI_EXIT_USAGE;
    }
    char cmd[64];
    snprintf(cmd, sizeof cmd, "%s%s%s", argv[0], verb_typed ? " " : "", verb_typed ? verb : "");
    const char *server;
    bool json;
    argc--;
    argv++; /* argv[0] is now the subcommand */
    int stop = cli_parse_args(cmd, argc, argv, queue_usage,
                              list ? CLI_OPERANDS_NONE : CLI_OPERANDS_SOME, &server, &json);
    if (stop >= 0) return stop;
    for (int i = optind; !list && i < argc; i++)
        if (!cli_text_ok(cmd, "QUEUE", argv[i])) return CLI_EXIT_USAGE;
    struct tm_client *c = cli_client_new(server);
    int rc = CLI_EXIT_OK;
    if (list) {
        rc = queue_list(c, cmd, json);
    } else {
        for (int i = optind; i < argc; i++) {
            json_t *q = NULL;
            if (tm_queue_pause(c, argv[i], pause, &q)) {
                int r = cli_client_error(cmd, c, argv[i]);
                if (r > rc) rc = r;
                continue;
            }
            if (json) {
                cli_print_json(q);
            } else {
                cli_json_printable(q);
                const char *state = json_string_value(json_object_get(q, "state"));
                printf("%s %s\n", argv[i], state ? state : "-");
            }
            json_decref(q);
        }
    }
    tm_client_free(c);
    return rc;
}

int cmd_queues(int argc, char **argv) {
    /* `taskmill queues` and `taskmill queues --json` list; a verb works as for `queue`. */
    if (argc < 2 || argv[1][0] == '-') {
        char *args[64];
        int n = 0;
        args[n++] = argv[0];
        args[n++] = (char *)"list";
        for (int i = 1; i < argc && n < 63; i++)
            args[n++] = argv[i];
        args[n] = NULL;
        if (argc > 1 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0))
            return queue_run(argc, argv, true);
        return queue_run(n, args, false);
    }
    return queue_run(argc, argv, true);
}

int cmd_queue(int argc, char **argv) {
    return queue_run(argc, argv, true);
}
