/*-------------------------------------------------------------------------
 *
 * sync_locks.c
 *	  The session-level advisory locks of a sync step (doc/sync.md, "Who runs
 *	  what"): a step runs the target owner's code (triggers, input and domain
 *	  functions) inside the caller's session, a superuser's or the worker's.
 *	  A session-level lock that code takes (pg_advisory_lock and friends, the
 *	  USER lock method) would outlive the step and stay with the caller: in
 *	  the worker, for ever.  So the session-level USER locks this backend
 *	  holds are counted before each step and again after it; every hold the
 *	  step added is released (with a WARNING naming the keys), and every hold
 *	  of the caller the step released (pg_advisory_unlock_all()) is taken
 *	  again when free.  Transaction-level advisory locks are left alone: they
 *	  end with the step's or the caller's transaction like row locks.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "sync.h"

#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "storage/lock.h"
#include "storage/lwlock.h"
#include "storage/shmem.h"
#include "storage/proc.h"

/* one lock (tag and mode) and how many times the session holds it */
typedef struct SyncSessionLock
{
	LOCKTAG		tag;
	LOCKMODE	mode;
	int64		count;
} SyncSessionLock;

struct SyncLockSet
{
	int			n;
	SyncSessionLock *locks;
};

/*
 * How many session-level holds this backend has on (tag, mode), which it
 * holds in some way: read from the local lock table, reached by taking the
 * lock once more at session level (immediate: it is held) and releasing
 * that hold.
 */
static int64
session_holds(const LOCKTAG *tag, LOCKMODE mode)
{
	LOCALLOCK  *ll = NULL;
	int64		n = 0;
	int			i;

	if (LockAcquireExtended(tag, mode, true, true, true, &ll) == LOCKACQUIRE_NOT_AVAIL)
		return 0;
	for (i = 0; ll != NULL && i < ll->numLockOwners; i++)
		if (ll->lockOwners[i].owner == NULL)
			n += ll->lockOwners[i].nLocks;
	(void) LockRelease(tag, mode, true);
	return n - 1;
}

/*
 * The session-level USER-method locks this backend holds now, allocated in
 * the current memory context.  Only this backend's own lock entries are
 * read (its PGPROC's lists, one lock partition at a time, as LockReleaseAll
 * does), not the whole lock table: this runs twice per step.
 */
SyncLockSet *
iact_sync_session_locks(void)
{
	SyncLockSet *set = palloc0(sizeof(SyncLockSet));
	int			max = 8;
	int			n = 0;
	LOCKTAG    *tags = palloc(sizeof(LOCKTAG) * max);
	LOCKMASK   *masks = palloc(sizeof(LOCKMASK) * max);
	int			partition;
	int			i;
	int			mode;

	for (partition = 0; partition < NUM_LOCK_PARTITIONS; partition++)
	{
		SHM_QUEUE  *procLocks = &(MyProc->myProcLocks[partition]);
		LWLock	   *plock = LockHashPartitionLockByIndex(partition);
		PROCLOCK   *proclock;

		/* only this backend adds its USER locks: an empty list needs no lock */
		if (SHMQueueNext(procLocks, procLocks, offsetof(PROCLOCK, procLink)) == NULL)
			continue;
		LWLockAcquire(plock, LW_SHARED);
		for (proclock = (PROCLOCK *) SHMQueueNext(procLocks, procLocks, offsetof(PROCLOCK, procLink));
			 proclock != NULL;
			 proclock = (PROCLOCK *) SHMQueueNext(procLocks, &proclock->procLink,
												  offsetof(PROCLOCK, procLink)))
		{
			if (proclock->tag.myLock->tag.locktag_lockmethodid != USER_LOCKMETHOD ||
				proclock->holdMask == 0)
				continue;
			if (n == max)
			{
				/* no palloc failure while the partition is locked: grow first */
				LWLockRelease(plock);
				max *= 2;
				tags = repalloc(tags, sizeof(LOCKTAG) * max);
				masks = repalloc(masks, sizeof(LOCKMASK) * max);
				n = 0;
				partition = -1;	/* read every partition again */
				break;
			}
			tags[n] = proclock->tag.myLock->tag;
			masks[n] = proclock->holdMask;
			n++;
		}
		if (partition >= 0)
			LWLockRelease(plock);
	}

	/* then how many of the holds are session-level (the local lock table) */
	set->locks = palloc(sizeof(SyncSessionLock) * (n * MaxLockMode + 1));
	for (i = 0; i < n; i++)
		for (mode = 1; mode <= MaxLockMode; mode++)
		{
			int64		holds;

			if ((masks[i] & LOCKBIT_ON(mode)) == 0)
				continue;
			holds = session_holds(&tags[i], mode);
			if (holds <= 0)
				continue;
			set->locks[set->n].tag = tags[i];
			set->locks[set->n].mode = mode;
			set->locks[set->n].count = holds;
			set->n++;
		}
	return set;
}

/* how many session-level holds of (tag, mode) set has; 0 when none */
static int64
count_in(SyncLockSet *set, const LOCKTAG *tag, LOCKMODE mode)
{
	int			i;

	for (i = 0; i < set->n; i++)
		if (set->locks[i].mode == mode && memcmp(&set->locks[i].tag, tag, sizeof(LOCKTAG)) == 0)
			return set->locks[i].count;
	return 0;
}

/* an advisory lock's key as pg_locks shows it */
static void
append_key(StringInfo s, const SyncSessionLock *l)
{
	appendStringInfo(s, "%s(%u, %u, %s)", s->len ? ", " : "", l->tag.locktag_field2,
					 l->tag.locktag_field3, GetLockmodeName(USER_LOCKMETHOD, l->mode));
}

/*
 * After a step of the sync of target (before: the set taken before it):
 * release the session-level holds the step added, take again those of the
 * caller it released; a WARNING says what was done.
 */
void
iact_sync_restore_session_locks(SyncLockSet *before, const char *target)
{
	SyncLockSet *after = iact_sync_session_locks();
	StringInfoData added;
	StringInfoData lost;
	int			i;

	initStringInfo(&added);
	initStringInfo(&lost);
	for (i = 0; i < after->n; i++)
	{
		SyncSessionLock *l = &after->locks[i];
		int64		extra = l->count - count_in(before, &l->tag, l->mode);

		if (extra <= 0)
			continue;
		append_key(&added, l);
		while (extra-- > 0)
			(void) LockRelease(&l->tag, l->mode, true);
	}
	for (i = 0; i < before->n; i++)
	{
		SyncSessionLock *l = &before->locks[i];
		int64		missing = l->count - count_in(after, &l->tag, l->mode);

		while (missing-- > 0)
			if (LockAcquire(&l->tag, l->mode, true, true) == LOCKACQUIRE_NOT_AVAIL)
			{
				append_key(&lost, l);
				break;
			}
	}
	if (added.len > 0)
		ereport(WARNING,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("released the session-level advisory locks taken during the sync of %s", target),
				 errdetail("Locks (key1, key2, mode): %s.  The target owner's code runs in the session that runs the sync; its session-level locks are not left to that session.",
						   added.data),
				 errhint("Take transaction-level advisory locks (pg_advisory_xact_lock) in the triggers and functions of a synced table.")));
	if (lost.len > 0)
		ereport(WARNING,
				(errcode(ERRCODE_LOCK_NOT_AVAILABLE),
				 errmsg("the sync of %s released session-level advisory locks of this session that another session has taken since",
						target),
				 errdetail("Locks (key1, key2, mode): %s.", lost.data),
				 errhint("A trigger of the target table called pg_advisory_unlock() or pg_advisory_unlock_all().")));
}
