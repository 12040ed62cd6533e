# test/perl/IactTest.pm -- helpers shared by iact's TAP tests.
#
# iact_node(NAME, %opts) returns an initialised (not started)
# PostgreSQL::Test::Cluster with shared_preload_libraries = 'iact'.
# Extra postgresql.conf lines can be passed as conf => "...".
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
		"shared_preload_libraries = 'iact'\n" . ($opts{conf} // ''));
	return $node;
}

1;
