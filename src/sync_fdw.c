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
				/* as SET TimeZone reads it (the run computes with it): no leap seconds */
				if (value[0] == '\0' || pg_tzset(value) == NULL || !pg_tz_acceptable(pg_tzset(value)))
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

/* the connection parameters from the server's and the user mapping's options */
static void
read_params(ForeignServer *server, UserMapping *um, IactMyParams *p)
{
	ListCell   *lc;

	memset(p, 0, sizeof(*p));
	p->connect_timeout = 10;
	p->read_timeout = 300;
	p->write_timeout = 300;
	foreach(lc, server->options)
	{
		DefElem    *def = (DefElem *) lfirst(lc);
		char	   *v = defGetString(def);

		if (strcmp(def->defname, "host") == 0)
			p->host = v;
		else if (strcmp(def->defname, "port") == 0)
			p->port = parse_bounded_int("port", v, 1, 65535);
		else if (strcmp(def->defname, "socket") == 0)
			p->socket = v;
		else if (strcmp(def->defname, "dbname") == 0)
			p->dbname = v;
		else if (strcmp(def->defname, "connect_timeout") == 0)
			p->connect_timeout = parse_bounded_int("connect_timeout", v, 1, 86400);
		else if (strcmp(def->defname, "read_timeout") == 0)
			p->read_timeout = parse_bounded_int("read_timeout", v, 1, 86400);
		else if (strcmp(def->defname, "write_timeout") == 0)
			p->write_timeout = parse_bounded_int("write_timeout", v, 1, 86400);
		else if (strcmp(def->defname, "ssl_mode") == 0)
			p->ssl_mode = ssl_mode_value(v);
		else if (strcmp(def->defname, "ssl_ca") == 0)
			p->ssl_ca = v;
		else if (strcmp(def->defname, "ssl_capath") == 0)
			p->ssl_capath = v;
		else if (strcmp(def->defname, "ssl_cert") == 0)
			p->ssl_cert = v;
		else if (strcmp(def->defname, "ssl_key") == 0)
			p->ssl_key = v;
		else if (strcmp(def->defname, "ssl_cipher") == 0)
			p->ssl_cipher = v;
	}
	foreach(lc, um->options)
	{
		DefElem    *def = (DefElem *) lfirst(lc);

		if (strcmp(def->defname, "user") == 0)
			p->user = defGetString(def);
		else if (strcmp(def->defname, "password") == 0)
			p->password = defGetString(def);
	}
}

/*
 * Open a session on the foreign server for the current user, refuse an
 * account that can write the source (unless iact.sync_allow_write_account;
 * see src/sync_grants.c), and start the READ ONLY consistent-snapshot
 * transaction.  reading_db is the database this call reads (NULL: the
 * server's dbname).  *dbname gets the server's default database (NULL if
 * none); *elsewhere the account's write privileges outside the source (NULL
 * if none), also reported as a NOTICE, once per session, when notice is set.
 * Every wait is interruptible; on any error the connection is closed.
 */
IactMyConn *
iact_sync_connect_to(Oid serverid, const char *reading_db, bool notice, char **dbname,
					 char **elsewhere)
{
	ForeignServer *server = GetForeignServer(serverid);
	UserMapping *um = GetUserMapping(GetUserId(), serverid);
	IactMyParams p;
	IactMyConn *conn;
	char		errbuf[512];
	unsigned int errnum = 0;
	char		sql[256];

	read_params(server, um, &p);
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

	conn = iact_my_init(&p, errbuf, sizeof(errbuf), &errnum);
	if (conn == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_SQLCLIENT_UNABLE_TO_ESTABLISH_SQLCONNECTION),
				 errmsg("could not connect to MariaDB server \"%s\"", server->servername),
				 errdetail("MariaDB error %u: %s", errnum, errbuf)));
	PG_TRY();
	{
		if (iact_my_connect(conn, &p) != 0)
			ereport(ERROR,
					(errcode(ERRCODE_SQLCLIENT_UNABLE_TO_ESTABLISH_SQLCONNECTION),
					 errmsg("could not connect to MariaDB server \"%s\"", server->servername),
					 errdetail("MariaDB error %u: %s", iact_my_errno(conn), iact_my_error(conn))));

		/* the grants: an account that can write the source is refused */
		*elsewhere = iact_sync_check_grants(conn, serverid, p.user, p.dbname, reading_db);
		if (*elsewhere != NULL && notice)
			iact_sync_notice_elsewhere(server->servername, p.user, *elsewhere);

		snprintf(sql, sizeof(sql),
				 "SET SESSION time_zone = '+00:00', SESSION net_write_timeout = %u, "
				 "SESSION net_read_timeout = %u, SESSION sql_mode = 'NO_ENGINE_SUBSTITUTION'",
				 p.read_timeout, p.write_timeout);
		if (iact_my_exec(conn, sql) != 0)
			iact_sync_my_error(conn, ERRCODE_SQLCLIENT_UNABLE_TO_ESTABLISH_SQLCONNECTION,
							   server->servername, "session set-up", NULL);
		if (iact_my_exec(conn, "SET SESSION TRANSACTION READ ONLY") != 0 ||
			iact_my_exec(conn, "START TRANSACTION READ ONLY, WITH CONSISTENT SNAPSHOT") != 0)
			iact_sync_my_error(conn, ERRCODE_SQLCLIENT_UNABLE_TO_ESTABLISH_SQLCONNECTION,
							   server->servername, "START TRANSACTION READ ONLY", NULL);
	}
	PG_CATCH();
	{
		iact_my_close(conn);
		PG_RE_THROW();
	}
	PG_END_TRY();
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

/*
 * iact_sync_connect_to() for the server's own database (its dbname), without
 * the NOTICE: for callers that read no particular source database.
 */
IactMyConn *
iact_sync_connect(Oid serverid, char **dbname)
{
	char	   *elsewhere;

	return iact_sync_connect_to(serverid, NULL, false, dbname, &elsewhere);
}
