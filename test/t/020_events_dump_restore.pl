# test/t/020_events_dump_restore.pl -- time events across pg_dump / pg_restore.
#
# pg_dump -Fc of a database with events (the extension's tables are
# configuration tables) and with a user table guarded by
# iact.enforce_no_overlap, pg_restore into a new database: every row comes
# back, the identity sequences continue after the restored ids, the groups
# come back (the extension recreates iact.events, the dump recreates the
# user table's trigger), and overlaps are still refused in both.
use strict;
use warnings;
use PostgreSQL::Test::Utils;
use Test::More;
use IactTest;

my $node = iact_node('events');
$node->start;
$node->safe_psql('postgres', 'CREATE DATABASE src');
$node->safe_psql('src', q{
	CREATE EXTENSION iact;
	INSERT INTO iact.people (name, identifier) SELECT 'person ' || p, 'P-' || p FROM generate_series(1, 20) p;
	INSERT INTO iact.cities (name, territorial_manager_id) VALUES ('Lisbon', 1);
	INSERT INTO iact.offices (city_id, name, operational_manager_id) VALUES (1, 'Baixa', 2);
	SELECT count(*) FROM iact.people p, generate_series(0, 29) d,
	       LATERAL iact.record_work_shift(p.id, 1, timestamp '2024-01-01 22:00' + d * interval '1 day',
	                                      timestamp '2024-01-02 06:00' + d * interval '1 day');
	SELECT count(*) FROM iact.people p, LATERAL iact.record_extra_hours(p.id, 1, '2024-03-01 10:00', '2024-03-01 12:00');
	CREATE TABLE public.bookings (id serial PRIMARY KEY, room text NOT NULL,
	                              starts timestamptz NOT NULL, ends timestamptz NOT NULL);
	CREATE INDEX ON public.bookings (room, starts);
	SELECT iact.enforce_no_overlap('rooms', ARRAY['public.bookings']::regclass[], 'room', 'starts', 'ends');
	INSERT INTO public.bookings (room, starts, ends) VALUES ('a', '2024-01-01 10:00+00', '2024-01-01 11:00+00');
});

my $rows_query = q{
	SELECT (SELECT count(*) FROM iact.people), (SELECT count(*) FROM iact.offices),
	       (SELECT count(*) FROM iact.work_shifts), (SELECT count(*) FROM iact.extra_hours),
	       (SELECT sum(hashtext(w::text)) FROM iact.work_shifts w),
	       (SELECT count(*) FROM public.bookings)};
my $before = $node->safe_psql('src', $rows_query);
is($before, '20|1|1200|20|' . (split /\|/, $before)[4] . '|1', 'source holds the recorded events');

my $dump = $node->basedir . '/src.dump';
command_ok([ 'pg_dump', '-Fc', '-d', $node->connstr('src'), '-f', $dump ], 'pg_dump -Fc');
$node->safe_psql('postgres', 'CREATE DATABASE restored');
command_ok([ 'pg_restore', '--exit-on-error', '-d', $node->connstr('restored'), $dump ], 'pg_restore');

is($node->safe_psql('restored', $rows_query), $before, 'every row came back identical');
is($node->safe_psql('restored', q{SELECT string_agg(group_name || ':' || table_name, ',' ORDER BY group_name, table_name::text)
                                    FROM iact.no_overlap_members()}),
	'iact.events:iact.extra_hours,iact.events:iact.work_shifts,rooms:bookings',
	'both no-overlap groups came back');
is($node->safe_psql('restored', 'SELECT count(*) FROM iact.find_overlaps()'), '0', 'no overlapping pair');

# the invariant holds in the restored database, across both tables and on the user table
my ($rc, $out, $err) = $node->psql('restored', q{
	SELECT iact.record_extra_hours(3, 1, '2024-01-05 05:00', '2024-01-05 07:00')});
isnt($rc, 0, 'overlapping extra hours refused after restore');
like($err, qr/person 3 already has an overlapping event/, '... with the 23P01 message');
($rc, $out, $err) = $node->psql('restored', q{
	INSERT INTO public.bookings (room, starts, ends) VALUES ('a', '2024-01-01 10:30+00', '2024-01-01 12:00+00')});
like($err, qr/person a already has an overlapping event/, 'user group still guarded after restore');

# identity sequences continue after the restored ids
is($node->safe_psql('restored', q{
	SELECT min(id) > (SELECT max(id) FROM iact.work_shifts WHERE started_at < '2024-06-01')
	  FROM iact.record_work_shift(3, 1, '2024-06-01 08:00', '2024-06-01 16:00') AS r(id)}),
	't', 'new events get ids after the restored ones');

$node->stop;
done_testing();
