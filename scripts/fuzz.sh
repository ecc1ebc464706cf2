#!/usr/bin/env bash
# scripts/fuzz.sh — libFuzzer targets of the engine, each for a bounded time.
#
#   scripts/fuzz.sh                     every target, MOE_FUZZ_SECONDS (30) each
#   scripts/fuzz.sh fuzz_smiles         only the targets named
#   MOE_FUZZ_SECONDS=600 scripts/fuzz.sh
#
# Builds test/fuzz/fuzz_*.c and the engine with clang -fsanitize=fuzzer,
# address,undefined (-fno-sanitize-recover=all) into build/fuzz, writes fresh
# seed corpora (test/fuzz/make_seeds.c: small checkpoints made with the
# engine, SMILES and sequences from MOE_DATA_DIR when it is there), runs
# each target and prints one line per target:
#
#   fuzz_checkpoint: 123456 executions, 0 crashes
#
# Exits non-zero on any crash, leak, timeout or out-of-memory; the input
# that did it stays in build/fuzz/artifacts (replay it: build/fuzz/<target>
# <file>) and the log in build/fuzz/logs.  More in docs/fuzzing.md.
#
#   MOE_FUZZ_CC=clang-14        the compiler (default clang)
#   MOE_FUZZ_SEED=N             libFuzzer's -seed, to repeat a run
#   MOE_FUZZ_KEEP_CORPUS=1      keep build/fuzz/corpus between runs
source "$(dirname "$0")/lib.sh"
cd "$MOE_ROOT"

FUZZ_CC=${MOE_FUZZ_CC:-clang}
FUZZ_SECONDS=${MOE_FUZZ_SECONDS:-30}
DATA_DIR=${MOE_DATA_DIR:-$(cd "$MOE_ROOT/.." && pwd)/shared/data}
BUILD=$MOE_ROOT/build/fuzz
ARTIFACTS=$BUILD/artifacts

# target and its -max_len: a checkpoint seed is 1-3 kB; a SMILES target
# input is 2 settings bytes + text; a protein one 1 byte + a sequence as
# long as Davis's longest (2549).
declare -A MAX_LEN=([fuzz_checkpoint]=8192 [fuzz_smiles]=1024 [fuzz_protein]=4096)
ALL_TARGETS=(fuzz_checkpoint fuzz_smiles fuzz_protein)
TARGETS=("$@")
[ ${#TARGETS[@]} -gt 0 ] || TARGETS=("${ALL_TARGETS[@]}")
for t in "${TARGETS[@]}"; do
    [ -n "${MAX_LEN[$t]:-}" ] || { echo "fuzz.sh: unknown target $t (one of ${ALL_TARGETS[*]})" >&2; exit 2; }
done

if ! command -v "$FUZZ_CC" >/dev/null; then
    echo "fuzz.sh: $FUZZ_CC not found; install clang and libclang-rt-14-dev (in MOE_PACKAGES)" >&2
    exit 1
fi

CFLAGS=(-std=c11 -D_GNU_SOURCE -g -O1 -fno-omit-frame-pointer -fno-math-errno
        -Wall -Wextra -Wno-unused-parameter -Wno-sign-compare -Wno-missing-field-initializers
        -I"$MOE_ROOT/src/engine")
SAN=(-fsanitize=address,undefined -fno-sanitize-recover=all)
LIBS=(-lopenblas -lm)

# ---- build ---------------------------------------------------------------
log "building the fuzz targets with $FUZZ_CC into build/fuzz"
build_start=$(date +%s)
mkdir -p "$BUILD/obj" "$ARTIFACTS" "$BUILD/logs"

# Engine objects, instrumented for coverage; rebuilt when a source, any
# engine header or the flags changed.
flags="$FUZZ_CC ${CFLAGS[*]} ${SAN[*]} -fsanitize=fuzzer-no-link"
if [ "$(cat "$BUILD/obj/.flags" 2>/dev/null)" != "$flags" ]; then
    rm -f "$BUILD"/obj/*.o
fi
for obj in "$BUILD"/obj/*.o; do		# objects of sources since removed
    [ ! -e "$obj" ] || [ -e "src/engine/$(basename "${obj%.o}").c" ] || rm -f "$obj"
done
newest_header=$(ls -t src/engine/*.h | head -n 1)
stale=()
for src in src/engine/*.c; do
    obj=$BUILD/obj/$(basename "${src%.c}").o
    if [ ! -e "$obj" ] || [ "$src" -nt "$obj" ] || [ "$newest_header" -nt "$obj" ]; then
        stale+=("$MOE_ROOT/$src")
    fi
done
if [ ${#stale[@]} -gt 0 ]; then
    # several files per clang, objects named after their sources in obj/
    (cd "$BUILD/obj" && printf '%s\n' "${stale[@]}" |
        xargs -P "$(nproc)" -n 3 "$FUZZ_CC" "${CFLAGS[@]}" "${SAN[@]}" -fsanitize=fuzzer-no-link -c)
fi
echo "$flags" >"$BUILD/obj/.flags"
ENGINE_OBJS=("$BUILD"/obj/*.o)

for t in "${TARGETS[@]}"; do
    "$FUZZ_CC" "${CFLAGS[@]}" "${SAN[@]}" -fsanitize=fuzzer "test/fuzz/$t.c" \
        "${ENGINE_OBJS[@]}" "${LIBS[@]}" -o "$BUILD/$t"
done
# the seed writer runs under the same sanitizers, without libFuzzer's main
"$FUZZ_CC" "${CFLAGS[@]}" "${SAN[@]}" -fsanitize=fuzzer-no-link test/fuzz/make_seeds.c \
    "${ENGINE_OBJS[@]}" "${LIBS[@]}" -o "$BUILD/make_seeds"
echo "built in $(( $(date +%s) - build_start )) s"

# ---- seeds ---------------------------------------------------------------
log "seed corpora in build/fuzz/seeds"
rm -rf "$BUILD/seeds"
if [ -d "$DATA_DIR" ]; then
    OPENBLAS_NUM_THREADS=1 "$BUILD/make_seeds" "$BUILD/seeds" "$DATA_DIR"
else
    echo "note: $DATA_DIR not found; built-in seeds only" >&2
    OPENBLAS_NUM_THREADS=1 "$BUILD/make_seeds" "$BUILD/seeds"
fi

# ---- run -------------------------------------------------------------------
export OPENBLAS_NUM_THREADS=1
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:detect_stack_use_after_return=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

failed=0
summary=()
for t in "${TARGETS[@]}"; do
    seeds=$BUILD/seeds/${t#fuzz_}
    corpus=$BUILD/corpus/$t
    logfile=$BUILD/logs/$t.log
    dict=$BUILD/seeds/${t#fuzz_}.dict
    args=(-max_total_time="$FUZZ_SECONDS" -max_len="${MAX_LEN[$t]}" -timeout=25
          -rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix="$ARTIFACTS/$t-")
    [ -f "$dict" ] && args+=(-dict="$dict")
    [ -n "${MOE_FUZZ_SEED:-}" ] && args+=(-seed="$MOE_FUZZ_SEED")
    [ "${MOE_FUZZ_KEEP_CORPUS:-0}" = 1 ] || rm -rf "$corpus"
    mkdir -p "$corpus"

    log "$t for ${FUZZ_SECONDS} s (-max_len=${MAX_LEN[$t]})"
    marker=$BUILD/logs/.$t.start
    touch "$marker"
    rc=0
    "$BUILD/$t" "${args[@]}" "$corpus" "$seeds" >"$logfile" 2>&1 || rc=$?

    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$logfile" | tail -n 1)
    found=()
    while IFS= read -r f; do
        found+=("${f#"$MOE_ROOT"/}")
    done < <(find "$ARTIFACTS" -maxdepth 1 -type f -newer "$marker" \
                \( -name "$t-crash-*" -o -name "$t-leak-*" -o -name "$t-timeout-*" -o -name "$t-oom-*" \) | sort)
    crashes=${#found[@]}
    if [ "$rc" -ne 0 ] && [ "$crashes" -eq 0 ]; then
        crashes=1				# died without leaving an input behind
    fi
    line="$t: ${execs:-?} executions, $crashes crash$([ "$crashes" -eq 1 ] || echo es)"
    [ ${#found[@]} -eq 0 ] || line+=" (${found[*]})"
    if [ "$rc" -ne 0 ] || [ "$crashes" -ne 0 ]; then
        failed=1
        echo "---- tail of build/fuzz/logs/$t.log (exit status $rc)" >&2
        tail -n 60 "$logfile" >&2
    fi
    summary+=("$line")
done

log "fuzzing summary (${FUZZ_SECONDS} s per target)"
printf '%s\n' "${summary[@]}"
if [ "$failed" -ne 0 ]; then
    echo "fuzz.sh: a target failed; inputs in build/fuzz/artifacts, logs in build/fuzz/logs" >&2
    exit 1
fi
