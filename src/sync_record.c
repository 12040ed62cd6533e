/*-------------------------------------------------------------------------
 *
 * sync_record.c
 *	  The bookkeeping of one sync run (layer 4, see sync_engine.c): the
 *	  registry row it reads (iact.sync_tables), the run record it keeps up
 *	  to date (iact.sync_runs: status, counters, watermarks, how the rows
 *	  were written), the rejected values (iact.sync_rejects) and the
 *	  watermark it moves.  All of it is written as iact, never with the
 *	  target owner's rights.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "sync.h"

#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "lib/stringinfo.h"
#include "mb/pg_wchar.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"

/* copy the registry row (the current SPI result) into r->conf */
static void
registry_row(SyncRun *r, HeapTuple tup, TupleDesc td)
{
	SyncConf   *c = &r->conf;
	bool		isnull;
	Datum		d;
	Datum	   *elems;
	int			i;

	c->server_name = iact_sync_spi_text(tup, 1);
	c->src_schema = iact_sync_spi_text(tup, 2);
	c->src_table = iact_sync_spi_text(tup, 3);
	c->tgt_schema = iact_sync_spi_text(tup, 4);
	c->tgt_table = iact_sync_spi_text(tup, 5);
	c->tgt_qual = psprintf("%s.%s", quote_identifier(c->tgt_schema), quote_identifier(c->tgt_table));
	d = SPI_getbinval(tup, td, 6, &isnull);
	deconstruct_array(DatumGetArrayTypeP(d), TEXTOID, -1, false, TYPALIGN_INT, &elems, NULL, &c->nkeys);
	c->keys = palloc(sizeof(char *) * c->nkeys);
	for (i = 0; i < c->nkeys; i++)
		c->keys[i] = TextDatumGetCString(elems[i]);
	c->wm_col = iact_sync_spi_text(tup, 7);
	c->lookback = DatumGetInt64(SPI_getbinval(tup, td, 8, &isnull));
	c->batch_size = DatumGetInt32(SPI_getbinval(tup, td, 9, &isnull));
	c->retention_days = DatumGetInt32(SPI_getbinval(tup, td, 10, &isnull));
	c->ret_col = iact_sync_spi_text(tup, 11);
	c->last_wm = iact_sync_spi_text(tup, 12);
	d = SPI_getbinval(tup, td, 13, &isnull);
	c->tgt_oid = isnull ? InvalidOid : DatumGetObjectId(d);
}

/* read the table's registration into r->conf (in r->cxt) */
void
iact_sync_load_registry(SyncRun *r)
{
	SyncParams	p = {1, {INT4OID}, {Int32GetDatum(r->conf.table_id)}, {' '}};
	MemoryContext old;
	SyncAs		as;

	/* the target's oid: a 1.0 database has no such column (and no check) */
	r->conf.check_oid = get_attnum(get_relname_relid("sync_tables", get_namespace_oid("iact", false)),
								   "target_oid") != InvalidAttrNumber;
	iact_sync_as_iact(r, &as);
	if (iact_sync_spi_args(psprintf("SELECT server_name::text, source_schema, source_table, "
									"target_schema::text, target_table::text, key_columns, "
									"watermark_column, lookback, "
									"coalesce(batch_size, pg_catalog.current_setting('iact.sync_batch_size')::int4), "
									"retention_days, retention_column, last_watermark, %s "
									"FROM iact.sync_tables WHERE id = $1",
									r->conf.check_oid ? "target_oid::pg_catalog.oid" : "NULL::pg_catalog.oid"),
						   &p, SPI_OK_SELECT, 1, "reading iact.sync_tables") != 1)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("sync table %d is not registered", r->conf.table_id)));
	old = MemoryContextSwitchTo(r->cxt);
	registry_row(r, SPI_tuptable->vals[0], SPI_tuptable->tupdesc);
	MemoryContextSwitchTo(old);
	iact_sync_restore(&as);
}

/* a new run record (a run skipped is recorded finished); returns its id */
int64
iact_sync_insert_run(SyncRun *r, const char *status, const char *error)
{
	SyncParams	p = {5, {INT4OID, TEXTOID, TEXTOID, TEXTOID, TEXTOID}, {0}, {' ', ' ', ' ', ' ', ' '}};
	bool		isnull;
	SyncAs		as;
	int64		id;

	p.values[0] = Int32GetDatum(r->conf.table_id);
	p.values[1] = CStringGetTextDatum(r->conf.tgt_qual);
	p.values[2] = CStringGetTextDatum(status);
	p.values[3] = CStringGetTextDatum(r->conf.wm_col ? "incremental" : "full");
	if (error)
		p.values[4] = CStringGetTextDatum(error);
	else
		p.nulls[4] = 'n';
	iact_sync_as_iact(r, &as);
	(void) iact_sync_spi_args("INSERT INTO iact.sync_runs (table_id, target_table, status, mode, error, "
							  "finished_at) VALUES ($1, $2, $3, $4, $5, "
							  "CASE WHEN $3 = 'running' THEN NULL ELSE clock_timestamp() END) RETURNING id",
							  &p, SPI_OK_INSERT_RETURNING, 1, "inserting into iact.sync_runs");
	id = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	iact_sync_restore(&as);
	return id;
}

/* runs of the table left 'running' by a backend that died are over */
void
iact_sync_close_stale_runs(SyncRun *r)
{
	SyncParams	p = {1, {INT4OID}, {Int32GetDatum(r->conf.table_id)}, {' '}};
	SyncAs		as;

	iact_sync_as_iact(r, &as);
	(void) iact_sync_spi_args("UPDATE iact.sync_runs SET status = 'failed', finished_at = clock_timestamp(), "
							  "error = 'interrupted: the session running it ended before it finished' "
							  "WHERE table_id = $1 AND status = 'running'", &p, SPI_OK_UPDATE, 0,
							  "closing the runs left running in iact.sync_runs");
	iact_sync_restore(&as);
}

/* how the rows were written: directly, by statements (and why), or both; NULL: none */
static char *
write_path(SyncRun *r)
{
	SyncWriter *w = r->writer;

	if (w == NULL)
		return NULL;
	if (w->wrote_statements)
		return psprintf("%sstatements: %s", w->wrote_direct ? "direct and " : "",
						w->statements_reason ? w->statements_reason : "?");
	if (w->wrote_direct)
		return "direct";
	return NULL;
}

/* the run's record: its counters and status (status NULL: keep 'running') */
void
iact_sync_save_run(SyncRun *r, const char *status, const char *error)
{
	Oid			argtypes[15] = {INT8OID, TEXTOID, INT8OID, INT8OID, INT8OID, INT8OID,
	INT8OID, INT8OID, TEXTOID, TEXTOID, TEXTOID, INT8OID, INT8OID, TEXTOID, TEXTOID};
	const char *texts[15] = {NULL};
	Datum		args[15];
	char		nulls[15];
	int			i;
	MemoryContext cxt = CurrentMemoryContext;
	SyncAs		as;

	args[0] = Int64GetDatum(r->run_id);
	texts[1] = status ? status : "running";
	args[2] = Int64GetDatum(r->n.read);
	args[3] = Int64GetDatum(r->n.inserted);
	args[4] = Int64GetDatum(r->n.updated);
	args[5] = Int64GetDatum(r->n.deleted);
	args[6] = Int64GetDatum(r->n.rejected);
	args[7] = Int64GetDatum(r->n.purged);
	texts[8] = r->tgt.wm_from;
	texts[9] = r->src.wm_to;
	texts[10] = error;
	args[11] = Int64GetDatum(r->n.source);
	args[12] = Int64GetDatum(r->n.target);
	texts[13] = r->conf.commit_batches ? "batch commits" : "one transaction";
	texts[14] = write_path(r);
	memset(nulls, ' ', sizeof(nulls));
	for (i = 0; i < 15; i++)
		if (argtypes[i] == TEXTOID)
		{
			args[i] = texts[i] ? CStringGetTextDatum(texts[i]) : (Datum) 0;
			nulls[i] = texts[i] ? ' ' : 'n';
		}
	if (r->n.source < 0)
		nulls[11] = 'n';
	if (r->n.target < 0)
		nulls[12] = 'n';
	iact_sync_as_iact(r, &as);
	if (SPI_execute_with_args("UPDATE iact.sync_runs SET status = $2, "
							  "finished_at = CASE WHEN $2 = 'running' THEN NULL ELSE clock_timestamp() END, "
							  "rows_read = $3, rows_inserted = $4, rows_updated = $5, rows_deleted = $6, "
							  "rows_rejected = $7, rows_purged = $8, watermark_from = $9, "
							  "watermark_to = $10, error = $11, source_count = $12, target_count = $13, "
							  "transaction_mode = $14, write_path = $15 WHERE id = $1",
							  15, argtypes, args, nulls, false, 0) != SPI_OK_UPDATE)
		elog(ERROR, "could not update iact.sync_runs");
	iact_sync_restore(&as);
	MemoryContextSwitchTo(cxt);
}

/* the table's last watermark: watermark (NULL: none) */
void
iact_sync_reset_watermark(SyncRun *r, const char *watermark)
{
	SyncParams	p = {2, {INT4OID, TEXTOID}, {Int32GetDatum(r->conf.table_id), (Datum) 0}, {' ', 'n'}};
	SyncAs		as;

	if (watermark)
	{
		p.values[1] = CStringGetTextDatum(watermark);
		p.nulls[1] = ' ';
	}
	iact_sync_as_iact(r, &as);
	(void) iact_sync_spi_args("UPDATE iact.sync_tables SET last_watermark = $2 WHERE id = $1",
							  &p, SPI_OK_UPDATE, 0, "updating the watermark in iact.sync_tables");
	iact_sync_restore(&as);
}

/* the watermark of the last row read becomes the table's (if any was read) */
void
iact_sync_save_watermark(SyncRun *r)
{
	if (r->conf.wm_col == NULL || r->src.wm_to == NULL)
		return;
	iact_sync_reset_watermark(r, r->src.wm_to);
}

/* the insert into iact.sync_rejects: prepared (and executed) as iact, not as the owner */
void
iact_sync_prepare_rejects(SyncRun *r)
{
	Oid			rejtypes[6] = {INT8OID, TEXTOID, TEXTOID, TEXTOID, BYTEAOID, TEXTOID};
	SyncAs		as;

	iact_sync_as_iact(r, &as);
	r->reject_plan = iact_sync_spi_prepare("INSERT INTO iact.sync_rejects "
										   "(run_id, target_table, key, column_name, raw_value, reason) "
										   "VALUES ($1, $2, $3, $4, $5, $6)", 6, rejtypes, 0);
	iact_sync_restore(&as);
}

/* a printable key for a reject: col=value, ... (hex when not valid text) */
static char *
reject_key(SyncRun *r, char **vals, unsigned long *lens)
{
	StringInfoData s;
	int			i;

	initStringInfo(&s);
	for (i = 0; i < r->tgt.ncols; i++)
	{
		if (!r->tgt.cols[i].is_key)
			continue;
		appendStringInfo(&s, "%s%s=", s.len ? ", " : "", r->tgt.cols[i].name);
		if (vals[i] == NULL)
			appendStringInfoString(&s, "NULL");
		else if (lens[i] > 1024 * 1024)
			appendStringInfo(&s, "(%lu bytes)", lens[i]);
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

/*
 * A rejected source row (col: its bad column, or -1) into iact.sync_rejects.
 * What the record allocates (its key, its values) lives in r->reject_cxt,
 * reset here after each reject: a batch of thousands of rejects reuses the
 * same memory instead of growing the batch's context by about a kilobyte a
 * reject (memory that the allocator may hand back to the kernel at the
 * batch's reset and fault in again at the next batch).
 */
void
iact_sync_record_reject(SyncRun *r, char **vals, unsigned long *lens, int col, const char *reason)
{
	Datum		args[6];
	char		nulls[6] = {' ', ' ', ' ', ' ', ' ', ' '};
	SyncAs		as;
	MemoryContext old = MemoryContextSwitchTo(r->reject_cxt);

	args[0] = Int64GetDatum(r->run_id);
	args[1] = CStringGetTextDatum(r->conf.tgt_qual);
	args[2] = CStringGetTextDatum(reject_key(r, vals, lens));
	if (col >= 0)
	{
		args[3] = CStringGetTextDatum(r->tgt.cols[col].name);
		if (vals[col] != NULL && lens[col] <= IACT_SYNC_MAX_VALUE)
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
	iact_sync_as_iact(r, &as);
	(void) iact_sync_spi_plan(r->reject_plan, args, nulls, SPI_OK_INSERT,
							  "inserting into iact.sync_rejects");
	iact_sync_restore(&as);
	MemoryContextSwitchTo(old);
	MemoryContextReset(r->reject_cxt);
	r->n.rejected++;
}
