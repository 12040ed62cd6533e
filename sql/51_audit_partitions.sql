-- iact audit trail on partitioned tables and inheritance trees: statements
-- naming the parent and statements naming a partition / child are each
-- recorded exactly once, under the table the statement names; TRUNCATE once
-- per table it empties.  Output avoids ids, txids and times (they vary).
SET client_min_messages = notice;
CREATE SCHEMA regress_auditp;
-- this file's entries, statements numbered in order
CREATE VIEW regress_auditp.log AS
SELECT dense_rank() OVER (ORDER BY statement_id) AS stmt, row_no, table_name, operation,
       old_data, new_data
  FROM iact.audit_log WHERE schema_name = 'regress_auditp';
-- every audit trigger in this schema
CREATE VIEW regress_auditp.triggers AS
SELECT t.tgrelid::regclass AS table_name, string_agg(t.tgname, ' ' ORDER BY t.tgname) AS triggers
  FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
 WHERE t.tgfoid = 'iact.audit_trigger()'::regprocedure
   AND c.relnamespace = 'regress_auditp'::regnamespace
 GROUP BY t.tgrelid;

\echo == a partitioned table with a sub-partitioned partition
CREATE TABLE regress_auditp.pt (id integer, k text, v integer, secret text) PARTITION BY LIST (k);
CREATE TABLE regress_auditp.pt_a PARTITION OF regress_auditp.pt FOR VALUES IN ('a');
CREATE TABLE regress_auditp.pt_b PARTITION OF regress_auditp.pt FOR VALUES IN ('b')
    PARTITION BY RANGE (id);
CREATE TABLE regress_auditp.pt_b1 PARTITION OF regress_auditp.pt_b FOR VALUES FROM (0) TO (1000);
SELECT iact.enable_audit('regress_auditp.pt', '{secret}');
-- every level gets the statement triggers; TRUNCATE only where there is storage
SELECT * FROM regress_auditp.triggers ORDER BY table_name::text;
-- the options are the parent's everywhere
SELECT table_name, skip_unchanged, ignored_columns FROM iact.audited_tables
 WHERE schema_name = 'regress_auditp' ORDER BY table_name::text;

-- each change once: via the parent (recorded under the parent) and aimed at a
-- partition or sub-partition (recorded under it)
INSERT INTO regress_auditp.pt VALUES (1, 'a', 1, 's'), (2, 'b', 2, 's');
INSERT INTO regress_auditp.pt_a VALUES (3, 'a', 3, 's');
INSERT INTO regress_auditp.pt_b VALUES (4, 'b', 4, 's');
INSERT INTO regress_auditp.pt_b1 VALUES (5, 'b', 5, 's');
UPDATE regress_auditp.pt SET v = v + 10 WHERE id IN (1, 4);
UPDATE regress_auditp.pt_a SET v = 0 WHERE id = 3;
UPDATE regress_auditp.pt_b1 SET v = 50 WHERE id = 5;
-- a row moving between partitions through the parent: DELETE + INSERT inside one UPDATE
UPDATE regress_auditp.pt SET k = 'b' WHERE id = 3;
DELETE FROM regress_auditp.pt WHERE id = 4;
DELETE FROM regress_auditp.pt_b1 WHERE id = 5;
COPY regress_auditp.pt FROM stdin;
6	a	6	s
7	b	7	s
\.
COPY regress_auditp.pt_a FROM stdin;
8	a	8	s
\.
COPY regress_auditp.pt_b1 FROM stdin;
9	b	9	s
\.
SELECT stmt, row_no, table_name, operation, old_data, new_data FROM regress_auditp.log
 ORDER BY stmt, row_no;
-- TRUNCATE: once per table it empties (a partitioned table has no rows of its own)
TRUNCATE regress_auditp.pt_a;
SELECT table_name, operation FROM regress_auditp.log WHERE stmt = (SELECT max(stmt) FROM regress_auditp.log);
TRUNCATE regress_auditp.pt;
SELECT table_name, count(*) FROM iact.audit_log
 WHERE schema_name = 'regress_auditp' AND operation = 'TRUNCATE'
 GROUP BY table_name ORDER BY table_name;
-- no change was recorded twice
SELECT count(*) AS duplicates FROM (
    SELECT operation, old_data, new_data FROM iact.audit_log
     WHERE schema_name = 'regress_auditp' AND operation <> 'TRUNCATE'
     GROUP BY 1, 2, 3 HAVING count(*) > 1) d;

\echo == partitions added later are reported by iact.audit_uncovered until enable_audit runs again
CREATE TABLE regress_auditp.pt_c PARTITION OF regress_auditp.pt FOR VALUES IN ('c');
CREATE TABLE regress_auditp.pt_d (id integer, k text, v integer, secret text);
ALTER TABLE regress_auditp.pt ATTACH PARTITION regress_auditp.pt_d FOR VALUES IN ('d');
CREATE TABLE regress_auditp.pt_b2 PARTITION OF regress_auditp.pt_b FOR VALUES FROM (1000) TO (2000);
SELECT table_name, audited_parent FROM iact.audit_uncovered
 WHERE table_name::text LIKE 'regress_auditp.%' ORDER BY table_name::text;
-- and by iact.health()
SELECT status, value, detail FROM iact.health() WHERE check_name = 'audit_uncovered';
-- through the parent they are audited already; aimed at them, not yet
INSERT INTO regress_auditp.pt VALUES (10, 'c', 10, 's');
INSERT INTO regress_auditp.pt_c VALUES (11, 'c', 11, 's');
SELECT table_name, operation, new_data FROM regress_auditp.log WHERE new_data->>'id' IN ('10', '11');
SELECT iact.enable_audit('regress_auditp.pt', '{secret}');
SELECT count(*) AS uncovered FROM iact.audit_uncovered WHERE table_name::text LIKE 'regress_auditp.%';
SELECT status, value, detail FROM iact.health() WHERE check_name = 'audit_uncovered';
INSERT INTO regress_auditp.pt_c VALUES (12, 'c', 12, 's');
INSERT INTO regress_auditp.pt_d VALUES (13, 'd', 13, 's');
INSERT INTO regress_auditp.pt_b2 VALUES (1500, 'b', 14, 's');
SELECT table_name, operation, new_data FROM regress_auditp.log
 WHERE (new_data->>'id')::integer IN (12, 13, 1500) ORDER BY stmt;

\echo == a partition may be audited on its own (with options of its own)
CREATE TABLE regress_auditp.solo (id integer, k text) PARTITION BY LIST (k);
CREATE TABLE regress_auditp.solo_a PARTITION OF regress_auditp.solo FOR VALUES IN ('a');
SELECT iact.enable_audit('regress_auditp.solo_a', skip_unchanged => false);
INSERT INTO regress_auditp.solo VALUES (1, 'a');
INSERT INTO regress_auditp.solo_a VALUES (2, 'a');
UPDATE regress_auditp.solo_a SET id = id;
SELECT table_name, operation, old_data, new_data FROM regress_auditp.log
 WHERE table_name LIKE 'solo%' ORDER BY stmt, row_no;

\echo == an inheritance parent and its child
CREATE TABLE regress_auditp.ih (id integer, v integer);
CREATE TABLE regress_auditp.ih_c (extra text) INHERITS (regress_auditp.ih);
SELECT iact.enable_audit('regress_auditp.ih');
SELECT * FROM regress_auditp.triggers WHERE table_name::text LIKE '%ih%' ORDER BY table_name::text;
INSERT INTO regress_auditp.ih VALUES (1, 1);
INSERT INTO regress_auditp.ih_c VALUES (2, 2, 'x');
-- through the parent: rows of the child too, in the parent's columns
UPDATE regress_auditp.ih SET v = v + 1;
UPDATE regress_auditp.ih_c SET extra = 'y';
DELETE FROM regress_auditp.ih WHERE id = 2;
INSERT INTO regress_auditp.ih_c VALUES (3, 3, 'z');
DELETE FROM regress_auditp.ih_c WHERE id = 3;
COPY regress_auditp.ih FROM stdin;
4	4
\.
COPY regress_auditp.ih_c FROM stdin;
5	5	w
\.
SELECT stmt, row_no, table_name, operation, old_data, new_data FROM regress_auditp.log
 WHERE table_name LIKE 'ih%' ORDER BY stmt, row_no;
-- TRUNCATE ONLY the parent, the child, then the parent with its child
TRUNCATE ONLY regress_auditp.ih;
TRUNCATE regress_auditp.ih_c;
INSERT INTO regress_auditp.ih_c VALUES (6, 6, 'v');
TRUNCATE regress_auditp.ih;
SELECT stmt, table_name, operation FROM regress_auditp.log
 WHERE table_name LIKE 'ih%' AND operation = 'TRUNCATE' ORDER BY stmt, table_name;
SELECT count(*) AS duplicates FROM (
    SELECT operation, old_data, new_data FROM iact.audit_log
     WHERE schema_name = 'regress_auditp' AND operation <> 'TRUNCATE'
     GROUP BY 1, 2, 3 HAVING count(*) > 1) d;
-- a child inherited later is reported
CREATE TABLE regress_auditp.ih_late (id integer, v integer);
ALTER TABLE regress_auditp.ih_late INHERIT regress_auditp.ih;
SELECT table_name, audited_parent FROM iact.audit_uncovered
 WHERE table_name::text LIKE 'regress_auditp.%' ORDER BY table_name::text;

\echo == the owner of the parent must own every partition / child
CREATE ROLE regress_auditp_owner;
GRANT USAGE ON SCHEMA iact TO regress_auditp_owner;
GRANT EXECUTE ON FUNCTION iact.enable_audit(regclass, text[], boolean),
                          iact.disable_audit(regclass, boolean),
                          iact.audit_trigger() TO regress_auditp_owner;
GRANT USAGE, CREATE ON SCHEMA regress_auditp TO regress_auditp_owner;
CREATE TABLE regress_auditp.owned (id integer, k text) PARTITION BY LIST (k);
CREATE TABLE regress_auditp.owned_a PARTITION OF regress_auditp.owned FOR VALUES IN ('a');
ALTER TABLE regress_auditp.owned OWNER TO regress_auditp_owner;
SET ROLE regress_auditp_owner;
SELECT iact.enable_audit('regress_auditp.owned');
SELECT iact.disable_audit('regress_auditp.owned');
RESET ROLE;
ALTER TABLE regress_auditp.owned_a OWNER TO regress_auditp_owner;
SET ROLE regress_auditp_owner;
SELECT iact.enable_audit('regress_auditp.owned');
RESET ROLE;
SELECT * FROM regress_auditp.triggers WHERE table_name::text LIKE '%owned%' ORDER BY table_name::text;
SET ROLE regress_auditp_owner;
SELECT iact.disable_audit('regress_auditp.owned');
RESET ROLE;
SELECT * FROM regress_auditp.triggers WHERE table_name::text LIKE '%owned%' ORDER BY table_name::text;

\echo == disable_audit removes the triggers of every level
SELECT iact.disable_audit('regress_auditp.pt');
SELECT iact.disable_audit('regress_auditp.ih');
SELECT iact.disable_audit('regress_auditp.solo');
SELECT * FROM regress_auditp.triggers ORDER BY table_name::text;
SELECT count(*) AS uncovered FROM iact.audit_uncovered WHERE table_name::text LIKE 'regress_auditp.%';
SELECT count(*) AS entries_before FROM iact.audit_log WHERE schema_name = 'regress_auditp';
INSERT INTO regress_auditp.pt VALUES (20, 'a', 20, 's');
INSERT INTO regress_auditp.pt_b1 VALUES (21, 'b', 21, 's');
UPDATE regress_auditp.pt_a SET v = 0;
DELETE FROM regress_auditp.pt;
INSERT INTO regress_auditp.ih_c VALUES (22, 22, 'u');
TRUNCATE regress_auditp.ih;
SELECT count(*) AS entries_after FROM iact.audit_log WHERE schema_name = 'regress_auditp';
SELECT iact.disable_audit('regress_auditp.pt');

\echo == clean up
DROP SCHEMA regress_auditp CASCADE;
REVOKE USAGE ON SCHEMA iact FROM regress_auditp_owner;
REVOKE EXECUTE ON FUNCTION iact.enable_audit(regclass, text[], boolean),
                           iact.disable_audit(regclass, boolean),
                           iact.audit_trigger() FROM regress_auditp_owner;
DROP ROLE regress_auditp_owner;

-- leave the log empty for the tests that follow (a superuser may truncate it)
TRUNCATE iact.audit_row, iact.audit_statement;
