/*
 * router_stats.c — see router_stats.h.
 */
#include "router_stats.h"

#include <math.h>
#include <string.h>

const char *
moe_router_status_name(moe_router_status s)
{
	switch (s)
	{
		case MOE_ROUTER_BALANCED:
			return "balanced";
		case MOE_ROUTER_IMBALANCED:
			return "imbalanced";
		case MOE_ROUTER_DEAD_EXPERT:
			return "dead_expert";
		case MOE_ROUTER_COLLAPSED:
			return "collapsed";
	}
	return "unknown";
}

double
moe_dominance_share(int E)
{
	double		relative = MOE_HEALTH_DOMINANCE_SHARE * 4.0 / E;

	return relative > MOE_HEALTH_DOMINANCE_SHARE ? relative : MOE_HEALTH_DOMINANCE_SHARE;
}

/* First rule that matches: collapse, a dead expert, imbalance. */
static moe_router_status
classify(const moe_router_stats *s, double max_share)
{
	if (s->n_experts < 2)
		return MOE_ROUTER_BALANCED;
	if (max_share >= MOE_HEALTH_COLLAPSE_SHARE)
		return MOE_ROUTER_COLLAPSED;
	if (s->dead_experts > 0)
		return MOE_ROUTER_DEAD_EXPERT;
	if (s->cv > MOE_HEALTH_CV || s->max_min_ratio > MOE_HEALTH_MAX_MIN ||
		max_share > moe_dominance_share(s->n_experts))
		return MOE_ROUTER_IMBALANCED;
	return MOE_ROUTER_BALANCED;
}

void
moe_router_stats_compute(const double *mean_prob, const int64_t *selections, int E,
						 double row_entropy, moe_router_stats *out)
{
	double		total = 0,
				mean,
				var = 0,
				max_share,
				min_share,
				abs_diff = 0;
	int64_t		picks = 0;

	memset(out, 0, sizeof(*out));
	out->n_experts = E;
	out->row_entropy = row_entropy;
	for (int i = 0; i < E; i++)
	{
		total += mean_prob[i];
		picks += selections[i];
	}
	for (int i = 0; i < E; i++)
	{
		out->share[i] = total > 0 ? mean_prob[i] / total : 1.0 / E;
		out->selection_fraction[i] = picks > 0 ? (double) selections[i] / picks : 0.0;
		out->dead_experts += selections[i] == 0;
	}

	mean = 1.0 / E;
	max_share = min_share = out->share[0];
	for (int i = 0; i < E; i++)
	{
		double		s = out->share[i];

		var += (s - mean) * (s - mean);
		if (s > max_share)
		{
			max_share = s;
			out->dominant_expert = i;
		}
		if (s < min_share)
			min_share = s;
		if (s > 0)
			out->balance_entropy -= s * log(s);
		for (int j = 0; j < E; j++)
			abs_diff += fabs(s - out->share[j]);
	}
	var /= E;
	out->cv = sqrt(var) / mean;
	out->max_min_ratio = min_share > 0 ? max_share / min_share : INFINITY;
	out->gini = abs_diff / (2.0 * E * E * mean);
	out->normalized_entropy = E > 1 ? out->balance_entropy / log((double) E) : 1.0;
	out->max_violation = (max_share - mean) / mean;
	out->status = classify(out, max_share);
}
