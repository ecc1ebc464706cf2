-- ---------------------------------------------------------------------------
-- Privileges (docs/security.md)
--
-- Nothing here is SECURITY DEFINER: every function and procedure runs with
-- the caller's rights, so a dataset is read, a model row written and an
-- output table created only where the caller may do so.  Two roles carry
-- the rights the functions need:
--
--   moe_reader   scoring and inspection: predict, route, evaluate, reports,
--                the cache view, and SELECT on every table and view in moe
--   moe_trainer  member of moe_reader; trains, cross-validates, sweeps,
--                registers datasets, deploys, drops, imports and exports
--                (export/import and moe_load_dta also need the server-file
--                rights they check for themselves)
--
-- PUBLIC keeps only the pure functions (featurizers, the synthetic
-- generator, router statistics and the moe_usage aggregate): they read no
-- table and no model.  Everything else is revoked from PUBLIC below, by
-- default: a function added to the extension later is closed until it is
-- granted here (test/pgtap/12_privileges.sql checks that every function
-- is classified).

-- Roles are cluster-wide and outlive the extension: create them only when
-- missing (another database may have made them, or an administrator, in
-- which case they are used as they are).
DO $$
BEGIN
    BEGIN
        CREATE ROLE moe_reader NOLOGIN;
    EXCEPTION WHEN duplicate_object THEN NULL;
    END;
    BEGIN
        CREATE ROLE moe_trainer NOLOGIN;
    EXCEPTION WHEN duplicate_object THEN NULL;
    END;
    IF NOT pg_has_role('moe_trainer', 'moe_reader', 'MEMBER') THEN
        GRANT moe_reader TO moe_trainer;
    END IF;
END;
$$;

-- Default deny: PUBLIC loses EXECUTE on every function of the extension
-- except the pure ones listed here.
DO $$
DECLARE
    f regprocedure;
    pure regprocedure[] := ARRAY[
        '@extschema@.moe_featurize_smiles(text, integer, integer)',
        '@extschema@.moe_featurize_protein(text, integer)',
        '@extschema@.moe_featurize_ecfp(text, integer, integer, boolean)',
        '@extschema@.moe_featurize_protein_triad(text)',
        '@extschema@.moe_featurize_protein_cksaap(text, integer)',
        '@extschema@.moe_synthetic_dta(integer, integer, integer, bigint, integer, integer, real)',
        '@extschema@.moe_router_stats(double precision[], bigint[], double precision, bigint[])',
        '@extschema@.moe_usage(real[], integer[])',
        '@extschema@.moe_featurizer_spec(jsonb, text)']::regprocedure[];
BEGIN
    FOR f IN
        SELECT p.oid::regprocedure
          FROM pg_catalog.pg_depend d
          JOIN pg_catalog.pg_proc p ON p.oid = d.objid
         WHERE d.classid = 'pg_catalog.pg_proc'::regclass
           AND d.refclassid = 'pg_catalog.pg_extension'::regclass
           AND d.refobjid = (SELECT e.oid FROM pg_catalog.pg_extension e WHERE e.extname = 'moe_pg')
           AND d.deptype = 'e'
           AND p.oid <> ALL (pure)
    LOOP
        EXECUTE format('REVOKE ALL ON %s %s FROM PUBLIC',
                       CASE (SELECT p.prokind FROM pg_catalog.pg_proc p WHERE p.oid = f)
                           WHEN 'p' THEN 'PROCEDURE' ELSE 'FUNCTION' END, f);
    END LOOP;
END;
$$;

-- moe_reader: the schema, every table and view, and the functions that
-- read models and datasets.
GRANT USAGE ON SCHEMA moe TO moe_reader;
GRANT SELECT ON ALL TABLES IN SCHEMA moe TO moe_reader;
GRANT EXECUTE ON FUNCTION
    moe_predict(real[], real[], bigint), moe_predict(real[], real[], text),
    moe_predict(real[], real[], bigint, text),
    moe_route(real[], real[], bigint), moe_route(real[], real[], text),
    moe_predict(text, text, bigint), moe_predict(text, text, text),
    moe_route(text, text, bigint), moe_route(text, text, text),
    moe_predict(real[], real[]), moe_predict(text, text),
    moe_route(real[], real[]), moe_route(text, text),
    moe_evaluate(bigint, text, text, integer), moe_evaluate(text, text, text, integer),
    moe_gate(real[], real[], bigint), moe_gate(real[], real[], text),
    moe_expert_outputs(real[], real[], bigint), moe_expert_outputs(real[], real[], text),
    moe_routing(bigint, text, text, integer), moe_routing(text, text, text, integer),
    moe_specialization(bigint, text, text, integer, text), moe_specialization(text, text, text, integer, text),
    moe_expert_profile(bigint, text, text, integer), moe_expert_profile(text, text, text, integer),
    moe_expert_agreement(bigint, text, text, integer), moe_expert_agreement(text, text, text, integer),
    moe_cluster_recovery(bigint, text, text, integer, text, text),
    moe_cluster_recovery(text, text, text, integer, text, text),
    moe_report(bigint), moe_report(text),
    moe_model_info(bigint), moe_model_info(text),
    moe_predict_batch(real[], real[], bigint), moe_predict_batch(real[], real[], text),
    moe_predict_matrix(real[], real[], bigint), moe_predict_matrix(real[], real[], text),
    moe_predict_partition(real[], real[], bigint, text),
    moe_cache(),
    moe_screen(text, real[], regclass, integer, name, name), moe_screen(bigint, real[], regclass, integer, name, name),
    moe_screen(text, text, regclass, integer, name, name), moe_screen(bigint, text, regclass, integer, name, name)
TO moe_reader;
GRANT EXECUTE ON PROCEDURE
    moe_score(text, regclass, text, name, name, text[], boolean),
    moe_score(bigint, regclass, text, name, name, text[], boolean)
TO moe_reader;

-- moe_trainer: what training, registering, deploying, dropping and
-- importing write.  Row deletes that cascade (history, snapshots) run as
-- the table owner and need no grant; identity columns need no sequence
-- rights.
GRANT INSERT, DELETE ON moe.datasets TO moe_trainer;
GRANT INSERT, DELETE ON moe.models TO moe_trainer;
GRANT INSERT, UPDATE, DELETE ON moe.deployments TO moe_trainer;
GRANT INSERT, UPDATE (action) ON moe.deployment_history TO moe_trainer;
GRANT INSERT ON moe.experiments TO moe_trainer;
GRANT INSERT, UPDATE ON moe.training_runs TO moe_trainer;
GRANT INSERT ON moe.training_history, moe.expert_history, moe.router_history,
                moe.specialization_snapshots TO moe_trainer;
GRANT EXECUTE ON PROCEDURE
    moe_train, moe_cross_validate, moe_sweep
TO moe_trainer;
GRANT EXECUTE ON FUNCTION
    moe_create_dataset(text, regclass, name, name, name, name, name, name, name, boolean, jsonb, jsonb),
    moe_drop_dataset(text),
    moe_load_dta(text, text, text, integer, integer, boolean, text),
    moe_deploy(text, bigint),
    moe_rollback(text),
    moe_drop_model(bigint),
    moe_export_model(bigint, text), moe_export_model(text, text),
    moe_import_model(text, text, boolean)
TO moe_trainer;

-- Superusers only (not granted to either role): moe_cache_clear(), which
-- can empty the cache of every database, and the trigger functions
-- moe.models_are_immutable(), moe.forget_cached_model(), moe.check_owner(),
-- moe.guard_models() and moe.record_deployment() (a trigger runs whoever
-- fires it, without EXECUTE).
