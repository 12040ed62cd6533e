/*-------------------------------------------------------------------------
 *
 * subxact.c
 *	  Running a piece of work in an internal subtransaction and keeping its
 *	  error: the one way iact isolates a step that may fail (a migration's
 *	  SQL, a backfill batch, a health check, a sync step).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "iact.h"

#include "access/xact.h"
#include "miscadmin.h"
#include "utils/memutils.h"
#include "utils/resowner.h"

/*
 * Is this error a real interrupt of the backend (a cancel, a statement
 * timeout), not a failure of the work?  Only the error ProcessInterrupts
 * raised is: a trigger or a function may raise any SQLSTATE, query_canceled
 * (57014) or admin_shutdown (57P01) included, and such an error is the
 * step's failure like any other.  (A shutdown is FATAL: it never reaches a
 * PG_CATCH.)
 */
bool
iact_error_is_interrupt(ErrorData *edata)
{
	return edata != NULL &&
		ERRCODE_TO_CATEGORY(edata->sqlerrcode) == ERRCODE_OPERATOR_INTERVENTION &&
		edata->funcname != NULL && strcmp(edata->funcname, "ProcessInterrupts") == 0;
}

/*
 * Re-throw an error kept with CopyErrorData(), wherever the copy lives.  The
 * only way iact re-throws: use it instead of ReThrowError().
 *
 * ReThrowError() copies the message strings into ErrorContext, but not the
 * location and domain strings (file, function, message domains, message id),
 * which CopyErrorData() duplicates into the copy's own context.  That context
 * is often deleted on the way up, before the error is reported (a sync run's
 * context, deleted by its PG_FINALLY): the report sent to the client would
 * then read freed memory (the backend crashed so in 034_sync_interrupt).  So
 * they are copied into ErrorContext first, which lives until the error has
 * been handled.
 */
void
iact_rethrow(ErrorData *edata)
{
	MemoryContext oldcxt = MemoryContextSwitchTo(ErrorContext);

	if (edata->filename)
		edata->filename = pstrdup(edata->filename);
	if (edata->funcname)
		edata->funcname = pstrdup(edata->funcname);
	if (edata->domain)
		edata->domain = pstrdup(edata->domain);
	if (edata->context_domain)
		edata->context_domain = pstrdup(edata->context_domain);
	if (edata->message_id)
		edata->message_id = pstrdup(edata->message_id);
	MemoryContextSwitchTo(oldcxt);
	ReThrowError(edata);
}

/*
 * Run fn(arg) in an internal subtransaction.  On success the subtransaction
 * is released and NULL returned.  On error it is rolled back (whatever fn did
 * is undone) and the error is returned, copied into errcxt, for the caller
 * to record, re-throw or pass over.  With rethrow_interventions, a real
 * cancel or statement timeout (iact_error_is_interrupt), or one that arrived
 * while the error was handled (still pending), is thrown instead: it ends the
 * caller's work, it is no failure of the step.  An error of SQLSTATE class 57
 * raised by user code is returned like any other.
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
	if (edata != NULL && rethrow_interventions)
	{
		if (iact_error_is_interrupt(edata))
			iact_rethrow(edata);
		/* a cancel or a termination not processed yet ends the work here */
		CHECK_FOR_INTERRUPTS();
	}
	return edata;
}
