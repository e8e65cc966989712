/*
 * cmd_watch: `taskmill watch ID...`, and the watch loop `submit --wait`
 * shares (cli_watch_run).
 *
 * On a terminal each task gets one line with a progress bar, redrawn in
 * place on every change and once a second for the clocks. Between draws
 * the cursor rests at the start of the first bar, so a line another
 * program writes to the same terminal (a worker beside it) lands there
 * and pushes the bars down: the next draw clears from the cursor down and
 * draws them below it, and the bars stay the last lines. Otherwise each
 * visible change prints one plain line, so logs and pipes read well. Changes come from
 * libtaskmill's tm_watch (SSE, with the long-poll as fallback; TASKMILL_WATCH_MODE). The exit code
 * says how the tasks ended (cli_client.h). Single-threaded; on a terminal SIGINT and SIGTERM
 * only set a flag and wake the watch (tm_watch_wake, async-signal-safe), so that the wait ends
 * at once and the bars are drawn a last time before the signal is raised again.
 * Columns are counted with wcwidth in the user's LC_CTYPE (a CJK character takes two).
 */
#include <getopt.h>
#include <locale.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>
#include <wchar.h>

#include "../common/timeutil.h"
#include "../common/xalloc.h"
#include "cli.h"
#include "cli_client.h"

#define WATCH_BAR_WIDTH 20
/* How long a task's row waits for the server's first answer before it says
 * it is waiting: a healthy server answers well within it. */
#define WATCH_GRACE_MS 500

struct watch_row {
    const char *id;
    int short_len;   /* digits of the id shown: enough to tell the rows apart */
    int64_t lost_ms; /* how long the server has not answered for it, 0 = it answers */
    bool waiting;    /* no first answer within WATCH_GRACE_MS, or the server stopped answering */
    json_t *task;    /* latest state, owned; NULL until the first */
    int exit;        /* CLI_EXIT_... once the task is settled */
    bool settled;    /* terminal, or no longer followed */
    char plain[600];
    char error[600]; /* why following it failed, printed at the end */
};

static const char *watch_str(const json_t *task, const char *key) {
    return json_string_value(json_object_get(task, key));
}

static int64_t watch_time(const json_t *task, const char *key) {
    int64_t ms = 0;
    const char *s = watch_str(task, key);
    if (!s || time_parse_rfc3339(s, &ms)) return 0;
    return ms;
}

/* "42s", "3m04s", "2h05m". */
static void watch_duration(int64_t ms, char *out, size_t n) {
    int64_t s = ms < 0 ? 0 : ms / 1000;
    if (s < 60)
        snprintf(out, n, "%llds", (long long)s);
    else if (s < 3600)
        snprintf(out, n, "%lldm%02llds", (long long)(s / 60), (long long)(s % 60));
    else
        snprintf(out, n, "%lldh%02lldm", (long long)(s / 3600), (long long)(s / 60 % 60));
}

/* "3/10" from the counts, or "" when there are none. */
static void watch_counts(const json_t *p, char *out, size_t n) {
    json_int_t done = json_integer_value(json_object_get(p, "processed"));
    json_int_t total = done + json_integer_value(json_object_get(p, "processing")) +
                       json_integer_value(json_object_get(p, "pending"));
    if (total > 0)
        snprintf(out, n, "%lld/%lld", (long long)done, (long long)total);
    else
        out[0] = '\0';
}

/* What a task's line says after its numbers: the message, or how it ended. */
static void watch_note(const json_t *task, char *out, size_t n) {
    const char *phase = watch_str(task, "phase");
    const char *status = watch_str(task, "completion_status");
    const char *msg = watch_str(json_object_get(task, "progress"), "message");
    const char *error = watch_str(task, "error");
    if (phase && strcmp(phase, "completed") == 0)
        snprintf(out, n, "%s%s%s", status ? status : "", msg ? " " : "", msg ? msg : "");
    else if (tm_phase_is_terminal(phase) || (phase && strcmp(phase, "waiting") == 0 && error))
        snprintf(out, n, "%s%s%s", status ? status : "", error ? ": " : "", error ? error : "");
    else
        snprintf(out, n, "%s", msg ? msg : "");
}

/* The plain (not a terminal) line of a task: `ID PHASE PCT% [P/T] NOTE`. */
static void watch_plain_line(const char *id, const json_t *task, char *out, size_t n) {
    const json_t *p = json_object_get(task, "progress");
    char counts[48], note[400];
    watch_counts(p, counts, sizeof counts);
    watch_note(task, note, sizeof note);
    char state[64];
    cli_task_state(task, time_now_ms(), state, sizeof state);
    snprintf(out, n, "%s %s %lld%%%s%s%s%s", id, state,
             (long long)json_integer_value(json_object_get(p, "percent")), counts[0] ? " " : "",
             counts, note[0] ? " " : "", note);
}

/*
 * The columns of the character at s (n bytes of it: *len gets its length):
 * wcwidth's, 2 for a CJK or emoji character, 0 for a combining one; a
 * character the locale cannot read, or one wcwidth does not know, counts
 * as one column and its UTF-8 sequence as one character.
 */
static int watch_char_cols(const char *s, size_t *len) {
    mbstate_t st;
    memset(&st, 0, sizeof st);
    wchar_t wc;
    size_t n = mbrtowc(&wc, s, MB_CUR_MAX, &st);
    if (n != (size_t)-1 && n != (size_t)-2 && n != 0) {
        *len = n;
        int w = wcwidth(wc);
        return w >= 0 ? w : 1;
    }
    size_t k = 1;
    while (s[k] && ((unsigned char)s[k] & 0xc0) == 0x80)
        k++;
    *len = k;
    return 1;
}

/* Cuts s to at most `width` columns (a wide character that would cross it goes too). */
static void watch_fit(char *s, int width) {
    int cols = 0;
    for (char *p = s; *p;) {
        size_t len;
        cols += watch_char_cols(p, &len);
        if (cols > width) {
            *p = '\0';
            return;
        }
        p += len;
    }
}

/* Columns s takes on the terminal. */
static int watch_cols(const char *s) {
    int cols = 0;
    for (size_t len; *s; s += len)
        cols += watch_char_cols(s, &len);
    return cols;
}

/*
 * The terminal line of a task:
 *   ID NAME [#####-----] PCT% P/T STATE ELAPSED ETA  NOTE
 * fitted to `width`: the name is shortened first (to 8 columns, then
 * dropped), then the note is cut, so the bar, the numbers and the clocks
 * stay readable at 80 columns. A waiting task shows when it starts; a task
 * whose server does not answer says so instead of a frozen ETA.
 */
static void watch_bar_line(const struct watch_row *r, int64_t now, int width, char *out, size_t n) {
    const json_t *t = r->task;
    if (!t) {
        /* Before the first answer, the id alone: a healthy server answers at once. */
        snprintf(out, n, "%.*s  %s", r->short_len, r->id,
                 r->error[0]  ? r->error
                 : r->waiting ? "(waiting for the server)"
                              : "");
        watch_fit(out, width);
        return;
    }
    const json_t *p = json_object_get(t, "progress");
    double ratio = json_number_value(json_object_get(p, "ratio"));
    if (ratio < 0) ratio = 0;
    if (ratio > 1) ratio = 1;
    const char *phase = watch_str(t, "phase");
    if (phase && strcmp(phase, "completed") == 0) ratio = 1;
    char bar[WATCH_BAR_WIDTH + 1];
    int fill = (int)(ratio * WATCH_BAR_WIDTH + 0.5);
    for (int i = 0; i < WATCH_BAR_WIDTH; i++)
        bar[i] = i < fill ? '#' : '-';
    bar[WATCH_BAR_WIDTH] = '\0';
    const char *label = watch_str(t, "name");
    if (!label || !*label) label = watch_str(t, "type");
    if (!label) label = "";
    char counts[48], note[400], elapsed[32] = "", eta[40] = "", state[96];
    watch_counts(p, counts, sizeof counts);
    watch_note(t, note, sizeof note);
    cli_task_state(t, time_now_ms(), state, sizeof state);
    int64_t at_ms = watch_time(t, "scheduled_at");
    if (phase && strcmp(phase, "waiting") == 0 && at_ms > time_now_ms()) {
        char d[24];
        watch_duration(at_ms - time_now_ms() + 999, d, sizeof d);
        snprintf(state, sizeof state, "waiting, starts in %s%s", d,
                 json_is_true(json_object_get(t, "paused")) ? " (paused)" : "");
    }
    int64_t started = watch_time(t, "started_at"), ended = watch_time(t, "completed_at");
    if (started) {
        int64_t e = (ended ? ended : now) - started;
        watch_duration(e, elapsed, sizeof elapsed);
        if (!ended && !r->lost_ms && ratio > 0.001 && ratio < 1 && phase &&
            strcmp(phase, "running") == 0) {
            char d[24];
            watch_duration((int64_t)((double)e * (1 - ratio) / ratio), d, sizeof d);
            snprintf(eta, sizeof eta, " ETA %s", d);
        }
    }
    if (r->lost_ms) {
        char d[24];
        watch_duration(r->lost_ms, d, sizeof d);
        snprintf(note, sizeof note, "server not answering for %s; reconnecting", d);
    }
    char head[160], tail[600];
    snprintf(head, sizeof head, "[%s] %3lld%%%s%s %s", bar,
             (long long)json_integer_value(json_object_get(p, "percent")), counts[0] ? " " : "",
             counts, state);
    snprintf(tail, sizeof tail, "%s%s%s%s%s", elapsed[0] ? " " : "", elapsed, eta,
             note[0] ? "  " : "", note);
    /* Without the note: the id, the name and the numbers must fit; the name gives way first. */
    int fixed = r->short_len + 1 + watch_cols(head) + (watch_cols(tail) - watch_cols(note));
    int name_w = watch_cols(label);
    if (name_w > 24) name_w = 24;
    if (fixed + name_w + 1 > width) name_w = width - fixed - 1;
    if (name_w < 8 && watch_cols(label) > name_w) name_w = name_w >= 4 ? name_w : 0;
    char name[128] = "";
    if (name_w > 0) {
        snprintf(name, sizeof name, "%s", label);
        watch_fit(name, name_w);
        if (watch_cols(label) > name_w && name_w > 1) {
            watch_fit(name, name_w - 1);
            strcat(name, "~"); /* shortened */
        }
    }
    /* Padded to name_w columns, not bytes: a name in another script lines up too. */
    int pad = name_w > 0 ? name_w - watch_cols(name) : 0;
    snprintf(out, n, "%.*s %s%*s%s%s%s", r->short_len, r->id, name, pad > 0 ? pad : 0, "",
             name_w > 0 ? " " : "", head, tail);
    watch_fit(out, width);
}

/* The terminal's size: *cols the columns a line may take (the last is left free, so that no
 * line wraps), 79 when unknown; *rows its rows, 0 when unknown. */
static void watch_term_size(int *cols, int *rows) {
    struct winsize ws;
    *cols = 79;
    *rows = 0;
    if (ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0) {
        if (ws.ws_col > 0) *cols = ws.ws_col - 1;
        *rows = ws.ws_row;
    }
}

/*
 * Draws every row from the cursor down, clearing what is below it first,
 * and leaves the cursor at the start of the first row (`park`), or after
 * the last one for good. The previous draw left the cursor at its first
 * row, or under lines another program wrote since: either way the bars
 * are drawn where the cursor is, below anything written meanwhile. A
 * parked draw takes at most the terminal's rows less one (the cursor
 * cannot go back up past its top: a taller block scrolled a copy of
 * itself up at each draw), the rows that do not fit said in a last line,
 * `+N more`; the last draw shows them all.
 */
static void watch_draw(struct watch_row *rows, size_t n, bool park) {
    int64_t now = time_now_ms();
    int width, height;
    watch_term_size(&width, &height);
    size_t shown = n, lines = n;
    if (park && height > 0 && n > (size_t)(height > 1 ? height - 1 : 1)) {
        lines = (size_t)(height > 1 ? height - 1 : 1);
        shown = lines - 1;
    }
    fputs("\r\033[J", stdout);
    for (size_t i = 0; i < lines; i++) {
        char line[1024];
        if (i < shown)
            watch_bar_line(&rows[i], now, width, line, sizeof line);
        else
            snprintf(line, sizeof line, "+%zu more", n - shown);
        watch_fit(line, width);
        fputs(line, stdout);
        if (i + 1 < lines || !park) fputc('\n', stdout);
    }
    if (park) {
        if (lines > 1) printf("\033[%zuA", lines - 1);
        fputc('\r', stdout);
    }
    cli_output_flush();
}

/* The signal (SIGINT, SIGTERM) that asked a watch on a terminal to stop, or 0. */
static volatile sig_atomic_t watch_signal;
/* The watch that signal wakes while its handler is installed, else NULL. A lock-free atomic,
 * so that the handler may read it (C11 7.14.1.1). */
static _Atomic(struct tm_watch *) watch_waking;
_Static_assert(ATOMIC_POINTER_LOCK_FREE == 2, "the signal handler reads a pointer");

static void watch_on_signal(int sig) {
    watch_signal = sig;
    /* Ends tm_watch_next's wait now: the flag alone was seen only when its poll timed out
     * (up to a second), since the poll goes on after EINTR. */
    tm_watch_wake(atomic_load(&watch_waking));
}

static struct watch_row *watch_find(struct watch_row *rows, size_t n, const char *id) {
    for (size_t i = 0; id && i < n; i++)
        if (strcmp(rows[i].id, id) == 0) return &rows[i];
    return NULL;
}

/* Keeps c's last error as why following r failed: the server's message, printed on the bar
 * and at the end as task text is (it may quote what a request carried). */
static void watch_set_error(struct watch_row *r, struct tm_client *c) {
    const char *msg = tm_client_last_error(c)->message;
    char *clean = cli_printable_copy(msg);
    snprintf(r->error, sizeof r->error, "%s", clean ? clean : msg);
    free(clean);
}

/* Records a task's new state; prints its plain line when that changed. */
static void watch_update(struct watch_row *r, json_t *task, bool plain) {
    json_decref(r->task);
    r->task = task;
    const char *phase = watch_str(task, "phase");
    if (tm_phase_is_terminal(phase)) {
        r->settled = true;
        r->exit = strcmp(phase, "completed") == 0 ? CLI_EXIT_OK : CLI_EXIT_NOT_COMPLETED;
    }
    if (!plain) return;
    char line[sizeof r->plain];
    watch_plain_line(r->id, task, line, sizeof line);
    if (strcmp(line, r->plain) != 0) {
        printf("%s\n", line);
        cli_output_flush();
        memcpy(r->plain, line, sizeof line);
    }
}

int cli_watch_run(struct tm_client *c, char *const *ids_in, size_t n_in, bool json) {
    bool tty = !json && isatty(STDOUT_FILENO);
    /* One row a task: an id given twice (or two prefixes of one) is followed once. */
    char **ids = xcalloc(n_in ? n_in : 1, sizeof *ids);
    size_t n = 0;
    for (size_t i = 0; i < n_in; i++) {
        bool seen = false;
        for (size_t j = 0; j < n && !seen; j++)
            seen = strcmp(ids[j], ids_in[i]) == 0;
        if (!seen) ids[n++] = ids_in[i];
    }
    struct sigaction old_int, old_term;
    struct tm_watch *w = tm_watch_new(c);
    if (tty) {
        setlocale(LC_CTYPE, ""); /* the terminal's character widths */
        watch_signal = 0;
        atomic_store(&watch_waking, w);
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = watch_on_signal;
        sigemptyset(&sa.sa_mask);
        sigaction(SIGINT, NULL, &old_int);
        sigaction(SIGTERM, NULL, &old_term);
        /* A signal the shell had ignored (a background job) stays ignored. */
        if (old_int.sa_handler != SIG_IGN) sigaction(SIGINT, &sa, NULL);
        if (old_term.sa_handler != SIG_IGN) sigaction(SIGTERM, &sa, NULL);
    }
    struct watch_row *rows = xcalloc(n ? n : 1, sizeof *rows);
    for (size_t i = 0; i < n; i++) {
        rows[i].id = ids[i];
        rows[i].short_len = cli_short_id_len(ids, n, i);
        int rc = tm_watch_add(w, ids[i]);
        if (rc) {
            rows[i].settled = true;
            rows[i].exit = cli_exit_for(rc);
            watch_set_error(&rows[i], c);
        }
    }
    int64_t start_ms = time_mono_ms();
    if (tty) watch_draw(rows, n, true);
    /* A write to stdout that failed (a full disk, a terminal gone) ends the watch: its lines
     * or bars reach no one, and main says so with exit 6. */
    while (tm_watch_active(w) > 0 && !watch_signal && !ferror(stdout)) {
        json_t *task = NULL;
        /* The first draw after the grace may have to say that a row is waiting. */
        int64_t left = start_ms + WATCH_GRACE_MS - time_mono_ms();
        int tick = left > 0 && left < 1000 ? (int)left : 1000;
        int rc = tm_watch_next(w, tty ? tick : 60000, &task);
        if (watch_signal) { /* what came after the stop was asked for is not drawn */
            json_decref(task);
            break;
        }
        struct watch_row *r = watch_find(rows, n, tm_watch_last_id(w));
        if (rc == 1 && r) {
            if (!json) cli_json_printable(task); /* its text goes to a terminal or a log */
            watch_update(r, task, !tty && !json);
        } else if (rc < 0 && r) {
            r->settled = true;
            r->exit = cli_exit_for(rc);
            watch_set_error(r, c);
        } else {
            json_decref(task);
        }
        bool late = time_mono_ms() - start_ms >= WATCH_GRACE_MS;
        for (size_t i = 0; i < n; i++) {
            rows[i].lost_ms = rows[i].settled ? 0 : tm_watch_lost_ms(w, rows[i].id);
            rows[i].waiting = !rows[i].task && (late || rows[i].lost_ms > 0);
        }
        if (tty && !watch_signal) watch_draw(rows, n, true);
    }
    if (tty) {
        /* Drawn a last time, the cursor under the bars, so a stop leaves no bar to be
         * written over; then a stop signal ends the program as it would have. */
        watch_draw(rows, n, false);
        sigaction(SIGINT, &old_int, NULL);
        sigaction(SIGTERM, &old_term, NULL);
        atomic_store(&watch_waking, NULL); /* before the watch is freed */
        int sig = watch_signal;
        if (sig) {
            signal(sig, SIG_DFL);
            raise(sig);
        }
    }
    int exit = CLI_EXIT_OK;
    for (size_t i = 0; i < n; i++) {
        if (json && rows[i].task) cli_print_json_as(rows[i].task, JSON_COMPACT);
        if (rows[i].error[0]) fprintf(stderr, "taskmill watch: %s\n", rows[i].error);
        /* The worst outcome wins: unreachable, refused, not found, not completed. */
        if (rows[i].exit > exit) exit = rows[i].exit;
        json_decref(rows[i].task);
    }
    if (cli_output_flush()) exit = CLI_EXIT_OUTPUT; /* main says why */
    tm_watch_free(w);
    free(rows);
    free(ids);
    return exit;
}

static const char watch_usage[] =
    "usage: taskmill watch [--server URL] [--json] ID...\n"
    "  Follows tasks until each has ended: progress bars on a terminal, one line per\n"
    "  change otherwise; --json prints each task's final state as a JSON line.\n"
    "  An ID may be any unique prefix of at least 4 digits.\n"
    "  Exits 0 when every task completed, 1 when one failed or was cancelled.\n"
    "  Follows each task's event stream (SSE), or long-polls when the server has\n"
    "  none; TASKMILL_WATCH_MODE=sse|poll|auto (default auto) picks one.\n";

int cmd_watch(int argc, char **argv) {
    const char *server;
    bool json;
    int stop = cli_parse_args("watch", argc, argv, watch_usage, CLI_OPERANDS_SOME, &server, &json);
    if (stop >= 0) return stop;
    for (int i = optind; i < argc; i++) {
        if (strlen(argv[i]) > 200) {
            fprintf(stderr, "taskmill watch: '%.40s...' is not a task id\n", argv[i]);
            return CLI_EXIT_USAGE;
        }
    }
    struct tm_client *c = cli_client_new(server);
    size_t n = (size_t)(argc - optind);
    char(*resolved)[TM_ID_MAX] = xcalloc(n, sizeof *resolved);
    char **ids = xcalloc(n, sizeof *ids);
    /* A prefix that finds no task (or several) is said and left out; the
     * others are followed, and the worst outcome wins, as for cancel A B. */
    int rc = CLI_EXIT_OK;
    size_t found = 0;
    for (size_t i = 0; i < n; i++) {
        int r = cli_resolve_id("watch", c, argv[optind + (int)i], resolved[found]);
        if (r) {
            if (r > rc) rc = r;
            continue;
        }
        ids[found] = resolved[found];
        found++;
    }
    if (found) {
        int r = cli_watch_run(c, ids, found, json);
        if (r > rc) rc = r;
    }
    free(ids);
    free(resolved);
    tm_client_free(c);
    return rc;
}
