/*
 * fuzz_smiles.c — libFuzzer target for both drug featurizers and the SMILES
 * graph parser under ECFP.
 *
 * Input: byte 0 picks the n-gram settings, byte 1 the ECFP settings, and
 * the rest is the SMILES text, passed as (pointer, length) into the
 * fuzzer's own exactly sized buffer, with no NUL terminator, so that
 * AddressSanitizer sees any read past its end.
 *
 *   byte 0: max_n = b % 10 (0 and 9 are invalid), dim = {1, 2, 64, 1024}[(b / 10) % 4]
 *   byte 1: radius = b % 6 (5 is invalid), counts = (b / 6) % 2,
 *           dim = {1, 3, 256, 2048}[(b / 12) % 4]
 *
 * Properties checked (a failure aborts, which libFuzzer reports as a crash):
 *   - every status is one the header documents; an error leaves out as it was;
 *   - a parsed graph is consistent (indices in range, neighbour lists
 *     matching the bonds, degrees, charges, positions inside the text);
 *   - n-gram values are log(1 + count) of non-negative counts; ECFP bits are
 *     0 or 1, counts non-negative, and a molecule sets at least one bucket;
 *   - the n-gram tokenizer accepts every text the graph parser accepts.
 *
 * Build and run: scripts/fuzz.sh (docs/fuzzing.md).
 */
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ecfp.h"
#include "featurize.h"
#include "smiles_graph.h"

#define SENTINEL	(-7.25f)

#define REQUIRE(cond) \
	do { \
		if (!(cond)) { \
			fprintf(stderr, "fuzz_smiles: property failed: %s (line %d)\n", #cond, __LINE__); \
			abort(); \
		} \
	} while (0)

int			LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static float *
sentinel_buffer(int dim)
{
	float	   *out = malloc(sizeof(float) * (size_t) dim);

	REQUIRE(out != NULL);
	for (int b = 0; b < dim; b++)
		out[b] = SENTINEL;
	return out;
}

static void
require_untouched(const float *out, int dim)
{
	for (int b = 0; b < dim; b++)
		REQUIRE(out[b] == SENTINEL);
}

/* The graph is what smiles_graph.h says it is. */
static void
check_graph(const moe_mol *mol, size_t len)
{
	REQUIRE(mol->natoms >= 1 && mol->natoms <= MOE_SMILES_GRAPH_MAX_ATOMS);
	REQUIRE(mol->nbonds >= 0 && (size_t) mol->nbonds <= len);
	REQUIRE(mol->nbr_start[0] == 0);
	REQUIRE(mol->nbr_start[mol->natoms] == 2 * mol->nbonds);
	for (int i = 0; i < mol->natoms; i++)
	{
		const moe_mol_atom *a = &mol->atoms[i];

		REQUIRE(a->pos >= 1 && (size_t) a->pos <= len);
		REQUIRE(a->element <= 118);
		REQUIRE(a->charge >= -15 && a->charge <= 15);
		REQUIRE(mol->nbr_start[i + 1] >= mol->nbr_start[i]);
		REQUIRE(a->degree == mol->nbr_start[i + 1] - mol->nbr_start[i]);
		for (int32_t k = mol->nbr_start[i]; k < mol->nbr_start[i + 1]; k++)
		{
			int32_t		w = mol->nbr_atom[k],
						bi = mol->nbr_bond[k];

			REQUIRE(w >= 0 && w < mol->natoms && w != i);
			REQUIRE(bi >= 0 && bi < mol->nbonds);
			REQUIRE((mol->bonds[bi].a == i && mol->bonds[bi].b == w) ||
					(mol->bonds[bi].a == w && mol->bonds[bi].b == i));
		}
	}
	for (int k = 0; k < mol->nbonds; k++)
	{
		const moe_mol_bond *bd = &mol->bonds[k];

		REQUIRE(bd->a >= 0 && bd->a < bd->b && bd->b < mol->natoms);
		REQUIRE(bd->order >= MOE_BOND_SINGLE && bd->order <= MOE_BOND_AROMATIC);
		REQUIRE(bd->pos >= 1 && (size_t) bd->pos <= len);
		if (bd->in_ring)
			REQUIRE(mol->atoms[bd->a].in_ring && mol->atoms[bd->b].in_ring);
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const int ngram_dims[4] = {1, 2, 64, 1024};
	static const int ecfp_dims[4] = {1, 3, 256, 2048};
	const char *smiles;
	size_t		len;
	int			max_n,
				ngram_dim,
				radius,
				ecfp_dim;
	bool		counts;
	bool		parsed = false;
	moe_status	st;
	moe_error	err;
	float	   *out;

	if (size < 2)
		return 0;
	max_n = data[0] % 10;
	ngram_dim = ngram_dims[(data[0] / 10) % 4];
	radius = data[1] % 6;
	counts = (data[1] / 6) % 2 == 1;
	ecfp_dim = ecfp_dims[(data[1] / 12) % 4];
	smiles = (const char *) data + 2;
	len = size - 2;

	/* the graph parser on its own, and the identifiers of every radius */
	{
		moe_mol		mol;

		st = moe_smiles_parse(smiles, len, &mol, &err);
		REQUIRE(st == MOE_OK || st == MOE_ERR_DATA);
		if (st == MOE_OK)
		{
			uint64_t   *ids;
			uint8_t    *centre;
			int			centres = 0;

			parsed = true;
			check_graph(&mol, len);
			ids = malloc(sizeof(uint64_t) * (size_t) (MOE_ECFP_MAX_RADIUS + 1) * (size_t) mol.natoms);
			centre = malloc((size_t) mol.natoms);
			REQUIRE(ids != NULL && centre != NULL);
			REQUIRE(moe_ecfp_identifiers(&mol, MOE_ECFP_MAX_RADIUS, ids, centre, &err) == MOE_OK);
			for (int i = 0; i < mol.natoms; i++)
			{
				REQUIRE(centre[i] <= 1);
				centres += centre[i];
			}
			REQUIRE(centres >= 1);
			free(ids);
			free(centre);
			moe_mol_free(&mol);
		}
		else
		{
			REQUIRE(mol.natoms == 0 && mol.atoms == NULL && mol.bonds == NULL);
			REQUIRE(len == 0 || len > MOE_SMILES_GRAPH_MAX_LEN ||
					(err.position >= 1 && (size_t) err.position <= len));
		}
	}

	/* token n-grams */
	out = sentinel_buffer(ngram_dim);
	st = moe_featurize_smiles(smiles, len, ngram_dim, max_n, out, &err);
	if (max_n < 1 || max_n > MOE_SMILES_MAX_N)
		REQUIRE(st == MOE_ERR_INVALID);
	else
		REQUIRE(st == MOE_OK || st == MOE_ERR_DATA);
	if (parsed && max_n >= 1 && max_n <= MOE_SMILES_MAX_N)
		REQUIRE(st == MOE_OK);
	if (st == MOE_OK)
		for (int b = 0; b < ngram_dim; b++)
			REQUIRE(out[b] >= 0.0f && isfinite(out[b]));
	else
		require_untouched(out, ngram_dim);
	free(out);

	/* ECFP from the same text */
	out = sentinel_buffer(ecfp_dim);
	st = moe_featurize_ecfp(smiles, len, radius, ecfp_dim, counts, out, &err);
	if (radius > MOE_ECFP_MAX_RADIUS)
		REQUIRE(st == MOE_ERR_INVALID);
	else
		REQUIRE(st == (parsed ? MOE_OK : MOE_ERR_DATA));
	if (st == MOE_OK)
	{
		int			set = 0;

		for (int b = 0; b < ecfp_dim; b++)
		{
			if (counts)
				REQUIRE(out[b] >= 0.0f && isfinite(out[b]));
			else
				REQUIRE(out[b] == 0.0f || out[b] == 1.0f);
			set += out[b] > 0.0f;
		}
		REQUIRE(set >= 1);
	}
	else
		require_untouched(out, ecfp_dim);
	free(out);
	return 0;
}
