/*
 * cli: the subcommands of the `taskmill` binary. Each returns the process
 * exit code. main.c dispatches on the first argument.
 */
#ifndef TASKMILL_CLI_H
#define TASKMILL_CLI_H

struct limits;

int cmd_serve(int argc, char **argv);
int cmd_token(int argc, char **argv);
void serve_default_limits(struct limits *l);

/* The client subcommands (cmd_task.c, cmd_watch.c, cmd_work.c); docs/cli.md. */
int cmd_submit(int argc, char **argv);
int cmd_get(int argc, char **argv);
int cmd_list(int argc, char **argv);
int cmd_watch(int argc, char **argv);
int cmd_cancel(int argc, char **argv);
int cmd_retry(int argc, char **argv);
int cmd_pause(int argc, char **argv);
int cmd_resume(int argc, char **argv);
int cmd_delete(int argc, char **argv);
int cmd_work(int argc, char **argv);
int cmd_queue(int argc, char **argv);      /* cmd_queue.c */
int cmd_queues(int argc, char **argv);     /* cmd_queue.c: `queue list`, or `queue VERB` */
int cmd_schedule(int argc, char **argv);   /* cmd_schedule.c */
int cmd_definition(int argc, char **argv); /* cmd_schedule.c */

#endif
