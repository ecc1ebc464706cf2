#!/usr/bin/env bash
# The shared model cache as clients see it (cluster started by test.sh with
# moe_pg preloaded): sixteen connections that ask for the same model at once
# cause one load; re-pointing a name is seen by other sessions only once it
# commits; without shared_preload_libraries each connection loads for itself
# and says so once.  Usage: shared_cache.sh DB
set -euo pipefail
db=$1
q() { PGOPTIONS="-c client_min_messages=warning" psql -X -q -At -v ON_ERROR_STOP=1 -d "$db" "$@"; }

small="drug_hidden => '{64}', protein_hidden => '{64}', gate_hidden => '{64}', expert_hidden => '{64}'"
q -c "SET client_min_messages = error" -c "
CREATE TABLE IF NOT EXISTS sc_syn AS SELECT * FROM moe_synthetic_dta(30, 20, 3, seed => 5);
SELECT moe_create_dataset('sc_syn', 'sc_syn', protein_column => 'target_vec', replace => true);
CALL moe_train('sc_syn', model_name => 'sc_one', epochs => 1, seed => 1, $small);
CALL moe_train('sc_syn', model_name => 'sc_two', epochs => 1, seed => 2, $small);" >/dev/null
one=$(q -c "SELECT model_id FROM moe.deployments WHERE name = 'sc_one'")
two=$(q -c "SELECT model_id FROM moe.deployments WHERE name = 'sc_two'")
pair="(SELECT drug_vec FROM sc_syn ORDER BY drug_id, target_id LIMIT 1), (SELECT target_vec FROM sc_syn ORDER BY drug_id, target_id LIMIT 1)"
p_one=$(q -c "SELECT moe_predict($pair, $one::bigint)")
p_two=$(q -c "SELECT moe_predict($pair, $two::bigint)")
[ "$p_one" != "$p_two" ] || { echo "the two models should differ" >&2; exit 1; }

# --- concurrent first load: one load however many connections wait for it
# (loads counts every load since the server started; moe_cache() lists a
# model only while it is cached, so read the count before emptying the cache)
loads() { q -c "SELECT loads FROM moe_cache() WHERE model_id = $one AND scope = 'shared'"; }
q -c "SELECT moe_predict($pair, $one::bigint)" >/dev/null
before=$(loads)
q -c "SELECT moe_cache_clear('server')" >/dev/null
pids=()
for i in $(seq 16); do
    q -c "SELECT count(moe_predict(drug_vec, target_vec, 'sc_one')) FROM sc_syn" >/dev/null & pids+=($!)
done
for p in "${pids[@]}"; do wait "$p"; done
after=$(loads)
[ $((after - before)) = 1 ] || { echo "16 concurrent first uses loaded the model $((after - before)) times" >&2; exit 1; }
hits=$(q -c "SELECT hits FROM moe_cache() WHERE model_id = $one AND scope = 'shared'")
[ "$hits" -ge 16 ] || { echo "expected at least 16 hits, saw $hits" >&2; exit 1; }
echo "ok - 16 concurrent first uses: 1 load, $hits hits"

# --- re-pointing a name: invisible to others until COMMIT, then seen at once
q -c "SELECT moe_deploy('sc_live', $one)" >/dev/null
log=$(mktemp)
# one long-lived reader: before, during and after the writer's transaction
# (its last read waits for the commit to be visible rather than for a fixed
# time, so a slow connection start of the writer cannot fail the test)
q -c "SELECT moe_predict($pair, 'sc_live')" -c "SELECT pg_sleep(2)" \
  -c "SELECT moe_predict($pair, 'sc_live')" \
  -c "DO \$\$ BEGIN
        FOR i IN 1..600 LOOP
            EXIT WHEN (SELECT model_id FROM moe.deployments WHERE name = 'sc_live') = $two;
            PERFORM pg_sleep(0.05);
        END LOOP;
      END \$\$" \
  -c "SELECT moe_predict($pair, 'sc_live')" >"$log" &
reader=$!
sleep 1
q -c "BEGIN" -c "SELECT moe_deploy('sc_live', $two)" -c "SELECT pg_sleep(3)" -c "COMMIT" >/dev/null &
writer=$!
sleep 2
fresh=$(q -c "SELECT moe_predict($pair, 'sc_live')")   # writer still open
wait "$writer"; wait "$reader"
mapfile -t seen < <(grep -v '^$' "$log"); rm -f "$log"
[ "${seen[0]}" = "$p_one" ] && [ "${seen[1]}" = "$p_one" ] && [ "$fresh" = "$p_one" ] \
    || { echo "an uncommitted re-point was visible: ${seen[*]} / $fresh (old $p_one)" >&2; exit 1; }
[ "${seen[2]}" = "$p_two" ] || { echo "the committed re-point was not seen: ${seen[2]} (new $p_two)" >&2; exit 1; }
echo "ok - re-pointing a name is seen by other sessions only after COMMIT"

# --- entity parts shared across connections and parallel workers: vectors
# stored out of line (TOAST pointers) are computed by the first connection
# that meets them and copied by every later one, with the same answers
q -c "SET client_min_messages = error" -c "
CREATE TABLE IF NOT EXISTS se_syn AS SELECT * FROM moe_synthetic_dta(12, 9, 3, seed => 8, drug_dim => 700, target_dim => 700);
SELECT moe_create_dataset('se_syn', 'se_syn', protein_column => 'target_vec', replace => true);
CALL moe_train('se_syn', model_name => 'se_model', epochs => 1, seed => 3, $small);
DROP TABLE IF EXISTS se_drugs, se_targets;
CREATE TABLE se_drugs (drug_id text PRIMARY KEY, vec real[]);
CREATE TABLE se_targets (target_id text PRIMARY KEY, vec real[]);
ALTER TABLE se_drugs ALTER COLUMN vec SET STORAGE EXTERNAL;
ALTER TABLE se_targets ALTER COLUMN vec SET STORAGE EXTERNAL;
INSERT INTO se_drugs SELECT DISTINCT ON (drug_id) drug_id, drug_vec FROM se_syn ORDER BY drug_id;
INSERT INTO se_targets SELECT DISTINCT ON (target_id) target_id, target_vec FROM se_syn ORDER BY target_id;" >/dev/null
se=$(q -c "SELECT model_id FROM moe.deployments WHERE name = 'se_model'")
entities=$(q -c "SELECT (SELECT count(*) FROM se_drugs) + (SELECT count(*) FROM se_targets)")
score="SELECT md5(string_agg(moe_predict(d.vec, t.vec, $se::bigint)::text, ',' ORDER BY d.drug_id, t.target_id)) FROM se_drugs d CROSS JOIN se_targets t"
parts="SELECT entity_parts || ' ' || entity_parts_copied || ' ' || shared_entity_parts FROM moe_cache() WHERE model_id = $se AND scope = 'shared'"
q -c "SELECT moe_cache_clear('server')" >/dev/null
read -r first first_parts < <(q -c "$score" -c "$parts" | paste -sd ' ' | awk '{ print $1, $2 "/" $3 "/" $4 }')
[ "$first_parts" = "$entities/0/$entities" ] \
    || { echo "first connection: expected $entities parts computed and shared, saw $first_parts (computed/copied/shared)" >&2; exit 1; }
read -r second second_parts < <(q -c "$score" -c "$parts" | paste -sd ' ' | awk '{ print $1, $2 "/" $3 "/" $4 }')
[ "$second_parts" = "$entities/$entities/$entities" ] \
    || { echo "second connection: expected all $entities parts copied, saw $second_parts" >&2; exit 1; }
[ "$second" = "$first" ] || { echo "copied parts changed the answers: $second vs $first" >&2; exit 1; }
# a parallel worker (which starts with an empty cache of its own) copies them too
parallel=$(q -c "SET max_parallel_workers_per_gather = 2" -c "SET force_parallel_mode = on" -c "SET parallel_leader_participation = off" -c "EXPLAIN (COSTS OFF) $score" -c "$score")
echo "$parallel" | grep -q "Gather" || { echo "expected a parallel plan:"; echo "$parallel"; exit 1; } >&2
[ "$(echo "$parallel" | tail -1)" = "$first" ] || { echo "a parallel worker with shared parts: $(echo "$parallel" | tail -1) vs $first" >&2; exit 1; }
# eight connections meeting the same entities at once: each part is
# published once, and every connection gets the same answers
q -c "SELECT moe_cache_clear('server')" >/dev/null
outs=$(mktemp -d)
pids=()
for i in $(seq 8); do q -c "$score" >"$outs/$i" & pids+=($!); done
for p in "${pids[@]}"; do wait "$p"; done
[ "$(cat "$outs"/* | sort -u)" = "$first" ] || { echo "concurrent first uses disagree: $(cat "$outs"/* | sort -u | tr '\n' ' ')" >&2; exit 1; }
rm -rf "$outs"
shared=$(q -c "SELECT shared_entity_parts FROM moe_cache() WHERE model_id = $se AND scope = 'shared'")
[ "$shared" = "$entities" ] || { echo "8 concurrent connections left $shared shared parts, expected $entities" >&2; exit 1; }
echo "ok - entity parts: the first connection computed $entities and shared them; the next copied all $entities, same answers (also in a parallel worker, and with 8 connections at once)"

# --- without shared_preload_libraries: per-connection cache and one NOTICE
(
    source "$(dirname "$0")/../../scripts/lib.sh"
    trap moe_cluster_stop EXIT
    moe_cluster_start >/dev/null 2>&1
    psql -X -q -v ON_ERROR_STOP=1 -d postgres -c "SET client_min_messages = error" -c "CREATE EXTENSION moe_pg" \
        -c "CREATE TABLE s AS SELECT * FROM moe_synthetic_dta(10, 10, 2, seed => 1)" \
        -c "SELECT moe_create_dataset('s', 's', protein_column => 'target_vec')" \
        -c "CALL moe_train('s', model_name => 'np', epochs => 1)" >/dev/null
    out=$(psql -X -q -v ON_ERROR_STOP=1 -d postgres \
        -c "SELECT count(moe_predict(drug_vec, target_vec, 'np')) FROM s" \
        -c "SELECT count(moe_predict(drug_vec, target_vec, 'np')) FROM s" \
        -c "SELECT scope, loads FROM moe_cache()" 2>&1)
    n=$(echo "$out" | grep -c "NOTICE:  moe_pg is not in shared_preload_libraries" || true)
    [ "$n" = 1 ] || { echo "expected one NOTICE without preload, saw $n:"; echo "$out"; exit 1; } >&2
    echo "$out" | grep -Eq "^ *local *\| *1$" || { echo "expected one local (per-connection) load:"; echo "$out"; exit 1; } >&2
    echo "ok - without preload: one NOTICE, a per-connection cache"
)
