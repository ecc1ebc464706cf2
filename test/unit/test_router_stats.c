/*
 * test_router_stats.c — router statistics and health status on hand-made
 * cases, and the accumulator behind the moe_usage aggregate (rows, merge,
 * serialisation and its checks).
 */
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "router_stats.h"
#include "unit.h"

static void
test_balanced(void)
{
	double		p[4] = {0.25, 0.25, 0.25, 0.25};
	int64_t		sel[4] = {50, 50, 50, 50};
	moe_router_stats s;

	moe_router_stats_compute(p, sel, NULL, 4, 0.9, &s);
	CHECK_INT(s.n_experts, 4);
	CHECK_NEAR(s.cv, 0, 1e-12);
	CHECK_NEAR(s.gini, 0, 1e-12);
	CHECK_NEAR(s.normalized_entropy, 1, 1e-12);
	CHECK_NEAR(s.balance_entropy, log(4.0), 1e-12);
	CHECK_NEAR(s.max_min_ratio, 1, 1e-12);
	CHECK_NEAR(s.max_violation, 0, 1e-12);
	for (int i = 0; i < 4; i++)
	{
		CHECK_NEAR(s.share[i], 0.25, 1e-15);
		CHECK_NEAR(s.selection_fraction[i], 0.25, 1e-15);
	}
	CHECK_NEAR(s.row_entropy, 0.9, 0);
	CHECK_INT(s.dead_experts, 0);
	CHECK_INT(s.dominant_expert, 0);	/* all tied: the lowest index */
	CHECK_INT(s.status, MOE_ROUTER_BALANCED);
	CHECK(strcmp(moe_router_status_name(s.status), "balanced") == 0);
}

static void
test_collapsed(void)
{
	/* one-hot on expert 2 of 4 */
	double		p[4] = {0, 0, 1, 0};
	int64_t		sel[4] = {0, 0, 100, 0};
	moe_router_stats s;

	moe_router_stats_compute(p, sel, NULL, 4, 0.0, &s);
	CHECK_NEAR(s.gini, 0.75, 1e-12);	/* (E-1)/E */
	CHECK_NEAR(s.balance_entropy, 0, 0);
	CHECK_NEAR(s.normalized_entropy, 0, 0);
	CHECK(isinf(s.max_min_ratio) && s.max_min_ratio > 0);
	CHECK_NEAR(s.max_violation, 3, 1e-12);	/* E - 1 */
	CHECK_NEAR(s.cv, sqrt(3.0), 1e-12); /* std of (0,0,1,0) is sqrt(3)/4, mean 1/4 */
	CHECK_NEAR(s.selection_fraction[2], 1, 0);
	CHECK_INT(s.dead_experts, 3);
	CHECK_INT(s.dominant_expert, 2);
	/* collapse is checked before dead experts */
	CHECK_INT(s.status, MOE_ROUTER_COLLAPSED);
	CHECK(strcmp(moe_router_status_name(s.status), "collapsed") == 0);
}

static void
test_uneven_by_hand(void)
{
	/*
	 * Input 4, 3, 2, 1 (not normalised on purpose): shares 0.4, 0.3, 0.2,
	 * 0.1, mean 0.25.
	 *
	 * cv: deviations .15 .05 -.05 -.15, variance (0.0225 + 0.0025) * 2 / 4 =
	 * 0.0125, std 0.1118033989, cv = 0.1118033989 / 0.25 = 0.4472135955.
	 *
	 * gini: sum of |s_i - s_j| over ordered pairs = 2 * (0.1 + 0.2 + 0.3 +
	 * 0.1 + 0.2 + 0.1) = 2.0; gini = 2.0 / (2 * 16 * 0.25) = 0.25.
	 *
	 * entropy: 0.4 ln(1/0.4) + 0.3 ln(1/0.3) + 0.2 ln(1/0.2) + 0.1 ln(1/0.1)
	 * = 0.3665162927 + 0.3611918413 + 0.3218875825 + 0.2302585093 =
	 * 1.2798542258; / ln 4 (1.3862943611) = 0.9232196723.
	 *
	 * max/min = 0.4 / 0.1 = 4; max violation = (0.4 - 0.25) / 0.25 = 0.6.
	 * Selections 40, 30, 20, 10: fractions 0.4 .. 0.1, nobody dead.
	 * Status: not collapsed (0.4 < 0.97), no dead expert, cv 0.447 > 0.30:
	 * imbalanced (max/min 4 > 3 says so too).
	 */
	double		p[4] = {4, 3, 2, 1};
	int64_t		sel[4] = {40, 30, 20, 10};
	moe_router_stats s;

	moe_router_stats_compute(p, sel, NULL, 4, 0.5, &s);
	CHECK_NEAR(s.share[0], 0.4, 1e-15);
	CHECK_NEAR(s.share[1], 0.3, 1e-15);
	CHECK_NEAR(s.share[2], 0.2, 1e-15);
	CHECK_NEAR(s.share[3], 0.1, 1e-15);
	CHECK_NEAR(s.selection_fraction[1], 0.3, 1e-15);
	CHECK_NEAR(s.cv, 0.4472135955, 1e-10);
	CHECK_NEAR(s.gini, 0.25, 1e-12);
	CHECK_NEAR(s.balance_entropy, 1.2798542258, 1e-10);
	CHECK_NEAR(s.normalized_entropy, 0.9232196723, 1e-10);
	CHECK_NEAR(s.max_min_ratio, 4, 1e-12);
	CHECK_NEAR(s.max_violation, 0.6, 1e-12);
	CHECK_INT(s.dead_experts, 0);
	CHECK_INT(s.dominant_expert, 0);
	CHECK_NEAR(s.row_entropy, 0.5, 0);
	CHECK_INT(s.status, MOE_ROUTER_IMBALANCED);
	CHECK(strcmp(moe_router_status_name(s.status), "imbalanced") == 0);
}

static void
test_dead_expert(void)
{
	/* shares nearly equal, but expert 2 was never selected */
	double		p[3] = {0.34, 0.33, 0.33};
	int64_t		sel[3] = {60, 40, 0};
	moe_router_stats s;

	moe_router_stats_compute(p, sel, NULL, 3, 0.5, &s);
	CHECK_INT(s.dead_experts, 1);
	CHECK(s.cv < 0.30);
	CHECK_NEAR(s.selection_fraction[2], 0, 0);
	CHECK_INT(s.status, MOE_ROUTER_DEAD_EXPERT);
	CHECK(strcmp(moe_router_status_name(s.status), "dead_expert") == 0);

	/* a dead expert is reported before imbalance */
	{
		double		q[4] = {4, 3, 2, 1};
		int64_t		sel4[4] = {5, 5, 5, 0};

		moe_router_stats_compute(q, sel4, NULL, 4, 0, &s);
		CHECK_INT(s.status, MOE_ROUTER_DEAD_EXPERT);
	}
	/* no selections at all: fractions 0, everyone dead */
	{
		int64_t		none[3] = {0, 0, 0};

		moe_router_stats_compute(p, none, NULL, 3, 0, &s);
		CHECK_NEAR(s.selection_fraction[0], 0, 0);
		CHECK_INT(s.dead_experts, 3);
		CHECK_INT(s.status, MOE_ROUTER_DEAD_EXPERT);
	}
}

static void
test_thresholds(void)
{
	moe_router_stats s;
	int64_t		sel[8] = {1, 1, 1, 1, 1, 1, 1, 1};

	/*
	 * cv alone: shares (.25 + d, .25 + d, .25 - d, .25 - d) have std d and
	 * cv 4d; max/min (.25 + d) / (.25 - d) = 1.86 and the largest share
	 * 0.325 stay inside their lines.
	 */
	{
		double		below[4] = {0.3249, 0.3249, 0.1751, 0.1751},	/* cv 0.2996 */
					above[4] = {0.3251, 0.3251, 0.1749, 0.1749};	/* cv 0.3004 */

		moe_router_stats_compute(below, sel, NULL, 4, 0, &s);
		CHECK_NEAR(s.cv, 0.2996, 1e-12);
		CHECK(s.max_min_ratio < 3);
		CHECK_INT(s.status, MOE_ROUTER_BALANCED);
		moe_router_stats_compute(above, sel, NULL, 4, 0, &s);
		CHECK_NEAR(s.cv, 0.3004, 1e-12);
		CHECK_INT(s.status, MOE_ROUTER_IMBALANCED);
	}

	/*
	 * max/min alone: eight experts, seven with r times the share of the
	 * eighth.  r = 2.9: cv 0.236; r = 3.1: cv 0.245, so only max/min > 3
	 * tells them apart.
	 */
	{
		double		p[8];

		for (int i = 0; i < 7; i++)
			p[i] = 2.9;
		p[7] = 1;
		moe_router_stats_compute(p, sel, NULL, 8, 0, &s);
		CHECK_NEAR(s.max_min_ratio, 2.9, 1e-12);
		CHECK(s.cv < 0.30);
		CHECK_INT(s.status, MOE_ROUTER_BALANCED);
		for (int i = 0; i < 7; i++)
			p[i] = 3.1;
		moe_router_stats_compute(p, sel, NULL, 8, 0, &s);
		CHECK_NEAR(s.max_min_ratio, 3.1, 1e-12);
		CHECK(s.cv < 0.30);
		CHECK_INT(s.status, MOE_ROUTER_IMBALANCED);
	}

	/*
	 * A share of exactly 0.40 is not above 0.40: three experts with input
	 * 2, 1.5, 1.5 (sum 5, so the share is the double nearest 0.4, the
	 * constant itself).  cv = 0.0667 * 3 / sqrt(2) = 0.1414, max/min 1.33:
	 * balanced.
	 */
	{
		double		p[3] = {2, 1.5, 1.5};

		moe_router_stats_compute(p, sel, NULL, 3, 0, &s);
		CHECK(s.share[0] == MOE_HEALTH_DOMINANCE_SHARE);
		CHECK_NEAR(s.cv, 0.14142135623730956, 1e-12);
		CHECK_NEAR(s.normalized_entropy, 0.9911594714322187, 1e-12);
		CHECK_INT(s.status, MOE_ROUTER_BALANCED);
	}

	/*
	 * The dominance line: 0.40 for E >= 4, 1.6 / E below (with two experts
	 * every router has a share of at least 0.5).  For E >= 4 a share above
	 * 0.40 already makes cv > 0.30 (cv >= E (s - 1/E) / sqrt(E - 1)).
	 */
	CHECK(moe_dominance_share(4) == 0.40);
	CHECK(moe_dominance_share(8) == 0.40);
	CHECK(moe_dominance_share(64) == 0.40);
	CHECK_NEAR(moe_dominance_share(3), 1.6 / 3, 1e-15);
	CHECK_NEAR(moe_dominance_share(2), 0.80, 1e-15);
	{
		double		two[2] = {0.5, 0.5},
					three[3] = {0.41, 0.295, 0.295};

		moe_router_stats_compute(two, sel, NULL, 2, 0, &s);
		CHECK_INT(s.status, MOE_ROUTER_BALANCED);
		moe_router_stats_compute(three, sel, NULL, 3, 0, &s);
		CHECK_INT(s.status, MOE_ROUTER_BALANCED);
	}

	/* collapse: a share of 0.97 is collapsed (>=), 0.9699 is not */
	{
		double		at[4] = {97, 1, 1, 1},
					under[4] = {96.99, 1.01, 1, 1};

		moe_router_stats_compute(at, sel, NULL, 4, 0, &s);
		CHECK(s.share[0] == MOE_HEALTH_COLLAPSE_SHARE);
		CHECK_INT(s.status, MOE_ROUTER_COLLAPSED);
		moe_router_stats_compute(under, sel, NULL, 4, 0, &s);
		CHECK_INT(s.status, MOE_ROUTER_IMBALANCED);
	}

	/* ties for the largest share go to the lower index */
	{
		double		p[4] = {0.1, 0.4, 0.1, 0.4};

		moe_router_stats_compute(p, sel, NULL, 4, 0, &s);
		CHECK_INT(s.dominant_expert, 1);
	}
}

static void
test_single_expert(void)
{
	double		p[1] = {0.7};
	int64_t		sel[1] = {10};
	moe_router_stats s;

	moe_router_stats_compute(p, sel, NULL, 1, 0, &s);
	CHECK_INT(s.n_experts, 1);
	CHECK_NEAR(s.share[0], 1, 0);
	CHECK_NEAR(s.normalized_entropy, 1, 0);
	CHECK_NEAR(s.balance_entropy, 0, 0);
	CHECK_NEAR(s.cv, 0, 0);
	CHECK_NEAR(s.gini, 0, 0);
	CHECK_NEAR(s.max_min_ratio, 1, 0);
	CHECK_NEAR(s.max_violation, 0, 0);
	CHECK_INT(s.status, MOE_ROUTER_BALANCED);

	/* even with nobody selected: one expert is balanced by convention */
	sel[0] = 0;
	moe_router_stats_compute(p, sel, NULL, 1, 0, &s);
	CHECK_INT(s.dead_experts, 1);
	CHECK_INT(s.status, MOE_ROUTER_BALANCED);

	/* out of range: nothing computed */
	moe_router_stats_compute(p, sel, NULL, 0, 0, &s);
	CHECK_INT(s.n_experts, 0);
}

static void
test_unnormalised_input(void)
{
	/* scaling the input changes nothing; shares sum to one */
	double		p[5] = {0.3, 0.25, 0.2, 0.15, 0.1},
				q[5];
	int64_t		sel[5] = {3, 2, 2, 2, 1};
	moe_router_stats a,
				b;
	double		sum = 0;

	for (int i = 0; i < 5; i++)
		q[i] = p[i] * 37.5;
	moe_router_stats_compute(p, sel, NULL, 5, 0, &a);
	moe_router_stats_compute(q, sel, NULL, 5, 0, &b);
	for (int i = 0; i < 5; i++)
	{
		CHECK_NEAR(a.share[i], b.share[i], 1e-15);
		sum += b.share[i];
	}
	CHECK_NEAR(sum, 1, 1e-15);
	CHECK_NEAR(a.cv, b.cv, 1e-12);
	CHECK_NEAR(a.gini, b.gini, 1e-12);
	CHECK_NEAR(a.balance_entropy, b.balance_entropy, 1e-12);
	CHECK_NEAR(a.max_min_ratio, 3, 1e-12);
	CHECK_INT(a.status, b.status);

	/* input that sums to a little more than one */
	{
		double		r[4] = {0.2501, 0.2501, 0.2501, 0.2501};
		int64_t		s4[4] = {1, 1, 1, 1};

		moe_router_stats_compute(r, s4, NULL, 4, 0, &a);
		CHECK_NEAR(a.share[0], 0.25, 1e-15);
		CHECK_NEAR(a.normalized_entropy, 1, 1e-12);
	}
}

/* ---- the accumulator ---- */

/*
 * Four rows over three experts, all values exact in binary:
 *   (.5 .25 .25) picks {0,1}; (.75 .25 0) {0,1}; (.25 .25 .5) {2,0};
 *   (.5 .5 0) {1,0}.
 * Sums 2, 1.25, .75 -> mean_prob .5, .3125, .1875; selections 4, 3, 1.
 * Row entropies: 1.5 ln 2, .75 ln(4/3) + .25 ln 4, 1.5 ln 2, ln 2; each over
 * ln 3, then averaged.
 */
static const float rows[4][3] = {{0.5f, 0.25f, 0.25f}, {0.75f, 0.25f, 0}, {0.25f, 0.25f, 0.5f},
{0.5f, 0.5f, 0}};
static const int32_t picks[4][2] = {{0, 1}, {0, 1}, {2, 0}, {1, 0}};

static double
expected_row_entropy(void)
{
	return (1.5 * log(2.0) + 0.75 * log(4.0 / 3.0) + 0.25 * log(4.0) + 1.5 * log(2.0) + log(2.0)) /
		log(3.0) / 4;
}

static int
acc_equal(const moe_usage_acc *a, const moe_usage_acc *b)
{
	if (a->E != b->E || a->n != b->n || a->row_entropy != b->row_entropy)
		return 0;
	for (int i = 0; i < MOE_ROUTER_MAX_EXPERTS; i++)
		if (a->prob[i] != b->prob[i] || a->selections[i] != b->selections[i])
			return 0;
	return 1;
}

static void
test_usage_rows(void)
{
	moe_usage_acc acc;
	moe_error	err;
	moe_router_stats s;
	double		mean[MOE_ROUTER_MAX_EXPERTS];

	moe_usage_init(&acc);
	CHECK_INT(moe_usage_finish(&acc, mean, &s), 0);
	for (int t = 0; t < 4; t++)
		CHECK_INT(moe_usage_add(&acc, rows[t], 3, picks[t], 2, &err), MOE_OK);
	CHECK_INT(acc.n, 4);
	CHECK_INT(moe_usage_finish(&acc, mean, &s), 1);
	CHECK_NEAR(mean[0], 0.5, 0);
	CHECK_NEAR(mean[1], 0.3125, 0);
	CHECK_NEAR(mean[2], 0.1875, 0);
	CHECK_INT(acc.selections[0], 4);
	CHECK_INT(acc.selections[1], 3);
	CHECK_INT(acc.selections[2], 1);
	CHECK_INT(acc.leads[0], 2);	/* the first pick of each row heads it */
	CHECK_INT(acc.leads[1], 1);
	CHECK_INT(acc.leads[2], 1);
	CHECK(s.has_leads);
	CHECK_NEAR(s.selection_fraction[0], 0.5, 0);
	CHECK_NEAR(s.row_entropy, expected_row_entropy(), 1e-14);
	{
		/* the same as the statistics of the means and counts */
		moe_router_stats d;

		moe_router_stats_compute(mean, acc.selections, acc.leads, 3, s.row_entropy, &d);
		CHECK(memcmp(&d, &s, sizeof(d)) == 0);
	}
	/* shares .5 .3125 .1875: cv = sqrt(((1/6)^2 + (1/48)^2 + (7/48)^2) / 3) * 3 */
	CHECK_NEAR(s.cv, sqrt((64.0 + 1.0 + 49.0) / (48.0 * 48.0) / 3.0) * 3.0, 1e-12);
	CHECK_INT(s.status, MOE_ROUTER_IMBALANCED);
}

/*
 * The two views of docs/monitoring.md: even probabilities with uneven
 * selections (renormalised top-k picks the same experts although the
 * mass is spread), and the reverse; the status is the worse of the two,
 * and the leads are reported beside them.
 */
static void
test_two_views(void)
{
	moe_router_stats s;

	{
		/* the switch-loss run of issue 20: mean probabilities 0.221 0.214
		 * 0.342 0.223 look balanced; selections 0.168 0.157 0.500 0.175
		 * (expert 2 in every row's top 2) do not */
		double		p[4] = {0.221, 0.214, 0.342, 0.223};
		int64_t		sel[4] = {168, 157, 500, 175};
		int64_t		leads[4] = {0, 0, 500, 0};

		moe_router_stats_compute(p, sel, leads, 4, 0.8, &s);
		CHECK_INT(s.probability_status, MOE_ROUTER_BALANCED);
		CHECK_INT(s.selection_status, MOE_ROUTER_IMBALANCED);
		CHECK_INT(s.status, MOE_ROUTER_IMBALANCED);
		CHECK_NEAR(s.selection_fraction[2], 0.5, 1e-12);
		CHECK(s.selection_cv > MOE_HEALTH_CV);
		CHECK(s.has_leads);
		CHECK_INT(s.lead_status, MOE_ROUTER_COLLAPSED);	/* expert 2 heads every row */
		CHECK_INT(s.leaderless_experts, 3);
		CHECK_NEAR(s.lead_fraction[2], 1.0, 0);
	}
	{
		/* the same probabilities, one expert never selected */
		double		p[4] = {0.221, 0.214, 0.342, 0.223};
		int64_t		sel[4] = {300, 250, 450, 0};

		moe_router_stats_compute(p, sel, NULL, 4, 0.8, &s);
		CHECK_INT(s.status, MOE_ROUTER_DEAD_EXPERT);
		CHECK_INT(s.selection_status, MOE_ROUTER_DEAD_EXPERT);
		CHECK(!s.has_leads);
		CHECK_INT(s.lead_status, MOE_ROUTER_BALANCED);	/* not computed */
	}
	{
		/* the reverse: one expert holds most of the mass, selections even */
		double		p[4] = {0.7, 0.1, 0.1, 0.1};
		int64_t		sel[4] = {250, 250, 250, 250};

		moe_router_stats_compute(p, sel, NULL, 4, 0.5, &s);
		CHECK_INT(s.probability_status, MOE_ROUTER_IMBALANCED);
		CHECK_INT(s.selection_status, MOE_ROUTER_BALANCED);
		CHECK_INT(s.status, MOE_ROUTER_IMBALANCED);
	}
	{
		/* collapse shows in either view: top-1 routing of every row to one expert */
		double		p[4] = {0.4, 0.2, 0.2, 0.2};
		int64_t		sel[4] = {990, 4, 3, 3};

		moe_router_stats_compute(p, sel, NULL, 4, 0.9, &s);
		CHECK_INT(s.probability_status, MOE_ROUTER_IMBALANCED);
		CHECK_INT(s.selection_status, MOE_ROUTER_COLLAPSED);
		CHECK_INT(s.status, MOE_ROUTER_COLLAPSED);
	}
	{
		/* healthy in both */
		double		p[4] = {0.26, 0.24, 0.25, 0.25};
		int64_t		sel[4] = {240, 260, 255, 245};
		int64_t		leads[4] = {120, 130, 127, 123};

		moe_router_stats_compute(p, sel, leads, 4, 0.9, &s);
		CHECK_INT(s.status, MOE_ROUTER_BALANCED);
		CHECK_INT(s.lead_status, MOE_ROUTER_BALANCED);
	}
	CHECK_INT(moe_router_status_worse(MOE_ROUTER_IMBALANCED, MOE_ROUTER_DEAD_EXPERT), MOE_ROUTER_DEAD_EXPERT);
	CHECK_INT(moe_router_status_worse(MOE_ROUTER_COLLAPSED, MOE_ROUTER_BALANCED), MOE_ROUTER_COLLAPSED);
}

static void
test_usage_merge(void)
{
	moe_usage_acc all,
				a,
				b,
				empty;
	moe_error	err;

	moe_usage_init(&all);
	moe_usage_init(&a);
	moe_usage_init(&b);
	moe_usage_init(&empty);
	for (int t = 0; t < 4; t++)
	{
		moe_usage_add(&all, rows[t], 3, picks[t], 2, &err);
		moe_usage_add(t < 1 ? &a : &b, rows[t], 3, picks[t], 2, &err);
	}
	CHECK_INT(moe_usage_merge(&a, &b, &err), MOE_OK);
	CHECK_INT(moe_usage_merge(&a, &empty, &err), MOE_OK);
	CHECK_INT(a.n, 4);
	for (int i = 0; i < 3; i++)
	{
		CHECK_NEAR(a.prob[i], all.prob[i], 0);	/* exact binary values */
		CHECK_INT(a.selections[i], all.selections[i]);
	}
	CHECK_NEAR(a.row_entropy, all.row_entropy, 1e-14);
	/* into an empty one */
	CHECK_INT(moe_usage_merge(&empty, &all, &err), MOE_OK);
	CHECK(acc_equal(&empty, &all));
	/* other E */
	{
		moe_usage_acc four;
		float		p4[4] = {0.25f, 0.25f, 0.25f, 0.25f};

		moe_usage_init(&four);
		moe_usage_add(&four, p4, 4, NULL, 0, &err);
		CHECK_INT(moe_usage_merge(&a, &four, &err), MOE_ERR_DATA);
		CHECK_INT(a.n, 4);
	}
}

static void
test_usage_bad_rows(void)
{
	moe_usage_acc acc,
				before;
	moe_error	err;
	const float ok[3] = {0.5f, 0.3f, 0.2f};
	const int32_t one[1] = {0};

	moe_usage_init(&acc);
	CHECK_INT(moe_usage_add(&acc, ok, 3, one, 1, &err), MOE_OK);
	before = acc;
	{
		const float p2[2] = {0.5f, 0.5f};

		CHECK_INT(moe_usage_add(&acc, p2, 2, one, 1, &err), MOE_ERR_DATA);
		CHECK(strstr(err.message, "2 elements in this row and 3") != NULL);
	}
	{
		const int32_t out[1] = {3},
					neg[1] = {-1},
					twice[2] = {1, 1};

		CHECK_INT(moe_usage_add(&acc, ok, 3, out, 1, &err), MOE_ERR_INVALID);
		CHECK(strcmp(err.message, "selected expert 3 is outside 0..2") == 0);
		CHECK_INT(moe_usage_add(&acc, ok, 3, neg, 1, &err), MOE_ERR_INVALID);
		CHECK_INT(moe_usage_add(&acc, ok, 3, twice, 2, &err), MOE_ERR_INVALID);
	}
	{
		const float negp[3] = {0.5f, -0.1f, 0.6f},
					nanp[3] = {0.5f, NAN, 0.5f},
					infp[3] = {INFINITY, 0, 0},
					zero[3] = {0, 0, 0};

		CHECK_INT(moe_usage_add(&acc, negp, 3, one, 1, &err), MOE_ERR_INVALID);
		CHECK_INT(moe_usage_add(&acc, nanp, 3, one, 1, &err), MOE_ERR_INVALID);
		CHECK_INT(moe_usage_add(&acc, infp, 3, one, 1, &err), MOE_ERR_INVALID);
		CHECK_INT(moe_usage_add(&acc, zero, 3, one, 1, &err), MOE_ERR_INVALID);
	}
	{
		float		big[MOE_ROUTER_MAX_EXPERTS + 1];

		for (int i = 0; i <= MOE_ROUTER_MAX_EXPERTS; i++)
			big[i] = 1;
		CHECK_INT(moe_usage_add(&acc, big, MOE_ROUTER_MAX_EXPERTS + 1, one, 1, &err), MOE_ERR_INVALID);
		CHECK_INT(moe_usage_add(&acc, big, 0, one, 1, &err), MOE_ERR_INVALID);
	}
	/* every failure left the state as it was */
	CHECK(acc_equal(&acc, &before));

	/* a single expert: row entropy 0 */
	{
		moe_usage_acc single;
		const float p1[1] = {1};
		moe_router_stats s;
		double		mean[1];

		moe_usage_init(&single);
		CHECK_INT(moe_usage_add(&single, p1, 1, one, 1, &err), MOE_OK);
		CHECK_INT(moe_usage_finish(&single, mean, &s), 1);
		CHECK_NEAR(s.row_entropy, 0, 0);
		CHECK_INT(s.status, MOE_ROUTER_BALANCED);
	}
	/* 64 experts is allowed */
	{
		moe_usage_acc wide;
		float		p[MOE_ROUTER_MAX_EXPERTS];
		int32_t		all[MOE_ROUTER_MAX_EXPERTS];

		for (int i = 0; i < MOE_ROUTER_MAX_EXPERTS; i++)
			p[i] = 1.0f / MOE_ROUTER_MAX_EXPERTS, all[i] = MOE_ROUTER_MAX_EXPERTS - 1 - i;
		moe_usage_init(&wide);
		CHECK_INT(moe_usage_add(&wide, p, MOE_ROUTER_MAX_EXPERTS, all, MOE_ROUTER_MAX_EXPERTS, &err), MOE_OK);
		CHECK_INT(wide.selections[63], 1);
		CHECK_NEAR(wide.row_entropy, 1, 1e-12);
	}
}

static void
test_usage_serialisation(void)
{
	moe_usage_acc acc,
				back;
	moe_error	err;
	uint8_t		buf[MOE_USAGE_STATE_HEADER + MOE_ROUTER_MAX_EXPERTS * MOE_USAGE_STATE_PER_EXPERT + 1];
	size_t		len;

	moe_usage_init(&acc);
	for (int t = 0; t < 4; t++)
		moe_usage_add(&acc, rows[t], 3, picks[t], 2, &err);
	len = moe_usage_serial_size(&acc);
	CHECK_INT(len, 21 + 3 * 24);
	moe_usage_serialize(&acc, buf);
	CHECK_INT(buf[0], MOE_USAGE_STATE_VERSION);
	CHECK_INT(buf[1], 3);		/* little-endian E */
	CHECK_INT(buf[5], 4);		/* little-endian n */
	CHECK_INT(moe_usage_deserialize(buf, len, &back, &err), MOE_OK);
	CHECK(acc_equal(&acc, &back));

	/* the empty state round-trips too */
	{
		moe_usage_acc empty,
					e2;

		moe_usage_init(&empty);
		CHECK_INT(moe_usage_serial_size(&empty), 21);
		moe_usage_serialize(&empty, buf);
		CHECK_INT(moe_usage_deserialize(buf, 21, &e2, &err), MOE_OK);
		CHECK_INT(e2.E, 0);
		CHECK_INT(e2.n, 0);
		moe_usage_serialize(&acc, buf);
	}

	/* every truncation and one byte too many are errors; back unchanged */
	back.n = 12345;
	for (size_t cut = 0; cut < len; cut++)
		CHECK_INT(moe_usage_deserialize(buf, cut, &back, &err), MOE_ERR_CORRUPT);
	buf[len] = 0;
	CHECK_INT(moe_usage_deserialize(buf, len + 1, &back, &err), MOE_ERR_CORRUPT);
	CHECK_INT(back.n, 12345);

	/* another version (1: before leads were counted) */
	buf[0] = 1;
	CHECK_INT(moe_usage_deserialize(buf, len, &back, &err), MOE_ERR_VERSION);
	buf[0] = MOE_USAGE_STATE_VERSION;

	/* damaged lengths */
	{
		uint8_t		bad[sizeof(buf)];

#define DAMAGED(offset, value) \
		do { \
			memcpy(bad, buf, len); \
			bad[offset] = (value); \
			CHECK_INT(moe_usage_deserialize(bad, len, &back, &err), MOE_ERR_CORRUPT); \
		} while (0)
		DAMAGED(1, 4);			/* E = 4: the length no longer matches */
		DAMAGED(1, 2);			/* E = 2: neither */
		DAMAGED(4, 0x80);		/* E negative */
		DAMAGED(1, 65);			/* E = 65 */
#undef DAMAGED
	}
	/* damaged values: written by serialize, refused by deserialize */
	{
		uint8_t		bad[sizeof(buf)];

#define DAMAGED_FIELD(field, value) \
		do { \
			moe_usage_acc d = acc; \
			d.field = (value); \
			moe_usage_serialize(&d, bad); \
			CHECK_INT(moe_usage_deserialize(bad, len, &back, &err), MOE_ERR_CORRUPT); \
		} while (0)
		DAMAGED_FIELD(n, -1);
		DAMAGED_FIELD(n, 0);	/* experts but no rows */
		DAMAGED_FIELD(row_entropy, NAN);
		DAMAGED_FIELD(row_entropy, -1);
		DAMAGED_FIELD(prob[0], NAN);
		DAMAGED_FIELD(prob[1], -0.5);
		DAMAGED_FIELD(prob[2], INFINITY);
		DAMAGED_FIELD(selections[2], -3);
		DAMAGED_FIELD(leads[1], -1);
		DAMAGED_FIELD(leads[2], 2);	/* more leads than selections */
		DAMAGED_FIELD(leads[0], 4);	/* more leads than rows */
#undef DAMAGED_FIELD
		{
			moe_usage_acc d = acc;

			d.prob[0] = d.prob[1] = d.prob[2] = 0;	/* rows but all probabilities zero */
			moe_usage_serialize(&d, bad);
			CHECK_INT(moe_usage_deserialize(bad, len, &back, &err), MOE_ERR_CORRUPT);
		}
	}
	CHECK_INT(back.n, 12345);
	/* E = 0 with rows */
	{
		uint8_t		z[21];
		moe_usage_acc empty;

		moe_usage_init(&empty);
		moe_usage_serialize(&empty, z);
		z[5] = 1;				/* n = 1, E = 0 */
		CHECK_INT(moe_usage_deserialize(z, 21, &back, &err), MOE_ERR_CORRUPT);
	}
}

int
main(void)
{
	RUN(test_two_views);
	RUN(test_balanced);
	RUN(test_collapsed);
	RUN(test_uneven_by_hand);
	RUN(test_dead_expert);
	RUN(test_thresholds);
	RUN(test_single_expert);
	RUN(test_unnormalised_input);
	RUN(test_usage_rows);
	RUN(test_usage_merge);
	RUN(test_usage_bad_rows);
	RUN(test_usage_serialisation);
	return unit_summary("test_router_stats");
}
