/*-------------------------------------------------------------------------
 *
 * sync.h
 *	  Declarations shared by the sync's files (src/sync_*.c): type rules and
 *	  value conversion, the connection, one run's state and its steps.
 *	  The entry point other capabilities use, iact_sync_table(), is in
 *	  iact.h.  Nothing here includes mysql.h (see src/mariadb_client.h).
 *
 *-------------------------------------------------------------------------
 */
#ifndef IACT_SYNC_H
#define IACT_SYNC_H

#include "iact.h"

#include "fmgr.h"
#include "access/attnum.h"
#include "access/htup.h"
#include "access/tupdesc.h"
#include "storage/itemptr.h"
#include "utils/elog.h"
#include "utils/memutils.h"

/* how one MariaDB value becomes a Datum (src/sync_types.c) */
typedef enum SyncKind
{
	SYNC_KIND_TEXT,				/* UTF-8/NUL checks, then the type's input */
	SYNC_KIND_NUMBER,			/* the type's input, no text checks */
	SYNC_KIND_DATE,				/* zero date -> NULL */
	SYNC_KIND_DATE_UTC,			/* same, the value is UTC (timestamptz) */
	SYNC_KIND_DATE_LOCAL,		/* same, the value is wall-clock time in the
								 * server's source_time_zone (timestamptz) */
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
	bool		not_null;		/* a key or NOT NULL in the target */
	SyncKind	kind;
	FmgrInfo	inflinfo;
	Oid			ioparam;
	bool		is_domain;		/* a NULL is checked against the domain */
	void	   *domain_extra;
	MemoryContext domain_cxt;
	struct pg_tz *src_tz;		/* source_time_zone of a date/datetime column */
	const char *src_tz_name;
} SyncColumn;

/*
 * The largest value the sync stores (a varlena of it can be allocated); a
 * longer one is a reject, kept out of memory (src/sync_engine.c).
 */
#define IACT_SYNC_MAX_VALUE		((unsigned long) (MaxAllocSize - VARHDRSZ - 1))

extern const char *iact_sync_map_type(const char *data_type, const char *column_type,
									  bool tinyint1_as_boolean);
extern void iact_sync_column_prepare(SyncColumn *col);
extern const char *iact_sync_convert(SyncColumn *col, char *raw, unsigned long len,
									 Datum *value, bool *isnull);
extern char *iact_sync_local_lookback(const char *last_wm, int64 lookback, const char *zone);
extern int	iact_sync_zone_begin(const char *zone);
extern void iact_sync_zone_end(int nest);

/* connection settings from the foreign server + user mapping (src/sync_fdw.c) */
struct IactMyConn;
struct ForeignServer;
extern const char *iact_sync_server_time_zone(struct ForeignServer *server);
extern struct IactMyConn *iact_sync_connect_to(Oid serverid, const char *reading_db, bool notice,
											   char **dbname, char **elsewhere);
extern struct IactMyConn *iact_sync_connect(Oid serverid, char **dbname);

/* the grants check (src/sync_grants.c) */
extern char *iact_sync_check_grants(struct IactMyConn *conn, Oid serverid, const char *user,
									const char *server_dbname, const char *reading_db);
extern void iact_sync_notice_elsewhere(const char *server, const char *user,
									   const char *elsewhere);
extern void iact_sync_record_elsewhere(int64 run_id, const char *elsewhere);

/* the PostgreSQL side of the MariaDB boundary (src/sync_remote.c): quoting, errors */
extern char *iact_sync_my_ident(const char *name);
extern void iact_sync_my_error(struct IactMyConn *conn, int sqlstate, const char *server,
							   const char *what, const char *hint) pg_attribute_noreturn();
extern struct ForeignServer *iact_sync_listing_server(const char *servername);
extern void iact_sync_listing_end(struct IactMyConn *conn, int rc, const char *servername, const char *what);



/* one run of one table (private to src/sync_engine.c, sync_batch.c, sync_run.c) */
typedef struct SyncRun
{
	/* registry (iact.sync_tables) */
	int32		table_id;
	char	   *server_name;
	char	   *src_schema;
	char	   *src_table;
	char	   *tgt_schema;
	char	   *tgt_table;
	char	   *tgt_qual;		/* schema.table, quoted */
	char	  **keys;
	int			nkeys;
	char	   *wm_col;
	int64		lookback;
	int			batch_size;
	int			retention_days;
	char	   *ret_col;
	char	   *last_wm;
	bool		commit_batches;
	const char *src_tz_name;	/* the server's source_time_zone, or NULL */
	Oid			tgt_oid;		/* the table registered (sync_tables.target_oid) */
	bool		check_oid;		/* false in a 1.0 database: no such column */

	/* who runs what (src/sync_security.c) */
	Oid			owner;			/* the target's owner: the writes */
	Oid			registry_owner; /* iact.sync_tables' owner: the bookkeeping */
	Oid			outer_user;		/* who started the run, and in which */
	int			outer_sec;		/* security context */

	/* this run */
	int64		run_id;
	struct IactMyConn *conn;
	char	   *src_qual;		/* `db`.`table` */
	Oid			tgt_relid;		/* the target table */
	bool		tgt_tree;		/* partitioned or with inheritance children: a
								 * ctid names a row only with its tableoid */
	bool		tgt_inherits;	/* an inheritance parent: no ON CONFLICT */
	TupleDesc	tupdesc;		/* the target's row type */
	Oid			rowtype;
	Oid			arraytype;
	int16		rowlen;
	bool		rowbyval;
	char		rowalign;
	int			ncols;
	SyncColumn *cols;
	int			wm_idx;
	int			ret_idx;
	bool		wm_temporal;
	char	   *wm_from;
	char	   *wm_to;
	char	   *cutoff;
	char	   *where_sql;		/* " WHERE ..." or "" */
	struct _SPI_plan *apply_plan;
	struct _SPI_plan *reject_plan;
	/* full sync by one ordered key (src/sync_merge.c) */
	struct _SPI_plan *read_first_plan;
	struct _SPI_plan *read_next_plan;
	struct _SPI_plan *read_above_plan;
	struct _SPI_plan *insert_plan;
	struct _SPI_plan *update_plan;
	struct _SPI_plan *delete_plan;
	FmgrInfo	key_cmp;
	bool		eof;
	bool		bulk;			/* the target was empty: plain INSERT, nothing to delete */
	bool		merge_delete;	/* full sync by one ordered key: merged batches (sync_merge.c) */
	bool		row_values;		/* this batch's rows as values and nulls, not composites */
	bool		wrote_direct;	/* batches written directly (sync_direct.c) */
	bool		wrote_statements;	/* and by statements, because: */
	const char *statements_reason;	/* (a constant string) */
	int			key_idx;		/* that key's column */
	Datum		prev_key;		/* the highest key of the previous batches */
	bool		have_prev_key;
	int64		source_count;
	int64		target_count;
	int64		n_read,
				n_inserted,
				n_updated,
				n_deleted,
				n_rejected,
				n_purged;
	MemoryContext cxt;
	MemoryContext batch_cxt;
} SyncRun;

/* one batch of raw rows */
typedef struct SyncBatch
{
	int			n;
	char	 ***vals;
	unsigned long **lens;
} SyncBatch;

/* sync_engine.c: the steps of a run, and helpers the other two use */
extern void iact_sync_step_begin(SyncRun *r, void *arg);
extern void iact_sync_step_batch(SyncRun *r, void *arg);
extern void iact_sync_step_finish(SyncRun *r, void *arg);
extern void iact_sync_step_all(SyncRun *r, void *arg);
extern char *iact_sync_spi_text(HeapTuple tup, int col);
extern void iact_sync_spi_exec(const char *sql, int expected);

/* sync_batch.c: the upsert plan, converting and applying one batch */
extern char *iact_sync_column_list(SyncRun *r, const char *prefix, bool keys_only,
								   bool non_keys_only);
extern void iact_sync_append_key_match(struct StringInfoData *sql, SyncRun *r, const char *a,
									   const char *b);
extern void iact_sync_prepare_plans(SyncRun *r);
extern void iact_sync_apply_batch(SyncRun *r, SyncBatch *b);
extern ErrorData *iact_sync_in_subxact(SyncRun *r, void (*fn) (SyncRun *, void *), void *arg);
extern void iact_sync_delete_tail(SyncRun *r);
extern Datum iact_sync_range_param(SyncRun *r, int idx, const char *text, bool *isnull);
extern void iact_sync_purge(SyncRun *r);

/* sync_direct.c: writing a batch without a statement, where the target allows */
typedef struct SyncDirect SyncDirect;
extern SyncDirect *iact_sync_direct_begin(SyncRun *r, bool lookup);
extern void iact_sync_direct_start(SyncDirect *d);
extern void iact_sync_direct_insert(SyncDirect *d, Datum *values, bool *nulls);
extern void iact_sync_direct_update(SyncDirect *d, ItemPointer tid, Datum *values, bool *nulls);
extern void iact_sync_direct_upsert(SyncDirect *d, Datum *values, bool *nulls);
extern void iact_sync_direct_end(SyncDirect *d);

/* sync_merge.c: a batch of a full sync by one ordered key */
extern void iact_sync_merge_prepare(SyncRun *r);
extern void iact_sync_merge_batch(SyncRun *r, SyncDirect *d, Datum **values, bool **nulls,
								  Datum *keys, int n);
extern bool iact_sync_merge_possible(SyncRun *r);
extern void iact_sync_merge_free(SyncRun *r);
extern void iact_sync_merge_delete_above(SyncRun *r);
extern bool iact_sync_same_value(Datum a, bool anull, Datum b, bool bnull, Form_pg_attribute att);

/* sync_run.c: the run record and the watermark */
extern void iact_sync_save_run(SyncRun *r, const char *status, const char *error);
extern void iact_sync_save_watermark(SyncRun *r);

/* sync_security.c: who runs what */
typedef struct SyncAs
{
	Oid			user;
	int			sec;
	int			nest;
} SyncAs;
extern Oid	iact_sync_registry_owner(void);
extern int	iact_sync_pin_search_path(void);
extern void iact_sync_unpin_search_path(int nest);
extern void iact_sync_as_owner(SyncRun *r, SyncAs *save);
extern void iact_sync_as_iact(SyncRun *r, SyncAs *save);
extern void iact_sync_restore(SyncAs *save);
extern Oid	iact_sync_check_target(SyncRun *r, Oid relid);

/* sync_locks.c: the session-level advisory locks of a step */
typedef struct SyncLockSet SyncLockSet;
extern SyncLockSet *iact_sync_session_locks(void);
extern void iact_sync_restore_session_locks(SyncLockSet *before, const char *target);

/* GUCs (src/sync_sql.c) */
extern int	iact_sync_batch_size;
extern bool iact_sync_allow_write_account;
extern int	iact_sync_history_days;

#endif							/* IACT_SYNC_H */
