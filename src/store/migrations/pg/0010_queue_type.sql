-- 0010: `?queue=` and `?type=` read an index (issue 16), as SQLite's 0011.
-- On a large table this takes a while and blocks writes while it builds:
-- upgrade as docs/operations.md says.
-- taskmill: older nodes cannot run beside this migration
-- It stands for the event log's stored form of 2c9934a (events keep the
-- task from "phase" on), which came without a migration: a node that knows
-- only up to 0009 may send events without id, type, name and params.
CREATE INDEX tasks_queue ON tasks (queue, id);
CREATE INDEX tasks_type ON tasks (type, id);
