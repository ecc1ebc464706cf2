-- moe_pg.device and moe_train's device option (docs/cuda.md).  The checks
-- that need a CUDA GPU skip cleanly on a machine without one; there,
-- device => 'cuda' must fail with a clear feature_not_supported error.
BEGIN;
SELECT plan(16);
SET LOCAL client_min_messages = error;

-- ---- the setting --------------------------------------------------------
SELECT is((SELECT boot_val FROM pg_settings WHERE name = 'moe_pg.device'), 'auto',
          'moe_pg.device defaults to auto');
SELECT is((SELECT enumvals FROM pg_settings WHERE name = 'moe_pg.device'), '{auto,cpu,cuda}'::text[],
          'its values are auto, cpu and cuda');
SELECT is((SELECT context FROM pg_settings WHERE name = 'moe_pg.device'), 'user',
          'any user may set it for a session');
SELECT throws_ok($$SET LOCAL moe_pg.device = 'gpu'$$, '22023',
                 'invalid value for parameter "moe_pg.device": "gpu"', 'an unknown device is rejected');

-- ---- the option ---------------------------------------------------------
CREATE TEMP TABLE dev_syn AS SELECT * FROM moe_synthetic_dta(30, 20, 4, seed => 5);
SELECT moe_create_dataset('dev_syn', 'dev_syn', protein_column => 'target_vec');
CREATE TEMP TABLE tiny AS SELECT '{"drug_hidden": [8], "protein_hidden": [8], "gate_hidden": [8],
    "expert_hidden": [8], "batch_size": 64, "epochs": 2, "patience": 0, "seed": 3, "deploy": false}'::jsonb AS o;
CREATE FUNCTION pg_temp.train(name text, device text, extra jsonb DEFAULT '{}') RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE format('CALL moe_train(%L, model_name => %L, device => %L, options => %L)',
                   'dev_syn', name, device, (SELECT o FROM tiny) || extra);
END $$;

SELECT throws_ok($$SELECT pg_temp.train('dev_bad', 'gpu')$$, '22023',
                 'device must be one of auto, cpu, cuda, not "gpu"', 'moe_train rejects an unknown device');
SELECT throws_ok($$SELECT pg_temp.train('dev_bad', NULL, '{"device": 1}')$$, '22023',
                 'options: "device" must be a string', 'the device in options must be a string');
SELECT lives_ok($$SELECT pg_temp.train('dev_cpu', 'cpu')$$, 'device cpu trains');
SELECT lives_ok($$SELECT pg_temp.train('dev_cpu_json', NULL, '{"device": "CPU"}')$$,
                'the device can come with the options jsonb (any case)');
SELECT is((SELECT max(abs(moe_predict(s.drug_vec, s.target_vec, a.id) - moe_predict(s.drug_vec, s.target_vec, b.id)))
             FROM dev_syn s, moe.models a, moe.models b WHERE a.name = 'dev_cpu' AND b.name = 'dev_cpu_json'),
          0::real, 'the same options and seed on the CPU give the same model');

-- ---- the GPU ------------------------------------------------------------
-- Without a usable GPU, device => 'cuda' must say why (built without CUDA,
-- or no driver/device) with SQLSTATE 0A000; any other error fails here.
CREATE FUNCTION pg_temp.cuda_probe() RETURNS text LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_temp.train('dev_cuda', 'cuda');
    RETURN 'gpu';
EXCEPTION WHEN feature_not_supported THEN
    RETURN 'none: ' || SQLERRM;
END $$;
CREATE TEMP TABLE probe AS SELECT pg_temp.cuda_probe() AS r;

CREATE FUNCTION pg_temp.gpu_tests() RETURNS SETOF text LANGUAGE plpgsql AS $$
DECLARE
    r text := (SELECT r FROM probe);
    worst real;
BEGIN
    IF r <> 'gpu' THEN
        RETURN NEXT ok(r ~ '^none: device cuda: (moe_pg was built without CUDA support|no CUDA device)',
                       'without a GPU, device cuda is a clear error (' || r || ')');
        RETURN NEXT is((SELECT count(*) FROM moe.models WHERE name = 'dev_cuda'), 0::bigint,
                       'and leaves no model behind');
        RETURN NEXT skip('no usable CUDA GPU: GPU training, cross-device parity and out-of-memory checks', 5);
        RETURN;
    END IF;
    RETURN NEXT pass('device cuda trains on the GPU');
    RETURN NEXT is((SELECT count(*) FROM moe.models WHERE name = 'dev_cuda'), 1::bigint,
                   'the GPU-trained model is stored');
    RETURN NEXT is((SELECT count(*) FROM moe.training_history h JOIN moe.training_runs t ON t.id = h.run_id
                     WHERE t.model_name = 'dev_cuda'), 2::bigint, 'with a history row per epoch');
    -- same data, options and seed; the GPU's sums round differently, so
    -- the two runs drift apart a little over their steps
    SELECT max(abs(moe_predict(s.drug_vec, s.target_vec, a.id) - moe_predict(s.drug_vec, s.target_vec, b.id)))
      INTO worst FROM dev_syn s, moe.models a, moe.models b WHERE a.name = 'dev_cpu' AND b.name = 'dev_cuda';
    RETURN NEXT cmp_ok(worst, '<', 0.05::real,
                       'the GPU-trained model scores on the CPU within 0.05 of the CPU-trained one');
    PERFORM pg_temp.train('dev_auto', 'auto');
    RETURN NEXT is((SELECT count(*) FROM moe.models WHERE name = 'dev_auto'), 1::bigint, 'device auto trains');
    -- about 200 GB of parameters: more than any GPU has
    BEGIN
        PERFORM pg_temp.train('dev_huge', 'cuda', '{"experts": 64, "expert_hidden": [16384, 16384, 16384, 16384]}');
        RETURN NEXT fail('a model too large for the GPU is an out-of-memory error');
    EXCEPTION WHEN out_of_memory THEN
        RETURN NEXT pass('a model too large for the GPU is an out-of-memory error (' || SQLERRM || ')');
    END;
    PERFORM pg_temp.train('dev_after', 'cuda');
    RETURN NEXT is((SELECT count(*) FROM moe.models WHERE name = 'dev_after'), 1::bigint,
                   'and the session goes on training on the GPU');
END $$;
SELECT * FROM pg_temp.gpu_tests();

SELECT * FROM finish();
ROLLBACK;
