-- 0015: a webhook delivery claim probes each free webhook's first due
-- delivery (as PostgreSQL's has since its 0002), instead of walking the
-- due deliveries in time order past every row of a busy or held webhook:
-- with one dead endpoint's backlog of 60,000, each claim for the others
-- read all of it, in the writer's transaction (store_sqlite_events.c,
-- sq_delivery_claim; docs/events.md).
CREATE INDEX webhook_deliveries_hook_due ON webhook_deliveries (webhook_id, next_at, seq,
    (CASE event WHEN 'task.spawned' THEN 0 WHEN 'task.updated' THEN 1 ELSE 2 END))
    WHERE status = 'pending';
