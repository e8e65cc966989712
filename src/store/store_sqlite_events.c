/*
 * store_sqlite_events: the SQLite backend's event log, webhooks and
 * deliveries (tables of migration 0002).
 *
 * Writer ops run on the writer connection inside the batch's transaction,
 * with statements prepared on first use and kept in struct sq_events.
 * Appending an event also queues, with one INSERT ... SELECT, a delivery
 * for each webhook that asked for the Livepeer events it maps to, so a
 * delivery is durable exactly when its event is.
 *
 * The sequence is the events table's AUTOINCREMENT rowid: with one writer
 * and serialized commits, a reader that saw seq N has seen every seq < N,
 * which is what makes "everything after N" gap-free. (PostgreSQL numbers
 * with a counter row updated in the transaction instead: store_pg.c.)
 * Reads borrow a reader connection and copy every row out.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/buf.h"
#include "../common/xalloc.h"
#include "store_sqlite_int.h"

struct sq_events {
    sqlite3_stmt *insert, *deliver, *hook_insert, *hook_delete, *hook_delete_deliveries,
        *delivery_update, *hook_count, *hook_free, *hook_busy;
    /* retention, once a batch at the count cap (store.c) */
    sqlite3_stmt *head, *pruned, *probe, *pending_min, *del_events, *del_deliveries, *set_pruned,
        *add_pruned;
    int64_t aged_before, aged_seq; /* the last age bound searched for, and its answer */
};

/* Prepares (once) a writer statement. */
static sqlite3_stmt *sqe_stmt(struct store *s, sqlite3_stmt **slot, const char *sql) {
    if (*slot) return *slot;
    sqlite3 *db = sq_writer_db(s);
    if (sqlite3_prepare_v3(db, sql, -1, SQLITE_PREPARE_PERSISTENT, slot, NULL) != SQLITE_OK) {
        sq_log(db, sql);
        *slot = NULL;
    }
    return *slot;
}

static struct sq_events *sqe(struct store *s) {
    struct sq_events **slot = sq_events_slot(s);
    if (!*slot) *slot = xcalloc(1, sizeof **slot);
    return *slot;
}

void sq_events_close(struct store *s) {
    struct sq_events **slot = sq_events_slot(s);
    struct sq_events *q = *slot;
    if (!q) return;
    sqlite3_stmt *all[] = {q->insert,
                           q->deliver,
                           q->hook_insert,
                           q->hook_delete,
                           q->hook_delete_deliveries,
                           q->delivery_update,
                           q->hook_count,
                           q->hook_free,
                           q->hook_busy,
                           q->head,
                           q->pruned,
                           q->probe,
                           q->pending_min,
                           q->del_events,
                           q->del_deliveries,
                           q->set_pruned,
                           q->add_pruned};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        sqlite3_finalize(all[i]);
    free(q);
    *slot = NULL;
}

int sq_events_append(struct store *s, struct store_event *evs, size_t n, size_t *deliveries) {
    struct sq_events *q = sqe(s);
    sqlite3 *db = sq_writer_db(s);
    sqlite3_stmt *st = sqe_stmt(s, &q->insert,
                                "INSERT INTO events(at,kind,cause,task_id,namespace,queue,type,"
                                "phase,version,task,actor)"
                                " VALUES(?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11)");
    sqlite3_stmt *dl =
        sqe_stmt(s, &q->deliver,
                 "INSERT INTO webhook_deliveries(id,webhook_id,seq,event,status,next_at,"
                 "created_at,updated_at) SELECT lower(hex(randomblob(16))),id,?1,"
                 "substr(?2,2,length(?2)-2),'pending',?3,?3,?3 FROM webhooks"
                 " WHERE (namespace IS NULL OR namespace=?4) AND instr(events,?2)>0");
    if (!st || !dl) return TM_EINTERNAL;
    *deliveries = 0;
    for (size_t k = 0; k < n; k++) {
        struct store_event *ev = &evs[k];
        sqlite3_bind_int64(st, 1, ev->at);
        sqlite3_bind_text(st, 2, ev->kind, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 3, ev->cause, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 4, ev->task_id, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 5, ev->ns, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 6, ev->queue, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 7, ev->type, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 8, task_phase_name(ev->phase), -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 9, ev->version);
        sqlite3_bind_text(st, 10, ev->stored ? ev->stored : ev->task_json, -1, SQLITE_STATIC);
        if (ev->actor[0])
            sqlite3_bind_text(st, 11, ev->actor, -1, SQLITE_STATIC);
        else
            sqlite3_bind_null(st, 11);
        int rc = sq_step_done(db, st);
        if (rc) return rc;
        ev->seq = sqlite3_last_insert_rowid(db);
        for (int i = 0; i < WEBHOOK_EVENT_COUNT; i++) {
            if (!(ev->hooks & (1u << i))) continue;
            char name[40];
            snprintf(name, sizeof name, ",%s,", webhook_event_name(i));
            sqlite3_bind_int64(dl, 1, ev->seq);
            sqlite3_bind_text(dl, 2, name, -1, SQLITE_TRANSIENT);
            sqlite3_bind_int64(dl, 3, ev->at);
            sqlite3_bind_text(dl, 4, ev->ns, -1, SQLITE_STATIC);
            if ((rc = sq_step_done(db, dl))) return rc;
            *deliveries += (size_t)sqlite3_changes(db);
        }
    }
    return 0;
}

/* Runs a kept statement that gives at most one integer (0 when no row). */
static int sqe_scalar(struct store *s, sqlite3_stmt **slot, const char *sql, int64_t a,
                      int64_t *v) {
    sqlite3_stmt *st = sqe_stmt(s, slot, sql);
    if (!st) return TM_EINTERNAL;
    if (sqlite3_bind_parameter_count(st) >= 1) sqlite3_bind_int64(st, 1, a);
    int rc = sqlite3_step(st);
    *v = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
    sqlite3_reset(st);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
        sq_log(sq_writer_db(s), sql);
        return TM_EINTERNAL;
    }
    return 0;
}

/*
 * The highest seq in (lo, hi] whose event is older than before_at (0 when
 * none), by a binary search on seq: the one writer numbers events in the
 * order it appends them, stamped with the time it appends them, so `at`
 * grows with seq and no index on `at` is needed (migration 0012). Where
 * the clock stepped back, `at` does not grow for a while: the bound found
 * is then off by at most the step, so an event may go up to that much
 * early or late. A probe reads the first event at or after a seq, so a gap
 * in the seqs is no matter.
 */
static int sqe_aged_through(struct store *s, int64_t lo, int64_t hi, int64_t before_at,
                            int64_t *out) {
    struct sq_events *q = sqe(s);
    sqlite3_stmt *st =
        sqe_stmt(s, &q->probe, "SELECT seq,at FROM events WHERE seq>=?1 ORDER BY seq LIMIT 1");
    if (!st) return TM_EINTERNAL;
    int64_t l = lo, r = hi + 1; /* seqs <= l are older; seqs >= r are not (or absent) */
    while (r - l > 1) {
        int64_t m = l + (r - l) / 2;
        sqlite3_bind_int64(st, 1, m);
        int rc = sqlite3_step(st);
        int64_t seq = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
        int64_t at = rc == SQLITE_ROW ? sqlite3_column_int64(st, 1) : 0;
        sqlite3_reset(st);
        if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
            sq_log(sq_writer_db(s), "retention: age bound");
            return TM_EINTERNAL;
        }
        if (rc == SQLITE_ROW && seq < r && at < before_at)
            l = seq;
        else
            r = m; /* seqs m..seq-1 are absent, seq is not older (or past r) */
    }
    *out = l > lo ? l : 0;
    return 0;
}

int sq_events_prune_info(struct store *s, int64_t before_at, struct store_prune_info *out) {
    struct sq_events *q = sqe(s);
    memset(out, 0, sizeof *out);
    int rc = sqe_scalar(s, &q->head, "SELECT seq FROM sqlite_sequence WHERE name='events'", 0,
                        &out->head);
    if (!rc)
        rc = sqe_scalar(s, &q->pruned, "SELECT value FROM event_meta WHERE name='pruned_through'",
                        0, &out->pruned_through);
    if (!rc && before_at > 0) {
        /* Searched at most every 100 ms: a batch at the count cap asks each time. */
        if (q->aged_before && before_at - q->aged_before < 100 && before_at >= q->aged_before) {
            out->aged_through = q->aged_seq;
        } else {
            rc = sqe_aged_through(s, out->pruned_through, out->head, before_at, &out->aged_through);
            if (!rc) {
                q->aged_before = before_at;
                q->aged_seq = out->aged_through;
            }
        }
    }
    if (!rc)
        rc = sqe_scalar(s, &q->pending_min,
                        "SELECT min(seq) FROM webhook_deliveries WHERE status='pending'", 0,
                        &out->pending_min);
    return rc;
}

int sq_events_delete(struct store *s, int64_t through, int64_t *deleted) {
    struct sq_events *q = sqe(s);
    int64_t v = 0;
    int rc = sqe_scalar(s, &q->del_events, "DELETE FROM events WHERE seq<=?1", through, &v);
    if (rc) return rc;
    *deleted = sqlite3_changes(sq_writer_db(s));
    rc = sqe_scalar(s, &q->del_deliveries,
                    "DELETE FROM webhook_deliveries WHERE status<>'pending' AND seq<=?1", through,
                    &v);
    if (!rc)
        rc = sqe_scalar(s, &q->set_pruned,
                        "UPDATE event_meta SET value=?1 WHERE name='pruned_through'", through, &v);
    if (!rc)
        rc = sqe_scalar(s, &q->add_pruned,
                        "UPDATE event_meta SET value=value+?1 WHERE name='pruned_total'", *deleted,
                        &v);
    return rc;
}

/* ",a,b," from the event bits. */
static void sqe_events_text(unsigned bits, char *out, size_t n) {
    size_t len = (size_t)snprintf(out, n, ",");
    for (int i = 0; i < WEBHOOK_EVENT_COUNT; i++)
        if (bits & (1u << i))
            len += (size_t)snprintf(out + len, n - len, "%s,", webhook_event_name(i));
}

int sq_webhook_insert(struct store *s, const struct webhook *w) {
    struct sq_events *q = sqe(s);
    sqlite3_stmt *st =
        sqe_stmt(s, &q->hook_insert,
                 "INSERT INTO webhooks(id,namespace,name,url,events,secret,created_at)"
                 " VALUES(?1,?2,?3,?4,?5,?6,?7)");
    if (!st) return TM_EINTERNAL;
    char events[128];
    sqe_events_text(w->events, events, sizeof events);
    sqlite3_bind_text(st, 1, w->id, -1, SQLITE_STATIC);
    sq_bind_text(st, 2, w->ns);
    sq_bind_text(st, 3, w->name);
    sq_bind_text(st, 4, w->url);
    sqlite3_bind_text(st, 5, events, -1, SQLITE_TRANSIENT);
    sq_bind_text(st, 6, w->secret);
    sqlite3_bind_int64(st, 7, w->created_at);
    return sq_step_done(sq_writer_db(s), st);
}

int sq_webhook_count(struct store *s, const char *ns, int64_t *n) {
    struct sq_events *q = sqe(s);
    sqlite3 *db = sq_writer_db(s);
    sqlite3_stmt *st =
        sqe_stmt(s, &q->hook_count, "SELECT count(*) FROM webhooks WHERE namespace IS ?1");
    if (!st) return TM_EINTERNAL;
    sq_bind_text(st, 1, ns);
    int rc = sqlite3_step(st);
    *n = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    if (rc != SQLITE_ROW) {
        sq_log(db, "webhook count");
        return TM_EINTERNAL;
    }
    return 0;
}

int sq_webhook_delete(struct store *s, const char *ns, const char *id) {
    struct sq_events *q = sqe(s);
    sqlite3 *db = sq_writer_db(s);
    sqlite3_stmt *st = sqe_stmt(
        s, &q->hook_delete, "DELETE FROM webhooks WHERE id=?1 AND (?2 IS NULL OR namespace=?2)");
    if (!st) return TM_EINTERNAL;
    sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    sq_bind_text(st, 2, ns);
    int rc = sq_step_done(db, st);
    if (rc) return rc;
    if (sqlite3_changes(db) == 0) return TM_ENOT_FOUND;
    st = sqe_stmt(s, &q->hook_delete_deliveries,
                  "DELETE FROM webhook_deliveries WHERE webhook_id=?1");
    if (!st) return TM_EINTERNAL;
    sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    return sq_step_done(db, st);
}

int sq_delivery_update(struct store *s, const struct webhook_delivery *d) {
    struct sq_events *q = sqe(s);
    sqlite3_stmt *st = sqe_stmt(s, &q->delivery_update,
                                "UPDATE webhook_deliveries SET status=?2,attempts=?3,next_at=?4,"
                                "last_status=?5,last_error=?6,updated_at=?7 WHERE id=?1");
    sqlite3_stmt *fr = sqe_stmt(s, &q->hook_free, "UPDATE webhooks SET busy_until=0 WHERE id=?1");
    if (!st || !fr) return TM_EINTERNAL;
    sqlite3_bind_text(fr, 1, d->webhook_id, -1, SQLITE_STATIC);
    int rc = sq_step_done(sq_writer_db(s), fr);
    if (rc) return rc;
    sq_bind_fields(st, store_delivery_set_fields, SIZE_MAX, d);
    return sq_step_done(sq_writer_db(s), st);
}

/* ---- Reads ---- */

/* The columns of an event "e", and the base to join a stored part with
 * (store_event.base): the task's first event in the log, found through
 * events_task. */
#define SQE_EVENT_COLS_E                                                                       \
    "e.seq,e.at,e.kind,e.cause,e.task_id,e.namespace,e.queue,e.type,e.phase,e.version,e.task," \
    "e.actor,CASE WHEN substr(e.task,1,6)='{\"id\":' THEN NULL ELSE"                           \
    " (SELECT f.task FROM events f WHERE f.task_id=e.task_id ORDER BY f.seq LIMIT 1) END"

/* Reads the SQE_EVENT_COLS_E starting at column `at`. */
static void sqe_read_event(sqlite3_stmt *st, int at, struct store_event *ev) {
    memset(ev, 0, sizeof *ev);
    ev->seq = sqlite3_column_int64(st, at);
    ev->at = sqlite3_column_int64(st, at + 1);
    snprintf(ev->kind, sizeof ev->kind, "%s", (const char *)sqlite3_column_text(st, at + 2));
    snprintf(ev->cause, sizeof ev->cause, "%s", (const char *)sqlite3_column_text(st, at + 3));
    snprintf(ev->task_id, sizeof ev->task_id, "%s", (const char *)sqlite3_column_text(st, at + 4));
    ev->ns = sq_col_dup(st, at + 5);
    ev->queue = sq_col_dup(st, at + 6);
    ev->type = sq_col_dup(st, at + 7);
    const char *phase = (const char *)sqlite3_column_text(st, at + 8);
    if (!phase || task_phase_parse(phase, &ev->phase)) ev->phase = TASK_PENDING;
    ev->version = sqlite3_column_int64(st, at + 9);
    ev->task_json = sq_col_dup(st, at + 10);
    const char *actor = (const char *)sqlite3_column_text(st, at + 11);
    snprintf(ev->actor, sizeof ev->actor, "%s", actor ? actor : "");
    ev->base = sq_col_dup(st, at + 12);
}

static int sqe_head(sqlite3 *db, int64_t *head, int64_t *pruned_through) {
    int rc = sq_scalar(db, "SELECT seq FROM sqlite_sequence WHERE name='events'", 0, head);
    if (!rc)
        rc = sq_scalar(db, "SELECT value FROM event_meta WHERE name='pruned_through'", 0,
                       pruned_through);
    return rc;
}

int sq_events_read(struct store *s, const char *ns, const char *task_id, int64_t after, int limit,
                   size_t max_bytes, struct event_page *out) {
    void *conn;
    sqlite3 *db = sq_reader_borrow(s, &conn);
    if (!db) return TM_EINTERNAL;
    sqlite3_stmt *st = NULL;
    int ret = 0;
    if (sqlite3_exec(db, "BEGIN", NULL, NULL, NULL) != SQLITE_OK) {
        sq_log(db, "begin");
        sq_reader_return(s, conn);
        return TM_EINTERNAL;
    }
    if ((ret = sqe_head(db, &out->head, &out->pruned_through))) goto out;
    if (sqlite3_prepare_v2(db,
                           "SELECT " SQE_EVENT_COLS_E " FROM events e WHERE e.seq>?1"
                           " AND (?2 IS NULL OR e.namespace=?2) AND (?3 IS NULL OR e.task_id=?3)"
                           " ORDER BY e.seq LIMIT ?4",
                           -1, &st, NULL) != SQLITE_OK) {
        sq_log(db, "events read");
        ret = TM_EINTERNAL;
        goto out;
    }
    sqlite3_bind_int64(st, 1, after);
    sq_bind_text(st, 2, ns);
    sq_bind_text(st, 3, task_id);
    sqlite3_bind_int(st, 4, limit);
    out->events = xcalloc((size_t)(limit > 0 ? limit : 1), sizeof *out->events);
    int rc;
    size_t bytes = 0;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW && out->n < (size_t)limit) {
        struct store_event *ev = &out->events[out->n++];
        sqe_read_event(st, 0, ev);
        bytes += (ev->task_json ? strlen(ev->task_json) : 0) + (ev->base ? strlen(ev->base) : 0);
        if (max_bytes && bytes >= max_bytes) {
            out->more = true;
            rc = SQLITE_DONE;
            break;
        }
    }
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
        sq_log(db, "events read");
        ret = TM_EINTERNAL;
    }
out:
    sqlite3_finalize(st);
    sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
    sq_reader_return(s, conn);
    return ret;
}

int sq_events_head(struct store *s, int64_t *head, int64_t *pruned_through) {
    void *conn;
    sqlite3 *db = sq_reader_borrow(s, &conn);
    if (!db) return TM_EINTERNAL;
    int rc = sqlite3_exec(db, "BEGIN", NULL, NULL, NULL) == SQLITE_OK ? 0 : TM_EINTERNAL;
    if (!rc) rc = sqe_head(db, head, pruned_through);
    sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
    sq_reader_return(s, conn);
    return rc;
}

int sq_webhooks_list(struct store *s, const char *ns, const char *id, struct webhook **out,
                     size_t *n) {
    void *conn;
    sqlite3 *db = sq_reader_borrow(s, &conn);
    if (!db) return TM_EINTERNAL;
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(db,
                           "SELECT id,namespace,name,url,events,secret,created_at FROM webhooks"
                           " WHERE (?1 IS NULL OR namespace=?1) AND (?2 IS NULL OR id=?2)"
                           " ORDER BY id",
                           -1, &st, NULL) != SQLITE_OK) {
        sq_log(db, "webhooks");
        sq_reader_return(s, conn);
        return TM_EINTERNAL;
    }
    sq_bind_text(st, 1, ns);
    sq_bind_text(st, 2, id);
    size_t cap = 0;
    int rc, ret = 0;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (*n == cap) {
            cap = cap ? cap * 2 : 8;
            *out = xrealloc(*out, cap * sizeof **out);
        }
        struct webhook *w = &(*out)[(*n)++];
        memset(w, 0, sizeof *w);
        snprintf(w->id, sizeof w->id, "%s", (const char *)sqlite3_column_text(st, 0));
        w->ns = sq_col_dup(st, 1);
        w->name = sq_col_dup(st, 2);
        w->url = sq_col_dup(st, 3);
        const char *ev = (const char *)sqlite3_column_text(st, 4);
        for (int i = 0; i < WEBHOOK_EVENT_COUNT; i++) {
            char key[40];
            snprintf(key, sizeof key, ",%s,", webhook_event_name(i));
            if (ev && strstr(ev, key)) w->events |= 1u << i;
        }
        w->secret = sq_col_dup(st, 5);
        w->created_at = sqlite3_column_int64(st, 6);
    }
    if (rc != SQLITE_DONE) {
        sq_log(db, "webhooks");
        ret = TM_EINTERNAL;
    }
    sqlite3_finalize(st);
    sq_reader_return(s, conn);
    return ret;
}

#define SQE_DELIVERY_COLS                                            \
    "d.id,d.webhook_id,d.seq,d.event,d.status,d.attempts,d.next_at," \
    "d.last_status,d.last_error,d.created_at,d.updated_at"

/* Reads the SQE_DELIVERY_COLS at columns 0..10. */
static void sqe_read_delivery(sqlite3_stmt *st, struct webhook_delivery *d) {
    memset(d, 0, sizeof *d);
    sq_read_fields(st, 0, store_delivery_fields, d);
}

int sq_delivery_claim(struct store *s, int64_t now, const char *const *skip, size_t nskip,
                      int64_t busy_until, struct webhook_delivery **out) {
    sqlite3 *db = sq_writer_db(s);
    struct buf sql;
    buf_init(&sql);
    buf_puts(&sql, "SELECT " SQE_DELIVERY_COLS ",w.url,w.secret," SQE_EVENT_COLS_E
                   " FROM webhook_deliveries d JOIN webhooks w ON w.id=d.webhook_id"
                   " LEFT JOIN events e ON e.seq=d.seq"
                   " WHERE d.status='pending' AND d.next_at<=?1 AND w.busy_until<=?1");
    if (nskip) {
        buf_puts(&sql, " AND d.webhook_id NOT IN (");
        for (size_t i = 0; i < nskip; i++)
            buf_printf(&sql, "%s?%zu", i ? "," : "", i + 2);
        buf_putc(&sql, ')');
    }
    buf_puts(&sql,
             " ORDER BY d.next_at,d.seq,"
             "CASE d.event WHEN 'task.spawned' THEN 0 WHEN 'task.updated' THEN 1 ELSE 2 END"
             " LIMIT 1");
    sqlite3_stmt *st = NULL;
    int ret = 0;
    if (sqlite3_prepare_v2(db, sql.p, -1, &st, NULL) != SQLITE_OK) {
        sq_log(db, "claim delivery");
        buf_release(&sql);
        return TM_EINTERNAL;
    }
    buf_release(&sql);
    sqlite3_bind_int64(st, 1, now);
    for (size_t i = 0; i < nskip; i++)
        sqlite3_bind_text(st, (int)i + 2, skip[i], -1, SQLITE_STATIC);
    ret = sq_step_one(db, st, "claim delivery");
    if (!ret) {
        struct webhook_delivery *d = xcalloc(1, sizeof *d);
        sqe_read_delivery(st, d);
        d->url = sq_col_dup(st, 11);
        d->secret = sq_col_dup(st, 12);
        if (sqlite3_column_type(st, 13) != SQLITE_NULL) sqe_read_event(st, 13, &d->ev);
        *out = d;
    }
    sqlite3_finalize(st);
    if (ret) return ret;
    struct sq_events *q = sqe(s);
    sqlite3_stmt *busy =
        sqe_stmt(s, &q->hook_busy, "UPDATE webhooks SET busy_until=?2 WHERE id=?1");
    if (!busy) ret = TM_EINTERNAL;
    if (!ret) {
        sqlite3_bind_text(busy, 1, (*out)->webhook_id, -1, SQLITE_STATIC);
        sqlite3_bind_int64(busy, 2, busy_until);
        ret = sq_step_done(db, busy);
    }
    if (ret) {
        deliveries_free(*out, 1);
        *out = NULL;
    }
    return ret;
}

int sq_deliveries_list(struct store *s, const char *webhook_id, int limit,
                       struct webhook_delivery **out, size_t *n) {
    void *conn;
    sqlite3 *db = sq_reader_borrow(s, &conn);
    if (!db) return TM_EINTERNAL;
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(db,
                           "SELECT " SQE_DELIVERY_COLS " FROM webhook_deliveries d"
                           " WHERE d.webhook_id=?1 ORDER BY d.seq DESC,d.event DESC LIMIT ?2",
                           -1, &st, NULL) != SQLITE_OK) {
        sq_log(db, "deliveries");
        sq_reader_return(s, conn);
        return TM_EINTERNAL;
    }
    sqlite3_bind_text(st, 1, webhook_id, -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 2, limit > 0 ? limit : 0);
    int ret;
    *out = sq_read_rows(st, store_delivery_fields, sizeof **out, n, &ret);
    if (ret) sq_log(db, "deliveries");
    sqlite3_finalize(st);
    sq_reader_return(s, conn);
    return ret;
}

int sq_deliveries_next_at(struct store *s, int64_t *at) {
    void *conn;
    sqlite3 *db = sq_reader_borrow(s, &conn);
    if (!db) return TM_EINTERNAL;
    int rc =
        sq_scalar(db, "SELECT min(next_at) FROM webhook_deliveries WHERE status='pending'", 0, at);
    sq_reader_return(s, conn);
    return rc;
}
