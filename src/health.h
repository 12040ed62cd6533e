/*-------------------------------------------------------------------------
 *
 * health.h
 *	  Interface between iact.health() (health.c) and iact.metrics()
 *	  (health_metrics.c).
 *
 *-------------------------------------------------------------------------
 */
#ifndef IACT_HEALTH_H
#define IACT_HEALTH_H

#include "iact.h"

#include "nodes/pg_list.h"

/* health: the checks of iact.health() (src/health.c), also read by iact.metrics() */
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
/* the maintenance worker's settings (src/maintenance.c), in seconds; 0 = off */
extern int	iact_overlap_check_interval;
extern int	iact_audit_retention;
extern int	iact_audit_purge_interval;

extern void iact_health_collect(HealthReport *r, MemoryContext cxt);
extern char *iact_health_check_name(HealthRow *row);
extern bool iact_health_try(void (*fn) (void *arg), void *arg, char **errmsg);

#endif							/* IACT_HEALTH_H */
