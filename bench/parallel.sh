#!/usr/bin/env bash
# bench/parallel.sh — parallel query on one server, measured in one run:
#   * SELECT sum(moe_predict(...)) over ~200k pairs with
#     max_parallel_workers_per_gather = 0, 1, 2 (best of MOE_BENCH_REPS warm
#     runs each; EXPLAIN ANALYZE shows how many workers launched), and the
#     speed-ups over 0 workers;
#   * the moe_usage aggregate over the same pairs with 0 and 2 workers:
#     partial states combined across workers give the same statistics.
# The pairs are Davis's (drug 1024, protein 8420 features) repeated to
# MOE_BENCH_PAIRS when MOE_DATA_DIR/davis exists, otherwise synthetic
# (moe_synthetic_dta, drug 1024, target 4096: its largest).  The model has
# the moe_train default sizes, trained one epoch on 3000 pairs: scoring
# speed does not depend on how well the weights are trained.  It starts its
# own throwaway cluster (moe_pg preloaded, JIT off).
#
#   bash bench/parallel.sh             (about 5 minutes on 2 busy cores)
#   MOE_BENCH_PAIRS=50000 MOE_BENCH_REPS=1 bash bench/parallel.sh   (a quick look)
source "$(dirname "$0")/../scripts/lib.sh"
cd "$MOE_ROOT"
DATA=${MOE_DATA_DIR:-$(cd "$MOE_ROOT/.." && pwd)/shared/data}
PAIRS=${MOE_BENCH_PAIRS:-200000}
REPS=${MOE_BENCH_REPS:-3}

[ "${MOE_SKIP_BUILD:-0}" = 1 ] || moe_build_install >/dev/null
trap moe_cluster_stop EXIT
moe_cluster_start "shared_preload_libraries = 'moe_pg'" "moe_pg.shared_cache_mb = 256" \
    "max_parallel_workers = 8" "max_parallel_workers_per_gather = 2" "jit = off" 2>/dev/null
export PGDATABASE=bench
createdb bench
q() { PGOPTIONS="-c client_min_messages=warning" psql -X -q -At -v ON_ERROR_STOP=1 "$@"; }

echo "# bench/parallel.sh on $(nproc) cores: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
echo "# load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
q -c "CREATE EXTENSION moe_pg"
# drugs(drug_id, vec), targets(target_id, vec), pairs(drug_id, target_id), train_set
if [ -f "$DATA/davis/affinities.csv" ]; then
    source_name=davis
    q -c "SELECT moe_load_dta('$DATA/davis', 'davis')" >/dev/null
    q -c "CREATE TABLE drugs AS SELECT drug_id, vec FROM davis.drugs;
          CREATE TABLE targets AS SELECT target_id, vec FROM davis.targets;
          CREATE TABLE pairs AS SELECT a.drug_id, a.target_id FROM davis.affinities a,
                 generate_series(1, ceil($PAIRS / (SELECT count(*) FROM davis.affinities)::float8)::int) r;
          CREATE TABLE train_set AS SELECT drug_vec, protein_vec, label::real AS label, split
                 FROM davis.pairs WHERE fold = 0 ORDER BY md5(drug_id || target_id) LIMIT 3000;"
else
    source_name=synthetic
    # ~sqrt(PAIRS) drugs and targets, every pair of them
    q -c "CREATE TABLE drugs AS SELECT drug_id::text, drug_vec AS vec
                 FROM moe_synthetic_dta(ceil(sqrt($PAIRS) * 0.8)::int, 1, 1, seed => 1, drug_dim => 1024, target_dim => 1);
          CREATE TABLE targets AS SELECT target_id::text, target_vec AS vec
                 FROM moe_synthetic_dta(1, ceil($PAIRS / ceil(sqrt($PAIRS) * 0.8))::int, 4, seed => 2, drug_dim => 1, target_dim => 4096);
          CREATE TABLE pairs AS SELECT drug_id, target_id FROM drugs, targets;
          CREATE TABLE train_set AS SELECT drug_vec, target_vec AS protein_vec, label, split
                 FROM moe_synthetic_dta(50, 60, 4, seed => 3, drug_dim => 1024, target_dim => 4096);"
fi
q -c "ALTER TABLE drugs ADD PRIMARY KEY (drug_id); ALTER TABLE targets ADD PRIMARY KEY (target_id);
      ALTER TABLE drugs ALTER COLUMN vec SET STORAGE EXTERNAL; ALTER TABLE targets ALTER COLUMN vec SET STORAGE EXTERNAL;
      ALTER TABLE pairs SET (parallel_workers = 2);" -c "VACUUM ANALYZE drugs, targets, pairs"
q -c "SELECT moe_create_dataset('train_set', 'train_set', protein_column => 'protein_vec')" >/dev/null
q -c "SET client_min_messages = error" -c "CALL moe_train('train_set', model_name => 'bench', epochs => 1)" >/dev/null
model=$(q -c "SELECT model_id FROM moe.deployments WHERE name = 'bench'")
echo "pairs $(q -c "SELECT count(*) FROM pairs")   ($source_name: $(q -c "SELECT count(*) FROM drugs") drugs x $(q -c "SELECT count(*) FROM targets") targets, repeated)"
echo "drug_dim $(q -c "SELECT array_length(vec, 1) FROM drugs LIMIT 1")"
echo "protein_dim $(q -c "SELECT array_length(vec, 1) FROM targets LIMIT 1")"
q -c "SELECT 'model_params ' || n_params FROM moe_model_info($model::bigint)"

from="FROM pairs p JOIN drugs d USING (drug_id) JOIN targets t USING (target_id)"
score="SELECT sum(moe_predict(d.vec, t.vec, $model::bigint)::float8) $from"
usage="SELECT moe_usage(g.probs, g.selected) $from, LATERAL moe_gate(d.vec, t.vec, $model::bigint) g"

# One session for every setting, so the leader's entity cache is warm
# throughout; each query's workers are new processes and start cold (they
# attach the model in shared memory, but encode their drugs and proteins
# again), which is part of what parallel query costs.
# The settings take turns (0, 1, 2, 0, 1, 2, ...) so that a change in the
# machine's load during the run touches all of them alike.
script=$MOE_CLUSTER_DIR/parallel.sql
{
    echo "$score;"                                   # warm-up: model into the shared cache
    for w in 0 1 2; do
        echo "SET max_parallel_workers_per_gather = $w;"
        echo "\\echo workers $w"
        echo "EXPLAIN (ANALYZE, TIMING OFF, COSTS OFF) $score;"
    done
    for _ in $(seq "$REPS"); do
        for w in 0 1 2; do
            echo "SET max_parallel_workers_per_gather = $w;"
            echo "\\echo workers $w"
            echo "\\timing on"
            echo "$score;"
            echo "\\timing off"
        done
    done
} >"$script"
out=$(q -f "$script")
declare -A best launched
w=
while read -r line; do
    case $line in
        "workers "*) w=${line#workers } ;;
        *"Workers Launched: "*) launched[$w]=${line##*: } ;;
        "Time: "*) t=$(echo "$line" | awk '{ print $2 / 1000 }')
                   best[$w]=$(awk -v a="${best[$w]:-1e9}" -v b="$t" 'BEGIN { print (b < a) ? b : a }') ;;
    esac
done <<<"$out"
for w in 0 1 2; do
    echo "workers_${w}_launched ${launched[$w]:-0}"
    echo "workers_${w}_best_s ${best[$w]}"
done
n=$(q -c "SELECT count(*) FROM pairs")
for w in 1 2; do
    awk -v a="${best[0]}" -v b="${best[$w]}" -v w="$w" 'BEGIN { printf "speedup_%d_workers %.2f\n", w, a / b }'
done
awk -v a="${best[0]}" -v n="$n" 'BEGIN { printf "pairs_per_s_0_workers %.0f\n", n / a }'
awk -v a="${best[2]}" -v n="$n" 'BEGIN { printf "pairs_per_s_2_workers %.0f\n", n / a }'

# --- moe_usage with and without workers: partial states combined across workers.
# moe_gate keeps the default COST 1 (moe_predict has 5000), so the planner
# thinks this query too cheap to parallelise; free parallel setup makes it.
par="SET parallel_setup_cost = 0; SET parallel_tuple_cost = 0;"
plan=$(q -c "$par SET max_parallel_workers_per_gather = 2" -c "EXPLAIN (COSTS OFF) $usage")
echo "$plan" | grep -q "Partial Aggregate" && echo "$plan" | grep -q "Workers Planned: 2" \
    || { echo "moe_usage did not get a parallel plan:"; echo "$plan"; exit 1; } >&2
echo "# moe_usage: parallel_setup_cost = parallel_tuple_cost = 0 (moe_gate has COST 1); with 2 workers: Finalize Aggregate / Gather / Partial Aggregate"
u0=$(q -c "$par SET max_parallel_workers_per_gather = 0" -c "$usage")
u2=$(q -c "$par SET max_parallel_workers_per_gather = 2" -c "$usage")
echo "usage_0_workers $u0"
echo "usage_2_workers $u2"
q -c "WITH a AS (SELECT ('$u0'::moe.router_summary).*), b AS (SELECT ('$u2'::moe.router_summary).*)
      SELECT 'usage_identical ' || ('$u0' = '$u2') ||
             E'\nusage_counts_identical ' || (a.n = b.n AND a.selections = b.selections AND a.dead_experts = b.dead_experts
                                             AND a.dominant_expert IS NOT DISTINCT FROM b.dominant_expert AND a.status = b.status) ||
             E'\nusage_max_abs_diff ' || (SELECT max(abs(x - y)) FROM unnest(a.mean_prob || a.share || ARRAY[a.cv, a.gini, a.balance_entropy, a.row_entropy],
                                                                         b.mean_prob || b.share || ARRAY[b.cv, b.gini, b.balance_entropy, b.row_entropy]) AS u(x, y))
        FROM a, b"
