/*-------------------------------------------------------------------------
 *
 * backfill.c
 *	  CALL iact.backfill(...): update a table in primary-key order, in
 *	  batches, committing after each one.
 *
 * A backfill is named.  Its row in iact.backfill_runs records the key range
 * it covers and the last key done, and is updated in the same transaction as
 * each batch: after an interruption (error, cancel, killed backend, crash)
 * calling it again with the same name continues right after the last
 * committed batch, and no row is updated twice.
 *
 * The range is fixed when the backfill starts: from the lowest key to the
 * highest key present then.  Rows inserted later above that bound are not
 * visited, so the backfill finishes however fast new rows arrive (new rows
 * are the application's to write in the new shape).  Each batch is one
 * UPDATE over at most batch_size rows found by a keyset scan of the primary
 * key, so row locks are held for one batch only; an optional pause between
 * batches leaves room for the rest of the workload.
 *
 * The UPDATE runs as the calling role; progress is written as the owner of
 * iact's tables (iact_migration_log_exec).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "migration.h"

#include "access/htup_details.h"
#include "access/table.h"
#include "access/stratnum.h"
#include "access/xact.h"
#include "catalog/pg_operator.h"
#include "catalog/pg_type.h"
#include "common/hashfn.h"
#include "lib/stringinfo.h"
#include "parser/parser.h"
#include "pgstat.h"
#include "storage/latch.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/timestamp.h"
#include "utils/syscache.h"
#include "utils/typcache.h"

PG_FUNCTION_INFO_V1(iact_backfill);

#define BACKFILL_NOTICE_EVERY_MS 5000

typedef struct Backfill
{
	char	   *name;
	Oid			relid;
	char	   *relname;		/* qualified, quoted */
	char	   *set_sql;
	char	   *where_sql;		/* NULL: every row */
	int			batch_size;
	int			pause_ms;
	int			nkeys;
	char	  **keycols;		/* quoted */
	char	  **keytypes;		/* format_type(), schema-qualified */
	const char *keyops_nsp;		/* schema of the keys' btree operators, quoted */
	char	  **upper;			/* highest key at start; NULL: table was empty */
	char	  **last;			/* last key done; NULL: none yet */
	int64		rows_done;
	int64		batches;
	int64		estimate;
	double		run_seconds;
	char	   *first_sql;		/* batch query without a lower bound */
	char	   *next_sql;		/* batch query after last */
	MemoryContext cxt;			/* lives for the whole CALL, across commits */
} Backfill;

static void backfill_key_style(void);

/* take the backfill's lock (session level), refusing a second run of it */
static void
backfill_lock(const char *name)
{
	uint32		h = hash_bytes((const unsigned char *) name, strlen(name));

	if (!iact_lock_acquire(IACT_LOCK_FOR_BACKFILL, h, true, false))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_IN_USE),
				 errmsg("backfill %s is already running in another session", name),
				 errhint("SELECT * FROM iact.backfill_progress shows its progress.")));
}

/* release the backfill's lock (an abort inside SPI_commit may have already) */
static void
backfill_unlock(const char *name)
{
	iact_lock_release(IACT_LOCK_FOR_BACKFILL,
					  hash_bytes((const unsigned char *) name, strlen(name)));
}

/* the schema of operator opno */
static Oid
backfill_op_namespace(Oid opno)
{
	HeapTuple	tp = SearchSysCache1(OPEROID, ObjectIdGetDatum(opno));
	Oid			nsp;

	if (!HeapTupleIsValid(tp))
		elog(ERROR, "cache lookup failed for operator %u", opno);
	nsp = ((Form_pg_operator) GETSTRUCT(tp))->oprnamespace;
	ReleaseSysCache(tp);
	return nsp;
}

/*
 * The batches compare keys with the key type's default btree operators,
 * named schema-qualified (OPERATOR(nsp.>)) so that the caller's
 * search_path -- under which the user's set_sql and where_sql must still
 * resolve -- cannot substitute another operator.  A row comparison names
 * one operator for every column, so all key columns' operators must live
 * in one schema (pg_catalog for built-in types).
 */
static void
backfill_key_ops(Backfill *b, Oid typid)
{
	TypeCacheEntry *tc = lookup_type_cache(typid, TYPECACHE_BTREE_OPFAMILY);
	Oid			opno = InvalidOid;
	const char *nsp;

	if (OidIsValid(tc->btree_opf))
		opno = get_opfamily_member(tc->btree_opf, tc->btree_opintype, tc->btree_opintype,
								   BTGreaterStrategyNumber);
	if (!OidIsValid(opno))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_FUNCTION),
				 errmsg("the primary key of %s has type %s, which has no default btree operator class",
						b->relname, format_type_be(typid)),
				 errdetail("A backfill walks the table in key order.")));
	nsp = quote_identifier(get_namespace_name(backfill_op_namespace(opno)));
	if (b->keyops_nsp && strcmp(b->keyops_nsp, nsp) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("the primary key columns of %s compare with operators of different schemas (%s, %s)",
						b->relname, b->keyops_nsp, nsp),
				 errhint("Backfill through a single-column unique key instead.")));
	b->keyops_nsp = nsp;
}

/* the primary key's columns and types, in key order */
static void
backfill_key(Backfill *b)
{
	Relation	rel = table_open(b->relid, AccessShareLock);
	AttrNumber *attnums;
	int			i;

	b->nkeys = iact_primary_key(rel, &attnums);
	if (b->nkeys == 0)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("table %s has no primary key", b->relname),
				 errdetail("A backfill walks the table in primary-key order."),
				 errhint("Add a primary key first.")));
	b->keycols = palloc(sizeof(char *) * b->nkeys);
	b->keytypes = palloc(sizeof(char *) * b->nkeys);
	for (i = 0; i < b->nkeys; i++)
	{
		Form_pg_attribute att = TupleDescAttr(RelationGetDescr(rel), attnums[i] - 1);

		b->keycols[i] = pstrdup(quote_identifier(NameStr(att->attname)));
		b->keytypes[i] = format_type_extended(att->atttypid, att->atttypmod,
											  FORMAT_TYPE_TYPEMOD_GIVEN | FORMAT_TYPE_FORCE_QUALIFY);
		backfill_key_ops(b, att->atttypid);
	}
	table_close(rel, NoLock);
}

/* append "(prefix k1 suffix, prefix k2 suffix, ...)" over the key columns */
static void
append_keys(StringInfo buf, Backfill *b, const char *prefix, const char *suffix)
{
	int			i;

	appendStringInfoChar(buf, '(');
	for (i = 0; i < b->nkeys; i++)
		appendStringInfo(buf, "%s%s%s%s", i ? ", " : "", prefix, b->keycols[i], suffix);
	appendStringInfoChar(buf, ')');
}

/* append "($first::type1, $first+1::type2, ...)" over the key columns */
static void
append_params(StringInfo buf, Backfill *b, int first)
{
	int			i;

	appendStringInfoChar(buf, '(');
	for (i = 0; i < b->nkeys; i++)
		appendStringInfo(buf, "%s$%d::%s", i ? ", " : "", first + i, b->keytypes[i]);
	appendStringInfoChar(buf, ')');
}

/*
 * WITH batch AS (SELECT key FROM t WHERE key > $last AND key <= $upper AND (where)
 *                ORDER BY key LIMIT n),
 *      upd AS (UPDATE t SET ... FROM batch WHERE t.key = batch.key AND (where) RETURNING 1)
 * SELECT (SELECT count(*) FROM upd), last key of batch as text
 */
static char *
batch_sql(Backfill *b, bool with_lower)
{
	StringInfoData q;
	int			i;
	int			upper_param = with_lower ? b->nkeys + 1 : 1;

	initStringInfo(&q);
	appendStringInfoString(&q, "WITH batch AS (SELECT ");
	for (i = 0; i < b->nkeys; i++)
		appendStringInfo(&q, "%s%s AS __iact_k%d", i ? ", " : "", b->keycols[i], i);
	appendStringInfo(&q, " FROM %s WHERE ", b->relname);
	if (with_lower)
	{
		append_keys(&q, b, "", "");
		appendStringInfo(&q, " OPERATOR(%s.>) ", b->keyops_nsp);
		append_params(&q, b, 1);
		appendStringInfoString(&q, " AND ");
	}
	append_keys(&q, b, "", "");
	appendStringInfo(&q, " OPERATOR(%s.<=) ", b->keyops_nsp);
	append_params(&q, b, upper_param);
	if (b->where_sql)
		appendStringInfo(&q, " AND (%s)", b->where_sql);
	appendStringInfoString(&q, " ORDER BY ");
	for (i = 0; i < b->nkeys; i++)
		appendStringInfo(&q, "%s%s", i ? ", " : "", b->keycols[i]);
	appendStringInfo(&q, " LIMIT %d), upd AS (UPDATE %s AS __iact_t SET %s FROM batch WHERE ",
					 b->batch_size, b->relname, b->set_sql);
	append_keys(&q, b, "__iact_t.", "");
	appendStringInfo(&q, " OPERATOR(%s.=) (", b->keyops_nsp);
	for (i = 0; i < b->nkeys; i++)
		appendStringInfo(&q, "%sbatch.__iact_k%d", i ? ", " : "", i);
	appendStringInfoChar(&q, ')');
	if (b->where_sql)
		appendStringInfo(&q, " AND (%s)", b->where_sql);
	appendStringInfoString(&q, " RETURNING 1) SELECT (SELECT pg_catalog.count(*) FROM upd)");
	for (i = 0; i < b->nkeys; i++)
		appendStringInfo(&q, ", l.__iact_k%d::pg_catalog.text", i);
	appendStringInfoString(&q, " FROM (SELECT * FROM batch ORDER BY ");
	for (i = 0; i < b->nkeys; i++)
		appendStringInfo(&q, "%s__iact_k%d DESC", i ? ", " : "", i);
	appendStringInfoString(&q, " LIMIT 1) l");

	/* set_sql and where_sql are fragments: the whole must be one statement */
	if (list_length(raw_parser(q.data, RAW_PARSE_DEFAULT)) != 1)
		ereport(ERROR,
				(errcode(ERRCODE_SYNTAX_ERROR),
				 errmsg("set_sql and where_sql must be expressions, not statements"),
				 errhint("Example: set_sql => 'full_name = first_name || '' '' || last_name', "
						 "where_sql => 'full_name IS NULL'.")));
	return q.data;
}

/* a key's values (text) as a text[] Datum, as iact.backfill_runs stores it */
static Datum
keys_to_array(char **keys, int n)
{
	Datum	   *d = palloc(sizeof(Datum) * n);
	int			i;

	for (i = 0; i < n; i++)
		d[i] = CStringGetTextDatum(keys[i]);
	return PointerGetDatum(construct_array(d, n, TEXTOID, -1, false, TYPALIGN_INT));
}

/* a text[] Datum of key values back as strings; *n gets their number */
static char **
array_to_keys(Datum a, int *n)
{
	Datum	   *d;
	bool	   *nulls;
	char	  **keys;
	int			i;

	deconstruct_array(DatumGetArrayTypeP(a), TEXTOID, -1, false, TYPALIGN_INT, &d, &nulls, n);
	keys = palloc(sizeof(char *) * (*n));
	for (i = 0; i < *n; i++)
		keys[i] = TextDatumGetCString(d[i]);
	return keys;
}

/* a key's values as "v1, v2", for messages */
static char *
keys_text(char **keys, int n)
{
	StringInfoData buf;
	int			i;

	initStringInfo(&buf);
	for (i = 0; i < n; i++)
		appendStringInfo(&buf, "%s%s", i ? ", " : "", keys[i]);
	return buf.data;
}

static bool
same_text(const char *a, const char *b)
{
	return (a == NULL && b == NULL) || (a && b && strcmp(a, b) == 0);
}

/*
 * Refuse to resume a backfill whose table's primary key is no longer the key
 * it walked (saved, the key_columns it was started with): its last_key and
 * upper_key are values of those columns.  The saved columns may go on after
 * the current ones: a build before iact_primary_key saved a primary key's
 * INCLUDE columns too, after its key columns.
 */
static void
backfill_check_saved_key(Backfill *b, Datum saved)
{
	int			n;
	char	  **cols = array_to_keys(saved, &n);
	int			i;

	for (i = 0; i < b->nkeys; i++)
		if (i >= n || strcmp(cols[i], b->keycols[i]) != 0)
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("backfill %s walked %s by key (%s), but its primary key is now (%s)",
							b->name, b->relname, keys_text(cols, n),
							keys_text(b->keycols, b->nkeys)),
					 errdetail("Its saved progress is a position in the old key."),
					 errhint("Run it under another name.")));
}

/* Load the named backfill; returns false if there is none. */
static bool
backfill_load(Backfill *b, char **status)
{
	Oid			types[1] = {TEXTOID};
	Datum		vals[1] = {CStringGetTextDatum(b->name)};
	HeapTuple	tup;
	TupleDesc	desc;
	bool		isnull;
	Datum		d;
	int			n;

	iact_migration_log_exec("SELECT target_oid, set_sql, where_sql, status, last_key, upper_key, "
							"rows_done, batches, estimated_total, run_seconds, target_table, key_columns "
							"FROM iact.backfill_runs WHERE name = $1 FOR UPDATE",
							1, types, vals, NULL, false);
	if (SPI_processed == 0)
		return false;
	tup = SPI_tuptable->vals[0];
	desc = SPI_tuptable->tupdesc;
	if (DatumGetObjectId(SPI_getbinval(tup, desc, 1, &isnull)) != b->relid ||
		!same_text(SPI_getvalue(tup, desc, 2), b->set_sql) ||
		!same_text(SPI_getvalue(tup, desc, 3), b->where_sql))
		ereport(ERROR,
				(errcode(ERRCODE_DUPLICATE_OBJECT),
				 errmsg("backfill %s already exists with a different definition", b->name),
				 errdetail("It updates %s SET %s%s%s.", SPI_getvalue(tup, desc, 11),
						   SPI_getvalue(tup, desc, 2),
						   SPI_getvalue(tup, desc, 3) ? " WHERE " : "",
						   SPI_getvalue(tup, desc, 3) ? SPI_getvalue(tup, desc, 3) : ""),
				 errhint("Resume it with the same table, set_sql and where_sql, or choose another name.")));
	*status = SPI_getvalue(tup, desc, 4);
	if (strcmp(*status, "done") != 0)
		backfill_check_saved_key(b, SPI_getbinval(tup, desc, 12, &isnull));
	d = SPI_getbinval(tup, desc, 5, &isnull);
	b->last = isnull ? NULL : array_to_keys(d, &n);
	if (b->last && n < b->nkeys)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("backfill %s: its last_key has %d values for %d key columns", b->name, n, b->nkeys),
				 errhint("Run it under another name.")));
	d = SPI_getbinval(tup, desc, 6, &isnull);
	b->upper = isnull ? NULL : array_to_keys(d, &n);
	if (b->upper && n < b->nkeys)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("backfill %s: its upper_key has %d values for %d key columns", b->name, n, b->nkeys),
				 errhint("Run it under another name.")));
	b->rows_done = DatumGetInt64(SPI_getbinval(tup, desc, 7, &isnull));
	b->batches = DatumGetInt64(SPI_getbinval(tup, desc, 8, &isnull));
	d = SPI_getbinval(tup, desc, 9, &isnull);
	b->estimate = isnull ? 0 : DatumGetInt64(d);
	b->run_seconds = DatumGetFloat8(SPI_getbinval(tup, desc, 10, &isnull));
	return true;
}

/* A new backfill: fix its upper bound and estimate, and record it. */
static void
backfill_create(Backfill *b)
{
	StringInfoData q;
	Oid			types[12] = {TEXTOID, TEXTOID, OIDOID, TEXTOID, TEXTOID, TEXTARRAYOID,
	TEXTARRAYOID, INT4OID, INT4OID, INT8OID, NAMEOID, INT4OID};
	Datum		v[12];
	char		n[13] = "            ";
	bool		isnull;
	int			i;
	int			save_nestlevel;

	initStringInfo(&q);
	appendStringInfoString(&q, "SELECT ");
	for (i = 0; i < b->nkeys; i++)
		appendStringInfo(&q, "%s%s::pg_catalog.text AS __iact_u%d", i ? ", " : "", b->keycols[i], i);
	/* aliased: ORDER BY must sort by the key, not by its text */
	appendStringInfo(&q, " FROM %s ORDER BY ", b->relname);
	for (i = 0; i < b->nkeys; i++)
		appendStringInfo(&q, "%s%s DESC", i ? ", " : "", b->keycols[i]);
	appendStringInfoString(&q, " LIMIT 1");
	save_nestlevel = NewGUCNestLevel();
	backfill_key_style();
	if (SPI_execute(q.data, true, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not read the highest key of %s", b->relname);
	AtEOXact_GUC(true, save_nestlevel);
	b->upper = NULL;
	if (SPI_processed == 1)
	{
		b->upper = palloc(sizeof(char *) * b->nkeys);
		for (i = 0; i < b->nkeys; i++)
			b->upper[i] = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, i + 1);
	}

	v[0] = ObjectIdGetDatum(b->relid);
	if (SPI_execute_with_args("SELECT GREATEST(c.reltuples::pg_catalog.int8, "
							  "coalesce(s.n_live_tup, 0), 0) "
							  "FROM pg_catalog.pg_class c "
							  "LEFT JOIN pg_catalog.pg_stat_user_tables s "
							  "ON s.relid OPERATOR(pg_catalog.=) c.oid "
							  "WHERE c.oid OPERATOR(pg_catalog.=) $1", 1, &types[2], v, NULL, true, 1) == SPI_OK_SELECT &&
		SPI_processed == 1)
		b->estimate = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0],
												  SPI_tuptable->tupdesc, 1, &isnull));

	v[0] = CStringGetTextDatum(b->name);
	v[1] = CStringGetTextDatum(b->relname);
	v[2] = ObjectIdGetDatum(b->relid);
	v[3] = CStringGetTextDatum(b->set_sql);
	v[4] = b->where_sql ? CStringGetTextDatum(b->where_sql) : (Datum) 0;
	n[4] = b->where_sql ? ' ' : 'n';
	v[5] = keys_to_array(b->keycols, b->nkeys);
	v[6] = b->upper ? keys_to_array(b->upper, b->nkeys) : (Datum) 0;
	n[6] = b->upper ? ' ' : 'n';
	v[7] = Int32GetDatum(b->batch_size);
	v[8] = Int32GetDatum(b->pause_ms);
	v[9] = Int64GetDatum(b->estimate);
	v[10] = DirectFunctionCall1(namein, CStringGetDatum(GetUserNameFromId(GetUserId(), false)));
	v[11] = Int32GetDatum(MyProcPid);
	iact_migration_log_exec("INSERT INTO iact.backfill_runs (name, target_table, target_oid, set_sql, "
							"where_sql, key_columns, upper_key, batch_size, pause_ms, estimated_total, "
							"started_by, backend_pid, status) "
							"VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, 'running')",
							12, types, v, n, false);
}

/* Record progress (or the end) in the same transaction as the batch. */
static void
backfill_save(Backfill *b, const char *status, const char *error)
{
	Oid			types[9] = {TEXTOID, TEXTARRAYOID, INT8OID, INT8OID, FLOAT8OID, TEXTOID,
	TEXTOID, INT4OID, INT4OID};
	Datum		v[9];
	char		n[10] = "         ";

	v[0] = CStringGetTextDatum(b->name);
	v[1] = b->last ? keys_to_array(b->last, b->nkeys) : (Datum) 0;
	n[1] = b->last ? ' ' : 'n';
	v[2] = Int64GetDatum(b->rows_done);
	v[3] = Int64GetDatum(b->batches);
	v[4] = Float8GetDatum(b->run_seconds);
	v[5] = CStringGetTextDatum(status);
	v[6] = error ? CStringGetTextDatum(error) : (Datum) 0;
	n[6] = error ? ' ' : 'n';
	v[7] = Int32GetDatum(b->batch_size);
	v[8] = Int32GetDatum(b->pause_ms);
	iact_migration_log_exec("UPDATE iact.backfill_runs SET last_key = $2, rows_done = $3, batches = $4, "
							"run_seconds = $5, status = $6, error_message = $7, batch_size = $8, "
							"pause_ms = $9, backend_pid = pg_backend_pid(), updated_at = clock_timestamp(), "
							"finished_at = CASE WHEN $6 = 'done' THEN clock_timestamp() END "
							"WHERE name = $1",
							9, types, v, n, false);
}

/*
 * One batch; returns false when there was nothing left.  The rows it
 * updated and its last key are returned (in CurrentMemoryContext), not
 * applied to b: the caller applies them once the batch has succeeded.
 */
static bool
backfill_batch(Backfill *b, int64 *rows, char ***last)
{
	Oid		   *types = palloc(sizeof(Oid) * 2 * b->nkeys);
	Datum	   *vals = palloc(sizeof(Datum) * 2 * b->nkeys);
	int			nparams = 0;
	int			i;
	bool		isnull;
	int			ret;

	if (b->upper == NULL)
		return false;
	if (b->last)
		for (i = 0; i < b->nkeys; i++)
		{
			types[nparams] = TEXTOID;
			vals[nparams++] = CStringGetTextDatum(b->last[i]);
		}
	for (i = 0; i < b->nkeys; i++)
	{
		types[nparams] = TEXTOID;
		vals[nparams++] = CStringGetTextDatum(b->upper[i]);
	}
	ret = SPI_execute_with_args(b->last ? b->next_sql : b->first_sql, nparams, types, vals,
								NULL, false, 0);
	if (ret != SPI_OK_SELECT)
		elog(ERROR, "backfill batch failed: %s", SPI_result_code_string(ret));
	if (SPI_processed == 0)
		return false;
	*rows = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	*last = palloc(sizeof(char *) * b->nkeys);
	for (i = 0; i < b->nkeys; i++)
		(*last)[i] = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, i + 2);
	return true;
}

/*
 * The progress NOTICE (rows done, share of the estimate, rate, last key),
 * or with done the final one.
 */
static void
backfill_notice(Backfill *b, bool done)
{
	double		rate = b->run_seconds > 0 ? b->rows_done / b->run_seconds : 0;

	if (done)
		ereport(NOTICE,
				(errmsg("backfill %s done: %lld rows updated in %lld batches",
						b->name, (long long) b->rows_done, (long long) b->batches),
				 errdetail("%.1f s, %.0f rows/s.", b->run_seconds, rate)));
	else
		ereport(NOTICE,
				(errmsg("backfill %s: %lld rows of about %lld (%.1f%%), %.0f rows/s, last key (%s)",
						b->name, (long long) b->rows_done, (long long) b->estimate,
						b->estimate > 0 ? 100.0 * Min(b->rows_done, b->estimate) / b->estimate : 0.0,
						rate, b->last ? keys_text(b->last, b->nkeys) : "")));
}

/* wait ms milliseconds between batches, interruptibly (cancel, shutdown) */
static void
backfill_pause(int ms)
{
	if (ms <= 0)
		return;
	(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
					 ms, PG_WAIT_EXTENSION);
	ResetLatch(MyLatch);
	CHECK_FOR_INTERRUPTS();
}

typedef struct BackfillStep
{
	Backfill   *b;
	bool		more;			/* out: a batch was done, look for the next */
	int64		rows;			/* out: rows it updated */
	char	  **last;			/* out: its last key */
} BackfillStep;

/*
 * Keys travel as text between batches and sessions: render and parse them
 * in one fixed style, whatever the session's DateStyle or IntervalStyle.
 * The caller brackets this with NewGUCNestLevel / AtEOXact_GUC.
 */
static void
backfill_key_style(void)
{
	(void) set_config_option("DateStyle", "ISO, YMD", PGC_USERSET, PGC_S_SESSION,
							 GUC_ACTION_SAVE, true, 0, false);
	(void) set_config_option("IntervalStyle", "postgres", PGC_USERSET, PGC_S_SESSION,
							 GUC_ACTION_SAVE, true, 0, false);
	(void) set_config_option("extra_float_digits", "3", PGC_USERSET, PGC_S_SESSION,
							 GUC_ACTION_SAVE, true, 0, false);
}

/*
 * One batch, in the caller's subtransaction (iact_try_subxact): keys in the
 * fixed text style, then deferred constraints checked at once, so that
 * their failure is this batch's error.
 */
static void
backfill_step(void *arg)
{
	BackfillStep *step = (BackfillStep *) arg;
	int			save_nestlevel = NewGUCNestLevel();

	backfill_key_style();
	step->more = backfill_batch(step->b, &step->rows, &step->last);
	AtEOXact_GUC(true, save_nestlevel);
	/* deferred constraints fail here, as this batch's error, not at its commit */
	(void) SPI_execute("SET CONSTRAINTS ALL IMMEDIATE", false, 0);
}

/* run batches until the range is done; errors are recorded, then raised */
static void
backfill_run(Backfill *b)
{
	MemoryContext cxt = CurrentMemoryContext;
	MemoryContext batch_cxt = AllocSetContextCreate(b->cxt, "iact backfill batch",
													ALLOCSET_DEFAULT_SIZES);
	TimestampTz last_notice = GetCurrentTimestamp();

	for (;;)
	{
		TimestampTz t0 = GetCurrentTimestamp();
		BackfillStep step = {b, false, 0, NULL};
		bool		more;
		ErrorData  *edata;

		CHECK_FOR_INTERRUPTS();
		MemoryContextReset(batch_cxt);	/* what the last batch allocated */
		MemoryContextSwitchTo(batch_cxt);
		edata = iact_try_subxact(backfill_step, &step, b->cxt, false);
		more = step.more;
		if (edata == NULL && more)
		{
			int			i;

			/* the batch succeeded: now it counts */
			b->rows_done += step.rows;
			b->batches++;
			if (b->last == NULL)
				b->last = MemoryContextAllocZero(b->cxt, sizeof(char *) * b->nkeys);
			for (i = 0; i < b->nkeys; i++)
			{
				if (b->last[i])
					pfree(b->last[i]);
				b->last[i] = MemoryContextStrdup(b->cxt, step.last[i]);
			}
		}

		b->run_seconds += (double) (GetCurrentTimestamp() - t0) / USECS_PER_SEC;
		if (edata)
		{
			backfill_save(b, "failed", edata->message);
			SPI_commit();
			iact_rethrow(edata);
		}
		backfill_save(b, more ? "running" : "done", NULL);
		SPI_commit();
		if (!more)
			break;
		if (TimestampDifferenceExceeds(last_notice, GetCurrentTimestamp(), BACKFILL_NOTICE_EVERY_MS))
		{
			backfill_notice(b, false);
			last_notice = GetCurrentTimestamp();
		}
		backfill_pause(b->pause_ms);
	}
	MemoryContextSwitchTo(cxt);
	MemoryContextDelete(batch_cxt);
	backfill_notice(b, true);
}

/*
 * CALL iact.backfill(name, target, set_sql, where_sql, batch_size, pause):
 * only outside a transaction block (it commits after every batch).  Takes
 * the backfill's lock, finds or records its iact.backfill_runs row, and runs
 * the batches left; a second call with the same name resumes, or says it is
 * done.  The lock is released on every path.
 */
Datum
iact_backfill(PG_FUNCTION_ARGS)
{
	MemoryContext cxt;
	MemoryContext oldcxt;
	Backfill   *b;
	char	   *status = NULL;
	double		pause_ms;

	if (!iact_call_is_nonatomic(fcinfo))
		ereport(ERROR,
				(errcode(ERRCODE_ACTIVE_SQL_TRANSACTION),
				 errmsg("iact.backfill must be called outside a transaction block"),
				 errdetail("It commits after every batch so that no lock is held for long."),
				 errhint("Run CALL iact.backfill(...) on its own, in autocommit mode.")));

	cxt = AllocSetContextCreate(PortalContext, "iact backfill", ALLOCSET_DEFAULT_SIZES);
	oldcxt = MemoryContextSwitchTo(cxt);
	b = palloc0(sizeof(Backfill));
	b->cxt = cxt;
	b->name = iact_migration_text_arg(fcinfo, 0, "name");
	if (PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("target must not be NULL")));
	b->relid = PG_GETARG_OID(1);
	b->set_sql = iact_migration_text_arg(fcinfo, 2, "set_sql");
	if (!PG_ARGISNULL(3))
		b->where_sql = iact_migration_text_arg(fcinfo, 3, "where_sql");
	if (PG_ARGISNULL(4) || PG_GETARG_INT32(4) < 1 || PG_GETARG_INT32(4) > 1000000)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("batch_size must be between 1 and 1000000"),
				 errhint("1000 rows per batch is a good start.")));
	b->batch_size = PG_GETARG_INT32(4);
	pause_ms = PG_ARGISNULL(5) ? 0 : iact_migration_interval_ms(PG_GETARG_INTERVAL_P(5));
	if (pause_ms < 0 || pause_ms > 3600 * 1000)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("pause must be between 0 and 1 hour")));
	b->pause_ms = (int) pause_ms;
	if (get_rel_relkind(b->relid) != RELKIND_RELATION &&
		get_rel_relkind(b->relid) != RELKIND_PARTITIONED_TABLE)
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("\"%s\" is not a table", get_rel_name(b->relid))));
	b->relname = quote_qualified_identifier(get_namespace_name(get_rel_namespace(b->relid)),
											get_rel_name(b->relid));

	if (SPI_connect_ext(SPI_OPT_NONATOMIC) != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	backfill_lock(b->name);
	PG_TRY();
	{
		backfill_key(b);
		b->first_sql = batch_sql(b, false);
		b->next_sql = batch_sql(b, true);
		if (!backfill_load(b, &status))
		{
			backfill_create(b);
			ereport(NOTICE,
					(errmsg("backfill %s: updating %s in batches of %d rows by key %s",
							b->name, b->relname, b->batch_size, keys_text(b->keycols, b->nkeys))));
		}
		else if (strcmp(status, "done") == 0)
			ereport(NOTICE,
					(errmsg("backfill %s is already done (%lld rows in %lld batches)",
							b->name, (long long) b->rows_done, (long long) b->batches),
					 errhint("Use another name to run it again.")));
		else
			ereport(NOTICE,
					(errmsg("backfill %s: resuming after key (%s), %lld rows already done",
							b->name, b->last ? keys_text(b->last, b->nkeys) : "",
							(long long) b->rows_done)));
		if (status == NULL || strcmp(status, "done") != 0)
		{
			backfill_save(b, "running", NULL);
			SPI_commit();
			backfill_run(b);
		}
	}
	PG_FINALLY();
	{
		backfill_unlock(b->name);
	}
	PG_END_TRY();
	SPI_finish();
	MemoryContextSwitchTo(oldcxt);
	MemoryContextDelete(cxt);
	PG_RETURN_VOID();
}
