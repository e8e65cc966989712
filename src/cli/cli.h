/*
 * cli: the subcommands of the `taskmill` binary. Each returns the process
 * exit code. main.c dispatches on the first argument.
 */
#ifndef TASKMILL_CLI_H
#define TASKMILL_CLI_H

struct limits;

int cmd_serve(int argc, char **argv);
void serve_default_limits(struct limits *l);

#endif
