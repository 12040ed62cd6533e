#!/usr/bin/env bash
# test/demo.sh -- iact end to end on throwaway servers, with readable output.
#
# As root it installs what is missing, builds and installs iact, then reruns
# itself as the unprivileged user $IACT_TEST_USER.  It starts PostgreSQL
# (iact preloaded) on a loopback port -- and MariaDB with a sample IVR when the
# sync is part of the tree -- runs every part under test/demo/ in order, and
# stops everything it started.
set -uo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
. "$ROOT/test/harness/lib.sh"

if [ "$(id -u)" = 0 ]; then
	ensure_packages
	build_and_install_system "$ROOT"
	ensure_test_user
	WORK=${IACT_WORKDIR:-/tmp/iact-demo}
	copy_tree_for_test_user "$ROOT" "$WORK/src"
	exec runuser -u "$IACT_TEST_USER" -- env HOME="$WORK" bash "$WORK/src/test/demo.sh" "$@"
fi

ensure_packages
make_temp_install "$ROOT"
RUN=$ROOT/tmp_demo
rm -rf "$RUN" && mkdir -p "$RUN"
SOCK=$(mktemp -d /tmp/iact-demo.XXXXXX)
PORT=$(free_port) || die "no free port"
MARIADB_STARTED=""
cleanup() {
	stop_pg "$RUN/pgdata"
	[ -n "$MARIADB_STARTED" ] && mariadb_stop
	rm -rf "$SOCK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if [ -f "$ROOT/test/harness/mariadb.sh" ]; then
	. "$ROOT/test/harness/mariadb.sh"
	mariadb_start "$RUN/mariadb" && MARIADB_STARTED=1 || die "MariaDB did not start"
fi
# the worker's schedule starts off: the sync part shows manual runs first,
# the worker part turns the schedule on
start_pg "$RUN/pgdata" "$SOCK" "$PORT" "iact.sync_enabled = off"
say "PostgreSQL 15 with iact preloaded on 127.0.0.1:$PORT"
export PGHOST=127.0.0.1 PGPORT=$PORT PGUSER=postgres PGDATABASE=postgres
export IACT_DEMO_DIR=$RUN

psql -qX -c "CREATE EXTENSION iact" || die "CREATE EXTENSION failed"
status=0
for part in "$ROOT"/test/demo/*; do
	say ""
	say "################ $(basename "$part")"
	case "$part" in
	*.sql) psql -X --echo-all -v ON_ERROR_STOP=1 --pset=pager=off -f "$part" || status=1 ;;
	*.sh) bash "$part" || status=1 ;;
	esac
done
say ""
[ $status = 0 ] && say "demo: finished" || say "demo: a part failed"
exit $status
