# test/t/090_prometheus.pl -- a real scrape, end to end: the manual's cron
# command line (doc/health.md, executed as written but for the textfile
# directory) writes iact.metrics() for Debian's prometheus-node-exporter
# (textfile collector only, loopback port), which Debian's prometheus scrapes
# every second, evaluating the shipped rules (monitoring/prometheus/
# iact-rules.yml, unchanged) every second.  The test then:
#   - reads iact_up through Prometheus' HTTP API;
#   - provokes a FAILED migration (iact.run_migration of failing SQL), a
#     migration RUNNING for 40 minutes (log_migration_start, its start moved
#     back) and a stale sync (a sync run that ended 50 s ago with
#     iact.sync_interval = 10s: beyond 4 intervals), and sees
#     IactMigrationFailed, IactMigrationRunning, IactSyncStale and
#     IactSyncStaleCritical firing in /api/v1/alerts, and the alerts of
#     conditions that do not hold (IactOverlapsFound, IactMetricsAbsent)
#     not firing.  These alerts have no `for:`: their conditions already
#     contain their duration, so they fire at the first evaluation and the
#     shipped file can be used as it is (no rewritten copy with short
#     `for:`);
#   - runs every expression of the Grafana dashboard (monitoring/grafana/
#     iact.json) through /api/v1/query, with the dashboard's variables
#     replaced ($instance by .*, $__rate_interval by 1m): none may fail.
# Both daemons are stopped by the test, also when it dies (END block).
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use HTTP::Tiny;
use JSON::PP;
use Time::HiRes qw(sleep time);
use POSIX qw(WNOHANG);
use IactTest;

my $root = $ENV{IACT_ROOT} or die 'IACT_ROOT not set (run through test/check.sh)';
my $exporter_bin = '/usr/bin/prometheus-node-exporter';
my $prometheus_bin = '/usr/bin/prometheus';
ok(-x $exporter_bin && -x $prometheus_bin,
	'prometheus and prometheus-node-exporter are installed (Debian packages)')
  or BAIL_OUT('missing Debian packages prometheus / prometheus-node-exporter');

my %children;    # pid => name

sub spawn
{
	my ($name, $log, @cmd) = @_;
	my $pid = fork() // die "fork: $!";
	if ($pid == 0)
	{
		# (never die here: the child must not run the parent's END block)
		open(STDOUT, '>', $log) or POSIX::_exit(126);
		open(STDERR, '>&', \*STDOUT) or POSIX::_exit(126);
		exec(@cmd);
		POSIX::_exit(127);
	}
	$children{$pid} = $name;
	return $pid;
}

sub stop_children
{
	for my $pid (keys %children)
	{
		kill 'TERM', $pid;
		my $deadline = time() + 20;
		while (waitpid($pid, WNOHANG) == 0 && time() < $deadline) { sleep 0.1; }
		if (kill(0, $pid)) { kill 'KILL', $pid; waitpid($pid, 0); }
		delete $children{$pid};
	}
}
END { stop_children(); }
$SIG{$_} = sub { stop_children(); exit 1 } for qw(INT TERM HUP);

# --- PostgreSQL with iact, the database of the manual's example ("calls") -------
my $node = iact_node('scraped', conf => "iact.database = 'calls'\niact.sync_interval = '10s'\n");
$node->start;
$node->safe_psql('postgres', 'CREATE DATABASE calls');
$node->safe_psql('calls', q{
	CREATE EXTENSION iact;
	CREATE ROLE prometheus LOGIN IN ROLE pg_monitor;
	GRANT USAGE ON SCHEMA iact TO prometheus;
});

# --- the manual's cron line, as written but for the textfile directory ----------
my $textdir = "${PostgreSQL::Test::Utils::tmp_check}/node_exporter_textfiles";
mkdir $textdir or die "$textdir: $!";
my $manual = slurp_file("$root/doc/health.md");
my ($cron) = $manual =~ /^\s*(\* \* \* \* \* prometheus psql .*)$/m;
ok(defined $cron, 'doc/health.md has the cron line') or BAIL_OUT('no cron line in doc/health.md');
(my $command = $cron) =~ s/^\* \* \* \* \* prometheus //;    # schedule and cron user (the OS user)
my $replaced = ($command =~ s{/var/lib/node_exporter}{$textdir}g);
is($replaced, 3, 'the command names the textfile directory three times (tmp file, mv from, mv to)');
note("scrape command: $command");

sub scrape
{
	# cron runs it as OS user prometheus, whose psql connects as role prometheus
	local $ENV{PGHOST} = $node->host;
	local $ENV{PGPORT} = $node->port;
	local $ENV{PGUSER} = 'prometheus';
	delete local $ENV{PGDATABASE};
	system('sh', '-c', $command) == 0 or die "the cron command failed: $?";
}
scrape();
like(slurp_file("$textdir/iact.prom"), qr/^iact_up 1$/m, 'the cron line wrote iact.prom with iact_up 1');
ok(!-e "$textdir/iact.prom.tmp", 'and moved its temporary file into place');

# --- node_exporter (textfile collector only) and prometheus on loopback ---------
my $exporter_port = PostgreSQL::Test::Cluster::get_free_port();
my $prom_port = PostgreSQL::Test::Cluster::get_free_port();
my $dir = $PostgreSQL::Test::Utils::tmp_check;
spawn('node_exporter', "$dir/node_exporter.log", $exporter_bin,
	'--collector.disable-defaults', '--collector.textfile',
	"--collector.textfile.directory=$textdir",
	"--web.listen-address=127.0.0.1:$exporter_port");
my $rules = "$root/monitoring/prometheus/iact-rules.yml";
open(my $cfg, '>', "$dir/prometheus.yml") or die;
print $cfg <<"EOF";
global:
  scrape_interval: 1s
  evaluation_interval: 1s
rule_files:
  - $rules
scrape_configs:
  - job_name: node
    static_configs:
      - targets: ['127.0.0.1:$exporter_port']
EOF
close $cfg;
spawn('prometheus', "$dir/prometheus.log", $prometheus_bin,
	"--config.file=$dir/prometheus.yml", "--storage.tsdb.path=$dir/prometheus-data",
	"--web.listen-address=127.0.0.1:$prom_port", '--log.level=warn');

my $http = HTTP::Tiny->new(timeout => 10);
my $api = "http://127.0.0.1:$prom_port";

sub api_get
{
	my ($path, %params) = @_;
	my $url = "$api$path" . (%params ? '?' . $http->www_form_urlencode(\%params) : '');
	my $res = $http->get($url);
	return undef unless $res->{success} || $res->{status} == 400 || $res->{status} == 422;
	return decode_json($res->{content});
}

# poll: scrape, then ask; true when $cond returns true within 90 s
sub wait_for
{
	my ($cond) = @_;
	my $deadline = time() + 90;
	while (time() < $deadline)
	{
		scrape();
		my $r = eval { $cond->() };
		return $r if $r;
		sleep 1;
	}
	return 0;
}

ok(wait_for(sub { my $r = $http->get("$api/-/ready"); $r->{success} }), 'prometheus is ready');
my $up = wait_for(sub {
	my $j = api_get('/api/v1/query', query => 'iact_up');
	return ($j && $j->{status} eq 'success' && @{ $j->{data}{result} }) ? $j->{data}{result}[0] : undef;
});
ok($up, 'Prometheus has scraped iact_up through node_exporter');
is($up ? $up->{value}[1] : undef, '1', 'iact_up is 1');
is($up ? $up->{metric}{job} : undef, 'node', 'from the node job');
my $exp = api_get('/api/v1/query', query => 'up{job="node"}');
is($exp->{data}{result}[0]{value}[1], '1', 'the node_exporter target is up');
my $rules_loaded = api_get('/api/v1/rules');
my @loaded = map { map { $_->{name} } @{ $_->{rules} } } @{ $rules_loaded->{data}{groups} };
ok(scalar(grep { $_ eq 'IactMigrationFailed' } @loaded) && scalar(@loaded) >= 13,
	'prometheus loaded the shipped rules (' . scalar(@loaded) . ' rules)');

# --- provoke: a failed migration and a stale sync -------------------------------
my ($ret, $out, $err) = $node->psql('calls',
	q{CALL iact.run_migration('2026.090', 'fails on purpose', 'SELECT 1/0')});
is($node->safe_psql('calls', q{SELECT status FROM iact.migration_log WHERE version = '2026.090'}),
	'FAILED', 'the migration is logged FAILED');
# a migration an external runner started 40 minutes ago and never finished
$node->safe_psql('calls', q{SELECT iact.log_migration_start('2026.091', 'still running');
	UPDATE iact.migration_log SET started_at = now() - interval '40 min' WHERE version = '2026.091'});
# a sync of calls.ivr_calls that last succeeded 50 s ago, with an interval of 10 s
$node->safe_psql('calls', q{INSERT INTO iact.sync_runs (target_table, status, started_at, finished_at)
	VALUES ('public.ivr_calls', 'success', now() - interval '55 s', now() - interval '50 s')});

sub firing
{
	my $j = api_get('/api/v1/alerts');
	return {} unless $j && $j->{status} eq 'success';
	my %f;
	for my $a (@{ $j->{data}{alerts} })
	{
		$f{ $a->{labels}{alertname} } = $a if $a->{state} eq 'firing';
	}
	return \%f;
}
my $alerts = {};
wait_for(sub {
	$alerts = firing();
	return $alerts->{IactMigrationFailed} && $alerts->{IactMigrationRunning}
	  && $alerts->{IactSyncStale} && $alerts->{IactSyncStaleCritical};
});
ok($alerts->{IactMigrationFailed}, 'IactMigrationFailed fires');
is($alerts->{IactMigrationFailed}{labels}{severity}, 'critical', 'as critical');
like($alerts->{IactMigrationFailed}{annotations}{description} // '', qr/has 1 FAILED or ROLLBACK_FAILED entries/,
	'its description counts the failed entry');
ok($alerts->{IactSyncStale}, 'IactSyncStale fires (2 intervals)');
is($alerts->{IactSyncStale}{labels}{table}, 'public.ivr_calls', 'for the stale table');
is($alerts->{IactSyncStale}{labels}{severity}, 'warning', 'as a warning');
ok($alerts->{IactSyncStaleCritical}, 'IactSyncStaleCritical fires (4 intervals)');
ok(!$alerts->{IactOverlapsFound}, 'IactOverlapsFound does not fire (no overlap)');
ok($alerts->{IactMigrationRunning}, 'IactMigrationRunning fires (RUNNING for 40 minutes)');
is($alerts->{IactMigrationRunning}{labels}{severity}, 'warning', 'as a warning');
ok(!$alerts->{IactMetricsAbsent}, 'IactMetricsAbsent does not fire');

# --- every expression of the dashboard runs --------------------------------------
my $dash = decode_json(slurp_file("$root/monitoring/grafana/iact.json"));
my @exprs;
for my $p (@{ $dash->{panels} })
{
	push @exprs, map { $_->{expr} } @{ $p->{targets} // [] };
	for my $inner (@{ $p->{panels} // [] }) { push @exprs, map { $_->{expr} } @{ $inner->{targets} // [] }; }
}
cmp_ok(scalar(@exprs), '>=', 25, scalar(@exprs) . ' dashboard expressions');
my @bad;
my $with_data = 0;
for my $e (@exprs)
{
	(my $q = $e) =~ s/\$instance/.*/g;
	$q =~ s/\$__rate_interval/1m/g;
	my $j = api_get('/api/v1/query', query => $q);
	if (!$j || $j->{status} ne 'success') { push @bad, "$e: " . ($j ? $j->{error} : 'no answer'); next; }
	$with_data++ if @{ $j->{data}{result} };
}
is(join("\n", @bad), '', 'every dashboard expression runs without error');
note("$with_data of " . scalar(@exprs) . ' expressions returned data');
cmp_ok($with_data, '>=', scalar(@exprs) / 2, 'most of them return data');
my $ds = (grep { $_->{name} eq 'datasource' } @{ $dash->{templating}{list} })[0];
is($ds ? $ds->{query} : undef, 'prometheus', 'the dashboard has a Prometheus datasource variable');
my @other_ds = grep { ($_->{datasource}{uid} // '') ne '${datasource}' } grep { $_->{type} ne 'row' } @{ $dash->{panels} };
is(scalar(@other_ds), 0, 'every panel uses it');

my @pids = keys %children;
is(scalar(@pids), 2, 'two daemons were started');
stop_children();
is(scalar(grep { kill(0, $_) } @pids), 0, 'node_exporter and prometheus are stopped');
$node->stop;
done_testing();
