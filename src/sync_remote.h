/*-------------------------------------------------------------------------
 *
 * sync_remote.h
 *	  The PostgreSQL side of the MariaDB boundary (src/sync_remote.c): string
 *	  literals sent to MariaDB, and the reporters of what went wrong there.
 *
 * iact_sync_my_error() (a failed call) and iact_sync_my_ident() are still
 * declared in src/sync.h, with the rest of the sync.
 *
 *-------------------------------------------------------------------------
 */
#ifndef IACT_SYNC_REMOTE_H
#define IACT_SYNC_REMOTE_H

struct IactMyConn;

/* value as a MariaDB string literal, quotes included (palloc'd) */
extern char *iact_sync_my_literal(struct IactMyConn *conn, const char *value);

extern void iact_sync_my_bad_reply(const char *server, const char *what, const char *detail,
								   const char *hint) pg_attribute_noreturn();

#endif							/* IACT_SYNC_REMOTE_H */
