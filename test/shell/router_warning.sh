#!/usr/bin/env bash
# A training run whose router degenerates (collapsed, a dead expert) says so
# with a WARNING as it happens (once per change of state), and one whose
# kept epoch is not balanced says so at the end; a balanced one stays
# quiet.  Usage: router_warning.sh DB
set -euo pipefail
db=$1
run() { psql -X -q -v ON_ERROR_STOP=1 -d "$db" -c "SET client_min_messages = warning" -c "$1" 2>&1; }

setup="CREATE TABLE IF NOT EXISTS rw_syn AS SELECT * FROM moe_synthetic_dta(40, 30, 4, seed => 9);
SELECT moe_create_dataset('rw_syn', 'rw_syn', protein_column => 'target_vec', replace => true);"
psql -X -q -v ON_ERROR_STOP=1 -d "$db" -c "$setup" >/dev/null
small="drug_hidden => '{16}', protein_hidden => '{16}', gate_hidden => '{16}', expert_hidden => '{16}', batch_size => 64"

# sixteen experts, a near-argmax router and no balancing: not balanced
out=$(run "CALL moe_train('rw_syn', model_name => 'rw_unhealthy', experts => 16, top_k => 1,
                          temperature => 0.05, lb_method => 'none', epochs => 3, $small)")
status=$(psql -X -At -d "$db" -c "SELECT h.status FROM moe.router_health h JOIN moe.training_runs r ON r.id = h.run_id
                                  WHERE r.model_name = 'rw_unhealthy' AND h.epoch = r.best_epoch")
if [ "$status" = balanced ]; then echo "expected an unhealthy router, got balanced" >&2; exit 1; fi
echo "$out" | grep -q "WARNING:  router of \"rw_unhealthy\" is not balanced at its kept epoch" \
    || { echo "no end WARNING for the $status router:"; echo "$out"; exit 1; } >&2
live=$(echo "$out" | grep -c 'WARNING:  router of "rw_unhealthy" is [a-z_]* at epoch' || true)
changes=$(psql -X -At -d "$db" -c "SELECT count(*) FROM (SELECT status, lag(status) OVER (ORDER BY epoch) AS prev
          FROM moe.router_health WHERE model_name = 'rw_unhealthy') s
          WHERE status IN ('collapsed', 'dead_expert') AND status IS DISTINCT FROM prev")
[ "$live" = "$changes" ] || { echo "expected $changes live warnings (into collapsed or dead_expert), saw $live" >&2; exit 1; }
warnings=$((live + 1))

# strong balancing: balanced from the first epoch, no warning
out=$(run "CALL moe_train('rw_syn', model_name => 'rw_healthy', experts => 4, top_k => 1,
                          lb_method => 'cv', lb_weight => 1, lr => 0.003, epochs => 3, $small)")
bad=$(psql -X -At -d "$db" -c "SELECT count(*) FROM moe.router_health WHERE model_name = 'rw_healthy' AND status <> 'balanced'")
[ "$bad" = 0 ] || { echo "expected a balanced router" >&2; exit 1; }
if echo "$out" | grep -q 'WARNING'; then echo "unexpected warning: $out" >&2; exit 1; fi
echo "ok - router health warnings ($live as the router degenerated and one at the end for the unhealthy run, none for the balanced one)"
