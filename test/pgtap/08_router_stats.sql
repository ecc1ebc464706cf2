-- Router statistics against values computed independently in SQL, on
-- small hand-made routing tables; the aggregate in serial and in parallel.
BEGIN;
SELECT plan(27);

-- Independent formulas over a per-expert table (expert, mean_prob, selections).
CREATE FUNCTION pg_temp.expected(tab regclass) RETURNS TABLE (cv float8, gini float8, entropy float8,
    normalized float8, max_min float8, max_violation float8, dead int) LANGUAGE plpgsql AS $$
BEGIN
    RETURN QUERY EXECUTE format($q$
        WITH s AS (SELECT expert, mean_prob / sum(mean_prob) OVER () AS share, selections FROM %s),
             e AS (SELECT count(*)::float8 AS n FROM s)
        SELECT stddev_pop(s.share) / avg(s.share),
               (SELECT sum(abs(a.share - b.share)) FROM s a, s b) / (2 * e.n * e.n * avg(s.share)),
               sum(CASE WHEN s.share > 0 THEN -s.share * ln(s.share) ELSE 0 END),
               sum(CASE WHEN s.share > 0 THEN -s.share * ln(s.share) ELSE 0 END) / ln(e.n),
               CASE WHEN min(s.share) > 0 THEN max(s.share) / min(s.share) ELSE 'Infinity' END,
               (max(s.share) - avg(s.share)) / avg(s.share),
               count(*) FILTER (WHERE s.selections = 0)::int
          FROM s, e GROUP BY e.n $q$, tab);
END $$;
CREATE FUNCTION pg_temp.actual(tab regclass) RETURNS moe.router_summary LANGUAGE plpgsql AS $$
DECLARE r moe.router_summary;
BEGIN
    EXECUTE format('SELECT (moe_router_stats(array_agg(mean_prob ORDER BY expert), array_agg(selections ORDER BY expert))).* FROM %s', tab)
       INTO r;
    RETURN r;
END $$;
CREATE FUNCTION pg_temp.agrees(tab regclass) RETURNS boolean LANGUAGE sql AS $$
    SELECT abs(a.cv - e.cv) < 1e-12 AND abs(a.gini - e.gini) < 1e-12 AND abs(a.balance_entropy - e.entropy) < 1e-12
       AND abs(a.normalized_entropy - e.normalized) < 1e-12 AND a.max_violation - e.max_violation < 1e-12
       AND (a.max_min_ratio = e.max_min OR abs(a.max_min_ratio - e.max_min) < 1e-12) AND a.dead_experts = e.dead
      FROM pg_temp.actual(tab) a, pg_temp.expected(tab) e $$;

CREATE TEMP TABLE balanced (expert int, mean_prob float8, selections bigint);
INSERT INTO balanced VALUES (0, 0.25, 10), (1, 0.25, 10), (2, 0.25, 10), (3, 0.25, 10);
CREATE TEMP TABLE collapsed (expert int, mean_prob float8, selections bigint);
INSERT INTO collapsed VALUES (0, 0.99, 40), (1, 0.004, 0), (2, 0.003, 0), (3, 0.003, 0);
CREATE TEMP TABLE dead (expert int, mean_prob float8, selections bigint);
INSERT INTO dead VALUES (0, 0.3, 20), (1, 0.3, 15), (2, 0.25, 5), (3, 0.15, 0);
CREATE TEMP TABLE uneven (expert int, mean_prob float8, selections bigint);
INSERT INTO uneven VALUES (0, 0.4, 16), (1, 0.3, 12), (2, 0.2, 8), (3, 0.1, 4);

SELECT ok(pg_temp.agrees('balanced'), 'balanced: every statistic matches the SQL formulas');
SELECT ok(pg_temp.agrees('collapsed'), 'collapsed: every statistic matches the SQL formulas');
SELECT ok(pg_temp.agrees('dead'), 'dead expert: every statistic matches the SQL formulas');
SELECT ok(pg_temp.agrees('uneven'), 'uneven: every statistic matches the SQL formulas');
SELECT is((pg_temp.actual('balanced')).status, 'balanced', 'a balanced router');
SELECT is((pg_temp.actual('collapsed')).status, 'collapsed', 'a collapsed router (one expert has 0.99)');
SELECT is((pg_temp.actual('dead')).status, 'dead_expert', 'an expert nobody chose');
SELECT is((pg_temp.actual('uneven')).status, 'imbalanced', 'cv 0.45 is imbalanced');
SELECT is((pg_temp.actual('balanced')).gini, 0::float8, 'Gini 0 when balanced');
SELECT is((pg_temp.actual('collapsed')).dominant_expert, 0, 'the dominant expert');
SELECT is((moe_router_stats('{1,0,0,0}', '{5,0,0,0}')).gini, 0.75::float8, 'Gini (E-1)/E when one expert has it all');
SELECT is((moe_router_stats('{0.5,0.5}', '{3,1}', 0.9)).row_entropy, 0.9::float8, 'row entropy is passed through');
SELECT is((moe_router_stats('{0.62,0.38}', '{3,1}')).status, 'balanced',
          'with two experts 0.62 does not dominate (the line is 1.6 / E)');

-- ---- the aggregate over per-row routing ----
-- rows: probabilities over 3 experts and the selected experts (top 2)
CREATE TEMP TABLE routing (id int, probs real[], selected int[]);
INSERT INTO routing VALUES
    (1, '{0.5,0.3,0.2}', '{0,1}'), (2, '{0.6,0.3,0.1}', '{0,1}'), (3, '{0.2,0.2,0.6}', '{2,0}'),
    (4, '{0.1,0.7,0.2}', '{1,2}'), (5, NULL, NULL);
CREATE TEMP TABLE per_expert AS
SELECT x.expert, avg(r.probs[x.expert + 1])::float8 AS mean_prob,
       count(*) FILTER (WHERE x.expert = ANY (r.selected)) AS selections
  FROM routing r CROSS JOIN generate_series(0, 2) x(expert) WHERE r.probs IS NOT NULL GROUP BY x.expert;
CREATE TEMP TABLE agg AS SELECT (moe_usage(probs, selected)).* FROM routing;
SELECT is((SELECT n FROM agg), 4::bigint, 'NULL rows are skipped');
SELECT ok((SELECT bool_and(abs(a - b) < 1e-7) FROM agg, unnest(agg.mean_prob, (SELECT array_agg(mean_prob ORDER BY expert) FROM per_expert)) u(a, b)),
          'mean probabilities');
SELECT is((SELECT selections FROM agg), (SELECT array_agg(selections ORDER BY expert) FROM per_expert), 'selection counts');
SELECT ok((SELECT abs(agg.cv - (pg_temp.actual('per_expert')).cv) < 1e-7 AND agg.status = (pg_temp.actual('per_expert')).status FROM agg),
          'the aggregate equals moe_router_stats of the independent means and counts');
SELECT ok((SELECT abs(row_entropy - (SELECT avg(-(SELECT sum(p * ln(p)) FROM unnest(probs) p) / ln(3)) FROM routing WHERE probs IS NOT NULL)) < 1e-6 FROM agg),
          'row entropy is the mean normalised entropy of the rows');
SELECT is((SELECT moe_usage(probs, selected) FROM routing WHERE false), NULL, 'no rows, NULL');
SELECT throws_ok($$SELECT moe_usage(probs, selected) FROM (VALUES ('{0.5,0.5}'::real[], '{0}'::int[]), ('{0.2,0.3,0.5}', '{0}')) v(probs, selected)$$,
                 '22000', 'probs has 3 elements in this row and 2 in earlier ones', 'rows must agree on E');
SELECT throws_ok($$SELECT moe_usage('{0.5,0.5}', '{2}')$$, '22023', 'selected expert 2 is outside 0..1', 'selected out of range');
SELECT throws_ok($$SELECT moe_router_stats('{0.5,0.5}', '{1}')$$, '22023', NULL, 'lengths must match');
SELECT throws_ok($$SELECT moe_router_stats('{0,0}', '{1,1}')$$, '22023', NULL, 'all-zero probabilities');
SELECT throws_ok($$SELECT moe_router_stats('{0.5,-0.5}', '{1,1}')$$, '22023', NULL, 'negative probabilities');
SELECT throws_ok($$SELECT moe_router_stats('{0.5,NULL}', '{1,1}')$$, '22004', NULL, 'NULL elements');

-- ---- parallel query splits the aggregate and gets the same answer ----
CREATE TEMP TABLE big AS SELECT g AS id,
       ARRAY[(g % 7 + 1)::real, (g % 3 + 1)::real, 2::real] AS raw, ARRAY[g % 3, (g + 1) % 3] AS selected
  FROM generate_series(1, 20000) g;
CREATE TABLE moe_tap_parallel AS SELECT id, ARRAY[raw[1] / (raw[1] + raw[2] + raw[3]), raw[2] / (raw[1] + raw[2] + raw[3]),
       raw[3] / (raw[1] + raw[2] + raw[3])]::real[] AS probs, selected FROM big;
ANALYZE moe_tap_parallel;
CREATE TEMP TABLE serial AS SELECT (moe_usage(probs, selected)).* FROM moe_tap_parallel;
SET LOCAL parallel_setup_cost = 0;
SET LOCAL parallel_tuple_cost = 0;
SET LOCAL min_parallel_table_scan_size = 0;
SET LOCAL max_parallel_workers_per_gather = 2;
CREATE FUNCTION pg_temp.plan_of(q text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE line text; plan text := '';
BEGIN
    FOR line IN EXECUTE 'EXPLAIN (COSTS OFF) ' || q LOOP plan := plan || line || E'\n'; END LOOP;
    RETURN plan;
END $$;
SELECT ok(pg_temp.plan_of('SELECT moe_usage(probs, selected) FROM moe_tap_parallel') ~ 'Partial Aggregate',
          'the planner splits moe_usage across workers');
SELECT ok((SELECT s.n = p.n AND s.selections = p.selections AND abs(s.cv - p.cv) < 1e-9 AND abs(s.row_entropy - p.row_entropy) < 1e-9
             FROM serial s, (SELECT (moe_usage(probs, selected)).* FROM moe_tap_parallel) p),
          'and the parallel answer equals the serial one');

SELECT * FROM finish();
ROLLBACK;
