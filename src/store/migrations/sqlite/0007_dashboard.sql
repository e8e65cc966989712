-- 0007: what the dashboard shows (docs/dashboard.md).
-- A queue may be paused (its tasks are not handed to workers); a queue row
-- made only by a pause is not `configured` (its settings are the defaults).
ALTER TABLE queues ADD COLUMN paused INTEGER NOT NULL DEFAULT 0;
ALTER TABLE queues ADD COLUMN configured INTEGER NOT NULL DEFAULT 1;
-- The token that caused an event ("open" in open mode; NULL: the server's own sweeps).
ALTER TABLE events ADD COLUMN actor TEXT;
-- Each claim of a task: a JSON array of {attempt, worker, started_at,
-- ended_at, outcome, error}, the newest 50 kept.
ALTER TABLE tasks ADD COLUMN attempts TEXT;
-- Per queue, namespace and minute: what happened, kept two days, so the
-- dashboard's charts survive a restart.
CREATE TABLE queue_stats (
    queue       TEXT NOT NULL,
    namespace   TEXT NOT NULL,
    minute      INTEGER NOT NULL, -- wall ms / 60000
    node        TEXT NOT NULL,    -- the server that counted (no two nodes write one row)
    submitted   INTEGER NOT NULL DEFAULT 0,
    completed   INTEGER NOT NULL DEFAULT 0,
    failed      INTEGER NOT NULL DEFAULT 0,
    latency_sum INTEGER NOT NULL DEFAULT 0, -- ms from ready to claim, first claims
    latency_n   INTEGER NOT NULL DEFAULT 0,
    latency_max INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (queue, namespace, minute, node)
) WITHOUT ROWID;
CREATE INDEX queue_stats_minute ON queue_stats (minute);
