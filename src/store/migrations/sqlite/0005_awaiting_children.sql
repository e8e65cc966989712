-- 0005: parents that wait for their children. child_ended counts failed and
-- cancelled children apart from pending ones (they no longer hold a parent
-- up); awaiting_children marks a parent whose own work completed while
-- children were still unfinished.
ALTER TABLE tasks ADD COLUMN child_ended INTEGER NOT NULL DEFAULT 0;
ALTER TABLE tasks ADD COLUMN awaiting_children INTEGER NOT NULL DEFAULT 0;
