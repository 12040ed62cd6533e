#!/usr/bin/env bash
# test/bench/sync.sh -- the sync against its anchors, on throwaway servers.
#
#   bash test/bench/sync.sh [ROWS]        (default 1000000; not run by check.sh)
#
# One MariaDB table of ROWS calls (12 columns: integers signed and unsigned,
# datetimes, varchar, decimals, tinyint(1), NULLs) over loopback, loaded into
# PostgreSQL by:
#   (a) mariadb --batch | psql -c "COPY ..."          (the pipe: the anchor)
#   (b) mysql_fdw INSERT ... SELECT (fetch_size 10000)
#   (c) mysql_fdw upsert of every row (ON CONFLICT DO UPDATE)
#   (d) pgloader
#   (e) iact: first full sync                      target <= 1.1 x (a)
#   (f) iact: re-sync after every source row changed  target <= 2 x (a)
#   (g) iact: incremental run after 1% changed      target <= 0.05 x (a)
# and two references in PostgreSQL alone: (h) UPDATE of every row, (i) UPDATE
# of 1% of the rows by key,
# plus the backend's peak private memory (RssAnon) during (e) at ROWS and 4 x ROWS rows
# (set BENCH_RSS=0 to skip the 4x part), and during syncs rejecting 9/100 and
# 36/100 of ROWS rows.  Prints one line per figure.
set -uo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
. "$ROOT/test/harness/lib.sh"
ROWS=${1:-1000000}

[ "$(id -u)" = 0 ] && rerun_as_test_user "$ROOT" /tmp/iact-bench test/bench/sync.sh BENCH_RSS="${BENCH_RSS:-1}" -- "$ROWS"

command -v pgloader > /dev/null || die "pgloader is not installed (apt-get install pgloader)"
command -v bc > /dev/null || die "bc is not installed (apt-get install bc)"
[ -f /usr/lib/postgresql/15/lib/mysql_fdw.so ] || die "mysql_fdw is not installed (apt-get install postgresql-15-mysql-fdw)"
make_temp_install "$ROOT"
RUN=$ROOT/tmp_bench
rm -rf "$RUN" && mkdir -p "$RUN"
SOCK=$(mktemp -d /tmp/iact-bench.XXXXXX)
PORT=$(free_port) || die "no free port"
. "$ROOT/test/harness/mariadb.sh"
cleanup() {
	stop_pg "$RUN/pgdata"
	mariadb_stop
	rm -rf "$SOCK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
mariadb_start "$RUN/mariadb" || die "MariaDB did not start"
# the scheduled worker off (it would sync the tables registered below on its
# own); autovacuum off and a CHECKPOINT before each timed step: one step's clean-up
# must not land in the next one's time (2 shared cores)
start_pg "$RUN/pgdata" "$SOCK" "$PORT" "iact.sync_enabled = off" "shared_buffers = 512MB" "max_wal_size = 8GB" \
	"checkpoint_timeout = 30min" "synchronous_commit = off" "autovacuum = off"
export PGHOST=$SOCK PGPORT=$PORT PGUSER=postgres PGDATABASE=postgres
MY="mariadb --no-defaults --protocol=socket --socket=$IACT_MARIADB_SOCKET -uroot --default-character-set=utf8mb4 ivr"
MYPORT=$IACT_MARIADB_PORT

now() { date +%s.%N; }
settle() { psql -qAtX -c CHECKPOINT > /dev/null; sleep 1; }
secs() { echo "$2 - $1" | bc; }
psqlq() { psql -qAtX -v ON_ERROR_STOP=1 "$@"; }

fill() {	# fill N: the bench table with N rows
	$MY -e "DROP TABLE IF EXISTS bench_calls;
	CREATE TABLE bench_calls (
		call_id bigint unsigned NOT NULL PRIMARY KEY,
		queue_id smallint unsigned NOT NULL,
		agent_id int unsigned DEFAULT NULL,
		caller varchar(32) NOT NULL,
		started_at datetime NOT NULL,
		answered_at datetime DEFAULT NULL,
		duration_s int unsigned NOT NULL,
		wait_s decimal(8,2) NOT NULL,
		cost decimal(12,4) DEFAULT NULL,
		abandoned tinyint(1) NOT NULL,
		notes varchar(200) DEFAULT NULL,
		updated_at datetime NOT NULL,
		KEY (updated_at)) ENGINE=InnoDB;
	INSERT INTO bench_calls SELECT seq, seq % 40, IF(seq % 10 = 0, NULL, seq % 500),
		CONCAT('+32255', LPAD(seq % 1000000, 6, '0')),
		'2026-01-01' + INTERVAL (seq * 7) SECOND,
		IF(seq % 10 = 0, NULL, '2026-01-01' + INTERVAL (seq * 7 + 12) SECOND),
		seq % 3600, (seq % 10000) / 100, IF(seq % 3 = 0, NULL, (seq % 100000) / 1000),
		seq % 10 = 0, IF(seq % 2 = 0, NULL, CONCAT('note ', seq, ' about the call')),
		'2026-06-01' + INTERVAL (seq) SECOND
	FROM seq_1_to_$1;" || die "filling the MariaDB table failed"
}

say "== sync benchmark: $ROWS rows, $(nproc) cores, $(free -g | awk '/Mem:/ {print $2}') GiB, $(date -u +%F)"
say "   PostgreSQL $(psqlq -c 'SHOW server_version'), $($MY -N -e 'SELECT VERSION()')"
fill "$ROWS"
mariadb_sql -e "CREATE USER bench@'127.0.0.1' IDENTIFIED BY 'benchpw'; GRANT SELECT ON ivr.* TO bench@'127.0.0.1';"

psqlq <<SQL || die "set-up failed"
CREATE EXTENSION iact;
CREATE EXTENSION mysql_fdw;
CREATE SERVER ivr FOREIGN DATA WRAPPER iact_mariadb OPTIONS (host '127.0.0.1', port '$MYPORT', dbname 'ivr');
CREATE USER MAPPING FOR postgres SERVER ivr OPTIONS (user 'bench', password 'benchpw');
CREATE SERVER myfdw FOREIGN DATA WRAPPER mysql_fdw OPTIONS (host '127.0.0.1', port '$MYPORT', fetch_size '10000');
CREATE USER MAPPING FOR postgres SERVER myfdw OPTIONS (username 'bench', password 'benchpw');
SELECT iact.sync_add_table('ivr', 'bench_calls', 'calls_iact') \g /dev/null
SELECT iact.sync_add_table('ivr', 'bench_calls', 'calls_inc', watermark_column => 'updated_at', retention_days => 0, lookback => 0) \g /dev/null
CREATE TABLE calls_pipe (LIKE calls_iact INCLUDING ALL);
CREATE TABLE calls_fdw (LIKE calls_iact INCLUDING ALL);
CREATE FOREIGN TABLE bench_calls_fdw (call_id numeric(20,0), queue_id integer, agent_id bigint, caller text,
	started_at timestamp, answered_at timestamp, duration_s bigint, wait_s numeric(8,2), cost numeric(12,4),
	abandoned boolean, notes text, updated_at timestamp) SERVER myfdw OPTIONS (dbname 'ivr', table_name 'bench_calls');
SQL

# (a) the pipe
settle; t0=$(now)
mariadb --no-defaults -h127.0.0.1 -P"$MYPORT" -ubench -pbenchpw --batch --skip-column-names --quick ivr \
	-e "SELECT * FROM bench_calls" | psql -qX -c "COPY calls_pipe FROM STDIN WITH (NULL 'NULL')" || die "pipe failed"
t1=$(now); A=$(secs "$t0" "$t1")
say "(a) mariadb --batch | psql COPY:           ${A} s  ($(psqlq -c 'SELECT count(*) FROM calls_pipe') rows)"

# (b) mysql_fdw INSERT ... SELECT
settle; t0=$(now)
psqlq -c "INSERT INTO calls_fdw SELECT * FROM bench_calls_fdw" || die "mysql_fdw failed"
t1=$(now); B=$(secs "$t0" "$t1")
say "(b) mysql_fdw INSERT ... SELECT:            ${B} s"

# (c) mysql_fdw upsert of every row
settle; t0=$(now)
psqlq -c "INSERT INTO calls_fdw SELECT * FROM bench_calls_fdw ON CONFLICT (call_id) DO UPDATE SET
	queue_id = EXCLUDED.queue_id, agent_id = EXCLUDED.agent_id, caller = EXCLUDED.caller,
	started_at = EXCLUDED.started_at, answered_at = EXCLUDED.answered_at, duration_s = EXCLUDED.duration_s,
	wait_s = EXCLUDED.wait_s, cost = EXCLUDED.cost, abandoned = EXCLUDED.abandoned, notes = EXCLUDED.notes,
	updated_at = EXCLUDED.updated_at" || die "mysql_fdw upsert failed"
t1=$(now); C=$(secs "$t0" "$t1")
say "(c) mysql_fdw upsert of every row:          ${C} s"

# (d) pgloader
cat > "$RUN/bench.load" <<LOAD
LOAD DATABASE
	FROM mysql://bench:benchpw@127.0.0.1:$MYPORT/ivr
	INTO postgresql://postgres@127.0.0.1:$PORT/postgres
	WITH include drop, create tables, create indexes, workers = 2, concurrency = 1
	INCLUDING ONLY TABLE NAMES MATCHING 'bench_calls'
	ALTER SCHEMA 'ivr' RENAME TO 'pgloader';
LOAD
settle; t0=$(now)
pgloader --quiet "$RUN/bench.load" > "$RUN/pgloader.log" 2>&1 || { tail -20 "$RUN/pgloader.log"; die "pgloader failed"; }
t1=$(now); D=$(secs "$t0" "$t1")
say "(d) pgloader:                               ${D} s  ($(psqlq -c 'SELECT count(*) FROM pgloader.bench_calls') rows)"

# the pipe again, right before iact's runs: the machine is shared, so the
# ratios use the mean of the two pipe timings
psqlq -c "TRUNCATE calls_pipe"
settle; L0=$(psqlq -c "SELECT pg_current_wal_lsn()"); t0=$(now)
mariadb --no-defaults -h127.0.0.1 -P"$MYPORT" -ubench -pbenchpw --batch --skip-column-names --quick ivr \
	-e "SELECT * FROM bench_calls" | psql -qX -c "COPY calls_pipe FROM STDIN WITH (NULL 'NULL')" || die "pipe failed"
t1=$(now); A2=$(secs "$t0" "$t1")
say "(a') the pipe again:                        ${A2} s  (WAL written $(psqlq -c "SELECT round(pg_wal_lsn_diff(pg_current_wal_lsn(), '$L0') / 1048576.0)") MB)"
A=$(echo "scale=3; ($A + $A2) / 2" | bc)

# (e) iact first full sync.  run_iact TABLE [SAMPLE] prints "seconds status
# rows_read inserted updated wal_MB peak_private_kB": the WAL the run wrote,
# and the backend's private memory (RssAnon, sampled every 50 ms: VmHWM would
# count the shared buffers it touched; SAMPLE=0: not sampled, 0 printed --
# the sampler's processes compete for the 2 cores, so the timed steps whose
# memory is not in question run without it).
run_iact() {
	local pidf=$RUN/backend.pid out=$RUN/run.out peak=0 cur pid sample=${2:-1}
	rm -f "$pidf"
	psqlq -F ' ' > "$out" <<SQL &
SELECT pg_backend_pid() \g $pidf
SELECT pg_sleep(0.2) \g /dev/null
SELECT extract(epoch FROM clock_timestamp()) AS t0, pg_current_wal_lsn() AS l0 \gset
SELECT status, rows_read, rows_inserted, rows_updated FROM iact.sync_now('$1') \gset
SELECT round((extract(epoch FROM clock_timestamp()) - :t0)::numeric, 2), :'status', :rows_read, :rows_inserted, :rows_updated,
	round(pg_wal_lsn_diff(pg_current_wal_lsn(), :'l0') / 1048576.0);
SQL
	local job=$!
	while [ ! -s "$pidf" ]; do sleep 0.05; done
	pid=$(cat "$pidf")
	while [ "$sample" = 1 ] && kill -0 "$job" 2>/dev/null; do
		cur=$(awk '/^RssAnon:/ {print $2}' "/proc/$pid/status" 2>/dev/null)
		[ -n "$cur" ] && [ "$cur" -gt "$peak" ] && peak=$cur
		sleep 0.05
	done
	wait "$job"
	echo "$(cat "$out") $peak"
}
settle; read -r E st rd ins upd wal rss <<< "$(run_iact calls_iact)"
RSS1=$rss
say "(e) iact first full sync:                   ${E} s  ($st, read $rd, inserted $ins; backend peak private memory ${rss} kB)"
run_iact calls_inc > /dev/null	# the incremental table's first load (not timed here)

# (f) every source row changed, full re-sync
$MY -e "UPDATE bench_calls SET duration_s = duration_s + 1, updated_at = updated_at + INTERVAL 1 DAY" || die "update failed"
settle; read -r F st rd ins upd wal rss <<< "$(run_iact calls_iact 0)"
say "(f) iact re-sync, every row changed:        ${F} s  ($st, read $rd, updated $upd; WAL written $wal MB)"

# (g) 1% changed, incremental run
run_iact calls_inc > /dev/null	# catch up with (f)'s change first
$MY -e "UPDATE bench_calls SET wait_s = wait_s + 1, updated_at = '2027-01-01' + INTERVAL call_id SECOND WHERE call_id % 100 = 0" || die "update failed"
settle; read -r G st rd ins upd wal rss <<< "$(run_iact calls_inc 0)"
say "(g) iact incremental, 1% changed:           ${G} s  ($st, read $rd, updated $upd; WAL written $wal MB)"

# (i) a reference for (g), not a target: PostgreSQL alone updating as many
# other rows of the same table, spread the same way, found by key (the same
# indexes, pages and checkpoint state; no MariaDB, no conversion)
settle; L0=$(psqlq -c "SELECT pg_current_wal_lsn()"); t0=$(now)
psqlq -c "UPDATE calls_inc t SET wait_s = wait_s + 1, updated_at = t.updated_at + interval '1 year'
	FROM generate_series(50, $ROWS, 100) k WHERE t.call_id = k" || die "update failed"
t1=$(now); I=$(secs "$t0" "$t1")
say "(i) reference: UPDATE of 1% of the rows by key in PostgreSQL alone: ${I} s  (WAL written $(psqlq -c "SELECT round(pg_wal_lsn_diff(pg_current_wal_lsn(), '$L0') / 1048576.0)") MB)"

# (h) a reference, not a target: PostgreSQL alone updating every row of the
# pipe's table in place (no MariaDB, no network, no conversion)
settle; L0=$(psqlq -c "SELECT pg_current_wal_lsn()"); t0=$(now)
psqlq -c "UPDATE calls_pipe SET duration_s = duration_s + 1, updated_at = updated_at + interval '1 day'" || die "update failed"
t1=$(now); H=$(secs "$t0" "$t1")
say "(h) reference: UPDATE of every row in PostgreSQL alone: ${H} s  (WAL written $(psqlq -c "SELECT round(pg_wal_lsn_diff(pg_current_wal_lsn(), '$L0') / 1048576.0)") MB)"

say ""
say "ratios to the mean of (a) and (a') = ${A} s: e $(echo "scale=2; $E / $A" | bc)x (target <= 1.1), f $(echo "scale=2; $F / $A" | bc)x (target <= 2)," \
	"g $(echo "scale=3; $G / $A" | bc)x (target <= 0.05); b $(echo "scale=2; $B / $A" | bc)x, c $(echo "scale=2; $C / $A" | bc)x, d $(echo "scale=2; $D / $A" | bc)x, h $(echo "scale=2; $H / $A" | bc)x, i $(echo "scale=3; $I / $A" | bc)x"

# rejected rows: the backend's memory must not grow with their number (each
# bad row goes to iact.sync_rejects).  A varbinary column read into a text
# target: 0xFF is not UTF-8, so 9 rows in 10 are rejected.
rejects() {	# rejects N: sync a table of N rows, print "seconds status read rejected peak_kB"
	$MY -e "DROP TABLE IF EXISTS bench_bad; CREATE TABLE bench_bad (id int PRIMARY KEY, v varbinary(10));
		INSERT INTO bench_bad SELECT seq, IF(seq % 10 = 0, 'ok', 0xFF) FROM seq_1_to_$1;" || die "filling bench_bad failed"
	psqlq -c "DROP TABLE IF EXISTS bad_iact" -c "CREATE TABLE bad_iact (id integer PRIMARY KEY, v text)" \
		-c "SELECT iact.sync_remove_table('bad_iact') FROM iact.sync_tables WHERE target_table = 'bad_iact'" \
		-c "SELECT iact.sync_add_table('ivr', 'bench_bad', 'bad_iact')" > /dev/null || die "bad_iact set-up failed"
	local out
	out=$(run_iact bad_iact)
	read -r t st rd ins upd wal rss <<< "$out"
	echo "$t $st $rd $(psqlq -c "SELECT rows_rejected FROM iact.sync_runs WHERE target_table = 'public.bad_iact' ORDER BY id DESC LIMIT 1") $rss"
}
R1=$((ROWS / 10)); R4=$((ROWS * 4 / 10))
read -r t st rd rj rss <<< "$(rejects "$R1")"
read -r t4 st4 rd4 rj4 rss4 <<< "$(rejects "$R4")"
say "peak private memory (RssAnon) of the backend during a sync with rejected rows: ${rss} kB with $rj rejects ($t s, $st), ${rss4} kB with $rj4 rejects ($t4 s, $st4)"

if [ "${BENCH_RSS:-1}" = 1 ]; then
	R4=$((ROWS * 4))
	fill "$R4"
	psqlq -c "TRUNCATE calls_iact" > /dev/null
	settle; read -r E4 st rd ins upd wal rss4 <<< "$(run_iact calls_iact)"
	say "peak private memory (RssAnon) of the backend during a first full sync: ${RSS1} kB at $ROWS rows, ${rss4} kB at $R4 rows ($E4 s, $st, read $rd)"
fi
