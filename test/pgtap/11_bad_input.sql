-- Bad input, uniformly: every SQL entry point of moe_pg meets NULLs, empty,
-- multidimensional and huge arrays, wrong and mismatched dimensions, NaN
-- and infinities, unknown and malicious names, damaged checkpoints and bad
-- hyperparameters.  Each gets the SQLSTATE of docs/errors.md and a message
-- that names the problem; none crashes; a malicious name stays a name.
BEGIN;
SELECT plan(679);
SET LOCAL client_min_messages = error;

-- ---------------------------------------------------------------------------
-- Fixtures: a tiny model (8 + 8 inputs, 4 experts, top 2) and its data.
CREATE TEMP TABLE bi AS
SELECT * FROM moe_synthetic_dta(16, 8, 2, seed => 7, drug_dim => 8, target_dim => 8);
SELECT moe_create_dataset('bi', 'bi', protein_column => 'target_vec',
                          drug_key_column => 'drug_id', protein_key_column => 'target_id');
CALL moe_train('bi', model_name => 'bi_m', epochs => 1, batch_size => 64, seed => 1,
               drug_hidden => '{16}', protein_hidden => '{16}', gate_hidden => '{16}', expert_hidden => '{16}');
CREATE TEMP TABLE bi_id AS SELECT model_id AS id FROM moe.deployments WHERE name = 'bi_m';
-- the same pairs with a fold column, and with vectors of another length
CREATE TEMP TABLE bi_folds AS SELECT *, drug_id % 2 AS fold FROM bi;
SELECT moe_create_dataset('bi_folds', 'bi_folds', protein_column => 'target_vec', fold_column => 'fold');
CREATE TEMP TABLE bi_wide AS SELECT * FROM moe_synthetic_dta(6, 4, 2, seed => 7, drug_dim => 16, target_dim => 8);
SELECT moe_create_dataset('bi_wide', 'bi_wide', protein_column => 'target_vec');
-- a random 10,000-character name (too long for a btree key) and a repetitive one
CREATE TEMP TABLE long_name AS
SELECT (SELECT string_agg(md5(i::text), '') FROM generate_series(1, 313) i) AS random10k,
       repeat('n', 10000) AS plain10k;

-- ---------------------------------------------------------------------------
-- Every entry point is in this file: a new function must join the matrix.
SELECT set_eq(
    $$SELECT DISTINCT p.proname::text FROM pg_depend d JOIN pg_proc p ON p.oid = d.objid
       WHERE d.classid = 'pg_proc'::regclass AND d.refclassid = 'pg_extension'::regclass
         AND d.refobjid = (SELECT oid FROM pg_extension WHERE extname = 'moe_pg')$$,
    ARRAY['moe_featurize_smiles', 'moe_featurize_protein', 'moe_featurize_ecfp', 'moe_featurize_protein_triad',
          'moe_featurize_protein_cksaap', 'moe_create_dataset', 'moe_drop_dataset', 'moe_load_dta',
          'moe_synthetic_dta', 'moe_train', 'moe_cross_validate', 'moe_sweep', 'moe_predict', 'moe_route',
          'moe_evaluate', 'moe_deploy', 'moe_drop_model', 'moe_model_info', 'moe_export_model',
          'moe_import_model', 'moe_router_stats', 'moe_usage', 'moe_usage_transfn', 'moe_usage_combinefn',
          'moe_usage_serialfn', 'moe_usage_deserialfn', 'moe_usage_finalfn', 'moe_gate', 'moe_expert_outputs',
          'moe_routing', 'moe_specialization', 'moe_expert_profile', 'moe_expert_agreement',
          'moe_cluster_recovery', 'moe_report', 'moe_cache', 'moe_cache_clear', 'moe_predict_batch',
          'moe_predict_matrix', 'moe_score', 'models_are_immutable', 'forget_cached_model', 'check_owner',
          'guard_models', 'record_deployment', 'moe_featurizer_spec', 'moe_rollback', 'moe_screen', 'moe_distribute',
          'moe_predict_partition'],
    'every function, procedure and aggregate of the extension is exercised here');

-- ---------------------------------------------------------------------------
-- Featurizers (STRICT: NULL in, NULL out)
SELECT is(moe_featurize_smiles(NULL), NULL, 'moe_featurize_smiles(NULL) is NULL');
SELECT is(moe_featurize_smiles('CCO', NULL), NULL, 'moe_featurize_smiles with a NULL dim is NULL');
SELECT is(moe_featurize_protein(NULL), NULL, 'moe_featurize_protein(NULL) is NULL');
SELECT is(moe_featurize_ecfp(NULL), NULL, 'moe_featurize_ecfp(NULL) is NULL');
SELECT is(moe_featurize_protein_triad(NULL), NULL, 'moe_featurize_protein_triad(NULL) is NULL');
SELECT is(moe_featurize_protein_cksaap('ACDE', NULL), NULL, 'moe_featurize_protein_cksaap with a NULL gap is NULL');

SELECT throws_ok(format('SELECT %s', sql), code, msg, 'featurizer: ' || descr) FROM (VALUES
    ($$moe_featurize_smiles('')$$, '22P02', 'SMILES string is empty', 'empty SMILES'),
    ($$moe_featurize_ecfp('')$$, '22P02', 'SMILES string is empty', 'empty SMILES (ECFP)'),
    ($$moe_featurize_protein('')$$, '22P02', 'protein sequence is empty', 'empty sequence'),
    ($$moe_featurize_protein_triad('')$$, '22P02', 'protein sequence is empty', 'empty sequence (triad)'),
    ($$moe_featurize_protein_cksaap('')$$, '22P02', 'protein sequence is empty', 'empty sequence (CKSAAP)'),
    ($$moe_featurize_smiles('x''; DROP TABLE bi; --')$$, '22P02', 'invalid character "x" at position 1 of SMILES string',
     'SQL in a SMILES string is a parse error'),
    ($$moe_featurize_ecfp('C''; DROP TABLE bi; --')$$, '22P02', NULL, 'SQL in a SMILES string is a parse error (ECFP)'),
    ($$moe_featurize_protein('x''; DROP TABLE bi; --')$$, '22P02', 'invalid character "''" at position 2 of protein sequence',
     'SQL in a protein sequence is a parse error'),
    ($$moe_featurize_protein_triad(E'AC\x01D')$$, '22P02', NULL, 'a control character in a sequence'),
    ($$moe_featurize_smiles('CCO', 10000000)$$, '22023', 'dim must be between 1 and 1048576, not 10000000',
     'a ten-million-bucket fingerprint is refused at once'),
    ($$moe_featurize_smiles('CCO', 0)$$, '22023', 'dim must be between 1 and 1048576, not 0', 'zero buckets'),
    ($$moe_featurize_smiles('CCO', -1)$$, '22023', 'dim must be between 1 and 1048576, not -1', 'negative buckets'),
    ($$moe_featurize_smiles('CCO', 16, 0)$$, '22023', 'max_n must be between 1 and 8, not 0', 'n-gram order 0'),
    ($$moe_featurize_ecfp('CCO', 2, 10000000)$$, '22023', 'dim must be between 1 and 1048576, not 10000000',
     'a ten-million-bit ECFP is refused at once'),
    ($$moe_featurize_ecfp('CCO', -1)$$, '22023', 'radius must be between 0 and 4, not -1', 'negative radius'),
    ($$moe_featurize_protein('ACD', 0)$$, '22023', 'k must be between 1 and 3, not 0', 'k-mers of length 0'),
    ($$moe_featurize_protein('ACD', 99)$$, '22023', 'k must be between 1 and 3, not 99', 'k-mers of length 99'),
    ($$moe_featurize_protein_cksaap('ACDE', -1)$$, '22023', 'max_gap must be between 0 and 5, not -1', 'a negative gap'),
    ($$moe_featurize_ecfp(repeat('C', 100000))$$, '22P02',
     'SMILES string has more than 10000 atoms (atom 10001 at position 10001)', 'a 100,000-atom SMILES is refused')
) AS t(sql, code, msg, descr);
SELECT is(array_length(moe_featurize_smiles(repeat('C', 1000000), 16), 1), 16, 'a million-character SMILES works');
SELECT is(array_length(moe_featurize_protein_cksaap(repeat('ACDEFGHIKLMNPQRSTVWY', 100000)), 1), 1600,
          'a two-million-residue sequence works');

-- ---------------------------------------------------------------------------
-- moe_synthetic_dta (STRICT)
SELECT is_empty($$SELECT * FROM moe_synthetic_dta(NULL, 4, 2)$$, 'moe_synthetic_dta with a NULL size gives no rows');
SELECT throws_ok(format('SELECT count(*) FROM moe_synthetic_dta(%s)', args), '22023', msg, descr) FROM (VALUES
    ('0, 4, 2', 'n_drugs must be between 1 and 100000, not 0', 'no drugs'),
    ('4, 4, 0', 'n_clusters must be between 1 and 4 (the smaller of n_targets and 64), not 0', 'no clusters'),
    ('4, 4, 9', 'n_clusters must be between 1 and 4 (the smaller of n_targets and 64), not 9', 'more clusters than targets'),
    ('100000, 100000, 2', 'n_drugs x n_targets must be at most 10000000 pairs, not 10000000000', '10^10 pairs'),
    ('4, 4, 2, seed => -1', 'seed must not be negative', 'a negative seed'),
    ('4, 4, 2, drug_dim => 10000000', 'drug_dim must be between 1 and 4096, not 10000000', 'ten-million-long vectors'),
    ($$4, 4, 2, noise => 'NaN'$$, 'noise must be a finite number between 0 and 10, not nan', 'NaN noise'),
    ($$4, 4, 2, noise => 'Infinity'$$, 'noise must be a finite number between 0 and 10, not inf', 'infinite noise'),
    ($$4, 4, 2, noise => '-Infinity'$$, 'noise must be a finite number between 0 and 10, not -inf', 'minus infinite noise')
) AS t(args, msg, descr);

-- ---------------------------------------------------------------------------
-- Datasets: names are names, relations are regclass, columns are checked.
SELECT throws_ok(format('SELECT moe_create_dataset(%s)', args), code, msg, 'moe_create_dataset: ' || descr) FROM (VALUES
    ($$NULL, 'bi'$$, '22004', 'dataset name must not be NULL', 'NULL dataset name'),
    ($$'', 'bi'$$, '22023', 'dataset name must not be empty', 'empty dataset name'),
    ($$'d', NULL$$, '22004', 'relation, drug_column, protein_column, label_column, split_column and replace must not be NULL',
     'NULL relation'),
    ($$'d', 'bi', replace => NULL$$, '22004',
     'relation, drug_column, protein_column, label_column, split_column and replace must not be NULL', 'NULL replace'),
    ($$'d', 'x''; DROP TABLE bi; --'$$, '42602', 'invalid name syntax', 'SQL as a relation name is a syntax error'),
    ($$'d', 'pg_catalog.pg_class'$$, '42703', 'column "drug_vec" (drug_column) does not exist in pg_class',
     'a system catalog has no vector columns'),
    ($$'d', '"quoted"'$$, '42P01', 'relation "quoted" does not exist', 'a quoted relation name'),
    ($$'d', 'public.evil'$$, '42P01', 'relation "public.evil" does not exist', 'a schema-qualified unknown relation'),
    ($$'d', 'bi', drug_column => 'x''; DROP TABLE bi; --'$$, '42703',
     format('column "x''; DROP TABLE bi; --" (drug_column) does not exist in %s', 'bi'::regclass),
     'SQL as a column name is a missing column'),
    ($$'d', 'bi', protein_column => 'ctid'$$, '42703', format('column "ctid" (protein_column) does not exist in %s', 'bi'::regclass),
     'a system column is not a vector column'),
    ($$'d', 'bi', drug_column => 'label'$$, '42804', 'drug_column "label" must be of type real[], not real', 'a real is not a vector'),
    ($$'d', 'bi', protein_column => 'target_vec', label_column => 'split'$$, '42804',
     'label_column "split" must be numeric, not text', 'a text label'),
    ($$'d', 'bi', protein_column => 'target_vec', split_column => 'label'$$, '42804',
     'split_column "label" must be text, not real', 'a numeric split'),
    ($$'d', 'bi', protein_column => 'target_vec', fold_column => 'label'$$, '42804',
     'fold_column "label" must be an integer, not real', 'a real fold'),
    ($$'d', 'bi', protein_column => 'target_vec', drug_key_column => 'drug_id'$$, '22023',
     'give both drug_key_column and protein_key_column, or neither', 'one key column without the other'),
    ($$'bi', 'bi', protein_column => 'target_vec'$$, '42710', 'dataset "bi" already exists', 'a duplicate name'),
    ($$(SELECT random10k FROM long_name), 'bi', protein_column => 'target_vec'$$, '54000', NULL,
     'a name too long to index is a program limit')
) AS t(args, code, msg, descr);
-- a malicious name is stored and found as itself
SELECT lives_ok($$SELECT moe_create_dataset('x''; DROP TABLE bi; --', 'bi', protein_column => 'target_vec')$$,
                'a dataset may be called x''; DROP TABLE bi; --');
SELECT lives_ok($$SELECT moe_create_dataset('pg_catalog.pg_class', 'bi', protein_column => 'target_vec')$$,
                'a dataset may be called pg_catalog.pg_class');
SELECT lives_ok($$SELECT moe_create_dataset((SELECT plain10k FROM long_name), 'bi', protein_column => 'target_vec')$$,
                'a dataset may have a 10,000-character name');
SELECT is((SELECT count(*) FROM moe.datasets
            WHERE name IN ('x''; DROP TABLE bi; --', 'pg_catalog.pg_class', (SELECT plain10k FROM long_name))
              AND relation = 'bi'::regclass), 3::bigint, 'the names are stored exactly as given');
SELECT ok(to_regclass('pg_temp.bi') IS NOT NULL AND to_regclass('pg_catalog.pg_class') IS NOT NULL,
          'and nothing was dropped');
SELECT lives_ok($$SELECT moe_drop_dataset(n) FROM (VALUES ('pg_catalog.pg_class'), ((SELECT plain10k FROM long_name))) v(n)$$,
                'the catalog-like and the long name are dropped by name');

SELECT throws_ok($$SELECT moe_drop_dataset(NULL)$$, '22004', 'dataset name must not be NULL', 'moe_drop_dataset(NULL)');
SELECT throws_ok($$SELECT moe_drop_dataset('')$$, '42704', 'dataset "" does not exist', 'dropping an empty name');
SELECT throws_ok($$SELECT moe_drop_dataset('public.evil')$$, '42704', 'dataset "public.evil" does not exist',
                 'dropping an unknown dataset');
SELECT lives_ok($$SELECT moe_drop_dataset('x''; DROP TABLE bi; --')$$, 'dropping the malicious name drops that dataset');
SELECT is((SELECT count(*) FROM moe.datasets WHERE name = 'x''; DROP TABLE bi; --'), 0::bigint, 'and only that one');

-- moe_load_dta: everything but the files is checked before a file is read
SELECT throws_ok(format('SELECT moe_load_dta(%s)', args), code, msg, 'moe_load_dta: ' || descr) FROM (VALUES
    ('NULL', '22004', NULL, 'NULL directory'),
    ($$'/nonexistent', 'x''; DROP TABLE bi; --'$$, '22023',
     'dataset name "x''; DROP TABLE bi; --" must be a plain identifier (letters, digits, underscores)', 'SQL as a dataset name'),
    ($$'/nonexistent', '"quoted"'$$, '22023',
     'dataset name ""quoted"" must be a plain identifier (letters, digits, underscores)', 'a quoted dataset name'),
    ($$'/nonexistent', 'pg_catalog'$$, '42939',
     'dataset name "pg_catalog" is reserved (it would be the schema of the loaded tables)', 'pg_catalog as a dataset'),
    ($$'/nonexistent', 'moe'$$, '42939', 'dataset name "moe" is reserved (it would be the schema of the loaded tables)',
     'the extension''s own schema as a dataset'),
    ($$'/nonexistent', 'ok', setting => 'x''; --'$$, '22023',
     'unknown setting "x''; --" (valid: warm, novel_drug, novel_prot, novel_pair, setting1)', 'an unknown setting'),
    ($$'/nonexistent', 'ok', smiles_dim => 10000000$$, '22023', 'dim must be between 1 and 1048576, not 10000000',
     'a huge fingerprint dimension'),
    ($$'/nonexistent', 'ok', protein_k => 0$$, '22023', 'k must be between 1 and 3, not 0', 'k-mers of length 0'),
    ($$'/nonexistent', 'ok'$$, '58P01', NULL, 'a missing directory')
) AS t(args, code, msg, descr);

-- ---------------------------------------------------------------------------
-- Training: every hyperparameter is checked before a row is read.
SELECT throws_ok(format('CALL moe_train(%s)', args), code, msg, 'moe_train: ' || descr) FROM (VALUES
    ('NULL', '22004', 'dataset and fold must not be NULL', 'NULL dataset'),
    ($$'bi', fold => NULL$$, '22004', 'dataset and fold must not be NULL', 'NULL fold'),
    ($$''$$, '22023', 'dataset must not be empty', 'empty dataset name'),
    ($$'bi', model_name => ''$$, '22023', 'model_name must not be empty', 'empty model name'),
    ($$'x''; DROP TABLE bi; --'$$, '42704', 'dataset "x''; DROP TABLE bi; --" does not exist', 'SQL as a dataset name'),
    ($$'pg_catalog.pg_class'$$, '42704', 'dataset "pg_catalog.pg_class" does not exist', 'a catalog name as a dataset'),
    ($$'public.evil'$$, '42704', 'dataset "public.evil" does not exist', 'a schema-qualified name as a dataset'),
    ($$'bi', experts => 0$$, '22023', 'experts must be between 1 and 64, not 0', 'no experts'),
    ($$'bi', experts => 100000$$, '22023', 'experts must be between 1 and 64, not 100000', '100,000 experts'),
    ($$'bi', top_k => 0$$, '22023', 'top_k must be between 1 and experts (4), not 0', 'k = 0'),
    ($$'bi', lb_weight => 0.01$$, '22023', 'lb_weight needs an lb_method', 'lb_weight alone'),
    ($$'bi', lb_method => ''$$, '22023',
     'unknown load-balancing method "" (valid: none, entropy, cv, importance, importance_e, switch, zloss, router_entropy, aux_free, sinkhorn)',
     'empty lb_method'),
    ($$'bi', lb_weight => 'NaN'$$, '22023', 'lb_weight must be a finite number', 'NaN lb_weight'),
    ($$'bi', lb_weight => 'Infinity'$$, '22023', 'lb_weight must be a finite number', 'infinite lb_weight'),
    ($$'bi', balance => '[1, 2]'$$, '22023', 'balance must be a JSON object of method weights, e.g. {"entropy": 0.001}',
     'balance as an array'),
    ($$'bi', balance => '"entropy"'$$, '22023', 'balance must be a JSON object of method weights, e.g. {"entropy": 0.001}',
     'balance as a string'),
    ($$'bi', balance => '{"magic": 1}'$$, '22023',
     'unknown load-balancing method "magic" (valid: none, entropy, cv, importance, importance_e, switch, zloss, router_entropy, aux_free, sinkhorn)',
     'an unknown method in balance'),
    ($$'bi', balance => '{"entropy": -1}'$$, '22023', 'balance: the weight of "entropy" must be a non-negative number, not -1',
     'a negative balance weight'),
    ($$'bi', balance => '{"entropy": "x"}'$$, '22023', 'balance: "entropy" must be a number', 'a text balance weight'),
    ($$'bi', lb_schedule => 'x''; --'$$, '22023',
     'unknown load-balancing schedule "x''; --" (valid: constant, warmup, interpolate, adaptive)', 'an unknown lb_schedule'),
    ($$'bi', lb_min_scale => 2$$, '22023', 'lb_min_scale must be in [0, 1], not 2', 'lb_min_scale above 1'),
    ($$'bi', lb_decay => 'NaN'$$, '22023', 'lb_decay must be a finite number', 'NaN lb_decay'),
    ($$'bi', epochs => -1$$, '22023', 'epochs must be between 1 and 100000, not -1', 'epochs -1'),
    ($$'bi', epochs => 0$$, '22023', 'epochs must be between 1 and 100000, not 0', 'epochs 0'),
    ($$'bi', epochs => 2147483647$$, '22023', 'epochs must be between 1 and 100000, not 2147483647', 'epochs 2^31 - 1'),
    ($$'bi', batch_size => 0$$, '22023', 'batch_size must be between 1 and 65536, not 0', 'batch_size 0'),
    ($$'bi', batch_size => -5$$, '22023', 'batch_size must be between 1 and 65536, not -5', 'a negative batch_size'),
    ($$'bi', lr => 'NaN'$$, '22023', 'lr must be a finite number', 'lr NaN'),
    ($$'bi', lr => 'Infinity'$$, '22023', 'lr must be a finite number', 'lr infinite'),
    ($$'bi', lr => 0$$, '22023', 'lr must be a positive number up to 10, not 0', 'lr 0'),
    ($$'bi', lr_min => 1$$, '22023', 'lr_min must be between 0 and lr (0.001), not 1', 'lr_min above lr'),
    ($$'bi', lr_warmup_epochs => -1$$, '22023', 'lr_warmup_epochs must be between 0 and epochs - 1 (99), not -1',
     'negative warmup'),
    ($$'bi', lr_step_epochs => 0$$, '22023', 'lr_step_epochs must be at least 1, not 0', 'lr_step_epochs 0'),
    ($$'bi', lr_gamma => 2$$, '22023', 'lr_gamma must be in (0, 1], not 2', 'lr_gamma 2'),
    ($$'bi', lr_decay_start => -1$$, '22023', 'lr_decay_start must be in [0, 1), not -1', 'negative lr_decay_start'),
    ($$'bi', weight_decay => -1$$, '22023', 'weight_decay must be a non-negative number, not -1', 'negative weight decay'),
    ($$'bi', grad_clip => '-Infinity'$$, '22023', 'grad_clip must be a finite number', 'minus infinite grad_clip'),
    ($$'bi', ema_decay => 1$$, '22023', 'ema_decay must be in [0, 1), not 1', 'ema_decay 1'),
    ($$'bi', ema_decay => 'NaN'$$, '22023', 'ema_decay must be a finite number', 'NaN ema_decay'),
    ($$'bi', dropout => 1.5$$, '22023', 'dropout must be in [0, 1), not 1.5', 'dropout 1.5'),
    ($$'bi', dropout => 1$$, '22023', 'dropout must be in [0, 1), not 1', 'dropout 1'),
    ($$'bi', dropout => -0.1$$, '22023', 'dropout must be in [0, 1), not -0.1', 'negative dropout'),
    ($$'bi', temperature => 0$$, '22023', 'temperature must be a positive number, not 0', 'temperature 0'),
    ($$'bi', temperature => 'Infinity'$$, '22023', 'temperature must be a finite number', 'infinite temperature'),
    ($$'bi', temperature_schedule => 'bogus'$$, '22023',
     'unknown temperature schedule "bogus" (valid: constant, linear, cosine, exponential, step)', 'unknown temperature schedule'),
    ($$'bi', temperature_end => 0.5$$, '22023',
     'temperature_end needs a temperature_schedule other than constant (valid: constant, linear, cosine, exponential, step)',
     'temperature_end without a schedule'),
    ($$'bi', temperature_schedule => 'linear', temperature_end => -1$$, '22023',
     'temperature_end must be a positive number, not -1', 'a negative temperature_end'),
    ($$'bi', noisy_gating => NULL$$, '22004', 'noisy_gating must not be NULL', 'NULL noisy_gating'),
    ($$'bi', refit => NULL$$, '22004', 'refit must not be NULL', 'NULL refit'),
    ($$'bi', patience => -1$$, '22023', 'patience must be 0 (off) or positive, not -1', 'negative patience'),
    ($$'bi', min_delta => 'NaN'$$, '22023', 'min_delta must be a finite number', 'NaN min_delta'),
    ($$'bi', seed => -1$$, '22023', 'seed must not be negative', 'negative seed'),
    ($$'bi', drug_hidden => '{}'$$, '22023', 'drug encoder must have between 1 and 4 layers, not 0', 'no encoder layers'),
    ($$'bi', drug_hidden => '{0}'$$, '22023', 'drug encoder layer 1 width must be between 1 and 16384, not 0', 'width 0'),
    ($$'bi', protein_hidden => '{16,-16}'$$, '22023', 'protein encoder layer 2 width must be between 1 and 16384, not -16',
     'a negative width'),
    ($$'bi', gate_hidden => '{16,NULL}'$$, '22004', 'layer widths must not contain NULL', 'a NULL width'),
    ($$'bi', expert_hidden => '{{16,16},{16,16}}'$$, '22023', 'layer widths must be a one-dimensional array', '2-D widths'),
    ($$'bi', drug_hidden => '{1,2,3,4,5,6,7,8,9}'$$, '22023', 'at most 4 layer widths can be given, not 9', 'nine layers'),
    ($$'bi', drug_hidden => '{100000000}'$$, '22023', 'drug encoder layer 1 width must be between 1 and 16384, not 100000000',
     'a hundred-million-wide layer'),
    ($$'bi', drug_hidden => NULL$$, '22004', 'drug_hidden must not be NULL', 'NULL widths'),
    ($$'bi', deploy => NULL$$, '22004', 'deploy must not be NULL', 'NULL deploy'),
    ($$'bi', options => '[]'$$, '22023', 'options must be a JSON object of training options', 'options as an array'),
    ($$'bi', options => '{"x''; DROP TABLE bi; --": 1}'$$, '22023',
     'options: unknown training option "x''; DROP TABLE bi; --"', 'an unknown option name'),
    ($$'bi', options => '{"epochs": "ten"}'$$, '22023', 'options: "epochs" must be a number', 'a text number'),
    ($$'bi', options => '{"epochs": 1.5}'$$, '22023', 'options: "epochs" must be an integer', 'a fractional integer'),
    ($$'bi', options => '{"epochs": 99999999999}'$$, '22023', 'epochs is out of range', 'an integer beyond int4'),
    ($$'bi', options => '{"lr": 1e300}'$$, '22023', 'lr must be a positive number up to 10, not inf', 'lr beyond float4'),
    ($$'bi', options => '{"drug_hidden": [4294967312]}'$$, '22023',
     'options: "drug_hidden" has a layer width out of range (4294967312)', 'a width that would wrap to 16'),
    ($$'bi', options => '{"drug_hidden": [16, "x"]}'$$, '22023', 'options: "drug_hidden" must be a number', 'a text width'),
    ($$'bi', options => '{"deploy": "yes"}'$$, '22023', 'unknown deploy "yes" (valid: always, if_better, never)',
     'a deploy mode that is not one'),
    ($$'bi', options => '{"refit": "yes"}'$$, '22023', 'options: "refit" must be true or false', 'a text boolean'),
    ($$'bi', options => '{"experts": null}'$$, '22004', 'experts must not be NULL', 'a JSON null option'),
    ($$'bi', fold => 1$$, '22023', 'dataset "bi" has no fold column, so fold must be 0', 'a fold without a fold column')
) AS t(args, code, msg, descr);

SELECT throws_ok(format('CALL moe_cross_validate(%s)', args), code, msg, 'moe_cross_validate: ' || descr) FROM (VALUES
    ('NULL', '22004', 'dataset and folds must not be NULL', 'cross-validation of NULL'),
    ($$'bi', NULL$$, '22004', 'dataset and folds must not be NULL', 'NULL folds'),
    ($$'bi', 0$$, '22023', 'folds must be between 1 and 100, not 0', 'zero folds'),
    ($$'bi', 1000$$, '22023', 'folds must be between 1 and 100, not 1000', 'a thousand folds'),
    ($$'bi', 3$$, '22023', 'dataset "bi" has no fold column, so folds must be 1', 'folds without a fold column'),
    ($$'x''; DROP TABLE bi; --', 1$$, '42704', 'dataset "x''; DROP TABLE bi; --" does not exist', 'SQL as a dataset name'),
    ($$'bi', 1, model_name => ''$$, '22023', 'model_name must not be empty', 'empty model name'),
    ($$'bi', 1, options => '5'$$, '22023', 'options must be a JSON object of training options', 'options as a number'),
    ($$'bi', 1, options => '{"top_k": 9}'$$, '22023', 'top_k must be between 1 and experts (4), not 9', 'k > E in options')
) AS t(args, code, msg, descr);

SELECT throws_ok(format('CALL moe_sweep(%s)', args), code, msg, 'moe_sweep: ' || descr) FROM (VALUES
    ($$NULL, '{}'$$, '22004', 'dataset, grid and fold must not be NULL', 'sweep of NULL'),
    ($$'bi', NULL$$, '22004', 'dataset, grid and fold must not be NULL', 'NULL grid'),
    ($$'bi', '{}', fold => NULL$$, '22004', 'dataset, grid and fold must not be NULL', 'NULL fold'),
    ($$'bi', '[]'$$, '22023', 'grid must be a JSON object mapping option names to arrays of values', 'grid as an array'),
    ($$'bi', '{"x''; --": [1]}'$$, '22023', 'grid: unknown training option "x''; --"', 'an unknown grid option'),
    ($$'bi', '{"deploy": [true]}'$$, '22023', 'grid: "deploy" cannot vary in a sweep', 'deploy is not swept'),
    ($$'bi', '{"lr": []}'$$, '22023', 'grid: "lr" must be a non-empty array of values', 'an empty axis'),
    ($$'bi', '{"lr": 0.1}'$$, '22023', 'grid: "lr" must be a non-empty array of values', 'an axis that is no array'),
    ($$'bi', '{"lr": [0.1, "x"]}'$$, '22023', 'grid: "lr" must be a number', 'a text value on an axis'),
    ($$'bi', '{"lr": [0.1, -1]}'$$, '22023', 'lr must be a positive number up to 10, not -1', 'a bad point is found before training'),
    ($$'bi', '{"lr": [0.1]}', model_name => ''$$, '22023', 'model_name must not be empty', 'empty model name'),
    ($$'nope', '{"lr": [0.1]}'$$, '42704', 'dataset "nope" does not exist', 'an unknown dataset')
) AS t(args, code, msg, descr);

-- ---------------------------------------------------------------------------
-- One pair: moe_predict, moe_route, moe_gate, moe_expert_outputs, by id and
-- by name.  The same bad vectors for all eight; drug checked before protein.
CREATE TEMP TABLE pair_fn (fn text, tmpl text);
INSERT INTO pair_fn VALUES
    ('moe_predict', 'SELECT moe_predict(%s, %s, %s)'),
    ('moe_route', 'SELECT * FROM moe_route(%s, %s, %s)'),
    ('moe_gate', 'SELECT * FROM moe_gate(%s, %s, %s)'),
    ('moe_expert_outputs', 'SELECT moe_expert_outputs(%s, %s, %s)');
CREATE TEMP TABLE model_ref (how text, ref text);
INSERT INTO model_ref SELECT 'by name', quote_literal('bi_m') UNION ALL SELECT 'by id', id || '::bigint' FROM bi_id;
CREATE TEMP TABLE bad_pair (drug text, protein text, code text, msg text, descr text);
INSERT INTO bad_pair VALUES
    ($$'{}'::real[]$$, $$'{1,2,3,4,5,6,7,8}'::real[]$$, '22000', 'drug vector is empty', 'an empty array'),
    ($$'{{1,2,3,4},{5,6,7,8}}'::real[]$$, $$'{1,2,3,4,5,6,7,8}'::real[]$$, '22000',
     'drug vector must be a one-dimensional array, not 2-dimensional', 'a 2-D array'),
    ($$'{{{1,2},{3,4}},{{5,6},{7,8}}}'::real[]$$, $$'{1,2,3,4,5,6,7,8}'::real[]$$, '22000',
     'drug vector must be a one-dimensional array, not 3-dimensional', 'a 3-D array'),
    ($$'{1,2,3,4,5,6,7,8}'::real[]$$, $$'{1,2,3,NULL,5,6,7,8}'::real[]$$, '22004',
     'protein vector contains NULL elements', 'a NULL element'),
    ($$'{1,2,3}'::real[]$$, $$'{1,2,3,4,5,6,7,8}'::real[]$$, '22000',
     format('drug vector has 3 elements, model %s expects 8', (SELECT id FROM bi_id)), 'a short drug vector'),
    ($$'{1,2,3,4,5,6,7,8}'::real[]$$, $$'{1,2,3,4,5,6,7,8,9}'::real[]$$, '22000',
     format('protein vector has 9 elements, model %s expects 8', (SELECT id FROM bi_id)),
     'a long protein vector beside a good drug vector'),
    ($$'{1,NaN,3,4,5,6,7,8}'::real[]$$, $$'{1,2,3,4,5,6,7,8}'::real[]$$, '22000', 'drug vector element 2 is NaN', 'NaN'),
    ($$'{1,2,3,4,5,6,7,8}'::real[]$$, $$'{1,2,3,4,5,6,7,Infinity}'::real[]$$, '22000',
     'protein vector element 8 is infinite', 'Infinity'),
    ($$'{-Infinity,2,3,4,5,6,7,8}'::real[]$$, $$'{1,2,3,4,5,6,7,8}'::real[]$$, '22000',
     'drug vector element 1 is infinite', '-Infinity'),
    ($$'{1,2,3,4,5,6,7,8}'::int[]::real[]$$, $$'{1,2,3,4,5,6,7}'::real[]$$, '22000',
     format('protein vector has 7 elements, model %s expects 8', (SELECT id FROM bi_id)), 'mismatched lengths');
SELECT throws_ok(format(f.tmpl, b.drug, b.protein, m.ref), b.code, b.msg, format('%s %s: %s', f.fn, m.how, b.descr))
  FROM pair_fn f CROSS JOIN model_ref m CROSS JOIN bad_pair b ORDER BY f.fn, m.how, b.descr;

-- unknown and malicious model names and ids
SELECT throws_ok(format(f.tmpl, $$'{1,2,3,4,5,6,7,8}'::real[]$$, $$'{1,2,3,4,5,6,7,8}'::real[]$$, quote_literal(n.name)),
                 '42704', format('model "%s" does not exist', n.name), format('%s with model name %s', f.fn, n.descr))
  FROM pair_fn f CROSS JOIN (VALUES ('x''; DROP TABLE bi; --', 'x''; DROP TABLE bi; --'),
                                    ('pg_catalog.pg_class', 'pg_catalog.pg_class'), ('"quoted"', '"quoted"'),
                                    ('public.evil', 'public.evil'), ('', 'empty'),
                                    ((SELECT plain10k FROM long_name), 'of 10,000 characters')) AS n(name, descr)
 ORDER BY f.fn, n.descr;
SELECT throws_ok(format(f.tmpl, $$'{1,2,3,4,5,6,7,8}'::real[]$$, $$'{1,2,3,4,5,6,7,8}'::real[]$$, i.id || '::bigint'),
                 '42704', format('model %s does not exist', i.id), format('%s with model id %s', f.fn, i.id))
  FROM pair_fn f CROSS JOIN (VALUES ('0'), ('-1'), ('9223372036854775807')) AS i(id) ORDER BY f.fn, i.id;

-- NULLs: STRICT, so no answer rather than an error
SELECT is(moe_predict(NULL, '{1,2,3,4,5,6,7,8}', 'bi_m'), NULL, 'moe_predict(NULL drug) is NULL');
SELECT is(moe_predict('{1,2,3,4,5,6,7,8}', NULL, (SELECT id FROM bi_id)), NULL, 'moe_predict by id (NULL protein) is NULL');
SELECT is(moe_predict('{1,2,3,4,5,6,7,8}', '{1,2,3,4,5,6,7,8}', NULL::text), NULL, 'moe_predict(NULL name) is NULL');
SELECT is_empty($$SELECT * FROM moe_route(NULL, '{1,2,3,4,5,6,7,8}', 'bi_m')$$, 'moe_route(NULL drug) gives no rows');
SELECT is_empty($$SELECT * FROM moe_route('{1,2,3,4,5,6,7,8}', '{1,2,3,4,5,6,7,8}', NULL::bigint)$$,
                'moe_route(NULL id) gives no rows');
SELECT is(moe_gate('{1,2,3,4,5,6,7,8}', NULL, 'bi_m'), NULL, 'moe_gate(NULL protein) is NULL');
SELECT is(moe_gate('{1,2,3,4,5,6,7,8}', '{1,2,3,4,5,6,7,8}', NULL::bigint), NULL, 'moe_gate(NULL id) is NULL');
SELECT is(moe_expert_outputs(NULL, NULL, 'bi_m'), NULL, 'moe_expert_outputs(NULL, NULL) is NULL');
SELECT is(moe_expert_outputs('{1,2,3,4,5,6,7,8}', '{1,2,3,4,5,6,7,8}', NULL::text), NULL,
          'moe_expert_outputs(NULL name) is NULL');
-- huge: ten million elements are refused by their length, at once
SELECT throws_ok($$SELECT moe_predict(array_fill(1::real, ARRAY[10000000]), '{1,2,3,4,5,6,7,8}', 'bi_m')$$, '22000',
                 format('drug vector has 10000000 elements, model %s expects 8', (SELECT id FROM bi_id)),
                 'a ten-million-element drug vector');
SELECT throws_ok(format($$SELECT moe_predict('{1,2,3,4,5,6,7,8}', array_fill(1::real, ARRAY[10000000]), %s)$$,
                        (SELECT id FROM bi_id)), '22000',
                 format('protein vector has 10000000 elements, model %s expects 8', (SELECT id FROM bi_id)),
                 'a ten-million-element protein vector, by id');
-- finite but extreme values give an answer, and a finite one
SELECT ok(moe_predict('{3e38,-3e38,3e38,-3e38,3e38,-3e38,3e38,-3e38}', '{1e-45,0,-0,1e-45,1,1,1,1}', 'bi_m')
              NOT IN ('NaN', 'Infinity', '-Infinity'), 'extreme finite inputs give a finite prediction');
SELECT lives_ok($$SELECT moe_predict(array_fill(1::real, ARRAY[8], ARRAY[-3]), '{1,2,3,4,5,6,7,8}', 'bi_m')$$,
                'a vector whose subscripts start at -3 is still a vector');

-- ---------------------------------------------------------------------------
-- Bulk: moe_predict_batch and moe_predict_matrix, by id and by name.
CREATE TEMP TABLE bulk_fn (fn text, tmpl text);
INSERT INTO bulk_fn VALUES
    ('moe_predict_batch', 'SELECT count(*) FROM moe_predict_batch(%s, %s, %s)'),
    ('moe_predict_matrix', 'SELECT count(*) FROM moe_predict_matrix(%s, %s, %s)');
CREATE TEMP TABLE bad_bulk (drugs text, proteins text, code text, msg text, descr text);
INSERT INTO bad_bulk VALUES
    ('NULL', $$'{{1,2,3,4,5,6,7,8}}'::real[]$$, '22004', 'drugs and proteins must not be NULL', 'NULL drugs'),
    ($$'{{1,2,3,4,5,6,7,8}}'::real[]$$, 'NULL', '22004', 'drugs and proteins must not be NULL', 'NULL proteins'),
    ($$'{}'::real[]$$, $$'{{1,2,3,4,5,6,7,8}}'::real[]$$, '22000',
     'drugs must be a two-dimensional array, one vector per row', 'an empty array'),
    ($$'{1,2,3,4,5,6,7,8}'::real[]$$, $$'{{1,2,3,4,5,6,7,8}}'::real[]$$, '22000',
     'drugs must be a two-dimensional array, one vector per row', 'a 1-D array'),
    ($$'{{{1,2,3,4,5,6,7,8}}}'::real[]$$, $$'{{1,2,3,4,5,6,7,8}}'::real[]$$, '22000',
     'drugs must be a two-dimensional array, one vector per row', 'a 3-D array'),
    ($$'{{1,2,3,4,5,6,7,8}}'::real[]$$, $$'{{1,2,3,4,5,6,7,NULL}}'::real[]$$, '22004',
     'proteins contains NULL elements', 'a NULL element'),
    ($$'{{1,2,3,4,5,6,7}}'::real[]$$, $$'{{1,2,3,4,5,6,7,8}}'::real[]$$, '22000',
     'drugs has vectors of 7 elements, the model expects 8', 'rows of the wrong length'),
    ($$'{{1,2,3,4,5,6,7,8},{1,2,3,4,5,6,7,NaN}}'::real[]$$, $$'{{1,2,3,4,5,6,7,8},{1,2,3,4,5,6,7,8}}'::real[]$$, '22000',
     'drugs row 2 element 8 is NaN', 'NaN'),
    ($$'{{1,2,3,4,5,6,7,8}}'::real[]$$, $$'{{Infinity,2,3,4,5,6,7,8}}'::real[]$$, '22000',
     'proteins row 1 element 1 is infinite', 'Infinity'),
    ($$'{{1,2,3,4,5,6,7,8}}'::real[]$$, $$'{{1,2,3,4,5,6,7,-Infinity}}'::real[]$$, '22000',
     'proteins row 1 element 8 is infinite', '-Infinity'),
    ('array_fill(1::real, ARRAY[1000000, 10])', $$'{{1,2,3,4,5,6,7,8}}'::real[]$$, '22000',
     'drugs has vectors of 10 elements, the model expects 8', 'ten million elements of the wrong width');
SELECT throws_ok(format(f.tmpl, b.drugs, b.proteins, m.ref), b.code, b.msg, format('%s %s: %s', f.fn, m.how, b.descr))
  FROM bulk_fn f CROSS JOIN model_ref m CROSS JOIN bad_bulk b ORDER BY f.fn, m.how, b.descr;
SELECT throws_ok(format(f.tmpl, $$'{{1,2,3,4,5,6,7,8}}'::real[]$$, $$'{{1,2,3,4,5,6,7,8}}'::real[]$$, m.ref),
                 m.code, m.msg, format('%s with model %s', f.fn, m.descr))
  FROM bulk_fn f CROSS JOIN (VALUES ('NULL::text', '22004', 'model must not be NULL', 'NULL'),
                                    ('NULL::bigint', '22004', 'model must not be NULL', 'id NULL'),
                                    ($$'x''; DROP TABLE bi; --'$$, '42704', 'model "x''; DROP TABLE bi; --" does not exist',
                                     'x''; DROP TABLE bi; --'),
                                    ('-1::bigint', '42704', 'model -1 does not exist', 'id -1')) AS m(ref, code, msg, descr)
 ORDER BY f.fn, m.descr;
SELECT throws_ok($$SELECT * FROM moe_predict_batch('{{1,2,3,4,5,6,7,8}}', '{{1,2,3,4,5,6,7,8},{1,2,3,4,5,6,7,8}}', 'bi_m')$$,
                 '22000', 'drugs has 1 rows and proteins 2; they are paired row by row', 'moe_predict_batch: rows must pair up');
SELECT is((SELECT count(*) FROM moe_predict_batch(array_fill(0.5::real, ARRAY[1250000, 8]),
                                                  array_fill(0.5::real, ARRAY[1250000, 8]), 'bi_m')),
          1250000::bigint, 'moe_predict_batch: ten million elements of the right shape are scored');

-- A window partition as one batch: moe_predict_partition.
CREATE TEMP TABLE bi_fp AS SELECT id, (moe_model_info(id)).params_md5 AS md5 FROM bi_id;
CREATE TEMP TABLE part_rows (i int, d real[], p real[]);
INSERT INTO part_rows VALUES (1, '{1,2,3,4,5,6,7,8}', '{1,2,3,4,5,6,7,8}'), (2, '{8,7,6,5,4,3,2,1}', '{1,2,3,4,5,6,7,8}');
SELECT throws_ok(format('SELECT moe_predict_partition(%s, %s, %s, %s) OVER () FROM part_rows, bi_fp', a.d, a.p, a.m, a.h),
                 a.code, a.msg, 'moe_predict_partition: ' || a.descr)
  FROM (VALUES
    ('CASE i WHEN 2 THEN NULL ELSE d END', 'p', 'id', 'md5', '22004', 'moe_predict_partition: a row has a NULL drug vector', 'a NULL drug vector'),
    ('d', 'NULL::real[]', 'id', 'md5', '22004', 'moe_predict_partition: a row has a NULL protein vector', 'a NULL protein vector'),
    ('d', 'p', 'NULL::bigint', 'md5', '22004', 'moe_predict_partition: model and params_md5 must not be NULL', 'a NULL model'),
    ('d', 'p', 'id', 'NULL::text', '22004', 'moe_predict_partition: model and params_md5 must not be NULL', 'a NULL params_md5'),
    ('d', 'p', 'id', 'upper(md5)', '22023', 'params_md5 must be 32 lowercase hexadecimal digits', 'a malformed params_md5'),
    ('d', 'p', 'id', $$repeat('0', 32)$$, '55000', format('model %s on this server has other weights than asked for', (SELECT id FROM bi_id)),
     'another model''s fingerprint'),
    ('d', 'p', '-1::bigint', 'md5', '42704', 'model -1 does not exist', 'an unknown id'),
    ('d', 'p', 'id + i - 1', 'md5', '22023', 'moe_predict_partition: model and params_md5 must be the same on every row of a partition',
     'a model that changes within a partition'),
    ('d[1:7]', 'p', 'id', 'md5', '22000', format('drug vector has 7 elements, model %s expects 8', (SELECT id FROM bi_id)),
     'a vector of the wrong length'),
    ($$d[1:7] || 'NaN'::real$$, 'p', 'id', 'md5', '22000', 'drug vector element 8 is NaN', 'NaN')
  ) AS a(d, p, m, h, code, msg, descr)
 ORDER BY a.descr;
SELECT is((SELECT array_agg(w ORDER BY i) FROM (SELECT i, moe_predict_partition(d, p, id, md5) OVER (ORDER BY i DESC) AS w
                                                   FROM part_rows, bi_fp) s),
          (SELECT array_agg(moe_predict(d, p, id) ORDER BY i) FROM part_rows, bi_fp),
          'moe_predict_partition answers each row, whatever the window''s order');

-- ---------------------------------------------------------------------------
-- Table to table: CALL moe_score, by id and by name.
CREATE TEMP TABLE odd (id int, drug_vec int, protein_vec text, f8 float8[], dv real[], tv real[],
                       "we""ird; col" text);
INSERT INTO odd SELECT drug_id, 1, 'x', drug_vec::float8[], drug_vec, target_vec, 'k' || drug_id FROM bi LIMIT 3;
SELECT throws_ok(format('CALL moe_score(%s, %s)', m.ref, a.args), a.code, a.msg, format('moe_score %s: %s', m.how, a.descr))
  FROM model_ref m CROSS JOIN (VALUES
    ($$NULL, 'pg_temp.o'$$, '22004', 'source, output_table, drug_column, protein_column and replace must not be NULL', 'NULL source'),
    ($$'bi', NULL$$, '22004', 'source, output_table, drug_column, protein_column and replace must not be NULL', 'NULL output'),
    ($$'bi', 'pg_temp.o', drug_column => NULL$$, '22004',
     'source, output_table, drug_column, protein_column and replace must not be NULL', 'NULL column'),
    ($$'bi', 'pg_temp.o', replace => NULL$$, '22004',
     'source, output_table, drug_column, protein_column and replace must not be NULL', 'NULL replace'),
    ($$'bi', 'pg_temp.o', protein_column => 'target_vec', key_columns => '{drug_id,NULL}'$$, '22004',
     'key_columns must not contain NULL', 'a NULL key column'),
    ($$0, 'pg_temp.o'$$, '42P01', 'source relation with OID 0 does not exist', 'source OID 0'),
    ($$'bi', 'pg_temp.o', protein_column => 'nope'$$, '42703', format('protein_column "nope" is not a column of %s.bi', pg_my_temp_schema()::regnamespace),
     'an unknown vector column'),
    ($$'bi', 'pg_temp.o', drug_column => 'ctid', protein_column => 'target_vec'$$, '42703',
     format('drug_column "ctid" is not a column of %s.bi', pg_my_temp_schema()::regnamespace), 'a system column as vectors'),
    ($$'bi', 'pg_temp.o', drug_column => 'tableoid', protein_column => 'target_vec'$$, '42703',
     format('drug_column "tableoid" is not a column of %s.bi', pg_my_temp_schema()::regnamespace), 'tableoid as vectors'),
    ($$'odd', 'pg_temp.o', drug_column => 'drug_vec', protein_column => 'tv'$$, '42804',
     'drug_column "drug_vec" must be of type real[], not integer', 'integers as vectors'),
    ($$'odd', 'pg_temp.o', drug_column => 'dv', protein_column => 'protein_vec'$$, '42804',
     'protein_column "protein_vec" must be of type real[], not text', 'text as vectors'),
    ($$'odd', 'pg_temp.o', drug_column => 'f8', protein_column => 'tv'$$, '42804',
     'drug_column "f8" must be of type real[], not double precision[]', 'double precision[] as vectors'),
    ($$'bi', 'pg_temp.o', protein_column => 'target_vec', key_columns => '{"x\"; DROP TABLE bi; --"}'$$, '42703',
     'column "x"; DROP TABLE bi; --" does not exist in bi', 'SQL as a key column'),
    ($$'bi', 'x; DROP TABLE bi; --', protein_column => 'target_vec'$$, '42602', 'invalid name syntax', 'SQL as the output'),
    ($$'bi', '', protein_column => 'target_vec'$$, '42602', 'invalid name syntax', 'an empty output name'),
    ($$'bi', 'pg_catalog.evil', protein_column => 'target_vec'$$, '42501', 'permission denied to create "pg_catalog.evil"',
     'an output in pg_catalog'),
    ($$'bi', 'nodb.public.evil', protein_column => 'target_vec'$$, '0A000',
     'cross-database references are not implemented: "nodb.public.evil"', 'an output in another database'),
    ($$'bi', 'pg_temp.bi', protein_column => 'target_vec', replace => true$$, '22023',
     'output_table pg_temp.bi is the source relation', 'replacing the source itself')
  ) AS a(args, code, msg, descr) ORDER BY m.how, a.descr;
SELECT throws_ok($$CALL moe_score(NULL::text, 'bi', 'pg_temp.o')$$, '22004', 'model must not be NULL', 'moe_score of a NULL model');
SELECT throws_ok($$CALL moe_score('public.evil', 'bi', 'pg_temp.o')$$, '42704', 'model "public.evil" does not exist',
                 'moe_score of an unknown model');
-- quoted names stay names: the output table and its key column are called exactly that
CALL moe_score('bi_m', 'odd', 'pg_temp."x; DROP TABLE bi; --"', drug_column => 'dv', protein_column => 'tv',
               key_columns => ARRAY['we"ird; col']);
SELECT is((SELECT count(*) FROM pg_temp."x; DROP TABLE bi; --" WHERE "we""ird; col" LIKE 'k%' AND prediction IS NOT NULL),
          3::bigint, 'moe_score writes a table and a key column with malicious names, quoted');
SELECT ok(to_regclass('pg_temp.bi') IS NOT NULL, 'and drops nothing');

-- ---------------------------------------------------------------------------
-- Over a dataset: moe_evaluate, moe_routing, moe_specialization,
-- moe_expert_profile, moe_expert_agreement, moe_cluster_recovery; by id and name.
CREATE TEMP TABLE ds_fn (fn text);
INSERT INTO ds_fn VALUES ('moe_evaluate'), ('moe_routing'), ('moe_specialization'), ('moe_expert_profile'),
                         ('moe_expert_agreement'), ('moe_cluster_recovery');
SELECT throws_ok(format('SELECT count(*) FROM %s(%s, %s)', f.fn, m.ref, a.args), a.code, a.msg,
                 format('%s %s: %s', f.fn, m.how, a.descr))
  FROM ds_fn f CROSS JOIN model_ref m CROSS JOIN (VALUES
    ($$split => NULL$$, '22004', 'split must be ''train'', ''valid'', ''test'' or ''all''', 'NULL split'),
    ($$split => 'x''; DROP TABLE bi; --'$$, '22023', 'unknown split "x''; DROP TABLE bi; --" (valid: train, valid, test, all)',
     'SQL as a split'),
    ($$dataset => 'pg_catalog.pg_class'$$, '42704', 'dataset "pg_catalog.pg_class" does not exist', 'a catalog as a dataset'),
    ($$dataset => '"quoted"'$$, '42704', 'dataset ""quoted"" does not exist', 'a quoted dataset name'),
    ($$fold => 3$$, '22023', 'dataset "bi" has no fold column, so fold must be 0 or NULL', 'a fold without a fold column'),
    ($$dataset => 'bi_folds', fold => 7, split => 'all'$$, 'P0002', 'dataset "bi_folds" has no all rows in fold 7',
     'a fold with no rows')
  ) AS a(args, code, msg, descr) ORDER BY f.fn, m.how, a.descr;
SELECT throws_ok(format('SELECT count(*) FROM %s(%s)', f.fn, a.args), a.code, a.msg, format('%s: %s', f.fn, a.descr))
  FROM ds_fn f CROSS JOIN (VALUES
    ('NULL::text', '22004', 'model must not be NULL', 'NULL model name'),
    ('NULL::bigint', '22004', 'model must not be NULL', 'NULL model id'),
    ($$'"quoted"'$$, '42704', 'model ""quoted"" does not exist', 'an unknown quoted name'),
    ('0::bigint', '42704', 'model 0 does not exist', 'model id 0'),
    ($$'bi_m', dataset => 'bi_wide', split => 'all'$$, '22000',
     format('dataset "bi_wide" has vectors of 16 and 8 values, model %s expects 8 and 8', (SELECT id FROM bi_id)),
     'a dataset of other dimensions')
  ) AS a(args, code, msg, descr) ORDER BY f.fn, a.descr;
SELECT throws_ok(format('SELECT count(*) FROM %s', sql), code, msg, descr) FROM (VALUES
    ($$moe_specialization('bi_m', by => NULL)$$, '22004', 'by must be ''target'' or ''drug''', 'moe_specialization by NULL'),
    ($$moe_specialization('bi_m', by => 'x''; --')$$, '22023', 'unknown grouping "x''; --" (valid: target, drug)',
     'moe_specialization by an unknown grouping'),
    ($$moe_cluster_recovery('bi_m', cluster_column => NULL)$$, '22004', 'cluster_column and by must not be NULL',
     'moe_cluster_recovery of a NULL column'),
    ($$moe_cluster_recovery('bi_m', by => 'bogus')$$, '22023', 'unknown grouping "bogus" (valid: pair, target, drug)',
     'moe_cluster_recovery by an unknown grouping'),
    ($$moe_cluster_recovery('bi_m', cluster_column => 'cluster" FROM pg_class; --')$$, '42703',
     'column "cluster" FROM pg_class; --" does not exist', 'moe_cluster_recovery: SQL as a column is a quoted column name')
) AS t(sql, code, msg, descr);

-- labels and keys longer than the in-memory tables hold are refused, not cut short
CREATE TEMP TABLE bi_long AS
SELECT *, repeat('c', 300) || cluster AS long_cluster, repeat('k', 300) || target_id AS long_key FROM bi;
SELECT moe_create_dataset('bi_long', 'bi_long', protein_column => 'target_vec');
SELECT moe_create_dataset('bi_long_key', 'bi_long', protein_column => 'target_vec',
                          drug_key_column => 'drug_id', protein_key_column => 'long_key');
SELECT throws_ok($$SELECT * FROM moe_cluster_recovery('bi_m', 'bi_long', cluster_column => 'long_cluster')$$, '54000',
                 'column "long_cluster" has a value of 301 bytes in dataset "bi_long"; cluster labels are limited to 255 bytes',
                 'moe_cluster_recovery: a cluster label over 255 bytes is refused, not truncated');
SELECT throws_ok($$SELECT * FROM moe_evaluate('bi_m', 'bi_long_key')$$, '42622', NULL,
                 'moe_evaluate: an entity key over 255 bytes is refused, not truncated');

-- a dataset whose vector column changed type after it was registered
CREATE TEMP TABLE drift AS SELECT * FROM bi;
SELECT moe_create_dataset('drift', 'drift', protein_column => 'target_vec');
SELECT moe_create_dataset('drift_keyed', 'drift', protein_column => 'target_vec',
                          drug_key_column => 'drug_id', protein_key_column => 'target_id');
ALTER TABLE drift ALTER COLUMN drug_vec TYPE integer USING 1;
SELECT throws_ok($$CALL moe_train('drift', epochs => 1)$$, '42804',
                 'drug vectors of dataset "drift" must be of type real[], not integer', 'vectors that became integers');
SELECT throws_ok($$SELECT * FROM moe_evaluate('bi_m', 'drift_keyed')$$, '42804',
                 'drug vectors of dataset "drift_keyed" must be of type real[], not integer',
                 'vectors that became integers, read by key');

-- ---------------------------------------------------------------------------
-- Managing models
SELECT throws_ok(format('SELECT moe_deploy(%s)', args), code, msg, 'moe_deploy: ' || descr) FROM (VALUES
    ('NULL, 1', '22004', 'name and model_id must be given', 'moe_deploy(NULL name)'),
    ($$'', 1$$, '22023', 'name must not be empty', 'moe_deploy of an empty name'),
    ($$'x', NULL$$, '22004', 'name and model_id must be given', 'moe_deploy(NULL id)'),
    ($$'x', -1$$, '42704', 'model -1 does not exist', 'moe_deploy of an unknown id'),
    (format('(SELECT random10k FROM long_name), %s', (SELECT id FROM bi_id)), '54000', NULL,
     'moe_deploy of a name too long to index')
) AS t(args, code, msg, descr);
SELECT lives_ok(format($$SELECT moe_deploy(n, %s) FROM (VALUES ('x''; DROP TABLE bi; --'), ('pg_catalog.pg_class'),
                                                             ('"quoted"'), ('public.evil')) v(n)$$, (SELECT id FROM bi_id)),
                'models may be deployed under malicious names');
SELECT is((SELECT count(DISTINCT moe_predict('{1,2,3,4,5,6,7,8}', '{1,2,3,4,5,6,7,8}', n))
             FROM (VALUES ('x''; DROP TABLE bi; --'), ('pg_catalog.pg_class'), ('"quoted"'), ('public.evil'), ('bi_m')) v(n)),
          1::bigint, 'and each name finds that model');
SELECT throws_ok(format('SELECT moe_rollback(%s)', args), code, msg, 'moe_rollback: ' || descr) FROM (VALUES
    ('NULL', '22004', 'name must not be NULL', 'NULL name'),
    ($$''$$, '42704', 'no deployment named ""', 'an empty name'),
    ($$'x''; DROP TABLE bi; --x'$$, '42704', 'no deployment named "x''; DROP TABLE bi; --x"', 'SQL as a name'),
    ($$(SELECT plain10k FROM long_name)$$, '42704', NULL, 'a 10,000-character name'),
    ($$'bi_m'$$, '55000', 'deployment "bi_m" has no earlier model to roll back to', 'a name with one model only')
) AS t(args, code, msg, descr);
SELECT is((SELECT count(*) FROM pg_temp.bi), 128::bigint, 'and nothing was dropped');

-- featurizer specs and text scoring
SELECT throws_ok(format('SELECT moe_featurizer_spec(%s)', args), code, msg, 'moe_featurizer_spec: ' || descr) FROM (VALUES
    ($$'{"featurizer": "ecfp"}', NULL$$, '22004', 'side must be ''drug'' or ''protein''', 'NULL side'),
    ($$'{"featurizer": "ecfp"}', 'x''; --'$$, '22023', 'side must be ''drug'' or ''protein'', not "x''; --"', 'a bad side'),
    ($$'[1]', 'drug'$$, '22023', NULL, 'an array'),
    ($$'"ecfp"', 'drug'$$, '22023', NULL, 'a bare string'),
    ($$'{}', 'drug'$$, '22023', 'drug featurizer: the spec names no "featurizer"', 'no featurizer key'),
    ($$'{"featurizer": 1}', 'drug'$$, '22023', 'drug featurizer: the spec names no "featurizer"', 'a numeric featurizer'),
    ($$'{"featurizer": "ecfp", "dim": 0}', 'drug'$$, '22023', 'drug featurizer: ecfp: dim must be between 1 and 1048576, not 0', 'zero buckets'),
    ($$'{"featurizer": "ecfp", "dim": 2.5}', 'drug'$$, '22023', 'drug featurizer: parameter "dim" must be an integer', 'a fractional dim'),
    ($$'{"featurizer": "ecfp", "dim": 1e300}', 'drug'$$, '22023', 'drug featurizer: parameter "dim" must be an integer', 'a huge dim'),
    ($$'{"featurizer": "ecfp", "counts": "yes"}', 'drug'$$, '22023', 'drug featurizer: parameter "counts" must be true or false', 'a text boolean'),
    ($$'{"featurizer": "protein", "k": 9}', 'protein'$$, '22023', 'protein featurizer: protein: k must be between 1 and 3, not 9', 'k = 9'),
    ($$'{"featurizer": "x''; DROP TABLE bi; --"}', 'drug'$$, '22023', 'drug featurizer: unknown featurizer "x''; DROP TABLE bi; --"', 'SQL as a featurizer')
) AS t(args, code, msg, descr);
SELECT is(moe_featurizer_spec('null', 'protein'), NULL, 'a JSON null spec: user vectors');
SELECT throws_ok(format('SELECT moe_create_dataset(%s)', args), '22023', msg, 'moe_create_dataset: ' || descr) FROM (VALUES
    ($$'d', 'bi', protein_column => 'target_vec', drug_featurizer => '{"featurizer": "protein"}'$$,
     'drug featurizer: featurizer "protein" makes protein vectors, not drug vectors', 'a protein featurizer for drugs'),
    ($$'d', 'bi', protein_column => 'target_vec', protein_featurizer => '{"featurizer": "nope"}'$$,
     'protein featurizer: unknown featurizer "nope"', 'an unknown featurizer')
) AS t(args, msg, descr);
SELECT throws_ok(format('SELECT moe_predict(%s)', args), code, msg, 'text moe_predict: ' || descr) FROM (VALUES
    ($$'CCO', 'MKT', 'bi_m'$$, '42809', format('model %s was trained on drug vectors supplied by the user: it cannot featurize SMILES text', (SELECT id FROM bi_id)),
     'a user-vector model'),
    ($$'{1,2,3}', '{1,2,3,4,5,6,7,8}', 'bi_m'$$, '22000', format('drug vector has 3 elements, model %s expects 8', (SELECT id FROM bi_id)),
     'an untyped literal vector is still a vector'),
    ($$'{1,2,x}', '{1,2,3,4,5,6,7,8}', 'bi_m'$$, '22P02', NULL, 'a literal that is no vector'),
    ($$'{1,2,3,4,5,6,7,8}', '{1,2,3,4,5,6,7,8}'$$, '42704', 'no model given and moe_pg.default_model is not set', 'no model at all')
) AS t(args, code, msg, descr);
SELECT is(moe_predict('{1,2,3,4,5,6,7,8}', '{1,2,3,4,5,6,7,8}', 'bi_m'),
          moe_predict('{1,2,3,4,5,6,7,8}'::real[], '{1,2,3,4,5,6,7,8}'::real[], 'bi_m'),
          'untyped literal vectors score as vectors');

-- screening
CREATE TEMP TABLE lib AS SELECT DISTINCT drug_id, drug_vec AS vec FROM bi;
SELECT throws_ok(format('SELECT * FROM moe_screen(%s)', args), code, msg, 'moe_screen: ' || descr) FROM (VALUES
    ($$NULL::text, '{1,2,3,4,5,6,7,8}'::real[], 'lib'$$, '22004', NULL, 'NULL model'),
    ($$'bi_m', NULL::real[], 'lib'$$, '22004', NULL, 'NULL target'),
    ($$'bi_m', '{1,2,3,4,5,6,7,8}'::real[], NULL$$, '22004', NULL, 'NULL compounds'),
    ($$'bi_m', '{1,2,3,4,5,6,7,8}'::real[], 'lib', -5$$, '22023', 'n must be between 1 and 1000000, not -5', 'a negative n'),
    ($$'bi_m', '{1,2,3,4,5,6,7,8}'::real[], 'lib', 2000000$$, '22023', 'n must be between 1 and 1000000, not 2000000', 'a huge n'),
    ($$'bi_m', '{1,2,3}'::real[], 'lib'$$, '22000', NULL, 'a short target'),
    ($$'bi_m', '{1,2,3,4,5,6,7,8}'::real[], 'lib', drug_column => NULL$$, '22004', NULL, 'NULL drug_column'),
    ($$'bi_m', '{1,2,3,4,5,6,7,8}'::real[], 'lib', drug_column => 'x''; DROP TABLE bi; --'$$, '42703', NULL, 'SQL as a column'),
    ($$'bi_m', '{1,2,3,4,5,6,7,8}'::real[], 'lib', key_column => 'ctid'$$, '42703', NULL, 'a system column as the key'),
    ($$'bi_m', '{1,2,3,4,5,6,7,8}'::real[], 'bi', drug_column => 'label'$$, '42804', NULL, 'a real column'),
    ($$'bi_m', '{1,2,3,4,5,6,7,8}'::real[], 'pg_catalog.pg_class'$$, '42703', NULL, 'a catalog'),
    ($$'bi_m', '{1,2,3,4,5,6,7,8}'::real[], 'nope'$$, '42P01', NULL, 'an unknown relation'),
    ($$'bi_m', 'MKT', 'lib'$$, '42809', NULL, 'a sequence for a user-vector model'),
    ($$-1::bigint, '{1,2,3,4,5,6,7,8}'::real[], 'lib'$$, '42704', 'model -1 does not exist', 'an unknown id')
) AS t(args, code, msg, descr);
SELECT is((SELECT count(*) FROM moe_screen('bi_m', '{1,2,3,4,5,6,7,8}'::real[], 'lib', 3)), 3::bigint,
          'a good screen after all of that');
SELECT throws_ok($$SELECT moe_drop_model(NULL)$$, '22004', 'model_id must not be NULL', 'moe_drop_model(NULL)');
SELECT throws_ok($$SELECT moe_drop_model(-1)$$, '42704', 'model -1 does not exist', 'moe_drop_model of an unknown id');
SELECT is_empty($$SELECT * FROM moe_model_info(NULL::text)$$, 'moe_model_info(NULL) gives no rows');
SELECT throws_ok($$SELECT * FROM moe_model_info('x''; DROP TABLE bi; --x')$$, '42704',
                 'model "x''; DROP TABLE bi; --x" does not exist', 'moe_model_info of an unknown name');
SELECT throws_ok($$SELECT * FROM moe_model_info(0)$$, '42704', 'model 0 does not exist', 'moe_model_info of id 0');
SELECT is(moe_report(NULL::text), NULL, 'moe_report(NULL) is NULL');
SELECT throws_ok($$SELECT moe_report('public.evil2')$$, '42704', 'model "public.evil2" does not exist', 'moe_report of an unknown name');
SELECT throws_ok($$SELECT moe_report(-1)$$, '42704', 'model -1 does not exist', 'moe_report of an unknown id');
SELECT throws_ok($$SELECT * FROM moe_distribute(NULL)$$, '0A000', 'moe_distribute needs the citus extension in this database',
                 'moe_distribute(NULL) (every model) without Citus: refused, nothing done');
SELECT throws_ok($$SELECT * FROM moe_distribute(-1)$$, '0A000', 'moe_distribute needs the citus extension in this database',
                 'moe_distribute of an unknown model without Citus: the missing Citus is said first');
SELECT lives_ok($$SELECT moe_cache_clear(NULL)$$, 'moe_cache_clear(NULL) clears this connection''s caches');
SELECT throws_ok($$SELECT moe_cache_clear('x''; DROP TABLE bi; --')$$, '22023',
                 'unknown scope "x''; DROP TABLE bi; --" (valid: connection, database, server)', 'an unknown cache scope');
SELECT lives_ok($$SELECT * FROM moe_cache()$$, 'moe_cache() after all of the above');

-- export and import: paths are absolute, files are validated
SELECT is(moe_export_model(NULL::text, '/tmp/x.ckpt'), NULL, 'moe_export_model(NULL model) is NULL');
SELECT is(moe_export_model('bi_m', NULL), NULL, 'moe_export_model(NULL path) is NULL');
SELECT throws_ok(format('SELECT moe_export_model(%s)', args), code, msg, 'moe_export_model: ' || descr) FROM (VALUES
    ($$'bi_m', 'x''; DROP TABLE bi; --'$$, '42602', 'path "x''; DROP TABLE bi; --" must be absolute', 'a relative path'),
    ($$'bi_m', ''$$, '42602', 'path "" must be absolute', 'an empty path'),
    ($$'bi_m', '/nonexistent/m.ckpt'$$, '58P01', NULL, 'a missing directory'),
    ($$'x''; DROP TABLE bi; --x', '/tmp/x.ckpt'$$, '42704', 'model "x''; DROP TABLE bi; --x" does not exist', 'an unknown model'),
    ($$0, '/tmp/x.ckpt'$$, '42704', 'model 0 does not exist', 'model id 0')
) AS t(args, code, msg, descr);
SELECT lives_ok(format('SELECT moe_export_model(%L, %L)', 'bi_m', current_setting('data_directory') || '/bi_good.ckpt'),
                'export a good checkpoint');
SELECT throws_ok(format('SELECT moe_import_model(%s)', args), code, msg, 'moe_import_model: ' || descr) FROM (VALUES
    ('NULL', '22004', 'path and deploy must not be NULL', 'moe_import_model(NULL)'),
    (format('%L, %L, NULL', current_setting('data_directory') || '/bi_good.ckpt', 'n'), '22004',
     'path and deploy must not be NULL', 'NULL deploy'),
    (format('%L, %L', current_setting('data_directory') || '/bi_good.ckpt', ''), '22023', 'name must not be empty',
     'an empty name'),
    ($$'relative/m.ckpt'$$, '42602', 'path "relative/m.ckpt" must be absolute', 'a relative path'),
    (quote_literal(current_setting('data_directory')), '42809',
     format('"%s" is not a regular file', current_setting('data_directory')), 'a directory'),
    ($$'/dev/null'$$, '42809', '"/dev/null" is not a regular file', 'a device'),
    ($$'/nonexistent/m.ckpt'$$, '58P01', NULL, 'a missing file')
) AS t(args, code, msg, descr);

-- ---------------------------------------------------------------------------
-- Damaged checkpoints, in files and in rows.
CREATE FUNCTION pg_temp.crc32(b bytea) RETURNS bigint LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
    crc bigint := 4294967295;
BEGIN
    FOR i IN 0 .. length(b) - 1 LOOP
        crc := crc # get_byte(b, i);
        FOR j IN 1 .. 8 LOOP
            crc := CASE WHEN crc & 1 = 1 THEN (crc >> 1) # 3988292384 ELSE crc >> 1 END;
        END LOOP;
    END LOOP;
    RETURN crc # 4294967295;
END;
$$;
-- A checkpoint whose last four bytes are again the CRC-32 of the rest (a forgery).
CREATE FUNCTION pg_temp.reseal(b bytea) RETURNS bytea LANGUAGE sql IMMUTABLE AS $$
    SELECT body || set_byte(set_byte(set_byte(set_byte('\x00000000'::bytea, 0, (c & 255)::int), 1, (c >> 8 & 255)::int),
                                     2, (c >> 16 & 255)::int), 3, (c >> 24 & 255)::int)
      FROM (SELECT substr(b, 1, length(b) - 4) AS body) s, LATERAL (SELECT pg_temp.crc32(s.body) AS c) x
$$;
CREATE FUNCTION pg_temp.write_file(b bytea, path text) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    o oid := lo_from_bytea(0, b);
BEGIN
    PERFORM lo_export(o, path);
    PERFORM lo_unlink(o);
END;
$$;
CREATE TEMP TABLE good AS SELECT checkpoint AS c FROM moe.models WHERE id = (SELECT id FROM bi_id);
CREATE TEMP TABLE damaged (what text, c bytea, code text, msg text);
INSERT INTO damaged SELECT v.what, v.c, v.code, v.msg FROM good, LATERAL (VALUES
    ('flipped', overlay(c PLACING '\xdeadbeef'::bytea FROM length(c) / 2), 'XX001', 'checkpoint is corrupted (checksum mismatch)'),
    ('truncated', substr(c, 1, 1000), 'XX001', 'checkpoint is truncated (1000 bytes)'),
    ('cut to its header', substr(c, 1, 20), 'XX001', 'checkpoint is truncated (20 bytes)'),
    ('one byte longer', c || '\x00'::bytea, 'XX001', 'checkpoint has 1 trailing bytes'),
    ('empty', '\x'::bytea, 'XX001', 'not a moe_pg checkpoint (0 bytes)'),
    ('not a checkpoint', convert_to('x''; DROP TABLE bi; --', 'UTF8'), 'XX001', 'not a moe_pg checkpoint (bad magic number)'),
    ('from the future', overlay(c PLACING '\x02000000'::bytea FROM 9), '0A000',
     'checkpoint format version 2 is newer than this moe_pg reads (1); upgrade the extension'),
    ('of version 0', overlay(c PLACING '\x00000000'::bytea FROM 9), 'XX001', 'checkpoint has invalid format version 0'),
    ('forged: top_k 99', pg_temp.reseal(overlay(c PLACING '\x63000000'::bytea FROM 117)), 'XX001',
     'checkpoint has an invalid configuration: top_k must be between 1 and experts (4), not 99'),
    ('forged: a NaN weight', pg_temp.reseal(overlay(c PLACING '\x0000c07f'::bytea FROM length(c) - 7)), 'XX001', NULL)
) AS v(what, c, code, msg);
-- as files, through moe_import_model
SELECT pg_temp.write_file(c, current_setting('data_directory') || '/bi_' || md5(what) || '.ckpt') FROM damaged;
SELECT throws_ok(format('SELECT moe_import_model(%L, %L)', current_setting('data_directory') || '/bi_' || md5(what) || '.ckpt', 'n'),
                 code, CASE WHEN msg IS NOT NULL
                            THEN format('"%s" is not a usable model: %s',
                                        current_setting('data_directory') || '/bi_' || md5(what) || '.ckpt', msg) END,
                 format('moe_import_model refuses a checkpoint %s', what))
  FROM damaged ORDER BY what;
-- as rows (written around the import's checks), through every reader
INSERT INTO moe.models (name, dataset, config, checkpoint) SELECT 'bi_' || what, 'bi', '{}', c FROM damaged;
INSERT INTO moe.deployments (name, model_id) SELECT name, id FROM moe.models WHERE name LIKE 'bi\_%' AND name <> 'bi_m';
SELECT throws_ok(format($$SELECT moe_predict('{1,2,3,4,5,6,7,8}', '{1,2,3,4,5,6,7,8}', %s)$$, m.id), d.code,
                 CASE WHEN d.msg IS NOT NULL THEN format('cannot load model %s: %s', m.id, d.msg) END,
                 format('moe_predict refuses a stored checkpoint %s', d.what))
  FROM damaged d JOIN moe.models m ON m.name = 'bi_' || d.what ORDER BY d.what;
SELECT throws_ok(format('SELECT * FROM moe_model_info(%s)', m.id), d.code,
                 format('cannot read model %s: %s', m.id, d.msg), format('moe_model_info refuses a stored checkpoint %s', d.what))
  FROM damaged d JOIN moe.models m ON m.name = 'bi_' || d.what WHERE d.what IN ('flipped', 'from the future', 'empty')
 ORDER BY d.what;
SELECT throws_ok(format(f.sql, quote_literal('bi_flipped')), 'XX001',
                 format('cannot load model %s: checkpoint is corrupted (checksum mismatch)',
                        (SELECT id FROM moe.models WHERE name = 'bi_flipped')),
                 format('%s refuses a corrupted checkpoint', f.fn))
  FROM (VALUES ('moe_route', $$SELECT * FROM moe_route('{1,2,3,4,5,6,7,8}', '{1,2,3,4,5,6,7,8}', %s)$$),
               ('moe_gate', $$SELECT * FROM moe_gate('{1,2,3,4,5,6,7,8}', '{1,2,3,4,5,6,7,8}', %s)$$),
               ('moe_expert_outputs', $$SELECT moe_expert_outputs('{1,2,3,4,5,6,7,8}', '{1,2,3,4,5,6,7,8}', %s)$$),
               ('moe_predict_batch', $$SELECT * FROM moe_predict_batch('{{1,2,3,4,5,6,7,8}}', '{{1,2,3,4,5,6,7,8}}', %s)$$),
               ('moe_predict_matrix', $$SELECT * FROM moe_predict_matrix('{{1,2,3,4,5,6,7,8}}', '{{1,2,3,4,5,6,7,8}}', %s)$$),
               ('moe_evaluate', $$SELECT * FROM moe_evaluate(%s)$$),
               ('moe_routing', $$SELECT * FROM moe_routing(%s)$$),
               ('moe_specialization', $$SELECT * FROM moe_specialization(%s)$$),
               ('moe_expert_profile', $$SELECT * FROM moe_expert_profile(%s)$$),
               ('moe_expert_agreement', $$SELECT * FROM moe_expert_agreement(%s)$$),
               ('moe_cluster_recovery', $$SELECT * FROM moe_cluster_recovery(%s)$$),
               ('moe_score', $$CALL moe_score(%s, 'bi', 'pg_temp.o', protein_column => 'target_vec')$$)) AS f(fn, sql)
 ORDER BY f.fn;
SELECT lives_ok($$SELECT moe_report('bi_flipped')$$, 'moe_report of a corrupted model reports what the tables hold');
SELECT lives_ok(format('SELECT moe_export_model(%L, %L)', 'bi_flipped', current_setting('data_directory') || '/bi_out.ckpt'),
                'moe_export_model copies a damaged row as it is');
SELECT throws_ok(format('SELECT moe_import_model(%L)', current_setting('data_directory') || '/bi_out.ckpt'), 'XX001', NULL,
                 'and moe_import_model refuses it');
-- forged metadata under a valid checksum
SELECT pg_temp.write_file(pg_temp.reseal(overlay(c PLACING convert_to('"name": ""    ', 'UTF8')
                                                 FROM position(convert_to('"name": "bi_m"', 'UTF8') IN c))),
                          current_setting('data_directory') || '/bi_noname.ckpt') FROM good;
SELECT throws_ok(format('SELECT moe_import_model(%L)', current_setting('data_directory') || '/bi_noname.ckpt'), '22004',
                 format('cannot import "%s": the file names no model, so name must be given',
                        current_setting('data_directory') || '/bi_noname.ckpt'),
                 'a file whose metadata names no model needs a name');
SELECT pg_temp.write_file(pg_temp.reseal(overlay(c PLACING convert_to('x', 'UTF8') FROM position(convert_to('{"name"', 'UTF8') IN c))),
                          current_setting('data_directory') || '/bi_notjson.ckpt') FROM good;
SELECT throws_ok(format('SELECT moe_import_model(%L, %L)', current_setting('data_directory') || '/bi_notjson.ckpt', 'n'), 'XX001',
                 format('cannot import "%s": its metadata is not valid JSON', current_setting('data_directory') || '/bi_notjson.ckpt'),
                 'metadata that is not JSON');
SELECT pg_temp.write_file(pg_temp.reseal(overlay(c PLACING convert_to('"experts":-9', 'UTF8')
                                                 FROM position(convert_to('"experts": 4', 'UTF8') IN c))),
                          current_setting('data_directory') || '/bi_experts.ckpt') FROM good;
SELECT lives_ok(format('SELECT moe_import_model(%L, %L)', current_setting('data_directory') || '/bi_experts.ckpt', 'bi_forged'),
                'metadata is description: a forged expert count imports');
SELECT ok(moe_report('bi_forged') LIKE '%, 0 experts,%', 'and moe_report does not trust it');

-- ---------------------------------------------------------------------------
-- Router statistics and the usage aggregate
SELECT throws_ok(format('SELECT moe_router_stats(%s)', args), code, msg, 'moe_router_stats: ' || descr) FROM (VALUES
    ($$NULL, '{1,2}'$$, '22004', 'mean_prob and selections must not be NULL', 'NULL mean_prob'),
    ($$'{{0.5,0.5},{0.5,0.5}}', '{1,2,3,4}'$$, '22023', 'mean_prob must be a one-dimensional array, not 2-dimensional',
     '2-D mean_prob'),
    ($$'{0.5,0.5}', '{{1},{2}}'$$, '22023', 'selections must be a one-dimensional array, not 2-dimensional', '2-D selections'),
    ($$'{0.5,0.5}', '{1,2,3}'$$, '22023', 'mean_prob has 2 elements and selections 3; they must have one per expert',
     'mismatched lengths'),
    ($$'{0.5,Infinity}', '{1,2}'$$, '22023', 'mean_prob element 2 is Infinity; it must be finite and non-negative',
     'an infinite probability'),
    ($$'{-Infinity,0.5}', '{1,2}'$$, '22023', 'mean_prob element 1 is -Infinity; it must be finite and non-negative',
     'a minus infinite probability'),
    ($$'{1e308,1e308}', '{1,2}'$$, '22003', 'mean_prob sums to more than a double precision holds',
     'finite probabilities whose sum overflows'),
    ($$'{0.5,0.5}', '{9223372036854775807,9223372036854775807}'$$, '22003', 'selections sum to more than a bigint holds',
     'selections whose sum overflows'),
    ($$'{0.5,0.5}', '{-1,2}'$$, '22023', 'selections element 1 is negative', 'negative selections'),
    ($$'{0.5,0.5}', '{1,2}', 'NaN'$$, '22023', 'row_entropy must be between 0 and 1 (entropy / ln E), not NaN', 'NaN row_entropy'),
    ($$'{0.5,0.5}', '{1,2}', 'Infinity'$$, '22023', 'row_entropy must be between 0 and 1 (entropy / ln E), not Infinity',
     'infinite row_entropy'),
    ($$'{0.5,0.5}', '{1,2}', -5$$, '22023', 'row_entropy must be between 0 and 1 (entropy / ln E), not -5',
     'negative row_entropy'),
    ($$array_fill(0.1::float8, ARRAY[10000000]), array_fill(1::bigint, ARRAY[10000000])$$, '22023',
     'at most 64 experts, not 10000000', 'ten million experts')
) AS t(args, code, msg, descr);
SELECT is((moe_router_stats('{0.5,0.5}', '{1,2}', NULL)).row_entropy, NULL, 'a NULL row_entropy stays NULL');

SELECT throws_ok(format('SELECT moe_usage(p, s) FROM (VALUES %s) v(p, s)', rows), code, msg, 'moe_usage: ' || descr) FROM (VALUES
    ($$('{}'::real[], '{}'::int[])$$, '22023', 'probs must not be empty', 'moe_usage of an empty row'),
    ($$('{{0.5,0.5}}'::real[], '{0}'::int[])$$, '22023', 'probs must be a one-dimensional array, not 2-dimensional', '2-D probs'),
    ($$('{0.5,NULL}'::real[], '{0}'::int[])$$, '22004', 'probs must not contain NULL (element 2 is)', 'a NULL probability'),
    ($$('{0.5,NaN}'::real[], '{0}'::int[])$$, '22023', 'probs element 2 is nan; probabilities must be finite and non-negative',
     'a NaN probability'),
    ($$('{Infinity,0.5}'::real[], '{0}'::int[])$$, '22023', 'probs element 1 is inf; probabilities must be finite and non-negative',
     'an infinite probability'),
    ($$('{0.5,-Infinity}'::real[], '{0}'::int[])$$, '22023',
     'probs element 2 is -inf; probabilities must be finite and non-negative', 'a minus infinite probability'),
    ($$('{0.5,0.5}'::real[], '{2}'::int[])$$, '22023', 'selected expert 2 is outside 0..1', 'an expert out of range'),
    ($$('{0.5,0.5}'::real[], '{0,0}'::int[])$$, '22023', 'selected lists expert 0 twice', 'an expert selected twice'),
    ($$('{0.5,0.5}'::real[], '{0}'::int[]), ('{0.3,0.3,0.4}'::real[], '{0}'::int[])$$, '22000',
     'probs has 3 elements in this row and 2 in earlier ones', 'rows of different widths'),
    ($$(array_fill(0.001::real, ARRAY[10000000]), '{0}'::int[])$$, '22023', 'at most 64 experts, not 10000000',
     'ten million experts')
) AS t(rows, code, msg, descr);
SELECT is((SELECT moe_usage(p, s) FROM (VALUES (NULL::real[], '{0}'::int[]), ('{0.5,0.5}', NULL)) v(p, s)), NULL,
          'moe_usage skips NULL rows: only NULL rows give NULL');

-- support and trigger functions are not entry points
SELECT throws_ok($$SELECT moe_usage_transfn(NULL, '{0.5,0.5}', '{0}')$$, '42883', NULL,
                 'the transition function cannot be called from SQL');
SELECT throws_ok($$SELECT moe_usage_serialfn(NULL)$$, '42883', NULL, 'the serial function cannot be called from SQL');
SELECT throws_ok($$SELECT moe_usage_deserialfn('\x00'::bytea, NULL)$$, '42883', NULL,
                 'the deserial function cannot be called from SQL');
SELECT throws_ok($$SELECT moe_usage_combinefn(NULL, NULL)$$, '42883', NULL, 'the combine function cannot be called from SQL');
SELECT throws_ok($$SELECT moe_usage_finalfn(NULL)$$, '42883', NULL, 'the final function cannot be called from SQL');
SELECT throws_ok($$SELECT moe.models_are_immutable()$$, '0A000', 'trigger functions can only be called as triggers',
                 'moe.models_are_immutable() is a trigger only');
SELECT throws_ok($$SELECT moe.forget_cached_model()$$, '39P01',
                 'moe.forget_cached_model() must be called as an AFTER DELETE row or AFTER TRUNCATE trigger',
                 'moe.forget_cached_model() is a trigger only');
SELECT throws_ok($$SELECT moe.check_owner()$$, '0A000', 'trigger functions can only be called as triggers',
                 'moe.check_owner() is a trigger only');
SELECT throws_ok($$SELECT moe.guard_models()$$, '39P01', 'moe.guard_models() must be called as a BEFORE trigger',
                 'moe.guard_models() is a trigger only');

-- ---------------------------------------------------------------------------
-- moe_train's SQL signature against the library's option table: copies of
-- the procedure with two same-typed arguments swapped, with an argument
-- left out and with a renamed one are refused (0A000), never read at the
-- wrong places; the same copy with the installed names trains.
CREATE SCHEMA drift;
CREATE FUNCTION pg_temp.train_copy(args text, name text) RETURNS void LANGUAGE plpgsql AS $f$
BEGIN
    EXECUTE format('CREATE PROCEDURE drift.%I(%s) AS %L, %L LANGUAGE C',
                   name, args, (SELECT probin FROM pg_proc WHERE oid = 'moe_train'::regproc), 'moe_train_sql');
END $f$;
CREATE TEMP TABLE sig AS SELECT pg_get_function_arguments('moe_train'::regproc) AS args;
SELECT pg_temp.train_copy(args, 'same') FROM sig;
SELECT pg_temp.train_copy(replace(replace(replace(args, 'experts integer', 'x_tmp integer'),
                                          'top_k integer', 'experts integer'), 'x_tmp integer', 'top_k integer'),
                          'swapped') FROM sig;
SELECT pg_temp.train_copy(replace(args, 'IN max_seconds real DEFAULT NULL::real, ', ''), 'shorter') FROM sig;
SELECT pg_temp.train_copy(replace(args, 'patience integer', 'patient integer'), 'renamed') FROM sig;
-- Defaults drifted from the library's (train_spec_defaults), one per type.
CREATE TEMP TABLE drifted_default (name text, from_text text, to_text text);
INSERT INTO drifted_default VALUES
    ('epochs_50', 'epochs integer DEFAULT 100', 'epochs integer DEFAULT 50'),
    ('lr_2e3', 'lr real DEFAULT 0.001', 'lr real DEFAULT 0.002'),
    ('lb_weight_given', 'lb_weight real DEFAULT NULL::real', 'lb_weight real DEFAULT 0.001'),
    ('deploy_always', $$deploy text DEFAULT 'if_better'::text$$, $$deploy text DEFAULT 'always'::text$$),
    ('gate_one_layer', $$gate_hidden integer[] DEFAULT '{512,256}'::integer[]$$, $$gate_hidden integer[] DEFAULT '{512}'::integer[]$$),
    ('seed_7', 'seed bigint DEFAULT 42', 'seed bigint DEFAULT 7'),
    ('noisy', 'noisy_gating boolean DEFAULT false', 'noisy_gating boolean DEFAULT true');
SELECT pg_temp.train_copy(replace(args, from_text, to_text), name) FROM sig, drifted_default
 WHERE strpos(args, from_text) > 0;
SELECT lives_ok($$CALL drift.same('bi', model_name => 'sig_same', epochs => 1, deploy => 'never',
                                  drug_hidden => '{4}', protein_hidden => '{4}', gate_hidden => '{4}', expert_hidden => '{4}')$$,
                'a copy of moe_train with the installed signature trains');
SELECT throws_ok($$CALL drift.swapped('bi', epochs => 1, deploy => 'never')$$, '0A000',
                 'moe_train''s SQL definition does not match the moe_pg library',
                 'two same-typed arguments swapped: refused, not read at the wrong places');
SELECT throws_ok($$CALL drift.shorter('bi', epochs => 1, deploy => 'never')$$, '0A000',
                 'moe_train''s SQL definition does not match the moe_pg library',
                 'an argument left out: refused');
SELECT throws_ok($$CALL drift.renamed('bi', epochs => 1, deploy => 'never')$$, '0A000',
                 'moe_train''s SQL definition does not match the moe_pg library',
                 'an argument renamed: refused');
SELECT is((SELECT count(*) FROM pg_proc WHERE pronamespace = 'drift'::regnamespace
                                          AND proname IN (SELECT name FROM drifted_default)),
          (SELECT count(*) FROM drifted_default), 'every drifted copy was made (its default text was found)');
SELECT throws_ok(format($$CALL drift.%I('bi', model_name => 'sig_drift', deploy => 'never')$$, name), '0A000',
                 'moe_train''s SQL definition does not match the moe_pg library',
                 format('a SQL default other than the library''s (%s): refused', to_text))
  FROM drifted_default ORDER BY name;

-- ---------------------------------------------------------------------------
SELECT ok(to_regclass('pg_temp.bi') IS NOT NULL AND (SELECT count(*) FROM bi) = 128, 'the fixture table survived everything');
SELECT * FROM finish();
ROLLBACK;
