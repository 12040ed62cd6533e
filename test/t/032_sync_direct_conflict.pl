# A target row changed by another session between the sync's read and its
# write, on the direct write path (src/sync_direct.c): the sync waits for the
# other transaction, then fails the run with a serialization failure instead
# of overwriting or losing the change; the next run repairs the target.  For
# the merge of a full sync and for the incremental upsert.  The other
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

for my $t (qw(dconf_full dconf_inc))
{
	my $other = $node->background_psql('postgres');
	$other->query_safe("BEGIN; UPDATE $t SET v = -1 WHERE id = 25");

	my ($out, $err) = ('', '');
	my $h = IPC::Run::start(
		[ 'psql', '-X', '-qAt', '-d', $node->connstr('postgres'), '-c',
			"SELECT status || '|' || coalesce(error, '') FROM iact.sync_now('$t')" ],
		'>', \$out, '2>', \$err);
	ok( $node->poll_query_until('postgres',
			q{SELECT count(*) = 1 FROM pg_stat_activity WHERE query LIKE '%iact.sync_now%'
			    AND wait_event_type = 'Lock' AND wait_event = 'transactionid'}),
		"$t: the sync waits for the other session's update of the row");
	$other->query_safe('COMMIT');
	$other->quit;
	$h->finish;

	like($out, qr/^failed\|.*changed while the sync was updating it/m,
		"$t: the run fails, the change is not overwritten");
	like($err, qr/WARNING:  sync of public\.$t failed: a row of public\.$t changed while the sync was updating it/,
		"$t: and the warning says why");
	is( $node->safe_psql('postgres',
			"SELECT status || ' ' || rows_updated FROM iact.sync_runs WHERE target_table = 'public.$t' ORDER BY id DESC LIMIT 1"),
		'failed 0', "$t: recorded as failed, nothing counted as written");
	is($node->safe_psql('postgres', "SELECT v FROM $t WHERE id = 25"),
		'-1', "$t: the other session's committed value is there");

	# the next run repairs the row
	is($node->safe_psql('postgres', "SELECT status FROM iact.sync_now('$t')"),
		'success', "$t: the next run succeeds");
	is($node->safe_psql('postgres', "SELECT v FROM $t WHERE id = 25"),
		'2500', "$t: and the row is the source's again");
	is($node->safe_psql('postgres', "SELECT count(*), sum(v) FROM $t"),
		'50|3750', "$t: every row as in the source");
}

mariadb_sql('DROP TABLE dconf');
$node->stop;
done_testing();
