-- The no-overlap machinery on a user's own tables: iact.enforce_no_overlap,
-- iact.no_overlap_members, iact.find_overlaps, iact.release_no_overlap.
SET client_min_messages = warning;

-- rooms are the "person" here; integer times; a table without primary key
CREATE TABLE regress_bookings (id serial PRIMARY KEY, room text NOT NULL,
                               starts int NOT NULL, ends int NOT NULL, note text);
CREATE TABLE regress_blocks (room text NOT NULL, from_t int NOT NULL, to_t int NOT NULL);
INSERT INTO regress_bookings (room, starts, ends) VALUES ('a', 10, 20), ('a', 20, 30), ('b', 10, 20);

-- the btree on (person, start) is required
SELECT iact.enforce_no_overlap('rooms', ARRAY['regress_bookings']::regclass[], 'room', 'starts', 'ends');
CREATE INDEX ON regress_bookings (room, starts);
SELECT iact.enforce_no_overlap('rooms', ARRAY['regress_bookings']::regclass[], 'room', 'starts', 'ends');
-- a second table with other column names joins the group
CREATE INDEX ON regress_blocks (room, from_t);
SELECT iact.enforce_no_overlap('rooms', ARRAY['regress_blocks']::regclass[], 'room', 'from_t', 'to_t');
SELECT group_name, table_name, person_column, start_column, end_column, probe_index
  FROM iact.no_overlap_members('rooms') ORDER BY table_name::text;
-- calling again is harmless
SELECT iact.enforce_no_overlap('rooms', ARRAY['regress_blocks']::regclass[], 'room', 'from_t', 'to_t');

-- the invariant across the group (this backend had the group cached: it was re-read)
INSERT INTO regress_blocks VALUES ('a', 25, 35);
INSERT INTO regress_blocks VALUES ('a', 30, 35), ('b', 0, 10), ('c', 0, 100);
INSERT INTO regress_bookings (room, starts, ends) VALUES ('b', 5, 11);
INSERT INTO regress_bookings (room, starts, ends) VALUES ('c', 50, 50);
INSERT INTO regress_bookings (room, starts, ends) VALUES ('c', 60, 50);
-- UPDATE is checked when it moves an event, and not when other columns change
UPDATE regress_bookings SET ends = 31 WHERE room = 'a' AND starts = 20;
UPDATE regress_bookings SET room = 'c' WHERE room = 'b';
UPDATE regress_bookings SET ends = 29 WHERE room = 'a' AND starts = 20;
UPDATE regress_bookings SET note = 'checked' WHERE room = 'a';
-- the rows of one UPDATE are checked against the statement's result:
-- shifting both events of room a by one works ([11,21) [21,30) then [30,35))
UPDATE regress_bookings SET starts = starts + 1, ends = ends + 1 WHERE room = 'a';
SELECT room, starts, ends FROM regress_bookings WHERE room = 'a' ORDER BY starts;
UPDATE regress_bookings SET starts = starts + 2, ends = ends + 2 WHERE room = 'a';
UPDATE regress_bookings SET starts = starts - 1, ends = ends - 1 WHERE room = 'a';
SELECT room, starts, ends, note FROM regress_bookings ORDER BY room, starts;

-- bad arguments
SELECT iact.enforce_no_overlap(NULL, ARRAY['regress_blocks']::regclass[], 'room', 'from_t', 'to_t');
SELECT iact.enforce_no_overlap(repeat('x', 41), ARRAY['regress_blocks']::regclass[], 'room', 'from_t', 'to_t');
SELECT iact.enforce_no_overlap('rooms', NULL, 'room', 'from_t', 'to_t');
SELECT iact.enforce_no_overlap('rooms', '{}', 'room', 'from_t', 'to_t');
SELECT iact.enforce_no_overlap('rooms', ARRAY[NULL]::regclass[], 'room', 'from_t', 'to_t');
SELECT iact.enforce_no_overlap('rooms', ARRAY['regress_blocks']::regclass[], NULL, 'from_t', 'to_t');
SELECT iact.enforce_no_overlap('rooms', ARRAY['regress_no_such_table']::regclass[]);
SELECT iact.enforce_no_overlap('rooms', ARRAY['regress_blocks']::regclass[], 'room', 'from_t', 'no_such_column');
CREATE VIEW regress_view AS SELECT * FROM regress_blocks;
SELECT iact.enforce_no_overlap('rooms', ARRAY['regress_view']::regclass[], 'room', 'from_t', 'to_t');
DROP VIEW regress_view;
-- a partitioned table joins as one: its trigger is cloned to every
-- partition, present and future; here partitions cut the time axis, so an
-- overlap may span two partitions
CREATE TABLE regress_parted (room text NOT NULL, s int NOT NULL, e int NOT NULL) PARTITION BY RANGE (s);
CREATE TABLE regress_parted_lo PARTITION OF regress_parted FOR VALUES FROM (0) TO (10);
SELECT iact.enforce_no_overlap('parted', ARRAY['regress_parted']::regclass[], 'room', 's', 'e');
CREATE INDEX ON regress_parted (room, s);
SELECT iact.enforce_no_overlap('parted', ARRAY['regress_parted']::regclass[], 'room', 's', 'e');
-- this backend caches the group before the next partition exists
INSERT INTO regress_parted VALUES ('x', 8, 12), ('y', 1, 5);
CREATE TABLE regress_parted_hi PARTITION OF regress_parted FOR VALUES FROM (10) TO (20);
SELECT table_name, probe_index IS NOT NULL AS indexed
  FROM iact.no_overlap_members('parted') ORDER BY table_name::text;
-- in the new partition, overlapping a row of the old one: refused
INSERT INTO regress_parted VALUES ('x', 11, 13);
INSERT INTO regress_parted_hi VALUES ('x', 11, 13);
-- in the old partition, overlapping a row of the new one: refused
INSERT INTO regress_parted VALUES ('z', 12, 14);
INSERT INTO regress_parted VALUES ('z', 9, 13);
-- calling again (e.g. to replace an older trigger) keeps the partitions guarded
SELECT iact.enforce_no_overlap('parted', ARRAY['regress_parted']::regclass[], 'room', 's', 'e');
INSERT INTO regress_parted_hi VALUES ('x', 11, 13);
-- touching events in both partitions are fine
INSERT INTO regress_parted VALUES ('x', 12, 13), ('z', 8, 12);
-- a table attached with overlapping rows: find_overlaps reports them
CREATE TABLE regress_parted_top (room text NOT NULL, s int NOT NULL, e int NOT NULL);
INSERT INTO regress_parted_top VALUES ('w', 20, 25), ('w', 22, 27);
ALTER TABLE regress_parted ATTACH PARTITION regress_parted_top FOR VALUES FROM (20) TO (30);
SELECT group_name, person, table_a, started_a, ended_a, table_b, started_b, ended_b
  FROM iact.find_overlaps('parted');
INSERT INTO regress_parted VALUES ('w', 26, 28);
SELECT room, s, e FROM regress_parted ORDER BY room, s;
-- releasing the parent releases its partitions
SELECT iact.release_no_overlap('parted');
SELECT count(*) AS parted_members FROM iact.no_overlap_members('parted');
DROP TABLE regress_parted;
-- nullable columns and mismatched types are refused, and nothing is left behind
CREATE TABLE regress_loose (room text, s int NOT NULL, e int NOT NULL);
CREATE INDEX ON regress_loose (room, s);
SELECT iact.enforce_no_overlap('rooms', ARRAY['regress_loose']::regclass[], 'room', 's', 'e');
CREATE TABLE regress_typed (room text NOT NULL, s bigint NOT NULL, e bigint NOT NULL);
CREATE INDEX ON regress_typed (room, s);
SELECT iact.enforce_no_overlap('rooms', ARRAY['regress_typed']::regclass[], 'room', 's', 'e');
SELECT count(*) AS members FROM iact.no_overlap_members('rooms');
DROP TABLE regress_loose, regress_typed;

-- rows loaded with the triggers off are found, not guessed
ALTER TABLE regress_blocks DISABLE TRIGGER USER;
INSERT INTO regress_blocks VALUES ('a', 15, 40), ('d', 0, 10), ('d', 5, 6);
ALTER TABLE regress_blocks ENABLE TRIGGER USER;
SELECT * FROM iact.find_overlaps('rooms');
-- without argument: every group (the lead's health check counts these rows)
SELECT group_name, count(*) FROM iact.find_overlaps() GROUP BY group_name ORDER BY 1;
-- a table holding overlaps cannot join a group
CREATE TABLE regress_dirty (room text NOT NULL, s int NOT NULL, e int NOT NULL);
CREATE INDEX ON regress_dirty (room, s);
INSERT INTO regress_dirty VALUES ('z', 1, 5), ('z', 4, 8), ('z', 8, 9);
SELECT iact.enforce_no_overlap('dirty', ARRAY['regress_dirty']::regclass[], 'room', 's', 'e');
SELECT count(*) AS dirty_members FROM iact.no_overlap_members('dirty');
DELETE FROM regress_blocks WHERE room IN ('a', 'd') AND from_t IN (0, 5, 15);
SELECT count(*) AS overlapping_pairs FROM iact.find_overlaps('rooms');

-- losing the index is reported on the next write
DROP INDEX regress_blocks_room_from_t_idx;
INSERT INTO regress_bookings (room, starts, ends) VALUES ('e', 1, 2);
CREATE INDEX ON regress_blocks (room, from_t);
INSERT INTO regress_bookings (room, starts, ends) VALUES ('e', 1, 2);

-- leaving the group: that table is no longer checked, the others still are
SELECT iact.release_no_overlap('rooms', ARRAY['regress_blocks']::regclass[]);
SELECT table_name FROM iact.no_overlap_members('rooms');
INSERT INTO regress_blocks VALUES ('e', 0, 10);
INSERT INTO regress_bookings (room, starts, ends) VALUES ('e', 5, 6);
INSERT INTO regress_bookings (room, starts, ends) VALUES ('e', 5, 7);
SELECT count(*) AS overlapping_pairs FROM iact.find_overlaps('rooms');
SELECT iact.release_no_overlap('rooms');
SELECT count(*) AS members FROM iact.no_overlap_members('rooms');
INSERT INTO regress_bookings (room, starts, ends) VALUES ('e', 5, 7);
SELECT count(*) AS pairs_of_released_group FROM iact.find_overlaps('rooms');

-- timestamptz and bigint people work the same way
CREATE TABLE regress_tz (who bigint NOT NULL, s timestamptz NOT NULL, e timestamptz NOT NULL);
CREATE INDEX ON regress_tz (who, s);
SELECT iact.enforce_no_overlap('tz', ARRAY['regress_tz']::regclass[], 'who', 's', 'e');
INSERT INTO regress_tz VALUES (1, '2024-01-01 10:00+00', '2024-01-01 12:00+00');
INSERT INTO regress_tz VALUES (1, '2024-01-01 12:00+01', '2024-01-01 14:00+01');
INSERT INTO regress_tz VALUES (1, '2024-01-01 13:00+01', '2024-01-01 14:00+01');

-- a maximum event length (timestamp groups): enforced, and the check then
-- only looks at events starting after start - max_length
CREATE TABLE regress_tz2 (who bigint NOT NULL, s timestamptz NOT NULL, e timestamptz NOT NULL);
CREATE INDEX ON regress_tz2 (who, s);
INSERT INTO regress_tz2 VALUES (1, '2024-01-01 00:00+00', '2024-01-01 05:00+00');
SELECT iact.enforce_no_overlap('tz2', ARRAY['regress_tz2']::regclass[], 'who', 's', 'e', interval '4 hours');
DELETE FROM regress_tz2;
SELECT iact.enforce_no_overlap('tz2', ARRAY['regress_tz2']::regclass[], 'who', 's', 'e', interval '4 hours');
SELECT table_name, max_length FROM iact.no_overlap_members('tz2');
INSERT INTO regress_tz2 VALUES (1, '2024-01-01 00:00+00', '2024-01-01 04:00:01+00');
INSERT INTO regress_tz2 VALUES (1, '2024-01-01 10:00+00', '2024-01-01 14:00+00');
INSERT INTO regress_tz2 VALUES (1, '2024-01-01 13:00+00', '2024-01-01 13:30+00');
INSERT INTO regress_tz2 VALUES (1, '2024-01-01 09:59+00', '2024-01-01 10:30+00');
INSERT INTO regress_tz2 VALUES (1, '2024-01-01 06:00+00', '2024-01-01 10:00+00'),
                               (1, '2024-01-01 14:00+00', '2024-01-01 15:00+00');
-- a long gap before the new event: nothing to find, nothing missed
INSERT INTO regress_tz2 VALUES (1, '2024-03-01 00:00+00', '2024-03-01 01:00+00');
SELECT count(*) AS tz2_rows FROM regress_tz2;
-- members must agree on it, it must be positive, and only timestamps have it
SELECT iact.enforce_no_overlap('tz2', ARRAY['regress_tz']::regclass[], 'who', 's', 'e');
SELECT iact.enforce_no_overlap('tz2', ARRAY['regress_tz2']::regclass[], 'who', 's', 'e', interval '0');
SELECT iact.enforce_no_overlap('tz2', ARRAY['regress_tz2']::regclass[], 'who', 's', 'e', interval '-1 hour');
CREATE TABLE regress_ints (who int NOT NULL, s int NOT NULL, e int NOT NULL);
CREATE INDEX ON regress_ints (who, s);
SELECT iact.enforce_no_overlap('ints', ARRAY['regress_ints']::regclass[], 'who', 's', 'e', interval '1 hour');
SELECT count(*) AS ints_members FROM iact.no_overlap_members('ints');
DROP TABLE regress_tz, regress_tz2, regress_ints;
SELECT count(*) AS tz_members FROM iact.no_overlap_members('tz');

-- a BEFORE UPDATE trigger that moves an event during an UPDATE of another
-- column: the move is checked all the same
CREATE TABLE regress_moved (room text NOT NULL, s int NOT NULL, e int NOT NULL, note text);
CREATE INDEX ON regress_moved (room, s);
SELECT iact.enforce_no_overlap('moved', ARRAY['regress_moved']::regclass[], 'room', 's', 'e');
CREATE FUNCTION regress_postpone() RETURNS trigger LANGUAGE plpgsql AS
$$BEGIN NEW.s := NEW.s + 10; NEW.e := NEW.e + 10; RETURN NEW; END$$;
CREATE TRIGGER regress_postpone BEFORE UPDATE ON regress_moved
    FOR EACH ROW WHEN (NEW.note = 'postponed') EXECUTE FUNCTION regress_postpone();
INSERT INTO regress_moved VALUES ('a', 0, 5, NULL), ('a', 10, 15, NULL);
UPDATE regress_moved SET note = 'postponed' WHERE s = 0;
UPDATE regress_moved SET note = 'postponed' WHERE s = 10;
UPDATE regress_moved SET note = 'kept' WHERE s = 0;
SELECT room, s, e, note FROM regress_moved ORDER BY s;
-- the conflicting event is named only to a caller who may read it: not
-- without SELECT on its table, not when row-level security hides it
CREATE ROLE regress_moved_writer NOLOGIN;
GRANT INSERT ON regress_moved TO regress_moved_writer;
SET ROLE regress_moved_writer;
INSERT INTO regress_moved VALUES ('a', 3, 4, NULL);
RESET ROLE;
GRANT SELECT ON regress_moved TO regress_moved_writer;
ALTER TABLE regress_moved ENABLE ROW LEVEL SECURITY;
CREATE POLICY regress_early ON regress_moved FOR SELECT USING (s < 10);
CREATE POLICY regress_write ON regress_moved FOR INSERT WITH CHECK (true);
SET ROLE regress_moved_writer;
SELECT room, s, e FROM regress_moved;
INSERT INTO regress_moved VALUES ('a', 3, 4, NULL);
INSERT INTO regress_moved VALUES ('a', 21, 22, NULL);
RESET ROLE;
-- the owner is not subject to the policies: it is told
INSERT INTO regress_moved VALUES ('a', 21, 22, NULL);
DROP TABLE regress_moved;
DROP ROLE regress_moved_writer;
DROP FUNCTION regress_postpone();

-- one statement writing 20,000 persons: the per-person locks are spread
-- over a fixed number of keys, so the lock table does not run out
CREATE TABLE regress_many (id int PRIMARY KEY, who int NOT NULL, s int NOT NULL, e int NOT NULL);
CREATE INDEX ON regress_many (who, s);
SELECT iact.enforce_no_overlap('many', ARRAY['regress_many']::regclass[], 'who', 's', 'e');
INSERT INTO regress_many SELECT g, g, 0, 10 FROM generate_series(1, 20000) g;
SELECT count(*) AS many_rows, count(DISTINCT who) AS many_persons FROM regress_many;
INSERT INTO regress_many VALUES (20001, 20000, 5, 15);
DROP TABLE regress_many;

-- the other event is named by its single-column primary key, a DEFERRABLE one too (as
-- find_overlaps names it); a composite key or none gives its ctid
CREATE TABLE regress_dpk (id int PRIMARY KEY DEFERRABLE, who int NOT NULL, s int NOT NULL, e int NOT NULL);
CREATE INDEX ON regress_dpk (who, s);
SELECT iact.enforce_no_overlap('dpk', ARRAY['regress_dpk']::regclass[], 'who', 's', 'e');
INSERT INTO regress_dpk VALUES (7, 1, 0, 10);
INSERT INTO regress_dpk VALUES (8, 1, 5, 15);
ALTER TABLE regress_dpk DISABLE TRIGGER USER;
INSERT INTO regress_dpk VALUES (8, 1, 5, 15);
ALTER TABLE regress_dpk ENABLE TRIGGER USER;
SELECT person, id_a, id_b FROM iact.find_overlaps('dpk');
DROP TABLE regress_dpk;

DROP TABLE regress_bookings, regress_blocks, regress_dirty;
