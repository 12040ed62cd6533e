-- Deleting a work shift or extra hours leaves a trail in iact.event_deletions:
-- what was deleted, when, by whom; the trail is append-only.
SET client_min_messages = warning;
INSERT INTO iact.people (id, name, identifier) VALUES (2401, 'Trail Person', 'T-2401');
INSERT INTO iact.cities (id, name) VALUES (2401, 'Tavira');
INSERT INTO iact.offices (id, city_id, name) VALUES (2401, 2401, 'Tavira Centro');
INSERT INTO iact.work_shifts (id, person_id, office_id, started_at, ended_at) VALUES
    (24001, 2401, 2401, '2024-05-01 09:00', '2024-05-01 17:00'),
    (24002, 2401, 2401, '2024-05-02 09:00', '2024-05-02 17:00'),
    (24003, 2401, 2401, '2024-05-03 09:00', '2024-05-03 17:00');
INSERT INTO iact.extra_hours (id, person_id, city_id, started_at, ended_at) VALUES
    (24001, 2401, 2401, '2024-05-01 18:00', '2024-05-01 20:00');
SELECT count(*) AS trail_before FROM iact.event_deletions WHERE person_id = 2401;

-- a clerk deletes a shift and the extra hours
CREATE ROLE regress_trail_clerk BYPASSRLS;
GRANT USAGE ON SCHEMA iact TO regress_trail_clerk;
GRANT SELECT, DELETE, TRUNCATE ON iact.work_shifts, iact.extra_hours TO regress_trail_clerk;
SET ROLE regress_trail_clerk;
SET app.current_user_id = 'ui-user-77';
DELETE FROM iact.work_shifts WHERE id = 24002;
DELETE FROM iact.extra_hours WHERE person_id = 2401;
-- the clerk cannot read, change or remove the trail
SELECT count(*) FROM iact.event_deletions;
RESET app.current_user_id;
RESET ROLE;
SELECT event_table, operation, event_id, person_id, started_at, ended_at,
       old_row ->> 'office_id' AS office_id, old_row ->> 'city_id' AS city_id,
       deleted_by, session_role = session_user AS session_role_ok, app_user_id,
       deleted_at <= clock_timestamp() AS deleted_at_ok, txid > 0 AS has_txid
  FROM iact.event_deletions WHERE person_id = 2401 ORDER BY id;
-- a rolled-back delete leaves nothing; a TRUNCATE keeps what it removed,
-- one trail row per event, as a DELETE does
BEGIN;
DELETE FROM iact.work_shifts WHERE id = 24003;
ROLLBACK;
SELECT count(*) AS trail_rows FROM iact.event_deletions WHERE person_id = 2401;
BEGIN;
INSERT INTO iact.extra_hours (id, person_id, city_id, started_at, ended_at) VALUES
    (24002, 2401, 2401, '2024-05-04 18:00', '2024-05-04 20:00'),
    (24003, 2401, 2401, '2024-05-05 18:00', '2024-05-05 19:00');
CREATE TEMP TABLE eh_before AS SELECT id, person_id, started_at, ended_at FROM iact.extra_hours;
SET ROLE regress_trail_clerk;
TRUNCATE iact.extra_hours;
RESET ROLE;
SELECT (SELECT count(*) FROM eh_before) > 1 AS several_events,
       count(*) = (SELECT count(*) FROM eh_before) AS one_row_per_event,
       count(*) FILTER (WHERE (d.event_id, d.person_id, d.started_at, d.ended_at)
                        IN (SELECT * FROM eh_before)
                          AND (d.old_row ->> 'id')::bigint = d.event_id) = count(*) AS rows_match,
       count(DISTINCT d.deleted_by) AS deleters, min(d.deleted_by) AS deleted_by
  FROM iact.event_deletions d WHERE d.operation = 'TRUNCATE';
SELECT event_table, operation, event_id, old_row ->> 'city_id' AS city_id, deleted_by
  FROM iact.event_deletions WHERE operation = 'TRUNCATE' AND person_id = 2401 ORDER BY event_id;
ROLLBACK;

-- append-only, even for the owner
UPDATE iact.event_deletions SET deleted_by = 'nobody' WHERE person_id = 2401;
DELETE FROM iact.event_deletions WHERE person_id = 2401;
TRUNCATE iact.event_deletions;
SELECT count(*) AS trail_rows FROM iact.event_deletions WHERE person_id = 2401;
-- the trail is not executable or readable by PUBLIC, and its rows are dumped
SELECT has_table_privilege('public', 'iact.event_deletions', 'SELECT') AS public_reads,
       has_function_privilege('public', 'iact.event_deletion_trail()', 'EXECUTE') AS public_executes;
SELECT 'iact.event_deletions'::regclass = ANY (extconfig) AS dumped
  FROM pg_extension WHERE extname = 'iact';

DELETE FROM iact.work_shifts WHERE person_id = 2401;
DROP OWNED BY regress_trail_clerk;
DROP ROLE regress_trail_clerk;
