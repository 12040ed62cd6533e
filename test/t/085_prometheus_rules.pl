# test/t/085_prometheus_rules.pl -- the shipped alerting rules
# (monitoring/prometheus/iact-rules.yml): `promtool check rules` accepts them,
# every unit-test file under monitoring/prometheus/tests passes
# `promtool test rules`, and every alert of the rules file is expected to
# fire in at least one of those tests (and to stay silent in another).
# promtool comes with Debian's prometheus package (test/harness/lib.sh).
use strict;
use warnings;
use Test::More;
use File::Basename;

my $root = $ENV{IACT_ROOT} // dirname(__FILE__) . '/../..';
my $rules = "$root/monitoring/prometheus/iact-rules.yml";
my @tests = sort glob("$root/monitoring/prometheus/tests/*.yml");
my $promtool = '/usr/bin/promtool';

ok(-x $promtool, 'promtool is installed (Debian package prometheus)')
  or BAIL_OUT('no promtool');
ok(scalar(@tests) > 0, 'there are rule unit tests');

my $out = `$promtool check rules $rules 2>&1`;
is($?, 0, 'promtool check rules accepts iact-rules.yml') or diag($out);
my @alerts = do {
	open(my $fh, '<', $rules) or die "$rules: $!";
	map { /^\s*-\s*alert:\s*(\S+)/ ? ($1) : () } <$fh>;
};
like($out, qr/SUCCESS: ${\ scalar(@alerts)} rules found/, scalar(@alerts) . ' alerts, all of them rules promtool counted');

# promtool resolves rule_files relative to the test file
for my $t (@tests)
{
	my $name = basename($t);
	my $res = `cd $root/monitoring/prometheus/tests && $promtool test rules $name 2>&1`;
	is($?, 0, "promtool test rules $name") or diag($res);
}

# every alert has a test where it fires and one where it must not
my (%fires, %silent);
for my $t (@tests)
{
	open(my $fh, '<', $t) or die "$t: $!";
	my $text = do { local $/; <$fh> };
	while ($text =~ /alertname:\s*(\S+)\s*\n\s*exp_alerts:(\s*\[\])?/g)
	{
		if (defined $2) { $silent{$1} = 1 } else { $fires{$1} = 1 }
	}
}
for my $a (@alerts)
{
	ok($fires{$a} && $silent{$a}, "alert $a is tested firing and not firing");
}
my %known = map { $_ => 1 } @alerts;
is(join(' ', grep { !$known{$_} } sort(keys %fires, keys %silent)), '',
	'the tests name no alert the rules file lacks');
done_testing();
