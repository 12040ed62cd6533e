/*-------------------------------------------------------------------------
 *
 * audit.h
 *	  Interface between the audit trigger (audit_trigger.c) and the jsonb
 *	  rendering of audited rows (audit_jsonb.c).
 *
 *-------------------------------------------------------------------------
 */
#ifndef IACT_AUDIT_H
#define IACT_AUDIT_H

#include "iact.h"

/* audit: audited rows as jsonb (src/audit_jsonb.c, used by src/audit_trigger.c) */
struct RelationData;
struct TupleTableSlot;
typedef struct AuditRowFormat AuditRowFormat;
typedef enum AuditRowPart
{
	AUDIT_ROW_ALL,				/* every audited column */
	AUDIT_ROW_CHANGED,			/* columns changed by the UPDATE */
	AUDIT_ROW_CHANGED_AND_KEY	/* those and the primary key (all without a key) */
} AuditRowPart;
extern AuditRowFormat *iact_audit_row_format(struct RelationData *rel, char **ignored,
											 int nignored);
extern bool iact_audit_row_diff(AuditRowFormat *fmt, struct TupleTableSlot *oldslot,
								struct TupleTableSlot *newslot);
extern Datum iact_audit_row_jsonb(AuditRowFormat *fmt, struct TupleTableSlot *slot,
								  AuditRowPart part);

#endif							/* IACT_AUDIT_H */
