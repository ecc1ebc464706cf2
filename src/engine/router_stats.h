/*
 * router_stats.h — how evenly a router spreads work over its experts, and
 * whether it is healthy; and the accumulator behind the SQL aggregate
 * moe_usage (rows of routing in, the same statistics out).  No PostgreSQL
 * headers: the unit tests compile this alone.  docs/monitoring.md has the
 * formulas and why the thresholds are where they are.
 *
 * A router is judged on two views, and its status is the worse of them:
 * the probability mass it gives each expert (mean gate probability), and
 * what it does: the top-k selections per expert (compute load, and what
 * the experts learn from).  Renormalised top-k can select unevenly under
 * even probabilities, and the reverse.  The top-1 leads (which expert
 * heads each row) are a third view, reported beside them.
 */
#ifndef MOE_ROUTER_STATS_H
#define MOE_ROUTER_STATS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "moe_status.h"

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
	/* probability view */
	double		share[MOE_ROUTER_MAX_EXPERTS];	/* mean gate probability, normalised */
	double		cv;				/* population std / mean of the shares */
	double		max_min_ratio;	/* INFINITY when an expert has share 0 */
	double		gini;			/* 0 balanced .. (E-1)/E one expert */
	double		balance_entropy;	/* -sum s ln s */
	double		normalized_entropy; /* balance_entropy / ln E (1 for E = 1) */
	double		max_violation;	/* (max share - mean) / mean */
	int			dominant_expert;	/* largest share, ties to the lower index */
	moe_router_status probability_status;
	/* selection view: top-k selections */
	double		selection_fraction[MOE_ROUTER_MAX_EXPERTS];	/* of all top-k selections */
	double		selection_cv;
	double		selection_max_min_ratio;
	int			dead_experts;	/* experts never selected */
	moe_router_status selection_status;
	/* lead view: each row's top-1 expert (has_leads: they were given) */
	bool		has_leads;
	double		lead_fraction[MOE_ROUTER_MAX_EXPERTS];
	double		lead_cv;
	double		lead_max_min_ratio;
	int			leaderless_experts; /* experts that head no row */
	moe_router_status lead_status;
	double		row_entropy;	/* the caller's mean per-row router entropy / ln E */
	moe_router_status status;	/* the worse of probability_status and selection_status */
} moe_router_stats;

/*
 * The share above which one expert dominates: 0.40 (the seed's threshold,
 * set with 4 experts, 1.6 times the balanced share), or 1.6/E when that is
 * larger, since with 2 experts every router has a share of at least 0.5 and
 * with 3 a balanced one already has 0.33.  For E >= 4 it is 0.40.
 */
double		moe_dominance_share(int E);

/*
 * Statistics of mean_prob[E] (need not sum to 1; not all zero),
 * selections[E] (top-k picks per expert) and leads[E] (rows each expert
 * heads; NULL when unknown).  Each view is classified by the same rules
 * (docs/monitoring.md): collapsed when one expert has 0.97 of it, a dead
 * expert when an expert has none of the selections (leads: none of the
 * rows), imbalanced on CV, max/min or dominance, else balanced.  E in
 * 1..MOE_ROUTER_MAX_EXPERTS; any other E gives n_experts = 0 and nothing
 * else.
 */
void		moe_router_stats_compute(const double *mean_prob, const int64_t *selections,
									 const int64_t *leads, int E, double row_entropy,
									 moe_router_stats *out);

/* The worse of two statuses (balanced < imbalanced < dead_expert < collapsed). */
moe_router_status moe_router_status_worse(moe_router_status a, moe_router_status b);

/* "balanced", "imbalanced", "dead_expert", "collapsed". */
const char *moe_router_status_name(moe_router_status s);

/* ---- accumulating rows of routing (the moe_usage aggregate) ---------- */

#define MOE_USAGE_STATE_VERSION 2
/* Serialised: version byte, E (int32), n (int64), row-entropy sum
 * (float64), then per expert its probability sum (float64), selections
 * (int64) and leads (int64); all little-endian. */
#define MOE_USAGE_STATE_HEADER	21
#define MOE_USAGE_STATE_PER_EXPERT 24

typedef struct moe_usage_acc
{
	int			E;				/* 0 until the first row */
	int64_t		n;				/* rows */
	double		row_entropy;	/* sum over rows of H(p_t) / ln E (0 when E = 1) */
	double		prob[MOE_ROUTER_MAX_EXPERTS];	/* sums of gate probabilities */
	int64_t		selections[MOE_ROUTER_MAX_EXPERTS];
	int64_t		leads[MOE_ROUTER_MAX_EXPERTS];	/* rows whose first selection it is */
} moe_usage_acc;

void		moe_usage_init(moe_usage_acc *acc);

/*
 * One row: its gate probabilities probs[E] (finite, non-negative, not all
 * zero) and the 0-based indices of the experts it selected, best first
 * (selected[0] heads the row), selected[k] (distinct, in 0..E-1; k may be
 * 0).  The first row fixes E; a row with
 * another E is MOE_ERR_DATA, any other bad value MOE_ERR_INVALID.  On error
 * acc is unchanged.
 */
moe_status	moe_usage_add(moe_usage_acc *acc, const float *probs, int E,
						  const int32_t *selected, int k, moe_error *err);

/* acc += other (either may be empty); MOE_ERR_DATA when their E differ. */
moe_status	moe_usage_merge(moe_usage_acc *acc, const moe_usage_acc *other, moe_error *err);

/* Bytes moe_usage_serialize writes: MOE_USAGE_STATE_HEADER + 24 E. */
size_t		moe_usage_serial_size(const moe_usage_acc *acc);
void		moe_usage_serialize(const moe_usage_acc *acc, uint8_t *buf);

/*
 * Reads what moe_usage_serialize wrote, checking every length and value:
 * MOE_ERR_VERSION for another version byte, MOE_ERR_CORRUPT for anything
 * else that is wrong.  Never reads past buf + len.
 */
moe_status	moe_usage_deserialize(const uint8_t *buf, size_t len, moe_usage_acc *acc,
								  moe_error *err);

/*
 * The statistics of what was added: mean_prob[i] = prob[i] / n, row_entropy
 * = mean per-row normalised entropy.  Returns 0 (and writes nothing) when
 * no rows were added, 1 otherwise.
 */
int			moe_usage_finish(const moe_usage_acc *acc, double *mean_prob, moe_router_stats *out);

#endif
