-- demo part: the audit trail (iact.enable_audit, iact.audit_log, append-only, retention)
\echo
\echo '==== Audit trail: every change to a table, who made it, when ===='
\echo
CREATE SCHEMA demo_audit;
CREATE TABLE demo_audit.customers (
    id integer PRIMARY KEY,
    name text NOT NULL,
    phone text,
    credit_limit numeric(10,2),
    pin_hash text
);

\echo '-- audit the table; never copy the PIN hash into the log'
SELECT iact.enable_audit('demo_audit.customers', ignored_columns => '{pin_hash}');
SELECT * FROM iact.audited_tables;

\echo '-- the application says who is acting with app.current_user_id'
SET app.current_user_id = 'agent-17';
INSERT INTO demo_audit.customers VALUES
    (1, 'Ada Lovelace', '+44 20 7946 0001', 500, 'x1'),
    (2, 'Alan Turing', NULL, 250, 'x2');
UPDATE demo_audit.customers SET credit_limit = 750 WHERE id = 1;
\echo '-- an UPDATE that changes nothing, or only an ignored column, is not logged'
UPDATE demo_audit.customers SET name = name;
UPDATE demo_audit.customers SET pin_hash = 'x3' WHERE id = 2;
RESET app.current_user_id;
DELETE FROM demo_audit.customers WHERE id = 2;
TRUNCATE demo_audit.customers;

\echo '-- the log: UPDATE keeps only the key and the changed columns'
SELECT statement_id, row_no, operation, old_data, new_data, user_id, role_name, application_name
  FROM iact.audit_log WHERE schema_name = 'demo_audit' ORDER BY statement_id, row_no;

\echo '-- one row per statement with its size and transaction'
SELECT id, operation, row_count, user_id, txid,
       "timestamp" <= wall_clock AS ordered
  FROM iact.audit_statement WHERE schema_name = 'demo_audit' ORDER BY id;

\echo
\echo '-- append-only: the owner of the audited table cannot rewrite history,'
\echo '-- not even after a superuser grants it UPDATE and DELETE on the log'
CREATE ROLE demo_audit_owner;
ALTER TABLE demo_audit.customers OWNER TO demo_audit_owner;
GRANT USAGE ON SCHEMA iact, demo_audit TO demo_audit_owner;
GRANT SELECT, UPDATE, DELETE ON iact.audit_row, iact.audit_statement TO demo_audit_owner;
SET ROLE demo_audit_owner;
INSERT INTO demo_audit.customers VALUES (3, 'Grace Hopper', NULL, 1000, NULL);
DO $$
BEGIN
    DELETE FROM iact.audit_row;
EXCEPTION WHEN insufficient_privilege THEN
    RAISE NOTICE 'refused (SQLSTATE %): %', SQLSTATE, SQLERRM;
END
$$;
DO $$
BEGIN
    UPDATE iact.audit_statement SET user_id = 'someone else';
EXCEPTION WHEN insufficient_privilege THEN
    RAISE NOTICE 'refused (SQLSTATE %): %', SQLSTATE, SQLERRM;
END
$$;
RESET ROLE;
SELECT operation, role_name, new_data->>'name' AS name
  FROM iact.audit_log WHERE role_name = 'demo_audit_owner';

\echo
\echo '-- retention: entries older than 90 days go, in batches (pretend some are old)'
UPDATE iact.audit_statement SET "timestamp" = "timestamp" - interval '120 days'
 WHERE schema_name = 'demo_audit' AND operation IN ('INSERT', 'DELETE') AND role_name <> 'demo_audit_owner';
SELECT iact.purge_audit_log('90 days', batch_size => 1000) AS entries_purged;
SELECT operation, count(*) FROM iact.audit_log WHERE schema_name = 'demo_audit' GROUP BY 1 ORDER BY 1;

\echo '-- stop auditing (the log stays)'
SELECT iact.disable_audit('demo_audit.customers');

REVOKE ALL ON iact.audit_row, iact.audit_statement FROM demo_audit_owner;
REVOKE USAGE ON SCHEMA iact FROM demo_audit_owner;
DROP SCHEMA demo_audit CASCADE;
DROP ROLE demo_audit_owner;
