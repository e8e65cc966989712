-- 0010: `?queue=` and `?type=` read an index (issue 16), as SQLite's 0011.
-- On a large table this takes a while and blocks writes while it builds:
-- upgrade as docs/operations.md says.
CREATE INDEX tasks_queue ON tasks (queue, id);
CREATE INDEX tasks_type ON tasks (type, id);
