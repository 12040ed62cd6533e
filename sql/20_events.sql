-- Time events: schema, immutability, the no-overlap invariant across both
-- tables for every way rows arrive, and its error messages.
SET client_min_messages = notice;
-- ids in messages below must not depend on the tests run before
SELECT setval(pg_get_serial_sequence('iact.work_shifts', 'id'), 1, false),
       setval(pg_get_serial_sequence('iact.extra_hours', 'id'), 1, false);

INSERT INTO iact.people (id, name, identifier) VALUES
    (901, 'Ana Territorial', 'R-901'), (902, 'Bo Operational', 'R-902'),
    (903, 'Cy Worker', 'R-903'), (904, 'Di Worker', 'R-904'), (905, 'Ed Elsewhere', 'R-905');
INSERT INTO iact.cities (id, name, territorial_manager_id) VALUES
    (901, 'Lisbon', 901), (902, 'Porto', NULL);
INSERT INTO iact.offices (id, city_id, name, operational_manager_id) VALUES
    (901, 901, 'Lisbon North', NULL), (902, 902, 'Porto Centre', 902), (903, 902, 'Porto Riverside', NULL);

-- the group protecting the two event tables, read back from pg_trigger
SELECT group_name, table_name, person_column, start_column, end_column, probe_index, max_length
  FROM iact.no_overlap_members() WHERE group_name = 'iact.events' ORDER BY table_name::text;

-- single-row insert, then overlaps in the same table and across tables
INSERT INTO iact.work_shifts (id, person_id, office_id, started_at, ended_at)
    VALUES (9001, 903, 901, '2024-03-04 08:00', '2024-03-04 16:00');
INSERT INTO iact.work_shifts (person_id, office_id, started_at, ended_at)
    VALUES (903, 902, '2024-03-04 15:00', '2024-03-04 18:00');
-- the error's fields: SQLSTATE, schema, table and constraint (the trigger)
DO $$
DECLARE st text; sch text; tab text; con text;
BEGIN
    INSERT INTO iact.extra_hours (person_id, city_id, started_at, ended_at)
        VALUES (903, 902, '2024-03-04 07:00', '2024-03-04 08:30');
EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS st = RETURNED_SQLSTATE, sch = SCHEMA_NAME, tab = TABLE_NAME,
                            con = CONSTRAINT_NAME;
    RAISE NOTICE 'sqlstate %, schema %, table %, constraint %', st, sch, tab, con;
END $$;
-- containing and contained ranges, identical range
INSERT INTO iact.extra_hours (person_id, city_id, started_at, ended_at)
    VALUES (903, 902, '2024-03-04 06:00', '2024-03-04 20:00');
INSERT INTO iact.extra_hours (person_id, city_id, started_at, ended_at)
    VALUES (903, 902, '2024-03-04 10:00', '2024-03-04 11:00');
INSERT INTO iact.work_shifts (person_id, office_id, started_at, ended_at)
    VALUES (903, 901, '2024-03-04 08:00', '2024-03-04 16:00');
-- touching on either side is fine ([) intervals), and so is another person
INSERT INTO iact.extra_hours (id, person_id, city_id, started_at, ended_at) VALUES
    (9101, 903, 901, '2024-03-04 16:00', '2024-03-04 18:00'),
    (9102, 903, 901, '2024-03-04 06:00', '2024-03-04 08:00');
INSERT INTO iact.work_shifts (id, person_id, office_id, started_at, ended_at)
    VALUES (9002, 904, 901, '2024-03-04 08:00', '2024-03-04 16:00');

-- multi-row INSERT whose rows overlap each other: nothing is stored
INSERT INTO iact.work_shifts (person_id, office_id, started_at, ended_at) VALUES
    (905, 903, '2024-03-05 08:00', '2024-03-05 12:00'),
    (905, 903, '2024-03-05 11:00', '2024-03-05 13:00');
-- ... in the other order, and with a long row hiding a short one behind a third
INSERT INTO iact.work_shifts (person_id, office_id, started_at, ended_at) VALUES
    (905, 903, '2024-03-05 10:00', '2024-03-05 11:00'),
    (905, 903, '2024-03-05 00:00', '2024-03-05 23:00'),
    (905, 903, '2024-03-05 12:00', '2024-03-05 13:00');
SELECT count(*) AS rows_of_905 FROM iact.events WHERE person_id = 905;
-- INSERT ... SELECT across tables: one overlap among many rows fails the statement
INSERT INTO iact.extra_hours (person_id, city_id, started_at, ended_at)
SELECT 904, 901, d, d + interval '1 hour'
  FROM generate_series(timestamp '2024-03-04 00:00', '2024-03-04 12:00', interval '2 hours') d;
SELECT count(*) AS rows_of_904 FROM iact.events WHERE person_id = 904;
-- the same without the overlapping hours is accepted
INSERT INTO iact.extra_hours (person_id, city_id, started_at, ended_at)
SELECT 904, 901, d, d + interval '1 hour'
  FROM generate_series(timestamp '2024-03-04 00:00', '2024-03-04 06:00', interval '2 hours') d;
SELECT kind, started_at, ended_at FROM iact.events WHERE person_id = 904 ORDER BY started_at;

-- COPY: a clean batch, then a batch with an overlap (all rejected)
COPY iact.work_shifts (person_id, office_id, started_at, ended_at) FROM stdin;
905	903	2024-03-06 08:00	2024-03-06 12:00
905	903	2024-03-06 13:00	2024-03-06 17:00
\.
COPY iact.extra_hours (person_id, city_id, started_at, ended_at) FROM stdin;
905	902	2024-03-06 17:00	2024-03-06 19:00
905	902	2024-03-06 12:30	2024-03-06 13:30
\.
SELECT kind, started_at, ended_at FROM iact.events WHERE person_id = 905 ORDER BY started_at;

-- earlier statements of the same transaction are seen, and a savepoint undoes cleanly
BEGIN;
INSERT INTO iact.work_shifts (person_id, office_id, started_at, ended_at)
    VALUES (905, 903, '2024-03-07 08:00', '2024-03-07 12:00');
SAVEPOINT s;
INSERT INTO iact.extra_hours (person_id, city_id, started_at, ended_at)
    VALUES (905, 902, '2024-03-07 11:59', '2024-03-07 12:30');
ROLLBACK TO s;
INSERT INTO iact.extra_hours (person_id, city_id, started_at, ended_at)
    VALUES (905, 902, '2024-03-07 12:00', '2024-03-07 12:30');
COMMIT;
SELECT count(*) AS rows_on_0307 FROM iact.events WHERE person_id = 905 AND started_at::date = '2024-03-07';

-- deleting is allowed, and frees the slot
DELETE FROM iact.work_shifts WHERE id = 9001;
INSERT INTO iact.extra_hours (id, person_id, city_id, started_at, ended_at)
    VALUES (9103, 903, 902, '2024-03-04 09:00', '2024-03-04 10:00');

-- constraints of the tables
INSERT INTO iact.work_shifts (person_id, office_id, started_at, ended_at)
    VALUES (903, 901, '2024-03-09 22:00', '2024-03-10 06:00');
INSERT INTO iact.work_shifts (person_id, office_id, started_at, ended_at)
    VALUES (903, 901, '2024-03-09 10:00', '2024-03-09 10:00');
INSERT INTO iact.work_shifts (person_id, office_id, started_at, ended_at)
    VALUES (903, 901, '2024-03-09 10:00', NULL);
INSERT INTO iact.work_shifts (person_id, office_id, started_at, ended_at)
    VALUES (999, 901, '2024-03-09 10:00', '2024-03-09 11:00');
INSERT INTO iact.work_shifts (person_id, office_id, started_at, ended_at)
    VALUES (903, 901, '-infinity', '2024-03-09 11:00');
-- a midnight end is inside the day
INSERT INTO iact.work_shifts (id, person_id, office_id, started_at, ended_at)
    VALUES (9003, 903, 901, '2024-03-09 22:00', '2024-03-10 00:00');

-- immutability: UPDATE refused (even one that matches nothing), DELETE allowed
UPDATE iact.work_shifts SET ended_at = ended_at + interval '1 hour' WHERE id = 9003;
UPDATE iact.extra_hours SET city_id = 901 WHERE false;
DELETE FROM iact.work_shifts WHERE id = 9003;

-- the trigger refuses to be used any other way
CREATE TABLE regress_misuse (person_id int, started_at int, ended_at int);
CREATE TRIGGER t BEFORE INSERT ON regress_misuse
    FOR EACH ROW EXECUTE FUNCTION iact.no_overlap_trigger('g', 'person_id', 'started_at', 'ended_at');
INSERT INTO regress_misuse VALUES (1, 1, 2);
DROP TABLE regress_misuse;
SELECT iact.no_overlap_trigger();
UPDATE iact.people SET name = name WHERE id = 0;   -- people are not events: updatable

-- the check holds whatever the isolation level, within one session
BEGIN ISOLATION LEVEL REPEATABLE READ;
INSERT INTO iact.work_shifts (person_id, office_id, started_at, ended_at)
    VALUES (904, 901, '2024-03-04 15:59', '2024-03-04 17:00');
ROLLBACK;
BEGIN ISOLATION LEVEL SERIALIZABLE;
INSERT INTO iact.extra_hours (person_id, city_id, started_at, ended_at)
    VALUES (904, 901, '2024-03-04 07:00', '2024-03-04 09:00');
ROLLBACK;

-- nothing overlapping has been stored
SELECT count(*) AS overlapping_pairs FROM iact.find_overlaps('iact.events');
