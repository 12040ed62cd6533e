# The sync's security rules (doc/sync.md, "Who runs what") attacked for real:
#
# - search-path trojans: the database's owner (not a superuser) plants, in
#   public, a function, operator or aggregate for every name the sync's and
#   the worker's internal SQL uses, each logging who ran it; the victims
#   (a superuser's session, the owner of a target, the worker) put public
#   first in their search_path.  sync_add_table, sync_now, CALL sync_run and
#   the worker never run one (and a control shows that an unqualified call
#   does run them);
# - a non-superuser target owner's trigger, run by a superuser's sync_now,
#   CALL sync_run and the worker, records that owner as current_user; the
#   owner's CHECK constraint and index function cannot do what only a
#   superuser can; the worker's pg_stat_activity line names the owner;
# - the owner's MariaDB user mapping and its connection rules apply whoever
#   starts the run;
# - only the owner (or a member of the owning role) registers, changes or
#   removes a registration, or starts a run; direct writes to the registry
#   are refused;
# - advisory-lock squatting does not block a sync, and a trigger calling
#   pg_advisory_unlock_all() does not release the sync's lock.
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

my $node = iact_node('security_sync', conf => "iact.sync_retry_delay = '1s'\n");
$node->start;
my $db = 'postgres';

# every check of the test itself connects with a safe search_path (the
# database's default turns hostile below)
sub q1
{
	local $ENV{PGOPTIONS} = '-c search_path=pg_catalog';
	return $node->safe_psql($db, shift);
}

sub poll
{
	local $ENV{PGOPTIONS} = '-c search_path=pg_catalog';
	return $node->poll_query_until($db, shift);
}

sub as_role
{
	my ($role, $sql) = @_;
	return $node->psql($db, "SET ROLE $role; $sql");
}

my $pw = $ENV{IACT_MARIADB_PASSWORD};
$pw =~ s/'/''/g;

mariadb_sql(q{DROP TABLE IF EXISTS sec_t, sec_code;
	CREATE TABLE sec_t (id int PRIMARY KEY, val varchar(20), changed_at datetime NOT NULL);
	INSERT INTO sec_t SELECT seq, CONCAT('v', seq), '2025-01-01' + INTERVAL seq SECOND FROM seq_1_to_10;
	CREATE TABLE sec_code (code varchar(10) PRIMARY KEY, val int);
	INSERT INTO sec_code VALUES ('a', 1), ('b', 2), ('c', 3);});

# --- roles, the server, the targets ------------------------------------------
my @grants = (
	'FUNCTION iact.sync_add_table(name, text, text, text[], text, bigint, integer, text, integer, boolean)',
	'FUNCTION iact._sync_add_table(name, text, text, regclass, name, name, text[], text, bigint, integer, text, integer, boolean)',
	'FUNCTION iact._sync_target_name(text)', 'FUNCTION iact._sync_table_id(text)',
	'FUNCTION iact._sync_register(name, text, text, regclass, text[], text, bigint, integer, integer, text, boolean)',
	'FUNCTION iact._sync_unregister(integer)',
	'FUNCTION iact._sync_alter(integer, boolean, bigint, integer, integer, boolean)',
	'FUNCTION iact.sync_alter_table(text, boolean, bigint, integer, integer, boolean)',
	'FUNCTION iact.sync_remove_table(text)', 'FUNCTION iact.sync_source_columns(name, text, boolean)',
	'FUNCTION iact.sync_now(text)', 'FUNCTION iact._sync_table(integer)', 'FUNCTION iact._sync_runnable_ids()',
	'FUNCTION iact._sync_history_purge()', 'PROCEDURE iact.sync_run(text)');
$node->safe_psql($db, qq{
	CREATE EXTENSION iact;
	CREATE ROLE alice LOGIN; CREATE ROLE bob LOGIN; CREATE ROLE carol LOGIN IN ROLE alice;
	CREATE ROLE mallory LOGIN;
	ALTER DATABASE $db OWNER TO mallory;
	GRANT USAGE ON SCHEMA iact TO alice, bob, carol;
	GRANT SELECT ON iact.sync_tables, iact.sync_runs, iact.sync_rejects TO alice, bob, carol;
} . join('', map { "GRANT EXECUTE ON $_ TO alice, bob, carol;\n" } @grants) . qq{
	CREATE SERVER ivr FOREIGN DATA WRAPPER iact_mariadb
	  OPTIONS (host '127.0.0.1', port '$ENV{IACT_MARIADB_PORT}', dbname 'ivr');
	GRANT USAGE ON FOREIGN SERVER ivr TO alice, bob, carol;
	CREATE USER MAPPING FOR CURRENT_USER SERVER ivr OPTIONS (user '$ENV{IACT_MARIADB_USER}', password '$pw');
	CREATE USER MAPPING FOR alice SERVER ivr OPTIONS (user '$ENV{IACT_MARIADB_USER}', password '$pw');
	CREATE USER MAPPING FOR bob SERVER ivr OPTIONS (user '$ENV{IACT_MARIADB_USER}', password '$pw');
	CREATE SCHEMA alice AUTHORIZATION alice;
	GRANT USAGE ON SCHEMA alice TO bob;
	CREATE SCHEMA sup;});

# alice's target: a trigger recording who runs it (and whether a superuser),
# a CHECK constraint and an index function that try what only a superuser may
$node->safe_psql($db, q{
	SET ROLE alice;
	CREATE TABLE alice.who (usr text, su text, via text);
	CREATE TABLE alice.t1 (id integer PRIMARY KEY, val text, changed_at timestamp);
	CREATE FUNCTION alice.record_who() RETURNS trigger LANGUAGE plpgsql AS $$
	BEGIN
		INSERT INTO alice.who VALUES (current_user, alice.can_read_files()::text,
			pg_catalog.current_setting('application_name'));
		RETURN NEW;
	END $$;
	CREATE TRIGGER record_who AFTER INSERT OR UPDATE ON alice.t1 FOR EACH ROW EXECUTE FUNCTION alice.record_who();
	-- true when it may read a server file (only superusers and pg_read_server_files may)
	CREATE FUNCTION alice.can_read_files() RETURNS boolean LANGUAGE plpgsql AS $$
	BEGIN
		PERFORM pg_catalog.pg_read_file('PG_VERSION');
		RETURN true;
	EXCEPTION WHEN insufficient_privilege THEN
		RETURN false;
	END $$;
	CREATE FUNCTION alice.refuse_superuser(v text) RETURNS text LANGUAGE plpgsql IMMUTABLE AS $$
	BEGIN
		IF alice.can_read_files() THEN
			RAISE EXCEPTION 'index function ran with superuser rights (current_user %)', current_user;
		END IF;
		RETURN v;
	END $$;
	CREATE TABLE alice.t2 (id integer PRIMARY KEY, val text CHECK (NOT alice.can_read_files()),
		changed_at timestamp);
	CREATE INDEX ON alice.t2 (alice.refuse_superuser(val));
	CREATE TABLE alice.lockt (id integer PRIMARY KEY, val text, changed_at timestamp);
	CREATE FUNCTION alice.unlock_all() RETURNS trigger LANGUAGE plpgsql AS $$
	BEGIN
		PERFORM pg_catalog.pg_advisory_unlock_all();
		PERFORM pg_catalog.pg_sleep(0.4);
		RETURN NEW;
	END $$;
	CREATE TRIGGER unlock_all AFTER INSERT ON alice.lockt FOR EACH ROW EXECUTE FUNCTION alice.unlock_all();});

# the controls: run by the superuser directly, the index function refuses
# and the constraint's function says it can read files
my ($ret, $out, $err) = $node->psql($db, q{SELECT alice.refuse_superuser('x')});
like($err, qr/index function ran with superuser rights/, 'control: the index function refuses a superuser');
is(q1('SELECT alice.can_read_files()'), 't', 'control: a superuser can read server files');

# --- the trojans ------------------------------------------------------------
# for every function, aggregate and operator name the internal SQL uses, an
# exact-type match in public that logs who ran it and then does the real work
my @fn = (
	[ 'cardinality', 'anyarray', 'integer', 'pg_catalog.cardinality($1)' ],
	[ 'cardinality', 'text[]', 'integer', 'pg_catalog.cardinality($1)' ],
	[ 'array_length', 'text[], integer', 'integer', 'pg_catalog.array_length($1, $2)' ],
	[ 'array_position', 'text[], text', 'integer', 'pg_catalog.array_position($1, $2)' ],
	[ 'array_remove', 'text[], text', 'text[]', 'pg_catalog.array_remove($1, $2)' ],
	[ 'string_to_array', 'text, text', 'text[]', 'pg_catalog.string_to_array($1, $2)' ],
	[ 'split_part', 'text, text, integer', 'text', 'pg_catalog.split_part($1, $2, $3)' ],
	[ 'btrim', 'text', 'text', 'pg_catalog.btrim($1)' ],
	[ 'octet_length', 'text', 'integer', 'pg_catalog.octet_length($1)' ],
	[ 'quote_ident', 'text', 'text', 'pg_catalog.quote_ident($1)' ],
	[ 'format', 'text, text', 'text', 'pg_catalog.format($1, $2)' ],
	[ 'format', 'text, text, text', 'text', 'pg_catalog.format($1, $2, $3)' ],
	[ 'format', 'text, name, name', 'text', 'pg_catalog.format($1, $2, $3)' ],
	[ 'current_setting', 'text', 'text', 'pg_catalog.current_setting($1)' ],
	[ 'current_setting', 'text, boolean', 'text', 'pg_catalog.current_setting($1, $2)' ],
	[ 'current_schema', '', 'name', 'pg_catalog.current_schema()' ],
	[ 'to_regclass', 'text', 'regclass', 'pg_catalog.to_regclass($1)' ],
	[ 'to_char', 'timestamp, text', 'text', 'pg_catalog.to_char($1, $2)' ],
	[ 'now', '', 'timestamptz', 'pg_catalog.now()' ],
	[ 'clock_timestamp', '', 'timestamptz', 'pg_catalog.clock_timestamp()' ],
	[ 'pg_has_role', 'oid, text', 'boolean', 'pg_catalog.pg_has_role($1, $2)' ],
	[ 'date_part', 'text, interval', 'double precision', 'pg_catalog.date_part($1, $2)' ],
	[ 'pg_try_advisory_lock', 'integer, integer', 'boolean', 'pg_catalog.pg_try_advisory_lock($1, $2)' ],
	[ 'pg_try_advisory_xact_lock', 'integer, integer', 'boolean', 'pg_catalog.pg_try_advisory_xact_lock($1, $2)' ],
	[ 'pg_advisory_unlock', 'integer, integer', 'boolean', 'pg_catalog.pg_advisory_unlock($1, $2)' ],
);
my @setof = ([ 'unnest', 'text[]', 'text', 'pg_catalog.unnest($1)' ],
	[ 'unnest', 'integer[]', 'integer', 'pg_catalog.unnest($1)' ]);
my @op = (
	[ '=', 'text', 'text' ], [ '=', 'name', 'name' ], [ '=', 'integer', 'integer' ],
	[ '=', 'bigint', 'bigint' ], [ '=', 'oid', 'oid' ], [ '=', 'regclass', 'regclass' ],
	[ '=', 'boolean', 'boolean' ],
	[ '<>', 'text', 'text' ], [ '<>', 'oid', 'oid' ], [ '<', 'integer', 'integer' ], [ '>', 'integer', 'integer' ],
	[ '<=', 'integer', 'integer' ], [ '>=', 'integer', 'integer' ], [ '<', 'bigint', 'bigint' ],
	[ '>', 'bigint', 'bigint' ], [ '<=', 'bigint', 'bigint' ], [ '>=', 'bigint', 'bigint' ],
	[ '>=', 'timestamp', 'timestamp' ], [ '<=', 'timestamp', 'timestamp' ], [ '<', 'timestamp', 'timestamp' ],
	[ '-', 'timestamptz', 'timestamptz' ], [ '-', 'timestamp', 'interval' ], [ '||', 'text', 'text' ],
	[ '=', 'text[]', 'text[]' ], [ '<>', 'integer', 'integer' ],
);
my $trojans = q{
	SET ROLE mallory;
	CREATE TABLE public.trojan_log (name text, usr text, su text);
	GRANT INSERT, SELECT ON public.trojan_log TO PUBLIC;
	CREATE FUNCTION public.trojan_note(n text) RETURNS void LANGUAGE sql AS $$
		INSERT INTO public.trojan_log VALUES (n, current_user, pg_catalog.current_setting('is_superuser')) $$;
};
my $i = 0;
for my $f (@fn)
{
	my ($name, $args, $ret, $real) = @$f;
	$trojans .= qq{CREATE FUNCTION public.$name($args) RETURNS $ret LANGUAGE sql AS \$\$
		SELECT public.trojan_note('$name($args)'); SELECT $real \$\$;\n};
}
for my $f (@setof)
{
	my ($name, $args, $ret, $real) = @$f;
	$trojans .= qq{CREATE FUNCTION public.$name($args) RETURNS SETOF $ret LANGUAGE sql AS \$\$
		SELECT public.trojan_note('$name($args)'); SELECT $real \$\$;\n};
}
for my $o (@op)
{
	my ($name, $l, $r) = @$o;
	$i++;
	my $ret = $name eq '-' ? ($r eq 'interval' ? 'timestamp' : 'interval') : $name eq '||' ? 'text' : 'boolean';
	$trojans .= qq{CREATE FUNCTION public.trojan_op$i(a $l, b $r) RETURNS $ret LANGUAGE sql AS \$\$
		SELECT public.trojan_note('$l $name $r'); SELECT a OPERATOR(pg_catalog.$name) b \$\$;
		CREATE OPERATOR public.$name (LEFTARG = $l, RIGHTARG = $r, FUNCTION = public.trojan_op$i);\n};
}
$trojans .= q{
	CREATE FUNCTION public.trojan_agg(s text[], v text) RETURNS text[] LANGUAGE sql AS $$
		SELECT public.trojan_note('array_agg(text)'); SELECT pg_catalog.array_append(s, v) $$;
	CREATE AGGREGATE public.array_agg(text) (SFUNC = public.trojan_agg, STYPE = text[]);
	CREATE FUNCTION public.trojan_count(s bigint) RETURNS bigint LANGUAGE sql AS $$
		SELECT public.trojan_note('count(*)'); SELECT s OPERATOR(pg_catalog.+) 1 $$;
	CREATE AGGREGATE public.count(*) (SFUNC = public.trojan_count, STYPE = bigint, INITCOND = '0');
	CREATE FUNCTION public.trojan_count1(s bigint, v integer) RETURNS bigint LANGUAGE sql AS $$
		SELECT public.trojan_note('count(integer)'); SELECT s OPERATOR(pg_catalog.+) 1 $$;
	CREATE AGGREGATE public.count(integer) (SFUNC = public.trojan_count1, STYPE = bigint, INITCOND = '0');
};
$node->safe_psql($db, $trojans);

sub trojan_runs { return q1(q{SELECT count(*) FROM public.trojan_log}); }
sub trojan_names
{
	return q1(q{SELECT coalesce(string_agg(DISTINCT name || ' as ' || usr, ', '), '') FROM public.trojan_log});
}

# every session of the victims puts public first
my $hostile = 'SET search_path = public, pg_catalog;';

# --- registering ---------------------------------------------------------------
($ret, $out, $err) = as_role('alice', qq{$hostile
	SELECT iact.sync_add_table('ivr', 'sec_t', 'alice.t1', watermark_column => 'changed_at', lookback => 0,
		retention_days => 0, batch_size => 3);
	SELECT iact.sync_add_table('ivr', 'sec_t', 'alice.t2', retention_days => 0);
	SELECT iact.sync_add_table('ivr', 'sec_t', 'alice.lockt', watermark_column => 'changed_at', lookback => 0,
		retention_days => 0, batch_size => 1);
	SELECT iact.sync_add_table('ivr', 'sec_code', 'alice.codes', retention_days => 0);});
is($ret, 0, 'alice registers her tables (one created by the sync)') or diag($err);
($ret, $out, $err) = $node->psql($db, qq{$hostile
	SELECT iact.sync_add_table('ivr', 'sec_t', 'sup.t', retention_days => 0);});
is($ret, 0, "a superuser registers a superuser's table") or diag($err);
is(trojan_runs(), 0, 'sync_add_table (as the owner and as a superuser) runs no trojan') or diag(trojan_names());
is(q1(q{SELECT tableowner FROM pg_tables WHERE schemaname = 'alice' AND tablename = 'codes'}), 'alice',
	'the target created by sync_add_table belongs to the caller');

# --- a superuser's sync_now and CALL sync_run write as the owner ---------------
($ret, $out, $err) = $node->psql($db, qq{$hostile SET application_name = 'superuser sync_now';
	SELECT status, error FROM iact.sync_now('alice.t1');});
is($out, 'success|', "a superuser's sync_now of alice's table succeeds") or diag($err);
is(q1(q{SELECT string_agg(DISTINCT usr || '/' || su, ',') FROM alice.who WHERE via = 'superuser sync_now'}),
	'alice/false', "alice's trigger ran as alice, without superuser rights (it cannot read server files), in a superuser's sync_now");
is(q1(q{SELECT count(*) FROM alice.who}), '10', 'once per row');

mariadb_sql(q{UPDATE sec_t SET val = 'changed', changed_at = '2025-06-01' WHERE id IN (2, 3)});
($ret, $out, $err) = $node->psql($db, qq{$hostile SET application_name = 'superuser sync_run';
	CALL iact.sync_run('alice.t1');});
is($ret, 0, "a superuser's CALL sync_run of alice's table") or diag($err);
is(q1(q{SELECT string_agg(DISTINCT usr || '/' || su, ',') || ' ' || count(*) FROM alice.who
	WHERE via = 'superuser sync_run'}), 'alice/false 2', "alice's trigger ran as alice in CALL sync_run");

# the constraint's and the index function's checks: they cannot read files
($ret, $out, $err) = $node->psql($db, qq{$hostile
	SELECT status, rows_inserted, error FROM iact.sync_now('alice.t2');});
is($out, 'success|10|', "alice's CHECK and index functions ran without superuser rights (a superuser's sync_now)")
  or diag($err);
($ret, $out, $err) = $node->psql($db, qq{$hostile
	SELECT status FROM iact.sync_now('alice.codes'); SELECT status FROM iact.sync_now('alice.codes');});
is($out, "success\nsuccess", "a full sync by a text key (iact's temporary table of keys) as alice") or diag($err);
is(q1(q{SELECT string_agg(code, ',' ORDER BY code) FROM alice.codes}), 'a,b,c', 'and its rows are there');
is(trojan_runs(), 0, 'sync_now and CALL sync_run by a superuser run no trojan') or diag(trojan_names());

# --- the owner's user mapping and its rules ------------------------------------
$node->safe_psql($db, q{ALTER USER MAPPING FOR alice SERVER ivr OPTIONS (SET password 'wrong')});
($ret, $out, $err) = $node->psql($db, q{SELECT status || ' ' || error FROM iact.sync_now('alice.t1')});
like($out, qr/^failed could not connect to MariaDB server "ivr"/,
	"a superuser's sync of alice's table uses alice's user mapping (its wrong password)");
$node->safe_psql($db, q{ALTER USER MAPPING FOR alice SERVER ivr OPTIONS (DROP password)});
($ret, $out, $err) = $node->psql($db, q{SELECT status || ' ' || error FROM iact.sync_now('alice.t1')});
is($out, 'failed password is required (Non-superusers must provide a password in the user mapping for server "ivr".)',
	"the non-superuser's rules apply when a superuser starts the run");
$node->safe_psql($db, qq{ALTER USER MAPPING FOR alice SERVER ivr OPTIONS (ADD password '$pw')});

# --- who may register, change, remove, run -------------------------------------
($ret, $out, $err) = as_role('bob', q{SELECT iact.sync_remove_table('alice.t1')});
like($err, qr/ERROR:  must be owner of table alice\.t1 to change its sync registration/,
	"bob cannot remove alice's registration");
($ret, $out, $err) = as_role('bob', q{SELECT iact.sync_alter_table('alice.t1', enabled => false)});
like($err, qr/ERROR:  must be owner of table alice\.t1/, "bob cannot change it");
($ret, $out, $err) = as_role('bob', q{SELECT iact._sync_register('ivr', NULL, 'sec_t', 'alice.who', '{usr}',
	NULL, 0, NULL, 0, NULL, true)});
like($err, qr/ERROR:  must be owner of table alice\.who/, "bob cannot register alice's table, not even directly");
($ret, $out, $err) = as_role('bob', q{SELECT iact.sync_now('alice.t1')});
like($err, qr/ERROR:  must be owner of table alice\.t1 to sync it/, "bob cannot sync alice's table");
($ret, $out, $err) = as_role('bob', q{SELECT count(*) FROM iact.sync_now()});
is($out, '0', "bob's sync_now() of every table runs none of alice's");
($ret, $out, $err) = as_role('carol', q{SELECT iact.sync_alter_table('alice.t1', enabled => false, reset_watermark => true)});
is($out, 't', "carol, a member of alice, may change alice's registration") or diag($err);
is(q1(q{SELECT enabled::text || coalesce(last_watermark, '-') FROM iact.sync_tables WHERE target_table = 't1'}),
	'false-', 'the change is made');
q1(q{SELECT iact.sync_alter_table('alice.t1', enabled => true)});
for my $who ('alice', 'bob')
{
	for my $sql (q{INSERT INTO iact.sync_tables (server_name, source_table, target_schema, target_table, key_columns)
			VALUES ('ivr', 'sec_t', 'alice', 'who', '{usr}')},
		q{UPDATE iact.sync_tables SET enabled = false}, q{DELETE FROM iact.sync_tables},
		q{UPDATE iact.sync_runs SET status = 'success'}, q{DELETE FROM iact.sync_rejects})
	{
		($ret, $out, $err) = as_role($who, $sql);
		like($err, qr/permission denied for table sync_(tables|runs|rejects)/,
			"$who cannot write the registry directly: " . substr($sql, 0, 30));
	}
}

# --- advisory-lock squatting --------------------------------------------------
my $t1 = q1(q{SELECT id FROM iact.sync_tables WHERE target_table = 't1'});
my $squat = $node->background_psql($db);
$squat->query_safe("SELECT pg_advisory_lock(1767990133, $t1)");
mariadb_sql(q{UPDATE sec_t SET val = 'again', changed_at = '2025-07-01' WHERE id = 4});
is(q1(q{SELECT status FROM iact.sync_now('alice.t1')}), 'success',
	'a session holding pg_advisory_lock(1767990133, id) does not block sync_now');
($ret, $out, $err) = $node->psql($db, q{CALL iact.sync_run('alice.t1')});
is(q1(qq{SELECT status FROM iact.sync_runs WHERE table_id = $t1 ORDER BY id DESC LIMIT 1}), 'success',
	'nor CALL sync_run');
$squat->quit;
$squat = $node->background_psql($db);
$squat->query_safe("BEGIN; SELECT pg_advisory_xact_lock(1767990133, $t1)");
is(q1(q{SELECT status FROM iact.sync_now('alice.t1')}), 'success',
	'a transaction holding pg_advisory_xact_lock(1767990133, id) does not block sync_now');
($ret, $out, $err) = $node->psql($db, q{CALL iact.sync_run('alice.t1')});
is(q1(qq{SELECT status FROM iact.sync_runs WHERE table_id = $t1 ORDER BY id DESC LIMIT 1}), 'success',
	'nor CALL sync_run');
$squat->query_safe('COMMIT');
$squat->quit;

# a trigger calling pg_advisory_unlock_all() inside a batch-committing run
# does not release the run's lock: a second run meanwhile is skipped
my $lt = q1(q{SELECT id FROM iact.sync_tables WHERE target_table = 'lockt'});
my ($bout, $berr) = ('', '');
my $bg = IPC::Run::start(
	[ 'psql', '-X', '-qAt', '-d', $node->connstr($db), '-c', q{CALL iact.sync_run('alice.lockt')} ],
	'>', \$bout, '2>', \$berr);
ok(poll(q{SELECT count(*) > 0 FROM alice.lockt}),
	'the slow run of alice.lockt has committed a batch');
is(q1(qq{SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND classid = 1767990133
	AND objid = $lt AND objsubid = 4 AND granted}), '1',
	"the run holds its lock (objsubid 4, which SQL's advisory functions cannot make) after the trigger's pg_advisory_unlock_all()");
is(q1(q{SELECT status || ' ' || error FROM iact.sync_now('alice.lockt')}),
	'skipped another run of this table is in progress', 'a second run meanwhile is skipped');
$bg->finish;
is(q1(qq{SELECT status FROM iact.sync_runs WHERE table_id = $lt AND status <> 'skipped' ORDER BY id DESC LIMIT 1}),
	'success', 'the slow run ends well');
is(q1(qq{SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND classid = 1767990133}), '0',
	'and its lock is gone');

# --- the worker -----------------------------------------------------------------
# the database's owner makes public come first for every new session, the
# worker's included
$node->safe_psql($db, q{SET ROLE mallory; ALTER DATABASE postgres SET search_path = public, pg_catalog});
$node->restart;
ok(poll(q{SELECT count(*) = 1 FROM pg_stat_activity WHERE backend_type = 'iact sync worker'}), 'the worker is back');
mariadb_sql(q{UPDATE sec_t SET val = 'worker', changed_at = '2025-08-01' WHERE id IN (5, 6)});
my $before = q1(q{SELECT max(id) FROM iact.sync_runs});
is(q1(q{SELECT iact.request_sync('alice.t1')}), 't', 'request_sync reaches the worker');
ok(poll("SELECT count(*) > 0 FROM iact.sync_runs WHERE id > $before AND table_id = $t1 AND status <> 'running'"),
	'the worker runs it');
is(q1("SELECT status FROM iact.sync_runs WHERE id > $before AND table_id = $t1"), 'success', 'successfully');
is(q1(q{SELECT string_agg(DISTINCT usr || '/' || su, ',') || ' ' || count(*) FROM alice.who
	WHERE via = 'iact sync worker'}), 'alice/false 2', "in the worker, alice's trigger ran as alice");

# its line in pg_stat_activity names the owner (a run slowed by the trigger)
mariadb_sql(q{INSERT INTO sec_t SELECT seq, 'late', '2025-09-01' + INTERVAL seq SECOND FROM seq_100_to_105});
q1(q{SELECT iact.request_sync('alice.lockt')});
ok(poll(q{SELECT count(*) = 1 FROM pg_stat_activity WHERE backend_type = 'iact sync worker'
	  AND query LIKE 'iact sync of alice.lockt as its owner alice%'}),
	"the worker's pg_stat_activity line names the table and its owner");
ok(poll(qq{SELECT count(*) = 0 FROM iact.sync_runs WHERE table_id = $lt AND status = 'running'}),
	'that run ends');
is(trojan_runs(), 0, 'the worker (database search_path public first) runs no trojan') or diag(trojan_names());

# the control: the trojans are live for anyone who calls the names unqualified
$node->safe_psql($db, q{SELECT cardinality(ARRAY['x']), 'a' = 'a'::text});
cmp_ok(trojan_runs(), '>=', 2, 'control: an unqualified call does run the trojans');

$node->stop;
mariadb_sql('DROP TABLE sec_t, sec_code');
done_testing();
