/*
 * cmd_task: the client subcommands that act on tasks one request at a
 * time: `submit`, `get`, `list`, and the controls `cancel`, `retry`,
 * `pause` and `resume`.
 *
 * Each parses its flags, calls libtaskmill, and prints a short readable
 * form for people or, with --json, the server's JSON for scripts. Errors
 * go to stderr and become the exit codes of cli_client.h (docs/cli.md).
 * Single-threaded; every allocation is freed before the command returns.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/timeutil.h"
#include "../common/utf8.h"
#include "../server/v1_decode.h"
#include "cli.h"
#include "cli_client.h"

/* ---- submit ---- */

static void submit_usage(FILE *f) {
    fprintf(f,
            "usage: taskmill submit TYPE [--name NAME] [--description TEXT] [--queue Q]\n"
            "                       [--priority N] [--param KEY=VALUE | --param KEY:=JSON ...]\n"
            "                       [--params FILE] [--parent ID] [--max-retries N] [--at TIME]\n"
            "                       [--idempotency-key KEY] [--paused] [--wait] [--json]\n"
            "                       [--server URL]\n"
            "  Prints the new task's id (or the task as JSON with --json).\n"
            "  --param K=V     a string parameter; K:=JSON takes a JSON value (n:=3)\n"
            "  --params FILE   a JSON object of parameters ('-' reads standard input)\n"
            "  --at TIME       run no earlier than TIME: RFC 3339, or +30s, +5m, +2h, +1d\n"
            "  --wait          then watch the task until it ends (exit code as `watch`)\n");
}

/* Parses "-" or a path into a JSON object; a message names it as typed, '--params -'. */
static int submit_load_params(const char *path, json_t **out) {
    json_error_t err;
    json_t *v = strcmp(path, "-") == 0 ? json_loadf(stdin, JSON_REJECT_DUPLICATES, &err)
                                       : json_load_file(path, JSON_REJECT_DUPLICATES, &err);
    if (!v) {
        if (err.line < 1) /* not read at all: a file that is missing or unreadable */
            fprintf(stderr, "taskmill submit: '--params %s': %s\n", path, err.text);
        else
            fprintf(stderr, "taskmill submit: '--params %s' is not JSON: %s (line %d)\n", path,
                    err.text, err.line);
        return -1;
    }
    if (!json_is_object(v)) {
        fprintf(stderr, "taskmill submit: '--params %s' must hold a JSON object\n", path);
        json_decref(v);
        return -1;
    }
    *out = v;
    return 0;
}

int cli_param_add(const char *cmd, json_t *params, const char *arg) {
    const char *eq = strchr(arg, '=');
    if (!eq || eq == arg || (eq == arg + 1 && arg[0] == ':')) {
        fprintf(stderr, "taskmill %s: '--param %s' must be KEY=VALUE or KEY:=JSON\n", cmd, arg);
        return -1;
    }
    bool raw = eq[-1] == ':';
    size_t klen = (size_t)(eq - arg) - (raw ? 1 : 0);
    char key[256];
    if (klen >= sizeof key) {
        fprintf(stderr, "taskmill %s: '--param' key '%.32s...' is too long\n", cmd, arg);
        return -1;
    }
    memcpy(key, arg, klen);
    key[klen] = '\0';
    if (!utf8_valid(key, klen)) { /* jansson takes no such key: it would be left out */
        fprintf(stderr, "taskmill %s: '--param' key must be UTF-8\n", cmd);
        return -1;
    }
    json_t *v;
    if (raw) {
        json_error_t err;
        v = json_loads(eq + 1, JSON_DECODE_ANY, &err);
        if (!v) {
            fprintf(stderr, "taskmill %s: '--param %s' is not JSON: %s\n", cmd, arg, err.text);
            return -1;
        }
    } else {
        v = json_string(eq + 1);
        if (!v) {
            fprintf(stderr, "taskmill %s: '--param %s' is not UTF-8\n", cmd, arg);
            return -1;
        }
    }
    json_object_set_new(params, key, v);
    return 0;
}

/* An integer flag in [min, max]: decimal digits after an optional '-', as the server reads
 * numbers in a query (strtoll alone took a leading space and a '+'). */
static int parse_int_flag(const char *cmd, const char *flag, const char *v, long long min,
                          long long max, long long *out) {
    int64_t n;
    if (v1_parse_int(v, min, max, &n)) {
        fprintf(stderr, "taskmill %s: '--%s' must be an integer from %lld to %lld\n", cmd, flag,
                min, max);
        return -1;
    }
    *out = n;
    return 0;
}

/* The API fields of a submit, as the user typed them. */
static const struct cli_flag submit_flags[] = {
    {"type", "TYPE"},
    {"name", "--name"},
    {"description", "--description"},
    {"queue", "--queue"},
    {"priority", "--priority"},
    {"params", "--param"},
    {"parent_id", "--parent"},
    {"max_retries", "--max-retries"},
    {"scheduled_at", "--at"},
    {"paused", "--paused"},
    {NULL, NULL},
};

int cmd_submit(int argc, char **argv) {
    static const struct option opts[] = {
        {"server", required_argument, NULL, 's'},
        {"name", required_argument, NULL, 'n'},
        {"description", required_argument, NULL, 'd'},
        {"queue", required_argument, NULL, 'q'},
        {"priority", required_argument, NULL, 'P'},
        {"param", required_argument, NULL, 'p'},
        {"params", required_argument, NULL, 'F'},
        {"parent", required_argument, NULL, 'r'},
        {"max-retries", required_argument, NULL, 'm'},
        {"at", required_argument, NULL, 'a'},
        {"idempotency-key", required_argument, NULL, 'k'},
        {"paused", no_argument, NULL, 'z'},
        {"wait", no_argument, NULL, 'w'},
        {"json", no_argument, NULL, 'j'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *server = NULL, *key = NULL, *parent = NULL;
    bool wait = false, json = false;
    json_t *task = json_object(), *params = json_object(), *file_params = NULL;
    int rc = CLI_EXIT_USAGE, ch;
    long long n;
    char at[32];
    while ((ch = cli_getopt("submit", argc, argv, "s:n:d:q:P:p:F:r:m:a:k:zwjh", opts)) != -1) {
        switch (ch) {
        case 's':
            server = optarg;
            break;
        case 'n':
            if (cli_json_set_text("submit", task, "name", "--name", optarg)) goto out;
            break;
        case 'd':
            if (cli_json_set_text("submit", task, "description", "--description", optarg)) goto out;
            break;
        case 'q':
            if (cli_json_set_text("submit", task, "queue", "--queue", optarg)) goto out;
            break;
        case 'r':
            if (!cli_text_ok("submit", "--parent", optarg)) goto out;
            parent = optarg;
            break;
        case 'k':
            if (!cli_text_ok("submit", "--idempotency-key", optarg)) goto out;
            key = optarg;
            break;
        case 'z':
            json_object_set_new(task, "paused", json_true());
            break;
        case 'w':
            wait = true;
            break;
        case 'j':
            json = true;
            break;
        case 'P':
            if (parse_int_flag("submit", "priority", optarg, -1000000, 1000000, &n)) goto out;
            json_object_set_new(task, "priority", json_integer(n));
            break;
        case 'm':
            if (parse_int_flag("submit", "max-retries", optarg, 0, 1000, &n)) goto out;
            json_object_set_new(task, "max_retries", json_integer(n));
            break;
        case 'p':
            if (cli_param_add("submit", params, optarg)) goto out;
            break;
        case 'F':
            json_decref(file_params);
            file_params = NULL;
            if (submit_load_params(optarg, &file_params)) goto out;
            break;
        case 'a':
            if (cli_parse_time("submit", "--at", optarg, at)) goto out;
            json_object_set_new(task, "scheduled_at", json_string(at));
            break;
        case 'h':
            submit_usage(stdout);
            rc = CLI_EXIT_OK;
            goto out;
        default:
            submit_usage(stderr);
            goto out;
        }
    }
    if (optind != argc - 1) {
        submit_usage(stderr);
        goto out;
    }
    if (cli_json_set_text("submit", task, "type", "TYPE", argv[optind])) goto out;
    if (file_params) json_object_update(file_params, params);
    json_t *all = file_params ? file_params : params;
    if (json_object_size(all)) json_object_set(task, "params", all);

    struct tm_client *c = cli_client_new(server);
    if (parent) {
        char pid[TM_ID_MAX];
        if ((rc = cli_resolve_id("submit", c, parent, pid))) {
            tm_client_free(c);
            goto out;
        }
        json_object_set_new(task, "parent_id", json_string(pid));
    }
    json_t *out = NULL;
    if (tm_submit(c, task, key, &out)) {
        rc = cli_client_error_flags("submit", c, NULL, submit_flags, task);
        tm_client_free(c);
        goto out;
    }
    /* The id is all the command prints, and what --wait follows: a reply without one
     * (not taskmill's server, or a proxy's page) makes no sense. */
    const char *got = json_string_value(json_object_get(out, "id"));
    char *shown = got ? cli_printable_copy(got) : NULL; /* a C1 control passes the loop */
    bool id_ok = got && *got && strlen(got) < TM_ID_MAX && !shown;
    free(shown);
    for (const char *p = got; id_ok && *p; p++)
        id_ok = (unsigned char)*p > 0x20 && *p != 0x7f && *p != '/';
    if (!id_ok) {
        fprintf(stderr, "taskmill submit: the server's reply %s\n",
                got ? "has an 'id' that is not a task id" : "has no 'id'");
        json_decref(out);
        tm_client_free(c);
        rc = CLI_EXIT_UNAVAILABLE;
        goto out;
    }
    char id[TM_ID_MAX];
    snprintf(id, sizeof id, "%s", got);
    if (!wait) {
        if (json)
            cli_print_json(out);
        else
            printf("%s\n", id);
        rc = CLI_EXIT_OK;
    } else {
        if (!json) printf("%s\n", id);
        fflush(stdout);
        char *ids[1] = {id};
        rc = cli_watch_run(c, ids, 1, json);
    }
    json_decref(out);
    tm_client_free(c);
out:
    json_decref(task);
    json_decref(params);
    json_decref(file_params);
    return rc;
}

/* ---- get ---- */

static const char *str_or(const json_t *v, const char *key, const char *dflt) {
    const char *s = json_string_value(json_object_get(v, key));
    return s && *s ? s : dflt;
}

/* Prints "LABEL  JSON" for get (taking json, a dump: NULL prints nothing after the label).
 * The encoder escapes C0 controls but leaves DEL and the C1 controls (CSI among them) as
 * they are, so those become '?' as in task text. */
static void get_print_dump(const char *label, char *json) {
    char *clean = json ? cli_printable_copy(json) : NULL;
    printf("%-11s %s\n", label, clean ? clean : json ? json : "");
    free(clean);
    free(json);
}

/* Prints a task for people: one "field  value" line each, then messages and items. raw
 * is the task as read, t its copy with printable strings (params and result are printed
 * from raw as JSON, get_print_dump). */
static void get_print(const json_t *t, const json_t *raw) {
    const json_t *p = json_object_get(t, "progress");
    printf("id          %s\n", str_or(t, "id", "-"));
    printf("type        %s\n", str_or(t, "type", "-"));
    if (str_or(t, "name", NULL)) printf("name        %s\n", str_or(t, "name", ""));
    printf("queue       %s (priority %lld)\n", str_or(t, "queue", "-"),
           (long long)json_integer_value(json_object_get(t, "priority")));
    printf("phase       %s%s%s%s\n", str_or(t, "phase", "-"),
           str_or(t, "completion_status", NULL) ? " " : "", str_or(t, "completion_status", ""),
           json_is_true(json_object_get(t, "paused")) ? " (paused)" : "");
    json_int_t done = json_integer_value(json_object_get(p, "processed"));
    json_int_t doing = json_integer_value(json_object_get(p, "processing"));
    json_int_t todo = json_integer_value(json_object_get(p, "pending"));
    printf("progress    %lld%%", (long long)json_integer_value(json_object_get(p, "percent")));
    if (done + doing + todo > 0)
        printf("  %lld processed, %lld processing, %lld pending", (long long)done, (long long)doing,
               (long long)todo);
    if (str_or(p, "message", NULL)) printf("  %s", str_or(p, "message", ""));
    printf("\n");
    printf("attempt     %lld (retries %lld of %lld)\n",
           (long long)json_integer_value(json_object_get(t, "attempt")),
           (long long)json_integer_value(json_object_get(t, "retries")),
           (long long)json_integer_value(json_object_get(t, "max_retries")));
    const json_t *lease = json_object_get(t, "lease");
    if (json_is_object(lease))
        printf("worker      %s (lease until %s)\n", str_or(lease, "worker", "-"),
               str_or(lease, "expires_at", "-"));
    if (str_or(t, "parent_id", NULL)) printf("parent      %s\n", str_or(t, "parent_id", ""));
    printf("created     %s\n", str_or(t, "created_at", "-"));
    if (str_or(t, "scheduled_at", NULL)) printf("scheduled   %s\n", str_or(t, "scheduled_at", ""));
    if (str_or(t, "started_at", NULL)) printf("started     %s\n", str_or(t, "started_at", ""));
    if (str_or(t, "completed_at", NULL)) printf("completed   %s\n", str_or(t, "completed_at", ""));
    if (str_or(t, "error", NULL)) printf("error       %s\n", str_or(t, "error", ""));
    const json_t *params = json_object_get(raw, "params");
    if (json_is_object(params) && json_object_size(params)) {
        char *s = json_dumps(params, JSON_COMPACT | JSON_REAL_PRECISION(16));
        get_print_dump("params", s);
    }
    const json_t *result = json_object_get(raw, "result");
    if (result && !json_is_null(result)) {
        char *s = json_dumps(result, JSON_COMPACT | JSON_ENCODE_ANY | JSON_REAL_PRECISION(16));
        get_print_dump("result", s);
    }
    const json_t *msgs = json_object_get(t, "messages");
    size_t nmsg = json_array_size(msgs), i;
    if (nmsg) printf("messages    (%zu)\n", nmsg);
    for (i = nmsg > 10 ? nmsg - 10 : 0; i < nmsg; i++) {
        const json_t *m = json_array_get(msgs, i);
        printf("  %s %-5s %s\n", str_or(m, "at", ""), str_or(m, "level", ""),
               str_or(m, "text", ""));
    }
    const json_t *items = json_object_get(t, "items");
    size_t nitems = json_array_size(items);
    if (nitems) printf("items       (%zu)\n", nitems);
    for (i = 0; i < nitems && i < 20; i++) {
        const json_t *it = json_array_get(items, i);
        printf("  %-24s %3.0f%% %s\n", str_or(it, "name", ""),
               json_number_value(json_object_get(it, "progress")) * 100, str_or(it, "message", ""));
    }
    if (nitems > 20) printf("  ... %zu more\n", nitems - 20);
}

int cmd_get(int argc, char **argv) {
    const char *server;
    bool json;
    int stop = cli_parse_args("get", argc, argv,
                              "usage: taskmill get [--server URL] [--json] ID\n"
                              "  ID may be any unique prefix of at least 4 digits.\n",
                              CLI_OPERANDS_ONE, &server, &json);
    if (stop >= 0) return stop;
    struct tm_client *c = cli_client_new(server);
    json_t *t = NULL;
    char id[TM_ID_MAX];
    int rc = cli_resolve_id("get", c, argv[optind], id);
    if (rc) {
        /* said */
    } else if (tm_get(c, id, &t)) {
        rc = cli_client_error("get", c, NULL);
    } else if (json) {
        cli_print_json(t);
    } else {
        json_t *shown = json_deep_copy(t);
        cli_json_printable(shown);
        get_print(shown, t);
        json_decref(shown);
    }
    json_decref(t);
    tm_client_free(c);
    return rc;
}

/* ---- list ---- */

static void list_usage(FILE *f) {
    fprintf(
        f,
        "usage: taskmill list [--phase P[,P...]] [--type T] [--queue Q] [--parent ID]\n"
        "                     [--name-prefix S] [--created-after TIME] [--created-before TIME]\n"
        "                     [--updated-after TIME] [--updated-before TIME] [--limit N]\n"
        "                     [--cursor C] [--order asc|desc] [--all] [--json] [--server URL]\n"
        "  Newest first by default. Without --all, prints one page and, when there are\n"
        "  more, the command for the next on standard error. TIME is RFC 3339 or\n"
        "  relative to now: -1h (an hour ago), +30m, -2d.\n");
}

/*
 * What a task's STATE column says: its phase, "(paused)" when it is held,
 * and for a waiting task the time it waits for (scheduled_at: a time of
 * day when it is today, UTC, else the date too).
 */
void cli_task_state(const json_t *t, int64_t now_ms, char *out, size_t n) {
    const char *phase = str_or(t, "phase", "-");
    bool paused = json_is_true(json_object_get(t, "paused"));
    const char *at = str_or(t, "scheduled_at", NULL);
    int64_t at_ms = 0;
    if (strcmp(phase, "waiting") == 0 && at && time_parse_rfc3339(at, &at_ms) == 0 &&
        at_ms > now_ms) {
        char f[TIME_RFC3339_LEN + 1], today[TIME_RFC3339_LEN + 1];
        time_format_rfc3339(at_ms, f);
        time_format_rfc3339(now_ms, today);
        if (strncmp(f, today, 10) == 0)
            snprintf(out, n, "waiting %.8sZ%s", f + 11, paused ? " (paused)" : "");
        else
            snprintf(out, n, "waiting %.5s %.5sZ%s", f + 5, f + 11, paused ? " (paused)" : "");
        return;
    }
    snprintf(out, n, "%s%s", phase, paused ? " (paused)" : "");
}

static void list_print_row(const json_t *t, int64_t now_ms, int state_w) {
    const json_t *p = json_object_get(t, "progress");
    char pct[16], state[64];
    snprintf(pct, sizeof pct, "%lld%%",
             (long long)json_integer_value(json_object_get(p, "percent")));
    cli_task_state(t, now_ms, state, sizeof state);
    printf("%-32s  %-*s  %-16s  %-10s  %4s  %s\n", str_or(t, "id", "-"), state_w, state,
           str_or(t, "type", "-"), str_or(t, "queue", "-"), pct, str_or(t, "name", ""));
}

/* Appends " --flag VALUE" to the hint, VALUE quoted for a POSIX shell when it needs it. */
static void list_hint_add(char *hint, size_t n, const char *flag, const char *value) {
    if (!value) return;
    size_t len = strlen(hint);
    if (*value && strspn(value,
                         "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                         "0123456789_.,:+/=@%-") == strlen(value)) {
        snprintf(hint + len, n - len, " %s %s", flag, value);
        return;
    }
    len += (size_t)snprintf(hint + len, n - len, " %s '", flag);
    for (const char *v = value; *v && len + 5 < n; v++) {
        if (*v == '\'')
            len += (size_t)snprintf(hint + len, n - len, "'\\''");
        else
            hint[len++] = *v;
    }
    snprintf(hint + (len < n ? len : n - 1), n - (len < n ? len : n - 1), "'");
}

/* The API fields of a list, as the user typed them. */
static const struct cli_flag list_flags[] = {
    {"phase", "--phase"},
    {"type", "--type"},
    {"queue", "--queue"},
    {"parent_id", "--parent"},
    {"name_prefix", "--name-prefix"},
    {"created_after", "--created-after"},
    {"created_before", "--created-before"},
    {"updated_after", "--updated-after"},
    {"updated_before", "--updated-before"},
    {"limit", "--limit"},
    {"cursor", "--cursor"},
    {"order", "--order"},
    {NULL, NULL},
};

int cmd_list(int argc, char **argv) {
    static const struct option opts[] = {
        {"server", required_argument, NULL, 's'},
        {"phase", required_argument, NULL, 'p'},
        {"type", required_argument, NULL, 't'},
        {"queue", required_argument, NULL, 'q'},
        {"parent", required_argument, NULL, 'r'},
        {"name-prefix", required_argument, NULL, 'n'},
        {"created-after", required_argument, NULL, 'A'},
        {"created-before", required_argument, NULL, 'B'},
        {"updated-after", required_argument, NULL, 'U'},
        {"updated-before", required_argument, NULL, 'V'},
        {"limit", required_argument, NULL, 'l'},
        {"cursor", required_argument, NULL, 'c'},
        {"order", required_argument, NULL, 'o'},
        {"all", no_argument, NULL, 'a'},
        {"json", no_argument, NULL, 'j'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    struct tm_list_query q = {0};
    const char *server = NULL, *parent = NULL;
    /* The times as typed (for the hint) and as sent. */
    const char *typed[4] = {NULL, NULL, NULL, NULL};
    static const char *const time_flags[4] = {"--created-after", "--created-before",
                                              "--updated-after", "--updated-before"};
    char times[4][32];
    bool json = false, all = false;
    long long n;
    int ch, ti;
    while ((ch = cli_getopt("list", argc, argv, "s:p:t:q:r:n:A:B:U:V:l:c:o:ajh", opts)) != -1) {
        switch (ch) {
        case 's':
            server = optarg;
            break;
        case 'p':
            q.phase = optarg;
            break;
        case 't':
            q.type = optarg;
            break;
        case 'q':
            q.queue = optarg;
            break;
        case 'r':
            parent = optarg;
            break;
        case 'n':
            q.name_prefix = optarg;
            break;
        case 'A':
        case 'B':
        case 'U':
        case 'V':
            ti = ch == 'A' ? 0 : ch == 'B' ? 1 : ch == 'U' ? 2 : 3;
            if (cli_parse_time("list", time_flags[ti], optarg, times[ti])) return CLI_EXIT_USAGE;
            typed[ti] = optarg;
            break;
        case 'c':
            q.cursor = optarg;
            break;
        case 'o':
            q.order = optarg;
            break;
        case 'a':
            all = true;
            break;
        case 'j':
            json = true;
            break;
        case 'l':
            if (parse_int_flag("list", "limit", optarg, 1, 1000, &n)) return CLI_EXIT_USAGE;
            q.limit = (int)n;
            break;
        case 'h':
            list_usage(stdout);
            return CLI_EXIT_OK;
        default:
            list_usage(stderr);
            return CLI_EXIT_USAGE;
        }
    }
    if (optind != argc) {
        fprintf(stderr, "taskmill list: unexpected argument '%s' (filters are flags)\n",
                argv[optind]);
        list_usage(stderr);
        return CLI_EXIT_USAGE;
    }
    /* Text filters are UTF-8 before anything is asked (the server would
     * refuse them too, as exit 4). */
    const char *const texts[][2] = {{"--phase", q.phase},
                                    {"--type", q.type},
                                    {"--queue", q.queue},
                                    {"--parent", parent},
                                    {"--name-prefix", q.name_prefix},
                                    {"--cursor", q.cursor},
                                    {"--order", q.order}};
    for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++)
        if (texts[i][1] && !cli_text_ok("list", texts[i][0], texts[i][1])) return CLI_EXIT_USAGE;
    if (typed[0]) q.created_after = times[0];
    if (typed[1]) q.created_before = times[1];
    if (typed[2]) q.updated_after = times[2];
    if (typed[3]) q.updated_before = times[3];
    struct tm_client *c = cli_client_new(server);
    char parent_id[TM_ID_MAX];
    if (parent) {
        int rc = cli_resolve_id("list", c, parent, parent_id);
        if (rc) {
            tm_client_free(c);
            return rc;
        }
        q.parent_id = parent_id;
    }
    json_t *collected = json_array(), *page = NULL;
    char cursor[TM_ID_MAX + 64] = "";
    int rc = CLI_EXIT_OK;
    bool header = false;
    int64_t now = time_now_ms();
    int state_w = 9;
    for (;;) {
        if (cursor[0]) q.cursor = cursor;
        if (tm_list(c, &q, &page)) {
            json_t *sent =
                json_pack("[sssssss]", q.phase ? q.phase : "", q.type ? q.type : "",
                          q.queue ? q.queue : "", q.name_prefix ? q.name_prefix : "",
                          q.cursor ? q.cursor : "", q.order ? q.order : "", parent ? parent : "");
            rc = cli_client_error_flags("list", c, NULL, list_flags, sent);
            json_decref(sent);
            break;
        }
        json_t *tasks = json_object_get(page, "tasks");
        const char *next = json_string_value(json_object_get(page, "next_cursor"));
        if (json) {
            json_array_extend(collected, tasks);
        } else {
            size_t i;
            json_t *t;
            if (!header && json_array_size(tasks)) {
                /* The STATE column is as wide as the first page needs. */
                json_array_foreach(tasks, i, t) {
                    char st[64];
                    cli_task_state(t, now, st, sizeof st);
                    if ((int)strlen(st) > state_w) state_w = (int)strlen(st);
                }
                printf("%-32s  %-*s  %-16s  %-10s  %4s  %s\n", "ID", state_w, "STATE", "TYPE",
                       "QUEUE", "PCT", "NAME");
                header = true;
            }
            json_array_foreach(tasks, i, t) {
                cli_json_printable(t);
                list_print_row(t, now, state_w);
            }
        }
        if (!next || !*next) {
            cursor[0] = '\0';
            break;
        }
        snprintf(cursor, sizeof cursor, "%s", next);
        if (!all) break;
        json_decref(page);
        page = NULL;
    }
    if (rc == CLI_EXIT_OK && json) {
        json_t *outv =
            json_pack("{s:O, s:s?}", "tasks", collected, "next_cursor", cursor[0] ? cursor : NULL);
        cli_print_json(outv);
        json_decref(outv);
    } else if (rc == CLI_EXIT_OK && cursor[0]) {
        /* The next page is the same query from the cursor: every filter goes with it. The
         * relative times are given as they were resolved, so the pages agree. */
        char hint[4096] = "taskmill list";
        list_hint_add(hint, sizeof hint, "--server", server);
        list_hint_add(hint, sizeof hint, "--phase", q.phase);
        list_hint_add(hint, sizeof hint, "--type", q.type);
        list_hint_add(hint, sizeof hint, "--queue", q.queue);
        list_hint_add(hint, sizeof hint, "--parent", q.parent_id);
        list_hint_add(hint, sizeof hint, "--name-prefix", q.name_prefix);
        for (int i = 0; i < 4; i++)
            list_hint_add(hint, sizeof hint, time_flags[i], typed[i] ? times[i] : NULL);
        if (q.limit) {
            char lim[16];
            snprintf(lim, sizeof lim, "%d", q.limit);
            list_hint_add(hint, sizeof hint, "--limit", lim);
        }
        list_hint_add(hint, sizeof hint, "--order", q.order);
        list_hint_add(hint, sizeof hint, "--cursor", cursor);
        /* The cursor is the server's text: a control character in it is shown as '?'. */
        char *clean = cli_printable_copy(hint);
        fprintf(stderr, "more: %s\n", clean ? clean : hint);
        free(clean);
    }
    json_decref(page);
    json_decref(collected);
    tm_client_free(c);
    return rc;
}

/* ---- cancel, retry, pause, resume ---- */

static int control_run(const char *cmd, int (*call)(struct tm_client *, const char *, json_t **),
                       int argc, char **argv) {
    char usage[240];
    bool gone = strcmp(cmd, "delete") == 0; /* nothing is left to print but the id */
    snprintf(usage, sizeof usage,
             "usage: taskmill %s [--server URL] [--json] ID...\n"
             "  Prints %s.\n"
             "  An ID may be any unique prefix of at least 4 digits.\n",
             cmd,
             gone ? "'ID deleted' for each task (with --json, {\"id\":ID,\"phase\":\"deleted\"})"
                  : "each task's id and phase afterwards (the task as JSON with --json)");
    const char *server;
    bool json;
    int stop = cli_parse_args(cmd, argc, argv, usage, CLI_OPERANDS_SOME, &server, &json);
    if (stop >= 0) return stop;
    struct tm_client *c = cli_client_new(server);
    int rc = CLI_EXIT_OK;
    for (int i = optind; i < argc; i++) {
        json_t *t = NULL;
        char id[TM_ID_MAX];
        int r = cli_resolve_id(cmd, c, argv[i], id);
        if (!r && call(c, id, &t)) r = cli_client_error(cmd, c, NULL);
        if (r) {
            if (r > rc) rc = r;
            continue;
        }
        if (json) {
            cli_print_json(t);
        } else {
            cli_json_printable(t); /* the server's text, printed as task text is */
            printf("%s %s%s\n", str_or(t, "id", argv[i]), str_or(t, "phase", "-"),
                   json_is_true(json_object_get(t, "paused")) ? " (paused)" : "");
        }
        json_decref(t);
    }
    tm_client_free(c);
    return rc;
}

int cmd_cancel(int argc, char **argv) {
    return control_run("cancel", tm_cancel, argc, argv);
}

int cmd_retry(int argc, char **argv) {
    return control_run("retry", tm_retry, argc, argv);
}

int cmd_pause(int argc, char **argv) {
    return control_run("pause", tm_pause, argc, argv);
}

int cmd_resume(int argc, char **argv) {
    return control_run("resume", tm_resume, argc, argv);
}

/* tm_delete in control_run's shape: the task is gone, so *out is just its id. */
static int delete_call(struct tm_client *c, const char *id, json_t **out) {
    int rc = tm_delete(c, id);
    if (!rc) *out = json_pack("{s:s, s:s}", "id", id, "phase", "deleted");
    return rc;
}

int cmd_delete(int argc, char **argv) {
    return control_run("delete", delete_call, argc, argv);
}
