# test/t/070_upgrade.pl -- ALTER EXTENSION iact UPDATE from the oldest
# supported release (1.0) to the current default version.
#
# With the current iact.so preloaded, a database installs iact VERSION '1.0'
# and is filled through the 1.0 functions (so they are shown to work with the
# new library before any update): a migration log with a failure and
# rollbacks (one refused), a backfill, people/cities/offices and events, a
# no-overlap group on a user table, an audited user table with entries,
# sync registrations with run history and rejects from a real sync against
# the harness's MariaDB; the new library's worker, pointed at the 1.0
# database, syncs a table there.  Then ALTER EXTENSION iact UPDATE and:
#  (a) every row of every table, view and sequence of schema iact and of the
#      user's schema is still there and reads the same (the columns that
#      existed before the update);
#  (b) the extension's member objects are identical to a fresh install of
#      the default version in another database (IactUpgrade::describe_extension:
#      definitions, columns, constraints, indexes, triggers, policies, ACLs,
#      initial privileges, comments, config-dump registrations), the diff
#      printed on failure; the description is first shown to notice changes;
#  (c) the whole pg_regress suite passes on a database whose iact was
#      installed as 1.0 and updated (pg_regress --use-existing);
#  (d) the user's tables keep working: the no-overlap and audit triggers fire,
#      events are still refused when they overlap, a sync (by hand and by
#      the worker), a migration, a rollback and a backfill run.
# A 1.1 change whose upgrade fragment is missing or different fails (b), and
# usually (c).
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use IPC::Run;
use IactMariaDB;
use IactUpgrade;

plan skip_all => 'MariaDB harness not running (run through test/check.sh)'
  unless $ENV{IACT_MARIADB_PORT} && $ENV{IACT_MARIADB_CLI};
my $root = $ENV{IACT_ROOT} or die 'IACT_ROOT is not set';

my $from = '1.0';
my ($to) = do { local $/; open my $fh, '<', "$root/iact.control" or die $!; <$fh> } =~
  /^default_version\s*=\s*'([^']+)'/m;

# the server the pg_regress suite expects: iact preloaded, other settings at
# their defaults (40_worker checks them), bootstrap superuser postgres (the
# expected output names it), as test/check.sh starts it
$ENV{PGUSER} = 'postgres';
my $node = PostgreSQL::Test::Cluster->new('upgrade');
$node->init(extra => [ '-U', 'postgres' ]);
$node->append_conf('postgresql.conf', "shared_preload_libraries = 'iact'\nmax_prepared_transactions = 10\n");
$node->start;

like($node->safe_psql('postgres', q{
	SELECT string_agg(version, ',' ORDER BY version) FROM pg_available_extension_versions WHERE name = 'iact'}),
	qr/(^|,)\Q$from\E(,|$)/, "the oldest supported version $from is installable");
my $path = $node->safe_psql('postgres', qq{
	SELECT path FROM pg_extension_update_paths('iact') WHERE source = '$from' AND target = '$to'});
isnt($path, '', "an update path from $from to the default version $to: $path");

$node->safe_psql('postgres', 'CREATE DATABASE upg');
$node->safe_psql('postgres', 'CREATE DATABASE fresh');
$node->safe_psql('upg', "CREATE EXTENSION iact VERSION '$from'");
is($node->safe_psql('upg', q{SELECT extversion FROM pg_extension WHERE extname = 'iact'}), $from,
	"installed as $from");

# MariaDB's sample IVR as the fixture loads it (other tests change it)
sub reload_ivr
{
	my ($out, $err) = ('', '');
	my $ok = IPC::Run::run([ 'bash', '-c', ". '$root/test/harness/lib.sh' && . '$root/test/harness/mariadb.sh' && "
		  . "mariadb_sql -e 'DROP DATABASE IF EXISTS ivr' && mariadb_sql < '$root/test/fixtures/ivr.sql'" ],
		'>', \$out, '2>', \$err);
	diag($err) unless $ok;
	return $ok;
}

# the worker of the new library, woken by request_sync, runs a table of $db
sub worker_syncs
{
	my ($db, $table) = @_;
	my $n = $node->safe_psql($db, "SELECT count(*) FROM iact.sync_runs WHERE target_table = '$table'");
	$node->poll_query_until($db, q{SELECT count(*) = 1 FROM pg_stat_activity WHERE backend_type = 'iact sync worker'})
	  or return 'no worker';
	# false (with a WARNING) only if the worker is between two lives: the request
	# stays queued and runs when it is back, so one call is enough either way
	$node->safe_psql($db, "SELECT iact.request_sync('$table')");
	$node->poll_query_until($db, "SELECT count(*) > $n FROM iact.sync_runs WHERE target_table = '$table' AND status <> 'running'")
	  or return 'no run';
	return $node->safe_psql($db, "SELECT status FROM iact.sync_runs WHERE target_table = '$table' ORDER BY id DESC LIMIT 1");
}

# a statement that must fail with an error matching $re (two assertions)
sub fails
{
	my ($db, $sql, $re, $name) = @_;
	my ($rc, $out, $err) = $node->psql($db, $sql);
	isnt($rc, 0, "$name: refused");
	like($err, $re, "$name: with the right error");
}

# ---------------------------------------------------------------- the 1.0 fill
ok(reload_ivr(), "MariaDB's sample IVR loaded afresh");
# migration log: applied, failed, rolled back, a refused rollback; direct log calls
$node->safe_psql('upg', q{
	CREATE ROLE upg_owner;
	CREATE SCHEMA app;
	CALL iact.run_migration('2026.01.01', 'agents table',
	  $$CREATE TABLE app.agents (id int PRIMARY KEY, name text NOT NULL, team text);
	    INSERT INTO app.agents SELECT g, 'agent ' || g, (ARRAY['north','south'])[1 + g % 2] FROM generate_series(1, 500) g$$,
	  $$DROP TABLE app.agents$$);
	CALL iact.run_migration('2026.01.02', 'display column', $$ALTER TABLE app.agents ADD COLUMN display text$$,
	  $$ALTER TABLE app.agents DROP COLUMN display$$);
	CALL iact.run_migration('2026.01.03', 'name index', $$CREATE INDEX agents_name ON app.agents (name)$$,
	  $$DROP INDEX app.agents_name; DROP TABLE app.not_there$$);
	CALL iact.run_migration('2026.01.04', 'team index', $$CREATE INDEX agents_team ON app.agents (team)$$,
	  $$DROP INDEX app.agents_team$$);
});
fails('upg', q{CALL iact.run_migration('2026.01.07', 'typo', $$ALTER TABLE app.agents ADD COLUMN x txt$$)},
	qr/type "txt" does not exist/, '1.0 run_migration of a failing migration');
is($node->safe_psql('upg', q{SELECT iact.safe_rollback_migration('2026.01.04')}), 't',
	'1.0 safe_rollback_migration rolls back');
is($node->safe_psql('upg', q{SELECT iact.safe_rollback_migration('2026.01.03')}), 'f',
	'1.0 safe_rollback_migration: a failing down script leaves the migration applied');
is($node->safe_psql('upg', q{SELECT to_regclass('app.agents_team') IS NULL AND to_regclass('app.agents_name') IS NOT NULL}),
	't', 'the rollbacks did what the log says');
$node->safe_psql('upg', q{
	SELECT iact.log_migration_complete(iact.log_migration_start('2026.01.05', 'by hand'), 7);
	SELECT iact.log_migration_failed(iact.log_migration_start('2026.01.06', 'by hand, failed'), 'it broke');
});
fails('upg', 'DELETE FROM iact.migration_log', qr/append-only|not allowed/i, '1.0 migration_log guard');

# a backfill
$node->safe_psql('upg', q{
	CALL iact.backfill('agents_display', 'app.agents', $$display = upper(name)$$, 'display IS NULL', 64)});
is($node->safe_psql('upg', q{SELECT status || ' ' || rows_done FROM iact.backfill_runs WHERE name = 'agents_display'}),
	'done 500', '1.0 backfill ran to the end');

# events
$node->safe_psql('upg', q{
	INSERT INTO iact.people (id, name, identifier) VALUES
	    (1, 'Tess', 'EMP-001'), (2, 'Otto', 'EMP-002'), (3, 'Lia', 'EMP-003'), (4, 'Pedro', 'EMP-004');
	INSERT INTO iact.cities (id, name, territorial_manager_id) VALUES (1, 'Lisbon', 1), (2, 'Porto', NULL);
	INSERT INTO iact.offices (id, city_id, name, operational_manager_id) VALUES
	    (1, 1, 'Baixa', NULL), (2, 1, 'Belem', NULL), (3, 2, 'Ribeira', 2);
	SELECT iact.record_work_shift(3, 1, '2024-03-04 22:00', '2024-03-05 06:00');
	SELECT iact.record_extra_hours(3, 1, '2024-03-05 06:00', '2024-03-05 08:00');
	INSERT INTO iact.work_shifts (person_id, office_id, started_at, ended_at) VALUES
	    (4, 3, '2024-03-04 08:00', '2024-03-04 16:00'), (4, 3, '2024-03-05 08:00', '2024-03-05 16:00');
	SELECT iact.record_extra_hours(4, 2, '2024-03-05 16:00', '2024-03-05 18:00');
});
fails('upg', q{SELECT iact.record_extra_hours(3, 2, '2024-03-05 05:00', '2024-03-05 06:30')},
	qr/overlap/i, '1.0 no_overlap_trigger on events');
fails('upg', q{UPDATE iact.extra_hours SET ended_at = '2024-03-05 18:30' WHERE person_id = 4},
	qr/immutable: UPDATE is not allowed/, '1.0 refuse_update on events');
is($node->safe_psql('upg', q{SET iact.person_id = 3; SELECT iact.session_person_id()}), '3',
	'1.0 session_person_id');

# a no-overlap group on a user's table, owned by an ordinary role
$node->safe_psql('upg', q{
	CREATE TABLE app.bookings (id serial PRIMARY KEY, room int NOT NULL, starts timestamp NOT NULL,
	                           ends timestamp NOT NULL, CHECK (starts < ends));
	CREATE INDEX ON app.bookings (room, starts);
	ALTER TABLE app.bookings OWNER TO upg_owner;
	SELECT iact.enforce_no_overlap('rooms', ARRAY['app.bookings']::regclass[], 'room', 'starts', 'ends');
	INSERT INTO app.bookings (room, starts, ends) VALUES
	    (1, '2024-01-01 08:00', '2024-01-01 10:00'), (1, '2024-01-01 10:00', '2024-01-01 12:00'),
	    (2, '2024-01-01 08:00', '2024-01-01 18:00');
	SELECT iact.no_overlap_touch('rooms');
});
fails('upg', q{INSERT INTO app.bookings (room, starts, ends) VALUES (1, '2024-01-01 09:00', '2024-01-01 09:30')},
	qr/overlap/i, '1.0 no-overlap group on a user table');
is($node->safe_psql('upg', q{SELECT group_name || ' ' || table_name FROM iact.no_overlap_members('rooms')}),
	'rooms app.bookings', '1.0 no_overlap_members');
is($node->safe_psql('upg', q{SELECT count(*) FROM iact.find_overlaps()}), '0', '1.0 find_overlaps');

# an audited user table with entries, and the append-only guard
$node->safe_psql('upg', q{
	CREATE TABLE app.calls (id bigint PRIMARY KEY, caller text NOT NULL, seconds integer, notes jsonb);
	SELECT iact.enable_audit('app.calls', '{notes}');
	SET app.current_user_id = 'agent-1';
	INSERT INTO app.calls SELECT g, 'caller ' || g, g * 10, jsonb_build_object('n', g) FROM generate_series(1, 200) g;
	UPDATE app.calls SET seconds = seconds + 1 WHERE id % 3 = 0;
	DELETE FROM app.calls WHERE id > 190;
});
is($node->safe_psql('upg', q{SELECT count(*) FROM iact.audit_log WHERE table_name = 'calls'}), 200 + 66 + 10,
	'1.0 audit_trigger wrote every entry');
# (the user's own grants on iact's objects: made in the fresh database too, see (b))
my $user_grants = 'GRANT USAGE ON SCHEMA iact TO upg_owner; GRANT SELECT, DELETE ON iact.audit_row TO upg_owner';
$node->safe_psql('upg', $user_grants);
fails('upg', 'SET ROLE upg_owner; DELETE FROM iact.audit_row', qr/append-only: DELETE on iact.audit_row is not allowed/,
	'1.0 audit_log_guard');

# sync registrations, run history and rejects from the real MariaDB
ivr_server($node, 'upg');
$node->safe_psql('upg', q{
	CREATE TABLE app.ivr_dirty (id integer PRIMARY KEY, label text, raw text, amount integer, seen_on date);
	SELECT iact.sync_add_table('ivr', 'queues', 'app.ivr_queues');
	SELECT iact.sync_add_table('ivr', 'dirty', 'app.ivr_dirty');
	SELECT iact.sync_add_table('ivr', 'ticks', 'app.ivr_ticks', watermark_column => 'changed_at', lookback => 60);
	SELECT count(*) FROM iact.sync_now();
	CALL iact.sync_run('app.ivr_queues');
});
is($node->safe_psql('upg', q{
	SELECT string_agg(target_table || ':' || status, ' ' ORDER BY id) FROM iact.sync_runs}),
	'app.ivr_queues:success app.ivr_dirty:partial app.ivr_ticks:success app.ivr_queues:success',
	'1.0 sync_now and sync_run against MariaDB');
cmp_ok($node->safe_psql('upg', q{SELECT count(*) FROM iact.sync_rejects}), '>', 0, 'the sync left rejects');
is($node->safe_psql('upg', q{SELECT count(*) > 0 FROM iact.sync_source_columns('ivr', 'queues')}), 't',
	'1.0 sync_source_columns');
fails('upg', q{CREATE SERVER bad FOREIGN DATA WRAPPER iact_mariadb OPTIONS (hots 'x')}, qr/hots/,
	'1.0 mariadb_fdw_validator');
fails('upg', q{SELECT iact.request_sync()}, qr/iact\.database|worker/, '1.0 request_sync outside iact.database');
is($node->safe_psql('upg', q{SELECT count(*) > 0 FROM iact.health()}), 't', '1.0 health');
like($node->safe_psql('upg', q{SELECT iact.metrics()}), qr/^# (HELP|TYPE) iact_/m, '1.0 metrics');

# the new library's worker serving the 1.0 database (schedule off: it runs what it is asked to)
$node->append_conf('postgresql.conf', "iact.database = 'upg'\niact.sync_enabled = off\n");
$node->restart;
is(worker_syncs('upg', 'app.ivr_queues'), 'success', "the worker syncs a table of the $from database");

# ------------------------------------------------------------------ the update
my $before = relation_snapshot($node, 'upg', [ 'iact', 'app' ]);
$node->safe_psql('upg', 'ALTER EXTENSION iact UPDATE');
is($node->safe_psql('upg', q{SELECT extversion FROM pg_extension WHERE extname = 'iact'}), $to,
	"ALTER EXTENSION iact UPDATE reached $to");

# (a) every row still there and readable
for my $rel (sort keys %$before)
{
	my ($cols, $rows) = @{ $before->{$rel} };
	my $after = eval { relation_rows($node, 'upg', $rel, $cols) };
	is($after // "error: $@", $rows, "(a) $rel reads the same after the update");
}

# (b) the same objects as a fresh install
# with the grants the user made in upg: they must survive the update too
$node->safe_psql('fresh', "CREATE EXTENSION iact; $user_grants");
my $fresh = describe_extension($node, 'fresh');
my $updated = describe_extension($node, 'upg');
my $diff = unified_diff($fresh, $updated, "fresh-$to", "updated-$from-to-$to");
is($diff, '', "(b) the updated extension's objects are those of a fresh $to install");
diag("fresh install (-) vs updated (+):\n$diff") if $diff ne '';
cmp_ok(scalar(() = $fresh =~ /^### member /mg), '>', 50, '(b) the description lists the members');
unlike($fresh, qr/^### unhandled /m, '(b) every member class is described in full')
  or diag(join "\n", $fresh =~ /^### unhandled .*$/mg);

# the description notices the kinds of change an upgrade fragment must carry
my @mutations = (
	[ 'a function body', q{CREATE OR REPLACE FUNCTION iact.no_overlap_members(of_group text DEFAULT NULL, strict boolean DEFAULT false)
	    RETURNS TABLE (group_name text, table_name regclass, person_column name, start_column name, end_column name,
	                   probe_index regclass, max_length interval)
	    LANGUAGE sql STABLE AS 'SELECT NULL::text, NULL::regclass, NULL::name, NULL::name, NULL::name, NULL::regclass, NULL::interval'} ],
	[ 'a grant', 'GRANT EXECUTE ON FUNCTION iact.health() TO PUBLIC' ],
	[ 'a comment', q{COMMENT ON TABLE iact.sync_runs IS 'changed'} ],
	[ 'a new column', 'ALTER TABLE iact.sync_tables ADD COLUMN extra int' ],
	[ 'a column default', 'ALTER TABLE iact.migration_log ALTER COLUMN description SET DEFAULT $$x$$' ],
	[ 'an index', 'CREATE INDEX upg_extra ON iact.sync_rejects (key)' ],
	[ 'a view', 'CREATE OR REPLACE VIEW iact.backfill_progress AS SELECT * FROM iact.backfill_progress WHERE false' ],
	[ 'a config-dump registration', q{UPDATE pg_extension SET extcondition[1] = 'WHERE false' WHERE extname = 'iact'} ],
	[ 'a new function', 'CREATE FUNCTION iact.upg_new() RETURNS int LANGUAGE sql AS $$SELECT 1$$; ALTER EXTENSION iact ADD FUNCTION iact.upg_new()' ],
);
for my $m (@mutations)
{
	# (a mutation that no longer applies to the current objects fails here: adapt it)
	my $changed = eval { describe_extension($node, 'fresh', $m->[1]) };
	ok(defined $changed && $changed ne $fresh, "(b) the description tells $m->[0] apart")
	  or diag(defined $changed ? 'no difference' : "the mutation failed: $@");
}

# (d) the user's tables keep working after the update
fails('upg', q{INSERT INTO app.bookings (room, starts, ends) VALUES (1, '2024-01-01 11:00', '2024-01-01 13:00')},
	qr/overlap/i, '(d) the no-overlap trigger still refuses an overlap');
$node->safe_psql('upg', q{INSERT INTO app.bookings (room, starts, ends) VALUES (1, '2024-01-01 12:00', '2024-01-01 13:00')});
is($node->safe_psql('upg', q{SELECT count(*) FROM app.bookings WHERE room = 1}), '3',
	'(d) a booking that touches but does not overlap is accepted');
fails('upg', q{SELECT iact.record_work_shift(3, 2, '2024-03-05 07:00', '2024-03-05 09:00')},
	qr/overlap/i, '(d) events still refuse overlaps');
$node->safe_psql('upg', q{SET app.current_user_id = 'agent-2';
	UPDATE app.calls SET caller = 'after update' WHERE id = 1; DELETE FROM app.calls WHERE id = 2});
is($node->safe_psql('upg', q{
	SELECT string_agg(operation || ' ' || coalesce(new_data->>'caller', old_data->>'caller'), ', ' ORDER BY statement_id)
	  FROM iact.audit_log WHERE user_id = 'agent-2'}),
	'UPDATE after update, DELETE caller 2', '(d) the audit trigger still records changes');
$node->safe_psql('upg', q{SELECT count(*) FROM iact.sync_now('app.ivr_queues')});
is($node->safe_psql('upg', q{
	SELECT status || ' ' || (target_count = source_count) FROM iact.sync_runs ORDER BY id DESC LIMIT 1}),
	'success true', '(d) a registered table syncs after the update');
$node->safe_psql('upg', q{
	CALL iact.run_migration('2026.02.01', 'after update', $$ALTER TABLE app.agents ADD COLUMN shift text$$,
	  $$ALTER TABLE app.agents DROP COLUMN shift$$);
	CALL iact.backfill('agents_shift', 'app.agents', $$shift = team$$, 'shift IS NULL', 100)});
is($node->safe_psql('upg', q{SELECT iact.safe_rollback_migration('2026.02.01')}), 't',
	'(d) a migration and its rollback after the update');
is($node->safe_psql('upg', q{SELECT status || ' ' || rows_done FROM iact.backfill_runs WHERE name = 'agents_shift'}),
	'done 500', '(d) a backfill after the update');
is(worker_syncs('upg', 'app.ivr_queues'), 'success', '(d) the worker syncs a table of the updated database');

# (c) the regression suite on a database updated from 1.0, on a server with
# the worker's settings at their defaults again (40_worker shows them)
$node->append_conf('postgresql.conf', "iact.database = 'postgres'\niact.sync_enabled = on\n");
$node->restart;
$node->safe_psql('postgres', 'CREATE DATABASE contrib_regression');
$node->safe_psql('contrib_regression', "CREATE EXTENSION iact VERSION '$from'; ALTER EXTENSION iact UPDATE");
# the sync tests expect MariaDB's sample IVR as the fixture loads it
ok(reload_ivr(), '(c) MariaDB sample IVR reloaded');
opendir my $dh, "$root/sql" or die $!;
my @tests = sort map { /^(.*)\.sql$/ ? $1 : () } readdir $dh;
closedir $dh;
my $outdir = "$PostgreSQL::Test::Utils::tmp_check/regress_updated";
my ($rout, $rerr) = ('', '');
my $ok = IPC::Run::run([ $ENV{PG_REGRESS}, '--use-existing', '--dbname=contrib_regression', "--inputdir=$root",
	"--outputdir=$outdir", '--bindir=', '--user=postgres', '--host=' . $node->host, '--port=' . $node->port, @tests ],
	'>', \$rout, '2>', \$rerr);
my $passed = () = $rout =~ /\.\.\. ok/g;
ok($ok, "(c) pg_regress passes on a database updated from $from") or do {
	diag($rout . $rerr);
	if (open my $fh, '<', "$outdir/regression.diffs") { local $/; diag(<$fh>); }
};
is($passed, scalar(@tests), '(c) every pg_regress test ran and passed (' . scalar(@tests) . ')');

$node->stop;
done_testing();
