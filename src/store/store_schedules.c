/*
 * store_schedules: definitions and schedules on the writer thread
 * (docs/schedules.md).
 *
 * A schedule row keeps its checked JSON (body), what firing keeps (state:
 * the cursor after which slots are still unfired, the last runs launched,
 * counts and the last outcome) and next_at, the wall time of its next
 * fire. Firing runs inside a batch, like the sweep: the due rows come
 * locked (SKIP LOCKED on PostgreSQL, so a node never waits on another),
 * and every slot is first recorded in schedule_fires, whose key (schedule,
 * slot) is the guarantee: a slot launches at most one task however many
 * nodes fire, and a node that restarts mid-slot finds the slot taken. There
 * is no leader to go stale.
 *
 * Jitter: each slot has its own delay, 0 to jitter_ms, a hash of the
 * schedule's id and the slot (schedule_slot_delay_ms), so every node
 * computes the same and nothing is stored. A slot is due at slot + delay
 * and fires once it is due and every earlier slot has fired: slots fire in
 * slot order, each at most jitter_ms after its slot (as the earlier slots
 * are due by then), and next_at is the due time of the first unfired slot.
 *
 * Pause: a pause notes when (state.paused_at); a resume skips the slots
 * after it up to the resume, but keeps the cursor when a slot before it
 * has not fired (its delay not over), marking the skip (skip_after,
 * skip_to) for sched_next_owed to jump once those are fired. Pauses that
 * come before those have fired mark their skips after it, oldest first, in
 * skip_more ([after, to] pairs; a node of the version before, which knows
 * only the first, skips only that one). A replace keeps the cursor unless
 * the slots or delays change (sched_same_timing).
 *
 * Anchor: an interval schedule without a start_at counts from its creation,
 * written into its body as start_at by doc_put, here, in the transaction
 * that reads what the schedule had: a replace without one keeps it.
 *
 * Missed slots: those older than the catch-up window (plus the jitter and
 * a second of slack, the delay an on-time fire may have) are counted
 * (state.missed), the ones inside it fire once each, oldest first. An
 * interval's are counted by division; a cron's are walked, up to
 * MISSED_SCAN_MAX a downtime (the rest are skipped uncounted).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/id.h"
#include "../common/schedule.h"
#include "../common/task_json.h"
#include "../common/timeutil.h"
#include "../common/xalloc.h"
#include "store_int.h"

#define FIRE_MAX_PER_PASS   100    /* slots one schedule fires per pass (more: next pass) */
#define MISSED_SCAN_MAX     100000 /* a cron's slots counted as missed one by one */
#define ACTIVE_MAX          8      /* runs remembered in state.active (older nodes read it) */
#define RUNS_MAX            1000   /* unfinished runs cancel_running cancels a slot */
#define UNREADABLE_RETRY_MS 60000  /* a schedule whose body does not parse: tried again then */
#define UNREADABLE_GRACE_MS 10000  /* shared: left to the nodes that read it for so long */
#define SKIPS_MAX           32     /* pauses' skips marked at once (more: the last two merge) */
#define LOCKED_RETRY_MS     50     /* due schedules other transactions hold: looked at then */
#define CLOCK_TRUST_MS      60000 /* a measured clock offset past this is not used (sched_offset) */

static const char *doc_noun(enum store_doc_kind k) {
    return k == STORE_DOC_SCHEDULE ? "schedule" : "definition";
}

/* The state's fields, with defaults. */
static json_t *state_load(const char *text) {
    json_t *st = text ? json_loads(text, 0, NULL) : NULL;
    if (!json_is_object(st)) {
        json_decref(st);
        st = json_object();
    }
    return st;
}

static int64_t state_int(const json_t *st, const char *key) {
    return json_integer_value(json_object_get(st, key));
}

static void state_set_int(json_t *st, const char *key, int64_t v) {
    json_object_set_new(st, key, json_integer(v));
}

static void state_store(struct store_doc *d, json_t *st) {
    free(d->state);
    d->state = json_dumps(st, JSON_COMPACT);
}

/* When the slot of schedule `id` is due: the slot plus its own delay. */
static int64_t slot_due(const struct schedule *sc, const char *id, int64_t slot) {
    return slot + schedule_slot_delay_ms(sc, id, slot);
}

static void skip_pop(json_t *st);

/* A node that knows only the first mark drops it when it is done with it
 * and leaves skip_more: its first mark then takes the first's place. */
static void skip_adopt(json_t *st) {
    if (!state_int(st, "skip_to") && json_array_size(json_object_get(st, "skip_more")))
        skip_pop(st);
}

/*
 * A pause's skip, (after, to], marked after those already marked: the
 * first in skip_after and skip_to, the later ones in skip_more. Past
 * SKIPS_MAX marks the newest is stretched to `to` instead (the slots between
 * those two pauses go with them); a pause and resume a minute for a whole
 * hour of jitter would need more.
 */
static void skip_push(json_t *st, int64_t after, int64_t to) {
    skip_adopt(st);
    if (!state_int(st, "skip_to")) {
        state_set_int(st, "skip_after", after);
        state_set_int(st, "skip_to", to);
        return;
    }
    json_t *more = json_object_get(st, "skip_more");
    if (!json_is_array(more)) {
        more = json_array();
        json_object_set_new(st, "skip_more", more);
    }
    size_t n = json_array_size(more);
    if (n + 1 >= SKIPS_MAX) {
        json_array_set_new(json_array_get(more, n - 1), 1, json_integer(to));
        return;
    }
    json_t *pair = json_array();
    json_array_append_new(pair, json_integer(after));
    json_array_append_new(pair, json_integer(to));
    json_array_append_new(more, pair);
}

/* The first skip done with: the next marked one, if any, takes its place. */
static void skip_pop(json_t *st) {
    json_object_del(st, "skip_after");
    json_object_del(st, "skip_to");
    json_t *more = json_object_get(st, "skip_more");
    json_t *pair = json_array_get(more, 0);
    if (pair) {
        state_set_int(st, "skip_after", json_integer_value(json_array_get(pair, 0)));
        state_set_int(st, "skip_to", json_integer_value(json_array_get(pair, 1)));
        json_array_remove(more, 0);
    }
    if (!json_array_size(more)) json_object_del(st, "skip_more");
}

static void skip_clear(json_t *st) {
    json_object_del(st, "skip_after");
    json_object_del(st, "skip_to");
    json_object_del(st, "skip_more");
}

/*
 * The first slot after *cursor the schedule still owes. A resumed schedule
 * that owed slots from before its pause keeps its cursor and skips the
 * slots of the pause itself, (skip_after, skip_to] in its state: once the
 * owed ones are behind, *cursor jumps to skip_to and the mark goes, and
 * so on for the pauses marked after it.
 */
static int64_t sched_next_owed(const struct schedule *sc, json_t *st, int64_t *cursor) {
    skip_adopt(st);
    int64_t slot = schedule_next_slot(sc, *cursor, NULL), to;
    while ((to = state_int(st, "skip_to")) && (!slot || slot > state_int(st, "skip_after"))) {
        if (*cursor < to) *cursor = to;
        skip_pop(st);
        slot = schedule_next_slot(sc, *cursor, NULL);
    }
    return slot;
}

/* When the first slot the schedule owes after its state's cursor is due,
 * or 0 (paused, or none left); st's cursor and marks as sched_next_owed. */
static int64_t sched_next_at(const char *id, const struct schedule *sc, bool paused, json_t *st) {
    if (paused) return 0;
    int64_t cursor = state_int(st, "cursor");
    int64_t slot = sched_next_owed(sc, st, &cursor);
    state_set_int(st, "cursor", cursor);
    return slot ? slot_due(sc, id, slot) : 0;
}

/*
 * How far the database's clock is ahead of this node's (negative: behind),
 * as store_clock_check last measured it; 0 before a measure, on SQLite,
 * and past CLOCK_TRUST_MS (clocks that far apart are broken, and logged:
 * this node's own clock is used as before). Nodes write and compare
 * next_at by their own clocks; the offset bounds what "now" is where a
 * node's clock and the others' disagree: how late a slot is (a node ahead
 * must not find the others' on-time slots late) and where a new cursor
 * starts (a node behind must not start one in the others' past).
 */
static int64_t sched_offset(struct store *s) {
    int64_t off = store_clock_offset_ms(s);
    return off < -CLOCK_TRUST_MS || off > CLOCK_TRUST_MS ? 0 : off;
}

/* The "now" a cursor set from now starts at: the later of this node's
 * clock and the database's. Made on a node 5 s behind, a schedule's cursor
 * lay 5 s in the others' past, and its first slots they found late (with
 * catchup_seconds 0, missed: never fired). */
static int64_t sched_cursor_now(struct store *s, int64_t now) {
    int64_t off = sched_offset(s);
    return off > 0 ? now + off : now;
}

/*
 * A pause or a resume at `now` (paused: the state's pause before, pause:
 * after). A pause notes when (paused_at). A resume skips the slots of the
 * pause, after paused_at up to now, but not the ones before it that had
 * not fired yet (their jitter delay not over when the pause came): those
 * are owed and fire first, late. Without paused_at (paused since it was
 * created) it fires from now on: from cursor_now (sched_cursor_now).
 */
static void sched_pause_set(const struct schedule *sc, json_t *st, bool paused, bool pause,
                            int64_t now, int64_t cursor_now) {
    if (pause && !paused) state_set_int(st, "paused_at", now);
    if (pause || !paused) return;
    int64_t cursor = state_int(st, "cursor"), at = state_int(st, "paused_at");
    int64_t slot = at ? sched_next_owed(sc, st, &cursor) : 0;
    state_set_int(st, "cursor", cursor);
    if (slot && slot <= at) {
        /* Owed slots, maybe of before an earlier pause still marked: this
         * pause's skip is marked after that one's, and the slots between
         * the two fire in their turn. */
        skip_push(st, at, now);
    } else {
        state_set_int(st, "cursor", cursor > cursor_now ? cursor : cursor_now);
    }
    json_object_del(st, "paused_at");
}

/* Whether two schedule bodies have the same slots and delays: the same
 * cron or interval, zone, start_at, end_at and jitter (null as absent). */
static bool sched_same_timing(json_t *a, json_t *b) {
    static const char *const keys[] = {"cron",     "interval_seconds", "timezone",
                                       "start_at", "end_at",           "jitter_seconds"};
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        json_t *x = json_object_get(a, keys[i]), *y = json_object_get(b, keys[i]);
        if (json_is_null(x)) x = NULL;
        if (json_is_null(y)) y = NULL;
        if ((x || y) && (!x || !y || !json_equal(x, y))) return false;
    }
    return true;
}

/* Parses a stored schedule's body. On failure *e says why (what was
 * checked when it was stored may no longer hold: a zone gone from the
 * system's tzdata, a field an older node does not know); its message is
 * the stored schedule's, ready for a client or last_error. */
static int sched_parse(const struct store_doc *d, struct schedule *sc, bool *paused,
                       struct tm_error *e) {
    json_t *body = json_loads(d->body, 0, NULL);
    struct tm_error why;
    err_clear(&why);
    int rc = schedule_parse(body, sc, &why);
    json_t *st = state_load(d->state);
    *paused = json_is_true(json_object_get(st, "paused"));
    json_decref(st);
    json_decref(body);
    if (rc) {
        err_set(e, TM_ECONFLICT, why.field, "the stored schedule '%.64s' cannot be read: %s%s%s",
                d->name ? d->name : d->id, why.field[0] ? "its '" : "", why.field,
                why.field[0] ? "' field: " : "");
        size_t n = strlen(e->message);
        snprintf(e->message + n, sizeof e->message - n, "%s", why.message);
        fprintf(stderr, "taskmill: schedule '%s': %s\n", d->id, e->message);
    }
    return rc;
}

/* Keeps only the runs that are not finished. */
static int active_refresh(struct store *s, json_t *st) {
    json_t *act = json_object_get(st, "active"), *keep = json_array();
    size_t i;
    json_t *v;
    json_array_foreach(act, i, v) {
        struct task *t = NULL;
        int rc = store_base_of(s)->backend->load(s, json_string_value(v), &t);
        if (rc && rc != TM_ENOT_FOUND) {
            json_decref(keep);
            return rc;
        }
        if (t && !task_is_terminal(t)) json_array_append(keep, v);
        task_free(t);
    }
    json_object_set_new(st, "active", keep);
    return 0;
}

/*
 * The schedule's runs not finished, as the overlap policy must see them:
 * every task it launched that is not terminal (tasks.schedule_id, read in
 * the batch's transaction, so with what the batch wrote), oldest first, at
 * most RUNS_MAX, and the ones its refreshed state.active remembers that
 * the read did not find (tasks that name no schedule: launched by a node
 * of the version before, during a rolling upgrade). *ids is malloc'd.
 * The schedule's row is locked by the batch (sched_due, doc_load: FOR
 * UPDATE), so no other node launches a run of it until this one commits.
 */
static int sched_runs(struct store *s, const char *sched_id, const json_t *st,
                      char (**ids)[ID_LEN + 1], size_t *n) {
    size_t cap = RUNS_MAX + ACTIVE_MAX;
    *ids = xcalloc(cap, sizeof **ids);
    int rc = store_base_of(s)->backend->sched_runs(s, sched_id, true, RUNS_MAX, *ids, n);
    if (rc) return rc;
    size_t i, nq = *n;
    json_t *v;
    json_array_foreach(json_object_get(st, "active"), i, v) {
        const char *id = json_string_value(v);
        bool known = !id || !id[0];
        for (size_t k = 0; k < nq && !known; k++)
            known = strcmp((*ids)[k], id) == 0;
        if (!known && *n < cap) snprintf((*ids)[(*n)++], ID_LEN + 1, "%s", id);
    }
    return 0;
}

int store_schedule_runs(struct store *s, const struct store_doc *d, size_t max,
                        char (*ids)[ID_LEN + 1], size_t *n, struct tm_error *e) {
    *n = 0;
    int rc = store_base_of(s)->backend->sched_runs(s, d->id, false, max, ids, n);
    if (rc) return err_set(e, rc, "", "cannot read the runs of schedule '%.64s'", d->name);
    json_t *st = json_loads(d->state ? d->state : "{}", 0, NULL);
    size_t i, nq = *n;
    json_t *v;
    json_array_foreach(json_object_get(st, "active"), i, v) {
        const char *id = json_string_value(v);
        if (*n >= max || !id_is_valid(id)) continue;
        bool known = false;
        for (size_t k = 0; k < nq && !known; k++)
            known = strcmp(ids[k], id) == 0;
        struct task *t = NULL;
        if (!known) {
            rc = store_task_get(s, d->ns, id, &t, e);
            if (rc && rc != TM_ENOT_FOUND) break;
            rc = 0;
            if (t && !task_is_terminal(t)) memcpy(ids[(*n)++], id, ID_LEN + 1);
            task_free(t);
        }
    }
    json_decref(st);
    return rc;
}

/* Launches one slot: records it, applies the overlap policy, creates the task. */
static int fire_one(struct store *s, struct batch *b, struct store_doc *d,
                    const struct schedule *sc, json_t *st, int64_t slot, const char *kind,
                    int64_t now, char task_id[ID_LEN + 1]) {
    const struct store_backend *be = store_base_of(s)->backend;
    task_id[0] = '\0';
    int rc = be->fire_exists(s, d->id, slot);
    if (rc == 0) return TM_ECONFLICT; /* fired already: once per slot */
    if (rc != TM_ENOT_FOUND) return rc;
    struct schedule_fire f = {.slot = slot, .at = now};
    snprintf(f.kind, sizeof f.kind, "%s", kind);
    snprintf(f.outcome, sizeof f.outcome, "created");
    if ((rc = active_refresh(s, st))) return rc;
    json_t *act = json_object_get(st, "active");
    bool manual = strcmp(kind, "trigger") == 0 || strcmp(kind, "backfill") == 0;
    if (!manual && sc->overlap != SCHEDULE_OVERLAP_ALLOW_ALL) {
        char(*runs)[ID_LEN + 1] = NULL;
        size_t nruns = 0;
        rc = sched_runs(s, d->id, st, &runs, &nruns);
        if (rc == 0 && ((sc->overlap == SCHEDULE_OVERLAP_SKIP && nruns > 0) ||
                        (sc->overlap == SCHEDULE_OVERLAP_BUFFER_ONE && nruns > 1))) {
            snprintf(f.outcome, sizeof f.outcome, "skipped");
        } else if (rc == 0 && sc->overlap == SCHEDULE_OVERLAP_CANCEL_RUNNING && nruns > 0) {
            /* Oldest first, RUNS_MAX (and the remembered ones) a slot: the
             * rest, if ever so many, at the slots after. */
            for (size_t i = 0; rc == 0 && i < nruns; i++)
                rc = store_batch_cancel(s, b, runs[i], now);
            json_array_clear(act);
            snprintf(f.outcome, sizeof f.outcome, "cancelled_previous");
        }
        free(runs);
        if (rc) return rc;
    }
    char error[256] = "";
    if (strcmp(f.outcome, "skipped") != 0) {
        struct store_doc def = {0};
        bool have_def = false;
        if (sc->definition[0]) {
            rc = be->doc_load(s, STORE_DOC_DEFINITION, d->ns, sc->definition, &def);
            if (rc == TM_ENOT_FOUND)
                snprintf(error, sizeof error,
                         "definition '%.128s' not found in namespace '%.64s' (deleted or "
                         "renamed?): point the schedule at one with PUT",
                         sc->definition, d->ns);
            else if (rc)
                return rc;
            have_def = rc == 0;
        }
        if (!error[0]) {
            json_t *db = have_def ? json_loads(def.body, 0, NULL) : NULL;
            json_t *tb =
                schedule_task_body(db, have_def ? def.id : NULL, sc->task, sc->params, d->name);
            json_decref(db);
            struct task *t = NULL;
            struct tm_error e;
            err_clear(&e);
            rc = store_make_task(s, tb, d->ns, &t, &e);
            json_decref(tb);
            if (rc == 0) {
                memcpy(t->schedule_id, d->id, ID_LEN + 1); /* its runs: sched_runs */
                rc = store_batch_create(s, b, t, now, &e, task_id);
                if (store_batch_has_failed(b)) {
                    store_doc_release(&def);
                    return TM_EINTERNAL;
                }
            }
            if (rc) snprintf(error, sizeof error, "%s", e.message[0] ? e.message : "cannot launch");
        }
        store_doc_release(&def);
        if (error[0]) {
            snprintf(f.outcome, sizeof f.outcome, "error");
            json_object_set_new(st, "last_error", json_string(error));
        }
    }
    memcpy(f.task_id, task_id, ID_LEN + 1);
    rc = be->fire_insert(s, d->id, &f);
    if (rc == TM_ECONFLICT) return TM_ERETRY; /* another node fired it meanwhile: start over */
    if (rc) return rc;
    if (task_id[0]) {
        json_array_append_new(act, json_string(task_id));
        while (json_array_size(act) > ACTIVE_MAX)
            json_array_remove(act, 0);
        json_object_set_new(st, "last_task_id", json_string(task_id));
    }
    json_object_set_new(st, "last_outcome", json_string(f.outcome));
    if (!error[0]) json_object_del(st, "last_error"); /* the last error is the last outcome's */
    state_set_int(st, "last_slot", slot);
    state_set_int(st, "last_fire_at", now);
    state_set_int(st, "fires", state_int(st, "fires") + 1);
    return 0;
}

/* Fires one due schedule (locked): missed slots counted, due ones fired.
 * How late a slot is (missed, or a catch-up) is judged by late_now: this
 * node's clock, or the database's (sched_offset) when that is
 * behind it. By its own clock a node 5 s ahead of the others found their
 * on-time slots 5 s late, and with a catch-up window under that counted
 * them missed, never fired; a node behind keeps its own, or it would find
 * its own on-time fires late. When each slot is due stays this node's
 * clock (next_at is written and compared by it). */
static int fire_schedule(struct store *s, struct batch *b, const char *id, int64_t now,
                         int64_t late_now) {
    const struct store_backend *be = store_base_of(s)->backend;
    struct store_doc d = {0};
    int rc = be->doc_load(s, STORE_DOC_SCHEDULE, NULL, id, &d);
    if (rc == TM_ENOT_FOUND) return 0;
    if (rc) return rc;
    if (!d.next_at || d.next_at > now) { /* another node was first */
        store_doc_release(&d);
        return 0;
    }
    struct schedule sc;
    bool paused;
    struct tm_error e;
    err_clear(&e);
    if (sched_parse(&d, &sc, &paused, &e)) {
        /* Unreadable here, perhaps not on the other nodes (a rolling
         * upgrade: a field or a zone only a newer node knows): left to them
         * as it is, its due time, cursor and state unwritten, so that they
         * fire it on time, and not loaded here again until it has been due
         * for UNREADABLE_GRACE_MS (sched_due still locks its row for this
         * batch, as any due row: others look again LOCKED_RETRY_MS on).
         * This node used to write its error and next_at a minute on,
         * holding the slots back on every node. */
        /* The grace is judged on the database's clock (late_now): next_at
         * was written by another node, on its own clock, and a node ahead
         * of the others by more than the grace would otherwise find it
         * over as soon as the schedule is due. */
        if (be->shared && late_now < d.next_at + UNREADABLE_GRACE_MS) {
            store_sched_hold(s, d.id, now + (d.next_at + UNREADABLE_GRACE_MS - late_now));
            store_doc_release(&d);
            return 0;
        }
        /* Unreadable now on every node (or the only one), maybe not for
         * good (a zone gone from tzdata until tzdata-legacy is installed, a
         * zone file not opened this once, a field only a newer node knows):
         * shown as an error and tried again a minute on, so that it fires
         * again by itself once the cause is gone. Its cursor stays, so the
         * slots in between are caught up or counted missed as after a
         * downtime. */
        json_t *st = state_load(d.state);
        json_object_set_new(st, "last_outcome", json_string("error"));
        json_object_set_new(st, "last_error", json_string(e.message));
        state_store(&d, st);
        json_decref(st);
        store_count_schedule_unreadable(s);
        d.next_at = now + UNREADABLE_RETRY_MS;
        rc = be->doc_write(s, STORE_DOC_SCHEDULE, &d, false);
        store_doc_release(&d);
        return rc;
    }
    json_t *st = state_load(d.state);
    int64_t cursor = state_int(st, "cursor");
    /* A slot is missed only when it is later than its catch-up window on top
     * of its jitter and a second: an on-time fire comes after its slot by its
     * jitter and the writer's wake-up, which catchup_seconds 0 must not count. */
    int64_t horizon = late_now - sc.catchup_ms - sc.jitter_ms - 1000, missed = 0, slot;
    if (!sc.has_cron) {
        /* An interval's slots are counted, not walked: exact after any
         * downtime. Run by run: before each resumed pause's skipped slots
         * and after the last. */
        for (int k = 0; k <= SKIPS_MAX + 1; k++) {
            slot = sched_next_owed(&sc, st, &cursor);
            int64_t last = sc.has_end && sc.end_at < horizon - 1 ? sc.end_at : horizon - 1;
            if (state_int(st, "skip_to") && state_int(st, "skip_after") < last)
                last = state_int(st, "skip_after");
            if (!slot || slot > last) break;
            int64_t n = (last - slot) / sc.interval_ms + 1;
            missed += n;
            cursor = slot + (n - 1) * sc.interval_ms;
        }
    } else {
        for (int i = 0;
             i < MISSED_SCAN_MAX && (slot = sched_next_owed(&sc, st, &cursor)) && slot < horizon;
             i++) {
            missed++;
            cursor = slot;
        }
        if (missed == MISSED_SCAN_MAX && cursor < horizon - 1) cursor = horizon - 1;
    }
    if (missed) {
        state_set_int(st, "missed", state_int(st, "missed") + missed);
        store_count_schedules(s, 0, missed);
    }
    /* In slot order, while due: a later slot due sooner waits for this one. */
    for (int i = 0; i < FIRE_MAX_PER_PASS && !paused &&
                    (slot = sched_next_owed(&sc, st, &cursor)) && slot_due(&sc, d.id, slot) <= now;
         i++) {
        char task_id[ID_LEN + 1];
        /* Late by more than its jitter and a second: a slot missed while down. */
        const char *kind = late_now - slot > sc.jitter_ms + 1000 ? "catchup" : "slot";
        rc = fire_one(s, b, &d, &sc, st, slot, kind, now, task_id);
        if (rc && rc != TM_ECONFLICT) goto out;
        if (rc == 0) store_count_schedules(s, 1, 0);
        cursor = slot;
    }
    state_set_int(st, "cursor", cursor);
    d.next_at = sched_next_at(d.id, &sc, paused, st);
    state_store(&d, st);
    if (d.next_at && d.next_at <= now) d.next_at = now + 1; /* more than one pass holds */
    d.updated_at = now;
    rc = be->doc_write(s, STORE_DOC_SCHEDULE, &d, false);
out:
    json_decref(st);
    schedule_release(&sc);
    store_doc_release(&d);
    return rc;
}

int64_t store_schedules_fire(struct store *s, struct batch *b, int64_t now) {
    const struct store_backend *be = store_base_of(s)->backend;
    char ids[64][ID_LEN + 1];
    size_t n = 0;
    int rc = be->sched_due(s, now, ids, 64, &n);
    int64_t off = sched_offset(s), late_now = off < 0 ? now + off : now;
    size_t held = 0;
    for (size_t i = 0; rc == 0 && i < n; i++) {
        if (store_sched_is_held(s, ids[i], now))
            held++;
        else
            rc = fire_schedule(s, b, ids[i], now, late_now);
    }
    int64_t next = 0;
    if (rc == 0) rc = be->sched_next_at(s, &next);
    if (rc) {
        store_batch_failed(b, rc);
        return 0;
    }
    /* Fewer due than asked for, and some still due: those are rows other
     * transactions hold (SKIP LOCKED passed them; each one fired here has
     * its next_at after now), or ones this node cannot read and leaves to
     * the others (store_sched_hold). Looked at again a little later, not at
     * once and again and again while the lock or the hold lasts. */
    if (be->shared && (n < 64 || held == n) && next && next <= now) next = now + LOCKED_RETRY_MS;
    return next;
}

/* ---- The API's ops ---- */

/* Where a stored schedule's slots count from: its start_at, else its creation. */
static int64_t sched_anchor_of(const struct store_doc *d) {
    json_t *body = json_loads(d->body, 0, NULL);
    const char *start = json_string_value(json_object_get(body, "start_at"));
    int64_t at = 0;
    if (!start || time_parse_rfc3339(start, &at)) at = d->created_at;
    json_decref(body);
    return at;
}

static int doc_put(struct store *s, struct store_op *op, int64_t now) {
    const struct store_backend *be = store_base_of(s)->backend;
    struct store_doc *d = op->doc;
    bool create = op->flag; /* not d->id: a batch applied again has set it */
    struct store_doc old = {0};
    int rc;
    if (!create) {
        rc = be->doc_load(s, op->doc_kind, op->ns, d->id, &old);
        if (rc == TM_ENOT_FOUND)
            return err_set(&op->err, rc, "", "%s '%.64s' not found", doc_noun(op->doc_kind), d->id);
        if (rc) return rc;
        d->created_at = old.created_at;
        free(d->ns);
        d->ns = xstrdup(old.ns);
    } else {
        id_new(d->id);
        d->created_at = now;
    }
    /* A name another one of the namespace has is refused (checked first, so
     * PostgreSQL's transaction is not aborted by the unique key). By name
     * alone: a name that reads as another one's id is not that one's name
     * (doc_load, which takes an id or a name, found it, and a false 409). */
    char owner[ID_LEN + 1];
    rc = be->doc_name_owner(s, op->doc_kind, d->ns, d->name, owner);
    bool taken = rc == 0 && strcmp(owner, d->id) != 0;
    if (rc && rc != TM_ENOT_FOUND) goto out;
    if (taken) {
        rc = err_set(&op->err, TM_ECONFLICT, "name", "a %s named '%.64s' exists already",
                     doc_noun(op->doc_kind), d->name);
        goto out;
    }
    d->updated_at = now;
    if (op->doc_kind == STORE_DOC_SCHEDULE) {
        json_t *st = state_load(create ? NULL : old.state);
        json_t *body = json_loads(d->body, 0, NULL);
        /* An interval without a start counts from the schedule's creation, or
         * from the start it has: a replace does not move its slots. */
        if (schedule_anchor(body, create ? now : sched_anchor_of(&old))) {
            free(d->body);
            d->body = json_dumps(body, JSON_COMPACT | JSON_SORT_KEYS);
        }
        /* Read as it will fire: an end_at before the start it has now is refused. */
        struct tm_error e;
        err_clear(&e);
        struct schedule sc;
        if (schedule_parse(body, &sc, &e)) {
            json_decref(body);
            json_decref(st);
            rc = err_set(&op->err, TM_EINVALID, e.field, "%s", e.message);
            goto out;
        }
        /* A replace without 'paused' keeps the schedule's pause (and note). */
        json_t *given = json_object_get(body, "paused");
        if (json_is_null(given)) given = NULL; /* null as absent: keeps the pause */
        bool was = json_is_true(json_object_get(st, "paused"));
        bool paused = given ? json_is_true(given) : was;
        json_t *note = json_object_get(body, "note");
        if (json_is_null(note)) note = NULL; /* null as absent: keeps the note */
        json_object_set_new(st, "paused", json_boolean(paused));
        if (note) json_object_set(st, "note", note);
        /* A new schedule, or one whose slots or delays change, fires from now
         * on: no catch-up of its past. A replace that keeps them keeps the
         * cursor, so that a slot whose time has passed and whose delay has
         * not still fires; a pause or resume it makes is one (sched_pause_set). */
        json_t *old_body = create ? NULL : json_loads(old.body, 0, NULL);
        if (create || !json_is_object(old_body) || !sched_same_timing(old_body, body)) {
            state_set_int(st, "cursor", sched_cursor_now(s, now));
            skip_clear(st);
        }
        json_decref(old_body);
        json_decref(body);
        if (!create) sched_pause_set(&sc, st, was, paused, now, sched_cursor_now(s, now));
        d->next_at = sched_next_at(d->id, &sc, paused, st);
        free(d->state);
        d->state = json_dumps(st, JSON_COMPACT);
        json_decref(st);
        schedule_release(&sc);
    }
    /* A rename can still meet the name in a row another node's transaction
     * is inserting: its unique key then refuses the UPDATE when that one
     * commits, which would abort the batch's transaction on PostgreSQL.
     * Under a savepoint it is this op's 409 alone. (An insert does nothing
     * on a conflict.) */
    bool sp = be->shared && !create;
    if (sp && (rc = be->savepoint(s))) goto out;
    rc = be->doc_write(s, op->doc_kind, d, create);
    if (sp && (rc == 0 || rc == TM_ECONFLICT)) {
        int r2 = rc ? be->savepoint_rollback(s) : be->savepoint_release(s);
        if (r2) {
            rc = r2;
            goto out;
        }
    }
    if (rc == 0) op->created = create;
    if (rc == TM_ECONFLICT)
        rc = err_set(&op->err, TM_ECONFLICT, "name", "a %s named '%.64s' exists already",
                     doc_noun(op->doc_kind), d->name);
out:
    store_doc_release(&old);
    return rc;
}

/* A schedule an op changes: its row, its parsed form, whether it was
 * paused before the op, and its state (sched_change_begin to
 * sched_change_end). */
struct sched_change {
    struct store_doc d;
    struct schedule sc;
    bool paused;
    json_t *st;
};

/* Loads and parses the op's schedule and its state, its runs not finished
 * refreshed, so that what the op writes and hands back is current (fills
 * op->err when it is absent); on 0 the caller ends with sched_change_end. */
static int sched_change_begin(struct store *s, struct store_op *op, struct sched_change *c) {
    memset(c, 0, sizeof *c);
    int rc = store_base_of(s)->backend->doc_load(s, STORE_DOC_SCHEDULE, op->ns, op->id, &c->d);
    if (rc == TM_ENOT_FOUND) return err_set(&op->err, rc, "", "schedule '%.64s' not found", op->id);
    if (rc == TM_ECONFLICT)
        return err_set(&op->err, rc, "", "several namespaces have a schedule named '%.64s'",
                       op->id);
    if (rc) return rc;
    /* A body that no longer parses is this op's 409, not the batch's
     * storage failure: the other writes of the batch go on. */
    if ((rc = sched_parse(&c->d, &c->sc, &c->paused, &op->err))) {
        store_doc_release(&c->d);
        return op->err.code;
    }
    c->st = state_load(c->d.state);
    if ((rc = active_refresh(s, c->st))) {
        json_decref(c->st);
        schedule_release(&c->sc);
        store_doc_release(&c->d);
    }
    return rc;
}

/* Writes the changed schedule, state included, when `write` and hands it
 * back to the caller (op->doc); releases c either way. Returns the
 * write's code (0 when nothing was written). */
static int sched_change_end(struct store *s, struct store_op *op, struct sched_change *c,
                            bool write, int64_t now) {
    int rc = 0;
    if (write) {
        state_store(&c->d, c->st);
        c->d.updated_at = now;
        rc = store_base_of(s)->backend->doc_write(s, STORE_DOC_SCHEDULE, &c->d, false);
        if (rc == 0 && op->doc) {
            store_doc_release(op->doc);
            *op->doc = c->d;
            memset(&c->d, 0, sizeof c->d);
        }
    }
    json_decref(c->st);
    schedule_release(&c->sc);
    store_doc_release(&c->d);
    return rc;
}

static int sched_pause(struct store *s, struct store_op *op, int64_t now) {
    struct sched_change c;
    int rc = sched_change_begin(s, op, &c);
    if (rc) return rc;
    json_object_set_new(c.st, "paused", json_boolean(op->flag));
    if (op->note) json_object_set_new(c.st, "note", json_string(op->note));
    sched_pause_set(&c.sc, c.st, c.paused, op->flag, now, sched_cursor_now(s, now));
    c.d.next_at = sched_next_at(c.d.id, &c.sc, op->flag, c.st);
    return sched_change_end(s, op, &c, true, now);
}

static int sched_fire_manual(struct store *s, struct batch *b, struct store_op *op, int64_t now) {
    struct sched_change c;
    int rc = sched_change_begin(s, op, &c);
    if (rc) return rc;
    struct store_doc *d = &c.d;
    struct schedule *sc = &c.sc;
    json_t *st = c.st;
    char task_id[ID_LEN + 1] = "";
    if (op->kind == STORE_OP_SCHED_TRIGGER) {
        /* A trigger's key is the moment asked, or the first millisecond after
         * it that is neither one of the schedule's slots (whose key it would
         * take) nor another trigger's. */
        int64_t key = schedule_off_slot(sc, now);
        while ((rc = fire_one(s, b, d, sc, st, key, "trigger", now, task_id)) == TM_ECONFLICT)
            key = schedule_off_slot(sc, key + 1);
        /* Launched nothing: recorded as a slot's error is (its fire row and
         * the state, written below), and refused naming what failed. */
        if (rc == 0 && !task_id[0]) {
            const char *why = json_string_value(json_object_get(st, "last_error"));
            err_set(&op->err, TM_EINVALID, sc->definition[0] ? "definition" : "task",
                    "the schedule launched nothing: %s", why ? why : "no task");
        }
        if (rc == 0 && task_id[0]) rc = store_base_of(s)->backend->load(s, task_id, &op->task);
    } else {
        int64_t cursor = op->from_ms - 1, slot;
        int n = 0;
        /* Count first: a range too long fires nothing. */
        while ((slot = schedule_next_slot(sc, cursor, NULL)) && slot < op->to_ms &&
               n <= SCHEDULE_BACKFILL_MAX) {
            n++;
            cursor = slot;
        }
        if (n > SCHEDULE_BACKFILL_MAX)
            rc = err_set(&op->err, TM_EINVALID, "to",
                         "the range holds more than %d slots; backfill it in parts",
                         SCHEDULE_BACKFILL_MAX);
        cursor = op->from_ms - 1;
        while (rc == 0 && (slot = schedule_next_slot(sc, cursor, NULL)) && slot < op->to_ms) {
            rc = fire_one(s, b, d, sc, st, slot, "backfill", now, task_id);
            if (rc == TM_ECONFLICT) {
                op->skipped++;
                rc = 0;
            } else if (rc == 0) {
                op->fired++;
            }
            cursor = slot;
        }
    }
    int written = sched_change_end(s, op, &c, rc == 0 && !store_batch_has_failed(b), now);
    return rc ? rc : written;
}

int store_schedule_apply(struct store *s, struct batch *b, struct store_op *op, int64_t now) {
    int rc;
    switch (op->kind) {
    case STORE_OP_DOC_PUT:
        rc = doc_put(s, op, now);
        break;
    case STORE_OP_DOC_DELETE:
        rc = store_base_of(s)->backend->doc_delete(s, op->doc_kind, op->ns, op->id);
        if (rc == TM_ENOT_FOUND)
            rc = err_set(&op->err, rc, "", "%s '%.64s' not found", doc_noun(op->doc_kind), op->id);
        break;
    case STORE_OP_SCHED_PAUSE:
        rc = sched_pause(s, op, now);
        break;
    default:
        rc = sched_fire_manual(s, b, op, now);
        break;
    }
    if (op->err.code) return op->err.code;
    return rc;
}
