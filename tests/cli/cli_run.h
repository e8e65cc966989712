/*
 * cli_run: helpers for tests that run the `taskmill` binary (TASKMILL_BIN)
 * as a client of a test server: run to completion with captured output,
 * start in the background, or run under a pseudo-terminal. Header-only
 * (static functions) so each test binary stays one file plus the harness.
 * Output buffers are malloc'ed; the caller frees them.
 */
#ifndef TASKMILL_TESTS_CLI_RUN_H
#define TASKMILL_TESTS_CLI_RUN_H

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <pty.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"

static inline const char *cli_bin(void) {
    const char *b = getenv("TASKMILL_BIN");
    return b ? b : "build/taskmill";
}

/* Reads f to its end into a malloc'ed string ("" when empty). */
static inline char *cli_read_all(FILE *f) {
    char *p = NULL;
    size_t n = 0, cap = 0;
    for (int c; (c = fgetc(f)) != EOF;) {
        if (n + 2 > cap) p = realloc(p, cap = cap * 2 + 256);
        p[n++] = (char)c;
    }
    if (!p) return strdup("");
    p[n] = '\0';
    return p;
}

/* Reads a whole file into a malloc'ed string ("" when missing). */
static inline char *cli_slurp(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return strdup("");
    char *p = cli_read_all(f);
    fclose(f);
    return p;
}

static inline int cli_collect(char **argv, const char *const *args, int max) {
    int n = 0;
    argv[n++] = (char *)cli_bin();
    for (int i = 0; args[i] && n < max - 1; i++)
        argv[n++] = (char *)args[i];
    argv[n] = NULL;
    return n;
}

/*
 * Runs `taskmill ARGS...` against server s (TASKMILL_URL) with `in` on
 * standard input (may be NULL); fills *out and *err (may be NULL) and
 * returns the exit status, or 128+signal.
 */
static inline int cli_runv(struct th_server *s, const char *in, char **out, char **err,
                           const char *const *args) {
    char o[300], e[300], i[300];
    snprintf(o, sizeof o, "%s/cli.out", s->dir);
    snprintf(e, sizeof e, "%s/cli.err", s->dir);
    snprintf(i, sizeof i, "%s/cli.in", s->dir);
    FILE *f = fopen(i, "w");
    if (f) {
        if (in) fputs(in, f);
        fclose(f);
    }
    char *argv[64];
    cli_collect(argv, args, 64);
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        setenv("TASKMILL_URL", s->url, 1);
        int fi = open(i, O_RDONLY), fo = open(o, O_WRONLY | O_CREAT | O_TRUNC, 0600),
            fe = open(e, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        dup2(fi, 0);
        dup2(fo, 1);
        dup2(fe, 2);
        execv(argv[0], argv);
        _exit(127);
    }
    int status = 0;
    waitpid(pid, &status, 0);
    if (out) *out = cli_slurp(o);
    if (err) *err = cli_slurp(e);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

#define CLI_ARGS(...)                 ((const char *const[]){__VA_ARGS__, NULL})
#define cli_run(s, in, out, err, ...) cli_runv(s, in, out, err, CLI_ARGS(__VA_ARGS__))

/* Starts `taskmill ARGS...` in the background (own process group) with output to `log`. */
static inline pid_t cli_spawnv(struct th_server *s, const char *log, const char *const *args) {
    char *argv[64];
    cli_collect(argv, args, 64);
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        setpgid(0, 0);
        setenv("TASKMILL_URL", s->url, 1);
        int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0600);
        int null = open("/dev/null", O_RDONLY);
        dup2(null, 0);
        dup2(fd, 1);
        dup2(fd, 2);
        execv(argv[0], argv);
        _exit(127);
    }
    return pid;
}

#define cli_spawn(s, log, ...) cli_spawnv(s, log, CLI_ARGS(__VA_ARGS__))

/*
 * Starts `taskmill ARGS...` against s with standard output on the file
 * `out_path` (such as /dev/full), standard error on DIR/cli.err and
 * stdin from /dev/null; returns its pid.
 */
static inline pid_t cli_spawn_outv(struct th_server *s, const char *out_path,
                                   const char *const *args) {
    char e[300];
    snprintf(e, sizeof e, "%s/cli.err", s->dir);
    char *argv[64];
    cli_collect(argv, args, 64);
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        setenv("TASKMILL_URL", s->url, 1);
        int null = open("/dev/null", O_RDONLY), fo = open(out_path, O_WRONLY),
            fe = open(e, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        dup2(null, 0);
        dup2(fo, 1);
        dup2(fe, 2);
        execv(argv[0], argv);
        _exit(127);
    }
    return pid;
}

#define cli_spawn_out(s, path, ...) cli_spawn_outv(s, path, CLI_ARGS(__VA_ARGS__))

/* Waits up to ms for pid; returns its exit status (128+signal), or -1 if it is still running. */
static inline int cli_wait(pid_t pid, int ms) {
    for (int waited = 0;; waited += 20) {
        int status;
        pid_t r = waitpid(pid, &status, WNOHANG);
        if (r == pid) return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
        if (waited >= ms) return -1;
        th_sleep_ms(20);
    }
}

/*
 * Reads what comes on the pseudo-terminal `master` into buf (cap bytes,
 * NUL-ended) until it holds `needle`, the child closes it, or `ms` have
 * passed; returns the bytes read.
 */
static inline size_t cli_pty_read_until(int master, char *buf, size_t cap, const char *needle,
                                        int ms) {
    size_t len = 0;
    buf[0] = '\0';
    long long until = th_now_ms() + ms;
    while (!strstr(buf, needle) && th_now_ms() < until && len < cap - 1) {
        struct pollfd pf = {master, POLLIN, 0};
        if (poll(&pf, 1, 100) <= 0) continue;
        ssize_t got = read(master, buf + len, cap - 1 - len);
        if (got <= 0) break; /* EIO once the child has gone */
        len += (size_t)got;
        buf[len] = '\0';
    }
    return len;
}

/*
 * Reads all that the child pid writes to the pseudo-terminal `master`
 * until it has gone, also into DIR/cli.pty as it comes (for a test that
 * waits on the screen while it runs); then reaps it. Returns its status
 * (128+signal) and, in *out, all it wrote.
 */
static inline int cli_pty_read(struct th_server *s, int master, pid_t pid, char **out) {
    char tee_path[300];
    snprintf(tee_path, sizeof tee_path, "%s/cli.pty", s->dir);
    int tee = open(tee_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    char *buf = NULL;
    size_t n = 0;
    for (;;) {
        char chunk[4096];
        ssize_t got = read(master, chunk, sizeof chunk);
        if (got <= 0) break; /* EIO once the child has gone */
        if (tee >= 0 && write(tee, chunk, (size_t)got) != got) {
        }
        buf = realloc(buf, n + (size_t)got + 1);
        memcpy(buf + n, chunk, (size_t)got);
        n += (size_t)got;
    }
    if (tee >= 0) close(tee);
    close(master);
    int status = 0;
    waitpid(pid, &status, 0);
    if (!buf) buf = strdup("");
    buf[n] = '\0';
    *out = buf;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

/* Runs `taskmill ARGS...` under a pseudo-terminal; returns its status and all it drew. */
static inline int cli_run_ptyv(struct th_server *s, char **out, const char *const *args) {
    char *argv[64];
    cli_collect(argv, args, 64);
    int master;
    struct winsize ws = {.ws_row = 24, .ws_col = 120};
    fflush(stdout);
    pid_t pid = forkpty(&master, NULL, NULL, &ws);
    if (pid == 0) {
        setenv("TASKMILL_URL", s->url, 1);
        execv(argv[0], argv);
        _exit(127);
    }
    return cli_pty_read(s, master, pid, out);
}

#define cli_run_pty(s, out, ...) cli_run_ptyv(s, out, CLI_ARGS(__VA_ARGS__))

/*
 * Runs argv (any program; argv[0] searched in PATH) under a pseudo-terminal
 * `cols` wide with TASKMILL_URL set; returns its status and all that was
 * written to the terminal, by it and by its children.
 */
static inline int cli_run_pty_cmd(struct th_server *s, int cols, char **out,
                                  const char *const *argv) {
    int master;
    struct winsize ws = {.ws_row = 40, .ws_col = (unsigned short)cols};
    fflush(stdout);
    pid_t pid = forkpty(&master, NULL, NULL, &ws);
    if (pid == 0) {
        setenv("TASKMILL_URL", s->url, 1);
        execvp(argv[0], (char *const *)argv);
        _exit(127);
    }
    return cli_pty_read(s, master, pid, out);
}

/*
 * What a terminal shows after `bytes`: a small emulator of what taskmill
 * draws with (text, \r, \n, ESC[K, ESC[2K, ESC[J, ESC[nA; lines do not
 * wrap). Returns the screen's lines joined by '\n' (malloc'ed).
 */
static inline char *cli_screen(const char *bytes) {
    enum { ROWS = 2000, COLS = 1024 };
    char(*grid)[COLS + 1] = calloc(ROWS, sizeof *grid);
    int row = 0, col = 0, used = 1;
    for (const char *p = bytes; *p; p++) {
        if (*p == '\r') {
            col = 0;
        } else if (*p == '\n') {
            if (row + 1 < ROWS) row++;
            col = 0;
            if (row + 1 > used) used = row + 1;
        } else if (*p == '\033' && p[1] == '[') {
            int num = 0;
            const char *q = p + 2;
            while (*q >= '0' && *q <= '9')
                num = num * 10 + (*q++ - '0');
            if (*q == 'K') {
                if (num == 2)
                    memset(grid[row], 0, COLS);
                else if (col < COLS)
                    memset(grid[row] + col, 0, (size_t)(COLS - col));
            } else if (*q == 'J') {
                if (col < COLS) memset(grid[row] + col, 0, (size_t)(COLS - col));
                for (int r = row + 1; r < used; r++)
                    memset(grid[r], 0, COLS);
                used = row + 1;
            } else if (*q == 'A') {
                row -= num ? num : 1;
                if (row < 0) row = 0;
            }
            if (!*q) break;
            p = q;
        } else if (col < COLS) {
            /* A cell left empty before this one reads as a space. */
            for (int c = 0; c < col; c++)
                if (!grid[row][c]) grid[row][c] = ' ';
            grid[row][col++] = *p;
        }
    }
    size_t cap = (size_t)used * (COLS + 1) + 1, len = 0;
    char *outs = malloc(cap);
    for (int r = 0; r < used; r++) {
        size_t l = strnlen(grid[r], COLS);
        memcpy(outs + len, grid[r], l);
        len += l;
        outs[len++] = '\n';
    }
    outs[len] = '\0';
    free(grid);
    return outs;
}

/* Counts the occurrences of needle in hay. */
static inline int cli_count(const char *hay, const char *needle) {
    int n = 0;
    for (const char *p = hay; (p = strstr(p, needle)); p += strlen(needle))
        n++;
    return n;
}

/* Polls a task until its phase is `phase` (up to ms); returns whether it got there. */
static inline bool cli_wait_phase(struct th_server *s, const char *id, const char *phase, int ms) {
    for (int waited = 0; waited <= ms; waited += 50) {
        if (strcmp(th_phase(s, id), phase) == 0) return true;
        th_sleep_ms(50);
    }
    return false;
}

/*
 * A fake server for replies the real one never sends: it accepts
 * connections on loopback, reads each request (its head, and a body's
 * worth when it says Content-Length), writes `reply`, then, when `filler`
 * is set, that text again and again until the client hangs up, and
 * closes the connection.
 */
struct cli_canned {
    int lfd;
    char url[64];
    const char *reply, *filler;
    atomic_bool stop;
    pthread_t th;
};

static inline void cli_canned_send_all(int fd, const char *p, size_t n) {
    while (n > 0) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w <= 0) return;
        p += w;
        n -= (size_t)w;
    }
}

static inline void *cli_canned_main(void *arg) {
    struct cli_canned *k = arg;
    while (!atomic_load(&k->stop)) {
        struct pollfd pf = {k->lfd, POLLIN, 0};
        if (poll(&pf, 1, 100) <= 0) continue;
        int fd = accept(k->lfd, NULL, NULL);
        if (fd < 0) continue;
        char req[16384];
        size_t n = 0;
        req[0] = '\0';
        for (;;) {
            char *end = strstr(req, "\r\n\r\n");
            const char *cl = strcasestr(req, "content-length:");
            if (end && (!cl || n >= (size_t)(end + 4 - req) + (size_t)atol(cl + 15))) break;
            struct pollfd cp = {fd, POLLIN, 0};
            if (n >= sizeof req - 1 || poll(&cp, 1, 2000) <= 0) break;
            ssize_t r = recv(fd, req + n, sizeof req - 1 - n, 0);
            if (r <= 0) break;
            n += (size_t)r;
            req[n] = '\0';
        }
        cli_canned_send_all(fd, k->reply, strlen(k->reply));
        size_t flen = k->filler ? strlen(k->filler) : 0;
        while (flen && !atomic_load(&k->stop)) {
            ssize_t w = send(fd, k->filler, flen, MSG_NOSIGNAL);
            if (w <= 0) break; /* the client hung up */
        }
        close(fd);
    }
    return NULL;
}

/* Starts a fake server answering every request with reply (and filler); 0 or -1. */
static inline int cli_canned_start(struct cli_canned *k, const char *reply, const char *filler) {
    memset(k, 0, sizeof *k);
    k->reply = reply;
    k->filler = filler;
    k->lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    if (k->lfd < 0 || bind(k->lfd, (struct sockaddr *)&a, sizeof a) || listen(k->lfd, 8) ||
        getsockname(k->lfd, (struct sockaddr *)&a, &len))
        return -1;
    snprintf(k->url, sizeof k->url, "http://127.0.0.1:%d", ntohs(a.sin_port));
    return pthread_create(&k->th, NULL, cli_canned_main, k) ? -1 : 0;
}

static inline void cli_canned_stop(struct cli_canned *k) {
    atomic_store(&k->stop, true);
    pthread_join(k->th, NULL);
    close(k->lfd);
}

#endif
