\echo
\echo '=== Time events that never overlap ==='
\echo 'An organisation: Lisbon (territorial manager Tess) with two offices, Porto with'
\echo 'one office run by Otto; Lia and Pedro record their hours.'
INSERT INTO iact.people (id, name, identifier) VALUES
    (1, 'Tess Territorial', 'EMP-001'), (2, 'Otto Operational', 'EMP-002'),
    (3, 'Lia', 'EMP-003'), (4, 'Pedro', 'EMP-004');
INSERT INTO iact.cities (id, name, territorial_manager_id) VALUES (1, 'Lisbon', 1), (2, 'Porto', NULL);
INSERT INTO iact.offices (id, city_id, name, operational_manager_id) VALUES
    (1, 1, 'Lisbon Baixa', NULL), (2, 1, 'Lisbon Belem', NULL), (3, 2, 'Porto Ribeira', 2);

\echo
\echo '--- A night shift 22:00-06:00 is stored as two daily events (all pieces or none)'
SELECT * FROM iact.record_work_shift(3, 1, '2024-03-04 22:00', '2024-03-05 06:00') AS new_id;
SELECT id, person_id, office_id, started_at, ended_at FROM iact.work_shifts WHERE person_id = 3 ORDER BY started_at;

\echo
\echo '--- Extra hours that touch the shift (06:00-08:00) are fine: intervals are [start, end)'
SELECT * FROM iact.record_extra_hours(3, 1, '2024-03-05 06:00', '2024-03-05 08:00') AS new_id;

\echo
\echo '--- Extra hours overlapping the night shift, in the OTHER table, are refused (23P01)'
DO $$
BEGIN
    PERFORM iact.record_extra_hours(3, 2, '2024-03-05 05:00', '2024-03-05 06:30');
EXCEPTION WHEN exclusion_violation THEN
    DECLARE msg text; detail text;
    BEGIN
        GET STACKED DIAGNOSTICS msg = MESSAGE_TEXT, detail = PG_EXCEPTION_DETAIL;
        RAISE NOTICE 'refused: % (SQLSTATE 23P01)', msg;
        RAISE NOTICE 'detail:  %', detail;
    END;
END $$;

\echo
\echo '--- The same check guards plain INSERT and COPY: a batch with one overlap stores nothing'
DO $$
BEGIN
    INSERT INTO iact.work_shifts (person_id, office_id, started_at, ended_at) VALUES
        (4, 3, '2024-03-04 08:00', '2024-03-04 16:00'),
        (4, 3, '2024-03-05 08:00', '2024-03-05 16:00'),
        (4, 3, '2024-03-05 15:00', '2024-03-05 19:00');
EXCEPTION WHEN exclusion_violation THEN
    RAISE NOTICE 'refused: %', SQLERRM;
END $$;
INSERT INTO iact.work_shifts (person_id, office_id, started_at, ended_at) VALUES
    (4, 3, '2024-03-04 08:00', '2024-03-04 16:00'), (4, 3, '2024-03-05 08:00', '2024-03-05 16:00');
SELECT * FROM iact.record_extra_hours(4, 2, '2024-03-05 16:00', '2024-03-05 18:00') AS new_id;
SELECT * FROM iact.record_work_shift(2, 3, '2024-03-04 09:00', '2024-03-04 17:00') AS new_id;

\echo
\echo '--- Events are immutable: UPDATE is refused, DELETE is allowed'
DO $$
BEGIN
    UPDATE iact.extra_hours SET ended_at = '2024-03-05 18:30' WHERE person_id = 4;
EXCEPTION WHEN feature_not_supported THEN
    DECLARE msg text; hint text;
    BEGIN
        GET STACKED DIAGNOSTICS msg = MESSAGE_TEXT, hint = PG_EXCEPTION_HINT;
        RAISE NOTICE 'refused: % (hint: %)', msg, hint;
    END;
END $$;
\echo 'Pedro''s extra hours really ended at 18:30: delete the event and record it again'
DELETE FROM iact.extra_hours WHERE person_id = 4 AND started_at = '2024-03-05 16:00';
SELECT * FROM iact.record_extra_hours(4, 2, '2024-03-05 16:00', '2024-03-05 18:30') AS new_id;

\echo
\echo '--- Totals are computed on the fly, standard and extra apart'
SELECT p.name, h.day, h.standard_hours, h.extra_hours
  FROM iact.hours_per_day h JOIN iact.people p ON p.id = h.person_id ORDER BY p.name, h.day;
SELECT p.name, w.week_start, w.standard_hours, w.extra_hours
  FROM iact.hours_per_week w JOIN iact.people p ON p.id = w.person_id ORDER BY p.name;

\echo
\echo '--- ... and shifts are rebuilt from their daily pieces'
SELECT kind, person_id, office_id, city_id, started_at, ended_at, hours, piece_ids
  FROM iact.shifts ORDER BY person_id, started_at;

\echo
\echo '--- Visibility comes from the organisation, through row-level security'
SELECT 1 AS tess, iact.visible_offices(1) AS visible_office;
SELECT 2 AS otto, iact.visible_offices(2) AS visible_office;
CREATE ROLE demo_reader NOLOGIN;
GRANT USAGE ON SCHEMA iact TO demo_reader;
GRANT SELECT ON iact.events, iact.work_shifts, iact.extra_hours, iact.offices, iact.cities TO demo_reader;
GRANT EXECUTE ON FUNCTION iact.session_person_id(), iact.visible_offices(bigint), iact.visible_cities(bigint)
    TO demo_reader;
\echo 'Tess (territorial manager of Lisbon) sees Lisbon''s offices and extra hours:'
SET iact.person_id = 1;
SET ROLE demo_reader;
SELECT kind, person_id, office_id, city_id, started_at, ended_at FROM iact.events ORDER BY started_at;
RESET ROLE;
\echo 'Otto (operational manager of Porto Ribeira) sees that office and his own events; not Porto''s extra hours'
\echo '(extra hours belong to the city: only its territorial manager sees them):'
SET iact.person_id = 2;
SET ROLE demo_reader;
SELECT kind, person_id, office_id, city_id, started_at, ended_at FROM iact.events ORDER BY started_at;
RESET ROLE;
\echo 'Lia sees only her own events:'
SET iact.person_id = 3;
SET ROLE demo_reader;
SELECT kind, person_id, office_id, city_id, started_at, ended_at FROM iact.events ORDER BY started_at;
RESET ROLE;
RESET iact.person_id;
DROP OWNED BY demo_reader;
DROP ROLE demo_reader;

\echo
\echo '--- Health: no overlapping pair anywhere (rows loaded with triggers off would be listed here)'
SELECT count(*) AS overlapping_pairs FROM iact.find_overlaps();
