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

#include "access/attnum.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "utils/relcache.h"

/*
 * iact's own locks (src/lock.c, which tells their tags): none can be taken,
 * waited on or released by SQL's advisory-lock functions.
 */
typedef enum IactLock
{
	IACT_LOCK_FOR_MIGRATIONS,	/* one migration or rollback at a time (key 0) */
	IACT_LOCK_FOR_BACKFILL,		/* one run of a backfill: hash of its name */
	IACT_LOCK_FOR_PERSON,		/* the no-overlap check: hash(group, person) */
	IACT_LOCK_FOR_SYNC_TABLE	/* one run of a synced table: its id */
} IactLock;

extern bool iact_lock_acquire(IactLock lock, uint32 key, bool session, bool wait);
extern bool iact_lock_held(IactLock lock, uint32 key);
extern void iact_lock_release(IactLock lock, uint32 key);
extern int	iact_lock_holder(IactLock lock, uint32 key);

/* a table's sync lock, with the runs under way in this backend (src/sync_run.c) */
extern bool iact_sync_lock_table(int32 table_id, bool session);
extern void iact_sync_unlock_table(int32 table_id);

/* is this function called by a CALL that may commit (src/iact.c) */
extern bool iact_call_is_nonatomic(FunctionCallInfo fcinfo);

/*
 * The attribute numbers of the primary key's key columns of rel, in key
 * order, palloc'd in *attnums; returns their number, 0 without a primary key
 * (src/iact.c).
 */
extern int	iact_primary_key(Relation rel, AttrNumber **attnums);

/* the owner of a relation, InvalidOid when there is no such relation (src/iact.c) */
extern Oid	iact_rel_owner(Oid relid);

/* run fn(arg) in a subtransaction, returning its error or NULL (src/subxact.c) */
extern bool iact_error_is_interrupt(ErrorData *edata);
extern ErrorData *iact_try_subxact(void (*fn) (void *arg), void *arg, MemoryContext errcxt,
								   bool rethrow_interventions);
extern void iact_rethrow(ErrorData *edata) pg_attribute_noreturn();

/*
 * A C function under the name an older release's script gave it (a database
 * still at that version calls it by that name), calling its current one.
 */
#define IACT_1_0_SYMBOL(old_name, new_name) \
	PG_FUNCTION_INFO_V1(old_name); \
	Datum \
	old_name(PG_FUNCTION_ARGS) \
	{ \
		return new_name(fcinfo); \
	}

/* true when loaded through shared_preload_libraries */
extern bool iact_preloaded;

/* per-capability initialisation, called from _PG_init (src/iact.c) */
extern void iact_migration_init(void);
extern void iact_events_init(void);
extern void iact_health_init(void);
extern void iact_sync_init(void);
extern void iact_worker_init(void);
extern void iact_maintenance_init(void);

/*
 * The sync engine's entry point (src/sync_run.c), for the worker too:
 * iact_sync_table() syncs one registered table (iact.sync_tables.id) and
 * returns the iact.sync_runs id it wrote.
 * With commit_batches, every batch is committed together with its watermark
 * (SPI_commit): the caller must be able to commit -- a non-atomic CALL
 * (a background worker runs CALL iact.sync_run() through a top-level portal,
 * see worker.c: non-atomic SPI needs an outer portal) -- and must not be in
 * a subtransaction.  Without it, the whole
 * table is one subtransaction of the caller's transaction: a failure is
 * recorded as a 'failed' run and nothing of that table's batches remains.
 * Errors of the run never escape (they are recorded in the run); only
 * errors of the bookkeeping itself do.
 */
extern int64 iact_sync_table(int32 table_id, bool commit_batches);


#endif							/* IACT_H */
