-- Privileges (docs/security.md): what PUBLIC, moe_reader and moe_trainer
-- may do, that nothing runs with elevated rights, that datasets are read
-- with the caller's privileges, and that a model in the shared cache is
-- served only to those who could read it from the table.  The test roles
-- are login-less and vanish with the transaction.
BEGIN;
SELECT plan(55);
SET LOCAL client_min_messages = error;

CREATE ROLE moe_tap_public;                      -- PUBLIC's rights only
CREATE ROLE moe_tap_reader IN ROLE moe_reader;
CREATE ROLE moe_tap_trainer IN ROLE moe_trainer;
CREATE ROLE moe_tap_exec;                        -- EXECUTE on moe_predict, nothing else

-- ---- the catalogue: roles, SECURITY DEFINER, who may execute what
SELECT ok(EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'moe_reader' AND NOT rolcanlogin),
          'the install script made the login-less role moe_reader');
SELECT ok(EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'moe_trainer' AND NOT rolcanlogin),
          'the install script made the login-less role moe_trainer');
SELECT ok(pg_has_role('moe_trainer', 'moe_reader', 'MEMBER'), 'moe_trainer is a member of moe_reader');

CREATE TEMP VIEW ext_functions AS
SELECT p.oid, p.oid::regprocedure::text AS signature, p.proname::text AS name, p.prosecdef
  FROM pg_depend d JOIN pg_proc p ON p.oid = d.objid
 WHERE d.classid = 'pg_proc'::regclass AND d.refclassid = 'pg_extension'::regclass AND d.deptype = 'e'
   AND d.refobjid = (SELECT oid FROM pg_extension WHERE extname = 'moe_pg');

SELECT is((SELECT array_agg(signature ORDER BY signature) FROM ext_functions WHERE prosecdef), NULL,
          'no function of the extension is SECURITY DEFINER');
SELECT is((SELECT array_agg(DISTINCT name ORDER BY name) FROM ext_functions
            WHERE has_function_privilege('public', oid, 'EXECUTE')),
          ARRAY['moe_featurize_ecfp', 'moe_featurize_protein', 'moe_featurize_protein_cksaap',
                'moe_featurize_protein_triad', 'moe_featurize_smiles', 'moe_featurizer_spec', 'moe_router_stats',
                'moe_synthetic_dta', 'moe_usage'],
          'PUBLIC may execute only the pure functions (no table, no model)');
SELECT is((SELECT array_agg(DISTINCT name ORDER BY name) FROM ext_functions
            WHERE NOT has_function_privilege('public', oid, 'EXECUTE')
              AND NOT has_function_privilege('moe_reader', oid, 'EXECUTE')
              AND NOT has_function_privilege('moe_trainer', oid, 'EXECUTE')),
          ARRAY['check_owner', 'forget_cached_model', 'guard_models', 'models_are_immutable', 'moe_cache_clear',
                'moe_distribute', 'moe_usage_combinefn',
                'moe_usage_deserialfn', 'moe_usage_finalfn', 'moe_usage_serialfn', 'moe_usage_transfn',
                'record_deployment'],
          'every other function is granted to moe_reader or moe_trainer, or is for superusers (docs/security.md)');
SELECT is((SELECT array_agg(DISTINCT name ORDER BY name) FROM ext_functions
            WHERE has_function_privilege('moe_trainer', oid, 'EXECUTE')
              AND NOT has_function_privilege('moe_reader', oid, 'EXECUTE')),
          ARRAY['moe_create_dataset', 'moe_cross_validate', 'moe_deploy', 'moe_drop_dataset', 'moe_drop_model',
                'moe_export_model', 'moe_import_model', 'moe_load_dta', 'moe_rollback', 'moe_sweep', 'moe_train'],
          'training, datasets, deploying, dropping, import and export are for moe_trainer');
SELECT ok(NOT has_schema_privilege('public', 'moe', 'USAGE') AND has_schema_privilege('moe_reader', 'moe', 'USAGE'),
          'schema moe is for moe_reader, not PUBLIC');
SELECT is((SELECT array_agg(c.relname::text ORDER BY c.relname) FROM pg_class c
            WHERE c.relnamespace = 'moe'::regnamespace AND c.relkind IN ('r', 'v')
              AND NOT has_table_privilege('moe_reader', c.oid, 'SELECT')), NULL,
          'moe_reader may read every table and view in moe');
SELECT is((SELECT array_agg(c.relname::text ORDER BY c.relname) FROM pg_class c
            WHERE c.relnamespace = 'moe'::regnamespace AND c.relkind IN ('r', 'v')
              AND (has_table_privilege('moe_reader', c.oid, 'INSERT') OR has_table_privilege('moe_reader', c.oid, 'UPDATE')
                   OR has_table_privilege('moe_reader', c.oid, 'DELETE')
                   OR has_table_privilege('moe_trainer', c.oid, 'TRUNCATE'))), NULL,
          'moe_reader writes nothing; nobody but the owner truncates');
SELECT ok(NOT has_table_privilege('moe_trainer', 'moe.models', 'UPDATE'),
          'moe_trainer may not update a stored model');

-- ---- data and a model, made by the superuser
CREATE TABLE moe_tap_open AS SELECT * FROM moe_synthetic_dta(30, 20, 2, seed => 3);
CREATE TABLE moe_tap_closed AS SELECT * FROM moe_tap_open;
GRANT SELECT ON moe_tap_open TO moe_tap_public, moe_tap_reader, moe_tap_trainer, moe_tap_exec;
GRANT CREATE ON SCHEMA public TO moe_tap_reader;
SELECT moe_create_dataset('tap_open', 'moe_tap_open', protein_column => 'target_vec');
SELECT moe_create_dataset('tap_closed', 'moe_tap_closed', protein_column => 'target_vec');
CALL moe_train('tap_open', model_name => 'tap_priv', epochs => 1, batch_size => 64, drug_hidden => '{16}',
               protein_hidden => '{16}', gate_hidden => '{16}', expert_hidden => '{16}');
CREATE TEMP TABLE priv_ids AS SELECT max(id) AS id FROM moe.models WHERE name = 'tap_priv';
GRANT SELECT ON priv_ids TO PUBLIC;
CREATE TEMP TABLE probe AS SELECT drug_vec, target_vec FROM moe_tap_open ORDER BY drug_id, target_id LIMIT 1;
GRANT SELECT ON probe TO PUBLIC;
CREATE TEMP TABLE expected AS SELECT moe_predict(drug_vec, target_vec, 'tap_priv') AS p FROM probe;
GRANT SELECT ON expected TO PUBLIC;
CREATE TEMP TABLE dirs AS SELECT current_setting('data_directory') AS data;
GRANT SELECT ON dirs TO PUBLIC;

-- ---- PUBLIC
SET LOCAL ROLE moe_tap_public;
SELECT throws_ok($$CALL moe_train('tap_open', model_name => 'x', epochs => 1)$$, '42501', NULL,
                 'PUBLIC may not train');
SELECT throws_ok($$CALL moe_cross_validate('tap_open', 1)$$, '42501', NULL, 'PUBLIC may not cross-validate');
SELECT throws_ok($$CALL moe_sweep('tap_open', '{"lr": [0.01]}')$$, '42501', NULL, 'PUBLIC may not sweep');
SELECT throws_ok(format('SELECT moe_import_model(%L)', (SELECT data FROM dirs) || '/x.ckpt'), '42501', NULL,
                 'PUBLIC may not import');
SELECT throws_ok($$SELECT moe_export_model('tap_priv', '/tmp/x.ckpt')$$, '42501', NULL, 'PUBLIC may not export');
SELECT throws_ok(format('SELECT moe_drop_model(%s)', (SELECT id FROM priv_ids)), '42501', NULL,
                 'PUBLIC may not drop a model');
SELECT throws_ok(format('SELECT moe_deploy(%L, %s)', 'tap_priv', (SELECT id FROM priv_ids)), '42501', NULL,
                 'PUBLIC may not re-point a name');
SELECT throws_ok($$SELECT moe_create_dataset('x', 'moe_tap_open')$$, '42501', NULL, 'PUBLIC may not register datasets');
SELECT throws_ok($$SELECT moe_predict(drug_vec, target_vec, 'tap_priv') FROM probe$$, '42501', NULL,
                 'PUBLIC may not predict');
SELECT throws_ok($$SELECT count(*) FROM moe.models$$, '42501', NULL, 'PUBLIC may not read the model table');
SELECT is(array_length(moe_featurize_protein('ACDEFGHIK', 1), 1), 20, 'PUBLIC may featurize');
SELECT is((moe_router_stats(ARRAY[0.5, 0.5]::float8[], ARRAY[5, 5]::bigint[])).status, 'balanced',
          'PUBLIC may compute router statistics');
SELECT is((SELECT (moe_usage(ARRAY[0.5, 0.5]::real[], ARRAY[g]::integer[])).status
             FROM generate_series(0, 1) g), 'balanced', 'PUBLIC may aggregate expert usage');
RESET ROLE;

-- ---- moe_reader
SET LOCAL ROLE moe_tap_reader;
SELECT is((SELECT moe_predict(drug_vec, target_vec, 'tap_priv') FROM probe), (SELECT p FROM expected),
          'a reader may predict by name');
SELECT is((SELECT moe_predict(drug_vec, target_vec, (SELECT id FROM priv_ids)) FROM probe), (SELECT p FROM expected),
          'a reader may predict by id');
SELECT is((SELECT count(*) FROM probe, moe_route(drug_vec, target_vec, 'tap_priv')), 4::bigint, 'a reader may route');
SELECT is((SELECT n FROM moe_evaluate('tap_priv', 'tap_open', 'all')), 600::bigint,
          'a reader may evaluate on a dataset it can read');
SELECT throws_ok($$SELECT * FROM moe_evaluate('tap_priv', 'tap_closed', 'all')$$, '42501', NULL,
                 'a reader evaluating on a relation it cannot read gets 42501');
SELECT lives_ok($$SELECT * FROM moe.experiment_comparison, moe.training_progress, moe.expert_usage LIMIT 1$$,
                'a reader may read the dashboards');
SELECT lives_ok($$SELECT * FROM moe_cache()$$, 'a reader may look at the cache');
SELECT lives_ok($$CALL moe_score('tap_priv', 'moe_tap_open', 'moe_tap_scored', protein_column => 'target_vec')$$,
                'a reader may score a table it can read into a table of its own');
SELECT throws_ok($$CALL moe_train('tap_open', model_name => 'x', epochs => 1)$$, '42501', NULL,
                 'a reader may not train');
SELECT throws_ok(format('SELECT moe_deploy(%L, %s)', 'tap_priv', (SELECT id FROM priv_ids)), '42501', NULL,
                 'a reader may not re-point a name');
SELECT throws_ok(format('SELECT moe_drop_model(%s)', (SELECT id FROM priv_ids)), '42501', NULL,
                 'a reader may not drop a model');
SELECT throws_ok($$INSERT INTO moe.deployments (name, model_id) VALUES ('sneaky', 1)$$, '42501', NULL,
                 'a reader may not write moe.deployments directly');
SELECT throws_ok($$SELECT moe_cache_clear('server')$$, '42501', NULL, 'a reader may not empty the caches');
RESET ROLE;

-- ---- moe_trainer
SET LOCAL ROLE moe_tap_trainer;
SELECT lives_ok($$CALL moe_train('tap_open', model_name => 'tap_by_trainer', epochs => 1, batch_size => 64,
                                 drug_hidden => '{16}', protein_hidden => '{16}', gate_hidden => '{16}',
                                 expert_hidden => '{16}')$$,
                'a trainer may train on a dataset it can SELECT');
SELECT is((SELECT created_by::text FROM moe.models WHERE name = 'tap_by_trainer'), 'moe_tap_trainer',
          'the model row records the trainer');
SELECT throws_ok($$CALL moe_train('tap_closed', model_name => 'tap_closed_model', epochs => 1)$$, '42501', NULL,
                 'a trainer gets 42501 on a relation it cannot SELECT (read with the caller''s privileges)');
SELECT is((SELECT count(*) FROM moe.models WHERE name = 'tap_closed_model'), 0::bigint, 'and no model is made');
SELECT throws_ok($$CALL moe_cross_validate('tap_closed', 1, 'tap_closed_cv', '{"epochs": 1}')$$, '42501', NULL,
                 'cross-validation reads with the caller''s privileges too');
SELECT lives_ok($$SELECT moe_create_dataset('tap_mine', 'moe_tap_open', protein_column => 'target_vec')$$,
                'a trainer may register a dataset');
SELECT lives_ok($$SELECT moe_drop_dataset('tap_mine')$$, 'and drop it');
SELECT lives_ok(format('SELECT moe_deploy(%L, %s)', 'tap_by_trainer', (SELECT id FROM priv_ids)),
                'a trainer may re-point a name it owns');
SELECT throws_ok(format('SELECT moe_deploy(%L, %s)', 'tap_priv',
                        (SELECT max(id) FROM moe.models WHERE name = 'tap_by_trainer')),
                 '42501', 'deployment "tap_priv" belongs to role postgres',
                 'a trainer may not re-point a name another role owns (docs/security.md)');
SELECT throws_ok(format('SELECT moe_drop_model(%s)', (SELECT id FROM priv_ids)), '42501',
                 format('model %s belongs to role "postgres"', (SELECT id FROM priv_ids)),
                 'a trainer may not drop a model another role made');
SELECT lives_ok(format('SELECT moe_deploy(%L, %s); SELECT moe_drop_model(%s)', 'tap_by_trainer',
                       (SELECT id FROM priv_ids), (SELECT max(id) FROM moe.models WHERE name = 'tap_by_trainer')),
                'a trainer may drop an undeployed model of its own');
SELECT throws_ok($$SELECT moe_export_model('tap_priv', '/tmp/moe_tap_x.ckpt')$$, '42501',
                 'permission denied to export a model to a server file',
                 'export still needs pg_write_server_files');
SELECT throws_ok(format('SELECT moe_import_model(%L)', (SELECT data FROM dirs) || '/x.ckpt'), '42501',
                 'permission denied to import a model from a server file', 'import still needs pg_read_server_files');
RESET ROLE;
GRANT pg_write_server_files, pg_read_server_files TO moe_tap_trainer;
SET LOCAL ROLE moe_tap_trainer;
SELECT lives_ok(format('SELECT moe_export_model(%L, %L)', 'tap_priv', (SELECT data FROM dirs) || '/priv.ckpt'),
                'with pg_write_server_files a trainer may export');
SELECT lives_ok(format('SELECT moe_import_model(%L, %L)', (SELECT data FROM dirs) || '/priv.ckpt', 'tap_imported'),
                'with pg_read_server_files a trainer may import');
RESET ROLE;

-- ---- a model in the shared cache is no way around the table's privileges
GRANT EXECUTE ON FUNCTION moe_predict(real[], real[], bigint) TO moe_tap_exec;
CREATE TEMP TABLE cached AS
SELECT d.model_id, moe_predict(drug_vec, target_vec, d.model_id) AS p   -- in the cache now
  FROM probe, moe.deployments d WHERE d.name = 'tap_priv';
GRANT SELECT ON cached TO moe_tap_exec;
SET LOCAL ROLE moe_tap_exec;
SELECT throws_ok(format('SELECT moe_predict(drug_vec, target_vec, %s::bigint) FROM probe', (SELECT model_id FROM cached)),
                 '42501', NULL,
                 'EXECUTE alone does not serve a cached model to a role that may not read moe.models');
RESET ROLE;

-- ---- the install script is safe to run again where the roles exist
SELECT lives_ok($$DROP EXTENSION moe_pg CASCADE; CREATE EXTENSION moe_pg$$,
                're-creating the extension with the roles present works');
SELECT ok(has_function_privilege('moe_reader', 'moe_predict(real[], real[], text)', 'EXECUTE')
          AND NOT has_function_privilege('public', 'moe_predict(real[], real[], text)', 'EXECUTE'),
          'and grants the same again');

SELECT * FROM finish();
ROLLBACK;
