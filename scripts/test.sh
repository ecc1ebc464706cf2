#!/usr/bin/env bash
# Every test of moe_pg: the figures quoted in README.md against
# bench/results (scripts/check_figures.sh), engine unit tests (plain, under
# valgrind and under ASan/UBSan), fuzzing of the engine's parsers, then
# pgTAP (pg_prove), shell tests and pg_regress against a throwaway cluster.
#
#   scripts/test.sh            everything (installs what is missing when root)
#   MOE_SKIP_VALGRIND=1 ...    skip the valgrind pass (faster while developing)
#   MOE_SKIP_ASAN=1 ...        skip the AddressSanitizer pass of the unit tests
#   MOE_SKIP_FUZZ=1 ...        skip fuzzing (scripts/fuzz.sh, MOE_FUZZ_SECONDS=30 per target)
#
# Tests that need the Davis CSVs read MOE_DATA_DIR (default ../shared/data)
# and skip cleanly when it is absent.
source "$(dirname "$0")/lib.sh"
cd "$MOE_ROOT"

log "figures quoted in README.md and docs/ against the results files they cite"
bash scripts/check_figures.sh

moe_install_deps
moe_build_install

log "engine unit tests"
make -s unit
if [ "${MOE_SKIP_VALGRIND:-0}" != 1 ]; then
    log "engine unit tests under valgrind"
    make -s unit-valgrind
fi
if [ "${MOE_SKIP_ASAN:-0}" != 1 ]; then
    log "engine unit tests under AddressSanitizer and UBSan"
    make -s unit-asan
fi
if [ "${MOE_SKIP_FUZZ:-0}" != 1 ]; then
    log "fuzzing the checkpoint reader and the featurizers"
    MOE_FUZZ_SECONDS=${MOE_FUZZ_SECONDS:-30} bash scripts/fuzz.sh
fi

# every cluster the tests start reports a crash in its server log here
export MOE_CRASH_LOG
MOE_CRASH_LOG=$(mktemp /tmp/moe_pg_crashes.XXXXXX)
trap 'moe_cluster_stop; rm -f "$MOE_CRASH_LOG"' EXIT
# moe_pg preloaded with a small shared cache, so eviction is testable
moe_cluster_start "shared_preload_libraries = 'moe_pg'" "moe_pg.shared_cache_mb = 8"
export MOE_CLUSTER_DIR

export MOE_DATA_DIR=${MOE_DATA_DIR:-$(cd "$MOE_ROOT/.." && pwd)/shared/data}
[ -d "$MOE_DATA_DIR/davis" ] || echo "note: $MOE_DATA_DIR/davis not found; tests that need it skip" >&2

log "pgTAP tests"
createdb moe_tap
psql_q -d moe_tap -c "CREATE EXTENSION pgtap; CREATE EXTENSION moe_pg;"
psql_q -d moe_tap -c "ALTER DATABASE moe_tap SET moe_test.data_dir = '$MOE_DATA_DIR'"
pg_prove -d moe_tap --ext .sql -v test/pgtap/ test/security/ 2>&1 | tee "$MOE_CLUSTER_DIR/pg_prove.log" | grep -v '^ok ' || true
grep -q '^Result: PASS' "$MOE_CLUSTER_DIR/pg_prove.log" || { echo "pgTAP tests failed" >&2; exit 1; }

log "shell tests (test/shell: behaviour seen from a client, e.g. warnings)"
for t in test/shell/*.sh; do
    bash "$t" moe_tap || { echo "$t failed" >&2; exit 1; }
done

log "security tests (test/security: several roles and sessions attacking each other)"
for t in test/security/*.sh; do
    bash "$t" moe_tap || { echo "$t failed" >&2; exit 1; }
done

log "pg_regress tests"
if ! make -s installcheck; then
    cat regression.diffs >&2 || true
    exit 1
fi

log "server logs of every test cluster"
moe_cluster_stop
if [ -s "$MOE_CRASH_LOG" ]; then
    echo "a server process crashed during the tests:" >&2
    cat "$MOE_CRASH_LOG" >&2
    exit 1
fi
echo "no crash in any server log"

log "all tests passed"
