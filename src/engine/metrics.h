/*
 * metrics.h — regression metrics exactly as the drug-target affinity field
 * computes them (see docs/metrics.md for the definitions and references).
 */
#ifndef MOE_METRICS_H
#define MOE_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "moe_status.h"

typedef struct moe_metrics
{
	int64_t		n;
	double		mse;
	double		rmse;
	double		ci;				/* concordance index, DeepDTA tie rules */
	double		r2;				/* 1 - SSE/SST */
	double		pearson;
	double		spearman;		/* Pearson of average ranks */
	double		rm2;			/* DeepDTA's modified r^2 */
} moe_metrics;

/*
 * All metrics at once.  Undefined values (a correlation of a constant
 * vector, a CI without a pair of distinct labels) are NaN.  Fails with
 * MOE_ERR_DATA when n is 0 or a value is not finite.
 */
moe_status	moe_compute_metrics(const float *label, const float *pred, size_t n,
								moe_metrics *out, moe_error *err);

/*
 * Concordance index in O(n log n): over all pairs with different labels,
 * the fraction ordered the same way by the prediction; tied predictions
 * count one half.  NaN when no such pair exists.  Returns NaN also when the
 * temporary memory cannot be allocated.
 */
double		moe_metric_ci(const float *label, const float *pred, size_t n);

double		moe_metric_pearson(const float *x, const float *y, size_t n);
double		moe_metric_spearman(const float *x, const float *y, size_t n);
double		moe_metric_rm2(const float *label, const float *pred, size_t n);

/* Average ranks (1-based; ties share the mean of their positions). */
moe_status	moe_average_ranks(const float *x, size_t n, double *rank, moe_error *err);

#endif
