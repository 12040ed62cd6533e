-- Direct writes (src/sync_direct.c): a plain target without triggers, rules,
-- row-level security or columns the sync does not write is written through the
-- table access method and the executor's own constraint and index routines
-- instead of statements.  Its constraints and every kind of index must hold
-- exactly as with statements: the contents are compared with a model built in
-- PostgreSQL, and amcheck verifies that every index has every row.
\set VERBOSITY default
\set SHOW_CONTEXT never
CREATE EXTENSION IF NOT EXISTS amcheck;
CREATE FUNCTION regress_indexes_ok(t regclass) RETURNS text LANGUAGE sql AS $$
    SELECT string_agg(c.relname || bt_index_check(c.oid, true)::text || ' checked', ', '
                      ORDER BY c.relname)
      FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid WHERE i.indrelid = t $$;

\! $IACT_MARIADB_CLI -e "CREATE TABLE dw (id int PRIMARY KEY, code varchar(10) NOT NULL, qty int, note varchar(50), changed_at datetime NOT NULL, KEY (changed_at)); INSERT INTO dw SELECT seq, CONCAT('C', seq), seq % 7, IF(seq % 3 = 0, NULL, REPEAT('n', seq % 40)), '2025-01-01' + INTERVAL seq MINUTE FROM seq_1_to_2500"
-- a unique secondary key, a CHECK, an expression index and a partial index
CREATE TABLE dw (id integer PRIMARY KEY, code text NOT NULL UNIQUE, qty integer CHECK (qty >= 0), note text,
    changed_at timestamp(0) NOT NULL);
CREATE INDEX dw_lower_code ON dw (lower(code));
CREATE INDEX dw_no_note ON dw (id) WHERE note IS NULL;
CREATE TABLE dw_inc (LIKE dw INCLUDING ALL);
-- the model: what the source holds, computed in PostgreSQL
CREATE TABLE dw_model AS
    SELECT g AS id, 'C' || g AS code, g % 7 AS qty, CASE WHEN g % 3 = 0 THEN NULL ELSE repeat('n', g % 40) END AS note,
           '2025-01-01'::timestamp + g * interval '1 minute' AS changed_at
      FROM generate_series(1, 2500) g;
SELECT iact.sync_add_table('regress_ivr', 'dw', 'dw', batch_size => 100, retention_days => 0) > 0 AS full_registered,
       iact.sync_add_table('regress_ivr', 'dw', 'dw_inc', watermark_column => 'changed_at', lookback => 0,
                           batch_size => 100, retention_days => 0) > 0 AS incremental_registered;

-- first loads (multi-inserts of 100 rows per batch)
SELECT target_table, status, rows_read, rows_inserted, rows_updated, rows_deleted, error, write_path
  FROM iact.sync_now('dw') UNION ALL
SELECT target_table, status, rows_read, rows_inserted, rows_updated, rows_deleted, error, write_path
  FROM iact.sync_now('dw_inc');
SELECT (SELECT count(*) FROM (TABLE dw EXCEPT TABLE dw_model) x) AS dw_not_in_model,
       (SELECT count(*) FROM (TABLE dw_model EXCEPT TABLE dw) x) AS model_not_in_dw,
       (SELECT count(*) FROM (TABLE dw_inc EXCEPT TABLE dw_model) x) AS inc_not_in_model,
       (SELECT count(*) FROM (TABLE dw_model EXCEPT TABLE dw_inc) x) AS model_not_in_inc;
SELECT regress_indexes_ok('dw') AS dw_indexes, regress_indexes_ok('dw_inc') AS dw_inc_indexes;
-- the indexes answer queries that use them
SET enable_seqscan = off;
SELECT count(*) AS by_lower_code FROM dw WHERE lower(code) = 'c1234';
SELECT count(*) AS without_note FROM dw WHERE note IS NULL;
RESET enable_seqscan;

-- 130 rows changed (their watermark moved; one of them then deleted: 129),
-- 10 deleted, 5 new: the merge
-- updates changed rows by tid, in place of the old ones; the incremental run
-- looks each key up in the primary key (and cannot see the deletes)
\! $IACT_MARIADB_CLI -e "UPDATE dw SET qty = qty + 100, note = CONCAT('changed ', id), changed_at = changed_at + INTERVAL 1 YEAR WHERE id % 20 = 1 OR id BETWEEN 2481 AND 2486; DELETE FROM dw WHERE id BETWEEN 1001 AND 1010; INSERT INTO dw SELECT seq, CONCAT('C', seq), 3, NULL, '2027-01-01' + INTERVAL seq MINUTE FROM seq_2501_to_2505"
UPDATE dw_model SET qty = qty + 100, note = 'changed ' || id, changed_at = changed_at + interval '1 year'
 WHERE id % 20 = 1 OR id BETWEEN 2481 AND 2486;
DELETE FROM dw_model WHERE id BETWEEN 1001 AND 1010;
INSERT INTO dw_model SELECT g, 'C' || g, 3, NULL, '2027-01-01'::timestamp + g * interval '1 minute'
  FROM generate_series(2501, 2505) g;
-- through the procedure: each batch committed on its own
CALL iact.sync_run('dw');
SELECT status, rows_read, rows_inserted, rows_updated, rows_deleted, source_count, target_count, error, write_path
  FROM iact.sync_runs WHERE target_table = 'public.dw' ORDER BY id DESC LIMIT 1;
SELECT status, rows_read, rows_inserted, rows_updated, rows_deleted, error, write_path FROM iact.sync_now('dw_inc');
SELECT (SELECT count(*) FROM (TABLE dw EXCEPT TABLE dw_model) x) AS dw_not_in_model,
       (SELECT count(*) FROM (TABLE dw_model EXCEPT TABLE dw) x) AS model_not_in_dw,
       (SELECT count(*) FROM (TABLE dw_inc EXCEPT TABLE dw_model) x) AS inc_not_in_model,
       (SELECT count(*) FROM (TABLE dw_model EXCEPT TABLE dw_inc) x) AS model_not_in_inc,
       (SELECT string_agg(id::text, ',' ORDER BY id) FROM (SELECT id FROM dw_inc EXCEPT SELECT id FROM dw_model) x)
           AS deleted_only_in_source;
SELECT regress_indexes_ok('dw') AS dw_indexes, regress_indexes_ok('dw_inc') AS dw_inc_indexes;
SET enable_seqscan = off;
SELECT count(*) AS without_note FROM dw WHERE note IS NULL;
SELECT code FROM dw WHERE lower(code) = 'c2503';
RESET enable_seqscan;

-- the target's constraints hold: a CHECK and a unique secondary key violated
-- by the source fail the run with PostgreSQL's own errors, nothing written
\! $IACT_MARIADB_CLI -e "UPDATE dw SET qty = -1, changed_at = '2028-01-01' WHERE id = 7"
SELECT target_table, status, rows_updated, error FROM iact.sync_now('dw') UNION ALL
SELECT target_table, status, rows_updated, error FROM iact.sync_now('dw_inc');
SELECT qty FROM dw WHERE id = 7 UNION ALL SELECT qty FROM dw_inc WHERE id = 7;
\! $IACT_MARIADB_CLI -e "UPDATE dw SET qty = 0, code = 'C9', changed_at = '2028-01-02' WHERE id = 7"
SELECT target_table, status, rows_updated, error FROM iact.sync_now('dw') UNION ALL
SELECT target_table, status, rows_updated, error FROM iact.sync_now('dw_inc');
\! $IACT_MARIADB_CLI -e "UPDATE dw SET code = 'C7', changed_at = '2028-01-03' WHERE id = 7"
SELECT target_table, status, rows_updated, error FROM iact.sync_now('dw') UNION ALL
SELECT target_table, status, rows_updated, error FROM iact.sync_now('dw_inc');
SELECT id, code, qty, changed_at FROM dw WHERE id = 7 UNION ALL SELECT id, code, qty, changed_at FROM dw_inc WHERE id = 7;
SELECT regress_indexes_ok('dw') AS dw_indexes, regress_indexes_ok('dw_inc') AS dw_inc_indexes;

-- the incremental update keeps the stored key as it is (1.0 stays 1.0)
\! $IACT_MARIADB_CLI -e "CREATE TABLE dw_num (id int PRIMARY KEY, val varchar(10), changed_at datetime); INSERT INTO dw_num VALUES (1, 'new', '2025-02-01'), (2, 'two', '2025-02-01')"
CREATE TABLE dw_num (id numeric PRIMARY KEY, val text, changed_at timestamp(0));
INSERT INTO dw_num VALUES (1.0, 'old', '2025-01-01');
SELECT iact.sync_add_table('regress_ivr', 'dw_num', 'dw_num', watermark_column => 'changed_at',
                           retention_days => 0) > 0 AS registered;
SELECT status, rows_read, rows_inserted, rows_updated, error FROM iact.sync_now('dw_num');
SELECT id::text, val FROM dw_num ORDER BY id;

-- a trigger on the target (here an audit-like one): written by statements, which fire it
CREATE TABLE dw_seen (id integer, op text);
-- (the sync runs it with search_path = pg_catalog, pg_temp: it names its schema)
CREATE FUNCTION regress_dw_seen() RETURNS trigger LANGUAGE plpgsql SET search_path = public
    AS $$ BEGIN INSERT INTO dw_seen VALUES (NEW.id, TG_OP); RETURN NEW; END $$;
CREATE TRIGGER seen AFTER INSERT OR UPDATE ON dw_num FOR EACH ROW EXECUTE FUNCTION regress_dw_seen();
\! $IACT_MARIADB_CLI -e "UPDATE dw_num SET val = 'newer', changed_at = '2025-03-01' WHERE id = 2; INSERT INTO dw_num VALUES (3, 'three', '2025-03-01')"
SELECT status, rows_inserted, rows_updated, error, write_path FROM iact.sync_now('dw_num');
SELECT * FROM dw_seen ORDER BY id;
DROP TABLE dw_seen CASCADE;
DROP TRIGGER seen ON dw_num;
DROP FUNCTION regress_dw_seen();

-- a target column the sync does not write takes its default: such a target is
-- written by statements, which fill it in
\! $IACT_MARIADB_CLI -e "CREATE TABLE dw_extra (id int PRIMARY KEY, val varchar(10)); INSERT INTO dw_extra VALUES (1, 'a'), (2, 'b')"
CREATE TABLE dw_extra (id integer PRIMARY KEY, val text, loaded_by text DEFAULT 'the sync');
SELECT iact.sync_add_table('regress_ivr', 'dw_extra', 'dw_extra') > 0 AS registered;
SELECT status, rows_inserted, error, write_path FROM iact.sync_now('dw_extra');
\! $IACT_MARIADB_CLI -e "UPDATE dw_extra SET val = 'B' WHERE id = 2; INSERT INTO dw_extra VALUES (3, 'c')"
SELECT status, rows_inserted, rows_updated, error, write_path FROM iact.sync_now('dw_extra');
SELECT * FROM dw_extra ORDER BY id;

-- a CHECK calling a SQL function that runs a query needs an active snapshot,
-- also in the procedure's batches after their commits (batch_size 1)
\! $IACT_MARIADB_CLI -e "CREATE TABLE dw_fn (id int PRIMARY KEY, qty int); INSERT INTO dw_fn VALUES (1, 1), (2, 2), (3, 3)"
CREATE FUNCTION regress_qty_ok(integer) RETURNS boolean LANGUAGE sql STABLE
    AS $$ SELECT $1 >= 0 AND EXISTS (SELECT 1 FROM pg_class WHERE oid = 'pg_class'::regclass) $$;
CREATE TABLE dw_fn (id integer PRIMARY KEY, qty integer CHECK (regress_qty_ok(qty)));
SELECT iact.sync_add_table('regress_ivr', 'dw_fn', 'dw_fn', batch_size => 1) > 0 AS registered;
CALL iact.sync_run('dw_fn');
\! $IACT_MARIADB_CLI -e "UPDATE dw_fn SET qty = qty * 10; INSERT INTO dw_fn VALUES (4, 4)"
CALL iact.sync_run('dw_fn');
SELECT status, rows_read, rows_inserted, rows_updated, error, write_path
  FROM iact.sync_runs WHERE target_table = 'public.dw_fn' ORDER BY id;
SELECT * FROM dw_fn ORDER BY id;

-- a domain's constraints hold, also for a NULL (which never reaches the
-- domain's input function): the rows that violate them are rejects
\! $IACT_MARIADB_CLI -e "CREATE TABLE dw_dom (id int PRIMARY KEY, qty int, note varchar(10)); INSERT INTO dw_dom VALUES (1, 5, 'x'), (2, -1, 'y'), (3, 7, NULL)"
CREATE DOMAIN regress_positive AS integer CHECK (VALUE > 0);
CREATE DOMAIN regress_required AS text NOT NULL;
CREATE TABLE dw_dom (id integer PRIMARY KEY, qty regress_positive, note regress_required);
SELECT iact.sync_add_table('regress_ivr', 'dw_dom', 'dw_dom') > 0 AS registered;
SELECT status, rows_read, rows_inserted, rows_rejected, error, write_path FROM iact.sync_now('dw_dom');
SELECT j.key, j.column_name, j.reason FROM iact.sync_rejects j JOIN iact.sync_runs u ON u.id = j.run_id
 WHERE u.target_table = 'public.dw_dom' ORDER BY j.key;
SELECT * FROM dw_dom;

-- a GENERATED ALWAYS identity column refuses the source's values (statements)
\! $IACT_MARIADB_CLI -e "CREATE TABLE dw_ident (id int PRIMARY KEY, val varchar(10)); INSERT INTO dw_ident VALUES (1, 'a')"
CREATE TABLE dw_ident (id integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY, val text);
SELECT iact.sync_add_table('regress_ivr', 'dw_ident', 'dw_ident') > 0 AS registered;
SELECT status, rows_inserted, error, write_path FROM iact.sync_now('dw_ident');

-- two source keys that become one in the target's type (fractions of a second
-- in a timestamp(0) key): the row would be changed twice by one batch
\! $IACT_MARIADB_CLI -e "CREATE TABLE dw_dup (k datetime(6) PRIMARY KEY, v varchar(10), changed_at datetime); INSERT INTO dw_dup VALUES ('2025-01-01 00:00:00.1', 'a', '2025-02-01'), ('2025-01-01 00:00:00.2', 'b', '2025-02-01')"
CREATE TABLE dw_dup (k timestamp(0) PRIMARY KEY, v text, changed_at timestamp(0));
INSERT INTO dw_dup VALUES ('2025-01-01 00:00:00', 'old', '2025-01-01');
SELECT iact.sync_add_table('regress_ivr', 'dw_dup', 'dw_dup', watermark_column => 'changed_at',
                           retention_days => 0) > 0 AS registered;
SELECT status, rows_updated, error FROM iact.sync_now('dw_dup');
SELECT * FROM dw_dup;

-- target rows above the source's highest key are read through a cursor and
-- deleted batch_size at a time; those older than the retention cutoff are
-- not (they are the purge's: rows_purged)
\! $IACT_MARIADB_CLI -e "CREATE TABLE dw_tail (id int PRIMARY KEY, d datetime); INSERT INTO dw_tail VALUES (1, '2099-01-01'), (2, '2099-01-01'), (3, '2099-01-01')"
CREATE TABLE dw_tail (id integer PRIMARY KEY, d timestamp(0));
INSERT INTO dw_tail SELECT g, CASE WHEN g IN (7, 19) THEN '2000-01-01'::timestamp ELSE '2099-01-01' END
  FROM generate_series(1, 20) g;
SELECT iact.sync_add_table('regress_ivr', 'dw_tail', 'dw_tail', batch_size => 5, retention_column => 'd',
                           retention_days => 30) > 0 AS registered;
SELECT status, rows_read, rows_deleted, rows_purged, source_count, target_count, error FROM iact.sync_now('dw_tail');
SELECT string_agg(id::text, ',' ORDER BY id) AS left_in_target FROM dw_tail;

SELECT iact.sync_remove_table(t) FROM unnest(ARRAY['dw', 'dw_inc', 'dw_num', 'dw_extra', 'dw_ident', 'dw_dup', 'dw_tail', 'dw_fn', 'dw_dom']) t;
DROP TABLE dw, dw_inc, dw_model, dw_num, dw_extra, dw_ident, dw_dup, dw_tail, dw_fn, dw_dom;
DROP DOMAIN regress_positive, regress_required;
DROP FUNCTION regress_qty_ok(integer);
DROP FUNCTION regress_indexes_ok(regclass);
DROP EXTENSION amcheck;
\! $IACT_MARIADB_CLI -e "DROP TABLE dw, dw_num, dw_extra, dw_ident, dw_dup, dw_tail, dw_fn, dw_dom"
