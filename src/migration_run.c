/*-------------------------------------------------------------------------
 *
 * migration_run.c
 *	  CALL iact.run_migration(...) and iact.safe_rollback_migration(...):
 *	  running a migration's SQL with full logging, and undoing it.
 *
 * run_migration called outside a transaction block (the usual way) works in
 * three steps: under the migration lock it checks the version, records a
 * RUNNING entry and COMMITS it, so other sessions see the migration running;
 * then it runs up_sql in a subtransaction; then it records SUCCESS, or rolls
 * the subtransaction back, records FAILED with the error, commits that, and
 * re-raises the original error.  Because the call commits along the way, the
 * lock is held at session level (a tag SQL cannot touch: src/lock.c in
 * migration.h), taken and released inside the CALL (released on every path,
 * and by the server if the session dies).
 *
 * Inside an explicit transaction block the call cannot commit: everything,
 * log entry included, belongs to the caller's transaction, the lock is a
 * transaction-level one, and a failure aborts the caller's transaction with
 * nothing recorded (nothing was applied either).
 *
 * The migration's own SQL runs as the calling role with its search_path;
 * only the log is written as its owner (see migration_log.c).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "migration.h"

#include "access/xact.h"
#include "nodes/parsenodes.h"
#include "parser/parser.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/memutils.h"

PG_FUNCTION_INFO_V1(iact_run_migration);
PG_FUNCTION_INFO_V1(iact_safe_rollback_migration);

/*
 * Parse a migration's SQL into raw statements, refusing an empty text and
 * transaction control (a migration is one unit).  Nothing runs.
 */
List *
iact_migration_parse_sql(const char *sql, const char *what)
{
	List	   *stmts = raw_parser(sql, RAW_PARSE_DEFAULT);
	ListCell   *lc;

	if (stmts == NIL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s contains no SQL statement", what)));
	foreach(lc, stmts)
	{
		RawStmt    *raw = lfirst_node(RawStmt, lc);

		if (IsA(raw->stmt, TransactionStmt))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_TRANSACTION_TERMINATION),
					 errmsg("%s must not contain transaction control statements", what),
					 errhint("A migration runs as one unit: iact commits or rolls it back.")));
	}
	return stmts;
}

/* the text of one raw statement, without leading white space */
static char *
statement_text(const char *sql, RawStmt *raw)
{
	const char *start = sql + raw->stmt_location;
	int			len = raw->stmt_len > 0 ? raw->stmt_len : (int) strlen(start);

	while (len > 0 && isspace((unsigned char) *start))
	{
		start++;
		len--;
	}
	return pnstrdup(start, len);
}

/*
 * Run each statement of sql through SPI, as the caller.  Returns the rows
 * the statements' INSERT/UPDATE/DELETE/MERGE touched.
 */
static int64
run_statements(const char *sql, const char *what)
{
	List	   *stmts = iact_migration_parse_sql(sql, what);
	ListCell   *lc;
	int64		rows = 0;

	foreach(lc, stmts)
	{
		char	   *one = statement_text(sql, lfirst_node(RawStmt, lc));
		int			ret;

		CHECK_FOR_INTERRUPTS();
		ret = SPI_execute(one, false, 0);
		if (ret < 0)
			ereport(ERROR,
					(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
					 errmsg("%s statement cannot run inside a migration: %s",
							what, SPI_result_code_string(ret)),
					 errdetail("Statement: %s", one)));
		if (ret == SPI_OK_INSERT || ret == SPI_OK_UPDATE || ret == SPI_OK_DELETE ||
			ret == SPI_OK_INSERT_RETURNING || ret == SPI_OK_UPDATE_RETURNING ||
			ret == SPI_OK_DELETE_RETURNING || ret == SPI_OK_MERGE)
			rows += (int64) SPI_processed;
		pfree(one);
	}
	return rows;
}

typedef struct MigrationStep
{
	const char *sql;
	const char *what;
	int			timeout_ms;
	bool		check_deferred; /* fire deferred constraints inside the step */
	Oid			as_role;		/* run as this role, confined; InvalidOid: as the caller */
	int64		rows;
} MigrationStep;

/*
 * Run a step's statements.  With as_role (down_sql, run as the role that
 * applied it) the statements run the way PostgreSQL's maintenance commands
 * run a table owner's code: as that role in a security-restricted
 * operation, so they cannot SET ROLE / RESET ROLE (even when the caller did
 * SET ROLE to that role), create temporary objects in the caller's session,
 * open WITH HOLD cursors or leave deferred triggers to fire later as the
 * caller; and every setting they change (search_path, ...) is undone when
 * they end, so nothing of theirs outlives them in the caller's session.
 * The caller's own pending deferred triggers fire first, as the caller
 * (SET CONSTRAINTS ALL IMMEDIATE, which stays in force for the rest of the
 * caller's transaction), so that down_sql's constraint checks fire at once.
 */
static void
migration_step(void *arg)
{
	MigrationStep *step = (MigrationStep *) arg;
	bool		confined = OidIsValid(step->as_role);
	Oid			save_userid = InvalidOid;
	int			save_sec_context = 0;
	int			save_nestlevel;

	if (confined)
	{
		if (SPI_execute("SET CONSTRAINTS ALL IMMEDIATE", false, 0) != SPI_OK_UTILITY)
			elog(ERROR, "could not fire the pending deferred triggers");
		GetUserIdAndSecContext(&save_userid, &save_sec_context);
		SetUserIdAndSecContext(step->as_role, save_sec_context |
							   SECURITY_LOCAL_USERID_CHANGE | SECURITY_RESTRICTED_OPERATION);
	}
	save_nestlevel = NewGUCNestLevel();
	iact_migration_set_lock_timeout(step->timeout_ms);
	step->rows = run_statements(step->sql, step->what);

	/*
	 * A call that commits by itself checks deferred constraints here, where
	 * a violation is still the migration's failure to record, rather than
	 * at its commit, where it would abort the SUCCESS entry with the rest.
	 */
	if (step->check_deferred)
		(void) SPI_execute("SET CONSTRAINTS ALL IMMEDIATE", false, 0);
	/* a confined step's settings end with it; up_sql's SETs stay, as 1.0 did */
	AtEOXact_GUC(!confined, save_nestlevel);
	if (confined)
		SetUserIdAndSecContext(save_userid, save_sec_context);
}

/*
 * Run sql in a subtransaction with lock_timeout = timeout_ms.  On success
 * returns true and sets *rows; on failure rolls the subtransaction back
 * (the schema is as before) and returns false with *edata set, copied into
 * errcxt (which must outlive SPI_finish: the caller raises or prints it
 * after).  Every error is returned, a cancel too: the caller records it
 * before raising it.  as_role: see migration_step (InvalidOid for up_sql,
 * which runs as the caller).
 */
static bool
run_in_subxact(const char *sql, const char *what, int timeout_ms, bool check_deferred,
			   Oid as_role, MemoryContext errcxt, int64 *rows, ErrorData **edata)
{
	MigrationStep step = {sql, what, timeout_ms, check_deferred, as_role, 0};

	*edata = iact_try_subxact(migration_step, &step, errcxt, false);
	*rows = step.rows;
	return *edata == NULL;
}

/*
 * CALL iact.run_migration(version, description, up_sql, down_sql,
 * lock_timeout): see the top of this file.  Returns the log entry's id.
 */
Datum
iact_run_migration(PG_FUNCTION_ARGS)
{
	bool		nonatomic = iact_call_is_nonatomic(fcinfo);
	MemoryContext cxt;
	MemoryContext oldcxt;
	char	   *version;
	char	   *description;
	char	   *up_sql;
	char	   *down_sql = NULL;
	char	   *checksum;
	int			timeout_ms;
	MigrationActor actor;
	VersionState state;
	MigrationEntry e = {0};
	int64		id;
	int64		rows = 0;
	ErrorData  *edata = NULL;
	bool		ok;

	/* everything we keep must survive the commits below */
	cxt = AllocSetContextCreate(PortalContext, "iact run_migration", ALLOCSET_DEFAULT_SIZES);
	oldcxt = MemoryContextSwitchTo(cxt);

	version = iact_migration_text_arg(fcinfo, 0, "version");
	description = iact_migration_description_arg(fcinfo, 1);
	up_sql = iact_migration_text_arg(fcinfo, 2, "up_sql");
	if (!PG_ARGISNULL(3))
		down_sql = iact_migration_text_arg(fcinfo, 3, "down_sql");
	timeout_ms = iact_migration_timeout_ms(PG_GETARG_DATUM(4), PG_ARGISNULL(4));
	/* refuse unusable SQL before anything is logged */
	(void) iact_migration_parse_sql(up_sql, "up_sql");
	if (down_sql)
		(void) iact_migration_parse_sql(down_sql, "down_sql");
	checksum = iact_migration_sha256_hex(up_sql, strlen(up_sql));
	iact_migration_actor(&actor);

	if (SPI_connect_ext(nonatomic ? SPI_OPT_NONATOMIC : 0) != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	iact_migration_lock(timeout_ms, nonatomic);
	PG_TRY();
	{
		iact_migration_mark_abandoned();
		iact_migration_version_state(version, &state);
		if (state.applied && state.checksum && strcmp(state.checksum, checksum) != 0)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_OBJECT_DEFINITION),
					 errmsg("checksum mismatch for migration %s", version),
					 errdetail("Version %s was applied by log entry %lld with SQL of checksum %s; "
							   "the SQL given now has checksum %s.",
							   version, (long long) state.applied_id, state.checksum, checksum),
					 errhint("Applied migrations must not be edited: write a new version.")));
		iact_migration_refuse_apply(version, &state);

		e.version = version;
		e.description = description;
		e.action = "apply";
		e.status = "RUNNING";
		e.runner = "run_migration";
		e.checksum = checksum;
		e.up_sql = up_sql;
		e.down_sql = down_sql;
		e.rows_affected = -1;
		id = iact_migration_insert_entry(&e, &actor);
		if (nonatomic)
			SPI_commit();		/* other sessions now see it RUNNING */

		ok = run_in_subxact(up_sql, "up_sql", timeout_ms, nonatomic, InvalidOid, cxt,
							&rows, &edata);
		iact_migration_finish_entry(id, ok ? "SUCCESS" : "FAILED", rows, !ok, edata, NULL);
		if (nonatomic)
			SPI_commit();		/* the FAILED entry survives the error below */
	}
	PG_FINALLY();
	{
		if (nonatomic)
			iact_migration_unlock_session();
	}
	PG_END_TRY();
	SPI_finish();
	MemoryContextSwitchTo(oldcxt);

	if (!ok)
		iact_rethrow(edata);
	ereport(NOTICE,
			(errmsg("migration %s applied (log entry %lld, %lld rows affected)",
					version, (long long) id, (long long) rows)));
	MemoryContextDelete(cxt);
	PG_RETURN_VOID();
}

/* applied versions that came after applied_id, newest first, as "a, b" */
static char *
later_applied_versions(int64 applied_id)
{
	Oid			types[1] = {INT8OID};
	Datum		vals[1] = {Int64GetDatum(applied_id)};
	StringInfoData buf;
	uint64		i;

	iact_migration_log_exec("SELECT version FROM iact.migration_status "
							"WHERE applied AND applied_id > $1 ORDER BY applied_id DESC",
							1, types, vals, NULL, true);
	if (SPI_processed == 0)
		return NULL;
	initStringInfo(&buf);
	for (i = 0; i < SPI_processed; i++)
		appendStringInfo(&buf, "%s%s", i ? ", " : "",
						 SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1));
	return buf.data;
}

/*
 * Refuse to roll back a version that is unknown, RUNNING, not applied, or
 * applied before versions that are still applied (rollbacks go newest
 * first).  Needs SPI and the migration lock.
 */
void
iact_migration_refuse_rollback(const char *version, const VersionState *state)
{
	char	   *later;

	if (!state->known)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("migration %s is unknown", version),
				 errdetail("iact.migration_log has no entry for this version."),
				 errhint("SELECT version FROM iact.migration_status lists the known versions.")));
	iact_migration_refuse_if_running(version, state);
	if (!state->applied)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("migration %s is not applied", version),
				 errdetail("Its last log entry is %s.", state->last_status),
				 errhint("Only an applied migration can be rolled back.")));
	later = later_applied_versions(state->applied_id);
	if (later)
		ereport(ERROR,
				(errcode(ERRCODE_DEPENDENT_OBJECTS_STILL_EXIST),
				 errmsg("cannot roll back migration %s: later migrations are still applied", version),
				 errdetail("Applied after it, newest first: %s.", later),
				 errhint("Roll those back first, newest first.")));
}

/*
 * Who may record a rollback that an external runner performs itself
 * (log_rollback_start): as for safe_rollback_migration, the role that
 * applied the migration, a member of it (with INHERIT), or a superuser --
 * a superuser only when that role no longer exists.  So one runner cannot
 * mark another role's migration as rolled back.
 */
void
iact_migration_refuse_rollback_by_other(const char *version, const VersionState *state)
{
	Oid			applier = state->installed_by ? get_role_oid(state->installed_by, true) : InvalidOid;

	if (OidIsValid(applier) ? has_privs_of_role(GetUserId(), applier) : superuser())
		return;
	ereport(ERROR,
			(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
			 errmsg("permission denied to roll back migration %s", version),
			 OidIsValid(applier) ?
			 errdetail("It was applied by role \"%s\".", state->installed_by) :
			 errdetail("It was applied by role \"%s\", which no longer exists.",
					   state->installed_by ? state->installed_by : "?"),
			 errhint("Record its rollback as that role, as a member of it, or as a superuser.")));
}

/*
 * Who may run the stored down_sql, and as whom: it runs as the role that
 * applied the migration (installed_by of the apply entry), and only a
 * caller that has that role's privileges (is it, is a member of it with
 * INHERIT, or is a superuser) may start it.  So down_sql never gains
 * rights its author did not have, whoever calls the rollback.  The stored
 * text must still match the down_checksum recorded when it was applied
 * (a database still at 1.0 has none: ALTER EXTENSION UPDATE records them).
 * Returns the role to run it as.
 */
static Oid
rollback_check_down_sql(const char *version, const VersionState *state)
{
	Oid			applier;
	char	   *sum;

	if (state->down_sql == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("migration %s has no rollback SQL", version),
				 errdetail("It was applied (log entry %lld) without down_sql.",
						   (long long) state->applied_id),
				 errhint("Write the reverse change as a new migration, or roll it back yourself "
						 "and record it with iact.log_rollback_start.")));
	sum = iact_migration_sha256_hex(state->down_sql, strlen(state->down_sql));
	/* a database still at 1.0 records no down_checksum: nothing to verify */
	if (iact_migration_log_has_down_checksum() &&
		(state->down_checksum == NULL || strcmp(sum, state->down_checksum) != 0))
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("checksum mismatch for the rollback SQL of migration %s", version),
				 errdetail("Log entry %lld recorded down_sql with checksum %s; the stored text now has checksum %s.",
						   (long long) state->applied_id,
						   state->down_checksum ? state->down_checksum : "(none)", sum),
				 errhint("The stored down_sql was changed after the migration was applied: "
						 "it is not run. Investigate, and roll back by hand if needed.")));
	applier = get_role_oid(state->installed_by, true);
	if (!OidIsValid(applier))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("role \"%s\", which applied migration %s, no longer exists",
						state->installed_by, version),
				 errdetail("The rollback SQL runs as the role that applied the migration."),
				 errhint("Roll it back by hand and record it with iact.log_rollback_start.")));
	if (!has_privs_of_role(GetUserId(), applier))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied to roll back migration %s", version),
				 errdetail("It was applied by role \"%s\"; its rollback SQL runs as that role.",
						   state->installed_by),
				 errhint("Roll it back as \"%s\" or as a member of it.", state->installed_by)));
	return applier;
}

/*
 * iact.safe_rollback_migration(version, lock_timeout): under the migration
 * lock, check the applied entry's down_sql against its checksum, run it as
 * the role that applied the migration (confined), and log the rollback.
 */
Datum
iact_safe_rollback_migration(PG_FUNCTION_ARGS)
{
	char	   *version = iact_migration_text_arg(fcinfo, 0, "version");
	int			timeout_ms = iact_migration_timeout_ms(PG_GETARG_DATUM(1), PG_ARGISNULL(1));
	MigrationActor actor;
	VersionState state;
	MigrationEntry e = {0};
	int64		rows = 0;
	ErrorData  *edata = NULL;
	bool		ok;
	int64		id;
	Oid			applier;

	MemoryContext callercxt = CurrentMemoryContext;

	iact_migration_actor(&actor);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	iact_migration_lock(timeout_ms, false);
	iact_migration_version_state(version, &state);
	iact_migration_refuse_rollback(version, &state);
	applier = rollback_check_down_sql(version, &state);

	e.started_at = GetCurrentTimestamp();
	/* always confined, also when the caller is (or SET ROLE to) the applier */
	ok = run_in_subxact(state.down_sql, "down_sql", timeout_ms, false, applier, callercxt,
						&rows, &edata);

	e.version = version;
	if (!ok && (edata->sqlerrcode == ERRCODE_QUERY_CANCELED ||
				edata->sqlerrcode == ERRCODE_ADMIN_SHUTDOWN))
		iact_rethrow(edata);	/* a cancel cancels: nothing to record */
	e.description = state.description ? state.description : "";
	e.action = "rollback";
	e.status = ok ? "ROLLED_BACK" : "ROLLBACK_FAILED";
	e.runner = "safe_rollback_migration";
	e.rollback_of = state.applied_id;
	e.rows_affected = ok ? rows : -1;
	e.edata = edata;
	id = iact_migration_insert_entry(&e, &actor);
	SPI_finish();

	if (!ok)
		ereport(WARNING,
				(errmsg("rollback of migration %s failed; nothing was changed", version),
				 errdetail("%s (SQLSTATE %s). Recorded as log entry %lld (ROLLBACK_FAILED).",
						   edata->message, unpack_sql_state(edata->sqlerrcode), (long long) id),
				 errhint("The migration is still applied. Fix the cause and try again.")));
	PG_RETURN_BOOL(ok);
}
