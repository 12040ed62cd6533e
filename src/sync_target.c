/*-------------------------------------------------------------------------
 *
 * sync_target.c
 *	  The PostgreSQL side of a sync run, shared by its writers: the target's
 *	  columns matched with the source's, SQL fragments over them, the key's
 *	  unique index, the retention condition and purge, and the SPI calls of
 *	  the sync, which all come back in the caller's memory context (SPI
 *	  returns in its own procedure context: the caller's is saved and
 *	  restored here, once per call, and nowhere else).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "sync.h"

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "catalog/namespace.h"
#include "catalog/pg_am.h"
#include "catalog/pg_class.h"
#include "catalog/pg_inherits.h"
#include "catalog/pg_index.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "lib/stringinfo.h"
#include "nodes/makefuncs.h"
#include "pgtime.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/datum.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/typcache.h"

/* ---- SPI, back in the caller's memory context ---- */

/* a text column of the current SPI result (NULL for SQL NULL) */
char *
iact_sync_spi_text(HeapTuple tup, int col)
{
	bool		isnull;
	Datum		d = SPI_getbinval(tup, SPI_tuptable->tupdesc, col, &isnull);

	return isnull ? NULL : TextDatumGetCString(d);
}

/* run sql, which must return the SPI code expected */
void
iact_sync_spi_exec(const char *sql, int expected)
{
	MemoryContext cxt = CurrentMemoryContext;
	int			rc = SPI_execute(sql, false, 0);

	MemoryContextSwitchTo(cxt);
	if (rc != expected)
		elog(ERROR, "SPI_execute failed (%d): %s", rc, sql);
}

/* run sql with the parameters p (NULL: none); returns SPI_processed */
uint64
iact_sync_spi_args(const char *sql, SyncParams *p, int expected, long count, const char *what)
{
	MemoryContext cxt = CurrentMemoryContext;
	int			rc = SPI_execute_with_args(sql, p ? p->n : 0, p ? p->types : NULL,
										   p ? p->values : NULL, p ? p->nulls : NULL, false, count);

	MemoryContextSwitchTo(cxt);
	if (rc != expected)
		elog(ERROR, "%s failed", what);
	return SPI_processed;
}

/* run a prepared plan; returns SPI_processed */
uint64
iact_sync_spi_plan(SPIPlanPtr plan, Datum *args, const char *nulls, int expected, const char *what)
{
	MemoryContext cxt = CurrentMemoryContext;
	int			rc = SPI_execute_plan(plan, args, nulls, false, 0);

	MemoryContextSwitchTo(cxt);
	if (rc != expected)
		elog(ERROR, "%s failed", what);
	return SPI_processed;
}

/* a statement prepared for the whole run (freed by the writer's release) */
SPIPlanPtr
iact_sync_spi_prepare(const char *sql, int nargs, Oid *argtypes, int cursor_options)
{
	MemoryContext cxt = CurrentMemoryContext;
	SPIPlanPtr	plan = SPI_prepare_cursor(sql, nargs, argtypes, cursor_options);

	MemoryContextSwitchTo(cxt);
	if (plan == NULL)
		elog(ERROR, "could not prepare \"%s\": %s", sql, SPI_result_code_string(SPI_result));
	SPI_keepplan(plan);
	return plan;
}

/* a read-only cursor over a prepared plan */
Portal
iact_sync_cursor_open(SPIPlanPtr plan, Datum *args)
{
	MemoryContext cxt = CurrentMemoryContext;
	Portal		portal = SPI_cursor_open(NULL, plan, args, NULL, false);

	MemoryContextSwitchTo(cxt);
	return portal;
}

/* the cursor's next n rows: the tuple table (in SPI_tuptable too), *nrows set */
SPITupleTable *
iact_sync_cursor_fetch(Portal portal, long n, int *nrows)
{
	MemoryContext cxt = CurrentMemoryContext;

	SPI_cursor_fetch(portal, true, n);
	MemoryContextSwitchTo(cxt);
	*nrows = (int) SPI_processed;
	return SPI_tuptable;
}

/* ---- the target's columns ---- */

/* one target column that the source has too: its conversion prepared */
static void
add_column(SyncRun *r, Form_pg_attribute att, char *dtype, char *ctype)
{
	SyncTarget *t = &r->tgt;
	SyncColumn *col = &t->cols[t->ncols];
	int			k;

	col->name = pstrdup(NameStr(att->attname));
	col->attnum = att->attnum;
	col->typid = att->atttypid;
	col->typmod = att->atttypmod;
	col->src_data_type = dtype;
	col->src_column_type = ctype;
	for (k = 0; k < r->conf.nkeys; k++)
		if (strcmp(r->conf.keys[k], col->name) == 0)
			col->is_key = true;
	col->not_null = col->is_key || att->attnotnull;
	if (r->src.tz_name)
	{
		col->src_tz_name = r->src.tz_name;
		col->src_tz = pg_tzset(r->src.tz_name);
	}
	if (r->conf.wm_col && strcmp(r->conf.wm_col, col->name) == 0)
		t->wm_idx = t->ncols;
	if (r->conf.ret_col && strcmp(r->conf.ret_col, col->name) == 0)
		t->ret_idx = t->ncols;
	iact_sync_column_prepare(col);
	t->ncols++;
}

/* every key, the watermark and the retention column are on both sides */
static void
check_columns(SyncRun *r)
{
	SyncTarget *t = &r->tgt;
	int			i,
				k;

	for (k = 0; k < r->conf.nkeys; k++)
	{
		for (i = 0; i < t->ncols; i++)
			if (strcmp(r->conf.keys[k], t->cols[i].name) == 0)
				break;
		if (i == t->ncols)
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_COLUMN),
					 errmsg("key column \"%s\" is missing in the source or the target of %s",
							r->conf.keys[k], r->conf.tgt_qual)));
	}
	if ((r->conf.wm_col && t->wm_idx < 0) || (r->conf.ret_col && t->ret_idx < 0))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_COLUMN),
				 errmsg("column \"%s\" is missing in the source or the target of %s",
						(r->conf.wm_col && t->wm_idx < 0) ? r->conf.wm_col : r->conf.ret_col,
						r->conf.tgt_qual)));
	if (t->wm_idx >= 0)
	{
		const char *dt = t->cols[t->wm_idx].src_data_type;

		t->wm_temporal = strcmp(dt, "date") == 0 || strcmp(dt, "datetime") == 0 ||
			strcmp(dt, "timestamp") == 0;
	}
}

/*
 * Match the target's columns with the source's (names, information_schema
 * DATA_TYPE and COLUMN_TYPE, in the source's order) and prepare their
 * conversions: fills r->tgt.
 */
void
iact_sync_target_resolve(SyncRun *r, List *names, List *dtypes, List *ctypes)
{
	SyncTarget *t = &r->tgt;
	Oid			relid;
	int			i;

	relid = RangeVarGetRelid(makeRangeVar(r->conf.tgt_schema, r->conf.tgt_table, -1), NoLock, true);
	if (!OidIsValid(relid))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("target table %s does not exist", r->conf.tgt_qual),
				 errhint("Register the table again with iact.sync_add_table() to create it.")));
	t->relid = relid;
	t->rowtype = get_rel_type_id(relid);
	t->arraytype = get_array_type(t->rowtype);
	t->tupdesc = lookup_rowtype_tupdesc_copy(t->rowtype, -1);
	get_typlenbyvalalign(t->rowtype, &t->rowlen, &t->rowbyval, &t->rowalign);

	t->cols = palloc0(sizeof(SyncColumn) * t->tupdesc->natts);
	t->ncols = 0;
	t->wm_idx = t->ret_idx = -1;
	for (i = 0; i < t->tupdesc->natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(t->tupdesc, i);
		ListCell   *ln,
				   *ld,
				   *lt;

		if (att->attisdropped || att->attgenerated)
			continue;
		forthree(ln, names, ld, dtypes, lt, ctypes)
		{
			if (strcmp((char *) lfirst(ln), NameStr(att->attname)) == 0)
				break;
		}
		if (ln != NULL)			/* else a column only the target has */
			add_column(r, att, lfirst(ld), lfirst(lt));
	}
	check_columns(r);
	t->inherits = get_rel_relkind(relid) == RELKIND_RELATION && has_subclass(relid);
	t->tree = t->inherits || get_rel_relkind(relid) == RELKIND_PARTITIONED_TABLE;
}

/* one converted row as a composite Datum of the target's row type (the statements' form) */
Datum
iact_sync_row_datum(SyncRun *r, Datum *values, bool *nulls)
{
	HeapTuple	tup = heap_form_tuple(r->tgt.tupdesc, values, nulls);

	return heap_copy_tuple_as_datum(tup, r->tgt.tupdesc);
}

/* rows made by iact_sync_row_datum as one array of the row type */
Datum
iact_sync_rows_array(SyncRun *r, Datum *rows, int n)
{
	SyncTarget *t = &r->tgt;

	return PointerGetDatum(construct_array(rows, n, t->rowtype, t->rowlen, t->rowbyval, t->rowalign));
}

/*
 * The target's columns as a list: all, the keys only or the others only,
 * each after prefix.  In the non-key list (compared with IS DISTINCT FROM)
 * a type without = (json, point, xml) is compared as text.
 */
char *
iact_sync_column_list(SyncRun *r, const char *prefix, bool keys_only, bool non_keys_only)
{
	StringInfoData s;
	int			i;

	initStringInfo(&s);
	for (i = 0; i < r->tgt.ncols; i++)
	{
		SyncColumn *c = &r->tgt.cols[i];

		if ((keys_only && !c->is_key) || (non_keys_only && c->is_key))
			continue;
		appendStringInfo(&s, "%s%s%s", s.len ? ", " : "", prefix, quote_identifier(c->name));
		if (non_keys_only && !OidIsValid(lookup_type_cache(c->typid, TYPECACHE_EQ_OPR)->eq_opr))
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

	for (i = 0; i < r->tgt.ncols; i++)
		if (r->tgt.cols[i].is_key)
		{
			const char *c = quote_identifier(r->tgt.cols[i].name);

			appendStringInfo(sql, "%s%s.%s = %s.%s", first ? "" : " AND ", a, c, b, c);
			first = false;
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

/* ---- retention ---- */

/* the retention cutoff in the retention column's type (converted once per run) */
Datum
iact_sync_cutoff_param(SyncRun *r, bool *isnull)
{
	SyncTarget *t = &r->tgt;

	if (!t->have_cutoff_value)
	{
		MemoryContext old = MemoryContextSwitchTo(r->cxt);

		t->cutoff_value = iact_sync_range_param(r, t->ret_idx, t->cutoff, &t->cutoff_isnull);
		t->have_cutoff_value = true;
		MemoryContextSwitchTo(old);
	}
	*isnull = t->cutoff_isnull;
	return t->cutoff_value;
}

/*
 * The retention cutoff (r->tgt.cutoff), now minus retention_days, as the
 * source's wall-clock text: a MariaDB timestamp is read as UTC, dates and
 * datetimes are local with the server's source_time_zone.  None without
 * retention.
 */
void
iact_sync_retention_cutoff(SyncRun *r)
{
	SyncParams	p = {1, {INT4OID}, {Int32GetDatum(r->conf.retention_days)}, {' '}};
	int			nest;

	if (!(r->conf.ret_col && r->conf.retention_days > 0))
		return;
	nest = (r->src.tz_name && strcmp(r->tgt.cols[r->tgt.ret_idx].src_data_type, "timestamp") != 0) ?
		iact_sync_zone_begin(r->src.tz_name) : -1;
	(void) iact_sync_spi_args(nest >= 0 ?
							  "SELECT pg_catalog.to_char(pg_catalog.now()::pg_catalog.timestamp "
							  "OPERATOR(pg_catalog.-) pg_catalog.make_interval(days => $1), "
							  "'YYYY-MM-DD HH24:MI:SS')" :
							  "SELECT to_char((now() AT TIME ZONE 'UTC') - make_interval(days => $1), "
							  "'YYYY-MM-DD HH24:MI:SS')", &p, SPI_OK_SELECT, 1,
							  "computing the retention cutoff");
	if (nest >= 0)
		iact_sync_zone_end(nest);
	r->tgt.cutoff = iact_sync_spi_text(SPI_tuptable->vals[0], 1);
}

/*
 * The one condition on the target's rows that the retention keeps: appends
 * " AND (alias.col >= $n OR alias.col IS NULL)" to sql and the cutoff to p
 * (its type only when p is used for a prepare).  Rows older than the cutoff
 * are not read from the source, so nothing but the purge may touch them.
 * Returns false (nothing appended) without retention.
 */
bool
iact_sync_append_retained(StringInfo sql, SyncRun *r, const char *alias, SyncParams *p)
{
	const char *col;
	const char *pre = alias ? psprintf("%s.", alias) : "";
	bool		isnull;

	if (r->tgt.ret_idx < 0 || r->tgt.cutoff == NULL)
		return false;
	col = quote_identifier(r->conf.ret_col);
	p->types[p->n] = r->tgt.cols[r->tgt.ret_idx].typid;
	p->values[p->n] = iact_sync_cutoff_param(r, &isnull);
	p->nulls[p->n] = isnull ? 'n' : ' ';
	p->n++;
	appendStringInfo(sql, " AND (%s%s >= $%d OR %s%s IS NULL)", pre, col, p->n, pre, col);
	return true;
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
	SyncParams	p = {2, {r->tgt.cols[r->tgt.ret_idx].typid, INT4OID}, {0, 0}, {' ', ' '}};
	const char *col = quote_identifier(r->conf.ret_col);
	const char *q = r->conf.tgt_qual;
	char	   *sql;
	bool		isnull;

	if (r->tgt.tree)
		sql = psprintf("WITH x AS MATERIALIZED (SELECT tableoid AS o, ctid AS c FROM %s WHERE %s OPERATOR(pg_catalog.<) $1 LIMIT $2) "
					   "DELETE FROM %s WHERE ctid OPERATOR(pg_catalog.=) ANY (ARRAY(SELECT c FROM x)) "
					   "AND (tableoid, ctid) IN (SELECT o, c FROM x)", q, col, q);
	else
		sql = psprintf("DELETE FROM %s WHERE ctid OPERATOR(pg_catalog.=) ANY (ARRAY(SELECT ctid FROM %s "
					   "WHERE %s OPERATOR(pg_catalog.<) $1 LIMIT $2))", q, q, col);
	p.values[0] = iact_sync_cutoff_param(r, &isnull);
	p.values[1] = Int32GetDatum(r->conf.batch_size);
	for (;;)
	{
		uint64		n;

		CHECK_FOR_INTERRUPTS();
		n = iact_sync_spi_args(sql, &p, SPI_OK_DELETE, 0, "the retention purge");
		r->n.purged += n;
		if (n == 0)
			break;
	}
}

/* ---- the key's unique index ---- */

/*
 * Does the index cover exactly the key columns (as a set; without key_col
 * no INCLUDE columns besides them)?  With key_col, also maps its key columns to
 * r->tgt.cols and requires their types to be the index's own.
 */
static bool
index_on_keys(SyncRun *r, Relation idx, int *key_col)
{
	Form_pg_index ix = idx->rd_index;
	Bitmapset  *seen = NULL;
	int			i,
				c;

	if (ix->indnkeyatts != r->conf.nkeys)
		return false;
	/* the upsert's lookup uses the key columns; the begin step's check all */
	for (i = 0; i < (key_col ? ix->indnkeyatts : ix->indnatts); i++)
	{
		for (c = 0; c < r->tgt.ncols; c++)
			if (r->tgt.cols[c].is_key && r->tgt.cols[c].attnum == ix->indkey.values[i])
				break;
		if (c == r->tgt.ncols)
			return false;
		if (key_col != NULL && i < ix->indnkeyatts)
		{
			if (r->tgt.cols[c].typid != idx->rd_opcintype[i])
				return false;
			key_col[i] = c;
		}
		seen = bms_add_member(seen, c);
	}
	return bms_num_members(seen) == r->conf.nkeys;
}

/*
 * The target's unique index on exactly the key columns, without expressions
 * or a predicate: the one question of "may this table be upserted by key",
 * asked by the begin step (none: the run fails) and by the direct upsert
 * (for_lookup: a valid, immediate btree whose columns have the key's types,
 * key_col[] mapping its columns to r->tgt.cols).  InvalidOid: none.
 */
Oid
iact_sync_key_index(SyncRun *r, Relation rel, bool for_lookup, int *key_col)
{
	List	   *idxs = RelationGetIndexList(rel);
	ListCell   *lc;
	Oid			found = InvalidOid;

	foreach(lc, idxs)
	{
		Relation	idx = index_open(lfirst_oid(lc), AccessShareLock);
		Form_pg_index ix = idx->rd_index;

		if (ix->indisunique &&
			heap_attisnull(idx->rd_indextuple, Anum_pg_index_indexprs, NULL) &&
			heap_attisnull(idx->rd_indextuple, Anum_pg_index_indpred, NULL) &&
			(!for_lookup || (ix->indimmediate && ix->indisvalid && ix->indislive &&
							 idx->rd_rel->relam == BTREE_AM_OID)) &&
			index_on_keys(r, idx, for_lookup ? key_col : NULL))
			found = RelationGetRelid(idx);
		index_close(idx, AccessShareLock);
		if (OidIsValid(found))
			break;
	}
	list_free(idxs);
	return found;
}
