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
