# test/harness/lib.sh -- shared by test/check.sh and test/demo.sh
#
# Owns: installing what is missing (as root), building iact, the temporary
# PostgreSQL installation the tests run against, starting and stopping
# throwaway servers, and dropping root privileges (initdb refuses root).
#
# The temporary installation is a copy of Debian's PostgreSQL 15 with iact installed into it by "make install DESTDIR=...",
# the way PostgreSQL's own "make check" works.  It lets an ordinary user run
# every test, and two checkouts test side by side without overwriting each
# other's iact.so.

PG_MAJOR=15
PG_BINDIR=/usr/lib/postgresql/$PG_MAJOR/bin
PG_CONFIG_BIN=$PG_BINDIR/pg_config
PGXS_DIR=/usr/lib/postgresql/$PG_MAJOR/lib/pgxs
IACT_TEST_USER=${IACT_TEST_USER:-iacttest}

# Debian packages the demo and the tests need (beyond gcc, make, git).
IACT_PACKAGES="postgresql-$PG_MAJOR postgresql-server-dev-$PG_MAJOR postgresql-contrib
 libipc-run-perl mariadb-server mariadb-client libmariadb-dev
 ca-certificates openssl prometheus prometheus-node-exporter"

say() { printf '%s\n' "$*"; }
die() { printf 'error: %s\n' "$*" >&2; exit 2; }

missing_packages() {
	local p missing=""
	for p in $IACT_PACKAGES; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' ||
			missing="$missing $p"
	done
	printf '%s' "$missing"
}

# As root: apt-get install whatever is missing.  As a user: say what is missing.
ensure_packages() {
	local missing
	missing=$(missing_packages)
	[ -z "$missing" ] && return 0
	if [ "$(id -u)" != 0 ]; then
		die "missing Debian packages:$missing (as root: apt-get install$missing)"
	fi
	say "== installing Debian packages:$missing"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq || die "apt-get update failed"
	# policy-rc.d keeps the packaged MariaDB/PostgreSQL services from starting:
	# the harness starts its own servers on loopback.
	local policy=/usr/sbin/policy-rc.d created_policy=""
	if [ ! -e "$policy" ]; then
		printf '#!/bin/sh\nexit 101\n' > "$policy" && chmod 755 "$policy" && created_policy=1
	fi
	apt-get install -y -qq --no-install-recommends $missing > /tmp/iact-apt.log 2>&1
	local rc=$?
	[ -n "$created_policy" ] && rm -f "$policy"
	[ $rc = 0 ] || { tail -20 /tmp/iact-apt.log; die "apt-get install failed"; }
}

# Build iact in $1 (no warnings allowed) and install it into the system.
build_and_install_system() {
	local src=$1
	say "== building iact"
	make -s -C "$src" PG_CONFIG=$PG_CONFIG_BIN > "$src/build.log" 2>&1 ||
		{ cat "$src/build.log"; die "build failed"; }
	if grep -q 'warning:' "$src/build.log"; then
		cat "$src/build.log"; die "the build printed compiler warnings"
	fi
	make -s -C "$src" PG_CONFIG=$PG_CONFIG_BIN install > /dev/null || die "make install failed"
}

# Create the unprivileged account servers run as when we are root.
ensure_test_user() {
	id "$IACT_TEST_USER" > /dev/null 2>&1 ||
		useradd --system --user-group --create-home --shell /bin/bash "$IACT_TEST_USER" ||
		die "cannot create user $IACT_TEST_USER"
}

# Copy the source tree $1 to $2 (owned by the test user) without build output.
copy_tree_for_test_user() {
	local src=$1 dst=$2
	rm -rf "$dst" && mkdir -p "$dst"
	tar -C "$src" --exclude=.git --exclude=./tmp_install --exclude=./build \
		--exclude='*.o' --exclude='*.so' --exclude='*.bc' -cf - . | tar -C "$dst" -xf -
	chown -R "$IACT_TEST_USER:" "$dst"
}

# For a bench script run as root: install the packages, copy the tree $1 for the
# test user to ${IACT_WORKDIR:-$2}/src and run the script $3 (relative to the tree)
# there as that user.  VAR=value words up to "--" go into its environment, the
# words after "--" are its arguments.  Never returns.
rerun_as_test_user() {
	local root=$1 work=${IACT_WORKDIR:-$2} script=$3
	local envs=()
	shift 3
	while [ $# -gt 0 ] && [ "$1" != -- ]; do envs+=("$1"); shift; done
	[ $# -gt 0 ] && shift
	ensure_packages
	ensure_test_user
	copy_tree_for_test_user "$root" "$work/src"
	exec runuser -u "$IACT_TEST_USER" -- env HOME="$work" "${envs[@]}" bash "$work/src/$script" "$@"
}

# For a bench script: a throwaway server in the directory $1 (emptied first) with
# the postgresql.conf lines $2..., on a free port and a private socket directory,
# stopped and removed at exit (INT and TERM exit too).  Sets RUN, SOCK and PORT;
# exports PGHOST, PGPORT, PGUSER=postgres and PGDATABASE=postgres.
start_bench_server() {
	RUN=$1
	shift
	rm -rf "$RUN" && mkdir -p "$RUN"
	SOCK=$(mktemp -d /tmp/iact-bench.XXXXXX)
	PORT=$(free_port) || die "no free port"
	trap 'stop_pg "$RUN/pgdata"; rm -rf "$SOCK"' EXIT
	trap 'exit 130' INT TERM
	start_pg "$RUN/pgdata" "$SOCK" "$PORT" "$@"
	export PGHOST=$SOCK PGPORT=$PORT PGUSER=postgres PGDATABASE=postgres
}

# Build iact in $1 and install it into a private copy of PostgreSQL at $1/tmp_install.
make_temp_install() {
	local src=$1 inst=$1/tmp_install
	make -s -C "$src" PG_CONFIG=$PG_CONFIG_BIN > "$src/build.log" 2>&1 ||
		{ cat "$src/build.log"; die "build failed"; }
	if grep -q 'warning:' "$src/build.log"; then
		cat "$src/build.log"; die "the build printed compiler warnings"
	fi
	rm -rf "$inst"
	mkdir -p "$inst/usr/lib/postgresql" "$inst/usr/share/postgresql"
	# a copy, not hard links: fs.protected_hardlinks refuses links to root's
	# files; without any iact a system-wide install left (older, or being
	# replaced by another build at this very moment)
	tar -C /usr/lib/postgresql --exclude="$PG_MAJOR/lib/iact.so" \
		--exclude="$PG_MAJOR/lib/bitcode/iact*" -cf - "$PG_MAJOR" |
		tar -C "$inst/usr/lib/postgresql" -xf - &&
		tar -C /usr/share/postgresql --exclude="$PG_MAJOR/extension/iact*" -cf - "$PG_MAJOR" |
		tar -C "$inst/usr/share/postgresql" -xf - ||
		die "cannot copy PostgreSQL into $inst"
	make -s -C "$src" PG_CONFIG=$PG_CONFIG_BIN DESTDIR="$inst" install > /dev/null ||
		die "make install into the temporary installation failed"
	TMP_BINDIR=$inst/usr/lib/postgresql/$PG_MAJOR/bin
	export TMP_BINDIR
}

# A free TCP port on 127.0.0.1.
free_port() {
	perl -MIO::Socket::INET -e '
		for (1..200) {
			my $p = 20000 + int(rand(40000));
			my $s = IO::Socket::INET->new(LocalAddr => "127.0.0.1", LocalPort => $p,
				Proto => "tcp", ReuseAddr => 0) or next;
			close $s; print $p; exit 0;
		}
		exit 1;'
}

# start_pg DATADIR SOCKDIR PORT [extra conf lines...]: a throwaway cluster with iact preloaded.
start_pg() {
	local data=$1 sock=$2 port=$3
	shift 3
	"$TMP_BINDIR/initdb" -D "$data" -U postgres -A trust --no-sync > "$data.initdb.log" 2>&1 ||
		{ cat "$data.initdb.log"; die "initdb failed"; }
	{
		echo "shared_preload_libraries = 'iact'"
		echo "listen_addresses = '127.0.0.1'"
		echo "port = $port"
		echo "unix_socket_directories = '$sock'"
		echo "fsync = off"
		echo "max_prepared_transactions = 10"
		echo "log_line_prefix = '%m [%p] %q%a '"
		for line in "$@"; do echo "$line"; done
	} >> "$data/postgresql.conf"
	"$TMP_BINDIR/pg_ctl" -D "$data" -l "$data.log" -w -t 60 start > /dev/null ||
		{ cat "$data.log"; die "PostgreSQL did not start"; }
}

stop_pg() {
	local data=$1
	[ -f "$data/postmaster.pid" ] && "$TMP_BINDIR/pg_ctl" -D "$data" -m fast -w stop > /dev/null 2>&1
	return 0
}

# ---- the Debian package (the "package" suite of test/check.sh) ----
# Build dependencies of debian/ beyond IACT_PACKAGES (installed as root only).
IACT_DEB_BUILD_PACKAGES="debhelper dpkg-dev postgresql-server-dev-all"
IACT_DEB_NAME=postgresql-$PG_MAJOR-iact

# As root: build the .deb from a copy of the tree $1 under $2 (dpkg-buildpackage
# -us -uc -b) and install it with apt-get, replacing whatever "make install"
# put in the same paths.  On success prints the .deb's path.
build_and_install_deb() {
	local src=$1 dir=$2 deb log
	IACT_PACKAGES="$IACT_DEB_BUILD_PACKAGES" ensure_packages >&2
	rm -rf "$dir" && mkdir -p "$dir/iact" || return 1
	tar -C "$src" --exclude=.git --exclude=./tmp_install --exclude=./tmp_check --exclude=./build \
		--exclude='*.o' --exclude='*.so' --exclude='*.bc' --exclude=./results --exclude=./output_iso \
		--exclude="./$(basename "$dir")" -cf - . | tar -C "$dir/iact" -xf - || return 1
	make -s -C "$dir/iact" clean PG_CONFIG=$PG_CONFIG_BIN > /dev/null 2>&1
	log=$dir/dpkg-buildpackage.log
	(cd "$dir/iact" && dpkg-buildpackage -us -uc -b) > "$log" 2>&1 ||
		{ tail -30 "$log" >&2; echo "dpkg-buildpackage failed (log: $log)" >&2; return 1; }
	if grep -qE '\.[ch]:[0-9]+(:[0-9]+)?: warning:' "$log"; then
		grep -E '\.[ch]:[0-9]+(:[0-9]+)?: warning:' "$log" >&2
		echo "the package build printed compiler warnings" >&2; return 1
	fi
	deb=$(ls "$dir"/"$IACT_DEB_NAME"_*_amd64.deb 2>/dev/null | head -1)
	[ -n "$deb" ] || { echo "no $IACT_DEB_NAME .deb in $dir" >&2; return 1; }
	# --reinstall: the same version may be installed already, with its files
	# since overwritten by "make install"
	DEBIAN_FRONTEND=noninteractive apt-get install -y -q --reinstall -o DPkg::Lock::Timeout=300 \
		"$deb" > "$dir/apt-get.log" 2>&1 ||
		{ tail -20 "$dir/apt-get.log" >&2; echo "apt-get install $deb failed" >&2; return 1; }
	printf '%s\n' "$deb"
}
