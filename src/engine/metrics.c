/*
 * metrics.c — regression metrics of the drug-target affinity literature.
 *
 * Definitions, references and tie rules: docs/metrics.md.  Everything is
 * accumulated in double; the inputs are float.  Nothing here prints, aborts
 * or keeps static state: every function is reentrant.
 *
 * Costs: mse, rmse, r2, pearson and rm2 are O(n) time and O(1) memory;
 * spearman, the average ranks and the concordance index are O(n log n) time
 * and O(n) temporary memory.
 */
#include "metrics.h"

#include <math.h>
#include <stdlib.h>

/* A value with its row, sorted by value and then by row (a total order, so
 * qsort needs no global state and the result does not depend on qsort's
 * stability). */
typedef struct value_row
{
	float		v;
	size_t		row;
} value_row;

static int
cmp_value_row(const void *pa, const void *pb)
{
	const value_row *a = pa;
	const value_row *b = pb;

	if (a->v < b->v)
		return -1;
	if (a->v > b->v)
		return 1;
	return (a->row > b->row) - (a->row < b->row);
}

/* malloc of n elements of size sz, NULL on overflow or failure (also for
 * n == 0, which callers never ask for). */
static void *
alloc_array(size_t n, size_t sz)
{
	if (n == 0 || n > SIZE_MAX / sz)
		return NULL;
	return malloc(n * sz);
}

/* Fill vr with (x[i], i) and sort it.  x must not hold a NaN. */
static void
sort_values(const float *x, size_t n, value_row *vr)
{
	for (size_t i = 0; i < n; i++)
	{
		vr[i].v = x[i];
		vr[i].row = i;
	}
	qsort(vr, n, sizeof(value_row), cmp_value_row);
}

static int
all_finite(const float *x, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!isfinite(x[i]))
			return 0;
	return 1;
}

/* ------------------------------------------------------------------ */
/* Average ranks                                                       */
/* ------------------------------------------------------------------ */

/* Ranks from an already sorted vr: the run of equal values occupying
 * 0-based positions [i, j) gets the mean of the 1-based positions
 * i+1 .. j, that is (i + 1 + j) / 2. */
static void
ranks_from_sorted(const value_row *vr, size_t n, double *rank)
{
	size_t		i = 0;

	while (i < n)
	{
		size_t		j = i + 1;
		double		r;

		while (j < n && vr[j].v == vr[i].v)
			j++;
		r = ((double) i + 1.0 + (double) j) / 2.0;
		for (size_t k = i; k < j; k++)
			rank[vr[k].row] = r;
		i = j;
	}
}

moe_status
moe_average_ranks(const float *x, size_t n, double *rank, moe_error *err)
{
	value_row  *vr;

	if (n == 0)
		return MOE_OK;
	for (size_t i = 0; i < n; i++)
		if (isnan(x[i]))
			return moe_fail(err, MOE_ERR_DATA,
							"value at row %zu is NaN and cannot be ranked", i + 1);
	vr = alloc_array(n, sizeof(value_row));
	if (vr == NULL)
		return moe_fail(err, MOE_ERR_NOMEM,
						"out of memory ranking %zu values", n);
	sort_values(x, n, vr);
	ranks_from_sorted(vr, n, rank);
	free(vr);
	return MOE_OK;
}

/* ------------------------------------------------------------------ */
/* Pearson                                                             */
/* ------------------------------------------------------------------ */

/* Pearson from centred sums, NaN for a constant side, clamped to [-1, 1]
 * against rounding (as numpy.corrcoef does). */
static double
pearson_from_sums(double sxy, double sxx, double syy)
{
	double		r;

	if (!(sxx > 0.0) || !(syy > 0.0))
		return NAN;
	r = sxy / sqrt(sxx * syy);
	if (r > 1.0)
		r = 1.0;
	else if (r < -1.0)
		r = -1.0;
	return r;
}

/* Two passes (means first) for accuracy. */
static double
pearson_double(const double *x, const double *y, size_t n)
{
	double		mx = 0.0,
				my = 0.0,
				sxx = 0.0,
				syy = 0.0,
				sxy = 0.0;

	if (n < 2)
		return NAN;
	for (size_t i = 0; i < n; i++)
	{
		mx += x[i];
		my += y[i];
	}
	mx /= (double) n;
	my /= (double) n;
	for (size_t i = 0; i < n; i++)
	{
		double		dx = x[i] - mx,
					dy = y[i] - my;

		sxx += dx * dx;
		syy += dy * dy;
		sxy += dx * dy;
	}
	return pearson_from_sums(sxy, sxx, syy);
}

double
moe_metric_pearson(const float *x, const float *y, size_t n)
{
	double		mx = 0.0,
				my = 0.0,
				sxx = 0.0,
				syy = 0.0,
				sxy = 0.0;

	if (n < 2 || !all_finite(x, n) || !all_finite(y, n))
		return NAN;
	for (size_t i = 0; i < n; i++)
	{
		mx += x[i];
		my += y[i];
	}
	mx /= (double) n;
	my /= (double) n;
	for (size_t i = 0; i < n; i++)
	{
		double		dx = (double) x[i] - mx,
					dy = (double) y[i] - my;

		sxx += dx * dx;
		syy += dy * dy;
		sxy += dx * dy;
	}
	return pearson_from_sums(sxy, sxx, syy);
}

/* ------------------------------------------------------------------ */
/* Spearman                                                            */
/* ------------------------------------------------------------------ */

/* Inputs already known finite.  *out is NaN when undefined. */
static moe_status
spearman_core(const float *x, const float *y, size_t n, double *out, moe_error *err)
{
	double	   *rx,
			   *ry;
	moe_status	st;

	*out = NAN;
	if (n < 2)
		return MOE_OK;
	rx = alloc_array(n, sizeof(double));
	ry = alloc_array(n, sizeof(double));
	if (rx == NULL || ry == NULL)
	{
		free(rx);
		free(ry);
		return moe_fail(err, MOE_ERR_NOMEM,
						"out of memory computing the Spearman correlation of %zu rows", n);
	}
	st = moe_average_ranks(x, n, rx, err);
	if (st == MOE_OK)
		st = moe_average_ranks(y, n, ry, err);
	if (st == MOE_OK)
		*out = pearson_double(rx, ry, n);
	free(rx);
	free(ry);
	return st;
}

double
moe_metric_spearman(const float *x, const float *y, size_t n)
{
	double		r;

	if (n < 2 || !all_finite(x, n) || !all_finite(y, n))
		return NAN;
	if (spearman_core(x, y, n, &r, NULL) != MOE_OK)
		return NAN;
	return r;
}

/* ------------------------------------------------------------------ */
/* Concordance index                                                   */
/* ------------------------------------------------------------------ */

/*
 * Sort rows by label; replace each prediction by its dense rank 1..m (equal
 * predictions share a rank); walk the groups of equal labels in increasing
 * order.  A Fenwick tree over prediction ranks holds every row whose label is
 * strictly smaller than the current group's.  For each row of the group,
 * the rows in the tree with a smaller prediction are concordant (+1) and
 * those with an equal prediction are ties (+1/2); the rest are discordant.
 * The group is inserted only after all its rows were queried, so pairs of
 * equal labels are never counted.
 *
 * Counted in halves as integers: twice_s = 2 * concordant + ties, exactly.
 * Both counters are uint64_t and stay exact for n up to 2^32.
 *
 * Inputs already known finite.  *out is NaN when there is no pair of
 * distinct labels.
 */
static moe_status
ci_core(const float *label, const float *pred, size_t n, double *out, moe_error *err)
{
	value_row  *vr;
	size_t	   *prank;
	uint64_t   *tree;
	size_t		m,
				i;
	uint64_t	twice_s = 0,
				pairs = 0;

	*out = NAN;
	if (n < 2)
		return MOE_OK;
	vr = alloc_array(n, sizeof(value_row));
	prank = alloc_array(n, sizeof(size_t));
	tree = alloc_array(n + 1, sizeof(uint64_t));
	if (vr == NULL || prank == NULL || tree == NULL)
	{
		free(vr);
		free(prank);
		free(tree);
		return moe_fail(err, MOE_ERR_NOMEM,
						"out of memory computing the concordance index of %zu rows", n);
	}

	/* Dense ranks of the predictions. */
	sort_values(pred, n, vr);
	m = 0;
	for (i = 0; i < n; i++)
	{
		if (i == 0 || vr[i].v != vr[i - 1].v)
			m++;
		prank[vr[i].row] = m;
	}
	for (i = 0; i <= m; i++)
		tree[i] = 0;

	/* Groups of equal labels, smallest first. */
	sort_values(label, n, vr);
	i = 0;
	while (i < n)
	{
		size_t		j = i + 1;

		while (j < n && vr[j].v == vr[i].v)
			j++;

		/* Every row of this group pairs with the i rows below it. */
		pairs += (uint64_t) i * (uint64_t) (j - i);
		for (size_t k = i; k < j; k++)
		{
			size_t		r = prank[vr[k].row];
			uint64_t	below = 0,
						upto = 0;

			for (size_t q = r - 1; q > 0; q -= q & -q)
				below += tree[q];
			for (size_t q = r; q > 0; q -= q & -q)
				upto += tree[q];
			/* 2 * below + (upto - below) */
			twice_s += below + upto;
		}
		for (size_t k = i; k < j; k++)
			for (size_t q = prank[vr[k].row]; q <= m; q += q & -q)
				tree[q]++;
		i = j;
	}

	free(vr);
	free(prank);
	free(tree);
	if (pairs > 0)
		*out = (double) twice_s / (2.0 * (double) pairs);
	return MOE_OK;
}

double
moe_metric_ci(const float *label, const float *pred, size_t n)
{
	double		ci;

	if (n < 2 || !all_finite(label, n) || !all_finite(pred, n))
		return NAN;
	if (ci_core(label, pred, n, &ci, NULL) != MOE_OK)
		return NAN;
	return ci;
}

/* ------------------------------------------------------------------ */
/* r2, rm2 and the rest                                                */
/* ------------------------------------------------------------------ */

/* Everything O(n): two passes over the data.  Inputs known finite, n >= 1. */
typedef struct linear_sums
{
	double		mse;
	double		r2;
	double		pearson;
	double		rm2;
} linear_sums;

static void
linear_metrics(const float *label, const float *pred, size_t n, linear_sums *ls)
{
	double		ym = 0.0,
				pm = 0.0,
				syy = 0.0,		/* sum (y - ym)^2 */
				spp = 0.0,		/* sum (p - pm)^2 */
				syp = 0.0,		/* sum (y - ym)(p - pm) */
				sse = 0.0,		/* sum (y - p)^2 */
				yp = 0.0,		/* sum y p */
				pp = 0.0;		/* sum p p */
	double		r2p,
				r02,
				k;

	for (size_t i = 0; i < n; i++)
	{
		ym += label[i];
		pm += pred[i];
	}
	ym /= (double) n;
	pm /= (double) n;
	for (size_t i = 0; i < n; i++)
	{
		double		y = label[i],
					p = pred[i],
					dy = y - ym,
					dp = p - pm,
					e = y - p;

		syy += dy * dy;
		spp += dp * dp;
		syp += dy * dp;
		sse += e * e;
		yp += y * p;
		pp += p * p;
	}

	ls->mse = sse / (double) n;
	ls->r2 = syy > 0.0 ? 1.0 - sse / syy : NAN;
	ls->pearson = n >= 2 ? pearson_from_sums(syp, syy, spp) : NAN;

	/*
	 * DeepDTA's rm2 (emetrics.py get_rm2): r2p is the squared Pearson written
	 * as a ratio of sums, r02 the r^2 of the regression through the origin
	 * with slope k = sum(y p) / sum(p p), and rm2 = r2p (1 - sqrt(|r2p^2 -
	 * r02^2|)).  NaN where a denominator is 0.
	 */
	if (syy > 0.0 && spp > 0.0 && pp > 0.0)
	{
		double		sres = 0.0;

		r2p = (syp * syp) / (syy * spp);
		k = yp / pp;
		for (size_t i = 0; i < n; i++)
		{
			double		e = (double) label[i] - k * (double) pred[i];

			sres += e * e;
		}
		r02 = 1.0 - sres / syy;
		ls->rm2 = r2p * (1.0 - sqrt(fabs(r2p * r2p - r02 * r02)));
	}
	else
		ls->rm2 = NAN;
}

double
moe_metric_rm2(const float *label, const float *pred, size_t n)
{
	linear_sums ls;

	if (n < 2 || !all_finite(label, n) || !all_finite(pred, n))
		return NAN;
	linear_metrics(label, pred, n, &ls);
	return ls.rm2;
}

moe_status
moe_compute_metrics(const float *label, const float *pred, size_t n,
					moe_metrics *out, moe_error *err)
{
	linear_sums ls;
	double		ci,
				spearman;
	moe_status	st;

	if (n == 0)
		return moe_fail(err, MOE_ERR_DATA, "no rows to evaluate");
	for (size_t i = 0; i < n; i++)
	{
		if (!isfinite(label[i]))
			return moe_fail(err, MOE_ERR_DATA, "label at row %zu is not finite", i + 1);
		if (!isfinite(pred[i]))
			return moe_fail(err, MOE_ERR_DATA, "prediction at row %zu is not finite", i + 1);
	}

	st = ci_core(label, pred, n, &ci, err);
	if (st != MOE_OK)
		return st;
	st = spearman_core(label, pred, n, &spearman, err);
	if (st != MOE_OK)
		return st;
	linear_metrics(label, pred, n, &ls);

	out->n = (int64_t) n;
	out->mse = ls.mse;
	out->rmse = sqrt(ls.mse);
	out->ci = ci;
	out->r2 = ls.r2;
	out->pearson = ls.pearson;
	out->spearman = spearman;
	out->rm2 = ls.rm2;
	return MOE_OK;
}
