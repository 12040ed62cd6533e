-- Hostile input to the sync's functions: NULLs, empty and blank strings,
-- 10 000-character and quoted/dotted names, extreme numbers.  Every call ends
-- at once (statement_timeout guards against a hang) with a precise error.
-- Also: a MariaDB SET with every one of its 64 members, a hostile watermark.
-- Uses server regress_ivr (30_sync_fdw).
\set VERBOSITY default
\set SHOW_CONTEXT never
SET statement_timeout = '20s';
\set long `printf 'x%.0s' $(seq 1 10000)`

-- sync_add_table
SELECT iact.sync_add_table(NULL, 'queues', 'hq');
SELECT iact.sync_add_table('regress_ivr', NULL, 'hq');
SELECT iact.sync_add_table('regress_ivr', 'queues', NULL);
SELECT iact.sync_add_table('regress_ivr', 'queues', '');
SELECT iact.sync_add_table('regress_ivr', 'queues', '   ');
SELECT iact.sync_add_table('regress_ivr', 'queues', :'long');
SELECT iact.sync_add_table('regress_ivr', 'queues', 'a.b.c.d');
SELECT iact.sync_add_table('regress_ivr', 'queues', '"unclosed');
SELECT iact.sync_add_table('regress_ivr', 'queues', 'no_such_schema.hq');
SELECT iact.sync_add_table('regress_none', 'queues', 'hq');
SELECT iact.sync_add_table(repeat('s', 100)::name, 'queues', 'hq');
SELECT iact.sync_add_table('regress_ivr', '', 'hq');
SELECT iact.sync_add_table('regress_ivr', '.', 'hq');
SELECT iact.sync_add_table('regress_ivr', 'ivr.', 'hq');
SELECT iact.sync_add_table('regress_ivr', 'a.b.c', 'hq');
SELECT iact.sync_add_table('regress_ivr', :'long', 'hq');
SELECT iact.sync_add_table('regress_ivr', 'no_such_table', 'hq');
SELECT iact.sync_add_table('regress_ivr', 'queues', 'hq', key_columns => '{}');
SELECT iact.sync_add_table('regress_ivr', 'queues', 'hq', key_columns => '{NULL}');
SELECT iact.sync_add_table('regress_ivr', 'queues', 'hq', key_columns => ARRAY[:'long']);
SELECT iact.sync_add_table('regress_ivr', 'queues', 'hq', watermark_column => :'long');
SELECT iact.sync_add_table('regress_ivr', 'queues', 'hq', watermark_column => 'name');
SELECT iact.sync_add_table('regress_ivr', 'queues', 'hq', lookback => NULL);
SELECT iact.sync_add_table('regress_ivr', 'queues', 'hq', lookback => -1);
SELECT iact.sync_add_table('regress_ivr', 'queues', 'hq', lookback => 9223372036854775807);
SELECT iact.sync_add_table('regress_ivr', 'queues', 'hq', retention_days => -2147483648);
SELECT iact.sync_add_table('regress_ivr', 'queues', 'hq', retention_days => 2147483647);
SELECT iact.sync_add_table('regress_ivr', 'queues', 'hq', batch_size => 0);
SELECT iact.sync_add_table('regress_ivr', 'queues', 'hq', batch_size => 2147483647);
SELECT iact.sync_add_table('regress_ivr', 'queues', 'hq', tinyint1_as_boolean => NULL);
SELECT iact.sync_add_table('regress_ivr', 'queues', 'hq', retention_column => 'name');
SELECT count(*) AS nothing_registered_or_created FROM iact.sync_tables WHERE target_table = 'hq'
 UNION ALL SELECT count(*) FROM pg_class WHERE relname = 'hq';
-- quoted and dotted names that are legal are taken as they are
CREATE SCHEMA "hostile.schema";
SELECT iact.sync_add_table('regress_ivr', 'queues', '"hostile.schema"."Q ""quoted"".x"') > 0 AS registered;
SELECT target_schema, target_table FROM iact.sync_tables WHERE target_schema = 'hostile.schema';
SELECT status, rows_read, rows_inserted, error FROM iact.sync_now('"hostile.schema"."Q ""quoted"".x"');

-- sync_source_columns
SELECT * FROM iact.sync_source_columns(NULL, 'queues');
SELECT * FROM iact.sync_source_columns('regress_ivr', NULL);
SELECT * FROM iact.sync_source_columns('regress_ivr', 'queues', NULL);
SELECT * FROM iact.sync_source_columns('regress_ivr', '');
SELECT * FROM iact.sync_source_columns('regress_ivr', '.queues');
SELECT count(*) AS columns_of_a_10000_character_name FROM iact.sync_source_columns('regress_ivr', :'long');
SELECT count(*) AS columns_of_a_quoted_name FROM iact.sync_source_columns('regress_ivr', 'ivr.qu''eues`; x');

-- sync_alter_table, sync_remove_table
SELECT iact.sync_alter_table(NULL);
SELECT iact.sync_alter_table('');
SELECT iact.sync_alter_table(:'long');
SELECT iact.sync_alter_table('no_such_table');
SELECT iact.sync_alter_table('"hostile.schema"."Q ""quoted"".x"', lookback => -1);
SELECT iact.sync_alter_table('"hostile.schema"."Q ""quoted"".x"', lookback => 9223372036854775807);
SELECT iact.sync_alter_table('"hostile.schema"."Q ""quoted"".x"', batch_size => -1);
SELECT iact.sync_alter_table('"hostile.schema"."Q ""quoted"".x"', batch_size => 2147483647);
SELECT iact.sync_alter_table('"hostile.schema"."Q ""quoted"".x"', retention_days => 2147483647);
SELECT iact.sync_alter_table('"hostile.schema"."Q ""quoted"".x"') AS nothing_changed;
SELECT iact.sync_alter_table('"hostile.schema"."Q ""quoted"".x"', enabled => false, lookback => 0,
       batch_size => 7, retention_days => 0, reset_watermark => true) AS changed;
SELECT enabled, lookback, batch_size, retention_days, last_watermark FROM iact.sync_tables
 WHERE target_schema = 'hostile.schema';
SELECT iact.sync_alter_table('"hostile.schema"."Q ""quoted"".x"', batch_size => 0) AS back_to_the_default;
SELECT batch_size FROM iact.sync_tables WHERE target_schema = 'hostile.schema';
SELECT iact.sync_remove_table(NULL);
SELECT iact.sync_remove_table('');
SELECT iact.sync_remove_table(' ');
SELECT iact.sync_remove_table(:'long');
SELECT iact.sync_remove_table('a.b.c.d');
SELECT iact.sync_remove_table('no_such_table');

-- sync_now, sync_run, request_sync
SELECT * FROM iact.sync_now('');
SELECT * FROM iact.sync_now(:'long');
SELECT * FROM iact.sync_now('"no.such".table');
CALL iact.sync_run('');
CALL iact.sync_run(:'long');
CALL iact.sync_run('no_such_table');
SELECT iact._sync_table(NULL) IS NULL AS strict_null;
SELECT iact._sync_table(-2147483648);
SELECT iact.request_sync(:'long');

-- the FDW options validator
CREATE SERVER regress_hostile FOREIGN DATA WRAPPER iact_mariadb OPTIONS (port '');
CREATE SERVER regress_hostile FOREIGN DATA WRAPPER iact_mariadb OPTIONS (port '99999999999999999999');
CREATE SERVER regress_hostile FOREIGN DATA WRAPPER iact_mariadb OPTIONS (port '-1');
CREATE SERVER regress_hostile FOREIGN DATA WRAPPER iact_mariadb OPTIONS (connect_timeout 'infinity');
CREATE SERVER regress_hostile FOREIGN DATA WRAPPER iact_mariadb OPTIONS (read_timeout '0');
CREATE SERVER regress_hostile FOREIGN DATA WRAPPER iact_mariadb OPTIONS (write_timeout '86401');
CREATE SERVER regress_hostile FOREIGN DATA WRAPPER iact_mariadb OPTIONS (ssl_mode '');
CREATE SERVER regress_hostile FOREIGN DATA WRAPPER iact_mariadb OPTIONS (host '');
SELECT format('CREATE SERVER regress_hostile FOREIGN DATA WRAPPER iact_mariadb OPTIONS (%I %L)',
              repeat('o', 60), 'v') \gexec

-- a MariaDB SET with all of its 64 members (the most elements a SET value has)
\! $IACT_MARIADB_CLI -e "DROP TABLE IF EXISTS hostile_set; CREATE TABLE hostile_set (id int PRIMARY KEY, s SET('m1','m2','m3','m4','m5','m6','m7','m8','m9','m10','m11','m12','m13','m14','m15','m16','m17','m18','m19','m20','m21','m22','m23','m24','m25','m26','m27','m28','m29','m30','m31','m32','m33','m34','m35','m36','m37','m38','m39','m40','m41','m42','m43','m44','m45','m46','m47','m48','m49','m50','m51','m52','m53','m54','m55','m56','m57','m58','m59','m60','m61','m62','m63','m64')); INSERT INTO hostile_set VALUES (1, 'm1,m2,m3,m4,m5,m6,m7,m8,m9,m10,m11,m12,m13,m14,m15,m16,m17,m18,m19,m20,m21,m22,m23,m24,m25,m26,m27,m28,m29,m30,m31,m32,m33,m34,m35,m36,m37,m38,m39,m40,m41,m42,m43,m44,m45,m46,m47,m48,m49,m50,m51,m52,m53,m54,m55,m56,m57,m58,m59,m60,m61,m62,m63,m64'), (2, ''), (3, NULL)"
SELECT iact.sync_add_table('regress_ivr', 'hostile_set', 'hostile_set') > 0 AS registered;
SELECT status, rows_read, rows_inserted, rows_rejected, error FROM iact.sync_now('hostile_set');
SELECT id, cardinality(s), s[1] AS first, s[64] AS last FROM hostile_set ORDER BY id;

-- an integer watermark the registry's owner set to something hostile: it is
-- quoted and cast on MariaDB, never pasted into its SQL
\! $IACT_MARIADB_CLI -e "DROP TABLE IF EXISTS hostile_wm; CREATE TABLE hostile_wm (id int PRIMARY KEY, v int); INSERT INTO hostile_wm VALUES (1, 1), (2, 2)"
SELECT iact.sync_add_table('regress_ivr', 'hostile_wm', 'hostile_wm', watermark_column => 'id', lookback => 0) > 0 AS registered;
SELECT status, rows_read FROM iact.sync_now('hostile_wm');
UPDATE iact.sync_tables SET last_watermark = '0 OR 1=1; SELECT SLEEP(100) -- ' WHERE target_table = 'hostile_wm';
SELECT status, rows_read, watermark_from, error FROM iact.sync_now('hostile_wm');
\! $IACT_MARIADB_CLI -e "SELECT COUNT(*) AS hostile_wm_rows FROM hostile_wm"

SELECT iact.sync_remove_table('hostile_set'), iact.sync_remove_table('hostile_wm'),
       iact.sync_remove_table('"hostile.schema"."Q ""quoted"".x"');
DROP TABLE hostile_set, hostile_wm;
DROP SCHEMA "hostile.schema" CASCADE;
\! $IACT_MARIADB_CLI -e "DROP TABLE hostile_set, hostile_wm"
RESET statement_timeout;
