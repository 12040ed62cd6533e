# The sync worker when iact.database does not exist: it cannot connect, so
# each start ends in FATAL; it must back off instead of restarting every
# 10 seconds forever, and say once why.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use IactTest;

my $node = iact_node('nodb', conf => "iact.database = 'nosuchdb'\n");
$node->start;
sleep 45;
my $log = slurp_file($node->logfile);
my $fatals = () = $log =~ /FATAL:  database "nosuchdb" does not exist/g;
# without back-off: a start every 10 s (about 5 in 45 s); with it: at 0, ~20 and ~50 s
cmp_ok($fatals, '>=', 1, "the worker tried to connect ($fatals times in 45 s)");
cmp_ok($fatals, '<=', 3, 'and backs off instead of restarting every 10 s');
like($log, qr/iact sync worker: could not connect to database "nosuchdb" at its last start; next try in 10 s/,
	'it says once why it waits');
is($node->safe_psql('postgres', 'SELECT 1'), '1', 'the server itself is fine');
$node->stop;
done_testing();
