/*-------------------------------------------------------------------------
 *
 * health_metrics.c
 *	  iact.metrics(): iact's figures in Prometheus text exposition format.
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
#include "health.h"

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

	metrics_from_query(a->buf, "iact_sync_last_success_timestamp_seconds", "gauge",
					   "End of the last successful (or partial) sync run per table, Unix time.",
					   per_table, 1,
					   "SELECT r.target_table::text, extract(epoch FROM max(r.finished_at)"
					   " FILTER (WHERE r.status IN ('success', 'partial')))::float8"
					   " FROM \"iact\".\"sync_runs\" r GROUP BY 1 ORDER BY 1");
	metrics_from_query(a->buf, "iact_sync_runs_total", "counter",
					   "Sync runs kept in iact.sync_runs per table and status (purging the history resets it).",
					   per_status, 2,
					   "SELECT r.target_table::text, r.status::text, count(*)::float8"
					   " FROM \"iact\".\"sync_runs\" r GROUP BY 1, 2 ORDER BY 1, 2");
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
	if (metrics_have("iact.sync_runs"))
		metrics_run_section(&args, "sync", section_sync);
	else
		appendStringInfoString(&buf, "# iact: sync not configured (iact.sync_runs does not exist)\n");
	SPI_finish();
	result = cstring_to_text_with_len(buf.data, buf.len);
	PG_RETURN_TEXT_P(result);
}
