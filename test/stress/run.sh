#!/usr/bin/env bash
# The longer reliability run (docs/reliability.md): builds and installs
# moe_pg, starts a throwaway cluster with moe_pg preloaded, then runs
#   test/stress/concurrency.sh      16 clients for 60 s calling moe_predict by
#                                   name while another session retrains and
#                                   re-points it
#   test/shell/cancel_and_crash.sh  pg_cancel_backend during training; kill -9
#                                   of a training and of a scoring backend
# and stops the cluster.  About two minutes.
#
#   test/stress/run.sh
#     MOE_STRESS_SECONDS=600 MOE_STRESS_CLIENTS=32 test/stress/run.sh   longer, wider
#     MOE_SKIP_BUILD=1        use the installed build
#     MOE_KEEP_CLUSTER=1      keep the cluster's directory and log afterwards
source "$(dirname "$0")/../../scripts/lib.sh"
cd "$MOE_ROOT"

if [ "${MOE_SKIP_BUILD:-0}" != 1 ]; then
    moe_install_deps
    moe_build_install
fi

trap moe_cluster_stop EXIT
moe_cluster_start "shared_preload_libraries = 'moe_pg'" "moe_pg.shared_cache_mb = 64" \
    "max_connections = 100" "restart_after_crash = on"

createdb moe_stress
psql_q -d moe_stress -c "CREATE EXTENSION moe_pg"

log "concurrency: ${MOE_STRESS_CLIENTS:-16} clients for ${MOE_STRESS_SECONDS:-60} s while the name is re-pointed"
bash test/stress/concurrency.sh moe_stress

log "cancellation and crashes"
bash test/shell/cancel_and_crash.sh moe_stress

log "reliability run passed"
