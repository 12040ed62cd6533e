/*-------------------------------------------------------------------------
 *
 * worker_replica.h
 *	  The sync worker on a logical-replication subscriber (worker_replica.c).
 *
 *-------------------------------------------------------------------------
 */
#ifndef IACT_WORKER_REPLICA_H
#define IACT_WORKER_REPLICA_H

#include "postgres.h"
#include "nodes/pg_list.h"

extern bool iact_sync_on_subscriber;

extern void iact_worker_replica_init(void);
extern List *iact_replicated_sync_tables(void);

#endif							/* IACT_WORKER_REPLICA_H */
