-- 0001: the task table and the indexes of the hot paths (as SQLite's
-- 0001 and 0005). Times are BIGINT epoch ms (0 = unset), flags INTEGER 0/1,
-- JSON fields TEXT as the record holds them. Text compares and sorts
-- bytewise (COLLATE "C"), as SQLite's BINARY does, whatever the cluster's
-- locale, and lower()/upper() fold ASCII only, as SQLite's do.
CREATE TABLE tasks (
    id                TEXT COLLATE "C" PRIMARY KEY,
    namespace         TEXT COLLATE "C" NOT NULL,
    type              TEXT COLLATE "C" NOT NULL,
    name              TEXT COLLATE "C",
    description       TEXT COLLATE "C",
    queue             TEXT COLLATE "C" NOT NULL,
    priority          BIGINT NOT NULL DEFAULT 0,
    parent_id         TEXT COLLATE "C",
    launcher          TEXT COLLATE "C",
    target            TEXT COLLATE "C",
    definition        TEXT COLLATE "C",
    params            TEXT COLLATE "C",
    phase             TEXT COLLATE "C" NOT NULL,
    completion_status TEXT COLLATE "C",
    ratio             DOUBLE PRECISION NOT NULL DEFAULT 0,
    ratio_set         INTEGER NOT NULL DEFAULT 0,
    progress_message  TEXT COLLATE "C",
    processed         BIGINT NOT NULL DEFAULT 0,
    processing        BIGINT NOT NULL DEFAULT 0,
    pending           BIGINT NOT NULL DEFAULT 0,
    progress_at       BIGINT NOT NULL DEFAULT 0,
    child_pending     BIGINT NOT NULL DEFAULT 0,
    child_processing  BIGINT NOT NULL DEFAULT 0,
    child_processed   BIGINT NOT NULL DEFAULT 0,
    child_ended       BIGINT NOT NULL DEFAULT 0,
    awaiting_children INTEGER NOT NULL DEFAULT 0,
    items             TEXT COLLATE "C",
    messages          TEXT COLLATE "C",
    message_count     BIGINT NOT NULL DEFAULT 0,
    warned            INTEGER NOT NULL DEFAULT 0,
    result            TEXT COLLATE "C",
    returns           TEXT COLLATE "C",
    attributes        TEXT COLLATE "C",
    error             TEXT COLLATE "C",
    error_temporary   INTEGER NOT NULL DEFAULT 0,
    attempt           BIGINT NOT NULL DEFAULT 0,
    retries           BIGINT NOT NULL DEFAULT 0,
    max_retries       BIGINT NOT NULL DEFAULT 0,
    backoff_ms        BIGINT NOT NULL DEFAULT 0,
    backoff_max_ms    BIGINT NOT NULL DEFAULT 0,
    lease_worker      TEXT COLLATE "C",
    lease_token       TEXT COLLATE "C",
    lease_ms          BIGINT NOT NULL DEFAULT 0,
    lease_expires_at  BIGINT NOT NULL DEFAULT 0,
    created_at        BIGINT NOT NULL,
    updated_at        BIGINT NOT NULL,
    scheduled_at      BIGINT NOT NULL DEFAULT 0,
    started_at        BIGINT NOT NULL DEFAULT 0,
    completed_at      BIGINT NOT NULL DEFAULT 0,
    ready_at          BIGINT NOT NULL DEFAULT 0,
    version           BIGINT NOT NULL,
    paused            INTEGER NOT NULL DEFAULT 0,
    idempotency_key   TEXT COLLATE "C",
    due_at            BIGINT
);

-- The next task to claim: first by priority, then by when it became ready
-- (claim_next reads it with FOR UPDATE SKIP LOCKED).
CREATE INDEX tasks_claim ON tasks (queue, priority, ready_at, id)
    WHERE phase = 'pending' AND paused = 0;
-- Leases to expire and waiting tasks to wake.
CREATE INDEX tasks_due ON tasks (due_at) WHERE due_at IS NOT NULL;
CREATE UNIQUE INDEX tasks_idempotency ON tasks (namespace, idempotency_key)
    WHERE idempotency_key IS NOT NULL;
CREATE INDEX tasks_parent ON tasks (parent_id) WHERE parent_id IS NOT NULL;
CREATE INDEX tasks_ns ON tasks (namespace, id);
