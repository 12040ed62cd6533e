/*-------------------------------------------------------------------------
 *
 * health.c
 *	  The C side of iact.health() and iact.metrics(): their settings.
 *
 * The checks and the Prometheus scrape are SQL (src/sql/70_health.sql): one
 * function per check, iact.health_report() running each in a subtransaction
 * of its own, one function per metrics section.  C is kept only where SQL
 * cannot do the job:
 *
 *  - the thresholds are GUCs, and only the module can define them (with
 *	  their ranges, units and defaults);
 *  - iact.health_settings() hands them, and the maintenance worker's
 *	  schedule, to the SQL checks as integers in base units.  Reading them
 *	  with current_setting() would fail in a session where the library is
 *	  not loaded yet (iact need not be preloaded for the SQL features, and
 *	  nothing else in a health() call loads it), would read a placeholder any
 *	  user may SET to any string before the load, and would return text with
 *	  units ('30min', '1TB') to parse again;
 *  - the entry points named by the frozen release 1.0 script, which a
 *	  database still at 1.0 calls until ALTER EXTENSION iact UPDATE
 *	  (iact_health and iact_metrics, at the end of this file).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "health.h"

#include <limits.h>

#include "access/htup_details.h"
#include "funcapi.h"
#include "lib/stringinfo.h"
#include "utils/builtins.h"
#include "utils/guc.h"

PG_FUNCTION_INFO_V1(iact_health_settings);
PG_FUNCTION_INFO_V1(iact_health);
PG_FUNCTION_INFO_V1(iact_metrics);

/* GUCs */
static int	health_connections_warn = 80;	/* percent of max_connections */
static int	health_connections_fail = 95;
static int	health_database_size_warn = 0;	/* MB, 0 = no limit */
static int	health_migration_warn_runtime = 1800;	/* seconds */
static int	health_migration_max_runtime = 3600;	/* seconds */
static int	health_audit_rows_warn = 0; /* audit entries per day, 0 = no limit */
static int	health_expected_role = 0;

static const struct config_enum_entry expected_role_options[] = {
	{"any", 0, false},
	{"primary", 1, false},
	{"standby", 2, false},
	{NULL, 0, false}
};

/* the iact.health_* settings; called from _PG_init */
void
iact_health_init(void)
{
	DefineCustomIntVariable("iact.health_connections_warn",
							"Connections in use, in percent of max_connections, from which iact.health() warns.",
							NULL, &health_connections_warn, 80, 1, 100,
							PGC_SUSET, 0, NULL, NULL, NULL);
	DefineCustomIntVariable("iact.health_connections_fail",
							"Connections in use, in percent of max_connections, from which iact.health() fails.",
							NULL, &health_connections_fail, 95, 1, 100,
							PGC_SUSET, 0, NULL, NULL, NULL);
	DefineCustomIntVariable("iact.health_database_size_warn",
							"Database size from which iact.health() warns.",
							"0 disables the limit.",
							&health_database_size_warn, 0, 0, INT_MAX,
							PGC_SUSET, GUC_UNIT_MB, NULL, NULL, NULL);
	DefineCustomIntVariable("iact.health_migration_warn_runtime",
							"How long a migration may stay RUNNING before iact.health() warns.",
							NULL, &health_migration_warn_runtime, 1800, 1, INT_MAX,
							PGC_SUSET, GUC_UNIT_S, NULL, NULL, NULL);
	DefineCustomIntVariable("iact.health_migration_max_runtime",
							"How long a migration may stay RUNNING before iact.health() fails.",
							NULL, &health_migration_max_runtime, 3600, 1, INT_MAX,
							PGC_SUSET, GUC_UNIT_S, NULL, NULL, NULL);
	DefineCustomIntVariable("iact.health_audit_rows_warn",
							"Audit entries written in the last 24 hours from which iact.health() warns.",
							"0 disables the limit.",
							&health_audit_rows_warn, 0, 0, INT_MAX,
							PGC_SUSET, 0, NULL, NULL, NULL);
	DefineCustomEnumVariable("iact.health_expected_role",
							 "Role this server should have: any, primary or standby; iact.health() fails on a mismatch.",
							 NULL, &health_expected_role, 0, expected_role_options,
							 PGC_SUSET, 0, NULL, NULL, NULL);
}

/*
 * iact.health_settings(): one row of the settings the SQL checks compare
 * with, in base units (MB, seconds, entries), as this session sees them.
 * The result type comes from the SQL declaration (OUT parameters, in the
 * order below).
 */
Datum
iact_health_settings(PG_FUNCTION_ARGS)
{
	TupleDesc	tupdesc;
	Datum		values[9];
	bool		nulls[9] = {false};

	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "iact.health_settings() must be declared with OUT parameters");
	if (tupdesc->natts != lengthof(values))
		elog(ERROR, "iact.health_settings() is declared with %d columns, expected %d",
			 tupdesc->natts, (int) lengthof(values));
	tupdesc = BlessTupleDesc(tupdesc);
	values[0] = Int32GetDatum(health_connections_warn);
	values[1] = Int32GetDatum(health_connections_fail);
	values[2] = Int32GetDatum(health_database_size_warn);
	values[3] = Int32GetDatum(health_migration_warn_runtime);
	values[4] = Int32GetDatum(health_migration_max_runtime);
	values[5] = Int32GetDatum(health_audit_rows_warn);
	/* the enum's values are the indexes of expected_role_options */
	values[6] = CStringGetTextDatum(expected_role_options[health_expected_role].name);
	values[7] = Int32GetDatum(iact_overlap_check_interval);
	values[8] = Int32GetDatum(iact_audit_retention);
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(tupdesc, values, nulls)));
}

/* ---------------------------------------------------------------------
 * Release 1.0's entry points
 *
 * iact--1.0.sql declares iact.health() and iact.metrics() as C functions
 * with these symbols; from 1.1 on they are SQL and these run only in a
 * database still at 1.0.  The checks read 1.1's objects (the SQL check
 * functions, iact.maintenance_runs), so rather than a second implementation
 * of every check they answer with one warning: update the extension.
 * ---------------------------------------------------------------------
 */

#define COMPAT_CHECK "extension_version"
#define COMPAT_DETAIL "iact 1.0 is installed in this database but the library is a later version: " \
	"run ALTER EXTENSION iact UPDATE to get the health checks"

/* iact.health() of a 1.0 database: the single row described above */
Datum
iact_health(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	Datum		values[4];
	bool		nulls[4] = {false, false, true, false};

	InitMaterializedSRF(fcinfo, 0);
	if (rsinfo->setDesc->natts != lengthof(values))
		elog(ERROR, "iact.health() is declared with %d columns, expected %d",
			 rsinfo->setDesc->natts, (int) lengthof(values));
	values[0] = CStringGetTextDatum(COMPAT_CHECK);
	values[1] = CStringGetTextDatum("warn");
	values[2] = (Datum) 0;
	values[3] = CStringGetTextDatum(COMPAT_DETAIL);
	tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	return (Datum) 0;
}

/* iact.metrics() of a 1.0 database: iact_up and that warning, as Prometheus text */
Datum
iact_metrics(PG_FUNCTION_ARGS)
{
	StringInfoData buf;

	initStringInfo(&buf);
	appendStringInfoString(&buf,
						   "# HELP iact_up 1: iact.metrics() answered.\n"
						   "# TYPE iact_up gauge\n"
						   "iact_up 1\n"
						   "# HELP iact_health_status Status of each iact.health() check: 0 ok, 1 warn, 2 fail.\n"
						   "# TYPE iact_health_status gauge\n"
						   "iact_health_status{check=\"" COMPAT_CHECK "\"} 1\n"
						   "# iact: " COMPAT_DETAIL "\n");
	PG_RETURN_TEXT_P(cstring_to_text_with_len(buf.data, buf.len));
}
