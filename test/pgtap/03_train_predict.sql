-- Training on synthetic data, scoring, routing, evaluation, and bad input.
-- Inside this test's transaction moe_train cannot commit; it trains in the
-- transaction (the committing path is tested in test/sql/train_commit.sql).
BEGIN;
SELECT plan(47);
SET LOCAL client_min_messages = error;

CREATE TEMP TABLE syn AS SELECT * FROM moe_synthetic_dta(60, 40, 4, seed => 11);
SELECT moe_create_dataset('syn', 'syn', protein_column => 'target_vec',
                          drug_key_column => 'drug_id', protein_key_column => 'target_id');

-- A small network so the test is quick.
CALL moe_train('syn', model_name => 'syn_small', epochs => 60, batch_size => 64, lr => 0.003,
               drug_hidden => '{32}', protein_hidden => '{32}', gate_hidden => '{32,16}',
               expert_hidden => '{32,16}', patience => 15, seed => 1);

SELECT is((SELECT status FROM moe.training_runs WHERE model_name = 'syn_small'), 'completed', 'the run completed');
SELECT ok((SELECT model_id IS NOT NULL FROM moe.training_runs WHERE model_name = 'syn_small'), 'the run points at its model');
SELECT is((SELECT count(*) FROM moe.training_history h JOIN moe.training_runs r ON r.id = h.run_id
            WHERE r.model_name = 'syn_small'),
          (SELECT epochs_run::bigint FROM moe.training_runs WHERE model_name = 'syn_small'),
          'one history row per epoch');
SELECT is((SELECT count(*) FROM moe.training_history h JOIN moe.training_runs r ON r.id = h.run_id
            WHERE r.model_name = 'syn_small' AND h.is_best AND h.epoch = r.best_epoch), 1::bigint,
          'the best epoch is marked');
SELECT is((SELECT model_id FROM moe.deployments WHERE name = 'syn_small'),
          (SELECT max(id) FROM moe.models WHERE name = 'syn_small'), 'the name is deployed');
SELECT is((SELECT config->>'experts' FROM moe.models WHERE name = 'syn_small'), '4', 'the config is stored');

-- Accuracy: the stated margin is test MSE below half of the MSE of
-- predicting the training mean for every test pair.
CREATE TEMP TABLE baseline AS
SELECT avg((s.label - m.mean)^2) AS mean_predictor_mse
  FROM syn s, (SELECT avg(label) AS mean FROM syn WHERE split = 'train') m WHERE s.split = 'test';
SELECT cmp_ok((SELECT mse FROM moe_evaluate('syn_small')), '<',
              (SELECT 0.5 * mean_predictor_mse FROM baseline),
              'test MSE is below half of the mean predictor''s');
SELECT cmp_ok((SELECT ci FROM moe_evaluate('syn_small')), '>', 0.8::float8, 'test CI is above 0.8');
SELECT is((SELECT round((metrics->'test'->>'mse')::numeric, 5) FROM moe.models WHERE name = 'syn_small'),
          (SELECT round(mse::numeric, 5) FROM moe_evaluate('syn_small')),
          'the stored test metrics match moe_evaluate');
SELECT is((SELECT round(mse::numeric, 6) FROM moe_evaluate('syn_small')),
          (SELECT round(avg((moe_predict(drug_vec, target_vec, 'syn_small') - label)^2)::numeric, 6)
             FROM syn WHERE split = 'test'),
          'moe_evaluate agrees with an MSE computed in SQL from moe_predict');
SELECT is((SELECT n FROM moe_evaluate('syn_small', split => 'all')), 2400::bigint, 'split all covers every row');

-- Scoring by id and by name agree; a row alone and in a query agree.
SELECT is((SELECT moe_predict(drug_vec, target_vec, 'syn_small') FROM syn ORDER BY drug_id, target_id LIMIT 1),
          (SELECT moe_predict(drug_vec, target_vec, (SELECT max(id) FROM moe.models WHERE name = 'syn_small'))
             FROM syn ORDER BY drug_id, target_id LIMIT 1),
          'by name and by id give the same score');
SELECT ok((SELECT bool_and(provolatile = 'i') FROM pg_proc
            WHERE proname IN ('moe_predict', 'moe_route') AND proargtypes[2] = 'bigint'::regtype),
          'by id is IMMUTABLE');
SELECT ok((SELECT bool_and(provolatile = 's') FROM pg_proc
            WHERE proname IN ('moe_predict', 'moe_route') AND proargtypes[2] = 'text'::regtype),
          'by name is STABLE');
SELECT ok((SELECT bool_and(proparallel = 's') FROM pg_proc WHERE proname IN ('moe_predict', 'moe_route', 'moe_evaluate')),
          'scoring is PARALLEL SAFE');

-- Routing: E rows, probabilities sum to one, k selected with weights summing to one.
CREATE TEMP TABLE r AS
SELECT x.* FROM (SELECT * FROM syn ORDER BY drug_id, target_id LIMIT 1) s,
               LATERAL moe_route(s.drug_vec, s.target_vec, 'syn_small') x;
SELECT is((SELECT count(*) FROM r), 4::bigint, 'one routing row per expert');
SELECT is((SELECT round(sum(gate_prob)::numeric, 5) FROM r), 1.00000, 'gate probabilities sum to one');
SELECT is((SELECT count(*) FROM r WHERE selected), 2::bigint, 'top_k experts are selected');
SELECT is((SELECT round(sum(weight)::numeric, 5) FROM r WHERE selected), 1.00000, 'selected weights sum to one');
SELECT is((SELECT count(*) FROM r WHERE NOT selected AND weight <> 0), 0::bigint, 'unselected experts weigh nothing');
-- Selection ranks probability plus the aux-free bias (on by default) that
-- the kept epoch ended with.
CREATE TEMP TABLE kept_bias AS
SELECT h.expert, h.bias FROM moe.expert_history h JOIN moe.training_runs t ON t.id = h.run_id
 WHERE t.model_name = 'syn_small' AND h.epoch = t.best_epoch AND h.layer = 1;
SELECT ok((SELECT min(gate_prob + bias) FROM r JOIN kept_bias USING (expert) WHERE selected)
          >= (SELECT max(gate_prob + bias) FROM r JOIN kept_bias USING (expert) WHERE NOT selected),
          'the selected experts have the highest probability plus selection bias');

-- Determinism: the same seed trains the same weights.
CALL moe_train('syn', model_name => 'syn_again', epochs => 3, batch_size => 64,
               drug_hidden => '{16}', protein_hidden => '{16}', gate_hidden => '{16}', expert_hidden => '{16}', seed => 9);
CALL moe_train('syn', model_name => 'syn_again2', epochs => 3, batch_size => 64,
               drug_hidden => '{16}', protein_hidden => '{16}', gate_hidden => '{16}', expert_hidden => '{16}', seed => 9);
SELECT is((SELECT params_md5 FROM moe_model_info('syn_again')), (SELECT params_md5 FROM moe_model_info('syn_again2')),
          'the same seed gives bit-identical parameters');
SELECT isnt((SELECT params_md5 FROM moe_model_info('syn_again')), (SELECT params_md5 FROM moe_model_info('syn_small')),
            'another model has other parameters');
-- ... at one thread and at two (OpenBLAS splits products by thread count,
-- so each count is its own promise), dense and sparse first layers
CREATE FUNCTION pg_temp.train_twice(threads int, sparse text) RETURNS SETOF text LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE format('SET LOCAL moe_pg.threads = %s', threads);
    FOR i IN 1..2 LOOP
        EXECUTE format('CALL moe_train(%L, model_name => %L, epochs => 2, batch_size => 32, seed => 5, deploy => ''never'',
                                       drug_hidden => ''{96}'', protein_hidden => ''{96}'', gate_hidden => ''{64}'',
                                       expert_hidden => ''{64}'', sparse_inputs => %L)',
                       'syn', format('det_%s_%s', threads, sparse), sparse);
        RETURN NEXT (SELECT (moe_model_info(max(id))).params_md5 FROM moe.models WHERE name = format('det_%s_%s', threads, sparse));
    END LOOP;
END $$;
SELECT is((SELECT count(DISTINCT h) FROM pg_temp.train_twice(1, 'off') h), 1::bigint,
          'one thread: the same seed twice gives the same bits');
SELECT is((SELECT count(DISTINCT h) FROM pg_temp.train_twice(2, 'off') h), 1::bigint,
          'two threads: the same seed twice gives the same bits');
SELECT is((SELECT count(DISTINCT h) FROM pg_temp.train_twice(2, 'on') h), 1::bigint,
          'two threads, sparse first layers: the same seed twice gives the same bits');
-- ... whatever order the rows come back in: the same rows rewritten in
-- another physical order (keyed and keyless), and read through a view
-- whose join runs backwards, train the same bits.
CREATE TEMP TABLE syn_shuffled AS SELECT * FROM syn ORDER BY md5(drug_id::text || target_id::text);
CREATE TEMP TABLE syn_reversed AS SELECT * FROM syn ORDER BY drug_id DESC, target_id DESC;
CREATE TEMP VIEW syn_joined AS
    SELECT r.drug_id, r.target_id, r.drug_vec, s.target_vec, s.label, s.split
      FROM syn_reversed r JOIN syn_shuffled s USING (drug_id, target_id);
SELECT moe_create_dataset('syn_shuffled', 'syn_shuffled', protein_column => 'target_vec',
                          drug_key_column => 'drug_id', protein_key_column => 'target_id');
SELECT moe_create_dataset('syn_joined', 'syn_joined', protein_column => 'target_vec',
                          drug_key_column => 'drug_id', protein_key_column => 'target_id');
SELECT moe_create_dataset('syn_nokeys', 'syn', protein_column => 'target_vec');
SELECT moe_create_dataset('syn_nokeys_reversed', 'syn_reversed', protein_column => 'target_vec');
CREATE FUNCTION pg_temp.order_md5(ds text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE format('CALL moe_train(%L, model_name => %L, epochs => 2, batch_size => 16, seed => 5, deploy => ''never'',
                                   drug_hidden => ''{16}'', protein_hidden => ''{16}'', gate_hidden => ''{16}'',
                                   expert_hidden => ''{16}'')', ds, 'ord_' || ds);
    RETURN (SELECT (moe_model_info(max(id))).params_md5 FROM moe.models WHERE name = 'ord_' || ds);
END $$;
SELECT is(pg_temp.order_md5('syn_shuffled'), pg_temp.order_md5('syn'),
          'rows in another physical order train the same bits');
SELECT is(pg_temp.order_md5('syn_joined'), pg_temp.order_md5('syn'),
          'rows read through a join in another order train the same bits');
SELECT is(pg_temp.order_md5('syn_nokeys_reversed'), pg_temp.order_md5('syn_nokeys'),
          'without keys too: vectors, not positions, order the rows');

-- Bad options: each error names the problem.
SELECT throws_ok($$CALL moe_train('no such dataset')$$, '42704', 'dataset "no such dataset" does not exist', 'unknown dataset');
SELECT throws_ok($$CALL moe_train('syn', top_k => 5)$$, '22023', 'top_k must be between 1 and experts (4), not 5', 'k > E');
SELECT throws_ok($$CALL moe_train('syn', lb_method => 'magic')$$, '22023',
                 'unknown load-balancing method "magic" (valid: none, entropy, cv, importance, importance_e, switch, zloss, router_entropy, aux_free, sinkhorn)', 'unknown lb_method');
SELECT throws_ok($$CALL moe_train('syn', lr => -1)$$, '22023', NULL, 'negative lr');
SELECT throws_ok($$CALL moe_train('syn', lb_weight => -0.5)$$, '22023', NULL, 'negative lb_weight');
SELECT throws_ok($$CALL moe_train('syn', epochs => NULL)$$, '22004', 'epochs must not be NULL', 'NULL option');
SELECT throws_ok($$CALL moe_train('syn', lr_schedule => 'sawtooth')$$, '22023', NULL, 'unknown schedule');
SELECT throws_ok($$CALL moe_train('syn', fold => 3)$$, '22023', NULL, 'a fold on a dataset without folds');

-- Bad inputs to scoring.
SELECT throws_ok($$SELECT moe_predict('{1,2,3}'::real[], target_vec, 'syn_small') FROM syn LIMIT 1$$, '22000',
                 format('drug vector has 3 elements, model %s expects 32', (SELECT model_id FROM moe.deployments WHERE name = 'syn_small')),
                 'wrong dimension');
SELECT throws_ok($$SELECT moe_predict(drug_vec[1:31] || 'NaN'::real, target_vec, 'syn_small') FROM syn LIMIT 1$$, '22000',
                 'drug vector element 32 is NaN', 'NaN');
SELECT throws_ok($$SELECT moe_predict(drug_vec, target_vec[1:31] || '-Infinity'::real, 'syn_small') FROM syn LIMIT 1$$, '22000',
                 'protein vector element 32 is infinite', 'infinity');
SELECT throws_ok($$SELECT moe_predict('{}'::real[], target_vec, 'syn_small') FROM syn LIMIT 1$$, '22000',
                 'drug vector is empty', 'empty array');
SELECT throws_ok($$SELECT moe_predict(drug_vec[1:31] || NULL::real, target_vec, 'syn_small') FROM syn LIMIT 1$$, '22004',
                 'drug vector contains NULL elements', 'NULL element');
SELECT throws_ok($$SELECT moe_predict('{{1,2},{3,4}}'::real[], target_vec, 'syn_small') FROM syn LIMIT 1$$, '22000',
                 'drug vector must be a one-dimensional array, not 2-dimensional', 'two-dimensional array');
SELECT throws_ok($$SELECT moe_predict(drug_vec, target_vec, 'nobody') FROM syn LIMIT 1$$, '42704',
                 'model "nobody" does not exist', 'unknown model name');
SELECT throws_ok($$SELECT moe_predict(drug_vec, target_vec, -5::bigint) FROM syn LIMIT 1$$, '42704',
                 'model -5 does not exist', 'unknown model id');
SELECT is((SELECT moe_predict(NULL, target_vec, 'syn_small') FROM syn LIMIT 1), NULL, 'NULL vector, NULL score');
SELECT throws_ok($$SELECT * FROM moe_evaluate('syn_small', split => 'holdout')$$, '22023', NULL, 'unknown split');

SELECT * FROM finish();
ROLLBACK;
