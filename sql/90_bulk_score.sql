-- ---------------------------------------------------------------------------
-- Bulk scoring (docs/scoring.md)

CREATE FUNCTION moe_predict_batch(drugs real[], proteins real[], model bigint)
RETURNS TABLE (i integer, prediction real)
AS 'MODULE_PATHNAME', 'moe_predict_batch_sql'
LANGUAGE C IMMUTABLE PARALLEL SAFE ROWS 1000;

CREATE FUNCTION moe_predict_batch(drugs real[], proteins real[], model text)
RETURNS TABLE (i integer, prediction real)
AS 'MODULE_PATHNAME', 'moe_predict_batch_sql'
LANGUAGE C STABLE PARALLEL SAFE ROWS 1000;
COMMENT ON FUNCTION moe_predict_batch(real[], real[], text) IS
    'Score row i of drugs (a two-dimensional array, one vector per row) with row i of proteins, in batches';

CREATE FUNCTION moe_predict_matrix(drugs real[], proteins real[], model bigint)
RETURNS TABLE (drug_index integer, protein_index integer, prediction real)
AS 'MODULE_PATHNAME', 'moe_predict_matrix_sql'
LANGUAGE C IMMUTABLE PARALLEL SAFE ROWS 10000;

CREATE FUNCTION moe_predict_matrix(drugs real[], proteins real[], model text)
RETURNS TABLE (drug_index integer, protein_index integer, prediction real)
AS 'MODULE_PATHNAME', 'moe_predict_matrix_sql'
LANGUAGE C STABLE PARALLEL SAFE ROWS 10000;
COMMENT ON FUNCTION moe_predict_matrix(real[], real[], text) IS
    'Score every drug row against every protein row (a screen), each entity computed once';

CREATE FUNCTION moe_predict_partition(drug real[], protein real[], model bigint, params_md5 text)
RETURNS real
AS 'MODULE_PATHNAME', 'moe_predict_partition_sql'
LANGUAGE C WINDOW IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION moe_predict_partition(real[], real[], bigint, text) IS
    'Window function: each row''s prediction, every row of its window partition scored in one batch (model id checked against params_md5 as moe_predict''s); moe_score''s form on Citus';
ALTER FUNCTION moe_predict_partition(real[], real[], bigint, text) COST 5000;

CREATE PROCEDURE moe_score(
    model text,
    source regclass,
    output_table text,
    drug_column name DEFAULT 'drug_vec',
    protein_column name DEFAULT 'protein_vec',
    key_columns text[] DEFAULT NULL,
    replace boolean DEFAULT false)
AS 'MODULE_PATHNAME', 'moe_score_sql'
LANGUAGE C;

CREATE PROCEDURE moe_score(
    model bigint,
    source regclass,
    output_table text,
    drug_column name DEFAULT 'drug_vec',
    protein_column name DEFAULT 'protein_vec',
    key_columns text[] DEFAULT NULL,
    replace boolean DEFAULT false)
AS 'MODULE_PATHNAME', 'moe_score_sql'
LANGUAGE C;
COMMENT ON PROCEDURE moe_score(text, regclass, text, name, name, text[], boolean) IS
    'Score every row of a table or view into a new table (its key columns and the prediction)';

-- Scoring costs far more than an operator: let the planner weigh it, so
-- large scoring queries get parallel plans.
ALTER FUNCTION moe_predict(real[], real[], bigint) COST 5000;
ALTER FUNCTION moe_predict(real[], real[], text) COST 5000;
ALTER FUNCTION moe_predict(text, text, bigint) COST 5000;
ALTER FUNCTION moe_predict(text, text, text) COST 5000;
ALTER FUNCTION moe_predict(real[], real[]) COST 5000;
ALTER FUNCTION moe_predict(text, text) COST 5000;

-- ---------------------------------------------------------------------------
-- Screening: the best n compounds of a library for one target

CREATE FUNCTION moe_screen(model text, target real[], compounds regclass, n integer DEFAULT 100,
                           drug_column name DEFAULT 'vec', key_column name DEFAULT 'drug_id')
RETURNS TABLE (rank integer, key text, score real)
AS 'MODULE_PATHNAME', 'moe_screen_sql'
LANGUAGE C STABLE PARALLEL RESTRICTED ROWS 100;
COMMENT ON FUNCTION moe_screen(text, real[], regclass, integer, name, name) IS
    'The n compounds of a table or view (vectors or SMILES in drug_column, named by key_column) that a deployed model scores highest against a target vector, best first';

CREATE FUNCTION moe_screen(model bigint, target real[], compounds regclass, n integer DEFAULT 100,
                           drug_column name DEFAULT 'vec', key_column name DEFAULT 'drug_id')
RETURNS TABLE (rank integer, key text, score real)
AS 'MODULE_PATHNAME', 'moe_screen_sql'
LANGUAGE C STABLE PARALLEL RESTRICTED ROWS 100;
COMMENT ON FUNCTION moe_screen(bigint, real[], regclass, integer, name, name) IS
    'The n compounds of a table or view that model id scores highest against a target vector, best first';

CREATE FUNCTION moe_screen(model text, target text, compounds regclass, n integer DEFAULT 100,
                           drug_column name DEFAULT 'vec', key_column name DEFAULT 'drug_id')
RETURNS TABLE (rank integer, key text, score real)
AS 'MODULE_PATHNAME', 'moe_screen_sql'
LANGUAGE C STABLE PARALLEL RESTRICTED ROWS 100;
COMMENT ON FUNCTION moe_screen(text, text, regclass, integer, name, name) IS
    'The n compounds of a table or view that a deployed model scores highest against a protein sequence (featurized as its training vectors were), best first';

CREATE FUNCTION moe_screen(model bigint, target text, compounds regclass, n integer DEFAULT 100,
                           drug_column name DEFAULT 'vec', key_column name DEFAULT 'drug_id')
RETURNS TABLE (rank integer, key text, score real)
AS 'MODULE_PATHNAME', 'moe_screen_sql'
LANGUAGE C STABLE PARALLEL RESTRICTED ROWS 100;
COMMENT ON FUNCTION moe_screen(bigint, text, regclass, integer, name, name) IS
    'The n compounds of a table or view that model id scores highest against a protein sequence, best first';

COMMENT ON FUNCTION moe_predict_batch(real[], real[], bigint) IS
    'Predicted affinities of pairs given as two matrices (row i with row i) with model id';
COMMENT ON FUNCTION moe_predict_matrix(real[], real[], bigint) IS
    'Predicted affinities of every drug row against every protein row with model id';
COMMENT ON PROCEDURE moe_score(bigint, regclass, text, name, name, text[], boolean) IS
    'Score every row of a table or view with model id into a new table, in bulk';
