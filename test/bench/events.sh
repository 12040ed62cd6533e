#!/usr/bin/env bash
# test/bench/events.sh -- benchmark of the no-overlap invariant (issue 3).
#
# Generates ~1.2 M events (600 people x 5 years: day shifts, night shifts
# split at midnight, extra hours) and compares, in one run on one throwaway
# server, copies of the two event tables with identical columns, primary
# keys, CHECKs and indexes (person_id, started_at), office_id / city_id, and
# no foreign keys (as the field notes' anchors; the same FK cost would be
# added to every variant):
#   (a) no overlap check at all
#   (b) the design notes' PL/pgSQL BEFORE trigger: EXISTS over UNION ALL of
#       both tables with tsrange(...) && tsrange(...)
#   (c) native EXCLUDE USING gist (person_id WITH =, tsrange(...) WITH &&) on
#       work_shifts only (btree_gist; cannot span two tables)
#   (d) iact: the same C machinery, attached with iact.enforce_no_overlap
# and, for reference, the extension's own tables (iact, with their foreign
# keys, RLS and immutability triggers) against (a_fk) = (a) plus the same
# foreign keys.  Measured: bulk load of all events (COPY, chronological
# order); single-row INSERT over the full history (mean over 20000 inserts
# into gaps of the history, each variant 3 times, rounds interleaved, best
# round kept, rolled back; (b): 300 inserts); on-disk size; pg_dump -Fc of
# the event tables.  (b)'s bulk load is measured on the first 5 % of the
# rows only (it would take many minutes).  Times are wall clock and the
# backend's CPU time (utime + stime from /proc), the latter being less
# disturbed by other load on a shared machine.
#
# Not part of check.sh.  As root it reruns itself as $IACT_TEST_USER on a copy
# of the tree, like check.sh.  Takes a few minutes on 2 cores.
set -uo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
. "$ROOT/test/harness/lib.sh"

[ "$(id -u)" = 0 ] && rerun_as_test_user "$ROOT" /tmp/iact-bench test/bench/events.sh -- "$@"

make_temp_install "$ROOT" 2> >(grep -v "are the same file" >&2)
start_bench_server "$ROOT/tmp_bench" "shared_buffers = 512MB" "max_wal_size = 8GB" \
	"checkpoint_timeout = 30min" "maintenance_work_mem = 256MB" "work_mem = 64MB"
PSQL="$TMP_BINDIR/psql -X -q -v ON_ERROR_STOP=1"

say "== bench: $(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB, $($TMP_BINDIR/postgres --version), $(date -u '+%Y-%m-%d %H:%M UTC')"

TICK=$(getconf CLK_TCK)
$PSQL -v dir="$RUN" -v tick="$TICK" <<'SQL' || die "benchmark set-up failed"
CREATE EXTENSION iact;
CREATE EXTENSION btree_gist;
CREATE SCHEMA bench;
CREATE TABLE bench.results (variant text, metric text, value numeric, PRIMARY KEY (variant, metric));

-- the organisation: 10 cities, 50 offices, 600 people; person p works in office p % 50 + 1
INSERT INTO iact.people (id, name, identifier) SELECT p, 'person ' || p, 'B-' || p FROM generate_series(1, 600) p;
INSERT INTO iact.cities (id, name) SELECT c, 'city ' || c FROM generate_series(1, 10) c;
INSERT INTO iact.offices (id, city_id, name) SELECT o, o % 10 + 1, 'office ' || o FROM generate_series(1, 50) o;

-- 5 years; per person and day by (p + d) % 10: 0-1 off, 2-6 day shift 08-16,
-- 7-8 night shift 22-06 (two pieces), 9 day shift and extra hours 17-19
CREATE TABLE bench.src AS
WITH pd AS (
    SELECT p, d, (p + d) % 10 AS k, date '2019-01-01' + d AS day
      FROM generate_series(1, 600) p, generate_series(0, 1825) d)
SELECT 'w' AS t, p, p % 50 + 1 AS place, day + time '08:00' AS s, day + time '16:00' AS e FROM pd WHERE k BETWEEN 2 AND 6 OR k = 9
UNION ALL SELECT 'w', p, p % 50 + 1, day + time '22:00', day + 1 + time '00:00' FROM pd WHERE k IN (7, 8)
UNION ALL SELECT 'w', p, p % 50 + 1, day + 1 + time '00:00', day + 1 + time '06:00' FROM pd WHERE k IN (7, 8)
UNION ALL SELECT 'x', p, (p % 50 + 1) % 10 + 1, day + time '17:00', day + time '19:00' FROM pd WHERE k = 9;
\set ws_file :dir '/ws.tsv'
\set xh_file :dir '/xh.tsv'
\set ws_head :dir '/ws_head.tsv'
\set xh_head :dir '/xh_head.tsv'
COPY (SELECT p, place, s, e FROM bench.src WHERE t = 'w' ORDER BY s, p) TO :'ws_file';
COPY (SELECT p, place, s, e FROM bench.src WHERE t = 'x' ORDER BY s, p) TO :'xh_file';
-- the first 5 % (chronologically) for (b)
COPY (SELECT p, place, s, e FROM bench.src WHERE t = 'w' AND s < timestamp '2019-01-01' + interval '91 days' ORDER BY s, p) TO :'ws_head';
COPY (SELECT p, place, s, e FROM bench.src WHERE t = 'x' AND s < timestamp '2019-01-01' + interval '91 days' ORDER BY s, p) TO :'xh_head';
SELECT count(*) AS events, count(*) FILTER (WHERE t = 'w') AS work_shifts,
       count(*) FILTER (WHERE t = 'x') AS extra_hours FROM bench.src;
-- single-insert probes: day shifts on free days inside the history, random order
CREATE TABLE bench.probes AS
SELECT row_number() OVER () AS n, p, s, e FROM (
    SELECT p, date '2019-01-01' + d + time '08:00' AS s, date '2019-01-01' + d + time '16:00' AS e
      FROM generate_series(1, 600) p, generate_series(1, 1820) d
     WHERE (p + d) % 10 = 0 AND (p + d - 1) % 10 <> 7 AND (p + d - 1) % 10 <> 8
     ORDER BY hashint4(p * 10000 + d) LIMIT 20000) x;

-- the variants: same columns, keys, CHECKs and indexes as iact's tables
DO $do$
DECLARE v text;
BEGIN
  FOREACH v IN ARRAY ARRAY['a', 'b', 'c', 'd', 'a_fk'] LOOP
    EXECUTE format('CREATE SCHEMA %I', v);
    EXECUTE format('CREATE TABLE %I.work_shifts (LIKE iact.work_shifts INCLUDING ALL)', v);
    EXECUTE format('CREATE TABLE %I.extra_hours (LIKE iact.extra_hours INCLUDING ALL)', v);
  END LOOP;
END $do$;
ALTER TABLE a_fk.work_shifts ADD FOREIGN KEY (person_id) REFERENCES iact.people,
    ADD FOREIGN KEY (office_id) REFERENCES iact.offices;
ALTER TABLE a_fk.extra_hours ADD FOREIGN KEY (person_id) REFERENCES iact.people,
    ADD FOREIGN KEY (city_id) REFERENCES iact.cities;
CREATE FUNCTION b.check_overlap() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF EXISTS (SELECT 1 FROM (SELECT person_id, started_at, ended_at FROM b.work_shifts
                            UNION ALL
                            SELECT person_id, started_at, ended_at FROM b.extra_hours) e
              WHERE e.person_id = NEW.person_id
                AND tsrange(e.started_at, e.ended_at) && tsrange(NEW.started_at, NEW.ended_at)) THEN
    RAISE EXCEPTION 'overlap for person %', NEW.person_id USING ERRCODE = 'exclusion_violation';
  END IF;
  RETURN NEW;
END $$;
CREATE TRIGGER no_overlap BEFORE INSERT ON b.work_shifts FOR EACH ROW EXECUTE FUNCTION b.check_overlap();
CREATE TRIGGER no_overlap BEFORE INSERT ON b.extra_hours FOR EACH ROW EXECUTE FUNCTION b.check_overlap();
ALTER TABLE c.work_shifts ADD CONSTRAINT no_overlap
    EXCLUDE USING gist (person_id WITH =, tsrange(started_at, ended_at) WITH &&);
-- attached exactly as iact.events is (its events also lie within one day)
SELECT iact.enforce_no_overlap('bench.d', ARRAY['d.work_shifts', 'd.extra_hours']::regclass[],
                               max_length => interval '1 day');

-- this backend's CPU time in ms (utime + stime of /proc/<pid>/stat)
CREATE TABLE bench.conf AS SELECT :tick::numeric AS clock_ticks_per_s;
CREATE FUNCTION bench.cpu_ms() RETURNS numeric LANGUAGE sql AS $$
  SELECT (split_part(s, ' ', 12)::numeric + split_part(s, ' ', 13)::numeric) * 1000 / (SELECT clock_ticks_per_s FROM bench.conf)
    FROM (SELECT split_part(pg_read_file('/proc/' || pg_backend_pid() || '/stat'), ') ', 2) AS s) x $$;
CREATE FUNCTION bench.ms(t0 timestamptz) RETURNS numeric LANGUAGE sql
    AS $$ SELECT round(extract(epoch FROM clock_timestamp() - t0) * 1000, 1) $$;
-- COPY both files into variant v; records <metric>_ms and <metric>_cpu_ms
CREATE FUNCTION bench.load(v text, metric text, ws text, xh text) RETURNS void LANGUAGE plpgsql AS $$
DECLARE t0 timestamptz := clock_timestamp(); c0 numeric := bench.cpu_ms();
BEGIN
  EXECUTE format('COPY %I.work_shifts (person_id, office_id, started_at, ended_at) FROM %L', v, ws);
  EXECUTE format('COPY %I.extra_hours (person_id, city_id, started_at, ended_at) FROM %L', v, xh);
  INSERT INTO bench.results VALUES (v, metric || '_ms', bench.ms(t0)),
                                   (v, metric || '_cpu_ms', bench.cpu_ms() - c0);
END $$;
-- single-row INSERT statements over the first n probes; one function per
-- variant so that the INSERT is a static, plan-cached statement.  Returns
-- wall and CPU microseconds per insert.
DO $do$
DECLARE v text;
BEGIN
  FOREACH v IN ARRAY ARRAY['a', 'b', 'c', 'd', 'iact', 'a_fk'] LOOP
    EXECUTE format($f$
      CREATE FUNCTION bench.singles_%s(n int, OUT wall_us numeric, OUT cpu_us numeric) LANGUAGE plpgsql AS $b$
      DECLARE t0 timestamptz; c0 numeric; r record;
      BEGIN
        c0 := bench.cpu_ms();
        t0 := clock_timestamp();
        FOR r IN SELECT * FROM bench.probes WHERE probes.n <= singles_%s.n LOOP
          INSERT INTO %I.work_shifts (person_id, office_id, started_at, ended_at) VALUES (r.p, 1, r.s, r.e);
        END LOOP;
        wall_us := round(bench.ms(t0) * 1000 / n, 2);
        cpu_us := round((bench.cpu_ms() - c0) * 1000 / n, 2);
      END $b$$f$, v, v, v);
  END LOOP;
END $do$;
CREATE FUNCTION bench.size(v text) RETURNS numeric LANGUAGE sql AS $$
  SELECT round((pg_total_relation_size(format('%I.work_shifts', v)) + pg_total_relation_size(format('%I.extra_hours', v)))
               / 1048576.0, 1) $$;
SQL

# (b) on the first 5 % of the rows, against (a) on the same rows
$PSQL -v dir="$RUN" <<'SQL' || die "5 % bulk loads failed"
\set ws :dir '/ws_head.tsv'
\set xh :dir '/xh_head.tsv'
CHECKPOINT;
SELECT bench.load('b', 'bulk_5pct', :'ws', :'xh');
CHECKPOINT;
SELECT bench.load('a', 'bulk_5pct', :'ws', :'xh');
TRUNCATE a.work_shifts, a.extra_hours, b.work_shifts, b.extra_hours;
SQL

# bulk loads of all events (CHECKPOINT first so each starts from the same state)
for v in a c d iact a_fk; do
	$PSQL -v dir="$RUN" -v v="$v" <<'SQL' || die "bulk load of $v failed"
\set ws :dir '/ws.tsv'
\set xh :dir '/xh.tsv'
CHECKPOINT;
SELECT bench.load(:'v', 'bulk', :'ws', :'xh');
VACUUM ANALYZE :"v".work_shifts, :"v".extra_hours;
INSERT INTO bench.results SELECT :'v', 'size_mb', bench.size(:'v');
SQL
done

# (b) gets its full history with the trigger disabled, for the single inserts
$PSQL -v dir="$RUN" <<'SQL' || die "load of b failed"
\set ws :dir '/ws.tsv'
\set xh :dir '/xh.tsv'
ALTER TABLE b.work_shifts DISABLE TRIGGER no_overlap;
ALTER TABLE b.extra_hours DISABLE TRIGGER no_overlap;
SELECT bench.load('b', 'bulk_without_trigger', :'ws', :'xh');
ALTER TABLE b.work_shifts ENABLE TRIGGER no_overlap;
ALTER TABLE b.extra_hours ENABLE TRIGGER no_overlap;
VACUUM ANALYZE b.work_shifts, b.extra_hours;
-- a bare copy of (a) without the secondary indexes, for the size comparison
CREATE TABLE bench.bare_ws (LIKE a.work_shifts INCLUDING DEFAULTS INCLUDING CONSTRAINTS, PRIMARY KEY (id));
CREATE TABLE bench.bare_xh (LIKE a.extra_hours INCLUDING DEFAULTS INCLUDING CONSTRAINTS, PRIMARY KEY (id));
INSERT INTO bench.bare_ws SELECT * FROM a.work_shifts;
INSERT INTO bench.bare_xh SELECT * FROM a.extra_hours;
VACUUM ANALYZE bench.bare_ws, bench.bare_xh;
INSERT INTO bench.results SELECT 'a_bare', 'size_mb',
    round((pg_total_relation_size('bench.bare_ws') + pg_total_relation_size('bench.bare_xh')) / 1048576.0, 1);
-- (a_rls): the tables as the issue specifies them without the invariant: the
-- columns the row-level security policies filter on indexed (person_id for a
-- person's own events, office_id / city_id for the visible offices and
-- cities), each on its own.  iact's (person_id, started_at) btree stands in
-- for the person_id index (the policies use it as well).
CREATE TABLE bench.rls_ws (LIKE a.work_shifts INCLUDING DEFAULTS INCLUDING CONSTRAINTS, PRIMARY KEY (id));
CREATE TABLE bench.rls_xh (LIKE a.extra_hours INCLUDING DEFAULTS INCLUDING CONSTRAINTS, PRIMARY KEY (id));
CREATE INDEX ON bench.rls_ws (person_id);
CREATE INDEX ON bench.rls_ws (office_id);
CREATE INDEX ON bench.rls_xh (person_id);
CREATE INDEX ON bench.rls_xh (city_id);
-- filled like (a) was, in the load's (chronological) order, indexes in place
INSERT INTO bench.rls_ws SELECT * FROM a.work_shifts ORDER BY id;
INSERT INTO bench.rls_xh SELECT * FROM a.extra_hours ORDER BY id;
VACUUM ANALYZE bench.rls_ws, bench.rls_xh;
INSERT INTO bench.results SELECT 'a_rls', 'size_mb',
    round((pg_total_relation_size('bench.rls_ws') + pg_total_relation_size('bench.rls_xh')) / 1048576.0, 1);
-- where the bytes are: every relation of (a), (a_rls) and (d), in MB
INSERT INTO bench.results
SELECT split_part(c.oid::regclass::text, '.', 1) || ':' || c.relname, 'rel_mb',
       round(pg_relation_size(c.oid) / 1048576.0, 1)
  FROM pg_class c
 WHERE c.relnamespace IN ('a'::regnamespace, 'd'::regnamespace)
    OR c.relname LIKE 'rls\_%';
SQL

# single-row inserts: 3 rounds, variants interleaved, each rolled back; best kept
for round in 1 2 3; do
	for v in a c d iact a_fk b; do
		n=20000
		[ "$v" = b ] && n=300
		$PSQL -v v="$v" -v n="$n" <<'SQL' || die "single inserts into $v failed"
BEGIN;
SELECT * FROM bench.singles_:v(:n) \gset
ROLLBACK;
INSERT INTO bench.results VALUES (:'v', 'single_us', :wall_us), (:'v', 'single_cpu_us', :cpu_us)
    ON CONFLICT (variant, metric) DO UPDATE SET value = least(bench.results.value, excluded.value);
SQL
	done
done

# the invariant really held, and it really refuses an overlap
$PSQL <<'SQL' || die "sanity check failed"
SELECT group_name, count(*) AS overlapping_pairs FROM iact.find_overlaps() GROUP BY 1;
SELECT count(*) AS overlapping_pairs_in_all_groups FROM iact.find_overlaps();
DO $$
BEGIN
  INSERT INTO iact.extra_hours (person_id, city_id, started_at, ended_at)
  SELECT person_id, 1, started_at + interval '1 hour', ended_at FROM iact.work_shifts WHERE id = 1000;
  RAISE EXCEPTION 'overlap accepted';
EXCEPTION WHEN exclusion_violation THEN RAISE NOTICE 'iact: overlap refused as expected';
END $$;
DO $$
BEGIN
  INSERT INTO d.extra_hours (person_id, city_id, started_at, ended_at)
  SELECT person_id, 1, started_at + interval '1 hour', ended_at FROM d.work_shifts WHERE id = 1000;
  RAISE EXCEPTION 'overlap accepted';
EXCEPTION WHEN exclusion_violation THEN RAISE NOTICE 'd: overlap refused as expected';
END $$;
SQL

# pg_dump -Fc of the event tables
for v in a iact; do
	"$TMP_BINDIR/pg_dump" -Fc -t "$v.work_shifts" -t "$v.extra_hours" -f "$RUN/dump_$v.fc" postgres ||
		die "pg_dump of $v failed"
	n=$("$TMP_BINDIR/pg_restore" -l "$RUN/dump_$v.fc" | grep -c 'TABLE DATA')
	size=$(stat -c %s "$RUN/dump_$v.fc")
	$PSQL -c "INSERT INTO bench.results VALUES ('$v', 'dump_mb', round($size / 1048576.0, 2)), ('$v', 'dump_data_entries', $n)"
done

$PSQL -P pager=off <<'SQL'
\echo
\echo results (ms for bulk loads of all events, microseconds per single-row INSERT, MB):
SELECT variant, metric, value FROM bench.results ORDER BY metric, variant;
\echo
\echo ratios:
CREATE FUNCTION pg_temp.r(k text) RETURNS numeric LANGUAGE sql
    AS $$ SELECT value FROM bench.results WHERE variant || '.' || metric = k $$;
SELECT * FROM (VALUES
  ('single insert, wall: d (iact) / c (EXCLUDE)  [target <= 0.5]', round(pg_temp.r('d.single_us') / pg_temp.r('c.single_us'), 2)),
  ('single insert, CPU:  d (iact) / c (EXCLUDE)  [target <= 0.5]', round(pg_temp.r('d.single_cpu_us') / pg_temp.r('c.single_cpu_us'), 2)),
  ('bulk load, wall: d (iact) / a (no check)     [target <= 3]', round(pg_temp.r('d.bulk_ms') / pg_temp.r('a.bulk_ms'), 2)),
  ('bulk load, CPU:  d (iact) / a (no check)     [target <= 3]', round(pg_temp.r('d.bulk_cpu_ms') / pg_temp.r('a.bulk_cpu_ms'), 2)),
  ('size: d (iact) / a (no check), same indexes  [target <= 1.3]', round(pg_temp.r('d.size_mb') / pg_temp.r('a.size_mb'), 2)),
  ('size: d (iact) / a without secondary indexes', round(pg_temp.r('d.size_mb') / pg_temp.r('a_bare.size_mb'), 2)),
  ('size: d (iact) / a_rls (the RLS columns indexed, no probe index)', round(pg_temp.r('d.size_mb') / pg_temp.r('a_rls.size_mb'), 2)),
  ('pg_dump -Fc of iact.work_shifts + extra_hours, MB [target <= 6.2]', pg_temp.r('iact.dump_mb')),
  ('single insert, wall: c (EXCLUDE) / a', round(pg_temp.r('c.single_us') / pg_temp.r('a.single_us'), 2)),
  ('single insert, wall: b (PL/pgSQL) / d (iact)', round(pg_temp.r('b.single_us') / pg_temp.r('d.single_us'), 2)),
  ('bulk load, wall: c (EXCLUDE) / a', round(pg_temp.r('c.bulk_ms') / pg_temp.r('a.bulk_ms'), 2)),
  ('bulk load of the first 5 %, wall: b (PL/pgSQL) / a', round(pg_temp.r('b.bulk_5pct_ms') / pg_temp.r('a.bulk_5pct_ms'), 2)),
  ('extension tables with FKs: single insert, wall: iact / a_fk', round(pg_temp.r('iact.single_us') / pg_temp.r('a_fk.single_us'), 2)),
  ('extension tables with FKs: bulk load, wall: iact / a_fk', round(pg_temp.r('iact.bulk_ms') / pg_temp.r('a_fk.bulk_ms'), 2)),
  ('extension tables with FKs: size: iact / a_fk', round(pg_temp.r('iact.size_mb') / pg_temp.r('a_fk.size_mb'), 2))
) AS t(ratio, value);
SQL
say "bench: done"
