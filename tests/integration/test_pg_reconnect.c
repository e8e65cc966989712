/*
 * PostgreSQL connections lost under a running server (a database restart,
 * a failover, an idle connection killed by a proxy), made here by
 * pg_terminate_backend on every connection to the server's database. What
 * must hold: every reply meanwhile is the success it would have been or 503
 * (storage unavailable), never a 500 or a hang; the server reconnects by
 * itself and writes succeed again within seconds; every acknowledged write
 * is stored; parked claims and event streams hear later writes, of this
 * node and of another, once the node's notification connection is back (or
 * through the polling fallback).
 *
 * PostgreSQL only (TASKMILL_TEST_PG); skipped on SQLite.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

#include "harness.h"
#include "sse_client.h"

#define RECOVER_MS 15000

/* Cuts every connection to s's database but psql's own. */
static int cut(const struct th_server *s) {
    char sql[256];
    snprintf(sql, sizeof sql,
             "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
             " WHERE datname = '%s' AND pid <> pg_backend_pid()",
             s->pgdb);
    return th_pg_sql(sql);
}

static bool pg_only(void) {
    if (th_backend_is_pg()) return true;
    th_skip("lost PostgreSQL connections need PostgreSQL (TASKMILL_TEST_PG)");
    return false;
}

/* Submits until a 201 or RECOVER_MS; counts what came instead. Returns the id or NULL. */
static char *submit_until_ok(struct th_server *s, const char *queue, int *unavailable, int *other,
                             long *other_status) {
    long long deadline = sse_now_ms() + RECOVER_MS;
    char body[128];
    snprintf(body, sizeof body, "{\"type\":\"rc\",\"queue\":\"%s\"}", queue);
    static const char *const ct[] = {"Content-Type: application/json", NULL};
    while (sse_now_ms() < deadline) {
        struct th_resp *r = th_http_raw(s, "POST", "/v1/tasks", body, strlen(body), ct);
        if (r->status == 201 && th_str(r->json, "id")) return strdup(th_str(r->json, "id"));
        if (r->status == 503) {
            (*unavailable)++;
        } else {
            (*other)++;
            *other_status = r->status;
            printf("    a write answered %ld: %.200s\n", r->status, r->body);
        }
        th_sleep_ms(100);
    }
    return NULL;
}

static void test_writes_recover_after_connections_cut(void) {
    if (!pg_only()) return;
    struct th_server srv;
    CHECK_INT(th_server_start(&srv, NULL), 0);
    char *before = th_submit(&srv, "rc", "\"queue\":\"rcq\"");
    int cut_rc = cut(&srv);
    int unavailable = 0, other = 0;
    long other_status = 0;
    char *after = submit_until_ok(&srv, "rcq", &unavailable, &other, &other_status);
    /* Both acknowledged writes are there, and the task can be worked. */
    long got_before = 0, got_after = 0, claimed = 0;
    char cid[33] = "", tok[33] = "";
    if (before && after) {
        char path[128];
        snprintf(path, sizeof path, "/v1/tasks/%s", before);
        got_before = th_http(&srv, "GET", path, NULL)->status;
        snprintf(path, sizeof path, "/v1/tasks/%s", after);
        got_after = th_http(&srv, "GET", path, NULL)->status;
        claimed = th_claim(&srv, "rcq", NULL, cid, tok);
    }
    bool first_claimed = before && strcmp(cid, before) == 0;
    long health = th_http(&srv, "GET", "/healthz", NULL)->status;
    th_server_free(&srv);
    free(before);
    bool recovered = after != NULL;
    free(after);
    CHECK_INT(cut_rc, 0);
    CHECK(recovered);
    CHECK_INT(other, 0); /* 201 or 503, never a 500 */
    CHECK_INT(got_before, 200);
    CHECK_INT(got_after, 200);
    CHECK_INT(claimed, 200);
    CHECK(first_claimed);
    CHECK_INT(health, 200);
    (void)unavailable;
}

struct parked {
    struct th_server *node;
    long status;
    char id[33];
};

static void *parked_claim(void *arg) {
    struct parked *p = arg;
    char tok[33];
    p->status = th_claim(p->node, "rcwake", "{\"worker\":\"w\",\"wait_seconds\":20}", p->id, tok);
    th_http(NULL, NULL, NULL, NULL);
    return NULL;
}

/* GET /v1/tasks answers 200 again (the node has its connections back), within RECOVER_MS. */
static bool reads_again(struct th_server *s) {
    long long deadline = sse_now_ms() + RECOVER_MS;
    while (sse_now_ms() < deadline) {
        if (th_http(s, "GET", "/v1/tasks?limit=1", NULL)->status == 200) return true;
        th_sleep_ms(100);
    }
    return false;
}

static void test_parked_claim_hears_other_node_after_cut(void) {
    if (!pg_only()) return;
    struct th_server a, b;
    CHECK_INT(th_server_start(&a, NULL), 0);
    if (th_server_start_peer(&b, &a, NULL)) {
        th_server_free(&a);
        return;
    }
    int cut_rc = cut(&a); /* both nodes: one database */
    bool a_back = reads_again(&a);
    struct parked p = {&a, 0, ""};
    pthread_t th;
    pthread_create(&th, NULL, parked_claim, &p);
    bool parked;
    TRY_WAIT_UNTIL(parked, th_metric(&a, "taskmill_parked_claims") >= 1, 10000,
                   "the claim to be parked on node a");
    int unavailable = 0, other = 0;
    long other_status = 0;
    char *id = submit_until_ok(&b, "rcwake", &unavailable, &other, &other_status);
    long long t0 = sse_now_ms();
    pthread_join(th, NULL);
    long long waited = sse_now_ms() - t0;
    th_server_free(&b);
    th_server_free(&a);
    bool same = id && strcmp(p.id, id) == 0;
    free(id);
    CHECK_INT(cut_rc, 0);
    CHECK(a_back);
    CHECK_INT(other, 0);
    CHECK_INT(p.status, 200);
    CHECK(same);
    CHECK(waited < 10000); /* heard, not timed out */
}

static void test_stream_goes_on_after_cut(void) {
    if (!pg_only()) return;
    struct th_server srv;
    CHECK_INT(th_server_start(&srv, NULL), 0);
    struct sse_conn c;
    bool opened = sse_open(&c, srv.url, "/v1/events?since=0", -1, 0) == 0;
    int cut_rc = cut(&srv);
    int unavailable = 0, other = 0;
    long other_status = 0;
    char *id = submit_until_ok(&srv, "rcsse", &unavailable, &other, &other_status);
    /* The stream may go on, or end and be resumed from its last id as a
     * client does; either way the new task's event comes. */
    bool heard = false;
    long long last = 0, deadline = sse_now_ms() + 10000;
    while (opened && id && !heard && sse_now_ms() < deadline) {
        struct sse_event ev = {.id = -1};
        int r = sse_next(&c, &ev, (int)(deadline - sse_now_ms()));
        if (r < 0) {
            sse_close(&c);
            th_sleep_ms(200);
            opened = sse_open(&c, srv.url, "/v1/events", last, 0) == 0;
            continue;
        }
        if (r == 0) break;
        if (ev.id > 0) last = ev.id;
        heard = strcmp(ev.event, "task.created") == 0 && ev.data && strstr(ev.data, id);
        sse_event_clear(&ev);
    }
    if (opened) sse_close(&c);
    th_server_free(&srv);
    bool submitted = id != NULL;
    free(id);
    CHECK(opened);
    CHECK_INT(cut_rc, 0);
    CHECK(submitted);
    CHECK_INT(other, 0);
    CHECK(heard);
}

static const struct th_test tests[] = {
    {"connections cut: writes answer 503 at worst and succeed again; nothing acknowledged is lost",
     test_writes_recover_after_connections_cut},
    {"connections cut: a parked claim still hears the other node's submit",
     test_parked_claim_hears_other_node_after_cut},
    {"connections cut: an open event stream goes on with later writes",
     test_stream_goes_on_after_cut},
    {NULL, NULL},
};

int main(int argc, char **argv) {
    return th_main(tests, argc, argv) || th_failed();
}
