-- External runners: rollback SQL registered with log_migration_start and
-- rollbacks recorded with log_rollback_start; the checksum of down_sql;
-- who may roll back what (down_sql runs as the role that applied it).
SET client_min_messages = warning;

CREATE VIEW ext_log AS
  SELECT version, action, status, runner, rows_affected, error_message,
         rollback_of IS NOT NULL AS is_rollback, down_sql IS NOT NULL AS has_down_sql,
         down_checksum = encode(sha256(convert_to(down_sql, 'UTF8')), 'hex') AS down_checksum_is_sha256,
         installed_by
    FROM iact.migration_log WHERE version LIKE 'ext.%' ORDER BY id;
CREATE TABLE ext_whoami (step text, who name);
GRANT INSERT ON ext_whoami TO PUBLIC;

------------------------------------------------------------------------------
-- an external apply with rollback SQL: safe_rollback_migration can undo it
------------------------------------------------------------------------------
SELECT iact.log_migration_start('ext.1', 'prompts table', 'DROP TABLE ext_prompts') AS a1 \gset
CREATE TABLE ext_prompts (id int);
SELECT iact.log_migration_complete(:a1);
SELECT version, applied, rollback_available, down_checksum IS NOT NULL AS has_down_checksum,
       checksum IS NULL AS no_up_checksum, last_status
  FROM iact.migration_status WHERE version = 'ext.1';
SELECT iact.safe_rollback_migration('ext.1');
SELECT to_regclass('ext_prompts') AS prompts_table;
SELECT * FROM ext_log;

-- the two-argument call of release 1.0 still works, through the 1.1 function
-- and through the C entry as a 1.0 database declares it
SELECT iact.log_migration_start('ext.2', 'no rollback sql') AS a2 \gset
SELECT iact.log_migration_complete(:a2, 0);
CREATE FUNCTION ext_start_1_0(version text, description text) RETURNS bigint
  LANGUAGE c AS '$libdir/iact', 'iact_log_migration_start';
SELECT ext_start_1_0('ext.2b', 'as a 1.0 database calls it') AS a2b \gset
SELECT iact.log_migration_complete(:a2b);
DROP FUNCTION ext_start_1_0(text, text);
SELECT version, status, has_down_sql FROM ext_log WHERE version LIKE 'ext.2%';

-- unusable rollback SQL is refused before anything is logged
SELECT iact.log_migration_start('ext.3', 'x', '');
SELECT iact.log_migration_start('ext.3', 'x', '-- nothing');
SELECT iact.log_migration_start('ext.3', 'x', 'SELEC 1');
SELECT iact.log_migration_start('ext.3', 'x', 'DROP TABLE x; COMMIT');
SELECT count(*) AS entries_for_ext_3 FROM iact.migration_log WHERE version = 'ext.3';

------------------------------------------------------------------------------
-- an external rollback: start, then complete or failed
------------------------------------------------------------------------------
SELECT iact.log_rollback_start('ext.2b') AS r1 \gset
-- while it runs the version is still applied, and nobody else may touch it
SELECT version, applied, last_action, last_status FROM iact.migration_status WHERE version = 'ext.2b';
\set VERBOSITY terse
SELECT iact.safe_rollback_migration('ext.2b');
SELECT iact.log_rollback_start('ext.2b');
SELECT iact.log_migration_start('ext.2b', 'again');
\set VERBOSITY default
SELECT iact.log_migration_complete(:r1, 3);
SELECT version, applied, applied_id, last_action, last_status FROM iact.migration_status WHERE version = 'ext.2b';
SELECT version, action, status, runner, rows_affected, is_rollback FROM ext_log WHERE version = 'ext.2b';
SELECT iact.log_migration_complete(:r1);                        -- history does not change
-- the version can be applied again, and a failed rollback leaves it applied
SELECT iact.log_migration_start('ext.2b', 'again') AS a2c \gset
SELECT iact.log_migration_complete(:a2c);
SELECT iact.log_rollback_start('ext.2b') AS r2 \gset
SELECT iact.log_migration_failed(:r2, 'lock timeout on calls');
SELECT version, applied, applied_id = :a2c AS same_apply, last_action, last_status
  FROM iact.migration_status WHERE version = 'ext.2b';
SELECT version, action, status, error_message FROM ext_log WHERE version = 'ext.2b';

-- refusals of log_rollback_start (nothing is logged)
SELECT iact.log_rollback_start(NULL);
SELECT iact.log_rollback_start(' ');
SELECT iact.log_rollback_start('ext.none');                      -- unknown
SELECT iact.log_rollback_start('ext.1');                         -- not applied (rolled back)
SELECT iact.log_rollback_start('ext.2');                         -- later versions still applied
SELECT count(*) AS entries FROM iact.migration_log WHERE version LIKE 'ext.%';

------------------------------------------------------------------------------
-- the checksum of down_sql is checked before it runs
------------------------------------------------------------------------------
CALL iact.run_migration('ext.4', 'a table', 'CREATE TABLE ext_t4 (a int)', 'DROP TABLE ext_t4');
SELECT version, down_checksum = encode(sha256(convert_to('DROP TABLE ext_t4', 'UTF8')), 'hex') AS down_checksum_ok
  FROM iact.migration_status WHERE version = 'ext.4';
-- a superuser bypasses the guard and edits the stored rollback SQL
ALTER TABLE iact.migration_log DISABLE TRIGGER migration_log_guard;
UPDATE iact.migration_log SET down_sql = 'DROP TABLE ext_t4; CREATE ROLE regress_ext_evil SUPERUSER'
 WHERE version = 'ext.4' AND action = 'apply';
ALTER TABLE iact.migration_log ENABLE TRIGGER migration_log_guard;
SELECT iact.safe_rollback_migration('ext.4');
SELECT to_regclass('ext_t4') AS t4_kept, count(*) AS evil_roles FROM pg_roles WHERE rolname = 'regress_ext_evil';
SELECT version, applied, last_status FROM iact.migration_status WHERE version = 'ext.4';
-- put back as it was applied, it runs
ALTER TABLE iact.migration_log DISABLE TRIGGER migration_log_guard;
UPDATE iact.migration_log SET down_sql = 'DROP TABLE ext_t4' WHERE version = 'ext.4' AND action = 'apply';
ALTER TABLE iact.migration_log ENABLE TRIGGER migration_log_guard;
SELECT iact.safe_rollback_migration('ext.4');
SELECT to_regclass('ext_t4') AS t4_dropped;

------------------------------------------------------------------------------
-- who may roll back what: down_sql runs as the role that applied the migration,
-- started by that role, a member of it, or a superuser; nobody else
------------------------------------------------------------------------------
CREATE ROLE regress_ext_a;
CREATE ROLE regress_ext_b;
CREATE ROLE regress_ext_member IN ROLE regress_ext_a;
GRANT USAGE ON SCHEMA iact TO regress_ext_a, regress_ext_b, regress_ext_member;
GRANT CREATE ON SCHEMA public TO regress_ext_a, regress_ext_b;
GRANT EXECUTE ON PROCEDURE iact.run_migration(text, text, text, text, interval)
  TO regress_ext_a, regress_ext_b, regress_ext_member;
GRANT EXECUTE ON FUNCTION iact.safe_rollback_migration(text, interval),
                          iact.log_migration_start(text, text, text),
                          iact.log_rollback_start(text),
                          iact.log_migration_complete(bigint, bigint),
                          iact.log_migration_failed(bigint, text)
  TO regress_ext_a, regress_ext_b, regress_ext_member;

SET ROLE regress_ext_a;
CALL iact.run_migration('ext.5', 'a''s table', 'CREATE TABLE public.ext_a5 (x int)',
  $$INSERT INTO ext_whoami VALUES ('ext.5', current_user); DROP TABLE public.ext_a5$$);
SET ROLE regress_ext_b;
SELECT iact.safe_rollback_migration('ext.5');                    -- not b's: refused
SELECT iact.log_migration_start('ext.x', 'x', 'SELECT 1') AS ax \gset
RESET ROLE;
-- a superuser may start it, and it runs as regress_ext_a, not as the superuser
SELECT iact.safe_rollback_migration('ext.5');
SELECT * FROM ext_whoami ORDER BY step;
-- a member of the applying role may roll back, and it still runs as regress_ext_a
SET ROLE regress_ext_b;
SELECT iact.log_migration_failed(:ax, 'changed my mind');
SET ROLE regress_ext_a;
CALL iact.run_migration('ext.6', 'another', 'CREATE TABLE public.ext_a6 (x int)',
  $$INSERT INTO ext_whoami VALUES ('ext.6', current_user); DROP TABLE public.ext_a6$$);
SET ROLE regress_ext_member;
SELECT iact.safe_rollback_migration('ext.6');
RESET ROLE;
SELECT * FROM ext_whoami ORDER BY step;
-- rollback SQL registered by a less privileged runner never gains a superuser's rights
SET ROLE regress_ext_b;
SELECT iact.log_migration_start('ext.7', 'harmless-looking', 'ALTER ROLE regress_ext_b SUPERUSER') AS a7 \gset
SELECT iact.log_migration_complete(:a7);
RESET ROLE;
SELECT iact.safe_rollback_migration('ext.7');
SELECT rolsuper AS b_became_superuser FROM pg_roles WHERE rolname = 'regress_ext_b';
SELECT version, action, status, error_message, installed_by FROM ext_log WHERE version IN ('ext.5', 'ext.6', 'ext.7');

-- nothing new is executable by PUBLIC
SELECT p.oid::regprocedure AS routine, has_function_privilege('public', p.oid, 'EXECUTE') AS public_can_execute
  FROM pg_proc p WHERE p.pronamespace = 'iact'::regnamespace
   AND p.proname IN ('log_migration_start', 'log_rollback_start')
 ORDER BY 1::text;

-- clean up the roles (their history stays in the append-only log)
SELECT iact.log_rollback_start('ext.7') AS r7 \gset
SELECT iact.log_migration_complete(:r7);
DROP OWNED BY regress_ext_a, regress_ext_b, regress_ext_member;
DROP ROLE regress_ext_a, regress_ext_b, regress_ext_member;
DROP VIEW ext_log;
DROP TABLE ext_whoami;

------------------------------------------------------------------------------
-- search_path: a backfill's own comparisons and casts cannot be taken over by
-- operators planted in a schema that comes before pg_catalog
------------------------------------------------------------------------------
CREATE TABLE trojan_ran (op text, who name);
CREATE FUNCTION public.trojan_cmp(a int, b int, op text) RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO trojan_ran VALUES (op, current_user);
  RETURN CASE op WHEN '=' THEN a OPERATOR(pg_catalog.=) b WHEN '>' THEN a OPERATOR(pg_catalog.>) b
                 ELSE a OPERATOR(pg_catalog.<=) b END;
END $$;
CREATE FUNCTION public.trojan_eq(int, int) RETURNS boolean LANGUAGE sql AS $$ SELECT public.trojan_cmp($1, $2, '=') $$;
CREATE FUNCTION public.trojan_gt(int, int) RETURNS boolean LANGUAGE sql AS $$ SELECT public.trojan_cmp($1, $2, '>') $$;
CREATE FUNCTION public.trojan_le(int, int) RETURNS boolean LANGUAGE sql AS $$ SELECT public.trojan_cmp($1, $2, '<=') $$;
CREATE OPERATOR public.= (LEFTARG = int, RIGHTARG = int, FUNCTION = public.trojan_eq);
CREATE OPERATOR public.> (LEFTARG = int, RIGHTARG = int, FUNCTION = public.trojan_gt);
CREATE OPERATOR public.<= (LEFTARG = int, RIGHTARG = int, FUNCTION = public.trojan_le);
CREATE TABLE sp_t (id int PRIMARY KEY, n int NOT NULL DEFAULT 0);
INSERT INTO sp_t (id) SELECT g FROM generate_series(1, 25) g;
SET search_path = public, pg_catalog;
SELECT 2 = 2 AS planted_operator_resolves_first;      -- the trap works for unqualified SQL
SELECT count(*) AS trojan_calls FROM trojan_ran;
TRUNCATE trojan_ran;
CALL iact.backfill('sp_bf', 'sp_t', 'n = n + 1', NULL, 10);
CALL iact.run_migration('ext.sp', 'with a hostile search_path', 'SELECT 1', 'SELECT 2');
SELECT iact.safe_rollback_migration('ext.sp');
RESET search_path;
SELECT count(*) AS trojan_calls FROM trojan_ran;
SELECT sum(n) AS rows_updated_once FROM sp_t;
DROP OPERATOR public.= (int, int);
DROP OPERATOR public.> (int, int);
DROP OPERATOR public.<= (int, int);
DROP FUNCTION public.trojan_eq(int, int), public.trojan_gt(int, int), public.trojan_le(int, int),
              public.trojan_cmp(int, int, text);
DROP TABLE trojan_ran, sp_t;

------------------------------------------------------------------------------
-- down_sql stays confined to the role that applied it: it cannot RESET ROLE
-- back to a superuser that did SET ROLE to that role, leave settings, temp
-- tables or WITH HOLD cursors in the caller's session, nor have deferred
-- triggers fire later as the caller
------------------------------------------------------------------------------
CREATE ROLE regress_conf_a;
GRANT USAGE ON SCHEMA iact TO regress_conf_a;
GRANT CREATE ON SCHEMA public TO regress_conf_a;
GRANT EXECUTE ON PROCEDURE iact.run_migration(text, text, text, text, interval) TO regress_conf_a;
GRANT EXECUTE ON FUNCTION iact.safe_rollback_migration(text, interval) TO regress_conf_a;
CREATE TABLE conf_seen (what text, who name);
GRANT INSERT ON conf_seen TO PUBLIC;
CREATE SCHEMA regress_conf_s AUTHORIZATION regress_conf_a;
SET ROLE regress_conf_a;
CREATE FUNCTION regress_conf_s.seen(what text) RETURNS int LANGUAGE sql
  AS $$ INSERT INTO public.conf_seen VALUES (what, current_user) RETURNING 1 $$;
CREATE TABLE regress_conf_s.t (x int);
CREATE FUNCTION regress_conf_s.trg() RETURNS trigger LANGUAGE plpgsql
  AS $$ BEGIN PERFORM regress_conf_s.seen('deferred trigger'); RETURN NULL; END $$;
CREATE CONSTRAINT TRIGGER t_deferred AFTER INSERT ON regress_conf_s.t
  DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION regress_conf_s.trg();
CALL iact.run_migration('conf.1', 'escape by RESET ROLE', 'SELECT 1',
  'RESET ROLE; ALTER ROLE regress_conf_a SUPERUSER');
CALL iact.run_migration('conf.2', 'settings outlive it', 'SELECT 1',
  'SET search_path = regress_conf_s, public; SET work_mem = ''7MB''');
CALL iact.run_migration('conf.3', 'deferred trigger', 'SELECT 1',
  'INSERT INTO regress_conf_s.t VALUES (1)');
CALL iact.run_migration('conf.4', 'temp table', 'SELECT 1',
  'CREATE TEMP TABLE conf_seen (what text, who name)');
CALL iact.run_migration('conf.5', 'WITH HOLD cursor', 'SELECT 1',
  $$DECLARE c CURSOR WITH HOLD FOR SELECT regress_conf_s.seen('held cursor')$$);
CALL iact.run_migration('conf.6', 'deferred again', 'SELECT 1',
  'SET CONSTRAINTS ALL DEFERRED; INSERT INTO regress_conf_s.t VALUES (2)');
RESET ROLE;
-- refused ones are recorded ROLLBACK_FAILED; clear them as rolled back by hand
CREATE FUNCTION conf_clear(v text) RETURNS void LANGUAGE sql
  AS $$ SELECT iact.log_migration_complete(iact.log_rollback_start(v)) $$;
SET ROLE regress_conf_a;
SELECT iact.safe_rollback_migration('conf.6');     -- deferring its own checks
RESET ROLE;
SELECT conf_clear('conf.6');
SET ROLE regress_conf_a;
SELECT iact.safe_rollback_migration('conf.5');     -- a WITH HOLD cursor
RESET ROLE;
SELECT conf_clear('conf.5');
SET ROLE regress_conf_a;
SELECT iact.safe_rollback_migration('conf.4');     -- a temp table in the caller's session
RESET ROLE;
SELECT conf_clear('conf.4');
-- the deferred trigger fires inside down_sql, as the applier, not at the caller's commit
BEGIN;
SELECT iact.safe_rollback_migration('conf.3');
COMMIT;
-- what down_sql SETs does not outlive it
BEGIN;
SELECT iact.safe_rollback_migration('conf.2');
SHOW search_path;
SHOW work_mem;
COMMIT;
SHOW search_path;
SHOW work_mem;
-- a superuser acting as the applier: RESET ROLE inside down_sql is refused
SET ROLE regress_conf_a;
SELECT iact.safe_rollback_migration('conf.1');
SELECT current_user AS still_acting_as;
RESET ROLE;
SELECT conf_clear('conf.1');
SELECT rolsuper AS applier_became_superuser FROM pg_roles WHERE rolname = 'regress_conf_a';
SELECT what, who FROM conf_seen ORDER BY what;
SELECT count(*) AS temp_tables_left FROM pg_class WHERE relnamespace = pg_my_temp_schema();
SELECT version, status, error_message FROM iact.migration_log
 WHERE version LIKE 'conf.%' AND action = 'rollback' AND runner = 'safe_rollback_migration'
 ORDER BY id;
SELECT count(*) AS still_applied FROM iact.migration_status WHERE version LIKE 'conf.%' AND applied;
-- recording an external rollback follows the same rule: another runner cannot
-- mark regress_conf_a's migration as rolled back; when the applying role is
-- gone, only a superuser can
CREATE ROLE regress_conf_b;
CREATE ROLE regress_conf_c;
GRANT USAGE ON SCHEMA iact TO regress_conf_b, regress_conf_c;
GRANT EXECUTE ON FUNCTION iact.log_migration_start(text, text, text), iact.log_rollback_start(text),
  iact.log_migration_complete(bigint, bigint) TO regress_conf_a, regress_conf_b, regress_conf_c;
SET ROLE regress_conf_c;
SELECT iact.log_migration_complete(iact.log_migration_start('conf.7', 'by c'));
SET ROLE regress_conf_a;
SELECT iact.log_migration_complete(iact.log_migration_start('conf.8', 'by a'));
SET ROLE regress_conf_b;
SELECT iact.log_rollback_start('conf.8');           -- b did not apply it: refused
SET ROLE regress_conf_a;
SELECT iact.log_migration_complete(iact.log_rollback_start('conf.8'));
RESET ROLE;
DROP OWNED BY regress_conf_c;
DROP ROLE regress_conf_c;
SET ROLE regress_conf_a;
SELECT iact.log_rollback_start('conf.7');           -- its role is gone: refused
RESET ROLE;
SELECT iact.log_migration_complete(iact.log_rollback_start('conf.7'));
SELECT version, action, status, installed_by FROM iact.migration_log
 WHERE version IN ('conf.7', 'conf.8') ORDER BY id;
DROP OWNED BY regress_conf_b;
DROP ROLE regress_conf_b;
DROP FUNCTION conf_clear(text);
DROP OWNED BY regress_conf_a;
DROP ROLE regress_conf_a;
DROP TABLE conf_seen;

------------------------------------------------------------------------------
-- the migration lock cannot be handed to a prepared transaction (it would
-- outlive the session and restarts, and block every migration)
------------------------------------------------------------------------------
BEGIN;
SELECT iact.log_migration_start('prep.1', 'in a transaction') > 0 AS started;
PREPARE TRANSACTION 'iact_prep_1';
SELECT count(*) AS prepared FROM pg_prepared_xacts WHERE gid = 'iact_prep_1';
SELECT count(*) AS migration_lock_holders FROM pg_locks WHERE locktype = 'userlock';
SELECT count(*) AS entries FROM iact.migration_log WHERE version = 'prep.1';
BEGIN;
CALL iact.run_migration('prep.2', 'in a transaction block', 'SELECT 1');
PREPARE TRANSACTION 'iact_prep_2';
-- without the lock PREPARE is as usual
BEGIN;
SELECT count(*) FROM iact.migration_status WHERE version LIKE 'prep.%';
PREPARE TRANSACTION 'iact_prep_3';
COMMIT PREPARED 'iact_prep_3';
SELECT gid FROM pg_prepared_xacts;
CALL iact.run_migration('prep.3', 'the lock is free', 'SELECT 1', NULL, '1s');
SELECT version, status FROM iact.migration_log WHERE version LIKE 'prep.%' ORDER BY id;
