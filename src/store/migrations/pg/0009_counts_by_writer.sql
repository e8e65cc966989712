-- 0009: task_counts is kept by the writer, not by a trigger (as SQLite's
-- 0010): each batch adds its own changes just before commit, to rows of
-- its connection's shard, in one statement sorted by key, so two nodes
-- take the rows' locks in one order (store.c, batch_count).
-- taskmill: older nodes cannot run beside this migration
-- (a node built before it leaves task_counts to the trigger: its writes
-- would leave the counts wrong for good; docs/operations.md).
DROP TRIGGER task_counts_change ON tasks;
DROP FUNCTION task_counts_apply();
