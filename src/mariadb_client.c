/*-------------------------------------------------------------------------
 *
 * mariadb_client.c
 *	  The only file that includes mysql.h: a read-only, unbuffered MariaDB
 *	  client for the sync engine (see mariadb_client.h).
 *
 * It allocates with malloc (through Connector/C) and never calls ereport,
 * so it is safe to use across PostgreSQL transaction boundaries; the caller
 * must iact_my_close() on every path (the engine does it in PG_FINALLY).
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

#include "mariadb_client.h"

struct IactMyConn
{
	MYSQL	   *my;
	MYSQL_RES  *res;
	unsigned int ncols;
	char		err[512];
	unsigned int errnum;
};

static void
set_error(IactMyConn *conn, unsigned int errnum, const char *msg)
{
	conn->errnum = errnum;
	snprintf(conn->err, sizeof(conn->err), "%s", msg);
}

static void
take_error(IactMyConn *conn)
{
	set_error(conn, mysql_errno(conn->my), mysql_error(conn->my));
	if (conn->errnum == 0)
		set_error(conn, CR_UNKNOWN_ERROR, "unknown MariaDB client error");
}

int
iact_my_statement_allowed(const char *sql)
{
	static const char *const allowed[] = {
		"SELECT ", "SHOW ", "SET SESSION ", "START TRANSACTION READ ONLY", "ROLLBACK", NULL
	};
	int			i;

	for (i = 0; allowed[i] != NULL; i++)
		if (strncmp(sql, allowed[i], strlen(allowed[i])) == 0)
			return 1;		/* a ';' cannot start a second statement: no CLIENT_MULTI_STATEMENTS */
	return 0;
}

IactMyConn *
iact_my_connect(const IactMyParams *p, char *errbuf, unsigned long errlen,
				unsigned int *errnum)
{
	IactMyConn *conn;
	MYSQL	   *my;
	unsigned int proto;
	my_bool		yes = 1;

	conn = calloc(1, sizeof(IactMyConn));
	my = mysql_init(NULL);
	if (conn == NULL || my == NULL)
	{
		snprintf(errbuf, errlen, "out of memory");
		*errnum = CR_OUT_OF_MEMORY;
		free(conn);
		if (my)
			mysql_close(my);
		return NULL;
	}
	conn->my = my;

	/* no option file, no LOAD DATA LOCAL, no multi statements */
	mysql_optionsv(my, MYSQL_SET_CHARSET_NAME, "utf8mb4");
	mysql_optionsv(my, MYSQL_OPT_CONNECT_TIMEOUT, &p->connect_timeout);
	mysql_optionsv(my, MYSQL_OPT_READ_TIMEOUT, &p->read_timeout);
	mysql_optionsv(my, MYSQL_OPT_WRITE_TIMEOUT, &p->write_timeout);
	{
		my_bool		no = 0;

		mysql_optionsv(my, MYSQL_OPT_LOCAL_INFILE, &no);
		mysql_optionsv(my, MYSQL_OPT_RECONNECT, &no);
	}
	if (p->restricted_auth != NULL &&
		mysql_optionsv(my, MARIADB_OPT_RESTRICTED_AUTH, p->restricted_auth) != 0)
	{
		snprintf(errbuf, errlen, "could not restrict the authentication plugins");
		*errnum = CR_UNKNOWN_ERROR;
		mysql_close(my);
		free(conn);
		return NULL;
	}
	if (p->socket != NULL && p->host == NULL)
	{
		proto = MYSQL_PROTOCOL_SOCKET;
		mysql_optionsv(my, MYSQL_OPT_PROTOCOL, &proto);
	}
	else
	{
		proto = MYSQL_PROTOCOL_TCP;
		mysql_optionsv(my, MYSQL_OPT_PROTOCOL, &proto);
	}
	if (p->ssl_mode > 0)
	{
		mysql_ssl_set(my, p->ssl_key, p->ssl_cert, p->ssl_ca, p->ssl_capath, p->ssl_cipher);
		mysql_optionsv(my, MYSQL_OPT_SSL_ENFORCE, &yes);
		if (p->ssl_mode >= 2)
			mysql_optionsv(my, MYSQL_OPT_SSL_VERIFY_SERVER_CERT, &yes);
		else
		{
			my_bool		no = 0;

			mysql_optionsv(my, MYSQL_OPT_SSL_VERIFY_SERVER_CERT, &no);
		}
	}

	if (mysql_real_connect(my, p->host, p->user, p->password, p->dbname, p->port,
						   p->socket, 0) == NULL)
	{
		snprintf(errbuf, errlen, "%s", mysql_error(my));
		*errnum = mysql_errno(my);
		mysql_close(my);
		free(conn);
		return NULL;
	}
	return conn;
}

void
iact_my_close(IactMyConn *conn)
{
	if (conn == NULL)
		return;
	if (conn->res)
		mysql_free_result(conn->res);
	mysql_close(conn->my);
	free(conn);
}

const char *
iact_my_error(IactMyConn *conn)
{
	return conn->err;
}

unsigned int
iact_my_errno(IactMyConn *conn)
{
	return conn->errnum;
}

/* the guard, then send one statement (its result is not read yet) */
static int
send_statement(IactMyConn *conn, const char *sql)
{
	if (!iact_my_statement_allowed(sql))
	{
		set_error(conn, CR_UNKNOWN_ERROR, "statement refused by iact's read-only guard");
		return -1;
	}
	if (conn->res != NULL)
	{
		set_error(conn, CR_COMMANDS_OUT_OF_SYNC, "a result is still open");
		return -1;
	}
	if (mysql_real_query(conn->my, sql, strlen(sql)) != 0)
	{
		take_error(conn);
		return -1;
	}
	return 0;
}

int
iact_my_exec(IactMyConn *conn, const char *sql)
{
	MYSQL_RES  *res;

	if (send_statement(conn, sql) != 0)
		return -1;
	res = mysql_store_result(conn->my);
	if (res != NULL)
		mysql_free_result(res);
	else if (mysql_errno(conn->my) != 0)
	{
		take_error(conn);
		return -1;
	}
	return 0;
}

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

int
iact_my_fetch(IactMyConn *conn, char ***values, unsigned long **lengths)
{
	MYSQL_ROW	row;

	if (conn->res == NULL)
	{
		set_error(conn, CR_COMMANDS_OUT_OF_SYNC, "no result is open");
		return -1;
	}
	row = mysql_fetch_row(conn->res);
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

void
iact_my_query_end(IactMyConn *conn)
{
	if (conn->res != NULL)
	{
		mysql_free_result(conn->res);	/* drains what is left, if anything */
		conn->res = NULL;
	}
}

int
iact_my_column_is_bit(IactMyConn *conn, unsigned int i)
{
	MYSQL_FIELD *f;

	if (conn->res == NULL || i >= conn->ncols)
		return 0;
	f = mysql_fetch_field_direct(conn->res, i);
	return f != NULL && f->type == MYSQL_TYPE_BIT;
}

unsigned long
iact_my_escape(IactMyConn *conn, char *out, const char *in, unsigned long len)
{
	return mysql_real_escape_string(conn->my, out, in, len);
}
