-- 50_audit_attribution.sql (1.0 -> 1.1): the audit records who really acted
-- (issue 11): iact.audit_statement.session_role (session_user) beside role_name
-- (current_user) and the application-supplied user_id; the view iact.audit_log
-- shows it as its last column.  iact.purge_audit_log_batched qualifies its
-- operator (a procedure cannot pin search_path and COMMIT); purge_audit_log
-- refuses an older_than over 1000 years (now() - older_than overflowed).

ALTER TABLE iact.audit_statement ADD COLUMN session_role text;

CREATE OR REPLACE VIEW iact.audit_log AS
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

COMMENT ON COLUMN iact.audit_statement.user_id IS
    'current_setting(''app.current_user_id'', true) when the change was made; NULL when unset or empty. Supplied by the application: any session can set it to anything';
COMMENT ON COLUMN iact.audit_statement.role_name IS
    'current_user when the change was made: the role whose rights made it (set by PostgreSQL, not by the application)';
COMMENT ON COLUMN iact.audit_statement.session_role IS
    'session_user when the change was made: the role that logged in (only a superuser can change it); NULL for rows written by iact 1.0';

CREATE OR REPLACE PROCEDURE iact.purge_audit_log_batched(older_than interval, batch_size integer DEFAULT 10000)
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

CREATE OR REPLACE FUNCTION iact.purge_audit_log(older_than interval,
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
