# test/t/060_health_standby.pl -- iact.health() / iact.metrics() on a real
# streaming standby, and a check that errors out (lock timeout) reported as
# one 'warn' row while every other check still answers.
use strict;
use warnings;
use PostgreSQL::Test::Utils;
use Test::More;
use IactTest;

my $primary = iact_node('primary', init => { allows_streaming => 1 });
$primary->start;
$primary->safe_psql('postgres', q{
	CREATE EXTENSION iact;
	CREATE TABLE calls (id integer PRIMARY KEY, v text);
	SELECT iact.enable_audit('calls');
	INSERT INTO calls VALUES (1, 'a'), (2, 'b');
	SELECT iact.check_overlaps_now();
});
$primary->backup('base');
my $standby = PostgreSQL::Test::Cluster->new('standby');
$standby->init_from_backup($primary, 'base', has_streaming => 1);
$standby->start;
$primary->safe_psql('postgres', q{UPDATE calls SET v = 'c' WHERE id = 1});
$primary->wait_for_catchup($standby);

my $role_query = q{SELECT status || ' ' || value || ' ' || detail FROM iact.health() WHERE check_name = 'server_role'};
is($primary->safe_psql('postgres', $role_query), 'ok 0 primary', 'primary reports primary');
is($standby->safe_psql('postgres', $role_query), 'ok 1 standby (in recovery)', 'standby reports standby');
is($standby->safe_psql('postgres', "SET iact.health_expected_role = 'primary'; $role_query"),
	'fail 1 standby (in recovery), but iact.health_expected_role is primary',
	'a standby where a primary is expected fails');
is($standby->safe_psql('postgres', q{SELECT count(*) FILTER (WHERE status <> 'ok') || '/' || count(*) FROM iact.health()}),
	'0/13', 'every check answers on a read-only standby');
is($standby->safe_psql('postgres', q{SELECT status || ' ' || value FROM iact.health() WHERE check_name = 'overlaps'}),
	'ok 0', "the standby reads the primary's stored overlap check");
is($standby->safe_psql('postgres', q{SELECT value FROM iact.health() WHERE check_name = 'audit_log_growth'}),
	'3', 'the standby sees the replicated audit entries');
like($standby->safe_psql('postgres', 'SELECT iact.metrics()'), qr/^iact_is_standby 1$/m,
	'metrics: iact_is_standby 1 on the standby');
like($primary->safe_psql('postgres', 'SELECT iact.metrics()'), qr/^iact_is_standby 0$/m,
	'metrics: iact_is_standby 0 on the primary');

# a check that cannot run: the audit tables locked by another session
my $locker = $primary->background_psql('postgres');
$locker->query_safe('BEGIN; LOCK TABLE iact.audit_statement IN ACCESS EXCLUSIVE MODE');
my $health = $primary->safe_psql('postgres',
	q{SET lock_timeout = '200ms'; SELECT check_name || ' ' || status || ' ' || coalesce(detail, '') FROM iact.health()});
like($health, qr/^audit_log_growth warn check failed: canceling statement due to lock timeout$/m,
	'a check that errors out is one warn row with the reason');
like($health, qr/^connections ok /m, 'the other checks still answer');
is(scalar(() = $health =~ /\n/g) + 1, 13, 'still one row per check');
my $metrics = $primary->safe_psql('postgres', q{SET lock_timeout = '200ms'; SELECT iact.metrics()});
like($metrics, qr/^# iact: audit metrics left out: canceling statement due to lock timeout$/m,
	'metrics leave the section out with a comment');
like($metrics, qr/^iact_health_status\{check="audit_log_growth"\} 1$/m, 'and report the check as warn');
like($metrics, qr/^iact_is_standby 0$/m, 'other sections are complete');
unlike($metrics, qr/^iact_audit_log_size_bytes/m, 'no half-written audit section');
$locker->query_safe('COMMIT');
$locker->quit;

# the maintenance worker idles on a standby (neither it nor its launcher runs) and starts at promotion
is($standby->safe_psql('postgres', q{SELECT count(*) FROM pg_stat_activity
	WHERE backend_type IN ('iact maintenance launcher', 'iact maintenance worker')}), '0',
	'no maintenance process on the standby');
my ($rc, $out, $err) = $standby->psql('postgres', 'SELECT iact.check_overlaps_now()');
like($err, qr/cannot execute INSERT in a read-only transaction/,
	'check_overlaps_now() on the standby fails: it must write its run');
$primary->stop;
$standby->promote;
ok($standby->poll_query_until('postgres', q{SELECT count(*) = 1 FROM pg_stat_activity
	WHERE backend_type = 'iact maintenance worker' AND datname = 'postgres'}),
	'after promotion the maintenance worker starts, connected');
$standby->safe_psql('postgres', 'SELECT iact.check_overlaps_now()');
is($standby->safe_psql('postgres', q{SELECT count(*) FROM iact.maintenance_runs WHERE status = 'success'}), '2',
	'and the promoted server records its runs after the replicated one');
$standby->stop;
done_testing();
