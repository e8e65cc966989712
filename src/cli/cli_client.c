/*
 * cli_client: see cli_client.h. The one place where a libtaskmill error
 * becomes the CLI's message and exit code, so every subcommand reports
 * failures the same way.
 */
#include "cli_client.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>

struct tm_client *cli_client_new(const char *server) {
    const char *url = server && *server ? server : getenv("TASKMILL_URL");
    if (!url || !*url) url = CLI_DEFAULT_URL;
    return tm_client_new(url, getenv("TASKMILL_TOKEN"));
}

int cli_exit_for(int code) {
    switch (code) {
    case TM_CLIENT_OK:
        return CLI_EXIT_OK;
    case TM_CLIENT_ENOTFOUND:
        return CLI_EXIT_NOT_FOUND;
    case TM_CLIENT_EINVALID:
    case TM_CLIENT_EAUTH:
    case TM_CLIENT_ECONFLICT:
    case TM_CLIENT_ELEASE:
    case TM_CLIENT_ETOOLARGE:
        return CLI_EXIT_REFUSED;
    default:
        return CLI_EXIT_UNAVAILABLE;
    }
}

int cli_client_error(const char *cmd, struct tm_client *c, const char *what) {
    const struct tm_client_error *e = tm_client_last_error(c);
    fprintf(stderr, "taskmill %s: %s%s%s\n", cmd, what ? what : "", what ? ": " : "",
            e->message[0] ? e->message : tm_strerror(e->code));
    return cli_exit_for(e->code);
}

void cli_print_json(const json_t *v) {
    json_dumpf(v, stdout, JSON_INDENT(2) | JSON_ENCODE_ANY | JSON_REAL_PRECISION(16));
    fputc('\n', stdout);
}

int cli_parse_id_args(int argc, char **argv, const char *usage, bool one_id, const char **server,
                      bool *json) {
    static const struct option opts[] = {
        {"server", required_argument, NULL, 's'},
        {"json", no_argument, NULL, 'j'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    *server = NULL;
    *json = false;
    int ch;
    optind = 1;
    while ((ch = getopt_long(argc, argv, "s:jh", opts, NULL)) != -1) {
        switch (ch) {
        case 's':
            *server = optarg;
            break;
        case 'j':
            *json = true;
            break;
        case 'h':
            fputs(usage, stdout);
            return CLI_EXIT_OK;
        default:
            fputs(usage, stderr);
            return CLI_EXIT_USAGE;
        }
    }
    if (one_id ? optind != argc - 1 : optind >= argc) {
        fputs(usage, stderr);
        return CLI_EXIT_USAGE;
    }
    return -1;
}
