/*
 * ecfp.c — Morgan / ECFP-style circular fingerprints over a parsed SMILES.
 *
 * Radius 0: each atom's identifier is the hash of its invariants (atomic
 * number, degree, total hydrogens, formal charge, aromatic flag, ring flag).
 * Radius r: hash of (r, previous identifier, its neighbours' (bond code,
 * previous identifier) pairs in ascending order).  Every centre atom's
 * identifier at every radius is counted once; identical environments are
 * not merged (see docs/ecfp.md).  No static mutable state.
 */
#include "ecfp.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define FNV64_OFFSET	0xcbf29ce484222325ULL
#define FNV64_PRIME		0x100000001b3ULL

static inline uint64_t
fnv_u32(uint64_t h, uint32_t v)
{
	for (int k = 0; k < 4; k++)
	{
		h ^= (uint64_t) ((v >> (8 * k)) & 0xff);
		h *= FNV64_PRIME;
	}
	return h;
}

static inline uint64_t
fnv_u64(uint64_t h, uint64_t v)
{
	for (int k = 0; k < 8; k++)
	{
		h ^= (v >> (8 * k)) & 0xff;
		h *= FNV64_PRIME;
	}
	return h;
}

/* The splitmix64 finaliser: spreads FNV's weak low bits over all 64. */
static inline uint64_t
finalise(uint64_t x)
{
	x ^= x >> 30;
	x *= 0xbf58476d1ce4e5b9ULL;
	x ^= x >> 27;
	x *= 0x94d049bb133111ebULL;
	x ^= x >> 31;
	return x;
}

typedef struct nbr_pair
{
	uint32_t	bond;
	uint64_t	id;
} nbr_pair;

static inline int
pair_less(const nbr_pair *x, const nbr_pair *y)
{
	return x->bond < y->bond || (x->bond == y->bond && x->id < y->id);
}

/* Hydrogen written as an atom, bonded to exactly one non-hydrogen atom. */
static int
folded_hydrogen(const moe_mol *mol, int i)
{
	const moe_mol_atom *a = &mol->atoms[i];

	if (a->element != 1 || a->charge != 0 || a->hcount != 0 || a->degree != 1)
		return 0;
	return mol->atoms[mol->nbr_atom[mol->nbr_start[i]]].element != 1;
}

moe_status
moe_ecfp_identifiers(const moe_mol *mol, int radius, uint64_t *ids, uint8_t *centre,
					 moe_error *err)
{
	int			n;
	int			max_degree = 0;
	uint8_t    *keep;
	nbr_pair   *pairs;

	if (radius < 0 || radius > MOE_ECFP_MAX_RADIUS)
		return moe_fail(err, MOE_ERR_INVALID, "ECFP radius must be between 0 and %d, not %d",
						MOE_ECFP_MAX_RADIUS, radius);
	if (mol == NULL || ids == NULL)
		return moe_fail(err, MOE_ERR_INVALID, "ECFP molecule or identifier buffer is NULL");
	n = mol->natoms;
	if (n == 0)
		return MOE_OK;
	for (int i = 0; i < n; i++)
		if (mol->atoms[i].degree > max_degree)
			max_degree = mol->atoms[i].degree;
	keep = malloc((size_t) n);
	pairs = malloc(sizeof(nbr_pair) * (size_t) (max_degree + 1));
	if (keep == NULL || pairs == NULL)
	{
		free(keep);
		free(pairs);
		return moe_fail(err, MOE_ERR_NOMEM, "out of memory fingerprinting %d atoms", n);
	}
	for (int i = 0; i < n; i++)
		keep[i] = !folded_hydrogen(mol, i);

	/* radius 0: atom invariants */
	for (int i = 0; i < n; i++)
	{
		const moe_mol_atom *a = &mol->atoms[i];
		uint32_t	degree = 0,
					hydrogens = a->hcount;
		uint64_t	h = FNV64_OFFSET;

		if (!keep[i])
		{
			ids[i] = 0;
			continue;
		}
		for (int32_t k = mol->nbr_start[i]; k < mol->nbr_start[i + 1]; k++)
		{
			if (keep[mol->nbr_atom[k]])
				degree++;
			else
				hydrogens++;
		}
		h = fnv_u32(h, 0);		/* layer */
		h = fnv_u32(h, a->element);
		h = fnv_u32(h, degree);
		h = fnv_u32(h, hydrogens);
		h = fnv_u32(h, (uint32_t) (int32_t) a->charge);
		h = fnv_u32(h, a->aromatic);
		h = fnv_u32(h, a->in_ring);
		ids[i] = finalise(h);
	}

	/* radius 1..R: previous identifier and sorted neighbour pairs */
	for (int r = 1; r <= radius; r++)
	{
		const uint64_t *prev = ids + (size_t) (r - 1) * n;
		uint64_t   *cur = ids + (size_t) r * n;

		for (int i = 0; i < n; i++)
		{
			int			np = 0;
			uint64_t	h = FNV64_OFFSET;

			if (!keep[i])
			{
				cur[i] = 0;
				continue;
			}
			for (int32_t k = mol->nbr_start[i]; k < mol->nbr_start[i + 1]; k++)
			{
				int32_t		w = mol->nbr_atom[k];
				nbr_pair	x;
				int			j;

				if (!keep[w])
					continue;
				x.bond = mol->bonds[mol->nbr_bond[k]].order;
				x.id = prev[w];
				/* insertion sort: degrees are small */
				for (j = np; j > 0 && pair_less(&x, &pairs[j - 1]); j--)
					pairs[j] = pairs[j - 1];
				pairs[j] = x;
				np++;
			}
			h = fnv_u32(h, (uint32_t) r);
			h = fnv_u64(h, prev[i]);
			h = fnv_u32(h, (uint32_t) np);
			for (int j = 0; j < np; j++)
			{
				h = fnv_u32(h, pairs[j].bond);
				h = fnv_u64(h, pairs[j].id);
			}
			cur[i] = finalise(h);
		}
	}
	if (centre != NULL)
		memcpy(centre, keep, (size_t) n);
	free(keep);
	free(pairs);
	return MOE_OK;
}

moe_status
moe_featurize_ecfp(const char *smiles, size_t len, int radius, int dim, bool counts,
				   float *out, moe_error *err)
{
	moe_mol		mol;
	uint64_t   *ids;
	uint8_t    *centre;
	moe_status	st;

	if (radius < 0 || radius > MOE_ECFP_MAX_RADIUS)
		return moe_fail(err, MOE_ERR_INVALID, "ECFP radius must be between 0 and %d, not %d",
						MOE_ECFP_MAX_RADIUS, radius);
	if (dim < 1 || dim > MOE_ECFP_MAX_DIM)
		return moe_fail(err, MOE_ERR_INVALID, "ECFP dim must be between 1 and %d, not %d",
						MOE_ECFP_MAX_DIM, dim);
	if (smiles == NULL || len == 0)
		return moe_fail(err, MOE_ERR_DATA, "SMILES string is empty");
	if (out == NULL)
		return moe_fail(err, MOE_ERR_INVALID, "ECFP output buffer is NULL");

	st = moe_smiles_parse(smiles, len, &mol, err);
	if (st != MOE_OK)
		return st;
	ids = malloc(sizeof(uint64_t) * (size_t) (radius + 1) * (size_t) mol.natoms);
	centre = malloc((size_t) mol.natoms);
	if (ids == NULL || centre == NULL)
	{
		st = moe_fail(err, MOE_ERR_NOMEM, "out of memory fingerprinting %d atoms", mol.natoms);
		goto done;
	}
	st = moe_ecfp_identifiers(&mol, radius, ids, centre, err);
	if (st != MOE_OK)
		goto done;

	/* Count in out (exact: at most 5 * 10000 identifiers, far below 2^24). */
	for (int b = 0; b < dim; b++)
		out[b] = 0.0f;
	for (int r = 0; r <= radius; r++)
		for (int i = 0; i < mol.natoms; i++)
			if (centre[i])
				out[ids[(size_t) r * mol.natoms + i] % (uint64_t) dim] += 1.0f;
	for (int b = 0; b < dim; b++)
	{
		if (counts)
			out[b] = (float) log1p((double) out[b]);
		else
			out[b] = out[b] > 0.0f ? 1.0f : 0.0f;
	}

done:
	free(ids);
	free(centre);
	moe_mol_free(&mol);
	return st;
}
