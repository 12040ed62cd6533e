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
#include "iact.h"

#include "access/htup_details.h"
#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "foreign/foreign.h"
#include "lib/stringinfo.h"
#include "nodes/makefuncs.h"
#include "mb/pg_wchar.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/resowner.h"
#include "utils/acl.h"
#include "utils/typcache.h"

#include "mariadb_client.h"

typedef struct SyncRun
{
	/* registry (iact.sync_tables) */
	int32		table_id;
	char	   *server_name;
	char	   *src_schema;
	char	   *src_table;
	char	   *tgt_schema;
	char	   *tgt_table;
	char	   *tgt_qual;		/* schema.table, quoted */
	char	  **keys;
	int			nkeys;
	char	   *wm_col;
	int64		lookback;
	int			batch_size;
	int			retention_days;
	char	   *ret_col;
	char	   *last_wm;
	bool		commit_batches;

	/* this run */
	int64		run_id;
	IactMyConn *conn;
	char	   *src_qual;		/* `db`.`table` */
	TupleDesc	tupdesc;		/* the target's row type */
	Oid			rowtype;
	Oid			arraytype;
	int16		rowlen;
	bool		rowbyval;
	char		rowalign;
	int			ncols;
	SyncColumn *cols;
	int			wm_idx;
	int			ret_idx;
	bool		wm_temporal;
	char	   *wm_from;
	char	   *wm_to;
	char	   *cutoff;
	char	   *where_sql;		/* " WHERE ..." or "" */
	SPIPlanPtr	apply_plan;
	SPIPlanPtr	reject_plan;
	bool		eof;
	int64		source_count;
	int64		target_count;
	int64		n_read,
				n_inserted,
				n_updated,
				n_deleted,
				n_rejected,
				n_purged;
	MemoryContext cxt;
	MemoryContext batch_cxt;
} SyncRun;

/* one batch of raw rows */
typedef struct SyncBatch
{
	int			n;
	char	 ***vals;
	unsigned long **lens;
} SyncBatch;

/* ---- small helpers ---- */

static char *
my_ident(const char *name)
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
	ereport(ERROR,
			(errcode(ERRCODE_CONNECTION_FAILURE),
			 errmsg("MariaDB server \"%s\": %s failed", r->server_name, what),
			 errdetail("MariaDB error %u: %s", iact_my_errno(r->conn), iact_my_error(r->conn)),
			 errhint("Nothing was taken as the end of the data; the run can be repeated.")));
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

static char *
spi_text(HeapTuple tup, int col)
{
	bool		isnull;
	Datum		d = SPI_getbinval(tup, SPI_tuptable->tupdesc, col, &isnull);

	return isnull ? NULL : TextDatumGetCString(d);
}

static void
spi_exec(const char *sql, int expected)
{
	int			rc = SPI_execute(sql, false, 0);

	if (rc != expected)
		elog(ERROR, "SPI_execute failed (%d): %s", rc, sql);
}

/* ---- the registry and the run record ---- */

static void
load_registry(SyncRun *r)
{
	Oid			argtypes[1] = {INT4OID};
	Datum		args[1] = {Int32GetDatum(r->table_id)};
	HeapTuple	tup;
	bool		isnull;
	Datum		d;
	MemoryContext old;

	if (SPI_execute_with_args("SELECT server_name::text, source_schema, source_table, "
							  "target_schema::text, target_table::text, key_columns, "
							  "watermark_column, lookback, "
							  "coalesce(batch_size, current_setting('iact.sync_batch_size')::int), "
							  "retention_days, retention_column, last_watermark "
							  "FROM iact.sync_tables WHERE id = $1 FOR UPDATE",
							  1, argtypes, args, NULL, false, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not read iact.sync_tables");
	if (SPI_processed != 1)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("sync table %d is not registered", r->table_id)));
	tup = SPI_tuptable->vals[0];
	old = MemoryContextSwitchTo(r->cxt);
	r->server_name = spi_text(tup, 1);
	r->src_schema = spi_text(tup, 2);
	r->src_table = spi_text(tup, 3);
	r->tgt_schema = spi_text(tup, 4);
	r->tgt_table = spi_text(tup, 5);
	r->tgt_qual = psprintf("%s.%s", quote_identifier(r->tgt_schema),
						   quote_identifier(r->tgt_table));
	d = SPI_getbinval(tup, SPI_tuptable->tupdesc, 6, &isnull);
	{
		Datum	   *elems;
		int			i;

		deconstruct_array(DatumGetArrayTypeP(d), TEXTOID, -1, false, TYPALIGN_INT,
						  &elems, NULL, &r->nkeys);
		r->keys = palloc(sizeof(char *) * r->nkeys);
		for (i = 0; i < r->nkeys; i++)
			r->keys[i] = TextDatumGetCString(elems[i]);
	}
	r->wm_col = spi_text(tup, 7);
	r->lookback = DatumGetInt64(SPI_getbinval(tup, SPI_tuptable->tupdesc, 8, &isnull));
	r->batch_size = DatumGetInt32(SPI_getbinval(tup, SPI_tuptable->tupdesc, 9, &isnull));
	r->retention_days = DatumGetInt32(SPI_getbinval(tup, SPI_tuptable->tupdesc, 10, &isnull));
	r->ret_col = spi_text(tup, 11);
	r->last_wm = spi_text(tup, 12);
	MemoryContextSwitchTo(old);
}

/* write the run's counters and status (status NULL: keep 'running') */
static void
save_run(SyncRun *r, const char *status, const char *error)
{
	Oid			argtypes[14] = {INT8OID, TEXTOID, INT8OID, INT8OID, INT8OID, INT8OID,
	INT8OID, INT8OID, TEXTOID, TEXTOID, TEXTOID, INT8OID, INT8OID, TEXTOID};
	Datum		args[14];
	char		nulls[14];
	int			i;

	memset(nulls, ' ', sizeof(nulls));
	args[0] = Int64GetDatum(r->run_id);
	args[1] = CStringGetTextDatum(status ? status : "running");
	args[2] = Int64GetDatum(r->n_read);
	args[3] = Int64GetDatum(r->n_inserted);
	args[4] = Int64GetDatum(r->n_updated);
	args[5] = Int64GetDatum(r->n_deleted);
	args[6] = Int64GetDatum(r->n_rejected);
	args[7] = Int64GetDatum(r->n_purged);
	args[8] = r->wm_from ? CStringGetTextDatum(r->wm_from) : (Datum) 0;
	args[9] = r->wm_to ? CStringGetTextDatum(r->wm_to) : (Datum) 0;
	args[10] = error ? CStringGetTextDatum(error) : (Datum) 0;
	args[11] = Int64GetDatum(r->source_count);
	args[12] = Int64GetDatum(r->target_count);
	args[13] = r->commit_batches ? CStringGetTextDatum("batch commits")
		: CStringGetTextDatum("one transaction");
	for (i = 8; i <= 10; i++)
		if (args[i] == (Datum) 0)
			nulls[i] = 'n';
	if (r->source_count < 0)
		nulls[11] = 'n';
	if (r->target_count < 0)
		nulls[12] = 'n';
	if (SPI_execute_with_args("UPDATE iact.sync_runs SET status = $2, "
							  "finished_at = CASE WHEN $2 = 'running' THEN NULL ELSE clock_timestamp() END, "
							  "rows_read = $3, rows_inserted = $4, rows_updated = $5, rows_deleted = $6, "
							  "rows_rejected = $7, rows_purged = $8, watermark_from = $9, "
							  "watermark_to = $10, error = $11, source_count = $12, target_count = $13, "
							  "transaction_mode = $14 WHERE id = $1",
							  14, argtypes, args, nulls, false, 0) != SPI_OK_UPDATE)
		elog(ERROR, "could not update iact.sync_runs");
}

static void
save_watermark(SyncRun *r)
{
	Oid			argtypes[2] = {INT4OID, TEXTOID};
	Datum		args[2] = {Int32GetDatum(r->table_id), (Datum) 0};

	if (r->wm_col == NULL || r->wm_to == NULL)
		return;
	args[1] = CStringGetTextDatum(r->wm_to);
	if (SPI_execute_with_args("UPDATE iact.sync_tables SET last_watermark = $2 WHERE id = $1",
							  2, argtypes, args, NULL, false, 0) != SPI_OK_UPDATE)
		elog(ERROR, "could not update iact.sync_tables");
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
	while ((rc = iact_my_fetch(r->conn, &row, &lens)) == 1)
	{
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

/* a comma-separated list of quoted target column names, optionally prefixed */
static char *
column_list(SyncRun *r, const char *prefix, bool keys_only, bool non_keys_only)
{
	StringInfoData s;
	int			i;

	initStringInfo(&s);
	for (i = 0; i < r->ncols; i++)
	{
		if ((keys_only && !r->cols[i].is_key) || (non_keys_only && r->cols[i].is_key))
			continue;
		appendStringInfo(&s, "%s%s%s", s.len ? ", " : "", prefix, quote_identifier(r->cols[i].name));
	}
	return s.data;
}

/* the upsert of one batch, given as one array of the target's row type */
static void
prepare_plans(SyncRun *r)
{
	StringInfoData sql;
	Oid			argtypes[1] = {r->arraytype};
	Oid			rejtypes[6] = {INT8OID, TEXTOID, TEXTOID, TEXTOID, BYTEAOID, TEXTOID};
	char	   *cols = column_list(r, "", false, false);
	char	   *keys = column_list(r, "", true, false);
	int			i;
	bool		has_non_keys = false;

	initStringInfo(&sql);
	appendStringInfoString(&sql, "WITH s AS MATERIALIZED (SELECT * FROM unnest($1) u)");
	if (!r->wm_col)
		appendStringInfo(&sql, ", k AS (INSERT INTO pg_temp.iact_sync_seen (%s) SELECT %s FROM s)",
						 keys, keys);
	appendStringInfo(&sql, ", up AS (INSERT INTO %s AS t (%s) SELECT %s FROM s ON CONFLICT (%s) ",
					 r->tgt_qual, cols, cols, keys);
	for (i = 0; i < r->ncols; i++)
		if (!r->cols[i].is_key)
			has_non_keys = true;
	if (has_non_keys)
	{
		bool		first = true;

		appendStringInfoString(&sql, "DO UPDATE SET ");
		for (i = 0; i < r->ncols; i++)
			if (!r->cols[i].is_key)
			{
				appendStringInfo(&sql, "%s%s = EXCLUDED.%s", first ? "" : ", ",
								 quote_identifier(r->cols[i].name), quote_identifier(r->cols[i].name));
				first = false;
			}
		appendStringInfo(&sql, " WHERE (%s) IS DISTINCT FROM (%s)",
						 column_list(r, "t.", false, true), column_list(r, "EXCLUDED.", false, true));
	}
	else
		appendStringInfoString(&sql, "DO NOTHING");
	appendStringInfoString(&sql, " RETURNING (t.xmax = 0) AS ins) "
						   "SELECT count(*) FILTER (WHERE ins), count(*) FILTER (WHERE NOT ins) FROM up");
	r->apply_plan = SPI_prepare(sql.data, 1, argtypes);
	if (r->apply_plan == NULL)
		elog(ERROR, "could not prepare the upsert of %s: %s", r->tgt_qual,
			 SPI_result_code_string(SPI_result));
	SPI_keepplan(r->apply_plan);

	r->reject_plan = SPI_prepare("INSERT INTO iact.sync_rejects "
								 "(run_id, target_table, key, column_name, raw_value, reason) "
								 "VALUES ($1, $2, $3, $4, $5, $6)", 6, rejtypes);
	if (r->reject_plan == NULL)
		elog(ERROR, "could not prepare the insert into iact.sync_rejects");
	SPI_keepplan(r->reject_plan);
}

/* ---- one batch ---- */

/* a printable key for a reject: col=value, ... (hex when not valid text) */
static char *
reject_key(SyncRun *r, char **vals, unsigned long *lens)
{
	StringInfoData s;
	int			i;

	initStringInfo(&s);
	for (i = 0; i < r->ncols; i++)
	{
		if (!r->cols[i].is_key)
			continue;
		appendStringInfo(&s, "%s%s=", s.len ? ", " : "", r->cols[i].name);
		if (vals[i] == NULL)
			appendStringInfoString(&s, "NULL");
		else if (memchr(vals[i], 0, lens[i]) == NULL &&
				 pg_verify_mbstr(PG_UTF8, vals[i], (int) lens[i], true) &&
				 GetDatabaseEncoding() == PG_UTF8)
			appendBinaryStringInfo(&s, vals[i], (int) lens[i]);
		else
		{
			unsigned long j;

			appendStringInfoString(&s, "\\x");
			for (j = 0; j < lens[i]; j++)
				appendStringInfo(&s, "%02x", (unsigned char) vals[i][j]);
		}
	}
	return s.data;
}

static void
record_reject(SyncRun *r, char **vals, unsigned long *lens, int col, const char *reason)
{
	Datum		args[6];
	char		nulls[6] = {' ', ' ', ' ', ' ', ' ', ' '};

	args[0] = Int64GetDatum(r->run_id);
	args[1] = CStringGetTextDatum(r->tgt_qual);
	args[2] = CStringGetTextDatum(reject_key(r, vals, lens));
	if (col >= 0)
	{
		args[3] = CStringGetTextDatum(r->cols[col].name);
		if (vals[col] != NULL)
		{
			bytea	   *b = palloc(lens[col] + VARHDRSZ);

			SET_VARSIZE(b, lens[col] + VARHDRSZ);
			memcpy(VARDATA(b), vals[col], lens[col]);
			args[4] = PointerGetDatum(b);
		}
		else
			nulls[4] = 'n';
	}
	else
	{
		nulls[3] = 'n';
		nulls[4] = 'n';
	}
	args[5] = CStringGetTextDatum(reason);
	if (SPI_execute_plan(r->reject_plan, args, nulls, false, 0) != SPI_OK_INSERT)
		elog(ERROR, "could not insert into iact.sync_rejects");
	r->n_rejected++;
}

/*
 * Convert one row into a composite Datum of the target's row type.  Returns
 * NULL on success, else the reason, with *badcol set.  May throw.
 */
static const char *
convert_row(SyncRun *r, char **vals, unsigned long *lens, Datum *result, int *badcol)
{
	int			natts = r->tupdesc->natts;
	Datum	   *values = palloc(sizeof(Datum) * natts);
	bool	   *nulls = palloc(sizeof(bool) * natts);
	int			i;
	HeapTuple	tup;

	for (i = 0; i < natts; i++)
		nulls[i] = true;
	for (i = 0; i < r->ncols; i++)
	{
		SyncColumn *col = &r->cols[i];
		const char *reason;

		reason = iact_sync_convert(col, vals[i], lens[i], &values[col->attnum - 1],
								   &nulls[col->attnum - 1]);
		if (reason != NULL)
		{
			*badcol = i;
			return reason;
		}
	}
	tup = heap_form_tuple(r->tupdesc, values, nulls);
	*result = heap_copy_tuple_as_datum(tup, r->tupdesc);
	return NULL;
}

/*
 * Run fn(arg) in a subtransaction.  Returns NULL on success, else the error
 * (copied into r->cxt; the subtransaction is rolled back).
 */
static ErrorData *
in_subxact(SyncRun *r, void (*fn) (SyncRun *, void *), void *arg)
{
	MemoryContext oldcxt = CurrentMemoryContext;
	ResourceOwner oldowner = CurrentResourceOwner;
	ErrorData  *edata = NULL;

	BeginInternalSubTransaction(NULL);
	MemoryContextSwitchTo(oldcxt);
	PG_TRY();
	{
		fn(r, arg);
		ReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(oldcxt);
		CurrentResourceOwner = oldowner;
	}
	PG_CATCH();
	{
		MemoryContextSwitchTo(r->cxt);
		edata = CopyErrorData();
		FlushErrorState();
		RollbackAndReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(oldcxt);
		CurrentResourceOwner = oldowner;
	}
	PG_END_TRY();
	return edata;
}

typedef struct ConvertState
{
	SyncBatch  *batch;
	Datum	   *rows;			/* converted rows */
	int			nrows;
	int			row;			/* for the one-row and one-column cases */
	int			col;
	int		   *rej_row;		/* rejects found without an error */
	int		   *rej_col;
	const char **rej_reason;
	int			nrej;
} ConvertState;

static void
convert_all(SyncRun *r, void *arg)
{
	ConvertState *cs = arg;
	int			i;

	cs->nrows = cs->nrej = 0;
	for (i = 0; i < cs->batch->n; i++)
	{
		int			badcol = -1;
		const char *reason;

		CHECK_FOR_INTERRUPTS();
		reason = convert_row(r, cs->batch->vals[i], cs->batch->lens[i], &cs->rows[cs->nrows], &badcol);
		if (reason == NULL)
			cs->nrows++;
		else
		{
			cs->rej_row[cs->nrej] = i;
			cs->rej_col[cs->nrej] = badcol;
			cs->rej_reason[cs->nrej++] = reason;
		}
	}
}

static void
convert_one_row(SyncRun *r, void *arg)
{
	ConvertState *cs = arg;
	int			badcol = -1;
	const char *reason;

	reason = convert_row(r, cs->batch->vals[cs->row], cs->batch->lens[cs->row],
						 &cs->rows[cs->nrows], &badcol);
	if (reason == NULL)
		cs->nrows++;
	else
	{
		cs->rej_row[cs->nrej] = cs->row;
		cs->rej_col[cs->nrej] = badcol;
		cs->rej_reason[cs->nrej++] = reason;
	}
}

static void
convert_one_value(SyncRun *r, void *arg)
{
	ConvertState *cs = arg;
	Datum		v;
	bool		isnull;

	(void) iact_sync_convert(&r->cols[cs->col], cs->batch->vals[cs->row][cs->col],
							 cs->batch->lens[cs->row][cs->col], &v, &isnull);
}

/* convert, upsert and account one batch of raw rows */
static void
apply_batch(SyncRun *r, SyncBatch *b)
{
	ConvertState cs;
	ErrorData  *err;
	int			i;

	memset(&cs, 0, sizeof(cs));
	cs.batch = b;
	cs.rows = palloc(sizeof(Datum) * b->n);
	cs.rej_row = palloc(sizeof(int) * b->n);
	cs.rej_col = palloc(sizeof(int) * b->n);
	cs.rej_reason = palloc(sizeof(char *) * b->n);

	/* the whole batch at once; on an error, row by row to find the culprits */
	err = in_subxact(r, convert_all, &cs);
	if (err != NULL)
	{
		cs.nrows = cs.nrej = 0;
		for (cs.row = 0; cs.row < b->n; cs.row++)
		{
			CHECK_FOR_INTERRUPTS();
			err = in_subxact(r, convert_one_row, &cs);
			if (err == NULL)
				continue;
			for (cs.col = 0; cs.col < r->ncols; cs.col++)
				if ((err = in_subxact(r, convert_one_value, &cs)) != NULL)
					break;
			cs.rej_row[cs.nrej] = cs.row;
			cs.rej_col[cs.nrej] = cs.col < r->ncols ? cs.col : -1;
			cs.rej_reason[cs.nrej++] = err ? err->message : "the row could not be formed";
		}
	}
	for (i = 0; i < cs.nrej; i++)
		record_reject(r, b->vals[cs.rej_row[i]], b->lens[cs.rej_row[i]], cs.rej_col[i],
					  cs.rej_reason[i]);

	if (cs.nrows > 0)
	{
		ArrayType  *arr = construct_array(cs.rows, cs.nrows, r->rowtype, r->rowlen,
										  r->rowbyval, r->rowalign);
		Datum		args[1] = {PointerGetDatum(arr)};
		bool		isnull;

		if (SPI_execute_plan(r->apply_plan, args, NULL, false, 0) != SPI_OK_SELECT ||
			SPI_processed != 1)
			elog(ERROR, "the upsert into %s failed", r->tgt_qual);
		r->n_inserted += DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0],
													 SPI_tuptable->tupdesc, 1, &isnull));
		r->n_updated += DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0],
													SPI_tuptable->tupdesc, 2, &isnull));
		SPI_freetuptable(SPI_tuptable);
	}
}

/* ---- the steps of a run ---- */

static void
step_begin(SyncRun *r, void *arg)
{
	char	   *dbname = NULL;
	ForeignServer *server = GetForeignServerByName(r->server_name, false);
	StringInfoData sql;
	List	   *conds = NIL;
	ListCell   *lc;
	MemoryContext old = MemoryContextSwitchTo(r->cxt);

	if (pg_foreign_server_aclcheck(server->serverid, GetUserId(), ACL_USAGE) != ACLCHECK_OK)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied for foreign server %s", r->server_name)));
	r->conn = iact_sync_connect(server->serverid, &dbname);
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
	if (r->wm_col)
		conds = lappend(conds, psprintf("%s IS NOT NULL", my_ident(r->wm_col)));
	if (r->wm_col && r->last_wm)
	{
		char	   *q;

		if (r->wm_temporal)
			q = psprintf("SELECT CAST(%s AS DATETIME(6)) - INTERVAL " INT64_FORMAT " SECOND",
						 my_literal(r, r->last_wm), r->lookback);
		else
			q = psprintf("SELECT CAST(%s AS DECIMAL(65,0)) - " INT64_FORMAT,
						 my_literal(r, r->last_wm), r->lookback);
		r->wm_from = my_scalar(r, q);
		if (r->wm_from == NULL)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("the last watermark of %s is not a valid value", r->tgt_qual)));
		conds = lappend(conds, psprintf("%s >= %s", my_ident(r->wm_col),
										r->wm_temporal ? my_literal(r, r->wm_from) : r->wm_from));
	}
	if (r->ret_col && r->retention_days > 0)
	{
		Oid			argtypes[1] = {INT4OID};
		Datum		args[1] = {Int32GetDatum(r->retention_days)};

		if (SPI_execute_with_args("SELECT to_char((now() AT TIME ZONE 'UTC') - make_interval(days => $1), "
								  "'YYYY-MM-DD HH24:MI:SS')", 1, argtypes, args, NULL, true, 1) != SPI_OK_SELECT)
			elog(ERROR, "could not compute the retention cutoff");
		r->cutoff = spi_text(SPI_tuptable->vals[0], 1);
		conds = lappend(conds, psprintf("%s >= %s", my_ident(r->ret_col), my_literal(r, r->cutoff)));
	}
	initStringInfo(&sql);
	foreach(lc, conds)
		appendStringInfo(&sql, "%s%s", foreach_current_index(lc) == 0 ? " WHERE " : " AND ",
						 (char *) lfirst(lc));
	r->where_sql = sql.data;

	if (!r->wm_col)
	{
		char	   *keys = column_list(r, "", true, false);
		bool		isnull;

		spi_exec("SELECT to_regclass('pg_temp.iact_sync_seen') IS NOT NULL", SPI_OK_SELECT);
		if (DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull)))
			spi_exec("DROP TABLE pg_temp.iact_sync_seen", SPI_OK_UTILITY);
		spi_exec(psprintf("CREATE TEMP TABLE iact_sync_seen AS SELECT %s FROM %s WITH NO DATA",
						  keys, r->tgt_qual), SPI_OK_UTILITY);
	}
	prepare_plans(r);

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
		if (iact_my_query(r->conn, sql.data, &ncols) != 0)
			my_error(r, "the SELECT of the source rows");
	}
	save_run(r, NULL, NULL);
	MemoryContextSwitchTo(old);
}

/* read up to batch_size rows and apply them */
static void
step_batch(SyncRun *r, void *arg)
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
		apply_batch(r, &b);
		if (r->wm_idx >= 0 && b.vals[b.n - 1][r->wm_idx] != NULL)
		{
			MemoryContextSwitchTo(r->cxt);
			r->wm_to = pstrdup(b.vals[b.n - 1][r->wm_idx]);
		}
	}
	MemoryContextSwitchTo(old);
	if (r->commit_batches)
	{
		save_watermark(r);
		save_run(r, NULL, NULL);
	}
}

static Datum
range_param(SyncRun *r, int idx, const char *text, bool *isnull)
{
	Datum		v;
	const char *reason = iact_sync_convert(&r->cols[idx], pstrdup(text), strlen(text), &v, isnull);

	if (reason != NULL)
		elog(ERROR, "invalid range bound \"%s\": %s", text, reason);
	return v;
}

/* purge, delete, count check, end the MariaDB transaction */
static void
step_finish(SyncRun *r, void *arg)
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
	{
		Oid			t[2] = {r->cols[r->ret_idx].typid, INT4OID};
		Datum		a[2];
		char	   *sql = psprintf("DELETE FROM %s WHERE ctid = ANY (ARRAY(SELECT ctid FROM %s "
								   "WHERE %s < $1 LIMIT $2))", r->tgt_qual, r->tgt_qual,
								   quote_identifier(r->ret_col));

		a[0] = range_param(r, r->ret_idx, r->cutoff, &isnull);
		a[1] = Int32GetDatum(r->batch_size);
		for (;;)
		{
			CHECK_FOR_INTERRUPTS();
			if (SPI_execute_with_args(sql, 2, t, a, NULL, false, 0) != SPI_OK_DELETE)
				elog(ERROR, "the retention purge of %s failed", r->tgt_qual);
			r->n_purged += SPI_processed;
			if (SPI_processed == 0)
				break;
		}
	}

	/* full comparison: what the source no longer has goes */
	if (!r->wm_col)
	{
		StringInfoData sql;
		int			i;
		bool		first = true;

		initStringInfo(&sql);
		appendStringInfo(&sql, "DELETE FROM %s t WHERE NOT EXISTS (SELECT 1 FROM pg_temp.iact_sync_seen s WHERE ",
						 r->tgt_qual);
		for (i = 0; i < r->ncols; i++)
			if (r->cols[i].is_key)
			{
				appendStringInfo(&sql, "%ss.%s = t.%s", first ? "" : " AND ",
								 quote_identifier(r->cols[i].name), quote_identifier(r->cols[i].name));
				first = false;
			}
		appendStringInfoChar(&sql, ')');
		if (r->ret_idx >= 0 && r->cutoff)
			appendStringInfo(&sql, " AND t.%s >= $1", quote_identifier(r->ret_col));
		if (r->ret_idx >= 0 && r->cutoff)
		{
			Oid			t[1] = {r->cols[r->ret_idx].typid};
			Datum		a[1];

			a[0] = range_param(r, r->ret_idx, r->cutoff, &isnull);
			if (SPI_execute_with_args(sql.data, 1, t, a, NULL, false, 0) != SPI_OK_DELETE)
				elog(ERROR, "the delete of vanished rows failed");
		}
		else
			spi_exec(sql.data, SPI_OK_DELETE);
		r->n_deleted += SPI_processed;
		spi_exec("DROP TABLE pg_temp.iact_sync_seen", SPI_OK_UTILITY);
	}

	/* never short: the counts of the synced range must agree */
	initStringInfo(&src);
	initStringInfo(&tgt);
	appendStringInfo(&src, "SELECT COUNT(*) FROM %s%s", r->src_qual, r->where_sql);
	appendStringInfo(&tgt, "SELECT count(*) FROM %s WHERE true", r->tgt_qual);
	if (r->wm_idx >= 0 && r->wm_from)
	{
		argtypes[nargs] = r->cols[r->wm_idx].typid;
		args[nargs] = range_param(r, r->wm_idx, r->wm_from, &isnull);
		appendStringInfo(&tgt, " AND %s >= $%d", quote_identifier(r->wm_col), ++nargs);
	}
	if (r->wm_idx >= 0 && r->wm_to)
	{
		appendStringInfo(&src, "%s %s <= %s", r->where_sql[0] ? " AND" : " WHERE",
						 my_ident(r->wm_col),
						 r->wm_temporal ? my_literal(r, r->wm_to) : r->wm_to);
		argtypes[nargs] = r->cols[r->wm_idx].typid;
		args[nargs] = range_param(r, r->wm_idx, r->wm_to, &isnull);
		if (isnull)				/* a zero date as the last value */
			nulls[nargs] = 'n';
		appendStringInfo(&tgt, " AND %s <= $%d", quote_identifier(r->wm_col), ++nargs);
	}
	if (r->ret_idx >= 0 && r->cutoff)
	{
		argtypes[nargs] = r->cols[r->ret_idx].typid;
		args[nargs] = range_param(r, r->ret_idx, r->cutoff, &isnull);
		appendStringInfo(&tgt, " AND %s >= $%d", quote_identifier(r->ret_col), ++nargs);
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
		save_watermark(r);
	MemoryContextSwitchTo(old);
}

/* the whole run in one go (inside one subtransaction: atomic per table) */
static void
step_all(SyncRun *r, void *arg)
{
	step_begin(r, NULL);
	while (!r->eof)
		step_batch(r, NULL);
	step_finish(r, NULL);
}

/* ---- the entry point ---- */

static int64
insert_run(SyncRun *r, const char *status, const char *error)
{
	Oid			argtypes[5] = {INT4OID, TEXTOID, TEXTOID, TEXTOID, TEXTOID};
	Datum		args[5];
	char		nulls[5] = {' ', ' ', ' ', ' ', ' '};
	bool		isnull;

	args[0] = Int32GetDatum(r->table_id);
	args[1] = CStringGetTextDatum(r->tgt_qual);
	args[2] = CStringGetTextDatum(status);
	args[3] = CStringGetTextDatum(r->wm_col ? "incremental" : "full");
	if (error)
		args[4] = CStringGetTextDatum(error);
	else
		nulls[4] = 'n';
	if (SPI_execute_with_args("INSERT INTO iact.sync_runs (table_id, target_table, status, mode, error, "
							  "finished_at) VALUES ($1, $2, $3, $4, $5, "
							  "CASE WHEN $3 = 'running' THEN NULL ELSE clock_timestamp() END) RETURNING id",
							  5, argtypes, args, nulls, false, 1) != SPI_OK_INSERT_RETURNING)
		elog(ERROR, "could not insert into iact.sync_runs");
	return DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
}

static bool
try_lock(SyncRun *r)
{
	bool		isnull;
	char	   *sql = psprintf("SELECT %s(%d, %d)",
							   r->commit_batches ? "pg_try_advisory_lock" : "pg_try_advisory_xact_lock",
							   IACT_LOCK_SYNC_CLASS, r->table_id);

	spi_exec(sql, SPI_OK_SELECT);
	return DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
}

static const char *
error_text(ErrorData *e)
{
	if (e->detail)
		return psprintf("%s (%s)", e->message, e->detail);
	return e->message;
}

int64
iact_sync_table(int32 table_id, bool commit_batches)
{
	SyncRun    *r;
	MemoryContext cxt;
	MemoryContext callercxt = CurrentMemoryContext;
	int64		run_id = 0;
	volatile bool locked = false;

	cxt = AllocSetContextCreate(TopMemoryContext, "iact sync run", ALLOCSET_DEFAULT_SIZES);
	r = MemoryContextAllocZero(cxt, sizeof(SyncRun));
	r->cxt = cxt;
	r->batch_cxt = AllocSetContextCreate(cxt, "iact sync batch", ALLOCSET_DEFAULT_SIZES);
	r->table_id = table_id;
	r->commit_batches = commit_batches;
	r->source_count = r->target_count = -1;

	if (SPI_connect_ext(commit_batches ? SPI_OPT_NONATOMIC : 0) != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	PG_TRY();
	{
		MemoryContextSwitchTo(cxt);
		load_registry(r);
		locked = try_lock(r);
		if (!locked)
		{
			r->run_id = insert_run(r, "skipped", "another run of this table is in progress");
			if (commit_batches)
				SPI_commit();
		}
		else
		{
			ErrorData  *err = NULL;

			/* runs left 'running' by a backend that died are over */
			{
				Oid			t[1] = {INT4OID};
				Datum		a[1] = {Int32GetDatum(table_id)};

				SPI_execute_with_args("UPDATE iact.sync_runs SET status = 'failed', finished_at = clock_timestamp(), "
									  "error = 'interrupted: the session running it ended before it finished' "
									  "WHERE table_id = $1 AND status = 'running'", 1, t, a, NULL, false, 0);
			}
			r->run_id = insert_run(r, "running", NULL);
			if (commit_batches)
			{
				SPI_commit();
				MemoryContextSwitchTo(cxt);
				err = in_subxact(r, step_begin, NULL);
				SPI_commit();
				while (err == NULL && !r->eof)
				{
					err = in_subxact(r, step_batch, NULL);
					SPI_commit();
				}
				if (err == NULL)
					err = in_subxact(r, step_finish, NULL);
			}
			else
			{
				err = in_subxact(r, step_all, NULL);
				if (err != NULL)
				{
					/* atomic per table: nothing of this table's batches stays */
					r->n_inserted = r->n_updated = r->n_deleted = r->n_purged = 0;
					r->n_rejected = 0;
				}
			}
			MemoryContextSwitchTo(cxt);
			if (err != NULL)
			{
				ereport(WARNING,
						(errmsg("sync of %s failed: %s", r->tgt_qual, err->message),
						 err->detail ? errdetail_internal("%s", err->detail) : 0));
				save_run(r, "failed", error_text(err));
			}
			else
				save_run(r, r->n_rejected > 0 ? "partial" : "success", NULL);
			if (commit_batches)
				SPI_commit();
		}
	}
	PG_FINALLY();
	{
		if (r->conn)
			iact_my_close(r->conn);
		r->conn = NULL;
		if (r->apply_plan)
			SPI_freeplan(r->apply_plan);
		if (r->reject_plan)
			SPI_freeplan(r->reject_plan);
		if (locked && commit_batches)
			DirectFunctionCall2(pg_advisory_unlock_int4, Int32GetDatum(IACT_LOCK_SYNC_CLASS),
								Int32GetDatum(table_id));
		run_id = r->run_id;
		MemoryContextSwitchTo(callercxt);
		MemoryContextDelete(cxt);
	}
	PG_END_TRY();
	SPI_finish();
	MemoryContextSwitchTo(callercxt);
	return run_id;
}
