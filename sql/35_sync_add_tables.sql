-- iact.sync_add_tables: many tables in one call, every table of a database by
-- default; one row per table saying what was done or why it was refused (a
-- refusal does not stop the others: a subtransaction per table).
\set VERBOSITY default
\set SHOW_CONTEXT never
\! $IACT_MARIADB_CLI -e "CREATE DATABASE ivr_many; CREATE TABLE ivr_many.t_a (id int PRIMARY KEY, v varchar(10)); INSERT INTO ivr_many.t_a VALUES (1, 'one'), (2, 'two'); CREATE TABLE ivr_many.t_b (id int PRIMARY KEY, changed_at datetime NOT NULL); INSERT INTO ivr_many.t_b VALUES (1, '2026-01-01 10:00:00'); CREATE TABLE ivr_many.t_nokey (a int, b int); CREATE TABLE ivr_many.t_point (id int PRIMARY KEY, p point); CREATE VIEW ivr_many.v_a AS SELECT * FROM ivr_many.t_a; GRANT SELECT, SHOW VIEW ON ivr_many.* TO 'iact_reader'@'127.0.0.1'"
CREATE SCHEMA many;

-- the base tables of a database (views are not listed)
SELECT table_name FROM iact.sync_source_tables('regress_ivr', 'ivr_many');
SELECT count(*) > 0 AS default_database_listed FROM iact.sync_source_tables('regress_ivr');
SELECT * FROM iact.sync_source_tables('regress_ivr', 'no_such_database');
SELECT * FROM iact.sync_source_tables('regress_ivr', '');

-- every table: two registered, two refused with the reason, nothing aborted
SELECT source_table, target_table, table_id IS NOT NULL AS has_id, status, detail
  FROM iact.sync_add_tables('regress_ivr', 'ivr_many', target_schema => 'many', retention_days => 0);
SELECT target_schema, target_table, source_schema, source_table, key_columns FROM iact.sync_tables
 WHERE target_schema = 'many' ORDER BY target_table;
-- again, with a list: the registered ones say so, an unknown one is refused
SELECT source_table, target_table, table_id IS NOT NULL AS has_id, status, detail
  FROM iact.sync_add_tables('regress_ivr', 'ivr_many', ARRAY['t_a', 'missing'], target_schema => 'many',
                            retention_days => 0);
-- key_columns for a table without a primary key
SELECT source_table, target_table, table_id IS NOT NULL AS has_id, status, detail
  FROM iact.sync_add_tables('regress_ivr', 'ivr_many', ARRAY['t_nokey'], key_columns => '{a,b}',
                            target_schema => 'many', retention_days => 0);
-- options apply to each table: a watermark column only some tables have
SELECT iact.sync_remove_table('many.t_b');
SELECT source_table, status, detail
  FROM iact.sync_add_tables('regress_ivr', 'ivr_many', ARRAY['t_b', 't_point'], watermark_column => 'changed_at',
                            target_schema => 'many', retention_days => 0);
SELECT watermark_column FROM iact.sync_tables WHERE target_schema = 'many' AND target_table = 't_b';
-- the registered tables sync
SELECT target_table, status, rows_read, rows_inserted FROM iact.sync_now('many.t_a')
UNION ALL SELECT target_table, status, rows_read, rows_inserted FROM iact.sync_now('many.t_b')
UNION ALL SELECT target_table, status, rows_read, rows_inserted FROM iact.sync_now('many.t_nokey');
-- bad arguments
SELECT * FROM iact.sync_add_tables(NULL, 'ivr_many');
SELECT * FROM iact.sync_add_tables('no_such_server', 'ivr_many', ARRAY['t_a']);
SELECT * FROM iact.sync_add_tables('regress_ivr', 'ivr_many', ARRAY['t_a'], target_schema => 'no_such_schema');
-- PUBLIC cannot call them
SELECT has_function_privilege('public', 'iact.sync_add_tables(name, text, text[], text[], text, bigint, integer, text, integer, boolean, name)', 'EXECUTE') AS public_add,
       has_function_privilege('public', 'iact.sync_source_tables(name, text)', 'EXECUTE') AS public_list;

SELECT iact.sync_remove_table(format('many.%I', target_table)) FROM iact.sync_tables WHERE target_schema = 'many';
DROP SCHEMA many CASCADE;
\! $IACT_MARIADB_CLI -e "DROP DATABASE ivr_many"
