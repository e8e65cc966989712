/*
 * store_sqlite_events: the SQLite backend's event log, webhooks and
 * deliveries (tables of migrations 0002 and 0013).
 *
 * Writer ops run on the writer connection inside the batch's transaction,
 * with statements prepared on first use and kept in struct sq_events.
 * Appending an event also queues, with one INSERT ... SELECT, a delivery
 * for each webhook that asked for the Livepeer events it maps to, so a
 * delivery is durable exactly when its event is.
 *
 * The log is a run of segments (docs/storage.md, "The event log in
 * segments"): tables events_<slot>, each holding a range of seqs, listed
 * in event_segments. The writer appends to the newest, the open one, and
 * starts another when it holds seg_max events or, with an age limit, when
 * its first event is a sixteenth of that age old. Retention empties the
 * oldest segment whole: a DELETE without WHERE, which SQLite turns into
 * freeing the table's and its index's pages, with no row visited; the
 * emptied table is filled again later, so the schema stops changing once
 * the log has its size. A segment far larger than seg_max (the table of
 * before migration 0013, or one from when the cap was higher) goes by
 * rows, STORE_PRUNE_STEP at a time, as the whole log used to.
 *
 * The writer numbers events itself, from the head it keeps: with one
 * writer and serialized commits, a reader that saw seq N has seen every
 * seq < N, which is what makes "everything after N" gap-free. The head is
 * not stored on its own (since migration 0014): it is the open segment's
 * last seq, or one before its first when it holds none (sqe_head).
 * (PostgreSQL numbers with a counter row updated in the transaction:
 * store_pg.c.) What the writer knows of the segments is read again after
 * a rollback. Reads borrow a reader connection, list the
 * segments in their snapshot and copy every row out.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/buf.h"
#include "../common/task_json.h"
#include "../common/xalloc.h"
#include "store_sqlite_int.h"

/* Count rolls stop at this many live segments (a burst at a tiny cap);
 * the age rolls go on, and make at most about 17 over the age limit. */
#define SQE_SEGMENTS_MAX 128
/* The largest segment: emptying one of 16,384 events of about 900 bytes
 * takes a few milliseconds, its pages mostly out of SQLite's cache. */
#define SQE_SEGMENT_MAX_EVENTS 16384
/* A segment this many times seg_max goes by rows. */
#define SQE_OVERSIZED 4

struct sqe_seg {
    int64_t slot, first_seq;
    int64_t last_seq, last_at; /* 0, 0: the open segment */
};

struct sq_events {
    sqlite3_stmt *deliver, *hook_insert, *hook_delete, *hook_delete_deliveries, *delivery_update,
        *hook_count, *hook_free, *hook_busy;
    /* the log's shape and retention */
    sqlite3_stmt *seg_close, *seg_reuse, *seg_add, *seg_free, *seg_first, *pending_min,
        *del_deliveries, *set_pruned, *add_pruned, *seg_autoinc;
    sqlite3_stmt *insert, *probe, *del_rows; /* on the segment of *_slot */
    int64_t insert_slot, probe_slot, del_rows_slot;
    int64_t aged_before, aged_seq; /* the last rows-mode age bound searched for, and its answer */
    int64_t seg_max, seg_span_ms;  /* when the open segment is full (seg_span_ms 0: no age) */
    /* Read at the first use after open or a rollback (loaded). */
    bool loaded;
    struct sqe_seg *segs; /* live, oldest first; the last is open */
    size_t nsegs, capsegs;
    int64_t *free_slots; /* emptied tables, to fill again */
    size_t nfree, capfree;
    int64_t max_slot, head, pruned_through;
    int64_t open_first_at, open_last_at; /* the open segment's first and last event times */
    /* Whether any webhook is registered: read again after a webhook is
     * added or deleted, and after a rollback (-1: not known). With none, an
     * append looks for no subscriber (one statement an event spared). */
    int hooks;
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

/* Prepares a writer statement on the table of segment `slot`, named
 * between `head` and `tail`. Kept in *st while *at is that slot. */
static sqlite3_stmt *sqe_seg_stmt(struct store *s, sqlite3_stmt **st, int64_t *at, int64_t slot,
                                  const char *head, const char *tail) {
    if (*st && *at == slot) return *st;
    sqlite3_finalize(*st);
    *st = NULL;
    char sql[512];
    snprintf(sql, sizeof sql, "%sevents_%lld%s", head, (long long)slot, tail);
    if (sqe_stmt(s, st, sql)) *at = slot;
    return *st;
}

static struct sq_events *sqe(struct store *s) {
    struct sq_events **slot = sq_events_slot(s);
    if (!*slot) {
        struct sq_events *q = xcalloc(1, sizeof *q);
        int64_t max_count, max_age;
        sq_events_limits(s, &max_count, &max_age);
        q->seg_max = SQE_SEGMENT_MAX_EVENTS;
        if (max_count >= 0 && max_count / 64 < q->seg_max)
            q->seg_max = max_count / 64 > 1 ? max_count / 64 : 1;
        q->seg_span_ms = max_age >= 0 ? (max_age / 16 > 1 ? max_age / 16 : 1) : 0;
        q->hooks = -1;
        *slot = q;
    }
    return *slot;
}

void sq_events_close(struct store *s) {
    struct sq_events **slot = sq_events_slot(s);
    struct sq_events *q = *slot;
    if (!q) return;
    sqlite3_stmt *all[] = {
        q->deliver,         q->hook_insert, q->hook_delete,    q->hook_delete_deliveries,
        q->delivery_update, q->hook_count,  q->hook_free,      q->hook_busy,
        q->seg_close,       q->seg_reuse,   q->seg_add,        q->seg_free,
        q->seg_first,       q->pending_min, q->del_deliveries, q->set_pruned,
        q->add_pruned,      q->insert,      q->probe,          q->del_rows,
        q->seg_autoinc};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        sqlite3_finalize(all[i]);
    free(q->segs);
    free(q->free_slots);
    free(q);
    *slot = NULL;
}

/* A rollback may have undone a segment's CREATE TABLE: a statement kept
 * on that table could later pass for one prepared on a table made again
 * under the same name and schema cookie, with another root page. So the
 * statements on segments go too. */
void sq_events_rolled_back(struct store *s) {
    struct sq_events *q = *sq_events_slot(s);
    if (!q) return;
    q->loaded = false;
    q->hooks = -1;
    sqlite3_stmt **kept[] = {&q->insert, &q->probe, &q->del_rows};
    for (size_t i = 0; i < sizeof kept / sizeof kept[0]; i++) {
        sqlite3_finalize(*kept[i]);
        *kept[i] = NULL;
    }
}

/* Runs a kept statement with up to three integer parameters that gives at
 * most one integer (0 when no row). */
static int sqe_run(struct store *s, sqlite3_stmt *st, int64_t a, int64_t b, int64_t c, int64_t *v) {
    if (!st) return TM_EINTERNAL;
    int np = sqlite3_bind_parameter_count(st);
    if (np >= 1) sqlite3_bind_int64(st, 1, a);
    if (np >= 2) sqlite3_bind_int64(st, 2, b);
    if (np >= 3) sqlite3_bind_int64(st, 3, c);
    int rc = sqlite3_step(st);
    if (v) *v = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
    sqlite3_reset(st);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
        sq_log(sq_writer_db(s), sqlite3_sql(st));
        return TM_EINTERNAL;
    }
    return 0;
}

static int sqe_scalar(struct store *s, sqlite3_stmt **slot, const char *sql, int64_t a,
                      int64_t *v) {
    return sqe_run(s, sqe_stmt(s, slot, sql), a, 0, 0, v);
}

/* The first event at or after `seq` in segment `slot`: its seq and time
 * (0, 0 when none). */
static int sqe_probe(struct store *s, int64_t slot, int64_t seq, int64_t *found, int64_t *at) {
    struct sq_events *q = sqe(s);
    sqlite3_stmt *st = sqe_seg_stmt(s, &q->probe, &q->probe_slot, slot, "SELECT seq,at FROM ",
                                    " WHERE seq>=?1 ORDER BY seq LIMIT 1");
    if (!st) return TM_EINTERNAL;
    sqlite3_bind_int64(st, 1, seq);
    int rc = sqlite3_step(st);
    *found = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
    *at = rc == SQLITE_ROW ? sqlite3_column_int64(st, 1) : 0;
    sqlite3_reset(st);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
        sq_log(sq_writer_db(s), "event log: probe");
        return TM_EINTERNAL;
    }
    return 0;
}

static void sqe_push_seg(struct sq_events *q, struct sqe_seg g) {
    if (q->nsegs == q->capsegs) {
        q->capsegs = q->capsegs ? 2 * q->capsegs : 16;
        q->segs = xrealloc(q->segs, q->capsegs * sizeof *q->segs);
    }
    q->segs[q->nsegs++] = g;
}

static void sqe_push_free(struct sq_events *q, int64_t slot) {
    if (q->nfree == q->capfree) {
        q->capfree = q->capfree ? 2 * q->capfree : 16;
        q->free_slots = xrealloc(q->free_slots, q->capfree * sizeof *q->free_slots);
    }
    q->free_slots[q->nfree++] = slot;
}

/*
 * The head, the last seq handed out, in the open transaction of db. Events
 * are appended to the open segment in seq order, and only ever deleted
 * from the bottom of a segment (retention) or, the open one never, whole;
 * the open segment starts at the head + 1 when a roll opens it, and
 * retention moves its first_seq past what it deletes from it. So the
 * head is its last seq, or its first_seq - 1 when it holds none: written
 * in the same transactions as the events, without a row of its own that
 * every batch would rewrite (a page of the WAL a batch).
 */
static int sqe_head(sqlite3 *db, int64_t *head) {
    sqlite3_stmt *st;
    if (sq_prepare(db,
                   "SELECT slot, first_seq FROM event_segments"
                   " WHERE first_seq IS NOT NULL AND last_seq IS NULL",
                   &st))
        return TM_EINTERNAL;
    int rc = sqlite3_step(st);
    int64_t slot = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
    int64_t first = rc == SQLITE_ROW ? sqlite3_column_int64(st, 1) : 0;
    sqlite3_finalize(st);
    if (rc != SQLITE_ROW) {
        if (rc == SQLITE_DONE)
            fprintf(stderr, "taskmill: sqlite: event log: no open segment in event_segments\n");
        else
            sq_log(db, "event log: the open segment");
        return TM_EINTERNAL;
    }
    char sql[64];
    snprintf(sql, sizeof sql, "SELECT max(seq) FROM events_%lld", (long long)slot);
    int64_t last = 0; /* 0 for none: a seq is at least 1 */
    if ((rc = sq_scalar(db, sql, 0, &last))) return rc;
    *head = last ? last : first - 1;
    return 0;
}

/* The head and the pruned mark, in the open transaction of db. */
static int sqe_marks(sqlite3 *db, int64_t *head, int64_t *pruned_through) {
    int rc = sqe_head(db, head);
    if (!rc)
        rc = sq_scalar(db, "SELECT value FROM event_meta WHERE name='pruned_through'", 0,
                       pruned_through);
    return rc;
}

/* Reads the log's shape into q (in the writer's transaction). */
static int sqe_plain(struct store *s, int64_t slot);

static int sqe_load(struct store *s) {
    struct sq_events *q = sqe(s);
    if (q->loaded) return 0;
    sqlite3 *db = sq_writer_db(s);
    q->nsegs = q->nfree = 0;
    q->max_slot = 0;
    sqlite3_stmt *st;
    if (sq_prepare(db,
                   "SELECT slot,first_seq,coalesce(last_seq,0),coalesce(last_at,0)"
                   " FROM event_segments ORDER BY first_seq IS NULL, first_seq",
                   &st))
        return TM_EINTERNAL;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        int64_t slot = sqlite3_column_int64(st, 0);
        if (slot > q->max_slot) q->max_slot = slot;
        if (sqlite3_column_type(st, 1) == SQLITE_NULL) {
            sqe_push_free(q, slot);
            continue;
        }
        struct sqe_seg g = {slot, sqlite3_column_int64(st, 1), sqlite3_column_int64(st, 2),
                            sqlite3_column_int64(st, 3)};
        sqe_push_seg(q, g);
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE || !q->nsegs || q->segs[q->nsegs - 1].last_seq) {
        if (rc != SQLITE_DONE)
            sq_log(db, "event log: segments");
        else
            fprintf(stderr, "taskmill: sqlite: event log: no open segment in event_segments\n");
        return TM_EINTERNAL;
    }
    rc = sqe_marks(db, &q->head, &q->pruned_through);
    const struct sqe_seg *open = &q->segs[q->nsegs - 1];
    q->open_first_at = q->open_last_at = 0;
    int64_t found;
    if (!rc && q->head >= open->first_seq) {
        rc = sqe_probe(s, open->slot, open->first_seq, &found, &q->open_first_at);
        if (!rc) rc = sqe_probe(s, open->slot, q->head, &found, &q->open_last_at);
    }
    /* A new store's first segment, still empty: see sqe_plain. */
    if (!rc && q->head < open->first_seq) rc = sqe_plain(s, open->slot);
    if (!rc) q->loaded = true;
    return rc;
}

/* Creates segment `slot`'s table and index; with `renew`, drops the table
 * there first (an empty one). */
static int sqe_create_segment(sqlite3 *db, int64_t slot, bool renew) {
    char drop[64] = "", sql[700];
    if (renew) snprintf(drop, sizeof drop, "DROP TABLE events_%lld;", (long long)slot);
    snprintf(sql, sizeof sql,
             "%sCREATE TABLE events_%lld (seq INTEGER PRIMARY KEY, at INTEGER NOT NULL,"
             " kind TEXT NOT NULL, cause TEXT NOT NULL, task_id TEXT NOT NULL,"
             " namespace TEXT NOT NULL, queue TEXT NOT NULL, type TEXT NOT NULL,"
             " phase TEXT NOT NULL, version INTEGER NOT NULL, task TEXT NOT NULL, actor TEXT);"
             "CREATE INDEX events_%lld_task ON events_%lld (task_id, seq);",
             drop, (long long)slot, (long long)slot, (long long)slot);
    if (sqlite3_exec(db, sql, NULL, NULL, NULL) != SQLITE_OK) {
        sq_log(db, renew ? "event log: renew a segment" : "event log: new segment");
        return TM_EINTERNAL;
    }
    return 0;
}

/*
 * Segment 1 is the events table of migration 0002, whose seq is
 * AUTOINCREMENT: each batch appended to it also rewrote its row of
 * sqlite_sequence, a page of the WAL a batch. The log numbers its events
 * itself (sqe_head), so once that table is empty (a new store, or the
 * segment emptied to be used again) it is made again as the other
 * segments are.
 */
static int sqe_plain(struct store *s, int64_t slot) {
    struct sq_events *q = sqe(s);
    sqlite3 *db = sq_writer_db(s);
    char name[40], sql[160];
    snprintf(name, sizeof name, "events_%lld", (long long)slot);
    sqlite3_stmt *st = sqe_stmt(s, &q->seg_autoinc,
                                "SELECT instr(upper(sql),'AUTOINCREMENT')>0 FROM sqlite_schema"
                                " WHERE type='table' AND name=?1");
    if (!st) return TM_EINTERNAL;
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    bool autoinc = rc == SQLITE_ROW && sqlite3_column_int(st, 0);
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
        sq_log(db, "event log: a segment's table");
        return TM_EINTERNAL;
    }
    if (!autoinc) return 0;
    snprintf(sql, sizeof sql, "SELECT EXISTS(SELECT 1 FROM %s)", name);
    int64_t rows;
    if ((rc = sq_scalar(db, sql, 0, &rows))) return rc;
    if (rows) return 0;
    /* The kept statements on this slot go with its table. */
    sqlite3_stmt **kept[] = {&q->insert, &q->probe, &q->del_rows};
    int64_t *at[] = {&q->insert_slot, &q->probe_slot, &q->del_rows_slot};
    for (size_t i = 0; i < sizeof kept / sizeof kept[0]; i++)
        if (*kept[i] && *at[i] == slot) {
            sqlite3_finalize(*kept[i]);
            *kept[i] = NULL;
        }
    return sqe_create_segment(db, slot, true);
}

/* Closes the open segment and opens the next, in a free table or a new one. */
static int sqe_roll(struct store *s) {
    struct sq_events *q = sqe(s);
    sqlite3 *db = sq_writer_db(s);
    struct sqe_seg *open = &q->segs[q->nsegs - 1];
    int rc = sqe_run(s,
                     sqe_stmt(s, &q->seg_close,
                              "UPDATE event_segments SET last_seq=?2,last_at=?3 WHERE slot=?1"),
                     open->slot, q->head, q->open_last_at, NULL);
    if (rc) return rc;
    open->last_seq = q->head;
    open->last_at = q->open_last_at;
    int64_t slot;
    if (q->nfree) {
        slot = q->free_slots[q->nfree - 1];
        rc = sqe_run(s,
                     sqe_stmt(s, &q->seg_reuse,
                              "UPDATE event_segments SET first_seq=?2,last_seq=NULL,last_at=NULL"
                              " WHERE slot=?1"),
                     slot, q->head + 1, 0, NULL);
        if (rc) return rc;
        q->nfree--;
        if ((rc = sqe_plain(s, slot))) return rc;
    } else {
        slot = q->max_slot + 1;
        if ((rc = sqe_create_segment(db, slot, false))) return rc;
        rc = sqe_run(
            s, sqe_stmt(s, &q->seg_add, "INSERT INTO event_segments(slot,first_seq) VALUES(?1,?2)"),
            slot, q->head + 1, 0, NULL);
        if (rc) return rc;
        q->max_slot = slot;
    }
    struct sqe_seg g = {slot, q->head + 1, 0, 0};
    sqe_push_seg(q, g);
    q->open_first_at = q->open_last_at = 0;
    return 0;
}

/* Whether the open segment is full before an event at `at` goes in. */
static bool sqe_full(const struct sq_events *q, int64_t at) {
    const struct sqe_seg *open = &q->segs[q->nsegs - 1];
    int64_t n = q->head - open->first_seq + 1;
    if (n <= 0) return false;
    if (n >= q->seg_max && q->nsegs < SQE_SEGMENTS_MAX) return true;
    return q->seg_span_ms > 0 && at - q->open_first_at >= q->seg_span_ms;
}

int sq_events_append(struct store *s, struct store_event *evs, size_t n, size_t *deliveries) {
    struct sq_events *q = sqe(s);
    sqlite3 *db = sq_writer_db(s);
    sqlite3_stmt *dl =
        sqe_stmt(s, &q->deliver,
                 "INSERT INTO webhook_deliveries(id,webhook_id,seq,event,status,next_at,"
                 "created_at,updated_at) SELECT lower(hex(randomblob(16))),id,?1,"
                 "substr(?2,2,length(?2)-2),'pending',?3,?3,?3 FROM webhooks"
                 " WHERE (namespace IS NULL OR namespace=?4) AND instr(events,?2)>0");
    if (!dl) return TM_EINTERNAL;
    int rc = sqe_load(s);
    if (rc) return rc;
    if (q->hooks < 0) {
        int64_t any;
        if ((rc = sq_scalar(db, "SELECT EXISTS(SELECT 1 FROM webhooks)", 0, &any))) return rc;
        q->hooks = any != 0;
    }
    *deliveries = 0;
    for (size_t k = 0; k < n; k++) {
        struct store_event *ev = &evs[k];
        if (sqe_full(q, ev->at) && (rc = sqe_roll(s))) return rc;
        const struct sqe_seg *open = &q->segs[q->nsegs - 1];
        sqlite3_stmt *st = sqe_seg_stmt(s, &q->insert, &q->insert_slot, open->slot, "INSERT INTO ",
                                        "(seq,at,kind,cause,task_id,"
                                        "namespace,queue,type,phase,version,task,actor)"
                                        " VALUES(?12,?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11)");
        if (!st) return TM_EINTERNAL;
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
        sqlite3_bind_int64(st, 12, q->head + 1);
        if ((rc = sq_step_bound(db, st))) return rc;
        ev->seq = ++q->head;
        if (q->head == open->first_seq) q->open_first_at = ev->at;
        q->open_last_at = ev->at;
        for (int i = 0; q->hooks && i < WEBHOOK_EVENT_COUNT; i++) {
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

/* Whether segment g goes by rows rather than whole. */
static bool sqe_oversized(const struct sq_events *q, const struct sqe_seg *g) {
    int64_t last = g->last_seq ? g->last_seq : q->head;
    return last - g->first_seq + 1 > SQE_OVERSIZED * q->seg_max;
}

/*
 * The highest seq in (lo, hi] of segment `slot` whose event is older than
 * before_at (0 when none), by a binary search on seq: the one writer
 * numbers events in the order it appends them, stamped with the time it
 * appends them, so `at` grows with seq and no index on `at` is needed
 * (migration 0012). Where the clock stepped back, `at` does not grow for a
 * while: the bound found is then off by at most the step, so an event may
 * go up to that much early or late. A probe reads the first event at or
 * after a seq, so a gap in the seqs is no matter.
 */
static int sqe_aged_through(struct store *s, int64_t slot, int64_t lo, int64_t hi,
                            int64_t before_at, int64_t *out) {
    int64_t l = lo, r = hi + 1; /* seqs <= l are older; seqs >= r are not (or absent) */
    while (r - l > 1) {
        int64_t m = l + (r - l) / 2, seq, at;
        int rc = sqe_probe(s, slot, m, &seq, &at);
        if (rc) return rc;
        if (seq && seq < r && at < before_at)
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
    int rc = sqe_load(s);
    if (rc) return rc;
    out->head = q->head;
    out->pruned_through = q->pruned_through;
    const struct sqe_seg *old = &q->segs[0];
    bool rows = sqe_oversized(q, old);
    out->whole = !rows;
    out->whole_through = rows ? 0 : old->last_seq;
    if (before_at > 0) {
        /* Whole segments whose last event is older; within an oversized
         * oldest one, a search (at most every 100 ms: a batch at the count
         * cap asks each time). */
        size_t i = 0;
        for (; i < q->nsegs && q->segs[i].last_seq && q->segs[i].last_at < before_at; i++)
            out->aged_through = q->segs[i].last_seq;
        if (i == 0 && rows) {
            int64_t hi = old->last_seq ? old->last_seq : q->head;
            if (q->aged_before && before_at - q->aged_before < 100 && before_at >= q->aged_before) {
                out->aged_through = q->aged_seq;
            } else {
                rc = sqe_aged_through(s, old->slot, q->pruned_through, hi, before_at,
                                      &out->aged_through);
                if (rc) return rc;
                q->aged_before = before_at;
                q->aged_seq = out->aged_through;
            }
        }
    }
    return sqe_scalar(s, &q->pending_min,
                      "SELECT min(seq) FROM webhook_deliveries WHERE status='pending'", 0,
                      &out->pending_min);
}

int sq_events_delete(struct store *s, int64_t *through, int64_t *deleted) {
    struct sq_events *q = sqe(s);
    sqlite3 *db = sq_writer_db(s);
    *deleted = 0;
    int rc = sqe_load(s);
    if (rc) return rc;
    int64_t done = q->pruned_through;
    /* Whole segments: emptied without a row visited, the table kept. */
    while (q->nsegs > 1 && q->segs[0].last_seq <= *through) {
        struct sqe_seg g = q->segs[0];
        char sql[64];
        snprintf(sql, sizeof sql, "DELETE FROM events_%lld", (long long)g.slot);
        if (sqlite3_exec(db, sql, NULL, NULL, NULL) != SQLITE_OK) {
            sq_log(db, "event log: empty a segment");
            return TM_EINTERNAL;
        }
        rc = sqe_run(s,
                     sqe_stmt(s, &q->seg_free,
                              "UPDATE event_segments SET first_seq=NULL,last_seq=NULL,"
                              "last_at=NULL WHERE slot=?1"),
                     g.slot, 0, 0, NULL);
        if (rc) return rc;
        *deleted += g.last_seq - g.first_seq + 1;
        done = g.last_seq;
        memmove(q->segs, q->segs + 1, --q->nsegs * sizeof *q->segs);
        sqe_push_free(q, g.slot);
    }
    /* Rows, from an oversized oldest segment. */
    struct sqe_seg *old = &q->segs[0];
    if (*through > done && sqe_oversized(q, old) && *through >= old->first_seq) {
        int64_t upto = old->last_seq && old->last_seq < *through ? old->last_seq : *through;
        rc = sqe_run(s,
                     sqe_seg_stmt(s, &q->del_rows, &q->del_rows_slot, old->slot, "DELETE FROM ",
                                  " WHERE seq<=?1"),
                     upto, 0, 0, NULL);
        if (rc) return rc;
        *deleted += sqlite3_changes(db);
        rc = sqe_run(
            s, sqe_stmt(s, &q->seg_first, "UPDATE event_segments SET first_seq=?2 WHERE slot=?1"),
            old->slot, upto + 1, 0, NULL);
        if (rc) return rc;
        old->first_seq = upto + 1;
        done = upto;
    }
    *through = done;
    if (done == q->pruned_through) return 0;
    rc = sqe_scalar(s, &q->del_deliveries,
                    "DELETE FROM webhook_deliveries WHERE status<>'pending' AND seq<=?1", done,
                    NULL);
    if (!rc)
        rc = sqe_scalar(s, &q->set_pruned,
                        "UPDATE event_meta SET value=?1 WHERE name='pruned_through'", done, NULL);
    if (!rc)
        rc = sqe_scalar(s, &q->add_pruned,
                        "UPDATE event_meta SET value=value+?1 WHERE name='pruned_total'", *deleted,
                        NULL);
    if (!rc) q->pruned_through = done;
    return rc;
}

/* ",a,b," from the event bits. */
static void sqe_events_text(unsigned bits, char *out, size_t n) {
    size_t len = (size_t)snprintf(out, n, ",");
    for (int i = 0; i < WEBHOOK_EVENT_COUNT; i++)
        if (bits & (1u << i))
            len += (size_t)snprintf(out + len, n - len, "%s,", webhook_event_name(i));
}

#define SQE_WEBHOOK_COLS "id,namespace,name,url,events,secret,created_at"

/* Reads the SQE_WEBHOOK_COLS at columns 0..6 into w (zeroed or released). */
static void sqe_read_webhook(sqlite3_stmt *st, struct webhook *w) {
    snprintf(w->id, sizeof w->id, "%s", (const char *)sqlite3_column_text(st, 0));
    w->ns = sq_col_dup(st, 1);
    w->name = sq_col_dup(st, 2);
    w->url = sq_col_dup(st, 3);
    const char *ev = (const char *)sqlite3_column_text(st, 4);
    w->events = 0;
    for (int i = 0; i < WEBHOOK_EVENT_COUNT; i++) {
        char key[40];
        snprintf(key, sizeof key, ",%s,", webhook_event_name(i));
        if (ev && strstr(ev, key)) w->events |= 1u << i;
    }
    w->secret = sq_col_dup(st, 5);
    w->created_at = sqlite3_column_int64(st, 6);
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
    q->hooks = -1;
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
    q->hooks = -1;
    int rc = sq_step_done(db, st);
    if (rc) return rc;
    if (sqlite3_changes(db) == 0) return TM_ENOT_FOUND;
    st = sqe_stmt(s, &q->hook_delete_deliveries,
                  "DELETE FROM webhook_deliveries WHERE webhook_id=?1");
    if (!st) return TM_EINTERNAL;
    sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    return sq_step_done(db, st);
}

/* store_events.c tells what it does. Rare (an operator's PATCH): its
 * statements are prepared for the call, not kept. busy_until is left
 * alone, so an attempt in flight records its outcome as usual, and the
 * next claim reads the new url and secret. */
int sq_webhook_update(struct store *s, const char *ns, const char *id, struct webhook *w,
                      int64_t now) {
    struct sq_events *q = sqe(s);
    sqlite3 *db = sq_writer_db(s);
    char events[128];
    sqe_events_text(w->events, events, sizeof events);
    sqlite3_stmt *st = NULL;
    int rc = sq_prepare(db,
                        "UPDATE webhooks SET url=CASE WHEN ?3&1 THEN ?4 ELSE url END,"
                        "events=CASE WHEN ?3&2 THEN ?5 ELSE events END,"
                        "secret=CASE WHEN ?3&4 THEN ?6 ELSE secret END,"
                        "name=CASE WHEN ?3&8 THEN ?7 ELSE name END"
                        " WHERE id=?1 AND (?2 IS NULL OR namespace=?2)",
                        &st);
    if (rc) return rc;
    sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    sq_bind_text(st, 2, ns);
    sqlite3_bind_int(st, 3, (int)w->set);
    sq_bind_text(st, 4, w->url);
    sq_bind_text(st, 5, events);
    sq_bind_text(st, 6, w->secret);
    sq_bind_text(st, 7, w->name);
    rc = sq_step_done(db, st);
    if (!rc && sqlite3_changes(db) == 0) rc = TM_ENOT_FOUND;
    sqlite3_finalize(st);
    if (rc) return rc;
    q->hooks = -1;
    if (w->set & WEBHOOK_SET_EVENTS) {
        if ((rc = sq_prepare(db,
                             "UPDATE webhook_deliveries SET status='failed',"
                             "last_error='the webhook no longer asks for '''||event||'''',"
                             "updated_at=?3 WHERE webhook_id=?1 AND status='pending'"
                             " AND instr(?2,','||event||',')=0",
                             &st)))
            return rc;
        sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, events, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 3, now);
        rc = sq_step_done(db, st);
        sqlite3_finalize(st);
        if (rc) return rc;
    }
    if ((rc = sq_prepare(db, "SELECT " SQE_WEBHOOK_COLS " FROM webhooks WHERE id=?1", &st)))
        return rc;
    sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    rc = sq_step_one(db, st, "webhook");
    if (!rc) {
        unsigned set = w->set;
        webhook_release(w);
        sqe_read_webhook(st, w);
        w->set = set;
    }
    sqlite3_finalize(st);
    return rc;
}

/* As on PostgreSQL (pg_delivery_update): only while the claim's
 * busy_until holds, the outcome first, then the webhook freed. */
int sq_delivery_update(struct store *s, const struct webhook_delivery *d) {
    struct sq_events *q = sqe(s);
    sqlite3_stmt *st = sqe_stmt(s, &q->delivery_update,
                                "UPDATE webhook_deliveries SET status=?2,attempts=?3,next_at=?4,"
                                "last_status=?5,last_error=?6,updated_at=?7 WHERE id=?1"
                                " AND status='pending' AND EXISTS (SELECT 1 FROM webhooks"
                                " WHERE id=?8 AND busy_until=?9)");
    sqlite3_stmt *fr = sqe_stmt(s, &q->hook_free,
                                "UPDATE webhooks SET busy_until=0 WHERE id=?1 AND busy_until=?2");
    if (!st || !fr) return TM_EINTERNAL;
    sq_bind_fields(st, store_delivery_set_fields, SIZE_MAX, d);
    sqlite3_bind_text(st, 8, d->webhook_id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 9, d->claimed_until);
    int rc = sq_step_done(sq_writer_db(s), st);
    if (rc) return rc;
    sqlite3_bind_text(fr, 1, d->webhook_id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(fr, 2, d->claimed_until);
    return sq_step_done(sq_writer_db(s), fr);
}

/* ---- Reads ---- */

/* A reader's list of the live segments, in its snapshot. */
struct sqe_view {
    struct sqe_seg *segs;
    size_t n;
    bool borrowed;       /* segs are the writer's */
    sqlite3_stmt **base; /* per segment, the first event of a task (prepared on use) */
};

static void sqe_view_release(struct sqe_view *v) {
    for (size_t i = 0; v->base && i < v->n; i++)
        sqlite3_finalize(v->base[i]);
    free(v->base);
    if (!v->borrowed) free(v->segs);
}

/* The head, the pruned mark and the segments (v may be NULL), read in the
 * reader's open transaction. */
static int sqe_snapshot(sqlite3 *db, int64_t *head, int64_t *pruned_through, struct sqe_view *v) {
    int rc = sqe_marks(db, head, pruned_through);
    if (rc || !v) return rc;
    sqlite3_stmt *st;
    if (sq_prepare(db,
                   "SELECT slot,first_seq,coalesce(last_seq,0),coalesce(last_at,0)"
                   " FROM event_segments WHERE first_seq IS NOT NULL ORDER BY first_seq",
                   &st))
        return TM_EINTERNAL;
    size_t cap = 0;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (v->n == cap) {
            cap = cap ? 2 * cap : 16;
            v->segs = xrealloc(v->segs, cap * sizeof *v->segs);
        }
        struct sqe_seg g = {sqlite3_column_int64(st, 0), sqlite3_column_int64(st, 1),
                            sqlite3_column_int64(st, 2), sqlite3_column_int64(st, 3)};
        v->segs[v->n++] = g;
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE) {
        sq_log(db, "events: segments");
        return TM_EINTERNAL;
    }
    v->base = xcalloc(v->n ? v->n : 1, sizeof *v->base);
    return 0;
}

/* A task's events come after its creation, whose time its id starts with
 * (id.h); a segment that ended this long before it has none of them. The
 * margin is for a clock stepped back: further than that, a lookup below
 * may miss a task's first event and fall back as for a pruned one. */
#define SQE_CLOCK_MARGIN_MS (10 * 60 * 1000)

/* The creation time an id starts with (0 when there is no id). */
static int64_t sqe_id_ms(const char *id) {
    if (!id || strlen(id) < 12) return 0;
    char hex[13];
    memcpy(hex, id, 12);
    hex[12] = '\0';
    return strtoll(hex, NULL, 16);
}

static bool sqe_before_task(const struct sqe_seg *g, int64_t id_ms) {
    return g->last_seq && g->last_at < id_ms - SQE_CLOCK_MARGIN_MS;
}

/* The text of task_id's first event in the log, up to segment `upto` of
 * the view (the event's own), or NULL: the base a stored part is joined
 * with (store_event.base). */
static char *sqe_base(sqlite3 *db, struct sqe_view *v, size_t upto, const char *task_id) {
    int64_t id_ms = sqe_id_ms(task_id);
    for (size_t i = 0; i <= upto && i < v->n; i++) {
        if (sqe_before_task(&v->segs[i], id_ms)) continue;
        if (!v->base[i]) {
            char sql[128];
            snprintf(sql, sizeof sql,
                     "SELECT task FROM events_%lld WHERE task_id=?1 ORDER BY seq LIMIT 1",
                     (long long)v->segs[i].slot);
            if (sq_prepare(db, sql, &v->base[i])) return NULL;
        }
        sqlite3_stmt *st = v->base[i];
        sqlite3_bind_text(st, 1, task_id, -1, SQLITE_STATIC);
        char *out = sqlite3_step(st) == SQLITE_ROW ? sq_col_dup(st, 0) : NULL;
        sqlite3_reset(st);
        if (out) return out;
    }
    return NULL;
}

#define SQE_EVENT_COLS "seq,at,kind,cause,task_id,namespace,queue,type,phase,version,task,actor"

/* Reads the SQE_EVENT_COLS of a row of the view's segment i, with the
 * base to join a stored part with. */
static void sqe_read_event(sqlite3 *db, struct sqe_view *v, size_t i, sqlite3_stmt *st,
                           struct store_event *ev) {
    memset(ev, 0, sizeof *ev);
    ev->seq = sqlite3_column_int64(st, 0);
    ev->at = sqlite3_column_int64(st, 1);
    snprintf(ev->kind, sizeof ev->kind, "%s", (const char *)sqlite3_column_text(st, 2));
    snprintf(ev->cause, sizeof ev->cause, "%s", (const char *)sqlite3_column_text(st, 3));
    snprintf(ev->task_id, sizeof ev->task_id, "%s", (const char *)sqlite3_column_text(st, 4));
    ev->ns = sq_col_dup(st, 5);
    ev->queue = sq_col_dup(st, 6);
    ev->type = sq_col_dup(st, 7);
    const char *phase = (const char *)sqlite3_column_text(st, 8);
    if (!phase || task_phase_parse(phase, &ev->phase)) ev->phase = TASK_PENDING;
    ev->version = sqlite3_column_int64(st, 9);
    ev->task_json = sq_col_dup(st, 10);
    const char *actor = (const char *)sqlite3_column_text(st, 11);
    snprintf(ev->actor, sizeof ev->actor, "%s", actor ? actor : "");
    if (ev->task_json && !task_json_is_whole(ev->task_json))
        ev->base = sqe_base(db, v, i, ev->task_id);
}

/* Event `seq` with its base into ev, from the view's segment that holds
 * it; ev stays empty when the event is gone. */
static int sqe_event_at(sqlite3 *db, struct sqe_view *v, int64_t seq, struct store_event *ev) {
    size_t i = 0;
    while (i < v->n && v->segs[i].last_seq && v->segs[i].last_seq < seq)
        i++;
    if (i == v->n || seq < v->segs[i].first_seq) return 0;
    char sql[200];
    snprintf(sql, sizeof sql, "SELECT " SQE_EVENT_COLS " FROM events_%lld WHERE seq=?1",
             (long long)v->segs[i].slot);
    sqlite3_stmt *st;
    if (sq_prepare(db, sql, &st)) return TM_EINTERNAL;
    sqlite3_bind_int64(st, 1, seq);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        sqe_read_event(db, v, i, st, ev);
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
        sq_log(db, "event by seq");
        return TM_EINTERNAL;
    }
    return 0;
}

int sq_events_read(struct store *s, const char *ns, const char *task_id, int64_t after, int limit,
                   size_t max_bytes, struct event_page *out) {
    void *conn;
    sqlite3 *db = sq_reader_borrow(s, &conn);
    if (!db) return TM_EINTERNAL;
    struct sqe_view v = {0};
    int ret = 0;
    if (sqlite3_exec(db, "BEGIN", NULL, NULL, NULL) != SQLITE_OK) {
        sq_log(db, "begin");
        sq_reader_return(s, conn);
        return TM_EINTERNAL;
    }
    if ((ret = sqe_snapshot(db, &out->head, &out->pruned_through, &v))) goto out;
    out->events = xcalloc((size_t)(limit > 0 ? limit : 1), sizeof *out->events);
    int64_t id_ms = sqe_id_ms(task_id);
    size_t bytes = 0;
    /* Segment by segment, in seq order, until the page is full. */
    for (size_t i = 0; i < v.n && out->n < (size_t)limit && !out->more; i++) {
        if (v.segs[i].last_seq && v.segs[i].last_seq <= after) continue;
        if (task_id && sqe_before_task(&v.segs[i], id_ms)) continue;
        /* One task's: through the segment's (task_id, seq) index, which a
         * "?3 IS NULL OR" form would leave unused (a scan by seq). */
        char sql[320];
        snprintf(sql, sizeof sql,
                 "SELECT " SQE_EVENT_COLS
                 " FROM events_%lld WHERE seq>?1"
                 " AND (?2 IS NULL OR namespace=?2)%s ORDER BY seq LIMIT ?4",
                 (long long)v.segs[i].slot, task_id ? " AND task_id=?3" : "");
        sqlite3_stmt *st;
        if (sq_prepare(db, sql, &st)) {
            ret = TM_EINTERNAL;
            break;
        }
        sqlite3_bind_int64(st, 1, after);
        sq_bind_text(st, 2, ns);
        if (task_id) sq_bind_text(st, 3, task_id);
        sqlite3_bind_int(st, 4, limit - (int)out->n);
        int rc;
        while ((rc = sqlite3_step(st)) == SQLITE_ROW && out->n < (size_t)limit) {
            struct store_event *ev = &out->events[out->n++];
            sqe_read_event(db, &v, i, st, ev);
            bytes +=
                (ev->task_json ? strlen(ev->task_json) : 0) + (ev->base ? strlen(ev->base) : 0);
            if (max_bytes && bytes >= max_bytes) {
                out->more = true;
                rc = SQLITE_DONE;
                break;
            }
        }
        sqlite3_finalize(st);
        if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
            sq_log(db, "events read");
            ret = TM_EINTERNAL;
            break;
        }
    }
out:
    sqe_view_release(&v);
    sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
    sq_reader_return(s, conn);
    return ret;
}

int sq_events_head(struct store *s, int64_t *head, int64_t *pruned_through) {
    void *conn;
    sqlite3 *db = sq_reader_borrow(s, &conn);
    if (!db) return TM_EINTERNAL;
    int rc = sqlite3_exec(db, "BEGIN", NULL, NULL, NULL) == SQLITE_OK ? 0 : TM_EINTERNAL;
    if (!rc) rc = sqe_snapshot(db, head, pruned_through, NULL);
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
                           "SELECT " SQE_WEBHOOK_COLS " FROM webhooks"
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
        sqe_read_webhook(st, w);
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
    /* The cost follows the number of free webhooks, not the backlog of a
     * busy or held one (SQ_DELIVERY_CLAIM_HEAD). */
    buf_puts(&sql, "SELECT " SQE_DELIVERY_COLS ",w.url,w.secret " SQ_DELIVERY_CLAIM_HEAD);
    if (nskip) {
        buf_puts(&sql, " AND w.id NOT IN (");
        for (size_t i = 0; i < nskip; i++)
            buf_printf(&sql, "%s?%zu", i ? "," : "", i + 2);
        buf_putc(&sql, ')');
    }
    buf_puts(&sql, SQ_DELIVERY_CLAIM_TAIL);
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
        *out = d;
    }
    sqlite3_finalize(st);
    if (ret) return ret;
    /* Its event, from the segment that holds it (gone: d->ev stays empty). */
    struct sq_events *q = sqe(s);
    if (!(ret = sqe_load(s))) {
        struct sqe_view v = {q->segs, q->nsegs, true, xcalloc(q->nsegs, sizeof *v.base)};
        ret = sqe_event_at(db, &v, (*out)->seq, &(*out)->ev);
        sqe_view_release(&v);
    }
    if (ret) {
        deliveries_free(*out, 1);
        *out = NULL;
        return ret;
    }
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

/* Keyset paging on webhook_deliveries_hook (webhook_id, seq): the cursor
 * is a range on seq, so a deep page starts where the last one ended
 * instead of skipping rows; a status is a filter on that walk. */
int sq_deliveries_page(struct store *s, const char *webhook_id, const struct delivery_page *page,
                       int limit, struct webhook_delivery **out, size_t *n) {
    void *conn;
    sqlite3 *db = sq_reader_borrow(s, &conn);
    if (!db) return TM_EINTERNAL;
    struct buf sql;
    buf_init(&sql);
    buf_puts(&sql, "SELECT " SQE_DELIVERY_COLS " FROM webhook_deliveries d WHERE d.webhook_id=?1");
    static const struct delivery_page newest = {NULL, -1, ""};
    if (!page) page = &newest;
    if (page->status) buf_puts(&sql, " AND d.status=?2");
    if (page->after_seq >= 0) buf_puts(&sql, " AND d.seq<=?3 AND (d.seq<?3 OR d.event<?4)");
    buf_puts(&sql, " ORDER BY d.seq DESC,d.event DESC LIMIT ?5");
    sqlite3_stmt *st = NULL;
    int ret = sq_prepare(db, sql.p, &st);
    buf_release(&sql);
    if (ret) {
        sq_reader_return(s, conn);
        return ret;
    }
    sqlite3_bind_text(st, 1, webhook_id, -1, SQLITE_STATIC);
    if (page->status) sqlite3_bind_text(st, 2, page->status, -1, SQLITE_STATIC);
    if (page->after_seq >= 0) {
        sqlite3_bind_int64(st, 3, page->after_seq);
        sqlite3_bind_text(st, 4, page->after_event, -1, SQLITE_STATIC);
    }
    sqlite3_bind_int(st, 5, limit > 0 ? limit : 0);
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
