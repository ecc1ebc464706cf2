#!/usr/bin/env bash
# bench/citus.sh — docs/citus.md run as written on a Citus cluster built on
# this machine (a coordinator and two workers), against one node:
#   * the guide's tables (pairs, drugs, proteins, scores) filled from the
#     tables moe_load_dta makes, a model trained on one node, imported on
#     the coordinator and put on every worker by moe_distribute() (each
#     worker's own moe.models, and moe.model_copies, a reference table);
#   * per row: the guide's colocated INSERT ... SELECT of every Davis pair,
#     distributed against the same statement on one node, twice (the first
#     run loads the model and computes the entity parts on each worker);
#   * bulk: CALL moe_score over a view of the distributed tables (scored
#     on the workers into a colocated distributed table) against moe_score
#     over the same rows on one node, each twice (the first run of each
#     loads the model and computes the parts in fresh backends), then
#     three times in one session each (later calls reuse the session's
#     backends on every node), then as a session's first call ROUNDS
#     times in turn with one node (medians: into a new output table, and
#     with replace => true), then with every pair REPEAT times;
#   * the equality checks: distributed scores against one node's, bit for
#     bit (float4 equality), for per row and bulk;
#   * screening: moe_screen's best 100 of a library of 30056 distinct
#     compounds, distributed like pairs, for one target, against one node;
#   * training over a view of distributed tables, twice, against the same
#     training on one node: the weights' fingerprints;
#   * a worker added after the model was distributed: shards rebalanced
#     onto it, no moe_distribute() and no copy by hand, every pair scored
#     again (the worker reads its copy of moe.model_copies);
#   * the drift case (issue 19): a worker that holds another model under
#     the same id, scored by id alone (answers with its own weights), with
#     the weights' fingerprint (refused) and by moe_score (refused).
# Ratios are distributed / one node, measured in one run.  Skips (exit 0)
# without Citus installed (citus.so in the server's lib directory) or
# without the Davis CSVs (MOE_DATA_DIR, default ../shared/data).  Build
# steps for Citus on Debian 12: docs/citus.md.  MOE_BENCH_EPOCHS: epochs of
# the model scored (default 3; scoring costs the same for any);
# MOE_CITUS_REPEAT: bulk scoring is measured again with every pair that
# many times (default 8), to see the fixed costs shrink; MOE_CITUS_ROUNDS:
# rounds of first calls (default 5).  MOE_CITUS_KEEP=1
# leaves the nodes running at the end, to look further by hand.
#
#   bash bench/citus.sh > bench/results/citus.txt     (about 7 minutes on 2 cores)
source "$(dirname "$0")/../scripts/lib.sh"
cd "$MOE_ROOT"
if [ ! -f "$("$PG_BIN/pg_config" --pkglibdir 2>/dev/null || pg_config --pkglibdir)/citus.so" ]; then
    echo "SKIP: Citus is not installed in this PostgreSQL (docs/citus.md says how to build it)"
    exit 0
fi
moe_bench_davis_data
EPOCHS=${MOE_BENCH_EPOCHS:-3}
REPEAT=${MOE_CITUS_REPEAT:-8}
ROUNDS=${MOE_CITUS_ROUNDS:-5}
[ "${MOE_SKIP_BUILD:-0}" = 1 ] || moe_build_install >/dev/null

BASE=$(mktemp -d /tmp/moe_citus.XXXXXX)
chmod 755 "$BASE"
[ "$(id -u)" -eq 0 ] && chown postgres: "$BASE"
NODES=(coord w1 w2 w3)   # w3 joins after the model is trained and distributed
declare -A PORT
stop_nodes() {
    if [ "${MOE_CITUS_KEEP:-0}" = 1 ]; then
        echo "# MOE_CITUS_KEEP=1: the nodes still run in $BASE (ports ${PORT[*]})" >&2
        return
    fi
    for n in "${NODES[@]}"; do
        [ -d "$BASE/$n" ] && as_owner "$PG_BIN/pg_ctl" -D "$BASE/$n" -m immediate -w stop >/dev/null 2>&1 || true
    done
    if grep -hE 'terminated by signal|PANIC' "$BASE"/*.log 2>/dev/null; then
        echo "a server crashed; logs kept in $BASE" >&2
    else
        rm -rf "$BASE"
    fi
}
trap stop_nodes EXIT
port=$((55500 + RANDOM % 400))
for n in "${NODES[@]}"; do
    while port_in_use "$port"; do port=$((port + 1)); done
    PORT[$n]=$port
    as_owner "$PG_BIN/initdb" -D "$BASE/$n" -U postgres -A trust --no-sync >/dev/null
    {
        echo "port = $port"
        echo "listen_addresses = '127.0.0.1'"
        echo "unix_socket_directories = '$BASE'"
        echo "fsync = off"
        echo "shared_preload_libraries = 'citus,moe_pg'"
        echo "max_worker_processes = 16"
    } >>"$BASE/$n/postgresql.conf"
    as_owner "$PG_BIN/pg_ctl" -D "$BASE/$n" -l "$BASE/$n.log" -w start >/dev/null
    port=$((port + 1))
done
export PGHOST=$BASE PGUSER=postgres
on() {   # node, database, psql arguments...
    local n=$1 db=$2
    shift 2
    PGOPTIONS="-c client_min_messages=warning" psql -X -q -At -v ON_ERROR_STOP=1 -p "${PORT[$n]}" -d "$db" "$@"
}
SECONDS_FN="CREATE FUNCTION pg_temp.seconds(sql text) RETURNS float8 LANGUAGE plpgsql AS \$f\$
DECLARE t0 timestamptz := clock_timestamp(); BEGIN EXECUTE sql; RETURN extract(epoch FROM clock_timestamp() - t0); END \$f\$"

echo "# bench/citus.sh on $(nproc) cores: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
echo "# commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown); a coordinator and two workers on this machine"

# --- one node: the data, a model, its scores -------------------------------
createdb -p "${PORT[coord]}" single
on coord single -c "CREATE EXTENSION moe_pg" \
    -c "SELECT moe_load_dta('$DATA/davis', 'davis', drug_features => 'ecfp')" >/dev/null
on coord single -c "CALL moe_train('davis', fold => 0, model_name => 'davis', epochs => $EPOCHS, seed => 1, deploy => 'always')" \
    -c "CALL moe_train('davis', fold => 0, model_name => 'other', epochs => $EPOCHS, seed => 2, deploy => 'always')" >/dev/null
model=$(on coord single -c "SELECT model_id FROM moe.deployments WHERE name = 'davis'")
on coord single -c "SELECT moe_export_model('davis', '$BASE/davis.ckpt')" \
    -c "SELECT moe_export_model('other', '$BASE/other.ckpt')" >/dev/null
pairs=$(on coord single -c "SELECT count(*) FROM davis.affinities")
echo "pairs $pairs; model id $model, $EPOCHS epochs"

single_row_s=$(on coord single -c "$SECONDS_FN" -c "SELECT pg_temp.seconds(\$q\$
    CREATE TABLE scores_single AS
    SELECT a.drug_id, a.target_id, moe_predict(d.vec, t.vec, $model::bigint) AS score
      FROM davis.affinities a JOIN davis.drugs d USING (drug_id) JOIN davis.targets t USING (target_id)\$q\$)")
on coord single -c "CREATE VIEW pair_vectors AS
    SELECT a.drug_id, a.target_id, d.vec AS drug_vec, t.vec AS protein_vec
      FROM davis.affinities a JOIN davis.drugs d USING (drug_id) JOIN davis.targets t USING (target_id)"
single_bulk_cold_s=$(on coord single -c "$SECONDS_FN" -c "SELECT pg_temp.seconds(\$q\$
    CALL moe_score($model::bigint, 'pair_vectors', 'bulk_single', key_columns => '{drug_id,target_id}')\$q\$)")
single_bulk_s=$(on coord single -c "$SECONDS_FN" -c "SELECT pg_temp.seconds(\$q\$
    CALL moe_score($model::bigint, 'pair_vectors', 'bulk_single', key_columns => '{drug_id,target_id}', replace => true)\$q\$)")

# --- the cluster, as docs/citus.md sets it up ------------------------------
for n in "${NODES[@]}"; do
    createdb -p "${PORT[$n]}" dist
    on "$n" dist -c "CREATE EXTENSION citus"
done
on coord dist -c "SELECT citus_set_coordinator_host('127.0.0.1', ${PORT[coord]})" \
    -c "SELECT citus_add_node('127.0.0.1', ${PORT[w1]})" \
    -c "SELECT citus_add_node('127.0.0.1', ${PORT[w2]})" \
    -c "CREATE EXTENSION moe_pg" >/dev/null
echo "citus $(on coord dist -c "SELECT citus_version()" | cut -d' ' -f2)"
workers_with_moe_pg=$(on coord dist -c "SELECT count(*) FROM run_command_on_workers(\$\$SELECT count(*) FROM pg_extension WHERE extname = 'moe_pg'\$\$) WHERE result = '1'")
echo "create_extension_propagated_to_workers $workers_with_moe_pg/2"
on coord dist <<SQL >/dev/null
CREATE TABLE pairs (drug_id text, target_id text, score real);
CREATE TABLE drugs (drug_id text PRIMARY KEY, vec real[]);
CREATE TABLE proteins (target_id text PRIMARY KEY, vec real[]);
CREATE TABLE scores (drug_id text, target_id text, model_id bigint, score real);
-- before create_distributed_table: the shards inherit it, and a worker
-- keys shared entity parts by TOAST pointer only for uncompressed values
ALTER TABLE drugs ALTER COLUMN vec SET STORAGE EXTERNAL;
ALTER TABLE proteins ALTER COLUMN vec SET STORAGE EXTERNAL;
SELECT create_distributed_table('pairs', 'drug_id');
SELECT create_distributed_table('drugs', 'drug_id', colocate_with => 'pairs');
SELECT create_distributed_table('scores', 'drug_id', colocate_with => 'pairs');
SELECT create_reference_table('proteins');
SQL
on coord single -c "COPY (SELECT drug_id, target_id FROM davis.affinities) TO STDOUT" | on coord dist -c "COPY pairs (drug_id, target_id) FROM STDIN"
on coord single -c "COPY (SELECT drug_id, vec FROM davis.drugs) TO STDOUT" | on coord dist -c "COPY drugs FROM STDIN"
on coord single -c "COPY (SELECT target_id, vec FROM davis.targets) TO STDOUT" | on coord dist -c "COPY proteins FROM STDIN"
on coord single -c "COPY scores_single TO STDOUT" | on coord dist -c "CREATE TABLE single_scores (drug_id text, target_id text, score real)" -c "COPY single_scores FROM STDIN"
on coord single -c "COPY bulk_single TO STDOUT" | on coord dist -c "CREATE TABLE single_bulk (drug_id text, target_id text, prediction real)" -c "COPY single_bulk FROM STDIN"

# the model on the coordinator under the same id, then on every worker
# (docs/citus.md, step 4)
on coord dist -c "SELECT setval(pg_get_serial_sequence('moe.models', 'id'), $model, false)" \
    -c "SELECT moe_import_model('$BASE/davis.ckpt', 'davis')" >/dev/null
first=$(on coord dist -c "SELECT node || ' ' || action FROM moe_distribute() ORDER BY node")
copied=$(grep -c ':[0-9]* copied$' <<<"$first" || true)
copies=$(grep '^every node' <<<"$first" | sed 's/^every node //')
again=$(on coord dist -c "SELECT count(*) FROM moe_distribute() WHERE action = 'present' AND node <> 'every node'")
echo "moe_distribute: copied to $copied of 2 workers, moe.model_copies (reference table): $copies; called again: present on $again"
fingerprints=$(on coord dist -c "SELECT count(DISTINCT result) FROM run_command_on_all_nodes(\$\$SELECT (moe_model_info($model::bigint)).params_md5\$\$)")
md5=$(on coord dist -c "SELECT params_md5 FROM moe_model_info($model::bigint)")
echo "same_weights_on_every_node $([ "$fingerprints" = 1 ] && echo yes || echo no)"

# --- per row: the guide's colocated INSERT ... SELECT ----------------------
# with the weights' fingerprint: a node holding other weights under the id errors out
insert="INSERT INTO scores (drug_id, target_id, model_id, score)
        SELECT p.drug_id, p.target_id, $model, moe_predict(d.vec, t.vec, $model::bigint, '$md5')
          FROM pairs p JOIN drugs d USING (drug_id) JOIN proteins t USING (target_id)"
unchecked=${insert/", '$md5')"/)}
tasks=$(on coord dist -c "EXPLAIN (VERBOSE, COSTS OFF) $insert" | grep -c 'moe_predict' || true)
pulled=$(on coord dist -c "EXPLAIN (VERBOSE, COSTS OFF) $insert" | grep -ciE 'repartition|pull to coordinator|INSERT/SELECT method: pull' || true)
echo "insert_select_explain: moe_predict in $tasks task lines, $pulled pull/repartition lines"
dist_row_cold_s=$(on coord dist -c "$SECONDS_FN" -c "SELECT pg_temp.seconds(\$q\$$insert\$q\$)")
on coord dist -c "TRUNCATE scores"
dist_row_s=$(on coord dist -c "$SECONDS_FN" -c "SELECT pg_temp.seconds(\$q\$$insert\$q\$)")
row_equal=$(on coord dist -c "SELECT count(*) FROM scores s JOIN single_scores o USING (drug_id, target_id) WHERE s.score = o.score")

# --- bulk: moe_score over a view of the distributed tables -----------------
on coord dist -c "CREATE VIEW pair_vectors AS
    SELECT p.drug_id, p.target_id, d.vec AS drug_vec, t.vec AS protein_vec
      FROM pairs p JOIN drugs d USING (drug_id) JOIN proteins t USING (target_id)"
dist_bulk_cold_s=$(on coord dist -c "$SECONDS_FN" -c "SELECT pg_temp.seconds(\$q\$
    CALL moe_score($model::bigint, 'pair_vectors', 'bulk_dist', key_columns => '{drug_id,target_id}')\$q\$)")
# the second run in one session, to see what the coordinator computed itself
bulk_run=$(on coord dist -c "$SECONDS_FN" -c "SELECT pg_temp.seconds(\$q\$
    CALL moe_score($model::bigint, 'pair_vectors', 'bulk_dist', key_columns => '{drug_id,target_id}', replace => true)\$q\$)" \
    -c "SELECT coalesce(sum(entity_parts), 0) FROM moe_cache()")
dist_bulk_s=$(echo "$bulk_run" | sed -n 1p)
coord_parts=$(echo "$bulk_run" | sed -n 2p)
# three calls in one session each: from the second on, the session's
# backends (and Citus's cached connection to each worker) are warm
session_call="SELECT pg_temp.seconds(\$q\$CALL moe_score($model::bigint, 'pair_vectors', 'bulk_session', key_columns => '{drug_id,target_id}', replace => true)\$q\$)"
single_session=$(on coord single -c "$SECONDS_FN" -c "$session_call" -c "$session_call" -c "$session_call" | paste -sd ' ')
dist_session=$(on coord dist -c "$SECONDS_FN" -c "$session_call" -c "$session_call" -c "$session_call" | paste -sd ' ')
# the first call of a session, ROUNDS times, one node and distributed in
# turn (this machine is noisy; medians): into a new output table (the last
# one dropped before, untimed), then into the same with replace => true
# (which drops it first: on Citus, every shard of it)
round_call="SELECT pg_temp.seconds(\$q\$CALL moe_score($model::bigint, 'pair_vectors', 'bulk_round', key_columns => '{drug_id,target_id}'"
single_new=(); dist_new=(); single_replace=(); dist_replace=()
for _ in $(seq "$ROUNDS"); do
    on coord single -c "DROP TABLE IF EXISTS bulk_round"
    on coord dist -c "DROP TABLE IF EXISTS bulk_round"
    single_new+=("$(on coord single -c "$SECONDS_FN" -c "$round_call)\$q\$)")")
    dist_new+=("$(on coord dist -c "$SECONDS_FN" -c "$round_call)\$q\$)")")
    single_replace+=("$(on coord single -c "$SECONDS_FN" -c "$round_call, replace => true)\$q\$)")")
    dist_replace+=("$(on coord dist -c "$SECONDS_FN" -c "$round_call, replace => true)\$q\$)")")
done
median() { tr ' ' '\n' | sort -g | awk '{ a[NR] = $1 } END { print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }
bulk_equal=$(on coord dist -c "SELECT count(*) FROM bulk_dist s JOIN single_bulk o USING (drug_id, target_id) WHERE s.prediction = o.prediction")
round_equal=$(on coord dist -c "SELECT count(*) FROM bulk_round s JOIN single_bulk o USING (drug_id, target_id) WHERE s.prediction = o.prediction")
bulk_colocated=$(on coord dist -c "SELECT count(*) FROM pg_dist_partition a JOIN pg_dist_partition b USING (colocationid) WHERE a.logicalrelid = 'bulk_dist'::regclass AND b.logicalrelid = 'pairs'::regclass")
bulk_placements=$(on coord dist -c "SELECT count(DISTINCT nodeport) FROM pg_dist_shard_placement p JOIN pg_dist_shard s USING (shardid) WHERE s.logicalrelid = 'bulk_dist'::regclass")

echo "single_per_row_s $single_row_s   (CREATE TABLE AS over every pair, one node)"
echo "distributed_per_row_cold_s $dist_row_cold_s   (the guide's INSERT ... SELECT, first run: model load and parts on each worker)"
echo "distributed_per_row_s $dist_row_s   (the same, again)"
echo "single_bulk_cold_s $single_bulk_cold_s   (CALL moe_score, one node, first run)"
echo "single_bulk_s $single_bulk_s   (the same, again, replace => true)"
echo "distributed_bulk_cold_s $dist_bulk_cold_s   (CALL moe_score over a view of the distributed tables, first run)"
echo "distributed_bulk_s $dist_bulk_s   (the same, again, replace => true)"
echo "distributed_bulk_output: distributed and colocated with pairs: $([ "$bulk_colocated" = 1 ] && echo yes || echo no); shards on $bulk_placements workers; entity parts the coordinator computed: $coord_parts"
awk -v a="$dist_row_s" -v b="$single_row_s" 'BEGIN { printf "distributed_over_single_per_row %.2f\n", a / b }'
awk -v a="$dist_row_cold_s" -v b="$single_row_s" 'BEGIN { printf "distributed_cold_over_single_per_row %.2f\n", a / b }'
awk -v a="$dist_bulk_cold_s" -v b="$single_bulk_cold_s" 'BEGIN { printf "distributed_cold_over_single_cold_bulk %.2f\n", a / b }'
m_single_new=$(echo "${single_new[*]}" | median); m_dist_new=$(echo "${dist_new[*]}" | median)
m_single_replace=$(echo "${single_replace[*]}" | median); m_dist_replace=$(echo "${dist_replace[*]}" | median)
echo "single_bulk_new_output_s ${single_new[*]}   (CALL moe_score as a session's first call, into a new output table; $ROUNDS rounds; median $m_single_new)"
echo "distributed_bulk_new_output_s ${dist_new[*]}   (the same over the distributed tables, in turn with one node's; median $m_dist_new)"
awk -v a="$m_dist_new" -v b="$m_single_new" 'BEGIN { printf "distributed_over_single_bulk %.2f   (medians: a session'"'"'s first call, a new output table)\n", a / b }'
echo "single_bulk_replace_s ${single_replace[*]}   (the same with replace => true over the last output; median $m_single_replace)"
echo "distributed_bulk_replace_s ${dist_replace[*]}   (the same; dropping the distributed output drops each of its shards; median $m_dist_replace)"
awk -v a="$m_dist_replace" -v b="$m_single_replace" 'BEGIN { printf "distributed_over_single_bulk_replace %.2f   (medians)\n", a / b }'
echo "single_bulk_one_session_s $single_session   (three calls in one session)"
echo "distributed_bulk_one_session_s $dist_session   (the same)"
echo "$single_session $dist_session" | awk '{ printf "distributed_over_single_bulk_later_calls_of_a_session %.2f   (calls 2 and 3 summed)\n", ($5 + $6) / ($2 + $3) }'
echo "per_row_equal_to_single $row_equal/$pairs"
echo "bulk_equal_to_single $bulk_equal/$pairs   (the last round's output: $round_equal/$pairs)"

# --- bulk at REPEAT times the rows: what the fixed costs weigh --------------
# (creating the output's shards, starting a backend on each worker)
on coord single -c "CREATE TABLE pairs_x AS SELECT a.drug_id, a.target_id, r FROM davis.affinities a, generate_series(1, $REPEAT) r" \
    -c "CREATE VIEW pair_vectors_x AS SELECT p.drug_id, p.target_id, p.r, d.vec AS drug_vec, t.vec AS protein_vec
          FROM pairs_x p JOIN davis.drugs d USING (drug_id) JOIN davis.targets t USING (target_id)" >/dev/null
on coord dist -c "CREATE TABLE pairs_x (drug_id text, target_id text, r integer)" \
    -c "SELECT create_distributed_table('pairs_x', 'drug_id', colocate_with => 'pairs')" \
    -c "INSERT INTO pairs_x SELECT drug_id, target_id, r FROM pairs, generate_series(1, $REPEAT) r" \
    -c "CREATE VIEW pair_vectors_x AS SELECT p.drug_id, p.target_id, p.r, d.vec AS drug_vec, t.vec AS protein_vec
          FROM pairs_x p JOIN drugs d USING (drug_id) JOIN proteins t USING (target_id)" >/dev/null
for rep in 1 2; do
    single_x_s=$(on coord single -c "$SECONDS_FN" -c "SELECT pg_temp.seconds(\$q\$
        CALL moe_score($model::bigint, 'pair_vectors_x', 'bulk_single_x', key_columns => '{drug_id,target_id,r}', replace => true)\$q\$)")
    dist_x_s=$(on coord dist -c "$SECONDS_FN" -c "SELECT pg_temp.seconds(\$q\$
        CALL moe_score($model::bigint, 'pair_vectors_x', 'bulk_dist_x', key_columns => '{drug_id,target_id,r}', replace => true)\$q\$)")
done
on coord single -c "COPY bulk_single_x TO STDOUT" | on coord dist -c "CREATE TABLE single_bulk_x (drug_id text, target_id text, r integer, prediction real)" -c "COPY single_bulk_x FROM STDIN"
x_equal=$(on coord dist -c "SELECT count(*) FROM bulk_dist_x s JOIN single_bulk_x o USING (drug_id, target_id, r) WHERE s.prediction = o.prediction")
echo "single_bulk_x${REPEAT}_s $single_x_s   (CALL moe_score, one node, every pair $REPEAT times; second run)"
echo "distributed_bulk_x${REPEAT}_s $dist_x_s   (the same over the distributed tables; second run)"
awk -v a="$dist_x_s" -v b="$single_x_s" -v r="$REPEAT" 'BEGIN { printf "distributed_over_single_bulk_x%s %.2f\n", r, a / b }'
echo "bulk_x${REPEAT}_equal_to_single $x_equal/$((pairs * REPEAT))"

# --- screening: the best 100 compounds of a library for one target ---------
# a library of distinct compounds, one per pair: the pair's drug vector
# with its last four counts (stored as log(1 + count), as the model's
# featurizer makes them) drawn from a hash of the pair's key
lib_vec="(d.vec)[1:2044] || (SELECT array_agg(ln(1 + (abs(hashtext(KEY)) >> (4 * i)) % 16)::real ORDER BY i) FROM generate_series(0, 3) i)"
key_a="a.drug_id || '/' || a.target_id"
key_p="p.drug_id || '/' || p.target_id"
on coord single -c "CREATE TABLE library (key text, drug_id text, vec real[])" \
    -c "ALTER TABLE library ALTER COLUMN vec SET STORAGE EXTERNAL" \
    -c "INSERT INTO library SELECT $key_a, a.drug_id, ${lib_vec//KEY/$key_a}
          FROM davis.affinities a JOIN davis.drugs d USING (drug_id)" >/dev/null
on coord dist -c "CREATE TABLE library (key text, drug_id text, vec real[])" \
    -c "ALTER TABLE library ALTER COLUMN vec SET STORAGE EXTERNAL" \
    -c "SELECT create_distributed_table('library', 'drug_id', colocate_with => 'pairs')" \
    -c "INSERT INTO library SELECT $key_p, p.drug_id, ${lib_vec//KEY/$key_p}
          FROM pairs p JOIN drugs d USING (drug_id)" >/dev/null
target=$(on coord single -c "SELECT target_id FROM davis.targets ORDER BY target_id LIMIT 1")
screen="SELECT pg_temp.seconds(\$q\$CREATE TABLE top_hits AS SELECT * FROM moe_screen($model::bigint,
    (SELECT vec FROM TARGETS WHERE target_id = '$target'), 'library', 100, 'vec', 'key')\$q\$)"
for rep in 1 2; do
    single_screen_s=$(on coord single -c "DROP TABLE IF EXISTS top_hits" -c "$SECONDS_FN" -c "${screen//TARGETS/davis.targets}")
    dist_screen=$(on coord dist -c "DROP TABLE IF EXISTS top_hits" -c "$SECONDS_FN" -c "${screen//TARGETS/proteins}" \
        -c "SELECT coalesce(sum(entity_parts), 0) FROM moe_cache()")
done
dist_screen_s=$(echo "$dist_screen" | sed -n 1p)
screen_coord_parts=$(echo "$dist_screen" | sed -n 2p)
on coord single -c "COPY top_hits TO STDOUT" | on coord dist -c "CREATE TABLE single_top_hits (rank integer, key text, score real)" -c "COPY single_top_hits FROM STDIN"
screen_equal=$(on coord dist -c "SELECT count(*) FROM top_hits s JOIN single_top_hits o USING (rank) WHERE s.key = o.key AND s.score = o.score")
echo "single_screen_s $single_screen_s   (moe_screen, the best 100 of $pairs distinct compounds for one target, one node; second run)"
echo "distributed_screen_s $dist_screen_s   (the same over the distributed library: a top-100 query per shard on the workers; second run; entity parts the coordinator computed: $screen_coord_parts)"
awk -v a="$dist_screen_s" -v b="$single_screen_s" 'BEGIN { printf "distributed_over_single_screen %.2f\n", a / b }'
echo "screen_equal_to_single $screen_equal/100   (rank, key and score)"

# --- training over a view of distributed tables ---------------------------
# the rows of fold 0 with their labels, distributed like pairs; the same
# seed on one node and twice over the distributed view
on coord dist -c "CREATE TABLE labels (drug_id text, target_id text, label float8, fold integer, split text)" \
    -c "SELECT create_distributed_table('labels', 'drug_id', colocate_with => 'pairs')" >/dev/null
on coord single -c "COPY (SELECT a.drug_id, a.target_id, a.pkd, s.fold, s.split FROM davis.affinities a JOIN davis.splits s USING (drug_id, target_id) WHERE s.fold = 0) TO STDOUT" |
    on coord dist -c "COPY labels FROM STDIN"
on coord dist -c "CREATE VIEW train_pairs AS
    SELECT l.drug_id, l.target_id, d.vec AS drug_vec, t.vec AS protein_vec, l.label, l.fold, l.split
      FROM labels l JOIN drugs d USING (drug_id) JOIN proteins t USING (target_id)" \
    -c "SELECT moe_create_dataset('dist_davis', 'train_pairs', fold_column => 'fold', drug_key_column => 'drug_id', protein_key_column => 'target_id')" >/dev/null
train_opts="fold => 0, epochs => 1, seed => 3, deploy => 'never'"
on coord single -c "CALL moe_train('davis', model_name => 'det', $train_opts)" >/dev/null
single_md5=$(on coord single -c "SELECT (moe_model_info(max(id))).params_md5 FROM moe.models WHERE name = 'det'")
dist_md5s=""
for run in 1 2; do
    on coord dist -c "CALL moe_train('dist_davis', model_name => 'det$run', $train_opts)" >/dev/null
    dist_md5s="$dist_md5s $(on coord dist -c "SELECT (moe_model_info(max(id))).params_md5 FROM moe.models WHERE name = 'det$run'")"
done
same=0
for m in $dist_md5s; do [ "$m" = "$single_md5" ] && same=$((same + 1)); done
echo "training_over_distributed_view: $same of 2 runs have the weights of one node's ($single_md5; 1 epoch, seed 3)"

# --- a worker added after the model was distributed -----------------------
# no moe_distribute() now: the rebalancer copies the reference tables
# (moe.model_copies among them) to the new worker before moving shards there
on coord dist -c "SELECT citus_add_node('127.0.0.1', ${PORT[w3]})" >/dev/null
on coord dist -c "SELECT rebalance_table_shards(shard_transfer_mode => 'block_writes')" >/dev/null
w3_shards=$(on coord dist -c "SELECT count(*) FROM pg_dist_shard_placement WHERE nodeport = ${PORT[w3]}")
w3_own=$(on w3 dist -c "SELECT count(*) FROM moe.models")
on coord dist -c "TRUNCATE scores"
if out=$(on coord dist -c "$insert" 2>&1); then
    late_equal=$(on coord dist -c "SELECT count(*) FROM scores s JOIN single_scores o USING (drug_id, target_id) WHERE s.score = o.score")
    on coord dist -c "CALL moe_score($model::bigint, 'pair_vectors', 'bulk_dist', key_columns => '{drug_id,target_id}', replace => true)" >/dev/null
    late_bulk=$(on coord dist -c "SELECT count(*) FROM bulk_dist s JOIN single_bulk o USING (drug_id, target_id) WHERE s.prediction = o.prediction")
    echo "worker_added_later: no moe_distribute() after adding it, $w3_own models in its own moe.models; after rebalancing it holds $w3_shards shard placements; equal to single: per row $late_equal/$pairs, moe_score $late_bulk/$pairs"
else
    echo "worker_added_later: scoring failed without moe_distribute() ($w3_own models of its own), $w3_shards placements: $(echo "$out" | grep -m1 ERROR)"
fi

# --- the drift case: worker 2 holds another model under the same id --------
on w2 dist -c "DELETE FROM moe.deployments WHERE model_id = $model" -c "DELETE FROM moe.models WHERE id = $model" \
    -c "SELECT setval(pg_get_serial_sequence('moe.models', 'id'), $model, false)" \
    -c "SELECT moe_import_model('$BASE/other.ckpt', 'davis')" >/dev/null
for form in unchecked insert; do
    on coord dist -c "TRUNCATE scores"
    label=$([ "$form" = insert ] && echo "with params_md5" || echo "by id alone")
    if out=$(on coord dist -c "${!form}" 2>&1); then
        drift_equal=$(on coord dist -c "SELECT count(*) FROM scores s JOIN single_scores o USING (drug_id, target_id) WHERE s.score = o.score")
        echo "drift_case_errors no   ($label: scores equal to the coordinator's model $drift_equal/$pairs)"
    else
        echo "drift_case_errors yes   ($label: $(echo "$out" | grep -m1 ERROR | sed 's/^ERROR: *//'))"
    fi
done
if out=$(on coord dist -c "CALL moe_score($model::bigint, 'pair_vectors', 'bulk_drift', key_columns => '{drug_id,target_id}')" 2>&1); then
    echo "drift_case_errors no   (moe_score on the workers)"
else
    echo "drift_case_errors yes   (moe_score on the workers: $(echo "$out" | grep -m1 ERROR | sed 's/^ERROR: *//'))"
fi
if out=$(on coord dist -c "SELECT * FROM moe_distribute()" 2>&1); then
    echo "moe_distribute_over_drift: no error"
else
    echo "moe_distribute_over_drift: refused ($(echo "$out" | grep -m1 ERROR | sed 's/^ERROR: *//'))"
fi
