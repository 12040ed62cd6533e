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
 * Shared memory holds only the worker's latch and the pending requests.
 *
 *-------------------------------------------------------------------------
 */
#include "iact.h"

#include <limits.h>

#include "access/xact.h"
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
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"
#include "worker_replica.h"

PG_FUNCTION_INFO_V1(iact_request_sync);

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
		SPI_finish();
	}

	SpinLockAcquire(&shared->mutex);
	pid = shared->pid;
	if (table_id == 0)
		shared->request_all = true;
	else
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

/*
 * The tables to run now, in id order, with why: the requested ones (even a
 * disabled one), then -- if scheduling is on, or all were requested -- the
 * enabled ones that are due (all of them if all were requested).  Sets
 * *next_in to the seconds until the next enabled table is due.  The rules
 * live in the view iact.sync_schedule (src/sql/40_worker.sql), so what a DBA
 * reads there is what the worker does.
 */
static int
tables_to_run(char **names, const char **whys, int max, bool all,
			  const int32 *requested, int nreq, double *next_in)
{
	int			n = 0;
	uint64		i;
	bool		isnull;

	/* logical-replication subscriber: replicated targets are not pulled (worker_replica.c) */
	List	   *replicated = iact_replicated_sync_tables();

	if (SPI_execute("SELECT table_id, table_enabled, target_table, coalesce(pg_catalog.date_part('epoch', "
					"next_due_at OPERATOR(pg_catalog.-) pg_catalog.clock_timestamp())::pg_catalog.float8, 0) "
					"FROM iact.sync_schedule ORDER BY table_id",
					true, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not read iact.sync_schedule");

	*next_in = -1;
	for (i = 0; i < SPI_processed && n < max; i++)
	{
		HeapTuple	tup = SPI_tuptable->vals[i];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		int32		id = DatumGetInt32(SPI_getbinval(tup, desc, 1, &isnull));
		bool		enabled = DatumGetBool(SPI_getbinval(tup, desc, 2, &isnull));
		double		wait = DatumGetFloat8(SPI_getbinval(tup, desc, 4, &isnull));
		bool		req = false;
		int			j;

		for (j = 0; j < nreq; j++)
			req |= (requested[j] == id);
		if (!req && list_member_int(replicated, id))
			continue;			/* replicated from a publisher (worker_replica.c) */
		if (req || (enabled && all))
			whys[n] = "requested";
		else if (enabled && iact_sync_enabled && wait <= 0)
			whys[n] = "scheduled";
		else
		{
			if (enabled && wait > 0 && (*next_in < 0 || wait < *next_in))
				*next_in = wait;
			continue;
		}
		names[n++] = MemoryContextStrdup(TopMemoryContext, SPI_getvalue(tup, desc, 3));
	}
	return n;
}

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
 * can commit (the engine commits each batch with its watermark).
 */
static void
execute_toplevel(const char *sql)
{
	/* like MessageContext: the plan must outlive the procedure's commits */
	MemoryContext cxt = AllocSetContextCreate(TopMemoryContext, "iact sync worker call",
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
 * here and the worker carries on.
 */
static bool
run_table(const char *name, const char *why)
{
	MemoryContext cxt = CurrentMemoryContext;
	bool		ok = true;

	set_activity("iact sync of %s (%s)", name, why);
	PG_TRY();
	{
		SetCurrentStatementStartTimestamp();
		StartTransactionCommand();
		execute_toplevel(psprintf("CALL iact.sync_run(%s)", quote_literal_cstr(name)));
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
	pgstat_report_activity(STATE_IDLE, NULL);
	return ok;
}

void
iact_worker_main(Datum arg)
{
	bool		warned_missing = false;
	bool		first = true;
	int			failures;
	TimestampTz until;
	long		left;

	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();

	SpinLockAcquire(&shared->mutex);
	shared->pid = MyProcPid;
	shared->latch = &MyProc->procLatch;
	SpinLockRelease(&shared->mutex);
	on_shmem_exit(worker_exit, (Datum) 0);

	/*
	 * A start-up that cannot connect (iact.database missing) ends in FATAL
	 * and the postmaster starts the worker again: wait longer each time
	 * (10 s, 20 s, ... at most 10 min) so that it never floods the log.
	 */
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
	/* also the setting, so what runs in the worker can tell where it runs */
	SetConfigOption("application_name", "iact sync worker", PGC_USERSET, PGC_S_SESSION);
	/*
	 * Every statement of the worker resolves names in pg_catalog only: the
	 * database's or a role's search_path setting cannot point it elsewhere.
	 */
	SetConfigOption("search_path", "pg_catalog, pg_temp", PGC_SUSET, PGC_S_SESSION);
	ereport(LOG, (errmsg("iact sync worker started in database \"%s\"", iact_database)));

	for (;;)
	{
		char	   *names[MAX_REQUESTS];
		const char *whys[MAX_REQUESTS];
		int32		requested[MAX_REQUESTS];
		int			n = 0;
		int			nreq = 0;
		bool		all;
		bool		installed;
		double		next_in = -1;
		long		sleep_ms;
		int			i;

		CHECK_FOR_INTERRUPTS();
		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
		}

		all = take_requests(requested, &nreq);

		SetCurrentStatementStartTimestamp();
		StartTransactionCommand();
		SPI_connect();
		PushActiveSnapshot(GetTransactionSnapshot());
		installed = extension_installed();
		if (installed)
		{
			if (first)
				mark_interrupted_runs();
			first = false;
			warned_missing = false;
			n = tables_to_run(names, whys, MAX_REQUESTS, all, requested, nreq, &next_in);
		}
		else if (!warned_missing)
		{
			ereport(WARNING,
					(errmsg("iact sync worker: extension \"iact\" is not installed in database \"%s\"",
							iact_database),
					 errhint("Run CREATE EXTENSION iact in that database, or set iact.database and restart.")));
			warned_missing = true;
		}
		PopActiveSnapshot();
		SPI_finish();
		CommitTransactionCommand();

		if (n > 0)
		{
			bool		failed = false;

			for (i = 0; i < n; i++)
			{
				CHECK_FOR_INTERRUPTS();
				failed |= !run_table(names[i], whys[i]);
				pfree(names[i]);
			}
			if (!failed)
				continue;		/* look again at once: the schedule moved */
			next_in = iact_sync_retry_delay;
		}

		pgstat_report_stat(true);
		if (!installed)
			sleep_ms = 10 * 1000L;
		else if (!iact_sync_enabled || next_in < 0)
			sleep_ms = 60 * 1000L;
		else
			sleep_ms = Min((long) (next_in * 1000) + 1, 60 * 1000L);
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 sleep_ms, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
	}
}
