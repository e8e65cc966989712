/*
 * loadgen: the benchmark load generator for taskmill's v1 HTTP API. It drives
 * one workload (submit, lifecycle or read; see usage() and bench/README.md)
 * over HTTP/1.1 keep-alive, one connection per client thread and one request in
 * flight per connection, checks every reply, and prints figures plus one
 * `RESULT {...}` JSON line. bench/run.sh is its usual caller.
 *
 * Threading: main opens the connections, releases the client threads through a
 * barrier, joins them and reports; a watchdog thread ends an overrunning run.
 * Threads share only atomics, the id set and the first-failure record (each
 * behind its mutex). Ownership: connections, buffers and samples belong to one
 * thread; main owns the per-task arrays, which threads fill by index.
 * Errors: the first bad reply or failed check is recorded, every thread stops,
 * and the process prints it and exits 1 (2: bad usage, 3: watchdog).
 */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

enum {
    ID_HEX_LEN = 32,              /* task ids: 32 lowercase hex */
    TOKEN_MAX_BYTES = 512,        /* longest lease_token we echo back */
    REQUEST_MAX_BYTES = 64 << 10, /* our requests are small (a --batch one holds 32 calls) */
    HEADER_MAX_BYTES = 64 << 10,  /* reply header block */
    REPLY_MAX_BYTES = 64 << 20,   /* reply header block plus body */
    IO_TIMEOUT_S = 30,            /* per send/recv; claims long-poll for 1 s */
    PRELOAD_CLIENTS = 8,          /* read workload: clients that preload tasks */
    HEARTBEATS_PER_TASK = 4,
    READ_SETTLE_MS = 1000,              /* pause between preload and reads */
    READ_SAMPLES_PER_S_MAX = 200 * 1000 /* per reader thread; bounds its loop */
};

enum id_flag { ID_SUBMITTED = 1, ID_CLAIMED = 2, ID_COMPLETED = 4 };

static const char BLOB[] = "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx";

struct options {
    const char *url;
    const char *workload;
    long n;
    int clients;
    int workers;
    int duration_s;
    int timeout_s;
    long server_pid; /* 0: server CPU is not measured */
    int batch;       /* lifecycle: tasks per worker request (the batched protocol); 0 = one */
    bool allow_remote;
};

/* Bytes of a JSON text, [p, end). For a string value: its raw contents,
 * escapes left as they are, which makes them valid JSON string text again. */
struct json_span {
    const char *p;
    const char *end;
};

struct http_reply {
    int status;
    const char *body; /* into the connection's buffer, until its next request */
    size_t body_len;
    bool close; /* the server will not reuse the connection */
};

struct http_conn {
    const struct sockaddr *addr;
    socklen_t addr_len;
    const char *host_header;
    int fd;
    char *buf; /* received bytes: [0, len); the current reply ends at consumed */
    size_t cap, len, consumed;
    unsigned long requests_on_fd;
    bool ever_connected;
    unsigned long reconnects; /* connections opened after the first */
    int io_errno;             /* errno of the last failed send or recv */
    char req[REQUEST_MAX_BYTES];
    char err[256];
};

struct samples {
    uint64_t *ns;
    size_t len, cap;
};

struct stats {
    size_t count;
    double p50_ms, p99_ms, max_ms;
};

/* An open-addressing set of task ids, each with its enum id_flag bits. */
struct id_entry {
    char id[ID_HEX_LEN];
    uint8_t flags; /* 0: slot empty */
};

struct id_set {
    pthread_mutex_t mu;
    struct id_entry *slots;
    size_t mask;
    size_t count;
};

struct client {
    int index;
    pthread_t thread;
    struct http_conn conn;
    struct samples lat;
    uint64_t rng;
};

/* CPU and wall clock at the edges of a workload's timed window. */
struct window {
    uint64_t wall_ns;
    double client_cpu_s;
    double server_cpu_s;
    bool has_server;
    double machine_busy_s; /* all CPUs, from /proc/stat; steal excluded */
    double machine_steal_s;
    bool has_machine;
};

struct watchdog {
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool done;
    int timeout_s;
};

/* The state every thread shares. */
struct run {
    const struct options *opt;
    struct sockaddr_storage addr;
    socklen_t addr_len;
    char host_header[300];
    pthread_barrier_t start;
    uint64_t read_end_ns;        /* set before the barrier opens */
    _Atomic uint64_t *submit_ns; /* lifecycle: when each seq's submit began */
    char (*ids)[ID_HEX_LEN + 1]; /* read: preloaded ids, by seq */
    struct id_set set;
    atomic_long next_seq, submitted, claimed, completed, heartbeats, empty_claims, reads;
    atomic_long requests;
    struct window last_ack; /* lifecycle: taken by the worker that completes the last task */
    long last_ack_requests; /* requests sent by then */
    atomic_bool stop;
    pthread_mutex_t fail_mu;
    bool failed;
    char fail_msg[2048];
};

static struct run g_run = {
    .fail_mu = PTHREAD_MUTEX_INITIALIZER,
};

static void *xmalloc(size_t size) {
    void *p = malloc(size ? size : 1);
    if (!p) {
        fprintf(stderr, "loadgen: out of memory allocating %zu bytes\n", size);
        abort();
    }
    return p;
}

static void *xcalloc(size_t count, size_t size) {
    void *p = calloc(count ? count : 1, size ? size : 1);
    if (!p) {
        fprintf(stderr, "loadgen: out of memory allocating %zu x %zu bytes\n", count, size);
        abort();
    }
    return p;
}

static uint64_t clock_now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Records the first failure of the run (later ones are dropped) and asks every thread to stop. */
__attribute__((format(printf, 1, 2))) static void run_fail(const char *fmt, ...) {
    pthread_mutex_lock(&g_run.fail_mu);
    if (!g_run.failed) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(g_run.fail_msg, sizeof g_run.fail_msg, fmt, ap);
        va_end(ap);
        g_run.failed = true;
    }
    pthread_mutex_unlock(&g_run.fail_mu);
    atomic_store(&g_run.stop, true);
}

/* Records a bad reply as the run's failure, with as much of its body as fits. */
static void run_fail_reply(const char *what, const char *method, const char *path,
                           const struct http_reply *r) {
    int shown = r->body_len > 800 ? 800 : (int)r->body_len;
    run_fail("%s: %s %s -> HTTP %d, %zu-byte body: %.*s%s", what, method, path, r->status,
             r->body_len, shown, r->body, r->body_len > 800 ? "..." : "");
}

static bool run_is_stopping(void) {
    return atomic_load_explicit(&g_run.stop, memory_order_relaxed);
}

/* ---- JSON: just enough to pull a few members out of a reply ---- */

static const char *json_skip_ws(const char *p, const char *end) {
    while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r'))
        p++;
    return p;
}

/* p is at a '"'; returns the byte after the closing quote, or NULL. */
static const char *json_skip_string(const char *p, const char *end) {
    for (p++; p < end; p++) {
        if (*p == '\\') {
            p++;
        } else if (*p == '"') {
            return p + 1;
        }
    }
    return NULL;
}

/* Returns the byte after the value that starts at p, or NULL when it is malformed or cut. */
static const char *json_skip_value(const char *p, const char *end) {
    if (p >= end) return NULL;
    if (*p == '"') return json_skip_string(p, end);
    if (*p == '{' || *p == '[') {
        int depth = 0;
        while (p < end) {
            if (*p == '"') {
                p = json_skip_string(p, end);
                if (!p) return NULL;
                continue;
            }
            if (*p == '{' || *p == '[') {
                depth++;
            } else if (*p == '}' || *p == ']') {
                if (--depth == 0) return p + 1;
            }
            p++;
        }
        return NULL;
    }
    const char *start = p;
    while (p < end && ((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'z') || *p == '-' ||
                       *p == '+' || *p == '.' || *p == 'E')) {
        p++;
    }
    return p > start ? p : NULL;
}

/* Finds member `key` of the object `obj` begins with (top level of that object only). */
static bool json_object_get(struct json_span obj, const char *key, struct json_span *value) {
    const char *p = json_skip_ws(obj.p, obj.end);
    const char *end = obj.end;
    size_t key_len = strlen(key);
    if (p >= end || *p != '{') return false;
    p = json_skip_ws(p + 1, end);
    while (p < end && *p == '"') {
        const char *key_end = json_skip_string(p, end);
        if (!key_end) return false;
        bool match = (size_t)(key_end - p - 2) == key_len && memcmp(p + 1, key, key_len) == 0;
        p = json_skip_ws(key_end, end);
        if (p >= end || *p != ':') return false;
        p = json_skip_ws(p + 1, end);
        const char *value_end = json_skip_value(p, end);
        if (!value_end) return false;
        if (match) {
            value->p = p;
            value->end = value_end;
            return true;
        }
        p = json_skip_ws(value_end, end);
        if (p >= end || *p != ',') return false;
        p = json_skip_ws(p + 1, end);
    }
    return false;
}

/* Finds string member `key`; *out gets its raw contents, without the quotes. */
static bool json_get_str(struct json_span obj, const char *key, struct json_span *out) {
    struct json_span v;
    if (!json_object_get(obj, key, &v) || *v.p != '"') return false;
    out->p = v.p + 1;
    out->end = v.end - 1;
    return true;
}

static bool json_get_i64(struct json_span obj, const char *key, int64_t *out) {
    struct json_span v;
    if (!json_object_get(obj, key, &v)) return false;
    const char *p = v.p;
    bool negative = p < v.end && *p == '-';
    if (negative) p++;
    if (p >= v.end) return false;
    int64_t n = 0;
    for (; p < v.end; p++) {
        if (*p < '0' || *p > '9' || n > (INT64_MAX - 9) / 10) return false;
        n = n * 10 + (*p - '0');
    }
    *out = negative ? -n : n;
    return true;
}

static bool json_get_bool(struct json_span obj, const char *key, bool *out) {
    struct json_span v;
    if (!json_object_get(obj, key, &v)) return false;
    size_t len = (size_t)(v.end - v.p);
    if (len == 4 && memcmp(v.p, "true", 4) == 0) {
        *out = true;
    } else if (len == 5 && memcmp(v.p, "false", 5) == 0) {
        *out = false;
    } else {
        return false;
    }
    return true;
}

static bool json_span_is(struct json_span s, const char *text) {
    size_t len = strlen(text);
    return (size_t)(s.end - s.p) == len && memcmp(s.p, text, len) == 0;
}

static bool id_is_valid(struct json_span s) {
    if (s.end - s.p != ID_HEX_LEN) return false;
    for (const char *p = s.p; p < s.end; p++) {
        if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f'))) return false;
    }
    return true;
}

/* ---- the id set ---- */

static void id_set_init(struct id_set *set, size_t expected) {
    size_t cap = 64;
    while (cap < 2 * expected + 64)
        cap *= 2;
    pthread_mutex_init(&set->mu, NULL);
    set->slots = xcalloc(cap, sizeof *set->slots);
    set->mask = cap - 1;
    set->count = 0;
}

static void id_set_release(struct id_set *set) {
    free(set->slots);
    set->slots = NULL;
    pthread_mutex_destroy(&set->mu);
}

/* Adds `flags` to id's entry, creating it, and returns the flags it had before
 * (0: new), or -1 when the set is full. */
static int id_set_mark(struct id_set *set, const char *id, uint8_t flags) {
    uint64_t h = 1469598103934665603u; /* FNV-1a */
    for (int i = 0; i < ID_HEX_LEN; i++)
        h = (h ^ (uint8_t)id[i]) * 1099511628211u;
    int before = -1;
    pthread_mutex_lock(&set->mu);
    for (size_t i = h & set->mask;; i = (i + 1) & set->mask) {
        struct id_entry *e = &set->slots[i];
        if (e->flags == 0) {
            if ((set->count + 1) * 4 > (set->mask + 1) * 3) break;
            memcpy(e->id, id, ID_HEX_LEN);
            e->flags = flags;
            set->count++;
            before = 0;
            break;
        }
        if (memcmp(e->id, id, ID_HEX_LEN) == 0) {
            before = e->flags;
            e->flags |= flags;
            break;
        }
    }
    pthread_mutex_unlock(&set->mu);
    return before;
}

/* ---- latency samples ---- */

static void samples_init(struct samples *s, size_t cap) {
    s->ns = xmalloc(cap * sizeof *s->ns); /* untouched pages cost nothing */
    s->len = 0;
    s->cap = cap;
}

static void samples_release(struct samples *s) {
    free(s->ns);
    s->ns = NULL;
}

/* Returns false, dropping the sample, when the array is full. */
static bool samples_push(struct samples *s, uint64_t ns) {
    if (s->len == s->cap) return false;
    s->ns[s->len++] = ns;
    return true;
}

static int compare_u64(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

/* Nearest-rank percentile of sorted values. */
static double percentile_ms(const uint64_t *sorted, size_t count, double pct) {
    if (count == 0) return 0;
    size_t rank = (size_t)((pct / 100.0) * (double)count + 0.999999);
    if (rank < 1) rank = 1;
    if (rank > count) rank = count;
    return (double)sorted[rank - 1] / 1e6;
}

/* Merges the clients' samples, sorts them and summarizes them. */
static struct stats samples_summarize(struct client *clients, int count) {
    size_t total = 0;
    for (int i = 0; i < count; i++)
        total += clients[i].lat.len;
    uint64_t *all = xmalloc(total * sizeof *all);
    size_t at = 0;
    for (int i = 0; i < count; i++) {
        memcpy(all + at, clients[i].lat.ns, clients[i].lat.len * sizeof *all);
        at += clients[i].lat.len;
    }
    qsort(all, total, sizeof *all, compare_u64);
    struct stats st = {
        .count = total,
        .p50_ms = percentile_ms(all, total, 50),
        .p99_ms = percentile_ms(all, total, 99),
        .max_ms = total ? (double)all[total - 1] / 1e6 : 0,
    };
    free(all);
    return st;
}

/* ---- HTTP/1.1 client connection ---- */

/* Borrows addr and host_header, which must outlive the connection. */
static void http_conn_init(struct http_conn *c, const struct sockaddr *addr, socklen_t addr_len,
                           const char *host_header) {
    memset(c, 0, sizeof *c);
    c->addr = addr;
    c->addr_len = addr_len;
    c->host_header = host_header;
    c->fd = -1;
    c->cap = 16 << 10;
    c->buf = xmalloc(c->cap);
}

static void http_conn_drop(struct http_conn *c) {
    if (c->fd >= 0) close(c->fd);
    c->fd = -1;
    c->requests_on_fd = 0;
}

static void http_conn_release(struct http_conn *c) {
    http_conn_drop(c);
    free(c->buf);
    c->buf = NULL;
}

static int http_conn_connect(struct http_conn *c) {
    c->fd = socket(c->addr->sa_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (c->fd < 0) {
        snprintf(c->err, sizeof c->err, "socket: %s", strerror(errno));
        return -1;
    }
    int one = 1;
    struct timeval tv = {.tv_sec = IO_TIMEOUT_S};
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(c->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    if (connect(c->fd, c->addr, c->addr_len) != 0) {
        snprintf(c->err, sizeof c->err, "connect to '%s': %s", c->host_header, strerror(errno));
        http_conn_drop(c);
        return -1;
    }
    c->requests_on_fd = 0;
    if (c->ever_connected) c->reconnects++;
    c->ever_connected = true;
    return 0;
}

/* Reads more bytes into the buffer. Returns the count, 0 at end of stream, -1 on error. */
static ssize_t http_conn_fill(struct http_conn *c) {
    if (c->len == c->cap) {
        if (c->cap >= REPLY_MAX_BYTES) {
            snprintf(c->err, sizeof c->err, "reply larger than %d bytes", REPLY_MAX_BYTES);
            return -1;
        }
        c->cap *= 2;
        char *grown = realloc(c->buf, c->cap);
        if (!grown) {
            fprintf(stderr, "loadgen: out of memory growing a reply buffer\n");
            abort();
        }
        c->buf = grown;
    }
    for (;;) {
        ssize_t n = recv(c->fd, c->buf + c->len, c->cap - c->len, 0);
        if (n >= 0) {
            c->len += (size_t)n;
            return n;
        }
        if (errno == EINTR) continue;
        c->io_errno = errno;
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
            snprintf(c->err, sizeof c->err, "no reply within %d s", IO_TIMEOUT_S);
        } else {
            snprintf(c->err, sizeof c->err, "recv: %s", strerror(errno));
        }
        return -1;
    }
}

/* Index of the first "\r\n" at or after `from` in the buffer, or -1. */
static long http_conn_find_crlf(const struct http_conn *c, size_t from) {
    for (size_t i = from; i + 1 < c->len; i++) {
        if (c->buf[i] == '\r' && c->buf[i + 1] == '\n') return (long)i;
    }
    return -1;
}

/* Parses a decimal or (hex) chunk size at [p, end); false when there is none or it is too big. */
static bool parse_size(const char *p, const char *end, int base, size_t *out) {
    size_t n = 0;
    const char *start = p;
    for (; p < end; p++) {
        int d;
        if (*p >= '0' && *p <= '9') {
            d = *p - '0';
        } else if (base == 16 && *p >= 'a' && *p <= 'f') {
            d = *p - 'a' + 10;
        } else if (base == 16 && *p >= 'A' && *p <= 'F') {
            d = *p - 'A' + 10;
        } else {
            break;
        }
        if (n > (size_t)REPLY_MAX_BYTES) return false;
        n = n * (size_t)base + (size_t)d;
    }
    *out = n;
    return p > start;
}

/* Does the header value [p, end) hold `token` (case-insensitively, comma-separated)? */
static bool header_has_token(const char *p, const char *end, const char *token) {
    size_t len = strlen(token);
    while (p < end) {
        while (p < end && (*p == ' ' || *p == '\t' || *p == ','))
            p++;
        const char *start = p;
        while (p < end && *p != ',' && *p != ' ' && *p != '\t' && *p != ';')
            p++;
        if ((size_t)(p - start) == len && strncasecmp(start, token, len) == 0) return true;
        while (p < end && *p != ',')
            p++;
    }
    return false;
}

/* Decodes a chunked body that starts at `at`, in place. Returns 0 or -1. */
static int http_conn_read_chunked(struct http_conn *c, size_t at, struct http_reply *r) {
    size_t rd = at, wr = at;
    for (;;) {
        long eol;
        while ((eol = http_conn_find_crlf(c, rd)) < 0) {
            ssize_t n = http_conn_fill(c);
            if (n <= 0) {
                if (n == 0) snprintf(c->err, sizeof c->err, "connection closed inside a chunk");
                return -1;
            }
        }
        size_t size;
        if (!parse_size(c->buf + rd, c->buf + eol, 16, &size)) {
            snprintf(c->err, sizeof c->err, "bad chunk size line");
            return -1;
        }
        rd = (size_t)eol + 2;
        if (size == 0) break;
        while (c->len < rd + size + 2) {
            ssize_t n = http_conn_fill(c);
            if (n <= 0) {
                if (n == 0) snprintf(c->err, sizeof c->err, "connection closed inside a chunk");
                return -1;
            }
        }
        memmove(c->buf + wr, c->buf + rd, size);
        wr += size;
        rd += size + 2;
    }
    /* Trailer fields, if any, end with an empty line. */
    for (;;) {
        long eol;
        while ((eol = http_conn_find_crlf(c, rd)) < 0) {
            ssize_t n = http_conn_fill(c);
            if (n <= 0) {
                if (n == 0) snprintf(c->err, sizeof c->err, "connection closed in chunk trailer");
                return -1;
            }
        }
        bool empty = (size_t)eol == rd;
        rd = (size_t)eol + 2;
        if (empty) break;
    }
    r->body = c->buf + at;
    r->body_len = wr - at;
    c->consumed = rd;
    return 0;
}

enum http_io_result { HTTP_IO_OK = 0, HTTP_IO_ERROR = -1, HTTP_IO_NOTHING = -2 };

/* Reads one reply. HTTP_IO_NOTHING: the peer closed the connection before sending a byte. */
static int http_conn_read_reply(struct http_conn *c, bool head_only, struct http_reply *r) {
    size_t header_end;
    for (;;) {
        size_t scan = 0;
        long blank = -1;
        for (;;) {
            for (size_t i = scan; i + 3 < c->len; i++) {
                if (memcmp(c->buf + i, "\r\n\r\n", 4) == 0) {
                    blank = (long)i;
                    break;
                }
            }
            if (blank >= 0) break;
            scan = c->len > 3 ? c->len - 3 : 0;
            if (c->len >= HEADER_MAX_BYTES) {
                snprintf(c->err, sizeof c->err, "reply header over %d bytes", HEADER_MAX_BYTES);
                return HTTP_IO_ERROR;
            }
            ssize_t n = http_conn_fill(c);
            if (n == 0) {
                if (c->len == 0) return HTTP_IO_NOTHING;
                snprintf(c->err, sizeof c->err, "connection closed inside a reply header");
                return HTTP_IO_ERROR;
            }
            if (n < 0) {
                bool reset = c->io_errno == ECONNRESET;
                return reset && c->len == 0 ? HTTP_IO_NOTHING : HTTP_IO_ERROR;
            }
        }
        header_end = (size_t)blank + 4;
        const char *p = c->buf, *end = c->buf + blank;
        if (end - p < 12 || memcmp(p, "HTTP/1.", 7) != 0 || p[8] != ' ' || p[9] < '1' ||
            p[9] > '5' || p[10] < '0' || p[10] > '9' || p[11] < '0' || p[11] > '9') {
            int shown = (int)(end - p > 60 ? 60 : end - p);
            snprintf(c->err, sizeof c->err, "bad status line '%.*s'", shown, p);
            return HTTP_IO_ERROR;
        }
        r->status = (p[9] - '0') * 100 + (p[10] - '0') * 10 + (p[11] - '0');
        r->close = p[7] == '0';
        if (r->status >= 200) break;
        /* An interim 1xx reply: drop it and read the real one. */
        memmove(c->buf, c->buf + header_end, c->len - header_end);
        c->len -= header_end;
    }

    bool have_length = false, chunked = false;
    size_t length = 0;
    const char *p = c->buf, *end = c->buf + header_end - 2;
    const char *line = memchr(p, '\n', (size_t)(end - p));
    for (line = line ? line + 1 : end; line < end;) {
        const char *eol = memchr(line, '\r', (size_t)(end - line));
        if (!eol) eol = end;
        const char *colon = memchr(line, ':', (size_t)(eol - line));
        if (colon) {
            size_t name_len = (size_t)(colon - line);
            const char *value = colon + 1;
            while (value < eol && (*value == ' ' || *value == '\t'))
                value++;
            if (name_len == 14 && strncasecmp(line, "content-length", 14) == 0) {
                if (!parse_size(value, eol, 10, &length)) {
                    snprintf(c->err, sizeof c->err, "bad Content-Length");
                    return HTTP_IO_ERROR;
                }
                have_length = true;
            } else if (name_len == 17 && strncasecmp(line, "transfer-encoding", 17) == 0) {
                chunked = header_has_token(value, eol, "chunked");
            } else if (name_len == 10 && strncasecmp(line, "connection", 10) == 0) {
                if (header_has_token(value, eol, "close")) r->close = true;
                if (header_has_token(value, eol, "keep-alive")) r->close = false;
            }
        }
        line = eol + 2;
    }

    if (head_only || r->status == 204 || r->status == 304) {
        r->body = c->buf + header_end;
        r->body_len = 0;
        c->consumed = header_end;
        return HTTP_IO_OK;
    }
    if (chunked) return http_conn_read_chunked(c, header_end, r);
    if (have_length) {
        if (length > REPLY_MAX_BYTES) {
            snprintf(c->err, sizeof c->err, "Content-Length %zu is too large", length);
            return HTTP_IO_ERROR;
        }
        while (c->len < header_end + length) {
            ssize_t n = http_conn_fill(c);
            if (n <= 0) {
                if (n == 0) snprintf(c->err, sizeof c->err, "connection closed inside a body");
                return HTTP_IO_ERROR;
            }
        }
        r->body = c->buf + header_end;
        r->body_len = length;
        c->consumed = header_end + length;
        return HTTP_IO_OK;
    }
    /* Neither length nor chunks: the body runs to the end of the stream. */
    for (;;) {
        ssize_t n = http_conn_fill(c);
        if (n < 0) return HTTP_IO_ERROR;
        if (n == 0) break;
    }
    r->body = c->buf + header_end;
    r->body_len = c->len - header_end;
    r->close = true;
    c->consumed = c->len;
    return HTTP_IO_OK;
}

static int http_conn_send_all(struct http_conn *c, const char *data, size_t len) {
    while (len > 0) {
        ssize_t n = send(c->fd, data, len, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EINTR) continue;
            c->io_errno = errno;
            snprintf(c->err, sizeof c->err, "send: %s", strerror(errno));
            return errno == EPIPE || errno == ECONNRESET ? HTTP_IO_NOTHING : HTTP_IO_ERROR;
        }
        data += n;
        len -= (size_t)n;
    }
    return 0;
}

/* Sends one request (body: JSON, or NULL) and reads its reply, reconnecting
 * when the connection is closed. *r points into the connection's buffer until
 * the next call. Returns 0, or -1 with c->err set. A GET that finds a reused
 * connection closed is retried once; any other request is never sent twice. */
static int http_conn_request(struct http_conn *c, const char *method, const char *path,
                             const char *body, struct http_reply *r) {
    int n;
    if (body) {
        n = snprintf(c->req, sizeof c->req,
                     "%s %s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\n"
                     "Content-Length: %zu\r\n\r\n%s",
                     method, path, c->host_header, strlen(body), body);
    } else {
        n = snprintf(c->req, sizeof c->req, "%s %s HTTP/1.1\r\nHost: %s\r\n\r\n", method, path,
                     c->host_header);
    }
    if (n < 0 || (size_t)n >= sizeof c->req) {
        snprintf(c->err, sizeof c->err, "request over %d bytes", REQUEST_MAX_BYTES);
        return -1;
    }
    if (c->consumed < c->len) {
        snprintf(c->err, sizeof c->err, "%zu unexpected bytes after the previous reply",
                 c->len - c->consumed);
        return -1;
    }
    bool retryable = strcmp(method, "GET") == 0;
    for (int attempt = 0;; attempt++) {
        c->len = c->consumed = 0;
        if (c->fd < 0) {
            if (http_conn_connect(c) != 0) return -1;
        }
        bool reused = c->requests_on_fd > 0;
        int rc = http_conn_send_all(c, c->req, (size_t)n);
        if (rc == 0) rc = http_conn_read_reply(c, strcmp(method, "HEAD") == 0, r);
        if (rc == HTTP_IO_OK) {
            c->requests_on_fd++;
            if (r->close) http_conn_drop(c);
            return 0;
        }
        if (rc == HTTP_IO_NOTHING) {
            snprintf(c->err, sizeof c->err, "connection closed before any reply");
        }
        http_conn_drop(c);
        if (!(rc == HTTP_IO_NOTHING && reused && retryable && attempt == 0)) return -1;
    }
}

/* ---- server and client CPU ---- */

/* utime + stime of process `pid`, in seconds. */
static bool proc_cpu_s(long pid, double *out) {
    char path[64], text[1024];
    snprintf(path, sizeof path, "/proc/%ld/stat", pid);
    FILE *f = fopen(path, "r");
    if (!f) return false;
    size_t len = fread(text, 1, sizeof text - 1, f);
    fclose(f);
    text[len] = '\0';
    const char *after = strrchr(text, ')'); /* the command name may hold spaces */
    unsigned long long utime, stime;
    if (!after || sscanf(after + 1, " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu",
                         &utime, &stime) != 2) {
        return false;
    }
    *out = (double)(utime + stime) / (double)sysconf(_SC_CLK_TCK);
    return true;
}

/* Busy and steal time of all CPUs since boot, in seconds, from /proc/stat. */
static bool machine_cpu_s(double *busy, double *steal) {
    unsigned long long user, nice, system, idle, iowait, irq, softirq, st;
    FILE *f = fopen("/proc/stat", "r");
    if (!f) return false;
    int got = fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &user, &nice, &system, &idle,
                     &iowait, &irq, &softirq, &st);
    fclose(f);
    if (got != 8) return false;
    double tick = (double)sysconf(_SC_CLK_TCK);
    *busy = (double)(user + nice + system + irq + softirq) / tick;
    *steal = (double)st / tick;
    return true;
}

static void window_mark(struct window *w) {
    struct rusage ru;
    w->has_machine = machine_cpu_s(&w->machine_busy_s, &w->machine_steal_s);
    getrusage(RUSAGE_SELF, &ru);
    w->wall_ns = clock_now_ns();
    w->client_cpu_s = (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
                      (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
    w->has_server =
        g_run.opt->server_pid > 0 && proc_cpu_s(g_run.opt->server_pid, &w->server_cpu_s);
}

/* ---- watchdog ---- */

static void *watchdog_main(void *arg) {
    struct watchdog *wd = arg;
    struct timespec deadline;
    clock_gettime(CLOCK_MONOTONIC, &deadline);
    deadline.tv_sec += wd->timeout_s;
    pthread_mutex_lock(&wd->mu);
    while (!wd->done) {
        if (pthread_cond_timedwait(&wd->cv, &wd->mu, &deadline) == ETIMEDOUT) break;
    }
    if (!wd->done) {
        fprintf(stderr,
                "loadgen: error: workload '%s' did not finish within %d s (submitted %ld, "
                "claimed %ld, completed %ld, reads %ld)\n",
                g_run.opt->workload, wd->timeout_s, atomic_load(&g_run.submitted),
                atomic_load(&g_run.claimed), atomic_load(&g_run.completed),
                atomic_load(&g_run.reads));
        if (g_run.failed) fprintf(stderr, "loadgen: first failure: %s\n", g_run.fail_msg);
        fflush(stdout);
        _exit(3);
    }
    pthread_mutex_unlock(&wd->mu);
    return NULL;
}

static void watchdog_start(struct watchdog *wd, int timeout_s) {
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&wd->cv, &attr);
    pthread_condattr_destroy(&attr);
    pthread_mutex_init(&wd->mu, NULL);
    wd->done = false;
    wd->timeout_s = timeout_s;
    if (pthread_create(&wd->thread, NULL, watchdog_main, wd) != 0) {
        fprintf(stderr, "loadgen: cannot start the watchdog thread\n");
        exit(1);
    }
}

static void watchdog_stop(struct watchdog *wd) {
    pthread_mutex_lock(&wd->mu);
    wd->done = true;
    pthread_cond_signal(&wd->cv);
    pthread_mutex_unlock(&wd->mu);
    pthread_join(wd->thread, NULL);
    pthread_cond_destroy(&wd->cv);
    pthread_mutex_destroy(&wd->mu);
}

/* ---- client threads ---- */

/* Sends a request; a transport failure becomes the run's failure. */
static bool client_send(struct client *cl, const char *method, const char *path, const char *body,
                        struct http_reply *r) {
    if (http_conn_request(&cl->conn, method, path, body, r) != 0) {
        run_fail("%s %s: %s", method, path, cl->conn.err);
        return false;
    }
    atomic_fetch_add_explicit(&g_run.requests, 1, memory_order_relaxed);
    return true;
}

/* Submits task `seq`, checks the reply (201, a valid id, phase pending) and
 * copies the id into id_out (ID_HEX_LEN + 1 bytes). */
static bool client_submit(struct client *cl, long seq, char *id_out) {
    static const char path[] = "/v1/tasks";
    char body[256];
    snprintf(body, sizeof body, "{\"type\":\"bench\",\"params\":{\"seq\":%ld,\"blob\":\"%s\"}}",
             seq, BLOB);
    struct http_reply r;
    if (!client_send(cl, "POST", path, body, &r)) return false;
    if (r.status != 201) {
        run_fail_reply("submit not answered 201", "POST", path, &r);
        return false;
    }
    struct json_span root = {r.body, r.body + r.body_len}, id, phase;
    if (!json_get_str(root, "id", &id) || !id_is_valid(id)) {
        run_fail_reply("submit reply has no 32-hex 'id'", "POST", path, &r);
        return false;
    }
    if (!json_get_str(root, "phase", &phase) || !json_span_is(phase, "pending")) {
        run_fail_reply("submit reply's 'phase' is not 'pending'", "POST", path, &r);
        return false;
    }
    memcpy(id_out, id.p, ID_HEX_LEN);
    id_out[ID_HEX_LEN] = '\0';
    return true;
}

/* Submitters of all three workloads share one counter: faster clients submit more. */
static void *submitter_main(void *arg) {
    struct client *cl = arg;
    const char *workload = g_run.opt->workload;
    bool timed = strcmp(workload, "submit") == 0;
    bool lifecycle = strcmp(workload, "lifecycle") == 0;
    long n = g_run.opt->n;
    char id[ID_HEX_LEN + 1];
    pthread_barrier_wait(&g_run.start);
    while (!run_is_stopping()) {
        long seq = atomic_fetch_add(&g_run.next_seq, 1);
        if (seq >= n) break;
        uint64_t t0 = clock_now_ns();
        if (lifecycle) atomic_store_explicit(&g_run.submit_ns[seq], t0, memory_order_release);
        if (!client_submit(cl, seq, id)) break;
        if (timed) samples_push(&cl->lat, clock_now_ns() - t0); /* room for n: never full */
        if (g_run.ids) memcpy(g_run.ids[seq], id, sizeof g_run.ids[seq]);
        int before = id_set_mark(&g_run.set, id, ID_SUBMITTED);
        if (before < 0) {
            run_fail("more distinct task ids than the id set holds");
            break;
        }
        if (before & ID_SUBMITTED) {
            run_fail("the server returned id '%s' for two different submits", id);
            break;
        }
        atomic_fetch_add(&g_run.submitted, 1);
    }
    return NULL;
}

/* Claims tasks until every task has been claimed, runs each through 4
 * heartbeats and a completion, and records its end-to-end latency. */
static void worker_batch_loop(struct client *cl);

static void *worker_main(void *arg) {
    static const char claim_path[] = "/v1/queues/default/claim";
    struct client *cl = arg;
    long n = g_run.opt->n;
    char claim_body[160], path[128], body[TOKEN_MAX_BYTES + 160];
    char id[ID_HEX_LEN + 1], token[TOKEN_MAX_BYTES + 1];
    snprintf(claim_body, sizeof claim_body,
             "{\"worker\":\"w%d\",\"types\":[\"bench\"],\"lease_seconds\":60,\"wait_seconds\":1}",
             cl->index);
    pthread_barrier_wait(&g_run.start);
    if (g_run.opt->batch > 0) {
        worker_batch_loop(cl);
        return NULL;
    }
    while (!run_is_stopping() && atomic_load(&g_run.claimed) < n) {
        struct http_reply r;
        if (!client_send(cl, "POST", claim_path, claim_body, &r)) break;
        if (r.status == 204) {
            atomic_fetch_add(&g_run.empty_claims, 1);
            continue;
        }
        if (r.status != 200) {
            run_fail_reply("claim not answered 200 or 204", "POST", claim_path, &r);
            break;
        }
        struct json_span root = {r.body, r.body + r.body_len}, task, params, task_id, lease;
        int64_t seq = -1;
        if (!json_object_get(root, "task", &task) || !json_get_str(task, "id", &task_id) ||
            !id_is_valid(task_id) || !json_get_str(root, "lease_token", &lease) ||
            lease.end - lease.p > TOKEN_MAX_BYTES) {
            run_fail_reply("claim reply lacks 'task.id' or 'lease_token'", "POST", claim_path, &r);
            break;
        }
        if (!json_object_get(task, "params", &params) || !json_get_i64(params, "seq", &seq) ||
            seq < 0 || seq >= n) {
            run_fail_reply("claimed task has no 'params.seq' of this run", "POST", claim_path, &r);
            break;
        }
        memcpy(id, task_id.p, ID_HEX_LEN);
        id[ID_HEX_LEN] = '\0';
        memcpy(token, lease.p, (size_t)(lease.end - lease.p));
        token[lease.end - lease.p] = '\0';
        int before = id_set_mark(&g_run.set, id, ID_CLAIMED);
        if (before < 0) {
            run_fail("more distinct task ids than the id set holds");
            break;
        }
        if (before & ID_CLAIMED) {
            run_fail("task '%s' was claimed twice", id);
            break;
        }
        atomic_fetch_add(&g_run.claimed, 1);

        snprintf(path, sizeof path, "/v1/tasks/%s/heartbeat", id);
        for (int k = 1; k <= HEARTBEATS_PER_TASK; k++) {
            snprintf(body, sizeof body,
                     "{\"lease_token\":\"%s\",\"progress\":{\"ratio\":%.2f,\"message\":\"step "
                     "%d/%d\"}}",
                     token, (double)k / HEARTBEATS_PER_TASK, k, HEARTBEATS_PER_TASK);
            if (!client_send(cl, "POST", path, body, &r)) goto out;
            bool cancel = true;
            struct json_span hb = {r.body, r.body + r.body_len};
            if (r.status != 200) {
                run_fail_reply("heartbeat not answered 200", "POST", path, &r);
                goto out;
            }
            if (!json_get_bool(hb, "cancel_requested", &cancel) || cancel) {
                run_fail_reply("heartbeat reply's 'cancel_requested' is not false", "POST", path,
                               &r);
                goto out;
            }
            atomic_fetch_add(&g_run.heartbeats, 1);
        }

        snprintf(path, sizeof path, "/v1/tasks/%s/complete", id);
        snprintf(body, sizeof body, "{\"lease_token\":\"%s\",\"result\":{\"ok\":true}}", token);
        if (!client_send(cl, "POST", path, body, &r)) break;
        struct json_span done = {r.body, r.body + r.body_len}, phase, done_id;
        if (r.status != 200) {
            run_fail_reply("complete not answered 200", "POST", path, &r);
            break;
        }
        if (!json_get_str(done, "phase", &phase) || !json_span_is(phase, "completed") ||
            !json_get_str(done, "id", &done_id) || !json_span_is(done_id, id)) {
            run_fail_reply("complete reply is not this task in phase 'completed'", "POST", path,
                           &r);
            break;
        }
        uint64_t now = clock_now_ns();
        uint64_t submitted_ns = atomic_load_explicit(&g_run.submit_ns[seq], memory_order_acquire);
        if (submitted_ns > 0 && submitted_ns <= now) samples_push(&cl->lat, now - submitted_ns);
        id_set_mark(&g_run.set, id, ID_COMPLETED);
        if (atomic_fetch_add(&g_run.completed, 1) + 1 == n) {
            /* The last task: close the timed window here, before the idle claims that end the
             * other workers' loops. */
            window_mark(&g_run.last_ack);
            g_run.last_ack.wall_ns = now;
            g_run.last_ack_requests = atomic_load(&g_run.requests);
        }
    }
out:
    return NULL;
}

/* One claimed task of a batch. */
struct held {
    char id[ID_HEX_LEN + 1];
    char token[TOKEN_MAX_BYTES + 1];
    int64_t seq;
};

/* Appends printf output to a request body; false (and a run failure) past its end. */
__attribute__((format(printf, 4, 5))) static bool body_add(char *b, size_t cap, size_t *len,
                                                           const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(b + *len, cap - *len, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= cap - *len) {
        run_fail("a batched request grew past %zu bytes", cap);
        return false;
    }
    *len += (size_t)n;
    return true;
}

/* Checks a batched reply: `results` holds one entry per task, none with an error. */
static bool batch_results_ok(const struct http_reply *r, int count, const char *what,
                             const char *path) {
    struct json_span root = {r->body, r->body + r->body_len}, res;
    if (r->status != 200 || !json_object_get(root, "results", &res) || *res.p != '[') {
        run_fail_reply(what, "POST", path, r);
        return false;
    }
    const char *p = json_skip_ws(res.p + 1, res.end);
    int got = 0;
    while (p < res.end && *p == '{') {
        const char *end = json_skip_value(p, res.end);
        struct json_span e = {p, end}, err;
        if (!end || json_object_get(e, "error", &err)) {
            run_fail_reply(what, "POST", path, r);
            return false;
        }
        got++;
        p = json_skip_ws(end, res.end);
        if (p < res.end && *p == ',') p = json_skip_ws(p + 1, res.end);
    }
    if (got != count) {
        run_fail_reply(what, "POST", path, r);
        return false;
    }
    return true;
}

/*
 * The lifecycle with the batched protocol (--batch B): claim up to B tasks
 * in one request, send their four heartbeats as four requests carrying all
 * of them, and complete them in one.
 */
static void worker_batch_loop(struct client *cl) {
    static const char hb_path[] = "/v1/work/heartbeat", done_path[] = "/v1/work/complete";
    long n = g_run.opt->n;
    int max = g_run.opt->batch;
    char claim_path[] = "/v1/queues/default/claims", claim_body[200];
    snprintf(claim_body, sizeof claim_body,
             "{\"worker\":\"w%d\",\"max\":%d,\"types\":[\"bench\"],\"lease_seconds\":60,"
             "\"wait_seconds\":1}",
             cl->index, max);
    struct held *held = xcalloc((size_t)max, sizeof *held);
    size_t cap = REQUEST_MAX_BYTES - 512;
    char *body = xmalloc(cap);
    while (!run_is_stopping() && atomic_load(&g_run.claimed) < n) {
        struct http_reply r;
        if (!client_send(cl, "POST", claim_path, claim_body, &r)) break;
        if (r.status == 204) {
            atomic_fetch_add(&g_run.empty_claims, 1);
            continue;
        }
        struct json_span root = {r.body, r.body + r.body_len}, arr;
        if (r.status != 200 || !json_object_get(root, "claims", &arr) || *arr.p != '[') {
            run_fail_reply("claims not answered 200 with 'claims'", "POST", claim_path, &r);
            break;
        }
        int count = 0;
        const char *p = json_skip_ws(arr.p + 1, arr.end);
        while (p < arr.end && *p == '{' && count < max) {
            const char *end = json_skip_value(p, arr.end);
            struct json_span c = {p, end}, task, params, tid, lease;
            struct held *h = &held[count];
            if (!end || !json_object_get(c, "task", &task) || !json_get_str(task, "id", &tid) ||
                !id_is_valid(tid) || !json_get_str(c, "lease_token", &lease) ||
                lease.end - lease.p > TOKEN_MAX_BYTES ||
                !json_object_get(task, "params", &params) ||
                !json_get_i64(params, "seq", &h->seq) || h->seq < 0 || h->seq >= n) {
                run_fail_reply("a claim lacks 'task.id', 'lease_token' or 'params.seq'", "POST",
                               claim_path, &r);
                goto out;
            }
            memcpy(h->id, tid.p, ID_HEX_LEN);
            h->id[ID_HEX_LEN] = '\0';
            memcpy(h->token, lease.p, (size_t)(lease.end - lease.p));
            h->token[lease.end - lease.p] = '\0';
            int before = id_set_mark(&g_run.set, h->id, ID_CLAIMED);
            if (before < 0 || (before & ID_CLAIMED)) {
                run_fail("task '%s' was claimed twice (or the id set is full)", h->id);
                goto out;
            }
            count++;
            p = json_skip_ws(end, arr.end);
            if (p < arr.end && *p == ',') p = json_skip_ws(p + 1, arr.end);
        }
        atomic_fetch_add(&g_run.claimed, count);
        for (int k = 1; k <= HEARTBEATS_PER_TASK; k++) {
            size_t len = 0;
            if (!body_add(body, cap, &len, "{\"entries\":[")) goto out;
            for (int i = 0; i < count; i++)
                if (!body_add(body, cap, &len,
                              "%s{\"id\":\"%s\",\"lease_token\":\"%s\",\"progress\":{\"ratio\":"
                              "%.2f,\"message\":\"step %d/%d\"}}",
                              i ? "," : "", held[i].id, held[i].token,
                              (double)k / HEARTBEATS_PER_TASK, k, HEARTBEATS_PER_TASK))
                    goto out;
            if (!body_add(body, cap, &len, "]}")) goto out;
            if (!client_send(cl, "POST", hb_path, body, &r)) goto out;
            if (!batch_results_ok(&r, count, "batched heartbeat not all answered", hb_path))
                goto out;
            atomic_fetch_add(&g_run.heartbeats, count);
        }
        size_t len = 0;
        if (!body_add(body, cap, &len, "{\"entries\":[")) goto out;
        for (int i = 0; i < count; i++)
            if (!body_add(body, cap, &len,
                          "%s{\"id\":\"%s\",\"lease_token\":\"%s\",\"result\":{\"ok\":true}}",
                          i ? "," : "", held[i].id, held[i].token))
                goto out;
        if (!body_add(body, cap, &len, "]}")) goto out;
        if (!client_send(cl, "POST", done_path, body, &r)) goto out;
        if (!batch_results_ok(&r, count, "batched complete not all answered", done_path)) goto out;
        uint64_t now = clock_now_ns();
        for (int i = 0; i < count; i++) {
            uint64_t submitted_ns =
                atomic_load_explicit(&g_run.submit_ns[held[i].seq], memory_order_acquire);
            if (submitted_ns > 0 && submitted_ns <= now) samples_push(&cl->lat, now - submitted_ns);
            id_set_mark(&g_run.set, held[i].id, ID_COMPLETED);
            if (atomic_fetch_add(&g_run.completed, 1) + 1 == n) {
                window_mark(&g_run.last_ack);
                g_run.last_ack.wall_ns = now;
                g_run.last_ack_requests = atomic_load(&g_run.requests);
            }
        }
    }
out:
    free(body);
    free(held);
}

static uint64_t rng_next(uint64_t *state) { /* xorshift64* */
    uint64_t x = *state;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *state = x;
    return x * 2685821657736338717u;
}

/* Reads random preloaded tasks until the window closes; each must be pending. */
static void *reader_main(void *arg) {
    struct client *cl = arg;
    long n = g_run.opt->n;
    char path[64];
    pthread_barrier_wait(&g_run.start);
    uint64_t end_ns = g_run.read_end_ns;
    while (!run_is_stopping()) {
        uint64_t t0 = clock_now_ns();
        if (t0 >= end_ns) break;
        const char *id = g_run.ids[rng_next(&cl->rng) % (uint64_t)n];
        snprintf(path, sizeof path, "/v1/tasks/%s", id);
        struct http_reply r;
        if (!client_send(cl, "GET", path, NULL, &r)) break;
        uint64_t t1 = clock_now_ns();
        struct json_span root = {r.body, r.body + r.body_len}, phase, got_id;
        if (r.status != 200) {
            run_fail_reply("read not answered 200", "GET", path, &r);
            break;
        }
        if (!json_get_str(root, "phase", &phase) || !json_span_is(phase, "pending") ||
            !json_get_str(root, "id", &got_id) || !json_span_is(got_id, id)) {
            run_fail_reply("read reply is not this task in phase 'pending'", "GET", path, &r);
            break;
        }
        if (!samples_push(&cl->lat, t1 - t0)) break; /* the bound on this loop */
        atomic_fetch_add(&g_run.reads, 1);
    }
    return NULL;
}

/* Opens `count` connections (first_index numbers them) and starts their
 * threads, which wait on g_run.start. Exits the process if one cannot connect. */
static struct client *clients_start(int count, int first_index, void *(*fn)(void *),
                                    size_t sample_cap) {
    struct client *clients = xcalloc((size_t)count, sizeof *clients);
    for (int i = 0; i < count; i++) {
        struct client *cl = &clients[i];
        cl->index = first_index + i;
        cl->rng = (clock_now_ns() ^ (0x9e3779b97f4a7c15u * (uint64_t)(cl->index + 1))) | 1;
        http_conn_init(&cl->conn, (const struct sockaddr *)&g_run.addr, g_run.addr_len,
                       g_run.host_header);
        if (http_conn_connect(&cl->conn) != 0) {
            fprintf(stderr, "loadgen: error: %s\n", cl->conn.err);
            exit(1);
        }
        samples_init(&cl->lat, sample_cap);
    }
    for (int i = 0; i < count; i++) {
        if (pthread_create(&clients[i].thread, NULL, fn, &clients[i]) != 0) {
            fprintf(stderr, "loadgen: error: cannot start client thread %d\n", i);
            exit(1);
        }
    }
    return clients;
}

/* Joins the threads; returns the reconnects they made. */
static unsigned long clients_join(struct client *clients, int count) {
    unsigned long reconnects = 0;
    for (int i = 0; i < count; i++) {
        pthread_join(clients[i].thread, NULL);
        reconnects += clients[i].conn.reconnects;
    }
    return reconnects;
}

static void clients_free(struct client *clients, int count) {
    if (!clients) return;
    for (int i = 0; i < count; i++) {
        http_conn_release(&clients[i].conn);
        samples_release(&clients[i].lat);
    }
    free(clients);
}

static void barrier_init(int parties) {
    if (pthread_barrier_init(&g_run.start, NULL, (unsigned)parties) != 0) {
        fprintf(stderr, "loadgen: error: cannot create a barrier\n");
        exit(1);
    }
}

/* ---- reporting ---- */

struct report {
    const char *workload;
    const char *latency; /* what the percentiles measure */
    long ops;
    double elapsed_s;
    struct stats lat;
    long requests;
    unsigned long reconnects;
    struct window begin, end;
};

static double safe_div(double a, double b) {
    return b > 0 ? a / b : 0;
}

/* Prints the lines every workload shares and opens the RESULT line; the caller closes it. */
static void report_print(const struct report *rep) {
    const struct options *opt = g_run.opt;
    double client_cpu = rep->end.client_cpu_s - rep->begin.client_cpu_s;
    bool has_server = rep->begin.has_server && rep->end.has_server;
    double server_cpu = has_server ? rep->end.server_cpu_s - rep->begin.server_cpu_s : 0;
    double window_s = (double)(rep->end.wall_ns - rep->begin.wall_ns) / 1e9;
    printf("%s latency (%s), ms: p50 %.3f  p99 %.3f  max %.3f  (%zu samples)\n", rep->workload,
           rep->latency, rep->lat.p50_ms, rep->lat.p99_ms, rep->lat.max_ms, rep->lat.count);
    printf("%s: %ld HTTP requests, %lu reconnects; loadgen CPU %.2f s", rep->workload,
           rep->requests, rep->reconnects, client_cpu);
    if (has_server) {
        printf("; server CPU %.2f s over %.2f s = %.1f us/op, %.1f us/request", server_cpu,
               window_s, safe_div(server_cpu * 1e6, (double)rep->ops),
               safe_div(server_cpu * 1e6, (double)rep->requests));
    }
    printf("\n");
    /* Noise: the hypervisor's steal, and CPU that neither loadgen nor the server used. */
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    bool has_machine = rep->begin.has_machine && rep->end.has_machine && window_s > 0 && cpus > 0;
    double steal_pct = 0, other_pct = 0;
    if (has_machine) {
        double capacity_s = window_s * (double)cpus;
        double busy = rep->end.machine_busy_s - rep->begin.machine_busy_s;
        steal_pct = 100 * (rep->end.machine_steal_s - rep->begin.machine_steal_s) / capacity_s;
        other_pct = 100 * (busy - client_cpu - server_cpu) / capacity_s;
        if (other_pct < 0) other_pct = 0; /* tick granularity */
        printf("%s: machine noise: steal %.1f%%, other processes%s %.1f%% of %ld CPUs\n",
               rep->workload, steal_pct, has_server ? "" : " and the server", other_pct, cpus);
    }
    printf(
        "RESULT {\"workload\":\"%s\",\"ops\":%ld,\"ops_per_s\":%.1f,\"p50_ms\":%.3f,"
        "\"p99_ms\":%.3f,\"max_ms\":%.3f,\"latency\":\"%s\",\"elapsed_s\":%.3f,\"n\":%ld,"
        "\"clients\":%d,\"requests\":%ld,\"reconnects\":%lu,\"client_cpu_s\":%.3f",
        rep->workload, rep->ops, safe_div((double)rep->ops, rep->elapsed_s), rep->lat.p50_ms,
        rep->lat.p99_ms, rep->lat.max_ms, rep->latency, rep->elapsed_s, opt->n, opt->clients,
        rep->requests, rep->reconnects, client_cpu);
    if (has_server) {
        printf(
            ",\"server_cpu_s\":%.3f,\"server_cpu_us_per_op\":%.1f,"
            "\"server_cpu_us_per_request\":%.1f",
            server_cpu, safe_div(server_cpu * 1e6, (double)rep->ops),
            safe_div(server_cpu * 1e6, (double)rep->requests));
    }
    if (has_machine) printf(",\"steal_pct\":%.1f,\"other_cpu_pct\":%.1f", steal_pct, other_pct);
}

/* Prints the first failure, if any, and returns whether there was one. */
static bool run_report_failure(void) {
    pthread_mutex_lock(&g_run.fail_mu);
    bool failed = g_run.failed;
    if (failed) fprintf(stderr, "loadgen: FAILED %s: %s\n", g_run.opt->workload, g_run.fail_msg);
    pthread_mutex_unlock(&g_run.fail_mu);
    return failed;
}

/* ---- workloads ---- */

static int workload_submit(void) {
    const struct options *opt = g_run.opt;
    struct report rep = {.workload = "submit", .latency = "request"};
    barrier_init(opt->clients + 1);
    struct client *cls = clients_start(opt->clients, 0, submitter_main, (size_t)opt->n);
    window_mark(&rep.begin);
    pthread_barrier_wait(&g_run.start);
    rep.reconnects = clients_join(cls, opt->clients);
    window_mark(&rep.end);
    pthread_barrier_destroy(&g_run.start);
    if (run_report_failure()) goto fail;
    long submitted = atomic_load(&g_run.submitted);
    if (submitted != opt->n) {
        fprintf(stderr, "loadgen: FAILED submit: %ld of %ld submits acknowledged\n", submitted,
                opt->n);
        goto fail;
    }
    rep.ops = submitted;
    rep.elapsed_s = (double)(rep.end.wall_ns - rep.begin.wall_ns) / 1e9;
    rep.lat = samples_summarize(cls, opt->clients);
    rep.requests = atomic_load(&g_run.requests);
    printf(
        "submit: %ld tasks by %d clients in %.3f s = %.1f submits/s; all 201, %zu distinct "
        "ids\n",
        rep.ops, opt->clients, rep.elapsed_s, safe_div((double)rep.ops, rep.elapsed_s),
        g_run.set.count);
    report_print(&rep);
    printf("}\n");
    clients_free(cls, opt->clients);
    return 0;
fail:
    clients_free(cls, opt->clients);
    return 1;
}

static int workload_lifecycle(void) {
    const struct options *opt = g_run.opt;
    struct report rep = {.workload = "lifecycle", .latency = "end_to_end"};
    int total = opt->clients + opt->workers;
    g_run.submit_ns = xcalloc((size_t)opt->n, sizeof *g_run.submit_ns);
    barrier_init(total + 1);
    struct client *subs = clients_start(opt->clients, 0, submitter_main, 1);
    struct client *wks = clients_start(opt->workers, 1, worker_main, (size_t)opt->n);
    window_mark(&rep.begin);
    pthread_barrier_wait(&g_run.start);
    rep.reconnects = clients_join(subs, opt->clients) + clients_join(wks, opt->workers);
    window_mark(&rep.end);
    pthread_barrier_destroy(&g_run.start);
    int rc = 1;
    if (run_report_failure()) goto out;

    long completed = atomic_load(&g_run.completed);
    size_t foreign = 0, unclaimed = 0, uncompleted = 0;
    const char *example = NULL;
    for (size_t i = 0; i <= g_run.set.mask; i++) {
        const struct id_entry *e = &g_run.set.slots[i];
        if (e->flags == 0) continue;
        if (!(e->flags & ID_SUBMITTED)) {
            foreign++;
        } else if (!(e->flags & ID_CLAIMED)) {
            unclaimed++;
        } else if (!(e->flags & ID_COMPLETED)) {
            uncompleted++;
        } else {
            continue;
        }
        if (!example) example = e->id;
    }
    if (completed != opt->n || foreign || unclaimed || uncompleted) {
        fprintf(stderr,
                "loadgen: FAILED lifecycle: %ld of %ld tasks completed; %zu claimed tasks were "
                "not submitted by this run (use a fresh database), %zu never claimed, %zu "
                "claimed but not completed; e.g. '%.32s'\n",
                completed, opt->n, foreign, unclaimed, uncompleted, example ? example : "-");
        goto out;
    }
    long heartbeats = atomic_load(&g_run.heartbeats);
    rep.end = g_run.last_ack; /* joined threads: their writes are visible */
    rep.ops = completed;
    rep.elapsed_s = (double)(rep.end.wall_ns - rep.begin.wall_ns) / 1e9;
    rep.lat = samples_summarize(wks, opt->workers);
    rep.requests = g_run.last_ack_requests;
    printf(
        "lifecycle: %ld tasks submitted by %d clients, run by %d workers in %.3f s (first "
        "submit to last completion ack) = %.1f completed/s, %.1f heartbeats/s; no duplicate "
        "claims, %ld empty claims\n",
        rep.ops, opt->clients, opt->workers, rep.elapsed_s,
        safe_div((double)rep.ops, rep.elapsed_s), safe_div((double)heartbeats, rep.elapsed_s),
        atomic_load(&g_run.empty_claims));
    report_print(&rep);
    printf(",\"workers\":%d,\"heartbeats\":%ld,\"heartbeats_per_s\":%.1f,\"empty_claims\":%ld}\n",
           opt->workers, heartbeats, safe_div((double)heartbeats, rep.elapsed_s),
           atomic_load(&g_run.empty_claims));
    rc = 0;
out:
    clients_free(subs, opt->clients);
    clients_free(wks, opt->workers);
    free(g_run.submit_ns);
    g_run.submit_ns = NULL;
    return rc;
}

static int workload_read(void) {
    const struct options *opt = g_run.opt;
    struct report rep = {.workload = "read", .latency = "request"};
    struct client *readers = NULL;
    int rc = 1;
    g_run.ids = xcalloc((size_t)opt->n, sizeof *g_run.ids);

    uint64_t t0 = clock_now_ns();
    barrier_init(PRELOAD_CLIENTS + 1);
    struct client *loaders = clients_start(PRELOAD_CLIENTS, 0, submitter_main, 1);
    pthread_barrier_wait(&g_run.start);
    clients_join(loaders, PRELOAD_CLIENTS);
    clients_free(loaders, PRELOAD_CLIENTS);
    pthread_barrier_destroy(&g_run.start);
    if (run_report_failure()) goto out;
    if (atomic_load(&g_run.submitted) != opt->n) {
        fprintf(stderr, "loadgen: FAILED read: preloaded %ld of %ld tasks\n",
                atomic_load(&g_run.submitted), opt->n);
        goto out;
    }
    printf("read: preloaded %ld pending tasks in %.3f s (untimed)\n", opt->n,
           (double)(clock_now_ns() - t0) / 1e9);
    struct timespec settle = {.tv_sec = READ_SETTLE_MS / 1000,
                              .tv_nsec = (READ_SETTLE_MS % 1000) * 1000000L};
    nanosleep(&settle, NULL);

    atomic_store(&g_run.requests, 0);
    barrier_init(opt->clients + 1);
    readers = clients_start(opt->clients, 0, reader_main,
                            (size_t)opt->duration_s * READ_SAMPLES_PER_S_MAX);
    window_mark(&rep.begin);
    g_run.read_end_ns = rep.begin.wall_ns + (uint64_t)opt->duration_s * 1000000000u;
    pthread_barrier_wait(&g_run.start);
    rep.reconnects = clients_join(readers, opt->clients);
    window_mark(&rep.end);
    pthread_barrier_destroy(&g_run.start);
    if (run_report_failure()) goto out;
    rep.ops = atomic_load(&g_run.reads);
    if (rep.ops == 0) {
        fprintf(stderr, "loadgen: FAILED read: no read completed\n");
        goto out;
    }
    rep.elapsed_s = (double)(rep.end.wall_ns - rep.begin.wall_ns) / 1e9;
    rep.lat = samples_summarize(readers, opt->clients);
    rep.requests = atomic_load(&g_run.requests);
    printf(
        "read: %ld reads of random tasks by %d clients in %.3f s = %.1f reads/s; all 200 "
        "and pending\n",
        rep.ops, opt->clients, rep.elapsed_s, safe_div((double)rep.ops, rep.elapsed_s));
    report_print(&rep);
    printf(",\"duration_s\":%d}\n", opt->duration_s);
    rc = 0;
out:
    clients_free(readers, opt->clients);
    free(g_run.ids);
    g_run.ids = NULL;
    return rc;
}

/* ---- options ---- */

static void usage(FILE *out) {
    fprintf(out,
            "usage: loadgen --url http://HOST:PORT --workload submit|lifecycle|read\n"
            "               [-n N] [-c C] [-w W] [--duration S] [--timeout S]\n"
            "               [--server-pid PID] [--allow-remote] [--batch B]\n"
            "\n"
            "  submit     N tasks submitted by C clients sharing one counter; submits/s and\n"
            "             per-request latency; every reply must be 201, pending, a fresh id\n"
            "  lifecycle  C submitters and W workers together; each task is claimed, gets 4\n"
            "             heartbeats and is completed; completed/s, heartbeats/s, end-to-end\n"
            "             latency; no duplicate claims, every task completed\n"
            "  read       N tasks preloaded (untimed), then C clients read random ones for S\n"
            "             seconds; reads/s and latency; every reply must be 200 and pending\n"
            "\n"
            "  -n N            tasks (default 20000)\n"
            "  -c C            clients (default 8)\n"
            "  -w W            lifecycle workers (default 8)\n"
            "  --duration S    read window in seconds (default 10)\n"
            "  --timeout S     watchdog per workload, plus --duration for read (default 60)\n"
            "  --server-pid P  also report the server's CPU time over the timed window\n"
            "  --allow-remote  allow a non-loopback target (default: loopback only)\n"
            "  --batch B       lifecycle: each worker claims up to B (1..32) tasks per request\n"
            "                  and heartbeats and completes them together (the batched protocol)\n"
            "\n"
            "Prints figures and one 'RESULT {json}' line. Exit 0: all checks passed;\n"
            "1: a check failed or a reply was not 2xx (the first is printed); 2: usage;\n"
            "3: the watchdog fired. Use a fresh database for each run.\n");
}

static long parse_long(const char *text, const char *what, long min, long max) {
    char *end;
    errno = 0;
    long v = strtol(text, &end, 10);
    if (errno || end == text || *end || v < min || v > max) {
        fprintf(stderr, "loadgen: '%s' must be an integer from %ld to %ld, not '%s'\n", what, min,
                max, text);
        exit(2);
    }
    return v;
}

static void options_parse(int argc, char **argv, struct options *opt) {
    static const struct option longs[] = {
        {"url", required_argument, NULL, 'u'},
        {"workload", required_argument, NULL, 'W'},
        {"duration", required_argument, NULL, 'd'},
        {"timeout", required_argument, NULL, 't'},
        {"server-pid", required_argument, NULL, 'p'},
        {"allow-remote", no_argument, NULL, 'r'},
        {"batch", required_argument, NULL, 'b'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    *opt =
        (struct options){.n = 20000, .clients = 8, .workers = 8, .duration_s = 10, .timeout_s = 60};
    int ch;
    while ((ch = getopt_long(argc, argv, "n:c:w:h", longs, NULL)) != -1) {
        switch (ch) {
        case 'u':
            opt->url = optarg;
            break;
        case 'W':
            opt->workload = optarg;
            break;
        case 'n':
            opt->n = parse_long(optarg, "-n", 1, 100000000);
            break;
        case 'c':
            opt->clients = (int)parse_long(optarg, "-c", 1, 1024);
            break;
        case 'w':
            opt->workers = (int)parse_long(optarg, "-w", 1, 1024);
            break;
        case 'd':
            opt->duration_s = (int)parse_long(optarg, "--duration", 1, 3600);
            break;
        case 't':
            opt->timeout_s = (int)parse_long(optarg, "--timeout", 1, 86400);
            break;
        case 'p':
            opt->server_pid = parse_long(optarg, "--server-pid", 1, 1L << 22);
            break;
        case 'r':
            opt->allow_remote = true;
            break;
        case 'b':
            opt->batch = (int)parse_long(optarg, "--batch", 1, 32);
            break;
        case 'h':
            usage(stdout);
            exit(0);
        default:
            usage(stderr);
            exit(2);
        }
    }
    if (optind < argc || !opt->url || !opt->workload) {
        usage(stderr);
        exit(2);
    }
    if (strcmp(opt->workload, "submit") != 0 && strcmp(opt->workload, "lifecycle") != 0 &&
        strcmp(opt->workload, "read") != 0) {
        fprintf(stderr, "loadgen: unknown workload '%s' (submit, lifecycle, read)\n",
                opt->workload);
        exit(2);
    }
}

static bool sockaddr_is_loopback(const struct sockaddr *sa) {
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
        return (ntohl(in->sin_addr.s_addr) >> 24) == 127;
    }
    if (sa->sa_family == AF_INET6) {
        const struct in6_addr *a = &((const struct sockaddr_in6 *)sa)->sin6_addr;
        static const uint8_t v4_mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
        return IN6_IS_ADDR_LOOPBACK(a) ||
               (memcmp(a->s6_addr, v4_mapped, 12) == 0 && a->s6_addr[12] == 127);
    }
    return false;
}

/* Splits http://HOST[:PORT][/] and resolves HOST into g_run.addr. */
static void url_resolve(const struct options *opt) {
    const char *p = opt->url;
    char host[256], port[16] = "80";
    if (strncmp(p, "http://", 7) != 0) {
        fprintf(stderr, "loadgen: url '%s' must start with 'http://'\n", opt->url);
        exit(2);
    }
    p += 7;
    const char *host_end;
    const char *host_start = p;
    if (*p == '[') {
        host_start = p + 1;
        host_end = strchr(p, ']');
        if (!host_end) goto bad;
        p = host_end + 1;
    } else {
        host_end = p + strcspn(p, ":/");
        p = host_end;
    }
    if ((size_t)(host_end - host_start) >= sizeof host || host_end == host_start) goto bad;
    memcpy(host, host_start, (size_t)(host_end - host_start));
    host[host_end - host_start] = '\0';
    const char *authority_end = p + strcspn(p, "/");
    if (*p == ':') {
        size_t len = (size_t)(authority_end - p - 1);
        if (len == 0 || len >= sizeof port) goto bad;
        memcpy(port, p + 1, len);
        port[len] = '\0';
    } else if (p != authority_end) {
        goto bad;
    }
    if (*authority_end && strcmp(authority_end, "/") != 0) {
        fprintf(stderr, "loadgen: url '%s' must not have a path\n", opt->url);
        exit(2);
    }
    snprintf(g_run.host_header, sizeof g_run.host_header, "%.*s",
             (int)(authority_end - opt->url - 7), opt->url + 7);

    struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *res;
    int rc = getaddrinfo(host, port, &hints, &res);
    if (rc != 0) {
        fprintf(stderr, "loadgen: cannot resolve '%s': %s\n", host, gai_strerror(rc));
        exit(2);
    }
    memcpy(&g_run.addr, res->ai_addr, res->ai_addrlen);
    g_run.addr_len = res->ai_addrlen;
    freeaddrinfo(res);
    if (!opt->allow_remote && !sockaddr_is_loopback((const struct sockaddr *)&g_run.addr)) {
        fprintf(stderr, "loadgen: '%s' is not a loopback address; pass --allow-remote to load it\n",
                host);
        exit(2);
    }
    return;
bad:
    fprintf(stderr, "loadgen: url '%s' is not http://HOST[:PORT]\n", opt->url);
    exit(2);
}

int main(int argc, char **argv) {
    struct options opt;
    options_parse(argc, argv, &opt);
    g_run.opt = &opt;
    url_resolve(&opt);
    setvbuf(stdout, NULL, _IOLBF, 0);
    id_set_init(&g_run.set, (size_t)opt.n);
    printf("loadgen: workload %s, n=%ld, clients=%d", opt.workload, opt.n, opt.clients);
    if (strcmp(opt.workload, "lifecycle") == 0) printf(", workers=%d", opt.workers);
    if (strcmp(opt.workload, "read") == 0) printf(", duration=%d s", opt.duration_s);
    printf(", url %s\n", opt.url);

    struct watchdog wd;
    bool read = strcmp(opt.workload, "read") == 0;
    watchdog_start(&wd, opt.timeout_s + (read ? opt.duration_s : 0));
    int rc;
    if (strcmp(opt.workload, "submit") == 0) {
        rc = workload_submit();
    } else if (strcmp(opt.workload, "lifecycle") == 0) {
        rc = workload_lifecycle();
    } else {
        rc = workload_read();
    }
    watchdog_stop(&wd);
    id_set_release(&g_run.set);
    return rc;
}
