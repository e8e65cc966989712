/*
 * serve: `taskmill serve`, the server's command line.
 *
 * Flags override the environment (TASKMILL_LISTEN, TASKMILL_STORE), which
 * overrides the defaults. The main thread waits for SIGINT or SIGTERM and
 * then stops the server cleanly: parked requests are answered, the store
 * finishes its queue and checkpoints.
 */
#include <getopt.h>
#include <stddef.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../compat/views.h"
#include "../server/server.h"
#include "../server/v1_decode.h"
#include "cli.h"
#include "cli_client.h"

static void serve_usage(FILE *f) {
    fprintf(f,
            "usage: taskmill serve [--listen HOST:PORT] [--store URL] [--threads N]\n"
            "                      [--relaxed] [--reuse-port] [--max-body-bytes N] ...\n"
            "  --listen    address to listen on (TASKMILL_LISTEN; default 127.0.0.1:8080;\n"
            "              port 0 picks a free port)\n"
            "  --store     sqlite:PATH, or postgres://USER@HOST/DB (several servers may share\n"
            "              one PostgreSQL database: docs/operations.md) (TASKMILL_STORE;\n"
            "              default sqlite:./taskmill.db)\n"
            "  --reuse-port  let other taskmill servers on this machine listen on the same\n"
            "              port; the kernel spreads connections over them\n"
            "  --threads   HTTP threads (default 2)\n"
            "  --relaxed   acknowledge writes before they are fsynced (faster, not durable)\n"
            "\nsecurity (docs/security.md):\n"
            "  --tls-cert FILE, --tls-key FILE   serve HTTPS with this PEM certificate and key\n"
            "  --insecure-no-auth   allow a non-loopback --listen with no API token in the store\n"
            "\nlimits (default in brackets):\n"
            "  --max-body-bytes N       request body [1048576]\n"
            "  --max-header-bytes N     request line and headers, per connection [16384]\n"
            "  --max-json-depth N       nesting of a JSON body [32]\n"
            "  --max-string-bytes N     a string field of a task [65536]\n"
            "  --max-items N            items in one call [1000]\n"
            "  --max-messages N         messages in one call [100]\n"
            "  --max-batch N            tasks in one batch submit [1000]\n"
            "  --max-page N             tasks in one page of a list [1000]\n"
            "  --max-wait-seconds N     a long-poll or a waiting claim [60]\n"
            "  --max-connections N      open connections [10000]\n"
            "  --max-connections-per-address N  of those, from one address; 0 = none [1024]\n"
            "  --idle-timeout-seconds N  close a connection idle between requests [15]\n"
            "  --max-waiters N          requests parked in long-polls and claims [4096]\n"
            "  --max-waiters-per-token N  of those, from one token [256]\n"
            "  --max-rate N             requests per second per token, 0 = none [1000]\n"
            "  --max-streams N          open event streams (SSE), 0 = no cap [1024]\n"
            "  --max-webhooks N         webhooks per namespace [100]\n"
            "  --max-attributes N       keys of a task's attributes [1000]\n"
            "  --max-attributes-bytes N a task's attributes as JSON [262144]\n"
            "  --query-timeout-ms N     how long one list query may run [5000]\n"
            "  --finished-max-age-seconds N  delete finished tasks after this, 0 = keep [0]\n"
            "\nevents and webhooks (docs/events.md):\n"
            "  --events-max-age-seconds N  keep events this long, -1 = forever [604800]\n"
            "  --events-max-count N        keep at most this many events, -1 = no cap [1000000]\n"
            "  --events-buffer N           events kept in memory for streams [4096]\n"
            "  --events-buffer-bytes N     bytes of those events at most [67108864]\n"
            "  --events-task-max-bytes N   task JSON in one event; larger is reduced [65536]\n"
            "  --sse-keepalive-ms N        comment on an idle stream this often [15000]\n"
            "  --webhook-backoff-ms N      first retry delay, doubling up to 1 h [5000]\n"
            "  --webhook-max-attempts N    attempts per delivery [34]\n"
            "  --webhook-timeout-ms N      per attempt [10000]\n"
            "  --webhook-senders N         deliveries in flight, one per webhook at most [4]\n"
            "  --webhook-allow-private     let webhooks reach loopback and private addresses\n");
}

static int serve_int_flag(const char *name, const char *v, int64_t min, int64_t max, int64_t *out);

/* The events flags (2000 + index in the option table). */
static int serve_events_flag(struct events_config *ev, int which, const char *v) {
    static const struct {
        const char *name;
        int64_t min, max;
    } f[] = {
        {"events-max-age-seconds", -1, 100LL * 365 * 86400},
        {"events-max-count", -1, INT64_MAX / 2},
        {"events-buffer", 16, 10000000},
        {"sse-keepalive-ms", 100, 3600000},
        {"webhook-backoff-ms", 1, 86400000},
        {"webhook-max-attempts", 1, 1000},
        {"webhook-timeout-ms", 100, 600000},
        {NULL, 0, 0}, /* webhook-allow-private */
        {"events-buffer-bytes", 64 * 1024, INT64_C(1) << 40},
        {"events-task-max-bytes", 4096, 1 << 30},
        {"webhook-senders", 1, 64},
    };
    int64_t n = 0;
    if (f[which].name && serve_int_flag(f[which].name, v, f[which].min, f[which].max, &n))
        return -1;
    switch (which) {
    case 0:
        ev->max_age_ms = n < 0 ? -1 : (n ? n * 1000 : -1);
        break;
    case 1:
        ev->max_count = n < 0 ? -1 : (n ? n : -1);
        break;
    case 2:
        ev->buffer_events = (int)n;
        break;
    case 3:
        ev->keepalive_ms = (int)n;
        break;
    case 4:
        ev->webhook_backoff_ms = n;
        break;
    case 5:
        ev->webhook_max_attempts = (int)n;
        break;
    case 6:
        ev->webhook_timeout_ms = n;
        break;
    case 7:
        ev->webhook_allow_private = true;
        break;
    case 8:
        ev->buffer_bytes = n;
        break;
    case 10:
        ev->webhook_senders = (int)n;
        break;
    default:
        ev->task_max_bytes = n;
        break;
    }
    return 0;
}

static int serve_int_flag(const char *name, const char *v, int64_t min, int64_t max, int64_t *out) {
    if (v1_parse_int(v, min, max, out) == 0) return 0;
    fprintf(stderr, "taskmill serve: '--%s' must be an integer from %lld to %lld\n", name,
            (long long)min, (long long)max);
    return -1;
}

void serve_default_limits(struct limits *l) {
    l->body_max_bytes = 1024 * 1024;
    l->json_max_depth = 32;
    l->batch_max = 1000;
    l->page_max = 1000;
    l->wait_max_seconds = 60;
    l->string_max_bytes = 64 * 1024;
    l->items_max_per_call = 1000;
    l->messages_max_per_call = 100;
    l->header_max_bytes = 16 * 1024;
    l->connections_max = 10000;
    l->connections_per_address_max = 1024;
    l->idle_timeout_seconds = 15;
    l->waiters_max = 4096;
    l->waiters_per_token_max = 256;
    l->rate_per_token = 1000;
    l->streams_max = 1024;
    l->webhooks_max = 100;
    l->attributes_max_keys = 1000;
    l->attributes_max_bytes = 256 * 1024;
    l->query_timeout_ms = 5000;
}

/*
 * The --max-* flags: one row each, naming the field of struct limits it
 * sets, so the option list, the range check and the assignment cannot
 * drift apart. Defaults are in serve_default_limits; docs/security.md
 * lists them all.
 */
struct limit_flag {
    const char *name;
    int64_t min, max;
    size_t offset;
    bool is_size; /* a size_t field; otherwise an int */
};

#define LIMIT(flag, lo, hi, field)                       \
    {                                                    \
        flag, lo, hi, offsetof(struct limits, field),    \
            _Generic(((struct limits *)0)->field, size_t \
                     : true, default                     \
                     : false)                            \
    }
static const struct limit_flag limit_flags[] = {
    LIMIT("max-body-bytes", 1024, 1 << 30, body_max_bytes),
    LIMIT("max-wait-seconds", 1, 3600, wait_max_seconds),
    LIMIT("max-header-bytes", 4096, 1 << 20, header_max_bytes),
    LIMIT("max-json-depth", 2, 1000, json_max_depth),
    LIMIT("max-string-bytes", 64, 1 << 30, string_max_bytes),
    LIMIT("max-items", 1, 1000000, items_max_per_call),
    LIMIT("max-messages", 1, 1000000, messages_max_per_call),
    LIMIT("max-batch", 1, 100000, batch_max),
    LIMIT("max-page", 1, 100000, page_max),
    LIMIT("max-connections", 1, 1000000, connections_max),
    LIMIT("max-connections-per-address", 0, 1000000, connections_per_address_max),
    LIMIT("idle-timeout-seconds", 1, 3600, idle_timeout_seconds),
    LIMIT("max-waiters", 0, 1000000, waiters_max),
    LIMIT("max-waiters-per-token", 0, 1000000, waiters_per_token_max),
    LIMIT("max-rate", 0, 1000000, rate_per_token),
    LIMIT("max-streams", 0, 1000000, streams_max),
    LIMIT("max-webhooks", 1, 100000, webhooks_max),
    LIMIT("max-attributes", 1, 1000000, attributes_max_keys),
    LIMIT("max-attributes-bytes", 1024, 1 << 30, attributes_max_bytes),
    LIMIT("query-timeout-ms", 1, 3600000, query_timeout_ms),
    LIMIT("finished-max-age-seconds", 0, 3650 * 86400, finished_max_age_seconds),
};
#undef LIMIT
#define NLIMIT_FLAGS (sizeof limit_flags / sizeof limit_flags[0])
#define LIMIT_OPT    1000 /* getopt value of limit_flags[0] */

static int serve_limit_flag(struct limits *l, size_t which, const char *v) {
    const struct limit_flag *f = &limit_flags[which];
    int64_t n;
    if (serve_int_flag(f->name, v, f->min, f->max, &n)) return -1;
    char *field = (char *)l + f->offset;
    if (f->is_size)
        *(size_t *)field = (size_t)n;
    else
        *(int *)field = (int)n;
    return 0;
}

/* The store URL without a password (postgres://user:secret@host -> user:***@host). */
static void serve_redact_url(const char *url, char *out, size_t n) {
    const char *scheme_end = strstr(url, "://");
    const char *at = scheme_end ? strchr(scheme_end + 3, '@') : NULL;
    const char *colon = at ? memchr(scheme_end + 3, ':', (size_t)(at - scheme_end - 3)) : NULL;
    if (!colon) {
        snprintf(out, n, "%s", url);
        return;
    }
    snprintf(out, n, "%.*s:***%s", (int)(colon - url), url, at);
}

int cmd_serve(int argc, char **argv) {
    struct server_config cfg = {0};
    cfg.listen = getenv("TASKMILL_LISTEN") ? getenv("TASKMILL_LISTEN") : "127.0.0.1:8080";
    cfg.store_url = getenv("TASKMILL_STORE") ? getenv("TASKMILL_STORE") : "sqlite:./taskmill.db";
    cfg.threads = 2;
    serve_default_limits(&cfg.limits);

    static const struct option fixed_opts[] = {
        {"listen", required_argument, NULL, 'l'},
        {"store", required_argument, NULL, 's'},
        {"threads", required_argument, NULL, 't'},
        {"relaxed", no_argument, NULL, 'r'},
        {"reuse-port", no_argument, NULL, 'R'},
        {"tls-cert", required_argument, NULL, 'C'},
        {"tls-key", required_argument, NULL, 'K'},
        {"insecure-no-auth", no_argument, NULL, 'I'},
        {"events-max-age-seconds", required_argument, NULL, 2000},
        {"events-max-count", required_argument, NULL, 2001},
        {"events-buffer", required_argument, NULL, 2002},
        {"sse-keepalive-ms", required_argument, NULL, 2003},
        {"webhook-backoff-ms", required_argument, NULL, 2004},
        {"webhook-max-attempts", required_argument, NULL, 2005},
        {"webhook-timeout-ms", required_argument, NULL, 2006},
        {"webhook-allow-private", no_argument, NULL, 2007},
        {"events-buffer-bytes", required_argument, NULL, 2008},
        {"events-task-max-bytes", required_argument, NULL, 2009},
        {"webhook-senders", required_argument, NULL, 2010},
        {"help", no_argument, NULL, 'h'},
    };
    /* The fixed options, then one per limit flag, then the end. */
    struct option opts[sizeof fixed_opts / sizeof fixed_opts[0] + NLIMIT_FLAGS + 1];
    size_t nopts = 0;
    for (size_t i = 0; i < sizeof fixed_opts / sizeof fixed_opts[0]; i++)
        opts[nopts++] = fixed_opts[i];
    for (size_t i = 0; i < NLIMIT_FLAGS; i++)
        opts[nopts++] =
            (struct option){limit_flags[i].name, required_argument, NULL, LIMIT_OPT + (int)i};
    opts[nopts] = (struct option){NULL, 0, NULL, 0};
    int c;
    int64_t v;
    optind = 1;
    while ((c = cli_getopt("serve", argc, argv, "", opts)) != -1) {
        switch (c) {
        case 'l':
            cfg.listen = optarg;
            break;
        case 's':
            cfg.store_url = optarg;
            break;
        case 't':
            if (serve_int_flag("threads", optarg, 1, 64, &v)) return 2;
            cfg.threads = (int)v;
            break;
        case 'r':
            cfg.relaxed = true;
            break;
        case 'R':
            cfg.reuse_port = true;
            break;
        case 'C':
            cfg.tls_cert_path = optarg;
            break;
        case 'K':
            cfg.tls_key_path = optarg;
            break;
        case 'I':
            cfg.insecure_no_auth = true;
            break;
        case 2000:
        case 2001:
        case 2002:
        case 2003:
        case 2004:
        case 2005:
        case 2006:
        case 2007:
        case 2008:
        case 2009:
        case 2010:
            if (serve_events_flag(&cfg.events, c - 2000, optarg)) return 2;
            break;
        case 'h':
            serve_usage(stdout);
            return 0;
        default:
            if (c >= LIMIT_OPT && c < LIMIT_OPT + (int)NLIMIT_FLAGS) {
                if (serve_limit_flag(&cfg.limits, (size_t)(c - LIMIT_OPT), optarg)) return 2;
                break;
            }
            serve_usage(stderr);
            return 2;
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

    /* The one place the server and the compatibility views meet. */
    cfg.views = compat_views;
    cfg.events.webhook_body = livepeer_webhook_body;
    struct server *srv = NULL;
    if (server_start(&cfg, &srv)) return 1;
    char shown[512];
    serve_redact_url(cfg.store_url, shown, sizeof shown);
    fprintf(stderr, "taskmill: store %s%s\n", shown,
            cfg.relaxed ? " (relaxed: writes acknowledged before fsync)" : "");
    int sig = 0;
    sigwait(&set, &sig);
    fprintf(stderr, "taskmill: %s, stopping\n", sig == SIGINT ? "interrupted" : "terminated");
    server_stop(srv);
    return 0;
}
