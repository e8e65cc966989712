-- 0001: the task table and the indexes of the hot paths.
CREATE TABLE tasks (
    id                TEXT PRIMARY KEY,
    namespace         TEXT NOT NULL,
    type              TEXT NOT NULL,
    name              TEXT,
    description       TEXT,
    queue             TEXT NOT NULL,
    priority          INTEGER NOT NULL DEFAULT 0,
    parent_id         TEXT,
    launcher          TEXT,
    target            TEXT,
    definition        TEXT,
    params            TEXT,
    phase             TEXT NOT NULL,
    completion_status TEXT,
    ratio             REAL NOT NULL DEFAULT 0,
    ratio_set         INTEGER NOT NULL DEFAULT 0,
    progress_message  TEXT,
    processed         INTEGER NOT NULL DEFAULT 0,
    processing        INTEGER NOT NULL DEFAULT 0,
    pending           INTEGER NOT NULL DEFAULT 0,
    progress_at       INTEGER NOT NULL DEFAULT 0,
    child_pending     INTEGER NOT NULL DEFAULT 0,
    child_processing  INTEGER NOT NULL DEFAULT 0,
    child_processed   INTEGER NOT NULL DEFAULT 0,
    items             TEXT,
    messages          TEXT,
    message_count     INTEGER NOT NULL DEFAULT 0,
    warned            INTEGER NOT NULL DEFAULT 0,
    result            TEXT,
    returns           TEXT,
    attributes        TEXT,
    error             TEXT,
    error_temporary   INTEGER NOT NULL DEFAULT 0,
    attempt           INTEGER NOT NULL DEFAULT 0,
    retries           INTEGER NOT NULL DEFAULT 0,
    max_retries       INTEGER NOT NULL DEFAULT 0,
    backoff_ms        INTEGER NOT NULL DEFAULT 0,
    backoff_max_ms    INTEGER NOT NULL DEFAULT 0,
    lease_worker      TEXT,
    lease_token       TEXT,
    lease_ms          INTEGER NOT NULL DEFAULT 0,
    lease_expires_at  INTEGER NOT NULL DEFAULT 0,
    created_at        INTEGER NOT NULL,
    updated_at        INTEGER NOT NULL,
    scheduled_at      INTEGER NOT NULL DEFAULT 0,
    started_at        INTEGER NOT NULL DEFAULT 0,
    completed_at      INTEGER NOT NULL DEFAULT 0,
    ready_at          INTEGER NOT NULL DEFAULT 0,
    version           INTEGER NOT NULL,
    paused            INTEGER NOT NULL DEFAULT 0,
    idempotency_key   TEXT,
    due_at            INTEGER
) WITHOUT ROWID;

-- The next task to claim: first by priority, then by when it became ready.
CREATE INDEX tasks_claim ON tasks (queue, priority, ready_at, id)
    WHERE phase = 'pending' AND paused = 0;
-- Leases to expire and waiting tasks to wake.
CREATE INDEX tasks_due ON tasks (due_at) WHERE due_at IS NOT NULL;
CREATE UNIQUE INDEX tasks_idempotency ON tasks (namespace, idempotency_key)
    WHERE idempotency_key IS NOT NULL;
CREATE INDEX tasks_parent ON tasks (parent_id) WHERE parent_id IS NOT NULL;
CREATE INDEX tasks_ns ON tasks (namespace, id);
