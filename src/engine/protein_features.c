/*
 * protein_features.c — conjoint triad and CKSAAP protein descriptors.
 *
 * Both read the sequence through (pointer, length), validate all of it
 * before writing out, count in the output floats (exact up to 2^24 per
 * slot) and divide in double precision before rounding to float, like
 * moe_featurize_protein.  See docs/featurizers.md.
 */
#include "protein_features.h"
#include "amino_acids.h"
#include "featurize.h"

#include <limits.h>


/*
 * Shen et al. (2007) classes, by aa_index order ACDEFGHIKLMNPQRSTVWY:
 *   0 {A, G, V}  1 {I, L, F, P}  2 {Y, M, T, S}  3 {H, N, Q, W}
 *   4 {R, K}     5 {D, E}        6 {C}
 */
static const int triad_class_of[20] = {
	/* A */ 0, /* C */ 6, /* D */ 5, /* E */ 5, /* F */ 1,
	/* G */ 0, /* H */ 3, /* I */ 1, /* K */ 4, /* L */ 1,
	/* M */ 2, /* N */ 3, /* P */ 1, /* Q */ 3, /* R */ 4,
	/* S */ 2, /* T */ 2, /* V */ 0, /* W */ 3, /* Y */ 2,
};

int
moe_triad_class(char residue)
{
	int			a = aa_index((unsigned char) residue);

	return (a >= 0 && a < 20) ? triad_class_of[a] : -1;
}

int
moe_cksaap_feature_dim(int max_gap)
{
	if (max_gap < 0 || max_gap > MOE_CKSAAP_MAX_GAP)
		return 0;
	return 400 * (max_gap + 1);
}

moe_status
moe_featurize_protein_triad(const char *seq, size_t len, float *out, moe_error *err)
{
	const unsigned char *s = (const unsigned char *) seq;
	moe_status	st = moe_check_protein_sequence(s, len, out, err);
	size_t		total = 0;

	if (st != MOE_OK)
		return st;
	for (int b = 0; b < MOE_TRIAD_DIM; b++)
		out[b] = 0.0f;
	for (size_t i = 0; i + 2 < len; i++)
	{
		int			a = aa_index(s[i]),
					b = aa_index(s[i + 1]),
					c = aa_index(s[i + 2]);

		if (a == AA_SKIP || b == AA_SKIP || c == AA_SKIP)
			continue;
		out[triad_class_of[a] * 49 + triad_class_of[b] * 7 + triad_class_of[c]] += 1.0f;
		total++;
	}
	if (total > 0)
		for (int b = 0; b < MOE_TRIAD_DIM; b++)
			out[b] = (float) ((double) out[b] / (double) total);
	return MOE_OK;
}

moe_status
moe_featurize_protein_cksaap(const char *seq, size_t len, int max_gap, float *out,
							 moe_error *err)
{
	const unsigned char *s = (const unsigned char *) seq;
	int			dim = moe_cksaap_feature_dim(max_gap);
	moe_status	st;

	if (dim == 0)
		return moe_fail(err, MOE_ERR_INVALID,
						"CKSAAP max_gap must be between 0 and %d, not %d",
						MOE_CKSAAP_MAX_GAP, max_gap);
	st = moe_check_protein_sequence(s, len, out, err);
	if (st != MOE_OK)
		return st;

	for (int b = 0; b < dim; b++)
		out[b] = 0.0f;
	for (int g = 0; g <= max_gap; g++)
	{
		float	   *block = out + 400 * g;
		size_t		total = 0;

		for (size_t i = 0; i + (size_t) g + 1 < len; i++)
		{
			int			a = aa_index(s[i]),
						b = aa_index(s[i + g + 1]);

			if (a == AA_SKIP || b == AA_SKIP)
				continue;
			block[a * 20 + b] += 1.0f;
			total++;
		}
		if (total > 0)
			for (int k = 0; k < 400; k++)
				block[k] = (float) ((double) block[k] / (double) total);
	}
	return MOE_OK;
}
