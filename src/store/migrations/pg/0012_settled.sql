-- 0012: a heartbeat changes no indexed column, so PostgreSQL can write it
-- as a HOT update (docs/storage.md, "Heartbeats change no indexed column").
--
-- A heartbeat moves updated_at, and tasks_updated held it, so no heartbeat
-- was HOT: each wrote a new entry in every index of the table. The lists
-- sorted or bounded by update time now read tasks_settled: settled_at is
-- updated_at for every task that is neither running nor stopping, whose
-- updated_at does not move until it settles, and NULL (out of the index)
-- for those that are. The running ones, as many as the workers hold, are
-- read by tasks_phase and merged in (store_sql.c, sql_updated_part).
-- due_at likewise stays while a task runs, until a sweep finds it early
-- (store.c, store_due_keep).
--
-- A generated column: the database computes it on every write, so no
-- statement names it, and a node of the version before, still running
-- during a roll, writes rows that are listed right. Adding it rewrites the
-- table once, under its lock.
ALTER TABLE tasks ADD COLUMN settled_at BIGINT GENERATED ALWAYS AS
    (CASE WHEN phase IN ('running', 'stopping') THEN NULL ELSE updated_at END) STORED;
DROP INDEX tasks_updated;
CREATE INDEX tasks_settled ON tasks (settled_at, created_at, id) WHERE settled_at IS NOT NULL;
