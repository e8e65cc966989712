-- 0010: task_counts is kept by the writer, not by triggers.
--
-- With the triggers of 0009 and the indexes of 0009 together, SQLite
-- rewrote a task row several times slower (an UPDATE of every column took
-- ~290 µs against ~90 µs with the indexes alone, on 100,000 tasks): the
-- batch now adds its own changes to task_counts just before commit, one
-- row per (namespace, queue, phase, paused) it touched, in the same
-- transaction (store.c, batch_count; docs/storage.md).
DROP TRIGGER task_counts_insert;
DROP TRIGGER task_counts_delete;
DROP TRIGGER task_counts_update;
