-- 0004: per-queue retry settings (PUT /v1/queues/{queue}); tasks that do
-- not set max_retries or backoff take them from their queue at submit.
CREATE TABLE queues (
    name           TEXT PRIMARY KEY,
    max_retries    INTEGER NOT NULL,
    backoff_ms     INTEGER NOT NULL,
    backoff_max_ms INTEGER NOT NULL
) WITHOUT ROWID;
