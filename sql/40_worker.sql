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

-- the schedule has one row per registered table (other tests may have registered some)
SELECT (SELECT count(*) FROM iact.sync_schedule) = (SELECT count(*) FROM iact.sync_tables)
       AS one_row_per_registered_table;

-- nothing of it for PUBLIC
CREATE ROLE regress_worker_nobody;
SELECT has_function_privilege('regress_worker_nobody', 'iact.request_sync(text)', 'EXECUTE') AS can_request,
       has_table_privilege('regress_worker_nobody', 'iact.sync_schedule', 'SELECT') AS can_read_schedule;
DROP ROLE regress_worker_nobody;

-- the schedule rules, on a crafted history (defaults: interval 6 h, retry delay 60 s)
SET timezone = 'UTC';
INSERT INTO iact.sync_tables (server_name, source_table, target_schema, target_table, key_columns)
  VALUES ('regress_none', 'calls', 'public', 'sched_t', '{id}') RETURNING id AS sched_id \gset
CREATE FUNCTION pg_temp.run(status text, started text) RETURNS void LANGUAGE sql AS $$
  INSERT INTO iact.sync_runs (table_id, target_table, status, started_at, finished_at)
  VALUES (currval('iact.sync_tables_id_seq'), 'public.sched_t', status, started::timestamptz,
          started::timestamptz + interval '1 minute') $$;
CREATE VIEW sched AS SELECT last_status, recent_failures, next_due_at FROM iact.sync_schedule WHERE target_table = 'public.sched_t';
SELECT * FROM sched;                                   -- never run: due now (NULL)
SELECT pg_temp.run('failed', '2026-01-01 00:00'), pg_temp.run('failed', '2026-01-01 00:10'),
       pg_temp.run('failed', '2026-01-01 00:20');
SELECT * FROM sched;                                   -- 3 failures: 00:21 + 4 min
SELECT pg_temp.run('success', '2026-01-01 01:00');
SELECT * FROM sched;                                   -- success: 01:00 + 6 h
SELECT pg_temp.run('failed', '2026-01-01 02:00');
SELECT * FROM sched;                                   -- the count restarts after a success: 02:01 + 1 min
SELECT pg_temp.run('failed', '2026-01-01 03:00');
SELECT * FROM sched;                                   -- then doubles: 03:01 + 2 min
SELECT pg_temp.run('skipped', '2026-01-01 04:00');
SELECT * FROM sched;                                   -- table busy: 04:00 + 1 min
SELECT pg_temp.run('partial', '2026-01-01 05:00');
SELECT * FROM sched;                                   -- partial counts as synced: 05:00 + 6 h
DELETE FROM iact.sync_runs WHERE table_id = :sched_id;
DELETE FROM iact.sync_tables WHERE id = :sched_id;
DROP VIEW sched;
RESET timezone;
