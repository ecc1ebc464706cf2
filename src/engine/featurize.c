/*
 * featurize.c — SMILES token n-gram hashing and protein k-mer composition.
 *
 * Both featurizers read their text through (pointer, length): the text need
 * not be NUL-terminated and may not contain a NUL.  They validate the whole
 * input before writing anything, so on error out is left untouched.  There is
 * no static mutable state: both functions are thread-safe and reentrant.
 * See docs/featurizers.md for the grammar and the output layout.
 */
#include "featurize.h"
#include "amino_acids.h"

#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#define FNV_OFFSET	2166136261u
#define FNV_PRIME	16777619u

/* Text of the normalised ring-closure token. */
static const char ring_token[] = "<ring>";

/*
 * Describe byte c for an error message: a printable ASCII character as
 * "c" (quoted), anything else as byte 0xNN.
 */
static const char *
describe_byte(unsigned char c, char *buf, size_t size)
{
	if (c >= 0x20 && c <= 0x7e)
		snprintf(buf, size, "\"%c\"", (char) c);
	else
		snprintf(buf, size, "byte 0x%02X", (unsigned) c);
	return buf;
}

moe_status
moe_invalid_char(moe_error *err, unsigned char c, size_t pos0, const char *what)
{
	char		buf[16];

	return moe_fail_at(err, MOE_ERR_DATA, (int) pos0 + 1,
					   "invalid character %s at position %d of %s",
					   describe_byte(c, buf, sizeof(buf)), (int) pos0 + 1, what);
}

moe_status
moe_check_protein_sequence(const unsigned char *s, size_t len, const float *out, moe_error *err)
{
	if (s == NULL || len == 0)
		return moe_fail(err, MOE_ERR_DATA, "protein sequence is empty");
	if (len > (size_t) INT_MAX)
		return moe_fail(err, MOE_ERR_DATA,
						"protein sequence is too long (%zu bytes, at most %d)", len, INT_MAX);
	if (out == NULL)
		return moe_fail(err, MOE_ERR_INVALID, "protein output buffer is NULL");
	for (size_t i = 0; i < len; i++)
		if (aa_index(s[i]) == AA_INVALID)
			return moe_invalid_char(err, s[i], i, "protein sequence");
	return MOE_OK;
}

static inline int
is_letter(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
}

/* ---- SMILES ------------------------------------------------------------ */

/*
 * A token is a slice of the input.  Ring closures (a digit or %NN) are
 * stored with len 0 and hashed as "<ring>".
 */
typedef struct smiles_token
{
	uint32_t	off;
	uint32_t	len;
} smiles_token;

/*
 * Split smiles[0..len) into tokens.  toks must hold len entries; *ntok gets
 * the count.  Returns MOE_ERR_DATA with a 1-based position on bad input.
 */
static moe_status
smiles_tokenize(const char *smiles, size_t len, smiles_token *toks, size_t *ntok,
				moe_error *err)
{
	const unsigned char *s = (const unsigned char *) smiles;
	size_t		n = 0;
	size_t		depth = 0;
	size_t		i = 0;

	while (i < len)
	{
		unsigned char c = s[i];
		size_t		atom = moe_smiles_organic_atom(s, len, i);
		size_t		tlen = 1;
		int			ring = 0;

		if (atom > 0)
			tlen = atom;		/* an organic-subset atom, one token */
		else if (moe_smiles_is_bond(c) || c == '.')
			tlen = 1;			/* a bond or a dot, one byte */
		else
			switch (c)
			{
				case '[':
					{
						size_t		j = i + 1;

						for (;;)
						{
							if (j >= len)
								return moe_fail_at(err, MOE_ERR_DATA, (int) i + 1,
												   "unclosed bracket atom: \"[\" at position %d of SMILES string has no matching \"]\"",
												   (int) i + 1);
							if (s[j] == ']')
								break;
							if (s[j] == '[')
								return moe_fail_at(err, MOE_ERR_DATA, (int) j + 1,
												   "nested \"[\" at position %d of SMILES string (bracket atom opened at position %d)",
												   (int) j + 1, (int) i + 1);
							if (!(is_letter(s[j]) || moe_is_digit(s[j]) || s[j] == '+' ||
								  s[j] == '-' || s[j] == '@' || s[j] == ':' || s[j] == '*'))
								return moe_invalid_char(err, s[j], j, "SMILES string");
							j++;
						}
						if (j == i + 1)
							return moe_fail_at(err, MOE_ERR_DATA, (int) i + 1,
											   "empty bracket atom \"[]\" at position %d of SMILES string",
											   (int) i + 1);
						tlen = j - i + 1;
						break;
					}
				case ']':
					return moe_fail_at(err, MOE_ERR_DATA, (int) i + 1,
									   "unmatched \"]\" at position %d of SMILES string",
									   (int) i + 1);
				case '(':
					depth++;
					break;
				case ')':
					if (depth == 0)
						return moe_fail_at(err, MOE_ERR_DATA, (int) i + 1,
										   "unmatched \")\" at position %d of SMILES string",
										   (int) i + 1);
					depth--;
					break;
				case '%':
					if (!(i + 2 < len && moe_is_digit(s[i + 1]) && moe_is_digit(s[i + 2])))
						return moe_fail_at(err, MOE_ERR_DATA, (int) i + 1,
										   "ring closure \"%%\" at position %d of SMILES string must be followed by two digits",
										   (int) i + 1);
					tlen = 3;
					ring = 1;
					break;
				default:
					if (!moe_is_digit(c))
						return moe_invalid_char(err, c, i, "SMILES string");
					ring = 1;
					break;
			}
		toks[n].off = (uint32_t) i;
		toks[n].len = ring ? 0 : (uint32_t) tlen;
		n++;
		i += tlen;
	}

	if (depth > 0)
	{
		/*
		 * Report the leftmost "(" that is never closed: scanning backwards,
		 * a "(" met while no ")" is pending is unclosed; the last one met is
		 * the leftmost.  Bracket atoms never contain parentheses.
		 */
		size_t		pending = 0;
		size_t		open = 0;

		for (size_t k = len; k-- > 0;)
		{
			if (s[k] == ')')
				pending++;
			else if (s[k] == '(')
			{
				if (pending == 0)
					open = k;
				else
					pending--;
			}
		}
		return moe_fail_at(err, MOE_ERR_DATA, (int) open + 1,
						   "unclosed \"(\" at position %d of SMILES string",
						   (int) open + 1);
	}

	*ntok = n;
	return MOE_OK;
}

static inline uint32_t
fnv1a_bytes(uint32_t h, const unsigned char *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
	{
		h ^= p[i];
		h *= FNV_PRIME;
	}
	return h;
}

moe_status
moe_featurize_smiles(const char *smiles, size_t len, int dim, int max_n,
					 float *out, moe_error *err)
{
	smiles_token *toks;
	size_t		ntok = 0;
	moe_status	st;

	if (dim < 1 || dim > MOE_SMILES_MAX_DIM)
		return moe_fail(err, MOE_ERR_INVALID,
						"SMILES dim must be between 1 and %d, not %d",
						MOE_SMILES_MAX_DIM, dim);
	if (max_n < 1 || max_n > MOE_SMILES_MAX_N)
		return moe_fail(err, MOE_ERR_INVALID,
						"SMILES max_n must be between 1 and %d, not %d",
						MOE_SMILES_MAX_N, max_n);
	if (smiles == NULL || len == 0)
		return moe_fail(err, MOE_ERR_DATA, "SMILES string is empty");
	if (len > (size_t) INT_MAX)
		return moe_fail(err, MOE_ERR_DATA,
						"SMILES string is too long (%zu bytes, at most %d)", len, INT_MAX);
	if (out == NULL)
		return moe_fail(err, MOE_ERR_INVALID, "SMILES output buffer is NULL");
	if (len > SIZE_MAX / sizeof(smiles_token))
		return moe_fail(err, MOE_ERR_NOMEM, "SMILES string too long to tokenize");

	toks = malloc(len * sizeof(smiles_token));
	if (toks == NULL)
		return moe_fail(err, MOE_ERR_NOMEM,
						"out of memory tokenizing a SMILES string of %zu bytes", len);

	st = smiles_tokenize(smiles, len, toks, &ntok, err);
	if (st != MOE_OK)
	{
		free(toks);
		return st;
	}

	/* Count n-grams directly in out (exact while a bucket stays < 2^24). */
	for (int b = 0; b < dim; b++)
		out[b] = 0.0f;
	for (int n = 1; n <= max_n; n++)
	{
		unsigned char prefix[4];
		size_t		plen = 0;

		/* n <= MOE_SMILES_MAX_N < 10: one digit then ':' */
		prefix[plen++] = (unsigned char) ('0' + n);
		prefix[plen++] = ':';
		uint32_t	h0 = fnv1a_bytes(FNV_OFFSET, prefix, plen);

		for (size_t start = 0; start + (size_t) n <= ntok; start++)
		{
			uint32_t	h = h0;

			for (int j = 0; j < n; j++)
			{
				const smiles_token *t = &toks[start + j];

				if (j > 0)
					h = fnv1a_bytes(h, (const unsigned char *) " ", 1);
				if (t->len == 0)
					h = fnv1a_bytes(h, (const unsigned char *) ring_token,
									sizeof(ring_token) - 1);
				else
					h = fnv1a_bytes(h, (const unsigned char *) smiles + t->off, t->len);
			}
			out[h % (uint32_t) dim] += 1.0f;
		}
	}
	/*
	 * log(1 + count) rounded from double: the float result is then the
	 * correctly rounded value on any libm, where log1pf itself may differ by
	 * an ulp between libraries (glibc's log1pf(6) is one ulp off).
	 */
	for (int b = 0; b < dim; b++)
		out[b] = (float) log1p((double) out[b]);

	free(toks);
	return MOE_OK;
}

/* ---- protein ----------------------------------------------------------- */


int
moe_protein_feature_dim(int max_k)
{
	int			dim = 0;
	int			block = 1;

	if (max_k < 1 || max_k > MOE_PROTEIN_MAX_K)
		return 0;
	for (int k = 1; k <= max_k; k++)
	{
		block *= 20;
		dim += block;
	}
	return dim;
}

moe_status
moe_featurize_protein(const char *seq, size_t len, int max_k,
					  float *out, moe_error *err)
{
	const unsigned char *s = (const unsigned char *) seq;
	int			dim = moe_protein_feature_dim(max_k);
	size_t		block_off[MOE_PROTEIN_MAX_K];
	size_t		block_len[MOE_PROTEIN_MAX_K];
	size_t		total[MOE_PROTEIN_MAX_K];
	size_t		prev[MOE_PROTEIN_MAX_K];	/* index of the k-mer ending at i-1 */
	size_t		run = 0;		/* countable residues ending at i */
	moe_status	st;

	if (dim == 0)
		return moe_fail(err, MOE_ERR_INVALID,
						"protein max_k must be between 1 and %d, not %d",
						MOE_PROTEIN_MAX_K, max_k);
	/* Validate everything before touching out. */
	if ((st = moe_check_protein_sequence(s, len, out, err)) != MOE_OK)
		return st;

	for (int b = 0; b < dim; b++)
		out[b] = 0.0f;
	{
		size_t		off = 0,
					block = 1;

		for (int k = 0; k < max_k; k++)
		{
			block *= 20;
			block_off[k] = off;
			block_len[k] = block;
			off += block;
			total[k] = 0;
			prev[k] = 0;
		}
	}

	/* Count k-mers directly in out (exact while a count stays < 2^24). */
	for (size_t i = 0; i < len; i++)
	{
		int			a = aa_index(s[i]);
		size_t		cur[MOE_PROTEIN_MAX_K];

		if (a == AA_SKIP)
		{
			run = 0;
			continue;
		}
		run++;
		for (int k = 0; k < max_k; k++)
		{
			cur[k] = (k == 0) ? (size_t) a : prev[k - 1] * 20 + (size_t) a;
			if (run >= (size_t) k + 1)
			{
				out[block_off[k] + cur[k]] += 1.0f;
				total[k]++;
			}
		}
		for (int k = 0; k < max_k; k++)
			prev[k] = cur[k];
	}

	for (int k = 0; k < max_k; k++)
	{
		if (total[k] == 0)
			continue;
		for (size_t j = 0; j < block_len[k]; j++)
			out[block_off[k] + j] = (float) ((double) out[block_off[k] + j] / (double) total[k]);
	}
	return MOE_OK;
}
