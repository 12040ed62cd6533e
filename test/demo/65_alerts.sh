#!/usr/bin/env bash
# demo part: an alert of the shipped rules firing in a real Prometheus.
# A migration fails; the manual's cron command writes the scrape for
# node_exporter's textfile collector; Prometheus (rules file as shipped,
# 1 s scrape and evaluation) fires IactMigrationFailed.  Both daemons run on
# loopback ports with their data under the demo's directory and are stopped
# when this part ends.  Then the rules' unit tests (promtool test rules).
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
. "$ROOT/test/harness/lib.sh"
DIR=${IACT_DEMO_DIR:?}/prometheus
rm -rf "$DIR" && mkdir -p "$DIR/textfiles"
PIDS=""
trap 'for p in $PIDS; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; done' EXIT

say "==== Alerting: the shipped Prometheus rules ===="
say "-- a migration that fails"
psql -X -q -c "CALL iact.run_migration('2026.12.demo', 'fails on purpose', 'SELECT 1/0')" 2>&1 | sed 's/^/   /'
psql -X -c "SELECT check_name, status, value, detail FROM iact.health() WHERE check_name LIKE 'migrations%'"

say "-- the scrape, as the manual's cron line does it (every minute in production)"
scrape() {
	psql -XAtq -c 'SELECT iact.metrics()' > "$DIR/textfiles/iact.prom.tmp" &&
		mv "$DIR/textfiles/iact.prom.tmp" "$DIR/textfiles/iact.prom"
}
scrape
grep -E '^iact_(up|health_value\{check="migrations_failed"\})' "$DIR/textfiles/iact.prom" | sed 's/^/   /'

EXPORTER_PORT=$(free_port) && PROM_PORT=$(free_port) || die "no free port"
/usr/bin/prometheus-node-exporter --collector.disable-defaults --collector.textfile \
	--collector.textfile.directory="$DIR/textfiles" --web.listen-address="127.0.0.1:$EXPORTER_PORT" \
	> "$DIR/node_exporter.log" 2>&1 &
PIDS="$PIDS $!"
cat > "$DIR/prometheus.yml" <<YML
global: {scrape_interval: 1s, evaluation_interval: 1s}
rule_files: ['$ROOT/monitoring/prometheus/iact-rules.yml']
scrape_configs:
  - job_name: node
    static_configs: [{targets: ['127.0.0.1:$EXPORTER_PORT']}]
YML
/usr/bin/prometheus --config.file="$DIR/prometheus.yml" --storage.tsdb.path="$DIR/data" \
	--web.listen-address="127.0.0.1:$PROM_PORT" --log.level=warn > "$DIR/prometheus.log" 2>&1 &
PIDS="$PIDS $!"
say "-- node_exporter on 127.0.0.1:$EXPORTER_PORT, prometheus on 127.0.0.1:$PROM_PORT; waiting for the alert"
found=""
for _ in $(seq 1 60); do
	scrape
	found=$(perl -MHTTP::Tiny -MJSON::PP -e '
		my $r = HTTP::Tiny->new(timeout => 5)->get("http://127.0.0.1:$ARGV[0]/api/v1/alerts");
		exit 1 unless $r->{success};
		for my $a (@{ decode_json($r->{content})->{data}{alerts} }) {
			next unless $a->{state} eq "firing";
			printf "   %s (%s) firing since %s: %s\n", $a->{labels}{alertname}, $a->{labels}{severity},
				$a->{activeAt}, $a->{annotations}{description};
		}' "$PROM_PORT" 2>/dev/null)
	case "$found" in *IactMigrationFailed*) break ;; esac
	sleep 1
done
say "-- GET /api/v1/alerts:"
printf '%s\n' "$found"
case "$found" in *IactMigrationFailed*) ;; *) die "IactMigrationFailed did not fire" ;; esac

say "-- the unit tests of every alert: promtool test rules"
(cd "$ROOT/monitoring/prometheus/tests" && promtool test rules ./*.yml) 2>&1 | sed 's/^/   /'
