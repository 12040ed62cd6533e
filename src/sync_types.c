/*-------------------------------------------------------------------------
 *
 * sync_types.c
 *	  The sync's type rules: which PostgreSQL type a MariaDB column gets when
 *	  iact creates the target, and how one MariaDB text-protocol value becomes
 *	  a PostgreSQL Datum (zero dates, tinyint(1)/bit(1) booleans, sets, binary
 *	  values, NUL bytes and invalid UTF-8).
 *
 * Conversion never throws for the problems it knows (it returns a reason so
 * the row goes to iact.sync_rejects); the type input function it calls last
 * may throw (out-of-range numbers, impossible dates, a narrower existing
 * target column), and the engine catches that per batch.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "sync.h"

#include <ctype.h>

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "mb/pg_wchar.h"
#include "parser/parse_coerce.h"
#include "utils/array.h"
#include "utils/datetime.h"
#include "utils/date.h"
#include "utils/timestamp.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"

/* "decimal(12,4) unsigned" -> 12, 4 */
static bool
parse_precision(const char *column_type, int *p, int *s)
{
	const char *paren = strchr(column_type, '(');

	*p = -1;
	*s = 0;
	if (paren == NULL)
		return false;
	if (sscanf(paren, "(%d,%d)", p, s) >= 1)
		return true;
	return false;
}

/*
 * The PostgreSQL type for a MariaDB column, or NULL when there is no rule
 * (the caller then refuses to create the target).
 */
const char *
iact_sync_map_type(const char *data_type, const char *column_type,
				   bool tinyint1_as_boolean)
{
	bool		is_unsigned = strstr(column_type, "unsigned") != NULL;
	int			p,
				s;

	if (strcmp(data_type, "tinyint") == 0)
	{
		if (tinyint1_as_boolean && !is_unsigned &&
			strncmp(column_type, "tinyint(1)", 10) == 0)
			return "boolean";
		return "smallint";
	}
	if (strcmp(data_type, "smallint") == 0)
		return is_unsigned ? "integer" : "smallint";
	if (strcmp(data_type, "mediumint") == 0)
		return "integer";
	if (strcmp(data_type, "int") == 0 || strcmp(data_type, "integer") == 0)
		return is_unsigned ? "bigint" : "integer";
	if (strcmp(data_type, "bigint") == 0)
		return is_unsigned ? "numeric(20,0)" : "bigint";
	if (strcmp(data_type, "decimal") == 0 || strcmp(data_type, "numeric") == 0)
	{
		if (parse_precision(column_type, &p, &s) && p > 0 && p <= 1000)
			return psprintf("numeric(%d,%d)", p, s);
		return "numeric";
	}
	if (strcmp(data_type, "float") == 0)
		return "real";
	if (strcmp(data_type, "double") == 0 || strcmp(data_type, "real") == 0)
		return "double precision";
	if (strcmp(data_type, "bit") == 0)
		return (strcmp(column_type, "bit(1)") == 0) ? "boolean" : "bigint";
	if (strcmp(data_type, "date") == 0)
		return "date";
	if (strcmp(data_type, "datetime") == 0 || strcmp(data_type, "timestamp") == 0)
	{
		const char *base = data_type[0] == 'd' ? "timestamp" : "timestamptz";

		if (parse_precision(column_type, &p, &s) && p >= 0 && p <= 6)
			return psprintf("%s(%d)", base, p);
		return psprintf("%s(0)", base);
	}
	if (strcmp(data_type, "time") == 0)
		return "interval";
	if (strcmp(data_type, "year") == 0)
		return "integer";
	if (strcmp(data_type, "char") == 0 || strcmp(data_type, "varchar") == 0 ||
		strcmp(data_type, "tinytext") == 0 || strcmp(data_type, "text") == 0 ||
		strcmp(data_type, "mediumtext") == 0 || strcmp(data_type, "longtext") == 0 ||
		strcmp(data_type, "enum") == 0)
		return "text";
	if (strcmp(data_type, "binary") == 0 || strcmp(data_type, "varbinary") == 0 ||
		strcmp(data_type, "tinyblob") == 0 || strcmp(data_type, "blob") == 0 ||
		strcmp(data_type, "mediumblob") == 0 || strcmp(data_type, "longblob") == 0)
		return "bytea";
	if (strcmp(data_type, "set") == 0)
		return "text[]";
	if (strcmp(data_type, "json") == 0)
		return "jsonb";
	return NULL;
}

/* how a value of this source type goes into this target type */
/* a MariaDB numeric DATA_TYPE (exactly: "point" is not an int) */
static bool
is_numeric_source(const char *dt)
{
	static const char *const numeric[] = {"tinyint", "smallint", "mediumint", "int", "integer",
	"bigint", "decimal", "float", "double", NULL};
	int			i;

	for (i = 0; numeric[i] != NULL; i++)
		if (strcmp(dt, numeric[i]) == 0)
			return true;
	return false;
}

void
iact_sync_column_prepare(SyncColumn *col)
{
	const char *dt = col->src_data_type;
	Oid			infunc;

	if (strcmp(dt, "date") == 0 || strcmp(dt, "datetime") == 0 ||
		strcmp(dt, "timestamp") == 0)
		col->kind = (col->typid != TIMESTAMPTZOID) ? SYNC_KIND_DATE :
			(col->src_tz != NULL && strcmp(dt, "timestamp") != 0) ? SYNC_KIND_DATE_LOCAL :
			SYNC_KIND_DATE_UTC;
	else if (strcmp(dt, "year") == 0)
		col->kind = SYNC_KIND_YEAR;
	else if (strcmp(dt, "bit") == 0)
		col->kind = SYNC_KIND_BIT;
	else if (strcmp(dt, "tinyint") == 0 && col->typid == BOOLOID)
		col->kind = SYNC_KIND_BOOL_INT;
	else if (strcmp(dt, "set") == 0 && col->typid == TEXTARRAYOID)
		col->kind = SYNC_KIND_SET;
	else if (col->typid == BYTEAOID)
		col->kind = SYNC_KIND_BYTEA;
	else if (is_numeric_source(dt) &&
			 TypeCategory(getBaseType(col->typid)) == TYPCATEGORY_NUMERIC)
		col->kind = SYNC_KIND_NUMBER;	/* no text checks needed */
	else
		col->kind = SYNC_KIND_TEXT;

	getTypeInputInfo(col->typid, &infunc, &col->ioparam);
	fmgr_info_cxt(infunc, &col->inflinfo, CurrentMemoryContext);
	/* a NULL never reaches a domain's input function: its constraints are checked apart */
	col->is_domain = get_typtype(col->typid) == TYPTYPE_DOMAIN;
	col->domain_extra = NULL;
	col->domain_cxt = CurrentMemoryContext;
}

/* is this a well-formed text value; else why not (NULL when fine) */
static const char *
text_problem(const char *raw, unsigned long len)
{
	if (memchr(raw, '\0', len) != NULL)
		return "NUL byte in a text value";
	if (!pg_verify_mbstr(PG_UTF8, raw, (int) len, true))
		return "invalid UTF-8";
	return NULL;
}

/* n digits at s as an integer, or -1 */
static int
digits(const char *s, int n)
{
	int			v = 0;

	while (n-- > 0)
	{
		if (*s < '0' || *s > '9')
			return -1;
		v = v * 10 + (*s++ - '0');
	}
	return v;
}

/*
 * The common MariaDB forms 'YYYY-MM-DD' and 'YYYY-MM-DD HH:MM:SS[.ffffff]'
 * straight into a date / timestamp(tz) (UTC), without the general parser.
 * Returns false for anything else (the type's input function then decides).
 */
static bool
fast_datetime(SyncColumn *col, const char *s, unsigned long len, Datum *value)
{
	int			y,
				mo,
				d,
				h = 0,
				mi = 0,
				sec = 0;
	int			jd,
				y2,
				m2,
				d2;
	int64		usec = 0;

	if (len < 10 || s[4] != '-' || s[7] != '-' ||
		(y = digits(s, 4)) < 1 || (mo = digits(s + 5, 2)) < 1 || mo > 12 ||
		(d = digits(s + 8, 2)) < 1)
		return false;
	if (len > 10)
	{
		unsigned long i;
		int			scale = 100000;

		if (len < 19 || s[10] != ' ' || s[13] != ':' || s[16] != ':' ||
			(h = digits(s + 11, 2)) < 0 || h > 23 || (mi = digits(s + 14, 2)) < 0 || mi > 59 ||
			(sec = digits(s + 17, 2)) < 0 || sec > 59)
			return false;
		if (len > 19)
		{
			if (s[19] != '.' || len > 26 || len == 20)
				return false;
			for (i = 20; i < len; i++, scale /= 10)
			{
				if (s[i] < '0' || s[i] > '9')
					return false;
				usec += (s[i] - '0') * scale;
			}
		}
	}
	jd = date2j(y, mo, d);
	j2date(jd, &y2, &m2, &d2);
	if (y2 != y || m2 != mo || d2 != d)
		return false;			/* 2024-02-31 and the like */

	if (col->typid == DATEOID && len == 10)
	{
		*value = DateADTGetDatum(jd - POSTGRES_EPOCH_JDATE);
		return true;
	}
	if (col->typid == TIMESTAMPOID || col->typid == TIMESTAMPTZOID)
	{
		Timestamp	ts = (int64) (jd - POSTGRES_EPOCH_JDATE) * USECS_PER_DAY +
			((int64) ((h * 60 + mi) * 60 + sec)) * USECS_PER_SEC + usec;

		AdjustTimestampForTypmod(&ts, col->typmod);
		*value = TimestampGetDatum(ts);
		return true;
	}
	return false;
}

static Datum
input_value(SyncColumn *col, char *str)
{
	return InputFunctionCall(&col->inflinfo, str, col->ioparam, col->typmod);
}

/*
 * A local time skipped by a spring-forward change (result: its reading with
 * the offset before the change, `local` its wall-clock value) becomes the
 * instant of the change.  PostgreSQL's reading puts 02:30 (skipped) after
 * 03:10 (real) as instants; the change's instant keeps the order of local
 * times, so a range of local times read on MariaDB and the same range of
 * instants in the target hold the same rows (the count check).  Other times
 * are returned unchanged.
 */
static TimestampTz
clamp_skipped(TimestampTz result, Timestamp local, pg_tz *zone)
{
	struct pg_tm back;
	fsec_t		bfsec;
	int			btz;
	Timestamp	again;
	pg_time_t	from;
	pg_time_t	boundary;
	long int	before_off,
				after_off;
	int			before_dst,
				after_dst;

	if (timestamp2tm(result, &btz, &back, &bfsec, NULL, zone) != 0 ||
		tm2timestamp(&back, bfsec, NULL, &again) != 0 || again <= local)
		return result;
	/* skipped: the change lies between result - (again - local) and result */
	from = timestamptz_to_time_t(result - (again - local)) - 1;
	if (pg_next_dst_boundary(&from, &before_off, &before_dst, &boundary,
							 &after_off, &after_dst, zone) != 1)
		return result;
	return time_t_to_timestamptz(boundary);
}

/*
 * A date or datetime written in the wall-clock time of the server's
 * source_time_zone, as a timestamptz: the zone's UTC offset at that local
 * time, by PostgreSQL's own rule (DetermineTimeZoneOffset): a time repeated
 * at a fall-back change is the later instant (after the change); a time
 * skipped by a spring-forward change (only wrong data has one) is the
 * instant of the change (clamp_skipped).
 */
static Datum
local_datetime(SyncColumn *col, char *raw, unsigned long len)
{
	Datum		local;
	struct pg_tm tm;
	fsec_t		fsec;
	int			tz;
	TimestampTz result;

	if (!fast_datetime(col, raw, len, &local))
	{
		/* an unusual form: the type's input, told the zone */
		char	   *s = psprintf("%s %s", raw, col->src_tz_name);

		return input_value(col, s);
	}
	if (TIMESTAMP_NOT_FINITE(DatumGetTimestamp(local)) ||
		timestamp2tm(DatumGetTimestamp(local), NULL, &tm, &fsec, NULL, NULL) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_DATETIME_VALUE_OUT_OF_RANGE),
				 errmsg("timestamp out of range: \"%s\"", raw)));
	tz = DetermineTimeZoneOffset(&tm, col->src_tz);
	if (tm2timestamp(&tm, fsec, &tz, &result) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_DATETIME_VALUE_OUT_OF_RANGE),
				 errmsg("timestamp out of range: \"%s\"", raw)));
	result = clamp_skipped(result, DatumGetTimestamp(local), col->src_tz);
	AdjustTimestampForTypmod(&result, col->typmod);
	return TimestampTzGetDatum(result);
}

static char *
server_string(char *raw, unsigned long len)
{
	if (GetDatabaseEncoding() == PG_UTF8)
		return raw;
	return pg_any_to_server(raw, (int) len, PG_UTF8);
}

/* bit(n): raw big-endian bytes, as a boolean or through the type's input */
static Datum
convert_bit(SyncColumn *col, const char *raw, unsigned long len)
{
	uint64		v = 0;
	unsigned long i;
	char		buf[32];

	for (i = 0; i < len; i++)
		v = (v << 8) | (unsigned char) raw[i];
	if (col->typid == BOOLOID)
		return BoolGetDatum(v != 0);
	snprintf(buf, sizeof(buf), UINT64_FORMAT, v);
	return input_value(col, buf);
}

/* 'a,b' -> {a,b}: NULL and *value set, or the reason the value is rejected */
static const char *
convert_set(char *raw, unsigned long len, Datum *value)
{
	Datum	   *elems;
	int			n = 0;
	size_t		nelems = 1;
	char	   *p;
	char	   *start;
	const char *problem;

	if ((problem = text_problem(raw, len)) != NULL)
		return problem;
	raw = server_string(raw, len);
	/* one element per comma, plus one: counted, never guessed */
	for (p = raw; *p; p++)
		nelems += (*p == ',');
	if (nelems > MaxArraySize)
		return "too many elements for a set (more than an array can hold)";
	elems = palloc(sizeof(Datum) * nelems);
	if (*raw != '\0')
	{
		for (start = p = raw;; p++)
		{
			if (*p == ',' || *p == '\0')
			{
				elems[n++] = PointerGetDatum(cstring_to_text_with_len(start, p - start));
				if (*p == '\0')
					break;
				start = p + 1;
			}
		}
	}
	*value = PointerGetDatum(construct_array(elems, n, TEXTOID, -1, false, TYPALIGN_INT));
	return NULL;
}

/*
 * Convert one raw value (NUL-terminated, len bytes).  Returns NULL and sets
 * *value / *isnull, or returns the reason the value is rejected.  May throw
 * (type input functions; a domain's constraints, also on a NULL).
 */
static const char *convert_value(SyncColumn *col, char *raw, unsigned long len,
								 Datum *value, bool *isnull);

const char *
iact_sync_convert(SyncColumn *col, char *raw, unsigned long len,
				  Datum *value, bool *isnull)
{
	const char *reason;

	if (raw != NULL && len > IACT_SYNC_MAX_VALUE)
	{
		*isnull = true;
		*value = (Datum) 0;
		return "value over 1 GB (the largest value PostgreSQL stores)";
	}
	reason = convert_value(col, raw, len, value, isnull);
	if (reason == NULL && *isnull && col->is_domain)
		domain_check((Datum) 0, true, col->typid, &col->domain_extra, col->domain_cxt);
	return reason;
}

static const char *
convert_value(SyncColumn *col, char *raw, unsigned long len,
			  Datum *value, bool *isnull)
{
	const char *problem;

	*isnull = false;
	if (raw == NULL)
	{
		*isnull = true;
		*value = (Datum) 0;
		return NULL;
	}

	switch (col->kind)
	{
		case SYNC_KIND_NUMBER:
			*value = input_value(col, raw);
			return NULL;

		case SYNC_KIND_DATE_LOCAL:
			if (strncmp(raw, "0000-00-00", 10) == 0)
			{
				*isnull = true;
				return NULL;
			}
			*value = local_datetime(col, raw, len);
			return NULL;

		case SYNC_KIND_DATE:
		case SYNC_KIND_DATE_UTC:
			if (strncmp(raw, "0000-00-00", 10) == 0)
			{
				*isnull = true;
				return NULL;
			}
			if (fast_datetime(col, raw, len, value))
				return NULL;
			if (col->kind == SYNC_KIND_DATE_UTC && len < 40)
			{
				char		buf[48];

				snprintf(buf, sizeof(buf), "%s+00", raw);
				*value = input_value(col, buf);
				return NULL;
			}
			*value = input_value(col, raw);
			return NULL;

		case SYNC_KIND_YEAR:
			if (strcmp(raw, "0000") == 0)
			{
				*isnull = true;
				return NULL;
			}
			*value = input_value(col, raw);
			return NULL;

		case SYNC_KIND_BOOL_INT:
			*value = BoolGetDatum(strcmp(raw, "0") != 0);
			return NULL;

		case SYNC_KIND_BIT:
			*value = convert_bit(col, raw, len);
			return NULL;

		case SYNC_KIND_BYTEA:
			{
				bytea	   *b = (bytea *) palloc(len + VARHDRSZ);

				SET_VARSIZE(b, len + VARHDRSZ);
				memcpy(VARDATA(b), raw, len);
				*value = PointerGetDatum(b);
				return NULL;
			}

		case SYNC_KIND_SET:
			return convert_set(raw, len, value);

		case SYNC_KIND_TEXT:
		default:
			if ((problem = text_problem(raw, len)) != NULL)
				return problem;
			*value = input_value(col, server_string(raw, len));
			return NULL;
	}
}

/*
 * Make TimeZone the zone `zone` until iact_sync_zone_end(): SQL's casts
 * between timestamp and timestamptz then read the name exactly as the
 * conversion of values does (pg_tzset: 'CET' is the zone with summer time),
 * whereas AT TIME ZONE 'CET' would take the fixed abbreviation.  Returns the
 * GUC nest level to give iact_sync_zone_end().
 */
int
iact_sync_zone_begin(const char *zone)
{
	int			nest = NewGUCNestLevel();

	(void) set_config_option("TimeZone", zone, PGC_USERSET, PGC_S_SESSION,
							 GUC_ACTION_SAVE, true, 0, false);
	return nest;
}

void
iact_sync_zone_end(int nest)
{
	AtEOXact_GUC(false, nest);
}

/*
 * The lower bound of an incremental run over a datetime watermark written in
 * the wall-clock time of zone: the local time `lookback` seconds before the
 * last watermark's instant -- its earliest reading when it falls in an hour
 * repeated at a fall-back change -- moved back further by the drop of the
 * zone's UTC offset right after that instant (up to 2 hours later), since
 * rows written after a fall-back carry smaller local times than those
 * written just before it.  Never above the plain `watermark - lookback`
 * (a watermark in the hour skipped at a spring-forward change, which only
 * wrong data has, is read as an hour later), and never inside such a skipped
 * hour: a bound there is moved back by the hour's length, out of it, where
 * the source's order of local times and the target's order of instants
 * agree (PostgreSQL reads a skipped time with the offset before the change,
 * so 02:30 comes after 03:10 as instants).  Computed with TimeZone = zone (casts, not AT TIME
 * ZONE: see iact_sync_zone_begin).  Returns 'YYYY-MM-DD HH:MM:SS.ffffff'.
 */
char *
iact_sync_local_lookback(const char *last_wm, int64 lookback, const char *zone)
{
	Oid			types[2] = {TEXTOID, INT8OID};
	Datum		args[2];
	bool		isnull;
	Datum		d;
	int			nest;

	args[0] = CStringGetTextDatum(last_wm);
	args[1] = Int64GetDatum(lookback);
	nest = iact_sync_zone_begin(zone);
	if (SPI_execute_with_args(
			"WITH w AS (SELECT $1::pg_catalog.timestamp AS wm, "
			"  $1::pg_catalog.timestamp::pg_catalog.timestamptz AS inst), "
			"e AS (SELECT CASE "
			"  WHEN (inst OPERATOR(pg_catalog.-) interval '1 hour')::pg_catalog.timestamp "
			"       OPERATOR(pg_catalog.=) wm THEN inst OPERATOR(pg_catalog.-) interval '1 hour' "
			"  WHEN (inst OPERATOR(pg_catalog.-) interval '30 minutes')::pg_catalog.timestamp "
			"       OPERATOR(pg_catalog.=) wm THEN inst OPERATOR(pg_catalog.-) interval '30 minutes' "
			"  ELSE inst END OPERATOR(pg_catalog.-) pg_catalog.make_interval(secs => $2) AS t0 FROM w), "
			"o AS (SELECT t0, t0::pg_catalog.timestamp AS local, "
			"  (t0::pg_catalog.timestamp OPERATOR(pg_catalog.-) (t0 AT TIME ZONE 'UTC')) "
			"  OPERATOR(pg_catalog.-) ((t0 OPERATOR(pg_catalog.+) interval '2 hours')::pg_catalog.timestamp "
			"  OPERATOR(pg_catalog.-) ((t0 OPERATOR(pg_catalog.+) interval '2 hours') AT TIME ZONE 'UTC')) "
			"  AS fall FROM e), "
			"b AS (SELECT LEAST(local OPERATOR(pg_catalog.-) GREATEST(interval '0', fall), "
			"  (SELECT wm FROM w) OPERATOR(pg_catalog.-) pg_catalog.make_interval(secs => $2)) AS b FROM o) "
			"SELECT pg_catalog.to_char(b OPERATOR(pg_catalog.-) GREATEST(interval '0', "
			"  b::pg_catalog.timestamptz::pg_catalog.timestamp OPERATOR(pg_catalog.-) b), "
			"  'YYYY-MM-DD HH24:MI:SS.US') FROM b",
			2, types, args, NULL, true, 1) != SPI_OK_SELECT || SPI_processed != 1)
		elog(ERROR, "could not compute the look-back of watermark \"%s\" in time zone %s", last_wm, zone);
	iact_sync_zone_end(nest);
	d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
	return isnull ? NULL : TextDatumGetCString(d);
}
