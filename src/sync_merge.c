/*-------------------------------------------------------------------------
 *
 * sync_merge.c
 *	  Full sync by one ordered key: each batch of source rows (read ORDER BY
 *	  the key) is merged with the target's rows of the same key range, read
 *	  with one index range scan.  The merge decides, row by row in C, what
 *	  to insert, what to update (only rows whose stored values differ) and
 *	  what to delete (target rows the source no longer has).  Where the
 *	  target allows direct writes (sync_direct.c), a changed row is updated
 *	  by its tid as soon as the merge finds it and the new rows are
 *	  multi-inserted at the end; otherwise the writes are set-based
 *	  statements addressing the target rows by ctid, the rows travelling as
 *	  one array per column.  Either way no row costs an index probe, a
 *	  speculative insertion or a tuple lock.  Deletes are always statements.
 *
 *	  If something else changes a target row between the read and the
 *	  write, the write misses it (statements) or finds it changed (direct)
 *	  and the batch fails with a serialization failure: never silently.
 *
 *-------------------------------------------------------------------------
 */
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

static SPIPlanPtr
prepare_kept(const char *sql, int nargs, Oid *argtypes, int cursor_options)
{
	SPIPlanPtr	plan = SPI_prepare_cursor(sql, nargs, argtypes, cursor_options);

	if (plan == NULL)
		elog(ERROR, "could not prepare \"%s\": %s", sql, SPI_result_code_string(SPI_result));
	SPI_keepplan(plan);
	return plan;
}

/*
 * The merge addresses target rows by ctid, which is unique only within one
 * relation: the target must be a plain table without partitions or
 * inheritance children.  And every column's type needs an array type (the
 * rows are passed by column).  Other targets take the upsert path.
 */
bool
iact_sync_merge_possible(SyncRun *r)
{
	int			i;

	if (get_rel_relkind(r->tgt_relid) != RELKIND_RELATION || has_subclass(r->tgt_relid))
		return false;
	for (i = 0; i < r->ncols; i++)
		if (!OidIsValid(get_array_type(r->cols[i].typid)))
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
	for (i = 0; i < r->ncols; i++)
		if (!update || !r->cols[i].is_key)
			types[n++] = get_array_type(r->cols[i].typid);
	for (i = 0; i < n; i++)
		appendStringInfo(sql, "%s$%d", i ? ", " : "", i + 1);
	appendStringInfoString(sql, ") AS u(");
	for (i = 0; i < n; i++)
		appendStringInfo(sql, "%sv%d", i ? ", " : "", i);
	appendStringInfoChar(sql, ')');
	return n;
}

/* the statements of a merged batch, prepared once per run */
void
iact_sync_merge_prepare(SyncRun *r)
{
	SyncColumn *kc = &r->cols[r->key_idx];
	const char *key = quote_identifier(kc->name);
	char	   *cols = iact_sync_column_list(r, "", false, false);
	Oid			keytypes[2] = {kc->typid, kc->typid};
	Oid		   *types = palloc(sizeof(Oid) * (r->ncols + 2));
	int			ntypes;
	StringInfoData sql;
	TypeCacheEntry *tc;
	int			i,
				v;

	/*
	 * The target's rows of a key range, in key order: ctid, then the columns.
	 * Read through a cursor, batch_size rows at a time: planned for the first
	 * rows (an ordered index scan rather than a bitmap scan and a sort).
	 */
	r->read_first_plan = prepare_kept(psprintf("SELECT ctid, %s FROM %s WHERE %s <= $1 ORDER BY %s",
											   cols, r->tgt_qual, key, key), 1, keytypes,
									  CURSOR_OPT_FAST_PLAN);
	r->read_next_plan = prepare_kept(psprintf("SELECT ctid, %s FROM %s WHERE %s <= $1 AND %s > $2 "
											  "ORDER BY %s", cols, r->tgt_qual, key, key, key),
									 2, keytypes, CURSOR_OPT_FAST_PLAN);
	/* and, at the end, the rows above the highest key read */
	r->read_above_plan = prepare_kept(psprintf("SELECT ctid, %s FROM %s WHERE %s > $1 ORDER BY %s",
											   key, r->tgt_qual, key, key), 1, keytypes,
									  CURSOR_OPT_FAST_PLAN);

	/* new rows: every column */
	initStringInfo(&sql);
	appendStringInfo(&sql, "INSERT INTO %s (%s) SELECT * FROM ", r->tgt_qual, cols);
	ntypes = append_unnest(&sql, r, false, types);
	r->insert_plan = prepare_kept(sql.data, ntypes, types, 0);

	/* changed rows: their tids, then the non-key columns */
	resetStringInfo(&sql);
	appendStringInfo(&sql, "UPDATE %s AS t SET ", r->tgt_qual);
	for (i = 0, v = 1; i < r->ncols; i++)
		if (!r->cols[i].is_key)
		{
			appendStringInfo(&sql, "%s%s = u.v%d", v > 1 ? ", " : "",
							 quote_identifier(r->cols[i].name), v);
			v++;
		}
	appendStringInfoString(&sql, " FROM ");
	ntypes = append_unnest(&sql, r, true, types);
	appendStringInfoString(&sql, " WHERE t.ctid = u.v0");
	r->update_plan = v > 1 ? prepare_kept(sql.data, ntypes, types, 0) : NULL;

	/* rows older than the retention cutoff were not read from the source: they stay */
	resetStringInfo(&sql);
	types[0] = TIDARRAYOID;
	appendStringInfo(&sql, "DELETE FROM %s WHERE ctid = ANY ($1)", r->tgt_qual);
	if (r->ret_idx >= 0 && r->cutoff)
	{
		types[1] = r->cols[r->ret_idx].typid;
		appendStringInfo(&sql, " AND (%s >= $2 OR %s IS NULL)", quote_identifier(r->ret_col),
						 quote_identifier(r->ret_col));
	}
	r->delete_plan = prepare_kept(sql.data, (r->ret_idx >= 0 && r->cutoff) ? 2 : 1, types, 0);

	tc = lookup_type_cache(kc->typid, TYPECACHE_CMP_PROC_FINFO);
	if (!OidIsValid(tc->cmp_proc_finfo.fn_oid))
		elog(ERROR, "no comparison function for the key type of %s", r->tgt_qual);
	fmgr_info_copy(&r->key_cmp, &tc->cmp_proc_finfo, r->cxt);
}

void
iact_sync_merge_free(SyncRun *r)
{
	SPIPlanPtr *plans[6] = {&r->read_first_plan, &r->read_next_plan, &r->read_above_plan,
	&r->insert_plan, &r->update_plan, &r->delete_plan};
	int			i;

	for (i = 0; i < 6; i++)
		if (*plans[i])
		{
			SPI_freeplan(*plans[i]);
			*plans[i] = NULL;
		}
}

/* the same stored value: NULLs alike, else the same bytes (varlenas detoasted) */
bool
iact_sync_same_value(Datum a, bool anull, Datum b, bool bnull, Form_pg_attribute att)
{
	if (anull || bnull)
		return anull && bnull;
	if (att->attlen == -1)
	{
		struct varlena *va = pg_detoast_datum_packed((struct varlena *) DatumGetPointer(a));
		struct varlena *vb = pg_detoast_datum_packed((struct varlena *) DatumGetPointer(b));

		return VARSIZE_ANY_EXHDR(va) == VARSIZE_ANY_EXHDR(vb) &&
			memcmp(VARDATA_ANY(va), VARDATA_ANY(vb), VARSIZE_ANY_EXHDR(va)) == 0;
	}
	return datumIsEqual(a, b, att->attbyval, att->attlen);
}

/* the key types merged are numbers, dates and timestamps: no collation */
static int
key_compare(SyncRun *r, Datum a, Datum b)
{
	return DatumGetInt32(FunctionCall2Coll(&r->key_cmp, InvalidOid, a, b));
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
 * column, into args[first...]; for an update (no keys) tids first.
 */
static int
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

	for (i = 0; i < r->ncols; i++)
	{
		Form_pg_attribute att = TupleDescAttr(r->tupdesc, r->cols[i].attnum - 1);

		if (update && r->cols[i].is_key)
			continue;
		for (k = 0; k < nsel; k++)
		{
			elems[k] = values[sel[k]][att->attnum - 1];
			enulls[k] = nulls[sel[k]][att->attnum - 1];
		}
		args[n++] = PointerGetDatum(construct_md_array(elems, enulls, 1, dims, lbs, att->atttypid,
													   att->attlen, att->attbyval, att->attalign));
	}
	return n;
}

/*
 * Delete target rows by ctid (those older than the retention cutoff stay).
 * Fewer rows deleted than asked is fine when the others are gone (e.g. an
 * ON DELETE CASCADE from an earlier delete of this run) or kept by the
 * cutoff; a row whose key is still there, within the cutoff, changed after
 * it was read: 40001.  Everything allocated here is freed before returning.
 */
static void
delete_tids(SyncRun *r, ItemPointerData *tids, Datum *keys, int n, MemoryContext cxt)
{
	SyncColumn *kc = &r->cols[r->key_idx];
	bool		cut = r->ret_idx >= 0 && r->cutoff;
	MemoryContext tmp = AllocSetContextCreate(cxt, "iact sync delete", ALLOCSET_DEFAULT_SIZES);
	Datum		args[2];
	bool		isnull;
	uint64		done;

	MemoryContextSwitchTo(tmp);
	args[0] = PointerGetDatum(tid_array(tids, n));
	if (cut)
		args[1] = iact_sync_range_param(r, r->ret_idx, r->cutoff, &isnull);
	if (SPI_execute_plan(r->delete_plan, args, NULL, false, 0) != SPI_OK_DELETE)
		elog(ERROR, "the delete of vanished rows of %s failed", r->tgt_qual);
	done = SPI_processed;
	MemoryContextSwitchTo(tmp);
	if (done != (uint64) n)
	{
		int16		typlen;
		bool		typbyval;
		char		typalign;
		Oid			types[2] = {get_array_type(kc->typid), cut ? r->cols[r->ret_idx].typid : InvalidOid};
		int64		left;

		get_typlenbyvalalign(kc->typid, &typlen, &typbyval, &typalign);
		args[0] = PointerGetDatum(construct_array(keys, n, kc->typid, typlen, typbyval, typalign));
		if (SPI_execute_with_args(psprintf("SELECT count(*) FROM %s WHERE %s = ANY ($1)%s", r->tgt_qual,
										   quote_identifier(kc->name),
										   cut ? psprintf(" AND (%s >= $2 OR %s IS NULL)",
														  quote_identifier(r->ret_col),
														  quote_identifier(r->ret_col)) : ""),
								  cut ? 2 : 1, types, args, NULL, false, 1) != SPI_OK_SELECT)
			elog(ERROR, "could not look for the rows of %s the sync could not delete", r->tgt_qual);
		left = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
		SPI_freetuptable(SPI_tuptable);
		MemoryContextSwitchTo(tmp);
		if (left > 0)
			ereport(ERROR,
					(errcode(ERRCODE_T_R_SERIALIZATION_FAILURE),
					 errmsg("rows of %s changed while the sync was deleting them", r->tgt_qual),
					 errdetail("%d rows were to be deleted, " UINT64_FORMAT " were, " INT64_FORMAT
							   " are still there: they changed after they were read (or a BEFORE DELETE "
							   "trigger skipped them).", n, done, left),
					 errhint("Something else writes to the sync's target table; run the sync again.")));
	}
	MemoryContextSwitchTo(cxt);
	MemoryContextDelete(tmp);
	r->n_deleted += done;
}

/*
 * Merge the batch's converted rows (values and nulls by attribute number,
 * their keys strictly ascending) with the target's rows between the
 * previous batch's highest key and this batch's highest, and write the
 * difference.  The target's rows are read through a cursor, batch_size at a
 * time, and the deletes written every batch_size rows: memory stays bounded
 * by the batch size even when the source lost millions of rows in between.
 */
void
iact_sync_merge_batch(SyncRun *r, SyncDirect *d, Datum **values, bool **nulls, Datum *keys, int n)
{
	SyncColumn *kc = &r->cols[r->key_idx];
	Datum	   *args = palloc(sizeof(Datum) * (r->ncols + 2));
	Datum	   *tvals = palloc(sizeof(Datum) * (r->ncols + 1));
	bool	   *tnulls = palloc(sizeof(bool) * (r->ncols + 1));
	int		   *ins = palloc(sizeof(int) * n);
	int		   *upd = palloc(sizeof(int) * n);
	ItemPointerData *updtid = palloc(sizeof(ItemPointerData) * n);
	ItemPointerData *deltid = palloc(sizeof(ItemPointerData) * Max(r->batch_size, 1));
	Datum	   *delkey = palloc(sizeof(Datum) * Max(r->batch_size, 1));
	MemoryContext delcxt = AllocSetContextCreate(CurrentMemoryContext, "iact sync deleted keys",
												 ALLOCSET_DEFAULT_SIZES);
	int			nins = 0,
				nupd = 0,
				ndel = 0;
	int			i,
				j,
				ntgt;
	Portal		portal;
	SPITupleTable *tt;
	int16		typlen;
	bool		typbyval;
	char		typalign;
	MemoryContext old;
	MemoryContext cxt = CurrentMemoryContext;	/* SPI returns in its own */

	/* the source must come in strictly ascending key order */
	for (i = 0; i < n; i++)
		if ((i > 0 && key_compare(r, keys[i - 1], keys[i]) >= 0) ||
			(i == 0 && r->have_prev_key && key_compare(r, r->prev_key, keys[0]) >= 0))
			ereport(ERROR,
					(errcode(ERRCODE_UNIQUE_VIOLATION),
					 errmsg("the source of %s has the key column \"%s\" twice or out of order",
							r->tgt_qual, kc->name),
					 errdetail("A full sync reads the source ordered by its key, which must be unique."),
					 errhint("Register the table with key columns that are unique in the source.")));

	get_typlenbyvalalign(kc->typid, &typlen, &typbyval, &typalign);

	/* the target's rows of the range, in key order, merged as they come */
	args[0] = keys[n - 1];
	args[1] = r->prev_key;
	portal = SPI_cursor_open(NULL, r->have_prev_key ? r->read_next_plan : r->read_first_plan,
							 args, NULL, false);
	MemoryContextSwitchTo(cxt);
	i = 0;
	for (;;)
	{
		SPI_cursor_fetch(portal, true, Max(r->batch_size, 1));
		MemoryContextSwitchTo(cxt);
		tt = SPI_tuptable;
		ntgt = (int) SPI_processed;
		for (j = 0; j < ntgt; j++)
		{
			Datum		tkey;
			int			cmp = -1;

			CHECK_FOR_INTERRUPTS();
			heap_deform_tuple(tt->vals[j], tt->tupdesc, tvals, tnulls);
			tkey = tvals[1 + r->key_idx];
			/* source rows below this target row are new */
			while (i < n && (cmp = key_compare(r, keys[i], tkey)) < 0)
				ins[nins++] = i++;
			if (i < n && cmp == 0)
			{
				int			c;

				/* the keys are equal (by the key's comparison): compare the rest */
				for (c = 0; c < r->ncols; c++)
				{
					AttrNumber	a = r->cols[c].attnum - 1;

					if (!r->cols[c].is_key &&
						!iact_sync_same_value(values[i][a], nulls[i][a], tvals[1 + c], tnulls[1 + c],
									TupleDescAttr(r->tupdesc, a)))
						break;
				}
				if (c < r->ncols && d != NULL)
				{
					/* now (the cursor does not see it); the stored key stays as it is */
					values[i][kc->attnum - 1] = datumCopy(tkey, typbyval, typlen);
					iact_sync_direct_update(d, (ItemPointer) DatumGetPointer(tvals[0]), values[i],
											nulls[i]);
				}
				else if (c < r->ncols)
				{
					updtid[nupd] = *(ItemPointer) DatumGetPointer(tvals[0]);
					upd[nupd++] = i;
				}
				i++;
			}
			else
			{
				/* a target row the source no longer has (its key outlives the tuple table) */
				deltid[ndel] = *(ItemPointer) DatumGetPointer(tvals[0]);
				MemoryContextSwitchTo(delcxt);
				delkey[ndel++] = datumCopy(tkey, typbyval, typlen);
				MemoryContextSwitchTo(cxt);
				if (ndel >= r->batch_size)
				{
					delete_tids(r, deltid, delkey, ndel, cxt);
					MemoryContextReset(delcxt);
					ndel = 0;
				}
			}
		}
		SPI_freetuptable(tt);
		if (ntgt == 0)
			break;
	}
	SPI_cursor_close(portal);
	MemoryContextSwitchTo(cxt);
	while (i < n)
		ins[nins++] = i++;

	if (ndel > 0)
		delete_tids(r, deltid, delkey, ndel, cxt);
	MemoryContextDelete(delcxt);
	if (nupd > 0)
	{
		args[0] = PointerGetDatum(tid_array(updtid, nupd));
		(void) column_arrays(r, values, nulls, upd, nupd, true, args);
		if (SPI_execute_plan(r->update_plan, args, NULL, false, 0) != SPI_OK_UPDATE)
			elog(ERROR, "the update of %s failed", r->tgt_qual);
		MemoryContextSwitchTo(cxt);
		if (SPI_processed != (uint64) nupd)
			ereport(ERROR,
					(errcode(ERRCODE_T_R_SERIALIZATION_FAILURE),
					 errmsg("rows of %s changed while the sync was updating them", r->tgt_qual),
					 errdetail("%d rows were to be updated, " UINT64_FORMAT " were: the others changed after "
							   "they were read (or a BEFORE UPDATE trigger skipped them).",
							   nupd, SPI_processed),
					 errhint("Something else writes to the sync's target table; run the sync again.")));
		r->n_updated += nupd;
	}
	if (nins > 0 && d != NULL)
	{
		for (i = 0; i < nins; i++)
			iact_sync_direct_insert(d, values[ins[i]], nulls[ins[i]]);
	}
	else if (nins > 0)
	{
		(void) column_arrays(r, values, nulls, ins, nins, false, args);
		if (SPI_execute_plan(r->insert_plan, args, NULL, false, 0) != SPI_OK_INSERT)
			elog(ERROR, "the insert into %s failed", r->tgt_qual);
		MemoryContextSwitchTo(cxt);
		r->n_inserted += SPI_processed;
	}

	/* the next batch starts above this one's highest key */
	old = MemoryContextSwitchTo(r->cxt);
	if (r->have_prev_key && !typbyval)
		pfree(DatumGetPointer(r->prev_key));
	r->prev_key = datumCopy(keys[n - 1], typbyval, typlen);
	r->have_prev_key = true;
	MemoryContextSwitchTo(old);
}

/*
 * The end of a full sync by one ordered key: the target's rows above the
 * highest key read are gone from the source.  They are read in key order
 * through a cursor (an index range scan, whatever the statistics say: a
 * DELETE by the same condition is planned as a scan of the whole table when
 * the target has none) and deleted batch_size at a time, as the merge
 * deletes (rows older than the retention cutoff stay).
 */
void
iact_sync_merge_delete_above(SyncRun *r)
{
	SyncColumn *kc = &r->cols[r->key_idx];
	int			chunk = Max(r->batch_size, 1);
	ItemPointerData *tids = palloc(sizeof(ItemPointerData) * chunk);
	Datum	   *keys = palloc(sizeof(Datum) * chunk);
	MemoryContext cxt = CurrentMemoryContext;
	MemoryContext keycxt = AllocSetContextCreate(cxt, "iact sync deleted keys", ALLOCSET_DEFAULT_SIZES);
	Datum		args[1] = {r->prev_key};
	Portal		portal;
	int16		typlen;
	bool		typbyval;
	char		typalign;

	get_typlenbyvalalign(kc->typid, &typlen, &typbyval, &typalign);
	portal = SPI_cursor_open(NULL, r->read_above_plan, args, NULL, false);
	MemoryContextSwitchTo(cxt);
	for (;;)
	{
		SPITupleTable *tt;
		int			n,
					j;

		CHECK_FOR_INTERRUPTS();
		SPI_cursor_fetch(portal, true, chunk);
		MemoryContextSwitchTo(cxt);
		tt = SPI_tuptable;
		n = (int) SPI_processed;
		for (j = 0; j < n; j++)
		{
			bool		isnull;

			tids[j] = *(ItemPointer) DatumGetPointer(SPI_getbinval(tt->vals[j], tt->tupdesc, 1, &isnull));
			MemoryContextSwitchTo(keycxt);
			keys[j] = datumCopy(SPI_getbinval(tt->vals[j], tt->tupdesc, 2, &isnull), typbyval, typlen);
			MemoryContextSwitchTo(cxt);
		}
		SPI_freetuptable(tt);
		if (n == 0)
			break;
		/* behind the cursor, which does not see the deletes */
		delete_tids(r, tids, keys, n, cxt);
		MemoryContextReset(keycxt);
	}
	SPI_cursor_close(portal);
	MemoryContextSwitchTo(cxt);
	MemoryContextDelete(keycxt);
	pfree(tids);
	pfree(keys);
}
