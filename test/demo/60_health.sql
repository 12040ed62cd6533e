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
