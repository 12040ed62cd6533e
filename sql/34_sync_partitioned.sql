-- Partitioned (by date range, by hash of the key) and inheritance targets on
-- every path: first load, full comparison by key (updates and vanished-row
-- deletes), incremental upsert, rejects and the retention purge.  After each
-- step every target equals the source over the retained range: the count and
-- an md5 of every column of every row, computed on MariaDB and in PostgreSQL.
\set VERBOSITY default
\set SHOW_CONTEXT never

-- 997 calls, one a day at noon going back 1000 days (none 729..731 days old, so
-- the 730-day retention cutoff never falls near a row), spread over partitions
\! $IACT_MARIADB_CLI -e "CREATE TABLE pc (id int PRIMARY KEY, started_at datetime NOT NULL, agent varchar(20) NOT NULL, dur int, changed_at datetime NOT NULL, KEY (changed_at)); INSERT INTO pc SELECT seq, UTC_DATE() - INTERVAL seq DAY + INTERVAL 12 HOUR, CONCAT('a', seq % 17), IF(seq % 5 = 0, NULL, seq * 3), '2026-01-01' + INTERVAL seq MINUTE FROM seq_1_to_1000 WHERE seq NOT BETWEEN 729 AND 731"

-- by date range (the key must hold the partition column), three partitions
CREATE TABLE pt_range (id integer NOT NULL, started_at timestamp(0) NOT NULL, agent varchar(8) NOT NULL,
	dur integer, changed_at timestamp(0) NOT NULL, PRIMARY KEY (id, started_at)) PARTITION BY RANGE (started_at);
DO $$ BEGIN
	EXECUTE format('CREATE TABLE pt_range_old PARTITION OF pt_range FOR VALUES FROM (MINVALUE) TO (%L)',
				   current_date - 600);
	EXECUTE format('CREATE TABLE pt_range_mid PARTITION OF pt_range FOR VALUES FROM (%L) TO (%L)',
				   current_date - 600, current_date - 300);
	CREATE TABLE pt_range_new PARTITION OF pt_range DEFAULT;
END $$;
-- by hash of the key, four partitions
CREATE TABLE pt_hash (id integer PRIMARY KEY, started_at timestamp(0) NOT NULL, agent varchar(8) NOT NULL,
	dur integer, changed_at timestamp(0) NOT NULL) PARTITION BY HASH (id);
CREATE TABLE pt_hash_0 PARTITION OF pt_hash FOR VALUES WITH (MODULUS 4, REMAINDER 0);
CREATE TABLE pt_hash_1 PARTITION OF pt_hash FOR VALUES WITH (MODULUS 4, REMAINDER 1);
CREATE TABLE pt_hash_2 PARTITION OF pt_hash FOR VALUES WITH (MODULUS 4, REMAINDER 2);
CREATE TABLE pt_hash_3 PARTITION OF pt_hash FOR VALUES WITH (MODULUS 4, REMAINDER 3);
-- inheritance, the classic way: children with CHECKs, a trigger routing the
-- parent's inserts to them (the parent itself stays empty; the trigger names
-- its schema: runs write as the owner with search_path = pg_catalog, pg_temp)
CREATE TABLE pt_inh (id integer PRIMARY KEY, started_at timestamp(0) NOT NULL, agent varchar(8) NOT NULL,
	dur integer, changed_at timestamp(0) NOT NULL);
SELECT current_date - 365 AS inh_split \gset
CREATE TABLE pt_inh_old (PRIMARY KEY (id), CHECK (started_at < :'inh_split')) INHERITS (pt_inh);
CREATE TABLE pt_inh_new (PRIMARY KEY (id), CHECK (started_at >= :'inh_split')) INHERITS (pt_inh);
CREATE FUNCTION pt_inh_route() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	BEGIN
		INSERT INTO public.pt_inh_old VALUES (NEW.*);
	EXCEPTION WHEN check_violation THEN
		INSERT INTO public.pt_inh_new VALUES (NEW.*);
	END;
	RETURN NULL;
END $$;
CREATE TRIGGER pt_inh_route BEFORE INSERT ON pt_inh FOR EACH ROW EXECUTE FUNCTION pt_inh_route();

-- target = source: count and md5 of every column, over rows started since `since`
CREATE FUNCTION regress_pt_sum(t regclass, since timestamp) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
	s text;
BEGIN
	EXECUTE format('SELECT count(*) || '' '' || coalesce(md5(string_agg(concat_ws(''|'', id, '
		'to_char(started_at, ''YYYY-MM-DD HH24:MI:SS''), agent, dur, '
		'to_char(changed_at, ''YYYY-MM-DD HH24:MI:SS'')), '','' ORDER BY id)), '''') '
		'FROM %s WHERE started_at >= $1', t) INTO s USING since;
	RETURN s;
END $$;
CREATE FUNCTION regress_pt_check(src text, since timestamp) RETURNS TABLE (target text, equal boolean)
LANGUAGE sql AS $$
	SELECT t, regress_pt_sum(t::regclass, since) = src FROM unnest(ARRAY['pt_range', 'pt_hash', 'pt_inh']) t $$;
\set src_sum 'SET SESSION group_concat_max_len = 100000000; SELECT CONCAT(COUNT(*), '' '', IFNULL(MD5(GROUP_CONCAT(CONCAT_WS(''|'', id, started_at, agent, dur, changed_at) ORDER BY id SEPARATOR '','')), '''')) FROM pc WHERE started_at >= '
SELECT (now() AT TIME ZONE 'UTC')::date - 730 AS kept_since \gset

-- first loads, keeping everything
SELECT iact.sync_add_table('regress_ivr', 'pc', t, key_columns => k, retention_days => 0, batch_size => 100) > 0 AS registered
  FROM (VALUES ('pt_range', '{id,started_at}'::text[]), ('pt_hash', NULL), ('pt_inh', NULL)) v (t, k);
SELECT target_table, status, mode, rows_read, rows_inserted, rows_updated, rows_deleted, rows_purged, error
  FROM iact.sync_now() WHERE target_table LIKE 'public.pt\_%' ORDER BY target_table;
\set src `$IACT_MARIADB_CLI -e ":src_sum '1000-01-01'"`
SELECT * FROM regress_pt_check(:'src', '1000-01-01');
-- the rows are spread over the partitions and children, none in the inheritance parent
SELECT count(DISTINCT tableoid) AS range_parts FROM pt_range;
SELECT count(DISTINCT tableoid) AS hash_parts FROM pt_hash;
SELECT (SELECT count(*) FROM ONLY pt_inh) AS in_parent, (SELECT count(DISTINCT tableoid) FROM pt_inh) AS children;

-- full comparison: 50 rows changed, 20 deleted, 10 new, one row whose agent no
-- longer fits the targets' varchar(8) (a reject: its old version goes)
\! $IACT_MARIADB_CLI -e "UPDATE pc SET agent = CONCAT('b', id % 13), dur = IFNULL(dur, 0) + 1 WHERE id % 20 = 3; DELETE FROM pc WHERE id BETWEEN 401 AND 420; INSERT INTO pc SELECT 2000 + seq, UTC_DATE() - INTERVAL seq DAY + INTERVAL 12 HOUR + INTERVAL 1 MINUTE, 'new', seq, '2026-02-01' + INTERVAL seq MINUTE FROM seq_1_to_10; UPDATE pc SET agent = 'much-too-long' WHERE id = 7"
SELECT target_table, status, rows_read, rows_inserted, rows_updated, rows_deleted, rows_rejected, error
  FROM iact.sync_now() WHERE target_table LIKE 'public.pt\_%' ORDER BY target_table;
SELECT target_table, split_part(key, ',', 1) AS key, column_name, reason
  FROM iact.sync_rejects WHERE target_table LIKE 'public.pt\_%' ORDER BY 1;
SELECT count(*) AS rejected_row_in_targets FROM (SELECT id FROM pt_range UNION ALL SELECT id FROM pt_hash
	UNION ALL SELECT id FROM pt_inh) x WHERE id = 7;
-- the row fixed on the source comes back
\! $IACT_MARIADB_CLI -e "UPDATE pc SET agent = 'fixed' WHERE id = 7"
SELECT target_table, status, rows_read, rows_inserted, rows_updated, rows_deleted, rows_rejected, error
  FROM iact.sync_now() WHERE target_table LIKE 'public.pt\_%' ORDER BY target_table;
\set src `$IACT_MARIADB_CLI -e ":src_sum '1000-01-01'"`
SELECT * FROM regress_pt_check(:'src', '1000-01-01');

-- retention: rows older than 730 days are purged from every partition they
-- are in, and only those (the purge addresses rows by partition and ctid)
UPDATE iact.sync_tables SET retention_days = 730, retention_column = 'started_at'
 WHERE target_table IN ('pt_range', 'pt_hash', 'pt_inh');
SELECT target_table, status, rows_read, rows_inserted, rows_updated, rows_deleted, rows_purged, source_count,
       target_count, error
  FROM iact.sync_now() WHERE target_table LIKE 'public.pt\_%' ORDER BY target_table;
\set src `$IACT_MARIADB_CLI -e ":src_sum UTC_DATE() - INTERVAL 730 DAY"`
SELECT * FROM regress_pt_check(:'src', :'kept_since');
SELECT (SELECT count(*) FROM pt_range WHERE started_at < :'kept_since') AS range_old,
       (SELECT count(*) FROM pt_hash WHERE started_at < :'kept_since') AS hash_old,
       (SELECT count(*) FROM pt_inh WHERE started_at < :'kept_since') AS inh_old;
-- and again: nothing to do, nothing lost
SELECT target_table, status, rows_read, rows_inserted, rows_updated, rows_deleted, rows_purged, error
  FROM iact.sync_now() WHERE target_table LIKE 'public.pt\_%' ORDER BY target_table;
SELECT * FROM regress_pt_check(:'src', :'kept_since');

-- incremental by the changed_at watermark, batches committed by the procedure;
-- the old rows are back on the targets (the purge then removes them again)
SELECT iact.sync_remove_table(t) FROM unnest(ARRAY['pt_range', 'pt_hash', 'pt_inh']) t;
INSERT INTO pt_range VALUES (5000, now() - interval '900 days', 'stale', 1, '2026-01-01');
INSERT INTO pt_hash VALUES (5000, now() - interval '900 days', 'stale', 1, '2026-01-01');
INSERT INTO pt_inh VALUES (5000, now() - interval '900 days', 'stale', 1, '2026-01-01');
SELECT iact.sync_add_table('regress_ivr', 'pc', t, key_columns => k, watermark_column => 'changed_at',
		lookback => 60, retention_days => 730, retention_column => 'started_at', batch_size => 100) > 0 AS registered
  FROM (VALUES ('pt_range', '{id,started_at}'::text[]), ('pt_hash', NULL), ('pt_inh', NULL)) v (t, k);
CALL iact.sync_run();
SELECT target_table, status, mode, transaction_mode, rows_read, rows_purged, error
  FROM iact.sync_runs WHERE target_table LIKE 'public.pt\_%' AND mode = 'incremental' ORDER BY target_table;
-- changes move the watermark: updates (in every partition), new rows, a reject
\! $IACT_MARIADB_CLI -e "UPDATE pc SET dur = 7777, changed_at = '2026-06-01' + INTERVAL id SECOND WHERE id % 9 = 0; INSERT INTO pc SELECT 3000 + seq, UTC_DATE() - INTERVAL seq * 7 DAY + INTERVAL 12 HOUR, 'inc', seq, '2026-06-02' + INTERVAL seq SECOND FROM seq_1_to_30; UPDATE pc SET agent = 'again-too-long', changed_at = '2026-06-03' WHERE id = 12"
CALL iact.sync_run();
SELECT DISTINCT ON (target_table) target_table, status, rows_read, rows_inserted, rows_updated, rows_deleted,
       rows_rejected, rows_purged, error
  FROM iact.sync_runs WHERE target_table LIKE 'public.pt\_%' ORDER BY target_table, id DESC;
\set src `$IACT_MARIADB_CLI -e ":src_sum UTC_DATE() - INTERVAL 730 DAY AND id <> 12"`
SELECT * FROM regress_pt_check(:'src', :'kept_since');
\! $IACT_MARIADB_CLI -e "UPDATE pc SET agent = 'ok12', changed_at = '2026-06-04' WHERE id = 12"
CALL iact.sync_run();
SELECT DISTINCT ON (target_table) target_table, status, rows_read, rows_inserted, rows_updated, rows_rejected, error
  FROM iact.sync_runs WHERE target_table LIKE 'public.pt\_%' ORDER BY target_table, id DESC;
\set src `$IACT_MARIADB_CLI -e ":src_sum UTC_DATE() - INTERVAL 730 DAY"`
SELECT * FROM regress_pt_check(:'src', :'kept_since');
SELECT (SELECT count(*) FROM ONLY pt_inh) AS in_inh_parent;

-- an inheritance parent without triggers (could be written directly, but its
-- unique index does not see the children's rows): a row kept in a child is
-- updated there, never inserted again into the parent
CREATE TABLE pt_plain_parent (id integer PRIMARY KEY, started_at timestamp(0) NOT NULL, agent varchar(8) NOT NULL,
	dur integer, changed_at timestamp(0) NOT NULL);
CREATE TABLE pt_plain_child (PRIMARY KEY (id)) INHERITS (pt_plain_parent);
INSERT INTO pt_plain_child SELECT * FROM pt_hash WHERE id = 1;
SELECT iact.sync_add_table('regress_ivr', 'pc', 'pt_plain_parent', watermark_column => 'changed_at', lookback => 0,
		retention_days => 0) > 0 AS registered;
UPDATE iact.sync_tables SET last_watermark = '2026-06-01 00:00:00' WHERE target_table = 'pt_plain_parent';
\! $IACT_MARIADB_CLI -e "UPDATE pc SET dur = 4242, changed_at = '2026-07-01' WHERE id = 1"
SELECT status, rows_read, rows_inserted, rows_updated, error, write_path FROM iact.sync_now('pt_plain_parent');
SELECT tableoid::regclass, id, dur FROM pt_plain_parent WHERE id = 1;

SELECT iact.sync_remove_table(t) FROM unnest(ARRAY['pt_range', 'pt_hash', 'pt_inh', 'pt_plain_parent']) t;
DROP TABLE pt_range, pt_hash, pt_inh, pt_plain_parent CASCADE;
DROP FUNCTION pt_inh_route(), regress_pt_check(text, timestamp), regress_pt_sum(regclass, timestamp);
\! $IACT_MARIADB_CLI -e "DROP TABLE pc"
