/*-------------------------------------------------------------------------
 *
 * sync_remote.h
 *	  The PostgreSQL side of the MariaDB boundary (src/sync_remote.c): the
 *	  reporters of what went wrong on the MariaDB side.
 *
 * iact_sync_my_error() (a failed call) and iact_sync_my_ident() are still
 * declared in src/sync.h, with the rest of the sync.
 *
 *-------------------------------------------------------------------------
 */
#ifndef IACT_SYNC_REMOTE_H
#define IACT_SYNC_REMOTE_H

extern void iact_sync_my_bad_reply(const char *server, const char *what, const char *detail,
								   const char *hint) pg_attribute_noreturn();

#endif							/* IACT_SYNC_REMOTE_H */
