#!/usr/bin/env bash
# A short run of test/stress/concurrency.sh: 8 clients for 10 s call
# moe_predict by name while another session retrains and re-points it; no
# errors, and every answer is one committed version's.  (The full 60 s, 16
# client run is test/stress/run.sh; docs/reliability.md.)  Usage: concurrency_short.sh DB
set -euo pipefail
MOE_STRESS_SECONDS=${MOE_STRESS_SHORT_SECONDS:-10} MOE_STRESS_CLIENTS=8 \
    bash "$(dirname "$0")/../stress/concurrency.sh" "$1"
