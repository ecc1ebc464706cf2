#!/usr/bin/env bash
# moe_pg.progress: how much training says.  epoch: a NOTICE per epoch and
# the run's start and end; summary: the start and end only; quiet: no
# NOTICE at all (a WARNING still comes through).  Usage: progress.sh DB.
set -euo pipefail
db=$1
die() { echo "not ok - $*" >&2; exit 1; }
run() {   # level: prints the client's messages
    psql -X -q -v ON_ERROR_STOP=1 -d "$db" -c "SET client_min_messages = notice" -c "SET moe_pg.progress = '$1'" \
         -c "CALL moe_train('pg_progress', model_name => 'pg_progress_$1', epochs => 3, patience => 0, deploy => 'never',
                            drug_hidden => '{8}', protein_hidden => '{8}', gate_hidden => '{8}', expert_hidden => '{8}')" 2>&1
}
psql -X -q -v ON_ERROR_STOP=1 -d "$db" -c "SET client_min_messages = warning" \
     -c "DROP TABLE IF EXISTS pg_progress" -c "CREATE TABLE pg_progress AS SELECT * FROM moe_synthetic_dta(12, 8, 2, seed => 5)" \
     -c "SELECT moe_create_dataset('pg_progress', 'pg_progress', protein_column => 'target_vec', replace => true)" >/dev/null
epoch=$(run epoch); summary=$(run summary); quiet=$(run quiet)
[ "$(grep -c 'NOTICE:  epoch [0-9]*/3' <<<"$epoch")" = 3 ] || die "epoch: not one NOTICE per epoch: $epoch"
grep -q 'NOTICE:  model [0-9]* "pg_progress_epoch" saved' <<<"$epoch" || die "epoch: no end NOTICE"
[ "$(grep -c 'NOTICE:  epoch [0-9]*/3' <<<"$summary")" = 0 ] || die "summary: epoch NOTICEs: $summary"
grep -q 'NOTICE:  training "pg_progress_summary" on' <<<"$summary" && grep -q 'saved' <<<"$summary" \
    || die "summary: no start or end NOTICE: $summary"
[ "$(grep -c 'NOTICE' <<<"$quiet" || true)" = 0 ] || die "quiet: NOTICEs: $quiet"
psql -X -q -d "$db" -c "SET moe_pg.progress = 'loud'" >/dev/null 2>&1 && die "an unknown level was accepted"
echo "ok - moe_pg.progress: epoch $(grep -c NOTICE <<<"$epoch") NOTICEs, summary $(grep -c NOTICE <<<"$summary"), quiet 0"
