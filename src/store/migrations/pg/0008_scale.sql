-- 0008: every list, filter, sort and count stays cheap at millions of tasks
-- (as SQLite's 0009; docs/storage.md, "Indexes and counters").
--
-- One index per filter or sort a list offers, each ending in id so that a
-- page in id order is read straight from it (forwards or backwards).
-- Derived fields are indexed as their expression, spelt exactly as
-- store_sql.c writes it, inside lower() as case-insensitive filters read.
CREATE INDEX tasks_phase ON tasks (phase, id);
CREATE INDEX tasks_created ON tasks (created_at, id);
CREATE INDEX tasks_updated ON tasks (updated_at, created_at, id);
CREATE INDEX tasks_name ON tasks (name, id) WHERE name IS NOT NULL;
CREATE INDEX tasks_status ON tasks (completion_status, id) WHERE completion_status IS NOT NULL;
CREATE INDEX tasks_name_or_type ON tasks ((lower(coalesce(name,type))), id);
CREATE INDEX tasks_launcher_or_queue ON tasks ((lower(coalesce(launcher,queue))), id);

-- Tasks per namespace, queue, phase and paused flag, kept by a trigger in
-- the transaction of every insert, delete and change of those columns, so
-- GET /v1/queues reads a few rows instead of counting the table. Each
-- connection adds to rows of its own (`shard` = its backend pid), so two
-- nodes' batches never wait on one counter row's lock; reads sum the
-- shards, and the writer folds the rows of connections that are gone
-- into its own (store_pg.c, once a minute).
CREATE TABLE task_counts (
    namespace TEXT COLLATE "C" NOT NULL,
    queue     TEXT COLLATE "C" NOT NULL,
    phase     TEXT COLLATE "C" NOT NULL,
    paused    INTEGER NOT NULL,
    shard     INTEGER NOT NULL,
    n         BIGINT NOT NULL,
    PRIMARY KEY (namespace, queue, phase, paused, shard)
);
INSERT INTO task_counts (namespace, queue, phase, paused, shard, n)
    SELECT namespace, queue, phase, (paused <> 0)::int, 0, count(*) FROM tasks
    GROUP BY namespace, queue, phase, (paused <> 0)::int;

CREATE FUNCTION task_counts_apply() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' AND OLD.namespace = NEW.namespace AND OLD.queue = NEW.queue
       AND OLD.phase = NEW.phase AND (OLD.paused <> 0) = (NEW.paused <> 0) THEN
        RETURN NULL;
    END IF;
    IF TG_OP <> 'INSERT' THEN
        INSERT INTO task_counts AS c (namespace, queue, phase, paused, shard, n)
            VALUES (OLD.namespace, OLD.queue, OLD.phase, (OLD.paused <> 0)::int,
                    pg_backend_pid(), -1)
            ON CONFLICT (namespace, queue, phase, paused, shard) DO UPDATE SET n = c.n - 1;
    END IF;
    IF TG_OP <> 'DELETE' THEN
        INSERT INTO task_counts AS c (namespace, queue, phase, paused, shard, n)
            VALUES (NEW.namespace, NEW.queue, NEW.phase, (NEW.paused <> 0)::int,
                    pg_backend_pid(), 1)
            ON CONFLICT (namespace, queue, phase, paused, shard) DO UPDATE SET n = c.n + 1;
    END IF;
    RETURN NULL;
END
$$;
CREATE TRIGGER task_counts_change AFTER INSERT OR DELETE OR UPDATE OF namespace, queue, phase, paused
    ON tasks FOR EACH ROW EXECUTE FUNCTION task_counts_apply();
