# The grants check against MariaDB as DBAs install it (issue 12): the
# harness's MariaDB has the default test database and PUBLIC's grants on it
# (mariadb-install-db without --skip-test-db); this test also starts a second
# MariaDB installed with --skip-test-db, the way the suite used to run.
# With both, a SELECT-only account and an account reading through its default
# role are accepted and sync; write grants outside the source are reported
# (a NOTICE at registration, iact.sync_runs.account_write_elsewhere), never
# refused; an account whose role can write the IVR is refused, and the
# refusal names only that grant.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use IPC::Run;
use IactTest;
use IactMariaDB;

plan skip_all => 'MariaDB harness not running (run through test/check.sh)'
  unless $ENV{IACT_MARIADB_PORT} && $ENV{IACT_MARIADB_DIR};

my $root = $ENV{IACT_ROOT};

# a second MariaDB, installed with --skip-test-db, stopped at the end whatever happens
my $dir2 = "$PostgreSQL::Test::Utils::tmp_check/mariadb_skip_test_db";
my ($out, $err) = ('', '');
IPC::Run::run([ 'bash', '-c',
	". '$root/test/harness/lib.sh' && . '$root/test/harness/mariadb.sh' && IACT_MARIADB_SKIP_TEST_DB=1 mariadb_start '$dir2' && echo \"\$IACT_MARIADB_PORT \$IACT_MARIADB_SOCKET\"" ],
	'<', \undef, '>', \$out, '2>', \$err)
  or die "could not start the second MariaDB: $err";
my ($port2, $sock2) = split ' ', $out;
END
{
	if ($dir2 && open my $fh, '<', "$dir2/mariadbd.pid")
	{
		my $pid = <$fh>;
		chomp $pid;
		kill 'TERM', $pid;
	}
}
like($port2, qr/^\d+$/, "a second MariaDB, installed with --skip-test-db, on port $port2");

sub sql2
{
	my ($sql) = @_;
	my ($o, $e);
	IPC::Run::run([ 'mariadb', '--no-defaults', '--protocol=socket', "--socket=$sock2", '-uroot',
		'--batch', '--skip-column-names', 'ivr' ], '<', \$sql, '>', \$o, '2>', \$e)
	  or die "MariaDB 2: $e";
	chomp $o;
	return $o;
}
is(sql2("SELECT COUNT(*) FROM mysql.db WHERE Db LIKE 'test%'"), '0', 'the second MariaDB has no test grants');
is(mariadb_sql("SELECT COUNT(*) FROM mysql.db WHERE User = 'PUBLIC' AND Db IN ('test', 'test\\\\_%')"),
	'2', "the harness's MariaDB has PUBLIC's grants on test and test\\_% (default install)");

my $node = iact_node('sync_grants', conf => "log_statement = none\n");
$node->start;
my $pw = $ENV{IACT_MARIADB_PASSWORD};
$node->safe_psql('postgres', qq{
	CREATE EXTENSION iact;
	CREATE SERVER ivr_default FOREIGN DATA WRAPPER iact_mariadb
		OPTIONS (host '127.0.0.1', port '$ENV{IACT_MARIADB_PORT}', dbname 'ivr');
	CREATE SERVER ivr_skip FOREIGN DATA WRAPPER iact_mariadb
		OPTIONS (host '127.0.0.1', port '$port2', dbname 'ivr');
	CREATE SERVER ivr_role FOREIGN DATA WRAPPER iact_mariadb
		OPTIONS (host '127.0.0.1', port '$ENV{IACT_MARIADB_PORT}', dbname 'ivr');
	CREATE SERVER ivr_role_w FOREIGN DATA WRAPPER iact_mariadb
		OPTIONS (host '127.0.0.1', port '$ENV{IACT_MARIADB_PORT}', dbname 'ivr');
	CREATE USER MAPPING FOR CURRENT_USER SERVER ivr_default
		OPTIONS (user '$ENV{IACT_MARIADB_USER}', password \$pw\$$pw\$pw\$);
	CREATE USER MAPPING FOR CURRENT_USER SERVER ivr_skip
		OPTIONS (user '$ENV{IACT_MARIADB_USER}', password \$pw\$$pw\$pw\$);
	CREATE USER MAPPING FOR CURRENT_USER SERVER ivr_role
		OPTIONS (user '$ENV{IACT_MARIADB_ROLE_READER_USER}', password 'role-pw');
	CREATE USER MAPPING FOR CURRENT_USER SERVER ivr_role_w
		OPTIONS (user '$ENV{IACT_MARIADB_ROLE_WRITER_USER}', password 'role-pw');
});

# register queues from a server as target t; returns psql's stderr (the NOTICEs)
sub register
{
	my ($server, $target) = @_;
	my ($rc, $o, $e) = $node->psql('postgres', "SELECT iact.sync_add_table('$server', 'queues', '$target')");
	is($rc, 0, "$server: queues registered as $target") or diag($e);
	return $e;
}

sub last_run
{
	my ($target) = @_;
	return $node->safe_psql('postgres',
		"SELECT status || '|' || coalesce(account_write_elsewhere, '') || '|' || coalesce(error, '') FROM iact.sync_runs WHERE target_table = 'public.$target' ORDER BY id DESC LIMIT 1"
	);
}

# 1. --skip-test-db: nothing to report
{
	my $notice = register('ivr_skip', 'q_skip');
	unlike($notice, qr/can write outside/, 'skip-test-db: no NOTICE at registration');
	$node->safe_psql('postgres', "SELECT count(*) FROM iact.sync_now('q_skip')");
	is(last_run('q_skip'), 'success||', 'skip-test-db: the run succeeds and records no write grants elsewhere');
	is($node->safe_psql('postgres', 'SELECT count(*) FROM q_skip'), sql2('SELECT COUNT(*) FROM queues'),
		'skip-test-db: queues synced');
}

# 2. the default install: the SELECT-only account is accepted, PUBLIC's test grants reported
{
	my $notice = register('ivr_default', 'q_default');
	like($notice, qr/NOTICE:  MariaDB account "iact_reader" of server "ivr_default" can write outside the source databases/,
		'default install: a NOTICE at registration');
	like($notice, qr/DETAIL:  Its grants include: .*ON `test`\.\* TO PUBLIC; .*ON `test\\_%`\.\* TO PUBLIC\./,
		"default install: the NOTICE names PUBLIC's grants on test and test\\_%");
	$node->safe_psql('postgres', "SELECT count(*) FROM iact.sync_now('q_default')");
	like(last_run('q_default'), qr/^success\|[^|]*INSERT[^|]*ON `test`\.\* TO PUBLIC[^|]*\|$/,
		'default install: the run succeeds and records the grants elsewhere');
	is($node->safe_psql('postgres', 'SELECT count(*) FROM q_default'), mariadb_sql('SELECT COUNT(*) FROM queues'),
		'default install: queues synced');
}

# 3. an account reading through its default role is accepted; its other role,
# which writes `scratch`, is reported with PUBLIC's grants
{
	my $notice = register('ivr_role', 'q_role');
	like($notice, qr/ON `scratch`\.\* TO `scratch_rw`/, 'role reader: its non-default role is inspected and reported');
	$node->safe_psql('postgres', "SELECT count(*) FROM iact.sync_now('q_role')");
	like(last_run('q_role'), qr/^success\|.*ON `scratch`\.\* TO `scratch_rw`.*\|$/,
		'role reader: the run succeeds and records its role\'s grants elsewhere');
}

# 4. a role that can write the IVR (not the default one, held through another role) is refused
{
	my ($rc, $o, $e) = $node->psql('postgres', "SELECT iact.sync_add_table('ivr_role_w', 'queues', 'q_role_w')");
	isnt($rc, 0, 'role writer: the registration is refused');
	like($e, qr/ERROR:  MariaDB account "iact_role_writer" of server "ivr_role_w" can write to the source/,
		'role writer: refused as able to write the source');
	like($e, qr/DETAIL:  Its grants that can write the source databases \(`ivr`\) include: UPDATE ON `ivr`\.`calls` TO `ivr_fix`\./,
		'role writer: the detail names only the nested role\'s grant on the IVR');
	unlike($e, qr/test/, 'role writer: nothing about the test database in the refusal');
}

$node->stop;
done_testing();
