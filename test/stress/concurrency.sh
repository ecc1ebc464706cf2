#!/usr/bin/env bash
# Serving while the model behind a name changes (docs/reliability.md).
#
# pgbench clients call moe_predict(drug, protein, 'moe_stress') by name, each
# transaction logging its answer, while another session retrains small
# models and re-points the name with moe_deploy() (and drops versions it no
# longer serves).  The clients score as a member of moe_reader, the
# retraining session trains as a member of moe_trainer (roles
# moe_stress_client and moe_stress_trainer, made here and dropped after).
# Before each re-point the new version's prediction for every pair is
# recorded.  At the end:
#   - pgbench reported no failed transaction, no aborted client, exit 0;
#   - every logged answer equals the recorded prediction of one committed
#     version, and those recordings equal moe_predict(pair, id) now for the
#     versions that still exist;
#   - no answer came from a version older than the one that had been
#     deployed before the answering transaction began (no stale cache).
#
#   test/stress/concurrency.sh DB
#     MOE_STRESS_SECONDS   how long pgbench runs (default 60)
#     MOE_STRESS_CLIENTS   pgbench clients (default 16)
#     MOE_STRESS_KEEP=1    keep schema moe_stress and its models afterwards
#
# Runs against the server of PGHOST/PGPORT/PGUSER (a superuser), in DB,
# which has the moe_pg extension.
set -euo pipefail
db=${1:?usage: concurrency.sh DB}
seconds=${MOE_STRESS_SECONDS:-60}
clients=${MOE_STRESS_CLIENTS:-16}
PG_BIN=${PG_BIN:-/usr/lib/postgresql/15/bin}
name=moe_stress
work=$(mktemp -d /tmp/moe_stress.XXXXXX)
retrainer=

q() { PGOPTIONS="-c client_min_messages=warning" psql -X -q -At -v ON_ERROR_STOP=1 -d "$db" "$@"; }

cleanup() {
    [ -n "$retrainer" ] && kill "$retrainer" 2>/dev/null && wait "$retrainer" 2>/dev/null
    if [ "${MOE_STRESS_KEEP:-0}" != 1 ]; then
        q -c "DELETE FROM moe.deployments WHERE name = '$name'" \
          -c "DELETE FROM moe.models WHERE name = '${name}_v'" \
          -c "DELETE FROM moe.training_runs WHERE model_name = '${name}_v'" \
          -c "DELETE FROM moe.datasets WHERE name = '$name'" \
          -c "DROP SCHEMA IF EXISTS moe_stress CASCADE" \
          -c "DROP ROLE IF EXISTS moe_stress_client, moe_stress_trainer" >/dev/null 2>&1 || true
    fi
    rm -rf "$work"
}
trap cleanup EXIT

# ---- the pairs, the log, the versions and their predictions
q >/dev/null <<SQL
SET client_min_messages = warning;
DROP SCHEMA IF EXISTS moe_stress CASCADE;
DROP ROLE IF EXISTS moe_stress_client, moe_stress_trainer;
-- the clients score as a moe_reader, the retraining session trains as a moe_trainer
CREATE ROLE moe_stress_client IN ROLE moe_reader;
CREATE ROLE moe_stress_trainer IN ROLE moe_trainer;
DELETE FROM moe.deployments WHERE name = '$name';
DELETE FROM moe.models WHERE name = '${name}_v';
CREATE SCHEMA moe_stress;
CREATE TABLE moe_stress.pairs AS
SELECT row_number() OVER (ORDER BY drug_id, target_id)::integer AS id, *
  FROM moe_synthetic_dta(40, 30, 3, seed => 17);
ALTER TABLE moe_stress.pairs ADD PRIMARY KEY (id);
SELECT moe_create_dataset('$name', 'moe_stress.pairs', protein_column => 'target_vec', replace => true);
-- one row per answer served: which client, when its transaction began
CREATE UNLOGGED TABLE moe_stress.answers (
    n bigserial PRIMARY KEY, client integer NOT NULL, pair integer NOT NULL,
    prediction real NOT NULL, at timestamptz NOT NULL DEFAULT now());
-- every version the name pointed at, in order, recorded after its deploy committed
CREATE TABLE moe_stress.versions (
    seq integer PRIMARY KEY, model_id bigint NOT NULL, deployed_at timestamptz NOT NULL,
    dropped boolean NOT NULL DEFAULT false);
-- each version's prediction for each pair, recorded before it was deployed
CREATE TABLE moe_stress.expected (
    model_id bigint NOT NULL, pair integer NOT NULL, prediction real NOT NULL,
    PRIMARY KEY (model_id, pair));
CREATE INDEX ON moe_stress.expected (pair, prediction);
GRANT USAGE ON SCHEMA moe_stress TO moe_stress_client, moe_stress_trainer;
GRANT SELECT ON moe_stress.pairs TO moe_stress_client, moe_stress_trainer;
GRANT INSERT ON moe_stress.answers TO moe_stress_client;
GRANT USAGE ON SEQUENCE moe_stress.answers_n_seq TO moe_stress_client;
GRANT SELECT, INSERT, UPDATE ON moe_stress.expected, moe_stress.versions TO moe_stress_trainer;
SQL
npairs=$(q -c "SELECT count(*) FROM moe_stress.pairs")

# One version: train (not deployed), record its predictions, re-point the
# name, record the re-point, and drop the version three re-points back.
version_sql() {
    cat <<SQL
SET client_min_messages = warning;
SET moe_pg.threads = 1;
SET ROLE moe_stress_trainer;
CALL moe_train('$name', model_name => '${name}_v', epochs => 1, batch_size => 128, seed => $1, deploy => 'never',
               experts => 4, drug_hidden => '{32}', protein_hidden => '{32}', gate_hidden => '{32}',
               expert_hidden => '{32}');
SELECT max(id) AS id FROM moe.models WHERE name = '${name}_v' \gset
INSERT INTO moe_stress.expected
SELECT :id, p.id, moe_predict(p.drug_vec, p.target_vec, :id::bigint) FROM moe_stress.pairs p;
SELECT moe_deploy('$name', :id);
INSERT INTO moe_stress.versions (seq, model_id, deployed_at) VALUES ($1, :id, clock_timestamp());
SELECT moe_drop_model(model_id) FROM moe_stress.versions WHERE seq <= $1 - 3 AND NOT dropped;
UPDATE moe_stress.versions SET dropped = true WHERE seq <= $1 - 3;
SQL
}
version_sql 1 | q >/dev/null

# ---- the retrainer: until told to stop
touch "$work/run"
(
    seq=2
    while [ -e "$work/run" ]; do
        version_sql $seq | q >/dev/null 2>"$work/retrain.err" || { echo "retrain $seq failed:" >&2; cat "$work/retrain.err" >&2; exit 1; }
        seq=$((seq + 1))
        sleep 0.2
    done
) &
retrainer=$!

# ---- the clients
cat >"$work/predict.sql" <<SQL
\set p random(1, $npairs)
INSERT INTO moe_stress.answers (client, pair, prediction)
SELECT :client_id, id, moe_predict(drug_vec, target_vec, '$name') FROM moe_stress.pairs WHERE id = :p;
SQL
threads=$(( clients < 4 ? clients : 4 ))
set +e
PGOPTIONS="-c role=moe_stress_client" "$PG_BIN/pgbench" -n -M prepared -c "$clients" -j "$threads" -T "$seconds" -f "$work/predict.sql" \
    --failures-detailed "$db" >"$work/pgbench.out" 2>&1
bench_rc=$?
set -e
rm -f "$work/run"
retrain_rc=0
wait "$retrainer" || retrain_rc=$?
retrainer=

# ---- the figures
processed=$(sed -n 's/^number of transactions actually processed: \([0-9]*\).*/\1/p' "$work/pgbench.out")
failed=$(sed -n 's/^number of failed transactions: \([0-9]*\).*/\1/p' "$work/pgbench.out")
aborted=$(grep -c "aborted" "$work/pgbench.out" || true)
tps=$(sed -n 's/^tps = \([0-9.]*\).*/\1/p' "$work/pgbench.out")
latency=$(sed -n 's/^latency average = \([0-9.]* ms\).*/\1/p' "$work/pgbench.out")
logged=$(q -c "SELECT count(*) FROM moe_stress.answers")
unmatched=$(q -c "SELECT count(*) FROM moe_stress.answers a
                   WHERE NOT EXISTS (SELECT 1 FROM moe_stress.expected e
                                      WHERE e.pair = a.pair AND e.prediction = a.prediction)")
# the versions an answer can be attributed to unambiguously
served=$(q -c "SELECT count(DISTINCT m.model_id) FROM moe_stress.answers a
                CROSS JOIN LATERAL (SELECT min(e.model_id) AS model_id, count(*) AS n FROM moe_stress.expected e
                                     WHERE e.pair = a.pair AND e.prediction = a.prediction) m
               WHERE m.n = 1")
# an answer from version k although version k' > k was deployed before its transaction began
stale=$(q -c "SELECT count(*) FROM moe_stress.answers a
               WHERE NOT EXISTS (
                   SELECT 1 FROM moe_stress.expected e JOIN moe_stress.versions v ON v.model_id = e.model_id
                    WHERE e.pair = a.pair AND e.prediction = a.prediction
                      AND v.seq >= coalesce((SELECT max(w.seq) FROM moe_stress.versions w
                                              WHERE w.deployed_at < a.at), 1))")
versions=$(q -c "SELECT count(*) FROM moe_stress.versions")
repoints=$((versions - 1))
# the recorded predictions still hold for the versions not dropped
drift=$(q -c "SELECT count(*) FROM moe_stress.expected e JOIN moe_stress.versions v USING (model_id)
               JOIN moe_stress.pairs p ON p.id = e.pair
              WHERE CASE WHEN v.dropped THEN false   -- (keeps moe_predict above the join)
                         ELSE moe_predict(p.drug_vec, p.target_vec, e.model_id) <> e.prediction END")
errors=$(( ${failed:-0} + aborted ))

echo "concurrency: $clients clients for ${seconds} s while retraining and re-pointing '$name'"
echo "  transactions $processed (logged $logged), $tps tps, latency $latency"
echo "  errors $errors (failed $failed, aborted clients $aborted, pgbench exit $bench_rc)"
echo "  model versions: $versions trained, $repoints re-points, $served served"
echo "  answers matching no committed version: $unmatched; from a superseded version: $stale"

ok=1
fail() { echo "not ok - $*" >&2; ok=0; }
[ "$bench_rc" = 0 ] || fail "pgbench exited with $bench_rc"
[ -n "$processed" ] && [ "$processed" -gt 0 ] || fail "pgbench processed no transaction"
[ "${failed:-x}" = 0 ] || fail "pgbench reports ${failed:-no count of} failed transactions"
[ "$aborted" = 0 ] || fail "$aborted pgbench clients aborted"
[ "$retrain_rc" = 0 ] || fail "the retraining session failed"
[ "$logged" = "$processed" ] || fail "$processed transactions but $logged answers logged"
[ "$unmatched" = 0 ] || fail "$unmatched answers equal no committed version's prediction"
[ "$stale" = 0 ] || fail "$stale answers came from a version already superseded when the transaction began"
[ "$drift" = 0 ] || fail "$drift recorded predictions differ from moe_predict by id now"
[ "$repoints" -ge 1 ] || fail "the name was never re-pointed"
[ "$served" -ge 2 ] || fail "only $served version(s) served"
if [ "$ok" = 0 ]; then
    cat "$work/pgbench.out" >&2
    exit 1
fi
echo "ok - $processed answers, 0 errors, each from one of $versions committed versions ($served served, $repoints re-points)"
