/*-------------------------------------------------------------------------
 *
 * audit_jsonb.c
 *	  Audited rows as jsonb, for the audit writer (src/audit_trigger.c).
 *
 * iact_audit_row_format() looks at the audited table once per statement:
 * which columns to skip (dropped, ignored), which form the primary key, how
 * each type becomes jsonb, and the jsonb key order.  Rows are then turned
 * into jsonb objects by filling a JsonbValue directly (no per-row key sort,
 * no text round trip for the common types), giving the same document as
 * to_jsonb(row) would.  iact_audit_row_diff() finds the columns an UPDATE
 * changed, for objects of the changed columns only.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "audit.h"

#include <math.h>

#include "catalog/pg_type.h"
#include "executor/tuptable.h"
#include "nodes/makefuncs.h"
#include "utils/builtins.h"
#include "utils/datum.h"
#include "utils/fmgroids.h"
#include "utils/json.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/numeric.h"
#include "utils/rel.h"

/* how a column's values become jsonb (decided once per statement) */
typedef enum AuditConv
{
	CONV_BOOL,
	CONV_INT,					/* int2, int4, int8 */
	CONV_NUMERIC,
	CONV_FLOAT,					/* float4, float8: output text, NaN/Inf as strings */
	CONV_TEXT,					/* text, varchar, bpchar: the bytes as they are */
	CONV_DATETIME,				/* date, timestamp, timestamptz: ISO 8601 */
	CONV_JSONB,
	CONV_OUTPUT,				/* the type's output function, as a string */
	CONV_GENERIC				/* to_jsonb() itself (arrays, composites, json, ...) */
} AuditConv;

typedef struct AuditColumn
{
	int			attnum;			/* 1-based in the audited table */
	const char *name;
	int			namelen;
	Oid			typid;
	int16		typlen;
	bool		typbyval;
	bool		ignored;
	bool		in_key;			/* part of the primary key */
	AuditConv	conv;
	FmgrInfo	fn;				/* output function or to_jsonb */
} AuditColumn;

struct AuditRowFormat
{
	int			ncols;
	bool		has_key;		/* the table has a primary key */
	AuditColumn *cols;			/* in jsonb key order */
	bool	   *changed;		/* per column, from the last iact_audit_row_diff() */
	bool	   *want;			/* scratch */
};

/* ---------------------------------------------------------------------
 * Column conversions
 * ---------------------------------------------------------------------
 */

/* how a value of type typid is written into the audit jsonb */
static AuditConv
audit_conv_for_type(Oid typid)
{
	switch (typid)
	{
		case BOOLOID:
			return CONV_BOOL;
		case INT2OID:
		case INT4OID:
		case INT8OID:
			return CONV_INT;
		case NUMERICOID:
			return CONV_NUMERIC;
		case FLOAT4OID:
		case FLOAT8OID:
			return CONV_FLOAT;
		case TEXTOID:
		case VARCHAROID:
		case BPCHAROID:
			return CONV_TEXT;
		case DATEOID:
		case TIMESTAMPOID:
		case TIMESTAMPTZOID:
			return CONV_DATETIME;
		case JSONBOID:
			return CONV_JSONB;
		case UUIDOID:
		case TIMEOID:
		case TIMETZOID:
		case INTERVALOID:
		case BYTEAOID:
		case INETOID:
		case CIDROID:
			return CONV_OUTPUT;
		default:
			return CONV_GENERIC;	/* domains, arrays, composites, enums, json... */
	}
}

/* a column's place in jsonb's object key order: shorter keys first, then bytewise */
typedef struct AuditKey
{
	int			attnum;
	int			namelen;
	const char *name;
} AuditKey;

/* qsort comparator of AuditKeys, in jsonb's key order */
static int
audit_key_cmp(const void *a, const void *b)
{
	const AuditKey *x = a;
	const AuditKey *y = b;

	if (x->namelen != y->namelen)
		return x->namelen < y->namelen ? -1 : 1;
	return memcmp(x->name, y->name, x->namelen);
}

/*
 * How rows of rel become jsonb: conversion per column, ignored columns
 * (names in ignored[0..nignored-1]), primary key membership, key order.
 */
AuditRowFormat *
iact_audit_row_format(Relation rel, char **ignored, int nignored)
{
	TupleDesc	desc = RelationGetDescr(rel);
	AuditRowFormat *fmt = palloc0(sizeof(AuditRowFormat));
	AuditColumn *cols = palloc0(sizeof(AuditColumn) * Max(desc->natts, 1));
	AuditKey   *keys = palloc(sizeof(AuditKey) * Max(desc->natts, 1));
	Bitmapset  *pkey = RelationGetIndexAttrBitmap(rel, INDEX_ATTR_BITMAP_PRIMARY_KEY);
	int			n = 0;

	/* the columns in key order first (sorting small entries), then their details */
	for (int i = 0; i < desc->natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(desc, i);

		if (att->attisdropped)
			continue;
		keys[n].attnum = att->attnum;
		keys[n].name = NameStr(att->attname);
		keys[n].namelen = strlen(keys[n].name);
		n++;
	}
	qsort(keys, n, sizeof(AuditKey), audit_key_cmp);

	for (int k = 0; k < n; k++)
	{
		Form_pg_attribute att = TupleDescAttr(desc, keys[k].attnum - 1);
		AuditColumn *c = &cols[k];

		c->attnum = keys[k].attnum;
		c->name = keys[k].name;
		c->namelen = keys[k].namelen;
		c->typid = att->atttypid;
		c->typlen = att->attlen;
		c->typbyval = att->attbyval;
		c->in_key = bms_is_member(att->attnum - FirstLowInvalidHeapAttributeNumber, pkey);
		fmt->has_key |= c->in_key;
		for (int a = 0; a < nignored; a++)
			if (strcmp(ignored[a], c->name) == 0)
				c->ignored = true;
		c->conv = audit_conv_for_type(att->atttypid);
		if (c->conv == CONV_OUTPUT || c->conv == CONV_FLOAT)
		{
			Oid			outfn;
			bool		varlena;

			getTypeOutputInfo(att->atttypid, &outfn, &varlena);
			fmgr_info(outfn, &c->fn);
		}
		else if (c->conv == CONV_GENERIC)
		{
			/* to_jsonb(anyelement) reads its argument type from fn_expr */
			fmgr_info(F_TO_JSONB, &c->fn);
			c->fn.fn_expr = (Node *) makeFuncExpr(F_TO_JSONB, JSONBOID,
												  list_make1(makeNullConst(att->atttypid,
																		   att->atttypmod,
																		   att->attcollation)),
												  InvalidOid, InvalidOid,
												  COERCE_EXPLICIT_CALL);
		}
	}
	fmt->ncols = n;
	fmt->cols = cols;
	fmt->changed = palloc0(sizeof(bool) * Max(n, 1));
	fmt->want = palloc0(sizeof(bool) * Max(n, 1));
	return fmt;
}

/* a jsonb document as an in-memory JsonbValue tree (to nest it in a row) */
static void
audit_jsonb_to_value(Jsonb *jb, JsonbValue *out)
{
	JsonbParseState *st = NULL;
	JsonbIterator *it;
	JsonbIteratorToken tok;
	JsonbValue	v;
	JsonbValue *res = NULL;

	if (JB_ROOT_IS_SCALAR(jb))
	{
		if (!JsonbExtractScalar(&jb->root, out))
			elog(ERROR, "jsonb scalar expected");
		return;
	}
	it = JsonbIteratorInit(&jb->root);
	while ((tok = JsonbIteratorNext(&it, &v, false)) != WJB_DONE)
		res = pushJsonbValue(&st, tok, tok < WJB_BEGIN_ARRAY ? &v : NULL);
	*out = *res;
}

static void
audit_set_string(JsonbValue *v, char *s)
{
	v->type = jbvString;
	v->val.string.val = s;
	v->val.string.len = strlen(s);
}

/* one non-NULL column value as to_jsonb() would render it */
static void
audit_value(AuditColumn *c, Datum d, JsonbValue *v)
{
	switch (c->conv)
	{
		case CONV_BOOL:
			v->type = jbvBool;
			v->val.boolean = DatumGetBool(d);
			break;
		case CONV_INT:
			v->type = jbvNumeric;
			v->val.numeric = int64_to_numeric(c->typid == INT2OID ? DatumGetInt16(d) :
											  c->typid == INT4OID ? DatumGetInt32(d) :
											  DatumGetInt64(d));
			break;
		case CONV_NUMERIC:
			{
				Numeric		num = DatumGetNumeric(d);

				if (numeric_is_nan(num) || numeric_is_inf(num))
					audit_set_string(v, DatumGetCString(DirectFunctionCall1(numeric_out, d)));
				else
				{
					v->type = jbvNumeric;
					v->val.numeric = num;
				}
				break;
			}
		case CONV_FLOAT:
			{
				double		f = c->typid == FLOAT4OID ? DatumGetFloat4(d) : DatumGetFloat8(d);
				char	   *s = OutputFunctionCall(&c->fn, d);

				if (isnan(f) || isinf(f))
					audit_set_string(v, s);
				else
				{
					v->type = jbvNumeric;
					v->val.numeric = DatumGetNumeric(DirectFunctionCall3(numeric_in,
																		 CStringGetDatum(s),
																		 ObjectIdGetDatum(InvalidOid),
																		 Int32GetDatum(-1)));
				}
				break;
			}
		case CONV_TEXT:
			{
				text	   *t = DatumGetTextPP(d);

				v->type = jbvString;
				v->val.string.val = VARDATA_ANY(t);
				v->val.string.len = VARSIZE_ANY_EXHDR(t);
				break;
			}
		case CONV_DATETIME:
			audit_set_string(v, JsonEncodeDateTime(NULL, d, c->typid, NULL));
			break;
		case CONV_JSONB:
			audit_jsonb_to_value(DatumGetJsonbP(d), v);
			break;
		case CONV_OUTPUT:
			audit_set_string(v, OutputFunctionCall(&c->fn, d));
			break;
		case CONV_GENERIC:
			audit_jsonb_to_value(DatumGetJsonbP(FunctionCall1(&c->fn, d)), v);
			break;
	}
}

/*
 * A jsonb object of the columns of slot for which want[i] is true (all when
 * want is NULL); ignored columns never appear.  cols is in jsonb key order,
 * so the object is built directly, without the sort pushJsonbValue does.
 */
static Datum
audit_row_to_jsonb(TupleTableSlot *slot, AuditColumn *cols, int ncols, const bool *want)
{
	JsonbPair  *pairs = palloc(sizeof(JsonbPair) * Max(ncols, 1));
	JsonbValue	obj;
	int			n = 0;

	slot_getallattrs(slot);
	for (int i = 0; i < ncols; i++)
	{
		AuditColumn *c = &cols[i];
		JsonbPair  *p;

		if (c->ignored || (want != NULL && !want[i]))
			continue;
		p = &pairs[n];
		p->key.type = jbvString;
		p->key.val.string.val = (char *) c->name;
		p->key.val.string.len = c->namelen;
		p->order = n++;
		if (slot->tts_isnull[c->attnum - 1])
			p->value.type = jbvNull;
		else
			audit_value(c, slot->tts_values[c->attnum - 1], &p->value);
	}
	obj.type = jbvObject;
	obj.val.object.nPairs = n;
	obj.val.object.pairs = pairs;
	return JsonbPGetDatum(JsonbValueToJsonb(&obj));
}

/* did the value of column c change between the two row versions? */
static bool
audit_value_changed(AuditColumn *c, TupleTableSlot *oldslot, TupleTableSlot *newslot)
{
	bool		oldnull,
				newnull;
	Datum		o = slot_getattr(oldslot, c->attnum, &oldnull);
	Datum		n = slot_getattr(newslot, c->attnum, &newnull);

	if (oldnull || newnull)
		return oldnull != newnull;
	if (datumIsEqual(o, n, c->typbyval, c->typlen))
		return false;
	if (c->typlen == -1)
	{
		/* same value, different storage (compressed, toasted, short header)? */
		struct varlena *ov = pg_detoast_datum_packed((struct varlena *) DatumGetPointer(o));
		struct varlena *nv = pg_detoast_datum_packed((struct varlena *) DatumGetPointer(n));

		return VARSIZE_ANY_EXHDR(ov) != VARSIZE_ANY_EXHDR(nv) ||
			memcmp(VARDATA_ANY(ov), VARDATA_ANY(nv), VARSIZE_ANY_EXHDR(ov)) != 0;
	}
	return true;
}

/*
 * Which audited (not ignored) columns differ between the two versions of a
 * row; remembered for iact_audit_row_jsonb().  Returns whether any did.
 */
bool
iact_audit_row_diff(AuditRowFormat *fmt, TupleTableSlot *oldslot, TupleTableSlot *newslot)
{
	bool		any = false;

	for (int i = 0; i < fmt->ncols; i++)
	{
		fmt->changed[i] = !fmt->cols[i].ignored &&
			audit_value_changed(&fmt->cols[i], oldslot, newslot);
		any |= fmt->changed[i];
	}
	return any;
}

/*
 * The row in slot as a jsonb object: every audited column, only those the
 * last iact_audit_row_diff() found changed, or those plus the primary key
 * (the whole row when the table has no primary key).
 */
Datum
iact_audit_row_jsonb(AuditRowFormat *fmt, TupleTableSlot *slot, AuditRowPart part)
{
	if (part == AUDIT_ROW_ALL || (part == AUDIT_ROW_CHANGED_AND_KEY && !fmt->has_key))
		return audit_row_to_jsonb(slot, fmt->cols, fmt->ncols, NULL);
	if (part == AUDIT_ROW_CHANGED)
		return audit_row_to_jsonb(slot, fmt->cols, fmt->ncols, fmt->changed);
	for (int i = 0; i < fmt->ncols; i++)
		fmt->want[i] = fmt->changed[i] || fmt->cols[i].in_key;
	return audit_row_to_jsonb(slot, fmt->cols, fmt->ncols, fmt->want);
}
