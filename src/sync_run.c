/*-------------------------------------------------------------------------
 *
 * sync_run.c
 *	  The frame of one sync run: the registry row, the advisory lock (a run
 *	  of a table already running is recorded as 'skipped'), the run record in
 *	  iact.sync_runs (with its counters and watermarks), the subtransactions
 *	  and, in the batch-commit mode, the commits (see iact_sync_table in
 *	  iact.h).
 *
 *-------------------------------------------------------------------------
 */
#include "sync.h"

#include "access/xact.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "nodes/makefuncs.h"
#include "storage/lock.h"
#include "utils/acl.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"

#include "mariadb_client.h"

/* ---- the registry and the run record ---- */

static void
load_registry(SyncRun *r)
{
	Oid			argtypes[1] = {INT4OID};
	Datum		args[1] = {Int32GetDatum(r->table_id)};
	HeapTuple	tup;
	bool		isnull;
	Datum		d;
	MemoryContext old;
	SyncAs		as;

	/* the target's oid: a 1.0 database has no such column (and no check) */
	r->check_oid = get_attnum(get_relname_relid("sync_tables", get_namespace_oid("iact", false)),
							  "target_oid") != InvalidAttrNumber;
	iact_sync_as_iact(r, &as);
	if (SPI_execute_with_args(psprintf("SELECT server_name::text, source_schema, source_table, "
									   "target_schema::text, target_table::text, key_columns, "
									   "watermark_column, lookback, "
									   "coalesce(batch_size, pg_catalog.current_setting('iact.sync_batch_size')::int4), "
									   "retention_days, retention_column, last_watermark, %s "
									   "FROM iact.sync_tables WHERE id = $1",
									   r->check_oid ? "target_oid::pg_catalog.oid" : "NULL::pg_catalog.oid"),
							  1, argtypes, args, NULL, false, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not read iact.sync_tables");
	if (SPI_processed != 1)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("sync table %d is not registered", r->table_id)));
	tup = SPI_tuptable->vals[0];
	old = MemoryContextSwitchTo(r->cxt);
	r->server_name = iact_sync_spi_text(tup, 1);
	r->src_schema = iact_sync_spi_text(tup, 2);
	r->src_table = iact_sync_spi_text(tup, 3);
	r->tgt_schema = iact_sync_spi_text(tup, 4);
	r->tgt_table = iact_sync_spi_text(tup, 5);
	r->tgt_qual = psprintf("%s.%s", quote_identifier(r->tgt_schema),
						   quote_identifier(r->tgt_table));
	d = SPI_getbinval(tup, SPI_tuptable->tupdesc, 6, &isnull);
	{
		Datum	   *elems;
		int			i;

		deconstruct_array(DatumGetArrayTypeP(d), TEXTOID, -1, false, TYPALIGN_INT,
						  &elems, NULL, &r->nkeys);
		r->keys = palloc(sizeof(char *) * r->nkeys);
		for (i = 0; i < r->nkeys; i++)
			r->keys[i] = TextDatumGetCString(elems[i]);
	}
	r->wm_col = iact_sync_spi_text(tup, 7);
	r->lookback = DatumGetInt64(SPI_getbinval(tup, SPI_tuptable->tupdesc, 8, &isnull));
	r->batch_size = DatumGetInt32(SPI_getbinval(tup, SPI_tuptable->tupdesc, 9, &isnull));
	r->retention_days = DatumGetInt32(SPI_getbinval(tup, SPI_tuptable->tupdesc, 10, &isnull));
	r->ret_col = iact_sync_spi_text(tup, 11);
	r->last_wm = iact_sync_spi_text(tup, 12);
	d = SPI_getbinval(tup, SPI_tuptable->tupdesc, 13, &isnull);
	r->tgt_oid = isnull ? InvalidOid : DatumGetObjectId(d);
	MemoryContextSwitchTo(old);
	iact_sync_restore(&as);
}

/* write the run's counters and status (status NULL: keep 'running') */
void
iact_sync_save_run(SyncRun *r, const char *status, const char *error)
{
	Oid			argtypes[15] = {INT8OID, TEXTOID, INT8OID, INT8OID, INT8OID, INT8OID,
	INT8OID, INT8OID, TEXTOID, TEXTOID, TEXTOID, INT8OID, INT8OID, TEXTOID, TEXTOID};
	Datum		args[15];
	char		nulls[15];
	int			i;
	MemoryContext cxt = CurrentMemoryContext;
	SyncAs		as;

	memset(nulls, ' ', sizeof(nulls));
	args[0] = Int64GetDatum(r->run_id);
	args[1] = CStringGetTextDatum(status ? status : "running");
	args[2] = Int64GetDatum(r->n_read);
	args[3] = Int64GetDatum(r->n_inserted);
	args[4] = Int64GetDatum(r->n_updated);
	args[5] = Int64GetDatum(r->n_deleted);
	args[6] = Int64GetDatum(r->n_rejected);
	args[7] = Int64GetDatum(r->n_purged);
	args[8] = r->wm_from ? CStringGetTextDatum(r->wm_from) : (Datum) 0;
	args[9] = r->wm_to ? CStringGetTextDatum(r->wm_to) : (Datum) 0;
	args[10] = error ? CStringGetTextDatum(error) : (Datum) 0;
	args[11] = Int64GetDatum(r->source_count);
	args[12] = Int64GetDatum(r->target_count);
	args[13] = r->commit_batches ? CStringGetTextDatum("batch commits")
		: CStringGetTextDatum("one transaction");
	/* how the rows were written: directly, by statements (and why), or both */
	if (r->wrote_statements)
		args[14] = CStringGetTextDatum(psprintf("%sstatements: %s", r->wrote_direct ? "direct and " : "",
												r->statements_reason ? r->statements_reason : "?"));
	else if (r->wrote_direct)
		args[14] = CStringGetTextDatum("direct");
	else
		nulls[14] = 'n';
	for (i = 8; i <= 10; i++)
		if (args[i] == (Datum) 0)
			nulls[i] = 'n';
	if (r->source_count < 0)
		nulls[11] = 'n';
	if (r->target_count < 0)
		nulls[12] = 'n';
	iact_sync_as_iact(r, &as);
	if (SPI_execute_with_args("UPDATE iact.sync_runs SET status = $2, "
							  "finished_at = CASE WHEN $2 = 'running' THEN NULL ELSE clock_timestamp() END, "
							  "rows_read = $3, rows_inserted = $4, rows_updated = $5, rows_deleted = $6, "
							  "rows_rejected = $7, rows_purged = $8, watermark_from = $9, "
							  "watermark_to = $10, error = $11, source_count = $12, target_count = $13, "
							  "transaction_mode = $14, write_path = $15 WHERE id = $1",
							  15, argtypes, args, nulls, false, 0) != SPI_OK_UPDATE)
		elog(ERROR, "could not update iact.sync_runs");
	iact_sync_restore(&as);
	MemoryContextSwitchTo(cxt);	/* SPI returns in its procedure context */
}

void
iact_sync_save_watermark(SyncRun *r)
{
	Oid			argtypes[2] = {INT4OID, TEXTOID};
	Datum		args[2] = {Int32GetDatum(r->table_id), (Datum) 0};
	MemoryContext cxt = CurrentMemoryContext;
	SyncAs		as;

	if (r->wm_col == NULL || r->wm_to == NULL)
		return;
	args[1] = CStringGetTextDatum(r->wm_to);
	iact_sync_as_iact(r, &as);
	if (SPI_execute_with_args("UPDATE iact.sync_tables SET last_watermark = $2 WHERE id = $1",
							  2, argtypes, args, NULL, false, 0) != SPI_OK_UPDATE)
		elog(ERROR, "could not update iact.sync_tables");
	iact_sync_restore(&as);
	MemoryContextSwitchTo(cxt);
}
/* ---- the entry point ---- */

static int64
insert_run(SyncRun *r, const char *status, const char *error)
{
	Oid			argtypes[5] = {INT4OID, TEXTOID, TEXTOID, TEXTOID, TEXTOID};
	Datum		args[5];
	char		nulls[5] = {' ', ' ', ' ', ' ', ' '};
	bool		isnull;
	SyncAs		as;
	int64		id;

	args[0] = Int32GetDatum(r->table_id);
	args[1] = CStringGetTextDatum(r->tgt_qual);
	args[2] = CStringGetTextDatum(status);
	args[3] = CStringGetTextDatum(r->wm_col ? "incremental" : "full");
	if (error)
		args[4] = CStringGetTextDatum(error);
	else
		nulls[4] = 'n';
	iact_sync_as_iact(r, &as);
	if (SPI_execute_with_args("INSERT INTO iact.sync_runs (table_id, target_table, status, mode, error, "
							  "finished_at) VALUES ($1, $2, $3, $4, $5, "
							  "CASE WHEN $3 = 'running' THEN NULL ELSE clock_timestamp() END) RETURNING id",
							  5, argtypes, args, nulls, false, 1) != SPI_OK_INSERT_RETURNING)
		elog(ERROR, "could not insert into iact.sync_runs");
	id = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	iact_sync_restore(&as);
	return id;
}

/*
 * A table's sync lock: an advisory-type lock tag in PostgreSQL's DEFAULT lock
 * method with objsubid IACT_LOCK_SYNC.  SQL's advisory-lock functions only
 * make tags of the USER lock method with objsubid 1 or 2, so no SQL session
 * can hold it (squat) or release it: pg_advisory_unlock_all() releases the
 * USER method's session locks only.  Session-level for the batch-commit path
 * (released by iact_sync_unlock_table, or by an abort of the transaction),
 * else transaction-level.
 */
static void
sync_locktag(LOCKTAG *tag, int32 table_id)
{
	SET_LOCKTAG_ADVISORY(*tag, MyDatabaseId, (uint32) IACT_LOCK_SYNC_CLASS, (uint32) table_id,
						 IACT_LOCK_SYNC);
	tag->locktag_lockmethodid = DEFAULT_LOCKMETHOD;
}

/*
 * The runs under way in this backend, innermost first: a lock is re-entrant
 * within one backend, so a run started from inside a run of the same table
 * (the target owner's trigger calling iact.sync_now()) would get the lock and
 * run nested.  Pushed by iact_sync_table, popped on every exit (PG_FINALLY).
 */
typedef struct RunFrame
{
	int32		table_id;
	struct RunFrame *outer;
} RunFrame;

static RunFrame *runs_in_progress = NULL;

static bool
run_in_progress(int32 table_id)
{
	RunFrame   *f;

	for (f = runs_in_progress; f != NULL; f = f->outer)
		if (f->table_id == table_id)
			return true;
	return false;
}

/*
 * Take a table's sync lock without waiting: false when another session, or
 * an outer run of the same table in this one, has it.
 */
bool
iact_sync_lock_table(int32 table_id, bool session)
{
	LOCKTAG		tag;

	if (run_in_progress(table_id))
		return false;
	sync_locktag(&tag, table_id);
	return LockAcquire(&tag, ExclusiveLock, session, true) != LOCKACQUIRE_NOT_AVAIL;
}

void
iact_sync_unlock_table(int32 table_id)
{
	LOCKTAG		tag;

	sync_locktag(&tag, table_id);
	(void) LockRelease(&tag, ExclusiveLock, true);
}

/*
 * One step of the run in the target owner's rights (see sync_security.c):
 * the step's writes, conversions and connection are the owner's; on an error
 * the subtransaction's abort restores the user and search_path.
 */
typedef struct OwnerStep
{
	void		(*fn) (SyncRun *, void *);
	SyncRun    *r;
} OwnerStep;

static void
step_as_owner(SyncRun *r, void *arg)
{
	OwnerStep  *step = (OwnerStep *) arg;
	SyncAs		as;

	iact_sync_as_owner(r, &as);
	step->fn(r, NULL);
	iact_sync_restore(&as);
}

static void
owner_step(void *arg)
{
	OwnerStep  *step = (OwnerStep *) arg;

	step_as_owner(step->r, step);
}

static void
check_interrupts(void *arg)
{
	CHECK_FOR_INTERRUPTS();
}

/*
 * One step, its error returned (NULL: success).  The session-level advisory
 * locks the owner's code took are released after it (sync_locks.c).  A real
 * cancel or statement timeout (not an error of SQLSTATE class 57 that the
 * owner's code raised: iact_error_is_interrupt) ends the whole call, as
 * before: in the batch-commit mode the run stays 'running' until the table's
 * next run marks it interrupted; in one transaction, the caller's transaction
 * rolls the run back with everything else.  The error is re-thrown with
 * iact_rethrow: its copy lives in r->cxt, which the PG_FINALLY of
 * iact_sync_table deletes before the error is reported.
 */
static ErrorData *
run_step(SyncRun *r, void (*fn) (SyncRun *, void *))
{
	OwnerStep	step = {fn, r};
	MemoryContext lockcxt = AllocSetContextCreate(r->cxt, "iact sync step locks",
												  ALLOCSET_SMALL_SIZES);
	SyncLockSet *locks;
	ErrorData  *err;
	ErrorData  *intr = NULL;

	MemoryContextSwitchTo(lockcxt);
	locks = iact_sync_session_locks();
	MemoryContextSwitchTo(r->cxt);
	err = iact_try_subxact(owner_step, &step, r->cxt, false);
	MemoryContextSwitchTo(lockcxt);
	iact_sync_restore_session_locks(locks, r->tgt_qual);
	MemoryContextSwitchTo(r->cxt);
	MemoryContextDelete(lockcxt);
	if (iact_error_is_interrupt(err))
		intr = err;
	else if (QueryCancelPending)
		intr = iact_try_subxact(check_interrupts, NULL, r->cxt, false);
	if (intr != NULL && iact_error_is_interrupt(intr))
		iact_rethrow(intr);		/* the run stays 'running': the next run of the
								 * table marks it interrupted */
	return err;
}

/* the target's owner; the caller must have its privileges */
static void
resolve_owner(SyncRun *r)
{
	Oid			relid = RangeVarGetRelid(makeRangeVar(r->tgt_schema, r->tgt_table, -1), NoLock, true);

	/* another table under the registered name: the run fails (iact_sync_as_owner) */
	if (r->check_oid && OidIsValid(relid) && relid != r->tgt_oid)
		relid = InvalidOid;
	r->owner = iact_rel_owner(relid);
	if (OidIsValid(r->owner) && !has_privs_of_role(r->outer_user, r->owner))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("must be owner of table %s to sync it", r->tgt_qual),
				 errdetail("A table's sync writes as the table's owner; only that role, its members and superusers may start it.")));
}

static const char *
error_text(ErrorData *e)
{
	if (e->detail)
		return psprintf("%s (%s)", e->message, e->detail);
	return e->message;
}

/*
 * The batch-commit path of a run whose record is inserted: begin, the
 * batches and finish, each in the owner's rights and its own subtransaction,
 * each followed by a commit.  Returns the run's error, or NULL.
 */
static ErrorData *
run_committing(SyncRun *r, const char *owner_name)
{
	ErrorData  *err;

	SPI_commit();
	MemoryContextSwitchTo(r->cxt);
	err = run_step(r, iact_sync_step_begin);
	SPI_commit();
	while (err == NULL && !r->eof)
	{
		err = run_step(r, iact_sync_step_batch);
		SPI_commit();
		/* the worker's line in pg_stat_activity shows whose table and the progress */
		if (IsBackgroundWorker)
		{
			char		activity[512];

			snprintf(activity, sizeof(activity),
					 "iact sync of %s as its owner %s: %lld rows read, %lld inserted, %lld updated",
					 r->tgt_qual, owner_name, (long long) r->n_read,
					 (long long) r->n_inserted, (long long) r->n_updated);
			pgstat_report_activity(STATE_RUNNING, activity);
		}
	}
	if (err == NULL)
	{
		char	   *start_wm = r->last_wm;

		err = run_step(r, iact_sync_step_finish);
		if (err != NULL && err->sqlerrcode == ERRCODE_DATA_EXCEPTION && r->wm_col)
		{
			/*
			 * The counts disagree: the committed batches stay, but the
			 * watermark goes back to where this run began, so the next run
			 * reads (and checks) the same range again.
			 */
			Oid			t[2] = {INT4OID, TEXTOID};
			Datum		a[2] = {Int32GetDatum(r->table_id), (Datum) 0};
			SyncAs		as;

			if (start_wm)
				a[1] = CStringGetTextDatum(start_wm);
			iact_sync_as_iact(r, &as);
			if (SPI_execute_with_args("UPDATE iact.sync_tables SET last_watermark = $2 WHERE id = $1",
									  2, t, a, start_wm ? NULL : " n", false, 0) != SPI_OK_UPDATE)
				elog(ERROR, "could not reset the watermark of %s", r->tgt_qual);
			iact_sync_restore(&as);
		}
	}
	return err;
}

int64
iact_sync_table(int32 table_id, bool commit_batches)
{
	SyncRun    *r;
	MemoryContext cxt;
	MemoryContext callercxt = CurrentMemoryContext;
	int64		run_id = 0;
	volatile bool locked = false;
	const char *owner_name = "?";
	RunFrame	frame;
	RunFrame   *volatile outer_frame = runs_in_progress;

	cxt = AllocSetContextCreate(TopMemoryContext, "iact sync run", ALLOCSET_DEFAULT_SIZES);
	r = MemoryContextAllocZero(cxt, sizeof(SyncRun));
	r->cxt = cxt;
	r->batch_cxt = AllocSetContextCreate(cxt, "iact sync batch", ALLOCSET_DEFAULT_SIZES);
	r->table_id = table_id;
	r->commit_batches = commit_batches;
	r->source_count = r->target_count = -1;
	GetUserIdAndSecContext(&r->outer_user, &r->outer_sec);
	r->registry_owner = iact_sync_registry_owner();

	if (SPI_connect_ext(commit_batches ? SPI_OPT_NONATOMIC : 0) != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	PG_TRY();
	{
		MemoryContextSwitchTo(cxt);
		load_registry(r);
		resolve_owner(r);
		if (IsBackgroundWorker)
		{
			owner_name = GetUserNameFromId(r->owner, true);
			if (owner_name == NULL)
				owner_name = "?";
			pgstat_report_activity(STATE_RUNNING,
								   psprintf("iact sync of %s as its owner %s", r->tgt_qual, owner_name));
		}
		locked = iact_sync_lock_table(table_id, commit_batches);
		if (locked)
		{
			frame.table_id = table_id;
			frame.outer = outer_frame;
			runs_in_progress = &frame;
		}
		if (!locked)
		{
			r->run_id = insert_run(r, "skipped", "another run of this table is in progress");
			if (commit_batches)
				SPI_commit();
		}
		else
		{
			ErrorData  *err = NULL;

			/* runs left 'running' by a backend that died are over */
			{
				Oid			t[1] = {INT4OID};
				Datum		a[1] = {Int32GetDatum(table_id)};
				SyncAs		as;

				iact_sync_as_iact(r, &as);
				SPI_execute_with_args("UPDATE iact.sync_runs SET status = 'failed', finished_at = clock_timestamp(), "
									  "error = 'interrupted: the session running it ended before it finished' "
									  "WHERE table_id = $1 AND status = 'running'", 1, t, a, NULL, false, 0);
				iact_sync_restore(&as);
			}
			r->run_id = insert_run(r, "running", NULL);
			if (commit_batches)
				err = run_committing(r, owner_name);
			else
			{
				err = run_step(r, iact_sync_step_all);
				if (err != NULL)
				{
					/* atomic per table: nothing of this table's batches stays */
					r->n_inserted = r->n_updated = r->n_deleted = r->n_purged = 0;
					r->n_rejected = 0;
				}
			}
			MemoryContextSwitchTo(cxt);
			if (err != NULL)
			{
				ereport(WARNING,
						(errmsg("sync of %s failed: %s", r->tgt_qual, err->message),
						 err->detail ? errdetail_internal("%s", err->detail) : 0));
				iact_sync_save_run(r, "failed", error_text(err));
			}
			else
				iact_sync_save_run(r, r->n_rejected > 0 ? "partial" : "success", NULL);
			if (commit_batches)
				SPI_commit();
		}
	}
	PG_FINALLY();
	{
		if (r->conn)
			iact_my_close(r->conn);
		r->conn = NULL;
		if (r->apply_plan)
			SPI_freeplan(r->apply_plan);
		if (r->reject_plan)
			SPI_freeplan(r->reject_plan);
		iact_sync_merge_free(r);
		if (locked && commit_batches)
			iact_sync_unlock_table(table_id);
		runs_in_progress = outer_frame;
		/* the bookkeeping's and the steps' switches are over */
		SetUserIdAndSecContext(r->outer_user, r->outer_sec);
		run_id = r->run_id;
		MemoryContextSwitchTo(callercxt);
		MemoryContextDelete(cxt);
	}
	PG_END_TRY();
	SPI_finish();
	MemoryContextSwitchTo(callercxt);
	return run_id;
}
