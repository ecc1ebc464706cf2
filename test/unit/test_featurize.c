#include "ecfp.h"
#include "featurize.h"
#include "featurizer.h"
#include "protein_features.h"
#include "unit.h"
#include "unit_csv.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* ---- independent reference implementations ------------------------------ */

/* 32-bit FNV-1a over a NUL-terminated string. */
static uint32_t
ref_fnv1a(const char *s)
{
	uint32_t	h = 2166136261u;

	for (; *s; s++)
	{
		h ^= (unsigned char) *s;
		h *= 16777619u;
	}
	return h;
}

/* Expected vector from a list of literal n-gram strings ("2:C O", ...). */
static void
ref_from_grams(const char *const *grams, int ngrams, int dim, float *out)
{
	for (int b = 0; b < dim; b++)
		out[b] = 0.0f;
	for (int g = 0; g < ngrams; g++)
		out[ref_fnv1a(grams[g]) % (uint32_t) dim] += 1.0f;
	for (int b = 0; b < dim; b++)
		out[b] = (float) log1p((double) out[b]);
}

/* Expected vector from an already-tokenised SMILES (tokens as strings). */
static void
ref_from_tokens(const char *const *toks, int ntok, int dim, int max_n, float *out)
{
	char		buf[512];

	for (int b = 0; b < dim; b++)
		out[b] = 0.0f;
	for (int n = 1; n <= max_n; n++)
		for (int s = 0; s + n <= ntok; s++)
		{
			int			p = snprintf(buf, sizeof(buf), "%d:", n);

			for (int j = 0; j < n; j++)
				p += snprintf(buf + p, sizeof(buf) - p, "%s%s", j ? " " : "", toks[s + j]);
			out[ref_fnv1a(buf) % (uint32_t) dim] += 1.0f;
		}
	for (int b = 0; b < dim; b++)
		out[b] = (float) log1p((double) out[b]);
}

static int
count_nonzero(const float *v, int n)
{
	int			c = 0;

	for (int i = 0; i < n; i++)
		c += v[i] != 0.0f;
	return c;
}

static moe_status
smiles(const char *s, int dim, int max_n, float *out, moe_error *err)
{
	return moe_featurize_smiles(s, strlen(s), dim, max_n, out, err);
}

#define NTOK(a) ((int) (sizeof(a) / sizeof((a)[0])))

/* Featurize s and compare bit for bit with the reference over toks. */
static int
smiles_matches_tokens(const char *s, const char *const *toks, int ntok, int dim, int max_n)
{
	float	   *got = malloc(sizeof(float) * dim);
	float	   *exp = malloc(sizeof(float) * dim);
	moe_error	err;
	int			ok;

	moe_error_clear(&err);
	ok = smiles(s, dim, max_n, got, &err) == MOE_OK;
	if (!ok)
		fprintf(stderr, "  \"%s\": %s\n", s, err.message);
	ref_from_tokens(toks, ntok, dim, max_n, exp);
	ok = ok && memcmp(got, exp, sizeof(float) * dim) == 0;
	free(got);
	free(exp);
	return ok;
}

/* ---- SMILES ----------------------------------------------------------------- */

static void
test_reference_fnv(void)
{
	/* published FNV-1a 32-bit test vectors: checks the reference itself */
	CHECK(ref_fnv1a("") == 0x811c9dc5u);
	CHECK(ref_fnv1a("a") == 0xe40c292cu);
	CHECK(ref_fnv1a("foobar") == 0xbf9cf968u);
}

static void
test_smiles_cco_exact(void)
{
	const char *grams[] = {"1:C", "1:C", "1:O", "2:C C", "2:C O"};
	float		got[1024],
				exp[1024];
	moe_error	err;

	CHECK_INT(smiles("CCO", 1024, 2, got, &err), MOE_OK);
	ref_from_grams(grams, NTOK(grams), 1024, exp);
	CHECK(memcmp(got, exp, sizeof(got)) == 0);

	/* the buckets, spelled out: "1:C" holds log1p(2), the others log1p(1) */
	uint32_t	bc = ref_fnv1a("1:C") % 1024,
				bo = ref_fnv1a("1:O") % 1024,
				bcc = ref_fnv1a("2:C C") % 1024,
				bco = ref_fnv1a("2:C O") % 1024;

	if (bc != bo && bc != bcc && bc != bco && bo != bcc && bo != bco && bcc != bco)
	{
		CHECK_NEAR(got[bc], log1p(2.0), 1e-6);
		CHECK_NEAR(got[bo], log1p(1.0), 1e-6);
		CHECK_NEAR(got[bcc], log1p(1.0), 1e-6);
		CHECK_NEAR(got[bco], log1p(1.0), 1e-6);
		CHECK_INT(count_nonzero(got, 1024), 4);
	}
	else
		CHECK(0);				/* would make this test weaker: flag it */

	/* the worked example of docs/featurizers.md, buckets pinned as numbers */
	CHECK_INT(smiles("CCO", 1024, 3, got, &err), MOE_OK);
	CHECK(ref_fnv1a("3:C C O") == 0xc22dae7du);
	CHECK(got[67] == (float) log1p(2.0));	/* "1:C" */
	CHECK(got[807] == (float) log1p(1.0));	/* "1:O" */
	CHECK(got[567] == (float) log1p(1.0));	/* "2:C C" */
	CHECK(got[851] == (float) log1p(1.0));	/* "2:C O" */
	CHECK(got[637] == (float) log1p(1.0));	/* "3:C C O" */
	CHECK_INT(count_nonzero(got, 1024), 5);

	/* dim 1: every n-gram in bucket 0; "CCO" with max_n 3 has 3+2+1 */
	float		one;

	CHECK_INT(smiles("CCO", 1, 3, &one, &err), MOE_OK);
	CHECK(one == (float) log1p(6.0));

	/* max_n beyond the token count: only the n-grams that exist */
	CHECK_INT(smiles("C", 16, 8, got, &err), MOE_OK);
	CHECK(got[ref_fnv1a("1:C") % 16] == (float) log1p(1.0));
	CHECK_INT(count_nonzero(got, 16), 1);
}

static void
test_smiles_ring_normalised(void)
{
	const char *benzene[] = {"c", "<ring>", "c", "c", "c", "c", "c", "<ring>"};
	float		a[2048],
				b[2048],
				c[2048];
	moe_error	err;

	CHECK(smiles_matches_tokens("c1ccccc1", benzene, NTOK(benzene), 2048, 3));
	CHECK_INT(smiles("c1ccccc1", 2048, 3, a, &err), MOE_OK);
	CHECK_INT(smiles("c2ccccc2", 2048, 3, b, &err), MOE_OK);
	CHECK_INT(smiles("c%42ccccc%42", 2048, 3, c, &err), MOE_OK);
	CHECK(memcmp(a, b, sizeof(a)) == 0);
	CHECK(memcmp(a, c, sizeof(a)) == 0);

	/* %NN is one token; a third digit is a ring closure of its own */
	const char *pct[] = {"C", "<ring>", "<ring>", "C", "<ring>", "<ring>"};

	CHECK(smiles_matches_tokens("C%123C%123", pct, NTOK(pct), 512, 4));
	const char *two[] = {"C", "<ring>", "<ring>", "C", "C", "<ring>", "<ring>"};

	CHECK(smiles_matches_tokens("C12CC12", two, NTOK(two), 512, 3));
}

static void
test_smiles_two_letter_atoms(void)
{
	const char *ccl[] = {"C", "Cl"};
	const char *brc[] = {"Br", "c", "<ring>", "c", "c", "c", "c", "c", "<ring>"};
	const char *bcl[] = {"B", "C", "Cl", "C"};
	float		a[1024],
				b[1024];
	moe_error	err;

	CHECK(smiles_matches_tokens("CCl", ccl, NTOK(ccl), 1024, 3));
	CHECK(smiles_matches_tokens("Brc1ccccc1", brc, NTOK(brc), 1024, 3));
	CHECK(smiles_matches_tokens("BCClC", bcl, NTOK(bcl), 1024, 3));

	CHECK_INT(smiles("CCl", 1024, 3, a, &err), MOE_OK);
	CHECK_INT(smiles("CC", 1024, 3, b, &err), MOE_OK);
	CHECK(memcmp(a, b, sizeof(a)) != 0);
	CHECK(a[ref_fnv1a("1:Cl") % 1024] > 0.0f);

	/* a lone "l" or "r" is not an atom */
	moe_error_clear(&err);
	CHECK_INT(smiles("l", 1024, 3, a, &err), MOE_ERR_DATA);
	CHECK_INT(err.position, 1);
	CHECK(strstr(err.message, "\"l\"") != NULL);
	CHECK_INT(smiles("CCll", 1024, 3, a, &err), MOE_ERR_DATA);
	CHECK_INT(err.position, 4);
	CHECK_INT(smiles("Cr", 1024, 3, a, &err), MOE_ERR_DATA);
	CHECK_INT(err.position, 2);
}

static void
test_smiles_bracket_atoms(void)
{
	const char *nh4[] = {"[NH4+]"};
	const char *chiral[] = {"N", "[C@@H]", "(", "C", ")", "C", "(", "=", "O", ")", "O"};
	const char *salt[] = {"[Na+]", ".", "[Cl-]"};
	const char *misc[] = {"[13CH3:1]", "-", "[*]", "/", "C", "=", "C", "\\", "*", "#", "N", "$", "[U]"};

	CHECK(smiles_matches_tokens("[NH4+]", nh4, NTOK(nh4), 1024, 3));
	CHECK(smiles_matches_tokens("N[C@@H](C)C(=O)O", chiral, NTOK(chiral), 1024, 3));
	CHECK(smiles_matches_tokens("[Na+].[Cl-]", salt, NTOK(salt), 1024, 2));
	CHECK(smiles_matches_tokens("[13CH3:1]-[*]/C=C\\*#N$[U]", misc, NTOK(misc), 4096, 8));

	/* the bracket token keeps its exact text: [C@@H] and [C@H] differ */
	float		a[1024],
				b[1024];
	moe_error	err;

	CHECK_INT(smiles("N[C@@H](C)C(=O)O", 1024, 1, a, &err), MOE_OK);
	CHECK_INT(smiles("N[C@H](C)C(=O)O", 1024, 1, b, &err), MOE_OK);
	CHECK(memcmp(a, b, sizeof(a)) != 0);
}

static void
test_smiles_not_nul_terminated(void)
{
	float		a[256],
				b[256];
	moe_error	err;
	char		buf[3] = {'C', 'C', 'O'};	/* no NUL */

	CHECK_INT(moe_featurize_smiles("CCOXYZ", 3, 256, 3, a, &err), MOE_OK);
	CHECK_INT(moe_featurize_smiles(buf, 3, 256, 3, b, &err), MOE_OK);
	CHECK(memcmp(a, b, sizeof(a)) == 0);
}

/* Expect an error with status st and position pos, whose message holds frag;
 * out must not be written. */
static void
expect_smiles_error(const char *s, size_t len, int dim, int max_n,
					moe_status st, int pos, const char *frag, int line)
{
	float		out[64];
	moe_error	err;
	int			before = unit_failures;

	for (int i = 0; i < 64; i++)
		out[i] = -7.0f;
	moe_error_clear(&err);
	CHECK_INT(moe_featurize_smiles(s, len, dim, max_n, out, &err), st);
	CHECK_INT(err.status, st);
	CHECK_INT(err.position, pos);
	CHECK(frag == NULL || strstr(err.message, frag) != NULL);
	for (int i = 0; i < 64; i++)
		CHECK(out[i] == -7.0f);
	/* err may be NULL */
	CHECK_INT(moe_featurize_smiles(s, len, dim, max_n, out, NULL), st);
	if (unit_failures != before)
		fprintf(stderr, "  (case at line %d: message \"%s\")\n", line, err.message);
}

#define EXPECT_SMILES_ERR(s, st, pos, frag) \
	expect_smiles_error((s), strlen(s), 64, 3, (st), (pos), (frag), __LINE__)

static void
test_smiles_errors(void)
{
	/* unknown characters, whitespace, non-printable bytes */
	EXPECT_SMILES_ERR("CCX", MOE_ERR_DATA, 3,
					  "invalid character \"X\" at position 3 of SMILES string");
	EXPECT_SMILES_ERR("C C", MOE_ERR_DATA, 2, "invalid character \" \" at position 2");
	EXPECT_SMILES_ERR("CC\n", MOE_ERR_DATA, 3, "byte 0x0A");
	EXPECT_SMILES_ERR("C\x07" "C", MOE_ERR_DATA, 2, "invalid character byte 0x07 at position 2");
	EXPECT_SMILES_ERR("C\xC3\xA9", MOE_ERR_DATA, 2, "byte 0xC3");
	EXPECT_SMILES_ERR("CH4", MOE_ERR_DATA, 2, "\"H\"");
	EXPECT_SMILES_ERR("c1ccccc1a", MOE_ERR_DATA, 9, "\"a\"");
	expect_smiles_error("C\0C", 3, 64, 3, MOE_ERR_DATA, 2, "byte 0x00", __LINE__);

	/* brackets */
	EXPECT_SMILES_ERR("C[NH4+", MOE_ERR_DATA, 2, "unclosed bracket atom");
	EXPECT_SMILES_ERR("[", MOE_ERR_DATA, 1, "unclosed bracket atom");
	EXPECT_SMILES_ERR("C[N[H]]", MOE_ERR_DATA, 4, "nested \"[\" at position 4");
	EXPECT_SMILES_ERR("C[]C", MOE_ERR_DATA, 2, "empty bracket atom");
	EXPECT_SMILES_ERR("C]", MOE_ERR_DATA, 2, "unmatched \"]\"");
	EXPECT_SMILES_ERR("[N H]", MOE_ERR_DATA, 3, "invalid character \" \" at position 3");
	EXPECT_SMILES_ERR("[Na.Cl]", MOE_ERR_DATA, 4, "invalid character \".\"");
	EXPECT_SMILES_ERR("[C=O]", MOE_ERR_DATA, 3, "\"=\"");

	/* parentheses both ways */
	EXPECT_SMILES_ERR("CC)", MOE_ERR_DATA, 3, "unmatched \")\" at position 3");
	EXPECT_SMILES_ERR("C)(C", MOE_ERR_DATA, 2, "unmatched \")\"");
	EXPECT_SMILES_ERR("C(C", MOE_ERR_DATA, 2, "unclosed \"(\" at position 2");
	EXPECT_SMILES_ERR("C(C(C)", MOE_ERR_DATA, 2, "unclosed \"(\"");
	EXPECT_SMILES_ERR("C(C)C((C)", MOE_ERR_DATA, 6, "unclosed \"(\" at position 6");
	EXPECT_SMILES_ERR("(((", MOE_ERR_DATA, 1, "unclosed \"(\"");

	/* bad % ring closures */
	EXPECT_SMILES_ERR("C%1C", MOE_ERR_DATA, 2, "\"%\" at position 2");
	EXPECT_SMILES_ERR("C%", MOE_ERR_DATA, 2, "followed by two digits");
	EXPECT_SMILES_ERR("CC%1", MOE_ERR_DATA, 3, "followed by two digits");
	EXPECT_SMILES_ERR("C%a1", MOE_ERR_DATA, 2, "followed by two digits");

	/* empty input */
	expect_smiles_error("", 0, 64, 3, MOE_ERR_DATA, 0, "SMILES string is empty", __LINE__);
	expect_smiles_error(NULL, 0, 64, 3, MOE_ERR_DATA, 0, "SMILES string is empty", __LINE__);
	expect_smiles_error("CCO", 0, 64, 3, MOE_ERR_DATA, 0, "SMILES string is empty", __LINE__);

	/* parameters out of range */
	expect_smiles_error("CCO", 3, 0, 3, MOE_ERR_INVALID, 0, "dim", __LINE__);
	expect_smiles_error("CCO", 3, -5, 3, MOE_ERR_INVALID, 0, "between 1 and 1048576", __LINE__);
	expect_smiles_error("CCO", 3, MOE_SMILES_MAX_DIM + 1, 3, MOE_ERR_INVALID, 0, "dim", __LINE__);
	expect_smiles_error("CCO", 3, 64, 0, MOE_ERR_INVALID, 0, "max_n", __LINE__);
	expect_smiles_error("CCO", 3, 64, MOE_SMILES_MAX_N + 1, MOE_ERR_INVALID, 0,
						"max_n must be between 1 and 8", __LINE__);

	/* the first error in string order wins */
	EXPECT_SMILES_ERR("C(C)X)", MOE_ERR_DATA, 5, "\"X\"");
}

static void
test_smiles_limits_accepted(void)
{
	float	   *big = malloc(sizeof(float) * MOE_SMILES_MAX_DIM);
	float		a[64];
	moe_error	err;

	CHECK_INT(smiles("CCO", MOE_SMILES_MAX_DIM, MOE_SMILES_MAX_N, big, &err), MOE_OK);
	CHECK_INT(count_nonzero(big, MOE_SMILES_MAX_DIM) <= 6, 1);
	CHECK_INT(smiles("CCO", 1, 1, a, &err), MOE_OK);
	CHECK(a[0] == (float) log1p(3.0));
	free(big);
}

static void
test_smiles_deterministic(void)
{
	const char *s = "CC1=C2C=C(C=CC2=NN1)C3=CC(=CN=C3)OCC(CC4=CC=CC=C4)N";
	float		a[1024],
				b[1024];
	moe_error	err;

	memset(a, 0xAB, sizeof(a));
	memset(b, 0x11, sizeof(b));
	CHECK_INT(smiles(s, 1024, 3, a, &err), MOE_OK);
	CHECK_INT(smiles(s, 1024, 3, b, &err), MOE_OK);
	CHECK(memcmp(a, b, sizeof(a)) == 0);
	for (int i = 0; i < 1024; i++)
		CHECK(a[i] >= 0.0f && isfinite(a[i]));
}

/* ---- protein ---------------------------------------------------------------- */

static const char aa_order[] = "ACDEFGHIKLMNPQRSTVWY";

static int
ref_aa(char c)
{
	const char *p = strchr(aa_order, c);

	return (c != '\0' && p != NULL) ? (int) (p - aa_order) : -1;
}

static void
test_protein_dims(void)
{
	CHECK_INT(moe_protein_feature_dim(1), 20);
	CHECK_INT(moe_protein_feature_dim(2), 420);
	CHECK_INT(moe_protein_feature_dim(3), 8420);
	CHECK_INT(moe_protein_feature_dim(0), 0);
	CHECK_INT(moe_protein_feature_dim(4), 0);
	CHECK_INT(moe_protein_feature_dim(-1), 0);
}

static void
test_protein_acd_exact(void)
{
	float		v[420];
	moe_error	err;

	CHECK_INT(moe_featurize_protein("ACD", 3, 2, v, &err), MOE_OK);
	/* 1-mers: A=0, C=1, D=2 */
	CHECK(v[0] == (float) (1.0 / 3.0));
	CHECK(v[1] == (float) (1.0 / 3.0));
	CHECK(v[2] == (float) (1.0 / 3.0));
	/* 2-mers: AC = 0*20+1, CD = 1*20+2 (first residue most significant) */
	CHECK(v[20 + 1] == 0.5f);
	CHECK(v[20 + 22] == 0.5f);
	CHECK(v[20 + 20] == 0.0f);	/* CA is not there */
	CHECK_INT(count_nonzero(v, 420), 5);

	/* max_k 3 on "ACD": a single 3-mer ACD = 0*400 + 1*20 + 2 */
	float		w[8420];

	CHECK_INT(moe_featurize_protein("ACD", 3, 3, w, &err), MOE_OK);
	CHECK(memcmp(v, w, sizeof(v)) == 0);
	CHECK(w[420 + 22] == 1.0f);
	CHECK_INT(count_nonzero(w, 8420), 6);

	/* the last letter of the alphabet lands on the last slot of each block */
	CHECK_INT(moe_featurize_protein("YYY", 3, 3, w, &err), MOE_OK);
	CHECK(w[19] == 1.0f && w[20 + 399] == 1.0f && w[420 + 7999] == 1.0f);
	CHECK_INT(count_nonzero(w, 8420), 3);

	/* shorter than k: that block is all zeros */
	CHECK_INT(moe_featurize_protein("W", 1, 3, w, &err), MOE_OK);
	CHECK(w[18] == 1.0f);
	CHECK_INT(count_nonzero(w, 8420), 1);
}

static void
test_protein_case_and_skips(void)
{
	float		a[8420],
				b[8420];
	moe_error	err;
	const char *up = "MKKFFDSRREQGGSGLGSGSSGGGGSTSGLGSGYIGRVFGIGRQQ";
	char		low[64];

	for (size_t i = 0; i <= strlen(up); i++)
		low[i] = (char) (up[i] >= 'A' && up[i] <= 'Z' ? up[i] - 'A' + 'a' : up[i]);
	CHECK_INT(moe_featurize_protein(up, strlen(up), 3, a, &err), MOE_OK);
	CHECK_INT(moe_featurize_protein(low, strlen(low), 3, b, &err), MOE_OK);
	CHECK(memcmp(a, b, sizeof(a)) == 0);
	CHECK_INT(moe_featurize_protein("AcDe", 4, 3, a, &err), MOE_OK);
	CHECK_INT(moe_featurize_protein("ACDE", 4, 3, b, &err), MOE_OK);
	CHECK(memcmp(a, b, sizeof(a)) == 0);

	/* AXA: the only 1-mers are A, A; no 2-mer or 3-mer survives */
	CHECK_INT(moe_featurize_protein("AXA", 3, 3, a, &err), MOE_OK);
	CHECK(a[0] == 1.0f);
	CHECK_INT(count_nonzero(a, 8420), 1);

	/* every ambiguous letter, either case, is skipped the same way */
	const char *amb = "XBZJUOxbzjuo";

	for (int i = 0; amb[i]; i++)
	{
		char		s[4] = {'A', amb[i], 'A', 0};

		CHECK_INT(moe_featurize_protein(s, 3, 3, b, &err), MOE_OK);
		CHECK(memcmp(a, b, sizeof(a)) == 0);
	}

	/* ACXDE: 1-mers A C D E, 2-mers AC and DE only */
	CHECK_INT(moe_featurize_protein("ACXDE", 5, 2, a, &err), MOE_OK);
	CHECK(a[0] == 0.25f && a[1] == 0.25f && a[2] == 0.25f && a[3] == 0.25f);
	CHECK(a[20 + 0 * 20 + 1] == 0.5f && a[20 + 2 * 20 + 3] == 0.5f);
	CHECK_INT(count_nonzero(a, 420), 6);

	/* AXAAA: 3-mer AAA only (1), 2-mers AA twice (1.0) */
	CHECK_INT(moe_featurize_protein("AXAAA", 5, 3, a, &err), MOE_OK);
	CHECK(a[0] == 1.0f && a[20] == 1.0f && a[420] == 1.0f);
	CHECK_INT(count_nonzero(a, 8420), 3);

	/* only ambiguous letters: valid, all zeros */
	CHECK_INT(moe_featurize_protein("XXXX", 4, 3, a, &err), MOE_OK);
	CHECK_INT(count_nonzero(a, 8420), 0);
}

static void
expect_protein_error(const char *s, size_t len, int max_k, moe_status st, int pos,
					 const char *frag, int line)
{
	float		out[20];
	moe_error	err;
	int			before = unit_failures;

	for (int i = 0; i < 20; i++)
		out[i] = -3.0f;
	moe_error_clear(&err);
	CHECK_INT(moe_featurize_protein(s, len, max_k, out, &err), st);
	CHECK_INT(err.status, st);
	CHECK_INT(err.position, pos);
	CHECK(frag == NULL || strstr(err.message, frag) != NULL);
	for (int i = 0; i < 20; i++)
		CHECK(out[i] == -3.0f);
	CHECK_INT(moe_featurize_protein(s, len, max_k, out, NULL), st);
	if (unit_failures != before)
		fprintf(stderr, "  (case at line %d: message \"%s\")\n", line, err.message);
}

static void
test_protein_errors(void)
{
	expect_protein_error("ACD*", 4, 1, MOE_ERR_DATA, 4,
						 "invalid character \"*\" at position 4 of protein sequence", __LINE__);
	expect_protein_error("A1CD", 4, 1, MOE_ERR_DATA, 2, "\"1\" at position 2", __LINE__);
	expect_protein_error("AC D", 4, 1, MOE_ERR_DATA, 3, "\" \" at position 3", __LINE__);
	expect_protein_error("ACD\n", 4, 1, MOE_ERR_DATA, 4, "byte 0x0A", __LINE__);
	expect_protein_error("A\x80", 2, 1, MOE_ERR_DATA, 2, "byte 0x80 at position 2", __LINE__);
	expect_protein_error("A\0C", 3, 1, MOE_ERR_DATA, 2, "byte 0x00", __LINE__);
	expect_protein_error("", 0, 1, MOE_ERR_DATA, 0, "protein sequence is empty", __LINE__);
	expect_protein_error(NULL, 0, 1, MOE_ERR_DATA, 0, "protein sequence is empty", __LINE__);
	expect_protein_error("ACD", 3, 0, MOE_ERR_INVALID, 0, "max_k must be between 1 and 3, not 0", __LINE__);
	expect_protein_error("ACD", 3, 4, MOE_ERR_INVALID, 0, "max_k", __LINE__);
	/* not NUL-terminated: only len bytes are read */
	float		a[20],
				b[20];
	moe_error	err;

	CHECK_INT(moe_featurize_protein("ACD*!", 3, 1, a, &err), MOE_OK);
	CHECK_INT(moe_featurize_protein("ACD", 3, 1, b, &err), MOE_OK);
	CHECK(memcmp(a, b, sizeof(a)) == 0);
}

/* Naive reference: recount every k-mer with nested loops. */
static void
ref_protein(const char *s, int max_k, float *out)
{
	size_t		len = strlen(s);
	int			off = 0,
				block = 1;

	for (int k = 1; k <= max_k; k++)
	{
		block *= 20;
		double	   *cnt = calloc(block, sizeof(double));
		double		total = 0;

		for (size_t i = 0; i + k <= len; i++)
		{
			int			idx = 0,
						ok = 1;

			for (int j = 0; j < k; j++)
			{
				int			a = ref_aa((char) (s[i + j] & ~0x20));

				if (a < 0)
					ok = 0;
				else
					idx = idx * 20 + a;
			}
			if (ok)
			{
				cnt[idx] += 1;
				total += 1;
			}
		}
		for (int j = 0; j < block; j++)
			out[off + j] = total > 0 ? (float) (cnt[j] / total) : 0.0f;
		off += block;
		free(cnt);
	}
}

static void
test_protein_kinase(void)
{
	/* ABL1 kinase domain, residues ~ 242-310 */
	const char *abl = "NYDKWEMERTDITMKHKLGGGQYGEVYEGVWKKYSLTVAVKTLKEDTMEVEEFLKEAAVMKEIKHPNLVQLLGVCTREPPFYIITEF";
	float		got[8420],
				exp[8420];
	moe_error	err;

	CHECK_INT(moe_featurize_protein(abl, strlen(abl), 3, got, &err), MOE_OK);
	ref_protein(abl, 3, exp);
	CHECK(memcmp(got, exp, sizeof(got)) == 0);

	double		s1 = 0,
				s2 = 0,
				s3 = 0;

	for (int i = 0; i < 20; i++)
		s1 += got[i];
	for (int i = 20; i < 420; i++)
		s2 += got[i];
	for (int i = 420; i < 8420; i++)
		s3 += got[i];
	CHECK_NEAR(s1, 1.0, 1e-5);
	CHECK_NEAR(s2, 1.0, 1e-5);
	CHECK_NEAR(s3, 1.0, 1e-5);

	/* K count by hand: independently, K is index 8 */
	int			nk = 0;

	for (const char *p = abl; *p; p++)
		nk += *p == 'K';
	CHECK(got[8] == (float) ((double) nk / (double) strlen(abl)));

	/* max_k 1 and 2 are prefixes of max_k 3 */
	float		g1[20],
				g2[420];

	CHECK_INT(moe_featurize_protein(abl, strlen(abl), 1, g1, &err), MOE_OK);
	CHECK_INT(moe_featurize_protein(abl, strlen(abl), 2, g2, &err), MOE_OK);
	CHECK(memcmp(g1, got, sizeof(g1)) == 0);
	CHECK(memcmp(g2, got, sizeof(g2)) == 0);
}

/* ---- the Davis data set, when present ------------------------------------------ */


static void
test_davis_drugs(void)
{
	char	  **rows;
	int			n = unit_read_column2("/work/shared/data/davis/drugs.csv", &rows);

	if (n < 0)
		return;
	CHECK(n > 0);

	const int	dim = MOE_SMILES_DEFAULT_DIM;
	float	   *vec = malloc(sizeof(float) * dim * (n > 0 ? n : 1));
	int			failed = 0;

	for (int i = 0; i < n; i++)
	{
		moe_error	err;

		moe_error_clear(&err);
		if (moe_featurize_smiles(rows[i], strlen(rows[i]), dim, MOE_SMILES_DEFAULT_MAX_N,
								 vec + (size_t) i * dim, &err) != MOE_OK)
		{
			failed++;
			fprintf(stderr, "  drug %d \"%s\": %s\n", i + 1, rows[i], err.message);
		}
		/* the other n-gram lengths too */
		for (int m = 1; m <= MOE_SMILES_MAX_N; m++)
		{
			float		tmp[64];

			failed += moe_featurize_smiles(rows[i], strlen(rows[i]), 64, m, tmp, &err) != MOE_OK;
		}
	}
	CHECK_INT(failed, 0);

	int			distinct = 0;

	for (int i = 0; i < n; i++)
	{
		int			seen = 0;

		for (int j = 0; j < i && !seen; j++)
			seen = memcmp(vec + (size_t) i * dim, vec + (size_t) j * dim,
						  sizeof(float) * dim) == 0;
		distinct += !seen;
	}
	printf("     davis drugs: %d SMILES, %d distinct vectors (dim %d, max_n %d)\n",
		   n, distinct, dim, MOE_SMILES_DEFAULT_MAX_N);
	CHECK_INT(distinct, n);
	free(vec);
	unit_free_rows(rows, n);
}

static void
test_davis_targets(void)
{
	char	  **rows;
	int			n = unit_read_column2("/work/shared/data/davis/targets.csv", &rows);

	if (n < 0)
		return;
	CHECK(n > 0);

	int			dim = moe_protein_feature_dim(MOE_PROTEIN_DEFAULT_K);
	float	   *v = malloc(sizeof(float) * dim);
	int			failed = 0,
				xs = 0,
				bad_sum = 0;

	for (int i = 0; i < n; i++)
	{
		moe_error	err;
		size_t		len = strlen(rows[i]);

		for (size_t j = 0; j < len; j++)
			xs += rows[i][j] == 'X';
		moe_error_clear(&err);
		if (moe_featurize_protein(rows[i], len, MOE_PROTEIN_DEFAULT_K, v, &err) != MOE_OK)
		{
			failed++;
			fprintf(stderr, "  target %d: %s\n", i + 1, err.message);
			continue;
		}
		int			off = 0,
					block = 1;

		for (int k = 1; k <= MOE_PROTEIN_DEFAULT_K; k++)
		{
			double		s = 0;

			block *= 20;
			for (int j = 0; j < block; j++)
				s += v[off + j];
			off += block;
			bad_sum += fabs(s - 1.0) > 1e-4;
		}
	}
	printf("     davis targets: %d sequences featurized, %d with errors, %d 'X' seen\n",
		   n, failed, xs);
	CHECK_INT(failed, 0);
	CHECK_INT(bad_sum, 0);
	free(v);
	unit_free_rows(rows, n);
}

/* Featurizers by name: each makes what its function makes, describes
 * itself, checks its parameters, and recognises its own vectors. */
static void
test_featurizer_descriptors(void)
{
	moe_featurizer f;
	moe_error	err;
	float		a[2048], b[2048];
	char		why[200], text[200];
	const char *smiles = "CC(=O)Oc1ccccc1C(=O)O";
	const char *seq = "MKTAYIAKQRQISFVKSHFSRQ";

	CHECK_INT(moe_featurizer_kind_parse("ecfp"), MOE_FZ_ECFP);
	CHECK_INT(moe_featurizer_kind_parse("morgan"), MOE_FZ_NONE);
	CHECK(strcmp(moe_featurizer_name(MOE_FZ_PROTEIN_CKSAAP), "protein_cksaap") == 0);

	/* ecfp with its defaults: the same vector as the function */
	moe_featurizer_defaults(MOE_FZ_ECFP, &f);
	CHECK_INT(moe_featurizer_dim(&f), 2048);
	CHECK_INT(moe_featurizer_apply(&f, smiles, strlen(smiles), a, &err), MOE_OK);
	CHECK_INT(moe_featurize_ecfp(smiles, strlen(smiles), 2, 2048, true, b, &err), MOE_OK);
	CHECK(memcmp(a, b, sizeof(float) * 2048) == 0);
	CHECK(moe_featurizer_plausible(&f, a, 2048, why, sizeof(why)));
	moe_featurizer_describe(&f, text, sizeof(text));
	CHECK(strcmp(text, "moe_featurize_ecfp(smiles, radius => 2, dim => 2048, counts => true)") == 0);

	/* bits are not counts, counts are not bits */
	CHECK_INT(moe_featurize_ecfp(smiles, strlen(smiles), 2, 2048, false, b, &err), MOE_OK);
	CHECK(!moe_featurizer_plausible(&f, b, 2048, why, sizeof(why)));
	CHECK(strstr(why, "log(1 + count)") != NULL);
	f.counts = false;
	CHECK(moe_featurizer_plausible(&f, b, 2048, why, sizeof(why)));
	CHECK(!moe_featurizer_plausible(&f, a, 2048, why, sizeof(why)));

	/* protein compositions: blocks of frequencies */
	moe_featurizer_defaults(MOE_FZ_PROTEIN, &f);
	f.k = 2;
	CHECK_INT(moe_featurizer_dim(&f), 420);
	CHECK_INT(moe_featurizer_apply(&f, seq, strlen(seq), a, &err), MOE_OK);
	CHECK(moe_featurizer_plausible(&f, a, 420, why, sizeof(why)));
	a[25] += 0.5f;
	CHECK(!moe_featurizer_plausible(&f, a, 420, why, sizeof(why)));
	CHECK(strstr(why, "sum to") != NULL);
	CHECK(!moe_featurizer_plausible(&f, a, 419, why, sizeof(why)));	/* another length */
	moe_featurizer_defaults(MOE_FZ_PROTEIN_TRIAD, &f);
	CHECK_INT(moe_featurizer_apply(&f, seq, strlen(seq), a, &err), MOE_OK);
	CHECK(moe_featurizer_plausible(&f, a, MOE_TRIAD_DIM, why, sizeof(why)));
	moe_featurizer_defaults(MOE_FZ_PROTEIN_CKSAAP, &f);
	CHECK_INT(moe_featurizer_apply(&f, seq, strlen(seq), a, &err), MOE_OK);
	CHECK(moe_featurizer_plausible(&f, a, moe_featurizer_dim(&f), why, sizeof(why)));
	moe_featurizer_defaults(MOE_FZ_SMILES, &f);
	CHECK_INT(moe_featurizer_apply(&f, smiles, strlen(smiles), a, &err), MOE_OK);
	CHECK(moe_featurizer_plausible(&f, a, 1024, why, sizeof(why)));

	/* parameters out of range, and user vectors */
	moe_featurizer_defaults(MOE_FZ_ECFP, &f);
	f.radius = 9;
	CHECK_INT(moe_featurizer_validate(&f, &err), MOE_ERR_INVALID);
	CHECK_INT(moe_featurizer_apply(&f, smiles, strlen(smiles), a, &err), MOE_ERR_INVALID);
	moe_featurizer_defaults(MOE_FZ_NONE, &f);
	CHECK_INT(moe_featurizer_dim(&f), 0);
	CHECK_INT(moe_featurizer_apply(&f, smiles, strlen(smiles), a, &err), MOE_ERR_INVALID);
	CHECK(moe_featurizer_plausible(&f, a, 7, why, sizeof(why)));
	moe_featurizer_describe(&f, text, sizeof(text));
	CHECK(strcmp(text, "vectors supplied by the user") == 0);
}

int
main(void)
{
	RUN(test_reference_fnv);
	RUN(test_smiles_cco_exact);
	RUN(test_smiles_ring_normalised);
	RUN(test_smiles_two_letter_atoms);
	RUN(test_smiles_bracket_atoms);
	RUN(test_smiles_not_nul_terminated);
	RUN(test_smiles_errors);
	RUN(test_smiles_limits_accepted);
	RUN(test_smiles_deterministic);
	RUN(test_protein_dims);
	RUN(test_protein_acd_exact);
	RUN(test_protein_case_and_skips);
	RUN(test_protein_errors);
	RUN(test_protein_kinase);
	RUN(test_davis_drugs);
	RUN(test_davis_targets);
	RUN(test_featurizer_descriptors);
	return unit_summary("test_featurize");
}
