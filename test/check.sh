#!/usr/bin/env bash
# test/check.sh -- build iact and run every test against throwaway servers.
#
#   bash test/check.sh                 everything: pg_regress, isolation, TAP
#   bash test/check.sh regress tap     only some suites (regress, isolation, tap)
#   REGRESS="10_migration_log" ISOLATION="..." TAP="test/t/001_x.pl" bash test/check.sh
#                                      only some tests of each suite
#
# As root it installs the Debian packages that are missing, builds and
# installs iact system-wide, then reruns itself as the unprivileged user
# $IACT_TEST_USER (initdb refuses root) on a copy of the tree.  As an ordinary
# user it builds a private temporary installation (tmp_install/) and tests
# that.  PostgreSQL runs with shared_preload_libraries = 'iact'; if the tree
# has test/harness/mariadb.sh, a real MariaDB is started on loopback too.
# Every server started is stopped on exit, whatever happened.  The last line
# is the summary "check: N passed, N failed" (each pg_regress test, each
# isolation spec and each TAP assertion counts once); the exit status is
# non-zero on any failure.
set -uo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
. "$ROOT/test/harness/lib.sh"

if [ "$(id -u)" = 0 ]; then
	ensure_packages
	build_and_install_system "$ROOT"
	ensure_test_user
	WORK=${IACT_WORKDIR:-/tmp/iact-check}
	say "== copying the tree to $WORK for user $IACT_TEST_USER"
	copy_tree_for_test_user "$ROOT" "$WORK/src"
	exec runuser -u "$IACT_TEST_USER" -- env HOME="$WORK" \
		REGRESS="${REGRESS:-}" ISOLATION="${ISOLATION:-}" TAP="${TAP:-}" \
		bash "$WORK/src/test/check.sh" "$@"
fi

ensure_packages
SUITES=${*:-regress isolation tap}
want() { case " $SUITES " in *" $1 "*) return 0 ;; esac; return 1; }

say "== building a temporary installation"
make_temp_install "$ROOT"

RUN=$ROOT/tmp_check
rm -rf "$RUN" && mkdir -p "$RUN"
SOCK=$(mktemp -d /tmp/iact-sock.XXXXXX)
PGDATA_T=$RUN/pgdata
PORT=$(free_port) || die "no free port"

PASSED=0
FAILED=0
FAILED_NAMES=""
MARIADB_STARTED=""

cleanup() {
	stop_pg "$PGDATA_T"
	[ -n "$MARIADB_STARTED" ] && mariadb_stop
	rm -rf "$SOCK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if [ -f "$ROOT/test/harness/mariadb.sh" ]; then
	. "$ROOT/test/harness/mariadb.sh"
	say "== starting MariaDB"
	mariadb_start "$RUN/mariadb" && MARIADB_STARTED=1 || die "MariaDB did not start"
fi

count_suite() {		# count_suite NAME LOGFILE RC: pg_regress-style "... ok" / "... FAILED" lines
	local name=$1 log=$2 rc=$3 ok bad
	ok=$(grep -cE '\.\.\. ok' "$log")
	bad=$(grep -cE '\.\.\. FAILED' "$log")
	if [ "$rc" != 0 ] && [ "$bad" = 0 ]; then bad=1; fi
	PASSED=$((PASSED + ok))
	FAILED=$((FAILED + bad))
	[ "$bad" != 0 ] && FAILED_NAMES="$FAILED_NAMES $(grep -E '\.\.\. FAILED' "$log" | awk -v s="$name" '{print s "/" $2}' | tr '\n' ' ')"
	say "-- $name: $ok passed, $bad failed"
}

if want regress || want isolation; then
	say "== starting PostgreSQL on 127.0.0.1:$PORT"
	start_pg "$PGDATA_T" "$SOCK" "$PORT"
fi
export PGHOST=$SOCK PGPORT=$PORT PGUSER=postgres

if want regress; then
	tests=${REGRESS:-$(cd "$ROOT/sql" && ls *.sql 2>/dev/null | sed 's/\.sql$//' | sort)}
	if [ -n "$tests" ]; then
		say "== pg_regress"
		"$PGXS_DIR/src/test/regress/pg_regress" --inputdir="$ROOT" --outputdir="$RUN/regress" \
			--bindir="$TMP_BINDIR" --host="$SOCK" --port="$PORT" --user=postgres \
			--dbname=contrib_regression --load-extension=iact $tests 2>&1 | tee "$RUN/regress.log"
		rc=${PIPESTATUS[0]}
		[ -f "$RUN/regress/regression.diffs" ] && cat "$RUN/regress/regression.diffs"
		count_suite regress "$RUN/regress.log" "$rc"
	fi
fi

if want isolation; then
	specs=${ISOLATION:-$(cd "$ROOT/test/isolation/specs" 2>/dev/null && ls *.spec 2>/dev/null | sed 's/\.spec$//' | sort)}
	if [ -n "$specs" ]; then
		say "== pg_isolation_regress"
		"$PGXS_DIR/src/test/isolation/pg_isolation_regress" --inputdir="$ROOT/test/isolation" \
			--outputdir="$RUN/isolation" --bindir="$TMP_BINDIR" --host="$SOCK" --port="$PORT" \
			--user=postgres --dbname=isolation_regression --load-extension=iact $specs 2>&1 |
			tee "$RUN/isolation.log"
		rc=${PIPESTATUS[0]}
		[ -f "$RUN/isolation/regression.diffs" ] && cat "$RUN/isolation/regression.diffs"
		count_suite isolation "$RUN/isolation.log" "$rc"
	fi
fi
stop_pg "$PGDATA_T"

if want tap; then
	taps=${TAP:-$(ls "$ROOT"/test/t/*.pl 2>/dev/null | sort)}
	if [ -n "$taps" ]; then
		say "== TAP (prove)"
		ok=0; bad=0
		for t in $taps; do
			name=$(basename "$t" .pl)
			mkdir -p "$RUN/tap/$name"
			PATH="$TMP_BINDIR:$PATH" TESTDIR="$RUN/tap/$name" \
				PERL5LIB="$PGXS_DIR/src/test/perl:$ROOT/test/perl" \
				PG_REGRESS="$PGXS_DIR/src/test/regress/pg_regress" IACT_ROOT="$ROOT" \
				prove -v "$t" > "$RUN/tap/$name.log" 2>&1
			rc=$?
			# each assertion counts; a script that dies counts as one more failure
			t_ok=$(grep -cE '^ok [0-9]+' "$RUN/tap/$name.log")
			t_bad=$(grep -cE '^not ok [0-9]+' "$RUN/tap/$name.log")
			[ "$rc" != 0 ] && [ "$t_bad" = 0 ] && t_bad=1
			ok=$((ok + t_ok)); bad=$((bad + t_bad))
			if [ "$rc" = 0 ]; then
				say "tap $name ... ok ($t_ok assertions)"
			else
				say "tap $name ... FAILED ($t_bad of $((t_ok + t_bad)))"
				FAILED_NAMES="$FAILED_NAMES tap/$name"
				grep -E '^not ok|^#' "$RUN/tap/$name.log" | head -40
				for f in "$RUN/tap/$name"/tmp_check/log/*.log; do
					[ -f "$f" ] && { say "---- $f (tail)"; tail -15 "$f"; }
				done
			fi
		done
		PASSED=$((PASSED + ok)); FAILED=$((FAILED + bad))
		say "-- tap: $ok passed, $bad failed"
	fi
fi

[ "$FAILED" != 0 ] && say "failed:$FAILED_NAMES"
[ $((PASSED + FAILED)) = 0 ] && { say "no test ran"; FAILED=1; }
say "check: $PASSED passed, $FAILED failed"
[ "$FAILED" = 0 ]
