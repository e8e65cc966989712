/*
 * The direction of the tree's dependencies, read from every `#include "..."`
 * under src/ (STYLE.md, DESIGN.md section 6): common -> store ->
 * server / client -> cli, the compatibility views beside the server.
 *
 *   common/   includes only common/
 *   store/    common/, store/
 *   server/   common/, store/, server/      (never compat/, client/, cli/)
 *   client/   common/, client/
 *   compat/   common/, store/, server/, compat/
 *   cli/      anything
 *
 * and a module's `*_int.h` is included only by files of that module.
 * Run from the project's root (as tests/run.sh does).
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

static const char *const modules[] = {"common", "store", "server", "client", "compat", "cli"};
#define NMOD 6

/* Which module may include which: allowed[from][to]. */
static const bool allowed[NMOD][NMOD] = {
    /*            common store  server client compat cli */
    /* common */ {true, false, false, false, false, false},
    /* store  */ {true, true, false, false, false, false},
    /* server */ {true, true, true, false, false, false},
    /* client */ {true, false, false, true, false, false},
    /* compat */ {true, true, true, false, true, false},
    /* cli    */ {true, true, true, true, true, true},
};

static int module_of(const char *path) {
    for (int i = 0; i < NMOD; i++) {
        size_t n = strlen(modules[i]);
        if (strncmp(path, modules[i], n) == 0 && path[n] == '/') return i;
    }
    return -1;
}

/* Resolves `inc` as written in a file of directory `dir` ("server") into
 * a path under src/ ("store/store.h"); false when it leaves src/. */
static bool resolve(const char *dir, const char *inc, char *out, size_t n) {
    char buf[512];
    snprintf(buf, sizeof buf, "%s/%s", dir, inc);
    /* Collapse "x/../" segments. */
    char *parts[32];
    int np = 0;
    for (char *tok = strtok(buf, "/"); tok; tok = strtok(NULL, "/")) {
        if (strcmp(tok, "..") == 0) {
            if (np == 0) return false;
            np--;
        } else if (strcmp(tok, ".") != 0 && np < 32) {
            parts[np++] = tok;
        }
    }
    out[0] = '\0';
    for (int i = 0; i < np; i++) {
        if (i) strncat(out, "/", n - strlen(out) - 1);
        strncat(out, parts[i], n - strlen(out) - 1);
    }
    return true;
}

static int violations;

static void check_file(const char *mod, const char *name) {
    char path[512];
    snprintf(path, sizeof path, "src/%s/%s", mod, name);
    FILE *f = fopen(path, "r");
    if (!f) return;
    int from = module_of(path + 4);
    char line[1024];
    int lineno = 0;
    while (fgets(line, sizeof line, f)) {
        lineno++;
        const char *p = line;
        while (*p == ' ' || *p == '\t')
            p++;
        if (strncmp(p, "#include \"", 10) != 0) continue;
        char inc[512];
        const char *q = p + 10, *end = strchr(q, '"');
        if (!end || (size_t)(end - q) >= sizeof inc) continue;
        memcpy(inc, q, (size_t)(end - q));
        inc[end - q] = '\0';
        char target[512];
        if (!resolve(mod, inc, target, sizeof target)) continue; /* generated or outside src/ */
        int to = module_of(target);
        if (to < 0) continue;
        if (!allowed[from][to]) {
            th_fail(path, lineno, "'%s' includes '%s': %s/ may not depend on %s/", path, inc,
                    modules[from], modules[to]);
            violations++;
        }
        size_t tl = strlen(target);
        if (tl > 6 && strcmp(target + tl - 6, "_int.h") == 0 && to != from) {
            th_fail(path, lineno, "'%s' includes '%s', another module's internal header", path,
                    inc);
            violations++;
        }
    }
    fclose(f);
}

static void test_includes_point_one_way(void) {
    int files = 0;
    for (int m = 0; m < NMOD; m++) {
        char dir[64];
        snprintf(dir, sizeof dir, "src/%s", modules[m]);
        DIR *d = opendir(dir);
        CHECK(d != NULL); /* run from the project's root */
        if (!d) return;
        struct dirent *e;
        while ((e = readdir(d))) {
            size_t n = strlen(e->d_name);
            if (n > 2 &&
                (strcmp(e->d_name + n - 2, ".c") == 0 || strcmp(e->d_name + n - 2, ".h") == 0)) {
                check_file(modules[m], e->d_name);
                files++;
            }
        }
        closedir(d);
    }
    CHECK(files > 50); /* it read the tree */
    CHECK_INT(violations, 0);
}

/* The checker itself catches what it should. */
static void test_rules_themselves(void) {
    CHECK(!allowed[0][1]); /* common -> store */
    CHECK(!allowed[1][2]); /* store -> server */
    CHECK(!allowed[2][4]); /* server -> compat */
    CHECK(!allowed[2][5]); /* server -> cli */
    CHECK(allowed[4][2]);  /* compat -> server (public headers) */
    char out[128];
    CHECK(resolve("server", "../compat/livepeer.h", out, sizeof out));
    CHECK_STR(out, "compat/livepeer.h");
    CHECK_INT(module_of(out), 4);
    CHECK(resolve("compat", "sailpoint_filter.h", out, sizeof out));
    CHECK_STR(out, "compat/sailpoint_filter.h");
    CHECK(!resolve("cli", "../../x.h", out, sizeof out));
}

static const struct th_test tests[] = {
    {"#include lines point one way; *_int.h stay in their module", test_includes_point_one_way},
    {"the rules and the path resolution", test_rules_themselves},
    {NULL, NULL},
};

int main(int argc, char **argv) {
    return th_main(tests, argc, argv);
}
