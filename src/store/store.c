/*
 * store: the group-commit writer and the domain logic of every write, on
 * top of a backend's ops table (store_int.h).
 *
 * One writer thread owns the backend's write connection. Ops queue under
 * `lock`; the writer takes the whole queue, applies each op in one
 * transaction, runs the sweep (expired leases, waiting tasks that came due)
 * and hands tasks to parked claims, commits once, and only then calls each
 * op's done(). An op whose checks fail changes nothing: every apply
 * function loads and checks first and writes last. A backend failure (disk
 * full, I/O) rolls the whole batch back and fails every op in it.
 *
 * Parked claims and watches live only on the writer thread, so the moment a
 * task becomes ready or changes is seen by the same thread that parks them:
 * no wake-up can be lost between "nothing found" and "waiting". An op that
 * parks, and a parked claim that a batch serves, move between the lists
 * only once the batch has committed, so a batch can be applied again.
 *
 * Several writers (a shared backend: PostgreSQL with N nodes): the backend
 * locks every row it loads, so two nodes never act on one version of a
 * task; a batch that loses a race (serialization failure, deadlock) is
 * rolled back and applied again from its ops, up to STORE_RETRIES times.
 * So that a batch costs a few round trips rather than a few per op, the
 * writer tells the backend up front which tasks its ops load by id
 * (preload), and each claim how many claims of its query the batch still
 * has (store_claim_query.count); PostgreSQL also keeps the batch's updates
 * and writes them together (store_pg.c, "the batch's rows").
 * The events of a batch are numbered and appended as one block just before
 * commit, which makes seq order the commit order. The feed thread tails the
 * event log after every commit, ours or another node's (woken by the
 * backend's announcement, or by a poll when one is lost): it hands the
 * events to the listener in seq order and tells the writer which tasks
 * changed and which queues may have work, so parked claims and watches
 * wake for every node's writes, and the writer looks again for due tasks.
 */
#include "store.h"

#include <ctype.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../common/buf.h"
#include "../common/id.h"
#include "../common/task_json.h"
#include "../common/timeutil.h"
#include "../common/xalloc.h"
#include "store_int.h"

struct store {
    struct store_base base;
    struct store_options opt;

    pthread_t writer;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    struct store_op *queue_head, *queue_tail; /* under lock */
    bool stopping;                            /* under lock */
    bool stopped;                             /* under lock: writer has exited */
    bool writer_started;

    /* Writer thread only. */
    struct store_op *parked_claims; /* FIFO, oldest first */
    struct store_op *parked_watches;
    int64_t next_due;          /* wall ms of the earliest due task; 0 = none known */
    int64_t due_locked_until;  /* due tasks are others' locked rows: not before (shared) */
    struct store_cache *cache; /* store_cache.c; NULL: none (a shared backend, or off) */
    int64_t due_checked;       /* wall ms next_due was last read (shared backends) */
    /* Schedules this node cannot read, left to the nodes that can until
     * `until` (store_sched_hold); "" is a free entry. Room for more than
     * sched_due's 64 a pass: a hold pushed out is loaded, refused and
     * logged again at once (a rolling upgrade can make many unreadable). */
    struct {
        char id[ID_LEN + 1];
        int64_t until;
    } sched_held[256];
    uint64_t rng;
    /* Queue settings read recently (at read_at); emptied when a batch rolls
     * back. A shared backend's entries live a second: another node may set them. */
    struct {
        char name[65];
        struct queue_settings q;
        int64_t read_at;
    } qcache[16];
    int nqcache, qcache_next;

    /* Other nodes' changes, from the feed thread to the writer; under lock. */
    struct store_remote {
        struct store_change *changed;
        size_t nchanged, capchanged;
        char **ready; /* queues with a pending task */
        size_t nready;
        bool due; /* look for due tasks again */
    } remote;

    /* The feed thread (shared backends). */
    pthread_t feed;
    bool feed_started;
    bool feed_stopping; /* under lock */
    bool feed_poke;     /* under lock: we committed events */
    int64_t feed_seq;   /* feed thread: the last seq handed to the listener */
    int64_t clock_next; /* feed thread: monotonic ms of the next clock check */
    bool clock_skewed;  /* feed thread: the last check was past STORE_CLOCK_WARN_MS */
    /* Our own committed batches' events, oldest first, for the feed to hand
     * on without reading them back when nothing came between (under lock). */
    struct feed_local {
        struct store_event *events;
        size_t n;
        size_t deliveries; /* webhook deliveries the batch queued */
        struct feed_local *next;
    } * local_head, *local_tail;

    struct store_stats stats; /* updated by the writer, read under lock */

    /* The event log: called after each commit that appended events. */
    void (*listener)(void *cls, const struct store_commit *c);
    bool (*listener_needs)(void *cls);
    void *listener_cls;
    /* Finished tasks' retention: its next pass (wall ms), and its delete
     * ops not done yet. */
    int64_t next_task_prune;
    _Atomic int task_prune_inflight;
    /* The queues that set a retention of their own, as read at retain_read_at
     * (retain_known: read at all; retain_stale: this writer set a queue's
     * settings since); round: the (queue, phase) pairs of the round of
     * passes under way, read at its start, and round_at: the next to read. */
    struct queue_counts *retain;
    size_t nretain;
    int64_t retain_read_at;
    bool retain_known, retain_stale;
    struct retain_pair *round;
    size_t nround, round_at;
    int64_t next_prune;       /* wall ms of the next retention pass */
    int64_t next_stats_prune; /* wall ms of the next pass over queue_stats */
    int64_t next_fires_prune; /* wall ms of the next pass over schedule_fires */
    int64_t next_fire;        /* wall ms of the earliest schedule fire; 0 = none known */
    int64_t fire_checked;     /* wall ms next_fire was last read (shared backends) */
    int64_t claims_checked;   /* wall ms parked claims last looked again (shared backends) */
    char node[ID_LEN + 1];    /* this process, in the rows only it writes (queue_stats) */
};

/* What one batch changed, for parked ops and the notifications after commit. */
struct batch {
    struct store_op *done_head, *done_tail; /* finished ops, to call done() on */
    struct store_change *changed; /* tasks changed (with their new version), for watches */
    size_t nchanged, capchanged;
    char **ready; /* queues that gained a claimable task */
    size_t nready, capready;
    struct store_op **served; /* parked claims this batch served */
    size_t nserved, capserved;
    bool failed;         /* a backend error: roll everything back */
    int fail_code;       /* TM_ERETRY, TM_EUNAVAILABLE or TM_EINTERNAL */
    struct store_op *op; /* the op being applied; NULL in the sweep */
    /* Claims of the claim being applied's query that the batch still
     * applies, itself included (store_claim_query.count). */
    int claim_count;
    struct store_event *events; /* appended by this batch, in seq order */
    size_t nevents, capevents, deliveries;
    struct store_stat_add *stats; /* queue_stats to add, written just before commit */
    size_t nstats, capstats;
    struct store_count_add *counts; /* task_counts to add, written just before commit */
    size_t ncounts, capcounts;
    /* Retention done in this batch's transaction (store_prune_inline). */
    bool pruned, prune_more;
    int64_t prune_bound, prune_deleted;
};

static const struct store_backend *const store_backends[] = {&store_sqlite_backend,
                                                             &store_pg_backend};

/* How many times a batch that lost a race is applied before its ops fail. */
#define STORE_RETRIES 20
/* The read cache's size unless store_options say (docs/storage.md). */
#define STORE_READ_CACHE_BYTES (64u << 20)
/* Events one retention step deletes (store_prune_events): small enough
 * that a write arriving meanwhile waits a few milliseconds at most (about
 * 4 ms on SQLite for 500 events of 1 KB). */
#define STORE_PRUNE_STEP 500

static const char *const store_status_names[TASK_STATUS_COUNT] = {
    NULL, "success", "warning", "error", "terminated", "temperror",
};

const char *store_status_name(enum task_status st) {
    return (unsigned)st < TASK_STATUS_COUNT ? store_status_names[st] : NULL;
}

enum task_status store_status_parse(const char *name) {
    for (int k = 1; name && k < TASK_STATUS_COUNT; k++)
        if (strcmp(name, store_status_names[k]) == 0) return (enum task_status)k;
    return TASK_STATUS_NONE;
}

static uint32_t store_rand(struct store *s) {
    /* xorshift64*: jitter only, not secrets. */
    s->rng ^= s->rng >> 12;
    s->rng ^= s->rng << 25;
    s->rng ^= s->rng >> 27;
    return (uint32_t)((s->rng * 2685821657736338717ULL) >> 32);
}

static void batch_finish(struct batch *b, struct store_op *op) {
    op->next = NULL;
    if (b->done_tail)
        b->done_tail->next = op;
    else
        b->done_head = op;
    b->done_tail = op;
}

static void changes_add(struct store_change **v, size_t *n, size_t *cap, const char *id,
                        int64_t version) {
    if (*n == *cap) {
        *cap = *cap ? *cap * 2 : 16;
        *v = xrealloc(*v, *cap * sizeof **v);
    }
    memcpy((*v)[*n].id, id, ID_LEN + 1);
    (*v)[(*n)++].version = version;
}

/* A task changed to `version` (INT64_MAX: deleted). */
static void batch_note_changed(struct batch *b, const char *id, int64_t version) {
    changes_add(&b->changed, &b->nchanged, &b->capchanged, id, version);
}

static void batch_note_ready(struct batch *b, const char *queue) {
    for (size_t i = 0; i < b->nready; i++)
        if (strcmp(b->ready[i], queue) == 0) return;
    if (b->nready == b->capready) {
        b->capready = b->capready ? b->capready * 2 : 4;
        b->ready = xrealloc(b->ready, b->capready * sizeof *b->ready);
    }
    b->ready[b->nready++] = xstrdup(queue);
}

/* Forgets what an attempt at the batch did, keeping the buffers. */
static void batch_reset(struct batch *b) {
    for (size_t i = 0; i < b->nevents; i++)
        store_event_release(&b->events[i]);
    for (size_t i = 0; i < b->nready; i++)
        free(b->ready[i]);
    for (size_t i = 0; i < b->nstats; i++) {
        free(b->stats[i].queue);
        free(b->stats[i].ns);
    }
    for (size_t i = 0; i < b->ncounts; i++) {
        free(b->counts[i].queue);
        free(b->counts[i].ns);
    }
    b->ncounts = 0;
    b->nevents = b->deliveries = b->nready = b->nchanged = b->nserved = b->nstats = 0;
    b->done_head = b->done_tail = NULL;
    b->failed = false;
    b->fail_code = 0;
    b->op = NULL;
    b->pruned = b->prune_more = false;
    b->prune_bound = b->prune_deleted = 0;
}

static void batch_release(struct batch *b) {
    batch_reset(b);
    free(b->events);
    free(b->changed);
    free(b->ready);
    free(b->served);
    free(b->stats);
    free(b->counts);
}

/*
 * Adds n to the batch's task_counts entry of t's namespace and queue with
 * this phase and paused flag. GET /v1/queues reads these rows: every
 * insert, delete, and change of phase or paused goes through here, in the
 * batch that makes it (store_save_paused, the delete in
 * store_apply_control).
 */
static void batch_count(struct batch *b, const struct task *t, enum task_phase phase, bool paused,
                        int64_t n) {
    for (size_t i = 0; i < b->ncounts; i++) {
        struct store_count_add *a = &b->counts[i];
        if (a->phase == phase && a->paused == paused && strcmp(a->queue, t->queue) == 0 &&
            strcmp(a->ns, t->namespace) == 0) {
            a->n += n;
            return;
        }
    }
    if (b->ncounts == b->capcounts) {
        b->capcounts = b->capcounts ? b->capcounts * 2 : 8;
        b->counts = xrealloc(b->counts, b->capcounts * sizeof *b->counts);
    }
    b->counts[b->ncounts++] = (struct store_count_add){.ns = xstrdup(t->namespace),
                                                       .queue = xstrdup(t->queue),
                                                       .phase = phase,
                                                       .paused = paused,
                                                       .n = n};
}

static int count_add_cmp(const void *pa, const void *pb) {
    const struct store_count_add *a = pa, *b = pb;
    int c = strcmp(a->ns, b->ns);
    if (!c) c = strcmp(a->queue, b->queue);
    if (!c) c = (int)a->phase - (int)b->phase;
    if (!c) c = (int)a->paused - (int)b->paused;
    return c;
}

/* Writes the batch's task_counts changes, sorted, the entries that net
 * to nothing left out. */
static int batch_counts_write(struct store *s, struct batch *b) {
    size_t k = 0;
    for (size_t i = 0; i < b->ncounts; i++) {
        if (b->counts[i].n == 0) {
            free(b->counts[i].ns);
            free(b->counts[i].queue);
            continue;
        }
        b->counts[k++] = b->counts[i];
    }
    b->ncounts = k;
    if (k == 0) return 0;
    qsort(b->counts, k, sizeof *b->counts, count_add_cmp);
    return s->base.backend->counts_add(s, b->counts, k);
}

/* The batch's queue_stats row of t's queue and namespace at now's minute. */
static struct queue_stat *batch_stat(struct batch *b, const struct task *t, int64_t now) {
    int64_t minute = now / 60000;
    for (size_t i = 0; i < b->nstats; i++) {
        struct store_stat_add *a = &b->stats[i];
        if (a->st.minute == minute && strcmp(a->queue, t->queue) == 0 &&
            strcmp(a->ns, t->namespace) == 0)
            return &a->st;
    }
    if (b->nstats == b->capstats) {
        b->capstats = b->capstats ? b->capstats * 2 : 4;
        b->stats = xrealloc(b->stats, b->capstats * sizeof *b->stats);
    }
    struct store_stat_add *a = &b->stats[b->nstats++];
    memset(a, 0, sizeof *a);
    a->queue = xstrdup(t->queue);
    a->ns = xstrdup(t->namespace);
    a->st.minute = minute;
    return &a->st;
}

/* What a change adds to its queue's stats, and to the task's attempts. */
static void store_note_change(struct batch *b, struct task *t, int before, int64_t now) {
    enum task_phase after = t->phase;
    if (before == (int)after) return;
    if (before < 0) {
        batch_stat(b, t, now)->submitted++;
        return;
    }
    bool ran = before == TASK_RUNNING || before == TASK_STOPPING;
    bool runs = after == TASK_RUNNING || after == TASK_STOPPING;
    if (before == TASK_PENDING && after == TASK_RUNNING) {
        struct queue_stat *st = batch_stat(b, t, now);
        int64_t wait = t->ready_at && now > t->ready_at ? now - t->ready_at : 0;
        st->latency_sum += wait;
        st->latency_n++;
        if (wait > st->latency_max) st->latency_max = wait;
        task_attempt_begin(t, now);
    } else if (ran && !runs) {
        const char *cause = store_event_cause(b->op, before), *outcome = cause;
        const char *error = NULL;
        if (after == TASK_CANCELLED) {
            outcome = "cancelled";
        } else if (strcmp(cause, "complete") == 0) {
            outcome = "completed";
        } else if (strcmp(cause, "fail") == 0) {
            outcome = after == TASK_FAILED ? "failed" : "retry";
            error = t->error;
        } else if (strcmp(cause, "release") == 0) {
            outcome = "released";
        } else if (strcmp(cause, "lease_expired") == 0) {
            error = t->error;
        }
        task_attempt_end(t, outcome, error, now);
    }
    if (after == TASK_COMPLETED) batch_stat(b, t, now)->completed++;
    if (after == TASK_FAILED) batch_stat(b, t, now)->failed++;
}

/* Keeps the event of a change; the batch appends its events just before commit. */
static int store_log_event(struct store *s, struct batch *b, const struct task *t, const char *kind,
                           const char *cause, int64_t now) {
    if (b->nevents == b->capevents) {
        b->capevents = b->capevents ? b->capevents * 2 : 16;
        b->events = xrealloc(b->events, b->capevents * sizeof *b->events);
    }
    struct store_event *ev = &b->events[b->nevents++];
    bool reduced = store_event_fill(ev, t, kind, cause, now, s->opt.event_task_max_bytes);
    if (b->op && b->op->actor) store_copy_str(ev->actor, sizeof ev->actor, b->op->actor);
    /* The op's first task (a claim's, a completion's, not its parent's),
     * for its reply: the same bytes task_json_write would give. */
    struct store_op *op = b->op;
    if (op && (!op->task_json || strcmp(op->task_json_id, t->id) == 0)) {
        free(op->task_json);
        op->task_json = reduced ? NULL : xstrdup(ev->task_json);
        memcpy(op->task_json_id, t->id, sizeof op->task_json_id);
        op->task_json_version = t->version;
    }
    return 0;
}

/* Marks the batch failed by backend code rc (kept: the first one decides). */
static void batch_fail(struct batch *b, int rc) {
    if (!b->failed) b->fail_code = rc == TM_ERETRY || rc == TM_EUNAVAILABLE ? rc : TM_EINTERNAL;
    b->failed = true;
}

/* The error an op gets when its batch failed for good. */
static int store_fail_op(struct store_op *op, int code) {
    if (code == TM_EUNAVAILABLE)
        return err_set(&op->err, TM_EUNAVAILABLE, "", "storage unavailable; try again");
    return err_set(&op->err, TM_EINTERNAL, "", "storage error");
}

/* A backend failure: the batch will be rolled back (and maybe applied again). */
static int store_backend_failed(struct batch *b, struct store_op *op, int rc) {
    batch_fail(b, rc);
    return store_fail_op(op, b->fail_code);
}

/* Loads a task for a write, scoped to the op's namespace. */
static int store_load_scoped(struct store *s, struct store_op *op, const char *id,
                             struct task **out) {
    int rc = s->base.backend->load(s, id, out);
    if (rc == 0 && op->ns && strcmp((*out)->namespace, op->ns) != 0) {
        task_free(*out);
        *out = NULL;
        rc = TM_ENOT_FOUND;
    }
    if (rc == TM_ENOT_FOUND) return err_set(&op->err, rc, "", "task '%.64s' not found", id);
    return rc;
}

static int store_save_one(struct store *s, struct batch *b, struct task *t, int before,
                          bool paused_before, const char *cause, int64_t now);

/* Moves a child from one bucket of its parent's counts to another; an
 * awaiting parent whose last open child ended completes here, in the same
 * transaction as the child's change, and so on up: a loop, not a
 * recursion, since a chain of awaiting parents has no depth limit and the
 * writer's stack has one. */
static int store_parent_adjust(struct store *s, struct batch *b, const struct task *child, int from,
                               int to, int64_t now) {
    struct task *done = NULL; /* the last parent completed: the next child */
    int rc = 0;
    while (child->parent_id[0] && from != to) {
        struct task *p = NULL;
        rc = s->base.backend->load(s, child->parent_id, &p);
        if (rc == TM_ENOT_FOUND) { /* the parent was deleted: the child lives on */
            rc = 0;
            break;
        }
        if (rc) break;
        int64_t *slot[] = {&p->child_pending, &p->child_processing, &p->child_processed,
                           &p->child_ended};
        if (from >= 0 && *slot[from] > 0) (*slot[from])--;
        if (to >= 0) (*slot[to])++;
        p->progress.updated_at = now;
        if (!p->awaiting_children || task_has_open_children(p)) {
            task_touch(p, now);
            rc = s->base.backend->update(s, p);
            if (rc == 0) batch_note_changed(b, p->id, p->version);
            if (rc == 0) rc = store_log_event(s, b, p, "task.progress", "child", now);
            task_free(p);
            break;
        }
        enum task_phase before = p->phase;
        rc = task_children_done(p, now, NULL);
        /* The parent's own change: its child's roll-up, not the child's op. */
        if (rc == 0) rc = store_save_one(s, b, p, (int)before, p->paused, "child", now);
        if (rc) {
            task_free(p);
            break;
        }
        from = (int)task_bucket_of(before);
        to = (int)task_bucket_of(p->phase);
        task_free(done);
        child = done = p;
    }
    task_free(done);
    return rc;
}

/*
 * Whether a child that retention deletes keeps its place in its parent's
 * counts: while the parent is not finished they are its progress, and
 * whether it completes as WARNING (a child failed or was cancelled), so a
 * pruned child goes on counting there. A parent finished or gone has no
 * more use for them (a DELETE of a child takes it out in any case).
 */
static int store_parent_keeps_child(struct store *s, const struct task *child, bool *keep) {
    *keep = false;
    if (!child->parent_id[0]) return 0;
    struct task *p = NULL;
    int rc = s->base.backend->load(s, child->parent_id, &p);
    if (rc == TM_ENOT_FOUND) return 0;
    if (rc == 0) *keep = !task_is_terminal(p);
    task_free(p);
    return rc;
}

/*
 * Writes a changed task and does what follows from the change: the
 * parent's counts, the due time, waking claimers, watchers.
 * `before` is the phase before the change, or -1 for a new task;
 * `paused_before` the paused flag as loaded; `cause` the event's cause
 * (NULL: the op's).
 */
static int store_save_as(struct store *s, struct batch *b, struct task *t, int before,
                         bool paused_before, const char *cause, int64_t now) {
    int rc = store_save_one(s, b, t, before, paused_before, cause, now);
    if (rc) return rc;
    int from = before < 0 ? -1 : (int)task_bucket_of((enum task_phase)before);
    return store_parent_adjust(s, b, t, from, (int)task_bucket_of(t->phase), now);
}

static int store_save(struct store *s, struct batch *b, struct task *t, int before, int64_t now) {
    return store_save_as(s, b, t, before, t->paused, NULL, now);
}

/* store_save, for a change that may also have flipped the paused flag
 * (paused_before is the flag as loaded). */
static int store_save_paused(struct store *s, struct batch *b, struct task *t, int before,
                             bool paused_before, int64_t now) {
    return store_save_as(s, b, t, before, paused_before, NULL, now);
}

/* store_save_as but for the parent's counts (store_parent_adjust). */
static int store_save_one(struct store *s, struct batch *b, struct task *t, int before,
                          bool paused_before, const char *cause, int64_t now) {
    if (before < 0) {
        batch_count(b, t, t->phase, t->paused, 1);
    } else if (before != (int)t->phase || paused_before != t->paused) {
        batch_count(b, t, (enum task_phase)before, paused_before, -1);
        batch_count(b, t, t->phase, t->paused, 1);
    }
    store_note_change(b, t, before, now);
    int rc = before < 0 ? s->base.backend->insert(s, t) : s->base.backend->update(s, t);
    if (rc) return rc;
    batch_note_changed(b, t->id, t->version);
    char kind[24];
    rc = store_log_event(s, b, t, store_event_kind(b->op, before, t, kind),
                         cause ? cause : store_event_cause(b->op, before), now);
    if (rc) return rc;
    int64_t due = task_due_at(t);
    if (due && (!s->next_due || due < s->next_due)) s->next_due = due;
    if (t->phase == TASK_PENDING && !t->paused) batch_note_ready(b, t->queue);
    return 0;
}

/* The settings of a queue: cached, stored, or the defaults. */
static int store_queue_settings(struct store *s, const char *queue, struct queue_settings *out,
                                int64_t now) {
    int slot = -1;
    for (int i = 0; i < s->nqcache; i++) {
        if (strcmp(s->qcache[i].name, queue) != 0) continue;
        if (!s->base.backend->shared || now - s->qcache[i].read_at < 1000) {
            *out = s->qcache[i].q;
            return 0;
        }
        slot = i; /* stale: read again into the same slot */
    }
    int rc = s->base.backend->queue_get(s, queue, out);
    if (rc == TM_ENOT_FOUND) {
        queue_settings_default(out);
        rc = 0;
    }
    if (rc) return rc;
    if (slot < 0) slot = s->nqcache < 16 ? s->nqcache++ : s->qcache_next++ % 16;
    snprintf(s->qcache[slot].name, sizeof s->qcache[slot].name, "%s", queue);
    s->qcache[slot].q = *out;
    s->qcache[slot].read_at = now;
    return 0;
}

static int store_apply_queue_set(struct store *s, struct batch *b, struct store_op *op) {
    int rc = s->base.backend->queue_put(s, op->queue, &op->queue_settings);
    if (rc) return store_backend_failed(b, op, rc);
    s->retain_stale = true; /* read again after the commit */
    for (int i = 0; i < s->nqcache; i++)
        if (strcmp(s->qcache[i].name, op->queue) == 0) {
            bool paused = s->qcache[i].q.paused; /* settings leave the pause alone */
            s->qcache[i].q = op->queue_settings;
            s->qcache[i].q.paused = paused;
        }
    return 0;
}

/* Pauses or resumes a queue; its other settings stay. Resuming wakes its parked claims. */
static int store_apply_queue_pause(struct store *s, struct batch *b, struct store_op *op) {
    bool was = false;
    int rc = s->base.backend->queue_pause(s, op->queue, op->queue_settings.paused, &was);
    if (rc) return store_backend_failed(b, op, rc);
    op->changed = was != op->queue_settings.paused;
    for (int i = 0; i < s->nqcache; i++)
        if (strcmp(s->qcache[i].name, op->queue) == 0)
            s->qcache[i].q.paused = op->queue_settings.paused;
    if (!op->queue_settings.paused) batch_note_ready(b, op->queue);
    return 0;
}

static int store_apply_create_once(struct store *s, struct batch *b, struct store_op *op,
                                   int64_t now) {
    const struct store_backend *be = s->base.backend;
    bool *repeat = xcalloc(op->ntasks, sizeof *repeat);
    int rc = 0;
    /* Check everything first, so that a refusal writes nothing. */
    for (size_t i = 0; i < op->ntasks && rc == 0; i++) {
        struct task *t = op->tasks[i];
        if (t->idempotency_key) {
            char id[ID_LEN + 1];
            rc = be->find_idempotent(s, t->namespace, t->idempotency_key, id);
            if (rc == 0) {
                struct task *old = NULL;
                rc = be->load(s, id, &old);
                if (rc == 0) {
                    task_free(t);
                    op->tasks[i] = old;
                    repeat[i] = true;
                    continue;
                }
            }
            if (rc != TM_ENOT_FOUND) break;
            rc = 0;
        }
        if (t->parent_id[0]) {
            struct task *p = NULL;
            rc = be->load(s, t->parent_id, &p);
            if (rc == 0 && strcmp(p->namespace, t->namespace) != 0) rc = TM_ENOT_FOUND;
            task_free(p);
            if (rc == TM_ENOT_FOUND) {
                rc = err_set(&op->err, TM_EINVALID, "parent_id", "parent task '%.64s' not found",
                             t->parent_id);
                goto out;
            }
        }
    }
    if (rc) goto backend;
    for (size_t i = 0; i < op->ntasks; i++) {
        struct task *t = op->tasks[i];
        if (repeat[i]) continue;
        struct queue_settings qs;
        if ((rc = store_queue_settings(s, t->queue, &qs, now))) goto backend;
        task_apply_queue_settings(t, &qs);
        id_new(t->id);
        t->created_at = t->updated_at = now;
        t->version = 1;
        if (t->scheduled_at > now) {
            t->phase = TASK_WAITING;
        } else {
            t->phase = TASK_PENDING;
            t->ready_at = now;
        }
        rc = store_save(s, b, t, -1, now);
        if (rc) goto backend;
        op->created = true;
    }
    op->task = op->tasks[0];
    goto out;
backend:
    /* Another node took an idempotency key between our check and our
     * insert: the caller rolls back to its savepoint and looks again. */
    if (rc == TM_ECONFLICT && be->shared) goto out;
    rc = store_backend_failed(b, op, rc);
out:
    free(repeat);
    return rc;
}

/* How many of op's tasks carry an idempotency key. */
static size_t store_op_keyed(const struct store_op *op) {
    size_t n = 0;
    for (size_t i = 0; i < op->ntasks; i++)
        if (op->tasks[i]->idempotency_key) n++;
    return n;
}

/*
 * Submits. On a shared backend a submit with an idempotency key runs under
 * a savepoint: when another node inserts the same key first, our insert is
 * refused (the batch's transaction stays usable), the savepoint undoes the
 * op's writes, and the op runs again, now finding the other node's task.
 * Each race lost settles one key, so an op of n keyed tasks runs at most
 * n + 2 times; past that (a key's task deleted between tries, say) the
 * whole batch is applied again (TM_ERETRY), as after a deadlock: the
 * client is not refused for a race it did not make.
 */
static int store_apply_create(struct store *s, struct batch *b, struct store_op *op, int64_t now) {
    const struct store_backend *be = s->base.backend;
    size_t keyed = store_op_keyed(op);
    if (!be->shared || !keyed) return store_apply_create_once(s, b, op, now);
    /* The batch's task_counts as they were, to undo this op's with its
     * savepoint (entries it added are dropped, the others' n restored). */
    size_t ncounts = b->ncounts;
    int64_t *counts_n = xcalloc(ncounts + 1, sizeof *counts_n);
    for (size_t i = 0; i < ncounts; i++)
        counts_n[i] = b->counts[i].n;
    /* And its queue_stats rows, likewise (a submit counts as submitted). */
    size_t nstats = b->nstats;
    struct queue_stat *stats_st = xcalloc(nstats + 1, sizeof *stats_st);
    for (size_t i = 0; i < nstats; i++)
        stats_st[i] = b->stats[i].st;
    int rc;
    for (size_t attempt = 0;; attempt++) {
        size_t nevents = b->nevents;
        if ((rc = be->savepoint(s))) {
            rc = store_backend_failed(b, op, rc);
            break;
        }
        rc = store_apply_create_once(s, b, op, now);
        if (rc != TM_ECONFLICT || op->err.code) {
            /* A failed batch (a deadlock, a lost connection) is rolled back
             * whole: its savepoint is not released into an aborted
             * transaction, which only logs an error of its own. */
            int rs = b->failed ? 0 : be->savepoint_release(s);
            if (rs) rc = store_backend_failed(b, op, rs);
            break;
        }
        if ((rc = be->savepoint_rollback(s))) {
            rc = store_backend_failed(b, op, rc);
            break;
        }
        for (size_t i = nevents; i < b->nevents; i++)
            store_event_release(&b->events[i]);
        b->nevents = nevents;
        for (size_t i = ncounts; i < b->ncounts; i++) {
            free(b->counts[i].ns);
            free(b->counts[i].queue);
        }
        b->ncounts = ncounts;
        for (size_t i = 0; i < ncounts; i++)
            b->counts[i].n = counts_n[i];
        for (size_t i = nstats; i < b->nstats; i++) {
            free(b->stats[i].queue);
            free(b->stats[i].ns);
        }
        b->nstats = nstats;
        for (size_t i = 0; i < nstats; i++)
            b->stats[i].st = stats_st[i];
        op->created = false;
        op->task = NULL;
        if (attempt == keyed + 1) {
            rc = store_backend_failed(b, op, TM_ERETRY);
            break;
        }
    }
    free(counts_n);
    free(stats_st);
    return rc;
}

static bool str_same(const char *a, const char *b) {
    return a == b || (a && b && strcmp(a, b) == 0);
}

/* Whether two ops are claims of one query: namespace, queue and types
 * (store_claim_query), which find the same tasks in the same order. */
static bool store_claim_same(const struct store_op *a, const struct store_op *b) {
    if (a->kind != STORE_OP_CLAIM || b->kind != STORE_OP_CLAIM || a->ntypes != b->ntypes ||
        !str_same(a->ns, b->ns) || !str_same(a->queue, b->queue))
        return false;
    for (int i = 0; i < a->ntypes; i++)
        if (!str_same(a->types[i], b->types[i])) return false;
    return true;
}

/*
 * Counts claims of one query in a run of ops (store_claim_query.count):
 * how many of v[i..n) are claims of v[i]'s query, for claims counted in
 * order. When the claim counted last had the same query and no op joined
 * since, the count is one less than its, so a batched claim of n tasks
 * costs n comparisons here, not n * n / 2.
 */
struct claim_counter {
    const struct store_op *last;
    int left;
    size_t n;
};

static int claims_of_query(struct claim_counter *cc, struct store_op *const *v, size_t i,
                           size_t n) {
    if (cc->last && cc->n == n && cc->left > 1 && store_claim_same(cc->last, v[i])) {
        cc->left--;
    } else {
        cc->left = 0;
        for (size_t k = i; k < n; k++)
            cc->left += store_claim_same(v[i], v[k]);
        cc->n = n;
    }
    cc->last = v[i];
    return cc->left;
}

static int store_apply_claim(struct store *s, struct batch *b, struct store_op *op, int64_t now) {
    struct store_claim_query q = {op->ns, op->queue, op->types, op->ntypes,
                                  b->claim_count > 0 ? b->claim_count : 1};
    struct task *t = NULL;
    struct queue_settings qs;
    int rc = store_queue_settings(s, op->queue, &qs, now);
    if (rc) return store_backend_failed(b, op, rc);
    if (qs.paused) return 0; /* a paused queue hands out nothing: op->claimed stays false */
    rc = s->base.backend->claim_next(s, &q, &t);
    if (rc == TM_ENOT_FOUND) return 0; /* nothing now: op->claimed stays false */
    if (rc) return store_backend_failed(b, op, rc);
    char token[ID_LEN + 1];
    id_random_hex(token);
    enum task_phase before = t->phase;
    rc = task_claim(t, op->worker, token, op->lease_ms, now, &op->err);
    if (rc == 0) rc = store_save(s, b, t, (int)before, now);
    if (rc) {
        task_free(t);
        return op->err.code ? rc : store_backend_failed(b, op, rc);
    }
    memcpy(op->new_lease_token, token, sizeof token);
    op->task = t;
    op->claimed = true;
    return 0;
}

/* Heartbeat, complete, fail and release: the worker's calls under a lease. */
static int store_apply_leased(struct store *s, struct batch *b, struct store_op *op, int64_t now) {
    struct task *t = NULL;
    int rc = store_load_scoped(s, op, op->id, &t);
    if (rc) return rc == TM_ENOT_FOUND ? rc : store_backend_failed(b, op, rc);
    enum task_phase before = t->phase;
    rc = task_check_lease(t, op->lease_token, &op->err);
    if (rc) goto out;
    if (op->items && (rc = task_merge_items(t, op->items, now, &op->err))) goto out;
    if (op->has_progress) task_set_progress(t, &op->progress, now);
    if (op->messages) task_add_messages(t, op->messages, now);
    if (op->attributes && (rc = task_merge_attributes(t, op->attributes, s->opt.attributes_max_keys,
                                                      s->opt.attributes_max_bytes, &op->err)))
        goto out;
    switch (op->kind) {
    case STORE_OP_HEARTBEAT:
        rc = task_extend_lease(t, op->lease_token, op->lease_ms, now, &op->err);
        break;
    case STORE_OP_COMPLETE:
        if (op->result) {
            free(t->result);
            t->result = json_text(op->result);
        }
        if (op->returns) {
            free(t->returns);
            t->returns = json_text(op->returns);
        }
        rc = task_complete(t, op->lease_token, op->warning, now, &op->err);
        break;
    case STORE_OP_FAIL:
        if (op->result) {
            free(t->result);
            t->result = json_text(op->result);
        }
        rc = task_fail(t, op->lease_token, op->error, op->retryable, now, store_rand(s), &op->err);
        break;
    default:
        rc = task_release(t, op->lease_token, now, &op->err);
        break;
    }
    if (rc) goto out;
    if ((rc = store_save(s, b, t, (int)before, now))) {
        rc = store_backend_failed(b, op, rc);
        goto out;
    }
    op->task = t;
    return 0;
out:
    task_free(t);
    return rc;
}

/* FINISH: checks everything first, then changes t (see store.h). */
static int store_task_finish(struct task *t, struct store_op *op, int64_t now) {
    bool terminal = task_is_terminal(t);
    if (terminal && op->finish_status != TASK_STATUS_NONE)
        return err_set(&op->err, TM_EINVALID, "completionStatus",
                       "task '%.64s' has finished already ('%.64s')", t->id,
                       task_status_name(t->status));
    if (terminal && op->has_progress)
        return err_set(&op->err, TM_EINVALID, "progress",
                       "task '%.64s' has finished: its progress cannot change", t->id);
    if (!terminal && op->finish_status == TASK_STATUS_NONE && op->finish_at)
        return err_set(&op->err, TM_EINVALID, "completed",
                       "task '%.64s' is not finished: set 'completionStatus' with 'completed'",
                       t->id);
    if (op->has_progress) {
        task_set_progress(t, &op->progress, now);
        task_touch(t, now);
    }
    if (op->finish_status != TASK_STATUS_NONE)
        return task_finish(t, op->finish_status, op->finish_at, now, &op->err);
    if (op->finish_at) {
        t->completed_at = op->finish_at;
        task_touch(t, now);
    }
    return 0;
}

/* The owner's controls that are one move of the task (common/task.h). */
static const struct {
    enum store_op_kind kind;
    int (*move)(struct task *t, int64_t now, struct tm_error *e);
} store_task_moves[] = {
    {STORE_OP_CANCEL, task_cancel}, {STORE_OP_RETRY, task_retry},  {STORE_OP_PAUSE, task_pause},
    {STORE_OP_RESUME, task_resume}, {STORE_OP_RUN_NOW, task_wake},
};

/* Cancel, retry, pause, resume, run now, finish, delete: the owner's controls. */
static int store_apply_control(struct store *s, struct batch *b, struct store_op *op, int64_t now) {
    struct task *t = NULL;
    int rc = store_load_scoped(s, op, op->id, &t);
    if (rc) return rc == TM_ENOT_FOUND ? rc : store_backend_failed(b, op, rc);
    enum task_phase before = t->phase;
    bool paused_before = t->paused;
    int64_t version = t->version;
    size_t m = 0, nmoves = sizeof store_task_moves / sizeof store_task_moves[0];
    while (m < nmoves && store_task_moves[m].kind != op->kind)
        m++;
    if (m < nmoves)
        rc = store_task_moves[m].move(t, now, &op->err);
    else if (op->kind == STORE_OP_FINISH)
        rc = store_task_finish(t, op, now);
    else
        rc = task_check_delete(t, &op->err);
    if (rc) {
        task_free(t);
        return rc;
    }
    if (op->kind == STORE_OP_DELETE) {
        rc = s->base.backend->remove(s, t->id);
        if (rc == 0) batch_count(b, t, before, paused_before, -1);
        if (rc == 0) rc = store_log_event(s, b, t, "task.deleted", "delete", now);
        if (rc == 0) {
            batch_note_changed(b, t->id, INT64_MAX);
            bool keep = false;
            if (op->flag) rc = store_parent_keeps_child(s, t, &keep);
            if (rc == 0 && !keep)
                rc = store_parent_adjust(s, b, t, (int)task_bucket_of(before), -1, now);
        }
    } else if (t->version != version) {
        rc = store_save_paused(s, b, t, (int)before, paused_before, now);
    }
    if (rc) {
        task_free(t);
        return store_backend_failed(b, op, rc);
    }
    op->task = t;
    return 0;
}

/* A watch reads committed state (a reader): a change later in this batch
 * reaches it through the batch's changed list once committed. */
static int store_apply_watch(struct store *s, struct batch *b, struct store_op *op) {
    int rc = s->base.backend->get(s, op->ns, op->id, &op->task);
    if (rc == TM_ENOT_FOUND) return err_set(&op->err, rc, "", "task '%.64s' not found", op->id);
    if (rc) return store_backend_failed(b, op, rc);
    return 0;
}

static int store_apply_delivery_claim(struct store *s, struct batch *b, struct store_op *op,
                                      int64_t now) {
    int64_t hold = op->lease_ms > 0 ? op->lease_ms : 60000;
    int rc = s->base.backend->delivery_claim(s, now, op->skip, op->nskip, now + hold,
                                             &op->claimed_delivery);
    if (rc == TM_ENOT_FOUND) return 0;
    if (rc) return store_backend_failed(b, op, rc);
    store_events_resolve(s, &op->claimed_delivery->ev, 1);
    op->claimed_delivery->claimed_until = now + hold;
    op->claimed = true;
    return 0;
}

/* After an op another module applied (tokens, webhooks, schedules): a
 * failure it left unexplained in op->err is the backend's. */
static void store_apply_done(struct batch *b, struct store_op *op, int rc) {
    if (rc && !op->err.code) store_backend_failed(b, op, rc);
}

/* Applies one op; returns true when it is finished, false when it waits
 * (op->park: it parks once the batch commits). */
static bool store_apply(struct store *s, struct batch *b, struct store_op *op, int64_t now,
                        int64_t mono) {
    b->op = op;
    switch (op->kind) {
    case STORE_OP_WEBHOOK_ADD:
    case STORE_OP_WEBHOOK_DELETE:
    case STORE_OP_WEBHOOK_UPDATE:
    case STORE_OP_DELIVERY_SET:
        store_apply_done(b, op, store_webhook_apply(s, op, now));
        return true;
    case STORE_OP_DELIVERY_CLAIM:
        store_apply_delivery_claim(s, b, op, now);
        return true;
    case STORE_OP_TOKEN_CREATE:
    case STORE_OP_TOKEN_REVOKE:
    case STORE_OP_TOKEN_PURGE:
        store_apply_done(b, op, store_token_apply(s, op, now));
        return true;
    case STORE_OP_CREATE:
        store_apply_create(s, b, op, now);
        return true;
    case STORE_OP_CLAIM:
        if (store_apply_claim(s, b, op, now) == 0 && !op->claimed && op->deadline_ms > mono)
            return false;
        return true;
    case STORE_OP_HEARTBEAT:
    case STORE_OP_COMPLETE:
    case STORE_OP_FAIL:
    case STORE_OP_RELEASE:
        store_apply_leased(s, b, op, now);
        return true;
    case STORE_OP_WATCH:
        if (store_apply_watch(s, b, op) == 0 && op->task->version <= op->version &&
            op->deadline_ms > mono) {
            task_free(op->task);
            op->task = NULL;
            return false;
        }
        return true;
    case STORE_OP_QUEUE_SET:
        store_apply_queue_set(s, b, op);
        return true;
    case STORE_OP_QUEUE_PAUSE:
        store_apply_queue_pause(s, b, op);
        return true;
    case STORE_OP_DOC_PUT:
    case STORE_OP_DOC_DELETE:
    case STORE_OP_SCHED_PAUSE:
    case STORE_OP_SCHED_TRIGGER:
    case STORE_OP_SCHED_BACKFILL:
        store_apply_done(b, op, store_schedule_apply(s, b, op, now));
        if (!b->failed && op->kind != STORE_OP_DOC_DELETE) s->fire_checked = 0; /* look again */
        b->op = op;
        return true;
    default:
        store_apply_control(s, b, op, now);
        return true;
    }
}

/* ---- For store_schedules.c (store_int.h) ---- */

int store_batch_create(struct store *s, struct batch *b, struct task *t, int64_t now,
                       struct tm_error *e, char id[ID_LEN + 1]) {
    id[0] = '\0';
    struct store_op op;
    store_op_init(&op, STORE_OP_CREATE);
    op.tasks = xmalloc(sizeof *op.tasks);
    op.tasks[0] = t;
    op.ntasks = 1;
    struct store_op *was = b->op;
    b->op = &op;
    /* Under its savepoint, as a submit: a key another node inserts first
     * finds that task rather than failing the batch. */
    int rc = store_apply_create(s, b, &op, now);
    b->op = was;
    if (op.err.code) *e = op.err;
    if (rc == 0 && op.task) memcpy(id, op.task->id, ID_LEN + 1);
    store_op_release(&op); /* frees t */
    return b->failed ? TM_EINTERNAL : (rc ? (e->code ? e->code : rc) : 0);
}

int store_batch_cancel(struct store *s, struct batch *b, const char *id, int64_t now) {
    struct task *t = NULL;
    int rc = s->base.backend->load(s, id, &t);
    if (rc == TM_ENOT_FOUND) return 0;
    if (rc) return rc;
    enum task_phase before = t->phase;
    struct tm_error e;
    err_clear(&e);
    if (!task_is_terminal(t) && task_cancel(t, now, &e) == 0)
        rc = store_save(s, b, t, (int)before, now);
    task_free(t);
    return rc;
}

void store_batch_failed(struct batch *b, int rc) {
    batch_fail(b, rc);
}

bool store_batch_has_failed(const struct batch *b) {
    return b->failed;
}

void store_count_schedules(struct store *s, int64_t fires, int64_t missed) {
    pthread_mutex_lock(&s->lock);
    s->stats.schedule_fires += (uint64_t)fires;
    s->stats.schedule_missed += (uint64_t)missed;
    pthread_mutex_unlock(&s->lock);
}

int64_t store_clock_offset_ms(struct store *s) {
    pthread_mutex_lock(&s->lock);
    int64_t off = s->stats.clock_measured ? s->stats.clock_offset_ms : 0;
    pthread_mutex_unlock(&s->lock);
    return off;
}

bool store_sched_is_held(struct store *s, const char *id, int64_t now) {
    for (size_t i = 0; i < sizeof s->sched_held / sizeof s->sched_held[0]; i++)
        if (s->sched_held[i].until > now && strcmp(s->sched_held[i].id, id) == 0) return true;
    return false;
}

void store_sched_hold(struct store *s, const char *id, int64_t until) {
    size_t n = sizeof s->sched_held / sizeof s->sched_held[0], at = 0;
    for (size_t i = 0; i < n; i++) {
        if (strcmp(s->sched_held[i].id, id) == 0) {
            at = i;
            break;
        }
        if (s->sched_held[i].until < s->sched_held[at].until) at = i; /* the oldest goes */
    }
    store_copy_str(s->sched_held[at].id, sizeof s->sched_held[at].id, id);
    s->sched_held[at].until = until;
}

void store_count_schedule_unreadable(struct store *s) {
    pthread_mutex_lock(&s->lock);
    s->stats.schedule_unreadable++;
    pthread_mutex_unlock(&s->lock);
}

int store_make_task(struct store *s, json_t *body, const char *ns, struct task **out,
                    struct tm_error *e) {
    if (!s->opt.make_task)
        return err_set(e, TM_EINTERNAL, "", "this server cannot launch tasks from schedules");
    return s->opt.make_task(s->opt.make_task_cls, body, ns, out, e);
}

/* Forgets an op's outputs, so that it can be applied again. */
static void store_op_reset(struct store_op *op) {
    if (op->kind != STORE_OP_CREATE) task_free(op->task);
    op->task = NULL;
    free(op->task_json);
    op->task_json = NULL;
    deliveries_free(op->claimed_delivery, op->claimed_delivery ? 1 : 0);
    op->claimed_delivery = NULL;
    op->claimed = op->created = op->withdrawn = false;
    op->new_lease_token[0] = '\0';
    op->park = op->taken = false;
    /* A backfill counts its slots as it fires them: an attempt undone
     * fired nothing (its fire rows went with it). */
    op->fired = op->skipped = 0;
    err_clear(&op->err);
}

static void store_park(struct store_op **list, struct store_op *op) {
    op->next = NULL;
    op->parked = true;
    while (*list)
        list = &(*list)->next;
    *list = op;
}

/* Due rows that another node's transaction holds (SKIP LOCKED passes them)
 * are looked at again this much later, not at once and again and again
 * while the lock lasts. */
#define STORE_LOCKED_DUE_MS 50

/* next_due as read, or later while the due rows are others' locked ones. */
static int64_t store_due_after_locks(const struct store *s, int64_t next, int64_t now) {
    return next && next <= now && s->due_locked_until > now ? s->due_locked_until : next;
}

/* Acts on every task whose lease ran out or whose wait is over. The rows
 * come locked and skip those another node holds, so no task is expired or
 * woken twice. */
static void store_sweep(struct store *s, struct batch *b, int64_t now) {
    const struct store_backend *be = s->base.backend;
    char ids[256][ID_LEN + 1];
    size_t n = 0;
    s->stats.sweeps++;
    b->op = NULL;
    int rc = be->due(s, now, ids, 256, &n);
    if (rc == 0 && n && be->preload) rc = be->preload(s, (const char(*)[ID_LEN + 1]) ids, n);
    if (rc) {
        batch_fail(b, rc);
        return;
    }
    for (size_t i = 0; i < n && !b->failed; i++) {
        struct task *t = NULL;
        if ((rc = be->load(s, ids[i], &t))) {
            if (rc != TM_ENOT_FOUND) batch_fail(b, rc);
            continue;
        }
        enum task_phase before = t->phase;
        struct tm_error e;
        if (task_due_at(t) > now || task_due_at(t) == 0) { /* another node was first */
            task_free(t);
            continue;
        }
        rc = t->phase == TASK_WAITING ? task_wake(t, now, &e)
                                      : task_lease_lost(t, now, store_rand(s), &e);
        if (rc == 0) {
            if (before == TASK_RUNNING || before == TASK_STOPPING) s->stats.leases_expired++;
            if ((rc = store_save(s, b, t, (int)before, now))) batch_fail(b, rc);
        }
        task_free(t);
    }
    int64_t next = 0;
    if (!b->failed && (rc = be->next_due(s, &next))) batch_fail(b, rc);
    /* Fewer than asked for, and some still due: those are locked. */
    if (!b->failed && be->shared && n < 256 && next && next <= now)
        s->due_locked_until = now + STORE_LOCKED_DUE_MS;
    s->next_due = store_due_after_locks(s, next, now);
    s->due_checked = now;
}

/* Adds op to the claims to serve (v, n, cap) when its queue has a task
 * ready and it is not answered already. */
static void serve_candidate(const struct batch *b, struct store_op *op, struct store_op ***v,
                            size_t *n, size_t *cap) {
    if (op->taken || op->gone_seen || atomic_load(&op->cancel_code))
        return; /* answered once this batch commits */
    bool ready = false;
    for (size_t i = 0; i < b->nready && !ready; i++)
        ready = strcmp(b->ready[i], op->queue) == 0;
    if (!ready) return;
    if (*n == *cap) *v = xrealloc(*v, (*cap = *cap ? 2 * *cap : 16) * sizeof **v);
    (*v)[(*n)++] = op;
}

/* Hands newly ready tasks to parked claims, oldest claim first, then to
 * the claims of this batch that found nothing (ops[0..nops) with
 * op->park): those park only once it commits, and would miss a task made
 * ready later in it. A served claim stays on its list until the batch
 * commits (op->taken); one of this batch then parks and is answered at
 * once. Only the parked ones go in b->served: a batch that fails resets
 * its own ops and parks them again. */
static void store_serve_parked_claims(struct store *s, struct batch *b, int64_t now,
                                      struct store_op *const *ops, size_t nops) {
    /* The claims to serve, in order, to count those of each query. */
    struct store_op **v = NULL;
    size_t n = 0, cap = 0;
    for (struct store_op *op = s->parked_claims; op; op = op->next)
        serve_candidate(b, op, &v, &n, &cap);
    size_t nparked = n;
    for (size_t k = 0; k < nops; k++)
        if (ops[k]->park && ops[k]->kind == STORE_OP_CLAIM)
            serve_candidate(b, ops[k], &v, &n, &cap);
    struct claim_counter cc = {0};
    for (size_t i = 0; i < n && !b->failed; i++) {
        struct store_op *op = v[i];
        /* A client that has gone (or one cancelled since the list was
         * made) gets no task: answered as a cancelled claim once this
         * batch commits. */
        if (atomic_load(&op->cancel_code) || (op->gone && op->gone(op))) {
            op->gone_seen = true;
            continue;
        }
        b->op = op;
        b->claim_count = claims_of_query(&cc, v, i, n);
        store_apply_claim(s, b, op, now);
        if (op->claimed || op->err.code) {
            op->taken = true;
            if (i >= nparked) continue;
            if (b->nserved == b->capserved) {
                b->capserved = b->capserved ? 2 * b->capserved : 8;
                b->served = xrealloc(b->served, b->capserved * sizeof *b->served);
            }
            b->served[b->nserved++] = op;
        }
    }
    free(v);
}

/* Whether a change of a task to `version` satisfies a parked watch. */
static bool store_watch_fires(const struct store_op *op, const struct store_change *c, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (strcmp(c[i].id, op->id) == 0 && c[i].version > op->version) return true;
    return false;
}

/* After commit: finish served claims, watches whose task changed (here or
 * on another node: `remote`) and parked ops past their deadline. */
static void store_settle_parked(struct store *s, struct batch *b, const struct store_remote *remote,
                                int64_t mono, bool stopping) {
    struct store_op **lists[] = {&s->parked_watches, &s->parked_claims};
    for (int l = 0; l < 2; l++) {
        struct store_op **pp = lists[l];
        while (*pp) {
            struct store_op *op = *pp;
            int cancel = atomic_load(&op->cancel_code);
            bool fire = op->taken || stopping || cancel || op->gone_seen || op->deadline_ms <= mono;
            if (!fire && op->kind == STORE_OP_WATCH)
                fire = store_watch_fires(op, b->changed, b->nchanged) ||
                       (remote && store_watch_fires(op, remote->changed, remote->nchanged));
            if (!fire) {
                pp = &op->next;
                continue;
            }
            *pp = op->next;
            op->parked = false;
            if (op->taken) {
                op->taken = false;
                /* Its client went while the claim committed: the caller
                 * gives the task back (the commit cannot be undone). */
                if (op->claimed && op->gone && op->gone(op)) op->withdrawn = true;
            } else if (stopping) {
                err_set(&op->err, TM_EUNAVAILABLE, "", "the server is stopping");
            } else if (cancel) {
                err_set(&op->err, cancel, "", "%s", op->cancel_message);
            } else if (op->gone_seen) {
                err_set(&op->err, TM_EUNAVAILABLE, "", "the client closed its connection");
            } else if (op->kind == STORE_OP_WATCH) {
                int rc = s->base.backend->get(s, op->ns, op->id, &op->task);
                if (rc == TM_ENOT_FOUND)
                    err_set(&op->err, rc, "", "task '%.64s' not found", op->id);
                else if (rc)
                    store_fail_op(op, rc == TM_EUNAVAILABLE ? rc : TM_EINTERNAL);
            }
            batch_finish(b, op);
        }
    }
}

static void store_prune_events(struct store *s, int64_t now);
static void store_prune_inline(struct store *s, struct batch *b, int64_t now);
static void store_pruned(struct store *s, int64_t now, int64_t bound, bool more, int64_t deleted);
static void store_prune_finished(struct store *s, int64_t now);
static void store_prune_stats(struct store *s, int64_t now);
static void store_prune_fires(struct store *s, int64_t now);

/* The most ops one transaction takes before it commits. */
#define STORE_BATCH_MAX 1024

/* Takes every queued op. */
static struct store_op *store_take_queue(struct store *s) {
    pthread_mutex_lock(&s->lock);
    struct store_op *ops = s->queue_head;
    s->queue_head = s->queue_tail = NULL;
    pthread_mutex_unlock(&s->lock);
    return ops;
}

/* Takes what the feed thread learnt of other nodes' commits. */
static void store_take_remote(struct store *s, struct store_remote *out) {
    pthread_mutex_lock(&s->lock);
    *out = s->remote;
    memset(&s->remote, 0, sizeof s->remote);
    pthread_mutex_unlock(&s->lock);
}

static void store_remote_release(struct store_remote *r) {
    free(r->changed);
    for (size_t i = 0; i < r->nready; i++)
        free(r->ready[i]);
    free(r->ready);
    memset(r, 0, sizeof *r);
}

/* The ops of a batch, in the order they came. */
struct opvec {
    struct store_op **v;
    size_t n, cap;
};

static void opvec_add_list(struct opvec *ov, struct store_op *ops) {
    for (struct store_op *op = ops; op; op = op->next) {
        if (ov->n == ov->cap)
            ov->v = xrealloc(ov->v, (ov->cap = ov->cap ? 2 * ov->cap : 64) * sizeof *ov->v);
        ov->v[ov->n++] = op;
    }
}

static void ids_add(char (**ids)[ID_LEN + 1], size_t *n, size_t *cap, const char *id) {
    if (*n == *cap) *ids = xrealloc(*ids, (*cap = *cap ? 2 * *cap : 64) * sizeof **ids);
    memcpy((*ids)[(*n)++], id, ID_LEN + 1);
}

/* Hands the backend (store_backend.lock_keys) the idempotency keys of
 * ov[from..n)'s submits, to be locked at once in its own order. */
static void store_lock_keys(struct store *s, struct batch *b, const struct opvec *ov, size_t from) {
    const char **ns = NULL, **keys = NULL;
    size_t n = 0, cap = 0;
    for (size_t i = from; i < ov->n; i++) {
        const struct store_op *op = ov->v[i];
        if (op->kind != STORE_OP_CREATE) continue;
        for (size_t k = 0; k < op->ntasks; k++) {
            const struct task *t = op->tasks[k];
            if (!t->idempotency_key) continue;
            if (n == cap) {
                cap = cap ? 2 * cap : 16;
                ns = xrealloc(ns, cap * sizeof *ns);
                keys = xrealloc(keys, cap * sizeof *keys);
            }
            ns[n] = t->namespace;
            keys[n++] = t->idempotency_key;
        }
    }
    int rc = n ? s->base.backend->lock_keys(s, ns, keys, n) : 0;
    if (rc) batch_fail(b, rc);
    free(ns);
    free(keys);
}

/*
 * Hands the backend (store_backend.preload) the ids that ov[from..n) will
 * load by id: the task of each worker call and owner control, and the
 * parent of each task submitted with one. On PostgreSQL that is one
 * statement for the batch instead of one per op. Each of these ops loads
 * (and locks) them first thing anyway: they are only locked earlier, all
 * at once, and in id order.
 */
static void store_preload(struct store *s, struct batch *b, const struct opvec *ov, size_t from) {
    const struct store_backend *be = s->base.backend;
    if (!be->preload || b->failed) return;
    char(*ids)[ID_LEN + 1] = NULL;
    size_t n = 0, cap = 0;
    for (size_t i = from; i < ov->n; i++) {
        const struct store_op *op = ov->v[i];
        switch (op->kind) {
        case STORE_OP_HEARTBEAT:
        case STORE_OP_COMPLETE:
        case STORE_OP_FAIL:
        case STORE_OP_RELEASE:
        case STORE_OP_CANCEL:
        case STORE_OP_RETRY:
        case STORE_OP_PAUSE:
        case STORE_OP_RESUME:
        case STORE_OP_DELETE:
        case STORE_OP_RUN_NOW:
        case STORE_OP_FINISH:
            if (op->id[0]) ids_add(&ids, &n, &cap, op->id);
            break;
        case STORE_OP_CREATE:
            for (size_t k = 0; k < op->ntasks; k++)
                if (op->tasks[k]->parent_id[0]) ids_add(&ids, &n, &cap, op->tasks[k]->parent_id);
            break;
        default:
            break;
        }
    }
    int rc = n ? be->preload(s, (const char(*)[ID_LEN + 1]) ids, n) : 0;
    if (rc) batch_fail(b, rc);
    free(ids);
    if (rc == 0 && be->lock_keys) store_lock_keys(s, b, ov, from);
}

/* One attempt at a batch: begin, apply, sweep, serve, append events, commit. */
static void store_attempt(struct store *s, struct batch *b, struct opvec *ov,
                          const struct store_remote *remote, int64_t now, int64_t mono) {
    const struct store_backend *be = s->base.backend;
    int rc = be->begin(s);
    if (rc) {
        batch_fail(b, rc);
        return;
    }
    store_preload(s, b, ov, 0);
    struct claim_counter cc = {0};
    for (size_t i = 0; i < ov->n && !b->failed; i++) {
        struct store_op *op = ov->v[i];
        b->claim_count = op->kind == STORE_OP_CLAIM ? claims_of_query(&cc, ov->v, i, ov->n) : 1;
        op->park = !store_apply(s, b, op, now, mono);
        /* Ops that came while this batch was applied join it: same fsync, no wait. */
        if (i + 1 == ov->n && ov->n < STORE_BATCH_MAX) {
            size_t had = ov->n;
            opvec_add_list(ov, store_take_queue(s));
            store_preload(s, b, ov, had);
        }
    }
    if (!b->failed && !s->opt.tool && s->next_due && s->next_due <= now) store_sweep(s, b, now);
    if (!b->failed && s->opt.make_task &&
        ((s->next_fire && s->next_fire <= now) || s->fire_checked == 0 ||
         (be->shared && now - s->fire_checked >= s->opt.sweep_max_ms))) {
        int64_t next = store_schedules_fire(s, b, now);
        if (!b->failed) {
            s->next_fire = next;
            s->fire_checked = now;
        }
        b->op = NULL;
    }
    for (size_t i = 0; remote && i < remote->nready; i++)
        batch_note_ready(b, remote->ready[i]);
    if (!b->failed && b->nready) store_serve_parked_claims(s, b, now, ov->v, ov->n);
    if (!b->failed && b->nstats && (rc = be->stats_add(s, s->node, b->stats, b->nstats)))
        batch_fail(b, rc);
    if (!b->failed && b->ncounts && (rc = batch_counts_write(s, b))) batch_fail(b, rc);
    if (!b->failed && b->nevents &&
        (rc = be->events_append(s, b->events, b->nevents, &b->deliveries)))
        batch_fail(b, rc);
    if (!b->failed) store_prune_inline(s, b, now);
    /* No render of these tasks is kept from here until after the commit. */
    if (!b->failed) store_cache_forget(s->cache, b->changed, b->nchanged, true);
    if (!b->failed && (rc = be->commit(s))) batch_fail(b, rc);
    if (b->failed) be->rollback(s);
}

static void store_run_batch(struct store *s, struct store_op *ops, bool stopping) {
    const struct store_backend *be = s->base.backend;
    struct batch b = {0};
    int64_t now = time_now_ms(), mono = time_mono_ms();
    struct store_remote remote;
    store_take_remote(s, &remote);
    if (remote.due || (be->shared && now - s->due_checked >= s->opt.sweep_max_ms)) {
        /* Another node may have made a task due (or died holding leases). */
        int64_t next = 0;
        if (be->next_due(s, &next) == 0) {
            s->next_due = store_due_after_locks(s, next, now);
            s->due_checked = now;
        }
    }
    /* A parked claim skipped the tasks other transactions had locked (SKIP
     * LOCKED); one that ends without changing its task sends no event, so
     * on a shared database the parked claims look again once a sweep
     * interval, as if their queues had a task ready. */
    if (be->shared && s->parked_claims && now - s->claims_checked >= s->opt.sweep_max_ms) {
        for (struct store_op *op = s->parked_claims; op; op = op->next) {
            bool seen = false;
            for (size_t k = 0; k < remote.nready && !seen; k++)
                seen = strcmp(remote.ready[k], op->queue) == 0;
            if (seen) continue;
            remote.ready = xrealloc(remote.ready, (remote.nready + 1) * sizeof *remote.ready);
            remote.ready[remote.nready++] = xstrdup(op->queue);
        }
        s->claims_checked = now;
    }
    /* The ops of this batch, in order; more join while it is applied. */
    struct opvec ov = {0};
    opvec_add_list(&ov, ops);
    bool fire =
        s->opt.make_task && ((s->next_fire && s->next_fire <= now) || s->fire_checked == 0 ||
                             (be->shared && now - s->fire_checked >= s->opt.sweep_max_ms));
    bool work =
        ov.n || (s->next_due && s->next_due <= now) || fire || (remote.nready && s->parked_claims);
    int tries = 0;
    /* What an attempt sets besides the database, for one that is undone:
     * when to sweep and fire next (read inside its transaction) and what
     * its sweep and fires counted. */
    struct {
        int64_t next_due, due_checked, next_fire, fire_checked;
        uint64_t fires, missed, expired;
    } was = {s->next_due,
             s->due_checked,
             s->next_fire,
             s->fire_checked,
             s->stats.schedule_fires,
             s->stats.schedule_missed,
             s->stats.leases_expired};
    while (work) {
        store_attempt(s, &b, &ov, &remote, now, mono);
        if (b.failed) {
            s->next_due = was.next_due;
            s->due_checked = was.due_checked;
            s->next_fire = was.next_fire;
            s->fire_checked = was.fire_checked;
            s->stats.schedule_fires = was.fires;
            s->stats.schedule_missed = was.missed;
            s->stats.leases_expired = was.expired;
        }
        if (!b.failed || b.fail_code != TM_ERETRY || tries >= STORE_RETRIES) break;
        /* Lost a race with another node: undo everything and apply again. */
        tries++;
        s->stats.batch_retries++;
        for (size_t i = 0; i < ov.n; i++)
            store_op_reset(ov.v[i]);
        for (size_t i = 0; i < b.nserved; i++)
            store_op_reset(b.served[i]);
        s->nqcache = 0;
        batch_reset(&b);
        now = time_now_ms();
        struct timespec pause = {0, (long)(store_rand(s) % (1000u * (unsigned)tries)) * 1000L};
        nanosleep(&pause, NULL);
    }
    /* Before anything of the batch is told: a read after its replies, or
     * after its events, finds no render from before. (A failed batch
     * changed nothing; what it tried is forgotten all the same.) */
    store_cache_forget(s->cache, b.changed, b.nchanged, false);
    if (b.failed) {
        s->stats.commits_failed++;
        s->next_due = now + 1000; /* look again soon; the state is as before */
        /* So too an overdue schedule fire the batch undid: at once, the
         * writer would spin on it while the failure lasts. (Its slots are
         * the schedules' rows: they fire late, not never.) */
        if (s->next_fire && s->next_fire < now + 1000) s->next_fire = now + 1000;
        s->nqcache = 0;
        int code = b.fail_code;
        /* A store that refuses writes says why, not "try again". */
        const char *why = code == TM_EUNAVAILABLE && s->base.backend->refusing
                              ? s->base.backend->refusing(s)
                              : NULL;
        for (size_t i = 0; i < b.nserved; i++)
            store_op_reset(b.served[i]); /* still parked: nothing was handed out */
        b.nserved = 0;
        for (size_t i = 0; i < b.nevents; i++)
            store_event_release(&b.events[i]);
        b.nevents = b.deliveries = 0;
        /* A claim or watch that found nothing still waits; the rest fail,
         * but for refusals found against what was committed before (a
         * token's id taken, a task not found): they stand. One of a task
         * that an op of the batch changed was found against that undone
         * change (two completes of one task: the second's "not running"
         * is no longer so), and fails with the batch. */
        for (size_t i = 0; i < ov.n; i++) {
            struct store_op *op = ov.v[i];
            bool client_error =
                op->err.code && op->err.code != TM_EINTERNAL && op->err.code != TM_EUNAVAILABLE;
            for (size_t k = 0; client_error && op->id[0] && k < b.nchanged; k++)
                if (strcmp(b.changed[k].id, op->id) == 0) client_error = false;
            bool park = op->park;
            if (!client_error) store_op_reset(op);
            if (park) {
                op->park = true;
            } else if (!client_error) {
                store_fail_op(op, code);
                if (why) err_set(&op->err, TM_EUNAVAILABLE, "", "%s", why);
            }
        }
        b.nchanged = 0;
    }
    for (size_t i = 0; i < ov.n; i++) {
        struct store_op *op = ov.v[i];
        if (op->park)
            store_park(op->kind == STORE_OP_CLAIM ? &s->parked_claims : &s->parked_watches, op);
        else
            batch_finish(&b, op);
    }
    store_settle_parked(s, &b, &remote, mono, stopping);
    pthread_mutex_lock(&s->lock);
    if (work) s->stats.batches++;
    s->stats.ops += ov.n;
    s->stats.events_appended += b.nevents;
    if (b.nevents && (uint64_t)b.events[b.nevents - 1].seq > s->stats.event_seq)
        s->stats.event_seq = (uint64_t)b.events[b.nevents - 1].seq;
    pthread_mutex_unlock(&s->lock);
    if (b.nevents && !be->shared) {
        if (s->listener) {
            struct store_commit c = {b.events, b.nevents, b.deliveries};
            s->listener(s->listener_cls, &c);
        }
    } else if (b.nevents) {
        /* The feed hands them on, in seq order with other nodes' events. */
        struct feed_local *fl = xmalloc(sizeof *fl);
        fl->events = b.events;
        fl->n = b.nevents;
        fl->deliveries = b.deliveries;
        fl->next = NULL;
        b.events = NULL;
        b.nevents = b.capevents = 0;
        pthread_mutex_lock(&s->lock);
        if (s->local_tail)
            s->local_tail->next = fl;
        else
            s->local_head = fl;
        s->local_tail = fl;
        s->feed_poke = true;
        pthread_mutex_unlock(&s->lock);
        be->feed_interrupt(s);
    }
    for (struct store_op *op = b.done_head, *next; op; op = next) {
        next = op->next;
        op->next = NULL;
        op->done(op);
    }
    if (!b.failed && b.pruned) {
        if (b.prune_bound)
            store_pruned(s, now, b.prune_bound, b.prune_more, b.prune_deleted);
        else
            s->next_prune = now + 1000;
    }
    /* After the replies: a batch's writes never wait for a step of its own. */
    if (now >= s->next_prune) store_prune_events(s, now);
    if (now >= s->next_task_prune) store_prune_finished(s, now);
    if (now >= s->next_stats_prune && !s->opt.tool) store_prune_stats(s, now);
    if (now >= s->next_fires_prune) store_prune_fires(s, now);
    batch_release(&b);
    store_remote_release(&remote);
    free(ov.v);
}

/*
 * Retention: drops events past their age or count, STORE_PRUNE_STEP rows
 * at a time, never an event that a pending webhook delivery still has to
 * send. On a backend with one writer (SQLite) a batch that takes the log
 * past its count cap drops the excess in its own transaction, just before
 * its commit (store_prune_inline): one commit instead of two, and no step
 * that other writes wait behind. Otherwise (PostgreSQL, where the
 * retention state's row lock would make nodes' batches take turns, or
 * to catch up) a step runs in a transaction of its own between two
 * batches, so a write that arrives meanwhile waits for one small step at
 * most; it comes back after the next batch while there is more to drop,
 * else in a second. That step's commit does not flush on its own
 * (begin_lazy): the next batch's durable commit covers it. The backend
 * locks the retention state, so nodes pruning at once take turns.
 */

/* One step in the open transaction: *bound is the seq dropped through (0:
 * nothing to drop), *more says whether the step stopped short. */
static int store_prune_step(struct store *s, int64_t now, int64_t *bound_out, bool *more,
                            int64_t *deleted) {
    const struct store_backend *be = s->base.backend;
    int64_t before = s->opt.events_max_age_ms < 0 ? 0 : now - s->opt.events_max_age_ms;
    struct store_prune_info in = {0};
    int64_t bound = 0;
    *bound_out = *deleted = 0;
    *more = false;
    int rc = be->events_prune_info(s, before, &in);
    if (rc) return rc;
    if (s->opt.events_max_count >= 0 && in.head - s->opt.events_max_count > bound)
        bound = in.head - s->opt.events_max_count;
    if (before > 0 && in.aged_through > bound) bound = in.aged_through;
    if (in.pending_min && in.pending_min - 1 < bound) bound = in.pending_min - 1;
    if (bound <= in.pruned_through) return 0;
    /* At most STORE_PRUNE_STEP seqs a step, or one whole segment when a
     * segment is more. The log's seqs have no gaps but those retention
     * made (both backends number events in the transaction that appends
     * them), so this is that many events, found without reading them
     * (counting them with OFFSET took a sixth of retention's CPU). */
    int64_t step = in.pruned_through + STORE_PRUNE_STEP;
    if (in.whole) {
        if (!in.whole_through || bound < in.whole_through) return 0;
        if (in.whole_through > step) step = in.whole_through;
    }
    if (bound > step) {
        bound = step;
        *more = true;
    }
    if ((rc = be->events_delete(s, &bound, deleted))) return rc;
    *bound_out = bound > in.pruned_through ? bound : 0;
    return 0;
}

static bool store_retention_on(const struct store *s) {
    return s->opt.events_max_age_ms >= 0 || s->opt.events_max_count >= 0;
}

/* After a commit that pruned: the next step's time and the counters. */
static void store_pruned(struct store *s, int64_t now, int64_t bound, bool more, int64_t deleted) {
    s->next_prune = more ? now : now + 1000; /* more: again after the next batch */
    pthread_mutex_lock(&s->lock);
    s->stats.events_pruned += (uint64_t)deleted;
    s->stats.events_pruned_through = (uint64_t)bound;
    pthread_mutex_unlock(&s->lock);
}

/* In the batch's transaction (one writer only), after its events are
 * appended: when a second has passed or the batch took the log past its
 * count cap. No savepoint: on SQLite one would copy every page the step
 * touches to a statement journal, and the step's statements fail only as
 * the storage fails (an I/O error, a full disk), which fails the commit
 * too, so its failure is the batch's. */
static void store_prune_inline(struct store *s, struct batch *b, int64_t now) {
    const struct store_backend *be = s->base.backend;
    if (be->shared || !store_retention_on(s)) return;
    int64_t head = b->nevents ? b->events[b->nevents - 1].seq : 0;
    bool over = s->opt.events_max_count >= 0 &&
                head - s->opt.events_max_count > (int64_t)s->stats.events_pruned_through;
    if (now < s->next_prune && !over) return;
    int rc = store_prune_step(s, now, &b->prune_bound, &b->prune_more, &b->prune_deleted);
    if (rc) {
        batch_fail(b, rc);
        return;
    }
    b->pruned = true;
}

/* A step in a transaction of its own, between two batches. */
static void store_prune_events(struct store *s, int64_t now) {
    const struct store_backend *be = s->base.backend;
    s->next_prune = now + 1000;
    if (!store_retention_on(s)) return;
    if (be->begin_lazy(s)) return;
    int64_t bound = 0, deleted = 0;
    bool more = false;
    int rc = store_prune_step(s, now, &bound, &more, &deleted);
    if (rc || !bound) {
        be->rollback(s);
        return;
    }
    if (be->commit(s)) {
        be->rollback(s);
        return;
    }
    store_pruned(s, now, bound, more, deleted);
}

/* Finished tasks one retention step deletes (store_prune_finished). */
#define STORE_TASK_PRUNE_STEP 500

static void store_prune_done(struct store_op *op) {
    struct store *s = op->udata;
    /* Counted when deleted: another node, or a DELETE, may have been first. */
    if (!op->err.code) {
        pthread_mutex_lock(&s->lock);
        s->stats.tasks_pruned++;
        pthread_mutex_unlock(&s->lock);
    }
    atomic_fetch_sub(&s->task_prune_inflight, 1);
    store_op_release(op);
    free(op);
}

/* How often a shared backend's writer reads the queues' retention again:
 * another node may have set it. */
#define STORE_RETAIN_READ_MS 5000
/* Lists of candidates one retention pass reads at most, and the time it
 * may spend reading them: a list is one range of tasks_retain (well under
 * a millisecond), so a pass reads many, yet never holds the writer, whose
 * batches wait meanwhile, for much longer than a commit's flush. */
#define STORE_TASK_PRUNE_LISTS     256
#define STORE_TASK_PRUNE_BUDGET_MS 20
/* The pause after a pass that stopped at its budget or its lists, before
 * the next goes on from there: the writer spends at most a sixth of its
 * time on a round through many queues. */
#define STORE_TASK_PRUNE_PAUSE_MS 100

static int retain_cmp(const void *a, const void *b) {
    return strcmp(((const struct queue_counts *)a)->queue, ((const struct queue_counts *)b)->queue);
}

static int retain_pair_cmp(const void *a, const void *b) {
    const struct retain_pair *x = a, *y = b;
    int c = strcmp(x->queue, y->queue);
    return c ? c : (int)x->phase - (int)y->phase;
}

void retain_pairs_free(struct retain_pair *v, size_t n) {
    for (size_t i = 0; i < n; i++)
        free(v[i].queue);
    free(v);
}

/* How long queue keeps its tasks in terminal phase ph, in ms: its own age
 * for that phase, else the server's; 0 when kept (a queue's 0, or no age
 * at all). s->retain is sorted by name (store_retain_read). */
static int64_t store_retain_age_ms(const struct store *s, const char *queue, enum task_phase ph) {
    const struct queue_counts key = {.queue = (char *)queue};
    const struct queue_counts *q =
        s->nretain ? bsearch(&key, s->retain, s->nretain, sizeof *s->retain, retain_cmp) : NULL;
    if (q && q->settings.retention_seconds[ph] >= 0)
        return q->settings.retention_seconds[ph] * 1000;
    return s->opt.finished_max_age_ms > 0 ? s->opt.finished_max_age_ms : 0;
}

/* Reads which queues set a retention of their own: at the first pass, after
 * this writer set a queue's settings, and on a shared backend every
 * STORE_RETAIN_READ_MS (another node may have). On failure the last read
 * stands, and it is tried again at the next pass. */
static void store_retain_read(struct store *s, int64_t now) {
    if (s->retain_known && !s->retain_stale &&
        (!s->base.backend->shared || now - s->retain_read_at < STORE_RETAIN_READ_MS))
        return;
    struct queue_counts *q = NULL;
    size_t n = 0;
    if (s->base.backend->queue_retention(s, &q, &n)) {
        queue_counts_free(q, n);
        return;
    }
    if (n) qsort(q, n, sizeof *q, retain_cmp);
    queue_counts_free(s->retain, s->nretain);
    s->retain = q;
    s->nretain = n;
    s->retain_read_at = now;
    s->retain_known = true;
    s->retain_stale = false;
}

/* Retention of finished tasks (the server's finished_max_age_ms, and each
 * queue's own ages per terminal phase): queues, as ordinary delete ops (so
 * counts, parents and the event log follow, and each commit is durable),
 * up to STORE_TASK_PRUNE_STEP completed, failed or cancelled tasks past
 * their age. It reads one list per (queue, terminal phase) pair that has
 * tasks (retain_pairs, from task_counts), each with the age that applies
 * to it (store_retain_age_ms; a kept pair is not read), as one range of
 * the index tasks_retain: only the candidates. The pairs are read once
 * a round (a round is as many passes as it takes to read every pair) and
 * taken in (queue, phase) order from where the last pass stopped, so that
 * one queue's backlog does not starve the others; a pass reads at least
 * one list, and stops at STORE_TASK_PRUNE_LISTS lists or
 * STORE_TASK_PRUNE_BUDGET_MS of reading lists. A list that fills the step
 * is read again by the next pass. The next pass is timed from the end of
 * this one: at once (after the deletes) when a list filled the step,
 * STORE_TASK_PRUNE_PAUSE_MS later when the round is not over, else a
 * second later (and reads the pairs again). With no
 * server age and no queue that sets one, a pass reads nothing (a shared
 * backend reads the queues' settings every STORE_RETAIN_READ_MS). On
 * several nodes two may pick the same task: the second delete finds it
 * gone, which is fine, and only the first counts it (store_prune_done). */
static void store_prune_finished(struct store *s, int64_t now) {
    const int64_t start = time_mono_ms();
    s->next_task_prune = now + 1000;
    if (s->opt.tool) return; /* a tool's store does not prune */
    if (atomic_load(&s->task_prune_inflight) > 0) {
        s->next_task_prune = now; /* after those */
        return;
    }
    store_retain_read(s, now);
    if (s->opt.finished_max_age_ms <= 0 && s->nretain == 0) return;
    if (s->round_at >= s->nround) { /* a new round: its pairs, read once */
        retain_pairs_free(s->round, s->nround);
        s->round = NULL;
        s->nround = s->round_at = 0;
        if (s->base.backend->retain_pairs(s, &s->round, &s->nround)) {
            retain_pairs_free(s->round, s->nround);
            s->round = NULL;
            s->nround = 0;
            s->next_task_prune = now + (time_mono_ms() - start) + 1000;
            return;
        }
        if (s->nround) qsort(s->round, s->nround, sizeof *s->round, retain_pair_cmp);
    }
    /* The budget counts the lists, not the pairs' read above: a pass
     * always reads at least one list, so a round ends however many pairs. */
    const int64_t t0 = time_mono_ms();
    char(*ids)[ID_LEN + 1] = xcalloc(STORE_TASK_PRUNE_STEP, sizeof *ids);
    size_t nids = 0, lists = 0;
    bool full = false;
    while (s->round_at < s->nround) {
        if (lists > 0 &&
            (lists == STORE_TASK_PRUNE_LISTS || time_mono_ms() - t0 >= STORE_TASK_PRUNE_BUDGET_MS))
            break;
        const struct retain_pair *p = &s->round[s->round_at];
        int64_t age = store_retain_age_ms(s, p->queue, p->phase);
        if (age <= 0) {
            s->round_at++;
            continue;
        }
        size_t n = 0, max = STORE_TASK_PRUNE_STEP - nids;
        lists++;
        if (s->base.backend->retain_list(s, p->queue, p->phase, now - age, max, ids + nids, &n)) {
            s->round_at++;
            continue;
        }
        nids += n;
        if (n == max) { /* more in this pair: the next pass starts at it again */
            full = true;
            break;
        }
        s->round_at++;
    }
    bool cut = s->round_at < s->nround;
    const int64_t end = now + (time_mono_ms() - start);
    s->next_task_prune = full ? end : cut ? end + STORE_TASK_PRUNE_PAUSE_MS : end + 1000;
    atomic_store(&s->task_prune_inflight, (int)nids);
    for (size_t i = 0; i < nids; i++) {
        struct store_op *op = xcalloc(1, sizeof *op);
        store_op_init(op, STORE_OP_DELETE);
        op->flag = true; /* retention's: an unfinished parent keeps the child's counts */
        memcpy(op->id, ids[i], ID_LEN + 1);
        op->done = store_prune_done;
        op->udata = s;
        store_submit(s, op);
    }
    free(ids);
}

/* Drops queue_stats minutes older than STORE_STATS_KEEP_MINUTES, once a minute. */
static void store_prune_stats(struct store *s, int64_t now) {
    const struct store_backend *be = s->base.backend;
    s->next_stats_prune = now + 60000;
    if (be->begin(s)) return;
    if (be->stats_prune(s, now / 60000 - STORE_STATS_KEEP_MINUTES) || be->commit(s))
        be->rollback(s);
}

/* A schedule's fires kept whatever their age: what GET .../fires can show. */
#define STORE_FIRES_KEEP 1000
/* Fire rows one pass deletes. */
#define STORE_FIRES_PRUNE_STEP 5000

/* Drops the fire rows of schedules older than the events' age limit, each
 * schedule's newest STORE_FIRES_KEEP aside, once a minute (a second after
 * a full step). A slot's row keeps it from firing twice only while firing
 * could reach it: the schedule's cursor has passed every pruned slot, and
 * a backfill of one fires it again (docs/schedules.md). The commit does
 * not flush on its own; a crash before the next durable commit leaves the
 * rows for the next pass. */
static void store_prune_fires(struct store *s, int64_t now) {
    const struct store_backend *be = s->base.backend;
    s->next_fires_prune = now + 60000;
    if (s->opt.events_max_age_ms < 0) return; /* history kept (and a tool's store) */
    if (be->begin_lazy(s)) return;
    int64_t deleted = 0;
    if (be->fires_prune(s, now - s->opt.events_max_age_ms, STORE_FIRES_KEEP, STORE_FIRES_PRUNE_STEP,
                        &deleted) ||
        be->commit(s)) {
        be->rollback(s);
        return;
    }
    if (deleted == STORE_FIRES_PRUNE_STEP) s->next_fires_prune = now + 1000;
}

/* Milliseconds the writer may sleep before it has something to do. */
static int64_t store_idle_ms(struct store *s) {
    int64_t wait = s->opt.sweep_max_ms;
    if (s->next_due && !s->opt.tool) { /* a tool's store does not sweep */
        int64_t d = s->next_due - time_now_ms();
        if (d < wait) wait = d;
    }
    if (s->next_fire) {
        int64_t d = s->next_fire - time_now_ms();
        if (d < wait) wait = d;
    }
    int64_t mono = time_mono_ms();
    struct store_op *lists[] = {s->parked_claims, s->parked_watches};
    for (int l = 0; l < 2; l++)
        for (struct store_op *op = lists[l]; op; op = op->next)
            if (op->deadline_ms - mono < wait) wait = op->deadline_ms - mono;
    return wait < 0 ? 0 : wait;
}

static bool store_remote_pending(const struct store *s) {
    return s->remote.nchanged || s->remote.nready || s->remote.due;
}

static void *store_writer_main(void *arg) {
    struct store *s = arg;
    for (;;) {
        int64_t idle = store_idle_ms(s);
        pthread_mutex_lock(&s->lock);
        if (!s->queue_head && !s->stopping && idle > 0 && !store_remote_pending(s))
            time_cond_wait_ms(&s->cond, &s->lock, idle);
        struct store_op *ops = s->queue_head;
        s->queue_head = s->queue_tail = NULL;
        bool stopping = s->stopping;
        s->stats.parked_claims = s->stats.parked_watches = 0;
        for (struct store_op *op = s->parked_claims; op; op = op->next)
            s->stats.parked_claims++;
        for (struct store_op *op = s->parked_watches; op; op = op->next)
            s->stats.parked_watches++;
        pthread_mutex_unlock(&s->lock);

        store_run_batch(s, ops, stopping);
        if (stopping && !ops) break;
    }
    pthread_mutex_lock(&s->lock);
    s->stopped = true;
    pthread_mutex_unlock(&s->lock);
    return NULL;
}

/* ---- The feed (shared backends) ---- */

/* How long the feed waits for an announcement before it reads the log anyway. */
#define STORE_FEED_POLL_MS    500
#define STORE_FEED_PAGE       1000
#define STORE_FEED_PAGE_BYTES (8u << 20)

/* Tells the writer what a page of the log changed. */
static void store_feed_note(struct store *s, const struct event_page *p) {
    pthread_mutex_lock(&s->lock);
    struct store_remote *r = &s->remote;
    for (size_t i = 0; i < p->n; i++) {
        const struct store_event *ev = &p->events[i];
        int64_t version = strcmp(ev->kind, "task.deleted") == 0 ? INT64_MAX : ev->version;
        changes_add(&r->changed, &r->nchanged, &r->capchanged, ev->task_id, version);
        if (ev->phase == TASK_PENDING && ev->queue) {
            bool seen = false;
            for (size_t k = 0; k < r->nready && !seen; k++)
                seen = strcmp(r->ready[k], ev->queue) == 0;
            if (!seen) {
                r->ready = xrealloc(r->ready, (r->nready + 1) * sizeof *r->ready);
                r->ready[r->nready++] = xstrdup(ev->queue);
            }
        }
        /* A task that waits has a due time soon, perhaps. A lease's end is
         * swept by the node that set it, which knows it; should that node
         * die, the others find it at their next look (sweep_max_ms). */
        if (ev->phase == TASK_WAITING) r->due = true;
    }
    pthread_cond_signal(&s->cond);
    pthread_mutex_unlock(&s->lock);
}

static void feed_local_free(struct feed_local *fl) {
    while (fl) {
        struct feed_local *next = fl->next;
        for (size_t i = 0; i < fl->n; i++)
            store_event_release(&fl->events[i]);
        free(fl->events);
        free(fl);
        fl = next;
    }
}

/*
 * Hands events on to the listener (and, when `note`, to the writer).
 * `deliveries` is what a batch of ours queued; SIZE_MAX for events read
 * from the log, whose deliveries are not known here: each event a webhook
 * could subscribe to counts as one, so the senders look.
 */
static void store_feed_deliver(struct store *s, struct store_event *ev, size_t n, bool note,
                               size_t deliveries) {
    size_t could = 0;
    for (size_t i = 0; i < n; i++)
        if ((ev[i].hooks = store_event_hooks(ev[i].kind))) could++;
    if (deliveries == SIZE_MAX) deliveries = could;
    pthread_mutex_lock(&s->lock);
    void (*fn)(void *, const struct store_commit *) = s->listener;
    void *cls = s->listener_cls;
    s->stats.feed_events += n;
    if ((uint64_t)ev[n - 1].seq > s->stats.event_seq) s->stats.event_seq = (uint64_t)ev[n - 1].seq;
    pthread_mutex_unlock(&s->lock);
    if (fn) {
        struct store_commit c = {ev, n, deliveries};
        fn(cls, &c);
    }
    if (note) {
        struct event_page p = {.events = ev, .n = n};
        store_feed_note(s, &p);
    }
    s->feed_seq = ev[n - 1].seq;
}

/* Reads one page of the log after feed_seq and hands it on. Returns 1 when
 * more may follow, 0 when caught up, -1 on an error. */
static int store_feed_read(struct store *s) {
    const struct store_backend *be = s->base.backend;
    pthread_mutex_lock(&s->lock);
    bool (*needs)(void *) = s->listener_needs;
    void *cls = s->listener_cls;
    pthread_mutex_unlock(&s->lock);
    bool bare = needs && be->events_read_bare && !needs(cls);
    struct event_page p = {0};
    int rc = bare ? be->events_read_bare(s, s->feed_seq, STORE_FEED_PAGE, &p)
                  : be->events_read(s, NULL, NULL, s->feed_seq, STORE_FEED_PAGE,
                                    STORE_FEED_PAGE_BYTES, &p);
    if (rc) {
        event_page_release(&p);
        pthread_mutex_lock(&s->lock);
        s->stats.feed_errors++;
        pthread_mutex_unlock(&s->lock);
        return -1;
    }
    /* Retention went past us (a long outage): the listener's readers see
     * pruned_through and re-read state. */
    if (p.pruned_through > s->feed_seq && (p.n == 0 || p.events[0].seq > s->feed_seq + 1))
        s->feed_seq = p.pruned_through;
    store_events_resolve(s, p.events, p.n);
    if (bare) {
        pthread_mutex_lock(&s->lock);
        s->stats.feed_bare += p.n;
        pthread_mutex_unlock(&s->lock);
    }
    if (p.n) store_feed_deliver(s, p.events, p.n, true, SIZE_MAX);
    int more = p.n && (p.more || p.n == STORE_FEED_PAGE);
    event_page_release(&p);
    return more;
}

/*
 * Nodes compare each other's times (a lease's end, a due time, a webhook's
 * busy mark), each written by its node's clock, so a node whose clock runs
 * ahead expires other nodes' leases that much early. The feed thread reads
 * the database's clock once a minute, takes the offset from the middle of
 * the round trip (not when that took over STORE_CLOCK_RTT_MAX_MS) and logs
 * when this node's clock leaves or comes back within STORE_CLOCK_WARN_MS
 * of it; /metrics shows the offset (docs/operations.md).
 */
#define STORE_CLOCK_CHECK_MS   60000
#define STORE_CLOCK_WARN_MS    1000
#define STORE_CLOCK_RTT_MAX_MS 200

static void store_clock_check(struct store *s) {
    const struct store_backend *be = s->base.backend;
    s->clock_next = time_mono_ms() + STORE_CLOCK_CHECK_MS;
    /* The window is the query's alone (the backend takes the times): the
     * first reading used to include opening a reader connection, and read
     * 40 ms off where the next ones read 0 to 1. */
    int64_t before = 0, after = 0, db = 0;
    if (!be->clock_ms || be->clock_ms(s, &db, &before, &after))
        return; /* the next check tries again */
    if (after - before > STORE_CLOCK_RTT_MAX_MS) return;
    int64_t offset = db - before - (after - before) / 2;
    pthread_mutex_lock(&s->lock);
    s->stats.clock_offset_ms = offset;
    s->stats.clock_measured = true;
    pthread_mutex_unlock(&s->lock);
    bool skewed = offset > STORE_CLOCK_WARN_MS || offset < -STORE_CLOCK_WARN_MS;
    if (skewed && !s->clock_skewed)
        fprintf(stderr,
                "taskmill: this node's clock is %lld ms %s the database's: nodes compare each "
                "other's times (a lease's end, a due time), so a clock ahead expires other nodes' "
                "leases early and one behind expires them late; keep the clocks in step (NTP)\n",
                (long long)(offset < 0 ? -offset : offset), offset < 0 ? "ahead of" : "behind");
    else if (!skewed && s->clock_skewed)
        fprintf(stderr, "taskmill: this node's clock is within %d ms of the database's again\n",
                STORE_CLOCK_WARN_MS);
    s->clock_skewed = skewed;
}

/*
 * Tails the event log: after each announcement (ours, through
 * feed_interrupt, or another node's) and at least every
 * STORE_FEED_POLL_MS, hands every event after the last one it passed to
 * the listener and the writer, in seq order. Since seq order is commit
 * order, reading `seq > last` never skips one. Our own batches need no
 * read: when a batch of ours starts right after the last seq passed, no
 * other node's event can come between, and its events (kept by the
 * writer) are handed on as they are; only a gap (another node committed
 * first) or another node's announcement sends the feed to the log. With
 * one node, the log is read only by the poll.
 */
static void *store_feed_main(void *arg) {
    struct store *s = arg;
    const struct store_backend *be = s->base.backend;
    struct feed_local *local = NULL;
    store_clock_check(s);
    for (;;) {
        if (time_mono_ms() >= s->clock_next) store_clock_check(s);
        pthread_mutex_lock(&s->lock);
        bool stopping = s->feed_stopping, poked = s->feed_poke;
        s->feed_poke = false;
        struct feed_local *taken = s->local_head;
        s->local_head = s->local_tail = NULL;
        pthread_mutex_unlock(&s->lock);
        struct feed_local **tail = &local;
        while (*tail)
            tail = &(*tail)->next;
        *tail = taken;
        if (stopping) break;
        int64_t head = 0, waited_from = time_mono_ms();
        int rc = poked ? TM_ENOT_FOUND : be->feed_wait(s, STORE_FEED_POLL_MS, &head);
        /* Read the log when another node may have written: an announcement
         * past what we passed, a poll (the wait ran out), or a lost
         * listener; not when the writer woke us with a batch of ours. */
        bool need_read =
            !poked && (rc != TM_ENOT_FOUND || time_mono_ms() - waited_from >= STORE_FEED_POLL_MS);
        if (rc == 0) {
            pthread_mutex_lock(&s->lock);
            s->stats.feed_wakeups++;
            pthread_mutex_unlock(&s->lock);
            need_read = head == 0 || head > s->feed_seq;
        } else if (rc != TM_ENOT_FOUND) {
            pthread_mutex_lock(&s->lock);
            s->stats.feed_errors++;
            pthread_mutex_unlock(&s->lock);
            struct timespec pause = {0, 100 * 1000000L};
            nanosleep(&pause, NULL);
        }
        for (;;) {
            /* Ours that were read from the log already. */
            while (local && local->events[local->n - 1].seq <= s->feed_seq) {
                struct feed_local *done = local;
                local = local->next;
                done->next = NULL;
                feed_local_free(done);
            }
            if (local && local->events[0].seq <= s->feed_seq + 1) {
                size_t skip = (size_t)(s->feed_seq + 1 - local->events[0].seq);
                store_feed_deliver(s, local->events + skip, local->n - skip, false,
                                   local->deliveries);
                continue;
            }
            if (!local && !need_read) break;
            int more = store_feed_read(s);
            if (more < 0) break;
            /* A gap before our batch that the log does not fill yet: a
             * commit is not visible to readers at once; look again soon. */
            if (!more && local && local->events[0].seq > s->feed_seq + 1) {
                pthread_mutex_lock(&s->lock);
                s->feed_poke = true;
                pthread_mutex_unlock(&s->lock);
                struct timespec pause = {0, 1000000L};
                nanosleep(&pause, NULL);
                break;
            }
            need_read = more > 0;
        }
    }
    feed_local_free(local);
    return NULL;
}

const struct store_options *store_options_of(const struct store *s) {
    return &s->opt;
}

/* Whether s (n bytes, %XX decoded as libpq decodes a URI's keywords) is "password". */
static bool store_url_key_is_password(const char *s, size_t n) {
    static const char want[] = "password";
    size_t k = 0;
    for (size_t i = 0; i < n; i++, k++) {
        char c = s[i];
        if (c == '%' && i + 2 < n && isxdigit((unsigned char)s[i + 1]) &&
            isxdigit((unsigned char)s[i + 2])) {
            char hex[3] = {s[i + 1], s[i + 2], '\0'};
            c = (char)strtol(hex, NULL, 16);
            i += 2;
        }
        if (k >= sizeof want - 1 || c != want[k]) return false;
    }
    return k == sizeof want - 1;
}

void store_url_redact(const char *url, char *out, size_t n) {
    struct buf b;
    buf_init(&b);
    const char *p = url, *scheme_end = strstr(url, "://");
    if (scheme_end) {
        /* The userinfo ends at the first '@' before any '/', as libpq reads it. */
        const char *auth = scheme_end + 3;
        size_t span = strcspn(auth, "@/");
        const char *colon = auth[span] == '@' ? memchr(auth, ':', span) : NULL;
        if (colon) {
            buf_put(&b, url, (size_t)(colon - url));
            buf_puts(&b, ":***");
            p = auth + span;
        }
    }
    /* Parameters: "?k=v&k=v" of a URI, or "k=v k=v" of a libpq string. */
    while (*p) {
        size_t seg = strcspn(p, "?& ");
        const char *eq = memchr(p, '=', seg);
        if (eq && store_url_key_is_password(p, (size_t)(eq - p))) {
            buf_put(&b, p, (size_t)(eq - p) + 1);
            buf_puts(&b, "***");
        } else {
            buf_put(&b, p, seg);
        }
        p += seg;
        if (*p) buf_putc(&b, *p++);
    }
    snprintf(out, n, "%s", b.p ? b.p : "");
    buf_release(&b);
}

int store_open(const char *url, const struct store_options *opt, struct store **out,
               struct tm_error *e) {
    const struct store_backend *be = NULL;
    for (size_t i = 0; i < sizeof store_backends / sizeof store_backends[0]; i++) {
        const char *schemes[] = {store_backends[i]->scheme, store_backends[i]->scheme2};
        for (int k = 0; k < 2; k++) {
            size_t n = schemes[k] ? strlen(schemes[k]) : 0;
            if (n && strncmp(url, schemes[k], n) == 0 && url[n] == ':') be = store_backends[i];
        }
    }
    if (!be) {
        char shown[512];
        store_url_redact(url, shown, sizeof shown);
        /* Without "://" the redaction above sees no userinfo; a URL that
         * names no backend may still be one with its scheme left out
         * ("u:pw@h/db"): whatever stands between its first ':' and an '@'
         * before any '/' is hidden too. */
        const char *at = strchr(shown, '@');
        if (!strstr(url, "://") && at && !memchr(shown, '/', (size_t)(at - shown))) {
            const char *colon = memchr(shown, ':', (size_t)(at - shown));
            if (colon) {
                char tail[sizeof shown];
                snprintf(tail, sizeof tail, "%s", at);
                snprintf(shown + (colon - shown), sizeof shown - (size_t)(colon - shown), ":***%s",
                         tail);
            }
        }
        return err_set(e, TM_EINVALID, "store",
                       "store URL '%.64s' names no known backend (use 'sqlite:PATH' or "
                       "'postgres://...')",
                       shown);
    }

    struct store *s = xcalloc(1, sizeof *s);
    s->base.backend = be;
    if (opt) s->opt = *opt;
    if (s->opt.sweep_max_ms <= 0) s->opt.sweep_max_ms = 1000;
    if (s->opt.tool) { /* no retention; no schedules; no sweep (store_run_batch) */
        s->opt.events_max_age_ms = s->opt.events_max_count = -1;
        s->opt.finished_max_age_ms = 0;
        s->opt.make_task = NULL;
    }
    if (s->opt.events_max_age_ms == 0) s->opt.events_max_age_ms = 7LL * 24 * 3600 * 1000;
    if (s->opt.events_max_count == 0) s->opt.events_max_count = 1000000;
    if (s->opt.event_task_max_bytes == 0) s->opt.event_task_max_bytes = STORE_EVENT_TASK_MAX_BYTES;
    if (s->opt.attributes_max_keys <= 0) s->opt.attributes_max_keys = 1000;
    if (s->opt.attributes_max_bytes == 0) s->opt.attributes_max_bytes = 256 * 1024;
    if (s->opt.webhooks_max <= 0) s->opt.webhooks_max = 100;
    if (s->opt.query_timeout_ms == 0) s->opt.query_timeout_ms = 5000;
    id_random_bytes(&s->rng, sizeof s->rng);
    s->rng |= 1;
    id_random_hex(s->node);
    pthread_mutex_init(&s->lock, NULL);
    time_cond_init(&s->cond);

    int rc = be->open(s, url, &s->opt, e);
    if (rc == 0) rc = be->next_due(s, &s->next_due);
    int64_t head = 0, through = 0;
    if (rc == 0) rc = be->events_head(s, &head, &through);
    s->stats.event_seq = (uint64_t)head;
    s->stats.events_pruned_through = (uint64_t)through;
    s->feed_seq = head;
    s->due_checked = time_now_ms();
    if (rc) {
        if (!e || !e->code) err_set(e, rc, "store", "cannot open store '%.64s'", url);
        be->close(s);
        pthread_mutex_destroy(&s->lock);
        pthread_cond_destroy(&s->cond);
        free(s);
        return rc;
    }
    /* Before the writer starts: it reads s->cache. */
    if (!be->shared && s->opt.read_cache_bytes >= 0)
        s->cache = store_cache_new(s->opt.read_cache_bytes ? (size_t)s->opt.read_cache_bytes
                                                           : STORE_READ_CACHE_BYTES);
    if (pthread_create(&s->writer, NULL, store_writer_main, s) != 0) {
        be->close(s);
        store_cache_free(s->cache);
        free(s);
        return err_set(e, TM_EINTERNAL, "", "cannot start the store's writer thread");
    }
    s->writer_started = true;
    if (be->shared) s->feed_started = pthread_create(&s->feed, NULL, store_feed_main, s) == 0;
    *out = s;
    return 0;
}

void store_stop(struct store *s) {
    if (!s) return;
    if (s->feed_started) {
        pthread_mutex_lock(&s->lock);
        s->feed_stopping = true;
        pthread_mutex_unlock(&s->lock);
        s->base.backend->feed_interrupt(s);
        pthread_join(s->feed, NULL);
        s->feed_started = false;
    }
    if (!s->writer_started) return;
    pthread_mutex_lock(&s->lock);
    s->stopping = true;
    pthread_cond_signal(&s->cond);
    pthread_mutex_unlock(&s->lock);
    pthread_join(s->writer, NULL);
    s->writer_started = false;
}

void store_close(struct store *s) {
    if (!s) return;
    store_stop(s);
    s->base.backend->close(s);
    store_remote_release(&s->remote);
    feed_local_free(s->local_head);
    queue_counts_free(s->retain, s->nretain);
    retain_pairs_free(s->round, s->nround);
    store_cache_free(s->cache);
    pthread_mutex_destroy(&s->lock);
    pthread_cond_destroy(&s->cond);
    free(s);
}

const char *store_backend_name(const struct store *s) {
    return s->base.backend->scheme;
}

void store_op_init(struct store_op *op, enum store_op_kind kind) {
    memset(op, 0, sizeof *op);
    op->kind = kind;
}

void store_op_init_create(struct store_op *op, const char *ns, struct task *t) {
    store_op_init(op, STORE_OP_CREATE);
    op->ns = ns;
    op->tasks = xmalloc(sizeof *op->tasks);
    op->tasks[0] = t;
    op->ntasks = 1;
}

void store_op_release(struct store_op *op) {
    if (op->kind == STORE_OP_CREATE) {
        for (size_t i = 0; i < op->ntasks; i++)
            task_free(op->tasks[i]);
        free(op->tasks);
        op->tasks = NULL;
        op->ntasks = 0;
    } else {
        task_free(op->task);
    }
    op->task = NULL;
    free(op->task_json);
    op->task_json = NULL;
    deliveries_free(op->claimed_delivery, op->claimed_delivery ? 1 : 0);
    op->claimed_delivery = NULL;
}

void store_op_write_task(struct buf *b, const struct store_op *op, const struct task *t) {
    if (op && op->task_json && op->task_json_version == t->version &&
        strcmp(op->task_json_id, t->id) == 0)
        buf_puts(b, op->task_json);
    else
        task_json_write(b, t);
}

void store_op_cancel(struct store *s, struct store_op *op, int code, const char *message) {
    if (atomic_load(&op->cancel_code)) return;
    snprintf(op->cancel_message, sizeof op->cancel_message, "%s", message);
    atomic_store(&op->cancel_code, code);
    pthread_mutex_lock(&s->lock);
    pthread_cond_signal(&s->cond);
    pthread_mutex_unlock(&s->lock);
}

void store_submit(struct store *s, struct store_op *op) {
    store_submit_list(s, &op, 1);
}

void store_submit_list(struct store *s, struct store_op *const *ops, size_t n) {
    if (!n) return;
    for (size_t i = 0; i < n; i++) {
        err_clear(&ops[i]->err);
        ops[i]->next = i + 1 < n ? ops[i + 1] : NULL;
    }
    pthread_mutex_lock(&s->lock);
    if (s->stopping || s->stopped) {
        pthread_mutex_unlock(&s->lock);
        for (size_t i = 0; i < n; i++) {
            err_set(&ops[i]->err, TM_EUNAVAILABLE, "", "the server is stopping");
            ops[i]->next = NULL;
        }
        for (size_t i = 0; i < n; i++)
            ops[i]->done(ops[i]);
        return;
    }
    if (s->queue_tail)
        s->queue_tail->next = ops[0];
    else
        s->queue_head = ops[0];
    s->queue_tail = ops[n - 1];
    pthread_mutex_unlock(&s->lock);
    /* After the unlock: the writer, woken, does not then wait for the lock. */
    pthread_cond_signal(&s->cond);
}

struct store_waiter {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    size_t left; /* ops not done yet */
};

static void store_run_done(struct store_op *op) {
    struct store_waiter *w = op->udata;
    pthread_mutex_lock(&w->lock);
    if (--w->left == 0) pthread_cond_signal(&w->cond);
    pthread_mutex_unlock(&w->lock);
}

void store_run_many(struct store *s, struct store_op *ops, size_t n) {
    struct store_waiter w = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, n};
    for (size_t i = 0; i < n; i++) {
        ops[i].done = store_run_done;
        ops[i].udata = &w;
    }
    for (size_t i = 0; i < n; i++)
        store_submit(s, &ops[i]);
    pthread_mutex_lock(&w.lock);
    while (w.left)
        pthread_cond_wait(&w.cond, &w.lock);
    pthread_mutex_unlock(&w.lock);
    pthread_mutex_destroy(&w.lock);
    pthread_cond_destroy(&w.cond);
}

int store_run(struct store *s, struct store_op *op) {
    store_run_many(s, op, 1);
    return op->err.code;
}

void store_set_listener(struct store *s, void (*fn)(void *cls, const struct store_commit *c),
                        void *cls) {
    pthread_mutex_lock(&s->lock);
    s->listener = fn;
    s->listener_cls = cls;
    pthread_mutex_unlock(&s->lock);
}

void store_set_listener_needs(struct store *s, bool (*needs_json)(void *cls)) {
    pthread_mutex_lock(&s->lock);
    s->listener_needs = needs_json;
    pthread_mutex_unlock(&s->lock);
}

void store_get_stats(struct store *s, struct store_stats *out) {
    pthread_mutex_lock(&s->lock);
    *out = s->stats;
    pthread_mutex_unlock(&s->lock);
    store_cache_stats(s->cache, &out->read_cache_hits, &out->read_cache_misses,
                      &out->read_cache_entries, &out->read_cache_bytes);
    if (s->base.backend->stats) s->base.backend->stats(s, out);
}

/* ---- Reads ---- */

static int store_read_error(int rc, struct tm_error *e, const char *id) {
    if (rc == TM_ENOT_FOUND) return err_set(e, rc, "", "task '%.64s' not found", id ? id : "");
    if (rc == TM_EUNAVAILABLE) return err_set(e, rc, "", "storage unavailable; try again");
    if (rc == TM_EQUERY_TIMEOUT)
        return err_set(e, rc, "",
                       "the query ran past its time limit (--query-timeout-ms); narrow "
                       "its filters or its search");
    return err_set(e, TM_EINTERNAL, "", "storage error");
}

int store_task_get(struct store *s, const char *ns, const char *id, struct task **out,
                   struct tm_error *e) {
    int rc = s->base.backend->get(s, ns, id, out);
    return rc ? store_read_error(rc, e, id) : 0;
}

int store_task_render(struct store *s, const char *ns, const char *id,
                      void (*render)(struct buf *b, const struct task *t), struct buf *out,
                      struct tm_error *e) {
    uint64_t gen = 0;
    /* A function pointer, compared as an address: what the bytes are. */
    const void *kind = (const void *)(uintptr_t)render;
    if (s->cache && store_cache_get(s->cache, ns, id, kind, out, &gen)) return 0;
    struct task *t = NULL;
    int rc = store_task_get(s, ns, id, &t, e);
    if (rc) return rc;
    size_t at = out->len;
    render(out, t);
    if (s->cache)
        store_cache_put(s->cache, gen, t->namespace ? t->namespace : "", id, kind, out->p + at,
                        out->len - at);
    task_free(t);
    return 0;
}

int store_task_list(struct store *s, const struct task_filter *f, struct task_list *out,
                    struct tm_error *e) {
    memset(out, 0, sizeof *out);
    int rc = s->base.backend->list(s, f, out);
    if (rc) task_list_release(out); /* a page read before a failure (a count timed out) */
    if (rc == 0 && f->want_total && f->total_max > 0 && out->total > f->total_max) {
        out->total = f->total_max; /* the backend counted one row past the bound */
        out->total_capped = true;
    }
    return rc ? store_read_error(rc, e, NULL) : 0;
}

void task_list_release(struct task_list *l) {
    for (size_t i = 0; i < l->n; i++)
        task_free(l->tasks[i]);
    free(l->tasks);
    memset(l, 0, sizeof *l);
}

int store_queue_counts(struct store *s, const char *ns, struct queue_counts **out, size_t *n,
                       struct tm_error *e) {
    int rc = s->base.backend->queue_counts(s, ns, out, n);
    if (!rc) return 0;
    queue_counts_free(*out, *n); /* what the backend listed before it failed */
    *out = NULL;
    *n = 0;
    return store_read_error(rc, e, NULL);
}

struct queue_counts *store_queue_slot(struct queue_counts **qc, size_t *n, size_t *cap,
                                      const char *name) {
    for (size_t i = 0; i < *n; i++)
        if (strcmp((*qc)[i].queue, name) == 0) return &(*qc)[i];
    if (*n == *cap) {
        *cap = *cap ? *cap * 2 : 4;
        *qc = xrealloc(*qc, *cap * sizeof **qc);
    }
    struct queue_counts *e = &(*qc)[(*n)++];
    memset(e, 0, sizeof *e);
    e->queue = xstrdup(name);
    queue_settings_default(&e->settings);
    return e;
}

void queue_counts_free(struct queue_counts *q, size_t n) {
    for (size_t i = 0; i < n; i++)
        free(q[i].queue);
    free(q);
}

void store_doc_release(struct store_doc *d) {
    if (d) store_fields_release(d, store_doc_fields);
}

void store_docs_free(struct store_doc *d, size_t n) {
    for (size_t i = 0; i < n; i++)
        store_doc_release(&d[i]);
    free(d);
}

int store_doc_get(struct store *s, enum store_doc_kind k, const char *ns, const char *key,
                  struct store_doc *out, struct tm_error *e) {
    memset(out, 0, sizeof *out);
    int rc = s->base.backend->doc_get(s, k, ns, key, out);
    const char *noun = k == STORE_DOC_SCHEDULE ? "schedule" : "definition";
    if (rc == TM_ENOT_FOUND) return err_set(e, rc, "", "%s '%.64s' not found", noun, key);
    if (rc == TM_ECONFLICT)
        return err_set(e, rc, "",
                       "several namespaces have a %s named '%.64s': name it by its id, or with "
                       "a token of its namespace",
                       noun, key);
    return rc ? store_read_error(rc, e, NULL) : 0;
}

int store_doc_list(struct store *s, enum store_doc_kind k, const char *ns, struct store_doc **out,
                   size_t *n, struct tm_error *e) {
    *out = NULL;
    *n = 0;
    int rc = s->base.backend->doc_list(s, k, ns, out, n);
    return rc ? store_read_error(rc, e, NULL) : 0;
}

int store_fires_list(struct store *s, const char *sched_id, int limit, struct schedule_fire **out,
                     size_t *n, struct tm_error *e) {
    *out = NULL;
    *n = 0;
    int rc = s->base.backend->fires_list(s, sched_id, limit, out, n);
    return rc ? store_read_error(rc, e, NULL) : 0;
}

int store_queue_stats(struct store *s, const char *ns, const char *queue, int64_t from_minute,
                      int64_t to_minute, struct queue_stat **out, size_t *n, struct tm_error *e) {
    *out = NULL;
    *n = 0;
    int rc = s->base.backend->stats_read(s, ns, queue, from_minute, to_minute, out, n);
    return rc ? store_read_error(rc, e, NULL) : 0;
}

const char *store_refusing(struct store *s) {
    return s->base.backend->refusing ? s->base.backend->refusing(s) : NULL;
}

int store_ping(struct store *s, struct tm_error *e) {
    int rc = s->base.backend->ping(s);
    return rc ? store_read_error(rc, e, NULL) : 0;
}
