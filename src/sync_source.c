/*-------------------------------------------------------------------------
 *
 * sync_source.c
 *	  The MariaDB side of one sync run (layer 1, see sync_engine.c): the
 *	  connection, the source's columns, the synced range as a WHERE clause,
 *	  the rows streamed unbuffered in batches of raw values, the count of
 *	  the range, and the end of the read-only transaction.  Every MariaDB
 *	  error goes through iact_sync_my_error (sync_remote.c).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "sync.h"
#include "sync_remote.h"

#include "foreign/foreign.h"
#include "lib/stringinfo.h"
#include "utils/acl.h"
#include "utils/builtins.h"

#include "mariadb_client.h"

#define RETRY_HINT "Nothing was taken as the end of the data; the run can be repeated."

/* a MariaDB error of this run's connection: the run fails */
static void
source_error(SyncRun *r, const char *what)
{
	iact_sync_my_error(r->src.conn, ERRCODE_CONNECTION_FAILURE, r->conf.server_name, what,
					   RETRY_HINT);
}

/* a reply that does not have the shape asked for (a NULL, a column missing) */
static void
bad_reply(SyncRun *r, const char *what)
{
	iact_sync_my_bad_reply(r->conf.server_name, what,
						   "A value was NULL or the number of columns was not the one asked for.",
						   "Check that the server is MariaDB (or MySQL) and that nothing rewrites its replies.");
}

/* a MariaDB string literal, escaped by the connection */
static char *
source_literal(SyncRun *r, const char *v)
{
	return iact_sync_my_literal(r->src.conn, v);
}

/*
 * An integer watermark goes into MariaDB SQL unquoted (so the column's index
 * compares integers): it must be an optional minus and digits only.
 */
static const char *
source_integer(SyncRun *r, const char *v)
{
	const char *p = v;

	if (*p == '-')
		p++;
	if (*p == '\0' || strspn(p, "0123456789") != strlen(p) || strlen(p) > 65)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("the watermark \"%s\" of %s is not an integer", v, r->conf.tgt_qual),
				 errhint("Reset it with iact.sync_alter_table(..., reset_watermark => true).")));
	return v;
}

/* a watermark value in MariaDB SQL */
static const char *
wm_literal(SyncRun *r, const char *v)
{
	return r->tgt.wm_temporal ? source_literal(r, v) : source_integer(r, v);
}

/* run a MariaDB query returning one value (NULL when SQL NULL) */
static char *
source_scalar(SyncRun *r, const char *sql)
{
	unsigned int ncols;
	char	  **row;
	unsigned long *lens;
	char	   *result = NULL;
	int			rc;

	if (iact_my_query(r->src.conn, sql, &ncols) != 0)
		source_error(r, "a query");
	if (ncols != 1)
		bad_reply(r, "a query");
	rc = iact_my_fetch(r->src.conn, &row, &lens);
	if (rc < 0)
		source_error(r, "a query");
	if (rc == 1 && row[0] != NULL)
		result = pnstrdup(row[0], lens[0]);
	while (rc == 1)
		rc = iact_my_fetch(r->src.conn, &row, &lens);
	if (rc < 0)
		source_error(r, "a query");
	iact_my_query_end(r->src.conn);
	return result;
}

/* the source's columns (information_schema): names, DATA_TYPE, COLUMN_TYPE */
static void
read_columns(SyncRun *r, List **names_out, List **dtypes_out, List **ctypes_out)
{
	StringInfoData sql;
	unsigned int ncols;
	char	  **row;
	unsigned long *lens;
	int			rc;
	List	   *names = NIL,
			   *dtypes = NIL,
			   *ctypes = NIL;
	const char *what = "reading the source's columns";

	initStringInfo(&sql);
	appendStringInfo(&sql,
					 "SELECT c.COLUMN_NAME, c.DATA_TYPE, c.COLUMN_TYPE FROM information_schema.COLUMNS c "
					 "WHERE c.TABLE_SCHEMA = %s AND c.TABLE_NAME = %s ORDER BY c.ORDINAL_POSITION",
					 source_literal(r, r->conf.src_schema), source_literal(r, r->conf.src_table));
	if (iact_my_query(r->src.conn, sql.data, &ncols) != 0)
		source_error(r, what);
	if (ncols != 3)
		bad_reply(r, what);
	while ((rc = iact_my_fetch(r->src.conn, &row, &lens)) == 1)
	{
		if (row[0] == NULL || row[1] == NULL || row[2] == NULL)
			bad_reply(r, what);
		names = lappend(names, pnstrdup(row[0], lens[0]));
		dtypes = lappend(dtypes, pnstrdup(row[1], lens[1]));
		ctypes = lappend(ctypes, pnstrdup(row[2], lens[2]));
	}
	iact_my_query_end(r->src.conn);
	if (rc < 0)
		source_error(r, what);
	if (names == NIL)
		ereport(ERROR,
				(errcode(ERRCODE_FDW_TABLE_NOT_FOUND),
				 errmsg("source table %s.%s not found on MariaDB server \"%s\"",
						r->conf.src_schema, r->conf.src_table, r->conf.server_name),
				 errhint("Check the name and that the account may SELECT it.")));
	*names_out = names;
	*dtypes_out = dtypes;
	*ctypes_out = ctypes;
}

/*
 * Connect (the caller's USAGE on the server checked), record where else the
 * account may write, and read the source's columns (for
 * iact_sync_target_resolve).
 */
void
iact_sync_source_open(SyncRun *r, List **names, List **dtypes, List **ctypes)
{
	char	   *dbname = NULL;
	char	   *elsewhere = NULL;
	ForeignServer *server = GetForeignServerByName(r->conf.server_name, false);
	SyncAs		as;

	if (pg_foreign_server_aclcheck(server->serverid, GetUserId(), ACL_USAGE) != ACLCHECK_OK)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied for foreign server %s", r->conf.server_name)));
	r->src.conn = iact_sync_connect_to(server->serverid, r->conf.src_schema, false, &dbname,
									   &elsewhere);
	/* bookkeeping, as iact */
	iact_sync_as_iact(r, &as);
	iact_sync_record_elsewhere(r->run_id, elsewhere);
	iact_sync_restore(&as);
	r->src.tz_name = iact_sync_server_time_zone(server);
	if (r->conf.src_schema == NULL)
	{
		if (dbname == NULL)
			ereport(ERROR,
					(errcode(ERRCODE_FDW_SCHEMA_NOT_FOUND),
					 errmsg("no database given for source table \"%s\"", r->conf.src_table),
					 errhint("Register it as 'database.table', or set the server's dbname option.")));
		r->conf.src_schema = dbname;
	}
	r->src.qual = psprintf("%s.%s", iact_sync_my_ident(r->conf.src_schema),
						   iact_sync_my_ident(r->conf.src_table));
	read_columns(r, names, dtypes, ctypes);
}

/* the lower bound of an incremental run: the last watermark minus the lookback */
static char *
watermark_from(SyncRun *r)
{
	const char *dt = r->tgt.cols[r->tgt.wm_idx].src_data_type;
	const char *last = source_literal(r, r->conf.last_wm);
	char	   *q;
	char	   *from;

	/* the bound has the column's own type: a date stays a date (rounded down) */
	if (r->tgt.wm_temporal && strcmp(dt, "date") == 0)
		q = psprintf("SELECT CAST(CAST(%s AS DATETIME(6)) - INTERVAL " INT64_FORMAT " SECOND AS DATE)",
					 last, r->conf.lookback);
	else if (r->tgt.wm_temporal)
		q = psprintf("SELECT CAST(%s AS DATETIME(6)) - INTERVAL " INT64_FORMAT " SECOND",
					 last, r->conf.lookback);
	else
		q = psprintf("SELECT CAST(%s AS DECIMAL(65,0)) - " INT64_FORMAT, last, r->conf.lookback);
	if (r->src.tz_name && strcmp(dt, "datetime") == 0)
		from = iact_sync_local_lookback(r->conf.last_wm, r->conf.lookback, r->src.tz_name);
	else
		from = source_scalar(r, q);
	if (from == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("the last watermark of %s is not a valid value", r->conf.tgt_qual)));
	return from;
}

/*
 * The range of this run as a WHERE clause (r->src.where_sql), with
 * r->tgt.wm_from; the retention cutoff r->tgt.cutoff is already set
 * (iact_sync_retention_cutoff).  Rows without a watermark are not synced
 * incrementally: NULL, and a zero date, which is NOT NULL in MariaDB but
 * arrives as NULL -- also one with a time ('0000-00-00 12:00:00', not equal
 * to 0 in MariaDB): everything below '0000-01-01' (the test keeps the
 * column's index usable).
 */
void
iact_sync_source_range(SyncRun *r)
{
	StringInfoData sql;
	List	   *conds = NIL;
	ListCell   *lc;
	const char *wm = r->conf.wm_col ? iact_sync_my_ident(r->conf.wm_col) : NULL;

	if (wm && r->tgt.wm_temporal)
		conds = lappend(conds, psprintf("%s >= '0000-01-01'", wm));
	else if (wm)
		conds = lappend(conds, psprintf("%s IS NOT NULL", wm));
	if (wm && r->conf.last_wm)
	{
		r->tgt.wm_from = watermark_from(r);
		conds = lappend(conds, psprintf("%s >= %s", wm, wm_literal(r, r->tgt.wm_from)));
	}
	if (r->tgt.cutoff)
	{
		const char *ret = iact_sync_my_ident(r->conf.ret_col);

		/*
		 * rows without a date (NULL, or a zero date, with or without a time,
		 * that arrives as NULL) are kept
		 */
		conds = lappend(conds, psprintf("(%s >= %s OR %s IS NULL OR %s < '0000-01-01')", ret,
										source_literal(r, r->tgt.cutoff), ret, ret));
	}
	initStringInfo(&sql);
	foreach(lc, conds)
		appendStringInfo(&sql, "%s%s", foreach_current_index(lc) == 0 ? " WHERE " : " AND ",
						 (char *) lfirst(lc));
	r->src.where_sql = sql.data;
}

/* start streaming the range's rows, ordered by the column order_by (or not) */
void
iact_sync_source_stream(SyncRun *r, const char *order_by)
{
	StringInfoData sql;
	unsigned int ncols;
	int			i;

	initStringInfo(&sql);
	appendStringInfoString(&sql, "SELECT ");
	for (i = 0; i < r->tgt.ncols; i++)
		appendStringInfo(&sql, "%s%s", i ? ", " : "", iact_sync_my_ident(r->tgt.cols[i].name));
	appendStringInfo(&sql, " FROM %s%s", r->src.qual, r->src.where_sql);
	if (order_by)
		appendStringInfo(&sql, " ORDER BY %s", iact_sync_my_ident(order_by));
	if (iact_my_query(r->src.conn, sql.data, &ncols) != 0)
		source_error(r, "the SELECT of the source rows");
	if (ncols != (unsigned int) r->tgt.ncols)
		bad_reply(r, "the SELECT of the source rows");
}

/*
 * Up to batch_size rows, copied into the current memory context (every byte,
 * NULs included, plus a terminator; a value too long to store is not copied:
 * a reject, see iact_sync_convert).  Sets r->src.eof at the end.
 */
void
iact_sync_source_fetch(SyncRun *r, SyncBatch *b)
{
	int			rc = 0;
	int			ncols = r->tgt.ncols;

	b->n = 0;
	b->vals = palloc(sizeof(char **) * r->conf.batch_size);
	b->lens = palloc(sizeof(unsigned long *) * r->conf.batch_size);
	while (b->n < r->conf.batch_size)
	{
		char	  **row;
		unsigned long *lens;
		int			i;

		CHECK_FOR_INTERRUPTS();
		rc = iact_my_fetch(r->src.conn, &row, &lens);
		if (rc < 0)
			source_error(r, psprintf("reading row " INT64_FORMAT " of %s", r->n.read + 1,
									 r->src.qual));
		if (rc == 0)
			break;
		b->vals[b->n] = palloc(sizeof(char *) * ncols);
		b->lens[b->n] = palloc(sizeof(unsigned long) * ncols);
		for (i = 0; i < ncols; i++)
		{
			b->lens[b->n][i] = lens[i];
			if (row[i] == NULL)
				b->vals[b->n][i] = NULL;
			else if (lens[i] > IACT_SYNC_MAX_VALUE)
				b->vals[b->n][i] = "";
			else
			{
				b->vals[b->n][i] = palloc(lens[i] + 1);
				memcpy(b->vals[b->n][i], row[i], lens[i]);
				b->vals[b->n][i][lens[i]] = '\0';
			}
		}
		b->n++;
	}
	if (rc == 0)
		r->src.eof = true;
}

/*
 * The source's count of the synced range, up to the last watermark read
 * (-1: no answer).  The stream must be over.
 */
int64
iact_sync_source_count(SyncRun *r)
{
	StringInfoData sql;
	char	   *v;

	initStringInfo(&sql);
	appendStringInfo(&sql, "SELECT COUNT(*) FROM %s%s", r->src.qual, r->src.where_sql);
	if (r->tgt.wm_idx >= 0 && r->src.wm_to)
		appendStringInfo(&sql, "%s %s <= %s", r->src.where_sql[0] ? " AND" : " WHERE",
						 iact_sync_my_ident(r->conf.wm_col), wm_literal(r, r->src.wm_to));
	v = source_scalar(r, sql.data);
	return v ? strtoll(v, NULL, 10) : -1;
}

/* the end of the stream (what is left of it is skipped) */
void
iact_sync_source_end_stream(SyncRun *r)
{
	iact_my_query_end(r->src.conn);
}

/* the end of the read-only transaction: nothing was ever written there */
void
iact_sync_source_end(SyncRun *r)
{
	if (iact_my_exec(r->src.conn, "ROLLBACK") != 0)
		source_error(r, "ROLLBACK");
}
