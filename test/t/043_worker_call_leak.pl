# The worker's run of a table is a CALL iact.sync_run() through a portal, in a
# memory context of its own.  An error that escapes the CALL (the engine
# records a run's own failures, but not a failure of that bookkeeping) must
# not leave that context behind: over many such passes the worker's memory
# stays flat, with at most one "iact sync worker call" context (a run caught
# in progress by the dump).
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

my $node = iact_node('leak',
	conf => "iact.sync_enabled = on\niact.sync_interval = '1s'\niact.sync_retry_delay = '1s'\n");
$node->start;

sub q1 { return $node->safe_psql('postgres', shift); }

sub worker_pid
{
	return q1(q{SELECT pid FROM pg_stat_activity WHERE backend_type = 'iact sync worker'});
}

# the contexts named "iact sync worker call" in the worker's memory dump
sub call_contexts
{
	my $p = worker_pid();
	my $offset = -s $node->logfile;
	q1("SELECT pg_log_backend_memory_contexts($p)");
	for (1 .. 50)
	{
		my $l = slurp_file($node->logfile, $offset);
		if ($l =~ /logging memory contexts of PID $p\n(.*?)Grand total/s)
		{
			my $dump = $1;
			my $n = () = $dump =~ /iact sync worker call: /g;
			return $n;
		}
		sleep 0.2;
	}
	return undef;
}

mariadb_sql(q{DROP TABLE IF EXISTS leak_t;
	CREATE TABLE leak_t (id int PRIMARY KEY, v varchar(20));
	INSERT INTO leak_t VALUES (1, 'a');});
q1('CREATE EXTENSION iact');
ivr_server($node, 'postgres');
q1(q{SELECT iact.sync_add_table('ivr', 'leak_t', 'leak_t', retention_days => 0)});
ok($node->poll_query_until('postgres', q{SELECT count(*) > 0 FROM iact.sync_runs WHERE status = 'success'}),
	'the table syncs');

# the run's bookkeeping fails: the error escapes the CALL, every pass
q1(q{CREATE FUNCTION public.leak_refuse() RETURNS trigger LANGUAGE plpgsql AS $$
	BEGIN RAISE EXCEPTION 'leak test: no run may be recorded'; END $$;
	CREATE TRIGGER leak_refuse BEFORE INSERT ON iact.sync_runs FOR EACH ROW EXECUTE FUNCTION public.leak_refuse()});
my $offset = -s $node->logfile;
my $t0 = time;
my $seen = 0;
while (time - $t0 < 60)
{
	$seen = () = slurp_file($node->logfile, $offset) =~ /leak test: no run may be recorded/g;
	last if $seen >= 10;
	sleep 0.5;
}
cmp_ok($seen, '>=', 10, "the error escaped the worker's CALL $seen times");
my $n = call_contexts();
ok(defined $n, "the worker's memory contexts were dumped");
cmp_ok($n // 99, '<=', 1, "at most one \"iact sync worker call\" context is left (found " . ($n // 'none') . ")");

$node->stop;
done_testing();
