/*-------------------------------------------------------------------------
 *
 * direct_write.h
 *	  The executor state for writing rows without a statement (table access
 *	  method plus the executor's index and constraint routines), as COPY
 *	  FROM and logical replication's apply worker build it.  Used by the
 *	  audit trigger (src/audit_trigger.c) and the sync's direct writes
 *	  (src/sync_direct.c).
 *
 *-------------------------------------------------------------------------
 */
#ifndef IACT_DIRECT_WRITE_H
#define IACT_DIRECT_WRITE_H

#include "iact.h"

#include "nodes/bitmapset.h"

struct EState;
struct RelationData;
struct ResultRelInfo;

/* one relation written directly: in its range table entry, the columns written */
typedef struct DirectWriteRel
{
	struct RelationData *rel;	/* opened with RowExclusiveLock by the caller */
	Bitmapset  *inserted_cols;	/* attnum - FirstLowInvalidHeapAttributeNumber */
	Bitmapset  *updated_cols;
	struct ResultRelInfo *rri;	/* set by iact_direct_write_begin: indexes open */
} DirectWriteRel;

extern struct EState *iact_direct_write_begin(DirectWriteRel *rels, int nrels);
extern void iact_direct_write_end(struct EState *estate, DirectWriteRel *rels, int nrels);

#endif							/* IACT_DIRECT_WRITE_H */
