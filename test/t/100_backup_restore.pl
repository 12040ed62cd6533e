# test/t/100_backup_restore.pl -- a whole iact database through pg_dump -Fc
# and pg_restore into a FRESH cluster (iact preloaded there too), as
# doc/backup.md describes.
#
# The source holds events (and the deletion trail), a no-overlap group on a
# user table, an audited user table, a sync registration with run history
# from a real sync against the harness's MariaDB, and migration history.
# After the restore: every row of iact's tables is identical, the policies,
# groups and audit triggers are there and work, the migration log still
# verifies its checksums, and the worker resumes from the restored
# watermark: its first run after the restore reads only the rows added to
# MariaDB since the dump.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use IactTest;
use IactMariaDB;

plan skip_all => 'no MariaDB from the harness (run through test/check.sh)'
  unless $ENV{IACT_MARIADB_SOCKET};

# the source table in MariaDB: 300 rows, newer rows get newer changed_at
mariadb_sql(q{DROP TABLE IF EXISTS bk_calls;
	CREATE TABLE bk_calls (id int PRIMARY KEY, agent varchar(40) NOT NULL, seconds int,
	                       changed_at datetime NOT NULL);
	INSERT INTO bk_calls SELECT seq, CONCAT('agent ', seq % 9), seq * 3,
	       '2024-01-01 00:00:00' + INTERVAL seq SECOND FROM seq_1_to_300;});

my $src = iact_node('bk_src');
$src->start;
$src->safe_psql('postgres', 'CREATE DATABASE app');
$src->safe_psql('app', q{
	CREATE EXTENSION iact;
	INSERT INTO iact.people (name, identifier) SELECT 'person ' || p, 'P-' || p FROM generate_series(1, 10) p;
	INSERT INTO iact.cities (name, territorial_manager_id) VALUES ('Porto', 1);
	INSERT INTO iact.offices (city_id, name, operational_manager_id) VALUES (1, 'Ribeira', 2);
	SELECT count(*) FROM iact.people p, generate_series(0, 9) d,
	       LATERAL iact.record_work_shift(p.id, 1, timestamp '2024-02-01 09:00' + d * interval '1 day',
	                                      timestamp '2024-02-01 17:00' + d * interval '1 day');
	SELECT count(*) FROM iact.people p, LATERAL iact.record_extra_hours(p.id, 1, '2024-03-01 18:00', '2024-03-01 20:00');
	DELETE FROM iact.work_shifts WHERE person_id = 1 AND started_at::date = '2024-02-05';
	CREATE TABLE public.rooms (id serial PRIMARY KEY, room text NOT NULL,
	                           starts timestamptz NOT NULL, ends timestamptz NOT NULL);
	CREATE INDEX ON public.rooms (room, starts);
	SELECT iact.enforce_no_overlap('rooms', ARRAY['public.rooms']::regclass[], 'room', 'starts', 'ends');
	INSERT INTO public.rooms (room, starts, ends) VALUES ('a', '2024-01-01 10:00+00', '2024-01-01 11:00+00');
	CREATE TABLE public.notes (id int PRIMARY KEY, body text);
	SELECT iact.enable_audit('public.notes');
	INSERT INTO public.notes SELECT g, 'note ' || g FROM generate_series(1, 50) g;
	UPDATE public.notes SET body = body || '!' WHERE id <= 10;
	CALL iact.run_migration('2024.01', 'notes.tag', 'ALTER TABLE public.notes ADD COLUMN tag text',
	                        'ALTER TABLE public.notes DROP COLUMN tag');
	CALL iact.run_migration('2024.02', 'index on tag', 'CREATE INDEX notes_tag ON public.notes (tag)',
	                        'DROP INDEX public.notes_tag');
	SELECT iact.safe_rollback_migration('2024.02');
});
ivr_server($src, 'app');
$src->safe_psql('app', q{
	SELECT iact.sync_add_table('ivr', 'bk_calls', 'bk_calls', watermark_column => 'changed_at',
	                           lookback => 0, retention_days => 0);
	SELECT status FROM iact.sync_now('bk_calls');});
is($src->safe_psql('app', q{SELECT count(*) || '/' || max(status) FROM iact.sync_runs}), '1/success',
	'source: one successful sync run');
is($src->safe_psql('app', 'SELECT count(*) FROM bk_calls'), '300', 'source: 300 rows synced');

# every row of iact's tables and of the user tables, as text
my $state = q{
	SELECT string_agg(t || ':' || n || ':' || h, E'\n' ORDER BY t) FROM (
	  SELECT 'people' t, count(*) n, sum(hashtext(x::text)) h FROM iact.people x
	  UNION ALL SELECT 'work_shifts', count(*), sum(hashtext(x::text)) FROM iact.work_shifts x
	  UNION ALL SELECT 'extra_hours', count(*), sum(hashtext(x::text)) FROM iact.extra_hours x
	  UNION ALL SELECT 'event_deletions', count(*), sum(hashtext(x::text)) FROM iact.event_deletions x
	  UNION ALL SELECT 'migration_log', count(*), sum(hashtext(x::text)) FROM iact.migration_log x
	  UNION ALL SELECT 'migration_status', count(*), sum(hashtext(x::text)) FROM iact.migration_status x
	  UNION ALL SELECT 'audit_log', count(*), sum(hashtext(x::text)) FROM iact.audit_log x
	  UNION ALL SELECT 'sync_tables', count(*), sum(hashtext(x::text)) FROM iact.sync_tables x
	  UNION ALL SELECT 'sync_runs', count(*), sum(hashtext(x::text)) FROM iact.sync_runs x
	  UNION ALL SELECT 'bk_calls', count(*), sum(hashtext(x::text)) FROM public.bk_calls x
	  UNION ALL SELECT 'rooms', count(*), sum(hashtext(x::text)) FROM public.rooms x
	  UNION ALL SELECT 'notes', count(*), sum(hashtext(x::text)) FROM public.notes x
	  UNION ALL SELECT 'policies', count(*), sum(hashtext(policyname || tablename || coalesce(qual, '')))
	    FROM pg_policies WHERE schemaname = 'iact'
	  UNION ALL SELECT 'groups', count(*), sum(hashtext(group_name || table_name::text)) FROM iact.no_overlap_members()
	  UNION ALL SELECT 'audited', count(*), sum(hashtext(table_name::text)) FROM iact.audited_tables
	) s};
my $before = $src->safe_psql('app', $state);
like($before, qr/^event_deletions:1:/m, 'source: the deleted shift left its trail');
like($before, qr/^policies:[1-9]/m, 'source: the events have row-level security policies');

my $dump = $src->basedir . '/app.dump';
command_ok([ 'pg_dump', '-Fc', '-d', $src->connstr('app'), '-f', $dump ], 'pg_dump -Fc of the database');
$src->stop;

# MariaDB moves on while the backup waits: 40 newer rows, one changed row
mariadb_sql(q{INSERT INTO bk_calls SELECT seq, 'late agent', seq, '2024-01-02 00:00:00' + INTERVAL seq SECOND
	FROM seq_301_to_340;
	UPDATE bk_calls SET seconds = -1, changed_at = '2024-01-03 00:00:00' WHERE id = 7;});

# a fresh cluster with iact preloaded, the worker on a short schedule
my $dst = iact_node('bk_dst', conf => "iact.database = 'app'\niact.sync_enabled = on\niact.sync_interval = '1h'\n");
$dst->start;
$dst->safe_psql('postgres', 'CREATE DATABASE app');
command_ok([ 'pg_restore', '--exit-on-error', '-d', $dst->connstr('app'), $dump ],
	'pg_restore into a fresh cluster');
# the worker gave up on the missing database at start; a restart lets it in
$dst->restart;
is($dst->safe_psql('app', $state), $before,
	'every row, policy, group and audited table came back identical');

# it all works in the restored database
my ($rc, $out, $err) = $dst->psql('app', q{
	INSERT INTO public.rooms (room, starts, ends) VALUES ('a', '2024-01-01 10:30+00', '2024-01-01 12:00+00')});
isnt($rc, 0, 'restored group: an overlap on the user table is refused');
($rc, $out, $err) = $dst->psql('app', q{SELECT iact.record_work_shift(2, 1, '2024-02-03 16:00', '2024-02-03 18:00')});
isnt($rc, 0, 'restored events: an overlapping shift is refused');
$dst->safe_psql('app', q{UPDATE public.notes SET body = 'after restore' WHERE id = 1;
	DELETE FROM iact.work_shifts WHERE person_id = 3 AND started_at::date = '2024-02-02'});
is($dst->safe_psql('app', q{SELECT operation || ':' || (new_data ->> 'body') FROM iact.audit_log
	ORDER BY statement_id DESC, row_no DESC LIMIT 1}), 'UPDATE:after restore',
	'restored audit trigger records a new change');
is($dst->safe_psql('app', q{SELECT count(*) || ':' || max(person_id) FROM iact.event_deletions}), '2:3',
	'restored deletion trail records a new deletion');
is($dst->safe_psql('app', q{SELECT count(DISTINCT id) = count(*) FROM iact.audit_statement}), 't',
	'audit statement ids continue after the restored ones');
is($dst->safe_psql('app', q{SELECT iact.safe_rollback_migration('2024.01')}), 't',
	'a restored migration rolls back (its down_sql checksum still verifies)');
is($dst->safe_psql('app', q{SELECT count(*) FROM information_schema.columns
	WHERE table_name = 'notes' AND column_name = 'tag'}), '0', '... and its down_sql ran');

# the worker resumes from the restored watermark: only the new rows are read
$dst->safe_psql('app', q{ALTER SYSTEM SET iact.sync_interval = '2s'; SELECT pg_reload_conf()});
ok($dst->poll_query_until('app', q{SELECT count(*) = 2 FROM iact.sync_runs WHERE status = 'success'}),
	'the worker ran the restored registration');
is($dst->safe_psql('app', q{SELECT mode || ':' || rows_read || ':' || rows_inserted || ':' || rows_updated
	FROM iact.sync_runs ORDER BY id DESC LIMIT 1}), 'incremental:42:40:1',
	'its first run after the restore read only the rows from the restored watermark on (40 new, 1 changed, '
	  . 'and the row at the watermark itself: the bound is inclusive), not the 341 rows of the table');
is($dst->safe_psql('app', q{SELECT count(*) || ':' || min(seconds) FROM bk_calls}), '340:-1',
	'the target now equals the source');

$dst->stop;
mariadb_sql('DROP TABLE bk_calls');
done_testing();
