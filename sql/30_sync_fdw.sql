-- The sync's connection settings: the iact_mariadb wrapper, its option
-- validator, user mappings, the grants check and who may do what.
\getenv port IACT_MARIADB_PORT
\getenv sock IACT_MARIADB_SOCKET
\getenv mypw IACT_MARIADB_PASSWORD
\getenv writerpw IACT_MARIADB_WRITER_PASSWORD
\getenv ca IACT_MARIADB_SSL_CA
\getenv otherca IACT_MARIADB_OTHER_CA
\set VERBOSITY default
\set SHOW_CONTEXT never

-- the validator: unknown options are refused with the valid ones listed
CREATE SERVER regress_bad FOREIGN DATA WRAPPER iact_mariadb OPTIONS (hots '127.0.0.1');
CREATE SERVER regress_bad FOREIGN DATA WRAPPER iact_mariadb OPTIONS (user 'x');
CREATE SERVER regress_bad FOREIGN DATA WRAPPER iact_mariadb OPTIONS (port '0');
CREATE SERVER regress_bad FOREIGN DATA WRAPPER iact_mariadb OPTIONS (port '3306x');
CREATE SERVER regress_bad FOREIGN DATA WRAPPER iact_mariadb OPTIONS (port '99999');
CREATE SERVER regress_bad FOREIGN DATA WRAPPER iact_mariadb OPTIONS (read_timeout '-1');
CREATE SERVER regress_bad FOREIGN DATA WRAPPER iact_mariadb OPTIONS (ssl_mode 'maybe');
CREATE SERVER regress_bad FOREIGN DATA WRAPPER iact_mariadb OPTIONS (host '');
ALTER FOREIGN DATA WRAPPER iact_mariadb OPTIONS (host 'x');

-- a good server: the port comes from the test harness
CREATE SERVER regress_ivr FOREIGN DATA WRAPPER iact_mariadb
	OPTIONS (host '127.0.0.1', port :'port', dbname 'ivr', connect_timeout '5',
		read_timeout '60', write_timeout '60', ssl_mode 'disable');
CREATE USER MAPPING FOR CURRENT_USER SERVER regress_ivr OPTIONS (usr 'iact_reader');
CREATE USER MAPPING FOR CURRENT_USER SERVER regress_ivr OPTIONS (host 'x');
CREATE USER MAPPING FOR CURRENT_USER SERVER regress_ivr OPTIONS (user 'iact_reader', password :'mypw');

-- the columns of a source table and the types the sync gives them
SELECT * FROM iact.sync_source_columns('regress_ivr', 'calls');
SELECT column_name, source_type, target_type FROM iact.sync_source_columns('regress_ivr', 'ivr.agents');
SELECT column_name, source_type, target_type
  FROM iact.sync_source_columns('regress_ivr', 'agents', tinyint1_as_boolean => false)
 WHERE source_type LIKE 'tinyint%' OR source_type LIKE 'bit%';
SELECT count(*) FROM iact.sync_source_columns('regress_ivr', 'no_such_table');
SELECT * FROM iact.sync_source_columns('regress_ivr', 'a.b.c');
SELECT * FROM iact.sync_source_columns('regress_ivr', '');
SELECT * FROM iact.sync_source_columns('no_such_server', 'calls');
SELECT * FROM iact.sync_source_columns(NULL, 'calls');
SELECT * FROM iact.sync_source_columns('regress_ivr', NULL);
SELECT * FROM iact.sync_source_columns('regress_ivr', 'calls', NULL);

-- over the unix socket too (host unset)
CREATE SERVER regress_ivr_sock FOREIGN DATA WRAPPER iact_mariadb OPTIONS (socket :'sock', dbname 'ivr');
CREATE USER MAPPING FOR CURRENT_USER SERVER regress_ivr_sock OPTIONS (user 'iact_reader', password :'mypw');
SELECT count(*) FROM iact.sync_source_columns('regress_ivr_sock', 'queues');

-- TLS: required, and verified against the server certificate's CA
CREATE SERVER regress_ivr_tls FOREIGN DATA WRAPPER iact_mariadb
	OPTIONS (host '127.0.0.1', port :'port', dbname 'ivr', ssl_mode 'verify', ssl_ca :'ca');
CREATE USER MAPPING FOR CURRENT_USER SERVER regress_ivr_tls OPTIONS (user 'iact_reader', password :'mypw');
SELECT count(*) FROM iact.sync_source_columns('regress_ivr_tls', 'queues');
-- a CA that did not sign the server's certificate: refused
ALTER SERVER regress_ivr_tls OPTIONS (SET ssl_ca :'otherca');
SELECT count(*) FROM iact.sync_source_columns('regress_ivr_tls', 'queues');
-- ssl_mode require checks the chain against ssl_ca when one is given ...
ALTER SERVER regress_ivr_tls OPTIONS (SET ssl_mode 'require');
SELECT count(*) FROM iact.sync_source_columns('regress_ivr_tls', 'queues');
-- ... and without one, encrypts without verifying anything
ALTER SERVER regress_ivr_tls OPTIONS (DROP ssl_ca);
SELECT count(*) FROM iact.sync_source_columns('regress_ivr_tls', 'queues');
DROP SERVER regress_ivr_tls CASCADE;

-- a wrong password: the error names the account, never the password
CREATE SERVER regress_ivr_pw FOREIGN DATA WRAPPER iact_mariadb OPTIONS (host '127.0.0.1', port :'port');
CREATE USER MAPPING FOR CURRENT_USER SERVER regress_ivr_pw OPTIONS (user 'iact_reader', password 'S3cret-Wrong');
SELECT * FROM iact.sync_source_columns('regress_ivr_pw', 'ivr.calls');
-- no user option at all
ALTER USER MAPPING FOR CURRENT_USER SERVER regress_ivr_pw OPTIONS (DROP user);
SELECT * FROM iact.sync_source_columns('regress_ivr_pw', 'ivr.calls');
-- nobody listening (port 1)
CREATE SERVER regress_ivr_down FOREIGN DATA WRAPPER iact_mariadb OPTIONS (host '127.0.0.1', port '1', connect_timeout '2');
CREATE USER MAPPING FOR CURRENT_USER SERVER regress_ivr_down OPTIONS (user 'iact_reader', password 'x');
SELECT * FROM iact.sync_source_columns('regress_ivr_down', 'ivr.calls');

-- an account that can write is refused (SHOW GRANTS at connect) ...
CREATE SERVER regress_ivr_writer FOREIGN DATA WRAPPER iact_mariadb OPTIONS (host '127.0.0.1', port :'port', dbname 'ivr');
CREATE USER MAPPING FOR CURRENT_USER SERVER regress_ivr_writer OPTIONS (user 'iact_writer', password :'writerpw');
SELECT count(*) FROM iact.sync_source_columns('regress_ivr_writer', 'calls');
-- ... unless a superuser explicitly allows it
SET iact.sync_allow_write_account = on;
SELECT count(*) FROM iact.sync_source_columns('regress_ivr_writer', 'calls');
RESET iact.sync_allow_write_account;

-- roles are inspected, all of them: an account that reads through its
-- default role is accepted (its other role, scratch_rw, writes another
-- database only: reported, with PUBLIC's grants on test, not refused); the
-- columns are read after the inspection, so its default role was put back ...
\getenv rolereader IACT_MARIADB_ROLE_READER_USER
\getenv rolewriter IACT_MARIADB_ROLE_WRITER_USER
CREATE SERVER regress_ivr_role FOREIGN DATA WRAPPER iact_mariadb OPTIONS (host '127.0.0.1', port :'port', dbname 'ivr');
CREATE USER MAPPING FOR CURRENT_USER SERVER regress_ivr_role OPTIONS (user :'rolereader', password 'role-pw');
SELECT count(*) FROM iact.sync_source_columns('regress_ivr_role', 'calls');
-- ... but not to read `scratch`, which its role can write
SELECT count(*) FROM iact.sync_source_columns('regress_ivr_role', 'scratch.anything');
-- ... and an account whose non-default role holds a role that can write
-- ivr.calls is refused; the detail names only that grant
ALTER USER MAPPING FOR CURRENT_USER SERVER regress_ivr_role OPTIONS (SET user :'rolewriter');
SELECT count(*) FROM iact.sync_source_columns('regress_ivr_role', 'calls');
-- ... unless a superuser explicitly allows it
SET iact.sync_allow_write_account = on;
SELECT count(*) FROM iact.sync_source_columns('regress_ivr_role', 'calls');
RESET iact.sync_allow_write_account;
DROP SERVER regress_ivr_role CASCADE;

-- a database grant is a LIKE pattern for MariaDB: `iv_` covers ivr
\! $IACT_MARIADB_CLI -e "CREATE USER 'iact_pat'@'127.0.0.1' IDENTIFIED BY 'pat-pw'; GRANT SELECT ON ivr.* TO 'iact_pat'@'127.0.0.1'; GRANT INSERT ON \`iv_\`.* TO 'iact_pat'@'127.0.0.1'"
CREATE SERVER regress_ivr_pat FOREIGN DATA WRAPPER iact_mariadb OPTIONS (host '127.0.0.1', port :'port', dbname 'ivr');
CREATE USER MAPPING FOR CURRENT_USER SERVER regress_ivr_pat OPTIONS (user 'iact_pat', password 'pat-pw');
SELECT count(*) FROM iact.sync_source_columns('regress_ivr_pat', 'calls');
-- EXECUTE on a routine of the source counts when it runs as its definer ...
\! $IACT_MARIADB_CLI -e "REVOKE INSERT ON \`iv_\`.* FROM 'iact_pat'@'127.0.0.1'; CREATE PROCEDURE ivr.regress_as_caller() SQL SECURITY INVOKER SELECT 1; CREATE PROCEDURE ivr.regress_as_definer() SQL SECURITY DEFINER SELECT 1; GRANT EXECUTE ON PROCEDURE ivr.regress_as_definer TO 'iact_pat'@'127.0.0.1'"
SELECT count(*) FROM iact.sync_source_columns('regress_ivr_pat', 'calls');
-- ... not when it runs with the caller's rights (which are checked)
\! $IACT_MARIADB_CLI -e "REVOKE EXECUTE ON PROCEDURE ivr.regress_as_definer FROM 'iact_pat'@'127.0.0.1'; GRANT EXECUTE ON PROCEDURE ivr.regress_as_caller TO 'iact_pat'@'127.0.0.1'"
SELECT count(*) FROM iact.sync_source_columns('regress_ivr_pat', 'calls');
\! $IACT_MARIADB_CLI -e "DROP PROCEDURE ivr.regress_as_caller; DROP PROCEDURE ivr.regress_as_definer; DROP USER 'iact_pat'@'127.0.0.1'"
DROP SERVER regress_ivr_pat CASCADE;

-- privileges: PUBLIC may run none of the sync's functions
SELECT p.oid::regprocedure AS function, has_function_privilege('public', p.oid, 'EXECUTE') AS public_can_execute
  FROM pg_proc p WHERE p.pronamespace = 'iact'::regnamespace AND p.proname LIKE '%sync%'
    OR p.proname = 'mariadb_fdw_validator'
 ORDER BY p.oid::regprocedure::text COLLATE "C";
CREATE ROLE regress_sync_user;
GRANT USAGE ON SCHEMA iact TO regress_sync_user;
SET ROLE regress_sync_user;
SELECT * FROM iact.sync_now();
SELECT * FROM iact.sync_source_columns('regress_ivr', 'calls');
SET iact.sync_allow_write_account = on;
-- a non-owner does not see the user mapping's options (the password)
SELECT srvname, umoptions FROM pg_user_mappings WHERE srvname = 'regress_ivr';
RESET ROLE;
SELECT srvname, array_length(umoptions, 1) AS n_options FROM pg_user_mappings WHERE srvname = 'regress_ivr';
-- even with EXECUTE, a role without a mapping / USAGE on the server gets nothing
GRANT EXECUTE ON FUNCTION iact.sync_source_columns(name, text, boolean) TO regress_sync_user;
SET ROLE regress_sync_user;
SELECT * FROM iact.sync_source_columns('regress_ivr', 'calls');
RESET ROLE;
GRANT USAGE ON FOREIGN SERVER regress_ivr TO regress_sync_user;
SET ROLE regress_sync_user;
SELECT * FROM iact.sync_source_columns('regress_ivr', 'calls');
RESET ROLE;
REVOKE ALL ON FOREIGN SERVER regress_ivr FROM regress_sync_user;
REVOKE ALL ON FUNCTION iact.sync_source_columns(name, text, boolean) FROM regress_sync_user;
REVOKE ALL ON SCHEMA iact FROM regress_sync_user;
DROP ROLE regress_sync_user;

-- a non-superuser never connects on the PostgreSQL server's OS identity:
-- MariaDB trusts the OS user on its unix socket (unix_socket authentication)
\set osuser `id -un`
\! $IACT_MARIADB_CLI -e "CREATE USER IF NOT EXISTS '$(id -un)'@'localhost' IDENTIFIED VIA unix_socket; GRANT SELECT ON ivr.* TO '$(id -un)'@'localhost'"
CREATE SERVER regress_ivr_os FOREIGN DATA WRAPPER iact_mariadb OPTIONS (socket :'sock', dbname 'ivr');
-- a superuser may (like postgres_fdw) ...
CREATE USER MAPPING FOR CURRENT_USER SERVER regress_ivr_os OPTIONS (user :'osuser');
SELECT count(*) > 0 AS superuser_reads FROM iact.sync_source_columns('regress_ivr_os', 'calls');
CREATE ROLE regress_sync_low;
GRANT USAGE ON SCHEMA iact TO regress_sync_low;
GRANT EXECUTE ON FUNCTION iact.sync_source_columns(name, text, boolean) TO regress_sync_low;
GRANT USAGE ON FOREIGN SERVER regress_ivr_os TO regress_sync_low;
GRANT USAGE ON FOREIGN SERVER regress_ivr TO regress_sync_low;
SET ROLE regress_sync_low;
-- ... a non-superuser without a password is refused before connecting
CREATE USER MAPPING FOR CURRENT_USER SERVER regress_ivr_os OPTIONS (user :'osuser');
SELECT count(*) FROM iact.sync_source_columns('regress_ivr_os', 'calls');
ALTER USER MAPPING FOR CURRENT_USER SERVER regress_ivr_os OPTIONS (ADD password '');
SELECT count(*) FROM iact.sync_source_columns('regress_ivr_os', 'calls');
-- a password does not help on the socket (unix_socket authentication ignores it)
ALTER USER MAPPING FOR CURRENT_USER SERVER regress_ivr_os OPTIONS (SET password 'anything');
SELECT count(*) FROM iact.sync_source_columns('regress_ivr_os', 'calls');
-- over TCP with the account's own password a non-superuser reads
CREATE USER MAPPING FOR CURRENT_USER SERVER regress_ivr OPTIONS (user 'iact_reader', password :'mypw');
SELECT count(*) > 0 AS low_reads FROM iact.sync_source_columns('regress_ivr', 'calls');
ALTER USER MAPPING FOR CURRENT_USER SERVER regress_ivr OPTIONS (DROP password);
SELECT count(*) FROM iact.sync_source_columns('regress_ivr', 'calls');
DROP USER MAPPING FOR CURRENT_USER SERVER regress_ivr;
DROP USER MAPPING FOR CURRENT_USER SERVER regress_ivr_os;
RESET ROLE;
REVOKE ALL ON FOREIGN SERVER regress_ivr FROM regress_sync_low;
DROP SERVER regress_ivr_os CASCADE;
REVOKE ALL ON FUNCTION iact.sync_source_columns(name, text, boolean) FROM regress_sync_low;
REVOKE ALL ON SCHEMA iact FROM regress_sync_low;
DROP ROLE regress_sync_low;
\! $IACT_MARIADB_CLI -e "DROP USER '$(id -un)'@'localhost'"

-- a server of another wrapper is no MariaDB source, whatever its options say: they never
-- went through iact's validator (here: the same host, port and account as regress_ivr)
CREATE FOREIGN DATA WRAPPER regress_other_fdw;
CREATE SERVER regress_other FOREIGN DATA WRAPPER regress_other_fdw
	OPTIONS (host '127.0.0.1', port :'port', dbname 'ivr');
CREATE USER MAPPING FOR CURRENT_USER SERVER regress_other OPTIONS (user 'iact_reader', password :'mypw');
SELECT count(*) FROM iact.sync_source_columns('regress_other', 'calls');
SELECT count(*) FROM iact.sync_source_tables('regress_other');
DROP FOREIGN DATA WRAPPER regress_other_fdw CASCADE;

DROP SERVER regress_ivr_pw CASCADE;
DROP SERVER regress_ivr_down CASCADE;
DROP SERVER regress_ivr_writer CASCADE;
DROP SERVER regress_ivr_sock CASCADE;
-- regress_ivr stays for the next tests

-- every option of the wrapper through ALTER SERVER / ALTER USER MAPPING (the validator runs on
-- each change too): the SQLSTATE and message of each refusal, the context of each option
CREATE SERVER regress_opts FOREIGN DATA WRAPPER iact_mariadb OPTIONS (host '127.0.0.1');
CREATE USER MAPPING FOR CURRENT_USER SERVER regress_opts;
CREATE FUNCTION pg_temp.try_option(ctx text, opt text, val text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
	IF ctx = 'server' THEN
		EXECUTE format('ALTER SERVER regress_opts OPTIONS (ADD %I %L)', opt, val);
		EXECUTE format('ALTER SERVER regress_opts OPTIONS (DROP %I)', opt);
	ELSE
		EXECUTE format('ALTER USER MAPPING FOR CURRENT_USER SERVER regress_opts OPTIONS (ADD %I %L)', opt, val);
		EXECUTE format('ALTER USER MAPPING FOR CURRENT_USER SERVER regress_opts OPTIONS (DROP %I)', opt);
	END IF;
	RETURN 'accepted';
EXCEPTION WHEN OTHERS THEN
	RETURN SQLSTATE || ': ' || SQLERRM;
END $$;
SELECT ctx, opt, val, pg_temp.try_option(ctx, opt, val) AS result
  FROM (VALUES ('server', 'port', '1'), ('server', 'port', '65535'), ('server', 'port', '65536'),
               ('server', 'port', ' 5'), ('server', 'port', '5 '), ('server', 'port', '+5'),
               ('server', 'port', ''), ('server', 'port', '99999999999999999999'),
               ('server', 'connect_timeout', '86400'), ('server', 'connect_timeout', '86401'),
               ('server', 'connect_timeout', '0'), ('server', 'read_timeout', '1'),
               ('server', 'write_timeout', 'x'), ('server', 'socket', ''), ('server', 'socket', '/tmp/s'),
               ('server', 'dbname', ''), ('server', 'ssl_mode', 'disable'), ('server', 'ssl_mode', 'require'),
               ('server', 'ssl_mode', 'verify'), ('server', 'ssl_mode', 'VERIFY'), ('server', 'ssl_mode', ''),
               ('server', 'ssl_ca', ''), ('server', 'ssl_capath', ''), ('server', 'ssl_cert', ''),
               ('server', 'ssl_key', ''), ('server', 'ssl_cipher', ''), ('server', 'ssl_cipher', 'AES128-SHA'),
               ('server', 'source_time_zone', 'Europe/Madrid'), ('server', 'source_time_zone', ''),
               ('server', 'source_time_zone', 'Nowhere/City'), ('server', 'user', 'x'),
               ('server', 'password', 'x'), ('mapping', 'user', ''), ('mapping', 'user', 'reader'),
               ('mapping', 'password', ''), ('mapping', 'password', 'secret'), ('mapping', 'host', 'x'),
               ('mapping', 'source_time_zone', 'UTC')) AS t(ctx, opt, val);
DROP SERVER regress_opts CASCADE;
