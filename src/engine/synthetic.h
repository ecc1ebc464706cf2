/*
 * synthetic.h — a synthetic drug-target affinity benchmark with planted
 * clusters, for demos and fast tests.
 *
 * Targets fall into n_clusters families; each family binds drugs through
 * its own function of the drug vector, so one global regressor does poorly
 * and a router that sends each family to its own expert does well.  See
 * docs/synthetic.md for the exact generative model.
 */
#ifndef MOE_SYNTHETIC_H
#define MOE_SYNTHETIC_H

#include <stddef.h>
#include <stdint.h>

#include "moe_status.h"

typedef struct moe_synthetic_spec
{
	int			n_drugs;
	int			n_targets;
	int			n_clusters;
	int			drug_dim;		/* length of each drug vector */
	int			target_dim;		/* length of each target vector */
	float		noise;			/* std of the label noise */
	uint64_t	seed;
} moe_synthetic_spec;

typedef struct moe_synthetic
{
	int			n_drugs;
	int			n_targets;
	int			drug_dim;
	int			target_dim;
	float	   *drug_vec;		/* n_drugs x drug_dim, row-major */
	float	   *target_vec;		/* n_targets x target_dim */
	int		   *target_cluster; /* n_targets, in 0..n_clusters-1 */
	float	   *label;			/* n_drugs x n_targets, label[d * n_targets + t] */
} moe_synthetic;

/* Fill spec with the defaults (drug_dim 32, target_dim 32, noise 0.1). */
void		moe_synthetic_defaults(moe_synthetic_spec *spec);

/* MOE_ERR_INVALID naming the first out-of-range field (generate checks too). */
moe_status	moe_synthetic_validate(const moe_synthetic_spec *spec, moe_error *err);
moe_status	moe_synthetic_generate(const moe_synthetic_spec *spec, moe_synthetic *out,
								   moe_error *err);
void		moe_synthetic_free(moe_synthetic *data);

#endif
