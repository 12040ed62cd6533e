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
