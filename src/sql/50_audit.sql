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
    session_role     text,
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
       s.application_name,
       s.session_role
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
    'current_setting(''app.current_user_id'', true) when the change was made; NULL when unset or empty. Supplied by the application: any session can set it to anything';
COMMENT ON COLUMN iact.audit_statement.role_name IS
    'current_user when the change was made: the role whose rights made it (set by PostgreSQL, not by the application)';
COMMENT ON COLUMN iact.audit_statement.session_role IS
    'session_user when the change was made: the role that logged in (only a superuser can change it); NULL for rows written by iact 1.0';
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
    IF older_than < interval '0' OR older_than > interval '1000 years' THEN
        RAISE EXCEPTION 'older_than must be between 0 and 1000 years: %', older_than
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
-- (a procedure with a SET clause cannot COMMIT: every name is qualified instead)
CREATE PROCEDURE iact.purge_audit_log_batched(older_than interval, batch_size integer DEFAULT 10000)
LANGUAGE plpgsql
AS $$
DECLARE
    n bigint;
BEGIN
    LOOP
        n := iact.purge_audit_log(older_than, batch_size, 1);
        COMMIT;
        EXIT WHEN n OPERATOR(pg_catalog.=) 0::bigint;
    END LOOP;
END
$$;
REVOKE ALL ON PROCEDURE iact.purge_audit_log_batched(interval, integer) FROM PUBLIC;
