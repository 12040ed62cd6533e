# test/perl/IactTest.pm -- helpers shared by iact's TAP tests.
#
# iact_node(NAME, %opts) returns an initialised (not started)
# PostgreSQL::Test::Cluster with shared_preload_libraries = 'iact' and the
# sync worker's schedule off (iact.sync_enabled = off), so that a test's own
# sync calls never race the worker; a test of the worker turns it on in
# conf.  Extra postgresql.conf lines can be passed as conf => "...".
package IactTest;

use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use Exporter 'import';

our @EXPORT = qw(iact_node);

sub iact_node
{
	my ($name, %opts) = @_;
	my $node = PostgreSQL::Test::Cluster->new($name);
	$node->init(%{ $opts{init} // {} });
	$node->append_conf('postgresql.conf',
		"shared_preload_libraries = 'iact'\niact.sync_enabled = off\n" . ($opts{conf} // ''));
	return $node;
}

1;
