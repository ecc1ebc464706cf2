#!/usr/bin/env bash
# bench/training.sh — how fast training runs, dense first layers against
# sparse ones (docs/training.md, "Sparse first layers"), measured in one run:
#   * seconds per epoch on Davis fold 0 and KIBA fold 0 (ECFP drug
#     fingerprints, protein 1..3-mer composition), sparse_inputs => 'off'
#     against 'auto', at one thread (moe_pg.threads = 1) and at the default
#     threads, and their ratios;
#   * the test MSE and router status of each, so speed is not bought with
#     accuracy;
#   * the time to compute the parts of all 510 Davis entities (a new
#     connection scoring each drug and each target once, nothing cached).
# It starts its own throwaway cluster (moe_pg preloaded).  Needs the CSVs
# (MOE_DATA_DIR, default ../shared/data); a dataset that is absent is
# skipped.  MOE_BENCH_EPOCHS epochs per run (default 3).
#
#   bash bench/training.sh > bench/results/training.txt     (about 25 minutes on 2 cores)
source "$(dirname "$0")/../scripts/lib.sh"
cd "$MOE_ROOT"
moe_bench_davis_data
EPOCHS=${MOE_BENCH_EPOCHS:-3}

moe_bench_cluster bench
q() { PGOPTIONS="-c client_min_messages=warning ${EXTRA:-}" psql -X -q -At -v ON_ERROR_STOP=1 "$@"; }
q -c "CREATE EXTENSION moe_pg" >/dev/null

echo "# bench/training.sh on $(nproc) cores: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
echo "# commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown); $EPOCHS epochs per run, every other option the moe_train default"
datasets=()
for ds in davis kiba; do
    [ -f "$DATA/$ds/affinities.csv" ] || { echo "# $ds: CSVs not found, skipped"; continue; }
    q -c "SELECT moe_load_dta('$DATA/$ds', '$ds', drug_features => 'ecfp')" >/dev/null
    datasets+=("$ds")
    q -c "SELECT '${ds}_density_drugs ' || round(avg(nz)::numeric, 4) FROM (SELECT (SELECT count(*) FILTER (WHERE v <> 0) FROM unnest(vec) v)::float8 / array_length(vec, 1) AS nz FROM $ds.drugs) s"
    q -c "SELECT '${ds}_density_targets ' || round(avg(nz)::numeric, 4) FROM (SELECT (SELECT count(*) FILTER (WHERE v <> 0) FROM unnest(vec) v)::float8 / array_length(vec, 1) AS nz FROM $ds.targets) s"
done

# one run: prints "seconds_per_epoch test_mse router_status"
run() {   # dataset, sparse_inputs, threads
    local name="bench_$1_$2_t$3"
    EXTRA="-c moe_pg.threads=$3" q -c "CALL moe_train('$1', fold => 0, model_name => '$name', epochs => $EPOCHS,
                                      patience => 0, sparse_inputs => '$2', deploy => 'never')" >/dev/null
    q -F ' ' -c "SELECT round(avg(h.seconds)::numeric, 2), round((m.metrics -> 'test' ->> 'mse')::numeric, 4),
                        (SELECT g.status FROM moe.router_history g WHERE g.run_id = r.id AND g.epoch = r.best_epoch)
                   FROM moe.training_runs r JOIN moe.training_history h ON h.run_id = r.id
                   JOIN moe.models m ON m.id = r.model_id
                  WHERE r.id = (SELECT max(id) FROM moe.training_runs WHERE model_name = '$name')
                  GROUP BY r.id, m.metrics"
}
for ds in "${datasets[@]}"; do
    for threads in 1 0; do
        label=$([ "$threads" = 1 ] && echo "1_thread" || echo "default_threads")
        # dense then sparse, back to back: the machine's noise falls on both
        read -r dense_s dense_mse dense_status < <(run "$ds" off "$threads")
        read -r sparse_s sparse_mse sparse_status < <(run "$ds" auto "$threads")
        echo "${ds}_${label}_dense_s_per_epoch $dense_s   (test mse $dense_mse, router $dense_status)"
        echo "${ds}_${label}_sparse_s_per_epoch $sparse_s   (test mse $sparse_mse, router $sparse_status)"
        awk -v a="$dense_s" -v b="$sparse_s" -v n="${ds}_${label}" \
            'BEGIN { printf "%s_dense_over_sparse %.2f\n", n, a / b }'
    done
done

# the parts of every Davis drug and target, in a new connection with
# nothing cached (each drug against one target, then each target against
# one drug): 510 parts, 510 pairs
model=$(q -c "SELECT max(id) FROM moe.models WHERE name = 'bench_davis_auto_t1'")
if [ -n "$model" ]; then
    q -c "SELECT moe_cache_clear('server')" >/dev/null
    parts_s=$(q -c "CREATE FUNCTION pg_temp.seconds(sql text) RETURNS float8 LANGUAGE plpgsql AS \$f\$
DECLARE t0 timestamptz := clock_timestamp(); BEGIN EXECUTE sql; RETURN extract(epoch FROM clock_timestamp() - t0); END \$f\$" \
        -c "SELECT count(moe_predict(d.vec, t.vec, $model::bigint)) FROM davis.drugs d, (SELECT vec FROM davis.targets ORDER BY target_id LIMIT 1) t" \
        -c "SELECT pg_temp.seconds(\$q\$SELECT count(moe_predict(d.vec, t.vec, $model::bigint)) FROM (SELECT vec FROM davis.drugs ORDER BY drug_id LIMIT 1) d, davis.targets t\$q\$)
                 + pg_temp.seconds(\$q\$SELECT count(moe_predict(d.vec, t.vec, $model::bigint)) FROM davis.drugs d, (SELECT vec FROM davis.targets ORDER BY target_id OFFSET 1 LIMIT 1) t\$q\$)" | tail -1)
    echo "davis_entity_parts_510_s $parts_s   (model loaded; 442 targets and 68 drugs, each part computed once)"
fi
