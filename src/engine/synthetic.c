/*
 * synthetic.c — the synthetic benchmark of synthetic.h.
 *
 * Random numbers are drawn from one moe_rng in this fixed order: cluster
 * centres, cluster drug directions, cluster offsets, then per target its
 * vector and its own offset, then the drug vectors, then one noise draw per
 * pair in row-major order.  docs/synthetic.md has the formulas.
 */
#include "synthetic.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "rng.h"

#define LABEL_MIN 4.0f
#define LABEL_MAX 10.0f

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

static moe_status
validate(const moe_synthetic_spec *s, moe_error *err)
{
	if (s->n_drugs < 1 || s->n_drugs > 100000)
		return moe_fail(err, MOE_ERR_INVALID, "n_drugs must be between 1 and 100000, not %d", s->n_drugs);
	if (s->n_targets < 1 || s->n_targets > 100000)
		return moe_fail(err, MOE_ERR_INVALID, "n_targets must be between 1 and 100000, not %d", s->n_targets);
	if ((long long) s->n_drugs * s->n_targets > 10000000LL)
		return moe_fail(err, MOE_ERR_INVALID, "n_drugs x n_targets must be at most 10000000, not %lld",
						(long long) s->n_drugs * s->n_targets);
	{
		int			max_clusters = s->n_targets < 64 ? s->n_targets : 64;

		if (s->n_clusters < 1 || s->n_clusters > max_clusters)
			return moe_fail(err, MOE_ERR_INVALID, "n_clusters must be between 1 and %d, not %d",
							max_clusters, s->n_clusters);
	}
	if (s->drug_dim < 1 || s->drug_dim > 4096)
		return moe_fail(err, MOE_ERR_INVALID, "drug_dim must be between 1 and 4096, not %d", s->drug_dim);
	if (s->target_dim < 1 || s->target_dim > 4096)
		return moe_fail(err, MOE_ERR_INVALID, "target_dim must be between 1 and 4096, not %d", s->target_dim);
	if (!(s->noise >= 0.0f && s->noise <= 10.0f))
		return moe_fail(err, MOE_ERR_INVALID, "noise must be between 0 and 10, not %g", (double) s->noise);
	return MOE_OK;
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
	const int	K = spec->n_clusters,
				D = spec->drug_dim,
				T = spec->target_dim;
	float	   *centre = NULL,
			   *direction = NULL,
			   *cluster_offset = NULL,
			   *target_offset = NULL;
	moe_rng		rng;
	moe_status	st;

	memset(out, 0, sizeof(*out));
	if ((st = validate(spec, err)) != MOE_OK)
		return st;

	centre = malloc(sizeof(float) * K * T);
	direction = malloc(sizeof(float) * K * D);
	cluster_offset = malloc(sizeof(float) * K);
	target_offset = malloc(sizeof(float) * spec->n_targets);
	out->drug_vec = malloc(sizeof(float) * (size_t) spec->n_drugs * D);
	out->target_vec = malloc(sizeof(float) * (size_t) spec->n_targets * T);
	out->target_cluster = malloc(sizeof(int) * spec->n_targets);
	out->label = malloc(sizeof(float) * (size_t) spec->n_drugs * spec->n_targets);
	if (!centre || !direction || !cluster_offset || !target_offset || !out->drug_vec ||
		!out->target_vec || !out->target_cluster || !out->label)
	{
		st = moe_fail(err, MOE_ERR_NOMEM, "out of memory generating %d x %d synthetic pairs",
					  spec->n_drugs, spec->n_targets);
		moe_synthetic_free(out);
		goto done;
	}
	out->n_drugs = spec->n_drugs;
	out->n_targets = spec->n_targets;
	out->drug_dim = D;
	out->target_dim = T;

	moe_rng_seed(&rng, spec->seed);
	/* clusters: well separated centres, a unit drug direction, an offset */
	for (int i = 0; i < K * T; i++)
		centre[i] = 3.0f * moe_rng_normal(&rng);
	for (int k = 0; k < K; k++)
	{
		double		norm = 0.0;

		for (int j = 0; j < D; j++)
		{
			direction[k * D + j] = moe_rng_normal(&rng);
			norm += (double) direction[k * D + j] * direction[k * D + j];
		}
		norm = norm > 0.0 ? sqrt(norm) : 1.0;
		for (int j = 0; j < D; j++)
			direction[k * D + j] = (float) (direction[k * D + j] / norm);
	}
	for (int k = 0; k < K; k++)
		cluster_offset[k] = 2.0f * moe_rng_uniform(&rng) - 1.0f;
	/* targets: cluster t mod K, a noisy copy of its centre, a small offset */
	for (int t = 0; t < spec->n_targets; t++)
	{
		int			k = t % K;

		out->target_cluster[t] = k;
		for (int j = 0; j < T; j++)
			out->target_vec[(size_t) t * T + j] = centre[k * T + j] + 0.5f * moe_rng_normal(&rng);
		target_offset[t] = 0.3f * moe_rng_normal(&rng);
	}
	for (size_t i = 0; i < (size_t) spec->n_drugs * D; i++)
		out->drug_vec[i] = moe_rng_normal(&rng);
	/* label = 6 + 1.5 tanh(w_k . x_d) + a_k + s_t + noise, clipped */
	for (int d = 0; d < spec->n_drugs; d++)
		for (int t = 0; t < spec->n_targets; t++)
		{
			int			k = out->target_cluster[t];
			double		dot = 0.0;
			float		y;

			for (int j = 0; j < D; j++)
				dot += (double) direction[k * D + j] * out->drug_vec[(size_t) d * D + j];
			y = 6.0f + 1.5f * (float) tanh(dot) + cluster_offset[k] + target_offset[t] +
				spec->noise * moe_rng_normal(&rng);
			out->label[(size_t) d * spec->n_targets + t] =
				y < LABEL_MIN ? LABEL_MIN : y > LABEL_MAX ? LABEL_MAX : y;
		}
	st = MOE_OK;

done:
	free(centre);
	free(direction);
	free(cluster_offset);
	free(target_offset);
	return st;
}
