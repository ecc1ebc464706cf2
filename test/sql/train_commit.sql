-- moe_train outside a transaction block commits as it goes; a failure
-- leaves the run marked and no model behind, a cancel the best epoch so far
-- as a model that no name points at; inside a transaction block everything
-- rolls back together.
SET client_min_messages = error;  -- router-health warnings depend on the machine's arithmetic
CREATE TABLE syn AS SELECT * FROM moe_synthetic_dta(40, 30, 3, seed => 2);
SELECT moe_create_dataset('syn', 'syn', protein_column => 'target_vec');

CALL moe_train('syn', model_name => 'committed', epochs => 3, batch_size => 64, drug_hidden => '{16}',
               protein_hidden => '{16}', gate_hidden => '{16}', expert_hidden => '{16}');
SELECT status, epochs_run, message, model_id IS NOT NULL AS has_model
  FROM moe.training_runs WHERE model_name = 'committed';
SELECT count(*) AS history_rows
  FROM moe.training_history h JOIN moe.training_runs r ON r.id = h.run_id WHERE r.model_name = 'committed';

-- cancelled by statement_timeout after some epochs
CREATE TABLE big AS SELECT * FROM moe_synthetic_dta(100, 100, 4, seed => 3);
SELECT moe_create_dataset('big', 'big', protein_column => 'target_vec');
-- terse: the cancel may land inside the history INSERT, which would add a CONTEXT line
\set VERBOSITY terse
SET statement_timeout = '3s';
CALL moe_train('big', model_name => 'cancelled', epochs => 100000, patience => 0, drug_hidden => '{64}',
               protein_hidden => '{64}', gate_hidden => '{32}', expert_hidden => '{32}');
RESET statement_timeout;
\set VERBOSITY default
SELECT status, message ~ '^canceling statement due to statement timeout; the best epoch \(\d+ of \d+\) was kept as model \d+, not deployed$' AS says_kept,
       model_id IS NOT NULL AS kept_best, epochs_run >= 1 AS some_epochs
  FROM moe.training_runs WHERE model_name = 'cancelled';
SELECT count(*) > 0 AS history_committed
  FROM moe.training_history h JOIN moe.training_runs r ON r.id = h.run_id WHERE r.model_name = 'cancelled';
SELECT count(*) AS cancelled_models,
       bool_and(m.id = r.model_id) AS the_runs_model,
       bool_and(m.metrics ->> 'best_epoch' = r.best_epoch::text) AS of_its_best_epoch
  FROM moe.models m JOIN moe.training_runs r ON r.model_name = m.name WHERE m.name = 'cancelled';
SELECT count(*) AS cancelled_deployments FROM moe.deployments WHERE name = 'cancelled';

-- failed on bad data: the error names the pair, the run says why
CREATE TABLE broken AS SELECT * FROM syn;
UPDATE broken SET label = 'NaN' WHERE drug_id = 3 AND target_id = 4;
SELECT moe_create_dataset('broken', 'broken', protein_column => 'target_vec',
                          drug_key_column => 'drug_id', protein_key_column => 'target_id');
CALL moe_train('broken', epochs => 1);
SELECT status, message, model_id IS NULL AS no_model FROM moe.training_runs WHERE model_name = 'broken';

-- inside a transaction block nothing is committed until the block is
BEGIN;
CALL moe_train('syn', model_name => 'rolled_back', epochs => 1, drug_hidden => '{16}',
               protein_hidden => '{16}', gate_hidden => '{16}', expert_hidden => '{16}');
SELECT status FROM moe.training_runs WHERE model_name = 'rolled_back';
ROLLBACK;
SELECT count(*) AS rolled_back_runs FROM moe.training_runs WHERE model_name = 'rolled_back';
SELECT count(*) AS rolled_back_models FROM moe.models WHERE name = 'rolled_back';
