-- What a user meets after training (issue 16): models that record their
-- featurizers and score text, a default model, screening, deployment
-- modes with history and rollback, stored models by name, max_seconds,
-- sweep names and the experiment views.
BEGIN;
SELECT plan(68);
SET LOCAL client_min_messages = error;

-- twelve drugs and eight proteins, their vectors made by featurizers the
-- dataset records
CREATE TEMP TABLE mols (drug_id text, smiles text);
INSERT INTO mols VALUES ('d01', 'CCO'), ('d02', 'c1ccccc1O'), ('d03', 'CC(=O)Oc1ccccc1C(=O)O'),
    ('d04', 'CN1CCC[C@H]1c1cccnc1'), ('d05', 'CC(C)Cc1ccc(cc1)C(C)C(=O)O'), ('d06', 'O=C(O)c1ccccc1O'),
    ('d07', 'CCN(CC)CCOC(=O)c1ccc(N)cc1'), ('d08', 'c1ccc2ccccc2c1'), ('d09', 'CC(=O)Nc1ccc(O)cc1'),
    ('d10', 'CCCCCCCCO'), ('d11', 'Clc1ccc(Cl)cc1'), ('d12', 'NC(=O)c1ccccc1');
CREATE TEMP TABLE prots (target_id text, sequence text);
INSERT INTO prots VALUES ('p1', 'MKTAYIAKQRQISFVKSHFSRQ'), ('p2', 'MSLLTEVETPIRNEWGCRCNDS'),
    ('p3', 'MADEEKLPPGWEKRMSRSSGRV'), ('p4', 'MGSSHHHHHHSSGLVPRGSHMA'), ('p5', 'MTEYKLVVVGAGGVGKSALTIQ'),
    ('p6', 'MQIFVKTLTGKTITLEVEPSDT'), ('p7', 'MKWVTFISLLFLFSSAYSRGVF'), ('p8', 'MALWMRLLPLLALLALWGPDPA');
CREATE TEMP TABLE pairs AS
SELECT m.drug_id, p.target_id, m.smiles, p.sequence,
       moe_featurize_ecfp(m.smiles, dim => 256) AS drug_vec,
       moe_featurize_protein(p.sequence, 2) AS protein_vec,
       (length(m.smiles) % 7 + length(p.sequence) % 5 + ascii(right(p.sequence, 1)) % 3)::real AS label,
       CASE WHEN hashtext(m.drug_id || p.target_id) % 10 IN (0, 1) THEN 'test'
            WHEN hashtext(m.drug_id || p.target_id) % 10 IN (2, 3) THEN 'valid' ELSE 'train' END AS split
  FROM mols m CROSS JOIN prots p;
SELECT moe_create_dataset('fz', 'pairs', drug_key_column => 'drug_id', protein_key_column => 'target_id',
                          drug_featurizer => '{"featurizer": "ecfp", "dim": 256}',
                          protein_featurizer => '{"featurizer": "protein", "k": 2}');
\set tiny '{"drug_hidden": [8], "protein_hidden": [8], "gate_hidden": [8], "expert_hidden": [8], "epochs": 3}'
-- trained long enough to beat the throwaway runs below on the same test rows
CALL moe_train('fz', options => '{"drug_hidden": [8], "protein_hidden": [8], "gate_hidden": [8], "expert_hidden": [8], "epochs": 40, "lr": 0.01}');
CREATE TEMP TABLE m AS SELECT id FROM moe.models WHERE name = 'fz';

-- 1. featurizers recorded, text scored like vectors
SELECT is((SELECT drug_featurizer FROM moe.datasets WHERE name = 'fz'),
          '{"featurizer": "ecfp", "radius": 2, "dim": 256, "counts": true}'::jsonb,
          'the dataset keeps its featurizer spec written out in full');
SELECT is((SELECT config -> 'protein_featurizer' FROM moe.models WHERE name = 'fz'),
          '{"featurizer": "protein", "k": 2}'::jsonb, 'and the model records it in its config');
SELECT is((SELECT count(*) FROM pairs p, m
            WHERE moe_predict(p.smiles, p.sequence, m.id) = moe_predict(p.drug_vec, p.protein_vec, m.id)),
          96::bigint, 'SMILES and sequence give the bits of the vectors, every pair (by id)');
SELECT is((SELECT count(*) FROM pairs p
            WHERE moe_predict(p.smiles, p.sequence, 'fz') = moe_predict(p.drug_vec, p.protein_vec, 'fz')),
          96::bigint, 'by name too');
SELECT is((SELECT array_agg(r.weight ORDER BY r.expert) FROM moe_route('CCO', 'MKTAYIAKQRQISFVKSHFSRQ', 'fz') r),
          (SELECT array_agg(r.weight ORDER BY r.expert) FROM pairs p, moe_route(p.drug_vec, p.protein_vec, 'fz') r
            WHERE p.drug_id = 'd01' AND p.target_id = 'p1'),
          'moe_route over text routes as over the vectors');
SELECT throws_ok($$SELECT moe_predict('C1CC', 'MKTAYIAKQRQ', 'fz')$$, '22P02', NULL,
                 'a SMILES the featurizer cannot read is an error');

-- 2. vectors that cannot fit the model's featurizer
SELECT throws_like($$SELECT moe_predict(moe_featurize_ecfp('CCO', dim => 512), moe_featurize_protein('MKT', 2), 'fz')$$,
                   '%has 512 elements, model % expects 256%', 'a vector of another length names the model''s expectation');
SELECT throws_ok($$SELECT moe_predict(moe_featurize_ecfp('CCO', dim => 512), moe_featurize_protein('MKT', 2), 'fz')$$,
                 '22000', NULL, 'with SQLSTATE 22000');
SELECT throws_like($$SELECT moe_predict(moe_featurize_ecfp('CCO', dim => 256, counts => false), moe_featurize_protein('MKT', 2), 'fz')$$,
                   '%cannot come from the featurizer model % was trained with%',
                   'bit fingerprints fed to a counted-fingerprint model are refused');
SELECT throws_like($$SELECT moe_predict(moe_featurize_ecfp('CCO', dim => 256), moe_featurize_smiles('CCCCCCCCCC', 420), 'fz')$$,
                   '%protein vector cannot come from the featurizer%', 'so is a protein vector that is no composition');

-- 3. a model of user vectors cannot featurize text
CREATE TEMP TABLE uv AS SELECT * FROM moe_synthetic_dta(20, 15, 2, seed => 3);
SELECT moe_create_dataset('uv', 'uv', protein_column => 'target_vec');
CALL moe_train('uv', options => :'tiny');
SELECT is((SELECT config -> 'drug_featurizer' FROM moe.models WHERE name = 'uv'), 'null'::jsonb,
          'a dataset without specs records user vectors');
SELECT throws_ok($$SELECT moe_predict('CCO', 'MKT', 'uv')$$, '42809',
                 'model ' || (SELECT id FROM moe.models WHERE name = 'uv') || ' was trained on drug vectors supplied by the user: it cannot featurize SMILES text',
                 'text against a user-vector model says why not');

-- 4. moe_pg.default_model
SELECT throws_ok($$SELECT moe_predict(drug_vec, protein_vec) FROM pairs LIMIT 1$$, '42704',
                 'no model given and moe_pg.default_model is not set', 'no default model: an error');
SET LOCAL moe_pg.default_model = 'fz';
SELECT is((SELECT count(*) FROM pairs p WHERE moe_predict(p.drug_vec, p.protein_vec) = moe_predict(p.drug_vec, p.protein_vec, 'fz')),
          96::bigint, 'two-argument moe_predict uses the default model');
SELECT is(moe_predict('CCO', 'MKTAYIAKQRQISFVKSHFSRQ'), moe_predict('CCO', 'MKTAYIAKQRQISFVKSHFSRQ', 'fz'),
          'over text too');
SELECT is((SELECT count(*) FROM pairs p, moe_route(p.drug_vec, p.protein_vec) r WHERE p.drug_id = 'd01'), 32::bigint,
          'two-argument moe_route');
DO $$ BEGIN PERFORM set_config('moe_pg.default_model', (SELECT id::text FROM m), true); END $$;
SELECT is(moe_predict('CCO', 'MKTAYIAKQRQISFVKSHFSRQ'), moe_predict('CCO', 'MKTAYIAKQRQISFVKSHFSRQ', 'fz'),
          'the setting may be a model id');
SET LOCAL moe_pg.default_model = 'no_such_model';
SELECT throws_ok($$SELECT moe_predict('CCO', 'MKT')$$, '42704', 'model "no_such_model" does not exist',
                 'a default naming no model: an error');
RESET moe_pg.default_model;
SELECT throws_ok($$SELECT moe_predict('CCO', 'MKT', 'nope')$$, '42704', 'model "nope" does not exist', 'unknown model');
SELECT is(moe_predict(NULL::text, 'MKT', 'fz'), NULL, 'NULL input: NULL (strict)');

-- 5. moe_screen
CREATE TEMP TABLE library AS SELECT DISTINCT drug_id, smiles, drug_vec AS vec FROM pairs;
CREATE TEMP TABLE seq AS SELECT protein_vec AS v FROM pairs WHERE target_id = 'p3' LIMIT 1;
SELECT is((SELECT array_agg(key ORDER BY rank) FROM moe_screen('fz', (SELECT v FROM seq), 'library', 5)),
          (SELECT array_agg(drug_id ORDER BY s DESC, drug_id) FROM
             (SELECT l.drug_id, moe_predict(l.vec, (SELECT v FROM seq), 'fz') AS s FROM library l
               ORDER BY s DESC, l.drug_id LIMIT 5) t),
          'the top five are those moe_predict ranks highest');
SELECT is((SELECT array_agg(score ORDER BY rank) FROM moe_screen('fz', (SELECT v FROM seq), 'library', 5)),
          (SELECT array_agg(s ORDER BY s DESC) FROM
             (SELECT moe_predict(l.vec, (SELECT v FROM seq), 'fz') AS s FROM library l ORDER BY s DESC LIMIT 5) t),
          'with moe_predict''s scores, bit for bit');
SELECT is((SELECT array_agg(key ORDER BY rank) FROM moe_screen('fz', 'MADEEKLPPGWEKRMSRSSGRV', 'library', 5,
                                                              drug_column => 'smiles')),
          (SELECT array_agg(key ORDER BY rank) FROM moe_screen('fz', (SELECT v FROM seq), 'library', 5)),
          'a sequence target and a SMILES column give the same ranking');
SELECT is((SELECT count(*) FROM moe_screen((SELECT id FROM m), (SELECT v FROM seq), 'library', 100)), 12::bigint,
          'n larger than the library returns the library');
SELECT throws_ok($$SELECT * FROM moe_screen('fz', (SELECT v FROM seq), 'library', 0)$$, '22023',
                 'n must be between 1 and 1000000, not 0', 'n = 0 is an error');
SELECT throws_ok($$SELECT * FROM moe_screen('fz', (SELECT v FROM seq), 'library', NULL)$$, '22004', NULL, 'NULL n');
SELECT throws_ok($$SELECT * FROM moe_screen('fz', (SELECT v FROM seq), 'library', 5, key_column => 'nope')$$,
                 '42703', NULL, 'a missing key column');
SELECT throws_ok($$SELECT * FROM moe_screen('fz', (SELECT v FROM seq), 'library', 5, drug_column => 'drug_id')$$,
                 '22P02', NULL, 'a text column that holds no SMILES fails to featurize');
SELECT throws_ok($$SELECT * FROM moe_screen('nope', (SELECT v FROM seq), 'library', 5)$$, '42704', NULL,
                 'an unknown model');

-- 6. deployment modes, history, rollback
SELECT is((SELECT model_id FROM moe.deployments WHERE name = 'fz'), (SELECT id FROM m),
          'if_better (the default) deploys a first model');
CALL moe_train('fz', deploy => 'never', options => :'tiny');
SELECT is((SELECT model_id FROM moe.deployments WHERE name = 'fz'), (SELECT id FROM m), 'never leaves the name alone');
-- the same run again: the same test MSE, which is not better
CALL moe_train('fz', options => '{"drug_hidden": [8], "protein_hidden": [8], "gate_hidden": [8], "expert_hidden": [8], "epochs": 40, "lr": 0.01}');
SELECT is((SELECT model_id FROM moe.deployments WHERE name = 'fz'), (SELECT id FROM m),
          'if_better keeps the name unless the new model tests better');
CALL moe_train('fz', deploy => 'always', options => '{"drug_hidden": [8], "protein_hidden": [8], "gate_hidden": [8], "expert_hidden": [8], "epochs": 1, "lr": 1e-6}');
SELECT is((SELECT model_id FROM moe.deployments WHERE name = 'fz'), (SELECT max(id) FROM moe.models WHERE name = 'fz'),
          'always deploys the new one');
SELECT is((SELECT count(*) FROM moe.deployment_history WHERE name = 'fz'), 2::bigint, 'history: two deployments');
SELECT is((SELECT previous_model_id FROM moe.deployment_history WHERE name = 'fz' ORDER BY id DESC LIMIT 1),
          (SELECT id FROM m), 'the last one says what it replaced');
SELECT is(moe_rollback('fz'), (SELECT id FROM m), 'moe_rollback returns the model it went back to');
SELECT is((SELECT model_id FROM moe.deployments WHERE name = 'fz'), (SELECT id FROM m), 'and the name points there');
SELECT is((SELECT action FROM moe.deployment_history WHERE name = 'fz' ORDER BY id DESC LIMIT 1), 'rollback',
          'recorded as a rollback');
SELECT throws_ok($$SELECT moe_rollback('fz')$$, '55000', 'deployment "fz" has no earlier model to roll back to',
                 'nothing before the first model');
SELECT throws_ok($$SELECT moe_rollback('nope')$$, '42704', 'no deployment named "nope"', 'unknown name');
SELECT throws_ok($$SELECT moe_rollback(NULL)$$, '22004', NULL, 'NULL name');
SELECT throws_ok($$CALL moe_train('fz', deploy => 'sometimes')$$, '22023',
                 'unknown deploy "sometimes" (valid: always, if_better, never)', 'an unknown deploy mode');
CALL moe_train('fz', model_name => 'json_deploy', options => '{"deploy": false, "epochs": 1, "drug_hidden": [8], "protein_hidden": [8], "gate_hidden": [8], "expert_hidden": [8]}');
SELECT is((SELECT count(*) FROM moe.deployments WHERE name = 'json_deploy'), 0::bigint,
          'options {"deploy": false} means never');
SELECT throws_like($$SELECT moe_predict('CCO', 'MKT', 'json_deploy')$$, 'model "json_deploy" is not deployed',
                   'a stored model that no name points at says so');
SELECT is((SELECT count(*) FROM pairs WHERE moe_predict(smiles, sequence, (SELECT id FROM moe.models WHERE name = 'json_deploy')) IS NOT NULL),
          96::bigint, 'and is usable by id');
SELECT lives_ok($$SELECT moe_deploy('json_deploy', (SELECT id FROM moe.models WHERE name = 'json_deploy'))$$,
                'moe_deploy points a name at any stored model');
SELECT is((SELECT count(*) FROM moe.deployment_history WHERE name = 'json_deploy' AND previous_model_id IS NULL), 1::bigint,
          'a new name has no previous model');

-- 7. max_seconds
CALL moe_train('fz', model_name => 'timed', max_seconds => 0.0001, deploy => 'never',
               options => '{"drug_hidden": [8], "protein_hidden": [8], "gate_hidden": [8], "expert_hidden": [8], "epochs": 50}');
SELECT is((SELECT epochs_run FROM moe.training_runs WHERE model_name = 'timed'), 1, 'max_seconds stops after the epoch that passes it');
SELECT is((SELECT status FROM moe.training_runs WHERE model_name = 'timed'), 'completed', 'the run completes');
SELECT ok((SELECT message LIKE 'stopped by max_seconds%' FROM moe.training_runs WHERE model_name = 'timed'), 'and says why');
SELECT isnt((SELECT model_id FROM moe.training_runs WHERE model_name = 'timed'), NULL, 'with its best epoch kept');
SELECT is((SELECT config -> 'max_seconds' FROM moe.models WHERE name = 'timed'), '0.0001'::jsonb, 'recorded in the config');
SELECT throws_ok($$CALL moe_train('fz', max_seconds => 0)$$, '22023',
                 'max_seconds must be a positive number of seconds, or NULL for no limit, not 0', 'max_seconds 0');

-- 8. sweeps, cross-validation and the dashboards
CALL moe_sweep('fz', '{"lr": [0.01, 0.001], "top_k": [1]}', model_name => 'sw', options => :'tiny');
SELECT is((SELECT array_agg(model_name ORDER BY run_id) FROM moe.experiment_comparison WHERE model_name LIKE 'sw\_%'),
          ARRAY['sw_1[lr=0.01,top_k=1]', 'sw_2[lr=0.001,top_k=1]'], 'sweep models carry their grid point in the name');
SELECT is((SELECT array_agg(params ORDER BY run_id) FROM moe.experiment_comparison WHERE model_name LIKE 'sw\_%'),
          ARRAY['{"lr": 0.01, "top_k": 1}', '{"lr": 0.001, "top_k": 1}']::jsonb[],
          'experiment_comparison.params holds the point as written');
SELECT is((SELECT count(*) FROM moe.experiment_comparison WHERE model_name = 'fz' AND params IS NULL), 4::bigint,
          'runs outside a sweep have no params');
CREATE TEMP TABLE uvcv AS
SELECT u.drug_id, u.target_id, u.drug_vec, u.target_vec, u.label, k AS fold,
       CASE u.drug_id % 2 WHEN k THEN 'test' ELSE 'train' END AS split
  FROM uv u CROSS JOIN generate_series(0, 1) k;
SELECT moe_create_dataset('uvcv', 'uvcv', protein_column => 'target_vec', fold_column => 'fold');
CALL moe_cross_validate('uvcv', folds => 2, model_name => 'cv', options => :'tiny');
SELECT throws_ok($$SELECT moe_predict('CCO', 'MKT', 'cv_fold0')$$, '42704', NULL, 'cross-validation models are not deployed');
SELECT is((SELECT pg_typeof(fold)::text FROM moe.cross_validation_results LIMIT 1), 'integer',
          'cross_validation_results.fold is an integer');
SELECT is((SELECT count(*) FROM moe.cross_validation_results r JOIN moe.experiments e ON e.id = r.experiment_id
            WHERE e.model_name = 'cv'), 2::bigint, 'one row per fold');
SELECT is((SELECT s.folds FROM moe.cross_validation_summary s JOIN moe.experiments e ON e.id = s.experiment_id
            WHERE e.model_name = 'cv'), 2, 'the summary counts the folds');
SELECT is((SELECT round(mse::numeric, 6) FROM moe.cross_validation_summary s JOIN moe.experiments e ON e.id = s.experiment_id
            WHERE e.model_name = 'cv'),
          (SELECT round(avg(mse)::numeric, 6) FROM moe.cross_validation_results r JOIN moe.experiments e ON e.id = r.experiment_id
            WHERE e.model_name = 'cv'), 'and averages them');
SELECT is((SELECT count(*) FROM moe.expert_usage_history h JOIN m ON h.model_id = m.id),
          (SELECT 4 * epochs_run::bigint FROM moe.training_runs r JOIN m ON r.model_id = m.id),
          'expert_usage_history: one row per epoch and expert');
SELECT ok((SELECT bool_and(recorded_at IS NOT NULL) FROM moe.expert_usage_history), 'each with its time');

-- 9. featurizer specs
SELECT is(moe_featurizer_spec('{"featurizer": "smiles"}', 'drug'), '{"featurizer": "smiles", "dim": 1024, "max_n": 3}'::jsonb,
          'moe_featurizer_spec writes out the defaults');
SELECT is(moe_featurizer_spec(NULL, 'drug'), NULL, 'NULL: vectors supplied by the user');
SELECT throws_ok($$SELECT moe_featurizer_spec('{"featurizer": "ecfp"}', 'protein')$$, '22023',
                 'protein featurizer: featurizer "ecfp" makes drug vectors, not protein vectors', 'the wrong side');
SELECT throws_ok($$SELECT moe_featurizer_spec('{"featurizer": "ecfp", "k": 3}', 'drug')$$, '22023',
                 'drug featurizer: featurizer takes no parameter "k"', 'a parameter the featurizer does not take');
SELECT throws_ok($$SELECT moe_featurizer_spec('{"featurizer": "morgan"}', 'drug')$$, '22023',
                 'drug featurizer: unknown featurizer "morgan"', 'an unknown featurizer');

SELECT * FROM finish();
ROLLBACK;
