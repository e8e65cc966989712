/*
 * store_pg_docs: definitions, schedules and their fires on PostgreSQL
 * (store_schedules.c holds the logic). Writer functions run on the writer
 * connection in the batch's transaction: a schedule is loaded FOR UPDATE,
 * due ones FOR UPDATE SKIP LOCKED (so nodes firing at once take different
 * schedules, and none waits), and a fire is inserted ON CONFLICT DO NOTHING
 * (a slot taken is an answer, not an error that aborts the transaction).
 * Statements are sent as text per call: these are rare next to task writes.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/xalloc.h"
#include "store_pg_int.h"

static const char *table(enum store_doc_kind k) {
    return k == STORE_DOC_SCHEDULE ? "schedules" : "definitions";
}

static const char *cols(enum store_doc_kind k) {
    return k == STORE_DOC_SCHEDULE ? "id,namespace,name,body,created_at,updated_at,state,next_at"
                                   : "id,namespace,name,body,created_at,updated_at,NULL,NULL";
}

/* One doc by id or name (ns NULL: any); TM_ENOT_FOUND, or TM_ECONFLICT
 * when ns is NULL and the name is in several namespaces. */
static int get_on(struct pg_conn *c, enum store_doc_kind k, const char *ns, const char *key,
                  bool lock, struct store_doc *out) {
    char sql[320];
    snprintf(sql, sizeof sql,
             "SELECT %s FROM %s WHERE (id=$1 OR name=$1) AND ($2::text IS NULL OR namespace=$2)"
             " ORDER BY id=$1 DESC LIMIT 2%s",
             cols(k), table(k), lock ? " FOR UPDATE" : "");
    struct pg_params p;
    pgp_init(&p);
    pgp_text(&p, key);
    pgp_text(&p, ns);
    PGresult *r = NULL;
    int rc = pg_run_sql(c, sql, &p, &r);
    if (rc == 0) {
        if (PQntuples(r) == 0)
            rc = TM_ENOT_FOUND;
        else if (PQntuples(r) > 1 && strcmp(PQgetvalue(r, 0, 0), key) != 0)
            rc = TM_ECONFLICT; /* a name in several namespaces, asked with none */
        else
            pg_read_fields(r, 0, 0, store_doc_fields, out);
    }
    PQclear(r);
    return rc;
}

int pg_doc_load(struct store *s, enum store_doc_kind k, const char *ns, const char *key,
                struct store_doc *out) {
    return get_on(pg_writer(s), k, ns, key, true, out);
}

int pg_doc_name_owner(struct store *s, enum store_doc_kind k, const char *ns, const char *name,
                      char id[ID_LEN + 1]) {
    char sql[128];
    snprintf(sql, sizeof sql, "SELECT id FROM %s WHERE namespace=$1 AND name=$2", table(k));
    struct pg_params p;
    pgp_init(&p);
    pgp_text(&p, ns);
    pgp_text(&p, name);
    PGresult *r = NULL;
    int rc = pg_run_sql(pg_writer(s), sql, &p, &r);
    if (rc == 0 && PQntuples(r) == 0) rc = TM_ENOT_FOUND;
    if (rc == 0) snprintf(id, ID_LEN + 1, "%s", PQgetvalue(r, 0, 0));
    PQclear(r);
    return rc;
}

int pg_doc_get(struct store *s, enum store_doc_kind k, const char *ns, const char *key,
               struct store_doc *out) {
    struct pg_conn *c = pg_reader_take(s);
    if (!c) return TM_EUNAVAILABLE;
    int rc = get_on(c, k, ns, key, false, out);
    pg_reader_give(s, c);
    return rc;
}

int pg_doc_list(struct store *s, enum store_doc_kind k, const char *ns, struct store_doc **out,
                size_t *n) {
    char sql[256];
    snprintf(sql, sizeof sql,
             "SELECT %s FROM %s WHERE $1::text IS NULL OR namespace=$1 ORDER BY name, namespace",
             cols(k), table(k));
    struct pg_params p;
    pgp_init(&p);
    pgp_text(&p, ns);
    PGresult *r = NULL;
    int rc = pg_read_sql(s, sql, &p, &r);
    if (rc == 0) *out = pg_read_rows(r, store_doc_fields, sizeof **out, n);
    PQclear(r);
    return rc;
}

int pg_doc_write(struct store *s, enum store_doc_kind k, const struct store_doc *d, bool insert) {
    const char *sql;
    if (k == STORE_DOC_SCHEDULE)
        sql = insert ? "INSERT INTO schedules(id,namespace,name,body,created_at,updated_at,state,"
                       "next_at) VALUES($1,$2,$3,$4,$5,$6,$7,$8) ON CONFLICT DO NOTHING RETURNING 1"
                     : "UPDATE schedules SET namespace=$2,name=$3,body=$4,created_at=$5,"
                       "updated_at=$6,state=$7,next_at=$8 WHERE id=$1 RETURNING 1";
    else
        sql = insert ? "INSERT INTO definitions(id,namespace,name,body,created_at,updated_at)"
                       " VALUES($1,$2,$3,$4,$5,$6) ON CONFLICT DO NOTHING RETURNING 1"
                     : "UPDATE definitions SET namespace=$2,name=$3,body=$4,created_at=$5,"
                       "updated_at=$6 WHERE id=$1 RETURNING 1";
    struct pg_params p;
    pgp_init(&p);
    pgp_fields(&p, store_doc_fields, STORE_DOC_COMMON_FIELDS, d);
    if (k == STORE_DOC_SCHEDULE) {
        pgp_text(&p, d->state ? d->state : "{}");
        if (d->next_at)
            pgp_int(&p, d->next_at);
        else
            pgp_text(&p, NULL);
    }
    PGresult *r = NULL;
    int rc = pg_run_sql(pg_writer(s), sql, &p, &r);
    if (rc == 0 && PQntuples(r) == 0) rc = insert ? TM_ECONFLICT : TM_ENOT_FOUND;
    PQclear(r);
    return rc;
}

int pg_doc_delete(struct store *s, enum store_doc_kind k, const char *ns, const char *id) {
    char sql[200];
    snprintf(sql, sizeof sql,
             "DELETE FROM %s WHERE id=$1 AND ($2::text IS NULL OR namespace=$2) RETURNING 1",
             table(k));
    struct pg_params p;
    pgp_init(&p);
    pgp_text(&p, id);
    pgp_text(&p, ns);
    PGresult *r = NULL;
    int rc = pg_run_sql(pg_writer(s), sql, &p, &r);
    if (rc == 0 && PQntuples(r) == 0) rc = TM_ENOT_FOUND;
    PQclear(r);
    if (rc == 0 && k == STORE_DOC_SCHEDULE) {
        pgp_init(&p);
        pgp_text(&p, id);
        rc = pg_run_sql(pg_writer(s), "DELETE FROM schedule_fires WHERE schedule_id=$1", &p, &r);
        PQclear(r);
    }
    return rc;
}

int pg_sched_due(struct store *s, int64_t now, char (*ids)[ID_LEN + 1], size_t max, size_t *n) {
    struct pg_params p;
    pgp_init(&p);
    pgp_int(&p, now);
    pgp_int(&p, (int64_t)max);
    PGresult *r = NULL;
    *n = 0;
    int rc = pg_run_sql(pg_writer(s),
                        "SELECT id FROM schedules WHERE next_at IS NOT NULL AND next_at<=$1"
                        " ORDER BY next_at LIMIT $2 FOR UPDATE SKIP LOCKED",
                        &p, &r);
    for (int i = 0; rc == 0 && i < PQntuples(r) && (size_t)i < max; i++)
        pg_copy(ids[(*n)++], ID_LEN + 1, r, i, 0);
    PQclear(r);
    return rc;
}

int pg_sched_next_at(struct store *s, int64_t *at) {
    PGresult *r = NULL;
    *at = 0;
    int rc = pg_run_sql(pg_writer(s),
                        "SELECT coalesce(min(next_at), 0) FROM schedules WHERE next_at IS NOT NULL",
                        NULL, &r);
    if (rc == 0 && PQntuples(r) == 1) *at = pg_int(r, 0, 0);
    PQclear(r);
    return rc;
}

int pg_fire_insert(struct store *s, const char *sched_id, const struct schedule_fire *f) {
    struct pg_params p;
    pgp_init(&p);
    pgp_text(&p, sched_id);
    pgp_int(&p, f->slot);
    pgp_text(&p, f->kind);
    pgp_text(&p, f->task_id[0] ? f->task_id : NULL);
    pgp_text(&p, f->outcome);
    pgp_int(&p, f->at);
    PGresult *r = NULL;
    int rc = pg_run_sql(pg_writer(s),
                        "INSERT INTO schedule_fires(schedule_id,slot,kind,task_id,outcome,at)"
                        " VALUES($1,$2,$3,$4,$5,$6) ON CONFLICT DO NOTHING RETURNING 1",
                        &p, &r);
    if (rc == 0 && PQntuples(r) == 0) rc = TM_ECONFLICT;
    PQclear(r);
    return rc;
}

int pg_fire_exists(struct store *s, const char *sched_id, int64_t slot) {
    struct pg_params p;
    pgp_init(&p);
    pgp_text(&p, sched_id);
    pgp_int(&p, slot);
    PGresult *r = NULL;
    int rc = pg_run_sql(pg_writer(s),
                        "SELECT 1 FROM schedule_fires WHERE schedule_id=$1 AND slot=$2", &p, &r);
    if (rc == 0 && PQntuples(r) == 0) rc = TM_ENOT_FOUND;
    PQclear(r);
    return rc;
}

int pg_sched_runs(struct store *s, const char *sched_id, bool writer, size_t max,
                  char (*ids)[ID_LEN + 1], size_t *n) {
    static const char sql[] =
        "SELECT id FROM tasks WHERE schedule_id=$1"
        " AND schedule_id IS NOT NULL"
        " AND phase NOT IN ('completed', 'failed', 'cancelled')"
        " ORDER BY id LIMIT $2";
    struct pg_params p;
    pgp_init(&p);
    pgp_text(&p, sched_id);
    pgp_int(&p, (int64_t)max);
    PGresult *r = NULL;
    *n = 0;
    int rc = writer ? pg_run_sql(pg_writer(s), sql, &p, &r) : pg_read_sql(s, sql, &p, &r);
    for (int i = 0; rc == 0 && i < PQntuples(r) && (size_t)i < max; i++)
        pg_copy(ids[(*n)++], ID_LEN + 1, r, i, 0);
    PQclear(r);
    return rc;
}

/* As SQLite's (sq_fires_prune), with the rows locked and the ones another
 * node holds skipped, so nodes pruning at once neither wait nor deadlock;
 * deleted by their ctid (a scan of the ids found, not a join). */
int pg_fires_prune(struct store *s, int64_t before, int keep, int max, int64_t *deleted) {
    struct pg_params p;
    pgp_init(&p);
    pgp_int(&p, before);
    pgp_int(&p, keep - 1);
    pgp_int(&p, max);
    PGresult *r = NULL;
    *deleted = 0;
    int rc = pg_run_sql(pg_writer(s),
                        "DELETE FROM schedule_fires WHERE ctid = ANY(ARRAY("
                        "SELECT f.ctid FROM schedules AS d"
                        " CROSS JOIN schedule_fires AS f WHERE f.schedule_id=d.id AND f.slot<("
                        "SELECT g.slot FROM schedule_fires AS g WHERE g.schedule_id=d.id"
                        " ORDER BY g.slot DESC LIMIT 1 OFFSET $2)"
                        " AND f.at<$1 LIMIT $3 FOR UPDATE OF f SKIP LOCKED))",
                        &p, &r);
    if (rc == 0) *deleted = atoll(PQcmdTuples(r));
    PQclear(r);
    return rc;
}

int pg_fires_list(struct store *s, const char *sched_id, int limit, struct schedule_fire **out,
                  size_t *n) {
    struct pg_params p;
    pgp_init(&p);
    pgp_text(&p, sched_id);
    pgp_int(&p, limit);
    PGresult *r = NULL;
    int rc = pg_read_sql(s,
                         "SELECT slot,at,kind,outcome,task_id FROM schedule_fires"
                         " WHERE schedule_id=$1 ORDER BY slot DESC LIMIT $2",
                         &p, &r);
    if (rc == 0) *out = pg_read_rows(r, store_fire_fields, sizeof **out, n);
    PQclear(r);
    return rc;
}
