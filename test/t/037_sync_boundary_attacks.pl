# Attacks on the MariaDB boundary of issue 12 (review): the grants check
# against SHOW GRANTS lines with awkward identifiers and privileges, a frozen
# MariaDB ended by read_timeout alone (no cancel), a TLS connection under the
# non-blocking API (works, and a cancel still ends a frozen wait), and the
# cleanup of many failing runs in one backend (no socket left open, no
# session left on MariaDB).
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

# never leave MariaDB frozen for the tests that follow
my $frozen = 0;
END { mariadb_thaw() if $frozen; }

# a source database of its own, and one account per case (password 'pw')
mariadb_sql(q{
	DROP DATABASE IF EXISTS atk;
	CREATE DATABASE atk;
	CREATE TABLE atk.t (id INT PRIMARY KEY, `(` INT, v INT);
	INSERT INTO atk.t SELECT seq, seq, seq FROM seq_1_to_50;
	CREATE TABLE atk.u (id INT PRIMARY KEY, `x ON y` INT, `a``b(` INT, v INT);
	CREATE TABLE atk.`x TO y` (id INT PRIMARY KEY);
	CREATE DEFINER = root@localhost PROCEDURE atk.p() SQL SECURITY DEFINER UPDATE atk.t SET v = v + 1;
	CREATE FUNCTION atk.p() RETURNS INT SQL SECURITY INVOKER RETURN 1;
});
my %cases = (
	# a column named ( opens a "column list" that hides the UPDATE after it
	col_paren  => q{GRANT SELECT ON atk.* TO u; GRANT SELECT (`(`), UPDATE (v) ON atk.t TO u;},
	col_on     => q{GRANT SELECT ON atk.* TO u; GRANT SELECT (`x ON y`), UPDATE (v) ON atk.u TO u;},
	col_tick   => q{GRANT SELECT ON atk.* TO u; GRANT SELECT (`a``b(`), UPDATE (v) ON atk.u TO u;},
	table_to   => q{GRANT SELECT ON atk.* TO u; GRANT UPDATE ON atk.`x TO y` TO u;},
	# EXECUTE on a procedure that runs as root; a function of the same name runs as the caller
	routine_same_name => q{GRANT SELECT ON atk.* TO u; GRANT EXECUTE ON PROCEDURE atk.p TO u;
		GRANT EXECUTE ON FUNCTION atk.p TO u;},
	col_update => q{GRANT SELECT ON atk.* TO u; GRANT UPDATE (v) ON atk.t TO u;},
	wildcard   => q{GRANT SELECT ON atk.* TO u; GRANT UPDATE ON `a%`.* TO u;},
	all_global => q{GRANT ALL ON *.* TO u;},
	# refused on purpose though they write no row themselves: a trigger can fail
	# (SIGNAL) every write of the IVR, LOCK TABLES can block them, an event runs
	# unattended; CREATE TEMPORARY TABLES is harmless, refused to keep the rule
	# simple (doc/sync.md)
	trigger    => q{GRANT SELECT, TRIGGER ON atk.* TO u;},
	lock_tables => q{GRANT SELECT, LOCK TABLES ON atk.* TO u;},
	temp_tables => q{GRANT SELECT, CREATE TEMPORARY TABLES ON atk.* TO u;},
	event      => q{GRANT SELECT, EVENT ON atk.* TO u;},
	routine    => q{GRANT SELECT, CREATE ROUTINE, ALTER ROUTINE ON atk.* TO u;},
	quoted_role => q{GRANT SELECT ON atk.* TO u; CREATE ROLE `r``q'x`; GRANT UPDATE ON atk.t TO `r``q'x`;
		GRANT `r``q'x` TO u;},
	admin_role => q{GRANT SELECT ON atk.* TO u; CREATE ROLE rw_adm; GRANT INSERT ON atk.* TO rw_adm;
		GRANT rw_adm TO u WITH ADMIN OPTION;},
);
my @refused = sort keys %cases;
my $node = iact_node('sync_boundary_attacks', conf => "log_statement = none\n");
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION iact');
for my $c (@refused, 'reader')
{
	my $u = "atk_$c";
	my $g = $c eq 'reader' ? 'GRANT SELECT ON atk.* TO u;' : $cases{$c};
	$g =~ s/\bTO u\b/TO $u/g;
	mariadb_sql("DROP USER IF EXISTS $u; DROP ROLE IF EXISTS `r``q'x`;") if $c eq 'quoted_role';
	mariadb_sql("DROP USER IF EXISTS $u; DROP ROLE IF EXISTS rw_adm;") if $c eq 'admin_role';
	mariadb_sql("DROP USER IF EXISTS $u; CREATE USER $u IDENTIFIED BY 'pw'; $g");
	$node->safe_psql('postgres', qq{
		CREATE SERVER s_$c FOREIGN DATA WRAPPER iact_mariadb
			OPTIONS (host '127.0.0.1', port '$ENV{IACT_MARIADB_PORT}', dbname 'atk');
		CREATE USER MAPPING FOR CURRENT_USER SERVER s_$c OPTIONS (user '$u', password 'pw');});
}

# 1. every account that can write atk is refused, with the grant named
for my $c (@refused)
{
	my ($rc, $o, $e) = $node->psql('postgres', "SELECT iact.sync_add_table('s_$c', 't', 't_$c')");
	isnt($rc, 0, "$c: the registration is refused");
	like($e, qr/ERROR:  MariaDB account "atk_$c" of server "s_$c" can write to the source/,
		"$c: refused as able to write the source") or diag($e);
}
{
	my ($rc, $o, $e) = $node->psql('postgres', "SELECT iact.sync_add_table('s_reader', 't', 't_reader')");
	is($rc, 0, 'reader: a SELECT-only account is accepted') or diag($e);
	$node->safe_psql('postgres', "SELECT count(*) FROM iact.sync_now('t_reader')");
	is($node->safe_psql('postgres', 'SELECT count(*) FROM t_reader'), '50', 'reader: 50 rows synced');
}

# 1b. a role granted to PUBLIC (MariaDB 10.11): every account may SET ROLE it,
# so one that can write atk makes every account able to; revoked at once
{
	my $ok = eval {
		mariadb_sql('CREATE ROLE atk_pub_rw; GRANT UPDATE ON atk.* TO atk_pub_rw; GRANT atk_pub_rw TO PUBLIC;');
		1;
	};
	my $e = $@;
	ok($ok, 'a role can be granted to PUBLIC') or diag($e);
	my ($rc, $o, $err) = $node->psql('postgres', "SELECT count(*) FROM iact.sync_source_columns('s_reader', 't')");
	mariadb_sql('DROP ROLE atk_pub_rw;');
	isnt($rc, 0, 'a role held through PUBLIC that can write atk: refused');
	like($err, qr/can write to the source.*atk_pub_rw/s, 'the refusal names the role held through PUBLIC') or diag($err);
}

# 2. many failing runs in one backend: no socket left open, no session left on MariaDB
# (sync_now records a failed run in iact.sync_runs; a refused grants check throws)
{
	# a run that fails mid-fetch: the target refuses the 25th row
	$node->safe_psql('postgres', q{
		TRUNCATE t_reader; UPDATE iact.sync_tables SET last_watermark = NULL WHERE target_table = 't_reader';
		ALTER TABLE t_reader ADD CONSTRAINT no_25 CHECK (id <> 25);});
	my ($in, $out, $err) = ('', '', '');
	my $h = IPC::Run::start([ 'psql', '-X', '-At', '-d', $node->connstr('postgres') ],
		'<', \$in, '>', \$out, '2>', \$err);
	$in .= "SELECT 'pid=' || pg_backend_pid();\n";
	$h->pump until $out =~ /pid=(\d+)/;
	my $pid = $1;
	# the sockets the backend has open (its client connection at least)
	my $sockets = sub {
		opendir(my $d, "/proc/$pid/fd") or die "/proc/$pid/fd: $!";
		my $n = grep { (readlink("/proc/$pid/fd/$_") // '') =~ /^socket:/ } readdir $d;
		closedir $d;
		return $n;
	};
	my $before = $sockets->();
	$in .= q{DO $$
		DECLARE n_grant int := 0;
		BEGIN
			FOR i IN 1..100 LOOP
				PERFORM iact.sync_now('t_reader');
				BEGIN
					PERFORM iact.sync_source_columns('s_all_global', 't');
				EXCEPTION WHEN insufficient_privilege THEN n_grant := n_grant + 1;
				END;
			END LOOP;
			RAISE NOTICE 'refused=%', n_grant;
		END $$;
		SELECT 'done';
};
	$h->pump until $out =~ /done/ || $err =~ /ERROR/;
	my $after = $sockets->();
	$in .= "\\q\n";
	$h->finish;
	like($err, qr/refused=100\b/, '100 grants checks refused') or diag($err);
	is($node->safe_psql('postgres',
		"SELECT count(*) FROM iact.sync_runs WHERE target_table = 'public.t_reader' AND status <> 'success' AND error LIKE '%no_25%'"),
		'100', '100 runs failed mid-fetch');
	is($after, $before, "200 failing runs: the backend has as many sockets open as before ($before)");
	my $left;
	for (1 .. 50)
	{
		$left = mariadb_sql(
			"SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE USER IN ('atk_reader', 'atk_all_global')");
		last if $left eq '0';
		sleep 0.1;
	}
	is($left, '0', 'no session of those accounts is left on MariaDB');
	$node->safe_psql('postgres', 'ALTER TABLE t_reader DROP CONSTRAINT no_25');
}

# 3. frozen MariaDB, no cancel: read_timeout ends the run with MariaDB's error
{
	$node->safe_psql('postgres', q{
		ALTER SERVER s_reader OPTIONS (ADD read_timeout '2', ADD connect_timeout '2');
		TRUNCATE t_reader; UPDATE iact.sync_tables SET last_watermark = NULL WHERE target_table = 't_reader';});
	mariadb_freeze();
	$frozen = 1;
	my $t0 = time;
	my ($rc, $o, $e) = $node->psql('postgres',
		"SET statement_timeout = '60s'; SELECT count(*) FROM iact.sync_now('t_reader')");
	my $s = time - $t0;
	mariadb_thaw();
	$frozen = 0;
	is($rc, 0, 'frozen, connect_timeout 2 s: sync_now returns (no statement_timeout)') or diag($e);
	like($node->safe_psql('postgres',
		"SELECT status || ' ' || error FROM iact.sync_runs WHERE target_table = 'public.t_reader' ORDER BY id DESC LIMIT 1"),
		qr/^failed .*MariaDB server "s_reader".*MariaDB error 2013/, 'frozen: the run failed with the MariaDB client\'s error');
	cmp_ok($s, '<', 30, sprintf('frozen: failed after %.1f s (generous bound: 2 s timeouts)', $s));
}

# 3b. frozen mid-run, no cancel: read_timeout (2 s) ends the run with MariaDB's error
{
	mariadb_sql(q{
		CREATE TABLE atk.big (id INT PRIMARY KEY, changed_at DATETIME NOT NULL, txt VARCHAR(40));
		INSERT INTO atk.big SELECT seq, '2024-01-01' + INTERVAL seq SECOND, CONCAT('row ', seq)
		FROM seq_1_to_300000;});
	$node->safe_psql('postgres', q{
		ALTER SERVER s_reader OPTIONS (SET read_timeout '600', SET connect_timeout '600');
		SELECT iact.sync_add_table('s_reader', 'big', 'big', watermark_column => 'changed_at',
			batch_size => 500, retention_days => 0, lookback => 5);
		ALTER SERVER s_reader OPTIONS (SET read_timeout '2');});
	my ($out, $err) = ('', '');
	my $h = IPC::Run::start([ 'psql', '-X', '-d', $node->connstr('postgres'), '-c', "CALL iact.sync_run('big')" ],
		'>', \$out, '2>', \$err);
	ok($node->poll_query_until('postgres',
		"SELECT coalesce((SELECT rows_read FROM iact.sync_runs WHERE target_table = 'public.big' AND status = 'running'), 0) >= 20000"),
		'read_timeout: the run is under way');
	mariadb_freeze();
	$frozen = 1;
	my $t0 = time;
	my $status = '';
	while (time - $t0 < 60)
	{
		$status = $node->safe_psql('postgres',
			"SELECT status || ' ' || coalesce(error, '') FROM iact.sync_runs WHERE target_table = 'public.big' ORDER BY id DESC LIMIT 1");
		last unless $status =~ /^running/;
		sleep 0.2;
	}
	my $s = time - $t0;
	mariadb_thaw();
	$frozen = 0;
	$h->finish;
	like($status, qr/^(failed|partial) .*MariaDB error 2013/, 'read_timeout: the frozen run ended with MariaDB\'s lost-connection error')
	  or diag($status);
	cmp_ok($s, '<', 30, sprintf('read_timeout: it ended %.1f s after the freeze (generous bound: read_timeout 2 s)', $s));
	cmp_ok($node->safe_psql('postgres', 'SELECT count(*) FROM big'), '<', 300000, 'read_timeout: it ended mid-run');
}

# 4. TLS under the non-blocking API: a run works, and a cancel ends a frozen wait
{
	$node->safe_psql('postgres', qq{
		ALTER SERVER s_reader OPTIONS (SET read_timeout '600', SET connect_timeout '600',
			ADD ssl_mode 'verify', ADD ssl_ca '$ENV{IACT_MARIADB_SSL_CA}');
		TRUNCATE t_reader; UPDATE iact.sync_tables SET last_watermark = NULL WHERE target_table = 't_reader';});
	$node->safe_psql('postgres', "SELECT count(*) FROM iact.sync_now('t_reader')");
	is($node->safe_psql('postgres', 'SELECT count(*) FROM t_reader'), '50', 'TLS: 50 rows synced');
	$node->safe_psql('postgres',
		"TRUNCATE t_reader; UPDATE iact.sync_tables SET last_watermark = NULL WHERE target_table = 't_reader'");
	mariadb_freeze();
	$frozen = 1;
	my $err = '';
	my $h = IPC::Run::start([ 'psql', '-X', '-d', $node->connstr('postgres'), '-c',
		"SELECT count(*) FROM iact.sync_now('t_reader')" ], '>', \my $out, '2>', \$err);
	my $pid;
	ok($node->poll_query_until('postgres',
		"SELECT true FROM pg_stat_activity WHERE query LIKE '%sync_now(''t_reader'')%' AND wait_event_type = 'Extension'"),
		'TLS frozen: the run waits for MariaDB');
	$node->safe_psql('postgres',
		"SELECT pg_cancel_backend(pid) FROM pg_stat_activity WHERE query LIKE '%sync_now(''t_reader'')%' AND pid <> pg_backend_pid()");
	my $t0 = time;
	while (time - $t0 < 30) { $h->pump_nb; last if $err =~ /canceling statement/; sleep 0.05; }
	my $s = time - $t0;
	$h->finish;
	mariadb_thaw();
	$frozen = 0;
	like($err, qr/canceling statement due to user request/, 'TLS frozen: the cancel ended the run');
	cmp_ok($s, '<', 10, sprintf('TLS frozen: the error came %.2f s after the cancel', $s));
}

$node->stop;
done_testing();
