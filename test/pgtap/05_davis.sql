-- Loading the Davis CSVs (skipped when shared/data is absent) and a short
-- training run on them.  MOE_DATA_DIR reaches the test as moe_test.data_dir.
BEGIN;
SELECT plan(13);
SET LOCAL client_min_messages = error;

CREATE FUNCTION pg_temp.davis_tests() RETURNS SETOF text LANGUAGE plpgsql AS $$
DECLARE
    dir text := coalesce(current_setting('moe_test.data_dir', true), '') || '/davis';
BEGIN
    IF pg_stat_file(dir || '/drugs.csv', true) IS NULL THEN
        RETURN NEXT skip('Davis CSVs not found in ' || dir, 13);
        RETURN;
    END IF;
    RETURN NEXT is(moe_load_dta(dir, 'davis_t'), 30056::bigint, 'all 30056 Davis pairs load');
    RETURN NEXT is((SELECT count(*) FROM davis_t.drugs), 68::bigint, '68 drugs');
    RETURN NEXT is((SELECT count(*) FROM davis_t.targets), 442::bigint, '442 targets');
    RETURN NEXT is((SELECT count(*) FROM davis_t.splits), 150280::bigint, '5 folds of the warm split');
    RETURN NEXT is((SELECT count(*) FROM davis_t.pairs WHERE fold = 0 AND split = 'train'), 19236::bigint,
                   'fold 0 has 19236 training pairs (the README''s figure)');
    RETURN NEXT is((SELECT count(DISTINCT vec) FROM davis_t.drugs), 68::bigint, 'every drug featurizes to its own vector');
    RETURN NEXT is((SELECT min(array_length(vec, 1)) FROM davis_t.targets), 8420, 'targets have 8420 k-mer values');
    RETURN NEXT is((SELECT relation FROM moe.datasets WHERE name = 'davis_t'), 'davis_t.pairs'::regclass,
                   'the dataset is registered');
    RETURN NEXT throws_ok(format('SELECT moe_load_dta(%L, %L)', dir, 'davis_t'), '42P07', NULL,
                          'loading over an existing dataset needs replace => true');

    CALL moe_train('davis_t', fold => 0, epochs => 1, drug_hidden => '{32}', protein_hidden => '{32}',
                   gate_hidden => '{16}', expert_hidden => '{16}');
    RETURN NEXT is((SELECT (metrics->>'n_train')::int FROM moe.models WHERE name = 'davis_t'), 19236,
                   'training reads the fold''s training pairs');
    RETURN NEXT is((SELECT n FROM moe_evaluate('davis_t')), 6011::bigint, 'evaluation reads the fold''s 6011 test pairs');
    PERFORM moe_load_dta(dir, 'davis_e', drug_features => 'ecfp');
    RETURN NEXT is((SELECT min(array_length(vec, 1)) FROM davis_e.drugs), 2048, 'ECFP drug features: 2048 buckets');
    RETURN NEXT is((SELECT count(*) FROM davis_e.drugs WHERE vec = moe_featurize_ecfp(smiles)), 68::bigint,
                   'each drug holds its ECFP4 fingerprint');
END;
$$;
SELECT * FROM pg_temp.davis_tests();

SELECT * FROM finish();
ROLLBACK;
