/*-------------------------------------------------------------------------
 *
 * sync_direct.c
 *	  Writing a batch straight through the table access method and the
 *	  executor's own routines for constraints and index maintenance, as
 *	  logical replication's apply worker does, instead of planning and
 *	  running a statement whose rows travel as arrays.  New rows go in with
 *	  the multi-insert COPY uses; changed rows are updated by their tid;
 *	  the incremental upsert looks each key up in the key's unique index.
 *
 *	  Only for a target that needs nothing a statement would add: a plain
 *	  table (no partitions, not a partition) without triggers (foreign keys
 *	  and deferrable constraints are triggers too), rules or row-level
 *	  security, without generated columns, GENERATED ALWAYS identity
 *	  columns or columns the sync does not write (their defaults), and
 *	  that the user may SELECT, INSERT and UPDATE as a whole.  Checked at
 *	  every batch, under the batch's lock; any other target takes the
 *	  writer's statements (sync_write_load.c, sync_write_upsert.c,
 *	  sync_merge.c).  Layer 3b (see sync_engine.c): used by the writers
 *	  only.  A row changed by someone else between the merge's read and its
 *	  write fails the batch with a serialization failure, as the merge's
 *	  statements would; the incremental upsert waits for the other session and looks
 *	  the key up again, as its statement would (READ COMMITTED), except
 *	  that a key inserted by another session after the lookup fails the
 *	  batch (23505) where the statement would have updated it.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "sync.h"
#include "direct_write.h"

#include "access/genam.h"
#include "access/heapam.h"
#include "access/nbtree.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/htup_details.h"
#include "access/xact.h"
#include "catalog/pg_am.h"
#include "catalog/pg_class.h"
#include "catalog/pg_index.h"
#include "catalog/pg_inherits.h"
#include "executor/executor.h"
#include "miscadmin.h"
#include "nodes/makefuncs.h"
#include "utils/acl.h"
#include "utils/datum.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/rls.h"
#include "utils/snapmgr.h"

#define DIRECT_MAX_BUFFERED 1000	/* rows per multi-insert, as COPY */
#define DIRECT_MAX_BUFFERED_BYTES 65535 /* and their bytes, as COPY */

struct SyncDirect
{
	SyncWriter *w;				/* whose batch: its counters, its run */
	SyncRun    *r;
	Relation	rel;
	DirectWriteRel drel;		/* the executor's view of rel */
	EState	   *estate;
	ResultRelInfo *rri;
	bool		has_constr;
	bool		pushed_snapshot;	/* the active snapshot is ours */
	/* buffered new rows */
	TupleTableSlot **slots;
	int			nbuf;			/* filled */
	Size		nbytes;			/* their data */
	BulkInsertState bistate;
	/* updates */
	TupleTableSlot *upd_slot;
	bool		upd_checked;
	/* the incremental upsert's key lookup */
	Relation	keyidx;
	int		   *key_col;		/* index column -> r->tgt.cols */
	IndexScanDesc scan;
	ScanKeyData *skeys;
	int			nkeys;
	TupleTableSlot *found;
	Snapshot	snap;
};

/*
 * Why the target, as it is now, needs statements (NULL: it does not).  With
 * lookup, also its key index (for the incremental upsert).
 */
static const char *
why_statements(SyncRun *r, Relation rel, bool lookup, Oid *keyidx, int *key_col)
{
	TupleDesc	td = RelationGetDescr(rel);
	AclMode		need = ACL_SELECT | ACL_INSERT | ACL_UPDATE;
	int			live = 0;
	int			i;

	if (rel->rd_rel->relkind == RELKIND_PARTITIONED_TABLE)
		return "the target is partitioned";
	if (rel->rd_rel->relkind != RELKIND_RELATION)
		return "the target is not a table";
	if (rel->rd_rel->relispartition)
		return "the target is a partition";
	if (has_subclass(RelationGetRelid(rel)))
		return "the target has inheritance children";
	if (rel->trigdesc != NULL)
		return "the target has triggers (foreign keys and deferrable constraints are triggers too)";
	if (rel->rd_rules != NULL)
		return "the target has rules";
	if (td->constr && td->constr->has_generated_stored)
		return "the target has generated columns";
	for (i = 0; i < td->natts; i++)
	{
		if (TupleDescAttr(td, i)->attidentity == ATTRIBUTE_IDENTITY_ALWAYS)
			return "the target has a GENERATED ALWAYS identity column";
		if (!TupleDescAttr(td, i)->attisdropped)
			live++;
	}
	if (live != r->tgt.ncols)
		return "the target has columns the sync does not write";
	/* the columns as this run read them (a batch-committing run can see an ALTER in between) */
	for (i = 0; i < r->tgt.ncols; i++)
		if (td->natts != r->tgt.tupdesc->natts || r->tgt.cols[i].attnum > td->natts ||
			TupleDescAttr(td, r->tgt.cols[i].attnum - 1)->attisdropped ||
			TupleDescAttr(td, r->tgt.cols[i].attnum - 1)->atttypid != r->tgt.cols[i].typid ||
			TupleDescAttr(td, r->tgt.cols[i].attnum - 1)->atttypmod != r->tgt.cols[i].typmod)
			return "the target's columns changed during the run";
	if (check_enable_rls(r->tgt.relid, InvalidOid, true) == RLS_ENABLED)
		return "row-level security applies to the target";
	if (pg_class_aclmask(r->tgt.relid, GetUserId(), need, ACLMASK_ALL) != need)
		return "the user lacks SELECT, INSERT or UPDATE on the whole target";
	if (lookup && !OidIsValid(*keyidx = iact_sync_key_index(r, rel, true, key_col)))
		return "the target has no plain unique btree index on exactly the key columns";
	return NULL;
}

/*
 * The target, opened for this batch, or NULL when it needs the writer's
 * statements (the reason in w->statements_reason).
 */
static Relation
open_if_direct(SyncWriter *w, bool lookup, Oid *keyidx, int *key_col)
{
	Relation	rel = table_open(w->r->tgt.relid, RowExclusiveLock);
	const char *why = why_statements(w->r, rel, lookup, keyidx, key_col);

	if (why == NULL)
		return rel;
	w->statements_reason = why;
	table_close(rel, NoLock);
	return NULL;
}

/* a fresh snapshot for the key lookups (READ COMMITTED: a new one, as each statement gets) */
static void
restart_lookup(SyncDirect *d)
{
	if (d->scan)
	{
		index_endscan(d->scan);
		UnregisterSnapshot(d->snap);
	}
	d->snap = RegisterSnapshot(GetTransactionSnapshot());
	d->scan = index_beginscan(d->rel, d->keyidx, d->snap, d->nkeys, 0);
}

/* the key lookups of the incremental upsert: one index scan, rescanned per row */
static void
prepare_lookup(SyncDirect *d, Oid keyidx)
{
	SyncRun    *r = d->r;
	int			i;

	d->keyidx = index_open(keyidx, RowExclusiveLock);
	d->nkeys = r->conf.nkeys;
	d->skeys = palloc0(sizeof(ScanKeyData) * d->nkeys);
	for (i = 0; i < d->nkeys; i++)
	{
		Oid			opfamily = d->keyidx->rd_opfamily[i];
		Oid			typ = d->keyidx->rd_opcintype[i];
		Oid			op = get_opfamily_member(opfamily, typ, typ, BTEqualStrategyNumber);

		if (!OidIsValid(op))
			elog(ERROR, "no equality operator for the key index of %s", r->conf.tgt_qual);
		ScanKeyInit(&d->skeys[i], i + 1, BTEqualStrategyNumber, get_opcode(op), (Datum) 0);
		d->skeys[i].sk_collation = d->keyidx->rd_indcollation[i];
	}
	restart_lookup(d);
	d->found = table_slot_create(d->rel, &d->estate->es_tupleTable);
}

/*
 * Open the target for writing this batch directly, right before its first
 * write (after the statements that handle its rejects): NULL when the target
 * needs the writer's statements (the reason in w->statements_reason).  With
 * lookup, the incremental upsert's key lookups are prepared.  Everything
 * lives in the current memory context until iact_sync_direct_close().
 */
SyncDirect *
iact_sync_direct_open(SyncWriter *w, bool lookup)
{
	SyncRun    *r = w->r;
	Oid			keyidx = InvalidOid;
	int		   *key_col = palloc(sizeof(int) * Max(r->conf.nkeys, 1));
	Relation	rel = open_if_direct(w, lookup, &keyidx, key_col);
	SyncDirect *d;
	int			i;

	if (rel == NULL)
		return NULL;
	d = palloc0(sizeof(SyncDirect));
	d->key_col = key_col;
	d->w = w;
	d->r = r;
	d->rel = rel;
	d->has_constr = RelationGetDescr(rel)->constr != NULL;
	/* the columns written: the index routines tell an index whether its columns changed */
	d->drel.rel = rel;
	for (i = 0; i < r->tgt.ncols; i++)
	{
		int			bit = r->tgt.cols[i].attnum - FirstLowInvalidHeapAttributeNumber;

		d->drel.inserted_cols = bms_add_member(d->drel.inserted_cols, bit);
		if (!r->tgt.cols[i].is_key)
			d->drel.updated_cols = bms_add_member(d->drel.updated_cols, bit);
	}
	d->estate = iact_direct_write_begin(&d->drel, 1);
	d->rri = d->drel.rri;
	d->slots = palloc0(sizeof(TupleTableSlot *) * DIRECT_MAX_BUFFERED);

	/*
	 * What the statements before wrote is visible to the key lookups; and
	 * CHECK constraints, index expressions and predicates may call functions
	 * that need an active snapshot, which a procedure's batch after a commit
	 * does not have: one is pushed then (as logical replication's apply does).
	 */
	CommandCounterIncrement();
	if (!ActiveSnapshotSet())
	{
		PushActiveSnapshot(GetTransactionSnapshot());
		d->pushed_snapshot = true;
	}
	d->estate->es_snapshot = GetActiveSnapshot();
	if (lookup)
		prepare_lookup(d, keyidx);
	w->wrote_direct = true;
	return d;
}

static void
fill_slot(SyncDirect *d, TupleTableSlot *slot, Datum *values, bool *nulls)
{
	int			natts = RelationGetDescr(d->rel)->natts;

	ExecClearTuple(slot);
	memcpy(slot->tts_values, values, sizeof(Datum) * natts);
	memcpy(slot->tts_isnull, nulls, sizeof(bool) * natts);
	ExecStoreVirtualTuple(slot);
	if (d->has_constr)
		ExecConstraints(d->rri, slot, d->estate);
}

static void
flush_inserts(SyncDirect *d)
{
	MemoryContext old;
	int			i;

	if (d->nbuf == 0)
		return;
	if (d->bistate == NULL)
		d->bistate = GetBulkInsertState();
	/* the multi-insert leaks into the current context: the per-tuple one */
	old = MemoryContextSwitchTo(GetPerTupleMemoryContext(d->estate));
	table_multi_insert(d->rel, d->slots, d->nbuf, GetCurrentCommandId(true), 0, d->bistate);
	MemoryContextSwitchTo(old);
	for (i = 0; i < d->nbuf; i++)
	{
		CHECK_FOR_INTERRUPTS();
		if (d->rri->ri_NumIndices > 0)
			list_free(ExecInsertIndexTuples(d->rri, d->slots[i], d->estate, false, false, NULL, NIL));
		ExecClearTuple(d->slots[i]);
	}
	ResetPerTupleExprContext(d->estate);
	d->r->n.inserted += d->nbuf;
	d->nbuf = 0;
	d->nbytes = 0;
}

/* a new row (values and nulls by attribute number), written in groups */
void
iact_sync_direct_insert(SyncDirect *d, Datum *values, bool *nulls)
{
	if (d->slots[d->nbuf] == NULL)
		d->slots[d->nbuf] = table_slot_create(d->rel, &d->estate->es_tupleTable);
	fill_slot(d, d->slots[d->nbuf], values, nulls);
	d->nbytes += heap_compute_data_size(RelationGetDescr(d->rel), values, nulls);
	if (++d->nbuf >= DIRECT_MAX_BUFFERED || d->nbytes >= DIRECT_MAX_BUFFERED_BYTES)
		flush_inserts(d);
}

/*
 * Replace the target row at tid by values/nulls.  TM_Updated or TM_Deleted
 * when someone else changed it since it was read (having waited for them);
 * a row this batch changed already is an error.
 */
static TM_Result
try_update(SyncDirect *d, ItemPointer tid, Datum *values, bool *nulls)
{
	TM_FailureData tmfd;
	LockTupleMode lockmode;
	bool		update_indexes;
	TM_Result	res;

	if (!d->upd_checked)
	{
		/* a table published without a replica identity cannot take updates */
		CheckCmdReplicaIdentity(d->rel, CMD_UPDATE);
		d->upd_slot = table_slot_create(d->rel, &d->estate->es_tupleTable);
		d->upd_checked = true;
	}
	fill_slot(d, d->upd_slot, values, nulls);
	res = table_tuple_update(d->rel, tid, d->upd_slot, GetCurrentCommandId(true), d->estate->es_snapshot,
							 InvalidSnapshot, true, &tmfd, &lockmode, &update_indexes);
	if (res == TM_SelfModified)
		ereport(ERROR,
				(errcode(ERRCODE_CARDINALITY_VIOLATION),
				 errmsg("a row of %s was to be changed twice by one batch of the sync", d->r->conf.tgt_qual),
				 errdetail("Two source rows of the batch have the same key in the target."),
				 errhint("Register the table with key columns that are unique in the source and in the "
						 "target's types.")));
	if (res != TM_Ok)
		return res;
	if (update_indexes && d->rri->ri_NumIndices > 0)
		list_free(ExecInsertIndexTuples(d->rri, d->upd_slot, d->estate, true, false, NULL, NIL));
	ResetPerTupleExprContext(d->estate);
	d->r->n.updated++;
	return TM_Ok;
}

static void
changed_meanwhile(SyncDirect *d, ItemPointer tid, TM_Result res)
{
	ereport(ERROR,
			(errcode(ERRCODE_T_R_SERIALIZATION_FAILURE),
			 errmsg("a row of %s changed while the sync was updating it", d->r->conf.tgt_qual),
			 errdetail("The row at (%u,%u) was %s after the sync read it.",
					   ItemPointerGetBlockNumber(tid), ItemPointerGetOffsetNumber(tid),
					   res == TM_Deleted ? "deleted" : "updated"),
			 errhint("Something else writes to the sync's target table; run the sync again.")));
}

/* the merge's update: 40001 when the row changed since the merge read it */
void
iact_sync_direct_update(SyncDirect *d, ItemPointer tid, Datum *values, bool *nulls)
{
	TM_Result	res = try_update(d, tid, values, nulls);

	if (res != TM_Ok)
		changed_meanwhile(d, tid, res);
}

/*
 * One row of an incremental batch (the batch's keys are distinct): inserted
 * when its key is not there, updated when a stored value differs.  A row
 * another session changed after the lookup is looked up again once that
 * session is done, with a new snapshot, as an upsert statement would (in
 * READ COMMITTED; in REPEATABLE READ and SERIALIZABLE it is a serialization
 * failure).
 */
void
iact_sync_direct_upsert(SyncDirect *d, Datum *values, bool *nulls)
{
	SyncRun    *r = d->r;
	TupleDesc	td = RelationGetDescr(d->rel);
	int			tries;
	int			i;

	for (i = 0; i < d->nkeys; i++)
		d->skeys[i].sk_argument = values[r->tgt.cols[d->key_col[i]].attnum - 1];
	for (tries = 0;; tries++)
	{
		ItemPointerData tid;
		TM_Result	res;

		index_rescan(d->scan, d->skeys, d->nkeys, NULL, 0);
		if (!index_getnext_slot(d->scan, ForwardScanDirection, d->found))
		{
			iact_sync_direct_insert(d, values, nulls);
			return;
		}
		slot_getallattrs(d->found);
		for (i = 0; i < r->tgt.ncols; i++)
		{
			AttrNumber	a = r->tgt.cols[i].attnum - 1;

			if (!r->tgt.cols[i].is_key &&
				!iact_sync_same_value(values[a], nulls[a], d->found->tts_values[a],
									  d->found->tts_isnull[a], TupleDescAttr(td, a)))
				break;
		}
		if (i == r->tgt.ncols)
		{
			ExecClearTuple(d->found);
			return;
		}
		tid = d->found->tts_tid;
		/* the stored key stays as it is (equal by the index, maybe not in its bytes) */
		for (i = 0; i < d->nkeys; i++)
		{
			AttrNumber	a = r->tgt.cols[d->key_col[i]].attnum - 1;

			values[a] = datumCopy(d->found->tts_values[a], TupleDescAttr(td, a)->attbyval,
								  TupleDescAttr(td, a)->attlen);
		}
		ExecClearTuple(d->found);
		res = try_update(d, &tid, values, nulls);
		if (res == TM_Ok)
			return;
		if (IsolationUsesXactSnapshot() || tries >= 10)
			changed_meanwhile(d, &tid, res);
		CHECK_FOR_INTERRUPTS();
		restart_lookup(d);
	}
}

/* write what is buffered and release everything */
void
iact_sync_direct_close(SyncDirect *d)
{
	flush_inserts(d);
	if (d->scan)
	{
		index_endscan(d->scan);
		index_close(d->keyidx, NoLock);
		UnregisterSnapshot(d->snap);
	}
	if (d->bistate)
		FreeBulkInsertState(d->bistate);
	if (d->pushed_snapshot)
		PopActiveSnapshot();
	iact_direct_write_end(d->estate, &d->drel, 1);
	table_close(d->rel, NoLock);
	/* the next statements see these rows */
	CommandCounterIncrement();
	pfree(d->slots);
	pfree(d);
}
