/*-------------------------------------------------------------------------
 *
 * sync_write_load.c
 *	  The writer of a first load (SYNC_WRITE_LOAD, layer 3c, see
 *	  sync_engine.c): the target was empty when the run began, so every row
 *	  is new and nothing is compared or removed.  Directly, the rows go in
 *	  with the multi-insert COPY uses (sync_direct.c); otherwise one INSERT
 *	  per batch takes the batch as one array of the target's row type.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "sync.h"

#include "executor/spi.h"

typedef struct LoadWriter
{
	SyncWriter	w;
	struct _SPI_plan *insert_plan;	/* INSERT ... SELECT ... FROM unnest($1) */
	SyncDirect *d;				/* this batch's direct write, or NULL */
	Datum	   *rows;			/* else its rows (composites) */
	int			nrows;
} LoadWriter;

static void
load_begin_batch(SyncWriter *w, int nrows)
{
	LoadWriter *lw = (LoadWriter *) w;

	lw->d = iact_sync_direct_open(w, false);
	if (lw->d == NULL)
	{
		w->wrote_statements = true;
		lw->rows = palloc(sizeof(Datum) * nrows);
		lw->nrows = 0;
	}
}

static void
load_write_row(SyncWriter *w, Datum *values, bool *nulls)
{
	LoadWriter *lw = (LoadWriter *) w;

	if (lw->d)
		iact_sync_direct_insert(lw->d, values, nulls);
	else
		lw->rows[lw->nrows++] = iact_sync_row_datum(w->r, values, nulls);
}

static void
load_end_batch(SyncWriter *w)
{
	LoadWriter *lw = (LoadWriter *) w;
	SyncRun    *r = w->r;
	Datum		args[1];
	uint64		n;

	if (lw->d)
	{
		iact_sync_direct_close(lw->d);
		lw->d = NULL;
		return;
	}
	args[0] = iact_sync_rows_array(r, lw->rows, lw->nrows);
	n = iact_sync_spi_plan(lw->insert_plan, args, NULL, SPI_OK_INSERT, "the insert into the target");
	/* a trigger routing an inheritance parent's rows to its children returns none */
	r->n.inserted += r->tgt.inherits ? (uint64) lw->nrows : n;
}

static void
load_release(SyncWriter *w)
{
	LoadWriter *lw = (LoadWriter *) w;

	if (lw->insert_plan)
		SPI_freeplan(lw->insert_plan);
	lw->insert_plan = NULL;
}

static const SyncWriterOps load_ops = {
	.begin_batch = load_begin_batch,
	.write_row = load_write_row,
	.end_batch = load_end_batch,
	.forget_row = NULL,			/* nothing of a rejected row is in the target */
	.finish = NULL,				/* nothing was there to vanish */
	.release = load_release,
};

/* the first load's writer, its statement prepared (in the run's memory) */
SyncWriter *
iact_sync_load_writer(SyncRun *r)
{
	LoadWriter *lw = palloc0(sizeof(LoadWriter));
	char	   *cols = iact_sync_column_list(r, "", false, false);
	Oid			argtypes[1] = {r->tgt.arraytype};

	lw->w.ops = &load_ops;
	lw->w.r = r;
	lw->insert_plan = iact_sync_spi_prepare(psprintf("INSERT INTO %s (%s) SELECT %s FROM unnest($1) u",
													 r->conf.tgt_qual, cols, cols),
											1, argtypes, 0);
	return &lw->w;
}
