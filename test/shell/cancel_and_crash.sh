#!/usr/bin/env bash
# Cancellation and crashes (docs/reliability.md).
#
#   1. pg_cancel_backend() during CALL moe_train (after two epochs, and in the
#      middle of an epoch): the backend's query ends within a second, the run
#      is marked cancelled with its committed epochs, and no model is made.
#   2. kill -9 of a training backend, then of a scoring backend that holds a
#      pin on a shared-cache entry: the server restarts (restart_after_crash)
#      and accepts connections again, moe.models is unchanged (row count,
#      params_md5 and md5 of every checkpoint), the shared cache starts
#      empty and reloads the model on first use, the answers are the same;
#      the next training marks the killed run failed.
#
# The crashes end every connection to the server; the script waits until the
# server is back, so the tests after it find it healthy.
# Usage: cancel_and_crash.sh DB (the server of PGHOST/PGPORT, as a superuser;
# kill -9 needs the right to signal the server's processes).
set -euo pipefail
db=$1
work=$(mktemp -d /tmp/moe_cc.XXXXXX)
bg=()
trap 'for p in "${bg[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"' EXIT

q() { PGOPTIONS="-c client_min_messages=warning" psql -X -q -At -v ON_ERROR_STOP=1 -d "$db" "$@"; }
# scripts/test.sh fails on any crash in a server log but the kills tests
# announce in the cluster's expected_kills (when it tells us the cluster)
announce_kill() { [ -z "${MOE_CLUSTER_DIR:-}" ] || echo "$1" >>"$MOE_CLUSTER_DIR/expected_kills"; }
die() { echo "not ok - $*" >&2; exit 1; }
now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.2f", b - a }'; }

# A model that takes about a second or more per epoch, on 22500 pairs.
arch="drug_hidden => '{256}', protein_hidden => '{256}', gate_hidden => '{128}', expert_hidden => '{256,128}'"
small="drug_hidden => '{16}', protein_hidden => '{16}', gate_hidden => '{16}', expert_hidden => '{16}'"
q >/dev/null <<SQL
SET client_min_messages = warning;
DROP TABLE IF EXISTS cc_big, cc_small;
DROP ROLE IF EXISTS moe_cc_trainer;
CREATE ROLE moe_cc_trainer IN ROLE moe_trainer;
CREATE TABLE cc_big AS SELECT * FROM moe_synthetic_dta(150, 150, 4, seed => 7);
CREATE TABLE cc_small AS SELECT * FROM moe_synthetic_dta(20, 20, 2, seed => 8);
SELECT moe_create_dataset('cc_big', 'cc_big', protein_column => 'target_vec', replace => true);
SELECT moe_create_dataset('cc_small', 'cc_small', protein_column => 'target_vec', replace => true);
GRANT SELECT ON cc_small TO moe_cc_trainer;
DELETE FROM moe.deployments WHERE name LIKE 'cc\_%';
DELETE FROM moe.models WHERE name LIKE 'cc\_%';
DELETE FROM moe.training_runs WHERE model_name LIKE 'cc\_%';
CALL moe_train('cc_small', model_name => 'cc_served', epochs => 2, batch_size => 64, $small);
CALL moe_train('cc_small', model_name => 'cc_other', epochs => 1, batch_size => 64, experts => 3, top_k => 1, $small);
SQL
served=$(q -c "SELECT model_id FROM moe.deployments WHERE name = 'cc_served'")
pair="(SELECT drug_vec FROM cc_small ORDER BY drug_id, target_id LIMIT 1), (SELECT target_vec FROM cc_small ORDER BY drug_id, target_id LIMIT 1)"
answer=$(q -c "SELECT moe_predict($pair, 'cc_served')")

# Training in the background; its psql's output goes to $work/NAME.out.
start_training() {
    PGOPTIONS="-c client_min_messages=warning -c moe_pg.threads=1" psql -X -q -d "$db" \
        -c "CALL moe_train('cc_big', model_name => '$1', epochs => 100000, patience => 0, $arch)" \
        >"$work/$1.out" 2>&1 &
    bg+=($!)
}

# Wait until run NAME has committed N epochs; prints the backend's pid.
wait_for_epochs() {
    local t0 n pid
    t0=$(now)
    while :; do
        read -r pid n < <(q -F ' ' -c "SELECT r.backend_pid, count(h.epoch) FROM moe.training_runs r
                                        LEFT JOIN moe.training_history h ON h.run_id = r.id
                                       WHERE r.model_name = '$1' GROUP BY r.id") || true
        [ -n "${n:-}" ] && [ "$n" -ge "$2" ] && { echo "$pid"; return 0; }
        [ "$(elapsed "$t0" | cut -d. -f1)" -lt 180 ] || die "run $1 did not commit $2 epochs in 180 s"
        sleep 0.1
    done
}

# Cancel a backend and return how long until its query ended (seconds),
# measured inside the server: no client start-up in the figure.
read -r -d '' cancel_fn <<'SQL' || true
CREATE FUNCTION pg_temp.cancel_and_wait(target integer) RETURNS double precision
LANGUAGE plpgsql AS $$
DECLARE
    t0 timestamptz;
BEGIN
    IF NOT pg_cancel_backend(target) THEN
        RAISE EXCEPTION 'could not signal backend %', target;
    END IF;
    t0 := clock_timestamp();
    LOOP
        PERFORM pg_stat_clear_snapshot();
        EXIT WHEN NOT EXISTS (SELECT 1 FROM pg_stat_activity WHERE pid = target AND state = 'active');
        EXIT WHEN clock_timestamp() - t0 > interval '60 s';
        PERFORM pg_sleep(0.002);
    END LOOP;
    RETURN extract(epoch FROM clock_timestamp() - t0);
END;
$$;
SQL

# ---- 1. cancellation --------------------------------------------------------
cancel_round() {   # NAME, epochs to wait for, extra wait in epochs[, check_others]
    local name=$1 pid took row per_epoch
    start_training "$name"
    pid=$(wait_for_epochs "$name" "$2")
    if [ "${4:-}" = check_others ]; then
        # another user's training starts meanwhile: it must not take this
        # live run for an abandoned one (it cannot see our backend's details)
        q -c "SET ROLE moe_cc_trainer" \
          -c "CALL moe_train('cc_small', model_name => 'cc_by_other', epochs => 1, batch_size => 64, deploy => 'never', $small)" \
            >/dev/null || die "a trainer could not train beside $name"
        [ "$(q -c "SELECT status FROM moe.training_runs WHERE model_name = '$name'")" = running ] \
            || die "another user's training marked the live run $name as abandoned"
    fi
    per_epoch=$(q -c "SELECT round(avg(h.seconds)::numeric, 2) FROM moe.training_history h
                        JOIN moe.training_runs r ON r.id = h.run_id WHERE r.model_name = '$name'")
    sleep "$(awk -v e="$per_epoch" -v f="$3" 'BEGIN { print e * f }')"
    took=$(q -c "$cancel_fn" -c "SELECT round(pg_temp.cancel_and_wait($pid)::numeric, 3)") \
        || die "could not cancel $name (pid $pid)"
    wait "${bg[-1]}" || true
    grep -q "canceling statement due to user request" "$work/$name.out" \
        || { cat "$work/$name.out" >&2; die "the CALL of $name did not end with a cancel"; }
    row=$(q -F ' ' -c "SELECT r.status, r.epochs_run, (SELECT count(*) FROM moe.training_history h WHERE h.run_id = r.id),
                              r.model_id IS NULL, (SELECT count(*) FROM moe.models m WHERE m.name = r.model_name),
                              (SELECT count(*) FROM moe.deployments d WHERE d.name = r.model_name), r.message
                         FROM moe.training_runs r WHERE r.model_name = '$name'")
    read -r status epochs history no_model models deployed message <<<"$row"
    echo "cancel ($name, ${per_epoch} s per epoch): query ended ${took} s after pg_cancel_backend; run $status after $epochs epochs"
    awk -v t="$took" 'BEGIN { exit !(t >= 0 && t < 1) }' || die "$name: the cancelled query took ${took} s to end (limit 1 s)"
    [ "$status" = cancelled ] || die "$name: run status $status, not cancelled ($message)"
    [ "$epochs" -ge "$2" ] && [ "$epochs" = "$history" ] || die "$name: epochs_run $epochs, history rows $history (expected >= $2, equal)"
    # the best epoch so far is kept as a model of its own, which no name points at
    [ "$no_model" = f ] && [ "$models" = 1 ] && [ "$deployed" = 0 ] \
        || die "$name: a cancelled run should keep one model (its best epoch) and deploy none: model_id null $no_model, $models models, $deployed names"
    case "$message" in *"was kept as model"*) ;; *) die "$name: the run's message does not say what was kept: $message" ;; esac
}
cancel_round cc_cancel_boundary 2 0 check_others   # just after an epoch committed
cancel_round cc_cancel_midway 1 0.5      # half-way through an epoch
echo "ok - a cancelled training ends within a second, marked cancelled, its epochs committed, its best epoch kept as a model that no name points at"

# ---- 2. crashes -------------------------------------------------------------
[ "$(q -c "SHOW restart_after_crash")" = on ] || { echo "ok - # SKIP crash tests: restart_after_crash is off"; exit 0; }

snapshot() {
    q -c "SELECT count(*) || ' ' || coalesce(string_agg(m.id || ':' || i.params_md5 || ':' || md5(m.checkpoint), ',' ORDER BY m.id), '')
            FROM moe.models m CROSS JOIN LATERAL moe_model_info(m.id) i"
}

# Wait for the server to accept connections again after a crash; prints seconds.
wait_for_server() {
    local t0
    t0=$(now)
    sleep 0.2
    until q -c "SELECT 1" >/dev/null 2>&1; do
        [ "$(elapsed "$t0" | cut -d. -f1)" -lt 120 ] || die "the server did not come back within 120 s"
        sleep 0.1
    done
    elapsed "$t0"
}

# After a crash: same models, an empty shared cache, one reload on first use.
check_after_crash() {   # what was killed, snapshot before, seconds to recover
    local after cached loads again
    after=$(snapshot)
    [ "$after" = "$2" ] || die "after killing $1, moe.models changed:
  before: $2
  after:  $after"
    cached=$(q -c "SELECT count(*) FROM moe_cache() WHERE scope = 'shared'")
    [ "$cached" = 0 ] || die "after killing $1, the shared cache still lists $cached models"
    again=$(q -c "SELECT moe_predict($pair, 'cc_served')")
    [ "$again" = "$answer" ] || die "after killing $1, cc_served answers $again instead of $answer"
    loads=$(q -c "SELECT loads || ' ' || pins FROM moe_cache() WHERE scope = 'shared' AND model_id = $served")
    [ "$loads" = "1 0" ] || die "after killing $1, expected the model loaded once and unpinned, saw loads/pins '$loads'"
    echo "crash ($1): server back in $3 s; moe.models unchanged ($(echo "$2" | cut -d' ' -f1) rows, checksums equal); cache rebuilt: 1 load, same answer"
}

# -- a training backend
q -c "SELECT moe_predict($pair, 'cc_served')" >/dev/null      # in the shared cache before the crash
[ "$(q -c "SELECT count(*) FROM moe_cache() WHERE scope = 'shared' AND model_id = $served")" = 1 ] \
    || die "cc_served is not in the shared cache (is moe_pg in shared_preload_libraries?)"
before=$(snapshot)
start_training cc_killed
pid=$(wait_for_epochs cc_killed 1)
announce_kill "$pid"
kill -9 "$pid"
took=$(wait_for_server)
wait "${bg[-1]}" || true
check_after_crash "a training backend" "$before" "$took"
[ "$(q -c "SELECT status FROM moe.training_runs WHERE model_name = 'cc_killed'")" = running ] \
    || die "the killed run should still read 'running' until the next training"
q -c "CALL moe_train('cc_small', model_name => 'cc_after', epochs => 1, batch_size => 64, deploy => 'never', $small)" >/dev/null
row=$(q -F '|' -c "SELECT status, epochs_run >= 1, model_id IS NULL, message FROM moe.training_runs WHERE model_name = 'cc_killed'")
[[ "$row" == "failed|t|t|the training backend (pid $pid) ended without finishing"* ]] \
    || die "the next training should have marked the killed run failed with its epochs: $row"
[ "$(q -c "SELECT count(*) FROM moe.models WHERE name = 'cc_killed'")" = 0 ] || die "the killed run left a model"
echo "ok - kill -9 of a training backend: the server recovers, models intact, the run marked failed by the next training"

# -- a scoring backend, holding a pin on the shared entry
before=$(snapshot)
PGOPTIONS="-c client_min_messages=warning" psql -X -q -d "$db" \
    -c "SELECT count(moe_predict(drug_vec, target_vec, 'cc_served')) FROM cc_big, generate_series(1, 1000)" \
    >"$work/scoring.out" 2>&1 &
bg+=($!)
t0=$(now)
until [ "$(q -c "SELECT coalesce(sum(pins), 0) FROM moe_cache() WHERE scope = 'shared' AND model_id = $served")" -ge 1 ]; do
    [ "$(elapsed "$t0" | cut -d. -f1)" -lt 60 ] || die "the scoring query never pinned the model"
    sleep 0.05
done
pid=$(q -c "SELECT pid FROM pg_stat_activity WHERE query LIKE 'SELECT count(moe_predict(%' AND state = 'active' AND pid <> pg_backend_pid()")
[ -n "$pid" ] || die "the scoring query is not running"
sleep 0.3
announce_kill "$pid"
kill -9 "$pid"
took=$(wait_for_server)
wait "${bg[-1]}" || true
check_after_crash "a scoring backend" "$before" "$took"
echo "ok - kill -9 of a scoring backend: the server recovers, models intact, the shared cache rebuilt"

q >/dev/null <<'SQL'
DELETE FROM moe.deployments WHERE name LIKE 'cc\_%';
DELETE FROM moe.models WHERE name LIKE 'cc\_%';
DELETE FROM moe.training_runs WHERE model_name LIKE 'cc\_%';
DELETE FROM moe.datasets WHERE name LIKE 'cc\_%';
DROP TABLE cc_big, cc_small;
DROP ROLE moe_cc_trainer;
SQL
