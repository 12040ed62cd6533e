/*-------------------------------------------------------------------------
 *
 * health_1_0.c
 *	  iact.health() of a database still at release 1.0: one row per
 *	  check, status ok / warn / fail.
 *
 * Release 1.0's script declares iact.health() and iact.metrics() as C
 * functions (symbols iact_health, iact_metrics); from 1.1 on they are SQL
 * (src/sql/70_health.sql) and this file, with health_1_0_metrics.c, serves
 * only databases not yet updated with ALTER EXTENSION iact UPDATE, so that
 * their monitoring keeps working between the library's upgrade and the
 * extension's.  It is 1.0's implementation as 1.1's library shipped it
 * before the checks moved to SQL; change it only to fix it.
 *
 * Each check is a small function appending rows to a HealthReport; it runs
 * in a subtransaction of its own, so a check that errors out (a table of
 * another feature with an unexpected shape, say) becomes one 'warn' row
 * saying why, and the other checks still run.  Checks of features that may
 * be absent (sync, migrations, maintenance) look their objects up at run time
 * with to_regclass and report "not configured" with status ok when they are
 * missing.  Every check reads small tables or one row through an index, so a
 * call stays cheap however many events there are: the overlap scan itself
 * runs in the maintenance worker (src/maintenance.c), and the checks read
 * its last result and age.  iact.metrics() (src/health_1_0_metrics.c) turns
 * the same report into Prometheus text.  The thresholds are the GUCs of
 * src/health.c.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "health_1_0.h"

#include <limits.h>

#include "access/xact.h"
#include "access/xlog.h"
#include "executor/spi.h"
#include "funcapi.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/memutils.h"

PG_FUNCTION_INFO_V1(iact_health);

/* ---------------------------------------------------------------------
 * The report
 * ---------------------------------------------------------------------
 */

static void
health_add(HealthReport *r, const char *check, const char *label, const char *status,
		   bool has_value, double value, const char *detail)
{
	MemoryContext oldcxt = MemoryContextSwitchTo(r->cxt);
	HealthRow  *row = palloc0(sizeof(HealthRow));

	row->check = pstrdup(check);
	row->label = label ? pstrdup(label) : NULL;
	row->status = status;
	row->has_value = has_value;
	row->value = value;
	row->detail = detail ? pstrdup(detail) : NULL;
	r->rows = lappend(r->rows, row);
	MemoryContextSwitchTo(oldcxt);
}


/* run a read-only query; its rows are in SPI_tuptable */
static void
health_query(const char *sql)
{
	int			rc = SPI_execute(sql, true, 0);

	if (rc != SPI_OK_SELECT)
		elog(ERROR, "SPI_execute failed (%s): %s", SPI_result_code_string(rc), sql);
}

/* column col (1-based) of result row row as float8; false when NULL */
static bool
health_float(int row, int col, double *out)
{
	bool		isnull;
	Datum		d = SPI_getbinval(SPI_tuptable->vals[row], SPI_tuptable->tupdesc, col, &isnull);

	if (isnull)
		return false;
	*out = DatumGetFloat8(d);
	return true;
}

static char *
health_text(int row, int col)
{
	return SPI_getvalue(SPI_tuptable->vals[row], SPI_tuptable->tupdesc, col);
}

/*
 * Is the feature a check reads installed: does the relation iact.<what>
 * exist, or (function) a function iact.<what> callable without arguments
 * (none, or all with defaults)?  When it does not, the check reports so
 * (status ok, no value) and the caller returns.
 */
static bool
health_installed(HealthReport *r, const char *check, const char *what, bool relation)
{
	char	   *sql = relation ?
		psprintf("SELECT pg_catalog.to_regclass(%s) IS NOT NULL",
				 quote_literal_cstr(psprintf("iact.%s", what))) :
		psprintf("SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_proc p"
				 " WHERE p.pronamespace = 'iact'::pg_catalog.regnamespace AND p.proname = %s"
				 " AND p.pronargs = p.pronargdefaults AND p.prokind = 'f')",
				 quote_literal_cstr(what));
	bool		isnull;

	health_query(sql);
	if (DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull)))
		return true;
	health_add(r, check, NULL, "ok", false, 0,
			   psprintf("not configured: iact.%s%s does not exist", what, relation ? "" : "()"));
	((HealthRow *) llast(r->rows))->not_configured = true;
	return false;
}

/* ---------------------------------------------------------------------
 * The checks
 * ---------------------------------------------------------------------
 */

static void
check_connections(HealthReport *r)
{
	double		used = 0;
	double		pct;

	health_query("SELECT count(*)::float8 FROM pg_catalog.pg_stat_activity"
				 " WHERE backend_type = 'client backend'");
	(void) health_float(0, 1, &used);
	pct = 100.0 * used / MaxConnections;
	health_add(r, "connections", NULL,
			   pct >= iact_health_connections_fail ? "fail" :
			   pct >= iact_health_connections_warn ? "warn" : "ok",
			   true, used,
			   psprintf("%.0f of max_connections %d in use (%.0f%%; warn at %d%%, fail at %d%%)",
						used, MaxConnections, pct, iact_health_connections_warn,
						iact_health_connections_fail));
}

static void
check_database_size(HealthReport *r)
{
	double		bytes = 0;
	double		limit = (double) iact_health_database_size_warn * 1024 * 1024;

	health_query("SELECT pg_catalog.pg_database_size(pg_catalog.current_database())::float8,"
				 " pg_catalog.pg_size_pretty(pg_catalog.pg_database_size(pg_catalog.current_database()))");
	(void) health_float(0, 1, &bytes);
	health_add(r, "database_size", NULL,
			   (limit > 0 && bytes > limit) ? "warn" : "ok", true, bytes,
			   limit > 0 ? psprintf("%s (warn above %d MB)", health_text(0, 2),
									iact_health_database_size_warn)
			   : psprintf("%s (no limit set)", health_text(0, 2)));
}

static void
check_server_role(HealthReport *r)
{
	bool		standby = RecoveryInProgress();
	bool		mismatch = (iact_health_expected_role == 1 && standby) ||
		(iact_health_expected_role == 2 && !standby);

	health_add(r, "server_role", NULL, mismatch ? "fail" : "ok", true, standby ? 1 : 0,
			   psprintf("%s%s", standby ? "standby (in recovery)" : "primary",
						mismatch ? psprintf(", but iact.health_expected_role is %s",
											standby ? "primary" : "standby") : ""));
}

static void
check_audit_growth(HealthReport *r)
{
	double		entries = 0;

	health_query("SELECT coalesce(sum(greatest(s.row_count, 1)), 0)::float8,"
				 " pg_catalog.pg_size_pretty(pg_catalog.pg_total_relation_size('\"iact\".\"audit_row\"')"
				 " + pg_catalog.pg_total_relation_size('\"iact\".\"audit_statement\"')),"
				 " (SELECT count(*) FROM \"iact\".\"audited_tables\")"
				 " FROM \"iact\".\"audit_statement\" s"
				 " WHERE s.\"timestamp\" > pg_catalog.now() - interval '1 day'");
	(void) health_float(0, 1, &entries);
	health_add(r, "audit_log_growth", NULL,
			   (iact_health_audit_rows_warn > 0 && entries > iact_health_audit_rows_warn) ? "warn" : "ok",
			   true, entries,
			   psprintf("%.0f entries in the last 24 hours%s; log size %s; %s table(s) audited",
						entries,
						iact_health_audit_rows_warn > 0 ?
						psprintf(" (warn above %d)", iact_health_audit_rows_warn) : "",
						health_text(0, 2), health_text(0, 3)));
}

/*
 * Partitions and inheritance children of audited tables whose own statements
 * are not audited (added after enable_audit): iact.audit_uncovered.
 */
static void
check_audit_uncovered(HealthReport *r)
{
	double		n = 0;

	if (!health_installed(r, "audit_uncovered", "audit_uncovered", true))
		return;
	health_query("SELECT count(*)::float8, string_agg(u.table_name::text || ' (of '"
				 " || u.audited_parent::text || ')', ', ' ORDER BY u.table_name::text)"
				 " FROM \"iact\".\"audit_uncovered\" u");
	(void) health_float(0, 1, &n);
	health_add(r, "audit_uncovered", NULL, n > 0 ? "warn" : "ok", true, n,
			   n > 0 ? psprintf("%.0f partition(s) or child table(s) of audited tables not audited: %s;"
								" run iact.enable_audit(parent) again", n, health_text(0, 2))
			   : "every partition and child table of the audited tables is audited");
}

/*
 * Age of the last successful (or partial) sync per table against
 * iact.sync_interval (6 hours when unset): warn beyond 2 intervals, fail
 * beyond 4 or when a table has runs but never a successful one.
 */
static void
check_sync_age(HealthReport *r)
{
	double		interval = 6 * 3600.0;

	if (!health_installed(r, "sync_last_success", "sync_runs", true))
		return;
	health_query("SELECT extract(epoch FROM coalesce(nullif(pg_catalog.current_setting("
				 "'iact.sync_interval', true), '')::interval, interval '6 hours'))::float8");
	(void) health_float(0, 1, &interval);
	/* a partial run synced all but its rejects (reported by sync_rejects) */
	health_query("SELECT r.target_table::text,"
				 " extract(epoch FROM pg_catalog.now() - max(r.finished_at)"
				 "   FILTER (WHERE r.status IN ('success', 'partial')))::float8,"
				 " max(r.finished_at) FILTER (WHERE r.status IN ('success', 'partial'))"
				 " FROM \"iact\".\"sync_runs\" r GROUP BY r.target_table ORDER BY 1");
	if (SPI_processed == 0)
	{
		health_add(r, "sync_last_success", NULL, "ok", false, 0, "no sync has run yet");
		return;
	}
	for (uint64 i = 0; i < SPI_processed; i++)
	{
		char	   *table = health_text(i, 1);
		double		age;

		if (!health_float(i, 2, &age))
			health_add(r, "sync_last_success", table, "fail", false, 0,
					   "no successful sync yet");
		else
			health_add(r, "sync_last_success", table,
					   age > 4 * interval ? "fail" : age > 2 * interval ? "warn" : "ok",
					   true, age,
					   psprintf("last success or partial run ended %s, %.0f s ago (interval %.0f s; warn beyond 2, fail beyond 4 intervals)",
								health_text(i, 3), age, interval));
	}
}

static void
check_sync_failures(HealthReport *r)
{
	double		failed = 0;

	if (!health_installed(r, "sync_failures", "sync_runs", true))
		return;
	health_query("SELECT count(*)::float8, string_agg(DISTINCT r.target_table::text, ', ')"
				 " FROM \"iact\".\"sync_runs\" r"
				 " WHERE r.status = 'failed' AND r.started_at > pg_catalog.now() - interval '1 day'");
	(void) health_float(0, 1, &failed);
	health_add(r, "sync_failures", NULL, failed > 0 ? "warn" : "ok", true, failed,
			   failed > 0 ? psprintf("%.0f failed sync run(s) in the last 24 hours: %s",
									 failed, health_text(0, 2))
			   : "no failed sync run in the last 24 hours");
}

/*
 * Rows rejected in the last day: by their own timestamp (rejected_at or
 * created_at) when the table has one, else by their run's start.
 */
static void
check_sync_rejects(HealthReport *r)
{
	double		rejects = 0;
	char	   *time_column;

	if (!health_installed(r, "sync_rejects", "sync_rejects", true))
		return;
	health_query("SELECT a.attname::text FROM pg_catalog.pg_attribute a"
				 " WHERE a.attrelid = '\"iact\".\"sync_rejects\"'::pg_catalog.regclass"
				 " AND a.attname IN ('rejected_at', 'created_at') AND NOT a.attisdropped"
				 " ORDER BY a.attname DESC LIMIT 1");
	time_column = SPI_processed > 0 ? health_text(0, 1) : NULL;
	health_query(time_column ?
				 psprintf("SELECT count(*)::float8 FROM \"iact\".\"sync_rejects\" j"
						  " WHERE j.%s > pg_catalog.now() - interval '1 day'",
						  quote_identifier(time_column)) :
				 "SELECT count(*)::float8 FROM \"iact\".\"sync_rejects\" j"
				 " JOIN \"iact\".\"sync_runs\" r ON r.id = j.run_id"
				 " WHERE r.started_at > pg_catalog.now() - interval '1 day'");
	(void) health_float(0, 1, &rejects);
	health_add(r, "sync_rejects", NULL, rejects > 0 ? "warn" : "ok", true, rejects,
			   psprintf("%.0f row(s) rejected by the sync in the last 24 hours", rejects));
}

/*
 * Migrations RUNNING for too long: warn beyond
 * iact.health_migration_warn_runtime, fail beyond
 * iact.health_migration_max_runtime.  The value counts those beyond the
 * warning threshold; the detail names them with their age.
 */
static void
check_migrations(HealthReport *r)
{
	double		warned = 0;
	double		failed = 0;

	if (!health_installed(r, "migrations_running", "migration_log", true))
		return;
	health_query(psprintf("SELECT count(*)::float8,"
						  " (count(*) FILTER (WHERE m.started_at < pg_catalog.now() - %d * interval '1 second'))::float8,"
						  " string_agg(m.version || ' (' || round(extract(epoch FROM pg_catalog.now() - m.started_at))"
						  "   || ' s)', ', ' ORDER BY m.started_at)"
						  " FROM \"iact\".\"migration_log\" m WHERE m.status = 'RUNNING'"
						  " AND m.started_at < pg_catalog.now() - %d * interval '1 second'",
						  iact_health_migration_max_runtime,
						  Min(iact_health_migration_warn_runtime, iact_health_migration_max_runtime)));
	(void) health_float(0, 1, &warned);
	(void) health_float(0, 2, &failed);
	health_add(r, "migrations_running", NULL,
			   failed > 0 ? "fail" : warned > 0 ? "warn" : "ok", true, warned,
			   warned > 0 ?
			   psprintf("RUNNING for longer than %d s: %s (warn beyond %d s, fail beyond %d s)",
						Min(iact_health_migration_warn_runtime, iact_health_migration_max_runtime), health_text(0, 3),
						iact_health_migration_warn_runtime, iact_health_migration_max_runtime) :
			   psprintf("no migration RUNNING for longer than %d s", iact_health_migration_warn_runtime));
}

/* FAILED applies and ROLLBACK_FAILED rollbacks that ended in the last 24 hours */
static void
check_migrations_failed(HealthReport *r)
{
	double		n = 0;

	if (!health_installed(r, "migrations_failed", "migration_log", true))
		return;
	health_query("SELECT count(*)::float8, string_agg(m.version || ' ' || m.status, ', ' ORDER BY m.id)"
				 " FROM \"iact\".\"migration_log\" m"
				 " WHERE m.status IN ('FAILED', 'ROLLBACK_FAILED')"
				 " AND coalesce(m.completed_at, m.started_at) > pg_catalog.now() - interval '1 day'");
	(void) health_float(0, 1, &n);
	health_add(r, "migrations_failed", NULL, n > 0 ? "fail" : "ok", true, n,
			   n > 0 ? psprintf("%.0f failed migration or rollback entr%s in the last 24 hours: %s",
								n, n == 1 ? "y" : "ies", health_text(0, 2))
			   : "no failed migration or rollback in the last 24 hours");
}

/*
 * The last overlap scan's result (iact.maintenance_runs, written by the
 * maintenance worker or iact.check_overlaps_now()): fail when it found
 * overlapping pairs.  Reads one row; never scans the events.
 */
static void
check_overlaps(HealthReport *r)
{
	double		n = 0;

	if (!health_installed(r, "overlaps", "maintenance_runs", true))
		return;
	health_query("SELECT m.overlaps_found::float8, m.finished_at::text,"
				 " (SELECT string_agg(p->>'person' || ': ' || (p->>'table_a') || ' ' || (p->>'id_a') || ' / '"
				 "   || (p->>'table_b') || ' ' || (p->>'id_b'), '; ')"
				 "   FROM jsonb_array_elements(m.overlaps_sample) WITH ORDINALITY AS s(p, i) WHERE s.i <= 3)"
				 " FROM \"iact\".\"maintenance_runs\" m"
				 " WHERE m.task = 'overlap_check' AND m.status = 'success' ORDER BY m.id DESC LIMIT 1");
	if (SPI_processed == 0)
	{
		health_add(r, "overlaps", NULL, "ok", false, 0,
				   "no overlap check has completed yet (see overlap_check_age)");
		return;
	}
	(void) health_float(0, 1, &n);
	health_add(r, "overlaps", NULL, n > 0 ? "fail" : "ok", true, n,
			   n > 0 ? psprintf("%.0f overlapping pair(s) of events found by the check of %s, e.g. %s;"
								" list them with SELECT * FROM iact.find_overlaps()",
								n, health_text(0, 2), health_text(0, 3)) :
			   psprintf("no overlapping events at the check of %s", health_text(0, 2)));
}

/*
 * Age of the last successful overlap scan: warn when there is none or it is
 * older than 2 x iact.overlap_check_interval (the maintenance worker is not
 * running, or its scans fail).  With the schedule off, ok.
 */
static void
check_overlap_check_age(HealthReport *r)
{
	double		age = 0;
	double		limit = 2.0 * iact_overlap_check_interval;
	char	   *last_failure;

	if (!health_installed(r, "overlap_check_age", "maintenance_runs", true))
		return;
	health_query("SELECT extract(epoch FROM pg_catalog.now() - (SELECT m.finished_at FROM \"iact\".\"maintenance_runs\" m"
				 "   WHERE m.task = 'overlap_check' AND m.status = 'success' ORDER BY m.id DESC LIMIT 1))::float8,"
				 " (SELECT m.finished_at::text || ': ' || m.error FROM \"iact\".\"maintenance_runs\" m"
				 "   WHERE m.task = 'overlap_check' AND m.status = 'failed' ORDER BY m.id DESC LIMIT 1)");
	last_failure = health_text(0, 2);
	if (!health_float(0, 1, &age))
		health_add(r, "overlap_check_age", NULL, iact_overlap_check_interval > 0 ? "warn" : "ok",
				   false, 0,
				   psprintf("no overlap check has completed yet%s%s; run SELECT iact.check_overlaps_now()%s",
							last_failure ? "; last failure " : "", last_failure ? last_failure : "",
							iact_overlap_check_interval > 0 ?
							" or check that the iact maintenance worker runs" :
							" (iact.overlap_check_interval is 0: no scheduled check)"));
	else
		health_add(r, "overlap_check_age", NULL,
				   (iact_overlap_check_interval > 0 && age > limit) ? "warn" : "ok", true, age,
				   iact_overlap_check_interval > 0 ?
				   psprintf("last overlap check completed %.0f s ago (interval %d s; warn beyond 2 intervals)%s%s",
							age, iact_overlap_check_interval,
							last_failure ? "; last failure " : "", last_failure ? last_failure : "") :
				   psprintf("last overlap check completed %.0f s ago (iact.overlap_check_interval is 0: no scheduled check)",
							age));
}

/* failed runs of the maintenance worker's tasks in the last 24 hours */
static void
check_maintenance_failures(HealthReport *r)
{
	double		n = 0;

	if (!health_installed(r, "maintenance_failures", "maintenance_runs", true))
		return;
	health_query("SELECT count(*)::float8, string_agg(m.task || ' at ' || m.started_at::text || ': ' || m.error,"
				 " '; ' ORDER BY m.id)"
				 " FROM \"iact\".\"maintenance_runs\" m"
				 " WHERE m.status = 'failed' AND m.started_at > pg_catalog.now() - interval '1 day'");
	(void) health_float(0, 1, &n);
	health_add(r, "maintenance_failures", NULL, n > 0 ? "warn" : "ok", true, n,
			   n > 0 ? psprintf("%.0f failed maintenance run(s) in the last 24 hours: %s", n, health_text(0, 2))
			   : "no failed maintenance run in the last 24 hours");
}

/* ---------------------------------------------------------------------
 * Running the checks
 * ---------------------------------------------------------------------
 */

typedef void (*HealthCheck) (HealthReport *r);

static const struct
{
	const char *name;
	HealthCheck fn;
}			health_checks[] =
{
	{"connections", check_connections},
	{"database_size", check_database_size},
	{"server_role", check_server_role},
	{"sync_last_success", check_sync_age},
	{"sync_failures", check_sync_failures},
	{"sync_rejects", check_sync_rejects},
	{"migrations_running", check_migrations},
	{"migrations_failed", check_migrations_failed},
	{"overlaps", check_overlaps},
	{"overlap_check_age", check_overlap_check_age},
	{"maintenance_failures", check_maintenance_failures},
	{"audit_log_growth", check_audit_growth},
	{"audit_uncovered", check_audit_uncovered},
};

/*
 * Run fn(arg) in a subtransaction.  Returns true when it succeeded; when it
 * raised an error, the subtransaction is rolled back (SPI state included)
 * and *errmsg is the error message.  Needs SPI connected.
 */
bool
iact_health_try(void (*fn) (void *arg), void *arg, char **errmsg)
{
	ErrorData  *edata = iact_try_subxact(fn, arg, CurrentMemoryContext, true);

	if (edata == NULL)
		return true;
	*errmsg = edata->message;
	return false;
}

typedef struct HealthCall
{
	HealthCheck fn;
	HealthReport *report;
} HealthCall;

static void
health_call_check(void *arg)
{
	HealthCall *call = arg;

	call->fn(call->report);
}

/* run one check; an error becomes a single 'warn' row saying why */
static void
health_run_check(HealthReport *r, const char *name, HealthCheck fn)
{
	int			nrows = list_length(r->rows);
	HealthCall	call = {fn, r};
	char	   *errmsg;

	if (!iact_health_try(health_call_check, &call, &errmsg))
	{
		r->rows = list_truncate(r->rows, nrows);
		health_add(r, name, NULL, "warn", false, 0, psprintf("check failed: %s", errmsg));
	}
}

/* every check, in a fixed order; rows allocated in cxt.  Needs SPI connected. */
void
iact_health_collect(HealthReport *r, MemoryContext cxt)
{
	r->cxt = cxt;
	r->rows = NIL;
	for (int i = 0; i < lengthof(health_checks); i++)
	{
		CHECK_FOR_INTERRUPTS();
		health_run_check(r, health_checks[i].name, health_checks[i].fn);
	}
}

/* check_name as shown by health(): "check" or "check:label" */
char *
iact_health_check_name(HealthRow *row)
{
	return row->label ? psprintf("%s:%s", row->check, row->label) : pstrdup(row->check);
}

Datum
iact_health(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	HealthReport report;
	ListCell   *lc;

	InitMaterializedSRF(fcinfo, 0);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	iact_health_collect(&report, rsinfo->econtext->ecxt_per_query_memory);
	foreach(lc, report.rows)
	{
		HealthRow  *row = lfirst(lc);
		Datum		values[4];
		bool		nulls[4] = {false, false, false, false};

		values[0] = CStringGetTextDatum(iact_health_check_name(row));
		values[1] = CStringGetTextDatum(row->status);
		if (row->has_value)
			values[2] = DirectFunctionCall1(float8_numeric, Float8GetDatum(row->value));
		else
			nulls[2] = true;
		if (row->detail)
			values[3] = CStringGetTextDatum(row->detail);
		else
			nulls[3] = true;
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	SPI_finish();
	return (Datum) 0;
}
