-- ---------------------------------------------------------------------------
-- Router statistics: how evenly a router spreads rows over its experts and
-- whether it is healthy (docs/monitoring.md has the formulas and thresholds).

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
    status             text,
    -- the second view (top-k selections) and the leads (top-1), beside the
    -- first (cv, max_min_ratio, ... of the probability shares above)
    leads                   bigint[],
    lead_fraction           double precision[],
    selection_cv            double precision,
    selection_max_min_ratio double precision,
    lead_cv                 double precision,
    lead_max_min_ratio      double precision,
    probability_status      text,
    selection_status        text,
    lead_status             text
);
COMMENT ON TYPE moe.router_summary IS
    'Router statistics on two views: rows, per-expert mean gate probability and its normalised share (cv, max/min, Gini, balance entropy raw and / ln E, max violation, dominant expert: probability_status), top-k selections and their fractions (selection_cv, selection_max_min_ratio, dead experts: selection_status), top-1 leads and their fractions (lead_cv, lead_max_min_ratio: lead_status), mean per-row entropy / ln E; status (balanced, imbalanced, dead_expert, collapsed) is the worse of probability_status and selection_status';

-- Not STRICT: a NULL row_entropy gives a NULL row_entropy, NULL leads NULL
-- lead statistics, NULL arrays otherwise an error.
CREATE FUNCTION moe_router_stats(mean_prob double precision[], selections bigint[],
                                 row_entropy double precision DEFAULT NULL, leads bigint[] DEFAULT NULL)
RETURNS moe.router_summary
AS 'MODULE_PATHNAME', 'moe_router_stats_sql'
LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION moe_router_stats(double precision[], bigint[], double precision, bigint[]) IS
    'Balance statistics and health status of a router from its per-expert mean gate probabilities, top-k selection counts and (optionally) top-1 lead counts; the status is the worse of the probability and the selection view (n is NULL)';

-- The aggregate's support functions.  The state is internal (a C struct in
-- the aggregate's memory context); the transition and combine functions
-- are not STRICT because they create it; serialise and deserialise are
-- STRICT, which also keeps them from being called usefully from SQL.
CREATE FUNCTION moe_usage_transfn(internal, real[], integer[]) RETURNS internal
AS 'MODULE_PATHNAME', 'moe_usage_transfn' LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION moe_usage_transfn(internal, real[], integer[]) IS
    'Transition function of moe_usage';
CREATE FUNCTION moe_usage_combinefn(internal, internal) RETURNS internal
AS 'MODULE_PATHNAME', 'moe_usage_combinefn' LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION moe_usage_combinefn(internal, internal) IS
    'Combine function of moe_usage (partial aggregation)';
CREATE FUNCTION moe_usage_serialfn(internal) RETURNS bytea
AS 'MODULE_PATHNAME', 'moe_usage_serialfn' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION moe_usage_serialfn(internal) IS
    'Serialisation function of moe_usage: version byte, E, rows, sums (little-endian)';
CREATE FUNCTION moe_usage_deserialfn(bytea, internal) RETURNS internal
AS 'MODULE_PATHNAME', 'moe_usage_deserialfn' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION moe_usage_deserialfn(bytea, internal) IS
    'Deserialisation function of moe_usage; a damaged state is an error';
CREATE FUNCTION moe_usage_finalfn(internal) RETURNS moe.router_summary
AS 'MODULE_PATHNAME', 'moe_usage_finalfn' LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION moe_usage_finalfn(internal) IS
    'Final function of moe_usage: the statistics, or NULL without rows';

CREATE AGGREGATE moe_usage(probs real[], selected integer[]) (
    SFUNC = moe_usage_transfn,
    STYPE = internal,
    SSPACE = 1048,
    FINALFUNC = moe_usage_finalfn,
    COMBINEFUNC = moe_usage_combinefn,
    SERIALFUNC = moe_usage_serialfn,
    DESERIALFUNC = moe_usage_deserialfn,
    PARALLEL = SAFE
);
COMMENT ON AGGREGATE moe_usage(real[], integer[]) IS
    'Expert usage over rows of routing (one row''s gate probabilities, the 0-based experts it selected, best first): balance statistics on both views, leads, and status; NULL rows are skipped, no rows give NULL; parallel safe';
