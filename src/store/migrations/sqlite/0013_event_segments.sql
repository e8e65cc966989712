-- 0013: the event log in segments (issue 16; docs/storage.md, "The event
-- log in segments").
--
-- Retention deleted the oldest events one row at a time, each from the
-- table and from its per-task index: a tenth of the server's CPU once the
-- log was at its cap. The log is now a run of tables, events_<slot>, each
-- holding a range of seqs; retention empties the oldest one whole (SQLite
-- frees its pages without visiting rows) and the writer fills it again
-- later. The catalog below says which slot holds which seqs.
--
-- The old table becomes slot 1, the open segment, as it is: the writer
-- closes it at its next append. Being far larger than a segment, it is
-- pruned by rows, in small steps, until it is gone.
INSERT INTO event_meta (name, value)
VALUES ('head', coalesce((SELECT seq FROM sqlite_sequence WHERE name = 'events'), 0));
CREATE TABLE event_segments (
    slot      INTEGER PRIMARY KEY, -- its table is events_<slot>
    first_seq INTEGER,             -- its first seq; NULL: free, empty, to be used again
    last_seq  INTEGER,             -- NULL: the open segment, the one appended to
    last_at   INTEGER              -- the time of its last event, once closed
);
INSERT INTO event_segments (slot, first_seq)
VALUES (1, coalesce((SELECT min(seq) FROM events),
                    (SELECT value FROM event_meta WHERE name = 'head') + 1));
ALTER TABLE events RENAME TO events_1;
