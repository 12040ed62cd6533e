-- Migration log: log_migration_start / complete / failed, run_migration,
-- safe_rollback_migration, the status view, append-only history.

-- stable output: hide timing columns, show what a DBA reads
CREATE VIEW log AS
  SELECT id, version, action, status, rows_affected, error_message, error_sqlstate,
         runner, rollback_of, rollback_available,
         completed_at IS NOT NULL AS completed, duration_ms >= 0 AS timed,
         installed_by, backend_pid = pg_backend_pid() AS this_backend
    FROM iact.migration_log ORDER BY id;

------------------------------------------------------------------------------
-- external runners: log_migration_start / complete / failed
------------------------------------------------------------------------------
SELECT iact.log_migration_start('2026.01', 'create calls table') AS id1 \gset
SELECT version, status, completed_at IS NULL AS open FROM iact.migration_log WHERE id = :id1;
SELECT iact.log_migration_complete(:id1, 42);
SELECT * FROM log;

SELECT iact.log_migration_start('2026.02', 'broken one') AS id2 \gset
SELECT iact.log_migration_failed(:id2, 'column "x" does not exist');
SELECT * FROM log WHERE id = :id2;

-- errors
SELECT iact.log_migration_start(NULL, 'x');
SELECT iact.log_migration_start('', 'x');
SELECT iact.log_migration_start('   ', 'x');
SELECT iact.log_migration_start('v', NULL);
SELECT iact.log_migration_start('2026.01', 'again');          -- already applied
SELECT iact.log_migration_start('2026.03', 'long one') AS id3 \gset
\set VERBOSITY terse
SELECT iact.log_migration_start('2026.03', 'same version twice');   -- running (DETAIL names the pid)
\set VERBOSITY default
SELECT iact.log_migration_complete(NULL);
SELECT iact.log_migration_complete(999999);                   -- unknown entry
SELECT iact.log_migration_complete(:id1);                     -- already SUCCESS
SELECT iact.log_migration_complete(:id3, -1);                 -- negative rows
SELECT iact.log_migration_failed(:id3, NULL);
SELECT iact.log_migration_failed(:id3, '');
SELECT iact.log_migration_failed(:id2, 'twice');              -- already FAILED
SELECT iact.log_migration_complete(:id3);                     -- rows unknown: NULL
SELECT version, status, rows_affected FROM iact.migration_log WHERE id = :id3;

------------------------------------------------------------------------------
-- run_migration
------------------------------------------------------------------------------
CALL iact.run_migration('2026.10', 'agents table',
  $$CREATE TABLE agents (id int PRIMARY KEY, name text NOT NULL);
    INSERT INTO agents VALUES (1, 'Ana'), (2, 'Bo'), (3, 'Cy');
    UPDATE agents SET name = upper(name) WHERE id < 3;$$,
  $$DROP TABLE agents;$$);
SELECT * FROM agents ORDER BY id;
SELECT version, status, rows_affected, runner, rollback_available,
       checksum = encode(sha256(convert_to(up_sql, 'UTF8')), 'hex') AS checksum_is_sha256
  FROM iact.migration_log WHERE version = '2026.10';

-- a failing migration: its changes are rolled back, FAILED survives, the original error is raised
CALL iact.run_migration('2026.11', 'queues table, with a typo',
  $$CREATE TABLE queues (id int PRIMARY KEY);
    INSERT INTO queues VALUES (1);
    ALTER TABLE queues ADD COLUMN name txt;$$);
SELECT to_regclass('queues') AS queues_table;
SELECT version, status, error_message, error_sqlstate, completed, timed FROM log WHERE version = '2026.11';
-- after a failure the version can be run again, fixed
CALL iact.run_migration('2026.11', 'queues table',
  $$CREATE TABLE queues (id int PRIMARY KEY, name text);$$, $$DROP TABLE queues$$);
SELECT version, status FROM log WHERE version = '2026.11';

-- re-applying is refused; different SQL under an applied version is a checksum mismatch
CALL iact.run_migration('2026.10', 'agents table',
  $$CREATE TABLE agents (id int PRIMARY KEY, name text NOT NULL);
    INSERT INTO agents VALUES (1, 'Ana'), (2, 'Bo'), (3, 'Cy');
    UPDATE agents SET name = upper(name) WHERE id < 3;$$);
CALL iact.run_migration('2026.10', 'agents table', $$CREATE TABLE agents2 (id int)$$);
-- a version an external runner holds RUNNING
SELECT iact.log_migration_start('2026.12', 'held elsewhere') AS id12 \gset
\set VERBOSITY terse
CALL iact.run_migration('2026.12', 'x', 'SELECT 1');
\set VERBOSITY default
SELECT iact.log_migration_failed(:id12, 'gave up');

-- argument errors: nothing is logged for them
CALL iact.run_migration(NULL, 'x', 'SELECT 1');
CALL iact.run_migration('2026.13', NULL, 'SELECT 1');
CALL iact.run_migration('2026.13', 'x', NULL);
CALL iact.run_migration('2026.13', 'x', '   ');
CALL iact.run_migration('2026.13', 'x', '-- only a comment');
CALL iact.run_migration('2026.13', 'x', 'SELECT 1', '');
CALL iact.run_migration('2026.13', 'x', 'SELECT 1', NULL, '-1 second');
CALL iact.run_migration('2026.13', 'x', 'SELECT 1', NULL, '30 days');
CALL iact.run_migration('2026.13', 'x', 'SELECT 1', 'SELEC 1');   -- broken down_sql found at apply time
CALL iact.run_migration('2026.13', 'x', $$CREATE TABLE t13 (a int); COMMIT;$$);  -- transaction control
CALL iact.run_migration('2026.13', 'x', 'SELECT 1', 'ROLLBACK');
SELECT count(*) AS entries_for_2026_13, to_regclass('t13') AS t13
  FROM iact.migration_log WHERE version = '2026.13';
-- an error while running is recorded as FAILED
CALL iact.run_migration('2026.14', 'fails at run time', $$CREATE TABLE t14 (a int); SELECT 1/0;$$);
SELECT version, status, error_message, error_sqlstate FROM log WHERE version = '2026.14';
SELECT to_regclass('t14') AS t14;

-- the original error reaches the caller whole: message, detail and hint
CALL iact.run_migration('2026.16', 'raises with detail and hint',
  $m$DO $x$ BEGIN RAISE EXCEPTION 'custom failure %', repeat('x', 3000)
     USING DETAIL = 'the detail', HINT = 'the hint', ERRCODE = 'P0042'; END $x$$m$);
SELECT version, status, left(error_message, 20) AS error_message, length(error_message), error_sqlstate
  FROM log WHERE version = '2026.16';
-- a deferred constraint fails inside the migration, so it is recorded FAILED (not left RUNNING)
CALL iact.run_migration('2026.17', 'deferred foreign key',
  $$CREATE TABLE dp (id int PRIMARY KEY);
    CREATE TABLE dc (pid int REFERENCES dp DEFERRABLE INITIALLY DEFERRED);
    INSERT INTO dc VALUES (1);$$);
SELECT version, status, error_sqlstate, to_regclass('dc') AS dc FROM log WHERE version = '2026.17';

-- an entry of run_migration is not closed by the external API while a run_migration is alive;
-- an abandoned one (crafted here: its session is gone, the lock is free) can be marked failed
INSERT INTO iact.migration_log (version, description, status, runner, installed_by, session_role)
  VALUES ('2026.18', 'left by a dead session', 'RUNNING', 'run_migration', 'postgres', 'postgres')
  RETURNING id AS id18 \gset
SELECT iact.log_migration_complete(:id18);
SELECT iact.log_migration_failed(:id18, 'its session died');
SELECT version, status, error_message FROM log WHERE version = '2026.18';

-- inside an explicit transaction block the call is atomic with the caller
BEGIN;
CALL iact.run_migration('2026.15', 'in a transaction', $$CREATE TABLE t15 (a int)$$, $$DROP TABLE t15$$);
SELECT version, status FROM iact.migration_log WHERE version = '2026.15';
ROLLBACK;
SELECT count(*) AS entries_for_2026_15, to_regclass('t15') AS t15
  FROM iact.migration_log WHERE version = '2026.15';
BEGIN;
CALL iact.run_migration('2026.15', 'in a transaction, failing', $$CREATE TABLE t15 (a int); SELECT 1/0$$);
ROLLBACK;
-- a failure inside a transaction block leaves no entry: it went with the caller's transaction
SELECT count(*) AS entries_for_2026_15 FROM iact.migration_log WHERE version = '2026.15';

------------------------------------------------------------------------------
-- safe_rollback_migration
------------------------------------------------------------------------------
CALL iact.run_migration('2026.20', 'skills column',
  $$ALTER TABLE agents ADD COLUMN skills text[] NOT NULL DEFAULT '{}'$$,
  $$ALTER TABLE agents DROP COLUMN skills$$);
CALL iact.run_migration('2026.21', 'agents view, no rollback',
  $$CREATE VIEW agent_names AS SELECT name FROM agents$$);
-- refusals
SELECT iact.safe_rollback_migration(NULL);
SELECT iact.safe_rollback_migration('1999.99');               -- unknown
SELECT iact.safe_rollback_migration('2026.02');               -- never applied (only FAILED)
SELECT iact.safe_rollback_migration('2026.21');               -- no down_sql
SELECT iact.safe_rollback_migration('2026.10');               -- later ones still applied
SELECT iact.safe_rollback_migration('2026.11');
-- newest first: 2026.22 is the newest applied, so it can go
CALL iact.run_migration('2026.22', 'drop agents view', $$DROP VIEW agent_names$$,
  $$CREATE VIEW agent_names AS SELECT name FROM agents$$);
SELECT iact.safe_rollback_migration('2026.22');
SELECT to_regclass('agent_names') AS view_back;
SELECT iact.safe_rollback_migration('2026.22');               -- already rolled back
SELECT iact.safe_rollback_migration('2026.20');               -- 2026.21 (no rollback) still blocks it
SELECT version, action, status, rollback_of = (SELECT id FROM iact.migration_log
         WHERE version = '2026.22' AND action = 'apply') AS undoes_the_apply, rows_affected
  FROM log WHERE version = '2026.22';

-- a failing down SQL: returns false, schema exactly as before, ROLLBACK_FAILED recorded
CALL iact.run_migration('2026.30', 'calls table',
  $$CREATE TABLE calls (id int PRIMARY KEY, agent int REFERENCES agents(id));
    INSERT INTO calls VALUES (10, 1), (11, 2);$$,
  $$DELETE FROM calls; DROP TABLE calls; DROP TABLE no_such_table;$$);
CALL iact.run_migration('2026.31', 'calls.note column',
  $$ALTER TABLE calls ADD COLUMN note text; UPDATE calls SET note = 'n' || id;$$,
  $$ALTER TABLE calls DROP COLUMN note$$);
SELECT iact.safe_rollback_migration('2026.31');
SELECT iact.safe_rollback_migration('2026.30');
SELECT count(*) AS calls_rows_still_there FROM calls;
SELECT attname FROM pg_attribute WHERE attrelid = 'calls'::regclass AND attnum > 0 AND NOT attisdropped ORDER BY attnum;
SELECT version, action, status, error_message, error_sqlstate, rows_affected
  FROM log WHERE version IN ('2026.30', '2026.31');
SELECT version, applied, last_action, last_status FROM iact.migration_status WHERE version IN ('2026.30', '2026.31');

-- re-applying after a rollback is allowed, also with changed SQL
CALL iact.run_migration('2026.22', 'drop agents view, v2', $$DROP VIEW agent_names CASCADE$$);
SELECT version, applied, last_action, last_status, description FROM iact.migration_status ORDER BY version;

------------------------------------------------------------------------------
-- the history is append-only, even for the table's owner
------------------------------------------------------------------------------
DELETE FROM iact.migration_log WHERE version = '2026.02';
UPDATE iact.migration_log SET status = 'SUCCESS' WHERE version = '2026.02';
TRUNCATE iact.migration_log;
SELECT count(*) > 0 AS history_intact FROM iact.migration_log;

------------------------------------------------------------------------------
-- privileges: nothing for PUBLIC; a migrator role gets EXECUTE, not the table
------------------------------------------------------------------------------
CREATE ROLE regress_migrator;
CREATE ROLE regress_nobody;
SELECT p.oid::regprocedure AS routine, has_function_privilege('regress_nobody', p.oid, 'EXECUTE') AS public_can_execute
  FROM pg_proc p WHERE p.pronamespace = 'iact'::regnamespace
   AND p.proname IN ('log_migration_start', 'log_migration_complete', 'log_migration_failed',
                     'run_migration', 'safe_rollback_migration')
 ORDER BY 1::text;
GRANT USAGE ON SCHEMA iact TO regress_migrator;
GRANT EXECUTE ON PROCEDURE iact.run_migration(text, text, text, text, interval) TO regress_migrator;
GRANT EXECUTE ON FUNCTION iact.safe_rollback_migration(text, interval) TO regress_migrator;
GRANT SELECT ON iact.migration_status TO regress_migrator;
GRANT CREATE ON SCHEMA public TO regress_migrator;
SET ROLE regress_nobody;
CALL iact.run_migration('2026.40', 'x', 'SELECT 1');
SET ROLE regress_migrator;
-- the migration's SQL runs with the migrator's own rights: this one is refused and recorded
CALL iact.run_migration('2026.40', 'touch agents', $$DELETE FROM agents$$);
CALL iact.run_migration('2026.41', 'own table', $$CREATE TABLE public.mine (a int)$$, $$DROP TABLE public.mine$$);
SELECT version, applied FROM iact.migration_status WHERE version LIKE '2026.4%' ORDER BY version;
SELECT * FROM iact.migration_log;                              -- no direct access to the table
SELECT iact.safe_rollback_migration('2026.41');
RESET ROLE;
SELECT version, status, installed_by, error_sqlstate FROM log WHERE version LIKE '2026.4%';
DROP OWNED BY regress_migrator, regress_nobody;
DROP ROLE regress_migrator, regress_nobody;
DROP TABLE calls, agents, queues;
DROP VIEW log;
