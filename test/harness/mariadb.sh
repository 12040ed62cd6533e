# test/harness/mariadb.sh -- a throwaway MariaDB for the sync tests and the demo.
#
# Sourced by test/check.sh and test/demo.sh (after lib.sh).  Owns:
#   mariadb_start DIR   start Debian's mariadbd as the current (unprivileged)
#                       user with its data under DIR, on a free loopback port,
#                       load test/fixtures/ivr*.sql, create the accounts, and
#                       export the IACT_MARIADB_* variables below;
#   mariadb_stop        stop it (safe to call twice, also after a failure);
#   mariadb_sql SQL...  run SQL as the MariaDB root account (tests, demo).
#
# The server is installed the ordinary way, WITH the default test database and
# its grants (MariaDB 10.11: ALL on `test`.* and `test\_%`.* to PUBLIC), as
# most production servers are; IACT_MARIADB_SKIP_TEST_DB=1 installs it
# without (mariadb-install-db --skip-test-db; test/t/033_sync_grants.pl).
#
# Accounts: root (unix socket only), iact_reader (SELECT + SHOW VIEW on ivr.*,
# the account iact is meant to use), iact_writer (can write: negative tests),
# iact_role_reader (reads through its default role ivr_read; also holds the
# non-default role scratch_rw, which can write the database `scratch` only)
# and iact_role_writer (SELECT on ivr.*, and the non-default role ivr_write,
# which holds the role ivr_fix, which may UPDATE ivr.calls).
#
# Exported: IACT_MARIADB_HOST IACT_MARIADB_PORT IACT_MARIADB_SOCKET
#   IACT_MARIADB_USER IACT_MARIADB_PASSWORD (the reader)
#   IACT_MARIADB_WRITER_USER IACT_MARIADB_WRITER_PASSWORD
#   IACT_MARIADB_ROLE_READER_USER IACT_MARIADB_ROLE_WRITER_USER (password: role-pw)
#   IACT_MARIADB_DB (ivr) IACT_MARIADB_DIR IACT_MARIADB_BIN
#   IACT_MARIADB_CLI (a root mariadb client command line, database ivr)
#   IACT_MARIADB_SSL_CA (the CA of the server's TLS certificate), IACT_MARIADB_OTHER_CA

IACT_MARIADB_PID=""

mariadb_sql() {
	mariadb --no-defaults --protocol=socket --socket="$IACT_MARIADB_SOCKET" -uroot --default-character-set=utf8mb4 \
		--batch --skip-column-names "$@"
}

# _mariadb_launch: start mariadbd on the already initialised datadir.
_mariadb_launch() {
	local dir=$IACT_MARIADB_DIR
	mkdir -p "$dir/tmp"
	mariadbd --no-defaults --datadir="$dir/data" --tmpdir="$dir/tmp" --port="$IACT_MARIADB_PORT" \
		--ssl-ca="$dir/tls/ca.pem" --ssl-cert="$dir/tls/server.pem" --ssl-key="$dir/tls/server.key" \
		--bind-address=127.0.0.1 --socket="$IACT_MARIADB_SOCKET" \
		--pid-file="$dir/mariadbd.pid" --log-error="$dir/mariadbd.err" \
		--skip-name-resolve --innodb-buffer-pool-size=256M --innodb-log-file-size=128M \
		--innodb-flush-log-at-trx-commit=2 --skip-log-bin --max-connections=100 \
		--character-set-server=utf8mb4 --collation-server=utf8mb4_general_ci \
		--sql-mode=NO_ENGINE_SUBSTITUTION > /dev/null 2>&1 &
	IACT_MARIADB_PID=$!
	# not a job of the calling shell: a test that kills it (030) leaves no
	# "Killed mariadbd ..." line in the suite's output
	disown "$IACT_MARIADB_PID" 2>/dev/null
	local i
	for i in $(seq 1 120); do
		if mariadb-admin --no-defaults --protocol=socket --socket="$IACT_MARIADB_SOCKET" \
			-uroot ping > /dev/null 2>&1; then
			echo "$IACT_MARIADB_PID" > "$dir/launcher.pid"
			return 0
		fi
		kill -0 "$IACT_MARIADB_PID" 2>/dev/null || break
		sleep 0.5
	done
	tail -20 "$dir/mariadbd.err" >&2
	return 1
}

# _mariadb_tls DIR: a throwaway CA, a server certificate for 127.0.0.1 signed
# by it, and an unrelated CA (to show that verification really happens)
_mariadb_tls() {
	local d=$1
	mkdir -p "$d" || return 1
	{
		openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=iact test CA" \
			-keyout "$d/ca.key" -out "$d/ca.pem" &&
		openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=iact other CA" \
			-keyout "$d/other-ca.key" -out "$d/other-ca.pem" &&
		openssl req -newkey rsa:2048 -nodes -subj "/CN=127.0.0.1" \
			-keyout "$d/server.key" -out "$d/server.csr" &&
		printf 'subjectAltName = IP:127.0.0.1, DNS:localhost\n' > "$d/san.ext" &&
		openssl x509 -req -in "$d/server.csr" -CA "$d/ca.pem" -CAkey "$d/ca.key" -CAcreateserial \
			-days 2 -extfile "$d/san.ext" -out "$d/server.pem"
	} > "$d/openssl.log" 2>&1 || { cat "$d/openssl.log" >&2; return 1; }
}

mariadb_start() {
	local dir=$1
	rm -rf "$dir" && mkdir -p "$dir/data" || return 1
	dir=$(cd "$dir" && pwd)
	IACT_MARIADB_DIR=$dir
	IACT_MARIADB_SOCKDIR=$(mktemp -d /tmp/iact-my.XXXXXX) || return 1
	IACT_MARIADB_SOCKET=$IACT_MARIADB_SOCKDIR/mysqld.sock
	IACT_MARIADB_PORT=$(free_port) || return 1
	IACT_MARIADB_HOST=127.0.0.1
	IACT_MARIADB_BIN=$(command -v mariadbd)
	# a root client command for tests (pg_regress: \! $IACT_MARIADB_CLI -e "...")
	IACT_MARIADB_CLI="mariadb --no-defaults --protocol=socket --socket=$IACT_MARIADB_SOCKET -uroot --batch --skip-column-names --default-character-set=utf8mb4 ivr"
	export IACT_MARIADB_DIR IACT_MARIADB_SOCKET IACT_MARIADB_PORT IACT_MARIADB_HOST IACT_MARIADB_BIN IACT_MARIADB_CLI
	_mariadb_tls "$dir/tls" || return 1
	IACT_MARIADB_SSL_CA=$dir/tls/ca.pem
	IACT_MARIADB_OTHER_CA=$dir/tls/other-ca.pem
	export IACT_MARIADB_SSL_CA IACT_MARIADB_OTHER_CA
	local skip_test_db=""
	[ "${IACT_MARIADB_SKIP_TEST_DB:-}" = 1 ] && skip_test_db=--skip-test-db
	mariadb-install-db --no-defaults --datadir="$dir/data" --auth-root-authentication-method=normal \
		$skip_test_db > "$dir/install.log" 2>&1 || { tail -20 "$dir/install.log" >&2; return 1; }
	_mariadb_launch || return 1
	local f
	for f in "$(dirname "${BASH_SOURCE[0]}")"/../fixtures/ivr*.sql; do
		mariadb_sql < "$f" || { echo "loading $f failed" >&2; return 1; }
	done
	IACT_MARIADB_USER=iact_reader
	IACT_MARIADB_PASSWORD="r3ad'er pw"
	IACT_MARIADB_WRITER_USER=iact_writer
	IACT_MARIADB_WRITER_PASSWORD=writer-pw
	IACT_MARIADB_DB=ivr
	export IACT_MARIADB_USER IACT_MARIADB_PASSWORD IACT_MARIADB_WRITER_USER \
		IACT_MARIADB_WRITER_PASSWORD IACT_MARIADB_DB
	mariadb_sql <<-SQL || return 1
		CREATE USER 'iact_reader'@'127.0.0.1' IDENTIFIED BY 'r3ad\'er pw';
		CREATE USER 'iact_reader'@'localhost' IDENTIFIED BY 'r3ad\'er pw';
		GRANT SELECT, SHOW VIEW ON ivr.* TO 'iact_reader'@'127.0.0.1';
		GRANT SELECT, SHOW VIEW ON ivr.* TO 'iact_reader'@'localhost';
		CREATE USER 'iact_writer'@'127.0.0.1' IDENTIFIED BY 'writer-pw';
		CREATE USER 'iact_writer'@'localhost' IDENTIFIED BY 'writer-pw';
		GRANT SELECT, INSERT, UPDATE ON ivr.* TO 'iact_writer'@'127.0.0.1';
		GRANT SELECT, INSERT, UPDATE ON ivr.* TO 'iact_writer'@'localhost';
		CREATE DATABASE scratch;
		CREATE ROLE ivr_read;
		GRANT SELECT, SHOW VIEW ON ivr.* TO ivr_read;
		CREATE ROLE scratch_rw;
		GRANT ALL ON scratch.* TO scratch_rw;
		CREATE ROLE ivr_fix;
		GRANT UPDATE ON ivr.calls TO ivr_fix;
		CREATE ROLE ivr_write;
		GRANT ivr_fix TO ivr_write;
	SQL
	local h
	for h in 127.0.0.1 localhost; do
		mariadb_sql <<-SQL || return 1
			CREATE USER 'iact_role_reader'@'$h' IDENTIFIED BY 'role-pw';
			GRANT ivr_read TO 'iact_role_reader'@'$h';
			GRANT scratch_rw TO 'iact_role_reader'@'$h';
			SET DEFAULT ROLE ivr_read FOR 'iact_role_reader'@'$h';
			CREATE USER 'iact_role_writer'@'$h' IDENTIFIED BY 'role-pw';
			GRANT SELECT ON ivr.* TO 'iact_role_writer'@'$h';
			GRANT ivr_write TO 'iact_role_writer'@'$h';
		SQL
	done
	IACT_MARIADB_ROLE_READER_USER=iact_role_reader
	IACT_MARIADB_ROLE_WRITER_USER=iact_role_writer
	export IACT_MARIADB_ROLE_READER_USER IACT_MARIADB_ROLE_WRITER_USER
}

# mariadb_kill: stop the server abruptly (fault tests); mariadb_restart: start it again.
mariadb_kill() {
	[ -f "$IACT_MARIADB_DIR/mariadbd.pid" ] && kill -9 "$(cat "$IACT_MARIADB_DIR/mariadbd.pid")" 2>/dev/null
	sleep 1
}
mariadb_restart() { _mariadb_launch; }

mariadb_stop() {
	[ -n "${IACT_MARIADB_DIR:-}" ] || return 0
	local pidf=$IACT_MARIADB_DIR/mariadbd.pid pid i
	if [ -f "$pidf" ]; then
		pid=$(cat "$pidf")
		kill "$pid" 2>/dev/null
		for i in $(seq 1 60); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
		kill -9 "$pid" 2>/dev/null
	fi
	[ -n "${IACT_MARIADB_SOCKDIR:-}" ] && rm -rf "$IACT_MARIADB_SOCKDIR"
	return 0
}
