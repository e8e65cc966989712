/*
 * fuzz_events_query: the query of GET /v1/events and GET
 * /v1/tasks/{id}/events (v1_events_query_add) and the Last-Event-ID header
 * (v1_events_query_last_id), both as the stream of every task and as the
 * stream of one. The input is "query\nlast-event-id": the part before the
 * first newline is split as a query string, "key=value&key=value", each
 * pair handed over as libmicrohttpd would (already unescaped; a key
 * without '=' has value ""); what follows is the header. Every refusal
 * must carry an error; every accepted query must stay within its caps.
 */
#include <stdlib.h>
#include <string.h>

#include "../../src/common/id.h"
#include "../../src/server/v1_decode.h"
#include "fuzz.h"

static void fuzz_check(const struct events_query *q, bool per_task) {
    const struct sse_filter *f = &q->filter;
    if (q->since < -1) abort();
    if (f->ntask_ids > V1_EVENTS_MAX_TASK_IDS) abort();
    if ((f->ntask_ids != 0) != (f->task_ids != NULL)) abort();
    for (size_t i = 0; i < f->ntask_ids; i++)
        if (!id_is_valid(f->task_ids[i])) abort();
    if (f->phases >> TASK_PHASE_COUNT) abort();
    if (f->ns) abort();
    if (f->queue && (!f->queue[0] || strlen(f->queue) > 256)) abort();
    if (f->type && (!f->type[0] || strlen(f->type) > 256)) abort();
    if (per_task && (f->ntask_ids || f->queue || f->type)) abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size > 16384) return 0;
    for (int per_task = 0; per_task < 2; per_task++) {
        char *s = malloc(size + 1);
        memcpy(s, data, size);
        s[size] = '\0';
        const char *last = NULL;
        char *nl = memchr(s, '\n', size);
        if (nl) {
            *nl = '\0';
            last = nl + 1;
        }
        struct events_query q;
        v1_events_query_init(&q, per_task);
        struct tm_error e;
        err_clear(&e);
        int rc = 0;
        char *save = NULL;
        for (char *pair = strtok_r(s, "&", &save); pair && !rc; pair = strtok_r(NULL, "&", &save)) {
            char *eq = strchr(pair, '=');
            const char *value = "";
            if (eq) {
                *eq = '\0';
                value = eq + 1;
            }
            rc = v1_events_query_add(&q, pair, value, &e);
        }
        if (!rc) rc = v1_events_query_last_id(&q, last, &e);
        if (rc) {
            if (!e.code || !e.message[0]) abort();
        } else {
            if (e.code) abort();
            fuzz_check(&q, per_task);
            /* As events_task does: its own id after the query. */
            if (per_task &&
                v1_events_query_add_task(&q, "0190aaaabbbbccccddddeeeeffff0000", NULL) != 0)
                abort();
        }
        v1_events_query_release(&q);
        free(s);
    }
    return 0;
}
