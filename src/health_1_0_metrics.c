/*-------------------------------------------------------------------------
 *
 * health_1_0_metrics.c
 *	  iact.metrics() of a database still at release 1.0 (see
 *	  health_1_0.c): iact's figures in Prometheus text exposition format.
 *
 * One call returns the whole scrape: every iact.health() check as
 * iact_health_status / iact_health_value (labelled by check and table), and
 * metrics of their own for what a dashboard graphs: connections, database
 * size, primary or standby, audit volume per table, sync runs per table.
 * Sections reading other features' tables run in subtransactions and are
 * left out (with a comment line saying why) when those tables are missing
 * or cannot be read, so a scrape never fails because of one feature.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "health_1_0.h"

#include <math.h>

#include "executor/spi.h"
#include "lib/stringinfo.h"
#include "utils/builtins.h"

PG_FUNCTION_INFO_V1(iact_metrics);

/* Prometheus escapes: label values \ " and newline; HELP text \ and newline */
static void
metrics_escaped(StringInfo buf, const char *s, bool label)
{
	for (; *s; s++)
	{
		if (*s == '\\')
			appendStringInfoString(buf, "\\\\");
		else if (*s == '\n')
			appendStringInfoString(buf, "\\n");
		else if (*s == '"' && label)
			appendStringInfoString(buf, "\\\"");
		else
			appendStringInfoChar(buf, *s);
	}
}

static void
metrics_family(StringInfo buf, const char *name, const char *type, const char *help)
{
	appendStringInfo(buf, "# HELP %s ", name);
	metrics_escaped(buf, help, false);
	appendStringInfo(buf, "\n# TYPE %s %s\n", name, type);
}

/* one sample: name{k1="v1",k2="v2"} value; labels as NULL-terminated key/value pairs */
static void
metrics_sample(StringInfo buf, const char *name, double value, const char *const *labels)
{
	appendStringInfoString(buf, name);
	if (labels && labels[0])
	{
		appendStringInfoChar(buf, '{');
		for (int i = 0; labels[i]; i += 2)
		{
			appendStringInfo(buf, "%s%s=\"", i > 0 ? "," : "", labels[i]);
			metrics_escaped(buf, labels[i + 1] ? labels[i + 1] : "", true);
			appendStringInfoChar(buf, '"');
		}
		appendStringInfoChar(buf, '}');
	}
	if (isnan(value))
		appendStringInfoString(buf, " NaN\n");
	else if (isinf(value))
		appendStringInfoString(buf, value > 0 ? " +Inf\n" : " -Inf\n");
	else if (value == floor(value) && fabs(value) < 1e15)
		appendStringInfo(buf, " %.0f\n", value);
	else
		appendStringInfo(buf, " %.17g\n", value);
}

static double
metrics_float(uint64 row, int col, bool *isnull)
{
	Datum		d = SPI_getbinval(SPI_tuptable->vals[row], SPI_tuptable->tupdesc, col, isnull);

	return *isnull ? 0 : DatumGetFloat8(d);
}

/*
 * One family from a query: every result row is a sample, the last column
 * (float8) its value, the others its label values named by labelnames.
 */
static void
metrics_from_query(StringInfo buf, const char *name, const char *type, const char *help,
				   const char *const *labelnames, int nlabels, const char *sql)
{
	int			rc = SPI_execute(sql, true, 0);

	if (rc != SPI_OK_SELECT)
		elog(ERROR, "SPI_execute failed (%s): %s", SPI_result_code_string(rc), sql);
	metrics_family(buf, name, type, help);
	for (uint64 i = 0; i < SPI_processed; i++)
	{
		const char *labels[2 * 4 + 1];
		bool		isnull;
		double		v = metrics_float(i, nlabels + 1, &isnull);

		Assert(nlabels <= 4);
		if (isnull)
			continue;
		for (int l = 0; l < nlabels; l++)
		{
			labels[2 * l] = labelnames[l];
			labels[2 * l + 1] = SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, l + 1);
		}
		labels[2 * nlabels] = NULL;
		metrics_sample(buf, name, v, labels);
	}
}

/* ---------------------------------------------------------------------
 * Sections
 * ---------------------------------------------------------------------
 */

typedef struct MetricsArgs
{
	StringInfo	buf;
	HealthReport *report;
} MetricsArgs;

static void
section_health(void *arg)
{
	MetricsArgs *a = arg;
	ListCell   *lc;
	static const char *const families[][3] = {
		{"iact_health_status", "gauge", "Status of each iact.health() check: 0 ok, 1 warn, 2 fail."},
		{"iact_health_value", "gauge", "Value of each iact.health() check (see iact.health() for its unit)."},
		{"iact_health_configured", "gauge", "1 when the feature a check reads is installed, 0 when it reports not configured."},
	};

	for (int f = 0; f < lengthof(families); f++)
	{
		metrics_family(a->buf, families[f][0], families[f][1], families[f][2]);
		foreach(lc, a->report->rows)
		{
			HealthRow  *row = lfirst(lc);
			const char *labels[] = {"check", row->check, row->label ? "table" : NULL, row->label, NULL};

			if (f == 0)
				metrics_sample(a->buf, families[f][0],
							   strcmp(row->status, "ok") == 0 ? 0 :
							   strcmp(row->status, "warn") == 0 ? 1 : 2, labels);
			else if (f == 1 && row->has_value)
				metrics_sample(a->buf, families[f][0], row->value, labels);
			else if (f == 2)
				metrics_sample(a->buf, families[f][0], row->not_configured ? 0 : 1, labels);
		}
	}
}

static void
section_server(void *arg)
{
	MetricsArgs *a = arg;
	static const char *const none[] = {NULL};

	metrics_from_query(a->buf, "iact_connections", "gauge",
					   "Client connections in use.", none, 0,
					   "SELECT count(*)::float8 FROM pg_catalog.pg_stat_activity"
					   " WHERE backend_type = 'client backend'");
	metrics_from_query(a->buf, "iact_max_connections", "gauge",
					   "The max_connections setting.", none, 0,
					   "SELECT pg_catalog.current_setting('max_connections')::float8");
	metrics_from_query(a->buf, "iact_database_size_bytes", "gauge",
					   "Size of the current database in bytes.", none, 0,
					   "SELECT pg_catalog.pg_database_size(pg_catalog.current_database())::float8");
	metrics_from_query(a->buf, "iact_is_standby", "gauge",
					   "1 when this server is a standby (in recovery), 0 on a primary.", none, 0,
					   "SELECT pg_catalog.pg_is_in_recovery()::integer::float8");
}

static void
section_audit(void *arg)
{
	MetricsArgs *a = arg;
	static const char *const none[] = {NULL};
	static const char *const per_table[] = {"table", "operation"};

	metrics_from_query(a->buf, "iact_audit_rows_written_total", "counter",
					   "Audit rows written (iact.audit_row inserts, from the cumulative statistics).",
					   none, 0,
					   "SELECT pg_catalog.pg_stat_get_tuples_inserted('\"iact\".\"audit_row\"'::pg_catalog.regclass)::float8");
	metrics_from_query(a->buf, "iact_audit_statements_written_total", "counter",
					   "Audited statements written (iact.audit_statement inserts, from the cumulative statistics).",
					   none, 0,
					   "SELECT pg_catalog.pg_stat_get_tuples_inserted('\"iact\".\"audit_statement\"'::pg_catalog.regclass)::float8");
	metrics_from_query(a->buf, "iact_audit_log_size_bytes", "gauge",
					   "On-disk size of the audit log (both tables, indexes and TOAST included).",
					   none, 0,
					   "SELECT (pg_catalog.pg_total_relation_size('\"iact\".\"audit_row\"')"
					   " + pg_catalog.pg_total_relation_size('\"iact\".\"audit_statement\"'))::float8");
	metrics_from_query(a->buf, "iact_audit_entries_last_day", "gauge",
					   "Audit entries recorded in the last 24 hours, per table and operation.",
					   per_table, 2,
					   "SELECT s.schema_name || '.' || s.table_name, s.operation,"
					   " sum(greatest(s.row_count, 1))::float8 FROM \"iact\".\"audit_statement\" s"
					   " WHERE s.\"timestamp\" > pg_catalog.now() - interval '1 day'"
					   " GROUP BY 1, 2 ORDER BY 1, 2");
}

static void
section_sync(void *arg)
{
	MetricsArgs *a = arg;
	static const char *const per_table[] = {"table"};
	static const char *const per_status[] = {"table", "status"};
	static const char *const per_op[] = {"table", "operation"};
	static const char *const none[] = {NULL};

	metrics_from_query(a->buf, "iact_sync_last_success_timestamp_seconds", "gauge",
					   "End of the last successful (or partial) sync run per table, Unix time.",
					   per_table, 1,
					   "SELECT r.target_table::text, extract(epoch FROM max(r.finished_at)"
					   " FILTER (WHERE r.status IN ('success', 'partial')))::float8"
					   " FROM \"iact\".\"sync_runs\" r GROUP BY 1 ORDER BY 1");
	metrics_from_query(a->buf, "iact_sync_registered_timestamp_seconds", "gauge",
					   "When each enabled table was registered for sync (iact.sync_tables.created_at), Unix time.",
					   per_table, 1,
					   "SELECT pg_catalog.format('%I.%I', t.target_schema, t.target_table),"
					   " extract(epoch FROM t.created_at)::float8"
					   " FROM \"iact\".\"sync_tables\" t WHERE t.enabled ORDER BY 1");
	metrics_from_query(a->buf, "iact_sync_interval_seconds", "gauge",
					   "The iact.sync_interval setting in seconds (6 hours when unset): a sync is stale beyond 2 intervals.",
					   none, 0,
					   "SELECT extract(epoch FROM coalesce(nullif(pg_catalog.current_setting("
					   "'iact.sync_interval', true), '')::interval, interval '6 hours'))::float8");
	metrics_from_query(a->buf, "iact_sync_rows_total", "counter",
					   "Rows handled by the sync runs kept in iact.sync_runs, per table and operation.",
					   per_op, 2,
					   "SELECT r.target_table::text, o.op, sum(CASE o.op WHEN 'read' THEN r.rows_read"
					   " WHEN 'inserted' THEN r.rows_inserted WHEN 'updated' THEN r.rows_updated"
					   " WHEN 'deleted' THEN r.rows_deleted WHEN 'rejected' THEN r.rows_rejected"
					   " ELSE r.rows_purged END)::float8"
					   " FROM \"iact\".\"sync_runs\" r CROSS JOIN (VALUES ('read'), ('inserted'), ('updated'),"
					   " ('deleted'), ('rejected'), ('purged')) o(op) GROUP BY 1, 2 ORDER BY 1, 2");
	metrics_from_query(a->buf, "iact_sync_runs_total", "counter",
					   "Sync runs kept in iact.sync_runs per table and status (purging the history resets it).",
					   per_status, 2,
					   "SELECT r.target_table::text, r.status::text, count(*)::float8"
					   " FROM \"iact\".\"sync_runs\" r GROUP BY 1, 2 ORDER BY 1, 2");
}

static void
section_migrations(void *arg)
{
	MetricsArgs *a = arg;
	static const char *const none[] = {NULL};
	static const char *const per_status[] = {"status"};

	metrics_from_query(a->buf, "iact_migration_running_oldest_age_seconds", "gauge",
					   "Seconds since the oldest migration still RUNNING started (0 when none is).",
					   none, 0,
					   "SELECT coalesce(extract(epoch FROM pg_catalog.now() - min(m.started_at)), 0)::float8"
					   " FROM \"iact\".\"migration_log\" m WHERE m.status = 'RUNNING'");
	metrics_from_query(a->buf, "iact_migration_log_entries", "gauge",
					   "Entries of iact.migration_log per status (applies: RUNNING, SUCCESS, FAILED; rollbacks: ROLLED_BACK, ROLLBACK_FAILED).",
					   per_status, 1,
					   "SELECT s.status, count(m.id)::float8"
					   " FROM (VALUES ('RUNNING'), ('SUCCESS'), ('FAILED'), ('ROLLED_BACK'), ('ROLLBACK_FAILED')) s(status)"
					   " LEFT JOIN \"iact\".\"migration_log\" m ON m.status = s.status GROUP BY 1 ORDER BY 1");
	metrics_from_query(a->buf, "iact_migration_last_success_timestamp_seconds", "gauge",
					   "End of the last successful migration (apply), Unix time.",
					   none, 0,
					   "SELECT extract(epoch FROM max(m.completed_at))::float8"
					   " FROM \"iact\".\"migration_log\" m WHERE m.status = 'SUCCESS'");
}

static void
section_maintenance(void *arg)
{
	MetricsArgs *a = arg;
	static const char *const none[] = {NULL};
	static const char *const per_task[] = {"task"};
	static const char *const per_status[] = {"task", "status"};
	const char *last_check = "FROM (SELECT m.* FROM \"iact\".\"maintenance_runs\" m"
		" WHERE m.task = 'overlap_check' AND m.status = 'success' ORDER BY m.id DESC LIMIT 1) l";

	metrics_from_query(a->buf, "iact_overlap_check_interval_seconds", "gauge",
					   "The iact.overlap_check_interval setting in seconds (0: no scheduled overlap check).",
					   none, 0, psprintf("SELECT %d::float8", iact_overlap_check_interval));
	metrics_from_query(a->buf, "iact_overlaps_found", "gauge",
					   "Overlapping pairs of events found by the last successful overlap check.",
					   none, 0, psprintf("SELECT l.overlaps_found::float8 %s", last_check));
	metrics_from_query(a->buf, "iact_overlap_check_last_success_timestamp_seconds", "gauge",
					   "End of the last successful overlap check, Unix time.",
					   none, 0, psprintf("SELECT extract(epoch FROM l.finished_at)::float8 %s", last_check));
	metrics_from_query(a->buf, "iact_overlap_check_duration_seconds", "gauge",
					   "Duration of the last successful overlap check.",
					   none, 0, psprintf("SELECT extract(epoch FROM l.finished_at - l.started_at)::float8 %s",
										 last_check));
	metrics_from_query(a->buf, "iact_maintenance_runs_total", "counter",
					   "Runs of the maintenance worker's tasks kept in iact.maintenance_runs, per task and status.",
					   per_status, 2,
					   "SELECT m.task, m.status, count(*)::float8 FROM \"iact\".\"maintenance_runs\" m"
					   " GROUP BY 1, 2 ORDER BY 1, 2");
	metrics_from_query(a->buf, "iact_maintenance_last_success_timestamp_seconds", "gauge",
					   "End of the last successful run of each maintenance task, Unix time.",
					   per_task, 1,
					   "SELECT m.task, extract(epoch FROM max(m.finished_at))::float8"
					   " FROM \"iact\".\"maintenance_runs\" m WHERE m.status = 'success' GROUP BY 1 ORDER BY 1");
	metrics_from_query(a->buf, "iact_audit_retention_seconds", "gauge",
					   "The iact.audit_retention setting in seconds (0: audit entries are kept forever).",
					   none, 0, psprintf("SELECT %d::float8", iact_audit_retention));
	metrics_from_query(a->buf, "iact_audit_purged_entries_total", "counter",
					   "Audit entries deleted by the retention runs kept in iact.maintenance_runs.",
					   none, 0,
					   "SELECT coalesce(sum(m.rows_purged), 0)::float8 FROM \"iact\".\"maintenance_runs\" m"
					   " WHERE m.task = 'audit_retention'");
}

/* a section that fails leaves a comment line instead of half its samples */
static void
metrics_run_section(MetricsArgs *a, const char *name, void (*section) (void *arg))
{
	int			start = a->buf->len;
	char	   *errmsg;

	if (!iact_health_try(section, a, &errmsg))
	{
		a->buf->len = start;
		a->buf->data[start] = '\0';
		appendStringInfo(a->buf, "# iact: %s metrics left out: ", name);
		metrics_escaped(a->buf, errmsg, false);
		appendStringInfoChar(a->buf, '\n');
	}
}

static bool
metrics_have(const char *regclass)
{
	bool		isnull;

	if (SPI_execute(psprintf("SELECT pg_catalog.to_regclass(%s) IS NOT NULL",
							 quote_literal_cstr(regclass)), true, 0) != SPI_OK_SELECT)
		elog(ERROR, "SPI_execute failed");
	return DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
}

Datum
iact_metrics(PG_FUNCTION_ARGS)
{
	StringInfoData buf;
	HealthReport report;
	MetricsArgs args = {&buf, &report};
	MemoryContext cxt = CurrentMemoryContext;
	text	   *result;

	initStringInfo(&buf);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	iact_health_collect(&report, cxt);
	metrics_family(&buf, "iact_up", "gauge", "1: iact.metrics() answered.");
	metrics_sample(&buf, "iact_up", 1, NULL);
	metrics_run_section(&args, "health", section_health);
	metrics_run_section(&args, "server", section_server);
	metrics_run_section(&args, "audit", section_audit);
	if (metrics_have("iact.migration_log"))
		metrics_run_section(&args, "migrations", section_migrations);
	else
		appendStringInfoString(&buf, "# iact: migrations not configured (iact.migration_log does not exist)\n");
	if (metrics_have("iact.maintenance_runs"))
		metrics_run_section(&args, "maintenance", section_maintenance);
	else
		appendStringInfoString(&buf, "# iact: maintenance not configured (iact.maintenance_runs does not exist)\n");
	if (metrics_have("iact.sync_runs"))
		metrics_run_section(&args, "sync", section_sync);
	else
		appendStringInfoString(&buf, "# iact: sync not configured (iact.sync_runs does not exist)\n");
	SPI_finish();
	result = cstring_to_text_with_len(buf.data, buf.len);
	PG_RETURN_TEXT_P(result);
}
