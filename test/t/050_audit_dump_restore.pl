# test/t/050_audit_dump_restore.pl -- the audit trail across pg_dump /
# pg_restore and across a crash.
#
# pg_dump -Fc of an audited database, pg_restore into a new database: every
# audit entry comes back identical, the audit triggers come back and keep
# writing (with statement ids continuing after the restored ones), and the
# log is still append-only.  Then an immediate shutdown in the middle of an
# audited transaction: after recovery, committed changes have their audit
# rows and the uncommitted change has neither row nor audit entry.
use strict;
use warnings;
use PostgreSQL::Test::Utils;
use Test::More;
use IactTest;

my $node = iact_node('audit');
$node->start;
$node->safe_psql('postgres', 'CREATE DATABASE src');
$node->safe_psql('src', q{
	CREATE EXTENSION iact;
	CREATE SCHEMA app;
	CREATE TABLE app.calls (id bigint PRIMARY KEY, caller text NOT NULL, seconds integer,
	                        started_at timestamptz, notes jsonb);
	SELECT iact.enable_audit('app.calls', '{notes}');
	SET app.current_user_id = 'agent-1';
	INSERT INTO app.calls SELECT g, 'caller ' || g, g * 10, timestamptz '2024-05-01 08:00+00' + g * interval '1 minute',
	                             jsonb_build_object('n', g) FROM generate_series(1, 1500) g;
	UPDATE app.calls SET seconds = seconds + 1 WHERE id % 3 = 0;
	DELETE FROM app.calls WHERE id > 1400;
	RESET app.current_user_id;
	TRUNCATE app.calls;
	INSERT INTO app.calls VALUES (1, 'it''s "quoted" \ back', NULL, NULL, NULL);
});

my $log_query = q{
	SELECT statement_id, row_no, schema_name, table_name, operation, old_data, new_data,
	       user_id, role_name, txid, "timestamp", wall_clock, application_name
	  FROM iact.audit_log ORDER BY statement_id, row_no};
my $before = $node->safe_psql('src', $log_query);
my $count = $node->safe_psql('src', 'SELECT count(*) FROM iact.audit_log');
is($count, 1500 + 500 + 100 + 1 + 1, 'source database has every audit entry');

my $dump = $node->basedir . '/src.dump';
$node->command_ok([ 'pg_dump', '-Fc', '-d', $node->connstr('src'), '-f', $dump ], 'pg_dump -Fc');
$node->safe_psql('postgres', 'CREATE DATABASE restored');
$node->command_ok([ 'pg_restore', '--exit-on-error', '-d', $node->connstr('restored'), $dump ],
	'pg_restore into a new database');

my $after = $node->safe_psql('restored', $log_query);
is($after, $before, 'every audit entry restored identically');
is($node->safe_psql('restored', 'SELECT count(*) FROM iact.audited_tables'), '1',
	'audit triggers restored with the table');
is($node->safe_psql('restored', 'SELECT ignored_columns::text FROM iact.audited_tables'), '{notes}',
	'ignored columns restored');

# auditing goes on in the restored database, ids after the restored ones
$node->safe_psql('restored', q{SET app.current_user_id = 'agent-2'; INSERT INTO app.calls VALUES (2, 'new', 1, NULL, NULL)});
is($node->safe_psql('restored', q{
	SELECT operation || ' ' || user_id || ' ' || (new_data->>'caller') || ' ' ||
	       (statement_id > (SELECT max(statement_id) FROM iact.audit_log WHERE user_id IS DISTINCT FROM 'agent-2'))
	  FROM iact.audit_log WHERE user_id = 'agent-2'}),
	'INSERT agent-2 new true', 'restored database audits new changes with fresh statement ids');

# still append-only for a table owner
$node->safe_psql('restored', q{
	CREATE ROLE regress_owner;
	ALTER TABLE app.calls OWNER TO regress_owner;
	GRANT USAGE ON SCHEMA iact, app TO regress_owner;
	GRANT DELETE ON iact.audit_row TO regress_owner;
});
my ($rc, $out, $err) = $node->psql('restored', 'SET ROLE regress_owner; DELETE FROM iact.audit_row');
isnt($rc, 0, 'owner cannot delete restored audit rows');
like($err, qr/append-only: DELETE on iact.audit_row is not allowed/, 'refused by the guard');

# a crash in the middle of an audited transaction
my $bg = $node->background_psql('src');
$bg->query_safe(q{BEGIN; INSERT INTO app.calls VALUES (100, 'uncommitted', 1, NULL, NULL)});
$node->safe_psql('src', q{INSERT INTO app.calls VALUES (101, 'committed', 1, NULL, NULL)});
$node->stop('immediate');
eval { $bg->quit; };
$node->start;
is($node->safe_psql('src', q{SELECT string_agg(caller, ',' ORDER BY id) FROM app.calls WHERE id >= 100}),
	'committed', 'after the crash only the committed row exists');
is($node->safe_psql('src', q{
	SELECT string_agg(new_data->>'caller', ',') FROM iact.audit_log
	  WHERE new_data->>'caller' IN ('committed', 'uncommitted')}),
	'committed', 'and only its audit entry');
is($node->safe_psql('src', 'SELECT count(*) FROM iact.audit_log'), $count + 1,
	'earlier entries survived the crash');

$node->stop;
done_testing();
