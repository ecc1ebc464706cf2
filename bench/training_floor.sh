#!/usr/bin/env bash
# bench/training_floor.sh — how much of a training epoch the first layers
# are, measured in one run at one thread (moe_pg.threads = 1) on Davis
# fold 0 (ECFP drug fingerprints, protein 1..3-mer composition):
#   * dense first layers (sparse_inputs => 'off'), sparse ones ('auto');
#   * the floor: the same rows, splits and network with the drug and
#     protein vectors cut to their first 8 values, so the first layers cost
#     next to nothing and what is left is everything else an epoch does
#     (gate, experts, losses, optimiser, validation).
# dense / floor is the most that any speed-up of the first layers alone can
# give an epoch.  It starts its own throwaway cluster (moe_pg preloaded);
# needs the Davis CSVs (MOE_DATA_DIR, default ../shared/data).
# MOE_BENCH_EPOCHS epochs per run (default 3).
#
#   bash bench/training_floor.sh > bench/results/training_floor.txt   (about 4 minutes on 2 cores)
source "$(dirname "$0")/../scripts/lib.sh"
cd "$MOE_ROOT"
moe_bench_davis_data
EPOCHS=${MOE_BENCH_EPOCHS:-3}

moe_bench_cluster bench
q() { PGOPTIONS="-c client_min_messages=warning -c moe_pg.threads=1" psql -X -q -At -v ON_ERROR_STOP=1 "$@"; }
q -c "CREATE EXTENSION moe_pg" >/dev/null

echo "# bench/training_floor.sh on $(nproc) cores: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
echo "# commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown); $EPOCHS epochs per run at 1 thread, every other option the moe_train default"
q -c "SELECT moe_load_dta('$DATA/davis', 'davis', drug_features => 'ecfp')" >/dev/null
q -c "CREATE TABLE floor_pairs AS
      SELECT drug_id, target_id, drug_vec[1:8] AS drug_vec, protein_vec[1:8] AS protein_vec, label, fold, split
        FROM davis.pairs" \
  -c "SELECT moe_create_dataset('davis_floor', 'floor_pairs', fold_column => 'fold',
                                drug_key_column => 'drug_id', protein_key_column => 'target_id')" >/dev/null

# one run: prints "seconds_per_epoch train_rows"
run() {   # dataset, sparse_inputs, name
    q -c "CALL moe_train('$1', fold => 0, model_name => '$3', epochs => $EPOCHS, patience => 0,
                         sparse_inputs => '$2', deploy => 'never')" >/dev/null
    q -F ' ' -c "SELECT round(avg(h.seconds)::numeric, 2), (m.metrics ->> 'n_train')
                   FROM moe.training_runs r JOIN moe.training_history h ON h.run_id = r.id
                   JOIN moe.models m ON m.id = r.model_id
                  WHERE r.id = (SELECT max(id) FROM moe.training_runs WHERE model_name = '$3')
                  GROUP BY r.id, m.metrics"
}
read -r dense_s dense_rows < <(run davis off floor_dense)
read -r sparse_s sparse_rows < <(run davis auto floor_sparse)
read -r floor_s floor_rows < <(run davis_floor off floor_floor)
echo "davis_1_thread_dense_s_per_epoch $dense_s   ($dense_rows training rows)"
echo "davis_1_thread_sparse_s_per_epoch $sparse_s   ($sparse_rows training rows)"
echo "davis_1_thread_floor_s_per_epoch $floor_s   ($floor_rows training rows, inputs cut to 8 values)"
awk -v d="$dense_s" -v s="$sparse_s" -v f="$floor_s" 'BEGIN {
    printf "davis_1_thread_dense_over_sparse %.2f\n", d / s
    printf "davis_1_thread_dense_over_floor %.2f   (the most a first-layer speed-up alone can give)\n", d / f
    printf "davis_1_thread_sparse_minus_floor_s %.2f   (what the sparse first layers still cost per epoch)\n", s - f
}'
