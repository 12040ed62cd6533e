/*-------------------------------------------------------------------------
 *
 * sync_engine.c
 *	  The sync engine: one registered table, one run, as three steps (begin,
 *	  batch, finish) that sync_run.c runs in subtransactions as the target's
 *	  owner.
 *
 * From a MariaDB row to a heap tuple (a design note for newcomers)
 * ----------------------------------------------------------------
 * The sync files are layers; each uses only the ones above it in this list
 * (and sync_security.c, sync_fdw.c, sync_grants.c, sync_remote.c, which
 * use none of them).  All state is one SyncRun (sync.h), split into what is
 * fixed for the run (conf, tgt, plan), the source stream (src), the
 * counters (n) and the writer's private state (writer).
 *
 *  1. Source (sync_source.c): a read-only, consistent-snapshot MariaDB
 *     transaction; the source's columns; the synced range as a WHERE clause
 *     (watermark minus lookback, retention cutoff); one unbuffered SELECT
 *     whose rows arrive as raw text, batch_size at a time (SyncBatch).
 *  2. Conversion (sync_types.c: one value; sync_convert.c: one batch): the
 *     raw values become Datums by attribute number of the target, with the
 *     type input functions looked up once per run; a value that does not
 *     convert makes its row a reject, found row by row and value by value
 *     in subtransactions when the whole batch fails.
 *  3. Writers (sync_target.c: shared SQL and the target's questions;
 *     sync_direct.c: writing through the table AM and the executor's index
 *     routines, with direct_write.c): one per strategy, behind SyncWriter's
 *     begin_batch / write_row / end_batch / finish.
 *       - SYNC_WRITE_LOAD (sync_write_load.c): the target was empty; rows are
 *         multi-inserted, or INSERTed from one array per batch.
 *       - SYNC_WRITE_MERGE (sync_merge.c): a full sync by one ordered key;
 *         the source is read in key order and each batch merged with the
 *         target's rows of its key range: insert, update what differs,
 *         delete what the source skipped; at the end the rows above the
 *         last key go.
 *       - SYNC_WRITE_UPSERT_SEEN (sync_write_upsert.c): another full sync;
 *         upsert by key, keys seen kept in a temporary table, the target's
 *         other keys deleted at the end.
 *       - SYNC_WRITE_UPSERT_INCREMENTAL (sync_write_upsert.c): upsert by key,
 *         each key looked up in its unique index; a rejected row's old
 *         version is deleted.
 *     Each writer writes directly when the target allows (a plain table
 *     without triggers, rules, RLS...; checked per batch), else by its
 *     statements; iact.sync_runs.write_path records which and why.
 *  4. Bookkeeping (sync_record.c): the registry row, the run record and its
 *     counters, the rejects, the watermark; always as iact.
 *  5. The steps (this file): decide_plan chooses the strategy once per
 *     run; begin opens the source, decides the plan, creates the writer and
 *     starts the stream; each batch step fetches, converts, records the
 *     rejects and hands the rows to the writer; finish lets the writer
 *     remove what vanished, purges past the retention, and checks that the
 *     source's and the target's counts of the range agree.
 *  6. The SQL entry point (sync_run.c): iact_sync_table, the lock, the run
 *     record, the owner's rights, the subtransactions and, for CALL
 *     iact.sync_run and the worker, a commit after every batch.
 *
 * Memory: the run's context (r->cxt) holds what lives for the run, the batch
 * context (r->batch_cxt) is reset before each batch, the reject context
 * (r->reject_cxt) after each reject recorded; the SPI calls go through
 * sync_target.c's wrappers, which come back in the caller's context.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "sync.h"

#include "access/table.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "lib/stringinfo.h"
#include "utils/builtins.h"
#include "utils/rel.h"

/* the upsert needs a unique index on exactly the key columns */
static void
check_key_index(SyncRun *r)
{
	Relation	rel = table_open(r->tgt.relid, AccessShareLock);
	Oid			idx = iact_sync_key_index(r, rel, false, NULL);

	table_close(rel, AccessShareLock);
	if (!OidIsValid(idx))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_COLUMN_REFERENCE),
				 errmsg("target table %s has no unique index on its key columns", r->conf.tgt_qual),
				 errhint("The sync upserts by key: add a primary key or unique index on the key columns.")));
}

/* does the target have no row at all? */
static bool
target_is_empty(SyncRun *r)
{
	bool		isnull;

	iact_sync_spi_exec(psprintf("SELECT NOT EXISTS (SELECT 1 FROM %s)", r->conf.tgt_qual), SPI_OK_SELECT);
	return DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
}

/* the key column a merge can follow (both sides order it the same way), or -1 */
static int
ordered_key(SyncRun *r)
{
	int			i;

	if (r->conf.nkeys != 1 || !iact_sync_merge_possible(r))
		return -1;
	for (i = 0; i < r->tgt.ncols; i++)
	{
		SyncColumn *c = &r->tgt.cols[i];

		if (c->is_key &&
			(c->kind == SYNC_KIND_NUMBER || c->kind == SYNC_KIND_DATE || c->kind == SYNC_KIND_DATE_UTC) &&
			(c->typid == INT2OID || c->typid == INT4OID || c->typid == INT8OID ||
			 c->typid == NUMERICOID || c->typid == DATEOID || c->typid == TIMESTAMPOID ||
			 c->typid == TIMESTAMPTZOID))
			return i;
	}
	return -1;
}

/*
 * How this run writes its rows (r->plan), and why: decided once, before the
 * first row.  An incremental table past its first run is not checked for
 * rows (an upsert is right either way, and the check can cost a scan over
 * the dead rows of the previous runs).
 */
static void
decide_plan(SyncRun *r)
{
	SyncPlan   *p = &r->plan;

	p->key_idx = -1;
	if (r->conf.wm_col && r->conf.last_wm)
	{
		p->strategy = SYNC_WRITE_UPSERT_INCREMENTAL;
		p->why = "an incremental run past the first: upsert by key";
		return;
	}
	p->target_was_empty = target_is_empty(r);
	if (p->target_was_empty)
	{
		p->strategy = SYNC_WRITE_LOAD;
		p->why = "the target was empty: every row is new";
	}
	else if (r->conf.wm_col)
	{
		p->strategy = SYNC_WRITE_UPSERT_INCREMENTAL;
		p->why = "an incremental run into a target with rows: upsert by key";
	}
	else if ((p->key_idx = ordered_key(r)) >= 0)
	{
		p->strategy = SYNC_WRITE_MERGE;
		p->why = "a full sync by one numeric or temporal key: merged in key order";
	}
	else
	{
		p->strategy = SYNC_WRITE_UPSERT_SEEN;
		p->why = "a full sync without the merge (not one numeric or temporal key column, "
			"or a target with partitions or inheritance children)";
	}
}

/* the plan's writer, its statements prepared */
static SyncWriter *
create_writer(SyncRun *r)
{
	switch (r->plan.strategy)
	{
		case SYNC_WRITE_LOAD:
			return iact_sync_load_writer(r);
		case SYNC_WRITE_MERGE:
			return iact_sync_merge_writer(r);
		case SYNC_WRITE_UPSERT_SEEN:
		case SYNC_WRITE_UPSERT_INCREMENTAL:
			return iact_sync_upsert_writer(r);
	}
	elog(ERROR, "unknown sync strategy %d", (int) r->plan.strategy);
	return NULL;
}

/*
 * Begin: connect, resolve the columns and the range, decide the plan, create
 * its writer, start streaming the source, record the run as started.
 */
void
iact_sync_step_begin(SyncRun *r, void *arg)
{
	MemoryContext old = MemoryContextSwitchTo(r->cxt);
	const char *order_by = NULL;
	List	   *names,
			   *dtypes,
			   *ctypes;

	iact_sync_source_open(r, &names, &dtypes, &ctypes);
	iact_sync_target_resolve(r, names, dtypes, ctypes);
	iact_sync_retention_cutoff(r);
	iact_sync_source_range(r);
	check_key_index(r);
	decide_plan(r);
	elog(DEBUG1, "sync of %s: %s", r->conf.tgt_qual, r->plan.why);
	r->writer = create_writer(r);
	iact_sync_prepare_rejects(r);
	if (r->conf.wm_col)
		order_by = r->conf.wm_col;
	else if (r->plan.strategy == SYNC_WRITE_MERGE)
		order_by = r->tgt.cols[r->plan.key_idx].name;
	iact_sync_source_stream(r, order_by);
	iact_sync_save_run(r, NULL, NULL);
	MemoryContextSwitchTo(old);
}

typedef struct ForgetArg
{
	char	  **vals;
	unsigned long *lens;
} ForgetArg;

static void
forget_row(SyncRun *r, void *arg)
{
	ForgetArg  *fa = (ForgetArg *) arg;

	r->writer->ops->forget_row(r->writer, fa->vals, fa->lens);
}

/* convert one batch, record its rejects, hand its rows to the writer */
static void
write_batch(SyncRun *r, SyncBatch *b)
{
	SyncWriter *w = r->writer;
	SyncConverted c;
	int			i;

	iact_sync_convert_batch(r, b, &c);
	for (i = 0; i < c.nrej; i++)
	{
		ForgetArg	fa = {b->vals[c.rej_row[i]], b->lens[c.rej_row[i]]};

		iact_sync_record_reject(r, fa.vals, fa.lens, c.rej_col[i], c.rej_reason[i]);
		if (w->ops->forget_row)
		{
			ErrorData  *err = iact_sync_in_subxact(r, r->batch_cxt, forget_row, &fa);

			if (err != NULL && !iact_sync_bad_value(err))
				iact_rethrow(err);
		}
	}
	if (c.nrows == 0)
		return;
	w->ops->begin_batch(w, c.nrows);
	for (i = 0; i < c.nrows; i++)
	{
		CHECK_FOR_INTERRUPTS();
		w->ops->write_row(w, c.values[i], c.nulls[i]);
	}
	w->ops->end_batch(w);
}

/* read up to batch_size rows and write them (in the batch's memory context) */
void
iact_sync_step_batch(SyncRun *r, void *arg)
{
	SyncBatch	b;
	MemoryContext old;

	MemoryContextReset(r->batch_cxt);
	old = MemoryContextSwitchTo(r->batch_cxt);
	iact_sync_source_fetch(r, &b);
	r->n.read += b.n;
	if (b.n > 0)
	{
		write_batch(r, &b);
		if (r->tgt.wm_idx >= 0 && b.vals[b.n - 1][r->tgt.wm_idx] != NULL)
		{
			/* the batch's last watermark replaces the previous one (no growth per batch) */
			char	   *prev = r->src.wm_to;

			r->src.wm_to = MemoryContextStrdup(r->cxt, b.vals[b.n - 1][r->tgt.wm_idx]);
			if (prev)
				pfree(prev);
		}
	}
	if (r->conf.commit_batches)
	{
		iact_sync_save_watermark(r);
		iact_sync_save_run(r, NULL, NULL);
	}
	MemoryContextSwitchTo(old);
}

/*
 * The target's count of the synced range: from the run's lower watermark to
 * the last one read, within the retention.
 */
static int64
target_count(SyncRun *r)
{
	StringInfoData sql;
	SyncParams	p = {0, {0}, {0}, {' ', ' ', ' ', ' '}};
	bool		isnull;
	int			wm = r->tgt.wm_idx;

	initStringInfo(&sql);
	appendStringInfo(&sql, "SELECT count(*) FROM %s WHERE true", r->conf.tgt_qual);
	if (wm >= 0 && r->tgt.wm_from)
	{
		p.types[p.n] = r->tgt.cols[wm].typid;
		p.values[p.n] = iact_sync_range_param(r, wm, r->tgt.wm_from, &isnull);
		appendStringInfo(&sql, " AND %s >= $%d", quote_identifier(r->conf.wm_col), ++p.n);
	}
	if (wm >= 0 && r->src.wm_to)
	{
		p.types[p.n] = r->tgt.cols[wm].typid;
		p.values[p.n] = iact_sync_range_param(r, wm, r->src.wm_to, &isnull);
		if (isnull)				/* a zero date as the last value */
			p.nulls[p.n] = 'n';
		appendStringInfo(&sql, " AND %s <= $%d", quote_identifier(r->conf.wm_col), ++p.n);
	}
	(void) iact_sync_append_retained(&sql, r, NULL, &p);
	(void) iact_sync_spi_args(sql.data, &p, SPI_OK_SELECT, 1, "counting the target rows");
	if (wm >= 0 && r->src.wm_to == NULL && r->tgt.wm_from == NULL)
		return 0;				/* nothing read, no range: nothing to compare */
	return DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
}

/* never short: the counts of the synced range must agree */
static void
check_counts(SyncRun *r)
{
	SyncCounts *n = &r->n;

	n->source = iact_sync_source_count(r);
	n->target = target_count(r);
	if (n->source != n->read || n->target != n->source - n->rejected)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_EXCEPTION),
				 errmsg("row counts of %s do not match after the sync", r->conf.tgt_qual),
				 errdetail("The source has " INT64_FORMAT " rows in the synced range, " INT64_FORMAT
						   " were read, " INT64_FORMAT " rejected, and the target has " INT64_FORMAT ".",
						   n->source, n->read, n->rejected, n->target),
				 errhint("Without a watermark a full sync repairs the target; with one, rows deleted "
						 "from the source stay in the target: use a full sync (no watermark) for such tables.")));
}

/* purge, remove what vanished, check the counts, end the MariaDB transaction */
void
iact_sync_step_finish(SyncRun *r, void *arg)
{
	MemoryContext old = MemoryContextSwitchTo(r->cxt);

	iact_sync_source_end_stream(r);
	if (r->tgt.ret_idx >= 0 && r->tgt.cutoff)
		iact_sync_purge(r);
	if (r->writer->ops->finish)
		r->writer->ops->finish(r->writer);
	check_counts(r);
	iact_sync_source_end(r);
	if (!r->conf.commit_batches)
		iact_sync_save_watermark(r);
	MemoryContextSwitchTo(old);
}

/* the whole run in one go (inside one subtransaction: atomic per table) */
void
iact_sync_step_all(SyncRun *r, void *arg)
{
	iact_sync_step_begin(r, NULL);
	while (!r->src.eof)
		iact_sync_step_batch(r, NULL);
	iact_sync_step_finish(r, NULL);
}

/* release what the run prepared (every exit of iact_sync_table) */
void
iact_sync_release(SyncRun *r)
{
	if (r->writer && r->writer->ops->release)
		r->writer->ops->release(r->writer);
	if (r->reject_plan)
		SPI_freeplan(r->reject_plan);
	r->reject_plan = NULL;
}
