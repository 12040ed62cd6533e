# A sync can be interrupted whatever MariaDB does (issue 12): MariaDB is
# frozen (SIGSTOP: it accepts TCP connections in the kernel but never answers)
# (1) in the middle of a 300 000-row run and (2) before a run connects.  Each
# time pg_cancel_backend ends the run within 2 s (measured from the cancel to
# the error the client receives) and a fast shutdown completes within 2 s,
# although the server's read_timeout and connect_timeout are 10 minutes; a
# statement_timeout ends a run waiting to connect.  After thawing, the next
# run ends with target = source (count and checksum of every column).  The
# 2-second bounds are the issue's own.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use IPC::Run;
use Time::HiRes qw(time sleep);
use IactTest;
use IactMariaDB;

plan skip_all => 'MariaDB harness not running (run through test/check.sh)'
  unless $ENV{IACT_MARIADB_PORT} && $ENV{IACT_MARIADB_DIR};

my $nrows = 300000;
my @cols = qw(id grp txt amount changed_at);

# never leave MariaDB frozen for the tests that follow, whatever happens here
my $frozen = 0;
sub freeze { mariadb_freeze(); $frozen = 1; return; }
sub thaw   { mariadb_thaw(); $frozen = 0; return; }
END { mariadb_thaw() if $frozen; }

# the source: 300 000 rows generated inside MariaDB
mariadb_sql(qq{DROP TABLE IF EXISTS bulk_i; CREATE TABLE bulk_i LIKE bulk;
	INSERT INTO bulk_i SELECT seq, seq % 100, CONCAT('row ', seq, ' ', REPEAT('x', 40)), (seq % 100000) / 100,
		'2025-01-01 00:00:00' + INTERVAL (seq DIV 3) SECOND FROM seq_1_to_$nrows;});
is(mariadb_sql('SELECT COUNT(*) FROM bulk_i'), $nrows, 'source filled');

my $node = iact_node('sync_interrupt', conf => "log_statement = none\n");
$node->start;
my $pw = $ENV{IACT_MARIADB_PASSWORD};
$node->safe_psql('postgres', qq{
	CREATE EXTENSION iact;
	CREATE SERVER ivr FOREIGN DATA WRAPPER iact_mariadb
		OPTIONS (host '127.0.0.1', port '$ENV{IACT_MARIADB_PORT}', dbname 'ivr',
				 connect_timeout '600', read_timeout '600');
	CREATE USER MAPPING FOR CURRENT_USER SERVER ivr
		OPTIONS (user '$ENV{IACT_MARIADB_USER}', password \$pw\$$pw\$pw\$);
	SELECT iact.sync_add_table('ivr', 'bulk_i', 'bulk_i', watermark_column => 'changed_at',
		batch_size => 500, retention_days => 0, lookback => 5);
});

# start a CALL iact.sync_run in the background; returns the handle, its stderr and the backend's pid
sub start_run
{
	my ($err) = ('');
	my $out = '';
	my $h = IPC::Run::start(
		[ 'psql', '-X', '-v', 'VERBOSITY=verbose', '-d', $node->connstr('postgres'), '-c', "CALL iact.sync_run('bulk_i')" ],
		'>', \$out, '2>', \$err);
	my $pid;
	for (1 .. 300)
	{
		$pid = $node->safe_psql('postgres',
			"SELECT pid FROM pg_stat_activity WHERE query LIKE 'CALL iact.sync_run%' AND pid <> pg_backend_pid()");
		last if $pid =~ /^\d+$/;
		sleep 0.1;
	}
	return ($h, \$err, $pid);
}

# wait until that backend waits for MariaDB (the sync's waits are "Extension" waits)
sub waits_for_mariadb
{
	my ($pid) = @_;
	return $node->poll_query_until('postgres',
		"SELECT wait_event_type = 'Extension' FROM pg_stat_activity WHERE pid = $pid");
}

# the time from $t0 until the client of handle $h reports an error matching $re (or 30 s)
sub seconds_until_error
{
	my ($t0, $h, $err, $re) = @_;
	while (time - $t0 < 30)
	{
		$h->pump_nb;
		last if $$err =~ $re;
		sleep 0.02;
	}
	my $elapsed = time - $t0;
	$h->finish;
	return $elapsed;
}

# thaw MariaDB; the next run ends with target = source
sub next_run_completes
{
	my ($what) = @_;
	thaw();
	$node->safe_psql('postgres', "CALL iact.sync_run('bulk_i')");
	is($node->safe_psql('postgres',
			"SELECT status FROM iact.sync_runs WHERE target_table = 'public.bulk_i' ORDER BY id DESC LIMIT 1"),
		'success', "$what: after thawing, the next run succeeds");
	my ($sc, $tc, $ssum, $tsum, $dups) = same_as_source($node, 'postgres', 'bulk_i', \@cols);
	is($tc, $sc, "$what: target count = source count ($sc)");
	is($tsum, $ssum, "$what: target checksum = source checksum ($ssum)");
	is($dups, 0, "$what: no duplicates");
	# the next case starts from an empty target
	$node->safe_psql('postgres',
		"TRUNCATE bulk_i; UPDATE iact.sync_tables SET last_watermark = NULL WHERE target_table = 'bulk_i'");
}

# freeze MariaDB once a run has committed some batches; returns the run's handle, stderr, pid
sub freeze_mid_run
{
	my ($what) = @_;
	my ($h, $err, $pid) = start_run();
	like($pid, qr/^\d+$/, "$what: the run's backend is $pid");
	ok( $node->poll_query_until('postgres',
			"SELECT coalesce((SELECT rows_read FROM iact.sync_runs WHERE target_table = 'public.bulk_i' AND status = 'running'), 0) >= 20000"
		),
		"$what: the run is under way with committed batches");
	freeze();
	ok(waits_for_mariadb($pid), "$what: the backend waits for the frozen MariaDB");
	my $read = $node->safe_psql('postgres',
		"SELECT rows_read FROM iact.sync_runs WHERE target_table = 'public.bulk_i' AND status = 'running'");
	cmp_ok($read, '<', $nrows, "$what: in the middle of the run ($read of $nrows rows read)");
	return ($h, $err, $pid);
}

# 1a. frozen mid-run: pg_cancel_backend
{
	my ($h, $err, $pid) = freeze_mid_run('mid-run cancel');
	my $t0 = time;
	$node->safe_psql('postgres', "SELECT pg_cancel_backend($pid)");
	my $s = seconds_until_error($t0, $h, $err, qr/canceling statement due to user request/);
	like($$err, qr/canceling statement due to user request/, 'mid-run cancel: the run was cancelled');
	# the error's location reaches the client intact: the copy it was re-thrown
	# from is freed before the report is sent (iact_rethrow, src/subxact.c)
	like($$err, qr/LOCATION:\s+ProcessInterrupts, postgres\.c:\d+/,
		'mid-run cancel: the client gets the error with its location (ProcessInterrupts)');
	cmp_ok($s, '<', 2, sprintf('mid-run cancel: the error came %.2f s after the cancel (< 2 s)', $s));
	next_run_completes('mid-run cancel');
}

# 1b. frozen mid-run: a fast shutdown
{
	my ($h, $err, $pid) = freeze_mid_run('mid-run shutdown');
	my $t0 = time;
	$node->stop('fast');
	my $s = time - $t0;
	cmp_ok($s, '<', 2, sprintf('mid-run shutdown: the fast shutdown took %.2f s (< 2 s)', $s));
	$h->finish;
	like($$err, qr/terminating connection due to administrator command|server closed the connection/,
		'mid-run shutdown: the run was terminated');
	$node->start;
	next_run_completes('mid-run shutdown');
}

# 2a. frozen before the run connects: pg_cancel_backend
{
	freeze();
	my ($h, $err, $pid) = start_run();
	ok(waits_for_mariadb($pid), 'connect cancel: the backend waits for the frozen MariaDB');
	my $t0 = time;
	$node->safe_psql('postgres', "SELECT pg_cancel_backend($pid)");
	my $s = seconds_until_error($t0, $h, $err, qr/canceling statement due to user request/);
	like($$err, qr/canceling statement due to user request/, 'connect cancel: the run was cancelled');
	cmp_ok($s, '<', 2, sprintf('connect cancel: the error came %.2f s after the cancel (< 2 s)', $s));
	is($node->safe_psql('postgres', 'SELECT count(*) FROM bulk_i'), '0', 'connect cancel: nothing was read');
}

# 2b. still frozen: a statement_timeout ends a run that waits to connect
{
	my $t0 = time;
	my ($rc, $out, $err) = $node->psql('postgres',
		"SET statement_timeout = '1s'; SELECT * FROM iact.sync_now('bulk_i')");
	my $s = time - $t0;
	like($err, qr/canceling statement due to statement timeout/, 'connect timeout: statement_timeout ended the run');
	cmp_ok($s, '<', 3, sprintf('connect timeout: within 2 s of the timeout (%.2f s in all)', $s));
}

# 2c. still frozen: a fast shutdown while a run waits to connect
{
	my ($h, $err, $pid) = start_run();
	ok(waits_for_mariadb($pid), 'connect shutdown: the backend waits for the frozen MariaDB');
	my $t0 = time;
	$node->stop('fast');
	my $s = time - $t0;
	cmp_ok($s, '<', 2, sprintf('connect shutdown: the fast shutdown took %.2f s (< 2 s)', $s));
	$h->finish;
	$node->start;
	next_run_completes('connect');
}

# the frozen connections are gone on MariaDB's side too (no session left behind)
ok($node->poll_query_until('postgres', 'SELECT true'), 'PostgreSQL is up');
# (MariaDB ends a session whose client is gone when it next reads or writes
# it; on a loaded machine that may take a few seconds after the thaw)
my $left;
for (1 .. 300)
{
	$left = mariadb_sql("SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE USER = '$ENV{IACT_MARIADB_USER}'");
	last if $left eq '0';
	sleep 0.1;
}
is($left, '0', 'no session of the sync account is left on MariaDB')
  or diag(mariadb_sql("SELECT ID, COMMAND, TIME, STATE, LEFT(INFO, 80) FROM information_schema.PROCESSLIST "
		. "WHERE USER = '$ENV{IACT_MARIADB_USER}'"));

$node->stop;
mariadb_sql('DROP TABLE bulk_i');
done_testing();
