# Makefile for iact (PGXS)
#
# Sources are picked up by wildcard so each capability owns its own files:
#   src/*.c            C code, one file per capability
#   src/sql/NN_*.sql   fragments of the extension script, concatenated in order
#   sql/NN_*.sql       pg_regress tests (expected output in expected/)
#   test/isolation/    pg_isolation_regress specs and expected output
#   test/t/*.pl        TAP tests (PostgreSQL::Test::Cluster)
# Run every test with test/check.sh (see README.md).

MODULE_big = iact
EXTENSION  = iact
EXTVERSION = 1.1

SRCS = $(sort $(wildcard src/*.c))
OBJS = $(SRCS:.c=.o)
PGFILEDESC = "iact - IVR sync, time events, migrations, audit"

# The current version's script is built from src/sql/*.sql; each upgrade
# script from src/sql/update/FROM--TO/*.sql.  Released scripts are tracked
# as they shipped (iact--1.0.sql) and never edited again.
SQL_FRAGMENTS = $(sort $(wildcard src/sql/*.sql))
UPDATE_1_0 = $(sort $(wildcard src/sql/update/1.0--1.1/*.sql))
DATA = $(EXTENSION)--1.0.sql
DATA_built = $(EXTENSION)--$(EXTVERSION).sql $(EXTENSION)--1.0--1.1.sql
EXTRA_CLEAN = $(DATA_built)

REGRESS = $(basename $(notdir $(sort $(wildcard sql/*.sql))))
REGRESS_OPTS = --load-extension=iact

PG_CONFIG ?= pg_config

# MariaDB Connector/C (only src/mariadb_client.c includes mysql.h)
MARIADB_CONFIG ?= mariadb_config
ifneq ($(shell command -v $(MARIADB_CONFIG) 2>/dev/null),)
MARIADB_CFLAGS := $(shell $(MARIADB_CONFIG) --cflags)
MARIADB_LIBS := $(shell $(MARIADB_CONFIG) --libs)
endif
PG_CPPFLAGS = -I$(srcdir)/src
SHLINK_EXTRA = $(MARIADB_LIBS)
SHLIB_LINK += $(SHLINK_EXTRA)

PGXS := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)

override CFLAGS += -Wall -Wmissing-prototypes -Werror=implicit-function-declaration

$(EXTENSION)--$(EXTVERSION).sql: $(SQL_FRAGMENTS)
	cat $^ > $@

$(EXTENSION)--1.0--1.1.sql: $(UPDATE_1_0)
	cat $^ > $@

# only the MariaDB boundary sees mysql.h
src/mariadb_client.o: override CPPFLAGS += $(MARIADB_CFLAGS)
src/mariadb_client.bc: override CPPFLAGS += $(MARIADB_CFLAGS)
