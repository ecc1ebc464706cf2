/*
 * amino_acids.h — the amino-acid alphabet shared by the protein featurizers
 * (featurize.c: k-mer composition; protein_features.c: triad and CKSAAP),
 * so they accept and reject exactly the same letters.
 */
#ifndef MOE_AMINO_ACIDS_H
#define MOE_AMINO_ACIDS_H

#define AA_SKIP		20			/* accepted letter that is not counted */
#define AA_INVALID	(-1)

/* Index of c in "ACDEFGHIKLMNPQRSTVWY" (either case), AA_SKIP, or AA_INVALID. */
static inline int
aa_index(unsigned char c)
{
	if (c >= 'a' && c <= 'z')
		c = (unsigned char) (c - 'a' + 'A');
	switch (c)
	{
		case 'A': return 0;
		case 'C': return 1;
		case 'D': return 2;
		case 'E': return 3;
		case 'F': return 4;
		case 'G': return 5;
		case 'H': return 6;
		case 'I': return 7;
		case 'K': return 8;
		case 'L': return 9;
		case 'M': return 10;
		case 'N': return 11;
		case 'P': return 12;
		case 'Q': return 13;
		case 'R': return 14;
		case 'S': return 15;
		case 'T': return 16;
		case 'V': return 17;
		case 'W': return 18;
		case 'Y': return 19;
		case 'X':
		case 'B':
		case 'Z':
		case 'J':
		case 'U':
		case 'O':
			return AA_SKIP;
		default:
			return AA_INVALID;
	}
}

#endif
