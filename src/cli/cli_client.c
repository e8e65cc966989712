/*
 * cli_client: see cli_client.h. The one place where a libtaskmill error
 * becomes the CLI's message and exit code, so every subcommand reports
 * failures the same way.
 */
#include "cli_client.h"

#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/timeutil.h"
#include "../common/utf8.h"
#include "../common/xalloc.h"

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
    case TM_CLIENT_ERATE: /* not now, as for a 503: the same request may pass later */
    default:
        return CLI_EXIT_UNAVAILABLE;
    }
}

int cli_client_error(const char *cmd, struct tm_client *c, const char *what) {
    return cli_client_error_flags(cmd, c, what, NULL, NULL);
}

/* Whether s is one of the strings of j (its values, at any depth; not its keys). */
static bool cli_json_has_string(const json_t *j, const char *s) {
    const char *key;
    const json_t *v;
    size_t i;
    if (json_is_string(j)) return strcmp(json_string_value(j), s) == 0;
    if (json_is_object(j)) {
        json_object_foreach((json_t *)j, key, v) if (cli_json_has_string(v, s)) return true;
    } else if (json_is_array(j)) {
        json_array_foreach(j, i, v) if (cli_json_has_string(v, s)) return true;
    }
    return false;
}

/* The flag of `field` in flags, or NULL. */
static const char *cli_flag_of(const struct cli_flag *flags, const char *field, size_t n) {
    for (const struct cli_flag *f = flags; f && f->field; f++)
        if (strlen(f->field) == n && strncmp(f->field, field, n) == 0) return f->flag;
    return NULL;
}

int cli_client_error_flags(const char *cmd, struct tm_client *c, const char *what,
                           const struct cli_flag *flags, const json_t *sent) {
    const struct tm_client_error *e = tm_client_last_error(c);
    const char *msg = e->message[0] ? e->message : tm_strerror(e->code);
    char said[1024];
    if (flags) {
        /* Every quoted field of the message that has a flag becomes "'--flag'"
         * ("give exactly one of 'cron' and 'interval_seconds'" names two),
         * unless what is quoted is a value the request sent (a definition
         * named 'queue'). */
        size_t n = 0;
        for (const char *p = msg; *p && n + 1 < sizeof said;) {
            const char *end = *p == '\'' ? strchr(p + 1, '\'') : NULL;
            const char *flag = end ? cli_flag_of(flags, p + 1, (size_t)(end - p - 1)) : NULL;
            char quoted[256];
            if (flag && (size_t)(end - p - 1) < sizeof quoted) {
                snprintf(quoted, sizeof quoted, "%.*s", (int)(end - p - 1), p + 1);
                if (cli_json_has_string(sent, quoted)) flag = NULL;
            }
            if (flag) {
                n += (size_t)snprintf(said + n, sizeof said - n, "'%s'", flag);
                if (n >= sizeof said) n = sizeof said - 1;
                p = end + 1;
            } else {
                said[n++] = *p++;
            }
        }
        said[n] = '\0';
        /* The field the server named, when the message does not quote it. */
        const char *flag = e->field[0] ? cli_flag_of(flags, e->field, strlen(e->field)) : NULL;
        if (flag && !strstr(said, flag)) {
            char with[sizeof said + 80];
            snprintf(with, sizeof with, "'%s': %s", flag, said);
            snprintf(said, sizeof said, "%s", with);
        }
        msg = said;
    }
    /* A 401: say where the command takes its token from. A 429 or a 503: when to try again. */
    const char *hint = "";
    char when[160];
    if (e->http_status == 401) {
        hint = getenv("TASKMILL_TOKEN") && *getenv("TASKMILL_TOKEN")
                   ? " (the token in TASKMILL_TOKEN was refused)"
                   : " (set TASKMILL_TOKEN to a token: 'taskmill token create', docs/security.md)";
    } else if (e->code == TM_CLIENT_ERATE || e->retry_after_ms > 0) {
        int64_t s = (e->retry_after_ms + 999) / 1000;
        if (s > 0)
            snprintf(when, sizeof when, " (%s: the server asks to try again after %lld s)",
                     e->code == TM_CLIENT_ERATE ? "too many requests" : "unavailable",
                     (long long)s);
        else
            snprintf(when, sizeof when, " (too many requests: try again later)");
        hint = when;
    }
    /* The server's message may quote what a request carried (a value, a name), so it may
     * hold an escape sequence or a newline: it is printed as task text is. */
    char *clean = cli_printable_copy(msg);
    fprintf(stderr, "taskmill %s: %s%s%s%s\n", cmd, what ? what : "", what ? ": " : "",
            clean ? clean : msg, hint);
    free(clean);
    return cli_exit_for(e->code);
}

/*
 * Says what getopt_long (with opterr 0) refused: ch is '?' or ':'. Every
 * error in a long option leaves optind just past its word, with optopt 0
 * when no option has that name, else the option's val: a value missing
 * (':', the last word) or given with '=' to an option that takes none.
 * An unknown short option or one missing its value sets optopt to it.
 */
static void cli_getopt_say(const char *cmd, int ch, char **argv, const struct option *opts) {
    const char *word = argv[optind - 1];
    bool is_long = strncmp(word, "--", 2) == 0;
    size_t n = is_long ? strcspn(word + 2, "=") : 0;
    const struct option *o = NULL; /* the option the long word named, maybe by a prefix */
    int has_arg = ch == ':' ? required_argument : no_argument;
    for (const struct option *p = opts; is_long && optopt && p->name; p++)
        if (p->val == optopt && p->has_arg == has_arg && (word[2 + n] == '=') == (ch == '?') &&
            strncmp(p->name, word + 2, n) == 0)
            o = p;
    if (o && strlen(o->name) != n)
        fprintf(stderr,
                "taskmill %s: unknown option '%.*s' (options are not abbreviated: '--%s'?)\n", cmd,
                (int)(n + 2), word, o->name);
    else if (o)
        fprintf(stderr, "taskmill %s: option '--%s' %s\n", cmd, o->name,
                ch == ':' ? "requires a value" : "takes no value");
    else if (optopt == 0)
        fprintf(stderr, "taskmill %s: unknown option '%.*s'\n", cmd,
                (int)(is_long && n ? n + 2 : strlen(word)), word);
    else
        fprintf(stderr, "taskmill %s: %s '-%c'%s\n", cmd, ch == ':' ? "option" : "unknown option",
                optopt, ch == ':' ? " requires a value" : "");
}

int cli_getopt(const char *cmd, int argc, char **argv, const char *shortopts,
               const struct option *opts) {
    /* getopt's own messages name the bare command ("list: ..."): say them here instead. A
     * leading ':' (after a '+') tells a missing value (':') from an unknown option ('?'). */
    char spec[128];
    bool plus = shortopts[0] == '+';
    snprintf(spec, sizeof spec, "%s:%s", plus ? "+" : "", shortopts + plus);
    opterr = 0;
    int idx = -1;
    int ch = getopt_long(argc, argv, spec, opts, &idx);
    if (ch == '?' || ch == ':') {
        cli_getopt_say(cmd, ch, argv, opts);
        return '?';
    }
    if (ch == -1 || idx < 0) return ch;
    /* The word the option was read from: the one before its separate argument, if any. */
    const char *word =
        optarg && optind >= 2 && optarg == argv[optind - 1] ? argv[optind - 2] : argv[optind - 1];
    size_t n = strncmp(word, "--", 2) == 0 ? strcspn(word + 2, "=") : 0;
    if (n == strlen(opts[idx].name) && strncmp(word + 2, opts[idx].name, n) == 0) return ch;
    fprintf(stderr, "taskmill %s: unknown option '%.*s' (options are not abbreviated: '--%s'?)\n",
            cmd, (int)(n + 2), word, opts[idx].name);
    return '?';
}

void cli_options_build(struct option *opts, const struct cli_value_flag *flags, size_t n,
                       const struct option *others) {
    for (size_t i = 0; i < n; i++)
        opts[i] = (struct option){flags[i].name, required_argument, NULL, CLI_VALUE_OPT + (int)i};
    size_t k = 0;
    do
        opts[n + k] = others[k];
    while (others[k++].name);
}

bool cli_value_flag_set(int ch, const struct cli_value_flag *flags, size_t n, void *args) {
    if (ch < CLI_VALUE_OPT || ch >= CLI_VALUE_OPT + (int)n) return false;
    *(const char **)((char *)args + flags[ch - CLI_VALUE_OPT].off) = optarg;
    return true;
}

void cli_block_stop_signals(sigset_t *stop) {
    sigemptyset(stop);
    sigaddset(stop, SIGINT);
    sigaddset(stop, SIGTERM);
    pthread_sigmask(SIG_BLOCK, stop, NULL);
    signal(SIGPIPE, SIG_IGN);
}

char *cli_printable_copy(const char *s) {
    const unsigned char *u = (const unsigned char *)s;
    size_t i = 0;
    for (; u[i]; i++)
        if (u[i] < 0x20 || u[i] == 0x7f || (u[i] == 0xc2 && u[i + 1] >= 0x80 && u[i + 1] <= 0x9f))
            break;
    if (!u[i]) return NULL;
    char *out = xmalloc(strlen(s) + 1), *o = out;
    for (i = 0; u[i]; i++) {
        if (u[i] == '\t')
            *o++ = ' ';
        else if (u[i] < 0x20 || u[i] == 0x7f)
            *o++ = '?';
        else if (u[i] == 0xc2 && u[i + 1] >= 0x80 && u[i + 1] <= 0x9f) {
            *o++ = '?'; /* U+0080 to U+009F: C1 controls, CSI among them */
            i++;
        } else
            *o++ = (char)u[i];
    }
    *o = '\0';
    return out;
}

void cli_json_printable(json_t *j) {
    const char *key;
    json_t *v;
    size_t i;
    if (json_is_object(j)) {
        json_object_foreach(j, key, v) cli_json_printable(v);
    } else if (json_is_array(j)) {
        json_array_foreach(j, i, v) cli_json_printable(v);
    } else if (json_is_string(j)) {
        char *clean = cli_printable_copy(json_string_value(j));
        if (clean) json_string_set(j, clean);
        free(clean);
    }
}

int cli_short_id_len(char *const *ids, size_t n, size_t i) {
    size_t len = CLI_SHORT_ID_MIN, full = strlen(ids[i]);
    for (size_t j = 0; j < n; j++) {
        if (j == i || strcmp(ids[i], ids[j]) == 0) continue;
        size_t common = 0;
        while (ids[i][common] && ids[i][common] == ids[j][common])
            common++;
        if (common + 1 > len) len = common + 1;
    }
    return (int)(len < full ? len : full);
}

/* Whether id, which the server gave for ids that start with prefix, can be one: it starts
 * with the prefix, fits an id, and holds no control character, space or '/'. */
static bool cli_id_answers(const char *id, const char *prefix) {
    size_t n = strlen(id);
    if (n >= TM_ID_MAX || strncmp(id, prefix, strlen(prefix)) != 0) return false;
    char *shown = cli_printable_copy(id);
    bool ok = !shown && !strpbrk(id, " /");
    free(shown);
    return ok;
}

int cli_resolve_id(const char *cmd, struct tm_client *c, const char *typed, char out[TM_ID_MAX]) {
    /* Ids are lower-case hex; a prefix or an id typed (or pasted) in capitals is the same
     * id, as git takes it. */
    char lower[TM_ID_MAX];
    const char *arg = typed;
    size_t n = strlen(typed);
    if (n > 0 && n < TM_ID_MAX && strspn(typed, "0123456789abcdefABCDEF") == n) {
        for (size_t i = 0; i <= n; i++)
            lower[i] = typed[i] >= 'A' && typed[i] <= 'F' ? (char)(typed[i] - 'A' + 'a') : typed[i];
        arg = lower;
    }
    if (n == 0 || n >= TM_ID_MAX - 1 || strspn(arg, "0123456789abcdef") != n) {
        snprintf(out, TM_ID_MAX, "%s", arg); /* a whole id, or not an id: the server says */
        if (n >= TM_ID_MAX) {
            fprintf(stderr, "taskmill %s: '%.40s...' is not a task id\n", cmd, arg);
            return CLI_EXIT_USAGE;
        }
        return 0;
    }
    if (n < CLI_ID_PREFIX_MIN) {
        fprintf(stderr,
                "taskmill %s: '%s' is too short for an id prefix (at least %d hex digits)\n", cmd,
                arg, CLI_ID_PREFIX_MIN);
        return CLI_EXIT_USAGE;
    }
    struct tm_list_query q = {.id_prefix = arg, .limit = 3};
    json_t *page = NULL;
    if (tm_list(c, &q, &page)) return cli_client_error(cmd, c, NULL);
    json_t *tasks = json_object_get(page, "tasks");
    size_t found = json_array_size(tasks);
    const char *first = json_string_value(json_object_get(json_array_get(tasks, 0), "id"));
    const char *second = json_string_value(json_object_get(json_array_get(tasks, 1), "id"));
    int rc = 0;
    if (found == 0 || !first) {
        fprintf(stderr, "taskmill %s: no task has an id that starts with '%s'\n", cmd, arg);
        rc = CLI_EXIT_NOT_FOUND;
    } else if (found > 1) {
        /* The ids are the server's text: printed as task text is. */
        char *a = cli_printable_copy(first), *b = second ? cli_printable_copy(second) : NULL;
        fprintf(stderr,
                "taskmill %s: id prefix '%s' is ambiguous: it matches %s, %s%s; give more "
                "digits\n",
                cmd, arg, a ? a : first,
                b        ? b
                : second ? second
                         : "?",
                found > 2 ? " and more" : "");
        free(a);
        free(b);
        rc = CLI_EXIT_USAGE;
    } else if (!cli_id_answers(first, arg)) {
        /* What the command goes on with (a path, a watch's row, `ID deleted`) must be an
         * id, not a proxy's text: exit 5 as for any reply that makes no sense. */
        fprintf(stderr,
                "taskmill %s: the server's reply for id prefix '%s' has an id that is not a "
                "task id\n",
                cmd, arg);
        rc = CLI_EXIT_UNAVAILABLE;
    } else {
        snprintf(out, TM_ID_MAX, "%s", first);
    }
    json_decref(page);
    return rc;
}

#define CLI_REL_MAX_MS (3650LL * 86400000) /* a relative time's reach either way */

int cli_parse_time(const char *cmd, const char *flag, const char *value, char out[32]) {
    const char *s = value;
    if (s[0] == '+' || s[0] == '-') {
        char *end;
        errno = 0;
        long long n = strtoll(s + 1, &end, 10);
        int64_t unit = 0;
        if (end != s + 1 && s[1] >= '0' && s[1] <= '9' && end[0] && !end[1])
            unit = end[0] == 's'   ? 1000
                   : end[0] == 'm' ? 60000
                   : end[0] == 'h' ? 3600000
                   : end[0] == 'd' ? 86400000
                                   : 0;
        /* The offset itself is bounded, whatever its unit: 3650 days
         * (+99999999d passed a bound on the count and stood for 9999-08-19). */
        if (!errno && unit && n <= CLI_REL_MAX_MS / unit) {
            time_format_rfc3339(time_now_ms() + (s[0] == '-' ? -1 : 1) * (int64_t)n * unit, out);
            return 0;
        }
        if (unit) { /* well formed, too far */
            fprintf(stderr,
                    "taskmill %s: '%s %s' is more than 3650 days from now: give a time that "
                    "near, or an RFC 3339 time\n",
                    cmd, flag, value);
            return -1;
        }
    } else {
        int64_t ms;
        if (time_parse_rfc3339(s, &ms) == 0) {
            time_format_rfc3339(ms, out);
            return 0;
        }
    }
    fprintf(stderr,
            "taskmill %s: '%s %s' must be RFC 3339 (2026-03-01T09:00:00Z) or relative to now: "
            "+N or -N with s, m, h or d (+1h, -30m)\n",
            cmd, flag, value);
    return -1;
}

/*
 * cli_print_json_text: writes JSON text on stdout with DEL and the C1 controls (U+0080 to
 * U+009F) as \u007f, \u0080...: jansson writes them raw, as JSON allows,
 * and a C1 CSI (U+009B) or a DEL in a task's text would reach the terminal
 * as one. Outside strings JSON is ASCII, so these bytes stand only inside
 * strings, where the escape is the same character; other text is as is.
 */
void cli_print_json_text(const char *text) {
    const unsigned char *u = (const unsigned char *)text;
    size_t run = 0; /* start of the pending run of bytes written as they are */
    for (size_t i = 0; u[i]; i++) {
        bool c1 = u[i] == 0xc2 && u[i + 1] >= 0x80 && u[i + 1] <= 0x9f;
        if (u[i] != 0x7f && !c1) continue;
        fwrite(text + run, 1, i - run, stdout);
        printf("\\u%04x", c1 ? u[i + 1] : 0x7f);
        i += c1;
        run = i + 1;
    }
    fputs(text + run, stdout);
}

/* Why a flush of stdout first failed (an errno), for the message at exit: a later flush
 * with nothing left in the buffer succeeds, though the error flag stays. */
static int cli_output_errno;

bool cli_output_flush(void) {
    errno = 0;
    if (fflush(stdout) != 0 && !cli_output_errno) cli_output_errno = errno;
    return ferror(stdout) != 0;
}

int cli_output_close(const char *cmd) {
    bool failed = cli_output_flush();
    errno = 0;
    if (fclose(stdout) != 0) {
        if (!cli_output_errno) cli_output_errno = errno;
        failed = true;
    }
    if (!failed) return 0;
    int err = cli_output_errno;
    if (err == EPIPE) {
        /* The reader has gone on purpose (`taskmill list | head -1`): end as
         * other Unix tools end there, by SIGPIPE, without a word. */
        signal(SIGPIPE, SIG_DFL);
        raise(SIGPIPE);
    }
    fprintf(stderr, "taskmill%s%s: cannot write the output%s%s\n", cmd ? " " : "", cmd ? cmd : "",
            err ? ": " : "", err ? strerror(err) : "");
    return CLI_EXIT_OUTPUT;
}

void cli_print_json_as(const json_t *v, size_t flags) {
    char *text = json_dumps(v, flags | JSON_ENCODE_ANY | JSON_REAL_PRECISION(16));
    if (!text) {
        fputs("taskmill: out of memory\n", stderr);
        abort();
    }
    cli_print_json_text(text);
    fputc('\n', stdout);
    free(text);
}

void cli_print_json(const json_t *v) {
    cli_print_json_as(v, JSON_INDENT(2));
}

int cli_parse_args(const char *cmd, int argc, char **argv, const char *usage,
                   enum cli_operands want, const char **server, bool *json) {
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
    while ((ch = cli_getopt(cmd, argc, argv, "s:jh", opts)) != -1) {
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
    int operands = argc - optind;
    if (want == CLI_OPERANDS_NONE  ? operands != 0
        : want == CLI_OPERANDS_ONE ? operands != 1
                                   : operands < 1) {
        fputs(usage, stderr);
        return CLI_EXIT_USAGE;
    }
    return -1;
}

bool cli_text_ok(const char *cmd, const char *flag, const char *value) {
    if (utf8_valid(value, strlen(value))) return true;
    fprintf(stderr, "taskmill %s: '%s' must be UTF-8\n", cmd, flag);
    return false;
}

int cli_json_set_text(const char *cmd, json_t *o, const char *key, const char *flag,
                      const char *value) {
    if (!cli_text_ok(cmd, flag, value)) return -1;
    json_object_set_new(o, key, json_string(value));
    return 0;
}

bool cli_flag_taken(const char *cmd, const char *verb, const char *takes, const char *flag) {
    size_t n = strlen(flag);
    for (const char *p = takes; *p;) {
        size_t len = strcspn(p, " ");
        if (len == n && strncmp(p, flag, n) == 0) return true;
        p += len + (p[len] == ' ');
    }
    fprintf(stderr, "taskmill %s: option '--%s' is not taken by '%s'\n", cmd, flag, verb);
    return false;
}

char *cli_path_segment(const char *s) {
    static const char hex[] = "0123456789ABCDEF";
    bool dots = strspn(s, ".") == strlen(s);
    char *out = xmalloc(strlen(s) * 3 + 1), *o = out;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
            *p == '-' || *p == '_' || *p == '~' || (*p == '.' && !dots)) {
            *o++ = (char)*p;
        } else {
            *o++ = '%';
            *o++ = hex[*p >> 4];
            *o++ = hex[*p & 15];
        }
    }
    *o = '\0';
    return out;
}
