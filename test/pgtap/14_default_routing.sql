-- Default training gives a healthy, specialised router (issue 15): the
-- planted-cluster data of scripts/demo.sh, every option at its default.
-- A regression to collapse fails here.  About 20 s at one thread.
BEGIN;
SELECT plan(12);
SET LOCAL client_min_messages = error;

CREATE TEMP TABLE demo AS SELECT * FROM moe_synthetic_dta(60, 40, 4, seed => 7);
SELECT moe_create_dataset('demo', 'demo', protein_column => 'target_vec',
                          drug_key_column => 'drug_id', protein_key_column => 'target_id');
CALL moe_train('demo');
CREATE TEMP TABLE kept AS
SELECT r.id AS run_id, r.best_epoch, m.id AS model_id, m.config, m.metrics
  FROM moe.training_runs r JOIN moe.models m ON m.id = r.model_id WHERE r.model_name = 'demo';

SELECT is((SELECT config -> 'balance' FROM kept), '{"importance": 0.1, "aux_free": 0.01, "sinkhorn": 0.1}'::jsonb,
          'the default balancing is importance + aux_free + sinkhorn');
SELECT is((SELECT h.status FROM moe.router_health h JOIN kept k ON h.run_id = k.run_id AND h.epoch = k.best_epoch),
          'balanced', 'the router is balanced at the kept epoch (training rows)');
SELECT is((SELECT metrics -> 'routing' ->> 'status' FROM kept), 'balanced',
          'and on the test rows');
SELECT cmp_ok((SELECT min(lead_fraction) FROM moe.expert_usage WHERE model_id = (SELECT model_id FROM kept)),
              '>=', 0.10::float8, 'every expert is the first choice of at least 10 % of the training rows');
SELECT cmp_ok((SELECT min(heldout_lead_fraction) FROM moe.expert_usage WHERE model_id = (SELECT model_id FROM kept)),
              '>=', 0.10::float8, 'and of at least 10 % of the test rows');
SELECT cmp_ok((SELECT nmi FROM moe_cluster_recovery((SELECT model_id FROM kept), split => 'test')),
              '>=', 0.7::float8, 'the first choices recover the planted clusters (NMI on the test rows)');
SELECT cmp_ok((SELECT avg(weight) FROM moe_routing((SELECT model_id FROM kept), split => 'test') WHERE rank = 2),
              '>=', 0.05::float8, 'the second selected expert carries weight');
SELECT cmp_ok((SELECT (metrics -> 'test' ->> 'mse')::float8 FROM kept), '<', 0.03::float8,
              'and the predictions are good (test MSE)');

-- what the other forms of the balancing options mean
CALL moe_train('demo', model_name => 'one_term', lb_method => 'switch', epochs => 1, deploy => 'never',
               drug_hidden => '{8}', protein_hidden => '{8}', gate_hidden => '{8}', expert_hidden => '{8}');
SELECT is((SELECT config -> 'balance' FROM moe.models WHERE name = 'one_term'), '{"switch": 0.001}'::jsonb,
          'lb_method alone: that term at 0.001');
SELECT throws_ok($$CALL moe_train('demo', lb_weight => 0.01)$$, '22023', 'lb_weight needs an lb_method',
                 'lb_weight alone is an error');
SELECT throws_ok($$CALL moe_train('demo', lb_weight => 0.01, balance => '{"cv": 1}')$$, '22023',
                 'give either lb_method and lb_weight or balance, not both', 'lb_weight with balance is an error');
CALL moe_train('demo', model_name => 'unbalanced', balance => '{}', epochs => 1, deploy => 'never',
               drug_hidden => '{8}', protein_hidden => '{8}', gate_hidden => '{8}', expert_hidden => '{8}');
SELECT is((SELECT config -> 'balance' FROM moe.models WHERE name = 'unbalanced'), '{}'::jsonb,
          'balance => {} trains without balancing');

SELECT * FROM finish();
ROLLBACK;
