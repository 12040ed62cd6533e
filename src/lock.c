/*-------------------------------------------------------------------------
 *
 * lock.c
 *	  iact's own heavyweight locks, in one place: the migration lock, a
 *	  backfill's lock, the no-overlap check's per-person locks and a table's
 *	  sync lock.
 *
 * None of them can be reached from SQL.  SQL's advisory-lock functions
 * (pg_advisory_lock and the rest) only make LOCKTAG_ADVISORY tags in the
 * USER lock method with objsubid 1 or 2 (a lock's method is part of its
 * tag), so a session calling them can neither hold one of iact's locks (to
 * block iact), nor wait on it, nor release it -- pg_advisory_unlock_all()
 * releases the USER method's session locks only.  As pg_locks shows them:
 *
 *	 lock			locktype  classid	  objid			  objsubid  method
 *	 migrations		userlock  1767990132  1				  4			DEFAULT
 *	 a backfill		userlock  1767990134  hash(name)	  4			DEFAULT
 *	 a person		advisory  1767990132  hash(group, p)  3			USER
 *	 a sync table	advisory  1767990133  table id		  4			DEFAULT
 *
 * A session-level lock of the DEFAULT method is released when a top-level
 * transaction aborts (and at backend exit); iact takes session-level locks
 * only inside one CALL, which releases them on every path anyway.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "iact.h"

#include "miscadmin.h"
#include "storage/lock.h"

/* classid of the migration and per-person locks: 'iact' as a big-endian int4 */
#define LOCK_CLASS				1767990132
#define LOCK_CLASS_SYNC			1767990133
#define LOCK_CLASS_BACKFILL		1767990134
#define LOCK_KEY_MIGRATIONS		1
#define LOCK_SUBID_PERSON		3
#define LOCK_SUBID_OWN			4		/* every other lock's objsubid */

/* the tag of lock with key (the key of the migration lock is ignored) */
static void
lock_tag(LOCKTAG *tag, IactLock lock, uint32 key)
{
	switch (lock)
	{
		case IACT_LOCK_FOR_MIGRATIONS:
			SET_LOCKTAG_ADVISORY(*tag, MyDatabaseId, LOCK_CLASS, LOCK_KEY_MIGRATIONS,
								 LOCK_SUBID_OWN);
			tag->locktag_type = LOCKTAG_USERLOCK;
			tag->locktag_lockmethodid = DEFAULT_LOCKMETHOD;
			return;
		case IACT_LOCK_FOR_BACKFILL:
			SET_LOCKTAG_ADVISORY(*tag, MyDatabaseId, LOCK_CLASS_BACKFILL, key, LOCK_SUBID_OWN);
			tag->locktag_type = LOCKTAG_USERLOCK;
			tag->locktag_lockmethodid = DEFAULT_LOCKMETHOD;
			return;
		case IACT_LOCK_FOR_PERSON:
			SET_LOCKTAG_ADVISORY(*tag, MyDatabaseId, LOCK_CLASS, key, LOCK_SUBID_PERSON);
			return;
		case IACT_LOCK_FOR_SYNC_TABLE:
			SET_LOCKTAG_ADVISORY(*tag, MyDatabaseId, LOCK_CLASS_SYNC, key, LOCK_SUBID_OWN);
			tag->locktag_lockmethodid = DEFAULT_LOCKMETHOD;
			return;
	}
	elog(ERROR, "unknown iact lock %d", (int) lock);
}

/*
 * Take lock (ExclusiveLock) for key, session-level or transaction-level.
 * With wait, waits as any lock does (lock_timeout, deadlock detection,
 * cancel) and returns true; without, returns false at once when another
 * session holds it.  Re-entrant within a backend, like every heavyweight lock.
 */
bool
iact_lock_acquire(IactLock lock, uint32 key, bool session, bool wait)
{
	LOCKTAG		tag;

	lock_tag(&tag, lock, key);
	return LockAcquire(&tag, ExclusiveLock, session, !wait) != LOCKACQUIRE_NOT_AVAIL;
}

/* does this backend hold lock for key (at any level) */
bool
iact_lock_held(IactLock lock, uint32 key)
{
	LOCKTAG		tag;

	lock_tag(&tag, lock, key);
	return LockHeldByMe(&tag, ExclusiveLock);
}

/*
 * Release one session-level hold of lock for key, if this backend has it
 * (a top-level abort, e.g. inside SPI_commit, may have released it already).
 */
void
iact_lock_release(IactLock lock, uint32 key)
{
	LOCKTAG		tag;

	lock_tag(&tag, lock, key);
	if (LockHeldByMe(&tag, ExclusiveLock))
		(void) LockRelease(&tag, ExclusiveLock, true);
}

/*
 * The pid of a process holding lock for key (granted, as pg_locks says), or
 * 0 when none does or the holder is a prepared transaction.  Reads the whole
 * lock table, as pg_locks does: for messages, not for hot paths.
 */
int
iact_lock_holder(IactLock lock, uint32 key)
{
	LOCKTAG		tag;
	LockData   *data;
	int			i;
	int			pid = 0;

	lock_tag(&tag, lock, key);
	data = GetLockStatusData();
	for (i = 0; i < data->nelements; i++)
	{
		LockInstanceData *inst = &data->locks[i];

		if (inst->holdMask != 0 && inst->pid != 0 &&
			memcmp(&inst->locktag, &tag, sizeof(LOCKTAG)) == 0)
		{
			pid = inst->pid;
			break;
		}
	}
	return pid;
}
