/*
 * store_pg_events: the PostgreSQL backend's event log, webhooks and
 * deliveries (tables of migrations/pg/0002).
 *
 * Numbering: every batch takes its block of seqs from the `head` row of
 * event_meta (UPDATE ... RETURNING, in its transaction), so the row lock
 * makes concurrent batches of several nodes number in turn: a batch's
 * seqs are above those of every batch that committed before it took the
 * lock, and nobody else numbers until it commits. Seq order is therefore
 * commit order, and a reader that has seen seq N has seen every seq below
 * it. The lock is held only from the append, the last statement of a
 * batch, to its COMMIT.
 *
 * One append is one statement (one round trip): the head, the events (from
 * arrays bound in binary), the deliveries they call for, and one NOTIFY
 * with the new head, which PostgreSQL delivers to every listener at commit
 * (once per batch: that is the debounce). Writer ops run on the writer
 * connection inside the batch's transaction; reads borrow a reader and run
 * one statement each, so what they read comes from one snapshot. Every
 * row is copied out.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/xalloc.h"
#include "store_pg_int.h"

#define PG_EVENT_COLS "seq,at,kind,cause,task_id,namespace,queue,type,phase,version,task,actor"
/* The base to join an event "e"'s stored part with (store_event.base): the
 * task's first event in the log, found through events_task. */
#define PG_EVENT_BASE(e)                                                 \
    "CASE WHEN left(" e                                                  \
    ".task, 6) = '{\"id\":' THEN NULL ELSE (SELECT f.task FROM events f" \
    " WHERE f.task_id = " e ".task_id ORDER BY f.seq LIMIT 1) END"
#define PG_DELIVERY_COLS                                                                        \
    "d.id,d.webhook_id,d.seq,d.event,d.status,d.attempts,d.next_at,d.last_status,d.last_error," \
    "d.created_at,d.updated_at"

/* $1 n, $2..$13 the events' columns as arrays (actor last), $14 the
 * Livepeer names (element k is the name of bit 1 << k). */
static const struct pg_stmt st_append = {
    PGS_EV_APPEND,
    "WITH h AS (UPDATE event_meta SET value = value + $1::bigint WHERE name = 'head'"
    " RETURNING value),"
    " inp AS (SELECT h.value - $1::bigint + u.ord AS seq, u.at, u.kind, u.cause, u.task_id,"
    " u.namespace, u.queue, u.type, u.phase, u.version, u.task, u.hooks, u.actor"
    " FROM h, unnest($2::bigint[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[],"
    " $8::text[], $9::text[], $10::bigint[], $11::text[], $12::integer[], $13::text[])"
    " WITH ORDINALITY"
    " AS u(at, kind, cause, task_id, namespace, queue, type, phase, version, task, hooks, actor,"
    " ord)),"
    " ev AS (INSERT INTO events(" PG_EVENT_COLS
    ")"
    " SELECT seq, at, kind, cause, task_id, namespace, queue, type, phase, version, task,"
    " NULLIF(actor, '') FROM inp),"
    " dl AS (INSERT INTO webhook_deliveries(id, webhook_id, seq, event, status, next_at,"
    " created_at, updated_at)"
    " SELECT replace(gen_random_uuid()::text, '-', ''), w.id, inp.seq, n.name, 'pending',"
    " inp.at, inp.at, inp.at"
    " FROM inp JOIN unnest($14::text[]) WITH ORDINALITY AS n(name, bit)"
    " ON (inp.hooks >> (n.bit::integer - 1)) & 1 = 1"
    " JOIN webhooks w ON (w.namespace IS NULL OR w.namespace = inp.namespace)"
    " AND strpos(w.events, ',' || n.name || ',') > 0"
    " RETURNING 1),"
    " note AS (SELECT pg_notify('taskmill_events', h.value::text) FROM h)"
    " SELECT h.value, (SELECT count(*) FROM dl), (SELECT count(*) FROM note) FROM h"};

/* What an append sent ahead numbers when its result comes (at the COMMIT). */
struct appended {
    struct store_event *evs;
    size_t n, *deliveries;
};

static int pg_appended(struct pg_conn *c, PGresult *r, void *arg) {
    (void)c;
    struct appended *ap = arg;
    if (PQntuples(r) != 1) {
        fprintf(stderr, "taskmill: postgres: writer: the event_meta row 'head' is missing\n");
        return TM_EINTERNAL;
    }
    int64_t head = pg_int(r, 0, 0);
    *ap->deliveries = (size_t)pg_int(r, 0, 1);
    for (size_t i = 0; i < ap->n; i++)
        ap->evs[i].seq = head - (int64_t)ap->n + 1 + (int64_t)i;
    return 0;
}

/* Sent ahead: the seqs and *deliveries are set when the COMMIT's answer
 * comes (store_int.h). */
int pg_events_append(struct store *s, struct store_event *evs, size_t n, size_t *deliveries) {
    *deliveries = 0;
    if (n == 0) return 0;
    struct buf a[13];
    for (int i = 0; i < 13; i++)
        buf_init(&a[i]);
    static const unsigned oid[13] = {
        PG_OID_INT8, PG_OID_TEXT, PG_OID_TEXT, PG_OID_TEXT, PG_OID_TEXT, PG_OID_TEXT, PG_OID_TEXT,
        PG_OID_TEXT, PG_OID_INT8, PG_OID_TEXT, PG_OID_INT4, PG_OID_TEXT, PG_OID_TEXT};
    for (int i = 0; i < 12; i++)
        pga_begin(&a[i], oid[i], n);
    for (size_t i = 0; i < n; i++) {
        const struct store_event *ev = &evs[i];
        pga_int8(&a[0], ev->at);
        pga_text(&a[1], ev->kind);
        pga_text(&a[2], ev->cause);
        pga_text(&a[3], ev->task_id);
        pga_text(&a[4], ev->ns);
        pga_text(&a[5], ev->queue);
        pga_text(&a[6], ev->type);
        pga_text(&a[7], task_phase_name(ev->phase));
        pga_int8(&a[8], ev->version);
        pga_text(&a[9], ev->stored ? ev->stored : ev->task_json);
        pga_int4(&a[10], (int32_t)ev->hooks);
        pga_text(&a[11], ev->actor);
    }
    pga_begin(&a[12], PG_OID_TEXT, WEBHOOK_EVENT_COUNT);
    for (int i = 0; i < WEBHOOK_EVENT_COUNT; i++)
        pga_text(&a[12], webhook_event_name(i));

    struct pg_params p;
    pgp_init(&p);
    pgp_int(&p, (int64_t)n);
    for (int i = 0; i < 13; i++)
        pgp_bin(&p, a[i].p, a[i].len);
    struct appended *ap = xmalloc(sizeof *ap);
    *ap = (struct appended){evs, n, deliveries};
    int rc = pg_run_ahead(pg_writer(s), &st_append, &p, pg_appended, ap);
    for (int i = 0; i < 13; i++)
        buf_release(&a[i]);
    return rc;
}

/* ---- Retention (writer) ---- */

/* The aged bound is the seq of an event with the newest `at` before the
 * limit, the first entry of events_at read backwards: max(seq) over at < $1
 * may be planned as a walk down the primary key from the newest event, a
 * scan of the log when no event is that old. Among events of one `at`, or
 * where clocks stepped back, this seq may be below the max, never above,
 * so retention only keeps an event longer. */
static const struct pg_stmt st_prune_info = {
    PGS_EV_PRUNE_INFO,
    "SELECT (SELECT value FROM event_meta WHERE name = 'head'), m.value,"
    " CASE WHEN $1::bigint > 0"
    " THEN coalesce((SELECT seq FROM events WHERE at < $1::bigint ORDER BY at DESC LIMIT 1), 0)"
    " ELSE 0 END,"
    " (SELECT coalesce(min(seq), 0) FROM webhook_deliveries WHERE status = 'pending')"
    " FROM event_meta m WHERE m.name = 'pruned_through' FOR UPDATE OF m"};

int pg_events_prune_info(struct store *s, int64_t before_at, struct store_prune_info *out) {
    memset(out, 0, sizeof *out);
    struct pg_params p;
    pgp_init(&p);
    pgp_int(&p, before_at);
    PGresult *r;
    int rc = pg_run(pg_writer(s), &st_prune_info, &p, &r);
    if (rc) return rc;
    if (PQntuples(r) == 1) {
        out->head = pg_int(r, 0, 0);
        out->pruned_through = pg_int(r, 0, 1);
        out->aged_through = pg_int(r, 0, 2);
        out->pending_min = pg_int(r, 0, 3);
    } else {
        fprintf(stderr,
                "taskmill: postgres: writer: the event_meta row 'pruned_through' is missing\n");
        rc = TM_EINTERNAL;
    }
    PQclear(r);
    return rc;
}

static const struct pg_stmt st_delete = {
    PGS_EV_DELETE,
    "WITH e AS (DELETE FROM events WHERE seq <= $1::bigint"
    " AND seq > (SELECT value FROM event_meta WHERE name = 'pruned_through') RETURNING 1),"
    " d AS (DELETE FROM webhook_deliveries WHERE status <> 'pending' AND seq <= $1::bigint),"
    " n AS (SELECT count(*) AS n FROM e),"
    " m AS (UPDATE event_meta SET value = CASE name WHEN 'pruned_through' THEN $1::bigint"
    " ELSE value + (SELECT n FROM n) END WHERE name IN ('pruned_through', 'pruned_total'))"
    " SELECT n FROM n"};

int pg_events_delete(struct store *s, int64_t *through, int64_t *deleted) {
    *deleted = 0;
    struct pg_params p;
    pgp_init(&p);
    pgp_int(&p, *through);
    return pg_run_int(pg_writer(s), &st_delete, &p, deleted);
}

/* ---- Webhooks (writer) ---- */

/* ",a,b," from the event bits. */
static void pg_events_text(unsigned bits, char *out, size_t n) {
    size_t len = (size_t)snprintf(out, n, ",");
    for (int i = 0; i < WEBHOOK_EVENT_COUNT && len < n; i++)
        if (bits & (1u << i))
            len += (size_t)snprintf(out + len, n - len, "%s,", webhook_event_name(i));
}

static const struct pg_stmt st_hook_insert = {
    PGS_HOOK_INSERT,
    "INSERT INTO webhooks(id,namespace,name,url,events,secret,created_at)"
    " VALUES($1,$2,$3,$4,$5,$6,$7)"};

int pg_webhook_insert(struct store *s, const struct webhook *w) {
    char events[128];
    pg_events_text(w->events, events, sizeof events);
    struct pg_params p;
    pgp_init(&p);
    pgp_text(&p, w->id);
    pgp_text(&p, w->ns);
    pgp_text(&p, w->name);
    pgp_text(&p, w->url);
    pgp_text(&p, events);
    pgp_text(&p, w->secret);
    pgp_int(&p, w->created_at);
    return pg_run_cmd(pg_writer(s), &st_hook_insert, &p);
}

static const struct pg_stmt st_hook_count = {
    PGS_HOOK_COUNT, "SELECT count(*) FROM webhooks WHERE namespace IS NOT DISTINCT FROM $1::text"};

int pg_webhook_count(struct store *s, const char *ns, int64_t *n) {
    *n = 0;
    struct pg_params p;
    pgp_init(&p);
    pgp_text(&p, ns);
    return pg_run_int(pg_writer(s), &st_hook_count, &p, n);
}

static const struct pg_stmt st_hook_delete = {
    PGS_HOOK_DELETE,
    "WITH w AS (DELETE FROM webhooks WHERE id = $1 AND ($2::text IS NULL OR namespace = $2)"
    " RETURNING id),"
    " d AS (DELETE FROM webhook_deliveries WHERE webhook_id IN (SELECT id FROM w))"
    " SELECT count(*) FROM w"};

int pg_webhook_delete(struct store *s, const char *ns, const char *id) {
    struct pg_params p;
    pgp_init(&p);
    pgp_text(&p, id);
    pgp_text(&p, ns);
    PGresult *r;
    int rc = pg_run(pg_writer(s), &st_hook_delete, &p, &r);
    if (rc) return rc;
    if (pg_int(r, 0, 0) == 0) rc = TM_ENOT_FOUND;
    PQclear(r);
    return rc;
}

#define PG_WEBHOOK_COLS "id,namespace,name,url,events,secret,created_at"

/* Reads the PG_WEBHOOK_COLS of `row` into w (zeroed or released). */
static void pg_read_webhook(const PGresult *r, int row, struct webhook *w) {
    pg_copy(w->id, sizeof w->id, r, row, 0);
    w->ns = pg_dup(r, row, 1);
    w->name = pg_dup(r, row, 2);
    w->url = pg_dup(r, row, 3);
    const char *ev = PQgetvalue(r, row, 4);
    w->events = 0;
    for (int k = 0; k < WEBHOOK_EVENT_COUNT; k++) {
        char key[40];
        snprintf(key, sizeof key, ",%s,", webhook_event_name(k));
        if (strstr(ev, key)) w->events |= 1u << k;
    }
    w->secret = pg_dup(r, row, 5);
    w->created_at = pg_int(r, row, 6);
}

/* store_events.c tells what it does. One statement, run unnamed (an
 * operator's PATCH is rare). The webhook's row lock orders it with a
 * claim on any node: a claim that took the row first sends with the old
 * url and secret, as an attempt in flight does; every later claim reads
 * the new ones. busy_until is left alone. $3 is w->set. */
static const char pg_hook_update_sql[] =
    "WITH w AS (UPDATE webhooks SET url = CASE WHEN $3::int & 1 <> 0 THEN $4::text ELSE url END,"
    " events = CASE WHEN $3::int & 2 <> 0 THEN $5::text ELSE events END,"
    " secret = CASE WHEN $3::int & 4 <> 0 THEN $6::text ELSE secret END,"
    " name = CASE WHEN $3::int & 8 <> 0 THEN $7::text ELSE name END"
    " WHERE id = $1 AND ($2::text IS NULL OR namespace = $2) RETURNING " PG_WEBHOOK_COLS
    "),"
    " d AS (UPDATE webhook_deliveries SET status = 'failed',"
    " last_error = 'the webhook no longer asks for ''' || event || '''', updated_at = $8"
    " WHERE $3::int & 2 <> 0 AND webhook_id IN (SELECT id FROM w) AND status = 'pending'"
    " AND position(',' || event || ',' IN $5::text) = 0)"
    " SELECT " PG_WEBHOOK_COLS " FROM w";

int pg_webhook_update(struct store *s, const char *ns, const char *id, struct webhook *w,
                      int64_t now) {
    char events[128];
    pg_events_text(w->events, events, sizeof events);
    struct pg_params p;
    pgp_init(&p);
    pgp_text(&p, id);
    pgp_text(&p, ns);
    pgp_int(&p, w->set);
    pgp_text(&p, w->url);
    pgp_text(&p, events);
    pgp_text(&p, w->secret);
    pgp_text(&p, w->name);
    pgp_int(&p, now);
    PGresult *r;
    int rc = pg_run_sql(pg_writer(s), pg_hook_update_sql, &p, &r);
    if (rc) return rc;
    if (PQntuples(r) == 0) {
        PQclear(r);
        return TM_ENOT_FOUND;
    }
    unsigned set = w->set;
    webhook_release(w);
    pg_read_webhook(r, 0, w);
    w->set = set;
    PQclear(r);
    return 0;
}

/* $8 the webhook, $9 the busy_until its claim set: an attempt whose claim
 * ran out (its outcome came late, and another node may have claimed the
 * webhook and be sending) records nothing and frees nothing, so that it
 * can neither write over the newer attempt's outcome nor let a third one
 * start while that one is in flight. */
static const struct pg_stmt st_delivery_update = {
    PGS_DELIVERY_UPDATE,
    "WITH d AS (UPDATE webhook_deliveries SET status=$2, attempts=$3, next_at=$4,"
    " last_status=$5, last_error=$6, updated_at=$7 WHERE id=$1 AND status='pending'"
    " AND EXISTS (SELECT 1 FROM webhooks WHERE id = $8 AND busy_until = $9::bigint))"
    " UPDATE webhooks SET busy_until = 0 WHERE id = $8 AND busy_until = $9::bigint"};

int pg_delivery_update(struct store *s, const struct webhook_delivery *d) {
    struct pg_params p;
    pgp_init(&p);
    pgp_fields(&p, store_delivery_set_fields, SIZE_MAX, d);
    pgp_text(&p, d->webhook_id);
    pgp_int(&p, d->claimed_until);
    return pg_run_cmd(pg_writer(s), &st_delivery_update, &p);
}

/* Reads PG_EVENT_COLS starting at column `at`. */
static void pg_read_event(const PGresult *r, int row, int at, struct store_event *ev) {
    memset(ev, 0, sizeof *ev);
    ev->seq = pg_int(r, row, at);
    ev->at = pg_int(r, row, at + 1);
    pg_copy(ev->kind, sizeof ev->kind, r, row, at + 2);
    pg_copy(ev->cause, sizeof ev->cause, r, row, at + 3);
    pg_copy(ev->task_id, sizeof ev->task_id, r, row, at + 4);
    ev->ns = pg_dup(r, row, at + 5);
    ev->queue = pg_dup(r, row, at + 6);
    ev->type = pg_dup(r, row, at + 7);
    if (PQgetisnull(r, row, at + 8) || task_phase_parse(PQgetvalue(r, row, at + 8), &ev->phase))
        ev->phase = TASK_PENDING;
    ev->version = pg_int(r, row, at + 9);
    ev->task_json = pg_dup(r, row, at + 10);
    pg_copy(ev->actor, sizeof ev->actor, r, row, at + 11);
    ev->base = pg_dup(r, row, at + 12);
    ev->hooks = store_event_hooks(ev->kind);
}

/* Reads PG_DELIVERY_COLS starting at column 0. */
static void pg_read_delivery(const PGresult *r, int row, struct webhook_delivery *d) {
    memset(d, 0, sizeof *d);
    pg_read_fields(r, row, 0, store_delivery_fields, d);
}

/*
 * Two statements, so that the delivery is read after the webhook's lock is
 * held. The first picks the free webhook whose first due delivery comes
 * first (each free webhook's first due delivery, from the index
 * webhook_deliveries_hook_due: the cost follows the number of webhooks,
 * not the backlog of busy ones) and locks it, skipping webhooks another
 * node is claiming or freeing (SKIP LOCKED); a row another node made busy
 * meanwhile fails busy_until <= now when rechecked. It must not decide the
 * delivery: a webhook freed by a commit after this statement's snapshot is
 * rechecked under the lock, but its deliveries are not, so the first due
 * delivery it saw may be the one just delivered. The second statement,
 * with a snapshot taken under the lock, takes the webhook's first due
 * delivery as it is now and marks the webhook busy.
 * $1 now, $2 webhook ids to skip.
 */
#define PG_EVENT_ORDER \
    "CASE x.event WHEN 'task.spawned' THEN 0 WHEN 'task.updated' THEN 1 ELSE 2 END"
static const struct pg_stmt st_delivery_claim = {
    PGS_DELIVERY_CLAIM,
    "SELECT w.id FROM webhooks w CROSS JOIN LATERAL"
    " (SELECT x.next_at, x.seq, " PG_EVENT_ORDER
    " AS ord FROM webhook_deliveries x"
    " WHERE x.webhook_id = w.id AND x.status = 'pending' AND x.next_at <= $1::bigint"
    " ORDER BY x.next_at, x.seq, " PG_EVENT_ORDER
    " LIMIT 1) f"
    " WHERE w.busy_until <= $1::bigint AND w.id <> ALL($2::text[])"
    " ORDER BY f.next_at, f.seq, f.ord LIMIT 1 FOR UPDATE OF w SKIP LOCKED"};

/* $1 now, $2 the webhook (locked), $3 busy_until. */
static const struct pg_stmt st_delivery_take = {
    PGS_DELIVERY_TAKE,
    "WITH f AS (SELECT x.id FROM webhook_deliveries x"
    " WHERE x.webhook_id = $2::text AND x.status = 'pending' AND x.next_at <= $1::bigint"
    " ORDER BY x.next_at, x.seq, " PG_EVENT_ORDER
    " LIMIT 1),"
    " u AS (UPDATE webhooks w SET busy_until = $3::bigint WHERE w.id = $2::text"
    " AND EXISTS (SELECT 1 FROM f) RETURNING w.url, w.secret)"
    " SELECT " PG_DELIVERY_COLS
    ", u.url, u.secret,"
    " e.seq, e.at, e.kind, e.cause, e.task_id, e.namespace, e.queue, e.type, e.phase,"
    " e.version, e.task, e.actor, " PG_EVENT_BASE("e")
    " FROM f JOIN webhook_deliveries d ON d.id = f.id CROSS JOIN u"
    " LEFT JOIN events e ON e.seq = d.seq"};

int pg_delivery_claim(struct store *s, int64_t now, const char *const *skip, size_t nskip,
                      int64_t busy_until, struct webhook_delivery **out) {
    *out = NULL;
    struct buf ids;
    buf_init(&ids);
    struct pg_params p;
    pgp_init(&p);
    pgp_int(&p, now);
    pgp_text_array(&p, &ids, skip, nskip);
    PGresult *r;
    int rc = pg_run(pg_writer(s), &st_delivery_claim, &p, &r);
    buf_release(&ids);
    if (rc) return rc;
    if (PQntuples(r) == 0) {
        PQclear(r);
        return TM_ENOT_FOUND;
    }
    char hook[ID_LEN + 1];
    pg_copy(hook, sizeof hook, r, 0, 0);
    PQclear(r);
    pgp_init(&p);
    pgp_int(&p, now);
    pgp_text(&p, hook);
    pgp_int(&p, busy_until);
    if ((rc = pg_run(pg_writer(s), &st_delivery_take, &p, &r))) return rc;
    if (PQntuples(r) == 0) { /* delivered by another node just now */
        PQclear(r);
        return TM_ENOT_FOUND;
    }
    struct webhook_delivery *d = xcalloc(1, sizeof *d);
    pg_read_delivery(r, 0, d);
    d->url = pg_dup(r, 0, 11);
    d->secret = pg_dup(r, 0, 12);
    if (!PQgetisnull(r, 0, 13)) pg_read_event(r, 0, 13, &d->ev);
    PQclear(r);
    *out = d;
    return 0;
}

/* ---- Reads ---- */

/*
 * Head, pruned_through and the page in one statement (one snapshot). The
 * byte bound is applied in SQL: a row is returned while the task JSON
 * before it (the stored part and its base) stays under $4 bytes, so the page holds at most
 * max_bytes plus one event and the rest never leaves the server; `run` says whether the last row
 * reached the bound. $1 after, $2 namespace, $3 limit, $4 max_bytes (0: none), and $5 the task
 * (by-task variant).
 */
#define PG_EVENTS_PAGE(where) \
    "SELECT m.head, m.pt, e.seq, e.at, e.kind, e.cause, e.task_id, e.namespace, e.queue, e.type," \
    " e.phase, e.version, e.task, e.actor, e.base, e.run"                                         \
    " FROM (SELECT (SELECT value FROM event_meta WHERE name = 'head') AS head,"                   \
    " (SELECT value FROM event_meta WHERE name = 'pruned_through') AS pt) m"                      \
    " LEFT JOIN (SELECT * FROM (SELECT x.*, sum(x.len) OVER (ORDER BY x.seq) AS run"              \
    " FROM (SELECT z.*, octet_length(z.task) + coalesce(octet_length(z.base), 0) AS len"          \
    " FROM (SELECT " PG_EVENT_COLS ", " PG_EVENT_BASE("v") " AS base"                             \
    " FROM events v WHERE " where " AND seq > $1::bigint"                                         \
    " AND ($2::text IS NULL OR namespace = $2::text) ORDER BY seq LIMIT $3::integer) z) x) y"     \
    " WHERE $4::bigint = 0 OR y.run - y.len < $4::bigint) e ON true"                              \
    " ORDER BY e.seq"

static const struct pg_stmt st_read = {PGS_EV_READ, PG_EVENTS_PAGE("true")};
static const struct pg_stmt st_read_task = {PGS_EV_READ_TASK, PG_EVENTS_PAGE("task_id = $5::text")};
/* The feed's page without task JSON: the columns of PG_EVENTS_PAGE, with
 * NULL for the stored part and its base, and no byte bound. $1 after, $2 limit. */
static const struct pg_stmt st_read_bare = {
    PGS_EV_READ_BARE,
    "SELECT m.head, m.pt, e.seq, e.at, e.kind, e.cause, e.task_id, e.namespace, e.queue, e.type,"
    " e.phase, e.version, NULL::text, e.actor, NULL::text, 0::bigint"
    " FROM (SELECT (SELECT value FROM event_meta WHERE name = 'head') AS head,"
    " (SELECT value FROM event_meta WHERE name = 'pruned_through') AS pt) m"
    " LEFT JOIN (SELECT seq, at, kind, cause, task_id, namespace, queue, type, phase,"
    " version, actor FROM events WHERE seq > $1::bigint ORDER BY seq LIMIT $2::integer) e ON true"
    " ORDER BY e.seq"};

static int pg_events_page(struct store *s, const struct pg_stmt *st, const struct pg_params *p,
                          int limit, size_t max_bytes, struct event_page *out) {
    PGresult *r;
    int rc = pg_read(s, st, p, &r);
    if (rc) return rc;
    int rows = PQntuples(r);
    out->events = xcalloc((size_t)(limit > 0 ? limit : 1), sizeof *out->events);
    for (int i = 0; i < rows; i++) {
        if (i == 0) {
            out->head = pg_int(r, 0, 0);
            out->pruned_through = pg_int(r, 0, 1);
        }
        if (PQgetisnull(r, i, 2) || out->n >= (size_t)limit) continue;
        pg_read_event(r, i, 2, &out->events[out->n++]);
        if (max_bytes && pg_int(r, i, 15) >= (int64_t)max_bytes) out->more = true;
    }
    PQclear(r);
    return 0;
}

int pg_events_read(struct store *s, const char *ns, const char *task_id, int64_t after, int limit,
                   size_t max_bytes, struct event_page *out) {
    struct pg_params p;
    pgp_init(&p);
    pgp_int(&p, after);
    pgp_text(&p, ns);
    pgp_int(&p, limit > 0 ? limit : 0);
    pgp_int(&p, (int64_t)max_bytes);
    if (task_id) pgp_text(&p, task_id);
    return pg_events_page(s, task_id ? &st_read_task : &st_read, &p, limit, max_bytes, out);
}

int pg_events_read_bare(struct store *s, int64_t after, int limit, struct event_page *out) {
    struct pg_params p;
    pgp_init(&p);
    pgp_int(&p, after);
    pgp_int(&p, limit > 0 ? limit : 0);
    return pg_events_page(s, &st_read_bare, &p, limit, 0, out);
}

static const struct pg_stmt st_head = {
    PGS_EV_HEAD,
    "SELECT (SELECT value FROM event_meta WHERE name = 'head'),"
    " (SELECT value FROM event_meta WHERE name = 'pruned_through')"};

int pg_events_head(struct store *s, int64_t *head, int64_t *pruned_through) {
    *head = *pruned_through = 0;
    PGresult *r;
    int rc = pg_read(s, &st_head, NULL, &r);
    if (rc) return rc;
    *head = pg_int(r, 0, 0);
    *pruned_through = pg_int(r, 0, 1);
    PQclear(r);
    return 0;
}

static const struct pg_stmt st_hooks_list = {
    PGS_HOOKS_LIST,
    "SELECT " PG_WEBHOOK_COLS
    " FROM webhooks"
    " WHERE ($1::text IS NULL OR namespace = $1) AND ($2::text IS NULL OR id = $2) ORDER BY id"};

int pg_webhooks_list(struct store *s, const char *ns, const char *id, struct webhook **out,
                     size_t *n) {
    struct pg_params p;
    pgp_init(&p);
    pgp_text(&p, ns);
    pgp_text(&p, id);
    PGresult *r;
    int rc = pg_read(s, &st_hooks_list, &p, &r);
    if (rc) return rc;
    int rows = PQntuples(r);
    /* Nothing allocated for no rows: a caller may treat none as not found. */
    if (rows > 0) *out = xcalloc((size_t)rows, sizeof **out);
    for (int i = 0; i < rows; i++) {
        pg_read_webhook(r, i, &(*out)[(*n)++]);
    }
    PQclear(r);
    return 0;
}

/* As on SQLite (sq_deliveries_page): the cursor is a range on seq of
 * webhook_deliveries_hook (webhook_id, seq), the status a filter. */
int pg_deliveries_page(struct store *s, const char *webhook_id, const struct delivery_page *page,
                       int limit, struct webhook_delivery **out, size_t *n) {
    static const struct delivery_page newest = {NULL, -1, ""};
    if (!page) page = &newest;
    struct buf sql;
    buf_init(&sql);
    struct pg_params p;
    pgp_init(&p);
    pgp_text(&p, webhook_id);
    int k = 1;
    buf_puts(&sql, "SELECT " PG_DELIVERY_COLS " FROM webhook_deliveries d WHERE d.webhook_id = $1");
    if (page->status) {
        pgp_text(&p, page->status);
        buf_printf(&sql, " AND d.status = $%d", ++k);
    }
    if (page->after_seq >= 0) {
        pgp_int(&p, page->after_seq);
        pgp_text(&p, page->after_event);
        buf_printf(&sql, " AND d.seq <= $%d AND (d.seq < $%d OR d.event < $%d)", k + 1, k + 1,
                   k + 2);
        k += 2;
    }
    pgp_int(&p, limit > 0 ? limit : 0);
    buf_printf(&sql, " ORDER BY d.seq DESC, d.event DESC LIMIT $%d", ++k);
    PGresult *r;
    int rc = pg_read_sql(s, sql.p, &p, &r);
    buf_release(&sql);
    if (rc) return rc;
    /* Nothing allocated for no rows: a caller may treat none as not found. */
    *out = pg_read_rows(r, store_delivery_fields, sizeof **out, n);
    PQclear(r);
    return 0;
}

static const struct pg_stmt st_deliveries_next_at = {
    PGS_DELIVERIES_NEXT_AT,
    "SELECT coalesce(min(next_at), 0) FROM webhook_deliveries WHERE status = 'pending'"};

int pg_deliveries_next_at(struct store *s, int64_t *at) {
    *at = 0;
    PGresult *r;
    int rc = pg_read(s, &st_deliveries_next_at, NULL, &r);
    if (rc) return rc;
    *at = pg_int(r, 0, 0);
    PQclear(r);
    return 0;
}
