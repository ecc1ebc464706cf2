-- The routing and balancing catalogue, schedules, cross-validation, sweeps
-- and the comparison views.  Small networks on synthetic data keep it quick.
BEGIN;
SELECT plan(81);
SET LOCAL client_min_messages = error;

CREATE TEMP TABLE syn AS SELECT * FROM moe_synthetic_dta(40, 40, 4, seed => 21);
SELECT moe_create_dataset('syn', 'syn', protein_column => 'target_vec',
                          drug_key_column => 'drug_id', protein_key_column => 'target_id');
\set tiny '{"drug_hidden": [32], "protein_hidden": [32], "gate_hidden": [32], "expert_hidden": [32], "batch_size": 64}'
\set tiny3 '{"drug_hidden": [32], "protein_hidden": [32], "gate_hidden": [32], "expert_hidden": [32], "batch_size": 64, "epochs": 3}'
CREATE TEMP TABLE tiny AS SELECT :'tiny'::jsonb AS o;

-- ---- each balancing term moves expert usage the way its formula says ----
-- Same data, seed and network; each method with a strong weight against
-- none, compared on the method's own measure in the last epoch.
CREATE FUNCTION pg_temp.train_lb(m text, w real) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE format('CALL moe_train(%L, model_name => %L, epochs => 15, patience => 0, lr => 0.003,
                                   lb_method => %L, lb_weight => %s, seed => 3, options => %L)',
                   'syn', 'lb_' || m, m, w, (SELECT o FROM tiny));
END $$;
SELECT pg_temp.train_lb(m, w) FROM (VALUES ('none', 0), ('entropy', 1), ('cv', 1), ('importance', 1),
    ('importance_e', 1), ('switch', 1), ('zloss', 0.1), ('router_entropy', 1), ('aux_free', 0.01),
    ('sinkhorn', 1)) v(m, w);
CREATE TEMP VIEW lb_last AS
SELECT substr(r.model_name, 4) AS method, h.aux_terms,
       (SELECT array_agg(x.bias ORDER BY x.expert) FROM moe.expert_history x
         WHERE x.run_id = r.id AND x.epoch = h.epoch) AS expert_bias,
       (SELECT stddev_pop(x.selections) / avg(x.selections) FROM moe.expert_history x
         WHERE x.run_id = r.id AND x.epoch = h.epoch) AS count_cv
  FROM moe.training_runs r JOIN moe.training_history h ON h.run_id = r.id AND h.epoch = r.epochs_run
 WHERE r.model_name LIKE 'lb\_%';
CREATE FUNCTION pg_temp.measure(m text, term text) RETURNS float8 LANGUAGE sql AS
    $$ SELECT (aux_terms ->> term)::float8 FROM lb_last WHERE method = m $$;

SELECT cmp_ok(pg_temp.measure('entropy', 'entropy'), '<', pg_temp.measure('none', 'entropy'),
              'entropy: -H(P)/log E falls, the mean gate probabilities even out');
SELECT cmp_ok(pg_temp.measure('cv', 'cv'), '<', pg_temp.measure('none', 'cv'), 'cv: CV of P falls');
SELECT cmp_ok(pg_temp.measure('importance', 'importance'), '<', pg_temp.measure('none', 'importance'),
              'importance: CV(P)^2 falls');
SELECT cmp_ok(pg_temp.measure('importance_e', 'importance_e'), '<', pg_temp.measure('none', 'importance_e'),
              'importance_e: E * CV(P)^2 falls');
SELECT cmp_ok(pg_temp.measure('switch', 'switch'), '<', pg_temp.measure('none', 'switch'),
              'switch: E * sum f P falls towards 1');
SELECT cmp_ok(pg_temp.measure('zloss', 'zloss'), '<', 0.1 * pg_temp.measure('none', 'zloss'),
              'zloss: the router logits shrink');
SELECT cmp_ok(pg_temp.measure('router_entropy', 'router_entropy'), '<', pg_temp.measure('none', 'router_entropy'),
              'router_entropy: each row''s gate distribution gets flatter');
SELECT cmp_ok((SELECT count_cv FROM lb_last WHERE method = 'aux_free'), '<',
              (SELECT count_cv FROM lb_last WHERE method = 'none'),
              'aux_free: the selection counts even out');
SELECT cmp_ok(pg_temp.measure('sinkhorn', 'sinkhorn'), '<', pg_temp.measure('none', 'sinkhorn'),
              'sinkhorn: the rows'' gates come closer to a balanced assignment of the batch');
SELECT cmp_ok((SELECT count_cv FROM lb_last WHERE method = 'sinkhorn'), '<',
              (SELECT count_cv FROM lb_last WHERE method = 'none'),
              'sinkhorn: the selection counts even out');
SELECT ok((SELECT bool_or(b <> 0) FROM lb_last, unnest(expert_bias) b WHERE method = 'aux_free'),
          'aux_free: the selection bias moved');
SELECT ok((SELECT bool_and(b = 0) FROM lb_last, unnest(expert_bias) b WHERE method = 'none'),
          'without aux_free the selection bias stays zero');
SELECT is((SELECT config -> 'balance' FROM moe.models WHERE name = 'lb_zloss'), '{"zloss": 0.1}'::jsonb,
          'the terms are stored in the model''s config');

-- combined terms with their own weights
CALL moe_train('syn', model_name => 'combined', epochs => 2, balance => '{"entropy": 0.01, "zloss": 0.001}',
               options => :'tiny');
SELECT is((SELECT config -> 'balance' FROM moe.models WHERE name = 'combined'),
          '{"entropy": 0.01, "zloss": 0.001}'::jsonb, 'several terms combine');
SELECT ok((SELECT abs(h.aux_loss - 0.01 * (h.aux_terms ->> 'entropy')::float8 - 0.001 * (h.aux_terms ->> 'zloss')::float8) < 1e-3
             FROM moe.training_history h JOIN moe.training_runs r ON r.id = h.run_id
            WHERE r.model_name = 'combined' AND h.epoch = 1),
          'the auxiliary loss is the weighted sum of the terms');

-- ---- balancing-weight schedules ----
CREATE FUNCTION pg_temp.scales(name text) RETURNS float8[] LANGUAGE sql AS $$
    SELECT array_agg(round(h.lb_scale::numeric, 4)::float8 ORDER BY h.epoch)
      FROM moe.training_history h JOIN moe.training_runs r ON r.id = h.run_id WHERE r.model_name = name $$;
CALL moe_train('syn', model_name => 'lbs_warmup', epochs => 5, patience => 0, lb_schedule => 'warmup',
               lb_warmup_epochs => 4, options => :'tiny');
SELECT is(pg_temp.scales('lbs_warmup'), '{0.25,0.5,0.75,1,1}'::float8[], 'warmup ramps the weights up over N epochs');
CALL moe_train('syn', model_name => 'lbs_interp', epochs => 5, patience => 0, lb_schedule => 'interpolate',
               lb_warmup_epochs => 4, lb_min_scale => 0.2, options => :'tiny');
SELECT is(pg_temp.scales('lbs_interp'), '{0.2,0.4,0.6,0.8,1}'::float8[], 'interpolate goes from the minimum to the full weight');
CALL moe_train('syn', model_name => 'lbs_adapt', epochs => 6, patience => 0, lb_schedule => 'adaptive',
               lb_decay => 0.5, lb_min_scale => 0.2, options => :'tiny');
SELECT ok((SELECT bool_and(CASE WHEN prev_best THEN scale = greatest(0.2, round(prev_scale::numeric * 0.5, 4))
                                ELSE scale = prev_scale END)
             FROM (SELECT round(h.lb_scale::numeric, 4) AS scale,
                          lag(round(h.lb_scale::numeric, 4)) OVER w AS prev_scale, lag(h.is_best) OVER w AS prev_best
                     FROM moe.training_history h JOIN moe.training_runs r ON r.id = h.run_id
                    WHERE r.model_name = 'lbs_adapt' WINDOW w AS (ORDER BY h.epoch)) s
            WHERE prev_scale IS NOT NULL),
          'adaptive halves the weights after each improvement, down to the floor');
SELECT is((pg_temp.scales('lbs_adapt'))[1], 1::float8, 'adaptive starts at the full weight');

-- ---- temperature schedules (2 -> 0.5 over 5 epochs) ----
CREATE FUNCTION pg_temp.temps(name text) RETURNS float8[] LANGUAGE sql AS $$
    SELECT array_agg(round(h.temperature::numeric, 4)::float8 ORDER BY h.epoch)
      FROM moe.training_history h JOIN moe.training_runs r ON r.id = h.run_id WHERE r.model_name = name $$;
CREATE FUNCTION pg_temp.train_temp(s text) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE format('CALL moe_train(%L, model_name => %L, epochs => 5, patience => 0, temperature => 2,
                                   temperature_end => 0.5, temperature_schedule => %L,
                                   temperature_step_epochs => 2, options => %L)',
                   'syn', 'ts_' || s, s, (SELECT o FROM tiny));
END $$;
SELECT pg_temp.train_temp(s) FROM unnest(ARRAY['linear', 'cosine', 'exponential', 'step']) s;
SELECT is(pg_temp.temps('ts_linear'), '{2,1.625,1.25,0.875,0.5}'::float8[], 'linear temperature');
SELECT is(pg_temp.temps('ts_cosine'), '{2,1.7803,1.25,0.7197,0.5}'::float8[], 'cosine temperature');
SELECT is(pg_temp.temps('ts_exponential'), '{2,1.4142,1,0.7071,0.5}'::float8[], 'exponential temperature');
SELECT is(pg_temp.temps('ts_step'), '{2,2,1,1,0.5}'::float8[], 'step temperature (every 2 epochs)');
SELECT is((SELECT round((m.metrics ->> 'temperature')::numeric, 4) FROM moe.models m WHERE m.name = 'ts_linear'),
          (SELECT round(h.temperature::numeric, 4) FROM moe.training_history h JOIN moe.training_runs r ON r.id = h.run_id
            WHERE r.model_name = 'ts_linear' AND h.epoch = r.best_epoch),
          'the model keeps the temperature of its best epoch');

-- ---- learning-rate schedules (lr reported at each epoch's last step) ----
CREATE FUNCTION pg_temp.lrs(name text) RETURNS float8[] LANGUAGE sql AS $$
    SELECT array_agg(round(h.lr::numeric, 7)::float8 ORDER BY h.epoch)
      FROM moe.training_history h JOIN moe.training_runs r ON r.id = h.run_id WHERE r.model_name = name $$;
CREATE FUNCTION pg_temp.train_lr(s text, extra text) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE format('CALL moe_train(%L, model_name => %L, epochs => 6, patience => 0, lr => 0.01,
                                   lr_schedule => %L, options => %L %s)',
                   'syn', 'lr_' || s, s, (SELECT o FROM tiny), extra);
END $$;
SELECT pg_temp.train_lr(s, e) FROM (VALUES ('constant', ''), ('cosine', ''), ('linear', ''),
    ('step', ', lr_step_epochs => 2, lr_gamma => 0.5'), ('constant_linear', ', lr_decay_start => 0.5'),
    ('warmup', ', lr_warmup_epochs => 3')) v(s, e);
SELECT ok((SELECT bool_and(x = 0.01) FROM unnest(pg_temp.lrs('lr_constant')) x), 'constant lr');
SELECT ok((SELECT bool_and(a > b) FROM (SELECT x AS a, lead(x) OVER (ORDER BY i) AS b
                                         FROM unnest(pg_temp.lrs('lr_cosine')) WITH ORDINALITY u(x, i)) s WHERE b IS NOT NULL),
          'cosine lr falls every epoch');
SELECT ok((SELECT max(d) - min(d) < 1e-6 FROM (SELECT x - lead(x) OVER (ORDER BY i) AS d
                                                FROM unnest(pg_temp.lrs('lr_linear')) WITH ORDINALITY u(x, i)) s WHERE d IS NOT NULL),
          'linear lr falls by the same amount every epoch');
SELECT is((SELECT array_agg(round(x::numeric, 6)::float8) FROM unnest(pg_temp.lrs('lr_step')) x),
          '{0.01,0.01,0.005,0.005,0.0025,0.0025}'::float8[], 'step lr halves every 2 epochs');
SELECT ok((pg_temp.lrs('lr_constant_linear'))[1:3] = ARRAY[0.01, 0.01, 0.01]::float8[]
          AND (pg_temp.lrs('lr_constant_linear'))[6] < (pg_temp.lrs('lr_constant_linear'))[4],
          'constant_linear holds, then decays');
SELECT ok((pg_temp.lrs('lr_warmup'))[1] < (pg_temp.lrs('lr_warmup'))[2]
          AND (pg_temp.lrs('lr_warmup'))[2] < (pg_temp.lrs('lr_warmup'))[3]
          AND (pg_temp.lrs('lr_warmup'))[4:6] = ARRAY[0.01, 0.01, 0.01]::float8[],
          'warmup rises over 3 epochs, then holds');

-- ---- noisy gating, any E and k ----
CALL moe_train('syn', model_name => 'noisy', epochs => 3, noisy_gating => true, options => :'tiny');
SELECT is((SELECT config ->> 'noisy_gating' FROM moe.models WHERE name = 'noisy'), 'true', 'noisy gating is recorded');
SELECT is((SELECT moe_predict(drug_vec, target_vec, 'noisy') FROM syn ORDER BY drug_id, target_id LIMIT 1),
          (SELECT moe_predict(drug_vec, target_vec, 'noisy') FROM syn ORDER BY drug_id, target_id LIMIT 1),
          'inference with a noisy-gating model is deterministic');
CALL moe_train('syn', model_name => 'e8k3', experts => 8, top_k => 3, epochs => 2, options => :'tiny');
SELECT is((SELECT count(*) FILTER (WHERE selected) FROM syn s, moe_route(s.drug_vec, s.target_vec, 'e8k3')
            WHERE s.drug_id = 0 AND s.target_id = 0), 3::bigint, 'E = 8, k = 3 selects three experts');
CALL moe_train('syn', model_name => 'e1k1', experts => 1, top_k => 1, epochs => 2, options => :'tiny');
SELECT is((SELECT weight FROM syn s, moe_route(s.drug_vec, s.target_vec, 'e1k1') WHERE s.drug_id = 0 AND s.target_id = 0),
          1::real, 'a single expert gets all the weight');

-- ---- options as JSON, and bad or inconsistent options ----
CALL moe_train('syn', model_name => 'by_json', options => '{"epochs": 2, "lr": 0.002, "drug_hidden": [16],
               "protein_hidden": [16], "gate_hidden": [], "expert_hidden": [16], "lr_schedule": "linear"}');
SELECT is((SELECT config ->> 'lr_schedule' FROM moe.models WHERE name = 'by_json'), 'linear', 'options jsonb overrides');
SELECT is((SELECT config -> 'gate_hidden' FROM moe.models WHERE name = 'by_json'), '[]'::jsonb, 'a gate with no hidden layer');
SELECT throws_ok($$CALL moe_train('syn', options => '{"learning_rate": 0.1}')$$, '22023',
                 'options: unknown training option "learning_rate"', 'unknown option names are refused');
SELECT throws_ok($$CALL moe_train('syn', options => '{"epochs": "ten"}')$$, '22023',
                 'options: "epochs" must be a number', 'options have types');
SELECT throws_ok($$CALL moe_train('syn', options => '{"epochs": 2.5}')$$, '22023',
                 'options: "epochs" must be an integer', 'integers must be integers');
SELECT throws_ok($$CALL moe_train('syn', options => '[1, 2]')$$, '22023', NULL, 'options must be an object');
SELECT throws_ok($$CALL moe_train('syn', lb_schedule => 'sometimes')$$, '22023',
                 'unknown load-balancing schedule "sometimes" (valid: constant, warmup, interpolate, adaptive)',
                 'unknown lb_schedule lists the valid ones');
SELECT throws_ok($$CALL moe_train('syn', temperature_schedule => 'sine')$$, '22023',
                 'unknown temperature schedule "sine" (valid: constant, linear, cosine, exponential, step)',
                 'unknown temperature_schedule lists the valid ones');
SELECT throws_ok($$CALL moe_train('syn', lr_schedule => 'cyclic')$$, '22023',
                 'unknown learning-rate schedule "cyclic" (valid: constant, cosine, linear, step, constant_linear, warmup)',
                 'unknown lr_schedule lists the valid ones');
SELECT throws_ok($$CALL moe_train('syn', balance => '{"entropy": -1}')$$, '22023', NULL, 'negative term weights');
SELECT throws_ok($$CALL moe_train('syn', balance => '{"magic": 1}')$$, '22023', NULL, 'unknown terms');
SELECT throws_ok($$CALL moe_train('syn', lb_method => 'cv', balance => '{"entropy": 1}')$$, '22023',
                 'give either lb_method and lb_weight or balance, not both', 'lb_method and balance together');
SELECT throws_ok($$CALL moe_train('syn', temperature_end => 0.5)$$, '22023', NULL,
                 'temperature_end without a schedule');
SELECT throws_ok($$CALL moe_train('syn', lr_schedule => 'warmup')$$, '22023', NULL, 'warmup without warmup epochs');
SELECT throws_ok($$CALL moe_train('syn', epochs => 5, lr_warmup_epochs => 5)$$, '22023', NULL,
                 'warmup as long as the run');
SELECT throws_ok($$CALL moe_train('syn', experts => 65)$$, '22023', NULL, 'too many experts');
SELECT throws_ok($$CALL moe_train('syn', temperature => 0)$$, '22023', NULL, 'temperature 0');

-- ---- cross-validation ----
-- three folds: fold k tests on drug_id % 3 = k, validates on the next one
CREATE TEMP TABLE cvsyn AS
SELECT s.drug_id, s.target_id, s.drug_vec, s.target_vec, s.label, k AS fold,
       CASE s.drug_id % 3 WHEN k THEN 'test' WHEN (k + 1) % 3 THEN 'valid' ELSE 'train' END AS split
  FROM syn s CROSS JOIN generate_series(0, 2) k;
SELECT moe_create_dataset('cvsyn', 'cvsyn', protein_column => 'target_vec', fold_column => 'fold',
                          drug_key_column => 'drug_id', protein_key_column => 'target_id');
CALL moe_cross_validate('cvsyn', folds => 3, model_name => 'cv', options => :'tiny3');
CREATE TEMP TABLE cv_id AS SELECT max(id) AS id FROM moe.experiments WHERE kind = 'cross_validation';
SELECT is((SELECT array_agg(fold ORDER BY fold) FROM moe.cross_validation_results WHERE experiment_id = (SELECT id FROM cv_id)),
          '{0,1,2}'::int[], 'one row per fold');
SELECT is((SELECT round(mse::numeric, 6) FROM moe.cross_validation_summary WHERE experiment_id = (SELECT id FROM cv_id)),
          (SELECT round(avg(mse)::numeric, 6) FROM moe.cross_validation_results
            WHERE experiment_id = (SELECT id FROM cv_id)),
          'the summary averages the folds');
SELECT is((SELECT array_agg(name ORDER BY name) FROM moe.models m
            JOIN moe.training_runs r ON r.model_id = m.id WHERE r.experiment_id = (SELECT id FROM cv_id)),
          '{cv_fold0,cv_fold1,cv_fold2}'::text[], 'one model per fold');
SELECT is((SELECT count(*) FROM moe.deployments WHERE name LIKE 'cv\_fold%'), 0::bigint, 'fold models are not deployed');
SELECT is((SELECT array_agg(DISTINCT (metrics -> 'test' ->> 'n')::int) FROM moe.models WHERE name LIKE 'cv\_fold%'),
          '{520,560}'::int[], 'each fold tests on its own third of the drugs (13 or 14 drugs x 40 targets)');
SELECT throws_ok($$CALL moe_cross_validate('syn', folds => 3)$$, '22023',
                 'dataset "syn" has no fold column, so folds must be 1', 'folds need a fold column');
SELECT throws_ok($$CALL moe_cross_validate('cvsyn', folds => 0)$$, '22023', NULL, 'folds must be positive');

-- ---- refit: choose the epoch count on valid, retrain on train + valid ----
CALL moe_train('syn', model_name => 'rf', refit => true, epochs => 6, options => :'tiny');
CREATE TEMP TABLE rf AS
SELECT s.id AS sel_id, s.status AS sel_status, s.model_id AS sel_model, s.best_epoch AS sel_best,
       s.epochs_run AS sel_epochs, f.id AS fit_id, f.status AS fit_status, f.epochs_run AS fit_epochs,
       f.best_epoch AS fit_best, f.model_id AS fit_model, f.config AS fit_config,
       ms.metrics AS fit_metrics, (SELECT model_id FROM moe.deployments WHERE name = 'rf') AS deployed
  FROM moe.training_runs s JOIN moe.training_runs f ON f.refit_of = s.id
  LEFT JOIN moe.models ms ON ms.id = f.model_id
 WHERE s.model_name = 'rf';
SELECT is((SELECT count(*) FROM rf), 1::bigint, 'refit: a selection run and one refit of it');
SELECT ok((SELECT sel_status = 'completed' AND sel_model IS NULL FROM rf),
          'the selection run completes without a model');
SELECT ok((SELECT fit_status = 'completed' AND fit_model IS NOT NULL AND deployed = fit_model FROM rf),
          'the refit makes the model, and the name points at it');
SELECT ok((SELECT fit_epochs = sel_best AND fit_best = fit_epochs AND (fit_config ->> 'epochs')::int = sel_best
                  AND (fit_config ->> 'refit')::boolean FROM rf),
          'the refit trains for the best epoch count of the selection run and keeps its last epoch');
SELECT is((SELECT ((fit_metrics ->> 'n_train')::int, (fit_metrics ->> 'n_valid')::int,
                   (fit_metrics ->> 'selection_best_epoch')::int, (fit_metrics ->> 'refit_of')::bigint) FROM rf),
          ((SELECT count(*) FILTER (WHERE split IN ('train', 'valid')) FROM syn)::int, 0,
           (SELECT sel_best FROM rf), (SELECT sel_id FROM rf)),
          'the refit model trained on every training and validation row; its metrics name the selection');
SELECT ok((SELECT abs((fit_metrics ->> 'selection_best_val_mse')::float8 - min(h.val_mse)) < 1e-6 * min(h.val_mse)
             FROM rf JOIN moe.training_history h ON h.run_id = rf.sel_id GROUP BY fit_metrics),
          'and the validation MSE that chose the epoch count');
SELECT is((SELECT count(*) FROM moe.training_history h JOIN rf ON h.run_id = rf.fit_id WHERE h.val_mse IS NULL),
          (SELECT fit_epochs::bigint FROM rf), 'the refit''s epochs are in the history, without validation');

CREATE TEMP TABLE noval AS SELECT * FROM syn WHERE split <> 'valid';
SELECT moe_create_dataset('noval', 'noval', protein_column => 'target_vec');
CALL moe_train('noval', model_name => 'rf_noval', refit => true, options => :'tiny3');
SELECT ok((SELECT count(*) = 1 AND bool_and(model_id IS NOT NULL AND refit_of IS NULL)
             FROM moe.training_runs WHERE model_name = 'rf_noval'),
          'refit with no validation rows: one ordinary run');

CALL moe_cross_validate('cvsyn', folds => 2, model_name => 'rcv',
                        options => (:'tiny'::jsonb || '{"epochs": 5, "refit": true}')::jsonb);
CREATE TEMP TABLE rcv AS
SELECT c.*, s.best_epoch AS sel_best, s.epochs_run AS sel_epochs, f.epochs_run AS fit_epochs
  FROM moe.cross_validation_results c
  LEFT JOIN moe.training_runs f ON f.id = c.run_id LEFT JOIN moe.training_runs s ON s.id = f.refit_of
 WHERE c.experiment_id = (SELECT max(id) FROM moe.experiments WHERE kind = 'cross_validation');
SELECT is((SELECT array_agg(fold ORDER BY fold) FROM rcv), '{0,1}'::int[],
          'cross-validation with refit: still one row per fold, the refit''s');
SELECT ok((SELECT bool_and(best_epoch = sel_best AND epochs_run = sel_epochs + fit_epochs AND model_id IS NOT NULL)
             FROM rcv),
          'a fold''s best epoch is its selection''s, its epochs those of both runs');
SELECT throws_ok($$CALL moe_train('syn', options => '{"refit": 1}')$$, '22023', NULL, 'refit must be a boolean');

-- ---- sweeps and the comparison view ----
CALL moe_sweep('syn', '{"lr": [0.01, 0.003], "experts": [2, 4]}', model_name => 'sw',
               options => :'tiny3');
CREATE TEMP TABLE sw_id AS SELECT max(id) AS id FROM moe.experiments WHERE kind = 'sweep';
SELECT is((SELECT count(*) FROM moe.experiment_comparison WHERE experiment_id = (SELECT id FROM sw_id)), 4::bigint,
          'every point of the grid is a run');
SELECT is((SELECT count(DISTINCT (config ->> 'lr', config ->> 'experts')) FROM moe.experiment_comparison
            WHERE experiment_id = (SELECT id FROM sw_id)), 4::bigint, 'with its own options');
SELECT ok((SELECT bool_and(degradation >= 0 AND degradation = final_loss - best_loss AND test_mse > 0 AND wall_seconds > 0)
             FROM moe.experiment_comparison WHERE experiment_id = (SELECT id FROM sw_id)),
          'the comparison columns are filled and consistent');
SELECT throws_ok($$CALL moe_sweep('syn', '{"lrr": [0.1]}')$$, '22023', 'grid: unknown training option "lrr"', 'unknown grid option');
SELECT throws_ok($$CALL moe_sweep('syn', '{"lr": []}')$$, '22023', NULL, 'empty grid axis');
SELECT throws_ok($$CALL moe_sweep('syn', '{"lr": 0.1}')$$, '22023', NULL, 'grid values must be arrays');
SELECT throws_ok($$CALL moe_sweep('syn', '{"experts": [2, 100]}')$$, '22023', NULL,
                 'every grid point is validated before the first run');

-- ---- sparse first layers (docs/training.md) ----
-- Fingerprint-like drug vectors (300 values, about 5 % non-zero): 'auto'
-- reads them sparse, 'off' dense; one epoch of either lands on the same
-- weights within float rounding.
CREATE TEMP TABLE syn_sparse AS
SELECT s.drug_id, s.target_id, s.target_vec, s.label, s.split,
       (SELECT array_agg(CASE WHEN (i * 7 + s.drug_id) % 20 = 0 THEN 1 + v * v ELSE 0 END ORDER BY i)::real[]
          FROM unnest(d.drug_vec || d.drug_vec || d.drug_vec || d.drug_vec || d.drug_vec
                      || d.drug_vec || d.drug_vec || d.drug_vec || d.drug_vec || d.drug_vec) WITH ORDINALITY u(v, i)) AS drug_vec
  FROM syn s JOIN moe_synthetic_dta(40, 40, 4, seed => 21, drug_dim => 30) d USING (drug_id, target_id);
SELECT moe_create_dataset('syn_sparse', 'syn_sparse', protein_column => 'target_vec');
CALL moe_train('syn_sparse', model_name => 'sp_auto', epochs => 1, seed => 4, options => :'tiny');
CALL moe_train('syn_sparse', model_name => 'sp_off', epochs => 1, seed => 4, sparse_inputs => 'off', options => :'tiny');
CALL moe_train('syn_sparse', model_name => 'sp_on', epochs => 1, seed => 4, sparse_inputs => 'on', options => :'tiny');
CREATE TEMP VIEW sp AS
SELECT m.name, (m.metrics -> 'test' ->> 'mse')::float8 AS mse, m.config ->> 'sparse_inputs' AS setting
  FROM moe.models m WHERE m.name LIKE 'sp\_%';
SELECT is((SELECT array_agg(setting ORDER BY name) FROM sp), ARRAY['auto', 'off', 'on'],
          'sparse_inputs is recorded in the run''s configuration');
SELECT ok((SELECT abs(a.mse - o.mse) < 1e-4 * o.mse FROM sp a, sp o WHERE a.name = 'sp_auto' AND o.name = 'sp_off'),
          'a sparse first layer trains the model of the dense one, within float rounding');
SELECT ok((SELECT abs(n.mse - o.mse) < 1e-4 * o.mse FROM sp n, sp o
            WHERE n.name = 'sp_on' AND o.name = 'sp_off')
           AND (SELECT array_agg(moe_predict(drug_vec, target_vec, 'sp_on') ORDER BY drug_id, target_id) FROM syn_sparse)
               IS DISTINCT FROM
               (SELECT array_agg(moe_predict(drug_vec, target_vec, 'sp_auto') ORDER BY drug_id, target_id) FROM syn_sparse),
          'on reads the dense target vectors sparse too: within rounding again, other bits than auto');
SELECT ok((SELECT (SELECT count(*) FILTER (WHERE v <> 0) FROM unnest(drug_vec) v)::float8 / 300 < 0.25
             FROM syn_sparse LIMIT 1), 'the drug vectors are under the density threshold');
SELECT throws_ok($$CALL moe_train('syn', sparse_inputs => 'sometimes', epochs => 1)$$, '22023',
                 'unknown sparse_inputs "sometimes" (valid: auto, off, on)', 'an unknown sparse_inputs is refused');

SELECT * FROM finish();
ROLLBACK;
