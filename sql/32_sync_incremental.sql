-- Incremental sync by watermark: only rows past the last watermark minus the
-- look-back are read, in batches, each committed with its watermark by
-- CALL iact.sync_run; retention of old target rows; run-history retention.
\set VERBOSITY default
\set SHOW_CONTEXT never
\set cs_before `$IACT_MARIADB_CLI -e "CHECKSUM TABLE ivr.ticks EXTENDED"`

SELECT iact.sync_add_table('regress_ivr', 'ticks', 'ticks', watermark_column => 'changed_at',
	lookback => 120, batch_size => 10, retention_days => 0) > 0 AS registered;
SELECT key_columns, watermark_column, lookback, batch_size, retention_column, last_watermark
  FROM iact.sync_tables WHERE target_table = 'ticks';

-- the first run reads everything, in batches of 10
SELECT status, mode, rows_read, rows_inserted, rows_updated, watermark_from, watermark_to, source_count, target_count
  FROM iact.sync_now('ticks');
SELECT last_watermark FROM iact.sync_tables WHERE target_table = 'ticks';
SELECT count(*), min(id), max(id), max(changed_at) FROM ticks;

-- nothing new: only the look-back window (2 minutes: 3 rows) is read again, nothing written
SELECT status, rows_read, rows_inserted, rows_updated, watermark_from, watermark_to, source_count, target_count
  FROM iact.sync_now('ticks');

-- new rows and an update that moves a row past the watermark
\! $IACT_MARIADB_CLI -e "INSERT INTO ticks SELECT seq, CONCAT('new', seq), '2024-05-01 00:00:00' + INTERVAL seq MINUTE FROM seq_26_to_40; UPDATE ticks SET val = 'changed', changed_at = '2024-05-01 01:00:00' WHERE id = 3"
\set cs_before `$IACT_MARIADB_CLI -e "CHECKSUM TABLE ivr.ticks EXTENDED"`
-- through the procedure: each batch is committed with its watermark
CALL iact.sync_run('ticks');
SELECT status, transaction_mode, rows_read, rows_inserted, rows_updated, watermark_from, watermark_to, source_count, target_count
  FROM iact.sync_runs WHERE target_table = 'public.ticks' ORDER BY id DESC LIMIT 1;
SELECT id, val, changed_at FROM ticks WHERE id IN (3, 25, 26, 40) ORDER BY id;
SELECT count(*) FROM ticks;

-- a row whose watermark did not move is not seen by an incremental run
-- (the documented limit: such tables need a full sync)
\! $IACT_MARIADB_CLI -e "UPDATE ticks SET val = 'silent' WHERE id = 1"
\set cs_before `$IACT_MARIADB_CLI -e "CHECKSUM TABLE ivr.ticks EXTENDED"`
SELECT status, rows_read, rows_updated FROM iact.sync_now('ticks');
SELECT val FROM ticks WHERE id = 1;

-- inside a transaction block the procedure cannot commit: it runs each table atomically
BEGIN;
CALL iact.sync_run('ticks');
SELECT status, transaction_mode, rows_read FROM iact.sync_runs WHERE target_table = 'public.ticks' ORDER BY id DESC LIMIT 1;
ROLLBACK;

-- a watermark that does not parse fails the run, the next good one repairs it
UPDATE iact.sync_tables SET last_watermark = 'garbage' WHERE target_table = 'ticks';
SELECT status, error FROM iact.sync_now('ticks');
UPDATE iact.sync_tables SET last_watermark = NULL WHERE target_table = 'ticks';
SELECT status, rows_read, rows_inserted, rows_updated, source_count, target_count FROM iact.sync_now('ticks');
SELECT val FROM ticks WHERE id = 1;

-- retention: rows older than the age (by the watermark column here) are purged
-- from the target in batches, and no longer read from the source
UPDATE iact.sync_tables SET retention_days = 30, retention_column = 'changed_at' WHERE target_table = 'ticks';
\! $IACT_MARIADB_CLI -e "INSERT INTO ticks VALUES (100, 'recent', UTC_TIMESTAMP() - INTERVAL 1 DAY)"
\set cs_before `$IACT_MARIADB_CLI -e "CHECKSUM TABLE ivr.ticks EXTENDED"`
SELECT status, rows_read, rows_inserted, rows_purged, source_count, target_count FROM iact.sync_now('ticks');
SELECT id, val FROM ticks ORDER BY id;

-- a count mismatch in the batch-commit path: the run fails, the batches stay
-- committed, and the watermark goes back to where the run began, so the next
-- run reads and checks the same range again
CREATE FUNCTION regress_drop_101() RETURNS trigger LANGUAGE plpgsql AS
$$BEGIN IF NEW.id = 101 THEN RETURN NULL; END IF; RETURN NEW; END$$;
CREATE TRIGGER regress_drop_101 BEFORE INSERT ON ticks FOR EACH ROW EXECUTE FUNCTION regress_drop_101();
\! $IACT_MARIADB_CLI -e "INSERT INTO ticks VALUES (101, 'lost?', UTC_TIMESTAMP() - INTERVAL 1 HOUR), (102, 'kept', UTC_TIMESTAMP() - INTERVAL 1 HOUR)"
\set cs_before `$IACT_MARIADB_CLI -e "CHECKSUM TABLE ivr.ticks EXTENDED"`
SELECT last_watermark AS wm_before FROM iact.sync_tables WHERE target_table = 'ticks' \gset
CALL iact.sync_run('ticks');
SELECT status, rows_read, rows_inserted, source_count, target_count, error
  FROM iact.sync_runs WHERE target_table = 'public.ticks' ORDER BY id DESC LIMIT 1;
SELECT last_watermark = :'wm_before' AS watermark_kept FROM iact.sync_tables WHERE target_table = 'ticks';
SELECT id, val FROM ticks ORDER BY id;
DROP TRIGGER regress_drop_101 ON ticks;
DROP FUNCTION regress_drop_101();
CALL iact.sync_run('ticks');
SELECT status, rows_read, rows_inserted, source_count, target_count, error
  FROM iact.sync_runs WHERE target_table = 'public.ticks' ORDER BY id DESC LIMIT 1;
SELECT id, val FROM ticks ORDER BY id;

-- the same with a full table (no watermark): retention by a chosen column
SELECT iact.sync_add_table('regress_ivr', 'ticks', 'ticks_full', retention_days => 30,
	retention_column => 'changed_at') > 0 AS registered;
SELECT status, mode, rows_read, rows_inserted, rows_deleted, rows_purged, source_count, target_count
  FROM iact.sync_now('ticks_full');
SELECT id, val FROM ticks_full ORDER BY id;

-- a zero-date watermark (row 1, and row 4: a zero date with a time) is like
-- a NULL one: not synced incrementally, not counted, and the following runs agree
SELECT iact.sync_add_table('regress_ivr', 'wm_zero', 'wm_zero', watermark_column => 'upd',
	retention_days => 0) > 0 AS registered;
SELECT status, rows_read, rows_rejected, watermark_to, source_count, target_count, error
  FROM iact.sync_now('wm_zero');
SELECT status, rows_read, rows_rejected, watermark_from, watermark_to, source_count, target_count, error
  FROM iact.sync_now('wm_zero');
SELECT id, upd FROM wm_zero ORDER BY id;

-- a date watermark: the look-back bound is a date on both sides (rounded down)
SELECT iact.sync_add_table('regress_ivr', 'wm_date', 'wm_date', watermark_column => 'd',
	retention_days => 0) > 0 AS registered;
SELECT status, rows_read, watermark_to, source_count, target_count, error FROM iact.sync_now('wm_date');
SELECT status, rows_read, watermark_from, watermark_to, source_count, target_count, error
  FROM iact.sync_now('wm_date');
CALL iact.sync_run('wm_date');
SELECT status, rows_read, watermark_from, watermark_to, source_count, target_count, error
  FROM iact.sync_runs WHERE target_table = 'public.wm_date' ORDER BY id DESC LIMIT 1;
SELECT iact.sync_remove_table('wm_zero'), iact.sync_remove_table('wm_date');
DROP TABLE wm_zero, wm_date;

-- a row that becomes bad in an incremental run: rejected, and its old version
-- leaves the target, so the run is partial and the table moves on
CREATE TABLE inc_bad (id integer PRIMARY KEY, val varchar(3), changed_at timestamp);
SELECT iact.sync_add_table('regress_ivr', 'inc_bad', 'inc_bad', watermark_column => 'changed_at',
	lookback => 600, retention_days => 0) > 0 AS registered;
SELECT status, rows_read, rows_rejected, source_count, target_count, error FROM iact.sync_now('inc_bad');
\! $IACT_MARIADB_CLI -e "UPDATE inc_bad SET val = 'toolong', changed_at = '2024-05-01 00:10:00' WHERE id = 5"
SELECT status, rows_read, rows_rejected, rows_deleted, source_count, target_count, error
  FROM iact.sync_now('inc_bad');
SELECT key, column_name, reason FROM iact.sync_rejects WHERE target_table = 'public.inc_bad' ORDER BY id;
CALL iact.sync_run('inc_bad');
\! $IACT_MARIADB_CLI -e "INSERT INTO inc_bad VALUES (6, 'new', '2024-05-01 00:20:00')"
CALL iact.sync_run('inc_bad');
SELECT status, rows_read, rows_rejected, rows_deleted, watermark_from, watermark_to, source_count, target_count, error
  FROM iact.sync_runs WHERE target_table = 'public.inc_bad' ORDER BY id;
SELECT id, val, changed_at FROM inc_bad ORDER BY id;
SELECT iact.sync_remove_table('inc_bad');
DROP TABLE inc_bad;

-- history retention: finished runs older than iact.sync_history_days go
INSERT INTO iact.sync_runs (target_table, started_at, finished_at, status)
VALUES ('public.regress_old', now() - interval '400 days', now() - interval '400 days', 'success'),
       ('public.regress_old', now() - interval '10 days', now() - interval '10 days', 'success');
SET iact.sync_history_days = 90;
SELECT iact._sync_history_purge();
SELECT count(*) FROM iact.sync_runs WHERE target_table = 'public.regress_old';
SET iact.sync_history_days = 0;
SELECT iact._sync_history_purge();
RESET iact.sync_history_days;
DELETE FROM iact.sync_runs WHERE target_table = 'public.regress_old';
-- the batch size setting has bounds
SET iact.sync_batch_size = 0;
SET iact.sync_batch_size = 1000001;

-- the source was never written by any of these runs
\set cs_after `$IACT_MARIADB_CLI -e "CHECKSUM TABLE ivr.ticks EXTENDED"`
SELECT :'cs_before' = :'cs_after' AS source_unchanged;

SELECT iact.sync_remove_table('ticks'), iact.sync_remove_table('ticks_full');
DROP TABLE ticks, ticks_full;
