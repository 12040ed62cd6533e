-- The no-overlap check, find_overlaps and the person's own equality agree
-- (review of issue 11).  Each case below let an overlap through, or made
-- find_overlaps fail, before the fix:
--   1. a person column under a nondeterministic collation, probed through an
--      index under "C": the trigger accepted 'Alice' and 'alice' overlapping,
--      which the column (and find_overlaps) call the same person
--   2. members whose probe indexes compare persons under different
--      collations: find_overlaps (so enforce_no_overlap and health) failed
--      with "could not determine which collation to use"
--   3. a person type whose equality is not pg_catalog's "=" (citext):
--      find_overlaps compared persons with text's "=", missed the overlap of
--      'Bob' and 'bob' already in the table, and enforce_no_overlap accepted
--      the group
--   4. a collatable time type: every write failed inside the trigger
SET client_min_messages = warning;
\set SHOW_CONTEXT never
CREATE EXTENSION IF NOT EXISTS citext;

-- 1. nondeterministic column, deterministic index: refused
CREATE COLLATION regress_eq_ci (provider = icu, locale = 'und-u-ks-level2', deterministic = false);
CREATE TABLE regress_eq_ci_t (id int PRIMARY KEY, person text COLLATE regress_eq_ci NOT NULL,
                              s int NOT NULL, e int NOT NULL);
CREATE INDEX ON regress_eq_ci_t (person COLLATE "C", s);
SELECT iact.enforce_no_overlap('eq_ci', ARRAY['regress_eq_ci_t']::regclass[], 'person', 's', 'e');
INSERT INTO regress_eq_ci_t VALUES (1, 'Alice', 1, 5), (2, 'alice', 2, 6);
-- the column calls them one person
SELECT count(DISTINCT person) AS persons FROM regress_eq_ci_t;
SELECT count(*) AS members FROM iact.no_overlap_members('eq_ci');

-- 2. members under different collations: refused with a hint, then accepted
-- once both probe indexes use one collation, and checked across the two
CREATE TABLE regress_eq_c (id int PRIMARY KEY, person text COLLATE "C" NOT NULL, s int NOT NULL, e int NOT NULL);
CREATE TABLE regress_eq_posix (id int PRIMARY KEY, person text COLLATE "POSIX" NOT NULL,
                               s int NOT NULL, e int NOT NULL);
CREATE INDEX ON regress_eq_c (person, s);
CREATE INDEX regress_eq_posix_idx ON regress_eq_posix (person, s);
INSERT INTO regress_eq_c VALUES (1, 'ana', 1, 5);
INSERT INTO regress_eq_posix VALUES (1, 'Ana', 2, 6);
SELECT iact.enforce_no_overlap('eq_coll', ARRAY['regress_eq_c', 'regress_eq_posix']::regclass[], 'person', 's', 'e');
DROP INDEX regress_eq_posix_idx;
CREATE INDEX regress_eq_posix_idx ON regress_eq_posix (person COLLATE "C", s);
SELECT iact.enforce_no_overlap('eq_coll', ARRAY['regress_eq_c', 'regress_eq_posix']::regclass[], 'person', 's', 'e');
SELECT count(*) AS overlapping_pairs FROM iact.find_overlaps('eq_coll');
INSERT INTO regress_eq_posix VALUES (2, 'ana', 4, 8);
INSERT INTO regress_eq_c VALUES (2, 'Ana', 5, 9);
INSERT INTO regress_eq_posix VALUES (3, 'ana', 5, 9);
SELECT count(*) AS overlapping_pairs FROM iact.find_overlaps('eq_coll');
SELECT iact.release_no_overlap('eq_coll');

-- 3. citext: 'Bob' and 'bob' are one person for the column, the trigger and find_overlaps
CREATE TABLE regress_eq_citext (id int PRIMARY KEY, person citext NOT NULL, s int NOT NULL, e int NOT NULL);
CREATE INDEX ON regress_eq_citext (person, s);
INSERT INTO regress_eq_citext VALUES (1, 'Bob', 1, 5), (2, 'bob', 2, 3), (3, 'Eve', 2, 3);
SELECT iact.enforce_no_overlap('eq_citext', ARRAY['regress_eq_citext']::regclass[], 'person', 's', 'e');
-- find_overlaps names the pair (the trigger, disabled by the owner, let it in)
DELETE FROM regress_eq_citext WHERE id = 2;
SELECT iact.enforce_no_overlap('eq_citext', ARRAY['regress_eq_citext']::regclass[], 'person', 's', 'e');
ALTER TABLE regress_eq_citext DISABLE TRIGGER "iact_no_overlap eq_citext";
INSERT INTO regress_eq_citext VALUES (2, 'bob', 2, 3);
ALTER TABLE regress_eq_citext ENABLE TRIGGER "iact_no_overlap eq_citext";
SELECT person, table_a, id_a, started_a, ended_a, table_b, id_b, started_b, ended_b
  FROM iact.find_overlaps('eq_citext');
DELETE FROM regress_eq_citext WHERE id = 2;
INSERT INTO regress_eq_citext VALUES (4, 'BOB', 4, 6);
INSERT INTO regress_eq_citext VALUES (5, 'BOB', 5, 6);
SELECT id, person, s, e FROM regress_eq_citext ORDER BY id;
SELECT count(*) AS overlapping_pairs FROM iact.find_overlaps('eq_citext');
SELECT iact.release_no_overlap('eq_citext');

-- 4. a collatable time type: refused up front
CREATE TABLE regress_eq_textime (id int PRIMARY KEY, person int NOT NULL, s text NOT NULL, e text NOT NULL);
CREATE INDEX ON regress_eq_textime (person, s);
SELECT iact.enforce_no_overlap('eq_textime', ARRAY['regress_eq_textime']::regclass[], 'person', 's', 'e');
SELECT count(*) AS members FROM iact.no_overlap_members('eq_textime');

DROP TABLE regress_eq_ci_t, regress_eq_c, regress_eq_posix, regress_eq_citext, regress_eq_textime;
DROP COLLATION regress_eq_ci;
DROP EXTENSION citext;
