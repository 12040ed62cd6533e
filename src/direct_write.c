/*-------------------------------------------------------------------------
 *
 * direct_write.c
 *	  The executor state for writing rows without a statement (see
 *	  direct_write.h): one range table entry per relation (RowExclusiveLock,
 *	  the columns written, which the index routines use to tell whether an
 *	  index's columns changed), one ResultRelInfo per relation with its
 *	  indexes open.  The caller opens and closes the relations.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "direct_write.h"

#include "executor/executor.h"
#include "nodes/makefuncs.h"
#include "utils/rel.h"

/*
 * An executor state for writing rels[0..nrels-1] (range table indexes 1..n);
 * sets each rels[i].rri.  In the current memory context until
 * iact_direct_write_end.
 */
EState *
iact_direct_write_begin(DirectWriteRel *rels, int nrels)
{
	EState	   *estate = CreateExecutorState();
	List	   *rtable = NIL;
	int			i;

	for (i = 0; i < nrels; i++)
	{
		RangeTblEntry *rte = makeNode(RangeTblEntry);

		rte->rtekind = RTE_RELATION;
		rte->relid = RelationGetRelid(rels[i].rel);
		rte->relkind = rels[i].rel->rd_rel->relkind;
		rte->rellockmode = RowExclusiveLock;
		rte->insertedCols = rels[i].inserted_cols;
		rte->updatedCols = rels[i].updated_cols;
		rtable = lappend(rtable, rte);
	}
	ExecInitRangeTable(estate, rtable);
	for (i = 0; i < nrels; i++)
	{
		rels[i].rri = makeNode(ResultRelInfo);
		InitResultRelInfo(rels[i].rri, rels[i].rel, i + 1, NULL, 0);
		ExecOpenIndices(rels[i].rri, false);
	}
	return estate;
}

/* close the indexes, drop the tuple table's slots, free the executor state */
void
iact_direct_write_end(EState *estate, DirectWriteRel *rels, int nrels)
{
	int			i;

	for (i = 0; i < nrels; i++)
		ExecCloseIndices(rels[i].rri);
	ExecResetTupleTable(estate->es_tupleTable, false);
	FreeExecutorState(estate);
}
