-- iact extension script: built by concatenating src/sql/*.sql in order.
-- Each fragment belongs to one capability (see the file names).

\echo Use "CREATE EXTENSION iact" to load this file. \quit

COMMENT ON SCHEMA iact IS 'iact: IVR sync, non-overlapping time events, migration log, audit and health';

-- Nothing in schema iact is usable by PUBLIC unless a fragment grants it.
REVOKE ALL ON SCHEMA iact FROM PUBLIC;

-- ===========================================================================
-- Migrations: the migration log (src/migration_log.c, src/migration_run.c)
-- and batched backfills (src/backfill.c).
-- ===========================================================================

-- Append-only history: one row per action.  An "apply" row goes RUNNING ->
-- SUCCESS | FAILED; a "rollback" row (rollback_of = the apply row it undoes)
-- is ROLLED_BACK | ROLLBACK_FAILED.  Rows are never deleted, and a row may
-- change only while it is RUNNING (trigger migration_log_guard).
CREATE TABLE iact.migration_log (
    id                  bigserial PRIMARY KEY,
    version             text NOT NULL CHECK (version <> ''),
    description         text NOT NULL,
    action              text NOT NULL DEFAULT 'apply' CHECK (action IN ('apply', 'rollback')),
    status              text NOT NULL CHECK (status IN ('RUNNING', 'SUCCESS', 'FAILED',
                                                        'ROLLED_BACK', 'ROLLBACK_FAILED')),
    started_at          timestamptz NOT NULL DEFAULT pg_catalog.clock_timestamp(),
    completed_at        timestamptz,
    duration_ms         numeric(16,3),
    rows_affected       bigint CHECK (rows_affected >= 0),
    error_message       text,
    error_sqlstate      text,
    checksum            text,
    up_sql              text,
    down_sql            text,
    rollback_available  boolean GENERATED ALWAYS AS (down_sql IS NOT NULL) STORED,
    rollback_of         bigint REFERENCES iact.migration_log (id),
    runner              text NOT NULL CHECK (runner IN ('run_migration', 'external', 'safe_rollback_migration')),
    installed_by        name NOT NULL,
    session_role        name NOT NULL,
    application_name    text,
    backend_pid         integer,
    CHECK ((action = 'apply' AND status IN ('RUNNING', 'SUCCESS', 'FAILED') AND rollback_of IS NULL)
        OR (action = 'rollback' AND status IN ('ROLLED_BACK', 'ROLLBACK_FAILED') AND rollback_of IS NOT NULL)),
    CHECK ((status = 'RUNNING') = (completed_at IS NULL))
);
CREATE INDEX migration_log_version_idx ON iact.migration_log (version, id);
CREATE INDEX migration_log_running_idx ON iact.migration_log (started_at) WHERE status = 'RUNNING';

COMMENT ON TABLE iact.migration_log IS 'Append-only history of migrations applied and rolled back (iact)';
COMMENT ON COLUMN iact.migration_log.checksum IS 'SHA-256 (hex) of up_sql, for run_migration entries';
COMMENT ON COLUMN iact.migration_log.rollback_of IS 'For rollback entries: the apply entry undone';

SELECT pg_catalog.pg_extension_config_dump('iact.migration_log', '');
SELECT pg_catalog.pg_extension_config_dump('iact.migration_log_id_seq', '');

CREATE FUNCTION iact.migration_log_guard() RETURNS trigger
    LANGUAGE c AS 'MODULE_PATHNAME', 'iact_migration_log_guard';
REVOKE ALL ON FUNCTION iact.migration_log_guard() FROM PUBLIC;
CREATE TRIGGER migration_log_guard BEFORE UPDATE OR DELETE ON iact.migration_log
    FOR EACH ROW EXECUTE FUNCTION iact.migration_log_guard();
CREATE TRIGGER migration_log_no_truncate BEFORE TRUNCATE ON iact.migration_log
    FOR EACH STATEMENT EXECUTE FUNCTION iact.migration_log_guard();

-- One row per version: is it applied now, by which entry, and what happened last.
CREATE VIEW iact.migration_status AS
WITH per_version AS (
    SELECT version,
           max(id) FILTER (WHERE action = 'apply' AND status = 'SUCCESS') AS last_success_id,
           max(id) FILTER (WHERE action = 'rollback' AND status = 'ROLLED_BACK') AS last_rollback_id,
           max(id) AS last_entry_id
      FROM iact.migration_log
     GROUP BY version
)
SELECT p.version,
       coalesce(a.description, l.description) AS description,
       (p.last_success_id IS NOT NULL
        AND p.last_success_id > coalesce(p.last_rollback_id, 0)) AS applied,
       CASE WHEN p.last_success_id IS NOT NULL
                 AND p.last_success_id > coalesce(p.last_rollback_id, 0) THEN a.id END AS applied_id,
       CASE WHEN p.last_success_id IS NOT NULL
                 AND p.last_success_id > coalesce(p.last_rollback_id, 0) THEN a.completed_at END AS applied_at,
       a.checksum,
       a.rollback_available,
       l.action AS last_action,
       l.status AS last_status,
       l.started_at AS last_started_at
  FROM per_version p
  LEFT JOIN iact.migration_log a ON a.id = p.last_success_id
  JOIN iact.migration_log l ON l.id = p.last_entry_id;

COMMENT ON VIEW iact.migration_status IS 'Current state of each migration version (iact)';

CREATE FUNCTION iact.log_migration_start(version text, description text)
    RETURNS bigint LANGUAGE c AS 'MODULE_PATHNAME', 'iact_log_migration_start';
CREATE FUNCTION iact.log_migration_complete(log_id bigint, rows_affected bigint DEFAULT NULL)
    RETURNS void LANGUAGE c AS 'MODULE_PATHNAME', 'iact_log_migration_complete';
CREATE FUNCTION iact.log_migration_failed(log_id bigint, error_message text)
    RETURNS void LANGUAGE c AS 'MODULE_PATHNAME', 'iact_log_migration_failed';
CREATE PROCEDURE iact.run_migration(version text, description text, up_sql text,
                                    down_sql text DEFAULT NULL, lock_timeout interval DEFAULT NULL)
    LANGUAGE c AS 'MODULE_PATHNAME', 'iact_run_migration';
CREATE FUNCTION iact.safe_rollback_migration(version text, lock_timeout interval DEFAULT NULL)
    RETURNS boolean LANGUAGE c AS 'MODULE_PATHNAME', 'iact_safe_rollback_migration';

REVOKE ALL ON FUNCTION iact.log_migration_start(text, text) FROM PUBLIC;
REVOKE ALL ON FUNCTION iact.log_migration_complete(bigint, bigint) FROM PUBLIC;
REVOKE ALL ON FUNCTION iact.log_migration_failed(bigint, text) FROM PUBLIC;
REVOKE ALL ON PROCEDURE iact.run_migration(text, text, text, text, interval) FROM PUBLIC;
REVOKE ALL ON FUNCTION iact.safe_rollback_migration(text, interval) FROM PUBLIC;
REVOKE ALL ON TABLE iact.migration_log FROM PUBLIC;
REVOKE ALL ON TABLE iact.migration_status FROM PUBLIC;

-- Batched backfills (src/backfill.c): one row per named backfill, updated
-- in the same transaction as each batch, so a resumed backfill continues
-- exactly after the last committed batch.
CREATE TABLE iact.backfill_runs (
    id              bigserial PRIMARY KEY,
    name            text NOT NULL UNIQUE CHECK (name <> ''),
    target_table    text NOT NULL,
    target_oid      oid NOT NULL,
    set_sql         text NOT NULL,
    where_sql       text,
    key_columns     text[] NOT NULL,
    upper_key       text[],
    last_key        text[],
    batch_size      integer NOT NULL CHECK (batch_size > 0),
    pause_ms        integer NOT NULL CHECK (pause_ms >= 0),
    status          text NOT NULL CHECK (status IN ('running', 'done', 'failed')),
    rows_done       bigint NOT NULL DEFAULT 0,
    batches         bigint NOT NULL DEFAULT 0,
    estimated_total bigint,
    started_at      timestamptz NOT NULL DEFAULT pg_catalog.clock_timestamp(),
    updated_at      timestamptz NOT NULL DEFAULT pg_catalog.clock_timestamp(),
    finished_at     timestamptz,
    run_seconds     double precision NOT NULL DEFAULT 0,
    error_message   text,
    started_by      name NOT NULL,
    backend_pid     integer
);
COMMENT ON TABLE iact.backfill_runs IS 'Progress of batched backfills, one row per named backfill (iact)';
SELECT pg_catalog.pg_extension_config_dump('iact.backfill_runs', '');
SELECT pg_catalog.pg_extension_config_dump('iact.backfill_runs_id_seq', '');

CREATE VIEW iact.backfill_progress AS
SELECT name, target_table, status, rows_done, estimated_total,
       CASE WHEN estimated_total > 0
            THEN round(100.0 * least(rows_done, estimated_total) / estimated_total, 1) END AS percent,
       CASE WHEN run_seconds > 0 THEN round((rows_done / run_seconds)::numeric, 1) END AS rows_per_second,
       batches, last_key, upper_key, started_at, updated_at, finished_at, error_message
  FROM iact.backfill_runs;

CREATE PROCEDURE iact.backfill(name text, target regclass, set_sql text,
                               where_sql text DEFAULT NULL, batch_size integer DEFAULT 1000,
                               pause interval DEFAULT '0')
    LANGUAGE c AS 'MODULE_PATHNAME', 'iact_backfill';
REVOKE ALL ON PROCEDURE iact.backfill(text, regclass, text, text, integer, interval) FROM PUBLIC;
REVOKE ALL ON TABLE iact.backfill_runs, iact.backfill_progress FROM PUBLIC;
-- ---------------------------------------------------------------------------
-- 20_events.sql: time events that never overlap (C: src/no_overlap.c,
-- src/events.c).  Organisation (people, cities, offices), the two event
-- tables, the no-overlap machinery, recording functions, computed totals and
-- visibility by row-level security.  Nothing derived is stored.
-- ---------------------------------------------------------------------------

-- The organisation --------------------------------------------------------

CREATE TABLE iact.people (
    id          bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    name        text NOT NULL CHECK (btrim(name) <> ''),
    identifier  text NOT NULL UNIQUE CHECK (btrim(identifier) <> '')
);
COMMENT ON TABLE iact.people IS 'People who record time events; identifier is the external (e.g. payroll) key';

CREATE TABLE iact.cities (
    id                      bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    name                    text NOT NULL CHECK (btrim(name) <> ''),
    territorial_manager_id  bigint REFERENCES iact.people
);
CREATE INDEX cities_territorial_manager_id ON iact.cities (territorial_manager_id);
COMMENT ON TABLE iact.cities IS 'Cities; the territorial manager sees every office of the city';

CREATE TABLE iact.offices (
    id                      bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    city_id                 bigint NOT NULL REFERENCES iact.cities,
    name                    text NOT NULL CHECK (btrim(name) <> ''),
    operational_manager_id  bigint REFERENCES iact.people
);
CREATE INDEX offices_city_id ON iact.offices (city_id);
CREATE INDEX offices_operational_manager_id ON iact.offices (operational_manager_id);
COMMENT ON TABLE iact.offices IS 'Offices; the operational manager sees the office';

-- The events: immutable, each within one calendar day, [started_at, ended_at)

CREATE TABLE iact.work_shifts (
    id          bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    person_id   bigint NOT NULL REFERENCES iact.people,
    office_id   bigint NOT NULL REFERENCES iact.offices,
    started_at  timestamp NOT NULL,
    ended_at    timestamp NOT NULL,
    CONSTRAINT work_shifts_starts_before_end CHECK (started_at < ended_at),
    CONSTRAINT work_shifts_within_one_day
        CHECK (ended_at <= date_trunc('day', started_at) + interval '1 day')
);
CREATE INDEX work_shifts_person_started ON iact.work_shifts (person_id, started_at);
CREATE INDEX work_shifts_office_id ON iact.work_shifts (office_id);
COMMENT ON TABLE iact.work_shifts IS 'Standard work shifts, one row per calendar day (see iact.record_work_shift)';

CREATE TABLE iact.extra_hours (
    id          bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    person_id   bigint NOT NULL REFERENCES iact.people,
    city_id     bigint NOT NULL REFERENCES iact.cities,
    started_at  timestamp NOT NULL,
    ended_at    timestamp NOT NULL,
    CONSTRAINT extra_hours_starts_before_end CHECK (started_at < ended_at),
    CONSTRAINT extra_hours_within_one_day
        CHECK (ended_at <= date_trunc('day', started_at) + interval '1 day')
);
CREATE INDEX extra_hours_person_started ON iact.extra_hours (person_id, started_at);
CREATE INDEX extra_hours_city_id ON iact.extra_hours (city_id);
COMMENT ON TABLE iact.extra_hours IS 'Extra hours, one row per calendar day (see iact.record_extra_hours)';

-- one call per statement: each call updates the pg_extension row
SELECT pg_catalog.pg_extension_config_dump('iact.people', '');
SELECT pg_catalog.pg_extension_config_dump('iact.cities', '');
SELECT pg_catalog.pg_extension_config_dump('iact.offices', '');
SELECT pg_catalog.pg_extension_config_dump('iact.work_shifts', '');
SELECT pg_catalog.pg_extension_config_dump('iact.extra_hours', '');
SELECT pg_catalog.pg_extension_config_dump(pg_catalog.pg_get_serial_sequence('iact.people', 'id'), '');
SELECT pg_catalog.pg_extension_config_dump(pg_catalog.pg_get_serial_sequence('iact.cities', 'id'), '');
SELECT pg_catalog.pg_extension_config_dump(pg_catalog.pg_get_serial_sequence('iact.offices', 'id'), '');
SELECT pg_catalog.pg_extension_config_dump(pg_catalog.pg_get_serial_sequence('iact.work_shifts', 'id'), '');
SELECT pg_catalog.pg_extension_config_dump(pg_catalog.pg_get_serial_sequence('iact.extra_hours', 'id'), '');

-- Immutability --------------------------------------------------------------

CREATE FUNCTION iact.refuse_update() RETURNS trigger
    LANGUAGE c AS 'MODULE_PATHNAME', 'events_refuse_update';
COMMENT ON FUNCTION iact.refuse_update() IS 'BEFORE UPDATE trigger: events are immutable facts';

CREATE TRIGGER work_shifts_immutable BEFORE UPDATE ON iact.work_shifts
    FOR EACH STATEMENT EXECUTE FUNCTION iact.refuse_update();
CREATE TRIGGER extra_hours_immutable BEFORE UPDATE ON iact.extra_hours
    FOR EACH STATEMENT EXECUTE FUNCTION iact.refuse_update();

-- The no-overlap machinery (C) ------------------------------------------------

CREATE FUNCTION iact.no_overlap_trigger() RETURNS trigger
    LANGUAGE c AS 'MODULE_PATHNAME', 'no_overlap_trigger';
COMMENT ON FUNCTION iact.no_overlap_trigger() IS
    'AFTER INSERT OR UPDATE row trigger of a no-overlap group; attach it with iact.enforce_no_overlap()';

CREATE FUNCTION iact.no_overlap_members(of_group text DEFAULT NULL, strict boolean DEFAULT false)
    RETURNS TABLE (group_name text, table_name regclass, person_column name,
                   start_column name, end_column name, probe_index regclass,
                   max_length interval)
    LANGUAGE c STABLE AS 'MODULE_PATHNAME', 'no_overlap_members';
COMMENT ON FUNCTION iact.no_overlap_members(text, boolean) IS
    'Tables of one (or every) no-overlap group, read from pg_trigger; strict raises what the trigger would';

CREATE FUNCTION iact.no_overlap_touch(group_name text) RETURNS void
    LANGUAGE c STRICT AS 'MODULE_PATHNAME', 'no_overlap_touch';
COMMENT ON FUNCTION iact.no_overlap_touch(text) IS
    'Internal: make every backend re-read the members of a group';

CREATE FUNCTION iact.find_overlaps(of_group text DEFAULT NULL)
    RETURNS TABLE (group_name text, person text,
                   table_a regclass, id_a text, started_a text, ended_a text,
                   table_b regclass, id_b text, started_b text, ended_b text)
    LANGUAGE plpgsql STABLE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    g text;
    m record;
    parts text[];
    q text;
BEGIN
    FOR g IN
        SELECT DISTINCT mm.group_name FROM iact.no_overlap_members(of_group) mm
         ORDER BY 1
    LOOP
        parts := '{}';
        FOR m IN
            SELECT mm.*,
                   (SELECT quote_ident(a.attname)
                      FROM pg_index i JOIN pg_attribute a
                        ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0]
                     WHERE i.indrelid = mm.table_name AND i.indisprimary AND i.indnkeyatts = 1) AS pk
              FROM iact.no_overlap_members(g) mm
             -- a partitioned table's rows are read from its partitions, which
             -- carry the cloned trigger and are members themselves
             WHERE (SELECT c.relkind FROM pg_class c WHERE c.oid = mm.table_name) <> 'p'
        LOOP
            parts := parts || format(
                'SELECT %L::regclass AS tbl, %s::text AS id, %I AS p, %I AS s, %I AS e FROM %s',
                m.table_name, coalesce(m.pk, $c$'ctid ' || ctid$c$), m.person_column, m.start_column,
                m.end_column, m.table_name);
        END LOOP;
        -- sorted by (person, start), an event overlaps an earlier one iff it
        -- starts before the latest end seen so far; only those are joined back
        q := format($q$
            WITH ev AS (%s),
            w AS (SELECT ev.*, row_number() OVER o AS ord,
                         max(e) OVER (o ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS prev_end
                    FROM ev WINDOW o AS (PARTITION BY p ORDER BY s, e))
            SELECT %L::text, a.p::text, a.tbl, a.id, a.s::text, a.e::text,
                   b.tbl, b.id, b.s::text, b.e::text
              FROM w b JOIN w a ON a.p = b.p AND a.ord < b.ord AND a.e > b.s
             WHERE b.prev_end > b.s
             ORDER BY a.p, a.s, b.s$q$, array_to_string(parts, ' UNION ALL '), g);
        RETURN QUERY EXECUTE q;
    END LOOP;
END
$$;
COMMENT ON FUNCTION iact.find_overlaps(text) IS
    'One row per overlapping pair of events in one (or every) no-overlap group; a is the earlier';

CREATE FUNCTION iact.enforce_no_overlap(group_name text, tables regclass[],
                                        person_column name DEFAULT 'person_id',
                                        start_column name DEFAULT 'started_at',
                                        end_column name DEFAULT 'ended_at',
                                        max_length interval DEFAULT NULL)
    RETURNS void
    LANGUAGE plpgsql
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    t regclass;
    n bigint;
BEGIN
    IF group_name IS NULL OR btrim(group_name) = '' OR length(group_name) > 40 THEN
        RAISE EXCEPTION 'group name must be a non-empty text of at most 40 characters'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF tables IS NULL OR cardinality(tables) = 0 OR array_position(tables, NULL) IS NOT NULL THEN
        RAISE EXCEPTION 'tables must be a non-empty array of tables without NULLs'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF person_column IS NULL OR start_column IS NULL OR end_column IS NULL THEN
        RAISE EXCEPTION 'person, start and end columns must not be NULL'
            USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF max_length IS NOT NULL AND max_length <= interval '0' THEN
        RAISE EXCEPTION 'max_length must be a positive interval' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    -- existing members keep writers out while the group is checked
    FOR t IN SELECT mm.table_name FROM iact.no_overlap_members(group_name) mm LOOP
        EXECUTE format('LOCK TABLE %s IN SHARE ROW EXCLUSIVE MODE', t);
    END LOOP;
    PERFORM iact.no_overlap_touch(group_name);
    FOREACH t IN ARRAY tables LOOP
        -- a partitioned table: PostgreSQL clones the row trigger to every
        -- partition, present and future
        IF (SELECT relkind FROM pg_class WHERE oid = t) NOT IN ('r', 'p') THEN
            RAISE EXCEPTION '% is not a table', t USING ERRCODE = 'wrong_object_type';
        END IF;
        -- every UPDATE: a BEFORE trigger may change the times in an UPDATE of
        -- another column (the C function returns at once when they are unchanged)
        EXECUTE format('CREATE OR REPLACE TRIGGER %I AFTER INSERT OR UPDATE ON %s '
                       'FOR EACH ROW EXECUTE FUNCTION iact.no_overlap_trigger(%L, %L, %L, %L, %L)',
                       'iact_no_overlap ' || group_name,
                       t, group_name, person_column, start_column, end_column,
                       coalesce(max_length::text, ''));
    END LOOP;
    PERFORM iact.no_overlap_members(group_name, true);
    IF max_length IS NOT NULL THEN
        FOREACH t IN ARRAY tables LOOP
            EXECUTE format('SELECT count(*) FROM %s WHERE %I - %I > %L::interval',
                           t, end_column, start_column, max_length) INTO n;
            IF n > 0 THEN
                RAISE EXCEPTION '% holds % event(s) longer than %', t, n, max_length
                    USING ERRCODE = 'check_violation';
            END IF;
        END LOOP;
    END IF;
    SELECT count(*) INTO n FROM iact.find_overlaps(group_name);
    IF n > 0 THEN
        RAISE EXCEPTION 'no-overlap group "%" already holds % overlapping pair(s) of events', group_name, n
            USING ERRCODE = 'exclusion_violation',
                  HINT = format('List them with SELECT * FROM iact.find_overlaps(%L), resolve them, and retry.',
                                group_name);
    END IF;
END
$$;
COMMENT ON FUNCTION iact.enforce_no_overlap(text, regclass[], name, name, name, interval) IS
    'Add tables to a no-overlap group: no person may have overlapping [start, end) across the group';

CREATE FUNCTION iact.release_no_overlap(group_name text, tables regclass[] DEFAULT NULL)
    RETURNS void
    LANGUAGE plpgsql
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    t regclass;
    targets regclass[];
BEGIN
    PERFORM iact.no_overlap_touch(group_name);
    -- a trigger cloned to a partition goes with its partitioned table's
    SELECT coalesce(array_agg(mm.table_name), '{}') INTO targets
      FROM iact.no_overlap_members(group_name) mm
     WHERE (tables IS NULL OR mm.table_name = ANY (tables))
       AND NOT EXISTS (SELECT 1 FROM pg_trigger tg
                        WHERE tg.tgrelid = mm.table_name AND tg.tgname = 'iact_no_overlap ' || release_no_overlap.group_name
                          AND tg.tgparentid <> 0);
    FOREACH t IN ARRAY targets LOOP
        EXECUTE format('DROP TRIGGER %I ON %s', 'iact_no_overlap ' || group_name, t);
    END LOOP;
END
$$;
COMMENT ON FUNCTION iact.release_no_overlap(text, regclass[]) IS
    'Remove tables (default: all) from a no-overlap group';

-- events lie within one calendar day, so none lasts more than a day: the
-- check then only looks at events starting in (start - 1 day, end)
SELECT iact.enforce_no_overlap('iact.events', ARRAY['iact.work_shifts', 'iact.extra_hours']::regclass[],
                               max_length => interval '1 day');

-- Recording -------------------------------------------------------------------

-- [started_at, ended_at) cut at each midnight
CREATE FUNCTION iact.daily_pieces(started_at timestamp, ended_at timestamp)
    RETURNS TABLE (piece_start timestamp, piece_end timestamp)
    LANGUAGE sql IMMUTABLE STRICT
    SET search_path = pg_catalog, pg_temp
AS $$
    SELECT greatest(d, started_at), least(d + interval '1 day', ended_at)
      FROM generate_series(date_trunc('day', started_at), ended_at, interval '1 day') AS d
     WHERE d < ended_at
     ORDER BY d
$$;

-- Shared by the record functions: validate (the longest event is 24 hours),
-- cut at midnight, insert every piece in one statement, return the new ids.
CREATE FUNCTION iact.record_event(event_table regclass, place_column name, place_table regclass,
                                  person_id bigint, place_id bigint,
                                  started_at timestamp, ended_at timestamp)
    RETURNS SETOF bigint
    LANGUAGE plpgsql
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    place_exists boolean;
BEGIN
    IF person_id IS NULL OR started_at IS NULL OR ended_at IS NULL THEN
        RAISE EXCEPTION 'person_id, started_at and ended_at must not be NULL'
            USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF isfinite(started_at) IS NOT TRUE OR isfinite(ended_at) IS NOT TRUE THEN
        RAISE EXCEPTION 'an event must start and end at finite times'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF ended_at <= started_at THEN
        RAISE EXCEPTION 'an event must end after it starts'
            USING ERRCODE = 'invalid_parameter_value',
                  DETAIL = format('Attempted [%s, %s).', started_at, ended_at);
    END IF;
    IF ended_at - started_at > interval '24 hours' THEN
        RAISE EXCEPTION 'an event may last at most 24 hours'
            USING ERRCODE = 'invalid_parameter_value',
                  DETAIL = format('Attempted [%s, %s) lasts %s.', started_at, ended_at, ended_at - started_at),
                  HINT = 'Record longer periods as several events.';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM iact.people p WHERE p.id = record_event.person_id) THEN
        RAISE EXCEPTION 'person % does not exist', person_id USING ERRCODE = 'foreign_key_violation';
    END IF;
    IF place_id IS NULL THEN
        RAISE EXCEPTION '% must not be NULL', place_column USING ERRCODE = 'null_value_not_allowed';
    END IF;
    EXECUTE format('SELECT EXISTS (SELECT 1 FROM %s WHERE id = $1)', place_table)
        INTO place_exists USING place_id;
    IF NOT place_exists THEN
        RAISE EXCEPTION '% % does not exist', replace(place_column, '_id', ''), place_id
            USING ERRCODE = 'foreign_key_violation';
    END IF;
    RETURN QUERY EXECUTE format(
        'INSERT INTO %s (person_id, %I, started_at, ended_at)
         SELECT $1, $2, d.piece_start, d.piece_end FROM iact.daily_pieces($3, $4) d
         RETURNING id', event_table, place_column)
        USING person_id, place_id, started_at, ended_at;
END
$$;
COMMENT ON FUNCTION iact.record_event(regclass, name, regclass, bigint, bigint, timestamp, timestamp) IS
    'Internal: what iact.record_work_shift and iact.record_extra_hours do';

CREATE FUNCTION iact.record_work_shift(person_id bigint, office_id bigint,
                                       started_at timestamp, ended_at timestamp)
    RETURNS SETOF bigint
    LANGUAGE sql
    SET search_path = pg_catalog, pg_temp
AS $$
    SELECT iact.record_event('iact.work_shifts', 'office_id', 'iact.offices',
                             person_id, office_id, started_at, ended_at)
$$;
COMMENT ON FUNCTION iact.record_work_shift(bigint, bigint, timestamp, timestamp) IS
    'Record a work shift of at most 24 hours, split at midnight; all pieces or none; returns the new ids';

CREATE FUNCTION iact.record_extra_hours(person_id bigint, city_id bigint,
                                        started_at timestamp, ended_at timestamp)
    RETURNS SETOF bigint
    LANGUAGE sql
    SET search_path = pg_catalog, pg_temp
AS $$
    SELECT iact.record_event('iact.extra_hours', 'city_id', 'iact.cities',
                             person_id, city_id, started_at, ended_at)
$$;
COMMENT ON FUNCTION iact.record_extra_hours(bigint, bigint, timestamp, timestamp) IS
    'Record extra hours of at most 24 hours, split at midnight; all pieces or none; returns the new ids';

-- Visibility --------------------------------------------------------------------

CREATE FUNCTION iact.session_person_id() RETURNS bigint
    LANGUAGE c STABLE PARALLEL SAFE AS 'MODULE_PATHNAME', 'events_session_person_id';
COMMENT ON FUNCTION iact.session_person_id() IS 'The setting iact.person_id as bigint (NULL when empty)';

CREATE FUNCTION iact.visible_offices(person_id bigint) RETURNS SETOF bigint
    LANGUAGE sql STABLE
    SET search_path = pg_catalog, pg_temp
AS $$
    SELECT o.id FROM iact.offices o JOIN iact.cities c ON c.id = o.city_id
     WHERE c.territorial_manager_id = visible_offices.person_id
    UNION
    SELECT o.id FROM iact.offices o WHERE o.operational_manager_id = visible_offices.person_id
$$;
COMMENT ON FUNCTION iact.visible_offices(bigint) IS
    'Offices of the cities the person territorially manages, and offices the person operationally manages';

CREATE FUNCTION iact.visible_cities(person_id bigint) RETURNS SETOF bigint
    LANGUAGE sql STABLE
    SET search_path = pg_catalog, pg_temp
AS $$
    SELECT DISTINCT o.city_id FROM iact.offices o
     WHERE o.id IN (SELECT iact.visible_offices(visible_cities.person_id))
    UNION
    SELECT c.id FROM iact.cities c WHERE c.territorial_manager_id = visible_cities.person_id
$$;
COMMENT ON FUNCTION iact.visible_cities(bigint) IS
    'Cities the person territorially manages, and cities of the offices the person sees';

ALTER TABLE iact.work_shifts ENABLE ROW LEVEL SECURITY;
ALTER TABLE iact.extra_hours ENABLE ROW LEVEL SECURITY;

-- ARRAY(SELECT ...) and (SELECT ...) are init plans: computed once per query
CREATE POLICY visible ON iact.work_shifts
    USING (person_id = (SELECT iact.session_person_id())
           OR office_id = ANY (ARRAY(SELECT iact.visible_offices(iact.session_person_id()))));
CREATE POLICY visible ON iact.extra_hours
    USING (person_id = (SELECT iact.session_person_id())
           OR city_id = ANY (ARRAY(SELECT iact.visible_cities(iact.session_person_id()))));

-- Reading: everything computed on the fly -----------------------------------------

CREATE VIEW iact.events WITH (security_invoker = true) AS
    SELECT 'standard'::text AS kind, id, person_id, office_id, NULL::bigint AS city_id,
           started_at, ended_at
      FROM iact.work_shifts
    UNION ALL
    SELECT 'extra'::text, id, person_id, NULL::bigint, city_id, started_at, ended_at
      FROM iact.extra_hours;
COMMENT ON VIEW iact.events IS 'Both event tables; kind is standard (work_shifts) or extra (extra_hours)';

CREATE VIEW iact.shifts WITH (security_invoker = true) AS
    WITH marked AS (
        SELECT e.*,
               CASE WHEN lag(ended_at) OVER w = started_at
                         AND started_at = date_trunc('day', started_at)
                         AND lag(office_id) OVER w IS NOT DISTINCT FROM office_id
                         AND lag(city_id) OVER w IS NOT DISTINCT FROM city_id
                    THEN 0 ELSE 1 END AS starts_shift
          FROM iact.events e
        WINDOW w AS (PARTITION BY person_id, kind ORDER BY started_at)
    ), numbered AS (
        SELECT m.*, sum(starts_shift) OVER (PARTITION BY person_id, kind ORDER BY started_at) AS shift_no
          FROM marked m
    )
    SELECT kind, person_id, min(office_id) AS office_id, min(city_id) AS city_id,
           min(started_at) AS started_at, max(ended_at) AS ended_at,
           round(extract(epoch FROM max(ended_at) - min(started_at)) / 3600, 2) AS hours,
           array_agg(id ORDER BY started_at) AS piece_ids
      FROM numbered
     GROUP BY kind, person_id, shift_no;
COMMENT ON VIEW iact.shifts IS
    'Shifts as recorded: daily pieces of one person, kind and place that meet at midnight are joined';

-- per person and day, as intervals; the views below round only their own sums
CREATE VIEW iact.event_days WITH (security_invoker = true) AS
    SELECT person_id, started_at::date AS day,
           coalesce(sum(ended_at - started_at) FILTER (WHERE kind = 'standard'), interval '0') AS standard_time,
           coalesce(sum(ended_at - started_at) FILTER (WHERE kind = 'extra'), interval '0') AS extra_time
      FROM iact.events
     GROUP BY person_id, started_at::date;
COMMENT ON VIEW iact.event_days IS 'Time per person per calendar day as intervals, standard and extra apart';

CREATE VIEW iact.hours_per_day WITH (security_invoker = true) AS
    SELECT person_id, day,
           round(extract(epoch FROM standard_time) / 3600, 2) AS standard_hours,
           round(extract(epoch FROM extra_time) / 3600, 2) AS extra_hours
      FROM iact.event_days;
COMMENT ON VIEW iact.hours_per_day IS 'Hours per person per calendar day, standard and extra apart';

CREATE VIEW iact.hours_per_week WITH (security_invoker = true) AS
    SELECT person_id, date_trunc('week', day)::date AS week_start,
           round(extract(epoch FROM sum(standard_time)) / 3600, 2) AS standard_hours,
           round(extract(epoch FROM sum(extra_time)) / 3600, 2) AS extra_hours
      FROM iact.event_days
     GROUP BY person_id, date_trunc('week', day);
COMMENT ON VIEW iact.hours_per_week IS 'Hours per person per ISO week (Monday start), standard and extra apart';

CREATE VIEW iact.hours_per_month WITH (security_invoker = true) AS
    SELECT person_id, date_trunc('month', day)::date AS month_start,
           round(extract(epoch FROM sum(standard_time)) / 3600, 2) AS standard_hours,
           round(extract(epoch FROM sum(extra_time)) / 3600, 2) AS extra_hours
      FROM iact.event_days
     GROUP BY person_id, date_trunc('month', day);
COMMENT ON VIEW iact.hours_per_month IS 'Hours per person per calendar month, standard and extra apart';

-- Privileges: nothing for PUBLIC (functions are executable by PUBLIC by default)
REVOKE ALL ON FUNCTION iact.refuse_update(), iact.no_overlap_trigger(),
    iact.no_overlap_members(text, boolean), iact.no_overlap_touch(text), iact.find_overlaps(text),
    iact.enforce_no_overlap(text, regclass[], name, name, name, interval), iact.release_no_overlap(text, regclass[]),
    iact.record_event(regclass, name, regclass, bigint, bigint, timestamp, timestamp),
    iact.daily_pieces(timestamp, timestamp),
    iact.record_work_shift(bigint, bigint, timestamp, timestamp),
    iact.record_extra_hours(bigint, bigint, timestamp, timestamp),
    iact.session_person_id(), iact.visible_offices(bigint), iact.visible_cities(bigint)
    FROM PUBLIC;
-- 30_sync.sql -- pull the legacy IVR from MariaDB (README section "sync").
-- Owner: the sync (src/sync_*.c, src/mariadb_client.c).

-- Connection settings live in the foreign-server catalog, like postgres_fdw's.
CREATE FUNCTION iact.mariadb_fdw_validator(text[], oid) RETURNS void
	AS 'MODULE_PATHNAME', 'iact_mariadb_fdw_validator' LANGUAGE C STRICT;
REVOKE ALL ON FUNCTION iact.mariadb_fdw_validator(text[], oid) FROM PUBLIC;
CREATE FOREIGN DATA WRAPPER iact_mariadb VALIDATOR iact.mariadb_fdw_validator;
COMMENT ON FOREIGN DATA WRAPPER iact_mariadb IS 'iact: MariaDB sources of the sync (no table access; settings only)';

CREATE TABLE iact.sync_tables (
	id serial PRIMARY KEY,
	server_name name NOT NULL,
	source_schema text,				-- NULL: the server's dbname
	source_table text NOT NULL,
	target_schema name NOT NULL,
	target_table name NOT NULL,
	key_columns text[] NOT NULL CHECK (cardinality(key_columns) > 0),
	watermark_column text,			-- NULL: full comparison by key
	lookback bigint NOT NULL DEFAULT 300 CHECK (lookback >= 0),
	batch_size integer CHECK (batch_size BETWEEN 1 AND 1000000),
	retention_days integer NOT NULL DEFAULT 730 CHECK (retention_days >= 0),
	retention_column text,
	tinyint1_as_boolean boolean NOT NULL DEFAULT true,
	enabled boolean NOT NULL DEFAULT true,
	last_watermark text,
	created_at timestamptz NOT NULL DEFAULT now(),
	UNIQUE (target_schema, target_table)
);
COMMENT ON TABLE iact.sync_tables IS 'iact: tables synced from MariaDB (register with iact.sync_add_table)';

CREATE TABLE iact.sync_runs (
	id bigserial PRIMARY KEY,
	table_id integer REFERENCES iact.sync_tables (id) ON DELETE SET NULL,
	target_table text NOT NULL,
	started_at timestamptz NOT NULL DEFAULT clock_timestamp(),
	finished_at timestamptz,
	status text NOT NULL CHECK (status IN ('running', 'success', 'partial', 'failed', 'skipped')),
	mode text CHECK (mode IN ('full', 'incremental')),
	transaction_mode text,
	rows_read bigint NOT NULL DEFAULT 0,
	rows_inserted bigint NOT NULL DEFAULT 0,
	rows_updated bigint NOT NULL DEFAULT 0,
	rows_deleted bigint NOT NULL DEFAULT 0,
	rows_rejected bigint NOT NULL DEFAULT 0,
	rows_purged bigint NOT NULL DEFAULT 0,
	watermark_from text,
	watermark_to text,
	source_count bigint,
	target_count bigint,
	error text,
	write_path text
);
CREATE INDEX sync_runs_target_started ON iact.sync_runs (target_table, started_at DESC);
CREATE INDEX sync_runs_started ON iact.sync_runs (started_at);
CREATE INDEX sync_runs_running ON iact.sync_runs (table_id) WHERE status = 'running';
COMMENT ON TABLE iact.sync_runs IS 'iact: one row per sync run of one table';

CREATE TABLE iact.sync_rejects (
	id bigserial PRIMARY KEY,
	run_id bigint NOT NULL REFERENCES iact.sync_runs (id) ON DELETE CASCADE,
	target_table text NOT NULL,
	key text,
	column_name text,
	raw_value bytea,
	reason text NOT NULL,
	created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX sync_rejects_run ON iact.sync_rejects (run_id);
COMMENT ON TABLE iact.sync_rejects IS 'iact: source values the sync could not store (the run ends as partial)';

SELECT pg_catalog.pg_extension_config_dump('iact.sync_tables', '');
SELECT pg_catalog.pg_extension_config_dump('iact.sync_tables_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('iact.sync_runs', '');
SELECT pg_catalog.pg_extension_config_dump('iact.sync_runs_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('iact.sync_rejects', '');
SELECT pg_catalog.pg_extension_config_dump('iact.sync_rejects_id_seq', '');

CREATE FUNCTION iact.sync_source_columns(server name, source_table text,
		tinyint1_as_boolean boolean DEFAULT true)
	RETURNS TABLE (ordinal integer, column_name text, source_type text, target_type text,
		nullable boolean, primary_key_position integer)
	AS 'MODULE_PATHNAME', 'iact_sync_source_columns' LANGUAGE C CALLED ON NULL INPUT;
COMMENT ON FUNCTION iact.sync_source_columns(name, text, boolean) IS
	'iact: a MariaDB table''s columns and the PostgreSQL type the sync gives each';

-- A target name ('t' or 'schema.t') as schema and table: an existing relation
-- as it is found with the caller's search_path (no SET search_path on these
-- functions), else the parts of the name (an unqualified one in
-- current_schema()).
CREATE FUNCTION iact._sync_target_name(target text, OUT rel regclass, OUT sch name, OUT tab name)
LANGUAGE plpgsql STABLE AS $$
DECLARE
	parts text[];
BEGIN
	IF target IS NULL OR btrim(target) = '' THEN
		RAISE EXCEPTION 'target table name must not be empty' USING ERRCODE = '22023';
	END IF;
	rel := to_regclass(target);
	IF rel IS NOT NULL THEN
		SELECT n.nspname, c.relname INTO sch, tab
		  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = rel;
		RETURN;
	END IF;
	parts := parse_ident(target);
	IF cardinality(parts) = 1 THEN
		sch := current_schema();
		tab := parts[1];
	ELSIF cardinality(parts) = 2 THEN
		sch := parts[1];
		tab := parts[2];
	ELSE
		RAISE EXCEPTION 'improper target table name: %', target USING ERRCODE = '42601';
	END IF;
END $$;

-- the registered table of a target name; errors when none
CREATE FUNCTION iact._sync_table_id(target text) RETURNS integer
LANGUAGE plpgsql STABLE AS $$
DECLARE
	tid integer;
BEGIN
	SELECT t.id INTO tid FROM iact._sync_target_name(target) n
	  JOIN iact.sync_tables t ON t.target_schema = n.sch AND t.target_table = n.tab;
	IF tid IS NULL THEN
		RAISE EXCEPTION 'table % is not registered for sync', target
			USING ERRCODE = '42704', HINT = 'See iact.sync_tables; register it with iact.sync_add_table().';
	END IF;
	RETURN tid;
END $$;

CREATE FUNCTION iact._sync_history_purge() RETURNS bigint
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	days integer := current_setting('iact.sync_history_days')::integer;
	n bigint;
BEGIN
	IF days = 0 THEN
		RETURN 0;
	END IF;
	DELETE FROM iact.sync_runs
	 WHERE status <> 'running' AND started_at < now() - make_interval(days => days);
	GET DIAGNOSTICS n = ROW_COUNT;
	RETURN n;
END $$;

CREATE FUNCTION iact.sync_add_table(server name, source_table text, target_table text,
		key_columns text[] DEFAULT NULL, watermark_column text DEFAULT NULL,
		lookback bigint DEFAULT 300, retention_days integer DEFAULT 730,
		retention_column text DEFAULT NULL, batch_size integer DEFAULT NULL,
		tinyint1_as_boolean boolean DEFAULT true)
	RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
	srv oid;
	src_parts text[];
	src_schema text;
	src_name text;
	cols record;
	coldefs text := '';
	keys text[] := key_columns;
	ret_col text := retention_column;
	rel regclass;
	sch name;
	tab name;
	c text;
	new_id integer;
	n integer;
BEGIN
	IF server IS NULL OR source_table IS NULL OR target_table IS NULL THEN
		RAISE EXCEPTION 'server, source_table and target_table must not be NULL' USING ERRCODE = '22004';
	END IF;
	SELECT s.oid INTO srv FROM pg_foreign_server s JOIN pg_foreign_data_wrapper w ON w.oid = s.srvfdw
	 WHERE s.srvname = server AND w.fdwname = 'iact_mariadb';
	IF srv IS NULL THEN
		RAISE EXCEPTION 'server "%" does not exist or is not an iact_mariadb server', server
			USING ERRCODE = '42704', HINT = 'CREATE SERVER ... FOREIGN DATA WRAPPER iact_mariadb OPTIONS (host ..., port ..., dbname ...).';
	END IF;
	IF lookback IS NULL OR lookback < 0 OR retention_days IS NULL OR retention_days < 0
	   OR (batch_size IS NOT NULL AND batch_size NOT BETWEEN 1 AND 1000000)
	   OR tinyint1_as_boolean IS NULL THEN
		RAISE EXCEPTION 'invalid option: lookback and retention_days must be >= 0, batch_size between 1 and 1000000'
			USING ERRCODE = '22023';
	END IF;
	src_parts := string_to_array(source_table, '.');
	IF cardinality(src_parts) = 1 THEN
		src_name := src_parts[1];
	ELSIF cardinality(src_parts) = 2 THEN
		src_schema := src_parts[1];
		src_name := src_parts[2];
	END IF;
	IF src_name IS NULL OR src_name = '' OR src_schema = '' THEN
		RAISE EXCEPTION 'invalid source table name "%"', source_table
			USING ERRCODE = '22023', HINT = 'Use ''table'' or ''database.table''.';
	END IF;

	IF to_regclass('pg_temp.iact_sync_add_cols') IS NOT NULL THEN
		DROP TABLE pg_temp.iact_sync_add_cols;
	END IF;
	CREATE TEMP TABLE iact_sync_add_cols ON COMMIT DROP AS
		SELECT * FROM iact.sync_source_columns(server, source_table, tinyint1_as_boolean);
	SELECT count(*) INTO n FROM iact_sync_add_cols;
	IF n = 0 THEN
		RAISE EXCEPTION 'source table % not found on MariaDB server "%"', source_table, server
			USING ERRCODE = 'HV00R', HINT = 'Check the name and that the account may SELECT it.';
	END IF;
	IF keys IS NULL THEN
		SELECT array_agg(column_name ORDER BY primary_key_position) INTO keys
		  FROM iact_sync_add_cols WHERE primary_key_position IS NOT NULL;
		IF keys IS NULL THEN
			RAISE EXCEPTION 'source table % has no primary key', source_table
				USING ERRCODE = '42P10', HINT = 'Pass key_columns: columns whose values identify a row.';
		END IF;
	END IF;
	IF cardinality(keys) = 0 OR array_position(keys, NULL) IS NOT NULL THEN
		RAISE EXCEPTION 'key_columns must list at least one column and no NULL' USING ERRCODE = '22023';
	END IF;
	IF ret_col IS NULL AND retention_days > 0 AND watermark_column IS NOT NULL AND EXISTS (
		SELECT 1 FROM iact_sync_add_cols WHERE column_name = watermark_column
		   AND split_part(source_type, '(', 1) IN ('date', 'datetime', 'timestamp')) THEN
		ret_col := watermark_column;
	END IF;
	FOREACH c IN ARRAY array_remove(keys || watermark_column || ret_col, NULL) LOOP
		IF NOT EXISTS (SELECT 1 FROM iact_sync_add_cols WHERE column_name = c) THEN
			RAISE EXCEPTION 'column "%" does not exist in source table %', c, source_table
				USING ERRCODE = '42703';
		END IF;
	END LOOP;
	IF ret_col IS NOT NULL AND NOT EXISTS (SELECT 1 FROM iact_sync_add_cols WHERE column_name = ret_col
		   AND split_part(source_type, '(', 1) IN ('date', 'datetime', 'timestamp')) THEN
		RAISE EXCEPTION 'retention column "%" is not a date, datetime or timestamp column', ret_col
			USING ERRCODE = '42804';
	END IF;
	IF watermark_column IS NOT NULL AND NOT EXISTS (SELECT 1 FROM iact_sync_add_cols
		 WHERE column_name = watermark_column AND (split_part(source_type, '(', 1)
		   IN ('date', 'datetime', 'timestamp') OR split_part(split_part(source_type, '(', 1), ' ', 1)
		   IN ('tinyint', 'smallint', 'mediumint', 'int', 'integer', 'bigint'))) THEN
		RAISE EXCEPTION 'watermark column "%" is neither temporal nor an integer', watermark_column
			USING ERRCODE = '42804', HINT = 'Use an updated-at timestamp or an ever-growing id.';
	END IF;

	-- the target: existing (it must have a unique index on the key) or created
	SELECT n.rel, n.sch, n.tab INTO rel, sch, tab FROM iact._sync_target_name(target_table) n;
	IF rel IS NULL THEN
		IF sch IS NULL THEN
			RAISE EXCEPTION 'no schema to create % in', target_table USING ERRCODE = '3F000';
		END IF;
		FOR cols IN SELECT * FROM iact_sync_add_cols ORDER BY ordinal LOOP
			IF cols.target_type IS NULL THEN
				RAISE EXCEPTION 'no type rule for column "%" of type %', cols.column_name, cols.source_type
					USING ERRCODE = '0A000',
					HINT = 'Create the target table yourself (the value is then read as text into your column type).';
			END IF;
			coldefs := coldefs || format('%I %s%s, ', cols.column_name, cols.target_type,
				CASE WHEN cols.column_name = ANY (keys) THEN ' NOT NULL' ELSE '' END);
		END LOOP;
		EXECUTE format('CREATE TABLE %I.%I (%sPRIMARY KEY (%s))', sch, tab, coldefs,
			(SELECT string_agg(format('%I', k), ', ') FROM unnest(keys) k));
		-- incremental runs count (and purges scan) the target by these columns
		FOREACH c IN ARRAY ARRAY(SELECT DISTINCT x FROM unnest(ARRAY[watermark_column, ret_col]) x
								   WHERE x IS NOT NULL AND x <> ALL (keys)) LOOP
			EXECUTE format('CREATE INDEX ON %I.%I (%I)', sch, tab, c);
		END LOOP;
	ELSE
		IF NOT EXISTS (
			SELECT 1 FROM pg_index i WHERE i.indrelid = rel AND i.indisunique AND i.indpred IS NULL
			   AND i.indexprs IS NULL
			   AND (SELECT array_agg(a.attname::text ORDER BY a.attname::text COLLATE "C") FROM pg_attribute a
					 WHERE a.attrelid = rel AND a.attnum = ANY (i.indkey))
				 = (SELECT array_agg(k ORDER BY k COLLATE "C") FROM unnest(keys) k)) THEN
			RAISE EXCEPTION 'target table % has no unique index on (%)', rel, array_to_string(keys, ', ')
				USING ERRCODE = '42P10', HINT = 'The sync upserts by key: add a primary key or unique index on the key columns.';
		END IF;
	END IF;
	IF EXISTS (SELECT 1 FROM iact.sync_tables t WHERE t.target_schema = sch AND t.target_table = tab) THEN
		RAISE EXCEPTION 'table %.% is already registered for sync', quote_ident(sch), quote_ident(tab)
			USING ERRCODE = '42710', HINT = 'iact.sync_remove_table() first to change its settings.';
	END IF;
	INSERT INTO iact.sync_tables (server_name, source_schema, source_table, target_schema, target_table,
		key_columns, watermark_column, lookback, batch_size, retention_days, retention_column,
		tinyint1_as_boolean)
	VALUES (server, src_schema, src_name, sch, tab, keys, watermark_column, lookback, batch_size,
		retention_days, ret_col, tinyint1_as_boolean)
	RETURNING id INTO new_id;
	DROP TABLE iact_sync_add_cols;
	RETURN new_id;
END $$;
COMMENT ON FUNCTION iact.sync_add_table(name, text, text, text[], text, bigint, integer, text, integer, boolean) IS
	'iact: register a MariaDB table for sync (creates the target when missing)';

CREATE FUNCTION iact.sync_remove_table(target_table text) RETURNS boolean
LANGUAGE plpgsql AS $$
BEGIN
	DELETE FROM iact.sync_tables WHERE id = iact._sync_table_id(sync_remove_table.target_table);
	RETURN true;
END $$;
COMMENT ON FUNCTION iact.sync_remove_table(text) IS
	'iact: unregister a synced table (the target table and the run history stay)';

CREATE FUNCTION iact._sync_table(table_id integer) RETURNS bigint
	AS 'MODULE_PATHNAME', 'iact_sync_table_sql' LANGUAGE C STRICT;

CREATE FUNCTION iact.sync_now(target_table text DEFAULT NULL) RETURNS SETOF iact.sync_runs
LANGUAGE plpgsql AS $$
DECLARE
	tid integer;
	run_id bigint;
BEGIN
	-- a table named is synced even when disabled; without a name, every enabled one
	FOR tid IN SELECT iact._sync_table_id(sync_now.target_table) WHERE sync_now.target_table IS NOT NULL
			   UNION ALL
			   SELECT id FROM iact.sync_tables WHERE sync_now.target_table IS NULL AND enabled
			   ORDER BY 1 LOOP
		run_id := iact._sync_table(tid);
		RETURN QUERY SELECT * FROM iact.sync_runs WHERE id = run_id;
	END LOOP;
	PERFORM iact._sync_history_purge();
END $$;
COMMENT ON FUNCTION iact.sync_now(text) IS
	'iact: sync one or all registered tables now, in the calling transaction (atomic per table)';

CREATE PROCEDURE iact.sync_run(target_table text DEFAULT NULL)
	AS 'MODULE_PATHNAME', 'iact_sync_run_proc' LANGUAGE C;
COMMENT ON PROCEDURE iact.sync_run(text) IS
	'iact: sync one or all registered tables, committing each batch with its watermark';

REVOKE ALL ON FUNCTION iact.sync_source_columns(name, text, boolean) FROM PUBLIC;
REVOKE ALL ON FUNCTION iact._sync_target_name(text) FROM PUBLIC;
REVOKE ALL ON FUNCTION iact._sync_table_id(text) FROM PUBLIC;
REVOKE ALL ON FUNCTION iact._sync_history_purge() FROM PUBLIC;
REVOKE ALL ON FUNCTION iact.sync_add_table(name, text, text, text[], text, bigint, integer, text, integer, boolean) FROM PUBLIC;
REVOKE ALL ON FUNCTION iact.sync_remove_table(text) FROM PUBLIC;
REVOKE ALL ON FUNCTION iact._sync_table(integer) FROM PUBLIC;
REVOKE ALL ON FUNCTION iact.sync_now(text) FROM PUBLIC;
REVOKE ALL ON PROCEDURE iact.sync_run(text) FROM PUBLIC;

-- ===========================================================================
-- The scheduled sync (src/worker.c): the worker's schedule and requests.
-- ===========================================================================

-- When each registered table is due, by the same rules the worker applies:
-- never run: now; last run success/partial: started_at + iact.sync_interval;
-- last run failed: finished_at + iact.sync_retry_delay * 2^(failures-1), counting
-- the failures since the last success or partial run,
-- capped at half the interval; last attempt skipped or still running:
-- started_at + iact.sync_retry_delay.
CREATE VIEW iact.sync_schedule AS
WITH settings AS (
    SELECT coalesce(current_setting('iact.sync_interval', true), '6h')::interval AS sync_interval,
           coalesce(current_setting('iact.sync_retry_delay', true), '60s')::interval AS retry_delay,
           coalesce(current_setting('iact.sync_enabled', true), 'on')::boolean AS enabled
), last AS (
    SELECT t.id AS table_id,
           format('%I.%I', t.target_schema, t.target_table) AS target_table,
           t.enabled AS table_enabled,
           r.status AS last_status, r.started_at AS last_started_at, r.finished_at AS last_finished_at,
           (SELECT count(*) FROM iact.sync_runs f
             WHERE f.table_id = t.id AND f.status = 'failed'
               AND f.id > coalesce((SELECT max(ok.id) FROM iact.sync_runs ok
                                     WHERE ok.table_id = t.id
                                       AND ok.status IN ('success', 'partial')), 0)) AS recent_failures
      FROM iact.sync_tables t
      LEFT JOIN LATERAL (SELECT status, started_at, finished_at FROM iact.sync_runs r
                          WHERE r.table_id = t.id ORDER BY r.id DESC LIMIT 1) r ON true
)
SELECT l.table_id, l.target_table, l.table_enabled, s.enabled AS schedule_enabled,
       l.last_status, l.last_started_at, l.last_finished_at, l.recent_failures,
       CASE
         WHEN l.last_status IS NULL THEN l.last_started_at
         WHEN l.last_status IN ('success', 'partial') THEN l.last_started_at + s.sync_interval
         WHEN l.last_status = 'failed' THEN coalesce(l.last_finished_at, l.last_started_at)
              + least(s.retry_delay * power(2, least(greatest(l.recent_failures, 1) - 1, 30)),
                      s.sync_interval / 2)
         ELSE l.last_started_at + s.retry_delay
       END AS next_due_at
  FROM last l CROSS JOIN settings s;
COMMENT ON VIEW iact.sync_schedule IS 'iact: when the sync worker runs each registered table next';

CREATE FUNCTION iact.request_sync(target_table text DEFAULT NULL) RETURNS boolean
    LANGUAGE c AS 'MODULE_PATHNAME', 'iact_request_sync';
COMMENT ON FUNCTION iact.request_sync(text) IS
    'iact: wake the sync worker to run one table (or all) now; false if the worker is not running';

REVOKE ALL ON FUNCTION iact.request_sync(text) FROM PUBLIC;
REVOKE ALL ON TABLE iact.sync_schedule FROM PUBLIC;
-- 50_audit.sql: the audit trail (src/audit_trigger.c, src/audit_guard.c).
--
-- iact.audit_log is append-only: rows are written by the C trigger function
-- iact.audit_trigger() attached with iact.enable_audit(); UPDATE, DELETE and
-- TRUNCATE on it are refused to every role but a superuser, and old rows go
-- through iact.purge_audit_log() (SECURITY DEFINER, granted per role).

-- The log is stored in two tables, presented as one view, iact.audit_log:
--   iact.audit_statement: one row per audited statement (who, when, what table,
--                         which operation, how many rows), TRUNCATE included;
--   iact.audit_row:       one row per changed row: old_data and new_data only.
-- What is the same for every row of a statement is stored once, so an audit
-- row costs little more than its jsonb, and rows need no btree index.
CREATE SEQUENCE iact.audit_statement_id_seq AS bigint;

CREATE TABLE iact.audit_statement (
    id               bigint      NOT NULL DEFAULT nextval('iact.audit_statement_id_seq'),
    txid             bigint      NOT NULL,
    "timestamp"      timestamptz NOT NULL,
    wall_clock       timestamptz NOT NULL,
    row_count        bigint      NOT NULL,
    schema_name      text        NOT NULL,
    table_name       text        NOT NULL,
    operation        text        NOT NULL,
    user_id          text,
    role_name        text        NOT NULL,
    application_name text,
    CONSTRAINT audit_statement_pkey PRIMARY KEY (id),
    CONSTRAINT audit_statement_operation_check
        CHECK (operation IN ('INSERT', 'UPDATE', 'DELETE', 'TRUNCATE'))
);
ALTER SEQUENCE iact.audit_statement_id_seq OWNED BY iact.audit_statement.id;
-- statements arrive in (nearly) time order: BRIN keeps single-row statements cheap
CREATE INDEX audit_statement_timestamp ON iact.audit_statement USING brin ("timestamp")
    WITH (pages_per_range = 16);

CREATE TABLE iact.audit_row (
    statement_id     bigint      NOT NULL,
    row_no           integer     NOT NULL,
    old_data         jsonb,
    new_data         jsonb
);
-- rows arrive in statement order: a BRIN index finds a statement's rows cheaply
CREATE INDEX audit_row_statement ON iact.audit_row USING brin (statement_id)
    WITH (pages_per_range = 16);

CREATE VIEW iact.audit_log AS
SELECT s.id AS statement_id,
       r.row_no,
       s.schema_name,
       s.table_name,
       s.operation,
       r.old_data,
       r.new_data,
       s.user_id,
       s.role_name,
       s.txid,
       s."timestamp",
       s.wall_clock,
       s.application_name
  FROM iact.audit_statement s
  LEFT JOIN iact.audit_row r ON r.statement_id = s.id;

COMMENT ON VIEW iact.audit_log IS
    'iact audit trail: one row per audited row change and per TRUNCATE (append-only)';
COMMENT ON TABLE iact.audit_statement IS 'iact audit trail: one row per audited statement';
COMMENT ON TABLE iact.audit_row IS 'iact audit trail: one row per audited row change';
COMMENT ON COLUMN iact.audit_row.old_data IS
    'DELETE: the old row; UPDATE: primary key and changed columns before the change (whole row without a primary key)';
COMMENT ON COLUMN iact.audit_row.new_data IS
    'INSERT: the new row; UPDATE: changed columns after the change';
COMMENT ON COLUMN iact.audit_statement.user_id IS
    'current_setting(''app.current_user_id'', true) when the change was made; NULL when unset or empty';
COMMENT ON COLUMN iact.audit_statement."timestamp" IS 'transaction start time (now())';
COMMENT ON COLUMN iact.audit_statement.wall_clock IS 'wall-clock time the statement''s audit rows were written';

-- the audit data survives pg_dump / pg_restore
SELECT pg_catalog.pg_extension_config_dump('iact.audit_statement', '');
SELECT pg_catalog.pg_extension_config_dump('iact.audit_row', '');
SELECT pg_catalog.pg_extension_config_dump('iact.audit_statement_id_seq', '');

REVOKE ALL ON iact.audit_statement, iact.audit_row, iact.audit_log FROM PUBLIC;
REVOKE ALL ON SEQUENCE iact.audit_statement_id_seq FROM PUBLIC;

-- the row writer: one C function for INSERT, UPDATE, DELETE (statement level,
-- transition tables) and TRUNCATE
CREATE FUNCTION iact.audit_trigger() RETURNS trigger
    LANGUAGE c AS 'MODULE_PATHNAME', 'iact_audit_trigger';
REVOKE ALL ON FUNCTION iact.audit_trigger() FROM PUBLIC;
COMMENT ON FUNCTION iact.audit_trigger() IS
    'iact audit writer; attach with iact.enable_audit(), not by hand';

-- append-only guard on iact.audit_log itself
CREATE FUNCTION iact.audit_log_guard() RETURNS trigger
    LANGUAGE c AS 'MODULE_PATHNAME', 'iact_audit_log_guard';
REVOKE ALL ON FUNCTION iact.audit_log_guard() FROM PUBLIC;

CREATE TRIGGER audit_append_only
    BEFORE UPDATE OR DELETE ON iact.audit_statement
    FOR EACH ROW EXECUTE FUNCTION iact.audit_log_guard();
CREATE TRIGGER audit_no_truncate
    BEFORE TRUNCATE ON iact.audit_statement
    FOR EACH STATEMENT EXECUTE FUNCTION iact.audit_log_guard();
CREATE TRIGGER audit_append_only
    BEFORE UPDATE OR DELETE ON iact.audit_row
    FOR EACH ROW EXECUTE FUNCTION iact.audit_log_guard();
CREATE TRIGGER audit_no_truncate
    BEFORE TRUNCATE ON iact.audit_row
    FOR EACH STATEMENT EXECUTE FUNCTION iact.audit_log_guard();

-- Which tables are audited, with their options (read from the triggers).
CREATE VIEW iact.audited_tables AS
SELECT c.oid::regclass AS table_name,
       n.nspname AS schema_name,
       c.relname AS relation_name,
       (encode(t.tgargs, 'escape')::text ~ '^t') AS skip_unchanged,
       coalesce((SELECT array_agg(replace(u.a, '\\', '\') ORDER BY u.o)
                   FROM unnest(string_to_array(encode(t.tgargs, 'escape'), '\000'))
                        WITH ORDINALITY AS u(a, o)
                  WHERE u.o > 1 AND u.a <> ''), '{}'::text[]) AS ignored_columns,
       t.tgenabled <> 'D' AS enabled
  FROM pg_catalog.pg_trigger t
  JOIN pg_catalog.pg_class c ON c.oid = t.tgrelid
  JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
 WHERE t.tgfoid = 'iact.audit_trigger()'::regprocedure
   AND t.tgname = 'iact_audit_insert';
REVOKE ALL ON iact.audited_tables FROM PUBLIC;

-- A table and all its partitions / inheritance children, sub-partitions and
-- grandchildren included (depth 0 is the table itself).
CREATE FUNCTION iact.audit_tree(target regclass)
RETURNS TABLE(relid regclass, relkind "char", depth integer)
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    WITH RECURSIVE tree(relid, depth) AS (
        SELECT target::oid, 0
        UNION
        SELECT i.inhrelid, tree.depth + 1
          FROM pg_inherits i JOIN tree ON i.inhparent = tree.relid
    )
    SELECT t.relid::regclass, c.relkind, min(t.depth)::integer
      FROM tree t JOIN pg_class c ON c.oid = t.relid
     GROUP BY t.relid, c.relkind
$$;
-- (executable by PUBLIC: it reads only the catalogs, which every role can read,
-- and enable_audit / disable_audit, granted per role, call it)
COMMENT ON FUNCTION iact.audit_tree(regclass) IS
    'a table with all its partitions and inheritance children (depth 0: the table)';

CREATE FUNCTION iact.enable_audit(target regclass,
                                  ignored_columns text[] DEFAULT '{}',
                                  skip_unchanged boolean DEFAULT true)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    kind  "char";
    rel   oid;
    args  text;
    col   text;
    ev    text;
BEGIN
    IF target IS NULL THEN
        RAISE EXCEPTION 'target table must not be NULL'
            USING ERRCODE = 'null_value_not_allowed',
                  HINT = 'Pass the table as a regclass, e.g. ''public.calls''.';
    END IF;
    IF skip_unchanged IS NULL THEN
        RAISE EXCEPTION 'skip_unchanged must not be NULL'
            USING ERRCODE = 'null_value_not_allowed', HINT = 'Pass true or false.';
    END IF;
    SELECT c.relkind INTO kind FROM pg_class c WHERE c.oid = target;
    IF kind IS NULL THEN
        RAISE EXCEPTION 'relation with OID % does not exist', target::oid
            USING ERRCODE = 'undefined_table';
    END IF;
    IF kind NOT IN ('r', 'p') THEN
        RAISE EXCEPTION 'cannot audit "%"', target
            USING ERRCODE = 'wrong_object_type',
                  DETAIL = format('Relation kind %s is not an ordinary or partitioned table.', kind),
                  HINT = 'Audit the table the view or foreign table reads from.';
    END IF;
    IF target IN ('iact.audit_statement'::regclass, 'iact.audit_row'::regclass) THEN
        RAISE EXCEPTION 'cannot audit the audit log itself'
            USING ERRCODE = 'wrong_object_type',
                  DETAIL = 'iact.audit_statement and iact.audit_row are written by the audit trigger.';
    END IF;
    -- trigger arguments: skip_unchanged, then the ignored columns
    args := quote_literal(CASE WHEN skip_unchanged THEN 't' ELSE 'f' END);
    FOREACH col IN ARRAY coalesce(ignored_columns, '{}') LOOP
        IF col IS NULL THEN
            RAISE EXCEPTION 'ignored_columns must not contain NULL'
                USING ERRCODE = 'null_value_not_allowed';
        END IF;
        IF NOT EXISTS (SELECT 1 FROM pg_attribute a
                        WHERE a.attrelid = target AND a.attname = col
                          AND a.attnum > 0 AND NOT a.attisdropped) THEN
            RAISE EXCEPTION 'column "%" of relation "%" does not exist', col, target
                USING ERRCODE = 'undefined_column',
                      HINT = 'ignored_columns lists column names of the audited table, as written in the catalog.';
        END IF;
        args := args || ', ' || quote_literal(col);
    END LOOP;

    -- checks ownership, locks the tables (one enable/disable at a time), drops the old triggers
    -- of the table and of all its partitions / inheritance children
    PERFORM iact.disable_audit(target, true);
    -- A statement trigger fires only for the table the statement names, so every
    -- partition and inheritance child (sub-partitions too) gets its own triggers:
    -- a statement naming the parent is recorded once, under the parent (its
    -- transition tables hold the rows of every partition); a statement naming a
    -- partition, under the partition.  TRUNCATE of a parent fires the TRUNCATE
    -- triggers of every table it empties, so only tables with storage get one
    -- (not a partitioned table itself): one entry per emptied table.  Foreign
    -- tables cannot have transition tables: foreign partitions are left out.
    FOR rel, kind IN SELECT t.relid, t.relkind FROM iact.audit_tree(target) t
                      WHERE t.relkind IN ('r', 'p') ORDER BY t.depth, t.relid LOOP
        FOREACH ev IN ARRAY ARRAY['insert', 'update', 'delete'] LOOP
            EXECUTE format('CREATE TRIGGER %I AFTER %s ON %s REFERENCING %s FOR EACH STATEMENT'
                           ' EXECUTE FUNCTION iact.audit_trigger(%s)',
                           'iact_audit_' || ev, upper(ev), rel::regclass,
                           CASE ev WHEN 'insert' THEN 'NEW TABLE AS iact_new'
                                   WHEN 'update' THEN 'OLD TABLE AS iact_old NEW TABLE AS iact_new'
                                   ELSE 'OLD TABLE AS iact_old' END,
                           args);
        END LOOP;
        IF kind = 'r' THEN
            EXECUTE format('CREATE TRIGGER iact_audit_truncate AFTER TRUNCATE ON %s'
                           ' FOR EACH STATEMENT EXECUTE FUNCTION iact.audit_trigger(%s)',
                           rel::regclass, args);
        END IF;
    END LOOP;
END
$$;
REVOKE ALL ON FUNCTION iact.enable_audit(regclass, text[], boolean) FROM PUBLIC;
COMMENT ON FUNCTION iact.enable_audit(regclass, text[], boolean) IS
    'start auditing a table into iact.audit_log (re-running replaces the options)';

CREATE FUNCTION iact.disable_audit(target regclass, quiet boolean DEFAULT false)
RETURNS boolean
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    rel   oid;
    trg   name;
    found boolean := false;
BEGIN
    IF target IS NULL THEN
        RAISE EXCEPTION 'target table must not be NULL'
            USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_class c WHERE c.oid = target) THEN
        RAISE EXCEPTION 'relation with OID % does not exist', target::oid
            USING ERRCODE = 'undefined_table';
    END IF;
    -- the table and all its partitions / inheritance children: owner of each
    FOR rel IN SELECT t.relid FROM iact.audit_tree(target) t ORDER BY t.depth, t.relid LOOP
        IF NOT pg_has_role((SELECT c.relowner FROM pg_class c WHERE c.oid = rel), 'USAGE') THEN
            IF rel = target::oid THEN
                RAISE EXCEPTION 'must be owner of table %', target
                    USING ERRCODE = 'insufficient_privilege',
                          HINT = 'Only the owner of a table (or a member of its owning role, or a superuser) can turn its audit on or off.';
            END IF;
            RAISE EXCEPTION 'must be owner of table %', rel::regclass
                USING ERRCODE = 'insufficient_privilege',
                      DETAIL = format('"%s" is a partition or inheritance child of "%s": the audit of a table covers them all.',
                                      rel::regclass, target),
                      HINT = 'Give the partitions and inheritance children the owner of the parent, or turn the audit on or off as a superuser.';
        END IF;
    END LOOP;
    -- one enable_audit / disable_audit at a time per table (parent first, as DML locks)
    FOR rel IN SELECT t.relid FROM iact.audit_tree(target) t ORDER BY t.depth, t.relid LOOP
        EXECUTE format('LOCK TABLE ONLY %s IN SHARE ROW EXCLUSIVE MODE', rel::regclass);
    END LOOP;
    FOR rel, trg IN SELECT t.tgrelid, t.tgname
                      FROM pg_trigger t JOIN iact.audit_tree(target) r ON r.relid = t.tgrelid
                     WHERE t.tgfoid = 'iact.audit_trigger()'::regprocedure
                     ORDER BY r.depth, t.tgrelid, t.tgname LOOP
        EXECUTE format('DROP TRIGGER %I ON %s', trg, rel::regclass);
        found := true;
    END LOOP;
    IF NOT found AND NOT coalesce(quiet, false) THEN
        RAISE NOTICE 'table "%" is not audited, nothing to do', target;
    END IF;
    RETURN found;
END
$$;
REVOKE ALL ON FUNCTION iact.disable_audit(regclass, boolean) FROM PUBLIC;
COMMENT ON FUNCTION iact.disable_audit(regclass, boolean) IS
    'stop auditing a table and its partitions / inheritance children; the rows already in iact.audit_log stay';

-- Partitions and inheritance children of an audited table that are not
-- audited themselves: created, attached or inherited after enable_audit (or
-- their audit was disabled on its own).  Statements naming them directly are
-- not recorded; iact.enable_audit(audited_parent) covers them again.
CREATE VIEW iact.audit_uncovered AS
SELECT DISTINCT ON (d.relid)
       d.relid AS table_name,
       a.table_name AS audited_parent
  FROM iact.audited_tables a
 CROSS JOIN LATERAL iact.audit_tree(a.table_name) d
 WHERE d.depth > 0
   AND d.relkind IN ('r', 'p')
   AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_trigger t
                    WHERE t.tgrelid = d.relid
                      AND t.tgfoid = 'iact.audit_trigger()'::regprocedure
                      AND t.tgname = 'iact_audit_insert')
 ORDER BY d.relid, d.depth;
REVOKE ALL ON iact.audit_uncovered FROM PUBLIC;
COMMENT ON VIEW iact.audit_uncovered IS
    'partitions / inheritance children of audited tables whose own statements are not audited';

-- Retention: remove what was recorded by statements older than older_than
-- ("timestamp" < now() - older_than).  One batch deletes at most batch_size
-- rows of the oldest such statements (and then those statements); at most
-- max_batches batches run (NULL: until nothing is left).  Returns the number
-- of iact.audit_log entries removed.
CREATE FUNCTION iact.purge_audit_log(older_than interval,
                                     batch_size integer DEFAULT 10000,
                                     max_batches integer DEFAULT NULL)
RETURNS bigint
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    cutoff  timestamptz;
    stmts   bigint[];
    lo      bigint;
    hi      bigint;
    n       bigint;
    total   bigint := 0;
    batches integer := 0;
BEGIN
    IF older_than IS NULL OR batch_size IS NULL THEN
        RAISE EXCEPTION 'older_than and batch_size must not be NULL'
            USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF older_than < interval '0' THEN
        RAISE EXCEPTION 'older_than must not be negative: %', older_than
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Entries older than now() - older_than are deleted, e.g. ''90 days''.';
    END IF;
    IF batch_size < 1 OR batch_size > 1000000 THEN
        RAISE EXCEPTION 'batch_size must be between 1 and 1000000: %', batch_size
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF max_batches IS NOT NULL AND max_batches < 1 THEN
        RAISE EXCEPTION 'max_batches must be at least 1 (or NULL for no limit): %', max_batches
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    cutoff := now() - older_than;
    WHILE max_batches IS NULL OR batches < max_batches LOOP
        stmts := ARRAY(SELECT s.id FROM iact.audit_statement s
                        WHERE s."timestamp" < cutoff ORDER BY s.id LIMIT batch_size);
        EXIT WHEN cardinality(stmts) = 0;
        lo := stmts[1];
        hi := stmts[cardinality(stmts)];
        DELETE FROM iact.audit_row
         WHERE ctid = ANY (ARRAY(SELECT r.ctid FROM iact.audit_row r
                                  WHERE r.statement_id BETWEEN lo AND hi
                                    AND r.statement_id = ANY (stmts)
                                  LIMIT batch_size));
        GET DIAGNOSTICS n = ROW_COUNT;
        total := total + n;
        IF n < batch_size OR NOT EXISTS (SELECT 1 FROM iact.audit_row r
                                          WHERE r.statement_id BETWEEN lo AND hi
                                            AND r.statement_id = ANY (stmts)) THEN
            -- every row of these statements is gone: drop the statements
            -- (a TRUNCATE statement counts as one entry of its own)
            WITH d AS (DELETE FROM iact.audit_statement s WHERE s.id = ANY (stmts)
                       RETURNING s.row_count)
            SELECT count(*) INTO n FROM d WHERE d.row_count = 0;
            total := total + n;
        END IF;
        batches := batches + 1;
    END LOOP;
    RETURN total;
END
$$;
REVOKE ALL ON FUNCTION iact.purge_audit_log(interval, integer, integer) FROM PUBLIC;
COMMENT ON FUNCTION iact.purge_audit_log(interval, integer, integer) IS
    'delete audit entries older than now() - older_than in batches; returns the number deleted';

-- The same in short transactions: CALL from the top level (not inside BEGIN)
-- commits after each batch so no lock or snapshot is held for the whole purge.
CREATE PROCEDURE iact.purge_audit_log_batched(older_than interval, batch_size integer DEFAULT 10000)
LANGUAGE plpgsql
AS $$
DECLARE
    n bigint;
BEGIN
    LOOP
        n := iact.purge_audit_log(older_than, batch_size, 1);
        COMMIT;
        EXIT WHEN n = 0;
    END LOOP;
END
$$;
REVOKE ALL ON PROCEDURE iact.purge_audit_log_batched(interval, integer) FROM PUBLIC;
-- 60_health.sql: iact.health() and iact.metrics() (src/health.c, src/health_metrics.c).
--
-- Both run as the extension owner (SECURITY DEFINER) so a monitoring role
-- sees every figure without privileges on the tables they read; PUBLIC may
-- not call them.  pg_monitor may (it also needs USAGE on schema iact).

CREATE FUNCTION iact.health()
RETURNS TABLE (check_name text, status text, value numeric, detail text)
LANGUAGE c
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'iact_health';
COMMENT ON FUNCTION iact.health() IS
    'iact health checks: one row per check (and per synced table), status ok, warn or fail';

CREATE FUNCTION iact.metrics()
RETURNS text
LANGUAGE c
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'iact_metrics';
COMMENT ON FUNCTION iact.metrics() IS
    'iact figures in Prometheus text exposition format, for a scraper';

REVOKE ALL ON FUNCTION iact.health() FROM PUBLIC;
REVOKE ALL ON FUNCTION iact.metrics() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION iact.health() TO pg_monitor;
GRANT EXECUTE ON FUNCTION iact.metrics() TO pg_monitor;
