/*
 * ecfp.h — ECFP-style circular (Morgan) fingerprints of a SMILES string.
 *
 * The SMILES is parsed into a graph (smiles_graph.h); every atom gets an
 * identifier from its own invariants, then, radius by radius, from its
 * previous identifier and the sorted (bond order, identifier) pairs of its
 * neighbours.  Every atom's identifier at every radius 0..R is folded into
 * one of dim buckets.  Identifiers depend only on the graph, never on the
 * order the atoms are written in, and the hash is fixed (64-bit FNV-1a over
 * little-endian bytes, then a 64-bit finaliser), so the same molecule gives
 * the same bytes on every platform.  Definitions in docs/ecfp.md.
 */
#ifndef MOE_ECFP_H
#define MOE_ECFP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "moe_status.h"
#include "smiles_graph.h"

#define MOE_ECFP_DEFAULT_RADIUS	2
#define MOE_ECFP_MAX_RADIUS		4
#define MOE_ECFP_DEFAULT_DIM	2048
#define MOE_ECFP_MAX_DIM		(1 << 20)

/*
 * Fingerprint of smiles[0..len) into out[0..dim).
 * counts: out[b] = log(1 + number of (atom, radius) identifiers in bucket
 * b), rounded from double; otherwise out[b] = 1 when the bucket holds any,
 * else 0.  radius 0..4, dim 1..1048576.  On any error out is untouched.
 */
moe_status	moe_featurize_ecfp(const char *smiles, size_t len, int radius, int dim,
							   bool counts, float *out, moe_error *err);

/*
 * The identifiers themselves: ids[r * natoms + i] is atom i's identifier
 * at radius r, for r = 0..radius (ids holds (radius + 1) * natoms values).
 * Hydrogen atoms written as [H] and bonded to one heavy atom are folded
 * into that atom's hydrogen count: they are not fingerprint centres, get
 * identifier 0 and, when centre is not NULL, centre[i] = 0 (1 otherwise).
 */
moe_status	moe_ecfp_identifiers(const moe_mol *mol, int radius, uint64_t *ids,
								 uint8_t *centre, moe_error *err);

#endif
