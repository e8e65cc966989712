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
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../compat/views.h"
#include "../server/server.h"
#include "../server/v1_decode.h"
#include "../store/store.h"
#include "cli.h"
#include "cli_client.h"

/*
 * Every flag of `serve`: one row each, naming the field of struct
 * server_config it sets, its range, its default and its help line, so the
 * option list, the range check, the assignment, the default and the help
 * cannot drift apart. serve sets each default before it reads the flags,
 * but an events flag's: that one is the server's own (it applies it for
 * 0 in the config) and the help shows it. docs/security.md and
 * docs/events.md list the flags.
 */
enum serve_flag_kind {
    SF_STR,             /* const char *: the argument itself */
    SF_TRUE,            /* bool: no argument, sets true */
    SF_INT,             /* an integer in [min, max], into an int, */
    SF_SIZE,            /* a size_t */
    SF_INT64,           /* or an int64_t */
    SF_KEEP_SECONDS_MS, /* int64_t ms from seconds; 0 or -1: keep forever (-1) */
    SF_KEEP_COUNT,      /* int64_t; 0 or -1: no cap (-1) */
};

enum serve_section { SS_GENERAL, SS_SECURITY, SS_LIMITS, SS_EVENTS };

struct serve_flag {
    enum serve_section section;
    const char *name, *arg; /* arg: what the help shows it takes; NULL: none */
    enum serve_flag_kind kind;
    size_t offset; /* in struct server_config */
    int64_t min, max;
    bool show_default; /* the help ends with " [def]" */
    int64_t def;
    const char *help; /* '\n' continues it on the next line */
};

#define FIELD_KIND(member) \
    _Generic(((struct server_config *)0)->member, const char *: SF_STR, bool: SF_TRUE, int    \
             : SF_INT, size_t: SF_SIZE, int64_t: SF_INT64)
/* A flag whose kind follows its field's type. */
#define FLAG(sec, flag, arg, member, lo, hi, help)                                                 \
    {                                                                                              \
        sec, flag, arg, FIELD_KIND(member), offsetof(struct server_config, member), lo, hi, false, \
            0, help                                                                                \
    }
/* An integer flag with its default: a limit's, set by serve; an event's, the server's. */
#define NUM(sec, flag, kind, member, lo, hi, def, help) \
    { sec, flag, "N", kind, offsetof(struct server_config, member), lo, hi, true, def, help }
#define LIMIT(flag, member, lo, hi, def, help) \
    NUM(SS_LIMITS, flag, FIELD_KIND(limits.member), limits.member, lo, hi, def, help)
#define EVENT(flag, member, lo, hi, def, help) \
    NUM(SS_EVENTS, flag, FIELD_KIND(events.member), events.member, lo, hi, def, help)

static const struct serve_flag serve_flags[] = {
    FLAG(SS_GENERAL, "listen", "HOST:PORT", listen, 0, 0,
         "address to listen on (TASKMILL_LISTEN;\ndefault 127.0.0.1:8080; port 0 picks a free "
         "port)"),
    FLAG(SS_GENERAL, "store", "URL", store_url, 0, 0,
         "sqlite:PATH, or postgres://USER@HOST/DB\n(several servers may share one PostgreSQL\n"
         "database: docs/operations.md) (TASKMILL_STORE;\ndefault sqlite:./taskmill.db)"),
    FLAG(SS_GENERAL, "reuse-port", NULL, reuse_port, 0, 0,
         "let other taskmill servers on this machine\nlisten on the same port; the kernel "
         "spreads\nconnections over them"),
    NUM(SS_GENERAL, "threads", SF_INT, threads, 1, 64, 2, "HTTP threads"),
    FLAG(SS_GENERAL, "no-fast-path", NULL, http_fast_off, 0, 0,
         "serve every request through libmicrohttpd,\nnot the hot ones through taskmill's own\n"
         "HTTP path (plain HTTP; docs/operations.md)"),
    FLAG(SS_GENERAL, "relaxed", NULL, relaxed, 0, 0,
         "acknowledge writes before they are fsynced\n(faster; a power loss may lose the\n"
         "last moments' writes: docs/storage.md)"),
    NUM(SS_GENERAL, "relaxed-flush-ms", SF_INT, relaxed_flush_ms, 0, 60000, 200,
        "SQLite, --relaxed: flush acknowledged writes\nthis often; 0 = when the system does"),
    FLAG(SS_GENERAL, "sqlite-exclusive", NULL, sqlite_exclusive, 0, 0,
         "SQLite: keep the database to this process:\nfewer system calls a request; no other\n"
         "process (sqlite3, taskmill token) can open\nit while the server runs"),
    NUM(SS_GENERAL, "read-cache-mb", SF_INT, read_cache_mb, 0, 1 << 20, 64,
        "SQLite: MiB of tasks kept, as last read, for\nthe next read of each; 0 = none"),
    FLAG(SS_SECURITY, "tls-cert", "FILE", tls_cert_path, 0, 0,
         "serve HTTPS with this PEM certificate"),
    FLAG(SS_SECURITY, "tls-key", "FILE", tls_key_path, 0, 0, "and this PEM private key"),
    FLAG(SS_SECURITY, "insecure-no-auth", NULL, insecure_no_auth, 0, 0,
         "allow a non-loopback --listen with no API\ntoken in the store"),
    LIMIT("max-body-bytes", body_max_bytes, 1024, 1 << 30, 1024 * 1024, "request body"),
    LIMIT(
        "max-public-body-bytes", public_body_max_bytes, 1024, INT64_C(1) << 40, 64 << 20,
        "bodies read before their credentials are\nchecked (SailPoint /oauth/token, Scene7\nSOAP), "
        "over every connection"),
    LIMIT("max-header-bytes", header_max_bytes, 4096, 1 << 20, 16 * 1024,
          "request line and headers, per connection"),
    LIMIT("max-json-depth", json_max_depth, 2, 1000, 32, "nesting of a JSON body"),
    LIMIT("max-string-bytes", string_max_bytes, 64, 1 << 30, 64 * 1024,
          "a worker's text: progress and item\nmessages, messages, a fail's error"),
    LIMIT("max-items", items_max_per_call, 1, 1000000, 1000, "items in one call"),
    LIMIT("max-messages", messages_max_per_call, 1, 1000000, 100, "messages in one call"),
    LIMIT("max-batch", batch_max, 1, 100000, 1000, "tasks in one batch submit"),
    LIMIT("max-page", page_max, 1, 100000, 1000, "tasks in one page of a list"),
    LIMIT("max-wait-seconds", wait_max_seconds, 1, 3600, 60, "a long-poll or a waiting claim"),
    LIMIT("max-connections", connections_max, 1, 1000000, 10000, "open connections"),
    LIMIT("max-connections-per-address", connections_per_address_max, 0, 1000000, 1024,
          "of those, from one address; 0 = none"),
    LIMIT("idle-timeout-seconds", idle_timeout_seconds, 1, 3600, 15,
          "close a connection idle between requests"),
    LIMIT("head-timeout-seconds", head_timeout_seconds, 1, 3600, 30,
          "a request's head must be in this long\nafter its connection opened or the last\nreply "
          "(at least the idle timeout)"),
    LIMIT("body-timeout-seconds", body_timeout_seconds, 1, 3600, 30,
          "a request's body must be in this long\nafter its head, and a second more for\n"
          "every --body-min-rate bytes of it that came"),
    LIMIT("body-min-rate", body_min_rate, 1, 1 << 30, 4096,
          "bytes a second: a body coming at least\nthis fast is never cut"),
    LIMIT("max-waiters", waiters_max, 0, 1000000, 4096,
          "requests parked in long-polls and claims,\n0 = no cap"),
    LIMIT("max-waiters-per-token", waiters_per_token_max, 0, 1000000, 256,
          "of those, from one token; 0 = no cap"),
    LIMIT("max-rate", rate_per_token, 0, 1000000, 1000, "requests per second per token, 0 = none"),
    LIMIT("max-streams", streams_max, 0, 1000000, 1024, "open event streams (SSE), 0 = no cap"),
    LIMIT("max-streams-per-token", streams_per_token_max, 0, 1000000, 256,
          "of those, of one token, 0 = no cap"),
    LIMIT("max-unsent-bytes", unsent_max_bytes, 0, INT64_C(1) << 40, 512 << 20,
          "bytes of read replies not yet taken by\ntheir clients, over every connection;\n"
          "0 = no cap"),
    LIMIT("max-unsent-bytes-per-token", unsent_per_token_max_bytes, 0, INT64_C(1) << 40, 64 << 20,
          "of those, of one token; 0 = no cap"),
    LIMIT("max-webhooks", webhooks_max, 1, 100000, 100, "webhooks per namespace"),
    LIMIT("max-attributes", attributes_max_keys, 1, 1000000, 1000, "keys of a task's attributes"),
    LIMIT("max-attributes-bytes", attributes_max_bytes, 1024, 1 << 30, 256 * 1024,
          "a task's attributes as JSON"),
    LIMIT("query-timeout-ms", query_timeout_ms, 1, 3600000, 5000,
          "how long one list query may run"),
    LIMIT("finished-max-age-seconds", finished_max_age_seconds, 0, 3650 * 86400, 0,
          "delete finished tasks after this, 0 = keep (a queue's retention overrides it)"),
    NUM(SS_EVENTS, "events-max-age-seconds", SF_KEEP_SECONDS_MS, events.max_age_ms, -1,
        100LL * 365 * 86400, 7 * 86400, "keep events this long, -1 = forever"),
    NUM(SS_EVENTS, "events-max-count", SF_KEEP_COUNT, events.max_count, -1, INT64_MAX / 2, 1000000,
        "keep this many events (SQLite: up to a 64th more), -1 = no cap"),
    EVENT("events-buffer", buffer_events, 16, 10000000, 4096, "events kept in memory for streams"),
    EVENT("events-buffer-bytes", buffer_bytes, 64 * 1024, INT64_C(1) << 40, 64 << 20,
          "bytes of those events at most"),
    EVENT("events-task-max-bytes", task_max_bytes, 4096, 1 << 30, 64 * 1024,
          "task JSON in one event; larger is reduced"),
    EVENT("sse-keepalive-ms", keepalive_ms, 100, 3600000, 15000,
          "comment on an idle stream this often"),
    /* At most the 1 h that the doubling stops at: a first delay above it was cut to it. */
    EVENT("webhook-backoff-ms", webhook_backoff_ms, 1, 3600000, 5000,
          "first retry delay, doubling up to 1 h"),
    EVENT("webhook-max-attempts", webhook_max_attempts, 1, 1000, 34, "attempts per delivery"),
    EVENT("webhook-timeout-ms", webhook_timeout_ms, 100, 600000, 10000, "per attempt"),
    EVENT("webhook-senders", webhook_senders, 1, 64, 4,
          "deliveries in flight, one per webhook at most"),
    FLAG(SS_EVENTS, "webhook-allow-private", NULL, events.webhook_allow_private, 0, 0,
         "let webhooks reach loopback and private\naddresses"),
};
#undef EVENT
#undef LIMIT
#undef NUM
#undef FLAG
#undef FIELD_KIND
#define NSERVE_FLAGS   (sizeof serve_flags / sizeof serve_flags[0])
#define SERVE_FLAG_OPT 1000 /* getopt value of serve_flags[0] */
#define SERVE_HELP_COL 30   /* where the help lines' text starts */

static void serve_usage(FILE *f) {
    static const char *const heads[] = {
        [SS_GENERAL] =
            "usage: taskmill serve [--listen HOST:PORT] [--store URL] [--threads N]\n"
            "                      [--relaxed] [--reuse-port] [--max-body-bytes N] ...\n",
        [SS_SECURITY] = "\nsecurity (docs/security.md):\n",
        [SS_LIMITS] = "\nlimits (default in brackets):\n",
        [SS_EVENTS] = "\nevents and webhooks (docs/events.md):\n",
    };
    for (size_t i = 0; i < NSERVE_FLAGS; i++) {
        const struct serve_flag *fl = &serve_flags[i];
        if (i == 0 || fl->section != serve_flags[i - 1].section) fputs(heads[fl->section], f);
        int n = fprintf(f, "  --%s%s%s", fl->name, fl->arg ? " " : "", fl->arg ? fl->arg : "");
        /* Each line of the help at the column: the first after the flag (two
         * spaces at least), the others under it; the default ends the last. */
        for (const char *h = fl->help; *h; n = 0) {
            size_t len = strcspn(h, "\n");
            fprintf(f, "%*s%.*s", n < SERVE_HELP_COL - 2 ? SERVE_HELP_COL - n : 2, "", (int)len, h);
            h += len + (h[len] == '\n');
            if (!*h && fl->show_default) fprintf(f, " [%lld]", (long long)fl->def);
            fputc('\n', f);
        }
    }
}

static int serve_int_flag(const char *name, const char *v, int64_t min, int64_t max, int64_t *out) {
    if (v1_parse_int(v, min, max, out) == 0) return 0;
    fprintf(stderr, "taskmill serve: '--%s' must be an integer from %lld to %lld\n", name,
            (long long)min, (long long)max);
    return -1;
}

/* Stores n (or the argument v) in the flag's field of cfg. */
static void serve_flag_store(struct server_config *cfg, const struct serve_flag *fl, const char *v,
                             int64_t n) {
    char *field = (char *)cfg + fl->offset;
    switch (fl->kind) {
    case SF_STR:
        *(const char **)field = v;
        break;
    case SF_TRUE:
        *(bool *)field = true;
        break;
    case SF_INT:
        *(int *)field = (int)n;
        break;
    case SF_SIZE:
        *(size_t *)field = (size_t)n;
        break;
    case SF_INT64:
        *(int64_t *)field = n;
        break;
    case SF_KEEP_SECONDS_MS:
        *(int64_t *)field = n > 0 ? n * 1000 : -1;
        break;
    case SF_KEEP_COUNT:
        *(int64_t *)field = n > 0 ? n : -1;
        break;
    }
}

/* Sets the flag from its argument v; -1 after a message when v is out of range. */
static int serve_flag_set(struct server_config *cfg, const struct serve_flag *fl, const char *v) {
    int64_t n = 0;
    if (fl->kind != SF_STR && fl->kind != SF_TRUE &&
        serve_int_flag(fl->name, v, fl->min, fl->max, &n))
        return -1;
    serve_flag_store(cfg, fl, v, n);
    return 0;
}

/* The defaults serve sets: every flag's but the events ones (the server's own). */
static void serve_flags_default(struct server_config *cfg) {
    for (size_t i = 0; i < NSERVE_FLAGS; i++)
        if (serve_flags[i].show_default && serve_flags[i].section != SS_EVENTS)
            serve_flag_store(cfg, &serve_flags[i], NULL, serve_flags[i].def);
}

void serve_default_limits(struct limits *l) {
    struct server_config cfg = {0};
    serve_flags_default(&cfg);
    *l = cfg.limits;
}

int cmd_serve(int argc, char **argv) {
    struct server_config cfg = {0};
    cfg.listen = getenv("TASKMILL_LISTEN") ? getenv("TASKMILL_LISTEN") : "127.0.0.1:8080";
    cfg.store_url = getenv("TASKMILL_STORE") ? getenv("TASKMILL_STORE") : "sqlite:./taskmill.db";
    serve_flags_default(&cfg);

    /* One option per flag, then --help, then the end. */
    struct option opts[NSERVE_FLAGS + 2];
    for (size_t i = 0; i < NSERVE_FLAGS; i++)
        opts[i] = (struct option){serve_flags[i].name,
                                  serve_flags[i].kind == SF_TRUE ? no_argument : required_argument,
                                  NULL, SERVE_FLAG_OPT + (int)i};
    opts[NSERVE_FLAGS] = (struct option){"help", no_argument, NULL, 'h'};
    opts[NSERVE_FLAGS + 1] = (struct option){NULL, 0, NULL, 0};
    int c;
    optind = 1;
    while ((c = cli_getopt("serve", argc, argv, "", opts)) != -1) {
        if (c == 'h') {
            serve_usage(stdout);
            return 0;
        }
        if (c < SERVE_FLAG_OPT || c >= SERVE_FLAG_OPT + (int)NSERVE_FLAGS) {
            serve_usage(stderr);
            return 2;
        }
        if (serve_flag_set(&cfg, &serve_flags[c - SERVE_FLAG_OPT], optarg)) return 2;
    }
    if (optind < argc) {
        fprintf(stderr, "taskmill serve: unexpected argument '%s'\n", argv[optind]);
        return 2;
    }
    if (cfg.sqlite_exclusive && strncmp(cfg.store_url, "sqlite:", 7) != 0) {
        fprintf(stderr, "taskmill serve: '--sqlite-exclusive' needs a sqlite: store, not '%.*s'\n",
                (int)strcspn(cfg.store_url, ":"), cfg.store_url);
        return 2;
    }

    /* Block the stop signals in every thread; this one waits for them. */
    sigset_t set;
    cli_block_stop_signals(&set);

    /* The one place the server and the compatibility views meet. */
    cfg.views = compat_views;
    cfg.events.webhook_body = livepeer_webhook_body;
    char shown[512];
    store_url_redact(cfg.store_url, shown, sizeof shown);
    cfg.store_shown = shown;
    struct server *srv = NULL;
    if (server_start(&cfg, &srv)) return 1;
    char relaxed[96] = "";
    if (cfg.relaxed && cfg.relaxed_flush_ms > 0 && strncmp(cfg.store_url, "sqlite:", 7) == 0)
        snprintf(relaxed, sizeof relaxed,
                 " (relaxed: writes acknowledged before fsync, flushed within %d ms)",
                 cfg.relaxed_flush_ms);
    else if (cfg.relaxed)
        snprintf(relaxed, sizeof relaxed, " (relaxed: writes acknowledged before fsync)");
    fprintf(stderr, "taskmill: store %s%s%s\n", shown, relaxed,
            cfg.sqlite_exclusive ? " (exclusive: no other process can open it)" : "");
    int sig = 0;
    sigwait(&set, &sig);
    fprintf(stderr, "taskmill: %s, stopping\n", sig == SIGINT ? "interrupted" : "terminated");
    server_stop(srv);
    return 0;
}
