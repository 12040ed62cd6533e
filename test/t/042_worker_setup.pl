# The sync worker set up the usual way: iact preloaded, the server started,
# THEN CREATE EXTENSION and a registration: the first scheduled run comes
# within the interval plus a few seconds, with no request, reload or restart.
# DROP EXTENSION and CREATE EXTENSION again while the worker runs: the same
# worker picks up again.  200 tables due at once all run, and 200 requested
# tables (more than the old fixed array of 64) all run.  Thousands of failing
# runs leave the worker's memory flat, and so do errors escaping its CALL of a run.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time sleep);
use IactTest;
use IactMariaDB;

plan skip_all => 'no MariaDB from the harness (run through test/check.sh)'
  unless $ENV{IACT_MARIADB_SOCKET};

my $interval = 3;
my $node = iact_node('setup',
	conf => "iact.sync_enabled = on\niact.sync_interval = '${interval}s'\niact.sync_retry_delay = '1s'\n");
$node->start;

sub q1 { return $node->safe_psql('postgres', shift); }

sub worker_pid
{
	return q1(q{SELECT pid FROM pg_stat_activity WHERE backend_type = 'iact sync worker'});
}

# wait (at most $max seconds) until $sql returns 't'; returns the seconds waited, or undef
sub wait_for
{
	my ($sql, $max) = @_;
	my $t0 = time;
	while (time - $t0 < $max)
	{
		return time - $t0 if q1($sql) eq 't';
		sleep 0.2;
	}
	return undef;
}

mariadb_sql(q{DROP TABLE IF EXISTS setup_t;
	CREATE TABLE setup_t (id int PRIMARY KEY, v varchar(20));
	INSERT INTO setup_t SELECT seq, CONCAT('v', seq) FROM seq_1_to_50;});

# --- the worker runs before the extension exists, and waits for it ---------
ok($node->poll_query_until('postgres',
		q{SELECT count(*) = 1 FROM pg_stat_activity WHERE backend_type = 'iact sync worker'}),
	'the worker runs without the extension');
my $pid = worker_pid();
sleep 2;

# --- CREATE EXTENSION, then a server and a table: scheduled at once ---------
q1('CREATE EXTENSION iact');
ivr_server($node, 'postgres');
q1(q{SELECT iact.sync_add_table('ivr', 'setup_t', 'setup_t', retention_days => 0)});
my $waited = wait_for(q{SELECT count(*) > 0 FROM iact.sync_runs WHERE status = 'success'}, $interval + 15);
ok(defined $waited, 'the first scheduled run happens without a request or a reload');
cmp_ok($waited // 99, '<=', $interval + 5, sprintf('within the interval plus 5 s (%.1f s)', $waited // -1));
is(q1(q{SELECT count(*) FROM iact.sync_requests}), '0', 'no request was made');
is(q1(q{SELECT count(*) FROM setup_t}), '50', 'the target has the rows');
ok(defined wait_for(q{SELECT count(*) >= 2 FROM iact.sync_runs WHERE status = 'success'}, $interval + 15),
	'the schedule goes on');
is(worker_pid(), $pid, 'the same worker, never restarted');

# --- DROP EXTENSION and CREATE EXTENSION again while the worker runs ---------
q1('DROP EXTENSION iact CASCADE');
sleep $interval + 2;
is(worker_pid(), $pid, 'DROP EXTENSION: the worker stays up');
q1('CREATE EXTENSION iact');
ivr_server($node, 'postgres');
mariadb_sql(q{INSERT INTO setup_t SELECT seq, CONCAT('v', seq) FROM seq_51_to_60;});
q1(q{SELECT iact.sync_add_table('ivr', 'setup_t', 'setup_t', retention_days => 0)});
$waited = wait_for(q{SELECT count(*) > 0 FROM iact.sync_runs WHERE status = 'success'}, $interval + 15);
ok(defined $waited, 'after CREATE EXTENSION again the worker runs the new registration');
cmp_ok($waited // 99, '<=', $interval + 5, sprintf('within the interval plus 5 s (%.1f s)', $waited // -1));
is(q1(q{SELECT count(*) FROM setup_t}), '60', 'the target has the new rows');
is(worker_pid(), $pid, 'still the same worker');
my $log = slurp_file($node->logfile);
unlike($log, qr/iact sync worker.*exited with exit code|terminated by signal/, 'the worker never exited');

# --- 200 tables due at once: every one runs ----------------------------------
mariadb_sql(join('', map { sprintf("DROP TABLE IF EXISTS m%03d; CREATE TABLE m%03d (id int PRIMARY KEY, v int); "
			. "INSERT INTO m%03d VALUES (1, %d), (2, %d);", $_, $_, $_, $_, $_) } 1 .. 200));
my $registered = q1(q{SELECT count(*) FROM iact.sync_add_tables('ivr', 'ivr',
		ARRAY(SELECT format('m%s', lpad(g::text, 3, '0')) FROM generate_series(1, 200) g), retention_days => 0)
	WHERE status = 'registered'});
is($registered, '200', 'sync_add_tables registers 200 tables in one call');
ok(defined wait_for(q{SELECT count(DISTINCT r.table_id) = 200 FROM iact.sync_runs r
		JOIN iact.sync_tables t ON t.id = r.table_id WHERE t.target_table LIKE 'm%' AND r.status = 'success'}, 180),
	'all 200 due tables run');
is(q1(q{SELECT sum(x) FROM (SELECT count(*) AS x FROM m001 UNION ALL SELECT count(*) FROM m100
		UNION ALL SELECT count(*) FROM m200) y}), '6', 'their targets have the rows');

# --- 200 requests with the schedule off: none dropped ------------------------
q1(q{ALTER SYSTEM SET iact.sync_enabled = off});
q1('SELECT pg_reload_conf()');
sleep 2;
my $before = q1(q{SELECT coalesce(max(id), 0) FROM iact.sync_runs});
is(q1(q{SELECT count(*) FROM (SELECT iact.request_sync(format('m%s', lpad(g::text, 3, '0'))) AS ok
		FROM generate_series(1, 200) g) x WHERE ok}), '200', '200 requests accepted (more than 64)');
ok(defined wait_for(qq{SELECT count(DISTINCT r.table_id) = 200 FROM iact.sync_runs r
		JOIN iact.sync_tables t ON t.id = r.table_id WHERE t.target_table LIKE 'm%' AND r.id > $before
		AND r.status = 'success'}, 180),
	'every requested table runs');
is(q1(q{SELECT count(*) FROM iact.sync_requests}), '0', 'and every request is taken');

# --- thousands of failing runs: the worker's memory stays flat ---------------
# The worker's long-lived memory: the contexts at levels 0 and 1 of its
# memory-context dump (TopMemoryContext, CacheMemoryContext, the loop's
# context, ...), leaving out those of a transaction or a run in progress,
# which the dump may catch mid-pass.  A leak into TopMemoryContext or a cache
# shows there; a pass's own memory is freed when the pass ends.
# the worker's memory-context dump (the lines between its header and the
# grand total), or undef
sub worker_contexts
{
	my $p = worker_pid();
	my $offset = -s $node->logfile;
	q1("SELECT pg_log_backend_memory_contexts($p)");
	for (1 .. 50)
	{
		my $l = slurp_file($node->logfile, $offset);
		return $1 if $l =~ /logging memory contexts of PID $p\n(.*?)Grand total/s;
		sleep 0.2;
	}
	return undef;
}

sub worker_memory
{
	my $dump = worker_contexts();
	return undef unless defined $dump;
	my $total = 0;
	for my $line (split /\n/, $dump)
	{
		next unless $line =~ /level: ([01]); (.*?): (\d+) total/;
		next if $2 =~ /^(TopTransactionContext|TopPortalContext|iact sync_run|ErrorContext)$/;
		$total += $3;
	}
	return $total;
}
q1(q{ALTER SERVER ivr OPTIONS (SET port '1')});
q1(q{ALTER SYSTEM SET iact.sync_enabled = on});
q1(q{ALTER SYSTEM SET iact.sync_interval = '2s'});
q1('SELECT pg_reload_conf()');
ok(defined wait_for(q{SELECT count(*) >= 400 FROM iact.sync_runs WHERE status = 'failed'}, 120),
	'runs fail while MariaDB cannot be reached');
my $m1 = worker_memory();
ok(defined wait_for(q{SELECT count(*) >= 2400 FROM iact.sync_runs WHERE status = 'failed'}, 300),
	'2000 more failing runs');
my $m2 = worker_memory();
ok(defined $m1 && defined $m2, "the worker's memory was measured ($m1, then $m2 bytes)");
cmp_ok(($m2 // 1e12) - ($m1 // 0), '<', 128 * 1024, 'it grew by less than 128 kB over 2000 failing runs');
is(worker_pid(), $pid, 'still the same worker');

# --- errors that escape the worker's CALL of a run leave nothing behind -------
# The engine records a run's own failures; a failure of that bookkeeping
# escapes the CALL iact.sync_run() (here: a trigger refusing every run row).
# The CALL's memory context goes with the pass: at most one (a run caught in
# progress by the dump), however many such passes.
q1(q{ALTER SERVER ivr OPTIONS (SET port '} . $ENV{IACT_MARIADB_PORT} . q{')});
q1(q{CREATE FUNCTION public.refuse_run() RETURNS trigger LANGUAGE plpgsql AS $$
	BEGIN RAISE EXCEPTION 'no run may be recorded (042)'; END $$;
	CREATE TRIGGER refuse_run BEFORE INSERT ON iact.sync_runs FOR EACH ROW EXECUTE FUNCTION public.refuse_run()});
my $offset = -s $node->logfile;
my $escaped = 0;
my $t0 = time;
while (time - $t0 < 120 && $escaped < 10)
{
	$escaped = () = slurp_file($node->logfile, $offset) =~ /no run may be recorded \(042\)/g;
	sleep 0.5;
}
cmp_ok($escaped, '>=', 10, "an error escaped the worker's CALL $escaped times");
my $calls = () = (worker_contexts() // '') =~ /iact sync worker call: /g;
cmp_ok($calls, '<=', 1, "at most one \"iact sync worker call\" context is left ($calls)");
is(worker_pid(), $pid, 'and it is still the same worker');

$node->stop;
done_testing();
