-- Review of the sync's writers (issue 15: plan once, run one writer): what a
-- run prepares is released on every exit, whatever step failed.
\getenv port IACT_MARIADB_PORT
\getenv mypw IACT_MARIADB_PASSWORD
\set VERBOSITY default
\set SHOW_CONTEXT never

-- 1. The merge writer prepares its reads, then its writes; the INSERT into a
-- GENERATED ALWAYS identity column is refused when it is prepared.  The
-- reads prepared before must not stay in the backend's plan cache (one set
-- per failed run, for as long as the session -- the worker -- lives).
\! $IACT_MARIADB_CLI -e "CREATE TABLE wr_ident (id int PRIMARY KEY, val varchar(10)); INSERT INTO wr_ident VALUES (1, 'a')"
CREATE TABLE wr_ident (id integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY, val text);
INSERT INTO wr_ident OVERRIDING SYSTEM VALUE VALUES (5, 'x');
SET client_min_messages = warning;
SELECT iact.sync_add_table('regress_ivr', 'wr_ident', 'wr_ident') > 0 AS registered;
RESET client_min_messages;
SELECT status, error FROM iact.sync_now('wr_ident');
SELECT status, error FROM iact.sync_now('wr_ident');
-- the same through CALL iact.sync_run (a commit after every step)
CALL iact.sync_run('wr_ident');
SELECT status, transaction_mode, error FROM iact.sync_runs WHERE target_table = 'public.wr_ident' ORDER BY id;
SELECT count(*) AS plans_left FROM pg_catalog.pg_backend_memory_contexts
 WHERE name = 'CachedPlanSource' AND ident LIKE '%wr_ident%';
SELECT * FROM wr_ident;
SELECT iact.sync_remove_table('wr_ident');
DROP TABLE wr_ident;
\! $IACT_MARIADB_CLI -e "DROP TABLE wr_ident"
