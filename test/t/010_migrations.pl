# Migration log under failures: a FAILED entry survives the failing call and
# a crash; a killed migration is found and marked; lock timeouts; a backfill
# killed mid-way resumes exactly once while new rows keep arriving; the
# history survives pg_dump / pg_restore.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use IactTest;

my $node = iact_node('main');
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION iact');

sub q1 { return $node->safe_psql('postgres', shift); }

# --- a failing migration: error raised, changes gone, FAILED entry kept ----
my ($ret, $out, $err) = $node->psql('postgres',
	q{CALL iact.run_migration('1', 'fails', $$CREATE TABLE t1 (a int); SELECT 1/0$$)});
isnt($ret, 0, 'failing migration returns an error');
like($err, qr/division by zero/, 'the original error is raised');
is(q1(q{SELECT status || ' ' || error_sqlstate FROM iact.migration_log WHERE version = '1'}),
	'FAILED 22012', 'FAILED entry is committed and seen by another session');
is(q1(q{SELECT to_regclass('t1') IS NULL}), 't', 'the failed migration left nothing behind');
$node->stop('immediate');
$node->start;
is(q1(q{SELECT status FROM iact.migration_log WHERE version = '1'}),
	'FAILED', 'FAILED entry survives a crash and restart');

# --- a migration whose backend is killed: RUNNING, then marked abandoned ---
my $bg = $node->background_psql('postgres', on_error_stop => 0);
$bg->query_until(qr/started/,
	qq{\\echo started\nCALL iact.run_migration('2', 'slow', \$\$CREATE TABLE t2 (a int); SELECT pg_sleep(300)\$\$);\n});
ok( $node->poll_query_until('postgres',
		q{SELECT count(*) = 1 FROM iact.migration_log WHERE version = '2' AND status = 'RUNNING'}),
	'a running migration is visible as RUNNING to other sessions');
my $pid = q1(q{SELECT backend_pid FROM iact.migration_log WHERE version = '2'});
q1("SELECT pg_terminate_backend($pid)");
eval { $bg->quit; };
ok( $node->poll_query_until('postgres', "SELECT count(*) = 0 FROM pg_stat_activity WHERE pid = $pid"),
	'migration backend is gone');
is(q1(q{SELECT status FROM iact.migration_log WHERE version = '2'}), 'RUNNING',
	'the entry of the killed migration is still RUNNING');
($ret, $out, $err) = $node->psql('postgres',
	q{CALL iact.run_migration('3', 'next one', $$CREATE TABLE t3 (a int)$$, $$DROP TABLE t3$$)});
is($ret, 0, 'the next migration runs');
like($err, qr/migration 2 \(log entry \d+\) was abandoned and is now marked FAILED/,
	'the next migration reports the abandoned one');
like(q1(q{SELECT status || ': ' || error_message FROM iact.migration_log WHERE version = '2'}),
	qr/^FAILED: abandoned: the session running it \(process $pid\) ended before it finished$/,
	'the abandoned entry is FAILED with the reason');
is(q1(q{SELECT to_regclass('t2') IS NULL}), 't', 'the killed migration left nothing behind');

# --- lock timeouts ----------------------------------------------------------
my $holder = $node->background_psql('postgres');
$holder->query_safe(q{SET client_min_messages = warning; BEGIN; CALL iact.run_migration('4', 'holds the lock', 'SELECT 1')});
my $holder_pid = $holder->query_safe('SELECT pg_backend_pid()');
chomp $holder_pid;
($ret, $out, $err) = $node->psql('postgres',
	q{CALL iact.run_migration('5', 'waits', 'SELECT 1', NULL, '300ms')});
isnt($ret, 0, 'migration lock wait gives up after lock_timeout');
like($err, qr/could not obtain the migration lock within 300 ms/, 'lock timeout error');
like($err, qr/Process $holder_pid is running a migration or a rollback/, 'it names the holder');
like($err, qr/waiting for the migration lock held by process $holder_pid\b/, 'the NOTICE names the holder too');
($ret, $out, $err) = $node->psql('postgres',
	qq{SET iact.migration_lock_timeout = '200ms';\nSELECT iact.safe_rollback_migration('3');});
like($err, qr/could not obtain the migration lock within 200 ms/, 'iact.migration_lock_timeout applies');
$holder->query_safe('COMMIT');
$holder->quit;
is(q1(q{SELECT string_agg(version || '=' || status, ',' ORDER BY id) FROM iact.migration_log WHERE version IN ('4', '5')}),
	'4=SUCCESS', 'the timed-out call logged nothing');

# lock_timeout also bounds the locks the migration's SQL waits for
q1('CREATE TABLE busy (a int)');
my $reader = $node->background_psql('postgres');
$reader->query_safe('BEGIN; SELECT * FROM busy');
($ret, $out, $err) = $node->psql('postgres',
	q{CALL iact.run_migration('6', 'alter a busy table', 'ALTER TABLE busy ADD COLUMN b int', NULL, '200ms')});
like($err, qr/canceling statement due to lock timeout/, 'DDL behind a long transaction times out');
is(q1(q{SELECT status || ' ' || error_sqlstate FROM iact.migration_log WHERE version = '6'}),
	'FAILED 55P03', 'and is recorded FAILED with lock_not_available');
$reader->query_safe('COMMIT');
$reader->quit;
($ret, $out, $err) = $node->psql('postgres',
	q{CALL iact.run_migration('6', 'alter a busy table', 'ALTER TABLE busy ADD COLUMN b int', NULL, '200ms')});
is($ret, 0, 'once the transaction ends the migration applies');

# --- backfill: killed mid-way, resumed, every row exactly once -------------
q1(q{CREATE TABLE bf (id bigserial PRIMARY KEY, v bigint, n int NOT NULL DEFAULT 0);
     INSERT INTO bf (v) SELECT NULL FROM generate_series(1, 20000)});
my $bf = $node->background_psql('postgres', on_error_stop => 0);
$bf->query_until(qr/started/,
	qq{\\echo started\nCALL iact.backfill('tap_bf', 'bf', 'v = id * 2, n = n + 1', NULL, 500, '50ms');\n});
ok( $node->poll_query_until('postgres',
		q{SELECT rows_done >= 3000 FROM iact.backfill_runs WHERE name = 'tap_bf'}),
	'backfill makes progress');
my $bf_pid = q1(q{SELECT backend_pid FROM iact.backfill_runs WHERE name = 'tap_bf'});
q1("SELECT pg_terminate_backend($bf_pid)");
eval { $bf->quit; };
$node->poll_query_until('postgres', "SELECT count(*) = 0 FROM pg_stat_activity WHERE pid = $bf_pid");
my ($status, $done, $upper) = split /\|/,
  q1(q{SELECT status, rows_done, upper_key[1] FROM iact.backfill_runs WHERE name = 'tap_bf'});
is($status, 'running', 'killed backfill is left running');
is($upper, '20000', 'its range was fixed at the start');
is(q1('SELECT count(*) FROM bf WHERE n = 1'), $done, 'committed progress matches the rows updated');
ok($done < 20000, "killed before the end ($done rows done)");

# rows keep arriving while the backfill resumes: it still finishes
my $ins = $node->background_psql('postgres', on_error_stop => 0);
$ins->query_until(qr/inserting/, qq{\\echo inserting\n}
	  . q{DO $$ BEGIN FOR i IN 1..2000 LOOP INSERT INTO bf (v) SELECT NULL FROM generate_series(1, 50); COMMIT; PERFORM pg_sleep(0.01); END LOOP; END $$;}
	  . "\n");
($ret, $out, $err) = $node->psql('postgres',
	q{CALL iact.backfill('tap_bf', 'bf', 'v = id * 2, n = n + 1', NULL, 500, '10ms')});
is($ret, 0, 'resumed backfill finished');
like($err, qr/resuming after key \(\d+\), $done rows already done/, 'it resumed after the last batch');
my $ins_pid = q1(q{SELECT pid FROM pg_stat_activity WHERE query LIKE 'DO $$ BEGIN FOR i IN 1..2000%' AND pid <> pg_backend_pid()});
isnt($ins_pid, '', 'the inserter was still inserting when the backfill finished');
q1("SELECT pg_cancel_backend($ins_pid)") if $ins_pid;
eval { $ins->quit; };
is(q1(q{SELECT status || ' ' || rows_done FROM iact.backfill_runs WHERE name = 'tap_bf'}),
	'done 20000', 'backfill done: 20000 rows');
is(q1('SELECT count(*) FROM bf WHERE id <= 20000 AND (n <> 1 OR v <> id * 2)'), '0',
	'every row of the range updated exactly once');
ok(q1('SELECT count(*) FROM bf WHERE id > 20000') > 0, 'new rows did arrive meanwhile');
is(q1('SELECT count(*) FROM bf WHERE id > 20000 AND n <> 0'), '0', 'rows above the range were left alone');

# --- pg_dump / pg_restore keeps the history ---------------------------------
q1(q{CALL iact.run_migration('8', 'to be rolled back', 'CREATE TABLE t8 (a int)', 'DROP TABLE t8')});
is(q1(q{SELECT iact.safe_rollback_migration('8')}), 't', 'rollback before the dump');
my $fingerprint = q{SELECT md5(string_agg(concat_ws('|', id, version, description, action, status,
  started_at, completed_at, duration_ms, rows_affected, error_message, error_sqlstate, checksum,
  up_sql, down_sql, rollback_available, rollback_of, runner, installed_by, backend_pid), ';' ORDER BY id))
  || ' ' || count(*) FROM iact.migration_log};
my $bf_fingerprint = q{SELECT md5(string_agg(concat_ws('|', name, status, rows_done, last_key, upper_key), ';'))
  FROM iact.backfill_runs};
my $before = q1($fingerprint);
my $bf_before = q1($bf_fingerprint);
my $dump = PostgreSQL::Test::Utils::tempdir() . '/iact.dump';
$node->command_ok([ 'pg_dump', '-Fc', '-f', $dump, '-d', $node->connstr('postgres') ], 'pg_dump');
$node->safe_psql('postgres', 'CREATE DATABASE restored');
$node->command_ok([ 'pg_restore', '-d', $node->connstr('restored'), $dump ], 'pg_restore');
is($node->safe_psql('restored', $fingerprint), $before, 'migration history identical after restore');
is($node->safe_psql('restored', $bf_fingerprint), $bf_before, 'backfill progress identical after restore');
is($node->safe_psql('restored',
		q{SELECT string_agg(version || ' ' || applied, ',' ORDER BY version) FROM iact.migration_status WHERE version IN ('6', '8')}),
	'6 true,8 false', 'the restored status view reads the same');
$node->safe_psql('restored', q{CALL iact.run_migration('7', 'after restore', 'CREATE TABLE t7 (a int)')});
is($node->safe_psql('restored',
		q{SELECT (SELECT id FROM iact.migration_log WHERE version = '7') > max(id) FILTER (WHERE version <> '7') FROM iact.migration_log}),
	't', 'new entries continue after the restored ids');

$node->stop;

# --- without shared_preload_libraries the SQL features still work ----------
my $plain = PostgreSQL::Test::Cluster->new('no_preload');
$plain->init;
$plain->start;
is($plain->safe_psql('postgres', 'SHOW shared_preload_libraries'), '', 'iact is not preloaded');
$plain->safe_psql('postgres', 'CREATE EXTENSION iact');
$plain->safe_psql('postgres',
	q{CALL iact.run_migration('1', 'on demand', 'CREATE TABLE od (a int)', 'DROP TABLE od')});
is($plain->safe_psql('postgres', q{SELECT iact.safe_rollback_migration('1')}), 't',
	'run_migration and safe_rollback_migration work when loaded on demand');
is($plain->safe_psql('postgres', q{SELECT string_agg(status, ',' ORDER BY id) FROM iact.migration_log}),
	'SUCCESS,ROLLED_BACK', 'and log as usual');
$plain->stop;
done_testing();
