/*
 * test_router_stats.c — router statistics on hand-made cases.
 */
#include <math.h>
#include <string.h>

#include "router_stats.h"
#include "unit.h"

static void
test_balanced(void)
{
	double		p[4] = {0.25, 0.25, 0.25, 0.25};
	int64_t		sel[4] = {50, 50, 50, 50};
	moe_router_stats s;

	moe_router_stats_compute(p, sel, 4, 0.9, &s);
	CHECK_NEAR(s.cv, 0, 1e-12);
	CHECK_NEAR(s.gini, 0, 1e-12);
	CHECK_NEAR(s.normalized_entropy, 1, 1e-12);
	CHECK_NEAR(s.balance_entropy, log(4.0), 1e-12);
	CHECK_NEAR(s.max_min_ratio, 1, 1e-12);
	CHECK_NEAR(s.max_violation, 0, 1e-12);
	CHECK_NEAR(s.selection_fraction[2], 0.25, 1e-12);
	CHECK_NEAR(s.row_entropy, 0.9, 0);
	CHECK_INT(s.dead_experts, 0);
	CHECK_INT(s.dominant_expert, 0);
	CHECK_INT(s.status, MOE_ROUTER_BALANCED);
	CHECK(strcmp(moe_router_status_name(s.status), "balanced") == 0);
}

static void
test_collapsed(void)
{
	double		p[4] = {0, 0, 1, 0};
	int64_t		sel[4] = {0, 0, 100, 0};
	moe_router_stats s;

	moe_router_stats_compute(p, sel, 4, 0.0, &s);
	CHECK_NEAR(s.gini, 0.75, 1e-12);
	CHECK_NEAR(s.balance_entropy, 0, 1e-12);
	CHECK(isinf(s.max_min_ratio));
	CHECK_NEAR(s.max_violation, 3, 1e-12);
	CHECK_NEAR(s.cv, sqrt(3.0), 1e-12);	/* std of (0,0,1,0) is sqrt(3)/4, mean 1/4 */
	CHECK_INT(s.dead_experts, 3);
	CHECK_INT(s.dominant_expert, 2);
	CHECK_INT(s.status, MOE_ROUTER_COLLAPSED);
}

static void
test_uneven_by_hand(void)
{
	/*
	 * shares 0.4, 0.3, 0.2, 0.1: mean 0.25, deviations .15 .05 -.05 -.15,
	 * variance (0.0225 + 0.0025) * 2 / 4 = 0.0125, cv = 0.111803 / 0.25 =
	 * 0.447214; sum |s_i - s_j| over ordered pairs = 2 * (0.1+0.2+0.3+0.1+
	 * 0.2+0.1) = 2.0, gini = 2 / (2 * 16 * 0.25) = 0.25; max/min = 4.
	 */
	double		p[4] = {4, 3, 2, 1};	/* not normalised on purpose */
	int64_t		sel[4] = {40, 30, 20, 10};
	moe_router_stats s;

	moe_router_stats_compute(p, sel, 4, 0.5, &s);
	CHECK_NEAR(s.share[0], 0.4, 1e-12);
	CHECK_NEAR(s.cv, sqrt(0.0125) / 0.25, 1e-12);
	CHECK_NEAR(s.gini, 0.25, 1e-12);
	CHECK_NEAR(s.max_min_ratio, 4, 1e-12);
	CHECK_NEAR(s.max_violation, 0.6, 1e-12);
	CHECK_NEAR(s.balance_entropy, -(0.4 * log(0.4) + 0.3 * log(0.3) + 0.2 * log(0.2) + 0.1 * log(0.1)), 1e-12);
	CHECK_INT(s.status, MOE_ROUTER_IMBALANCED);
}

static void
test_dead_expert(void)
{
	double		p[3] = {0.34, 0.33, 0.33};
	int64_t		sel[3] = {60, 40, 0};
	moe_router_stats s;

	moe_router_stats_compute(p, sel, 3, 0.5, &s);
	CHECK_INT(s.dead_experts, 1);
	CHECK_INT(s.status, MOE_ROUTER_DEAD_EXPERT);
}

static void
test_thresholds(void)
{
	moe_router_stats s;
	int64_t		sel[2] = {1, 1};
	/* two experts: cv = |s0 - 0.5| / 0.5, so 0.30 at s0 = 0.65; their
	 * dominance line is 1.6 / 2 = 0.8, not 0.40 */
	double		below[2] = {0.64, 0.36},
				above[2] = {0.66, 0.34};
	/* share of exactly 0.40 with five experts is not above the line */
	double		at[5] = {0.40, 0.15, 0.15, 0.15, 0.15};
	int64_t		sel5[5] = {1, 1, 1, 1, 1};

	moe_router_stats_compute(below, sel, 2, 0, &s);
	CHECK_INT(s.status, MOE_ROUTER_BALANCED);
	moe_router_stats_compute(above, sel, 2, 0, &s);
	CHECK_INT(s.status, MOE_ROUTER_IMBALANCED);
	moe_router_stats_compute(at, sel5, 5, 0, &s);
	CHECK(s.cv > 0.30);			/* imbalanced by its cv, not by dominance */
	at[0] = 0.28, at[1] = at[2] = at[3] = at[4] = 0.18;
	moe_router_stats_compute(at, sel5, 5, 0, &s);
	CHECK_INT(s.status, MOE_ROUTER_BALANCED);
	CHECK_NEAR(moe_dominance_share(4), 0.40, 1e-12);
	CHECK_NEAR(moe_dominance_share(2), 0.80, 1e-12);
	CHECK_NEAR(moe_dominance_share(8), 0.40, 1e-12);
	{
		/* eight experts, one at 0.41: imbalanced */
		double		p8[8] = {0.41, 0.09, 0.09, 0.09, 0.08, 0.08, 0.08, 0.08};
		int64_t		sel8[8] = {1, 1, 1, 1, 1, 1, 1, 1};

		moe_router_stats_compute(p8, sel8, 8, 0, &s);
		CHECK(s.max_min_ratio > 3);
		CHECK_INT(s.status, MOE_ROUTER_IMBALANCED);
	}
}

static void
test_single_expert(void)
{
	double		p[1] = {1};
	int64_t		sel[1] = {10};
	moe_router_stats s;

	moe_router_stats_compute(p, sel, 1, 0, &s);
	CHECK_NEAR(s.normalized_entropy, 1, 0);
	CHECK_NEAR(s.cv, 0, 0);
	CHECK_INT(s.status, MOE_ROUTER_BALANCED);
}

int
main(void)
{
	RUN(test_balanced);
	RUN(test_collapsed);
	RUN(test_uneven_by_hand);
	RUN(test_dead_expert);
	RUN(test_thresholds);
	RUN(test_single_expert);
	return unit_summary("test_router_stats");
}
