/*
 * router_stats.h — how evenly a router spreads work over its experts, and
 * whether it is healthy (docs/monitoring.md has the formulas and why the
 * thresholds are where they are).
 */
#ifndef MOE_ROUTER_STATS_H
#define MOE_ROUTER_STATS_H

#include <stdint.h>

/* The seed's analyses: CV above 20-30 % or max/min above 2-3 is "highly
 * imbalanced", one expert above 0.40 dominates, about 0.97 is collapse. */
#define MOE_HEALTH_COLLAPSE_SHARE	0.97
#define MOE_HEALTH_DOMINANCE_SHARE	0.40
#define MOE_HEALTH_CV				0.30
#define MOE_HEALTH_MAX_MIN			3.0
#define MOE_ROUTER_MAX_EXPERTS		64

typedef enum moe_router_status
{
	MOE_ROUTER_BALANCED = 0,
	MOE_ROUTER_IMBALANCED,
	MOE_ROUTER_DEAD_EXPERT,
	MOE_ROUTER_COLLAPSED
} moe_router_status;

typedef struct moe_router_stats
{
	int			n_experts;
	double		share[MOE_ROUTER_MAX_EXPERTS];	/* mean gate probability, normalised */
	double		selection_fraction[MOE_ROUTER_MAX_EXPERTS];	/* of all top-k selections */
	double		cv;				/* population std / mean of the shares */
	double		max_min_ratio;	/* infinite when an expert has share 0 */
	double		gini;			/* 0 balanced .. (E-1)/E one expert */
	double		balance_entropy;	/* -sum s ln s */
	double		normalized_entropy; /* balance_entropy / ln E */
	double		max_violation;	/* (max share - mean) / mean */
	int			dead_experts;	/* experts never selected */
	int			dominant_expert;	/* largest share, ties to the lower index */
	double		row_entropy;	/* the caller's mean per-row router entropy / ln E */
	moe_router_status status;
} moe_router_stats;

/*
 * The share above which one expert dominates: 0.40 (the seed's threshold,
 * set with 4 experts, 1.6 times the balanced share), or 1.6/E when that is
 * larger, since with 2 or 3 experts a balanced share is already near 0.40.
 */
double		moe_dominance_share(int E);

/* E in 1..MOE_ROUTER_MAX_EXPERTS; mean_prob not all zero. */
void		moe_router_stats_compute(const double *mean_prob, const int64_t *selections, int E,
									 double row_entropy, moe_router_stats *out);
const char *moe_router_status_name(moe_router_status s);

#endif
