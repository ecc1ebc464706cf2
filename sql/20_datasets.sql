-- ---------------------------------------------------------------------------
-- Datasets

CREATE FUNCTION moe_create_dataset(
    name text,
    relation regclass,
    drug_column name DEFAULT 'drug_vec',
    protein_column name DEFAULT 'protein_vec',
    label_column name DEFAULT 'label',
    split_column name DEFAULT 'split',
    fold_column name DEFAULT NULL,
    drug_key_column name DEFAULT NULL,
    protein_key_column name DEFAULT NULL,
    replace boolean DEFAULT false,
    drug_featurizer jsonb DEFAULT NULL,
    protein_featurizer jsonb DEFAULT NULL)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    col record;
    wanted text[][] := ARRAY[
        ARRAY['drug_column', drug_column],
        ARRAY['protein_column', protein_column],
        ARRAY['label_column', label_column],
        ARRAY['split_column', split_column],
        ARRAY['fold_column', fold_column],
        ARRAY['drug_key_column', drug_key_column],
        ARRAY['protein_key_column', protein_key_column]];
    i integer;
    typ oid;
BEGIN
    IF name IS NULL THEN
        RAISE EXCEPTION 'dataset name must not be NULL' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF name = '' THEN
        RAISE EXCEPTION 'dataset name must not be empty' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF relation IS NULL OR drug_column IS NULL OR protein_column IS NULL OR label_column IS NULL
       OR split_column IS NULL OR replace IS NULL THEN
        RAISE EXCEPTION 'relation, drug_column, protein_column, label_column, split_column and replace must not be NULL'
            USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF (drug_key_column IS NULL) <> (protein_key_column IS NULL) THEN
        RAISE EXCEPTION 'give both drug_key_column and protein_key_column, or neither'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    FOR i IN 1 .. array_length(wanted, 1) LOOP
        CONTINUE WHEN wanted[i][2] IS NULL;
        SELECT a.atttypid INTO typ FROM pg_attribute a
         WHERE a.attrelid = relation AND a.attname = wanted[i][2] AND a.attnum > 0 AND NOT a.attisdropped;
        IF NOT FOUND THEN
            RAISE EXCEPTION 'column "%" (%) does not exist in %', wanted[i][2], wanted[i][1], relation
                USING ERRCODE = 'undefined_column';
        END IF;
        IF wanted[i][1] IN ('drug_column', 'protein_column') AND typ <> 'real[]'::regtype THEN
            RAISE EXCEPTION '% "%" must be of type real[], not %', wanted[i][1], wanted[i][2], typ::regtype
                USING ERRCODE = 'datatype_mismatch';
        ELSIF wanted[i][1] = 'label_column'
              AND typ NOT IN ('smallint'::regtype, 'integer'::regtype, 'bigint'::regtype,
                              'real'::regtype, 'double precision'::regtype, 'numeric'::regtype) THEN
            RAISE EXCEPTION 'label_column "%" must be numeric, not %', wanted[i][2], typ::regtype
                USING ERRCODE = 'datatype_mismatch';
        ELSIF wanted[i][1] = 'fold_column'
              AND typ NOT IN ('smallint'::regtype, 'integer'::regtype, 'bigint'::regtype) THEN
            RAISE EXCEPTION 'fold_column "%" must be an integer, not %', wanted[i][2], typ::regtype
                USING ERRCODE = 'datatype_mismatch';
        ELSIF wanted[i][1] = 'split_column'
              AND typ NOT IN ('text'::regtype, 'character varying'::regtype, 'character'::regtype, 'name'::regtype) THEN
            RAISE EXCEPTION 'split_column "%" must be text, not %', wanted[i][2], typ::regtype
                USING ERRCODE = 'datatype_mismatch';
        END IF;
    END LOOP;
    -- checked and written out in full before anything is stored
    drug_featurizer := @extschema@.moe_featurizer_spec(drug_featurizer, 'drug');
    protein_featurizer := @extschema@.moe_featurizer_spec(protein_featurizer, 'protein');
    IF replace THEN
        DELETE FROM moe.datasets d WHERE d.name = moe_create_dataset.name;
    END IF;
    INSERT INTO moe.datasets (name, relation, drug_column, protein_column, label_column,
                              split_column, fold_column, drug_key_column, protein_key_column,
                              drug_featurizer, protein_featurizer)
    VALUES (name, relation, drug_column, protein_column, label_column,
            split_column, fold_column, drug_key_column, protein_key_column,
            drug_featurizer, protein_featurizer);
EXCEPTION WHEN unique_violation THEN
    RAISE EXCEPTION 'dataset "%" already exists', name
        USING ERRCODE = 'duplicate_object', HINT = 'Pass replace => true to redefine it.';
END;
$$;
COMMENT ON FUNCTION moe_create_dataset(text, regclass, name, name, name, name, name, name, name, boolean, jsonb, jsonb) IS
    'Register a relation or view as a named dataset for moe_train and moe_evaluate; the featurizer specs say how its vectors were made';

CREATE FUNCTION moe_drop_dataset(name text)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF name IS NULL THEN
        RAISE EXCEPTION 'dataset name must not be NULL' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    DELETE FROM moe.datasets d WHERE d.name = moe_drop_dataset.name;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'dataset "%" does not exist', name USING ERRCODE = 'undefined_object';
    END IF;
END;
$$;

-- ---------------------------------------------------------------------------
-- Loading the Davis and KIBA benchmark CSVs (layout: shared/data/README.md)

CREATE FUNCTION moe_load_dta(
    directory text,
    dataset text DEFAULT NULL,
    setting text DEFAULT 'warm',
    smiles_dim integer DEFAULT NULL,
    protein_k integer DEFAULT 3,
    replace boolean DEFAULT false,
    drug_features text DEFAULT 'ngram')
RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    dir text := rtrim(directory, '/');
    ds text := coalesce(dataset, regexp_replace(rtrim(directory, '/'), '^.*/', ''));
    header text;
    label_column text;
    extra_columns text;
    split_file text;
    pairs bigint;
    t text;
    existing regclass;
    -- every relation this function makes carries this comment: replace =>
    -- true drops only relations that have it (commenting needs ownership)
    marker text := format('Created by moe_load_dta for dataset %s', ds);
BEGIN
    IF directory IS NULL OR setting IS NULL OR protein_k IS NULL OR replace IS NULL OR drug_features IS NULL THEN
        RAISE EXCEPTION 'directory, setting, protein_k, replace and drug_features must not be NULL'
            USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF ds !~ '^[A-Za-z_][A-Za-z0-9_]*$' THEN
        RAISE EXCEPTION 'dataset name "%" must be a plain identifier (letters, digits, underscores)', ds
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    -- The dataset name is also a schema that replace => true empties: never a system one.
    IF ds IN ('moe', 'information_schema') OR ds ~ '^pg_' THEN
        RAISE EXCEPTION 'dataset name "%" is reserved (it would be the schema of the loaded tables)', ds
            USING ERRCODE = 'reserved_name';
    END IF;
    IF setting NOT IN ('warm', 'novel_drug', 'novel_prot', 'novel_pair', 'setting1') THEN
        RAISE EXCEPTION 'unknown setting "%" (valid: warm, novel_drug, novel_prot, novel_pair, setting1)', setting
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF drug_features NOT IN ('ngram', 'ecfp') THEN
        RAISE EXCEPTION 'unknown drug_features "%" (valid: ngram, ecfp)', drug_features
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    -- ECFP folds into 2048 buckets by default, the n-grams into 1024.
    smiles_dim := coalesce(smiles_dim, CASE drug_features WHEN 'ecfp' THEN 2048 ELSE 1024 END);
    -- Featurizer parameters are checked before any file is read.
    IF drug_features = 'ecfp' THEN
        PERFORM @extschema@.moe_featurize_ecfp('C', dim => smiles_dim);
    ELSE
        PERFORM @extschema@.moe_featurize_smiles('C', smiles_dim);
    END IF;
    PERFORM @extschema@.moe_featurize_protein('A', protein_k);

    -- Davis has kd_nm and pkd (we learn pkd); KIBA has kiba_score.
    header := rtrim(split_part(pg_read_file(dir || '/affinities.csv', 0, 200), E'\n', 1), E'\r');
    IF header = 'drug_id,target_id,kd_nm,pkd' THEN
        label_column := 'pkd';
        extra_columns := 'kd_nm double precision, pkd double precision';
    ELSIF header = 'drug_id,target_id,kiba_score' THEN
        label_column := 'kiba_score';
        extra_columns := 'kiba_score double precision';
    ELSE
        RAISE EXCEPTION 'unrecognised header "%" in %/affinities.csv', header, dir
            USING ERRCODE = 'invalid_text_representation',
                  HINT = 'Expected the Davis or KIBA layout of shared/data/README.md.';
    END IF;

    EXECUTE format('CREATE SCHEMA IF NOT EXISTS %I', ds);
    -- Only what an earlier load of this dataset made is ever dropped.
    FOREACH t IN ARRAY ARRAY['pairs', 'splits', 'affinities', 'drugs', 'targets'] LOOP
        existing := to_regclass(format('%I.%I', ds, t));
        CONTINUE WHEN existing IS NULL;
        IF obj_description(existing, 'pg_class') IS DISTINCT FROM marker THEN
            RAISE EXCEPTION '% exists and was not made by moe_load_dta for dataset "%"', existing, ds
                USING ERRCODE = 'duplicate_table',
                      HINT = 'Load under another dataset name, or move that relation away yourself.';
        ELSIF NOT replace THEN
            RAISE EXCEPTION 'dataset "%" is already loaded (% exists)', ds, existing
                USING ERRCODE = 'duplicate_table',
                      HINT = 'Pass replace => true to load it again.';
        END IF;
    END LOOP;
    IF replace THEN
        EXECUTE format('DROP VIEW IF EXISTS %I.pairs', ds);
        FOREACH t IN ARRAY ARRAY['splits', 'affinities', 'drugs', 'targets'] LOOP
            EXECUTE format('DROP TABLE IF EXISTS %I.%I', ds, t);
        END LOOP;
    END IF;

    EXECUTE format('CREATE TABLE %I.drugs (drug_id text PRIMARY KEY, smiles text NOT NULL, vec real[])', ds);
    EXECUTE format('CREATE TABLE %I.targets (target_id text PRIMARY KEY, sequence text NOT NULL, vec real[])', ds);
    EXECUTE format('CREATE TABLE %I.affinities (drug_id text NOT NULL, target_id text NOT NULL, %s, '
                   'PRIMARY KEY (drug_id, target_id))', ds, extra_columns);
    EXECUTE format('CREATE TABLE %I.splits (drug_id text NOT NULL, target_id text NOT NULL, '
                   'fold integer NOT NULL, split text NOT NULL)', ds);
    -- Vectors are stored once per entity and not compressed (pglz gains nothing on floats).
    EXECUTE format('ALTER TABLE %I.drugs ALTER COLUMN vec SET STORAGE EXTERNAL', ds);
    EXECUTE format('ALTER TABLE %I.targets ALTER COLUMN vec SET STORAGE EXTERNAL', ds);

    EXECUTE format('COPY %I.drugs (drug_id, smiles) FROM %L WITH (FORMAT csv, HEADER true)', ds, dir || '/drugs.csv');
    EXECUTE format('COPY %I.targets (target_id, sequence) FROM %L WITH (FORMAT csv, HEADER true)', ds, dir || '/targets.csv');
    EXECUTE format('COPY %I.affinities FROM %L WITH (FORMAT csv, HEADER true)', ds, dir || '/affinities.csv');

    IF setting = 'setting1' THEN
        -- DeepDTA setting 1: for fold k, validate on fold k, train on the
        -- other four, test on the common held-out set.
        CREATE TEMP TABLE moe_setting1 (drug_id text, target_id text, fold text) ON COMMIT DROP;
        EXECUTE format('COPY moe_setting1 FROM %L WITH (FORMAT csv, HEADER true)', dir || '/folds_setting1.csv');
        EXECUTE format($q$
            INSERT INTO %I.splits
            SELECT s.drug_id, s.target_id, k,
                   CASE WHEN s.fold = 'test' THEN 'test' WHEN s.fold = k::text THEN 'valid' ELSE 'train' END
              FROM moe_setting1 s CROSS JOIN generate_series(0, 4) k$q$, ds);
        DROP TABLE moe_setting1;
    ELSE
        split_file := dir || '/llmdta_splits/' || setting || '.csv';
        EXECUTE format('COPY %I.splits FROM %L WITH (FORMAT csv, HEADER true)', ds, split_file);
    END IF;
    EXECUTE format('CREATE INDEX ON %I.splits (fold, split)', ds);

    IF drug_features = 'ecfp' THEN
        EXECUTE format('UPDATE %I.drugs SET vec = @extschema@.moe_featurize_ecfp(smiles, dim => %s)', ds, smiles_dim);
    ELSE
        EXECUTE format('UPDATE %I.drugs SET vec = @extschema@.moe_featurize_smiles(smiles, %s)', ds, smiles_dim);
    END IF;
    EXECUTE format('UPDATE %I.targets SET vec = @extschema@.moe_featurize_protein(sequence, %s)', ds, protein_k);

    EXECUTE format($q$
        CREATE VIEW %1$I.pairs AS
        SELECT a.drug_id, a.target_id, d.vec AS drug_vec, t.vec AS protein_vec,
               a.%2$I AS label, s.fold, s.split
          FROM %1$I.affinities a
          JOIN %1$I.drugs d USING (drug_id)
          JOIN %1$I.targets t USING (target_id)
          JOIN %1$I.splits s USING (drug_id, target_id)$q$, ds, label_column);
    EXECUTE format('ANALYZE %I.drugs, %I.targets, %I.affinities, %I.splits', ds, ds, ds, ds);
    FOREACH t IN ARRAY ARRAY['pairs', 'splits', 'affinities', 'drugs', 'targets'] LOOP
        EXECUTE format('COMMENT ON %s %I.%I IS %L', CASE t WHEN 'pairs' THEN 'VIEW' ELSE 'TABLE' END, ds, t, marker);
    END LOOP;

    PERFORM @extschema@.moe_create_dataset(ds, format('%I.pairs', ds)::regclass, fold_column => 'fold',
                               drug_key_column => 'drug_id', protein_key_column => 'target_id',
                               replace => replace,
                               drug_featurizer => CASE drug_features
                                   WHEN 'ecfp' THEN jsonb_build_object('featurizer', 'ecfp', 'dim', smiles_dim)
                                   ELSE jsonb_build_object('featurizer', 'smiles', 'dim', smiles_dim) END,
                               protein_featurizer => jsonb_build_object('featurizer', 'protein', 'k', protein_k));
    EXECUTE format('SELECT count(*) FROM %I.affinities', ds) INTO pairs;
    RETURN pairs;
END;
$$;
COMMENT ON FUNCTION moe_load_dta(text, text, text, integer, integer, boolean, text) IS
    'Load the Davis or KIBA CSVs of a directory into schema <dataset>, featurize, and register the dataset';
REVOKE ALL ON FUNCTION moe_load_dta(text, text, text, integer, integer, boolean, text) FROM PUBLIC;

-- ---------------------------------------------------------------------------
-- Synthetic data with planted clusters (docs/synthetic.md)

CREATE FUNCTION moe_synthetic_dta(
    n_drugs integer,
    n_targets integer,
    n_clusters integer,
    seed bigint DEFAULT 42,
    drug_dim integer DEFAULT 32,
    target_dim integer DEFAULT 32,
    noise real DEFAULT 0.1)
RETURNS TABLE (drug_id integer, target_id integer, cluster integer,
               drug_vec real[], target_vec real[], label real, split text)
AS 'MODULE_PATHNAME', 'moe_synthetic_dta_sql'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE ROWS 1000;
COMMENT ON FUNCTION moe_synthetic_dta(integer, integer, integer, bigint, integer, integer, real) IS
    'Synthetic drug-target pairs whose affinity follows a cluster-specific function; split 70/15/15';

COMMENT ON FUNCTION moe_drop_dataset(text) IS
    'Unregister a dataset (its relation is left as it is); only its owner may';
