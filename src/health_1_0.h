/*-------------------------------------------------------------------------
 *
 * health_1_0.h
 *	  Release 1.0's iact.health() (health_1_0.c) and iact.metrics()
 *	  (health_1_0_metrics.c), which serve databases not yet updated to 1.1.
 *
 *-------------------------------------------------------------------------
 */
#ifndef IACT_HEALTH_1_0_H
#define IACT_HEALTH_1_0_H

#include "health.h"

#include "nodes/pg_list.h"

/* the checks of 1.0's iact.health(), also read by its iact.metrics() */
typedef struct HealthRow
{
	const char *check;			/* e.g. "connections", "sync_last_success" */
	const char *label;			/* table the row is about, or NULL */
	const char *status;			/* "ok", "warn" or "fail" */
	bool		has_value;
	double		value;
	const char *detail;
	bool		not_configured; /* the feature the check reads is not installed */
} HealthRow;
typedef struct HealthReport
{
	MemoryContext cxt;			/* where rows are allocated */
	List	   *rows;			/* of HealthRow */
} HealthReport;

extern void iact_health_collect(HealthReport *r, MemoryContext cxt);
extern char *iact_health_check_name(HealthRow *row);
extern bool iact_health_try(void (*fn) (void *arg), void *arg, char **errmsg);

#endif							/* IACT_HEALTH_1_0_H */
