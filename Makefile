# Makefile for iact (PGXS)
#
# Sources are picked up by wildcard so each capability owns its own files:
#   src/*.c                       C code, one file per capability
#   src/sql/NN_*.sql              fragments of the current version's script
#   src/sql/update/A--B/NN_*.sql  fragments of the upgrade script from A to B
#   sql/NN_*.sql                  pg_regress tests (expected output in expected/)
#   test/isolation/               pg_isolation_regress specs and expected output
#   test/t/*.pl                   TAP tests (PostgreSQL::Test::Cluster)
#
#   make && make install          build and install (PostgreSQL 15 only)
#   make installcheck             pg_regress + isolation specs + TAP tests against
#                                 the running server PGHOST/PGPORT, which must
#                                 have shared_preload_libraries = 'iact'
#   make prove_installcheck       the TAP tests only (they start their own servers)
#
# Tests that need MariaDB read it from the environment test/harness/mariadb.sh
# exports (IACT_MARIADB_*); without it they are left out and the output says so.
# test/check.sh starts everything and runs every test (see doc/development.md).
# VPATH builds (make -f /path/to/Makefile, as Debian's pg_buildext does) work.

MODULE_big = iact
EXTENSION  = iact
EXTVERSION = 1.1

# the supported PostgreSQL majors: the code uses server APIs that changed in 16
SUPPORTED_MAJORS = 15

# the source directory, also in a VPATH build; paths below are relative to it
ISRC := $(patsubst %/,%,$(dir $(firstword $(MAKEFILE_LIST))))
isrc_rel = $(patsubst $(ISRC)/%,%,$(1))

SRCS = $(call isrc_rel,$(sort $(wildcard $(ISRC)/src/*.c)))
OBJS = $(SRCS:.c=.o)
PGFILEDESC = "iact - IVR sync, time events, migrations, audit"

# The current version's script is built from src/sql/*.sql; each upgrade
# script from src/sql/update/FROM--TO/*.sql.  Released scripts are tracked
# as they shipped (iact--1.0.sql) and never edited again.
SQL_FRAGMENTS = $(sort $(wildcard $(ISRC)/src/sql/*.sql))
UPDATE_1_0 = $(sort $(wildcard $(ISRC)/src/sql/update/1.0--1.1/*.sql))
DATA = $(EXTENSION)--1.0.sql
DATA_built = $(EXTENSION)--$(EXTVERSION).sql $(EXTENSION)--1.0--1.1.sql
EXTRA_CLEAN = $(DATA_built) output_iso tmp_check

# pg_regress tests; those that read MariaDB's coordinates from the environment
# (\getenv / $IACT_MARIADB_...) run only when the harness's MariaDB is there
REGRESS_ALL = $(basename $(notdir $(sort $(wildcard $(ISRC)/sql/*.sql))))
REGRESS_MARIADB = $(basename $(notdir $(shell grep -l IACT_MARIADB $(ISRC)/sql/*.sql 2>/dev/null)))
ifeq ($(IACT_MARIADB_PORT),)
REGRESS = $(filter-out $(REGRESS_MARIADB),$(REGRESS_ALL))
else
REGRESS = $(REGRESS_ALL)
endif
REGRESS_OPTS = --load-extension=iact

ISOLATION = $(basename $(notdir $(sort $(wildcard $(ISRC)/test/isolation/specs/*.spec))))
ISOLATION_OPTS = --inputdir=$(ISRC)/test/isolation --load-extension=iact

# TAP tests: PGXS's prove_installcheck cds to the source directory first
TAP_TESTS = 1
PROVE_TESTS = test/t/*.pl
export IACT_ROOT ?= $(abspath $(ISRC))

PG_CONFIG ?= pg_config

# MariaDB Connector/C (only src/mariadb_client.c includes mysql.h)
MARIADB_CONFIG ?= mariadb_config
ifneq ($(shell command -v $(MARIADB_CONFIG) 2>/dev/null),)
MARIADB_CFLAGS := $(shell $(MARIADB_CONFIG) --cflags)
MARIADB_LIBS := $(shell $(MARIADB_CONFIG) --libs)
endif
PG_CPPFLAGS = -I$(ISRC)/src
SHLINK_EXTRA = $(MARIADB_LIBS)
SHLIB_LINK += $(SHLINK_EXTRA)

PGXS := $(shell $(PG_CONFIG) --pgxs)
ifeq ($(PGXS),)
$(error $(PG_CONFIG) not found or not PostgreSQL's pg_config; set PG_CONFIG=/usr/lib/postgresql/15/bin/pg_config)
endif
include $(PGXS)

# refuse a PostgreSQL major iact was not tested on (as mysql_fdw does)
ifeq ($(filter $(MAJORVERSION),$(SUPPORTED_MAJORS)),)
$(error iact supports PostgreSQL $(SUPPORTED_MAJORS) only, but $(PG_CONFIG) is PostgreSQL $(VERSION). Point PG_CONFIG at a supported server (e.g. PG_CONFIG=/usr/lib/postgresql/15/bin/pg_config); porting notes: doc/install.md)
endif

# (after the include: Makefile.global resets it)
PROVE_FLAGS = -I test/perl

override CFLAGS += -Wall -Wmissing-prototypes -Werror=implicit-function-declaration

# a VPATH build compiles src/*.c into the build directory's src/
ifneq ($(ISRC),.)
$(shell mkdir -p src)
endif

# Rebuilt at every make (a fragment removed or renamed must show too), but
# replaced only when the text changed, so nothing downstream is redone.
$(EXTENSION)--$(EXTVERSION).sql: $(SQL_FRAGMENTS) FORCE
	cat $(SQL_FRAGMENTS) > $@.tmp && { cmp -s $@.tmp $@ && rm -f $@.tmp || mv $@.tmp $@; }

$(EXTENSION)--1.0--1.1.sql: $(UPDATE_1_0) FORCE
	cat $(UPDATE_1_0) > $@.tmp && { cmp -s $@.tmp $@ && rm -f $@.tmp || mv $@.tmp $@; }

.PHONY: FORCE
FORCE:

# say which tests were left out, never a silent pass
installcheck check: iact-say-skipped
iact-say-skipped:
ifeq ($(IACT_MARIADB_PORT),)
	@echo "NOTE: not run (no MariaDB: IACT_MARIADB_PORT is not set; test/check.sh starts one): $(REGRESS_MARIADB); TAP tests that need it report 'skipped'"
endif
.PHONY: iact-say-skipped

# the TAP tests alone, against the installed iact (PGXS defines only the recipe)
prove_installcheck: iact-say-skipped
	$(prove_installcheck)
.PHONY: prove_installcheck

# every object depends on every header of the module (PGXS tracks no header
# dependencies unless PostgreSQL was configured with --enable-depend): a
# struct changed in a header must never leave objects of the old layout
$(OBJS): $(wildcard $(ISRC)/src/*.h)

# only the MariaDB boundary sees mysql.h
src/mariadb_client.o: override CPPFLAGS += $(MARIADB_CFLAGS)
src/mariadb_client.bc: override CPPFLAGS += $(MARIADB_CFLAGS)
