-- Batched backfills: CALL iact.backfill(name, target, set_sql, where_sql, batch_size, pause)

CREATE TABLE bf_people (id int PRIMARY KEY, first_name text, last_name text,
                        full_name text, n int NOT NULL DEFAULT 0);
INSERT INTO bf_people (id, first_name, last_name)
  SELECT g, 'first' || g, 'last' || g FROM generate_series(1, 2500) g;
-- rows 2001..2500 are already in the new shape: the WHERE skips them
UPDATE bf_people SET full_name = 'done before' WHERE id > 2000;

-- progress NOTICEs carry timings: keep them out of the expected output
SET client_min_messages = warning;
CALL iact.backfill('bf_full_name', 'bf_people',
                   $$full_name = first_name || ' ' || last_name, n = n + 1$$,
                   'full_name IS NULL', 1000);
RESET client_min_messages;
SELECT count(*) FILTER (WHERE full_name = first_name || ' ' || last_name) AS backfilled,
       count(*) FILTER (WHERE full_name = 'done before') AS untouched,
       count(*) FILTER (WHERE n <> CASE WHEN id <= 2000 THEN 1 ELSE 0 END) AS wrong_counts
  FROM bf_people;
SELECT name, target_table, status, rows_done, batches, key_columns, last_key, upper_key, error_message
  FROM iact.backfill_runs WHERE name = 'bf_full_name';
SELECT name, status, rows_done, rows_per_second IS NOT NULL AS has_rate, finished_at IS NOT NULL AS finished
  FROM iact.backfill_progress WHERE name = 'bf_full_name';

-- calling a finished backfill again does nothing
CALL iact.backfill('bf_full_name', 'bf_people',
                   $$full_name = first_name || ' ' || last_name, n = n + 1$$,
                   'full_name IS NULL', 1000);
-- the same name with another definition is refused
CALL iact.backfill('bf_full_name', 'bf_people', 'n = 0');

-- an interrupted backfill resumes after its last committed batch: every row exactly once
CREATE TABLE bf_calls (queue text, id int, seconds int, minutes numeric, n int NOT NULL DEFAULT 0,
                       PRIMARY KEY (queue, id));
INSERT INTO bf_calls (queue, id, seconds)
  SELECT q, g, g * 7 FROM unnest(ARRAY['billing', 'sales', 'support']) q, generate_series(1, 500) g;
SET regress.fail_at_id = 300;   -- the batch holding ('sales', 300) fails
SET client_min_messages = warning;
CALL iact.backfill('bf_minutes', 'bf_calls',
  $$minutes = seconds / 60.0, n = n + 1 + CASE WHEN queue = 'sales' AND id = current_setting('regress.fail_at_id')::int THEN id / 0 ELSE 0 END$$,
  NULL, 200);
RESET client_min_messages;
SELECT status, rows_done, batches, last_key, upper_key, error_message
  FROM iact.backfill_runs WHERE name = 'bf_minutes';
SELECT count(*) FILTER (WHERE n = 1) AS done_once, count(*) FILTER (WHERE n = 0) AS not_yet FROM bf_calls;
SET regress.fail_at_id = 0;
\set VERBOSITY terse
CALL iact.backfill('bf_minutes', 'bf_calls',
  $$minutes = seconds / 60.0, n = n + 1 + CASE WHEN queue = 'sales' AND id = current_setting('regress.fail_at_id')::int THEN id / 0 ELSE 0 END$$,
  NULL, 200);
\set VERBOSITY default
SELECT status, rows_done, batches, last_key, error_message FROM iact.backfill_runs WHERE name = 'bf_minutes';
SELECT count(*) AS rows, min(n) AS min_n, max(n) AS max_n,
       count(*) FILTER (WHERE minutes = seconds / 60.0) AS converted FROM bf_calls;

-- keys are stored in one style: a resume under another DateStyle continues at the right key
CREATE TABLE bf_days (d date PRIMARY KEY, n int NOT NULL DEFAULT 0);
INSERT INTO bf_days SELECT '2024-01-01'::date + g FROM generate_series(0, 11) g;
SET DateStyle = 'SQL, DMY';
SET regress.fail_at_day = '2024-01-03';
SET client_min_messages = warning;
CALL iact.backfill('bf_days', 'bf_days',
  $$n = n + 1 + CASE WHEN d = current_setting('regress.fail_at_day')::date THEN 1 / (n - n) ELSE 0 END$$, NULL, 2);
RESET client_min_messages;
SELECT status, rows_done, last_key, upper_key FROM iact.backfill_runs WHERE name = 'bf_days';
SET DateStyle = 'ISO, MDY';
SET regress.fail_at_day = '1999-01-01';
SET client_min_messages = warning;
CALL iact.backfill('bf_days', 'bf_days',
  $$n = n + 1 + CASE WHEN d = current_setting('regress.fail_at_day')::date THEN 1 / (n - n) ELSE 0 END$$, NULL, 2);
RESET client_min_messages;
SELECT status, rows_done, batches FROM iact.backfill_runs WHERE name = 'bf_days';
SELECT count(*) FILTER (WHERE n = 1) AS once, count(*) FILTER (WHERE n <> 1) AS not_once FROM bf_days;
RESET DateStyle;

-- a deferred constraint broken by a batch fails that batch, which is recorded; earlier batches stay
CREATE TABLE bf_parent (id int PRIMARY KEY);
INSERT INTO bf_parent SELECT generate_series(1, 10);
CREATE TABLE bf_child (id int PRIMARY KEY, parent int REFERENCES bf_parent DEFERRABLE INITIALLY DEFERRED);
INSERT INTO bf_child SELECT g, g FROM generate_series(1, 10) g;
CALL iact.backfill('bf_child', 'bf_child', 'parent = CASE WHEN id = 7 THEN 99 ELSE parent + 0 END', NULL, 5);
SELECT status, rows_done, batches, last_key, error_message FROM iact.backfill_runs WHERE name = 'bf_child';
SELECT count(*) AS dangling FROM bf_child WHERE parent NOT IN (SELECT id FROM bf_parent);

-- an empty table is done at once
CREATE TABLE bf_empty (id int PRIMARY KEY, v int);
SET client_min_messages = warning;
CALL iact.backfill('bf_empty', 'bf_empty', 'v = 1');
RESET client_min_messages;
SELECT status, rows_done, batches, upper_key FROM iact.backfill_runs WHERE name = 'bf_empty';

-- refusals
CALL iact.backfill(NULL, 'bf_people', 'n = 1');
CALL iact.backfill('', 'bf_people', 'n = 1');
CALL iact.backfill('x', NULL, 'n = 1');
CALL iact.backfill('x', 'no_such_table', 'n = 1');
CALL iact.backfill('x', 'bf_people', NULL);
CALL iact.backfill('x', 'bf_people', 'n = 1', '');
CALL iact.backfill('x', 'bf_people', 'n = 1', NULL, 0);
CALL iact.backfill('x', 'bf_people', 'n = 1', NULL, NULL);
CALL iact.backfill('x', 'bf_people', 'n = 1', NULL, 1000, '-1 second');
CALL iact.backfill('x', 'bf_people', 'n = 1', 'true; DROP TABLE bf_people; SELECT 1 WHERE true');
CREATE VIEW bf_view AS SELECT * FROM bf_people;
CALL iact.backfill('x', 'bf_view', 'n = 1');
CREATE TABLE bf_nokey (a int);
CALL iact.backfill('x', 'bf_nokey', 'a = 1');
BEGIN;
CALL iact.backfill('x', 'bf_people', 'n = 1');
ROLLBACK;
-- a set_sql that fails is recorded, and its error raised
CALL iact.backfill('bf_bad', 'bf_people', 'no_such_column = 1');
SELECT status, rows_done, error_message FROM iact.backfill_runs WHERE name = 'bf_bad';
SELECT count(*) AS runs_named_x FROM iact.backfill_runs WHERE name = 'x';

-- the UPDATE runs with the caller's rights
CREATE ROLE regress_backfiller;
GRANT USAGE ON SCHEMA iact TO regress_backfiller;
GRANT EXECUTE ON PROCEDURE iact.backfill(text, regclass, text, text, integer, interval) TO regress_backfiller;
GRANT SELECT ON bf_people TO regress_backfiller;
SET ROLE regress_backfiller;
CALL iact.backfill('bf_no_right', 'bf_people', 'n = n + 1');
RESET ROLE;
SELECT status, rows_done, error_message FROM iact.backfill_runs WHERE name = 'bf_no_right';
SELECT max(n) AS max_n_unchanged FROM bf_people;

DROP OWNED BY regress_backfiller;
DROP ROLE regress_backfiller;
DROP VIEW bf_view;
DROP TABLE bf_people, bf_calls, bf_empty, bf_nokey, bf_days, bf_child, bf_parent;

-- the key is the primary key's key columns, not its INCLUDE columns; a DEFERRABLE primary key is one too
CREATE TABLE bf_incl (id int, note text, n int NOT NULL DEFAULT 0, PRIMARY KEY (id) INCLUDE (note));
INSERT INTO bf_incl (id, note) SELECT g, 'note ' || g % 3 FROM generate_series(1, 10) g;
CREATE TABLE bf_defer (id int PRIMARY KEY DEFERRABLE INITIALLY DEFERRED, n int NOT NULL DEFAULT 0);
INSERT INTO bf_defer (id) SELECT generate_series(1, 10);
SET client_min_messages = warning;
CALL iact.backfill('bf_incl', 'bf_incl', 'n = n + 1', NULL, 4);
CALL iact.backfill('bf_defer', 'bf_defer', 'n = n + 1', NULL, 4);
RESET client_min_messages;
SELECT name, status, rows_done, batches, key_columns, last_key, upper_key
  FROM iact.backfill_runs WHERE name IN ('bf_incl', 'bf_defer') ORDER BY name;
SELECT (SELECT count(*) FROM bf_incl WHERE n = 1) AS incl_once, (SELECT count(*) FROM bf_defer WHERE n = 1) AS defer_once;
DROP TABLE bf_incl, bf_defer;

-- a failed backfill resumed after its table's primary key changed is refused (its saved keys
-- have the old key's columns); a primary key with INCLUDE columns, as an older build saved them
-- (key_columns {id,note}), still resumes
CREATE TABLE bf_rekey (id int PRIMARY KEY, k int NOT NULL DEFAULT 1, n int NOT NULL DEFAULT 0);
INSERT INTO bf_rekey (id) SELECT generate_series(1, 10);
SET client_min_messages = warning;
CALL iact.backfill('bf_rekey', 'bf_rekey', 'n = n + 10 / (id - 7)', NULL, 4);
RESET client_min_messages;
SELECT status, rows_done, key_columns, last_key, upper_key FROM iact.backfill_runs WHERE name = 'bf_rekey';
ALTER TABLE bf_rekey DROP CONSTRAINT bf_rekey_pkey, ADD PRIMARY KEY (id, k);
CALL iact.backfill('bf_rekey', 'bf_rekey', 'n = n + 10 / (id - 7)', NULL, 4);
SELECT status, rows_done, key_columns, last_key FROM iact.backfill_runs WHERE name = 'bf_rekey';
CREATE TABLE bf_incl_old (id int, note text, n int NOT NULL DEFAULT 0, PRIMARY KEY (id) INCLUDE (note));
INSERT INTO bf_incl_old (id, note) SELECT g, 'note ' || g FROM generate_series(1, 10) g;
UPDATE bf_incl_old SET n = 1 WHERE id <= 4;
INSERT INTO iact.backfill_runs (name, target_table, target_oid, set_sql, where_sql, key_columns,
                                last_key, upper_key, batch_size, pause_ms, rows_done, batches, status, started_by)
  VALUES ('bf_incl_old', 'public.bf_incl_old', 'bf_incl_old'::regclass, 'n = n + 1', NULL, '{id,note}',
          '{4,"note 4"}', '{10,"note 10"}', 4, 0, 4, 1, 'failed', current_user);
SET client_min_messages = warning;
CALL iact.backfill('bf_incl_old', 'bf_incl_old', 'n = n + 1', NULL, 4);
RESET client_min_messages;
SELECT status, rows_done, last_key FROM iact.backfill_runs WHERE name = 'bf_incl_old';
SELECT count(*) FILTER (WHERE n = 1) AS once FROM bf_incl_old;
DROP TABLE bf_rekey, bf_incl_old;

-- a partitioned table: its primary key is the partitioned index's key (in key order, not in
-- column order); without one it is refused like a plain table
CREATE TABLE bf_parted (region text, id int, n int NOT NULL DEFAULT 0, PRIMARY KEY (id, region))
  PARTITION BY LIST (region);
CREATE TABLE bf_parted_n PARTITION OF bf_parted FOR VALUES IN ('north');
CREATE TABLE bf_parted_s PARTITION OF bf_parted FOR VALUES IN ('south');
INSERT INTO bf_parted (region, id) SELECT r, g FROM unnest(ARRAY['north', 'south']) r, generate_series(1, 5) g;
SET client_min_messages = warning;
CALL iact.backfill('bf_parted', 'bf_parted', 'n = n + 1', NULL, 3);
RESET client_min_messages;
SELECT status, rows_done, batches, key_columns, last_key, upper_key FROM iact.backfill_runs WHERE name = 'bf_parted';
SELECT count(*) FILTER (WHERE n = 1) AS once, count(*) FILTER (WHERE n <> 1) AS not_once FROM bf_parted;
CREATE TABLE bf_parted_nokey (region text, n int) PARTITION BY LIST (region);
CALL iact.backfill('bf_parted_nokey', 'bf_parted_nokey', 'n = 1');
DROP TABLE bf_parted, bf_parted_nokey;
