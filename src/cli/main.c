/*
 * main: the `taskmill` binary's entry point; dispatches subcommands.
 */
#include <stdio.h>
#include <string.h>

#include "../common/version.h"
#include "cli.h"
#include "cli_client.h"

struct command {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *help;
};

static const struct command commands[] = {
    {"serve", cmd_serve, "run the task server"},
    {"token", cmd_token, "API tokens: create, list, revoke, purge"},
    {"submit", cmd_submit, "submit a task"},
    {"get", cmd_get, "show a task"},
    {"list", cmd_list, "list tasks"},
    {"watch", cmd_watch, "follow tasks' progress until they end"},
    {"cancel", cmd_cancel, "cancel tasks"},
    {"retry", cmd_retry, "run failed or cancelled tasks again"},
    {"pause", cmd_pause, "keep tasks from being claimed"},
    {"resume", cmd_resume, "let paused tasks be claimed again"},
    {"delete", cmd_delete, "remove finished tasks for good"},
    {"work", cmd_work, "run a command for each task of a queue"},
    {"queues", cmd_queues, "queues with their counts; 'queues pause|resume Q' (also 'queue')"},
    {"queue", cmd_queues, NULL},
    {"schedule", cmd_schedule,
     "recurring tasks: create, list, get, delete, pause, resume, trigger, "
     "preview, backfill"},
    {"definition", cmd_definition, "named task templates: create, list, get, delete, launch"},
};

static void usage(FILE *f) {
    fprintf(f, "usage: taskmill COMMAND [ARGS]\n\ncommands:\n");
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (commands[i].help) fprintf(f, "  %-10s %s\n", commands[i].name, commands[i].help);
    fprintf(f,
            "\n'taskmill COMMAND --help' describes each; 'taskmill --version' says which "
            "taskmill this is.\n");
}

/* The command's exit code, or CLI_EXIT_OUTPUT when what it wrote on stdout did not all get
 * there: a list cut short by a full disk must not look like a whole one. */
static int finish(const char *cmd, int rc) {
    int out = cli_output_close(cmd);
    return out > rc ? out : rc;
}

int main(int argc, char **argv) {
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
        strcmp(argv[1], "help") == 0) {
        usage(stdout);
        return finish(NULL, 0);
    }
    if (strcmp(argv[1], "--version") == 0 || strcmp(argv[1], "version") == 0) {
        printf("taskmill %s\n", TASKMILL_VERSION);
        return finish(NULL, 0);
    }
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (strcmp(argv[1], commands[i].name) == 0)
            return finish(argv[1], commands[i].run(argc - 1, argv + 1));
    fprintf(stderr, "taskmill: unknown command '%s'\n", argv[1]);
    usage(stderr);
    return 2;
}
