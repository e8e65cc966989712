-- 0012: cheaper retention (issue 16).
--
-- events_at goes: every event paid for an entry in it twice (appended,
-- then pruned), only for retention to find the newest event older than
-- its age bound. The one writer numbers events in the order it appends
-- them, at the times it appends them, so that bound is now found by a
-- search on seq (store_sqlite_events.c).
--
-- Retention also deletes the deliveries that were sent (or gave up) of
-- the events it drops; with no index on their seq it read the whole
-- deliveries table at each step.
DROP INDEX events_at;
CREATE INDEX webhook_deliveries_done ON webhook_deliveries (seq) WHERE status <> 'pending';
