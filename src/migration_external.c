/*-------------------------------------------------------------------------
 *
 * migration_external.c
 *	  The log_migration_* and log_rollback_start functions: how migration
 *	  runners that execute their own SQL (Flyway, node-pg-migrate, deploy
 *	  scripts) record in iact.migration_log what they apply and roll back,
 *	  so that iact.migration_status stays true for them.
 *
 * An external runner records an apply as log_migration_start (optionally
 * with the SQL that undoes it, checksummed like run_migration's) and then
 * log_migration_complete or log_migration_failed; a rollback as
 * log_rollback_start and then the same complete/failed functions, which
 * close a rollback entry as ROLLED_BACK or ROLLBACK_FAILED.  Every entry is
 * written through iact_migration_log_exec (as the log's owner, search_path
 * pinned), under the migration lock where a version's state is checked.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "migration.h"

#include "utils/builtins.h"

PG_FUNCTION_INFO_V1(iact_log_migration_start);
PG_FUNCTION_INFO_V1(iact_log_migration_complete);
PG_FUNCTION_INFO_V1(iact_log_migration_failed);
PG_FUNCTION_INFO_V1(iact_log_rollback_start);

static char *
spi_text(int row, int col)
{
	return SPI_getvalue(SPI_tuptable->vals[row], SPI_tuptable->tupdesc, col);
}

static void
external_spi_connect(void)
{
	int			rc = SPI_connect();

	if (rc != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed: %s", SPI_result_code_string(rc));
}

/*
 * A RUNNING entry of runner 'external' for version, under the migration
 * lock: an apply entry (description, down_sql) when rollback is false, else
 * a rollback entry of the applied one.  Refuses what safe_rollback_migration
 * or run_migration would refuse.  Returns the entry's id.
 */
static int64
external_start(const char *version, bool rollback, const char *description,
			   const char *down_sql)
{
	VersionState state;
	MigrationActor actor;
	MigrationEntry e = {0};
	int64		id;

	iact_migration_actor(&actor);
	external_spi_connect();
	iact_migration_lock(iact_migration_lock_timeout, false);
	iact_migration_version_state(version, &state);
	if (rollback)
	{
		iact_migration_refuse_rollback(version, &state);
		iact_migration_refuse_rollback_by_other(version, &state);
	}
	else
		iact_migration_refuse_apply(version, &state);

	e.version = version;
	e.description = rollback ? (state.description ? state.description : "") : description;
	e.action = rollback ? "rollback" : "apply";
	e.status = "RUNNING";
	e.runner = "external";
	e.down_sql = down_sql;
	e.rollback_of = rollback ? state.applied_id : 0;
	e.rows_affected = -1;
	id = iact_migration_insert_entry(&e, &actor);
	SPI_finish();
	return id;
}

/*
 * log_migration_start(version, description [, down_sql]) -> log id.
 * Release 1.0 declared it with two arguments; the same C entry serves both
 * (PG_NARGS() tells which).  A RUNNING apply entry of runner 'external';
 * down_sql, when given, is parsed (refused if empty, unparsable or with
 * transaction control) and stored with its SHA-256 in down_checksum, so
 * that safe_rollback_migration can later run it like run_migration's.
 */
Datum
iact_log_migration_start(PG_FUNCTION_ARGS)
{
	char	   *version = iact_migration_text_arg(fcinfo, 0, "version");
	char	   *description;
	char	   *down_sql = NULL;

	description = iact_migration_description_arg(fcinfo, 1);
	if (PG_NARGS() > 2 && !PG_ARGISNULL(2))
	{
		down_sql = iact_migration_text_arg(fcinfo, 2, "down_sql");
		(void) iact_migration_parse_sql(down_sql, "down_sql");
	}
	PG_RETURN_INT64(external_start(version, false, description, down_sql));
}

/*
 * log_rollback_start(version) -> log id: a RUNNING rollback entry (runner
 * 'external', rollback_of = the applied entry) for a rollback the caller
 * performs itself.  The same rules as safe_rollback_migration: the version
 * must be applied, not RUNNING, and the newest applied one, and the caller
 * must have the privileges of the role that applied it.  The entry
 * holds the version (neither applied again nor rolled back by anyone else)
 * until log_migration_complete (ROLLED_BACK: the version is no longer
 * applied) or log_migration_failed (ROLLBACK_FAILED: it stays applied).
 */
Datum
iact_log_rollback_start(PG_FUNCTION_ARGS)
{
	PG_RETURN_INT64(external_start(iact_migration_text_arg(fcinfo, 0, "version"), true, NULL, NULL));
}

/*
 * The RUNNING entry log_id, or an error saying why not; returns true for a
 * rollback entry.  An entry of run_migration belongs to the session running
 * it: it may be closed here only as failed, and only when no run_migration
 * holds the migration lock (its session is gone: the entry was abandoned).
 */
static bool
require_running_entry(int64 id, bool completing)
{
	Oid			types[1] = {INT8OID};
	Datum		vals[1] = {Int64GetDatum(id)};
	char	   *status;
	char	   *runner;

	iact_migration_log_exec("SELECT status, action, version, runner FROM iact.migration_log WHERE id = $1 FOR UPDATE",
							1, types, vals, NULL, false);
	if (SPI_processed == 0)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("migration log entry %lld does not exist", (long long) id),
				 errhint("Use the id returned by iact.log_migration_start or iact.log_rollback_start.")));
	status = spi_text(0, 1);
	if (strcmp(status, "RUNNING") != 0)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("migration log entry %lld (version %s) is %s, not RUNNING",
						(long long) id, spi_text(0, 3), status),
				 errdetail("Only a RUNNING entry can be completed or failed; history does not change.")));
	runner = spi_text(0, 4);
	if (strcmp(runner, "external") != 0 &&
		(completing || !iact_migration_try_lock()))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_IN_USE),
				 errmsg("migration log entry %lld (version %s) belongs to %s",
						(long long) id, spi_text(0, 3), runner),
				 errdetail(completing ? "It records its own outcome." :
						   "A migration is running now; it records its own outcome."),
				 errhint("iact.log_migration_complete and iact.log_migration_failed are for entries of "
						 "iact.log_migration_start and iact.log_rollback_start.")));
	return strcmp(spi_text(0, 2), "rollback") == 0;
}

/* the log_id argument of log_migration_complete and log_migration_failed */
static int64
log_id_arg(FunctionCallInfo fcinfo)
{
	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("log_id must not be NULL")));
	return PG_GETARG_INT64(0);
}

/* log_migration_complete(log_id, rows_affected): SUCCESS, or ROLLED_BACK */
Datum
iact_log_migration_complete(PG_FUNCTION_ARGS)
{
	int64		id;
	int64		rows = 0;
	bool		rollback;

	id = log_id_arg(fcinfo);
	if (!PG_ARGISNULL(1))
	{
		rows = PG_GETARG_INT64(1);
		if (rows < 0)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("rows_affected must not be negative"),
					 errdetail("The value given was %lld.", (long long) rows),
					 errhint("Pass NULL when the count is unknown.")));
	}
	external_spi_connect();
	rollback = require_running_entry(id, true);
	iact_migration_finish_entry(id, rollback ? "ROLLED_BACK" : "SUCCESS", rows, PG_ARGISNULL(1),
								NULL, NULL);
	SPI_finish();
	PG_RETURN_VOID();
}

/* log_migration_failed(log_id, error_message): FAILED, or ROLLBACK_FAILED */
Datum
iact_log_migration_failed(PG_FUNCTION_ARGS)
{
	int64		id;
	char	   *message;
	bool		rollback;

	id = log_id_arg(fcinfo);
	message = iact_migration_text_arg(fcinfo, 1, "error_message");
	external_spi_connect();
	rollback = require_running_entry(id, false);
	iact_migration_finish_entry(id, rollback ? "ROLLBACK_FAILED" : "FAILED", 0, true, NULL, message);
	SPI_finish();
	PG_RETURN_VOID();
}
