/*
 * test_ecfp.c — the SMILES graph parser, ECFP fingerprints, and the
 * conjoint-triad and CKSAAP protein descriptors.
 *
 * Expected values come from hand counts and from reference code written
 * independently here (FNV-1a 64 checked against its published vectors, a
 * naive triad/pair counter with the classes spelled as letter groups).  The
 * key property of the fingerprint, invariance to the order the atoms are
 * written in, is checked on hand pairs and on every Davis and KIBA drug
 * rewritten as random SMILES by a small writer in this file.
 */
#include "ecfp.h"
#include "protein_features.h"
#include "smiles_graph.h"
#include "unit.h"
#include "unit_csv.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* Radius-0 identifiers of CH3, CH2 and OH in ethanol (printed by the test). */
#define ECFP_PIN_CH3	0x40002c4934d37410ULL
#define ECFP_PIN_CH2	0x8ad6d79d6370e354ULL
#define ECFP_PIN_OH		0x7974ddb896e04542ULL

#define NELEM(a) ((int) (sizeof(a) / sizeof((a)[0])))

static int
count_nonzero(const float *v, int n)
{
	int			c = 0;

	for (int i = 0; i < n; i++)
		c += v[i] != 0.0f;
	return c;
}

static moe_status
parse(const char *s, moe_mol *mol, moe_error *err)
{
	return moe_smiles_parse(s, strlen(s), mol, err);
}

static moe_status
ecfp(const char *s, int radius, int dim, bool counts, float *out, moe_error *err)
{
	return moe_featurize_ecfp(s, strlen(s), radius, dim, counts, out, err);
}

/* Parse s and compare elements and hydrogen counts atom by atom. */
static void
check_atoms(const char *s, const int *elements, const int *hydrogens, int natoms,
			int nbonds, int line)
{
	moe_mol		mol;
	moe_error	err;
	int			before = unit_failures;

	moe_error_clear(&err);
	CHECK_INT(parse(s, &mol, &err), MOE_OK);
	if (err.status != MOE_OK)
	{
		fprintf(stderr, "  (line %d: \"%s\": %s)\n", line, s, err.message);
		return;
	}
	CHECK_INT(mol.natoms, natoms);
	CHECK_INT(mol.nbonds, nbonds);
	for (int i = 0; i < natoms && i < mol.natoms; i++)
	{
		CHECK_INT(mol.atoms[i].element, elements[i]);
		CHECK_INT(mol.atoms[i].hcount, hydrogens[i]);
	}
	if (unit_failures != before)
		fprintf(stderr, "  (case at line %d: \"%s\")\n", line, s);
	moe_mol_free(&mol);
}

#define CHECK_ATOMS(s, el, h, nb) \
	check_atoms((s), (el), (h), NELEM(el), (nb), __LINE__)

/* Two SMILES give bit-identical fingerprints (radius 3, 4096, counts). */
static int
same_fingerprint(const char *a, const char *b)
{
	float		x[4096],
				y[4096];
	moe_error	err;

	moe_error_clear(&err);
	if (ecfp(a, 3, 4096, true, x, &err) != MOE_OK ||
		ecfp(b, 3, 4096, true, y, &err) != MOE_OK)
	{
		fprintf(stderr, "  \"%s\" / \"%s\": %s\n", a, b, err.message);
		return 0;
	}
	return memcmp(x, y, sizeof(x)) == 0;
}

/* ---- the parser ------------------------------------------------------------- */

static void
test_elements(void)
{
	CHECK(strcmp(moe_element_symbol(0), "*") == 0);
	CHECK(strcmp(moe_element_symbol(1), "H") == 0);
	CHECK(strcmp(moe_element_symbol(6), "C") == 0);
	CHECK(strcmp(moe_element_symbol(17), "Cl") == 0);
	CHECK(strcmp(moe_element_symbol(26), "Fe") == 0);
	CHECK(strcmp(moe_element_symbol(35), "Br") == 0);
	CHECK(strcmp(moe_element_symbol(53), "I") == 0);
	CHECK(strcmp(moe_element_symbol(79), "Au") == 0);
	CHECK(strcmp(moe_element_symbol(92), "U") == 0);
	CHECK(strcmp(moe_element_symbol(118), "Og") == 0);
	CHECK(strcmp(moe_element_symbol(119), "?") == 0);
	CHECK(strcmp(moe_element_symbol(-1), "?") == 0);
}

static void
test_parse_ethanol(void)
{
	moe_mol		mol;
	moe_error	err;
	const int	el[] = {6, 6, 8},
				h[] = {3, 2, 1};

	CHECK_ATOMS("CCO", el, h, 2);
	CHECK_INT(parse("CCO", &mol, &err), MOE_OK);
	CHECK_INT(mol.atoms[0].degree, 1);
	CHECK_INT(mol.atoms[1].degree, 2);
	CHECK_INT(mol.atoms[2].degree, 1);
	CHECK_INT(mol.atoms[0].pos, 1);
	CHECK_INT(mol.atoms[2].pos, 3);
	for (int i = 0; i < 3; i++)
		CHECK(!mol.atoms[i].in_ring && !mol.atoms[i].aromatic && !mol.atoms[i].bracket);
	CHECK_INT(mol.bonds[0].a, 0);
	CHECK_INT(mol.bonds[0].b, 1);
	CHECK_INT(mol.bonds[1].a, 1);
	CHECK_INT(mol.bonds[1].b, 2);
	CHECK_INT(mol.bonds[0].order, MOE_BOND_SINGLE);
	CHECK(!mol.bonds[0].in_ring && !mol.bonds[1].in_ring);
	/* neighbour lists */
	CHECK_INT(mol.nbr_start[1], 1);
	CHECK_INT(mol.nbr_start[3], 4);
	CHECK_INT(mol.nbr_atom[mol.nbr_start[1]], 0);
	CHECK_INT(mol.nbr_atom[mol.nbr_start[1] + 1], 2);
	moe_mol_free(&mol);
	moe_mol_free(&mol);			/* twice is harmless */
}

static void
test_parse_aromatic(void)
{
	moe_mol		mol;
	moe_error	err;
	int			htotal = 0;

	/* benzene: six aromatic CH, six aromatic ring bonds */
	CHECK_INT(parse("c1ccccc1", &mol, &err), MOE_OK);
	CHECK_INT(mol.natoms, 6);
	CHECK_INT(mol.nbonds, 6);
	for (int i = 0; i < mol.natoms; i++)
	{
		CHECK_INT(mol.atoms[i].element, 6);
		CHECK(mol.atoms[i].aromatic && mol.atoms[i].in_ring);
		CHECK_INT(mol.atoms[i].hcount, 1);
		htotal += mol.atoms[i].hcount;
	}
	for (int k = 0; k < mol.nbonds; k++)
		CHECK(mol.bonds[k].order == MOE_BOND_AROMATIC && mol.bonds[k].in_ring);
	CHECK_INT(htotal, 6);
	moe_mol_free(&mol);

	/* pyridine: the n has no hydrogen, every c one */
	const int	pyr_el[] = {6, 6, 6, 7, 6, 6},
				pyr_h[] = {1, 1, 1, 0, 1, 1};

	CHECK_ATOMS("c1ccncc1", pyr_el, pyr_h, 6);

	/* pyrrole: the hydrogen is written, [nH] */
	const int	pyl_el[] = {6, 6, 6, 7, 6},
				pyl_h[] = {1, 1, 1, 1, 1};

	CHECK_ATOMS("c1cc[nH]c1", pyl_el, pyl_h, 5);
	CHECK_INT(parse("c1cc[nH]c1", &mol, &err), MOE_OK);
	CHECK(mol.atoms[3].aromatic && mol.atoms[3].bracket && mol.atoms[3].in_ring);
	moe_mol_free(&mol);

	/* five-membered rings whose heteroatom gives a lone pair: no H */
	const int	thi_el[] = {6, 6, 16, 6, 6},
				thi_h[] = {1, 1, 0, 1, 1};
	const int	fur_el[] = {8, 6, 6, 6, 6},
				fur_h[] = {0, 1, 1, 1, 1};
	const int	mpy_el[] = {6, 7, 6, 6, 6, 6},
				mpy_h[] = {3, 0, 1, 1, 1, 1};

	CHECK_ATOMS("c1cscc1", thi_el, thi_h, 5);
	CHECK_ATOMS("o1cccc1", fur_el, fur_h, 5);
	CHECK_ATOMS("Cn1cccc1", mpy_el, mpy_h, 6);

	/* naphthalene: the two ring-fusion carbons have no H; 8 H in all */
	const int	nap_el[] = {6, 6, 6, 6, 6, 6, 6, 6, 6, 6},
				nap_h[] = {1, 1, 1, 0, 1, 1, 1, 1, 0, 1};

	CHECK_ATOMS("c1ccc2ccccc2c1", nap_el, nap_h, 11);

	/* imidazo[1,2-a]pyridine: the fusion n has three aromatic bonds, no H */
	const int	imp_el[] = {6, 6, 6, 7, 6, 6, 7, 6, 6},
				imp_h[] = {1, 1, 1, 0, 1, 1, 0, 0, 1};

	CHECK_ATOMS("c1ccn2ccnc2c1", imp_el, imp_h, 10);

	/* 4-pyridone: the c(=O) has no H */
	const int	pyd_el[] = {8, 6, 6, 6, 7, 6, 6},
				pyd_h[] = {0, 0, 1, 1, 1, 1, 1};

	CHECK_ATOMS("O=c1cc[nH]cc1", pyd_el, pyd_h, 7);

	/* phenol and chlorobenzene: the substituted c has no H */
	const int	phe_el[] = {6, 6, 6, 6, 6, 6, 8},
				phe_h[] = {1, 1, 1, 1, 1, 0, 1};
	const int	clb_el[] = {17, 6, 6, 6, 6, 6, 6},
				clb_h[] = {0, 0, 1, 1, 1, 1, 1};

	CHECK_ATOMS("c1ccccc1O", phe_el, phe_h, 7);
	CHECK_ATOMS("Clc1ccccc1", clb_el, clb_h, 7);

	/* biphenyl: the unwritten bond between the rings is single, not in a ring */
	CHECK_INT(parse("c1ccccc1c1ccccc1", &mol, &err), MOE_OK);
	CHECK_INT(mol.nbonds, 13);
	for (int k = 0; k < mol.nbonds; k++)
	{
		int			junction = (mol.bonds[k].a == 5 && mol.bonds[k].b == 6);

		CHECK_INT(mol.bonds[k].order, junction ? MOE_BOND_SINGLE : MOE_BOND_AROMATIC);
		CHECK_INT(mol.bonds[k].in_ring, !junction);
	}
	CHECK_INT(mol.atoms[5].hcount, 0);
	CHECK_INT(mol.atoms[6].hcount, 0);
	moe_mol_free(&mol);

	/* explicit aromatic bonds between upper-case atoms read like lower case */
	CHECK_INT(parse("C1:C:C:C:C:C:1", &mol, &err), MOE_OK);
	for (int i = 0; i < 6; i++)
		CHECK_INT(mol.atoms[i].hcount, 1);
	moe_mol_free(&mol);
}

static void
test_parse_charges_and_brackets(void)
{
	moe_mol		mol;
	moe_error	err;

	CHECK_INT(parse("[NH4+]", &mol, &err), MOE_OK);
	CHECK_INT(mol.natoms, 1);
	CHECK_INT(mol.atoms[0].element, 7);
	CHECK_INT(mol.atoms[0].hcount, 4);
	CHECK_INT(mol.atoms[0].charge, 1);
	CHECK_INT(mol.atoms[0].degree, 0);
	CHECK(mol.atoms[0].bracket && !mol.atoms[0].aromatic);
	moe_mol_free(&mol);

	/* acetate: the [O-] keeps no H (a bracket atom has only its written H) */
	const int	ace_el[] = {6, 6, 8, 8},
				ace_h[] = {3, 0, 0, 0};

	CHECK_ATOMS("CC(=O)[O-]", ace_el, ace_h, 3);
	CHECK_INT(parse("CC(=O)[O-]", &mol, &err), MOE_OK);
	CHECK_INT(mol.atoms[3].charge, -1);
	CHECK_INT(mol.atoms[2].charge, 0);
	moe_mol_free(&mol);

	/* charge spellings */
	const char *two_plus[] = {"[Fe+2]", "[Fe++]"};

	for (int k = 0; k < 2; k++)
	{
		CHECK_INT(parse(two_plus[k], &mol, &err), MOE_OK);
		CHECK_INT(mol.atoms[0].element, 26);
		CHECK_INT(mol.atoms[0].charge, 2);
		moe_mol_free(&mol);
	}
	CHECK_INT(parse("[N--]", &mol, &err), MOE_OK);
	CHECK_INT(mol.atoms[0].charge, -2);
	moe_mol_free(&mol);
	CHECK_INT(parse("[Ti+15]", &mol, &err), MOE_OK);
	CHECK_INT(mol.atoms[0].charge, 15);
	moe_mol_free(&mol);
	CHECK_INT(parse("[O-0]", &mol, &err), MOE_OK);
	CHECK_INT(mol.atoms[0].charge, 0);
	moe_mol_free(&mol);

	/* isotope, chirality and atom class are read and ignored */
	const int	iso_el[] = {6},
				iso_h[] = {4};

	CHECK_ATOMS("[13CH4]", iso_el, iso_h, 0);
	CHECK_ATOMS("[13CH4:7]", iso_el, iso_h, 0);
	const int	chi_el[] = {7, 6, 6, 6, 8, 8},
				chi_h[] = {2, 1, 3, 0, 0, 1};

	CHECK_ATOMS("N[C@@H](C)C(=O)O", chi_el, chi_h, 5);
	CHECK_ATOMS("N[C@H](C)C(=O)O", chi_el, chi_h, 5);
	CHECK_ATOMS("N[C@TH2H](C)C(=O)O", chi_el, chi_h, 5);
	CHECK(same_fingerprint("N[C@@H](C)C(=O)O", "N[C@H](C)C(=O)O"));
	CHECK(same_fingerprint("N[C@@H](C)C(=O)O", "NC(C)C(=O)O"));
	CHECK(same_fingerprint("[13CH3:1]C", "CC"));

	/* two-letter and aromatic bracket symbols, greedy */
	const char *syms[] = {"[Cl-]", "[Br-]", "[Na+]", "[Sc]", "[Cs+]", "[Co]", "[Hg]", "[se]1cccc1",
						  "[as]1cccc1", "[nH]1cccc1", "[Xe]", "[Og]", "[U]", "[*]", "[He]", "[H+]"};
	const int	syms_z[] = {17, 35, 11, 21, 55, 27, 80, 34, 33, 7, 54, 118, 92, 0, 2, 1};

	for (int k = 0; k < NELEM(syms); k++)
	{
		moe_error_clear(&err);
		CHECK_INT(parse(syms[k], &mol, &err), MOE_OK);
		if (mol.natoms > 0)
			CHECK_INT(mol.atoms[0].element, syms_z[k]);
		if (syms[k][1] >= 'a' && syms[k][1] <= 'z')
			CHECK(mol.atoms[0].aromatic);
		moe_mol_free(&mol);
	}

	/* a salt: two components, no bond, no H */
	const int	salt_el[] = {11, 17},
				salt_h[] = {0, 0};

	CHECK_ATOMS("[Na+].[Cl-]", salt_el, salt_h, 0);

	/* wildcard: no implicit H, and none for its neighbour's sake */
	const int	wc_el[] = {0, 6},
				wc_h[] = {0, 3};

	CHECK_ATOMS("*C", wc_el, wc_h, 1);
}

static void
test_parse_valences(void)
{
	/* lowest default valence >= the bond-order sum */
	const int	o_el[] = {8},
				o_h[] = {2};
	const int	p_el[] = {15},
				p_h[] = {3};
	const int	b_el[] = {5},
				b_h[] = {3};
	const int	hcn_el[] = {6, 7},
				hcn_h[] = {1, 0};
	const int	form_el[] = {6, 8, 8},
				form_h[] = {1, 0, 1};
	const int	dmso_el[] = {6, 16, 6, 8},
				dmso_h[] = {3, 0, 3, 0};	/* S: sum 4 -> valence 4 */
	const int	sulf_el[] = {6, 16, 8, 8, 6},
				sulf_h[] = {3, 0, 0, 0, 3};	/* S: sum 6 -> 6 */
	const int	nitro_el[] = {6, 7, 8, 8},
				nitro_h[] = {3, 0, 0, 0};	/* N: sum 5 -> 5 */
	const int	hno2_el[] = {7, 8, 8},
				hno2_h[] = {1, 0, 0};	/* N: sum 4 -> 5, one H */
	const int	h3po4_el[] = {8, 15, 8, 8, 8},
				h3po4_h[] = {0, 0, 1, 1, 1};
	const int	thiol_el[] = {6, 16},
				thiol_h[] = {3, 1};
	const int	hal_el[] = {9, 6, 17, 35, 53},
				hal_h[] = {0, 0, 0, 0, 0};
	const int	over_el[] = {6, 9, 9, 9, 9, 9},
				over_h[] = {0, 0, 0, 0, 0, 0};	/* C with 5 bonds: no H */
	const int	ethyne_el[] = {6, 6},
				ethyne_h[] = {1, 1};

	CHECK_ATOMS("O", o_el, o_h, 0);
	CHECK_ATOMS("P", p_el, p_h, 0);
	CHECK_ATOMS("B", b_el, b_h, 0);
	CHECK_ATOMS("C#N", hcn_el, hcn_h, 1);
	CHECK_ATOMS("C(=O)O", form_el, form_h, 2);
	CHECK_ATOMS("CS(C)=O", dmso_el, dmso_h, 3);
	CHECK_ATOMS("CS(=O)(=O)C", sulf_el, sulf_h, 4);
	CHECK_ATOMS("CN(=O)=O", nitro_el, nitro_h, 3);
	CHECK_ATOMS("N(=O)=O", hno2_el, hno2_h, 2);
	CHECK_ATOMS("O=P(O)(O)O", h3po4_el, h3po4_h, 4);
	CHECK_ATOMS("CS", thiol_el, thiol_h, 1);
	CHECK_ATOMS("FC(Cl)(Br)I", hal_el, hal_h, 4);
	CHECK_ATOMS("C(F)(F)(F)(F)F", over_el, over_h, 5);
	CHECK_ATOMS("C#C", ethyne_el, ethyne_h, 1);

	/* quadruple bond, and bond directions as single bonds */
	moe_mol		mol;
	moe_error	err;

	CHECK_INT(parse("[Re]$[Re]", &mol, &err), MOE_OK);
	CHECK_INT(mol.bonds[0].order, MOE_BOND_QUADRUPLE);
	moe_mol_free(&mol);
	CHECK_INT(parse("F/C=C\\F", &mol, &err), MOE_OK);
	CHECK_INT(mol.bonds[0].order, MOE_BOND_SINGLE);
	CHECK_INT(mol.bonds[1].order, MOE_BOND_DOUBLE);
	CHECK_INT(mol.bonds[2].order, MOE_BOND_SINGLE);
	CHECK_INT(mol.atoms[1].hcount, 1);
	moe_mol_free(&mol);
	CHECK(same_fingerprint("F/C=C/F", "FC=CF"));
	CHECK(same_fingerprint("F/C=C\\F", "FC=CF"));
}

static void
test_parse_rings_and_dots(void)
{
	moe_mol		mol;
	moe_error	err;

	/* %10: cyclohexane */
	const int	chx_el[] = {6, 6, 6, 6, 6, 6},
				chx_h[] = {2, 2, 2, 2, 2, 2};

	CHECK_ATOMS("C%10CCCCC%10", chx_el, chx_h, 6);
	CHECK_INT(parse("C%10CCCCC%10", &mol, &err), MOE_OK);
	for (int i = 0; i < 6; i++)
		CHECK(mol.atoms[i].in_ring);
	CHECK_INT(mol.bonds[5].a, 0);
	CHECK_INT(mol.bonds[5].b, 5);
	CHECK_INT(mol.bonds[5].pos, 10);
	moe_mol_free(&mol);
	CHECK(same_fingerprint("C%10CCCCC%10", "C1CCCCC1"));
	CHECK(same_fingerprint("C%99CCCCC%99", "C1CCCCC1"));

	/* two components */
	const int	dot_el[] = {6, 6, 8},
				dot_h[] = {3, 3, 2};

	CHECK_ATOMS("CC.O", dot_el, dot_h, 1);
	CHECK(same_fingerprint("CC.O", "O.CC"));

	/* a bond symbol on the ring closure, at either end or both */
	const int	cpe_el[] = {6, 6, 6, 6, 6},
				cpe_h[] = {1, 2, 2, 2, 1};

	CHECK_ATOMS("C1CCCC=1", cpe_el, cpe_h, 5);
	CHECK_ATOMS("C=1CCCC1", cpe_el, cpe_h, 5);
	CHECK_ATOMS("C=1CCCC=1", cpe_el, cpe_h, 5);
	CHECK_INT(parse("C1CCCC=1", &mol, &err), MOE_OK);
	CHECK_INT(mol.bonds[4].a, 0);
	CHECK_INT(mol.bonds[4].b, 4);
	CHECK_INT(mol.bonds[4].order, MOE_BOND_DOUBLE);
	CHECK(mol.bonds[4].in_ring);
	moe_mol_free(&mol);
	CHECK(same_fingerprint("C1CCCC=1", "C=1CCCC1"));
	CHECK(same_fingerprint("C1CCCC=1", "C1=CCCC1"));
	/* '/' and '-' on the two ends agree: both single */
	CHECK_INT(parse("C/1CCCC-1", &mol, &err), MOE_OK);
	moe_mol_free(&mol);

	/* a ring number may be reused once closed; two rings on one atom */
	const int	bic_el[] = {6, 6, 6, 6, 6, 6, 6},
				bic_h[] = {1, 2, 2, 1, 2, 2, 2};

	CHECK_ATOMS("C12CCC1CCC2", bic_el, bic_h, 8);
	CHECK(same_fingerprint("C1CC1C1CC1", "C1CC1C2CC2"));

	/* a ring bond across a dot: not written that way in practice, but legal */
	CHECK(same_fingerprint("C1.C1", "CC"));

	/* ring flags: the chain between two rings is not in a ring */
	CHECK_INT(parse("C1CC1CCC1CC1", &mol, &err), MOE_OK);
	CHECK_INT(mol.natoms, 8);
	for (int i = 0; i < 8; i++)
		CHECK_INT(mol.atoms[i].in_ring, i != 3 && i != 4);
	for (int k = 0; k < mol.nbonds; k++)
		CHECK_INT(mol.bonds[k].in_ring, !(mol.bonds[k].a >= 2 && mol.bonds[k].b <= 5));
	moe_mol_free(&mol);

	/* branches, and an explicit [H] kept as an atom of the graph */
	const int	tbu_el[] = {6, 6, 6, 6},
				tbu_h[] = {3, 1, 3, 3};
	const int	tbh_el[] = {6, 6, 6, 6, 1},
				tbh_h[] = {3, 0, 3, 3, 0};

	CHECK_ATOMS("CC(C)C", tbu_el, tbu_h, 3);
	CHECK_ATOMS("CC(C)(C)[H]", tbh_el, tbh_h, 4);
	CHECK(same_fingerprint("CC(C)(C)[H]", "CC(C)C"));
}

/* Expect a parse error (through the fingerprint, so out is checked too). */
static void
expect_smiles_error(const char *s, size_t len, moe_status st, int pos, const char *frag,
					int line)
{
	float		out[16];
	moe_error	err;
	moe_mol		mol;
	int			before = unit_failures;

	for (int i = 0; i < 16; i++)
		out[i] = -7.0f;
	moe_error_clear(&err);
	CHECK_INT(moe_featurize_ecfp(s, len, 2, 16, true, out, &err), st);
	CHECK_INT(err.status, st);
	CHECK_INT(err.position, pos);
	CHECK(frag == NULL || strstr(err.message, frag) != NULL);
	for (int i = 0; i < 16; i++)
		CHECK(out[i] == -7.0f);
	CHECK_INT(moe_featurize_ecfp(s, len, 2, 16, true, out, NULL), st);
	/* the parser itself, when the error is about the text */
	if (st == MOE_ERR_DATA && len > 0 && s != NULL)
	{
		moe_error	e2;

		memset(&mol, 0x5A, sizeof(mol));
		CHECK_INT(moe_smiles_parse(s, len, &mol, &e2), st);
		CHECK_INT(e2.position, pos);
		CHECK(strcmp(e2.message, err.message) == 0);
		CHECK(mol.atoms == NULL && mol.natoms == 0);
		moe_mol_free(&mol);
	}
	if (unit_failures != before)
		fprintf(stderr, "  (case at line %d: \"%s\" -> \"%s\")\n", line, s ? s : "(null)",
				err.message);
}

#define EXPECT_ERR(s, pos, frag) \
	expect_smiles_error((s), strlen(s), MOE_ERR_DATA, (pos), (frag), __LINE__)

static void
test_parse_errors(void)
{
	/* characters */
	EXPECT_ERR("CCX", 3, "invalid character \"X\" at position 3 of SMILES string");
	EXPECT_ERR("C C", 2, "invalid character \" \" at position 2 of SMILES string");
	EXPECT_ERR("CC\n", 3, "invalid character byte 0x0A at position 3");
	EXPECT_ERR("C\xC3\xA9", 2, "byte 0xC3");
	EXPECT_ERR("CH4", 2, "invalid character \"H\" at position 2");
	EXPECT_ERR("c1ccccc1a", 9, "\"a\"");
	EXPECT_ERR("Cr", 2, "\"r\"");
	expect_smiles_error("C\0C", 3, MOE_ERR_DATA, 2, "byte 0x00", __LINE__);

	/* brackets */
	EXPECT_ERR("C[NH4+", 2, "unclosed bracket atom: \"[\" at position 2 of SMILES string has no matching \"]\"");
	EXPECT_ERR("C[N[H]]", 4, "nested \"[\" at position 4 of SMILES string (bracket atom opened at position 2)");
	EXPECT_ERR("C[]C", 2, "empty bracket atom \"[]\" at position 2 of SMILES string");
	EXPECT_ERR("C]", 2, "unmatched \"]\" at position 2 of SMILES string");
	EXPECT_ERR("[N H]", 3, "invalid character \" \" at position 3");
	EXPECT_ERR("[C=O]", 3, "invalid character \"=\" at position 3");
	EXPECT_ERR("C[Xx]", 3, "unknown element \"Xx\" at position 3 of SMILES string");
	EXPECT_ERR("[Q]", 2, "unknown element \"Q\" at position 2");
	EXPECT_ERR("[Cx]", 3, "invalid character \"x\" at position 3");
	EXPECT_ERR("[x]", 2, "unknown aromatic element \"x\" at position 2 of SMILES string");
	EXPECT_ERR("[13]", 4, "missing element symbol at position 4 of SMILES string (bracket atom opened at position 1)");
	EXPECT_ERR("[+]", 2, "missing element symbol at position 2");
	EXPECT_ERR("[N+16]", 3, "charge +16 at position 3 of SMILES string is out of range (at most 15)");
	EXPECT_ERR("[CH3:]", 5, "atom class \":\" at position 5 of SMILES string must be followed by digits");
	EXPECT_ERR("[NH4++-]", 7, "invalid character \"-\" at position 7");
	EXPECT_ERR("[CH12]", 5, "invalid character \"2\" at position 5");
	EXPECT_ERR("[C@XY]", 4, "invalid character \"X\" at position 4");

	/* branches */
	EXPECT_ERR("CC)", 3, "unmatched \")\" at position 3 of SMILES string");
	EXPECT_ERR("C(C", 2, "unclosed \"(\" at position 2 of SMILES string");
	EXPECT_ERR("C(C)C(C", 6, "unclosed \"(\" at position 6");
	EXPECT_ERR("C(C)C((C)", 7, "branch \"(\" at position 7 of SMILES string does not follow an atom");
	EXPECT_ERR("C()C", 2, "empty branch \"()\" at position 2 of SMILES string");
	EXPECT_ERR("(C)C", 1, "branch \"(\" at position 1 of SMILES string does not follow an atom");
	EXPECT_ERR("C((C))", 3, "branch \"(\" at position 3 of SMILES string does not follow an atom");
	EXPECT_ERR("C.(C)", 3, "branch \"(\" at position 3");

	/* bonds */
	EXPECT_ERR("C=", 2, "bond \"=\" at position 2 of SMILES string is not followed by an atom");
	EXPECT_ERR("C==C", 2, "bond \"=\" at position 2 of SMILES string is not followed by an atom");
	EXPECT_ERR("C=-C", 2, "bond \"=\" at position 2");
	EXPECT_ERR("C(C=)C", 4, "bond \"=\" at position 4 of SMILES string is not followed by an atom");
	EXPECT_ERR("C=(C)C", 2, "bond \"=\" at position 2 of SMILES string is not followed by an atom");
	EXPECT_ERR("C#.C", 2, "bond \"#\" at position 2");
	EXPECT_ERR("=C", 1, "bond \"=\" at position 1 of SMILES string does not follow an atom");
	EXPECT_ERR("C.=C", 3, "bond \"=\" at position 3 of SMILES string does not follow an atom");
	EXPECT_ERR("CC/", 3, "bond \"/\" at position 3");
	EXPECT_ERR("CC\\", 3, "bond \"\\\" at position 3");

	/* dots */
	EXPECT_ERR(".C", 1, "dot \".\" at position 1 of SMILES string does not follow an atom");
	EXPECT_ERR("C..C", 3, "dot \".\" at position 3 of SMILES string does not follow an atom");
	EXPECT_ERR("CC.", 3, "dot \".\" at position 3 of SMILES string is not followed by an atom");
	EXPECT_ERR("C(C.)C", 4, "dot \".\" at position 4 of SMILES string is not followed by an atom");

	/* ring closures */
	EXPECT_ERR("C1CC", 2, "unclosed ring \"1\" at position 2 of SMILES string");
	EXPECT_ERR("C%12CC", 2, "unclosed ring \"%12\" at position 2 of SMILES string");
	EXPECT_ERR("C1CC2CC1", 5, "unclosed ring \"2\" at position 5");
	EXPECT_ERR("C1CC(C", 2, "unclosed ring \"1\" at position 2");	/* leftmost of the two */
	EXPECT_ERR("C(CC1C", 2, "unclosed \"(\" at position 2");
	EXPECT_ERR("C11", 3, "ring closure \"1\" at position 3 of SMILES string bonds an atom to itself (opened at position 2)");
	EXPECT_ERR("C%10%10", 5, "ring closure \"%10\" at position 5 of SMILES string bonds an atom to itself");
	EXPECT_ERR("C1C1", 4, "ring closure \"1\" at position 4 of SMILES string repeats the bond between the atoms at positions 1 and 3");
	EXPECT_ERR("C12CC12", 7, "ring closure \"2\" at position 7 of SMILES string repeats the bond between the atoms at positions 1 and 5");
	EXPECT_ERR("C=1CCCC#1", 9, "ring closure \"1\" at position 9 of SMILES string has conflicting bond symbols \"=\" (position 2) and \"#\" (position 8)");
	EXPECT_ERR("1CC1", 1, "ring closure \"1\" at position 1 of SMILES string does not follow an atom");
	EXPECT_ERR("C(C)1CC1", 5, "ring closure \"1\" at position 5 of SMILES string does not follow an atom");
	EXPECT_ERR("C.1CC1", 3, "ring closure \"1\" at position 3");
	EXPECT_ERR("C(=1)CC1", 3, "bond \"=\" at position 3 of SMILES string is not followed by an atom");
	EXPECT_ERR("C%1C", 2, "ring closure \"%\" at position 2 of SMILES string must be followed by two digits");
	EXPECT_ERR("C%", 2, "must be followed by two digits");

	/* the first problem in string order wins */
	EXPECT_ERR("C(C)X)", 5, "\"X\"");
	EXPECT_ERR("C1CC)", 5, "unmatched \")\"");

	/* empty input and parameters */
	expect_smiles_error("", 0, MOE_ERR_DATA, 0, "SMILES string is empty", __LINE__);
	expect_smiles_error(NULL, 0, MOE_ERR_DATA, 0, "SMILES string is empty", __LINE__);

	float		out[16];
	moe_error	err;

	CHECK_INT(moe_featurize_ecfp("CCO", 3, -1, 16, true, out, &err), MOE_ERR_INVALID);
	CHECK(strstr(err.message, "ECFP radius must be between 0 and 4, not -1") != NULL);
	CHECK_INT(moe_featurize_ecfp("CCO", 3, 5, 16, true, out, &err), MOE_ERR_INVALID);
	CHECK_INT(moe_featurize_ecfp("CCO", 3, 2, 0, true, out, &err), MOE_ERR_INVALID);
	CHECK(strstr(err.message, "ECFP dim must be between 1 and 1048576, not 0") != NULL);
	CHECK_INT(moe_featurize_ecfp("CCO", 3, 2, MOE_ECFP_MAX_DIM + 1, true, out, &err), MOE_ERR_INVALID);
	CHECK_INT(err.position, 0);
	CHECK_INT(moe_featurize_ecfp("CCO", 3, 2, 16, true, NULL, &err), MOE_ERR_INVALID);
	CHECK(strstr(err.message, "output buffer is NULL") != NULL);
	/* parameters are checked before the text */
	CHECK_INT(moe_featurize_ecfp("C(", 2, 9, 16, true, out, &err), MOE_ERR_INVALID);
	CHECK_INT(moe_smiles_parse("C", 1, NULL, &err), MOE_ERR_INVALID);
}

static void
test_parse_limits(void)
{
	size_t		n = MOE_SMILES_GRAPH_MAX_LEN + 1;
	char	   *s = malloc(n + 1);
	moe_mol		mol;
	moe_error	err;
	float		out[8];

	/* too long: rejected before parsing, position 0 */
	memset(s, 'C', n);
	s[n] = '\0';
	CHECK_INT(moe_featurize_ecfp(s, n, 2, 8, true, out, &err), MOE_ERR_DATA);
	CHECK_INT(err.position, 0);
	CHECK(strstr(err.message, "SMILES string is too long (100001 bytes, at most 100000)") != NULL);

	/* 10000 atoms are fine, the 10001st is refused at its position */
	CHECK_INT(moe_smiles_parse(s, MOE_SMILES_GRAPH_MAX_ATOMS, &mol, &err), MOE_OK);
	CHECK_INT(mol.natoms, MOE_SMILES_GRAPH_MAX_ATOMS);
	CHECK_INT(mol.atoms[0].hcount, 3);
	CHECK_INT(mol.atoms[5000].hcount, 2);
	moe_mol_free(&mol);
	CHECK_INT(moe_smiles_parse(s, MOE_SMILES_GRAPH_MAX_ATOMS + 1, &mol, &err), MOE_ERR_DATA);
	CHECK_INT(err.position, MOE_SMILES_GRAPH_MAX_ATOMS + 1);
	CHECK(strstr(err.message, "SMILES string has more than 10000 atoms (atom 10001 at position 10001)") != NULL);

	/* 10000 bracket atoms in 100000 bytes, as deep branches */
	{
		size_t		p = 0;

		for (int i = 0; i < 4999; i++)
		{
			memcpy(s + p, "[CH2](", 6);
			p += 6;
		}
		memcpy(s + p, "CC", 2);
		p += 2;
		memset(s + p, ')', 4999);
		p += 4999;
		CHECK_INT(moe_smiles_parse(s, p, &mol, &err), MOE_OK);
		CHECK_INT(mol.natoms, 5001);
		moe_mol_free(&mol);
		CHECK_INT(moe_featurize_ecfp(s, p, 4, 8, true, out, &err), MOE_OK);
	}

	/*
	 * The ring search is iterative: a 10000-atom macrocycle, and a chain of
	 * 3001 spiro-fused cyclopropanes (ring number 1 closed and reopened on
	 * the shared atom: "C1CC11CC11...CC1").  Every atom is in a ring.
	 */
	for (int shape = 0; shape < 2; shape++)
	{
		size_t		p = 0;

		if (shape == 0)
		{
			memset(s, 'C', MOE_SMILES_GRAPH_MAX_ATOMS + 2);
			s[1] = '1';
			s[MOE_SMILES_GRAPH_MAX_ATOMS + 1] = '1';
			p = MOE_SMILES_GRAPH_MAX_ATOMS + 2;
		}
		else
		{
			memcpy(s + p, "C1", 2);
			p += 2;
			for (int i = 0; i < 3000; i++)
			{
				memcpy(s + p, "CC11", 4);
				p += 4;
			}
			memcpy(s + p, "CC1", 3);
			p += 3;
		}
		moe_error_clear(&err);
		CHECK_INT(moe_smiles_parse(s, p, &mol, &err), MOE_OK);
		if (err.status == MOE_OK)
		{
			int			ring_atoms = 0;

			for (int i = 0; i < mol.natoms; i++)
				ring_atoms += mol.atoms[i].in_ring;
			CHECK_INT(mol.natoms, shape == 0 ? MOE_SMILES_GRAPH_MAX_ATOMS : 6003);
			CHECK_INT(ring_atoms, mol.natoms);
			CHECK_INT(mol.nbonds, shape == 0 ? MOE_SMILES_GRAPH_MAX_ATOMS : 3001 * 3);
		}
		moe_mol_free(&mol);
		CHECK_INT(moe_featurize_ecfp(s, p, 4, 8, true, out, &err), MOE_OK);
	}
	free(s);
}

/* ---- the fingerprint --------------------------------------------------------- */

/* Reference FNV-1a 64 over bytes; checked against the published vectors. */
static uint64_t
ref_fnv64(uint64_t h, const unsigned char *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
	{
		h ^= p[i];
		h *= 0x100000001b3ULL;
	}
	return h;
}

static uint64_t
ref_mix(uint64_t x)
{
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
	return x ^ (x >> 31);
}

/* Radius-0 identifier from the documented byte layout: 7 little-endian u32. */
static uint64_t
ref_atom_id(int z, int degree, int h, int charge, int aromatic, int ring)
{
	int32_t		v[7] = {0, z, degree, h, charge, aromatic, ring};
	unsigned char b[28];

	for (int k = 0; k < 7; k++)
		for (int j = 0; j < 4; j++)
			b[4 * k + j] = (unsigned char) (((uint32_t) v[k]) >> (8 * j));
	return ref_mix(ref_fnv64(0xcbf29ce484222325ULL, b, sizeof(b)));
}

static void
test_ecfp_reference_hash(void)
{
	CHECK(ref_fnv64(0xcbf29ce484222325ULL, (const unsigned char *) "", 0) == 0xcbf29ce484222325ULL);
	CHECK(ref_fnv64(0xcbf29ce484222325ULL, (const unsigned char *) "a", 1) == 0xaf63dc4c8601ec8cULL);
	CHECK(ref_fnv64(0xcbf29ce484222325ULL, (const unsigned char *) "foobar", 6) == 0x85944171f73967e8ULL);

	moe_mol		mol;
	moe_error	err;
	uint64_t	ids[3 * 3];
	uint8_t		centre[3];

	CHECK_INT(parse("CCO", &mol, &err), MOE_OK);
	CHECK_INT(moe_ecfp_identifiers(&mol, 2, ids, centre, &err), MOE_OK);
	CHECK(ids[0] == ref_atom_id(6, 1, 3, 0, 0, 0));
	CHECK(ids[1] == ref_atom_id(6, 2, 2, 0, 0, 0));
	CHECK(ids[2] == ref_atom_id(8, 1, 1, 0, 0, 0));
	CHECK(centre[0] && centre[1] && centre[2]);

	/* radius 1 of the O: (1, id0(O), 1 pair, (single, id0(CH2))) */
	{
		unsigned char b[4 + 8 + 4 + 4 + 8];
		uint32_t	u32s[3] = {1, 1, MOE_BOND_SINGLE};
		uint64_t	u64s[2] = {ids[2], ids[1]};
		size_t		p = 0;

		for (int j = 0; j < 4; j++)
			b[p++] = (unsigned char) (u32s[0] >> (8 * j));
		for (int j = 0; j < 8; j++)
			b[p++] = (unsigned char) (u64s[0] >> (8 * j));
		for (int j = 0; j < 4; j++)
			b[p++] = (unsigned char) (u32s[1] >> (8 * j));
		for (int j = 0; j < 4; j++)
			b[p++] = (unsigned char) (u32s[2] >> (8 * j));
		for (int j = 0; j < 8; j++)
			b[p++] = (unsigned char) (u64s[1] >> (8 * j));
		CHECK(ids[3 + 2] == ref_mix(ref_fnv64(0xcbf29ce484222325ULL, b, p)));
	}

	/* pinned values: the same on every platform (docs/ecfp.md) */
	printf("     CCO radius-0 ids: %016llx %016llx %016llx\n",
		   (unsigned long long) ids[0], (unsigned long long) ids[1], (unsigned long long) ids[2]);
	CHECK(ids[0] == ECFP_PIN_CH3);
	CHECK(ids[1] == ECFP_PIN_CH2);
	CHECK(ids[2] == ECFP_PIN_OH);
	moe_mol_free(&mol);

	/* a charged aromatic ring atom: negative charge as two's complement */
	CHECK_INT(parse("c1cc[n-]c1", &mol, &err), MOE_OK);
	CHECK_INT(moe_ecfp_identifiers(&mol, 0, ids, NULL, &err), MOE_OK);
	CHECK(ids[3] == ref_atom_id(7, 2, 0, -1, 1, 1));
	CHECK(ids[0] == ref_atom_id(6, 2, 1, 0, 1, 1));
	moe_mol_free(&mol);

	CHECK_INT(moe_ecfp_identifiers(&mol, 5, ids, NULL, &err), MOE_ERR_INVALID);
}

static void
test_ecfp_radius0(void)
{
	float	   *v = malloc(sizeof(float) * MOE_ECFP_MAX_DIM);
	moe_error	err;

	/* CCO: three different atoms, three identifiers, each seen once */
	CHECK_INT(ecfp("CCO", 0, MOE_ECFP_MAX_DIM, true, v, &err), MOE_OK);
	CHECK_INT(count_nonzero(v, MOE_ECFP_MAX_DIM), 3);
	CHECK(v[ECFP_PIN_CH3 % MOE_ECFP_MAX_DIM] == (float) log1p(1.0));
	CHECK(v[ECFP_PIN_OH % MOE_ECFP_MAX_DIM] == (float) log1p(1.0));

	/* propane: two CH3 share an identifier */
	CHECK_INT(ecfp("CCC", 0, MOE_ECFP_MAX_DIM, true, v, &err), MOE_OK);
	CHECK_INT(count_nonzero(v, MOE_ECFP_MAX_DIM), 2);
	CHECK(v[ECFP_PIN_CH3 % MOE_ECFP_MAX_DIM] == (float) log1p(2.0));
	CHECK(v[ECFP_PIN_CH2 % MOE_ECFP_MAX_DIM] == (float) log1p(1.0));

	/* benzene: one identifier, six times, at every radius */
	for (int r = 0; r <= 4; r++)
	{
		CHECK_INT(ecfp("c1ccccc1", r, MOE_ECFP_MAX_DIM, true, v, &err), MOE_OK);
		CHECK_INT(count_nonzero(v, MOE_ECFP_MAX_DIM), r + 1);
	}

	/* CCO at radius 1 and 2: every (atom, radius) environment differs */
	CHECK_INT(ecfp("CCO", 1, MOE_ECFP_MAX_DIM, true, v, &err), MOE_OK);
	CHECK_INT(count_nonzero(v, MOE_ECFP_MAX_DIM), 6);
	CHECK_INT(ecfp("CCO", 2, MOE_ECFP_MAX_DIM, true, v, &err), MOE_OK);
	CHECK_INT(count_nonzero(v, MOE_ECFP_MAX_DIM), 9);

	/* the worked example of docs/ecfp.md: CCO, radius 2, 2048 buckets */
	{
		const int	buckets[9] = {1040, 852, 1346, 1836, 1649, 482, 275, 601, 1593};
		float		w[2048];

		CHECK_INT(ecfp("CCO", 2, 2048, true, w, &err), MOE_OK);
		for (int k = 0; k < 9; k++)
			CHECK(w[buckets[k]] == (float) log1p(1.0));
		CHECK_INT(count_nonzero(w, 2048), 9);
	}

	/* dim 1: every identifier in bucket 0, natoms * (radius + 1) of them */
	float		one;

	CHECK_INT(ecfp("CCO", 2, 1, true, &one, &err), MOE_OK);
	CHECK(one == (float) log1p(9.0));
	CHECK_INT(ecfp("CCO", 2, 1, false, &one, &err), MOE_OK);
	CHECK(one == 1.0f);
	free(v);
}

static void
test_ecfp_bits_and_counts(void)
{
	const char *s = "CC(=O)Nc1ccc(O)cc1";
	float		c[2048],
				b[2048];
	moe_error	err;

	CHECK_INT(ecfp(s, 2, 2048, true, c, &err), MOE_OK);
	CHECK_INT(ecfp(s, 2, 2048, false, b, &err), MOE_OK);
	for (int i = 0; i < 2048; i++)
	{
		CHECK(b[i] == 0.0f || b[i] == 1.0f);
		CHECK((b[i] != 0.0f) == (c[i] != 0.0f));
		CHECK(c[i] >= 0.0f && isfinite(c[i]));
	}
	/* paracetamol has 11 heavy atoms: 33 identifiers at radius 2 */
	double		total = 0;

	for (int i = 0; i < 2048; i++)
		total += expm1((double) c[i]);
	CHECK_NEAR(total, 33.0, 1e-3);

	/* larger radius only adds identifiers */
	float		r1[2048];

	CHECK_INT(ecfp(s, 1, 2048, false, r1, &err), MOE_OK);
	for (int i = 0; i < 2048; i++)
		CHECK(r1[i] <= b[i]);

	/* not NUL-terminated: only len bytes are read */
	CHECK_INT(moe_featurize_ecfp("CCOXYZ", 3, 2, 2048, true, b, &err), MOE_OK);
	CHECK_INT(ecfp("CCO", 2, 2048, true, c, &err), MOE_OK);
	CHECK(memcmp(b, c, sizeof(b)) == 0);

	/* deterministic whatever was in out before */
	memset(b, 0xAB, sizeof(b));
	memset(c, 0x11, sizeof(c));
	CHECK_INT(ecfp(s, 2, 2048, true, b, &err), MOE_OK);
	CHECK_INT(ecfp(s, 2, 2048, true, c, &err), MOE_OK);
	CHECK(memcmp(b, c, sizeof(b)) == 0);
}

static void
test_ecfp_atom_order(void)
{
	const char *pairs[][2] = {
		{"CCO", "OCC"},
		{"CCO", "C(O)C"},
		{"c1ccccc1O", "Oc1ccccc1"},
		{"c1ccccc1O", "c1cc(O)ccc1"},
		{"CC(=O)Nc1ccc(O)cc1", "Oc1ccc(NC(C)=O)cc1"},
		{"CC(C)Cc1ccc(cc1)C(C)C(=O)O", "OC(=O)C(C)c1ccc(CC(C)C)cc1"},
		{"CN1C=NC2=C1C(=O)N(C(=O)N2C)C", "O=C1N(C)C(=O)C2=C(N=CN2C)N1C"},
		{"c1ccccc1c1ccccc1", "c1ccc(-c2ccccc2)cc1"},
		{"c1ccccc1O", "c1:c:c:c:c:c:1O"},
		{"[NH4+].[Cl-]", "[Cl-].[NH4+]"},
		{"C[H]", "C"},
		{"[H]C([H])([H])[H]", "C"},
		{"[2H]OC", "CO"},
		{"C1CCCC=1", "C1=CCCC1"},
	};

	for (int k = 0; k < NELEM(pairs); k++)
	{
		if (!same_fingerprint(pairs[k][0], pairs[k][1]))
		{
			CHECK(0);
			fprintf(stderr, "  \"%s\" and \"%s\" differ\n", pairs[k][0], pairs[k][1]);
		}
	}

	/* and different molecules differ */
	CHECK(!same_fingerprint("CCO", "COC"));
	CHECK(!same_fingerprint("c1ccccc1O", "c1ccccc1N"));
	CHECK(!same_fingerprint("CC(=O)O", "CC(=O)[O-]"));
	CHECK(!same_fingerprint("c1ccncc1", "c1ccccc1"));
	CHECK(!same_fingerprint("C1CCCCC1", "CCCCCC"));
	CHECK(!same_fingerprint("[H][H]", "[H+]"));
	/* no aromaticity perception: a Kekulé benzene is another molecule here */
	CHECK(!same_fingerprint("C1=CC=CC=C1", "c1ccccc1"));
}

/* ---- random SMILES writer ------------------------------------------------------ */

typedef struct writer
{
	const moe_mol *mol;
	uint64_t	rng;
	uint8_t    *visited;
	uint8_t    *closure;		/* per bond: a ring-closure bond */
	int32_t    *order;			/* per atom: shuffled neighbour slots */
	int32_t    *children;		/* per atom: tree children, in nbr slots */
	int32_t    *nchild;
	int		   *label;			/* per bond: %NN label while open, -1 */
	uint8_t		used[100];
	char	   *out;
	size_t		len;
} writer;

static uint32_t
rnd(writer *w, uint32_t n)
{
	w->rng = w->rng * 6364136223846793005ULL + 1442695040888963407ULL;
	return (uint32_t) ((w->rng >> 33) % n);
}

static void
put(writer *w, const char *s)
{
	size_t		n = strlen(s);

	memcpy(w->out + w->len, s, n);
	w->len += n;
}

static void
put_bond(writer *w, int order)
{
	static const char *sym[] = {"", "-", "=", "#", "$", ":"};

	put(w, sym[order]);
}

static void
dfs1(writer *w, int v, int via)
{
	const moe_mol *m = w->mol;
	int32_t		start = m->nbr_start[v],
				deg = m->nbr_start[v + 1] - start;

	w->visited[v] = 1;
	/* shuffle this atom's neighbour slots */
	for (int i = 0; i < deg; i++)
		w->order[start + i] = start + i;
	for (int i = deg - 1; i > 0; i--)
	{
		int			j = (int) rnd(w, (uint32_t) i + 1);
		int32_t		t = w->order[start + i];

		w->order[start + i] = w->order[start + j];
		w->order[start + j] = t;
	}
	w->nchild[v] = 0;
	for (int i = 0; i < deg; i++)
	{
		int32_t		slot = w->order[start + i];
		int32_t		u = m->nbr_atom[slot],
					bond = m->nbr_bond[slot];

		if (bond == via)
			continue;
		if (!w->visited[u])
		{
			w->children[start + w->nchild[v]++] = slot;
			dfs1(w, u, bond);
		}
		else
			w->closure[bond] = 1;
	}
}

static void
write_atom(writer *w, int v)
{
	const moe_mol_atom *a = &w->mol->atoms[v];
	char		buf[32];
	const char *sym = moe_element_symbol(a->element);
	int			p = 0;

	buf[p++] = '[';
	if (a->aromatic)
	{
		buf[p++] = (char) (sym[0] - 'A' + 'a');
		if (sym[1])
			buf[p++] = sym[1];
	}
	else
		p += snprintf(buf + p, sizeof(buf) - p, "%s", sym);
	if (a->hcount > 0)
		p += snprintf(buf + p, sizeof(buf) - p, "H%d", a->hcount);
	if (a->charge != 0)
		p += snprintf(buf + p, sizeof(buf) - p, "%+d", a->charge);
	buf[p++] = ']';
	buf[p] = '\0';
	put(w, buf);
}

static void
dfs2(writer *w, int v)
{
	const moe_mol *m = w->mol;

	write_atom(w, v);
	/* ring closures at this atom, in the shuffled order */
	for (int32_t k = m->nbr_start[v]; k < m->nbr_start[v + 1]; k++)
	{
		int32_t		bond = m->nbr_bond[w->order[k]];
		char		lab[8];

		if (!w->closure[bond])
			continue;
		if (w->label[bond] < 0)
		{
			int			l = 10;

			while (w->used[l])
				l++;
			w->used[l] = 1;
			w->label[bond] = l;
			put_bond(w, m->bonds[bond].order);	/* the symbol on the opening end */
		}
		else
		{
			w->used[w->label[bond]] = 0;
		}
		snprintf(lab, sizeof(lab), "%%%02d", w->label[bond]);
		put(w, lab);
	}
	for (int c = 0; c < w->nchild[v]; c++)
	{
		int32_t		slot = w->children[m->nbr_start[v] + c];
		int			last = c == w->nchild[v] - 1;

		if (!last)
			put(w, "(");
		put_bond(w, m->bonds[m->nbr_bond[slot]].order);
		dfs2(w, m->nbr_atom[slot]);
		if (!last)
			put(w, ")");
	}
}

/* A random SMILES for mol (caller frees). */
static char *
random_smiles(const moe_mol *m, uint64_t seed)
{
	writer		w;
	int32_t    *roots = malloc(sizeof(int32_t) * (m->natoms + 1));
	int			nroots = 0;

	memset(&w, 0, sizeof(w));
	w.mol = m;
	w.rng = seed;
	w.visited = calloc(m->natoms + 1, 1);
	w.closure = calloc(m->nbonds + 1, 1);
	w.order = malloc(sizeof(int32_t) * (2 * m->nbonds + 1));
	w.children = malloc(sizeof(int32_t) * (2 * m->nbonds + 1));
	w.nchild = calloc(m->natoms + 1, sizeof(int32_t));
	w.label = malloc(sizeof(int) * (m->nbonds + 1));
	w.out = malloc(64 * (size_t) m->natoms + 16);
	for (int k = 0; k < m->nbonds; k++)
		w.label[k] = -1;

	/* components from random roots, in random order */
	{
		int32_t    *perm = malloc(sizeof(int32_t) * (m->natoms + 1));

		for (int i = 0; i < m->natoms; i++)
			perm[i] = i;
		for (int i = m->natoms - 1; i > 0; i--)
		{
			int			j = (int) rnd(&w, (uint32_t) i + 1);
			int32_t		t = perm[i];

			perm[i] = perm[j];
			perm[j] = t;
		}
		for (int i = 0; i < m->natoms; i++)
			if (!w.visited[perm[i]])
			{
				roots[nroots++] = perm[i];
				dfs1(&w, perm[i], -1);
			}
		free(perm);
	}
	for (int r = 0; r < nroots; r++)
	{
		if (r > 0)
			put(&w, ".");
		dfs2(&w, roots[r]);
	}
	w.out[w.len] = '\0';
	free(roots);
	free(w.visited);
	free(w.closure);
	free(w.order);
	free(w.children);
	free(w.nchild);
	free(w.label);
	return w.out;
}

static void
test_ecfp_random_rewrites(void)
{
	const char *mols[] = {
		"CC(=O)Nc1ccc(O)cc1",
		"c1ccc2ccccc2c1",
		"c1ccn2ccnc2c1",
		"CN1C=NC2=C1C(=O)N(C(=O)N2C)C",
		"[NH3+]CC(=O)[O-].[Na+].[Cl-]",
		"C12C3C4C1C5C2C3C45",	/* cubane */
		"O=c1cc[nH]cc1",
	};
	int			bad = 0;

	for (int k = 0; k < NELEM(mols); k++)
		for (uint64_t seed = 1; seed <= 20; seed++)
		{
			moe_mol		mol;
			moe_error	err;
			char	   *t;

			CHECK_INT(parse(mols[k], &mol, &err), MOE_OK);
			t = random_smiles(&mol, seed * 7919 + (uint64_t) k);
			if (!same_fingerprint(mols[k], t))
			{
				bad++;
				fprintf(stderr, "  \"%s\" rewritten as \"%s\" differs\n", mols[k], t);
			}
			free(t);
			moe_mol_free(&mol);
		}
	CHECK_INT(bad, 0);
}

/* ---- data sets, when present --------------------------------------------------- */


/*
 * Every drug parses, fingerprints, and keeps its fingerprint when written
 * as random SMILES; returns the number of distinct fingerprints (-1: no file).
 */
static int
check_drugs(const char *path, const char *name, int rewrites)
{
	char	  **rows;
	int			n = unit_read_column2(path, &rows);
	const int	dim = MOE_ECFP_DEFAULT_DIM;

	if (n < 0)
		return -1;
	CHECK(n > 0);

	float	   *vec = malloc(sizeof(float) * dim * (size_t) (n > 0 ? n : 1));
	float	   *tmp = malloc(sizeof(float) * dim);
	int			failed = 0,
				changed = 0,
				distinct = 0,
				max_atoms = 0;

	for (int i = 0; i < n; i++)
	{
		moe_error	err;
		moe_mol		mol;
		size_t		len = strlen(rows[i]);

		moe_error_clear(&err);
		if (moe_featurize_ecfp(rows[i], len, MOE_ECFP_DEFAULT_RADIUS, dim, true,
							   vec + (size_t) i * dim, &err) != MOE_OK)
		{
			failed++;
			fprintf(stderr, "  %s drug %d \"%s\": %s\n", name, i + 1, rows[i], err.message);
			continue;
		}
		if (moe_smiles_parse(rows[i], len, &mol, &err) != MOE_OK)
		{
			failed++;
			continue;
		}
		if (mol.natoms > max_atoms)
			max_atoms = mol.natoms;
		for (int k = 0; k < rewrites; k++)
		{
			char	   *t = random_smiles(&mol, (uint64_t) (i * 31 + k + 1));

			if (moe_featurize_ecfp(t, strlen(t), MOE_ECFP_DEFAULT_RADIUS, dim, true, tmp,
								   &err) != MOE_OK ||
				memcmp(tmp, vec + (size_t) i * dim, sizeof(float) * dim) != 0)
			{
				if (changed++ < 3)
					fprintf(stderr, "  %s drug %d \"%s\" as \"%s\" differs\n", name, i + 1,
							rows[i], t);
			}
			free(t);
		}
		moe_mol_free(&mol);
	}
	CHECK_INT(failed, 0);
	CHECK_INT(changed, 0);
	for (int i = 0; i < n; i++)
	{
		int			seen = 0;

		for (int j = 0; j < i && !seen; j++)
			seen = memcmp(vec + (size_t) i * dim, vec + (size_t) j * dim,
						  sizeof(float) * dim) == 0;
		distinct += !seen;
	}
	printf("     %s drugs: %d SMILES parsed, %d failed, %d distinct ECFP4 vectors, %d random rewrites each unchanged, largest %d atoms\n",
		   name, n, failed, distinct, rewrites, max_atoms);
	free(vec);
	free(tmp);
	unit_free_rows(rows, n);
	return distinct;
}

static void
test_davis_drugs(void)
{
	int			distinct = check_drugs("/work/shared/data/davis/drugs.csv", "davis", 5);

	if (distinct >= 0)
		CHECK_INT(distinct, 68);
}

static void
test_kiba_drugs(void)
{
	check_drugs("/work/shared/data/kiba/drugs.csv", "kiba", 1);
}

/* ---- protein descriptors --------------------------------------------------------- */

static const char aa_order[] = "ACDEFGHIKLMNPQRSTVWY";

/* The classes as the paper lists them, independent of the engine's table. */
static const char *const ref_classes[7] = {"AGV", "ILFP", "YMTS", "HNQW", "RK", "DE", "C"};

static int
ref_class(char c)
{
	if (c >= 'a' && c <= 'z')
		c = (char) (c - 'a' + 'A');
	for (int k = 0; k < 7; k++)
		if (strchr(ref_classes[k], c) != NULL)
			return k;
	return -1;
}

static int
ref_aa(char c)
{
	const char *p;

	if (c >= 'a' && c <= 'z')
		c = (char) (c - 'a' + 'A');
	p = strchr(aa_order, c);
	return (c != '\0' && p != NULL) ? (int) (p - aa_order) : -1;
}

static void
ref_triad(const char *s, float *out)
{
	size_t		len = strlen(s);
	double		cnt[343] = {0},
				total = 0;

	for (size_t i = 0; i + 3 <= len; i++)
	{
		int			a = ref_class(s[i]),
					b = ref_class(s[i + 1]),
					c = ref_class(s[i + 2]);

		if (a < 0 || b < 0 || c < 0)
			continue;
		cnt[a * 49 + b * 7 + c] += 1;
		total += 1;
	}
	for (int k = 0; k < 343; k++)
		out[k] = total > 0 ? (float) (cnt[k] / total) : 0.0f;
}

static void
ref_cksaap(const char *s, int max_gap, float *out)
{
	size_t		len = strlen(s);

	for (int g = 0; g <= max_gap; g++)
	{
		double		cnt[400] = {0},
					total = 0;

		for (size_t i = 0; i + g + 1 < len; i++)
		{
			int			a = ref_aa(s[i]),
						b = ref_aa(s[i + g + 1]);

			if (a < 0 || b < 0)
				continue;
			cnt[a * 20 + b] += 1;
			total += 1;
		}
		for (int k = 0; k < 400; k++)
			out[400 * g + k] = total > 0 ? (float) (cnt[k] / total) : 0.0f;
	}
}

static void
test_triad_classes(void)
{
	for (int k = 0; k < 7; k++)
		for (const char *p = ref_classes[k]; *p; p++)
		{
			CHECK_INT(moe_triad_class(*p), k);
			CHECK_INT(moe_triad_class((char) (*p - 'A' + 'a')), k);
		}
	/* 20 letters in 7 classes, each once */
	int			total = 0;

	for (int k = 0; k < 7; k++)
		total += (int) strlen(ref_classes[k]);
	CHECK_INT(total, 20);
	CHECK_INT(moe_triad_class('X'), -1);
	CHECK_INT(moe_triad_class('*'), -1);
	CHECK_INT(moe_triad_class('\0'), -1);
}

static void
test_triad_hand(void)
{
	float		v[343];
	moe_error	err;

	/* AGV: all class 0 -> triad (0,0,0) */
	CHECK_INT(moe_featurize_protein_triad("AGV", 3, v, &err), MOE_OK);
	CHECK(v[0] == 1.0f);
	CHECK_INT(count_nonzero(v, 343), 1);

	/* ACDEF: ACD (0,6,5) = 47, CDE (6,5,5) = 334, DEF (5,5,1) = 281 */
	CHECK_INT(moe_featurize_protein_triad("ACDEF", 5, v, &err), MOE_OK);
	CHECK(v[47] == (float) (1.0 / 3.0));
	CHECK(v[334] == (float) (1.0 / 3.0));
	CHECK(v[281] == (float) (1.0 / 3.0));
	CHECK_INT(count_nonzero(v, 343), 3);

	/* KRKR: KRK and RKR are both (4,4,4) = 228 */
	CHECK_INT(moe_featurize_protein_triad("KRKR", 4, v, &err), MOE_OK);
	CHECK(v[228] == 1.0f);
	CHECK_INT(count_nonzero(v, 343), 1);

	/* CCCW: (6,6,6) = 342 and (6,6,3) = 339, half each */
	CHECK_INT(moe_featurize_protein_triad("CCCW", 4, v, &err), MOE_OK);
	CHECK(v[342] == 0.5f && v[339] == 0.5f);

	/* skipped letters break triads; lower case reads as upper case */
	CHECK_INT(moe_featurize_protein_triad("AXAAA", 5, v, &err), MOE_OK);
	CHECK(v[0] == 1.0f);
	CHECK_INT(count_nonzero(v, 343), 1);
	float		w[343];

	CHECK_INT(moe_featurize_protein_triad("acdef", 5, v, &err), MOE_OK);
	CHECK_INT(moe_featurize_protein_triad("ACDEF", 5, w, &err), MOE_OK);
	CHECK(memcmp(v, w, sizeof(v)) == 0);

	/* nothing to count: all zeros, not an error */
	CHECK_INT(moe_featurize_protein_triad("AC", 2, v, &err), MOE_OK);
	CHECK_INT(count_nonzero(v, 343), 0);
	CHECK_INT(moe_featurize_protein_triad("XBZJUO", 6, v, &err), MOE_OK);
	CHECK_INT(count_nonzero(v, 343), 0);

	/* only len bytes are read */
	CHECK_INT(moe_featurize_protein_triad("ACDEF*", 5, v, &err), MOE_OK);
	CHECK(memcmp(v, w, sizeof(v)) == 0);
}

static void
test_cksaap_hand(void)
{
	float		v[400 * 6];
	moe_error	err;

	CHECK_INT(moe_cksaap_feature_dim(0), 400);
	CHECK_INT(moe_cksaap_feature_dim(3), 1600);
	CHECK_INT(moe_cksaap_feature_dim(5), 2400);
	CHECK_INT(moe_cksaap_feature_dim(6), 0);
	CHECK_INT(moe_cksaap_feature_dim(-1), 0);

	/* ACD, gaps 0..3: AC, CD (1/2 each); AD (1); nothing for gaps 2, 3 */
	CHECK_INT(moe_featurize_protein_cksaap("ACD", 3, 3, v, &err), MOE_OK);
	CHECK(v[0 * 20 + 1] == 0.5f);
	CHECK(v[1 * 20 + 2] == 0.5f);
	CHECK(v[400 + 0 * 20 + 2] == 1.0f);
	CHECK_INT(count_nonzero(v, 1600), 3);

	/* AXC: the X breaks gap-0 pairs but AC at gap 1 stands */
	CHECK_INT(moe_featurize_protein_cksaap("AXC", 3, 1, v, &err), MOE_OK);
	CHECK_INT(count_nonzero(v, 400), 0);
	CHECK(v[400 + 1] == 1.0f);
	CHECK_INT(count_nonzero(v, 800), 1);

	/* YWYW, gap 0: YW twice, WY once; gap 1: YY, WW; gap 2: YW */
	CHECK_INT(moe_featurize_protein_cksaap("YWYW", 4, 2, v, &err), MOE_OK);
	CHECK(v[19 * 20 + 18] == (float) (2.0 / 3.0));
	CHECK(v[18 * 20 + 19] == (float) (1.0 / 3.0));
	CHECK(v[400 + 19 * 20 + 19] == 0.5f && v[400 + 18 * 20 + 18] == 0.5f);
	CHECK(v[800 + 19 * 20 + 18] == 1.0f);
	CHECK_INT(count_nonzero(v, 1200), 5);

	/* max_gap 0 is the prefix of max_gap 5; case does not matter */
	float		w[400 * 6];
	const char *s = "MKKFFDSRREQGGSGLGSGSSGGGGSTSGLGSGYIGRVFGIGRQQ";

	CHECK_INT(moe_featurize_protein_cksaap(s, strlen(s), 5, v, &err), MOE_OK);
	CHECK_INT(moe_featurize_protein_cksaap(s, strlen(s), 0, w, &err), MOE_OK);
	CHECK(memcmp(v, w, sizeof(float) * 400) == 0);
	char		low[64];

	for (size_t i = 0; i <= strlen(s); i++)
		low[i] = (char) (s[i] >= 'A' && s[i] <= 'Z' ? s[i] - 'A' + 'a' : s[i]);
	CHECK_INT(moe_featurize_protein_cksaap(low, strlen(low), 5, w, &err), MOE_OK);
	CHECK(memcmp(v, w, sizeof(v)) == 0);
	ref_cksaap(s, 5, w);
	CHECK(memcmp(v, w, sizeof(v)) == 0);

	/* a single residue: valid, all zeros */
	CHECK_INT(moe_featurize_protein_cksaap("W", 1, 3, v, &err), MOE_OK);
	CHECK_INT(count_nonzero(v, 1600), 0);
}

static void
expect_protein_error(int which, const char *s, size_t len, int max_gap, moe_status st, int pos,
					 const char *frag, int line)
{
	float		out[2400];
	moe_error	err;
	int			before = unit_failures;

	for (int i = 0; i < 2400; i++)
		out[i] = -3.0f;
	moe_error_clear(&err);
	if (which == 0)
		CHECK_INT(moe_featurize_protein_triad(s, len, out, &err), st);
	else
		CHECK_INT(moe_featurize_protein_cksaap(s, len, max_gap, out, &err), st);
	CHECK_INT(err.status, st);
	CHECK_INT(err.position, pos);
	CHECK(frag == NULL || strstr(err.message, frag) != NULL);
	for (int i = 0; i < 2400; i++)
		CHECK(out[i] == -3.0f);
	if (which == 0)
		CHECK_INT(moe_featurize_protein_triad(s, len, out, NULL), st);
	else
		CHECK_INT(moe_featurize_protein_cksaap(s, len, max_gap, out, NULL), st);
	if (unit_failures != before)
		fprintf(stderr, "  (case at line %d: message \"%s\")\n", line, err.message);
}

static void
test_protein_errors(void)
{
	for (int which = 0; which < 2; which++)
	{
		expect_protein_error(which, "ACD*", 4, 3, MOE_ERR_DATA, 4,
							 "invalid character \"*\" at position 4 of protein sequence", __LINE__);
		expect_protein_error(which, "A1CD", 4, 3, MOE_ERR_DATA, 2, "\"1\" at position 2", __LINE__);
		expect_protein_error(which, "AC D", 4, 3, MOE_ERR_DATA, 3, "\" \" at position 3", __LINE__);
		expect_protein_error(which, "ACD\n", 4, 3, MOE_ERR_DATA, 4, "byte 0x0A", __LINE__);
		expect_protein_error(which, "A\x80", 2, 3, MOE_ERR_DATA, 2, "byte 0x80 at position 2", __LINE__);
		expect_protein_error(which, "A\0C", 3, 3, MOE_ERR_DATA, 2, "byte 0x00", __LINE__);
		expect_protein_error(which, "", 0, 3, MOE_ERR_DATA, 0, "protein sequence is empty", __LINE__);
		expect_protein_error(which, NULL, 0, 3, MOE_ERR_DATA, 0, "protein sequence is empty", __LINE__);
	}
	expect_protein_error(1, "ACD", 3, -1, MOE_ERR_INVALID, 0,
						 "CKSAAP max_gap must be between 0 and 5, not -1", __LINE__);
	expect_protein_error(1, "ACD", 3, 6, MOE_ERR_INVALID, 0, "not 6", __LINE__);
	/* max_gap is checked before the text */
	expect_protein_error(1, "AC*", 3, 6, MOE_ERR_INVALID, 0, "max_gap", __LINE__);

	moe_error	err;

	CHECK_INT(moe_featurize_protein_triad("ACD", 3, NULL, &err), MOE_ERR_INVALID);
	CHECK(strstr(err.message, "protein output buffer is NULL") != NULL);
	CHECK_INT(moe_featurize_protein_cksaap("ACD", 3, 1, NULL, &err), MOE_ERR_INVALID);
}

static void
check_targets(const char *path, const char *name)
{
	char	  **rows;
	int			n = unit_read_column2(path, &rows);

	if (n < 0)
		return;
	CHECK(n > 0);

	float		t[343],
				rt[343],
				c[2400],
				rc[2400];
	int			failed = 0,
				mismatch = 0,
				bad_sum = 0;

	for (int i = 0; i < n; i++)
	{
		moe_error	err;
		size_t		len = strlen(rows[i]);

		moe_error_clear(&err);
		if (moe_featurize_protein_triad(rows[i], len, t, &err) != MOE_OK ||
			moe_featurize_protein_cksaap(rows[i], len, MOE_CKSAAP_MAX_GAP, c, &err) != MOE_OK)
		{
			failed++;
			fprintf(stderr, "  %s target %d: %s\n", name, i + 1, err.message);
			continue;
		}
		ref_triad(rows[i], rt);
		ref_cksaap(rows[i], MOE_CKSAAP_MAX_GAP, rc);
		mismatch += memcmp(t, rt, sizeof(t)) != 0;
		mismatch += memcmp(c, rc, sizeof(c)) != 0;

		double		s = 0;

		for (int k = 0; k < 343; k++)
			s += t[k];
		bad_sum += fabs(s - 1.0) > 1e-4;
		for (int g = 0; g <= MOE_CKSAAP_MAX_GAP; g++)
		{
			s = 0;
			for (int k = 0; k < 400; k++)
				s += c[400 * g + k];
			bad_sum += fabs(s - 1.0) > 1e-4;
		}
	}
	printf("     %s targets: %d sequences, %d failed, %d differ from the reference, %d bad sums\n",
		   name, n, failed, mismatch, bad_sum);
	CHECK_INT(failed, 0);
	CHECK_INT(mismatch, 0);
	CHECK_INT(bad_sum, 0);
	unit_free_rows(rows, n);
}

static void
test_protein_data(void)
{
	/* ABL1 kinase domain fragment */
	const char *abl = "NYDKWEMERTDITMKHKLGGGQYGEVYEGVWKKYSLTVAVKTLKEDTMEVEEFLKEAAVMKEIKHPNLVQLLGVCTREPPFYIITEF";
	float		t[343],
				rt[343];
	moe_error	err;

	CHECK_INT(moe_featurize_protein_triad(abl, strlen(abl), t, &err), MOE_OK);
	ref_triad(abl, rt);
	CHECK(memcmp(t, rt, sizeof(t)) == 0);
	check_targets("/work/shared/data/davis/targets.csv", "davis");
	check_targets("/work/shared/data/kiba/targets.csv", "kiba");
}

int
main(void)
{
	RUN(test_elements);
	RUN(test_parse_ethanol);
	RUN(test_parse_aromatic);
	RUN(test_parse_charges_and_brackets);
	RUN(test_parse_valences);
	RUN(test_parse_rings_and_dots);
	RUN(test_parse_errors);
	RUN(test_parse_limits);
	RUN(test_ecfp_reference_hash);
	RUN(test_ecfp_radius0);
	RUN(test_ecfp_bits_and_counts);
	RUN(test_ecfp_atom_order);
	RUN(test_ecfp_random_rewrites);
	RUN(test_davis_drugs);
	RUN(test_kiba_drugs);
	RUN(test_triad_classes);
	RUN(test_triad_hand);
	RUN(test_cksaap_hand);
	RUN(test_protein_errors);
	RUN(test_protein_data);
	return unit_summary("test_ecfp");
}
