/*-------------------------------------------------------------------------
 *
 * audit_guard.c
 *	  The append-only guard of iact.audit_log: iact.audit_log_guard().
 *
 * BEFORE UPDATE OR DELETE (per row) and BEFORE TRUNCATE triggers on
 * iact.audit_statement and iact.audit_row call this function; it refuses the change unless the
 * current role is a superuser.  Privileges alone are not enough: a superuser
 * may have granted UPDATE or DELETE on the table, and an audited table's
 * owner must never be able to rewrite what was recorded about it.  Old rows
 * leave through iact.purge_audit_log(), a SECURITY DEFINER function owned by
 * the superuser who created the extension.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "iact.h"

#include "commands/trigger.h"
#include "utils/acl.h"
#include "utils/rel.h"

PG_FUNCTION_INFO_V1(iact_audit_log_guard);

/*
 * BEFORE UPDATE/DELETE/TRUNCATE trigger of the audit tables: append-only,
 * except for superusers (whose rows pass unchanged).
 */
Datum
iact_audit_log_guard(PG_FUNCTION_ARGS)
{
	TriggerData *td = (TriggerData *) fcinfo->context;
	const char *what;

	if (!CALLED_AS_TRIGGER(fcinfo))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("iact.audit_log_guard() must be called as a trigger")));

	if (superuser())
	{
		/* superusers may correct the log; the row passes unchanged */
		if (TRIGGER_FIRED_FOR_ROW(td->tg_event))
			return PointerGetDatum(TRIGGER_FIRED_BY_UPDATE(td->tg_event) ?
								   td->tg_newtuple : td->tg_trigtuple);
		return PointerGetDatum(NULL);
	}

	if (TRIGGER_FIRED_BY_UPDATE(td->tg_event))
		what = "UPDATE";
	else if (TRIGGER_FIRED_BY_DELETE(td->tg_event))
		what = "DELETE";
	else
		what = "TRUNCATE";
	ereport(ERROR,
			(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
			 errmsg("the iact audit log is append-only: %s on iact.%s is not allowed",
					what, RelationGetRelationName(td->tg_relation)),
			 errdetail("Only a superuser may change or remove audit rows; role \"%s\" is not one.",
					   GetUserNameFromId(GetUserId(), false)),
			 errhint("Old rows are removed with iact.purge_audit_log(older_than).")));
	PG_RETURN_NULL();			/* not reached */
}
