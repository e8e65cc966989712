/*
 * `taskmill watch` on a terminal of a given size (a pseudo-terminal made
 * here with forkpty, LANG=C.UTF-8): lines fitted to the columns a wide
 * (CJK) name really takes, and to a terminal of 16 columns; more tasks
 * than rows drawn as rows-1 lines with `+N more`, so the cursor never has
 * to go back past the top; one id given twice drawn once; and Ctrl-C
 * (SIGINT) drawing the bars a last time, the cursor under them, before
 * the program dies of the signal.
 *
 * The tasks stay pending while the watch draws them; the test cancels
 * them to end it, and reads everything it wrote.
 */
#include <locale.h>
#include <wchar.h>

#include "cli_run.h"

static struct th_server srv;

/* A watch running on a pseudo-terminal, and what it has written so far. */
struct tty {
    pid_t pid;
    int master;
    char *out;
    size_t len;
};

/* Starts `taskmill ARGS...` on a terminal of rows x cols. */
static void tty_start(struct tty *t, int rows, int cols, const char *const *args) {
    char *argv[64];
    cli_collect(argv, args, 64);
    struct winsize ws = {.ws_row = (unsigned short)rows, .ws_col = (unsigned short)cols};
    memset(t, 0, sizeof *t);
    t->out = calloc(1, 1);
    fflush(stdout);
    t->pid = forkpty(&t->master, NULL, NULL, &ws);
    if (t->pid == 0) {
        setenv("TASKMILL_URL", srv.url, 1);
        setenv("LANG", "C.UTF-8", 1);
        unsetenv("LC_ALL");
        unsetenv("LC_CTYPE");
        execv(argv[0], argv);
        _exit(127);
    }
}

/* Reads what is there within ms; false once the terminal has closed (the program ended). */
static bool tty_read(struct tty *t, int ms) {
    struct pollfd pf = {t->master, POLLIN, 0};
    if (poll(&pf, 1, ms) <= 0) return true;
    char chunk[4096];
    ssize_t got = read(t->master, chunk, sizeof chunk);
    if (got <= 0) return false;
    t->out = realloc(t->out, t->len + (size_t)got + 1);
    memcpy(t->out + t->len, chunk, (size_t)got);
    t->len += (size_t)got;
    t->out[t->len] = '\0';
    return true;
}

/* Reads until the output holds `needle` (up to ms); whether it does. */
static bool tty_wait_for(struct tty *t, const char *needle, int ms) {
    long long until = th_now_ms() + ms;
    while (!strstr(t->out, needle) && th_now_ms() < until)
        if (!tty_read(t, 50)) break;
    bool found = strstr(t->out, needle) != NULL;
    if (!found) printf("    waited %d ms for '%s' on the terminal\n", ms, needle);
    return found;
}

/* Reads to the end (up to ms; then kills it) and reaps it: its status, 128+signal. */
static int tty_finish(struct tty *t, int ms) {
    long long until = th_now_ms() + ms;
    while (th_now_ms() < until)
        if (!tty_read(t, 50)) break;
    int status = 0;
    if (waitpid(t->pid, &status, WNOHANG) != t->pid) {
        if (th_now_ms() >= until) printf("    waited %d ms for the watch to end; killed\n", ms);
        kill(t->pid, SIGKILL);
        waitpid(t->pid, &status, 0);
    }
    close(t->master);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

static void cancel(const char *id) {
    char path[128];
    snprintf(path, sizeof path, "/v1/tasks/%s/cancel", id);
    th_http(&srv, "POST", path, "{}");
}

/* The widest line of the screen `text` shows, in columns (wcswidth). */
static int widest(const char *screen) {
    int most = 0;
    char *copy = strdup(screen);
    for (char *save = NULL, *line = strtok_r(copy, "\n", &save); line;
         line = strtok_r(NULL, "\n", &save)) {
        wchar_t wide[1100];
        size_t n = mbstowcs(wide, line, sizeof wide / sizeof wide[0] - 1);
        int cols = n == (size_t)-1 ? (int)strlen(line) : wcswidth(wide, n);
        if (cols < 0) cols = (int)strlen(line);
        if (cols > most) most = cols;
    }
    free(copy);
    return most;
}

/*
 * A name of CJK characters (two columns each) is cut to the columns it
 * takes: every line fits in 59 columns of a 60-column terminal. Counted
 * as one column each, the name made the line 68 columns: it wrapped, and
 * each redraw left a stale copy above.
 */
static void test_wide_name_fits(void) {
    const char *name = "写真写真写真写真写真写真写真写真写真写真"; /* 20 characters, 40 columns */
    char extra[256];
    snprintf(extra, sizeof extra, "\"queue\":\"ttyq\",\"name\":\"%s\"", name);
    char *id = th_submit(&srv, "wide", extra);
    struct tty t;
    tty_start(&t, 24, 60, CLI_ARGS("watch", id));
    bool drawn = tty_wait_for(&t, "pending", 10000);
    cancel(id);
    int rc = tty_finish(&t, 20000);
    char *screen = cli_screen(t.out);
    int cols = widest(screen);
    bool named = strstr(screen, "写真") != NULL;
    if (cols > 59 || !named) printf("    %d columns:\n%s\n", cols, screen);
    free(screen);
    free(t.out);
    free(id);
    CHECK(drawn);
    CHECK_INT(rc, 1); /* cancelled */
    CHECK(named);     /* what fits of the name is still shown */
    CHECK(cols <= 59);
}

/* On a terminal 16 columns wide the lines take at most 15: it drew them 79 wide. */
static void test_narrow_terminal(void) {
    char *id = th_submit(&srv, "narrow", "\"queue\":\"ttyq\",\"name\":\"a long name here\"");
    struct tty t;
    tty_start(&t, 24, 16, CLI_ARGS("watch", id));
    bool drawn = tty_wait_for(&t, "[-", 10000); /* the bar: its first state is drawn */
    cancel(id);
    int rc = tty_finish(&t, 20000);
    char *screen = cli_screen(t.out);
    int cols = widest(screen);
    if (cols > 15) printf("    %d columns:\n%s\n", cols, screen);
    free(screen);
    free(t.out);
    free(id);
    CHECK(drawn);
    CHECK_INT(rc, 1);
    CHECK(cols <= 15);
}

/*
 * 12 tasks on a terminal of 8 rows: each draw is 7 lines at most, 6 bars
 * and `+6 more`, so the cursor goes back up 6 rows at most; the last draw
 * shows all 12. It drew 12 lines and went back up 11, past the top: the
 * terminal scrolled a copy of the block up at each draw.
 */
static void test_more_tasks_than_rows(void) {
    enum { N = 12 };
    char *ids[N];
    const char *args[N + 2] = {"watch"};
    for (int i = 0; i < N; i++) {
        ids[i] = th_submit(&srv, "many", "\"queue\":\"ttyq\"");
        args[i + 1] = ids[i];
    }
    args[N + 1] = NULL;
    struct tty t;
    tty_start(&t, 8, 100, args);
    bool drawn = tty_wait_for(&t, "pending", 10000);
    bool more = tty_wait_for(&t, "+6 more", 2000); /* the same draw, if it was drawn so */
    for (int i = 0; i < N; i++)
        cancel(ids[i]);
    int rc = tty_finish(&t, 20000);
    int most_up = 0;
    for (const char *p = t.out; (p = strstr(p, "\033[")); p += 2) {
        int up = atoi(p + 2);
        const char *q = p + 2;
        while (*q >= '0' && *q <= '9')
            q++;
        if (*q == 'A' && up > most_up) most_up = up;
    }
    /* The last draw: every task's final line. */
    const char *last = t.out;
    for (const char *p; (p = strstr(last, "\r\033[J")); last = p + 1) {
    }
    int finals = cli_count(last, "cancelled");
    if (most_up > 6 || finals != N) printf("    up %d rows; last draw:\n%s\n", most_up, last);
    free(t.out);
    for (int i = 0; i < N; i++)
        free(ids[i]);
    CHECK(drawn);
    CHECK_INT(rc, 1);
    CHECK(most_up <= 6);
    CHECK(more);
    CHECK_INT(finals, N);
}

/*
 * One task given twice (its id, then a prefix of it) is one row: it had a
 * second row that showed the bare id to the end, since every state went
 * to the first. --json prints its final state once.
 */
static void test_same_task_twice(void) {
    char *id = th_submit(&srv, "twice", "\"queue\":\"ttyq\"");
    char prefix[13];
    snprintf(prefix, sizeof prefix, "%.12s", id);
    struct tty t;
    tty_start(&t, 24, 120, CLI_ARGS("watch", id, prefix));
    bool drawn = tty_wait_for(&t, "pending", 10000);
    cancel(id);
    int rc = tty_finish(&t, 20000);
    char *screen = cli_screen(t.out);
    int rows = cli_count(screen, prefix);
    bool ended = strstr(screen, "cancelled") != NULL;
    if (rows != 1 || !ended) printf("    %d rows:\n%s\n", rows, screen);
    free(screen);
    free(t.out);
    char *out = NULL, *err = NULL;
    int jrc = cli_run(&srv, NULL, &out, &err, "watch", "--json", id, prefix, id);
    int lines = cli_count(out, "\n");
    free(out);
    free(err);
    free(id);
    CHECK(drawn);
    CHECK_INT(rc, 1);
    CHECK_INT(rows, 1);
    CHECK(ended);
    CHECK_INT(jrc, 1);
    CHECK_INT(lines, 1);
}

/*
 * Ctrl-C (SIGINT) on a terminal: the bars are drawn a last time with the
 * cursor under them (the output ends with a newline, not parked at the
 * first bar where the prompt would write over them), and the program dies
 * of the signal, as it would without the handler.
 */
static void test_interrupt_leaves_bars_above(void) {
    char *id = th_submit(&srv, "intr", "\"queue\":\"ttyq\"");
    struct tty t;
    tty_start(&t, 24, 120, CLI_ARGS("watch", id));
    bool drawn = tty_wait_for(&t, "pending", 10000);
    kill(t.pid, SIGINT);
    int rc = tty_finish(&t, 20000);
    bool under = t.len > 0 && t.out[t.len - 1] == '\n';
    char *screen = cli_screen(t.out);
    bool shown = strstr(screen, "pending") != NULL;
    if (!under || !shown)
        printf("    ends with %d; screen:\n%s\n", t.len ? t.out[t.len - 1] : -1, screen);
    free(screen);
    free(t.out);
    cancel(id);
    free(id);
    CHECK(drawn);
    CHECK_INT(rc, 128 + SIGINT);
    CHECK(under);
    CHECK(shown);
}

/* How many draws the watch has made: each starts "\r\033[J". */
static int draws(const struct tty *t) {
    return cli_count(t->out, "\r\033[J");
}

/*
 * Ctrl-C ends the watch at once, not when its wait for a change ends. It
 * waited in curl_multi_poll, which goes on after EINTR, so the handler's
 * flag was seen only when that wait timed out, up to a second later (the
 * once-a-second redraw). Now the handler wakes the watch
 * (tm_watch_wake), and the wait ends before the watch reads anything
 * more.
 *
 * Told apart without a clock: the test sends SIGINT just after a redraw
 * (so a watch that goes on waiting has most of a second left), then
 * cancels the task. The watch that waited received the cancel meanwhile
 * and drew it last; the watch that stops at once draws the task as it
 * was, pending. (The handler runs before the watch's next instruction,
 * and the cancel is made only after the signal is sent, so the pipe is
 * written before the cancel can reach the watch; it looks at the pipe
 * before it reads any transfer.)
 */
static void test_interrupt_ends_the_wait_at_once(void) {
    char *id = th_submit(&srv, "intr-now", "\"queue\":\"ttyq\"");
    struct tty t;
    tty_start(&t, 24, 120, CLI_ARGS("watch", id));
    bool drawn = tty_wait_for(&t, "pending", 10000);
    /* Two redraws more: past the first half-second's, then one of the once-a-second ones. */
    int want = draws(&t) + 2;
    long long until = th_now_ms() + 10000;
    while (draws(&t) < want && th_now_ms() < until)
        if (!tty_read(&t, 20)) break;
    bool ticked = draws(&t) >= want;
    kill(t.pid, SIGINT);
    cancel(id);
    int rc = tty_finish(&t, 20000);
    /* The last draw. */
    const char *last = t.out;
    for (const char *p; (p = strstr(last, "\r\033[J")); last = p + 1) {
    }
    bool as_was = strstr(last, "pending") != NULL && strstr(last, "cancelled") == NULL;
    if (!as_was) printf("    last draw:\n%s\n", last);
    free(t.out);
    free(id);
    CHECK(drawn);
    CHECK(ticked);
    CHECK_INT(rc, 128 + SIGINT);
    CHECK(as_was);
}

static const struct th_test tests[] = {
    {"a wide (CJK) name is fitted to the columns it takes", test_wide_name_fits},
    {"a 16-column terminal gets lines of 15 columns", test_narrow_terminal},
    {"more tasks than rows: rows-1 lines and +N more", test_more_tasks_than_rows},
    {"one task given twice is one row and one JSON line", test_same_task_twice},
    {"Ctrl-C draws the bars a last time, then dies of SIGINT", test_interrupt_leaves_bars_above},
    {"Ctrl-C ends the watch's wait at once", test_interrupt_ends_the_wait_at_once},
    {NULL, NULL},
};

int main(int argc, char **argv) {
    unsetenv("TASKMILL_WATCH_MODE");
    setlocale(LC_CTYPE, "C.UTF-8"); /* widest() counts columns as the watch does */
    if (th_server_start(&srv, NULL)) {
        printf("RESULT passed=0 failed=1\n");
        return 1;
    }
    int rc = th_main(tests, argc, argv);
    th_server_free(&srv);
    return rc;
}
