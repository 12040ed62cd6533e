/*-------------------------------------------------------------------------
 *
 * sync_register.c
 *	  iact.sync_source_tables(): the tables of a MariaDB database, behind
 *	  iact.sync_add_tables() (which registers many tables in one call).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "sync.h"
#include "sync_remote.h"

#include "foreign/foreign.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/builtins.h"

#include "mariadb_client.h"

PG_FUNCTION_INFO_V1(iact_sync_source_tables);

/*
 * The foreign server named servername, for a listing of the source (tables,
 * columns): USAGE on it is required.
 */
ForeignServer *
iact_sync_listing_server(const char *servername)
{
	ForeignServer *server = GetForeignServerByName(servername, false);

	if (pg_foreign_server_aclcheck(server->serverid, GetUserId(), ACL_USAGE) != ACLCHECK_OK)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied for foreign server %s", servername)));
	return server;
}

/*
 * The end of a listing's fetch loop: rc is the last iact_my_fetch() result
 * (negative: an error, reported as "<what> failed"); ends the query and the
 * read-only transaction.  The caller closes the connection.
 */
void
iact_sync_listing_end(IactMyConn *conn, int rc, const char *servername, const char *what)
{
	if (rc < 0)
		iact_sync_my_error(conn, ERRCODE_CONNECTION_FAILURE, servername, what, NULL);
	iact_my_query_end(conn);
	(void) iact_my_exec(conn, "ROLLBACK");
}

/*
 * iact.sync_source_tables(server name, source_database text DEFAULT NULL)
 * RETURNS TABLE (table_name text, estimated_rows bigint): the base tables
 * (not views) of a MariaDB database that the server's account can see, in
 * name order, with MariaDB's estimate of their rows (information_schema's
 * TABLE_ROWS: exact for MyISAM, a guess for InnoDB).  A NULL
 * database is the server's dbname.  Needs USAGE on the server; the
 * connection is the sync's own (read-only, grants checked).
 */
Datum
iact_sync_source_tables(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	char	   *servername;
	ForeignServer *server;
	char	   *dbname = NULL;
	char	   *database = NULL;
	IactMyConn *volatile conn = NULL;

	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("server must not be NULL")));
	servername = NameStr(*PG_GETARG_NAME(0));
	if (!PG_ARGISNULL(1))
	{
		database = text_to_cstring(PG_GETARG_TEXT_PP(1));
		if (database[0] == '\0')
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("source_database must not be empty"),
					 errhint("Pass NULL for the server's dbname.")));
	}
	InitMaterializedSRF(fcinfo, 0);

	server = iact_sync_listing_server(servername);

	PG_TRY();
	{
		unsigned int ncols;
		char	  **row;
		unsigned long *lens;
		int			rc;

		conn = iact_sync_connect(server->serverid, &dbname);
		if (database == NULL)
			database = dbname;
		if (database == NULL)
			ereport(ERROR,
					(errcode(ERRCODE_FDW_SCHEMA_NOT_FOUND),
					 errmsg("no source database given and server \"%s\" has no dbname", servername),
					 errhint("Pass source_database, or set the server's dbname option.")));
		if (iact_my_query(conn, psprintf("SELECT TABLE_NAME, TABLE_ROWS FROM information_schema.TABLES "
										 "WHERE TABLE_SCHEMA = %s AND TABLE_TYPE = 'BASE TABLE' "
										 "ORDER BY TABLE_NAME", iact_sync_my_literal(conn, database)),
						  &ncols) != 0)
			iact_sync_my_error(conn, ERRCODE_CONNECTION_FAILURE, servername,
							   psprintf("listing the tables of %s", database), NULL);
		if (ncols != 2)
			iact_sync_my_bad_reply(servername, psprintf("listing the tables of %s", database),
								   psprintf("%u columns instead of 2.", ncols), NULL);
		while ((rc = iact_my_fetch(conn, &row, &lens)) == 1)
		{
			Datum		values[2];
			bool		nulls[2] = {false, row[1] == NULL};

			CHECK_FOR_INTERRUPTS();
			if (row[0] == NULL)
				iact_sync_my_bad_reply(servername, psprintf("listing the tables of %s", database),
									   "A table name was NULL.", NULL);
			values[0] = PointerGetDatum(cstring_to_text_with_len(row[0], (int) lens[0]));
			values[1] = row[1] ? DirectFunctionCall1(int8in, CStringGetDatum(row[1])) : (Datum) 0;
			tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
		}
		iact_sync_listing_end(conn, rc, servername, psprintf("listing the tables of %s", database));
	}
	PG_FINALLY();
	{
		iact_my_close(conn);
	}
	PG_END_TRY();
	return (Datum) 0;
}
