-- Expert-usage monitoring: history tables, routing over datasets,
-- specialisation, agreement, cluster recovery, dashboards and the report.
BEGIN;
SELECT plan(41);
SET LOCAL client_min_messages = error;

CREATE TEMP TABLE syn AS SELECT * FROM moe_synthetic_dta(60, 40, 4, seed => 5);
SELECT moe_create_dataset('syn', 'syn', protein_column => 'target_vec',
                          drug_key_column => 'drug_id', protein_key_column => 'target_id');
\set small '{"drug_hidden": [32], "protein_hidden": [32], "gate_hidden": [32], "expert_hidden": [32], "batch_size": 64, "lr": 0.003}'
CALL moe_train('syn', model_name => 'mon', epochs => 6, patience => 0, options => :'small');
CREATE TEMP TABLE run AS SELECT id, epochs_run, model_id FROM moe.training_runs WHERE model_name = 'mon';

-- ---- history tables ----
SELECT is((SELECT count(*) FROM moe.expert_history WHERE run_id = (SELECT id FROM run)), 24::bigint,
          'one row per expert per epoch');
SELECT is((SELECT count(*) FROM moe.router_history WHERE run_id = (SELECT id FROM run)), 6::bigint,
          'one router row per epoch');
SELECT ok((SELECT bool_and(abs(s - 1) < 1e-9) FROM (SELECT sum(share) AS s FROM moe.expert_history
            WHERE run_id = (SELECT id FROM run) GROUP BY epoch) x), 'shares sum to one every epoch');
SELECT is((SELECT DISTINCT sum(selections)::bigint FROM moe.expert_history WHERE run_id = (SELECT id FROM run) GROUP BY epoch),
          (SELECT 2 * (metrics ->> 'n_train')::bigint FROM moe.models WHERE id = (SELECT model_id FROM run)),
          'selections count every training row twice (top_k 2) every epoch');
SELECT ok((SELECT bool_and(abs(g.cv - (s).cv) < 1e-9 AND abs(g.gini - (s).gini) < 1e-9 AND g.status = (s).status
                           AND g.dead_experts = (s).dead_experts AND g.probability_status = (s).probability_status
                           AND g.selection_status = (s).selection_status AND g.lead_status = (s).lead_status
                           AND abs(g.selection_cv - (s).selection_cv) < 1e-9 AND abs(g.lead_cv - (s).lead_cv) < 1e-9)
             FROM moe.router_history g,
                  LATERAL (SELECT moe_router_stats(array_agg(x.mean_prob ORDER BY x.expert),
                                                   array_agg(x.selections ORDER BY x.expert),
                                                   leads => array_agg(x.leads ORDER BY x.expert)) AS s
                             FROM moe.expert_history x WHERE x.run_id = g.run_id AND x.epoch = g.epoch) z
            WHERE g.run_id = (SELECT id FROM run)),
          'the stored router statistics agree with moe_router_stats of the stored per-expert rows');
SELECT ok((SELECT bool_and(status IN ('balanced', 'imbalanced', 'dead_expert', 'collapsed')) FROM moe.router_health
            WHERE run_id = (SELECT id FROM run)), 'router_health has a status per epoch');
SELECT is((SELECT count(*) FROM moe.expert_usage WHERE model = 'mon'), 4::bigint, 'expert_usage: one row per expert');
SELECT is((SELECT DISTINCT epoch FROM moe.expert_usage WHERE model = 'mon'),
          (SELECT best_epoch FROM moe.training_runs WHERE model_name = 'mon'), 'expert_usage is at the kept epoch');
SELECT is((SELECT count(*) FROM moe.training_progress WHERE model_name = 'mon'), 6::bigint, 'training_progress per epoch');
SELECT is((SELECT DISTINCT sum(leads)::bigint FROM moe.expert_history WHERE run_id = (SELECT id FROM run) GROUP BY epoch),
          (SELECT (metrics ->> 'n_train')::bigint FROM moe.models WHERE id = (SELECT model_id FROM run)),
          'leads count every training row once every epoch');
SELECT ok((SELECT bool_and(status = CASE WHEN 'collapsed' IN (probability_status, selection_status) THEN 'collapsed'
                                         WHEN 'dead_expert' IN (probability_status, selection_status) THEN 'dead_expert'
                                         WHEN 'imbalanced' IN (probability_status, selection_status) THEN 'imbalanced'
                                         ELSE 'balanced' END)
             FROM moe.router_health WHERE run_id = (SELECT id FROM run)),
          'router_health: the status is the worse of the probability and the selection view');
SELECT is((SELECT metrics -> 'routing' ->> 'split' FROM moe.models WHERE id = (SELECT model_id FROM run)), 'test',
          'the model stores its routing on the test rows');
-- the stored held-out routing equals the aggregate over the model's own test-row routing
SELECT ok((SELECT e.heldout_status = (u).status
                  AND abs(e.heldout_selection_fraction - (u).selection_fraction[e.expert + 1]) < 1e-5
                  AND abs(e.heldout_lead_fraction - (u).lead_fraction[e.expert + 1]) < 1e-5
             FROM moe.expert_usage e,
                  (SELECT moe_usage(g.probs, g.selected) AS u
                     FROM syn s, LATERAL moe_gate(s.drug_vec, s.target_vec, 'mon') g WHERE s.split = 'test') t
            WHERE e.model = 'mon' AND e.expert = 2),
          'expert_usage shows the held-out status and fractions, equal to moe_usage over the test rows');
SELECT ok((SELECT bool_and(router_status IS NOT NULL AND probability_status IS NOT NULL AND selection_status IS NOT NULL
                           AND lead_fraction IS NOT NULL AND heldout_status IS NOT NULL)
             FROM moe.expert_usage WHERE model = 'mon'),
          'expert_usage shows both views on the training rows beside the held-out rows');

-- ---- routing over the dataset ----
CREATE TEMP TABLE rt AS SELECT * FROM moe_routing('mon');
SELECT is((SELECT count(*) FROM rt), 2400::bigint * 4, 'moe_routing: one row per pair and expert');
SELECT ok((SELECT bool_and(abs(p - 1) < 1e-5 AND k = 2 AND abs(w - 1) < 1e-5 AND ranks = '{1,2}')
             FROM (SELECT sum(gate_prob) AS p, count(*) FILTER (WHERE selected) AS k,
                          sum(weight) FILTER (WHERE selected) AS w,
                          array_agg(rank ORDER BY rank) FILTER (WHERE selected) AS ranks
                     FROM rt GROUP BY drug_key, protein_key) x),
          'per pair: probabilities sum to one, two experts ranked 1 and 2, weights sum to one');
SELECT is((SELECT array_agg(gate_prob ORDER BY expert) FROM rt WHERE drug_key = '3' AND protein_key = '7'),
          (SELECT (moe_gate(drug_vec, target_vec, 'mon')).probs FROM syn WHERE drug_id = 3 AND target_id = 7),
          'moe_routing and moe_gate agree');
SELECT is((SELECT DISTINCT prediction FROM rt WHERE drug_key = '3' AND protein_key = '7'),
          (SELECT moe_predict(drug_vec, target_vec, 'mon') FROM syn WHERE drug_id = 3 AND target_id = 7),
          'and predict the same');
SELECT is((SELECT array_agg(x.expert ORDER BY x.expert) FILTER (WHERE x.selected) FROM rt x WHERE drug_key = '3' AND protein_key = '7'),
          (SELECT array_agg(r.expert ORDER BY r.expert) FILTER (WHERE r.selected) FROM syn s, moe_route(s.drug_vec, s.target_vec, 'mon') r
            WHERE s.drug_id = 3 AND s.target_id = 7), 'moe_routing and moe_route select the same experts');

-- usage over any query, serial or parallel, equals the usage over the routing rows
SELECT is((SELECT (moe_usage(g.probs, g.selected)).selections FROM syn s, LATERAL moe_gate(s.drug_vec, s.target_vec, 'mon') g),
          (SELECT array_agg(c ORDER BY expert) FROM (SELECT expert, count(*) FILTER (WHERE selected) AS c FROM rt GROUP BY expert) x),
          'moe_usage over moe_gate counts what moe_routing shows');

-- ---- specialisation ----
CREATE TEMP TABLE top1 AS SELECT drug_key, protein_key, label, expert FROM rt WHERE rank = 1;
CREATE TEMP TABLE by_target AS
SELECT protein_key AS key, count(*) AS rows,
       (array_agg(expert ORDER BY n DESC, expert))[1] AS dominant,
       max(n)::float8 / sum(n) AS purity
  FROM (SELECT protein_key, expert, count(*) AS n FROM top1 GROUP BY protein_key, expert) x
  JOIN (SELECT protein_key, count(*) AS rows FROM top1 GROUP BY protein_key) y USING (protein_key)
 GROUP BY protein_key;
SELECT is((SELECT count(*) FROM moe_specialization('mon') s JOIN by_target b USING (key)
            WHERE s.dominant_expert = b.dominant AND abs(s.purity - b.purity) < 1e-12), 40::bigint,
          'dominant expert and purity per target match a computation from moe_routing');
SELECT is((SELECT count(*) FROM moe_specialization('mon', by => 'drug')), 60::bigint, 'and per drug');
SELECT is((SELECT count(*) FROM moe.specialization WHERE model = 'mon' AND entity = 'target'), 40::bigint,
          'training kept a snapshot per target');
SELECT is((SELECT count(*) FROM moe.specialization v JOIN moe_specialization('mon') s USING (key)
            WHERE v.model = 'mon' AND v.entity = 'target' AND v.dominant_expert = s.dominant_expert), 40::bigint,
          'which matches moe_specialization');

-- ---- expert profiles and agreement ----
SELECT ok((SELECT bool_and(p.lead_rows = t.n AND abs(p.median_label - t.med) < 1e-5 AND abs(p.mean_label - t.mean) < 1e-5)
             FROM moe_expert_profile('mon') p
             JOIN (SELECT expert, count(*) AS n, percentile_cont(0.5) WITHIN GROUP (ORDER BY label) AS med, avg(label) AS mean
                     FROM top1 GROUP BY expert) t USING (expert)),
          'per expert: rows led, median and mean affinity match SQL');
CREATE TEMP TABLE outs AS SELECT s.drug_id, s.target_id, moe_expert_outputs(s.drug_vec, s.target_vec, 'mon') AS o,
                                 (moe_gate(s.drug_vec, s.target_vec, 'mon')).* FROM syn s;
SELECT ok((SELECT bool_and(abs(o[selected[1] + 1] * weights[1] + o[selected[2] + 1] * weights[2] - prediction) < 1e-4) FROM outs),
          'the selected experts'' outputs, weighted, are the prediction');
SELECT ok((SELECT bool_and(abs(a.correlation - c.r) < 1e-6) FROM moe_expert_agreement('mon') a
             JOIN (SELECT i - 1 AS ea, j - 1 AS eb, corr(o[i], o[j]) AS r FROM outs, generate_series(1, 4) i, generate_series(1, 4) j
                    WHERE i < j GROUP BY i, j) c ON c.ea = a.expert_a AND c.eb = a.expert_b),
          'expert-output correlations match SQL corr()');
SELECT is((SELECT count(*) FROM moe_expert_agreement('mon')), 6::bigint, 'one row per pair of experts');

-- ---- cluster recovery ----
-- NMI of (cluster, top-1 expert) over pairs, computed in SQL
CREATE TEMP TABLE lab AS SELECT s.cluster, t.expert FROM top1 t JOIN syn s ON s.drug_id::text = t.drug_key AND s.target_id::text = t.protein_key;
CREATE TEMP TABLE nmi_sql AS
WITH n AS (SELECT count(*)::float8 AS n FROM lab),
     c AS (SELECT cluster, count(*) AS a FROM lab GROUP BY cluster),
     e AS (SELECT expert, count(*) AS b FROM lab GROUP BY expert),
     j AS (SELECT cluster, expert, count(*) AS ab FROM lab GROUP BY cluster, expert)
SELECT (SELECT sum(j.ab / n.n * ln(j.ab * n.n / (c.a * e.b))) FROM j JOIN c USING (cluster) JOIN e USING (expert), n)
       / (((SELECT -sum(a / n * ln(a / n)) FROM c, n) + (SELECT -sum(b / n * ln(b / n)) FROM e, n)) / 2) AS nmi;
SELECT ok((SELECT abs(r.nmi - s.nmi) < 1e-9 FROM moe_cluster_recovery('mon') r, nmi_sql s),
          'pair-level NMI matches a computation in SQL');
-- small (linear) experts must split the work, and routing follows the clusters
CALL moe_train('syn', model_name => 'linear_experts', epochs => 60, patience => 0, top_k => 1, expert_hidden => '{}',
               lb_method => 'aux_free', lb_weight => 0.001, seed => 1,
               options => '{"drug_hidden": [32], "protein_hidden": [32], "gate_hidden": [32], "batch_size": 64, "lr": 0.003}');
CALL moe_train('syn', model_name => 'one_expert', experts => 1, top_k => 1, epochs => 2, expert_hidden => '{}',
               options => '{"drug_hidden": [32], "protein_hidden": [32], "gate_hidden": [32]}');
SELECT cmp_ok((SELECT nmi FROM moe_cluster_recovery('linear_experts', by => 'target')), '>', 0.5::float8,
              'with planted clusters, targets'' dominant experts recover the clusters (NMI > 0.5)');
SELECT is((SELECT nmi FROM moe_cluster_recovery('one_expert', by => 'target')), 0::float8,
          'a single expert recovers nothing (NMI 0)');
SELECT is((SELECT clusters FROM moe_cluster_recovery('mon')), 4, 'four planted clusters');
SELECT throws_ok($$SELECT * FROM moe_cluster_recovery('mon', cluster_column => 'no_such_column')$$, '42703', NULL,
                 'an unknown cluster column');
SELECT throws_ok($$SELECT * FROM moe_cluster_recovery('mon', by => 'galaxy')$$, '22023', NULL, 'an unknown grouping');
SELECT throws_ok($$SELECT * FROM moe_specialization('mon', by => 'cell')$$, '22023', NULL, 'specialisation by target or drug');
SELECT throws_ok($$SELECT * FROM moe_routing('mon', split => 'holdout')$$, '22023', NULL, 'an unknown split');
SELECT throws_ok($$SELECT * FROM moe_routing('nobody')$$, '42704', NULL, 'an unknown model');

-- ---- the report ----
CREATE TEMP TABLE rep AS SELECT moe_report('mon')::xml AS x;
SELECT ok((SELECT xml_is_well_formed_document(moe_report('mon'))), 'the report is a well-formed XHTML document');
SELECT is((SELECT array_length(xpath('//svg:svg', x, ARRAY[ARRAY['svg', 'http://www.w3.org/2000/svg']]), 1) FROM rep), 5,
          'with five charts: training curves, expert usage by probability, selections and leads, routing by target');
SELECT is((SELECT array_length(xpath('//svg:svg[1]//svg:polyline', x, ARRAY[ARRAY['svg', 'http://www.w3.org/2000/svg']]), 1) FROM rep), 2,
          'the training chart draws training and validation MSE');
SELECT moe_export_model('mon', current_setting('data_directory') || '/mon.ckpt') > 0 AS exported;
CREATE TEMP TABLE imported AS
SELECT moe_import_model(current_setting('data_directory') || '/mon.ckpt', 'mon_imported', deploy => false) AS id;
SELECT ok((SELECT xml_is_well_formed_document(moe_report(id)) FROM imported),
          'an imported model without history still gets a well-formed report');

SELECT * FROM finish();
ROLLBACK;
