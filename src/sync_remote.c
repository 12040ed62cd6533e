/*-------------------------------------------------------------------------
 *
 * sync_remote.c
 *	  The PostgreSQL side of the MariaDB boundary: waiting for MariaDB
 *	  without blocking the backend (iact_my_wait, called by
 *	  src/mariadb_client.c for every wait of Connector/C's non-blocking
 *	  API), and the one reporter of MariaDB errors (a failed call, a reply
 *	  of the wrong shape).
 *
 * A wait sleeps on the process latch together with the connection's socket,
 * so a cancel (pg_cancel_backend, statement_timeout), a termination
 * (pg_terminate_backend, SIGTERM to the worker, a fast shutdown) or the
 * postmaster's death ends it at once, whatever MariaDB does: the error is
 * thrown from CHECK_FOR_INTERRUPTS() and the caller's PG_FINALLY closes the
 * connection (iact_my_close never waits).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "sync.h"
#include "sync_remote.h"

#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "storage/latch.h"
#include "utils/timestamp.h"

#include "mariadb_client.h"

/*
 * Wait until fd is ready for events (IACT_MY_WAIT_READ / _WRITE) or
 * timeout_ms passes (-1: none), checking for interrupts whenever the latch
 * is set.  Returns the events that happened, or IACT_MY_WAIT_TIMEOUT.
 * Throws (CHECK_FOR_INTERRUPTS) on a cancel, a timeout of the statement or
 * a termination; exits with the postmaster.  A negative fd (no socket yet)
 * waits for the latch and the timeout only.
 */
int
iact_my_wait(int fd, int events, long timeout_ms)
{
	TimestampTz deadline = 0;

	if (timeout_ms >= 0)
		deadline = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), timeout_ms);
	for (;;)
	{
		int			wl = WL_LATCH_SET | WL_EXIT_ON_PM_DEATH;
		long		cur = -1;
		int			rc;
		int			got = 0;

		CHECK_FOR_INTERRUPTS();
		if (fd >= 0 && (events & IACT_MY_WAIT_READ))
			wl |= WL_SOCKET_READABLE;
		if (fd >= 0 && (events & IACT_MY_WAIT_WRITE))
			wl |= WL_SOCKET_WRITEABLE;
		if (timeout_ms >= 0)
		{
			cur = TimestampDifferenceMilliseconds(GetCurrentTimestamp(), deadline);
			wl |= WL_TIMEOUT;
		}
		rc = WaitLatchOrSocket(MyLatch, wl, fd >= 0 ? fd : PGINVALID_SOCKET, cur,
							   PG_WAIT_EXTENSION);
		if (rc & WL_LATCH_SET)
		{
			ResetLatch(MyLatch);
			CHECK_FOR_INTERRUPTS();
		}
		if (rc & WL_SOCKET_READABLE)
			got |= IACT_MY_WAIT_READ;
		if (rc & WL_SOCKET_WRITEABLE)
			got |= IACT_MY_WAIT_WRITE;
		if (got != 0)
			return got;
		if (timeout_ms >= 0 && (rc & WL_TIMEOUT ||
								GetCurrentTimestamp() >= deadline))
			return IACT_MY_WAIT_TIMEOUT;
	}
}

/*
 * name as a MariaDB identifier: `name`, a ` inside doubled (palloc'd).  The
 * one quoting of identifiers sent to MariaDB.
 */
char *
iact_sync_my_ident(const char *name)
{
	StringInfoData s;

	initStringInfo(&s);
	appendStringInfoChar(&s, '`');
	for (; *name; name++)
	{
		if (*name == '`')
			appendStringInfoChar(&s, '`');
		appendStringInfoChar(&s, *name);
	}
	appendStringInfoChar(&s, '`');
	return s.data;
}

/*
 * value as a MariaDB string literal: '...', escaped by Connector/C in the
 * connection's character set (palloc'd).  The one quoting of values sent to
 * MariaDB.
 */
char *
iact_sync_my_literal(IactMyConn *conn, const char *value)
{
	size_t		len = strlen(value);
	char	   *out = palloc(len * 2 + 3);
	unsigned long n;

	out[0] = '\'';
	n = iact_my_escape(conn, out + 1, value, len);
	out[n + 1] = '\'';
	out[n + 2] = '\0';
	return out;
}

/*
 * The one reporter of a failed MariaDB call: throws sqlstate with "MariaDB
 * server "S": WHAT failed" (with what NULL, the failed connection's "could
 * not connect to MariaDB server "S""), MariaDB's error number and message in
 * the detail (never the password: Connector/C's messages name the account
 * only) and the hint, if any.  conn NULL reports the failure of the last
 * iact_my_init().  The caller's PG_FINALLY closes the connection.
 */
void
iact_sync_my_error(struct IactMyConn *conn, int sqlstate, const char *server,
				   const char *what, const char *hint)
{
	ereport(ERROR,
			(errcode(sqlstate),
			 what ? errmsg("MariaDB server \"%s\": %s failed", server, what)
			 : errmsg("could not connect to MariaDB server \"%s\"", server),
			 errdetail("MariaDB error %u: %s", iact_my_errno(conn), iact_my_error(conn)),
			 hint ? errhint("%s", hint) : 0));
}

/*
 * The one reporter of a MariaDB reply that does not have the shape asked
 * for (a column missing, a NULL where a value must be): throws
 * ERRCODE_FDW_INVALID_DATA_TYPE, "MariaDB server "S": unexpected reply to
 * WHAT", with the detail and the hint when given.
 */
void
iact_sync_my_bad_reply(const char *server, const char *what, const char *detail,
					   const char *hint)
{
	ereport(ERROR,
			(errcode(ERRCODE_FDW_INVALID_DATA_TYPE),
			 errmsg("MariaDB server \"%s\": unexpected reply to %s", server, what),
			 detail ? errdetail("%s", detail) : 0,
			 hint ? errhint("%s", hint) : 0));
}
