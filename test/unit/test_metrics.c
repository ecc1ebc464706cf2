#include "metrics.h"
#include "rng.h"
#include "unit.h"

#include <stdlib.h>
#include <string.h>

/*
 * Reference values marked "exact" below were computed once with
 * /usr/bin/python3 using fractions.Fraction (and decimal.Decimal at 50 digits
 * for the square roots), by a literal transcription of DeepDTA's
 * emetrics.py (r_squared_error, get_k, squared_error_zero, get_rm2) and of
 * the pairwise CI / average-rank definitions.  All inputs are multiples of
 * 0.25, so they are exact in float.
 */

#define N_ELEMS(a) (sizeof(a) / sizeof((a)[0]))

/* ------------------------------------------------------------------ */
/* Brute-force references                                              */
/* ------------------------------------------------------------------ */

/* O(n^2) CI over all unordered pairs with distinct labels. */
static double
ci_brute(const float *y, const float *p, size_t n)
{
	long long	twice = 0,
				pairs = 0;

	for (size_t i = 0; i < n; i++)
		for (size_t j = 0; j < i; j++)
		{
			size_t		hi,
						lo;

			if (y[i] == y[j])
				continue;
			pairs++;
			hi = y[i] > y[j] ? i : j;
			lo = y[i] > y[j] ? j : i;
			if (p[hi] > p[lo])
				twice += 2;
			else if (p[hi] == p[lo])
				twice += 1;
		}
	return pairs > 0 ? (double) twice / (2.0 * (double) pairs) : NAN;
}

/* O(n^2) average rank: (#smaller) + (#equal including itself + 1) / 2. */
static void
ranks_brute(const float *x, size_t n, double *rank)
{
	for (size_t i = 0; i < n; i++)
	{
		size_t		less = 0,
					eq = 0;

		for (size_t j = 0; j < n; j++)
		{
			if (x[j] < x[i])
				less++;
			else if (x[j] == x[i])
				eq++;
		}
		rank[i] = (double) less + ((double) eq + 1.0) / 2.0;
	}
}

static double
pearson_brute(const double *x, const double *y, size_t n)
{
	double		mx = 0,
				my = 0,
				sxx = 0,
				syy = 0,
				sxy = 0;

	for (size_t i = 0; i < n; i++)
	{
		mx += x[i];
		my += y[i];
	}
	mx /= n;
	my /= n;
	for (size_t i = 0; i < n; i++)
	{
		sxx += (x[i] - mx) * (x[i] - mx);
		syy += (y[i] - my) * (y[i] - my);
		sxy += (x[i] - mx) * (y[i] - my);
	}
	return sxy / sqrt(sxx * syy);
}

/*
 * Random data with many ties on both sides: labels on a 0.5 grid (with a
 * Davis-like share of rows tied at 5.0 when davis is set), predictions =
 * label + noise rounded to 0.1.
 */
static void
tied_data(uint64_t seed, size_t n, int davis, float *y, float *p)
{
	moe_rng		r;

	moe_rng_seed(&r, seed);
	for (size_t i = 0; i < n; i++)
	{
		if (davis && moe_rng_uniform(&r) < 0.7f)
			y[i] = 5.0f;
		else
			y[i] = (float) (round((6.0 + 1.5 * moe_rng_normal(&r)) * 2.0) / 2.0);
		p[i] = (float) (round((y[i] + 0.8 * moe_rng_normal(&r)) * 10.0) / 10.0);
	}
}

/* ------------------------------------------------------------------ */
/* Average ranks                                                       */
/* ------------------------------------------------------------------ */

static void
test_ranks_hand(void)
{
	const float x1[] = {1, 2, 2, 3};
	const float x2[] = {3, 1, 2};
	const float x3[] = {7, 7, 7, 7, 7};
	const float x4[] = {0.0f, -0.0f, -1.0f};	/* -0 and +0 tie */
	double		r[5];
	moe_error	err;

	moe_error_clear(&err);
	CHECK_INT(moe_average_ranks(x1, 4, r, &err), MOE_OK);
	CHECK_NEAR(r[0], 1.0, 0);
	CHECK_NEAR(r[1], 2.5, 0);
	CHECK_NEAR(r[2], 2.5, 0);
	CHECK_NEAR(r[3], 4.0, 0);

	CHECK_INT(moe_average_ranks(x2, 3, r, &err), MOE_OK);
	CHECK_NEAR(r[0], 3.0, 0);
	CHECK_NEAR(r[1], 1.0, 0);
	CHECK_NEAR(r[2], 2.0, 0);

	CHECK_INT(moe_average_ranks(x3, 5, r, &err), MOE_OK);
	for (int i = 0; i < 5; i++)
		CHECK_NEAR(r[i], 3.0, 0);

	CHECK_INT(moe_average_ranks(x4, 3, r, &err), MOE_OK);
	CHECK_NEAR(r[0], 2.5, 0);
	CHECK_NEAR(r[1], 2.5, 0);
	CHECK_NEAR(r[2], 1.0, 0);

	/* n == 0 is fine and writes nothing. */
	CHECK_INT(moe_average_ranks(x1, 0, NULL, &err), MOE_OK);
}

static void
test_ranks_nan_rejected(void)
{
	const float x[] = {1, 2, NAN, 3};
	double		r[4];
	moe_error	err;

	moe_error_clear(&err);
	CHECK_INT(moe_average_ranks(x, 4, r, &err), MOE_ERR_DATA);
	CHECK_INT(err.status, MOE_ERR_DATA);
	CHECK(strstr(err.message, "row 3") != NULL);
}

static void
test_ranks_vs_brute(void)
{
	const size_t n = 1500;
	float	   *y = malloc(n * sizeof(float));
	float	   *p = malloc(n * sizeof(float));
	double	   *r = malloc(n * sizeof(double));
	double	   *rb = malloc(n * sizeof(double));
	moe_error	err;

	for (uint64_t seed = 1; seed <= 3; seed++)
	{
		tied_data(seed, n, seed == 3, y, p);
		CHECK_INT(moe_average_ranks(p, n, r, &err), MOE_OK);
		ranks_brute(p, n, rb);
		int			bad = 0;

		for (size_t i = 0; i < n; i++)
			bad += r[i] != rb[i];
		CHECK_INT(bad, 0);

		CHECK_INT(moe_average_ranks(y, n, r, &err), MOE_OK);
		ranks_brute(y, n, rb);
		bad = 0;
		for (size_t i = 0; i < n; i++)
			bad += r[i] != rb[i];
		CHECK_INT(bad, 0);
	}
	free(y);
	free(p);
	free(r);
	free(rb);
}

/* ------------------------------------------------------------------ */
/* Concordance index                                                   */
/* ------------------------------------------------------------------ */

static void
test_ci_hand(void)
{
	const float y[] = {1, 2, 3, 4, 5};
	const float up[] = {0.1f, 0.2f, 0.3f, 0.4f, 0.5f};
	const float down[] = {0.5f, 0.4f, 0.3f, 0.2f, 0.1f};
	const float flat[] = {3, 3, 3, 3, 3};

	CHECK_NEAR(moe_metric_ci(y, up, 5), 1.0, 0);
	CHECK_NEAR(moe_metric_ci(y, down, 5), 0.0, 0);
	CHECK_NEAR(moe_metric_ci(y, flat, 5), 0.5, 0);
	CHECK(isnan(moe_metric_ci(flat, up, 5)));	/* no pair of distinct labels */
	CHECK(isnan(moe_metric_ci(y, up, 1)));
	CHECK(isnan(moe_metric_ci(y, up, 0)));

	/*
	 * labels {1,2,3,3}, preds {.1,.3,.2,.2}: the 5 pairs with distinct labels
	 * are (1,2) (1,3) (1,3) concordant and (2,3) (2,3) discordant; the pair
	 * (3,3) is excluded.  CI = 3/5.
	 */
	{
		const float l[] = {1, 2, 3, 3};
		const float q[] = {0.1f, 0.3f, 0.2f, 0.2f};

		CHECK_NEAR(moe_metric_ci(l, q, 4), 0.6, 1e-15);
	}
	/* Tied predictions across distinct labels count one half: (1,2) tie,
	 * (1,3) and (2,3) concordant: 2.5 / 3. */
	{
		const float l[] = {1, 2, 3};
		const float q[] = {0.5f, 0.5f, 0.7f};

		CHECK_NEAR(moe_metric_ci(l, q, 3), 2.5 / 3.0, 1e-15);
	}
	/* Row order does not matter (DeepDTA's loop only agrees when sorted). */
	{
		const float l[] = {3, 1, 3, 2};
		const float q[] = {0.2f, 0.1f, 0.2f, 0.3f};

		CHECK_NEAR(moe_metric_ci(l, q, 4), 0.6, 1e-15);
	}
	/* Non-finite input gives NaN. */
	{
		const float l[] = {1, 2, 3};
		const float q[] = {0.5f, INFINITY, 0.7f};

		CHECK(isnan(moe_metric_ci(l, q, 3)));
	}
}

static void
test_ci_vs_brute(void)
{
	const size_t n = 2000;
	float	   *y = malloc(n * sizeof(float));
	float	   *p = malloc(n * sizeof(float));
	float	   *ys = malloc(n * sizeof(float));
	float	   *ps = malloc(n * sizeof(float));
	uint32_t   *perm = malloc(n * sizeof(uint32_t));
	moe_rng		r;

	for (uint64_t seed = 11; seed <= 16; seed++)
	{
		double		fast,
					slow;

		tied_data(seed, n, seed >= 14, y, p);
		fast = moe_metric_ci(y, p, n);
		slow = ci_brute(y, p, n);
		CHECK(fast > 0.5 && fast < 1.0);
		CHECK_NEAR(fast, slow, 1e-12);

		/* Shuffling the rows changes nothing. */
		moe_rng_seed(&r, seed * 101);
		for (size_t i = 0; i < n; i++)
			perm[i] = (uint32_t) i;
		moe_rng_shuffle_u32(&r, perm, n);
		for (size_t i = 0; i < n; i++)
		{
			ys[i] = y[perm[i]];
			ps[i] = p[perm[i]];
		}
		CHECK_NEAR(moe_metric_ci(ys, ps, n), slow, 1e-12);

		/* Predictions taken from a coarser grid: more prediction ties. */
		for (size_t i = 0; i < n; i++)
			ps[i] = (float) round(p[i]);
		CHECK_NEAR(moe_metric_ci(y, ps, n), ci_brute(y, ps, n), 1e-12);
	}

	/* Small sizes, including n = 2 and 3, exhaustively against brute force. */
	for (size_t m = 2; m <= 40; m++)
	{
		tied_data(1000 + m, m, m % 2, y, p);
		double		slow = ci_brute(y, p, m),
					fast = moe_metric_ci(y, p, m);

		if (isnan(slow))
			CHECK(isnan(fast));
		else
			CHECK_NEAR(fast, slow, 1e-12);
	}
	free(y);
	free(p);
	free(ys);
	free(ps);
	free(perm);
}

/* The O(n log n) path on a million rows (Davis-like ties).  Not timed; it
 * only has to finish.  Reversing the predictions must give 1 - CI exactly
 * (ties stay ties), which a miscounted tie or pair would break. */
static void
test_ci_million(void)
{
	const size_t n = 1000000;
	float	   *y = malloc(n * sizeof(float));
	float	   *p = malloc(n * sizeof(float));
	float	   *neg = malloc(n * sizeof(float));
	moe_rng		r;
	double		ci,
				ci_neg;

	moe_rng_seed(&r, 99);
	for (size_t i = 0; i < n; i++)
	{
		y[i] = moe_rng_uniform(&r) < 0.7f ? 5.0f
			: (float) (round((5.0 + 4.0 * moe_rng_uniform(&r)) * 100.0) / 100.0);
		p[i] = (float) (round((y[i] + 0.5 * moe_rng_normal(&r)) * 1000.0) / 1000.0);
		neg[i] = -p[i];
	}
	ci = moe_metric_ci(y, p, n);
	ci_neg = moe_metric_ci(y, neg, n);
	CHECK(ci > 0.6 && ci < 1.0);
	CHECK_NEAR(ci + ci_neg, 1.0, 1e-12);
	free(y);
	free(p);
	free(neg);
}

/* ------------------------------------------------------------------ */
/* Correlations, r2, rm2                                               */
/* ------------------------------------------------------------------ */

static void
test_pearson_hand(void)
{
	const float x[] = {1, 2, 3, 4};
	const float y2[] = {2, 4, 6, 8};
	const float yr[] = {8, 6, 4, 2};
	const float c[] = {5, 5, 5, 5};

	CHECK_NEAR(moe_metric_pearson(x, y2, 4), 1.0, 1e-15);
	CHECK_NEAR(moe_metric_pearson(x, yr, 4), -1.0, 1e-15);
	CHECK(isnan(moe_metric_pearson(x, c, 4)));
	CHECK(isnan(moe_metric_pearson(c, x, 4)));
	CHECK(isnan(moe_metric_pearson(x, y2, 1)));
	CHECK(isnan(moe_metric_pearson(x, y2, 0)));
}

static void
test_spearman_hand(void)
{
	/* ranks {1,2.5,2.5,4} vs {1,3,2,4}: exact 0.94868329805051379959966806... */
	const float x[] = {1, 2, 2, 3};
	const float y[] = {1, 3, 2, 4};
	const float c[] = {2, 2, 2, 2};
	/* monotone but non-linear: Spearman 1, Pearson < 1 */
	const float a[] = {1, 2, 3, 4, 5};
	const float b[] = {1, 8, 27, 64, 125};

	CHECK_NEAR(moe_metric_spearman(x, y, 4), 0.94868329805051379959966806, 1e-14);
	CHECK_NEAR(moe_metric_spearman(y, x, 4), 0.94868329805051379959966806, 1e-14);
	CHECK(isnan(moe_metric_spearman(x, c, 4)));
	CHECK(isnan(moe_metric_spearman(x, y, 1)));
	CHECK_NEAR(moe_metric_spearman(a, b, 5), 1.0, 1e-15);
	CHECK(moe_metric_pearson(a, b, 5) < 0.99);
}

static void
test_spearman_vs_brute(void)
{
	const size_t n = 1500;
	float	   *y = malloc(n * sizeof(float));
	float	   *p = malloc(n * sizeof(float));
	double	   *ry = malloc(n * sizeof(double));
	double	   *rp = malloc(n * sizeof(double));

	for (uint64_t seed = 21; seed <= 24; seed++)
	{
		tied_data(seed, n, seed % 2, y, p);
		ranks_brute(y, n, ry);
		ranks_brute(p, n, rp);
		CHECK_NEAR(moe_metric_spearman(y, p, n), pearson_brute(ry, rp, n), 1e-12);
	}
	free(y);
	free(p);
	free(ry);
	free(rp);
}

static void
test_r2_is_not_pearson_squared(void)
{
	/* p = y + 1: Pearson 1, but SSE = 4 and SST = 5, so r2 = 0.2. */
	const float y[] = {1, 2, 3, 4};
	const float p[] = {2, 3, 4, 5};
	moe_metrics m;
	moe_error	err;

	moe_error_clear(&err);
	CHECK_INT(moe_compute_metrics(y, p, 4, &m, &err), MOE_OK);
	CHECK_NEAR(m.pearson, 1.0, 1e-15);
	CHECK_NEAR(m.r2, 0.2, 1e-15);
	CHECK_NEAR(m.mse, 1.0, 0);
	CHECK_NEAR(m.rmse, 1.0, 0);
	CHECK_NEAR(m.ci, 1.0, 0);
	CHECK_NEAR(m.spearman, 1.0, 1e-15);

	/* r2 can be negative (worse than predicting the mean). */
	{
		const float q[] = {4, 3, 2, 1};

		CHECK_INT(moe_compute_metrics(y, q, 4, &m, &err), MOE_OK);
		CHECK_NEAR(m.r2, 1.0 - 20.0 / 5.0, 1e-15);
		CHECK_NEAR(m.pearson, -1.0, 1e-15);
		CHECK_NEAR(m.ci, 0.0, 0);
	}
}

static void
test_rm2_hand(void)
{
	/* exact: r2p = 0.875967957276368491..., r02 = 0.815787979773556342...,
	 * k = 0.998950131233595800..., rm2 = 0.596467138009439308... */
	const float y[] = {5.0f, 5.0f, 6.5f, 7.25f, 8.0f, 5.5f};
	const float p[] = {5.25f, 5.5f, 6.0f, 7.0f, 7.5f, 6.25f};
	const float zero[] = {0, 0, 0, 0, 0, 0};
	const float c[] = {5, 5, 5, 5, 5, 5};

	CHECK_NEAR(moe_metric_rm2(y, p, 6), 0.59646713800943930890062431762, 1e-13);
	CHECK(isnan(moe_metric_rm2(y, zero, 6)));	/* sum p^2 = 0 */
	CHECK(isnan(moe_metric_rm2(c, p, 6)));		/* SST of labels = 0 */
	CHECK(isnan(moe_metric_rm2(y, c, 6)));		/* constant predictions */
	CHECK(isnan(moe_metric_rm2(y, p, 1)));
	/* Perfect predictions: r2p = r02 = 1, so rm2 = 1. */
	CHECK_NEAR(moe_metric_rm2(y, y, 6), 1.0, 1e-15);
}

static void
test_compute_all_hand(void)
{
	/* Same data as test_rm2_hand; every field against exact values. */
	const float y[] = {5.0f, 5.0f, 6.5f, 7.25f, 8.0f, 5.5f};
	const float p[] = {5.25f, 5.5f, 6.0f, 7.0f, 7.5f, 6.25f};
	moe_metrics m;
	moe_error	err;

	moe_error_clear(&err);
	CHECK_INT(moe_compute_metrics(y, p, 6, &m, &err), MOE_OK);
	CHECK_INT(m.n, 6);
	CHECK_NEAR(m.mse, 0.23958333333333333333333333333, 1e-15);
	CHECK_NEAR(m.rmse, 0.48947250518628044112368776525, 1e-15);
	CHECK_NEAR(m.r2, 0.81575433911882510013351134846, 1e-14);
	CHECK_NEAR(m.pearson, 0.93593159860983884366614734945, 1e-14);
	CHECK_NEAR(m.spearman, 0.92763365704391745560911352438, 1e-14);
	CHECK_NEAR(m.ci, 13.0 / 14.0, 1e-15);
	CHECK_NEAR(m.rm2, 0.59646713800943930890062431762, 1e-13);
}

static void
test_compute_matches_single_metrics(void)
{
	const size_t n = 3000;
	float	   *y = malloc(n * sizeof(float));
	float	   *p = malloc(n * sizeof(float));
	moe_metrics m;
	moe_error	err;

	tied_data(31, n, 1, y, p);
	CHECK_INT(moe_compute_metrics(y, p, n, &m, &err), MOE_OK);
	CHECK_INT(m.n, (long long) n);
	CHECK_NEAR(m.ci, moe_metric_ci(y, p, n), 0);
	CHECK_NEAR(m.pearson, moe_metric_pearson(y, p, n), 1e-15);
	CHECK_NEAR(m.spearman, moe_metric_spearman(y, p, n), 0);
	CHECK_NEAR(m.rm2, moe_metric_rm2(y, p, n), 0);
	CHECK_NEAR(m.rmse * m.rmse, m.mse, 1e-12);
	CHECK(m.r2 < m.pearson * m.pearson + 1e-12);
	free(y);
	free(p);
}

static void
test_compute_single_row_and_constant(void)
{
	const float y1[] = {5};
	const float p1[] = {6};
	const float yc[] = {5, 5, 5};
	const float pc[] = {4, 5, 7};
	moe_metrics m;
	moe_error	err;

	moe_error_clear(&err);
	CHECK_INT(moe_compute_metrics(y1, p1, 1, &m, &err), MOE_OK);
	CHECK_INT(m.n, 1);
	CHECK_NEAR(m.mse, 1.0, 0);
	CHECK(isnan(m.ci) && isnan(m.r2) && isnan(m.pearson) && isnan(m.spearman) && isnan(m.rm2));

	/* All labels tied (as 70% of Davis is): defined mse, undefined rest. */
	CHECK_INT(moe_compute_metrics(yc, pc, 3, &m, &err), MOE_OK);
	CHECK_NEAR(m.mse, 5.0 / 3.0, 1e-15);
	CHECK(isnan(m.ci) && isnan(m.r2) && isnan(m.pearson) && isnan(m.spearman) && isnan(m.rm2));
}

static void
test_compute_errors(void)
{
	float		y[20],
				p[20];
	moe_metrics m;
	moe_error	err;

	for (int i = 0; i < 20; i++)
	{
		y[i] = (float) i;
		p[i] = (float) i + 0.5f;
	}

	memset(&m, 0, sizeof(m));
	m.n = -7;
	moe_error_clear(&err);
	CHECK_INT(moe_compute_metrics(y, p, 0, &m, &err), MOE_ERR_DATA);
	CHECK_INT(err.status, MOE_ERR_DATA);
	CHECK(strcmp(err.message, "no rows to evaluate") == 0);
	CHECK_INT(m.n, -7);

	y[2] = NAN;
	moe_error_clear(&err);
	CHECK_INT(moe_compute_metrics(y, p, 20, &m, &err), MOE_ERR_DATA);
	CHECK(strcmp(err.message, "label at row 3 is not finite") == 0);
	CHECK_INT(m.n, -7);
	y[2] = 2.0f;

	p[16] = INFINITY;
	moe_error_clear(&err);
	CHECK_INT(moe_compute_metrics(y, p, 20, &m, &err), MOE_ERR_DATA);
	CHECK(strcmp(err.message, "prediction at row 17 is not finite") == 0);
	CHECK_INT(m.n, -7);

	p[16] = -INFINITY;
	CHECK_INT(moe_compute_metrics(y, p, 20, &m, &err), MOE_ERR_DATA);
	CHECK(strcmp(err.message, "prediction at row 17 is not finite") == 0);

	/* The first bad row is named; the label before the prediction. */
	p[4] = NAN;
	y[4] = INFINITY;
	CHECK_INT(moe_compute_metrics(y, p, 20, &m, &err), MOE_ERR_DATA);
	CHECK(strcmp(err.message, "label at row 5 is not finite") == 0);

	/* A NULL err is allowed. */
	CHECK_INT(moe_compute_metrics(y, p, 0, &m, NULL), MOE_ERR_DATA);

	/* The single-metric functions return NaN for non-finite input. */
	CHECK(isnan(moe_metric_pearson(y, p, 20)));
	CHECK(isnan(moe_metric_spearman(y, p, 20)));
	CHECK(isnan(moe_metric_rm2(y, p, 20)));
	CHECK(isnan(moe_metric_ci(y, p, 20)));
}

int
main(void)
{
	RUN(test_ranks_hand);
	RUN(test_ranks_nan_rejected);
	RUN(test_ranks_vs_brute);
	RUN(test_ci_hand);
	RUN(test_ci_vs_brute);
	RUN(test_ci_million);
	RUN(test_pearson_hand);
	RUN(test_spearman_hand);
	RUN(test_spearman_vs_brute);
	RUN(test_r2_is_not_pearson_squared);
	RUN(test_rm2_hand);
	RUN(test_compute_all_hand);
	RUN(test_compute_matches_single_metrics);
	RUN(test_compute_single_row_and_constant);
	RUN(test_compute_errors);
	return unit_summary("test_metrics");
}
