-- 0012: how long a queue keeps its finished tasks, per terminal phase
-- (PUT /v1/queues/{queue} "retention"), in seconds; NULL: the server's
-- --finished-max-age-seconds, 0: kept (docs/storage.md, retention).
ALTER TABLE queues ADD COLUMN retain_completed_seconds BIGINT;
ALTER TABLE queues ADD COLUMN retain_failed_seconds BIGINT;
ALTER TABLE queues ADD COLUMN retain_cancelled_seconds BIGINT;
