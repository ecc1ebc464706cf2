#!/usr/bin/env bash
# Attacks and limits that need several sessions, server files or a second
# database (docs/security.md, docs/reliability.md).  The single-session
# attacks are in attacks.sql.
#
#   1. A hostile search_path in one session (shadowing =, functions and
#      tables) changes nothing that any other session is served.
#   2. A model dropped while another session loads it is not servable once
#      the drop commits; a rolled-back drop changes nothing.
#   3. A checkpoint row that rolls back is never served to anyone, also not
#      under its id once a later model takes that id.
#   4. Entity parts: the smallest cache (moe_pg.entity_cache_mb = 1) with a
#      512-wide model and hundreds of entities, and the default cache with
#      100,000 distinct drugs, per row, routed, by moe_score, in parallel
#      workers, by window partition and through shared parts, give the same bits as a cache that
#      holds everything; the smallest model cache (moe_pg.local_cache_models
#      = 1) with two models in one statement.
#   5. pg_dump and pg_restore of a database with models, deployments,
#      history and datasets into a fresh database: every prediction equal.
#   6. A checkpoint whose metadata is not valid UTF-8 is refused on import.
#   7. moe_load_dta(..., replace => true) drops only what it made; CRLF CSVs load.
#
# Usage: sessions.sh DB (a superuser on the server of PGHOST/PGPORT, which
# preloads moe_pg).
set -euo pipefail
db=$1
work=$(mktemp -d /tmp/moe_sec.XXXXXX)
chmod 777 "$work"   # the server writes exported checkpoints here
trap 'rm -rf "$work"; dropdb --if-exists moe_sec_restored >/dev/null 2>&1 || true; dropdb --if-exists moe_sec_dumped >/dev/null 2>&1 || true' EXIT

q() { PGOPTIONS="-c client_min_messages=error ${EXTRA_PGOPTIONS:-}" psql -X -q -At -v ON_ERROR_STOP=1 -d "${QDB:-$db}" "$@"; }
die() { echo "not ok - $*" >&2; exit 1; }
forget="DO \$\$ BEGIN PERFORM moe_cache_clear('connection'); END \$\$"

small="drug_hidden => '{16}', protein_hidden => '{16}', gate_hidden => '{16}', expert_hidden => '{16}'"
q >/dev/null <<SQL
SET client_min_messages = error;
DROP TABLE IF EXISTS ss_pairs CASCADE;
DROP SCHEMA IF EXISTS ss_evil CASCADE;
DELETE FROM moe.deployments WHERE name LIKE 'ss\_%';
DELETE FROM moe.models WHERE name LIKE 'ss\_%';
DROP ROLE IF EXISTS moe_ss_reader;
CREATE ROLE moe_ss_reader LOGIN IN ROLE moe_reader;
CREATE TABLE ss_pairs AS SELECT * FROM moe_synthetic_dta(30, 20, 2, seed => 21);
GRANT SELECT ON ss_pairs TO moe_ss_reader;
SELECT moe_create_dataset('ss_pairs', 'ss_pairs', protein_column => 'target_vec',
                          drug_key_column => 'drug_id', protein_key_column => 'target_id', replace => true);
CALL moe_train('ss_pairs', model_name => 'ss_a', epochs => 1, batch_size => 64, seed => 1, $small);
CALL moe_train('ss_pairs', model_name => 'ss_b', epochs => 1, batch_size => 64, seed => 2, $small);
SQL
a=$(q -c "SELECT model_id FROM moe.deployments WHERE name = 'ss_a'")
b=$(q -c "SELECT model_id FROM moe.deployments WHERE name = 'ss_b'")
pair="(SELECT drug_vec FROM ss_pairs ORDER BY drug_id, target_id LIMIT 1), (SELECT target_vec FROM ss_pairs ORDER BY drug_id, target_id LIMIT 1)"
pa=$(q -c "SELECT moe_predict($pair, $a::bigint)")
pb=$(q -c "SELECT moe_predict($pair, $b::bigint)")
[ "$pa" != "$pb" ] || die "the two models should answer differently"
all="SELECT md5(string_agg(moe_predict(drug_vec, target_vec, 'ss_a')::text, ',' ORDER BY drug_id, target_id)) FROM ss_pairs"
all_a=$(q -c "$all")

# --- 1. a hostile search_path poisons nothing for other sessions -----------
q -c "SELECT moe_cache_clear('server')" >/dev/null
q >/dev/null <<SQL
CREATE SCHEMA ss_evil;
GRANT USAGE, CREATE ON SCHEMA ss_evil TO moe_ss_reader;
SQL
out=$(PGUSER=moe_ss_reader q <<SQL 2>&1 || true
CREATE FUNCTION ss_evil.eq(bigint, bigint) RETURNS boolean LANGUAGE sql IMMUTABLE AS 'SELECT \$1 <> \$2';
CREATE OPERATOR ss_evil.= (LEFTARG = bigint, RIGHTARG = bigint, FUNCTION = ss_evil.eq);
CREATE FUNCTION ss_evil.teq(text, text) RETURNS boolean LANGUAGE sql IMMUTABLE AS 'SELECT \$1 <> \$2';
CREATE OPERATOR ss_evil.= (LEFTARG = text, RIGHTARG = text, FUNCTION = ss_evil.teq);
CREATE FUNCTION ss_evil.xeq(xid, xid) RETURNS boolean LANGUAGE sql IMMUTABLE AS 'SELECT true';
CREATE OPERATOR ss_evil.= (LEFTARG = xid, RIGHTARG = xid, FUNCTION = ss_evil.xeq);
CREATE TABLE ss_evil.models (id bigint, checkpoint bytea, xmin_ integer);
CREATE TEMP TABLE deployments (name text, model_id bigint);
SET search_path = ss_evil, pg_catalog, public;
SELECT moe_predict($pair, $a::bigint);
SELECT moe_predict($pair, 'ss_b');
SELECT count(moe_predict(drug_vec, target_vec, 'ss_a')) FROM public.ss_pairs;
SQL
)
echo "$out" | grep -q "^$pa$" || die "under a hostile search_path moe_predict by id answered: $out (expected $pa)"
echo "$out" | grep -q "^$pb$" || die "under a hostile search_path moe_predict by name answered: $out (expected $pb)"
[ "$(q -c "SELECT moe_predict($pair, $a::bigint)")" = "$pa" ] || die "another session was served another model by id"
[ "$(q -c "SELECT moe_predict($pair, 'ss_b')")" = "$pb" ] || die "another session was served another model by name"
[ "$(q -c "$all")" = "$all_a" ] || die "another session's scores changed after the attack"
q -c "DROP SCHEMA ss_evil CASCADE" >/dev/null
echo "ok - a hostile search_path (=, a shadow moe.models, a temp deployments) in one session: every other session served as before"

# --- 2. dropped while another session loads it ---------------------------------
q -c "CALL moe_train('ss_pairs', model_name => 'ss_drop', epochs => 1, batch_size => 64, seed => 4, deploy => 'never', $small)" >/dev/null
d=$(q -c "SELECT max(id) FROM moe.models WHERE name = 'ss_drop'")
q -c "SELECT moe_cache_clear('server')" >/dev/null
fifo_in="$work/drop.in"; mkfifo "$fifo_in"
q <"$fifo_in" >"$work/drop.out" 2>&1 &
dropper=$!
exec 7>"$fifo_in"
echo "BEGIN; SELECT moe_drop_model($d);" >&7
waiting="SELECT count(*) FROM pg_stat_activity WHERE state = 'idle in transaction' AND query LIKE '%moe_drop_model($d)%'"
for _ in $(seq 100); do [ "$(q -c "$waiting")" = 1 ] && break; sleep 0.1; done
[ "$(q -c "$waiting")" = 1 ] || die "the dropping session did not get going: $(cat "$work/drop.out")"
# another session loads the model now: its snapshot still has the row
p_during=$(q -c "SELECT moe_predict($pair, $d::bigint)")
[ -n "$p_during" ] || die "the model should be servable before the drop commits"
echo "COMMIT;" >&7
exec 7>&-
wait "$dropper"
err=$(q -c "SELECT moe_predict($pair, $d::bigint)" 2>&1 || true)
echo "$err" | grep -q "model $d does not exist" || die "a model dropped while loading was served after the drop committed: $err"
cached=$(q -c "SELECT count(*) FROM moe_cache() WHERE model_id = $d AND scope = 'shared'")
[ "$cached" = 0 ] || die "the dropped model still holds a shared cache entry"
q -c "CALL moe_train('ss_pairs', model_name => 'ss_keep', epochs => 1, batch_size => 64, seed => 5, deploy => 'never', $small)" >/dev/null
k=$(q -c "SELECT max(id) FROM moe.models WHERE name = 'ss_keep'")
pk=$(q -c "SELECT moe_predict($pair, $k::bigint)")
q -c "BEGIN" -c "SELECT moe_drop_model($k)" -c "ROLLBACK" >/dev/null
[ "$(q -c "SELECT moe_predict($pair, $k::bigint)")" = "$pk" ] || die "a rolled-back drop changed what is served"
echo "ok - a drop that commits while another session loads the model ends serving at once; a rolled-back drop changes nothing"

# --- 3. a rolled-back row is never served --------------------------------------
next=$(q -c "SELECT last_value + 1 FROM moe.models_id_seq")
forged=$(q -c "BEGIN" \
    -c "INSERT INTO moe.models (id, name, config, checkpoint) SELECT $next, 'ss_forged', config, checkpoint FROM moe.models WHERE id = $b" \
    -c "SELECT moe_predict($pair, $next::bigint)" -c "ROLLBACK")
[ "$forged" = "$pb" ] || die "the forging transaction should see its own row ($forged vs $pb)"
q -c "CALL moe_train('ss_pairs', model_name => 'ss_after', epochs => 1, batch_size => 64, seed => 1, $small)" >/dev/null
after=$(q -c "SELECT model_id FROM moe.deployments WHERE name = 'ss_after'")
[ "$after" = "$next" ] || die "expected the next model to take id $next, it took $after"
[ "$(q -c "SELECT moe_predict($pair, $after::bigint)")" = "$pa" ] \
    || die "model $after is served another model's weights (the rolled-back row's?)"
echo "ok - a checkpoint row that rolled back is served to nobody, also not under its id once a later model takes it"

# --- 4. entity parts at the limits --------------------------------------------------
q >/dev/null <<SQL
SET client_min_messages = error;
DROP TABLE IF EXISTS ss_wide, ss_wide_drugs, ss_wide_targets, ss_many CASCADE;
CREATE TABLE ss_wide AS SELECT * FROM moe_synthetic_dta(200, 100, 4, seed => 22, drug_dim => 600, target_dim => 600);
SELECT moe_create_dataset('ss_wide', 'ss_wide', protein_column => 'target_vec', replace => true);
CALL moe_train('ss_wide', model_name => 'ss_wide512', epochs => 1, batch_size => 256, seed => 1,
               drug_hidden => '{512}', protein_hidden => '{512}', gate_hidden => '{512,256}', expert_hidden => '{512,256}');
CALL moe_train('ss_wide', model_name => 'ss_wide64', epochs => 1, batch_size => 256, seed => 1,
               drug_hidden => '{64}', protein_hidden => '{64}', gate_hidden => '{64}', expert_hidden => '{64}');
-- vectors stored out of line, keyed by TOAST pointer (and shared between backends)
CREATE TABLE ss_wide_drugs (drug_id integer PRIMARY KEY, vec real[]);
CREATE TABLE ss_wide_targets (target_id integer PRIMARY KEY, vec real[]);
ALTER TABLE ss_wide_drugs ALTER COLUMN vec SET STORAGE EXTERNAL;
ALTER TABLE ss_wide_targets ALTER COLUMN vec SET STORAGE EXTERNAL;
INSERT INTO ss_wide_drugs SELECT DISTINCT ON (drug_id) drug_id, drug_vec FROM ss_wide ORDER BY drug_id;
INSERT INTO ss_wide_targets SELECT DISTINCT ON (target_id) target_id, target_vec FROM ss_wide ORDER BY target_id;
CREATE VIEW ss_wide_pairs AS
SELECT d.drug_id, t.target_id, d.vec AS drug_vec, t.vec AS protein_vec
  FROM ss_wide_drugs d CROSS JOIN ss_wide_targets t WHERE (d.drug_id + t.target_id) % 7 = 0;
ANALYZE ss_wide_drugs, ss_wide_targets;
SQL
per_row="SELECT md5(string_agg(moe_predict(drug_vec, protein_vec, 'ss_wide512')::text, ',' ORDER BY drug_id, target_id)) FROM ss_wide_pairs"
routed="SELECT md5(string_agg(r::text, ',' ORDER BY drug_id, target_id)) FROM (SELECT drug_id, target_id, moe_gate(drug_vec, protein_vec, 'ss_wide512') AS r, moe_expert_outputs(drug_vec, protein_vec, 'ss_wide512') AS o FROM ss_wide_pairs) s"
by_route="SELECT md5(string_agg(r::text, ',' ORDER BY drug_id, target_id, (r).expert)) FROM (SELECT drug_id, target_id, moe_route(drug_vec, protein_vec, 'ss_wide512') AS r FROM ss_wide_pairs) s"
inline="SELECT md5(string_agg(moe_predict(drug_vec || 0::real, protein_vec, 'ss_wide512')::text, ',' ORDER BY drug_id, target_id)) FROM (SELECT drug_id, target_id, drug_vec[1:599] AS drug_vec, protein_vec FROM ss_wide_pairs) s"
bulk="CALL moe_score('ss_wide512', 'ss_wide_pairs', 'ss_bulk', key_columns => '{drug_id,target_id}', replace => true)"
bulk_md5="SELECT md5(string_agg(prediction::text, ',' ORDER BY drug_id, target_id)) FROM ss_bulk"
w512=$(q -c "SELECT model_id FROM moe.deployments WHERE name = 'ss_wide512'")
w512_md5=$(q -c "SELECT params_md5 FROM moe_model_info($w512::bigint)")
window="SELECT md5(string_agg(p::text, ',' ORDER BY drug_id, target_id)) FROM (SELECT drug_id, target_id, moe_predict_partition(drug_vec, protein_vec, $w512::bigint, '$w512_md5') OVER (PARTITION BY drug_id % 3) AS p FROM ss_wide_pairs) s"
parallel="SET parallel_setup_cost = 0; SET parallel_tuple_cost = 0; SET min_parallel_table_scan_size = 0; SET max_parallel_workers_per_gather = 2; SET force_parallel_mode = on;"
measure() {   # the answers of every path, with the settings in $1
    q -c "$forget" -c "$1" -c "$per_row" -c "$routed" -c "$by_route" -c "$inline" \
      -c "$bulk" -c "$bulk_md5" -c "$parallel $per_row" -c "$window" | paste -sd ' '
}
q -c "SELECT moe_cache_clear('server')" >/dev/null
huge=$(measure "SET moe_pg.entity_cache_mb = 65536")
[ "$(echo "$huge" | wc -w)" = 7 ] || die "measuring with a huge cache failed: $huge"
[ "$(echo "$huge" | awk '{ print $1 }')" = "$(echo "$huge" | awk '{ print $5 }')" ] || die "moe_score differs from moe_predict: $huge"
[ "$(echo "$huge" | awk '{ print $1 }')" = "$(echo "$huge" | awk '{ print $6 }')" ] || die "parallel workers differ: $huge"
[ "$(echo "$huge" | awk '{ print $1 }')" = "$(echo "$huge" | awk '{ print $7 }')" ] || die "moe_predict_partition differs from moe_predict: $huge"
tiny=$(measure "SET moe_pg.entity_cache_mb = 1")
[ "$tiny" = "$huge" ] || die "at moe_pg.entity_cache_mb = 1 the answers changed: $tiny vs $huge"
# a model small enough for the shared cache: parts computed by one
# connection are copied by the next, also under the smallest local cache
per_row64="SELECT md5(string_agg(moe_predict(drug_vec, protein_vec, 'ss_wide64')::text, ',' ORDER BY drug_id, target_id)) FROM ss_wide_pairs"
alone=$(EXTRA_PGOPTIONS="-c moe_pg.entity_cache_mb=65536" q -c "SELECT moe_cache_clear('server')" -c "$forget" -c "$per_row64" | tail -1)
copied=$(EXTRA_PGOPTIONS="-c moe_pg.entity_cache_mb=1" q -c "$forget" -c "$per_row64" \
    -c "SELECT entity_parts_copied > 0 FROM moe_cache() WHERE scope = 'shared' AND model_id = (SELECT model_id FROM moe.deployments WHERE name = 'ss_wide64')" | paste -sd ' ')
[ "$copied" = "$alone t" ] || die "shared parts under the smallest cache: $copied (alone: $alone)"
entities=$(q -c "SELECT count(*) FROM ss_wide_drugs" )
echo "ok - moe_pg.entity_cache_mb = 1 with a 512-wide model and $entities drugs: per row, moe_gate/moe_expert_outputs, moe_route, inline vectors, moe_score, parallel workers, moe_predict_partition and shared parts all give the bits of a cache that holds everything"

# 100,000 distinct drugs at the default limit (64 MB): more parts than fit
many="SELECT md5(string_agg(moe_predict(ARRAY[g, 1, 2, 3, 4, 5, 6, 7]::real[] || array_fill(0::real, ARRAY[592]), t.vec, 'ss_wide64')::text, ',' ORDER BY g)) FROM generate_series(1, 100000) g, (SELECT vec FROM ss_wide_targets ORDER BY target_id LIMIT 1) t"
q >/dev/null <<SQL
CREATE TABLE ss_many AS SELECT g AS drug_id, 1 AS target_id, ARRAY[g, 1, 2, 3, 4, 5, 6, 7]::real[] || array_fill(0::real, ARRAY[592]) AS drug_vec,
       (SELECT vec FROM ss_wide_targets ORDER BY target_id LIMIT 1) AS protein_vec
  FROM generate_series(1, 100000) g;
SQL
many_bulk="CALL moe_score('ss_wide64', 'ss_many', 'ss_many_scored', key_columns => '{drug_id}', replace => true)"
many_md5="SELECT md5(string_agg(prediction::text, ',' ORDER BY drug_id)) FROM ss_many_scored"
part_mb=$(q -c "$forget" -c "SELECT count(moe_predict(drug_vec, protein_vec, 'ss_wide64')) FROM (SELECT * FROM ss_many ORDER BY drug_id LIMIT 1000) s" \
             -c "SELECT round(100001 * entity_bytes / entity_parts / 1048576.0) FROM moe_cache() WHERE model_id = (SELECT model_id FROM moe.deployments WHERE name = 'ss_wide64') AND entity_parts > 0 LIMIT 1" | tail -1)
[ "$part_mb" -gt 64 ] || die "100,000 drugs should need more than the 64 MB cache, not $part_mb MB"
default_out=$(q -c "$many" -c "$many_bulk" -c "$many_md5" | paste -sd ' ')
huge_out=$(EXTRA_PGOPTIONS="-c moe_pg.entity_cache_mb=65536" q -c "$many" -c "$many_bulk" -c "$many_md5" | paste -sd ' ')
[ "$default_out" = "$huge_out" ] || die "100,000 drugs at the default cache limit: $default_out vs $huge_out"
echo "ok - 100,000 distinct drugs (about $part_mb MB of parts against a 64 MB cache) per row and by moe_score: the bits of a cache that holds them all"

# the smallest model cache with two models in one statement, and a source
# view or dataset that loads another model while the first is in use
q >/dev/null <<SQL
DROP VIEW IF EXISTS ss_mixed;
CREATE VIEW ss_mixed AS SELECT drug_id, target_id, drug_vec, target_vec AS protein_vec, label, split,
                               moe_predict(drug_vec, target_vec, 'ss_b') AS other FROM ss_pairs;
SELECT moe_create_dataset('ss_mixed', 'ss_mixed', replace => true);
SQL
two=$(EXTRA_PGOPTIONS="-c moe_pg.local_cache_models=1" q \
    -c "$forget" \
    -c "SELECT md5(string_agg(moe_predict(drug_vec, target_vec, 'ss_a')::text || '/' || moe_predict(drug_vec, target_vec, 'ss_b')::text, ',' ORDER BY drug_id, target_id)) FROM ss_pairs" \
    -c "CALL moe_score('ss_a', 'ss_mixed', 'ss_mixed_scored', key_columns => '{drug_id,target_id}', replace => true)" \
    -c "SELECT md5(string_agg(prediction::text, ',' ORDER BY drug_id, target_id)) FROM ss_mixed_scored" \
    -c "SELECT round(mse::numeric, 6) FROM moe_evaluate('ss_a', 'ss_mixed', 'all')" | paste -sd ' ')
one=$(q -c "SELECT md5(string_agg(moe_predict(drug_vec, target_vec, 'ss_a')::text || '/' || moe_predict(drug_vec, target_vec, 'ss_b')::text, ',' ORDER BY drug_id, target_id)) FROM ss_pairs" \
    -c "$all" -c "SELECT round(mse::numeric, 6) FROM moe_evaluate('ss_a', 'ss_pairs', 'all')" | paste -sd ' ')
[ "$two" = "$one" ] || die "moe_pg.local_cache_models = 1 with two models at once: $two vs $one"
echo "ok - moe_pg.local_cache_models = 1: two models in one statement, and a view that loads another model inside moe_score and moe_evaluate, give the same answers"

# --- 5. pg_dump -> pg_restore into a fresh database ---------------------------------
dropdb --if-exists moe_sec_dumped >/dev/null 2>&1
dropdb --if-exists moe_sec_restored >/dev/null 2>&1
createdb moe_sec_dumped
QDB=moe_sec_dumped q >/dev/null <<SQL
SET client_min_messages = error;
CREATE EXTENSION moe_pg;
CREATE TABLE pairs AS SELECT * FROM moe_synthetic_dta(30, 20, 2, seed => 21);
ALTER TABLE pairs ALTER COLUMN drug_vec SET STORAGE EXTERNAL;
SELECT moe_create_dataset('pairs', 'pairs', protein_column => 'target_vec');
CALL moe_train('pairs', model_name => 'first', epochs => 2, batch_size => 64, seed => 1, $small);
CALL moe_train('pairs', model_name => 'second', epochs => 2, batch_size => 64, seed => 2, experts => 3, top_k => 1, $small);
CALL moe_cross_validate('pairs', 1, 'cv', '{"epochs": 1, "batch_size": 64, "drug_hidden": [8], "protein_hidden": [8], "gate_hidden": [8], "expert_hidden": [8]}');
SELECT moe_deploy('alias', (SELECT model_id FROM moe.deployments WHERE name = 'first'));
SQL
pg_dump -Fc -d moe_sec_dumped -f "$work/dump" 2>"$work/dump.err" || die "pg_dump failed: $(cat "$work/dump.err")"
createdb moe_sec_restored
pg_restore -d moe_sec_restored --exit-on-error "$work/dump" 2>"$work/restore.err" \
    || die "pg_restore failed: $(head -5 "$work/restore.err")"
counts="SELECT (SELECT count(*) FROM moe.models) || ' ' || (SELECT count(*) FROM moe.deployments) || ' ' || (SELECT count(*) FROM moe.training_history) || ' ' || (SELECT count(*) FROM moe.expert_history) || ' ' || (SELECT count(*) FROM moe.datasets) || ' ' || (SELECT count(*) FROM moe.experiments) || ' ' || (SELECT md5(string_agg(h.id || h.name || coalesce(h.model_id, 0) || h.action, ',' ORDER BY h.id)) FROM moe.deployment_history h)"
every="SELECT md5(string_agg(d.name || ':' || moe_predict(p.drug_vec, p.target_vec, d.name)::text || ':' || moe_predict(p.drug_vec, p.target_vec, m.id)::text, ',' ORDER BY d.name, p.drug_id, p.target_id)) FROM moe.deployments d, moe.models m, pairs p WHERE m.id = d.model_id"
by_id="SELECT md5(string_agg(m.id || ':' || moe_predict(p.drug_vec, p.target_vec, m.id)::text, ',' ORDER BY m.id, p.drug_id, p.target_id)) FROM moe.models m, pairs p"
evaluated="SELECT round(mse::numeric, 9) FROM moe_evaluate('first', 'pairs', 'all')"
before=$(QDB=moe_sec_dumped q -c "$counts" -c "$every" -c "$by_id" -c "$evaluated" | paste -sd ' ')
restored=$(QDB=moe_sec_restored q -c "$counts" -c "$every" -c "$by_id" -c "$evaluated" | paste -sd ' ')
[ "$restored" = "$before" ] || die "after pg_dump and pg_restore: $restored vs $before (models deployments history experts datasets experiments, predictions by name and by id, evaluation)"
dropdb moe_sec_restored
dropdb moe_sec_dumped
echo "ok - pg_dump | pg_restore into a fresh database: the same models, deployments, history, experiments, datasets and deployment history ($(echo "$before" | cut -d' ' -f1-6)); every prediction by name and by id bit for bit"

# --- 6. text from a checkpoint must be valid in the database encoding ---------------
q -c "SELECT moe_export_model('ss_a', '$work/a.ckpt')" >/dev/null
perl -MCompress::Zlib -e '
    local $/; open(my $f, "<:raw", $ARGV[0]) or die; my $c = <$f>; close $f;
    my $name = q("name": "ss_a"); my $at = index($c, $name) >= 0 ? index($c, $name) : die "no name in the metadata\n";
    substr($c, $at + 9, 1, "\xff");                       # "ss_a" -> "\xffs_a": not UTF-8
    substr($c, -4, 4, pack("V", crc32(substr($c, 0, length($c) - 4))));
    open(my $o, ">:raw", $ARGV[1]) or die; print $o $c; close $o;' "$work/a.ckpt" "$work/bad.ckpt"
chmod 644 "$work/bad.ckpt"
err=$(q -c "SELECT moe_import_model('$work/bad.ckpt')" 2>&1 || true)
echo "$err" | grep -q "its metadata is not valid UTF8 text" || die "a checkpoint with a 0xFF byte in its name: $err"
n=$(q -c "SELECT count(*) FROM moe.models WHERE name NOT SIMILAR TO '[[:print:]]*'")
[ "$n" = 0 ] || die "a model with unprintable text in its name was stored"
echo "ok - a checkpoint whose name holds a byte that is not UTF-8 is refused (22021), so dumps stay restorable"

# --- 7. moe_load_dta: CRLF files, and replace drops only what it made ---------------
dta="$work/dta"; mkdir -p "$dta"
printf 'drug_id,smiles\r\nd1,CCO\r\nd2,CCN\r\nd3,c1ccccc1\r\n' >"$dta/drugs.csv"
printf 'target_id,sequence\r\nt1,MKVLAAGIV\r\nt2,MSTNPKPQRK\r\n' >"$dta/targets.csv"
printf 'drug_id,target_id,kd_nm,pkd\r\nd1,t1,100,7\r\nd1,t2,1000,6\r\nd2,t1,10,8\r\nd2,t2,10000,5\r\nd3,t1,1000,6\r\nd3,t2,100,7\r\n' >"$dta/affinities.csv"
printf 'drug_id,target_id,fold\r\nd1,t1,0\r\nd1,t2,1\r\nd2,t1,test\r\nd2,t2,2\r\nd3,t1,3\r\nd3,t2,4\r\n' >"$dta/folds_setting1.csv"
chmod 644 "$dta"/*; chmod 755 "$dta"
q >/dev/null <<SQL
SET client_min_messages = error;
DROP SCHEMA IF EXISTS ss_dta CASCADE;
DELETE FROM moe.datasets WHERE name = 'ss_dta';
CREATE SCHEMA ss_dta;
CREATE TABLE ss_dta.drugs (note text);
INSERT INTO ss_dta.drugs VALUES ('precious');
SQL
err=$(q -c "SELECT moe_load_dta('$dta', 'ss_dta', setting => 'setting1', replace => true)" 2>&1 || true)
echo "$err" | grep -q 'ss_dta.drugs exists and was not made by moe_load_dta for dataset "ss_dta"' \
    || die "replace => true over a table it did not make: $err"
[ "$(q -c "SELECT note FROM ss_dta.drugs")" = precious ] || die "moe_load_dta dropped a table it did not make"
q -c "DROP TABLE ss_dta.drugs" >/dev/null
pairs=$(q -c "SELECT moe_load_dta('$dta', 'ss_dta', setting => 'setting1')")
[ "$pairs" = 6 ] || die "CRLF CSVs: loaded $pairs pairs, expected 6"
[ "$(q -c "SELECT string_agg(drug_id || smiles, ',' ORDER BY drug_id) FROM ss_dta.drugs")" = "d1CCO,d2CCN,d3c1ccccc1" ] \
    || die "CRLF CSVs: fields carry a carriage return"
err=$(q -c "SELECT moe_load_dta('$dta', 'ss_dta', setting => 'setting1')" 2>&1 || true)
echo "$err" | grep -q 'dataset "ss_dta" is already loaded' || die "loading twice without replace: $err"
[ "$(q -c "SELECT moe_load_dta('$dta', 'ss_dta', setting => 'setting1', replace => true)")" = 6 ] \
    || die "replace => true of its own tables failed"
q -c "DROP SCHEMA ss_dta CASCADE" -c "SELECT moe_drop_dataset('ss_dta')" >/dev/null
echo "ok - moe_load_dta: CRLF files load; replace => true refuses a table it did not make and reloads its own"
