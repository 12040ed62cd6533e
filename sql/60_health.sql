-- iact.health() and iact.metrics(): the checks this branch owns fully, the
-- "not configured" answers for features that are not installed, the
-- Prometheus format.  Values that vary between runs are not printed.
SET client_min_messages = notice;

\echo == every check, in order
SELECT split_part(h.check_name, ':', 1) AS check_name
  FROM iact.health() WITH ORDINALITY AS h(check_name, status, value, detail, n)
 GROUP BY 1 ORDER BY min(h.n);
-- the checks this branch owns: status and value
SELECT check_name, status, value IS NOT NULL AS has_value
  FROM iact.health() WHERE check_name IN ('connections', 'database_size', 'server_role', 'audit_log_growth');
-- checks of other features report "not configured" (status ok, no value) exactly
-- when the object they read is missing, and check it when it is there
WITH f(check_name, object, is_function) AS (
    VALUES ('sync_last_success', 'iact.sync_runs', false),
           ('sync_failures', 'iact.sync_runs', false),
           ('sync_rejects', 'iact.sync_rejects', false),
           ('migrations_running', 'iact.migration_log', false),
           ('migrations_failed', 'iact.migration_log', false),
           ('overlaps', 'iact.maintenance_runs', false),
           ('overlap_check_age', 'iact.maintenance_runs', false),
           ('maintenance_failures', 'iact.maintenance_runs', false)
), h AS (
    SELECT split_part(check_name, ':', 1) AS check_name, status, value, detail FROM iact.health()
)
SELECT f.check_name,
       bool_and(CASE WHEN NOT CASE WHEN f.is_function
                                   -- a function iact.find_overlaps callable without arguments
                                   THEN EXISTS (SELECT 1 FROM pg_proc p
                                                 WHERE p.pronamespace = 'iact'::regnamespace
                                                   AND p.proname = 'find_overlaps'
                                                   AND p.pronargs = p.pronargdefaults)
                                   ELSE to_regclass(f.object) IS NOT NULL END
                     THEN h.status = 'ok' AND h.value IS NULL
                          AND h.detail = 'not configured: ' || f.object || ' does not exist'
                     ELSE h.detail NOT LIKE 'not configured%' AND h.detail NOT LIKE 'check failed%' END)
         AS reports_its_configuration
  FROM f JOIN h USING (check_name) GROUP BY f.check_name ORDER BY min(f.check_name);
-- values of the checks that have one
SELECT check_name, value >= 0 AS sane FROM iact.health()
 WHERE check_name IN ('connections', 'database_size', 'server_role', 'audit_log_growth');
SELECT value = (SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend') AS connections_counted
  FROM iact.health() WHERE check_name = 'connections';
SELECT value = pg_database_size(current_database()) AS database_size_counted
  FROM iact.health() WHERE check_name = 'database_size';

\echo == connections against max_connections
SET iact.health_connections_warn = 1;
SET iact.health_connections_fail = 100;
SELECT status FROM iact.health() WHERE check_name = 'connections';
SET iact.health_connections_fail = 1;
SELECT status FROM iact.health() WHERE check_name = 'connections';
RESET iact.health_connections_warn;
RESET iact.health_connections_fail;
SELECT status FROM iact.health() WHERE check_name = 'connections';
SET iact.health_connections_warn = 0;
SET iact.health_connections_warn = 101;

\echo == database size
SET iact.health_database_size_warn = '1MB';
SELECT status, detail LIKE '%(warn above 1 MB)' AS says_limit FROM iact.health() WHERE check_name = 'database_size';
SET iact.health_database_size_warn = '1TB';
SELECT status FROM iact.health() WHERE check_name = 'database_size';
RESET iact.health_database_size_warn;
SELECT status, detail LIKE '%(no limit set)' AS says_no_limit FROM iact.health() WHERE check_name = 'database_size';
SET iact.health_database_size_warn = -1;

\echo == primary or standby
SELECT status, value, detail FROM iact.health() WHERE check_name = 'server_role';
SET iact.health_expected_role = 'standby';
SELECT status, value, detail FROM iact.health() WHERE check_name = 'server_role';
SET iact.health_expected_role = 'primary';
SELECT status, value, detail FROM iact.health() WHERE check_name = 'server_role';
SET iact.health_expected_role = 'replica';
RESET iact.health_expected_role;

\echo == audit log growth: entries of the last 24 hours
CREATE SCHEMA regress_health;
CREATE TABLE regress_health."we""ird\tab" (id integer PRIMARY KEY, v text);
SELECT iact.enable_audit('regress_health."we""ird\tab"');
INSERT INTO regress_health."we""ird\tab" SELECT g, 'x' FROM generate_series(1, 3) g;
UPDATE regress_health."we""ird\tab" SET v = 'y' WHERE id = 1;
TRUNCATE regress_health."we""ird\tab";
-- 3 inserts + 1 update + 1 truncate
SELECT status, value, detail LIKE '5 entries in the last 24 hours; log size %; 1 table(s) audited' AS detail_ok
  FROM iact.health() WHERE check_name = 'audit_log_growth';
SET iact.health_audit_rows_warn = 4;
SELECT status, value FROM iact.health() WHERE check_name = 'audit_log_growth';
SET iact.health_audit_rows_warn = 5;
SELECT status, value FROM iact.health() WHERE check_name = 'audit_log_growth';
RESET iact.health_audit_rows_warn;
-- entries older than a day do not count
UPDATE iact.audit_statement SET "timestamp" = "timestamp" - interval '2 days' WHERE operation = 'INSERT';
SELECT status, value FROM iact.health() WHERE check_name = 'audit_log_growth';

\echo == migration threshold settings
SHOW iact.health_migration_warn_runtime;
SHOW iact.health_migration_max_runtime;
SET iact.health_migration_max_runtime = '10min';
SHOW iact.health_migration_max_runtime;
SET iact.health_migration_max_runtime = 0;
SET iact.health_migration_warn_runtime = 0;
RESET iact.health_migration_max_runtime;

\echo == migrations RUNNING too long, FAILED and ROLLBACK_FAILED in the last 24 hours
-- the migration log is append-only: everything here is rolled back
BEGIN;
SELECT check_name, status, value, detail FROM iact.health() WHERE check_name = 'migrations_running';
-- earlier tests of this database may have left failures in the log: count from here
SELECT value AS failed_before FROM iact.health() WHERE check_name = 'migrations_failed' \gset
SELECT :failed_before = (SELECT count(*) FROM iact.migration_log WHERE status IN ('FAILED', 'ROLLBACK_FAILED')
                          AND completed_at > now() - interval '1 day') AS failed_before_counted;
SELECT iact.log_migration_start('regress_h1', 'a long one') AS h1 \gset
SELECT iact.log_migration_start('regress_h2', 'a short one') AS h2 \gset
-- h1 started 40 minutes ago: beyond the warning threshold (30 min), not the failing one (1 h)
UPDATE iact.migration_log SET started_at = now() - interval '40 min' WHERE id = :h1;
SELECT check_name, status, value, detail FROM iact.health() WHERE check_name = 'migrations_running';
-- 2 hours ago: failing
UPDATE iact.migration_log SET started_at = now() - interval '2 hours' WHERE id = :h1;
SELECT check_name, status, value, detail FROM iact.health() WHERE check_name = 'migrations_running';
-- the thresholds are settings
SET LOCAL iact.health_migration_max_runtime = '3h';
SELECT status, value FROM iact.health() WHERE check_name = 'migrations_running';
SET LOCAL iact.health_migration_warn_runtime = '3h';
SELECT status, value FROM iact.health() WHERE check_name = 'migrations_running';
RESET iact.health_migration_max_runtime;
RESET iact.health_migration_warn_runtime;
-- metrics: the oldest RUNNING one's age, entries by status
SELECT substring(l FROM ' ([0-9.]+)$')::numeric BETWEEN 7200 AND 7300 AS oldest_age_is_h1
  FROM regexp_split_to_table(iact.metrics(), E'\n') AS l
 WHERE l LIKE 'iact_migration_running_oldest_age_seconds %';
SELECT iact.log_migration_failed(:h1, 'boom');
SELECT iact.log_migration_complete(:h2);
SELECT check_name, status, value, detail FROM iact.health() WHERE check_name = 'migrations_running';
SELECT status, value = :failed_before + 1 AS one_more, detail ~ ' in the last 24 hours: .*regress_h1 FAILED$' AS detail_names_it
  FROM iact.health() WHERE check_name = 'migrations_failed';
-- a failed rollback counts too; entries that ended more than a day ago do not
INSERT INTO iact.migration_log (version, description, action, status, started_at, completed_at,
                                rollback_of, runner, installed_by, session_role)
VALUES ('regress_h2', 'rollback', 'rollback', 'ROLLBACK_FAILED', now(), clock_timestamp(), :h2,
        'external', current_user, session_user),
       ('regress_h0', 'old failure', 'apply', 'FAILED', now() - interval '3 days',
        now() - interval '3 days', NULL, 'external', current_user, session_user);
SELECT status, value = :failed_before + 2 AS two_more,
       detail ~ ' in the last 24 hours: .*regress_h1 FAILED, regress_h2 ROLLBACK_FAILED$' AS detail_names_them,
       detail NOT LIKE '%regress_h0%' AS old_one_left_out
  FROM iact.health() WHERE check_name = 'migrations_failed';
SELECT l FROM regexp_split_to_table(iact.metrics(), E'\n') AS l
 WHERE l ~ '^iact_migration_running_oldest_age_seconds '
    OR l ~ '^iact_health_status\{check="migrations_';
-- one sample per status, each the log's count
SELECT count(*) AS statuses,
       bool_and(substring(l FROM ' ([0-9]+)$')::bigint
                = (SELECT count(*) FROM iact.migration_log m
                    WHERE m.status = substring(l FROM 'status="([A-Z_]+)"'))) AS counts_match
  FROM regexp_split_to_table(iact.metrics(), E'\n') AS l WHERE l LIKE 'iact_migration_log_entries{%';
-- (a float8 in the scrape: equal to the microsecond)
SELECT abs(substring(l FROM ' ([0-9.]+)$')::numeric
           - (SELECT extract(epoch FROM max(completed_at)) FROM iact.migration_log WHERE status = 'SUCCESS'))
       < 0.000002 AS last_success_matches
  FROM regexp_split_to_table(iact.metrics(), E'\n') AS l
 WHERE l LIKE 'iact_migration_last_success_timestamp_seconds %';
ROLLBACK;

\echo == overlaps: the last stored scan, never a scan per call
-- nothing has run the overlap check in this database yet
SELECT check_name, status, value, detail FROM iact.health()
 WHERE check_name IN ('overlaps', 'overlap_check_age', 'maintenance_failures') ORDER BY 1;
SELECT count(*) AS pairs_before FROM iact.find_overlaps() \gset
SELECT iact.check_overlaps_now() = :pairs_before AS check_counts_find_overlaps;
SELECT task, status, overlaps_found = :pairs_before AS found, rows_purged, error,
       finished_at >= started_at AS finished, run_by = session_user AS run_by_me
  FROM iact.maintenance_runs;
SELECT check_name, status, value = :pairs_before AS value_is_count FROM iact.health()
 WHERE check_name = 'overlaps';
SELECT status, value < 60 AS fresh, detail LIKE 'last overlap check completed % s ago (interval 3600 s; warn beyond 2 intervals)' AS detail_ok
  FROM iact.health() WHERE check_name = 'overlap_check_age';
-- an overlapping pair that slipped in with the triggers off
CREATE TABLE regress_health.rooms (id integer PRIMARY KEY, room integer NOT NULL, starts timestamp NOT NULL, ends timestamp NOT NULL);
CREATE INDEX ON regress_health.rooms (room, starts);
SELECT iact.enforce_no_overlap('regress_health_rooms', ARRAY['regress_health.rooms']::regclass[], 'room', 'starts', 'ends');
SET session_replication_role = replica;
INSERT INTO regress_health.rooms VALUES (1, 7, '2026-01-01 08:00', '2026-01-01 12:00'),
                                       (2, 7, '2026-01-01 11:00', '2026-01-01 13:00');
RESET session_replication_role;
-- the health check does not see it until the next scan
SELECT status, value = :pairs_before AS unchanged FROM iact.health() WHERE check_name = 'overlaps';
SELECT iact.check_overlaps_now() = :pairs_before + 1 AS one_more;
SELECT status, value = :pairs_before + 1 AS counted,
       detail LIKE '% overlapping pair(s) of events found by the check of %, e.g. %7: regress_health.rooms 1 / regress_health.rooms 2%' AS detail_names_pair
  FROM iact.health() WHERE check_name = 'overlaps';
SELECT s.p->>'group_name' AS group_name, s.p->>'id_a' AS id_a, s.p->>'id_b' AS id_b
  FROM iact.maintenance_runs m, jsonb_array_elements(m.overlaps_sample) s(p)
 WHERE m.id = (SELECT max(id) FROM iact.maintenance_runs) AND s.p->>'group_name' = 'regress_health_rooms';
SELECT substring(l FROM ' ([0-9]+)$')::int = :pairs_before + 1 AS overlaps_found_metric
  FROM regexp_split_to_table(iact.metrics(), E'\n') AS l WHERE l LIKE 'iact_overlaps_found %';
SELECT l FROM regexp_split_to_table(iact.metrics(), E'\n') AS l
 WHERE l ~ '^iact_(overlap_check_interval_seconds|maintenance_runs_total|audit_retention_seconds|audit_purged_entries_total)[ {]'
    OR l ~ '^iact_health_status\{check="(overlaps|overlap_check_age|maintenance_failures)"';
-- a stale result: older than 2 intervals
UPDATE iact.maintenance_runs SET started_at = started_at - interval '3 hours', finished_at = finished_at - interval '3 hours';
SELECT status, value > 10800 AS old FROM iact.health() WHERE check_name = 'overlap_check_age';
-- a failed run warns for a day and is named
INSERT INTO iact.maintenance_runs (task, status, finished_at, error)
VALUES ('audit_retention', 'failed', clock_timestamp(), 'regress: disk full');
SELECT status, value, detail LIKE '1 failed maintenance run(s) in the last 24 hours: audit_retention at %: regress: disk full' AS detail_ok
  FROM iact.health() WHERE check_name = 'maintenance_failures';
-- privileges: not for PUBLIC
SELECT has_function_privilege('public', 'iact.check_overlaps_now()', 'EXECUTE') AS public_may_scan,
       has_table_privilege('public', 'iact.maintenance_runs', 'SELECT') AS public_may_read;
DROP TABLE regress_health.rooms;
DELETE FROM iact.maintenance_runs;

\echo == metrics(): Prometheus text exposition format
-- every line is a HELP, a TYPE, an iact comment or a sample
SELECT count(*) AS bad_lines
  FROM regexp_split_to_table(rtrim(iact.metrics(), E'\n'), E'\n') AS l
 WHERE l !~ '^# (HELP|TYPE) iact_[a-z_]+ '
   AND l !~ '^# iact: '
   AND l !~ '^iact_[a-z_]+(\{([a-z_]+="([^"\\]|\\.)*",?)+\})? (-?[0-9]+(\.[0-9]+)?(e[-+][0-9]+)?|NaN|[-+]Inf)$';
-- each family: one HELP and one TYPE, counter or gauge, before its samples
WITH l AS (
    SELECT l, n FROM regexp_split_to_table(iact.metrics(), E'\n') WITH ORDINALITY AS t(l, n)
), fam AS (
    SELECT substring(l FROM '^# TYPE ([a-z_]+) ') AS name, substring(l FROM ' ([a-z]+)$') AS type, n
      FROM l WHERE l LIKE '# TYPE %'
       AND l NOT LIKE '# TYPE iact\_sync\_%'  -- present only when the sync is installed
)
SELECT f.name, f.type,
       (SELECT count(*) FROM l WHERE l.l LIKE '# HELP ' || f.name || ' %' AND l.n = f.n - 1) AS help_before,
       (SELECT count(*) FROM l WHERE l.l ~ ('^' || f.name || '[ {]') AND l.n < f.n) AS samples_before
  FROM fam f ORDER BY f.n;
-- samples that do not vary between runs
SELECT l FROM regexp_split_to_table(iact.metrics(), E'\n') AS l
 WHERE l ~ '^iact_(up|is_standby|audit_entries_last_day)[ {]'
    OR l ~ '^iact_health_(status|configured)\{check="(connections|database_size|server_role|audit_log_growth)"\}';
-- every check has a status sample and a configured sample, 0 exactly for "not configured"
SELECT count(*) >= 13 AS all_checks,
       bool_and(m.status = CASE h.status WHEN 'ok' THEN 0 WHEN 'warn' THEN 1 ELSE 2 END) AS status_matches,
       bool_and(m.configured = CASE WHEN h.detail LIKE 'not configured%' THEN 0 ELSE 1 END) AS configured_matches
  FROM (SELECT split_part(check_name, ':', 1) AS c, nullif(split_part(check_name, ':', 2), '') AS t, status, detail
          FROM iact.health()) h
  JOIN LATERAL (
        SELECT max(substring(l FROM ' ([0-9]+)$')::int) FILTER (WHERE l LIKE 'iact_health_status{%') AS status,
               max(substring(l FROM ' ([0-9]+)$')::int) FILTER (WHERE l LIKE 'iact_health_configured{%') AS configured
          FROM regexp_split_to_table(iact.metrics(), E'\n') AS l
         WHERE l LIKE '%{check="' || h.c || '"' || coalesce(',table="' || h.t || '"', '') || '}%') m ON true;
-- the sync section is there exactly when iact.sync_runs is
SELECT (iact.metrics() LIKE '%# iact: sync not configured (iact.sync_runs does not exist)%')
       = (to_regclass('iact.sync_runs') IS NULL) AS sync_section_right;
-- counters and gauges agree with the tables
SELECT substring(l FROM ' ([0-9]+)$')::bigint = pg_database_size(current_database()) AS size_matches
  FROM regexp_split_to_table(iact.metrics(), E'\n') AS l WHERE l LIKE 'iact_database_size_bytes %';
SELECT substring(l FROM ' ([0-9]+)$')::bigint = (SELECT pg_total_relation_size('iact.audit_row') + pg_total_relation_size('iact.audit_statement')) AS audit_size_matches
  FROM regexp_split_to_table(iact.metrics(), E'\n') AS l WHERE l LIKE 'iact_audit_log_size_bytes %';
-- a failing threshold shows in both
SET iact.health_expected_role = 'standby';
SELECT l FROM regexp_split_to_table(iact.metrics(), E'\n') AS l WHERE l LIKE 'iact_health_status{check="server_role"}%';
RESET iact.health_expected_role;

\echo == privileges
SELECT p.oid::regprocedure AS function, prosecdef, proconfig,
       has_function_privilege('public', p.oid, 'EXECUTE') AS public_execute,
       has_function_privilege('pg_monitor', p.oid, 'EXECUTE') AS pg_monitor_execute
  FROM pg_proc p WHERE p.oid IN ('iact.health()'::regprocedure, 'iact.metrics()'::regprocedure)
 ORDER BY p.oid::regprocedure::text;
-- a monitoring role sees every figure without privileges on the tables read
CREATE ROLE regress_health_monitor IN ROLE pg_monitor;
GRANT USAGE ON SCHEMA iact TO regress_health_monitor;
SET ROLE regress_health_monitor;
SELECT count(*) >= 13 AS all_checks, count(*) FILTER (WHERE detail LIKE 'check failed%') AS failed_to_run
  FROM iact.health();
SELECT iact.metrics() LIKE '%iact_up 1%' AS scraped;
SELECT count(*) FROM iact.audit_statement;
RESET ROLE;
CREATE ROLE regress_health_nobody;
GRANT USAGE ON SCHEMA iact TO regress_health_nobody;
SET ROLE regress_health_nobody;
SELECT * FROM iact.health();
SELECT iact.metrics();
RESET ROLE;

\echo == clean up
DROP SCHEMA regress_health CASCADE;
REVOKE USAGE ON SCHEMA iact FROM regress_health_monitor, regress_health_nobody;
DROP ROLE regress_health_monitor;
DROP ROLE regress_health_nobody;
TRUNCATE iact.audit_row, iact.audit_statement;
