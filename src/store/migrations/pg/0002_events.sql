-- 0002: the event log, webhooks and their deliveries (as SQLite's 0002).
--
-- Every change to a task appends one row to `events` in the transaction of
-- the change. `seq` is not a sequence: every writer takes its numbers from
-- the `head` row of event_meta, updated in its transaction, so concurrent
-- batches (several nodes) number in turn and seq order is commit order; a
-- reader that has seen seq N has seen every seq below it. `task` is the
-- task's v1 JSON after the change (TEXT: cheaper to write than jsonb).
CREATE TABLE events (
    seq        BIGINT PRIMARY KEY,
    at         BIGINT NOT NULL,
    kind       TEXT COLLATE "C" NOT NULL,
    cause      TEXT COLLATE "C" NOT NULL,
    task_id    TEXT COLLATE "C" NOT NULL,
    namespace  TEXT COLLATE "C" NOT NULL,
    queue      TEXT COLLATE "C" NOT NULL,
    type       TEXT COLLATE "C" NOT NULL,
    phase      TEXT COLLATE "C" NOT NULL,
    version    BIGINT NOT NULL,
    task       TEXT NOT NULL
);
CREATE INDEX events_task ON events (task_id, seq);
CREATE INDEX events_at ON events (at);

-- `head` is the last seq handed out; `pruned_through` the highest seq
-- removed by retention (a resume from below it has lost events);
-- `pruned_total` counts the events retention removed.
CREATE TABLE event_meta (
    name  TEXT COLLATE "C" PRIMARY KEY,
    value BIGINT NOT NULL
);
INSERT INTO event_meta (name, value) VALUES ('head', 0), ('pruned_through', 0), ('pruned_total', 0);

-- `events` is a comma-separated list of Livepeer event names, with commas
-- at both ends (",task.updated,task.completed,") so a match is one strpos().
-- `busy_until`: a node is sending one of its deliveries until then (ms), so
-- one delivery per webhook is in flight across every node.
CREATE TABLE webhooks (
    id          TEXT COLLATE "C" PRIMARY KEY,
    namespace   TEXT COLLATE "C",
    name        TEXT COLLATE "C",
    url         TEXT NOT NULL,
    events      TEXT COLLATE "C" NOT NULL,
    secret      TEXT,
    created_at  BIGINT NOT NULL,
    busy_until  BIGINT NOT NULL DEFAULT 0
);

-- One row per (webhook, Livepeer event) to send, inserted in the same
-- transaction as the task event, so a delivery survives any restart.
-- status: 'pending' (next_at is the next attempt), 'delivered', 'failed'.
CREATE TABLE webhook_deliveries (
    id           TEXT COLLATE "C" PRIMARY KEY,
    webhook_id   TEXT COLLATE "C" NOT NULL,
    seq          BIGINT NOT NULL,
    event        TEXT COLLATE "C" NOT NULL,
    status       TEXT COLLATE "C" NOT NULL,
    attempts     BIGINT NOT NULL DEFAULT 0,
    next_at      BIGINT NOT NULL,
    last_status  BIGINT NOT NULL DEFAULT 0,
    last_error   TEXT,
    created_at   BIGINT NOT NULL,
    updated_at   BIGINT NOT NULL
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_at, seq) WHERE status = 'pending';
CREATE INDEX webhook_deliveries_hook ON webhook_deliveries (webhook_id, seq);
CREATE INDEX webhook_deliveries_seq ON webhook_deliveries (seq) WHERE status = 'pending';
-- delivery_claim: each free webhook's first due delivery, in the claim's
-- order (next_at, seq, then spawned < updated < completed/failed), so a
-- claim costs one probe per webhook however long a busy one's backlog is.
CREATE INDEX webhook_deliveries_hook_due ON webhook_deliveries (webhook_id, next_at, seq,
    (CASE event WHEN 'task.spawned' THEN 0 WHEN 'task.updated' THEN 1 ELSE 2 END))
    WHERE status = 'pending';
