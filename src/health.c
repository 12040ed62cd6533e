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
 *	  (iact_health and iact_metrics): 1.0's implementation, kept in
 *	  src/health_1_0.c and src/health_1_0_metrics.c.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "health.h"

#include <limits.h>

#include "access/htup_details.h"
#include "funcapi.h"
#include "utils/builtins.h"
#include "utils/guc.h"

PG_FUNCTION_INFO_V1(iact_health_settings);

/* GUCs (health.h) */
int			iact_health_connections_warn = 80;	/* percent of max_connections */
int			iact_health_connections_fail = 95;
int			iact_health_database_size_warn = 0; /* MB, 0 = no limit */
int			iact_health_migration_warn_runtime = 1800;	/* seconds */
int			iact_health_migration_max_runtime = 3600;	/* seconds */
int			iact_health_audit_rows_warn = 0;	/* audit entries per day, 0 = no limit */
int			iact_health_expected_role = 0;

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
							NULL, &iact_health_connections_warn, 80, 1, 100,
							PGC_SUSET, 0, NULL, NULL, NULL);
	DefineCustomIntVariable("iact.health_connections_fail",
							"Connections in use, in percent of max_connections, from which iact.health() fails.",
							NULL, &iact_health_connections_fail, 95, 1, 100,
							PGC_SUSET, 0, NULL, NULL, NULL);
	DefineCustomIntVariable("iact.health_database_size_warn",
							"Database size from which iact.health() warns.",
							"0 disables the limit.",
							&iact_health_database_size_warn, 0, 0, INT_MAX,
							PGC_SUSET, GUC_UNIT_MB, NULL, NULL, NULL);
	DefineCustomIntVariable("iact.health_migration_warn_runtime",
							"How long a migration may stay RUNNING before iact.health() warns.",
							NULL, &iact_health_migration_warn_runtime, 1800, 1, INT_MAX,
							PGC_SUSET, GUC_UNIT_S, NULL, NULL, NULL);
	DefineCustomIntVariable("iact.health_migration_max_runtime",
							"How long a migration may stay RUNNING before iact.health() fails.",
							NULL, &iact_health_migration_max_runtime, 3600, 1, INT_MAX,
							PGC_SUSET, GUC_UNIT_S, NULL, NULL, NULL);
	DefineCustomIntVariable("iact.health_audit_rows_warn",
							"Audit entries written in the last 24 hours from which iact.health() warns.",
							"0 disables the limit.",
							&iact_health_audit_rows_warn, 0, 0, INT_MAX,
							PGC_SUSET, 0, NULL, NULL, NULL);
	DefineCustomEnumVariable("iact.health_expected_role",
							 "Role this server should have: any, primary or standby; iact.health() fails on a mismatch.",
							 NULL, &iact_health_expected_role, 0, expected_role_options,
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
	values[0] = Int32GetDatum(iact_health_connections_warn);
	values[1] = Int32GetDatum(iact_health_connections_fail);
	values[2] = Int32GetDatum(iact_health_database_size_warn);
	values[3] = Int32GetDatum(iact_health_migration_warn_runtime);
	values[4] = Int32GetDatum(iact_health_migration_max_runtime);
	values[5] = Int32GetDatum(iact_health_audit_rows_warn);
	/* the enum's values are the indexes of expected_role_options */
	values[6] = CStringGetTextDatum(expected_role_options[iact_health_expected_role].name);
	values[7] = Int32GetDatum(iact_overlap_check_interval);
	values[8] = Int32GetDatum(iact_audit_retention);
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(tupdesc, values, nulls)));
}
