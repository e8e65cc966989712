/*
 * token: `taskmill token create|list|revoke|purge`, managing API tokens by
 * opening the store directly (docs/security.md). A running server on the
 * same store sees the change on its next request: SQLite's WAL lets this
 * process write while the server reads, and the busy timeout covers the
 * moments both write.
 *
 * `create` prints the bearer string once (stdout, alone on its line, so
 * `TOKEN=$(taskmill token create ...)` works) and a reminder on stderr;
 * only the secret's SHA-256 is stored. Exit codes: 0, 1 when the store
 * fails or the token is unknown, 2 on a usage error. Single-threaded
 * apart from the store's writer.
 */
#include <getopt.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../common/buf.h"
#include "../common/timeutil.h"
#include "../common/token.h"
#include "../server/v1_decode.h"
#include "../store/store.h"
#include "cli.h"
#include "cli_client.h"

struct token_args {
    const char *store_url, *role, *ns, *name, *expires;
    bool json;
};

static void token_usage(FILE *f) {
    fprintf(f,
            "usage: taskmill token create --role ROLE --namespace NS [--name NAME]\n"
            "                             [--expires DURATION] [--json] [--store URL]\n"
            "       taskmill token list [--json] [--store URL]\n"
            "       taskmill token revoke ID [--store URL]\n"
            "       taskmill token purge [--store URL]\n"
            "  ROLE       admin (everything), client (submit, read and control tasks),\n"
            "             worker (claim and work tasks), reader (read only)\n"
            "  NS         the namespace the token sees (admin tokens see every one)\n"
            "  DURATION   e.g. 90d, 12h, 1h30m (units s m h d w), at most ten years;\n"
            "             default never\n"
            "  --store    the server's store: sqlite:PATH or postgres://USER@HOST/DB\n"
            "             (TASKMILL_STORE; default sqlite:./taskmill.db)\n");
}

/* Opens the store. A SQLite file that is not there is made only by
 * `create` (the first token may come before the first server), and said
 * on stderr, for a --store mistyped is a new store no server reads; the
 * other commands refuse it. */
static int token_open(const struct token_args *a, bool create, struct store **s) {
    const char *path = strncmp(a->store_url, "sqlite:", 7) == 0 ? a->store_url + 7 : NULL;
    bool made = path && access(path, F_OK) != 0;
    if (made && !create) {
        fprintf(stderr, "taskmill token: no store at '%s' (is --store the server's?)\n", path);
        return -1;
    }
    struct tm_error e;
    err_clear(&e);
    struct store_options so = {.tool = true}; /* the server's upkeep is the server's */
    if (store_open(a->store_url, &so, s, &e)) {
        fprintf(stderr, "taskmill token: %s\n", e.message);
        return -1;
    }
    if (made)
        fprintf(stderr,
                "taskmill token: no store was at '%s': a new one is made there; a server must "
                "run on that --store for its tokens to count\n",
                path);
    return 0;
}

static int token_create(const struct token_args *a) {
    enum token_role role;
    if (!a->role || token_role_parse(a->role, &role)) {
        fprintf(stderr, "taskmill token: '--role' %s admin, client, worker or reader\n",
                a->role ? "must be" : "is missing: give");
        return 2;
    }
    if (!a->ns) {
        fprintf(stderr,
                "taskmill token: '--namespace' is missing: the namespace the token may "
                "act in (1-64 of [A-Za-z0-9._-]; an admin's acts in every one)\n");
        return 2;
    }
    if (!v1_is_name(a->ns, 64)) {
        fprintf(stderr, "taskmill token: '--namespace' must be 1-64 of [A-Za-z0-9._-]\n");
        return 2;
    }
    if (a->name && (!*a->name || strlen(a->name) > 128)) {
        fprintf(stderr, "taskmill token: '--name' must be 1 to 128 bytes\n");
        return 2;
    }
    if (a->name && !cli_text_ok("token", "--name", a->name)) return 2;
    int64_t expires_ms = 0;
    if (a->expires && token_parse_duration(a->expires, &expires_ms)) {
        fprintf(stderr,
                "taskmill token: '--expires %s' must be a duration such as 90d or 12h (units s m "
                "h d w) of at most ten years (3660d)\n",
                a->expires);
        return 2;
    }
    struct store *s;
    if (token_open(a, true, &s)) return 1;
    int64_t now = time_now_ms();
    char bearer[TOKEN_STRING_LEN + 1];
    struct token *t =
        token_new(role, a->ns, a->name, now, expires_ms ? now + expires_ms : 0, bearer);
    struct store_op op;
    store_op_init(&op, STORE_OP_TOKEN_CREATE);
    op.token = t;
    int rc = store_run(s, &op);
    if (rc) fprintf(stderr, "taskmill token: %s\n", op.err.message);
    store_op_release(&op);
    store_close(s);
    if (rc == 0 && a->json) {
        struct buf b;
        buf_init(&b);
        token_json_write(&b, t, now);
        b.len--;
        buf_puts(&b, ",\"secret\":");
        json_put_str(&b, bearer);
        buf_puts(&b, "}\n");
        cli_print_json_text(b.p);
        buf_release(&b);
    } else if (rc == 0) {
        printf("%s\n", bearer);
        fprintf(stderr,
                "taskmill token: made token '%s' (%s, namespace '%s'%s%s). The line above is "
                "its secret: keep it now, it is not stored and cannot be shown again.\n",
                t->id, token_role_name(role), a->ns, a->expires ? ", expires in " : "",
                a->expires ? a->expires : "");
    }
    memset(bearer, 0, sizeof bearer);
    token_free(t);
    return rc ? 1 : 0;
}

static int token_list(const struct token_args *a) {
    struct store *s;
    if (token_open(a, false, &s)) return 1;
    struct token **t = NULL;
    size_t n = 0;
    struct tm_error e;
    err_clear(&e);
    int rc = store_token_list(s, &t, &n, &e);
    store_close(s);
    if (rc) {
        fprintf(stderr, "taskmill token: %s\n", e.message);
        return 1;
    }
    int64_t now = time_now_ms();
    struct buf b;
    buf_init(&b);
    if (a->json) {
        buf_puts(&b, "[");
        for (size_t i = 0; i < n; i++) {
            if (i) buf_putc(&b, ',');
            token_json_write(&b, t[i], now);
        }
        buf_puts(&b, "]\n");
    } else {
        buf_printf(&b, "%-16s  %-6s  %-20s  %-7s  %-24s  %-24s  %s\n", "ID", "ROLE", "NAMESPACE",
                   "STATUS", "CREATED", "EXPIRES", "NAME");
        for (size_t i = 0; i < n; i++) {
            char created[TIME_RFC3339_LEN + 1], expires[TIME_RFC3339_LEN + 1] = "never";
            time_format_rfc3339(t[i]->created_at, created);
            if (t[i]->expires_at) time_format_rfc3339(t[i]->expires_at, expires);
            /* A name is anyone's text (an admin's POST /v1/tokens): its
             * controls are shown as '?', as a task's text is. */
            char *shown = t[i]->name ? cli_printable_copy(t[i]->name) : NULL;
            buf_printf(&b, "%-16s  %-6s  %-20s  %-7s  %-24s  %-24s  %s\n", t[i]->id,
                       token_role_name(t[i]->role), t[i]->namespace, token_status(t[i], now),
                       created, expires,
                       shown        ? shown
                       : t[i]->name ? t[i]->name
                                    : "");
            free(shown);
        }
    }
    if (a->json)
        cli_print_json_text(b.p);
    else
        fputs(b.p, stdout);
    buf_release(&b);
    tokens_free(t, n);
    return 0;
}

/* Deletes revoked and expired tokens. When none is left, the store is as
 * if no token had ever existed: a server started on it is open again. */
static int token_purge(const struct token_args *a) {
    struct store *s;
    if (token_open(a, false, &s)) return 1;
    struct store_op op;
    store_op_init(&op, STORE_OP_TOKEN_PURGE);
    int rc = store_run(s, &op);
    bool any = true;
    struct tm_error e;
    err_clear(&e);
    if (rc) {
        fprintf(stderr, "taskmill token: %s\n", op.err.message);
    } else {
        fprintf(stderr, "taskmill token: deleted %lld revoked or expired token(s)\n",
                (long long)op.fired);
        if (store_token_any(s, &any, &e) == 0 && !any)
            fprintf(stderr,
                    "taskmill token: the store holds no token now: a server started on it "
                    "runs in open mode (loopback only) until one is created\n");
    }
    store_op_release(&op);
    store_close(s);
    return rc ? 1 : 0;
}

static int token_revoke(const struct token_args *a, const char *id) {
    if (!token_id_is_valid(id)) {
        fprintf(stderr, "taskmill token: '%s' is not a token id (16 hex characters)\n", id);
        return 2;
    }
    struct store *s;
    if (token_open(a, false, &s)) return 1;
    struct store_op op;
    store_op_init(&op, STORE_OP_TOKEN_REVOKE);
    memcpy(op.id, id, TOKEN_ID_LEN + 1);
    int rc = store_run(s, &op);
    if (rc)
        fprintf(stderr, "taskmill token: %s\n", op.err.message);
    else
        fprintf(stderr, "taskmill token: revoked token '%s'\n", id);
    store_op_release(&op);
    store_close(s);
    return rc == TM_ENOT_FOUND ? CLI_EXIT_NOT_FOUND : rc ? 1 : 0;
}

int cmd_token(int argc, char **argv) {
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "help") == 0) {
        token_usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    const char *sub = argv[1];
    struct token_args a = {0};
    a.store_url = getenv("TASKMILL_STORE") ? getenv("TASKMILL_STORE") : "sqlite:./taskmill.db";
    /* The value flags, then the others, then the end. */
    static const struct cli_value_flag values[] = {
        {"store", offsetof(struct token_args, store_url)},
        {"role", offsetof(struct token_args, role)},
        {"namespace", offsetof(struct token_args, ns)},
        {"name", offsetof(struct token_args, name)},
        {"expires", offsetof(struct token_args, expires)},
    };
    static const struct option others[] = {
        {"json", no_argument, NULL, 'j'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    /* What each subcommand takes besides --help: another flag is refused, not ignored (an
     * unknown subcommand is said after the flags are read). */
    static const struct {
        const char *sub, *takes;
    } subs[] = {
        {"create", "store role namespace name expires json"},
        {"list", "store json"},
        {"revoke", "store"},
        {"purge", "store"},
    };
    const char *takes = NULL;
    for (size_t i = 0; i < sizeof subs / sizeof subs[0]; i++)
        if (strcmp(sub, subs[i].sub) == 0) takes = subs[i].takes;
    char verb[64];
    snprintf(verb, sizeof verb, "token %.40s", sub);
    const size_t nvalues = sizeof values / sizeof values[0];
    struct option opts[sizeof values / sizeof values[0] + sizeof others / sizeof others[0]];
    cli_options_build(opts, values, nvalues, others);
    int c;
    optind = 1;
    while ((c = cli_getopt("token", argc - 1, argv + 1, "", opts)) != -1) {
        if (c == 'h') {
            token_usage(stdout);
            return 0;
        }
        const char *flag = c == 'j' ? "json"
                           : c >= CLI_VALUE_OPT && c < CLI_VALUE_OPT + (int)nvalues
                               ? values[c - CLI_VALUE_OPT].name
                               : NULL;
        if (!flag || (takes && !cli_flag_taken("token", verb, takes, flag))) {
            token_usage(stderr);
            return 2;
        }
        if (c == 'j')
            a.json = true;
        else
            cli_value_flag_set(c, values, nvalues, &a);
    }
    int nargs = argc - 1 - optind;
    char **args = argv + 1 + optind;
    if (strcmp(sub, "create") == 0 && nargs == 0) return token_create(&a);
    if (strcmp(sub, "list") == 0 && nargs == 0) return token_list(&a);
    if (strcmp(sub, "revoke") == 0 && nargs == 1) return token_revoke(&a, args[0]);
    if (strcmp(sub, "purge") == 0 && nargs == 0) return token_purge(&a);
    fprintf(stderr, "taskmill token: unknown or incomplete command 'token %s'\n", sub);
    token_usage(stderr);
    return 2;
}
