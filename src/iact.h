/*-------------------------------------------------------------------------
 *
 * iact.h
 *	  Declarations shared between iact's capabilities.
 *
 * Each capability lives in its own file under src/ and exposes here only
 * what other files need: its _PG_init hook and the odd helper.  Nothing in
 * this header may include mysql.h (see src/mariadb_client.h).
 *
 *-------------------------------------------------------------------------
 */
#ifndef IACT_H
#define IACT_H

#include "postgres.h"
#include "miscadmin.h"
#include "nodes/pg_list.h"

/* advisory lock key space: pg_advisory_lock(IACT_LOCK_CLASS, <key>) */
#define IACT_LOCK_CLASS			1767990132	/* 'iact' as a big-endian int4 */
#define IACT_LOCK_MIGRATIONS	1
#define IACT_LOCK_CLASS_BACKFILL	1767990134	/* key2 = hash of the backfill name */
/* 1767990133 is the sync engine's class (key2 = sync table id) */

/* true when loaded through shared_preload_libraries */
extern bool iact_preloaded;

/* per-capability initialisation, called from _PG_init (src/iact.c) */
extern void iact_migration_init(void);
extern void iact_health_init(void);

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
extern void iact_health_collect(HealthReport *r, MemoryContext cxt);
extern char *iact_health_check_name(HealthRow *row);
extern bool iact_health_try(void (*fn) (void *arg), void *arg, char **errmsg);

#endif							/* IACT_H */
