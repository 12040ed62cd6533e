/*-------------------------------------------------------------------------
 *
 * events.c
 *	  The time-event model's C pieces other than the invariant itself
 *	  (no_overlap.c): the iact.person_id setting that row-level security
 *	  reads, and the trigger that keeps events immutable.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "iact.h"

#include "commands/trigger.h"
#include "fmgr.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/rel.h"

static char *iact_person_id_setting = NULL;

PG_FUNCTION_INFO_V1(iact_events_session_person_id);
PG_FUNCTION_INFO_V1(iact_events_refuse_update);

/* '' (nobody) or a positive bigint */
static bool
person_id_check(char **newval, void **extra, GucSource source)
{
	int64		v;
	char	   *end;

	if (*newval == NULL || (*newval)[0] == '\0')
		return true;
	errno = 0;
	v = strtoi64(*newval, &end, 10);
	if (errno != 0 || *end != '\0' || v <= 0)
	{
		GUC_check_errdetail("iact.person_id must be empty or a positive bigint (a key of iact.people).");
		return false;
	}
	return true;
}

/* the setting iact.person_id (superuser-set: who this session acts for) */
void
iact_events_init(void)
{
	DefineCustomStringVariable("iact.person_id",
							   "The iact.people id this session acts for (row-level security of time events).",
							   "Empty means nobody: the session sees no events through the policies. "
							   "Only superusers, and roles granted SET on this parameter, may change it.",
							   &iact_person_id_setting,
							   "",
							   PGC_SUSET,
							   0,
							   person_id_check, NULL, NULL);
}

/* iact.session_person_id() RETURNS bigint: iact.person_id, NULL when empty */
Datum
iact_events_session_person_id(PG_FUNCTION_ARGS)
{
	if (iact_person_id_setting == NULL || iact_person_id_setting[0] == '\0')
		PG_RETURN_NULL();
	PG_RETURN_INT64(strtoi64(iact_person_id_setting, NULL, 10));
}

/* iact.refuse_update(): the BEFORE UPDATE trigger of the event tables, refusing it */
Datum
iact_events_refuse_update(PG_FUNCTION_ARGS)
{
	TriggerData *td = (TriggerData *) fcinfo->context;

	if (!CALLED_AS_TRIGGER(fcinfo) || !TRIGGER_FIRED_BY_UPDATE(td->tg_event))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("iact.refuse_update must be an UPDATE trigger")));
	ereport(ERROR,
			(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
			 errmsg("events in %s are immutable: UPDATE is not allowed",
					RelationGetRelationName(td->tg_relation)),
			 errhint("Delete the event and record it again.")));
	PG_RETURN_NULL();
}

/* the C names iact--1.0.sql gives these functions */
IACT_1_0_SYMBOL(events_session_person_id, iact_events_session_person_id)
IACT_1_0_SYMBOL(events_refuse_update, iact_events_refuse_update)
