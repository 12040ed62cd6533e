-- Hostile input (issue 11): every SQL function of the extension except the
-- sync's (sync_*, request_sync, the FDW validator: sql/3x_sync_*), called
-- with NULLs, empty and blank strings, +-infinity, extreme numbers,
-- 10 000-character names, quotes and dots in identifiers.  One argument is
-- made hostile at a time, the others being valid.  Each call ends within the
-- statement timeout (a hang fails the test: query_canceled is not caught
-- below) in an error or a correct result, and the server stays up.
-- Every call runs in a subtransaction that is rolled back, so calls that
-- succeed leave nothing behind.
SET client_min_messages = warning;
SET statement_timeout = '5s';

CREATE TABLE regress_sweep_t (id int PRIMARY KEY, v int);
INSERT INTO regress_sweep_t VALUES (1, 0), (2, 0);
CREATE TABLE regress_sweep_ev (id int PRIMARY KEY, person_id int NOT NULL,
                               started_at timestamp NOT NULL, ended_at timestamp NOT NULL);
CREATE INDEX ON regress_sweep_ev (person_id, started_at);
-- (the audit log holds at least one statement, whatever ran before: a backfill
-- below targets it)
CREATE TABLE regress_sweep_audited (id int PRIMARY KEY);
SELECT iact.enable_audit('regress_sweep_audited');
INSERT INTO regress_sweep_audited VALUES (1);
SELECT iact.disable_audit('regress_sweep_audited');
INSERT INTO iact.people (id, name, identifier) VALUES (7101, 'Sweep', 'SWEEP-7101');
INSERT INTO iact.cities (id, name, territorial_manager_id) VALUES (7101, 'Sweep City', 7101);
INSERT INTO iact.offices (id, city_id, name) VALUES (7101, 7101, 'Sweep Office');

-- call, then roll back: 'ok: <result>' or '<SQLSTATE>: <message>' (both cut at 150 characters)
CREATE FUNCTION regress_try(call text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    r text;
    st text;
    msg text;
BEGIN
    BEGIN
        IF call ~ '^CALL ' THEN
            EXECUTE call;
            r := 'done';
        ELSE
            -- (a new migration log id depends on the tests run before: not shown)
            EXECUTE format(CASE WHEN call ~ 'log_migration_start'
                                THEN 'SELECT count(*) || '' row(s)'' FROM (%s) q'
                                ELSE 'SELECT count(*) || '' row(s)'' || coalesce('': '' || left(string_agg(q::text, ''; ''), 100), '''') FROM (%s) q'
                           END, call)
               INTO r;
        END IF;
        RAISE EXCEPTION USING ERRCODE = 'RGOK0', MESSAGE = r;
    EXCEPTION WHEN OTHERS THEN
        GET STACKED DIAGNOSTICS st = RETURNED_SQLSTATE, msg = MESSAGE_TEXT;
        IF st = 'RGOK0' THEN
            RETURN 'ok: ' || left(msg, 150);
        END IF;
        RETURN st || ': ' || left(msg, 150);
    END;
END
$$;

-- the functions, a valid call of each, the type of each argument
-- how: select (in regress_try), call (a procedure, in regress_try), top (a
-- procedure that must run outside a transaction block: run by \gexec, one
-- transaction per call; what succeeds stays)
CREATE TABLE regress_sweep_fn (fn text, args text[], types text[], how text);
INSERT INTO regress_sweep_fn VALUES
  ('iact.log_migration_start', ARRAY[$$'sweep.1'$$, $$'sweep'$$, 'NULL'], '{text,text,text}', 'select'),
  ('iact.log_rollback_start', ARRAY[$$'sweep.none'$$], '{text}', 'select'),
  ('iact.log_migration_complete', ARRAY['999999999', '0'], '{bigint,bigint}', 'select'),
  ('iact.log_migration_failed', ARRAY['999999999', $$'x'$$], '{bigint,text}', 'select'),
  ('iact.run_migration', ARRAY[$$'sweep.1'$$, $$'sweep'$$, $$'SELECT 1'$$, 'NULL', 'NULL'],
   '{text,text,text,text,interval}', 'call'),
  ('iact.safe_rollback_migration', ARRAY[$$'sweep.none'$$, 'NULL'], '{text,interval}', 'select'),
  ('iact.backfill', ARRAY[$$'sweep_bf'$$, $$'regress_sweep_t'$$, $$'v = 1'$$, 'NULL', '10', $$'0'$$],
   '{text,regclass,text,text,integer,interval}', 'top'),
  ('iact.no_overlap_members', ARRAY[$$'sweep_g'$$, 'false'], '{text,boolean}', 'select'),
  ('iact.no_overlap_touch', ARRAY[$$'sweep_g'$$], '{text}', 'select'),
  ('iact.find_overlaps', ARRAY[$$'sweep_g'$$], '{text}', 'select'),
  ('iact.enforce_no_overlap', ARRAY[$$'sweep_g'$$, $$ARRAY['regress_sweep_ev']$$, $$'person_id'$$,
                                    $$'started_at'$$, $$'ended_at'$$, 'NULL'],
   '{text,regclass[],name,name,name,interval}', 'select'),
  ('iact.release_no_overlap', ARRAY[$$'sweep_g'$$, 'NULL'], '{text,regclass[]}', 'select'),
  ('iact.daily_pieces', ARRAY[$$'2024-01-01 22:00'$$, $$'2024-01-02 06:00'$$], '{timestamp,timestamp}', 'select'),
  ('iact.record_event', ARRAY[$$'iact.work_shifts'$$, $$'office_id'$$, $$'iact.offices'$$, '7101', '7101',
                              $$'2024-01-01 22:00'$$, $$'2024-01-02 06:00'$$],
   '{regclass,name,regclass,bigint,bigint,timestamp,timestamp}', 'select'),
  ('iact.record_work_shift', ARRAY['7101', '7101', $$'2024-01-01 22:00'$$, $$'2024-01-02 06:00'$$],
   '{bigint,bigint,timestamp,timestamp}', 'select'),
  ('iact.record_extra_hours', ARRAY['7101', '7101', $$'2024-01-01 22:00'$$, $$'2024-01-02 06:00'$$],
   '{bigint,bigint,timestamp,timestamp}', 'select'),
  ('iact.visible_offices', ARRAY['7101'], '{bigint}', 'select'),
  ('iact.visible_cities', ARRAY['7101'], '{bigint}', 'select'),
  ('iact.audit_tree', ARRAY[$$'regress_sweep_t'$$], '{regclass}', 'select'),
  ('iact.enable_audit', ARRAY[$$'regress_sweep_t'$$, $$'{}'$$, 'true'], '{regclass,text[],boolean}', 'select'),
  ('iact.disable_audit', ARRAY[$$'regress_sweep_t'$$, 'false'], '{regclass,boolean}', 'select'),
  ('iact.purge_audit_log', ARRAY[$$'1 day'$$, '10000', 'NULL'], '{interval,integer,integer}', 'select'),
  ('iact.purge_audit_log_batched', ARRAY[$$'1 day'$$, '10000'], '{interval,integer}', 'top'),
  ('iact.metrics_escape', ARRAY[$$'a'$$, 'true'], '{text,boolean}', 'select'),
  ('iact.metrics_value', ARRAY['1.5'], '{float8}', 'select'),
  ('iact.metrics_family', ARRAY[$$'m'$$, $$'gauge'$$, $$'h'$$], '{text,text,text}', 'select'),
  ('iact.metrics_sample', ARRAY[$$'m'$$, '1', $$'k'$$, $$'v'$$, $$'j'$$, $$'w'$$],
   '{text,float8,text,text,text,text}', 'select');

-- the hostile values of each type
CREATE TABLE regress_sweep_value (type text, value text);
INSERT INTO regress_sweep_value VALUES
  ('text', 'NULL'), ('text', $$''$$), ('text', $$'   '$$), ('text', $$repeat('x', 10000)$$),
  ('text', $$'"a.b''c'$$),
  ('name', 'NULL'), ('name', $$''$$), ('name', $$repeat('x', 10000)$$), ('name', $$'"a.b''c'$$),
  ('regclass', 'NULL'), ('regclass', $$'pg_catalog.pg_class'$$), ('regclass', $$'iact.audit_statement'$$),
  ('regclass', '0'),
  ('regclass[]', 'NULL'), ('regclass[]', $$'{}'$$), ('regclass[]', $$'{NULL}'$$),
  ('regclass[]', $$ARRAY['pg_catalog.pg_class']$$),
  ('bigint', 'NULL'), ('bigint', '0'), ('bigint', '-1'), ('bigint', '9223372036854775807'),
  ('bigint', '-9223372036854775808'),
  ('integer', 'NULL'), ('integer', '0'), ('integer', '-1'), ('integer', '2147483647'),
  ('timestamp', 'NULL'), ('timestamp', $$'infinity'$$), ('timestamp', $$'-infinity'$$),
  ('timestamp', $$'294276-12-31 23:59:59'$$), ('timestamp', $$'4713-01-01 00:00 BC'$$),
  ('interval', 'NULL'), ('interval', $$'-1 day'$$), ('interval', $$'0'$$), ('interval', $$'178000000 years'$$),
  ('boolean', 'NULL'),
  ('float8', 'NULL'), ('float8', $$'NaN'$$), ('float8', $$'-Infinity'$$), ('float8', '-0.0'), ('float8', '1e308'),
  ('float8', '-1e-300'),
  ('text[]', 'NULL'), ('text[]', $$'{}'$$), ('text[]', $$'{NULL}'$$), ('text[]', $$ARRAY[repeat('x', 10000)]$$),
  ('text[]', $$'{"\"a.b''c"}'$$);

-- every function, every argument, every hostile value of its type
CREATE VIEW regress_sweep_calls AS
SELECT f.fn, f.how, i, v.value, c.call
  FROM regress_sweep_fn f
 CROSS JOIN LATERAL generate_subscripts(f.args, 1) AS i
  JOIN regress_sweep_value v ON v.type = f.types[i]
 CROSS JOIN LATERAL (
       SELECT format('%s%s(%s)', CASE WHEN f.how = 'select' THEN 'SELECT * FROM ' ELSE 'CALL ' END, f.fn,
                     array_to_string(array(SELECT format('(%s)::%s', CASE WHEN j = i THEN v.value ELSE f.args[j] END,
                                                         f.types[j])
                                             FROM generate_subscripts(f.args, 1) j ORDER BY j), ', ')) AS call) c;
-- (purge_audit_log('0') is valid and counts the earlier tests' audit entries: left out)
SELECT call AS hostile_call, regress_try(call) AS outcome
  FROM regress_sweep_calls
 WHERE how <> 'top' AND NOT (fn = 'iact.purge_audit_log' AND value = $$'0'$$)
 ORDER BY fn, i, value COLLATE "C";
-- the procedures that refuse to run inside a transaction block, at top level
-- (not purge_audit_log_batched('0'): valid, it would empty the audit log of the earlier tests)
SELECT call FROM regress_sweep_calls
 WHERE how = 'top' AND NOT (fn = 'iact.purge_audit_log_batched' AND value = $$'0'$$)
 ORDER BY fn, i, value COLLATE "C" \gexec

-- the functions without arguments: called plainly, or (trigger functions) directly
CREATE TABLE regress_sweep_noarg (fn text, is_trigger boolean);
INSERT INTO regress_sweep_noarg VALUES
  ('iact.session_person_id', false), ('iact.health', false), ('iact.metrics', false),
  ('iact.check_overlaps_now', false),
  ('iact.migration_log_guard', true), ('iact.refuse_update', true), ('iact.no_overlap_trigger', true),
  ('iact.audit_trigger', true), ('iact.audit_log_guard', true), ('iact.event_deletion_trail', true),
  ('iact.event_deletions_guard', true),
  ('iact.health_settings', false), ('iact.health_report', false),
  ('iact.health_check_connections', false), ('iact.health_check_database_size', false),
  ('iact.health_check_server_role', false), ('iact.health_check_sync_last_success', false),
  ('iact.health_check_sync_failures', false), ('iact.health_check_sync_rejects', false),
  ('iact.health_check_migrations_running', false), ('iact.health_check_migrations_failed', false),
  ('iact.health_check_overlaps', false), ('iact.health_check_overlap_check_age', false),
  ('iact.health_check_maintenance_failures', false), ('iact.health_check_audit_log_growth', false),
  ('iact.health_check_audit_uncovered', false),
  ('iact.metrics_health', false), ('iact.metrics_server', false), ('iact.metrics_audit', false),
  ('iact.metrics_migrations', false), ('iact.metrics_maintenance', false), ('iact.metrics_sync', false);
SELECT regress_try('SELECT * FROM iact.session_person_id()') AS session_person_id;
SELECT regress_try('SELECT * FROM iact.health()') ~ '^ok: ' AS health_ok;
SELECT regress_try('SELECT iact.metrics()') ~ '^ok: ' AS metrics_ok;
SELECT regress_try('SELECT iact.check_overlaps_now()') ~ '^ok: ' AS check_overlaps_now_ok;
-- the functions health() and metrics() are made of
SELECT fn AS health_function, regress_try(format('SELECT * FROM %s()', fn)) ~ '^ok: [1-9][0-9]* row' AS answers
  FROM regress_sweep_noarg WHERE fn ~ '^iact\.(health|metrics)_' ORDER BY 1;
-- trigger functions called directly
SELECT fn AS trigger_function, regress_try(format('SELECT %s()', fn)) AS outcome
  FROM regress_sweep_noarg WHERE is_trigger ORDER BY 1;
-- every function of the extension, in whatever schema, is in the sweep with
-- its signature (the sync's have their own): a new function, a new overload
-- or a new argument shows here, and an entry of the sweep that no longer
-- exists fails its cast to regprocedure
SELECT p.oid::regprocedure AS not_swept
  FROM pg_depend d JOIN pg_proc p ON p.oid = d.objid
 WHERE d.classid = 'pg_proc'::regclass AND d.deptype = 'e'
   AND d.refobjid = (SELECT x.oid FROM pg_extension x WHERE x.extname = 'iact')
   AND p.proname !~ '^(_?sync_|request_sync|mariadb_fdw_validator)'
   AND p.oid NOT IN (SELECT format('%s(%s)', fn, array_to_string(types, ','))::regprocedure::oid
                       FROM regress_sweep_fn
                     UNION ALL
                     SELECT (fn || '()')::regprocedure::oid FROM regress_sweep_noarg)
 ORDER BY 1;

-- the server is still up, and nothing was left behind
SELECT 1 AS still_up;
SELECT count(*) AS sweep_groups FROM iact.no_overlap_members() WHERE group_name LIKE 'sweep%';
SELECT count(*) AS sweep_events FROM iact.work_shifts WHERE person_id = 7101;

RESET statement_timeout;
DROP VIEW regress_sweep_calls;
DROP TABLE regress_sweep_t, regress_sweep_ev, regress_sweep_fn, regress_sweep_noarg, regress_sweep_value,
    regress_sweep_audited;
DELETE FROM iact.backfill_runs WHERE name IN ('sweep_bf', '"a.b''c', repeat('x', 10000));
DROP FUNCTION regress_try(text);
DELETE FROM iact.offices WHERE id = 7101;
DELETE FROM iact.cities WHERE id = 7101;
DELETE FROM iact.people WHERE id = 7101;
