/*-------------------------------------------------------------------------
 *
 * health.h
 *	  Settings shared by the health checks (src/health.c, SQL in
 *	  src/sql/70_health.sql, and 1.0's checks in src/health_1_0.c) and the
 *	  maintenance worker (src/maintenance.c).
 *
 *-------------------------------------------------------------------------
 */
#ifndef IACT_HEALTH_H
#define IACT_HEALTH_H

#include "iact.h"

/* the iact.health_* thresholds (src/health.c) */
extern int	iact_health_connections_warn;
extern int	iact_health_connections_fail;
extern int	iact_health_database_size_warn;
extern int	iact_health_migration_warn_runtime;
extern int	iact_health_migration_max_runtime;
extern int	iact_health_audit_rows_warn;
extern int	iact_health_expected_role;	/* 0 any, 1 primary, 2 standby */

/* the maintenance worker's settings (src/maintenance.c), in seconds; 0 = off */
extern int	iact_overlap_check_interval;
extern int	iact_audit_retention;
extern int	iact_audit_purge_interval;

#endif							/* IACT_HEALTH_H */
