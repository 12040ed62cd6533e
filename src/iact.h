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

/* advisory lock key space: pg_advisory_lock(IACT_LOCK_CLASS, <key>) */
#define IACT_LOCK_CLASS			1767990132	/* 'iact' as a big-endian int4 */
#define IACT_LOCK_MIGRATIONS	1
#define IACT_LOCK_SYNC_CLASS	1767990133	/* with the sync table id: see IACT_LOCK_SYNC */
#define IACT_LOCK_CLASS_BACKFILL	1767990134	/* key2 = hash of the backfill name */

/*
 * no-overlap per-person locks (no_overlap.c): transaction-scoped advisory
 * locks (database, IACT_LOCK_CLASS, hash(group, person), IACT_LOCK_NO_OVERLAP),
 * i.e. pg_locks classid = IACT_LOCK_CLASS, objsubid = 3.  The SQL advisory
 * functions only produce objsubid 1 or 2, so no SQL lock can collide.
 */
#define IACT_LOCK_NO_OVERLAP	3

/*
 * A table's sync lock (src/sync_run.c): an advisory-type tag (database,
 * IACT_LOCK_SYNC_CLASS, table id, IACT_LOCK_SYNC) in PostgreSQL's DEFAULT
 * lock method, so no SQL advisory-lock function can take it or release it
 * (pg_advisory_unlock_all() included).  Session-level or transaction-level;
 * returns false when another session holds it.
 */
#define IACT_LOCK_SYNC			4
extern bool iact_sync_lock_table(int32 table_id, bool session);
extern void iact_sync_unlock_table(int32 table_id);

/* run fn(arg) in a subtransaction, returning its error or NULL (src/subxact.c) */
extern bool iact_error_is_interrupt(ErrorData *edata);
extern ErrorData *iact_try_subxact(void (*fn) (void *arg), void *arg, MemoryContext errcxt,
								   bool rethrow_interventions);
extern void iact_rethrow(ErrorData *edata) pg_attribute_noreturn();

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
