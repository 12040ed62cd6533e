-- 1.0 -> 1.1, a registration is bound to its table, not to its name
-- (doc/sync.md, "Who runs what"): iact.sync_tables.target_oid, at the end of
-- the table as in src/sql/30_sync.sql.  The registrations of 1.0 are bound to
-- the table that bears their name now; one whose table does not exist gets
-- NULL, and its runs fail until it is registered again.
ALTER TABLE iact.sync_tables ADD COLUMN target_oid regclass;
COMMENT ON COLUMN iact.sync_tables.target_oid IS 'iact: the table registered; a run refuses a table of the same name with another oid';
UPDATE iact.sync_tables
   SET target_oid = pg_catalog.to_regclass(pg_catalog.quote_ident(target_schema::pg_catalog.text)
					OPERATOR(pg_catalog.||) '.' OPERATOR(pg_catalog.||)
					pg_catalog.quote_ident(target_table::pg_catalog.text));
