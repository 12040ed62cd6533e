-- iact upgrade script 1.0 -> 1.1: built by concatenating
-- src/sql/update/1.0--1.1/*.sql in order.  Each fragment carries the changes
-- of one capability; together they turn an installed 1.0 into exactly what
-- iact--1.1.sql creates (test/t/070_upgrade.pl compares the two).

\echo Use "ALTER EXTENSION iact UPDATE TO '1.1'" to load this file. \quit
