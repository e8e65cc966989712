-- 0011: `?queue=` and `?type=` read an index (issue 16): a page of a queue
-- or a type that holds few of the tasks, or only old ones, walked the
-- primary key through the whole table. Neither column changes after a
-- task is created, and the task UPDATE leaves such columns out on SQLite
-- (store_col.fixed), so these indexes cost an insert, not every write.
CREATE INDEX tasks_queue ON tasks (queue, id);
CREATE INDEX tasks_type ON tasks (type, id);
