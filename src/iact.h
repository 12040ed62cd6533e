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

/* advisory lock key space: pg_advisory_lock(IACT_LOCK_CLASS, <key>) */
#define IACT_LOCK_CLASS			1767990132	/* 'iact' as a big-endian int4 */
#define IACT_LOCK_MIGRATIONS	1
#define IACT_LOCK_SYNC_CLASS	1767990133	/* pg_advisory_lock(this, sync table id) */

/* true when loaded through shared_preload_libraries */
extern bool iact_preloaded;

/* per-capability initialisation, called from _PG_init (src/iact.c) */
extern void iact_migration_init(void);
extern void iact_sync_init(void);
extern void iact_worker_init(void);

/* ---- sync (src/sync_*.c, src/mariadb_client.c) ---- */
#include "fmgr.h"
#include "access/attnum.h"

/* how one MariaDB value becomes a Datum (src/sync_types.c) */
typedef enum SyncKind
{
	SYNC_KIND_TEXT,				/* UTF-8/NUL checks, then the type's input */
	SYNC_KIND_NUMBER,			/* the type's input, no text checks */
	SYNC_KIND_DATE,				/* zero date -> NULL */
	SYNC_KIND_DATE_UTC,			/* same, the value is UTC (timestamptz) */
	SYNC_KIND_YEAR,				/* 0000 -> NULL */
	SYNC_KIND_BOOL_INT,			/* tinyint(1) -> boolean: 0 false, else true */
	SYNC_KIND_BIT,				/* bit(n): raw big-endian bytes */
	SYNC_KIND_BYTEA,			/* raw bytes */
	SYNC_KIND_SET				/* 'a,b' -> {a,b} */
} SyncKind;

typedef struct SyncColumn
{
	char	   *name;			/* same name in source and target */
	AttrNumber	attnum;			/* in the target */
	Oid			typid;			/* target type */
	int32		typmod;
	char	   *src_data_type;	/* information_schema DATA_TYPE */
	char	   *src_column_type;	/* information_schema COLUMN_TYPE */
	bool		is_key;
	SyncKind	kind;
	FmgrInfo	inflinfo;
	Oid			ioparam;
} SyncColumn;

extern const char *iact_sync_map_type(const char *data_type, const char *column_type,
									  bool tinyint1_as_boolean);
extern void iact_sync_column_prepare(SyncColumn *col);
extern const char *iact_sync_convert(SyncColumn *col, char *raw, unsigned long len,
									 Datum *value, bool *isnull);

/* connection settings from the foreign server + user mapping (src/sync_fdw.c) */
struct IactMyConn;
extern struct IactMyConn *iact_sync_connect(Oid serverid, char **dbname);

/*
 * The engine (src/sync_engine.c).  iact_sync_table() syncs one registered
 * table (iact.sync_tables.id) and returns the iact.sync_runs id it wrote.
 * With commit_batches, every batch is committed together with its watermark
 * (SPI_commit): the caller must be able to commit (a non-atomic CALL, or a
 * background worker inside StartTransactionCommand with no snapshot of its
 * own pushed), and must not be in a subtransaction.  Without it, the whole
 * table is one subtransaction of the caller's transaction: a failure is
 * recorded as a 'failed' run and nothing of that table's batches remains.
 * Errors of the run never escape (they are recorded in the run); only
 * errors of the bookkeeping itself do.
 */
extern int64 iact_sync_table(int32 table_id, bool commit_batches);

/* GUCs (src/sync_sql.c) */
extern int	iact_sync_batch_size;
extern bool iact_sync_allow_write_account;
extern int	iact_sync_history_days;


#endif							/* IACT_H */
