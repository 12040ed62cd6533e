\echo '=== Migrations: a log with checksums, failures that survive, safe rollback, batched backfills'
\pset footer off

\echo '--- apply a migration (with its rollback SQL)'
CALL iact.run_migration('2026.11.01', 'agents table',
  $$CREATE TABLE agents (id int PRIMARY KEY, name text NOT NULL, team text);
    INSERT INTO agents SELECT g, 'agent ' || g, (ARRAY['north','south'])[1 + g % 2] FROM generate_series(1, 5000) g;$$,
  $$DROP TABLE agents$$);

\echo '--- a migration that fails: its changes are rolled back, the error is raised, FAILED stays in the log'
\set ON_ERROR_STOP 0
CALL iact.run_migration('2026.11.02', 'add a column with a typo',
  $$ALTER TABLE agents ADD COLUMN display_name txt$$);
\set ON_ERROR_STOP 1

\echo '--- fixed and applied; then the same version with edited SQL is refused (checksum mismatch)'
CALL iact.run_migration('2026.11.02', 'display_name column',
  $$ALTER TABLE agents ADD COLUMN display_name text$$, $$ALTER TABLE agents DROP COLUMN display_name$$);
\set ON_ERROR_STOP 0
CALL iact.run_migration('2026.11.02', 'display_name column',
  $$ALTER TABLE agents ADD COLUMN display_name varchar(80)$$);
\set ON_ERROR_STOP 1

\echo '--- backfill the new column in batches of 1000, committing after each batch'
CALL iact.backfill('agents_display_name', 'agents',
  $$display_name = initcap(name) || ' (' || team || ')'$$, 'display_name IS NULL', 1000);
SELECT name, status, rows_done, batches, last_key FROM iact.backfill_progress;
SELECT id, name, display_name FROM agents ORDER BY id LIMIT 3;

\echo '--- roll back, newest first: an older version is refused while a later one is applied'
CALL iact.run_migration('2026.11.03', 'team index', $$CREATE INDEX agents_team ON agents (team)$$,
  $$DROP INDEX agents_team$$);
\set ON_ERROR_STOP 0
SELECT iact.safe_rollback_migration('2026.11.02');
\set ON_ERROR_STOP 1
SELECT iact.safe_rollback_migration('2026.11.03') AS rolled_back;
SELECT to_regclass('agents_team') AS index_after_rollback;

\echo '--- a rollback whose SQL fails changes nothing, is recorded ROLLBACK_FAILED, and returns false'
CALL iact.run_migration('2026.11.04', 'name index', $$CREATE INDEX agents_name ON agents (name)$$,
  $$DROP INDEX agents_name; DROP TABLE not_there$$);
SELECT iact.safe_rollback_migration('2026.11.04') AS rolled_back;
SELECT to_regclass('agents_name') AS index_still_there;

\echo '--- the history (append-only) and the state of each version'
SELECT id, version, action, status, rows_affected, duration_ms IS NOT NULL AS timed,
       left(error_message, 40) AS error, installed_by
  FROM iact.migration_log ORDER BY id;
SELECT version, description, applied, last_action, last_status FROM iact.migration_status ORDER BY version;
