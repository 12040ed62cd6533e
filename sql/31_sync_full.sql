-- Full sync by key: target creation with the type rules, insert / update /
-- delete, rejects, the count check, failed runs, and proof (CHECKSUM TABLE)
-- that the source is never changed.  Uses server regress_ivr (30_sync_fdw).
\set VERBOSITY default
\set SHOW_CONTEXT never
\set cs_before `$IACT_MARIADB_CLI -e "CHECKSUM TABLE ivr.queues, ivr.agents, ivr.calls, ivr.dirty, ivr.cdr_log, ivr.sites, ivr.ticks EXTENDED"`

-- register: targets are created from the source's columns
SELECT iact.sync_add_table('regress_ivr', 'calls', 'public.calls') > 0 AS registered;
SELECT iact.sync_add_table('regress_ivr', 'ivr.agents', 'agents') > 0 AS registered;
SELECT iact.sync_add_table('regress_ivr', 'queues', 'queues', batch_size => 2) > 0 AS registered;
CREATE SCHEMA regress_raw;
SELECT iact.sync_add_table('regress_ivr', 'agents', 'regress_raw.agents', tinyint1_as_boolean => false) > 0 AS registered;
-- an existing target with narrower types than the source: some values will not fit
CREATE TABLE dirty (id integer PRIMARY KEY, label text, raw text, amount integer, seen_on date, extra text DEFAULT 'pg only');
SELECT iact.sync_add_table('regress_ivr', 'dirty', 'dirty') > 0 AS registered;

SELECT table_schema, table_name, column_name, data_type, numeric_precision, numeric_scale, datetime_precision, is_nullable
  FROM information_schema.columns
 WHERE (table_schema, table_name) IN (('public', 'calls'), ('public', 'agents'), ('regress_raw', 'agents'), ('public', 'queues'))
 ORDER BY table_schema, table_name, ordinal_position;
SELECT id > 0 AS has_id, server_name, source_schema, source_table, target_schema, target_table, key_columns,
       watermark_column, lookback, batch_size, retention_days, retention_column, tinyint1_as_boolean, enabled, last_watermark
  FROM iact.sync_tables ORDER BY id;

-- the first sync
SELECT target_table, status, mode, transaction_mode, rows_read, rows_inserted, rows_updated, rows_deleted,
       rows_rejected, rows_purged, source_count, target_count, error, finished_at >= started_at AS finished
  FROM iact.sync_now() ORDER BY target_table;

-- the values, type by type
SELECT call_id, queue_id, agent_id, caller, started_at, answered_at, duration_s, wait_s, cost, abandoned, score,
       left(notes, 30) AS notes, meta, updated_at
  FROM calls ORDER BY call_id;
SELECT * FROM agents ORDER BY agent_id;
SELECT agent_id, is_supervisor, level FROM regress_raw.agents ORDER BY agent_id;
SELECT * FROM queues ORDER BY queue_id;
SELECT length(notes), notes = repeat('long text ', 20000) AS intact FROM calls WHERE call_id = 3;
SELECT meta->>'lang' AS lang, jsonb_typeof(meta) FROM calls WHERE call_id = 1;
-- the bad values went to sync_rejects, the rest of the table is there
SELECT * FROM dirty ORDER BY id;
SELECT target_table, key, column_name, raw_value, reason FROM iact.sync_rejects ORDER BY id;
SELECT r.status, r.rows_rejected, (SELECT count(*) FROM iact.sync_rejects j WHERE j.run_id = r.id) AS rejects
  FROM iact.sync_runs r WHERE r.target_table = 'public.dirty';

-- nothing changed: a second run reads everything and writes nothing
SELECT target_table, status, rows_read, rows_inserted, rows_updated, rows_deleted, rows_rejected
  FROM iact.sync_now() ORDER BY target_table;

-- the source changes (through MariaDB's root account): insert, update, delete
\! $IACT_MARIADB_CLI -e "INSERT INTO queues VALUES (5, 'Premium', 10, 1, 'en,de', 9); UPDATE queues SET sla_seconds = 25, languages = 'fr' WHERE queue_id = 1; DELETE FROM queues WHERE queue_id = 4"
\set cs_before `$IACT_MARIADB_CLI -e "CHECKSUM TABLE ivr.queues, ivr.agents, ivr.calls, ivr.dirty, ivr.cdr_log, ivr.sites, ivr.ticks EXTENDED"`
SELECT target_table, status, rows_read, rows_inserted, rows_updated, rows_deleted, source_count, target_count
  FROM iact.sync_now('queues');
SELECT * FROM queues ORDER BY queue_id;
-- a local change to the target is repaired by the next full sync
UPDATE queues SET name = 'changed in PostgreSQL' WHERE queue_id = 2;
DELETE FROM queues WHERE queue_id = 3;
SELECT target_table, status, rows_read, rows_inserted, rows_updated, rows_deleted FROM iact.sync_now('public.queues');
SELECT queue_id, name FROM queues ORDER BY queue_id;

-- registration errors
SELECT iact.sync_add_table('no_such_server', 'calls', 'x');
SELECT iact.sync_add_table(NULL, 'calls', 'x');
SELECT iact.sync_add_table('regress_ivr', 'a.b.c', 'x');
SELECT iact.sync_add_table('regress_ivr', 'no_such_table', 'x');
SELECT iact.sync_add_table('regress_ivr', 'cdr_log', 'cdr');
SELECT iact.sync_add_table('regress_ivr', 'cdr_log', 'cdr', key_columns => '{}');
SELECT iact.sync_add_table('regress_ivr', 'cdr_log', 'cdr', key_columns => '{nope}');
SELECT iact.sync_add_table('regress_ivr', 'calls', 'calls2', watermark_column => 'caller');
SELECT iact.sync_add_table('regress_ivr', 'calls', 'calls2', retention_column => 'caller');
SELECT iact.sync_add_table('regress_ivr', 'calls', 'calls2', batch_size => 0);
SELECT iact.sync_add_table('regress_ivr', 'calls', 'calls2', lookback => -1);
SELECT iact.sync_add_table('regress_ivr', 'calls', 'calls');
SELECT iact.sync_add_table('regress_ivr', 'calls', 'a.b.c');
SELECT iact.sync_add_table('regress_ivr', 'sites', 'sites');
CREATE TABLE no_key (line_no integer, message text);
SELECT iact.sync_add_table('regress_ivr', 'cdr_log', 'no_key', key_columns => '{line_no}');
SELECT count(*) AS not_created FROM pg_class WHERE relname IN ('x', 'cdr', 'calls2', 'sites');
-- a target created by hand for a type without a rule: read as text
CREATE TABLE sites (site_id integer PRIMARY KEY, location bytea);
SELECT iact.sync_add_table('regress_ivr', 'sites', 'sites') > 0 AS registered;
SELECT target_table, status, rows_read, rows_inserted FROM iact.sync_now('sites');
SELECT site_id, length(location) AS wkb_bytes FROM sites;

-- a failed table is recorded as failed, and the other tables still sync
CREATE TABLE cdr (line_no integer CONSTRAINT cdr_key UNIQUE, message text);
SELECT iact.sync_add_table('regress_ivr', 'cdr_log', 'cdr', key_columns => '{line_no}') > 0 AS registered;
ALTER TABLE cdr DROP CONSTRAINT cdr_key;
\! $IACT_MARIADB_CLI -e "UPDATE agents SET full_name = 'Anne Martin-Dubois' WHERE agent_id = 1"
\set cs_before `$IACT_MARIADB_CLI -e "CHECKSUM TABLE ivr.queues, ivr.agents, ivr.calls, ivr.dirty, ivr.cdr_log, ivr.sites, ivr.ticks EXTENDED"`
SELECT target_table, status, rows_read, rows_inserted, rows_updated, error FROM iact.sync_now() ORDER BY target_table;
SELECT count(*) AS cdr_rows FROM cdr;
SELECT full_name FROM agents WHERE agent_id = 1;

-- never short: a target that silently drops rows fails the count check, loudly,
-- and nothing of that table's run remains
ALTER TABLE cdr ADD CONSTRAINT cdr_key UNIQUE (line_no);
CREATE FUNCTION regress_drop_line2() RETURNS trigger LANGUAGE plpgsql AS
$$BEGIN IF NEW.line_no = 2 THEN RETURN NULL; END IF; RETURN NEW; END$$;
CREATE TRIGGER regress_drop_line2 BEFORE INSERT ON cdr FOR EACH ROW EXECUTE FUNCTION regress_drop_line2();
SELECT target_table, status, rows_read, rows_inserted, source_count, target_count, error FROM iact.sync_now('cdr');
SELECT count(*) AS cdr_rows FROM cdr;
DROP TRIGGER regress_drop_line2 ON cdr;
DROP FUNCTION regress_drop_line2();
SELECT target_table, status, rows_read, rows_inserted, source_count, target_count, error FROM iact.sync_now('cdr');

-- the batch-commit path on full tables: range deletes across batches of 2
-- (queues) and, for a text key, the temporary table of seen keys (agents by login)
SELECT iact.sync_add_table('regress_ivr', 'agents', 'agents_by_login', key_columns => '{login}',
	batch_size => 2) > 0 AS registered;
CALL iact.sync_run('agents_by_login');
SELECT count(*) FROM agents_by_login;
\! $IACT_MARIADB_CLI -e "DELETE FROM agents WHERE agent_id = 3; INSERT INTO agents (agent_id, login, full_name) VALUES (5, 'nnew', 'Nina New'); DELETE FROM queues WHERE queue_id = 2; INSERT INTO queues VALUES (6, 'Overflow', 90, 1, 'nl', 1)"
\set cs_before `$IACT_MARIADB_CLI -e "CHECKSUM TABLE ivr.queues, ivr.agents, ivr.calls, ivr.dirty, ivr.cdr_log, ivr.sites, ivr.ticks EXTENDED"`
CALL iact.sync_run('agents_by_login');
CALL iact.sync_run('queues');
SELECT target_table, status, transaction_mode, rows_read, rows_inserted, rows_updated, rows_deleted, source_count, target_count
  FROM iact.sync_runs WHERE id IN (SELECT max(id) FROM iact.sync_runs GROUP BY target_table)
   AND target_table IN ('public.agents_by_login', 'public.queues') ORDER BY target_table;
SELECT login, full_name, hired_on FROM agents_by_login ORDER BY login;
SELECT queue_id, name FROM queues ORDER BY queue_id;
SELECT iact.sync_remove_table('agents_by_login');
DROP TABLE agents_by_login;

-- a target dropped behind the sync's back
DROP TABLE regress_raw.agents;
SELECT target_table, status, error FROM iact.sync_now('regress_raw.agents');

-- after all of this, the source is exactly as it was
\set cs_after `$IACT_MARIADB_CLI -e "CHECKSUM TABLE ivr.queues, ivr.agents, ivr.calls, ivr.dirty, ivr.cdr_log, ivr.sites, ivr.ticks EXTENDED"`
SELECT :'cs_before' = :'cs_after' AS source_unchanged, length(:'cs_after') > 100 AS checksums_taken;

-- a disabled table is left out of sync_now(), synced when named
UPDATE iact.sync_tables SET enabled = false WHERE target_table = 'queues';
SELECT count(*) FILTER (WHERE target_table = 'public.queues') AS queues_runs, count(*) > 0 AS others_ran
  FROM iact.sync_now();
SELECT target_table, status FROM iact.sync_now('queues');
UPDATE iact.sync_tables SET enabled = true WHERE target_table = 'queues';

-- sync_now and sync_remove_table on names that are not registered
SELECT * FROM iact.sync_now('no_such_table');
SELECT * FROM iact.sync_now('');
SELECT iact.sync_remove_table('no_such_table');
SELECT iact.sync_remove_table('regress_raw.agents');
SELECT iact.sync_remove_table('sites');
SELECT iact.sync_remove_table('cdr');
SELECT iact.sync_remove_table('dirty');
SELECT target_schema, target_table FROM iact.sync_tables ORDER BY id;
-- the run history stays, detached from the registry
SELECT count(*) > 0 AS history_kept FROM iact.sync_runs WHERE target_table = 'public.cdr' AND table_id IS NULL;
DROP SCHEMA regress_raw;
DROP TABLE sites, cdr, dirty, no_key;

-- retention by a column that may be NULL or a zero date: such rows are kept
-- (read, counted, never purged); rows older than the cutoff are not read
SELECT iact.sync_add_table('regress_ivr', 'agents', 'agents_ret', retention_days => 365,
	retention_column => 'left_on') > 0 AS registered;
SELECT status, rows_read, rows_rejected, rows_purged, source_count, target_count, error
  FROM iact.sync_now('agents_ret');
SELECT agent_id, left_on FROM agents_ret ORDER BY 1;
-- a second run: an old row is purged, a vanished NULL-retention row deleted,
-- the NULL-retention rows that exist in the source stay
INSERT INTO agents_ret (agent_id, login, full_name, hired_on, is_supervisor, level, updated_at, left_on)
VALUES (90, 'old', 'Old', '2000-01-01', false, false, '2024-01-01', '2001-01-01'),
       (91, 'gone', 'Gone', '2000-01-01', false, false, '2024-01-01', NULL);
SELECT status, rows_read, rows_deleted, rows_purged, source_count, target_count, error
  FROM iact.sync_now('agents_ret');
SELECT agent_id, left_on FROM agents_ret ORDER BY 1;
SELECT iact.sync_remove_table('agents_ret');
DROP TABLE agents_ret;

-- the same with a datetime: a zero date with a time ('0000-00-00 12:00:00',
-- row 1) is kept like a zero date (row 4) and a NULL (row 5); row 2 is too old
SELECT iact.sync_add_table('regress_ivr', 'ret_zero', 'ret_zero', retention_days => 365,
	retention_column => 'at') > 0 AS registered;
SELECT status, rows_read, rows_rejected, rows_purged, source_count, target_count, error
  FROM iact.sync_now('ret_zero');
SELECT id, at FROM ret_zero ORDER BY 1;
SELECT iact.sync_remove_table('ret_zero');
DROP TABLE ret_zero;

-- a NULL (a zero date) in a key column or a NOT NULL target column rejects
-- the row, naming the column; the rest of the table is synced
CREATE TABLE zkey (d date PRIMARY KEY, v integer, w date NOT NULL);
SELECT iact.sync_add_table('regress_ivr', 'zkey', 'zkey', retention_days => 0) > 0 AS registered;
SELECT status, rows_read, rows_inserted, rows_rejected, source_count, target_count, error
  FROM iact.sync_now('zkey');
SELECT key, column_name, raw_value, reason FROM iact.sync_rejects WHERE target_table = 'public.zkey' ORDER BY id;
SELECT * FROM zkey;
SELECT iact.sync_remove_table('zkey');
DROP TABLE zkey;

-- a point column (binary WKB) into a hand-made text target: "point" is not an
-- integer type, so the text checks run and the row is rejected, not truncated
CREATE TABLE sites_text (site_id integer PRIMARY KEY, location text);
SELECT iact.sync_add_table('regress_ivr', 'sites', 'sites_text') > 0 AS registered;
SELECT status, rows_read, rows_inserted, rows_rejected, error FROM iact.sync_now('sites_text');
SELECT column_name, reason FROM iact.sync_rejects WHERE target_table = 'public.sites_text';
SELECT count(*) FROM sites_text;
SELECT iact.sync_remove_table('sites_text');
-- nor is it a watermark
SELECT iact.sync_add_table('regress_ivr', 'sites', 'sites_text', watermark_column => 'location');
DROP TABLE sites_text;

-- target columns without an = operator (json, xml) are compared as text: the
-- second run (an upsert) works and rewrites nothing
CREATE TABLE calls_j (call_id numeric(20,0) PRIMARY KEY, meta json, notes xml);
SELECT iact.sync_add_table('regress_ivr', 'calls', 'calls_j') > 0 AS registered;
SELECT status, rows_read, rows_inserted, rows_updated, rows_rejected, error FROM iact.sync_now('calls_j');
SELECT status, rows_read, rows_inserted, rows_updated, rows_rejected, error FROM iact.sync_now('calls_j');
UPDATE calls_j SET meta = '{"changed": 1}' WHERE call_id = 1;
SELECT status, rows_read, rows_inserted, rows_updated, rows_rejected, error FROM iact.sync_now('calls_j');
SELECT call_id, meta FROM calls_j WHERE call_id = 1;
SELECT iact.sync_remove_table('calls_j');
DROP TABLE calls_j;

-- a full sync by one ordered key merges each batch with the target's rows of
-- its key range: a key the source has twice fails the run (23505) ...
CREATE TABLE calls_by_queue (queue_id integer PRIMARY KEY, caller text);
INSERT INTO calls_by_queue VALUES (0, 'not empty: the merge, not a plain insert');
SELECT iact.sync_add_table('regress_ivr', 'calls', 'calls_by_queue', key_columns => '{queue_id}') > 0
  AS registered;
SELECT status, rows_read, rows_inserted, error FROM iact.sync_now('calls_by_queue');
SELECT * FROM calls_by_queue;
SELECT iact.sync_remove_table('calls_by_queue');
DROP TABLE calls_by_queue;
-- ... and so does a row that changes between the merge's read and its write
-- (here a BEFORE UPDATE trigger skips the update): 40001, never a silent miss
CREATE TABLE ticks_skip (id bigint PRIMARY KEY, val text, changed_at timestamp);
SELECT iact.sync_add_table('regress_ivr', 'ticks', 'ticks_skip') > 0 AS registered;
SELECT status, rows_read, rows_inserted, error FROM iact.sync_now('ticks_skip');
UPDATE ticks_skip SET val = 'changed in the target' WHERE id IN (3, 4);
DELETE FROM ticks_skip WHERE id = 5;
INSERT INTO ticks_skip VALUES (26, 'not in the source', '2024-01-01');
CREATE FUNCTION regress_skip_update() RETURNS trigger LANGUAGE plpgsql
    AS $$ BEGIN RETURN CASE WHEN OLD.id = 4 THEN NULL ELSE NEW END; END $$;
CREATE TRIGGER skip BEFORE UPDATE ON ticks_skip FOR EACH ROW EXECUTE FUNCTION regress_skip_update();
SELECT status, rows_read, rows_updated, error FROM iact.sync_now('ticks_skip');
SELECT id, val FROM ticks_skip WHERE id IN (3, 4, 5, 26) ORDER BY id;
DROP TRIGGER skip ON ticks_skip;
SELECT status, rows_read, rows_inserted, rows_updated, rows_deleted, source_count, target_count, error
  FROM iact.sync_now('ticks_skip');
SELECT id, val FROM ticks_skip WHERE id IN (3, 4, 5, 26) ORDER BY id;
SELECT iact.sync_remove_table('ticks_skip');
DROP TABLE ticks_skip;
DROP FUNCTION regress_skip_update();

-- the merge writes by ctid, unique only within one table: a partitioned
-- target (or one with inheritance children) takes the upsert path instead
\! $IACT_MARIADB_CLI -e "CREATE TABLE rv_part (id int PRIMARY KEY, val varchar(20)); INSERT INTO rv_part SELECT seq, CONCAT('v', seq) FROM seq_1_to_10"
CREATE TABLE rv_part (id integer PRIMARY KEY, val text) PARTITION BY RANGE (id);
CREATE TABLE rv_part_a PARTITION OF rv_part FOR VALUES FROM (1) TO (6);
CREATE TABLE rv_part_b PARTITION OF rv_part FOR VALUES FROM (6) TO (100);
SELECT iact.sync_add_table('regress_ivr', 'rv_part', 'rv_part', batch_size => 3) > 0 AS registered;
SELECT status, rows_read, rows_inserted, error FROM iact.sync_now('rv_part');
\! $IACT_MARIADB_CLI -e "DELETE FROM rv_part WHERE id IN (2, 9); UPDATE rv_part SET val = 'changed' WHERE id = 3"
SELECT status, rows_read, rows_inserted, rows_updated, rows_deleted, source_count, target_count, error
  FROM iact.sync_now('rv_part');
SELECT tableoid::regclass, id, val FROM rv_part ORDER BY id;
SELECT iact.sync_remove_table('rv_part');
DROP TABLE rv_part;

-- a stale target row with a NULL key (a nullable unique key column) is
-- deleted like any row the source does not have
\! $IACT_MARIADB_CLI -e "CREATE TABLE rv_nk (id int PRIMARY KEY, val varchar(20)); INSERT INTO rv_nk VALUES (1, 'a'), (2, 'b'), (3, 'c')"
CREATE TABLE rv_nk (id integer UNIQUE, val text);
INSERT INTO rv_nk VALUES (NULL, 'stale, not in the source'), (1, 'a');
SELECT iact.sync_add_table('regress_ivr', 'rv_nk', 'rv_nk') > 0 AS registered;
SELECT status, rows_read, rows_inserted, rows_updated, rows_deleted, source_count, target_count, error
  FROM iact.sync_now('rv_nk');
SELECT * FROM rv_nk ORDER BY id;
SELECT iact.sync_remove_table('rv_nk');
DROP TABLE rv_nk;

-- keys are matched by their type's comparison, not by their bytes: a numeric
-- key stored as 1.0 is the source's 1, and neither it nor a key-only table
-- is rewritten
\! $IACT_MARIADB_CLI -e "CREATE TABLE rv_num (id int PRIMARY KEY, val varchar(20)); INSERT INTO rv_num VALUES (1, 'a'), (2, 'b'); CREATE TABLE rv_numk (id int PRIMARY KEY); INSERT INTO rv_numk VALUES (1), (2)"
CREATE TABLE rv_num (id numeric PRIMARY KEY, val text);
INSERT INTO rv_num VALUES (1.0, 'a'), (2, 'b');
CREATE TABLE rv_numk (id numeric PRIMARY KEY);
INSERT INTO rv_numk VALUES (1.0), (2);
SELECT iact.sync_add_table('regress_ivr', 'rv_num', 'rv_num') > 0 AS registered,
       iact.sync_add_table('regress_ivr', 'rv_numk', 'rv_numk') > 0 AS registered_key_only;
SELECT target_table, status, rows_read, rows_inserted, rows_updated, rows_deleted, error
  FROM iact.sync_now('rv_num') UNION ALL
SELECT target_table, status, rows_read, rows_inserted, rows_updated, rows_deleted, error
  FROM iact.sync_now('rv_numk');
SELECT iact.sync_remove_table('rv_num'), iact.sync_remove_table('rv_numk');
DROP TABLE rv_num, rv_numk;

-- a source that lost many rows between two of its keys: the target's rows of
-- a batch's range are read and deleted batch_size at a time
\! $IACT_MARIADB_CLI -e "CREATE TABLE rv_gap (id int PRIMARY KEY, val varchar(20)); INSERT INTO rv_gap VALUES (1, 'first'), (5000, 'last')"
CREATE TABLE rv_gap (id integer PRIMARY KEY, val text);
INSERT INTO rv_gap SELECT g, 'stale' FROM generate_series(1, 4999) g;
SELECT iact.sync_add_table('regress_ivr', 'rv_gap', 'rv_gap', batch_size => 7) > 0 AS registered;
SELECT status, rows_read, rows_inserted, rows_updated, rows_deleted, source_count, target_count, error
  FROM iact.sync_now('rv_gap');
SELECT * FROM rv_gap ORDER BY id;
SELECT iact.sync_remove_table('rv_gap');
DROP TABLE rv_gap;

-- deletes cascading to rows a later chunk was to delete are no conflict (the
-- rows are gone either way); a row to delete that something changed after the
-- read is (40001), also with a retention cutoff
\! $IACT_MARIADB_CLI -e "CREATE TABLE rv_tree (id int PRIMARY KEY, parent int, val varchar(20)); INSERT INTO rv_tree VALUES (1, NULL, 'root'), (4, 1, 'd')"
CREATE TABLE rv_tree (id integer PRIMARY KEY, parent integer REFERENCES rv_tree ON DELETE CASCADE, val text);
INSERT INTO rv_tree VALUES (1, NULL, 'root'), (2, 1, 'b'), (3, 2, 'c'), (4, 1, 'd');
SELECT iact.sync_add_table('regress_ivr', 'rv_tree', 'rv_tree', batch_size => 1) > 0 AS registered;
SELECT status, rows_read, rows_inserted, rows_updated, rows_deleted, error FROM iact.sync_now('rv_tree');
SELECT * FROM rv_tree ORDER BY id;
SELECT iact.sync_remove_table('rv_tree');
DROP TABLE rv_tree;
\! $IACT_MARIADB_CLI -e "CREATE TABLE rv_touch (id int PRIMARY KEY, d datetime, val varchar(20)); INSERT INTO rv_touch VALUES (1, '2099-01-01', 'a'), (5, '2099-01-01', 'e')"
CREATE TABLE rv_touch (id integer PRIMARY KEY, d timestamp(0), val text);
INSERT INTO rv_touch VALUES (1, '2099-01-01', 'a'), (2, '2099-01-01', 'b'), (3, '2099-01-01', 'c'),
    (5, '2099-01-01', 'e');
-- the sync runs the target's triggers with search_path = pg_catalog, pg_temp:
-- a trigger function names its schema (here with its own SET search_path)
CREATE FUNCTION regress_touch_next() RETURNS trigger LANGUAGE plpgsql SET search_path = public
    AS $$ BEGIN UPDATE rv_touch SET val = val || '+' WHERE id = OLD.id + 1; RETURN OLD; END $$;
CREATE TRIGGER touch AFTER DELETE ON rv_touch FOR EACH ROW EXECUTE FUNCTION regress_touch_next();
SELECT iact.sync_add_table('regress_ivr', 'rv_touch', 'rv_touch', batch_size => 1) > 0 AS registered;
SELECT status, rows_read, rows_deleted, error FROM iact.sync_now('rv_touch');
UPDATE iact.sync_tables SET retention_column = 'd', retention_days = 30 WHERE target_table = 'rv_touch';
SELECT status, rows_read, rows_deleted, error FROM iact.sync_now('rv_touch');
SELECT * FROM rv_touch ORDER BY id;
SELECT iact.sync_remove_table('rv_touch');
DROP TABLE rv_touch;
DROP FUNCTION regress_touch_next();
\! $IACT_MARIADB_CLI -e "DROP TABLE rv_part, rv_nk, rv_num, rv_numk, rv_gap, rv_tree, rv_touch"
