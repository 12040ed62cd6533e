/*-------------------------------------------------------------------------
 *
 * iact.c
 *	  Module entry point: _PG_init and the wiring of iact's capabilities.
 *
 * iact is meant to be loaded with shared_preload_libraries = 'iact' (the
 * background worker needs it); every SQL-callable feature also works when
 * the library is merely loaded on demand by CREATE EXTENSION or a call.
 * Each capability registers its own GUCs from the hook it exposes in iact.h.
 *
 *-------------------------------------------------------------------------
 */
#include "iact.h"

#include "fmgr.h"
#include "utils/guc.h"
#include "worker_replica.h"

PG_MODULE_MAGIC;

bool		iact_preloaded = false;

void		_PG_init(void);

void
_PG_init(void)
{
	iact_preloaded = process_shared_preload_libraries_in_progress;

	iact_migration_init();
	iact_events_init();
	iact_health_init();
	iact_sync_init();
	iact_worker_init();
	iact_worker_replica_init();
	iact_maintenance_init();	/* after iact_worker_init: reads iact.database */

	MarkGUCPrefixReserved("iact");
}
