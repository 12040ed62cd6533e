#!/usr/bin/env bash
# test/bench/audit.sh -- cost of iact's audit trail (not run by check.sh).
#
# 200 k-row INSERT, then an UPDATE of every row (two columns), on the same
# table three ways in one run: unaudited, with the PL/pgSQL audit_trigger() of
# the migration document (to_jsonb(OLD/NEW), uuid primary key, row trigger),
# and with iact.enable_audit().  ROUNDS rounds, variants interleaved; the
# median of each is reported with the ratio to unaudited, and the audit
# table's bytes per audited row (heap + indexes + TOAST).
#
#   bash test/bench/audit.sh            (as root or as a user with the packages)
#   ROWS=200000 ROUNDS=3 SINGLE=20000 bash test/bench/audit.sh
#
# A second part runs SINGLE single-row INSERT statements and then SINGLE
# single-row UPDATE statements the same three ways: the per-statement cost
# of an OLTP workload (iact writes a statement row for each).
set -uo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
. "$ROOT/test/harness/lib.sh"

[ "$(id -u)" = 0 ] && rerun_as_test_user "$ROOT" /tmp/iact-bench test/bench/audit.sh ROWS="${ROWS:-}" ROUNDS="${ROUNDS:-}" SINGLE="${SINGLE:-}" -- "$@"

ROWS=${ROWS:-200000}
SINGLE=${SINGLE:-20000}
ROUNDS=${ROUNDS:-3}
make_temp_install "$ROOT" 2> "$ROOT/install.log"	# cp -al falls back to cp -a noisily
# settings of a small production server; fsync off like the rest of the harness
start_bench_server "$ROOT/tmp_bench" "shared_buffers = '512MB'" "max_wal_size = '4GB'" \
	"checkpoint_timeout = '30min'"

psql -qX -v ON_ERROR_STOP=1 <<'SQL' || die "setup failed"
CREATE EXTENSION iact;
-- the migration document's audit table and trigger
CREATE TABLE audit_log_plpgsql (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    table_name text NOT NULL,
    operation text NOT NULL,
    old_data jsonb,
    new_data jsonb,
    user_id text,
    "timestamp" timestamptz NOT NULL DEFAULT now()
);
CREATE FUNCTION audit_trigger() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO audit_log_plpgsql (table_name, operation, old_data, new_data, user_id)
    VALUES (TG_TABLE_NAME, TG_OP,
            CASE WHEN TG_OP IN ('UPDATE', 'DELETE') THEN to_jsonb(OLD) END,
            CASE WHEN TG_OP IN ('INSERT', 'UPDATE') THEN to_jsonb(NEW) END,
            current_setting('app.current_user_id', true));
    RETURN COALESCE(NEW, OLD);
END
$$;

-- a fresh table, audited the way the variant says
CREATE FUNCTION bench_table(variant text) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    DROP TABLE IF EXISTS orders;
    CREATE TABLE orders (
        id bigint PRIMARY KEY,
        customer_id integer NOT NULL,
        status text NOT NULL,
        amount numeric(12,2) NOT NULL,
        note text,
        created_at timestamptz NOT NULL,
        updated_at timestamptz
    );
    IF variant = 'plpgsql' THEN
        CREATE TRIGGER audit AFTER INSERT OR UPDATE OR DELETE ON orders
            FOR EACH ROW EXECUTE FUNCTION audit_trigger();
    ELSIF variant = 'iact' THEN
        PERFORM iact.enable_audit('orders');
    END IF;
END
$$;

CREATE FUNCTION bench(variant text, nrows int, OUT insert_s float8, OUT update_s float8,
                      OUT audit_rows bigint, OUT audit_bytes bigint)
LANGUAGE plpgsql AS $$
DECLARE
    t0 timestamptz;
BEGIN
    PERFORM bench_table(variant);
    PERFORM set_config('app.current_user_id', 'user-4711', true);

    t0 := clock_timestamp();
    INSERT INTO orders
    SELECT g, g % 5000, 'open', (g % 100000) / 100.0, 'order number ' || g,
           timestamptz '2024-01-01' + g * interval '1 second', NULL
      FROM generate_series(1, nrows) g;
    insert_s := extract(epoch FROM clock_timestamp() - t0);

    t0 := clock_timestamp();
    UPDATE orders SET status = 'closed', updated_at = timestamptz '2024-06-01';
    update_s := extract(epoch FROM clock_timestamp() - t0);

    IF variant = 'plpgsql' THEN
        SELECT count(*), pg_total_relation_size('audit_log_plpgsql') INTO audit_rows, audit_bytes
          FROM audit_log_plpgsql;
    ELSIF variant = 'iact' THEN
        SELECT count(*), pg_total_relation_size('iact.audit_row')
                         + pg_total_relation_size('iact.audit_statement') INTO audit_rows, audit_bytes
          FROM iact.audit_log;
    END IF;
END
$$;

-- OLTP shape: nrows single-row INSERT statements, then nrows single-row UPDATEs
-- (each one a statement, so iact writes one statement row per change)
CREATE FUNCTION bench_single(variant text, nrows int, OUT insert_s float8, OUT update_s float8)
LANGUAGE plpgsql AS $$
DECLARE
    t0 timestamptz;
BEGIN
    PERFORM bench_table(variant);
    t0 := clock_timestamp();
    FOR g IN 1..nrows LOOP
        INSERT INTO orders VALUES (g, g % 5000, 'open', (g % 100000) / 100.0, 'order number ' || g,
                                   timestamptz '2024-01-01' + g * interval '1 second', NULL);
    END LOOP;
    insert_s := extract(epoch FROM clock_timestamp() - t0);
    t0 := clock_timestamp();
    FOR g IN 1..nrows LOOP
        UPDATE orders SET status = 'closed', updated_at = timestamptz '2024-06-01' WHERE id = g;
    END LOOP;
    update_s := extract(epoch FROM clock_timestamp() - t0);
END
$$;
SQL

say "iact audit benchmark: $ROWS rows, $ROUNDS rounds, $(nproc) cores, $(date -u '+%Y-%m-%d %H:%M UTC')"
say "$(psql -AtX -c 'SELECT version()')"
: > "$RUN/results"
for round in $(seq 1 "$ROUNDS"); do
	for variant in plain plpgsql iact; do
		# each measurement starts from empty audit tables and a checkpoint
		psql -qX -c "TRUNCATE audit_log_plpgsql; TRUNCATE iact.audit_row, iact.audit_statement" -c "CHECKPOINT" > /dev/null ||
			die "reset failed"
		line=$(psql -AtX -F ' ' -c "SELECT '$variant', * FROM bench('$variant', $ROWS)") || die "bench failed"
		say "round $round: $line"
		echo "$line" >> "$RUN/results"
	done
done

say ""
say "single-row statements: $SINGLE INSERT statements, then $SINGLE UPDATE statements (seconds)"
: > "$RUN/single"
for round in $(seq 1 "$ROUNDS"); do
	for variant in plain plpgsql iact; do
		psql -qX -c "TRUNCATE audit_log_plpgsql; TRUNCATE iact.audit_row, iact.audit_statement" > /dev/null ||
			die "reset failed"
		line=$(psql -AtX -F ' ' -c "SELECT '$variant', * FROM bench_single('$variant', $SINGLE)") ||
			die "bench_single failed"
		say "round $round: $line"
		echo "$line 0 0" >> "$RUN/single"
	done
done

say ""
say "median over $ROUNDS rounds (seconds; ratio to unaudited):"
summarise() {
	perl -e '
	my %v;
	while (<STDIN>) { my ($name, $ins, $upd, $rows, $bytes) = split; push @{$v{$name}}, [$ins, $upd, $rows, $bytes]; }
	sub med { my @s = sort { $a <=> $b } @_; return $s[int($#s / 2)]; }
	my %m;
	for my $n (keys %v) { for my $i (0..3) { $m{$n}[$i] = med(map { $_->[$i] // 0 } @{$v{$n}}); } }
	my ($pi, $pu) = @{$m{plain}}[0,1];
	printf "%-8s  INSERT %7.3f s (%4.2fx)   UPDATE %7.3f s (%4.2fx)   audit rows %8s   bytes/row %s\n",
		$_, $m{$_}[0], $m{$_}[0] / $pi, $m{$_}[1], $m{$_}[1] / $pu,
		($m{$_}[2] || "-"), ($m{$_}[2] ? sprintf("%.0f", $m{$_}[3] / $m{$_}[2]) : "-")
		for qw(plain plpgsql iact);
	printf "iact audit bytes per row / PL/pgSQL: %.2f\n",
		($m{iact}[3] / $m{iact}[2]) / ($m{plpgsql}[3] / $m{plpgsql}[2])
		if $m{iact}[2] && $m{plpgsql}[2];
	# the machine is shared: the ratio within each round is steadier than across rounds
	for my $n (qw(plpgsql iact)) {
		my @ri = map { $v{$n}[$_][0] / $v{plain}[$_][0] } 0 .. $#{$v{plain}};
		my @ru = map { $v{$n}[$_][1] / $v{plain}[$_][1] } 0 .. $#{$v{plain}};
		printf "%-8s  per-round ratios INSERT %s (median %.2fx)   UPDATE %s (median %.2fx)\n", $n,
			join(" ", map { sprintf "%.2f", $_ } @ri), med(@ri), join(" ", map { sprintf "%.2f", $_ } @ru), med(@ru);
	}
' < "$1"
}
say "-- 200k-row statements"
summarise "$RUN/results"
say "-- single-row statements (per-statement cost; no size figures)"
summarise "$RUN/single"
