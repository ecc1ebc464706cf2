/*
 * featurize.h — turn SMILES strings and protein sequences into vectors.
 *
 * Both featurizers are pure functions of their input: the same text always
 * gives the same vector, on every platform (no locale, no pointer hashing).
 * They reject text outside their alphabet with MOE_ERR_DATA, the 1-based
 * position in err->position and a message naming the character.
 */
#ifndef MOE_FEATURIZE_H
#define MOE_FEATURIZE_H

#include <stddef.h>

#include "moe_status.h"

#define MOE_SMILES_DEFAULT_DIM		1024
#define MOE_SMILES_DEFAULT_MAX_N	3
#define MOE_SMILES_MAX_DIM			(1 << 20)
#define MOE_SMILES_MAX_N			8

#define MOE_PROTEIN_DEFAULT_K		3
#define MOE_PROTEIN_MAX_K			3

/*
 * The error of every featurizer for a byte it cannot read: "invalid
 * character "&" at position 3 of SMILES string" (a printable byte quoted,
 * any other as byte 0xNN), with the 1-based position in err->position;
 * what names the input ("SMILES string", "protein sequence").
 */
moe_status	moe_invalid_char(moe_error *err, unsigned char c, size_t pos0, const char *what);

/*
 * The checks of every protein featurizer, in this order: not empty, at
 * most INT_MAX bytes, an output buffer, every byte an amino-acid letter.
 */
moe_status	moe_check_protein_sequence(const unsigned char *s, size_t len, const float *out,
									   moe_error *err);

static inline int
moe_is_digit(unsigned char c)
{
	return c >= '0' && c <= '9';
}

/* Whether c is a SMILES bond symbol: - = # $ : / or a backslash. */
static inline int
moe_smiles_is_bond(unsigned char c)
{
	return c == '-' || c == '=' || c == '#' || c == '$' || c == ':' || c == '/' || c == '\\';
}

/*
 * The length of the organic-subset atom of SMILES (B C N O P S F Cl Br I,
 * aromatic b c n o p s, and the wildcard *) that starts at s[i], or 0 when
 * none does: the one definition the tokenizer and the graph parser share.
 */
static inline size_t
moe_smiles_organic_atom(const unsigned char *s, size_t len, size_t i)
{
	switch (s[i])
	{
		case 'C':
			return i + 1 < len && s[i + 1] == 'l' ? 2 : 1;
		case 'B':
			return i + 1 < len && s[i + 1] == 'r' ? 2 : 1;
		case 'N':
		case 'O':
		case 'P':
		case 'S':
		case 'F':
		case 'I':
		case 'b':
		case 'c':
		case 'n':
		case 'o':
		case 'p':
		case 's':
		case '*':
			return 1;
		default:
			return 0;
	}
}

/*
 * SMILES token n-grams hashed into dim buckets.
 *
 * The string is split into SMILES tokens (bracket atoms, organic-subset
 * atoms, bonds, branches, ring closures, dots); every run of n consecutive
 * tokens, 1 <= n <= max_n, is hashed (FNV-1a, 32 bit) into one of dim
 * buckets; out[b] = log(1 + count of n-grams in bucket b).
 * out must hold dim floats.
 */
moe_status	moe_featurize_smiles(const char *smiles, size_t len, int dim, int max_n,
								 float *out, moe_error *err);

/*
 * Amino-acid k-mer composition for every k in 1..max_k, concatenated:
 * 20 + 400 + 8000 values for max_k = 3.  Each block holds frequencies that
 * sum to 1 (or all zeros when the sequence has no k-mer of that length).
 * out must hold moe_protein_feature_dim(max_k) floats.
 */
moe_status	moe_featurize_protein(const char *seq, size_t len, int max_k,
								  float *out, moe_error *err);

/* Length of the protein vector for max_k, or 0 when max_k is out of range. */
int			moe_protein_feature_dim(int max_k);

#endif
