-- 32_sync_targets.sql -- 1.0 -> 1.1: iact.sync_source_tables, iact.sync_add_tables, iact.sync_requests and
-- the worker's wake-up triggers (see src/sql/30_sync.sql and 40_worker.sql).

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

-- Requests of single tables (iact.request_sync): any number of them; the
-- worker takes a table's request when it starts that table's run.
CREATE TABLE iact.sync_requests (
    table_id integer PRIMARY KEY REFERENCES iact.sync_tables (id) ON DELETE CASCADE,
    requested_at timestamptz NOT NULL DEFAULT pg_catalog.clock_timestamp()
);
COMMENT ON TABLE iact.sync_requests IS 'iact: tables iact.request_sync() asked the sync worker to run (taken when the run starts)';

-- A registration, a table enabled again or a request wakes the worker when
-- its transaction commits.
CREATE FUNCTION iact._sync_wake_worker() RETURNS trigger
    LANGUAGE c AS 'MODULE_PATHNAME', 'iact_sync_wake_worker';
REVOKE ALL ON FUNCTION iact._sync_wake_worker() FROM PUBLIC;
CREATE TRIGGER sync_tables_wake_worker AFTER INSERT OR UPDATE OF enabled ON iact.sync_tables
    FOR EACH STATEMENT EXECUTE FUNCTION iact._sync_wake_worker();
CREATE TRIGGER sync_requests_wake_worker AFTER INSERT ON iact.sync_requests
    FOR EACH STATEMENT EXECUTE FUNCTION iact._sync_wake_worker();
