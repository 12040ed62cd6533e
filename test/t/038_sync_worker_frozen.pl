# The sync worker waiting for a frozen MariaDB (issue 12, review): with
# read_timeout and connect_timeout at 10 minutes, a SIGHUP leaves it waiting
# (it reloads, it is not killed), a SIGTERM ends it at once, and so does the
# postmaster's death (the worker must not be left behind).  Bounds are
# generous (10 s): what is tested is that the wait ends at all.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time sleep);
use IactTest;
use IactMariaDB;

plan skip_all => 'MariaDB harness not running (run through test/check.sh)'
  unless $ENV{IACT_MARIADB_PORT} && $ENV{IACT_MARIADB_DIR};

my $frozen = 0;
END { mariadb_thaw() if $frozen; }

mariadb_sql(q{
	DROP DATABASE IF EXISTS atkw;
	CREATE DATABASE atkw;
	CREATE TABLE atkw.t (id INT PRIMARY KEY, v INT);
	INSERT INTO atkw.t SELECT seq, seq FROM seq_1_to_10;
	DROP USER IF EXISTS atkw_reader;
	CREATE USER atkw_reader IDENTIFIED BY 'pw';
	GRANT SELECT ON atkw.* TO atkw_reader;
});
my $node = iact_node('sync_worker_frozen',
	conf => "iact.sync_enabled = on\niact.sync_interval = '1s'\niact.sync_retry_delay = '1s'\nlog_statement = none\n");
$node->start;
$node->safe_psql('postgres', qq{
	CREATE EXTENSION iact;
	CREATE SERVER w FOREIGN DATA WRAPPER iact_mariadb
		OPTIONS (host '127.0.0.1', port '$ENV{IACT_MARIADB_PORT}', dbname 'atkw',
				 connect_timeout '600', read_timeout '600');
	CREATE USER MAPPING FOR CURRENT_USER SERVER w OPTIONS (user 'atkw_reader', password 'pw');
	SELECT iact.sync_add_table('w', 't', 't');});
ok($node->poll_query_until('postgres', q{SELECT count(*) = 10 FROM t}), 'the worker syncs');

my $waiting = q{SELECT pid FROM pg_stat_activity WHERE backend_type = 'iact sync worker' AND wait_event_type = 'Extension'};
sub frozen_worker
{
	my $pid;
	for (1 .. 300)
	{
		$pid = $node->safe_psql('postgres', $waiting);
		last if $pid =~ /^\d+$/;
		sleep 0.1;
	}
	return $pid;
}
sub gone_within
{
	my ($pid, $secs) = @_;
	my $t0 = time;
	while (time - $t0 < $secs)
	{
		return time - $t0 unless kill 0, $pid;
		sleep 0.05;
	}
	return undef;
}

mariadb_freeze();
$frozen = 1;
my $pid = frozen_worker();
like($pid, qr/^\d+$/, "the worker ($pid) waits for the frozen MariaDB");

# SIGHUP: the wait goes on (the latch is set, nothing is thrown)
kill 'HUP', $pid;
sleep 1;
is($node->safe_psql('postgres', $waiting), $pid, 'SIGHUP: the same worker still waits for MariaDB');

# SIGTERM: the worker ends at once
kill 'TERM', $pid;
my $s = gone_within($pid, 10);
ok(defined $s, sprintf('SIGTERM: the frozen worker exited (%.2f s)', $s // -1));

# the postmaster's death: the worker (restarted meanwhile) must not stay behind
my $pid2 = frozen_worker();
like($pid2, qr/^\d+$/, "a new worker ($pid2) waits for the frozen MariaDB");
open my $st, '<', "/proc/$pid2/stat" or die "/proc/$pid2/stat: $!";
my @f = split ' ', <$st>;
close $st;
my $postmaster = $f[3];    # the worker's parent
open my $pf, '<', $node->data_dir . '/postmaster.pid' or die "postmaster.pid: $!";
my $pmpid = <$pf>;
close $pf;
chomp $pmpid;
is($postmaster, $pmpid, "the worker's parent is the postmaster ($pmpid)");
kill 'KILL', $postmaster;
$s = gone_within($pid2, 10);
ok(defined $s, sprintf('postmaster death: the frozen worker exited (%.2f s)', $s // -1));
mariadb_thaw();
$frozen = 0;
# the node is gone: wait for the postmaster's pid to be stale, tell the framework
for (1 .. 100) { last unless kill 0, $postmaster; sleep 0.1; }
$node->_update_pid(-1);
done_testing();
