# A target row changed by another session between the sync's read and its
# write, on the direct write path (src/sync_direct.c): the sync waits for the
# other transaction; then the merge of a full sync fails the run with a
# serialization failure instead of overwriting the change (the next run
# repairs the row), and the incremental upsert looks the key up again and
# writes the source's row, as INSERT ... ON CONFLICT would.  The other
# session's update is held open until the sync is seen waiting for it.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use IPC::Run;
use IactTest;
use IactMariaDB;

plan skip_all => 'MariaDB harness not running (run through test/check.sh)'
  unless $ENV{IACT_MARIADB_PORT} && $ENV{IACT_MARIADB_CLI};

my $node = iact_node('sync_direct_conflict');
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION iact');
ivr_server($node, 'postgres');

mariadb_sql(q{DROP TABLE IF EXISTS dconf;
	CREATE TABLE dconf (id int PRIMARY KEY, v int NOT NULL, changed_at datetime NOT NULL);
	INSERT INTO dconf SELECT seq, seq, '2025-01-01' + INTERVAL seq SECOND FROM seq_1_to_50;});
$node->safe_psql('postgres', q{
	SELECT iact.sync_add_table('ivr', 'dconf', 'dconf_full', batch_size => 10, retention_days => 0);
	SELECT iact.sync_add_table('ivr', 'dconf', 'dconf_inc', watermark_column => 'changed_at',
	                           lookback => 0, batch_size => 10, retention_days => 0);
	SELECT iact.sync_now('dconf_full'); SELECT iact.sync_now('dconf_inc');});
is($node->safe_psql('postgres', 'SELECT count(*) FROM dconf_full') . ' '
	  . $node->safe_psql('postgres', 'SELECT count(*) FROM dconf_inc'),
	'50 50', 'both targets loaded');

# the source changes row 25: both syncs will want to update it
mariadb_sql(q{UPDATE dconf SET v = 2500, changed_at = '2026-01-01' WHERE id = 25});

# hold an open update of the target's row 25, start the sync, wait until it
# waits for that row; then commit the update and let the sync finish
sub with_concurrent_update
{
	my ($t) = @_;
	my $other = $node->background_psql('postgres');
	$other->query_safe("BEGIN; UPDATE $t SET v = -1 WHERE id = 25");

	my ($out, $err) = ('', '');
	my $h = IPC::Run::start(
		[ 'psql', '-X', '-qAt', '-d', $node->connstr('postgres'), '-c',
			"SELECT status || '|' || rows_updated || '|' || coalesce(error, '') FROM iact.sync_now('$t')" ],
		'>', \$out, '2>', \$err);
	ok( $node->poll_query_until('postgres',
			q{SELECT count(*) = 1 FROM pg_stat_activity WHERE query LIKE '%iact.sync_now%'
			    AND wait_event_type = 'Lock' AND wait_event = 'transactionid'}),
		"$t: the sync waits for the other session's update of the row");
	$other->query_safe('COMMIT');
	$other->quit;
	$h->finish;
	chomp $out;
	return ($out, $err);
}

# the merge of a full sync read the row before the other session changed it:
# the run fails, the change is not overwritten; the next run repairs it
my ($out, $err) = with_concurrent_update('dconf_full');
like($out, qr/^failed\|0\|a row of public\.dconf_full changed while the sync was updating it/m,
	'dconf_full: the run fails, nothing counted as written');
like($err, qr/WARNING:  sync of public\.dconf_full failed: a row of public\.dconf_full changed while the sync was updating it/,
	'dconf_full: and the warning says why');
is($node->safe_psql('postgres', 'SELECT v FROM dconf_full WHERE id = 25'),
	'-1', "dconf_full: the other session's committed value is there");
is($node->safe_psql('postgres', "SELECT status FROM iact.sync_now('dconf_full')"),
	'success', 'dconf_full: the next run succeeds');
is($node->safe_psql('postgres', 'SELECT count(*), sum(v) FROM dconf_full'),
	'50|3750', 'dconf_full: every row as in the source (row 25 repaired)');

# the incremental upsert looks the key up again once the other session is
# done (as INSERT ... ON CONFLICT would) and writes the source's row over it
($out, $err) = with_concurrent_update('dconf_inc');
is($out, 'success|1|', 'dconf_inc: the run succeeds, one row updated');
is($node->safe_psql('postgres', 'SELECT count(*), sum(v) FROM dconf_inc'),
	'50|3750', "dconf_inc: every row as in the source (the other session's value replaced)");

mariadb_sql('DROP TABLE dconf');
$node->stop;
done_testing();
