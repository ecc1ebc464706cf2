#!/usr/bin/env bash
# bench/scoring.sh — how fast a trained model scores, measured in one run:
#   * all Davis pairs per row (SELECT moe_predict ... FROM pairs) and in bulk
#     (CALL moe_score), and their ratio, like for like: one process per row
#     against one bulk thread, and per row with the server's default
#     parallel query against bulk with its default threads; and per row as
#     a new connection's first query, with nothing cached and with the
#     parts in the shared cache;
#   * bulk scoring against the sgemm FLOP limit of this machine for the
#     arithmetic the model does (bench/flops.c measures sgemm);
#   * the first call of a connection: cold (model not cached anywhere) and
#     warm (model in the shared cache), and a warm repeat;
#   * single-row latency p50/p99 with pgbench and a prepared statement;
#   * memory (PSS, /proc/PID/smaps_rollup) of 1 and of 16 backends that
#     have each scored, over the same backends before scoring.
# It starts its own throwaway cluster (moe_pg preloaded).  Needs the Davis
# CSVs: MOE_DATA_DIR (default ../shared/data); skips cleanly without them.
#
#   bash bench/scoring.sh            (about 3 minutes on 2 cores)
source "$(dirname "$0")/../scripts/lib.sh"
cd "$MOE_ROOT"
moe_bench_davis_data
REPS=${MOE_BENCH_REPS:-3}
PGBENCH_SECONDS=${MOE_BENCH_PGBENCH_SECONDS:-10}

moe_bench_cluster bench "moe_pg.shared_cache_mb = 256" "max_parallel_workers_per_gather = 0" \
    "max_connections = 40"
q() { PGOPTIONS="-c client_min_messages=warning" psql -X -q -At -v ON_ERROR_STOP=1 "$@"; }
q -c "CREATE EXTENSION moe_pg" -c "SET client_min_messages = warning" \
  -c "SELECT moe_load_dta('$DATA/davis', 'davis')" >/dev/null
# one epoch: speed does not depend on how well the weights are trained
q -c "SET client_min_messages = warning" -c "CALL moe_train('davis', model_name => 'bench', epochs => 1)" >/dev/null
model=$(q -c "SELECT model_id FROM moe.deployments WHERE name = 'bench'")
q -c "CREATE TABLE pair_ids AS SELECT row_number() OVER (ORDER BY drug_id, target_id)::int AS id, drug_id, target_id FROM davis.affinities;
      ALTER TABLE pair_ids ADD PRIMARY KEY (id); ANALYZE pair_ids, davis.drugs, davis.targets;"
# every measured pair once (davis.pairs lists a pair once per fold)
q -c "CREATE VIEW all_pairs AS SELECT a.drug_id, a.target_id, d.vec AS drug_vec, t.vec AS protein_vec
        FROM davis.affinities a JOIN davis.drugs d USING (drug_id) JOIN davis.targets t USING (target_id)"
pairs=$(q -c "SELECT count(*) FROM pair_ids")

echo "# bench/scoring.sh on $(nproc) cores: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
echo "# commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
echo "pairs $pairs"
q -c "SELECT 'model_params ' || n_params || E'\nmodel_bytes ' || checkpoint_bytes FROM moe_model_info($model::bigint)"

# --- timings inside the server (no client transfer in the figures)
timed='CREATE FUNCTION pg_temp.seconds(sql text) RETURNS float8 LANGUAGE plpgsql AS $f$
DECLARE t0 timestamptz := clock_timestamp(); BEGIN EXECUTE sql; RETURN extract(epoch FROM clock_timestamp() - t0); END $f$;'
per_row="SELECT sum(moe_predict(drug_vec, protein_vec, $model::bigint)) FROM all_pairs"
bulk="DROP TABLE IF EXISTS scored; CALL moe_score($model::bigint, ''all_pairs'', ''scored'', key_columns => ''{drug_id,target_id}'')"
# Two like-for-like pairs of figures, each measured in this run:
#   serial:   per row in one process (no parallel workers) against bulk with
#             one thread (SET moe_pg.threads = 1);
#   default:  per row as the planner runs it with the server's defaults
#             (max_parallel_workers_per_gather = 2: a Gather over parallel
#             workers) against bulk with its default threads (one per core).
# Settings are interleaved within each repetition; the best of REPS+1 counts.
read -r serial_row_s serial_bulk_s par_row_s bulk_s < <(q -c "$timed" -c "
CREATE TEMP TABLE t (what text, s float8);
DO \$d\$ BEGIN FOR i IN 0..$REPS LOOP
  SET max_parallel_workers_per_gather = 0;
  INSERT INTO t VALUES ('serial_row', pg_temp.seconds('$per_row'));
  SET moe_pg.threads = 1;
  INSERT INTO t VALUES ('serial_bulk', pg_temp.seconds('$bulk'));
  RESET moe_pg.threads;
  SET max_parallel_workers_per_gather = 2;
  INSERT INTO t VALUES ('par_row', pg_temp.seconds('$per_row'));
  INSERT INTO t VALUES ('bulk', pg_temp.seconds('$bulk'));
END LOOP; END \$d\$;
SELECT string_agg(s::text, ' ' ORDER BY ord) FROM (SELECT what, min(s) AS s,
  array_position(ARRAY['serial_row','serial_bulk','par_row','bulk'], what) AS ord FROM t GROUP BY what) m" | tr '|' ' ')
workers=$(q -c "SET max_parallel_workers_per_gather = 2" -c "EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF) $per_row" |
          awk '/Workers Launched/ { print $NF }')
same=$(q -c "SELECT count(*) FROM scored s JOIN all_pairs p USING (drug_id, target_id)
             WHERE s.prediction = moe_predict(p.drug_vec, p.protein_vec, $model::bigint)")
echo "per_row_serial_s $serial_row_s   (one process)"
echo "bulk_one_thread_s $serial_bulk_s   (moe_pg.threads = 1)"
echo "per_row_parallel_s $par_row_s   (default settings: $workers parallel workers launched + the leader)"
echo "bulk_all_pairs_s $bulk_s   (default moe_pg.threads: one per core)"
echo "bulk_equals_per_row $same/$pairs"
awk -v a="$serial_row_s" -v b="$serial_bulk_s" 'BEGIN { printf "per_row_over_bulk_serial %.2f   (target < 2; one core each)\n", a / b }'
awk -v a="$par_row_s" -v b="$bulk_s" 'BEGIN { printf "per_row_over_bulk_default %.2f   (target < 2; server defaults, all cores each)\n", a / b }'
awk -v a="$serial_row_s" -v b="$bulk_s" 'BEGIN { printf "per_row_serial_over_bulk_default %.2f   (one core against all cores; for reference)\n", a / b }'
awk -v a="$serial_row_s" -v n="$pairs" 'BEGIN { printf "per_row_us_per_pair %.1f   (one process)\n", a / n * 1e6 }'

# --- per row as a connection's first query: the figures above are warm
# (the first repetition filled the connection's entity cache).  Here a new
# connection scores every pair once, (a) with no part cached anywhere (it
# computes all 510, one entity at a time, and loads the model), and (b)
# after that, in another new connection: the parts come from the shared
# cache.  One core, like per_row_serial_s.
q -c "SELECT moe_cache_clear('server')" >/dev/null
first_cold=$(q -c "$timed" -c "SELECT pg_temp.seconds('$per_row')")
first_shared=$(q -c "$timed" -c "SELECT pg_temp.seconds('$per_row')")
echo "per_row_first_query_cold_s $first_cold   (new connection, nothing cached: model load and every part computed)"
echo "per_row_first_query_shared_s $first_shared   (new connection, parts copied from the shared cache)"
awk -v a="$first_cold" -v b="$serial_bulk_s" 'BEGIN { printf "per_row_first_query_cold_over_bulk_serial %.2f\n", a / b }'
awk -v a="$first_shared" -v b="$serial_bulk_s" 'BEGIN { printf "per_row_first_query_shared_over_bulk_serial %.2f\n", a / b }'

# --- the arithmetic bulk scoring does, against what sgemm can do here
cc -O3 -march=native -Isrc/engine bench/flops.c src/engine/gemm_rows.c -lopenblas -o "$MOE_CLUSTER_DIR/flops"
sgemm=$("$MOE_CLUSTER_DIR/flops" | awk '/^sgemm_gflops_all_threads/ { print $2 }')
flops=$(q -c "
WITH c AS (SELECT config FROM moe.models WHERE id = $model),
     i AS (SELECT * FROM moe_model_info($model::bigint)),
     n AS (SELECT count(DISTINCT drug_id) AS drugs, count(DISTINCT target_id) AS targets, count(*) AS pairs FROM all_pairs),
     -- widths of one layer stack: input, hidden..., output
     w AS (SELECT (SELECT array_agg(x::int) FROM jsonb_array_elements_text(config->'drug_hidden') x) AS dh,
                  (SELECT array_agg(x::int) FROM jsonb_array_elements_text(config->'protein_hidden') x) AS ph,
                  (SELECT array_agg(x::int) FROM jsonb_array_elements_text(config->'gate_hidden') x) AS gh,
                  (SELECT array_agg(x::int) FROM jsonb_array_elements_text(config->'expert_hidden') x) AS eh FROM c)
SELECT round(
  -- encoders, once per distinct drug and protein
  n.drugs * 2.0 * (SELECT sum(a * b) FROM unnest(ARRAY[i.drug_dim] || w.dh[1:cardinality(w.dh) - 1], w.dh) AS t(a, b))
  + n.targets * 2.0 * (SELECT sum(a * b) FROM unnest(ARRAY[i.protein_dim] || w.ph[1:cardinality(w.ph) - 1], w.ph) AS t(a, b))
  -- first layers of the gate and of every expert, split into drug and protein parts
  + (n.drugs * w.dh[cardinality(w.dh)] + n.targets * w.ph[cardinality(w.ph)]) * 2.0 * (w.gh[1] + i.experts * w.eh[1])
  -- per pair: the rest of the gate and of the k routed experts
  + n.pairs * 2.0 * ((SELECT sum(a * b) FROM unnest(w.gh, w.gh[2:] || ARRAY[i.experts]) AS t(a, b))
                     + i.top_k * (SELECT sum(a * b) FROM unnest(w.eh, w.eh[2:] || ARRAY[1]) AS t(a, b))))
FROM n, w, i")
echo "bulk_gflop $(awk -v f="$flops" 'BEGIN { printf "%.2f", f / 1e9 }')"
echo "sgemm_gflops $sgemm"
awk -v f="$flops" -v g="$sgemm" -v t="$bulk_s" 'BEGIN { l = f / (g * 1e9); printf "bulk_flop_limit_s %.3f\nbulk_over_flop_limit %.2f   (target < 3)\n", l, t / l }'

# --- the first call of a connection
one="SELECT moe_predict(drug_vec, protein_vec, $model::bigint) FROM all_pairs WHERE drug_id = (SELECT min(drug_id) FROM davis.drugs) LIMIT 1"
first_call() { q -c "$timed" -c "SELECT pg_temp.seconds('$one')" -c "SELECT pg_temp.seconds('$one')" | tr '\n' ' '; echo; }
q -c "SELECT moe_cache_clear('server')" >/dev/null
read -r cold cold_again < <(first_call)
read -r warm warm_again < <(first_call)
echo "first_call_cold_ms $(awk -v s="$cold" 'BEGIN { printf "%.2f", s * 1e3 }')   (model read from moe.models into the shared cache)"
echo "first_call_warm_ms $(awk -v s="$warm" 'BEGIN { printf "%.2f", s * 1e3 }')   (model in the shared cache, new connection)"
echo "repeat_call_ms $(awk -v s="$warm_again" 'BEGIN { printf "%.3f", s * 1e3 }')"
awk -v c="$cold" -v w="$warm" 'BEGIN { printf "cold_over_warm_first_call %.1f\n", c / w }'

# --- single-row latency through pgbench, prepared statements
cat >"$MOE_CLUSTER_DIR/score.sql" <<EOF
\set id random(1, $pairs)
SELECT moe_predict(d.vec, t.vec, $model::bigint) FROM pair_ids p JOIN davis.drugs d USING (drug_id) JOIN davis.targets t USING (target_id) WHERE p.id = :id;
EOF
cat >"$MOE_CLUSTER_DIR/fetch.sql" <<EOF
\set id random(1, $pairs)
SELECT pg_column_size(d.vec) + pg_column_size(t.vec) FROM pair_ids p JOIN davis.drugs d USING (drug_id) JOIN davis.targets t USING (target_id) WHERE p.id = :id;
EOF
echo "SELECT 1;" >"$MOE_CLUSTER_DIR/round_trip.sql"
# Two pgbench runs.  (1) The scoring statement alone, one connection, as a
# client scoring pair after pair would run it: the target figure.  (2) It,
# the same lookup without scoring and SELECT 1 together, each transaction
# picking one at random: noise falls on all three alike, so the difference
# between the first two is moe_predict's share and SELECT 1 the floor of
# any statement here (the other statements also cool the CPU caches
# between two scorings, so that share is an upper bound).  The
# per-transaction log's 4th field names the script.
pgbench_log() {   # name, scripts... -> the run's per-transaction log directory
    local dir=$MOE_CLUSTER_DIR/pgb_$1 args=()
    shift
    for f in "$@"; do args+=(-f "$MOE_CLUSTER_DIR/$f.sql"); done
    mkdir -p "$dir"; chmod 777 "$dir"
    (cd "$dir" && pgbench -n -M prepared -c 1 -T "$PGBENCH_SECONDS" "${args[@]}" -l --log-prefix=lat bench >/dev/null 2>&1)
    echo "$dir"
}
latency() {   # log directory, script number -> "p50_us p99_us transactions"
    # warm-up: the first transactions fill the connection's entity cache
    tail -q -n +4000 "$1"/lat.* | awk -v n="$2" '$4 == n { print $3 }' | sort -n |
        awk '{ v[NR] = $1 } END { printf "%d %d %d\n", v[int(NR * 0.5)], v[int(NR * 0.99)], NR }'
}
alone=$(pgbench_log alone score)
mixed=$(pgbench_log mixed score fetch round_trip)
read -r s50 s99 sn < <(latency "$alone" 0)
read -r m50 m99 mn < <(latency "$mixed" 0)
read -r f50 f99 fn < <(latency "$mixed" 1)
read -r r50 r99 rn < <(latency "$mixed" 2)
echo "latency_score_p50_us $s50   (the scoring statement alone; target < 100)"
echo "latency_score_p99_us $s99"
echo "latency_mixed_score_p50_us $m50   (the same statement, interleaved with the two below)"
echo "latency_mixed_fetch_only_p50_us $f50   (the same lookup without scoring: round trip and three index lookups; like moe_predict on a cached vector it reads TOAST pointers, not the vectors)"
echo "latency_mixed_round_trip_p50_us $r50   (SELECT 1)"
echo "latency_moe_predict_p50_us $((m50 - f50))   (score minus fetch, interleaved)"

# --- memory: PSS of N backends that each scored one pair, before and after.
# The weights live in shared memory, so "for the weights" is the PSS of the
# shared mappings (PostgreSQL's shared memory and DSM segments); the total
# adds each backend's private memory (its entity parts, workspace, caches).
pss_kb() {   # pid -> "total_kb shared_kb"
    awk '/^[0-9a-f]+-[0-9a-f]+ / { shared = ($2 ~ /s/) } /^Pss:/ { t += $2; if (shared) s += $2 }
         END { print t + 0, s + 0 }' "/proc/$1/smaps"
}
memory_for() {   # N -> "total_growth_kb shared_growth_kb backends"
    local n=$1 pids=() t0=0 s0=0 t1=0 s1=0 t s
    for i in $(seq "$n"); do
        # each session: read the pair's vectors and attach the cache (the
        # baseline), pause, score one pair, pause
        q -c "SELECT array_length(drug_vec, 1) FROM all_pairs LIMIT 1" -c "SELECT count(*) FROM moe_cache()" \
          -c "SELECT pg_sleep(4)" -c "$one" -c "SELECT pg_sleep(6)" >/dev/null &
    done
    sleep 2
    mapfile -t pids < <(q -c "SELECT pid FROM pg_stat_activity WHERE query = 'SELECT pg_sleep(4)'")
    for p in "${pids[@]}"; do read -r t s < <(pss_kb "$p"); t0=$((t0 + t)); s0=$((s0 + s)); done
    sleep 5
    for p in "${pids[@]}"; do read -r t s < <(pss_kb "$p"); t1=$((t1 + t)); s1=$((s1 + s)); done
    wait
    echo "$((t1 - t0)) $((s1 - s0)) ${#pids[@]}"
}
q -c "SELECT moe_cache_clear('server')" >/dev/null
read -r m1 w1 n1 < <(memory_for 1)
q -c "SELECT moe_cache_clear('server')" >/dev/null
read -r m16 w16 n16 < <(memory_for 16)
weights_kb=$(q -c "SELECT bytes / 1024 FROM moe_cache() WHERE model_id = $model AND scope = 'shared'")
echo "model_in_shared_cache_kb $weights_kb"
echo "pss_shared_growth_1_backend_kb $w1   ($n1 backend: the weights, loaded by it)"
echo "pss_shared_growth_16_backends_kb $w16   ($n16 backends)"
awk -v a="$w1" -v b="$w16" 'BEGIN { printf "weights_memory_16_over_1 %.3f   (target < 1.05)\n", b / a }'
echo "pss_total_growth_1_backend_kb $m1   (includes the loader's transient copy of the checkpoint)"
echo "pss_total_growth_16_backends_kb $m16"
awk -v a="$m1" -v b="$m16" -v n="$n16" 'BEGIN { printf "total_memory_16_over_1 %.3f\nprivate_kb_per_extra_backend %.0f\n", b / a, (b - a) / (n - 1) }'

# --- the same after churn: twelve models of mixed sizes (about 13 and 52 MB
# in the cache), each used by a new connection, then the 16 backends again,
# without clearing the cache.  The scoring model and the churn models
# (about 430 MB together) cannot all stay in the 256 MB cache, so each first
# use evicts the least recently used; none may fall back to a copy of its
# own ("does not fit") while an unpinned model could be evicted.
q -c "CREATE TABLE churn_pairs AS SELECT * FROM moe_synthetic_dta(30, 20, 2, seed => 3)" \
  -c "SELECT moe_create_dataset('churn', 'churn_pairs', protein_column => 'target_vec',
                                drug_key_column => 'drug_id', protein_key_column => 'target_id')" >/dev/null
fallbacks=0
for i in $(seq 12); do
    width=$(( i % 2 == 0 ? 1024 : 512 ))
    q -c "CALL moe_train('churn', model_name => 'churn_$i', epochs => 1, deploy => 'never',
                         drug_hidden => '{$width}', protein_hidden => '{$width}',
                         gate_hidden => '{$width,256}', expert_hidden => '{$width,256}')" >/dev/null
    n=$(PGOPTIONS="-c client_min_messages=notice" psql -X -q -At -v ON_ERROR_STOP=1 \
          -c "SELECT moe_predict(drug_vec, target_vec, (SELECT max(id) FROM moe.models WHERE name = 'churn_$i'))
                FROM churn_pairs LIMIT 1" 2>&1 | grep -c 'does not fit' || true)
    fallbacks=$((fallbacks + n))
done
churn_shared=$(q -c "SELECT count(*) FROM moe_cache() c JOIN moe.models m ON m.id = c.model_id
                      WHERE c.scope = 'shared' AND m.name LIKE 'churn_%'")
read -r cm16 cw16 cn16 < <(memory_for 16)
echo "churn_models 12   (mixed sizes, one after another, each used by a new connection)"
echo "churn_fallbacks_to_own_copy $fallbacks   (NOTICE \"does not fit\"; should be 0)"
echo "churn_models_still_shared $churn_shared   (the rest were evicted, least recently used first)"
echo "pss_shared_growth_16_backends_after_churn_kb $cw16   ($cn16 backends)"
awk -v a="$w1" -v b="$cw16" 'BEGIN { printf "weights_memory_16_over_1_after_churn %.3f   (target < 1.05)\n", b / a }'

# --- screening: the best 100 compounds of a library for one target, with
# moe_screen (the bulk path) and with the query a user would otherwise
# write (ORDER BY moe_predict ... LIMIT 100), second run of each (the
# library's parts cached).  The library: every Davis and KIBA drug,
# featurized as the model's drugs were, stored out of line.
if [ -f "$DATA/kiba/drugs.csv" ]; then
    q -c "CREATE TEMP TABLE kiba_drugs (drug_id text, smiles text)" \
      -c "\\copy kiba_drugs FROM '$DATA/kiba/drugs.csv' WITH (FORMAT csv, HEADER true)" \
      -c "CREATE TABLE library (drug_id text PRIMARY KEY, smiles text, vec real[])" \
      -c "ALTER TABLE library ALTER COLUMN vec SET STORAGE EXTERNAL" \
      -c "INSERT INTO library SELECT 'davis_' || drug_id, smiles, vec FROM davis.drugs" \
      -c "INSERT INTO library SELECT 'kiba_' || drug_id, smiles, moe_featurize_smiles(smiles, 1024) FROM kiba_drugs" \
      -c "ANALYZE library" >/dev/null
    compounds=$(q -c "SELECT count(*) FROM library")
    target="(SELECT vec FROM davis.targets ORDER BY target_id LIMIT 1)"
    read -r screen_s query_s same < <(q -c "$timed" -c "
        SELECT pg_temp.seconds(\$q\$SELECT * FROM moe_screen($model::bigint, $target, 'library', 100)\$q\$);
        SELECT pg_temp.seconds(\$q\$SELECT l.drug_id FROM library l ORDER BY moe_predict(l.vec, $target, $model::bigint) DESC LIMIT 100\$q\$);
        SELECT pg_temp.seconds(\$q\$SELECT * FROM moe_screen($model::bigint, $target, 'library', 100)\$q\$)
               || ' ' || pg_temp.seconds(\$q\$SELECT l.drug_id FROM library l ORDER BY moe_predict(l.vec, $target, $model::bigint) DESC LIMIT 100\$q\$)
               || ' ' || (SELECT count(*) FROM moe_screen($model::bigint, $target, 'library', 100) s
                           JOIN (SELECT l.drug_id, moe_predict(l.vec, $target, $model::bigint) AS p FROM library l) x
                             ON x.drug_id = s.key AND x.p = s.score)" | tail -1)
    echo "screen_compounds $compounds"
    echo "screen_top100_s $screen_s   (moe_screen, library parts cached)"
    echo "screen_order_by_s $query_s   (ORDER BY moe_predict ... LIMIT 100, the same)"
    awk -v a="$screen_s" -v n="$compounds" 'BEGIN { printf "screen_compounds_per_s %.0f\n", n / a }'
    awk -v a="$query_s" -v b="$screen_s" 'BEGIN { printf "order_by_over_screen %.2f\n", a / b }'
    echo "screen_scores_equal_moe_predict $same/100"
else
    echo "# screening: KIBA CSVs not found, skipped"
fi
