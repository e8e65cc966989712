/*
 * The binary's --help against docs/: where a page says what a flag takes,
 * the help a user reads first must not say less. Runs from the source
 * tree's root (as tests/run.sh does), reading docs/ there.
 */
#include "cli_run.h"

/* The output of `taskmill ARGS` (malloc'ed; "" when it cannot run). */
static char *help_of(const char *args) {
    char cmd[1200];
    snprintf(cmd, sizeof cmd, "'%s' %s 2>&1", cli_bin(), args);
    FILE *p = popen(cmd, "r");
    if (!p) return strdup("");
    char *out = cli_read_all(p);
    pclose(p);
    return out;
}

/* The entry of `text` for `--flag `: its line and the indented lines that
 * go on with it (a static copy, or NULL). */
static const char *help_line(const char *text, const char *flag) {
    static char line[1024];
    size_t fl = strlen(flag);
    for (const char *l = text; *l;) {
        size_t ll = strcspn(l, "\n");
        size_t sp = strspn(l, " ");
        if (ll > sp + fl && strncmp(l + sp, flag, fl) == 0 && l[sp + fl] == ' ') {
            const char *end = l + ll;
            while (*end == '\n' && strspn(end + 1, " ") > sp + 4)
                end += 1 + strcspn(end + 1, "\n");
            snprintf(line, sizeof line, "%.*s", (int)(end - l), l);
            return line;
        }
        l += ll + (l[ll] == '\n');
    }
    return NULL;
}

/* security.md's limits table: each row whose default says "0 = ..." (no cap,
 * none) names a flag whose `serve --help` line must say what 0 does too. */
static void test_serve_help_says_what_0_does(void) {
    char *md = cli_slurp("docs/security.md");
    char *help = help_of("serve --help");
    int rows = 0;
    for (const char *l = md; *l;) {
        size_t ll = strcspn(l, "\n");
        char row[2048];
        snprintf(row, sizeof row, "%.*s", (int)ll, l);
        l += ll + (l[ll] == '\n');
        if (row[0] != '|') continue;
        /* | what | `--flag` | default | answer | */
        char *c2 = strchr(row + 1, '|'), *c3 = c2 ? strchr(c2 + 1, '|') : NULL,
             *c4 = c3 ? strchr(c3 + 1, '|') : NULL;
        if (!c4) continue;
        *c4 = '\0';
        if (!strstr(c3, "(0 = ")) continue;
        char *f = strstr(c2, "`--");
        if (!f || f > c3) continue;
        char flag[64];
        snprintf(flag, sizeof flag, "%.*s", (int)strcspn(f + 1, "`"), f + 1);
        rows++;
        const char *h = help_line(help, flag);
        if (!h || !strstr(h, "0 = ")) {
            th_fail(__FILE__, __LINE__,
                    "security.md says what %s 0 does; serve --help does not: %s", flag,
                    h ? h : "(no line)");
            break;
        }
    }
    free(md);
    free(help);
    CHECK(rows >=
          4); /* --max-connections-per-address, --max-waiters[-per-token], --max-rate, ... */
}

/* --max-string-bytes caps what a worker writes (security.md: progress and
 * item messages, log text, error), not every string of a task: a task's
 * description has its own 4096 bytes (api.md §10). The help must not say
 * "a string field of a task". */
static void test_max_string_bytes_says_what_it_caps(void) {
    char *help = help_of("serve --help");
    const char *h = help_line(help, "--max-string-bytes");
    CHECK(h != NULL);
    bool ok = strstr(h, "message") && strstr(h, "error") && !strstr(h, "field of a task");
    free(help);
    CHECK(ok);
}

/* Every option of `work`'s synopsis has an entry of its own in its --help
 * (--type and --permanent-exit-code had none: cli.md alone said them). */
static void test_work_help_has_each_option(void) {
    char *help = help_of("work --help");
    static const char *const flags[] = {
        "--queue", "--type", "--concurrency", "--lease", "--heartbeat",
        "--grace", "--name", "--max-tasks",   "--quiet", "--permanent-exit-code"};
    int missing = 0;
    for (size_t i = 0; i < sizeof flags / sizeof flags[0]; i++) {
        char first[64];
        snprintf(first, sizeof first, "%s", flags[i]);
        bool found = help_line(help, first) != NULL;
        /* An entry whose name fills the column: the flag alone, then its words below. */
        for (const char *l = help; !found && (l = strstr(l, flags[i])); l++)
            found = l > help && l[-1] == ' ' &&
                    (l[strlen(flags[i])] == '\n' || strncmp(l + strlen(flags[i]), " N\n", 3) == 0);
        if (!found) {
            th_fail(__FILE__, __LINE__, "work --help has no entry for %s", flags[i]);
            missing++;
        }
    }
    free(help);
    CHECK_INT(missing, 0);
}

/* schedule create's inline task takes --priority and --max-retries: its synopsis in --help
 * and in cli.md shows them, and --help has an entry for each saying its range and that a
 * definition gives it instead. */
static void test_schedule_help_has_inline_task_flags(void) {
    char *help = help_of("schedule --help");
    char *md = cli_slurp("docs/cli.md");
    static const char *const flags[][2] = {{"--priority", "-1000000 to 1000000"},
                                           {"--max-retries", "0 to 1000"}};
    for (size_t i = 0; i < 2; i++) {
        char synopsis[64];
        snprintf(synopsis, sizeof synopsis, "[%s N]", flags[i][0]);
        const char *h = help_line(help, flags[i][0]);
        const char *create = strstr(md, "taskmill schedule create NAME");
        const char *create_end = create ? strstr(create, "taskmill schedule list") : NULL;
        const char *in_md = create ? strstr(create, synopsis) : NULL;
        if (!strstr(help, synopsis) || !h || !strstr(h, flags[i][1]) ||
            !strstr(h, "--definition") || !in_md || !create_end || in_md > create_end)
            th_fail(__FILE__, __LINE__, "schedule create %s: help entry '%s'", flags[i][0],
                    h ? h : "(none)");
    }
    free(md);
    free(help);
}

/* `taskmill --help`'s line for each command with verbs names every verb
 * its own --help's synopsis gives (it left out token purge, schedule get,
 * delete, preview and resume, definition get and delete). */
static void test_help_summary_names_every_verb(void) {
    char *top = help_of("--help");
    static const char *const cmds[] = {"token", "schedule", "definition"};
    for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++) {
        char args[64], lead[64];
        snprintf(args, sizeof args, "%s --help", cmds[i]);
        char *help = help_of(args);
        /* The summary: the line "  NAME  ...". */
        snprintf(lead, sizeof lead, "\n  %s ", cmds[i]);
        const char *sum = strstr(top, lead);
        char line[256] = "";
        if (sum) snprintf(line, sizeof line, "%.*s", (int)strcspn(sum + 1, "\n"), sum + 1);
        /* The synopsis: each "taskmill CMD VERB[|VERB]..." of the usage. */
        snprintf(lead, sizeof lead, "taskmill %s ", cmds[i]);
        int verbs = 0;
        for (const char *p = strstr(help, lead); p; p = strstr(p + 1, lead)) {
            const char *v = p + strlen(lead);
            size_t n = strspn(v, "abcdefghijklmnopqrstuvwxyz|");
            char all[64];
            snprintf(all, sizeof all, "%.*s", (int)n, v);
            for (char *tok = strtok(all, "|"); tok; tok = strtok(NULL, "|")) {
                char word[40];
                snprintf(word, sizeof word, " %s", tok);
                const char *at = strstr(line, word);
                verbs++;
                if (!at || (at[strlen(word)] != ',' && at[strlen(word)] != '\0'))
                    th_fail(__FILE__, __LINE__, "'taskmill --help' for %s: '%s' lacks '%s'",
                            cmds[i], line, tok);
            }
        }
        CHECK(verbs >= 4);
        free(help);
    }
    free(top);
}

static const struct th_test tests[] = {
    {"serve --help says what 0 does wherever security.md does", test_serve_help_says_what_0_does},
    {"serve --help: --max-string-bytes names what it caps",
     test_max_string_bytes_says_what_it_caps},
    {"work --help has an entry for each of its options", test_work_help_has_each_option},
    {"schedule --help and cli.md show the inline task's --priority and --max-retries",
     test_schedule_help_has_inline_task_flags},
    {"taskmill --help names every verb of token, schedule and definition",
     test_help_summary_names_every_verb},
    {NULL, NULL},
};

int main(int argc, char **argv) {
    return th_main(tests, argc, argv);
}
