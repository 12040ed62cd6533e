# test/t/061_health_1_0_database.pl -- iact.health() and iact.metrics() of a
# database still at 1.0, served by the 1.1 library, then after ALTER
# EXTENSION iact UPDATE.
#
# 1.0 declares both as C functions; from 1.1 on they are SQL reading 1.1's
# objects.  The library keeps 1.0's implementation for a database not yet
# updated (src/health_1_0.c): its checks answer, for pg_monitor as before.
# After the update the 13 checks answer from SQL.
use strict;
use warnings;
use PostgreSQL::Test::Utils;
use Test::More;
use IactTest;

my $node = iact_node('h10');
$node->start;
sub q1 { return $node->safe_psql('postgres', shift); }

q1(q{CREATE EXTENSION iact VERSION '1.0'});
is(q1(q{SELECT extversion FROM pg_extension WHERE extname = 'iact'}), '1.0', 'database at 1.0');
is(q1(q{SELECT prolang = (SELECT oid FROM pg_language WHERE lanname = 'c') FROM pg_proc WHERE oid = 'iact.health()'::regprocedure}),
	't', "1.0's health() is the C function");

# 1.0's checks, as 1.0's library ran them (src/health_1_0.c): every check
# answers, none failed, and the settings are the module's own
is(q1(q{SELECT count(DISTINCT split_part(check_name, ':', 1)) || ' ' || count(*) FILTER (WHERE detail LIKE 'check failed%')
	  || ' ' || count(*) FILTER (WHERE check_name = 'extension_version') FROM iact.health()}),
	'13 0 0', 'at 1.0: the 13 checks answer, none failed');
is(q1(q{SELECT status || '|' || value FROM iact.health() WHERE check_name = 'server_role'}),
	'ok|0', 'at 1.0: server_role reports a primary');
is(q1(q{SET iact.health_expected_role = 'standby';
	SELECT status || '|' || detail FROM iact.health() WHERE check_name = 'server_role'}),
	'fail|primary, but iact.health_expected_role is standby',
	'at 1.0: a real check, reading the module\'s setting (expected standby: fail)');
my $metrics = q1(q{SELECT iact.metrics()});
like($metrics, qr/^iact_up 1$/m, 'at 1.0: metrics() serves iact_up');
like($metrics, qr/^iact_health_status\{check="connections"\} 0$/m, '... and the checks as statuses');
unlike($metrics, qr/extension_version/, '... and no warning about the version');
is(scalar(grep { !/^# (HELP|TYPE) iact_[a-z_]+ / && !/^# iact: / && !/^iact_[a-z_]+(\{[^}]*\})? -?[0-9.e+-]+$/ }
		split /\n/, $metrics), 0, '... every line in the exposition format');

# privileges as 1.0 set them: pg_monitor, not PUBLIC
q1(q{CREATE ROLE h10_monitor LOGIN IN ROLE pg_monitor; CREATE ROLE h10_nobody LOGIN;
	GRANT USAGE ON SCHEMA iact TO h10_monitor, h10_nobody});
is($node->safe_psql('postgres', q{SELECT count(DISTINCT split_part(check_name, ':', 1)) FROM iact.health()},
		extra_params => [ '-U', 'h10_monitor' ]),
	'13', 'at 1.0: pg_monitor may call health()');
my ($rc, $out, $err) = $node->psql('postgres', q{SELECT iact.metrics()}, extra_params => [ '-U', 'h10_nobody' ]);
like($err, qr/permission denied for function metrics/, 'at 1.0: PUBLIC may not call metrics()');

q1(q{ALTER EXTENSION iact UPDATE});
is(q1(q{SELECT count(DISTINCT split_part(check_name, ':', 1)) || ' ' || count(*) FILTER (WHERE detail LIKE 'check failed%')
	  || ' ' || count(*) FILTER (WHERE check_name = 'extension_version') FROM iact.health()}),
	'13 0 0', 'after the update: the 13 checks answer, none failed, no warning about the version');
$metrics = q1(q{SELECT iact.metrics()});
like($metrics, qr/^iact_health_status\{check="overlap_check_age"\} [012]$/m, 'after the update: metrics() has the checks');
unlike($metrics, qr/extension_version|^# iact: /m, '... and no warning or left-out section');
is($node->safe_psql('postgres', q{SELECT count(DISTINCT split_part(check_name, ':', 1)) FROM iact.health()},
		extra_params => [ '-U', 'h10_monitor' ]),
	'13', 'after the update: pg_monitor still may call health()');

$node->stop;
done_testing();
