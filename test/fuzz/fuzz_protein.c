/*
 * fuzz_protein.c — libFuzzer target for the protein featurizers: k-mer
 * composition (featurize.h), conjoint triad and CKSAAP (protein_features.h).
 *
 * Input: byte 0 picks the settings, the rest is the sequence, passed as
 * (pointer, length) into the fuzzer's own exactly sized buffer with no NUL
 * terminator, so that AddressSanitizer sees any read past its end.
 *
 *   byte 0: max_k = b % 5 (0 and 4 are invalid), max_gap = (b / 5) % 8 (6, 7 invalid)
 *
 * Properties checked (a failure aborts, which libFuzzer reports as a crash):
 *   - the three share one alphabet: with valid settings they accept the
 *     same sequences and reject the others at the same position;
 *   - an error leaves out as it was;
 *   - every block of frequencies lies in [0, 1] and sums to 1, or is all zero.
 *
 * Build and run: scripts/fuzz.sh (docs/fuzzing.md).
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "featurize.h"
#include "protein_features.h"

#define SENTINEL	(-7.25f)

#define REQUIRE(cond) \
	do { \
		if (!(cond)) { \
			fprintf(stderr, "fuzz_protein: property failed: %s (line %d)\n", #cond, __LINE__); \
			abort(); \
		} \
	} while (0)

int			LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static float *
sentinel_buffer(int dim)
{
	float	   *out = malloc(sizeof(float) * (size_t) (dim > 0 ? dim : 1));

	REQUIRE(out != NULL);
	for (int b = 0; b < dim; b++)
		out[b] = SENTINEL;
	return out;
}

/* On success: each block of n frequencies sums to 1 or is all zero. */
static void
check_blocks(const float *out, int nblocks, const int *block_len)
{
	int			off = 0;

	for (int k = 0; k < nblocks; k++)
	{
		double		sum = 0.0;

		for (int j = 0; j < block_len[k]; j++)
		{
			REQUIRE(out[off + j] >= 0.0f && out[off + j] <= 1.0f);
			sum += out[off + j];
		}
		REQUIRE(sum == 0.0 || fabs(sum - 1.0) < 1e-3);
		off += block_len[k];
	}
}

/* Status and error position of one call, and the check of its output. */
typedef struct outcome
{
	moe_status	st;
	int			position;
} outcome;

static void
check_status(outcome o, const float *out, int dim, int nblocks, const int *block_len)
{
	if (o.st == MOE_OK)
		check_blocks(out, nblocks, block_len);
	else
		for (int b = 0; b < dim; b++)
			REQUIRE(out[b] == SENTINEL);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *seq;
	size_t		len;
	int			max_k,
				max_gap;
	int			kmer_dim,
				cksaap_dim;
	int			kmer_blocks[MOE_PROTEIN_MAX_K];
	int			cksaap_blocks[MOE_CKSAAP_MAX_GAP + 1];
	int			triad_block[1] = {MOE_TRIAD_DIM};
	outcome		kmer = {MOE_OK, 0},
				triad,
				cksaap = {MOE_OK, 0};
	moe_error	err;
	float	   *out;

	if (size < 1)
		return 0;
	max_k = data[0] % 5;
	max_gap = (data[0] / 5) % 8;
	seq = (const char *) data + 1;
	len = size - 1;

	kmer_dim = moe_protein_feature_dim(max_k);
	cksaap_dim = moe_cksaap_feature_dim(max_gap);
	REQUIRE((kmer_dim > 0) == (max_k >= 1 && max_k <= MOE_PROTEIN_MAX_K));
	REQUIRE((cksaap_dim > 0) == (max_gap >= 0 && max_gap <= MOE_CKSAAP_MAX_GAP));
	for (int k = 0, block = 1; k < max_k && k < MOE_PROTEIN_MAX_K; k++)
		kmer_blocks[k] = (block *= 20);
	for (int g = 0; g <= max_gap && g <= MOE_CKSAAP_MAX_GAP; g++)
		cksaap_blocks[g] = 400;

	/* k-mer composition */
	out = sentinel_buffer(kmer_dim);
	kmer.st = moe_featurize_protein(seq, len, max_k, out, &err);
	kmer.position = kmer.st == MOE_OK ? 0 : err.position;
	if (kmer_dim == 0)
		REQUIRE(kmer.st == MOE_ERR_INVALID);
	else
	{
		REQUIRE(kmer.st == MOE_OK || kmer.st == MOE_ERR_DATA);
		check_status(kmer, out, kmer_dim, max_k, kmer_blocks);
	}
	free(out);

	/* conjoint triad */
	out = sentinel_buffer(MOE_TRIAD_DIM);
	triad.st = moe_featurize_protein_triad(seq, len, out, &err);
	triad.position = triad.st == MOE_OK ? 0 : err.position;
	REQUIRE(triad.st == MOE_OK || triad.st == MOE_ERR_DATA);
	check_status(triad, out, MOE_TRIAD_DIM, 1, triad_block);
	free(out);

	/* CKSAAP */
	out = sentinel_buffer(cksaap_dim);
	cksaap.st = moe_featurize_protein_cksaap(seq, len, max_gap, out, &err);
	cksaap.position = cksaap.st == MOE_OK ? 0 : err.position;
	if (cksaap_dim == 0)
		REQUIRE(cksaap.st == MOE_ERR_INVALID);
	else
	{
		REQUIRE(cksaap.st == MOE_OK || cksaap.st == MOE_ERR_DATA);
		check_status(cksaap, out, cksaap_dim, max_gap + 1, cksaap_blocks);
	}
	free(out);

	/* one alphabet, one verdict, one position */
	if (kmer_dim > 0)
		REQUIRE(kmer.st == triad.st && kmer.position == triad.position);
	if (cksaap_dim > 0)
		REQUIRE(cksaap.st == triad.st && cksaap.position == triad.position);
	if (triad.st != MOE_OK)
		REQUIRE(len == 0 || (triad.position >= 1 && (size_t) triad.position <= len));

	/* the class table agrees with the alphabet */
	for (size_t i = 0; i < len && i < 64; i++)
	{
		int			c = moe_triad_class(seq[i]);

		REQUIRE(c >= -1 && c < MOE_TRIAD_CLASSES);
	}
	return 0;
}
