#!/usr/bin/env bash
# moe_pg.device seen from a client (docs/cuda.md): SHOW gives auto; SET to
# an unknown value lists the valid ones; device => 'cuda' without a usable
# GPU is a clear error (SQLSTATE 0A000) that leaves no model; auto trains on
# the CPU and says so in one NOTICE per session; cpu trains without a word
# about devices.  On a machine with a GPU, cuda and auto must train there
# instead (the GPU half of this script then runs).  When the CUDA backend
# was built (nvcc present), its parity program runs too (it skips cleanly
# without a device).  Usage: device.sh DB
set -euo pipefail
db=$1
root=$(cd "$(dirname "$0")/../.." && pwd)
q() { psql -X -q -At -v ON_ERROR_STOP=1 -d "$db" "$@"; }
# one session, NOTICEs included, SQLSTATEs in error messages
session() { psql -X -q -At -v ON_ERROR_STOP=1 -v VERBOSITY=verbose -d "$db" -c "SET client_min_messages = notice" "$@" 2>&1; }
fail() { echo "device.sh: $*" >&2; exit 1; }

q -c "SET client_min_messages = warning" -c "
CREATE TABLE IF NOT EXISTS dev_sh_syn AS SELECT * FROM moe_synthetic_dta(30, 20, 4, seed => 8);
SELECT moe_create_dataset('dev_sh_syn', 'dev_sh_syn', protein_column => 'target_vec', replace => true);
SELECT moe_drop_model(id) FROM moe.models WHERE name LIKE 'dev\_sh\_%';" >/dev/null
tiny="drug_hidden => '{8}', protein_hidden => '{8}', gate_hidden => '{8}', expert_hidden => '{8}', batch_size => 64, epochs => 1, deploy => 'never'"
train() { echo "CALL moe_train('dev_sh_syn', model_name => '$1', $tiny$2);"; }
models() { q -c "SELECT count(*) FROM moe.models WHERE name = '$1'"; }

# ---- the setting
[ "$(q -c "LOAD 'moe_pg'" -c "SHOW moe_pg.device")" = auto ] || fail "moe_pg.device does not default to auto"
out=$(session -c "SET moe_pg.device = 'gpu'") && fail "SET moe_pg.device = 'gpu' was accepted"
echo "$out" | grep -q 'invalid value for parameter "moe_pg.device": "gpu"' || fail "unexpected error: $out"
echo "$out" | grep -q 'Available values: auto, cpu, cuda' || fail "the error does not list the valid values: $out"
out=$(session -c "$(train dev_sh_bad ", device => 'tpu'")") && fail "device => 'tpu' was accepted"
echo "$out" | grep -q 'device must be one of auto, cpu, cuda, not "tpu"' || fail "unexpected error: $out"

# ---- cuda: trains on a GPU, or fails saying why
gpu=0
if out=$(session -c "$(train dev_sh_cuda ", device => 'cuda'")"); then
    gpu=1
    echo "$out" | grep -q 'NOTICE:  00000: training on the GPU (' || fail "device cuda trained without saying where: $out"
    [ "$(models dev_sh_cuda)" = 1 ] || fail "the GPU-trained model was not stored"
else
    echo "$out" | grep -Eq 'ERROR:  0A000: device cuda: (moe_pg was built without CUDA support|no CUDA device)' \
        || fail "device cuda without a GPU gave an unclear error: $out"
    echo "$out" | grep -q "HINT:  Use device 'cpu'" || fail "no hint with the error: $out"
    [ "$(models dev_sh_cuda)" = 0 ] || fail "a failed cuda run left a model"
    [ "$(q -c "SELECT status FROM moe.training_runs WHERE model_name = 'dev_sh_cuda' ORDER BY id DESC LIMIT 1")" = failed ] \
        || fail "the failed cuda run is not marked failed"
    # the setting does the same as the option, and the option wins over it
    out=$(session -c "SET moe_pg.device = cuda" -c "$(train dev_sh_guc "")") && fail "moe_pg.device = cuda trained without a GPU"
    echo "$out" | grep -q 'ERROR:  0A000: device cuda' || fail "moe_pg.device = cuda: unexpected error: $out"
    session -c "SET moe_pg.device = cuda" -c "$(train dev_sh_override ", device => 'cpu'")" >/dev/null \
        || fail "device => 'cpu' did not override moe_pg.device = cuda"
fi

# ---- auto: the GPU when there is one, else the CPU with one NOTICE per session
out=$(session -c "$(train dev_sh_auto1 "")" -c "$(train dev_sh_auto2 "")") || fail "auto did not train: $out"
[ "$(models dev_sh_auto1)$(models dev_sh_auto2)" = 11 ] || fail "auto did not store its models"
if [ $gpu = 1 ]; then
    [ "$(echo "$out" | grep -c 'training on the GPU (')" = 2 ] || fail "auto did not train on the GPU: $out"
else
    n=$(echo "$out" | grep -c 'NOTICE:  00000: device auto: no usable GPU (.*); training on the CPU' || true)
    [ "$n" = 1 ] || fail "expected one fallback NOTICE in the session, saw $n: $out"
fi

# ---- cpu: silent about devices
out=$(session -c "$(train dev_sh_cpu ", device => 'cpu'")") || fail "device cpu did not train: $out"
if echo "$out" | grep -Eiq 'GPU|CUDA|device'; then fail "device cpu talked about devices: $out"; fi
[ "$(models dev_sh_cpu)" = 1 ] || fail "device cpu stored no model"

# ---- the engine's CPU/GPU parity program, when the CUDA backend was built
parity=""
if [ -f "$root/cuda/moe_pg_cuda.so" ]; then
    parity=$(make -s -C "$root" cuda-parity 2>&1) || { echo "$parity" >&2; fail "make cuda-parity failed"; }
    parity=" ($(echo "$parity" | grep -E '^(SKIP|parity):' | tail -1))"
fi

q -c "SELECT moe_drop_model(id) FROM moe.models WHERE name LIKE 'dev\_sh\_%'" >/dev/null
if [ $gpu = 1 ]; then where="trained on the GPU"; else where="no GPU: cuda refused with 0A000, auto fell back once"; fi
echo "ok - moe_pg.device and device => ... ($where)$parity"
