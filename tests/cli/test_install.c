/*
 * `make install` under a PREFIX (mk/install.mk, run as install-files so
 * nothing is rebuilt): the binary runs, and a program linked against the
 * installed library with the installed pkg-config file runs as it is,
 * without LD_LIBRARY_PATH (the runtime path docs/cli.md relies on); the
 * build tree's pkg-config file does the same. `make uninstall` removes
 * every file. The build directory is the one TASKMILL_BIN lives in.
 */
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli_run.h"
#include "harness.h"

static char tmp[256], build[512];

/* Runs a shell command with output into tmp/out.log; returns its exit status. */
static int sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int sh(const char *fmt, ...) {
    char cmd[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    char full[4400];
    snprintf(full, sizeof full, "(%s) >%s/out.log 2>&1", cmd, tmp);
    int rc = system(full);
    if (rc != 0) {
        char *log = cli_slurp(strcat(strcpy(full, tmp), "/out.log"));
        printf("    $ %s\n%s\n", cmd, log);
        free(log);
    }
    return WIFEXITED(rc) ? WEXITSTATUS(rc) : 128;
}

static const char prog[] =
    "#include <stdio.h>\n#include <taskmill.h>\n"
    "int main(void) {\n"
    "    struct tm_client *c = tm_client_new(\"http://127.0.0.1:1\", NULL);\n"
    "    json_t *t = NULL;\n"
    "    int rc = tm_get(c, \"0123456789abcdef0123456789abcdef\", &t);\n"
    "    printf(\"linked: %s\\n\", tm_strerror(rc));\n"
    "    tm_client_free(c);\n"
    "    return rc == TM_CLIENT_ECONNECT ? 0 : 1;\n"
    "}\n";

static void test_install_link_run_uninstall(void) {
    char path[600];
    snprintf(path, sizeof path, "%s/prog.c", tmp);
    FILE *f = fopen(path, "w");
    CHECK(f != NULL);
    fputs(prog, f);
    fclose(f);
    /* A sanitizer build's library loads its runtime after the program's start. */
    setenv("ASAN_OPTIONS", "detect_leaks=0:verify_asan_link_order=0", 1);
    CHECK_INT(sh("make -s B=%s PREFIX=%s/prefix install-files", build, tmp), 0);
    CHECK_INT(sh("%s/prefix/bin/taskmill --version | grep -q '^taskmill [0-9]'", tmp), 0);
    CHECK_INT(sh("test -f %s/prefix/include/taskmill.h && test -L %s/prefix/lib/libtaskmill.so "
                 "&& test -f %s/prefix/lib/libtaskmill.a",
                 tmp, tmp, tmp),
              0);
    /* The link recipe with the installed pkg-config file, then run with no loader help. */
    CHECK_INT(sh("cd %s && export PKG_CONFIG_PATH=%s/prefix/lib/pkgconfig && "
                 "cc prog.c -o prog $(pkg-config --cflags --libs taskmill) && "
                 "env -u LD_LIBRARY_PATH ./prog | grep -q 'linked: cannot reach'",
                 tmp, tmp),
              0);
    CHECK_INT(sh("cd %s && ldd ./prog | grep -q '%s/prefix/lib/libtaskmill.so.1'", tmp, tmp), 0);
    /* The build tree's own pkg-config file, as docs/cli.md shows it. */
    CHECK_INT(sh("cd %s && export PKG_CONFIG_PATH=%s && "
                 "cc prog.c -o prog2 $(pkg-config --cflags --libs taskmill) && "
                 "env -u LD_LIBRARY_PATH ./prog2 | grep -q 'linked: cannot reach'",
                 tmp, build),
              0);
    CHECK_INT(sh("make -s B=%s PREFIX=%s/prefix uninstall", build, tmp), 0);
    CHECK_INT(sh("test -z \"$(find %s/prefix -type f -o -type l)\"", tmp), 0);
}

/* A program with functions of its own named as the library's internal ones
 * (gnulib has an xmalloc), linked statically: only TM_API names may clash. */
static const char prog_static[] =
    "#include <stdio.h>\n#include <stdlib.h>\n#include <taskmill.h>\n"
    "void *xmalloc(size_t n) { return malloc(n); }\n"
    "char *xstrdup(const char *s) { (void)s; return NULL; }\n"
    "int sse_parser_feed(int x) { return x + 1; }\n"
    "int client_fail(int x) { return x + 2; }\n"
    "int main(void) {\n"
    "    struct tm_client *c = tm_client_new(\"http://127.0.0.1:1\", NULL);\n"
    "    json_t *t = NULL;\n"
    "    int rc = tm_get(c, \"0123456789abcdef0123456789abcdef\", &t);\n"
    "    printf(\"linked: %s %d\\n\", tm_strerror(rc), sse_parser_feed(1) + client_fail(1));\n"
    "    free(xmalloc(8));\n"
    "    tm_client_free(c);\n"
    "    return rc == TM_CLIENT_ECONNECT ? 0 : 1;\n"
    "}\n";

#if defined(__SANITIZE_ADDRESS__)
#define CC_FOR_BUILD "cc -fsanitize=address,undefined"
#else
#define CC_FOR_BUILD "cc"
#endif

static void test_static_link_keeps_internals(void) {
    char path[600], cwd[512];
    CHECK(getcwd(cwd, sizeof cwd) != NULL);
    snprintf(path, sizeof path, "%s/prog_static.c", tmp);
    FILE *f = fopen(path, "w");
    CHECK(f != NULL);
    fputs(prog_static, f);
    fclose(f);
    setenv("ASAN_OPTIONS", "detect_leaks=0", 1);
    /* Nothing but the API is global in the archive. */
    CHECK_INT(sh("nm -g --defined-only %s/libtaskmill.a | awk 'NF == 3 && $3 !~ /^tm_/' | "
                 "grep . && exit 1 || exit 0",
                 build),
              0);
    CHECK_INT(sh("cd %s && " CC_FOR_BUILD " -I%s/include prog_static.c -o prog3 "
                 "%s/libtaskmill.a $(pkg-config --libs libcurl jansson) -lpthread && "
                 "./prog3 | grep -q 'linked: cannot reach .* 5$'",
                 tmp, cwd, build),
              0);
}

int main(int argc, char **argv) {
    snprintf(tmp, sizeof tmp, "/tmp/taskmill-install-XXXXXX");
    if (!mkdtemp(tmp)) return 1;
    char bin[512];
    snprintf(bin, sizeof bin, "%s", cli_bin());
    snprintf(build, sizeof build, "%s", dirname(bin));
    static const struct th_test tests[] = {
        {"make install, link with pkg-config, run, uninstall", test_install_link_run_uninstall},
        {"a static link keeps the library's own functions to itself",
         test_static_link_keeps_internals},
        {NULL, NULL},
    };
    int rc = th_main(tests, argc, argv);
    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmp);
    if (system(cmd)) {
    }
    return rc;
}
