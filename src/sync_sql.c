/*-------------------------------------------------------------------------
 *
 * sync_sql.c
 *	  The sync's SQL-callable C functions and GUCs: iact._sync_table()
 *	  (one table in the caller's transaction, behind iact.sync_now), the
 *	  procedure iact.sync_run() (commits every batch), and
 *	  iact.sync_source_columns() (a source table's columns and their
 *	  PostgreSQL types, behind iact.sync_add_table).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "sync.h"
#include "sync_remote.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "foreign/foreign.h"
#include "funcapi.h"
#include "nodes/parsenodes.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/memutils.h"

#include "mariadb_client.h"

PG_FUNCTION_INFO_V1(iact_sync_table_sql);
PG_FUNCTION_INFO_V1(iact_sync_run_proc);
PG_FUNCTION_INFO_V1(iact_sync_source_columns);

int			iact_sync_batch_size = 1000;
bool		iact_sync_allow_write_account = false;
int			iact_sync_history_days = 90;

/* the sync's settings: iact.sync_batch_size, iact.sync_allow_write_account, iact.sync_history_days */
void
iact_sync_init(void)
{
	DefineCustomIntVariable("iact.sync_batch_size",
							"Rows per batch of a sync (a table's batch_size overrides it).",
							NULL, &iact_sync_batch_size, 1000, 1, 1000000,
							PGC_USERSET, 0, NULL, NULL, NULL);
	DefineCustomBoolVariable("iact.sync_allow_write_account",
							 "Accept a MariaDB account that could write to the source.",
							 "Off by default: the sync refuses an account whose grants go beyond SELECT.",
							 &iact_sync_allow_write_account, false,
							 PGC_SUSET, 0, NULL, NULL, NULL);
	DefineCustomIntVariable("iact.sync_history_days",
							"Days iact.sync_runs keeps finished runs (0 keeps all).",
							NULL, &iact_sync_history_days, 90, 0, 36500,
							PGC_SUSET, 0, NULL, NULL, NULL);
}

/* iact._sync_table(table_id integer) RETURNS bigint: one table, atomically */
Datum
iact_sync_table_sql(PG_FUNCTION_ARGS)
{
	PG_RETURN_INT64(iact_sync_table(PG_GETARG_INT32(0), false));
}

/*
 * CALL iact.sync_run(target_table text DEFAULT NULL): every enabled table
 * (or one), committing each batch with its watermark.  Inside an explicit
 * transaction block it cannot commit, and then runs each table atomically.
 */
Datum
iact_sync_run_proc(PG_FUNCTION_ARGS)
{
	bool		atomic = !iact_call_is_nonatomic(fcinfo);
	MemoryContext cxt;
	MemoryContext old;
	int32	   *ids;
	int			nids = 0;
	int			i;
	Oid			argtypes[1] = {TEXTOID};
	Datum		args[1];
	char		nulls[1] = {' '};

	cxt = AllocSetContextCreate(TopMemoryContext, "iact sync_run", ALLOCSET_SMALL_SIZES);
	if (SPI_connect_ext(atomic ? 0 : SPI_OPT_NONATOMIC) != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	if (PG_ARGISNULL(0))
		nulls[0] = 'n';
	else
		args[0] = PG_GETARG_DATUM(0);
	/*
	 * a table named is synced even when disabled; without a name, every
	 * enabled one the caller may sync, as iact._sync_runnable_ids() says
	 * (inlined: a 1.0 database has no such function); every name
	 * schema-qualified
	 */
	if (SPI_execute_with_args("SELECT iact._sync_table_id($1) WHERE $1 IS NOT NULL UNION ALL "
							  "SELECT t.id FROM iact.sync_tables t "
							  "LEFT JOIN pg_catalog.pg_namespace n ON n.nspname OPERATOR(pg_catalog.=) t.target_schema "
							  "LEFT JOIN pg_catalog.pg_class c ON c.relnamespace OPERATOR(pg_catalog.=) n.oid "
							  "AND c.relname OPERATOR(pg_catalog.=) t.target_table "
							  "WHERE $1 IS NULL AND t.enabled "
							  "AND (c.oid IS NULL OR pg_catalog.pg_has_role(c.relowner, 'USAGE')) ORDER BY 1",
							  1, argtypes, args, nulls, true, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not read iact.sync_tables");
	old = MemoryContextSwitchTo(cxt);
	ids = palloc(sizeof(int32) * (SPI_processed + 1));
	for (i = 0; i < (int) SPI_processed; i++)
	{
		bool		isnull;

		ids[nids++] = DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc,
												  1, &isnull));
	}
	MemoryContextSwitchTo(old);
	if (!atomic)
		SPI_commit();
	for (i = 0; i < nids; i++)
		(void) iact_sync_table(ids[i], !atomic);
	if (SPI_execute("SELECT iact._sync_history_purge()", false, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not purge iact.sync_runs");
	SPI_finish();
	MemoryContextDelete(cxt);
	PG_RETURN_VOID();
}

/*
 * iact.sync_source_columns(server name, source_table text,
 *     tinyint1_as_boolean boolean DEFAULT true)
 * RETURNS TABLE (ordinal int, column_name text, source_type text,
 *     target_type text, nullable boolean, primary_key_position int)
 */
Datum
iact_sync_source_columns(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	char	   *servername;
	char	   *source;
	bool		tinybool;
	ForeignServer *server;
	char	   *dbname = NULL;
	char	   *schema;
	char	   *table;
	char	   *dot;
	IactMyConn *volatile conn = NULL;
	const char *tzname;

	if (PG_ARGISNULL(0) || PG_ARGISNULL(1) || PG_ARGISNULL(2))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("server, source_table and tinyint1_as_boolean must not be NULL")));
	servername = NameStr(*PG_GETARG_NAME(0));
	source = text_to_cstring(PG_GETARG_TEXT_PP(1));
	tinybool = PG_GETARG_BOOL(2);
	InitMaterializedSRF(fcinfo, 0);

	server = iact_sync_listing_server(servername);
	tzname = iact_sync_server_time_zone(server);
	dot = strchr(source, '.');
	if (source[0] == '\0' || (dot && (strchr(dot + 1, '.') || dot == source || dot[1] == '\0')))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid source table name \"%s\"", source),
				 errhint("Use 'table' or 'database.table'.")));

	PG_TRY();
	{
		char	   *sql;
		unsigned int ncols;
		char	  **row;
		unsigned long *lens;
		int			rc;
		char	   *elsewhere;

		schema = dot ? pnstrdup(source, dot - source) : NULL;
		conn = iact_sync_connect_to(server->serverid, schema, true, &dbname, &elsewhere);
		if (dot)
			table = dot + 1;
		else
		{
			schema = dbname;
			table = source;
		}
		if (schema == NULL)
			ereport(ERROR,
					(errcode(ERRCODE_FDW_SCHEMA_NOT_FOUND),
					 errmsg("no database given for source table \"%s\"", source),
					 errhint("Use 'database.table', or set the server's dbname option.")));
		sql = psprintf("SELECT c.ORDINAL_POSITION, c.COLUMN_NAME, c.DATA_TYPE, c.COLUMN_TYPE, "
					   "c.IS_NULLABLE = 'YES', "
					   "(SELECT s.SEQ_IN_INDEX FROM information_schema.STATISTICS s "
					   " WHERE s.TABLE_SCHEMA = c.TABLE_SCHEMA AND s.TABLE_NAME = c.TABLE_NAME "
					   " AND s.INDEX_NAME = 'PRIMARY' AND s.COLUMN_NAME = c.COLUMN_NAME), "
					   "EXISTS (SELECT 1 FROM information_schema.CHECK_CONSTRAINTS k "
					   " WHERE k.CONSTRAINT_SCHEMA = c.TABLE_SCHEMA AND k.TABLE_NAME = c.TABLE_NAME "
					   " AND k.CHECK_CLAUSE = CONCAT('json_valid(`', c.COLUMN_NAME, '`)')) "
					   "FROM information_schema.COLUMNS c "
					   "WHERE c.TABLE_SCHEMA = %s AND c.TABLE_NAME = %s ORDER BY c.ORDINAL_POSITION",
					   iact_sync_my_literal(conn, schema), iact_sync_my_literal(conn, table));
		if (iact_my_query(conn, sql, &ncols) != 0)
			iact_sync_my_error(conn, ERRCODE_CONNECTION_FAILURE, servername,
							   psprintf("reading the columns of %s", source), NULL);
		if (ncols != 7)
			iact_sync_my_bad_reply(servername, psprintf("reading the columns of %s", source),
								   psprintf("%u columns instead of 7.", ncols), NULL);
		while ((rc = iact_my_fetch(conn, &row, &lens)) == 1)
		{
			Datum		values[6];
			bool		nulls[6] = {false, false, false, false, false, false};
			bool		is_json;
			const char *pgtype;

			if (row[0] == NULL || row[1] == NULL || row[2] == NULL || row[3] == NULL)
				iact_sync_my_bad_reply(servername, psprintf("reading the columns of %s", source),
									   "A column's position, name or type was NULL.", NULL);
			is_json = row[6] && strcmp(row[6], "1") == 0;
			pgtype = iact_sync_map_type(is_json ? "json" : row[2], row[3], tinybool);

			/* with the server's source_time_zone a datetime is an instant: timestamptz */
			if (pgtype && tzname && !is_json && strcmp(row[2], "datetime") == 0)
				pgtype = psprintf("timestamptz%s", pgtype + strlen("timestamp"));

			values[0] = Int32GetDatum(atoi(row[0]));
			values[1] = CStringGetTextDatum(row[1]);
			values[2] = CStringGetTextDatum(is_json ? "json" : row[3]);
			if (pgtype)
				values[3] = CStringGetTextDatum(pgtype);
			else
				nulls[3] = true;
			values[4] = BoolGetDatum(row[4] && strcmp(row[4], "1") == 0);
			if (row[5])
				values[5] = Int32GetDatum(atoi(row[5]));
			else
				nulls[5] = true;
			tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
		}
		iact_sync_listing_end(conn, rc, servername, psprintf("reading the columns of %s", source));
	}
	PG_FINALLY();
	{
		iact_my_close(conn);
	}
	PG_END_TRY();
	return (Datum) 0;
}
