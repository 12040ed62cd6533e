/*-------------------------------------------------------------------------
 *
 * sync_write_upsert.c
 *	  The upsert writers (layer 3c, see sync_engine.c): each row inserted
 *	  when its key is not in the target, updated when a stored value
 *	  differs, left alone otherwise.
 *
 *	  SYNC_WRITE_UPSERT_INCREMENTAL, an incremental run: directly, each key
 *	  looked up in the key's unique index (sync_direct.c); otherwise one
 *	  statement per batch (ON CONFLICT by key, or, for an inheritance
 *	  parent, an UPDATE and an INSERT).  Rows deleted from the source are
 *	  not seen; a row that became bad is deleted from the target, so its
 *	  old version does not stay inside the counted range.
 *
 *	  SYNC_WRITE_UPSERT_SEEN, a full sync that cannot merge (not one numeric
 *	  or temporal key, or a target with partitions or inheritance children):
 *	  the same statement, which also keeps the batch's keys in a temporary
 *	  table; at the end the target's rows whose key was not seen go.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "sync.h"

#include "catalog/pg_class.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "lib/stringinfo.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"

typedef struct UpsertWriter
{
	SyncWriter	w;
	bool		seen;			/* SYNC_WRITE_UPSERT_SEEN: keys kept aside */
	struct _SPI_plan *upsert_plan;	/* the batch as one array of the row
									 * type; returns (inserted, updated) */
	SyncDirect *d;				/* this batch's direct write, or NULL */
	Datum	   *rows;			/* else its rows (composites) */
	int			nrows;
} UpsertWriter;

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
	for (i = 0; i < r->tgt.ncols; i++)
		if (!r->tgt.cols[i].is_key)
		{
			if (first)
				appendStringInfo(sql, "UPDATE %s AS t SET ", r->conf.tgt_qual);
			appendStringInfo(sql, "%s%s = s.%s", first ? "" : ", ",
							 quote_identifier(r->tgt.cols[i].name), quote_identifier(r->tgt.cols[i].name));
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
					 r->conf.tgt_qual);
	iact_sync_append_key_match(sql, r, "t", "s");
	appendStringInfo(sql, ")), ins AS (INSERT INTO %s (%s) SELECT %s FROM e) "
					 "SELECT (SELECT count(*) FROM e), (SELECT count(*) FROM up)", r->conf.tgt_qual, cols, cols);
}

/* INSERT ... ON CONFLICT (keys) DO UPDATE only rows that differ: appended to "WITH s AS ..." */
static void
append_on_conflict(StringInfo sql, SyncRun *r, const char *cols, const char *keys)
{
	const char *q = r->conf.tgt_qual;
	bool		first = true;
	int			i;

	appendStringInfo(sql, ", up AS (INSERT INTO %s AS t (%s) SELECT %s FROM s ON CONFLICT (%s) ",
					 q, cols, cols, keys);
	for (i = 0; i < r->tgt.ncols; i++)
		if (!r->tgt.cols[i].is_key)
		{
			appendStringInfo(sql, "%s%s = EXCLUDED.%s", first ? "DO UPDATE SET " : ", ",
							 quote_identifier(r->tgt.cols[i].name), quote_identifier(r->tgt.cols[i].name));
			first = false;
		}
	if (!first)
		appendStringInfo(sql, " WHERE (%s) IS DISTINCT FROM (%s)",
						 iact_sync_column_list(r, "t.", false, true),
						 iact_sync_column_list(r, "EXCLUDED.", false, true));
	else
		appendStringInfoString(sql, "DO NOTHING");
	if (get_rel_relkind(r->tgt.relid) != RELKIND_PARTITIONED_TABLE)
		appendStringInfoString(sql, " RETURNING (t.xmax = 0) AS ins) "
							   "SELECT count(*) FILTER (WHERE ins), count(*) FILTER (WHERE NOT ins) FROM up");
	else
	{
		/*
		 * A partitioned table has no xmax to return: the rows inserted are
		 * the batch's keys the target did not have (all CTEs see the same
		 * snapshot, from before the upsert), the rest of those returned
		 * were updated.
		 */
		appendStringInfo(sql, " RETURNING 1), e AS (SELECT count(*) AS n FROM s WHERE NOT EXISTS "
						 "(SELECT 1 FROM %s t WHERE ", q);
		iact_sync_append_key_match(sql, r, "t", "s");
		appendStringInfoString(sql, ")) SELECT (SELECT n FROM e), count(*) - (SELECT n FROM e) FROM up");
	}
}

/* the upsert of one batch, given as one array of the target's row type */
static void
prepare_upsert(UpsertWriter *uw)
{
	SyncRun    *r = uw->w.r;
	StringInfoData sql;
	Oid			argtypes[1] = {r->tgt.arraytype};
	char	   *cols = iact_sync_column_list(r, "", false, false);
	char	   *keys = iact_sync_column_list(r, "", true, false);

	initStringInfo(&sql);
	appendStringInfoString(&sql, "WITH s AS MATERIALIZED (SELECT * FROM unnest($1) u)");
	if (uw->seen)
		appendStringInfo(&sql, ", k AS (INSERT INTO pg_temp.iact_sync_seen (%s) SELECT %s FROM s)",
						 keys, keys);
	if (r->tgt.inherits)
		append_inherits_upsert(&sql, r, cols);
	else
		append_on_conflict(&sql, r, cols, keys);
	uw->upsert_plan = iact_sync_spi_prepare(sql.data, 1, argtypes, 0);
}

/*
 * iact's temporary table of the keys a full sync has seen: created by iact
 * (a restricted operation may not create one), written and read by the
 * owner's statements, dropped by iact at the end.
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
								keys, r->conf.tgt_qual), SPI_OK_UTILITY);
	if (r->owner != r->registry_owner)
		iact_sync_spi_exec(psprintf("GRANT SELECT, INSERT ON pg_temp.iact_sync_seen TO %s",
									quote_identifier(GetUserNameFromId(r->owner, false))),
						   SPI_OK_UTILITY);
	iact_sync_restore(&as);
}

static void
upsert_begin_batch(SyncWriter *w, int nrows)
{
	UpsertWriter *uw = (UpsertWriter *) w;

	/* the keys seen are written by the statement: the seen path has no direct variant */
	if (uw->seen)
		w->statements_reason = w->r->plan.why;
	uw->d = uw->seen ? NULL : iact_sync_direct_open(w, true);
	if (uw->d == NULL)
	{
		w->wrote_statements = true;
		uw->rows = palloc(sizeof(Datum) * nrows);
		uw->nrows = 0;
	}
}

static void
upsert_write_row(SyncWriter *w, Datum *values, bool *nulls)
{
	UpsertWriter *uw = (UpsertWriter *) w;

	if (uw->d)
		iact_sync_direct_upsert(uw->d, values, nulls);
	else
		uw->rows[uw->nrows++] = iact_sync_row_datum(w->r, values, nulls);
}

static void
upsert_end_batch(SyncWriter *w)
{
	UpsertWriter *uw = (UpsertWriter *) w;
	SyncRun    *r = w->r;
	Datum		args[1];
	bool		isnull;

	if (uw->d)
	{
		iact_sync_direct_close(uw->d);
		uw->d = NULL;
		return;
	}
	args[0] = iact_sync_rows_array(r, uw->rows, uw->nrows);
	if (iact_sync_spi_plan(uw->upsert_plan, args, NULL, SPI_OK_SELECT, "the upsert into the target") != 1)
		elog(ERROR, "the upsert into %s failed", r->conf.tgt_qual);
	r->n.inserted += DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	r->n.updated += DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull));
	SPI_freetuptable(SPI_tuptable);
}

/*
 * Incremental runs: a row that became bad must not leave its old version in
 * the target (inside the counted range), so the target row with the rejected
 * key goes, as a full sync's delete of the keys it did not write does.
 */
static void
upsert_forget_row(SyncWriter *w, char **vals, unsigned long *lens)
{
	SyncRun    *r = w->r;
	StringInfoData sql;
	Oid		   *argtypes = palloc(sizeof(Oid) * r->tgt.ncols);
	Datum	   *args = palloc(sizeof(Datum) * r->tgt.ncols);
	int			nargs = 0;
	int			i;
	MemoryContext cxt = CurrentMemoryContext;

	initStringInfo(&sql);
	appendStringInfo(&sql, "DELETE FROM %s WHERE true", r->conf.tgt_qual);
	for (i = 0; i < r->tgt.ncols; i++)
	{
		bool		isnull;

		if (!r->tgt.cols[i].is_key)
			continue;
		if (iact_sync_convert(&r->tgt.cols[i], vals[i], lens[i], &args[nargs], &isnull) != NULL || isnull)
			return;				/* a key that does not convert was never written */
		argtypes[nargs] = r->tgt.cols[i].typid;
		appendStringInfo(&sql, " AND %s = $%d", quote_identifier(r->tgt.cols[i].name), nargs + 1);
		nargs++;
	}
	if (SPI_execute_with_args(sql.data, nargs, argtypes, args, NULL, false, 0) != SPI_OK_DELETE)
		elog(ERROR, "the delete of a rejected row of %s failed", r->conf.tgt_qual);
	MemoryContextSwitchTo(cxt);
	r->n.deleted += SPI_processed;
}

/* a full sync's end: the target's rows whose key was not seen are gone from the source */
static void
upsert_finish(SyncWriter *w)
{
	SyncRun    *r = w->r;
	StringInfoData sql;
	SyncParams	p = {0};
	SyncAs		as;

	if (!((UpsertWriter *) w)->seen)
		return;					/* an incremental run does not see deletes */
	initStringInfo(&sql);
	appendStringInfo(&sql, "DELETE FROM %s t WHERE NOT EXISTS (SELECT 1 FROM pg_temp.iact_sync_seen s WHERE ",
					 r->conf.tgt_qual);
	iact_sync_append_key_match(&sql, r, "s", "t");
	appendStringInfoChar(&sql, ')');
	(void) iact_sync_append_retained(&sql, r, "t", &p);
	r->n.deleted += iact_sync_spi_args(sql.data, &p, SPI_OK_DELETE, 0, "the delete of vanished rows");
	iact_sync_as_iact(r, &as);
	iact_sync_spi_exec("DROP TABLE pg_temp.iact_sync_seen", SPI_OK_UTILITY);
	iact_sync_restore(&as);
}

static void
upsert_release(SyncWriter *w)
{
	UpsertWriter *uw = (UpsertWriter *) w;

	if (uw->upsert_plan)
		SPI_freeplan(uw->upsert_plan);
	uw->upsert_plan = NULL;
}

static const SyncWriterOps upsert_ops = {
	.begin_batch = upsert_begin_batch,
	.write_row = upsert_write_row,
	.end_batch = upsert_end_batch,
	.forget_row = upsert_forget_row,
	.finish = upsert_finish,
	.release = upsert_release,
};

static const SyncWriterOps upsert_seen_ops = {
	.begin_batch = upsert_begin_batch,
	.write_row = upsert_write_row,
	.end_batch = upsert_end_batch,
	.forget_row = NULL,			/* a key not written is not seen: it goes at the end */
	.finish = upsert_finish,
	.release = upsert_release,
};

/*
 * The upsert writer of the plan's strategy (SYNC_WRITE_UPSERT_SEEN or
 * _INCREMENTAL): the temporary table of seen keys created, the statement
 * prepared (in the run's memory).
 */
SyncWriter *
iact_sync_upsert_writer(SyncRun *r)
{
	UpsertWriter *uw = palloc0(sizeof(UpsertWriter));

	uw->seen = r->plan.strategy == SYNC_WRITE_UPSERT_SEEN;
	uw->w.ops = uw->seen ? &upsert_seen_ops : &upsert_ops;
	uw->w.r = r;
	if (uw->seen)
		create_seen_table(r);
	prepare_upsert(uw);
	return &uw->w;
}
