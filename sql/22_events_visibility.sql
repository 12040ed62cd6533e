-- Visibility from the organisation: iact.person_id, iact.visible_offices /
-- visible_cities and the row-level security policies of the event tables.
SET client_min_messages = warning;
-- ids shown below must not depend on the tests run before
SELECT setval(pg_get_serial_sequence('iact.work_shifts', 'id'), 2251, false),
       setval(pg_get_serial_sequence('iact.extra_hours', 'id'), 2251, false);

-- Lisbon (territorial manager 2201) has offices 2201 and 2202;
-- Porto has office 2203 (operational manager 2202) and office 2204.
INSERT INTO iact.people (id, name, identifier) VALUES
    (2201, 'Tess Territorial', 'R-2201'), (2202, 'Otto Operational', 'R-2202'),
    (2203, 'Lia Lisbon', 'R-2203'), (2204, 'Pedro Porto', 'R-2204'), (2205, 'Nora Nobody', 'R-2205');
INSERT INTO iact.cities (id, name, territorial_manager_id) VALUES (2201, 'Lisbon', 2201), (2202, 'Porto', NULL);
INSERT INTO iact.offices (id, city_id, name, operational_manager_id) VALUES
    (2201, 2201, 'Lisbon A', NULL), (2202, 2201, 'Lisbon B', NULL),
    (2203, 2202, 'Porto A', 2202), (2204, 2202, 'Porto B', NULL);
INSERT INTO iact.work_shifts (id, person_id, office_id, started_at, ended_at) VALUES
    (2201, 2203, 2201, '2024-05-02 08:00', '2024-05-02 16:00'),
    (2202, 2203, 2202, '2024-05-03 08:00', '2024-05-03 16:00'),
    (2203, 2204, 2203, '2024-05-02 08:00', '2024-05-02 16:00'),
    (2204, 2204, 2204, '2024-05-03 08:00', '2024-05-03 16:00'),
    (2205, 2202, 2204, '2024-05-02 09:00', '2024-05-02 10:00');
INSERT INTO iact.extra_hours (id, person_id, city_id, started_at, ended_at) VALUES
    (2201, 2203, 2201, '2024-05-02 16:00', '2024-05-02 18:00'),
    (2202, 2204, 2202, '2024-05-02 16:00', '2024-05-02 18:00');

-- visibility functions
SELECT iact.visible_offices(2201) AS tess ORDER BY 1;
SELECT iact.visible_offices(2202) AS otto ORDER BY 1;
SELECT count(*) AS worker FROM iact.visible_offices(2203);
SELECT iact.visible_cities(2201) AS tess_cities ORDER BY 1;
-- an office's operational manager sees no city (extra hours are the territorial manager's)
SELECT iact.visible_cities(2202) AS otto_cities ORDER BY 1;
SELECT count(*) AS nobody FROM iact.visible_offices(NULL);

-- the setting: empty or a positive bigint, changed by superusers only
SHOW iact.person_id;
SELECT iact.session_person_id() IS NULL AS nobody;
SET iact.person_id = 'Tess';
SET iact.person_id = '-3';
SET iact.person_id = '99999999999999999999';
SET iact.person_id = 2201;
SELECT iact.session_person_id();
RESET iact.person_id;

CREATE ROLE regress_events_reader NOLOGIN;
GRANT USAGE ON SCHEMA iact TO regress_events_reader;
GRANT SELECT ON iact.work_shifts, iact.extra_hours, iact.offices, iact.cities, iact.people,
    iact.events, iact.event_days, iact.hours_per_day TO regress_events_reader;
GRANT EXECUTE ON FUNCTION iact.session_person_id(), iact.visible_offices(bigint),
    iact.visible_cities(bigint) TO regress_events_reader;

SET ROLE regress_events_reader;
SET iact.person_id = 2201;
-- no identity: nothing is visible
SELECT count(*) AS visible FROM iact.events;
RESET ROLE;

-- the territorial manager: every office of Lisbon, Lisbon's extra hours, nothing of Porto
SET iact.person_id = 2201;
SET ROLE regress_events_reader;
SELECT kind, id, person_id FROM iact.events ORDER BY kind, id;
RESET ROLE;
-- the operational manager of Porto A: that office and his own shift in Porto B; not Porto's extra
-- hours (extra hours belong to the city: only its territorial manager sees them, issue 11)
SET iact.person_id = 2202;
SET ROLE regress_events_reader;
SELECT kind, id, person_id FROM iact.events ORDER BY kind, id;
SELECT * FROM iact.hours_per_day ORDER BY person_id, day;
RESET ROLE;
-- a worker: own events only
SET iact.person_id = 2204;
SET ROLE regress_events_reader;
SELECT kind, id, person_id FROM iact.events ORDER BY kind, id;
-- the visibility is computed once per query (init plans), and the columns are indexed
SET enable_seqscan = off;
EXPLAIN (COSTS OFF) SELECT id FROM iact.work_shifts;
RESET enable_seqscan;
RESET ROLE;
-- someone who manages nothing and has no events
SET iact.person_id = 2205;
SET ROLE regress_events_reader;
SELECT count(*) AS visible FROM iact.events;
RESET ROLE;
-- superusers (and owners, BYPASSRLS roles) see everything
SELECT count(*) AS all_events FROM iact.events WHERE person_id BETWEEN 2201 AND 2205;

-- recording through the policies: Otto may record for his office, not for another
CREATE ROLE regress_events_clerk NOLOGIN;
GRANT USAGE ON SCHEMA iact TO regress_events_clerk;
GRANT SELECT ON iact.people, iact.offices, iact.cities TO regress_events_clerk;
GRANT SELECT, INSERT ON iact.work_shifts, iact.extra_hours TO regress_events_clerk;
GRANT EXECUTE ON FUNCTION iact.record_work_shift(bigint, bigint, timestamp, timestamp),
    iact.record_event(regclass, name, regclass, bigint, bigint, timestamp, timestamp), iact.daily_pieces(timestamp, timestamp),
    iact.session_person_id(), iact.visible_offices(bigint), iact.visible_cities(bigint)
    TO regress_events_clerk;
SET iact.person_id = 2202;
SET ROLE regress_events_clerk;
SELECT count(*) AS pieces FROM iact.record_work_shift(2204, 2203, '2024-05-06 08:00', '2024-05-06 12:00');
SELECT iact.record_work_shift(2204, 2201, '2024-05-07 08:00', '2024-05-07 12:00');
-- the invariant also sees rows the clerk cannot see (2203's shift in Lisbon)
SELECT count(*) AS lia_visible FROM iact.work_shifts WHERE person_id = 2203;
SELECT iact.record_work_shift(2203, 2203, '2024-05-02 15:00', '2024-05-02 17:00');
-- and names the conflicting event only when the clerk may see it (his own office's)
SELECT iact.record_work_shift(2204, 2203, '2024-05-06 11:00', '2024-05-06 13:00');
-- the setting cannot be changed without the privilege
SET iact.person_id = 2201;
RESET ROLE;
GRANT SET ON PARAMETER iact.person_id TO regress_events_clerk;
SET ROLE regress_events_clerk;
SET iact.person_id = 2201;
SHOW iact.person_id;
RESET ROLE;
RESET iact.person_id;

-- pinned per role by an administrator: applied at login, not changeable by the role
SELECT current_user AS regress_admin \gset
CREATE ROLE regress_events_login LOGIN;
ALTER ROLE regress_events_login SET iact.person_id = '2204';
GRANT USAGE ON SCHEMA iact TO regress_events_login;
GRANT SELECT ON iact.events, iact.work_shifts, iact.extra_hours, iact.offices, iact.cities
    TO regress_events_login;
GRANT EXECUTE ON FUNCTION iact.session_person_id(), iact.visible_offices(bigint),
    iact.visible_cities(bigint) TO regress_events_login;
\c - regress_events_login
SHOW iact.person_id;
SELECT kind, id, person_id FROM iact.events ORDER BY kind, id;
SET iact.person_id = 2201;
\c - :regress_admin
SET client_min_messages = warning;
DROP OWNED BY regress_events_login;
DROP ROLE regress_events_login;

REVOKE SET ON PARAMETER iact.person_id FROM regress_events_clerk;
DROP OWNED BY regress_events_reader, regress_events_clerk;
DROP ROLE regress_events_reader;
DROP ROLE regress_events_clerk;
