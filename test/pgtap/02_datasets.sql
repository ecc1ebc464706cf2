-- Synthetic data and the dataset registry.
BEGIN;
SELECT plan(28);

CREATE TEMP TABLE syn AS SELECT * FROM moe_synthetic_dta(20, 12, 3, seed => 5);

SELECT is((SELECT count(*) FROM syn), 240::bigint, 'one row per drug-target pair');
SELECT is((SELECT count(DISTINCT cluster) FROM syn), 3::bigint, 'targets fall into the requested clusters');
SELECT is((SELECT array_length(drug_vec, 1) FROM syn LIMIT 1), 32, 'drug vectors have the default 32 values');
SELECT ok((SELECT bool_and(split IN ('train', 'valid', 'test')) FROM syn), 'every pair has a split');
SELECT ok((SELECT count(*) FILTER (WHERE split = 'train') BETWEEN 140 AND 200 FROM syn), 'about 70 % of pairs train');
SELECT ok((SELECT min(label) >= 4 AND max(label) <= 10 FROM syn), 'labels look like pKd values');
SELECT is((SELECT md5(string_agg(label::text || split, ',' ORDER BY drug_id, target_id)) FROM syn),
          (SELECT md5(string_agg(label::text || split, ',' ORDER BY drug_id, target_id))
             FROM moe_synthetic_dta(20, 12, 3, seed => 5)),
          'the same seed gives the same data');
SELECT isnt((SELECT md5(string_agg(label::text, ',' ORDER BY drug_id, target_id)) FROM syn),
            (SELECT md5(string_agg(label::text, ',' ORDER BY drug_id, target_id))
               FROM moe_synthetic_dta(20, 12, 3, seed => 6)),
            'another seed gives other data');
SELECT throws_ok($$SELECT * FROM moe_synthetic_dta(0, 10, 2)$$, '22023', NULL, 'n_drugs 0 is refused');
SELECT throws_ok($$SELECT * FROM moe_synthetic_dta(10, 10, 11)$$, '22023', NULL, 'more clusters than targets is refused');
SELECT throws_ok($$SELECT * FROM moe_synthetic_dta(10, 10, 2, seed => -1)$$, '22023', NULL, 'a negative seed is refused');

SELECT lives_ok($$SELECT moe_create_dataset('syn', 'syn', protein_column => 'target_vec',
                                            drug_key_column => 'drug_id', protein_key_column => 'target_id')$$,
                'a relation registers as a dataset');
SELECT is((SELECT relation FROM moe.datasets WHERE name = 'syn'), 'syn'::regclass, 'the registry records it');
SELECT throws_ok($$SELECT moe_create_dataset('syn', 'syn', protein_column => 'target_vec')$$, '42710',
                 'dataset "syn" already exists', 'names are unique');
SELECT lives_ok($$SELECT moe_create_dataset('syn', 'syn', protein_column => 'target_vec', replace => true)$$,
                'replace => true redefines a dataset');
SELECT throws_ok($$SELECT moe_create_dataset('bad', 'syn')$$, '42703', NULL,
                 'a missing vector column is named');
SELECT throws_ok($$SELECT moe_create_dataset('bad', 'syn', drug_column => 'label', protein_column => 'target_vec')$$,
                 '42804', NULL, 'vectors must be real[]');
SELECT throws_ok($$SELECT moe_create_dataset('bad', 'syn', protein_column => 'target_vec', label_column => 'split')$$,
                 '42804', 'label_column "split" must be numeric, not text', 'labels must be numbers');
SELECT throws_ok($$SELECT moe_create_dataset('bad', 'syn', protein_column => 'target_vec', drug_key_column => 'drug_id')$$,
                 '22023', NULL, 'keys come in pairs');
SELECT throws_ok($$SELECT moe_create_dataset('bad', 'no_such_table')$$, '42P01', NULL, 'an unknown relation is an error');
SELECT throws_ok($$SELECT moe_drop_dataset('no such dataset')$$, '42704', NULL, 'dropping an unknown dataset is an error');
SELECT lives_ok($$SELECT moe_drop_dataset('syn')$$, 'a dataset can be dropped');

-- the benchmark loader checks its arguments before touching any file
SELECT throws_ok($$SELECT moe_load_dta('/nonexistent/davis')$$, '58P01', NULL, 'a missing directory is an error');
SELECT throws_ok($$SELECT moe_load_dta('/tmp', 'davis', 'lukewarm')$$, '22023',
                 'unknown setting "lukewarm" (valid: warm, novel_drug, novel_prot, novel_pair, setting1)',
                 'an unknown split setting lists the valid ones');
SELECT throws_ok($$SELECT moe_load_dta('/tmp', 'x; DROP TABLE moe.models')$$, '22023', NULL,
                 'a dataset name must be a plain identifier');
SELECT throws_ok($$SELECT moe_load_dta('/tmp', 'davis', drug_features => 'morgan')$$, '22023',
                 'unknown drug_features "morgan" (valid: ngram, ecfp)', 'an unknown drug featurizer is refused');
SELECT throws_ok($$SELECT moe_load_dta(NULL)$$, '22004', NULL, 'NULL arguments are refused');
SELECT throws_ok($$SELECT * FROM moe_model_info(-1::bigint)$$, '42704', 'model -1 does not exist', 'model info of an unknown model');

SELECT * FROM finish();
ROLLBACK;
