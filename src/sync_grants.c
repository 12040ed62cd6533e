/*-------------------------------------------------------------------------
 *
 * sync_grants.c
 *	  The grants check of a MariaDB account, scoped to what iact reads.
 *
 * What counts is every privilege the account holds -- its own grants, those
 * of PUBLIC (MariaDB 10.11's default install grants ALL on `test` and
 * `test\_%` to PUBLIC), and those of every role it holds, nested roles
 * included, whether or not the role is its default -- that can write the
 * source databases: the databases the server's registrations read (and the
 * one being read now).  A privilege counts when it is not read-only and it is
 * global, on one of those databases (a database grant's name is a LIKE
 * pattern, as in MariaDB), on a table or routine in one, EXECUTE on a routine
 * there that runs with its definer's rights, PROXY, or a grant option on any
 * of those.  Such an account is refused (unless iact.sync_allow_write_account);
 * write privileges anywhere else are returned to the caller to be reported.
 *
 * Roles are inspected by activating each in turn (SET ROLE, a session
 * setting: nothing is written) and reading SHOW GRANTS, which then lists the
 * role's grants and those of the roles it holds; the session's role is put
 * back afterwards.  Only the privilege lists, objects and grantees are ever
 * reported: a SHOW GRANTS line may hold a password hash.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "sync.h"
#include "sync_remote.h"

#include "access/genam.h"
#include "access/table.h"
#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "foreign/foreign.h"
#include "lib/stringinfo.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"

#include "mariadb_client.h"

/* what the check found */
typedef struct GrantsCheck
{
	IactMyConn *conn;
	const char *server;
	List	   *source_dbs;		/* char * */
	StringInfoData refused;		/* can write the source */
	StringInfoData elsewhere;	/* can write something else */
} GrantsCheck;

/* privileges a read-only account may hold anywhere */
static bool
privilege_is_read_only(const char *p)
{
	static const char *const ok[] = {
		"SELECT", "SHOW VIEW", "USAGE", "PROCESS", "SHOW DATABASES", "REPLICATION CLIENT",
		"BINLOG MONITOR", "SLAVE MONITOR", "REPLICA MONITOR", NULL
	};
	int			i;

	for (i = 0; ok[i]; i++)
		if (strcmp(p, ok[i]) == 0)
			return true;
	return false;
}

/* append item to list unless it is there already ("a; b; c") */
static void
add_item(StringInfo list, const char *item)
{
	const char *p = list->data;
	size_t		n = strlen(item);

	while (p && (p = strstr(p, item)) != NULL)
	{
		if ((p == list->data || p[-1] == ' ') && (p[n] == ';' || p[n] == '\0'))
			return;
		p += n;
	}
	appendStringInfo(list, "%s%s", list->len ? "; " : "", item);
}

/* "a; b" (an add_item list) as "a, b" */
static char *
replace_semicolons(char *list)
{
	char	   *c;

	for (c = list; *c; c++)
		if (*c == ';')
			*c = ',';
	return list;
}

/*
 * Read one name at *p: `quoted` (`` inside is a `), or bare up to one of
 * the stop characters.  Returns it (palloc'd) and advances *p.
 */
static char *
read_name(const char **p, const char *stop)
{
	StringInfoData s;
	const char *c = *p;

	initStringInfo(&s);
	if (*c == '`')
	{
		for (c++; *c; c++)
		{
			if (*c == '`' && c[1] == '`')
				appendStringInfoChar(&s, *c++);
			else if (*c == '`')
			{
				c++;
				break;
			}
			else
				appendStringInfoChar(&s, *c);
		}
	}
	else
		for (; *c && strchr(stop, *c) == NULL; c++)
			appendStringInfoChar(&s, *c);
	*p = c;
	return s.data;
}

/* MariaDB's match of a database name against a grant's LIKE pattern */
static bool
like_match(const char *pat, const char *s)
{
	for (; *pat; pat++, s++)
	{
		if (*pat == '%')
		{
			for (;; s++)
			{
				if (like_match(pat + 1, s))
					return true;
				if (*s == '\0')
					return false;
			}
		}
		if (*s == '\0')
			return false;
		if (*pat == '\\' && pat[1] != '\0')
			pat++;
		else if (*pat == '_')
			continue;
		if (*pat != *s)
			return false;
	}
	return *s == '\0';
}

/* is database db (a pattern when is_pattern) one iact reads? */
static bool
db_is_source(GrantsCheck *gc, const char *db, bool is_pattern)
{
	ListCell   *lc;

	foreach(lc, gc->source_dbs)
	{
		const char *src = lfirst(lc);

		if (is_pattern ? like_match(db, src) : strcmp(db, src) == 0)
			return true;
	}
	return false;
}

/*
 * Does routine db.name of the given type (PROCEDURE, FUNCTION, PACKAGE,
 * PACKAGE BODY) run with its definer's rights?  The type matters: a
 * procedure and a function may share a name.
 */
static bool
routine_is_definer(GrantsCheck *gc, const char *type, const char *db, const char *name)
{
	char	   *sql;
	unsigned int ncols;
	char	  **row;
	unsigned long *lens;
	int			rc;
	bool		definer = true;	/* not visible: assume the worst */

	sql = psprintf("SELECT SECURITY_TYPE FROM information_schema.ROUTINES "
				   "WHERE ROUTINE_SCHEMA = %s AND ROUTINE_NAME = %s AND ROUTINE_TYPE = '%s'",
				   iact_sync_my_literal(gc->conn, db), iact_sync_my_literal(gc->conn, name), type);
	if (iact_my_query(gc->conn, sql, &ncols) != 0)
		iact_sync_my_error(gc->conn, ERRCODE_SQLCLIENT_UNABLE_TO_ESTABLISH_SQLCONNECTION,
						   gc->server, "reading information_schema.ROUTINES", NULL);
	while ((rc = iact_my_fetch(gc->conn, &row, &lens)) == 1)
		if (row[0] != NULL && strcmp(row[0], "INVOKER") == 0)
			definer = false;
	if (rc < 0)
		iact_sync_my_error(gc->conn, ERRCODE_SQLCLIENT_UNABLE_TO_ESTABLISH_SQLCONNECTION,
						   gc->server, "reading information_schema.ROUTINES", NULL);
	iact_my_query_end(gc->conn);
	return definer;
}

/*
 * Where the privilege list of a GRANT line (from after "GRANT ") ends: its
 * " ON ", outside quotes and column lists.  NULL for a role grant ("GRANT
 * `role` TO ..."), the terminating NUL for a line not understood.
 */
static const char *
find_on(const char *c)
{
	int			depth = 0;

	for (; *c; c++)
	{
		if (*c == '`')
			for (c++; *c && !(*c == '`' && c[1] != '`'); c++)
				if (*c == '`')
					c++;
		if (*c == '\0')
			break;
		if (*c == '(')
			depth++;
		else if (*c == ')')
			depth--;
		else if (depth == 0 && strncmp(c, " ON ", 4) == 0)
			return c;
		else if (depth == 0 && strncmp(c, " TO ", 4) == 0)
			return NULL;
	}
	return c;
}

/* who holds a grant (the text after " TO "): never what follows (a password hash) */
static char *
grantee_of(const char *c)
{
	const char *e = c;

	if (strncmp(c, "PUBLIC", 6) == 0)
		return "PUBLIC";
	while (*e && strncmp(e, " IDENTIFIED", 11) != 0 && strncmp(e, " WITH ", 6) != 0 &&
		   strncmp(e, " REQUIRE", 8) != 0)
		e++;
	return pnstrdup(c, e - c);
}

/*
 * Drop column lists from a privilege list, in place: SELECT (a, b).  A
 * quoted column name may hold parentheses: `(` must not open a list.
 */
static void
strip_column_lists(char *privs)
{
	char	   *r = privs,
			   *w = privs;
	int			depth = 0;

	for (; *r; r++)
	{
		if (*r == '`' && depth > 0)
		{
			/* skip the quoted name (`` inside is a `) */
			for (r++; *r && !(*r == '`' && r[1] != '`'); r++)
				if (*r == '`')
					r++;
			if (*r == '\0')
				break;
		}
		else if (*r == '(')
			depth++;
		else if (*r == ')')
			depth--;
		else if (depth == 0)
			*w++ = *r;
	}
	*w = '\0';
}

/*
 * Check one SHOW GRANTS line; what it grants that can write goes to
 * gc->refused (the source) or gc->elsewhere.  A role grant is skipped (the
 * role is inspected by itself), as is SET DEFAULT ROLE.
 */
static void
check_grant_line(GrantsCheck *gc, const char *line)
{
	const char *c;
	const char *on = NULL;
	const char *to;
	char	   *privs;
	char	   *db;
	char	   *obj = NULL;
	char	   *object;
	char	   *grantee;
	bool		in_source;
	const char *routine_type = NULL;	/* PROCEDURE, FUNCTION, ... or NULL */
	char	   *tok,
			   *save;
	StringInfoData src_privs;
	StringInfoData other_privs;

	if (strncmp(line, "SET DEFAULT ROLE", 16) == 0)
		return;
	if (strncmp(line, "GRANT ", 6) != 0)
	{
		add_item(&gc->refused, "an unrecognised grant");
		return;
	}
	on = find_on(line + 6);
	if (on == NULL)
		return;					/* GRANT `role` TO ...: a role, inspected by itself */
	if (*on == '\0')
	{
		add_item(&gc->refused, "an unrecognised grant");
		return;
	}
	privs = pnstrdup(line + 6, on - line - 6);

	/* the object: [FUNCTION|PROCEDURE|PACKAGE [BODY]] db.obj, or PROXY's user */
	c = on + 4;
	if (strncmp(c, "FUNCTION ", 9) == 0)
		c += 9, routine_type = "FUNCTION";
	else if (strncmp(c, "PROCEDURE ", 10) == 0)
		c += 10, routine_type = "PROCEDURE";
	else if (strncmp(c, "PACKAGE BODY ", 13) == 0)
		c += 13, routine_type = "PACKAGE BODY";
	else if (strncmp(c, "PACKAGE ", 8) == 0)
		c += 8, routine_type = "PACKAGE";
	to = strstr(c, " TO ");
	if (to == NULL)
	{
		add_item(&gc->refused, "an unrecognised grant");
		return;
	}
	object = pnstrdup(on + 4, to - on - 4);
	if (strncmp(privs, "PROXY", 5) == 0)
		db = NULL;				/* acting as another account: as global */
	else
	{
		bool		quoted = (*c == '`');

		db = read_name(&c, ".");
		if (*c == '.')
		{
			c++;
			obj = read_name(&c, " ");
		}
		if (!quoted && strcmp(db, "*") == 0)
			db = NULL;			/* *.*: global */
	}
	in_source = db == NULL ||
		db_is_source(gc, db, obj != NULL && strcmp(obj, "*") == 0 && routine_type == NULL);

	grantee = grantee_of(to + 4);
	strip_column_lists(privs);
	initStringInfo(&src_privs);
	initStringInfo(&other_privs);
	for (tok = strtok_r(privs, ",", &save); tok; tok = strtok_r(NULL, ",", &save))
	{
		char	   *p = tok;
		char	   *e;
		bool		bad = in_source;

		while (*p == ' ')
			p++;
		e = p + strlen(p);
		while (e > p && e[-1] == ' ')
			*--e = '\0';
		if (privilege_is_read_only(p))
			continue;
		/*
		 * EXECUTE of a routine writes nothing by itself when the routine runs
		 * with the caller's rights (checked here); one that runs as its
		 * definer writes what the definer may
		 */
		if (routine_type != NULL && strcmp(p, "EXECUTE") == 0 && db != NULL && obj != NULL &&
			!routine_is_definer(gc, routine_type, db, obj))
			continue;
		add_item(bad ? &src_privs : &other_privs, p);
	}
	if (strstr(to, " WITH GRANT OPTION") != NULL)
		add_item(in_source ? &src_privs : &other_privs, "GRANT OPTION");
	/* one item per line: "PRIV, PRIV ON object TO grantee" */
	if (src_privs.len > 0)
		add_item(&gc->refused, psprintf("%s ON %s TO %s",
										replace_semicolons(src_privs.data), object, grantee));
	if (other_privs.len > 0)
		add_item(&gc->elsewhere, psprintf("%s ON %s TO %s",
										  replace_semicolons(other_privs.data), object, grantee));
}

/* the databases the server's registrations read (iact.sync_tables, no ACL check) */
static List *
registered_source_dbs(Oid serverid, const char *server_dbname)
{
	List	   *dbs = NIL;
	Oid			nsp = get_namespace_oid("iact", true);
	Oid			relid = OidIsValid(nsp) ? get_relname_relid("sync_tables", nsp) : InvalidOid;
	ForeignServer *server = GetForeignServer(serverid);
	Relation	rel;
	SysScanDesc scan;
	HeapTuple	tup;
	AttrNumber	a_server,
				a_schema;

	if (!OidIsValid(relid))
		return NIL;
	a_server = get_attnum(relid, "server_name");
	a_schema = get_attnum(relid, "source_schema");
	if (a_server == InvalidAttrNumber || a_schema == InvalidAttrNumber)
		return NIL;
	rel = table_open(relid, AccessShareLock);
	scan = systable_beginscan(rel, InvalidOid, false, NULL, 0, NULL);
	while (HeapTupleIsValid(tup = systable_getnext(scan)))
	{
		bool		isnull;
		Datum		d = heap_getattr(tup, a_server, RelationGetDescr(rel), &isnull);

		if (isnull || strcmp(NameStr(*DatumGetName(d)), server->servername) != 0)
			continue;
		d = heap_getattr(tup, a_schema, RelationGetDescr(rel), &isnull);
		if (!isnull)
			dbs = lappend(dbs, TextDatumGetCString(d));
		else if (server_dbname != NULL)
			dbs = lappend(dbs, pstrdup(server_dbname));
	}
	systable_endscan(scan);
	table_close(rel, AccessShareLock);
	return dbs;
}

/*
 * Run a query, return the first column of every row (NULLs skipped); what
 * names it in an error.  *first_is_null (if given) tells whether the first
 * row's value was NULL.
 */
static List *
query_column(GrantsCheck *gc, const char *sql, const char *what, bool *first_is_null)
{
	List	   *vals = NIL;
	unsigned int ncols;
	char	  **row;
	unsigned long *lens;
	int			rc;

	if (iact_my_query(gc->conn, sql, &ncols) != 0)
		iact_sync_my_error(gc->conn, ERRCODE_SQLCLIENT_UNABLE_TO_ESTABLISH_SQLCONNECTION,
						   gc->server, what, NULL);
	while ((rc = iact_my_fetch(gc->conn, &row, &lens)) == 1)
	{
		if (first_is_null && vals == NIL)
			*first_is_null = (row[0] == NULL);
		if (row[0] != NULL)
			vals = lappend(vals, pnstrdup(row[0], lens[0]));
	}
	if (rc < 0)
		iact_sync_my_error(gc->conn, ERRCODE_SQLCLIENT_UNABLE_TO_ESTABLISH_SQLCONNECTION,
						   gc->server, what, NULL);
	iact_my_query_end(gc->conn);
	return vals;
}

/* read every line of SHOW GRANTS (in the session's current role) */
static List *
show_grants(GrantsCheck *gc)
{
	return query_column(gc, "SHOW GRANTS", "SHOW GRANTS", NULL);
}

/*
 * The grants check of a fresh connection (see the file's header).  reading_db
 * is the database this call reads (NULL: the server's dbname).  Throws 42501
 * when the account can write the source and iact.sync_allow_write_account is
 * off; returns the write privileges elsewhere ("PRIV ON obj TO grantee; ..."),
 * or NULL when there are none.
 */
char *
iact_sync_check_grants(IactMyConn *conn, Oid serverid, const char *user,
					   const char *server_dbname, const char *reading_db)
{
	ForeignServer *server = GetForeignServer(serverid);
	GrantsCheck gc;
	List	   *lines;
	List	   *roles;
	List	   *cur;
	bool		no_role = true;
	ListCell   *lc;
	StringInfoData dbs;

	gc.conn = conn;
	gc.server = server->servername;
	gc.source_dbs = registered_source_dbs(serverid, server_dbname);
	if (reading_db != NULL || server_dbname != NULL)
		gc.source_dbs = lappend(gc.source_dbs,
								pstrdup(reading_db ? reading_db : server_dbname));
	initStringInfo(&gc.refused);
	initStringInfo(&gc.elsewhere);

	/* the account, PUBLIC and the active role (with the roles it holds) */
	lines = show_grants(&gc);
	/* every other role the account holds directly, each with its own */
	cur = query_column(&gc, "SELECT CURRENT_ROLE()", "reading the account's roles", &no_role);
	roles = query_column(&gc, "SELECT ROLE_NAME FROM information_schema.APPLICABLE_ROLES "
						 "WHERE GRANTEE = CURRENT_USER()", "reading the account's roles", NULL);
	foreach(lc, roles)
	{
		char	   *role = lfirst(lc);

		if (cur != NIL && strcmp(role, linitial(cur)) == 0)
			continue;
		if (iact_my_exec(conn, psprintf("SET ROLE %s", iact_sync_my_ident(role))) != 0)
			iact_sync_my_error(conn, ERRCODE_SQLCLIENT_UNABLE_TO_ESTABLISH_SQLCONNECTION,
							   gc.server, psprintf("SET ROLE %s", iact_sync_my_ident(role)), NULL);
		lines = list_concat(lines, show_grants(&gc));
	}
	if (roles != NIL &&
		iact_my_exec(conn, cur != NIL ? psprintf("SET ROLE %s", iact_sync_my_ident(linitial(cur)))
					 : "SET ROLE NONE") != 0)
		iact_sync_my_error(conn, ERRCODE_SQLCLIENT_UNABLE_TO_ESTABLISH_SQLCONNECTION,
						   gc.server, "SET ROLE", NULL);

	foreach(lc, lines)
		check_grant_line(&gc, lfirst(lc));

	if (gc.refused.len > 0 && !iact_sync_allow_write_account)
	{
		initStringInfo(&dbs);
		foreach(lc, gc.source_dbs)
			add_item(&dbs, iact_sync_my_ident(lfirst(lc)));
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("MariaDB account \"%s\" of server \"%s\" can write to the source",
						user, gc.server),
				 errdetail("Its grants that can write the source databases (%s) include: %s.",
						   dbs.data, gc.refused.data),
				 errhint("Use an account with SELECT (and SHOW VIEW) only on the source; a superuser may set iact.sync_allow_write_account = on to accept it anyway.")));
	}
	return gc.elsewhere.len > 0 ? gc.elsewhere.data : NULL;
}

/*
 * The NOTICE about write privileges outside the source: once per session for
 * the same server, account and privileges (a registration of many tables
 * says it once).
 */
void
iact_sync_notice_elsewhere(const char *server, const char *user, const char *elsewhere)
{
	static List *told = NIL;	/* "server\001user\001privileges", in TopMemoryContext */
	char	   *key = psprintf("%s\001%s\001%s", server, user, elsewhere);
	ListCell   *lc;
	MemoryContext old;

	foreach(lc, told)
		if (strcmp(lfirst(lc), key) == 0)
			return;
	old = MemoryContextSwitchTo(TopMemoryContext);
	told = lappend(told, pstrdup(key));
	MemoryContextSwitchTo(old);
	ereport(NOTICE,
			(errmsg("MariaDB account \"%s\" of server \"%s\" can write outside the source databases",
					user, server),
			 errdetail("Its grants include: %s.", elsewhere),
			 errhint("This is not refused: iact reads only the source databases.  It is also recorded in iact.sync_runs.account_write_elsewhere.")));
}

/*
 * Record the write privileges outside the source in the run's row
 * (iact.sync_runs.account_write_elsewhere).  Must be called inside SPI.  A
 * database still at iact 1.0 has no such column: nothing is recorded there.
 */
void
iact_sync_record_elsewhere(int64 run_id, const char *elsewhere)
{
	Oid			nsp = get_namespace_oid("iact", true);
	Oid			relid = OidIsValid(nsp) ? get_relname_relid("sync_runs", nsp) : InvalidOid;
	Oid			argtypes[2] = {INT8OID, TEXTOID};
	Datum		args[2];
	MemoryContext cxt = CurrentMemoryContext;

	if (elsewhere == NULL || !OidIsValid(relid) ||
		get_attnum(relid, "account_write_elsewhere") == InvalidAttrNumber)
		return;
	args[0] = Int64GetDatum(run_id);
	args[1] = CStringGetTextDatum(elsewhere);
	if (SPI_execute_with_args("UPDATE iact.sync_runs SET account_write_elsewhere = $2 "
							  "WHERE id OPERATOR(pg_catalog.=) $1",
							  2, argtypes, args, NULL, false, 0) != SPI_OK_UPDATE)
		elog(ERROR, "could not update iact.sync_runs");
	MemoryContextSwitchTo(cxt);
}
