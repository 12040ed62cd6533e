# test/perl/IactMariaDB.pm -- TAP helpers for tests that sync from the real
# MariaDB that test/check.sh starts (test/harness/mariadb.sh).
#
# mariadb_sql($sql)           run SQL as MariaDB's root account, return stdout
# mariadb_kill()              stop MariaDB abruptly (SIGKILL)
# mariadb_restart()           start it again on the same data, port and socket
# mariadb_signal($sig)        send a signal to mariadbd (STOP / CONT)
# ivr_server($node, $db)      CREATE SERVER ivr + user mapping (the SELECT-only account)
# bulk_fill($from, $to)       insert rows $from..$to into ivr.bulk, newer than the rest
# mariadb_freeze(), mariadb_thaw()  SIGSTOP / SIGCONT mariadbd
# same_as_source($node, $db, $table, $cols)
#                             [source count, target count, source checksum,
#                              target checksum, target duplicates] for a
#                              comparison of a synced table
package IactMariaDB;

use strict;
use warnings;
use Exporter 'import';
use IPC::Run;

our @EXPORT = qw(mariadb_sql mariadb_kill mariadb_restart mariadb_signal mariadb_freeze
  mariadb_thaw ivr_server bulk_fill same_as_source);

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

# $cols: the columns, each rendered the same way as text on both sides.  The
# checksum is the sum of every row's MD5 prefix (32 bits): no string as big as
# the table (GROUP_CONCAT is cut at max_allowed_packet), the same whatever the
# order; duplicates are counted apart.
sub same_as_source
{
	my ($node, $db, $table, $cols) = @_;
	my $list = join(', ', @$cols);
	my ($scount, $ssum) = split /\t/, mariadb_sql(qq{
		SELECT COUNT(*), COALESCE(SUM(CAST(CONV(LEFT(MD5(CONCAT_WS('|', $list)), 8), 16, 10) AS UNSIGNED)), 0)
		FROM $table;});
	my ($tcount, $tsum, $dups) = split /\|/, $node->safe_psql($db, qq{
		SELECT count(*), coalesce(sum(('x' || left(md5(concat_ws('|', $list)), 8))::bit(32)::bigint), 0),
		       count(*) - count(DISTINCT $cols->[0]) FROM $table});
	return ($scount, $tcount, $ssum, $tsum, $dups);
}

# freeze / thaw mariadbd (SIGSTOP / SIGCONT): it keeps accepting TCP
# connections in the kernel but never answers
sub mariadb_freeze { mariadb_signal('STOP'); return; }
sub mariadb_thaw   { mariadb_signal('CONT'); return; }

1;
