-- 20_events_security.sql (1.0 -> 1.1): time events hardened (issue 11).
--   find_overlaps: no cast or user-defined code runs as the extension owner;
--     persons compared as the trigger does (probe index collation, the type's
--     default btree operator class);
--     every operator schema-qualified.
--   enforce_no_overlap: group names limited in bytes, max_length bounded;
--     (probe indexes are checked in C: DESC, NULLS FIRST, non-default operator
--     classes and nondeterministic collations are refused).
--   release_no_overlap: NULL arguments refused.
--   daily_pieces: infinite times and periods over 366 days refused.
--   record_event: only the two event tables.
--   visible_cities: extra hours are seen by the city's territorial manager only.
-- Same signatures: CREATE OR REPLACE keeps the privileges.

CREATE OR REPLACE FUNCTION iact.find_overlaps(of_group text DEFAULT NULL)
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
    bad record;
BEGIN
    -- SECURITY DEFINER: no code that a non-superuser can define may run here.
    -- Values become text through their types' output functions (format %s),
    -- never through casts (a type's owner may create a cast to text); operators
    -- and functions resolve in pg_catalog only (search_path), and a group whose
    -- column types (or their domains' base types) have an implicit or
    -- assignment cast implemented by a function of a non-superuser is refused:
    -- operator resolution could choose such a cast.
    FOR g IN
        SELECT DISTINCT mm.group_name FROM iact.no_overlap_members(of_group) mm
         ORDER BY 1
    LOOP
        WITH RECURSIVE types(t) AS (
            SELECT a.atttypid
              FROM iact.no_overlap_members(g) mm
              JOIN pg_attribute a ON a.attrelid OPERATOR(pg_catalog.=) mm.table_name
               AND a.attname OPERATOR(pg_catalog.=) ANY (ARRAY[mm.person_column, mm.start_column, mm.end_column])
            UNION
            SELECT ty.typbasetype FROM types JOIN pg_type ty ON ty.oid OPERATOR(pg_catalog.=) types.t
             WHERE ty.typbasetype OPERATOR(pg_catalog.<>) 0
        )
        SELECT c.castsource::regtype AS source, c.casttarget::regtype AS target,
               f.oid::regprocedure AS func, r.rolname AS owner
          INTO bad
          FROM types
          JOIN pg_cast c ON c.castsource OPERATOR(pg_catalog.=) types.t
          JOIN pg_proc f ON f.oid OPERATOR(pg_catalog.=) c.castfunc
          JOIN pg_roles r ON r.oid OPERATOR(pg_catalog.=) f.proowner
         WHERE NOT r.rolsuper AND c.castcontext OPERATOR(pg_catalog.<>) 'e'
         LIMIT 1;
        IF FOUND THEN
            RAISE EXCEPTION 'iact.find_overlaps will not check no-overlap group "%"', g
                USING ERRCODE = 'insufficient_privilege',
                      DETAIL = format('The implicit cast from %s to %s is implemented by %s, owned by role %s, which is not a superuser; find_overlaps runs as the extension owner.',
                                      bad.source, bad.target, bad.func, bad.owner),
                      HINT = 'Make the cast explicit (DROP CAST, CREATE CAST without AS IMPLICIT / AS ASSIGNMENT), or have a superuser own its function.';
        END IF;
        -- a foreign table (a foreign partition) would be read through its wrapper
        -- with the extension owner's user mapping: not done (the trigger cannot
        -- guard one anyway: it has no index)
        SELECT mm.table_name INTO bad
          FROM iact.no_overlap_members(g) mm JOIN pg_class c ON c.oid OPERATOR(pg_catalog.=) mm.table_name
         WHERE c.relkind OPERATOR(pg_catalog.<>) ALL (ARRAY['r', 'p']::"char"[])
         LIMIT 1;
        IF FOUND THEN
            RAISE EXCEPTION 'iact.find_overlaps will not read %, a member of no-overlap group "%"', bad.table_name, g
                USING ERRCODE = 'wrong_object_type',
                      DETAIL = 'Only tables and partitioned tables are read; a foreign table would be read with the extension owner''s user mapping.',
                      HINT = 'Release the group from it: SELECT iact.release_no_overlap(group_name, tables).';
        END IF;
        parts := '{}';
        FOR m IN
            SELECT mm.*,
                   -- persons compared under the probe index's collation, the
                   -- same in every member, as the trigger compares them
                   (SELECT format(' COLLATE %I.%I', cn.nspname, co.collname)
                      FROM pg_index i JOIN pg_collation co ON co.oid OPERATOR(pg_catalog.=) i.indcollation[0]
                      JOIN pg_namespace cn ON cn.oid OPERATOR(pg_catalog.=) co.collnamespace
                     WHERE i.indexrelid OPERATOR(pg_catalog.=) mm.probe_index) AS coll,
                   (SELECT quote_ident(a.attname)
                      FROM pg_index i JOIN pg_attribute a
                        ON a.attrelid OPERATOR(pg_catalog.=) i.indrelid
                       AND a.attnum OPERATOR(pg_catalog.=) i.indkey[0]
                     WHERE i.indrelid OPERATOR(pg_catalog.=) mm.table_name AND i.indisprimary
                       AND i.indnkeyatts OPERATOR(pg_catalog.=) 1) AS pk
              FROM iact.no_overlap_members(g) mm
             -- a partitioned table's rows are read from its partitions, which
             -- carry the cloned trigger and are members themselves; a table's
             -- inheritance children are not read (ONLY): the trigger does not
             -- guard them unless they are members
             WHERE (SELECT c.relkind FROM pg_class c WHERE c.oid OPERATOR(pg_catalog.=) mm.table_name)
                   OPERATOR(pg_catalog.<>) 'p'
        LOOP
            parts := parts OPERATOR(pg_catalog.||) format(
                'SELECT %L::pg_catalog.regclass AS tbl, %s AS id, %I%s AS p, %I AS s, %I AS e FROM ONLY %s',
                m.table_name,
                CASE WHEN m.pk IS NULL
                     THEN $c$'ctid ' OPERATOR(pg_catalog.||) pg_catalog.textin(pg_catalog.tidout(ctid))$c$
                     ELSE format('pg_catalog.format(%L, %s)', '%s', m.pk) END,
                m.person_column, coalesce(m.coll, ''), m.start_column, m.end_column, m.table_name);
        END LOOP;
        -- sorted by (person, start), an event overlaps an earlier one iff it
        -- starts before the latest end seen so far; only those are joined back.
        -- Persons are told apart by the sort (the default btree operator
        -- class, as in the trigger), numbered by dense_rank: pg_catalog's "="
        -- is not the equality of every type (citext's is not in pg_catalog)
        q := format($q$
            WITH ev AS (%s),
            w AS (SELECT ev.*, pg_catalog.dense_rank() OVER (ORDER BY p) AS pn,
                         pg_catalog.row_number() OVER o AS ord,
                         pg_catalog.max(e) OVER (o ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS prev_end
                    FROM ev WINDOW o AS (PARTITION BY p ORDER BY s, e))
            SELECT %L::text, pg_catalog.format('%%s', a.p), a.tbl, a.id,
                   pg_catalog.format('%%s', a.s), pg_catalog.format('%%s', a.e),
                   b.tbl, b.id, pg_catalog.format('%%s', b.s), pg_catalog.format('%%s', b.e)
              FROM w b JOIN w a ON a.pn OPERATOR(pg_catalog.=) b.pn AND a.ord OPERATOR(pg_catalog.<) b.ord
                               AND a.e OPERATOR(pg_catalog.>) b.s
             WHERE b.prev_end OPERATOR(pg_catalog.>) b.s
             ORDER BY a.pn, a.s, b.s$q$, array_to_string(parts, ' UNION ALL '), g);
        RETURN QUERY EXECUTE q;
    END LOOP;
END
$$;

CREATE OR REPLACE FUNCTION iact.enforce_no_overlap(group_name text, tables regclass[],
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
    -- the trigger is named "iact_no_overlap <group>": names are limited in bytes
    IF group_name IS NULL OR btrim(group_name) = '' OR octet_length(group_name) > 40 THEN
        RAISE EXCEPTION 'group_name must be a non-blank text of at most 40 bytes'
            USING ERRCODE = 'invalid_parameter_value',
                  DETAIL = CASE WHEN group_name IS NULL THEN 'group_name is NULL.'
                                ELSE format('group_name is %s bytes long.', octet_length(group_name)) END,
                  HINT = 'Multibyte characters count several bytes.';
    END IF;
    IF tables IS NULL OR cardinality(tables) = 0 OR array_position(tables, NULL) IS NOT NULL THEN
        RAISE EXCEPTION 'tables must be a non-empty array of tables without NULLs'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF person_column IS NULL OR start_column IS NULL OR end_column IS NULL THEN
        RAISE EXCEPTION 'person_column, start_column and end_column must not be NULL'
            USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF max_length IS NOT NULL AND (max_length <= interval '0' OR max_length > interval '100 years') THEN
        RAISE EXCEPTION 'max_length must be a positive interval of at most 100 years: %', max_length
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Pass NULL for no maximum.';
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

CREATE OR REPLACE FUNCTION iact.release_no_overlap(group_name text, tables regclass[] DEFAULT NULL)
    RETURNS void
    LANGUAGE plpgsql
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    t regclass;
    targets regclass[];
BEGIN
    IF group_name IS NULL THEN
        RAISE EXCEPTION 'group_name must not be NULL' USING ERRCODE = 'null_value_not_allowed',
              HINT = 'iact.no_overlap_members() lists the groups.';
    END IF;
    IF array_position(tables, NULL) IS NOT NULL THEN
        RAISE EXCEPTION 'tables must not contain NULL' USING ERRCODE = 'null_value_not_allowed',
              HINT = 'Pass NULL (not an array holding NULL) to release every table of the group.';
    END IF;
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

CREATE OR REPLACE FUNCTION iact.daily_pieces(started_at timestamp, ended_at timestamp)
    RETURNS TABLE (piece_start timestamp, piece_end timestamp)
    LANGUAGE plpgsql IMMUTABLE STRICT
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF NOT isfinite(daily_pieces.started_at) THEN
        RAISE EXCEPTION 'started_at must be a finite time: %', daily_pieces.started_at
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'A period starts and ends at finite times.';
    END IF;
    IF NOT isfinite(daily_pieces.ended_at) THEN
        RAISE EXCEPTION 'ended_at must be a finite time: %', daily_pieces.ended_at
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'A period starts and ends at finite times.';
    END IF;
    -- in days of dates: timestamp arithmetic near the ends of the range overflows
    IF daily_pieces.ended_at::date - daily_pieces.started_at::date > 366 THEN
        RAISE EXCEPTION 'the period from started_at to ended_at must last at most 366 days'
            USING ERRCODE = 'invalid_parameter_value',
                  DETAIL = format('Attempted [%s, %s).', daily_pieces.started_at, daily_pieces.ended_at),
                  HINT = 'Cut a longer period into years.';
    END IF;
    RETURN QUERY
        SELECT greatest(d, daily_pieces.started_at), least(d + interval '1 day', daily_pieces.ended_at)
          FROM generate_series(date_trunc('day', daily_pieces.started_at), daily_pieces.ended_at,
                               interval '1 day') AS d
         WHERE d < daily_pieces.ended_at
         ORDER BY d;
END
$$;
COMMENT ON FUNCTION iact.daily_pieces(timestamp, timestamp) IS
    'A period of finite times, at most 366 days, cut at each midnight (empty when it ends before it starts)';

CREATE OR REPLACE FUNCTION iact.record_event(event_table regclass, place_column name, place_table regclass,
                                  person_id bigint, place_id bigint,
                                  started_at timestamp, ended_at timestamp)
    RETURNS SETOF bigint
    LANGUAGE plpgsql
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    place_exists boolean;
BEGIN
    -- the two kinds of events only (callable by a recording role: never a
    -- way to write into another table)
    IF (event_table, place_column, place_table) IS DISTINCT FROM
           ('iact.work_shifts'::regclass, 'office_id'::name, 'iact.offices'::regclass)
       AND (event_table, place_column, place_table) IS DISTINCT FROM
           ('iact.extra_hours'::regclass, 'city_id'::name, 'iact.cities'::regclass) THEN
        RAISE EXCEPTION 'event_table, place_column and place_table must be (iact.work_shifts, office_id, iact.offices) or (iact.extra_hours, city_id, iact.cities)'
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Call iact.record_work_shift or iact.record_extra_hours.';
    END IF;
    IF person_id IS NULL OR started_at IS NULL OR ended_at IS NULL THEN
        RAISE EXCEPTION 'person_id, started_at and ended_at must not be NULL'
            USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF isfinite(started_at) IS NOT TRUE OR isfinite(ended_at) IS NOT TRUE THEN
        RAISE EXCEPTION 'started_at and ended_at must be finite times'
            USING ERRCODE = 'invalid_parameter_value',
                  DETAIL = format('Attempted [%s, %s).', started_at, ended_at);
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

CREATE OR REPLACE FUNCTION iact.visible_cities(person_id bigint) RETURNS SETOF bigint
    LANGUAGE sql STABLE
    SET search_path = pg_catalog, pg_temp
AS $$
    SELECT c.id FROM iact.cities c WHERE c.territorial_manager_id = visible_cities.person_id
$$;
COMMENT ON FUNCTION iact.visible_cities(bigint) IS
    'Cities the person territorially manages (extra hours belong to a city: an office''s manager does not see them)';

