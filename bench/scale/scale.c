/*
 * bench/scale/scale.c: does every request stay cheap as the store grows?
 * (issue 16; docs/performance.md, "At scale").
 *
 * Drives one running taskmill server (started by bench/scale/run.sh, open
 * mode) over HTTP/1.1 with libcurl, one connection, one request at a time.
 * It grows the store in batches of 1000 submits (three queues, five types,
 * names job-NNNNNNNN), and after each batch claims and finishes some of
 * them through the batched worker protocol, so the table holds a mix of
 * phases: of each 1000, about 600 completed, 100 failed, 50 running and
 * 250 pending. At each size asked for it times `--samples` requests of
 * each kind and prints p50 and p99 (ms), then the store's bytes per task
 * and per event and the server's RSS, and the rate of a batched worker
 * (claims of 100 and completes of 100) over `--rate-tasks` fresh tasks
 * (30,000 by default), with the p50 and p99 of its claim and complete
 * calls: above about 380,000 tasks these run while retention prunes.
 * With --rate-only it runs only that worker, on the store as it is (to
 * compare two servers on copies of one grown store).
 *
 * Not a test: it asserts nothing but that each request answers as the API
 * says (a wrong status stops the run with the reply, so a figure is never
 * the time of an error).
 */
#include <ctype.h>
#include <curl/curl.h>
#include <libpq-fe.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#define BATCH     1000
#define IDS_KEPT  4096
#define MAX_SIZES 8

struct body {
    char *p;
    size_t len, cap;
};

static CURL *curl;
static char base[256];
static struct body reply;
static long status;
static char ids[IDS_KEPT][33];
static size_t nids;
static uint64_t rng = 88172645463325252ull;
static int64_t first_created_ms; /* the creation time of the first batch */

static uint64_t rnd(void) {
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

static void die(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "scale: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    exit(1);
}

static size_t on_data(char *p, size_t size, size_t n, void *cls) {
    struct body *b = cls;
    size_t len = size * n;
    if (b->len + len + 1 > b->cap) {
        b->cap = (b->len + len + 1) * 2;
        b->p = realloc(b->p, b->cap);
        if (!b->p) die("out of memory");
    }
    memcpy(b->p + b->len, p, len);
    b->len += len;
    b->p[b->len] = '\0';
    return len;
}

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* One request; dies unless the status is `want` (or 204 when allow_204).
 * Returns the milliseconds it took. */
static double req(const char *method, const char *path, const char *body, long want,
                  bool allow_204) {
    char url[2048];
    snprintf(url, sizeof url, "%s%s", base, path);
    reply.len = 0;
    if (reply.p) reply.p[0] = '\0';
    curl_easy_setopt(curl, CURLOPT_URL, url);
    curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body);
    if (!body) curl_easy_setopt(curl, CURLOPT_HTTPGET, 1L);
    curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, method);
    double t0 = now_ms();
    CURLcode rc = curl_easy_perform(curl);
    double t = now_ms() - t0;
    if (rc != CURLE_OK) die("%s %s: %s", method, path, curl_easy_strerror(rc));
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
    if (status != want && !(allow_204 && status == 204))
        die("%s %s: status %ld, want %ld: %.400s", method, path, status, want,
            reply.p ? reply.p : "");
    return t;
}

/* Copies the string value that follows `"key":"` at or after from into
 * out (at most n - 1 bytes); returns a pointer past it, or NULL. */
static const char *json_str_after(const char *from, const char *key, char *out, size_t n) {
    char needle[64];
    snprintf(needle, sizeof needle, "\"%s\":\"", key);
    const char *at = from ? strstr(from, needle) : NULL;
    if (!at) return NULL;
    at += strlen(needle);
    size_t k = 0;
    while (*at && *at != '"' && k + 1 < n)
        out[k++] = *at++;
    out[k] = '\0';
    return at;
}

struct claim {
    char id[33], token[80];
};

/* Claims up to max tasks of queue q; returns how many. */
static int claim_many(const char *q, int max, struct claim *out) {
    char path[128], body[160];
    snprintf(path, sizeof path, "/v1/queues/%s/claims", q);
    snprintf(body, sizeof body, "{\"worker\":\"scale\",\"max\":%d,\"lease_seconds\":3600}", max);
    req("POST", path, body, 200, true);
    if (status == 204) return 0;
    int n = 0;
    const char *p = reply.p;
    while (n < max && p) {
        /* each claim: {"task":{..."id":"..."...},"lease_token":"..."} */
        const char *task = strstr(p, "{\"task\":");
        if (!task) break;
        if (!json_str_after(task, "id", out[n].id, sizeof out[n].id)) break;
        p = json_str_after(task, "lease_token", out[n].token, sizeof out[n].token);
        if (!p) break;
        n++;
    }
    return n;
}

/* Finishes claims [0, n) with one batched call: "complete" or "fail". */
static void finish_many(const char *verb, const struct claim *c, int n) {
    if (n <= 0) return;
    size_t cap = (size_t)n * 200 + 64;
    char *body = malloc(cap);
    size_t len = (size_t)snprintf(body, cap, "{\"entries\":[");
    for (int i = 0; i < n; i++)
        len += (size_t)snprintf(
            body + len, cap - len, "%s{\"id\":\"%s\",\"lease_token\":\"%s\"%s}", i ? "," : "",
            c[i].id, c[i].token,
            strcmp(verb, "fail") == 0 ? ",\"error\":\"boom\",\"retryable\":false" : "");
    snprintf(body + len, cap - len, "]}");
    char path[64];
    snprintf(path, sizeof path, "/v1/work/%s", verb);
    req("POST", path, body, 200, false);
    free(body);
}

static const char *const queues[] = {"q0", "q1", "q2"};
static long long grown;

/* Submits one batch of 1000 and moves most of them along. */
static void grow_batch(void) {
    static char body[BATCH * 200 + 64];
    size_t len = (size_t)snprintf(body, sizeof body, "{\"tasks\":[");
    for (int i = 0; i < BATCH; i++) {
        long long k = grown + i;
        len += (size_t)snprintf(body + len, sizeof body - len,
                                "%s{\"type\":\"t%lld\",\"queue\":\"%s\",\"name\":\"job-%08lld\","
                                "\"max_retries\":0,\"params\":{\"k\":%lld,\"src\":\"scale\"}}",
                                i ? "," : "", k % 5, queues[k % 3], k, k);
    }
    snprintf(body + len, sizeof body - len, "]}");
    req("POST", "/v1/tasks/batch", body, 201, false);
    /* keep some ids for point reads: a reservoir over everything grown */
    const char *p = reply.p;
    char id[33];
    int seen = 0;
    while ((p = json_str_after(p, "id", id, sizeof id))) {
        if (strlen(id) != 32) continue;
        long long k = grown + seen++;
        size_t slot = k < IDS_KEPT ? (size_t)k : (size_t)(rnd() % (uint64_t)(k + 1));
        if (slot < IDS_KEPT) {
            memcpy(ids[slot], id, 33);
            if (slot >= nids) nids = slot + 1;
        }
    }
    grown += BATCH;
    /* 750 of them claimed: 600 completed, 100 failed, 50 left running */
    static struct claim c[100];
    int todo = 750, done = 0;
    for (int round = 0; todo > 0 && round < 30; round++) {
        int n = claim_many(queues[round % 3], todo < 100 ? todo : 100, c);
        if (n == 0) continue;
        todo -= n;
        int nfail = n / 7, nrun = n / 15;
        finish_many("complete", c, n - nfail - nrun);
        finish_many("fail", c + (n - nfail - nrun), nfail);
        done += n;
    }
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static void report(const char *what, double *t, int n) {
    qsort(t, (size_t)n, sizeof *t, cmp_double);
    double p50 = t[n / 2], p99 = t[(int)((double)n * 0.99) < n ? (int)((double)n * 0.99) : n - 1];
    printf("| %-44s | %8.2f | %8.2f |\n", what, p50, p99);
}

static void fmt_rfc3339(int64_t ms, char *out, size_t n) {
    time_t s = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&s, &tm);
    char buf[32];
    strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out, n, "%s.%03dZ", buf, (int)(ms % 1000));
}

static int64_t wall_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static long rss_kib(int pid) {
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%d/status", pid);
    FILE *f = fopen(path, "r");
    long kib = -1;
    while (f && fgets(line, sizeof line, f))
        if (strncmp(line, "VmRSS:", 6) == 0) kib = atol(line + 6);
    if (f) fclose(f);
    return kib;
}

/* The process's user + system CPU so far, in seconds (0 when unknown). */
static double cpu_seconds(int pid) {
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/stat", pid);
    FILE *f = fopen(path, "r");
    if (!f) return 0;
    char line[1024];
    double sec = 0;
    if (fgets(line, sizeof line, f)) {
        char *p = strrchr(line, ')'); /* the command may hold spaces */
        unsigned long ut = 0, st = 0;
        if (p &&
            sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st) == 2)
            sec = (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
    }
    fclose(f);
    return sec;
}

struct sizes {
    long long db, tasks, events, nevents;
};

static long long file_size(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 ? (long long)st.st_size : 0;
}

static void store_sizes(const char *sqlite_path, const char *pg_url, struct sizes *out) {
    memset(out, 0, sizeof *out);
    if (sqlite_path) {
        char wal[1024];
        snprintf(wal, sizeof wal, "%s-wal", sqlite_path);
        out->db = file_size(sqlite_path) + file_size(wal);
        sqlite3 *db;
        if (sqlite3_open_v2(sqlite_path, &db, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK) {
            static const char *const q[] = {
                "SELECT coalesce(sum(pgsize),0) FROM dbstat WHERE name='tasks' OR name LIKE "
                "'tasks_%' OR name LIKE 'sqlite_autoindex_tasks%'",
                "SELECT coalesce(sum(pgsize),0) FROM dbstat WHERE name='events' OR name LIKE "
                "'events_%'",
                /* the log has no gaps above the retention mark (in segments
                 * on SQLite, docs/storage.md) */
                "SELECT (SELECT value FROM event_meta WHERE name='head')"
                " - (SELECT value FROM event_meta WHERE name='pruned_through')"};
            long long *dst[] = {&out->tasks, &out->events, &out->nevents};
            for (int i = 0; i < 3; i++) {
                sqlite3_stmt *st;
                if (sqlite3_prepare_v2(db, q[i], -1, &st, NULL) == SQLITE_OK &&
                    sqlite3_step(st) == SQLITE_ROW)
                    *dst[i] = sqlite3_column_int64(st, 0);
                sqlite3_finalize(st);
            }
        }
        sqlite3_close(db);
    } else if (pg_url) {
        PGconn *c = PQconnectdb(pg_url);
        PGresult *r = PQexec(c,
                             "SELECT pg_database_size(current_database()),"
                             " pg_total_relation_size('tasks'), pg_total_relation_size('events'),"
                             " (SELECT count(*) FROM events)");
        if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1) {
            out->db = atoll(PQgetvalue(r, 0, 0));
            out->tasks = atoll(PQgetvalue(r, 0, 1));
            out->events = atoll(PQgetvalue(r, 0, 2));
            out->nevents = atoll(PQgetvalue(r, 0, 3));
        } else {
            fprintf(stderr, "scale: sizes: %s", PQerrorMessage(c));
        }
        PQclear(r);
        PQfinish(c);
    }
}

static void url_escape(const char *in, char *out, size_t n) {
    static const char hex[] = "0123456789ABCDEF";
    size_t k = 0;
    for (; *in && k + 4 < n; in++) {
        unsigned char c = (unsigned char)*in;
        if (isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
            out[k++] = (char)c;
        } else {
            out[k++] = '%';
            out[k++] = hex[c >> 4];
            out[k++] = hex[c & 15];
        }
    }
    out[k] = '\0';
}

/* The batched worker's rate over rate_tasks fresh tasks, and the latency
 * of its calls (the claims are what retention must not stall). */
static double worker_rate(int rate_tasks, int pid, int *moved_out, double *cpu_us) {
    static char big[BATCH * 80 + 64];
    for (int b = 0; b < rate_tasks / BATCH; b++) {
        size_t len = (size_t)snprintf(big, sizeof big, "{\"tasks\":[");
        for (int i = 0; i < BATCH; i++)
            len += (size_t)snprintf(big + len, sizeof big - len,
                                    "%s{\"type\":\"t1\",\"queue\":\"wq\"}", i ? "," : "");
        snprintf(big + len, sizeof big - len, "]}");
        req("POST", "/v1/tasks/batch", big, 201, false);
    }
    int calls = rate_tasks / 100 + 1, nclaims = 0, ncompletes = 0;
    double *claim_ms = calloc((size_t)calls, sizeof *claim_ms);
    double *complete_ms = calloc((size_t)calls, sizeof *complete_ms);
    struct claim c[100];
    int moved = 0;
    double t0 = now_ms(), c0 = cpu_seconds(pid);
    while (moved < rate_tasks && nclaims < calls) {
        double t1 = now_ms();
        int n = claim_many("wq", 100, c);
        claim_ms[nclaims++] = now_ms() - t1;
        if (n == 0) break;
        t1 = now_ms();
        finish_many("complete", c, n);
        complete_ms[ncompletes++] = now_ms() - t1;
        moved += n;
    }
    double rate = moved / ((now_ms() - t0) / 1000.0);
    *cpu_us = moved ? (cpu_seconds(pid) - c0) * 1e6 / moved : 0;
    report("batched claim of 100 (worker run)", claim_ms, nclaims);
    if (ncompletes) report("batched complete of 100 (worker run)", complete_ms, ncompletes);
    free(claim_ms);
    free(complete_ms);
    *moved_out = moved;
    return rate;
}

/* Times `samples` of each request kind at the current size. */
static void measure(int samples, int rate_tasks, int pid, const char *sqlite_path,
                    const char *pg_url) {
    double *t = calloc((size_t)samples, sizeof *t);
    char path[1024], body[512], enc[512];
    printf("\n### %lld tasks\n\n| request | p50 ms | p99 ms |\n|---|---|---|\n", grown);
    for (int i = 0; i < samples; i++) {
        snprintf(path, sizeof path, "/v1/tasks/%s", ids[rnd() % nids]);
        t[i] = req("GET", path, NULL, 200, false);
    }
    report("GET /v1/tasks/{id}", t, samples);
    char cursor[33] = "";
    for (int i = 0; i < samples; i++) {
        t[i] = req("GET", "/v1/tasks?limit=20", NULL, 200, false);
        if (i == 0)
            json_str_after(strstr(reply.p, "\"next_cursor\""), "next_cursor", cursor,
                           sizeof cursor);
    }
    report("GET /v1/tasks?limit=20 (first page)", t, samples);
    if (cursor[0]) {
        for (int i = 0; i < samples; i++) {
            snprintf(path, sizeof path, "/v1/tasks?limit=20&cursor=%s", cursor);
            t[i] = req("GET", path, NULL, 200, false);
        }
        report("GET /v1/tasks?cursor= (next page)", t, samples);
    }
    for (int i = 0; i < samples; i++)
        t[i] = req("GET", "/v1/tasks?phase=completed&limit=20", NULL, 200, false);
    report("GET /v1/tasks?phase=completed", t, samples);
    for (int i = 0; i < samples; i++)
        t[i] = req("GET", "/v1/tasks?phase=failed&limit=20", NULL, 200, false);
    report("GET /v1/tasks?phase=failed", t, samples);
    for (int i = 0; i < samples; i++) {
        snprintf(path, sizeof path, "/v1/tasks?name_prefix=job-%06lld&limit=20",
                 (long long)(rnd() % (uint64_t)(grown / 100))); /* 100 names each */
        t[i] = req("GET", path, NULL, 200, false);
    }
    report("GET /v1/tasks?name_prefix= (100 match)", t, samples);
    char when[40];
    fmt_rfc3339(first_created_ms, when, sizeof when);
    url_escape(when, enc, sizeof enc);
    for (int i = 0; i < samples; i++) {
        snprintf(path, sizeof path, "/v1/tasks?created_before=%s&limit=20", enc);
        t[i] = req("GET", path, NULL, 200, false);
    }
    report("GET /v1/tasks?created_before= (oldest 1000)", t, samples);
    for (int i = 0; i < samples; i++)
        t[i] = req("GET", "/v1/queues", NULL, 200, false);
    report("GET /v1/queues", t, samples);
    url_escape("completionStatus eq \"SUCCESS\"", enc, sizeof enc);
    for (int i = 0; i < samples; i++) {
        snprintf(path, sizeof path, "/beta/task-status?limit=20&count=true&filters=%s", enc);
        t[i] = req("GET", path, NULL, 200, false);
    }
    report("SailPoint completionStatus eq SUCCESS, count", t, samples);
    url_escape("uniqueName eq \"job-00000042\"", enc, sizeof enc);
    for (int i = 0; i < samples; i++) {
        snprintf(path, sizeof path, "/beta/task-status?limit=20&filters=%s", enc);
        t[i] = req("GET", path, NULL, 200, false);
    }
    report("SailPoint uniqueName eq", t, samples);
    url_escape("launcher eq \"q1\"", enc, sizeof enc);
    for (int i = 0; i < samples; i++) {
        snprintf(path, sizeof path, "/beta/task-status?limit=20&filters=%s", enc);
        t[i] = req("GET", path, NULL, 200, false);
    }
    report("SailPoint launcher eq (the queue)", t, samples);
    for (int i = 0; i < samples; i++)
        t[i] = req("GET", "/api/task", NULL, 200, false);
    report("Livepeer GET /api/task (first page)", t, samples);
    /* writes: submit, then claim / heartbeat / complete of what was submitted */
    for (int i = 0; i < samples; i++)
        t[i] = req("POST", "/v1/tasks", "{\"type\":\"t0\",\"queue\":\"mq\",\"name\":\"m\"}", 201,
                   false);
    report("POST /v1/tasks", t, samples);
    double *hb = calloc((size_t)samples, sizeof *hb), *cp = calloc((size_t)samples, sizeof *cp);
    for (int i = 0; i < samples; i++) {
        t[i] = req("POST", "/v1/queues/mq/claim", "{\"worker\":\"m\",\"lease_seconds\":60}", 200,
                   false);
        char id[33], tok[80];
        if (!json_str_after(reply.p, "id", id, sizeof id) ||
            !json_str_after(reply.p, "lease_token", tok, sizeof tok))
            die("claim: no id or lease_token: %.300s", reply.p);
        snprintf(path, sizeof path, "/v1/tasks/%s/heartbeat", id);
        snprintf(body, sizeof body, "{\"lease_token\":\"%s\",\"progress\":{\"ratio\":0.5}}", tok);
        hb[i] = req("POST", path, body, 200, false);
        snprintf(path, sizeof path, "/v1/tasks/%s/complete", id);
        snprintf(body, sizeof body, "{\"lease_token\":\"%s\"}", tok);
        cp[i] = req("POST", path, body, 200, false);
    }
    report("POST /v1/queues/{q}/claim", t, samples);
    report("POST /v1/tasks/{id}/heartbeat", hb, samples);
    report("POST /v1/tasks/{id}/complete", cp, samples);
    free(hb);
    free(cp);
    int moved = 0;
    double cpu_us = 0;
    double rate = worker_rate(rate_tasks, pid, &moved, &cpu_us);
    struct sizes sz;
    store_sizes(sqlite_path, pg_url, &sz);
    long long ntasks = grown + 2 * samples + rate_tasks;
    printf(
        "\nbatched worker (claims of 100, completes of 100): %.0f tasks/s over %d tasks,"
        " server CPU %.1f us a task\n",
        rate, moved, cpu_us);
    printf(
        "store: %.1f MiB in all, %.0f bytes/task (database / tasks), tasks table and indexes "
        "%.0f bytes/task, events %lld (%.0f bytes/event), server RSS %.1f MiB\n",
        (double)sz.db / 1048576.0, (double)sz.db / (double)ntasks,
        (double)sz.tasks / (double)ntasks, sz.nevents,
        sz.nevents ? (double)sz.events / (double)sz.nevents : 0.0, (double)rss_kib(pid) / 1024.0);
    fflush(stdout);
    free(t);
}

int main(int argc, char **argv) {
    const char *url = NULL, *sqlite_path = NULL, *pg_url = NULL;
    long long sizes[MAX_SIZES] = {10000, 100000, 1000000};
    int nsizes = 3, samples = 200, rate_tasks = 30000, pid = 0;
    bool rate_only = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--rate-only") == 0) {
            rate_only = true;
            continue;
        }
        if (strcmp(a, "--url") == 0 && v) {
            url = v;
        } else if (strcmp(a, "--pid") == 0 && v) {
            pid = atoi(v);
        } else if (strcmp(a, "--sqlite") == 0 && v) {
            sqlite_path = v;
        } else if (strcmp(a, "--pg") == 0 && v) {
            pg_url = v;
        } else if (strcmp(a, "--samples") == 0 && v) {
            samples = atoi(v);
        } else if (strcmp(a, "--rate-tasks") == 0 && v) {
            rate_tasks = atoi(v);
        } else if (strcmp(a, "--sizes") == 0 && v) {
            nsizes = 0;
            char tmp[256];
            snprintf(tmp, sizeof tmp, "%s", v);
            for (char *s = strtok(tmp, ","); s && nsizes < MAX_SIZES; s = strtok(NULL, ","))
                sizes[nsizes++] = atoll(s);
        } else {
            die("usage: scale --url http://HOST:PORT --pid PID (--sqlite PATH | --pg URL)"
                " [--sizes 10000,100000,1000000] [--samples 200] [--rate-tasks 30000]"
                " [--rate-only]");
        }
        i++;
    }
    if (!url || samples < 10 || nsizes == 0 || rate_tasks < BATCH || rate_tasks % BATCH)
        die("--url is required; --samples >= 10; --rate-tasks a multiple of %d", BATCH);
    snprintf(base, sizeof base, "%s", url);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    curl = curl_easy_init();
    struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/json");
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, &reply);
    curl_easy_setopt(curl, CURLOPT_TCP_NODELAY, 1L);
    struct utsname u;
    uname(&u);
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    printf("## bench/scale on %s %s, %ld CPUs; store %s; %d samples a request\n", u.sysname,
           u.release, cpus, sqlite_path ? "SQLite" : "PostgreSQL", samples);
    double t0 = now_ms();
    if (rate_only) { /* the store as it is: no growth, no other request */
        int moved = 0;
        printf("\n| request | p50 ms | p99 ms |\n|---|---|---|\n");
        double cpu_us = 0;
        double rate = worker_rate(rate_tasks, pid, &moved, &cpu_us);
        printf(
            "\nbatched worker (claims of 100, completes of 100): %.0f tasks/s over %d tasks,"
            " server CPU %.1f us a task\n",
            rate, moved, cpu_us);
        nsizes = 0;
    }
    for (int s = 0; s < nsizes; s++) {
        while (grown < sizes[s]) {
            grow_batch();
            if (grown == BATCH) first_created_ms = wall_ms(); /* after the oldest 1000 */
            if (grown % 100000 == 0) {
                fprintf(stderr, "scale: %lld tasks after %.0f s\n", grown, (now_ms() - t0) / 1e3);
            }
        }
        measure(samples, rate_tasks, pid, sqlite_path, pg_url);
    }
    curl_slist_free_all(h);
    curl_easy_cleanup(curl);
    curl_global_cleanup();
    free(reply.p);
    return 0;
}
