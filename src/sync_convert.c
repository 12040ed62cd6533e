/*-------------------------------------------------------------------------
 *
 * sync_convert.c
 *	  One batch of raw MariaDB rows into PostgreSQL values (layer 2, see
 *	  sync_engine.c): the whole batch in one subtransaction; on an error,
 *	  row by row and value by value to find the culprits, which are set
 *	  aside as rejects with their reason.  Each value goes through
 *	  iact_sync_convert (sync_types.c).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "sync.h"

#include "utils/memutils.h"

/*
 * Run fn(r, arg) in a subtransaction.  Returns NULL on success, else the
 * error copied into errcxt (the subtransaction rolled back).  A cancel or a
 * shutdown ends the whole call, it is not a failed step.
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

ErrorData *
iact_sync_in_subxact(SyncRun *r, MemoryContext errcxt, void (*fn) (SyncRun *, void *), void *arg)
{
	SyncStep	step = {r, fn, arg};

	return iact_try_subxact(sync_step, &step, errcxt, true);
}

/*
 * An error converting a value that makes it a reject: a data exception (the
 * type's input refused it), or a domain's constraint (NOT NULL, CHECK) it
 * violates.  Anything else (out of memory, a bug...) is not the value's.
 */
bool
iact_sync_bad_value(ErrorData *err)
{
	return ERRCODE_TO_CATEGORY(err->sqlerrcode) == ERRCODE_DATA_EXCEPTION ||
		ERRCODE_TO_CATEGORY(err->sqlerrcode) == ERRCODE_INTEGRITY_CONSTRAINT_VIOLATION;
}

/* a bound of the range (a watermark, the cutoff) in its column's type */
Datum
iact_sync_range_param(SyncRun *r, int idx, const char *text, bool *isnull)
{
	Datum		v;
	const char *reason = iact_sync_convert(&r->tgt.cols[idx], pstrdup(text), strlen(text), &v, isnull);

	if (reason != NULL)
		elog(ERROR, "invalid range bound \"%s\": %s", text, reason);
	return v;
}

/*
 * Convert one row into its values and nulls by attribute number.  Returns
 * NULL on success, else the reason, with *badcol set.  May throw.
 */
static const char *
convert_row(SyncRun *r, char **vals, unsigned long *lens, Datum **values_out, bool **nulls_out,
			int *badcol)
{
	int			natts = r->tgt.tupdesc->natts;
	Datum	   *values = palloc(sizeof(Datum) * natts);
	bool	   *nulls = palloc(sizeof(bool) * natts);
	int			i;

	for (i = 0; i < natts; i++)
		nulls[i] = true;
	for (i = 0; i < r->tgt.ncols; i++)
	{
		SyncColumn *col = &r->tgt.cols[i];
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
	*values_out = values;
	*nulls_out = nulls;
	return NULL;
}

typedef struct ConvertState
{
	SyncBatch  *batch;
	SyncConverted *out;
	int			row;			/* for the one-row and one-column cases */
	int			col;
} ConvertState;

/* convert the batch's row i: into out, converted or rejected */
static void
convert_into(SyncRun *r, ConvertState *cs, int i)
{
	SyncConverted *out = cs->out;
	int			badcol = -1;
	const char *reason;

	reason = convert_row(r, cs->batch->vals[i], cs->batch->lens[i], &out->values[out->nrows],
						 &out->nulls[out->nrows], &badcol);
	if (reason == NULL)
		out->src_row[out->nrows++] = i;
	else
	{
		out->rej_row[out->nrej] = i;
		out->rej_col[out->nrej] = badcol;
		out->rej_reason[out->nrej++] = reason;
	}
}

static void
convert_all(SyncRun *r, void *arg)
{
	ConvertState *cs = arg;
	int			i;

	cs->out->nrows = cs->out->nrej = 0;
	for (i = 0; i < cs->batch->n; i++)
	{
		CHECK_FOR_INTERRUPTS();
		convert_into(r, cs, i);
	}
}

static void
convert_one_row(SyncRun *r, void *arg)
{
	ConvertState *cs = arg;

	convert_into(r, cs, cs->row);
}

static void
convert_one_value(SyncRun *r, void *arg)
{
	ConvertState *cs = arg;
	Datum		v;
	bool		isnull;

	(void) iact_sync_convert(&r->tgt.cols[cs->col], cs->batch->vals[cs->row][cs->col],
							 cs->batch->lens[cs->row][cs->col], &v, &isnull);
}

/*
 * After the whole batch failed with a value's error: row by row, and in a
 * row that fails, value by value, to find the culprit.  The errors are
 * copied into the batch's context, reset for the next batch.
 */
static void
convert_row_by_row(SyncRun *r, ConvertState *cs)
{
	SyncConverted *out = cs->out;
	ErrorData  *err;

	out->nrows = out->nrej = 0;
	for (cs->row = 0; cs->row < cs->batch->n; cs->row++)
	{
		CHECK_FOR_INTERRUPTS();
		err = iact_sync_in_subxact(r, r->batch_cxt, convert_one_row, cs);
		if (err == NULL)
			continue;
		if (!iact_sync_bad_value(err))
			iact_rethrow(err);
		for (cs->col = 0; cs->col < r->tgt.ncols; cs->col++)
			if ((err = iact_sync_in_subxact(r, r->batch_cxt, convert_one_value, cs)) != NULL)
				break;
		if (err != NULL && !iact_sync_bad_value(err))
			iact_rethrow(err);
		out->rej_row[out->nrej] = cs->row;
		out->rej_col[out->nrej] = cs->col < r->tgt.ncols ? cs->col : -1;
		out->rej_reason[out->nrej++] = err ? err->message : "the row could not be formed";
	}
}

/*
 * Convert a batch of raw rows (in the batch's memory context, the current
 * one): out gets the rows converted and the rows rejected, in the batch's
 * order.  An error that is not a value's is thrown.
 */
void
iact_sync_convert_batch(SyncRun *r, SyncBatch *b, SyncConverted *out)
{
	ConvertState cs;
	ErrorData  *err;
	int			n = Max(b->n, 1);

	memset(&cs, 0, sizeof(cs));
	cs.batch = b;
	cs.out = out;
	out->src_row = palloc(sizeof(int) * n);
	out->values = palloc(sizeof(Datum *) * n);
	out->nulls = palloc(sizeof(bool *) * n);
	out->rej_row = palloc(sizeof(int) * n);
	out->rej_col = palloc(sizeof(int) * n);
	out->rej_reason = palloc(sizeof(char *) * n);

	err = iact_sync_in_subxact(r, r->batch_cxt, convert_all, &cs);
	if (err != NULL && !iact_sync_bad_value(err))
		iact_rethrow(err);
	if (err != NULL)
		convert_row_by_row(r, &cs);
}
