-- iact.health() and iact.metrics() as SQL: one function per check and per
-- metrics section, a broken check failing alone, the Prometheus formatting
-- helpers, privileges and search_path immunity of every helper.
SET client_min_messages = notice;

\echo == one function per check, giving the rows health() shows
-- (sync_last_success has one row per synced table: the tests before this one may have synced some)
SELECT row_number() OVER (ORDER BY h.n) AS n, h.check_name,
       to_regprocedure('iact.health_check_' || h.check_name || '()') IS NOT NULL AS has_function
  FROM (SELECT split_part(check_name, ':', 1) AS check_name, min(n) AS n
          FROM iact.health() WITH ORDINALITY AS h(check_name, status, value, detail, n) GROUP BY 1) h
 ORDER BY h.n;
-- each function's rows (check, table, status) are health()'s
SELECT count(*) = (SELECT count(*) FROM iact.health_report()) AS as_many_rows, bool_and(c.same) AS same_rows
  FROM (SELECT h.check_name, h.status,
               EXISTS (SELECT 1 FROM iact.health_report() r
                        WHERE r.check_name || coalesce(':' || r.label, '') = h.check_name
                          AND r.status = h.status) AS same
          FROM iact.health() h) c;
SELECT check_name, label, status, value, detail FROM iact.health_check_server_role();
SELECT check_name, label, status IN ('ok', 'warn') AS status_ok FROM iact.health_check_sync_failures();

\echo == a check that errors out is one warn row; the others still answer
BEGIN;
-- a stored overlap check whose sample is not the array the check reads
INSERT INTO iact.maintenance_runs (task, status, finished_at, overlaps_found, overlaps_sample)
VALUES ('overlap_check', 'success', clock_timestamp(), 1, '{"not": "an array"}');
-- (the run ended after this transaction's now(): its age is about 0, not shown)
SELECT check_name, status, CASE WHEN check_name = 'overlaps' THEN value END AS value,
       CASE WHEN check_name = 'overlaps' THEN detail
            ELSE regexp_replace(detail, '-?[0-9]+ s ago', 'N s ago') END AS detail
  FROM iact.health()
 WHERE check_name IN ('overlaps', 'overlap_check_age');
SELECT count(DISTINCT split_part(check_name, ':', 1)) AS checks,
       count(*) FILTER (WHERE detail LIKE 'check failed:%') AS failed
  FROM iact.health();
-- the scrape: that check warns, its section and the others are whole
SELECT l FROM regexp_split_to_table(iact.metrics(), E'\n') AS l
 WHERE l ~ '^iact_health_(status|value)\{check="overlaps"\}'
    OR l ~ '^iact_overlaps_found '
    OR l LIKE '# iact:%';
ROLLBACK;

\echo == Prometheus formatting
SELECT v, iact.metrics_value(v) AS written
  FROM (VALUES (0::float8), (-3), (42), (1.5), (0.1), (-2.25), (1e14), (1e15), (1e-7), (1733356800.123456),
               ('NaN'), ('Infinity'), ('-Infinity')) AS t(v);
SELECT iact.metrics_escape(E'a\\b"c\nd', true) AS label, iact.metrics_escape(E'a\\b"c\nd', false) AS help;
SELECT iact.metrics_sample('m', 1) AS no_labels,
       iact.metrics_sample('m', 2, 'k', E'x"y') AS one_label,
       iact.metrics_sample('m', 3, 'k', 'a', 'j', NULL) AS null_value_label,
       iact.metrics_sample('m', 4, NULL, NULL, 'j', 'b') AS second_without_first,
       iact.metrics_sample('m', NULL, 'k', 'a') IS NULL AS no_value_no_sample;
SELECT iact.metrics_family('m', 'gauge', E'it\\s\nhelp') AS family;

\echo == privileges: only health() and metrics(), only for pg_monitor
SELECT p.oid::regprocedure AS function, p.prosecdef,
       has_function_privilege('public', p.oid, 'EXECUTE') AS public_execute,
       has_function_privilege('pg_monitor', p.oid, 'EXECUTE') AS pg_monitor_execute,
       p.proconfig
  FROM pg_proc p
 WHERE p.pronamespace = 'iact'::regnamespace
   AND (p.proname IN ('health', 'metrics', 'health_report', 'health_settings')
        OR p.proname LIKE 'health\_check\_%' OR p.proname LIKE 'metrics\_%')
 ORDER BY p.oid::regprocedure::text;

\echo == search_path: the helpers without a pinned search_path qualify every name
CREATE SCHEMA regress_health_trojan;
CREATE FUNCTION regress_health_trojan.replace(text, text, text) RETURNS text
    LANGUAGE plpgsql AS $$BEGIN RAISE EXCEPTION 'trojan replace'; END$$;
CREATE FUNCTION regress_health_trojan.concat(VARIADIC text[]) RETURNS text
    LANGUAGE plpgsql AS $$BEGIN RAISE EXCEPTION 'trojan concat'; END$$;
CREATE FUNCTION regress_health_trojan.float8eq(float8, float8) RETURNS boolean
    LANGUAGE plpgsql AS $$BEGIN RAISE EXCEPTION 'trojan float8eq'; END$$;
CREATE FUNCTION regress_health_trojan.trunc(float8) RETURNS float8
    LANGUAGE plpgsql AS $$BEGIN RAISE EXCEPTION 'trojan trunc'; END$$;
CREATE FUNCTION regress_health_trojan.pg_size_pretty(bigint) RETURNS text
    LANGUAGE plpgsql AS $$BEGIN RAISE EXCEPTION 'trojan pg_size_pretty'; END$$;
SET search_path = regress_health_trojan, pg_catalog;
SELECT iact.metrics_sample('m', 1.5, 'k', E'"') AS sample, iact.metrics_family('m', 'gauge', 'h') AS family;
SELECT count(DISTINCT split_part(check_name, ':', 1)) AS checks,
       count(*) FILTER (WHERE detail LIKE 'check failed:%') AS failed
  FROM iact.health();
SELECT iact.metrics() LIKE E'%\niact_is_standby 0\n%' AS scraped;
RESET search_path;
DROP SCHEMA regress_health_trojan CASCADE;
