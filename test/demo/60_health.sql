-- demo part: iact.health() and iact.metrics()
\echo
\echo '==== Health check and Prometheus metrics ===='
\echo
\echo '-- one row per check; features not installed in this database say "not configured"'
SELECT * FROM iact.health();

\echo '-- thresholds are settings, e.g. warn when the database grows beyond 1 MB'
SET iact.health_database_size_warn = '1MB';
SELECT * FROM iact.health() WHERE check_name = 'database_size';
RESET iact.health_database_size_warn;

\echo '-- the same figures for Prometheus: psql -XAt -c "SELECT iact.metrics()" > iact.prom'
\pset tuples_only on
\pset format unaligned
SELECT iact.metrics();
\pset format aligned
\pset tuples_only off

\echo '-- the overlap check no longer sorts every event per call: the maintenance worker runs it'
\echo '-- every iact.overlap_check_interval and health() reads the stored result; run it now:'
SELECT iact.check_overlaps_now() AS overlapping_pairs;
SELECT task, status, overlaps_found, finished_at - started_at AS took, run_by
  FROM iact.maintenance_runs ORDER BY id DESC LIMIT 3;
SELECT * FROM iact.health() WHERE check_name IN ('overlaps', 'overlap_check_age', 'maintenance_failures');
