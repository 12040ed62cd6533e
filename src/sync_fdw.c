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
#include "postgres.h"

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

/* how an option's value is checked, and the type it has in IactMyParams */
typedef enum SyncOptionKind
{
	SYNC_OPT_TEXT,				/* a non-empty string (const char *) */
	SYNC_OPT_SECRET,			/* any string, empty included (const char *) */
	SYNC_OPT_PORT,				/* an integer 1..65535 (unsigned int) */
	SYNC_OPT_SECONDS,			/* an integer 1..86400 (unsigned int) */
	SYNC_OPT_SSL_MODE,			/* disable, require or verify (int 0, 1, 2) */
	SYNC_OPT_TIME_ZONE			/* a zone SET TimeZone accepts (not a parameter) */
} SyncOptionKind;

/* not a connection parameter: read elsewhere (iact_sync_server_time_zone) */
#define SYNC_OPT_NO_PARAM	((size_t) -1)

/*
 * Every option of the iact_mariadb wrapper: where it may appear (the catalog
 * of the server or of the user mapping), how its value is checked, and the
 * IactMyParams field it sets.  The validator and the connection code both
 * read this table and nothing else, so an option cannot be accepted by one
 * and ignored (or read differently) by the other.
 */
typedef struct SyncOption
{
	const char *name;
	Oid			context;		/* ForeignServerRelationId or UserMappingRelationId */
	SyncOptionKind kind;
	size_t		param;			/* offsetof(IactMyParams, ...) or SYNC_OPT_NO_PARAM */
} SyncOption;

#define SERVER_OPT(name, kind, field) \
	{name, ForeignServerRelationId, kind, offsetof(IactMyParams, field)}
#define MAPPING_OPT(name, kind, field) \
	{name, UserMappingRelationId, kind, offsetof(IactMyParams, field)}

static const SyncOption sync_options[] = {
	SERVER_OPT("host", SYNC_OPT_TEXT, host),
	SERVER_OPT("port", SYNC_OPT_PORT, port),
	SERVER_OPT("socket", SYNC_OPT_TEXT, socket),
	SERVER_OPT("dbname", SYNC_OPT_TEXT, dbname),
	SERVER_OPT("connect_timeout", SYNC_OPT_SECONDS, connect_timeout),
	SERVER_OPT("read_timeout", SYNC_OPT_SECONDS, read_timeout),
	SERVER_OPT("write_timeout", SYNC_OPT_SECONDS, write_timeout),
	SERVER_OPT("ssl_mode", SYNC_OPT_SSL_MODE, ssl_mode),
	SERVER_OPT("ssl_ca", SYNC_OPT_TEXT, ssl_ca),
	SERVER_OPT("ssl_capath", SYNC_OPT_TEXT, ssl_capath),
	SERVER_OPT("ssl_cert", SYNC_OPT_TEXT, ssl_cert),
	SERVER_OPT("ssl_key", SYNC_OPT_TEXT, ssl_key),
	SERVER_OPT("ssl_cipher", SYNC_OPT_TEXT, ssl_cipher),
	{"source_time_zone", ForeignServerRelationId, SYNC_OPT_TIME_ZONE, SYNC_OPT_NO_PARAM},
	MAPPING_OPT("user", SYNC_OPT_TEXT, user),
	MAPPING_OPT("password", SYNC_OPT_SECRET, password),
	{NULL, InvalidOid, SYNC_OPT_TEXT, SYNC_OPT_NO_PARAM}
};

/* the option called name in catalog's context, or NULL */
static const SyncOption *
sync_option_find(const char *name, Oid catalog)
{
	const SyncOption *opt;

	for (opt = sync_options; opt->name; opt++)
		if (opt->context == catalog && strcmp(opt->name, name) == 0)
			return opt;
	return NULL;
}

/* an integer option's value; an error when it is not an integer in [min, max] */
static int
sync_option_int(const char *name, const char *v, int min, int max)
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
 * Check value for opt (throwing the option's error when it is malformed)
 * and, when params is not NULL and opt is a connection parameter, store it
 * in its IactMyParams field.  The strings stored point into value.
 */
static void
sync_option_apply(const SyncOption *opt, const char *value, IactMyParams *params)
{
	char	   *field = params && opt->param != SYNC_OPT_NO_PARAM ?
		(char *) params + opt->param : NULL;
	int			ssl_mode;

	switch (opt->kind)
	{
		case SYNC_OPT_TEXT:
		case SYNC_OPT_SECRET:
			if (opt->kind == SYNC_OPT_TEXT && value[0] == '\0')
				ereport(ERROR,
						(errcode(ERRCODE_FDW_INVALID_ATTRIBUTE_VALUE),
						 errmsg("option \"%s\" must not be empty", opt->name)));
			if (field)
				*(const char **) field = value;
			break;
		case SYNC_OPT_PORT:
		case SYNC_OPT_SECONDS:
			{
				unsigned int n = (unsigned int)
					sync_option_int(opt->name, value, 1,
									opt->kind == SYNC_OPT_PORT ? 65535 : 86400);

				if (field)
					*(unsigned int *) field = n;
			}
			break;
		case SYNC_OPT_SSL_MODE:
			if (strcmp(value, "disable") == 0)
				ssl_mode = 0;
			else if (strcmp(value, "require") == 0)
				ssl_mode = 1;
			else if (strcmp(value, "verify") == 0)
				ssl_mode = 2;
			else
				ereport(ERROR,
						(errcode(ERRCODE_FDW_INVALID_ATTRIBUTE_VALUE),
						 errmsg("invalid value for option \"%s\": \"%s\"", opt->name, value),
						 errhint("Valid values are: disable, require, verify.")));
			if (field)
				*(int *) field = ssl_mode;
			break;
		case SYNC_OPT_TIME_ZONE:
			/* as SET TimeZone reads it (the run computes with it): no leap seconds */
			if (value[0] == '\0' || pg_tzset(value) == NULL || !pg_tz_acceptable(pg_tzset(value)))
				ereport(ERROR,
						(errcode(ERRCODE_FDW_INVALID_ATTRIBUTE_VALUE),
						 errmsg("invalid value for option \"%s\": \"%s\"", opt->name, value),
						 errhint("Use a time zone name PostgreSQL knows (pg_timezone_names), e.g. 'Europe/Madrid'.")));
			break;
	}
}

/*
 * Validator of the iact_mariadb wrapper: only the options of sync_options,
 * each in its context (server or user mapping), with well-formed values.
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
		const SyncOption *opt = sync_option_find(def->defname, catalog);

		if (opt == NULL)
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
		sync_option_apply(opt, defGetString(def), NULL);
	}
	PG_RETURN_VOID();
}

/*
 * The connection parameters from the server's and the user mapping's
 * options, through sync_options (options it does not know are ignored: the
 * validator let none in).  Unset parameters keep their defaults.
 */
static void
sync_read_params(ForeignServer *server, UserMapping *um, IactMyParams *p)
{
	List	   *lists[2] = {server->options, um->options};
	Oid			catalogs[2] = {ForeignServerRelationId, UserMappingRelationId};
	int			i;
	ListCell   *lc;

	memset(p, 0, sizeof(*p));
	p->connect_timeout = 10;
	p->read_timeout = 300;
	p->write_timeout = 300;
	for (i = 0; i < 2; i++)
		foreach(lc, lists[i])
		{
			DefElem    *def = (DefElem *) lfirst(lc);
			const SyncOption *opt = sync_option_find(def->defname, catalogs[i]);

			if (opt != NULL && opt->param != SYNC_OPT_NO_PARAM)
				sync_option_apply(opt, defGetString(def), p);
		}
}

/*
 * Open a session on the foreign server (an iact_mariadb one: a server of
 * another wrapper is refused, 42704 as by
 * iact.sync_add_table) for the current user, refuse an
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
	UserMapping *um;
	IactMyParams p;
	IactMyConn *conn;
	char		sql[256];

	/* only the validator's options are connection parameters (sync_options) */
	if (strcmp(GetForeignDataWrapper(server->fdwid)->fdwname, "iact_mariadb") != 0)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("server \"%s\" is not an iact_mariadb server", server->servername),
				 errdetail("It belongs to the foreign-data wrapper \"%s\", whose options iact does not check.",
						   GetForeignDataWrapper(server->fdwid)->fdwname),
				 errhint("CREATE SERVER ... FOREIGN DATA WRAPPER iact_mariadb OPTIONS (host ..., port ..., dbname ...).")));
	um = GetUserMapping(GetUserId(), serverid);
	sync_read_params(server, um, &p);
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

	conn = iact_my_init(&p);
	if (conn == NULL)
		iact_sync_my_error(NULL, ERRCODE_SQLCLIENT_UNABLE_TO_ESTABLISH_SQLCONNECTION,
						   server->servername, NULL, NULL);
	PG_TRY();
	{
		if (iact_my_connect(conn, &p) != 0)
			iact_sync_my_error(conn, ERRCODE_SQLCLIENT_UNABLE_TO_ESTABLISH_SQLCONNECTION,
							   server->servername, NULL, NULL);

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
