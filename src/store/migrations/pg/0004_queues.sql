-- 0004: per-queue retry settings (PUT /v1/queues/{queue}); tasks that do
-- not set max_retries or backoff take them from their queue at submit.
CREATE TABLE queues (
    name           TEXT COLLATE "C" PRIMARY KEY,
    max_retries    BIGINT NOT NULL,
    backoff_ms     BIGINT NOT NULL,
    backoff_max_ms BIGINT NOT NULL
);
