# test/t/102_migrations_1_0_database.pl -- the 1.1 library serving a database
# still at 1.0, then ALTER EXTENSION iact UPDATE.
#
# While the database is at 1.0, the migration log has no down_checksum
# column and log_migration_start has two arguments: run_migration,
# log_migration_start/complete and safe_rollback_migration must work as in
# 1.0 (the migration lock included: squatting 1.0's advisory key blocks
# nothing).  The update then records the checksum of every stored down_sql,
# so a rollback after the update is verified, and the 1.1 functions exist.
use strict;
use warnings;
use PostgreSQL::Test::Utils;
use Test::More;
use IactTest;

my $node = iact_node('m10');
$node->start;
sub q1 { return $node->safe_psql('postgres', shift); }

q1(q{CREATE EXTENSION iact VERSION '1.0'});
is(q1(q{SELECT extversion FROM pg_extension WHERE extname = 'iact'}), '1.0', 'database at 1.0');

# a squatter on 1.0's advisory key, in another session, for the whole test
my $squat = $node->background_psql('postgres');
$squat->query_safe('SELECT pg_advisory_lock(1767990132, 1)');

q1(q{CALL iact.run_migration('v1', 'one', 'CREATE TABLE t1 (a int)', 'DROP TABLE t1', lock_timeout => '5s')});
q1(q{CALL iact.run_migration('v2', 'two', 'CREATE TABLE t2 (a int)', 'DROP TABLE t2', lock_timeout => '5s')});
my $id = q1(q{SELECT iact.log_migration_start('v3', 'external, 1.0 signature')});
q1("SELECT iact.log_migration_complete($id)");
is(q1(q{SELECT string_agg(version || ':' || last_status, ',' ORDER BY version) FROM iact.migration_status}),
	'v1:SUCCESS,v2:SUCCESS,v3:SUCCESS', 'at 1.0: run_migration and the external API work, despite the squatter');
my ($rc, $out, $err) = $node->psql('postgres', q{SELECT iact.safe_rollback_migration('v3')});
like($err, qr/has no rollback SQL/, 'at 1.0: an external entry has no rollback SQL');
q1(q{CALL iact.run_migration('v4', 'four', 'CREATE TABLE t4 (a int)', 'DROP TABLE t4')});
is(q1(q{SELECT iact.safe_rollback_migration('v4')}), 't', 'at 1.0: safe_rollback_migration works');
is(q1(q{SELECT to_regclass('t4') IS NULL}), 't', '... and ran its down_sql');

q1(q{ALTER EXTENSION iact UPDATE});
is(q1(q{SELECT extversion FROM pg_extension WHERE extname = 'iact'}), '1.1', 'updated to 1.1');
is(q1(q{SELECT string_agg(version || ':' || (down_checksum = encode(sha256(convert_to(
		CASE version WHEN 'v1' THEN 'DROP TABLE t1' ELSE 'DROP TABLE t2' END, 'UTF8')), 'hex'))::text, ','
		ORDER BY version) FROM iact.migration_status WHERE version IN ('v1', 'v2')}),
	'v1:true,v2:true', 'the update recorded the checksum of each stored down_sql');
q1(q{SELECT iact.log_migration_complete(iact.log_rollback_start('v3'))});
is(q1(q{SELECT applied::text || ':' || last_status FROM iact.migration_status WHERE version = 'v3'}),
	'false:ROLLED_BACK', 'after the update: an external rollback is recorded');
is(q1(q{SELECT iact.safe_rollback_migration('v2')}), 't', 'after the update: a verified rollback runs');
is(q1(q{SELECT to_regclass('t2') IS NULL}), 't', '... its down_sql ran');

$squat->quit;
$node->stop;
done_testing();
