#!/usr/bin/env bash
# bench/davis_cv.sh — the Davis accuracy figure: 5-fold cross-validation on
# the LLMDTA warm split, trained entirely in the database from SMILES and
# sequences (our ECFP4 fingerprints and protein 3-mer composition).
#
#   bash bench/davis_cv.sh                      (about 50 minutes on 2 cores)
#   MOE_CV_DRUG_FEATURES=ngram bash bench/davis_cv.sh
#   MOE_CV_OPTIONS='{}' bash bench/davis_cv.sh          (no refit: every default)
#
# It starts its own throwaway cluster; MOE_DATA_DIR (default ../shared/data)
# must hold davis/, otherwise it skips.  Prints one row per fold with its
# router's health (moe.cross_validation_results, moe.router_history,
# moe_routing), the mean and the sample standard deviation
# (moe.cross_validation_summary).
source "$(dirname "$0")/../scripts/lib.sh"
cd "$MOE_ROOT"
moe_bench_davis_data
FEATURES=${MOE_CV_DRUG_FEATURES:-ecfp}
# refit: each fold chooses its epoch count on its validation rows, then
# trains a fresh model on training + validation rows (docs/training.md)
OPTIONS=${MOE_CV_OPTIONS:-'{"refit": true}'}

moe_bench_cluster cv
q() { psql -X -q -v ON_ERROR_STOP=1 "$@"; }
echo "# bench/davis_cv.sh on $(nproc) cores: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
echo "# drug features: $FEATURES; options: $OPTIONS (everything else the moe_train defaults)"
echo "# commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
q -c "CREATE EXTENSION moe_pg" -c "SET client_min_messages = warning" \
  -c "SELECT moe_load_dta('$DATA/davis', 'davis', drug_features => '$FEATURES')" >/dev/null
start=$(date +%s)
# one NOTICE per epoch and per fold shows progress on stderr
q -c "CALL moe_cross_validate('davis', folds => 5, model_name => 'davis_cv', options => '$OPTIONS')" >/dev/null
echo "# wall time $(( $(date +%s) - start )) s"
# per fold: the test metrics, then the router of the fold's model (status at
# its kept epoch on the training rows and on the test rows, the smallest
# fraction of test rows that select an expert, the mean weight of the second
# selected expert); then the mean and the standard deviation
q -c "WITH f AS (
        SELECT r.fold, r.n, r.mse, r.ci, r.r2, r.pearson, r.spearman, r.rm2, r.best_epoch, r.epochs_run,
               r.train_seconds, r.model_id, r.run_id
          FROM moe.cross_validation_results r
         WHERE r.experiment_id = (SELECT max(id) FROM moe.experiments WHERE model_name = 'davis_cv'))
      SELECT f.fold::text AS fold, f.n, round(f.mse::numeric, 4) AS mse, round(f.ci::numeric, 4) AS ci,
             round(f.r2::numeric, 4) AS r2, round(f.pearson::numeric, 4) AS pearson,
             round(f.spearman::numeric, 4) AS spearman, round(f.rm2::numeric, 4) AS rm2,
             f.best_epoch AS best_epoch, f.epochs_run AS epochs, round(f.train_seconds::numeric, 1) AS seconds,
             (SELECT g.status FROM moe.router_history g JOIN moe.training_runs t ON t.id = g.run_id
               WHERE t.id = f.run_id AND g.epoch = t.best_epoch) AS router,
             m.metrics -> 'routing' ->> 'status' AS test_router,
             (SELECT round(min(x::numeric) * (m.config ->> 'top_k')::int, 3)
                FROM jsonb_array_elements_text(m.metrics -> 'routing' -> 'selection_fraction') x) AS min_sel,
             (SELECT round(avg(w.weight)::numeric, 3) FROM moe_routing(f.model_id, 'davis', 'test', f.fold) w
               WHERE w.rank = 2) AS w2
        FROM f JOIN moe.models m ON m.id = f.model_id
      UNION ALL
      SELECT 'mean', s.n, round(s.mse::numeric, 4), round(s.ci::numeric, 4), round(s.r2::numeric, 4),
             round(s.pearson::numeric, 4), round(s.spearman::numeric, 4), round(s.rm2::numeric, 4),
             round(s.best_epoch::numeric, 1), round(s.epochs_run::numeric, 1), round(s.train_seconds::numeric, 1),
             NULL, NULL, NULL, NULL
        FROM moe.cross_validation_summary s
       WHERE s.experiment_id = (SELECT max(id) FROM moe.experiments WHERE model_name = 'davis_cv')
      UNION ALL
      SELECT 'std', NULL, round(s.mse_std::numeric, 4), round(s.ci_std::numeric, 4), round(s.r2_std::numeric, 4),
             round(s.pearson_std::numeric, 4), round(s.spearman_std::numeric, 4), round(s.rm2_std::numeric, 4),
             round(s.best_epoch_std::numeric, 1), NULL, round(s.train_seconds_std::numeric, 1), NULL, NULL, NULL, NULL
        FROM moe.cross_validation_summary s
       WHERE s.experiment_id = (SELECT max(id) FROM moe.experiments WHERE model_name = 'davis_cv')"
q -At -c "SELECT format('round 1 targets: mse <= 0.220: %s (%s); ci >= 0.890: %s (%s)',
                        CASE WHEN mse <= 0.220 THEN 'met' ELSE 'NOT met' END, round(mse::numeric, 4),
                        CASE WHEN ci >= 0.890 THEN 'met' ELSE 'NOT met' END, round(ci::numeric, 4))
               || E'\n' ||
                 format('no worse than 0.1.0 (mse <= 0.2024, ci >= 0.902): %s; published graph models (mse <= 0.195, ci >= 0.906): %s',
                        CASE WHEN mse <= 0.2024 AND ci >= 0.902 THEN 'met' ELSE 'NOT met' END,
                        CASE WHEN mse <= 0.195 AND ci >= 0.906 THEN 'met' ELSE 'NOT met' END)
            FROM moe.cross_validation_summary
           WHERE experiment_id = (SELECT max(id) FROM moe.experiments WHERE model_name = 'davis_cv')"
