# moe_pg — Mixture-of-Experts drug-target affinity models inside PostgreSQL.
#
#   make && make install        build and install the extension (PGXS)
#   make unit                   engine unit tests (plain C, no PostgreSQL)
#   make unit-valgrind          the same under valgrind's memcheck
#   make installcheck           pg_regress tests against a running server
#   scripts/test.sh             every test on a throwaway cluster (what CI runs)

EXTENSION   = moe_pg
EXTVERSION  = $(shell grep default_version $(EXTENSION).control | sed -e "s/default_version[[:space:]]*=[[:space:]]*'\([^']*\)'/\1/")

ENGINE_SRCS = $(sort $(wildcard src/engine/*.c))
GLUE_SRCS   = $(sort $(wildcard src/pg/*.c))

MODULE_big  = moe_pg
OBJS        = $(ENGINE_SRCS:.c=.o) $(GLUE_SRCS:.c=.o)
# The install script is built from the numbered parts in sql/, one per
# area (schema, featurizers, datasets, training, scoring, models, ...).
SQL_PARTS   = $(sort $(wildcard sql/[0-9]*.sql))
DATA_built  = sql/$(EXTENSION)--$(EXTVERSION).sql
DOCS        = README.md

PG_CPPFLAGS = -I$(srcdir)/src/engine
PG_CFLAGS   = -std=gnu11 -O3 -fno-math-errno -Wall -Wextra -Wno-unused-parameter -Wno-sign-compare -Wno-missing-field-initializers -Wno-declaration-after-statement $(OPTFLAGS)
SHLIB_LINK  = -lopenblas -lm

# pg_regress: inputs in test/sql; PostgreSQL 15's pg_regress looks for the
# expected output under --outputdir first, which puts it in expected/.
REGRESS      = $(patsubst test/sql/%.sql,%,$(sort $(wildcard test/sql/*.sql)))
REGRESS_OPTS = --inputdir=test --outputdir=. --load-extension=$(EXTENSION)

# Bitcode for the server's JIT is not worth a clang dependency here.
override with_llvm = no

PG_CONFIG ?= pg_config
PGXS := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)

$(DATA_built): $(SQL_PARTS) $(EXTENSION).control
	cat $(SQL_PARTS) > $@

# PGXS tracks no header dependencies; structs shared across files change.
$(OBJS): $(wildcard src/engine/*.h src/pg/*.h)

# ---------------------------------------------------------------------------
# Engine unit tests: compiled without any PostgreSQL header, which also
# proves the engine does not depend on one.
UNIT_CC      ?= gcc
UNIT_CFLAGS  ?= -O3 -fno-math-errno -g -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -Wno-unused-parameter -Wno-sign-compare -Wno-missing-field-initializers
UNIT_LIBS     = -lopenblas -lm
UNIT_BUILD    = build/unit
UNIT_TESTS    = $(patsubst test/unit/%.c,$(UNIT_BUILD)/%,$(sort $(wildcard test/unit/test_*.c)))
UNIT_OBJS     = $(patsubst src/engine/%.c,$(UNIT_BUILD)/engine/%.o,$(ENGINE_SRCS))

$(UNIT_BUILD)/engine/%.o: src/engine/%.c $(wildcard src/engine/*.h)
	@mkdir -p $(dir $@)
	$(UNIT_CC) $(UNIT_CFLAGS) -Isrc/engine -c $< -o $@

$(UNIT_BUILD)/test_%: test/unit/test_%.c $(UNIT_OBJS) test/unit/unit.h
	@mkdir -p $(dir $@)
	$(UNIT_CC) $(UNIT_CFLAGS) -Isrc/engine -Itest/unit $< $(UNIT_OBJS) $(UNIT_LIBS) -o $@

.PHONY: unit unit-valgrind unit-build
unit-build: $(UNIT_TESTS)

unit: unit-build
	@set -e; for t in $(UNIT_TESTS); do echo "== $$t"; OPENBLAS_NUM_THREADS=1 $$t; done

unit-valgrind: unit-build
	@set -e; for t in $(UNIT_TESTS); do echo "== valgrind $$t"; \
	  OPENBLAS_NUM_THREADS=1 valgrind -q --error-exitcode=1 --leak-check=full --errors-for-leak-kinds=definite,indirect $$t; done

EXTRA_CLEAN = build results regression.diffs regression.out
