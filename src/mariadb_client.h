/*-------------------------------------------------------------------------
 *
 * mariadb_client.h
 *	  The MariaDB boundary: a small read-only client over Connector/C.
 *
 * Only src/mariadb_client.c includes mysql.h (its list_* names clash with
 * PostgreSQL's), so this header uses plain C types and must not include
 * postgres.h.  Functions return 0 on success and non-zero on failure; the
 * message is then in iact_my_error() (never containing the password).  The
 * caller turns failures into ereport()s.
 *
 * Read-only by construction: iact_my_exec() and iact_my_query() refuse any
 * statement that does not start with SELECT, SHOW, SET SESSION, SET ROLE (the
 * grants check inspects each role), START TRANSACTION READ ONLY or ROLLBACK;
 * multi-statements are never enabled.
 *
 *-------------------------------------------------------------------------
 */
#ifndef IACT_MARIADB_CLIENT_H
#define IACT_MARIADB_CLIENT_H

typedef struct IactMyConn IactMyConn;

typedef struct IactMyParams
{
	const char *host;			/* NULL: localhost */
	unsigned int port;			/* 0: default */
	const char *socket;			/* unix socket path, or NULL */
	const char *dbname;			/* default database, or NULL */
	const char *user;
	const char *password;
	unsigned int connect_timeout;	/* seconds */
	unsigned int read_timeout;
	unsigned int write_timeout;
	int			ssl_mode;		/* 0 off, 1 required, 2 verify server cert */
	const char *ssl_ca;
	const char *ssl_capath;
	const char *ssl_cert;
	const char *ssl_key;
	const char *ssl_cipher;
	const char *restricted_auth;	/* allowed client auth plugins, or NULL */
} IactMyParams;

/*
 * Waiting.  Every call below that may wait for MariaDB waits through
 * iact_my_wait(), implemented on the PostgreSQL side (src/sync_remote.c):
 * wait until fd is ready for the IACT_MY_WAIT_READ / _WRITE events asked, or
 * timeout_ms passes (-1: no timeout); return the events that happened
 * (IACT_MY_WAIT_TIMEOUT when the time ran out).  It may throw instead
 * (a cancel, statement_timeout, a shutdown): the interrupted call then never
 * returns, and iact_my_close() aborts what it had started.
 */
#define IACT_MY_WAIT_READ		1
#define IACT_MY_WAIT_WRITE		2
#define IACT_MY_WAIT_TIMEOUT	4
extern int	iact_my_wait(int fd, int events, long timeout_ms);

/*
 * A handle with its options set (no I/O); NULL on failure, with the message
 * in iact_my_error(NULL).  Then iact_my_connect() (0, or -1 with
 * iact_my_error()).  Once
 * iact_my_init() succeeded, iact_my_close() must be called on every path,
 * also when an error is thrown out of any call (PG_FINALLY): it never waits
 * and never throws.
 */
extern IactMyConn *iact_my_init(const IactMyParams *params);
extern int	iact_my_connect(IactMyConn *conn, const IactMyParams *params);
extern void iact_my_close(IactMyConn *conn);

/* the last error of this connection (NULL: of the last failed iact_my_init) */
extern const char *iact_my_error(IactMyConn *conn);
extern unsigned int iact_my_errno(IactMyConn *conn);

/* a statement without a result set (SET SESSION, START TRANSACTION, ROLLBACK) */
extern int	iact_my_exec(IactMyConn *conn, const char *sql);

/*
 * A query streamed row by row (unbuffered).  iact_my_fetch returns 1 with a
 * row, 0 at the true end of the result, -1 on an error (in the middle of the
 * result too: never mistaken for the end).  Values are valid until the next
 * fetch; a NULL value has values[i] == NULL.
 */
extern int	iact_my_query(IactMyConn *conn, const char *sql, unsigned int *ncols);
extern int	iact_my_fetch(IactMyConn *conn, char ***values, unsigned long **lengths);
extern void iact_my_query_end(IactMyConn *conn);

/* escape for use inside '...'; out must hold 2*len+1 bytes */
extern unsigned long iact_my_escape(IactMyConn *conn, char *out, const char *in,
									unsigned long len);

/* is this statement one the client may send (read-only guard) */
extern int	iact_my_statement_allowed(const char *sql);

#endif							/* IACT_MARIADB_CLIENT_H */
