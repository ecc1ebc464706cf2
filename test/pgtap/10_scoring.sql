-- Scoring paths and caches: cached and uncached, per row and in bulk, give
-- the same bits; caches hit after a load and forget dropped models;
-- parallel plans are chosen and used.
BEGIN;
SELECT plan(31);
SET LOCAL client_min_messages = error;

CREATE TEMP TABLE syn AS SELECT * FROM moe_synthetic_dta(50, 30, 3, seed => 4);
SELECT moe_create_dataset('syn', 'syn', protein_column => 'target_vec',
                          drug_key_column => 'drug_id', protein_key_column => 'target_id');
CALL moe_train('syn', model_name => 'sc', epochs => 3,
               options => '{"drug_hidden": [32], "protein_hidden": [32], "gate_hidden": [32], "expert_hidden": [32]}');
CREATE TEMP TABLE sc_id AS SELECT max(id) AS id FROM moe.models WHERE name = 'sc';
SELECT moe_cache_clear();

-- ---- the same answer every way ----
CREATE TEMP TABLE first AS SELECT drug_id, target_id, moe_predict(drug_vec, target_vec, 'sc') AS p FROM syn;
CREATE TEMP TABLE second AS SELECT drug_id, target_id, moe_predict(drug_vec, target_vec, 'sc') AS p FROM syn;
SELECT is((SELECT count(*) FROM first JOIN second USING (drug_id, target_id) WHERE first.p = second.p), 1500::bigint,
          'a second pass over cached parts gives the same bits');
SELECT moe_cache_clear();
SELECT is((SELECT count(*) FROM first f JOIN syn s USING (drug_id, target_id)
            WHERE f.p = moe_predict(s.drug_vec, s.target_vec, (SELECT id FROM sc_id))), 1500::bigint,
          'after the caches are emptied, and by id: the same bits');
CALL moe_score('sc', 'syn', 'pg_temp.bulk', protein_column => 'target_vec', key_columns => '{drug_id,target_id}');
SELECT is((SELECT count(*) FROM first f JOIN pg_temp.bulk b USING (drug_id, target_id) WHERE f.p = b.prediction), 1500::bigint,
          'moe_score (table to table) gives the same bits');
SELECT is((SELECT count(*) FROM first f JOIN moe_routing('sc') r ON r.drug_key = f.drug_id::text AND r.protein_key = f.target_id::text
            WHERE r.expert = 0 AND r.prediction = f.p), 1500::bigint, 'moe_routing gives the same bits');
CREATE TEMP TABLE ordered AS SELECT row_number() OVER (ORDER BY drug_id, target_id)::int AS i, * FROM syn;
SELECT is((SELECT count(*) FROM (SELECT array_agg(drug_vec ORDER BY i) AS d, array_agg(target_vec ORDER BY i) AS t FROM ordered) a,
                  moe_predict_batch(a.d, a.t, 'sc') b JOIN ordered o USING (i) JOIN first f USING (drug_id, target_id)
            WHERE b.prediction = f.p), 1500::bigint, 'moe_predict_batch gives the same bits');
CREATE TEMP TABLE drugs AS SELECT DISTINCT drug_id, drug_vec FROM syn;
CREATE TEMP TABLE targets AS SELECT DISTINCT target_id, target_vec FROM syn;
SELECT is((SELECT count(*) FROM (SELECT array_agg(drug_vec ORDER BY drug_id) AS d FROM drugs) dd,
                  (SELECT array_agg(target_vec ORDER BY target_id) AS t FROM targets) tt,
                  moe_predict_matrix(dd.d, tt.t, 'sc') m
             JOIN first f ON f.drug_id = m.drug_index - 1 AND f.target_id = m.protein_index - 1
            WHERE m.prediction = f.p), 1500::bigint, 'moe_predict_matrix (every pair) gives the same bits');
-- moe_predict_partition: each window partition scored as one batch
CREATE TEMP TABLE fp AS SELECT id, (moe_model_info(id)).params_md5 AS md5 FROM sc_id;
SELECT is((SELECT count(*) FROM (SELECT s.drug_id, s.target_id,
                                        moe_predict_partition(s.drug_vec, s.target_vec, fp.id, fp.md5) OVER (PARTITION BY s.drug_id) AS p
                                   FROM syn s, fp) w JOIN first f USING (drug_id, target_id) WHERE w.p = f.p), 1500::bigint,
          'moe_predict_partition, a partition per drug, gives the same bits');
SELECT is((SELECT count(*) FROM (SELECT s.drug_id, s.target_id,
                                        moe_predict_partition(s.drug_vec, s.target_vec, fp.id, fp.md5) OVER (PARTITION BY s.drug_id, s.target_id) AS p
                                   FROM syn s, fp) w JOIN first f USING (drug_id, target_id) WHERE w.p = f.p), 1500::bigint,
          'moe_predict_partition, a partition per row, gives the same bits');
SELECT is((SELECT count(*) FROM (SELECT s.drug_id, s.target_id,
                                        moe_predict_partition(s.drug_vec, s.target_vec, fp.id, fp.md5) OVER () AS p
                                   FROM syn s, generate_series(1, 3) g, fp) w JOIN first f USING (drug_id, target_id) WHERE w.p = f.p), 4500::bigint,
          'moe_predict_partition, one partition of 4500 rows (two chunks), gives the same bits');
-- partitions of two models of other widths in turn: the part tables kept
-- between partitions start afresh for the other width
CALL moe_train('syn', model_name => 'sc_wide', epochs => 1,
               options => '{"drug_hidden": [48], "protein_hidden": [48], "gate_hidden": [64], "expert_hidden": [96]}');
CREATE TEMP TABLE fp2 AS SELECT m.id, (moe_model_info(m.id)).params_md5 AS md5, m.name = 'sc_wide' AS wide
  FROM moe.models m WHERE m.id IN ((SELECT id FROM sc_id), (SELECT max(id) FROM moe.models WHERE name = 'sc_wide'));
SELECT is((SELECT count(*) FROM (SELECT s.drug_vec, s.target_vec, fp2.id,
                                        moe_predict_partition(s.drug_vec, s.target_vec, fp2.id, fp2.md5) OVER (PARTITION BY s.drug_id) AS p
                                   FROM syn s JOIN fp2 ON fp2.wide = (s.drug_id % 2 = 1)) w
            WHERE w.p = moe_predict(w.drug_vec, w.target_vec, w.id)), 1500::bigint,
          'moe_predict_partition, drugs in turn scored by two models of other widths, gives each model''s bits');

-- ---- caches ----
SELECT ok((SELECT count(*) FROM moe_cache() WHERE model_id = (SELECT id FROM sc_id)) = 1, 'the model is cached once');
SELECT ok((SELECT hits FROM moe_cache() WHERE model_id = (SELECT id FROM sc_id)) >= 1500, 'and hit for every row');
SELECT is((SELECT entity_parts FROM moe_cache() WHERE model_id = (SELECT id FROM sc_id)), 80::bigint,
          'one part per drug and protein (50 + 30), not per pair');
SELECT is((SELECT entity_parts_copied || '/' || coalesce(shared_entity_parts, 0) FROM moe_cache()
            WHERE model_id = (SELECT id FROM sc_id)), '0/0',
          'vectors stored inline are keyed by their bytes and stay this connection''s: none copied, none shared');
CREATE TEMP TABLE before AS SELECT hits FROM moe_cache() WHERE model_id = (SELECT id FROM sc_id);
SELECT moe_predict(drug_vec, target_vec, 'sc') FROM syn LIMIT 1;
SELECT cmp_ok((SELECT hits FROM moe_cache() WHERE model_id = (SELECT id FROM sc_id)), '>', (SELECT hits FROM before),
              'a call hits the loaded model');
SELECT is((SELECT loads FROM moe_cache() WHERE model_id = (SELECT id FROM sc_id)), 1::bigint, 'loaded once');
SELECT throws_ok($$SELECT moe_cache_clear('planet')$$, '22023', NULL, 'an unknown cache scope');
SELECT ok(NOT has_function_privilege('public', 'moe_cache_clear(text)', 'EXECUTE'), 'PUBLIC may not clear caches');

-- a dropped model is forgotten; its name trained again loads the new one
CALL moe_train('syn', model_name => 'dropme', epochs => 1,
               options => '{"drug_hidden": [16], "protein_hidden": [16], "gate_hidden": [16], "expert_hidden": [16]}');
CREATE TEMP TABLE old_id AS SELECT model_id AS id FROM moe.deployments WHERE name = 'dropme';
SELECT moe_predict(drug_vec, target_vec, 'dropme') FROM syn LIMIT 1;
SELECT ok((SELECT count(*) FROM moe_cache() WHERE model_id = (SELECT id FROM old_id)) = 1, 'the model to drop is cached');
DELETE FROM moe.deployments WHERE name = 'dropme';
SELECT moe_drop_model((SELECT id FROM old_id));
SELECT is((SELECT count(*) FROM moe_cache() WHERE model_id = (SELECT id FROM old_id)), 0::bigint,
          'dropping a model forgets it');
SELECT throws_ok(format('SELECT moe_predict(drug_vec, target_vec, %s::bigint) FROM syn LIMIT 1', (SELECT id FROM old_id)),
                 '42704', NULL, 'and it cannot be used any more');
CALL moe_train('syn', model_name => 'dropme', epochs => 1,
               options => '{"drug_hidden": [16], "protein_hidden": [16], "gate_hidden": [16], "expert_hidden": [16]}');
SELECT ok((SELECT moe_predict(drug_vec, target_vec, 'dropme') FROM syn LIMIT 1) IS NOT NULL,
          'the name trained again loads the new model');
SELECT ok((SELECT count(*) FROM moe_cache() WHERE model_id = (SELECT model_id FROM moe.deployments WHERE name = 'dropme')) = 1,
          'which is cached under its own id');

-- ---- bad input to the bulk paths ----
SELECT throws_ok($$SELECT * FROM moe_predict_batch('{1,2}'::real[], '{1,2}'::real[], 'sc')$$, '22000', NULL,
                 'batch input must be two-dimensional');
SELECT throws_ok($$SELECT * FROM moe_predict_batch(ARRAY[(SELECT drug_vec FROM syn LIMIT 1)], ARRAY[(SELECT target_vec FROM syn LIMIT 1), (SELECT target_vec FROM syn LIMIT 1)], 'sc')$$,
                 '22000', 'drugs has 1 rows and proteins 2; they are paired row by row', 'batch rows must pair up');
SELECT throws_ok($$CALL moe_score('sc', 'syn', 'pg_temp.bulk', protein_column => 'target_vec')$$, '42P07', NULL,
                 'moe_score does not overwrite a table unless asked');
SELECT throws_ok($$CALL moe_score('sc', 'syn', 'pg_temp.bulk2', protein_column => 'nope')$$, '42703', NULL,
                 'moe_score names a missing column');
SELECT throws_ok($$CALL moe_score('nobody', 'syn', 'pg_temp.bulk3', protein_column => 'target_vec')$$, '42704', NULL,
                 'moe_score with an unknown model');

-- ---- parallel plans ----
CREATE TABLE moe_tap_pairs AS SELECT s.drug_vec, s.target_vec FROM syn s, generate_series(1, 20) g;
ANALYZE moe_tap_pairs;
SET LOCAL max_parallel_workers_per_gather = 2;
CREATE FUNCTION pg_temp.plan_of(q text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE line text; plan text := '';
BEGIN
    FOR line IN EXECUTE q LOOP plan := plan || line || E'\n'; END LOOP;
    RETURN plan;
END $$;
SELECT ok(pg_temp.plan_of('EXPLAIN SELECT sum(moe_predict(drug_vec, target_vec, ''sc'')) FROM moe_tap_pairs') ~ 'Gather',
          'a large scoring query gets a parallel plan with default costs');
SELECT ok(pg_temp.plan_of('EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF) SELECT sum(moe_predict(drug_vec, target_vec, ''sc'')) FROM moe_tap_pairs')
          ~ 'Workers Launched: [12]', 'and the workers run it');
SELECT is((SELECT sum(moe_predict(drug_vec, target_vec, 'sc')::float8)::numeric(14,3) FROM moe_tap_pairs),
          (SELECT (20 * sum(p::float8))::numeric(14,3) FROM first), 'with the same answer');

SELECT * FROM finish();
ROLLBACK;
