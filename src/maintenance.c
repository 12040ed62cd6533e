/*-------------------------------------------------------------------------
 *
 * maintenance.c
 *	  The maintenance worker: the overlap scan on its own schedule and the
 *	  audit trail's retention, so that a scrape never sorts every event and
 *	  the audit log needs no cron job.
 *
 * One static background worker per cluster, registered from _PG_init when
 * iact is in shared_preload_libraries, working in the database named by the
 * sync worker's setting iact.database.  Every iact.overlap_check_interval it
 * runs SELECT iact.check_overlaps_now() (src/sql/65_maintenance.sql), which
 * stores the count and a sample of the overlapping pairs in
 * iact.maintenance_runs; iact.health() and iact.metrics() read the last
 * result and its age.  When iact.audit_retention is set, every
 * iact.audit_purge_interval it deletes the audit entries older than that in
 * batches of iact.audit_purge_batch_size, one transaction per batch, and
 * records the run (rows purged, status, error) in the same table.  When
 * each task is next due is derived from the table, so a restart neither
 * repeats nor skips a run.
 *
 * A worker that cannot reach its database would end in FATAL at every
 * start, and one that starts without a database cannot connect to one
 * later.  So a static launcher (no database, like the autovacuum launcher)
 * checks that iact.database exists (saying once, and looking again every
 * 10 s, when it does not) and only then registers the worker as a dynamic
 * background worker connected to it; when the worker ends (terminated,
 * DROP DATABASE ... WITH (FORCE)) the launcher starts it again 5 s later,
 * and when the launcher ends it stops the worker.  Nothing exits at a
 * normal start, and a database created later is picked up without a
 * server restart.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "health.h"

#include <limits.h>

#include "access/heapam.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "catalog/pg_database.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/proc.h"
#include "tcop/tcopprot.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

PGDLLEXPORT void iact_maintenance_main(Datum arg);

/* GUCs (read by health.c too) */
int			iact_overlap_check_interval = 3600; /* seconds, 0 = off */
int			iact_audit_retention = 0;	/* seconds, 0 = keep everything */
int			iact_audit_purge_interval = 86400;	/* seconds */
static int	audit_purge_batch_size = 10000;

#define MAINT_RESTART_SECONDS 5
#define MAINT_NO_DATABASE_POLL_SECONDS 10

PGDLLEXPORT void iact_maintenance_launcher_main(Datum arg);

/*
 * The settings (always, so that iact.health() can read them in any session)
 * and, under shared_preload_libraries, the worker.  Must run after
 * iact_worker_init(), which defines iact.database.
 */
void
iact_maintenance_init(void)
{
	BackgroundWorker worker;

	DefineCustomIntVariable("iact.overlap_check_interval",
							"Time between two overlap scans of the maintenance worker.",
							"0 turns the scheduled scan off. Takes effect on reload.",
							&iact_overlap_check_interval, 3600, 0, INT_MAX / 1000,
							PGC_SIGHUP, GUC_UNIT_S, NULL, NULL, NULL);
	DefineCustomIntVariable("iact.audit_retention",
							"Age beyond which the maintenance worker deletes audit entries.",
							"0 (the default) keeps every entry. Takes effect on reload.",
							&iact_audit_retention, 0, 0, INT_MAX,
							PGC_SIGHUP, GUC_UNIT_S, NULL, NULL, NULL);
	DefineCustomIntVariable("iact.audit_purge_interval",
							"Time between two audit retention runs of the maintenance worker.",
							"Takes effect on reload.",
							&iact_audit_purge_interval, 86400, 1, INT_MAX / 1000,
							PGC_SIGHUP, GUC_UNIT_S, NULL, NULL, NULL);
	DefineCustomIntVariable("iact.audit_purge_batch_size",
							"Audit statements deleted per transaction by the retention runs.",
							"Takes effect on reload.",
							&audit_purge_batch_size, 10000, 1, 1000000,
							PGC_SIGHUP, 0, NULL, NULL, NULL);

	if (!process_shared_preload_libraries_in_progress)
		return;

	memset(&worker, 0, sizeof(worker));
	worker.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
	worker.bgw_start_time = BgWorkerStart_RecoveryFinished;
	worker.bgw_restart_time = MAINT_RESTART_SECONDS;
	snprintf(worker.bgw_library_name, BGW_MAXLEN, "iact");
	snprintf(worker.bgw_function_name, BGW_MAXLEN, "iact_maintenance_launcher_main");
	snprintf(worker.bgw_name, BGW_MAXLEN, "iact maintenance launcher");
	snprintf(worker.bgw_type, BGW_MAXLEN, "iact maintenance launcher");
	RegisterBackgroundWorker(&worker);
}

/* ---------------------------------------------------------------------
 * Small helpers
 * ---------------------------------------------------------------------
 */

static const char *
maintenance_database(void)
{
	const char *db = GetConfigOption("iact.database", true, false);

	return db ? db : "postgres";
}

/* sleep ms on the latch, interruptibly; reload the configuration on SIGHUP */
static void
maintenance_sleep(long ms)
{
	(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
					 ms, PG_WAIT_EXTENSION);
	ResetLatch(MyLatch);
	CHECK_FOR_INTERRUPTS();
	if (ConfigReloadPending)
	{
		ConfigReloadPending = false;
		ProcessConfigFile(PGC_SIGHUP);
	}
}

static void
maintenance_begin(void)
{
	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	PushActiveSnapshot(GetTransactionSnapshot());
}

static void
maintenance_commit(void)
{
	PopActiveSnapshot();
	SPI_finish();
	CommitTransactionCommand();
}

/* first column of the first row of a one-row query as int64 (NULL: -1) */
static int64
maintenance_int8(const char *sql, int nargs, Oid *types, Datum *values, bool read_only)
{
	bool		isnull;
	Datum		d;
	int			rc = SPI_execute_with_args(sql, nargs, types, values, NULL, read_only, 0);

	if (rc < 0 || SPI_processed != 1)
		elog(ERROR, "iact maintenance worker: query failed (%s): %s",
			 SPI_result_code_string(rc), sql);
	d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
	return isnull ? -1 : DatumGetInt64(d);
}

/*
 * Is there a database of that name?  A heap scan of pg_database, as the
 * autovacuum launcher does: without a database, only the nailed shared
 * catalogs can be opened (no index, no syscache).
 */
static bool
maintenance_database_exists(const char *db)
{
	Relation	rel;
	TableScanDesc scan;
	HeapTuple	tup;
	bool		found = false;

	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	(void) GetTransactionSnapshot();
	rel = table_open(DatabaseRelationId, AccessShareLock);
	scan = table_beginscan_catalog(rel, 0, NULL);
	while (!found && (tup = heap_getnext(scan, ForwardScanDirection)) != NULL)
		found = strcmp(NameStr(((Form_pg_database) GETSTRUCT(tup))->datname), db) == 0;
	table_endscan(scan);
	table_close(rel, AccessShareLock);
	CommitTransactionCommand();
	return found;
}

/* ---------------------------------------------------------------------
 * The launcher
 * ---------------------------------------------------------------------
 */

static BackgroundWorkerHandle *maint_worker = NULL;

/* the launcher's exit (SIGTERM, error) stops its worker: never two of them */
static void
maintenance_launcher_exit(int code, Datum arg)
{
	if (maint_worker != NULL)
		TerminateBackgroundWorker(maint_worker);
}

/*
 * Register the worker, connected to db.  When no slot is free: false, and a
 * WARNING the first time (*warned) until a registration succeeds again.
 */
static bool
maintenance_launch(const char *db, bool *warned)
{
	BackgroundWorker worker;

	memset(&worker, 0, sizeof(worker));
	worker.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
	worker.bgw_start_time = BgWorkerStart_RecoveryFinished;
	worker.bgw_restart_time = BGW_NEVER_RESTART;	/* the launcher does */
	worker.bgw_notify_pid = MyProcPid;
	snprintf(worker.bgw_library_name, BGW_MAXLEN, "iact");
	snprintf(worker.bgw_function_name, BGW_MAXLEN, "iact_maintenance_main");
	snprintf(worker.bgw_name, BGW_MAXLEN, "iact maintenance worker");
	snprintf(worker.bgw_type, BGW_MAXLEN, "iact maintenance worker");
	if (RegisterDynamicBackgroundWorker(&worker, &maint_worker))
	{
		*warned = false;
		return true;
	}
	maint_worker = NULL;
	if (!*warned)
		ereport(WARNING,
				(errcode(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED),
				 errmsg("iact maintenance launcher: could not start the maintenance worker for database \"%s\"", db),
				 errdetail("No background worker slot is free; trying again every minute."),
				 errhint("Raise max_worker_processes (server restart).")));
	*warned = true;
	return false;
}

/*
 * The static worker, without a database: while there is no worker, check
 * that iact.database exists and start one connected to it; when it ends,
 * start it again MAINT_RESTART_SECONDS later.  The postmaster sets our
 * latch when the worker starts or stops (bgw_notify_pid).
 */
void
iact_maintenance_launcher_main(Datum arg)
{
	const char *db;
	bool		said = false;
	bool		warned = false;
	TimestampTz ended_at = 0;

	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();
	BackgroundWorkerInitializeConnection(NULL, NULL, 0);
	before_shmem_exit(maintenance_launcher_exit, (Datum) 0);
	pgstat_report_appname("iact maintenance launcher");
	db = maintenance_database();

	for (;;)
	{
		long		sleep_ms = MAINT_NO_DATABASE_POLL_SECONDS * 1000L;
		pid_t		pid;

		if (maint_worker != NULL &&
			GetBackgroundWorkerPid(maint_worker, &pid) == BGWH_STOPPED)
		{
			pfree(maint_worker);
			maint_worker = NULL;
			ended_at = GetCurrentTimestamp();
		}
		if (maint_worker == NULL)
		{
			long		wait_ms = ended_at == 0 ? 0 :
				TimestampDifferenceMilliseconds(GetCurrentTimestamp(),
												TimestampTzPlusMilliseconds(ended_at, MAINT_RESTART_SECONDS * 1000L));

			if (wait_ms > 0)
				sleep_ms = wait_ms;
			else if (maintenance_database_exists(db))
			{
				(void) maintenance_launch(db, &warned);
				sleep_ms = 60 * 1000L;	/* or until the worker starts/stops */
				said = false;
			}
			else if (!said)
			{
				ereport(LOG,
						(errmsg("iact maintenance worker: database \"%s\" does not exist; looking again every %d s",
								db, MAINT_NO_DATABASE_POLL_SECONDS),
						 errhint("Create that database, or set iact.database and restart the server.")));
				said = true;
			}
		}
		else
			sleep_ms = 60 * 1000L;
		maintenance_sleep(sleep_ms);
	}
}

/* ---------------------------------------------------------------------
 * The tasks
 * ---------------------------------------------------------------------
 */

/*
 * Is iact 1.1 (with iact.maintenance_runs) installed here?  On the first
 * call, runs left 'running' by a worker that died are marked failed.
 */
static bool
maintenance_installed(bool *first)
{
	if (maintenance_int8("SELECT count(*) FROM pg_catalog.pg_extension WHERE extname = 'iact'",
						 0, NULL, NULL, true) == 0 ||
		maintenance_int8("SELECT (pg_catalog.to_regclass('iact.maintenance_runs') IS NOT NULL)::int4::int8",
						 0, NULL, NULL, true) == 0)
		return false;
	if (*first)
	{
		SPI_execute("UPDATE iact.maintenance_runs SET status = 'failed',"
					" finished_at = pg_catalog.clock_timestamp(),"
					" error = 'interrupted: the server restarted or the worker ended'"
					" WHERE status OPERATOR(pg_catalog.=) 'running'", false, 0);
		if (SPI_processed > 0)
			ereport(LOG,
					(errmsg("iact maintenance worker: marked %llu interrupted run(s) as failed",
							(unsigned long long) SPI_processed)));
		*first = false;
	}
	return true;
}

/* seconds until task is due again, every seconds after its last start (<= 0: now) */
static double
maintenance_due_in(const char *task, int every)
{
	Oid			types[2] = {TEXTOID, INT4OID};
	Datum		values[2] = {CStringGetTextDatum(task), Int32GetDatum(every)};
	int64		ms = maintenance_int8("SELECT (extract(epoch FROM max(r.started_at)"
									  " OPERATOR(pg_catalog.+) $2 * interval '1 second'"
									  " OPERATOR(pg_catalog.-) pg_catalog.clock_timestamp()) * 1000)::int8"
									  " FROM iact.maintenance_runs r WHERE r.task OPERATOR(pg_catalog.=) $1",
									  2, types, values, true);

	return ms == -1 ? 0 : ms / 1000.0;
}

/* run one statement in its own transaction; an error is logged, not fatal */
static bool
maintenance_run_statement(const char *sql, char **errmsg)
{
	MemoryContext cxt = CurrentMemoryContext;
	bool		ok = true;

	PG_TRY();
	{
		maintenance_begin();
		if (SPI_execute(sql, false, 0) < 0)
			elog(ERROR, "iact maintenance worker: statement failed: %s", sql);
		maintenance_commit();
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		MemoryContextSwitchTo(cxt);
		edata = CopyErrorData();
		EmitErrorReport();
		FlushErrorState();
		AbortOutOfAnyTransaction();
		if (errmsg)
			*errmsg = edata->message;
		ok = false;
	}
	PG_END_TRY();
	return ok;
}

static void
maintenance_overlap_check(void)
{
	pgstat_report_activity(STATE_RUNNING, "iact overlap check");
	(void) maintenance_run_statement("SELECT iact.check_overlaps_now()", NULL);
	pgstat_report_activity(STATE_IDLE, NULL);
}

/*
 * One audit retention run: a 'running' row first (committed), then batches
 * of iact.purge_audit_log(retention, batch size, 1), each committed with the
 * run's rows_purged, until a batch deletes nothing; then 'success', or
 * 'failed' with the error.
 */
static void
maintenance_audit_retention(void)
{
	int64		run_id;
	volatile int64 n;			/* set inside PG_TRY, read after it */
	char	   *errmsg = NULL;
	volatile bool ok;

	maintenance_begin();
	run_id = maintenance_int8("INSERT INTO iact.maintenance_runs (task, status, rows_purged)"
							  " VALUES ('audit_retention', 'running', 0) RETURNING id",
							  0, NULL, NULL, false);
	maintenance_commit();
	do
	{
		char	   *sql;

		CHECK_FOR_INTERRUPTS();
		pgstat_report_activity(STATE_RUNNING, "iact audit retention");
		sql = psprintf("WITH p AS (SELECT iact.purge_audit_log(%d * interval '1 second', %d, 1) AS n)"
					   " UPDATE iact.maintenance_runs r SET rows_purged = r.rows_purged OPERATOR(pg_catalog.+) p.n"
					   " FROM p WHERE r.id OPERATOR(pg_catalog.=) " INT64_FORMAT " RETURNING p.n",
					   iact_audit_retention, audit_purge_batch_size, run_id);
		n = 0;
		ok = false;
		PG_TRY();
		{
			maintenance_begin();
			n = maintenance_int8(sql, 0, NULL, NULL, false);
			maintenance_commit();
			ok = true;
		}
		PG_CATCH();
		{
			ErrorData  *edata;

			MemoryContextSwitchTo(TopMemoryContext);
			edata = CopyErrorData();
			EmitErrorReport();
			FlushErrorState();
			AbortOutOfAnyTransaction();
			errmsg = edata->message;
		}
		PG_END_TRY();
		pfree(sql);				/* allocated outside any transaction */
	} while (ok && n > 0);

	maintenance_begin();
	{
		Oid			types[2] = {INT8OID, TEXTOID};
		Datum		values[2] = {Int64GetDatum(run_id), ok ? (Datum) 0 : CStringGetTextDatum(errmsg)};
		char		nulls[2] = {' ', ok ? 'n' : ' '};

		if (SPI_execute_with_args("UPDATE iact.maintenance_runs SET finished_at = pg_catalog.clock_timestamp(),"
								  " status = CASE WHEN $2 IS NULL THEN 'success' ELSE 'failed' END, error = $2"
								  " WHERE id OPERATOR(pg_catalog.=) $1",
								  2, types, values, nulls, false, 0) != SPI_OK_UPDATE)
			elog(ERROR, "could not record the audit retention run");
	}
	maintenance_commit();
	pgstat_report_activity(STATE_IDLE, NULL);
}

/* ---------------------------------------------------------------------
 * The worker
 * ---------------------------------------------------------------------
 */

/*
 * One look at the schedule: run what is due, return the ms to sleep.
 * When iact appears only after the worker started (CREATE EXTENSION,
 * pg_restore), the tasks wait up to a minute (at most their interval)
 * before their first run.
 */
static long
maintenance_round(bool *first)
{
	static bool seen_missing = false;	/* iact was not installed at some round */
	static TimestampTz appeared_at = 0; /* when it then appeared */

	double		overlap_in = -1;
	double		purge_in = -1;
	double		next = 60;

	maintenance_begin();
	if (!maintenance_installed(first))
	{
		maintenance_commit();
		seen_missing = true;
		appeared_at = 0;
		return 10 * 1000L;
	}
	if (seen_missing)
	{
		/*
		 * iact was installed while we watched: perhaps by pg_restore, which
		 * fills iact.maintenance_runs later on.  Write nothing for a while,
		 * so that no run of ours takes an id the dump's rows carry.
		 */
		appeared_at = GetCurrentTimestamp();
		seen_missing = false;
	}
	if (appeared_at != 0)
	{
		int			quiet_s = 60;
		long		left;

		if (iact_overlap_check_interval > 0)
			quiet_s = Min(quiet_s, iact_overlap_check_interval);
		if (iact_audit_retention > 0)
			quiet_s = Min(quiet_s, iact_audit_purge_interval);
		left = TimestampDifferenceMilliseconds(GetCurrentTimestamp(),
											   TimestampTzPlusMilliseconds(appeared_at, quiet_s * 1000L));
		if (left > 0)
		{
			maintenance_commit();
			return left + 1;
		}
		appeared_at = 0;
	}
	if (iact_overlap_check_interval > 0)
		overlap_in = maintenance_due_in("overlap_check", iact_overlap_check_interval);
	if (iact_audit_retention > 0)
		purge_in = maintenance_due_in("audit_retention", iact_audit_purge_interval);
	maintenance_commit();

	if (iact_overlap_check_interval > 0 && overlap_in <= 0)
	{
		maintenance_overlap_check();
		overlap_in = iact_overlap_check_interval;
	}
	if (iact_audit_retention > 0 && purge_in <= 0)
	{
		maintenance_audit_retention();
		purge_in = iact_audit_purge_interval;
	}
	if (overlap_in > 0 && overlap_in < next)
		next = overlap_in;
	if (purge_in > 0 && purge_in < next)
		next = purge_in;
	return (long) (next * 1000) + 1;
}

/* a round that errors out is logged; the worker carries on a minute later */
static long
maintenance_round_safely(bool *first)
{
	MemoryContext cxt = CurrentMemoryContext;
	long		sleep_ms = 60 * 1000L;

	PG_TRY();
	{
		sleep_ms = maintenance_round(first);
	}
	PG_CATCH();
	{
		MemoryContextSwitchTo(cxt);
		EmitErrorReport();
		FlushErrorState();
		AbortOutOfAnyTransaction();
		pgstat_report_activity(STATE_IDLE, NULL);
	}
	PG_END_TRY();
	return sleep_ms;
}

/* the worker proper, started by the launcher, connected to iact.database */
void
iact_maintenance_main(Datum arg)
{
	bool		first = true;

	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();
	BackgroundWorkerInitializeConnection(maintenance_database(), NULL, 0);
	/* every internal statement resolves names in pg_catalog first */
	SetConfigOption("search_path", "pg_catalog, pg_temp", PGC_SUSET, PGC_S_OVERRIDE);
	pgstat_report_appname("iact maintenance worker");
	ereport(LOG, (errmsg("iact maintenance worker started in database \"%s\"",
						 maintenance_database())));

	for (;;)
	{
		long		sleep_ms;

		CHECK_FOR_INTERRUPTS();
		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
		}
		sleep_ms = maintenance_round_safely(&first);
		pgstat_report_stat(true);
		maintenance_sleep(sleep_ms);
	}
}
