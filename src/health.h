/*-------------------------------------------------------------------------
 *
 * health.h
 *	  Settings shared by the health checks (src/health.c, SQL in
 *	  src/sql/70_health.sql) and the maintenance worker (src/maintenance.c).
 *
 *-------------------------------------------------------------------------
 */
#ifndef IACT_HEALTH_H
#define IACT_HEALTH_H

#include "iact.h"

/* the maintenance worker's settings (src/maintenance.c), in seconds; 0 = off */
extern int	iact_overlap_check_interval;
extern int	iact_audit_retention;
extern int	iact_audit_purge_interval;

#endif							/* IACT_HEALTH_H */
