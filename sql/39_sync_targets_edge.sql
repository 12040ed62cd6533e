-- Review of partitioned targets, source_time_zone and sync_add_tables at
-- their edges (issue 12).
\getenv port IACT_MARIADB_PORT
\getenv mypw IACT_MARIADB_PASSWORD
\set VERBOSITY default
\set SHOW_CONTEXT never

-- 1. source_time_zone 'CET': PostgreSQL's zone CET has summer time (CEST),
-- while AT TIME ZONE 'CET' is the fixed abbreviation (UTC+1).  Values are
-- converted with the zone; the look-back must use the zone too, or the
-- rows written in the repeated hour of a fall-back change are lost.
-- a zone with leap seconds is refused (PostgreSQL's TimeZone cannot be one)
CREATE SERVER regress_ivr_cet FOREIGN DATA WRAPPER iact_mariadb OPTIONS (source_time_zone 'right/Europe/Madrid');
CREATE SERVER regress_ivr_cet FOREIGN DATA WRAPPER iact_mariadb
	OPTIONS (host '127.0.0.1', port :'port', dbname 'ivr', source_time_zone 'CET');
CREATE USER MAPPING FOR CURRENT_USER SERVER regress_ivr_cet OPTIONS (user 'iact_reader', password :'mypw');
\! $IACT_MARIADB_CLI -e "CREATE TABLE dst_cet (id int PRIMARY KEY, v varchar(10) NOT NULL, changed_at datetime NOT NULL); INSERT INTO dst_cet VALUES (1, 'a', '2025-10-26 01:50:00'), (2, 'b', '2025-10-26 02:10:00'), (4, 'd', '2025-10-26 02:55:00')"
SELECT iact.sync_add_table('regress_ivr_cet', 'dst_cet', 'dst_cet', watermark_column => 'changed_at', lookback => 300,
                           retention_days => 0) > 0 AS registered;
SELECT status, rows_read, watermark_from, watermark_to FROM iact.sync_now('dst_cet');
\! $IACT_MARIADB_CLI -e "INSERT INTO dst_cet VALUES (5, 'e', '2025-10-26 02:05:00'), (6, 'f', '2025-10-26 02:20:00')"
SELECT status, rows_read, rows_inserted, watermark_from, watermark_to FROM iact.sync_now('dst_cet');
SELECT string_agg(id::text, ',' ORDER BY id) AS ids FROM dst_cet;
SET TimeZone = 'UTC';
SELECT id, changed_at FROM dst_cet ORDER BY id;
RESET TimeZone;
SELECT iact.sync_remove_table('dst_cet');
DROP TABLE dst_cet;
DROP SERVER regress_ivr_cet CASCADE;
\! $IACT_MARIADB_CLI -e "DROP TABLE dst_cet"

-- 1b. a watermark in the hour skipped at a spring-forward change (2025-03-30
-- 02:00 -> 03:00 in Europe/Madrid; only wrong data has one): the bound must
-- not be above watermark - lookback, or the rows of 03:00..03:25 are missed;
-- and a skipped time must keep its place among the instants, or the count
-- check of every later run fails (the table could never sync again)
CREATE SERVER regress_ivr_mad FOREIGN DATA WRAPPER iact_mariadb
	OPTIONS (host '127.0.0.1', port :'port', dbname 'ivr', source_time_zone 'Europe/Madrid');
CREATE USER MAPPING FOR CURRENT_USER SERVER regress_ivr_mad OPTIONS (user 'iact_reader', password :'mypw');
\! $IACT_MARIADB_CLI -e "CREATE TABLE dst_gap (id int PRIMARY KEY, changed_at datetime NOT NULL); INSERT INTO dst_gap VALUES (1, '2025-03-30 01:50:00'), (2, '2025-03-30 02:30:00')"
SELECT iact.sync_add_table('regress_ivr_mad', 'dst_gap', 'dst_gap', watermark_column => 'changed_at', lookback => 300,
                           retention_days => 0) > 0 AS registered;
SELECT status, rows_read, watermark_to FROM iact.sync_now('dst_gap');
\! $IACT_MARIADB_CLI -e "INSERT INTO dst_gap VALUES (3, '2025-03-30 03:10:00')"
SELECT status, rows_read, rows_inserted, watermark_from, watermark_to FROM iact.sync_now('dst_gap');
SELECT string_agg(id::text, ',' ORDER BY id) AS ids FROM dst_gap;
-- the skipped 02:30 is stored as the instant of the change (01:00 UTC)
SET TimeZone = 'UTC';
SELECT id, changed_at FROM dst_gap ORDER BY id;
RESET TimeZone;
SELECT iact.sync_remove_table('dst_gap');
DROP TABLE dst_gap;
DROP SERVER regress_ivr_mad CASCADE;
\! $IACT_MARIADB_CLI -e "DROP TABLE dst_gap"

-- 2. a partitioned target with sub-partitions and a default partition: an
-- incremental run updates a row in a sub-partition, the retention purge
-- (tableoid and ctid together) removes only the old row
\! $IACT_MARIADB_CLI -e "CREATE TABLE pmove (id int PRIMARY KEY, started_at datetime NOT NULL, v int, changed_at datetime NOT NULL); INSERT INTO pmove VALUES (1, '2020-01-01', 1, '2026-01-01 00:00:01'), (2, '2026-01-01', 2, '2026-01-01 00:00:02')"
CREATE TABLE pmove (id integer NOT NULL, started_at timestamp(0) NOT NULL, v integer, changed_at timestamp(0) NOT NULL,
	PRIMARY KEY (id, started_at)) PARTITION BY RANGE (started_at);
CREATE TABLE pmove_old PARTITION OF pmove FOR VALUES FROM (MINVALUE) TO ('2025-01-01');
CREATE TABLE pmove_new PARTITION OF pmove FOR VALUES FROM ('2025-01-01') TO ('2030-01-01') PARTITION BY HASH (id);
CREATE TABLE pmove_new0 PARTITION OF pmove_new FOR VALUES WITH (MODULUS 2, REMAINDER 0);
CREATE TABLE pmove_new1 PARTITION OF pmove_new FOR VALUES WITH (MODULUS 2, REMAINDER 1);
CREATE TABLE pmove_def PARTITION OF pmove DEFAULT;
SELECT iact.sync_add_table('regress_ivr', 'pmove', 'pmove', key_columns => '{id,started_at}', watermark_column => 'changed_at',
	lookback => 0, retention_days => 0) > 0 AS registered;
SELECT status, rows_read, rows_inserted, error FROM iact.sync_now('pmove');
\! $IACT_MARIADB_CLI -e "UPDATE pmove SET v = 22, changed_at = '2026-02-01' WHERE id = 2; INSERT INTO pmove VALUES (3, '2031-01-01', 3, '2026-02-02')"
SELECT status, rows_read, rows_inserted, rows_updated, source_count, target_count, error FROM iact.sync_now('pmove');
SELECT id, started_at, tableoid::regclass FROM pmove ORDER BY id, started_at;
-- retention: a purge across sub-partitions
UPDATE iact.sync_tables SET retention_days = 1000, retention_column = 'started_at' WHERE target_table = 'pmove';
SELECT status, rows_purged, source_count, target_count, error FROM iact.sync_now('pmove');
SELECT id, started_at, tableoid::regclass FROM pmove ORDER BY id, started_at;
SELECT iact.sync_remove_table('pmove');
DROP TABLE pmove;
\! $IACT_MARIADB_CLI -e "DROP TABLE pmove"

-- 3. sync_add_tables: hostile MariaDB table names
\! $IACT_MARIADB_CLI -e "CREATE DATABASE rv_empty; CREATE DATABASE rv_hostile; GRANT SELECT ON rv_hostile.* TO iact_reader; CREATE TABLE rv_hostile.\`o'q\` (id int PRIMARY KEY); CREATE TABLE rv_hostile.\`b\`\`t\` (id int PRIMARY KEY); CREATE TABLE rv_hostile.\`a\"b\` (id int PRIMARY KEY); CREATE TABLE rv_hostile.\`$(printf 'x%.0s' $(seq 64))\` (id int PRIMARY KEY); CREATE TABLE rv_hostile.\`$(printf 'é%.0s' $(seq 64))\` (id int PRIMARY KEY); CREATE TABLE rv_hostile.\`d.t\` (id int PRIMARY KEY); INSERT INTO rv_hostile.\`o'q\` VALUES (1)"
CREATE SCHEMA rv_h;
SELECT * FROM iact.sync_add_tables('regress_ivr', 'rv_empty', target_schema => 'rv_h');
SELECT source_table, target_table, table_id IS NOT NULL AS has_id, status, detail
  FROM iact.sync_add_tables('regress_ivr', 'rv_hostile', target_schema => 'rv_h', retention_days => 0);
SELECT source_table, target_table, status, detail
  FROM iact.sync_add_tables('regress_ivr', 'rv_hostile', target_schema => 'rv_h', retention_days => 0);
SELECT target_table, status, rows_read, error FROM iact.sync_now() WHERE target_table LIKE 'rv_h.%' ORDER BY 1;
SELECT count(iact.sync_remove_table(target_schema || '.' || target_table)) FROM iact.sync_tables WHERE target_schema = 'rv_h';
DROP SCHEMA rv_h CASCADE;
\! $IACT_MARIADB_CLI -e "DROP DATABASE rv_empty; DROP DATABASE rv_hostile"
