-- 0011: retention deletes the deliveries that were sent (or gave up) of
-- the events it drops; with no index on their seq it read the whole
-- deliveries table at each step (issue 16).
CREATE INDEX webhook_deliveries_done ON webhook_deliveries (seq) WHERE status <> 'pending';
