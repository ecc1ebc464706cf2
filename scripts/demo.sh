#!/usr/bin/env bash
# The main job end to end: dependencies, build, install, a throwaway
# cluster, data, training, evaluation, scoring and expert usage.
#
#   scripts/demo.sh                      synthetic data generated in the database
#   scripts/demo.sh --davis DIR          the Davis CSVs in DIR (e.g. ../shared/data/davis)
#   scripts/demo.sh --keep ...           leave the cluster running afterwards
#
# What it prints (not the per-epoch NOTICEs) is also written to
# bench/results/demo.txt, or bench/results/demo_davis.txt with --davis: the
# README quotes those files.
#
# Training arguments can be passed through MOE_TRAIN_ARGS, e.g.
#   MOE_TRAIN_ARGS="epochs => 5" scripts/demo.sh --davis ../shared/data/davis
source "$(dirname "$0")/lib.sh"
cd "$MOE_ROOT"

davis=""
while [ $# -gt 0 ]; do
    case "$1" in
        --davis) davis=$(cd "$2" && pwd); shift 2 ;;
        --keep) export MOE_KEEP_CLUSTER=1; shift ;;
        -h|--help) sed -n '2,16p' "$0"; exit 0 ;;
        *) echo "unknown argument: $1" >&2; exit 2 ;;
    esac
done

moe_install_deps
moe_build_install
started=$(date +%s)
results=bench/results/$([ -n "$davis" ] && echo demo_davis || echo demo).txt
mkdir -p bench/results
# from here on, what the demo prints goes to the terminal and to $results
exec > >(tee "$results")
log() { printf '\n== %s\n' "$*"; }
echo "# scripts/demo.sh${davis:+ --davis} at commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown) on $(nproc) cores: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
trap moe_cluster_stop EXIT
# preloaded, as in production: models load once per server into shared memory
moe_cluster_start "shared_preload_libraries = 'moe_pg'"
createdb moe_demo
export PGDATABASE=moe_demo
psql_q -c "CREATE EXTENSION moe_pg"

train_args=${MOE_TRAIN_ARGS:+, $MOE_TRAIN_ARGS}
if [ -n "$davis" ]; then
    log "loading Davis from $davis (LLMDTA warm split, our own featurizers)"
    psql_q -c "SELECT moe_load_dta('$davis', 'davis', 'warm') AS pairs_loaded"
    dataset=davis
    sample="SELECT p.drug_id, p.target_id, p.label AS measured,
                   round(moe_predict(p.drug_vec, p.protein_vec, 'davis')::numeric, 3) AS predicted
              FROM davis.pairs p WHERE p.fold = 0 AND p.split = 'test'
             ORDER BY p.label DESC, p.drug_id, p.target_id LIMIT 10"
    usage_from="davis.pairs p WHERE p.fold = 0 AND p.split = 'test'"
else
    log "generating synthetic data (60 drugs x 40 targets, 4 planted clusters)"
    psql_q <<'SQL'
CREATE TABLE demo_pairs AS SELECT * FROM moe_synthetic_dta(60, 40, 4, seed => 7);
SELECT moe_create_dataset('demo', 'demo_pairs', protein_column => 'target_vec',
                          drug_key_column => 'drug_id', protein_key_column => 'target_id');
SQL
    dataset=demo
    sample="SELECT p.drug_id, p.target_id, p.cluster, round(p.label::numeric, 3) AS measured,
                   round(moe_predict(p.drug_vec, p.target_vec, 'demo')::numeric, 3) AS predicted
              FROM demo_pairs p WHERE p.split = 'test' ORDER BY p.drug_id, p.target_id LIMIT 10"
    usage_from="demo_pairs p WHERE p.split = 'test'"
fi

log "training (CALL moe_train('$dataset', fold => 0$train_args))"
psql_q -c "CALL moe_train('$dataset', fold => 0$train_args)"

log "evaluation on the test split"
psql_q -c "SELECT n, round(mse::numeric, 4) AS mse, round(rmse::numeric, 4) AS rmse, round(ci::numeric, 4) AS ci,
                  round(r2::numeric, 4) AS r2, round(pearson::numeric, 4) AS pearson,
                  round(spearman::numeric, 4) AS spearman, round(rm2::numeric, 4) AS rm2
             FROM moe_evaluate('$dataset')"

log "training history (every 5th epoch, the best, and the last)"
psql_q -c "SELECT h.epoch, round(h.train_mse::numeric, 4) AS train_mse, round(h.val_mse::numeric, 4) AS val_mse,
                  round(h.seconds::numeric, 1) AS seconds, h.epoch = r.best_epoch AS best
             FROM moe.training_history h JOIN moe.training_runs r ON r.id = h.run_id
            WHERE r.model_name = '$dataset'
              AND (h.epoch % 5 = 0 OR h.epoch IN (1, r.best_epoch, r.epochs_run)) ORDER BY h.epoch"
psql_q -c "SELECT r.epochs_run, r.best_epoch, round(sum(h.seconds)::numeric, 1) AS train_seconds,
                  round(avg(h.seconds)::numeric, 2) AS seconds_per_epoch,
                  round(extract(epoch FROM r.finished_at - r.started_at)::numeric, 1) AS wall_seconds
             FROM moe.training_runs r JOIN moe.training_history h ON h.run_id = r.id
            WHERE r.model_name = '$dataset' GROUP BY r.id"

log "scoring pairs with moe_predict"
psql_q -c "$sample"

log "expert usage on the test split (top-k selections per expert)"
vec=$([ -n "$davis" ] && echo protein_vec || echo target_vec)
psql_q -c "SELECT r.expert, count(*) FILTER (WHERE r.selected) AS selected_rows,
                  round(avg(r.gate_prob)::numeric, 3) AS mean_gate_prob
             FROM $(echo "$usage_from" | sed 's/ WHERE.*//'),
                  LATERAL moe_route(p.drug_vec, p.$vec, '$dataset') r
            WHERE $(echo "$usage_from" | sed 's/.* WHERE //')
            GROUP BY r.expert ORDER BY r.expert"

log "the dashboards: moe.expert_usage (at the kept epoch) and the router's health per epoch"
psql_q -c "SELECT expert, round(mean_prob::numeric, 3) AS mean_prob, round(selection_fraction::numeric, 3) AS selection_fraction,
                  router_status, epoch
             FROM moe.expert_usage WHERE model = '$dataset' AND deployed ORDER BY expert"
psql_q -c "SELECT h.epoch, h.status, round(h.cv::numeric, 3) AS cv, round(h.normalized_entropy::numeric, 3) AS normalized_entropy,
                  h.dead_experts, h.dominant_expert
             FROM moe.router_health h
            WHERE h.run_id = (SELECT max(r.id) FROM moe.training_runs r JOIN moe.deployments d ON d.model_id = r.model_id
                               WHERE d.name = '$dataset')
              AND (h.epoch % 10 = 0 OR h.epoch = 1) ORDER BY h.epoch"
if [ -z "$davis" ]; then
    log "what the router learnt: planted cluster x top-1 expert on the test rows, and how well the leads recover the clusters"
    psql_q -c "SELECT p.cluster,
                      count(*) FILTER (WHERE r.expert = 0) AS expert_0, count(*) FILTER (WHERE r.expert = 1) AS expert_1,
                      count(*) FILTER (WHERE r.expert = 2) AS expert_2, count(*) FILTER (WHERE r.expert = 3) AS expert_3,
                      count(*) FILTER (WHERE r.expert > 3) AS other_experts
                 FROM moe_routing('demo', split => 'test') r
                 JOIN demo_pairs p ON p.drug_id::text = r.drug_key AND p.target_id::text = r.protein_key
                WHERE r.rank = 1
                GROUP BY p.cluster ORDER BY p.cluster"
    psql_q -c "SELECT level, n, clusters, experts, round(nmi::numeric, 3) AS nmi, round(ari::numeric, 3) AS ari,
                      round(purity::numeric, 3) AS purity
                 FROM moe_cluster_recovery('demo', split => 'test')"
fi
log "done in $(( $(date +%s) - started )) s (after the build)"
