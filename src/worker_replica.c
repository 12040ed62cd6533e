/*-------------------------------------------------------------------------
 *
 * worker_replica.c
 *	  The sync worker on a logical-replication subscriber.
 *
 * A subscriber of the analytics database receives iact.sync_tables and the
 * synced target tables from its publisher, whose worker pulls them from
 * MariaDB.  Its own worker must not pull them a second time: the rows would
 * arrive twice (once from MariaDB, once replicated) and the replicated
 * inserts would then fail on duplicate keys, stopping the subscription.  So
 * the worker leaves out, from its schedule, every registered table whose
 * target is a table of a subscription in this database (pg_subscription_rel),
 * unless iact.sync_on_subscriber is on.  An explicit iact.request_sync() of
 * such a table still runs it.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "executor/spi.h"
#include "utils/guc.h"

#include "worker_replica.h"

bool		iact_sync_on_subscriber = false;

void
iact_worker_replica_init(void)
{
	DefineCustomBoolVariable("iact.sync_on_subscriber",
							 "Whether the worker syncs tables that a logical-replication subscription of this database also writes.",
							 "Off: registered tables whose target is replicated from a publisher are left out of the schedule. "
							 "Takes effect on reload.",
							 &iact_sync_on_subscriber, false, PGC_SIGHUP, 0, NULL, NULL, NULL);
}

/*
 * The ids (iact.sync_tables.id) of the registered tables the schedule must
 * leave out: those whose target table belongs to a subscription of this
 * database; NIL when iact.sync_on_subscriber is on.  Needs SPI, in a
 * transaction; the list is allocated in the caller's memory context.
 */
List *
iact_replicated_sync_tables(void)
{
	List	   *ids = NIL;
	MemoryContext cxt = CurrentMemoryContext;
	uint64		i;

	if (iact_sync_on_subscriber)
		return NIL;
	if (SPI_execute("SELECT t.id FROM iact.sync_tables t "
					"JOIN pg_catalog.pg_namespace n ON n.nspname OPERATOR(pg_catalog.=) t.target_schema "
					"JOIN pg_catalog.pg_class c ON c.relnamespace OPERATOR(pg_catalog.=) n.oid "
					"AND c.relname OPERATOR(pg_catalog.=) t.target_table "
					"WHERE EXISTS (SELECT FROM pg_catalog.pg_subscription_rel r "
					"WHERE r.srrelid OPERATOR(pg_catalog.=) c.oid)",
					true, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not read the subscriptions' tables");
	for (i = 0; i < SPI_processed; i++)
	{
		bool		isnull;
		int32		id = DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[i],
													 SPI_tuptable->tupdesc, 1, &isnull));
		MemoryContext old = MemoryContextSwitchTo(cxt);

		ids = lappend_int(ids, id);
		MemoryContextSwitchTo(old);
	}
	return ids;
}
