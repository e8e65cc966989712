-- 0014: the event log's head is no longer a row of its own.
--
-- Every batch rewrote event_meta's 'head' row, a page of the WAL each
-- time (1.34 of the 26.4 pages a task wrote at 8 clients). The head is the
-- open segment's last seq, or one before its first when it holds none
-- (store_sqlite_events.c, sqe_head; docs/storage.md). The row goes, so
-- that nothing reads a head that is no longer kept, and this migration's
-- number makes an older binary refuse the database rather than read it.
DELETE FROM event_meta WHERE name = 'head';
