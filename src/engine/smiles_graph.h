/*
 * smiles_graph.h — parse a SMILES string into a molecular graph.
 *
 * The parser reads the OpenSMILES syntax that drug data sets use: organic
 * subset and bracket atoms, bonds, branches, ring closures (digits and %NN)
 * and dots.  It keeps what a circular fingerprint needs (element, aromatic
 * flag, formal charge, hydrogen count, bond orders, ring membership) and
 * ignores isotopes, chirality, bond directions and atom classes.  It does
 * not perceive aromaticity and does not check valences: a Kekulé benzene
 * stays Kekulé, and "c1cccc1" is accepted as written.
 *
 * Malformed text is MOE_ERR_DATA with the 1-based position of the offending
 * character in err->position and a message naming it.  The rules, and the
 * implicit-hydrogen rule, are in docs/ecfp.md.
 */
#ifndef MOE_SMILES_GRAPH_H
#define MOE_SMILES_GRAPH_H

#include <stddef.h>
#include <stdint.h>

#include "moe_status.h"

#define MOE_SMILES_GRAPH_MAX_LEN	100000	/* bytes of SMILES text */
#define MOE_SMILES_GRAPH_MAX_ATOMS	10000

/* Bond orders as stored; aromatic is its own kind, not 1.5. */
#define MOE_BOND_SINGLE		1
#define MOE_BOND_DOUBLE		2
#define MOE_BOND_TRIPLE		3
#define MOE_BOND_QUADRUPLE	4
#define MOE_BOND_AROMATIC	5

typedef struct moe_mol_atom
{
	int32_t		pos;			/* 1-based position of the atom in the SMILES text */
	uint8_t		element;		/* atomic number; 0 for the wildcard "*" */
	uint8_t		aromatic;		/* written in lower case (c, n, [nH], [se], ...) */
	uint8_t		bracket;		/* written as a bracket atom */
	uint8_t		in_ring;		/* has at least one ring bond */
	int8_t		charge;			/* formal charge, -15..15 */
	uint8_t		hcount;			/* hydrogens: the bracket count, or the implicit ones */
	uint16_t	degree;			/* bonds to other atoms of the graph */
} moe_mol_atom;

typedef struct moe_mol_bond
{
	int32_t		a;				/* atom indices, a < b after parsing */
	int32_t		b;
	int32_t		pos;			/* 1-based position of the symbol or ring closure that made it */
	uint8_t		order;			/* MOE_BOND_SINGLE .. MOE_BOND_AROMATIC */
	uint8_t		in_ring;		/* not a bridge: removing it leaves a and b connected */
} moe_mol_bond;

/*
 * A parsed molecule.  Atoms are in SMILES order.  The neighbours of atom i
 * are nbr_atom[nbr_start[i] .. nbr_start[i + 1]) (with the bond index in
 * nbr_bond at the same place), in the order the bonds were made.
 */
typedef struct moe_mol
{
	int			natoms;
	int			nbonds;
	moe_mol_atom *atoms;
	moe_mol_bond *bonds;
	int32_t    *nbr_start;		/* natoms + 1 */
	int32_t    *nbr_atom;		/* 2 * nbonds */
	int32_t    *nbr_bond;		/* 2 * nbonds */
} moe_mol;

/*
 * Parse smiles[0..len) (not necessarily NUL-terminated) into *mol.
 * On success the caller frees it with moe_mol_free(); on failure *mol holds
 * nothing to free (it is zeroed).
 */
moe_status	moe_smiles_parse(const char *smiles, size_t len, moe_mol *mol, moe_error *err);

/* Free what moe_smiles_parse() allocated; safe on a zeroed moe_mol. */
void		moe_mol_free(moe_mol *mol);

/* Element symbol of an atomic number ("C", "Cl", "*" for 0), or "?" when out of range. */
const char *moe_element_symbol(int atomic_number);

#endif
