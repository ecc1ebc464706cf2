#!/usr/bin/env bash
# The shared cache under churn (cluster started by test.sh: moe_pg preloaded,
# moe_pg.shared_cache_mb = 8).  A long sequence of models of mixed sizes,
# each used in a transaction of its own: every one ends up shared, the
# models evicted are always the least recently used, and "does not fit" is
# never said while an unpinned model could be evicted.  A model that fell
# back to a connection's own copy while the cache was pinned full is shared
# at its first use in a later transaction.  Usage: shared_cache_churn.sh DB
set -euo pipefail
db=$1
q() { PGOPTIONS="-c client_min_messages=warning" psql -X -q -At -v ON_ERROR_STOP=1 -d "$db" "$@"; }
die() { echo "not ok - $*" >&2; exit 1; }

widths=(64 288 128 256 96 224 160 288 64 192 256 128 32 272)
q >/dev/null <<SQL
SET client_min_messages = error;
DROP TABLE IF EXISTS ch_syn;
DELETE FROM moe.deployments WHERE name LIKE 'ch\_%';
DELETE FROM moe.models WHERE name LIKE 'ch\_%';
CREATE TABLE ch_syn AS SELECT * FROM moe_synthetic_dta(10, 8, 2, seed => 9);
SELECT moe_create_dataset('ch_syn', 'ch_syn', protein_column => 'target_vec', replace => true);
SQL
for i in "${!widths[@]}"; do
    w=${widths[$i]}
    q -c "SET client_min_messages = error" -c "CALL moe_train('ch_syn', model_name => 'ch_$i', epochs => 1, batch_size => 64, drug_hidden => '{$w}', protein_hidden => '{$w}', gate_hidden => '{$w}', expert_hidden => '{$w}')" >/dev/null
done
q -c "SELECT moe_cache_clear('server')" >/dev/null
pair="(SELECT drug_vec FROM ch_syn ORDER BY drug_id, target_id LIMIT 1), (SELECT target_vec FROM ch_syn ORDER BY drug_id, target_id LIMIT 1)"
id_of() { q -c "SELECT model_id FROM moe.deployments WHERE name = 'ch_$1'"; }

# three rounds over the models in a shuffled but fixed order
order=()
for round in 1 2 3; do
    for i in $(seq 0 $((${#widths[@]} - 1)) | awk -v r=$round 'BEGIN { srand(r) } { print rand() "\t" $0 }' | sort -n | cut -f2); do
        order+=("$i")
    done
done
declare -A last_use=()
step=0 evictions=0
for i in "${order[@]}"; do
    step=$((step + 1))
    id=$(id_of "$i")
    out=$(PGOPTIONS="-c client_min_messages=notice" psql -X -q -At -v ON_ERROR_STOP=1 -d "$db" \
          -c "SELECT moe_predict($pair, $id::bigint)" 2>&1)
    if echo "$out" | grep -q "does not fit"; then
        die "step $step (model ch_$i, width ${widths[$i]}): 'does not fit' with nothing pinned: $out"
    fi
    last_use[$id]=$step
    mapfile -t cached < <(q -c "SELECT model_id FROM moe_cache() WHERE scope = 'shared'")
    scope=$(q -c "SELECT string_agg(DISTINCT scope, ',') FROM moe_cache() WHERE model_id = $id")
    [ "$scope" = shared ] || die "step $step: model ch_$i ended up '$scope', not shared"
    # LRU: everything used earlier and evicted was used before everything kept
    oldest_kept=$step newest_evicted=0
    for m in "${!last_use[@]}"; do
        kept=0
        for c in "${cached[@]}"; do [ "$c" = "$m" ] && kept=1; done
        if [ $kept = 1 ]; then
            [ "${last_use[$m]}" -lt "$oldest_kept" ] && oldest_kept=${last_use[$m]}
        else
            [ "${last_use[$m]}" -gt "$newest_evicted" ] && newest_evicted=${last_use[$m]}
            unset "last_use[$m]"
            evictions=$((evictions + 1))
        fi
    done
    [ "$newest_evicted" -lt "$oldest_kept" ] \
        || die "step $step: evicted a model last used at step $newest_evicted but kept one last used at step $oldest_kept"
done
echo "ok - ${#order[@]} uses of ${#widths[@]} models of widths 32 to 288 in an 8 MB shared cache: every one shared, $evictions evictions, always the least recently used, never 'does not fit'"

# --- the cache pinned full: a connection falls back, then shares once it can
big=(1 3 7)   # the widest models
ids=($(id_of "${big[0]}") $(id_of "${big[1]}") $(id_of "${big[2]}"))
q -c "SELECT moe_cache_clear('server')" >/dev/null
log=$(mktemp)
q -c "BEGIN" -c "SELECT moe_predict($pair, ${ids[0]}::bigint)" -c "SELECT moe_predict($pair, ${ids[1]}::bigint)" \
  -c "SELECT pg_sleep(4)" -c "COMMIT" >/dev/null &
holder=$!
PGOPTIONS="-c client_min_messages=notice" psql -X -q -At -v ON_ERROR_STOP=1 -d "$db" \
    -c "SELECT pg_sleep(1.5)" -c "SELECT moe_predict($pair, ${ids[2]}::bigint)" \
    -c "SELECT scope FROM moe_cache() WHERE model_id = ${ids[2]}" -c "SELECT pg_sleep(4)" \
    -c "SELECT moe_predict($pair, ${ids[2]}::bigint)" \
    -c "SELECT string_agg(scope, ',') FROM moe_cache() WHERE model_id = ${ids[2]}" >"$log" 2>&1
wait "$holder"
grep -q "does not fit in the shared cache" "$log" || die "with the cache pinned full the model should have fallen back: $(cat "$log")"
grep -q "in use by a transaction: model ${ids[0]} (.* MB, pinned), model ${ids[1]} (.* MB, pinned)" "$log" \
    || die "the NOTICE should name the pinned models and their sizes: $(cat "$log")"
mapfile -t scopes < <(grep -E '^(local|shared)' "$log")
[ "${scopes[0]}" = local ] && [ "${scopes[1]}" = shared ] \
    || die "expected a local copy while pinned full, then shared: ${scopes[*]} ($(cat "$log"))"
rm -f "$log"
echo "ok - with the cache pinned full a model falls back to the connection (the NOTICE names the pinned models), and is shared at its first use once the pins are gone"
