-- The server option source_time_zone: the source writes datetime values in
-- that zone's wall-clock time.  They become timestamptz (the instant), and an
-- incremental run's look-back is computed on instants, so rows written in the
-- hour repeated at a fall-back change (2025-10-26 in Europe/Madrid: 03:00 CEST
-- became 02:00 CET) are not lost.  Without the option, the same rows are
-- missed (the documented limit: a look-back of at least an hour is needed).
\getenv port IACT_MARIADB_PORT
\getenv mypw IACT_MARIADB_PASSWORD
\set VERBOSITY default
\set SHOW_CONTEXT never

-- the validator: a zone PostgreSQL knows
CREATE SERVER regress_tz_bad FOREIGN DATA WRAPPER iact_mariadb OPTIONS (source_time_zone 'Mars/Olympus');
CREATE SERVER regress_tz_bad FOREIGN DATA WRAPPER iact_mariadb OPTIONS (source_time_zone '');
ALTER USER MAPPING FOR CURRENT_USER SERVER regress_ivr OPTIONS (ADD source_time_zone 'UTC');
CREATE SERVER regress_ivr_tz FOREIGN DATA WRAPPER iact_mariadb
	OPTIONS (host '127.0.0.1', port :'port', dbname 'ivr', source_time_zone 'Europe/Madrid');
CREATE USER MAPPING FOR CURRENT_USER SERVER regress_ivr_tz OPTIONS (user 'iact_reader', password :'mypw');

-- the first pass of the repeated hour (CEST, UTC+2), then a sync of both targets
\! $IACT_MARIADB_CLI -e "CREATE TABLE dst (id int PRIMARY KEY, v varchar(10) NOT NULL, changed_at datetime NOT NULL, KEY (changed_at)); INSERT INTO dst VALUES (1, 'a', '2025-10-26 01:50:00'), (2, 'b', '2025-10-26 02:10:00'), (3, 'c', '2025-10-26 02:40:00'), (4, 'd', '2025-10-26 02:55:00')"
-- with the zone, datetime is given timestamptz; without it, timestamp
SELECT column_name, target_type FROM iact.sync_source_columns('regress_ivr_tz', 'dst') WHERE column_name = 'changed_at'
UNION ALL
SELECT column_name, target_type FROM iact.sync_source_columns('regress_ivr', 'dst') WHERE column_name = 'changed_at';
SELECT iact.sync_add_table('regress_ivr_tz', 'dst', 'dst_tz', watermark_column => 'changed_at', lookback => 300,
                           retention_days => 0) > 0 AS tz_registered,
       iact.sync_add_table('regress_ivr', 'dst', 'dst_plain', watermark_column => 'changed_at', lookback => 300,
                           retention_days => 0) > 0 AS plain_registered;
SELECT target_table, status, rows_read, rows_inserted, watermark_from, watermark_to FROM iact.sync_now('dst_tz')
UNION ALL
SELECT target_table, status, rows_read, rows_inserted, watermark_from, watermark_to FROM iact.sync_now('dst_plain');

-- the second pass (CET, UTC+1): local times go back an hour; two new rows and
-- an update, all with local times below the watermark (02:55) minus 5 minutes
\! $IACT_MARIADB_CLI -e "INSERT INTO dst VALUES (5, 'e', '2025-10-26 02:05:00'), (6, 'f', '2025-10-26 02:20:00'); UPDATE dst SET v = 'b2', changed_at = '2025-10-26 02:30:00' WHERE id = 2"
SELECT target_table, status, rows_read, rows_inserted, rows_updated, watermark_from, watermark_to, source_count,
       target_count FROM iact.sync_now('dst_tz')
UNION ALL
SELECT target_table, status, rows_read, rows_inserted, rows_updated, watermark_from, watermark_to, source_count,
       target_count FROM iact.sync_now('dst_plain');
-- with the zone every row is there; without it the repeated hour's rows are missing
\set src `$IACT_MARIADB_CLI -e "SELECT CONCAT(COUNT(*), ' ', MD5(GROUP_CONCAT(CONCAT_WS('|', id, v, changed_at) ORDER BY id))) FROM dst"`
SELECT count(*) || ' ' || md5(string_agg(concat_ws('|', id, v, to_char(changed_at AT TIME ZONE 'Europe/Madrid',
       'YYYY-MM-DD HH24:MI:SS')), ',' ORDER BY id)) = :'src' AS tz_equals_source FROM dst_tz;
SELECT count(*) || ' ' || md5(string_agg(concat_ws('|', id, v, to_char(changed_at, 'YYYY-MM-DD HH24:MI:SS')), ','
       ORDER BY id)) = :'src' AS plain_equals_source, string_agg(id::text, ',' ORDER BY id) AS plain_ids FROM dst_plain;
-- the instants: a local time of the repeated hour is read as the later one
-- (after the change), PostgreSQL's rule; 01:50 is before the change
SET TimeZone = 'UTC';
SELECT id, v, changed_at, pg_typeof(changed_at) FROM dst_tz ORDER BY id;
RESET TimeZone;

-- after the repeated hour: the watermark (still 02:55) keeps the wide bound
-- once more; then a watermark after the change has the plain look-back
\! $IACT_MARIADB_CLI -e "INSERT INTO dst VALUES (7, 'g', '2025-10-26 03:10:00')"
SELECT status, rows_read, rows_inserted, watermark_from, watermark_to FROM iact.sync_now('dst_tz');
SELECT status, rows_read, rows_inserted, watermark_from, watermark_to FROM iact.sync_now('dst_tz');
SELECT count(*) AS tz_rows FROM dst_tz;

-- retention by a local datetime: the cutoff is local time in the zone
UPDATE iact.sync_tables SET retention_days = 36500, retention_column = 'changed_at' WHERE target_table = 'dst_tz';
SELECT status, rows_read, rows_purged, source_count, target_count FROM iact.sync_now('dst_tz');
UPDATE iact.sync_tables SET retention_days = 1 WHERE target_table = 'dst_tz';
SELECT status, rows_read, rows_purged, source_count, target_count FROM iact.sync_now('dst_tz');

SELECT iact.sync_remove_table('dst_tz'), iact.sync_remove_table('dst_plain');
DROP TABLE dst_tz, dst_plain;
DROP SERVER regress_ivr_tz CASCADE;
\! $IACT_MARIADB_CLI -e "DROP TABLE dst"
