/*-------------------------------------------------------------------------
 *
 * worker.c
 *	  The scheduled sync: one background worker per cluster that runs every
 *	  registered table every iact.sync_interval, and iact.request_sync().
 *
 * Registered from _PG_init when iact is in shared_preload_libraries.  It
 * starts once recovery has finished (so on a standby it never runs, and
 * after promotion the postmaster starts it), connects to iact.database, and
 * loops: reload the configuration on SIGHUP, run what is due or requested,
 * sleep on its latch until the next table is due.  Each table runs through
 * iact_sync_table(..., commit_batches = true): every batch commits with its
 * watermark, so a worker killed at any point resumes from the last committed
 * batch.  A table whose last run failed is retried with exponential backoff
 * (iact.sync_retry_delay doubling, capped at half the interval); a run that
 * found the table busy (a manual sync_now, or another run) is recorded as
 * 'skipped' by the engine and tried again after iact.sync_retry_delay.
 *
 * The worker never needs a restart or a request to begin: it looks for the
 * extension every few seconds while it is missing, and a registration (any
 * change of iact.sync_tables) or a request sets its latch when the
 * registering transaction commits.  An error anywhere in its loop is logged
 * and the loop goes on after a delay (1 s doubling to 60 s), never a FATAL
 * and a restart.  Everything a pass allocates lives in a context reset at
 * the start of the next one.  Requests of single tables are rows of
 * iact.sync_requests (any number); shared memory holds the worker's latch,
 * the "all tables" request, and -- for a database still at version 1.0,
 * which has no iact.sync_requests -- the old fixed array of requests.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "iact.h"
#include "sync.h"

#include <limits.h>

#include "access/xact.h"
#include "commands/trigger.h"
#include "catalog/namespace.h"
#include "commands/dbcommands.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/proc.h"
#include "storage/shmem.h"
#include "storage/spin.h"
#include "tcop/pquery.h"
#include "tcop/tcopprot.h"
#include "tcop/utility.h"
#include "utils/portal.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"
#include "worker_replica.h"

PG_FUNCTION_INFO_V1(iact_request_sync);
PG_FUNCTION_INFO_V1(iact_sync_wake_worker);

PGDLLEXPORT void iact_worker_main(Datum arg);

#define MAX_REQUESTS 64

typedef struct WorkerShared
{
	slock_t		mutex;
	pid_t		pid;			/* 0 when no worker runs */
	Latch	   *latch;
	int			connect_failures;	/* start-ups that did not reach the database */
	bool		request_all;
	int			nrequests;
	int32		requests[MAX_REQUESTS];
} WorkerShared;

static WorkerShared *shared = NULL;

static char *iact_database = NULL;
static int	iact_sync_interval = 6 * 3600;	/* seconds */
static bool iact_sync_enabled = true;
static int	iact_sync_retry_delay = 60; /* seconds */

static shmem_request_hook_type prev_shmem_request_hook = NULL;
static shmem_startup_hook_type prev_shmem_startup_hook = NULL;

static void
worker_shmem_request(void)
{
	if (prev_shmem_request_hook)
		prev_shmem_request_hook();
	RequestAddinShmemSpace(MAXALIGN(sizeof(WorkerShared)));
}

/* create (or attach to) the worker's shared state */
static void
worker_shmem_startup(void)
{
	bool		found;

	if (prev_shmem_startup_hook)
		prev_shmem_startup_hook();
	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	shared = ShmemInitStruct("iact worker", sizeof(WorkerShared), &found);
	if (!found)
	{
		memset(shared, 0, sizeof(WorkerShared));
		SpinLockInit(&shared->mutex);
	}
	LWLockRelease(AddinShmemInitLock);
}

/* the worker's settings; when preloaded also iact.database, its shared memory and the worker */
void
iact_worker_init(void)
{
	BackgroundWorker worker;

	DefineCustomIntVariable("iact.sync_interval",
							"Time between two scheduled syncs of a table.",
							"Accepts units (e.g. '6h', '15min'). Takes effect on reload.",
							&iact_sync_interval, 6 * 3600, 1, INT_MAX / 1000,
							PGC_SIGHUP, GUC_UNIT_S, NULL, NULL, NULL);
	DefineCustomBoolVariable("iact.sync_enabled",
							 "Whether the worker syncs tables on its schedule.",
							 "Off: only iact.request_sync() makes it run. Takes effect on reload.",
							 &iact_sync_enabled, true, PGC_SIGHUP, 0, NULL, NULL, NULL);
	DefineCustomIntVariable("iact.sync_retry_delay",
							"First delay before a failed sync is retried; doubles after each failure.",
							"Capped at half of iact.sync_interval. Also the delay after a skipped run.",
							&iact_sync_retry_delay, 60, 1, INT_MAX / 1000,
							PGC_SIGHUP, GUC_UNIT_S, NULL, NULL, NULL);

	/* the rest exists only with shared_preload_libraries: there is no worker otherwise */
	if (!process_shared_preload_libraries_in_progress)
		return;

	DefineCustomStringVariable("iact.database",
							   "Database the iact sync worker connects to.",
							   "iact must be installed there. Takes effect at server start.",
							   &iact_database, "postgres", PGC_POSTMASTER, 0,
							   NULL, NULL, NULL);

	prev_shmem_request_hook = shmem_request_hook;
	shmem_request_hook = worker_shmem_request;
	prev_shmem_startup_hook = shmem_startup_hook;
	shmem_startup_hook = worker_shmem_startup;

	memset(&worker, 0, sizeof(worker));
	worker.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
	worker.bgw_start_time = BgWorkerStart_RecoveryFinished;
	worker.bgw_restart_time = 10;
	snprintf(worker.bgw_library_name, BGW_MAXLEN, "iact");
	snprintf(worker.bgw_function_name, BGW_MAXLEN, "iact_worker_main");
	snprintf(worker.bgw_name, BGW_MAXLEN, "iact sync worker");
	snprintf(worker.bgw_type, BGW_MAXLEN, "iact sync worker");
	RegisterBackgroundWorker(&worker);
}

/* iact.sync_requests (1.1), or InvalidOid in a database still at 1.0 */
static Oid
get_requests_relid(void)
{
	Oid			nsp = get_namespace_oid("iact", true);

	return OidIsValid(nsp) ? get_relname_relid("sync_requests", nsp) : InvalidOid;
}

/*
 * Wake the worker when the current transaction commits (what it must see is
 * committed by then), not before: a worker woken earlier would find nothing
 * new and sleep again.
 */
static bool wake_at_commit = false;
static bool wake_callback_registered = false;

/* at commit, set the worker's latch when asked to; forget the request at the end */
static void
wake_xact_callback(XactEvent event, void *arg)
{
	if (event == XACT_EVENT_COMMIT && wake_at_commit && shared != NULL)
	{
		SpinLockAcquire(&shared->mutex);
		if (shared->pid != 0 && shared->latch)
			SetLatch(shared->latch);
		SpinLockRelease(&shared->mutex);
	}
	if (event == XACT_EVENT_COMMIT || event == XACT_EVENT_ABORT ||
		event == XACT_EVENT_PARALLEL_COMMIT || event == XACT_EVENT_PARALLEL_ABORT)
		wake_at_commit = false;
}

/* ask for the worker to be woken when this transaction commits */
static void
wake_worker_at_commit(void)
{
	if (shared == NULL)
		return;					/* not preloaded: there is no worker */
	if (!wake_callback_registered)
	{
		RegisterXactCallback(wake_xact_callback, NULL);
		wake_callback_registered = true;
	}
	wake_at_commit = true;
}

/*
 * iact._sync_wake_worker(): a statement trigger on iact.sync_tables and
 * iact.sync_requests.  A registration, a change of a table's settings or a
 * request wakes the worker when the transaction commits.
 */
Datum
iact_sync_wake_worker(PG_FUNCTION_ARGS)
{
	if (!CALLED_AS_TRIGGER(fcinfo))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("iact._sync_wake_worker() must be called as a trigger")));
	wake_worker_at_commit();
	return PointerGetDatum(NULL);
}

/* ---------------------------------------------------------------------
 * iact.request_sync(target_table text DEFAULT NULL)
 * ---------------------------------------------------------------------
 */
Datum
iact_request_sync(PG_FUNCTION_ARGS)
{
	int32		table_id = 0;
	pid_t		pid;
	bool		queued = true;

	if (shared == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("the iact sync worker is not available"),
				 errdetail("iact is not loaded through shared_preload_libraries."),
				 errhint("Add iact to shared_preload_libraries and restart, or use iact.sync_now().")));

	if (strcmp(get_database_name(MyDatabaseId), iact_database) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("the iact sync worker syncs database \"%s\", not this one", iact_database),
				 errhint("Call iact.request_sync() in that database, or use iact.sync_now() here.")));

	if (!PG_ARGISNULL(0))
	{
		Oid			types[1] = {TEXTOID};
		Datum		vals[1] = {PG_GETARG_DATUM(0)};
		bool		isnull;

		if (SPI_connect() != SPI_OK_CONNECT)
			elog(ERROR, "SPI_connect failed");
		/* iact._sync_table_id raises a clear error for an unknown table */
		if (SPI_execute_with_args("SELECT iact._sync_table_id($1)", 1, types, vals, NULL,
								  true, 1) != SPI_OK_SELECT || SPI_processed != 1)
			elog(ERROR, "could not look up the sync table");
		table_id = DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[0],
											   SPI_tuptable->tupdesc, 1, &isnull));
		/* 1.1: a row of iact.sync_requests, any number; the worker wakes at commit */
		if (OidIsValid(get_requests_relid()))
		{
			Oid			t[1] = {INT4OID};
			Datum		v[1] = {Int32GetDatum(table_id)};
			Oid			save_user;
			int			save_sec;
			int			nest;

			/* iact's bookkeeping, written as the registry's owner (as sync_security.c does) */
			GetUserIdAndSecContext(&save_user, &save_sec);
			SetUserIdAndSecContext(iact_sync_registry_owner(), save_sec | SECURITY_LOCAL_USERID_CHANGE);
			nest = iact_sync_pin_search_path();
			if (SPI_execute_with_args("INSERT INTO iact.sync_requests (table_id) VALUES ($1) "
									  "ON CONFLICT (table_id) DO NOTHING", 1, t, v, NULL,
									  false, 0) != SPI_OK_INSERT)
				elog(ERROR, "could not insert into iact.sync_requests");
			iact_sync_unpin_search_path(nest);
			SetUserIdAndSecContext(save_user, save_sec);
			table_id = -1;		/* queued in the table */
		}
		SPI_finish();
	}

	SpinLockAcquire(&shared->mutex);
	pid = shared->pid;
	if (table_id == 0)
		shared->request_all = true;
	else if (table_id > 0)
	{
		int			i;

		for (i = 0; i < shared->nrequests; i++)
			if (shared->requests[i] == table_id)
				break;
		if (i == shared->nrequests)
		{
			if (shared->nrequests < MAX_REQUESTS)
				shared->requests[shared->nrequests++] = table_id;
			else
				queued = false;
		}
	}
	if (pid != 0 && shared->latch)
		SetLatch(shared->latch);
	SpinLockRelease(&shared->mutex);

	if (!queued)
		ereport(ERROR,
				(errcode(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED),
				 errmsg("too many pending sync requests"),
				 errhint("Request all tables with iact.request_sync() instead.")));
	if (pid == 0)
		ereport(WARNING,
				(errmsg("the iact sync worker is not running right now"),
				 errdetail("The request stays queued until it starts (it does not run on a standby)."),
				 errhint("Check iact.database and the server log.")));
	PG_RETURN_BOOL(pid != 0);
}

/* ---------------------------------------------------------------------
 * The worker
 * ---------------------------------------------------------------------
 */

/* take the pending requests; returns true if all tables were requested */
static bool
take_requests(int32 *ids, int *n)
{
	bool		all;

	SpinLockAcquire(&shared->mutex);
	all = shared->request_all;
	*n = shared->nrequests;
	memcpy(ids, shared->requests, sizeof(int32) * shared->nrequests);
	shared->request_all = false;
	shared->nrequests = 0;
	SpinLockRelease(&shared->mutex);
	return all;
}

static void
worker_exit(int code, Datum arg)
{
	SpinLockAcquire(&shared->mutex);
	shared->pid = 0;
	shared->latch = NULL;
	SpinLockRelease(&shared->mutex);
}

/* Is iact installed in this database?  Runs in a transaction. */
static bool
extension_installed(void)
{
	bool		isnull;

	if (SPI_execute("SELECT count(*) FROM pg_catalog.pg_extension WHERE extname = 'iact'",
					true, 1) != SPI_OK_SELECT)
		return false;
	return DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull)) > 0;
}

/*
 * Runs left 'running' by a worker or session that died (crash, SIGKILL,
 * immediate shutdown) are over: mark them failed, unless their table's
 * lock shows that a live session is still running them.
 */
static void
mark_interrupted_runs(void)
{
	Datum	   *ids;
	int			n = 0;
	uint64		i;
	bool		isnull;
	Oid			argtypes[1] = {INT4ARRAYOID};
	Datum		args[1];

	if (SPI_execute("SELECT DISTINCT table_id FROM iact.sync_runs "
					"WHERE status OPERATOR(pg_catalog.=) 'running' AND table_id IS NOT NULL",
					true, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not read iact.sync_runs");
	ids = palloc(sizeof(Datum) * (SPI_processed + 1));
	for (i = 0; i < SPI_processed; i++)
	{
		int32		id = DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc,
													 1, &isnull));

		/* a table whose lock we get has no live run (the lock goes at commit) */
		if (iact_sync_lock_table(id, false))
			ids[n++] = Int32GetDatum(id);
	}
	args[0] = PointerGetDatum(construct_array(ids, n, INT4OID, 4, true, TYPALIGN_INT));
	SPI_execute_with_args("UPDATE iact.sync_runs SET status = 'failed', finished_at = pg_catalog.clock_timestamp(), "
						  "error = 'interrupted: the server restarted or the session running it ended' "
						  "WHERE status OPERATOR(pg_catalog.=) 'running' AND (table_id IS NULL OR "
						  "table_id OPERATOR(pg_catalog.=) ANY ($1))",
						  1, argtypes, args, NULL, false, 0);
	if (SPI_processed > 0)
		ereport(LOG,
				(errmsg("iact sync worker: marked %llu interrupted sync run(s) as failed",
						(unsigned long long) SPI_processed)));
}

/* one table to run in this pass of the loop */
typedef struct DueTable
{
	int32		id;
	char	   *name;
	const char *why;
	bool		queued;			/* a row of iact.sync_requests to take */
} DueTable;

/*
 * The tables to run now, in id order, with why: the requested ones (even a
 * disabled one: a row of iact.sync_requests, or an id of the 1.0 array),
 * then -- if scheduling is on, or all were requested -- the enabled ones that
 * are due (all of them if all were requested); any number of them, in the
 * caller's memory context.  Sets *next_in to the seconds until the next
 * enabled table is due.  The rules live in the view iact.sync_schedule
 * (src/sql/40_worker.sql), so what a DBA reads there is what the worker does.
 * Runs in a transaction, with SPI connected.
 */
static List *
tables_to_run(MemoryContext cxt, bool all, const int32 *requested, int nreq, double *next_in)
{
	List	   *due = NIL;
	uint64		i;
	bool		isnull;
	bool		has_queue = OidIsValid(get_requests_relid());

	/* logical-replication subscriber: replicated targets are not pulled (worker_replica.c) */
	List	   *replicated = iact_replicated_sync_tables();

	if (SPI_execute(has_queue ?
					"SELECT s.table_id, s.table_enabled, s.target_table, coalesce(pg_catalog.date_part('epoch', "
					"s.next_due_at OPERATOR(pg_catalog.-) pg_catalog.clock_timestamp())::pg_catalog.float8, 0), "
					"q.table_id IS NOT NULL FROM iact.sync_schedule s LEFT JOIN iact.sync_requests q "
					"ON q.table_id OPERATOR(pg_catalog.=) s.table_id ORDER BY s.table_id" :
					"SELECT table_id, table_enabled, target_table, coalesce(pg_catalog.date_part('epoch', "
					"next_due_at OPERATOR(pg_catalog.-) pg_catalog.clock_timestamp())::pg_catalog.float8, 0), "
					"false FROM iact.sync_schedule ORDER BY table_id",
					true, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not read iact.sync_schedule");

	*next_in = -1;
	for (i = 0; i < SPI_processed; i++)
	{
		HeapTuple	tup = SPI_tuptable->vals[i];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		int32		id = DatumGetInt32(SPI_getbinval(tup, desc, 1, &isnull));
		bool		enabled = DatumGetBool(SPI_getbinval(tup, desc, 2, &isnull));
		double		wait = DatumGetFloat8(SPI_getbinval(tup, desc, 4, &isnull));
		bool		queued = DatumGetBool(SPI_getbinval(tup, desc, 5, &isnull));
		bool		req = queued;
		const char *why;
		DueTable   *t;
		MemoryContext old;
		int			j;

		for (j = 0; j < nreq; j++)
			req |= (requested[j] == id);
		if (!req && list_member_int(replicated, id))
			continue;			/* replicated from a publisher (worker_replica.c) */
		if (req || (enabled && all))
			why = "requested";
		else if (enabled && iact_sync_enabled && wait <= 0)
			why = "scheduled";
		else
		{
			if (enabled && wait > 0 && (*next_in < 0 || wait < *next_in))
				*next_in = wait;
			continue;
		}
		old = MemoryContextSwitchTo(cxt);
		t = palloc(sizeof(DueTable));
		t->id = id;
		t->name = pstrdup(SPI_getvalue(tup, desc, 3));
		t->why = why;
		t->queued = queued;
		due = lappend(due, t);
		MemoryContextSwitchTo(old);
	}
	return due;
}

/* what pg_stat_activity shows the worker doing, printf-style (255 bytes at most) */
static void
set_activity(const char *fmt,...) pg_attribute_printf(1, 2);

static void
set_activity(const char *fmt,...)
{
	char		buf[256];
	va_list		ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	pgstat_report_activity(STATE_RUNNING, buf);
}

/*
 * Run one statement as a top-level command through a portal, the way
 * exec_simple_query does: a CALL run so is non-atomic, and the procedure
 * can commit (the engine commits each batch with its watermark).  Runs in
 * a memory context that outlives the transaction (the worker's pass).
 */
static void
execute_toplevel(const char *sql)
{
	/*
	 * like MessageContext: the plan must outlive the procedure's commits; a
	 * child of the caller's (the pass's) context, so that an error escaping
	 * the CALL does not leave it behind
	 */
	MemoryContext cxt = AllocSetContextCreate(CurrentMemoryContext, "iact sync worker call",
											  ALLOCSET_DEFAULT_SIZES);
	MemoryContext oldcxt = MemoryContextSwitchTo(cxt);
	List	   *parsetrees = pg_parse_query(sql);
	RawStmt    *raw;
	List	   *querytrees;
	List	   *plantrees;
	Portal		portal;
	DestReceiver *receiver;
	QueryCompletion qc;
	int16		format = 0;

	if (list_length(parsetrees) != 1)
		elog(ERROR, "expected one statement: %s", sql);
	raw = linitial_node(RawStmt, parsetrees);
	querytrees = pg_analyze_and_rewrite_fixedparams(raw, sql, NULL, 0, NULL);
	plantrees = pg_plan_queries(querytrees, sql, CURSOR_OPT_PARALLEL_OK, NULL);

	portal = CreatePortal("iact sync worker", true, true);
	portal->visible = false;
	PortalDefineQuery(portal, NULL, sql, CreateCommandTag(raw->stmt), plantrees, NULL);
	PortalStart(portal, NULL, 0, InvalidSnapshot);
	PortalSetResultFormat(portal, 1, &format);
	receiver = CreateDestReceiver(DestNone);
	InitializeQueryCompletion(&qc);
	(void) PortalRun(portal, FETCH_ALL, true, true, receiver, receiver, &qc);
	receiver->rDestroy(receiver);
	PortalDrop(portal, false);
	MemoryContextSwitchTo(oldcxt);
	MemoryContextDelete(cxt);
}

/*
 * One table, through CALL iact.sync_run(): the engine records the run and
 * its failures; an error that still escapes (its bookkeeping) is reported
 * here and the worker carries on.  A request of the table is taken in the
 * same transaction (committed with the run's first batch).  Returns in the
 * caller's memory context.
 */
static bool
run_table(DueTable *t)
{
	MemoryContext cxt = CurrentMemoryContext;
	bool		ok = true;

	set_activity("iact sync of %s (%s)", t->name, t->why);
	PG_TRY();
	{
		SetCurrentStatementStartTimestamp();
		StartTransactionCommand();
		if (t->queued)
		{
			Oid			types[1] = {INT4OID};
			Datum		vals[1] = {Int32GetDatum(t->id)};

			if (SPI_connect() != SPI_OK_CONNECT)
				elog(ERROR, "SPI_connect failed");
			PushActiveSnapshot(GetTransactionSnapshot());
			if (SPI_execute_with_args("DELETE FROM iact.sync_requests WHERE table_id OPERATOR(pg_catalog.=) $1",
									  1, types, vals, NULL, false, 0) != SPI_OK_DELETE)
				elog(ERROR, "could not take the request of %s", t->name);
			PopActiveSnapshot();
			SPI_finish();
		}
		MemoryContextSwitchTo(cxt);
		execute_toplevel(psprintf("CALL iact.sync_run(%s)", quote_literal_cstr(t->name)));
		MemoryContextSwitchTo(cxt);
		CommitTransactionCommand();
	}
	PG_CATCH();
	{
		MemoryContextSwitchTo(cxt);
		EmitErrorReport();
		FlushErrorState();
		AbortOutOfAnyTransaction();
		ok = false;
	}
	PG_END_TRY();
	MemoryContextSwitchTo(cxt);
	pgstat_report_activity(STATE_IDLE, NULL);
	return ok;
}

/*
 * Wait until iact.database can be connected to: a start-up that cannot
 * connect (the database is missing) ends in FATAL and the postmaster starts
 * the worker again, so wait longer at each start (10 s, 20 s, ... at most
 * 10 min) so that it never floods the log.
 */
static void
connect_database(void)
{
	int			failures;
	TimestampTz until;
	long		left;

	SpinLockAcquire(&shared->mutex);
	failures = shared->connect_failures++;
	SpinLockRelease(&shared->mutex);
	if (failures > 0)
	{
		long		delay_ms = Min(10000L << Min(failures - 1, 6), 600000L);

		ereport(failures == 1 ? LOG : DEBUG1,
				(errmsg("iact sync worker: could not connect to database \"%s\" at its last start; next try in %ld s",
						iact_database, delay_ms / 1000),
				 errhint("Create that database, or set iact.database and restart the server.")));
		until = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), delay_ms);
		while ((left = TimestampDifferenceMilliseconds(GetCurrentTimestamp(), until)) > 0)
		{
			(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
							 left, PG_WAIT_EXTENSION);
			ResetLatch(MyLatch);
			CHECK_FOR_INTERRUPTS();
		}
	}
	BackgroundWorkerInitializeConnection(iact_database, NULL, 0);
	SpinLockAcquire(&shared->mutex);
	shared->connect_failures = 0;
	SpinLockRelease(&shared->mutex);
}

/* the state the worker's loop keeps from one pass to the next */
typedef struct WorkerLoop
{
	bool		first;			/* no pass has found the extension yet */
	bool		warned_missing;
	bool		installed;
	double		next_in;		/* seconds until the next table is due, -1: none */
} WorkerLoop;

/*
 * One pass: read what is due (in one transaction), run it (a transaction per
 * table).  Returns true when the schedule should be looked at again at once.
 * Errors are the caller's.
 */
static bool
worker_pass(WorkerLoop *w, MemoryContext cxt, bool all, int32 *requested, int nreq)
{
	List	   *due = NIL;
	ListCell   *lc;
	bool		failed = false;

	w->next_in = -1;
	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	PushActiveSnapshot(GetTransactionSnapshot());
	w->installed = extension_installed();
	if (w->installed)
	{
		if (w->first)
			mark_interrupted_runs();
		w->first = false;
		w->warned_missing = false;
		due = tables_to_run(cxt, all, requested, nreq, &w->next_in);
	}
	else if (!w->warned_missing)
	{
		ereport(WARNING,
				(errmsg("iact sync worker: extension \"iact\" is not installed in database \"%s\"",
						iact_database),
				 errhint("Run CREATE EXTENSION iact in that database (the worker notices it by itself), "
						 "or set iact.database and restart.")));
		w->warned_missing = true;
	}
	PopActiveSnapshot();
	SPI_finish();
	CommitTransactionCommand();
	MemoryContextSwitchTo(cxt);

	foreach(lc, due)
	{
		CHECK_FOR_INTERRUPTS();
		failed |= !run_table((DueTable *) lfirst(lc));
	}
	if (due == NIL)
		return false;
	if (failed)
	{
		w->next_in = iact_sync_retry_delay;
		return false;
	}
	return true;				/* look again at once: the schedule moved */
}

/* the worker: in iact.database, runs the syncs due or requested, sleeping on its latch between */
void
iact_worker_main(Datum arg)
{
	WorkerLoop	w = {true, false, false, -1};
	MemoryContext cxt;
	volatile long error_delay_ms = 0;

	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();

	SpinLockAcquire(&shared->mutex);
	shared->pid = MyProcPid;
	shared->latch = &MyProc->procLatch;
	SpinLockRelease(&shared->mutex);
	on_shmem_exit(worker_exit, (Datum) 0);

	connect_database();
	/* also the setting, so what runs in the worker can tell where it runs */
	SetConfigOption("application_name", "iact sync worker", PGC_USERSET, PGC_S_SESSION);
	/*
	 * Every statement of the worker resolves names in pg_catalog only: the
	 * database's or a role's search_path setting cannot point it elsewhere.
	 */
	SetConfigOption("search_path", "pg_catalog, pg_temp", PGC_SUSET, PGC_S_SESSION);
	ereport(LOG, (errmsg("iact sync worker started in database \"%s\"", iact_database)));

	/* like pg_cron's loop: everything of one pass goes with the next reset */
	cxt = AllocSetContextCreate(TopMemoryContext, "iact sync worker loop", ALLOCSET_DEFAULT_SIZES);
	for (;;)
	{
		int32		requested[MAX_REQUESTS];
		int			nreq = 0;
		bool		all;
		volatile bool again = false;
		long		sleep_ms;

		MemoryContextReset(cxt);
		MemoryContextSwitchTo(cxt);
		CHECK_FOR_INTERRUPTS();
		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
		}

		all = take_requests(requested, &nreq);
		PG_TRY();
		{
			again = worker_pass(&w, cxt, all, requested, nreq);
			error_delay_ms = 0;
		}
		PG_CATCH();
		{
			/* logged, and tried again later: never a FATAL and a restart */
			MemoryContextSwitchTo(cxt);
			EmitErrorReport();
			FlushErrorState();
			AbortOutOfAnyTransaction();
			MemoryContextSwitchTo(cxt);
			if (all)
			{
				SpinLockAcquire(&shared->mutex);
				shared->request_all = true;
				SpinLockRelease(&shared->mutex);
			}
			error_delay_ms = error_delay_ms == 0 ? 1000L : Min(error_delay_ms * 2, 60000L);
		}
		PG_END_TRY();
		if (again)
			continue;

		pgstat_report_stat(true);
		if (error_delay_ms > 0)
			sleep_ms = error_delay_ms;
		else if (!w.installed)
			sleep_ms = 5 * 1000L;
		else if (!iact_sync_enabled || w.next_in < 0)
			sleep_ms = 60 * 1000L;
		else
			sleep_ms = Min((long) (w.next_in * 1000) + 1, 60 * 1000L);
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 sleep_ms, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
	}
}
