-- 0005: storage tuning of the hot tables.
--
-- tasks: every claim, heartbeat and completion rewrites a row; leave room
-- in each page so that updates which touch no indexed column stay on the
-- page (HOT), and vacuum after 2% of the rows changed rather than 20%, so
-- the claim index does not fill with dead entries under a busy queue.
-- events: appended on every change and deleted in blocks by retention;
-- vacuum (and freeze) after inserts too, so index-only scans stay cheap.
-- webhook_deliveries: inserted, updated once or a few times, deleted.
ALTER TABLE tasks SET (fillfactor = 80,
    autovacuum_vacuum_scale_factor = 0.02, autovacuum_vacuum_threshold = 1000,
    autovacuum_analyze_scale_factor = 0.02, autovacuum_vacuum_cost_delay = 1);
ALTER TABLE events SET (
    autovacuum_vacuum_scale_factor = 0.05, autovacuum_vacuum_threshold = 10000,
    autovacuum_vacuum_insert_scale_factor = 0.05, autovacuum_vacuum_insert_threshold = 10000,
    autovacuum_analyze_scale_factor = 0.05, autovacuum_vacuum_cost_delay = 1);
ALTER TABLE webhook_deliveries SET (fillfactor = 90,
    autovacuum_vacuum_scale_factor = 0.02, autovacuum_vacuum_threshold = 1000,
    autovacuum_analyze_scale_factor = 0.02, autovacuum_vacuum_cost_delay = 1);
ALTER TABLE webhooks SET (autovacuum_vacuum_scale_factor = 0.01, autovacuum_vacuum_threshold = 100);
ALTER TABLE event_meta SET (fillfactor = 50,
    autovacuum_vacuum_scale_factor = 0, autovacuum_vacuum_threshold = 1000);
