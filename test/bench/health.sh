#!/usr/bin/env bash
# test/bench/health.sh -- cost of iact.health() and iact.metrics() per call at
# 1.2 M and 12 M events (issue 14: <= 20 ms per call at both sizes).
#
# For each size, on one throwaway server: people x 5 years of work shifts and
# extra hours (600 people: 1.19 M events; 6000 people: 11.9 M), generated with
# generate_series straight into iact.work_shifts / iact.extra_hours (no
# overlap by construction; triggers off during the bulk load only), then
# VACUUM ANALYZE, one iact.check_overlaps_now() (what the maintenance worker
# runs every iact.overlap_check_interval; its duration is reported: this is
# what every health() / metrics() call used to cost), and 50 calls each of
# SELECT count(*) FROM iact.health() and SELECT length(iact.metrics()) after
# 5 warm-up calls, timed one by one with clock_timestamp().  The maintenance
# worker's schedule is off (iact.overlap_check_interval = 0) so that no scan
# runs during the measurements.  Reports median, 95th percentile and max in ms.
#
#   bash test/bench/health.sh            both sizes
#   bash test/bench/health.sh 600        only 600 people (1.2 M events)
#
# Not part of check.sh.  As root it reruns itself as $IACT_TEST_USER on a copy
# of the tree, like check.sh.  The 12 M size takes several minutes on 2 cores.
set -uo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
. "$ROOT/test/harness/lib.sh"

[ "$(id -u)" = 0 ] && rerun_as_test_user "$ROOT" /tmp/iact-bench-health test/bench/health.sh -- "$@"

SIZES=${*:-600 6000}
make_temp_install "$ROOT" 2> >(grep -v "are the same file" >&2)
start_bench_server "$ROOT/tmp_bench_health" "shared_buffers = 1GB" "max_wal_size = 16GB" \
	"checkpoint_timeout = 30min" "maintenance_work_mem = 512MB" "work_mem = 64MB" \
	"iact.overlap_check_interval = 0" "iact.sync_enabled = off"
PSQL="$TMP_BINDIR/psql -X -q -v ON_ERROR_STOP=1"

say "== bench: $(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB, $($TMP_BINDIR/postgres --version), $(date -u '+%Y-%m-%d %H:%M UTC')"

for people in $SIZES; do
	db=bench_$people
	$PSQL -d postgres -c "CREATE DATABASE $db" || die "createdb failed"
	say "== $people people x 5 years"
	$PSQL -d "$db" -v people="$people" <<'SQL' || die "benchmark failed"
CREATE EXTENSION iact;
\timing on
-- 10 cities, 50 offices; person p works in office p % 50 + 1
INSERT INTO iact.people (id, name, identifier) SELECT p, 'person ' || p, 'B-' || p FROM generate_series(1, :people) p;
INSERT INTO iact.cities (id, name) SELECT c, 'city ' || c FROM generate_series(1, 10) c;
INSERT INTO iact.offices (id, city_id, name) SELECT o, o % 10 + 1, 'office ' || o FROM generate_series(1, 50) o;
-- per person and day by (p + d) % 10: 0-1 off, 2-6 day shift 08-16, 7-8 night
-- shift 22-06 (two pieces), 9 day shift and extra hours 17-19 (test/bench/events.sh)
SET session_replication_role = replica;
INSERT INTO iact.work_shifts (person_id, office_id, started_at, ended_at)
SELECT p, p % 50 + 1, s, e FROM (
    SELECT p, date '2019-01-01' + d + time '08:00' AS s, date '2019-01-01' + d + time '16:00' AS e
      FROM generate_series(1, :people) p, generate_series(0, 1825) d WHERE (p + d) % 10 IN (2, 3, 4, 5, 6, 9)
    UNION ALL
    SELECT p, date '2019-01-01' + d + time '22:00', date '2019-01-01' + d + 1
      FROM generate_series(1, :people) p, generate_series(0, 1825) d WHERE (p + d) % 10 IN (7, 8)
    UNION ALL
    SELECT p, date '2019-01-01' + d + 1, date '2019-01-01' + d + 1 + time '06:00'
      FROM generate_series(1, :people) p, generate_series(0, 1825) d WHERE (p + d) % 10 IN (7, 8)) x;
INSERT INTO iact.extra_hours (person_id, city_id, started_at, ended_at)
SELECT p, (p % 50 + 1) % 10 + 1, date '2019-01-01' + d + time '17:00', date '2019-01-01' + d + time '19:00'
  FROM generate_series(1, :people) p, generate_series(0, 1825) d WHERE (p + d) % 10 = 9;
RESET session_replication_role;
VACUUM ANALYZE iact.work_shifts, iact.extra_hours;
\timing off
SELECT (SELECT count(*) FROM iact.work_shifts) + (SELECT count(*) FROM iact.extra_hours) AS events;

-- the scan the maintenance worker runs on its schedule (once per interval)
SELECT iact.check_overlaps_now() AS overlaps_found;
SELECT round(extract(epoch FROM finished_at - started_at) * 1000) AS overlap_scan_ms
  FROM iact.maintenance_runs ORDER BY id DESC LIMIT 1;

CREATE TEMP TABLE t (fn text, ms numeric);
DO $$
DECLARE t0 timestamptz; n bigint;
BEGIN
  FOR i IN 1..55 LOOP
    t0 := clock_timestamp();
    SELECT count(*) INTO n FROM iact.health();
    IF i > 5 THEN INSERT INTO t VALUES ('health()', extract(epoch FROM clock_timestamp() - t0) * 1000); END IF;
    t0 := clock_timestamp();
    SELECT length(iact.metrics()) INTO n;
    IF i > 5 THEN INSERT INTO t VALUES ('metrics()', extract(epoch FROM clock_timestamp() - t0) * 1000); END IF;
  END LOOP;
END $$;
SELECT fn, count(*) AS calls,
       round(percentile_cont(0.5) WITHIN GROUP (ORDER BY ms)::numeric, 2) AS median_ms,
       round(percentile_cont(0.95) WITHIN GROUP (ORDER BY ms)::numeric, 2) AS p95_ms,
       round(max(ms), 2) AS max_ms
  FROM t GROUP BY fn ORDER BY fn;
SELECT check_name, status FROM iact.health() WHERE status <> 'ok';
SQL
	$PSQL -d postgres -c "DROP DATABASE $db" || die "dropdb failed"
done
