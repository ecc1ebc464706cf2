/*
 * featurizer.c — featurizers described by name and parameters (featurizer.h).
 */
#include "featurizer.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "ecfp.h"
#include "featurize.h"
#include "protein_features.h"

static const char *const names[MOE_FZ_N_KINDS] = {
	"user", "smiles", "ecfp", "protein", "protein_triad", "protein_cksaap"
};

moe_featurizer_kind
moe_featurizer_kind_parse(const char *name)
{
	for (int k = MOE_FZ_SMILES; k < MOE_FZ_N_KINDS; k++)
		if (strcmp(name, names[k]) == 0)
			return (moe_featurizer_kind) k;
	return MOE_FZ_NONE;
}

const char *
moe_featurizer_name(moe_featurizer_kind kind)
{
	return (int) kind >= 0 && kind < MOE_FZ_N_KINDS ? names[kind] : "unknown";
}

void
moe_featurizer_defaults(moe_featurizer_kind kind, moe_featurizer *f)
{
	memset(f, 0, sizeof(*f));
	f->kind = kind;
	switch (kind)
	{
		case MOE_FZ_SMILES:
			f->dim = MOE_SMILES_DEFAULT_DIM;
			f->max_n = MOE_SMILES_DEFAULT_MAX_N;
			break;
		case MOE_FZ_ECFP:
			f->dim = MOE_ECFP_DEFAULT_DIM;
			f->radius = MOE_ECFP_DEFAULT_RADIUS;
			f->counts = true;
			break;
		case MOE_FZ_PROTEIN:
			f->k = MOE_PROTEIN_DEFAULT_K;
			break;
		case MOE_FZ_PROTEIN_CKSAAP:
			f->max_gap = MOE_CKSAAP_DEFAULT_GAP;
			break;
		case MOE_FZ_PROTEIN_TRIAD:
		case MOE_FZ_NONE:
		case MOE_FZ_N_KINDS:
			break;
	}
}

bool
moe_featurizer_is_drug(moe_featurizer_kind kind)
{
	return kind == MOE_FZ_SMILES || kind == MOE_FZ_ECFP;
}

moe_status
moe_featurizer_validate(const moe_featurizer *f, moe_error *err)
{
	switch (f->kind)
	{
		case MOE_FZ_SMILES:
			if (f->dim < 1 || f->dim > MOE_SMILES_MAX_DIM)
				return moe_fail(err, MOE_ERR_INVALID, "dim must be between 1 and %d, not %d",
								MOE_SMILES_MAX_DIM, f->dim);
			if (f->max_n < 1 || f->max_n > MOE_SMILES_MAX_N)
				return moe_fail(err, MOE_ERR_INVALID, "max_n must be between 1 and %d, not %d",
								MOE_SMILES_MAX_N, f->max_n);
			return MOE_OK;
		case MOE_FZ_ECFP:
			if (f->dim < 1 || f->dim > MOE_ECFP_MAX_DIM)
				return moe_fail(err, MOE_ERR_INVALID, "dim must be between 1 and %d, not %d",
								MOE_ECFP_MAX_DIM, f->dim);
			if (f->radius < 0 || f->radius > MOE_ECFP_MAX_RADIUS)
				return moe_fail(err, MOE_ERR_INVALID, "radius must be between 0 and %d, not %d",
								MOE_ECFP_MAX_RADIUS, f->radius);
			return MOE_OK;
		case MOE_FZ_PROTEIN:
			if (moe_protein_feature_dim(f->k) == 0)
				return moe_fail(err, MOE_ERR_INVALID, "k must be between 1 and %d, not %d",
								MOE_PROTEIN_MAX_K, f->k);
			return MOE_OK;
		case MOE_FZ_PROTEIN_CKSAAP:
			if (moe_cksaap_feature_dim(f->max_gap) == 0)
				return moe_fail(err, MOE_ERR_INVALID, "max_gap must be between 0 and %d, not %d",
								MOE_CKSAAP_MAX_GAP, f->max_gap);
			return MOE_OK;
		case MOE_FZ_PROTEIN_TRIAD:
		case MOE_FZ_NONE:
			return MOE_OK;
		case MOE_FZ_N_KINDS:
		default:
			return moe_fail(err, MOE_ERR_INVALID, "unknown featurizer");
	}
}

int
moe_featurizer_dim(const moe_featurizer *f)
{
	switch (f->kind)
	{
		case MOE_FZ_SMILES:
		case MOE_FZ_ECFP:
			return f->dim;
		case MOE_FZ_PROTEIN:
			return moe_protein_feature_dim(f->k);
		case MOE_FZ_PROTEIN_TRIAD:
			return MOE_TRIAD_DIM;
		case MOE_FZ_PROTEIN_CKSAAP:
			return moe_cksaap_feature_dim(f->max_gap);
		case MOE_FZ_NONE:
		case MOE_FZ_N_KINDS:
		default:
			return 0;
	}
}

moe_status
moe_featurizer_apply(const moe_featurizer *f, const char *text, size_t len, float *out, moe_error *err)
{
	moe_status	st = moe_featurizer_validate(f, err);

	if (st != MOE_OK)
		return st;
	switch (f->kind)
	{
		case MOE_FZ_SMILES:
			return moe_featurize_smiles(text, len, f->dim, f->max_n, out, err);
		case MOE_FZ_ECFP:
			return moe_featurize_ecfp(text, len, f->radius, f->dim, f->counts, out, err);
		case MOE_FZ_PROTEIN:
			return moe_featurize_protein(text, len, f->k, out, err);
		case MOE_FZ_PROTEIN_TRIAD:
			return moe_featurize_protein_triad(text, len, out, err);
		case MOE_FZ_PROTEIN_CKSAAP:
			return moe_featurize_protein_cksaap(text, len, f->max_gap, out, err);
		case MOE_FZ_NONE:
		case MOE_FZ_N_KINDS:
		default:
			return moe_fail(err, MOE_ERR_INVALID,
							"this model was trained on vectors supplied by the user: it cannot featurize text");
	}
}

void
moe_featurizer_describe(const moe_featurizer *f, char *buf, size_t size)
{
	switch (f->kind)
	{
		case MOE_FZ_SMILES:
			snprintf(buf, size, "moe_featurize_smiles(smiles, dim => %d, max_n => %d)", f->dim, f->max_n);
			break;
		case MOE_FZ_ECFP:
			snprintf(buf, size, "moe_featurize_ecfp(smiles, radius => %d, dim => %d, counts => %s)",
					 f->radius, f->dim, f->counts ? "true" : "false");
			break;
		case MOE_FZ_PROTEIN:
			snprintf(buf, size, "moe_featurize_protein(sequence, k => %d)", f->k);
			break;
		case MOE_FZ_PROTEIN_TRIAD:
			snprintf(buf, size, "moe_featurize_protein_triad(sequence)");
			break;
		case MOE_FZ_PROTEIN_CKSAAP:
			snprintf(buf, size, "moe_featurize_protein_cksaap(sequence, max_gap => %d)", f->max_gap);
			break;
		case MOE_FZ_NONE:
		case MOE_FZ_N_KINDS:
		default:
			snprintf(buf, size, "vectors supplied by the user");
			break;
	}
}

/* log(1 + count) for a whole count, as the featurizers round it. */
static bool
is_log_count(float v)
{
	double		count;

	if (!(v >= 0.0f))
		return false;
	count = round(expm1((double) v));
	return (float) log1p(count) == v;
}

/* Blocks of the given widths, each summing to 1 (within float rounding of
 * its terms) or all zero; no negative value. */
static bool
frequency_blocks(const float *x, const int *widths, int blocks, char *why, size_t why_size)
{
	int			at = 0;

	for (int b = 0; b < blocks; b++)
	{
		double		sum = 0.0;

		for (int i = 0; i < widths[b]; i++)
		{
			if (x[at + i] < 0.0f)
			{
				snprintf(why, why_size, "element %d is negative", at + i + 1);
				return false;
			}
			sum += x[at + i];
		}
		if (sum != 0.0 && fabs(sum - 1.0) > 1e-3)
		{
			snprintf(why, why_size, "elements %d to %d sum to %.4g, not to 1 (a frequency block)", at + 1,
					 at + widths[b], sum);
			return false;
		}
		at += widths[b];
	}
	return true;
}

bool
moe_featurizer_plausible(const moe_featurizer *f, const float *x, int n, char *why, size_t why_size)
{
	int			widths[8];

	if (n != moe_featurizer_dim(f))
	{
		snprintf(why, why_size, "it has %d elements, not %d", n, moe_featurizer_dim(f));
		return f->kind == MOE_FZ_NONE;
	}
	switch (f->kind)
	{
		case MOE_FZ_SMILES:
		case MOE_FZ_ECFP:
			for (int i = 0; i < n; i++)
			{
				bool		ok = f->kind == MOE_FZ_ECFP && !f->counts
					? (x[i] == 0.0f || x[i] == 1.0f) : is_log_count(x[i]);

				if (!ok)
				{
					snprintf(why, why_size, "element %d is %g, which %s cannot make", i + 1, (double) x[i],
							 f->kind == MOE_FZ_ECFP && !f->counts ? "a bit fingerprint (0 or 1)"
							 : "log(1 + count)");
					return false;
				}
			}
			return true;
		case MOE_FZ_PROTEIN:
			for (int k = 1, w = 20; k <= f->k; k++, w *= 20)
				widths[k - 1] = w;
			return frequency_blocks(x, widths, f->k, why, why_size);
		case MOE_FZ_PROTEIN_TRIAD:
			widths[0] = MOE_TRIAD_DIM;
			return frequency_blocks(x, widths, 1, why, why_size);
		case MOE_FZ_PROTEIN_CKSAAP:
			for (int g = 0; g <= f->max_gap; g++)
				widths[g] = 400;
			return frequency_blocks(x, widths, f->max_gap + 1, why, why_size);
		case MOE_FZ_NONE:
		case MOE_FZ_N_KINDS:
		default:
			return true;
	}
}
