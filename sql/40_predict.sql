-- ---------------------------------------------------------------------------
-- Scoring

CREATE FUNCTION moe_predict(drug real[], protein real[], model bigint)
RETURNS real
AS 'MODULE_PATHNAME', 'moe_predict_by_id'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

CREATE FUNCTION moe_predict(drug real[], protein real[], model text)
RETURNS real
AS 'MODULE_PATHNAME', 'moe_predict_by_name'
LANGUAGE C STABLE STRICT PARALLEL SAFE;

CREATE FUNCTION moe_predict(drug real[], protein real[], model bigint, params_md5 text)
RETURNS real
AS 'MODULE_PATHNAME', 'moe_predict_checked'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

CREATE FUNCTION moe_route(drug real[], protein real[], model bigint)
RETURNS TABLE (expert integer, gate_prob real, selected boolean, weight real)
AS 'MODULE_PATHNAME', 'moe_route_by_id'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE ROWS 4;

CREATE FUNCTION moe_route(drug real[], protein real[], model text)
RETURNS TABLE (expert integer, gate_prob real, selected boolean, weight real)
AS 'MODULE_PATHNAME', 'moe_route_by_name'
LANGUAGE C STABLE STRICT PARALLEL SAFE ROWS 4;

COMMENT ON FUNCTION moe_predict(real[], real[], bigint) IS
    'Predicted affinity of a drug vector and a protein vector with model id';
COMMENT ON FUNCTION moe_predict(real[], real[], bigint, text) IS
    'moe_predict by id, refused unless this server''s model id has the weights of params_md5 (moe_model_info): the same weights on every node of a cluster';
COMMENT ON FUNCTION moe_predict(real[], real[], text) IS
    'Predicted affinity of a drug vector and a protein vector with the model a deployed name points at';
COMMENT ON FUNCTION moe_route(real[], real[], bigint) IS
    'How model id routes a pair: per expert its gate probability, whether it is selected, and its weight';
COMMENT ON FUNCTION moe_route(real[], real[], text) IS
    'How a deployed model routes a pair: per expert its gate probability, whether it is selected, and its weight';

-- The same over text: a SMILES string and a protein sequence, featurized
-- the way the model's training vectors were (its recorded featurizers).
CREATE FUNCTION moe_predict(drug text, protein text, model bigint)
RETURNS real
AS 'MODULE_PATHNAME', 'moe_predict_any'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION moe_predict(text, text, bigint) IS
    'Predicted affinity of a SMILES string and a protein sequence, featurized as model id''s training vectors were';

CREATE FUNCTION moe_predict(drug text, protein text, model text)
RETURNS real
AS 'MODULE_PATHNAME', 'moe_predict_any'
LANGUAGE C STABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION moe_predict(text, text, text) IS
    'Predicted affinity of a SMILES string and a protein sequence with a deployed model, featurized as its training vectors were';

CREATE FUNCTION moe_route(drug text, protein text, model bigint)
RETURNS TABLE (expert integer, gate_prob real, selected boolean, weight real)
AS 'MODULE_PATHNAME', 'moe_route_any'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE ROWS 4;
COMMENT ON FUNCTION moe_route(text, text, bigint) IS
    'How model id routes a SMILES string and a protein sequence';

CREATE FUNCTION moe_route(drug text, protein text, model text)
RETURNS TABLE (expert integer, gate_prob real, selected boolean, weight real)
AS 'MODULE_PATHNAME', 'moe_route_any'
LANGUAGE C STABLE STRICT PARALLEL SAFE ROWS 4;
COMMENT ON FUNCTION moe_route(text, text, text) IS
    'How a deployed model routes a SMILES string and a protein sequence';

-- Without a model: the one moe_pg.default_model names (a deployed name or an id).
CREATE FUNCTION moe_predict(drug real[], protein real[])
RETURNS real
AS 'MODULE_PATHNAME', 'moe_predict_any'
LANGUAGE C STABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION moe_predict(real[], real[]) IS
    'Predicted affinity with the model of moe_pg.default_model';

CREATE FUNCTION moe_predict(drug text, protein text)
RETURNS real
AS 'MODULE_PATHNAME', 'moe_predict_any'
LANGUAGE C STABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION moe_predict(text, text) IS
    'Predicted affinity of a SMILES string and a protein sequence with the model of moe_pg.default_model';

CREATE FUNCTION moe_route(drug real[], protein real[])
RETURNS TABLE (expert integer, gate_prob real, selected boolean, weight real)
AS 'MODULE_PATHNAME', 'moe_route_any'
LANGUAGE C STABLE STRICT PARALLEL SAFE ROWS 4;
COMMENT ON FUNCTION moe_route(real[], real[]) IS
    'How the model of moe_pg.default_model routes a pair';

CREATE FUNCTION moe_route(drug text, protein text)
RETURNS TABLE (expert integer, gate_prob real, selected boolean, weight real)
AS 'MODULE_PATHNAME', 'moe_route_any'
LANGUAGE C STABLE STRICT PARALLEL SAFE ROWS 4;
COMMENT ON FUNCTION moe_route(text, text) IS
    'How the model of moe_pg.default_model routes a SMILES string and a protein sequence';

CREATE FUNCTION moe_evaluate(model bigint, dataset text DEFAULT NULL, split text DEFAULT 'test',
                             fold integer DEFAULT NULL)
RETURNS TABLE (n bigint, mse double precision, rmse double precision, ci double precision,
               r2 double precision, pearson double precision, spearman double precision,
               rm2 double precision)
AS 'MODULE_PATHNAME', 'moe_evaluate_by_id'
LANGUAGE C STABLE PARALLEL SAFE;

CREATE FUNCTION moe_evaluate(model text, dataset text DEFAULT NULL, split text DEFAULT 'test',
                             fold integer DEFAULT NULL)
RETURNS TABLE (n bigint, mse double precision, rmse double precision, ci double precision,
               r2 double precision, pearson double precision, spearman double precision,
               rm2 double precision)
AS 'MODULE_PATHNAME', 'moe_evaluate_by_name'
LANGUAGE C STABLE PARALLEL SAFE;

COMMENT ON FUNCTION moe_evaluate(bigint, text, text, integer) IS
    'Test metrics (n, MSE, RMSE, CI, R2, Pearson, Spearman, rm2) of model id on a dataset split';
COMMENT ON FUNCTION moe_evaluate(text, text, text, integer) IS
    'Test metrics (n, MSE, RMSE, CI, R2, Pearson, Spearman, rm2) of a deployed model on a dataset split';
