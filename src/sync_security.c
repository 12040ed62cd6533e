/*-------------------------------------------------------------------------
 *
 * sync_security.c
 *	  Who runs what in the sync (doc/sync.md, "Who runs what"):
 *
 *	  - a table's run writes to its target as the target's OWNER, inside a
 *		security-restricted operation with search_path pinned, the way
 *		VACUUM and REFRESH MATERIALIZED VIEW act on a table, so the target's
 *		triggers, constraints, domains and index functions (and the MariaDB
 *		user mapping and its connection rules) are the owner's, whoever
 *		started the run;
 *	  - iact's own bookkeeping (iact.sync_tables, sync_runs, sync_rejects,
 *		the temporary table of seen keys) is written as the owner of the
 *		registry (the extension's owner), with search_path pinned;
 *	  - the registry is changed only through iact._sync_register,
 *		_sync_unregister and _sync_alter, which check that the caller has
 *		the privileges of the target's owner;
 *	  - a registration is bound to its table (sync_tables.target_oid): a
 *		table created later under the same name is refused;
 *	  - the session-level advisory locks of a step are released after it
 *		(sync_locks.c).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "sync.h"

#include "access/htup_details.h"
#include "catalog/namespace.h"
#include "catalog/pg_class.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "nodes/makefuncs.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/syscache.h"

PG_FUNCTION_INFO_V1(iact_sync_register);
PG_FUNCTION_INFO_V1(iact_sync_unregister);
PG_FUNCTION_INFO_V1(iact_sync_alter);

/* the owner of iact.sync_tables: who writes iact's bookkeeping */
Oid
iact_sync_registry_owner(void)
{
	Oid			nsp = get_namespace_oid("iact", false);
	Oid			relid = get_relname_relid("sync_tables", nsp);

	if (!OidIsValid(relid))
		elog(ERROR, "iact.sync_tables does not exist");
	return iact_rel_owner(relid);
}

/*
 * Pin search_path = pg_catalog, pg_temp in a new GUC nest level; returns
 * the level for iact_sync_unpin_search_path().  An error in between pops it
 * with the (sub)transaction.
 */
int
iact_sync_pin_search_path(void)
{
	int			nest = NewGUCNestLevel();

	(void) set_config_option("search_path", "pg_catalog, pg_temp", PGC_USERSET, PGC_S_SESSION,
							 GUC_ACTION_SAVE, true, 0, false);
	return nest;
}

void
iact_sync_unpin_search_path(int nest)
{
	AtEOXact_GUC(false, nest);
}

/*
 * Become the target's owner for the writes of one step: the current user and
 * security context are saved in *save; restore with iact_sync_restore().  On
 * an error the (sub)transaction's abort restores them.
 *
 * The owner is looked up again at every step, with the target locked
 * (RowExclusiveLock, the lock its writes take anyway, held until the step's
 * transaction ends), so that ALTER TABLE ... OWNER TO, or a table dropped and
 * created again, between two batch commits takes effect from the next batch
 * on: a run never writes as a role that no longer owns the table (the new
 * owner's triggers would run with the old owner's rights).  The role that
 * started the run must have the privileges of the new owner too.
 */
void
iact_sync_as_owner(SyncRun *r, SyncAs *save)
{
	Oid			relid;

	GetUserIdAndSecContext(&save->user, &save->sec);
	relid = RangeVarGetRelid(makeRangeVar(r->conf.tgt_schema, r->conf.tgt_table, -1), RowExclusiveLock, true);
	r->owner = iact_rel_owner(iact_sync_check_target(r, relid));
	if (!OidIsValid(r->owner))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("target table %s does not exist", r->conf.tgt_qual),
				 errhint("Register the table again with iact.sync_add_table() to create it.")));
	if (!has_privs_of_role(r->outer_user, r->owner))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("must be owner of table %s to sync it", r->conf.tgt_qual),
				 errdetail("The table's owner changed during the run; only that role, its members and superusers may sync it."),
				 errhint("Run the sync again as the new owner (or a member of it).")));
	SetUserIdAndSecContext(r->owner, save->sec | SECURITY_RESTRICTED_OPERATION |
						   SECURITY_LOCAL_USERID_CHANGE);
	save->nest = iact_sync_pin_search_path();
}

/*
 * Refuse a target that is not the table registered: the registration keeps
 * the oid of its target (sync_tables.target_oid), and a table dropped then
 * created again under the same name, perhaps by another role, is another
 * table: its owner registers it if it is to be synced.  Returns relid.
 */
Oid
iact_sync_check_target(SyncRun *r, Oid relid)
{
	const char *owner;

	if (!r->conf.check_oid || !OidIsValid(relid) || relid == r->conf.tgt_oid)
		return relid;
	owner = GetUserNameFromId(iact_rel_owner(relid), true);
	ereport(ERROR,
			(errcode(ERRCODE_UNDEFINED_TABLE),
			 errmsg("target table %s is not the table registered for this sync", r->conf.tgt_qual),
			 OidIsValid(r->conf.tgt_oid) ?
			 errdetail("The table registered (oid %u) was dropped (or renamed); %s is a table created since, owned by %s, which must register it to have it synced.",
					   r->conf.tgt_oid, r->conf.tgt_qual, owner ? owner : "?") :
			 errdetail("The table registered did not exist when iact was updated to 1.1; %s is a table created since, whose owner must register it to have it synced.",
					   r->conf.tgt_qual),
			 errhint("To sync %s, its owner (or a superuser) removes the old registration with iact.sync_remove_table('%s') and registers the table again with iact.sync_add_table().",
					 r->conf.tgt_qual, r->conf.tgt_qual)));
	return InvalidOid;			/* not reached */
}

/*
 * Become the registry's owner for iact's bookkeeping, from the run's frame or
 * from inside a step (the step's restricted operation is left for the
 * bookkeeping's fixed statements on iact's own tables; the caller's own
 * security context, saved when the run began, is kept).
 */
void
iact_sync_as_iact(SyncRun *r, SyncAs *save)
{
	GetUserIdAndSecContext(&save->user, &save->sec);
	SetUserIdAndSecContext(r->registry_owner, r->outer_sec | SECURITY_LOCAL_USERID_CHANGE);
	save->nest = iact_sync_pin_search_path();
}

void
iact_sync_restore(SyncAs *save)
{
	iact_sync_unpin_search_path(save->nest);
	SetUserIdAndSecContext(save->user, save->sec);
}

/* ---- the registry's writers ---- */

/*
 * Refuse unless the current user has the privileges of the target's owner.
 * A target that no longer exists has no owner: only a superuser may then
 * change its registration.
 */
static void
check_target_owner(Oid relid, const char *target)
{
	Oid			owner = iact_rel_owner(relid);

	if (OidIsValid(owner) ? has_privs_of_role(GetUserId(), owner) : superuser())
		return;
	ereport(ERROR,
			(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
			 errmsg("must be owner of table %s to change its sync registration", target),
			 OidIsValid(owner) ?
			 errdetail("The registration of a table belongs to the table's owner (or a member of the owning role).") :
			 errdetail("The table no longer exists; only a superuser may change its registration.")));
}

/*
 * Run one fixed statement on iact.sync_tables as the registry's owner
 * (search_path pinned).  Returns SPI_processed; the first column of the
 * first row (an int4) in *id when id is given.
 */
static uint64
registry_exec(const char *sql, int nargs, Oid *types, Datum *values, const char *nulls,
			  int expected, int32 *id)
{
	Oid			save_user;
	int			save_sec;
	int			nest;
	uint64		n;

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	GetUserIdAndSecContext(&save_user, &save_sec);
	SetUserIdAndSecContext(iact_sync_registry_owner(), save_sec | SECURITY_LOCAL_USERID_CHANGE);
	nest = iact_sync_pin_search_path();
	if (SPI_execute_with_args(sql, nargs, types, values, nulls, false, 0) != expected)
		elog(ERROR, "could not write iact.sync_tables");
	n = SPI_processed;
	if (id != NULL && n > 0)
	{
		bool		isnull;

		*id = DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	}
	iact_sync_unpin_search_path(nest);
	SetUserIdAndSecContext(save_user, save_sec);
	SPI_finish();
	return n;
}

/*
 * iact._sync_register(server name, source_schema text, source_table text,
 *     target regclass, key_columns text[], watermark_column text,
 *     lookback bigint, batch_size integer, retention_days integer,
 *     retention_column text, tinyint1_as_boolean boolean) RETURNS integer
 * The caller must have the privileges of the target's owner; the values were
 * checked by iact.sync_add_table (and again by the table's constraints).
 */
Datum
iact_sync_register(PG_FUNCTION_ARGS)
{
	Oid			types[13] = {NAMEOID, TEXTOID, TEXTOID, NAMEOID, NAMEOID, TEXTARRAYOID, TEXTOID,
	INT8OID, INT4OID, INT4OID, TEXTOID, BOOLOID, REGCLASSOID};
	Datum		values[13];
	char		nulls[13];
	Oid			relid;
	int32		id = 0;
	int			i;
	char	   *nsp;
	char	   *rel;

	if (PG_ARGISNULL(0) || PG_ARGISNULL(2) || PG_ARGISNULL(3) || PG_ARGISNULL(4) ||
		PG_ARGISNULL(6) || PG_ARGISNULL(8) || PG_ARGISNULL(10))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("server, source_table, target, key_columns, lookback, retention_days and tinyint1_as_boolean must not be NULL")));
	relid = PG_GETARG_OID(3);
	nsp = get_namespace_name(get_rel_namespace(relid));
	rel = get_rel_name(relid);
	if (nsp == NULL || rel == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("target table %u does not exist", relid)));
	check_target_owner(relid, quote_qualified_identifier(nsp, rel));
	memset(nulls, ' ', sizeof(nulls));
	for (i = 0; i < 11; i++)
	{
		int			arg = i < 3 ? i : i - 1;	/* target -> schema, table */

		if (i == 3 || i == 4)
			continue;
		if (PG_ARGISNULL(arg))
			nulls[i] = 'n';
		else
			values[i] = PG_GETARG_DATUM(arg);
	}
	values[3] = DirectFunctionCall1(namein, CStringGetDatum(nsp));
	values[4] = DirectFunctionCall1(namein, CStringGetDatum(rel));
	values[11] = PG_GETARG_DATUM(10);
	values[12] = ObjectIdGetDatum(relid);	/* this table, not its name */
	registry_exec("INSERT INTO iact.sync_tables (server_name, source_schema, source_table, "
				  "target_schema, target_table, key_columns, watermark_column, lookback, batch_size, "
				  "retention_days, retention_column, tinyint1_as_boolean, target_oid) "
				  "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) RETURNING id",
				  13, types, values, nulls, SPI_OK_INSERT_RETURNING, &id);
	PG_RETURN_INT32(id);
}

/* the target of a registration: its relid (InvalidOid when gone) and name */
static Oid
registered_target(int32 table_id, char **name)
{
	Oid			types[1] = {INT4OID};
	Datum		values[1] = {Int32GetDatum(table_id)};
	Oid			save_user;
	int			save_sec;
	int			nest;
	Oid			relid;
	char	   *schema;
	char	   *table;
	MemoryContext cxt = CurrentMemoryContext;

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	GetUserIdAndSecContext(&save_user, &save_sec);
	SetUserIdAndSecContext(iact_sync_registry_owner(), save_sec | SECURITY_LOCAL_USERID_CHANGE);
	nest = iact_sync_pin_search_path();
	if (SPI_execute_with_args("SELECT target_schema::text, target_table::text FROM iact.sync_tables "
							  "WHERE id = $1", 1, types, values, NULL, true, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not read iact.sync_tables");
	if (SPI_processed != 1)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("sync table %d is not registered", table_id)));
	schema = MemoryContextStrdup(cxt, SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1));
	table = MemoryContextStrdup(cxt, SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2));
	iact_sync_unpin_search_path(nest);
	SetUserIdAndSecContext(save_user, save_sec);
	SPI_finish();
	relid = get_relname_relid(table, get_namespace_oid(schema, true));
	*name = quote_qualified_identifier(schema, table);
	return relid;
}

/* iact._sync_unregister(table_id integer) RETURNS boolean */
Datum
iact_sync_unregister(PG_FUNCTION_ARGS)
{
	Oid			types[1] = {INT4OID};
	Datum		values[1];
	char	   *name;
	Oid			relid;

	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("table_id must not be NULL")));
	values[0] = PG_GETARG_DATUM(0);
	relid = registered_target(PG_GETARG_INT32(0), &name);
	check_target_owner(relid, name);
	PG_RETURN_BOOL(registry_exec("DELETE FROM iact.sync_tables WHERE id = $1", 1, types, values,
								 NULL, SPI_OK_DELETE, NULL) == 1);
}

/*
 * iact._sync_alter(table_id integer, enabled boolean, lookback bigint,
 *     batch_size integer, retention_days integer, reset_watermark boolean)
 * RETURNS boolean: NULL leaves a setting as it is.
 */
Datum
iact_sync_alter(PG_FUNCTION_ARGS)
{
	Oid			types[6] = {INT4OID, BOOLOID, INT8OID, INT4OID, INT4OID, BOOLOID};
	Datum		values[6];
	char		nulls[6];
	char	   *name;
	Oid			relid;
	int			i;

	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("table_id must not be NULL")));
	if ((!PG_ARGISNULL(2) && (PG_GETARG_INT64(2) < 0 || PG_GETARG_INT64(2) > INT64CONST(3153600000))) ||
		(!PG_ARGISNULL(3) && (PG_GETARG_INT32(3) < 0 || PG_GETARG_INT32(3) > 1000000)) ||
		(!PG_ARGISNULL(4) && (PG_GETARG_INT32(4) < 0 || PG_GETARG_INT32(4) > 36500)))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid option: lookback must be between 0 and 3153600000, batch_size between 0 and 1000000, retention_days between 0 and 36500"),
				 errhint("batch_size 0 goes back to the iact.sync_batch_size setting; retention_days 0 keeps every row.")));
	relid = registered_target(PG_GETARG_INT32(0), &name);
	check_target_owner(relid, name);
	for (i = 0; i < 6; i++)
	{
		nulls[i] = PG_ARGISNULL(i) ? 'n' : ' ';
		values[i] = PG_ARGISNULL(i) ? (Datum) 0 : PG_GETARG_DATUM(i);
	}
	PG_RETURN_BOOL(registry_exec("UPDATE iact.sync_tables SET enabled = coalesce($2, enabled), "
								 "lookback = coalesce($3, lookback), "
								 "batch_size = CASE WHEN $4 IS NULL THEN batch_size "
								 "WHEN $4 OPERATOR(pg_catalog.=) 0 THEN NULL ELSE $4 END, "
								 "retention_days = coalesce($5, retention_days), "
								 "last_watermark = CASE WHEN $6 THEN NULL ELSE last_watermark END "
								 "WHERE id = $1", 6, types, values, nulls, SPI_OK_UPDATE, NULL) == 1);
}
