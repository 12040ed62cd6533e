/*-------------------------------------------------------------------------
 *
 * migration_log.c
 *	  The migration log: iact.migration_log and the functions that write it.
 *
 *-------------------------------------------------------------------------
 */
#include "iact.h"

#include <limits.h>

#include "utils/guc.h"

int			iact_migration_lock_timeout = 0;

void
iact_migration_init(void)
{
	DefineCustomIntVariable("iact.migration_lock_timeout",
							"Longest wait for a lock by iact.run_migration and iact.safe_rollback_migration.",
							"Applies to the migration advisory lock and to every lock the migration's SQL takes. 0 waits forever.",
							&iact_migration_lock_timeout,
							0, 0, INT_MAX,
							PGC_USERSET,
							GUC_UNIT_MS,
							NULL, NULL, NULL);
}
