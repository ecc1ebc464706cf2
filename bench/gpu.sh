#!/usr/bin/env bash
# bench/gpu.sh — the CPU against the CUDA backend (docs/cuda.md):
#   * training seconds per epoch on Davis: the engine on Davis-shaped data,
#     and, when the Davis CSVs are there, CALL moe_train on the real data
#     with device => 'cpu' and device => 'cuda';
#   * bulk scoring, pairs per second over the 30,056 Davis pairs;
#   * screening 100,000 drugs against the 442 Davis targets (the CPU figure
#     measured on 1,000 drugs and scaled).
# The scoring figures come from the engine (bench/gpu_bench.c): SQL scoring
# (moe_score, moe_predict*) runs on the CPU in this version.
#
#   bash bench/gpu.sh      prints SKIP and exits 0 without nvcc or a GPU
#
# MOE_BENCH_CPU_EPOCHS (1), MOE_BENCH_GPU_EPOCHS (5), MOE_BENCH_SCREEN
# (100000), MOE_BENCH_CPU_SAMPLE (1000), MOE_BENCH_SQL_EPOCHS (3) change
# the sizes; MOE_DATA_DIR (default ../shared/data) finds the Davis CSVs.
source "$(dirname "$0")/../scripts/lib.sh"
cd "$MOE_ROOT"

out=$(make -s cuda-bench 2>&1) || { echo "$out" >&2; exit 1; }
if echo "$out" | grep -q '^SKIP'; then echo "$out"; exit 0; fi
out=$(build/cuda/gpu_bench "$MOE_ROOT/cuda/moe_pg_cuda.so" "${MOE_BENCH_CPU_EPOCHS:-1}" \
      "${MOE_BENCH_GPU_EPOCHS:-5}" "${MOE_BENCH_SCREEN:-100000}" "${MOE_BENCH_CPU_SAMPLE:-1000}")
echo "$out"
if echo "$out" | grep -q '^SKIP'; then exit 0; fi

DATA=${MOE_DATA_DIR:-$(cd "$MOE_ROOT/.." && pwd)/shared/data}
if [ ! -f "$DATA/davis/affinities.csv" ]; then
    echo "note: Davis CSVs not found under $DATA: no SQL training figures"
    exit 0
fi
epochs=${MOE_BENCH_SQL_EPOCHS:-3}
moe_build_install >/dev/null
trap moe_cluster_stop EXIT
moe_cluster_start "shared_preload_libraries = 'moe_pg'" 2>/dev/null
export PGDATABASE=bench_gpu
createdb bench_gpu
q() { PGOPTIONS="-c client_min_messages=warning" psql -X -q -At -v ON_ERROR_STOP=1 "$@"; }
q -c "CREATE EXTENSION moe_pg" -c "SELECT moe_load_dta('$DATA/davis', 'davis')" >/dev/null
for device in cpu cuda; do
    q -c "CALL moe_train('davis', model_name => 'bench_$device', epochs => $epochs, patience => 0,
                         deploy => 'never', device => '$device')" >/dev/null
    q -c "SELECT format('sql_train_seconds_per_epoch %s %s (Davis fold 0, %s epochs, default model)', '$device',
                        round(avg(h.seconds)::numeric, 3), count(*))
            FROM moe.training_history h JOIN moe.training_runs r ON r.id = h.run_id
           WHERE r.model_name = 'bench_$device'"
done
q -c "SELECT format('sql_test_mse cpu %s cuda %s (same seed; the devices round differently)',
                    round((c.metrics->'test'->>'mse')::numeric, 4), round((g.metrics->'test'->>'mse')::numeric, 4))
        FROM moe.models c, moe.models g WHERE c.name = 'bench_cpu' AND g.name = 'bench_cuda'"
