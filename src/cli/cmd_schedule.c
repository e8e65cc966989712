/*
 * cmd_schedule: `taskmill schedule ...` and `taskmill definition ...`, the
 * CLI of /v1/schedules and /v1/definitions (docs/schedules.md, docs/cli.md).
 *
 * Each verb parses its flags into a request body, sends it with
 * tm_client_request, and prints a short form for people or, with --json,
 * the server's JSON. Single-threaded; everything is freed before return.
 */
#include <getopt.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/xalloc.h"
#include "../server/v1_decode.h"
#include "cli.h"
#include "cli_client.h"

static const char schedule_usage[] =
    "usage: taskmill schedule create NAME (--cron EXPR | --every SECONDS) [--timezone ZONE]\n"
    "                         (--definition NAME |\n"
    "                          --type TYPE [--queue Q] [--priority N] [--max-retries N]\n"
    "                          [--param K=V]...)\n"
    "                         [--overlap skip|buffer_one|allow_all|cancel_running]\n"
    "                         [--catchup SECONDS] [--jitter SECONDS] [--start TIME] [--end TIME]\n"
    "                         [--paused]\n"
    "       taskmill schedule list\n"
    "       taskmill schedule get|delete|trigger|preview NAME\n"
    "       taskmill schedule pause|resume NAME [--note TEXT]\n"
    "       taskmill schedule backfill NAME --from TIME --to TIME\n"
    "  Every form takes --server URL and --json. NAME may be the id.\n"
    "  create launches the definition, or the task that --type, --queue and these give:\n"
    "  --priority N       the task's priority, -1000000 to 1000000 (not with --definition,\n"
    "                     which gives it)\n"
    "  --max-retries N    the task's retries after a failure, 0 to 1000 (not with\n"
    "                     --definition)\n";

static const char definition_usage[] =
    "usage: taskmill definition create NAME --type TYPE [--queue Q] [--priority N]\n"
    "                           [--param K=V]... [--max-retries N] [--description TEXT]\n"
    "                           [--executor TEXT] [--timeout SECONDS]\n"
    "       taskmill definition list\n"
    "       taskmill definition get|delete NAME\n"
    "       taskmill definition launch NAME [--param K=V]...\n"
    "  Every form takes --server URL and --json. NAME may be the id.\n";

/* The flags of both commands; each verb takes the ones its verb_spec names. */
struct sched_args {
    const char *server, *cron, *every, *zone, *definition, *type, *queue, *overlap, *catchup;
    const char *jitter, *start, *end, *note, *from, *to, *priority, *max_retries, *description;
    const char *executor, *timeout;
    bool json, paused;
    json_t *params;
};

/* The flags of both commands that take a value, each kept as typed in its
 * field of struct sched_args (--server, --param and the switches are
 * parsed apart). */
static const struct cli_value_flag sched_value_flags[] = {
    {"cron", offsetof(struct sched_args, cron)},
    {"every", offsetof(struct sched_args, every)},
    {"timezone", offsetof(struct sched_args, zone)},
    {"definition", offsetof(struct sched_args, definition)},
    {"type", offsetof(struct sched_args, type)},
    {"queue", offsetof(struct sched_args, queue)},
    {"overlap", offsetof(struct sched_args, overlap)},
    {"catchup", offsetof(struct sched_args, catchup)},
    {"jitter", offsetof(struct sched_args, jitter)},
    {"start", offsetof(struct sched_args, start)},
    {"end", offsetof(struct sched_args, end)},
    {"note", offsetof(struct sched_args, note)},
    {"from", offsetof(struct sched_args, from)},
    {"to", offsetof(struct sched_args, to)},
    {"priority", offsetof(struct sched_args, priority)},
    {"max-retries", offsetof(struct sched_args, max_retries)},
    {"description", offsetof(struct sched_args, description)},
    {"executor", offsetof(struct sched_args, executor)},
    {"timeout", offsetof(struct sched_args, timeout)},
};
#define NSCHED_VALUE_FLAGS (sizeof sched_value_flags / sizeof sched_value_flags[0])

/*
 * Parses a verb's flags into a. `verb` ("schedule create") takes only the
 * flags of `takes` (space-separated, as cli_flag_taken reads them) and
 * --server, --json and --help: any other is refused, not ignored.
 */
static int sched_parse_args(int argc, char **argv, const char *verb, const char *takes,
                            const char *usage, struct sched_args *a) {
    /* One option per value flag, then the others, then the end. */
    static const struct option others[] = {
        {"server", required_argument, NULL, 's'}, {"param", required_argument, NULL, 'p'},
        {"paused", no_argument, NULL, 'P'},       {"json", no_argument, NULL, 'j'},
        {"help", no_argument, NULL, 'h'},         {NULL, 0, NULL, 0},
    };
    struct option opts[NSCHED_VALUE_FLAGS + sizeof others / sizeof others[0]];
    cli_options_build(opts, sched_value_flags, NSCHED_VALUE_FLAGS, others);
    memset(a, 0, sizeof *a);
    a->params = json_object();
    int ch;
    optind = 1;
    while ((ch = cli_getopt(verb, argc, argv, "s:jh", opts)) != -1) {
        switch (ch) {
        case 's':
            a->server = optarg;
            break;
        case 'j':
            a->json = true;
            break;
        case 'h':
            fputs(usage, stdout);
            return CLI_EXIT_OK;
        case 'p':
            if (!cli_flag_taken(verb, verb, takes, "param")) goto refused;
            if (cli_param_add(verb, a->params, optarg)) return CLI_EXIT_USAGE;
            break;
        case 'P':
            if (!cli_flag_taken(verb, verb, takes, "paused")) goto refused;
            a->paused = true;
            break;
        default:
            if (ch < CLI_VALUE_OPT || ch >= CLI_VALUE_OPT + (int)NSCHED_VALUE_FLAGS) goto refused;
            if (!cli_flag_taken(verb, verb, takes, sched_value_flags[ch - CLI_VALUE_OPT].name))
                goto refused;
            cli_value_flag_set(ch, sched_value_flags, NSCHED_VALUE_FLAGS, a);
            break;
        }
    }
    return -1;
refused:
    fputs(usage, stderr);
    return CLI_EXIT_USAGE;
}

/* The API fields of schedules and definitions, as the user typed them. */
static const struct cli_flag sched_flags[] = {
    {"cron", "--cron"},
    {"interval_seconds", "--every"},
    {"catchup_seconds", "--catchup"},
    {"jitter_seconds", "--jitter"},
    {"timezone", "--timezone"},
    {"overlap", "--overlap"},
    {"start_at", "--start"},
    {"end_at", "--end"},
    {"definition", "--definition"},
    {"from", "--from"},
    {"to", "--to"},
    {"note", "--note"},
    {"type", "--type"},
    {"queue", "--queue"},
    {"params", "--param"},
    {"task.type", "--type"}, /* a schedule's task template */
    {"task.queue", "--queue"},
    {"task.params", "--param"},
    {"task.priority", "--priority"},
    {"task.max_retries", "--max-retries"},
    {"priority", "--priority"},
    {"max_retries", "--max-retries"},
    {"description", "--description"},
    {"executor", "--executor"},
    {"timeout_seconds", "--timeout"},
    {NULL, NULL},
};

struct verb {
    const char *verb, *name;
    char cmd[64]; /* "schedule create": what its flags' messages say */
    bool list;
    struct sched_args a;
    /* The API fields of the flags this verb takes, for its error messages: a field it
     * sends no flag for ('definition' in a trigger's refusal) is the server's word. */
    struct cli_flag flags[sizeof sched_flags / sizeof sched_flags[0]];
};

/* Whether the space-separated words of takes hold w. */
static bool takes_word(const char *takes, const char *w) {
    size_t n = strlen(w);
    for (const char *p = takes; *p;) {
        size_t len = strcspn(p, " ");
        if (len == n && strncmp(p, w, n) == 0) return true;
        p += len + (p[len] == ' ');
    }
    return false;
}

/* Sets key to the integer in text (the server checks the range): decimal digits after an
 * optional '-'; strtoll alone took a leading space and a '+', and cut a number past its
 * range to the largest one. */
static int set_int(json_t *o, const char *cmd, const char *key, const char *text) {
    if (!text) return 0;
    int64_t v;
    if (v1_parse_int(text, INT64_MIN, INT64_MAX, &v)) {
        const struct cli_flag *f = sched_flags;
        while (f->field && strcmp(f->field, key) != 0)
            f++;
        fprintf(stderr, "taskmill %s: '%s' must be an integer, not '%s'\n", cmd,
                f->field ? f->flag : key, text);
        return -1;
    }
    json_object_set_new(o, key, json_integer(v));
    return 0;
}

/* As set_int, but the integer must be in [min, max] too: the range a task's field takes. */
static int set_int_in(json_t *o, const char *cmd, const char *key, const char *text, long long min,
                      long long max) {
    if (!text) return 0;
    int64_t v;
    if (v1_parse_int(text, min, max, &v)) {
        const struct cli_flag *f = sched_flags;
        while (f->field && strcmp(f->field, key) != 0)
            f++;
        fprintf(stderr, "taskmill %s: '%s' must be an integer from %lld to %lld, not '%s'\n", cmd,
                f->field ? f->flag : key, min, max, text);
        return -1;
    }
    json_object_set_new(o, key, json_integer(v));
    return 0;
}

/* Sets key to the text v, when given; -1 after a message naming its flag when v is not
 * UTF-8 (JSON cannot carry it, and a field left out would change what is made). */
static int set_str(json_t *o, const char *cmd, const char *key, const char *v) {
    if (!v) return 0;
    const struct cli_flag *f = sched_flags;
    while (f->field && strcmp(f->field, key) != 0)
        f++;
    return cli_json_set_text(cmd, o, key, f->field ? f->flag : "NAME", v);
}

/* "/v1/<coll>/<name><tail>" (malloc'ed) with the name percent-encoded, so that any name
 * the server takes (a space, a '?', a '%', '..') reaches its document. */
static char *doc_path(const char *coll, const char *name, const char *tail) {
    char *seg = cli_path_segment(name);
    size_t n = strlen(coll) + strlen(seg) + strlen(tail) + 8;
    char *path = xmalloc(n);
    snprintf(path, n, "/v1/%s/%s%s", coll, seg, tail);
    free(seg);
    return path;
}

/* The text at key of o for printing: dflt when it is missing or not a string. */
static const char *text(const json_t *o, const char *key, const char *dflt) {
    const char *s = json_string_value(json_object_get(o, key));
    return s ? s : dflt;
}

static void print_schedule_row(const json_t *s) {
    const char *cron = text(s, "cron", NULL);
    char when[64];
    if (cron)
        snprintf(when, sizeof when, "%s", cron);
    else
        snprintf(when, sizeof when, "every %llds",
                 (long long)json_integer_value(json_object_get(s, "interval_seconds")));
    printf("%-24s  %-20s  %-18s  %-6s  %-24s  %s\n", text(s, "name", "-"), when,
           text(s, "timezone", "UTC"),
           json_is_true(json_object_get(s, "paused")) ? "paused" : "active",
           text(s, "next_fire_at", "-"), text(s, "last_outcome", "-"));
}

/*
 * Sends the request and prints its reply: as JSON with `json`, else by
 * `print` (may be NULL: nothing), from a copy whose strings are made fit
 * for a terminal (a name or a message may hold control characters).
 */
static int run(const struct verb *v, struct tm_client *c, const char *method, const char *path,
               const json_t *body, bool json, void (*print)(const json_t *)) {
    json_t *out = NULL;
    if (tm_client_request(c, method, path, body, &out))
        return cli_client_error_flags(v->cmd, c, NULL, v->flags, body);
    if (json && out) {
        cli_print_json(out);
    } else if (print && out) {
        json_t *shown = json_deep_copy(out);
        cli_json_printable(shown);
        print(shown);
        json_decref(shown);
    }
    json_decref(out);
    return CLI_EXIT_OK;
}

static void print_schedule(const json_t *s) {
    const json_t *wrapped = json_object_get(s, "schedule");
    print_schedule_row(wrapped ? wrapped : s);
    /* A trigger's reply: the schedule and the task it launched. (A schedule's
     * own "task" is its inline template, which has no id.) */
    const char *launched = wrapped ? text(json_object_get(s, "task"), "id", NULL) : NULL;
    if (launched) printf("task %s\n", launched);
    if (json_object_get(s, "fired"))
        printf("fired %lld, already fired %lld\n",
               (long long)json_integer_value(json_object_get(s, "fired")),
               (long long)json_integer_value(json_object_get(s, "skipped")));
}

static void print_schedules(const json_t *o) {
    printf("%-24s  %-20s  %-18s  %-6s  %-24s  %s\n", "NAME", "WHEN", "TIMEZONE", "STATE",
           "NEXT FIRE (UTC)", "LAST OUTCOME");
    size_t i;
    json_t *s;
    json_array_foreach(json_object_get(o, "schedules"), i, s) print_schedule_row(s);
}

static void print_preview(const json_t *o) {
    size_t i;
    json_t *f;
    json_array_foreach(json_object_get(o, "fires"), i, f) {
        bool shifted = json_is_true(json_object_get(f, "shifted"));
        bool repeated = json_is_true(json_object_get(f, "repeated"));
        printf("%s  local %s%s\n", text(f, "at", "-"), text(f, "local", "-"),
               shifted    ? "  (moved by a daylight-saving change)"
               : repeated ? "  (the first of a repeated hour)"
                          : "");
    }
}

static void print_id(const json_t *o) {
    const char *name = text(o, "name", NULL);
    printf("%s%s%s\n", text(o, "id", "-"), name ? " " : "", name ? name : "");
}

static void print_definitions(const json_t *o) {
    printf("%-32s  %-24s  %-16s  %s\n", "ID", "NAME", "TYPE", "QUEUE");
    size_t i;
    json_t *d;
    json_array_foreach(json_object_get(o, "definitions"), i, d) {
        printf("%-32s  %-24s  %-16s  %s\n", text(d, "id", "-"), text(d, "name", "-"),
               text(d, "type", "-"), text(d, "queue", "default"));
    }
}

/* A verb of schedule or definition and the flags it takes (for cli_flag_taken), besides
 * --server, --json and --help: each is what docs/cli.md gives the verb. */
struct verb_spec {
    const char *verb, *takes;
};

static const struct verb_spec schedule_verbs[] = {
    {"create",
     "cron every timezone definition type queue priority max-retries param overlap "
     "catchup jitter start end paused"},
    {"list", ""},
    {"get", ""},
    {"delete", ""},
    {"trigger", ""},
    {"preview", ""},
    {"pause", "note"},
    {"resume", "note"},
    {"backfill", "from to"},
    {NULL, NULL},
};

static const struct verb_spec definition_verbs[] = {
    {"create", "type queue priority param max-retries description executor timeout"},
    {"list", ""},
    {"get", ""},
    {"delete", ""},
    {"launch", "param"},
    {NULL, NULL},
};

/* What both commands start with: the verb, the flags, one NAME (none for list). */

/* -1 to go on (v filled; v->a.params to be freed), or the exit code. */
static int verb_begin(int argc, char **argv, const char *cmd, const char *usage,
                      const struct verb_spec *verbs, struct verb *v) {
    if (argc < 2 || strcmp(argv[1], "--help") == 0) {
        fputs(usage, argc < 2 ? stderr : stdout);
        return argc < 2 ? CLI_EXIT_USAGE : CLI_EXIT_OK;
    }
    v->verb = argv[1];
    const struct verb_spec *spec = verbs;
    while (spec->verb && strcmp(spec->verb, v->verb) != 0)
        spec++;
    if (!spec->verb) {
        fprintf(stderr, "taskmill %s: unknown verb '%s'\n", cmd, v->verb);
        fputs(usage, stderr);
        return CLI_EXIT_USAGE;
    }
    snprintf(v->cmd, sizeof v->cmd, "%s %s", cmd, v->verb);
    size_t nf = 0;
    for (const struct cli_flag *f = sched_flags; f->field; f++)
        if (takes_word(spec->takes, f->flag + 2)) v->flags[nf++] = *f;
    v->flags[nf] = (struct cli_flag){NULL, NULL};
    int stop = sched_parse_args(argc - 1, argv + 1, v->cmd, spec->takes, usage, &v->a);
    int nargs = (argc - 1) - optind;
    v->name = nargs > 0 ? argv[1 + optind] : NULL;
    v->list = strcmp(v->verb, "list") == 0;
    if (stop < 0 && (v->list ? nargs != 0 : nargs != 1)) {
        fputs(usage, stderr);
        stop = CLI_EXIT_USAGE;
    }
    if (stop < 0 && v->name && !*v->name) {
        fprintf(stderr, "taskmill %s: 'NAME' must not be empty\n", v->cmd);
        stop = CLI_EXIT_USAGE;
    }
    if (stop < 0 && v->name && !cli_text_ok(v->cmd, "NAME", v->name)) stop = CLI_EXIT_USAGE;
    if (stop >= 0) json_decref(v->a.params);
    return stop;
}

/*
 * Runs `cmd` (schedule or definition): its verb, flags and NAME, then act
 * with a client and an empty request body, which are freed after it.
 * Returns act's exit code, or the usage error's.
 */
static int verb_run(int argc, char **argv, const char *cmd, const char *usage,
                    const struct verb_spec *verbs,
                    int (*act)(const struct verb *v, struct tm_client *c, json_t *body)) {
    struct verb v;
    int stop = verb_begin(argc, argv, cmd, usage, verbs, &v);
    if (stop >= 0) return stop;
    json_t *body = json_object();
    struct tm_client *c = cli_client_new(v.a.server);
    int rc = act(&v, c, body);
    json_decref(body);
    json_decref(v.a.params);
    tm_client_free(c);
    return rc;
}

/* Sends a verb's request to /v1/<coll>/<NAME><tail>. */
static int run_named(const struct verb *v, struct tm_client *c, const char *coll,
                     const char *method, const char *tail, const json_t *body, bool json,
                     void (*print)(const json_t *)) {
    char *path = doc_path(coll, v->name, tail);
    int rc = run(v, c, method, path, body, json, print);
    free(path);
    return rc;
}

static int schedule_act(const struct verb *v, struct tm_client *c, json_t *body) {
    const struct sched_args *a = &v->a;
    const char *verb = v->verb, *cmd = v->cmd;
    if (v->list) return run(v, c, "GET", "/v1/schedules", NULL, a->json, print_schedules);
    if (strcmp(verb, "create") == 0) {
        /* The API takes no task field beside a definition (400 "unknown field"): it gives
         * them. */
        const char *inline_only = a->type          ? "--type"
                                  : a->queue       ? "--queue"
                                  : a->priority    ? "--priority"
                                  : a->max_retries ? "--max-retries"
                                                   : NULL;
        if (a->definition && inline_only) {
            fprintf(stderr,
                    "taskmill %s: '%s' is not taken with '--definition': the definition gives "
                    "the task's type, queue, priority and retries\n",
                    cmd, inline_only);
            return CLI_EXIT_USAGE;
        }
        if (set_str(body, cmd, "name", v->name) || set_str(body, cmd, "cron", a->cron) ||
            set_int(body, cmd, "interval_seconds", a->every) ||
            set_int(body, cmd, "catchup_seconds", a->catchup) ||
            set_int(body, cmd, "jitter_seconds", a->jitter) ||
            set_str(body, cmd, "timezone", a->zone) || set_str(body, cmd, "overlap", a->overlap) ||
            set_str(body, cmd, "start_at", a->start) || set_str(body, cmd, "end_at", a->end))
            return CLI_EXIT_USAGE;
        if (a->paused) json_object_set_new(body, "paused", json_true());
        if (a->definition) {
            if (set_str(body, cmd, "definition", a->definition)) return CLI_EXIT_USAGE;
            if (json_object_size(a->params)) json_object_set(body, "params", a->params);
        } else {
            json_t *t = json_object();
            json_object_set_new(body, "task", t);
            /* The ranges a submit checks, before anything is sent: a bad value is exit 2,
             * as `submit --priority` says it, and no schedule is made. */
            if (set_str(t, cmd, "type", a->type) || set_str(t, cmd, "queue", a->queue) ||
                set_int_in(t, cmd, "priority", a->priority, -1000000, 1000000) ||
                set_int_in(t, cmd, "max_retries", a->max_retries, 0, 1000))
                return CLI_EXIT_USAGE;
            if (json_object_size(a->params)) json_object_set(t, "params", a->params);
        }
        return run(v, c, "POST", "/v1/schedules", body, a->json, print_schedule);
    }
    if (strcmp(verb, "get") == 0)
        return run_named(v, c, "schedules", "GET", "", NULL, a->json, print_schedule);
    if (strcmp(verb, "delete") == 0)
        return run_named(v, c, "schedules", "DELETE", "", NULL, a->json, print_schedule);
    if (strcmp(verb, "preview") == 0)
        return run_named(v, c, "schedules", "GET", "/preview", NULL, a->json, print_preview);
    if (strcmp(verb, "backfill") == 0) {
        if (set_str(body, cmd, "from", a->from) || set_str(body, cmd, "to", a->to))
            return CLI_EXIT_USAGE;
        return run_named(v, c, "schedules", "POST", "/backfill", body, a->json, print_schedule);
    }
    /* pause, resume, trigger */
    char tail[16];
    snprintf(tail, sizeof tail, "/%s", verb);
    if (set_str(body, cmd, "note", a->note)) return CLI_EXIT_USAGE;
    return run_named(v, c, "schedules", "POST", tail, body, a->json, print_schedule);
}

int cmd_schedule(int argc, char **argv) {
    return verb_run(argc, argv, "schedule", schedule_usage, schedule_verbs, schedule_act);
}

static int definition_act(const struct verb *v, struct tm_client *c, json_t *body) {
    const struct sched_args *a = &v->a;
    const char *verb = v->verb, *cmd = v->cmd;
    if (v->list) return run(v, c, "GET", "/v1/definitions", NULL, a->json, print_definitions);
    if (strcmp(verb, "create") == 0) {
        if (set_str(body, cmd, "name", v->name) || set_str(body, cmd, "type", a->type) ||
            set_str(body, cmd, "queue", a->queue) ||
            set_str(body, cmd, "description", a->description) ||
            set_str(body, cmd, "executor", a->executor) ||
            set_int(body, cmd, "priority", a->priority) ||
            set_int(body, cmd, "max_retries", a->max_retries) ||
            set_int(body, cmd, "timeout_seconds", a->timeout))
            return CLI_EXIT_USAGE;
        if (json_object_size(a->params)) json_object_set(body, "params", a->params);
        return run(v, c, "POST", "/v1/definitions", body, a->json, print_id);
    }
    if (strcmp(verb, "get") == 0 || strcmp(verb, "delete") == 0)
        return run_named(v, c, "definitions", verb[0] == 'g' ? "GET" : "DELETE", "", NULL, true,
                         NULL);
    /* launch */
    if (json_object_size(a->params)) json_object_set(body, "params", a->params);
    return run_named(v, c, "definitions", "POST", "/launch", body, a->json, print_id);
}

int cmd_definition(int argc, char **argv) {
    return verb_run(argc, argv, "definition", definition_usage, definition_verbs, definition_act);
}
