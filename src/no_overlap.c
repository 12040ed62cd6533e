/*-------------------------------------------------------------------------
 *
 * no_overlap.c
 *	  The no-overlap invariant: no person has two events [start, end) that
 *	  overlap, across every table of a "no-overlap group".
 *
 * A group is the set of tables carrying the AFTER INSERT OR UPDATE row
 * trigger iact.no_overlap_trigger(group, person_col, start_col, end_col)
 * (created by iact.enforce_no_overlap()).  pg_trigger is the registry: there
 * is no table of groups, so pg_dump/pg_restore and DROP TABLE keep it right.
 *
 * The check of one new row, with the person p and the range [s, e):
 *
 *	1. take a transaction-scoped advisory lock keyed on (group, p): racers for
 *	   the same person queue here, different people (almost) never do;
 *	2. CommandCounterIncrement and take the LATEST snapshot, as the foreign-key
 *	   triggers do (ri_triggers.c): rows committed by a racer we waited for are
 *	   seen even at REPEATABLE READ / SERIALIZABLE;
 *	3. in each member table, scan its btree on (person, start) backwards from
 *	   (p, e) and look at the first visible row other than the new one: the
 *	   row starting last before e.  Existing events of a person are pairwise
 *	   disjoint, so their ends ascend with their starts and that row is the
 *	   only one that can overlap [s, e): overlap iff its end > s.  (With
 *	   several unchecked rows of one statement visible at once, at least one
 *	   of their probes still finds any overlap among them.)
 *	4. a row found -> 23P01; but under a transaction snapshot, a row the
 *	   transaction snapshot does not see was committed concurrently, and the
 *	   error is 40001 (retry), as ri_PerformCheck does.
 *
 * So one check costs one btree descent per member table, independent of the
 * history's size, and needs no GiST index.
 *
 *-------------------------------------------------------------------------
 */
#include "iact.h"

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/nbtree.h"
#include "access/relscan.h"
#include "access/stratnum.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "catalog/index.h"
#include "catalog/namespace.h"
#include "catalog/pg_am.h"
#include "catalog/pg_class.h"
#include "catalog/pg_index.h"
#include "catalog/pg_opclass.h"
#include "catalog/pg_trigger.h"
#include "commands/defrem.h"
#include "commands/trigger.h"
#include "common/hashfn.h"
#include "executor/tuptable.h"
#include "fmgr.h"
#include "funcapi.h"
#include "nodes/makefuncs.h"
#include "parser/parse_func.h"
#include "storage/lmgr.h"
#include "storage/lock.h"
#include "catalog/pg_collation.h"
#include "utils/builtins.h"
#include "utils/datum.h"
#include "utils/fmgroids.h"
#include "utils/hsearch.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"
#include "utils/syscache.h"
#include "utils/typcache.h"

#define NO_OVERLAP_NARGS 4

typedef struct NoOverlapMember
{
	Oid			relid;
	Oid			indexid;		/* btree on (person, start), or InvalidOid */
	AttrNumber	person_att;
	AttrNumber	start_att;
	AttrNumber	end_att;
	NameData	person_col;
	NameData	start_col;
	NameData	end_col;
} NoOverlapMember;

typedef struct NoOverlapGroup
{
	char		name[NAMEDATALEN];	/* hash key */
	Oid			person_type;
	Oid			time_type;
	RegProcedure person_eq_proc;	/* btree "=" of person_type */
	RegProcedure time_lt_proc;	/* btree "<" of time_type */
	TypeCacheEntry *person_tc;	/* type cache entries live for the backend */
	TypeCacheEntry *time_tc;
	uint32		name_hash;
	int			nmembers;
	NoOverlapMember *members;
} NoOverlapGroup;

/* what a probe found */
typedef struct NoOverlapConflict
{
	Oid			relid;
	char	   *id;				/* primary key value or ctid, as text */
	Datum		start;
	Datum		end;
	bool		seen_by_xact_snapshot;
} NoOverlapConflict;

static HTAB *group_cache = NULL;
static MemoryContext group_cxt = NULL;
static uint64 group_generation = 0;
static bool callback_registered = false;

PG_FUNCTION_INFO_V1(no_overlap_trigger);
PG_FUNCTION_INFO_V1(no_overlap_members);
PG_FUNCTION_INFO_V1(no_overlap_touch);

/* ---------------------------------------------------------------------
 * The group cache: built from pg_trigger, flushed by relcache invalidation
 * of any member table (CREATE/DROP TRIGGER, DROP INDEX, ALTER TABLE ... all
 * send one; iact.enforce_no_overlap sends one to every member it extends).
 * ---------------------------------------------------------------------
 */
static void
flush_groups(void)
{
	if (group_cxt)
		MemoryContextReset(group_cxt);
	group_cache = NULL;
	group_generation++;
}

static void
no_overlap_relcache_cb(Datum arg, Oid relid)
{
	HASH_SEQ_STATUS status;
	NoOverlapGroup *g;

	if (group_cache == NULL)
		return;
	if (!OidIsValid(relid))
	{
		flush_groups();
		return;
	}
	hash_seq_init(&status, group_cache);
	while ((g = hash_seq_search(&status)) != NULL)
	{
		for (int i = 0; i < g->nmembers; i++)
		{
			if (g->members[i].relid == relid)
			{
				hash_seq_term(&status);
				flush_groups();
				return;
			}
		}
	}
}

static Oid
trigger_function_oid(void)
{
	List	   *name = list_make2(makeString("iact"), makeString("no_overlap_trigger"));

	return LookupFuncName(name, 0, NULL, false);
}

/* split pg_trigger.tgargs into its NUL-terminated strings */
static char **
trigger_args(HeapTuple tup, TupleDesc desc, int nargs)
{
	bool		isnull;
	Datum		d = heap_getattr(tup, Anum_pg_trigger_tgargs, desc, &isnull);
	bytea	   *ba;
	char	   *p;
	char	  **args = palloc0(sizeof(char *) * (nargs + 1));

	if (isnull)
		return args;
	ba = DatumGetByteaPP(d);
	p = VARDATA_ANY(ba);
	for (int i = 0; i < nargs; i++)
	{
		args[i] = pstrdup(p);
		p += strlen(p) + 1;
	}
	return args;
}

static Oid
index_am(Oid indexoid)
{
	HeapTuple	tup = SearchSysCache1(RELOID, ObjectIdGetDatum(indexoid));
	Oid			am = InvalidOid;

	if (HeapTupleIsValid(tup))
	{
		am = ((Form_pg_class) GETSTRUCT(tup))->relam;
		ReleaseSysCache(tup);
	}
	return am;
}

/* the valid, non-partial btree whose first two key columns are (person, start) */
static Oid
find_probe_index(Relation rel, AttrNumber person_att, AttrNumber start_att,
				 Oid person_type, Oid time_type)
{
	List	   *indexes = RelationGetIndexList(rel);
	ListCell   *lc;
	Oid			best = InvalidOid;
	int			best_natts = INT_MAX;

	foreach(lc, indexes)
	{
		Oid			indexoid = lfirst_oid(lc);
		HeapTuple	itup = SearchSysCache1(INDEXRELID, ObjectIdGetDatum(indexoid));
		Form_pg_index ind;
		bool		isnull;
		Datum		classd;
		oidvector  *indclass;

		if (!HeapTupleIsValid(itup))
			continue;
		ind = (Form_pg_index) GETSTRUCT(itup);
		classd = SysCacheGetAttr(INDEXRELID, itup, Anum_pg_index_indclass, &isnull);
		indclass = (oidvector *) DatumGetPointer(classd);
		if (ind->indisvalid && ind->indisready && ind->indislive &&
			ind->indnkeyatts >= 2 &&
			ind->indkey.values[0] == person_att &&
			ind->indkey.values[1] == start_att &&
			heap_attisnull(itup, Anum_pg_index_indpred, NULL) &&
			heap_attisnull(itup, Anum_pg_index_indexprs, NULL) &&
			index_am(indexoid) == BTREE_AM_OID &&
			indclass->values[0] == GetDefaultOpClass(person_type, BTREE_AM_OID) &&
			indclass->values[1] == GetDefaultOpClass(time_type, BTREE_AM_OID) &&
			ind->indnkeyatts < best_natts)
		{
			best = indexoid;
			best_natts = ind->indnkeyatts;
		}
		ReleaseSysCache(itup);
	}
	list_free(indexes);
	return best;
}

static AttrNumber
member_column(Relation rel, const char *group, const char *col, bool strict)
{
	AttrNumber	att = get_attnum(RelationGetRelid(rel), col);

	if (att == InvalidAttrNumber || att < 0)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_COLUMN),
				 errmsg("column \"%s\" of no-overlap group \"%s\" does not exist in table %s",
						col, group, RelationGetRelationName(rel))));
	if (strict && !TupleDescAttr(RelationGetDescr(rel), att - 1)->attnotnull)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_TABLE_DEFINITION),
				 errmsg("column \"%s\" of table %s must be NOT NULL to join no-overlap group \"%s\"",
						col, RelationGetRelationName(rel), group),
				 errhint("ALTER TABLE %s ALTER COLUMN %s SET NOT NULL",
						 quote_identifier(RelationGetRelationName(rel)), quote_identifier(col))));
	return att;
}

/*
 * Read the members of a group from pg_trigger into *g (allocated in cxt).
 * strict: every member must have the probe index and NOT NULL columns, and
 * all members must agree on the column types (what the trigger needs).
 */
static void
load_group(NoOverlapGroup *g, const char *name, bool strict, MemoryContext cxt)
{
	Oid			fnoid = trigger_function_oid();
	Relation	tgrel;
	SysScanDesc scan;
	HeapTuple	tup;
	List	   *found = NIL;
	ListCell   *lc;
	int			n = 0;

	strlcpy(g->name, name, NAMEDATALEN);
	g->name_hash = hash_bytes((const unsigned char *) name, strlen(name));
	g->person_type = InvalidOid;
	g->time_type = InvalidOid;

	tgrel = table_open(TriggerRelationId, AccessShareLock);
	scan = systable_beginscan(tgrel, InvalidOid, false, NULL, 0, NULL);
	while (HeapTupleIsValid(tup = systable_getnext(scan)))
	{
		Form_pg_trigger tg = (Form_pg_trigger) GETSTRUCT(tup);
		char	  **args;

		if (tg->tgfoid != fnoid || tg->tgnargs != NO_OVERLAP_NARGS)
			continue;
		args = trigger_args(tup, RelationGetDescr(tgrel), tg->tgnargs);
		if (strcmp(args[0], name) != 0)
			continue;
		args[0] = (char *) (uintptr_t) tg->tgrelid;	/* reuse slot 0 for the oid */
		found = lappend(found, args);
	}
	systable_endscan(scan);
	table_close(tgrel, AccessShareLock);

	g->members = MemoryContextAllocZero(cxt, sizeof(NoOverlapMember) * Max(list_length(found), 1));
	foreach(lc, found)
	{
		char	  **args = lfirst(lc);
		Oid			relid = (Oid) (uintptr_t) args[0];
		NoOverlapMember *m = &g->members[n];
		Relation	rel;
		Oid			ptype,
					stype,
					etype;

		/* a table listed twice (two triggers) is probed once */
		for (int i = 0; i < n; i++)
			if (g->members[i].relid == relid)
				goto next;

		rel = table_open(relid, AccessShareLock);
		m->relid = relid;
		namestrcpy(&m->person_col, args[1]);
		namestrcpy(&m->start_col, args[2]);
		namestrcpy(&m->end_col, args[3]);
		m->person_att = member_column(rel, name, args[1], strict);
		m->start_att = member_column(rel, name, args[2], strict);
		m->end_att = member_column(rel, name, args[3], strict);
		ptype = TupleDescAttr(RelationGetDescr(rel), m->person_att - 1)->atttypid;
		stype = TupleDescAttr(RelationGetDescr(rel), m->start_att - 1)->atttypid;
		etype = TupleDescAttr(RelationGetDescr(rel), m->end_att - 1)->atttypid;
		if (strict && (stype != etype ||
					   (OidIsValid(g->person_type) &&
						(ptype != g->person_type || stype != g->time_type))))
			ereport(ERROR,
					(errcode(ERRCODE_DATATYPE_MISMATCH),
					 errmsg("column types of table %s do not match no-overlap group \"%s\"",
							RelationGetRelationName(rel), name),
					 errdetail("Every member needs the same person type, and one type for start and end columns.")));
		if (!OidIsValid(g->person_type))
		{
			g->person_type = ptype;
			g->time_type = stype;
		}
		m->indexid = find_probe_index(rel, m->person_att, m->start_att, ptype, stype);
		if (strict && !OidIsValid(m->indexid))
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_OBJECT),
					 errmsg("table %s has no btree index on (%s, %s) for no-overlap group \"%s\"",
							RelationGetRelationName(rel), args[1], args[2], name),
					 errhint("CREATE INDEX ON %s (%s, %s);",
							 quote_qualified_identifier(get_namespace_name(RelationGetNamespace(rel)),
														RelationGetRelationName(rel)),
							 quote_identifier(args[1]), quote_identifier(args[2]))));
		table_close(rel, AccessShareLock);
		n++;
next:
		;
	}
	g->nmembers = n;

	if (strict && n > 0)
	{
		TypeCacheEntry *pt = lookup_type_cache(g->person_type,
											   TYPECACHE_EQ_OPR | TYPECACHE_HASH_PROC_FINFO);
		TypeCacheEntry *tt = lookup_type_cache(g->time_type,
											   TYPECACHE_LT_OPR | TYPECACHE_CMP_PROC_FINFO);

		if (!OidIsValid(pt->eq_opr) || !OidIsValid(pt->hash_proc) ||
			!OidIsValid(tt->lt_opr) || !OidIsValid(tt->cmp_proc))
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_FUNCTION),
					 errmsg("no-overlap group \"%s\" needs a hashable person type with equality and an ordered time type",
							name)));
		g->person_eq_proc = get_opcode(pt->eq_opr);
		g->time_lt_proc = get_opcode(tt->lt_opr);
		g->person_tc = pt;
		g->time_tc = tt;
	}
}

/* the cached group (built on first use); returns a copy in CurrentMemoryContext */
static NoOverlapGroup *
get_group(const char *name, Oid must_contain)
{
	NoOverlapGroup *g;
	NoOverlapGroup *copy;
	bool		found;
	char		key[NAMEDATALEN];

	if (!callback_registered)
	{
		CacheRegisterRelcacheCallback(no_overlap_relcache_cb, (Datum) 0);
		callback_registered = true;
	}
	if (group_cxt == NULL)
		group_cxt = AllocSetContextCreate(CacheMemoryContext, "iact no-overlap groups",
										  ALLOCSET_SMALL_SIZES);
	if (group_cache == NULL)
	{
		HASHCTL		ctl;

		ctl.keysize = NAMEDATALEN;
		ctl.entrysize = sizeof(NoOverlapGroup);
		ctl.hcxt = group_cxt;
		group_cache = hash_create("iact no-overlap groups", 8, &ctl,
								  HASH_ELEM | HASH_STRINGS | HASH_CONTEXT);
	}
	memset(key, 0, sizeof(key));
	strlcpy(key, name, NAMEDATALEN);
	g = hash_search(group_cache, key, HASH_FIND, &found);
	if (found && OidIsValid(must_contain))
	{
		found = false;
		for (int i = 0; i < g->nmembers; i++)
			if (g->members[i].relid == must_contain)
				found = true;
	}
	if (!found)
	{
		NoOverlapGroup tmp;
		uint64		gen = group_generation;

		/* build aside: loading opens relations, which may flush the cache */
		load_group(&tmp, name, true, group_cxt);
		if (gen != group_generation || group_cache == NULL)
			return get_group(name, must_contain);
		g = hash_search(group_cache, key, HASH_ENTER, NULL);
		memcpy(g, &tmp, sizeof(tmp));
	}
	copy = palloc(sizeof(NoOverlapGroup));
	memcpy(copy, g, sizeof(NoOverlapGroup));
	copy->members = palloc(sizeof(NoOverlapMember) * Max(g->nmembers, 1));
	memcpy(copy->members, g->members, sizeof(NoOverlapMember) * g->nmembers);
	return copy;
}

/* ---------------------------------------------------------------------
 * The check
 * ---------------------------------------------------------------------
 */

/* primary key value of the row in slot (single-column key) or its ctid */
static char *
row_identity(Relation rel, TupleTableSlot *slot)
{
	Oid			pk = RelationGetPrimaryKeyIndex(rel);

	if (OidIsValid(pk))
	{
		HeapTuple	itup = SearchSysCache1(INDEXRELID, ObjectIdGetDatum(pk));

		if (HeapTupleIsValid(itup))
		{
			Form_pg_index ind = (Form_pg_index) GETSTRUCT(itup);
			AttrNumber	att = ind->indnkeyatts == 1 ? ind->indkey.values[0] : 0;
			Oid			typoutput;
			bool		isvarlena,
						isnull;
			Datum		d;

			ReleaseSysCache(itup);
			if (att > 0)
			{
				d = slot_getattr(slot, att, &isnull);
				if (!isnull)
				{
					getTypeOutputInfo(TupleDescAttr(RelationGetDescr(rel), att - 1)->atttypid,
									  &typoutput, &isvarlena);
					return OidOutputFunctionCall(typoutput, d);
				}
			}
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
			 Oid self_rel, ItemPointer self_tid, Snapshot snap, NoOverlapConflict *c)
{
	TypeCacheEntry *tt = g->time_tc;
	bool		self_table = (m->relid == self_rel);

	/* locked by the caller */
	Relation	heap = table_open(m->relid, NoLock);
	Relation	index = index_open(m->indexid, NoLock);
	TupleTableSlot *slot = table_slot_create(heap, NULL);
	IndexScanDesc scan;
	ScanKeyData keys[2];
	ItemPointer tid;
	bool		conflict = false;

	ScanKeyEntryInitialize(&keys[0], 0, 1, BTEqualStrategyNumber, InvalidOid,
						   index->rd_indcollation[0], g->person_eq_proc, p);
	ScanKeyEntryInitialize(&keys[1], 0, 2, BTLessStrategyNumber, InvalidOid,
						   index->rd_indcollation[1], g->time_lt_proc, e);
	scan = index_beginscan(heap, index, snap, 2, 0);
	index_rescan(scan, keys, 2, NULL, 0);
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

			conflict = true;
			c->relid = m->relid;
			c->id = row_identity(heap, slot);
			c->start = datumCopy(slot_getattr(slot, m->start_att, &isnull), tt->typbyval, tt->typlen);
			c->end = datumCopy(cand_end, tt->typbyval, tt->typlen);
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
	index_close(index, NoLock);
	table_close(heap, NoLock);
	return conflict;
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
 * iact.no_overlap_trigger(group, person_column, start_column, end_column):
 * AFTER INSERT OR UPDATE ... FOR EACH ROW.
 */
Datum
no_overlap_trigger(PG_FUNCTION_ARGS)
{
	TriggerData *td = (TriggerData *) fcinfo->context;
	Relation	rel;
	TupleTableSlot *slot;
	NoOverlapGroup *g = NULL;
	NoOverlapMember *self = NULL;
	TypeCacheEntry *pt,
			   *tt;
	Datum		p,
				s,
				e;
	bool		pnull,
				snull,
				enull;
	uint64		gen;
	uint32		key;
	LOCKTAG		tag;
	Snapshot	snap;
	NoOverlapConflict c;
	bool		conflict = false;

	if (!CALLED_AS_TRIGGER(fcinfo) ||
		!TRIGGER_FIRED_AFTER(td->tg_event) || !TRIGGER_FIRED_FOR_ROW(td->tg_event) ||
		TRIGGER_FIRED_BY_DELETE(td->tg_event) || TRIGGER_FIRED_BY_TRUNCATE(td->tg_event) ||
		td->tg_trigger->tgnargs != NO_OVERLAP_NARGS)
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("iact.no_overlap_trigger must be an AFTER INSERT OR UPDATE FOR EACH ROW trigger with 4 arguments"),
				 errhint("Use iact.enforce_no_overlap() to attach it.")));

	rel = td->tg_relation;
	slot = TRIGGER_FIRED_BY_UPDATE(td->tg_event) ? td->tg_newslot : td->tg_trigslot;

	/* the group, with every member locked against DDL while we look */
	do
	{
		gen = group_generation;
		g = get_group(td->tg_trigger->tgargs[0], RelationGetRelid(rel));
		for (int i = 0; i < g->nmembers; i++)
		{
			LockRelationOid(g->members[i].relid, AccessShareLock);
			LockRelationOid(g->members[i].indexid, AccessShareLock);
		}
	} while (gen != group_generation);

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

	pt = g->person_tc;
	tt = g->time_tc;
	if (DatumGetInt32(FunctionCall2Coll(&tt->cmp_proc_finfo, InvalidOid, s, e)) >= 0)
		ereport(ERROR,
				(errcode(ERRCODE_CHECK_VIOLATION),
				 errmsg("event of person %s must start before it ends",
						datum_text(g->person_type, p)),
				 errdetail("Attempted [%s, %s) in %s.",
						   datum_text(g->time_type, s), datum_text(g->time_type, e),
						   qualified_relname(RelationGetRelid(rel))),
				 errtable(rel)));

	/* 1. serialise writers of this person in this group */
	key = hash_combine(g->name_hash,
					   DatumGetUInt32(FunctionCall1Coll(&pt->hash_proc_finfo,
														DEFAULT_COLLATION_OID, p)));
	SET_LOCKTAG_ADVISORY(tag, MyDatabaseId, IACT_LOCK_CLASS, key, IACT_LOCK_NO_OVERLAP);
	(void) LockAcquire(&tag, ExclusiveLock, false, false);

	/* 2. look with the latest snapshot, our own statement's rows included */
	CommandCounterIncrement();
	snap = RegisterSnapshot(GetLatestSnapshot());

	/* 3. one probe per member */
	for (int i = 0; i < g->nmembers && !conflict; i++)
		conflict = probe_member(g, &g->members[i], p, s, e, RelationGetRelid(rel),
								&slot->tts_tid, snap, &c);
	UnregisterSnapshot(snap);

	/* 4. report */
	if (conflict && !c.seen_by_xact_snapshot)
		ereport(ERROR,
				(errcode(ERRCODE_T_R_SERIALIZATION_FAILURE),
				 errmsg("could not serialize access due to a concurrently committed overlapping event of person %s",
						datum_text(g->person_type, p)),
				 errdetail("Attempted [%s, %s) in %s overlaps %s id %s [%s, %s), committed after this transaction's snapshot.",
						   datum_text(g->time_type, s), datum_text(g->time_type, e),
						   qualified_relname(RelationGetRelid(rel)),
						   qualified_relname(c.relid), c.id,
						   datum_text(g->time_type, c.start), datum_text(g->time_type, c.end)),
				 errhint("Retry the transaction: it will see the other event.")));
	if (conflict)
		ereport(ERROR,
				(errcode(ERRCODE_EXCLUSION_VIOLATION),
				 errmsg("person %s already has an overlapping event",
						datum_text(g->person_type, p)),
				 errdetail("Attempted [%s, %s) in %s overlaps %s id %s [%s, %s).",
						   datum_text(g->time_type, s), datum_text(g->time_type, e),
						   qualified_relname(RelationGetRelid(rel)),
						   qualified_relname(c.relid), c.id,
						   datum_text(g->time_type, c.start), datum_text(g->time_type, c.end)),
				 errtableconstraint(rel, td->tg_trigger->tgname)));

	return PointerGetDatum(NULL);
}

/* ---------------------------------------------------------------------
 * SQL helpers used by iact.enforce_no_overlap / iact.find_overlaps
 * ---------------------------------------------------------------------
 */

/*
 * iact.no_overlap_members(group_name text DEFAULT NULL, strict boolean DEFAULT false)
 *   RETURNS TABLE (group_name text, table_name regclass, person_column name,
 *                  start_column name, end_column name, probe_index regclass)
 * strict raises the errors the trigger would (missing index, NULLable or
 * mismatched columns).
 */
Datum
no_overlap_members(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	bool		strict = PG_ARGISNULL(1) ? false : PG_GETARG_BOOL(1);
	Oid			fnoid = trigger_function_oid();
	List	   *names = NIL;
	ListCell   *lc;
	Relation	tgrel;
	SysScanDesc scan;
	HeapTuple	tup;

	InitMaterializedSRF(fcinfo, 0);

	if (!PG_ARGISNULL(0))
		names = list_make1(text_to_cstring(PG_GETARG_TEXT_PP(0)));
	else
	{
		tgrel = table_open(TriggerRelationId, AccessShareLock);
		scan = systable_beginscan(tgrel, InvalidOid, false, NULL, 0, NULL);
		while (HeapTupleIsValid(tup = systable_getnext(scan)))
		{
			Form_pg_trigger tg = (Form_pg_trigger) GETSTRUCT(tup);

			if (tg->tgfoid == fnoid && tg->tgnargs == NO_OVERLAP_NARGS)
			{
				char	  **args = trigger_args(tup, RelationGetDescr(tgrel), tg->tgnargs);

				names = list_append_unique(names, makeString(args[0]));
			}
		}
		systable_endscan(scan);
		table_close(tgrel, AccessShareLock);
		foreach(lc, names)
			lfirst(lc) = strVal(lfirst(lc));
	}

	foreach(lc, names)
	{
		NoOverlapGroup g;
		char	   *name = lfirst(lc);

		load_group(&g, name, strict, CurrentMemoryContext);
		for (int i = 0; i < g.nmembers; i++)
		{
			NoOverlapMember *m = &g.members[i];
			Datum		values[6];
			bool		nulls[6] = {false, false, false, false, false, false};

			values[0] = CStringGetTextDatum(name);
			values[1] = ObjectIdGetDatum(m->relid);
			values[2] = NameGetDatum(&m->person_col);
			values[3] = NameGetDatum(&m->start_col);
			values[4] = NameGetDatum(&m->end_col);
			values[5] = ObjectIdGetDatum(m->indexid);
			nulls[5] = !OidIsValid(m->indexid);
			tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
		}
	}
	return (Datum) 0;
}

/*
 * iact.no_overlap_touch(group_name text): send a relcache invalidation for
 * every member, so that every backend rebuilds its picture of the group at
 * commit (used after adding or removing members).
 */
Datum
no_overlap_touch(PG_FUNCTION_ARGS)
{
	NoOverlapGroup g;

	load_group(&g, text_to_cstring(PG_GETARG_TEXT_PP(0)), false, CurrentMemoryContext);
	for (int i = 0; i < g.nmembers; i++)
		CacheInvalidateRelcacheByRelid(g.members[i].relid);
	PG_RETURN_VOID();
}
