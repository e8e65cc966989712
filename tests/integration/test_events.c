/*
 * The event log and its SSE streams against the real server: the kinds a
 * task's life appends, resuming with Last-Event-ID and ?since=, the task
 * stream's snapshot, keep-alives, the error event for a pruned sequence,
 * a resume point past the newest event refused,
 * a slow consumer cut off and resuming, bad filters; and 10,000 updates
 * read by a subscriber that disconnects and resumes many times, which must
 * see each exactly once and in order.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

#include "harness.h"
#include "sse_client.h"

/* Reads events until `want` arrived or timeout; returns how many. */
static int read_events(struct sse_conn *c, struct sse_event *out, int want, int timeout_ms) {
    int n = 0;
    long long deadline = sse_now_ms() + timeout_ms;
    while (n < want) {
        long long left = deadline - sse_now_ms();
        if (left <= 0) break;
        struct sse_event ev = {.id = -1};
        int r = sse_next(c, &ev, (int)left);
        if (r <= 0) {
            if (getenv("SSE_DEBUG"))
                printf("    sse_next %d status %d buf [%.200s]\n", r, c->status, c->buf);
            sse_event_clear(&ev);
            break;
        }
        out[n++] = ev;
    }
    return n;
}

static void clear_events(struct sse_event *ev, int n) {
    for (int i = 0; i < n; i++)
        sse_event_clear(&ev[i]);
}

static void test_lifecycle_kinds(void) {
    struct th_server srv;
    CHECK(th_server_start(&srv, NULL) == 0);
    char *id = th_submit(&srv, "resize", NULL);
    CHECK(id);
    char cid[33], tok[33];
    CHECK_INT(th_claim(&srv, "default", NULL, cid, tok), 200);
    char path[160];
    snprintf(path, sizeof path, "/v1/tasks/%s/heartbeat", id);
    CHECK_INT(
        th_http(&srv, "POST", path, "{\"lease_token\":\"%s\",\"progress\":{\"ratio\":0.5}}", tok)
            ->status,
        200);
    CHECK_INT(
        th_http(&srv, "POST", path,
                "{\"lease_token\":\"%s\",\"messages\":[{\"level\":\"INFO\",\"text\":\"hi\"}]}", tok)
            ->status,
        200);
    CHECK_INT(th_http(&srv, "POST", path, "{\"lease_token\":\"%s\"}", tok)->status, 200);
    snprintf(path, sizeof path, "/v1/tasks/%s/complete", id);
    CHECK_INT(th_http(&srv, "POST", path, "{\"lease_token\":\"%s\"}", tok)->status, 200);
    snprintf(path, sizeof path, "/v1/tasks/%s", id);
    CHECK_INT(th_http(&srv, "DELETE", path, NULL)->status, 204);

    const char *kinds[] = {"task.created", "task.running",   "task.progress", "task.message",
                           "task.lease",   "task.completed", "task.deleted"};
    struct sse_conn c;
    CHECK(sse_open(&c, srv.url, "/v1/events?since=0", -1, 0) == 0);
    struct sse_event ev[8];
    int n = read_events(&c, ev, 7, 5000);
    /* A stream's body is what its type says, as every reply's is. */
    CHECK(strcasestr(c.head, "\r\nX-Content-Type-Options: nosniff\r\n") != NULL);
    sse_close(&c);
    for (int i = 0; i < n && i < 7; i++) {
        if (strcmp(ev[i].event, kinds[i]) != 0 || ev[i].id != i + 1) {
            th_fail(__FILE__, __LINE__, "event %d: '%s' id %lld, want '%s' id %d", i, ev[i].event,
                    ev[i].id, kinds[i], i + 1);
            break;
        }
        json_t *j = json_loads(ev[i].data, 0, NULL);
        bool ok = j && strcmp(th_str(j, "task_id"), id) == 0 && th_int(j, "seq") == i + 1 &&
                  th_get(j, "task.version") != NULL;
        json_decref(j);
        if (!ok) th_fail(__FILE__, __LINE__, "event %d data: %s", i, ev[i].data);
    }
    clear_events(ev, n);
    CHECK_INT(n, 7);

    /* Resume: Last-Event-ID wins over ?since=, and a kind filter applies. */
    CHECK(sse_open(&c, srv.url, "/v1/events?since=0&kind=completed,deleted", 3, 0) == 0);
    n = read_events(&c, ev, 2, 5000);
    sse_close(&c);
    bool ok = n == 2 && ev[0].id == 6 && ev[1].id == 7 && strcmp(ev[1].event, "task.deleted") == 0;
    clear_events(ev, n);
    CHECK(ok);
    free(id);
    th_server_free(&srv);
}

/* Asks for a stream that should be refused, reading at most 5 s (a stream
 * that starts instead does not end); returns the status, the error's field in
 * field ("" when none). */
static int refused_field(struct th_server *srv, const char *path, char *field, size_t n) {
    field[0] = '\0';
    struct sse_conn c;
    if (sse_open(&c, srv->url, path, -1, 0)) return -1;
    long long deadline = sse_now_ms() + 5000;
    int status = 0;
    while (sse_now_ms() < deadline && sse_fill(&c, 200) >= 0)
        if (strstr(c.buf, "\r\n\r\n") && sscanf(c.buf, "HTTP/%*s %d", &status) == 1 &&
            status == 200)
            break; /* a stream: it would not end */
    sscanf(c.buf, "HTTP/%*s %d", &status);
    const char *body = strstr(c.buf, "\r\n\r\n");
    json_t *j = body ? json_loads(body + 4, 0, NULL) : NULL;
    const char *f = j ? th_str(j, "error.field") : NULL;
    snprintf(field, n, "%s", f ? f : "");
    json_decref(j);
    sse_close(&c);
    return status;
}

static void test_task_stream_snapshot_then_live(void) {
    struct th_server srv;
    CHECK(th_server_start(&srv, NULL) == 0);
    char *a = th_submit(&srv, "a", "\"queue\":\"qa\"");
    char *b = th_submit(&srv, "b", "\"queue\":\"qb\"");
    CHECK(a && b);
    char path[160];
    snprintf(path, sizeof path, "/v1/tasks/%s/events", a);
    struct sse_conn c;
    CHECK(sse_open(&c, srv.url, path, -1, 0) == 0);
    struct sse_event ev[4];
    int n = read_events(&c, ev, 1, 5000);
    CHECK_INT(n, 1);
    CHECK_STR(ev[0].event, "task.snapshot");
    CHECK_INT(ev[0].id, 2);
    CHECK(strcasestr(c.head, "\r\nX-Content-Type-Options: nosniff\r\n") != NULL);
    clear_events(ev, n);
    /* A change to b is not on a's stream; a's claim is. */
    char cid[33], tok[33];
    CHECK_INT(th_claim(&srv, "qb", NULL, cid, tok), 200);
    CHECK_INT(th_claim(&srv, "qa", NULL, cid, tok), 200);
    n = read_events(&c, ev, 1, 5000);
    sse_close(&c);
    CHECK_INT(n, 1);
    bool ok = strcmp(ev[0].event, "task.running") == 0 && ev[0].id == 4;
    clear_events(ev, n);
    CHECK(ok);
    snprintf(path, sizeof path, "/v1/tasks/%s/events", "0123456789abcdef0123456789abcdef");
    CHECK_INT(th_http(&srv, "GET", path, NULL)->status, 404);
    CHECK_INT(th_http(&srv, "GET", "/v1/events?phase=sideways", NULL)->status, 400);
    CHECK_INT(th_http(&srv, "GET", "/v1/events?kind=nope", NULL)->status, 400);
    CHECK_INT(th_http(&srv, "GET", "/v1/events?since=-4", NULL)->status, 400);
    CHECK_INT(th_http(&srv, "GET", "/v1/events?task_id=xyz", NULL)->status, 400);
    CHECK_INT(th_http(&srv, "GET", "/v1/events?colour=red", NULL)->status, 400);
    /* An empty list, or an empty item in one, is refused: it would turn the filter off. */
    const char *empty[][2] = {
        {"/v1/events?since=0&task_id=", "task_id"},
        {"/v1/events?since=0&kind=", "kind"},
        {"/v1/events?since=0&phase=running,", "phase"},
        {"/v1/events?since=0&task_id=,", "task_id"},
        {"?since=0&kind=", "kind"},
        {"?since=0&phase=,running", "phase"},
    };
    for (size_t i = 0; i < sizeof empty / sizeof empty[0]; i++) {
        if (empty[i][0][0] == '?')
            snprintf(path, sizeof path, "/v1/tasks/%s/events%s", a, empty[i][0]);
        else
            snprintf(path, sizeof path, "%s", empty[i][0]);
        char field[32];
        int status = refused_field(&srv, path, field, sizeof field);
        if (status != 400 || strcmp(field, empty[i][1]) != 0)
            th_fail(__FILE__, __LINE__, "%s: %d field '%s'", path, status, field);
    }
    free(a);
    free(b);
    th_server_free(&srv);
}

static void test_keepalive(void) {
    struct th_server srv;
    CHECK(th_server_start(&srv, "--sse-keepalive-ms", "200", NULL) == 0);
    struct sse_conn c;
    CHECK(sse_open(&c, srv.url, "/v1/events", -1, 0) == 0);
    struct sse_event ev = {.id = -1};
    sse_event_clear(&ev);
    /* Nothing but comments, three of them (the opening line and two
     * keep-alives) well before the default's 15 s: 10 s is a deadline (they
     * come in 0.4 s unless the machine is loaded), not the 1.2 s it was. */
    int r = 0;
    for (long long end = th_now_ms() + 10000; r == 0 && c.comments < 3 && th_now_ms() < end;)
        r = sse_next(&c, &ev, 200);
    int comments = c.comments;
    sse_close(&c);
    CHECK_INT(r, 0);
    if (comments < 3) th_fail(__FILE__, __LINE__, "only %d comments in 10 s", comments);
    th_server_free(&srv);
}

/* A stream's first block says where it starts (an id, no data): a client
 * cut off before any event came resumes from there and loses nothing
 * committed while it was away. Before, its first id came with its first
 * event or keep-alive id, so such a client reconnected without a
 * Last-Event-ID, from the present, past the missed event. */
static void test_first_block_has_an_id(void) {
    struct th_server srv;
    CHECK(th_server_start(&srv, NULL) == 0);
    char *before = th_submit(&srv, "first", "\"queue\":\"fq\"");
    struct sse_conn c;
    CHECK(sse_open(&c, srv.url, "/v1/events", -1, 0) == 0);
    struct sse_event ev = {.id = -1};
    sse_event_clear(&ev);
    CHECK_INT(sse_started(&c, &ev, 20000), 0);
    long long start = c.last_id;
    sse_close(&c);
    CHECK(start >= 1); /* the first task's task.created is in the log */
    char *missed = th_submit(&srv, "missed", "\"queue\":\"fq\"");
    CHECK(sse_open(&c, srv.url, "/v1/events", start, 0) == 0);
    CHECK_INT(sse_next(&c, &ev, 20000), 1);
    CHECK_STR(ev.event, "task.created");
    CHECK(ev.data && missed && strstr(ev.data, missed) != NULL);
    CHECK(ev.id > start);
    sse_event_clear(&ev);
    sse_close(&c);
    /* A task stream's first block and its snapshot carry the same id. */
    char path[128];
    snprintf(path, sizeof path, "/v1/tasks/%s/events", before);
    CHECK(sse_open(&c, srv.url, path, -1, 0) == 0);
    CHECK_INT(sse_next(&c, &ev, 20000), 1);
    CHECK_STR(ev.event, "task.snapshot");
    CHECK(ev.id >= 1 && ev.id == c.last_id);
    sse_event_clear(&ev);
    sse_close(&c);
    free(before);
    free(missed);
    th_server_free(&srv);
}

/* Whether the stopped server's log holds needle. */
static bool server_log_has(const struct th_server *srv, const char *needle) {
    char path[400], line[1024];
    snprintf(path, sizeof path, "%s/server.log", srv->dir);
    FILE *f = fopen(path, "r");
    bool found = false;
    while (f && !found && fgets(line, sizeof line, f))
        found = strstr(line, needle) != NULL;
    if (f) fclose(f);
    return found;
}

/* A watcher that leaves is the normal end of a stream: the server's next
 * keep-alive finds the socket gone, and says nothing of it (it wrote a
 * line for each: "Failed to send the response body ... no longer
 * available"). */
static void test_departed_client_not_logged(void) {
    struct th_server srv;
    CHECK(th_server_start(&srv, "--sse-keepalive-ms", "100", NULL) == 0);
    for (int i = 0; i < 3; i++) {
        struct sse_conn c;
        CHECK(sse_open(&c, srv.url, "/v1/events", -1, 0) == 0);
        struct sse_event ev = {.id = -1};
        sse_event_clear(&ev);
        CHECK_INT(sse_started(&c, &ev, 20000), 0);
        CHECK_INT(sse_next(&c, &ev, 250), 0);
        CHECK(c.comments >= 1); /* the stream was open */
        sse_close(&c);
    }
    th_sleep_ms(500); /* several keep-alives to the closed sockets */
    th_server_stop(&srv, false);
    CHECK(server_log_has(&srv, "stopping"));
    CHECK(!server_log_has(&srv, "no longer available"));
    th_server_free(&srv);
}

static void test_pruned_sequence_error_event(void) {
    struct th_server srv;
    CHECK(th_server_start(&srv, "--events-max-count", "5", NULL) == 0);
    for (int i = 0; i < 20; i++)
        free(th_submit(&srv, "p", NULL));
    /* A retention pass keeps the last 5 of the 20 events. */
    WAIT_UNTIL(th_metric(&srv, "taskmill_events_pruned_through") >= 15, 10000,
               "a retention pass to prune through event 15");
    /* After a restart nothing is in memory: the store is asked. */
    th_server_stop(&srv, false);
    CHECK(th_server_restart(&srv) == 0);
    struct sse_conn c;
    CHECK(sse_open(&c, srv.url, "/v1/events?since=2", -1, 0) == 0);
    struct sse_event ev[8];
    int n = read_events(&c, ev, 2, 5000);
    sse_close(&c);
    bool ok = n == 2 && strcmp(ev[0].event, "error") == 0 && ev[0].id >= 15 &&
              strstr(ev[0].data, "\"events_pruned\"") && ev[1].id == ev[0].id + 1 &&
              strcmp(ev[1].event, "task.created") == 0;
    if (!ok && n > 0) printf("    got '%s' %lld %s\n", ev[0].event, ev[0].id, ev[0].data);
    clear_events(ev, n);
    CHECK(ok);
    /* Resuming from at or above the mark is fine. */
    CHECK(sse_open(&c, srv.url, "/v1/events", 18, 0) == 0);
    n = read_events(&c, ev, 2, 5000);
    sse_close(&c);
    ok = n == 2 && ev[0].id == 19 && ev[1].id == 20;
    clear_events(ev, n);
    CHECK(ok);
    struct th_resp *r = th_http(&srv, "GET", "/metrics", NULL);
    CHECK(strstr(r->body, "taskmill_events_pruned_total") != NULL);
    th_server_free(&srv);
}

/* Opens path (with Last-Event-ID last_id when >= 0) and reads its reply's
 * head, and a refusal whole (HTTP/1.0: the server closes after it).
 * Returns the status; 60 s is a deadline, not a speed. */
static int open_reply(struct sse_conn *c, struct th_server *srv, const char *path,
                      long long last_id) {
    if (sse_open(c, srv->url, path, last_id, 0)) return -1;
    long long deadline = sse_now_ms() + 60000;
    while (!strstr(c->buf, "\r\n\r\n") && sse_now_ms() < deadline)
        if (sse_fill(c, 200) < 0) break;
    int status = 0;
    sscanf(c->buf, "HTTP/%*s %d", &status);
    while (status != 200 && sse_now_ms() < deadline)
        if (sse_fill(c, 200) < 0) break;
    return status;
}

/* A refusal's error.field and whether its message says `ends`. */
static bool refusal_is(struct sse_conn *c, const char *field, const char *ends) {
    const char *body = strstr(c->buf, "\r\n\r\n");
    json_t *j = body ? json_loads(body + 4, 0, NULL) : NULL;
    const char *f = j ? th_str(j, "error.field") : NULL;
    const char *m = j ? th_str(j, "error.message") : NULL;
    bool ok = f && strcmp(f, field) == 0 && m && strstr(m, ends);
    if (!ok) printf("    %s: got [%.400s]\n", field, body ? body + 4 : c->buf);
    json_decref(j);
    return ok;
}

/*
 * A resume point past the store's newest event (a Last-Event-ID from
 * another or a restored store) is 400 naming where it came from, on both
 * streams; before, the stream answered with that id and waited, skipping
 * every event up to it. The newest event itself is a good point, and the
 * stream then sends the next event.
 */
static void test_resume_past_the_newest_is_refused(void) {
    struct th_server srv;
    CHECK(th_server_start(&srv, NULL) == 0);
    char *id = th_submit(&srv, "r", NULL);
    CHECK(id);
    free(th_submit(&srv, "r", NULL));
    long long head = th_metric(&srv, "taskmill_event_seq");
    CHECK(head >= 2);
    char ends[64], path[200];
    snprintf(ends, sizeof ends, "the log ends at %lld", head);
    struct sse_conn c;
    const char *streams[2] = {"/v1/events", NULL};
    char task_path[160];
    snprintf(task_path, sizeof task_path, "/v1/tasks/%s/events", id);
    streams[1] = task_path;
    for (int k = 0; k < 2; k++) {
        snprintf(path, sizeof path, "%s?since=%lld", streams[k], head + 1000);
        CHECK_INT(open_reply(&c, &srv, path, -1), 400);
        bool ok = refusal_is(&c, "since", ends);
        sse_close(&c);
        CHECK(ok);
        /* The header wins over ?since=, and is named. */
        snprintf(path, sizeof path, "%s?since=0", streams[k]);
        CHECK_INT(open_reply(&c, &srv, path, 999999), 400);
        ok = refusal_is(&c, "Last-Event-ID", ends);
        sse_close(&c);
        CHECK(ok);
    }
    /* The newest event, by either: accepted, and the next event comes. */
    snprintf(path, sizeof path, "/v1/events?since=%lld", head);
    CHECK_INT(open_reply(&c, &srv, path, -1), 200);
    struct sse_conn h;
    CHECK_INT(open_reply(&h, &srv, task_path, head), 200);
    snprintf(path, sizeof path, "/v1/tasks/%s/cancel", id);
    CHECK_INT(th_http(&srv, "POST", path, "{}")->status, 200);
    struct sse_event ev[2];
    int n = read_events(&c, ev, 1, 30000);
    bool ok = n == 1 && ev[0].id == head + 1;
    clear_events(ev, n);
    sse_close(&c);
    CHECK(ok);
    n = read_events(&h, ev, 1, 30000);
    ok = n == 1 && ev[0].id == head + 1;
    clear_events(ev, n);
    sse_close(&h);
    CHECK(ok);
    free(id);
    th_server_free(&srv);
}

static void test_slow_consumer_is_cut_off_and_resumes(void) {
    struct th_server srv;
    /* Events as large as the task (its messages grow with each beat) fill
     * the socket's buffers fast: lift the per-event bound. */
    CHECK(th_server_start(&srv, "--events-buffer", "16", "--relaxed", "--events-task-max-bytes",
                          "4194304", NULL) == 0);
    char *id = th_submit(&srv, "big", NULL);
    CHECK(id);
    char cid[33], tok[33];
    CHECK_INT(th_claim(&srv, "default", NULL, cid, tok), 200);
    struct sse_conn c;
    CHECK(sse_open(&c, srv.url, "/v1/events", -1, 4096) == 0);
    struct sse_event ev = {.id = -1};
    sse_event_clear(&ev);
    sse_next(&c, &ev, 300); /* headers in, then read nothing for a while */
    char text[2048];
    memset(text, 'x', sizeof text - 1);
    text[sizeof text - 1] = '\0';
    char path[160];
    snprintf(path, sizeof path, "/v1/tasks/%s/heartbeat", id);
    const int beats = 300;
    for (int i = 0; i < beats; i++)
        CHECK_INT(
            th_http(
                &srv, "POST", path,
                "{\"lease_token\":\"%s\",\"messages\":[{\"level\":\"INFO\",\"text\":\"%d %s\"}]}",
                tok, i, text)
                ->status,
            200);
    /* Now read: the stream ends early, then a resume gets the rest from the store. */
    long long last = 2;
    int got = 0, reconnects = 0;
    long long deadline = sse_now_ms() + 60000;
    while (got < beats && sse_now_ms() < deadline) {
        int r = sse_next(&c, &ev, 3000);
        if (r == 1) {
            if (ev.id != last + 1) {
                th_fail(__FILE__, __LINE__, "id %lld after %lld", ev.id, last);
                break;
            }
            last = ev.id;
            got++;
            continue;
        }
        if (r < 0 && strstr(c.last_comment, "too slow")) reconnects++;
        sse_close(&c);
        if (sse_open(&c, srv.url, "/v1/events", last, 0)) break;
    }
    sse_event_clear(&ev);
    sse_close(&c);
    CHECK_INT(got, beats);
    if (reconnects < 1) th_fail(__FILE__, __LINE__, "the slow stream was never cut off");
    free(id);
    th_server_free(&srv);
}

/* ---- 10,000 updates, a subscriber that keeps dropping the connection ---- */

#define WRITERS 4
#define BEATS   2500

struct writer {
    struct th_server *srv;
    char id[33], tok[33];
    bool ok;
};

static void *writer_main(void *arg) {
    struct writer *w = arg;
    char path[160];
    snprintf(path, sizeof path, "/v1/tasks/%s/heartbeat", w->id);
    w->ok = true;
    for (int i = 1; i <= BEATS && w->ok; i++) {
        struct th_resp *r =
            th_http(w->srv, "POST", path,
                    "{\"lease_token\":\"%s\",\"progress\":{\"processed\":%d}}", w->tok, i);
        if (r->status != 200) w->ok = false;
    }
    th_http(NULL, NULL, NULL, NULL);
    return NULL;
}

static void test_10000_updates_resumed_subscriber(void) {
    struct th_server srv;
    CHECK(th_server_start(&srv, "--relaxed", "--events-buffer", "256", NULL) == 0);
    struct writer w[WRITERS];
    for (int i = 0; i < WRITERS; i++) {
        w[i].srv = &srv;
        char *id = th_submit(&srv, "count", NULL);
        CHECK(id);
        free(id);
        CHECK_INT(th_claim(&srv, "default", NULL, w[i].id, w[i].tok), 200);
    }
    pthread_t th[WRITERS];
    for (int i = 0; i < WRITERS; i++)
        pthread_create(&th[i], NULL, writer_main, &w[i]);

    int next[WRITERS];
    for (int i = 0; i < WRITERS; i++)
        next[i] = 1;
    long long last = 0;
    int got = 0, reconnects = 0, errors = 0;
    unsigned seed = 12345;
    struct sse_conn c;
    CHECK(sse_open(&c, srv.url, "/v1/events?kind=progress", last, 0) == 0);
    int budget = 50 + (int)(rand_r(&seed) % 400);
    long long deadline = sse_now_ms() + 180000;
    struct sse_event ev = {.id = -1};
    sse_event_clear(&ev);
    while (got < WRITERS * BEATS && sse_now_ms() < deadline && errors < 5) {
        int r = budget-- > 0 ? sse_next(&c, &ev, 5000) : -2;
        if (r == 1) {
            json_t *j = json_loads(ev.data, 0, NULL);
            const char *tid = j ? th_str(j, "task_id") : NULL;
            long long processed = j ? th_int(j, "task.progress.processed") : -1;
            int k = -1;
            for (int i = 0; i < WRITERS && tid; i++)
                if (strcmp(w[i].id, tid) == 0) k = i;
            if (ev.id <= last || k < 0 || processed != next[k]) {
                th_fail(__FILE__, __LINE__,
                        "event id %lld (last %lld) task %d processed %lld want %d", ev.id, last, k,
                        processed, k >= 0 ? next[k] : -1);
                errors++;
            } else {
                next[k]++;
                got++;
            }
            last = ev.id;
            json_decref(j);
            continue;
        }
        /* Drop the connection (with whatever is unread) and resume. */
        sse_close(&c);
        reconnects++;
        budget = 50 + (int)(rand_r(&seed) % 400);
        if (sse_open(&c, srv.url, "/v1/events?kind=progress", last, 0)) break;
    }
    sse_event_clear(&ev);
    sse_close(&c);
    for (int i = 0; i < WRITERS; i++)
        pthread_join(th[i], NULL);
    for (int i = 0; i < WRITERS; i++)
        CHECK(w[i].ok);
    CHECK_INT(got, WRITERS * BEATS);
    printf("    10000 updates read exactly once across %d reconnects\n", reconnects);
    if (reconnects < 20) th_fail(__FILE__, __LINE__, "only %d reconnects", reconnects);
    th_server_free(&srv);
}

/* A waiting parent completes in the transaction where its last child
 * ends: its task.completed event carried the child's op as its cause
 * ("cancel", or "lease_expired" from a sweep) instead of "child". */
static void test_parent_completed_by_child_cause(void) {
    struct th_server srv;
    CHECK(th_server_start(&srv, NULL) == 0);
    char *pid = th_submit(&srv, "parent", "\"queue\":\"pq\"");
    CHECK(pid);
    char cid[33], tok[33], extra[128], path[160];
    CHECK_INT(th_claim(&srv, "pq", NULL, cid, tok), 200);
    snprintf(extra, sizeof extra, "\"queue\":\"kq\",\"parent_id\":\"%s\"", pid);
    char *kid = th_submit(&srv, "kid", extra);
    CHECK(kid);
    snprintf(path, sizeof path, "/v1/tasks/%s/complete", pid);
    struct th_resp *r = th_http(&srv, "POST", path, "{\"lease_token\":\"%s\"}", tok);
    CHECK_INT(r->status, 200);
    CHECK_STR(th_str(r->json, "phase"), "waiting");
    snprintf(path, sizeof path, "/v1/tasks/%s/cancel", kid);
    CHECK_INT(th_http(&srv, "POST", path, NULL)->status, 200);
    snprintf(path, sizeof path, "/v1/events?since=0&kind=completed,cancelled&task_id=%s,%s", pid,
             kid);
    struct sse_conn c;
    CHECK(sse_open(&c, srv.url, path, -1, 0) == 0);
    struct sse_event ev[2];
    int n = read_events(&c, ev, 2, 5000);
    sse_close(&c);
    CHECK_INT(n, 2);
    if (n == 2) {
        CHECK_STR(ev[0].event, "task.cancelled");
        CHECK(strstr(ev[0].data, "\"cause\":\"cancel\"") != NULL);
        CHECK_STR(ev[1].event, "task.completed");
        CHECK(strstr(ev[1].data, pid) && strstr(ev[1].data, "\"cause\":\"child\""));
    }
    clear_events(ev, n);
    free(pid);
    free(kid);
    th_server_free(&srv);
}

static const struct th_test tests[] = {
    {"a task's life appends the documented kinds in order", test_lifecycle_kinds},
    {"the task stream opens with a snapshot, then follows", test_task_stream_snapshot_then_live},
    {"idle streams get keep-alive comments", test_keepalive},
    {"a stream's first block has its start as an id: a client cut off at once loses nothing",
     test_first_block_has_an_id},
    {"a watcher that leaves is not logged", test_departed_client_not_logged},
    {"a pruned sequence gets an error event, then the rest", test_pruned_sequence_error_event},
    {"a resume point past the newest event is 400 naming since or Last-Event-ID",
     test_resume_past_the_newest_is_refused},
    {"a slow consumer is cut off and resumes with no gap",
     test_slow_consumer_is_cut_off_and_resumes},
    {"10,000 updates, resumed many times: each once, in order",
     test_10000_updates_resumed_subscriber},
    {"a parent completed by its child's end says cause child",
     test_parent_completed_by_child_cause},
    {NULL, NULL},
};

int main(int argc, char **argv) {
    return th_main(tests, argc, argv);
}
