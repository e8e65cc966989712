-- 0016: how long a queue keeps its finished tasks, per terminal phase
-- (PUT /v1/queues/{queue} "retention"), in seconds; NULL: the server's
-- --finished-max-age-seconds, 0: kept (docs/storage.md, retention).
ALTER TABLE queues ADD COLUMN retain_completed_seconds INTEGER;
ALTER TABLE queues ADD COLUMN retain_failed_seconds INTEGER;
ALTER TABLE queues ADD COLUMN retain_cancelled_seconds INTEGER;
-- Retention's candidates (store_prune_finished): the finished tasks of one
-- queue and terminal phase, oldest first, read as a range of this index up
-- to the age bound (SQL_RETAIN_LIST). One entry per finished task: the cost
-- is one index write when a task finishes, and one when it is deleted.
-- The predicate is three comparisons, not an IN list: SQLite evaluates a
-- partial index's IN list with a temporary table, and an UPDATE of a
-- column the index holds (updated_at: every write) then ran in two passes
-- through one, allocated and freed per statement (7x the CPU of a batched
-- lifecycle; store/test_plans "an update needs no temporary table").
CREATE INDEX tasks_retain ON tasks (queue, phase, updated_at)
    WHERE phase = 'completed' OR phase = 'failed' OR phase = 'cancelled';
