/*
 * serve: `taskmill serve`, the server's command line.
 *
 * Flags override the environment (TASKMILL_LISTEN, TASKMILL_STORE), which
 * overrides the defaults. The main thread waits for SIGINT or SIGTERM and
 * then stops the server cleanly: parked requests are answered, the store
 * finishes its queue and checkpoints.
 */
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../server/http.h"
#include "../server/v1_decode.h"
#include "cli.h"

static void serve_usage(FILE *f)
{
    fprintf(f,
            "usage: taskmill serve [--listen HOST:PORT] [--store URL] [--threads N]\n"
            "                      [--relaxed] [--max-body-bytes N] [--max-wait-seconds N]\n"
            "  --listen    address to listen on (TASKMILL_LISTEN; default 127.0.0.1:8080;\n"
            "              port 0 picks a free port)\n"
            "  --store     sqlite:PATH (TASKMILL_STORE; default sqlite:./taskmill.db)\n"
            "  --threads   HTTP threads (default 2)\n"
            "  --relaxed   acknowledge writes before they are fsynced (faster, not durable)\n");
}

static int serve_int_flag(const char *name, const char *v, int64_t min, int64_t max, int64_t *out)
{
    if (v1_parse_int(v, min, max, out) == 0) return 0;
    fprintf(stderr, "taskmill serve: '--%s' must be an integer from %lld to %lld\n", name,
            (long long)min, (long long)max);
    return -1;
}

void serve_default_limits(struct limits *l)
{
    l->body_max_bytes = 1024 * 1024;
    l->json_max_depth = 32;
    l->batch_max = 1000;
    l->page_max = 1000;
    l->wait_max_seconds = 60;
    l->string_max_bytes = 64 * 1024;
    l->items_max_per_call = 1000;
    l->messages_max_per_call = 100;
}

int cmd_serve(int argc, char **argv)
{
    struct server_config cfg = {0};
    cfg.listen = getenv("TASKMILL_LISTEN") ? getenv("TASKMILL_LISTEN") : "127.0.0.1:8080";
    cfg.store_url = getenv("TASKMILL_STORE") ? getenv("TASKMILL_STORE") : "sqlite:./taskmill.db";
    cfg.threads = 2;
    serve_default_limits(&cfg.limits);

    static const struct option opts[] = {
        {"listen", required_argument, NULL, 'l'},
        {"store", required_argument, NULL, 's'},
        {"threads", required_argument, NULL, 't'},
        {"relaxed", no_argument, NULL, 'r'},
        {"max-body-bytes", required_argument, NULL, 'b'},
        {"max-wait-seconds", required_argument, NULL, 'w'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int c;
    int64_t v;
    optind = 1;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'l': cfg.listen = optarg; break;
        case 's': cfg.store_url = optarg; break;
        case 't':
            if (serve_int_flag("threads", optarg, 1, 64, &v)) return 2;
            cfg.threads = (int)v;
            break;
        case 'r': cfg.relaxed = true; break;
        case 'b':
            if (serve_int_flag("max-body-bytes", optarg, 1024, 1 << 30, &v)) return 2;
            cfg.limits.body_max_bytes = (size_t)v;
            break;
        case 'w':
            if (serve_int_flag("max-wait-seconds", optarg, 1, 3600, &v)) return 2;
            cfg.limits.wait_max_seconds = (int)v;
            break;
        case 'h': serve_usage(stdout); return 0;
        default: serve_usage(stderr); return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "taskmill serve: unexpected argument '%s'\n", argv[optind]);
        return 2;
    }

    /* Block the stop signals in every thread; this one waits for them. */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);

    struct server *srv = NULL;
    if (server_start(&cfg, &srv)) return 1;
    fprintf(stderr, "taskmill: store %s%s\n", cfg.store_url,
            cfg.relaxed ? " (relaxed: writes acknowledged before fsync)" : "");
    int sig = 0;
    sigwait(&set, &sig);
    fprintf(stderr, "taskmill: %s, stopping\n", sig == SIGINT ? "interrupted" : "terminated");
    server_stop(srv);
    return 0;
}
