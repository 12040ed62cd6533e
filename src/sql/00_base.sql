-- iact extension script: built by concatenating src/sql/*.sql in order.
-- Each fragment belongs to one capability (see the file names).

\echo Use "CREATE EXTENSION iact" to load this file. \quit

COMMENT ON SCHEMA iact IS 'iact: IVR sync, non-overlapping time events, migration log, audit and health';

-- Nothing in schema iact is usable by PUBLIC unless a fragment grants it.
REVOKE ALL ON SCHEMA iact FROM PUBLIC;
