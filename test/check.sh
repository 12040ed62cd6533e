#!/usr/bin/env bash
# test/check.sh -- build iact and run every test against throwaway servers.
#
#   bash test/check.sh                 everything: pg_regress, isolation, package, TAP
#   bash test/check.sh regress tap     only some suites (regress, isolation, package, tap)
#   REGRESS="10_migration_log" ISOLATION="..." TAP="test/t/001_x.pl" bash test/check.sh
#                                      only some tests of each suite
#
# As root it installs the Debian packages that are missing, builds and
# installs iact system-wide, builds the Debian package and installs it with
# apt-get (suite "package"), then reruns itself as the unprivileged user
# $IACT_TEST_USER (initdb refuses root) on a copy of the tree.  As an ordinary
# user it builds a private temporary installation (tmp_install/) and tests
# that.  PostgreSQL runs with shared_preload_libraries = 'iact'; if the tree
# has test/harness/mariadb.sh, a real MariaDB is started on loopback too.
# The package suite starts a server from the INSTALLED package's files
# (Debian's /usr/lib/postgresql/15, the system extension directory), proves
# it (dpkg owns them, unmodified, the postmaster maps the packaged library)
# and runs "make installcheck" (pg_regress and isolation specs) against it;
# as an ordinary user it tests the package already installed, or says it
# could not.
# Every server started is stopped on exit, whatever happened.  The last line
# is the summary "check: N passed, N failed" (each pg_regress test, each
# isolation spec and each TAP assertion counts once); the exit status is
# non-zero on any failure.
set -uo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
. "$ROOT/test/harness/lib.sh"

SUITES=${*:-regress isolation package tap}
want() { case " $SUITES " in *" $1 "*) return 0 ;; esac; return 1; }

if [ "$(id -u)" = 0 ]; then
	ensure_packages
	build_and_install_system "$ROOT"
	ensure_test_user
	WORK=${IACT_WORKDIR:-/tmp/iact-check}
	say "== copying the tree to $WORK for user $IACT_TEST_USER"
	copy_tree_for_test_user "$ROOT" "$WORK/src"
	DEB_STATUS=""
	if want package; then
		# after "make install": the package's files replace what it installed;
		# last, so that the package suite tests it as soon as possible
		# (see doc/development.md)
		say "== building the Debian package and installing it (apt-get)"
		if deb=$(build_and_install_deb "$ROOT" "$WORK/deb"); then
			DEB_STATUS="installed $deb"
			say "installed $deb"
		else
			DEB_STATUS="failed"
		fi
	fi
	exec runuser -u "$IACT_TEST_USER" -- env HOME="$WORK" \
		REGRESS="${REGRESS:-}" ISOLATION="${ISOLATION:-}" TAP="${TAP:-}" IACT_DEB_STATUS="$DEB_STATUS" \
		bash "$WORK/src/test/check.sh" "$@"
fi

ensure_packages

RUN=$ROOT/tmp_check
rm -rf "$RUN" && mkdir -p "$RUN"
SOCK=$(mktemp -d /tmp/iact-sock.XXXXXX)
PGDATA_T=$RUN/pgdata
PORT=$(free_port) || die "no free port"

PASSED=0
FAILED=0
FAILED_NAMES=""
MARIADB_STARTED=""
PKG_DATA=""

cleanup() {
	stop_pg "$PGDATA_T"
	[ -n "$PKG_DATA" ] && TMP_BINDIR=$PG_BINDIR stop_pg "$PKG_DATA"
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

# one counted assertion: check_ok SUITE NAME COMMAND...
check_ok() {
	local suite=$1 name=$2
	shift 2
	if "$@"; then
		PASSED=$((PASSED + 1)); say "$suite $name ... ok"
	else
		FAILED=$((FAILED + 1)); FAILED_NAMES="$FAILED_NAMES $suite/$name"; say "$suite $name ... FAILED"
	fi
}

# the sync tests change MariaDB's sample IVR: a second pg_regress run needs it as loaded
reset_ivr_fixture() {
	[ -n "$MARIADB_STARTED" ] || return 0
	local f
	mariadb_sql -e 'DROP DATABASE IF EXISTS ivr' || return 1
	for f in "$ROOT"/test/fixtures/ivr*.sql; do mariadb_sql < "$f" || return 1; done
}

# the package suite's proofs that the server runs the packaged files
pkg_owns() {
	local owner
	owner=$(dpkg -S "$1" 2>&1)
	say "   dpkg -S: $owner"
	[ "${owner%%:*}" = "$IACT_DEB_NAME" ]
}
pkg_unmodified() {
	local out
	out=$(dpkg --verify "$IACT_DEB_NAME" 2>&1)
	[ -z "$out" ] && return 0
	say "   dpkg --verify $IACT_DEB_NAME: files differ from the package (a \"make install\" since?):"
	printf '%s\n' "$out" | head -5
	return 1
}
pkg_version() {
	local v want
	v=$(dpkg-query -W -f='${Version}' "$IACT_DEB_NAME" 2>/dev/null)
	want=$(sed -n '1s/^iact (\([^)]*\)).*/\1/p' "$ROOT/debian/changelog")
	say "   installed $IACT_DEB_NAME $v, this tree's debian/changelog $want"
	[ -n "$v" ] && [ "$v" = "$want" ]
}
pkg_maps() {	# the running postmaster of $1 has the library $2 mapped (and not a replaced one)
	local pid
	pid=$(head -1 "$1/postmaster.pid" 2>/dev/null) || return 1
	grep -F "$2" "/proc/$pid/maps" | grep -qv '(deleted)'
}
pkg_create() {	# CREATE EXTENSION from the system extension directory gives the default version
	local db=pkg_probe got want
	want=$(sed -n "s/^default_version *= *'\(.*\)'/\1/p" "$ROOT/iact.control")
	"$PG_BINDIR/psql" -X -q -v ON_ERROR_STOP=1 -d postgres -c "CREATE DATABASE $db" > /dev/null || return 1
	got=$("$PG_BINDIR/psql" -X -q -A -t -v ON_ERROR_STOP=1 -d "$db" -c 'CREATE EXTENSION iact' \
		-c "SELECT extversion || ' ' || (SELECT setting FROM pg_config WHERE name = 'SHAREDIR') FROM pg_extension WHERE extname = 'iact'") || return 1
	say "   CREATE EXTENSION iact: version and share directory: $got"
	"$PG_BINDIR/psql" -X -q -d postgres -c "DROP DATABASE $db" > /dev/null
	[ "$got" = "$want /usr/share/postgresql/$PG_MAJOR" ]
}

export PGHOST=$SOCK PGPORT=$PORT PGUSER=postgres

# first: the sooner after the root phase's apt-get install, the less chance that
# a concurrent "make install" on this machine replaced the packaged files
if want package; then
	say "== package: the installed $IACT_DEB_NAME (make installcheck against a server from its files)"
	run_pkg=""
	case "${IACT_DEB_STATUS:-}" in
	failed)
		FAILED=$((FAILED + 1)); FAILED_NAMES="$FAILED_NAMES package/build-and-install"
		say "package build-and-install ... FAILED (see the output of the root phase above)" ;;
	installed*)
		run_pkg=1 ;;
	*)
		if dpkg-query -W -f='${Status}' "$IACT_DEB_NAME" 2>/dev/null | grep -q 'install ok installed'; then
			say "(not root: testing the $IACT_DEB_NAME already installed, not rebuilt from this tree)"
			run_pkg=1
		else
			say "package: NOT RUN: $IACT_DEB_NAME is not installed (as root, test/check.sh builds and installs it)"
		fi ;;
	esac
	if [ -n "$run_pkg" ]; then
		so=/usr/lib/postgresql/$PG_MAJOR/lib/iact.so
		[ -n "${IACT_DEB_STATUS:-}" ] && check_ok package version-of-this-tree pkg_version
		check_ok package dpkg-owns-iact.so pkg_owns "$so"
		check_ok package files-as-packaged pkg_unmodified
		PKG_DATA=$RUN/pkgdata
		PKG_PORT=$(free_port) || die "no free port"
		say "== starting PostgreSQL from $PG_BINDIR on 127.0.0.1:$PKG_PORT"
		TMP_BINDIR=$PG_BINDIR start_pg "$PKG_DATA" "$SOCK" "$PKG_PORT"
		check_ok package postmaster-maps-packaged-iact.so pkg_maps "$PKG_DATA" "$so"
		PGPORT=$PKG_PORT check_ok package create-extension pkg_create
		[ -n "$MARIADB_STARTED" ] && check_ok package mariadb-fixture-reloaded reset_ivr_fixture
		mkdir -p "$RUN/pkgcheck"
		make -C "$RUN/pkgcheck" -f "$ROOT/Makefile" installcheck PG_CONFIG="$PG_CONFIG_BIN" TAP_TESTS= \
			PGHOST="$SOCK" PGPORT="$PKG_PORT" PGUSER=postgres 2>&1 | tee "$RUN/package.log"
		rc=${PIPESTATUS[0]}
		for f in "$RUN"/pkgcheck/regression.diffs "$RUN"/pkgcheck/output_iso/regression.diffs; do
			[ -f "$f" ] && cat "$f"
		done
		count_suite package "$RUN/package.log" "$rc"
		check_ok package files-still-as-packaged pkg_unmodified
		TMP_BINDIR=$PG_BINDIR stop_pg "$PKG_DATA"
		PKG_DATA=""
	fi
fi

if want regress || want isolation || want tap; then
	say "== building a temporary installation"
	make_temp_install "$ROOT"
fi

if want regress || want isolation; then
	say "== starting PostgreSQL on 127.0.0.1:$PORT"
	start_pg "$PGDATA_T" "$SOCK" "$PORT"
fi

if want regress; then
	tests=${REGRESS:-$(cd "$ROOT/sql" && ls *.sql 2>/dev/null | sed 's/\.sql$//' | sort)}
	if [ -n "$tests" ]; then
		say "== pg_regress"
		reset_ivr_fixture || die "cannot reload MariaDB's sample IVR"
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
