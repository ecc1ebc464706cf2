# scripts/lib.sh — shared by demo.sh and test.sh: dependencies, build, and a
# throwaway PostgreSQL cluster on a free port.  Source it; do not run it.

set -euo pipefail

MOE_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PG_BIN=${PG_BIN:-/usr/lib/postgresql/15/bin}
MOE_PACKAGES="postgresql-15 postgresql-server-dev-15 postgresql-15-pgtap libtap-parser-sourcehandler-pgtap-perl libopenblas-dev build-essential valgrind clang libclang-rt-14-dev"

log() { printf '\n== %s\n' "$*" >&2; }

# Install what is missing (needs root; a non-root user must have it already).
moe_install_deps() {
    local missing=()
    for p in $MOE_PACKAGES; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    if [ "$(id -u)" -ne 0 ]; then
        echo "missing packages: ${missing[*]} (run as root, or install them)" >&2
        exit 1
    fi
    log "installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q
    apt-get install -y -q "${missing[@]}"
}

# Build and install the extension into the server's directories.
moe_build_install() {
    log "building moe_pg"
    make -C "$MOE_ROOT" -s -j"$(nproc)"
    if [ "$(id -u)" -eq 0 ]; then
        make -C "$MOE_ROOT" -s install
    else
        sudo make -C "$MOE_ROOT" -s install
    fi
}

# Run a command as the cluster's owner: postgres when we are root.
as_owner() {
    if [ "$(id -u)" -eq 0 ]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# Start a cluster in a fresh temporary directory; sets PGHOST, PGPORT,
# PGUSER, PGDATABASE and MOE_CLUSTER_DIR.  Extra arguments are postgresql.conf lines.
moe_cluster_start() {
    MOE_CLUSTER_DIR=$(mktemp -d /tmp/moe_pg_cluster.XXXXXX)
    chmod 755 "$MOE_CLUSTER_DIR"
    [ "$(id -u)" -eq 0 ] && chown postgres: "$MOE_CLUSTER_DIR"
    local port=$((54320 + RANDOM % 1000))
    while port_in_use "$port"; do port=$((port + 1)); done
    log "starting a throwaway cluster in $MOE_CLUSTER_DIR on port $port"
    as_owner "$PG_BIN/initdb" -D "$MOE_CLUSTER_DIR/data" -U postgres -A trust --no-sync >/dev/null
    {
        echo "port = $port"
        echo "listen_addresses = '127.0.0.1'"
        echo "unix_socket_directories = '$MOE_CLUSTER_DIR'"
        echo "fsync = off"
        echo "max_worker_processes = 16"
        for line in "$@"; do echo "$line"; done
    } >>"$MOE_CLUSTER_DIR/data/postgresql.conf"
    as_owner "$PG_BIN/pg_ctl" -D "$MOE_CLUSTER_DIR/data" -l "$MOE_CLUSTER_DIR/server.log" -w start >/dev/null
    export PGHOST=$MOE_CLUSTER_DIR PGPORT=$port PGUSER=postgres PGDATABASE=postgres
}

# For the benchmarks on the Davis CSVs: DATA is MOE_DATA_DIR (default
# ../shared/data); without the CSVs, SKIP and exit 0.
moe_bench_davis_data() {
    DATA=${MOE_DATA_DIR:-$(cd "$MOE_ROOT/.." && pwd)/shared/data}
    if [ ! -f "$DATA/davis/affinities.csv" ]; then
        echo "SKIP: Davis CSVs not found under $DATA (set MOE_DATA_DIR)"
        exit 0
    fi
}

# A benchmark's cluster: build and install (unless MOE_SKIP_BUILD=1), a
# throwaway cluster with moe_pg preloaded and the given settings, stopped
# on exit, and database $1 as PGDATABASE.
moe_bench_cluster() {
    local db=$1
    shift
    [ "${MOE_SKIP_BUILD:-0}" = 1 ] || moe_build_install >/dev/null
    trap moe_cluster_stop EXIT
    moe_cluster_start "shared_preload_libraries = 'moe_pg'" "$@" 2>/dev/null
    export PGDATABASE=$db
    createdb "$db"
}

# The lines of a cluster's server log that say a server process crashed,
# less the kill -9s a test announced (one pid per line in expected_kills).
moe_cluster_crashes() {
    local dir=$1 line pid
    [ -f "$dir/server.log" ] || return 0
    { grep -E 'terminated by signal|server process .* was terminated' "$dir/server.log" || true; } | while IFS= read -r line; do
        pid=$(sed -nE 's/.*\(PID ([0-9]+)\).*/\1/p' <<<"$line")
        if [ -n "$pid" ] && [ -f "$dir/expected_kills" ] && grep -qx "$pid" "$dir/expected_kills" \
            && grep -q 'terminated by signal 9' <<<"$line"; then
            continue
        fi
        echo "$line"
    done
    return 0
}

# Stop the cluster.  A crash in its log is reported on stderr and in
# $MOE_CRASH_LOG (scripts/test.sh fails on it), and the cluster is kept.
moe_cluster_stop() {
    [ -n "${MOE_CLUSTER_DIR:-}" ] || return 0
    as_owner "$PG_BIN/pg_ctl" -D "$MOE_CLUSTER_DIR/data" -m immediate stop >/dev/null 2>&1 || true
    local crashes
    crashes=$(moe_cluster_crashes "$MOE_CLUSTER_DIR")
    if [ -n "$crashes" ]; then
        echo "server crash in $MOE_CLUSTER_DIR/server.log:" >&2
        echo "$crashes" >&2
        [ -z "${MOE_CRASH_LOG:-}" ] || { echo "$MOE_CLUSTER_DIR:"; echo "$crashes"; } >>"$MOE_CRASH_LOG"
        MOE_KEEP_CLUSTER=1
    fi
    if [ "${MOE_KEEP_CLUSTER:-0}" = 1 ]; then
        echo "cluster kept in $MOE_CLUSTER_DIR (log: $MOE_CLUSTER_DIR/server.log)" >&2
    else
        rm -rf "$MOE_CLUSTER_DIR"
    fi
    MOE_CLUSTER_DIR=
}

psql_q() { psql -X -v ON_ERROR_STOP=1 -q "$@"; }
