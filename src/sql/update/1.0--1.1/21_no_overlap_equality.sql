-- 1.0 -> 1.1: find_overlaps compares persons as the no-overlap trigger does
-- (under the probe index's collation, with the type's default btree operator
-- class rather than pg_catalog's "="); replaces the definition of
-- 20_events_security.sql.
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
