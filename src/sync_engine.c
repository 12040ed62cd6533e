/*-------------------------------------------------------------------------
 *
 * sync_engine.c
 *	  The sync engine: one registered table, one run.  Streams the source
 *	  rows from MariaDB (unbuffered), converts them batch by batch, upserts
 *	  them by key into the target (and, without a watermark, deletes the
 *	  target rows the source no longer has), purges rows past the retention
 *	  age, checks the source and target counts of the synced range, and
 *	  records the run in iact.sync_runs and bad values in iact.sync_rejects.
 *
 * Two transaction modes (see iact_sync_table in iact.h): the whole table in
 * one subtransaction of the caller's transaction (sync_now), or a commit
 * after every batch together with its watermark (CALL sync_run, the worker).
 *
 *-------------------------------------------------------------------------
 */
#include "sync.h"

#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "foreign/foreign.h"
#include "lib/stringinfo.h"
#include "nodes/makefuncs.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/acl.h"
#include "utils/typcache.h"
#include "pgtime.h"

#include "mariadb_client.h"

/* ---- small helpers ---- */

/* a MariaDB identifier, quoted (iact_sync_my_ident) */
static char *
my_ident(const char *name)
{
	return iact_sync_my_ident(name);
}

static char *
my_literal(SyncRun *r, const char *v)
{
	size_t		len = strlen(v);
	char	   *out = palloc(len * 2 + 3);
	unsigned long n;

	out[0] = '\'';
	n = iact_my_escape(r->conn, out + 1, v, len);
	out[n + 1] = '\'';
	out[n + 2] = '\0';
	return out;
}

static void
my_error(SyncRun *r, const char *what)
{
	iact_sync_my_error(r->conn, ERRCODE_CONNECTION_FAILURE, r->server_name, what,
					   "Nothing was taken as the end of the data; the run can be repeated.");
}

/* a reply that does not have the shape asked for (a NULL, a column missing) */
static void
bad_reply(SyncRun *r, const char *what)
{
	ereport(ERROR,
			(errcode(ERRCODE_FDW_INVALID_DATA_TYPE),
			 errmsg("MariaDB server \"%s\": unexpected reply to %s", r->server_name, what),
			 errdetail("A value was NULL or the number of columns was not the one asked for."),
			 errhint("Check that the server is MariaDB (or MySQL) and that nothing rewrites its replies.")));
}

/*
 * An integer watermark goes into MariaDB SQL unquoted (so the column's index
 * compares integers): it must be an optional minus and digits only.
 */
static const char *
my_integer(SyncRun *r, const char *v)
{
	const char *p = v;

	if (*p == '-')
		p++;
	if (*p == '\0' || strspn(p, "0123456789") != strlen(p) || strlen(p) > 65)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("the watermark \"%s\" of %s is not an integer", v, r->tgt_qual),
				 errhint("Reset it with iact.sync_alter_table(..., reset_watermark => true).")));
	return v;
}

/* run a MariaDB query returning one value (NULL when SQL NULL) */
static char *
my_scalar(SyncRun *r, const char *sql)
{
	unsigned int ncols;
	char	  **row;
	unsigned long *lens;
	char	   *result = NULL;
	int			rc;

	if (iact_my_query(r->conn, sql, &ncols) != 0)
		my_error(r, "a query");
	if (ncols != 1)
		bad_reply(r, "a query");
	rc = iact_my_fetch(r->conn, &row, &lens);
	if (rc < 0)
		my_error(r, "a query");
	if (rc == 1 && row[0] != NULL)
		result = pnstrdup(row[0], lens[0]);
	while (rc == 1)
		rc = iact_my_fetch(r->conn, &row, &lens);
	if (rc < 0)
		my_error(r, "a query");
	iact_my_query_end(r->conn);
	return result;
}

char *
iact_sync_spi_text(HeapTuple tup, int col)
{
	bool		isnull;
	Datum		d = SPI_getbinval(tup, SPI_tuptable->tupdesc, col, &isnull);

	return isnull ? NULL : TextDatumGetCString(d);
}

void
iact_sync_spi_exec(const char *sql, int expected)
{
	int			rc = SPI_execute(sql, false, 0);

	if (rc != expected)
		elog(ERROR, "SPI_execute failed (%d): %s", rc, sql);
}
/* ---- the source and the target ---- */

/* match the target's columns with the source's, prepare the conversions */
static void
resolve_columns(SyncRun *r)
{
	StringInfoData sql;
	unsigned int ncols;
	char	  **row;
	unsigned long *lens;
	int			rc;
	List	   *src_names = NIL,
			   *src_dtypes = NIL,
			   *src_ctypes = NIL;
	Oid			relid;
	int			i,
				k;

	initStringInfo(&sql);
	appendStringInfo(&sql,
					 "SELECT c.COLUMN_NAME, c.DATA_TYPE, c.COLUMN_TYPE FROM information_schema.COLUMNS c "
					 "WHERE c.TABLE_SCHEMA = %s AND c.TABLE_NAME = %s ORDER BY c.ORDINAL_POSITION",
					 my_literal(r, r->src_schema), my_literal(r, r->src_table));
	if (iact_my_query(r->conn, sql.data, &ncols) != 0)
		my_error(r, "reading the source's columns");
	if (ncols != 3)
		bad_reply(r, "reading the source's columns");
	while ((rc = iact_my_fetch(r->conn, &row, &lens)) == 1)
	{
		if (row[0] == NULL || row[1] == NULL || row[2] == NULL)
			bad_reply(r, "reading the source's columns");
		src_names = lappend(src_names, pnstrdup(row[0], lens[0]));
		src_dtypes = lappend(src_dtypes, pnstrdup(row[1], lens[1]));
		src_ctypes = lappend(src_ctypes, pnstrdup(row[2], lens[2]));
	}
	iact_my_query_end(r->conn);
	if (rc < 0)
		my_error(r, "reading the source's columns");
	if (src_names == NIL)
		ereport(ERROR,
				(errcode(ERRCODE_FDW_TABLE_NOT_FOUND),
				 errmsg("source table %s.%s not found on MariaDB server \"%s\"",
						r->src_schema, r->src_table, r->server_name),
				 errhint("Check the name and that the account may SELECT it.")));

	relid = RangeVarGetRelid(makeRangeVar(r->tgt_schema, r->tgt_table, -1), NoLock, true);
	if (!OidIsValid(relid))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("target table %s does not exist", r->tgt_qual),
				 errhint("Register the table again with iact.sync_add_table() to create it.")));
	r->tgt_relid = relid;
	r->rowtype = get_rel_type_id(relid);
	r->arraytype = get_array_type(r->rowtype);
	r->tupdesc = lookup_rowtype_tupdesc_copy(r->rowtype, -1);
	get_typlenbyvalalign(r->rowtype, &r->rowlen, &r->rowbyval, &r->rowalign);

	r->cols = palloc0(sizeof(SyncColumn) * r->tupdesc->natts);
	r->ncols = 0;
	r->wm_idx = r->ret_idx = -1;
	for (i = 0; i < r->tupdesc->natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(r->tupdesc, i);
		ListCell   *ln,
				   *ld,
				   *lt;
		SyncColumn *col;

		if (att->attisdropped || att->attgenerated)
			continue;
		forthree(ln, src_names, ld, src_dtypes, lt, src_ctypes)
		{
			if (strcmp((char *) lfirst(ln), NameStr(att->attname)) == 0)
				break;
		}
		if (ln == NULL)
			continue;			/* a column only the target has */
		col = &r->cols[r->ncols];
		col->name = pstrdup(NameStr(att->attname));
		col->attnum = att->attnum;
		col->typid = att->atttypid;
		col->typmod = att->atttypmod;
		col->src_data_type = lfirst(ld);
		col->src_column_type = lfirst(lt);
		for (k = 0; k < r->nkeys; k++)
			if (strcmp(r->keys[k], col->name) == 0)
				col->is_key = true;
		col->not_null = col->is_key || att->attnotnull;
		if (r->src_tz_name)
		{
			col->src_tz_name = r->src_tz_name;
			col->src_tz = pg_tzset(r->src_tz_name);
		}
		if (r->wm_col && strcmp(r->wm_col, col->name) == 0)
			r->wm_idx = r->ncols;
		if (r->ret_col && strcmp(r->ret_col, col->name) == 0)
			r->ret_idx = r->ncols;
		iact_sync_column_prepare(col);
		r->ncols++;
	}
	for (k = 0; k < r->nkeys; k++)
	{
		for (i = 0; i < r->ncols; i++)
			if (strcmp(r->keys[k], r->cols[i].name) == 0)
				break;
		if (i == r->ncols)
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_COLUMN),
					 errmsg("key column \"%s\" is missing in the source or the target of %s",
							r->keys[k], r->tgt_qual)));
	}
	if ((r->wm_col && r->wm_idx < 0) || (r->ret_col && r->ret_idx < 0))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_COLUMN),
				 errmsg("column \"%s\" is missing in the source or the target of %s",
						(r->wm_col && r->wm_idx < 0) ? r->wm_col : r->ret_col, r->tgt_qual)));
	if (r->wm_idx >= 0)
	{
		const char *dt = r->cols[r->wm_idx].src_data_type;

		r->wm_temporal = strcmp(dt, "date") == 0 || strcmp(dt, "datetime") == 0 ||
			strcmp(dt, "timestamp") == 0;
	}
}

/*
 * iact's temporary table of the keys a full sync by a text or composite key
 * has seen: created by iact (a restricted operation may not create one),
 * written and read by the owner's statements, dropped by iact at the end.
 */
static void
create_seen_table(SyncRun *r)
{
	char	   *keys = iact_sync_column_list(r, "", true, false);
	bool		isnull;
	SyncAs		as;

	iact_sync_as_iact(r, &as);
	iact_sync_spi_exec("SELECT pg_catalog.to_regclass('pg_temp.iact_sync_seen') IS NOT NULL", SPI_OK_SELECT);
	if (DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull)))
		iact_sync_spi_exec("DROP TABLE pg_temp.iact_sync_seen", SPI_OK_UTILITY);
	iact_sync_spi_exec(psprintf("CREATE TEMP TABLE iact_sync_seen AS SELECT %s FROM %s WITH NO DATA",
								keys, r->tgt_qual), SPI_OK_UTILITY);
	if (r->owner != r->registry_owner)
		iact_sync_spi_exec(psprintf("GRANT SELECT, INSERT ON pg_temp.iact_sync_seen TO %s",
									quote_identifier(GetUserNameFromId(r->owner, false))),
						   SPI_OK_UTILITY);
	iact_sync_restore(&as);
}

static void
drop_seen_table(SyncRun *r)
{
	SyncAs		as;

	iact_sync_as_iact(r, &as);
	iact_sync_spi_exec("DROP TABLE pg_temp.iact_sync_seen", SPI_OK_UTILITY);
	iact_sync_restore(&as);
}

/* ---- the steps of a run ---- */

void
iact_sync_step_begin(SyncRun *r, void *arg)
{
	char	   *dbname = NULL;
	char	   *elsewhere = NULL;
	ForeignServer *server = GetForeignServerByName(r->server_name, false);
	StringInfoData sql;
	List	   *conds = NIL;
	ListCell   *lc;
	MemoryContext old = MemoryContextSwitchTo(r->cxt);

	if (pg_foreign_server_aclcheck(server->serverid, GetUserId(), ACL_USAGE) != ACLCHECK_OK)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied for foreign server %s", r->server_name)));
	r->conn = iact_sync_connect_to(server->serverid, r->src_schema, false, &dbname, &elsewhere);
	{
		SyncAs		as;

		/* bookkeeping, as iact */
		iact_sync_as_iact(r, &as);
		iact_sync_record_elsewhere(r->run_id, elsewhere);
		iact_sync_restore(&as);
	}
	r->src_tz_name = iact_sync_server_time_zone(server);
	if (r->src_schema == NULL)
	{
		if (dbname == NULL)
			ereport(ERROR,
					(errcode(ERRCODE_FDW_SCHEMA_NOT_FOUND),
					 errmsg("no database given for source table \"%s\"", r->src_table),
					 errhint("Register it as 'database.table', or set the server's dbname option.")));
		r->src_schema = dbname;
	}
	r->src_qual = psprintf("%s.%s", my_ident(r->src_schema), my_ident(r->src_table));
	resolve_columns(r);

	/* the range of this run */
	/*
	 * Rows without a watermark are not synced incrementally: NULL, and a zero
	 * date, which is NOT NULL in MariaDB but arrives as NULL -- also one with
	 * a time ('0000-00-00 12:00:00', not equal to 0 in MariaDB): everything
	 * below '0000-01-01' (the test keeps the column's index usable).
	 */
	if (r->wm_col && r->wm_temporal)
		conds = lappend(conds, psprintf("%s >= '0000-01-01'", my_ident(r->wm_col)));
	else if (r->wm_col)
		conds = lappend(conds, psprintf("%s IS NOT NULL", my_ident(r->wm_col)));
	if (r->wm_col && r->last_wm)
	{
		char	   *q;

		/* the bound has the column's own type: a date stays a date (rounded down) */
		if (r->wm_temporal && strcmp(r->cols[r->wm_idx].src_data_type, "date") == 0)
			q = psprintf("SELECT CAST(CAST(%s AS DATETIME(6)) - INTERVAL " INT64_FORMAT " SECOND AS DATE)",
						 my_literal(r, r->last_wm), r->lookback);
		else if (r->wm_temporal)
			q = psprintf("SELECT CAST(%s AS DATETIME(6)) - INTERVAL " INT64_FORMAT " SECOND",
						 my_literal(r, r->last_wm), r->lookback);
		else
			q = psprintf("SELECT CAST(%s AS DECIMAL(65,0)) - " INT64_FORMAT,
						 my_literal(r, r->last_wm), r->lookback);
		if (r->src_tz_name && strcmp(r->cols[r->wm_idx].src_data_type, "datetime") == 0)
			r->wm_from = iact_sync_local_lookback(r->last_wm, r->lookback, r->src_tz_name);
		else
			r->wm_from = my_scalar(r, q);
		if (r->wm_from == NULL)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("the last watermark of %s is not a valid value", r->tgt_qual)));
		conds = lappend(conds, psprintf("%s >= %s", my_ident(r->wm_col),
										r->wm_temporal ? my_literal(r, r->wm_from) : my_integer(r, r->wm_from)));
	}
	if (r->ret_col && r->retention_days > 0)
	{
		Oid			argtypes[1] = {INT4OID};
		Datum		args[1] = {Int32GetDatum(r->retention_days)};

		/* a MariaDB timestamp is read as UTC; dates and datetimes are local with source_time_zone */
		int			nest = (r->src_tz_name &&
							strcmp(r->cols[r->ret_idx].src_data_type, "timestamp") != 0) ?
			iact_sync_zone_begin(r->src_tz_name) : -1;

		if (SPI_execute_with_args(nest >= 0 ?
								  "SELECT pg_catalog.to_char(pg_catalog.now()::pg_catalog.timestamp "
								  "OPERATOR(pg_catalog.-) pg_catalog.make_interval(days => $1), "
								  "'YYYY-MM-DD HH24:MI:SS')" :
								  "SELECT to_char((now() AT TIME ZONE 'UTC') - make_interval(days => $1), "
								  "'YYYY-MM-DD HH24:MI:SS')", 1, argtypes, args, NULL, true, 1) != SPI_OK_SELECT)
			elog(ERROR, "could not compute the retention cutoff");
		if (nest >= 0)
			iact_sync_zone_end(nest);
		r->cutoff = iact_sync_spi_text(SPI_tuptable->vals[0], 1);
		/*
		 * rows without a date (NULL, or a zero date, with or without a time,
		 * that arrives as NULL) are kept
		 */
		conds = lappend(conds, psprintf("(%s >= %s OR %s IS NULL OR %s < '0000-01-01')", my_ident(r->ret_col),
										my_literal(r, r->cutoff), my_ident(r->ret_col),
										my_ident(r->ret_col)));
	}
	initStringInfo(&sql);
	foreach(lc, conds)
		appendStringInfo(&sql, "%s%s", foreach_current_index(lc) == 0 ? " WHERE " : " AND ",
						 (char *) lfirst(lc));
	r->where_sql = sql.data;

	/* the upsert needs a unique index on exactly the key columns */
	{
		Oid			t[2] = {TEXTOID, TEXTARRAYOID};
		Datum		a[2];
		Datum	   *kd = palloc(sizeof(Datum) * r->nkeys);
		bool		isnull;
		int			i;

		for (i = 0; i < r->nkeys; i++)
			kd[i] = CStringGetTextDatum(r->keys[i]);
		a[0] = CStringGetTextDatum(r->tgt_qual);
		a[1] = PointerGetDatum(construct_array(kd, r->nkeys, TEXTOID, -1, false, TYPALIGN_INT));
		if (SPI_execute_with_args("SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_index i "
								  "WHERE i.indrelid = $1::regclass AND i.indisunique AND i.indpred IS NULL "
								  "AND i.indexprs IS NULL AND i.indnkeyatts = cardinality($2) "
								  "AND (SELECT array_agg(a.attname::text ORDER BY a.attname::text COLLATE \"C\") "
								  "FROM pg_catalog.pg_attribute a WHERE a.attrelid = i.indrelid "
								  "AND a.attnum = ANY (i.indkey)) "
								  "= (SELECT array_agg(k ORDER BY k COLLATE \"C\") FROM unnest($2) k))",
								  2, t, a, NULL, false, 1) != SPI_OK_SELECT)
			elog(ERROR, "could not look for the key index of %s", r->tgt_qual);
		if (!DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull)))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_COLUMN_REFERENCE),
					 errmsg("target table %s has no unique index on its key columns", r->tgt_qual),
					 errhint("The sync upserts by key: add a primary key or unique index on the key columns.")));
	}

	/*
	 * An empty target is loaded with plain INSERTs; one ordered key allows
	 * range deletes.  An incremental table past its first run is not checked
	 * (an upsert is right either way, and the check can cost a scan over the
	 * dead rows of the previous runs).
	 */
	if (!(r->wm_col && r->last_wm))
	{
		bool		isnull;

		iact_sync_spi_exec(psprintf("SELECT NOT EXISTS (SELECT 1 FROM %s)", r->tgt_qual), SPI_OK_SELECT);
		r->bulk = DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	}
	if (!r->wm_col && !r->bulk && r->nkeys == 1 && iact_sync_merge_possible(r))
	{
		int			i;

		for (i = 0; i < r->ncols; i++)
			if (r->cols[i].is_key &&
				(r->cols[i].kind == SYNC_KIND_NUMBER || r->cols[i].kind == SYNC_KIND_DATE ||
				 r->cols[i].kind == SYNC_KIND_DATE_UTC) &&
				(r->cols[i].typid == INT2OID || r->cols[i].typid == INT4OID ||
				 r->cols[i].typid == INT8OID || r->cols[i].typid == NUMERICOID ||
				 r->cols[i].typid == DATEOID || r->cols[i].typid == TIMESTAMPOID ||
				 r->cols[i].typid == TIMESTAMPTZOID))
				/* both sides order these the same way */
			{
				r->merge_delete = true;
				r->key_idx = i;
			}
	}
	if (!r->wm_col && !r->bulk && !r->merge_delete)
		create_seen_table(r);
	iact_sync_prepare_plans(r);

	/* start streaming */
	initStringInfo(&sql);
	{
		int			i;
		unsigned int ncols;

		appendStringInfoString(&sql, "SELECT ");
		for (i = 0; i < r->ncols; i++)
			appendStringInfo(&sql, "%s%s", i ? ", " : "", my_ident(r->cols[i].name));
		appendStringInfo(&sql, " FROM %s%s", r->src_qual, r->where_sql);
		if (r->wm_col)
			appendStringInfo(&sql, " ORDER BY %s", my_ident(r->wm_col));
		else if (r->merge_delete)
			appendStringInfo(&sql, " ORDER BY %s", my_ident(r->cols[r->key_idx].name));
		if (iact_my_query(r->conn, sql.data, &ncols) != 0)
			my_error(r, "the SELECT of the source rows");
		if (ncols != (unsigned int) r->ncols)
			bad_reply(r, "the SELECT of the source rows");
	}
	iact_sync_save_run(r, NULL, NULL);
	MemoryContextSwitchTo(old);
}

/* read up to batch_size rows and apply them */
void
iact_sync_step_batch(SyncRun *r, void *arg)
{
	SyncBatch	b;
	int			rc = 0;
	MemoryContext old;

	MemoryContextReset(r->batch_cxt);
	old = MemoryContextSwitchTo(r->batch_cxt);
	b.n = 0;
	b.vals = palloc(sizeof(char **) * r->batch_size);
	b.lens = palloc(sizeof(unsigned long *) * r->batch_size);
	while (b.n < r->batch_size)
	{
		char	  **row;
		unsigned long *lens;
		int			i;

		CHECK_FOR_INTERRUPTS();
		rc = iact_my_fetch(r->conn, &row, &lens);
		if (rc < 0)
			my_error(r, psprintf("reading row " INT64_FORMAT " of %s", r->n_read + 1, r->src_qual));
		if (rc == 0)
			break;
		b.vals[b.n] = palloc(sizeof(char *) * r->ncols);
		b.lens[b.n] = palloc(sizeof(unsigned long) * r->ncols);
		for (i = 0; i < r->ncols; i++)
		{
			b.lens[b.n][i] = lens[i];
			if (row[i] == NULL)
				b.vals[b.n][i] = NULL;
			else if (lens[i] > IACT_SYNC_MAX_VALUE)
				b.vals[b.n][i] = "";	/* not copied: a reject (iact_sync_convert) */
			else
			{
				/* every byte, NULs included, plus a terminator */
				b.vals[b.n][i] = palloc(lens[i] + 1);
				memcpy(b.vals[b.n][i], row[i], lens[i]);
				b.vals[b.n][i][lens[i]] = '\0';
			}
		}
		b.n++;
	}
	if (rc == 0)
		r->eof = true;
	r->n_read += b.n;
	if (b.n > 0)
	{
		iact_sync_apply_batch(r, &b);
		if (r->wm_idx >= 0 && b.vals[b.n - 1][r->wm_idx] != NULL)
		{
			MemoryContextSwitchTo(r->cxt);
			r->wm_to = pstrdup(b.vals[b.n - 1][r->wm_idx]);
		}
	}
	/* in the batch's context: what the run record's update allocates goes with it */
	MemoryContextSwitchTo(r->batch_cxt);
	if (r->commit_batches)
	{
		iact_sync_save_watermark(r);
		iact_sync_save_run(r, NULL, NULL);
	}
	MemoryContextSwitchTo(old);
}

Datum
iact_sync_range_param(SyncRun *r, int idx, const char *text, bool *isnull)
{
	Datum		v;
	const char *reason = iact_sync_convert(&r->cols[idx], pstrdup(text), strlen(text), &v, isnull);

	if (reason != NULL)
		elog(ERROR, "invalid range bound \"%s\": %s", text, reason);
	return v;
}

/* purge, delete, count check, end the MariaDB transaction */
void
iact_sync_step_finish(SyncRun *r, void *arg)
{
	StringInfoData src,
				tgt;
	Oid			argtypes[3];
	Datum		args[3];
	char		nulls[3] = {' ', ' ', ' '};
	int			nargs = 0;
	char	   *v;
	bool		isnull;
	MemoryContext old = MemoryContextSwitchTo(r->cxt);

	iact_my_query_end(r->conn);

	/* retention: purge in batches */
	if (r->ret_idx >= 0 && r->cutoff)
		iact_sync_purge(r);

	/* full comparison: what the source no longer has goes */
	if (r->merge_delete)
		iact_sync_delete_tail(r);
	else if (!r->wm_col && !r->bulk)
	{
		StringInfoData sql;
		initStringInfo(&sql);
		appendStringInfo(&sql, "DELETE FROM %s t WHERE NOT EXISTS (SELECT 1 FROM pg_temp.iact_sync_seen s WHERE ",
						 r->tgt_qual);
		iact_sync_append_key_match(&sql, r, "s", "t");
		appendStringInfoChar(&sql, ')');
		if (r->ret_idx >= 0 && r->cutoff)
			appendStringInfo(&sql, " AND (t.%s >= $1 OR t.%s IS NULL)", quote_identifier(r->ret_col),
							 quote_identifier(r->ret_col));
		if (r->ret_idx >= 0 && r->cutoff)
		{
			Oid			t[1] = {r->cols[r->ret_idx].typid};
			Datum		a[1];

			a[0] = iact_sync_range_param(r, r->ret_idx, r->cutoff, &isnull);
			if (SPI_execute_with_args(sql.data, 1, t, a, NULL, false, 0) != SPI_OK_DELETE)
				elog(ERROR, "the delete of vanished rows failed");
		}
		else
			iact_sync_spi_exec(sql.data, SPI_OK_DELETE);
		r->n_deleted += SPI_processed;
		drop_seen_table(r);
	}

	/* never short: the counts of the synced range must agree */
	initStringInfo(&src);
	initStringInfo(&tgt);
	appendStringInfo(&src, "SELECT COUNT(*) FROM %s%s", r->src_qual, r->where_sql);
	appendStringInfo(&tgt, "SELECT count(*) FROM %s WHERE true", r->tgt_qual);
	if (r->wm_idx >= 0 && r->wm_from)
	{
		argtypes[nargs] = r->cols[r->wm_idx].typid;
		args[nargs] = iact_sync_range_param(r, r->wm_idx, r->wm_from, &isnull);
		appendStringInfo(&tgt, " AND %s >= $%d", quote_identifier(r->wm_col), ++nargs);
	}
	if (r->wm_idx >= 0 && r->wm_to)
	{
		appendStringInfo(&src, "%s %s <= %s", r->where_sql[0] ? " AND" : " WHERE",
						 my_ident(r->wm_col),
						 r->wm_temporal ? my_literal(r, r->wm_to) : my_integer(r, r->wm_to));
		argtypes[nargs] = r->cols[r->wm_idx].typid;
		args[nargs] = iact_sync_range_param(r, r->wm_idx, r->wm_to, &isnull);
		if (isnull)				/* a zero date as the last value */
			nulls[nargs] = 'n';
		appendStringInfo(&tgt, " AND %s <= $%d", quote_identifier(r->wm_col), ++nargs);
	}
	if (r->ret_idx >= 0 && r->cutoff)
	{
		argtypes[nargs] = r->cols[r->ret_idx].typid;
		args[nargs] = iact_sync_range_param(r, r->ret_idx, r->cutoff, &isnull);
		appendStringInfo(&tgt, " AND (%s >= $%d OR %s IS NULL)", quote_identifier(r->ret_col), nargs + 1,
						 quote_identifier(r->ret_col));
		nargs++;
	}
	v = my_scalar(r, src.data);
	r->source_count = v ? strtoll(v, NULL, 10) : -1;
	if (SPI_execute_with_args(tgt.data, nargs, argtypes, args, nulls, false, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not count the target rows");
	r->target_count = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc,
												  1, &isnull));
	if (r->wm_idx >= 0 && r->wm_to == NULL && r->wm_from == NULL)
		r->target_count = 0;	/* nothing read, no range: nothing to compare */

	if (r->source_count != r->n_read ||
		r->target_count != r->source_count - r->n_rejected)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_EXCEPTION),
				 errmsg("row counts of %s do not match after the sync", r->tgt_qual),
				 errdetail("The source has " INT64_FORMAT " rows in the synced range, " INT64_FORMAT
						   " were read, " INT64_FORMAT " rejected, and the target has " INT64_FORMAT ".",
						   r->source_count, r->n_read, r->n_rejected, r->target_count),
				 errhint("Without a watermark a full sync repairs the target; with one, rows deleted "
						 "from the source stay in the target: use a full sync (no watermark) for such tables.")));

	if (iact_my_exec(r->conn, "ROLLBACK") != 0)
		my_error(r, "ROLLBACK");
	if (!r->commit_batches)
		iact_sync_save_watermark(r);
	MemoryContextSwitchTo(old);
}

/* the whole run in one go (inside one subtransaction: atomic per table) */
void
iact_sync_step_all(SyncRun *r, void *arg)
{
	iact_sync_step_begin(r, NULL);
	while (!r->eof)
		iact_sync_step_batch(r, NULL);
	iact_sync_step_finish(r, NULL);
}

