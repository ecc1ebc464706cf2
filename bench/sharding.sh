#!/usr/bin/env bash
# bench/sharding.sh — scoring throughput of the pairs of bench/parallel.sh
# on one server versus spread over two postgres_fdw shards, measured in one run:
#   * local: SELECT sum(moe_predict(...)) on the coordinator, no parallel workers;
#   * sharded: one aggregate per shard (UNION ALL of the foreign tables), which
#     postgres_fdw ships whole and, with async_capable, runs on both shards at
#     once; and the same with async_capable off (one shard after the other);
#   * the speed-ups over local.
# Three throwaway clusters (coordinator and two shards, moe_pg preloaded, JIT
# off) on loopback, all on this machine: the shards share its cores, so the
# ratio is "two backends on two shards against one backend", not two machines.
# The layout is the one docs/citus.md describes: drugs and proteins copied to
# every shard (reference tables), pairs split by hash of drug_id, and each
# shard joins its pairs to the vectors locally (a view behind the foreign table).
# The model reaches the shards through moe_export_model / moe_import_model
# under the coordinator's id.
#
#   bash bench/sharding.sh             (about 5 minutes on 2 busy cores)
#   MOE_BENCH_PAIRS=50000 MOE_BENCH_REPS=1 bash bench/sharding.sh   (a quick look)
source "$(dirname "$0")/../scripts/lib.sh"
cd "$MOE_ROOT"
DATA=${MOE_DATA_DIR:-$(cd "$MOE_ROOT/.." && pwd)/shared/data}
PAIRS=${MOE_BENCH_PAIRS:-200000}
REPS=${MOE_BENCH_REPS:-3}

[ "${MOE_SKIP_BUILD:-0}" = 1 ] || moe_build_install >/dev/null
dirs=() ports=() hosts=() work=
cleanup() {
    for d in "${dirs[@]}"; do MOE_CLUSTER_DIR=$d; moe_cluster_stop; done
    [ -z "$work" ] || rm -rf "$work"
}
trap cleanup EXIT
for i in 0 1 2; do   # 0: coordinator, 1 and 2: shards
    moe_cluster_start "shared_preload_libraries = 'moe_pg'" "moe_pg.shared_cache_mb = 256" \
        "max_parallel_workers_per_gather = 0" "jit = off" 2>/dev/null
    dirs+=("$MOE_CLUSTER_DIR") ports+=("$PGPORT") hosts+=("$PGHOST")
done
export PGHOST=${hosts[0]} PGPORT=${ports[0]} PGDATABASE=bench
createdb bench
q() { PGOPTIONS="-c client_min_messages=warning" psql -X -q -At -v ON_ERROR_STOP=1 "$@"; }
shard() { local i=$1; shift; PGOPTIONS="-c client_min_messages=warning" \
    psql -X -q -At -v ON_ERROR_STOP=1 -h "${hosts[$i]}" -p "${ports[$i]}" -d postgres "$@"; }

echo "# bench/sharding.sh on $(nproc) cores: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
echo "# load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "# coordinator and 2 shards on this one machine (loopback): the shards share its $(nproc) cores"

# --- the pairs and model of bench/parallel.sh, on the coordinator
q -c "CREATE EXTENSION moe_pg"
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
    q -c "CREATE TABLE drugs AS SELECT drug_id::text, drug_vec AS vec
                 FROM moe_synthetic_dta(ceil(sqrt($PAIRS) * 0.8)::int, 1, 1, seed => 1, drug_dim => 1024, target_dim => 1);
          CREATE TABLE targets AS SELECT target_id::text, target_vec AS vec
                 FROM moe_synthetic_dta(1, ceil($PAIRS / ceil(sqrt($PAIRS) * 0.8))::int, 4, seed => 2, drug_dim => 1, target_dim => 4096);
          CREATE TABLE pairs AS SELECT drug_id, target_id FROM drugs, targets;
          CREATE TABLE train_set AS SELECT drug_vec, target_vec AS protein_vec, label, split
                 FROM moe_synthetic_dta(50, 60, 4, seed => 3, drug_dim => 1024, target_dim => 4096);"
fi
q -c "ALTER TABLE drugs ADD PRIMARY KEY (drug_id); ALTER TABLE targets ADD PRIMARY KEY (target_id);
      ALTER TABLE drugs ALTER COLUMN vec SET STORAGE EXTERNAL; ALTER TABLE targets ALTER COLUMN vec SET STORAGE EXTERNAL;" \
  -c "VACUUM ANALYZE drugs, targets, pairs"
q -c "SELECT moe_create_dataset('train_set', 'train_set', protein_column => 'protein_vec')" >/dev/null
q -c "SET client_min_messages = error" -c "CALL moe_train('train_set', model_name => 'bench', epochs => 1)" >/dev/null
model=$(q -c "SELECT model_id FROM moe.deployments WHERE name = 'bench'")
n=$(q -c "SELECT count(*) FROM pairs")
echo "pairs $n   ($source_name: $(q -c "SELECT count(*) FROM drugs") drugs x $(q -c "SELECT count(*) FROM targets") targets, repeated)"
q -c "SELECT 'model_params ' || n_params FROM moe_model_info($model::bigint)"

# --- shards: the model under the same id, drugs and proteins whole, pairs by hash
work=$(mktemp -d /tmp/moe_pg_bench_sharding.XXXXXX)
chmod 755 "$work"
[ "$(id -u)" -ne 0 ] || chown postgres: "$work"
q -c "SELECT moe_export_model($model::bigint, '$work/model.ckpt')" >/dev/null
q -c "CREATE EXTENSION postgres_fdw"
q -c "CREATE TABLE pairs_sh (drug_id text, target_id text) PARTITION BY HASH (drug_id)"
for s in 1 2; do
    got=$(shard "$s" -c "CREATE EXTENSION moe_pg" \
        -c "SELECT setval(pg_get_serial_sequence('moe.models', 'id'), $model, false)" \
        -c "SELECT moe_import_model('$work/model.ckpt', 'bench')" | tail -n 1)
    [ "$got" = "$model" ] || { echo "shard $s imported the model as $got, not $model" >&2; exit 1; }
    shard "$s" -c "CREATE TABLE drugs (drug_id text PRIMARY KEY, vec real[]);
                   CREATE TABLE targets (target_id text PRIMARY KEY, vec real[]);
                   ALTER TABLE drugs ALTER COLUMN vec SET STORAGE EXTERNAL;
                   ALTER TABLE targets ALTER COLUMN vec SET STORAGE EXTERNAL;
                   CREATE TABLE pairs (drug_id text, target_id text);
                   CREATE VIEW pair_vecs AS SELECT p.drug_id, p.target_id, d.vec AS drug_vec, t.vec AS target_vec
                     FROM pairs p JOIN drugs d USING (drug_id) JOIN targets t USING (target_id);"
    for t in drugs targets; do
        q -c "COPY $t TO STDOUT (FORMAT binary)" | shard "$s" -c "COPY $t FROM STDIN (FORMAT binary)"
    done
    # two servers per shard, with and without async_capable: each keeps its
    # own connection, so both stay warm while the runs take turns
    for mode in async sync; do
        q -c "CREATE SERVER shard${s}_$mode FOREIGN DATA WRAPPER postgres_fdw
                OPTIONS (host '127.0.0.1', port '${ports[$s]}', dbname 'postgres', extensions 'moe_pg',
                         async_capable '$([ $mode = async ] && echo true || echo false)')" \
          -c "CREATE USER MAPPING FOR CURRENT_USER SERVER shard${s}_$mode OPTIONS (user 'postgres')" \
          -c "CREATE FOREIGN TABLE vecs_${s}_$mode (drug_id text, target_id text, drug_vec real[], target_vec real[])
                SERVER shard${s}_$mode OPTIONS (schema_name 'public', table_name 'pair_vecs')"
    done
    q -c "CREATE FOREIGN TABLE pairs_sh_$s PARTITION OF pairs_sh FOR VALUES WITH (MODULUS 2, REMAINDER $((s - 1)))
            SERVER shard${s}_async OPTIONS (schema_name 'public', table_name 'pairs', batch_size '10000')"
done
q -c "INSERT INTO pairs_sh SELECT drug_id, target_id FROM pairs"
for s in 1 2; do
    shard "$s" -c "VACUUM ANALYZE"
    echo "shard_${s}_pairs $(shard "$s" -c "SELECT count(*) FROM pairs")"
done

# --- timings: one session; after a warm-up of each, the three take turns
# (local, async, one after the other, ...) so that a change in the machine's
# load touches all alike; the best of REPS each.  The shards' connections,
# and so their entity caches, stay open across the runs.
local_q="SELECT sum(moe_predict(d.vec, t.vec, $model::bigint)::float8) FROM pairs p JOIN drugs d USING (drug_id) JOIN targets t USING (target_id)"
f="sum(moe_predict(drug_vec, target_vec, $model::bigint)::float8)"
sharded() { echo "SELECT sum(s) FROM (SELECT $f AS s FROM vecs_1_$1 UNION ALL SELECT $f FROM vecs_2_$1) t"; }
plan=$(q -c "EXPLAIN (VERBOSE, COSTS OFF) $(sharded async)")
m=$(echo "$plan" | grep -Fc "Remote SQL: SELECT sum(public.moe_predict(drug_vec, target_vec, $model::bigint)::double precision) FROM public.pair_vecs" || true)
a=$(echo "$plan" | grep -c "Async Foreign Scan" || true)
[ "$m" = 2 ] && [ "$a" = 2 ] || { echo "expected the aggregate shipped to both shards, async:"; echo "$plan"; exit 1; } >&2
plan=$(q -c "EXPLAIN (VERBOSE, COSTS OFF) $(sharded sync)")
m=$(echo "$plan" | grep -Fc "Remote SQL: SELECT sum(public.moe_predict(drug_vec, target_vec, $model::bigint)::double precision) FROM public.pair_vecs" || true)
[ "$m" = 2 ] || { echo "expected the aggregate shipped to both shards:"; echo "$plan"; exit 1; } >&2
echo "# sharded plan: Aggregate / Append / 2 x Async Foreign Scan, Remote SQL: SELECT sum(public.moe_predict(...)) FROM public.pair_vecs"
script=$work/runs.sql
{
    for c in local async sync; do
        echo "\\echo case $c"
        if [ $c = local ]; then echo "$local_q;"; else echo "$(sharded $c);"; fi
    done
    echo "\\timing on"
    for _ in $(seq "$REPS"); do
        for c in local async sync; do
            echo "\\echo case $c"
            if [ $c = local ]; then echo "$local_q;"; else echo "$(sharded $c);"; fi
        done
    done
} >"$script"
declare -A best sum
c=
while read -r line; do
    case $line in
        "case "*) c=${line#case } ;;
        "Time: "*) t=$(echo "$line" | awk '{ print $2 / 1000 }')
                   best[$c]=$(awk -v a="${best[$c]:-1e9}" -v b="$t" 'BEGIN { print (b < a) ? b : a }') ;;
        *) sum[$c]=$line ;;
    esac
done < <(q -f "$script")
echo "local_best_s ${best[local]}"
echo "sharded_async_best_s ${best[async]}"
echo "sharded_one_after_other_best_s ${best[sync]}"
awk -v n="$n" -v l="${best[local]}" -v a="${best[async]}" -v s="${best[sync]}" 'BEGIN {
    printf "local_pairs_per_s %.0f\nsharded_async_pairs_per_s %.0f\n", n / l, n / a
    printf "speedup_2_shards_async %.2f\nspeedup_2_shards_one_after_other %.2f\n", l / a, l / s }'
awk -v a="${sum[local]}" -v b="${sum[async]}" 'BEGIN { d = (a - b) / a; if (d < 0) d = -d; printf "sum_local %s\nsum_sharded %s\nsum_relative_difference %.1e   (float8 sums in another order)\n", a, b, d }'
