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

CREATE FUNCTION moe_route(drug real[], protein real[], model bigint)
RETURNS TABLE (expert integer, gate_prob real, selected boolean, weight real)
AS 'MODULE_PATHNAME', 'moe_route_by_id'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE ROWS 4;

CREATE FUNCTION moe_route(drug real[], protein real[], model text)
RETURNS TABLE (expert integer, gate_prob real, selected boolean, weight real)
AS 'MODULE_PATHNAME', 'moe_route_by_name'
LANGUAGE C STABLE STRICT PARALLEL SAFE ROWS 4;

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
