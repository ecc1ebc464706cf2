-- Router statistics (moe_router_stats, the aggregate moe_usage) against
-- values computed independently in SQL on small hand-made routing tables,
-- on both views (gate probabilities, top-k selections) and the top-1
-- leads; the aggregate serial and split by parallel query; every error.
BEGIN;
SELECT plan(78);

-- ---------------------------------------------------------------------------
-- Hand-made routing: four experts, top 2; one row = one pair's gate
-- probabilities and the experts it selected.
CREATE TEMP TABLE routing (scenario text, id int, probs real[], selected int[]);
INSERT INTO routing VALUES
    -- every expert gets each of .4 .3 .2 .1 once and is picked twice
    ('balanced', 1, '{0.4,0.3,0.2,0.1}', '{0,1}'), ('balanced', 2, '{0.1,0.4,0.3,0.2}', '{1,2}'),
    ('balanced', 3, '{0.2,0.1,0.4,0.3}', '{2,3}'), ('balanced', 4, '{0.3,0.2,0.1,0.4}', '{3,0}'),
    -- one expert always chosen with probability 0.99
    ('collapsed', 1, '{0.99,0.004,0.003,0.003}', '{0,1}'), ('collapsed', 2, '{0.99,0.004,0.003,0.003}', '{0,1}'),
    ('collapsed', 3, '{0.99,0.003,0.004,0.003}', '{0,2}'), ('collapsed', 4, '{0.99,0.004,0.003,0.003}', '{0,1}'),
    -- probabilities fairly even, but expert 3 is never selected
    ('dead', 1, '{0.3,0.3,0.25,0.15}', '{0,1}'), ('dead', 2, '{0.25,0.3,0.3,0.15}', '{1,2}'),
    ('dead', 3, '{0.3,0.25,0.3,0.15}', '{2,0}'),
    -- expert 0 takes 0.4 of the probability: cv 0.36
    ('imbalanced', 1, '{0.4,0.3,0.2,0.1}', '{0,1}'), ('imbalanced', 2, '{0.5,0.2,0.2,0.1}', '{0,2}'),
    ('imbalanced', 3, '{0.3,0.2,0.2,0.3}', '{0,3}'),
    -- probabilities even, selections not: expert 0 is in every row's top 2
    ('uneven_selections', 1, '{0.26,0.25,0.25,0.24}', '{0,1}'), ('uneven_selections', 2, '{0.26,0.24,0.25,0.25}', '{0,2}'),
    ('uneven_selections', 3, '{0.24,0.25,0.25,0.26}', '{3,0}'), ('uneven_selections', 4, '{0.24,0.26,0.25,0.25}', '{1,0}'),
    -- the reverse: expert 0 holds most of the mass, selections rotate evenly
    ('uneven_probs', 1, '{0.55,0.2,0.15,0.1}', '{0,1}'), ('uneven_probs', 2, '{0.55,0.1,0.2,0.15}', '{2,3}'),
    ('uneven_probs', 3, '{0.55,0.15,0.1,0.2}', '{3,0}'), ('uneven_probs', 4, '{0.55,0.2,0.1,0.15}', '{1,2}'),
    -- rows an aggregate skips
    ('balanced', 5, NULL, '{0,1}'), ('collapsed', 5, '{0.99,0.004,0.003,0.003}', NULL), ('dead', 4, NULL, NULL);

-- Per expert, independently: mean probability, selection and lead counts.
CREATE TEMP VIEW per_expert AS
SELECT r.scenario, x.expert, avg(r.probs[x.expert + 1]::float8) AS mean_prob,
       count(*) FILTER (WHERE x.expert = ANY (r.selected)) AS selections,
       count(*) FILTER (WHERE x.expert = r.selected[1]) AS leads
  FROM routing r CROSS JOIN generate_series(0, 3) x(expert)
 WHERE r.probs IS NOT NULL AND r.selected IS NOT NULL
 GROUP BY r.scenario, x.expert;

-- One view's status from its fractions (docs/monitoring.md), in SQL.
CREATE FUNCTION pg_temp.view_status(f float8[], zeros_are_dead boolean) RETURNS text LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE WHEN max(x) >= 0.97 THEN 'collapsed'
                WHEN zeros_are_dead AND min(x) = 0 THEN 'dead_expert'
                WHEN stddev_pop(x) / avg(x) > 0.30 OR min(x) = 0 OR max(x) / nullif(min(x), 0) > 3 OR max(x) > 0.40
                    THEN 'imbalanced'
                ELSE 'balanced' END
      FROM unnest(f) x $$;
CREATE FUNCTION pg_temp.worse(a text, b text) RETURNS text LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE WHEN 'collapsed' IN (a, b) THEN 'collapsed' WHEN 'dead_expert' IN (a, b) THEN 'dead_expert'
                WHEN 'imbalanced' IN (a, b) THEN 'imbalanced' ELSE 'balanced' END $$;

-- The statistics, written out in SQL.
CREATE TEMP VIEW expected AS
WITH sh AS (SELECT scenario, expert, selections, mean_prob / sum(mean_prob) OVER (PARTITION BY scenario) AS s
              FROM per_expert),
     st AS (SELECT scenario, count(*)::float8 AS e, avg(s) AS mean, stddev_pop(s) AS sd, max(s) AS smax, min(s) AS smin,
                   sum(CASE WHEN s > 0 THEN -s * ln(s) ELSE 0 END) AS h,
                   count(*) FILTER (WHERE selections = 0)::int AS dead,
                   (array_agg(expert ORDER BY s DESC, expert))[1] AS dominant,
                   array_agg(s ORDER BY expert) AS shares
              FROM sh GROUP BY scenario),
     sel AS (SELECT scenario, array_agg(selections::float8 / sum_sel ORDER BY expert) AS fractions,
                    array_agg(leads::float8 / sum_leads ORDER BY expert) AS lead_fractions
               FROM (SELECT *, sum(selections) OVER (PARTITION BY scenario) AS sum_sel,
                            sum(leads) OVER (PARTITION BY scenario) AS sum_leads FROM per_expert) p
              GROUP BY scenario),
     gini AS (SELECT a.scenario, sum(abs(a.s - b.s)) AS absdiff FROM sh a JOIN sh b USING (scenario) GROUP BY a.scenario),
     rows AS (SELECT scenario, count(*) AS n,
                     avg((SELECT sum(CASE WHEN p > 0 THEN -p * ln(p) ELSE 0 END) FROM unnest(probs) p) / ln(4)) AS row_entropy
                FROM routing WHERE probs IS NOT NULL AND selected IS NOT NULL GROUP BY scenario)
SELECT st.scenario, rows.n, st.shares,
       st.sd / st.mean AS cv,
       CASE WHEN st.smin > 0 THEN st.smax / st.smin ELSE 'Infinity' END AS max_min_ratio,
       gini.absdiff / (2 * st.e * st.e * st.mean) AS gini,
       st.h AS balance_entropy, st.h / ln(st.e) AS normalized_entropy,
       (st.smax - st.mean) / st.mean AS max_violation,
       st.dead AS dead_experts, st.dominant AS dominant_expert, rows.row_entropy,
       pg_temp.view_status(st.shares, false) AS probability_status,
       sel.fractions AS selection_fraction,
       (SELECT stddev_pop(x) / avg(x) FROM unnest(sel.fractions) x) AS selection_cv,
       pg_temp.view_status(sel.fractions, true) AS selection_status,
       sel.lead_fractions AS lead_fraction,
       pg_temp.view_status(sel.lead_fractions, true) AS lead_status,
       pg_temp.worse(pg_temp.view_status(st.shares, false), pg_temp.view_status(sel.fractions, true)) AS status
  FROM st JOIN gini USING (scenario) JOIN rows USING (scenario) JOIN sel USING (scenario);

-- moe_router_stats of the independent means and counts, and the aggregate.
CREATE TEMP TABLE by_function AS
SELECT scenario, moe_router_stats(array_agg(mean_prob ORDER BY expert), array_agg(selections ORDER BY expert),
                                  leads => array_agg(leads ORDER BY expert)) AS r
  FROM per_expert GROUP BY scenario;
CREATE TEMP TABLE by_aggregate AS
SELECT scenario, moe_usage(probs, selected) AS r FROM routing GROUP BY scenario;

CREATE FUNCTION pg_temp.close(a float8, b float8) RETURNS boolean LANGUAGE sql IMMUTABLE AS
    $$ SELECT a = b OR abs(a - b) <= 1e-9 * greatest(1, abs(b)) $$;
CREATE FUNCTION pg_temp.close(a float8[], b float8[]) RETURNS boolean LANGUAGE sql IMMUTABLE AS
    $$ SELECT array_length(a, 1) = array_length(b, 1)
          AND (SELECT bool_and(pg_temp.close(x, y)) FROM unnest(a, b) u(x, y)) $$;
-- Every statistic of a router_summary row against the SQL formulas.
CREATE FUNCTION pg_temp.matches(r moe.router_summary, e expected) RETURNS boolean LANGUAGE sql AS $$
    SELECT pg_temp.close(r.share, e.shares) AND pg_temp.close(r.cv, e.cv)
       AND pg_temp.close(r.max_min_ratio, e.max_min_ratio) AND pg_temp.close(r.gini, e.gini)
       AND pg_temp.close(r.balance_entropy, e.balance_entropy)
       AND pg_temp.close(r.normalized_entropy, e.normalized_entropy)
       AND pg_temp.close(r.max_violation, e.max_violation)
       AND r.dead_experts = e.dead_experts AND r.dominant_expert = e.dominant_expert
       AND r.probability_status = e.probability_status AND pg_temp.close(r.selection_fraction, e.selection_fraction)
       AND pg_temp.close(r.selection_cv, e.selection_cv) AND r.selection_status = e.selection_status
       AND pg_temp.close(r.lead_fraction, e.lead_fraction) AND r.lead_status = e.lead_status
       AND r.status = e.status $$;

-- ---- 1. moe_router_stats against the formulas ----
SELECT ok((SELECT pg_temp.matches(f.r, e) FROM by_function f JOIN expected e USING (scenario) WHERE scenario = 'balanced'),
          'balanced: every statistic equals the SQL formulas');
SELECT ok((SELECT pg_temp.matches(f.r, e) FROM by_function f JOIN expected e USING (scenario) WHERE scenario = 'collapsed'),
          'collapsed: every statistic equals the SQL formulas');
SELECT ok((SELECT pg_temp.matches(f.r, e) FROM by_function f JOIN expected e USING (scenario) WHERE scenario = 'dead'),
          'dead expert: every statistic equals the SQL formulas');
SELECT ok((SELECT pg_temp.matches(f.r, e) FROM by_function f JOIN expected e USING (scenario) WHERE scenario = 'imbalanced'),
          'imbalanced: every statistic equals the SQL formulas');
SELECT is((SELECT (r).status FROM by_function WHERE scenario = 'balanced'), 'balanced', 'a balanced router');
SELECT is((SELECT (r).status FROM by_function WHERE scenario = 'collapsed'), 'collapsed', 'a router that always picks expert 0 at 0.99 has collapsed');
SELECT is((SELECT (r).status FROM by_function WHERE scenario = 'dead'), 'dead_expert', 'an expert nobody selects is dead');
SELECT is((SELECT (r).status FROM by_function WHERE scenario = 'imbalanced'), 'imbalanced', 'cv 0.36 is imbalanced');
SELECT ok((SELECT pg_temp.matches(f.r, e) FROM by_function f JOIN expected e USING (scenario) WHERE scenario = 'uneven_selections'),
          'even probabilities, uneven selections: every statistic equals the SQL formulas');
SELECT ok((SELECT pg_temp.matches(f.r, e) FROM by_function f JOIN expected e USING (scenario) WHERE scenario = 'uneven_probs'),
          'uneven probabilities, even selections: every statistic equals the SQL formulas');
SELECT is((SELECT ARRAY[(r).probability_status, (r).selection_status, (r).status] FROM by_function
            WHERE scenario = 'uneven_selections'), ARRAY['balanced', 'imbalanced', 'imbalanced'],
          'even probabilities with expert 0 in every top 2: the selection view makes the router imbalanced');
SELECT is((SELECT ARRAY[(r).probability_status, (r).selection_status, (r).status] FROM by_function
            WHERE scenario = 'uneven_probs'), ARRAY['imbalanced', 'balanced', 'imbalanced'],
          'the reverse: even selections under a 0.55 share are imbalanced by the probability view');
SELECT is((SELECT (r).leads FROM by_function WHERE scenario = 'uneven_selections'), '{2,1,0,1}'::bigint[],
          'leads count each row''s first selection');
-- the switch-loss run of issue 20: mean probabilities 0.221 0.214 0.342 0.223,
-- selections 0.168 0.157 0.500 0.175 of 2 x 20000 rows, expert 2 leading every row
SELECT is((SELECT ARRAY[probability_status, selection_status, status, lead_status]
             FROM moe_router_stats('{0.221,0.214,0.342,0.223}', '{6720,6280,20000,7000}', 0.9, '{0,0,20000,0}')),
          ARRAY['balanced', 'imbalanced', 'imbalanced', 'collapsed'],
          'the switch-loss router that the probability view called balanced is imbalanced; its leads collapsed');
SELECT is((moe_router_stats('{0.221,0.214,0.342,0.223}', '{8000,7000,25000,0}')).status, 'dead_expert',
          'and with an expert no row selects, dead_expert');
SELECT is((SELECT (r).lead_fraction FROM by_function WHERE scenario = 'collapsed'), '{1,0,0,0}'::float8[],
          'lead fractions');
SELECT is((moe_router_stats('{0.5,0.5}', '{3,1}')).leads, NULL, 'without leads their columns are NULL');
SELECT ok((SELECT (r).cv < 1e-12 AND (r).gini < 1e-12 AND abs((r).normalized_entropy - 1) < 1e-12
                  AND abs((r).max_min_ratio - 1) < 1e-12
             FROM by_function WHERE scenario = 'balanced'), 'balanced: cv 0, Gini 0, normalised entropy 1, max/min 1');
SELECT is((SELECT (r).dead_experts FROM by_function WHERE scenario = 'dead'), 1, 'one dead expert');
SELECT is((SELECT (r).n FROM by_function LIMIT 1), NULL, 'moe_router_stats leaves n NULL');
SELECT is((SELECT (r).row_entropy FROM by_function LIMIT 1), NULL, 'and row_entropy NULL when none is given');

-- ---- 2. the aggregate equals moe_router_stats of the independent means and counts ----
SELECT ok((SELECT (a.r).n = e.n
                  AND (a.r).selections = (SELECT array_agg(selections ORDER BY expert) FROM per_expert p WHERE p.scenario = a.scenario)
                  AND (a.r).leads = (SELECT array_agg(leads ORDER BY expert) FROM per_expert p WHERE p.scenario = a.scenario)
                  AND pg_temp.close((a.r).mean_prob, (f.r).mean_prob) AND pg_temp.matches(a.r, e)
                  AND pg_temp.close((a.r).row_entropy, e.row_entropy) AND (a.r).selection_fraction = (f.r).selection_fraction
             FROM by_aggregate a JOIN by_function f USING (scenario) JOIN expected e USING (scenario) WHERE scenario = s.name),
          format('moe_usage over the %s rows equals moe_router_stats of the SQL means and counts', s.name))
  FROM (VALUES ('balanced'), ('collapsed'), ('dead'), ('imbalanced'), ('uneven_probs'), ('uneven_selections')) s(name)
 ORDER BY s.name;
SELECT is((SELECT (r).n FROM by_aggregate WHERE scenario = 'balanced'), 4::bigint, 'a NULL probs row is skipped');
SELECT is((SELECT (r).n FROM by_aggregate WHERE scenario = 'collapsed'), 4::bigint, 'a NULL selected row is skipped');
SELECT is((SELECT (r).selections FROM by_aggregate WHERE scenario = 'collapsed'), '{4,3,1,0}'::bigint[], 'selections counted per expert');
SELECT is((SELECT moe_usage(probs, selected) FROM routing WHERE false), NULL, 'no rows: NULL');
SELECT is((SELECT moe_usage(probs, selected) FROM routing WHERE probs IS NULL), NULL, 'only NULL rows: NULL');
SELECT is((SELECT (moe_usage(probs, '{}')).selections FROM routing WHERE scenario = 'dead'), '{0,0,0,0}'::bigint[],
          'rows may select nothing');

-- ---- 3. single cases ----
SELECT ok((SELECT abs(gini - 0.75) < 1e-15 AND max_min_ratio = 'Infinity' AND normalized_entropy = 0
                  AND max_violation = 3 AND status = 'collapsed' AND dead_experts = 3 AND dominant_expert = 2
             FROM moe_router_stats('{0,0,1,0}', '{0,0,5,0}')),
          'one-hot: Gini (E-1)/E, max/min infinite, entropy 0, collapsed');
SELECT is((moe_router_stats('{0.5,0.5}', '{3,1}', 0.9)).row_entropy, 0.9::float8, 'row_entropy is passed through');
SELECT ok((SELECT pg_temp.close(a.share, b.share) AND pg_temp.close(a.cv, b.cv) AND pg_temp.close(a.gini, b.gini) AND a.status = b.status
             FROM moe_router_stats('{4,3,2,1}', '{1,1,1,1}') a, moe_router_stats('{0.4,0.3,0.2,0.1}', '{1,1,1,1}') b),
          'unnormalised input is normalised');
SELECT is((moe_router_stats('{0.1,0.4,0.1,0.4}', '{1,1,1,1}')).dominant_expert, 1, 'ties go to the lower expert');
SELECT is((moe_router_stats('{0.3249,0.3249,0.1751,0.1751}', '{1,1,1,1}')).status, 'balanced', 'cv 0.2996 is balanced');
SELECT is((moe_router_stats('{0.3251,0.3251,0.1749,0.1749}', '{1,1,1,1}')).status, 'imbalanced', 'cv 0.3004 is imbalanced');
SELECT is((moe_router_stats('{2,1.5,1.5}', '{1,1,1}')).status, 'balanced', 'a share of exactly 0.40 is not above 0.40');
SELECT is((moe_router_stats('{3.1,3.1,3.1,3.1,3.1,3.1,3.1,1}', '{1,1,1,1,1,1,1,1}')).status, 'imbalanced',
          'max/min 3.1 is imbalanced (cv 0.245)');
SELECT is((moe_router_stats('{97,1,1,1}', '{1,1,1,1}')).status, 'collapsed', 'a share of 0.97 is collapse');
SELECT is((moe_router_stats('{0.5,0.5}', '{1,1}')).status, 'balanced', 'two even experts are balanced (dominance line 1.6/E)');
SELECT ok((SELECT status = 'balanced' AND normalized_entropy = 1 AND cv = 0 FROM moe_router_stats('{0.3}', '{2}')),
          'one expert: balanced, normalised entropy 1');

-- ---- 4. errors ----
SELECT throws_ok($$SELECT moe_router_stats('{0.5,0.5}', '{1}')$$, '22023',
                 'mean_prob has 2 elements and selections 1; they must have one per expert', 'lengths must match');
SELECT throws_ok($$SELECT moe_router_stats('{}', '{}')$$, '22023', NULL, 'empty arrays');
SELECT throws_ok($$SELECT moe_router_stats(array_fill(1.0::float8, ARRAY[65]), array_fill(1::bigint, ARRAY[65]))$$,
                 '22023', 'at most 64 experts, not 65', 'more than 64 experts');
SELECT throws_ok($$SELECT moe_router_stats('{0.5,NULL}', '{1,1}')$$, '22004', NULL, 'NULL in mean_prob');
SELECT throws_ok($$SELECT moe_router_stats('{0.5,0.5}', '{1,NULL}')$$, '22004', NULL, 'NULL in selections');
SELECT throws_ok($$SELECT moe_router_stats(NULL, '{1,1}')$$, '22004', NULL, 'NULL mean_prob');
SELECT throws_ok($$SELECT moe_router_stats('{0.5,-0.5}', '{1,1}')$$, '22023', NULL, 'negative probability');
SELECT throws_ok($$SELECT moe_router_stats('{0.5,NaN}', '{1,1}')$$, '22023', NULL, 'NaN probability');
SELECT throws_ok($$SELECT moe_router_stats('{0.5,Infinity}', '{1,1}')$$, '22023', NULL, 'infinite probability');
SELECT throws_ok($$SELECT moe_router_stats('{0.5,0.5}', '{1,-1}')$$, '22023', NULL, 'negative selections');
SELECT throws_ok($$SELECT moe_router_stats('{0,0}', '{1,1}')$$, '22023', 'mean_prob must not be all zero', 'all-zero probabilities');
SELECT throws_ok($$SELECT moe_router_stats('{0.5,0.5}', '{1,1}', leads => '{1}')$$, '22023',
                 'mean_prob has 2 elements and leads 1; they must have one per expert', 'leads of another length');
SELECT throws_ok($$SELECT moe_router_stats('{0.5,0.5}', '{1,1}', leads => '{2,0}')$$, '22023',
                 'leads element 1 is 2; it must be between 0 and the expert''s selections (1)', 'more leads than selections');
SELECT throws_ok($$SELECT moe_router_stats('{0.5,0.5}', '{1,1}', leads => '{0,0}')$$, '22023',
                 'leads must not be all zero', 'no leads at all');
SELECT throws_ok($$SELECT moe_usage(probs, selected) FROM (VALUES ('{0.5,0.5}'::real[], '{0}'::int[]), ('{0.2,0.3,0.5}', '{0}')) v(probs, selected)$$,
                 '22000', 'probs has 3 elements in this row and 2 in earlier ones', 'rows must agree on the number of experts');
SELECT throws_ok($$SELECT moe_usage('{0.5,0.5}', '{2}')$$, '22023', 'selected expert 2 is outside 0..1', 'selected index too large');
SELECT throws_ok($$SELECT moe_usage('{0.5,0.5}', '{-1}')$$, '22023', NULL, 'negative selected index');
SELECT throws_ok($$SELECT moe_usage('{0.5,0.5}', '{1,1}')$$, '22023', 'selected lists expert 1 twice', 'an expert selected twice in a row');
SELECT throws_ok($$SELECT moe_usage('{0.5,NULL}', '{0}')$$, '22004', NULL, 'NULL in probs');
SELECT throws_ok($$SELECT moe_usage('{0.5,0.5}', '{NULL}')$$, '22004', NULL, 'NULL in selected');
SELECT throws_ok($$SELECT moe_usage('{0.5,-0.5}', '{0}')$$, '22023', NULL, 'negative probability in a row');
SELECT throws_ok($$SELECT moe_usage('{0.5,NaN}', '{0}')$$, '22023', NULL, 'NaN in a row');
SELECT throws_ok($$SELECT moe_usage('{}', '{}')$$, '22023', NULL, 'an empty row');
SELECT throws_ok($$SELECT moe_usage('{0,0}', '{0}')$$, '22023', 'probs must not be all zero', 'an all-zero row');
SELECT throws_ok($$SELECT moe_usage(array_fill(0.1::real, ARRAY[65]), '{0}')$$, '22023', NULL, 'more than 64 experts in a row');

-- ---- 5. markings ----
SELECT is((SELECT array_agg(p.oid::regprocedure::text || ':' || p.proparallel::text || p.provolatile::text
                            ORDER BY p.oid::regprocedure::text COLLATE "C")
             FROM pg_proc p WHERE p.proname IN ('moe_router_stats', 'moe_usage', 'moe_usage_transfn', 'moe_usage_combinefn',
                                                'moe_usage_serialfn', 'moe_usage_deserialfn', 'moe_usage_finalfn')),
          ARRAY['moe_router_stats(double precision[],bigint[],double precision,bigint[]):si', 'moe_usage(real[],integer[]):si',
                'moe_usage_combinefn(internal,internal):si', 'moe_usage_deserialfn(bytea,internal):si',
                'moe_usage_finalfn(internal):si', 'moe_usage_serialfn(internal):si', 'moe_usage_transfn(internal,real[],integer[]):si'],
          'every function is PARALLEL SAFE and IMMUTABLE');
SELECT ok((SELECT a.aggcombinefn = 'moe_usage_combinefn'::regproc AND a.aggserialfn = 'moe_usage_serialfn'::regproc
                  AND a.aggdeserialfn = 'moe_usage_deserialfn'::regproc AND a.aggtranstype = 'internal'::regtype
                  AND NOT (SELECT proisstrict FROM pg_proc WHERE oid = a.aggtransfn)
                  AND NOT (SELECT proisstrict FROM pg_proc WHERE oid = a.aggcombinefn)
                  AND (SELECT proisstrict FROM pg_proc WHERE oid = a.aggdeserialfn)
             FROM pg_aggregate a WHERE a.aggfnoid = 'moe_usage'::regproc),
          'moe_usage has combine, serialise and deserialise functions, internal state, strictness as PostgreSQL requires');

-- ---- 6. parallel query splits the aggregate and gets the same answer ----
-- A few thousand rows in a plain table (workers cannot read temp tables).
CREATE TABLE moe_tap_usage_parallel AS
SELECT g AS id, g % 3 AS grp,
       CASE WHEN g % 997 = 0 THEN NULL ELSE
       ARRAY[r[1] / (r[1] + r[2] + r[3] + r[4]), r[2] / (r[1] + r[2] + r[3] + r[4]),
             r[3] / (r[1] + r[2] + r[3] + r[4]), r[4] / (r[1] + r[2] + r[3] + r[4])]::real[] END AS probs,
       ARRAY[g % 4, (g + 1 + g % 3) % 4] AS selected
  FROM generate_series(1, 6000) g,
       LATERAL (SELECT ARRAY[(g % 7 + 1)::float8, (g % 5 + 1)::float8, (g % 3 + 1)::float8, 2::float8] AS r) x;
ANALYZE moe_tap_usage_parallel;

CREATE FUNCTION pg_temp.plan_of(q text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE line text; plan text := '';
BEGIN
    FOR line IN EXECUTE 'EXPLAIN (COSTS OFF) ' || q LOOP plan := plan || line || E'\n'; END LOOP;
    RETURN plan;
END $$;

SET LOCAL max_parallel_workers_per_gather = 0;
SELECT ok(pg_temp.plan_of('SELECT moe_usage(probs, selected) FROM moe_tap_usage_parallel') !~ 'Gather',
          'serial plan without workers');
CREATE TEMP TABLE serial_total AS SELECT (moe_usage(probs, selected)).* FROM moe_tap_usage_parallel;
CREATE TEMP TABLE serial_grouped AS
SELECT grp, (moe_usage(probs, selected)).* FROM moe_tap_usage_parallel GROUP BY grp;

SET LOCAL parallel_setup_cost = 0;
SET LOCAL parallel_tuple_cost = 0;
SET LOCAL min_parallel_table_scan_size = 0;
SET LOCAL max_parallel_workers_per_gather = 2;
SET LOCAL parallel_leader_participation = off;   -- the workers' states cross as bytea
SELECT ok(pg_temp.plan_of('SELECT moe_usage(probs, selected) FROM moe_tap_usage_parallel')
              ~ 'Finalize Aggregate.*Gather.*Partial Aggregate',
          'the planner splits moe_usage: Finalize Aggregate over Gather over Partial Aggregate');
SELECT ok((SELECT s.n = p.n AND s.selections = p.selections AND s.leads = p.leads AND pg_temp.close(s.mean_prob, p.mean_prob)
                  AND pg_temp.close(s.cv, p.cv) AND pg_temp.close(s.gini, p.gini)
                  AND pg_temp.close(s.row_entropy, p.row_entropy) AND s.status = p.status
             FROM serial_total s, (SELECT (moe_usage(probs, selected)).* FROM moe_tap_usage_parallel) p),
          'the parallel answer equals the serial one');
SELECT ok(pg_temp.plan_of('SELECT grp, moe_usage(probs, selected) FROM moe_tap_usage_parallel GROUP BY grp') ~ 'Partial',
          'grouped, too, the aggregate is split');
SELECT ok((SELECT bool_and(s.n = p.n AND s.selections = p.selections AND pg_temp.close(s.cv, p.cv)
                           AND pg_temp.close(s.row_entropy, p.row_entropy)) AND count(*) = 3
             FROM serial_grouped s JOIN (SELECT grp, (moe_usage(probs, selected)).* FROM moe_tap_usage_parallel GROUP BY grp) p USING (grp)),
          'and every group''s parallel answer equals its serial one');
SELECT is((SELECT n FROM serial_total), (SELECT count(*) FROM moe_tap_usage_parallel WHERE probs IS NOT NULL),
          'NULL rows are skipped in parallel too');
SELECT is((SELECT selections FROM serial_total),
          (SELECT array_agg(c ORDER BY e) FROM (SELECT e, count(*) FILTER (WHERE e = ANY (selected)) AS c
                                                  FROM moe_tap_usage_parallel, generate_series(0, 3) e
                                                 WHERE probs IS NOT NULL GROUP BY e) x),
          'selections over thousands of rows equal the SQL count');

SELECT * FROM finish();
ROLLBACK;
