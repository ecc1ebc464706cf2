-- The shared model cache (this cluster: moe_pg preloaded, 8 MB of cache):
-- models load once, are evicted least recently used first when the cache
-- is full, and load again when needed.  Each statement is its own
-- transaction, so nothing stays pinned between them.
SET client_min_messages = error;
SELECT moe_cache_clear('server');
SHOW moe_pg.shared_cache_mb;
CREATE TABLE ev AS SELECT * FROM moe_synthetic_dta(20, 10, 2, seed => 1);
SELECT moe_create_dataset('ev', 'ev', protein_column => 'target_vec');
-- three models of about 3.4 MB each: two fit, the third evicts one
CALL moe_train('ev', model_name => 'ev_a', epochs => 1, options => '{"drug_hidden": [288], "protein_hidden": [288], "gate_hidden": [288], "expert_hidden": [288]}');
CALL moe_train('ev', model_name => 'ev_b', epochs => 1, options => '{"drug_hidden": [288], "protein_hidden": [288], "gate_hidden": [288], "expert_hidden": [288]}');
CALL moe_train('ev', model_name => 'ev_c', epochs => 1, options => '{"drug_hidden": [288], "protein_hidden": [288], "gate_hidden": [288], "expert_hidden": [288]}');
SELECT name, round(checkpoint_bytes / 1048576.0, 1) AS mb FROM moe.models m, moe_model_info(m.id) ORDER BY name;
-- training evaluated each model (privately: its row was not committed yet); start from empty
SELECT moe_cache_clear('server');
CREATE VIEW cached AS
SELECT m.name, c.scope, c.loads, c.pins FROM moe_cache() c JOIN moe.models m ON m.id = c.model_id ORDER BY m.name;

SELECT count(moe_predict(drug_vec, target_vec, 'ev_a')) FROM ev;
SELECT count(moe_predict(drug_vec, target_vec, 'ev_b')) FROM ev;
SELECT * FROM cached;
-- ev_a was used least recently: loading ev_c evicts it
SELECT count(moe_predict(drug_vec, target_vec, 'ev_c')) FROM ev;
SELECT * FROM cached;
-- ev_a comes back (loaded again) and ev_b, now the oldest, goes
SELECT count(moe_predict(drug_vec, target_vec, 'ev_a')) FROM ev;
SELECT * FROM cached;
-- the answers do not depend on where the model was
CREATE TABLE ev_scores AS SELECT drug_id, target_id, moe_predict(drug_vec, target_vec, 'ev_b') AS p FROM ev;
SELECT moe_cache_clear('server');
SELECT count(*) FILTER (WHERE s.p = moe_predict(e.drug_vec, e.target_vec, 'ev_b')) AS same, count(*) AS pairs
  FROM ev_scores s JOIN ev e USING (drug_id, target_id);
