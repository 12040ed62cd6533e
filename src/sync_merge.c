/*-------------------------------------------------------------------------
 *
 * sync_merge.c
 *	  The writer of a full sync by one ordered key (SYNC_WRITE_MERGE, layer
 *	  3c, see sync_engine.c): each batch of source rows (read ORDER BY the
 *	  key) is merged with the target's rows of the same key range, read
 *	  with one index range scan.  The merge decides, row by row in C, what
 *	  to insert, what to update (only rows whose stored values differ) and
 *	  what to delete (target rows the source no longer has).  Where the
 *	  target allows direct writes (sync_direct.c), a changed row is updated
 *	  by its tid as soon as the merge finds it and the new rows are
 *	  multi-inserted at the end; otherwise the writes are set-based
 *	  statements addressing the target rows by ctid, the rows travelling as
 *	  one array per column.  Either way no row costs an index probe, a
 *	  speculative insertion or a tuple lock.  Deletes are always statements;
 *	  after the last batch, the target's rows above the highest key read
 *	  (and those with a NULL key) go.
 *
 *	  If something else changes a target row between the read and the
 *	  write, the write misses it (statements) or finds it changed (direct)
 *	  and the batch fails with a serialization failure: never silently.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "sync.h"

#include "access/htup_details.h"
#include "catalog/pg_class.h"
#include "catalog/pg_inherits.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "lib/stringinfo.h"
#include "storage/itemptr.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/datum.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/typcache.h"

typedef struct MergeWriter
{
	SyncWriter	w;
	SyncColumn *kc;				/* the key column */
	int16		keylen;
	bool		keybyval;
	char		keyalign;
	FmgrInfo	key_cmp;
	/* prepared once per run */
	struct _SPI_plan *read_first_plan;
	struct _SPI_plan *read_next_plan;
	struct _SPI_plan *read_above_plan;
	struct _SPI_plan *insert_plan;
	struct _SPI_plan *update_plan;	/* NULL: only keys, nothing to update */
	struct _SPI_plan *delete_plan;
	Datum		prev_key;		/* the highest key of the previous batches */
	bool		have_prev_key;
	/* this batch */
	SyncDirect *d;
	Datum	  **values;
	bool	  **nulls;
	Datum	   *keys;
	int			n;
	/* the target rows the source no longer has, deleted batch_size at a time */
	ItemPointerData *deltid;
	Datum	   *delkey;
	int			ndel;
	MemoryContext delcxt;		/* their keys */
} MergeWriter;

/*
 * The merge addresses target rows by ctid, which is unique only within one
 * relation: the target must be a plain table without partitions or
 * inheritance children.  And every column's type needs an array type (the
 * rows are passed by column).  Other targets take the upsert.
 */
bool
iact_sync_merge_possible(SyncRun *r)
{
	int			i;

	if (get_rel_relkind(r->tgt.relid) != RELKIND_RELATION || has_subclass(r->tgt.relid))
		return false;
	for (i = 0; i < r->tgt.ncols; i++)
		if (!OidIsValid(get_array_type(r->tgt.cols[i].typid)))
			return false;
	return true;
}

/*
 * "unnest($1, $2, ...) AS u(v0, v1, ...)": for an update the tids (v0),
 * then the non-key columns; for an insert every column.  The parameters'
 * types (arrays) go to types[].
 */
static int
append_unnest(StringInfo sql, SyncRun *r, bool update, Oid *types)
{
	int			i,
				n = 0;

	appendStringInfoString(sql, "unnest(");
	if (update)
		types[n++] = TIDARRAYOID;
	for (i = 0; i < r->tgt.ncols; i++)
		if (!update || !r->tgt.cols[i].is_key)
			types[n++] = get_array_type(r->tgt.cols[i].typid);
	for (i = 0; i < n; i++)
		appendStringInfo(sql, "%s$%d", i ? ", " : "", i + 1);
	appendStringInfoString(sql, ") AS u(");
	for (i = 0; i < n; i++)
		appendStringInfo(sql, "%sv%d", i ? ", " : "", i);
	appendStringInfoChar(sql, ')');
	return n;
}

/*
 * The target's rows of a key range, in key order: ctid, then the columns.
 * Read through a cursor, batch_size rows at a time: planned for the first
 * rows (an ordered index scan rather than a bitmap scan and a sort).  And,
 * at the end, the rows above the highest key read.
 */
static void
prepare_reads(MergeWriter *mw)
{
	SyncRun    *r = mw->w.r;
	const char *key = quote_identifier(mw->kc->name);
	const char *q = r->conf.tgt_qual;
	char	   *cols = iact_sync_column_list(r, "", false, false);
	Oid			keytypes[2] = {mw->kc->typid, mw->kc->typid};

	mw->read_first_plan = iact_sync_spi_prepare(psprintf("SELECT ctid, %s FROM %s WHERE %s <= $1 ORDER BY %s",
														 cols, q, key, key), 1, keytypes,
												CURSOR_OPT_FAST_PLAN);
	mw->read_next_plan = iact_sync_spi_prepare(psprintf("SELECT ctid, %s FROM %s WHERE %s <= $1 AND %s > $2 "
														"ORDER BY %s", cols, q, key, key, key),
											   2, keytypes, CURSOR_OPT_FAST_PLAN);
	mw->read_above_plan = iact_sync_spi_prepare(psprintf("SELECT ctid, %s FROM %s WHERE %s > $1 ORDER BY %s",
														 key, q, key, key), 1, keytypes,
												CURSOR_OPT_FAST_PLAN);
}

/* the writes of a merged batch, prepared once per run */
static void
prepare_writes(MergeWriter *mw)
{
	SyncRun    *r = mw->w.r;
	Oid		   *types = palloc(sizeof(Oid) * (r->tgt.ncols + 2));
	int			ntypes;
	StringInfoData sql;
	SyncParams	p = {1, {TIDARRAYOID}};
	int			i,
				v;

	/* new rows: every column */
	initStringInfo(&sql);
	appendStringInfo(&sql, "INSERT INTO %s (%s) SELECT * FROM ", r->conf.tgt_qual,
					 iact_sync_column_list(r, "", false, false));
	ntypes = append_unnest(&sql, r, false, types);
	mw->insert_plan = iact_sync_spi_prepare(sql.data, ntypes, types, 0);

	/* changed rows: their tids, then the non-key columns */
	resetStringInfo(&sql);
	appendStringInfo(&sql, "UPDATE %s AS t SET ", r->conf.tgt_qual);
	for (i = 0, v = 1; i < r->tgt.ncols; i++)
		if (!r->tgt.cols[i].is_key)
		{
			appendStringInfo(&sql, "%s%s = u.v%d", v > 1 ? ", " : "",
							 quote_identifier(r->tgt.cols[i].name), v);
			v++;
		}
	appendStringInfoString(&sql, " FROM ");
	ntypes = append_unnest(&sql, r, true, types);
	appendStringInfoString(&sql, " WHERE t.ctid = u.v0");
	mw->update_plan = v > 1 ? iact_sync_spi_prepare(sql.data, ntypes, types, 0) : NULL;

	/* rows older than the retention cutoff were not read from the source: they stay */
	resetStringInfo(&sql);
	appendStringInfo(&sql, "DELETE FROM %s WHERE ctid = ANY ($1)", r->conf.tgt_qual);
	(void) iact_sync_append_retained(&sql, r, NULL, &p);
	mw->delete_plan = iact_sync_spi_prepare(sql.data, p.n, p.types, 0);
}

/* the same stored value under the key's comparison (numbers, dates, timestamps: no collation) */
static int
key_compare(MergeWriter *mw, Datum a, Datum b)
{
	return DatumGetInt32(FunctionCall2Coll(&mw->key_cmp, InvalidOid, a, b));
}

static ArrayType *
tid_array(ItemPointerData *tids, int n)
{
	Datum	   *d = palloc(sizeof(Datum) * n);
	int			i;

	for (i = 0; i < n; i++)
		d[i] = PointerGetDatum(&tids[i]);
	return construct_array(d, n, TIDOID, sizeof(ItemPointerData), false, TYPALIGN_SHORT);
}

/*
 * The selected rows' values of the selected columns, as one array per
 * column, into args[first...]; for an update (no keys) after the tids.
 */
static void
column_arrays(SyncRun *r, Datum **values, bool **nulls, int *sel, int nsel, bool update,
			  Datum *args)
{
	Datum	   *elems = palloc(sizeof(Datum) * Max(nsel, 1));
	bool	   *enulls = palloc(sizeof(bool) * Max(nsel, 1));
	int			dims[1] = {nsel};
	int			lbs[1] = {1};
	int			i,
				k,
				n = update ? 1 : 0;

	for (i = 0; i < r->tgt.ncols; i++)
	{
		Form_pg_attribute att = TupleDescAttr(r->tgt.tupdesc, r->tgt.cols[i].attnum - 1);

		if (update && r->tgt.cols[i].is_key)
			continue;
		for (k = 0; k < nsel; k++)
		{
			elems[k] = values[sel[k]][att->attnum - 1];
			enulls[k] = nulls[sel[k]][att->attnum - 1];
		}
		args[n++] = PointerGetDatum(construct_md_array(elems, enulls, 1, dims, lbs, att->atttypid,
													   att->attlen, att->attbyval, att->attalign));
	}
}

/* a delete that missed rows: those whose key is still there, within the cutoff, changed (40001) */
static void
check_missed_deletes(MergeWriter *mw, int n, uint64 done)
{
	SyncRun    *r = mw->w.r;
	StringInfoData sql;
	SyncParams	p = {1, {get_array_type(mw->kc->typid)}, {0}, {' '}};
	int64		left;
	bool		isnull;

	p.values[0] = PointerGetDatum(construct_array(mw->delkey, n, mw->kc->typid, mw->keylen,
												  mw->keybyval, mw->keyalign));
	initStringInfo(&sql);
	appendStringInfo(&sql, "SELECT count(*) FROM %s WHERE %s = ANY ($1)", r->conf.tgt_qual,
					 quote_identifier(mw->kc->name));
	(void) iact_sync_append_retained(&sql, r, NULL, &p);
	(void) iact_sync_spi_args(sql.data, &p, SPI_OK_SELECT, 1,
							  "looking for the rows the sync could not delete");
	left = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	SPI_freetuptable(SPI_tuptable);
	if (left > 0)
		ereport(ERROR,
				(errcode(ERRCODE_T_R_SERIALIZATION_FAILURE),
				 errmsg("rows of %s changed while the sync was deleting them", r->conf.tgt_qual),
				 errdetail("%d rows were to be deleted, " UINT64_FORMAT " were, " INT64_FORMAT
						   " are still there: they changed after they were read (or a BEFORE DELETE "
						   "trigger skipped them).", n, done, left),
				 errhint("Something else writes to the sync's target table; run the sync again.")));
}

/*
 * Delete the target rows collected in mw->deltid (those older than the
 * retention cutoff stay).  Fewer rows deleted than asked is fine when the
 * others are gone (e.g. an ON DELETE CASCADE from an earlier delete of this
 * run) or kept by the cutoff; a row whose key is still there, within the
 * cutoff, changed after it was read: 40001.  What this allocates goes with
 * a context of its own, as do the keys collected.
 */
static void
flush_deletes(MergeWriter *mw)
{
	SyncRun    *r = mw->w.r;
	MemoryContext tmp;
	MemoryContext old;
	Datum		args[2];
	bool		isnull;
	uint64		done;

	if (mw->ndel == 0)
		return;
	tmp = AllocSetContextCreate(CurrentMemoryContext, "iact sync delete", ALLOCSET_DEFAULT_SIZES);
	old = MemoryContextSwitchTo(tmp);
	args[0] = PointerGetDatum(tid_array(mw->deltid, mw->ndel));
	if (r->tgt.ret_idx >= 0 && r->tgt.cutoff)
		args[1] = iact_sync_cutoff_param(r, &isnull);	/* the plan's $2 */
	done = iact_sync_spi_plan(mw->delete_plan, args, NULL, SPI_OK_DELETE,
							  "the delete of vanished rows");
	if (done != (uint64) mw->ndel)
		check_missed_deletes(mw, mw->ndel, done);
	MemoryContextSwitchTo(old);
	MemoryContextDelete(tmp);
	r->n.deleted += done;
	MemoryContextReset(mw->delcxt);
	mw->ndel = 0;
}

/* a target row the source no longer has: deleted with the next batch_size of them */
static void
add_delete(MergeWriter *mw, ItemPointer tid, Datum key)
{
	MemoryContext old = MemoryContextSwitchTo(mw->delcxt);

	mw->deltid[mw->ndel] = *tid;
	mw->delkey[mw->ndel++] = datumCopy(key, mw->keybyval, mw->keylen);
	MemoryContextSwitchTo(old);
	if (mw->ndel >= Max(mw->w.r->conf.batch_size, 1))
		flush_deletes(mw);
}

/* the source must come in strictly ascending key order */
static void
check_order(MergeWriter *mw)
{
	int			i;

	for (i = 0; i < mw->n; i++)
		if ((i > 0 && key_compare(mw, mw->keys[i - 1], mw->keys[i]) >= 0) ||
			(i == 0 && mw->have_prev_key && key_compare(mw, mw->prev_key, mw->keys[0]) >= 0))
			ereport(ERROR,
					(errcode(ERRCODE_UNIQUE_VIOLATION),
					 errmsg("the source of %s has the key column \"%s\" twice or out of order",
							mw->w.r->conf.tgt_qual, mw->kc->name),
					 errdetail("A full sync reads the source ordered by its key, which must be unique."),
					 errhint("Register the table with key columns that are unique in the source.")));
}

/* does source row i differ from the target row tvals/tnulls (ctid first) in a non-key column? */
static bool
row_differs(MergeWriter *mw, int i, Datum *tvals, bool *tnulls)
{
	SyncRun    *r = mw->w.r;
	int			c;

	for (c = 0; c < r->tgt.ncols; c++)
	{
		AttrNumber	a = r->tgt.cols[c].attnum - 1;

		if (!r->tgt.cols[c].is_key &&
			!iact_sync_same_value(mw->values[i][a], mw->nulls[i][a], tvals[1 + c], tnulls[1 + c],
								  TupleDescAttr(r->tgt.tupdesc, a)))
			return true;
	}
	return false;
}

typedef struct MergeLists
{
	int		   *ins;			/* source rows to insert */
	int			nins;
	int		   *upd;			/* source rows to update, by statement */
	ItemPointerData *updtid;
	int			nupd;
} MergeLists;

/*
 * Merge one target row (ctid, then the columns) with the source rows from
 * *i on: the source rows below it are new, an equal key is compared (and
 * updated now, directly, or listed), a target key the source skipped goes.
 */
static void
merge_one(MergeWriter *mw, MergeLists *l, int *i, Datum *tvals, bool *tnulls)
{
	Datum		tkey = tvals[1 + mw->w.r->plan.key_idx];
	ItemPointer tid = (ItemPointer) DatumGetPointer(tvals[0]);
	int			cmp = -1;

	while (*i < mw->n && (cmp = key_compare(mw, mw->keys[*i], tkey)) < 0)
		l->ins[l->nins++] = (*i)++;
	if (*i >= mw->n || cmp != 0)
	{
		add_delete(mw, tid, tkey);
		return;
	}
	if (!row_differs(mw, *i, tvals, tnulls))
		;
	else if (mw->d != NULL)
	{
		/* now (the cursor does not see it); the stored key stays as it is */
		mw->values[*i][mw->kc->attnum - 1] = datumCopy(tkey, mw->keybyval, mw->keylen);
		iact_sync_direct_update(mw->d, tid, mw->values[*i], mw->nulls[*i]);
	}
	else
	{
		l->updtid[l->nupd] = *tid;
		l->upd[l->nupd++] = *i;
	}
	(*i)++;
}

/*
 * The target's rows of the batch's key range, in key order, merged as they
 * come: read through a cursor, batch_size at a time, each chunk's tuples
 * freed before the next (memory bounded by the batch size even when the
 * source lost millions of rows in between).
 */
static void
merge_target_rows(MergeWriter *mw, MergeLists *l)
{
	SyncRun    *r = mw->w.r;
	int			chunk = Max(r->conf.batch_size, 1);
	Datum	   *tvals = palloc(sizeof(Datum) * (r->tgt.ncols + 1));
	bool	   *tnulls = palloc(sizeof(bool) * (r->tgt.ncols + 1));
	Datum		args[2] = {mw->keys[mw->n - 1], mw->prev_key};
	Portal		portal;
	int			i = 0;

	portal = iact_sync_cursor_open(mw->have_prev_key ? mw->read_next_plan : mw->read_first_plan, args);
	for (;;)
	{
		int			j,
					ntgt;
		SPITupleTable *tt = iact_sync_cursor_fetch(portal, chunk, &ntgt);

		for (j = 0; j < ntgt; j++)
		{
			CHECK_FOR_INTERRUPTS();
			heap_deform_tuple(tt->vals[j], tt->tupdesc, tvals, tnulls);
			merge_one(mw, l, &i, tvals, tnulls);
		}
		SPI_freetuptable(tt);
		if (ntgt == 0)
			break;
	}
	SPI_cursor_close(portal);
	while (i < mw->n)
		l->ins[l->nins++] = i++;
}

/* the changed rows, by statement: every one must be found as it was read */
static void
update_listed(MergeWriter *mw, MergeLists *l)
{
	SyncRun    *r = mw->w.r;
	Datum	   *args = palloc(sizeof(Datum) * (r->tgt.ncols + 2));
	uint64		done;

	args[0] = PointerGetDatum(tid_array(l->updtid, l->nupd));
	column_arrays(r, mw->values, mw->nulls, l->upd, l->nupd, true, args);
	done = iact_sync_spi_plan(mw->update_plan, args, NULL, SPI_OK_UPDATE, "the update of the target");
	if (done != (uint64) l->nupd)
		ereport(ERROR,
				(errcode(ERRCODE_T_R_SERIALIZATION_FAILURE),
				 errmsg("rows of %s changed while the sync was updating them", r->conf.tgt_qual),
				 errdetail("%d rows were to be updated, " UINT64_FORMAT " were: the others changed after "
						   "they were read (or a BEFORE UPDATE trigger skipped them).",
						   l->nupd, done),
				 errhint("Something else writes to the sync's target table; run the sync again.")));
	r->n.updated += l->nupd;
}

/* the new rows: directly, or by one statement */
static void
insert_listed(MergeWriter *mw, MergeLists *l)
{
	SyncRun    *r = mw->w.r;
	Datum	   *args;
	int			i;

	if (mw->d != NULL)
	{
		for (i = 0; i < l->nins; i++)
			iact_sync_direct_insert(mw->d, mw->values[l->ins[i]], mw->nulls[l->ins[i]]);
		return;
	}
	args = palloc(sizeof(Datum) * (r->tgt.ncols + 2));
	column_arrays(r, mw->values, mw->nulls, l->ins, l->nins, false, args);
	r->n.inserted += iact_sync_spi_plan(mw->insert_plan, args, NULL, SPI_OK_INSERT,
									   "the insert into the target");
}

static void
merge_begin_batch(SyncWriter *w, int nrows)
{
	MergeWriter *mw = (MergeWriter *) w;

	mw->d = iact_sync_direct_open(w, false);
	if (mw->d == NULL)
		w->wrote_statements = true;
	mw->values = palloc(sizeof(Datum *) * nrows);
	mw->nulls = palloc(sizeof(bool *) * nrows);
	mw->keys = palloc(sizeof(Datum) * nrows);
	mw->n = 0;
}

static void
merge_write_row(SyncWriter *w, Datum *values, bool *nulls)
{
	MergeWriter *mw = (MergeWriter *) w;

	mw->values[mw->n] = values;
	mw->nulls[mw->n] = nulls;
	mw->keys[mw->n++] = values[mw->kc->attnum - 1];
}

/*
 * Merge the batch's rows (their keys strictly ascending) with the target's
 * rows between the previous batch's highest key and this batch's highest,
 * and write the difference.
 */
static void
merge_end_batch(SyncWriter *w)
{
	MergeWriter *mw = (MergeWriter *) w;
	SyncRun    *r = w->r;
	MergeLists	l = {0};
	MemoryContext old;

	check_order(mw);
	l.ins = palloc(sizeof(int) * mw->n);
	l.upd = palloc(sizeof(int) * mw->n);
	l.updtid = palloc(sizeof(ItemPointerData) * mw->n);
	merge_target_rows(mw, &l);
	flush_deletes(mw);
	if (l.nupd > 0)
		update_listed(mw, &l);
	if (l.nins > 0)
		insert_listed(mw, &l);
	if (mw->d != NULL)
		iact_sync_direct_close(mw->d);
	mw->d = NULL;

	/* the next batch starts above this one's highest key */
	old = MemoryContextSwitchTo(r->cxt);
	if (mw->have_prev_key && !mw->keybyval)
		pfree(DatumGetPointer(mw->prev_key));
	mw->prev_key = datumCopy(mw->keys[mw->n - 1], mw->keybyval, mw->keylen);
	mw->have_prev_key = true;
	MemoryContextSwitchTo(old);
}

/*
 * The target's rows above the highest key read are gone from the source.
 * They are read in key order through a cursor (an index range scan, whatever
 * the statistics say: a DELETE by the same condition is planned as a scan of
 * the whole table when the target has none) and deleted batch_size at a
 * time, behind the cursor, which does not see the deletes.
 */
static void
delete_above(MergeWriter *mw)
{
	Datum		args[1] = {mw->prev_key};
	Portal		portal = iact_sync_cursor_open(mw->read_above_plan, args);

	for (;;)
	{
		SPITupleTable *tt;
		int			n,
					j;

		CHECK_FOR_INTERRUPTS();
		tt = iact_sync_cursor_fetch(portal, Max(mw->w.r->conf.batch_size, 1), &n);
		for (j = 0; j < n; j++)
		{
			bool		isnull;
			ItemPointer tid = (ItemPointer) DatumGetPointer(SPI_getbinval(tt->vals[j], tt->tupdesc, 1, &isnull));

			add_delete(mw, tid, SPI_getbinval(tt->vals[j], tt->tupdesc, 2, &isnull));
		}
		SPI_freetuptable(tt);
		flush_deletes(mw);
		if (n == 0)
			break;
	}
	SPI_cursor_close(portal);
}

/*
 * The end of the sync: the target rows above the highest key read (all of
 * them when nothing was read) and those with a NULL key are gone from the
 * source, except those older than the retention cutoff (not read).
 */
static void
merge_finish(SyncWriter *w)
{
	MergeWriter *mw = (MergeWriter *) w;
	SyncRun    *r = w->r;
	StringInfoData sql;
	SyncParams	p = {0};

	initStringInfo(&sql);
	appendStringInfo(&sql, "DELETE FROM %s WHERE true", r->conf.tgt_qual);
	if (mw->have_prev_key)
	{
		delete_above(mw);
		/* a NULL key (a nullable unique column) matches no source row either */
		appendStringInfo(&sql, " AND %s IS NULL", quote_identifier(mw->kc->name));
	}
	(void) iact_sync_append_retained(&sql, r, NULL, &p);
	r->n.deleted += iact_sync_spi_args(sql.data, &p, SPI_OK_DELETE, 0, "the delete of vanished rows");
}

static void
merge_release(SyncWriter *w)
{
	MergeWriter *mw = (MergeWriter *) w;
	SPIPlanPtr *plans[6] = {&mw->read_first_plan, &mw->read_next_plan, &mw->read_above_plan,
	&mw->insert_plan, &mw->update_plan, &mw->delete_plan};
	int			i;

	for (i = 0; i < 6; i++)
		if (*plans[i])
		{
			SPI_freeplan(*plans[i]);
			*plans[i] = NULL;
		}
}

static const SyncWriterOps merge_ops = {
	.begin_batch = merge_begin_batch,
	.write_row = merge_write_row,
	.end_batch = merge_end_batch,
	.forget_row = NULL,			/* a key not written is deleted by the merge */
	.finish = merge_finish,
	.release = merge_release,
};

/* the merge writer of r->plan.key_idx, its statements prepared (in the run's memory) */
SyncWriter *
iact_sync_merge_writer(SyncRun *r)
{
	MergeWriter *mw = palloc0(sizeof(MergeWriter));
	int			chunk = Max(r->conf.batch_size, 1);
	TypeCacheEntry *tc;

	mw->w.ops = &merge_ops;
	mw->w.r = r;
	mw->kc = &r->tgt.cols[r->plan.key_idx];
	get_typlenbyvalalign(mw->kc->typid, &mw->keylen, &mw->keybyval, &mw->keyalign);
	tc = lookup_type_cache(mw->kc->typid, TYPECACHE_CMP_PROC_FINFO);
	if (!OidIsValid(tc->cmp_proc_finfo.fn_oid))
		elog(ERROR, "no comparison function for the key type of %s", r->conf.tgt_qual);
	fmgr_info_copy(&mw->key_cmp, &tc->cmp_proc_finfo, CurrentMemoryContext);
	mw->deltid = palloc(sizeof(ItemPointerData) * chunk);
	mw->delkey = palloc(sizeof(Datum) * chunk);
	mw->delcxt = AllocSetContextCreate(CurrentMemoryContext, "iact sync deleted keys",
									   ALLOCSET_SMALL_SIZES);
	/* the run's writer before its first plan: a prepare that fails leaves none behind */
	r->writer = &mw->w;
	prepare_reads(mw);
	prepare_writes(mw);
	return &mw->w;
}
