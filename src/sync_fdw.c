/*-------------------------------------------------------------------------
 *
 * sync_fdw.c
 *	  Connection settings for the sync, PostgreSQL's way: the option
 *	  validator of the foreign-data wrapper iact_mariadb, and opening a
 *	  read-only MariaDB session from a foreign server + user mapping
 *	  (timeouts, TLS, utf8mb4, time zone '+00:00', the grants check, and the
 *	  READ ONLY consistent-snapshot transaction).
 *
 * The password is read from the user mapping and handed to Connector/C;
 * it never appears in an error, a log line or a view.
 *
 *-------------------------------------------------------------------------
 */
#include "sync.h"

#include "access/reloptions.h"
#include "catalog/pg_foreign_server.h"
#include "catalog/pg_user_mapping.h"
#include "commands/defrem.h"
#include "foreign/foreign.h"
#include "lib/stringinfo.h"
#include "utils/builtins.h"
#include "miscadmin.h"
#include "utils/guc.h"
#include "pgtime.h"

#include "mariadb_client.h"

PG_FUNCTION_INFO_V1(iact_mariadb_fdw_validator);

typedef struct SyncOption
{
	const char *name;
	Oid			context;
	int			kind;			/* 0 text, 1 port, 2 timeout, 3 ssl_mode, 4 time zone */
} SyncOption;

static const SyncOption sync_options[] = {
	{"host", ForeignServerRelationId, 0},
	{"port", ForeignServerRelationId, 1},
	{"socket", ForeignServerRelationId, 0},
	{"dbname", ForeignServerRelationId, 0},
	{"connect_timeout", ForeignServerRelationId, 2},
	{"read_timeout", ForeignServerRelationId, 2},
	{"write_timeout", ForeignServerRelationId, 2},
	{"ssl_mode", ForeignServerRelationId, 3},
	{"ssl_ca", ForeignServerRelationId, 0},
	{"ssl_capath", ForeignServerRelationId, 0},
	{"ssl_cert", ForeignServerRelationId, 0},
	{"ssl_key", ForeignServerRelationId, 0},
	{"ssl_cipher", ForeignServerRelationId, 0},
	{"source_time_zone", ForeignServerRelationId, 4},
	{"user", UserMappingRelationId, 0},
	{"password", UserMappingRelationId, 0},
	{NULL, InvalidOid, 0}
};

static int
ssl_mode_value(const char *v)
{
	if (strcmp(v, "disable") == 0)
		return 0;
	if (strcmp(v, "require") == 0)
		return 1;
	if (strcmp(v, "verify") == 0)
		return 2;
	return -1;
}

static int
parse_bounded_int(const char *name, const char *v, int min, int max)
{
	char	   *end;
	long		n;

	errno = 0;
	n = strtol(v, &end, 10);
	if (errno != 0 || end == v || *end != '\0' || n < min || n > max)
		ereport(ERROR,
				(errcode(ERRCODE_FDW_INVALID_ATTRIBUTE_VALUE),
				 errmsg("invalid value for option \"%s\": \"%s\"", name, v),
				 errhint("It must be an integer between %d and %d.", min, max)));
	return (int) n;
}

/*
 * Validator of the iact_mariadb wrapper: only known options, each in its
 * context (server or user mapping), with well-formed values.
 */
Datum
iact_mariadb_fdw_validator(PG_FUNCTION_ARGS)
{
	List	   *options = untransformRelOptions(PG_GETARG_DATUM(0));
	Oid			catalog = PG_GETARG_OID(1);
	ListCell   *lc;

	foreach(lc, options)
	{
		DefElem    *def = (DefElem *) lfirst(lc);
		const SyncOption *opt;
		const char *value = defGetString(def);

		for (opt = sync_options; opt->name; opt++)
			if (opt->context == catalog && strcmp(opt->name, def->defname) == 0)
				break;
		if (opt->name == NULL)
		{
			StringInfoData valid;

			initStringInfo(&valid);
			for (opt = sync_options; opt->name; opt++)
				if (opt->context == catalog)
					appendStringInfo(&valid, "%s%s", valid.len ? ", " : "", opt->name);
			ereport(ERROR,
					(errcode(ERRCODE_FDW_INVALID_OPTION_NAME),
					 errmsg("invalid option \"%s\"", def->defname),
					 valid.len ? errhint("Valid options in this context are: %s.", valid.data)
					 : errhint("There are no valid options in this context.")));
		}
		switch (opt->kind)
		{
			case 1:
				parse_bounded_int(opt->name, value, 1, 65535);
				break;
			case 2:
				parse_bounded_int(opt->name, value, 1, 86400);
				break;
			case 3:
				if (ssl_mode_value(value) < 0)
					ereport(ERROR,
							(errcode(ERRCODE_FDW_INVALID_ATTRIBUTE_VALUE),
							 errmsg("invalid value for option \"ssl_mode\": \"%s\"", value),
							 errhint("Valid values are: disable, require, verify.")));
				break;
			case 4:
				if (value[0] == '\0' || pg_tzset(value) == NULL)
					ereport(ERROR,
							(errcode(ERRCODE_FDW_INVALID_ATTRIBUTE_VALUE),
							 errmsg("invalid value for option \"source_time_zone\": \"%s\"", value),
							 errhint("Use a time zone name PostgreSQL knows (pg_timezone_names), e.g. 'Europe/Madrid'.")));
				break;
			default:
				if (strcmp(opt->name, "password") != 0 && value[0] == '\0')
					ereport(ERROR,
							(errcode(ERRCODE_FDW_INVALID_ATTRIBUTE_VALUE),
							 errmsg("option \"%s\" must not be empty", opt->name)));
				break;
		}
	}
	PG_RETURN_VOID();
}

/* privileges a read-only account may hold */
static bool
privilege_is_read_only(const char *p)
{
	static const char *const ok[] = {
		"SELECT", "SHOW VIEW", "USAGE", "PROCESS", "SHOW DATABASES", "REPLICATION CLIENT",
		"BINLOG MONITOR", "SLAVE MONITOR", "REPLICA MONITOR", NULL
	};
	int			i;

	for (i = 0; ok[i]; i++)
		if (strcmp(p, ok[i]) == 0)
			return true;
	return false;
}

/*
 * Check one SHOW GRANTS line; append what could write to *bad.  Only the
 * privilege list and the object are ever reported (the line itself may hold
 * a password hash).
 */
static void
check_grant_line(const char *line, StringInfo bad)
{
	const char *on;
	const char *to;
	char	   *privs;
	char	   *tok;
	char	   *save;
	char	   *object;

	if (strncmp(line, "SET DEFAULT ROLE", 16) == 0)
		return;
	if (strncmp(line, "GRANT ", 6) != 0)
	{
		appendStringInfo(bad, "%san unrecognised grant", bad->len ? "; " : "");
		return;
	}
	on = strstr(line, " ON ");
	to = on ? strstr(on, " TO ") : NULL;
	if (on == NULL || to == NULL)
	{
		appendStringInfo(bad, "%sa role (roles are not inspected)", bad->len ? "; " : "");
		return;
	}
	object = pnstrdup(on + 4, to - on - 4);
	privs = pnstrdup(line + 6, on - line - 6);
	/* drop column lists: SELECT (a, b) */
	{
		char	   *r = privs,
				   *w = privs;
		int			depth = 0;

		for (; *r; r++)
		{
			if (*r == '(')
				depth++;
			else if (*r == ')')
				depth--;
			else if (depth == 0)
				*w++ = *r;
		}
		*w = '\0';
	}
	for (tok = strtok_r(privs, ",", &save); tok; tok = strtok_r(NULL, ",", &save))
	{
		char	   *p = tok;
		char	   *e;

		while (*p == ' ')
			p++;
		e = p + strlen(p);
		while (e > p && e[-1] == ' ')
			*--e = '\0';
		if (!privilege_is_read_only(p))
			appendStringInfo(bad, "%s%s ON %s", bad->len ? "; " : "", p, object);
	}
	if (strstr(to, " WITH GRANT OPTION") != NULL)
		appendStringInfo(bad, "%sGRANT OPTION ON %s", bad->len ? "; " : "", object);
}

static void
my_fail(IactMyConn *conn, const char *what, const char *server)
{
	char	   *msg = pstrdup(iact_my_error(conn));
	unsigned int num = iact_my_errno(conn);

	iact_my_close(conn);
	ereport(ERROR,
			(errcode(ERRCODE_SQLCLIENT_UNABLE_TO_ESTABLISH_SQLCONNECTION),
			 errmsg("MariaDB server \"%s\": %s failed", server, what),
			 errdetail("MariaDB error %u: %s", num, msg)));
}

/*
 * Open a session on the foreign server for the current user, refuse an
 * account that can write (unless iact.sync_allow_write_account), and start
 * the READ ONLY consistent-snapshot transaction.  *dbname gets the server's
 * default database (NULL if none).
 */
IactMyConn *
iact_sync_connect(Oid serverid, char **dbname)
{
	ForeignServer *server = GetForeignServer(serverid);
	UserMapping *um = GetUserMapping(GetUserId(), serverid);
	IactMyParams p;
	ListCell   *lc;
	IactMyConn *conn;
	char		errbuf[512];
	unsigned int errnum = 0;
	unsigned int ncols;
	char	  **row;
	unsigned long *lens;
	int			rc;
	StringInfoData bad;
	char		sql[256];

	memset(&p, 0, sizeof(p));
	p.connect_timeout = 10;
	p.read_timeout = 300;
	p.write_timeout = 300;
	foreach(lc, server->options)
	{
		DefElem    *def = (DefElem *) lfirst(lc);
		char	   *v = defGetString(def);

		if (strcmp(def->defname, "host") == 0)
			p.host = v;
		else if (strcmp(def->defname, "port") == 0)
			p.port = parse_bounded_int("port", v, 1, 65535);
		else if (strcmp(def->defname, "socket") == 0)
			p.socket = v;
		else if (strcmp(def->defname, "dbname") == 0)
			p.dbname = v;
		else if (strcmp(def->defname, "connect_timeout") == 0)
			p.connect_timeout = parse_bounded_int("connect_timeout", v, 1, 86400);
		else if (strcmp(def->defname, "read_timeout") == 0)
			p.read_timeout = parse_bounded_int("read_timeout", v, 1, 86400);
		else if (strcmp(def->defname, "write_timeout") == 0)
			p.write_timeout = parse_bounded_int("write_timeout", v, 1, 86400);
		else if (strcmp(def->defname, "ssl_mode") == 0)
			p.ssl_mode = ssl_mode_value(v);
		else if (strcmp(def->defname, "ssl_ca") == 0)
			p.ssl_ca = v;
		else if (strcmp(def->defname, "ssl_capath") == 0)
			p.ssl_capath = v;
		else if (strcmp(def->defname, "ssl_cert") == 0)
			p.ssl_cert = v;
		else if (strcmp(def->defname, "ssl_key") == 0)
			p.ssl_key = v;
		else if (strcmp(def->defname, "ssl_cipher") == 0)
			p.ssl_cipher = v;
	}
	foreach(lc, um->options)
	{
		DefElem    *def = (DefElem *) lfirst(lc);

		if (strcmp(def->defname, "user") == 0)
			p.user = defGetString(def);
		else if (strcmp(def->defname, "password") == 0)
			p.password = defGetString(def);
	}
	if (p.user == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_FDW_OPTION_NAME_NOT_FOUND),
				 errmsg("user mapping for server \"%s\" has no \"user\" option",
						server->servername),
				 errhint("ALTER USER MAPPING FOR ... SERVER %s OPTIONS (ADD user '...', ADD password '...').",
						 quote_identifier(server->servername))));
	if (!superuser())
	{
		/*
		 * Like postgres_fdw: a non-superuser must authenticate with a
		 * password of its own, never with the server's OS identity (unix_socket
		 * or GSSAPI authentication trust the postgres OS user), so the unix
		 * socket is refused and only password plugins are allowed.
		 */
		if (p.password == NULL || p.password[0] == '\0')
			ereport(ERROR,
					(errcode(ERRCODE_S_R_E_PROHIBITED_SQL_STATEMENT_ATTEMPTED),
					 errmsg("password is required"),
					 errdetail("Non-superusers must provide a password in the user mapping for server \"%s\".",
							   server->servername)));
		if (p.socket != NULL && p.host == NULL)
			ereport(ERROR,
					(errcode(ERRCODE_S_R_E_PROHIBITED_SQL_STATEMENT_ATTEMPTED),
					 errmsg("non-superusers cannot connect to MariaDB server \"%s\" through a unix socket",
							server->servername),
					 errdetail("MariaDB may authenticate a unix socket connection by the operating system user of the PostgreSQL server."),
					 errhint("Give the server a \"host\" option (TCP), or run the sync as a superuser.")));
		p.restricted_auth = "mysql_native_password,client_ed25519";
	}
	*dbname = p.dbname ? pstrdup(p.dbname) : NULL;

	conn = iact_my_connect(&p, errbuf, sizeof(errbuf), &errnum);
	if (conn == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_SQLCLIENT_UNABLE_TO_ESTABLISH_SQLCONNECTION),
				 errmsg("could not connect to MariaDB server \"%s\"", server->servername),
				 errdetail("MariaDB error %u: %s", errnum, errbuf)));

	/* the grants: an account that can write is refused */
	if (iact_my_query(conn, "SHOW GRANTS", &ncols) != 0)
		my_fail(conn, "SHOW GRANTS", server->servername);
	initStringInfo(&bad);
	while ((rc = iact_my_fetch(conn, &row, &lens)) == 1)
		if (row[0] != NULL)
			check_grant_line(row[0], &bad);
	iact_my_query_end(conn);
	if (rc < 0)
		my_fail(conn, "SHOW GRANTS", server->servername);
	if (bad.len > 0 && !iact_sync_allow_write_account)
	{
		iact_my_close(conn);
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("MariaDB account \"%s\" of server \"%s\" can write to the source",
						p.user, server->servername),
				 errdetail("Its grants include: %s.", bad.data),
				 errhint("Use an account with SELECT (and SHOW VIEW) only; a superuser may set iact.sync_allow_write_account = on to accept it anyway.")));
	}

	snprintf(sql, sizeof(sql),
			 "SET SESSION time_zone = '+00:00', SESSION net_write_timeout = %u, "
			 "SESSION net_read_timeout = %u, SESSION sql_mode = 'NO_ENGINE_SUBSTITUTION'",
			 p.read_timeout, p.write_timeout);
	if (iact_my_exec(conn, sql) != 0)
		my_fail(conn, "session set-up", server->servername);
	if (iact_my_exec(conn, "SET SESSION TRANSACTION READ ONLY") != 0 ||
		iact_my_exec(conn, "START TRANSACTION READ ONLY, WITH CONSISTENT SNAPSHOT") != 0)
		my_fail(conn, "START TRANSACTION READ ONLY", server->servername);
	return conn;
}

/*
 * The server's source_time_zone option (the zone the source's datetime
 * values are written in), or NULL when it has none.
 */
const char *
iact_sync_server_time_zone(ForeignServer *server)
{
	ListCell   *lc;

	foreach(lc, server->options)
	{
		DefElem    *def = (DefElem *) lfirst(lc);

		if (strcmp(def->defname, "source_time_zone") == 0)
			return defGetString(def);
	}
	return NULL;
}
