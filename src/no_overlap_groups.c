/*-------------------------------------------------------------------------
 *
 * no_overlap_groups.c
 *	  The registry of no-overlap groups (see no_overlap.c for the check).
 *
 * A group is the set of tables carrying the trigger
 * iact.no_overlap_trigger(group, person_col, start_col, end_col, max_length);
 * pg_trigger is the only registry.  This file reads a group from pg_trigger,
 * validates it (columns, types, the btree on (person, start), the maximum
 * length), caches it per backend (flushed by relcache invalidation of any
 * member), and implements iact.no_overlap_members() and
 * iact.no_overlap_touch().
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "no_overlap.h"


#include "access/genam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "catalog/pg_am.h"
#include "catalog/pg_class.h"
#include "catalog/pg_index.h"
#include "catalog/namespace.h"
#include "catalog/pg_opclass.h"
#include "catalog/pg_proc.h"
#include "catalog/pg_trigger.h"
#include "commands/defrem.h"
#include "common/hashfn.h"
#include "common/int.h"
#include "fmgr.h"
#include "funcapi.h"
#include "nodes/makefuncs.h"
#include "parser/parse_func.h"
#include "utils/builtins.h"
#include "utils/hsearch.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/syscache.h"
#include "catalog/pg_type.h"
#include "utils/typcache.h"

static HTAB *group_cache = NULL;
static MemoryContext group_cxt = NULL;
uint64		iact_no_overlap_generation = 0;
static bool callback_registered = false;

PG_FUNCTION_INFO_V1(iact_no_overlap_members);
PG_FUNCTION_INFO_V1(iact_no_overlap_touch);

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
	iact_no_overlap_generation++;
}

/*
 * Relcache invalidation: drop the cached groups when a member table (or,
 * relid invalid, any relation) changed, so that the next check reloads them.
 */
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

/*
 * iact.no_overlap_trigger(), looked up without the caller's USAGE on schema
 * iact: a writer of a guarded table of its own needs no privilege there
 */
static Oid
trigger_function_oid(void)
{
	Oid			nsp = get_namespace_oid("iact", false);
	Oid			fn = GetSysCacheOid3(PROCNAMEARGSNSP, Anum_pg_proc_oid,
									 CStringGetDatum("no_overlap_trigger"),
									 PointerGetDatum(buildoidvector(NULL, 0)),
									 ObjectIdGetDatum(nsp));

	if (!OidIsValid(fn))
		elog(ERROR, "function iact.no_overlap_trigger() does not exist");
	return fn;
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

/*
 * Groups are cached by name in NAMEDATALEN bytes: a longer name (only a
 * trigger attached by hand can carry one, iact.enforce_no_overlap allows
 * NO_OVERLAP_MAX_NAME bytes) would be truncated into another group's.
 */
static void
check_group_name(const char *name)
{
	if (strlen(name) >= NAMEDATALEN)
		ereport(ERROR,
				(errcode(ERRCODE_NAME_TOO_LONG),
				 errmsg("no-overlap group name is %zu bytes long; the limit is %d bytes",
						strlen(name), NAMEDATALEN - 1),
				 errhint("iact.enforce_no_overlap accepts group names of at most %d bytes.",
						 NO_OVERLAP_MAX_NAME)));
}

/* the access method of index indexoid, InvalidOid when it is gone */
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

/*
 * Why the btree index itup (on (person, start, ...)) cannot serve as the
 * probe, or NULL when it can.  The probe scans backwards from (p, e) with the
 * default btree "=" and "<" of the group's types, and the lock key hashes the
 * person with the hash function of the same equality: it needs ascending
 * NULLS LAST columns, the default operator classes, and deterministic
 * collations (under a nondeterministic one, two persons the index calls equal
 * may differ in bytes, hash to different lock keys and race), and the person
 * column itself under a deterministic collation (person_colcoll: else the
 * column's equality is not the index's).
 */
static const char *
probe_index_problem(HeapTuple itup, Oid person_type, Oid time_type, const char *person_col,
					const char *start_col, Oid person_colcoll)
{
	Form_pg_index ind = (Form_pg_index) GETSTRUCT(itup);
	bool		isnull;
	oidvector  *indclass = (oidvector *) DatumGetPointer(SysCacheGetAttr(INDEXRELID, itup,
																	  Anum_pg_index_indclass, &isnull));
	oidvector  *indcoll = (oidvector *) DatumGetPointer(SysCacheGetAttr(INDEXRELID, itup,
																	 Anum_pg_index_indcollation, &isnull));
	int2vector *indoption = (int2vector *) DatumGetPointer(SysCacheGetAttr(INDEXRELID, itup,
																		Anum_pg_index_indoption, &isnull));
	Oid			types[2] = {person_type, time_type};
	const char *cols[2] = {person_col, start_col};

	if (!ind->indisvalid || !ind->indisready || !ind->indislive)
		return "it is not valid (CREATE INDEX CONCURRENTLY failed or is in progress)";
	if (!heap_attisnull(itup, Anum_pg_index_indpred, NULL))
		return "it is a partial index";
	/*
	 * Under a nondeterministic collation the column calls persons equal that
	 * differ in bytes ('Alice', 'alice'): an index under another collation
	 * would tell them apart and let their events overlap.
	 */
	if (OidIsValid(person_colcoll) && !get_collation_isdeterministic(person_colcoll))
		return psprintf("the table's column %s has a nondeterministic collation", quote_identifier(person_col));
	for (int i = 0; i < 2; i++)
	{
		if (indoption->values[i] & INDOPTION_DESC)
			return psprintf("its column %s is DESC", quote_identifier(cols[i]));
		if (indoption->values[i] & INDOPTION_NULLS_FIRST)
			return psprintf("its column %s is NULLS FIRST", quote_identifier(cols[i]));
		if (indclass->values[i] != GetDefaultOpClass(types[i], BTREE_AM_OID))
			return psprintf("its column %s has a non-default operator class", quote_identifier(cols[i]));
		if (OidIsValid(indcoll->values[i]) && !get_collation_isdeterministic(indcoll->values[i]))
			return psprintf("its column %s has a nondeterministic collation", quote_identifier(cols[i]));
	}
	return NULL;
}

/*
 * The btree whose first two key columns are (person, start) and that the
 * probe scans correctly (probe_index_problem), the one with the fewest key
 * columns.  When none is usable but some index on (person, start) exists,
 * *refused gets that index and *why the reason, for the caller's error.
 */
static Oid
find_probe_index(Relation rel, AttrNumber person_att, AttrNumber start_att,
				 Oid person_type, Oid time_type, const char *person_col, const char *start_col,
				 Oid *refused, const char **why)
{
	List	   *indexes = RelationGetIndexList(rel);
	ListCell   *lc;
	Oid			best = InvalidOid;
	int			best_natts = INT_MAX;
	Oid			person_colcoll = TupleDescAttr(RelationGetDescr(rel), person_att - 1)->attcollation;

	*refused = InvalidOid;
	*why = NULL;
	foreach(lc, indexes)
	{
		Oid			indexoid = lfirst_oid(lc);
		HeapTuple	itup = SearchSysCache1(INDEXRELID, ObjectIdGetDatum(indexoid));
		Form_pg_index ind;
		const char *problem;

		if (!HeapTupleIsValid(itup))
			continue;
		ind = (Form_pg_index) GETSTRUCT(itup);
		if (ind->indnkeyatts >= 2 &&
			ind->indkey.values[0] == person_att &&
			ind->indkey.values[1] == start_att &&
			index_am(indexoid) == BTREE_AM_OID)
		{
			problem = probe_index_problem(itup, person_type, time_type, person_col, start_col,
										  person_colcoll);
			if (problem == NULL && ind->indnkeyatts < best_natts)
			{
				best = indexoid;
				best_natts = ind->indnkeyatts;
			}
			else if (problem != NULL && !OidIsValid(*refused))
			{
				*refused = indexoid;
				*why = problem;
			}
		}
		ReleaseSysCache(itup);
	}
	list_free(indexes);
	return best;
}

/*
 * The attribute number of column col of member rel of group; an error when
 * it does not exist, and with strict when it may be NULL.
 */
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
 * Find member m's probe index (m->indexid, InvalidOid when none) and the
 * collation of its person column (m->person_coll).  strict: a member
 * without one is an error, which names the index refused and why.
 */
static void
member_probe_index(Relation rel, NoOverlapMember *m, const char *name, Oid ptype, Oid stype,
				   bool strict)
{
	const char *pcol = NameStr(m->person_col);
	const char *scol = NameStr(m->start_col);
	char	   *qualified;
	Oid			refused;
	const char *why;
	Oid			pcoll = TupleDescAttr(RelationGetDescr(rel), m->person_att - 1)->attcollation;

	m->indexid = find_probe_index(rel, m->person_att, m->start_att, ptype, stype, pcol, scol,
								  &refused, &why);
	if (OidIsValid(m->indexid))
	{
		Oid			ityp;
		int32		ityptypmod;

		get_atttypetypmodcoll(m->indexid, 1, &ityp, &ityptypmod, &m->person_coll);
		return;
	}
	if (!strict)
		return;
	qualified = quote_qualified_identifier(get_namespace_name(RelationGetNamespace(rel)),
										   RelationGetRelationName(rel));
	if (OidIsValid(pcoll) && !get_collation_isdeterministic(pcoll))
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("column %s of table %s has a nondeterministic collation, which no-overlap group \"%s\" cannot use",
						quote_identifier(pcol), RelationGetRelationName(rel), name),
				 errdetail("The check compares persons byte by byte; the column's equality may call persons that differ in bytes equal."),
				 errhint("Give the column a deterministic collation: ALTER TABLE %s ALTER COLUMN %s TYPE %s COLLATE \"C\";",
						 qualified, quote_identifier(pcol), format_type_be(ptype))));
	if (OidIsValid(refused))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("table %s has no usable btree index on (%s, %s) for no-overlap group \"%s\"",
						RelationGetRelationName(rel), pcol, scol, name),
				 errdetail("Index %s cannot serve the check: %s.", get_rel_name(refused), why),
				 errhint("The check needs ascending columns, the default operator classes and deterministic collations: CREATE INDEX ON %s (%s, %s);",
						 qualified, quote_identifier(pcol), quote_identifier(scol))));
	ereport(ERROR,
			(errcode(ERRCODE_UNDEFINED_OBJECT),
			 errmsg("table %s has no btree index on (%s, %s) for no-overlap group \"%s\"",
					RelationGetRelationName(rel), pcol, scol, name),
			 errhint("CREATE INDEX ON %s (%s, %s);",
					 qualified, quote_identifier(pcol), quote_identifier(scol))));
}

/*
 * The group's maximum event length: the same on every member, a positive
 * interval, for timestamp or timestamptz groups only.
 */
static void
load_max_length(NoOverlapGroup *g, const char *name)
{
	const char *text = NameStr(g->members[0].max_length);
	Interval   *iv;

	g->has_max = false;
	for (int i = 1; i < g->nmembers; i++)
		if (strcmp(NameStr(g->members[i].max_length), text) != 0)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("members of no-overlap group \"%s\" disagree on the maximum event length", name),
					 errhint("Call iact.enforce_no_overlap with every table of the group and one max_length.")));
	if (text[0] == '\0')
		return;
	if (g->time_type != TIMESTAMPOID && g->time_type != TIMESTAMPTZOID)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("a maximum event length needs timestamp or timestamptz columns (no-overlap group \"%s\")",
						name)));
	iv = DatumGetIntervalP(DirectFunctionCall3(interval_in, CStringGetDatum(text),
											   ObjectIdGetDatum(InvalidOid), Int32GetDatum(-1)));
	/* absolute time: a day is 24 hours, a month 30 days */
	if (pg_mul_s64_overflow((int64) iv->month * DAYS_PER_MONTH + iv->day, USECS_PER_DAY, &g->max_us) ||
		pg_add_s64_overflow(g->max_us, iv->time, &g->max_us) || g->max_us <= 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("the maximum event length of no-overlap group \"%s\" must be a positive interval",
						name)));
	g->has_max = true;
}

/*
 * What the members of a group must share beyond their column types (strict
 * loads): one collation for the person column of every probe index, so that
 * the probes, the lock key and find_overlaps compare persons alike in every
 * member (a type such as citext is not compared byte by byte, even under a
 * deterministic collation); and a time type without a collation (the trigger
 * compares times without one).
 */
static void
check_member_collations(NoOverlapGroup *g, const char *name)
{
	NoOverlapMember *first = &g->members[0];

	if (type_is_collatable(g->time_type))
		ereport(ERROR,
				(errcode(ERRCODE_DATATYPE_MISMATCH),
				 errmsg("start and end columns of no-overlap group \"%s\" are of type %s, which has a collation",
						name, format_type_be(g->time_type)),
				 errhint("Use a time type without a collation, such as timestamp, timestamptz, date or integer.")));
	for (int i = 1; i < g->nmembers; i++)
	{
		NoOverlapMember *m = &g->members[i];

		if (OidIsValid(first->indexid) && OidIsValid(m->indexid) &&
			first->person_coll != m->person_coll)
			ereport(ERROR,
					(errcode(ERRCODE_COLLATION_MISMATCH),
					 errmsg("members of no-overlap group \"%s\" compare persons under different collations",
							name),
					 errdetail("Probe index %s compares %s under collation %s, probe index %s under %s.",
							   get_rel_name(first->indexid), NameStr(first->person_col),
							   quote_identifier(get_collation_name(first->person_coll)),
							   get_rel_name(m->indexid),
							   quote_identifier(get_collation_name(m->person_coll))),
					 errhint("Create every probe index with one collation, e.g. CREATE INDEX ON %s (%s COLLATE %s, %s);",
							 get_rel_name(m->relid), quote_identifier(NameStr(m->person_col)),
							 quote_identifier(get_collation_name(first->person_coll)),
							 quote_identifier(NameStr(m->start_col)))));
	}
}

/* list_sort comparator of load_group's trigger arguments (slot 0: the table's OID) */
static int
member_relid_cmp(const ListCell *a, const ListCell *b)
{
	Oid			ra = (Oid) (uintptr_t) ((char **) lfirst(a))[0];
	Oid			rb = (Oid) (uintptr_t) ((char **) lfirst(b))[0];

	return (ra > rb) - (ra < rb);
}

/*
 * Read the members of a group from pg_trigger into *g (allocated in
 * CurrentMemoryContext: table_open may flush the group cache's context).
 * strict: every member must have the probe index and NOT NULL columns, and
 * all members must agree on the column types (what the trigger needs).
 */
static void
load_group(NoOverlapGroup *g, const char *name, bool strict)
{
	Oid			fnoid = trigger_function_oid();
	Relation	tgrel;
	SysScanDesc scan;
	HeapTuple	tup;
	List	   *found = NIL;
	ListCell   *lc;
	int			n = 0;

	check_group_name(name);
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
	/* pg_trigger's heap order depends on its history: members in table OID order */
	list_sort(found, member_relid_cmp);

	g->members = palloc0(sizeof(NoOverlapMember) * Max(list_length(found), 1));
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
		m->partitioned = (rel->rd_rel->relkind == RELKIND_PARTITIONED_TABLE);
		namestrcpy(&m->person_col, args[1]);
		namestrcpy(&m->start_col, args[2]);
		namestrcpy(&m->end_col, args[3]);
		namestrcpy(&m->max_length, args[4]);
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
		member_probe_index(rel, m, name, ptype, stype, strict);
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
											   TYPECACHE_LT_OPR | TYPECACHE_GT_OPR |
											   TYPECACHE_CMP_PROC_FINFO);

		if (!OidIsValid(pt->eq_opr) || !OidIsValid(pt->hash_proc) ||
			!OidIsValid(tt->lt_opr) || !OidIsValid(tt->gt_opr) || !OidIsValid(tt->cmp_proc))
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_FUNCTION),
					 errmsg("no-overlap group \"%s\" needs a hashable person type with equality and an ordered time type",
							name)));
		g->person_eq_proc = get_opcode(pt->eq_opr);
		g->time_lt_proc = get_opcode(tt->lt_opr);
		g->time_gt_proc = get_opcode(tt->gt_opr);
		g->person_tc = pt;
		g->time_tc = tt;
		check_member_collations(g, name);
		load_max_length(g, name);
	}
}

/* the cached group (built on first use); returns a copy in CurrentMemoryContext */
NoOverlapGroup *
iact_no_overlap_group(const char *name, Oid must_contain)
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
	check_group_name(name);
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
		NoOverlapMember *members;
		uint64		gen = iact_no_overlap_generation;

		/*
		 * build aside, in CurrentMemoryContext: loading opens relations, which
		 * may process invalidations that reset group_cxt; only a load that saw
		 * no flush is copied into the cache
		 */
		load_group(&tmp, name, true);
		if (gen != iact_no_overlap_generation || group_cache == NULL)
			return iact_no_overlap_group(name, must_contain);
		members = MemoryContextAlloc(group_cxt, sizeof(NoOverlapMember) * Max(tmp.nmembers, 1));
		memcpy(members, tmp.members, sizeof(NoOverlapMember) * tmp.nmembers);
		tmp.members = members;
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
 * SQL helpers used by iact.enforce_no_overlap / iact.find_overlaps
 * ---------------------------------------------------------------------
 */

/*
 * iact.no_overlap_members(group_name text DEFAULT NULL, strict boolean DEFAULT false)
 *   RETURNS TABLE (group_name text, table_name regclass, person_column name,
 *                  start_column name, end_column name, probe_index regclass,
 *                  max_length interval)
 * strict raises the errors the trigger would (missing index, NULLable or
 * mismatched columns).
 */
Datum
iact_no_overlap_members(PG_FUNCTION_ARGS)
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

		load_group(&g, name, strict);
		for (int i = 0; i < g.nmembers; i++)
		{
			NoOverlapMember *m = &g.members[i];
			Datum		values[7];
			bool		nulls[7] = {false, false, false, false, false, false, false};

			values[0] = CStringGetTextDatum(name);
			values[1] = ObjectIdGetDatum(m->relid);
			values[2] = NameGetDatum(&m->person_col);
			values[3] = NameGetDatum(&m->start_col);
			values[4] = NameGetDatum(&m->end_col);
			values[5] = ObjectIdGetDatum(m->indexid);
			nulls[5] = !OidIsValid(m->indexid);
			nulls[6] = (NameStr(m->max_length)[0] == '\0');
			if (!nulls[6])
				values[6] = DirectFunctionCall3(interval_in, CStringGetDatum(NameStr(m->max_length)),
												ObjectIdGetDatum(InvalidOid), Int32GetDatum(-1));
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
iact_no_overlap_touch(PG_FUNCTION_ARGS)
{
	NoOverlapGroup g;

	load_group(&g, text_to_cstring(PG_GETARG_TEXT_PP(0)), false);
	for (int i = 0; i < g.nmembers; i++)
		CacheInvalidateRelcacheByRelid(g.members[i].relid);
	PG_RETURN_VOID();
}

/* the C names iact--1.0.sql gives these functions */
IACT_1_0_SYMBOL(no_overlap_members, iact_no_overlap_members)
IACT_1_0_SYMBOL(no_overlap_touch, iact_no_overlap_touch)
