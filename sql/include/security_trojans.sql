-- Included by sql/70_security.sql and sql/72_security_backfill.sql (\i): the
-- attacker and the search_path trojans they plant.
SET client_min_messages = warning;

-- The attacker: a non-superuser who may create in schema public (a database
-- owner may, on PostgreSQL 15).  Every trojan writes what ran, as whom, and
-- in which entry point (regress.stage) to this log, and warns (a warning
-- still shows when the statement then fails and its transaction rolls back).
CREATE ROLE regress_sec_mallory;
CREATE ROLE regress_sec_clerk;
GRANT CREATE, USAGE ON SCHEMA public TO regress_sec_mallory;
CREATE TABLE regress_trojan_log (what text, stage text, who name, superuser boolean);
GRANT INSERT ON regress_trojan_log TO PUBLIC;
CREATE TABLE regress_trojans (what text, call text);
GRANT INSERT ON regress_trojans TO regress_sec_mallory;

SET ROLE regress_sec_mallory;
SET client_min_messages = error;  -- (creating them runs some already created)
CREATE FUNCTION public.regress_trojan_hit(what text) RETURNS void
    LANGUAGE plpgsql SET search_path = pg_catalog AS $$
BEGIN
    INSERT INTO public.regress_trojan_log
    VALUES (what, current_setting('regress.stage', true), current_user, current_setting('is_superuser')::boolean);
    RAISE WARNING 'trojan % ran in % as % (superuser: %)', what, current_setting('regress.stage', true),
        current_user, current_setting('is_superuser');
END
$$;

-- functions: exact argument types beat pg_catalog's polymorphic or variadic
-- ones once public comes first in search_path; each trojan logs, then does
-- what the real function does (so nothing else changes)
CREATE TEMP TABLE trojan_spec (kind text, name text, args text, ret text);
INSERT INTO trojan_spec VALUES
    ('f', 'cardinality', 'regclass[]', 'integer'), ('f', 'cardinality', 'text[]', 'integer'),
    ('f', 'cardinality', 'bigint[]', 'integer'), ('f', 'array_position', 'regclass[], regclass', 'integer'),
    ('f', 'btrim', 'text', 'text'), ('f', 'length', 'text', 'integer'), ('f', 'octet_length', 'text', 'integer'),
    ('f', 'lower', 'text', 'text'), ('f', 'upper', 'text', 'text'), ('f', 'isfinite', 'timestamp', 'boolean'),
    ('f', 'now', '', 'timestamptz'), ('f', 'clock_timestamp', '', 'timestamptz'),
    ('f', 'format', 'text, text', 'text'), ('f', 'format', 'text, regclass', 'text'),
    ('f', 'format', 'text, text, text', 'text'), ('f', 'quote_ident', 'text', 'text'),
    ('f', 'quote_literal', 'text', 'text'), ('f', 'array_to_string', 'text[], text', 'text'),
    ('f', 'replace', 'text, text, text', 'text'), ('f', 'date_trunc', 'text, timestamp', 'timestamp'),
    ('f', 'generate_series', 'timestamp, timestamp, interval', 'SETOF timestamp'),
    ('f', 'unnest', 'text[]', 'SETOF text'), ('f', 'unnest', 'bigint[]', 'SETOF bigint'),
    ('f', 'string_to_array', 'text, text', 'text[]'), ('f', 'encode', 'bytea, text', 'text'),
    ('f', 'pg_has_role', 'oid, text', 'boolean'), ('f', 'current_setting', 'text', 'text'),
    ('f', 'current_setting', 'text, boolean', 'text'), ('f', 'nextval', 'regclass', 'bigint'),
    ('f', 'to_regclass', 'text', 'regclass'), ('f', 'pg_get_serial_sequence', 'text, text', 'text'),
    ('f', 'round', 'numeric, integer', 'numeric'), ('f', 'current_database', '', 'name'),
    ('f', 'pg_backend_pid', '', 'integer'), ('f', 'pg_is_in_recovery', '', 'boolean'),
    ('o', '=', 'bigint, bigint', 'boolean'), ('o', '=', 'integer, integer', 'boolean'),
    ('o', '=', 'bigint, integer', 'boolean'), ('o', '=', 'oid, oid', 'boolean'),
    ('o', '=', 'name, name', 'boolean'), ('o', '=', 'text, text', 'boolean'),
    ('o', '=', 'tid, tid', 'boolean'), ('o', '=', 'regclass, regclass', 'boolean'),
    ('o', '<>', 'text, text', 'boolean'), ('o', '<', 'timestamp, timestamp', 'boolean'),
    ('o', '<=', 'timestamp, timestamp', 'boolean'), ('o', '>', 'timestamp, timestamp', 'boolean'),
    ('o', '<', 'integer, integer', 'boolean'), ('o', '>', 'integer, integer', 'boolean'),
    ('o', '<', 'bigint, bigint', 'boolean'), ('o', '>', 'bigint, bigint', 'boolean'),
    ('o', '<=', 'interval, interval', 'boolean'), ('o', '>', 'interval, interval', 'boolean'),
    ('o', '<', 'interval, interval', 'boolean'), ('o', '&&', 'tsrange, tsrange', 'boolean'),
    ('o', '||', 'text, text', 'text'), ('o', '||', 'text[], text', 'text[]'),
    ('o', '-', 'timestamp, timestamp', 'interval'), ('o', '+', 'timestamp, interval', 'timestamp'),
    ('o', '-', 'date, date', 'integer'), ('o', '-', 'timestamptz, interval', 'timestamptz');
DO $$
DECLARE
    t record;
    n integer := 0;
    params text;
    nulls text;
    a text[];
BEGIN
    FOR t IN SELECT * FROM trojan_spec LOOP
        n := n + 1;
        a := CASE WHEN t.args = '' THEN '{}' ELSE string_to_array(t.args, ', ') END;
        SELECT coalesce(string_agg('$' || i, ', ' ORDER BY i), ''),
               coalesce(string_agg(format('NULL::%s', a[i]), ', ' ORDER BY i), '')
          INTO params, nulls FROM generate_subscripts(a, 1) i;
        IF t.kind = 'f' THEN
            EXECUTE format('CREATE FUNCTION public.%I(%s) RETURNS %s LANGUAGE sql SET search_path = pg_catalog AS %L',
                           t.name, t.args, t.ret,
                           format('SELECT public.regress_trojan_hit(%L); SELECT pg_catalog.%I(%s)',
                                  format('%s(%s)', t.name, t.args), t.name, params));
            INSERT INTO public.regress_trojans
                 VALUES (format('%s(%s)', t.name, t.args), format('SELECT %I(%s)', t.name, nulls));
        ELSE
            EXECUTE format('CREATE FUNCTION public.regress_trojan_op%s(%s) RETURNS %s LANGUAGE sql SET search_path = pg_catalog AS %L',
                           n, t.args, t.ret,
                           format('SELECT public.regress_trojan_hit(%L); SELECT $1 OPERATOR(pg_catalog.%s) $2',
                                  format('%s(%s)', t.name, t.args), t.name));
            EXECUTE format('CREATE OPERATOR public.%s (LEFTARG = %s, RIGHTARG = %s, FUNCTION = public.regress_trojan_op%s)',
                           t.name, a[1], a[2], n);
            INSERT INTO public.regress_trojans
                 VALUES (format('%s(%s)', t.name, t.args), format('SELECT %s %s %s', split_part(nulls, ', ', 1), t.name, split_part(nulls, ', ', 2)));
        END IF;
    END LOOP;
END
$$;
-- aggregates
CREATE FUNCTION public.regress_trojan_agg_regclass(regclass[], regclass) RETURNS regclass[]
    LANGUAGE sql SET search_path = pg_catalog AS $$
    SELECT public.regress_trojan_hit('array_agg(regclass)'); SELECT pg_catalog.array_append($1, $2) $$;
CREATE AGGREGATE public.array_agg(regclass) (SFUNC = public.regress_trojan_agg_regclass, STYPE = regclass[]);
CREATE FUNCTION public.regress_trojan_agg_count(bigint) RETURNS bigint
    LANGUAGE sql SET search_path = pg_catalog AS $$
    SELECT public.regress_trojan_hit('count(*)'); SELECT $1 OPERATOR(pg_catalog.+) 1 $$;
CREATE AGGREGATE public.count(*) (SFUNC = public.regress_trojan_agg_count, STYPE = bigint, INITCOND = '0');
CREATE FUNCTION public.regress_trojan_agg_max(timestamp, timestamp) RETURNS timestamp
    LANGUAGE sql SET search_path = pg_catalog AS $$
    SELECT public.regress_trojan_hit('max(timestamp)'); SELECT pg_catalog.timestamp_larger($1, $2) $$;
CREATE AGGREGATE public.max(timestamp) (SFUNC = public.regress_trojan_agg_max, STYPE = timestamp);
INSERT INTO public.regress_trojans VALUES
    ('array_agg(regclass)', 'SELECT array_agg(x) FROM (VALUES (NULL::regclass)) v(x)'),
    ('count(*)', 'SELECT count(*) FROM (VALUES (1)) v(x)'),
    ('max(timestamp)', 'SELECT max(x) FROM (VALUES (NULL::timestamp)) v(x)');
RESET ROLE;
SET client_min_messages = warning;

-- Control: each trojan does run when called unqualified with public first in
-- search_path (so a clean log below proves something)
SET regress.stage = 'control';
SET client_min_messages = error;
DO $$
DECLARE
    c text;
BEGIN
    FOR c IN SELECT call FROM public.regress_trojans LOOP
        SET LOCAL search_path = public, pg_catalog;
        EXECUTE c;
        RESET search_path;
    END LOOP;
END
$$;
SET client_min_messages = warning;
SELECT count(*) AS trojans,
       count(*) FILTER (WHERE what IN (SELECT what FROM regress_trojan_log WHERE superuser)) AS ran_as_superuser
  FROM regress_trojans;
TRUNCATE regress_trojan_log;
