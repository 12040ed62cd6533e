/*-------------------------------------------------------------------------
 *
 * migration.h
 *	  Internal interface between the migration log (migration_log.c), the
 *	  migration runner (migration_run.c) and backfills (backfill.c).
 *
 *-------------------------------------------------------------------------
 */
#ifndef IACT_MIGRATION_H
#define IACT_MIGRATION_H

#include "iact.h"

#include "executor/spi.h"
#include "fmgr.h"
#include "storage/lock.h"
#include "utils/timestamp.h"

extern int	iact_migration_lock_timeout;

/* who is running this, captured before any user switch */
typedef struct MigrationActor
{
	char	   *installed_by;	/* current_user */
	char	   *session_role;	/* session_user */
	char	   *application_name;	/* may be NULL */
} MigrationActor;

/* the state of one version, as iact.migration_status sees it */
typedef struct VersionState
{
	bool		known;			/* any entry at all */
	bool		applied;
	int64		applied_id;
	char	   *description;	/* of the applied entry */
	char	   *checksum;		/* of the applied entry, may be NULL */
	char	   *down_sql;		/* of the applied entry, may be NULL */
	char	   *down_checksum;	/* of the applied entry, may be NULL */
	char	   *installed_by;	/* of the applied entry */
	int64		running_id;		/* a RUNNING apply entry, or 0 */
	char	   *running_runner;
	int			running_pid;
	char	   *last_status;
} VersionState;

extern void iact_migration_actor(MigrationActor *actor);

/* SPI on iact's own tables, as their owner with a safe search_path */
extern int	iact_migration_log_exec(const char *sql, int nargs, Oid *argtypes,
									Datum *values, const char *nulls, bool read_only);

extern void iact_migration_lock(int timeout_ms, bool session);
extern void iact_migration_unlock_session(void);
extern bool iact_migration_try_lock(void);
extern bool iact_migration_log_has_down_checksum(void);
extern int	iact_migration_timeout_ms(Datum interval, bool isnull);
extern double iact_migration_interval_ms(Interval *iv);
extern void iact_migration_set_lock_timeout(int timeout_ms);

extern char *iact_migration_text_arg(FunctionCallInfo fcinfo, int argno, const char *argname);
extern char *iact_migration_description_arg(FunctionCallInfo fcinfo, int argno);
extern void iact_migration_version_state(const char *version, VersionState *state);
extern void iact_migration_refuse_if_running(const char *version, const VersionState *state);
extern void iact_migration_refuse_apply(const char *version, const VersionState *state);
extern void iact_migration_mark_abandoned(void);

/* a new migration_log row; a status other than RUNNING is final (completed now) */
typedef struct MigrationEntry
{
	const char *version;
	const char *description;
	const char *action;			/* "apply" or "rollback" */
	const char *status;
	const char *runner;
	const char *checksum;		/* may be NULL */
	const char *up_sql;			/* may be NULL */
	const char *down_sql;		/* may be NULL; its SHA-256 goes in down_checksum */
	int64		rollback_of;	/* 0 = none */
	TimestampTz started_at;		/* 0 = now */
	int64		rows_affected;	/* -1 = unknown */
	ErrorData  *edata;			/* the error of a failed action, or NULL */
} MigrationEntry;

extern int64 iact_migration_insert_entry(const MigrationEntry *entry, const MigrationActor *actor);
extern void iact_migration_finish_entry(int64 id, const char *status, int64 rows,
										bool rows_isnull, ErrorData *edata,
										const char *error_message);

extern char *iact_migration_sha256_hex(const char *data, size_t len);

/* parse a migration's SQL, refusing empty text and transaction control */
extern List *iact_migration_parse_sql(const char *sql, const char *what);

/* refusals shared by safe_rollback_migration and log_rollback_start */
extern void iact_migration_refuse_rollback(const char *version, const VersionState *state);
/* log_rollback_start: only the applying role, its members or a superuser */
extern void iact_migration_refuse_rollback_by_other(const char *version, const VersionState *state);

#endif							/* IACT_MIGRATION_H */
