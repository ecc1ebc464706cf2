-- ---------------------------------------------------------------------------
-- Looking inside a model's routing (docs/monitoring.md)

CREATE TYPE moe.gate AS (prediction real, probs real[], selected integer[], weights real[]);
COMMENT ON TYPE moe.gate IS
    'What moe_gate returns for one pair: the prediction, every expert''s gate probability, the selected experts (best first) and their weights';

CREATE FUNCTION moe_gate(drug real[], protein real[], model bigint)
RETURNS moe.gate
AS 'MODULE_PATHNAME', 'moe_gate_sql'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

CREATE FUNCTION moe_gate(drug real[], protein real[], model text)
RETURNS moe.gate
AS 'MODULE_PATHNAME', 'moe_gate_sql'
LANGUAGE C STABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION moe_gate(real[], real[], text) IS
    'One pair''s routing as arrays: prediction, gate probabilities, selected experts (best first), their weights';

CREATE FUNCTION moe_expert_outputs(drug real[], protein real[], model bigint)
RETURNS real[]
AS 'MODULE_PATHNAME', 'moe_expert_outputs_sql'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

CREATE FUNCTION moe_expert_outputs(drug real[], protein real[], model text)
RETURNS real[]
AS 'MODULE_PATHNAME', 'moe_expert_outputs_sql'
LANGUAGE C STABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION moe_expert_outputs(real[], real[], text) IS
    'What every expert predicts for a pair, selected or not';

CREATE FUNCTION moe_routing(model bigint, dataset text DEFAULT NULL, split text DEFAULT 'all',
                            fold integer DEFAULT NULL)
RETURNS TABLE (drug_key text, protein_key text, split text, label real, prediction real,
               expert integer, gate_prob real, selected boolean, weight real, rank integer)
AS 'MODULE_PATHNAME', 'moe_routing_sql'
LANGUAGE C STABLE PARALLEL SAFE ROWS 10000;

CREATE FUNCTION moe_routing(model text, dataset text DEFAULT NULL, split text DEFAULT 'all',
                            fold integer DEFAULT NULL)
RETURNS TABLE (drug_key text, protein_key text, split text, label real, prediction real,
               expert integer, gate_prob real, selected boolean, weight real, rank integer)
AS 'MODULE_PATHNAME', 'moe_routing_sql'
LANGUAGE C STABLE PARALLEL SAFE ROWS 10000;
COMMENT ON FUNCTION moe_routing(text, text, text, integer) IS
    'Per-row routing over a dataset: one row per pair and expert (rank: 1 = first choice; NULL = not selected)';

CREATE FUNCTION moe_specialization(model bigint, dataset text DEFAULT NULL, split text DEFAULT 'all',
                                   fold integer DEFAULT NULL, by text DEFAULT 'target')
RETURNS TABLE (key text, rows bigint, dominant_expert integer, purity double precision,
               mean_label double precision, expert_rows bigint[])
AS 'MODULE_PATHNAME', 'moe_specialization_sql'
LANGUAGE C STABLE PARALLEL SAFE ROWS 500;

CREATE FUNCTION moe_specialization(model text, dataset text DEFAULT NULL, split text DEFAULT 'all',
                                   fold integer DEFAULT NULL, by text DEFAULT 'target')
RETURNS TABLE (key text, rows bigint, dominant_expert integer, purity double precision,
               mean_label double precision, expert_rows bigint[])
AS 'MODULE_PATHNAME', 'moe_specialization_sql'
LANGUAGE C STABLE PARALLEL SAFE ROWS 500;
COMMENT ON FUNCTION moe_specialization(text, text, text, integer, text) IS
    'Per target (or drug): the expert that leads most of its rows, and that share (purity)';

CREATE FUNCTION moe_expert_profile(model bigint, dataset text DEFAULT NULL, split text DEFAULT 'all',
                                   fold integer DEFAULT NULL)
RETURNS TABLE (expert integer, lead_rows bigint, lead_share double precision, selected_rows bigint,
               mean_gate_prob double precision, mean_label double precision, min_label real,
               q1_label double precision, median_label double precision, q3_label double precision,
               max_label real, mean_prediction double precision)
AS 'MODULE_PATHNAME', 'moe_expert_profile_sql'
LANGUAGE C STABLE PARALLEL SAFE ROWS 8;

CREATE FUNCTION moe_expert_profile(model text, dataset text DEFAULT NULL, split text DEFAULT 'all',
                                   fold integer DEFAULT NULL)
RETURNS TABLE (expert integer, lead_rows bigint, lead_share double precision, selected_rows bigint,
               mean_gate_prob double precision, mean_label double precision, min_label real,
               q1_label double precision, median_label double precision, q3_label double precision,
               max_label real, mean_prediction double precision)
AS 'MODULE_PATHNAME', 'moe_expert_profile_sql'
LANGUAGE C STABLE PARALLEL SAFE ROWS 8;
COMMENT ON FUNCTION moe_expert_profile(text, text, text, integer) IS
    'Per expert: the rows it leads (top-1) and the affinity range of those rows';

CREATE FUNCTION moe_expert_agreement(model bigint, dataset text DEFAULT NULL, split text DEFAULT 'all',
                                     fold integer DEFAULT NULL)
RETURNS TABLE (expert_a integer, expert_b integer, correlation double precision,
               mean_abs_difference double precision)
AS 'MODULE_PATHNAME', 'moe_expert_agreement_sql'
LANGUAGE C STABLE PARALLEL SAFE ROWS 28;

CREATE FUNCTION moe_expert_agreement(model text, dataset text DEFAULT NULL, split text DEFAULT 'all',
                                     fold integer DEFAULT NULL)
RETURNS TABLE (expert_a integer, expert_b integer, correlation double precision,
               mean_abs_difference double precision)
AS 'MODULE_PATHNAME', 'moe_expert_agreement_sql'
LANGUAGE C STABLE PARALLEL SAFE ROWS 28;
COMMENT ON FUNCTION moe_expert_agreement(text, text, text, integer) IS
    'Per pair of experts: correlation and mean absolute difference of their outputs over every row';

CREATE FUNCTION moe_cluster_recovery(model bigint, dataset text DEFAULT NULL, split text DEFAULT 'all',
                                     fold integer DEFAULT NULL, cluster_column text DEFAULT 'cluster',
                                     by text DEFAULT 'pair')
RETURNS TABLE (level text, n bigint, clusters integer, experts integer, nmi double precision,
               ari double precision, purity double precision)
AS 'MODULE_PATHNAME', 'moe_cluster_recovery_sql'
LANGUAGE C STABLE PARALLEL SAFE ROWS 1;

CREATE FUNCTION moe_cluster_recovery(model text, dataset text DEFAULT NULL, split text DEFAULT 'all',
                                     fold integer DEFAULT NULL, cluster_column text DEFAULT 'cluster',
                                     by text DEFAULT 'pair')
RETURNS TABLE (level text, n bigint, clusters integer, experts integer, nmi double precision,
               ari double precision, purity double precision)
AS 'MODULE_PATHNAME', 'moe_cluster_recovery_sql'
LANGUAGE C STABLE PARALLEL SAFE ROWS 1;
COMMENT ON FUNCTION moe_cluster_recovery(text, text, text, integer, text, text) IS
    'How well routing recovers planted clusters: NMI, adjusted Rand index and purity of expert vs cluster';

-- ---------------------------------------------------------------------------
-- Dashboards

-- Each model's expert usage at the epoch it was kept from, on the
-- training rows (the epoch history) and on the held-out rows (test, or
-- validation without a test split: stored with the model), side by side.
-- Both views of routing: the gate's probability mass and what it selects
-- (top-k selections and top-1 leads); the status is the worse of the
-- probability and the selection view (docs/monitoring.md).
CREATE VIEW moe.expert_usage AS
SELECT coalesce(d.name, m.name) AS model, m.id AS model_id, d.name IS NOT NULL AS deployed,
       r.id AS run_id, r.best_epoch AS epoch, x.expert,
       x.mean_prob, x.selections, x.selection_fraction, x.leads, x.lead_fraction, x.bias,
       h.status AS router_status, h.probability_status, h.selection_status, h.lead_status,
       m.metrics -> 'routing' ->> 'split' AS heldout_split,
       m.metrics -> 'routing' ->> 'status' AS heldout_status,
       (m.metrics -> 'routing' -> 'mean_prob' ->> x.expert)::double precision AS heldout_mean_prob,
       (m.metrics -> 'routing' -> 'selection_fraction' ->> x.expert)::double precision AS heldout_selection_fraction,
       (m.metrics -> 'routing' -> 'lead_fraction' ->> x.expert)::double precision AS heldout_lead_fraction
  FROM moe.models m
  LEFT JOIN moe.deployments d ON d.model_id = m.id
  JOIN moe.training_runs r ON r.model_id = m.id
  JOIN moe.expert_history x ON x.run_id = r.id AND x.epoch = r.best_epoch
  LEFT JOIN moe.router_history h ON h.run_id = r.id AND h.epoch = r.best_epoch AND h.layer = x.layer
 ORDER BY m.id, d.name, x.expert;
COMMENT ON VIEW moe.expert_usage IS
    'Per model and expert at the kept epoch: mean gate probability, top-k selections and top-1 leads with their fractions, the status of each view on the training rows, and the same on the held-out rows';

-- Every epoch of every run, per expert: a time series for dashboards
-- (one row per run, epoch and expert, with the time it was recorded).
CREATE VIEW moe.expert_usage_history AS
SELECT r.model_name AS model, r.model_id, r.id AS run_id, x.epoch, h.recorded_at, x.expert,
       x.mean_prob, x.selection_fraction, x.lead_fraction, x.bias, g.status AS router_status
  FROM moe.training_runs r
  JOIN moe.expert_history x ON x.run_id = r.id
  JOIN moe.training_history h ON h.run_id = x.run_id AND h.epoch = x.epoch
  LEFT JOIN moe.router_history g ON g.run_id = x.run_id AND g.epoch = x.epoch AND g.layer = x.layer
 ORDER BY r.id, x.epoch, x.expert;
COMMENT ON VIEW moe.expert_usage_history IS
    'Per run, epoch and expert (a time series): mean gate probability, selection and lead fractions, selection bias, router status, and when the epoch was recorded';

-- Training progress with the router's state, one row per run and epoch.
CREATE VIEW moe.training_progress AS
SELECT r.id AS run_id, r.model_name, r.dataset, r.fold, r.status AS run_status, h.epoch,
       h.train_loss, h.train_mse, h.aux_loss, h.val_mse, h.lr, h.temperature, h.lb_scale, h.seconds,
       h.is_best, g.status AS router_status, g.cv, g.selection_cv, g.normalized_entropy, g.dead_experts,
       h.recorded_at
  FROM moe.training_runs r
  JOIN moe.training_history h ON h.run_id = r.id
  LEFT JOIN moe.router_history g ON g.run_id = r.id AND g.epoch = h.epoch;
COMMENT ON VIEW moe.training_progress IS 'Per run and epoch: losses, schedules and router status';

-- The router's health per run and epoch, with the statistics behind it.
CREATE VIEW moe.router_health AS
SELECT r.id AS run_id, r.model_name, r.dataset, r.fold, g.epoch, g.layer, g.status,
       g.probability_status, g.cv, g.max_min_ratio, g.gini, g.balance_entropy, g.normalized_entropy,
       g.row_entropy, g.max_violation, g.dominant_expert,
       (SELECT max(x.share) FROM moe.expert_history x
         WHERE x.run_id = g.run_id AND x.epoch = g.epoch AND x.layer = g.layer) AS max_share,
       g.selection_status, g.selection_cv, g.selection_max_min_ratio, g.dead_experts,
       (SELECT max(x.selection_fraction) FROM moe.expert_history x
         WHERE x.run_id = g.run_id AND x.epoch = g.epoch AND x.layer = g.layer) AS max_selection_fraction,
       g.lead_status, g.lead_cv, g.lead_max_min_ratio,
       (SELECT max(x.lead_fraction) FROM moe.expert_history x
         WHERE x.run_id = g.run_id AND x.epoch = g.epoch AND x.layer = g.layer) AS max_lead_fraction
  FROM moe.router_history g JOIN moe.training_runs r ON r.id = g.run_id;
COMMENT ON VIEW moe.router_health IS
    'Per run and epoch on the training rows: the status (the worse of the probability and the selection view), each view''s status and statistics, and the leads';

-- Which expert each target and drug goes to, as measured when the model
-- was trained (moe.specialization_snapshots; recompute any time with
-- moe_specialization()).
CREATE TABLE moe.specialization_snapshots (
    model_id        bigint NOT NULL REFERENCES moe.models (id) ON DELETE CASCADE,
    entity          text NOT NULL CHECK (entity IN ('target', 'drug')),
    key             text NOT NULL,
    rows            bigint NOT NULL,
    dominant_expert integer NOT NULL,
    purity          double precision NOT NULL,
    mean_label      double precision NOT NULL,
    expert_rows     bigint[] NOT NULL,
    PRIMARY KEY (model_id, entity, key)
);
SELECT pg_catalog.pg_extension_config_dump('moe.specialization_snapshots', '');

CREATE VIEW moe.specialization AS
SELECT coalesce(d.name, m.name) AS model, s.model_id, s.entity, s.key, s.rows, s.dominant_expert,
       s.purity, s.mean_label, s.expert_rows
  FROM moe.specialization_snapshots s
  JOIN moe.models m ON m.id = s.model_id
  LEFT JOIN moe.deployments d ON d.model_id = s.model_id;
COMMENT ON VIEW moe.specialization IS
    'Per model, target and drug: the dominant expert and its share of the rows, measured at training time';

CREATE FUNCTION moe_report(model bigint)
RETURNS text
AS 'MODULE_PATHNAME', 'moe_report_sql'
LANGUAGE C STABLE STRICT PARALLEL SAFE;

CREATE FUNCTION moe_report(model text)
RETURNS text
AS 'MODULE_PATHNAME', 'moe_report_sql'
LANGUAGE C STABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION moe_report(text) IS
    'A self-contained XHTML page with SVG charts: training curves, expert usage over epochs, routing by target';

COMMENT ON FUNCTION moe_cluster_recovery(bigint, text, text, integer, text, text) IS
    'How well model id''s routing recovers planted clusters: NMI, adjusted Rand index and purity of expert vs cluster';
COMMENT ON FUNCTION moe_expert_agreement(bigint, text, text, integer) IS
    'How much model id''s experts agree with each other over a dataset split';
COMMENT ON FUNCTION moe_expert_outputs(real[], real[], bigint) IS
    'Every expert''s output for one pair with model id, selected or not';
COMMENT ON FUNCTION moe_expert_profile(bigint, text, text, integer) IS
    'Per expert of model id: the rows it leads and their labels over a dataset split';
COMMENT ON FUNCTION moe_gate(real[], real[], bigint) IS
    'Model id''s gate probabilities for one pair';
COMMENT ON FUNCTION moe_report(bigint) IS
    'A text report of model id: configuration, metrics and routing';
COMMENT ON FUNCTION moe_routing(bigint, text, text, integer) IS
    'Per-row routing of model id over a dataset: one row per pair and expert (rank: 1 = first choice; NULL = not selected)';
COMMENT ON FUNCTION moe_specialization(bigint, text, text, integer, text) IS
    'Per target (or drug): the expert of model id that takes most of its rows, and how many';
COMMENT ON TABLE moe.specialization_snapshots IS
    'Which expert each target and drug of a model''s fold went to, recorded when the model was trained';
