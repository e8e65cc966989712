/*
 * watch: tm_watch, which follows several tasks' changes at once (see
 * taskmill.h).
 *
 * Today each followed task holds one long-poll, GET /v1/tasks/{id}?wait=
 * &version=, on a shared curl multi handle; a reply with a newer version
 * is queued for tm_watch_next and the poll is sent again. Server-Sent
 * Events can replace this file without changing the interface. Same
 * threading as its client (one thread); the watch owns its handles and
 * queued tasks. A failed poll drops that task and reports the error in
 * the client's last error.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../common/xalloc.h"
#include "client_int.h"

/* How long one long-poll asks the server to wait (it caps the wait itself). */
#define WATCH_WAIT_S 25

struct watch_task {
    char *id;
    int64_t version; /* last version given out; -1 before the first */
    bool active;     /* still followed */
    CURL *easy;      /* in flight when not NULL */
    struct curl_slist *headers;
    struct client_buf body;
};

/* A change waiting to be handed out, or an error. */
struct watch_event {
    json_t *task;
    char id[256];
    struct tm_client_error err;
};

struct tm_watch {
    struct tm_client *c;
    CURLM *multi;
    struct watch_task *tasks;
    size_t ntasks;
    struct watch_event *queue;
    size_t nqueue, queue_cap;
    char last_id[256];
};

struct tm_watch *tm_watch_new(struct tm_client *c) {
    struct tm_watch *w = xcalloc(1, sizeof *w);
    w->c = c;
    w->multi = curl_multi_init();
    if (!w->multi) abort();
    return w;
}

static void watch_task_stop(struct tm_watch *w, struct watch_task *t) {
    if (t->easy) {
        curl_multi_remove_handle(w->multi, t->easy);
        curl_easy_cleanup(t->easy);
        t->easy = NULL;
    }
    curl_slist_free_all(t->headers);
    t->headers = NULL;
    client_buf_release(&t->body);
}

void tm_watch_free(struct tm_watch *w) {
    if (!w) return;
    for (size_t i = 0; i < w->ntasks; i++) {
        watch_task_stop(w, &w->tasks[i]);
        free(w->tasks[i].id);
    }
    for (size_t i = 0; i < w->nqueue; i++)
        json_decref(w->queue[i].task);
    curl_multi_cleanup(w->multi);
    free(w->tasks);
    free(w->queue);
    free(w);
}

/* Sends the task's next poll: a plain read first, then long-polls past its version. */
static void watch_task_send(struct tm_watch *w, struct watch_task *t) {
    char *id = client_escape(t->id);
    size_t n = strlen(id) + 64;
    char *path = xmalloc(n);
    if (t->version < 0)
        snprintf(path, n, "/v1/tasks/%s", id);
    else
        snprintf(path, n, "/v1/tasks/%s?wait=%d&version=%lld", id, WATCH_WAIT_S,
                 (long long)t->version);
    free(id);
    t->easy = curl_easy_init();
    if (!t->easy) abort();
    client_easy_setup(w->c, t->easy, "GET", path, NULL, WATCH_WAIT_S + 35L, &t->body, &t->headers);
    curl_easy_setopt(t->easy, CURLOPT_PRIVATE, t);
    free(path);
    curl_multi_add_handle(w->multi, t->easy);
}

int tm_watch_add(struct tm_watch *w, const char *id) {
    if (!id || !*id) return client_fail(w->c, TM_CLIENT_EINVALID, "'id' must not be empty");
    /* Handles point at their entry (CURLOPT_PRIVATE), so the array must not move under them. */
    struct watch_task *old = w->tasks;
    w->tasks = xcalloc(w->ntasks + 1, sizeof *w->tasks);
    for (size_t i = 0; i < w->ntasks; i++) {
        w->tasks[i] = old[i];
        if (w->tasks[i].easy) {
            curl_easy_setopt(w->tasks[i].easy, CURLOPT_PRIVATE, &w->tasks[i]);
            curl_easy_setopt(w->tasks[i].easy, CURLOPT_WRITEDATA, &w->tasks[i].body);
        }
    }
    free(old);
    struct watch_task *t = &w->tasks[w->ntasks++];
    t->id = xstrdup(id);
    t->version = -1;
    t->active = true;
    watch_task_send(w, t);
    return 0;
}

size_t tm_watch_active(const struct tm_watch *w) {
    size_t n = 0;
    for (size_t i = 0; i < w->ntasks; i++)
        n += w->tasks[i].active;
    return n;
}

static void watch_push(struct tm_watch *w, const char *id, json_t *task,
                       const struct tm_client_error *err) {
    if (w->nqueue == w->queue_cap) {
        w->queue_cap = w->queue_cap ? w->queue_cap * 2 : 8;
        w->queue = xrealloc(w->queue, w->queue_cap * sizeof *w->queue);
    }
    struct watch_event *e = &w->queue[w->nqueue++];
    memset(e, 0, sizeof *e);
    e->task = task;
    snprintf(e->id, sizeof e->id, "%s", id);
    if (err) e->err = *err;
}

/* Handles one finished poll: queue a change or an error, and poll again if still followed. */
static void watch_task_done(struct tm_watch *w, struct watch_task *t, CURLcode rc) {
    long status = 0;
    curl_easy_getinfo(t->easy, CURLINFO_RESPONSE_CODE, &status);
    json_t *task = NULL;
    int r = client_finish(w->c, rc, status, &t->body, &task);
    curl_multi_remove_handle(w->multi, t->easy);
    curl_easy_cleanup(t->easy);
    t->easy = NULL;
    curl_slist_free_all(t->headers);
    t->headers = NULL;
    client_buf_release(&t->body);
    if (r == 0 && !json_is_object(task)) {
        json_decref(task);
        r = client_fail(w->c, TM_CLIENT_EPROTOCOL, "reply for task '%s' is not a task", t->id);
    }
    if (r) {
        t->active = false;
        watch_push(w, t->id, NULL, &w->c->err);
        return;
    }
    json_int_t v = json_integer_value(json_object_get(task, "version"));
    if (v > t->version) {
        t->version = v;
        if (tm_phase_is_terminal(json_string_value(json_object_get(task, "phase"))))
            t->active = false;
        watch_push(w, t->id, task, NULL);
    } else {
        json_decref(task);
    }
    if (t->active) watch_task_send(w, t);
}

/* Hands out the oldest queued event: 1 with a task, or the error's code. */
static int watch_pop(struct tm_watch *w, json_t **task) {
    struct watch_event e = w->queue[0];
    memmove(w->queue, w->queue + 1, (w->nqueue - 1) * sizeof *w->queue);
    w->nqueue--;
    memcpy(w->last_id, e.id, sizeof w->last_id);
    if (e.task) {
        *task = e.task;
        memset(&w->c->err, 0, sizeof w->c->err);
        return 1;
    }
    w->c->err = e.err;
    return e.err.code ? e.err.code : TM_CLIENT_EPROTOCOL;
}

static int64_t watch_now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int tm_watch_next(struct tm_watch *w, int timeout_ms, json_t **task) {
    *task = NULL;
    int64_t deadline = watch_now_ms() + (timeout_ms > 0 ? timeout_ms : 0);
    for (;;) {
        if (w->nqueue) return watch_pop(w, task);
        int running = 0;
        curl_multi_perform(w->multi, &running);
        CURLMsg *m;
        int nmsg;
        while ((m = curl_multi_info_read(w->multi, &nmsg))) {
            if (m->msg != CURLMSG_DONE) continue;
            struct watch_task *t = NULL;
            curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&t);
            if (t) watch_task_done(w, t, m->data.result);
        }
        if (w->nqueue) return watch_pop(w, task);
        int64_t left = deadline - watch_now_ms();
        if (left <= 0 || tm_watch_active(w) == 0) return 0;
        curl_multi_poll(w->multi, NULL, 0, left > 1000 ? 1000 : (int)left, NULL);
    }
}

const char *tm_watch_last_id(const struct tm_watch *w) {
    return w->last_id[0] ? w->last_id : NULL;
}
