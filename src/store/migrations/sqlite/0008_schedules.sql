-- 0008: task definitions and schedules (docs/schedules.md). Each is kept as
-- its validated JSON (body) beside the columns the store looks things up by.
CREATE TABLE definitions (
    id         TEXT PRIMARY KEY,
    namespace  TEXT NOT NULL,
    name       TEXT NOT NULL,
    body       TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    UNIQUE (namespace, name)
) WITHOUT ROWID;
-- state: what firing keeps (last slot, last task, missed count, the pause note).
-- next_at: wall ms of the next fire; NULL when paused or finished.
CREATE TABLE schedules (
    id         TEXT PRIMARY KEY,
    namespace  TEXT NOT NULL,
    name       TEXT NOT NULL,
    body       TEXT NOT NULL,
    state      TEXT NOT NULL,
    next_at    INTEGER,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    UNIQUE (namespace, name)
) WITHOUT ROWID;
CREATE INDEX schedules_next ON schedules (next_at) WHERE next_at IS NOT NULL;
-- One row per fired slot: the unique key that makes a slot fire once, on
-- any number of nodes and across restarts. task_id is NULL when the
-- overlap policy skipped the slot.
CREATE TABLE schedule_fires (
    schedule_id TEXT NOT NULL,
    slot        INTEGER NOT NULL, -- the slot's nominal wall ms (trigger: when asked)
    kind        TEXT NOT NULL,    -- slot, catchup, trigger, backfill
    task_id     TEXT,
    outcome     TEXT NOT NULL,    -- created, skipped, cancelled_previous
    at          INTEGER NOT NULL,
    PRIMARY KEY (schedule_id, slot)
) WITHOUT ROWID;
