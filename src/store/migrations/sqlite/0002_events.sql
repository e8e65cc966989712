-- 0002: the event log, webhooks and their deliveries.
--
-- Every change to a task appends one row to `events` in the transaction of
-- the change; `seq` is the global, strictly increasing sequence that SSE
-- clients resume from. AUTOINCREMENT keeps a pruned seq from ever being
-- handed out again. `task` is the task's v1 JSON after the change.
CREATE TABLE events (
    seq        INTEGER PRIMARY KEY AUTOINCREMENT,
    at         INTEGER NOT NULL,
    kind       TEXT NOT NULL,
    cause      TEXT NOT NULL,
    task_id    TEXT NOT NULL,
    namespace  TEXT NOT NULL,
    queue      TEXT NOT NULL,
    type       TEXT NOT NULL,
    phase      TEXT NOT NULL,
    version    INTEGER NOT NULL,
    task       TEXT NOT NULL
);
CREATE INDEX events_task ON events (task_id, seq);
CREATE INDEX events_at ON events (at);

-- Counters that must survive restarts: `pruned_through` is the highest seq
-- removed by retention (a resume from below it has lost events).
CREATE TABLE event_meta (
    name  TEXT PRIMARY KEY,
    value INTEGER NOT NULL
) WITHOUT ROWID;
INSERT INTO event_meta (name, value) VALUES ('pruned_through', 0), ('pruned_total', 0);

-- `events` is a comma-separated list of Livepeer event names, with commas
-- at both ends (",task.updated,task.completed,") so a match is one instr().
CREATE TABLE webhooks (
    id          TEXT PRIMARY KEY,
    namespace   TEXT,
    name        TEXT,
    url         TEXT NOT NULL,
    events      TEXT NOT NULL,
    secret      TEXT,
    created_at  INTEGER NOT NULL
) WITHOUT ROWID;

-- One row per (webhook, Livepeer event) to send, inserted in the same
-- transaction as the task event, so a delivery survives any restart.
-- status: 'pending' (next_at is the next attempt), 'delivered', 'failed'.
CREATE TABLE webhook_deliveries (
    id           TEXT PRIMARY KEY,
    webhook_id   TEXT NOT NULL,
    seq          INTEGER NOT NULL,
    event        TEXT NOT NULL,
    status       TEXT NOT NULL,
    attempts     INTEGER NOT NULL DEFAULT 0,
    next_at      INTEGER NOT NULL,
    last_status  INTEGER NOT NULL DEFAULT 0,
    last_error   TEXT,
    created_at   INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_at, seq) WHERE status = 'pending';
CREATE INDEX webhook_deliveries_hook ON webhook_deliveries (webhook_id, seq);
CREATE INDEX webhook_deliveries_seq ON webhook_deliveries (seq) WHERE status = 'pending';
