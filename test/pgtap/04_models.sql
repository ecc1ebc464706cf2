-- Managing models: immutability, deployment, export and import, privileges.
BEGIN;
SELECT plan(36);
SET LOCAL client_min_messages = error;

CREATE TEMP TABLE syn AS SELECT * FROM moe_synthetic_dta(30, 20, 2, seed => 3);
SELECT moe_create_dataset('syn', 'syn', protein_column => 'target_vec');
CALL moe_train('syn', model_name => 'm', epochs => 2, batch_size => 64, drug_hidden => '{16}',
               protein_hidden => '{16}', gate_hidden => '{16}', expert_hidden => '{16}');
CREATE TEMP TABLE ids AS SELECT max(id) AS id FROM moe.models WHERE name = 'm';
CREATE TEMP TABLE probe AS SELECT drug_vec, target_vec FROM syn ORDER BY drug_id, target_id LIMIT 1;

SELECT throws_ok($$UPDATE moe.models SET checkpoint = '\x00' WHERE name = 'm'$$, '55000', NULL,
                 'a stored checkpoint cannot be changed');
SELECT lives_ok($$UPDATE moe.models SET metrics = metrics WHERE name = 'm'$$, 'other columns can be touched');

-- export, then import as a new row that predicts the same
SELECT cmp_ok(moe_export_model('m', current_setting('data_directory') || '/m.ckpt'), '>', 0::bigint,
              'export writes the checkpoint and returns its size');
SELECT ok(moe_import_model(current_setting('data_directory') || '/m.ckpt', 'm_copy') > (SELECT id FROM ids),
          'import makes a new model row');
SELECT is((SELECT moe_predict(drug_vec, target_vec, 'm_copy') FROM probe),
          (SELECT moe_predict(drug_vec, target_vec, 'm') FROM probe), 'the imported model predicts the same');
SELECT is((SELECT dataset FROM moe.models WHERE name = 'm_copy'), 'syn', 'import restores the dataset from the file');
SELECT is((SELECT config FROM moe.models WHERE name = 'm_copy'), (SELECT config FROM moe.models WHERE name = 'm'),
          'import restores the config from the file');
SELECT is((SELECT model_id FROM moe.deployments WHERE name = 'm_copy'), (SELECT max(id) FROM moe.models),
          'import deploys the name');
SELECT ok(moe_import_model(current_setting('data_directory') || '/m.ckpt', deploy => false) > 0,
          'import without a name takes the one stored in the file');

-- damaged files
CREATE TEMP TABLE lo AS SELECT lo_from_bytea(0, substr(checkpoint, 1, 1000)) AS oid FROM moe.models WHERE name = 'm' LIMIT 1;
SELECT lo_export(oid, current_setting('data_directory') || '/short.ckpt') FROM lo;
SELECT throws_ok(format('SELECT moe_import_model(%L, %L)', current_setting('data_directory') || '/short.ckpt', 'x'),
                 'XX001', NULL, 'a truncated file is refused');
TRUNCATE lo;
INSERT INTO lo SELECT lo_from_bytea(0, overlay(checkpoint PLACING '\xffff'::bytea FROM 3000)) FROM moe.models WHERE name = 'm' LIMIT 1;
SELECT lo_export(oid, current_setting('data_directory') || '/flipped.ckpt') FROM lo;
SELECT throws_ok(format('SELECT moe_import_model(%L, %L)', current_setting('data_directory') || '/flipped.ckpt', 'x'),
                 'XX001', NULL, 'a corrupted file is refused');
TRUNCATE lo;
INSERT INTO lo SELECT lo_from_bytea(0, 'this is not a model'::bytea);
SELECT lo_export(oid, current_setting('data_directory') || '/text.ckpt') FROM lo;
SELECT throws_ok(format('SELECT moe_import_model(%L, %L)', current_setting('data_directory') || '/text.ckpt', 'x'),
                 'XX001', NULL, 'a file that is not a checkpoint is refused');
SELECT throws_ok($$SELECT moe_import_model('/nonexistent/m.ckpt', 'x')$$, '58P01', NULL, 'a missing file is an error');
SELECT throws_ok($$SELECT moe_import_model('relative/m.ckpt', 'x')$$, '42602', NULL, 'relative paths are refused');
SELECT throws_ok($$SELECT moe_export_model('nobody', '/tmp/x.ckpt')$$, '42704', NULL, 'exporting an unknown model');

-- the same weights wherever the query runs: the by-id form with the
-- weights' fingerprint answers only when the model has those weights
CALL moe_train('syn', model_name => 'm_other', epochs => 1, batch_size => 64, seed => 9, drug_hidden => '{16}',
               protein_hidden => '{16}', gate_hidden => '{16}', expert_hidden => '{16}');
CREATE TEMP TABLE fp AS
SELECT (SELECT id FROM ids) AS id, (SELECT params_md5 FROM moe_model_info((SELECT id FROM ids))) AS md5,
       (SELECT params_md5 FROM moe_model_info('m_other')) AS other_md5;
SELECT is((SELECT moe_predict(drug_vec, target_vec, fp.id, fp.md5) FROM probe, fp),
          (SELECT moe_predict(drug_vec, target_vec, fp.id) FROM probe, fp),
          'with its own params_md5 a model predicts as by id');
SELECT throws_ok(format('SELECT moe_predict(drug_vec, target_vec, %s, %L) FROM probe', id, other_md5), '55000',
                 format('model %s on this server has other weights than asked for', id),
                 'with another model''s params_md5 it is refused, not answered') FROM fp;
SELECT throws_ok(format('SELECT moe_predict(drug_vec, target_vec, %s, %L) FROM probe', id, upper(md5)), '22023',
                 'params_md5 must be 32 lowercase hexadecimal digits',
                 'a params_md5 that is not 32 lowercase hex digits is refused') FROM fp;
SELECT is((SELECT moe_predict(drug_vec, target_vec, fp.id, NULL) FROM probe, fp), NULL,
          'a NULL params_md5 gives NULL (STRICT), as every other NULL argument');
SELECT throws_ok(format('SELECT moe_predict(drug_vec, target_vec, -1, %L) FROM probe', md5), '42704',
                 'model -1 does not exist', 'an unknown id with a fingerprint: the model is missing') FROM fp;
SELECT is((SELECT count(*) FROM (SELECT moe_predict(drug_vec, target_vec, fp.id, fp.md5) FROM syn, fp) s),
          (SELECT count(*) FROM syn), 'every row of a table scores through the check (the fingerprint is computed once)');

-- one id, two rows in one transaction: the first deleted, another model
-- imported under its id; the second is served, not the first one's cache
SELECT moe_export_model('m_other', current_setting('data_directory') || '/m_other.ckpt');
CREATE TEMP TABLE reused AS
SELECT moe_import_model(current_setting('data_directory') || '/m.ckpt', deploy => false) AS id;
SELECT is((SELECT moe_predict(drug_vec, target_vec, reused.id) FROM probe, reused),
          (SELECT moe_predict(drug_vec, target_vec, fp.id) FROM probe, fp), 'the copy of m is scored as m');
DELETE FROM moe.models WHERE id = (SELECT id FROM reused);
SELECT setval(pg_get_serial_sequence('moe.models', 'id'), (SELECT id FROM reused), false);
SELECT is(moe_import_model(current_setting('data_directory') || '/m_other.ckpt', deploy => false),
          (SELECT id FROM reused), 'm_other imported under the id the copy of m had');
SELECT is((SELECT moe_predict(drug_vec, target_vec, reused.id, fp.other_md5) FROM probe, reused, fp),
          (SELECT moe_predict(drug_vec, target_vec, 'm_other') FROM probe),
          'in the same transaction the id now scores as m_other, with m_other''s fingerprint');

SELECT throws_ok($$SELECT * FROM moe_distribute()$$, '0A000', 'moe_distribute needs the citus extension in this database',
                 'moe_distribute without Citus says what it needs');
SELECT ok(NOT has_function_privilege('public', 'moe_distribute(bigint)', 'EXECUTE'),
          'PUBLIC may not copy models to the workers');
-- the cluster's copies (Citus): without Citus an empty table, read by
-- readers like moe.models, written by nobody but moe_distribute's caller
SELECT is((SELECT count(*) FROM moe.model_copies), 0::bigint, 'moe.model_copies is empty without Citus');
SELECT ok(has_table_privilege('moe_reader', 'moe.model_copies', 'SELECT')
          AND NOT has_table_privilege('moe_trainer', 'moe.model_copies', 'INSERT')
          AND NOT has_table_privilege('moe_trainer', 'moe.model_copies', 'DELETE'),
          'moe_reader may read moe.model_copies, moe_trainer may not write it');
SELECT throws_ok(format('SELECT moe_predict(drug_vec, target_vec, %s::bigint) FROM probe', (SELECT max(id) + 1000 FROM moe.models)),
                 '42704', NULL, 'an id in neither moe.models nor (without Citus) any copy does not exist');

-- deployment and dropping
SELECT throws_ok(format('SELECT moe_drop_model(%s)', (SELECT id FROM ids)), '2BP01', NULL,
                 'a deployed model cannot be dropped');
SELECT throws_ok($$SELECT moe_deploy('m', -1)$$, '42704', NULL, 'deploying an unknown model');
SELECT lives_ok(format('SELECT moe_deploy(%L, %s)', 'm', (SELECT max(id) FROM moe.models WHERE name = 'm_copy')),
                'a name can be re-pointed');
SELECT lives_ok(format('SELECT moe_drop_model(%s)', (SELECT id FROM ids)), 'an undeployed model can be dropped');

-- file access is for roles that may touch server files anyway
CREATE ROLE moe_tap_nobody;
SET LOCAL ROLE moe_tap_nobody;
SELECT throws_ok($$SELECT moe_export_model('m', '/tmp/x.ckpt')$$, '42501', NULL, 'PUBLIC may not export');
RESET ROLE;
GRANT EXECUTE ON FUNCTION moe_import_model(text, text, boolean) TO moe_tap_nobody;
SET LOCAL ROLE moe_tap_nobody;
SELECT throws_ok($$SELECT moe_import_model('/tmp/x.ckpt')$$, '42501',
                 'permission denied to import a model from a server file', 'EXECUTE alone is not enough to read server files');
RESET ROLE;
SELECT ok(NOT has_function_privilege('public', 'moe_load_dta(text, text, text, integer, integer, boolean, text)', 'EXECUTE'),
          'PUBLIC may not load server files either');

SELECT * FROM finish();
ROLLBACK;
