-- 0017: a task launched by a schedule names it (schedule_id), so that the
-- schedule's overlap policy sees every one of its runs not finished; it
-- remembered the last 8 launched, in its state, and a 9th still running
-- was not seen (store_schedules.c, sched_runs; docs/schedules.md).
--
-- The index holds only the unfinished runs of schedules: a task that no
-- schedule launched has no entry (a submit writes nothing here, and an
-- update of its phase finds no entry to move), and a run leaves it when
-- it finishes. The query that reads it repeats the WHERE below word for
-- word, which is how SQLite knows the partial index serves it.
ALTER TABLE tasks ADD COLUMN schedule_id TEXT;
-- The runs launched before this migration: the fire rows name them.
UPDATE tasks SET schedule_id = f.schedule_id FROM schedule_fires AS f
    WHERE f.task_id = tasks.id AND tasks.phase NOT IN ('completed', 'failed', 'cancelled');
-- Comparisons, not NOT IN, as in 0016: an update that sets phase evaluates
-- this predicate, and an IN list costs it a temporary table.
CREATE INDEX tasks_schedule_runs ON tasks (schedule_id, id)
    WHERE schedule_id IS NOT NULL AND phase <> 'completed' AND phase <> 'failed'
    AND phase <> 'cancelled';
