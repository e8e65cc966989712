-- 0015: a heartbeat changes no indexed column (docs/storage.md, "Heartbeats
-- change no indexed column").
--
-- A heartbeat moves updated_at, and tasks_updated held it, so each one
-- rewrote that index's entry (and, on PostgreSQL, kept the row update from
-- being HOT). The lists sorted or bounded by update time now read
-- tasks_settled: settled_at is updated_at for every task that is neither
-- running nor stopping, whose updated_at does not move until it settles,
-- and NULL (out of the index) for those that are. The running ones, as
-- many as the workers hold, are read by tasks_phase and merged in
-- (store_sql.c, sql_updated_part). due_at likewise stays while a task
-- runs, until a sweep finds it early (store.c, store_due_keep).
--
-- A generated column: the database computes it on every write, so no
-- statement names it. Here VIRTUAL, as SQLite adds no STORED column to a
-- table that exists.
ALTER TABLE tasks ADD COLUMN settled_at INTEGER GENERATED ALWAYS AS
    (CASE WHEN phase IN ('running', 'stopping') THEN NULL ELSE updated_at END) VIRTUAL;
DROP INDEX tasks_updated;
CREATE INDEX tasks_settled ON tasks (settled_at, created_at, id) WHERE settled_at IS NOT NULL;
