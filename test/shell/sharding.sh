#!/usr/bin/env bash
# Sharding with postgres_fdw (docs/scale-out.md): the test database is the
# coordinator; two throwaway clusters on loopback are the shards.  A model
# trained on the coordinator reaches each shard through moe_export_model /
# moe_import_model under the same id; pairs are hash-partitioned by drug_id
# into foreign tables on the shards; EXPLAIN VERBOSE shows what postgres_fdw
# ships and the results equal local scoring bit for bit.
#
# What PostgreSQL 15 ships, as asserted below:
#   UPDATE ... SET score = moe_predict(v, w, <id>)   a direct modify per shard
#   ORDER BY moe_predict(...) DESC LIMIT n           ORDER BY per shard, merged by
#                                                    Merge Append; the LIMIT stays local
#   the same on one foreign table, moe_predict COST 1  ORDER BY and LIMIT shipped
#   one aggregate per shard (UNION ALL)              shipped, shards run concurrently
#   moe_predict(..., 'name') (STABLE)                never shipped
#   a server without OPTIONS (extensions 'moe_pg')   nothing of moe_pg shipped
# Usage: sharding.sh DB
set -euo pipefail
db=$1
(
    source "$(dirname "$0")/../../scripts/lib.sh"
    coord_host=$PGHOST coord_port=$PGPORT
    shard_dirs=() shard_ports=() shard_hosts=()
    work=
    cleanup() {
        psql -X -q -d "$db" -h "$coord_host" -p "$coord_port" -c "SET client_min_messages = warning" \
            -c "DROP SCHEMA IF EXISTS shd CASCADE" -c "DROP SERVER IF EXISTS shd_s0, shd_s1, shd_plain CASCADE" \
            -c "SELECT moe_drop_dataset('shd_src')" -c "DROP TABLE IF EXISTS shd_src" >/dev/null 2>&1 || true
        for d in "${shard_dirs[@]}"; do MOE_CLUSTER_DIR=$d; moe_cluster_stop; done
        [ -z "$work" ] || rm -rf "$work"
    }
    trap cleanup EXIT
    for i in 0 1; do
        moe_cluster_start "shared_preload_libraries = 'moe_pg'" 2>/dev/null
        shard_dirs+=("$MOE_CLUSTER_DIR") shard_ports+=("$PGPORT") shard_hosts+=("$PGHOST")
    done
    export PGHOST=$coord_host PGPORT=$coord_port
    q() { PGOPTIONS="-c client_min_messages=warning" psql -X -q -At -v ON_ERROR_STOP=1 -d "$db" "$@"; }
    # the plan with each line's indentation and "->  " stripped
    explain() { q -c "EXPLAIN (VERBOSE, COSTS OFF) $1" | sed 's/^ *//; s/^->  //'; }
    shard() { local i=$1; shift; PGOPTIONS="-c client_min_messages=warning" \
        psql -X -q -At -v ON_ERROR_STOP=1 -h "${shard_hosts[$i]}" -p "${shard_ports[$i]}" -d postgres "$@"; }

    # --- a small model on the coordinator
    small="drug_hidden => '{32}', protein_hidden => '{32}', gate_hidden => '{32}', expert_hidden => '{32}'"
    q -c "CREATE TABLE shd_src AS SELECT * FROM moe_synthetic_dta(40, 30, 3, seed => 11)" \
      -c "SELECT moe_create_dataset('shd_src', 'shd_src', protein_column => 'target_vec', replace => true)" \
      -c "SET client_min_messages = error" \
      -c "CALL moe_train('shd_src', model_name => 'shd_model', epochs => 1, seed => 3, $small)" >/dev/null
    id=$(q -c "SELECT model_id FROM moe.deployments WHERE name = 'shd_model'")
    md5=$(q -c "SELECT params_md5 FROM moe_model_info($id::bigint)")
    total=$(q -c "SELECT count(*) FROM shd_src")

    # --- the checkpoint reaches every shard through export / import.  The
    # pushed-down expression names the model by id, and the coordinator
    # evaluates the same expression for the rows it reads back, so the id
    # must mean the same model everywhere: a fresh shard's identity is set
    # to the coordinator's id before the import, and the import must return it.
    work=$(mktemp -d /tmp/moe_pg_sharding.XXXXXX)
    chmod 755 "$work"
    [ "$(id -u)" -ne 0 ] || chown postgres: "$work"
    q -c "SELECT moe_export_model($id::bigint, '$work/shd_model.ckpt')" >/dev/null
    for i in 0 1; do
        got=$(shard "$i" -c "CREATE EXTENSION moe_pg" \
            -c "SELECT setval(pg_get_serial_sequence('moe.models', 'id'), $id, false)" \
            -c "SELECT moe_import_model('$work/shd_model.ckpt', 'shd_model')" | tail -n 1)
        [ "$got" = "$id" ] || { echo "shard $i imported the model as $got, the coordinator has $id" >&2; exit 1; }
        got=$(shard "$i" -c "SELECT params_md5 FROM moe_model_info($id::bigint)")
        [ "$got" = "$md5" ] || { echo "shard $i: model $id has weights $got, the coordinator's are $md5" >&2; exit 1; }
        shard "$i" -c "CREATE TABLE pairs_part (drug_id integer, target_id integer,
                                                drug_vec real[], target_vec real[], score real)"
    done
    echo "ok - the checkpoint reached both shards by export/import as model $id (weights $md5)"

    # --- pairs partitioned by hash of drug_id over the two shards
    q -c "CREATE EXTENSION IF NOT EXISTS postgres_fdw" -c "CREATE SCHEMA shd"
    for i in 0 1; do
        q -c "CREATE SERVER shd_s$i FOREIGN DATA WRAPPER postgres_fdw
                OPTIONS (host '127.0.0.1', port '${shard_ports[$i]}', dbname 'postgres',
                         extensions 'moe_pg', async_capable 'true')" \
          -c "CREATE USER MAPPING FOR CURRENT_USER SERVER shd_s$i OPTIONS (user 'postgres')"
    done
    q -c "CREATE TABLE shd.pairs (drug_id integer, target_id integer, drug_vec real[], target_vec real[], score real)
            PARTITION BY HASH (drug_id)" \
      -c "CREATE FOREIGN TABLE shd.pairs_0 PARTITION OF shd.pairs FOR VALUES WITH (MODULUS 2, REMAINDER 0)
            SERVER shd_s0 OPTIONS (schema_name 'public', table_name 'pairs_part')" \
      -c "CREATE FOREIGN TABLE shd.pairs_1 PARTITION OF shd.pairs FOR VALUES WITH (MODULUS 2, REMAINDER 1)
            SERVER shd_s1 OPTIONS (schema_name 'public', table_name 'pairs_part')" \
      -c "INSERT INTO shd.pairs (drug_id, target_id, drug_vec, target_vec)
            SELECT drug_id, target_id, drug_vec, target_vec FROM shd_src"
    n0=$(shard 0 -c "SELECT count(*) FROM pairs_part")
    n1=$(shard 1 -c "SELECT count(*) FROM pairs_part")
    [ "$n0" -gt 0 ] && [ "$n1" -gt 0 ] && [ $((n0 + n1)) = "$total" ] \
        || { echo "pairs over the shards: $n0 + $n1, expected $total in all, some on each" >&2; exit 1; }
    echo "ok - $total pairs partitioned by hash of drug_id: $n0 on shard 0, $n1 on shard 1"

    # --- (a) scoring written back: one direct UPDATE per shard, nothing fetched
    update="UPDATE shd.pairs SET score = moe_predict(drug_vec, target_vec, $id::bigint)"
    plan=$(explain "$update")
    remote="Remote SQL: UPDATE public.pairs_part SET score = public.moe_predict(drug_vec, target_vec, $id::bigint)"
    n=$(echo "$plan" | grep -c "^Foreign Update on shd.pairs_[01] pairs_[12]$" || true)
    m=$(echo "$plan" | grep -Fxc "$remote" || true)
    if [ "$n" != 4 ] || [ "$m" != 2 ] || echo "$plan" | grep -q "Foreign Scan"; then
        echo "expected a direct Foreign Update on each shard with moe_predict in the Remote SQL:"; echo "$plan"; exit 1
    fi >&2
    got=$(q -c "$update RETURNING 1" | wc -l)
    [ "$got" = "$total" ] || { echo "the UPDATE touched $got rows, expected $total" >&2; exit 1; }
    for i in 0 1; do
        left=$(shard "$i" -c "SELECT count(*) FROM pairs_part WHERE score IS NULL")
        [ "$left" = 0 ] || { echo "shard $i has $left unscored rows" >&2; exit 1; }
    done
    # the shards' scores against the coordinator's own scoring of its copy, bit for bit
    same=$(q -c "SELECT count(*) FROM shd.pairs p JOIN shd_src s USING (drug_id, target_id)
                 WHERE float4send(p.score) = float4send(moe_predict(s.drug_vec, s.target_vec, $id::bigint))")
    [ "$same" = "$total" ] || { echo "only $same of $total shard scores equal local scoring bit for bit" >&2; exit 1; }
    echo "ok - UPDATE ... SET score = moe_predict(..., $id) runs on the shards (direct modify); $same/$total scores equal local scoring bit for bit"

    # --- (b) top hits: ORDER BY moe_predict(...) is shipped to each shard and the
    # coordinator merges the sorted streams (Merge Append) under a local Limit;
    # PostgreSQL 15 does not ship the LIMIT into the partitions
    top="SELECT drug_id, target_id, moe_predict(drug_vec, target_vec, $id::bigint) AS s FROM shd.pairs ORDER BY s DESC LIMIT 10"
    plan=$(explain "$top")
    remote="Remote SQL: SELECT drug_id, target_id, drug_vec, target_vec FROM public.pairs_part ORDER BY public.moe_predict(drug_vec, target_vec, $id::bigint) DESC NULLS FIRST"
    shape=$(echo "$plan" | grep -oE "^(Limit|Merge Append|Foreign Scan on shd.pairs_[01])" | paste -sd,)
    m=$(echo "$plan" | grep -Fxc "$remote" || true)
    if [ "$shape" != "Limit,Merge Append,Foreign Scan on shd.pairs_0,Foreign Scan on shd.pairs_1" ] || [ "$m" != 2 ]; then
        echo "expected Limit / Merge Append / a Foreign Scan per shard ordered remotely by moe_predict:"; echo "$plan"; exit 1
    fi >&2
    fmt="drug_id || ' ' || target_id || ' ' || encode(float4send(s), 'hex')"
    sharded=$(q -c "SELECT $fmt FROM ($top) t")
    local_top=$(q -c "SELECT $fmt FROM (SELECT drug_id, target_id, moe_predict(drug_vec, target_vec, $id::bigint) AS s
                                          FROM shd_src ORDER BY s DESC LIMIT 10) t")
    by_score=$(q -c "SELECT $fmt FROM (SELECT drug_id, target_id, score AS s FROM shd.pairs ORDER BY score DESC LIMIT 10) t")
    [ "$sharded" = "$local_top" ] && [ "$by_score" = "$local_top" ] \
        || { echo "top 10: sharded, by stored score and local differ:"; echo "$sharded"; echo "--"; echo "$by_score"; echo "--"; echo "$local_top"; exit 1; } >&2
    echo "ok - ORDER BY moe_predict(...) DESC LIMIT 10: ORDER BY shipped to each shard, Merge Append + Limit on the coordinator; the same 10 as local, bit for bit"

    # --- (b') the LIMIT shipped as well: on one foreign table, once a
    # dispatch-only coordinator lowers moe_predict's planner cost
    # (docs/scale-out.md, "Costs"); here inside a transaction that rolls back
    top0="SELECT drug_id, target_id, moe_predict(drug_vec, target_vec, $id::bigint) AS s FROM shd.pairs_0 ORDER BY s DESC LIMIT 10"
    low_cost="ALTER FUNCTION moe_predict(real[], real[], bigint) COST 1"
    plan=$(q -c "BEGIN" -c "$low_cost" -c "EXPLAIN (VERBOSE, COSTS OFF) $top0" -c "ROLLBACK" | sed 's/^ *//; s/^->  //')
    remote="Remote SQL: SELECT drug_id, target_id, drug_vec, target_vec FROM public.pairs_part ORDER BY public.moe_predict(drug_vec, target_vec, $id::bigint) DESC NULLS FIRST LIMIT 10::bigint"
    echo "$plan" | grep -Fxq "$remote" && ! echo "$plan" | grep -q "^Limit" \
        || { echo "expected ORDER BY ... LIMIT 10 shipped to shard 0 with COST 1:"; echo "$plan"; exit 1; } >&2
    shipped=$(q -c "BEGIN" -c "$low_cost" -c "SELECT $fmt FROM ($top0) t" -c "ROLLBACK")
    kept_local=$(q -c "SELECT $fmt FROM ($top0) t")
    [ -n "$shipped" ] && [ "$shipped" = "$kept_local" ] \
        || { echo "shard 0's top 10 with the LIMIT shipped and kept local differ:"; echo "$shipped"; echo "--"; echo "$kept_local"; exit 1; } >&2
    echo "ok - with moe_predict at COST 1 on the coordinator, ORDER BY moe_predict(...) DESC LIMIT 10 on a foreign table ships whole; the same 10 as with the local Limit"

    # --- (c) one aggregate per shard: shipped whole, the shards work concurrently
    f="count(*) FILTER (WHERE moe_predict(drug_vec, target_vec, $id::bigint) > 6)"
    agg="SELECT sum(n) FROM (SELECT $f AS n FROM shd.pairs_0 UNION ALL SELECT $f FROM shd.pairs_1) t"
    plan=$(explain "$agg")
    m=$(echo "$plan" | grep -Fxc "Remote SQL: SELECT count(*) FILTER (WHERE (public.moe_predict(drug_vec, target_vec, $id::bigint) > 6::double precision)) FROM public.pairs_part" || true)
    a=$(echo "$plan" | grep -c "^Async Foreign Scan$" || true)
    [ "$m" = 2 ] && [ "$a" = 2 ] || { echo "expected two async foreign scans with the aggregate shipped:"; echo "$plan"; exit 1; } >&2
    got=$(q -c "$agg")
    want=$(q -c "SELECT $f FROM shd_src")
    [ "$got" = "$want" ] || { echo "pairs scoring above 6: $got over the shards, $want locally" >&2; exit 1; }
    echo "ok - one aggregate per shard (UNION ALL) is shipped whole and run concurrently (Async Foreign Scan); $got of $total pairs score above 6 there and locally"

    # --- what is not shipped: the by-name (STABLE) variant, and moe_pg's
    # functions on a server that does not list the extension
    plan=$(explain "UPDATE shd.pairs SET score = moe_predict(drug_vec, target_vec, 'shd_model')")
    echo "$plan" | grep -q "Remote SQL: UPDATE public.pairs_part SET score = \$2 WHERE ctid = \$1" \
        || { echo "moe_predict by name should not be shipped:"; echo "$plan"; exit 1; } >&2
    q -c "CREATE SERVER shd_plain FOREIGN DATA WRAPPER postgres_fdw
            OPTIONS (host '127.0.0.1', port '${shard_ports[0]}', dbname 'postgres')" \
      -c "CREATE USER MAPPING FOR CURRENT_USER SERVER shd_plain OPTIONS (user 'postgres')" \
      -c "CREATE FOREIGN TABLE shd.pairs_plain (drug_id integer, target_id integer, drug_vec real[],
            target_vec real[], score real) SERVER shd_plain OPTIONS (schema_name 'public', table_name 'pairs_part')"
    plan=$(explain "UPDATE shd.pairs_plain SET score = moe_predict(drug_vec, target_vec, $id::bigint)")
    echo "$plan" | grep -q "Remote SQL: UPDATE public.pairs_part SET score = \$2 WHERE ctid = \$1" \
        || { echo "without extensions 'moe_pg' moe_predict should not be shipped:"; echo "$plan"; exit 1; } >&2
    echo "ok - not shipped: moe_predict by name (STABLE), and any moe_pg function on a server without extensions 'moe_pg'"
)
