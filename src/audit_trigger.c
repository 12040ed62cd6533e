/*-------------------------------------------------------------------------
 *
 * audit_trigger.c
 *	  The audit writer: iact.audit_trigger(), attached by iact.enable_audit().
 *
 * One C trigger function handles INSERT, UPDATE and DELETE as AFTER ...
 * FOR EACH STATEMENT triggers with transition tables, and TRUNCATE as a
 * statement event.  Per statement it reads the transition tables once, turns
 * each row into jsonb with the jsonb C API (column conversions are looked up
 * once per statement, not per value; keys are put in jsonb order once, so
 * no per-row sort) and appends one row per changed row to iact.audit_row
 * with table_multi_insert plus index maintenance, the way COPY FROM does,
 * then one row to iact.audit_statement (who, when, which table and
 * operation, how many rows): no SPI, no planning, no per-row executor
 * start-up.  The view iact.audit_log joins the two.
 *
 * For UPDATE only the changed columns are kept (old and new values), plus
 * the primary key in old_data so the row can be found; a table without a
 * primary key keeps its whole old row.  Trigger arguments: the first is
 * 't' or 'f' (skip updates that change no audited column), the others are
 * the names of columns never written to the log.
 *
 * Writing bypasses the privileges of the user running the statement on
 * purpose: nobody needs (or gets) INSERT on the audit tables to be audited.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "audit.h"
#include "direct_write.h"

#include "access/heapam.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "catalog/namespace.h"
#include "commands/sequence.h"
#include "commands/trigger.h"
#include "executor/executor.h"
#include "executor/tuptable.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/timestamp.h"
#include "utils/tuplestore.h"

PG_FUNCTION_INFO_V1(iact_audit_trigger);

#define AUDIT_BATCH_ROWS	1000

/* the audit tables' columns, found by name */
enum
{
	ST_ID, ST_TXID, ST_TIMESTAMP, ST_WALLCLOCK, ST_ROWCOUNT, ST_SCHEMA, ST_TABLE,
	ST_OPERATION, ST_USER, ST_ROLE, ST_APPNAME, ST_SESSION, ST_NCOLS
};
static const char *const statement_columns[ST_NCOLS] = {
	"id", "txid", "timestamp", "wall_clock", "row_count", "schema_name", "table_name",
	"operation", "user_id", "role_name", "application_name", "session_role"
};

/* columns from ST_SESSION on came with iact 1.1: a 1.0 table lacks them */
#define ST_NREQUIRED ST_SESSION
enum
{
	RW_STATEMENT, RW_ROWNO, RW_OLD, RW_NEW, RW_NCOLS
};
static const char *const row_columns[RW_NCOLS] = {
	"statement_id", "row_no", "old_data", "new_data"
};

/* everything one trigger firing needs to append to the audit tables */
typedef struct AuditWriter
{
	Relation	target;			/* the audited table */
	const char *operation;
	int64		statement_id;
	int32		nrows;			/* rows written so far */
	EState	   *estate;
	Relation	strel;			/* iact.audit_statement */
	Relation	rowrel;			/* iact.audit_row */
	DirectWriteRel rels[2];		/* audit_statement, audit_row */
	ResultRelInfo *strri;
	ResultRelInfo *rowrri;
	int			stattno[ST_NCOLS];	/* 0-based positions */
	int			rowattno[RW_NCOLS];
	BulkInsertState bistate;	/* NULL for small statements */
	CommandId	cid;
	TupleTableSlot *slots[AUDIT_BATCH_ROWS];
	int			nslots;			/* slots created */
	int			nused;			/* slots filled, not yet written */
	MemoryContext cxt;			/* the writer's own allocations (slots) */
	MemoryContext batchcxt;		/* values of the rows not yet written */
	MemoryContext rowcxt;		/* scratch of one row, reset per row */
} AuditWriter;

/* ---------------------------------------------------------------------
 * Appending to iact.audit_log
 * ---------------------------------------------------------------------
 */

/*
 * Open iact.<name> and find its columns: attno[c] gets the 0-based position
 * of colnames[c].  The first nrequired columns must exist; a later one that
 * does not (a database still at an older iact version) gets -1.
 */
static Relation
audit_open_table(const char *name, const char *const *colnames, int ncols, int nrequired,
				 int *attno)
{
	Oid			relid = get_relname_relid(name, get_namespace_oid("iact", false));
	Relation	rel;
	TupleDesc	desc;

	if (!OidIsValid(relid))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("table iact.%s does not exist", name),
				 errhint("Reinstall the extension: DROP EXTENSION iact; CREATE EXTENSION iact.")));
	rel = table_open(relid, RowExclusiveLock);
	desc = RelationGetDescr(rel);
	for (int c = 0; c < ncols; c++)
	{
		attno[c] = -1;
		for (int i = 0; i < desc->natts; i++)
		{
			Form_pg_attribute att = TupleDescAttr(desc, i);

			if (!att->attisdropped && strcmp(NameStr(att->attname), colnames[c]) == 0)
				attno[c] = i;
		}
		if (attno[c] < 0 && c < nrequired)
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_COLUMN),
					 errmsg("column \"%s\" of iact.%s does not exist", colnames[c], name),
					 errdetail("The audit table has been altered."),
					 errhint("Restore the table definition of the installed iact version.")));
	}
	return rel;
}

static void
audit_writer_open(AuditWriter *w, Relation target, const char *operation, int64 nrows)
{
	Oid			seqid = get_relname_relid("audit_statement_id_seq",
										  get_namespace_oid("iact", false));

	memset(w, 0, sizeof(*w));
	w->target = target;
	w->operation = operation;
	if (!OidIsValid(seqid))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("sequence iact.audit_statement_id_seq does not exist"),
				 errhint("Reinstall the extension: DROP EXTENSION iact; CREATE EXTENSION iact.")));
	w->strel = audit_open_table("audit_statement", statement_columns, ST_NCOLS, ST_NREQUIRED,
								w->stattno);
	w->rowrel = audit_open_table("audit_row", row_columns, RW_NCOLS, RW_NCOLS, w->rowattno);
	w->statement_id = nextval_internal(seqid, false);

	/* executor state for index maintenance, as COPY FROM and logical replication build it */
	w->rels[0].rel = w->strel;
	w->rels[1].rel = w->rowrel;
	w->estate = iact_direct_write_begin(w->rels, 2);
	w->strri = w->rels[0].rri;
	w->rowrri = w->rels[1].rri;
	w->cid = GetCurrentCommandId(true);
	w->estate->es_output_cid = w->cid;
	/* a ring of buffers pays off for big statements only */
	w->bistate = nrows >= AUDIT_BATCH_ROWS ? GetBulkInsertState() : NULL;
	w->cxt = CurrentMemoryContext;
	w->batchcxt = AllocSetContextCreate(CurrentMemoryContext, "iact audit batch",
										ALLOCSET_DEFAULT_SIZES);
	w->rowcxt = AllocSetContextCreate(CurrentMemoryContext, "iact audit row",
									  ALLOCSET_DEFAULT_SIZES);
}

static void
audit_insert_indexes(AuditWriter *w, ResultRelInfo *rri, TupleTableSlot *slot)
{
	if (rri->ri_NumIndices > 0)
	{
		ResetPerTupleExprContext(w->estate);
		list_free(ExecInsertIndexTuples(rri, slot, w->estate, false, false, NULL, NIL));
	}
}

/* write the pending rows: one multi-insert, then their index entries */
static void
audit_writer_flush(AuditWriter *w)
{
	if (w->nused == 0)
		return;
	/* NOT NULL and CHECK constraints of the table, also ones a DBA added */
	if (w->rowrel->rd_att->constr)
		for (int i = 0; i < w->nused; i++)
			ExecConstraints(w->rowrri, w->slots[i], w->estate);
	table_multi_insert(w->rowrel, w->slots, w->nused, w->cid, 0, w->bistate);
	for (int i = 0; i < w->nused; i++)
	{
		audit_insert_indexes(w, w->rowrri, w->slots[i]);
		ExecClearTuple(w->slots[i]);
	}
	w->nused = 0;
	MemoryContextReset(w->batchcxt);
}

/* queue one audit row */
static void
audit_writer_add(AuditWriter *w, Datum old_data, bool old_null, Datum new_data, bool new_null)
{
	TupleTableSlot *slot;

	if (w->nrows == PG_INT32_MAX)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("cannot audit more than %d rows changed by one statement", PG_INT32_MAX),
				 errhint("Change the rows of \"%s\" in several statements.",
						 RelationGetRelationName(w->target))));
	Assert(w->nused < AUDIT_BATCH_ROWS);	/* the caller flushes full batches */
	if (w->nused == w->nslots)
	{
		MemoryContext oldcxt = MemoryContextSwitchTo(w->cxt);

		w->slots[w->nslots++] = table_slot_create(w->rowrel, NULL);
		MemoryContextSwitchTo(oldcxt);
	}
	slot = w->slots[w->nused++];
	ExecClearTuple(slot);
	for (int i = 0; i < slot->tts_tupleDescriptor->natts; i++)
		slot->tts_isnull[i] = true;
	slot->tts_values[w->rowattno[RW_STATEMENT]] = Int64GetDatum(w->statement_id);
	slot->tts_isnull[w->rowattno[RW_STATEMENT]] = false;
	slot->tts_values[w->rowattno[RW_ROWNO]] = Int32GetDatum(++w->nrows);
	slot->tts_isnull[w->rowattno[RW_ROWNO]] = false;
	slot->tts_values[w->rowattno[RW_OLD]] = old_data;
	slot->tts_isnull[w->rowattno[RW_OLD]] = old_null;
	slot->tts_values[w->rowattno[RW_NEW]] = new_data;
	slot->tts_isnull[w->rowattno[RW_NEW]] = new_null;
	ExecStoreVirtualTuple(slot);
}

/* the statement row: who, when, what (after its rows, when the count is known) */
static void
audit_write_statement(AuditWriter *w)
{
	TupleTableSlot *slot = table_slot_create(w->strel, NULL);
	Datum	   *v = slot->tts_values;
	bool	   *isnull = slot->tts_isnull;
	const int  *a = w->stattno;
	const char *userid = GetConfigOption("app.current_user_id", true, false);

	ExecClearTuple(slot);
	for (int i = 0; i < slot->tts_tupleDescriptor->natts; i++)
		isnull[i] = true;
	for (int c = 0; c < ST_NREQUIRED; c++)
		isnull[a[c]] = false;
	v[a[ST_ID]] = Int64GetDatum(w->statement_id);
	v[a[ST_TXID]] = Int64GetDatum((int64) U64FromFullTransactionId(GetTopFullTransactionId()));
	v[a[ST_TIMESTAMP]] = TimestampTzGetDatum(GetCurrentTransactionStartTimestamp());
	v[a[ST_WALLCLOCK]] = TimestampTzGetDatum(GetCurrentTimestamp());
	v[a[ST_ROWCOUNT]] = Int64GetDatum((int64) w->nrows);
	v[a[ST_SCHEMA]] = CStringGetTextDatum(get_namespace_name(RelationGetNamespace(w->target)));
	v[a[ST_TABLE]] = CStringGetTextDatum(RelationGetRelationName(w->target));
	v[a[ST_OPERATION]] = CStringGetTextDatum(w->operation);
	/* an unset or RESET placeholder reads as NULL, not '' */
	isnull[a[ST_USER]] = (userid == NULL || userid[0] == '\0');
	if (!isnull[a[ST_USER]])
		v[a[ST_USER]] = CStringGetTextDatum(userid);
	/*
	 * Who really acted, as PostgreSQL knows it (user_id above is whatever the
	 * application set): the current role, whose rights made the change, and
	 * the session's role, that logged in (only a superuser can change it)
	 */
	v[a[ST_ROLE]] = CStringGetTextDatum(GetUserNameFromId(GetUserId(), false));
	if (a[ST_SESSION] >= 0)
	{
		v[a[ST_SESSION]] = CStringGetTextDatum(GetUserNameFromId(GetSessionUserId(), false));
		isnull[a[ST_SESSION]] = false;
	}
	isnull[a[ST_APPNAME]] = (application_name == NULL || application_name[0] == '\0');
	if (!isnull[a[ST_APPNAME]])
		v[a[ST_APPNAME]] = CStringGetTextDatum(application_name);
	ExecStoreVirtualTuple(slot);
	if (w->strel->rd_att->constr)
		ExecConstraints(w->strri, slot, w->estate);
	table_tuple_insert(w->strel, slot, w->cid, 0, NULL);
	audit_insert_indexes(w, w->strri, slot);
	ExecDropSingleTupleTableSlot(slot);
}

/* write what is pending; the statement row unless nothing at all was recorded */
static void
audit_writer_close(AuditWriter *w, bool always)
{
	audit_writer_flush(w);
	if (w->nrows > 0 || always)
		audit_write_statement(w);
	if (w->bistate)
		FreeBulkInsertState(w->bistate);
	table_finish_bulk_insert(w->rowrel, 0);
	for (int i = 0; i < w->nslots; i++)
		ExecDropSingleTupleTableSlot(w->slots[i]);
	iact_direct_write_end(w->estate, w->rels, 2);
	MemoryContextDelete(w->batchcxt);
	MemoryContextDelete(w->rowcxt);
	table_close(w->rowrel, NoLock);
	table_close(w->strel, NoLock);
}

/* ---------------------------------------------------------------------
 * The trigger
 * ---------------------------------------------------------------------
 */

/* a read position of its own on a transition table (other triggers read it too) */
static void
audit_rewind(Tuplestorestate *ts)
{
	int			ptr = tuplestore_alloc_read_pointer(ts, 0);

	tuplestore_select_read_pointer(ts, ptr);
	tuplestore_rescan(ts);
}

static void
audit_rows(AuditWriter *w, Relation target, Trigger *trigger,
		   Tuplestorestate *oldts, Tuplestorestate *newts)
{
	TupleDesc	desc = RelationGetDescr(target);
	bool		skip_unchanged = (trigger->tgargs[0][0] == 't');
	AuditRowFormat *fmt = iact_audit_row_format(target, trigger->tgargs + 1,
												trigger->tgnargs - 1);
	TupleTableSlot *oldslot = NULL;
	TupleTableSlot *newslot = NULL;

	if (oldts)
	{
		oldslot = MakeSingleTupleTableSlot(desc, &TTSOpsMinimalTuple);
		audit_rewind(oldts);
	}
	if (newts)
	{
		newslot = MakeSingleTupleTableSlot(desc, &TTSOpsMinimalTuple);
		audit_rewind(newts);
	}

	for (;;)
	{
		bool		got_old = oldts && tuplestore_gettupleslot(oldts, true, false, oldslot);
		bool		got_new = newts && tuplestore_gettupleslot(newts, true, false, newslot);
		MemoryContext oldcxt;

		CHECK_FOR_INTERRUPTS();
		if (!got_old && !got_new)
			break;
		if (oldts && newts && got_old != got_new)
			ereport(ERROR,
					(errcode(ERRCODE_INTERNAL_ERROR),
					 errmsg("transition tables of the UPDATE on \"%s\" differ in length",
							RelationGetRelationName(target))));

		/* the jsonb values live until their batch is written */
		if (w->nused == AUDIT_BATCH_ROWS)
			audit_writer_flush(w);
		oldcxt = MemoryContextSwitchTo(w->batchcxt);
		if (got_old && got_new)
		{
			bool		changed;

			/* comparing may detoast: scratch memory, so skipped rows cost none */
			MemoryContextReset(w->rowcxt);
			MemoryContextSwitchTo(w->rowcxt);
			changed = iact_audit_row_diff(fmt, oldslot, newslot);
			MemoryContextSwitchTo(w->batchcxt);

			/* UPDATE: changed columns, plus the key in old_data */
			if (changed || !skip_unchanged)
				audit_writer_add(w,
								 iact_audit_row_jsonb(fmt, oldslot, AUDIT_ROW_CHANGED_AND_KEY), false,
								 iact_audit_row_jsonb(fmt, newslot, AUDIT_ROW_CHANGED), false);
		}
		else if (got_old)
			audit_writer_add(w, iact_audit_row_jsonb(fmt, oldslot, AUDIT_ROW_ALL), false,
							 (Datum) 0, true);
		else
			audit_writer_add(w, (Datum) 0, true,
							 iact_audit_row_jsonb(fmt, newslot, AUDIT_ROW_ALL), false);
		MemoryContextSwitchTo(oldcxt);
	}

	if (oldslot)
		ExecDropSingleTupleTableSlot(oldslot);
	if (newslot)
		ExecDropSingleTupleTableSlot(newslot);
}

Datum
iact_audit_trigger(PG_FUNCTION_ARGS)
{
	TriggerData *td = (TriggerData *) fcinfo->context;
	Trigger    *trigger;
	TriggerEvent ev;
	const char *operation;
	AuditWriter w;

	if (!CALLED_AS_TRIGGER(fcinfo))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("iact.audit_trigger() must be called as a trigger"),
				 errhint("Use iact.enable_audit(table).")));
	ev = td->tg_event;
	trigger = td->tg_trigger;
	if (!TRIGGER_FIRED_AFTER(ev) || !TRIGGER_FIRED_FOR_STATEMENT(ev) || trigger->tgnargs < 1 ||
		(trigger->tgargs[0][0] != 't' && trigger->tgargs[0][0] != 'f'))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("trigger \"%s\" on \"%s\" is not an iact audit trigger",
						trigger->tgname, RelationGetRelationName(td->tg_relation)),
				 errdetail("iact.audit_trigger() must fire AFTER ... FOR EACH STATEMENT with transition tables and the arguments iact.enable_audit() gives it."),
				 errhint("Drop the trigger and run iact.enable_audit(table).")));

	if (TRIGGER_FIRED_BY_INSERT(ev))
		operation = "INSERT";
	else if (TRIGGER_FIRED_BY_UPDATE(ev))
		operation = "UPDATE";
	else if (TRIGGER_FIRED_BY_DELETE(ev))
		operation = "DELETE";
	else
		operation = "TRUNCATE";

	if (TRIGGER_FIRED_BY_TRUNCATE(ev))
	{
		audit_writer_open(&w, td->tg_relation, operation, 0);
		audit_writer_close(&w, true);
		return PointerGetDatum(NULL);
	}

	if ((TRIGGER_FIRED_BY_INSERT(ev) && td->tg_newtable == NULL) ||
		(TRIGGER_FIRED_BY_UPDATE(ev) && (td->tg_oldtable == NULL || td->tg_newtable == NULL)) ||
		(TRIGGER_FIRED_BY_DELETE(ev) && td->tg_oldtable == NULL))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("trigger \"%s\" on \"%s\" has no transition table for %s",
						trigger->tgname, RelationGetRelationName(td->tg_relation), operation),
				 errhint("Drop the trigger and run iact.enable_audit(table).")));

	/* nothing changed: no audit row, and no lock on the audit tables */
	if ((td->tg_newtable == NULL || tuplestore_tuple_count(td->tg_newtable) == 0) &&
		(td->tg_oldtable == NULL || tuplestore_tuple_count(td->tg_oldtable) == 0))
		return PointerGetDatum(NULL);

	audit_writer_open(&w, td->tg_relation, operation,
					  td->tg_newtable ? tuplestore_tuple_count(td->tg_newtable) :
					  tuplestore_tuple_count(td->tg_oldtable));
	audit_rows(&w, td->tg_relation, trigger,
			   TRIGGER_FIRED_BY_INSERT(ev) ? NULL : td->tg_oldtable,
			   TRIGGER_FIRED_BY_DELETE(ev) ? NULL : td->tg_newtable);
	audit_writer_close(&w, false);
	return PointerGetDatum(NULL);
}
