-- Security (issue 11): iact.backfill with search_path trojans planted in
-- public (sql/include/security_trojans.sql, shared with 70_security.sql, which covers the other
-- entry points): none may run.  (Apart from 70_security: backfill's internal
-- SQL was made immune to search_path separately, in src/backfill.c.)
-- (pg_regress feeds psql on standard input: the file is found through PG_ABS_SRCDIR)
\getenv abs_srcdir PG_ABS_SRCDIR
\set trojans :abs_srcdir '/sql/include/security_trojans.sql'
\i :trojans

CREATE TABLE regress_sec_bf (id int PRIMARY KEY, v int);
INSERT INTO regress_sec_bf SELECT i, 0 FROM generate_series(1, 30) i;

SET regress.stage = 'backfill';
SET search_path = public, pg_catalog;
CALL iact.backfill('sec_bf', 'regress_sec_bf', 'v = 1', NULL, 7);
RESET search_path;
SELECT count(*) FILTER (WHERE v = 1) AS backfilled, count(*) AS all_rows FROM regress_sec_bf;
SELECT status, rows_done FROM iact.backfill_runs WHERE name = 'sec_bf';

-- none of the trojans ran
SELECT stage, what, who, superuser, count(*) FROM regress_trojan_log GROUP BY 1, 2, 3, 4 ORDER BY 1, 2;

RESET regress.stage;
DROP TABLE regress_sec_bf, regress_trojans, regress_trojan_log;
DROP OWNED BY regress_sec_mallory, regress_sec_clerk;
DROP ROLE regress_sec_mallory, regress_sec_clerk;
