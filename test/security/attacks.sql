-- Attacks of one role on what other roles are served, run in one session
-- (docs/security.md): roles with no moe role, moe_reader, two trainers
-- (alice owns names, bob attacks them), and the superuser, who is also the
-- extension's owner here.  Every attack asserts its SQLSTATE and that the
-- outcome is unchanged.  Attacks that need several sessions, server files
-- or a second database are in sessions.sh.  Everything is rolled back.
BEGIN;
SELECT plan(54);
SET LOCAL client_min_messages = error;

CREATE ROLE moe_sec_nobody;
CREATE ROLE moe_sec_reader IN ROLE moe_reader;
CREATE ROLE moe_sec_alice IN ROLE moe_trainer;
CREATE ROLE moe_sec_bob IN ROLE moe_trainer;
CREATE ROLE moe_sec_team IN ROLE moe_trainer;   -- a group role that owns names
GRANT moe_sec_team TO moe_sec_alice;
CREATE SCHEMA sec_bob AUTHORIZATION moe_sec_bob;
GRANT USAGE ON SCHEMA sec_bob TO PUBLIC;
CREATE SCHEMA sec_evil;
GRANT USAGE, CREATE ON SCHEMA sec_evil TO moe_sec_reader, moe_sec_bob;

-- alice's data, dataset, model and deployed name
CREATE TABLE sec_alice_pairs AS SELECT * FROM moe_synthetic_dta(30, 20, 2, seed => 11);
ALTER TABLE sec_alice_pairs OWNER TO moe_sec_alice;
GRANT SELECT ON sec_alice_pairs TO PUBLIC;
SET LOCAL ROLE moe_sec_alice;
SELECT moe_create_dataset('sec_syn', 'sec_alice_pairs', protein_column => 'target_vec');
CALL moe_train('sec_syn', model_name => 'sec_prod', epochs => 1, batch_size => 64, seed => 1,
               drug_hidden => '{16}', protein_hidden => '{16}', gate_hidden => '{16}', expert_hidden => '{16}');
CALL moe_train('sec_syn', model_name => 'sec_other', epochs => 1, batch_size => 64, seed => 2,
               drug_hidden => '{16}', protein_hidden => '{16}', gate_hidden => '{16}', expert_hidden => '{16}');
RESET ROLE;
CREATE TEMP TABLE ids AS
SELECT (SELECT model_id FROM moe.deployments WHERE name = 'sec_prod') AS prod,
       (SELECT model_id FROM moe.deployments WHERE name = 'sec_other') AS other;
CREATE TEMP TABLE probe AS SELECT drug_vec, target_vec FROM sec_alice_pairs ORDER BY drug_id, target_id LIMIT 1;
CREATE TEMP TABLE expected AS
SELECT moe_predict(drug_vec, target_vec, (SELECT prod FROM ids)) AS prod,
       moe_predict(drug_vec, target_vec, (SELECT other FROM ids)) AS other FROM probe;
GRANT SELECT ON ids, probe, expected TO PUBLIC;
SELECT ok((SELECT prod <> other FROM expected), 'the two models answer differently (the attacks can be seen)');

-- ---------------------------------------------------------------------------
-- 1. moe.models is written only through moe_pg's functions
SET LOCAL ROLE moe_sec_bob;
SELECT throws_ok($$INSERT INTO moe.models (name, config, checkpoint)
                   SELECT 'forged', config, checkpoint FROM moe.models WHERE id = (SELECT other FROM ids)$$,
                 '42501', 'permission denied to insert into moe.models directly',
                 'a trainer cannot insert a checkpoint by hand');
SELECT throws_ok($$INSERT INTO moe.models (id, name, config, checkpoint)
                   SELECT 1000000, 'forged', config, checkpoint FROM moe.models WHERE id = (SELECT other FROM ids)$$,
                 '42501', 'permission denied to insert into moe.models directly',
                 'nor under an id of its choosing');
SELECT throws_ok($$DELETE FROM moe.models WHERE id = (SELECT other FROM ids)$$, '42501',
                 'permission denied to delete from moe.models directly', 'a trainer cannot delete a model row by hand');
SELECT throws_ok($$TRUNCATE moe.models CASCADE$$, '42501', NULL, 'nor truncate the table');
SELECT throws_ok(format('SELECT moe_drop_model(%s)', (SELECT other FROM ids)), '42501',
                 format('model %s belongs to role "moe_sec_alice"', (SELECT other FROM ids)),
                 'nor drop another role''s model with moe_drop_model');
RESET ROLE;
SET LOCAL ROLE moe_sec_reader;
SELECT throws_ok($$DELETE FROM moe.models$$, '42501', NULL, 'a reader cannot delete models');
RESET ROLE;
SELECT is((SELECT count(*) FROM moe.models WHERE id IN ((SELECT prod FROM ids), (SELECT other FROM ids))), 2::bigint,
          'both models are still there');
SAVEPOINT s;
SELECT lives_ok($$INSERT INTO moe.models (name, config, checkpoint)
                  SELECT 'by_superuser', config, checkpoint FROM moe.models WHERE id = (SELECT other FROM ids)$$,
                'the superuser (the extension owner, as pg_restore runs) may write the table directly');
ROLLBACK TO SAVEPOINT s;

-- ---------------------------------------------------------------------------
-- 2. deployed names belong to their owner
SET LOCAL ROLE moe_sec_bob;
CALL moe_train('sec_syn', model_name => 'sec_bob_model', epochs => 1, batch_size => 64, seed => 3,
               drug_hidden => '{16}', protein_hidden => '{16}', gate_hidden => '{16}', expert_hidden => '{16}');
SELECT throws_ok(format('SELECT moe_deploy(%L, %s)', 'sec_prod',
                        (SELECT model_id FROM moe.deployments WHERE name = 'sec_bob_model')),
                 '42501', 'deployment "sec_prod" belongs to role moe_sec_alice',
                 'a trainer cannot re-point another role''s name with moe_deploy');
SELECT throws_ok($$UPDATE moe.deployments SET model_id = (SELECT other FROM ids) WHERE name = 'sec_prod'$$,
                 '42501', 'deployment "sec_prod" belongs to role moe_sec_alice', 'nor by updating the row');
SELECT throws_ok($$DELETE FROM moe.deployments WHERE name = 'sec_prod'$$,
                 '42501', 'deployment "sec_prod" belongs to role moe_sec_alice', 'nor delete it');
SELECT throws_ok($$CALL moe_train('sec_syn', model_name => 'sec_prod', epochs => 1, batch_size => 64, deploy => 'always',
                                  drug_hidden => '{8}', protein_hidden => '{8}', gate_hidden => '{8}',
                                  expert_hidden => '{8}')$$,
                 '42501', 'deployment "sec_prod" belongs to role moe_sec_alice',
                 'nor take it over by training a model of that name');
SELECT throws_ok($$INSERT INTO moe.deployments (name, model_id, owner)
                   VALUES ('sec_planted', (SELECT other FROM ids), 'moe_sec_alice')$$,
                 '42501', 'role moe_sec_bob may not make role moe_sec_alice the owner of deployment "sec_planted"',
                 'nor plant a name in another role''s name');
SELECT is((SELECT moe_predict(drug_vec, target_vec, 'sec_prod') FROM probe), (SELECT prod FROM expected),
          'sec_prod still serves alice''s model');
RESET ROLE;
SET LOCAL ROLE moe_sec_alice;
SELECT lives_ok($$INSERT INTO moe.deployments (name, model_id, owner)
                  VALUES ('sec_team_name', (SELECT other FROM ids), 'moe_sec_team')$$,
                'a member may give a name to its group role');
SELECT lives_ok(format('SELECT moe_deploy(%L, %s)', 'sec_team_name', (SELECT prod FROM ids)),
                'and re-point it as a member of that role');
RESET ROLE;
SET LOCAL ROLE moe_sec_bob;
SELECT throws_ok(format('SELECT moe_deploy(%L, %s)', 'sec_team_name', (SELECT other FROM ids)),
                 '42501', 'deployment "sec_team_name" belongs to role moe_sec_team', 'a non-member may not');
RESET ROLE;
SELECT lives_ok(format('SELECT moe_deploy(%L, %s); SELECT moe_deploy(%L, %s)', 'sec_prod', (SELECT other FROM ids),
                       'sec_prod', (SELECT prod FROM ids)),
                'the superuser may re-point any name');

-- ---------------------------------------------------------------------------
-- 3. dataset names belong to their owner, and a dataset never runs its
-- maker's code with the reader's privileges
CREATE TABLE sec_bob.t AS SELECT * FROM sec_alice_pairs;
ALTER TABLE sec_bob.t OWNER TO moe_sec_bob;
CREATE FUNCTION sec_bob.escalate() RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
    ALTER ROLE moe_sec_bob SUPERUSER;
    RETURN true;
END $$;
ALTER FUNCTION sec_bob.escalate() OWNER TO moe_sec_bob;
SET LOCAL ROLE moe_sec_bob;
CREATE VIEW sec_bob.v AS SELECT * FROM sec_bob.t WHERE sec_bob.escalate();
GRANT SELECT ON sec_bob.v TO PUBLIC;
SELECT throws_ok($$SELECT moe_create_dataset('sec_syn', 'sec_bob.v', protein_column => 'target_vec', replace => true)$$,
                 '42501', 'dataset "sec_syn" belongs to role moe_sec_alice',
                 'a trainer cannot re-point another role''s dataset');
SELECT throws_ok($$SELECT moe_drop_dataset('sec_syn')$$, '42501', 'dataset "sec_syn" belongs to role moe_sec_alice',
                 'nor drop it');
SELECT throws_ok($$UPDATE moe.datasets SET relation = 'sec_bob.v' WHERE name = 'sec_syn'$$, '42501', NULL,
                 'nor update its row');
SELECT is((SELECT relation::text FROM moe.datasets WHERE name = 'sec_syn'), 'sec_alice_pairs',
          'sec_syn still reads alice''s table');
SELECT lives_ok($$SELECT moe_create_dataset('sec_trap', 'sec_bob.v', protein_column => 'target_vec')$$,
                'bob registers a dataset over a view that runs his function');
RESET ROLE;
-- the superuser uses bob's dataset and source
SELECT throws_ok(format('SELECT * FROM moe_evaluate(%s, %L, %L)', (SELECT prod FROM ids), 'sec_trap', 'all'), '42501',
                 NULL, 'evaluating on it runs bob''s function as bob, who may not make himself superuser');
SELECT throws_ok($$CALL moe_train('sec_trap', model_name => 'sec_trapped', epochs => 1, batch_size => 64,
                                  drug_hidden => '{8}', protein_hidden => '{8}', gate_hidden => '{8}',
                                  expert_hidden => '{8}')$$,
                 '42501', NULL, 'training on it too');
SELECT throws_ok(format('SELECT * FROM moe_routing(%s, %L)', (SELECT prod FROM ids), 'sec_trap'), '42501', NULL,
                 'and the routing functions');
SELECT throws_ok(format('CALL moe_score(%s, %L, %L, protein_column => %L)', (SELECT prod FROM ids), 'sec_bob.v',
                        'sec_scored', 'target_vec'),
                 '42501', NULL, 'and moe_score over his view');
SELECT ok(NOT (SELECT rolsuper FROM pg_roles WHERE rolname = 'moe_sec_bob'), 'bob is not a superuser');
-- a view whose code is harmless is read as its owner and works
SET LOCAL ROLE moe_sec_bob;
CREATE VIEW sec_bob.harmless AS SELECT * FROM sec_bob.t WHERE drug_id >= 0;
GRANT SELECT ON sec_bob.harmless TO PUBLIC;
SELECT moe_create_dataset('sec_harmless', 'sec_bob.harmless', protein_column => 'target_vec');
RESET ROLE;
SELECT is((SELECT n FROM moe_evaluate((SELECT prod FROM ids), 'sec_harmless', 'all')), 600::bigint,
          'another role''s harmless view is read (as its owner)');
REVOKE SELECT ON sec_bob.harmless FROM PUBLIC;
SET LOCAL ROLE moe_sec_reader;
SELECT throws_ok(format('SELECT * FROM moe_evaluate(%s, %L, %L)', (SELECT prod FROM ids), 'sec_harmless', 'all'),
                 '42501', 'permission denied for view harmless', 'but only by those who may SELECT it');
RESET ROLE;
-- rows that depend on who reads them are refused, not read as the owner
CREATE TABLE sec_rls AS SELECT * FROM sec_alice_pairs;
ALTER TABLE sec_rls OWNER TO moe_sec_alice;
ALTER TABLE sec_rls ENABLE ROW LEVEL SECURITY;
CREATE POLICY few ON sec_rls USING (drug_id < 5);
GRANT SELECT ON sec_rls TO PUBLIC;
SET LOCAL ROLE moe_sec_alice;
SELECT moe_create_dataset('sec_rls', 'sec_rls', protein_column => 'target_vec');
RESET ROLE;
SET LOCAL ROLE moe_sec_bob;
SELECT throws_ok(format('SELECT * FROM moe_evaluate(%s, %L, %L)', (SELECT prod FROM ids), 'sec_rls', 'all'), '42501',
                 'dataset "sec_rls" reads sec_rls of role "moe_sec_alice", which has row-level security',
                 'a table with row-level security of another role is refused (its owner would see every row)');
RESET ROLE;

-- ---------------------------------------------------------------------------
-- 4. internal queries mean the same under a hostile search_path
SET LOCAL ROLE moe_sec_reader;
CREATE FUNCTION sec_evil.eq(bigint, bigint) RETURNS boolean LANGUAGE sql IMMUTABLE AS 'SELECT $1 <> $2';
CREATE OPERATOR sec_evil.= (LEFTARG = bigint, RIGHTARG = bigint, FUNCTION = sec_evil.eq);
CREATE FUNCTION sec_evil.teq(text, text) RETURNS boolean LANGUAGE sql IMMUTABLE AS 'SELECT $1 <> $2';
CREATE OPERATOR sec_evil.= (LEFTARG = text, RIGHTARG = text, FUNCTION = sec_evil.teq);
CREATE FUNCTION sec_evil.ieq(integer, integer) RETURNS boolean LANGUAGE sql IMMUTABLE AS 'SELECT $1 <> $2';
CREATE OPERATOR sec_evil.= (LEFTARG = integer, RIGHTARG = integer, FUNCTION = sec_evil.ieq);
CREATE TABLE sec_evil.models (id bigint, checkpoint bytea);
CREATE TEMP TABLE deployments (name text, model_id bigint);
-- (pgTAP itself is not immune: the answers are kept and checked after)
CREATE TEMP TABLE under_attack (what text, answer real);
SET LOCAL search_path = sec_evil, pg_catalog, public, moe;
INSERT INTO under_attack
SELECT 'by id', public.moe_predict(drug_vec, target_vec, (SELECT prod FROM ids)) FROM probe
UNION ALL
SELECT 'by name', public.moe_predict(drug_vec, target_vec, 'sec_prod') FROM probe
UNION ALL
SELECT 'rows', (SELECT n FROM public.moe_evaluate((SELECT prod FROM ids), 'sec_syn', 'all'));
RESET search_path;
SELECT is((SELECT answer FROM under_attack WHERE what = 'by id'), (SELECT prod FROM expected),
          'a shadowing = for bigint does not make moe_predict load another model');
SELECT is((SELECT answer FROM under_attack WHERE what = 'by name'), (SELECT prod FROM expected),
          'nor a shadowing = for text resolve another name');
SELECT is((SELECT answer FROM under_attack WHERE what = 'rows'), 600::real,
          'nor a shadowing = for integer change the rows of a dataset');
RESET ROLE;
SELECT moe_cache_clear('connection');
SELECT is((SELECT moe_predict(drug_vec, target_vec, (SELECT prod FROM ids)) FROM probe), (SELECT prod FROM expected),
          'the cached model is still the right one for every later caller');
SELECT is((SELECT moe_predict(drug_vec, target_vec, (SELECT other FROM ids)) FROM probe), (SELECT other FROM expected),
          'and the other model too');
SELECT is((SELECT array_agg(p.proname::text ORDER BY p.proname) FROM pg_proc p
             JOIN pg_depend d ON d.objid = p.oid AND d.classid = 'pg_proc'::regclass AND d.deptype = 'e'
            WHERE d.refobjid = (SELECT oid FROM pg_extension WHERE extname = 'moe_pg')
              AND p.prolang IN (SELECT oid FROM pg_language WHERE lanname IN ('plpgsql', 'sql'))
              AND NOT coalesce(p.proconfig @> ARRAY['search_path=pg_catalog, pg_temp'], false)), NULL,
          'every SQL and PL/pgSQL function of the extension pins search_path');
-- moe_score under a hostile search_path writes the same table
SET LOCAL search_path = sec_evil, pg_catalog, public;
CREATE FUNCTION sec_evil.unnest(text[]) RETURNS SETOF text LANGUAGE sql AS 'SELECT ''x''';
CREATE FUNCTION sec_evil.unnest(real[]) RETURNS SETOF real LANGUAGE sql AS 'SELECT 0::real';
CALL public.moe_score('sec_prod', 'public.sec_alice_pairs', 'sec_scores_evil', 'drug_vec', 'target_vec',
                      '{drug_id,target_id}');
RESET search_path;
CALL moe_score('sec_prod', 'sec_alice_pairs', 'sec_scores_plain', protein_column => 'target_vec',
               key_columns => '{drug_id,target_id}');
SELECT is((SELECT count(*) FROM sec_evil.sec_scores_evil e JOIN sec_scores_plain p USING (drug_id, target_id)
            WHERE e.prediction = p.prediction), 600::bigint,
          'moe_score under a hostile search_path writes the same predictions (into the first schema on it)');

-- ---------------------------------------------------------------------------
-- 5. the cache follows transactions: a row that rolls back is never served
SAVEPOINT forged;
INSERT INTO moe.models (id, name, config, checkpoint)
SELECT (SELECT last_value + 1 FROM moe.models_id_seq), 'rolled_back', config, checkpoint
  FROM moe.models WHERE id = (SELECT other FROM ids);
SELECT is((SELECT moe_predict(drug_vec, target_vec, (SELECT last_value + 1 FROM moe.models_id_seq)) FROM probe),
          (SELECT other FROM expected), 'an uncommitted row is served to its own transaction');
ROLLBACK TO SAVEPOINT forged;
SELECT throws_ok(format('SELECT moe_predict(drug_vec, target_vec, %s::bigint) FROM probe',
                        (SELECT last_value + 1 FROM moe.models_id_seq)), '42704', NULL,
                 'after ROLLBACK TO SAVEPOINT the id does not exist, cache or not');
CALL moe_train('sec_syn', model_name => 'sec_after', epochs => 1, batch_size => 64, seed => 1,
               drug_hidden => '{16}', protein_hidden => '{16}', gate_hidden => '{16}', expert_hidden => '{16}');
SELECT is((SELECT model_id FROM moe.deployments WHERE name = 'sec_after'), (SELECT last_value FROM moe.models_id_seq),
          'a new model takes that id');
SELECT is((SELECT moe_predict(drug_vec, target_vec, 'sec_after') FROM probe), (SELECT prod FROM expected),
          'and is served its own weights (seed 1, as sec_prod), not the rolled-back ones');
SAVEPOINT undeploy;
SELECT moe_deploy('sec_prod', (SELECT other FROM ids));
SELECT is((SELECT moe_predict(drug_vec, target_vec, 'sec_prod') FROM probe), (SELECT other FROM expected),
          'a re-point is served inside its transaction');
ROLLBACK TO SAVEPOINT undeploy;
SELECT is((SELECT moe_predict(drug_vec, target_vec, 'sec_prod') FROM probe), (SELECT prod FROM expected),
          'and undone by its rollback');
SAVEPOINT dropping;
SELECT moe_deploy('sec_other', (SELECT prod FROM ids));
SELECT moe_drop_model((SELECT other FROM ids));
SELECT throws_ok(format('SELECT moe_predict(drug_vec, target_vec, %s::bigint) FROM probe', (SELECT other FROM ids)),
                 '42704', NULL, 'a dropped model is gone at once for the dropping transaction');
ROLLBACK TO SAVEPOINT dropping;
SELECT is((SELECT moe_predict(drug_vec, target_vec, (SELECT other FROM ids)) FROM probe), (SELECT other FROM expected),
          'and back after its rollback');

-- ---------------------------------------------------------------------------
-- 6. memory: work over moe_pg.max_model_mb is refused before it is allocated
SELECT throws_ok($$CALL moe_train('sec_syn', model_name => 'sec_huge', experts => 1, top_k => 1, epochs => 1,
                                  drug_hidden => '{16384,16384,16384,16384}', protein_hidden => '{16384,16384,16384,16384}',
                                  gate_hidden => '{16384,16384,16384,16384}', expert_hidden => '{16}')$$,
                 '54000', NULL, 'a model of 16384-wide layers is refused (it once grew a backend to 22 GB)');
SELECT throws_ok($$SELECT count(*) FROM moe_synthetic_dta(100000, 2, 2, drug_dim => 4096, target_dim => 8)$$,
                 '54000', NULL, 'a synthetic set of 1.6 GB of drug vectors is refused at the default budget');
SET LOCAL ROLE moe_sec_nobody;
SELECT throws_ok($$SET moe_pg.max_model_mb = 100000$$, '42501', NULL, 'only a superuser may raise the budget');
RESET ROLE;
SET LOCAL moe_pg.max_model_mb = 1;
SELECT throws_ok($$CALL moe_train('sec_syn', model_name => 'sec_small', epochs => 1, batch_size => 64,
                                  drug_hidden => '{256}', protein_hidden => '{256}', gate_hidden => '{256}',
                                  expert_hidden => '{256}')$$,
                 '54000', NULL, 'at the smallest budget (1 MB) a 256-wide model is refused');
SELECT throws_ok($$SELECT count(*) FROM moe_synthetic_dta(1000, 300, 2, drug_dim => 64)$$, '54000', NULL,
                 'and a synthetic set of 300,000 pairs');
SELECT throws_ok(format('SELECT count(*) FROM moe_predict_matrix((SELECT array_agg(drug_vec) FROM sec_alice_pairs, generate_series(1, 3)), (SELECT array_agg(target_vec) FROM sec_alice_pairs, generate_series(1, 3)), %s::bigint)',
                        (SELECT prod FROM ids)), '54000', NULL, 'and a screen of 1,800 x 1,800 entities');
SELECT is((SELECT count(*) FROM moe_synthetic_dta(10, 10, 2)), 100::bigint, 'small work still runs');
RESET moe_pg.max_model_mb;

SELECT * FROM finish();
ROLLBACK;
