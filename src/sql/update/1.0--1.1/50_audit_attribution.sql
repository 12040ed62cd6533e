-- 50_audit_attribution.sql (1.0 -> 1.1): the audit records who really acted
-- (issue 11): iact.audit_statement.session_role (session_user) beside role_name
-- (current_user) and the application-supplied user_id; the view iact.audit_log
-- shows it as its last column.  iact.purge_audit_log_batched qualifies its
-- operator (a procedure cannot pin search_path and COMMIT).

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
