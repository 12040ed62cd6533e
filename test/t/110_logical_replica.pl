# test/t/110_logical_replica.pl -- iact on a logical-replication subscriber
# of the analytics database (doc/backup.md, "Replicas").
#
# The publisher syncs a table from the harness's MariaDB, records events,
# audits a user table and deletes an event; the subscriber receives iact's
# tables and the synced table.  iact's triggers are ordinary triggers
# (ENABLE ORIGIN): the apply worker does not fire them, so a replicated row
# is neither checked for overlaps a second time nor audited a second time
# (the audit rows and the deletion trail arrive as replicated rows, once);
# writes made locally on the subscriber are still checked.  The subscriber's
# sync worker leaves the replicated registration alone unless
# iact.sync_on_subscriber is on.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use IactTest;
use IactMariaDB;
use IPC::Run;

plan skip_all => 'no MariaDB from the harness (run through test/check.sh)'
  unless $ENV{IACT_MARIADB_SOCKET};

mariadb_sql(q{DROP TABLE IF EXISTS rep_calls;
	CREATE TABLE rep_calls (id int PRIMARY KEY, agent varchar(40) NOT NULL, changed_at datetime NOT NULL);
	INSERT INTO rep_calls SELECT seq, CONCAT('agent ', seq % 5), '2024-01-01 00:00:00' + INTERVAL seq SECOND
	FROM seq_1_to_100;});

my $setup = q{
	CREATE EXTENSION iact;
	CREATE TABLE public.rooms (id int PRIMARY KEY, room text NOT NULL,
	                           starts timestamptz NOT NULL, ends timestamptz NOT NULL);
	CREATE INDEX ON public.rooms (room, starts);
	SELECT iact.enforce_no_overlap('rooms', ARRAY['public.rooms']::regclass[], 'room', 'starts', 'ends');
	CREATE TABLE public.notes (id int PRIMARY KEY, body text);
	SELECT iact.enable_audit('public.notes');
};
my $tables = 'iact.people, iact.cities, iact.offices, iact.work_shifts, iact.extra_hours, '
  . 'iact.event_deletions, iact.audit_statement, iact.audit_row, iact.sync_tables, iact.sync_runs, '
  . 'public.rooms, public.notes, public.rep_calls';

my $pub = iact_node('rep_pub', init => { allows_streaming => 'logical' });
$pub->start;
$pub->safe_psql('postgres', $setup);
ivr_server($pub, 'postgres');
$pub->safe_psql('postgres', qq{
	SELECT iact.sync_add_table('ivr', 'rep_calls', 'rep_calls', watermark_column => 'changed_at', lookback => 0,
	                           retention_days => 0);
	CREATE PUBLICATION analytics FOR TABLE $tables;});

# the subscriber needs the synced target table as the publisher's registration created it
my ($ddl, $dderr);
IPC::Run::run([ 'pg_dump', '-s', '-t', 'public.rep_calls', '-d', $pub->connstr('postgres') ],
	'>', \$ddl, '2>', \$dderr) or die "pg_dump -s: $dderr";

my $sub = iact_node('rep_sub', conf => "iact.sync_enabled = on\niact.sync_interval = '1s'\n");
$sub->start;
$sub->safe_psql('postgres', $setup);
ivr_server($sub, 'postgres');    # the subscriber could reach MariaDB too
$sub->safe_psql('postgres', $ddl);
my $pubconn = $pub->connstr . ' dbname=postgres';
$sub->safe_psql('postgres', "CREATE SUBSCRIPTION analytics CONNECTION '$pubconn' PUBLICATION analytics");
$sub->wait_for_subscription_sync($pub, 'analytics');

is($sub->safe_psql('postgres', q{SELECT tgenabled FROM pg_trigger
	WHERE tgrelid = 'iact.work_shifts'::regclass AND tgname = 'work_shifts_deletion_trail'}), 'O',
	'iact\'s triggers fire on origin only (the default)');

# --- the publisher works; everything arrives once ------------------------------
$pub->safe_psql('postgres', q{
	SELECT 1 FROM iact.sync_now('rep_calls');
	INSERT INTO iact.people (id, name, identifier) VALUES (1, 'Ana', 'A-1'), (2, 'Bo', 'B-2');
	INSERT INTO iact.cities (id, name) VALUES (1, 'Braga');
	INSERT INTO iact.offices (id, city_id, name) VALUES (1, 1, 'Centro');
	SELECT iact.record_work_shift(1, 1, '2024-04-01 09:00', '2024-04-01 17:00');
	SELECT iact.record_work_shift(2, 1, '2024-04-01 09:00', '2024-04-01 17:00');
	SELECT iact.record_work_shift(2, 1, '2024-04-02 09:00', '2024-04-02 17:00');
	DELETE FROM iact.work_shifts WHERE person_id = 2 AND started_at = '2024-04-02 09:00';
	INSERT INTO public.notes SELECT g, 'n' || g FROM generate_series(1, 20) g;
	UPDATE public.notes SET body = 'changed' WHERE id <= 5;
	INSERT INTO public.rooms VALUES (1, 'a', '2024-01-01 10:00+00', '2024-01-01 11:00+00');});
$pub->wait_for_catchup('analytics');
is($pub->safe_psql('postgres', q{SELECT status || ':' || rows_read || ':' || coalesce(error, '') FROM iact.sync_runs}),
	'success:100:', 'the publisher synced the table from MariaDB');

my $everything = q{SELECT (SELECT count(*) FROM iact.work_shifts) || '/' || (SELECT count(*) FROM iact.event_deletions)
	|| '/' || (SELECT count(*) FROM iact.audit_log) || '/' || (SELECT count(*) FROM iact.sync_runs)
	|| '/' || (SELECT count(*) FROM public.rep_calls)};
is($pub->safe_psql('postgres', $everything), '2/1/25/1/100', 'publisher: shifts, trail, audit, runs, synced rows');
is($sub->safe_psql('postgres', $everything), '2/1/25/1/100',
	'subscriber: the same, once (no second audit or trail entry for replicated rows)');
is($sub->safe_psql('postgres', q{SELECT count(*) FROM iact.audit_log WHERE table_name = 'notes'}),
	$pub->safe_psql('postgres', q{SELECT count(*) FROM iact.audit_log WHERE table_name = 'notes'}),
	'the audit trail of the user table is the publisher\'s');

# --- no-overlap: local writes are checked, replicated rows are not re-checked --
my ($rc, $out, $err) = $sub->psql('postgres',
	q{INSERT INTO public.rooms VALUES (1001, 'a', '2024-01-01 10:30+00', '2024-01-01 12:00+00')});
isnt($rc, 0, 'a local write on the subscriber that overlaps a replicated row is refused');
like($err, qr/overlap/, '... by the no-overlap trigger');
$sub->safe_psql('postgres',
	q{INSERT INTO public.rooms VALUES (1002, 'b', '2024-01-01 10:00+00', '2024-01-01 11:00+00')});
$pub->safe_psql('postgres',
	q{INSERT INTO public.rooms VALUES (2, 'b', '2024-01-01 10:30+00', '2024-01-01 11:30+00')});
$pub->wait_for_catchup('analytics');
is($sub->safe_psql('postgres', q{SELECT count(*) FROM public.rooms WHERE room = 'b'}), '2',
	'a replicated row is applied as the publisher checked it, even against a local row');
is($sub->safe_psql('postgres', q{SELECT count(*) FROM iact.find_overlaps('rooms')}), '1',
	'find_overlaps on the subscriber reports what local writes made');
$sub->safe_psql('postgres', q{DELETE FROM public.rooms WHERE id = 1002});

# --- the subscriber's worker does not pull the replicated table ----------------
sleep 5;    # five scheduled intervals of the subscriber's worker
is($sub->safe_psql('postgres', q{SELECT count(*) FROM iact.sync_runs}), '1',
	'the subscriber\'s worker did not sync the replicated registration');
mariadb_sql(q{INSERT INTO rep_calls VALUES (101, 'new', '2024-01-02 00:00:00')});
$sub->safe_psql('postgres', q{ALTER SYSTEM SET iact.sync_on_subscriber = on; SELECT pg_reload_conf()});
ok($sub->poll_query_until('postgres', q{SELECT count(*) > 1 FROM iact.sync_runs WHERE status = 'success'}),
	'with iact.sync_on_subscriber = on it does');
is($pub->safe_psql('postgres', q{SELECT count(*) FROM iact.sync_runs}), '1',
	'(the publisher ran only its own sync)');

$sub->stop;
$pub->stop;
mariadb_sql('DROP TABLE rep_calls');
done_testing();
