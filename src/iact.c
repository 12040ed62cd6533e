/*-------------------------------------------------------------------------
 *
 * iact.c
 *	  Module entry point: _PG_init and the wiring of iact's capabilities;
 *	  and the answers several capabilities need to the same question (is
 *	  this a CALL that may commit, which columns make a primary key).
 *
 * iact is meant to be loaded with shared_preload_libraries = 'iact' (the
 * background worker needs it); every SQL-callable feature also works when
 * the library is merely loaded on demand by CREATE EXTENSION or a call.
 * Each capability registers its own GUCs from the hook it exposes in iact.h.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "iact.h"

#include "access/htup_details.h"
#include "catalog/pg_class.h"
#include "catalog/pg_index.h"
#include "fmgr.h"
#include "nodes/parsenodes.h"
#include "utils/guc.h"
#include "utils/rel.h"
#include "utils/relcache.h"
#include "utils/syscache.h"
#include "worker_replica.h"

PG_MODULE_MAGIC;

bool		iact_preloaded = false;

void		_PG_init(void);

/* register every capability's settings, hooks and worker; reserve "iact." */
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

/*
 * True when fcinfo is a procedure's, called by a CALL that is not atomic
 * (outside a transaction block, or from a procedure that is not): only then
 * may it commit (SPI_connect_ext(SPI_OPT_NONATOMIC), SPI_commit).
 */
bool
iact_call_is_nonatomic(FunctionCallInfo fcinfo)
{
	return fcinfo->context != NULL && IsA(fcinfo->context, CallContext) &&
		!castNode(CallContext, fcinfo->context)->atomic;
}

/*
 * The key columns of rel's primary key (the index pg_index marks
 * indisprimary, deferrable or not; not its INCLUDE columns), in key order:
 * returns their number, 0 when rel has no primary key, and sets *attnums to
 * a palloc'd array of their attribute numbers (NULL when none).
 */
int
iact_primary_key(Relation rel, AttrNumber **attnums)
{
	List	   *indexes = RelationGetIndexList(rel);
	ListCell   *lc;
	int			n = 0;

	*attnums = NULL;
	foreach(lc, indexes)
	{
		HeapTuple	tup = SearchSysCache1(INDEXRELID, ObjectIdGetDatum(lfirst_oid(lc)));
		Form_pg_index ind;

		if (!HeapTupleIsValid(tup))
			elog(ERROR, "cache lookup failed for index %u", lfirst_oid(lc));
		ind = (Form_pg_index) GETSTRUCT(tup);
		if (ind->indisprimary)
		{
			int			i;

			n = ind->indnkeyatts;
			*attnums = palloc(sizeof(AttrNumber) * n);
			for (i = 0; i < n; i++)
				(*attnums)[i] = ind->indkey.values[i];
		}
		ReleaseSysCache(tup);
		if (n > 0)
			break;
	}
	list_free(indexes);
	return n;
}

/* the owner of relation relid; InvalidOid when relid is invalid or names no relation */
Oid
iact_rel_owner(Oid relid)
{
	HeapTuple	tup;
	Oid			owner;

	if (!OidIsValid(relid))
		return InvalidOid;
	tup = SearchSysCache1(RELOID, ObjectIdGetDatum(relid));
	if (!HeapTupleIsValid(tup))
		return InvalidOid;
	owner = ((Form_pg_class) GETSTRUCT(tup))->relowner;
	ReleaseSysCache(tup);
	return owner;
}
