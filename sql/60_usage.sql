-- ---------------------------------------------------------------------------
-- Router statistics (docs/monitoring.md)

CREATE TYPE moe.router_summary AS (
    n                  bigint,
    mean_prob          double precision[],
    share              double precision[],
    selections         bigint[],
    selection_fraction double precision[],
    cv                 double precision,
    max_min_ratio      double precision,
    gini               double precision,
    balance_entropy    double precision,
    normalized_entropy double precision,
    row_entropy        double precision,
    max_violation      double precision,
    dead_experts       integer,
    dominant_expert    integer,
    status             text
);

CREATE FUNCTION moe_router_stats(mean_prob double precision[], selections bigint[],
                                 row_entropy double precision DEFAULT NULL)
RETURNS moe.router_summary
AS 'MODULE_PATHNAME', 'moe_router_stats_sql'
LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION moe_router_stats(double precision[], bigint[], double precision) IS
    'Balance statistics and health status of a router from its per-expert mean probabilities and selections';

CREATE FUNCTION moe_usage_transfn(internal, real[], integer[]) RETURNS internal
AS 'MODULE_PATHNAME', 'moe_usage_transfn' LANGUAGE C IMMUTABLE PARALLEL SAFE;
CREATE FUNCTION moe_usage_combinefn(internal, internal) RETURNS internal
AS 'MODULE_PATHNAME', 'moe_usage_combinefn' LANGUAGE C IMMUTABLE PARALLEL SAFE;
CREATE FUNCTION moe_usage_serialfn(internal) RETURNS bytea
AS 'MODULE_PATHNAME', 'moe_usage_serialfn' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION moe_usage_deserialfn(bytea, internal) RETURNS internal
AS 'MODULE_PATHNAME', 'moe_usage_deserialfn' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION moe_usage_finalfn(internal) RETURNS moe.router_summary
AS 'MODULE_PATHNAME', 'moe_usage_finalfn' LANGUAGE C IMMUTABLE PARALLEL SAFE;

CREATE AGGREGATE moe_usage(probs real[], selected integer[]) (
    SFUNC = moe_usage_transfn,
    STYPE = internal,
    FINALFUNC = moe_usage_finalfn,
    COMBINEFUNC = moe_usage_combinefn,
    SERIALFUNC = moe_usage_serialfn,
    DESERIALFUNC = moe_usage_deserialfn,
    PARALLEL = SAFE
);
COMMENT ON AGGREGATE moe_usage(real[], integer[]) IS
    'Expert usage over rows of routing (gate probabilities, selected experts): balance statistics and status';
