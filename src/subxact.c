/*-------------------------------------------------------------------------
 *
 * subxact.c
 *	  Running a piece of work in an internal subtransaction and keeping its
 *	  error: the one way iact isolates a step that may fail (a migration's
 *	  SQL, a backfill batch, a health check, a sync step).
 *
 *-------------------------------------------------------------------------
 */
#include "iact.h"

#include "access/xact.h"
#include "utils/memutils.h"
#include "utils/resowner.h"

/*
 * Run fn(arg) in an internal subtransaction.  On success the subtransaction
 * is released and NULL returned.  On error it is rolled back (whatever fn did
 * is undone) and the error is returned, copied into errcxt, for the caller
 * to record, re-throw or pass over.  With rethrow_interventions, a cancel or
 * a shutdown (SQLSTATE class 57, operator intervention) is re-thrown instead:
 * it ends the caller's work, it is no failure of the step.
 */
ErrorData *
iact_try_subxact(void (*fn) (void *arg), void *arg, MemoryContext errcxt,
				 bool rethrow_interventions)
{
	MemoryContext oldcxt = CurrentMemoryContext;
	ResourceOwner oldowner = CurrentResourceOwner;
	ErrorData  *edata = NULL;

	BeginInternalSubTransaction(NULL);
	MemoryContextSwitchTo(oldcxt);
	PG_TRY();
	{
		fn(arg);
		ReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(oldcxt);
		CurrentResourceOwner = oldowner;
	}
	PG_CATCH();
	{
		MemoryContextSwitchTo(errcxt);
		edata = CopyErrorData();
		FlushErrorState();
		RollbackAndReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(oldcxt);
		CurrentResourceOwner = oldowner;
	}
	PG_END_TRY();
	if (edata != NULL && rethrow_interventions &&
		ERRCODE_TO_CATEGORY(edata->sqlerrcode) == ERRCODE_OPERATOR_INTERVENTION)
		ReThrowError(edata);
	return edata;
}
