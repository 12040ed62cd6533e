/*-------------------------------------------------------------------------
 *
 * sync_run.c
 *	  The SQL entry point of one sync run (layer 6, see sync_engine.c): the
 *	  advisory lock (a run of a table already running is recorded as
 *	  'skipped'), the steps of sync_engine.c in the owner's rights and in
 *	  subtransactions, the run's final record (sync_record.c) and, in the
 *	  batch-commit mode, the commits (see iact_sync_table in iact.h).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "sync.h"

#include "access/xact.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "nodes/makefuncs.h"
#include "utils/acl.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"

#include "mariadb_client.h"

/* ---- the table's lock ---- */

/*
 * A table's sync lock is iact's IACT_LOCK_FOR_SYNC_TABLE (src/lock.c: no SQL
 * session can hold or release it).  Session-level for the batch-commit path
 * (released by iact_sync_unlock_table, or by an abort of the transaction),
 * else transaction-level.
 */

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
	if (run_in_progress(table_id))
		return false;
	return iact_lock_acquire(IACT_LOCK_FOR_SYNC_TABLE, (uint32) table_id, session, false);
}

/* release the session-level sync lock of a table, if this backend still has it */
void
iact_sync_unlock_table(int32 table_id)
{
	iact_lock_release(IACT_LOCK_FOR_SYNC_TABLE, (uint32) table_id);
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
	iact_sync_restore_session_locks(locks, r->conf.tgt_qual);
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
	Oid			relid = RangeVarGetRelid(makeRangeVar(r->conf.tgt_schema, r->conf.tgt_table, -1), NoLock, true);

	/* another table under the registered name: the run fails (iact_sync_as_owner) */
	if (r->conf.check_oid && OidIsValid(relid) && relid != r->conf.tgt_oid)
		relid = InvalidOid;
	r->owner = iact_rel_owner(relid);
	if (OidIsValid(r->owner) && !has_privs_of_role(r->outer_user, r->owner))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("must be owner of table %s to sync it", r->conf.tgt_qual),
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
	while (err == NULL && !r->src.eof)
	{
		err = run_step(r, iact_sync_step_batch);
		SPI_commit();
		/* the worker's line in pg_stat_activity shows whose table and the progress */
		if (IsBackgroundWorker)
		{
			char		activity[512];

			snprintf(activity, sizeof(activity),
					 "iact sync of %s as its owner %s: %lld rows read, %lld inserted, %lld updated",
					 r->conf.tgt_qual, owner_name, (long long) r->n.read,
					 (long long) r->n.inserted, (long long) r->n.updated);
			pgstat_report_activity(STATE_RUNNING, activity);
		}
	}
	if (err == NULL)
	{
		char	   *start_wm = r->conf.last_wm;

		err = run_step(r, iact_sync_step_finish);
		if (err != NULL && err->sqlerrcode == ERRCODE_DATA_EXCEPTION && r->conf.wm_col)
		{
			/*
			 * The counts disagree: the committed batches stay, but the
			 * watermark goes back to where this run began, so the next run
			 * reads (and checks) the same range again.
			 */
			iact_sync_reset_watermark(r, start_wm);
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
	r->reject_cxt = AllocSetContextCreate(cxt, "iact sync reject", ALLOCSET_DEFAULT_SIZES);
	r->conf.table_id = table_id;
	r->conf.commit_batches = commit_batches;
	r->n.source = r->n.target = -1;
	GetUserIdAndSecContext(&r->outer_user, &r->outer_sec);
	r->registry_owner = iact_sync_registry_owner();

	if (SPI_connect_ext(commit_batches ? SPI_OPT_NONATOMIC : 0) != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	PG_TRY();
	{
		MemoryContextSwitchTo(cxt);
		iact_sync_load_registry(r);
		resolve_owner(r);
		if (IsBackgroundWorker)
		{
			owner_name = GetUserNameFromId(r->owner, true);
			if (owner_name == NULL)
				owner_name = "?";
			pgstat_report_activity(STATE_RUNNING,
								   psprintf("iact sync of %s as its owner %s", r->conf.tgt_qual, owner_name));
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
			r->run_id = iact_sync_insert_run(r, "skipped", "another run of this table is in progress");
			if (commit_batches)
				SPI_commit();
		}
		else
		{
			ErrorData  *err = NULL;

			iact_sync_close_stale_runs(r);
			r->run_id = iact_sync_insert_run(r, "running", NULL);
			if (commit_batches)
				err = run_committing(r, owner_name);
			else
			{
				err = run_step(r, iact_sync_step_all);
				if (err != NULL)
				{
					/* atomic per table: nothing of this table's batches stays */
					r->n.inserted = r->n.updated = r->n.deleted = r->n.purged = 0;
					r->n.rejected = 0;
				}
			}
			MemoryContextSwitchTo(cxt);
			if (err != NULL)
			{
				ereport(WARNING,
						(errmsg("sync of %s failed: %s", r->conf.tgt_qual, err->message),
						 err->detail ? errdetail_internal("%s", err->detail) : 0));
				iact_sync_save_run(r, "failed", error_text(err));
			}
			else
				iact_sync_save_run(r, r->n.rejected > 0 ? "partial" : "success", NULL);
			if (commit_batches)
				SPI_commit();
		}
	}
	PG_FINALLY();
	{
		if (r->src.conn)
			iact_my_close(r->src.conn);
		r->src.conn = NULL;
		iact_sync_release(r);
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
