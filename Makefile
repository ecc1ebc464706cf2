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
# earlier versions' install scripts, frozen, and the upgrade scripts
DATA        = $(sort $(wildcard sql/versions/*.sql))
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

# ---------------------------------------------------------------------------
# The same unit tests under AddressSanitizer and UndefinedBehaviorSanitizer
# (gcc), in their own build folder; any report fails the run.  A failed
# allocation returns NULL, as the engine expects (test_synthetic lowers
# RLIMIT_AS).  And the libFuzzer targets of test/fuzz (clang),
# MOE_FUZZ_SECONDS each: docs/fuzzing.md.
ASAN_CC      ?= gcc
ASAN_CFLAGS  ?= -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=all -fno-math-errno -std=c11 -D_GNU_SOURCE -Wall -Wextra -Wno-unused-parameter -Wno-sign-compare -Wno-missing-field-initializers
ASAN_BUILD    = build/asan
ASAN_TESTS    = $(patsubst test/unit/%.c,$(ASAN_BUILD)/%,$(sort $(wildcard test/unit/test_*.c)))
ASAN_OBJS     = $(patsubst src/engine/%.c,$(ASAN_BUILD)/engine/%.o,$(ENGINE_SRCS))

$(ASAN_BUILD)/engine/%.o: src/engine/%.c $(wildcard src/engine/*.h)
	@mkdir -p $(dir $@)
	$(ASAN_CC) $(ASAN_CFLAGS) -Isrc/engine -c $< -o $@

$(ASAN_BUILD)/test_%: test/unit/test_%.c $(ASAN_OBJS) test/unit/unit.h
	@mkdir -p $(dir $@)
	$(ASAN_CC) $(ASAN_CFLAGS) -Isrc/engine -Itest/unit $< $(ASAN_OBJS) $(UNIT_LIBS) -o $@

.PHONY: unit-asan fuzz
unit-asan: $(ASAN_TESTS)
	@set -e; for t in $(ASAN_TESTS); do echo "== asan $$t"; \
	  OPENBLAS_NUM_THREADS=1 ASAN_OPTIONS=detect_leaks=1:detect_stack_use_after_return=1:allocator_may_return_null=1 \
	  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 $$t; done

fuzz:
	bash scripts/fuzz.sh

# ---------------------------------------------------------------------------
# CUDA backend (optional; docs/cuda.md).  When nvcc is found, `make` also
# builds cuda/moe_pg_cuda.so (a fatbin for sm_80 and sm_90 plus compute_90
# PTX, linked with cuBLAS and the CUDA runtime) and `make install` puts it
# next to moe_pg.so; moe_pg opens it with dlopen only when a GPU is asked
# for.  Without nvcc nothing here is built and the extension is CPU-only:
# `make NVCC=/nonexistent` forces that on a machine that has one.
#
#   make cuda-parity     every backend op on CPU and GPU, compared (skips
#                        cleanly without a device)
#   make cuda-bench      the engine's GPU benchmark program (bench/gpu.sh)
CUDA_HOME   ?= /usr/local/cuda
NVCC        ?= $(firstword $(wildcard $(CUDA_HOME)/bin/nvcc) nvcc)
NVCC_FOUND  := $(if $(strip $(NVCC)),$(shell command -v '$(NVCC)' 2>/dev/null))
CUDA_LIBDIR ?= $(abspath $(dir $(NVCC_FOUND))../lib64)
CUDA_ARCHS  ?= -gencode arch=compute_80,code=sm_80 -gencode arch=compute_90,code=sm_90 \
               -gencode arch=compute_90,code=compute_90
# --fmad=false: no a*b+c contracted into an FMA the CPU build does not do
NVCC_FLAGS  ?= -O3 -std=c++17 --fmad=false -Xcompiler -fPIC,-fvisibility=hidden,-Wall
CUDA_LIB     = cuda/moe_pg_cuda.so
CUDA_BUILD   = build/cuda

ifneq ($(NVCC_FOUND),)
all: $(CUDA_LIB)

cuda/backend_cuda.o: cuda/backend_cuda.cu $(wildcard cuda/*.h) src/engine/backend.h src/engine/row_ops.h \
                     src/engine/backend_loader.h src/engine/moe_status.h
	$(NVCC_FOUND) $(NVCC_FLAGS) $(CUDA_ARCHS) -Isrc/engine -Icuda -c $< -o $@

# the rpath finds libcublas/libcudart where the toolkit keeps them
$(CUDA_LIB): cuda/backend_cuda.o
	$(NVCC_FOUND) -shared -cudart shared -o $@ $< -L$(CUDA_LIBDIR) -lcublas -lcudart \
	  -Xlinker -rpath,$(CUDA_LIBDIR)

install: install-cuda
.PHONY: install-cuda
install-cuda: $(CUDA_LIB) installdirs
	$(INSTALL_SHLIB) $(CUDA_LIB) '$(DESTDIR)$(pkglibdir)/'

$(CUDA_BUILD)/%: test/cuda/%.c $(UNIT_OBJS)
	@mkdir -p $(dir $@)
	$(UNIT_CC) $(UNIT_CFLAGS) -Isrc/engine $< $(UNIT_OBJS) $(UNIT_LIBS) -ldl -o $@

$(CUDA_BUILD)/gpu_bench: bench/gpu_bench.c $(UNIT_OBJS)
	@mkdir -p $(dir $@)
	$(UNIT_CC) $(UNIT_CFLAGS) -Isrc/engine $< $(UNIT_OBJS) $(UNIT_LIBS) -ldl -o $@

.PHONY: cuda-parity cuda-bench
cuda-parity: $(CUDA_LIB) $(CUDA_BUILD)/parity
	OPENBLAS_NUM_THREADS=1 $(CUDA_BUILD)/parity $(CURDIR)/$(CUDA_LIB)

cuda-bench: $(CUDA_LIB) $(CUDA_BUILD)/gpu_bench
else
.PHONY: cuda-parity cuda-bench
cuda-parity cuda-bench:
	@echo "SKIP: no nvcc (NVCC=$(NVCC)): moe_pg is built without CUDA"
endif

.PHONY: uninstall-cuda
uninstall: uninstall-cuda
uninstall-cuda:
	rm -f '$(DESTDIR)$(pkglibdir)/moe_pg_cuda.so'

EXTRA_CLEAN += cuda/backend_cuda.o $(CUDA_LIB)
# ---------------------------------------------------------------------------
