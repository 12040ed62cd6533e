/*-------------------------------------------------------------------------
 *
 * no_overlap.c
 *	  The no-overlap invariant: no person has two events [start, end) that
 *	  overlap, across every table of a "no-overlap group".
 *
 * A group is the set of tables carrying the AFTER INSERT OR UPDATE row
 * trigger iact.no_overlap_trigger(group, person_col, start_col, end_col,
 * max_length), created by iact.enforce_no_overlap(); no_overlap_groups.c
 * reads and caches groups from pg_trigger.
 *
 * The check of one new row, with the person p and the range [s, e):
 *
 *	0. an UPDATE leaving person, start and end unchanged returns at once;
 *	1. take a transaction-scoped advisory lock keyed on (group, p) modulo
 *	   NO_OVERLAP_LOCK_KEYS: racers for the same person queue here, different
 *	   people rarely do, and a transaction never holds more than that many;
 *	2. CommandCounterIncrement and take the LATEST snapshot, as the foreign-key
 *	   triggers do (ri_triggers.c): rows committed by a racer we waited for are
 *	   seen even at REPEATABLE READ / SERIALIZABLE;
 *	3. in each member table, scan its btree on (person, start) backwards from
 *	   (p, e) and look at the first visible row other than the new one: the
 *	   row starting last before e.  Existing events of a person are pairwise
 *	   disjoint, so their ends ascend with their starts and that row is the
 *	   only one that can overlap [s, e): overlap iff its end > s.  (With
 *	   several unchecked rows of one statement visible at once, at least one
 *	   of their probes still finds any overlap among them.)  When the group
 *	   has a maximum event length, the scan also stops at s - max_length: an
 *	   event starting earlier cannot reach s, and nbtree then reads a handful
 *	   of index entries instead of the rest of a leaf page.  A partitioned
 *	   member is probed through its partitions (members themselves, by the
 *	   trigger PostgreSQL clones onto them).  A row found whose DELETE or
 *	   UPDATE is still in progress is waited for, then the probe is redone.
 *	4. a row found -> 23P01 (its table, id and range in the DETAIL only when
 *	   the caller may read it); but under a transaction snapshot, a row the
 *	   transaction snapshot does not see was committed concurrently, and the
 *	   error is 40001 (retry), as ri_PerformCheck does.
 *
 * So one check costs one btree descent per member table, independent of the
 * history's size, and needs no GiST index.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "no_overlap.h"

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/relscan.h"
#include "access/stratnum.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "catalog/pg_collation.h"
#include "catalog/pg_index.h"
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "common/hashfn.h"
#include "common/int.h"
#include "executor/executor.h"
#include "executor/spi.h"
#include "executor/tuptable.h"
#include "fmgr.h"
#include "storage/lmgr.h"
#include "storage/lock.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/datum.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/rls.h"
#include "utils/snapmgr.h"
#include "utils/syscache.h"
#include "utils/timestamp.h"
#include "utils/typcache.h"

/* what a probe found */
typedef struct NoOverlapConflict
{
	Oid			relid;
	ItemPointerData tid;		/* of the visible row version */
	char	   *id;				/* primary key value or ctid, as text */
	Datum		start;
	Datum		end;
	bool		seen_by_xact_snapshot;
	bool		retry;			/* its deletion is in progress (wait for
								 * wait_xid) or committed since the snapshot */
	TransactionId wait_xid;
} NoOverlapConflict;

PG_FUNCTION_INFO_V1(iact_no_overlap_trigger);

/* ---------------------------------------------------------------------
 * The check
 * ---------------------------------------------------------------------
 */

/* primary key value of the row in slot (single-column key) or its ctid */
static char *
row_identity(Relation rel, TupleTableSlot *slot)
{
	AttrNumber *keys;

	if (iact_primary_key(rel, &keys) == 1)
	{
		bool		isnull;
		Datum		d = slot_getattr(slot, keys[0], &isnull);

		if (!isnull)
		{
			Oid			typoutput;
			bool		isvarlena;

			getTypeOutputInfo(TupleDescAttr(RelationGetDescr(rel), keys[0] - 1)->atttypid,
							  &typoutput, &isvarlena);
			return OidOutputFunctionCall(typoutput, d);
		}
	}
	return psprintf("ctid %s", DatumGetCString(DirectFunctionCall1(tidout,
																   PointerGetDatum(&slot->tts_tid))));
}

/*
 * In member m, the visible row (other than self) of person p starting last
 * before e: fills *c and returns true when it ends after s.
 */
static bool
probe_member(NoOverlapGroup *g, NoOverlapMember *m, Datum p, Datum s, Datum e,
			 Datum lower, Oid self_rel, ItemPointer self_tid, Snapshot snap,
			 NoOverlapConflict *c)
{
	TypeCacheEntry *tt = g->time_tc;
	bool		self_table = (m->relid == self_rel);

	/* locked by the caller */
	Relation	heap = table_open(m->relid, NoLock);
	Relation	index = index_open(m->indexid, NoLock);
	/* a private descriptor: the relation's is ref-counted by the resource owner */
	TupleDesc	desc = CreateTupleDescCopy(RelationGetDescr(heap));
	TupleTableSlot *slot = MakeSingleTupleTableSlot(desc, table_slot_callbacks(heap));
	IndexScanDesc scan;
	ScanKeyData keys[3];
	int			nkeys = g->has_max ? 3 : 2;
	ItemPointer tid;
	bool		conflict = false;

	ScanKeyEntryInitialize(&keys[0], 0, 1, BTEqualStrategyNumber, InvalidOid,
						   index->rd_indcollation[0], g->person_eq_proc, p);
	ScanKeyEntryInitialize(&keys[1], 0, 2, BTLessStrategyNumber, InvalidOid,
						   index->rd_indcollation[1], g->time_lt_proc, e);
	/* with a maximum length, only events starting after s - max can reach s */
	if (g->has_max)
		ScanKeyEntryInitialize(&keys[2], 0, 2, BTGreaterStrategyNumber, InvalidOid,
							   index->rd_indcollation[1], g->time_gt_proc, lower);
	scan = index_beginscan(heap, index, snap, nkeys, 0);
	index_rescan(scan, keys, nkeys, NULL, 0);
	while ((tid = index_getnext_tid(scan, BackwardScanDirection)) != NULL)
	{
		bool		isnull;
		Datum		cand_end;

		CHECK_FOR_INTERRUPTS();
		/* the new row itself: skipped without reading the heap */
		if (self_table && ItemPointerEquals(tid, self_tid))
			continue;
		if (!index_fetch_heap(scan, slot))
			continue;			/* not visible */
		/* (a HOT-updated row is reached through its chain's root) */
		if (self_table && ItemPointerEquals(&slot->tts_tid, self_tid))
			continue;
		cand_end = slot_getattr(slot, m->end_att, &isnull);
		if (!isnull &&
			DatumGetInt32(FunctionCall2Coll(&tt->cmp_proc_finfo, InvalidOid, cand_end, s)) > 0)
		{
			Datum		xmin;
			SnapshotData dirty;

			conflict = true;
			c->relid = m->relid;
			c->tid = slot->tts_tid;
			c->id = row_identity(heap, slot);
			c->start = datumCopy(slot_getattr(slot, m->start_att, &isnull), tt->typbyval, tt->typlen);
			c->end = datumCopy(cand_end, tt->typbyval, tt->typlen);
			/*
			 * Like an exclusion constraint, a row whose DELETE (or UPDATE) is
			 * still in progress is waited for, not reported: the dirty
			 * snapshot gives the deleter's xid.  A row no longer there at all
			 * was deleted by a transaction that committed since our snapshot.
			 */
			InitDirtySnapshot(dirty);
			c->wait_xid = InvalidTransactionId;
			c->retry = false;
			if (!table_tuple_satisfies_snapshot(heap, slot, &dirty))
				c->retry = true;
			else if (TransactionIdIsValid(dirty.xmax))
			{
				c->retry = true;
				c->wait_xid = dirty.xmax;
			}
			xmin = slot_getsysattr(slot, MinTransactionIdAttributeNumber, &isnull);
			c->seen_by_xact_snapshot =
				!IsolationUsesXactSnapshot() ||
				TransactionIdIsCurrentTransactionId(DatumGetTransactionId(xmin)) ||
				table_tuple_satisfies_snapshot(heap, slot, GetTransactionSnapshot());
		}
		break;
	}
	index_endscan(scan);
	ExecDropSingleTupleTableSlot(slot);
	FreeTupleDesc(desc);
	index_close(index, NoLock);
	table_close(heap, NoLock);
	return conflict;
}

/* attribute att is binary-equal (and not NULL) in the old and new row */
static bool
same_value(TupleTableSlot *oldslot, TupleTableSlot *newslot, AttrNumber att,
		   TypeCacheEntry *tc)
{
	bool		oldnull,
				newnull;
	Datum		o = slot_getattr(oldslot, att, &oldnull);
	Datum		n = slot_getattr(newslot, att, &newnull);

	return !oldnull && !newnull && datumIsEqual(o, n, tc->typbyval, tc->typlen);
}

static char *
datum_text(Oid type, Datum d)
{
	Oid			typoutput;
	bool		isvarlena;

	getTypeOutputInfo(type, &typoutput, &isvarlena);
	return OidOutputFunctionCall(typoutput, d);
}

static char *
qualified_relname(Oid relid)
{
	return quote_qualified_identifier(get_namespace_name(get_rel_namespace(relid)),
									  get_rel_name(relid));
}

/*
 * May the current user read the conflicting row?  It needs SELECT on its
 * table, and when row-level security applies to it, the row must pass the
 * user's policies: asked by a query of the user, with the snapshot the
 * probe used.
 */
static bool
caller_sees(NoOverlapConflict *c, Snapshot snap)
{
	Oid			argtype = TIDOID;
	Datum		arg = PointerGetDatum(&c->tid);
	SPIPlanPtr	plan;
	bool		seen;

	if (pg_class_aclcheck(c->relid, GetUserId(), ACL_SELECT) != ACLCHECK_OK)
		return false;
	if (check_enable_rls(c->relid, InvalidOid, true) != RLS_ENABLED)
		return true;
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	plan = SPI_prepare(psprintf("SELECT 1 FROM %s WHERE ctid OPERATOR(pg_catalog.=) $1",
								qualified_relname(c->relid)),
					   1, &argtype);
	if (plan == NULL)
		elog(ERROR, "SPI_prepare failed: %s", SPI_result_code_string(SPI_result));
	seen = SPI_execute_snapshot(plan, &arg, NULL, snap, InvalidSnapshot, true, false, 1) == SPI_OK_SELECT &&
		SPI_processed > 0;
	SPI_finish();
	return seen;
}

/*
 * The new row's own checks: start before end, and (groups with a maximum
 * length) a finite range no longer than the maximum.  Returns the lower
 * bound of the probe's scan: s - max_length (or -infinity), or 0 without a
 * maximum.
 */
static Datum
check_new_range(NoOverlapGroup *g, Relation rel, Datum p, Datum s, Datum e)
{
	TypeCacheEntry *tt = g->time_tc;
	Timestamp	ts,
				te,
				tl;
	int64		length;

	if (DatumGetInt32(FunctionCall2Coll(&tt->cmp_proc_finfo, InvalidOid, s, e)) >= 0)
		ereport(ERROR,
				(errcode(ERRCODE_CHECK_VIOLATION),
				 errmsg("event of person %s must start before it ends",
						datum_text(g->person_type, p)),
				 errdetail("Attempted [%s, %s) in %s.",
						   datum_text(g->time_type, s), datum_text(g->time_type, e),
						   qualified_relname(RelationGetRelid(rel))),
				 errtable(rel)));
	if (!g->has_max)
		return (Datum) 0;

	/* timestamp and timestamptz: int64 microseconds, +-infinity at the ends */
	ts = DatumGetTimestamp(s);
	te = DatumGetTimestamp(e);
	if (TIMESTAMP_NOT_FINITE(ts) || TIMESTAMP_NOT_FINITE(te) ||
		pg_sub_s64_overflow(te, ts, &length) || length > g->max_us)
		ereport(ERROR,
				(errcode(ERRCODE_CHECK_VIOLATION),
				 errmsg("event of person %s lasts longer than the maximum of no-overlap group \"%s\"",
						datum_text(g->person_type, p), g->name),
				 errdetail("Attempted [%s, %s) in %s; the maximum is %lld seconds.",
						   datum_text(g->time_type, s), datum_text(g->time_type, e),
						   qualified_relname(RelationGetRelid(rel)),
						   (long long) (g->max_us / USECS_PER_SEC)),
				 errtable(rel)));
	if (pg_sub_s64_overflow(ts, g->max_us, &tl) || tl < MIN_TIMESTAMP)
		TIMESTAMP_NOBEGIN(tl);
	return TimestampGetDatum(tl);
}

/*
 * Serialise writers of person p in group g: a transaction-scoped lock on
 * (group, p) modulo NO_OVERLAP_LOCK_KEYS, with a tag SQL's advisory-lock
 * functions cannot make (IACT_LOCK_FOR_PERSON, src/lock.c).  The key hashes the
 * person under the probe index's collation, so that two values the probe
 * calls equal share a key (every member's probe index uses that collation:
 * check_member_collations).
 */
static void
lock_person(NoOverlapGroup *g, NoOverlapMember *self, Datum p)
{
	uint32		key;

	key = hash_combine(g->name_hash,
					   DatumGetUInt32(FunctionCall1Coll(&g->person_tc->hash_proc_finfo,
														OidIsValid(self->person_coll) ?
														self->person_coll : DEFAULT_COLLATION_OID,
														p))) %
		NO_OVERLAP_LOCK_KEYS;
	(void) iact_lock_acquire(IACT_LOCK_FOR_PERSON, key, false, true);
}

/*
 * Raise the overlap found (c) for the new row [s, e) of person p: 23P01, or
 * 40001 when the transaction snapshot cannot see the other row (committed
 * concurrently).  The other row is named only to a caller who may read it.
 */
static void
report_conflict(NoOverlapGroup *g, TriggerData *td, NoOverlapConflict *c, Snapshot snap,
				Datum p, Datum s, Datum e)
{
	Relation	rel = td->tg_relation;
	bool		concurrent = !c->seen_by_xact_snapshot;
	char	   *person = datum_text(g->person_type, p);
	char	   *attempted = psprintf("Attempted [%s, %s) in %s",
									 datum_text(g->time_type, s), datum_text(g->time_type, e),
									 qualified_relname(RelationGetRelid(rel)));
	bool		visible = caller_sees(c, snap);

	ereport(ERROR,
			(errcode(concurrent ? ERRCODE_T_R_SERIALIZATION_FAILURE : ERRCODE_EXCLUSION_VIOLATION),
			 concurrent ?
			 errmsg("could not serialize access due to a concurrently committed overlapping event of person %s",
					person) :
			 errmsg("person %s already has an overlapping event", person),
			 visible ?
			 errdetail("%s overlaps %s id %s [%s, %s)%s.", attempted,
					   qualified_relname(c->relid), c->id,
					   datum_text(g->time_type, c->start), datum_text(g->time_type, c->end),
					   concurrent ? ", committed after this transaction's snapshot" : "") :
			 errdetail("%s overlaps an event you cannot see%s.", attempted,
					   concurrent ? ", committed after this transaction's snapshot" : ""),
			 concurrent ? errhint("Retry the transaction: it will see the other event.") : 0,
			 errtableconstraint(rel, td->tg_trigger->tgname)));
}

/*
 * iact.no_overlap_trigger(group, person_column, start_column, end_column, max_length):
 * AFTER INSERT OR UPDATE ... FOR EACH ROW.
 */
Datum
iact_no_overlap_trigger(PG_FUNCTION_ARGS)
{
	TriggerData *td = (TriggerData *) fcinfo->context;
	Relation	rel;
	TupleTableSlot *slot;
	NoOverlapGroup *g = NULL;
	NoOverlapMember *self = NULL;
	Datum		p,
				s,
				e;
	bool		pnull,
				snull,
				enull;
	uint64		gen;
	Datum		lower;
	Snapshot	snap;
	NoOverlapConflict c;
	bool		conflict = false;

	if (!CALLED_AS_TRIGGER(fcinfo) ||
		!TRIGGER_FIRED_AFTER(td->tg_event) || !TRIGGER_FIRED_FOR_ROW(td->tg_event) ||
		TRIGGER_FIRED_BY_DELETE(td->tg_event) || TRIGGER_FIRED_BY_TRUNCATE(td->tg_event) ||
		td->tg_trigger->tgnargs != NO_OVERLAP_NARGS)
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("iact.no_overlap_trigger must be an AFTER INSERT OR UPDATE FOR EACH ROW trigger with 5 arguments"),
				 errhint("Use iact.enforce_no_overlap() to attach it.")));

	rel = td->tg_relation;
	slot = TRIGGER_FIRED_BY_UPDATE(td->tg_event) ? td->tg_newslot : td->tg_trigslot;

	/* the group, with every member locked against DDL while we look */
	do
	{
		gen = iact_no_overlap_generation;
		g = iact_no_overlap_group(td->tg_trigger->tgargs[0], RelationGetRelid(rel));
		for (int i = 0; i < g->nmembers; i++)
		{
			LockRelationOid(g->members[i].relid, AccessShareLock);
			if (OidIsValid(g->members[i].indexid))
				LockRelationOid(g->members[i].indexid, AccessShareLock);
		}
	} while (gen != iact_no_overlap_generation);

	for (int i = 0; i < g->nmembers; i++)
		if (g->members[i].relid == RelationGetRelid(rel))
			self = &g->members[i];
	if (self == NULL)			/* trigger dropped concurrently */
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("table %s is not a member of no-overlap group \"%s\"",
						RelationGetRelationName(rel), g->name)));

	p = slot_getattr(slot, self->person_att, &pnull);
	s = slot_getattr(slot, self->start_att, &snull);
	e = slot_getattr(slot, self->end_att, &enull);
	if (pnull || snull || enull)
		ereport(ERROR,
				(errcode(ERRCODE_NOT_NULL_VIOLATION),
				 errmsg("person, start and end of an event of no-overlap group \"%s\" must not be NULL",
						g->name),
				 errtable(rel)));

	/*
	 * An UPDATE that leaves person, start and end as they were cannot create
	 * an overlap.  (The trigger fires on every UPDATE, not UPDATE OF the
	 * three columns: a BEFORE trigger may change them in an UPDATE of another
	 * column.)
	 */
	if (TRIGGER_FIRED_BY_UPDATE(td->tg_event) &&
		same_value(td->tg_trigslot, slot, self->person_att, g->person_tc) &&
		same_value(td->tg_trigslot, slot, self->start_att, g->time_tc) &&
		same_value(td->tg_trigslot, slot, self->end_att, g->time_tc))
		return PointerGetDatum(NULL);

	lower = check_new_range(g, rel, p, s, e);

	/* 1. serialise writers of this person in this group */
	lock_person(g, self, p);

	/* 2. look with the latest snapshot, our own statement's rows included */
	CommandCounterIncrement();
	for (int retries = 0;; retries++)
	{
		snap = RegisterSnapshot(GetLatestSnapshot());

		/* 3. one probe per member (partitioned tables: their partitions) */
		conflict = false;
		for (int i = 0; i < g->nmembers && !conflict; i++)
			if (!g->members[i].partitioned)
				conflict = probe_member(g, &g->members[i], p, s, e, lower, RelationGetRelid(rel),
										&slot->tts_tid, snap, &c);
		/* (a retry without a transaction to wait for makes progress: bounded anyway) */
		if (!conflict || !c.retry || (!TransactionIdIsValid(c.wait_xid) && retries >= 100))
			break;
		UnregisterSnapshot(snap);
		/* the conflicting row is being deleted: wait for the outcome, look again */
		if (TransactionIdIsValid(c.wait_xid))
			XactLockTableWait(c.wait_xid, NULL, NULL, XLTW_None);
		CHECK_FOR_INTERRUPTS();
	}

	/*
	 * 4. report: a row the transaction snapshot cannot see was committed
	 * concurrently, which under REPEATABLE READ / SERIALIZABLE is 40001
	 */
	if (conflict)
		report_conflict(g, td, &c, snap, p, s, e);
	UnregisterSnapshot(snap);

	return PointerGetDatum(NULL);
}

/* the C names iact--1.0.sql gives these functions */
IACT_1_0_SYMBOL(no_overlap_trigger, iact_no_overlap_trigger)
