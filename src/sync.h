/*-------------------------------------------------------------------------
 *
 * sync.h
 *	  Declarations shared by the sync's files (src/sync_*.c), layer by layer
 *	  as sync_engine.c's design note describes them: each section says which
 *	  file defines it and which files use it.  The entry point other
 *	  capabilities use, iact_sync_table(), is in iact.h.  Nothing here
 *	  includes mysql.h (see src/mariadb_client.h).
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
#include "nodes/pg_list.h"

/*
 * Layer 2, one value (src/sync_types.c; used by sync_convert.c, sync_target.c,
 * sync_write_upsert.c, sync_source.c and, for the type map, sync_sql.c):
 * how one MariaDB value becomes a Datum.
 */
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
 * longer one is a reject, kept out of memory (src/sync_source.c).
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

/*
 * The connection, beside the layers (src/sync_fdw.c; used by sync_source.c,
 * sync_sql.c, sync_register.c): settings from the foreign server + user
 * mapping.
 */
struct IactMyConn;
struct ForeignServer;
extern const char *iact_sync_server_time_zone(struct ForeignServer *server);
extern struct IactMyConn *iact_sync_connect_to(Oid serverid, const char *reading_db, bool notice,
											   char **dbname, char **elsewhere);
extern struct IactMyConn *iact_sync_connect(Oid serverid, char **dbname);

/* the grants check (src/sync_grants.c; used by sync_fdw.c, sync_source.c) */
extern char *iact_sync_check_grants(struct IactMyConn *conn, Oid serverid, const char *user,
									const char *server_dbname, const char *reading_db);
extern void iact_sync_notice_elsewhere(const char *server, const char *user,
									   const char *elsewhere);
extern void iact_sync_record_elsewhere(int64 run_id, const char *elsewhere);

/*
 * The PostgreSQL side of the MariaDB boundary (src/sync_remote.c; used by
 * sync_source.c and the SQL functions' files): quoting, the one MariaDB
 * error reporter.
 */
extern char *iact_sync_my_ident(const char *name);
extern void iact_sync_my_error(struct IactMyConn *conn, int sqlstate, const char *server,
							   const char *what, const char *hint) pg_attribute_noreturn();
extern struct ForeignServer *iact_sync_listing_server(const char *servername);
extern void iact_sync_listing_end(struct IactMyConn *conn, int rc, const char *servername, const char *what);



/*
 * ---- one run of one table ----
 *
 * The run's state, split by who may change it when.  SyncConf is read from
 * the registry before the first step (sync_record.c; a source database the
 * registration leaves out is filled in by sync_source.c); SyncTarget and
 * SyncPlan are filled by the begin step (sync_target.c, sync_source.c,
 * sync_engine.c); none changes afterwards.  SyncSource is the MariaDB
 * stream (sync_source.c); SyncCounts are written by the writers and the
 * steps and recorded by sync_record.c; each writer keeps its own state
 * behind SyncWriter (sync_write_*.c, sync_merge.c).
 */

/* the table's registration (iact.sync_tables), read once per run */
typedef struct SyncConf
{
	int32		table_id;
	char	   *server_name;
	char	   *src_schema;
	char	   *src_table;
	char	   *tgt_schema;
	char	   *tgt_table;
	char	   *tgt_qual;		/* schema.table, quoted */
	char	  **keys;
	int			nkeys;
	char	   *wm_col;			/* NULL: a full sync */
	int64		lookback;
	int			batch_size;
	int			retention_days;
	char	   *ret_col;
	char	   *last_wm;		/* the watermark this run starts from */
	bool		commit_batches;
	Oid			tgt_oid;		/* the table registered (sync_tables.target_oid) */
	bool		check_oid;		/* false in a 1.0 database: no such column */
} SyncConf;

/* the target as this run resolved it, and the range it syncs */
typedef struct SyncTarget
{
	Oid			relid;
	bool		tree;			/* partitioned or with inheritance children: a
								 * ctid names a row only with its tableoid */
	bool		inherits;		/* an inheritance parent: no ON CONFLICT */
	TupleDesc	tupdesc;		/* the target's row type */
	Oid			rowtype;
	Oid			arraytype;
	int16		rowlen;
	bool		rowbyval;
	char		rowalign;
	int			ncols;			/* the columns both sides have */
	SyncColumn *cols;
	int			wm_idx;			/* cols[] of the watermark, or -1 */
	int			ret_idx;		/* cols[] of the retention column, or -1 */
	bool		wm_temporal;
	char	   *wm_from;		/* the range's lower bound, or NULL */
	char	   *cutoff;			/* the retention cutoff, or NULL: keep all */
	bool		have_cutoff_value;	/* cutoff converted (iact_sync_cutoff_param) */
	Datum		cutoff_value;
	bool		cutoff_isnull;
} SyncTarget;

/* how this run writes its rows: decided once (decide_plan, sync_engine.c) */
typedef enum SyncStrategy
{
	SYNC_WRITE_LOAD,			/* the target was empty: insert every row
								 * (sync_write_load.c) */
	SYNC_WRITE_MERGE,			/* full sync by one ordered key: merge each
								 * batch with the target's rows of its key
								 * range (sync_merge.c) */
	SYNC_WRITE_UPSERT_SEEN,		/* full sync otherwise: upsert by key, the keys
								 * seen kept aside, the others deleted at the
								 * end (sync_write_upsert.c) */
	SYNC_WRITE_UPSERT_INCREMENTAL	/* an incremental run past the first:
									 * upsert by key (sync_write_upsert.c) */
} SyncStrategy;

typedef struct SyncPlan
{
	SyncStrategy strategy;
	bool		target_was_empty;	/* checked when the strategy depends on it */
	int			key_idx;		/* SYNC_WRITE_MERGE: the key's column in cols[] */
	const char *why;			/* why this strategy (a constant string) */
} SyncPlan;

/* the source rows as they stream from MariaDB (sync_source.c) */
typedef struct SyncSource
{
	struct IactMyConn *conn;
	char	   *qual;			/* `db`.`table` */
	const char *tz_name;		/* the server's source_time_zone, or NULL */
	char	   *where_sql;		/* " WHERE ..." or "": the synced range */
	bool		eof;
	char	   *wm_to;			/* the watermark of the last row read */
} SyncSource;

/* what the run did (recorded in iact.sync_runs) */
typedef struct SyncCounts
{
	int64		read,
				inserted,
				updated,
				deleted,
				rejected,
				purged;
	int64		source;			/* the counts of the synced range, -1 unknown */
	int64		target;
} SyncCounts;

struct SyncWriter;
struct RelationData;
struct PortalData;
struct SPITupleTable;

typedef struct SyncRun
{
	SyncConf	conf;			/* fixed for the run */
	SyncTarget	tgt;			/* fixed once the begin step resolved it */
	SyncPlan	plan;			/* fixed once the begin step decided it */
	SyncSource	src;
	SyncCounts	n;
	struct SyncWriter *writer;	/* the plan's writer (its private state) */

	/* who runs what (src/sync_security.c) */
	Oid			owner;			/* the target's owner: the writes */
	Oid			registry_owner; /* iact.sync_tables' owner: the bookkeeping */
	Oid			outer_user;		/* who started the run, and in which */
	int			outer_sec;		/* security context */

	int64		run_id;
	struct _SPI_plan *reject_plan;	/* sync_record.c */
	MemoryContext cxt;			/* the run's: lives until iact_sync_table ends */
	MemoryContext batch_cxt;	/* one batch's: reset before each */
	MemoryContext reject_cxt;	/* one reject's record: reset after each */
} SyncRun;

/* one batch of raw rows */
typedef struct SyncBatch
{
	int			n;
	char	 ***vals;
	unsigned long **lens;
} SyncBatch;

/*
 * Layer 1, the MariaDB source (sync_source.c; used by sync_engine.c): the
 * source's columns, the range, the stream, the count, the end.  It calls no
 * other layer (but sync_types.c's iact_sync_local_lookback) and reads
 * r->tgt as the begin step filled it.
 */
extern void iact_sync_source_open(SyncRun *r, List **names, List **dtypes, List **ctypes);
extern void iact_sync_source_range(SyncRun *r);
extern void iact_sync_source_stream(SyncRun *r, const char *order_by);
extern void iact_sync_source_fetch(SyncRun *r, SyncBatch *b);
extern int64 iact_sync_source_count(SyncRun *r);
extern void iact_sync_source_end_stream(SyncRun *r);
extern void iact_sync_source_end(SyncRun *r);

/*
 * Layer 2, conversion (sync_types.c above; sync_convert.c; used by
 * sync_engine.c, and by sync_target.c for the range's bounds): one batch of raw rows into values and nulls by
 * attribute number, the rejects set aside.
 */
typedef struct SyncConverted
{
	int			nrows;			/* rows converted */
	int		   *src_row;		/* their index in the batch */
	Datum	  **values;			/* by attribute number - 1 */
	bool	  **nulls;
	int			nrej;			/* rows rejected */
	int		   *rej_row;
	int		   *rej_col;		/* -1: the row as a whole */
	const char **rej_reason;
} SyncConverted;
extern void iact_sync_convert_batch(SyncRun *r, SyncBatch *b, SyncConverted *out);
extern bool iact_sync_bad_value(ErrorData *err);
extern ErrorData *iact_sync_in_subxact(SyncRun *r, MemoryContext errcxt,
									   void (*fn) (SyncRun *, void *), void *arg);
extern Datum iact_sync_range_param(SyncRun *r, int idx, const char *text, bool *isnull);

/*
 * Layer 3a, the target (sync_target.c; used by the writers, sync_direct.c,
 * sync_engine.c, sync_record.c): its columns, SQL fragments over them, the key's unique
 * index, the retention condition, SPI calls that come back in the caller's
 * memory context.
 */
typedef struct SyncParams
{
	int			n;
	Oid			types[6];
	Datum		values[6];
	char		nulls[6];
} SyncParams;
extern void iact_sync_target_resolve(SyncRun *r, List *names, List *dtypes, List *ctypes);
extern void iact_sync_retention_cutoff(SyncRun *r);
extern Datum iact_sync_row_datum(SyncRun *r, Datum *values, bool *nulls);
extern Datum iact_sync_rows_array(SyncRun *r, Datum *rows, int n);
extern char *iact_sync_column_list(SyncRun *r, const char *prefix, bool keys_only,
								   bool non_keys_only);
extern void iact_sync_append_key_match(struct StringInfoData *sql, SyncRun *r, const char *a,
									   const char *b);
extern bool iact_sync_append_retained(struct StringInfoData *sql, SyncRun *r, const char *alias,
									  SyncParams *p);
extern Datum iact_sync_cutoff_param(SyncRun *r, bool *isnull);
extern Oid	iact_sync_key_index(SyncRun *r, struct RelationData *rel, bool for_lookup, int *key_col);
extern void iact_sync_purge(SyncRun *r);
extern bool iact_sync_same_value(Datum a, bool anull, Datum b, bool bnull, Form_pg_attribute att);
extern char *iact_sync_spi_text(HeapTuple tup, int col);
extern void iact_sync_spi_exec(const char *sql, int expected);
extern uint64 iact_sync_spi_args(const char *sql, SyncParams *p, int expected, long count,
								 const char *what);
extern uint64 iact_sync_spi_plan(struct _SPI_plan *plan, Datum *args, const char *nulls,
								 int expected, const char *what);
extern struct PortalData *iact_sync_cursor_open(struct _SPI_plan *plan, Datum *args);
extern struct SPITupleTable *iact_sync_cursor_fetch(struct PortalData *portal, long n, int *nrows);
extern struct _SPI_plan *iact_sync_spi_prepare(const char *sql, int nargs, Oid *argtypes,
											   int cursor_options);

/*
 * Layer 3b, writing directly (sync_direct.c; used by the writers): a batch
 * through the table access method and the executor's index and constraint
 * routines, where the target allows (else NULL and w->statements_reason).
 */
typedef struct SyncDirect SyncDirect;
extern SyncDirect *iact_sync_direct_open(struct SyncWriter *w, bool lookup);
extern void iact_sync_direct_insert(SyncDirect *d, Datum *values, bool *nulls);
extern void iact_sync_direct_update(SyncDirect *d, ItemPointer tid, Datum *values, bool *nulls);
extern void iact_sync_direct_upsert(SyncDirect *d, Datum *values, bool *nulls);
extern void iact_sync_direct_close(SyncDirect *d);

/*
 * Layer 3c, the writers: one per strategy, each with its direct and its
 * statement variant and its own removal of the rows the source no longer
 * has.  Per batch: begin_batch (the rows converted, the rejects recorded),
 * write_row for each row (values and nulls by attribute number, in the
 * batch's memory), end_batch.  forget_row: a source row rejected (may be
 * NULL).  finish: after the last batch, the vanished rows.  release: on
 * every exit of the run (its prepared plans).
 */
typedef struct SyncWriter SyncWriter;
typedef struct SyncWriterOps
{
	void		(*begin_batch) (SyncWriter *w, int nrows);
	void		(*write_row) (SyncWriter *w, Datum *values, bool *nulls);
	void		(*end_batch) (SyncWriter *w);
	void		(*forget_row) (SyncWriter *w, char **vals, unsigned long *lens);
	void		(*finish) (SyncWriter *w);
	void		(*release) (SyncWriter *w);
} SyncWriterOps;

struct SyncWriter
{
	const SyncWriterOps *ops;
	SyncRun    *r;				/* reads conf, tgt, plan; adds to n */
	bool		wrote_direct;	/* batches written directly */
	bool		wrote_statements;	/* and by statements, because: */
	const char *statements_reason;	/* (a constant string) */
};

extern SyncWriter *iact_sync_load_writer(SyncRun *r);
extern SyncWriter *iact_sync_upsert_writer(SyncRun *r);
extern SyncWriter *iact_sync_merge_writer(SyncRun *r);
extern bool iact_sync_merge_possible(SyncRun *r);

/*
 * Layer 4, the run's bookkeeping (sync_record.c; used by sync_engine.c and
 * sync_run.c): the registry row, the run record, rejects, the watermark.
 * Everything here runs as iact.
 */
extern void iact_sync_load_registry(SyncRun *r);
extern int64 iact_sync_insert_run(SyncRun *r, const char *status, const char *error);
extern void iact_sync_close_stale_runs(SyncRun *r);
extern void iact_sync_save_run(SyncRun *r, const char *status, const char *error);
extern void iact_sync_save_watermark(SyncRun *r);
extern void iact_sync_reset_watermark(SyncRun *r, const char *watermark);
extern void iact_sync_prepare_rejects(SyncRun *r);
extern void iact_sync_record_reject(SyncRun *r, char **vals, unsigned long *lens, int col,
									const char *reason);

/*
 * Layer 5, the steps of a run (sync_engine.c; used by sync_run.c, the
 * layer 6 SQL entry point iact_sync_table).
 */
extern void iact_sync_step_begin(SyncRun *r, void *arg);
extern void iact_sync_step_batch(SyncRun *r, void *arg);
extern void iact_sync_step_finish(SyncRun *r, void *arg);
extern void iact_sync_step_all(SyncRun *r, void *arg);
extern void iact_sync_release(SyncRun *r);

/*
 * Who runs what (src/sync_security.c; used by sync_run.c for the owner's
 * steps, and by sync_record.c, sync_source.c, sync_write_upsert.c for what
 * runs as iact).
 */
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

/* the session-level advisory locks of a step (src/sync_locks.c; used by sync_run.c) */
typedef struct SyncLockSet SyncLockSet;
extern SyncLockSet *iact_sync_session_locks(void);
extern void iact_sync_restore_session_locks(SyncLockSet *before, const char *target);

/* GUCs (src/sync_sql.c) */
extern int	iact_sync_batch_size;
extern bool iact_sync_allow_write_account;
extern int	iact_sync_history_days;

#endif							/* IACT_SYNC_H */
