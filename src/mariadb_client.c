/*-------------------------------------------------------------------------
 *
 * mariadb_client.c
 *	  The only file that includes mysql.h: a read-only, unbuffered MariaDB
 *	  client for the sync engine (see mariadb_client.h).
 *
 * It allocates with malloc (through Connector/C) and never calls ereport
 * itself, so it is safe to use across PostgreSQL transaction boundaries; the
 * caller must iact_my_close() on every path (PG_FINALLY / PG_CATCH).
 *
 * Every call that may wait on the network uses Connector/C's non-blocking
 * API (MYSQL_OPT_NONBLOCK, the _start()/_cont() pairs) and waits through
 * iact_my_wait(), which the PostgreSQL side implements with the process
 * latch and CHECK_FOR_INTERRUPTS (src/sync_remote.c): a cancel, a timeout or
 * a shutdown ends the wait by throwing an error out of these functions.  The
 * operation is then left unfinished (conn->pending) and iact_my_close()
 * finishes it without waiting (abort_pending).
 *
 *-------------------------------------------------------------------------
 */
#include <mysql.h>
#include <errmsg.h>
#include <string.h>
#include <strings.h>
#include <stdlib.h>
#include <stdio.h>
#include <ctype.h>
#include <sys/socket.h>
#include <unistd.h>

#include "mariadb_client.h"

/* the operation a connection has started and not finished (see abort_pending) */
typedef enum MyPending
{
	MY_NONE = 0,
	MY_CONNECT,
	MY_QUERY,
	MY_STORE,
	MY_FETCH,
	MY_FREE
} MyPending;

struct IactMyConn
{
	MYSQL	   *my;
	MYSQL_RES  *res;
	unsigned int ncols;
	char		err[512];
	unsigned int errnum;
	MyPending	pending;		/* set while an operation may wait (and be interrupted) */
	int			status;			/* the last wait status Connector/C returned for it */
	int			lost;			/* abort_pending could not finish it: never touch my again */
};

static void
set_error(IactMyConn *conn, unsigned int errnum, const char *msg)
{
	conn->errnum = errnum;
	snprintf(conn->err, sizeof(conn->err), "%s", msg);
}

/* the failure of the last iact_my_init(), which has no handle to keep it in */
static IactMyConn init_error;

/* the error Connector/C reports for conn (never errno 0) */
static void
take_error(IactMyConn *conn)
{
	set_error(conn, mysql_errno(conn->my), mysql_error(conn->my));
	if (conn->errnum == 0)
		set_error(conn, CR_UNKNOWN_ERROR, "unknown MariaDB client error");
}

/*
 * The read-only guard: 1 when sql starts with one of the statements the
 * client may send (see mariadb_client.h), else 0.
 */
int
iact_my_statement_allowed(const char *sql)
{
	static const char *const allowed[] = {
		"SELECT ", "SHOW ", "SET SESSION ", "SET ROLE ", "START TRANSACTION READ ONLY", "ROLLBACK",
		NULL
	};
	int			i;

	for (i = 0; allowed[i] != NULL; i++)
		if (strncmp(sql, allowed[i], strlen(allowed[i])) == 0)
			return 1;		/* a ';' cannot start a second statement: no CLIENT_MULTI_STATEMENTS */
	return 0;
}

/*
 * Wait for what Connector/C asked (a MYSQL_WAIT_* mask) through the caller's
 * iact_my_wait(), and return what happened, as a MYSQL_WAIT_* mask for the
 * _cont() call.  Never returns when iact_my_wait() throws (an interrupt):
 * conn->pending then tells iact_my_close() what to finish.
 */
static int
wait_for(IactMyConn *conn, int status)
{
	int			events = 0;
	long		timeout_ms = -1;
	int			fd = (int) mysql_get_socket(conn->my);
	int			got;
	int			result = 0;

	conn->status = status;
	if (status & (MYSQL_WAIT_READ | MYSQL_WAIT_EXCEPT))
		events |= IACT_MY_WAIT_READ;
	if (status & MYSQL_WAIT_WRITE)
		events |= IACT_MY_WAIT_WRITE;
	if (status & MYSQL_WAIT_TIMEOUT)
		timeout_ms = (long) mysql_get_timeout_value_ms(conn->my);
	got = iact_my_wait(fd, events, timeout_ms);
	if (got & IACT_MY_WAIT_READ)
		result |= status & (MYSQL_WAIT_READ | MYSQL_WAIT_EXCEPT);
	if (got & IACT_MY_WAIT_WRITE)
		result |= MYSQL_WAIT_WRITE;
	if (got & IACT_MY_WAIT_TIMEOUT)
		result |= MYSQL_WAIT_TIMEOUT;
	return result;
}

/*
 * An operation was left unfinished (interrupted while it waited), or a
 * result was not read to its end: make every further read and write of the
 * connection fail at once (mariadb_cancel shuts the socket down), then let
 * the operation finish with that error -- Connector/C requires a started
 * operation to be finished before any other call, mysql_close() included.
 * Never waits.  If the operation still wants to wait after a few tries (it
 * should not), the handle is given up (conn->lost) rather than risked, and
 * its socket closed.
 */
static void
abort_pending(IactMyConn *conn)
{
	int			tries;
	int			status = conn->status ? conn->status : (MYSQL_WAIT_READ | MYSQL_WAIT_WRITE);

	if (mariadb_cancel(conn->my) != 0)
	{
		int			fd = (int) mysql_get_socket(conn->my);

		if (fd >= 0)
			shutdown(fd, SHUT_RDWR);
	}
	for (tries = 0; conn->pending != MY_NONE && tries < 16; tries++)
	{
		int			st = status | MYSQL_WAIT_READ | MYSQL_WAIT_WRITE;

		switch (conn->pending)
		{
			case MY_CONNECT:
				{
					MYSQL	   *ret;

					status = mysql_real_connect_cont(&ret, conn->my, st);
					break;
				}
			case MY_QUERY:
				{
					int			ret;

					status = mysql_real_query_cont(&ret, conn->my, st);
					break;
				}
			case MY_STORE:
				{
					MYSQL_RES  *ret;

					status = mysql_store_result_cont(&ret, conn->my, st);
					if (status == 0 && ret != NULL)
						mysql_free_result(ret);
					break;
				}
			case MY_FETCH:
				{
					MYSQL_ROW	ret;

					status = mysql_fetch_row_cont(&ret, conn->res, st);
					break;
				}
			case MY_FREE:
				status = mysql_free_result_cont(conn->res, st);
				if (status == 0)
					conn->res = NULL;
				break;
			case MY_NONE:
				break;
		}
		if (status == 0)
			conn->pending = MY_NONE;
	}
	if (conn->pending != MY_NONE)
	{
		/* the handle is given up, not its socket: MariaDB sees the session end */
		int			fd = (int) mysql_get_socket(conn->my);

		if (fd >= 0)
			close(fd);
		conn->lost = 1;
	}
}

/*
 * Allocate a connection handle and set its options (no I/O, cannot block).
 * Returns NULL on failure, with the message in init_error (read through
 * iact_my_error(NULL)).  A handle returned must be given to iact_my_close()
 * whatever happens next.
 */
IactMyConn *
iact_my_init(const IactMyParams *p)
{
	IactMyConn *conn;
	MYSQL	   *my;
	unsigned int proto;
	my_bool		yes = 1;
	my_bool		no = 0;

	conn = calloc(1, sizeof(IactMyConn));
	my = mysql_init(NULL);
	if (conn == NULL || my == NULL)
	{
		set_error(&init_error, CR_OUT_OF_MEMORY, "out of memory");
		free(conn);
		if (my)
			mysql_close(my);
		return NULL;
	}
	conn->my = my;

	/* waits go through iact_my_wait(): interruptible (see mariadb_client.h) */
	if (mysql_optionsv(my, MYSQL_OPT_NONBLOCK, 0) != 0)
	{
		set_error(&init_error, CR_UNKNOWN_ERROR, "could not enable the non-blocking client API");
		mysql_close(my);
		free(conn);
		return NULL;
	}
	/* no option file, no LOAD DATA LOCAL, no multi statements */
	mysql_optionsv(my, MYSQL_SET_CHARSET_NAME, "utf8mb4");
	mysql_optionsv(my, MYSQL_OPT_CONNECT_TIMEOUT, &p->connect_timeout);
	mysql_optionsv(my, MYSQL_OPT_READ_TIMEOUT, &p->read_timeout);
	mysql_optionsv(my, MYSQL_OPT_WRITE_TIMEOUT, &p->write_timeout);
	mysql_optionsv(my, MYSQL_OPT_LOCAL_INFILE, &no);
	mysql_optionsv(my, MYSQL_OPT_RECONNECT, &no);
	if (p->restricted_auth != NULL &&
		mysql_optionsv(my, MARIADB_OPT_RESTRICTED_AUTH, p->restricted_auth) != 0)
	{
		set_error(&init_error, CR_UNKNOWN_ERROR, "could not restrict the authentication plugins");
		mysql_close(my);
		free(conn);
		return NULL;
	}
	proto = (p->socket != NULL && p->host == NULL) ? MYSQL_PROTOCOL_SOCKET : MYSQL_PROTOCOL_TCP;
	mysql_optionsv(my, MYSQL_OPT_PROTOCOL, &proto);
	if (p->ssl_mode > 0)
	{
		mysql_ssl_set(my, p->ssl_key, p->ssl_cert, p->ssl_ca, p->ssl_capath, p->ssl_cipher);
		mysql_optionsv(my, MYSQL_OPT_SSL_ENFORCE, &yes);
		mysql_optionsv(my, MYSQL_OPT_SSL_VERIFY_SERVER_CERT, p->ssl_mode >= 2 ? &yes : &no);
	}
	return conn;
}

/*
 * Connect the handle (interruptible: the waits go through iact_my_wait()).
 * Returns 0, or -1 with the error in iact_my_error().  p's strings must stay
 * valid until it returns.
 */
int
iact_my_connect(IactMyConn *conn, const IactMyParams *p)
{
	MYSQL	   *ret = NULL;
	int			status;

	conn->pending = MY_CONNECT;
	status = mysql_real_connect_start(&ret, conn->my, p->host, p->user, p->password,
									  p->dbname, p->port, p->socket, 0);
	while (status != 0)
		status = mysql_real_connect_cont(&ret, conn->my, wait_for(conn, status));
	conn->pending = MY_NONE;
	if (ret == NULL)
	{
		take_error(conn);
		return -1;
	}
	return 0;
}

/*
 * Close the connection and free the handle (NULL is fine).  Never waits and
 * never throws, so it is safe in PG_FINALLY and during error recovery: an
 * unfinished operation or result is aborted first (abort_pending); an idle
 * connection says goodbye (COM_QUIT, a few bytes into an empty socket
 * buffer) and rolls back on the server.
 */
void
iact_my_close(IactMyConn *conn)
{
	if (conn == NULL)
		return;
	if (conn->pending != MY_NONE || conn->res != NULL)
		abort_pending(conn);
	if (!conn->lost)
	{
		if (conn->res)
			mysql_free_result(conn->res);	/* nothing left to read: the socket is shut */
		mysql_close(conn->my);
	}
	free(conn);
}

/* the connection's last error message (NULL: the last iact_my_init failure) */
const char *
iact_my_error(IactMyConn *conn)
{
	return conn ? conn->err : init_error.err;
}

/* the connection's last error number (NULL: the last iact_my_init failure) */
unsigned int
iact_my_errno(IactMyConn *conn)
{
	return conn ? conn->errnum : init_error.errnum;
}

/*
 * The guard, then send one statement and read its first answer (an OK packet
 * or a result set's metadata), interruptibly.  Returns 0 or -1 (error set).
 */
static int
send_statement(IactMyConn *conn, const char *sql)
{
	int			ret = 0;
	int			status;

	if (!iact_my_statement_allowed(sql))
	{
		set_error(conn, CR_UNKNOWN_ERROR, "statement refused by iact's read-only guard");
		return -1;
	}
	if (conn->res != NULL || conn->pending != MY_NONE)
	{
		set_error(conn, CR_COMMANDS_OUT_OF_SYNC, "a result is still open");
		return -1;
	}
	conn->pending = MY_QUERY;
	status = mysql_real_query_start(&ret, conn->my, sql, strlen(sql));
	while (status != 0)
		status = mysql_real_query_cont(&ret, conn->my, wait_for(conn, status));
	conn->pending = MY_NONE;
	if (ret != 0)
	{
		take_error(conn);
		return -1;
	}
	return 0;
}

/*
 * A statement without a result set (SET SESSION, START TRANSACTION,
 * ROLLBACK); a result set, if any, is read and dropped.  0 or -1.
 */
int
iact_my_exec(IactMyConn *conn, const char *sql)
{
	MYSQL_RES  *res = NULL;
	int			status;

	if (send_statement(conn, sql) != 0)
		return -1;
	conn->pending = MY_STORE;
	status = mysql_store_result_start(&res, conn->my);
	while (status != 0)
		status = mysql_store_result_cont(&res, conn->my, wait_for(conn, status));
	conn->pending = MY_NONE;
	if (res != NULL)
		mysql_free_result(res);	/* stored: no I/O */
	else if (mysql_errno(conn->my) != 0)
	{
		take_error(conn);
		return -1;
	}
	return 0;
}

/*
 * Send a query whose rows are then streamed by iact_my_fetch (unbuffered:
 * mysql_use_result reads nothing itself).  0 or -1; *ncols gets the width.
 */
int
iact_my_query(IactMyConn *conn, const char *sql, unsigned int *ncols)
{
	if (send_statement(conn, sql) != 0)
		return -1;
	conn->res = mysql_use_result(conn->my);
	if (conn->res == NULL)
	{
		take_error(conn);
		return -1;
	}
	conn->ncols = mysql_num_fields(conn->res);
	*ncols = conn->ncols;
	return 0;
}

/*
 * The next row of the open query (see mariadb_client.h), waiting
 * interruptibly when the network buffer is empty.
 */
int
iact_my_fetch(IactMyConn *conn, char ***values, unsigned long **lengths)
{
	MYSQL_ROW	row = NULL;
	int			status;

	if (conn->res == NULL)
	{
		set_error(conn, CR_COMMANDS_OUT_OF_SYNC, "no result is open");
		return -1;
	}
	conn->pending = MY_FETCH;
	status = mysql_fetch_row_start(&row, conn->res);
	while (status != 0)
		status = mysql_fetch_row_cont(&row, conn->res, wait_for(conn, status));
	conn->pending = MY_NONE;
	if (row == NULL)
	{
		/* the end of the data, or an error: only errno tells them apart */
		if (mysql_errno(conn->my) != 0)
		{
			take_error(conn);
			return -1;
		}
		return 0;
	}
	*values = row;
	*lengths = mysql_fetch_lengths(conn->res);
	if (*lengths == NULL)
	{
		set_error(conn, CR_UNKNOWN_ERROR, "no lengths for a fetched row");
		return -1;
	}
	return 1;
}

/*
 * End the open query: what is left of the result is read and dropped
 * (interruptibly; nothing is left after the last row was fetched).
 */
void
iact_my_query_end(IactMyConn *conn)
{
	int			status;

	if (conn->res == NULL || conn->pending != MY_NONE)
		return;
	conn->pending = MY_FREE;
	status = mysql_free_result_start(conn->res);
	while (status != 0)
		status = mysql_free_result_cont(conn->res, wait_for(conn, status));
	conn->pending = MY_NONE;
	conn->res = NULL;
}

/* mysql_real_escape_string in the connection's character set (no I/O) */
unsigned long
iact_my_escape(IactMyConn *conn, char *out, const char *in, unsigned long len)
{
	return mysql_real_escape_string(conn->my, out, in, len);
}
