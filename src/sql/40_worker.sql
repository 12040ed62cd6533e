
-- ===========================================================================
-- The scheduled sync (src/worker.c): the worker's schedule and requests.
-- ===========================================================================

-- When each registered table is due, by the same rules the worker applies:
-- never run: now; last run success/partial: started_at + iact.sync_interval;
-- last run failed: finished_at + iact.sync_retry_delay * 2^(failures-1), counting
-- the failures since the last success or partial run,
-- capped at half the interval; last attempt skipped or still running:
-- started_at + iact.sync_retry_delay.
CREATE VIEW iact.sync_schedule AS
WITH settings AS (
    SELECT coalesce(current_setting('iact.sync_interval', true), '6h')::interval AS sync_interval,
           coalesce(current_setting('iact.sync_retry_delay', true), '60s')::interval AS retry_delay,
           coalesce(current_setting('iact.sync_enabled', true), 'on')::boolean AS enabled
), last AS (
    SELECT t.id AS table_id,
           format('%I.%I', t.target_schema, t.target_table) AS target_table,
           t.enabled AS table_enabled,
           r.status AS last_status, r.started_at AS last_started_at, r.finished_at AS last_finished_at,
           (SELECT count(*) FROM iact.sync_runs f
             WHERE f.table_id = t.id AND f.status = 'failed'
               AND f.id > coalesce((SELECT max(ok.id) FROM iact.sync_runs ok
                                     WHERE ok.table_id = t.id
                                       AND ok.status IN ('success', 'partial')), 0)) AS recent_failures
      FROM iact.sync_tables t
      LEFT JOIN LATERAL (SELECT status, started_at, finished_at FROM iact.sync_runs r
                          WHERE r.table_id = t.id ORDER BY r.id DESC LIMIT 1) r ON true
)
SELECT l.table_id, l.target_table, l.table_enabled, s.enabled AS schedule_enabled,
       l.last_status, l.last_started_at, l.last_finished_at, l.recent_failures,
       CASE
         WHEN l.last_status IS NULL THEN l.last_started_at
         WHEN l.last_status IN ('success', 'partial') THEN l.last_started_at + s.sync_interval
         WHEN l.last_status = 'failed' THEN coalesce(l.last_finished_at, l.last_started_at)
              + least(s.retry_delay * power(2, least(greatest(l.recent_failures, 1) - 1, 30)),
                      s.sync_interval / 2)
         ELSE l.last_started_at + s.retry_delay
       END AS next_due_at
  FROM last l CROSS JOIN settings s;
COMMENT ON VIEW iact.sync_schedule IS 'iact: when the sync worker runs each registered table next';

CREATE FUNCTION iact.request_sync(target_table text DEFAULT NULL) RETURNS boolean
    LANGUAGE c AS 'MODULE_PATHNAME', 'iact_request_sync';
COMMENT ON FUNCTION iact.request_sync(text) IS
    'iact: wake the sync worker to run one table (or all) now; false if the worker is not running';

REVOKE ALL ON FUNCTION iact.request_sync(text) FROM PUBLIC;
REVOKE ALL ON TABLE iact.sync_schedule FROM PUBLIC;

-- Requests of single tables (iact.request_sync): any number of them; the
-- worker takes a table's request when it starts that table's run.
CREATE TABLE iact.sync_requests (
    table_id integer PRIMARY KEY REFERENCES iact.sync_tables (id) ON DELETE CASCADE,
    requested_at timestamptz NOT NULL DEFAULT pg_catalog.clock_timestamp()
);
COMMENT ON TABLE iact.sync_requests IS 'iact: tables iact.request_sync() asked the sync worker to run (taken when the run starts)';

-- A registration, a table enabled again or a request wakes the worker when
-- its transaction commits.
CREATE FUNCTION iact._sync_wake_worker() RETURNS trigger
    LANGUAGE c AS 'MODULE_PATHNAME', 'iact_sync_wake_worker';
REVOKE ALL ON FUNCTION iact._sync_wake_worker() FROM PUBLIC;
CREATE TRIGGER sync_tables_wake_worker AFTER INSERT OR UPDATE OF enabled ON iact.sync_tables
    FOR EACH STATEMENT EXECUTE FUNCTION iact._sync_wake_worker();
CREATE TRIGGER sync_requests_wake_worker AFTER INSERT ON iact.sync_requests
    FOR EACH STATEMENT EXECUTE FUNCTION iact._sync_wake_worker();
