# A hostile review of the sync's security rules (doc/sync.md, "Who runs
# what"), beyond test/t/080_security_sync.pl: what a non-superuser target
# owner's code may try while a superuser (sync_now, CALL sync_run, the
# worker) syncs her table.
#
# - deferred constraint triggers (initially deferred, or deferred by the
#   owner's own SET CONSTRAINTS) never fire as the caller: PostgreSQL refuses
#   to queue them inside the restricted operation, so the run fails;
# - domain checks of the target's column types (the conversions, the
#   watermark), column defaults, rules and forced row-level security run as
#   the owner;
# - the owner's code cannot leave the restricted context (SET ROLE, RESET
#   ROLE, SET SESSION AUTHORIZATION, set_config('role'), COMMIT, terminating
#   the backend) and what it may change (search_path, application_name, any
#   user setting) is undone before anything else runs;
# - an owner's failing step leaves the next table of the same pass (another
#   owner's) with the right user, rights and settings;
# - iact's temporary table of seen keys belongs to iact: the owner may add
#   keys (her own table's result only) but not drop, empty or change it;
# - a table whose owner changes while a batch-committing run is under way
#   is written as its NEW owner from the next batch on (before the fix the
#   run kept the old owner, a superuser, and the new owner's trigger ran
#   with superuser rights);
# - foreign keys across owners follow PostgreSQL's rule: the check of the
#   target's key in another role's table, and a cascade from the target into
#   another role's table, run as that role (its trigger never as the caller);
# - the owner's trigger starting a nested run of the same table is skipped
#   (the sync lock is re-entrant inside one backend: before the fix the
#   nested run ran, its own insert started another, and so on until MariaDB
#   refused connections: "Too many connections");
# - a run whose batch fails holds its lock to the end (a second run
#   meanwhile is skipped) and releases it (the next run is not);
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use IPC::Run;
use IactTest;
use IactMariaDB;

plan skip_all => 'no MariaDB from the harness (run through test/check.sh)'
  unless $ENV{IACT_MARIADB_PORT} && $ENV{IACT_MARIADB_CLI};

my $node = iact_node('sync_attacks', conf => "iact.sync_retry_delay = '1s'\n");
$node->start;
my $db = 'postgres';
my $su = $node->safe_psql($db, 'SELECT current_user');

sub q1 { return $node->safe_psql($db, shift); }

sub poll { return $node->poll_query_until($db, shift); }

my $pw = $ENV{IACT_MARIADB_PASSWORD};
$pw =~ s/'/''/g;

mariadb_sql(q{DROP TABLE IF EXISTS atk_t, atk_code;
	CREATE TABLE atk_t (id int PRIMARY KEY, val varchar(20), changed_at datetime NOT NULL);
	INSERT INTO atk_t SELECT seq, CONCAT('v', seq), '2025-01-01' + INTERVAL seq SECOND FROM seq_1_to_10;
	CREATE TABLE atk_code (code varchar(10) PRIMARY KEY, val int);
	INSERT INTO atk_code VALUES ('a', 1), ('b', 2), ('c', 3);});

$node->safe_psql($db, qq{
	CREATE EXTENSION iact;
	CREATE ROLE alice LOGIN; CREATE ROLE bob LOGIN;
	GRANT USAGE ON SCHEMA iact TO alice, bob;
	GRANT EXECUTE ON FUNCTION iact.sync_now(text), iact._sync_table(integer), iact._sync_table_id(text),
		iact._sync_target_name(text), iact._sync_history_purge() TO alice;
	GRANT SELECT ON iact.sync_tables, iact.sync_runs TO alice;
	CREATE SERVER ivr FOREIGN DATA WRAPPER iact_mariadb
	  OPTIONS (host '127.0.0.1', port '$ENV{IACT_MARIADB_PORT}', dbname 'ivr');
	GRANT USAGE ON FOREIGN SERVER ivr TO alice, bob;
	CREATE USER MAPPING FOR CURRENT_USER SERVER ivr OPTIONS (user '$ENV{IACT_MARIADB_USER}', password '$pw');
	CREATE USER MAPPING FOR alice SERVER ivr OPTIONS (user '$ENV{IACT_MARIADB_USER}', password '$pw');
	CREATE USER MAPPING FOR bob SERVER ivr OPTIONS (user '$ENV{IACT_MARIADB_USER}', password '$pw');
	CREATE SCHEMA alice AUTHORIZATION alice;
	CREATE SCHEMA bob AUTHORIZATION bob;
	CREATE SCHEMA sup;
	-- who ran what, written by anyone's code
	CREATE TABLE public.seen (tag text, usr text, su text, sp text, extra text);
	GRANT INSERT ON public.seen TO PUBLIC;
	-- true when the caller may read a server file (superusers only here)
	CREATE FUNCTION public.note(tag text, extra text DEFAULT NULL) RETURNS boolean LANGUAGE plpgsql AS \$\$
	DECLARE su boolean := true;
	BEGIN
		BEGIN
			PERFORM pg_catalog.pg_read_file('PG_VERSION');
		EXCEPTION WHEN insufficient_privilege THEN
			su := false;
		END;
		INSERT INTO public.seen VALUES (tag, current_user, su::text,
			pg_catalog.current_setting('search_path'), extra);
		RETURN true;
	END \$\$;});

sub seen
{
	my $tag = shift;
	return q1(qq{SELECT coalesce(string_agg(DISTINCT usr || '/' || su, ','), 'none') FROM public.seen
		WHERE tag = '$tag'});
}

# --- deferred constraint triggers ---------------------------------------------
$node->safe_psql($db, q{
	SET ROLE alice;
	CREATE TABLE alice.d1 (id integer PRIMARY KEY, val text, changed_at timestamp);
	CREATE TABLE alice.d2 (id integer PRIMARY KEY, val text, changed_at timestamp);
	CREATE FUNCTION alice.deferred_note() RETURNS trigger LANGUAGE plpgsql AS $$
	BEGIN
		PERFORM public.note(TG_TABLE_NAME);
		RETURN NULL;
	END $$;
	CREATE CONSTRAINT TRIGGER later AFTER INSERT OR UPDATE ON alice.d1
		DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION alice.deferred_note();
	-- initially immediate, deferred by the owner's own row trigger
	CREATE CONSTRAINT TRIGGER later2 AFTER INSERT OR UPDATE ON alice.d2
		DEFERRABLE INITIALLY IMMEDIATE FOR EACH ROW EXECUTE FUNCTION alice.deferred_note();
	CREATE FUNCTION alice.defer_all() RETURNS trigger LANGUAGE plpgsql AS $$
	BEGIN
		SET CONSTRAINTS ALL DEFERRED;
		RETURN NEW;
	END $$;
	CREATE TRIGGER a_defer BEFORE INSERT OR UPDATE ON alice.d2 FOR EACH ROW EXECUTE FUNCTION alice.defer_all();});
for my $t ('d1', 'd2')
{
	q1(qq{SELECT iact.sync_add_table('ivr', 'atk_t', 'alice.$t', watermark_column => 'changed_at',
		lookback => 0, retention_days => 0, batch_size => 4)});
	my ($ret, $out, $err) = $node->psql($db, qq{SELECT status || ' ' || error FROM iact.sync_now('alice.$t')});
	like($out, qr/^failed cannot fire deferred trigger within security-restricted operation/,
		"sync_now of alice.$t: a deferred constraint trigger is refused inside the owner's step");
	($ret, $out, $err) = $node->psql($db, qq{CALL iact.sync_run('alice.$t')});
	is(q1(qq{SELECT status FROM iact.sync_runs WHERE target_table = 'alice.$t' ORDER BY id DESC LIMIT 1}),
		'failed', "CALL sync_run of alice.$t fails as well");
	is(seen($t), 'none', "the deferred trigger of alice.$t never ran (not as the caller at commit either)");
	is(q1(qq{SELECT count(*) FROM alice.$t}), '0', 'and nothing was written');
}

# --- domains, defaults, rules, forced RLS: all the owner's ------------------------
$node->safe_psql($db, q{
	SET ROLE alice;
	CREATE DOMAIN alice.did AS integer CHECK (public.note('domain id'));
	CREATE DOMAIN alice.dts AS timestamp CHECK (public.note('domain watermark'));
	CREATE TABLE alice.log (usr text);
	CREATE TABLE alice.u (id alice.did PRIMARY KEY, val text, changed_at alice.dts,
		extra text DEFAULT (public.note('default')::text));
	CREATE RULE also_log AS ON INSERT TO alice.u DO ALSO SELECT public.note('rule');
	ALTER TABLE alice.u ENABLE ROW LEVEL SECURITY;
	ALTER TABLE alice.u FORCE ROW LEVEL SECURITY;
	CREATE POLICY p ON alice.u USING (public.note('policy using')) WITH CHECK (public.note('policy check'));});
q1(q{SELECT iact.sync_add_table('ivr', 'atk_t', 'alice.u', watermark_column => 'changed_at', lookback => 0,
	retention_days => 0, batch_size => 4)});
my ($ret, $out, $err) = $node->psql($db, q{SELECT status || coalesce(' ' || error, '') FROM iact.sync_now('alice.u')});
is($out, 'success', "a superuser's sync_now of alice.u (domains, default, rule, forced RLS): the first load")
  or diag($err);
# the incremental upsert (INSERT ... ON CONFLICT) refuses a table with an
# INSERT rule: the rule goes after the first load
$node->safe_psql($db, q{SET ROLE alice; DROP RULE also_log ON alice.u});
mariadb_sql(q{UPDATE atk_t SET val = 'x', changed_at = '2025-02-01' WHERE id = 3});
($ret, $out, $err) = $node->psql($db, q{CALL iact.sync_run('alice.u')});
is(q1(q{SELECT status FROM iact.sync_runs WHERE target_table = 'alice.u' ORDER BY id DESC LIMIT 1}),
	'success', "CALL sync_run of alice.u") or diag($err);
for my $tag ('domain id', 'domain watermark', 'default', 'rule', 'policy using', 'policy check')
{
	is(seen($tag), 'alice/false', "alice's $tag ran as alice only, without superuser rights");
}

# --- foreign keys across owners: PostgreSQL's RI actions run as the other table's owner
# alice's target alice.parent is referenced by bob's bob.child (ON DELETE CASCADE, bob's
# trigger on it); alice's target alice.kid references bob's bob.ref
$node->safe_psql($db, q{
	SET ROLE alice;
	CREATE TABLE alice.parent (id integer PRIMARY KEY, val text, changed_at timestamp);
	GRANT REFERENCES ON alice.parent TO bob;
	GRANT USAGE ON SCHEMA alice TO bob;
	RESET ROLE; SET ROLE bob;
	CREATE TABLE bob.child (id integer PRIMARY KEY REFERENCES alice.parent ON DELETE CASCADE);
	CREATE FUNCTION bob.child_note() RETURNS trigger LANGUAGE plpgsql AS $$
	BEGIN
		PERFORM public.note('cascade to bob.child');
		RETURN OLD;
	END $$;
	CREATE TRIGGER child_note BEFORE DELETE ON bob.child FOR EACH ROW EXECUTE FUNCTION bob.child_note();
	CREATE TABLE bob.ref (id integer PRIMARY KEY);
	INSERT INTO bob.ref SELECT g FROM generate_series(1, 20) g;
	GRANT REFERENCES ON bob.ref TO alice;
	GRANT USAGE ON SCHEMA bob TO alice;
	RESET ROLE; SET ROLE alice;
	CREATE TABLE alice.kid (id integer PRIMARY KEY REFERENCES bob.ref, val text, changed_at timestamp);});
q1(q{SELECT iact.sync_add_table('ivr', 'atk_t', 'alice.parent', retention_days => 0)});
q1(q{SELECT iact.sync_add_table('ivr', 'atk_t', 'alice.kid', retention_days => 0)});
is(q1(q{SELECT status FROM iact.sync_now('alice.parent')}), 'success', 'alice.parent loaded');
is(q1(q{SELECT status FROM iact.sync_now('alice.kid')}), 'success',
	"alice.kid loaded: its foreign key's check on bob.ref passes (run as bob, PostgreSQL's rule)");
$node->safe_psql($db, q{SET ROLE bob; INSERT INTO bob.child VALUES (9), (10)});
mariadb_sql(q{DELETE FROM atk_t WHERE id = 10});
($ret, $out, $err) = $node->psql($db, q{SELECT status || coalesce(' ' || error, '') FROM iact.sync_now('alice.parent')});
is($out, 'success', "a full sync deleting from alice.parent cascades to bob.child") or diag($err);
is(q1(q{SELECT string_agg(id::text, ',') FROM bob.child}), '9', 'the cascade deleted the child row');
is(seen('cascade to bob.child'), 'bob/false', "bob's trigger on the cascaded delete ran as bob, without superuser rights");
mariadb_sql(q{INSERT INTO atk_t VALUES (10, 'v10', '2025-01-01 00:00:10')});
q1(q{SELECT iact.sync_now('alice.parent')});

# --- breaking out of the restricted context --------------------------------------
$node->safe_psql($db, q{
	SET ROLE alice;
	CREATE TABLE alice.esc (id integer PRIMARY KEY, val text, changed_at timestamp);
	CREATE PROCEDURE alice.do_commit() LANGUAGE plpgsql AS $$ BEGIN COMMIT; END $$;
	CREATE FUNCTION alice.escape() RETURNS trigger LANGUAGE plpgsql AS $$
	DECLARE
		s text;
	BEGIN
		IF NEW.id <> 1 THEN
			RETURN NEW;
		END IF;
		FOREACH s IN ARRAY ARRAY['SET ROLE SUPERUSER', 'RESET ROLE', 'SET SESSION AUTHORIZATION SUPERUSER',
			'RESET SESSION AUTHORIZATION', 'SELECT pg_catalog.set_config(''role'', ''SUPERUSER'', false)',
			'CALL alice.do_commit()', 'SELECT pg_catalog.pg_terminate_backend(pg_catalog.pg_backend_pid())',
			'SET session_replication_role = replica', 'CREATE TEMP TABLE alice_tmp (x int)',
			'SET iact.sync_allow_write_account = on']
		LOOP
			s := pg_catalog.replace(s, 'SUPERUSER', (SELECT pg_catalog.quote_ident(rolname)
				FROM pg_catalog.pg_roles WHERE oid = 10));
			BEGIN
				EXECUTE s;
				PERFORM public.note('escape', s || ': allowed');
			EXCEPTION WHEN OTHERS THEN
				PERFORM public.note('escape', s || ': ' || SQLSTATE);
			END;
		END LOOP;
		-- what it may change, it changes for the session
		PERFORM pg_catalog.set_config('search_path', 'alice, public', false);
		PERFORM pg_catalog.set_config('application_name', 'changed by alice', false);
		PERFORM pg_catalog.set_config('iact.sync_batch_size', '7', false);
		PERFORM pg_catalog.set_config('statement_timeout', '1', false);
		RETURN NEW;
	END $$;
	CREATE TRIGGER escape BEFORE INSERT ON alice.esc FOR EACH ROW EXECUTE FUNCTION alice.escape();});
q1(q{SELECT iact.sync_add_table('ivr', 'atk_t', 'alice.esc', watermark_column => 'changed_at', lookback => 0,
	retention_days => 0)});
($ret, $out, $err) = $node->psql($db, q{SET application_name = 'mine';
	SELECT status FROM iact.sync_now('alice.esc');
	SELECT current_user || ' ' || session_user || ' ' || current_setting('search_path') || ' '
		|| current_setting('application_name') || ' ' || current_setting('iact.sync_batch_size') || ' '
		|| current_setting('statement_timeout') || ' ' || current_setting('is_superuser');});
is($out, "success\n$su $su \"\$user\", public mine 1000 0 on",
	"after the run the caller's user and settings are its own again") or diag($err);
my $esc = q1(q{SELECT string_agg(extra, E'\n' ORDER BY extra) FROM public.seen WHERE tag = 'escape'});
unlike($esc, qr/allowed/, "none of the owner's escapes is allowed") or diag($esc);
is(q1(q{SELECT count(*) FROM public.seen WHERE tag = 'escape'}), '10', 'each was tried');
is(seen('escape'), 'alice/false', 'all of them as alice');
like($esc, qr/SET ROLE \Q$su\E: 42501/, 'SET ROLE: insufficient privilege');

# --- one pass, two owners, the first failing -------------------------------------
$node->safe_psql($db, q{
	SET ROLE alice;
	CREATE TABLE alice.a_fail (id integer PRIMARY KEY, val text, changed_at timestamp);
	CREATE FUNCTION alice.fail() RETURNS trigger LANGUAGE plpgsql AS $$
	BEGIN
		PERFORM pg_catalog.set_config('search_path', 'alice, public', false);
		PERFORM pg_catalog.set_config('work_mem', '64kB', false);
		RAISE EXCEPTION 'alice fails on purpose';
	END $$;
	CREATE TRIGGER fail BEFORE INSERT ON alice.a_fail FOR EACH ROW EXECUTE FUNCTION alice.fail();
	RESET ROLE; SET ROLE bob;
	CREATE TABLE bob.b_ok (id integer PRIMARY KEY, val text, changed_at timestamp);
	CREATE FUNCTION bob.note() RETURNS trigger LANGUAGE plpgsql AS $$
	BEGIN
		PERFORM public.note('bob ' || pg_catalog.current_setting('application_name'),
			pg_catalog.current_setting('work_mem'));
		RETURN NEW;
	END $$;
	CREATE TRIGGER note BEFORE INSERT OR UPDATE ON bob.b_ok FOR EACH ROW EXECUTE FUNCTION bob.note();});
q1(q{SELECT iact.sync_add_table('ivr', 'atk_t', 'alice.a_fail', watermark_column => 'changed_at',
	lookback => 0, retention_days => 0)});
q1(q{SELECT iact.sync_add_table('ivr', 'atk_t', 'bob.b_ok', watermark_column => 'changed_at',
	lookback => 0, retention_days => 0)});
# only these two enabled for the passes below
q1(q{SELECT iact.sync_alter_table(target_schema || '.' || target_table, enabled => false)
	FROM iact.sync_tables WHERE target_table NOT IN ('a_fail', 'b_ok')});
($ret, $out, $err) = $node->psql($db, q{SET application_name = 'pass sync_now';
	SELECT string_agg(target_table || ' ' || status, ', ' ORDER BY target_table) FROM iact.sync_now()});
is($out, 'alice.a_fail failed, bob.b_ok success', 'sync_now() of both: alice fails, bob succeeds') or diag($err);
is(seen('bob pass sync_now'), 'bob/false', "bob's trigger ran as bob after alice's failure (sync_now())");
is(q1(q{SELECT DISTINCT sp || ' ' || extra FROM public.seen WHERE tag = 'bob pass sync_now'}),
	'pg_catalog, pg_temp 4MB', "with iact's search_path and the caller's work_mem, not alice's");
q1(q{SELECT iact.sync_alter_table('bob.b_ok', reset_watermark => true)});
q1(q{TRUNCATE bob.b_ok});
($ret, $out, $err) = $node->psql($db, q{SET application_name = 'pass sync_run'; CALL iact.sync_run()});
is(q1(q{SELECT string_agg(target_table || ' ' || status, ', ' ORDER BY target_table) FROM (
	SELECT DISTINCT ON (target_table) target_table, status FROM iact.sync_runs
	WHERE target_table IN ('alice.a_fail', 'bob.b_ok') ORDER BY target_table, id DESC) x}),
	'alice.a_fail failed, bob.b_ok success', 'CALL sync_run(): alice fails, bob succeeds');
is(seen('bob pass sync_run'), 'bob/false', "bob's trigger ran as bob after alice's failure (CALL sync_run())");
is(q1(q{SELECT DISTINCT sp || ' ' || extra FROM public.seen WHERE tag = 'bob pass sync_run'}),
	'pg_catalog, pg_temp 4MB', 'with the right settings');

q1(q{SELECT iact.sync_alter_table('alice.a_fail', enabled => false)});

# --- iact's temporary table of seen keys --------------------------------------------
$node->safe_psql($db, q{
	SET ROLE alice;
	CREATE TABLE alice.codes (code text PRIMARY KEY, val integer);
	CREATE FUNCTION alice.tamper() RETURNS trigger LANGUAGE plpgsql AS $$
	DECLARE
		s text;
	BEGIN
		FOREACH s IN ARRAY ARRAY['DROP TABLE pg_temp.iact_sync_seen', 'TRUNCATE pg_temp.iact_sync_seen',
			'DELETE FROM pg_temp.iact_sync_seen', 'UPDATE pg_temp.iact_sync_seen SET code = ''zz''',
			'ALTER TABLE pg_temp.iact_sync_seen ADD COLUMN x int',
			'CREATE TRIGGER t AFTER INSERT ON pg_temp.iact_sync_seen FOR EACH ROW EXECUTE FUNCTION alice.tamper()',
			'INSERT INTO pg_temp.iact_sync_seen VALUES (''zz'')']
		LOOP
			BEGIN
				EXECUTE s;
				PERFORM public.note('tamper', s || ': allowed');
			EXCEPTION WHEN OTHERS THEN
				PERFORM public.note('tamper', s || ': ' || SQLSTATE);
			END;
		END LOOP;
		RETURN NULL;
	END $$;
	CREATE TRIGGER tamper AFTER INSERT ON alice.codes FOR EACH STATEMENT EXECUTE FUNCTION alice.tamper();});
q1(q{SELECT iact.sync_add_table('ivr', 'atk_code', 'alice.codes', retention_days => 0)});
is(q1(q{SELECT status FROM iact.sync_now('alice.codes')}), 'success', 'the first load of alice.codes');
q1(q{DELETE FROM public.seen WHERE tag = 'tamper'});
mariadb_sql(q{UPDATE atk_code SET val = 4 WHERE code = 'b'});
is(q1(q{SELECT status FROM iact.sync_now('alice.codes')}), 'success',
	"a full sync by a text key of alice.codes (with iact's table of seen keys)");
is(q1(q{SELECT string_agg(extra, ', ' ORDER BY extra) FROM public.seen WHERE tag = 'tamper' AND extra LIKE '%allowed'}),
	"INSERT INTO pg_temp.iact_sync_seen VALUES ('zz'): allowed",
	"the owner may only add keys to iact's table of seen keys");
is(q1(q{SELECT count(*) FROM public.seen WHERE tag = 'tamper' AND extra LIKE '%42501'}), '6',
	'dropping, emptying, changing it or putting a trigger on it: insufficient privilege');
is(q1(q{SELECT string_agg(code, ',' ORDER BY code) FROM alice.codes}), 'a,b,c',
	'the rows are right (a key she adds could only keep a row of her own table)');

# --- the owner changes while a batch-committing run is under way --------------------
$node->safe_psql($db, q{
	CREATE TABLE sup.slow (id integer PRIMARY KEY, val text, changed_at timestamp);
	CREATE FUNCTION sup.slow() RETURNS trigger LANGUAGE plpgsql AS $$
	BEGIN
		PERFORM pg_catalog.pg_sleep(0.3);
		RETURN NEW;
	END $$;
	CREATE TRIGGER a_slow BEFORE INSERT ON sup.slow FOR EACH ROW EXECUTE FUNCTION sup.slow();
	GRANT USAGE ON SCHEMA sup TO alice;
	SELECT iact.sync_add_table('ivr', 'atk_t', 'sup.slow', watermark_column => 'changed_at', lookback => 0,
		retention_days => 0, batch_size => 1);
	SET ROLE alice;
	CREATE FUNCTION alice.owner_note() RETURNS trigger LANGUAGE plpgsql AS $$
	BEGIN
		PERFORM public.note('new owner');
		RETURN NEW;
	END $$;});
my ($bout, $berr) = ('', '');
my $bg = IPC::Run::start(
	[ 'psql', '-X', '-qAt', '-d', $node->connstr($db), '-c', q{CALL iact.sync_run('sup.slow')} ],
	'>', \$bout, '2>', \$berr);
ok(poll(q{SELECT count(*) > 0 FROM sup.slow}), 'the run of sup.slow has committed a batch');
$node->safe_psql($db, q{ALTER TABLE sup.slow OWNER TO alice;
	SET ROLE alice;
	CREATE TRIGGER b_note BEFORE INSERT ON sup.slow FOR EACH ROW EXECUTE FUNCTION alice.owner_note();});
$bg->finish;
my $rows_after = q1(q{SELECT count(*) FROM public.seen WHERE tag = 'new owner'});
cmp_ok($rows_after, '>', 0, "the new owner's trigger ran in the batches after the change") or diag($berr);
is(seen('new owner'), 'alice/false', "the run wrote as the NEW owner: the new owner's trigger never ran as the old owner (a superuser)");
is(q1(q{SELECT count(*) FROM sup.slow}), '10', 'the run wrote every row');

# --- a nested run of the same table, started by the owner's trigger ------------------
$node->safe_psql($db, q{
	SET ROLE alice;
	CREATE TABLE alice.nest (id integer PRIMARY KEY, val text, changed_at timestamp);
	CREATE FUNCTION alice.nest() RETURNS trigger LANGUAGE plpgsql AS $$
	DECLARE
		st text;
	BEGIN
		IF NEW.id = 1 THEN
			SELECT status INTO st FROM iact.sync_now('alice.nest');
			PERFORM public.note('nested', st);
		END IF;
		RETURN NEW;
	END $$;
	CREATE TRIGGER nest BEFORE INSERT ON alice.nest FOR EACH ROW EXECUTE FUNCTION alice.nest();});
q1(q{SELECT iact.sync_add_table('ivr', 'atk_t', 'alice.nest', watermark_column => 'changed_at', lookback => 0,
	retention_days => 0)});
($ret, $out, $err) = $node->psql($db, q{SELECT status FROM iact.sync_now('alice.nest')});
is($out, 'success', 'the outer run of alice.nest') or diag($err);
is(q1(q{SELECT string_agg(extra, ',') FROM public.seen WHERE tag = 'nested'}), 'skipped',
	"a nested run of the same table started by the owner's trigger is skipped");

# --- a run whose batch fails: the lock to the end, then released -------------------
$node->safe_psql($db, q{
	SET ROLE alice;
	CREATE TABLE alice.lk (id integer PRIMARY KEY, val text, changed_at timestamp);
	CREATE FUNCTION alice.lk() RETURNS trigger LANGUAGE plpgsql AS $$
	BEGIN
		PERFORM pg_catalog.pg_sleep(0.3);
		IF NEW.id = 6 THEN
			RAISE EXCEPTION 'batch of id 6 fails';
		END IF;
		RETURN NEW;
	END $$;
	CREATE TRIGGER lk BEFORE INSERT ON alice.lk FOR EACH ROW EXECUTE FUNCTION alice.lk();});
q1(q{SELECT iact.sync_add_table('ivr', 'atk_t', 'alice.lk', watermark_column => 'changed_at', lookback => 0,
	retention_days => 0, batch_size => 1)});
my $lk = q1(q{SELECT id FROM iact.sync_tables WHERE target_table = 'lk'});
($bout, $berr) = ('', '');
$bg = IPC::Run::start(
	[ 'psql', '-X', '-qAt', '-d', $node->connstr($db), '-c', q{CALL iact.sync_run('alice.lk')} ],
	'>', \$bout, '2>', \$berr);
ok(poll(q{SELECT count(*) > 0 FROM alice.lk}), 'the run of alice.lk has committed a batch');
is(q1(q{SELECT status FROM iact.sync_now('alice.lk')}), 'skipped', 'a second run meanwhile is skipped');
$bg->finish;
is(q1(qq{SELECT status || ' ' || error FROM iact.sync_runs WHERE table_id = $lk AND status <> 'skipped'
	ORDER BY id DESC LIMIT 1}), 'failed batch of id 6 fails', 'the first run failed in its sixth batch');
is(q1(qq{SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND objid = $lk AND objsubid = 4}), '0',
	'its lock is gone');
$node->safe_psql($db, q{SET ROLE alice; CREATE OR REPLACE FUNCTION alice.lk() RETURNS trigger LANGUAGE plpgsql
	AS $$ BEGIN RETURN NEW; END $$;});
is(q1(q{SELECT status FROM iact.sync_now('alice.lk')}), 'success', 'the next run is not skipped');

# --- the worker --------------------------------------------------------------------
mariadb_sql(q{UPDATE atk_t SET val = 'w', changed_at = '2025-03-01' WHERE id = 4});
my $before = q1(q{SELECT coalesce(max(id), 0) FROM iact.sync_runs});
q1(q{SELECT iact.request_sync('alice.u')});
ok(poll(qq{SELECT count(*) > 0 FROM iact.sync_runs WHERE id > $before AND target_table = 'alice.u'
	AND status <> 'running'}), 'the worker syncs alice.u');
is(q1(qq{SELECT status FROM iact.sync_runs WHERE id > $before AND target_table = 'alice.u'}), 'success',
	'successfully');
is(q1(q{SELECT count(*) FROM public.seen WHERE su = 'true'}), '0',
	'nothing of any owner ran with superuser rights anywhere in this test');

$node->stop;
mariadb_sql('DROP TABLE atk_t, atk_code');
done_testing();
