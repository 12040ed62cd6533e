/*-------------------------------------------------------------------------
 *
 * sync_batch.c
 *	  One batch of a sync run: the upsert statement (one array of the
 *	  target's row type per batch, ON CONFLICT by key, updating only rows
 *	  that differ), converting the raw MariaDB rows (the whole batch in one
 *	  subtransaction; on an error, row by row and value by value to find the
 *	  culprits, which go to iact.sync_rejects), and applying it: directly
 *	  where the target allows (sync_direct.c), else by statements.
 *
 *-------------------------------------------------------------------------
 */
#include "sync.h"

#include "access/htup_details.h"
#include "access/xact.h"
#include "catalog/pg_class.h"
#include "catalog/pg_inherits.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "lib/stringinfo.h"
#include "mb/pg_wchar.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/datum.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/typcache.h"

#include "mariadb_client.h"

char *
iact_sync_column_list(SyncRun *r, const char *prefix, bool keys_only, bool non_keys_only)
{
	StringInfoData s;
	int			i;

	initStringInfo(&s);
	for (i = 0; i < r->ncols; i++)
	{
		if ((keys_only && !r->cols[i].is_key) || (non_keys_only && r->cols[i].is_key))
			continue;
		appendStringInfo(&s, "%s%s%s", s.len ? ", " : "", prefix, quote_identifier(r->cols[i].name));
		/* the non-key list is compared: a type without = (json, point, xml) as text */
		if (non_keys_only &&
			!OidIsValid(lookup_type_cache(r->cols[i].typid, TYPECACHE_EQ_OPR)->eq_opr))
			appendStringInfoString(&s, "::text");
	}
	return s.data;
}

/* "a.k1 = b.k1 AND a.k2 = b.k2 ...": the key columns of two row sources matched */
void
iact_sync_append_key_match(StringInfo sql, SyncRun *r, const char *a, const char *b)
{
	int			i;
	bool		first = true;

	for (i = 0; i < r->ncols; i++)
		if (r->cols[i].is_key)
		{
			appendStringInfo(sql, "%s%s.%s = %s.%s", first ? "" : " AND ", a,
							 quote_identifier(r->cols[i].name), b, quote_identifier(r->cols[i].name));
			first = false;
		}
}

/*
 * The upsert of an inheritance parent: ON CONFLICT sees only the parent's own
 * unique index, not the children's rows (and a trigger routing the parent's
 * inserts to the children would turn a changed row into a duplicate key).  So:
 * an UPDATE through the parent of the rows whose key is there (in the parent
 * or any child) and whose values differ, and an INSERT of the keys that are
 * not; both see the target as it was before the statement.  The rows inserted
 * are counted as the batch's keys the target did not have (a routing trigger
 * returns no row).  Appends to "WITH s AS (...)[, k AS (...)]" the rest of
 * the statement, which returns the two counts.
 */
static void
append_inherits_upsert(StringInfo sql, SyncRun *r, const char *cols)
{
	int			i;
	bool		first = true;

	appendStringInfoString(sql, ", up AS (");
	for (i = 0; i < r->ncols; i++)
		if (!r->cols[i].is_key)
		{
			if (first)
				appendStringInfo(sql, "UPDATE %s AS t SET ", r->tgt_qual);
			appendStringInfo(sql, "%s%s = s.%s", first ? "" : ", ",
							 quote_identifier(r->cols[i].name), quote_identifier(r->cols[i].name));
			first = false;
		}
	if (first)
		appendStringInfoString(sql, "SELECT 1 WHERE false)");	/* only keys: nothing to update */
	else
	{
		appendStringInfoString(sql, " FROM s WHERE ");
		iact_sync_append_key_match(sql, r, "t", "s");
		appendStringInfo(sql, " AND (%s) IS DISTINCT FROM (%s) RETURNING 1)",
						 iact_sync_column_list(r, "t.", false, true),
						 iact_sync_column_list(r, "s.", false, true));
	}
	appendStringInfo(sql, ", e AS MATERIALIZED (SELECT * FROM s WHERE NOT EXISTS (SELECT 1 FROM %s t WHERE ",
					 r->tgt_qual);
	iact_sync_append_key_match(sql, r, "t", "s");
	appendStringInfo(sql, ")), ins AS (INSERT INTO %s (%s) SELECT %s FROM e) "
					 "SELECT (SELECT count(*) FROM e), (SELECT count(*) FROM up)", r->tgt_qual, cols, cols);
}

/* the upsert of one batch, given as one array of the target's row type */
void
iact_sync_prepare_plans(SyncRun *r)
{
	StringInfoData sql;
	Oid			argtypes[1] = {r->arraytype};
	Oid			rejtypes[6] = {INT8OID, TEXTOID, TEXTOID, TEXTOID, BYTEAOID, TEXTOID};
	char	   *cols = iact_sync_column_list(r, "", false, false);
	char	   *keys = iact_sync_column_list(r, "", true, false);
	int			i;
	bool		has_non_keys = false;
	SyncAs		as;

	initStringInfo(&sql);
	r->tgt_inherits = get_rel_relkind(r->tgt_relid) == RELKIND_RELATION && has_subclass(r->tgt_relid);
	r->tgt_tree = r->tgt_inherits || get_rel_relkind(r->tgt_relid) == RELKIND_PARTITIONED_TABLE;
	if (r->merge_delete)
	{
		iact_sync_merge_prepare(r);
		goto rejects;
	}
	if (r->bulk)
	{
		/* the target was empty when the run began: nothing to compare */
		appendStringInfo(&sql, "INSERT INTO %s (%s) SELECT %s FROM unnest($1) u", r->tgt_qual, cols, cols);
		goto prepare;
	}
	appendStringInfoString(&sql, "WITH s AS MATERIALIZED (SELECT * FROM unnest($1) u)");
	if (!r->wm_col && !r->merge_delete)
		appendStringInfo(&sql, ", k AS (INSERT INTO pg_temp.iact_sync_seen (%s) SELECT %s FROM s)",
						 keys, keys);
	if (r->tgt_inherits)
	{
		append_inherits_upsert(&sql, r, cols);
		goto prepare;
	}
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
						 iact_sync_column_list(r, "t.", false, true), iact_sync_column_list(r, "EXCLUDED.", false, true));
	}
	else
		appendStringInfoString(&sql, "DO NOTHING");
	if (get_rel_relkind(r->tgt_relid) != RELKIND_PARTITIONED_TABLE)
		appendStringInfoString(&sql, " RETURNING (t.xmax = 0) AS ins) "
							   "SELECT count(*) FILTER (WHERE ins), count(*) FILTER (WHERE NOT ins) FROM up");
	else
	{
		/*
		 * A partitioned table has no xmax to return: the rows inserted are
		 * the batch's keys the target did not have (all CTEs see the same
		 * snapshot, from before the upsert), the rest of those returned
		 * were updated.
		 */
		appendStringInfo(&sql, " RETURNING 1), e AS (SELECT count(*) AS n FROM s WHERE NOT EXISTS "
						 "(SELECT 1 FROM %s t WHERE ", r->tgt_qual);
		iact_sync_append_key_match(&sql, r, "t", "s");
		appendStringInfoString(&sql, ")) SELECT (SELECT n FROM e), count(*) - (SELECT n FROM e) FROM up");
	}
prepare:
	r->apply_plan = SPI_prepare(sql.data, 1, argtypes);
	if (r->apply_plan == NULL)
		elog(ERROR, "could not prepare the upsert of %s: %s", r->tgt_qual,
			 SPI_result_code_string(SPI_result));
	SPI_keepplan(r->apply_plan);

rejects:
	/* iact's bookkeeping: prepared (and executed) as iact, not as the owner */
	iact_sync_as_iact(r, &as);
	r->reject_plan = SPI_prepare("INSERT INTO iact.sync_rejects "
								 "(run_id, target_table, key, column_name, raw_value, reason) "
								 "VALUES ($1, $2, $3, $4, $5, $6)", 6, rejtypes);
	if (r->reject_plan == NULL)
		elog(ERROR, "could not prepare the insert into iact.sync_rejects");
	SPI_keepplan(r->reject_plan);
	iact_sync_restore(&as);
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

static void
record_reject(SyncRun *r, char **vals, unsigned long *lens, int col, const char *reason)
{
	Datum		args[6];
	char		nulls[6] = {' ', ' ', ' ', ' ', ' ', ' '};
	MemoryContext cxt = CurrentMemoryContext;
	SyncAs		as;

	args[0] = Int64GetDatum(r->run_id);
	args[1] = CStringGetTextDatum(r->tgt_qual);
	args[2] = CStringGetTextDatum(reject_key(r, vals, lens));
	if (col >= 0)
	{
		args[3] = CStringGetTextDatum(r->cols[col].name);
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
	/* bookkeeping: written by iact, not with the target owner's rights */
	iact_sync_as_iact(r, &as);
	if (SPI_execute_plan(r->reject_plan, args, nulls, false, 0) != SPI_OK_INSERT)
		elog(ERROR, "could not insert into iact.sync_rejects");
	iact_sync_restore(&as);
	/* SPI returns in its own procedure context, which lives as long as the run */
	MemoryContextSwitchTo(cxt);
	r->n_rejected++;
}

/*
 * Convert one row into a composite Datum of the target's row type, or, for
 * a merged batch (src/sync_merge.c), into its values and nulls by attribute
 * number.  Returns NULL on success, else the reason, with *badcol set.  May
 * throw.
 */
static const char *
convert_row(SyncRun *r, char **vals, unsigned long *lens, Datum *result, Datum *key,
			Datum **values_out, bool **nulls_out, int *badcol)
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
		if (reason == NULL && nulls[col->attnum - 1] && col->not_null)
			reason = col->is_key ? "NULL (e.g. a zero date) in a key column" :
				"NULL (e.g. a zero date) in a NOT NULL column of the target";
		if (reason != NULL)
		{
			*badcol = i;
			return reason;
		}
	}
	if (r->row_values)
	{
		if (r->merge_delete)
			*key = values[r->cols[r->key_idx].attnum - 1];
		*values_out = values;
		*nulls_out = nulls;
		*result = (Datum) 0;
		return NULL;
	}
	tup = heap_form_tuple(r->tupdesc, values, nulls);
	*result = heap_copy_tuple_as_datum(tup, r->tupdesc);
	return NULL;
}

/*
 * Incremental runs: a row that became bad must not leave its old version in
 * the target (inside the counted range), so the target row with the rejected
 * key goes, as a full sync's delete of the keys it did not write does.
 */
typedef struct RejectDelete
{
	char	  **vals;
	unsigned long *lens;
} RejectDelete;

static void
delete_rejected(SyncRun *r, void *arg)
{
	RejectDelete *rd = arg;
	StringInfoData sql;
	Oid		   *argtypes = palloc(sizeof(Oid) * r->ncols);
	Datum	   *args = palloc(sizeof(Datum) * r->ncols);
	int			nargs = 0;
	int			i;

	initStringInfo(&sql);
	appendStringInfo(&sql, "DELETE FROM %s WHERE true", r->tgt_qual);
	for (i = 0; i < r->ncols; i++)
	{
		bool		isnull;

		if (!r->cols[i].is_key)
			continue;
		if (iact_sync_convert(&r->cols[i], rd->vals[i], rd->lens[i], &args[nargs], &isnull) != NULL ||
			isnull)
			return;				/* a key that does not convert was never written */
		argtypes[nargs] = r->cols[i].typid;
		appendStringInfo(&sql, " AND %s = $%d", quote_identifier(r->cols[i].name), nargs + 1);
		nargs++;
	}
	if (SPI_execute_with_args(sql.data, nargs, argtypes, args, NULL, false, 0) != SPI_OK_DELETE)
		elog(ERROR, "the delete of a rejected row of %s failed", r->tgt_qual);
	r->n_deleted += SPI_processed;
}

/*
 * Run fn(arg) in a subtransaction.  Returns NULL on success, else the error
 * (copied into r->cxt; the subtransaction is rolled back).
 */
typedef struct SyncStep
{
	SyncRun    *r;
	void		(*fn) (SyncRun *, void *);
	void	   *arg;
} SyncStep;

static void
sync_step(void *arg)
{
	SyncStep   *step = (SyncStep *) arg;

	step->fn(step->r, step->arg);
}

static ErrorData *
subxact_in(SyncRun *r, MemoryContext errcxt, void (*fn) (SyncRun *, void *), void *arg)
{
	SyncStep	step = {r, fn, arg};

	/* a cancel or a shutdown ends the whole call, it is not a failed run */
	return iact_try_subxact(sync_step, &step, errcxt, true);
}

ErrorData *
iact_sync_in_subxact(SyncRun *r, void (*fn) (SyncRun *, void *), void *arg)
{
	return subxact_in(r, r->cxt, fn, arg);
}

typedef struct ConvertState
{
	SyncBatch  *batch;
	Datum	   *rows;			/* converted rows */
	Datum	   *keys;			/* their keys (merge_delete) */
	Datum	  **values;			/* or their values and nulls (row_values) */
	bool	  **nulls;
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
		reason = convert_row(r, cs->batch->vals[i], cs->batch->lens[i], &cs->rows[cs->nrows],
							 &cs->keys[cs->nrows], &cs->values[cs->nrows], &cs->nulls[cs->nrows],
							 &badcol);
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
						 &cs->rows[cs->nrows], &cs->keys[cs->nrows], &cs->values[cs->nrows],
						 &cs->nulls[cs->nrows], &badcol);
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

/*
 * The same inside one batch: the error is copied into the batch's context,
 * reset for the next batch, so the copies of the rejected rows' errors do not
 * pile up in the run's context.
 */
static ErrorData *
batch_subxact(SyncRun *r, void (*fn) (SyncRun *, void *), void *arg)
{
	return subxact_in(r, r->batch_cxt, fn, arg);
}

/*
 * An error converting a value that makes it a reject: a data exception (the
 * type's input refused it), or a domain's constraint (NOT NULL, CHECK) it
 * violates.  Anything else (out of memory, a bug...) is not the value's.
 */
static bool
bad_value(ErrorData *err)
{
	return ERRCODE_TO_CATEGORY(err->sqlerrcode) == ERRCODE_DATA_EXCEPTION ||
		ERRCODE_TO_CATEGORY(err->sqlerrcode) == ERRCODE_INTEGRITY_CONSTRAINT_VIOLATION;
}

/* write a batch's converted rows: directly (d), else by statements */
static void
write_rows(SyncRun *r, SyncDirect *d, ConvertState *cs, MemoryContext cxt)
{
	int			i;

	if (r->merge_delete)
		iact_sync_merge_batch(r, d, cs->values, cs->nulls, cs->keys, cs->nrows);
	else if (d != NULL)
	{
		for (i = 0; i < cs->nrows; i++)
		{
			CHECK_FOR_INTERRUPTS();
			if (r->bulk)
				iact_sync_direct_insert(d, cs->values[i], cs->nulls[i]);
			else
				iact_sync_direct_upsert(d, cs->values[i], cs->nulls[i]);
		}
	}
	else
	{
		ArrayType  *arr;
		Datum		args[1];
		bool		isnull;

		arr = construct_array(cs->rows, cs->nrows, r->rowtype, r->rowlen, r->rowbyval, r->rowalign);
		args[0] = PointerGetDatum(arr);
		if (r->bulk)
		{
			if (SPI_execute_plan(r->apply_plan, args, NULL, false, 0) != SPI_OK_INSERT)
				elog(ERROR, "the insert into %s failed", r->tgt_qual);
			/* a trigger routing an inheritance parent's rows to its children returns none */
			r->n_inserted += r->tgt_inherits ? (uint64) cs->nrows : SPI_processed;
		}
		else
		{
			if (SPI_execute_plan(r->apply_plan, args, NULL, false, 0) != SPI_OK_SELECT ||
				SPI_processed != 1)
				elog(ERROR, "the upsert into %s failed", r->tgt_qual);
			r->n_inserted += DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0],
														 SPI_tuptable->tupdesc, 1, &isnull));
			r->n_updated += DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0],
														SPI_tuptable->tupdesc, 2, &isnull));
			SPI_freetuptable(SPI_tuptable);
		}
		MemoryContextSwitchTo(cxt);
	}
}

/* convert, upsert and account one batch of raw rows */
void
iact_sync_apply_batch(SyncRun *r, SyncBatch *b)
{
	ConvertState cs;
	ErrorData  *err;
	int			i;
	SyncDirect *d = NULL;
	MemoryContext cxt = CurrentMemoryContext;

	memset(&cs, 0, sizeof(cs));
	cs.batch = b;
	cs.rows = palloc(sizeof(Datum) * b->n);
	cs.values = palloc(sizeof(Datum *) * b->n);
	cs.nulls = palloc(sizeof(bool *) * b->n);
	cs.keys = palloc(sizeof(Datum) * b->n);
	cs.rej_row = palloc(sizeof(int) * b->n);
	cs.rej_col = palloc(sizeof(int) * b->n);
	cs.rej_reason = palloc(sizeof(char *) * b->n);

	/*
	 * Written without a statement where the target allows it (sync_direct.c):
	 * a first load, a merged batch, an incremental upsert.  The rows are then
	 * kept as values and nulls.
	 */
	if (r->bulk || r->wm_col || r->merge_delete)
		d = iact_sync_direct_begin(r, !r->bulk && !r->merge_delete);
	else
		r->statements_reason = "a full sync without the merge (not one numeric or temporal key column, "
			"or a target with partitions or inheritance children)";
	r->row_values = r->merge_delete || d != NULL;

	/* the whole batch at once; on an error, row by row to find the culprits */
	err = batch_subxact(r, convert_all, &cs);
	if (err != NULL && !bad_value(err))
		iact_rethrow(err);
	if (err != NULL)
	{
		cs.nrows = cs.nrej = 0;
		for (cs.row = 0; cs.row < b->n; cs.row++)
		{
			CHECK_FOR_INTERRUPTS();
			err = batch_subxact(r, convert_one_row, &cs);
			if (err == NULL)
				continue;
			if (!bad_value(err))
				iact_rethrow(err);
			for (cs.col = 0; cs.col < r->ncols; cs.col++)
				if ((err = batch_subxact(r, convert_one_value, &cs)) != NULL)
					break;
			if (err != NULL && !bad_value(err))
				iact_rethrow(err);
			cs.rej_row[cs.nrej] = cs.row;
			cs.rej_col[cs.nrej] = cs.col < r->ncols ? cs.col : -1;
			cs.rej_reason[cs.nrej++] = err ? err->message : "the row could not be formed";
		}
	}
	for (i = 0; i < cs.nrej; i++)
	{
		record_reject(r, b->vals[cs.rej_row[i]], b->lens[cs.rej_row[i]], cs.rej_col[i],
					  cs.rej_reason[i]);
		if (r->wm_col && !r->bulk)
		{
			RejectDelete rd = {b->vals[cs.rej_row[i]], b->lens[cs.rej_row[i]]};

			err = batch_subxact(r, delete_rejected, &rd);
			if (err != NULL && !bad_value(err))
				iact_rethrow(err);
		}
	}

	if (cs.nrows > 0)
	{
		if (d != NULL)
		{
			r->wrote_direct = true;
			iact_sync_direct_start(d);
		}
		else
			r->wrote_statements = true;
		write_rows(r, d, &cs, cxt);
	}
	if (d != NULL)
		iact_sync_direct_end(d);
}

/*
 * The end of a full sync by one ordered key: the target rows above the
 * highest key read (sync_merge.c; all of them when nothing was read) and
 * those with a NULL key are gone from the source, except those older than
 * the retention cutoff (not read).
 */
void
iact_sync_delete_tail(SyncRun *r)
{
	SyncColumn *kc = &r->cols[r->key_idx];
	StringInfoData sql;
	Oid			argtypes[2];
	Datum		args[2];
	int			nargs = 0;
	bool		isnull;

	initStringInfo(&sql);
	appendStringInfo(&sql, "DELETE FROM %s WHERE true", r->tgt_qual);
	if (r->have_prev_key)
	{
		iact_sync_merge_delete_above(r);
		/* a NULL key (a nullable unique column) matches no source row either */
		appendStringInfo(&sql, " AND %s IS NULL", quote_identifier(kc->name));
	}
	if (r->ret_idx >= 0 && r->cutoff)
	{
		argtypes[nargs] = r->cols[r->ret_idx].typid;
		args[nargs] = iact_sync_range_param(r, r->ret_idx, r->cutoff, &isnull);
		appendStringInfo(&sql, " AND (%s >= $%d OR %s IS NULL)", quote_identifier(r->ret_col), nargs + 1,
						 quote_identifier(r->ret_col));
		nargs++;
	}
	if (SPI_execute_with_args(sql.data, nargs, argtypes, args, NULL, false, 0) != SPI_OK_DELETE)
		elog(ERROR, "the delete of vanished rows of %s failed", r->tgt_qual);
	r->n_deleted += SPI_processed;
}

/*
 * The retention purge: the target's rows older than the cutoff are deleted
 * batch_size at a time (each statement's AFTER triggers, e.g. foreign keys,
 * fire at its end, so their queue stays bounded).  A row is addressed by its
 * ctid, which is unique only within one relation: in a partitioned target or
 * one with inheritance children, by its tableoid and ctid together (the ctid
 * array lets each partition be read by a TID scan, the pair picks the rows).
 */
void
iact_sync_purge(SyncRun *r)
{
	Oid			t[2] = {r->cols[r->ret_idx].typid, INT4OID};
	Datum		a[2];
	bool		isnull;
	const char *col = quote_identifier(r->ret_col);
	char	   *sql;

	if (r->tgt_tree)
		sql = psprintf("WITH x AS MATERIALIZED (SELECT tableoid AS o, ctid AS c FROM %s WHERE %s OPERATOR(pg_catalog.<) $1 LIMIT $2) "
					   "DELETE FROM %s WHERE ctid OPERATOR(pg_catalog.=) ANY (ARRAY(SELECT c FROM x)) "
					   "AND (tableoid, ctid) IN (SELECT o, c FROM x)", r->tgt_qual, col, r->tgt_qual);
	else
		sql = psprintf("DELETE FROM %s WHERE ctid OPERATOR(pg_catalog.=) ANY (ARRAY(SELECT ctid FROM %s "
					   "WHERE %s OPERATOR(pg_catalog.<) $1 LIMIT $2))", r->tgt_qual, r->tgt_qual, col);
	a[0] = iact_sync_range_param(r, r->ret_idx, r->cutoff, &isnull);
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
