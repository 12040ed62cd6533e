/*-------------------------------------------------------------------------
 *
 * migration_log.c
 *	  The migration log: iact.migration_log, its guard trigger and the
 *	  migration lock.  The log_migration_* functions that external
 *	  migration runners call are in migration_external.c.
 *
 * Every read and write of iact.migration_log goes through
 * iact_migration_log_exec(), which runs the statement as the table's owner with
 * search_path = pg_catalog, pg_temp.  Callers therefore need EXECUTE on the
 * functions but no privilege on the table, and their own search_path cannot
 * redirect what the log's statements mean.  The SQL a migration itself runs
 * (migration_run.c) runs as the caller, with the caller's search_path.
 *
 * Log statements run with the latest snapshot, not the transaction's: a
 * caller that waited for the migration lock must see what the session it
 * waited for committed, even at REPEATABLE READ or when the CALL's snapshot
 * predates the wait (the problem PostgreSQL's RI triggers solve the same way).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "migration.h"

#include <limits.h>

#include "access/htup_details.h"
#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_class.h"
#include "commands/trigger.h"
#include "common/cryptohash.h"
#include "common/sha2.h"
#include "lib/stringinfo.h"
#include "storage/lmgr.h"
#include "storage/lock.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/snapmgr.h"
#include "utils/syscache.h"

PG_FUNCTION_INFO_V1(iact_migration_log_guard);

int			iact_migration_lock_timeout = 0;

/*
 * PREPARE TRANSACTION would hand the migration lock (and the RUNNING entry
 * taken with it) to a prepared transaction that outlives the session and
 * restarts: every migration would wait on it, "held by process 0", until
 * someone finds and ends it.  Refused, as PostgreSQL refuses to prepare a
 * transaction that used temporary objects.
 */
static void
migration_xact_callback(XactEvent event, void *arg)
{
	if (event != XACT_EVENT_PRE_PREPARE)
		return;
	if (iact_lock_held(IACT_LOCK_FOR_MIGRATIONS, 0))
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("cannot PREPARE a transaction that holds the iact migration lock"),
				 errdetail("An iact migration function (log_migration_start, log_rollback_start, "
						   "safe_rollback_migration, run_migration) ran in this transaction."),
				 errhint("Commit or roll back instead.")));
}

/* the migration settings (iact.migration_lock_timeout) and the PREPARE guard */
void
iact_migration_init(void)
{
	RegisterXactCallback(migration_xact_callback, NULL);
	DefineCustomIntVariable("iact.migration_lock_timeout",
							"Longest wait for a lock in iact.run_migration and iact.safe_rollback_migration.",
							"Applies to the migration lock and to every lock the migration's SQL waits for. "
							"0 waits forever. The lock_timeout argument of the call overrides it.",
							&iact_migration_lock_timeout,
							0, 0, INT_MAX,
							PGC_USERSET,
							GUC_UNIT_MS,
							NULL, NULL, NULL);
}

void
iact_migration_actor(MigrationActor *actor)
{
	actor->installed_by = GetUserNameFromId(GetUserId(), false);
	actor->session_role = GetUserNameFromId(GetSessionUserId(), false);
	actor->application_name = application_name && application_name[0] ?
		pstrdup(application_name) : NULL;
}

/* iact.migration_log's oid, or an error when iact is not installed here */
static Oid
migration_log_relid(void)
{
	Oid			nsp = get_namespace_oid("iact", false);
	Oid			relid = get_relname_relid("migration_log", nsp);

	if (!OidIsValid(relid))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("table iact.migration_log does not exist"),
				 errhint("Is the iact extension installed in this database?")));
	return relid;
}

/* The owner of iact.migration_log (normally the extension's owner). */
static Oid
migration_log_owner(void)
{
	Oid			relid = migration_log_relid();
	Oid			owner = iact_rel_owner(relid);

	if (!OidIsValid(owner))
		elog(ERROR, "cache lookup failed for relation %u", relid);
	return owner;
}

/*
 * Whether the log has the down_checksum column of release 1.1: a database
 * still at 1.0 (not yet ALTER EXTENSION ... UPDATE'd) has not, and this
 * library must keep serving it as 1.0 did.
 */
bool
iact_migration_log_has_down_checksum(void)
{
	return get_attnum(migration_log_relid(), "down_checksum") != InvalidAttrNumber;
}

/*
 * Run sql on iact's own tables as the owner of iact.migration_log, with
 * search_path pg_catalog, pg_temp and the latest snapshot (a row committed by
 * a session that held the migration lock before us is seen).  Returns
 * SPI's code; an error when it is negative.  Needs SPI connected.
 */
int
iact_migration_log_exec(const char *sql, int nargs, Oid *argtypes, Datum *values,
						const char *nulls, bool read_only)
{
	Oid			save_userid;
	int			save_sec_context;
	int			save_nestlevel;
	SPIPlanPtr	plan;
	int			ret;

	GetUserIdAndSecContext(&save_userid, &save_sec_context);
	SetUserIdAndSecContext(migration_log_owner(),
						   save_sec_context | SECURITY_LOCAL_USERID_CHANGE);
	save_nestlevel = NewGUCNestLevel();
	(void) set_config_option("search_path", "pg_catalog, pg_temp",
							 PGC_USERSET, PGC_S_SESSION,
							 GUC_ACTION_SAVE, true, 0, false);

	plan = SPI_prepare(sql, nargs, argtypes);
	if (plan == NULL)
		elog(ERROR, "SPI_prepare failed on the migration log: %s",
			 SPI_result_code_string(SPI_result));
	ret = SPI_execute_snapshot(plan, values, nulls, GetLatestSnapshot(),
							   InvalidSnapshot, read_only, true, 0);
	SPI_freeplan(plan);

	AtEOXact_GUC(true, save_nestlevel);
	SetUserIdAndSecContext(save_userid, save_sec_context);

	if (ret < 0)
		elog(ERROR, "SPI_execute_with_args failed on the migration log: %s",
			 SPI_result_code_string(ret));
	return ret;
}

/*
 * A text argument that must be neither NULL nor blank.
 */
char *
iact_migration_text_arg(FunctionCallInfo fcinfo, int argno, const char *argname)
{
	char	   *s;
	const char *p;

	if (PG_ARGISNULL(argno))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("%s must not be NULL", argname)));
	s = text_to_cstring(PG_GETARG_TEXT_PP(argno));
	for (p = s; *p; p++)
		if (!isspace((unsigned char) *p))
			return s;
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("%s must not be empty", argname)));
	return NULL;				/* keep compiler quiet */
}

/* A migration's description: any text, empty included, but not NULL. */
char *
iact_migration_description_arg(FunctionCallInfo fcinfo, int argno)
{
	if (PG_ARGISNULL(argno))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("description must not be NULL"),
				 errhint("Use an empty string for no description.")));
	return text_to_cstring(PG_GETARG_TEXT_PP(argno));
}

/*
 * Milliseconds to wait for locks: the call's interval argument, or else the
 * iact.migration_lock_timeout setting.
 */
double
iact_migration_interval_ms(Interval *iv)
{
	return (double) iv->time / 1000.0 +
		((double) iv->month * DAYS_PER_MONTH + iv->day) * SECS_PER_DAY * 1000.0;
}

/*
 * A call's lock_timeout argument in milliseconds: NULL takes
 * iact.migration_lock_timeout; 0 waits forever; an error outside
 * [0, INT_MAX] ms.
 */
int
iact_migration_timeout_ms(Datum interval, bool isnull)
{
	double		ms;

	if (isnull)
		return iact_migration_lock_timeout;
	ms = iact_migration_interval_ms(DatumGetIntervalP(interval));
	if (ms < 0 || ms > INT_MAX)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("lock_timeout must be between 0 and %d milliseconds", INT_MAX),
				 errhint("Use NULL to take iact.migration_lock_timeout, 0 to wait forever.")));
	return (int) ms;
}

/* SET LOCAL-like: caller brackets it with NewGUCNestLevel / AtEOXact_GUC */
void
iact_migration_set_lock_timeout(int timeout_ms)
{
	char		buf[32];

	snprintf(buf, sizeof(buf), "%d", timeout_ms);
	(void) set_config_option("lock_timeout", buf, PGC_USERSET, PGC_S_SESSION,
							 GUC_ACTION_SAVE, true, 0, false);
}

/*
 * Take the migration lock: a session lock when the caller commits along the
 * way (run_migration called outside a transaction block), a transaction
 * lock otherwise.  Waits at most timeout_ms (0 = forever).
 */
void
iact_migration_lock(int timeout_ms, bool session)
{
	int			holder;
	int			save_nestlevel;
	MemoryContext oldcxt = CurrentMemoryContext;

	if (iact_lock_acquire(IACT_LOCK_FOR_MIGRATIONS, 0, session, false))
		return;

	holder = iact_lock_holder(IACT_LOCK_FOR_MIGRATIONS, 0);
	ereport(NOTICE,
			(errmsg("waiting for the migration lock held by process %d", holder),
			 errdetail("Only one migration or rollback runs at a time in a database.")));

	save_nestlevel = NewGUCNestLevel();
	iact_migration_set_lock_timeout(timeout_ms);
	PG_TRY();
	{
		(void) iact_lock_acquire(IACT_LOCK_FOR_MIGRATIONS, 0, session, true);
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		MemoryContextSwitchTo(oldcxt);
		edata = CopyErrorData();
		if (edata->sqlerrcode == ERRCODE_LOCK_NOT_AVAILABLE)
		{
			FlushErrorState();
			ereport(ERROR,
					(errcode(ERRCODE_LOCK_NOT_AVAILABLE),
					 errmsg("could not obtain the migration lock within %d ms", timeout_ms),
					 errdetail("Process %d is running a migration or a rollback.", holder),
					 errhint("Try again when it has finished, or give a longer lock_timeout.")));
		}
		PG_RE_THROW();
	}
	PG_END_TRY();
	AtEOXact_GUC(true, save_nestlevel);
}

/* take the migration lock (transaction level) if it is free; false if held */
bool
iact_migration_try_lock(void)
{
	return iact_lock_acquire(IACT_LOCK_FOR_MIGRATIONS, 0, false, false);
}

void
iact_migration_unlock_session(void)
{
	/* a top-level abort (e.g. inside SPI_commit) may have released it already */
	iact_lock_release(IACT_LOCK_FOR_MIGRATIONS, 0);
}

static char *
spi_text(int row, int col)
{
	return SPI_getvalue(SPI_tuptable->vals[row], SPI_tuptable->tupdesc, col);
}

/*
 * What iact.migration_status and the log say about version: applied or not
 * (with that entry's description, checksums, down_sql and role), and the
 * latest RUNNING entry.  Needs SPI connected; strings in SPI's context.
 */
void
iact_migration_version_state(const char *version, VersionState *state)
{
	Oid			types[1] = {TEXTOID};
	Datum		vals[1] = {CStringGetTextDatum(version)};

	memset(state, 0, sizeof(*state));
	iact_migration_log_exec(iact_migration_log_has_down_checksum() ?
							"SELECT s.applied, s.applied_id, s.checksum, a.down_sql, s.last_status, "
							"a.description, a.down_checksum, a.installed_by "
							"FROM iact.migration_status s "
							"LEFT JOIN iact.migration_log a ON a.id = s.applied_id "
							"WHERE s.version = $1" :
							"SELECT s.applied, s.applied_id, s.checksum, a.down_sql, s.last_status, "
							"a.description, NULL::text, a.installed_by "
							"FROM iact.migration_status s "
							"LEFT JOIN iact.migration_log a ON a.id = s.applied_id "
							"WHERE s.version = $1",
							1, types, vals, NULL, true);
	if (SPI_processed == 1)
	{
		char	   *applied_id;

		state->known = true;
		state->applied = strcmp(spi_text(0, 1), "t") == 0;
		applied_id = spi_text(0, 2);
		state->applied_id = applied_id ? pg_strtoint64(applied_id) : 0;
		state->checksum = spi_text(0, 3);
		state->down_sql = spi_text(0, 4);
		state->last_status = spi_text(0, 5);
		state->description = spi_text(0, 6);
		state->down_checksum = spi_text(0, 7);
		state->installed_by = spi_text(0, 8);
	}

	iact_migration_log_exec("SELECT id, runner, backend_pid FROM iact.migration_log "
							"WHERE version = $1 AND status = 'RUNNING' ORDER BY id DESC LIMIT 1",
							1, types, vals, NULL, true);
	if (SPI_processed == 1)
	{
		char	   *pid = spi_text(0, 3);

		state->running_id = pg_strtoint64(spi_text(0, 1));
		state->running_runner = spi_text(0, 2);
		state->running_pid = pid ? pg_strtoint32(pid) : 0;
	}
}

/* refuse when a RUNNING entry exists for version (another runner, or one that died) */
void
iact_migration_refuse_if_running(const char *version, const VersionState *state)
{
	if (state->running_id != 0)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_IN_USE),
				 errmsg("migration %s is already running", version),
				 errdetail("Log entry %lld (%s, process %d) is RUNNING.",
						   (long long) state->running_id, state->running_runner,
						   state->running_pid),
				 errhint("If that runner is gone, close the entry with "
						 "iact.log_migration_failed(%lld, '...').",
						 (long long) state->running_id)));
}

/* refuse to apply a version that is applied, or being applied */
void
iact_migration_refuse_apply(const char *version, const VersionState *state)
{
	if (state->applied)
		ereport(ERROR,
				(errcode(ERRCODE_DUPLICATE_OBJECT),
				 errmsg("migration %s is already applied", version),
				 errdetail("Log entry %lld applied it.", (long long) state->applied_id),
				 errhint("Roll it back first with iact.safe_rollback_migration, or use a new version.")));
	iact_migration_refuse_if_running(version, state);
}

/*
 * Entries left RUNNING by run_migration in a session that ended before
 * finishing (backend killed, server crash).  Only called with the migration
 * lock held, when no other run_migration can be in progress.
 */
void
iact_migration_mark_abandoned(void)
{
	uint64		i;

	iact_migration_log_exec("UPDATE iact.migration_log SET status = 'FAILED', "
							"completed_at = clock_timestamp(), "
							"duration_ms = round(extract(epoch FROM clock_timestamp() - started_at) * 1000, 3), "
							"error_message = 'abandoned: the session running it (process ' "
							"|| coalesce(backend_pid::text, '?') || ') ended before it finished' "
							"WHERE status = 'RUNNING' AND runner = 'run_migration' "
							"RETURNING id, version",
							0, NULL, NULL, NULL, false);
	for (i = 0; i < SPI_processed; i++)
		ereport(WARNING,
				(errmsg("migration %s (log entry %s) was abandoned and is now marked FAILED",
						spi_text(i, 2), spi_text(i, 1)),
				 errdetail("The session running it ended before it finished; its changes were rolled back.")));
}

/*
 * The error_message (message, then the detail) and error_sqlstate values
 * of edata for the log, NULLs when there is no error.
 */
static void
error_fields(ErrorData *edata, Datum *msg, char *msgnull, Datum *state, char *statenull)
{
	StringInfoData buf;

	if (edata == NULL)
	{
		*msgnull = 'n';
		*statenull = 'n';
		return;
	}
	initStringInfo(&buf);
	appendStringInfoString(&buf, edata->message ? edata->message : "unknown error");
	if (edata->detail)
		appendStringInfo(&buf, " (DETAIL: %s)", edata->detail);
	*msg = CStringGetTextDatum(buf.data);
	*msgnull = ' ';
	*state = CStringGetTextDatum(unpack_sql_state(edata->sqlerrcode));
	*statenull = ' ';
}

static Datum
nullable_text(const char *s, char *null)
{
	*null = s ? ' ' : 'n';
	return s ? CStringGetTextDatum(s) : (Datum) 0;
}

/*
 * Insert a migration_log row for e, run by actor, and return its id.  The
 * down_checksum is computed here from down_sql (left out in a 1.0
 * database, which has no such column).  Needs SPI connected.
 */
int64
iact_migration_insert_entry(const MigrationEntry *e, const MigrationActor *actor)
{
	Oid			types[18] = {TEXTOID, TEXTOID, TEXTOID, TEXTOID, TEXTOID, TEXTOID,
		TEXTOID, TEXTOID, INT8OID, TIMESTAMPTZOID, INT8OID, TEXTOID, TEXTOID,
	NAMEOID, NAMEOID, TEXTOID, INT4OID, TEXTOID};
	Datum		v[18];
	char		n[19];
	bool		isnull;

	memset(n, ' ', sizeof(n));
	n[18] = '\0';
	v[0] = CStringGetTextDatum(e->version);
	v[1] = CStringGetTextDatum(e->description);
	v[2] = CStringGetTextDatum(e->action);
	v[3] = CStringGetTextDatum(e->status);
	v[4] = CStringGetTextDatum(e->runner);
	v[5] = nullable_text(e->checksum, &n[5]);
	v[6] = nullable_text(e->up_sql, &n[6]);
	v[7] = nullable_text(e->down_sql, &n[7]);
	v[8] = Int64GetDatum(e->rollback_of);
	n[8] = e->rollback_of ? ' ' : 'n';
	v[9] = TimestampTzGetDatum(e->started_at);
	n[9] = e->started_at ? ' ' : 'n';
	v[10] = Int64GetDatum(e->rows_affected);
	n[10] = e->rows_affected >= 0 ? ' ' : 'n';
	error_fields(e->edata, &v[11], &n[11], &v[12], &n[12]);
	v[13] = DirectFunctionCall1(namein, CStringGetDatum(actor->installed_by));
	v[14] = DirectFunctionCall1(namein, CStringGetDatum(actor->session_role));
	v[15] = nullable_text(actor->application_name, &n[15]);
	v[16] = Int32GetDatum(MyProcPid);
	/* the checksum of down_sql is always computed here, from the text stored */
	v[17] = nullable_text(e->down_sql ? iact_migration_sha256_hex(e->down_sql, strlen(e->down_sql)) : NULL,
						  &n[17]);

	/* a 1.0 database has no down_checksum column: $18 is then not used */
	iact_migration_log_exec(iact_migration_log_has_down_checksum() ?
							"INSERT INTO iact.migration_log (version, description, action, status, "
							"runner, checksum, up_sql, down_sql, rollback_of, started_at, "
							"completed_at, duration_ms, rows_affected, error_message, error_sqlstate, "
							"installed_by, session_role, application_name, backend_pid, down_checksum) "
							"SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, t.started, "
							"CASE WHEN $4 <> 'RUNNING' THEN clock_timestamp() END, "
							"CASE WHEN $4 <> 'RUNNING' THEN "
							"round(extract(epoch FROM clock_timestamp() - t.started) * 1000, 3) END, "
							"$11, $12, $13, $14, $15, $16, $17, $18 "
							"FROM (SELECT coalesce($10, clock_timestamp()) AS started) t "
							"RETURNING id" :
							"INSERT INTO iact.migration_log (version, description, action, status, "
							"runner, checksum, up_sql, down_sql, rollback_of, started_at, "
							"completed_at, duration_ms, rows_affected, error_message, error_sqlstate, "
							"installed_by, session_role, application_name, backend_pid) "
							"SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, t.started, "
							"CASE WHEN $4 <> 'RUNNING' THEN clock_timestamp() END, "
							"CASE WHEN $4 <> 'RUNNING' THEN "
							"round(extract(epoch FROM clock_timestamp() - t.started) * 1000, 3) END, "
							"$11, $12, $13, $14, $15, $16, $17 "
							"FROM (SELECT coalesce($10, clock_timestamp()) AS started) t "
							"RETURNING id",
							18, types, v, n, false);
	return DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
}

/*
 * Close the RUNNING entry id with status, the rows affected (or NULL) and
 * the error (edata's, or error_message); an error when it is not RUNNING.
 */
void
iact_migration_finish_entry(int64 id, const char *status, int64 rows, bool rows_isnull,
							ErrorData *edata, const char *error_message)
{
	Oid			types[5] = {INT8OID, TEXTOID, INT8OID, TEXTOID, TEXTOID};
	Datum		v[5];
	char		n[6] = "     ";

	v[0] = Int64GetDatum(id);
	v[1] = CStringGetTextDatum(status);
	v[2] = Int64GetDatum(rows);
	n[2] = rows_isnull ? 'n' : ' ';
	error_fields(edata, &v[3], &n[3], &v[4], &n[4]);
	if (error_message)
	{
		v[3] = CStringGetTextDatum(error_message);
		n[3] = ' ';
	}
	iact_migration_log_exec("UPDATE iact.migration_log SET status = $2, completed_at = clock_timestamp(), "
							"duration_ms = round(extract(epoch FROM clock_timestamp() - started_at) * 1000, 3), "
							"rows_affected = $3, error_message = $4, error_sqlstate = $5 "
							"WHERE id = $1 AND status = 'RUNNING'",
							5, types, v, n, false);
	if (SPI_processed != 1)
		elog(ERROR, "migration log entry " INT64_FORMAT " is no longer RUNNING", id);
}

/* SHA-256 of data as 64 lowercase hex digits (palloc'd) */
char *
iact_migration_sha256_hex(const char *data, size_t len)
{
	pg_cryptohash_ctx *ctx = pg_cryptohash_create(PG_SHA256);
	uint8		digest[PG_SHA256_DIGEST_LENGTH];
	char	   *hex = palloc(PG_SHA256_DIGEST_LENGTH * 2 + 1);
	int			i;

	if (pg_cryptohash_init(ctx) < 0 ||
		pg_cryptohash_update(ctx, (const uint8 *) data, len) < 0 ||
		pg_cryptohash_final(ctx, digest, sizeof(digest)) < 0)
		elog(ERROR, "could not compute SHA-256: %s", pg_cryptohash_error(ctx));
	pg_cryptohash_free(ctx);
	for (i = 0; i < PG_SHA256_DIGEST_LENGTH; i++)
		snprintf(hex + 2 * i, 3, "%02x", digest[i]);
	return hex;
}

/*
 * Trigger on iact.migration_log: rows are never deleted or truncated, and
 * only a RUNNING row may change (to record how it ended).
 */
Datum
iact_migration_log_guard(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = (TriggerData *) fcinfo->context;
	bool		isnull;
	Datum		status;

	if (!CALLED_AS_TRIGGER(fcinfo))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("iact.migration_log_guard() must be called as a trigger")));

	if (TRIGGER_FIRED_BY_DELETE(trigdata->tg_event) ||
		TRIGGER_FIRED_BY_TRUNCATE(trigdata->tg_event))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("iact.migration_log is append-only"),
				 errdetail("Migration history is never deleted."),
				 errhint("Roll a migration back with iact.safe_rollback_migration; the history keeps both.")));

	status = heap_getattr(trigdata->tg_trigtuple,
						  SPI_fnumber(trigdata->tg_relation->rd_att, "status"),
						  trigdata->tg_relation->rd_att, &isnull);
	if (isnull || strcmp(TextDatumGetCString(status), "RUNNING") != 0)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("iact.migration_log is append-only"),
				 errdetail("Entry is %s; only a RUNNING entry may change.",
						   isnull ? "NULL" : TextDatumGetCString(status))));
	return PointerGetDatum(trigdata->tg_newtuple);
}
