\echo '=== The scheduled sync: a background worker keeps PostgreSQL in step with the IVR'
\echo ''
\echo '--- The worker, as pg_stat_activity shows it (one per cluster, in database iact.database)'
SELECT backend_type, application_name, datname, state FROM pg_stat_activity
 WHERE backend_type = 'iact sync worker';

\echo ''
\echo '--- The demo server started with iact.sync_enabled = off (so the manual runs above were alone).'
\echo '--- Turn the schedule on with a 3-second interval: a reload is enough, no restart.'
ALTER SYSTEM SET iact.sync_interval = '3s';
ALTER SYSTEM SET iact.sync_enabled = on;
SELECT pg_reload_conf();

\echo '--- The IVR takes 20 new calls; within an interval the worker has copied them'
\! $IACT_MARIADB_CLI -e "INSERT INTO calls (call_id, queue_id, agent_id, caller, started_at, answered_at, duration_s, wait_s, abandoned, updated_at) SELECT 6000 + seq, 3, 3, CONCAT('+3248', seq), UTC_TIMESTAMP() - INTERVAL 2 MINUTE, UTC_TIMESTAMP() - INTERVAL 1 MINUTE, 45, 2, 0, UTC_TIMESTAMP(3) FROM seq_1_to_20"
DO $$
BEGIN
  FOR i IN 1..100 LOOP
    EXIT WHEN (SELECT count(*) FROM ivr_calls WHERE call_id > 6000) = 20;
    PERFORM pg_sleep(0.2);
  END LOOP;
END $$;
SELECT count(*) AS new_calls_in_postgresql FROM ivr_calls WHERE call_id > 6000;
SELECT target_table, last_status, recent_failures,
       round(extract(epoch FROM next_due_at - last_started_at)) AS next_run_after_s
  FROM iact.sync_schedule ORDER BY table_id;

\echo ''
\echo '--- Back to a 6-hour schedule; iact.request_sync() runs a table now instead of waiting'
ALTER SYSTEM RESET iact.sync_interval;
SELECT pg_reload_conf();
\! $IACT_MARIADB_CLI -e "UPDATE calls SET duration_s = 46, updated_at = UTC_TIMESTAMP(3) WHERE call_id = 6001"
SELECT iact.request_sync('ivr_calls') AS worker_woken;
DO $$
BEGIN
  FOR i IN 1..100 LOOP
    EXIT WHEN (SELECT duration_s FROM ivr_calls WHERE call_id = 6001) = 46;
    PERFORM pg_sleep(0.2);
  END LOOP;
END $$;
SELECT call_id, duration_s FROM ivr_calls WHERE call_id = 6001;
SELECT target_table, status, transaction_mode, rows_read, rows_updated
  FROM iact.sync_runs ORDER BY id DESC LIMIT 1;

ALTER SYSTEM RESET iact.sync_enabled;
SELECT pg_reload_conf();
