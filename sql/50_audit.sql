-- iact audit trail: enable_audit / disable_audit, the C trigger, append-only
-- enforcement, retention.  Output avoids ids, txids and times (they vary).
SET client_min_messages = notice;
-- start from an empty log (a superuser may truncate it)
TRUNCATE iact.audit_row, iact.audit_statement;

CREATE SCHEMA regress_audit;
CREATE TABLE regress_audit.account (
    id integer PRIMARY KEY,
    name text NOT NULL,
    balance numeric(12,2),
    password_hash text,
    updated_at timestamptz
);
-- the log in a stable shape: statements numbered in order
CREATE VIEW regress_audit.log AS
SELECT dense_rank() OVER (ORDER BY statement_id) AS stmt, row_no, table_name, operation,
       old_data, new_data, user_id
  FROM iact.audit_log;

\echo == refusals of enable_audit
SELECT iact.enable_audit(NULL);
SELECT iact.enable_audit('regress_audit.account', skip_unchanged => NULL);
SELECT iact.enable_audit('regress_audit.account', '{no_such_column}');
SELECT iact.enable_audit('regress_audit.account', ARRAY['name', NULL]);
SELECT iact.enable_audit('regress_audit.log');
SELECT iact.enable_audit('iact.audit_row');
SELECT iact.enable_audit('iact.audit_statement');
SELECT iact.enable_audit('regress_audit.no_such_table');
CREATE TABLE regress_audit.parted (id integer, k text) PARTITION BY LIST (k);
CREATE TABLE regress_audit.parted_a PARTITION OF regress_audit.parted FOR VALUES IN ('a');
CREATE TABLE regress_audit.parted_b PARTITION OF regress_audit.parted FOR VALUES IN ('b');
-- nothing was attached by the refused calls
SELECT count(*) FROM pg_trigger WHERE tgfoid = 'iact.audit_trigger()'::regprocedure;

\echo == INSERT, UPDATE, DELETE, TRUNCATE
SELECT iact.enable_audit('regress_audit.account', ignored_columns => '{password_hash}');
SELECT table_name, skip_unchanged, ignored_columns, enabled FROM iact.audited_tables;
SELECT tgname FROM pg_trigger WHERE tgrelid = 'regress_audit.account'::regclass ORDER BY tgname;
-- app.current_user_id unset: user_id is NULL
INSERT INTO regress_audit.account VALUES
    (1, 'alice', 10.50, 'h1', '2024-01-02 03:04:05+00'),
    (2, 'bob', NULL, 'h2', NULL);
SET app.current_user_id = 'agent-7';
UPDATE regress_audit.account SET balance = balance + 1 WHERE id = 1;
-- only an ignored column changes: no audit row
UPDATE regress_audit.account SET password_hash = 'h3' WHERE id = 2;
-- nothing changes: no audit row (skip_unchanged)
UPDATE regress_audit.account SET name = name;
-- a statement that touches no row writes nothing
DELETE FROM regress_audit.account WHERE id = 99;
-- RESET leaves an empty placeholder: recorded as NULL, not ''
RESET app.current_user_id;
DELETE FROM regress_audit.account WHERE id = 2;
SET app.current_user_id = 'agent-8';
TRUNCATE regress_audit.account;
SELECT * FROM regress_audit.log ORDER BY stmt, row_no;
-- who, when, how many: one statement row each
SELECT operation, row_count, schema_name, role_name, application_name,
       txid > 0 AS has_txid, "timestamp" <= wall_clock AS ordered
  FROM iact.audit_statement ORDER BY id;

\echo == the audit rows belong to the transaction
BEGIN;
INSERT INTO regress_audit.account VALUES (3, 'carol', 1, NULL, NULL);
SELECT s.txid = txid_current() AS same_txid, s."timestamp" = now() AS transaction_time
  FROM iact.audit_statement s ORDER BY s.id DESC LIMIT 1;
SAVEPOINT sp;
INSERT INTO regress_audit.account VALUES (4, 'dave', 1, NULL, NULL);
ROLLBACK TO sp;
COMMIT;
BEGIN;
INSERT INTO regress_audit.account VALUES (5, 'erin', 1, NULL, NULL);
ROLLBACK;
SELECT stmt, operation, new_data->>'name' AS name FROM regress_audit.log WHERE stmt > 4 ORDER BY stmt;

\echo == options: skip_unchanged off, re-enabling replaces the options
SELECT iact.enable_audit('regress_audit.account', skip_unchanged => false);
SELECT table_name, skip_unchanged, ignored_columns FROM iact.audited_tables;
UPDATE regress_audit.account SET name = name;
UPDATE regress_audit.account SET password_hash = 'h4';
SELECT stmt, operation, old_data, new_data FROM regress_audit.log WHERE stmt > 5 ORDER BY stmt;

\echo == every type as to_jsonb() renders it
CREATE TYPE regress_audit.mood AS ENUM ('sad', 'happy');
CREATE TYPE regress_audit.pair AS (a integer, b text);
CREATE DOMAIN regress_audit.posint AS integer CHECK (VALUE > 0);
CREATE TABLE regress_audit.types (
    id bigint PRIMARY KEY, s smallint, f4 real, f8 double precision, n numeric, b boolean,
    d date, ts timestamp, tstz timestamptz, tm time, tz timetz, iv interval, u uuid,
    by bytea, ip inet, cidr cidr, c5 char(5), vc varchar(10), arr integer[], tarr text[],
    js json, jb jsonb, jbs jsonb, jba jsonb, m regress_audit.mood, p regress_audit.pair,
    dom regress_audit.posint, o oid, "odd ""name""" text, big text
);
-- big is stored out of line (TOAST), uncompressed
ALTER TABLE regress_audit.types ALTER COLUMN big SET STORAGE EXTERNAL;
SELECT iact.enable_audit('regress_audit.types');
INSERT INTO regress_audit.types VALUES
    (1, -3, 1.5, 0.1, 12345678901234567890.123, true, '2024-02-29', '2024-02-29 12:00:01.5',
     '2024-02-29 12:00:01.5+01', '23:59:59', '10:00+02', '1 day 2 hours', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11',
     '\x00ff', '10.0.0.1/8', '10.0.0.0/8', 'ab', 'xyz', '{1,NULL,3}', '{"a b","c\"d"}',
     '{"k": [1, "x"], "k": 2}', '{"z": 1, "a": {"n": null}}', '"just a string"', '[1, [2, 3]]',
     'happy', '(7,"x y")', 5, 42, 'quoted', repeat('long text ', 1000)),
    (2, NULL, 'NaN', '-Infinity', 'NaN', false, 'infinity', '-infinity', 'infinity', NULL, NULL, NULL, NULL,
     NULL, NULL, NULL, NULL, '', '{}', NULL, 'null', 'null', '0', '[]', NULL, '(,)', NULL, NULL, NULL, NULL);
SELECT x.id, l.new_data = to_jsonb(x) AS same_as_to_jsonb
  FROM regress_audit.types x
  JOIN iact.audit_log l ON l.table_name = 'types' AND (l.new_data->>'id')::bigint = x.id
 ORDER BY x.id;
SELECT jsonb_pretty(new_data - 'big') AS inserted FROM iact.audit_log
 WHERE table_name = 'types' ORDER BY row_no;
-- a TOASTed value that does not change is not "changed"; one that does, is
UPDATE regress_audit.types SET s = 1;
UPDATE regress_audit.types SET big = big || '!' WHERE id = 1;
SELECT operation, old_data->>'id' AS id, (SELECT array_agg(k ORDER BY k) FROM jsonb_object_keys(new_data) k) AS changed
  FROM iact.audit_log WHERE table_name = 'types' AND operation = 'UPDATE'
 ORDER BY statement_id, row_no;
-- a dropped column disappears from the rows
ALTER TABLE regress_audit.types DROP COLUMN big;
DELETE FROM regress_audit.types WHERE id = 2;
SELECT old_data ? 'big' AS has_big, old_data->>'s' AS s FROM iact.audit_log
 WHERE table_name = 'types' AND operation = 'DELETE';

\echo == a table without a primary key keeps the whole old row on UPDATE
CREATE TABLE regress_audit.nokey (a integer, b text);
SELECT iact.enable_audit('regress_audit.nokey');
INSERT INTO regress_audit.nokey VALUES (1, 'x'), (1, 'y');
UPDATE regress_audit.nokey SET b = 'z' WHERE b = 'y';
SELECT operation, old_data, new_data FROM iact.audit_log WHERE table_name = 'nokey'
 ORDER BY statement_id, row_no;

\echo == a partitioned table: one audit for every partition, rows moving between partitions
SELECT iact.enable_audit('regress_audit.parted');
INSERT INTO regress_audit.parted VALUES (1, 'a'), (2, 'b');
UPDATE regress_audit.parted SET k = 'b' WHERE id = 1;
SELECT table_name, operation, old_data, new_data FROM iact.audit_log
 WHERE schema_name = 'regress_audit' AND table_name LIKE 'parted%' ORDER BY statement_id, row_no;

\echo == large statements: batches of 1000 rows, numbered without gaps
CREATE TABLE regress_audit.many (id integer PRIMARY KEY, v integer);
SELECT iact.enable_audit('regress_audit.many');
INSERT INTO regress_audit.many SELECT g, g FROM generate_series(1, 2500) g;
UPDATE regress_audit.many SET v = v + 1 WHERE id % 2 = 0;
DELETE FROM regress_audit.many;
SELECT operation, count(*), min(row_no), max(row_no), count(DISTINCT row_no),
       bool_and(coalesce(old_data, new_data) ? 'id') AS all_have_id
  FROM iact.audit_log WHERE table_name = 'many' GROUP BY statement_id, operation ORDER BY statement_id;
SELECT operation, row_count FROM iact.audit_statement WHERE table_name = 'many' ORDER BY id;

\echo == upserts and COPY are audited too
CREATE TABLE regress_audit.upsert (id integer PRIMARY KEY, n integer);
SELECT iact.enable_audit('regress_audit.upsert');
INSERT INTO regress_audit.upsert VALUES (1, 1);
INSERT INTO regress_audit.upsert VALUES (1, 10), (2, 20) ON CONFLICT (id) DO UPDATE SET n = excluded.n;
COPY regress_audit.upsert FROM stdin;
3	30
4	\N
\.
SELECT operation, old_data, new_data FROM iact.audit_log WHERE table_name = 'upsert'
 ORDER BY statement_id, row_no;

\echo == the trigger function refuses to be used any other way
SELECT iact.audit_trigger();
CREATE TABLE regress_audit.manual (a integer);
CREATE TRIGGER byhand AFTER INSERT ON regress_audit.manual
    FOR EACH ROW EXECUTE FUNCTION iact.audit_trigger('t');
INSERT INTO regress_audit.manual VALUES (1);
DROP TRIGGER byhand ON regress_audit.manual;
CREATE TRIGGER byhand AFTER INSERT ON regress_audit.manual
    FOR EACH STATEMENT EXECUTE FUNCTION iact.audit_trigger('t');
INSERT INTO regress_audit.manual VALUES (1);
DROP TRIGGER byhand ON regress_audit.manual;
CREATE TRIGGER byhand AFTER INSERT ON regress_audit.manual REFERENCING NEW TABLE AS n
    FOR EACH STATEMENT EXECUTE FUNCTION iact.audit_trigger();
INSERT INTO regress_audit.manual VALUES (1);
DROP TRIGGER byhand ON regress_audit.manual;

\echo == append-only, even for the owner of an audited table
CREATE ROLE regress_audit_owner;
CREATE TABLE regress_audit.owned (id integer PRIMARY KEY, v text);
ALTER TABLE regress_audit.owned OWNER TO regress_audit_owner;
GRANT USAGE ON SCHEMA regress_audit TO regress_audit_owner;
SELECT iact.enable_audit('regress_audit.owned');
SET ROLE regress_audit_owner;
-- the owner is audited without any privilege on the audit tables
INSERT INTO regress_audit.owned VALUES (1, 'one');
UPDATE regress_audit.owned SET v = 'uno';
-- and cannot read, change or remove the log
SELECT count(*) FROM iact.audit_row;
UPDATE iact.audit_row SET new_data = '{}';
DELETE FROM iact.audit_statement;
TRUNCATE iact.audit_row;
RESET ROLE;
-- even when a superuser grants the privileges, the guard refuses
GRANT USAGE ON SCHEMA iact TO regress_audit_owner;
GRANT SELECT, UPDATE, DELETE, TRUNCATE ON iact.audit_row, iact.audit_statement TO regress_audit_owner;
SET ROLE regress_audit_owner;
SELECT count(*) > 0 AS can_read FROM iact.audit_row;
UPDATE iact.audit_row SET new_data = '{}';
DELETE FROM iact.audit_row;
DELETE FROM iact.audit_statement;
UPDATE iact.audit_statement SET user_id = 'someone else';
TRUNCATE iact.audit_row;
TRUNCATE iact.audit_statement;
-- the view is not updatable either
UPDATE iact.audit_log SET user_id = 'x';
-- nor can the owner call the retention function or drop the evidence wholesale
SELECT iact.purge_audit_log('0');
RESET ROLE;
SELECT role_name, operation, row_count FROM iact.audit_statement WHERE table_name = 'owned' ORDER BY id;
REVOKE ALL ON iact.audit_row, iact.audit_statement FROM regress_audit_owner;
REVOKE USAGE ON SCHEMA iact FROM regress_audit_owner;

\echo == who may enable auditing: EXECUTE on the functions and ownership of the table
CREATE ROLE regress_audit_manager;
CREATE TABLE regress_audit.managed (id integer PRIMARY KEY);
GRANT USAGE ON SCHEMA iact, regress_audit TO regress_audit_manager;
GRANT EXECUTE ON FUNCTION iact.enable_audit(regclass, text[], boolean),
                          iact.disable_audit(regclass, boolean) TO regress_audit_manager;
SET ROLE regress_audit_manager;
-- not the owner
SELECT iact.enable_audit('regress_audit.managed');
SELECT iact.disable_audit('regress_audit.managed');
RESET ROLE;
ALTER TABLE regress_audit.managed OWNER TO regress_audit_manager;
SET ROLE regress_audit_manager;
-- the owner, without EXECUTE on the trigger function
SELECT iact.enable_audit('regress_audit.managed');
RESET ROLE;
GRANT EXECUTE ON FUNCTION iact.audit_trigger() TO regress_audit_manager;
SET ROLE regress_audit_manager;
SELECT iact.enable_audit('regress_audit.managed');
INSERT INTO regress_audit.managed VALUES (1);
SELECT iact.disable_audit('regress_audit.managed');
RESET ROLE;
SELECT role_name, operation, new_data FROM iact.audit_log WHERE table_name = 'managed';
REVOKE ALL ON FUNCTION iact.enable_audit(regclass, text[], boolean), iact.disable_audit(regclass, boolean),
                       iact.audit_trigger() FROM regress_audit_manager;
REVOKE USAGE ON SCHEMA iact FROM regress_audit_manager;

\echo == disable_audit
SELECT iact.disable_audit('regress_audit.account');
SELECT iact.disable_audit('regress_audit.account');
SELECT iact.disable_audit(NULL);
INSERT INTO regress_audit.account VALUES (6, 'frank', 1, NULL, NULL);
SELECT count(*) AS rows_for_frank FROM iact.audit_log WHERE new_data->>'name' = 'frank';
SELECT table_name FROM iact.audited_tables ORDER BY table_name::text;

\echo == retention
SELECT iact.purge_audit_log(NULL);
SELECT iact.purge_audit_log('-1 day');
SELECT iact.purge_audit_log('1 day', 0);
SELECT iact.purge_audit_log('1 day', 2000000);
SELECT iact.purge_audit_log('1 day', 10, 0);
-- nothing is a day old yet
SELECT iact.purge_audit_log('1 day');
-- age the "many" statements and the TRUNCATE (a superuser may correct the log)
UPDATE iact.audit_statement SET "timestamp" = "timestamp" - interval '100 days'
 WHERE table_name = 'many' OR operation = 'TRUNCATE';
SELECT count(*) AS entries_before FROM iact.audit_log;
-- two batches of 1000 rows: 2000 rows of the oldest statement
SELECT iact.purge_audit_log('90 days', 1000, 2);
SELECT count(*) AS left_of_many FROM iact.audit_log WHERE table_name = 'many';
-- the rest: 2500 + 1250 + 500 rows of "many", and the TRUNCATE entry
SELECT iact.purge_audit_log('90 days', 1000);
SELECT count(*) AS left_of_many FROM iact.audit_log WHERE table_name = 'many' OR operation = 'TRUNCATE';
SELECT iact.purge_audit_log('90 days', 1000);
-- a role granted EXECUTE can purge (the function runs as its owner)
CREATE ROLE regress_audit_janitor;
GRANT USAGE ON SCHEMA iact TO regress_audit_janitor;
GRANT EXECUTE ON FUNCTION iact.purge_audit_log(interval, integer, integer) TO regress_audit_janitor;
UPDATE iact.audit_statement SET "timestamp" = "timestamp" - interval '100 days' WHERE table_name = 'nokey';
SET ROLE regress_audit_janitor;
SELECT iact.purge_audit_log('90 days');
DELETE FROM iact.audit_row;
RESET ROLE;
SELECT count(*) AS nokey_entries FROM iact.audit_log WHERE table_name = 'nokey';
-- the procedure commits after each batch; the role needs EXECUTE on it too
UPDATE iact.audit_statement SET "timestamp" = "timestamp" - interval '100 days' WHERE table_name = 'types';
SET ROLE regress_audit_janitor;
CALL iact.purge_audit_log_batched('90 days', 1);
RESET ROLE;
GRANT EXECUTE ON PROCEDURE iact.purge_audit_log_batched(interval, integer) TO regress_audit_janitor;
SET ROLE regress_audit_janitor;
CALL iact.purge_audit_log_batched('90 days', 1);
RESET ROLE;
SELECT count(*) AS types_entries FROM iact.audit_log WHERE table_name = 'types';

\echo == an index a DBA adds to an audit table is maintained by the writer
CREATE UNIQUE INDEX regress_audit_row_key ON iact.audit_row (statement_id, row_no);
CREATE TABLE regress_audit.indexed (id integer PRIMARY KEY);
SELECT iact.enable_audit('regress_audit.indexed');
INSERT INTO regress_audit.indexed SELECT generate_series(1, 1500);
SET enable_seqscan = off;
SET enable_bitmapscan = off;
EXPLAIN (COSTS OFF) SELECT count(*) FROM iact.audit_row WHERE statement_id = 1 AND row_no > 0;
SELECT count(*), min(r.row_no), max(r.row_no) FROM iact.audit_row r
 WHERE r.statement_id = (SELECT s.id FROM iact.audit_statement s WHERE s.table_name = 'indexed') AND r.row_no > 0;
RESET enable_seqscan;
RESET enable_bitmapscan;
DROP INDEX iact.regress_audit_row_key;
-- and so are constraints: the statement fails rather than store a row that breaks one
ALTER TABLE iact.audit_statement ADD CONSTRAINT regress_no_unknown_apps
    CHECK (application_name <> 'regress-forbidden');
SET application_name = 'regress-forbidden';
\set VERBOSITY terse
INSERT INTO regress_audit.indexed VALUES (2000);
\set VERBOSITY default
RESET application_name;
INSERT INTO regress_audit.indexed VALUES (2001);
ALTER TABLE iact.audit_statement DROP CONSTRAINT regress_no_unknown_apps;
SELECT count(*) FROM regress_audit.indexed WHERE id >= 2000;

\echo == privileges: PUBLIC gets nothing
SELECT p.oid::regprocedure AS function, has_function_privilege('public', p.oid, 'EXECUTE') AS public_execute
  FROM pg_proc p WHERE p.pronamespace = 'iact'::regnamespace
   AND p.proname IN ('enable_audit', 'disable_audit', 'audit_trigger', 'audit_log_guard', 'audit_tree',
                     'purge_audit_log', 'purge_audit_log_batched')
 ORDER BY p.oid::regprocedure::text;
SELECT c.relname, has_table_privilege('public', c.oid, 'SELECT') AS public_select
  FROM pg_class c WHERE c.relnamespace = 'iact'::regnamespace
   AND c.relname IN ('audit_log', 'audit_row', 'audit_statement', 'audited_tables', 'audit_uncovered')
 ORDER BY 1;
SELECT prosecdef, proconfig FROM pg_proc WHERE oid = 'iact.purge_audit_log(interval, integer, integer)'::regprocedure;
-- the log is part of a dump
SELECT c.relname FROM pg_extension e, unnest(e.extconfig) AS x(oid) JOIN pg_class c ON c.oid = x.oid
 WHERE e.extname = 'iact' AND c.relname LIKE 'audit%' ORDER BY 1;

\echo == clean up
DROP SCHEMA regress_audit CASCADE;
REVOKE USAGE ON SCHEMA iact FROM regress_audit_janitor;
REVOKE EXECUTE ON FUNCTION iact.purge_audit_log(interval, integer, integer) FROM regress_audit_janitor;
REVOKE EXECUTE ON PROCEDURE iact.purge_audit_log_batched(interval, integer) FROM regress_audit_janitor;
DROP ROLE regress_audit_owner;
DROP ROLE regress_audit_janitor;
DROP ROLE regress_audit_manager;
TRUNCATE iact.audit_row, iact.audit_statement;
RESET app.current_user_id;
