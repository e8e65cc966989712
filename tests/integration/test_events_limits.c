/*
 * The byte and count bounds of the event log, its streams and webhooks,
 * against the real server: a large task's events carry a reduced task
 * marked "truncated"; the in-memory ring is bounded in bytes; catching up
 * on large events from the store sends each exactly once, in order, and
 * streams catching up with a selective filter leave the HTTP threads free
 * for other requests between pages and send keep-alives meanwhile, which
 * carry the id to resume from; SSE streams past --max-streams get 429 with
 * Retry-After and a closed stream frees its slot, at the next keep-alive
 * at the latest; a task's attributes are
 * capped in keys and bytes, a refused heartbeat storing nothing; webhooks
 * are capped per namespace; and creating a webhook never resolves its host.
 */
#include <stdio.h>
#include <stdlib.h>

#include "harness.h"
#include "sec_util.h"
#include "sse_client.h"

/* A JSON string value of n 'x' (malloc'd, without quotes). */
static char *filler(size_t n) {
    char *s = malloc(n + 1);
    memset(s, 'x', n);
    s[n] = '\0';
    return s;
}

/* Submits a task whose params hold `bytes` of text; returns its id. */
static char *submit_big(struct th_server *srv, const char *queue, size_t bytes) {
    char *pad = filler(bytes);
    struct th_resp *r =
        th_http(srv, "POST", "/v1/tasks",
                "{\"type\":\"big\",\"queue\":\"%s\",\"params\":{\"pad\":\"%s\"}}", queue, pad);
    free(pad);
    if (r->status != 201) {
        printf("    submit: %ld %.200s\n", r->status, r->body);
        return NULL;
    }
    return strdup(th_str(r->json, "id"));
}

/* A gauge or counter from /metrics, or -1. */
static long long metric(struct th_server *srv, const char *name) {
    struct th_resp *r = th_http(srv, "GET", "/metrics", NULL);
    char key[128];
    snprintf(key, sizeof key, "\n%s ", name);
    const char *p = r->body ? strstr(r->body, key) : NULL;
    return p ? atoll(p + strlen(key)) : -1;
}

static void test_large_task_event_is_reduced(void) {
    struct th_server srv;
    CHECK(th_server_start(&srv, "--events-task-max-bytes", "4096", NULL) == 0);
    char *big = submit_big(&srv, "q", 20000);
    char *small = th_submit(&srv, "small", "\"params\":{\"a\":1}");
    CHECK(big && small);
    struct sse_conn c;
    CHECK(sse_open(&c, srv.url, "/v1/events?since=0", -1, 0) == 0);
    struct sse_event ev = {.id = -1};
    CHECK_INT(sse_next(&c, &ev, 20000), 1);
    json_t *j = json_loads(ev.data, 0, NULL);
    size_t len = strlen(ev.data);
    sse_event_clear(&ev);
    CHECK(j);
    CHECK(len < 4096 + 512);
    CHECK_STR(th_str(j, "task.id"), big);
    CHECK(json_is_true(th_get(j, "task.truncated")));
    CHECK(json_object_size(th_get(j, "task.params")) == 0);
    CHECK(json_is_null(th_get(j, "task.result")));
    CHECK(json_is_array(th_get(j, "task.items")));
    CHECK_STR(th_str(j, "task.phase"), "pending");
    CHECK_INT(th_int(j, "task.version"), th_int(j, "version"));
    json_decref(j);
    CHECK_INT(sse_next(&c, &ev, 20000), 1);
    j = json_loads(ev.data, 0, NULL);
    sse_event_clear(&ev);
    sse_close(&c);
    CHECK(j);
    CHECK_STR(th_str(j, "task.id"), small);
    CHECK(th_get(j, "task.truncated") == NULL); /* a small task is whole */
    CHECK_INT(th_int(j, "task.params.a"), 1);
    json_decref(j);
    /* The task itself keeps everything. */
    char path[160];
    snprintf(path, sizeof path, "/v1/tasks/%s", big);
    struct th_resp *r = th_http(&srv, "GET", path, NULL);
    CHECK_INT(r->status, 200);
    CHECK_INT(strlen(th_str(r->json, "params.pad")), 20000);
    /* The task stream's snapshot is bounded the same way. */
    snprintf(path, sizeof path, "/v1/tasks/%s/events", big);
    CHECK(sse_open(&c, srv.url, path, -1, 0) == 0);
    CHECK_INT(sse_next(&c, &ev, 20000), 1);
    bool ok = strcmp(ev.event, "task.snapshot") == 0 && strlen(ev.data) < 4096 + 512 &&
              strstr(ev.data, "\"truncated\":true");
    sse_event_clear(&ev);
    sse_close(&c);
    CHECK(ok);
    free(big);
    free(small);
    th_server_free(&srv);
}

static void test_ring_is_bounded_in_bytes(void) {
    struct th_server srv;
    CHECK(th_server_start(&srv, "--events-buffer-bytes", "65536", "--events-task-max-bytes", "8192",
                          NULL) == 0);
    /* With no stream open the ring keeps nothing: the store has every event. */
    for (int i = 0; i < 5; i++) {
        char *id = submit_big(&srv, "q", 3000);
        CHECK(id);
        free(id);
    }
    CHECK_INT(metric(&srv, "taskmill_sse_buffer_events"), 0);
    CHECK_INT(metric(&srv, "taskmill_sse_buffer_bytes"), 0);
    /* With one open, the ring fills, bounded in bytes. This stream follows a
     * queue nothing is written to, so it keeps up and stays open. */
    struct sse_conn quiet;
    CHECK(sse_open(&quiet, srv.url, "/v1/events?queue=elsewhere", -1, 0) == 0);
    WAIT_UNTIL(metric(&srv, "taskmill_sse_streams") == 1, 20000, "the stream to be counted");
    for (int i = 0; i < 60; i++) {
        char *id = submit_big(&srv, "q", 3000);
        CHECK(id);
        free(id);
    }
    long long bytes = metric(&srv, "taskmill_sse_buffer_bytes");
    long long events = metric(&srv, "taskmill_sse_buffer_events");
    CHECK_INT(metric(&srv, "taskmill_sse_streams"), 1);
    sse_close(&quiet);
    if (bytes <= 0 || bytes > 65536 || events <= 0 || events >= 60)
        th_fail(__FILE__, __LINE__, "ring holds %lld events, %lld bytes", events, bytes);
    /* Everything is still served, from the store below the ring. */
    struct sse_conn c;
    CHECK(sse_open(&c, srv.url, "/v1/events?since=0", -1, 0) == 0);
    int n = 0;
    struct sse_event ev = {.id = -1};
    while (n < 65 && sse_next(&c, &ev, 20000) == 1) {
        if (ev.id != n + 1) break;
        n++;
    }
    sse_event_clear(&ev);
    sse_close(&c);
    CHECK_INT(n, 65);
    th_server_free(&srv);
}

/* Catching up on events larger than one fill: each once, in order, for two readers. */
static void test_catch_up_of_large_events(void) {
    struct th_server srv;
    CHECK(th_server_start(&srv, "--events-buffer", "16", NULL) == 0);
    for (int i = 0; i < 40; i++) {
        char *id = submit_big(&srv, i % 2 ? "odd" : "even", 50000);
        CHECK(id);
        free(id);
    }
    struct sse_conn all, odd;
    CHECK(sse_open(&all, srv.url, "/v1/events?since=0", -1, 0) == 0);
    CHECK(sse_open(&odd, srv.url, "/v1/events?since=0&queue=odd", -1, 0) == 0);
    struct sse_event ev = {.id = -1};
    int n = 0;
    while (n < 40 && sse_next(&all, &ev, 20000) == 1) {
        if (ev.id != n + 1 || strlen(ev.data) < 50000) break;
        n++;
    }
    CHECK_INT(n, 40);
    n = 0;
    while (n < 20 && sse_next(&odd, &ev, 20000) == 1) {
        if (ev.id != 2 * n + 2) break;
        n++;
    }
    sse_event_clear(&ev);
    sse_close(&all);
    sse_close(&odd);
    CHECK_INT(n, 20);
    th_server_free(&srv);
}

#define CATCH_UP_BATCHES 16 /* of 1000 tasks: 16,000 events, 63 pages of the store */
#define CATCH_UP_STREAMS 6

/* Submits `batches` batches of 1,000 tasks (an event each); false after a
 * refusal (reported). */
static bool fill_log(struct th_server *srv, int batches) {
    size_t cap = 1000 * 16 + 32, n = 0;
    char *body = malloc(cap);
    n += (size_t)snprintf(body + n, cap - n, "{\"tasks\":[");
    for (int i = 0; i < 1000; i++)
        n += (size_t)snprintf(body + n, cap - n, "%s{\"type\":\"fill\"}", i ? "," : "");
    snprintf(body + n, cap - n, "]}");
    bool filled = true;
    for (int b = 0; b < batches && filled; b++) {
        struct th_resp *r = th_http(srv, "POST", "/v1/tasks/batch", "%s", body);
        if (r->status != 201) {
            th_fail(__FILE__, __LINE__, "batch %d: %ld %.200s", b, r->status, r->body);
            filled = false;
        }
    }
    free(body);
    return filled;
}

/*
 * Streams that catch up from the store with a filter that matches nothing
 * but the log's last event give their HTTP thread back between pages. The
 * order is shown, not timed: a request sent once every stream has started
 * is answered, and a /metrics read after it still counts no event sent;
 * only then does each stream get its one event. A stream that kept its
 * thread until it reached the end would have sent that event (and counted
 * it) before its thread could answer anyone else.
 */
static void test_catch_up_gives_the_thread_back(void) {
    struct th_server srv;
    CHECK(th_server_start(&srv, "--threads", "2", NULL) == 0);
    bool filled = fill_log(&srv, CATCH_UP_BATCHES);
    char *last = th_submit(&srv, "last", NULL);
    long long head = th_metric(&srv, "taskmill_event_seq");
    if (!filled || !last || head != CATCH_UP_BATCHES * 1000 + 1) {
        th_fail(__FILE__, __LINE__, "the log holds %lld events", head);
        free(last);
        th_server_free(&srv);
        return;
    }
    /* Every stream started (its first bytes came) and is reading the log. */
    struct sse_conn c[CATCH_UP_STREAMS];
    int opened = 0, started = 0;
    for (; opened < CATCH_UP_STREAMS; opened++)
        if (sse_open(&c[opened], srv.url, "/v1/events?since=0&type=last", -1, 0)) break;
    long long deadline = sse_now_ms() + 60000;
    for (int i = 0; i < opened; i++) {
        while (!strstr(c[i].buf, ": taskmill events") && sse_now_ms() < deadline)
            if (sse_fill(&c[i], 200) < 0) break;
        started += strstr(c[i].buf, ": taskmill events") != NULL;
    }
    if (opened != CATCH_UP_STREAMS || started != CATCH_UP_STREAMS)
        th_fail(__FILE__, __LINE__, "%d streams opened, %d started", opened, started);
    /* Another request meanwhile is answered; no stream has reached the end. */
    long status = th_http(&srv, "GET", "/v1/webhooks", NULL)->status;
    long long sent = th_metric(&srv, "taskmill_sse_events_sent_total");
    long long streams = th_metric(&srv, "taskmill_sse_streams");
    if (status != 200 || sent != 0 || streams != CATCH_UP_STREAMS)
        th_fail(__FILE__, __LINE__, "GET /v1/webhooks %ld, then %lld events sent on %lld streams",
                status, sent, streams);
    /* Then each gets the last event, once: the one thing it matches. */
    int got = 0;
    for (int i = 0; i < opened; i++) {
        struct sse_event ev = {.id = -1};
        if (sse_next(&c[i], &ev, 60000) == 1 && ev.id == head && ev.data && strstr(ev.data, last))
            got++;
        else
            th_fail(__FILE__, __LINE__, "stream %d: id %lld '%s'", i, ev.id, ev.event);
        sse_event_clear(&ev);
        sse_close(&c[i]);
    }
    CHECK_INT(got, CATCH_UP_STREAMS);
    free(last);
    th_server_free(&srv);
}

/*
 * A stream catching up on a long log that its filter does not match sends
 * keep-alive comments meanwhile, as an idle live stream does, so that a
 * proxy does not cut it. Counted against the time the catch-up took: at
 * least one a 300 ms (the interval is 100 ms, and a comment waits for the
 * end of a page), whatever that time is.
 */
static void test_catch_up_sends_keep_alives(void) {
    struct th_server srv;
    CHECK(th_server_start(&srv, "--sse-keepalive-ms", "100", NULL) == 0);
    bool filled = fill_log(&srv, 2 * CATCH_UP_BATCHES);
    char *last = th_submit(&srv, "last", NULL);
    long long head = th_metric(&srv, "taskmill_event_seq");
    if (!filled || !last || head != 2 * CATCH_UP_BATCHES * 1000 + 1) {
        th_fail(__FILE__, __LINE__, "the log holds %lld events", head);
        free(last);
        th_server_free(&srv);
        return;
    }
    struct sse_conn c;
    long long t0 = sse_now_ms();
    if (sse_open(&c, srv.url, "/v1/events?since=0&type=last", -1, 0)) {
        th_fail(__FILE__, __LINE__, "no stream");
        free(last);
        th_server_free(&srv);
        return;
    }
    struct sse_event ev = {.id = -1};
    int got = sse_next(&c, &ev, 120000);
    long long took = sse_now_ms() - t0;
    CHECK_INT(got, 1);
    CHECK_INT(ev.id, head);
    int keep_alives = c.comments - 1; /* the first is ": taskmill events" */
    printf("     catch-up of %lld events took %lld ms, %d keep-alives\n", head, took, keep_alives);
    CHECK(keep_alives >= took / 300 - 1);
    CHECK(took < 600 || keep_alives >= 1);
    sse_event_clear(&ev);
    sse_close(&c);
    free(last);
    th_server_free(&srv);
}

/*
 * A keep-alive carries `id:` with the last sequence the stream has passed,
 * in a block without data, once it has passed events it did not send: a
 * client (EventSource, libtaskmill) takes that as its last event id, so a
 * reconnection after a proxy's idle cut resumes past what was scanned,
 * instead of reading the log again from its last match. Shown in the
 * bytes: the log is 8,000 events that do not match, one that does, and
 * 8,000 more; the stream since 0 sends the match, then (with or without
 * keep-alives during the catch-up, which depend on its speed) the
 * keep-alive of the idle live stream carries the head, and every id it
 * sends only moves forward. A stream resumed from that id gets the next
 * match and not the first again.
 */
static void test_keep_alives_carry_the_resume_point(void) {
    struct th_server srv;
    CHECK(th_server_start(&srv, "--sse-keepalive-ms", "100", NULL) == 0);
    bool filled = fill_log(&srv, CATCH_UP_BATCHES / 2);
    char *mid = th_submit(&srv, "match", NULL);
    filled = filled && fill_log(&srv, CATCH_UP_BATCHES / 2);
    long long head = th_metric(&srv, "taskmill_event_seq");
    long long mid_seq = CATCH_UP_BATCHES / 2 * 1000 + 1;
    if (!filled || !mid || head != CATCH_UP_BATCHES * 1000 + 1) {
        th_fail(__FILE__, __LINE__, "the log holds %lld events", head);
        free(mid);
        th_server_free(&srv);
        return;
    }
    struct sse_conn c;
    CHECK(sse_open(&c, srv.url, "/v1/events?since=0&type=match", -1, 0) == 0);
    char want[64];
    snprintf(want, sizeof want, "\nid: %lld\n\n", head);
    long long deadline = sse_now_ms() + 60000;
    while (!strstr(c.buf, want) && sse_now_ms() < deadline)
        if (sse_fill(&c, 500) < 0) break;
    char *body = strstr(c.buf, "\r\n\r\n");
    if (!body || !strstr(body, want)) {
        th_fail(__FILE__, __LINE__, "no keep-alive with 'id: %lld' in '%.300s'", head,
                body ? body : c.buf);
        sse_close(&c);
        free(mid);
        th_server_free(&srv);
        return;
    }
    /* Block by block: the opening one with where the stream starts (since=0:
     * id 0), one event (the match), and id-only blocks that are keep-alives. */
    long long last_id = -1;
    int events = 0, id_only = 0, opening = 0;
    for (char *b = body + 4, *end; (end = strstr(b, "\n\n")); b = end + 2) {
        *end = '\0';
        long long id = -1;
        bool data = false, keep_alive = false, first = false;
        for (char *line = strtok(b, "\n"); line; line = strtok(NULL, "\n")) {
            if (strncmp(line, "id: ", 4) == 0) id = atoll(line + 4);
            if (strncmp(line, "data: ", 6) == 0) data = true;
            if (strcmp(line, ": keep-alive") == 0) keep_alive = true;
            if (strcmp(line, ": taskmill events") == 0) first = true;
        }
        if (first) {
            opening++;
            if (id != 0) th_fail(__FILE__, __LINE__, "the opening block's id is %lld", id);
            last_id = id;
            continue;
        }
        if (id < 0) continue; /* a comment alone */
        if (id <= last_id) th_fail(__FILE__, __LINE__, "id %lld after %lld", id, last_id);
        last_id = id;
        if (data) {
            events++;
            if (id != mid_seq) th_fail(__FILE__, __LINE__, "an event with id %lld", id);
        } else {
            id_only++;
            if (!keep_alive) th_fail(__FILE__, __LINE__, "id %lld without data or keep-alive", id);
        }
    }
    CHECK_INT(opening, 1);
    CHECK_INT(events, 1);
    CHECK_INT(last_id, head);
    CHECK(id_only >= 1);
    sse_close(&c);
    /* Resumed from the keep-alive's id: the next match, not the first again. */
    CHECK(sse_open(&c, srv.url, "/v1/events?type=match", head, 0) == 0);
    char *next = th_submit(&srv, "match", NULL);
    struct sse_event ev = {.id = -1};
    CHECK_INT(sse_next(&c, &ev, 10000), 1);
    CHECK_INT(ev.id, head + 1);
    CHECK(next && ev.data && strstr(ev.data, next));
    sse_event_clear(&ev);
    sse_close(&c);
    free(next);
    free(mid);
    th_server_free(&srv);
}

/*
 * How long stream_open and stream_open_as wait for a stream's head, and a
 * refusal's whole reply: a deadline, not a speed. 5 s was too little for a
 * server held up on a loaded machine (status 0, the test failed); a reply
 * comes whole well before, and a refusal ends in the server's close (the
 * request is HTTP/1.0), so a test that passes does not wait for it.
 */
#define STREAM_WAIT_MS 60000

/* Opens a stream and waits for its first bytes; returns the HTTP status. */
static int stream_open(struct sse_conn *c, struct th_server *srv, const char *path) {
    if (sse_open(c, srv->url, path, -1, 0)) return -1;
    long long deadline = sse_now_ms() + STREAM_WAIT_MS;
    while (!strstr(c->buf, "\r\n\r\n") && sse_now_ms() < deadline)
        if (sse_fill(c, 200) < 0) break;
    int status = 0;
    sscanf(c->buf, "HTTP/%*s %d", &status);
    /* A refusal is a whole reply: read it to its end. */
    while (status != 200 && sse_now_ms() < deadline)
        if (sse_fill(c, 200) < 0) break;
    return status;
}

static void test_streams_are_capped(void) {
    struct th_server srv;
    /* A stream whose client left is noticed at its next write: keep-alives often. */
    CHECK(th_server_start(&srv, "--max-streams", "2", "--sse-keepalive-ms", "200", NULL) == 0);
    char *id = th_submit(&srv, "t", NULL);
    CHECK(id);
    char path[160];
    snprintf(path, sizeof path, "/v1/tasks/%s/events", id);
    struct sse_conn a, b, c;
    CHECK_INT(stream_open(&a, &srv, "/v1/events"), 200);
    CHECK_INT(stream_open(&b, &srv, path), 200);
    CHECK_INT(stream_open(&c, &srv, "/v1/events?since=0"), 429);
    if (!strstr(c.buf, "Retry-After: 1")) {
        th_fail(__FILE__, __LINE__, "no Retry-After in [%.300s]", c.buf);
        sse_close(&c);
        return;
    }
    bool refused = strstr(c.buf, "too_many_requests") != NULL;
    sse_close(&c);
    CHECK(refused);
    CHECK_INT(metric(&srv, "taskmill_sse_streams"), 2);
    /* A stream that ends gives its slot back. */
    sse_close(&a);
    long long open = 2;
    for (int i = 0; i < 200 && open != 1; i++) {
        th_sleep_ms(100);
        open = metric(&srv, "taskmill_sse_streams");
    }
    CHECK_INT(open, 1);
    CHECK_INT(stream_open(&a, &srv, "/v1/events?since=0"), 200);
    sse_close(&a);
    sse_close(&b);
    for (int i = 0; i < 200 && open != 0; i++) {
        th_sleep_ms(100);
        open = metric(&srv, "taskmill_sse_streams");
    }
    CHECK_INT(open, 0);
    free(id);
    th_server_free(&srv);
}

/*
 * A client that closes its connection frees its slot at the stream's next
 * keep-alive, with nothing written to it then (docs/events.md, "How many
 * streams"). The first write to a socket whose peer has closed succeeds
 * (the kernel takes it) and only the second fails, so the slot was held
 * for two intervals: the stream wrote a second keep-alive into the void
 * and a third that failed. Ticks are counted, not timed: the client reads
 * its first keep-alive and closes; when the slot is free, no other
 * keep-alive has been written. 3 s apart, so that the test's own requests
 * fit well inside one interval on a loaded machine.
 */
static void test_closed_client_freed_at_next_keepalive(void) {
    struct th_server srv;
    CHECK(th_server_start(&srv, "--max-streams", "1", "--sse-keepalive-ms", "3000", NULL) == 0);
    struct sse_conn a;
    CHECK_INT(stream_open(&a, &srv, "/v1/events"), 200);
    long long deadline = sse_now_ms() + STREAM_WAIT_MS;
    while (!strstr(a.buf, ": keep-alive\n") && sse_now_ms() < deadline)
        if (sse_fill(&a, 200) < 0) break;
    bool ticked = strstr(a.buf, ": keep-alive\n") != NULL;
    long long before = th_metric(&srv, "taskmill_sse_keepalives_total");
    sse_close(&a); /* everything read: the close sends a FIN */
    CHECK(ticked);
    CHECK_INT(before, 1);
    long long open = 1;
    for (int i = 0; i < 600 && open != 0; i++) {
        th_sleep_ms(100);
        open = th_metric(&srv, "taskmill_sse_streams");
    }
    CHECK_INT(open, 0);
    CHECK_INT(th_metric(&srv, "taskmill_sse_keepalives_total"), 1);
    CHECK_INT(th_metric(&srv, "taskmill_sse_clients_gone_total"), 1);
    CHECK_INT(stream_open(&a, &srv, "/v1/events"), 200); /* the slot is free */
    sse_close(&a);
    th_server_free(&srv);
}

/* A gauge or counter from /metrics read with a bearer, or -1. */
static long long metric_as(struct th_server *srv, const char *bearer, const char *name) {
    struct th_resp *r = sec_http(srv, bearer, "GET", "/metrics", NULL);
    char key[128];
    snprintf(key, sizeof key, "\n%s ", name);
    const char *p = r->body ? strstr(r->body, key) : NULL;
    return p ? atoll(p + strlen(key)) : -1;
}

/* A stream of one token, with its bearer; returns the HTTP status. */
static int stream_open_as(struct sse_conn *c, struct th_server *srv, const char *bearer) {
    char auth[200];
    snprintf(auth, sizeof auth, "Authorization: Bearer %s", bearer);
    if (sse_open_with(c, srv->url, "/v1/events", -1, 0, auth)) return -1;
    long long deadline = sse_now_ms() + STREAM_WAIT_MS;
    while (!strstr(c->buf, "\r\n\r\n") && sse_now_ms() < deadline)
        if (sse_fill(c, 200) < 0) break;
    int status = 0;
    sscanf(c->buf, "HTTP/%*s %d", &status);
    while (status != 200 && !strstr(c->buf, "}") && sse_now_ms() < deadline)
        if (sse_fill(c, 200) < 0) break;
    return status;
}

/* One token (one tenant) cannot take every stream: past
 * --max-streams-per-token its next is 429, and another token, of another
 * namespace, still gets its own. */
static void test_streams_per_token_are_capped(void) {
    struct th_server srv;
    CHECK(th_server_start(&srv, "--max-streams", "4", "--max-streams-per-token", "2",
                          "--sse-keepalive-ms", "200", NULL) == 0);
    char a[128], b[128], admin[128], id[32];
    CHECK_INT(sec_token(&srv, "admin", "default", "", admin, id), 0);
    CHECK_INT(sec_token(&srv, "reader", "acme", "", a, id), 0);
    CHECK_INT(sec_token(&srv, "reader", "beta", "", b, id), 0);
    struct sse_conn s[5];
    CHECK_INT(stream_open_as(&s[0], &srv, a), 200);
    CHECK_INT(stream_open_as(&s[1], &srv, a), 200);
    int third = stream_open_as(&s[2], &srv, a);
    bool said = strstr(s[2].buf, "this token has 2 event streams open already") &&
                strstr(s[2].buf, "Retry-After: 1");
    if (third != 429 || !said) printf("    got: %.300s\n", s[2].buf);
    sse_close(&s[2]);
    CHECK_INT(third, 429);
    CHECK(said);
    CHECK_INT(stream_open_as(&s[3], &srv, b), 200);
    CHECK_INT(stream_open_as(&s[4], &srv, b), 200);
    CHECK_INT(metric_as(&srv, admin, "taskmill_sse_streams"), 4);
    /* A stream that ends gives its token's place back. */
    sse_close(&s[0]);
    long long open = 4;
    for (int i = 0; i < 200 && open != 3; i++) {
        th_sleep_ms(100);
        open = metric_as(&srv, admin, "taskmill_sse_streams");
    }
    CHECK_INT(open, 3);
    CHECK_INT(stream_open_as(&s[0], &srv, a), 200);
    for (int i = 0; i < 5; i++)
        if (i != 2) sse_close(&s[i]);
    th_server_free(&srv);
}

static void test_attributes_are_capped(void) {
    struct th_server srv;
    CHECK(th_server_start(&srv, "--max-attributes", "3", "--max-attributes-bytes", "1024", NULL) ==
          0);
    char *id = th_submit(&srv, "t", NULL);
    CHECK(id);
    char cid[33], tok[33];
    CHECK_INT(th_claim(&srv, "default", NULL, cid, tok), 200);
    char hb[160], get[160];
    snprintf(hb, sizeof hb, "/v1/tasks/%s/heartbeat", id);
    snprintf(get, sizeof get, "/v1/tasks/%s", id);
    CHECK_INT(
        th_http(&srv, "POST", hb, "{\"lease_token\":\"%s\",\"attributes\":{\"a\":1,\"b\":2}}", tok)
            ->status,
        200);
    long long version = th_int(th_http(&srv, "GET", get, NULL)->json, "version");
    long long seq = metric(&srv, "taskmill_event_seq");
    /* Two new keys make four: refused, and nothing of the call is stored. */
    struct th_resp *r =
        th_http(&srv, "POST", hb,
                "{\"lease_token\":\"%s\",\"progress\":{\"ratio\":0.5},\"attributes\":{\"c\":3,"
                "\"d\":4}}",
                tok);
    CHECK_INT(r->status, 400);
    CHECK_STR(th_str(r->json, "error.field"), "attributes");
    r = th_http(&srv, "GET", get, NULL);
    CHECK_INT(th_int(r->json, "version"), version);
    CHECK(th_get(r->json, "attributes.c") == NULL);
    CHECK(th_get(r->json, "progress.ratio") &&
          json_number_value(th_get(r->json, "progress.ratio")) < 0.5);
    CHECK_INT(metric(&srv, "taskmill_event_seq"), seq);
    /* Removing one makes room. */
    CHECK_INT(
        th_http(&srv, "POST", hb,
                "{\"lease_token\":\"%s\",\"attributes\":{\"a\":null,\"c\":3,\"d\":4,\"e\":5}}", tok)
            ->status,
        400);
    CHECK_INT(th_http(&srv, "POST", hb,
                      "{\"lease_token\":\"%s\",\"attributes\":{\"a\":null,\"c\":3}}", tok)
                  ->status,
              200);
    /* Bytes: one value past the bound. */
    char *pad = filler(1100);
    r = th_http(&srv, "POST", hb, "{\"lease_token\":\"%s\",\"attributes\":{\"b\":\"%s\"}}", tok,
                pad);
    free(pad);
    CHECK_INT(r->status, 400);
    CHECK_STR(th_str(r->json, "error.field"), "attributes");
    CHECK(strstr(th_str(r->json, "error.message"), "bytes") != NULL);
    r = th_http(&srv, "GET", get, NULL);
    CHECK_INT(th_int(r->json, "attributes.b"), 2);
    CHECK_INT(th_int(r->json, "attributes.c"), 3);
    /* complete carries attributes too, under the same cap. */
    snprintf(hb, sizeof hb, "/v1/tasks/%s/complete", id);
    CHECK_INT(
        th_http(&srv, "POST", hb, "{\"lease_token\":\"%s\",\"attributes\":{\"x\":1,\"y\":2}}", tok)
            ->status,
        400);
    CHECK_STR(th_phase(&srv, id), "running");
    free(id);
    th_server_free(&srv);
}

static void test_webhooks_are_capped_per_namespace(void) {
    struct th_server srv;
    CHECK(th_server_start(&srv, "--max-webhooks", "2", NULL) == 0);
#define HOOK_BODY "{\"url\":\"https://hooks.example.com/%s\",\"namespace\":\"%s\"}"
    struct th_resp *r = th_http(&srv, "POST", "/v1/webhooks", HOOK_BODY, "1", "acme");
    CHECK_INT(r->status, 201);
    char *first = strdup(th_str(r->json, "id"));
    CHECK_INT(th_http(&srv, "POST", "/v1/webhooks", HOOK_BODY, "2", "acme")->status, 201);
    r = th_http(&srv, "POST", "/v1/webhooks", HOOK_BODY, "3", "acme");
    CHECK_INT(r->status, 409);
    CHECK(strstr(th_str(r->json, "error.message"), "'acme'") != NULL);
    /* Another tenant has its own allowance. */
    CHECK_INT(th_http(&srv, "POST", "/v1/webhooks", HOOK_BODY, "1", "beta")->status, 201);
    char path[128];
    snprintf(path, sizeof path, "/v1/webhooks/%s", first);
    CHECK_INT(th_http(&srv, "DELETE", path, NULL)->status, 204);
    CHECK_INT(th_http(&srv, "POST", "/v1/webhooks", HOOK_BODY, "3", "acme")->status, 201);
    r = th_http(&srv, "GET", "/v1/webhooks", NULL);
    CHECK_INT(json_array_size(th_get(r->json, "webhooks")), 3);
    free(first);
    th_server_free(&srv);
#undef HOOK_BODY
}

/* The server runs with tests/shim/resolve_log.c preloaded, which logs every name it looks up:
 * the test asked a create to take under 2 s, standing for "not resolved". */
static void test_webhook_create_does_not_resolve(void) {
    struct th_server srv;
    char log[300];
    if (th_server_start_resolve_log(&srv, log, sizeof log)) return;
    /* A name that cannot resolve is accepted: it is checked when a delivery
     * connects. Literal private addresses are still refused. */
    struct th_resp *r =
        th_http(&srv, "POST", "/v1/webhooks", "{\"url\":\"http://no-such-host.invalid/hook\"}");
    CHECK_INT(r->status, 201);
    CHECK(!th_resolve_log_has(log, "no-such-host.invalid"));
    /* A delivery does look the name up: the log would show it (the shim works). */
    free(th_submit(&srv, "resolve", NULL));
    WAIT_UNTIL(th_resolve_log_has(log, "no-such-host.invalid"), 20000,
               "a delivery to the webhook looked its host up");
    unlink(log);
    CHECK_INT(th_http(&srv, "POST", "/v1/webhooks", "{\"url\":\"http://[::127.0.0.1]/x\"}")->status,
              400);
    CHECK_INT(th_http(&srv, "POST", "/v1/webhooks", "{\"url\":\"http://localhost:9/x\"}")->status,
              400);
    CHECK_INT(th_http(&srv, "POST", "/v1/webhooks", "{\"url\":\"http://[64:ff9b::a9fe:a9fe]/x\"}")
                  ->status,
              400);
    th_server_free(&srv);
}

static const struct th_test tests[] = {
    {"a large task's events carry a reduced, marked task", test_large_task_event_is_reduced},
    {"the in-memory ring is bounded in bytes, and empty while no stream is open",
     test_ring_is_bounded_in_bytes},
    {"catching up on large events sends each once, in order", test_catch_up_of_large_events},
    {"streams catching up give their thread back between pages",
     test_catch_up_gives_the_thread_back},
    {"a stream catching up on a log it does not match sends keep-alives",
     test_catch_up_sends_keep_alives},
    {"a keep-alive carries the id the stream has passed, to resume from",
     test_keep_alives_carry_the_resume_point},
    {"streams past --max-streams get 429; a closed one frees its slot", test_streams_are_capped},
    {"a client that closes frees its slot at the next keep-alive, writing nothing more",
     test_closed_client_freed_at_next_keepalive},
    {"streams past --max-streams-per-token get 429; another token gets its own",
     test_streams_per_token_are_capped},
    {"attributes are capped in keys and bytes; a refusal stores nothing",
     test_attributes_are_capped},
    {"webhooks are capped per namespace", test_webhooks_are_capped_per_namespace},
    {"creating a webhook does not resolve its host", test_webhook_create_does_not_resolve},
    {NULL, NULL},
};

int main(int argc, char **argv) {
    return th_main(tests, argc, argv);
}
