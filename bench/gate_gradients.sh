#!/usr/bin/env bash
# bench/gate_gradients.sh — why a router collapses (docs/training.md, "Why
# these defaults"): builds bench/gate_gradients.c against the engine and runs
# it with the balancing of 0.1.0 (entropy 0.001) and with today's default.
#
#   bash bench/gate_gradients.sh > bench/results/gate_gradients.txt    (about a minute)
#
# Engine only: no PostgreSQL, no data files (the synthetic planted-cluster
# set of scripts/demo.sh is generated in memory).
set -euo pipefail
cd "$(dirname "$0")/.."
bin=$(mktemp -d)/gate_gradients
trap 'rm -rf "$(dirname "$bin")"' EXIT
cc -O2 -Isrc/engine bench/gate_gradients.c src/engine/[a-z]*.c -lopenblas -lm -ldl -lpthread -o "$bin"
echo "# bench/gate_gradients.sh at commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
echo "## balancing of 0.1.0: entropy 0.001"
OPENBLAS_NUM_THREADS=1 "$bin" 6 entropy:0.001
echo "## default balancing: importance 0.1, aux_free 0.01, sinkhorn 0.1"
OPENBLAS_NUM_THREADS=1 "$bin" 6
