/*-------------------------------------------------------------------------
 *
 * iact.h
 *	  Declarations shared between iact's capabilities.
 *
 * Each capability lives in its own file under src/ and exposes here only
 * what other files need: its _PG_init hook and the odd helper.  Nothing in
 * this header may include mysql.h (see src/mariadb_client.h).
 *
 *-------------------------------------------------------------------------
 */
#ifndef IACT_H
#define IACT_H

#include "postgres.h"
#include "miscadmin.h"
#include "access/attnum.h"
#include "datatype/timestamp.h"

/* advisory lock key space: pg_advisory_lock(IACT_LOCK_CLASS, <key>) */
#define IACT_LOCK_CLASS			1767990132	/* 'iact' as a big-endian int4 */
#define IACT_LOCK_MIGRATIONS	1

/*
 * no-overlap per-person locks (no_overlap.c): transaction-scoped advisory
 * locks (database, IACT_LOCK_CLASS, hash(group, person), IACT_LOCK_NO_OVERLAP),
 * i.e. pg_locks classid = IACT_LOCK_CLASS, objsubid = 3.  The SQL advisory
 * functions only produce objsubid 1 or 2, so no SQL lock can collide.
 */
#define IACT_LOCK_NO_OVERLAP	3

/* true when loaded through shared_preload_libraries */
extern bool iact_preloaded;

/* per-capability initialisation, called from _PG_init (src/iact.c) */
extern void iact_migration_init(void);
extern void iact_events_init(void);


/*
 * no-overlap groups (no_overlap_groups.c: registry and cache; no_overlap.c:
 * the check).  A group is read from the triggers
 * iact.no_overlap_trigger(group, person_col, start_col, end_col, max_length).
 */
#define NO_OVERLAP_NARGS 5

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

#endif							/* IACT_H */
