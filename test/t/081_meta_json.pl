# test/t/081_meta_json.pl -- META.json against the PGXN Meta Spec 1.0.x, and
# the release's version in the places that carry it.
#
# The spec's rules checked here: the required keys (name, version, abstract,
# maintainer, license, provides, meta-spec), no top-level key outside the
# spec but x_*, meta-spec.version 1.0.x, SemVer versions, a known license
# string (or a list of them, or names mapped to URIs), every provided
# extension with an existing file and a SemVer version, prereqs by phase and
# relationship with version ranges, release_status, tags, no_index.  Then the
# release's own facts: version = iact.control's default_version (as x.y.0) =
# the top of debian/changelog = the top release of CHANGELOG.md; PostgreSQL
# prereq = the majors the Makefile accepts = debian/pgversions, and the
# Makefile really refuses another major (MAJORVERSION=16 on the command line
# stands for a pg_config of 16).  The validator is also shown to reject broken
# copies (it can fail).
use strict;
use warnings;
use Test::More;
use JSON::PP;
use IPC::Run;

my $root = $ENV{IACT_ROOT} // '.';

sub slurp
{
	my ($f) = @_;
	open my $fh, '<', "$root/$f" or die "$root/$f: $!";
	local $/;
	return scalar <$fh>;
}

my $semver = qr/^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(?:-[0-9A-Za-z.-]+)?(?:\+[0-9A-Za-z.-]+)?$/;
my $one_range = qr/^(?:(?:[=!]=|[<>]=?)\s*)?(?:(?:0|[1-9]\d*)\.(?:0|[1-9]\d*)\.(?:0|[1-9]\d*)(?:-[0-9A-Za-z.-]+)?(?:\+[0-9A-Za-z.-]+)?)$/;
my %licenses = map { $_ => 1 } qw(agpl_3 apache_1_1 apache_2_0 artistic_1 artistic_2 bsd freebsd gfdl_1_2
  gfdl_1_3 gpl_1 gpl_2 gpl_3 lgpl_2_1 lgpl_3_0 mit mozilla_1_0 mozilla_1_1 openssl perl_5 postgresql
  qpl_1_0 ssleay sun zlib open_source restricted unrestricted unknown);
my %top = map { $_ => 1 } qw(name version abstract maintainer license provides meta-spec description
  generated_by tags no_index prereqs release_status resources);
my @required = qw(name version abstract maintainer license provides meta-spec);

sub version_range_ok
{
	my ($r) = @_;
	return 1 if !ref $r && "$r" eq '0';
	return 0 if ref $r;
	return !grep { $_ !~ $one_range } split /\s*,\s*/, $r;
}

# the errors of a decoded META.json against the spec (empty list: valid)
sub meta_errors
{
	my ($m) = @_;
	my @e;
	return ('not a JSON object') unless ref $m eq 'HASH';
	push @e, map { "missing required key '$_'" } grep { !exists $m->{$_} } @required;
	push @e, map { "key '$_' is not in the spec (custom keys start with x_)" }
	  grep { !$top{$_} && !/^[xX]_./ } keys %$m;
	push @e, 'name must be a term of 2+ characters without slash, backslash, control or space'
	  unless defined $m->{name} && !ref $m->{name} && $m->{name} =~ /^[^\/\\\s\x00-\x1f]{2,}$/;
	push @e, 'version must be SemVer' unless defined $m->{version} && !ref $m->{version} && $m->{version} =~ $semver;
	push @e, 'abstract must be a non-empty string' unless defined $m->{abstract} && !ref $m->{abstract} && length $m->{abstract};
	my $mt = $m->{maintainer};
	push @e, 'maintainer must be a non-empty string or list of them'
	  unless defined $mt && ((!ref $mt && length $mt) || (ref $mt eq 'ARRAY' && @$mt && !grep { ref $_ || !length $_ } @$mt));
	my $l = $m->{license};
	push @e, 'license must be a known license string, a list of them, or names mapped to URIs'
	  unless defined $l
	  && ((!ref $l && $licenses{$l})
		|| (ref $l eq 'ARRAY' && @$l && !grep { ref $_ || !$licenses{$_} } @$l)
		|| (ref $l eq 'HASH' && %$l && !grep { ref $_ || !m{^[a-z][a-z0-9+.-]*://} } values %$l));
	my $ms = $m->{'meta-spec'};
	push @e, 'meta-spec.version must be 1.0.x'
	  unless ref $ms eq 'HASH' && defined $ms->{version} && $ms->{version} =~ /^1\.0\.\d+$/;
	push @e, 'meta-spec has keys outside version, url and x_*'
	  if ref $ms eq 'HASH' && grep { !/^(version|url)$/ && !/^[xX]_./ } keys %$ms;
	my $p = $m->{provides};
	if (ref $p ne 'HASH' || !%$p) { push @e, 'provides must name at least one extension'; }
	else
	{
		for my $x (sort keys %$p)
		{
			my $v = $p->{$x};
			if (ref $v ne 'HASH') { push @e, "provides.$x must be an object"; next; }
			push @e, "provides.$x.file is required and must exist in the tree"
			  unless defined $v->{file} && -f "$root/$v->{file}";
			push @e, "provides.$x.docfile must exist in the tree" if defined $v->{docfile} && !-f "$root/$v->{docfile}";
			push @e, "provides.$x.version is required and must be SemVer"
			  unless defined $v->{version} && $v->{version} =~ $semver;
			push @e, "provides.$x has keys outside the spec"
			  if grep { !/^(file|version|abstract|docfile)$/ && !/^[xX]_./ } keys %$v;
		}
	}
	if (exists $m->{prereqs})
	{
		my $pr = $m->{prereqs};
		if (ref $pr ne 'HASH' || !%$pr) { push @e, 'prereqs must be a non-empty object'; }
		else
		{
			for my $phase (sort keys %$pr)
			{
				next if $phase =~ /^[xX]_/;
				if ($phase !~ /^(configure|build|test|runtime|develop)$/) { push @e, "prereqs.$phase is not a phase"; next; }
				for my $rel (sort keys %{ $pr->{$phase} })
				{
					next if $rel =~ /^[xX]_/;
					if ($rel !~ /^(requires|recommends|suggests|conflicts)$/)
					{
						push @e, "prereqs.$phase.$rel is not a relationship";
						next;
					}
					while (my ($name, $range) = each %{ $pr->{$phase}{$rel} })
					{
						push @e, "prereqs.$phase.$rel.$name: bad version range" unless version_range_ok($range);
					}
				}
			}
		}
	}
	push @e, 'release_status must be stable, testing or unstable'
	  if exists $m->{release_status} && $m->{release_status} !~ /^(stable|testing|unstable)$/;
	push @e, 'tags must be a list of non-empty strings'
	  if exists $m->{tags} && (ref $m->{tags} ne 'ARRAY' || grep { ref $_ || !length $_ } @{ $m->{tags} });
	return @e;
}

my $meta = eval { JSON::PP->new->decode(slurp('META.json')) };
ok($meta, 'META.json is valid JSON') or diag($@);
my @errors = meta_errors($meta);
is_deeply(\@errors, [], 'META.json follows the PGXN Meta Spec 1.0') or diag(join "\n", @errors);
ok(!grep({ !exists $meta->{$_} } @required), "every required key is there: @required");

# the release's version everywhere
my ($control) = slurp('iact.control') =~ /^default_version\s*=\s*'([^']+)'/m;
is($meta->{version}, "$control.0", "META.json version is iact.control's default_version $control");
is($meta->{provides}{iact}{version}, $meta->{version}, 'the provided extension has the release version');
my ($deb) = slurp('debian/changelog') =~ /^iact \(([^)]+)\)/;
is($deb, $meta->{version}, 'debian/changelog starts with the same version');
my ($log) = slurp('CHANGELOG.md') =~ /^## (\d+\.\d+)\b/m;
is($log, $control, 'CHANGELOG.md starts with the same release');
my ($majors) = slurp('Makefile') =~ /^SUPPORTED_MAJORS\s*=\s*(.+?)\s*$/m;
my $pgversions = join ' ', split ' ', slurp('debian/pgversions');
is($pgversions, $majors, 'debian/pgversions builds the majors the Makefile accepts');
is($meta->{prereqs}{runtime}{requires}{PostgreSQL}, ">= $majors.0.0, < " . ($majors + 1) . '.0.0',
	'META.json requires the PostgreSQL major the Makefile accepts');
ok(exists $meta->{prereqs}{runtime}{x_system_libraries}{libmariadb},
	'the runtime MariaDB client library is listed (custom key: the spec keeps non-PGXN prerequisites out of requires)');

# the build refuses a major it was not tested on, with a clear message
for my $major ($majors, $majors + 1)
{
	my ($out, $err) = ('', '');
	my $ok = IPC::Run::run([ 'make', '-s', '-n', '-C', $root, "MAJORVERSION=$major" ], '>', \$out, '2>', \$err);
	if ($major == $majors) { ok($ok, "make accepts PostgreSQL $major") or diag($err); }
	else
	{
		ok(!$ok, "make refuses PostgreSQL $major");
		like($err, qr/iact supports PostgreSQL \Q$majors\E only, but .* is PostgreSQL .*doc\/install\.md/,
			'and says which majors it supports and where the porting notes are');
	}
}

# the validator rejects what the spec rejects
my %broken = (
	'no license' => sub { delete $_[0]{license} },
	'an unknown license string' => sub { $_[0]{license} = 'gpl' },
	'a version that is not SemVer' => sub { $_[0]{version} = '1.1' },
	'meta-spec 2.0.0' => sub { $_[0]{'meta-spec'}{version} = '2.0.0' },
	'a provided file that does not exist' => sub { $_[0]{provides}{iact}{file} = 'no/such.sql' },
	'an unknown top-level key' => sub { $_[0]{homepage} = 'x' },
	'a bad version range' => sub { $_[0]{prereqs}{runtime}{requires}{PostgreSQL} = '15' },
	'an unknown phase' => sub { $_[0]{prereqs}{install} = { requires => { x => 0 } } },
	'no provides' => sub { delete $_[0]{provides} },
);
for my $what (sort keys %broken)
{
	my $copy = JSON::PP->new->decode(JSON::PP->new->encode($meta));
	$broken{$what}->($copy);
	ok(scalar(meta_errors($copy)) > 0, "the check rejects META.json with $what");
}

done_testing();
