-- Differential test of iact.enforce_no_overlap on user tables (issue 11),
-- with PostgreSQL's own exclusion constraint as the oracle:
--   oracle:  one table, EXCLUDE USING gist (person WITH =, range WITH &&)
--   subject: two tables of one no-overlap group (a random one of the two
--            gets each new event), no constraint but iact's trigger
-- The same random operations go to both: inserts (periods on a coarse grid,
-- so that ends often touch, across midnights and the DST change of the
-- session's time zone), deletes, moving UPDATEs and multi-row INSERTs spread
-- over both tables in one statement; every accept/reject
-- decision must be equal, and so must the contents at the end.  For
-- timestamp, timestamptz, date and integer times and each kind of probe index
-- enforce_no_overlap accepts (plain, wider, INCLUDE, UNIQUE, a text person
-- under the "C" collation, a group with max_length).  setseed makes every run
-- the same.
SET client_min_messages = warning;
SET TimeZone = 'Europe/Lisbon';          -- 2024-03-31 01:00 -> 02:00
CREATE EXTENSION IF NOT EXISTS btree_gist;

-- one configuration: n operations; returns the counts and the mismatches
CREATE FUNCTION regress_diff(typ text, kind text, n integer, seed float8)
    RETURNS TABLE (time_type text, probe_index text, inserts integer, accepted integer,
                   rejected integer, updates integer, deletes integer, batches integer,
                   batches_accepted integer, mismatches integer,
                   same_contents boolean, overlapping_pairs bigint)
    LANGUAGE plpgsql AS $$
DECLARE
    rng text := CASE typ WHEN 'timestamp' THEN 'tsrange' WHEN 'timestamptz' THEN 'tstzrange'
                         WHEN 'date' THEN 'daterange' ELSE 'int4range' END;
    -- grid unit k -> a value of the type
    val text := CASE typ WHEN 'date' THEN $v$('2024-03-29'::date + %s)$v$
                         WHEN 'integer' THEN '(%s)'
                         ELSE format($v$('2024-03-29 20:00'::%s + %%s * interval '1 hour')$v$, typ) END;
    ptype text := CASE WHEN kind = 'text person, COLLATE "C"' THEN 'text' ELSE 'integer' END;
    maxlen text := CASE WHEN kind = 'plain, max_length 6 hours' THEN $m$'6 hours'$m$ ELSE 'NULL' END;
    g text := 'diff ' || typ || ' ' || left(md5(kind), 8);
    op float8;
    id integer := 0;
    victim integer;
    p integer;
    k integer;
    len integer;
    pv text;
    tbl text;
    rows_o text[];
    rows_a text[];
    rows_b text[];
    stmt text;
    ok_oracle boolean;
    ok_subject boolean;
BEGIN
    time_type := typ; probe_index := kind;
    inserts := 0; accepted := 0; rejected := 0; updates := 0; deletes := 0; batches := 0; batches_accepted := 0;
    mismatches := 0;
    PERFORM setseed(seed);
    DROP TABLE IF EXISTS regress_diff_oracle, regress_diff_a, regress_diff_b;
    EXECUTE format('CREATE TABLE regress_diff_oracle (id integer PRIMARY KEY, person %s NOT NULL, r %s NOT NULL,
                        EXCLUDE USING gist (person WITH =, r WITH &&))', ptype, rng);
    FOREACH tbl IN ARRAY ARRAY['regress_diff_a', 'regress_diff_b'] LOOP
        EXECUTE format('CREATE TABLE %I (id integer PRIMARY KEY, person %s NOT NULL, s %s NOT NULL, e %s NOT NULL)',
                       tbl, ptype, typ, typ);
        EXECUTE format(CASE kind
                       WHEN 'wider (person, s, e)' THEN 'CREATE INDEX ON %I (person, s, e)'
                       WHEN 'INCLUDE (e)' THEN 'CREATE INDEX ON %I (person, s) INCLUDE (e)'
                       WHEN 'UNIQUE (person, s)' THEN 'CREATE UNIQUE INDEX ON %I (person, s)'
                       WHEN 'text person, COLLATE "C"' THEN 'CREATE INDEX ON %I (person COLLATE "C", s)'
                       ELSE 'CREATE INDEX ON %I (person, s)' END, tbl);
    END LOOP;
    EXECUTE format('SELECT iact.enforce_no_overlap(%L, ARRAY[''regress_diff_a'', ''regress_diff_b'']::regclass[],
                                                   ''person'', ''s'', ''e'', %s)', g, maxlen);

    FOR i IN 1..n LOOP
        op := random();
        p := 1 + floor(random() * 8)::integer;
        k := floor(random() * 60)::integer;
        len := 1 + floor(random() * 6)::integer;
        pv := CASE ptype WHEN 'text' THEN quote_literal(CASE WHEN p % 2 = 0 THEN 'p' ELSE 'P' END || p / 2)
                         ELSE p::text END;
        IF op < 0.12 THEN
            -- delete a random event (from both)
            SELECT o.id INTO victim FROM regress_diff_oracle o ORDER BY random() LIMIT 1;
            CONTINUE WHEN victim IS NULL;
            deletes := deletes + 1;
            DELETE FROM regress_diff_oracle o WHERE o.id = victim;
            DELETE FROM regress_diff_a a WHERE a.id = victim;
            DELETE FROM regress_diff_b b WHERE b.id = victim;
        ELSIF op < 0.24 THEN
            -- move a random event to another period (and maybe another person)
            SELECT o.id INTO victim FROM regress_diff_oracle o ORDER BY random() LIMIT 1;
            CONTINUE WHEN victim IS NULL;
            updates := updates + 1;
            BEGIN
                EXECUTE format('UPDATE regress_diff_oracle SET person = %s, r = %s(%s, %s, ''[)'') WHERE id = $1',
                               pv, rng, format(val, k), format(val, k + len)) USING victim;
                ok_oracle := true;
            EXCEPTION WHEN exclusion_violation THEN ok_oracle := false;
            END;
            BEGIN
                FOREACH tbl IN ARRAY ARRAY['regress_diff_a', 'regress_diff_b'] LOOP
                    EXECUTE format('UPDATE %I SET person = %s, s = %s, e = %s WHERE id = $1',
                                   tbl, pv, format(val, k), format(val, k + len)) USING victim;
                END LOOP;
                ok_subject := true;
            EXCEPTION WHEN exclusion_violation OR unique_violation THEN ok_subject := false;
            END;
            IF ok_oracle IS DISTINCT FROM ok_subject THEN
                mismatches := mismatches + 1;
                RAISE WARNING 'mismatch (%, %): update % to person %, [%, %): oracle %, subject %',
                    typ, kind, victim, pv, k, k + len, ok_oracle, ok_subject;
            END IF;
        ELSIF op < 0.32 THEN
            -- one statement inserting 2 or 3 events of one person, spread over
            -- both tables (a data-modifying WITH): the trigger checks them all
            -- at the end of the statement, each seeing the others
            batches := batches + 1;
            -- (each starts where the previous one ended, one unit before or after)
            rows_o := '{}'; rows_a := '{}'; rows_b := '{}';
            FOR j IN 1..2 + floor(random() * 2)::integer LOOP
                id := id + 1;
                IF j > 1 THEN
                    k := k + len - 1 + floor(random() * 3)::integer;
                    len := 1 + floor(random() * 6)::integer;
                END IF;
                rows_o := rows_o || format('(%s, %s, %s(%s, %s, ''[)''))', id, pv, rng, format(val, k),
                                           format(val, k + len));
                IF random() < 0.5 THEN
                    rows_a := rows_a || format('(%s, %s, %s, %s)', id, pv, format(val, k), format(val, k + len));
                ELSE
                    rows_b := rows_b || format('(%s, %s, %s, %s)', id, pv, format(val, k), format(val, k + len));
                END IF;
            END LOOP;
            BEGIN
                EXECUTE 'INSERT INTO regress_diff_oracle VALUES ' || array_to_string(rows_o, ', ');
                ok_oracle := true;
            EXCEPTION WHEN exclusion_violation THEN ok_oracle := false;
            END;
            stmt := CASE WHEN cardinality(rows_a) = 0
                         THEN 'INSERT INTO regress_diff_b VALUES ' || array_to_string(rows_b, ', ')
                         WHEN cardinality(rows_b) = 0
                         THEN 'INSERT INTO regress_diff_a VALUES ' || array_to_string(rows_a, ', ')
                         ELSE format('WITH x AS (INSERT INTO regress_diff_a VALUES %s) INSERT INTO regress_diff_b VALUES %s',
                                     array_to_string(rows_a, ', '), array_to_string(rows_b, ', ')) END;
            BEGIN
                EXECUTE stmt;
                ok_subject := true;
            EXCEPTION WHEN exclusion_violation OR unique_violation THEN ok_subject := false;
            END;
            IF ok_oracle THEN batches_accepted := batches_accepted + 1; END IF;
            IF ok_oracle IS DISTINCT FROM ok_subject THEN
                mismatches := mismatches + 1;
                RAISE WARNING 'mismatch (%, %): batch %: oracle %, subject %', typ, kind, stmt, ok_oracle, ok_subject;
            END IF;
        ELSE
            id := id + 1;
            inserts := inserts + 1;
            BEGIN
                EXECUTE format('INSERT INTO regress_diff_oracle VALUES ($1, %s, %s(%s, %s, ''[)''))',
                               pv, rng, format(val, k), format(val, k + len)) USING id;
                ok_oracle := true;
            EXCEPTION WHEN exclusion_violation THEN ok_oracle := false;
            END;
            tbl := CASE WHEN random() < 0.5 THEN 'regress_diff_a' ELSE 'regress_diff_b' END;
            BEGIN
                EXECUTE format('INSERT INTO %I VALUES ($1, %s, %s, %s)', tbl, pv, format(val, k), format(val, k + len))
                    USING id;
                ok_subject := true;
            EXCEPTION WHEN exclusion_violation OR unique_violation THEN ok_subject := false;
            END;
            IF ok_oracle THEN accepted := accepted + 1; ELSE rejected := rejected + 1; END IF;
            IF ok_oracle IS DISTINCT FROM ok_subject THEN
                mismatches := mismatches + 1;
                RAISE WARNING 'mismatch (%, %): insert % person %, [%, %): oracle %, subject %',
                    typ, kind, id, pv, k, k + len, ok_oracle, ok_subject;
            END IF;
        END IF;
    END LOOP;

    EXECUTE format($q$
        SELECT NOT EXISTS (
            (SELECT id, person::text, lower(r)::text, upper(r)::text FROM regress_diff_oracle
             EXCEPT ALL
             SELECT id, person::text, s::text, e::text FROM regress_diff_a
             EXCEPT ALL
             SELECT id, person::text, s::text, e::text FROM regress_diff_b)
            UNION ALL
            (SELECT id, person::text, s::text, e::text FROM regress_diff_a
             UNION ALL
             SELECT id, person::text, s::text, e::text FROM regress_diff_b
             EXCEPT ALL
             SELECT id, person::text, lower(r)::text, upper(r)::text FROM regress_diff_oracle))$q$)
        INTO same_contents;
    SELECT count(*) INTO overlapping_pairs FROM iact.find_overlaps(g);
    PERFORM iact.release_no_overlap(g);
    DROP TABLE regress_diff_oracle, regress_diff_a, regress_diff_b;
    RETURN NEXT;
END
$$;

SELECT d.*
  FROM (VALUES ('timestamp', 1), ('timestamptz', 2), ('date', 3), ('integer', 4)) t(typ, tn)
 CROSS JOIN (VALUES ('plain (person, s)', 1), ('wider (person, s, e)', 2), ('INCLUDE (e)', 3),
                    ('UNIQUE (person, s)', 4)) k(kind, kn)
 CROSS JOIN LATERAL regress_diff(t.typ, k.kind, 1200, (t.tn * 10 + k.kn) / 100.0) d
 ORDER BY t.tn, k.kn;
SELECT * FROM regress_diff('timestamp', 'text person, COLLATE "C"', 1200, 0.51);
SELECT * FROM regress_diff('timestamp', 'plain, max_length 6 hours', 1200, 0.52);
SELECT * FROM regress_diff('timestamptz', 'plain, max_length 6 hours', 1200, 0.53);

DROP FUNCTION regress_diff(text, text, integer, float8);
DROP EXTENSION btree_gist;
RESET TimeZone;
