#!/usr/bin/env bash
# bench/routing_study.sh — the routing ablation behind the default balancing
# (docs/training.md, "Why these defaults"): a grid of balancing
# configurations trained on the synthetic planted-cluster data of
# scripts/demo.sh and on Davis warm fold 0 (ECFP drug fingerprints), with two
# dense baselines, one table row per configuration and dataset:
#
#   val_best / val_final   best and last validation MSE; degr = final - best
#   test_mse / test_ci     the kept model on the test rows
#   status                 router status at the kept epoch (training rows)
#   test_status            the same on the test rows (moe.expert_usage)
#   bal_ent                normalised entropy of the mean gate probabilities
#                          at the kept epoch (1 = even)
#   min_sel                smallest fraction of test rows that select an
#                          expert among their top k
#   min_lead               smallest fraction of test rows whose first choice
#                          is an expert
#   w2                     mean renormalised weight of the second selected
#                          expert on the test rows (top_k >= 2)
#   nmi                    cluster-recovery NMI of the first choices on the
#                          test rows (synthetic only)
#   seconds                training seconds
#
#   bash bench/routing_study.sh > bench/results/routing_study.txt
#       (about two hours on 2 cores; MOE_STUDY_DATASETS=syn for the
#       synthetic half only, a few minutes; MOE_STUDY_CONFIGS="defaults
#       none" for some rows only)
#
# It starts its own throwaway cluster (moe_pg preloaded).  Davis needs the
# CSVs (MOE_DATA_DIR, default ../shared/data) and is skipped without them.
source "$(dirname "$0")/../scripts/lib.sh"
cd "$MOE_ROOT"
DATA=${MOE_DATA_DIR:-$(cd "$MOE_ROOT/.." && pwd)/shared/data}
DATASETS=${MOE_STUDY_DATASETS:-syn davis}
ONLY=${MOE_STUDY_CONFIGS:-}

[ "${MOE_SKIP_BUILD:-0}" = 1 ] || moe_build_install >/dev/null
trap moe_cluster_stop EXIT
moe_cluster_start "shared_preload_libraries = 'moe_pg'" 2>/dev/null
export PGDATABASE=study
createdb study
q() { PGOPTIONS="-c client_min_messages=warning" psql -X -q -At -v ON_ERROR_STOP=1 "$@"; }
q -c "CREATE EXTENSION moe_pg"

# name | moe_train options (everything not given is the default)
CONFIGS=$(cat <<'EOF'
defaults|{}
none|{"balance": {}}
v0.1_default|{"balance": {"entropy": 0.001}}
entropy_0.01|{"balance": {"entropy": 0.01}}
switch_0.01|{"balance": {"switch": 0.01}}
importance_0.1|{"balance": {"importance": 0.1}}
zloss_0.001|{"balance": {"zloss": 0.001}}
aux_free_0.01|{"balance": {"aux_free": 0.01}}
importance+aux_free|{"balance": {"importance": 0.1, "aux_free": 0.01}}
entropy_adaptive|{"balance": {"entropy": 0.01}, "lb_schedule": "adaptive"}
noisy_gating|{"balance": {"entropy": 0.001}, "noisy_gating": true}
temperature_2_to_0.5|{"balance": {"entropy": 0.001}, "temperature": 2, "temperature_end": 0.5, "temperature_schedule": "cosine"}
sinkhorn_0.1|{"balance": {"sinkhorn": 0.1}}
sinkhorn_0.3|{"balance": {"sinkhorn": 0.3}}
dense_1_expert|{"experts": 1, "top_k": 1, "balance": {}}
dense_same_active|{"experts": 1, "top_k": 1, "balance": {}, "expert_hidden": [1536, 256]}
EOF
)

echo "# bench/routing_study.sh on $(nproc) cores: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
echo "# commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown); fold 0 of each dataset, seed 42"
[ -n "$ONLY" ] && echo "# configurations: $ONLY"

for ds in $DATASETS; do
    case $ds in
        syn)
            q -c "CREATE TABLE syn_pairs AS SELECT * FROM moe_synthetic_dta(60, 40, 4, seed => 7)" \
              -c "SELECT moe_create_dataset('syn', 'syn_pairs', protein_column => 'target_vec',
                                            drug_key_column => 'drug_id', protein_key_column => 'target_id')" >/dev/null ;;
        davis)
            if [ ! -f "$DATA/davis/affinities.csv" ]; then
                echo "# davis: CSVs not found under $DATA (set MOE_DATA_DIR), skipped"
                continue
            fi
            q -c "SELECT moe_load_dta('$DATA/davis', 'davis', drug_features => 'ecfp')" >/dev/null ;;
        *) echo "unknown dataset $ds" >&2; exit 2 ;;
    esac
    echo
    echo "## $ds"
    printf '%-22s %8s %8s %7s %8s %6s %-11s %-11s %7s %7s %8s %6s %5s %7s %9s\n' \
        config val_best val_final degr test_mse ci status test_status bal_ent min_sel min_lead w2 nmi seconds params
    while IFS='|' read -r name opts; do
        if [ -n "$ONLY" ] && ! [[ " $ONLY " == *" $name "* ]]; then
            continue
        fi
        model="rs_${ds}_${name}"
        q -c "CALL moe_train('$ds', fold => 0, model_name => '$model', deploy => 'never', options => '$opts')" >/dev/null
        nmi=NULL
        [ "$ds" = syn ] && nmi="(SELECT round(nmi::numeric, 3) FROM moe_cluster_recovery(m.id, split => 'test'))"
        q -F ' ' -c "
            WITH r AS (SELECT * FROM moe.training_runs WHERE id = (SELECT max(id) FROM moe.training_runs WHERE model_name = '$model')),
                 m AS (SELECT * FROM moe.models WHERE id = (SELECT model_id FROM r)),
                 h AS (SELECT min(val_mse) AS best, sum(seconds) AS secs,
                              (SELECT val_mse FROM moe.training_history x WHERE x.run_id = (SELECT id FROM r)
                                ORDER BY epoch DESC LIMIT 1) AS final
                         FROM moe.training_history WHERE run_id = (SELECT id FROM r)),
                 g AS (SELECT status, normalized_entropy FROM moe.router_history
                        WHERE run_id = (SELECT id FROM r) AND epoch = (SELECT best_epoch FROM r)),
                 w AS (SELECT avg(weight) AS w2 FROM moe_routing((SELECT id FROM m), split => 'test') WHERE rank = 2)
            SELECT format('%-22s %8s %8s %7s %8s %6s %-11s %-11s %7s %7s %8s %6s %5s %7s %9s', '$name',
                          round(h.best::numeric, 4), round(h.final::numeric, 4), round((h.final - h.best)::numeric, 4),
                          round((m.metrics -> 'test' ->> 'mse')::numeric, 4), round((m.metrics -> 'test' ->> 'ci')::numeric, 4),
                          g.status, m.metrics -> 'routing' ->> 'status', round(g.normalized_entropy::numeric, 3),
                          (SELECT round(min(f::numeric) * (m.config ->> 'top_k')::int, 3)
                             FROM jsonb_array_elements_text(m.metrics -> 'routing' -> 'selection_fraction') f),
                          (SELECT round(min(f::numeric), 3) FROM jsonb_array_elements_text(m.metrics -> 'routing' -> 'lead_fraction') f),
                          coalesce(round(w.w2::numeric, 3)::text, '-'), coalesce($nmi::text, '-'),
                          round(h.secs::numeric, 1), (moe_model_info(m.id)).n_params)
              FROM m, h, g, w"
    done <<<"$CONFIGS"
    q -c "SELECT '# defaults = ' || (config -> 'balance')::text || ', temperature ' || (config ->> 'temperature')
            FROM moe.models WHERE name = 'rs_${ds}_defaults'"
done
