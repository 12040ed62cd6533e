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
	UNIQUE (target_schema, target_table),
	-- the table registered (a table created later under the same name is
	-- another table: its runs fail); regclass, so that a dump and restore
	-- keeps pointing at the restored table
	target_oid regclass
);
COMMENT ON TABLE iact.sync_tables IS 'iact: tables synced from MariaDB (register with iact.sync_add_table)';
COMMENT ON COLUMN iact.sync_tables.target_oid IS 'iact: the table registered; a run refuses a table of the same name with another oid';

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
	write_path text,
	account_write_elsewhere text	-- the MariaDB account's write grants outside the source
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
-- every name below is schema-qualified: the caller's search_path resolves
-- the target's name and nothing else
DECLARE
	parts text[];
BEGIN
	IF target IS NULL OR pg_catalog.btrim(target) OPERATOR(pg_catalog.=) '' THEN
		RAISE EXCEPTION 'target table name must not be empty' USING ERRCODE = '22023';
	END IF;
	IF pg_catalog.octet_length(target) OPERATOR(pg_catalog.>) 1000 THEN
		RAISE EXCEPTION 'target table name is too long (% bytes)', pg_catalog.octet_length(target)
			USING ERRCODE = '42622', HINT = 'A schema-qualified name has at most two names of 63 bytes.';
	END IF;
	rel := pg_catalog.to_regclass(target);
	IF rel IS NOT NULL THEN
		SELECT n.nspname, c.relname INTO sch, tab
		  FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) c.relnamespace
		 WHERE c.oid OPERATOR(pg_catalog.=) rel;
		RETURN;
	END IF;
	parts := pg_catalog.parse_ident(target);
	IF pg_catalog.array_length(parts, 1) OPERATOR(pg_catalog.=) 1 THEN
		sch := pg_catalog.current_schema();
		tab := parts[1];
	ELSIF pg_catalog.array_length(parts, 1) OPERATOR(pg_catalog.=) 2 THEN
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
	  JOIN iact.sync_tables t ON t.target_schema OPERATOR(pg_catalog.=) n.sch
	   AND t.target_table OPERATOR(pg_catalog.=) n.tab;
	IF tid IS NULL THEN
		RAISE EXCEPTION 'table % is not registered for sync', target
			USING ERRCODE = '42704', HINT = 'See iact.sync_tables; register it with iact.sync_add_table().';
	END IF;
	RETURN tid;
END $$;

-- the enabled tables the current user may sync (those whose owner's
-- privileges it has, and those whose target is gone: their run fails)
CREATE FUNCTION iact._sync_runnable_ids() RETURNS SETOF integer
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
	SELECT t.id FROM iact.sync_tables t
	  LEFT JOIN pg_namespace n ON n.nspname = t.target_schema
	  LEFT JOIN pg_class c ON c.relnamespace = n.oid AND c.relname = t.target_table
	 WHERE t.enabled AND (c.oid IS NULL OR pg_has_role(c.relowner, 'USAGE'))
	 ORDER BY t.id
$$;

-- The registry's writers (src/sync_security.c): each checks that the caller
-- has the privileges of the target's owner, then writes as the registry's
-- owner.  Nobody else writes iact.sync_tables.
CREATE FUNCTION iact._sync_register(server name, source_schema text, source_table text, target regclass,
		key_columns text[], watermark_column text, lookback bigint, batch_size integer,
		retention_days integer, retention_column text, tinyint1_as_boolean boolean)
	RETURNS integer AS 'MODULE_PATHNAME', 'iact_sync_register' LANGUAGE C;
CREATE FUNCTION iact._sync_unregister(table_id integer) RETURNS boolean
	AS 'MODULE_PATHNAME', 'iact_sync_unregister' LANGUAGE C;
CREATE FUNCTION iact._sync_alter(table_id integer, enabled boolean, lookback bigint, batch_size integer,
		retention_days integer, reset_watermark boolean) RETURNS boolean
	AS 'MODULE_PATHNAME', 'iact_sync_alter' LANGUAGE C;

-- SECURITY DEFINER: callers of sync_now / sync_run need no DELETE on the runs
CREATE FUNCTION iact._sync_history_purge() RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
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

-- sync_add_table's work, with search_path pinned: the target's name was
-- resolved with the caller's search_path by iact._sync_target_name
CREATE FUNCTION iact._sync_add_table(server name, source_table text, target_table text,
		rel regclass, sch name, tab name, key_columns text[], watermark_column text,
		lookback bigint, retention_days integer, retention_column text, batch_size integer,
		tinyint1_as_boolean boolean)
	RETURNS integer
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	srv oid;
	src_parts text[];
	src_schema text;
	src_name text;
	cols record;
	coldefs text := '';
	keys text[] := key_columns;
	ret_col text := retention_column;
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
	IF pg_catalog.octet_length(source_table) > 200 THEN
		RAISE EXCEPTION 'invalid source table name: % bytes long', pg_catalog.octet_length(source_table)
			USING ERRCODE = '22023', HINT = 'MariaDB names are at most 64 characters: use ''table'' or ''database.table''.';
	END IF;
	IF lookback IS NULL OR lookback < 0 OR retention_days IS NULL OR retention_days < 0
	   OR (batch_size IS NOT NULL AND batch_size NOT BETWEEN 1 AND 1000000)
	   OR tinyint1_as_boolean IS NULL THEN
		RAISE EXCEPTION 'invalid option: lookback and retention_days must be >= 0, batch_size between 1 and 1000000'
			USING ERRCODE = '22023';
	END IF;
	IF lookback > 3153600000 OR retention_days > 36500 THEN
		RAISE EXCEPTION 'invalid option: lookback is at most 3153600000 (100 years of seconds), retention_days at most 36500'
			USING ERRCODE = '22023', HINT = 'retention_days => 0 keeps every row.';
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
	IF EXISTS (SELECT 1 FROM unnest(keys || watermark_column || ret_col) u(n) WHERE octet_length(u.n) > 256) THEN
		RAISE EXCEPTION 'invalid column name: longer than 256 bytes'
			USING ERRCODE = '22023', HINT = 'MariaDB column names are at most 64 characters.';
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
		rel := format('%I.%I', sch, tab)::regclass;
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
	-- registered by iact, if the caller has the privileges of the target's owner
	BEGIN
		new_id := iact._sync_register(server, src_schema, src_name, rel, keys, watermark_column, lookback,
			batch_size, retention_days, ret_col, tinyint1_as_boolean);
	EXCEPTION WHEN unique_violation THEN
		RAISE EXCEPTION 'table %.% is already registered for sync', quote_ident(sch), quote_ident(tab)
			USING ERRCODE = '42710', HINT = 'iact.sync_remove_table() first to change its settings.';
	END;
	DROP TABLE iact_sync_add_cols;
	RETURN new_id;
END $$;

CREATE FUNCTION iact.sync_add_table(server name, source_table text, target_table text,
		key_columns text[] DEFAULT NULL, watermark_column text DEFAULT NULL,
		lookback bigint DEFAULT 300, retention_days integer DEFAULT 730,
		retention_column text DEFAULT NULL, batch_size integer DEFAULT NULL,
		tinyint1_as_boolean boolean DEFAULT true)
	RETURNS integer
LANGUAGE plpgsql AS $$
-- schema-qualified: only the target's name is resolved with the caller's search_path
DECLARE
	rel regclass;
	sch name;
	tab name;
BEGIN
	IF server IS NULL OR source_table IS NULL OR target_table IS NULL THEN
		RAISE EXCEPTION 'server, source_table and target_table must not be NULL' USING ERRCODE = '22004';
	END IF;
	SELECT n.rel, n.sch, n.tab INTO rel, sch, tab FROM iact._sync_target_name(target_table) n;
	RETURN iact._sync_add_table(server, source_table, target_table, rel, sch, tab, key_columns,
		watermark_column, lookback, retention_days, retention_column, batch_size, tinyint1_as_boolean);
END $$;
COMMENT ON FUNCTION iact.sync_add_table(name, text, text, text[], text, bigint, integer, text, integer, boolean) IS
	'iact: register a MariaDB table for sync (creates the target when missing)';

CREATE FUNCTION iact.sync_remove_table(target_table text) RETURNS boolean
LANGUAGE sql AS $$
	SELECT iact._sync_unregister(iact._sync_table_id($1))
$$;
COMMENT ON FUNCTION iact.sync_remove_table(text) IS
	'iact: unregister a synced table (the target table and the run history stay)';

CREATE FUNCTION iact.sync_alter_table(target_table text, enabled boolean DEFAULT NULL,
		lookback bigint DEFAULT NULL, batch_size integer DEFAULT NULL,
		retention_days integer DEFAULT NULL, reset_watermark boolean DEFAULT false)
	RETURNS boolean
LANGUAGE sql AS $$
	SELECT iact._sync_alter(iact._sync_table_id($1), $2, $3, $4, $5, $6)
$$;
COMMENT ON FUNCTION iact.sync_alter_table(text, boolean, bigint, integer, integer, boolean) IS
	'iact: change a synced table''s settings (NULL keeps one; batch_size 0: the default; reset_watermark: re-read all)';

CREATE FUNCTION iact._sync_table(table_id integer) RETURNS bigint
	AS 'MODULE_PATHNAME', 'iact_sync_table_sql' LANGUAGE C STRICT;

CREATE FUNCTION iact.sync_now(target_table text DEFAULT NULL) RETURNS SETOF iact.sync_runs
LANGUAGE plpgsql AS $$
DECLARE
	tid integer;
	run_id bigint;
BEGIN
	-- a table named is synced even when disabled; without a name, every enabled
	-- one the caller may sync.  Every name is schema-qualified (the caller's
	-- search_path resolves the target's name only).
	FOR tid IN SELECT iact._sync_table_id(sync_now.target_table) WHERE sync_now.target_table IS NOT NULL
			   UNION ALL
			   SELECT x FROM iact._sync_runnable_ids() x WHERE sync_now.target_table IS NULL
			   ORDER BY 1 LOOP
		run_id := iact._sync_table(tid);
		RETURN QUERY SELECT * FROM iact.sync_runs WHERE id OPERATOR(pg_catalog.=) run_id;
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
REVOKE ALL ON FUNCTION iact._sync_runnable_ids() FROM PUBLIC;
REVOKE ALL ON FUNCTION iact._sync_register(name, text, text, regclass, text[], text, bigint, integer, integer, text, boolean) FROM PUBLIC;
REVOKE ALL ON FUNCTION iact._sync_unregister(integer) FROM PUBLIC;
REVOKE ALL ON FUNCTION iact._sync_alter(integer, boolean, bigint, integer, integer, boolean) FROM PUBLIC;
REVOKE ALL ON FUNCTION iact._sync_add_table(name, text, text, regclass, name, name, text[], text, bigint, integer, text, integer, boolean) FROM PUBLIC;
REVOKE ALL ON FUNCTION iact.sync_alter_table(text, boolean, bigint, integer, integer, boolean) FROM PUBLIC;
REVOKE ALL ON FUNCTION iact.sync_add_table(name, text, text, text[], text, bigint, integer, text, integer, boolean) FROM PUBLIC;
REVOKE ALL ON FUNCTION iact.sync_remove_table(text) FROM PUBLIC;
REVOKE ALL ON FUNCTION iact._sync_table(integer) FROM PUBLIC;
REVOKE ALL ON FUNCTION iact.sync_now(text) FROM PUBLIC;
REVOKE ALL ON PROCEDURE iact.sync_run(text) FROM PUBLIC;

-- Many tables in one call (src/sync_register.c lists a database's tables).
CREATE FUNCTION iact.sync_source_tables(server name, source_database text DEFAULT NULL)
	RETURNS TABLE (table_name text, estimated_rows bigint)
	AS 'MODULE_PATHNAME', 'iact_sync_source_tables' LANGUAGE C CALLED ON NULL INPUT;
COMMENT ON FUNCTION iact.sync_source_tables(name, text) IS
	'iact: the base tables of a MariaDB database (NULL: the server''s dbname) and MariaDB''s estimate of their rows';

-- Each table is registered by iact.sync_add_table in its own subtransaction:
-- a table refused does not stop the others.  Targets are named like the
-- source tables, in target_schema (NULL: current_schema()).  Every function and
-- operator is schema-qualified (no SET search_path: current_schema() is the caller's).
CREATE FUNCTION iact.sync_add_tables(server name, source_database text, tables text[] DEFAULT NULL,
		key_columns text[] DEFAULT NULL, watermark_column text DEFAULT NULL,
		lookback bigint DEFAULT 300, retention_days integer DEFAULT 730,
		retention_column text DEFAULT NULL, batch_size integer DEFAULT NULL,
		tinyint1_as_boolean boolean DEFAULT true, target_schema name DEFAULT NULL)
	RETURNS TABLE (source_table text, target_table text, table_id integer, status text, detail text)
LANGUAGE plpgsql AS $$
DECLARE
	names text[] := tables;
	db text := source_database;
	sch name := coalesce(target_schema, pg_catalog.current_schema());
	t text;
	msg text;
	st text;
BEGIN
	IF server IS NULL THEN
		RAISE EXCEPTION 'server must not be NULL' USING ERRCODE = '22004';
	END IF;
	IF sch IS NULL THEN
		RAISE EXCEPTION 'no schema to create the targets in' USING ERRCODE = '3F000',
			HINT = 'Pass target_schema.';
	END IF;
	IF db IS NULL THEN
		SELECT pg_catalog.split_part(o, '=', 2) INTO db
		  FROM pg_catalog.pg_foreign_server s, pg_catalog.unnest(s.srvoptions) o
		 WHERE s.srvname OPERATOR(pg_catalog.=) server AND pg_catalog.starts_with(o, 'dbname=');
	END IF;
	IF names IS NULL THEN
		names := ARRAY(SELECT x.table_name FROM iact.sync_source_tables(server, db) x);
	END IF;
	FOREACH t IN ARRAY names LOOP
		source_table := CASE WHEN db IS NULL THEN t ELSE pg_catalog.concat(db, '.', t) END;
		target_table := pg_catalog.format('%I.%I', sch, t);
		table_id := NULL;
		detail := NULL;
		-- PostgreSQL would cut a longer name to 63 bytes: the target would not be
		-- the one reported, and two such tables would share it
		IF t::pg_catalog.name::pg_catalog.text OPERATOR(pg_catalog.<>) t THEN
			status := 'refused';
			detail := pg_catalog.concat('42622: the target name "', t, '" is longer than 63 bytes; register the table with ',
				'iact.sync_add_table and a shorter target name');
			RETURN NEXT;
			CONTINUE;
		END IF;
		BEGIN
			table_id := iact.sync_add_table(server, source_table, target_table, key_columns => key_columns,
				watermark_column => watermark_column, lookback => lookback, retention_days => retention_days,
				retention_column => retention_column, batch_size => batch_size,
				tinyint1_as_boolean => tinyint1_as_boolean);
			status := 'registered';
		EXCEPTION WHEN OTHERS THEN
			GET STACKED DIAGNOSTICS msg = MESSAGE_TEXT, st = RETURNED_SQLSTATE;
			status := CASE WHEN st OPERATOR(pg_catalog.=) '42710' THEN 'already registered' ELSE 'refused' END;
			detail := pg_catalog.concat(st, ': ', msg);
		END;
		RETURN NEXT;
	END LOOP;
END $$;
COMMENT ON FUNCTION iact.sync_add_tables(name, text, text[], text[], text, bigint, integer, text, integer, boolean, name) IS
	'iact: register many MariaDB tables (every table of the database by default), one result row per table';
REVOKE ALL ON FUNCTION iact.sync_source_tables(name, text) FROM PUBLIC;
REVOKE ALL ON FUNCTION iact.sync_add_tables(name, text, text[], text[], text, bigint, integer, text, integer, boolean, name) FROM PUBLIC;
