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
# must hold davis/, otherwise it skips.  Prints one row per fold, the mean
# and the sample standard deviation (moe.cross_validation_results).
source "$(dirname "$0")/../scripts/lib.sh"
cd "$MOE_ROOT"
DATA=${MOE_DATA_DIR:-$(cd "$MOE_ROOT/.." && pwd)/shared/data}
if [ ! -f "$DATA/davis/affinities.csv" ]; then
    echo "SKIP: Davis CSVs not found under $DATA (set MOE_DATA_DIR)"
    exit 0
fi
FEATURES=${MOE_CV_DRUG_FEATURES:-ecfp}
# refit: each fold chooses its epoch count on its validation rows, then
# trains a fresh model on training + validation rows (docs/training.md)
OPTIONS=${MOE_CV_OPTIONS:-'{"refit": true}'}

[ "${MOE_SKIP_BUILD:-0}" = 1 ] || moe_build_install >/dev/null
trap moe_cluster_stop EXIT
moe_cluster_start "shared_preload_libraries = 'moe_pg'" 2>/dev/null
export PGDATABASE=cv
createdb cv
q() { psql -X -q -v ON_ERROR_STOP=1 "$@"; }
echo "# bench/davis_cv.sh on $(nproc) cores: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
echo "# drug features: $FEATURES; options: $OPTIONS (everything else the moe_train defaults)"
q -c "CREATE EXTENSION moe_pg" -c "SET client_min_messages = warning" \
  -c "SELECT moe_load_dta('$DATA/davis', 'davis', drug_features => '$FEATURES')" >/dev/null
start=$(date +%s)
# one NOTICE per epoch and per fold shows progress on stderr
q -c "CALL moe_cross_validate('davis', folds => 5, model_name => 'davis_cv', options => '$OPTIONS')" >/dev/null
echo "# wall time $(( $(date +%s) - start )) s"
q -c "SELECT fold, n, round(mse::numeric, 4) AS mse, round(ci::numeric, 4) AS ci, round(r2::numeric, 4) AS r2,
             round(pearson::numeric, 4) AS pearson, round(spearman::numeric, 4) AS spearman,
             round(rm2::numeric, 4) AS rm2, round(best_epoch::numeric, 1) AS best_epoch,
             round(epochs_run::numeric, 1) AS epochs, round(train_seconds::numeric, 1) AS seconds
        FROM moe.cross_validation_results ORDER BY fold = 'std', fold = 'mean', fold"
q -At -c "SELECT format('target mse <= 0.220: %s (%s); ci >= 0.890: %s (%s)',
                        CASE WHEN mse <= 0.220 THEN 'met' ELSE 'NOT met' END, round(mse::numeric, 4),
                        CASE WHEN ci >= 0.890 THEN 'met' ELSE 'NOT met' END, round(ci::numeric, 4))
            FROM moe.cross_validation_results WHERE fold = 'mean'"
