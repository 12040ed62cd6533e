-- The scheduled sync's SQL surface.  The worker itself is tested in
-- test/t/040_worker.pl (it needs restarts, kills and a standby).

-- settings and their defaults (the test server does not set them)
SELECT name, setting, unit, context FROM pg_settings
 WHERE name IN ('iact.database', 'iact.sync_interval', 'iact.sync_enabled', 'iact.sync_retry_delay')
 ORDER BY name;

-- the worker runs in iact.database (postgres), not in this database: a request here is refused
SELECT current_database() = current_setting('iact.database') AS worker_database_is_this_one;
SELECT iact.request_sync();
SELECT iact.request_sync('no_such_table');

-- the schedule has one row per registered table (the sync tests before this one leave theirs)
SELECT (SELECT count(*) FROM iact.sync_schedule) = (SELECT count(*) FROM iact.sync_tables)
       AS one_row_per_registered_table;

-- nothing of it for PUBLIC
CREATE ROLE regress_worker_nobody;
SELECT has_function_privilege('regress_worker_nobody', 'iact.request_sync(text)', 'EXECUTE') AS can_request,
       has_table_privilege('regress_worker_nobody', 'iact.sync_schedule', 'SELECT') AS can_read_schedule;
DROP ROLE regress_worker_nobody;
