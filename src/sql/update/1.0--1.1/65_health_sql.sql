-- 65_health_sql.sql (1.0 -> 1.1): iact.health() and iact.metrics() in SQL,
-- exactly as src/sql/70_health.sql creates them (it follows 60_monitoring.sql:
-- the checks read iact.maintenance_runs).
--
-- One SQL function per check (iact.health_check_<name>()), each returning its
-- rows (check, label, status, value, detail); iact.health_report() runs them
-- in a fixed order, each in a subtransaction of its own, so that a check that
-- errors out becomes one 'warn' row saying why and the others still answer.
-- iact.metrics() turns the report and a few sections of its own
-- (iact.metrics_<section>()) into Prometheus text, each section failing
-- alone too.  The thresholds come from iact.health_settings() (C: the module
-- defines the settings, see src/health.c).  Every object a check reads is
-- created by this script, so none is looked up at run time.
--
-- health() and metrics() run as the extension owner (SECURITY DEFINER) so a
-- monitoring role sees every figure without privileges on the tables they
-- read; PUBLIC may not call them.  pg_monitor may (it also needs USAGE on
-- schema iact).  The functions they call are not executable by PUBLIC either;
-- all pin search_path, the small inlined formatting helpers qualify every
-- name instead (a SET would keep them from being inlined).

CREATE FUNCTION iact.health_settings(
    OUT connections_warn integer, OUT connections_fail integer,
    OUT database_size_warn_mb integer, OUT migration_warn_runtime integer,
    OUT migration_max_runtime integer, OUT audit_rows_warn integer,
    OUT expected_role text, OUT overlap_check_interval integer,
    OUT audit_retention integer)
RETURNS record
LANGUAGE c STABLE
AS 'MODULE_PATHNAME', 'iact_health_settings';
COMMENT ON FUNCTION iact.health_settings() IS
    'iact: the settings iact.health() compares with, in MB, seconds and entries';

-- ---------------------------------------------------------------- the checks

CREATE FUNCTION iact.health_check_connections()
RETURNS TABLE (check_name text, label text, status text, value float8, detail text)
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
SELECT 'connections', NULL::text,
       CASE WHEN c.pct >= s.connections_fail THEN 'fail'
            WHEN c.pct >= s.connections_warn THEN 'warn' ELSE 'ok' END,
       c.used,
       format('%s of max_connections %s in use (%s%%; warn at %s%%, fail at %s%%)',
              c.used::bigint, c.max, round(c.pct)::bigint, s.connections_warn, s.connections_fail)
  FROM iact.health_settings() s,
       LATERAL (SELECT u.used, m.max, 100.0::float8 * u.used / m.max AS pct
                  FROM (SELECT count(*)::float8 AS used FROM pg_stat_activity
                         WHERE backend_type = 'client backend') u,
                       (SELECT current_setting('max_connections')::integer AS max) m) c
$$;

CREATE FUNCTION iact.health_check_database_size()
RETURNS TABLE (check_name text, label text, status text, value float8, detail text)
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
SELECT 'database_size', NULL::text,
       CASE WHEN d.lim > 0 AND d.bytes > d.lim THEN 'warn' ELSE 'ok' END,
       d.bytes::float8,
       CASE WHEN d.lim > 0 THEN format('%s (warn above %s MB)', pg_size_pretty(d.bytes), d.mb)
            ELSE format('%s (no limit set)', pg_size_pretty(d.bytes)) END
  FROM (SELECT pg_database_size(current_database()) AS bytes, s.database_size_warn_mb AS mb,
               s.database_size_warn_mb::bigint * 1024 * 1024 AS lim
          FROM iact.health_settings() s) d
$$;

CREATE FUNCTION iact.health_check_server_role()
RETURNS TABLE (check_name text, label text, status text, value float8, detail text)
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
SELECT 'server_role', NULL::text,
       CASE WHEN r.mismatch THEN 'fail' ELSE 'ok' END,
       CASE WHEN r.standby THEN 1 ELSE 0 END::float8,
       CASE WHEN r.standby THEN 'standby (in recovery)' ELSE 'primary' END
       || CASE WHEN r.mismatch THEN ', but iact.health_expected_role is ' || r.expected ELSE '' END
  FROM (SELECT pg_is_in_recovery() AS standby, s.expected_role AS expected,
               (s.expected_role = 'primary' AND pg_is_in_recovery())
               OR (s.expected_role = 'standby' AND NOT pg_is_in_recovery()) AS mismatch
          FROM iact.health_settings() s) r
$$;

-- Age of the last successful (or partial: it stored all but its rejects,
-- which sync_rejects reports) run per table against iact.sync_interval (6
-- hours when unset): warn beyond 2 intervals, fail beyond 4 or when a table
-- has runs but never a successful one.  One ok row when nothing has run.
CREATE FUNCTION iact.health_check_sync_last_success()
RETURNS TABLE (check_name text, label text, status text, value float8, detail text)
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
WITH i AS (
    SELECT extract(epoch FROM coalesce(nullif(current_setting('iact.sync_interval', true), '')::interval,
                                       interval '6 hours'))::float8 AS secs
), t AS (
    SELECT r.target_table::text AS target,
           extract(epoch FROM now() - max(r.finished_at)
                   FILTER (WHERE r.status IN ('success', 'partial')))::float8 AS age,
           max(r.finished_at) FILTER (WHERE r.status IN ('success', 'partial')) AS last
      FROM iact.sync_runs r GROUP BY r.target_table
)
SELECT 'sync_last_success', t.target,
       CASE WHEN t.age IS NULL OR t.age > 4 * i.secs THEN 'fail'
            WHEN t.age > 2 * i.secs THEN 'warn' ELSE 'ok' END,
       t.age,
       CASE WHEN t.age IS NULL THEN 'no successful sync yet'
            ELSE format('last success or partial run ended %s, %s s ago (interval %s s; warn beyond 2, fail beyond 4 intervals)',
                        t.last, round(t.age)::bigint, round(i.secs)::bigint) END
  FROM t, i
UNION ALL
SELECT 'sync_last_success', NULL, 'ok', NULL, 'no sync has run yet'
 WHERE NOT EXISTS (SELECT FROM iact.sync_runs)
ORDER BY 2
$$;

CREATE FUNCTION iact.health_check_sync_failures()
RETURNS TABLE (check_name text, label text, status text, value float8, detail text)
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
SELECT 'sync_failures', NULL::text, CASE WHEN f.n > 0 THEN 'warn' ELSE 'ok' END, f.n::float8,
       CASE WHEN f.n > 0 THEN format('%s failed sync run(s) in the last 24 hours: %s', f.n, f.tables)
            ELSE 'no failed sync run in the last 24 hours' END
  FROM (SELECT count(*) AS n, string_agg(DISTINCT r.target_table::text, ', ') AS tables
          FROM iact.sync_runs r
         WHERE r.status = 'failed' AND r.started_at > now() - interval '1 day') f
$$;

-- Source rows the sync rejected in the last 24 hours.
CREATE FUNCTION iact.health_check_sync_rejects()
RETURNS TABLE (check_name text, label text, status text, value float8, detail text)
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
SELECT 'sync_rejects', NULL::text, CASE WHEN j.n > 0 THEN 'warn' ELSE 'ok' END, j.n::float8,
       format('%s row(s) rejected by the sync in the last 24 hours', j.n)
  FROM (SELECT count(*) AS n FROM iact.sync_rejects r
         WHERE r.created_at > now() - interval '1 day') j
$$;

-- Migrations RUNNING for too long: warn beyond
-- iact.health_migration_warn_runtime, fail beyond
-- iact.health_migration_max_runtime.  The value counts those beyond the
-- warning threshold; the detail names them with their age.
CREATE FUNCTION iact.health_check_migrations_running()
RETURNS TABLE (check_name text, label text, status text, value float8, detail text)
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
SELECT 'migrations_running', NULL::text,
       CASE WHEN m.failed > 0 THEN 'fail' WHEN m.warned > 0 THEN 'warn' ELSE 'ok' END,
       m.warned::float8,
       CASE WHEN m.warned > 0
            THEN format('RUNNING for longer than %s s: %s (warn beyond %s s, fail beyond %s s)',
                        m.beyond, m.names, s.migration_warn_runtime, s.migration_max_runtime)
            ELSE format('no migration RUNNING for longer than %s s', s.migration_warn_runtime) END
  FROM iact.health_settings() s,
       LATERAL (SELECT least(s.migration_warn_runtime, s.migration_max_runtime) AS beyond,
                       count(*) AS warned,
                       count(*) FILTER (WHERE l.started_at < now() - s.migration_max_runtime * interval '1 second') AS failed,
                       string_agg(l.version || ' (' || round(extract(epoch FROM now() - l.started_at)) || ' s)',
                                  ', ' ORDER BY l.started_at) AS names
                  FROM iact.migration_log l
                 WHERE l.status = 'RUNNING'
                   AND l.started_at < now() - least(s.migration_warn_runtime, s.migration_max_runtime)
                                              * interval '1 second') m
$$;

-- FAILED applies and ROLLBACK_FAILED rollbacks that ended in the last 24 hours.
CREATE FUNCTION iact.health_check_migrations_failed()
RETURNS TABLE (check_name text, label text, status text, value float8, detail text)
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
SELECT 'migrations_failed', NULL::text, CASE WHEN f.n > 0 THEN 'fail' ELSE 'ok' END, f.n::float8,
       CASE WHEN f.n > 0
            THEN format('%s failed migration or rollback entr%s in the last 24 hours: %s',
                        f.n, CASE WHEN f.n = 1 THEN 'y' ELSE 'ies' END, f.entries)
            ELSE 'no failed migration or rollback in the last 24 hours' END
  FROM (SELECT count(*) AS n, string_agg(l.version || ' ' || l.status, ', ' ORDER BY l.id) AS entries
          FROM iact.migration_log l
         WHERE l.status IN ('FAILED', 'ROLLBACK_FAILED')
           AND coalesce(l.completed_at, l.started_at) > now() - interval '1 day') f
$$;

-- The last overlap scan's result (iact.maintenance_runs, written by the
-- maintenance worker or iact.check_overlaps_now()): fail when it found
-- overlapping pairs.  Reads one row; never scans the events.
CREATE FUNCTION iact.health_check_overlaps()
RETURNS TABLE (check_name text, label text, status text, value float8, detail text)
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
WITH l AS (
    SELECT coalesce(m.overlaps_found, 0) AS n, m.finished_at,
           (SELECT string_agg((p.p ->> 'person') || ': ' || (p.p ->> 'table_a') || ' ' || (p.p ->> 'id_a')
                              || ' / ' || (p.p ->> 'table_b') || ' ' || (p.p ->> 'id_b'), '; ')
              FROM jsonb_array_elements(m.overlaps_sample) WITH ORDINALITY AS p(p, i)
             WHERE p.i <= 3) AS sample
      FROM iact.maintenance_runs m
     WHERE m.task = 'overlap_check' AND m.status = 'success'
     ORDER BY m.id DESC LIMIT 1
)
SELECT 'overlaps', NULL::text, CASE WHEN l.n > 0 THEN 'fail' ELSE 'ok' END, l.n::float8,
       CASE WHEN l.n > 0
            THEN format('%s overlapping pair(s) of events found by the check of %s, e.g. %s;'
                        ' list them with SELECT * FROM iact.find_overlaps()', l.n, l.finished_at, l.sample)
            ELSE format('no overlapping events at the check of %s', l.finished_at) END
  FROM l
UNION ALL
SELECT 'overlaps', NULL, 'ok', NULL, 'no overlap check has completed yet (see overlap_check_age)'
 WHERE NOT EXISTS (SELECT FROM l)
$$;

-- Age of the last successful overlap scan: warn when there is none or it is
-- older than 2 x iact.overlap_check_interval (the maintenance worker is not
-- running, or its scans fail).  With the schedule off (0), ok.
CREATE FUNCTION iact.health_check_overlap_check_age()
RETURNS TABLE (check_name text, label text, status text, value float8, detail text)
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
SELECT 'overlap_check_age', NULL::text,
       CASE WHEN a.every > 0 AND (a.age IS NULL OR a.age > 2.0 * a.every) THEN 'warn' ELSE 'ok' END,
       a.age,
       CASE WHEN a.age IS NULL
            THEN format('no overlap check has completed yet%s; run SELECT iact.check_overlaps_now()%s',
                        '; last failure ' || a.last_failure,
                        CASE WHEN a.every > 0 THEN ' or check that the iact maintenance worker runs'
                             ELSE ' (iact.overlap_check_interval is 0: no scheduled check)' END)
            WHEN a.every > 0
            THEN format('last overlap check completed %s s ago (interval %s s; warn beyond 2 intervals)%s',
                        round(a.age)::bigint, a.every, '; last failure ' || a.last_failure)
            ELSE format('last overlap check completed %s s ago (iact.overlap_check_interval is 0: no scheduled check)',
                        round(a.age)::bigint) END
  FROM (SELECT s.overlap_check_interval AS every,
               extract(epoch FROM now() - (SELECT m.finished_at FROM iact.maintenance_runs m
                                            WHERE m.task = 'overlap_check' AND m.status = 'success'
                                            ORDER BY m.id DESC LIMIT 1))::float8 AS age,
               (SELECT m.finished_at::text || ': ' || m.error FROM iact.maintenance_runs m
                 WHERE m.task = 'overlap_check' AND m.status = 'failed'
                 ORDER BY m.id DESC LIMIT 1) AS last_failure
          FROM iact.health_settings() s) a
$$;

-- Failed runs of the maintenance worker's tasks in the last 24 hours.
CREATE FUNCTION iact.health_check_maintenance_failures()
RETURNS TABLE (check_name text, label text, status text, value float8, detail text)
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
SELECT 'maintenance_failures', NULL::text, CASE WHEN f.n > 0 THEN 'warn' ELSE 'ok' END, f.n::float8,
       CASE WHEN f.n > 0 THEN format('%s failed maintenance run(s) in the last 24 hours: %s', f.n, f.runs)
            ELSE 'no failed maintenance run in the last 24 hours' END
  FROM (SELECT count(*) AS n,
               string_agg(m.task || ' at ' || m.started_at::text || ': ' || m.error, '; ' ORDER BY m.id) AS runs
          FROM iact.maintenance_runs m
         WHERE m.status = 'failed' AND m.started_at > now() - interval '1 day') f
$$;

-- Audit entries of the last 24 hours (a TRUNCATE counts one).
CREATE FUNCTION iact.health_check_audit_log_growth()
RETURNS TABLE (check_name text, label text, status text, value float8, detail text)
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
SELECT 'audit_log_growth', NULL::text,
       CASE WHEN s.audit_rows_warn > 0 AND g.n > s.audit_rows_warn THEN 'warn' ELSE 'ok' END,
       g.n::float8,
       format('%s entries in the last 24 hours%s; log size %s; %s table(s) audited', g.n,
              CASE WHEN s.audit_rows_warn > 0 THEN format(' (warn above %s)', s.audit_rows_warn) ELSE '' END,
              pg_size_pretty(pg_total_relation_size('iact.audit_row')
                             + pg_total_relation_size('iact.audit_statement')),
              (SELECT count(*) FROM iact.audited_tables))
  FROM iact.health_settings() s,
       (SELECT coalesce(sum(greatest(a.row_count, 1)), 0) AS n FROM iact.audit_statement a
         WHERE a."timestamp" > now() - interval '1 day') g
$$;

-- Partitions and inheritance children of audited tables whose own statements
-- are not audited (added after enable_audit): iact.audit_uncovered.
CREATE FUNCTION iact.health_check_audit_uncovered()
RETURNS TABLE (check_name text, label text, status text, value float8, detail text)
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
SELECT 'audit_uncovered', NULL::text, CASE WHEN u.n > 0 THEN 'warn' ELSE 'ok' END, u.n::float8,
       CASE WHEN u.n > 0
            THEN format('%s partition(s) or child table(s) of audited tables not audited: %s;'
                        ' run iact.enable_audit(parent) again', u.n, u.tables)
            ELSE 'every partition and child table of the audited tables is audited' END
  FROM (SELECT count(*) AS n,
               string_agg(a.table_name::text || ' (of ' || a.audited_parent::text || ')', ', '
                          ORDER BY a.table_name::text) AS tables
          FROM iact.audit_uncovered a) u
$$;

-- ---------------------------------------------------------------- the report

-- Every check in order, each in a subtransaction (the exception block): a
-- check that raises an error is one 'warn' row 'check failed: <message>'.  A
-- cancel or statement timeout is not caught (WHEN OTHERS leaves it out): it
-- ends the call.  A check's rows reach the result only once it has run to
-- the end: a set-returning function in FROM is run to completion before its
-- first row is read (the check functions are never inlined: they SET
-- search_path).
CREATE FUNCTION iact.health_report()
RETURNS TABLE (check_name text, label text, status text, value float8, detail text)
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    c text;
BEGIN
    FOREACH c IN ARRAY ARRAY['connections', 'database_size', 'server_role', 'sync_last_success',
                             'sync_failures', 'sync_rejects', 'migrations_running', 'migrations_failed',
                             'overlaps', 'overlap_check_age', 'maintenance_failures',
                             'audit_log_growth', 'audit_uncovered']
    LOOP
        BEGIN
            RETURN QUERY EXECUTE format('SELECT * FROM iact.%I()', 'health_check_' || c);
        EXCEPTION WHEN OTHERS THEN
            RETURN QUERY SELECT c, NULL::text, 'warn'::text, NULL::float8, 'check failed: ' || SQLERRM;
        END;
    END LOOP;
END
$$;
COMMENT ON FUNCTION iact.health_report() IS
    'iact: the rows of iact.health() with the table apart (label) and the value as float8';

CREATE OR REPLACE FUNCTION iact.health()
RETURNS TABLE (check_name text, status text, value numeric, detail text)
LANGUAGE sql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
SELECT r.check_name || coalesce(':' || r.label, ''), r.status, r.value::numeric, r.detail
  FROM iact.health_report() r
$$;
COMMENT ON FUNCTION iact.health() IS
    'iact health checks: one row per check (and per synced table), status ok, warn or fail';

-- ---------------------------------------------------------------- metrics

-- Prometheus escapes: label values \ " and newline; HELP text \ and newline.
CREATE FUNCTION iact.metrics_escape(s text, label boolean)
RETURNS text
LANGUAGE sql IMMUTABLE
AS $$
SELECT CASE WHEN label
            THEN pg_catalog.replace(pg_catalog.replace(pg_catalog.replace(s, E'\\', E'\\\\'), E'\n', E'\\n'), '"', E'\\"')
            ELSE pg_catalog.replace(pg_catalog.replace(s, E'\\', E'\\\\'), E'\n', E'\\n') END
$$;

-- A sample's value: integers as such, others in the shortest form that reads
-- back as the same float8 (extra_float_digits > 0: the sections set it).
CREATE FUNCTION iact.metrics_value(v float8)
RETURNS text
LANGUAGE sql STABLE
AS $$
SELECT CASE WHEN pg_catalog.float8eq(v, 'NaN') THEN 'NaN'
            WHEN pg_catalog.float8eq(v, 'Infinity') THEN '+Inf'
            WHEN pg_catalog.float8eq(v, '-Infinity') THEN '-Inf'
            WHEN pg_catalog.float8eq(v, pg_catalog.trunc(v)) AND pg_catalog.float8lt(pg_catalog.float8abs(v), '1e15')
            THEN CAST(CAST(v AS pg_catalog.numeric) AS pg_catalog.text)
            ELSE CAST(v AS pg_catalog.text) END
$$;

-- "# HELP" and "# TYPE" of a family.
CREATE FUNCTION iact.metrics_family(name text, type text, help text)
RETURNS text
LANGUAGE sql IMMUTABLE
AS $$
SELECT pg_catalog.concat('# HELP ', name, ' ', iact.metrics_escape(help, false), E'\n# TYPE ', name, ' ', type, E'\n')
$$;

-- One sample line, name{k1="v1",k2="v2"} value (labels without a name are
-- left out); NULL when the value is NULL.
CREATE FUNCTION iact.metrics_sample(name text, v float8, k1 text DEFAULT NULL, v1 text DEFAULT NULL,
                                    k2 text DEFAULT NULL, v2 text DEFAULT NULL)
RETURNS text
LANGUAGE sql STABLE
AS $$
SELECT CASE WHEN v IS NOT NULL
            THEN pg_catalog.concat(name,
                     CASE WHEN k1 IS NOT NULL
                          THEN pg_catalog.concat('{', k1, '="', iact.metrics_escape(v1, true), '"',
                                   CASE WHEN k2 IS NOT NULL
                                        THEN pg_catalog.concat(',', k2, '="', iact.metrics_escape(v2, true), '"')
                                   END, '}')
                     END, ' ', iact.metrics_value(v), E'\n')
       END
$$;

-- Each section returns its families whole; iact.metrics() leaves out a
-- section that raises an error, with a comment line saying why.

-- every row of iact.health_report(): status, value, configured
CREATE FUNCTION iact.metrics_health()
RETURNS text
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
SET extra_float_digits = 1
AS $$
WITH r AS MATERIALIZED (
    SELECT h.*, row_number() OVER () AS n FROM iact.health_report() h
)
SELECT iact.metrics_family('iact_health_status', 'gauge', 'Status of each iact.health() check: 0 ok, 1 warn, 2 fail.')
       || coalesce((SELECT string_agg(iact.metrics_sample('iact_health_status',
                                          CASE r.status WHEN 'ok' THEN 0 WHEN 'warn' THEN 1 ELSE 2 END,
                                          'check', r.check_name, CASE WHEN r.label IS NOT NULL THEN 'table' END, r.label),
                                      '' ORDER BY r.n) FROM r), '')
       || iact.metrics_family('iact_health_value', 'gauge', 'Value of each iact.health() check (see iact.health() for its unit).')
       || coalesce((SELECT string_agg(iact.metrics_sample('iact_health_value', r.value,
                                          'check', r.check_name, CASE WHEN r.label IS NOT NULL THEN 'table' END, r.label),
                                      '' ORDER BY r.n) FROM r), '')
       || iact.metrics_family('iact_health_configured', 'gauge', '1 when the feature a check reads is installed, 0 when it reports not configured.')
       || coalesce((SELECT string_agg(iact.metrics_sample('iact_health_configured', 1,
                                          'check', r.check_name, CASE WHEN r.label IS NOT NULL THEN 'table' END, r.label),
                                      '' ORDER BY r.n) FROM r), '')
$$;

-- connections, database size, primary or standby
CREATE FUNCTION iact.metrics_server()
RETURNS text
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
SET extra_float_digits = 1
AS $$
SELECT iact.metrics_family('iact_connections', 'gauge', 'Client connections in use.')
       || iact.metrics_sample('iact_connections',
                              (SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend'))
       || iact.metrics_family('iact_max_connections', 'gauge', 'The max_connections setting.')
       || iact.metrics_sample('iact_max_connections', current_setting('max_connections')::float8)
       || iact.metrics_family('iact_database_size_bytes', 'gauge', 'Size of the current database in bytes.')
       || iact.metrics_sample('iact_database_size_bytes', pg_database_size(current_database()))
       || iact.metrics_family('iact_is_standby', 'gauge', '1 when this server is a standby (in recovery), 0 on a primary.')
       || iact.metrics_sample('iact_is_standby', pg_is_in_recovery()::integer)
$$;

-- audit volume: written (cumulative statistics), size, entries of the last day
CREATE FUNCTION iact.metrics_audit()
RETURNS text
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
SET extra_float_digits = 1
AS $$
SELECT iact.metrics_family('iact_audit_rows_written_total', 'counter',
                           'Audit rows written (iact.audit_row inserts, from the cumulative statistics).')
       || iact.metrics_sample('iact_audit_rows_written_total', pg_stat_get_tuples_inserted('iact.audit_row'::regclass))
       || iact.metrics_family('iact_audit_statements_written_total', 'counter',
                              'Audited statements written (iact.audit_statement inserts, from the cumulative statistics).')
       || iact.metrics_sample('iact_audit_statements_written_total',
                              pg_stat_get_tuples_inserted('iact.audit_statement'::regclass))
       || iact.metrics_family('iact_audit_log_size_bytes', 'gauge',
                              'On-disk size of the audit log (both tables, indexes and TOAST included).')
       || iact.metrics_sample('iact_audit_log_size_bytes',
                              pg_total_relation_size('iact.audit_row') + pg_total_relation_size('iact.audit_statement'))
       || iact.metrics_family('iact_audit_entries_last_day', 'gauge',
                              'Audit entries recorded in the last 24 hours, per table and operation.')
       || coalesce((SELECT string_agg(iact.metrics_sample('iact_audit_entries_last_day', e.n,
                                                          'table', e.tab, 'operation', e.operation), '' ORDER BY e.tab, e.operation)
                      FROM (SELECT a.schema_name || '.' || a.table_name AS tab, a.operation,
                                   sum(greatest(a.row_count, 1)) AS n
                              FROM iact.audit_statement a
                             WHERE a."timestamp" > now() - interval '1 day'
                             GROUP BY 1, 2) e), '')
$$;

-- the migration log: oldest RUNNING, entries per status, last success
CREATE FUNCTION iact.metrics_migrations()
RETURNS text
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
SET extra_float_digits = 1
AS $$
SELECT iact.metrics_family('iact_migration_running_oldest_age_seconds', 'gauge',
                           'Seconds since the oldest migration still RUNNING started (0 when none is).')
       || iact.metrics_sample('iact_migration_running_oldest_age_seconds',
                              (SELECT coalesce(extract(epoch FROM now() - min(l.started_at)), 0)::float8
                                 FROM iact.migration_log l WHERE l.status = 'RUNNING'))
       || iact.metrics_family('iact_migration_log_entries', 'gauge',
                              'Entries of iact.migration_log per status (applies: RUNNING, SUCCESS, FAILED; rollbacks: ROLLED_BACK, ROLLBACK_FAILED).')
       || (SELECT string_agg(iact.metrics_sample('iact_migration_log_entries', e.n, 'status', e.status), '' ORDER BY e.status)
             FROM (SELECT s.status, count(l.id) AS n
                     FROM (VALUES ('RUNNING'), ('SUCCESS'), ('FAILED'), ('ROLLED_BACK'), ('ROLLBACK_FAILED')) s(status)
                     LEFT JOIN iact.migration_log l ON l.status = s.status
                    GROUP BY 1) e)
       || iact.metrics_family('iact_migration_last_success_timestamp_seconds', 'gauge',
                              'End of the last successful migration (apply), Unix time.')
       || coalesce(iact.metrics_sample('iact_migration_last_success_timestamp_seconds',
                                       (SELECT extract(epoch FROM max(l.completed_at))::float8
                                          FROM iact.migration_log l WHERE l.status = 'SUCCESS')), '')
$$;

-- the maintenance worker: the last overlap check, runs, audit retention
CREATE FUNCTION iact.metrics_maintenance()
RETURNS text
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
SET extra_float_digits = 1
AS $$
WITH l AS (
    SELECT m.overlaps_found, m.started_at, m.finished_at FROM iact.maintenance_runs m
     WHERE m.task = 'overlap_check' AND m.status = 'success' ORDER BY m.id DESC LIMIT 1
)
SELECT iact.metrics_family('iact_overlap_check_interval_seconds', 'gauge',
                           'The iact.overlap_check_interval setting in seconds (0: no scheduled overlap check).')
       || iact.metrics_sample('iact_overlap_check_interval_seconds', s.overlap_check_interval)
       || iact.metrics_family('iact_overlaps_found', 'gauge',
                              'Overlapping pairs of events found by the last successful overlap check.')
       || coalesce(iact.metrics_sample('iact_overlaps_found', (SELECT l.overlaps_found FROM l)), '')
       || iact.metrics_family('iact_overlap_check_last_success_timestamp_seconds', 'gauge',
                              'End of the last successful overlap check, Unix time.')
       || coalesce(iact.metrics_sample('iact_overlap_check_last_success_timestamp_seconds',
                                       (SELECT extract(epoch FROM l.finished_at)::float8 FROM l)), '')
       || iact.metrics_family('iact_overlap_check_duration_seconds', 'gauge',
                              'Duration of the last successful overlap check.')
       || coalesce(iact.metrics_sample('iact_overlap_check_duration_seconds',
                                       (SELECT extract(epoch FROM l.finished_at - l.started_at)::float8 FROM l)), '')
       || iact.metrics_family('iact_maintenance_runs_total', 'counter',
                              'Runs of the maintenance worker''s tasks kept in iact.maintenance_runs, per task and status.')
       || coalesce((SELECT string_agg(iact.metrics_sample('iact_maintenance_runs_total', r.n, 'task', r.task,
                                                          'status', r.status), '' ORDER BY r.task, r.status)
                      FROM (SELECT m.task, m.status, count(*) AS n FROM iact.maintenance_runs m GROUP BY 1, 2) r), '')
       || iact.metrics_family('iact_maintenance_last_success_timestamp_seconds', 'gauge',
                              'End of the last successful run of each maintenance task, Unix time.')
       || coalesce((SELECT string_agg(iact.metrics_sample('iact_maintenance_last_success_timestamp_seconds',
                                                          r.t, 'task', r.task), '' ORDER BY r.task)
                      FROM (SELECT m.task, extract(epoch FROM max(m.finished_at))::float8 AS t
                              FROM iact.maintenance_runs m WHERE m.status = 'success' GROUP BY 1) r), '')
       || iact.metrics_family('iact_audit_retention_seconds', 'gauge',
                              'The iact.audit_retention setting in seconds (0: audit entries are kept forever).')
       || iact.metrics_sample('iact_audit_retention_seconds', s.audit_retention)
       || iact.metrics_family('iact_audit_purged_entries_total', 'counter',
                              'Audit entries deleted by the retention runs kept in iact.maintenance_runs.')
       || iact.metrics_sample('iact_audit_purged_entries_total',
                              (SELECT coalesce(sum(m.rows_purged), 0)::float8 FROM iact.maintenance_runs m
                                WHERE m.task = 'audit_retention'))
  FROM iact.health_settings() s
$$;

-- the sync: last success, registrations, interval, rows and runs per table
CREATE FUNCTION iact.metrics_sync()
RETURNS text
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
SET extra_float_digits = 1
AS $$
SELECT iact.metrics_family('iact_sync_last_success_timestamp_seconds', 'gauge',
                           'End of the last successful (or partial) sync run per table, Unix time.')
       || coalesce((SELECT string_agg(iact.metrics_sample('iact_sync_last_success_timestamp_seconds', t.last,
                                                          'table', t.target), '' ORDER BY t.target)
                      FROM (SELECT r.target_table::text AS target,
                                   extract(epoch FROM max(r.finished_at)
                                           FILTER (WHERE r.status IN ('success', 'partial')))::float8 AS last
                              FROM iact.sync_runs r GROUP BY 1) t), '')
       || iact.metrics_family('iact_sync_registered_timestamp_seconds', 'gauge',
                              'When each enabled table was registered for sync (iact.sync_tables.created_at), Unix time.')
       || coalesce((SELECT string_agg(iact.metrics_sample('iact_sync_registered_timestamp_seconds', t.created,
                                                          'table', t.target), '' ORDER BY t.target)
                      FROM (SELECT format('%I.%I', st.target_schema, st.target_table) AS target,
                                   extract(epoch FROM st.created_at)::float8 AS created
                              FROM iact.sync_tables st WHERE st.enabled) t), '')
       || iact.metrics_family('iact_sync_interval_seconds', 'gauge',
                              'The iact.sync_interval setting in seconds (6 hours when unset): a sync is stale beyond 2 intervals.')
       || iact.metrics_sample('iact_sync_interval_seconds',
                              extract(epoch FROM coalesce(nullif(current_setting('iact.sync_interval', true), '')::interval,
                                                          interval '6 hours'))::float8)
       || iact.metrics_family('iact_sync_rows_total', 'counter',
                              'Rows handled by the sync runs kept in iact.sync_runs, per table and operation.')
       || coalesce((SELECT string_agg(iact.metrics_sample('iact_sync_rows_total', t.n, 'table', t.target,
                                                          'operation', t.op), '' ORDER BY t.target, t.op)
                      FROM (SELECT r.target_table::text AS target, o.op,
                                   sum(CASE o.op WHEN 'read' THEN r.rows_read WHEN 'inserted' THEN r.rows_inserted
                                                 WHEN 'updated' THEN r.rows_updated WHEN 'deleted' THEN r.rows_deleted
                                                 WHEN 'rejected' THEN r.rows_rejected ELSE r.rows_purged END)::float8 AS n
                              FROM iact.sync_runs r
                             CROSS JOIN (VALUES ('read'), ('inserted'), ('updated'), ('deleted'), ('rejected'), ('purged')) o(op)
                             GROUP BY 1, 2) t), '')
       || iact.metrics_family('iact_sync_runs_total', 'counter',
                              'Sync runs kept in iact.sync_runs per table and status (purging the history resets it).')
       || coalesce((SELECT string_agg(iact.metrics_sample('iact_sync_runs_total', t.n, 'table', t.target,
                                                          'status', t.status), '' ORDER BY t.target, t.status)
                      FROM (SELECT r.target_table::text AS target, r.status::text AS status, count(*) AS n
                              FROM iact.sync_runs r GROUP BY 1, 2) t), '')
$$;

-- The whole scrape: iact_up, then each section in turn, a section that
-- raises an error replaced by "# iact: <section> metrics left out: <why>" (a
-- cancel or statement timeout is not caught: it ends the call).
CREATE OR REPLACE FUNCTION iact.metrics()
RETURNS text
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    scrape text := iact.metrics_family('iact_up', 'gauge', '1: iact.metrics() answered.') || E'iact_up 1\n';
    part   text;
    sec    text;
BEGIN
    FOREACH sec IN ARRAY ARRAY['health', 'server', 'audit', 'migrations', 'maintenance', 'sync']
    LOOP
        BEGIN
            EXECUTE format('SELECT iact.%I()', 'metrics_' || sec) INTO part;
            scrape := scrape || coalesce(part, '');
        EXCEPTION WHEN OTHERS THEN
            scrape := scrape || format(E'# iact: %s metrics left out: %s\n', sec, iact.metrics_escape(SQLERRM, false));
        END;
    END LOOP;
    RETURN scrape;
END
$$;
COMMENT ON FUNCTION iact.metrics() IS
    'iact figures in Prometheus text exposition format, for a scraper';

-- ---------------------------------------------------------------- privileges

REVOKE ALL ON FUNCTION iact.health() FROM PUBLIC;
REVOKE ALL ON FUNCTION iact.metrics() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION iact.health() TO pg_monitor;
GRANT EXECUTE ON FUNCTION iact.metrics() TO pg_monitor;
REVOKE ALL ON FUNCTION iact.health_settings() FROM PUBLIC;
REVOKE ALL ON FUNCTION iact.health_check_connections() FROM PUBLIC;
REVOKE ALL ON FUNCTION iact.health_check_database_size() FROM PUBLIC;
REVOKE ALL ON FUNCTION iact.health_check_server_role() FROM PUBLIC;
REVOKE ALL ON FUNCTION iact.health_check_sync_last_success() FROM PUBLIC;
REVOKE ALL ON FUNCTION iact.health_check_sync_failures() FROM PUBLIC;
REVOKE ALL ON FUNCTION iact.health_check_sync_rejects() FROM PUBLIC;
REVOKE ALL ON FUNCTION iact.health_check_migrations_running() FROM PUBLIC;
REVOKE ALL ON FUNCTION iact.health_check_migrations_failed() FROM PUBLIC;
REVOKE ALL ON FUNCTION iact.health_check_overlaps() FROM PUBLIC;
REVOKE ALL ON FUNCTION iact.health_check_overlap_check_age() FROM PUBLIC;
REVOKE ALL ON FUNCTION iact.health_check_maintenance_failures() FROM PUBLIC;
REVOKE ALL ON FUNCTION iact.health_check_audit_log_growth() FROM PUBLIC;
REVOKE ALL ON FUNCTION iact.health_check_audit_uncovered() FROM PUBLIC;
REVOKE ALL ON FUNCTION iact.health_report() FROM PUBLIC;
REVOKE ALL ON FUNCTION iact.metrics_escape(text, boolean) FROM PUBLIC;
REVOKE ALL ON FUNCTION iact.metrics_value(float8) FROM PUBLIC;
REVOKE ALL ON FUNCTION iact.metrics_family(text, text, text) FROM PUBLIC;
REVOKE ALL ON FUNCTION iact.metrics_sample(text, float8, text, text, text, text) FROM PUBLIC;
REVOKE ALL ON FUNCTION iact.metrics_health() FROM PUBLIC;
REVOKE ALL ON FUNCTION iact.metrics_server() FROM PUBLIC;
REVOKE ALL ON FUNCTION iact.metrics_audit() FROM PUBLIC;
REVOKE ALL ON FUNCTION iact.metrics_migrations() FROM PUBLIC;
REVOKE ALL ON FUNCTION iact.metrics_maintenance() FROM PUBLIC;
REVOKE ALL ON FUNCTION iact.metrics_sync() FROM PUBLIC;
