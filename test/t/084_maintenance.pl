# test/t/084_maintenance.pl -- the maintenance worker (src/maintenance.c) on a
# real server with short intervals: the scheduled overlap scan whose result
# iact.health() reads, audit retention in batches with its runs recorded,
# the setting off by default and after a reload, a run left 'running' by a
# crash marked failed at the next start, and a missing iact.database that
# makes the worker wait (saying so once) instead of dying in FATAL.  The
# worker's life cycle: a launcher without a database starts it connected,
# so nothing exits at a normal start; it comes back after SIGTERM, SIGKILL
# (crash restart), DROP/CREATE EXTENSION and DROP DATABASE ... WITH (FORCE).
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use IactTest;

my $node = iact_node('maint',
	conf => "iact.overlap_check_interval = '2s'\nrestart_after_crash = on\niact.sync_enabled = off\n");
$node->start;
sub q1 { return $node->safe_psql('postgres', shift); }

# --- the worker and the scheduled overlap scan ----------------------------------
ok($node->poll_query_until('postgres',
		q{SELECT count(*) = 1 FROM pg_stat_activity WHERE backend_type = 'iact maintenance worker'
		  AND application_name = 'iact maintenance worker'}),
	'one maintenance worker, connected to iact.database');
unlike(slurp_file($node->logfile), qr/background worker "iact maintenance \w+" \(PID \d+\) exited/,
	'no maintenance process exited at a normal server start');
my $worker_pid = sub {
	return $node->safe_psql('postgres', q{SELECT string_agg(pid::text, ',') FROM pg_stat_activity
		WHERE backend_type = 'iact maintenance worker' AND datname = 'postgres'});
};
my $pid1 = $worker_pid->();
like($pid1, qr/^\d+$/, 'exactly one worker process');
q1(q{CREATE EXTENSION iact;
	CREATE TABLE rooms (id integer PRIMARY KEY, room integer NOT NULL, starts timestamp NOT NULL,
	                    ends timestamp NOT NULL);
	CREATE INDEX ON rooms (room, starts);
	SELECT iact.enforce_no_overlap('rooms', ARRAY['rooms']::regclass[], 'room', 'starts', 'ends');
	INSERT INTO rooms VALUES (1, 1, '2026-01-01 08:00', '2026-01-01 10:00');});
ok($node->poll_query_until('postgres',
		q{SELECT count(*) >= 3 FROM iact.maintenance_runs WHERE task = 'overlap_check' AND status = 'success'}),
	'the worker runs the overlap check on its schedule once iact is installed');
my @starts = split /\n/, q1(q{SELECT extract(epoch FROM started_at) FROM iact.maintenance_runs
	WHERE task = 'overlap_check' ORDER BY id DESC LIMIT 2});
cmp_ok($starts[0] - $starts[1], '>=', 1.9, 'checks are an interval apart');
is(q1(q{SELECT status || ' ' || value FROM iact.health() WHERE check_name = 'overlaps'}), 'ok 0',
	'health reads the stored result: no overlap');
is(q1(q{SELECT status FROM iact.health() WHERE check_name = 'overlap_check_age'}), 'ok',
	'and the result is fresh');

# an overlap that slipped in with the triggers off is found by the next scheduled check
q1(q{SET session_replication_role = replica;
	INSERT INTO rooms VALUES (2, 1, '2026-01-01 09:00', '2026-01-01 11:00');});
ok($node->poll_query_until('postgres',
		q{SELECT status = 'fail' AND value = 1 FROM iact.health() WHERE check_name = 'overlaps'}),
	'the next scheduled check finds the overlapping pair and health fails');
like(q1(q{SELECT detail FROM iact.health() WHERE check_name = 'overlaps'}),
	qr/^1 overlapping pair\(s\) of events found by the check of .*, e\.g\. 1: public\.rooms 1 \/ public\.rooms 2;/,
	'the detail names the pair');
q1(q{DELETE FROM rooms WHERE id = 2});

# --- the worker's life cycle ---------------------------------------------------------
q1("SELECT pg_terminate_backend($pid1)");
ok($node->poll_query_until('postgres',
		"SELECT string_agg(pid::text, ',') ~ '^[0-9]+\$' AND string_agg(pid::text, ',') <> '$pid1'
		 FROM pg_stat_activity WHERE backend_type = 'iact maintenance worker'"),
	'a terminated worker is started again by the launcher (one worker)');
my $pid2 = $worker_pid->();
my $launcher = q1(q{SELECT pid FROM pg_stat_activity WHERE backend_type = 'iact maintenance launcher'});
like($launcher, qr/^\d+$/, 'one launcher');
q1("SELECT pg_terminate_backend($launcher)");
ok($node->poll_query_until('postgres',
		"SELECT count(*) = 1 AND min(pid) <> $pid2 FROM pg_stat_activity WHERE backend_type = 'iact maintenance worker'"),
	'a terminated launcher stops its worker; restarted, it starts one worker again');
ok($node->poll_query_until('postgres',
		"SELECT count(*) = 1 AND min(pid) <> $launcher FROM pg_stat_activity WHERE backend_type = 'iact maintenance launcher'"),
	'and there is one launcher');
my $pid3 = $worker_pid->();
kill 'KILL', $pid3;
ok($node->poll_query_until('postgres',
		"SELECT count(*) = 1 AND min(pid) <> $pid3 FROM pg_stat_activity WHERE backend_type = 'iact maintenance worker'"),
	'after SIGKILL (crash restart of the server) the worker is back');
my $pid4 = $worker_pid->();
my $runs_before = q1(q{SELECT count(*) FROM iact.maintenance_runs});
q1(q{DROP EXTENSION iact CASCADE});
sleep 3;
is($worker_pid->(), $pid4, 'DROP EXTENSION iact: the worker stays, idle');
q1(q{CREATE EXTENSION iact});
ok($node->poll_query_until('postgres',
		q{SELECT count(*) > 0 FROM iact.maintenance_runs WHERE task = 'overlap_check' AND status = 'success'}),
	'CREATE EXTENSION iact again: the same worker runs the overlap check');
is($worker_pid->(), $pid4, 'without a restart');

# turned off by a reload: no more checks, and the age check says so
q1(q{ALTER SYSTEM SET iact.overlap_check_interval = 0; SELECT pg_reload_conf();});
sleep 3;
my $n = q1(q{SELECT count(*) FROM iact.maintenance_runs WHERE task = 'overlap_check'});
sleep 4;
is(q1(q{SELECT count(*) FROM iact.maintenance_runs WHERE task = 'overlap_check'}), $n,
	'with iact.overlap_check_interval = 0 no scheduled check runs');
like(q1(q{SELECT status || ' ' || detail FROM iact.health() WHERE check_name = 'overlap_check_age'}),
	qr/^ok last overlap check completed \d+ s ago \(iact.overlap_check_interval is 0: no scheduled check\)$/,
	'and overlap_check_age says the schedule is off');

# --- audit retention ---------------------------------------------------------------
q1(q{CREATE TABLE calls (id integer PRIMARY KEY, v text); SELECT iact.enable_audit('calls');});
q1("INSERT INTO calls VALUES ($_, 'x')") for 1 .. 25;
q1(q{UPDATE calls SET v = 'y' WHERE id <= 5});
q1(q{TRUNCATE calls});
my $entries = q1(q{SELECT (SELECT count(*) FROM iact.audit_row)
	+ (SELECT count(*) FROM iact.audit_statement WHERE row_count = 0)});
is($entries, 31, 'the audit trail has 31 entries: 25 inserted rows, 5 updated, a TRUNCATE');
sleep 5;
is(q1(q{SELECT count(*) FROM iact.maintenance_runs WHERE task = 'audit_retention'}), '0',
	'retention is off by default: no run, nothing purged');
is(q1(q{SELECT count(*) FROM iact.audit_statement}), '27', 'every audited statement is still there');

q1(q{ALTER SYSTEM SET iact.audit_retention = '3s';
	ALTER SYSTEM SET iact.audit_purge_interval = '2s';
	ALTER SYSTEM SET iact.audit_purge_batch_size = 7;
	SELECT pg_reload_conf();});
ok($node->poll_query_until('postgres',
		q{SELECT count(*) > 0 FROM iact.maintenance_runs WHERE task = 'audit_retention' AND status = 'success'
		  AND rows_purged > 0}),
	'with iact.audit_retention set the worker purges the audit trail');
is(q1(q{SELECT (SELECT count(*) FROM iact.audit_row) + (SELECT count(*) FROM iact.audit_statement)}), '0',
	'every entry older than the retention is gone');
is(q1(q{SELECT sum(rows_purged) FROM iact.maintenance_runs WHERE task = 'audit_retention'}), $entries,
	'the runs count every entry purged');
is(q1(q{SELECT count(*) FROM iact.maintenance_runs WHERE task = 'audit_retention'
	AND (status <> 'success' OR error IS NOT NULL OR finished_at < started_at)}), '0',
	'the runs ended as success, with start and end');
like(q1('SELECT iact.metrics()'), qr/^iact_audit_purged_entries_total $entries$/m,
	'metrics: purged entries');
like(q1('SELECT iact.metrics()'), qr/^iact_audit_retention_seconds 3$/m, 'metrics: the retention');
# recent entries are kept
q1(q{ALTER SYSTEM SET iact.audit_retention = '1h'; SELECT pg_reload_conf();});
q1(q{INSERT INTO calls VALUES (100, 'new')});
my $runs = q1(q{SELECT count(*) FROM iact.maintenance_runs WHERE task = 'audit_retention'});
ok($node->poll_query_until('postgres',
		"SELECT count(*) > $runs FROM iact.maintenance_runs WHERE task = 'audit_retention' AND status = 'success'"),
	'a later run happens');
is(q1(q{SELECT count(*) FROM iact.audit_row}), '1', 'entries younger than the retention are kept');

# a run that cannot take its lock fails after lock_timeout, is recorded failed, and the worker carries on
q1(q{ALTER SYSTEM SET lock_timeout = '300ms'; ALTER SYSTEM SET iact.audit_retention = '1s'; SELECT pg_reload_conf();});
my $locker = $node->background_psql('postgres');
$locker->query_safe('BEGIN; LOCK TABLE iact.audit_statement IN ACCESS EXCLUSIVE MODE');
ok($node->poll_query_until('postgres',
		q{SELECT count(*) > 0 FROM iact.maintenance_runs WHERE task = 'audit_retention' AND status = 'failed'
		  AND error = 'canceling statement due to lock timeout' AND finished_at IS NOT NULL}),
	'a retention run blocked by a lock fails after lock_timeout and is recorded failed with the error');
$locker->query_safe('COMMIT');
$locker->quit;
like(q1(q{SELECT status || ' ' || detail FROM iact.health() WHERE check_name = 'maintenance_failures'}),
	qr/^warn \d+ failed maintenance run\(s\) in the last 24 hours: audit_retention at .*: canceling statement due to lock timeout/,
	'maintenance_failures warns with the error');
like(q1('SELECT iact.metrics()'), qr/^iact_maintenance_runs_total\{task="audit_retention",status="failed"\} [1-9]\d*$/m,
	'metrics count the failed runs');
$runs = q1(q{SELECT max(id) FROM iact.maintenance_runs});
ok($node->poll_query_until('postgres',
		"SELECT count(*) > 0 FROM iact.maintenance_runs WHERE task = 'audit_retention' AND status = 'success' AND id > $runs"),
	'once the lock is gone the next run succeeds');
is(q1(q{SELECT count(*) FROM iact.audit_row}), '0', 'and purges what the failed runs could not');
q1(q{DELETE FROM iact.maintenance_runs WHERE status = 'failed'; ALTER SYSTEM RESET lock_timeout;
	ALTER SYSTEM SET iact.audit_retention = '1h'; SELECT pg_reload_conf();});
q1(q{ALTER SYSTEM RESET iact.audit_retention; SELECT pg_reload_conf();});

# --- a run left 'running' by a crash is marked failed at the next start ------------
q1(q{INSERT INTO iact.maintenance_runs (task, status) VALUES ('audit_retention', 'running')});
$node->restart;
ok($node->poll_query_until('postgres',
		q{SELECT count(*) = 1 FROM iact.maintenance_runs WHERE status = 'failed'
		  AND error = 'interrupted: the server restarted or the worker ended'}),
	'after a restart the interrupted run is marked failed');
like(q1(q{SELECT status || ' ' || detail FROM iact.health() WHERE check_name = 'maintenance_failures'}),
	qr/^warn 1 failed maintenance run\(s\) in the last 24 hours: audit_retention at .*: interrupted/,
	'and maintenance_failures warns about it');

# --- the scrape is valid exposition format, labels escaped (promtool check metrics) --
q1(q{CREATE TABLE "we""ird\tab" (id integer PRIMARY KEY); SELECT iact.enable_audit('"we""ird\tab"');
	INSERT INTO "we""ird\tab" VALUES (1);});
# a registered table (the sync worker is off here) has its registration time in the scrape
q1(q{INSERT INTO iact.sync_tables (server_name, source_table, target_schema, target_table, key_columns)
	VALUES ('nosrv', 'calls', 'public', 'Calls', ARRAY['id'])});
my $scrape = q1('SELECT iact.metrics()');
my $registered = q1(q{SELECT extract(epoch FROM created_at)::float8 FROM iact.sync_tables});
my ($reg_sample) = $scrape =~ /^iact_sync_registered_timestamp_seconds\{table="public\.\\"Calls\\""\} (\S+)$/m;
ok(defined $reg_sample && abs($reg_sample - $registered) < 0.001,
	'metrics: when a sync table was registered, labelled like its runs')
  or diag($scrape);

like($scrape, qr/^iact_audit_entries_last_day\{table="public\.we\\"ird\\\\tab",operation="INSERT"\} 1$/m,
	'a table name with a quote and a backslash is escaped in its label');
my $promfile = $node->basedir . '/iact.prom';
open(my $fh, '>', $promfile) or die $!;
print $fh $scrape, "\n";
close $fh;
my $lint = `/usr/bin/promtool check metrics < $promfile 2>&1`;
is($?, 0, 'promtool check metrics accepts the scrape') or diag($lint);
is($lint, '', 'and has nothing to say about it');
$node->stop;

# --- iact.database missing: no FATAL from this worker, one LOG line -------------------
my $nodb = iact_node('nodb', conf => "iact.database = 'nosuchdb'\n");
$nodb->start;
ok($nodb->poll_query_until('postgres',
		q{SELECT count(*) = 1 FROM pg_stat_activity WHERE backend_type = 'iact maintenance launcher'}),
	'the maintenance launcher waits, started, without a database');
sleep 3;
my $log = slurp_file($nodb->logfile);
my $said = () = $log =~ /iact maintenance worker: database "nosuchdb" does not exist; looking again every 10 s/g;
is($said, 1, 'it says once that the database does not exist');
unlike($log, qr/background worker "iact maintenance \w+".*exited/,
	'and nothing exits for it');
$nodb->safe_psql('postgres', 'CREATE DATABASE nosuchdb');
ok($nodb->poll_query_until('postgres',
		q{SELECT count(*) = 1 FROM pg_stat_activity WHERE backend_type = 'iact maintenance worker'
		  AND datname = 'nosuchdb'}),
	'once the database exists the worker connects to it, without a server restart');
my $logpos = -s $nodb->logfile;
$nodb->safe_psql('postgres', 'DROP DATABASE nosuchdb WITH (FORCE)');
ok($nodb->poll_query_until('postgres',
		q{SELECT count(*) = 0 FROM pg_stat_activity WHERE backend_type = 'iact maintenance worker'}),
	'DROP DATABASE ... WITH (FORCE) ends the worker');
ok($nodb->wait_for_log(qr/database "nosuchdb" does not exist; looking again/, $logpos),
	'the launcher says again that the database is missing');
is($nodb->safe_psql('postgres', q{SELECT count(*) FROM pg_stat_activity
	WHERE backend_type IN ('iact maintenance worker', 'iact maintenance launcher')}), '1',
	'only the launcher is left, waiting');
$nodb->stop;

# --- no background worker slot free: the launcher warns once and tries again every minute ---
my $noslot = iact_node('noslot', conf => "max_worker_processes = 2\nmax_logical_replication_workers = 0\n");
$noslot->start;
ok($noslot->wait_for_log(qr/iact maintenance launcher: could not start the maintenance worker for database "postgres"/),
	'with every worker slot taken the launcher says it cannot start the worker');
sleep 15;
my $warned = () = slurp_file($noslot->logfile) =~ /could not start the maintenance worker/g;
is($warned, 1, 'once, not at every retry');
is($noslot->safe_psql('postgres', 'SELECT 1'), '1', 'the server itself is fine');
$noslot->stop;
done_testing();
