-- 0009: every list, filter, sort and count stays cheap at millions of tasks
-- (docs/storage.md, "Indexes and counters").
--
-- One index per filter or sort a list offers, each ending in id so that a
-- page in id order is read straight from it. Derived fields are indexed
-- as their expression: a query must spell it exactly as store_sql.c does
-- (SQL_NAME_OR_TYPE ...), inside lower() as case-insensitive filters read.
CREATE INDEX tasks_phase ON tasks (phase, id);
CREATE INDEX tasks_created ON tasks (created_at, id);
CREATE INDEX tasks_updated ON tasks (updated_at, created_at, id);
CREATE INDEX tasks_name ON tasks (name, id) WHERE name IS NOT NULL;
CREATE INDEX tasks_status ON tasks (completion_status, id) WHERE completion_status IS NOT NULL;
CREATE INDEX tasks_name_or_type ON tasks (lower(coalesce(name,type)), id);
CREATE INDEX tasks_launcher_or_queue ON tasks (lower(coalesce(launcher,queue)), id);

-- Tasks per namespace, queue, phase and paused flag, kept by triggers in
-- the transaction of every insert, delete and change of those columns, so
-- GET /v1/queues reads a few rows instead of counting the table. `shard`
-- is 0 here (one writer); PostgreSQL keys it by connection.
CREATE TABLE task_counts (
    namespace TEXT NOT NULL,
    queue     TEXT NOT NULL,
    phase     TEXT NOT NULL,
    paused    INTEGER NOT NULL,
    shard     INTEGER NOT NULL,
    n         INTEGER NOT NULL,
    PRIMARY KEY (namespace, queue, phase, paused, shard)
) WITHOUT ROWID;
INSERT INTO task_counts (namespace, queue, phase, paused, shard, n)
    SELECT namespace, queue, phase, paused <> 0, 0, count(*) FROM tasks
    GROUP BY namespace, queue, phase, paused <> 0;

CREATE TRIGGER task_counts_insert AFTER INSERT ON tasks BEGIN
    INSERT INTO task_counts (namespace, queue, phase, paused, shard, n)
        VALUES (new.namespace, new.queue, new.phase, new.paused <> 0, 0, 1)
        ON CONFLICT (namespace, queue, phase, paused, shard) DO UPDATE SET n = n + 1;
END;
CREATE TRIGGER task_counts_delete AFTER DELETE ON tasks BEGIN
    UPDATE task_counts SET n = n - 1
        WHERE namespace = old.namespace AND queue = old.queue AND phase = old.phase
          AND paused = (old.paused <> 0) AND shard = 0;
END;
CREATE TRIGGER task_counts_update AFTER UPDATE OF namespace, queue, phase, paused ON tasks
    WHEN old.namespace <> new.namespace OR old.queue <> new.queue OR old.phase <> new.phase
      OR (old.paused <> 0) <> (new.paused <> 0)
BEGIN
    UPDATE task_counts SET n = n - 1
        WHERE namespace = old.namespace AND queue = old.queue AND phase = old.phase
          AND paused = (old.paused <> 0) AND shard = 0;
    INSERT INTO task_counts (namespace, queue, phase, paused, shard, n)
        VALUES (new.namespace, new.queue, new.phase, new.paused <> 0, 0, 1)
        ON CONFLICT (namespace, queue, phase, paused, shard) DO UPDATE SET n = n + 1;
END;
