-- Recording events: split at midnight, all pieces or none, every error;
-- totals and shifts computed on the fly from the daily pieces.
SET client_min_messages = warning;
-- ids in messages below must not depend on the tests run before
SELECT setval(pg_get_serial_sequence('iact.work_shifts', 'id'), 2101, false),
       setval(pg_get_serial_sequence('iact.extra_hours', 'id'), 2101, false);

INSERT INTO iact.people (id, name, identifier) VALUES
    (2101, 'Night Worker', 'R-2101'), (2102, 'Day Worker', 'R-2102');
INSERT INTO iact.cities (id, name) VALUES (2101, 'Faro');
INSERT INTO iact.offices (id, city_id, name) VALUES (2101, 2101, 'Faro Marina'), (2102, 2101, 'Faro Airport');

-- the pieces of a range
SELECT * FROM iact.daily_pieces('2024-02-28 22:00', '2024-02-29 06:00');
SELECT * FROM iact.daily_pieces('2024-02-28 00:00', '2024-03-01 00:00');
SELECT * FROM iact.daily_pieces('2024-02-28 09:00', '2024-02-28 17:00');

-- a night shift 22:00-06:00 becomes 22:00-24:00 and 00:00-06:00
SELECT count(*) AS pieces FROM iact.record_work_shift(2101, 2101, '2024-02-28 22:00', '2024-02-29 06:00');
SELECT started_at, ended_at, office_id FROM iact.work_shifts WHERE person_id = 2101 ORDER BY started_at;
-- the returned ids are those of the stored pieces
CREATE TEMP TABLE regress_ids AS
    SELECT * FROM iact.record_work_shift(2101, 2101, '2024-03-01 22:00', '2024-03-02 06:00') AS r(id);
SELECT w.started_at, w.ended_at, r.id IS NOT NULL AS returned
  FROM iact.work_shifts w FULL JOIN regress_ids r ON r.id = w.id
 WHERE w.person_id = 2101 AND w.started_at >= '2024-03-01' OR w.id IS NULL
 ORDER BY w.started_at;
DROP TABLE regress_ids;
-- a shift ending at midnight is one piece; 24 hours from midnight is one piece
SELECT count(*) AS pieces FROM iact.record_work_shift(2102, 2101, '2024-03-04 16:00', '2024-03-05 00:00');
SELECT count(*) AS pieces FROM iact.record_work_shift(2102, 2102, '2024-03-06 00:00', '2024-03-07 00:00');
-- extra hours over midnight, touching the shift that follows
SELECT count(*) AS pieces FROM iact.record_extra_hours(2101, 2101, '2024-02-29 23:00', '2024-03-01 01:00');
SELECT count(*) AS pieces FROM iact.record_work_shift(2101, 2102, '2024-03-01 01:00', '2024-03-01 09:00');

-- all pieces or none: the second piece of this night overlaps, the first is not kept
SELECT iact.record_extra_hours(2101, 2101, '2024-02-27 23:00', '2024-02-28 23:00');
SELECT count(*) AS extra_on_0227 FROM iact.extra_hours WHERE person_id = 2101 AND started_at::date = '2024-02-27';
-- a night of extra hours that fits
SELECT count(*) AS pieces FROM iact.record_extra_hours(2101, 2101, '2024-03-02 20:00', '2024-03-03 02:00');

-- errors
SELECT iact.record_work_shift(NULL, 2101, '2024-03-10 08:00', '2024-03-10 09:00');
SELECT iact.record_work_shift(2101, NULL, '2024-03-10 08:00', '2024-03-10 09:00');
SELECT iact.record_work_shift(2101, 2101, NULL, '2024-03-10 09:00');
SELECT iact.record_extra_hours(2101, 2101, '2024-03-10 08:00', NULL);
SELECT iact.record_extra_hours(2101, NULL, '2024-03-10 08:00', '2024-03-10 09:00');
SELECT iact.record_work_shift(2101, 2101, '2024-03-10 09:00', '2024-03-10 09:00');
SELECT iact.record_work_shift(2101, 2101, '2024-03-10 09:00', '2024-03-10 08:00');
SELECT iact.record_work_shift(2101, 2101, '2024-03-10 08:00', '2024-03-11 08:00:01');
SELECT iact.record_extra_hours(2101, 2101, '2024-03-10 08:00', 'infinity');
SELECT iact.record_extra_hours(2101, 2101, '-infinity', '2024-03-10 08:00');
SELECT iact.record_work_shift(2199, 2101, '2024-03-10 08:00', '2024-03-10 09:00');
SELECT iact.record_work_shift(2101, 2199, '2024-03-10 08:00', '2024-03-10 09:00');
SELECT iact.record_extra_hours(2101, 2199, '2024-03-10 08:00', '2024-03-10 09:00');
SELECT iact.record_work_shift(2101, 2101, '2024-02-29 05:00', '2024-02-29 07:00');
SELECT iact.record_work_shift(2101, 2101, 'not a time', '2024-02-29 07:00');
-- nothing was stored by the failures
SELECT count(*) AS events_of_2101 FROM iact.events WHERE person_id = 2101;

-- totals, computed on the fly
SELECT * FROM iact.hours_per_day WHERE person_id IN (2101, 2102) ORDER BY person_id, day;
SELECT * FROM iact.hours_per_week WHERE person_id IN (2101, 2102) ORDER BY person_id, week_start;
SELECT * FROM iact.hours_per_month WHERE person_id IN (2101, 2102) ORDER BY person_id, month_start;

-- shifts reconstructed from their pieces: pieces meeting at midnight in the
-- same place join; the extra hours and the shift touching at 01:00 stay apart
SELECT kind, person_id, office_id, city_id, started_at, ended_at, hours, cardinality(piece_ids) AS pieces
  FROM iact.shifts WHERE person_id IN (2101, 2102) ORDER BY person_id, started_at, kind;

-- deleting one piece of a night shift leaves the other
DELETE FROM iact.work_shifts WHERE person_id = 2101 AND started_at = '2024-02-29 00:00';
SELECT started_at, ended_at, cardinality(piece_ids) AS pieces
  FROM iact.shifts WHERE person_id = 2101 AND started_at < '2024-03-01' ORDER BY started_at;

-- nothing here is for PUBLIC
SELECT p.oid::regprocedure AS function
  FROM pg_proc p
 WHERE p.pronamespace = 'iact'::regnamespace
   AND has_function_privilege('public', p.oid, 'EXECUTE')
   AND p.proname IN ('record_work_shift', 'record_extra_hours', 'daily_pieces', 'record_event',
                     'enforce_no_overlap', 'release_no_overlap', 'find_overlaps', 'no_overlap_members',
                     'no_overlap_touch', 'no_overlap_trigger', 'refuse_update', 'session_person_id',
                     'visible_offices', 'visible_cities');
SELECT c.relname, has_table_privilege('public', c.oid, 'SELECT') AS public_select
  FROM pg_class c
 WHERE c.relnamespace = 'iact'::regnamespace
   AND c.relname IN ('people', 'cities', 'offices', 'work_shifts', 'extra_hours', 'events', 'shifts',
                     'event_days', 'hours_per_day', 'hours_per_week', 'hours_per_month')
 ORDER BY 1;
