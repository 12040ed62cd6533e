/*-------------------------------------------------------------------------
 *
 * events_trail.c
 *	  The deletion trail of time events: iact.event_deletions.
 *
 * Events are immutable facts; deleting one (a DELETE, a cascade, a
 * TRUNCATE) is the only way they change, so every deletion from
 * iact.work_shifts and iact.extra_hours leaves a row in iact.event_deletions
 * saying what was deleted, when, and by whom: one row per deleted event,
 * for a TRUNCATE too (its trigger runs before the table is emptied).  The trigger runs as the role
 * that deletes (so it can tell who that is) and writes the trail as the
 * trail's owner, with search_path pinned, so deleters need no privilege on
 * the trail and cannot redirect the statement.  The trail is append-only
 * (iact.event_deletions_guard) and marked with pg_extension_config_dump.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "iact.h"

#include "access/htup_details.h"
#include "catalog/namespace.h"
#include "catalog/pg_class.h"
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "executor/spi.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/syscache.h"

PG_FUNCTION_INFO_V1(iact_events_deletion_trail);
PG_FUNCTION_INFO_V1(iact_events_deletions_guard);

static Datum
trail_text(const char *s, char *null)
{
	*null = (s && s[0]) ? ' ' : 'n';
	return (s && s[0]) ? CStringGetTextDatum(s) : (Datum) 0;
}

/*
 * Write the trail as the owner of iact.event_deletions, with search_path
 * pinned.  For a DELETE, row is the deleted row (a composite datum of rel's
 * row type): one trail row.  For a TRUNCATE (row = 0, fired BEFORE the
 * table is emptied), one trail row per event still in rel, so that a
 * TRUNCATE keeps what it deleted as a DELETE does.  The owner reads rel
 * with SECURITY_NOFORCE_RLS, as PostgreSQL's foreign-key checks do: every
 * row, whatever the policies.
 */
static void
trail_insert(Relation rel, const char *operation, Datum row)
{
	Oid			relid = get_relname_relid("event_deletions", get_namespace_oid("iact", false));
	char	   *table = quote_qualified_identifier(get_namespace_name(RelationGetNamespace(rel)),
												   RelationGetRelationName(rel));
	Oid			types[8] = {TEXTOID, TEXTOID, NAMEOID, NAMEOID, TEXTOID, TEXTOID, TEXTOID,
	rel->rd_rel->reltype};
	Datum		v[8];
	char		n[9] = "        ";
	StringInfoData sql;
	Oid			save_userid;
	int			save_sec_context;
	int			save_nestlevel;
	int			ret;

	if (!OidIsValid(relid))
		elog(ERROR, "table iact.event_deletions does not exist");
	v[0] = CStringGetTextDatum(table);
	v[1] = CStringGetTextDatum(operation);
	v[2] = DirectFunctionCall1(namein, CStringGetDatum(GetUserNameFromId(GetUserId(), false)));
	v[3] = DirectFunctionCall1(namein, CStringGetDatum(GetUserNameFromId(GetSessionUserId(), false)));
	v[4] = trail_text(GetConfigOption("iact.person_id", true, false), &n[4]);
	v[5] = trail_text(GetConfigOption("app.current_user_id", true, false), &n[5]);
	v[6] = trail_text(application_name, &n[6]);
	v[7] = row;

	initStringInfo(&sql);
	appendStringInfoString(&sql, "INSERT INTO iact.event_deletions (event_table, operation, event_id, "
						   "person_id, started_at, ended_at, old_row, deleted_by, session_role, "
						   "acting_person_id, app_user_id, application_name) ");
	if (row)
		appendStringInfoString(&sql, "VALUES ($1, $2, ($8).id, ($8).person_id, ($8).started_at, "
							   "($8).ended_at, pg_catalog.to_jsonb($8), $3, $4, $5, $6, $7)");
	else
		appendStringInfo(&sql, "SELECT $1, $2, t.id, t.person_id, t.started_at, t.ended_at, "
						 "pg_catalog.to_jsonb(t), $3, $4, $5, $6, $7 FROM ONLY %s t ORDER BY t.id",
						 table);

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	GetUserIdAndSecContext(&save_userid, &save_sec_context);
	SetUserIdAndSecContext(iact_rel_owner(relid), save_sec_context |
						   SECURITY_LOCAL_USERID_CHANGE | SECURITY_NOFORCE_RLS);
	save_nestlevel = NewGUCNestLevel();
	(void) set_config_option("search_path", "pg_catalog, pg_temp", PGC_USERSET, PGC_S_SESSION,
							 GUC_ACTION_SAVE, true, 0, false);
	ret = SPI_execute_with_args(sql.data, row ? 8 : 7, types, v, n, false, 0);
	AtEOXact_GUC(true, save_nestlevel);
	SetUserIdAndSecContext(save_userid, save_sec_context);
	if (ret != SPI_OK_INSERT)
		elog(ERROR, "could not record the deletion in iact.event_deletions: %s",
			 SPI_result_code_string(ret));
	SPI_finish();
	pfree(sql.data);
}

/*
 * AFTER DELETE row trigger and BEFORE TRUNCATE statement trigger of
 * iact.work_shifts and iact.extra_hours (their rows have id, person_id,
 * started_at, ended_at).  Release 1.1's first build declared the TRUNCATE
 * trigger AFTER, when the rows are gone: refused, so that no TRUNCATE goes
 * unrecorded row by row.
 */
Datum
iact_events_deletion_trail(PG_FUNCTION_ARGS)
{
	TriggerData *td = (TriggerData *) fcinfo->context;

	if (!CALLED_AS_TRIGGER(fcinfo) ||
		!((TRIGGER_FIRED_BY_DELETE(td->tg_event) && TRIGGER_FIRED_FOR_ROW(td->tg_event) &&
		   TRIGGER_FIRED_AFTER(td->tg_event)) ||
		  (TRIGGER_FIRED_BY_TRUNCATE(td->tg_event) && TRIGGER_FIRED_BEFORE(td->tg_event))))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("iact.event_deletion_trail must be an AFTER DELETE row or BEFORE TRUNCATE trigger")));
	if (TRIGGER_FIRED_BY_TRUNCATE(td->tg_event))
		trail_insert(td->tg_relation, "TRUNCATE", (Datum) 0);
	else
		trail_insert(td->tg_relation, "DELETE",
					 heap_copy_tuple_as_datum(td->tg_trigtuple, RelationGetDescr(td->tg_relation)));
	return PointerGetDatum(NULL);	/* ignored for AFTER and statement triggers */
}

/* BEFORE UPDATE/DELETE/TRUNCATE trigger of iact.event_deletions: append-only */
Datum
iact_events_deletions_guard(PG_FUNCTION_ARGS)
{
	if (!CALLED_AS_TRIGGER(fcinfo))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("iact.event_deletions_guard() must be called as a trigger")));
	ereport(ERROR,
			(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
			 errmsg("iact.event_deletions is append-only"),
			 errdetail("The trail of deleted events is never changed or deleted."),
			 errhint("Its owner can purge old rows with the guard triggers disabled (see doc/events.md).")));
	return PointerGetDatum(NULL);
}
