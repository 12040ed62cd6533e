/*-------------------------------------------------------------------------
 *
 * no_overlap.h
 *	  Declarations shared by no_overlap.c (the check) and
 *	  no_overlap_groups.c (the registry and cache of no-overlap groups).
 *
 *-------------------------------------------------------------------------
 */
#ifndef IACT_NO_OVERLAP_H
#define IACT_NO_OVERLAP_H

#include "iact.h"

#include "access/attnum.h"
#include "datatype/timestamp.h"

/*
 * no-overlap groups (no_overlap_groups.c: registry and cache; no_overlap.c:
 * the check).  A group is read from the triggers
 * iact.no_overlap_trigger(group, person_col, start_col, end_col, max_length).
 */
#define NO_OVERLAP_NARGS 5

/* group names, in bytes: the trigger "iact_no_overlap <group>" is a name */
#define NO_OVERLAP_MAX_NAME 40

/*
 * Writers are serialised per (group, person) by transaction-scoped advisory
 * locks, spread over this many keys: a transaction holds at most this many
 * of them however many persons it writes (the shared lock table holds about
 * max_locks_per_transaction * max_connections locks).  Two persons sharing
 * a key only wait for each other; correctness is unchanged.
 */
#define NO_OVERLAP_LOCK_KEYS 1024

typedef struct NoOverlapMember
{
	Oid			relid;
	Oid			indexid;		/* btree on (person, start), or InvalidOid */
	bool		partitioned;	/* a partitioned table: its partitions carry
								 * the cloned trigger and are the members
								 * probed; it is kept so that a new partition
								 * (which invalidates it) flushes the group */
	Oid			person_coll;	/* collation of the probe index's person column:
								 * deterministic, used by the lock key too */
	AttrNumber	person_att;
	AttrNumber	start_att;
	AttrNumber	end_att;
	NameData	person_col;
	NameData	start_col;
	NameData	end_col;
	NameData	max_length;		/* interval as text, or "" */
} NoOverlapMember;

typedef struct NoOverlapGroup
{
	char		name[NAMEDATALEN];	/* hash key */
	Oid			person_type;
	Oid			time_type;
	RegProcedure person_eq_proc;	/* btree "=" of person_type */
	RegProcedure time_lt_proc;	/* btree "<" of time_type */
	RegProcedure time_gt_proc;	/* btree ">" of time_type */
	bool		has_max;		/* events last at most max_us (timestamp[tz]) */
	int64		max_us;			/* max_length in absolute microseconds */
	struct TypeCacheEntry *person_tc;	/* type cache entries live for the backend */
	struct TypeCacheEntry *time_tc;
	uint32		name_hash;
	int			nmembers;
	NoOverlapMember *members;
} NoOverlapGroup;


/* bumped whenever the group cache is flushed */
extern uint64 iact_no_overlap_generation;

/* the group (read and validated on first use), copied into CurrentMemoryContext */
extern NoOverlapGroup *iact_no_overlap_group(const char *name, Oid must_contain);

#endif							/* IACT_NO_OVERLAP_H */
