#!/usr/bin/env bash
# The upgrade path (issue 16): a database made with 0.1.0 and holding a
# dataset, a model and a deployment is updated with ALTER EXTENSION; its
# catalogue then equals a fresh install's, object for object (functions
# with their arguments, results, properties, bodies and privileges; tables
# and views with their columns, constraints, indexes, triggers and
# definitions; types; comments; the tables pg_dump keeps), its rows are
# kept and its model scores as before.  Usage: upgrade.sh DB (any database
# of the test cluster; the test makes and drops its own).
set -euo pipefail
db=$1
old=moe_upgrade_old
new=moe_upgrade_new
q() { local d=$1; shift; PGOPTIONS="-c client_min_messages=error" psql -X -q -At -v ON_ERROR_STOP=1 -d "$d" "$@"; }
die() { echo "not ok - $*" >&2; exit 1; }
ok() { echo "ok - $*"; }
tmp=$(mktemp -d)
chmod 1777 "$tmp"   # the server writes and reads the exported checkpoint
drop_databases() {
    q "$db" -c "DROP DATABASE IF EXISTS $old" -c "DROP DATABASE IF EXISTS $new" >/dev/null 2>&1 || true
}
trap 'drop_databases; rm -rf "$tmp"' EXIT
drop_databases
q "$db" -c "CREATE DATABASE $old" -c "CREATE DATABASE $new"

# a schema moe that is not the extension's stops the install with a clear error
q "$new" -c "CREATE SCHEMA moe" >/dev/null
if q "$new" -c "CREATE EXTENSION moe_pg" >/dev/null 2>"$tmp/err"; then die "installed over a foreign schema moe"; fi
grep -q 'schema "moe" already exists and does not belong to moe_pg' "$tmp/err" || die "unclear error: $(cat "$tmp/err")"
q "$new" -c "DROP SCHEMA moe" >/dev/null
ok "CREATE EXTENSION over a foreign schema moe says so (42P06) and changes nothing"

version=$(sed -n "s/^default_version *= *'\(.*\)'/\1/p" "$(dirname "$0")/../../moe_pg.control")

# a model trained and exported by the current version, to carry through
q "$new" -c "CREATE EXTENSION moe_pg" -c "CREATE TABLE syn AS SELECT * FROM moe_synthetic_dta(12, 8, 2, seed => 4)" \
         -c "SELECT moe_create_dataset('syn', 'syn', protein_column => 'target_vec')" \
         -c "CALL moe_train('syn', model_name => 'carried', epochs => 2, drug_hidden => '{8}', protein_hidden => '{8}', gate_hidden => '{8}', expert_hidden => '{8}')" \
         -c "SELECT moe_export_model('carried', '$tmp/carried.ckpt')" >/dev/null
want=$(q "$new" -c "SELECT sum(moe_predict(drug_vec, target_vec, 'carried'))::text FROM syn")

# 0.1.0 with rows of its own: a dataset, the imported model deployed
q "$old" -c "CREATE EXTENSION moe_pg VERSION '0.1.0'" \
         -c "CREATE TABLE syn AS SELECT * FROM moe_synthetic_dta(12, 8, 2, seed => 4)" \
         -c "SELECT moe_create_dataset('syn', 'syn', protein_column => 'target_vec')" \
         -c "SELECT moe_import_model('$tmp/carried.ckpt', 'carried')" >/dev/null
[ "$(q "$old" -c "SELECT extversion FROM pg_extension WHERE extname = 'moe_pg'")" = 0.1.0 ] || die "0.1.0 did not install"
# a 0.1.0 procedure called with this library says what to do
if q "$old" -c "CALL moe_train('syn', epochs => 1)" >/dev/null 2>"$tmp/err"; then die "0.1.0's moe_train ran on the new library"; fi
grep -q "ALTER EXTENSION moe_pg UPDATE" "$tmp/err" || die "the stale signature error does not say to update: $(cat "$tmp/err")"
ok "0.1.0 installs, and its moe_train refuses to run on the new library until the update"

q "$old" -c "ALTER EXTENSION moe_pg UPDATE TO '$version'" >/dev/null
[ "$(q "$old" -c "SELECT extversion FROM pg_extension WHERE extname = 'moe_pg'")" = "$version" ] || die "not updated"
ok "ALTER EXTENSION moe_pg UPDATE TO '$version'"

# the catalogue of the extension's objects, one line each, in a stable order
catalogue() {
    q "$1" <<'SQL'
WITH members AS (
    SELECT d.classid, d.objid FROM pg_depend d
     WHERE d.refclassid = 'pg_extension'::regclass AND d.deptype = 'e'
       AND d.refobjid = (SELECT oid FROM pg_extension WHERE extname = 'moe_pg'))
SELECT 'function ' || p.oid::regprocedure::text || ' -> ' || pg_get_function_result(p.oid)
       || ' | args ' || pg_get_function_arguments(p.oid) || ' | ' || p.prokind::text || p.provolatile::text
       || p.proparallel::text || p.proisstrict::text || p.prosecdef::text || ' cost ' || p.procost
       || ' rows ' || p.prorows || ' | ' || coalesce(p.proconfig::text, '') || ' | ' || coalesce(p.probin, '')
       || ' | ' || md5(p.prosrc) || ' | acl ' || coalesce(p.proacl::text, 'default')
       || ' | ' || coalesce(obj_description(p.oid, 'pg_proc'), 'NO COMMENT')
  FROM members m JOIN pg_proc p ON m.classid = 'pg_proc'::regclass AND p.oid = m.objid
UNION ALL
SELECT 'relation ' || c.oid::regclass::text || ' ' || c.relkind::text || ' | acl ' || coalesce(c.relacl::text, 'default')
       || ' | ' || coalesce(obj_description(c.oid, 'pg_class'), 'NO COMMENT')
       || CASE WHEN c.relkind = 'v' THEN ' | ' || md5(pg_get_viewdef(c.oid)) ELSE '' END
  FROM members m JOIN pg_class c ON m.classid = 'pg_class'::regclass AND c.oid = m.objid
UNION ALL
SELECT 'column ' || c.oid::regclass::text || '.' || a.attname || ' #' ||
       row_number() OVER (PARTITION BY c.oid ORDER BY a.attnum) || ' ' || format_type(a.atttypid, a.atttypmod)
       || CASE WHEN a.attnotnull THEN ' not null' ELSE '' END
       || coalesce(' default ' || pg_get_expr(ad.adbin, ad.adrelid), '')
       || CASE WHEN a.attidentity <> '' THEN ' identity ' || a.attidentity::text ELSE '' END
       || ' storage ' || a.attstorage::text
  FROM members m JOIN pg_class c ON m.classid = 'pg_class'::regclass AND c.oid = m.objid
  JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
  LEFT JOIN pg_attrdef ad ON ad.adrelid = c.oid AND ad.adnum = a.attnum
 WHERE c.relkind IN ('r', 'v', 'c')
UNION ALL
SELECT 'constraint ' || k.conrelid::regclass::text || ' ' || pg_get_constraintdef(k.oid)
  FROM members m JOIN pg_constraint k ON m.classid = 'pg_class'::regclass AND k.conrelid = m.objid
UNION ALL
SELECT 'index ' || regexp_replace(pg_get_indexdef(i.indexrelid), 'INDEX \S+ ON', 'INDEX ON')
  FROM members m JOIN pg_index i ON m.classid = 'pg_class'::regclass AND i.indrelid = m.objid
UNION ALL
SELECT 'trigger ' || pg_get_triggerdef(t.oid)
  FROM members m JOIN pg_trigger t ON m.classid = 'pg_class'::regclass AND t.tgrelid = m.objid
 WHERE NOT t.tgisinternal
UNION ALL
SELECT 'type ' || t.oid::regtype::text || ' ' || t.typtype::text || ' | '
       || coalesce(obj_description(t.oid, 'pg_type'), 'NO COMMENT')
  FROM members m JOIN pg_type t ON m.classid = 'pg_type'::regclass AND t.oid = m.objid
UNION ALL
SELECT 'column ' || t.oid::regtype::text || '.' || a.attname || ' #' ||
       row_number() OVER (PARTITION BY t.oid ORDER BY a.attnum) || ' ' || format_type(a.atttypid, a.atttypmod)
  FROM members m JOIN pg_type t ON m.classid = 'pg_type'::regclass AND t.oid = m.objid
  JOIN pg_attribute a ON a.attrelid = t.typrelid AND a.attnum > 0 AND NOT a.attisdropped
UNION ALL
SELECT 'dumped ' || x::regclass::text
  FROM pg_extension e, unnest(e.extconfig) x WHERE e.extname = 'moe_pg'
UNION ALL
SELECT 'schema comment ' || coalesce(obj_description('moe'::regnamespace, 'pg_namespace'), 'NONE')
ORDER BY 1
SQL
}
catalogue "$old" >"$tmp/upgraded"
catalogue "$new" >"$tmp/fresh"
if ! diff -u "$tmp/fresh" "$tmp/upgraded" >"$tmp/diff"; then
    cat "$tmp/diff" >&2
    die "the upgraded catalogue differs from a fresh install (- fresh, + upgraded)"
fi
ok "the upgraded catalogue equals a fresh install's ($(wc -l <"$tmp/fresh") objects and properties compared)"
# sequences (of identity columns) are the one kind without a comment
[ "$(grep 'NO COMMENT' "$tmp/fresh" | grep -vc '^relation [^ ]* S ')" = 0 ] \
    || die "objects without a comment: $(grep 'NO COMMENT' "$tmp/fresh" | grep -v '^relation [^ ]* S ')"
ok "every function, procedure, aggregate, table, view and type of the extension has a comment"

# the rows came along, and the model scores as before
[ "$(q "$old" -c "SELECT owner = created_by FROM moe.datasets WHERE name = 'syn'")" = t ] || die "dataset owner"
[ "$(q "$old" -c "SELECT count(*) FROM moe.deployment_history WHERE name = 'carried' AND previous_model_id IS NULL")" = 1 ] \
    || die "the existing deployment did not start the history"
got=$(q "$old" -c "SELECT sum(moe_predict(drug_vec, target_vec, 'carried'))::text FROM syn")
[ "$got" = "$want" ] || die "predictions after the update: $got, want $want"
q "$old" -c "CALL moe_train('syn', model_name => 'after', epochs => 1, drug_hidden => '{8}', protein_hidden => '{8}', gate_hidden => '{8}', expert_hidden => '{8}')" >/dev/null
ok "rows kept, the model scores bit for bit as before, and training works after the update"
