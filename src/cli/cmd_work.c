/*
 * cmd_work: `taskmill work --queue Q -- COMMAND ARGS...`, a worker that
 * runs any command for each task it claims.
 *
 * Each task claimed (long-poll) gets COMMAND started in a new process
 * group with the params on stdin and in TASKMILL_* variables; its stdout
 * and stderr are read without blocking, protocol lines (progress_line.h)
 * become heartbeats, other lines the log tail, and a timer heartbeats
 * every --heartbeat seconds whatever the output. Exit 0 completes the
 * task; another status fails it. A cancel in a heartbeat reply, or
 * SIGINT/SIGTERM/SIGHUP to the worker, sends SIGTERM to the command's group and
 * SIGKILL after --grace seconds; a stopping worker releases its tasks.
 * With --concurrency 1 one thread does all of this with the one-task
 * calls. With more, a claimer thread and a runner thread speak the batched
 * protocol for every task at once ("Batched mode" below). The main thread
 * waits for signals and signals the commands' groups itself (see
 * work_groups), so a stop reaches them at once whatever the server does;
 * the threads' clients have an abort hook (work_abort) that bounds every
 * request once the worker stops.
 * Threads share atomics, the read-only config, the groups and (batched)
 * the inbox under their locks. Messages go to stderr as
 * `taskmill work: ...`.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../common/task.h"
#include "../common/utf8.h"
#include "../common/xalloc.h"
#include "../server/v1_decode.h"
#include "cli.h"
#include "cli_client.h"
#include "progress_line.h"

extern char **environ;

#define WORK_LOG_LINES            20    /* lines of output kept as attributes.log_tail */
#define WORK_LOG_LINE_MAX         1000  /* bytes kept of one log line */
#define WORK_LINE_MAX             65536 /* a longer line is cut into pieces */
#define WORK_MESSAGES_MAX         100   /* the server's cap per heartbeat */
#define WORK_ITEMS_MAX            1000  /* the server's cap per heartbeat */
#define WORK_FLUSH_MS             250   /* reported lines go out at most this often */
#define WORK_CLAIM_WAIT_S         2     /* claim long-poll; bounds how long a stop takes */
#define WORK_DRAIN_MS             1000  /* output read after the command exits */
#define WORK_HEARTBEAT_MS         2000 /* default --heartbeat: how soon a cancel reaches a command */
#define WORK_SPAWN_BACKOFF_MAX_MS 30000  /* the longest pause after a command failed to start */
#define WORK_REPORT_TRIES         30     /* an end report's tries at least (work_report_again) */
#define WORK_SHOWN_IDS            64     /* recent ids a short id must tell apart */
#define WORK_ENV_STRING_MAX       131072 /* Linux's MAX_ARG_STRLEN: one NAME=VALUE and its NUL */
/* Once the worker stops, the longest a request other than a claim waits for its answer
 * (counted from the stop for one in flight then), and the time a report of a task's end
 * is tried again while the server cannot be reached: a server that does not answer
 * cannot keep a stopping worker past a typical 30 s grace of a supervisor. */
#define WORK_STOP_CALL_MS 5000
/* Once the worker stops, how long past its long-poll a claim in flight may take (work_abort). */
#define WORK_CLAIM_SLACK_MS 1000
/*
 * The longest a heartbeat request waits for its answer: a third of the
 * lease, at least WORK_HB_TIMEOUT_MIN_MS (a slow server is not a gone one)
 * and at most the client's own 60 s. A heartbeat given up is sent again at
 * once. One that the server does not answer (a connection hung in a proxy,
 * say) would otherwise hold the task's later heartbeats, and with several
 * slots every task's, for the client's minute, past a short lease: the
 * task would go to another worker while its command ran on for nothing.
 * Sent on time (at most a third of the lease after the last) and given up
 * a third of the lease later, a heartbeat leaves its retry a third.
 */
#define WORK_HB_TIMEOUT_MIN_MS 3000
#define WORK_HB_TIMEOUT_MAX_MS 60000
/*
 * A server that asks to slow down (429, or a 503, with Retry-After) is
 * waited for as long as it says, up to WORK_RETRY_AFTER_MAX_MS (a longer
 * wait is the server's mistake or an outage, and the worker looks again
 * after a minute); a 429 without Retry-After waits a second. The 429s
 * less than WORK_SLOW_EPISODE_MS apart are one episode, said once.
 */
#define WORK_RETRY_AFTER_MAX_MS 60000
#define WORK_SLOW_EPISODE_MS    60000
/* The longest --name in bytes is what the server takes for a claim's "worker". */
_Static_assert(TASK_WORKER_NAME_MAX == 128, "work_usage names the limit");

struct work_config {
    const char *server;
    const char *queue;
    const char **types;
    size_t ntypes;
    int concurrency;
    int lease_s;
    int heartbeat_ms;
    int heartbeat_timeout_ms; /* see WORK_HB_TIMEOUT_MIN_MS */
    int grace_s;
    int permanent_exit;
    int max_tasks;
    bool quiet;
    char worker[TASK_WORKER_NAME_MAX + 1];
    char **argv;
};

/* 0 running; 1 stop claiming, terminate commands, release tasks; 2 kill commands now. */
static atomic_int work_stop;
static _Atomic int64_t work_stop_ms; /* when work_stop left 0 (work_now_ms), or 0 */
static atomic_int work_started;      /* tasks claimed, for --max-tasks */
static atomic_int work_running;      /* slot threads still running */
static atomic_int work_fatal;        /* an exit code that ends the worker, or 0 */
/* 1 while the server cannot be reached: the slots say so once, and once when it is back. */
static atomic_int work_server_down;
/* The last 429 (work_now_ms), or 0: work_server_slow says a new episode once. */
static _Atomic int64_t work_slow_last_ms;
/* No claim before then (work_now_ms): the server asked the worker to slow down. */
static _Atomic int64_t work_slow_until_ms;
static bool work_tty; /* stderr is a terminal: lines end by erasing the rest of the row */
/* The signals that stop the worker: SIGINT, SIGTERM and (unless ignored at start, as under
 * nohup) SIGHUP. Every thread blocks them; the main thread takes them. Set before the
 * threads start. */
static sigset_t work_stop_signals;

/*
 * The process groups of the commands started and not yet let go, and every
 * signal sent to them: from the thread running a command (a cancel, a lost
 * lease, its grace over) and from the main thread, which at a stop signal
 * sends SIGTERM to every command at once, SIGKILL once a group's grace is
 * over and at a second signal, since the thread running them may be
 * waiting on a server (each signal at most once per group, whoever sends
 * it). A signal goes to the whole group, so also to what the command
 * started that is still in it, even after the command itself has exited.
 */
struct work_group {
    pid_t pgid;      /* the command's pid */
    int64_t term_ms; /* when SIGTERM went to the group, or 0 */
    bool killed;     /* SIGKILL went */
};
static pthread_mutex_t work_groups_lock = PTHREAD_MUTEX_INITIALIZER;
static struct work_group *work_groups;
static size_t work_ngroups, work_groups_cap;

/* Notes a command's group, under the lock (held since the command was started: see
 * work_reap_orphans). */
static void work_group_add_locked(pid_t pgid) {
    if (work_ngroups == work_groups_cap) {
        work_groups_cap = work_groups_cap ? 2 * work_groups_cap : 16;
        work_groups = xrealloc(work_groups, work_groups_cap * sizeof *work_groups);
    }
    work_groups[work_ngroups++] = (struct work_group){.pgid = pgid};
}

static void work_group_remove(pid_t pgid) {
    pthread_mutex_lock(&work_groups_lock);
    for (size_t i = 0; i < work_ngroups; i++) {
        if (work_groups[i].pgid != pgid) continue;
        work_groups[i] = work_groups[--work_ngroups];
        break;
    }
    pthread_mutex_unlock(&work_groups_lock);
}

/* The group of pgid, under the lock; NULL when it is not one of ours. */
static struct work_group *work_group_find(pid_t pgid) {
    for (size_t i = 0; i < work_ngroups; i++)
        if (work_groups[i].pgid == pgid) return &work_groups[i];
    return NULL;
}

/* SIGTERM to pgid's group unless it has had it; returns when it went (0: not ours). */
static int64_t work_group_term(pid_t pgid, int64_t now) {
    pthread_mutex_lock(&work_groups_lock);
    struct work_group *g = work_group_find(pgid);
    if (g && !g->term_ms) {
        kill(-pgid, SIGTERM);
        g->term_ms = now;
    }
    int64_t t = g ? g->term_ms : 0;
    pthread_mutex_unlock(&work_groups_lock);
    return t;
}

/* When SIGTERM went to pgid's group, or 0. */
static int64_t work_group_termed(pid_t pgid) {
    pthread_mutex_lock(&work_groups_lock);
    struct work_group *g = work_group_find(pgid);
    int64_t t = g ? g->term_ms : 0;
    pthread_mutex_unlock(&work_groups_lock);
    return t;
}

/* SIGKILL to pgid's group unless it has had it. */
static void work_group_kill(pid_t pgid) {
    pthread_mutex_lock(&work_groups_lock);
    struct work_group *g = work_group_find(pgid);
    if (g && !g->killed) {
        kill(-pgid, SIGKILL);
        g->killed = true;
    }
    pthread_mutex_unlock(&work_groups_lock);
}

/*
 * The first stop signal, from the main thread: SIGTERM to every command
 * still running. A command that has exited already (not yet reaped) is
 * left to its thread, which reports it as it ended; waitid with WNOWAIT
 * looks without reaping it.
 */
static void work_groups_stop(int64_t now) {
    pthread_mutex_lock(&work_groups_lock);
    for (size_t i = 0; i < work_ngroups; i++) {
        struct work_group *g = &work_groups[i];
        siginfo_t si;
        memset(&si, 0, sizeof si);
        if (g->term_ms || waitid(P_PID, (id_t)g->pgid, &si, WEXITED | WNOHANG | WNOWAIT) != 0 ||
            si.si_pid)
            continue;
        kill(-g->pgid, SIGTERM);
        g->term_ms = now;
    }
    pthread_mutex_unlock(&work_groups_lock);
}

/*
 * From the main thread, when the worker is PID 1 (the first process of a
 * container, with no init before it): reaps the processes orphaned in its
 * namespace that have ended, which come to it and which nobody else
 * reaps: what a command left behind, or a lingering process killed after
 * the grace. They piled up as zombies, and a group of zombies still counts
 * as alive (work_run_lingers). A command's own process is left to its
 * thread, which needs its status: it is registered under the lock from
 * before it was started (work_spawn), so none is taken for an orphan.
 */
static void work_reap_orphans(void) {
    pthread_mutex_lock(&work_groups_lock);
    for (;;) {
        siginfo_t si;
        memset(&si, 0, sizeof si);
        if (waitid(P_ALL, 0, &si, WEXITED | WNOHANG | WNOWAIT) != 0 || !si.si_pid) break;
        if (work_group_find(si.si_pid)) break; /* a command's: its thread reaps it */
        waitpid(si.si_pid, NULL, WNOHANG);
    }
    pthread_mutex_unlock(&work_groups_lock);
}

/* From the main thread: SIGKILL to every group whose grace since its SIGTERM is over, or
 * (all, at a second stop signal) to every group. */
static void work_groups_kill(int64_t now, int64_t grace_ms, bool all) {
    pthread_mutex_lock(&work_groups_lock);
    for (size_t i = 0; i < work_ngroups; i++) {
        struct work_group *g = &work_groups[i];
        if (g->killed || !(all || (g->term_ms && now - g->term_ms >= grace_ms))) continue;
        kill(-g->pgid, SIGKILL);
        g->killed = true;
    }
    pthread_mutex_unlock(&work_groups_lock);
}

/* The ids shown lately, so that a short id tells a task apart from them. */
static pthread_mutex_t work_shown_lock = PTHREAD_MUTEX_INITIALIZER;
static char work_shown[WORK_SHOWN_IDS][TM_ID_MAX];
static size_t work_shown_n, work_shown_next;

static int64_t work_now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Sets the stop level (1 or 2), noting when the worker began to stop. */
static void work_stop_at(int level) {
    int64_t none = 0;
    atomic_compare_exchange_strong(&work_stop_ms, &none, work_now_ms());
    atomic_store(&work_stop, level);
}

/*
 * What the request in progress on a thread's client is, for the client's
 * abort hook, work_abort (a thread's client is used by that thread alone;
 * each sets its own client's hook to its own work_call).
 */
struct work_call {
    bool claim;       /* a claim (its long-poll is WORK_CLAIM_WAIT_S) */
    int64_t start_ms; /* when the request began */
};
static _Thread_local struct work_call work_call;

/* Notes that the calling thread starts a request: a claim, or another; start_ms is when it
 * began (the first try, for a report sent again). */
static void work_call_begin(bool claim, int64_t start_ms) {
    work_call.claim = claim;
    work_call.start_ms = start_ms;
}

/*
 * The abort hook of every client of the worker. Nothing is abandoned while
 * it runs. Once it stops, a claim begun since is abandoned at once (before
 * it is sent, mostly); one in flight at the stop, once its long-poll is
 * over and the server has had WORK_CLAIM_SLACK_MS more to answer (3 s
 * from the claim's start at most). Not sooner, though the server takes
 * back a claim whose connection closed before its answer left (a parked
 * one takes nothing, a task handed to it goes back: docs/api.md 7.7): an
 * answer already sent (on the network, held by a proxy, in this socket
 * unread) is not taken back, and its task would stay leased to nobody
 * until its lease ran out (a retry counted). Answered, it is handed back
 * unstarted. Any other
 * request is abandoned once it has waited WORK_STOP_CALL_MS since it began
 * or since the stop, whichever is later.
 */
static bool work_abort(void *arg) {
    const struct work_call *call = arg;
    if (!atomic_load(&work_stop)) return false;
    int64_t stop_ms = atomic_load(&work_stop_ms), now = work_now_ms();
    if (call->claim)
        return call->start_ms >= stop_ms ||
               now - call->start_ms >= WORK_CLAIM_WAIT_S * 1000 + WORK_CLAIM_SLACK_MS;
    return now - (call->start_ms > stop_ms ? call->start_ms : stop_ms) >= WORK_STOP_CALL_MS;
}

/* A client of the worker's server for the calling thread, with the abort hook. */
static struct tm_client *work_client_new(const struct work_config *cfg) {
    struct tm_client *c = cli_client_new(cfg->server);
    tm_client_set_abort(c, work_abort, &work_call);
    return c;
}

/*
 * Whether the end of a task first reported at first_ms may be sent again
 * after the server could not be reached: while the worker runs, yes (the
 * caller counts the tries); once it stops, only within WORK_STOP_CALL_MS
 * of first_ms or of the stop, whichever is later; after a second stop
 * signal, no.
 */
static bool work_may_retry(int64_t first_ms, int64_t now) {
    int stop = atomic_load(&work_stop);
    if (stop >= 2) return false;
    if (!stop) return true;
    int64_t from = atomic_load(&work_stop_ms);
    if (first_ms > from) from = first_ms;
    return now - from < WORK_STOP_CALL_MS;
}

/* What the log says of a request the abort hook abandoned (the time is WORK_STOP_CALL_MS). */
#define WORK_ABANDONED \
    "no answer within 5 s while stopping (the task comes back when its lease runs out)"
_Static_assert(WORK_STOP_CALL_MS == 5000, "WORK_ABANDONED names the time");

static void work_sleep_ms(int ms) {
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) && errno == EINTR) {
    }
}

/*
 * Appends the n bytes at p to b as a log that is not a terminal (journald,
 * a file) may hold them: a C0 control but tab, DEL, a C1 control (U+0080
 * to U+009F: "\xc2\x9b" is CSI) and a byte that starts no well-formed
 * UTF-8 character are written as \xNN, each byte; the rest as it is. One
 * raw escape or bell made journald keep the whole line as binary data.
 */
static void work_escape(struct buf *b, const char *p, size_t n) {
    const char *end = p + n;
    while (p < end) {
        unsigned char ch = (unsigned char)*p;
        size_t k = utf8_char_len(p, end);
        bool c1 = k == 2 && ch == 0xc2 && (unsigned char)p[1] <= 0x9f;
        if (k == 0 || (ch < 0x20 && ch != '\t') || ch == 0x7f || c1) {
            if (k == 0) k = 1;
            for (size_t i = 0; i < k; i++)
                buf_printf(b, "\\x%02x", (unsigned char)p[i]);
        } else {
            for (size_t i = 0; i < k; i++)
                buf_putc(b, p[i]);
        }
        p += k;
    }
}

static void work_vlog(const char *fmt, va_list ap) {
    char line[1200];
    vsnprintf(line, sizeof line, fmt, ap);
    /* On a terminal, "\033[K" clears what a `watch` drew on the row (docs/cli.md); elsewhere
     * what the line quotes (the server's message, a command's last line on a failure) is
     * escaped as the echo escapes it. */
    if (work_tty) {
        /* The worker's own line, not a command's echo: what it quotes (the server's message,
         * a command's last line) is printed as task text is, a control character as '?'. */
        char *clean = cli_printable_copy(line);
        fprintf(stderr, "taskmill work: %s\033[K\n", clean ? clean : line);
        free(clean);
        return;
    }
    struct buf b;
    buf_init(&b);
    work_escape(&b, line, strlen(line));
    fprintf(stderr, "taskmill work: %.*s\n", (int)b.len, b.p ? b.p : "");
    buf_release(&b);
}

/* Says what went wrong, or came right again, --quiet or not: a quiet worker under a
 * supervisor must still say in its log that it lost the server or a lease. */
static void work_log(const struct work_config *cfg, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void work_log(const struct work_config *cfg, const char *fmt, ...) {
    (void)cfg;
    va_list ap;
    va_start(ap, fmt);
    work_vlog(fmt, ap);
    va_end(ap);
}

/* Says what the worker does as a matter of course (a task claimed, ended; a stop), unless
 * --quiet. */
static void work_note(const struct work_config *cfg, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void work_note(const struct work_config *cfg, const char *fmt, ...) {
    if (cfg->quiet) return;
    va_list ap;
    va_start(ap, fmt);
    work_vlog(fmt, ap);
    va_end(ap);
}

/*
 * The server went away (down true) or answered again: one line for each
 * change, whichever slot saw it first, not one per failed call.
 */
static void work_server_state(const struct work_config *cfg, struct tm_client *c, bool down) {
    if (down) {
        if (atomic_exchange(&work_server_down, 1) == 0)
            work_log(cfg, "lost the server: %s; retrying (running commands go on)",
                     tm_client_last_error(c)->message);
    } else if (atomic_exchange(&work_server_down, 0) == 1) {
        work_log(cfg, "the server answers again");
    }
}

/* How long, in ms, before a claim or a report may go: the server asked to slow
 * down (0: now). */
static int work_slow_hold_ms(void) {
    int64_t ms = atomic_load(&work_slow_until_ms) - work_now_ms();
    return ms > 0 ? (int)ms : 0;
}

/* Whether a call failed because the server refused the report it carried as such: invalid
 * (400), or larger than the server (or a proxy before it) takes (413): sent again as it
 * is, it would be refused for good while the lease ran out. */
static bool work_is_report_refusal(int rc) {
    return rc == TM_CLIENT_EINVALID || rc == TM_CLIENT_ETOOLARGE;
}

/* Whether a call failed because the server is unreachable or broken (not a refusal, nor a
 * 429: the server answers, and asks to slow down). */
static bool work_is_outage(int rc) {
    return rc == TM_CLIENT_ECONNECT || rc == TM_CLIENT_ESERVER;
}

/* How long to wait before the call of c that just failed goes again: the server's
 * Retry-After (a 429's or a 503's), at most WORK_RETRY_AFTER_MAX_MS; at least min_ms. */
static int work_retry_ms(const struct tm_client *c, int min_ms) {
    int64_t ms = tm_client_last_error(c)->retry_after_ms;
    if (ms > WORK_RETRY_AFTER_MAX_MS) ms = WORK_RETRY_AFTER_MAX_MS;
    return ms > min_ms ? (int)ms : min_ms;
}

/*
 * The server refused a call of c for rate (429): it answers (a lost
 * server is back), and asks to wait. Says so once per episode, and holds
 * every claim back until the wait is over. Returns the wait in ms: the
 * Retry-After (work_retry_ms), a second when it gave none.
 */
static int work_server_slow(const struct work_config *cfg, struct tm_client *c) {
    work_server_state(cfg, c, false);
    int wait_ms = work_retry_ms(c, 1000);
    int64_t now = work_now_ms(), last = atomic_exchange(&work_slow_last_ms, now);
    if (!last || now - last > WORK_SLOW_EPISODE_MS)
        work_log(cfg,
                 "the server asks to slow down (too many requests: %s); waiting %d s before "
                 "each retry, %s (running commands go on)",
                 tm_client_last_error(c)->message, (wait_ms + 999) / 1000,
                 tm_client_last_error(c)->retry_after_ms > 0 ? "as its Retry-After says"
                                                             : "as it gave no Retry-After");
    int64_t until = now + wait_ms, cur = atomic_load(&work_slow_until_ms);
    while (cur < until && !atomic_compare_exchange_weak(&work_slow_until_ms, &cur, until)) {
    }
    return wait_ms;
}

/*
 * A call's failure as the worker acts on it: a 404 or 409 that is not the
 * server's own answer (no error code in a JSON body: a proxy or an
 * ingress in front of a server that is away or being replaced) is the
 * server not answering, as a 502 from it is; taken as the server saying
 * the task or its lease is gone, it stopped the command and reported
 * nothing, or gave up the report of a task's end.
 */
static int work_rc(const struct tm_client *c, int rc) {
    if ((rc == TM_CLIENT_ENOTFOUND || rc == TM_CLIENT_ECONFLICT) &&
        !tm_client_last_error(c)->slug[0])
        return TM_CLIENT_ESERVER;
    return rc;
}

/* Records id as shown; returns how many of its digits tell it from the ids shown lately. */
static int work_short_id_len(const char *id) {
    pthread_mutex_lock(&work_shown_lock);
    char *ids[WORK_SHOWN_IDS + 1];
    size_t n = 0;
    for (size_t i = 0; i < work_shown_n; i++)
        ids[n++] = work_shown[i];
    ids[n++] = (char *)id;
    int len = cli_short_id_len(ids, n, n - 1);
    snprintf(work_shown[work_shown_next], TM_ID_MAX, "%s", id);
    work_shown_next = (work_shown_next + 1) % WORK_SHOWN_IDS;
    if (work_shown_n < WORK_SHOWN_IDS) work_shown_n++;
    pthread_mutex_unlock(&work_shown_lock);
    return len;
}

/* A JSON string of n bytes, cleaned as utf8_scrub_n does. */
static json_t *work_json_text(const char *p, size_t n) {
    /* The server refuses NUL in strings, and jansson refuses invalid UTF-8. */
    char *copy = xmalloc(n + 1);
    memcpy(copy, p, n);
    copy[n] = '\0';
    utf8_scrub_n(copy, n);
    json_t *s = json_stringn(copy, n);
    free(copy);
    return s ? s : json_string("");
}

/* One stream of the command's output, cut into lines. */
struct work_stream {
    int fd; /* -1 at EOF */
    char *buf;
    size_t len;
};

/* The state of one task being run. */
struct work_run {
    const struct work_config *cfg;
    struct tm_client *c;
    char id[TM_ID_MAX];
    int short_len; /* digits of id shown before its output lines */
    char token[TM_LEASE_TOKEN_MAX];
    pid_t pid;
    int in_fd; /* -1 once the params are written */
    char *in_data;
    size_t in_len, in_off;
    struct work_stream out, err;

    /* What the next heartbeat reports. */
    bool dirty;
    bool has_ratio;
    double ratio;
    char *message;
    bool has_counts;
    int64_t processed, total;
    json_t *items, *messages, *attributes;
    char *log[WORK_LOG_LINES];
    size_t log_n;
    bool log_dirty;
    /* The server refused the last report itself (400: more items than a
     * task holds, say): it was dropped, and the next call reports nothing,
     * so that the lease is kept and the end is taken. */
    bool bare;
    json_t *result;

    int64_t last_hb_ms, next_hb_ms;
    int64_t hold_ms; /* no heartbeat before then, not even for new output: the server asked */
    /* When the last heartbeat the server answered was sent (the claim, at first): the lease
     * holds until at least lease_s after it. */
    int64_t lease_ok_ms;
    bool lapse_said; /* work_run_unanswered said the lease may have run out */
    bool cancel_requested, lease_lost, stopped_by_worker;
    int64_t term_ms; /* when SIGTERM went to the command, or 0 */
    bool killed;
    bool exited;
    int status;
    int64_t exit_ms;

    /* Batched mode: the run's end on its way to the server. */
    bool start_failed;       /* the command could not start: the task is handed back */
    int report_tries;        /* reports the server could not take */
    int64_t report_first_ms; /* when it was first sent, or 0 */
    int64_t report_after_ms; /* when to send it again */
    /* The claimed task, while its command waits for an older run of the same task to be gone
     * (work_batch_supersede); NULL once started, or when it never waited. */
    json_t *task;
};

/*
 * Echoes a line of a command's output on the worker's standard error,
 * after its task's short id. On a terminal as it is (colours and all);
 * elsewhere (journald, a file) as work_escape writes it.
 */
static void work_echo(const struct work_run *r, const char *p, size_t n) {
    if (work_tty) {
        fprintf(stderr, "[%.*s] %.*s\033[K\n", r->short_len, r->id, (int)n, p);
        return;
    }
    struct buf b;
    buf_init(&b);
    work_escape(&b, p, n);
    fprintf(stderr, "[%.*s] %.*s\n", r->short_len, r->id, (int)b.len, b.p ? b.p : "");
    buf_release(&b);
}

static void work_run_log_line(struct work_run *r, const char *p, size_t n, bool forward) {
    if (n > WORK_LOG_LINE_MAX) n = WORK_LOG_LINE_MAX;
    if (r->log_n == WORK_LOG_LINES) {
        free(r->log[0]);
        memmove(r->log, r->log + 1, (WORK_LOG_LINES - 1) * sizeof *r->log);
        r->log_n--;
    }
    char *line = xmalloc(n + 1);
    memcpy(line, p, n);
    line[n] = '\0';
    utf8_scrub_n(line, n); /* kept whole past a NUL, and good for JSON */
    r->log[r->log_n++] = line;
    r->log_dirty = r->dirty = true;
    if (forward && !r->cfg->quiet) work_echo(r, p, n);
}

static void work_run_message(struct work_run *r, const char *level, json_t *text) {
    if (json_array_size(r->messages) >= WORK_MESSAGES_MAX) json_array_remove(r->messages, 0);
    json_array_append_new(r->messages, json_pack("{s:s, s:o}", "level", level, "text", text));
    r->dirty = true;
}

/*
 * Narrows a line of the command's output (*p, *n bytes, its "\n" or
 * "\r\n" included if any) to what a terminal shows of it: without its
 * end, and only what follows its last '\r'. A progress bar drawn over
 * itself ("10%\r20%\r...\rdone") is the line it ends as, not every
 * state it went through, '\r's and all, in the log tail, the error and
 * the worker's own log (where journald showed it as a blob).
 */
static void work_line_shown(const char **p, size_t *n) {
    if (*n && (*p)[*n - 1] == '\n') (*n)--;
    while (*n && (*p)[*n - 1] == '\r')
        (*n)--;
    const char *cr = memrchr(*p, '\r', *n);
    if (cr) {
        *n -= (size_t)(cr + 1 - *p);
        *p = cr + 1;
    }
}

/* Applies one line of the command's standard output. */
static void work_run_stdout_line(struct work_run *r, const char *p, size_t n) {
    work_line_shown(&p, &n);
    struct progress_line pl;
    progress_line_parse(p, n, &pl);
    char msg[WORK_LOG_LINE_MAX + 1];
    snprintf(msg, sizeof msg, "%.*s", (int)pl.text.n, pl.text.p);
    utf8_scrub_n(msg, strlen(msg));
    switch (pl.kind) {
    case PROGRESS_LINE_TEXT:
        if (pl.error) work_log(r->cfg, "task '%s': %s", r->id, pl.error);
        work_run_log_line(r, pl.text.p, pl.text.n, true);
        return;
    case PROGRESS_LINE_PROGRESS:
        r->has_ratio = true;
        r->ratio = pl.ratio;
        if (pl.text.n) {
            free(r->message);
            r->message = xstrdup(msg);
        }
        break;
    case PROGRESS_LINE_ITEMS:
        r->has_counts = true;
        r->processed = pl.processed;
        r->total = pl.total;
        if (pl.text.n) {
            free(r->message);
            r->message = xstrdup(msg);
        }
        break;
    case PROGRESS_LINE_ITEM: {
        json_t *name = work_json_text(pl.name.p, pl.name.n), *it;
        size_t i;
        json_array_foreach(r->items, i, it) {
            if (json_equal(json_object_get(it, "name"), name)) {
                json_array_remove(r->items, i);
                break;
            }
        }
        if (json_array_size(r->items) >= WORK_ITEMS_MAX) json_array_remove(r->items, 0);
        it = json_pack("{s:o, s:f}", "name", name, "progress", pl.ratio);
        if (pl.text.n) json_object_set_new(it, "message", work_json_text(pl.text.p, pl.text.n));
        json_array_append_new(r->items, it);
        break;
    }
    case PROGRESS_LINE_MESSAGE:
        work_run_message(r, pl.level, work_json_text(pl.text.p, pl.text.n));
        break;
    case PROGRESS_LINE_RESULT: {
        json_t *v =
            json_loadb(pl.text.p, pl.text.n, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, NULL);
        if (!v) {
            work_log(r->cfg, "task '%s': 'result' is not JSON; kept as output", r->id);
            work_run_log_line(r, p, n, true);
            return;
        }
        json_decref(r->result);
        r->result = v;
        return; /* sent with the completion */
    }
    case PROGRESS_LINE_ATTRIBUTE: {
        json_t *v =
            json_loadb(pl.text.p, pl.text.n, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, NULL);
        if (!v) v = work_json_text(pl.text.p, pl.text.n);
        char key[PROGRESS_ATTRIBUTE_KEY_MAX + 1]; /* progress_line_parse refused a longer one */
        snprintf(key, sizeof key, "%.*s", (int)pl.name.n, pl.name.p);
        if (json_object_set_new(r->attributes, key, v)) return;
        break;
    }
    }
    r->dirty = true;
}

/* The report of everything not yet sent; attrs is set to a new object the caller frees. */
static void work_run_report(struct work_run *r, struct tm_report *rep, json_t **attrs) {
    memset(rep, 0, sizeof *rep);
    if (r->bare) {
        *attrs = json_object();
        return;
    }
    rep->has_ratio = r->has_ratio && !r->has_counts;
    rep->ratio = r->ratio;
    rep->message = r->message;
    rep->has_counts = r->has_counts;
    rep->processed = r->processed;
    rep->pending = r->total - r->processed;
    rep->items = json_array_size(r->items) ? r->items : NULL;
    rep->messages = json_array_size(r->messages) ? r->messages : NULL;
    *attrs = json_deep_copy(r->attributes);
    if (r->log_dirty) {
        size_t len = 0;
        for (size_t i = 0; i < r->log_n; i++)
            len += strlen(r->log[i]) + 1;
        char *tail = xmalloc(len + 1), *p = tail;
        for (size_t i = 0; i < r->log_n; i++)
            p += sprintf(p, "%s%s", i ? "\n" : "", r->log[i]);
        *p = '\0';
        json_object_set_new(*attrs, "log_tail", work_json_text(tail, strlen(tail)));
        free(tail);
    }
    if (json_object_size(*attrs)) rep->attributes = *attrs;
}

/* Forgets the items, messages, attributes and log tail not yet sent. */
static void work_run_drop_lists(struct work_run *r) {
    json_array_clear(r->items);
    json_array_clear(r->messages);
    json_object_clear(r->attributes);
    r->log_dirty = false;
}

/* After a report went through: the lists were delivered (a bare one
 * delivered none: what came since the refusal goes with the next). */
static void work_run_reported(struct work_run *r) {
    if (r->bare) {
        r->bare = false;
        return;
    }
    work_run_drop_lists(r);
    r->dirty = false;
}

/* The server refused a report as such (why): its lists are dropped and the
 * next call goes bare. Returns false when it was bare already (nothing to
 * drop: the refusal is not the report's). */
static bool work_run_report_refused(struct work_run *r, const char *call, const char *why) {
    if (r->bare) return false;
    work_log(r->cfg,
             "task '%s': %s refused: %s; its report (items, messages, attributes) is dropped",
             r->id, call, why);
    work_run_drop_lists(r);
    r->bare = true;
    return true;
}

/* Whether anything of the command's process group is left (the command, reaped or not, or
 * a process it started). */
static bool work_run_group_alive(const struct work_run *r) {
    return kill(-r->pid, 0) == 0 || errno == EPERM;
}

/* What a cancel or a lost lease does to r's command, for the log: a run
 * that waits, unstarted, for an older copy to exit has none to stop. */
static const char *work_run_stopping(const struct work_run *r) {
    return r->pid > 0 ? "stopping the command" : "its command will not start";
}

/* SIGTERM to the command's group (work_groups), unless the main thread sent it already. */
static void work_run_terminate(struct work_run *r, int64_t now) {
    if (r->term_ms || r->exited) return;
    r->term_ms = work_group_term(r->pid, now);
}

/*
 * When a heartbeat of r that the server asked to wait wait_ms for (at now)
 * goes again: then, unless its lease would lapse first. A heartbeat sent
 * a heartbeat's timeout before the lease's end (counted from the last one
 * answered) may still keep it, so it goes by then, though sooner than the
 * server asked, and never less than a second after the last.
 */
static int64_t work_lease_last_call(const struct work_run *r) {
    return r->lease_ok_ms + r->cfg->lease_s * 1000LL - r->cfg->heartbeat_timeout_ms;
}

static int64_t work_hb_retry_at(const struct work_run *r, int64_t now, int wait_ms) {
    int64_t at = now + wait_ms;
    int64_t lapse = work_lease_last_call(r);
    if (at > lapse) at = lapse > now + 1000 ? lapse : now + 1000;
    return at;
}

/* How long the report of r's end waits for what the server asked (wait_ms), so that it
 * still goes while the lease holds (work_hb_retry_at): nothing heartbeats a run that ended. */
static int work_report_wait_ms(const struct work_run *r, int wait_ms) {
    if (wait_ms <= 0) return 0;
    int64_t now = work_now_ms();
    return (int)(work_hb_retry_at(r, now, wait_ms) - now);
}

/* A heartbeat of r was answered, sent at sent_ms: the lease holds for lease_s from then. */
static void work_run_answered(struct work_run *r, int64_t sent_ms) {
    if (r->lapse_said)
        work_log(r->cfg, "task '%s': a heartbeat is answered again: the lease holds", r->id);
    r->lease_ok_ms = sent_ms;
    r->lapse_said = false;
}

/*
 * A heartbeat of r got no answer that says what became of the lease (the
 * server not answering, or a refusal of another kind): says once when none
 * has been answered for the lease's length, so that the server may have
 * given the task to another worker. The command goes on: the server, once
 * it answers, says whether the lease is gone (a lease past its time is
 * kept until the server's sweep takes it back). A run that waits,
 * unstarted, for an older copy to exit has no command yet, and says so.
 */
static void work_run_unanswered(struct work_run *r, int64_t now) {
    if (r->lapse_said || now - r->lease_ok_ms < r->cfg->lease_s * 1000LL) return;
    r->lapse_said = true;
    work_log(r->cfg,
             "task '%s': no heartbeat answered for %d s, the length of its lease: the server may "
             "give the task to another worker (%s until the server says the lease is gone)",
             r->id, r->cfg->lease_s,
             r->pid > 0 ? "the command goes on"
                        : "its command has not started: it waits for the earlier run to exit");
}

static void work_run_heartbeat(struct work_run *r, int64_t now) {
    struct tm_report rep;
    json_t *attrs;
    work_run_report(r, &rep, &attrs);
    struct tm_heartbeat_reply reply;
    work_call_begin(false, work_now_ms());
    tm_client_set_timeout(r->c, r->cfg->heartbeat_timeout_ms);
    int rc = work_rc(r->c, tm_heartbeat(r->c, r->id, r->token, 0, &rep, &reply));
    tm_client_set_timeout(r->c, 0);
    json_decref(attrs);
    r->last_hb_ms = now;
    r->next_hb_ms = now + r->cfg->heartbeat_ms;
    if (rc == 0) {
        work_server_state(r->cfg, r->c, false);
        work_run_answered(r, now);
        work_run_reported(r);
        if (reply.cancel_requested && !r->cancel_requested) {
            r->cancel_requested = true;
            work_note(r->cfg, "task '%s': cancel requested; %s", r->id, work_run_stopping(r));
            work_run_terminate(r, now);
        }
        return;
    }
    if (rc == TM_CLIENT_ELEASE || rc == TM_CLIENT_ENOTFOUND || rc == TM_CLIENT_ECONFLICT) {
        r->lease_lost = true;
        work_log(r->cfg, "task '%s': lease lost (%s); %s", r->id,
                 tm_client_last_error(r->c)->message, work_run_stopping(r));
        work_run_terminate(r, now);
        return;
    }
    /* Abandoned (stopping, no answer): the end of the task says what became of it. */
    bool abandoned = rc == TM_CLIENT_EABORTED;
    int wait_ms = 0; /* what the server asked to wait (429, or 503 with Retry-After) */
    if (rc == TM_CLIENT_ERATE) {
        wait_ms = work_server_slow(r->cfg, r->c);
    } else if (work_is_outage(rc)) {
        work_server_state(r->cfg, r->c, true);
        wait_ms = work_retry_ms(r->c, 0);
    } else if (!abandoned &&
               (!work_is_report_refusal(rc) ||
                !work_run_report_refused(r, "heartbeat", tm_client_last_error(r->c)->message))) {
        work_log(r->cfg, "task '%s': heartbeat refused: %s", r->id,
                 tm_client_last_error(r->c)->message);
    }
    work_run_unanswered(r, work_now_ms());
    if (wait_ms > 0)
        r->next_hb_ms = r->hold_ms = work_hb_retry_at(r, work_now_ms(), wait_ms);
    else if (r->next_hb_ms > now + 1000)
        r->next_hb_ms = now + 1000;
}

/* Applies one line of the command's standard error (n bytes, its '\n' or "\r\n" included
 * if any): output, as it shows on a terminal (work_line_shown). */
static void work_run_stderr_line(struct work_run *r, const char *p, size_t n) {
    work_line_shown(&p, &n);
    work_run_log_line(r, p, n, true);
}

/* Reads what is there; processes whole lines (and the rest at EOF). */
static void work_stream_read(struct work_run *r, struct work_stream *s, bool is_stdout) {
    char chunk[8192];
    ssize_t got = read(s->fd, chunk, sizeof chunk);
    if (got < 0 && (errno == EAGAIN || errno == EINTR)) return;
    if (got <= 0) {
        if (s->len) {
            if (is_stdout)
                work_run_stdout_line(r, s->buf, s->len);
            else
                work_run_stderr_line(r, s->buf, s->len);
        }
        s->len = 0;
        close(s->fd);
        s->fd = -1;
        return;
    }
    s->buf = xrealloc(s->buf, s->len + (size_t)got + 1);
    memcpy(s->buf + s->len, chunk, (size_t)got);
    s->len += (size_t)got;
    size_t start = 0;
    for (size_t i = 0; i < s->len; i++) {
        if (s->buf[i] != '\n' && i - start < WORK_LINE_MAX) continue;
        size_t n = i - start + (s->buf[i] == '\n');
        if (is_stdout)
            work_run_stdout_line(r, s->buf + start, n);
        else
            work_run_stderr_line(r, s->buf + start, n);
        start += n;
        i = start - 1;
    }
    memmove(s->buf, s->buf + start, s->len - start);
    s->len -= start;
}

/* "TASKMILL_PARAM_" + KEY upper-cased, other characters '_'. */
static char *work_param_env(const char *key, const json_t *v) {
    char *val = json_is_string(v)
                    ? xstrdup(json_string_value(v))
                    : json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY | JSON_REAL_PRECISION(15));
    if (!val) val = xstrdup("");
    size_t n = strlen(key) + strlen(val) + 32;
    char *e = xmalloc(n);
    char *p = e + sprintf(e, "TASKMILL_PARAM_");
    for (const char *k = key; *k; k++) {
        char ch = *k;
        if (ch >= 'a' && ch <= 'z') ch = (char)(ch - 'a' + 'A');
        if (!((ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9'))) ch = '_';
        *p++ = ch;
    }
    sprintf(p, "=%s", val);
    free(val);
    return e;
}

static char *work_env_pair(const char *name, const char *value) {
    size_t n = strlen(name) + strlen(value ? value : "") + 2;
    char *e = xmalloc(n);
    snprintf(e, n, "%s=%s", name, value ? value : "");
    return e;
}

/*
 * Whether the param variable e goes into the environment of run r: not when params are
 * left out (with_params false), nor when it passes the kernel's limit on one variable
 * (exec fails with E2BIG then, whatever the rest). Says which one is left out; frees it.
 */
static bool work_env_keep(const struct work_run *r, char *e, bool with_params) {
    size_t len = strlen(e);
    if (with_params && len < WORK_ENV_STRING_MAX) return true;
    if (with_params)
        work_log(r->cfg,
                 "task '%s': %.*s is left out of the command's environment: %zu bytes, past the "
                 "%d a variable may hold (the params are on its standard input)",
                 r->id, (int)strcspn(e, "="), e, len, WORK_ENV_STRING_MAX - 1);
    free(e);
    return false;
}

/* The command's environment: ours first (getenv takes the first match), then the worker's.
 * with_params false leaves out TASKMILL_PARAMS and every TASKMILL_PARAM_<KEY>. */
static char **work_env(const struct work_run *r, const json_t *task, bool with_params) {
    const struct work_config *cfg = r->cfg;
    const char *params = r->in_data;
    const json_t *p = json_object_get(task, "params");
    size_t n = 0, nenv = 0;
    while (environ[nenv])
        nenv++;
    char **env = xcalloc(nenv + json_object_size(p) + 16, sizeof *env);
    char attempt[32];
    snprintf(attempt, sizeof attempt, "%lld",
             (long long)json_integer_value(json_object_get(task, "attempt")));
    env[n++] = work_env_pair("TASKMILL_TASK_ID", json_string_value(json_object_get(task, "id")));
    env[n++] =
        work_env_pair("TASKMILL_TASK_TYPE", json_string_value(json_object_get(task, "type")));
    env[n++] =
        work_env_pair("TASKMILL_TASK_NAME", json_string_value(json_object_get(task, "name")));
    env[n++] = work_env_pair("TASKMILL_QUEUE", cfg->queue);
    env[n++] = work_env_pair("TASKMILL_ATTEMPT", attempt);
    char *e = work_env_pair("TASKMILL_PARAMS", params);
    if (work_env_keep(r, e, with_params)) env[n++] = e;
    const char *key;
    const json_t *v;
    json_object_foreach((json_t *)p, key, v) {
        e = work_param_env(key, v);
        if (work_env_keep(r, e, with_params)) env[n++] = e;
    }
    for (size_t i = 0; i < nenv; i++)
        env[n++] = xstrdup(environ[i]);
    env[n] = NULL;
    return env;
}

static void work_env_free(char **env) {
    for (size_t i = 0; env[i]; i++)
        free(env[i]);
    free(env);
}

/* Starts the command with pipes on 0, 1 and 2 in its own process group. */
static int work_spawn(struct work_run *r, char **env) {
    int in[2], out[2], err[2];
    if (pipe2(in, O_CLOEXEC)) return errno;
    if (pipe2(out, O_CLOEXEC)) {
        int e = errno;
        close(in[0]);
        close(in[1]);
        return e;
    }
    if (pipe2(err, O_CLOEXEC)) {
        int e = errno;
        close(in[0]);
        close(in[1]);
        close(out[0]);
        close(out[1]);
        return e;
    }
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t at;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, in[0], 0);
    posix_spawn_file_actions_adddup2(&fa, out[1], 1);
    posix_spawn_file_actions_adddup2(&fa, err[1], 2);
    posix_spawnattr_init(&at);
    sigset_t none, dflt;
    sigemptyset(&none);
    sigemptyset(&dflt);
    sigaddset(&dflt, SIGINT);
    sigaddset(&dflt, SIGTERM);
    sigaddset(&dflt, SIGPIPE);
    sigaddset(&dflt, SIGQUIT);
    posix_spawnattr_setsigmask(&at, &none);
    posix_spawnattr_setsigdefault(&at, &dflt);
    posix_spawnattr_setpgroup(&at, 0);
    posix_spawnattr_setflags(
        &at, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
    pthread_mutex_lock(&work_groups_lock); /* see work_reap_orphans */
    int rc = posix_spawnp(&r->pid, r->cfg->argv[0], &fa, &at, r->cfg->argv, env);
    if (!rc) work_group_add_locked(r->pid);
    pthread_mutex_unlock(&work_groups_lock);
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&at);
    close(in[0]);
    close(out[1]);
    close(err[1]);
    if (rc) {
        close(in[1]);
        close(out[0]);
        close(err[0]);
        return rc;
    }
    r->in_fd = in[1];
    r->out.fd = out[0];
    r->err.fd = err[0];
    fcntl(r->in_fd, F_SETFL, O_NONBLOCK);
    fcntl(r->out.fd, F_SETFL, O_NONBLOCK);
    fcntl(r->err.fd, F_SETFL, O_NONBLOCK);
    return 0;
}

/*
 * When the main thread sent SIGTERM to the command's group at a stop
 * signal (work_groups_stop), the run takes it as its own: the task is
 * handed back. Checked before each step and before an exit is noted, so
 * an exit that signal caused is never taken for the command's own end (a
 * command that had exited before the signal was left alone).
 */
static void work_run_adopt_stop(struct work_run *r) {
    if (r->term_ms || r->pid <= 0) return;
    r->term_ms = work_group_termed(r->pid);
    if (r->term_ms) r->stopped_by_worker = true;
}

/* A stopping worker's SIGTERM to the command, and SIGKILL once the grace is over. */
static void work_run_reap(struct work_run *r, int64_t now);

static void work_run_step(struct work_run *r, int64_t now) {
    int stop = atomic_load(&work_stop);
    if (stop) work_run_adopt_stop(r);
    /* A command that has exited already is not stopped: its task is reported
     * as it ended (a stop in the moment before the exit was noticed handed a
     * finished task back, and it ran again). */
    if (stop && !r->term_ms && !r->exited) work_run_reap(r, now);
    if (stop && !r->term_ms && !r->exited) {
        r->stopped_by_worker = true;
        work_run_terminate(r, now);
    }
    /* Once stopped, the whole group goes: a process the command started that takes
     * SIGTERM slowly or not at all is killed after the grace even when the command
     * itself has exited already. */
    if (r->term_ms && !r->killed && (now - r->term_ms >= r->cfg->grace_s * 1000LL || stop >= 2)) {
        r->killed = true;
        work_group_kill(r->pid);
    }
}

/* Whether the worker stops, or a stop signal has come that the main thread has not taken yet
 * (every thread blocks them: they wait as the process's). */
static bool work_is_stopping(void) {
    sigset_t pending;
    if (atomic_load(&work_stop)) return true;
    if (sigpending(&pending)) return false;
    for (int sig = 1; sig < NSIG; sig++)
        if (sigismember(&work_stop_signals, sig) == 1 && sigismember(&pending, sig) == 1)
            return true;
    return false;
}

/*
 * Notes the command's exit, without waiting for it. A command that failed
 * (exit other than 0, or a signal) as the worker stops, not stopped by the
 * worker, is taken as stopped with it: its task is handed back. So it is
 * when systemd (KillMode=control-group) sends SIGTERM to the worker and
 * the commands at once, and a command dies before the worker has signalled
 * it; it was reported failed, a retry counted. A command that exited 0 is
 * reported completed all the same: its work is done.
 */
static void work_run_reap(struct work_run *r, int64_t now) {
    if (!r->exited && r->pid > 0 && waitpid(r->pid, &r->status, WNOHANG) == r->pid) {
        work_run_adopt_stop(r);
        if (!r->term_ms && !(WIFEXITED(r->status) && WEXITSTATUS(r->status) == 0) &&
            work_is_stopping())
            r->stopped_by_worker = true;
        r->exited = true;
        r->exit_ms = now;
    }
}

/* Whether the command was told to stop and has exited, but something it started is left in
 * its group and the grace is not over: the run waits for it (and keeps the lease). */
static bool work_run_lingers(const struct work_run *r) {
    return r->exited && r->term_ms && !r->killed && work_run_group_alive(r);
}

/* Whether the run still holds its lease: heartbeats go out for it. */
static bool work_run_live(const struct work_run *r) {
    return !r->lease_lost && (!r->exited || work_run_lingers(r));
}

/* Whether the command has exited and its output is read (or has had its time); for a
 * command told to stop, also whether its process group is gone (or was killed). */
static bool work_run_is_done(const struct work_run *r, int64_t now) {
    if (!r->exited || work_run_lingers(r)) return false;
    return (r->out.fd < 0 && r->err.fd < 0) || now - r->exit_ms > WORK_DRAIN_MS;
}

/* Adds the run's open pipes to fds (room for 3); returns how many. */
static int work_run_pollfds(const struct work_run *r, struct pollfd *fds) {
    int n = 0;
    if (r->out.fd >= 0) fds[n++] = (struct pollfd){r->out.fd, POLLIN, 0};
    if (r->err.fd >= 0) fds[n++] = (struct pollfd){r->err.fd, POLLIN, 0};
    if (r->in_fd >= 0) fds[n++] = (struct pollfd){r->in_fd, POLLOUT, 0};
    return n;
}

/* Serves the pipes that poll found ready, fds as work_run_pollfds filled them. */
static void work_run_io(struct work_run *r, const struct pollfd *fds, int n) {
    for (int i = 0; i < n; i++) {
        if (!fds[i].revents) continue;
        if (fds[i].fd == r->in_fd) {
            ssize_t w = write(r->in_fd, r->in_data + r->in_off, r->in_len - r->in_off);
            if (w > 0) r->in_off += (size_t)w;
            if ((w < 0 && errno != EAGAIN && errno != EINTR) || r->in_off == r->in_len) {
                close(r->in_fd);
                r->in_fd = -1;
            }
        } else if (fds[i].fd == r->out.fd) {
            work_stream_read(r, &r->out, true);
        } else if (fds[i].fd == r->err.fd) {
            work_stream_read(r, &r->err, false);
        }
    }
}

/* Runs the command until it exits (or was stopped) and its output is read. */
static void work_run_loop(struct work_run *r) {
    for (;;) {
        int64_t now = work_now_ms();
        work_run_step(r, now);
        if (work_run_live(r) && now >= r->hold_ms &&
            (now >= r->next_hb_ms || (r->dirty && now - r->last_hb_ms >= WORK_FLUSH_MS)))
            work_run_heartbeat(r, now);
        work_run_reap(r, now);
        if (work_run_is_done(r, now)) break;
        struct pollfd fds[3];
        int nfds = work_run_pollfds(r, fds);
        if (poll(fds, (nfds_t)nfds, 100) <= 0) continue;
        work_run_io(r, fds, nfds);
    }
    if (!r->exited) {
        waitpid(r->pid, &r->status, 0);
        r->exited = true;
    }
}

/* How a run ends on the server. */
enum work_outcome { WORK_RELEASE, WORK_COMPLETE, WORK_FAIL };

/*
 * What the end of a run reports: release for a task the worker gave up,
 * complete for exit 0, else fail; for fail, the error (into error, n
 * bytes; also set for the others) and whether a retry is allowed. *what
 * names it for the log: released, completed, cancelled or failed.
 */
static enum work_outcome work_run_outcome(const struct work_run *r, char *error, size_t n,
                                          bool *retryable, const char **what) {
    const char *last = r->log_n ? r->log[r->log_n - 1] : NULL;
    if (WIFEXITED(r->status))
        snprintf(error, n, "command exited with status %d%s%s", WEXITSTATUS(r->status),
                 last ? ": " : "", last ? last : "");
    else
        snprintf(error, n, "command killed by signal %d (SIG%s)", WTERMSIG(r->status),
                 sigabbrev_np(WTERMSIG(r->status)) ? sigabbrev_np(WTERMSIG(r->status)) : "?");
    if (r->pid <= 0) snprintf(error, n, "the command was not started");
    utf8_scrub_n(error, strlen(error)); /* output, perhaps binary or cut in a character */
    bool ok = WIFEXITED(r->status) && WEXITSTATUS(r->status) == 0;
    *retryable = !(WIFEXITED(r->status) && WEXITSTATUS(r->status) == r->cfg->permanent_exit);
    if (r->stopped_by_worker && !r->cancel_requested) {
        *what = "released";
        return WORK_RELEASE;
    }
    if (ok && !r->cancel_requested) {
        *what = "completed";
        return WORK_COMPLETE;
    }
    *what = r->cancel_requested ? "cancelled" : "failed";
    return WORK_FAIL;
}

/* Logs a reported end: `task 'ID' completed (now 'completed')`. */
static void work_run_log_end(const struct work_run *r, const char *what, const char *phase,
                             const char *error) {
    bool failed = strcmp(what, "failed") == 0;
    work_note(r->cfg, "task '%s' %s (now '%s')%s%s", r->id, what, phase ? phase : "?",
              failed ? ": " : "", failed ? error : "");
}

/*
 * Whether the report of r's end is tried again after the server could not
 * be reached, at its tries-th time: WORK_REPORT_TRIES times, a second
 * apart, and beyond them while its lease may still hold (counted from the
 * last heartbeat the server answered), since until then the server takes
 * it. A report given up sooner, with a lease of minutes and the server
 * away for more than half of one, left a finished task to run again.
 */
static bool work_report_again(const struct work_run *r, int tries, int64_t now) {
    return tries < WORK_REPORT_TRIES || now - r->lease_ok_ms < r->cfg->lease_s * 1000LL;
}

/* Sleeps up to ms, while the end of a task first reported at first_ms may be sent again
 * (work_may_retry): a stop cuts a wait for the server short. */
static void work_report_pause(int ms, int64_t first_ms) {
    int64_t until = work_now_ms() + ms;
    for (int64_t now; (now = work_now_ms()) < until && work_may_retry(first_ms, now);)
        work_sleep_ms(until - now < 100 ? (int)(until - now) : 100);
}

/* Sends the outcome, retrying while the server cannot be reached (work_report_again) or asks
 * to slow down (429: for as long as it answers so; the report is not given up for it), after
 * what its Retry-After says; once the worker stops, only within WORK_STOP_CALL_MS of the first
 * try, each try bounded by then: work_abort. */
static void work_run_finish(struct work_run *r) {
    const struct work_config *cfg = r->cfg;
    if (r->lease_lost) return;
    char error[WORK_LOG_LINE_MAX + 128];
    bool retryable;
    const char *what;
    enum work_outcome how = work_run_outcome(r, error, sizeof error, &retryable, &what);
    int64_t first_ms = work_now_ms();
    for (int attempt = 0;; attempt++) {
        /* A heartbeat's 429 holds it too, while its lease allows. */
        work_report_pause(work_report_wait_ms(r, work_slow_hold_ms()), first_ms);
        struct tm_report rep;
        json_t *attrs, *out = NULL;
        work_run_report(r, &rep, &attrs);
        int rc;
        work_call_begin(false, first_ms);
        if (how == WORK_RELEASE) {
            rc = tm_release(r->c, r->id, r->token, &out);
        } else if (how == WORK_COMPLETE) {
            rc = tm_complete(r->c, r->id, r->token, r->result, &rep, &out);
        } else {
            char msg[sizeof error + 32];
            snprintf(msg, sizeof msg, "%s%s", r->cancel_requested ? "cancelled: " : "", error);
            rc = tm_fail(r->c, r->id, r->token, msg, retryable, &rep, &out);
        }
        rc = work_rc(r->c, rc);
        json_decref(attrs);
        if (rc == 0) {
            work_server_state(cfg, r->c, false);
            work_run_log_end(r, what, json_string_value(json_object_get(out, "phase")), error);
            json_decref(out);
            return;
        }
        if (work_is_report_refusal(rc) && how != WORK_RELEASE &&
            work_run_report_refused(r, "end report", tm_client_last_error(r->c)->message))
            continue; /* again at once, bare */
        bool slow = rc == TM_CLIENT_ERATE;
        if (!(slow || (work_is_outage(rc) && work_report_again(r, attempt + 1, work_now_ms()))) ||
            !work_may_retry(first_ms, work_now_ms())) {
            work_log(
                cfg, "task '%s': cannot report it %s: %s", r->id, what,
                rc == TM_CLIENT_EABORTED ? WORK_ABANDONED : tm_client_last_error(r->c)->message);
            return;
        }
        if (slow) {
            work_report_pause(work_report_wait_ms(r, work_server_slow(cfg, r->c)), first_ms);
        } else {
            work_server_state(cfg, r->c, true);
            work_report_pause(work_report_wait_ms(r, work_retry_ms(r->c, 1000)), first_ms);
        }
    }
}

static void work_run_release(struct work_run *r) {
    if (r->pid > 0) work_group_remove(r->pid);
    for (size_t i = 0; i < r->log_n; i++)
        free(r->log[i]);
    free(r->out.buf);
    free(r->err.buf);
    if (r->in_fd >= 0) close(r->in_fd);
    if (r->out.fd >= 0) close(r->out.fd);
    if (r->err.fd >= 0) close(r->err.fd);
    free(r->in_data);
    free(r->message);
    json_decref(r->items);
    json_decref(r->messages);
    json_decref(r->attributes);
    json_decref(r->result);
    json_decref(r->task);
}

/* Sets up the run of a claimed task (not started yet) and says it was claimed. */
static void work_run_init(struct work_run *r, const struct work_config *cfg, struct tm_client *c,
                          const json_t *task, const char *token) {
    *r = (struct work_run){.cfg = cfg, .c = c, .in_fd = -1, .out = {.fd = -1}, .err = {.fd = -1}};
    snprintf(r->id, sizeof r->id, "%s", json_string_value(json_object_get(task, "id")));
    snprintf(r->token, sizeof r->token, "%s", token);
    r->items = json_array();
    r->messages = json_array();
    r->attributes = json_object();
    const json_t *params = json_object_get(task, "params");
    r->in_data = json_is_object(params) ? json_dumps(params, JSON_COMPACT | JSON_REAL_PRECISION(16))
                                        : xstrdup("{}");
    if (!r->in_data) r->in_data = xstrdup("{}");
    r->in_len = strlen(r->in_data);
    r->short_len = work_short_id_len(r->id);
    work_note(cfg, "task '%s' claimed (type '%s', attempt %lld)", r->id,
              json_string_value(json_object_get(task, "type")),
              (long long)json_integer_value(json_object_get(task, "attempt")));
}

/*
 * Starts the command of a run. Returns 0, or the errno of a command that
 * could not be started, after saying so: that is the worker's fault, not
 * the task's, so the caller hands the task back uncounted.
 */
static int work_run_start(struct work_run *r, const json_t *task) {
    char **env = work_env(r, task, true);
    int rc = work_spawn(r, env);
    work_env_free(env);
    if (rc == E2BIG) {
        /* The variables are too large together (arguments and environment share a limit,
         * a quarter of the stack limit on Linux): the command gets the params on standard
         * input only. Handed back, the task would come back to every worker for good. */
        work_log(r->cfg,
                 "task '%s': its params are too large for the command's environment; "
                 "TASKMILL_PARAMS and TASKMILL_PARAM_* are left out (the params are on its "
                 "standard input)",
                 r->id);
        env = work_env(r, task, false);
        rc = work_spawn(r, env);
        work_env_free(env);
    }
    if (rc)
        fprintf(stderr, "taskmill work: cannot start '%s': %s; task '%s' handed back%s\n",
                r->cfg->argv[0], strerror(rc), r->id, work_tty ? "\033[K" : "");
    return rc;
}

/* The pause before claiming again after the nth command in a row could not start: 1 s, 2 s, 4 s
 * ... at most 30 s: a command that cannot start now may later (a file being deployed), and
 * meanwhile other workers take the tasks. */
static int work_spawn_backoff_ms(int failures) {
    int backoff = 1000 << (failures < 5 ? failures : 5);
    return backoff > WORK_SPAWN_BACKOFF_MAX_MS ? WORK_SPAWN_BACKOFF_MAX_MS : backoff;
}

/*
 * Runs one claimed task from start to its reported end. Returns false when
 * the command could not be started: the task is released (no retry
 * counted) for a worker that can run it, and the caller backs off before
 * claiming again.
 */
static bool work_task(const struct work_config *cfg, struct tm_client *c, const json_t *task,
                      const char *token) {
    struct work_run r;
    work_run_init(&r, cfg, c, task, token);
    if (atomic_load(&work_stop)) {
        /* Claimed as the worker was stopping (its claim was out): handed back unstarted, as
         * in batched mode, not started only to be stopped at once. */
        work_note(cfg, "task '%s': the worker is stopping: handed back unstarted", r.id);
        r.exited = r.stopped_by_worker = true;
        work_run_finish(&r);
        work_run_release(&r);
        return true;
    }
    if (work_run_start(&r, task)) {
        work_call_begin(false, work_now_ms());
        int rc = work_rc(c, tm_release(c, r.id, r.token, NULL));
        if (rc)
            work_log(cfg, "task '%s': cannot hand it back: %s", r.id,
                     rc == TM_CLIENT_EABORTED ? WORK_ABANDONED : tm_client_last_error(c)->message);
        work_run_release(&r);
        return false;
    }
    /* The claim counts as the first heartbeat. */
    r.last_hb_ms = r.lease_ok_ms = work_now_ms();
    r.next_hb_ms = r.last_hb_ms + cfg->heartbeat_ms;
    work_run_loop(&r);
    work_group_remove(r.pid); /* gone, or killed: nothing left to kill */
    work_run_finish(&r);
    work_run_release(&r);
    return true;
}

/* Sleeps ms, waking early when the worker is asked to stop. */
static void work_pause_ms(int ms) {
    for (int slept = 0; slept < ms && !atomic_load(&work_stop); slept += 100)
        work_sleep_ms(ms - slept < 100 ? ms - slept : 100);
}

/* What every claim of this worker asks for: its name, types and lease, and the long-poll. */
static struct tm_claim_options work_claim_options(const struct work_config *cfg) {
    return (struct tm_claim_options){.worker = cfg->worker,
                                     .types = cfg->types,
                                     .ntypes = cfg->ntypes,
                                     .lease_seconds = cfg->lease_s,
                                     .wait_seconds = WORK_CLAIM_WAIT_S};
}

/*
 * A claim failed (rc): returns true when the worker must stop (the server
 * refuses this worker's claims for good), after saying so; otherwise says
 * what went wrong (the first time) and pauses before the next try: as long
 * as a 503's Retry-After says, at least. After a 429 the caller's loop
 * waits for work_slow_until_ms (work_slow_hold_ms).
 */
static bool work_claim_failed(const struct work_config *cfg, struct tm_client *c, int rc,
                              int *failures) {
    if (rc == TM_CLIENT_EINVALID || rc == TM_CLIENT_EAUTH) {
        fprintf(stderr, "taskmill work: cannot claim from queue '%s': %s\n", cfg->queue,
                tm_client_last_error(c)->message);
        atomic_store(&work_fatal, cli_exit_for(rc));
        work_stop_at(1);
        return true;
    }
    if (rc == TM_CLIENT_ERATE) {
        work_server_slow(cfg, c);
        return false;
    }
    if (work_is_outage(rc))
        work_server_state(cfg, c, true);
    else if (*failures == 0)
        work_log(cfg, "cannot claim from queue '%s': %s (retrying)", cfg->queue,
                 tm_client_last_error(c)->message);
    (*failures)++;
    work_pause_ms(work_retry_ms(c, *failures < 5 ? 200 * *failures : 1000));
    return false;
}

static void *work_slot_main(void *arg) {
    const struct work_config *cfg = arg;
    struct tm_client *c = work_client_new(cfg);
    int failures = 0, spawn_failures = 0;
    struct tm_claim_options o = work_claim_options(cfg);
    while (!atomic_load(&work_stop)) {
        /* All --max-tasks started: nothing to claim, so no wait for the server either. */
        if (cfg->max_tasks && atomic_load(&work_started) >= cfg->max_tasks) break;
        int hold_ms = work_slow_hold_ms();
        if (hold_ms > 0) {
            work_pause_ms(hold_ms);
            continue;
        }
        if (cfg->max_tasks && atomic_fetch_add(&work_started, 1) >= cfg->max_tasks) break;
        json_t *task = NULL;
        char token[TM_LEASE_TOKEN_MAX];
        work_call_begin(true, work_now_ms());
        int rc = work_rc(c, tm_claim(c, cfg->queue, &o, &task, token));
        if (rc || !task) {
            if (cfg->max_tasks) atomic_fetch_sub(&work_started, 1);
        }
        if (rc == TM_CLIENT_EABORTED) continue; /* abandoned: the worker stops */
        if (rc) {
            if (work_claim_failed(cfg, c, rc, &failures)) break;
            continue;
        }
        work_server_state(cfg, c, false);
        failures = 0;
        if (!task) continue;
        bool ran = work_task(cfg, c, task, token);
        json_decref(task);
        if (ran) {
            spawn_failures = 0;
            continue;
        }
        if (cfg->max_tasks) atomic_fetch_sub(&work_started, 1);
        int backoff = work_spawn_backoff_ms(spawn_failures++);
        work_log(cfg, "waiting %d s before claiming again", backoff / 1000);
        work_pause_ms(backoff);
    }
    tm_client_free(c);
    atomic_fetch_sub(&work_running, 1);
    return NULL;
}

/* ---- Batched mode: --concurrency N > 1 ---- */

/*
 * With more than one slot the worker speaks the batched protocol
 * (docs/api.md section 7.8a) from two threads. The claimer long-polls
 * POST /v1/queues/Q/claims for as many tasks as there are free slots and
 * puts the claims in the inbox. The runner starts their commands, reads
 * every command's output in one poll loop and speaks for all of them:
 * each heartbeat tick is one request with an entry for every running
 * lease (between ticks, output that changed goes out at most every
 * WORK_FLUSH_MS, one request for all the runs it changed), and the runs
 * that end in the same pass of its loop are reported in one request per
 * verb, so no result waits for another. An entry's error touches only its
 * own task. A slot is busy from its claim until its run is reported. A
 * claim of a task a run still runs (its lease lapsed on the server) ends
 * that run as lost and starts once its command has exited
 * (work_batch_supersede).
 */
#define WORK_CLAIM_MAX   100    /* the server's cap on one claim */
#define WORK_BATCH_BYTES 262144 /* a larger batched request is split; the server takes 1 MiB */

static pthread_mutex_t work_inbox_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t work_slot_freed = PTHREAD_COND_INITIALIZER;
static json_t *work_inbox;     /* claims the runner has not taken yet; under the lock */
static int work_busy;          /* slots taken (claims in the inbox, runs not reported); locked */
static bool work_claimer_done; /* under the lock */
/* Under the lock: a claim request is out. The runner hands no task back meanwhile (a
 * stopping worker, a command that cannot start), or that claim could take it again. */
static bool work_claiming;
static int work_wake[2] = {-1, -1};         /* a byte written to [1] wakes the runner's poll */
static _Atomic int64_t work_claim_after_ms; /* no claim before then: a command could not start */

static void work_wake_runner(void) {
    if (write(work_wake[1], "", 1) < 0) {
        /* The pipe is full: the runner has wake-ups waiting already. */
    }
}

/* n slots are free again (their runs are reported): tells the claimer. */
static void work_slots_free(int n) {
    if (!n) return;
    pthread_mutex_lock(&work_inbox_lock);
    work_busy -= n;
    pthread_cond_signal(&work_slot_freed);
    pthread_mutex_unlock(&work_inbox_lock);
}

/* Claims as many tasks as there are free slots, one request at a time. */
static void *work_claimer_main(void *arg) {
    const struct work_config *cfg = arg;
    struct tm_client *c = work_client_new(cfg);
    int failures = 0;
    struct tm_claim_options o = work_claim_options(cfg);
    while (!atomic_load(&work_stop)) {
        int64_t pause_ms = atomic_load(&work_claim_after_ms) - work_now_ms();
        /* The server asked to slow down: no claim before then, unless none is left to make
         * (--max-tasks reached: the check below ends the claimer). */
        bool claims_left = !cfg->max_tasks || atomic_load(&work_started) < cfg->max_tasks;
        if (claims_left && pause_ms < work_slow_hold_ms()) pause_ms = work_slow_hold_ms();
        if (pause_ms > 0) {
            work_pause_ms(pause_ms < 100 ? (int)pause_ms : 100);
            continue;
        }
        pthread_mutex_lock(&work_inbox_lock);
        /* Checked again under the lock, which the runner holds to see that no claim is out. */
        if (atomic_load(&work_stop) || atomic_load(&work_claim_after_ms) > work_now_ms()) {
            pthread_mutex_unlock(&work_inbox_lock);
            continue;
        }
        int free_slots = cfg->concurrency - work_busy;
        int left = cfg->max_tasks ? cfg->max_tasks - atomic_load(&work_started) : WORK_CLAIM_MAX;
        if (free_slots <= 0 || left <= 0) {
            /* --max-tasks is reached once no run can hand a task back uncounted. */
            bool over = left <= 0 && work_busy == 0;
            if (!over) {
                struct timespec until;
                clock_gettime(CLOCK_REALTIME, &until);
                until.tv_nsec += 200 * 1000000L;
                if (until.tv_nsec >= 1000000000L) {
                    until.tv_sec++;
                    until.tv_nsec -= 1000000000L;
                }
                pthread_cond_timedwait(&work_slot_freed, &work_inbox_lock, &until);
            }
            pthread_mutex_unlock(&work_inbox_lock);
            if (over) break;
            continue;
        }
        work_claiming = true;
        pthread_mutex_unlock(&work_inbox_lock);
        int max = free_slots < left ? free_slots : left;
        if (max > WORK_CLAIM_MAX) max = WORK_CLAIM_MAX;
        json_t *claims = NULL;
        work_call_begin(true, work_now_ms());
        int rc = work_rc(c, tm_claim_many(c, cfg->queue, &o, max, &claims));
        int n = (int)json_array_size(claims);
        if (n) atomic_fetch_add(&work_started, n);
        pthread_mutex_lock(&work_inbox_lock);
        work_claiming = false;
        if (n) {
            json_array_extend(work_inbox, claims);
            work_busy += n;
        }
        pthread_mutex_unlock(&work_inbox_lock);
        json_decref(claims);
        if (n) work_wake_runner();
        if (rc == TM_CLIENT_EABORTED) continue; /* abandoned: the worker stops */
        if (rc) {
            if (work_claim_failed(cfg, c, rc, &failures)) break;
            continue;
        }
        work_server_state(cfg, c, false);
        failures = 0;
    }
    pthread_mutex_lock(&work_inbox_lock);
    work_claimer_done = true;
    pthread_mutex_unlock(&work_inbox_lock);
    work_wake_runner();
    tm_client_free(c);
    atomic_fetch_sub(&work_running, 1);
    return NULL;
}

/* The runner's state. */
struct work_batch {
    const struct work_config *cfg;
    struct tm_client *c;
    struct work_run **runs; /* claimed and not yet reported, in claim order */
    size_t nruns, cap;
    int64_t next_tick_ms;  /* the next heartbeat of every running lease */
    int64_t last_flush_ms; /* the last heartbeat request */
    int spawn_failures;    /* commands in a row that could not start */
    char why[512];         /* why the last batched request failed as a whole */
    int wait_ms;           /* the longest Retry-After of those of the last send, or 0 */
    int64_t hold_ms;       /* no heartbeat request before then: the server asked */
    int64_t first_ms;      /* reports: the latest first try of their runs (work_abort); else 0 */
};

/* Whether a run of r's task other than r has its command running still (or, told to stop,
 * something in its group within the grace). */
static bool work_batch_runs_task(const struct work_batch *b, const struct work_run *r) {
    for (size_t i = 0; i < b->nruns; i++) {
        const struct work_run *o = b->runs[i];
        if (o != r && o->pid > 0 && !o->task && strcmp(o->id, r->id) == 0 &&
            (!o->exited || work_run_lingers(o)))
            return true;
    }
    return false;
}

/*
 * A claim brought r's task while older runs of it are still here: the
 * server let their lease lapse (their heartbeats hung or were refused
 * while claims were answered) and handed the task out again, to this
 * worker. Their leases are lost: a command still running is stopped as
 * for a lost lease (SIGTERM, SIGKILL after the grace) and nothing is
 * reported for any of them. Returns whether one's command still runs:
 * r's command waits until it has exited, so that the worker never runs
 * two copies of a task's command at once (r's lease is kept meanwhile).
 */
static bool work_batch_supersede(struct work_batch *b, const struct work_run *r, int64_t now) {
    for (size_t i = 0; i < b->nruns; i++) {
        struct work_run *o = b->runs[i];
        if (o == r || strcmp(o->id, r->id) != 0 || o->lease_lost) continue;
        o->lease_lost = true;
        if (o->task) {
            o->exited = true; /* it waited, unstarted: nothing to stop */
            continue;
        }
        bool running = !o->exited;
        work_log(b->cfg,
                 "task '%s': claimed again while its earlier run is here: the server let that "
                 "lease lapse, so it is lost%s",
                 o->id,
                 running ? "; stopping its command (the new run starts once it has exited)"
                         : " (its end is not reported)");
        work_run_terminate(o, now);
    }
    return work_batch_runs_task(b, r);
}

/* How work_batch_start went: the command started, the task handed back unstarted (the worker
 * stops), or the command could not start (handed back; the claims pause). */
enum work_start { WORK_STARTED, WORK_UNSTARTED, WORK_START_FAILED };

/* Starts the command of run r of task (or hands r back when the worker stops). */
static enum work_start work_batch_start(struct work_batch *b, struct work_run *r,
                                        const json_t *task) {
    if (atomic_load(&work_stop)) {
        /* Claimed as the worker was stopping: handed back unstarted. */
        work_note(b->cfg, "task '%s': the worker is stopping: handed back unstarted", r->id);
        r->exited = r->stopped_by_worker = true;
        return WORK_UNSTARTED;
    }
    if (work_run_start(r, task)) {
        r->exited = r->stopped_by_worker = r->start_failed = true;
        if (b->cfg->max_tasks) atomic_fetch_sub(&work_started, 1);
        return WORK_START_FAILED;
    }
    return WORK_STARTED;
}

/* After commands were started (started) or could not be (failed): pauses the claims while
 * commands cannot start. */
static void work_batch_started(struct work_batch *b, bool started, bool failed, int64_t now) {
    if (failed) {
        int backoff = work_spawn_backoff_ms(b->spawn_failures++);
        atomic_store(&work_claim_after_ms, now + backoff);
        work_log(b->cfg, "waiting %d s before claiming again", backoff / 1000);
    } else if (started) {
        b->spawn_failures = 0;
    }
}

/* Takes the claims of the inbox and starts their commands. */
static void work_batch_take(struct work_batch *b, int64_t now) {
    pthread_mutex_lock(&work_inbox_lock);
    json_t *in = json_array_size(work_inbox) ? work_inbox : NULL;
    if (in) work_inbox = json_array();
    pthread_mutex_unlock(&work_inbox_lock);
    if (!in) return;
    int bad = 0;
    bool started = false, failed = false;
    size_t i;
    json_t *claim;
    json_array_foreach(in, i, claim) {
        const json_t *task = json_object_get(claim, "task");
        const char *id = json_string_value(json_object_get(task, "id"));
        const char *token = json_string_value(json_object_get(claim, "lease_token"));
        if (!id || strlen(id) >= TM_ID_MAX || !token || strlen(token) >= TM_LEASE_TOKEN_MAX) {
            work_log(b->cfg, "a claim without a task id or lease token; ignored");
            bad++;
            continue;
        }
        struct work_run *r = xmalloc(sizeof *r);
        work_run_init(r, b->cfg, b->c, task, token);
        r->last_hb_ms = r->lease_ok_ms = now; /* the claim counts as the first heartbeat */
        if (work_batch_supersede(b, r, now) && !atomic_load(&work_stop)) {
            r->task = json_incref((json_t *)task); /* started by work_batch_start_waiting */
        } else {
            enum work_start how = work_batch_start(b, r, task);
            started = started || how == WORK_STARTED;
            failed = failed || how == WORK_START_FAILED;
        }
        if (b->nruns == b->cap) {
            b->cap = b->cap ? 2 * b->cap : 16;
            b->runs = xrealloc(b->runs, b->cap * sizeof *b->runs);
        }
        b->runs[b->nruns++] = r;
    }
    json_decref(in);
    work_slots_free(bad);
    work_batch_started(b, started, failed, now);
}

/*
 * Starts the commands that waited for an older run of their task
 * (work_batch_supersede) once it is gone; hands back those the worker
 * stops for; ends those whose lease was lost or that were cancelled while
 * they waited, never started.
 */
static void work_batch_start_waiting(struct work_batch *b, int64_t now) {
    bool started = false, failed = false;
    for (size_t i = 0; i < b->nruns; i++) {
        struct work_run *r = b->runs[i];
        if (!r->task) continue;
        if (r->lease_lost || r->cancel_requested) {
            r->exited = true;
        } else if (!work_batch_runs_task(b, r) || atomic_load(&work_stop)) {
            enum work_start how = work_batch_start(b, r, r->task);
            started = started || how == WORK_STARTED;
            failed = failed || how == WORK_START_FAILED;
        } else {
            continue;
        }
        json_decref(r->task);
        r->task = NULL;
    }
    work_batch_started(b, started, failed, now);
}

/* A run's entry in a batched call: its id, lease token and report (rep may be NULL). A
 * message that is not UTF-8 goes with '?' for its bad bytes, where tm_work_entry drops it. */
static json_t *work_entry_new(const struct work_run *r, const struct tm_report *rep) {
    json_t *e = tm_work_entry(r->id, r->token, rep);
    if (rep && rep->message)
        json_object_set_new(json_object_get(e, "progress"), "message",
                            work_json_text(rep->message, strlen(rep->message)));
    return e;
}

/*
 * One batched request of verb for n entries: sets results[i] to entry i's
 * outcome (a new reference), or to NULL when the request failed as a
 * whole. Returns 0 or that failure's code, with b->why saying it; says
 * when the server goes away and comes back. A request the server finds too
 * large is sent again in halves.
 */
static int work_batch_request(struct work_batch *b, const char *verb, json_t *const *entries,
                              size_t n, json_t **results) {
    json_t *arr = json_array(), *res = NULL;
    for (size_t i = 0; i < n; i++)
        json_array_append(arr, entries[i]);
    work_call_begin(false, b->first_ms ? b->first_ms : work_now_ms());
    int rc = work_rc(b->c, tm_work_batch(b->c, verb, arr, &res));
    json_decref(arr);
    if (rc == TM_CLIENT_ETOOLARGE && n > 1) {
        int first = work_batch_request(b, verb, entries, n / 2, results);
        int second = work_batch_request(b, verb, entries + n / 2, n - n / 2, results + n / 2);
        return second ? second : first;
    }
    if (rc == TM_CLIENT_ETOOLARGE) {
        /* One entry too large alone: its report is refused, as an entry the server finds
         * invalid is (work_entry_code), so that it is dropped and the entry sent bare. */
        results[0] = json_pack("{s:{s:s, s:s}}", "error", "code", "payload_too_large", "message",
                               tm_client_last_error(b->c)->message);
        work_server_state(b->cfg, b->c, false);
        return 0;
    }
    if (rc == 0 && json_array_size(res) != n) {
        snprintf(b->why, sizeof b->why, "the server answered %zu results for %zu entries",
                 json_array_size(res), n);
        rc = TM_CLIENT_EPROTOCOL;
    } else if (rc) {
        snprintf(b->why, sizeof b->why, "%s",
                 rc == TM_CLIENT_EABORTED ? WORK_ABANDONED : tm_client_last_error(b->c)->message);
        int wait_ms =
            rc == TM_CLIENT_ERATE ? work_server_slow(b->cfg, b->c) : work_retry_ms(b->c, 0);
        if (wait_ms > b->wait_ms) b->wait_ms = wait_ms;
    }
    for (size_t i = 0; i < n; i++)
        results[i] = rc ? NULL : json_incref(json_array_get(res, i));
    json_decref(res);
    if (rc != TM_CLIENT_EABORTED) work_server_state(b->cfg, b->c, work_is_outage(rc));
    return rc;
}

/*
 * Sends n entries as verb's batched calls, no request larger than
 * WORK_BATCH_BYTES unless one entry is; results as work_batch_request
 * sets them (NULL for the entries not sent: after a 429 the rest wait
 * too). Returns 0, or the code of the last request that failed as a
 * whole, with b->wait_ms the longest wait a server asked for (0: none).
 */
static int work_batch_send(struct work_batch *b, const char *verb, json_t *const *entries, size_t n,
                           json_t **results) {
    int last = 0;
    b->wait_ms = 0;
    for (size_t i = 0; i < n && last != TM_CLIENT_ERATE;) {
        size_t j = i, bytes = 0;
        while (j < n && j - i < 1000) {
            size_t sz = json_dumpb(entries[j], NULL, 0, JSON_COMPACT | JSON_REAL_PRECISION(16));
            if (j > i && bytes + sz > WORK_BATCH_BYTES) break;
            bytes += sz;
            j++;
        }
        int rc = work_batch_request(b, verb, entries + i, j - i, results + i);
        if (rc) last = rc;
        i = j;
    }
    return last;
}

/* An entry's error code as the one-task call's return code would be. */
static int work_entry_code(const json_t *result) {
    const char *slug = json_string_value(json_object_get(json_object_get(result, "error"), "code"));
    if (!slug) return 0;
    if (strcmp(slug, "lease_mismatch") == 0) return TM_CLIENT_ELEASE;
    if (strcmp(slug, "conflict") == 0) return TM_CLIENT_ECONFLICT;
    if (strcmp(slug, "not_found") == 0) return TM_CLIENT_ENOTFOUND;
    if (strcmp(slug, "internal") == 0 || strcmp(slug, "unavailable") == 0) return TM_CLIENT_ESERVER;
    if (strcmp(slug, "too_many_requests") == 0) return TM_CLIENT_ERATE;
    return TM_CLIENT_EINVALID;
}

static const char *work_entry_message(const json_t *result) {
    const char *m = json_string_value(json_object_get(json_object_get(result, "error"), "message"));
    return m ? m : "?";
}

/* The server asked to wait wait_ms: no heartbeat request before then, unless a lease needs
 * one sooner (work_hb_retry_at). */
static void work_batch_hold(struct work_batch *b, int wait_ms) {
    int64_t now = work_now_ms(), at = now + wait_ms;
    for (size_t i = 0; i < b->nruns; i++) {
        if (!work_run_live(b->runs[i])) continue;
        int64_t its = work_hb_retry_at(b->runs[i], now, wait_ms);
        if (its < at) at = its;
    }
    if (at > b->hold_ms) b->hold_ms = at;
}

/*
 * One heartbeat request: for every running lease at a tick (tick true),
 * else for the runs with output not yet reported. A lost lease stops that
 * run's command; a cancel asked stops it too.
 */
static void work_batch_heartbeat(struct work_batch *b, int64_t now, bool tick) {
    const struct work_config *cfg = b->cfg;
    json_t **entries = xcalloc(b->nruns + 1, sizeof *entries);
    json_t **results = xcalloc(b->nruns + 1, sizeof *results);
    struct work_run **sent = xcalloc(b->nruns + 1, sizeof *sent);
    size_t n = 0;
    for (size_t i = 0; i < b->nruns; i++) {
        struct work_run *r = b->runs[i];
        if (!work_run_live(r) || (!tick && !r->dirty)) continue;
        struct tm_report rep;
        json_t *attrs;
        work_run_report(r, &rep, &attrs);
        entries[n] = work_entry_new(r, &rep);
        json_decref(attrs);
        sent[n++] = r;
    }
    b->last_flush_ms = now;
    if (tick) b->next_tick_ms = now + cfg->heartbeat_ms;
    tm_client_set_timeout(b->c, cfg->heartbeat_timeout_ms);
    int rc = n ? work_batch_send(b, "heartbeat", entries, n, results) : 0;
    tm_client_set_timeout(b->c, 0);
    bool again_soon = rc != 0;
    int64_t after = work_now_ms();
    for (size_t i = 0; i < n; i++) {
        struct work_run *r = sent[i];
        const json_t *res = results[i];
        r->last_hb_ms = now;
        int code = res ? work_entry_code(res) : 0;
        if (!res) {
            /* The whole request failed: said below. */
            work_run_unanswered(r, after);
        } else if (code == TM_CLIENT_ELEASE || code == TM_CLIENT_ENOTFOUND ||
                   code == TM_CLIENT_ECONFLICT) {
            r->lease_lost = true;
            work_log(cfg, "task '%s': lease lost (%s); %s", r->id, work_entry_message(res),
                     work_run_stopping(r));
            work_run_terminate(r, now);
        } else if (code) {
            if (code != TM_CLIENT_EINVALID ||
                !work_run_report_refused(r, "heartbeat", work_entry_message(res)))
                work_log(cfg, "task '%s': heartbeat refused: %s", r->id, work_entry_message(res));
            work_run_unanswered(r, after);
            again_soon = true;
        } else {
            work_run_answered(r, now);
            work_run_reported(r);
            if (json_is_true(json_object_get(res, "cancel_requested")) && !r->cancel_requested) {
                r->cancel_requested = true;
                work_note(cfg, "task '%s': cancel requested; %s", r->id, work_run_stopping(r));
                work_run_terminate(r, now);
            }
        }
        json_decref(results[i]);
        json_decref(entries[i]);
    }
    if (rc && !work_is_outage(rc) && rc != TM_CLIENT_EABORTED && rc != TM_CLIENT_ERATE)
        work_log(cfg, "heartbeat refused: %s", b->why);
    if (rc && b->wait_ms > 0) {
        work_batch_hold(b, b->wait_ms);
        b->next_tick_ms = b->hold_ms;
    } else if (again_soon && b->next_tick_ms > now + 1000) {
        b->next_tick_ms = now + 1000;
    }
    free(entries);
    free(results);
    free(sent);
}

/* The entry that reports how a run ended (its outcome `how`, error and retryable as set). */
static json_t *work_end_entry(struct work_run *r, enum work_outcome how, const char *error,
                              bool retryable) {
    if (how == WORK_RELEASE) return work_entry_new(r, NULL);
    struct tm_report rep;
    json_t *attrs;
    work_run_report(r, &rep, &attrs);
    json_t *e = work_entry_new(r, &rep);
    json_decref(attrs);
    if (how == WORK_COMPLETE) {
        if (r->result) json_object_set(e, "result", r->result);
    } else {
        char msg[WORK_LOG_LINE_MAX + 160];
        snprintf(msg, sizeof msg, "%s%s", r->cancel_requested ? "cancelled: " : "", error);
        json_object_set_new(e, "error", work_json_text(msg, strlen(msg)));
        json_object_set_new(e, "retryable", json_boolean(retryable));
    }
    return e;
}

/*
 * Reports the ends of the runs that are over, one request per verb, and
 * forgets the runs reported, given up, or whose lease was lost. Tasks the
 * worker hands back wait while a claim is out (see work_claiming). A
 * report the server could not take is sent again a second later, while
 * work_report_again says (once the worker stops, only within
 * WORK_STOP_CALL_MS of its first try: work_may_retry).
 */
static void work_batch_report(struct work_batch *b, int64_t now) {
    static const char *const verbs[] = {"release", "complete", "fail"};
    const struct work_config *cfg = b->cfg;
    json_t **entries = xcalloc(b->nruns + 1, sizeof *entries);
    json_t **results = xcalloc(b->nruns + 1, sizeof *results);
    size_t *sent = xcalloc(b->nruns + 1, sizeof *sent); /* entry i is runs[sent[i]]'s */
    bool *gone = xcalloc(b->nruns + 1, sizeof *gone);
    char error[WORK_LOG_LINE_MAX + 128];
    pthread_mutex_lock(&work_inbox_lock);
    bool may_release = !work_claiming;
    pthread_mutex_unlock(&work_inbox_lock);
    /* The server asked to wait: the ends wait too, unless the worker stops (a stop waits
     * WORK_STOP_CALL_MS at most), or a run's lease would lapse first (nothing heartbeats a
     * run that ended). */
    bool held = work_slow_hold_ms() > 0 && !atomic_load(&work_stop);
    for (int how = may_release ? WORK_RELEASE : WORK_COMPLETE; how <= WORK_FAIL; how++) {
        size_t n = 0;
        b->first_ms = 0;
        for (size_t i = 0; i < b->nruns; i++) {
            struct work_run *r = b->runs[i];
            if (!work_run_is_done(r, now) || r->lease_lost || r->report_after_ms > now) continue;
            if (held && now < work_lease_last_call(r)) continue;
            bool retryable;
            const char *what;
            if ((int)work_run_outcome(r, error, sizeof error, &retryable, &what) != how) continue;
            entries[n] = work_end_entry(r, (enum work_outcome)how, error, retryable);
            if (!r->report_first_ms) r->report_first_ms = now;
            if (r->report_first_ms > b->first_ms) b->first_ms = r->report_first_ms;
            sent[n++] = i;
        }
        if (!n) continue;
        int rc = work_batch_send(b, verbs[how], entries, n, results);
        b->first_ms = 0;
        if (rc == TM_CLIENT_ERATE) work_batch_hold(b, b->wait_ms);
        for (size_t i = 0; i < n; i++) {
            struct work_run *r = b->runs[sent[i]];
            const json_t *res = results[i];
            bool retryable;
            const char *what;
            work_run_outcome(r, error, sizeof error, &retryable, &what);
            int code = res ? work_entry_code(res) : rc;
            const char *why = res ? work_entry_message(res) : b->why;
            bool done = true;
            if (code == 0) {
                if (!r->start_failed)
                    work_run_log_end(r, what, json_string_value(json_object_get(res, "phase")),
                                     error);
            } else if ((code == TM_CLIENT_ERATE ||
                        (work_is_outage(code) && work_report_again(r, ++r->report_tries, now))) &&
                       work_may_retry(r->report_first_ms, now)) {
                /* Again once the server's Retry-After is over (a second at least; a second
                 * once the worker stops); a 429 is an answer, and the report is not given
                 * up for it. */
                int wait_ms = b->wait_ms > 1000 && !atomic_load(&work_stop) ? b->wait_ms : 1000;
                r->report_after_ms = work_hb_retry_at(r, work_now_ms(), wait_ms);
                done = false;
            } else if (code == TM_CLIENT_EINVALID && how != WORK_RELEASE && res &&
                       work_run_report_refused(r, "end report", why)) {
                done = false; /* again with the next round, bare */
            } else if (r->start_failed) {
                work_log(cfg, "task '%s': cannot hand it back: %s", r->id, why);
            } else {
                work_log(cfg, "task '%s': cannot report it %s: %s", r->id, what, why);
            }
            gone[sent[i]] = done;
            json_decref(results[i]);
            json_decref(entries[i]);
        }
    }
    /* A run whose lease was lost reports nothing: it ends with its command. */
    size_t kept = 0;
    int freed = 0;
    for (size_t i = 0; i < b->nruns; i++) {
        struct work_run *r = b->runs[i];
        if (gone[i] || (r->lease_lost && work_run_is_done(r, now))) {
            work_run_release(r);
            free(r);
            freed++;
        } else {
            b->runs[kept++] = r;
        }
    }
    b->nruns = kept;
    work_slots_free(freed);
    free(entries);
    free(results);
    free(sent);
    free(gone);
}

/* Runs every claimed task's command and speaks for all of them. */
static void *work_runner_main(void *arg) {
    const struct work_config *cfg = arg;
    struct work_batch b = {.cfg = cfg, .c = work_client_new(cfg)};
    struct pollfd *fds = NULL;
    int *at = NULL; /* runs[i]'s pipes are fds[at[i]] to fds[at[i + 1] - 1] */
    size_t fds_cap = 0;
    for (;;) {
        int64_t now = work_now_ms();
        work_batch_take(&b, now);
        work_batch_start_waiting(&b, now);
        bool live = false, dirty = false;
        for (size_t i = 0; i < b.nruns; i++) {
            struct work_run *r = b.runs[i];
            if (!r->task) work_run_step(r, now);
            if (!work_run_live(r)) continue;
            live = true;
            dirty = dirty || r->dirty;
        }
        if (!live)
            b.next_tick_ms = now + cfg->heartbeat_ms; /* the next claim is its first heartbeat */
        else if (now < b.hold_ms)
            ; /* the server asked to wait */
        else if (now >= b.next_tick_ms)
            work_batch_heartbeat(&b, now, true);
        else if (dirty && now - b.last_flush_ms >= WORK_FLUSH_MS)
            work_batch_heartbeat(&b, now, false);
        for (size_t i = 0; i < b.nruns; i++)
            work_run_reap(b.runs[i], now);
        work_batch_report(&b, now);
        pthread_mutex_lock(&work_inbox_lock);
        bool over = work_claimer_done && json_array_size(work_inbox) == 0;
        pthread_mutex_unlock(&work_inbox_lock);
        if (over && b.nruns == 0) break;
        if (fds_cap < 3 * b.nruns + 1) {
            fds_cap = 3 * b.nruns + 1;
            fds = xrealloc(fds, fds_cap * sizeof *fds);
            at = xrealloc(at, (fds_cap + 1) * sizeof *at);
        }
        fds[0] = (struct pollfd){work_wake[0], POLLIN, 0};
        int nfds = 1;
        for (size_t i = 0; i < b.nruns; i++) {
            at[i] = nfds;
            nfds += work_run_pollfds(b.runs[i], fds + nfds);
        }
        at[b.nruns] = nfds;
        if (poll(fds, (nfds_t)nfds, 100) <= 0) continue;
        if (fds[0].revents) {
            char drain[64];
            while (read(work_wake[0], drain, sizeof drain) > 0) {
            }
        }
        /* Each run's pipes follow the wake pipe, in the order of runs. */
        for (size_t i = 0; i < b.nruns; i++)
            work_run_io(b.runs[i], fds + at[i], at[i + 1] - at[i]);
    }
    free(fds);
    free(at);
    free(b.runs);
    tm_client_free(b.c);
    atomic_fetch_sub(&work_running, 1);
    return NULL;
}

static void work_usage(FILE *f) {
    fprintf(f,
            "usage: taskmill work --queue Q [--type T ...] [--concurrency N] [--lease S]\n"
            "                     [--heartbeat S] [--grace S] [--permanent-exit-code N] "
            "[--max-tasks N]\n"
            "                     [--name NAME] [--quiet] [--server URL] -- COMMAND [ARGS...]\n"
            "  Claims tasks from queue Q and runs COMMAND for each: params as JSON on\n"
            "  standard input and in TASKMILL_PARAMS / TASKMILL_PARAM_<KEY>; progress lines\n"
            "  on its standard output (docs/cli.md). Exit 0 completes the task, exit N\n"
            "  (--permanent-exit-code, default 3) fails it for good, other exits fail it\n"
            "  for a retry.\n"
            "  --queue Q         the queue to claim from (required; 1 to 64 of\n"
            "                    A-Z a-z 0-9 . _ -)\n"
            "  --type T          claim only tasks of type T (give it again for more types,\n"
            "                    up to 16; default: any type)\n"
            "  --concurrency N   tasks run at once (default 1); above 1, each claim,\n"
            "                    heartbeat and report is one request for all of them\n"
            "  --lease S         lease seconds (default 60); a heartbeat unanswered for a\n"
            "                    third of it (3 s to 60 s) is given up and sent again\n"
            "  --heartbeat S     seconds between heartbeats, output or not (default 2, at\n"
            "                    most lease/3; a decimal such as 0.5 from 0.1): a cancel\n"
            "                    reaches the command that soon\n"
            "  --grace S         seconds between SIGTERM and SIGKILL (default 10)\n"
            "  --permanent-exit-code N\n"
            "                    the command's exit code that fails a task for good,\n"
            "                    with no retry (1 to 255, default 3)\n"
            "  --name NAME       the worker's name in its tasks' leases, 1 to 128 bytes\n"
            "                    (default: HOST-PID)\n"
            "  --max-tasks N     exit after N tasks (default: run until SIGINT/SIGTERM)\n"
            "  --quiet           leave out the commands' output and the lines for each task\n"
            "                    claimed and ended; what goes wrong is said all the same\n");
}

/*
 * Whether the command can be started: a path must name an executable
 * file; a bare name must be one in PATH (as posix_spawnp looks). Checked
 * once at start, so a typo stops the worker with a message instead of
 * taking tasks it cannot run. Returns 0, or -1 after the message.
 */
static int work_check_command(const char *cmd) {
    struct stat st;
    if (strchr(cmd, '/')) {
        const char *why = NULL;
        if (stat(cmd, &st))
            why = strerror(errno);
        else if (S_ISDIR(st.st_mode))
            why = "it is a directory";
        else if (access(cmd, X_OK))
            why = "it is not executable (chmod +x?)";
        if (!why) return 0;
        fprintf(stderr, "taskmill work: cannot run '%s': %s\n", cmd, why);
        return -1;
    }
    const char *path = getenv("PATH");
    if (!path || !*path) path = "/bin:/usr/bin";
    for (const char *p = path;;) {
        size_t n = strcspn(p, ":");
        char full[4096];
        snprintf(full, sizeof full, "%.*s%s%s", (int)n, p, n ? "/" : "", cmd);
        if (stat(full, &st) == 0 && !S_ISDIR(st.st_mode) && access(full, X_OK) == 0) return 0;
        if (!p[n]) break;
        p += n + 1;
    }
    bool here = stat(cmd, &st) == 0 && !S_ISDIR(st.st_mode);
    fprintf(stderr, "taskmill work: cannot run '%s': no executable of that name in PATH%s%s%s\n",
            cmd, here ? " (for the one in this directory, write './" : "", here ? cmd : "",
            here ? "')" : "");
    return -1;
}

/*
 * Takes --name as the worker's name, by the server's rule for a claim's
 * "worker": 1 to TASK_WORKER_NAME_MAX bytes of UTF-8, no control
 * characters (a name the server refuses would stop the worker at its
 * first claim; one cut short would not be the name asked for). Returns 0,
 * or -1 after the message.
 */
static int work_name_set(struct work_config *cfg, const char *name) {
    size_t n = strlen(name);
    if (n > TASK_WORKER_NAME_MAX) {
        fprintf(stderr,
                "taskmill work: '--name' is %zu bytes, longer than the %d the server takes for "
                "a worker's name\n",
                n, TASK_WORKER_NAME_MAX);
        return -1;
    }
    const char *why = n == 0                 ? "must not be empty"
                      : !utf8_valid(name, n) ? "must be UTF-8 text"
                                             : NULL;
    for (size_t i = 0; !why && i < n; i++)
        if ((unsigned char)name[i] < 0x20 || name[i] == 0x7f)
            why = "must not contain control characters";
    if (why) {
        fprintf(stderr, "taskmill work: '--name' %s\n", why);
        return -1;
    }
    memcpy(cfg->worker, name, n + 1);
    return 0;
}

/* The integer flags of work: the option's letter, its name, its range, and the field it sets. */
static const struct work_int_flag {
    int ch;
    const char *name;
    long min, max;
    size_t off; /* an int in struct work_config */
} work_int_flags[] = {
    {'c', "concurrency", 1, 256, offsetof(struct work_config, concurrency)},
    {'l', "lease", 1, 86400, offsetof(struct work_config, lease_s)},
    {'g', "grace", 0, 3600, offsetof(struct work_config, grace_s)},
    {'x', "permanent-exit-code", 1, 255, offsetof(struct work_config, permanent_exit)},
    {'m', "max-tasks", 1, 1000000000, offsetof(struct work_config, max_tasks)},
};

/* The integer flag of option ch, or NULL when ch is not one. */
static const struct work_int_flag *work_int_flag_of(int ch) {
    for (size_t i = 0; i < sizeof work_int_flags / sizeof work_int_flags[0]; i++)
        if (work_int_flags[i].ch == ch) return &work_int_flags[i];
    return NULL;
}

/* Sets fl's field of cfg from v; -1 after a message when v is out of range. */
static int work_int_flag_set(struct work_config *cfg, const struct work_int_flag *fl,
                             const char *v) {
    char *end;
    errno = 0;
    long n = strtol(v, &end, 10);
    /* Digits only: strtol also takes a leading space and a sign. */
    if (errno || end == v || *end || v[strspn(v, "0123456789")] || n < fl->min || n > fl->max) {
        fprintf(stderr, "taskmill work: '--%s' must be an integer from %ld to %ld\n", fl->name,
                fl->min, fl->max);
        return -1;
    }
    *(int *)((char *)cfg + fl->off) = (int)n;
    return 0;
}

int cmd_work(int argc, char **argv) {
    static const struct option opts[] = {
        {"server", required_argument, NULL, 's'},
        {"queue", required_argument, NULL, 'q'},
        {"type", required_argument, NULL, 't'},
        {"concurrency", required_argument, NULL, 'c'},
        {"lease", required_argument, NULL, 'l'},
        {"heartbeat", required_argument, NULL, 'b'},
        {"grace", required_argument, NULL, 'g'},
        {"permanent-exit-code", required_argument, NULL, 'x'},
        {"max-tasks", required_argument, NULL, 'm'},
        {"name", required_argument, NULL, 'n'},
        {"quiet", no_argument, NULL, 'Q'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    struct work_config cfg = {.concurrency = 1, .lease_s = 60, .grace_s = 10, .permanent_exit = 3};
    const char *types[16]; /* as many as the server takes in a claim (STORE_CLAIM_MAX_TYPES) */
    double heartbeat = 0;  /* seconds; 0: the default */
    int ch;
    while ((ch = cli_getopt("work", argc, argv, "+s:q:t:c:l:b:g:x:m:n:Qh", opts)) != -1) {
        switch (ch) {
        case 's':
            cfg.server = optarg;
            break;
        case 'q':
            cfg.queue = optarg;
            break;
        case 'n':
            if (work_name_set(&cfg, optarg)) return CLI_EXIT_USAGE;
            break;
        case 'Q':
            cfg.quiet = true;
            break;
        case 't':
            if (cfg.ntypes == sizeof types / sizeof types[0]) {
                fprintf(stderr, "taskmill work: at most 16 '--type' flags (a claim's limit)\n");
                return CLI_EXIT_USAGE;
            }
            /* The server's rule for a claim's types: a worker whose every claim is refused
             * would fail only at its first claim, long after it was started. */
            if (!*optarg || strlen(optarg) > 128 || !utf8_valid(optarg, strlen(optarg))) {
                fprintf(stderr,
                        "taskmill work: '--type' must be 1 to 128 bytes of UTF-8, not '%.*s'\n", 64,
                        optarg);
                return CLI_EXIT_USAGE;
            }
            types[cfg.ntypes++] = optarg;
            break;
        case 'b': {
            char *end;
            errno = 0;
            double sec = strtod(optarg, &end);
            /* Decimal only: strtod also takes " 5", "0x1p3" and "infinity". */
            bool decimal = optarg[strspn(optarg, "0123456789.")] == '\0';
            if (errno || end == optarg || *end || !decimal || !(sec >= 0.1 && sec <= 3600)) {
                fprintf(stderr,
                        "taskmill work: '--heartbeat %s' must be a number of seconds from 0.1 "
                        "to 3600\n",
                        optarg);
                return CLI_EXIT_USAGE;
            }
            heartbeat = sec;
            break;
        }
        case 'h':
            work_usage(stdout);
            return CLI_EXIT_OK;
        default: {
            const struct work_int_flag *fl = work_int_flag_of(ch);
            if (!fl) {
                work_usage(stderr);
                return CLI_EXIT_USAGE;
            }
            if (work_int_flag_set(&cfg, fl, optarg)) return CLI_EXIT_USAGE;
            break;
        }
        }
    }
    if (!cfg.queue || optind >= argc) {
        if (!cfg.queue && optind >= argc)
            fprintf(stderr,
                    "taskmill work: '--queue Q' and the command to run (after '--') "
                    "are missing\n");
        else if (!cfg.queue)
            fprintf(stderr, "taskmill work: '--queue Q' is missing: which queue to claim from\n");
        else
            fprintf(stderr,
                    "taskmill work: the command to run is missing: give it after '--', "
                    "as in 'taskmill work --queue %s -- ./script.sh'\n",
                    cfg.queue);
        fprintf(stderr, "('taskmill work --help' describes every flag)\n");
        return CLI_EXIT_USAGE;
    }
    if (!v1_is_name(cfg.queue, 64)) { /* the server's rule: no claim could reach another */
        fprintf(stderr, "taskmill work: '--queue' must be 1-64 of [A-Za-z0-9._-], not '%.64s'\n",
                cfg.queue);
        return CLI_EXIT_USAGE;
    }
    if (heartbeat > 0 && heartbeat * 3 > cfg.lease_s) {
        fprintf(stderr,
                "taskmill work: '--heartbeat %g' must be at most a third of '--lease' (%d s), "
                "so a late heartbeat still keeps the lease\n",
                heartbeat, cfg.lease_s);
        return CLI_EXIT_USAGE;
    }
    cfg.heartbeat_ms = heartbeat > 0 ? (int)(heartbeat * 1000) : WORK_HEARTBEAT_MS;
    if (cfg.heartbeat_ms > cfg.lease_s * 1000 / 3) cfg.heartbeat_ms = cfg.lease_s * 1000 / 3;
    if (cfg.heartbeat_ms < 100) cfg.heartbeat_ms = 100;
    cfg.heartbeat_timeout_ms = cfg.lease_s * 1000 / 3;
    if (cfg.heartbeat_timeout_ms < WORK_HB_TIMEOUT_MIN_MS)
        cfg.heartbeat_timeout_ms = WORK_HB_TIMEOUT_MIN_MS;
    if (cfg.heartbeat_timeout_ms > WORK_HB_TIMEOUT_MAX_MS)
        cfg.heartbeat_timeout_ms = WORK_HB_TIMEOUT_MAX_MS;
    if (work_check_command(argv[optind])) return CLI_EXIT_USAGE;
    work_tty = isatty(STDERR_FILENO);
    cfg.types = cfg.ntypes ? types : NULL;
    cfg.argv = argv + optind;
    if (!cfg.worker[0]) {
        char host[128] = "worker";
        gethostname(host, sizeof host);
        host[sizeof host - 1] = '\0';
        snprintf(cfg.worker, sizeof cfg.worker, "%s-%d", host, (int)getpid());
    }

    /* Slots inherit a mask without the stop signals; this thread takes them. SIGHUP (the
     * terminal closed) stops the worker as SIGTERM does: by default it ended the worker at
     * once, and the commands, in their own process groups, ran on without it while their
     * tasks went to other workers. Under nohup it stays ignored. */
    cli_block_stop_signals(&work_stop_signals);
    struct sigaction hup;
    if (sigaction(SIGHUP, NULL, &hup) == 0 && hup.sa_handler != SIG_IGN) {
        sigset_t h;
        sigemptyset(&h);
        sigaddset(&h, SIGHUP);
        pthread_sigmask(SIG_BLOCK, &h, NULL);
        sigaddset(&work_stop_signals, SIGHUP);
    }
    atomic_store(&work_stop, 0);
    atomic_store(&work_stop_ms, 0);
    /* One slot: one thread and the one-task calls. More: the runner and the claimer. */
    int nthreads = cfg.concurrency > 1 ? 2 : 1;
    if (nthreads == 2) {
        work_inbox = json_array();
        if (pipe2(work_wake, O_NONBLOCK | O_CLOEXEC)) {
            fprintf(stderr, "taskmill work: cannot make a pipe: %s\n", strerror(errno));
            abort();
        }
    }
    atomic_store(&work_running, nthreads);
    pthread_t th[2];
    for (int i = 0; i < nthreads; i++) {
        void *(*fn)(void *) = nthreads == 1 ? work_slot_main
                              : i == 0      ? work_runner_main
                                            : work_claimer_main;
        if (pthread_create(&th[i], NULL, fn, &cfg)) {
            fprintf(stderr, "taskmill work: cannot start thread %d\n", i);
            abort();
        }
    }
    work_note(&cfg, "worker '%s' claiming from queue '%s' (%d at a time)", cfg.worker, cfg.queue,
              cfg.concurrency);
    bool as_init = getpid() == 1;
    /* A stop signal is taken only once work_stop says so: until then it is pending, so that a
     * thread that finds a command killed by it sees the stop either way (work_is_stopping). */
    int sfd = signalfd(-1, &work_stop_signals, SFD_CLOEXEC | SFD_NONBLOCK);
    if (sfd < 0) {
        fprintf(stderr, "taskmill work: cannot make a signalfd: %s\n", strerror(errno));
        abort();
    }
    while (atomic_load(&work_running) > 0) {
        struct pollfd p = {sfd, POLLIN, 0};
        if (poll(&p, 1, 200) > 0) {
            int level = atomic_load(&work_stop) + 1;
            work_stop_at(level > 2 ? 2 : level);
            struct signalfd_siginfo si;
            if (read(sfd, &si, sizeof si) < 0) {
                /* Not there after all: the stop holds all the same. */
            }
            work_note(&cfg, level == 1 ? "stopping: handing back running tasks (again to kill)"
                                       : "killing the commands");
            /* At once, even while the threads wait on the server. */
            if (level == 1) work_groups_stop(work_now_ms());
        }
        if (as_init) work_reap_orphans();
        /* The grace of a command told to stop runs out here too: its thread may be waiting. */
        work_groups_kill(work_now_ms(), cfg.grace_s * 1000LL, atomic_load(&work_stop) >= 2);
    }
    close(sfd);
    for (int i = 0; i < nthreads; i++)
        pthread_join(th[i], NULL);
    free(work_groups);
    work_groups = NULL;
    work_ngroups = work_groups_cap = 0;
    if (nthreads == 2) {
        json_decref(work_inbox);
        close(work_wake[0]);
        close(work_wake[1]);
    }
    return atomic_load(&work_fatal);
}
