/*
 * Every shell block of README.md and docs/ *.md, run as written against a
 * live server (issue 15, item 9).
 *
 * A shell block is a fence whose info string is sh, bash or shell. The
 * blocks of one file run in order in one bash session (`set -e`: any
 * failing command fails the file), as a reader types them into one
 * terminal, in a scratch directory that looks like the source tree (each
 * top-level entry a symlink, `build` the tree under test), with a server
 * of its own listening where the docs say the server is: the documented
 * default address http://127.0.0.1:8080 is replaced by that server's
 * address, and TASKMILL_URL is set to it, as after the README's setup. The
 * server's store is ./taskmill.db of the scratch directory, as with `make
 * run`, so `taskmill token create` there acts on the running server.
 * `curl` fails on an HTTP error (--fail-with-body), so a documented call
 * that the server refuses fails the test. Background jobs a file leaves
 * are killed when it ends.
 *
 * A block that cannot run here starts with the line `# untested: REASON`
 * (shown to readers as is); it is counted and its reason printed, and a
 * marker without a reason is a failure. docs/cli.md ("How the docs are
 * tested") states the convention.
 */
#include <dirent.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "harness.h"

#define DEFAULT_URL "http://127.0.0.1:8080"

static char root[1024], build[1024];

struct block {
    int line;
    char *text;
};

/* Reads a whole file (malloc'ed, or NULL). */
static char *slurp(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *p = malloc((size_t)n + 1);
    size_t got = fread(p, 1, (size_t)n, f);
    p[got] = '\0';
    fclose(f);
    return p;
}

/* The shell blocks of a markdown text, their fence's indentation removed. */
static size_t parse_blocks(const char *md, struct block *out, size_t max) {
    size_t n = 0;
    int lineno = 0;
    bool in = false, shell = false;
    size_t indent = 0, cap = 0, len = 0;
    char *text = NULL;
    for (const char *l = md; *l;) {
        size_t ll = strcspn(l, "\n");
        lineno++;
        size_t sp = strspn(l, " ");
        bool fence = ll >= sp + 3 && strncmp(l + sp, "```", 3) == 0;
        if (!in && fence) {
            in = true;
            indent = sp;
            char info[32];
            snprintf(info, sizeof info, "%.*s", (int)(ll - sp - 3), l + sp + 3);
            info[strcspn(info, " \t{")] = '\0';
            shell =
                strcmp(info, "sh") == 0 || strcmp(info, "bash") == 0 || strcmp(info, "shell") == 0;
            len = 0;
            if (shell && n < max) out[n].line = lineno;
        } else if (in && fence && ll - sp == 3) {
            in = false;
            if (shell && n < max) {
                out[n].text = text ? text : strdup("");
                text = NULL;
                cap = 0;
                n++;
            }
        } else if (in && shell) {
            size_t skip = sp < indent ? sp : indent;
            if (len + ll + 2 > cap) text = realloc(text, cap = (len + ll + 2) * 2);
            memcpy(text + len, l + skip, ll - skip);
            len += ll - skip;
            text[len++] = '\n';
            text[len] = '\0';
        }
        l += ll + (l[ll] == '\n');
    }
    free(text);
    return n;
}

/* Writes s to f with every DEFAULT_URL replaced by url. */
static void put_replaced(FILE *f, const char *s, const char *url) {
    for (const char *hit; (hit = strstr(s, DEFAULT_URL)); s = hit + strlen(DEFAULT_URL)) {
        fwrite(s, 1, (size_t)(hit - s), f);
        fputs(url, f);
    }
    fputs(s, f);
}

/* A scratch copy of the tree: symlinks to the top-level entries, build -> the tree under test. */
static int make_scratch(const char *dir) {
    DIR *d = opendir(root);
    if (!d) return -1;
    for (struct dirent *e; (e = readdir(d));) {
        if (e->d_name[0] == '.' || strcmp(e->d_name, "build") == 0 ||
            strcmp(e->d_name, "taskmill.db") == 0 || strncmp(e->d_name, "taskmill.db-", 12) == 0)
            continue;
        char from[2048], to[2048];
        snprintf(from, sizeof from, "%s/%s", root, e->d_name);
        snprintf(to, sizeof to, "%s/%s", dir, e->d_name);
        if (symlink(from, to)) {
            closedir(d);
            return -1;
        }
    }
    closedir(d);
    char to[2048];
    snprintf(to, sizeof to, "%s/build", dir);
    return symlink(build, to);
}

/*
 * A build with the sanitizers (`make test`) has a library that only links
 * into programs built with them too: `cc` in the blocks gets the same
 * flags then, as a reader's cc matches a reader's build.
 */
#if defined(__SANITIZE_ADDRESS__)
static const char cc_for_build[] =
    "cc() { command cc -fsanitize=address,undefined \"$@\"; }\n"
    "export ASAN_OPTIONS=detect_leaks=0\n";
#else
static const char cc_for_build[] = "";
#endif

/* Runs the shell blocks of one markdown file (relative to root). */
static void run_file(const char *rel) {
    char path[2048];
    snprintf(path, sizeof path, "%s/%s", root, rel);
    char *md = slurp(path);
    CHECK(md != NULL);
    struct block blocks[64];
    size_t n = parse_blocks(md, blocks, 64);
    free(md);
    size_t runnable = 0;
    for (size_t i = 0; i < n; i++) {
        if (strncmp(blocks[i].text, "# untested:", 11) == 0) {
            const char *why = blocks[i].text + 11;
            size_t wl = strcspn(why, "\n");
            printf("    %s:%d not run: %.*s\n", rel, blocks[i].line, (int)wl, why);
            if (strspn(why, " ") >= wl)
                th_fail(__FILE__, __LINE__, "%s:%d: an untested marker needs its reason", rel,
                        blocks[i].line);
        } else {
            runnable++;
        }
    }
    if (runnable == 0) {
        for (size_t i = 0; i < n; i++)
            free(blocks[i].text);
        return;
    }
    char dir[] = "/tmp/taskmill-docs-XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    char scratch[2048], store[2100];
    snprintf(scratch, sizeof scratch, "%s/tree", dir);
    mkdir(scratch, 0700);
    CHECK(make_scratch(scratch) == 0);
    snprintf(store, sizeof store, "sqlite:%s/taskmill.db", scratch);
    struct th_server srv;
    CHECK(th_server_start(&srv, "--store", store, NULL) == 0);

    char script[2100], log[2100];
    snprintf(script, sizeof script, "%s/blocks.sh", dir);
    snprintf(log, sizeof log, "%s/blocks.log", dir);
    FILE *f = fopen(script, "w");
    CHECK(f != NULL);
    fprintf(f,
            "set -e\n"
            "cd '%s'\n"
            "export TASKMILL_URL='%s' PATH='%s/build':\"$PATH\"\n"
            "unset TASKMILL_TOKEN TASKMILL_WATCH_MODE\n"
            "curl() { command curl --fail-with-body \"$@\"; }\n"
            "%s"
            "trap 'st=$?; kill $(jobs -p) 2>/dev/null || true; exit $st' EXIT\n",
            scratch, srv.url, scratch, cc_for_build);
    for (size_t i = 0; i < n; i++) {
        if (strncmp(blocks[i].text, "# untested:", 11) != 0) {
            fprintf(f, "echo '### %s:%d'\n", rel, blocks[i].line);
            put_replaced(f, blocks[i].text, srv.url);
        }
        free(blocks[i].text);
    }
    fprintf(f, "echo '### %s: all blocks ran'\n", rel);
    fclose(f);
    char cmd[6400];
    snprintf(cmd, sizeof cmd, "timeout -k 5 240 bash '%s' >'%s' 2>&1 </dev/null", script, log);
    int rc = system(cmd);
    char *out = slurp(log);
    bool ok = rc == 0 && out && strstr(out, "all blocks ran");
    if (!ok) {
        /* The block that failed is the last one announced. */
        const char *last = out, *p = out;
        while (p && (p = strstr(p, "### ")))
            last = p++;
        printf("    %s: exit %d in the block at %.*s; its output:\n%s\n", rel,
               WIFEXITED(rc) ? WEXITSTATUS(rc) : -1, last ? (int)strcspn(last + 4, "\n") : 1,
               last ? last + 4 : "?", last ? last : (out ? out : ""));
    } else {
        printf("    %s: %zu blocks ran\n", rel, runnable);
    }
    free(out);
    th_server_free(&srv);
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd)) {
    }
    if (!ok) th_fail(__FILE__, __LINE__, "a shell block of %s failed", rel);
}

static void test_readme(void) {
    run_file("README.md");
}

/* Every markdown file under docs/, in name order. */
static void test_docs(void) {
    char path[2048];
    snprintf(path, sizeof path, "%s/docs", root);
    struct dirent **names;
    int n = scandir(path, &names, NULL, alphasort);
    CHECK(n > 0);
    for (int i = 0; i < n; i++) {
        size_t l = strlen(names[i]->d_name);
        if (l > 3 && strcmp(names[i]->d_name + l - 3, ".md") == 0) {
            char rel[512];
            snprintf(rel, sizeof rel, "docs/%s", names[i]->d_name);
            run_file(rel);
        }
        free(names[i]);
    }
    free(names);
}

int main(int argc, char **argv) {
    if (!getcwd(root, sizeof root)) return 1;
    const char *bin = getenv("TASKMILL_BIN");
    char b[1024];
    snprintf(b, sizeof b, "%s", bin ? bin : "build/taskmill");
    snprintf(build, sizeof build, "%s", dirname(b));
    if (build[0] != '/') {
        char abs[1100];
        snprintf(abs, sizeof abs, "%s/%s", root, build);
        snprintf(build, sizeof build, "%s", abs);
    }
    static const struct th_test tests[] = {
        {"README.md", test_readme},
        {"docs/*.md", test_docs},
        {NULL, NULL},
    };
    return th_main(tests, argc, argv);
}
