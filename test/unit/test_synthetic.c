/*
 * test_synthetic.c — the synthetic benchmark is deterministic, follows the
 * documented draw order, is shaped as asked, looks like pKd values, has
 * clusters that can be read from the target vectors, rewards routing by
 * cluster, and refuses every bad spec.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "rng.h"
#include "synthetic.h"
#include "unit.h"

static moe_synthetic_spec
spec_of(int nd, int nt, int nc, uint64_t seed)
{
	moe_synthetic_spec spec;

	moe_synthetic_defaults(&spec);
	spec.n_drugs = nd;
	spec.n_targets = nt;
	spec.n_clusters = nc;
	spec.seed = seed;
	return spec;
}

static moe_synthetic
generate(const moe_synthetic_spec *spec)
{
	moe_synthetic out;
	moe_error	err;
	moe_status	st = moe_synthetic_generate(spec, &out, &err);

	CHECK_INT(st, MOE_OK);
	if (st != MOE_OK)
		fprintf(stderr, "  generate failed: %s\n", err.message);
	return out;
}

static moe_synthetic
make(int nd, int nt, int nc, uint64_t seed)
{
	moe_synthetic_spec spec = spec_of(nd, nt, nc, seed);

	return generate(&spec);
}

/* All four arrays and the scalars equal, byte for byte. */
static int
same_data(const moe_synthetic *a, const moe_synthetic *b)
{
	if (a->n_drugs != b->n_drugs || a->n_targets != b->n_targets ||
		a->drug_dim != b->drug_dim || a->target_dim != b->target_dim)
		return 0;
	if (a->label == NULL || b->label == NULL)
		return 0;
	return memcmp(a->drug_vec, b->drug_vec, sizeof(float) * a->n_drugs * a->drug_dim) == 0 &&
		memcmp(a->target_vec, b->target_vec, sizeof(float) * a->n_targets * a->target_dim) == 0 &&
		memcmp(a->target_cluster, b->target_cluster, sizeof(int) * a->n_targets) == 0 &&
		memcmp(a->label, b->label, sizeof(float) * a->n_drugs * a->n_targets) == 0;
}

static void
label_moments(const moe_synthetic *s, double *mean, double *std)
{
	size_t		n = (size_t) s->n_drugs * s->n_targets;
	double		sum = 0,
				sum2 = 0;

	for (size_t i = 0; i < n; i++)
		sum += s->label[i];
	*mean = sum / n;
	for (size_t i = 0; i < n; i++)
		sum2 += (s->label[i] - *mean) * (s->label[i] - *mean);
	*std = sqrt(sum2 / n);
}

static void
test_defaults(void)
{
	moe_synthetic_spec spec;

	memset(&spec, 0x5a, sizeof(spec));
	moe_synthetic_defaults(&spec);
	CHECK_INT(spec.n_drugs, 40);
	CHECK_INT(spec.n_targets, 40);
	CHECK_INT(spec.n_clusters, 4);
	CHECK_INT(spec.drug_dim, 32);
	CHECK_INT(spec.target_dim, 32);
	CHECK(spec.noise == 0.1f);
	CHECK(spec.seed == 42);
}

static void
test_deterministic(void)
{
	moe_synthetic_spec spec;
	moe_synthetic a,
				b,
				c;

	moe_synthetic_defaults(&spec);
	a = generate(&spec);
	b = generate(&spec);
	CHECK(same_data(&a, &b));
	/* a generation into a freed struct gives the same again */
	moe_synthetic_free(&b);
	CHECK(b.label == NULL && b.drug_vec == NULL && b.n_drugs == 0);
	b = generate(&spec);
	CHECK(same_data(&a, &b));

	spec.seed = 43;
	c = generate(&spec);
	CHECK(!same_data(&a, &c));
	CHECK(memcmp(a.drug_vec, c.drug_vec, sizeof(float) * 40 * 32) != 0);
	CHECK(memcmp(a.target_vec, c.target_vec, sizeof(float) * 40 * 32) != 0);
	CHECK(memcmp(a.label, c.label, sizeof(float) * 40 * 40) != 0);
	/* the cluster assignment depends on t only */
	CHECK(memcmp(a.target_cluster, c.target_cluster, sizeof(int) * 40) == 0);
	moe_synthetic_free(&a);
	moe_synthetic_free(&b);
	moe_synthetic_free(&c);
	moe_synthetic_free(&c);		/* twice is harmless */
	moe_synthetic_free(NULL);
}

/*
 * A second implementation of docs/synthetic.md, written from the document:
 * the generator must match it bit for bit, which pins the draw order.
 */
static void
reference(const moe_synthetic_spec *s, float *drug, float *target, int *cluster, float *label)
{
	const int	K = s->n_clusters,
				D = s->drug_dim,
				T = s->target_dim;
	float	   *c = malloc(sizeof(float) * K * T),
			   *w = malloc(sizeof(float) * K * D),
			   *a = malloc(sizeof(float) * K),
			   *st = malloc(sizeof(float) * s->n_targets);
	moe_rng		r;

	moe_rng_seed(&r, s->seed);
	for (int k = 0; k < K; k++)
		for (int j = 0; j < T; j++)
			c[k * T + j] = 3.0f * moe_rng_normal(&r);
	for (int k = 0; k < K; k++)
	{
		double		n2 = 0;

		for (int j = 0; j < D; j++)
		{
			w[k * D + j] = moe_rng_normal(&r);
			n2 += (double) w[k * D + j] * w[k * D + j];
		}
		for (int j = 0; j < D; j++)
			w[k * D + j] = (float) (w[k * D + j] / sqrt(n2));
	}
	for (int k = 0; k < K; k++)
		a[k] = 2.0f * moe_rng_uniform(&r) - 1.0f;
	for (int t = 0; t < s->n_targets; t++)
	{
		cluster[t] = t % K;
		for (int j = 0; j < T; j++)
			target[t * T + j] = c[cluster[t] * T + j] + 0.5f * moe_rng_normal(&r);
		st[t] = 0.3f * moe_rng_normal(&r);
	}
	for (int i = 0; i < s->n_drugs * D; i++)
		drug[i] = moe_rng_normal(&r);
	for (int d = 0; d < s->n_drugs; d++)
		for (int t = 0; t < s->n_targets; t++)
		{
			int			k = cluster[t];
			double		dot = 0;
			float		y;

			for (int j = 0; j < D; j++)
				dot += (double) w[k * D + j] * drug[d * D + j];
			y = 6.0f + 1.5f * (float) tanh(dot) + a[k] + st[t] + s->noise * moe_rng_normal(&r);
			label[d * s->n_targets + t] = fminf(fmaxf(y, 4.0f), 10.0f);
		}
	free(c);
	free(w);
	free(a);
	free(st);
}

static void
check_against_reference(const moe_synthetic_spec *spec)
{
	moe_synthetic s = generate(spec);
	float	   *drug = malloc(sizeof(float) * spec->n_drugs * spec->drug_dim),
			   *target = malloc(sizeof(float) * spec->n_targets * spec->target_dim),
			   *label = malloc(sizeof(float) * spec->n_drugs * spec->n_targets);
	int		   *cluster = malloc(sizeof(int) * spec->n_targets);

	reference(spec, drug, target, cluster, label);
	if (s.label != NULL)
	{
		CHECK(memcmp(s.drug_vec, drug, sizeof(float) * spec->n_drugs * spec->drug_dim) == 0);
		CHECK(memcmp(s.target_vec, target, sizeof(float) * spec->n_targets * spec->target_dim) == 0);
		CHECK(memcmp(s.target_cluster, cluster, sizeof(int) * spec->n_targets) == 0);
		CHECK(memcmp(s.label, label, sizeof(float) * spec->n_drugs * spec->n_targets) == 0);
	}
	free(drug);
	free(target);
	free(label);
	free(cluster);
	moe_synthetic_free(&s);
}

static void
test_documented_draw_order(void)
{
	moe_synthetic_spec spec;

	moe_synthetic_defaults(&spec);
	check_against_reference(&spec);
	spec = spec_of(9, 7, 3, 99);	/* 7 targets in 3 clusters: 3, 2, 2 */
	spec.drug_dim = 5;
	spec.target_dim = 4;
	spec.noise = 0.7f;
	check_against_reference(&spec);
	spec.noise = 0.0f;
	check_against_reference(&spec);
	spec = spec_of(3, 2, 1, 0);
	spec.drug_dim = 1;
	spec.target_dim = 1;
	check_against_reference(&spec);
}

/*
 * A few values of the default data (seed 42), to catch an accidental change
 * of the model in both the generator and the reference above.  Loose enough
 * for another libm's last-bit differences.
 */
static void
test_pinned_values(void)
{
	moe_synthetic s = make(40, 40, 4, 42);

	if (s.label == NULL)
		return;
	CHECK_NEAR(s.drug_vec[0], -0.77816999, 1e-5);
	CHECK_NEAR(s.target_vec[0], -4.11373854, 1e-4);
	CHECK_NEAR(s.label[1], 6.87622356, 1e-4);
	CHECK_NEAR(s.label[2], 5.45547819, 1e-4);
	CHECK_NEAR(s.label[40 * 40 - 1], 6.40023088, 1e-4);
	moe_synthetic_free(&s);
}

static void
test_shapes_and_balance(void)
{
	moe_synthetic s = make(60, 40, 4, 42);
	int			per_cluster[4] = {0};

	CHECK_INT(s.n_drugs, 60);
	CHECK_INT(s.n_targets, 40);
	CHECK_INT(s.drug_dim, 32);
	CHECK_INT(s.target_dim, 32);
	for (int t = 0; t < 40 && s.target_cluster; t++)
	{
		CHECK_INT(s.target_cluster[t], t % 4);
		if (s.target_cluster[t] >= 0 && s.target_cluster[t] < 4)
			per_cluster[s.target_cluster[t]]++;
	}
	for (int k = 0; k < 4; k++)
		CHECK_INT(per_cluster[k], 10);
	for (int i = 0; i < 60 * 32 && s.drug_vec; i++)
		CHECK(isfinite(s.drug_vec[i]));
	for (int i = 0; i < 40 * 32 && s.target_vec; i++)
		CHECK(isfinite(s.target_vec[i]));
	moe_synthetic_free(&s);

	/* 43 targets in 4 clusters: sizes differ by at most one */
	s = make(5, 43, 4, 1);
	memset(per_cluster, 0, sizeof(per_cluster));
	for (int t = 0; t < 43 && s.target_cluster; t++)
		if (s.target_cluster[t] >= 0 && s.target_cluster[t] < 4)
			per_cluster[s.target_cluster[t]]++;
	CHECK_INT(per_cluster[0], 11);
	CHECK_INT(per_cluster[1], 11);
	CHECK_INT(per_cluster[2], 11);
	CHECK_INT(per_cluster[3], 10);
	moe_synthetic_free(&s);

	/* other dimensions */
	{
		moe_synthetic_spec spec = spec_of(3, 5, 5, 4);

		spec.drug_dim = 7;
		spec.target_dim = 1;
		s = generate(&spec);
		CHECK_INT(s.drug_dim, 7);
		CHECK_INT(s.target_dim, 1);
		for (int t = 0; t < 5 && s.target_cluster; t++)
			CHECK_INT(s.target_cluster[t], t);
		moe_synthetic_free(&s);
	}
}

static void
test_labels_look_like_pkd(void)
{
	moe_synthetic s = make(60, 40, 4, 42);
	double		mean,
				std,
				mean_of_means = 0;

	for (int i = 0; i < 60 * 40 && s.label; i++)
		CHECK(s.label[i] >= 4.0f && s.label[i] <= 10.0f);
	label_moments(&s, &mean, &std);
	printf("  defaults 60 x 40: label mean %.3f, std %.3f\n", mean, std);
	CHECK(mean > 5.0 && mean < 7.0);
	CHECK(std > 0.7 && std < 1.6);
	moe_synthetic_free(&s);

	/* over seeds the mean centres on 6 (one seed moves it by its a_k) */
	for (uint64_t seed = 1; seed <= 20; seed++)
	{
		s = make(40, 40, 4, seed);
		label_moments(&s, &mean, &std);
		mean_of_means += mean / 20;
		CHECK(mean > 4.8 && mean < 7.2);
		CHECK(std > 0.5 && std < 1.8);
		moe_synthetic_free(&s);
	}
	printf("  mean over seeds 1..20: %.3f\n", mean_of_means);
	CHECK_NEAR(mean_of_means, 6.0, 0.25);
}

/*
 * The noise draws come last in the stream, so the noise level changes the
 * labels and nothing else: same vectors, and labels that differ by about
 * the difference in noise.
 */
static void
test_noise_changes_only_labels(void)
{
	moe_synthetic_spec spec = spec_of(60, 40, 4, 42);
	moe_synthetic a,
				b;
	double		diff2 = 0;

	spec.noise = 0.0f;
	a = generate(&spec);
	spec.noise = 0.5f;
	b = generate(&spec);
	if (a.label && b.label)
	{
		CHECK(memcmp(a.drug_vec, b.drug_vec, sizeof(float) * 60 * 32) == 0);
		CHECK(memcmp(a.target_vec, b.target_vec, sizeof(float) * 40 * 32) == 0);
		CHECK(memcmp(a.target_cluster, b.target_cluster, sizeof(int) * 40) == 0);
		for (int i = 0; i < 60 * 40; i++)
			diff2 += (double) (a.label[i] - b.label[i]) * (a.label[i] - b.label[i]) / (60 * 40);
		CHECK_NEAR(sqrt(diff2), 0.5, 0.05);
	}
	moe_synthetic_free(&a);
	moe_synthetic_free(&b);
}

/* Large noise pushes labels past both ends: they are clipped to [4, 10]. */
static void
test_labels_are_clipped(void)
{
	moe_synthetic_spec spec = spec_of(30, 20, 2, 8);
	moe_synthetic s;
	int			at_min = 0,
				at_max = 0;

	spec.noise = 10.0f;
	s = generate(&spec);
	for (int i = 0; i < 600 && s.label; i++)
	{
		CHECK(s.label[i] >= 4.0f && s.label[i] <= 10.0f);
		at_min += s.label[i] == 4.0f;
		at_max += s.label[i] == 10.0f;
	}
	CHECK(at_min > 100);
	CHECK(at_max > 100);
	moe_synthetic_free(&s);
}

/* Nearest centroid over the generated target vectors recovers the clusters. */
static double
nearest_centroid_accuracy(const moe_synthetic *s, int K)
{
	const int	T = s->target_dim;
	double	   *centroid = calloc((size_t) K * T, sizeof(double));
	int		   *count = calloc(K, sizeof(int));
	int			right = 0;

	for (int t = 0; t < s->n_targets; t++)
	{
		int			k = s->target_cluster[t];

		count[k]++;
		for (int j = 0; j < T; j++)
			centroid[k * T + j] += s->target_vec[t * T + j];
	}
	for (int k = 0; k < K; k++)
		for (int j = 0; j < T; j++)
			centroid[k * T + j] /= count[k];
	for (int t = 0; t < s->n_targets; t++)
	{
		int			best = -1;
		double		best_d = 0;

		for (int k = 0; k < K; k++)
		{
			double		d = 0;

			for (int j = 0; j < T; j++)
			{
				double		e = s->target_vec[t * T + j] - centroid[k * T + j];

				d += e * e;
			}
			if (best < 0 || d < best_d)
				best = k, best_d = d;
		}
		right += best == s->target_cluster[t];
	}
	free(centroid);
	free(count);
	return (double) right / s->n_targets;
}

static void
test_clusters_are_separable(void)
{
	moe_synthetic s = make(60, 40, 4, 42);

	if (s.label)
		CHECK(nearest_centroid_accuracy(&s, 4) > 0.95);
	moe_synthetic_free(&s);
	s = make(10, 80, 5, 3);
	if (s.label)
		CHECK(nearest_centroid_accuracy(&s, 5) > 0.95);
	moe_synthetic_free(&s);
	s = make(5, 640, 64, 9);
	if (s.label)
		CHECK(nearest_centroid_accuracy(&s, 64) > 0.95);
	moe_synthetic_free(&s);
}

/*
 * Ordinary least squares through the normal equations (X'X) b = X'y, solved
 * by Gaussian elimination with partial pivoting.  X is n x p, row-major; a
 * column of ones is appended here.  Returns the coefficients (p + 1, the
 * last the intercept) in a malloc'd array, NULL if X'X is singular.
 */
static double *
ols_fit(const double *X, const double *y, int n, int p)
{
	const int	q = p + 1;
	double	   *A = calloc((size_t) q * (q + 1), sizeof(double));	/* [X'X | X'y] */
	double	   *b = calloc(q, sizeof(double));

	for (int i = 0; i < n; i++)
	{
		const double *x = X + (size_t) i * p;

		for (int r = 0; r < q; r++)
		{
			double		xr = r < p ? x[r] : 1.0;

			for (int c = 0; c < q; c++)
				A[r * (q + 1) + c] += xr * (c < p ? x[c] : 1.0);
			A[r * (q + 1) + q] += xr * y[i];
		}
	}
	for (int col = 0; col < q; col++)
	{
		int			piv = col;

		for (int r = col + 1; r < q; r++)
			if (fabs(A[r * (q + 1) + col]) > fabs(A[piv * (q + 1) + col]))
				piv = r;
		if (fabs(A[piv * (q + 1) + col]) < 1e-10)
		{
			free(A);
			free(b);
			return NULL;
		}
		if (piv != col)
			for (int c = 0; c <= q; c++)
			{
				double		tmp = A[col * (q + 1) + c];

				A[col * (q + 1) + c] = A[piv * (q + 1) + c];
				A[piv * (q + 1) + c] = tmp;
			}
		for (int r = col + 1; r < q; r++)
		{
			double		f = A[r * (q + 1) + col] / A[col * (q + 1) + col];

			for (int c = col; c <= q; c++)
				A[r * (q + 1) + c] -= f * A[col * (q + 1) + c];
		}
	}
	for (int r = q - 1; r >= 0; r--)
	{
		double		v = A[r * (q + 1) + q];

		for (int c = r + 1; c < q; c++)
			v -= A[r * (q + 1) + c] * b[c];
		b[r] = v / A[r * (q + 1) + r];
	}
	free(A);
	return b;
}

/* Sum of squared errors of coefficients b on rows X, y. */
static double
ols_sse(const double *b, const double *X, const double *y, int n, int p)
{
	double		sse = 0;

	for (int i = 0; i < n; i++)
	{
		double		r = b[p] - y[i];

		for (int j = 0; j < p; j++)
			r += b[j] * X[(size_t) i * p + j];
		sse += r * r;
	}
	return sse;
}

/* The solver itself: exact on noiseless linear data, refuses a singular X. */
static void
test_least_squares_solver(void)
{
	const int	n = 50,
				p = 3;
	double		X[50 * 3],
				y[50];
	double	   *b;
	moe_rng		r;

	moe_rng_seed(&r, 5);
	for (int i = 0; i < n; i++)
	{
		for (int j = 0; j < p; j++)
			X[i * p + j] = moe_rng_normal(&r);
		y[i] = 2.0 * X[i * p] - 0.5 * X[i * p + 1] + 0.25 * X[i * p + 2] + 7.0;
	}
	b = ols_fit(X, y, n, p);
	CHECK(b != NULL);
	if (b)
	{
		CHECK_NEAR(b[0], 2.0, 1e-9);
		CHECK_NEAR(b[1], -0.5, 1e-9);
		CHECK_NEAR(b[2], 0.25, 1e-9);
		CHECK_NEAR(b[3], 7.0, 1e-9);
		CHECK(ols_sse(b, X, y, n, p) < 1e-12);
		free(b);
	}
	for (int i = 0; i < n; i++)
		X[i * p + 2] = 2.0 * X[i * p];	/* collinear columns */
	b = ols_fit(X, y, n, p);
	CHECK(b == NULL);
	free(b);
}

typedef struct routing_result
{
	double		global;			/* one model on [drug, target, 1] */
	double		per_cluster;	/* one model per cluster on [drug, 1] */
	double		global_heldout; /* the same, fitted on even drugs, scored on odd */
	double		per_cluster_heldout;
	double		variance;		/* MSE of predicting the mean */
} routing_result;

/*
 * heldout: also fit on the even drugs and score on the odd ones; needs
 * enough drugs (more than drug_dim + 1 per half) for the fits to be
 * determined.
 */
static routing_result
compare_routing(const moe_synthetic *s, int K, int heldout)
{
	const int	nd = s->n_drugs,
				nt = s->n_targets,
				D = s->drug_dim,
				T = s->target_dim,
				n = nd * nt,
				p = D + T;
	double	   *X = calloc((size_t) n * p, sizeof(double)),
			   *y = calloc(n, sizeof(double)),
			   *Xc = calloc((size_t) n * D, sizeof(double)),
			   *yc = calloc(n, sizeof(double));
	routing_result res = {0};
	double		mean = 0;
	int			n_odd = 0;

	/* global: rows drug-major */
	for (int d = 0; d < nd; d++)
		for (int t = 0; t < nt; t++)
		{
			double	   *row = X + (size_t) (d * nt + t) * p;

			for (int j = 0; j < D; j++)
				row[j] = s->drug_vec[d * D + j];
			for (int j = 0; j < T; j++)
				row[D + j] = s->target_vec[t * T + j];
			y[d * nt + t] = s->label[d * nt + t];
			mean += y[d * nt + t] / n;
		}
	for (int i = 0; i < n; i++)
		res.variance += (y[i] - mean) * (y[i] - mean) / n;
	{
		double	   *b = ols_fit(X, y, n, p);

		CHECK(b != NULL);
		res.global = b ? ols_sse(b, X, y, n, p) / n : INFINITY;
		free(b);
	}
	if (heldout)
	{
		/* held out: fit on even drugs, score on odd drugs */
		double	   *Xe = calloc((size_t) n * p, sizeof(double)),
				   *ye = calloc(n, sizeof(double)),
				   *Xo = calloc((size_t) n * p, sizeof(double)),
				   *yo = calloc(n, sizeof(double)),
				   *b;
		int			ne = 0,
					no = 0;

		for (int d = 0; d < nd; d++)
			for (int t = 0; t < nt; t++)
			{
				int			i = d * nt + t;

				if (d % 2 == 0)
				{
					memcpy(Xe + (size_t) ne * p, X + (size_t) i * p, sizeof(double) * p);
					ye[ne++] = y[i];
				}
				else
				{
					memcpy(Xo + (size_t) no * p, X + (size_t) i * p, sizeof(double) * p);
					yo[no++] = y[i];
				}
			}
		b = ols_fit(Xe, ye, ne, p);
		CHECK(b != NULL);
		res.global_heldout = b ? ols_sse(b, Xo, yo, no, p) / no : INFINITY;
		n_odd = no;
		free(b);
		free(Xe);
		free(ye);
		free(Xo);
		free(yo);
	}

	for (int k = 0; k < K; k++)
	{
		int			m = 0,
					me = 0;
		double	   *b;

		/* rows of cluster k, even drugs first, then odd drugs */
		for (int pass = 0; pass < 2; pass++)
			for (int d = pass; d < nd; d += 2)
				for (int t = 0; t < nt; t++)
					if (s->target_cluster[t] == k)
					{
						for (int j = 0; j < D; j++)
							Xc[(size_t) m * D + j] = s->drug_vec[d * D + j];
						yc[m++] = s->label[d * nt + t];
						me += pass == 0;
					}
		b = ols_fit(Xc, yc, m, D);
		CHECK(b != NULL);
		res.per_cluster += b ? ols_sse(b, Xc, yc, m, D) / n : INFINITY;
		free(b);
		if (!heldout)
			continue;
		b = ols_fit(Xc, yc, me, D);
		CHECK(b != NULL);
		res.per_cluster_heldout += b ? ols_sse(b, Xc + (size_t) me * D, yc + me, m - me, D) / n_odd
			: INFINITY;
		free(b);
	}
	free(X);
	free(y);
	free(Xc);
	free(yc);
	return res;
}

/*
 * One linear model for everything versus one per cluster: the affinity is
 * a different function of the drug in each cluster, so the second wins by
 * far.
 */
static void
test_routing_by_cluster_pays(void)
{
	moe_synthetic s = make(60, 40, 4, 42);
	routing_result r;

	if (s.label == NULL)
		return;
	r = compare_routing(&s, 4, 0);
	printf("  defaults 60 x 40, linear MSE: predict-the-mean %.4f, one global model %.4f, "
		   "one per cluster %.4f (ratio %.3f)\n",
		   r.variance, r.global, r.per_cluster, r.per_cluster / r.global);
	CHECK(r.per_cluster < 0.5 * r.global);
	CHECK(r.per_cluster < 0.25);
	CHECK(r.global < r.variance);	/* the global fit is a real fit */
	moe_synthetic_free(&s);

	/* not a lucky seed */
	for (uint64_t seed = 1; seed <= 5; seed++)
	{
		s = make(60, 40, 4, seed);
		if (s.label == NULL)
			continue;
		r = compare_routing(&s, 4, 0);
		CHECK(r.per_cluster < 0.5 * r.global);
		moe_synthetic_free(&s);
	}

	/* on drugs the fits did not see (200 drugs, fitted on 100) */
	s = make(200, 40, 4, 42);
	if (s.label)
	{
		r = compare_routing(&s, 4, 1);
		printf("  200 x 40, held-out drugs: one global model %.4f, one per cluster %.4f\n",
			   r.global_heldout, r.per_cluster_heldout);
		CHECK(r.per_cluster_heldout < 0.5 * r.global_heldout);
		CHECK(r.per_cluster_heldout < 0.3);
	}
	moe_synthetic_free(&s);

	/*
	 * With one cluster there is nothing to route: the global model is as
	 * good (better, as it also sees the targets), so the gap above comes
	 * from the clusters, not from the way the fits are made.
	 */
	s = make(60, 40, 1, 42);
	if (s.label)
	{
		r = compare_routing(&s, 1, 0);
		printf("  one cluster 60 x 40: one global model %.4f, one per cluster %.4f\n",
			   r.global, r.per_cluster);
		CHECK(r.global <= r.per_cluster);
		CHECK(r.global < 0.25);
	}
	moe_synthetic_free(&s);
}

static double
correlation(const double *a, const double *b, int n)
{
	double		ma = 0,
				mb = 0,
				sab = 0,
				saa = 0,
				sbb = 0;

	for (int i = 0; i < n; i++)
		ma += a[i] / n, mb += b[i] / n;
	for (int i = 0; i < n; i++)
	{
		sab += (a[i] - ma) * (b[i] - mb);
		saa += (a[i] - ma) * (a[i] - ma);
		sbb += (b[i] - mb) * (b[i] - mb);
	}
	return sab / sqrt(saa * sbb);
}

/* Targets of one family rank drugs alike; different families do not. */
static void
test_families_rank_drugs_differently(void)
{
	moe_synthetic s = make(60, 40, 4, 42);
	double		col[40][60];
	double		worst_same = 1,
				worst_other = 0;

	if (s.label == NULL)
		return;
	for (int t = 0; t < 40; t++)
		for (int d = 0; d < 60; d++)
			col[t][d] = s.label[d * 40 + t];
	for (int t = 0; t < 40; t++)
		for (int u = t + 1; u < 40; u++)
		{
			double		r = correlation(col[t], col[u], 60);

			if (s.target_cluster[t] == s.target_cluster[u])
				worst_same = fmin(worst_same, r);
			else
				worst_other = fmax(worst_other, fabs(r));
		}
	printf("  drug-ranking correlation: same family >= %.3f, other families |r| <= %.3f\n",
		   worst_same, worst_other);
	CHECK(worst_same > 0.95);
	CHECK(worst_other < 0.7);
	moe_synthetic_free(&s);
}

typedef struct bad_case
{
	const char *what;
	int			n_drugs,
				n_targets,
				n_clusters,
				drug_dim,
				target_dim;
	float		noise;
	const char *name;			/* must appear in the message */
	const char *range;			/* must appear in the message */
} bad_case;

static void
test_bad_specs(void)
{
	const bad_case cases[] = {
		{"n_drugs 0", 0, 40, 4, 32, 32, 0.1f, "n_drugs", "between 1 and 100000"},
		{"n_drugs < 0", -5, 40, 4, 32, 32, 0.1f, "n_drugs", "between 1 and 100000"},
		{"n_drugs too big", 100001, 1, 1, 32, 32, 0.1f, "n_drugs", "between 1 and 100000"},
		{"n_targets 0", 40, 0, 1, 32, 32, 0.1f, "n_targets", "between 1 and 100000"},
		{"n_targets too big", 1, 100001, 4, 32, 32, 0.1f, "n_targets", "between 1 and 100000"},
		{"too many pairs", 100000, 101, 4, 32, 32, 0.1f, "n_drugs x n_targets", "at most 10000000"},
		{"too many pairs 2", 10001, 1000, 4, 32, 32, 0.1f, "n_drugs x n_targets", "at most 10000000"},
		{"n_clusters 0", 40, 40, 0, 32, 32, 0.1f, "n_clusters", "between 1 and 40"},
		{"n_clusters < 0", 40, 40, -1, 32, 32, 0.1f, "n_clusters", "between 1 and 40"},
		{"n_clusters > n_targets", 40, 40, 41, 32, 32, 0.1f, "n_clusters", "between 1 and 40"},
		{"n_clusters > 64", 40, 100, 65, 32, 32, 0.1f, "n_clusters", "between 1 and 64"},
		{"drug_dim 0", 40, 40, 4, 0, 32, 0.1f, "drug_dim", "between 1 and 4096"},
		{"drug_dim too big", 40, 40, 4, 4097, 32, 0.1f, "drug_dim", "between 1 and 4096"},
		{"target_dim 0", 40, 40, 4, 32, 0, 0.1f, "target_dim", "between 1 and 4096"},
		{"target_dim too big", 40, 40, 4, 32, 4097, 0.1f, "target_dim", "between 1 and 4096"},
		{"noise < 0", 40, 40, 4, 32, 32, -0.01f, "noise", "between 0 and 10"},
		{"noise > 10", 40, 40, 4, 32, 32, 10.01f, "noise", "between 0 and 10"},
		{"noise NaN", 40, 40, 4, 32, 32, NAN, "noise", "between 0 and 10"},
		{"noise +inf", 40, 40, 4, 32, 32, INFINITY, "noise", "between 0 and 10"},
		{"noise -inf", 40, 40, 4, 32, 32, -INFINITY, "noise", "between 0 and 10"},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
	{
		const bad_case *c = &cases[i];
		moe_synthetic_spec spec = spec_of(c->n_drugs, c->n_targets, c->n_clusters, 1);
		moe_synthetic out,
					zero;
		moe_error	err;
		moe_status	st;

		spec.drug_dim = c->drug_dim;
		spec.target_dim = c->target_dim;
		spec.noise = c->noise;
		memset(&out, 0xab, sizeof(out));
		memset(&zero, 0, sizeof(zero));
		moe_error_clear(&err);
		st = moe_synthetic_generate(&spec, &out, &err);
		CHECK_INT(st, MOE_ERR_INVALID);
		CHECK_INT(err.status, MOE_ERR_INVALID);
		CHECK(strstr(err.message, c->name) != NULL);
		CHECK(strstr(err.message, c->range) != NULL);
		CHECK(memcmp(&out, &zero, sizeof(out)) == 0);
		if (st != MOE_ERR_INVALID || strstr(err.message, c->name) == NULL ||
			strstr(err.message, c->range) == NULL)
			fprintf(stderr, "  case \"%s\": status %d, message \"%s\"\n", c->what, (int) st, err.message);
		moe_synthetic_free(&out);
		/* a NULL error report is allowed */
		CHECK_INT(moe_synthetic_generate(&spec, &out, NULL), MOE_ERR_INVALID);
	}

	/* NULL spec or output */
	{
		moe_synthetic_spec spec;
		moe_synthetic out;
		moe_error	err;

		moe_synthetic_defaults(&spec);
		memset(&out, 0xab, sizeof(out));
		CHECK_INT(moe_synthetic_generate(NULL, &out, &err), MOE_ERR_INVALID);
		CHECK(out.label == NULL && out.drug_vec == NULL && out.n_drugs == 0);
		CHECK_INT(moe_synthetic_generate(&spec, NULL, &err), MOE_ERR_INVALID);
	}
}

/* The edges of every range are accepted. */
static void
test_edges_accepted(void)
{
	const int	edges[][6] = {
		/* n_drugs, n_targets, n_clusters, drug_dim, target_dim, noise x 10 */
		{1, 1, 1, 1, 1, 0},
		{100000, 1, 1, 1, 1, 100},
		{1, 100000, 64, 1, 1, 100},
		{2, 100, 64, 1, 2, 5},
		{3, 17, 17, 1, 1, 1},
		{2, 2, 1, 4096, 4096, 1},
	};

	for (size_t i = 0; i < sizeof(edges) / sizeof(edges[0]); i++)
	{
		moe_synthetic_spec spec = spec_of(edges[i][0], edges[i][1], edges[i][2], 3);
		moe_synthetic s;
		size_t		n;
		int			ok = 1;

		spec.drug_dim = edges[i][3];
		spec.target_dim = edges[i][4];
		spec.noise = edges[i][5] / 10.0f;
		s = generate(&spec);
		n = (size_t) spec.n_drugs * spec.n_targets;
		for (size_t j = 0; j < n && s.label; j++)
			ok &= s.label[j] >= 4.0f && s.label[j] <= 10.0f;
		CHECK(s.label != NULL && ok);
		moe_synthetic_free(&s);
	}
}

/*
 * Allocation failure: under a 1 GiB address-space limit, 100000 drugs of
 * 4096 values (1.6 GB) cannot be allocated.  The call must report it, leave
 * the output zeroed, and free what it did get (valgrind checks the leak).
 */
static void
test_out_of_memory(void)
{
	struct rlimit old,
				lim;
	moe_synthetic_spec spec = spec_of(100000, 2, 2, 1);
	moe_synthetic out;
	moe_error	err;
	moe_status	st;

	spec.drug_dim = 4096;
	spec.target_dim = 4096;
	if (getrlimit(RLIMIT_AS, &old) != 0)
		return;
	lim = old;
	if (lim.rlim_cur == RLIM_INFINITY || lim.rlim_cur > ((rlim_t) 1 << 30))
		lim.rlim_cur = (rlim_t) 1 << 30;
	if (setrlimit(RLIMIT_AS, &lim) != 0)
	{
		printf("  (skipped: cannot lower RLIMIT_AS)\n");
		return;
	}
	memset(&out, 0xab, sizeof(out));
	st = moe_synthetic_generate(&spec, &out, &err);
	setrlimit(RLIMIT_AS, &old);
	CHECK_INT(st, MOE_ERR_NOMEM);
	if (st == MOE_ERR_NOMEM)
		CHECK(strstr(err.message, "out of memory") != NULL);
	CHECK(out.label == NULL && out.drug_vec == NULL && out.target_vec == NULL &&
		  out.target_cluster == NULL && out.n_drugs == 0 && out.n_targets == 0);
	moe_synthetic_free(&out);
}

int
main(void)
{
	RUN(test_defaults);
	RUN(test_deterministic);
	RUN(test_documented_draw_order);
	RUN(test_pinned_values);
	RUN(test_shapes_and_balance);
	RUN(test_labels_look_like_pkd);
	RUN(test_noise_changes_only_labels);
	RUN(test_labels_are_clipped);
	RUN(test_clusters_are_separable);
	RUN(test_least_squares_solver);
	RUN(test_routing_by_cluster_pays);
	RUN(test_families_rank_drugs_differently);
	RUN(test_bad_specs);
	RUN(test_edges_accepted);
	RUN(test_out_of_memory);
	return unit_summary("test_synthetic");
}
