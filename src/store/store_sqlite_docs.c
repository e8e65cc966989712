/*
 * store_sqlite_docs: definitions, schedules and their fires on SQLite
 * (store_schedules.c holds the logic). Writer functions run on the writer
 * connection inside the batch's transaction; reads borrow a reader.
 * Statements are prepared per call: these are rare next to task writes.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store_sqlite_int.h"

static const char *table(enum store_doc_kind k) {
    return k == STORE_DOC_SCHEDULE ? "schedules" : "definitions";
}

/* The columns read into a store_doc, in order. */
static const char *cols(enum store_doc_kind k) {
    return k == STORE_DOC_SCHEDULE ? "id,namespace,name,body,created_at,updated_at,state,next_at"
                                   : "id,namespace,name,body,created_at,updated_at,NULL,NULL";
}

static int step_rc(int rc) {
    return rc == SQLITE_DONE || rc == SQLITE_ROW ? 0 : TM_EINTERNAL;
}

/* One doc by id or name (ns NULL: any) on db; TM_ENOT_FOUND, or
 * TM_ECONFLICT when ns is NULL and the name is in several namespaces. */
static int get_on(sqlite3 *db, enum store_doc_kind k, const char *ns, const char *key,
                  struct store_doc *out) {
    char sql[256];
    snprintf(sql, sizeof sql,
             "SELECT %s FROM %s WHERE (id=?1 OR name=?1) AND (?2 IS NULL OR namespace=?2)"
             " ORDER BY id=?1 DESC LIMIT 2",
             cols(k), table(k));
    sqlite3_stmt *st;
    if (sq_prepare(db, sql, &st)) return TM_EINTERNAL;
    sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
    sq_bind_text(st, 2, ns);
    int ret = sq_step_one(db, st, "read document");
    if (!ret) {
        sq_read_fields(st, 0, store_doc_fields, out);
        if (strcmp(out->id, key) != 0) {
            int more = sq_step_one(db, st, "read document");
            if (more != TM_ENOT_FOUND) {
                store_doc_release(out);
                ret = more ? more : TM_ECONFLICT;
            }
        }
    }
    sqlite3_finalize(st);
    return ret;
}

int sq_doc_load(struct store *s, enum store_doc_kind k, const char *ns, const char *key,
                struct store_doc *out) {
    return get_on(sq_writer_db(s), k, ns, key, out);
}

int sq_doc_name_owner(struct store *s, enum store_doc_kind k, const char *ns, const char *name,
                      char id[ID_LEN + 1]) {
    sqlite3 *db = sq_writer_db(s);
    char sql[128];
    snprintf(sql, sizeof sql, "SELECT id FROM %s WHERE namespace=?1 AND name=?2", table(k));
    sqlite3_stmt *st;
    if (sq_prepare(db, sql, &st)) return TM_EINTERNAL;
    sqlite3_bind_text(st, 1, ns, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, name, -1, SQLITE_STATIC);
    int ret = sq_step_one(db, st, "read document name");
    if (!ret) snprintf(id, ID_LEN + 1, "%s", (const char *)sqlite3_column_text(st, 0));
    sqlite3_finalize(st);
    return ret;
}

int sq_doc_get(struct store *s, enum store_doc_kind k, const char *ns, const char *key,
               struct store_doc *out) {
    void *conn;
    sqlite3 *db = sq_reader_borrow(s, &conn);
    if (!db) return TM_EINTERNAL;
    int rc = get_on(db, k, ns, key, out);
    sq_reader_return(s, conn);
    return rc;
}

int sq_doc_list(struct store *s, enum store_doc_kind k, const char *ns, struct store_doc **out,
                size_t *n) {
    void *conn;
    sqlite3 *db = sq_reader_borrow(s, &conn);
    if (!db) return TM_EINTERNAL;
    char sql[256];
    snprintf(sql, sizeof sql,
             "SELECT %s FROM %s WHERE ?1 IS NULL OR namespace=?1 ORDER BY name, namespace", cols(k),
             table(k));
    sqlite3_stmt *st;
    int ret = sq_prepare(db, sql, &st);
    if (!ret) {
        sq_bind_text(st, 1, ns);
        *out = sq_read_rows(st, store_doc_fields, sizeof **out, n, &ret);
        sqlite3_finalize(st);
    }
    sq_reader_return(s, conn);
    return ret;
}

int sq_doc_write(struct store *s, enum store_doc_kind k, const struct store_doc *d, bool insert) {
    sqlite3 *db = sq_writer_db(s);
    char sql[512];
    if (k == STORE_DOC_SCHEDULE)
        snprintf(sql, sizeof sql,
                 insert ? "INSERT INTO schedules(id,namespace,name,body,created_at,updated_at,"
                          "state,next_at) VALUES(?1,?2,?3,?4,?5,?6,?7,?8) ON CONFLICT DO NOTHING"
                        : "UPDATE schedules SET namespace=?2,name=?3,body=?4,created_at=?5,"
                          "updated_at=?6,state=?7,next_at=?8 WHERE id=?1");
    else
        snprintf(sql, sizeof sql,
                 insert ? "INSERT INTO definitions(id,namespace,name,body,created_at,updated_at)"
                          " VALUES(?1,?2,?3,?4,?5,?6) ON CONFLICT DO NOTHING"
                        : "UPDATE definitions SET namespace=?2,name=?3,body=?4,created_at=?5,"
                          "updated_at=?6 WHERE id=?1");
    sqlite3_stmt *st;
    if (sq_prepare(db, sql, &st)) return TM_EINTERNAL;
    sq_bind_fields(st, store_doc_fields, STORE_DOC_COMMON_FIELDS, d);
    if (k == STORE_DOC_SCHEDULE) {
        sqlite3_bind_text(st, 7, d->state ? d->state : "{}", -1, SQLITE_STATIC);
        if (d->next_at)
            sqlite3_bind_int64(st, 8, d->next_at);
        else
            sqlite3_bind_null(st, 8);
    }
    int rc = sqlite3_step(st);
    int ret = rc == SQLITE_DONE ? 0 : rc == SQLITE_CONSTRAINT ? TM_ECONFLICT : TM_EINTERNAL;
    if (ret == 0 && sqlite3_changes(db) == 0) ret = insert ? TM_ECONFLICT : TM_ENOT_FOUND;
    if (ret == TM_EINTERNAL) fprintf(stderr, "taskmill: sqlite: %s\n", sqlite3_errmsg(db));
    sqlite3_finalize(st);
    return ret;
}

int sq_doc_delete(struct store *s, enum store_doc_kind k, const char *ns, const char *id) {
    sqlite3 *db = sq_writer_db(s);
    char sql[160];
    snprintf(sql, sizeof sql, "DELETE FROM %s WHERE id=?1 AND (?2 IS NULL OR namespace=?2)",
             table(k));
    sqlite3_stmt *st;
    if (sq_prepare(db, sql, &st)) return TM_EINTERNAL;
    sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    sq_bind_text(st, 2, ns);
    int ret = step_rc(sqlite3_step(st));
    if (ret == 0 && sqlite3_changes(db) == 0) ret = TM_ENOT_FOUND;
    sqlite3_finalize(st);
    if (ret == 0 && k == STORE_DOC_SCHEDULE) {
        if (sq_prepare(db, "DELETE FROM schedule_fires WHERE schedule_id=?1", &st))
            return TM_EINTERNAL;
        sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
        ret = step_rc(sqlite3_step(st));
        sqlite3_finalize(st);
    }
    return ret;
}

int sq_sched_due(struct store *s, int64_t now, char (*ids)[ID_LEN + 1], size_t max, size_t *n) {
    sqlite3 *db = sq_writer_db(s);
    sqlite3_stmt *st;
    *n = 0;
    if (sq_prepare(db,
                   "SELECT id FROM schedules WHERE next_at IS NOT NULL AND next_at<=?1"
                   " ORDER BY next_at LIMIT ?2",
                   &st))
        return TM_EINTERNAL;
    int rc = sq_read_ids(db, st, now, ids, max, n);
    sqlite3_finalize(st);
    return rc;
}

int sq_sched_next_at(struct store *s, int64_t *at) {
    return sq_scalar(sq_writer_db(s),
                     "SELECT min(next_at) FROM schedules WHERE next_at IS NOT NULL", 0, at);
}

int sq_fire_insert(struct store *s, const char *sched_id, const struct schedule_fire *f) {
    sqlite3 *db = sq_writer_db(s);
    sqlite3_stmt *st;
    if (sq_prepare(db,
                   "INSERT INTO schedule_fires(schedule_id,slot,kind,task_id,outcome,at)"
                   " VALUES(?1,?2,?3,?4,?5,?6) ON CONFLICT DO NOTHING",
                   &st))
        return TM_EINTERNAL;
    sqlite3_bind_text(st, 1, sched_id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, f->slot);
    sqlite3_bind_text(st, 3, f->kind, -1, SQLITE_STATIC);
    sq_bind_text(st, 4, f->task_id[0] ? f->task_id : NULL);
    sqlite3_bind_text(st, 5, f->outcome, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 6, f->at);
    int ret = step_rc(sqlite3_step(st));
    if (ret == 0 && sqlite3_changes(db) == 0) ret = TM_ECONFLICT;
    sqlite3_finalize(st);
    return ret;
}

int sq_fire_exists(struct store *s, const char *sched_id, int64_t slot) {
    sqlite3 *db = sq_writer_db(s);
    sqlite3_stmt *st;
    if (sq_prepare(db, "SELECT 1 FROM schedule_fires WHERE schedule_id=?1 AND slot=?2", &st))
        return TM_EINTERNAL;
    sqlite3_bind_text(st, 1, sched_id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, slot);
    int ret = sq_step_one(db, st, "schedule fire");
    sqlite3_finalize(st);
    return ret;
}

/* The WHERE repeats the partial index's (migration 0017) word for word:
 * that is how SQLite sees that the index serves the query. */
int sq_sched_runs(struct store *s, const char *sched_id, bool writer, size_t max,
                  char (*ids)[ID_LEN + 1], size_t *n) {
    void *conn = NULL;
    sqlite3 *db = writer ? sq_writer_db(s) : sq_reader_borrow(s, &conn);
    *n = 0;
    if (!db) return TM_EINTERNAL;
    sqlite3_stmt *st;
    int ret = sq_prepare(db,
                         "SELECT id FROM tasks WHERE schedule_id=?1"
                         " AND schedule_id IS NOT NULL"
                         " AND phase <> 'completed' AND phase <> 'failed'"
                         " AND phase <> 'cancelled'"
                         " ORDER BY id LIMIT ?2",
                         &st);
    if (!ret) {
        sqlite3_bind_text(st, 1, sched_id, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 2, (int64_t)max);
        int rc;
        while ((rc = sqlite3_step(st)) == SQLITE_ROW && *n < max)
            snprintf(ids[(*n)++], ID_LEN + 1, "%s", (const char *)sqlite3_column_text(st, 0));
        if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
            sq_log(db, "schedule runs");
            ret = TM_EINTERNAL;
        }
        sqlite3_finalize(st);
    }
    if (!writer) sq_reader_return(s, conn);
    return ret;
}

/* The rows past a schedule's keep newest start below the slot of its
 * keep-th newest: read once per schedule, the bound of a range on the
 * primary key. */
int sq_fires_prune(struct store *s, int64_t before, int keep, int max, int64_t *deleted) {
    sqlite3 *db = sq_writer_db(s);
    sqlite3_stmt *st;
    *deleted = 0;
    if (sq_prepare(db,
                   "DELETE FROM schedule_fires WHERE (schedule_id,slot) IN ("
                   "SELECT f.schedule_id,f.slot FROM schedules AS d"
                   " CROSS JOIN schedule_fires AS f WHERE f.schedule_id=d.id AND f.slot<("
                   "SELECT g.slot FROM schedule_fires AS g WHERE g.schedule_id=d.id"
                   " ORDER BY g.slot DESC LIMIT 1 OFFSET ?2)"
                   " AND f.at<?1 LIMIT ?3)",
                   &st))
        return TM_EINTERNAL;
    sqlite3_bind_int64(st, 1, before);
    sqlite3_bind_int(st, 2, keep - 1);
    sqlite3_bind_int(st, 3, max);
    int ret = step_rc(sqlite3_step(st));
    if (ret == 0) *deleted = sqlite3_changes(db);
    sqlite3_finalize(st);
    return ret;
}

int sq_fires_list(struct store *s, const char *sched_id, int limit, struct schedule_fire **out,
                  size_t *n) {
    void *conn;
    sqlite3 *db = sq_reader_borrow(s, &conn);
    if (!db) return TM_EINTERNAL;
    sqlite3_stmt *st;
    int ret =
        sq_prepare(db,
                   "SELECT slot,at,kind,outcome,task_id FROM schedule_fires WHERE schedule_id=?1"
                   " ORDER BY slot DESC LIMIT ?2",
                   &st);
    if (!ret) {
        sqlite3_bind_text(st, 1, sched_id, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 2, limit);
        *out = sq_read_rows(st, store_fire_fields, sizeof **out, n, &ret);
        sqlite3_finalize(st);
    }
    sq_reader_return(s, conn);
    return ret;
}
