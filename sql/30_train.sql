-- ---------------------------------------------------------------------------
-- Training
--
-- The options after model_name are, in this order, the option table of
-- src/pg/train_options.c; the same names are the keys that options jsonb
-- (here, in moe_cross_validate and in moe_sweep) accepts.  The defaults
-- are the library's (moe_config_defaults, moe_train_options_defaults),
-- written out here for \df; every call checks that they still agree.

CREATE PROCEDURE moe_train(
    dataset text,
    fold integer DEFAULT 0,
    model_name text DEFAULT NULL,
    experts integer DEFAULT 4,
    top_k integer DEFAULT 2,
    lb_method text DEFAULT NULL,
    lb_weight real DEFAULT NULL,
    balance jsonb DEFAULT NULL,
    lb_schedule text DEFAULT 'constant',
    lb_warmup_epochs integer DEFAULT 5,
    lb_min_scale real DEFAULT 0.1,
    lb_decay real DEFAULT 0.5,
    epochs integer DEFAULT 100,
    batch_size integer DEFAULT 256,
    lr real DEFAULT 0.001,
    lr_min real DEFAULT 0,
    lr_schedule text DEFAULT 'cosine',
    lr_warmup_epochs integer DEFAULT 0,
    lr_step_epochs integer DEFAULT 10,
    lr_gamma real DEFAULT 0.5,
    lr_decay_start real DEFAULT 0.5,
    weight_decay real DEFAULT 0,
    grad_clip real DEFAULT 0,
    ema_decay real DEFAULT 0,
    dropout real DEFAULT 0.1,
    temperature real DEFAULT 1.0,
    temperature_schedule text DEFAULT 'constant',
    temperature_end real DEFAULT NULL,
    temperature_step_epochs integer DEFAULT 10,
    noisy_gating boolean DEFAULT false,
    patience integer DEFAULT 20,
    min_delta real DEFAULT 0,
    seed bigint DEFAULT 42,
    drug_hidden integer[] DEFAULT '{512}',
    protein_hidden integer[] DEFAULT '{512}',
    gate_hidden integer[] DEFAULT '{512,256}',
    expert_hidden integer[] DEFAULT '{512,256}',
    deploy text DEFAULT 'if_better',
    device text DEFAULT NULL,
    refit boolean DEFAULT false,
    sparse_inputs text DEFAULT 'auto',
    max_seconds real DEFAULT NULL,
    options jsonb DEFAULT NULL)
AS 'MODULE_PATHNAME', 'moe_train_sql'
LANGUAGE C;
COMMENT ON PROCEDURE moe_train IS
    'Train an MoE affinity model on a dataset; commits one history row per epoch';

CREATE PROCEDURE moe_cross_validate(
    dataset text,
    folds integer DEFAULT 5,
    model_name text DEFAULT NULL,
    options jsonb DEFAULT '{}',
    INOUT experiment_id bigint DEFAULT NULL)
AS 'MODULE_PATHNAME', 'moe_cross_validate_sql'
LANGUAGE C;
COMMENT ON PROCEDURE moe_cross_validate IS
    'Train one model per fold 0..folds-1 with the same options; results in moe.cross_validation_results';

CREATE PROCEDURE moe_sweep(
    dataset text,
    grid jsonb,
    fold integer DEFAULT 0,
    model_name text DEFAULT NULL,
    options jsonb DEFAULT '{}',
    INOUT experiment_id bigint DEFAULT NULL)
AS 'MODULE_PATHNAME', 'moe_sweep_sql'
LANGUAGE C;
COMMENT ON PROCEDURE moe_sweep IS
    'Train one model per point of a grid of options; compare them in moe.experiment_comparison';

-- One row per run with the seed's comparison columns, computed from the
-- per-epoch history: the training loss at the end and at its lowest, how
-- far it came back up, validation MSE at the end and at its best, the test
-- metrics of the kept model, and the wall time.
CREATE VIEW moe.experiment_comparison AS
SELECT r.id AS run_id,
       r.experiment_id,
       r.model_name,
       r.dataset,
       r.fold,
       r.status,
       r.params,
       r.config,
       r.epochs_run,
       r.best_epoch,
       last.train_loss AS final_loss,
       agg.best_loss,
       last.train_loss - agg.best_loss AS degradation,
       100 * (last.train_loss - agg.best_loss) / nullif(abs(agg.best_loss), 0) AS degradation_pct,
       last.val_mse AS final_val_mse,
       agg.best_val_mse,
       last.val_mse - agg.best_val_mse AS val_degradation,
       (m.metrics -> 'test' ->> 'mse')::double precision AS test_mse,
       (m.metrics -> 'test' ->> 'rmse')::double precision AS test_rmse,
       (m.metrics -> 'test' ->> 'ci')::double precision AS test_ci,
       (m.metrics -> 'test' ->> 'r2')::double precision AS test_r2,
       (m.metrics -> 'test' ->> 'pearson')::double precision AS test_pearson,
       (m.metrics -> 'test' ->> 'spearman')::double precision AS test_spearman,
       (m.metrics -> 'test' ->> 'rm2')::double precision AS test_rm2,
       agg.train_seconds,
       extract(epoch FROM coalesce(r.finished_at, clock_timestamp()) - r.started_at)::double precision
           AS wall_seconds,
       r.model_id,
       r.refit_of
  FROM moe.training_runs r
  LEFT JOIN LATERAL (SELECT min(h.train_loss) AS best_loss, min(h.val_mse) AS best_val_mse,
                            sum(h.seconds) AS train_seconds
                       FROM moe.training_history h WHERE h.run_id = r.id) agg ON true
  LEFT JOIN LATERAL (SELECT h.train_loss, h.val_mse
                       FROM moe.training_history h WHERE h.run_id = r.id
                      ORDER BY h.epoch DESC LIMIT 1) last ON true
  LEFT JOIN moe.models m ON m.id = r.model_id;
COMMENT ON VIEW moe.experiment_comparison IS
    'One row per training run: a sweep point''s options (params), final and best loss, degradation, validation and test metrics, wall time';

-- Per cross-validation, one row per fold.  With refit => true a fold is
-- two runs: the run that chose the epoch count on the validation rows (its
-- best_epoch is the fold's) and the refit that made the fold's model (its
-- test metrics); the fold's epochs and seconds are those of both.
CREATE VIEW moe.cross_validation_results AS
SELECT c.experiment_id, c.fold, c.run_id, c.model_id, c.status,
       (m.metrics -> 'test' ->> 'n')::bigint AS n,
       c.test_mse AS mse, c.test_rmse AS rmse, c.test_ci AS ci, c.test_r2 AS r2,
       c.test_pearson AS pearson, c.test_spearman AS spearman, c.test_rm2 AS rm2,
       coalesce(s.best_epoch, c.best_epoch) AS best_epoch,
       c.epochs_run + coalesce(s.epochs_run, 0) AS epochs_run,
       c.train_seconds + coalesce(s.train_seconds, 0) AS train_seconds
  FROM moe.experiment_comparison c
  JOIN moe.experiments e ON e.id = c.experiment_id AND e.kind = 'cross_validation'
  LEFT JOIN moe.experiment_comparison s ON s.run_id = c.refit_of
  LEFT JOIN moe.models m ON m.id = c.model_id
 WHERE NOT EXISTS (SELECT 1 FROM moe.training_runs x WHERE x.refit_of = c.run_id)
 ORDER BY c.experiment_id, c.fold;
COMMENT ON VIEW moe.cross_validation_results IS
    'Cross-validation results: one row per fold (moe.cross_validation_summary: their mean and spread)';

-- Per cross-validation: the mean and the sample standard deviation of
-- every fold metric over the completed folds.
CREATE VIEW moe.cross_validation_summary AS
SELECT experiment_id,
       count(*)::integer AS folds,
       sum(n)::bigint AS n,
       avg(mse) AS mse, stddev_samp(mse) AS mse_std,
       avg(rmse) AS rmse, stddev_samp(rmse) AS rmse_std,
       avg(ci) AS ci, stddev_samp(ci) AS ci_std,
       avg(r2) AS r2, stddev_samp(r2) AS r2_std,
       avg(pearson) AS pearson, stddev_samp(pearson) AS pearson_std,
       avg(spearman) AS spearman, stddev_samp(spearman) AS spearman_std,
       avg(rm2) AS rm2, stddev_samp(rm2) AS rm2_std,
       avg(best_epoch) AS best_epoch, stddev_samp(best_epoch) AS best_epoch_std,
       avg(epochs_run) AS epochs_run,
       avg(train_seconds) AS train_seconds, stddev_samp(train_seconds) AS train_seconds_std
  FROM moe.cross_validation_results
 WHERE status = 'completed'
 GROUP BY experiment_id
 ORDER BY experiment_id;
COMMENT ON VIEW moe.cross_validation_summary IS
    'Per cross-validation: mean and sample standard deviation of each test metric over the completed folds';
