-- Security (issue 11): nothing a non-superuser defines ever runs as the
-- superuser (or as anyone) inside iact's entry points; the no-overlap check
-- refuses the probe indexes it cannot scan.
--   1. search_path trojans planted in public: every one is shown to work
--      (called unqualified, it runs), then none runs inside iact's entry points
--   2. a hostile cast on a group member's person type never runs as the owner
--   3. the DESC probe index (and the other indexes the check cannot scan)
--   4. group names are limited in bytes
--   5. the audit records who really acted beside the forgeable user id
-- (pg_regress feeds psql on standard input: the file is found through PG_ABS_SRCDIR)
\getenv abs_srcdir PG_ABS_SRCDIR
\set trojans :abs_srcdir '/sql/include/security_trojans.sql'
\i :trojans

-- Fixtures for the entry points (ids shown below must not depend on the tests run before)
SELECT setval(pg_get_serial_sequence('iact.work_shifts', 'id'), 7001, false),
       setval(pg_get_serial_sequence('iact.extra_hours', 'id'), 7001, false);
INSERT INTO iact.people (id, name, identifier) VALUES (7001, 'Sec One', 'SEC-7001');
INSERT INTO iact.cities (id, name, territorial_manager_id) VALUES (7001, 'Sec City', 7001);
INSERT INTO iact.offices (id, city_id, name) VALUES (7001, 7001, 'Sec Office');
CREATE TABLE regress_sec_rooms (id int PRIMARY KEY, room int NOT NULL, s int NOT NULL, e int NOT NULL);
CREATE INDEX ON regress_sec_rooms (room, s);
ALTER TABLE regress_sec_rooms ENABLE ROW LEVEL SECURITY;
CREATE POLICY everyone ON regress_sec_rooms USING (true);
GRANT SELECT, INSERT ON regress_sec_rooms TO regress_sec_clerk;
CREATE TABLE regress_sec_aud (id int PRIMARY KEY, note text);

-- 1. The entry points, each with public first in search_path
SET regress.stage = 'enforce_no_overlap';
SET search_path = public, pg_catalog;
SELECT iact.enforce_no_overlap('sec_rooms', ARRAY['regress_sec_rooms']::regclass[], 'room', 's', 'e');
RESET search_path;

SET regress.stage = 'no_overlap_members';
SET search_path = public, pg_catalog;
SELECT table_name, probe_index FROM iact.no_overlap_members('sec_rooms', true);
RESET search_path;

SET regress.stage = 'no-overlap trigger';
SET search_path = public, pg_catalog;
INSERT INTO regress_sec_rooms VALUES (1, 1, 10, 20), (2, 1, 20, 30);
INSERT INTO regress_sec_rooms VALUES (3, 1, 15, 25);
RESET search_path;
-- a caller subject to row-level security: the check asks the caller's
-- policies whether the other row may be named (an internal query)
SET regress.stage = 'no-overlap trigger, RLS caller';
SET ROLE regress_sec_clerk;
SET search_path = public, pg_catalog;
INSERT INTO regress_sec_rooms VALUES (4, 1, 25, 35);
RESET search_path;
RESET ROLE;

SET regress.stage = 'record_*';
SET search_path = public, pg_catalog;
-- (one row per piece; no count(*) here: the trojan count(*) would be the test's own)
SELECT 'piece' AS recorded FROM iact.record_work_shift(7001, 7001, '2024-06-01 22:00', '2024-06-02 06:00');
SELECT 'piece' AS recorded FROM iact.record_extra_hours(7001, 7001, '2024-06-02 06:00', '2024-06-02 08:00');
SELECT iact.record_extra_hours(7001, 7001, '2024-06-02 07:00', '2024-06-02 09:00');
SELECT * FROM iact.daily_pieces('2024-06-01 22:00', '2024-06-02 06:00');
RESET search_path;

SET regress.stage = 'find_overlaps';
SET search_path = public, pg_catalog;
SELECT * FROM iact.find_overlaps();
RESET search_path;

SET regress.stage = 'release_no_overlap';
SET search_path = public, pg_catalog;
SELECT iact.release_no_overlap('sec_rooms');
RESET search_path;

-- (the audited statements use no operator: the test's own would be trojaned)
SET regress.stage = 'enable_audit';
SET search_path = public, pg_catalog;
SELECT iact.enable_audit('regress_sec_aud', '{note}');
INSERT INTO regress_sec_aud VALUES (1, 'a'), (2, 'b');
UPDATE regress_sec_aud SET note = 'c';
DELETE FROM regress_sec_aud;
TRUNCATE regress_sec_aud;
SELECT iact.disable_audit('regress_sec_aud');
SELECT iact.enable_audit('regress_sec_aud');
RESET search_path;
SELECT operation, row_count FROM iact.audit_statement WHERE table_name = 'regress_sec_aud' ORDER BY id;

SET regress.stage = 'purge_audit_log';
SET search_path = public, pg_catalog;
SELECT iact.purge_audit_log('1 day') AS purged;
CALL iact.purge_audit_log_batched('1 day');
RESET search_path;

SET regress.stage = 'run_migration';
SET search_path = public, pg_catalog;
CALL iact.run_migration('sec.1', 'security test', $$CREATE TABLE regress_sec_m (id int)$$,
                        $$DROP TABLE regress_sec_m$$);
RESET search_path;

SET regress.stage = 'safe_rollback_migration';
SET search_path = public, pg_catalog;
SELECT iact.safe_rollback_migration('sec.1');
RESET search_path;

-- (iact.backfill: sql/72_security_backfill.sql)

SET regress.stage = 'health';
SET search_path = public, pg_catalog;
\o /dev/null
SELECT * FROM iact.health();
\o
RESET search_path;

SET regress.stage = 'metrics';
SET search_path = public, pg_catalog;
\o /dev/null
SELECT iact.metrics();
\o
RESET search_path;

SET regress.stage = 'check_overlaps_now';
SET search_path = public, pg_catalog;
\o /dev/null
SELECT iact.check_overlaps_now();
\o
RESET search_path;

-- none of the trojans ran, in any entry point
SELECT stage, what, who, superuser FROM regress_trojan_log ORDER BY 1, 2;

-- 2. A hostile cast on a group member's person type.  Mallory owns an enum
-- type, a cast from it to text implemented by her function, and a table of
-- the group with overlapping rows (written while its trigger was disabled).
-- find_overlaps (SECURITY DEFINER, the extension owner: a superuser;
-- check_overlaps_now() and the maintenance worker call it, health() and
-- metrics() read its stored result) shows the person through the type's
-- output function and never calls the cast.
SET regress.stage = 'hostile cast';
SET ROLE regress_sec_mallory;
CREATE TYPE regress_sec_mood AS ENUM ('calm', 'angry');
CREATE FUNCTION regress_sec_mood_text(regress_sec_mood) RETURNS text
    LANGUAGE sql SET search_path = pg_catalog AS $$
    SELECT public.regress_trojan_hit('cast regress_sec_mood AS text'); SELECT 'forged'::text $$;
CREATE CAST (regress_sec_mood AS text) WITH FUNCTION regress_sec_mood_text(regress_sec_mood);
CREATE TABLE regress_sec_moods (id int PRIMARY KEY, mood regress_sec_mood NOT NULL, s int NOT NULL, e int NOT NULL);
CREATE INDEX ON regress_sec_moods (mood, s);
RESET ROLE;
SELECT iact.enforce_no_overlap('sec_moods', ARRAY['regress_sec_moods']::regclass[], 'mood', 's', 'e');
SET ROLE regress_sec_mallory;
ALTER TABLE regress_sec_moods DISABLE TRIGGER "iact_no_overlap sec_moods";
INSERT INTO regress_sec_moods VALUES (1, 'angry', 1, 5), (2, 'angry', 2, 3);
ALTER TABLE regress_sec_moods ENABLE TRIGGER "iact_no_overlap sec_moods";
-- (her own explicit cast works for her)
SET client_min_messages = error;
SELECT 'angry'::regress_sec_mood::text AS her_cast;
SET client_min_messages = warning;
RESET ROLE;
TRUNCATE regress_trojan_log;
SELECT group_name, person, id_a, started_a, ended_a, id_b, started_b, ended_b
  FROM iact.find_overlaps('sec_moods');
\o /dev/null
SELECT iact.check_overlaps_now();
SELECT * FROM iact.health();
SELECT iact.metrics();
\o
SELECT stage, what, who, superuser FROM regress_trojan_log ORDER BY 1, 2;
DELETE FROM iact.maintenance_runs;
-- an implicit cast could be picked by operator resolution: refused
SET ROLE regress_sec_mallory;
DROP CAST (regress_sec_mood AS text);
CREATE CAST (regress_sec_mood AS text) WITH FUNCTION regress_sec_mood_text(regress_sec_mood) AS IMPLICIT;
RESET ROLE;
SELECT * FROM iact.find_overlaps('sec_moods');
SELECT stage, what, who, superuser FROM regress_trojan_log ORDER BY 1, 2;
SELECT iact.release_no_overlap('sec_moods');

-- 3. The probe index: the issue's DESC case is refused, as are the other
-- indexes a backward btree scan with the default "=" and "<" cannot use
CREATE TABLE regress_sec_desc (id int PRIMARY KEY, person_id int NOT NULL,
                               started_at timestamp NOT NULL, ended_at timestamp NOT NULL);
CREATE INDEX regress_sec_desc_idx ON regress_sec_desc (person_id, started_at DESC);
SELECT iact.enforce_no_overlap('sec_desc', ARRAY['regress_sec_desc']::regclass[]);
DROP INDEX regress_sec_desc_idx;
CREATE INDEX regress_sec_desc_idx ON regress_sec_desc (person_id DESC, started_at);
SELECT iact.enforce_no_overlap('sec_desc', ARRAY['regress_sec_desc']::regclass[]);
DROP INDEX regress_sec_desc_idx;
CREATE INDEX regress_sec_desc_idx ON regress_sec_desc (person_id, started_at NULLS FIRST);
SELECT iact.enforce_no_overlap('sec_desc', ARRAY['regress_sec_desc']::regclass[]);
DROP INDEX regress_sec_desc_idx;
-- the plain index: the issue's three rows, the third overlaps the second
CREATE INDEX regress_sec_desc_idx ON regress_sec_desc (person_id, started_at);
SELECT iact.enforce_no_overlap('sec_desc', ARRAY['regress_sec_desc']::regclass[]);
INSERT INTO regress_sec_desc VALUES (1, 1, '2024-01-01 00:00', '2024-01-01 01:00');
INSERT INTO regress_sec_desc VALUES (2, 1, '2024-01-01 05:00', '2024-01-01 10:00');
INSERT INTO regress_sec_desc VALUES (3, 1, '2024-01-01 06:00', '2024-01-01 07:00');
SELECT count(*) AS overlapping_pairs FROM iact.find_overlaps('sec_desc');
-- a DESC index created later is not used: the plain one is
CREATE INDEX regress_sec_desc_desc ON regress_sec_desc (person_id, started_at DESC);
SELECT probe_index FROM iact.no_overlap_members('sec_desc', true);
-- once the plain index is gone, writes are refused rather than checked wrong
DROP INDEX regress_sec_desc_idx;
INSERT INTO regress_sec_desc VALUES (4, 1, '2024-01-01 06:00', '2024-01-01 07:00');
SELECT iact.release_no_overlap('sec_desc');

-- a non-default operator class, a nondeterministic collation
CREATE TABLE regress_sec_text (person text NOT NULL, s int NOT NULL, e int NOT NULL);
CREATE INDEX regress_sec_text_idx ON regress_sec_text (person text_pattern_ops, s);
SELECT iact.enforce_no_overlap('sec_text', ARRAY['regress_sec_text']::regclass[], 'person', 's', 'e');
DROP INDEX regress_sec_text_idx;
CREATE COLLATION regress_sec_ci (provider = icu, locale = 'und-u-ks-level2', deterministic = false);
CREATE INDEX regress_sec_text_idx ON regress_sec_text (person COLLATE regress_sec_ci, s);
SELECT iact.enforce_no_overlap('sec_text', ARRAY['regress_sec_text']::regclass[], 'person', 's', 'e');
DROP INDEX regress_sec_text_idx;
-- a deterministic collation other than the column's: equality is equality of bytes
CREATE INDEX regress_sec_text_idx ON regress_sec_text (person COLLATE "C", s);
SELECT iact.enforce_no_overlap('sec_text', ARRAY['regress_sec_text']::regclass[], 'person', 's', 'e');
INSERT INTO regress_sec_text VALUES ('Ana', 1, 5), ('ana', 2, 6);
INSERT INTO regress_sec_text VALUES ('Ana', 4, 8);
SELECT iact.release_no_overlap('sec_text');

-- 4. group names are limited in bytes (the trigger's name is): 21 two-byte letters
SELECT iact.enforce_no_overlap(repeat('ä', 21), ARRAY['regress_sec_text']::regclass[], 'person', 's', 'e');
SELECT iact.enforce_no_overlap(repeat('ä', 20), ARRAY['regress_sec_text']::regclass[], 'person', 's', 'e');
SELECT group_name, octet_length(group_name) FROM iact.no_overlap_members(repeat('ä', 20));
SELECT iact.release_no_overlap(repeat('ä', 20));

-- 5. The audit: user_id is whatever the application set (anyone can forge
-- it); role_name (current_user) and session_role (session_user) are
-- PostgreSQL's own
CREATE TABLE regress_sec_audited (id int PRIMARY KEY);
GRANT INSERT ON regress_sec_audited TO regress_sec_clerk;
SELECT iact.enable_audit('regress_sec_audited');
SET ROLE regress_sec_clerk;
SET app.current_user_id = 'the-ceo';
INSERT INTO regress_sec_audited VALUES (1);
RESET app.current_user_id;
RESET ROLE;
SELECT operation, user_id, role_name, session_role = session_user AS session_role_is_session_user
  FROM iact.audit_log WHERE table_name = 'regress_sec_audited';
SELECT iact.disable_audit('regress_sec_audited');

-- clean up
RESET regress.stage;
DROP TABLE regress_sec_rooms, regress_sec_aud, regress_sec_desc, regress_sec_text, regress_sec_audited,
    regress_trojans, regress_trojan_log;
DROP COLLATION regress_sec_ci;
DELETE FROM iact.work_shifts WHERE person_id = 7001;
DELETE FROM iact.extra_hours WHERE person_id = 7001;
DELETE FROM iact.offices WHERE id = 7001;
DELETE FROM iact.cities WHERE id = 7001;
DELETE FROM iact.people WHERE id = 7001;
DROP CAST IF EXISTS (regress_sec_mood AS text);
DROP OWNED BY regress_sec_mallory, regress_sec_clerk;
DROP ROLE regress_sec_mallory, regress_sec_clerk;
