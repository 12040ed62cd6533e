# The rules of "Who runs what" (doc/sync.md) that a hostile review of the
# sync found broken (issue 11; reproduced on branch rvsync-repro, 086), each
# a regression test that failed before its fix:
#
# 0. a superuser syncs a table whose owner has no USAGE on schema iact: iact's
#    bookkeeping statements (the INSERT INTO iact.sync_rejects) are prepared
#    and run as iact, never with the owner's rights;
# 1. a target owner's trigger raising SQLSTATE 57014 (query_canceled), or
#    57P01 (admin_shutdown), is that table's failure, not a cancel: the other owners' tables are synced, and
#    the batch-committing run is recorded 'failed', not left 'running'; a REAL
#    cancel (a statement timeout) still ends the whole call, and its run is
#    recorded failed ("interrupted: ...");
# 2. a session-level advisory lock taken by the owner's trigger is released
#    after the step (with a WARNING), a lock the caller held before is kept,
#    and one the trigger released (pg_advisory_unlock_all) is taken again;
# 3. a registration is bound to its table (iact.sync_tables.target_oid): when
#    the target is dropped and a table of the same name is created by ANOTHER
#    role, the run fails with a hint, nothing is written into that table;
#    its owner removes the registration and registers it again.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use IactTest;
use IactMariaDB;

plan skip_all => 'no MariaDB from the harness (run through test/check.sh)'
  unless $ENV{IACT_MARIADB_PORT} && $ENV{IACT_MARIADB_CLI};

# the worker runs only what iact.request_sync() asks (a registration wakes it:
# it would otherwise sync the tables of this test beside it)
my $node = iact_node('sync_open', conf => "iact.sync_retry_delay = '1s'\niact.sync_enabled = off\n");
$node->start;
my $db = 'postgres';

sub q1 { return $node->safe_psql($db, shift); }

my $pw = $ENV{IACT_MARIADB_PASSWORD};
$pw =~ s/'/''/g;

mariadb_sql(q{DROP TABLE IF EXISTS opn_t;
	CREATE TABLE opn_t (id int PRIMARY KEY, val varchar(20), changed_at datetime NOT NULL);
	INSERT INTO opn_t SELECT seq, CONCAT('v', seq), '2025-01-01' + INTERVAL seq SECOND FROM seq_1_to_10;});

$node->safe_psql($db, qq{
	CREATE EXTENSION iact;
	CREATE ROLE alice LOGIN; CREATE ROLE bob LOGIN;
	CREATE SERVER ivr FOREIGN DATA WRAPPER iact_mariadb
	  OPTIONS (host '127.0.0.1', port '$ENV{IACT_MARIADB_PORT}', dbname 'ivr');
	GRANT USAGE ON FOREIGN SERVER ivr TO alice, bob;
	CREATE USER MAPPING FOR CURRENT_USER SERVER ivr OPTIONS (user '$ENV{IACT_MARIADB_USER}', password '$pw');
	CREATE USER MAPPING FOR alice SERVER ivr OPTIONS (user '$ENV{IACT_MARIADB_USER}', password '$pw');
	CREATE USER MAPPING FOR bob SERVER ivr OPTIONS (user '$ENV{IACT_MARIADB_USER}', password '$pw');
	CREATE SCHEMA alice AUTHORIZATION alice;
	CREATE SCHEMA bob AUTHORIZATION bob;
	CREATE SCHEMA shared; GRANT USAGE, CREATE ON SCHEMA shared TO alice, bob;
	GRANT EXECUTE ON FUNCTION iact.sync_add_table(name, text, text, text[], text, bigint, integer, text, integer, boolean),
		iact._sync_add_table(name, text, text, regclass, name, name, text[], text, bigint, integer, text, integer, boolean),
		iact._sync_target_name(text), iact._sync_table_id(text),
		iact._sync_register(name, text, text, regclass, text[], text, bigint, integer, integer, text, boolean),
		iact.sync_source_columns(name, text, boolean) TO alice;
	CREATE TABLE public.seen (tag text, usr text);
	GRANT INSERT ON public.seen TO PUBLIC;});

# --- 0. an owner without USAGE on schema iact ---------------------------------------
$node->safe_psql($db, q{SET ROLE bob;
	CREATE TABLE bob.nousage (id integer PRIMARY KEY, val text, changed_at timestamp);});
q1(q{SELECT iact.sync_add_table('ivr', 'opn_t', 'bob.nousage', watermark_column => 'changed_at', lookback => 0,
	retention_days => 0)});
my ($ret, $out, $err) = $node->psql($db, q{SELECT status || coalesce(' ' || error, '') FROM iact.sync_now('bob.nousage')});
is($out, 'success', "a superuser's sync of a table whose owner has no USAGE on schema iact") or diag($err);
q1(q{SELECT iact.sync_remove_table('bob.nousage')});
q1(q{GRANT USAGE ON SCHEMA iact TO alice, bob});

# --- 1. a fake cancel ------------------------------------------------------------
$node->safe_psql($db, q{
	SET ROLE alice;
	CREATE TABLE alice.a (id integer PRIMARY KEY, val text, changed_at timestamp);
	CREATE FUNCTION alice.fake_cancel() RETURNS trigger LANGUAGE plpgsql AS $$
	BEGIN
		RAISE EXCEPTION 'not really a cancel' USING ERRCODE = 'query_canceled';
	END $$;
	CREATE TRIGGER fake BEFORE INSERT ON alice.a FOR EACH ROW EXECUTE FUNCTION alice.fake_cancel();
	RESET ROLE; SET ROLE bob;
	CREATE TABLE bob.b (id integer PRIMARY KEY, val text, changed_at timestamp);});
for my $t ('alice.a', 'bob.b')
{
	q1(qq{SELECT iact.sync_add_table('ivr', 'opn_t', '$t', watermark_column => 'changed_at', lookback => 0,
		retention_days => 0)});
}
($ret, $out, $err) = $node->psql($db, q{SELECT string_agg(target_table || ' ' || status, ', '
	ORDER BY target_table) FROM iact.sync_now()});
is($out, 'alice.a failed, bob.b success',
	"sync_now(): an owner's fake cancel fails her table only, the other owner's table is synced") or diag($err);
($ret, $out, $err) = $node->psql($db, q{CALL iact.sync_run()});
is(q1(q{SELECT string_agg(target_table || ' ' || status, ', ' ORDER BY target_table) FROM (
	SELECT DISTINCT ON (target_table) target_table, status FROM iact.sync_runs
	WHERE target_table IN ('alice.a', 'bob.b') ORDER BY target_table, id DESC) x}),
	'alice.a failed, bob.b success',
	"CALL sync_run(): the same, and alice's run is recorded failed, not left 'running'") or diag($err);
like(q1(q{SELECT error FROM iact.sync_runs WHERE target_table = 'alice.a' ORDER BY id DESC LIMIT 1}),
	qr/not really a cancel/, "alice's run records her trigger's error");
q1(q{SELECT iact.sync_alter_table('alice.a', enabled => false)});

# the same for any SQLSTATE of class 57 a trigger raises (admin_shutdown)
$node->safe_psql($db, q{
	SET ROLE alice;
	CREATE TABLE alice.a2 (id integer PRIMARY KEY, val text, changed_at timestamp);
	CREATE FUNCTION alice.fake_shutdown() RETURNS trigger LANGUAGE plpgsql AS $$
	BEGIN
		RAISE EXCEPTION 'not really a shutdown' USING ERRCODE = 'admin_shutdown';
	END $$;
	CREATE TRIGGER fake BEFORE INSERT ON alice.a2 FOR EACH ROW EXECUTE FUNCTION alice.fake_shutdown();});
q1(q{SELECT iact.sync_add_table('ivr', 'opn_t', 'alice.a2', watermark_column => 'changed_at', lookback => 0,
	retention_days => 0)});
($ret, $out, $err) = $node->psql($db, q{SELECT status || ' ' || error FROM iact.sync_now('alice.a2')});
is($out, 'failed not really a shutdown', "a trigger's admin_shutdown is the table's failure") or diag($err);
q1(q{SELECT iact.sync_alter_table('alice.a2', enabled => false)});

# a real cancel (a statement timeout) ends the CALL; the run is marked interrupted by the next run
$node->safe_psql($db, q{
	SET ROLE alice;
	CREATE TABLE alice.slow (id integer PRIMARY KEY, val text, changed_at timestamp);
	CREATE FUNCTION alice.slow() RETURNS trigger LANGUAGE plpgsql AS $$
	BEGIN
		PERFORM pg_catalog.pg_sleep(60);
		RETURN NEW;
	END $$;
	CREATE TRIGGER slow BEFORE INSERT ON alice.slow FOR EACH ROW EXECUTE FUNCTION alice.slow();});
q1(q{SELECT iact.sync_add_table('ivr', 'opn_t', 'alice.slow', watermark_column => 'changed_at', lookback => 0,
	retention_days => 0)});
($ret, $out, $err) = $node->psql($db, q{SET statement_timeout = '2s';
	CALL iact.sync_run('alice.slow');});
like($err, qr/canceling statement due to statement timeout/, 'a real statement timeout ends CALL sync_run()');
is(q1(q{SELECT status FROM iact.sync_runs WHERE target_table = 'alice.slow' ORDER BY id DESC LIMIT 1}),
	'running', "the cancelled run is left 'running' (its session is gone from it)");
$node->safe_psql($db, q{DROP TRIGGER slow ON alice.slow});
q1(q{CALL iact.sync_run('alice.slow')});
is(q1(q{SELECT status || ' ' || error FROM iact.sync_runs WHERE target_table = 'alice.slow' ORDER BY id LIMIT 1}),
	'failed interrupted: the session running it ended before it finished',
	'the next run of the table marks the cancelled run interrupted');
q1(q{SELECT iact.sync_alter_table('alice.slow', enabled => false)});

# --- 2. an advisory lock left in the caller's session ---------------------------------
$node->safe_psql($db, q{
	SET ROLE alice;
	CREATE TABLE alice.l (id integer PRIMARY KEY, val text, changed_at timestamp);
	CREATE FUNCTION alice.grab() RETURNS trigger LANGUAGE plpgsql AS $$
	BEGIN
		PERFORM pg_catalog.pg_advisory_lock(4242, 4242);
		RETURN NEW;
	END $$;
	CREATE TRIGGER grab BEFORE INSERT ON alice.l FOR EACH ROW EXECUTE FUNCTION alice.grab();});
q1(q{SELECT iact.sync_add_table('ivr', 'opn_t', 'alice.l', watermark_column => 'changed_at', lookback => 0,
	retention_days => 0)});
($ret, $out, $err) = $node->psql($db, q{SELECT count(*) FROM (SELECT pg_catalog.pg_advisory_lock(4242, g)
	FROM pg_catalog.generate_series(1, 20) g) x;
	SELECT status FROM iact.sync_now('alice.l');
	SELECT count(*) FROM pg_catalog.pg_locks WHERE locktype = 'advisory' AND pid = pg_catalog.pg_backend_pid()
	AND classid = 4242 AND objid = 4242;
	SELECT count(*) FROM pg_catalog.pg_locks WHERE locktype = 'advisory' AND pid = pg_catalog.pg_backend_pid()
	AND classid = 4242 AND objid BETWEEN 1 AND 20});
is($out, "20\nsuccess\n0\n20", "after a superuser's sync_now the owner's session-level advisory lock is not held by the superuser's session, the superuser's own 20 locks are")
  or diag($err);
like($err, qr/WARNING:  released the session-level advisory locks taken during the sync of alice\.l/,
	'a WARNING says so');
q1(q{TRUNCATE alice.l; SELECT iact.sync_alter_table('alice.l', reset_watermark => true)});
($ret, $out, $err) = $node->psql($db, q{CALL iact.sync_run('alice.l');
	SELECT count(*) FROM pg_catalog.pg_locks WHERE locktype = 'advisory' AND pid = pg_catalog.pg_backend_pid()
	AND classid = 4242});
is($out, '0', "the same after CALL sync_run() (batches committed)") or diag($err);
is(q1(q{SELECT status FROM iact.sync_runs WHERE target_table = 'alice.l' ORDER BY id DESC LIMIT 1}), 'success',
	'and the run succeeded');
q1(q{SELECT iact.sync_alter_table('alice.l', enabled => false)});

# the owner's trigger releasing the caller's session locks: they are taken again
$node->safe_psql($db, q{
	SET ROLE alice;
	CREATE TABLE alice.u (id integer PRIMARY KEY, val text, changed_at timestamp);
	CREATE FUNCTION alice.unlock_all() RETURNS trigger LANGUAGE plpgsql AS $$
	BEGIN
		PERFORM pg_catalog.pg_advisory_unlock_all();
		RETURN NEW;
	END $$;
	CREATE TRIGGER unlock_all BEFORE INSERT ON alice.u FOR EACH ROW EXECUTE FUNCTION alice.unlock_all();});
q1(q{SELECT iact.sync_add_table('ivr', 'opn_t', 'alice.u', watermark_column => 'changed_at', lookback => 0,
	retention_days => 0)});
($ret, $out, $err) = $node->psql($db, q{SELECT pg_catalog.pg_advisory_lock(4343, 1);
	SELECT pg_catalog.pg_advisory_lock_shared(4343, 2);
	SELECT status FROM iact.sync_now('alice.u');
	SELECT string_agg(objid || ' ' || mode, ', ' ORDER BY objid) FROM pg_catalog.pg_locks
	WHERE locktype = 'advisory' AND pid = pg_catalog.pg_backend_pid() AND classid = 4343});
is($out, "\n\nsuccess\n1 ExclusiveLock, 2 ShareLock",
	"the caller's session locks released by the owner's trigger are held again after the sync") or diag($err);
q1(q{SELECT iact.sync_alter_table('alice.u', enabled => false)});

# --- 3. a registration outliving its table ---------------------------------------------
$node->safe_psql($db, q{
	SET ROLE alice;
	CREATE TABLE shared.x (id integer PRIMARY KEY, val text, changed_at timestamp);
	SELECT iact.sync_add_table('ivr', 'opn_t', 'shared.x', watermark_column => 'changed_at', lookback => 0,
		retention_days => 0);
	DROP TABLE shared.x;
	RESET ROLE; SET ROLE bob;
	CREATE TABLE shared.x (id integer PRIMARY KEY, val text, changed_at timestamp);
	CREATE FUNCTION bob.note() RETURNS trigger LANGUAGE plpgsql AS $$
	BEGIN
		INSERT INTO public.seen VALUES ('bob', current_user);
		RETURN NEW;
	END $$;
	CREATE TRIGGER note BEFORE INSERT ON shared.x FOR EACH ROW EXECUTE FUNCTION bob.note();});
($ret, $out, $err) = $node->psql($db, q{SELECT status || ' ' || error FROM iact.sync_now('shared.x')});
is(q1(q{SELECT count(*) FROM shared.x}), '0',
	"alice's registration of a dropped table does not write into bob's new table of the same name");
like($out, qr/^failed target table shared\.x is not the table registered for this sync \(The table registered \(oid \d+\) was dropped \(or renamed\); shared\.x is a table created since, owned by bob, which must register it to have it synced\.\)$/,
	'the run fails, recording why') or diag($err);
like($err, qr/WARNING:  sync of shared\.x failed: target table shared\.x is not the table registered for this sync\n.*DETAIL:  The table registered \(oid \d+\) was dropped \(or renamed\); shared\.x is a table created since, owned by bob, which must register it to have it synced\./,
	'the WARNING says so too');
($ret, $out, $err) = $node->psql($db, q{CALL iact.sync_run('shared.x')});
is(q1(q{SELECT count(*) FROM shared.x}), '0', 'CALL sync_run() does not write into it either');
is(q1(q{SELECT count(*) FROM public.seen WHERE tag = 'bob'}), '0', "bob's trigger never ran");
# bob, its owner, removes the old registration and registers his table
$node->safe_psql($db, q{GRANT USAGE ON SCHEMA iact TO bob;
	GRANT EXECUTE ON FUNCTION iact.sync_add_table(name, text, text, text[], text, bigint, integer, text, integer, boolean),
		iact._sync_add_table(name, text, text, regclass, name, name, text[], text, bigint, integer, text, integer, boolean),
		iact._sync_target_name(text), iact._sync_table_id(text),
		iact._sync_register(name, text, text, regclass, text[], text, bigint, integer, integer, text, boolean),
		iact.sync_source_columns(name, text, boolean), iact.sync_remove_table(text),
		iact._sync_unregister(integer) TO bob;
	GRANT SELECT ON iact.sync_tables TO bob;});
($ret, $out, $err) = $node->psql($db, q{SET ROLE bob; SELECT iact.sync_remove_table('shared.x');
	SELECT iact.sync_add_table('ivr', 'opn_t', 'shared.x', watermark_column => 'changed_at', lookback => 0,
		retention_days => 0) > 0;
	RESET ROLE;
	SELECT status FROM iact.sync_now('shared.x')});
is($out, "t\nt\nsuccess", 'its owner removes the old registration and registers it again, and it is synced')
  or diag($err);
is(q1(q{SELECT count(*) || ' ' || count(DISTINCT usr) || ' ' || min(usr) FROM public.seen WHERE tag = 'bob'}), '10 1 bob',
	"as bob");
# ALTER TABLE ... OWNER TO keeps the table (and its registration)
q1(q{ALTER TABLE shared.x OWNER TO alice; SELECT iact.sync_alter_table('shared.x', reset_watermark => true)});
is(q1(q{SELECT status FROM iact.sync_now('shared.x')}), 'success', 'a change of owner keeps the registration');

# --- 2 again, in the worker: a lock it kept would be held for as long as the server runs ---
$node->safe_psql($db, q{
	SET ROLE alice;
	CREATE TABLE alice.lw (id integer PRIMARY KEY, val text, changed_at timestamp);
	CREATE FUNCTION alice.grab_w() RETURNS trigger LANGUAGE plpgsql AS $$
	BEGIN
		PERFORM pg_catalog.pg_advisory_lock(4545, 1);
		RETURN NEW;
	END $$;
	CREATE TRIGGER grab_w BEFORE INSERT ON alice.lw FOR EACH ROW EXECUTE FUNCTION alice.grab_w();});
q1(q{SELECT iact.sync_add_table('ivr', 'opn_t', 'alice.lw', watermark_column => 'changed_at', lookback => 0,
	retention_days => 0)});
is(q1(q{SELECT iact.request_sync('alice.lw')}), 't', 'the worker is asked to sync alice.lw');
ok($node->poll_query_until($db, q{SELECT count(*) > 0 FROM iact.sync_runs
	WHERE target_table = 'alice.lw' AND status <> 'running'}), 'the worker ran it');
is(q1(q{SELECT status || ' ' || rows_inserted FROM iact.sync_runs WHERE target_table = 'alice.lw' ORDER BY id DESC LIMIT 1}),
	'success 10', 'successfully (the trigger ran for each row)');
is(q1(q{SELECT count(*) FROM alice.lw}), '10', 'the rows are there');
is(q1(q{SELECT count(*) FROM pg_catalog.pg_locks WHERE locktype = 'advisory' AND classid = 4545}), '0',
	"the worker holds no advisory lock of the owner's trigger after the run");

$node->stop;
mariadb_sql('DROP TABLE opn_t');
done_testing();
