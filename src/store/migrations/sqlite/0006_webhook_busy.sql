-- 0006: a webhook is busy while one delivery to it is in flight
-- (busy_until, wall ms; 0 = free), so one delivery per webhook is sent at
-- a time by every sender of every node, and a sender that died frees it
-- when the time runs out.
ALTER TABLE webhooks ADD COLUMN busy_until INTEGER NOT NULL DEFAULT 0;
