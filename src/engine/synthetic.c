/*
 * synthetic.c — the synthetic benchmark of synthetic.h.
 *
 * All random numbers come from one moe_rng seeded with spec->seed, drawn in
 * this fixed order (docs/synthetic.md has the formulas):
 *
 *   1. cluster centres, K x target_dim normals, cluster-major;
 *   2. cluster drug directions, K x drug_dim normals, cluster-major,
 *      each row normalised after it is drawn;
 *   3. cluster offsets, K uniforms;
 *   4. per target t = 0..n_targets-1: target_dim normals for its vector,
 *      then one normal for its own offset;
 *   5. drug vectors, n_drugs x drug_dim normals, row-major;
 *   6. one noise normal per pair, drug-major (d outer, t inner).  These
 *      come last, so the noise level changes the labels and nothing else.
 *
 * Every moe_rng_normal consumes two moe_rng_next outputs, every
 * moe_rng_uniform one.  Dot products are summed in double in index order,
 * so the same seed gives bit-identical data from run to run.
 */
#include "synthetic.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "rng.h"

#define MAX_ENTITIES	100000
#define MAX_PAIRS		10000000LL
#define MAX_CLUSTERS	64
#define MAX_DIM			4096
#define MAX_NOISE		10.0f

#define LABEL_BASE		6.0f	/* centre of the pKd-like scale */
#define LABEL_SPREAD	1.5f	/* amplitude of the drug-dependent term */
#define LABEL_MIN		4.0f
#define LABEL_MAX		10.0f
#define CENTRE_SCALE	3.0f	/* std of the cluster centres */
#define TARGET_SCATTER	0.5f	/* std of a target around its centre */
#define TARGET_OFFSET	0.3f	/* std of a target's own offset */

void
moe_synthetic_defaults(moe_synthetic_spec *spec)
{
	memset(spec, 0, sizeof(*spec));
	spec->n_drugs = 40;
	spec->n_targets = 40;
	spec->n_clusters = 4;
	spec->drug_dim = 32;
	spec->target_dim = 32;
	spec->noise = 0.1f;
	spec->seed = 42;
}

moe_status
moe_synthetic_validate(const moe_synthetic_spec *s, moe_error *err)
{
	int			max_clusters;

	if (s->n_drugs < 1 || s->n_drugs > MAX_ENTITIES)
		return moe_fail(err, MOE_ERR_INVALID, "n_drugs must be between 1 and %d, not %d",
						MAX_ENTITIES, s->n_drugs);
	if (s->n_targets < 1 || s->n_targets > MAX_ENTITIES)
		return moe_fail(err, MOE_ERR_INVALID, "n_targets must be between 1 and %d, not %d",
						MAX_ENTITIES, s->n_targets);
	if ((long long) s->n_drugs * s->n_targets > MAX_PAIRS)
		return moe_fail(err, MOE_ERR_INVALID,
						"n_drugs x n_targets must be at most %lld pairs, not %lld",
						MAX_PAIRS, (long long) s->n_drugs * s->n_targets);
	max_clusters = s->n_targets < MAX_CLUSTERS ? s->n_targets : MAX_CLUSTERS;
	if (s->n_clusters < 1 || s->n_clusters > max_clusters)
		return moe_fail(err, MOE_ERR_INVALID,
						"n_clusters must be between 1 and %d (the smaller of n_targets and %d), not %d",
						max_clusters, MAX_CLUSTERS, s->n_clusters);
	if (s->drug_dim < 1 || s->drug_dim > MAX_DIM)
		return moe_fail(err, MOE_ERR_INVALID, "drug_dim must be between 1 and %d, not %d",
						MAX_DIM, s->drug_dim);
	if (s->target_dim < 1 || s->target_dim > MAX_DIM)
		return moe_fail(err, MOE_ERR_INVALID, "target_dim must be between 1 and %d, not %d",
						MAX_DIM, s->target_dim);
	/* written so that NaN fails too */
	if (!(s->noise >= 0.0f && s->noise <= MAX_NOISE))
		return moe_fail(err, MOE_ERR_INVALID, "noise must be a finite number between 0 and %g, not %g",
						(double) MAX_NOISE, (double) s->noise);
	return MOE_OK;
}

/* malloc of n elements of size bytes, NULL on overflow or failure. */
static void *
alloc_array(size_t n, size_t size)
{
	if (n == 0 || n > SIZE_MAX / size)
		return NULL;
	return malloc(n * size);
}

void
moe_synthetic_free(moe_synthetic *data)
{
	if (data == NULL)
		return;
	free(data->drug_vec);
	free(data->target_vec);
	free(data->target_cluster);
	free(data->label);
	memset(data, 0, sizeof(*data));
}

moe_status
moe_synthetic_generate(const moe_synthetic_spec *spec, moe_synthetic *out, moe_error *err)
{
	float	   *centre = NULL,
			   *direction = NULL,
			   *cluster_offset = NULL,
			   *target_offset = NULL;
	size_t		n_drugs,
				n_targets,
				K,
				D,
				T;
	moe_rng		rng;
	moe_status	st;

	if (out == NULL)
		return moe_fail(err, MOE_ERR_INVALID, "moe_synthetic_generate needs an output");
	memset(out, 0, sizeof(*out));
	if (spec == NULL)
		return moe_fail(err, MOE_ERR_INVALID, "moe_synthetic_generate needs a spec");
	if ((st = moe_synthetic_validate(spec, err)) != MOE_OK)
		return st;

	n_drugs = (size_t) spec->n_drugs;
	n_targets = (size_t) spec->n_targets;
	K = (size_t) spec->n_clusters;
	D = (size_t) spec->drug_dim;
	T = (size_t) spec->target_dim;

	centre = alloc_array(K * T, sizeof(float));
	direction = alloc_array(K * D, sizeof(float));
	cluster_offset = alloc_array(K, sizeof(float));
	target_offset = alloc_array(n_targets, sizeof(float));
	/* n_drugs * D <= 100000 * 4096 fits size_t on 64-bit; alloc_array checks */
	out->drug_vec = alloc_array(n_drugs * D, sizeof(float));
	out->target_vec = alloc_array(n_targets * T, sizeof(float));
	out->target_cluster = alloc_array(n_targets, sizeof(int));
	out->label = alloc_array(n_drugs * n_targets, sizeof(float));
	if (!centre || !direction || !cluster_offset || !target_offset || !out->drug_vec ||
		!out->target_vec || !out->target_cluster || !out->label)
	{
		st = moe_fail(err, MOE_ERR_NOMEM,
					  "out of memory generating %d x %d synthetic pairs of dimensions %d and %d",
					  spec->n_drugs, spec->n_targets, spec->drug_dim, spec->target_dim);
		moe_synthetic_free(out);
		goto done;
	}
	out->n_drugs = spec->n_drugs;
	out->n_targets = spec->n_targets;
	out->drug_dim = spec->drug_dim;
	out->target_dim = spec->target_dim;

	moe_rng_seed(&rng, spec->seed);

	/* 1. cluster centres c_k ~ 3 N(0, I), far apart in target space */
	for (size_t i = 0; i < K * T; i++)
		centre[i] = CENTRE_SCALE * moe_rng_normal(&rng);

	/* 2. cluster drug directions w_k = g / |g|, g ~ N(0, I) */
	for (size_t k = 0; k < K; k++)
	{
		float	   *w = direction + k * D;
		double		norm = 0.0;

		for (size_t j = 0; j < D; j++)
		{
			w[j] = moe_rng_normal(&rng);
			norm += (double) w[j] * w[j];
		}
		/* g = 0 has probability ~0; keep it finite if it ever happens */
		norm = norm > 0.0 ? sqrt(norm) : 1.0;
		for (size_t j = 0; j < D; j++)
			w[j] = (float) (w[j] / norm);
	}

	/* 3. cluster offsets a_k ~ U(-1, 1) */
	for (size_t k = 0; k < K; k++)
		cluster_offset[k] = 2.0f * moe_rng_uniform(&rng) - 1.0f;

	/* 4. targets: cluster t mod K, x_t = c_k + 0.5 N(0, I), s_t ~ 0.3 N(0, 1) */
	for (size_t t = 0; t < n_targets; t++)
	{
		size_t		k = t % K;
		float	   *x = out->target_vec + t * T;

		out->target_cluster[t] = (int) k;
		for (size_t j = 0; j < T; j++)
			x[j] = centre[k * T + j] + TARGET_SCATTER * moe_rng_normal(&rng);
		target_offset[t] = TARGET_OFFSET * moe_rng_normal(&rng);
	}

	/* 5. drug vectors x_d ~ N(0, I) */
	for (size_t i = 0; i < n_drugs * D; i++)
		out->drug_vec[i] = moe_rng_normal(&rng);

	/*
	 * 6. label = clip(6 + 1.5 tanh(w_k . x_d) + a_k + s_t + noise e, 4, 10).
	 * |w_k| = 1 and x_d ~ N(0, I), so w_k . x_d ~ N(0, 1) whatever
	 * drug_dim is and tanh works mostly in its graded range.
	 */
	for (size_t d = 0; d < n_drugs; d++)
	{
		const float *x = out->drug_vec + d * D;

		for (size_t t = 0; t < n_targets; t++)
		{
			size_t		k = (size_t) out->target_cluster[t];
			const float *w = direction + k * D;
			double		dot = 0.0;
			float		y;

			for (size_t j = 0; j < D; j++)
				dot += (double) w[j] * x[j];
			y = LABEL_BASE + LABEL_SPREAD * (float) tanh(dot) + cluster_offset[k] +
				target_offset[t] + spec->noise * moe_rng_normal(&rng);
			out->label[d * n_targets + t] =
				y < LABEL_MIN ? LABEL_MIN : y > LABEL_MAX ? LABEL_MAX : y;
		}
	}
	st = MOE_OK;

done:
	free(centre);
	free(direction);
	free(cluster_offset);
	free(target_offset);
	return st;
}
