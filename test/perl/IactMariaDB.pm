# test/perl/IactMariaDB.pm -- TAP helpers for tests that sync from the real
# MariaDB that test/check.sh starts (test/harness/mariadb.sh).
#
# mariadb_sql($sql)           run SQL as MariaDB's root account, return stdout
# mariadb_kill()              stop MariaDB abruptly (SIGKILL)
# mariadb_restart()           start it again on the same data, port and socket
# mariadb_signal($sig)        send a signal to mariadbd (STOP / CONT)
# ivr_server($node, $db)      CREATE SERVER ivr + user mapping (the SELECT-only account)
# bulk_fill($from, $to)       insert rows $from..$to into ivr.bulk, newer than the rest
# same_as_source($node, $db, $table, $cols)
#                             [source count, target count, source md5, target md5,
#                              target duplicates] for a comparison of a synced table
package IactMariaDB;

use strict;
use warnings;
use Exporter 'import';
use IPC::Run;

our @EXPORT = qw(mariadb_sql mariadb_kill mariadb_restart mariadb_signal ivr_server
  bulk_fill same_as_source);

sub _shell
{
	my ($cmd) = @_;
	my $root = $ENV{IACT_ROOT} or die "IACT_ROOT is not set";
	my ($out, $err);
	IPC::Run::run([ 'bash', '-c',
		". '$root/test/harness/lib.sh'; . '$root/test/harness/mariadb.sh'; $cmd" ],
		'<', \undef, '>', \$out, '2>', \$err)
	  or die "MariaDB helper '$cmd' failed: $err";
	return $out;
}

sub mariadb_sql
{
	my ($sql) = @_;
	my ($out, $err);
	IPC::Run::run([ 'mariadb', '--no-defaults', '--protocol=socket',
		"--socket=$ENV{IACT_MARIADB_SOCKET}", '-uroot', '--default-character-set=utf8mb4',
		'--batch', '--skip-column-names', 'ivr' ],
		'<', \$sql, '>', \$out, '2>', \$err)
	  or die "MariaDB: $err";
	chomp $out;
	return $out;
}

sub mariadb_kill    { _shell('mariadb_kill'); return; }
sub mariadb_restart { _shell('_mariadb_launch'); return; }

sub mariadb_signal
{
	my ($sig) = @_;
	open my $fh, '<', "$ENV{IACT_MARIADB_DIR}/mariadbd.pid" or die "no mariadbd.pid: $!";
	my $pid = <$fh>;
	close $fh;
	chomp $pid;
	kill $sig, $pid;
	return;
}

sub ivr_server
{
	my ($node, $db, %opt) = @_;
	my $pw = $ENV{IACT_MARIADB_PASSWORD};
	$pw =~ s/'/''/g;
	my $extra = $opt{server_options} ? ", $opt{server_options}" : '';
	$node->safe_psql($db, qq{
		CREATE SERVER ivr FOREIGN DATA WRAPPER iact_mariadb
		  OPTIONS (host '127.0.0.1', port '$ENV{IACT_MARIADB_PORT}', dbname 'ivr'$extra);
		CREATE USER MAPPING FOR CURRENT_USER SERVER ivr
		  OPTIONS (user '$ENV{IACT_MARIADB_USER}', password '$pw');});
	return;
}

sub bulk_fill
{
	my ($from, $to) = @_;
	# new rows are newer than every existing one, as a watermark sync expects
	mariadb_sql(qq{SET \@m = (SELECT COALESCE(MAX(changed_at), '2024-01-01') FROM bulk);
		INSERT INTO bulk (id, grp, txt, amount, changed_at)
		SELECT seq, seq % 7, CONCAT('row ', seq), seq / 100, \@m + INTERVAL (seq - $from + 1) SECOND
		FROM seq_${from}_to_${to};});
	return;
}

# $cols: the columns, in an order both sides render the same way as text
sub same_as_source
{
	my ($node, $db, $table, $cols) = @_;
	my $list = join(', ', @$cols);
	my ($scount, $smd5) = split /\t/, mariadb_sql(qq{SET SESSION group_concat_max_len = 1073741824;
		SELECT COUNT(*), MD5(COALESCE(GROUP_CONCAT(CONCAT_WS('|', $list) ORDER BY $cols->[0] SEPARATOR ','), ''))
		FROM $table;});
	my ($tcount, $tmd5, $dups) = split /\|/, $node->safe_psql($db, qq{
		SELECT count(*), md5(coalesce(string_agg(concat_ws('|', $list), ',' ORDER BY $cols->[0]), '')),
		       count(*) - count(DISTINCT $cols->[0]) FROM $table});
	return ($scount, $tcount, $smd5, $tmd5, $dups);
}

1;
