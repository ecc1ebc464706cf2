/*
 * test_synthetic.c — the synthetic benchmark is deterministic, shaped as
 * asked, and rewards routing by cluster.
 */
#include <stdlib.h>
#include <string.h>

#include "synthetic.h"
#include "unit.h"

static moe_synthetic
make(int nd, int nt, int nc, uint64_t seed)
{
	moe_synthetic_spec spec;
	moe_synthetic out;
	moe_error	err;

	moe_synthetic_defaults(&spec);
	spec.n_drugs = nd;
	spec.n_targets = nt;
	spec.n_clusters = nc;
	spec.seed = seed;
	CHECK_INT(moe_synthetic_generate(&spec, &out, &err), MOE_OK);
	return out;
}

static void
test_deterministic(void)
{
	moe_synthetic a = make(20, 15, 3, 7),
				b = make(20, 15, 3, 7),
				c = make(20, 15, 3, 8);

	CHECK(memcmp(a.label, b.label, sizeof(float) * 300) == 0);
	CHECK(memcmp(a.drug_vec, b.drug_vec, sizeof(float) * 20 * 32) == 0);
	CHECK(memcmp(a.target_vec, b.target_vec, sizeof(float) * 15 * 32) == 0);
	CHECK(memcmp(a.label, c.label, sizeof(float) * 300) != 0);
	moe_synthetic_free(&a);
	moe_synthetic_free(&b);
	moe_synthetic_free(&c);
}

static void
test_shapes_and_ranges(void)
{
	moe_synthetic s = make(60, 40, 4, 1);
	int			per_cluster[4] = {0};
	double		mean = 0;

	CHECK_INT(s.n_drugs, 60);
	CHECK_INT(s.n_targets, 40);
	CHECK_INT(s.drug_dim, 32);
	for (int t = 0; t < 40; t++)
		per_cluster[s.target_cluster[t]]++;
	for (int k = 0; k < 4; k++)
		CHECK_INT(per_cluster[k], 10);
	for (int i = 0; i < 2400; i++)
	{
		CHECK(s.label[i] >= 4.0f && s.label[i] <= 10.0f);
		mean += s.label[i];
	}
	mean /= 2400;
	printf("  label mean %.3f\n", mean);
	CHECK(mean > 5.0 && mean < 7.0);
	moe_synthetic_free(&s);
}

/* Nearest centroid over the generated target vectors finds the clusters. */
static void
test_clusters_are_separable(void)
{
	moe_synthetic s = make(10, 80, 5, 3);
	double		centroid[5][32] = {{0}};
	int			count[5] = {0},
				right = 0;

	for (int t = 0; t < 80; t++)
	{
		count[s.target_cluster[t]]++;
		for (int j = 0; j < 32; j++)
			centroid[s.target_cluster[t]][j] += s.target_vec[t * 32 + j];
	}
	for (int k = 0; k < 5; k++)
		for (int j = 0; j < 32; j++)
			centroid[k][j] /= count[k];
	for (int t = 0; t < 80; t++)
	{
		int			best = -1;
		double		best_d = 0;

		for (int k = 0; k < 5; k++)
		{
			double		d = 0;

			for (int j = 0; j < 32; j++)
				d += (s.target_vec[t * 32 + j] - centroid[k][j]) * (s.target_vec[t * 32 + j] - centroid[k][j]);
			if (best < 0 || d < best_d)
				best = k, best_d = d;
		}
		right += best == s.target_cluster[t];
	}
	CHECK(right >= 76);
	moe_synthetic_free(&s);
}

/* Least squares by gradient descent on standardised features. */
static double
fit_mse(const float *X, const float *y, int n, int p)
{
	double	   *w = calloc(p + 1, sizeof(double));
	double		mse = 0;

	for (int it = 0; it < 3000; it++)
	{
		double	   *g = calloc(p + 1, sizeof(double));

		for (int i = 0; i < n; i++)
		{
			double		r = w[p] - y[i];

			for (int j = 0; j < p; j++)
				r += w[j] * X[(size_t) i * p + j];
			for (int j = 0; j < p; j++)
				g[j] += r * X[(size_t) i * p + j];
			g[p] += r;
		}
		for (int j = 0; j <= p; j++)
			w[j] -= 0.05 * g[j] / n;
		free(g);
	}
	for (int i = 0; i < n; i++)
	{
		double		r = w[p] - y[i];

		for (int j = 0; j < p; j++)
			r += w[j] * X[(size_t) i * p + j];
		mse += r * r;
	}
	free(w);
	return mse / n;
}

/* One linear model for everything versus one per cluster: the affinity is
 * a different function of the drug in each cluster, so the second wins. */
static void
test_routing_by_cluster_pays(void)
{
	moe_synthetic s = make(60, 40, 4, 5);
	int			n = 2400,
				p = 64;
	float	   *X = malloc(sizeof(float) * n * p),
			   *Xc = malloc(sizeof(float) * n * 32),
			   *yc = malloc(sizeof(float) * n);
	double		global,
				per_cluster = 0;

	for (int d = 0; d < 60; d++)
		for (int t = 0; t < 40; t++)
		{
			float	   *row = X + (size_t) (d * 40 + t) * p;

			memcpy(row, s.drug_vec + d * 32, sizeof(float) * 32);
			for (int j = 0; j < 32; j++)
				row[32 + j] = s.target_vec[t * 32 + j] / 3.0f;
		}
	global = fit_mse(X, s.label, n, p);
	for (int k = 0; k < 4; k++)
	{
		int			m = 0;

		for (int d = 0; d < 60; d++)
			for (int t = 0; t < 40; t++)
				if (s.target_cluster[t] == k)
				{
					memcpy(Xc + (size_t) m * 32, s.drug_vec + d * 32, sizeof(float) * 32);
					yc[m++] = s.label[d * 40 + t];
				}
		per_cluster += fit_mse(Xc, yc, m, 32) * m;
	}
	per_cluster /= n;
	printf("  linear MSE: one global model %.4f, one per cluster %.4f\n", global, per_cluster);
	CHECK(per_cluster < 0.5 * global);
	free(X);
	free(Xc);
	free(yc);
	moe_synthetic_free(&s);
}

static void
test_bad_specs(void)
{
	moe_synthetic_spec spec;
	moe_synthetic out;
	moe_error	err;

	moe_synthetic_defaults(&spec);
	spec.n_drugs = 0;
	CHECK_INT(moe_synthetic_generate(&spec, &out, &err), MOE_ERR_INVALID);
	CHECK(strstr(err.message, "n_drugs") != NULL);
	CHECK(out.label == NULL);
	moe_synthetic_defaults(&spec);
	spec.n_clusters = 41;
	CHECK_INT(moe_synthetic_generate(&spec, &out, &err), MOE_ERR_INVALID);
	CHECK(strstr(err.message, "n_clusters") != NULL);
	moe_synthetic_defaults(&spec);
	spec.n_drugs = 100000;
	spec.n_targets = 1000;
	CHECK_INT(moe_synthetic_generate(&spec, &out, &err), MOE_ERR_INVALID);
	moe_synthetic_defaults(&spec);
	spec.noise = -1;
	CHECK_INT(moe_synthetic_generate(&spec, &out, &err), MOE_ERR_INVALID);
	moe_synthetic_defaults(&spec);
	spec.drug_dim = 5000;
	CHECK_INT(moe_synthetic_generate(&spec, &out, &err), MOE_ERR_INVALID);
	moe_synthetic_free(&out);
}

int
main(void)
{
	RUN(test_deterministic);
	RUN(test_shapes_and_ranges);
	RUN(test_clusters_are_separable);
	RUN(test_routing_by_cluster_pays);
	RUN(test_bad_specs);
	return unit_summary("test_synthetic");
}
