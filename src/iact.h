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
#define IACT_LOCK_CLASS_BACKFILL	1767990134	/* key2 = hash of the backfill name */
/* 1767990133 is the sync engine's class (key2 = sync table id) */

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
extern void iact_health_init(void);


#endif							/* IACT_H */
